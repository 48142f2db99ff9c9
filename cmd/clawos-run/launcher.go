package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/learn"
	"github.com/clawos/clawos-security/internal/platform"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// idMapBase is the host id of root in a sandbox with a user namespace.
const idMapBase = 100000

type launcher struct {
	cfg *config
	// initPath is clawos-init on the host; "" looks next to this executable.
	initPath string
	log      *logrus.Logger
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
}

// sandbox is everything launch prepares before anything runs.
type sandbox struct {
	id       string
	bundle   string // the bundle directory
	spec     *specs.Spec
	stages   *translate.Stages
	agentBPF *seccomp.Program
	links    map[string]string
	ports    *namespaces.PortPolicy // enforced in the sandbox's network namespace; nil for none
	initBin  string                 // host path of clawos-init
	command  []string               // the agent's command line, as given
	// super receives the calls of a --learn or --complain run; nil
	// otherwise. recording or complaints collects them.
	super      *supervisor
	recording  *learn.Recording
	complaints *learn.Complaints
	refused    int    // packets the port policy refused (or would have)
	owner      owner  // who runs it, recorded in the bundle
	landlock   string // the Landlock exec restriction's state
	// execAllowed: the whitelist lets the agent execute programs (not
	// start-only exec).
	execAllowed bool
	// idmapped are the destinations of mounts staged as idmapped mounts
	// (stageIDMaps), checked in the created sandbox; stageDir, when set,
	// is the state directory where writeBundle stages them (a run, not
	// --write-bundle).
	idmapped []string
	stageDir string
	// init: clawos-init stays as pid 1 (--init); agentPID is then the
	// agent's host pid, its child, once seen (agentChild).
	init     bool
	agentPID int
	// apparmor is the profile the spec names, loaded when the sandbox
	// starts (loadAppArmor); nil without one.
	apparmor *confine.AppArmorProfile
	// prepared is when the sandbox was planned: a kernel log record of a
	// seccomp kill older than that is another process's.
	prepared time.Time
}

func (l *launcher) launch(ctx context.Context) (int, error) {
	sb, err := l.prepare()
	if err != nil {
		return 0, err
	}
	if l.cfg.printSpec {
		return 0, l.printSpec(sb)
	}
	rt, err := newRuntime(l.cfg.runtime, l.cfg.stateDir, l.log)
	if err != nil {
		return 0, err
	}
	if l.cfg.writeBundle != "" {
		return 0, rt.writeBundle(sb.bundle, sb)
	}
	stdin, stdout, stderr := l.stdin, l.stdout, l.stderr
	if !l.cfg.tty {
		var closeIn func()
		if stdin, stdout, stderr, closeIn, err = withoutTerminal(stdin, stdout, stderr); err != nil {
			return 0, err
		}
		defer closeIn()
	}
	status, err := rt.run(ctx, sb, l.cfg.killAfter, stdin, stdout, stderr)
	if err != nil {
		return status, err
	}
	switch {
	case sb.recording != nil:
		err = l.finishLearn(sb, status)
	case sb.complaints != nil:
		err = l.finishComplain(sb)
	}
	return status, err
}

// prepare validates and translates the whitelist and builds the OCI config.
func (l *launcher) prepare() (*sandbox, error) {
	c := l.cfg
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	netMode, err := c.netMode()
	if err != nil {
		return nil, err
	}
	switch c.apparmorMode {
	case confine.AppArmorAuto, confine.AppArmorRequired, confine.AppArmorOff:
	default:
		return nil, &usageError{fmt.Errorf("--apparmor %q: want auto, required or off", c.apparmorMode)}
	}
	wl := learnPlaceholder()
	if c.learn == "" {
		if wl, _, err = confine.Load(c.whitelist, l.stdin, opts, l.log); err != nil {
			return nil, err
		}
	}
	runtimeName := runtimeKind(c.runtime)
	measured := runtimeName
	if c.measureRuntime {
		measured = translate.RuntimeMeasure
		l.log.Warn("measurement mode: the container-level filter logs every call and kills none; the agent's own filter is exact")
	}
	// Unless the agent is observed (learn, complain), the agent filter lets
	// only clawos-init's own execve through where the whitelist does not
	// allow execve: its pathname sits at a secret address.
	var execAt uint64
	if c.learn == "" && !c.complain {
		if execAt, err = confine.ExecAddress(rand.Reader); err != nil {
			return nil, err
		}
		opts.ExecStart = execAt
	}
	plan, err := confine.NewPlan(wl, opts, measured, netMode != namespaces.NetHost, netMode == namespaces.NetNone)
	if err != nil {
		return nil, err
	}
	var super *supervisor
	var rec *learn.Recording
	var comp *learn.Complaints
	if c.learn != "" || c.complain {
		if super, rec, comp, err = l.observe(plan); err != nil {
			return nil, err
		}
		if c.learn != "" && c.apparmorMode != confine.AppArmorOff {
			l.log.Info("learn mode: no AppArmor profile (there is no whitelist to generate it from)")
			c.apparmorMode = confine.AppArmorOff
		}
	}
	stages := plan.Stages
	initBin := l.initPath
	if initBin == "" {
		if initBin, err = findInit(); err != nil {
			return nil, err
		}
	}

	id := c.id
	if id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "container id")
		}
		id = "clawos-" + hex.EncodeToString(b[:])
	}
	bundle := bundleDir(c.stateDir, id)
	if c.writeBundle != "" {
		if bundle, err = filepath.Abs(c.writeBundle); err != nil {
			return nil, clawerr.Wrap(clawerr.EIO, err, "bundle directory")
		}
	}
	base, err := l.baseConfig()
	if err != nil {
		return nil, err
	}
	cmdArgs := c.cmd
	if len(cmdArgs) == 0 && base != nil && base.Process != nil {
		cmdArgs = base.Process.Args
	}
	if len(cmdArgs) == 0 {
		return nil, &usageError{fmt.Errorf("no command: want -- CMD [ARGS...]")}
	}
	root := ""
	switch {
	case base != nil:
		root = base.Root.Path
	case c.rootfs != "":
		if root, err = filepath.Abs(c.rootfs); err != nil {
			return nil, clawerr.Wrap(clawerr.EIO, err, "--rootfs")
		}
	}
	var binds []namespaces.Bind
	for _, list := range []struct {
		specs    []string
		readOnly bool
	}{{c.roBinds, true}, {c.binds, false}} {
		for _, b := range list.specs {
			bd, err := namespaces.ParseBind(b, list.readOnly)
			if err != nil {
				return nil, err
			}
			binds = append(binds, bd)
		}
	}
	workspace := ""
	if c.workspace != "" {
		ws, err := namespaces.Workspace(c.workspace)
		if err != nil {
			return nil, err
		}
		binds = append(binds, ws...)
		workspace = ws[0].Dest
	}
	// The command as the sandbox sees it: in its own view and PATH.
	cmdPath, execFiles, execMounts, err := l.resolve(root, namespaces.View{Binds: binds}, sandboxPATH(c.env), cmdArgs[0])
	if err != nil {
		return nil, err
	}
	// The working directory: the host's current directory, visible
	// read-only, in the default view; "/" (or the bundle's) in a root
	// filesystem of the user's, where no host path is visible.
	workdir := c.workdir
	if workdir != "" && root == "" && base == nil {
		if namespaces.Managed(workdir) {
			return nil, &usageError{fmt.Errorf("--workdir %s would bind the host's directory over the sandbox's own (/proc, /sys, /dev, /tmp, /run, /etc and below); use --chdir %s to start there inside the sandbox, or --ro-bind to share a host directory elsewhere", workdir, workdir)}
		}
	}
	switch {
	case c.chdir != "":
		// A directory of the sandbox's own view: nothing of the host's is
		// bound for it.
		workdir = c.chdir
	case workspace != "":
		workdir = workspace
	}
	if workdir == "" {
		switch {
		case base != nil && base.Process != nil && base.Process.Cwd != "":
			workdir = base.Process.Cwd
		case root != "":
			workdir = "/"
		default:
			if workdir, err = os.Getwd(); err != nil {
				return nil, clawerr.Wrap(clawerr.EIO, err, "working directory")
			}
			if ok, why := namespaces.ImplicitWorkdir(workdir, os.Getenv("HOME")); !ok {
				l.log.WithField("directory", workdir).Warnf("the current directory is not made visible to the agent, which starts in /: %s (share a directory explicitly with --ro-bind or --bind)", why)
				workdir = "/"
			}
		}
	}
	view := namespaces.View{Level: confine.Level(wl), PrivateNet: netMode != namespaces.NetHost, Custom: root != ""}
	if root == "" {
		if c.chdir == "" && workspace == "" {
			view.Workdir = workdir
		}
		// What the command needs from outside the view, at its real path.
		view.Exec = execMounts
	}
	view.Binds = binds
	view.Tmpfs = c.tmpfs
	if os.Geteuid() == 0 {
		// Writable binds are idmapped: the files of the bind's owner are
		// the sandbox root's, and what it writes is that owner's (never
		// root: refused); a non-root caller's user namespace maps its own
		// id to root already.
		view.IDMap = &namespaces.IDMap{HostID: idMapBase}
		if !c.userns {
			view.IDMap.HostID = 65534 // the agent runs as nobody
		}
	}
	mounts, links, err := namespaces.Mounts(view)
	if err != nil {
		return nil, err
	}
	if base != nil {
		// The bundle's own mounts first; ours (proc, dev, tmp, binds) only
		// where the bundle has none at that destination. The security level
		// decides about /sys, whatever the bundle says.
		baseMounts := base.Mounts
		if !namespaces.Sysfs(confine.Level(wl)) {
			baseMounts = withoutSys(baseMounts)
		}
		mounts = mergeMounts(baseMounts, mounts)
	}

	// The agent dies with clawos-run: clawos-init arms its parent-death
	// signal and checks the launcher's pipe (fd 3, see launchPipe). A
	// bundle written for another runtime to run has no launcher.
	ex := confine.Exec{Notify: super != nil, ParentFD: launcherFD, ExecAt: execAt, Init: c.init}
	if c.writeBundle != "" {
		ex.ParentFD = 0
	}
	// A payload written to a memfd runs where execve is allowed unless
	// memfds are not executable: that needs vm.memfd_noexec (Linux 6.3+).
	if c.learn == "" && plan.ExecAllowed() && plan.Allows("memfd_create") && !memfdNoexecPossible() {
		return nil, &clawerr.Error{Code: clawerr.EPerm,
			Message: "the whitelist allows execve and memfd_create, and memfds cannot be made non-executable here (vm.memfd_noexec needs Linux 6.3+ and a root caller): a payload written to memory could run",
			Hint:    "run as root on Linux 6.3+, or a whitelist without one of the two"}
	}
	landlock := "off (learn mode records what the agent runs)"
	if c.learn == "" {
		var use bool
		if use, landlock, err = plan.Landlock(c.landlockMode, platform.LandlockABI()); err != nil {
			return nil, err
		}
		if use {
			// Start-only: the agent's files, for its start. Exec allowed:
			// the read-only view, never a writable place.
			ex.Files = execFiles
			if plan.ExecAllowed() {
				if ex.Files, err = view.ExecPlaces(root, execFiles); err != nil {
					return nil, err
				}
			}
		}
	}
	// The filter goes inline: a file in the sandbox would let the agent
	// read its own filter, and with it the exec address.
	args := confine.InitArgs(plan.InlineFilter(), ex, append([]string{cmdPath}, cmdArgs[1:]...))

	user := specs.User{UID: 0, GID: 0}
	if !c.userns {
		user = specs.User{UID: 65534, GID: 65534} // nobody: never host root
	}
	env := []string{"PATH=" + defaultPATH, "HOME=/tmp"}
	if base != nil && base.Process != nil && len(base.Process.Env) > 0 {
		env = base.Process.Env
	}
	spec := &specs.Spec{Version: specs.Version}
	if base != nil {
		spec = base
	}
	spec.Process = &specs.Process{Args: args, Env: append(env, c.env...), Cwd: workdir, User: user, Terminal: c.tty}
	if c.tty {
		spec.Process.Env = append(spec.Process.Env, "TERM=xterm")
	}
	spec.Root = &specs.Root{Path: "rootfs", Readonly: true}
	if root != "" {
		spec.Root.Path = root
	}
	spec.Mounts = append(mounts, specs.Mount{Destination: confine.Dir, Type: "bind", Source: filepath.Join(bundle, "clawos"),
		Options: []string{"bind", "ro", "nosuid", "nodev"}})
	// What the agent writes never runs: every writable mount is noexec,
	// the bundle's own included.
	namespaces.NoExecWritable(spec.Mounts)
	hard, err := confine.HardLimits()
	if err != nil {
		return nil, err
	}
	rootless := os.Geteuid() != 0
	if rootless && c.slice != "" && !namespaces.CgroupV2("/sys/fs/cgroup") {
		return nil, &clawerr.Error{Code: clawerr.EPerm, Message: "P1.5 quotas need cgroups, which a non-root user cannot manage on this cgroup v1 host",
			Hint: "run clawos-run as root for --slice, or on a cgroup v2 host with delegation"}
	}
	if rootless && !c.userns {
		return nil, &usageError{fmt.Errorf("a non-root user needs a user namespace: drop --userns=false")}
	}
	if err := namespaces.Apply(spec, namespaces.Options{Net: netMode, UserNS: c.userns, Hostname: c.hostname, IDMapBase: idMapBase,
		Rootless: rootless, HostUID: uint32(os.Geteuid()), HostGID: uint32(os.Getegid()),
		Level: confine.Level(wl), Slice: c.slice, CgroupV2: namespaces.CgroupV2("/sys/fs/cgroup"),
		NoIOWeight: confine.NoIOWeight(c.slice, l.log), HardLimits: hard}); err != nil {
		return nil, err
	}
	spec.Root.Path = "rootfs"
	if root != "" {
		spec.Root.Path = root
	}
	// A top-level cgroup per sandbox, which runc delete removes whole; none
	// for a non-root caller, who cannot create one on a cgroup v1 host.
	if !rootless {
		spec.Linux.CgroupsPath = "/" + id
	}
	if err := plan.Annotate(spec, runtimeName); err != nil {
		return nil, err
	}
	_, prof, err := plan.ApplyAppArmor(spec, c.apparmorMode, c.apparmorPreset, append(execFiles, cmdPath), l.log)
	if err != nil {
		return nil, err
	}
	return &sandbox{apparmor: prof, id: id, bundle: bundle, spec: spec, stages: stages, agentBPF: plan.AgentBPF, links: links,
		initBin: initBin, ports: plan.Ports, command: cmdArgs, super: super, recording: rec, complaints: comp, landlock: landlock,
		execAllowed: plan.ExecAllowed(), init: c.init, prepared: time.Now()}, nil
}

// baseConfig reads --bundle's config.json, with its root made absolute; nil
// without --bundle. The user's files are only read.
func (l *launcher) baseConfig() (*specs.Spec, error) {
	if l.cfg.bundle == "" {
		return nil, nil
	}
	dir, err := filepath.Abs(l.cfg.bundle)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "--bundle")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "read the bundle's config")
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &clawerr.Error{Code: clawerr.EProto, Message: "the bundle's config.json is not an OCI config", Err: err}
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, clawerr.New(clawerr.EProto, "the bundle's config.json has no root.path")
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(dir, s.Root.Path)
	}
	return &s, nil
}

func withoutSys(ms []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, m := range ms {
		if d := filepath.Clean(m.Destination); d != "/sys" && !strings.HasPrefix(d, "/sys/") {
			out = append(out, m)
		}
	}
	return out
}

// mergeMounts keeps every mount of base and adds those of ours whose
// destination base does not mount.
func mergeMounts(base, ours []specs.Mount) []specs.Mount {
	have := map[string]bool{}
	for _, m := range base {
		have[filepath.Clean(m.Destination)] = true
	}
	out := append([]specs.Mount{}, base...)
	for _, m := range ours {
		if !have[filepath.Clean(m.Destination)] {
			out = append(out, m)
		}
	}
	return out
}

// resolve finds the command in the sandbox's view (resolveInView), or
// inside a root filesystem.
func (l *launcher) resolve(root string, view namespaces.View, sandboxPATH, cmd string) (string, []string, []string, error) {
	if root != "" {
		p, files, err := resolveInRoot(root, cmd)
		if err != nil {
			return "", nil, nil, &notFoundError{err}
		}
		return p, files, nil, nil
	}
	p, files, mounts, err := resolveInView(view, sandboxPATH, cmd)
	if err != nil {
		return "", nil, nil, &notFoundError{err}
	}
	return p, files, mounts, nil
}

// defaultPATH is the agent's PATH unless --env sets one.
const defaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// sandboxPATH is the PATH the agent gets: the last PATH of --env, or
// defaultPATH.
func sandboxPATH(env []string) string {
	path := defaultPATH
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return path
}

// runtime runs a prepared sandbox.
type runtime interface {
	run(ctx context.Context, sb *sandbox, killAfter time.Duration, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	writeBundle(dir string, sb *sandbox) error
}

// runtimeKind names the runtime whose measured needs the container-level
// filter includes: embedded (libcontainer in this binary) or runc (any
// runc-compatible program).
func runtimeKind(flag string) string {
	if flag == "embedded" {
		return "embedded"
	}
	return "runc"
}

func newRuntime(flag, stateDir string, log *logrus.Logger) (runtime, error) {
	if flag == "embedded" {
		return newEmbeddedRuntime(stateDir, log), nil
	}
	return newRuncRuntime(flag, stateDir, log)
}

// findInit locates clawos-init next to this executable; the path is
// resolved before anything enters a namespace.
func findInit() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", clawerr.Wrap(clawerr.EInternal, err, "locate clawos-run")
	}
	p := filepath.Join(filepath.Dir(self), "clawos-init")
	if _, err := os.Stat(p); err != nil {
		return "", &clawerr.Error{Code: clawerr.ENoEnt, Message: "clawos-init is not next to clawos-run", Err: err,
			Hint: "make build puts both in bin/"}
	}
	return p, nil
}

func (l *launcher) printSpec(sb *sandbox) error {
	cfg, err := translate.MarshalSpec(sb.spec)
	if err != nil {
		return err
	}
	agent, err := translate.MarshalSeccomp(sb.stages.Agent.Seccomp)
	if err != nil {
		return err
	}
	out := struct {
		Config      json.RawMessage    `json:"config"`
		AgentStage  json.RawMessage    `json:"agent_stage"`
		AgentBPF    int                `json:"agent_stage_instructions"`
		Origins     []translate.Origin `json:"container_stage_origins"`
		Nftables    string             `json:"nftables,omitempty"`
		RootSymlink map[string]string  `json:"rootfs_symlinks,omitempty"`
		Exec        string             `json:"exec"`
		Landlock    string             `json:"landlock"`
	}{cfg, agent, sb.agentBPF.Len(), sb.stages.Container.Origins, nftText(sb.ports), sb.links, sb.stages.Agent.ExecMode(), sb.landlock}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode spec")
	}
	_, err = fmt.Fprintf(l.stdout, "%s\n", b)
	return err
}

func nftText(p *namespaces.PortPolicy) string {
	if p == nil {
		return ""
	}
	return p.Ruleset()
}
