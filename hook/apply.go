package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/annotations"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
)

// AnnotationRefusal carries a refusal from precreate to prestart (see
// Refuse).
const AnnotationRefusal = annotations.Refusal

// refusedCommand is the command of a refused container: no such file, so
// that even a runtime that skipped the prestart hook cannot start it. The
// reason follows it in the same path (refusedPath): where the prestart
// hook does not speak first (a runtime that looks the command up before
// running hooks, or skips them), the error an engine prints ("exec: PATH:
// no such file or directory", podman's "OCI runtime attempted to invoke a
// command that was not found") still names it.
const refusedCommand = confine.Dir + "/refused"

// refusedPath is refusedCommand with the reason: " by clawos-hook: " and
// the message, with '/' written as U+2215 (it looks the same and starts no
// path component) and cut to fit one file name (255 bytes).
func refusedPath(err error) string {
	msg := strings.Map(func(r rune) rune {
		switch {
		case r == '/':
			return '\u2215'
		case r < ' ' || r == 0x7f:
			return ' '
		}
		return r
	}, clawerr.PayloadOf("clawos-hook", err).ErrorMessage)
	name := "refused by clawos-hook: " + msg
	for len(name) > 250 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return confine.Dir + "/" + name
}

// Refuse turns spec into a container that cannot start and carries err:
// its command does not exist, and the injected prestart hook fails with
// err's message and code. This is how precreate reports a refusal where
// the engine shows the hook's stderr only for prestart (podman 4.3 discards
// a precreate hook's stderr and prints only "exit status 1").
func Refuse(spec *specs.Spec, cfg Config, err error) {
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	b, _ := json.Marshal(clawerr.PayloadOf("clawos-hook", err))
	spec.Annotations[AnnotationRefusal] = string(b)
	if spec.Process == nil {
		spec.Process = &specs.Process{Cwd: "/"}
	}
	spec.Process.Args = []string{refusedPath(err)}
	unapply(spec, cfg)
	inject(spec, cfg, true)
}

// refusal is the error Refuse recorded in spec, nil if none.
func refusal(spec *specs.Spec) error {
	v, ok := spec.Annotations[AnnotationRefusal]
	if !ok {
		return nil
	}
	var p clawerr.Payload
	if err := json.Unmarshal([]byte(v), &p); err != nil || !p.ErrorCode.Valid() {
		return &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + AnnotationRefusal, Message: "refused at precreate: " + v}
	}
	return &clawerr.Error{Code: p.ErrorCode, Message: "refused at precreate: " + p.ErrorMessage}
}

// injectedEnv marks the hooks Apply injects, so that a second run replaces
// them instead of adding more.
const injectedEnv = "CLAWOS_INJECTED=1"

// Outcome is what a stage found and did, for its audit record.
type Outcome struct {
	Whitelist   string                   // the annotation's name
	WhitelistID string                   // its whitelist_id
	Digest      string                   // the container-level profile digest
	Signature   translate.SignatureState // "" when the whitelist was not read
	AppArmor    string                   // confine.AppArmorApplied, ...
	Landlock    string                   // the exec restriction's state (confine.Plan.Landlock)
	Notes       []string                 // what was changed, in words (an update's clamped limits)
	KilledBy    string                   // poststop: the syscall of the agent's seccomp kill
}

// Apply confines the container spec describes when its annotations ask for
// a whitelist, exactly as clawos-run confines a sandbox: the
// container-level filter, clawos-init bind-mounted read-only and prefixed
// to process.args with the agent's exact filter inline, the namespaces
// settings (namespaces.Harden), the port policy annotation and, where the
// kernel has it, the AppArmor profile; it injects the createRuntime and
// poststop hooks unless the engine already runs ours from hooks.d. Without
// the annotation spec is left untouched and Apply returns a nil Outcome.
// Apply is deterministic and idempotent: a config it has confined comes out
// the same.
func Apply(spec *specs.Spec, cfg Config, log logrus.FieldLogger) (*Outcome, error) {
	out, _, err := apply(spec, cfg, log, true, false)
	return out, err
}

// apply is Apply, returning the plan; without createRuntime it injects the
// poststop hook only, for a wrapper that does the createRuntime stage's
// work itself once runc's create has returned (WrapCreate). With
// initLoads, clawos-init loads the container stage (--container-filter,
// compiled here) and the config has no linux.seccomp: for the wrapper,
// through which every process of the container starts, so that runc does
// not compile the stage with libseccomp at every create (docs/security.md).
func apply(spec *specs.Spec, cfg Config, log logrus.FieldLogger, createRuntime, initLoads bool) (*Outcome, *confine.Plan, error) {
	req := runcargs.Requested(spec.Annotations)
	if err := sandboxMarker(req, cfg); err != nil || (req.Sandbox && cfg.CRI) {
		if err != nil {
			return &Outcome{Whitelist: req.Whitelist}, nil, err
		}
		return nil, nil, nil // a CRI pod's sandbox (pause), as the operator configured
	}
	if req.Whitelist == "" {
		if req.Named {
			return &Outcome{}, nil, &clawerr.Error{Code: clawerr.EProto, Path: "annotations." + req.WhitelistKey,
				Message: "the annotation names no whitelist", Hint: "name a whitelist, or remove the annotation"}
		}
		return nil, nil, nil
	}
	out := &Outcome{Whitelist: req.Whitelist}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return out, nil, &clawerr.Error{Code: clawerr.EProto, Path: "process.args", Message: "the container has no command"}
	}
	cmd := unapply(spec, cfg)
	plan, err := planFor(spec, req, cfg.Runtime, cfg, out, log)
	if err != nil {
		return out, nil, err
	}
	// The config goes to the engine: refuse here what its runtime could
	// not load (prestart, after the runtime loaded it, need not); compiled
	// for clawos-init where it loads the stage.
	var containerFilter string
	if initLoads {
		containerFilter, err = plan.ContainerFilter()
	} else {
		err = confine.CheckContainer(plan.Stages)
	}
	if err != nil {
		return out, nil, err
	}
	wl := plan.Whitelist
	hard, err := confine.HardLimits()
	if err != nil {
		return out, nil, err
	}
	if err := namespaces.Harden(spec, namespaces.Options{Level: confine.Level(wl), Slice: req.Slice,
		CgroupV2: namespaces.CgroupV2("/sys/fs/cgroup"), NoIOWeight: confine.NoIOWeight(req.Slice, log), HardLimits: hard}); err != nil {
		return out, nil, err
	}
	if _, err := os.Stat(cfg.Init); err != nil {
		return out, nil, &clawerr.Error{Code: clawerr.ENoEnt, Path: "init", Message: "clawos-init is not installed", Err: err,
			Hint: "make install puts it next to clawos-hook"}
	}
	use, landlock, err := plan.Landlock(cfg.Landlock, platform.LandlockABI())
	if err != nil {
		return out, nil, err
	}
	out.Landlock = landlock
	// The command is resolved inside the container (clawos-init searches
	// $PATH) whether or not Landlock restricts what it may execute.
	ex := confine.Exec{Cmd: use, ContainerFilter: containerFilter}
	// The port rules by Landlock as well, where the kernel can (ABI 4): a
	// second layer beside the table prestart installs, for the main
	// process and every exec (WrapExec reuses this prefix).
	if plan.Ports != nil && confine.LandlockNet(cfg.Landlock, platform.LandlockABI()) {
		ex.Ports = plan.Ports
		out.Landlock += "; TCP ports held by Landlock's network rules too"
	}
	spec.Process.Args = confine.InitArgs(plan.InlineFilter(), ex, cmd)
	spec.Mounts = append(spec.Mounts, confine.InitMount(cfg.Init))
	if err := plan.Annotate(spec, cfg.Runtime); err != nil {
		return out, nil, err
	}
	if initLoads {
		spec.Linux.Seccomp = nil // its digest stays in the annotations
	}
	out.Digest = spec.Annotations[translate.AnnotationProfileDigest]
	var execFiles []string
	if filepath.IsAbs(cmd[0]) {
		execFiles = []string{cmd[0]}
	}
	var prof *confine.AppArmorProfile
	if out.AppArmor, prof, err = plan.ApplyAppArmor(spec, cfg.AppArmor, "", execFiles, log); err != nil {
		return out, nil, err
	}
	// The engine creates the container next: loaded now (a profile of
	// the same name has the same text), and its text kept for the
	// container's createRuntime stage, which counts it as a user (the id
	// is not known here) and loads it again if another container's stop
	// removed it meanwhile.
	if prof != nil {
		if err := confine.SystemAppArmor().Save(prof); err != nil {
			return out, nil, err
		}
		if err := confine.LoadAppArmor(prof); err != nil {
			return out, nil, err
		}
	}
	inject(spec, cfg, createRuntime)
	return out, plan, nil
}

// planFor reads the whitelist req names from the trusted directory,
// validates it and translates it for runtime with the options req asks
// for, recording in out what it learnt (signature state, whitelist id).
// Apply and Prestart share it, so that both read a whitelist the same way.
func planFor(spec *specs.Spec, req runcargs.Request, runtime string, cfg Config, out *Outcome, log logrus.FieldLogger) (*confine.Plan, error) {
	opts, err := options(req, cfg)
	if err != nil {
		return nil, err
	}
	path, raw, err := ReadWhitelist(cfg.WhitelistDir, req.WhitelistKey, req.Whitelist)
	if err != nil {
		return nil, err
	}
	wl, sig, err := cfg.lookup().Whitelist(path, raw, opts, log)
	out.Signature = sig
	if err != nil {
		return nil, err
	}
	out.WhitelistID = wl.WhitelistID
	return confine.NewPlan(wl, opts, runtime, hasNamespace(spec, specs.NetworkNamespace), false, false)
}

// unapply undoes a previous Apply (idempotence) and returns the
// container's own command.
func unapply(spec *specs.Spec, cfg Config) []string {
	_, args := splitInit(spec.Process.Args)
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if m.Destination != confine.Init {
			mounts = append(mounts, m)
		}
	}
	spec.Mounts = mounts
	if spec.Hooks != nil {
		spec.Hooks.CreateRuntime = notInjected(spec.Hooks.CreateRuntime)
		spec.Hooks.Poststop = notInjected(spec.Hooks.Poststop)
	}
	return append([]string{}, args...)
}

func notInjected(hs []specs.Hook) []specs.Hook {
	var out []specs.Hook
	for _, h := range hs {
		if !(len(h.Env) == 1 && h.Env[0] == injectedEnv) {
			out = append(out, h)
		}
	}
	return out
}

// inject adds our createRuntime (prestart's successor: same point in runc;
// with createRuntime only) and poststop hooks, unless the engine already
// runs clawos-hook's prestart from its hooks.d (then it runs poststop from
// there too: podman runs poststop hooks itself).
func inject(spec *specs.Spec, cfg Config, createRuntime bool) {
	if spec.Hooks == nil {
		spec.Hooks = &specs.Hooks{}
	}
	//lint:ignore SA1019 podman and CRI-O put hooks.d's prestart hooks here
	for _, h := range append(spec.Hooks.Prestart, spec.Hooks.CreateRuntime...) {
		if h.Path == cfg.Hook {
			return
		}
	}
	secs := int(cfg.TimeoutDuration().Seconds()) + 1
	hook := func(stage string) specs.Hook {
		return specs.Hook{Path: cfg.Hook, Args: append(append([]string{"clawos-hook"}, cfg.Args()...), stage),
			Env: []string{injectedEnv}, Timeout: &secs}
	}
	if createRuntime {
		spec.Hooks.CreateRuntime = append(spec.Hooks.CreateRuntime, hook("createRuntime"))
	}
	post := hook("poststop")
	if quickPoststop(cfg) {
		// clawos-poststop does the stage where createRuntime left it
		// nothing but the record to remove, and execs clawos-hook for the
		// rest with the same arguments and state.
		post.Path = cfg.Poststop
		post.Args = append([]string{"clawos-poststop", "--state-dir", cfg.StateDir, "--audit-log", cfg.AuditLog, "--", cfg.Hook}, post.Args...)
	}
	spec.Hooks.Poststop = append(spec.Hooks.Poststop, post)
}

// quickPoststop says whether clawos-poststop is configured and installed.
func quickPoststop(cfg Config) bool {
	if cfg.Poststop == "" || cfg.Poststop == PoststopOff {
		return false
	}
	fi, err := os.Stat(cfg.Poststop)
	return err == nil && fi.Mode().IsRegular()
}

// hasQuickPoststop says whether spec's poststop hooks include
// clawos-poststop as inject adds it.
func hasQuickPoststop(spec *specs.Spec, cfg Config) bool {
	if spec.Hooks == nil || cfg.Poststop == "" || cfg.Poststop == PoststopOff {
		return false
	}
	for _, h := range spec.Hooks.Poststop {
		if h.Path == cfg.Poststop {
			return true
		}
	}
	return false
}

// splitInit splits a command line Apply made into clawos-init's part, up
// to and including "--", and the container's own command; a command line
// that does not start with clawos-init and its "--" has no init part.
func splitInit(args []string) (prefix, cmd []string) {
	if len(args) > 0 && args[0] == confine.Init {
		for i, a := range args {
			if a == "--" {
				return args[:i+1], args[i+1:]
			}
		}
	}
	return nil, args
}

// namespaceOf is spec's namespace of type t, if it has one.
func namespaceOf(spec *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	if spec.Linux != nil {
		for _, n := range spec.Linux.Namespaces {
			if n.Type == t {
				return n, true
			}
		}
	}
	return specs.LinuxNamespace{}, false
}

func hasNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	_, ok := namespaceOf(spec, t)
	return ok
}

// options are the translation options an annotated container asks for.
func options(req runcargs.Request, cfg Config) (translate.Options, error) {
	bl := req.Baseline
	if bl == "" {
		bl = "start"
	}
	b, err := translate.ParseBaselines(bl)
	if err != nil {
		var ce *clawerr.Error
		if errors.As(err, &ce) && ce.Path == "" {
			ce.Path = "annotations." + req.BaselineKey
		}
		return translate.Options{}, err
	}
	return translate.Options{RequireSignature: cfg.RequireSignature, Baselines: b}, nil
}

// whitelistName is a relative path of plain components: no "..", no
// hidden files, no absolute path.
var whitelistName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)
})

// ReadWhitelist reads the whitelist name (NAME or NAME.json), the value of
// annotation key, from the trusted directory dir. The kernel resolves the
// path beneath dir (openat2 RESOLVE_BENEATH): a symlink that leaves it is
// refused.
func ReadWhitelist(dir, key, name string) (string, []byte, error) {
	if !whitelistName().MatchString(name) || len(name) > 255 {
		return "", nil, &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + key,
			Message: fmt.Sprintf("%q is not a whitelist name inside the trusted directory", bounded(name, maxField)),
			Hint:    "name a file of " + dir + " without its .json suffix"}
	}
	file := name
	if !strings.HasSuffix(file, ".json") {
		file += ".json"
	}
	path := filepath.Join(dir, file)
	d, err := os.Open(dir)
	if err != nil {
		return path, nil, clawerr.Wrap(clawerr.ENoEnt, err, "open the trusted whitelist directory")
	}
	defer d.Close()
	fd, err := unix.Openat2(int(d.Fd()), file, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return path, nil, &clawerr.Error{Code: clawerr.ENoEnt, Path: "annotations." + key,
				Message: fmt.Sprintf("whitelist %q is not in the trusted directory %s", name, dir), Err: err}
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
			return path, nil, &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + key,
				Message: fmt.Sprintf("whitelist %q resolves outside the trusted directory %s", name, dir), Err: err}
		}
		return path, nil, clawerr.Wrap(clawerr.EIO, err, "open whitelist "+strconv.Quote(name))
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := trustedFile(f, dir); err != nil {
		return path, nil, &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + key,
			Message: fmt.Sprintf("whitelist %q is not trusted: %v", name, err),
			Hint:    "the file and every directory above it must be owned by root (or the caller) and writable by no one else, as OpenSSH demands of its keys"}
	}
	raw, err := io.ReadAll(io.LimitReader(f, translate.MaxWhitelistSize+1))
	if err != nil {
		return path, nil, clawerr.Wrap(clawerr.EIO, err, "read whitelist "+strconv.Quote(name))
	}
	return path, raw, nil
}

// trustedFile checks, as OpenSSH does for authorized_keys, that nobody but root
// or the caller can have written the open whitelist f or replaced it: f is
// a regular file and f and every directory from dir up to / are owned by
// root or this process's user and writable by neither group nor others. A
// root-owned sticky directory (/tmp) is accepted: others cannot rename or
// delete what is in it. The signature (a digest of the content) cannot
// tell a whitelist someone else rewrote; this can.
func trustedFile(f *os.File, dir string) error {
	uid := uint32(os.Geteuid())
	check := func(name string, st *unix.Stat_t, isDir bool) error {
		if st.Uid != 0 && st.Uid != uid {
			return fmt.Errorf("%s is owned by uid %d", name, st.Uid)
		}
		if st.Mode&0o022 != 0 && !(isDir && st.Mode&unix.S_ISVTX != 0 && st.Uid == 0) {
			return fmt.Errorf("%s is writable by group or others (mode %#o)", name, st.Mode&0o7777)
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	if err := check(f.Name(), &st, false); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	for p := real; ; p = filepath.Dir(p) {
		if err := unix.Stat(p, &st); err != nil {
			return err
		}
		if err := check(p, &st, true); err != nil {
			return err
		}
		if p == "/" {
			return nil
		}
	}
}

// sandboxMarker refuses a config that carries containerd's pod-sandbox
// marker next to a whitelist where the entry point is not configured as a
// CRI runtime: whoever creates a container (podman, ctr) can set the marker,
// and honouring it there would run the container unconfined.
func sandboxMarker(req runcargs.Request, cfg Config) error {
	if !req.Sandbox || cfg.CRI || !req.Named {
		return nil
	}
	return &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + runcargs.AnnotationCRIContainerType,
		Message: "the config carries both the CRI pod-sandbox marker (" + runcargs.AnnotationCRIContainerType + "=" + runcargs.CRISandbox + ") and a whitelist annotation, and this entry point is not configured as a CRI runtime",
		Hint:    "remove the marker; only containerd's CRI handler sets it (\"cri\": true in its runtime.json)"}
}
