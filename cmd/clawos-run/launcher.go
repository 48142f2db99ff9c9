package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/apparmor"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// Paths inside the sandbox: inside its own /dev tmpfs, so that no mount
// point is ever created in a root filesystem the user owns.
const (
	sandboxDir  = "/dev/.clawos"
	sandboxInit = sandboxDir + "/clawos-init"
	sandboxBPF  = sandboxDir + "/agent.bpf"
	idMapBase   = 100000
)

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
	ports    *portPolicy // enforced in the sandbox's network namespace; nil for none
	initBin  string      // host path of clawos-init
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
	return rt.run(ctx, sb, l.cfg.killAfter, l.stdin, l.stdout, l.stderr)
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
	raw, err := translate.ReadFile(c.whitelist, l.stdin)
	if err != nil {
		return nil, err
	}
	v, err := translate.NewValidator()
	if err != nil {
		return nil, err
	}
	wl, rep := v.Validate(raw, opts)
	for _, d := range rep.Warnings() {
		l.log.WithFields(logrus.Fields{"path": d.Path, "check": d.Check}).Warn(d.Message)
	}
	if err := rep.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.whitelist, err)
	}
	runtimeName := runtimeKind(c.runtime)
	measured := runtimeName
	if c.measureRuntime {
		measured = "runc" // any measured runtime; its container stage is replaced below
	}
	stages, err := translate.TwoStage(wl, opts, measured)
	if err != nil {
		return nil, err
	}
	if c.measureRuntime {
		l.log.Warn("measurement mode: the container-level filter logs every call and kills none; the agent's own filter is exact")
		stages.Container.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActLog,
			Architectures: stages.Agent.Seccomp.Architectures, Flags: []specs.LinuxSeccompFlag{}}
	}
	if stages.Agent.Network.Restricted() && netMode == namespaces.NetHost {
		return nil, &clawerr.Error{Code: clawerr.EPerm, Path: stages.Agent.Network.Sources[0],
			Message: "the whitelist restricts ports, which cannot be enforced in the host's network namespace",
			Hint:    "use --net loopback or --net none"}
	}
	agentBPF, err := seccomp.Compile(stages.Agent.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("agent stage: %w", err)
	}
	if _, err := seccomp.Compile(stages.Container.Seccomp); err != nil {
		return nil, fmt.Errorf("container stage: %w", err)
	}
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
	cmdPath, execFiles, err := l.resolve(root, cmdArgs[0])
	if err != nil {
		return nil, err
	}
	// The working directory: the host's current directory, visible
	// read-only, in the default view; "/" (or the bundle's) in a root
	// filesystem of the user's, where no host path is visible.
	workdir := c.workdir
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
		}
	}
	view := namespaces.View{Level: levelOf(wl), PrivateNet: netMode != namespaces.NetHost, Custom: root != ""}
	if root == "" {
		view.Workdir = workdir
		view.Exec = append(execFiles, cmdPath)
	}
	for _, b := range c.roBinds {
		bd, err := namespaces.ParseBind(b, true)
		if err != nil {
			return nil, err
		}
		view.Binds = append(view.Binds, bd)
	}
	for _, b := range c.binds {
		bd, err := namespaces.ParseBind(b, false)
		if err != nil {
			return nil, err
		}
		view.Binds = append(view.Binds, bd)
	}
	view.Tmpfs = c.tmpfs
	mounts, links, err := namespaces.Mounts(view)
	if err != nil {
		return nil, err
	}
	if base != nil {
		// The bundle's own mounts first; ours (proc, dev, tmp, binds) only
		// where the bundle has none at that destination. The security level
		// decides about /sys, whatever the bundle says.
		baseMounts := base.Mounts
		if !namespaces.Sysfs(levelOf(wl)) {
			baseMounts = withoutSys(baseMounts)
		}
		mounts = mergeMounts(baseMounts, mounts)
	}

	args := []string{sandboxInit, sandboxBPF}
	if landlockABI() > 0 {
		for _, f := range execFiles {
			args = append(args, "--exec", f)
		}
	} else {
		l.log.Warn("Landlock is not available in this kernel: the agent may execve any file its whitelist's execve rule allows")
	}
	args = append(append(args, "--"), cmdPath)
	args = append(args, cmdArgs[1:]...)

	user := specs.User{UID: 0, GID: 0}
	if !c.userns {
		user = specs.User{UID: 65534, GID: 65534} // nobody: never host root
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"}
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
	spec.Mounts = append(mounts, specs.Mount{Destination: sandboxDir, Type: "bind", Source: filepath.Join(bundle, "clawos"),
		Options: []string{"bind", "ro", "nosuid", "nodev"}})
	hard, err := hardLimits()
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
		Level: levelOf(wl), Slice: c.slice, CgroupV2: namespaces.CgroupV2("/sys/fs/cgroup"), HardLimits: hard}); err != nil {
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
	if err := translate.ApplyToSpec(spec, wl, stages.Container); err != nil {
		return nil, err
	}
	if err := l.applyAppArmor(spec, wl, stages.Agent, append(execFiles, cmdPath)); err != nil {
		return nil, err
	}
	agentDigest, err := translate.ProfileDigest(stages.Agent.Seccomp)
	if err != nil {
		return nil, err
	}
	spec.Annotations["io.clawos.agent-profile-digest"] = agentDigest
	spec.Annotations["io.clawos.runtime"] = runtimeName

	sb := &sandbox{id: id, bundle: bundle, spec: spec, stages: stages, agentBPF: agentBPF, links: links, initBin: initBin}
	switch {
	case netMode == namespaces.NetNone:
		sb.ports = &portPolicy{connect: []int{}, bind: []int{}}
	case stages.Agent.Network.Restricted():
		// A restriction lists at least one port (validation refuses an
		// empty allowed_ports), so nil means "not restricted".
		sb.ports = &portPolicy{connect: stages.Agent.Network.ConnectPorts, bind: stages.Agent.Network.BindPorts}
	}
	return sb, nil
}

func levelOf(wl *translate.Whitelist) string {
	if wl.Metadata != nil {
		return wl.Metadata.SecurityLevel
	}
	return ""
}

// applyAppArmor generates the sandbox's AppArmor profile, compiles it,
// loads it in enforce mode and names it in the config, when the kernel has
// AppArmor. --apparmor auto warns where it has not; required refuses.
func (l *launcher) applyAppArmor(spec *specs.Spec, wl *translate.Whitelist, agent *translate.Profile, execFiles []string) error {
	mode := l.cfg.apparmorMode
	switch mode {
	case "off":
		return nil
	case "auto", "required":
	default:
		return &usageError{fmt.Errorf("--apparmor %q: want auto, required or off", mode)}
	}
	name := "clawos-" + strings.SplitN(wl.WhitelistID, "-", 2)[0]
	if l.cfg.apparmorPreset != "" {
		name = l.cfg.apparmorPreset
	}
	prof, err := apparmor.Generate(apparmor.Input{Name: name, Preset: l.cfg.apparmorPreset, Agent: agent, Mounts: spec.Mounts, Exec: execFiles})
	if err != nil {
		return err
	}
	text, err := prof.Render()
	if err != nil {
		return err
	}
	if err := apparmor.Enabled("/sys/module/apparmor/parameters/enabled", "/sys/kernel/security/apparmor"); err != nil {
		if mode == "required" {
			return &clawerr.Error{Code: clawerr.EPerm, Message: "--apparmor required, but the kernel has no AppArmor", Err: err}
		}
		l.log.WithError(err).Warn("no AppArmor profile applied (--apparmor auto)")
		return nil
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return &clawerr.Error{Code: clawerr.ENoEnt, Message: "apparmor_parser not found", Err: err, Hint: "apt-get install apparmor, or --apparmor off"}
	}
	if err := apparmor.Load(parser, text, false); err != nil {
		return err
	}
	spec.Process.ApparmorProfile = prof.Name
	return nil
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

// resolve finds the command on the host, or inside a root filesystem.
func (l *launcher) resolve(root, cmd string) (string, []string, error) {
	if root != "" {
		p, files, err := resolveInRoot(root, cmd)
		if err != nil {
			return "", nil, &notFoundError{err}
		}
		return p, files, nil
	}
	p, files, err := resolveCommand(cmd)
	if err != nil {
		return "", nil, &notFoundError{err}
	}
	return p, files, nil
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
	}{cfg, agent, sb.agentBPF.Len(), sb.stages.Container.Origins, nftText(sb.ports), sb.links}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode spec")
	}
	_, err = fmt.Fprintf(l.stdout, "%s\n", b)
	return err
}

func nftText(p *portPolicy) string {
	if p == nil {
		return ""
	}
	return p.ruleset()
}

// landlockABI returns the kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	const createRulesetVersion = 1
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// hardLimits are this process's hard rlimits, by OCI name.
func hardLimits() (map[string]uint64, error) {
	out := map[string]uint64{}
	for name, res := range map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC} {
		var r unix.Rlimit
		if err := unix.Getrlimit(res, &r); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "getrlimit "+name)
		}
		out[name] = r.Max
	}
	return out, nil
}
