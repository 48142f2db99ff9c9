// Package sandbox launches ClawOS agents: a Config (what the user asked)
// becomes a Plan (the OCI spec, both seccomp stages, the mounts and the
// port policy, computed without changing anything on the host), which a
// Runtime (runc's libcontainer in this process, or a runc-compatible
// program) runs as a Sandbox: Start, Signal, Wait, Destroy. It holds no
// process-global state: signals reach a sandbox through Signal or the
// channel given to Run, never through a handler of its own. clawos-run is
// its command line.
package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/internal/runcargs"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// idMapBase is the host id of root in a sandbox with a user namespace.
const idMapBase = 100000

// Host is what a plan depends on of the machine and its caller, read once
// by ProbeHost; a test gives its own.
type Host struct {
	EUID, EGID int
	// Cwd and Home are the caller's directory and $HOME, for the default
	// working directory.
	Cwd, Home string
	// Init is clawos-init's path on the host.
	Init string
	// CgroupV2: the host's cgroup hierarchy is unified.
	CgroupV2 bool
	// LandlockABI is the kernel's Landlock ABI version, 0 without.
	LandlockABI int
	// MemfdNoexec: memfds can be made non-executable in the sandbox
	// (vm.memfd_noexec, Linux 6.3+, a root caller).
	MemfdNoexec bool
	// HardLimits are the caller's hard rlimits, by OCI name.
	HardLimits map[string]uint64
	// Rand is the source of the container id and the exec address.
	Rand io.Reader
	// Stdin is where a whitelist "-" is read from.
	Stdin io.Reader
	// Validate validates a whitelist the plan cache does not hold.
	Validate Validator
	// PlanCache is the plan cache's directory, "" for none; Build the
	// identity of the programs its entries are for (plancache.Build).
	PlanCache, Build string
}

// ProbeHost reads the Host of this process, with clawos-init next to this
// executable unless init names it, clawos-policy next to it as the
// validator, and the caller's plan cache (plancache.DefaultDir).
func ProbeHost(init string) (Host, error) {
	h := Host{EUID: os.Geteuid(), EGID: os.Getegid(), Home: os.Getenv("HOME"), Init: init,
		CgroupV2: namespaces.CgroupV2("/sys/fs/cgroup"), LandlockABI: platform.LandlockABI(),
		MemfdNoexec: memfdNoexecPossible(), Rand: rand.Reader, Stdin: os.Stdin}
	var err error
	if h.Cwd, err = os.Getwd(); err != nil {
		return Host{}, clawerr.Wrap(clawerr.EIO, err, "working directory")
	}
	if h.HardLimits, err = confine.HardLimits(); err != nil {
		return Host{}, err
	}
	if h.Init == "" {
		if h.Init, err = findProgram("clawos-init"); err != nil {
			return Host{}, err
		}
	}
	policy, err := findProgram("clawos-policy")
	if err != nil {
		return Host{}, err
	}
	h.Validate = PolicyValidator(policy)
	self, err := os.Executable()
	if err != nil {
		return Host{}, clawerr.Wrap(clawerr.EInternal, err, "locate clawos-run")
	}
	if h.Build, err = plancache.Build(self, policy); err != nil {
		return Host{}, clawerr.Wrap(clawerr.EInternal, err, "plan cache")
	}
	h.PlanCache = plancache.DefaultDir(h.EUID)
	return h, nil
}

// Plan is everything a sandbox is made of, computed from a Config and a
// Host without changing anything on the host: nothing is loaded, written
// or mounted until a Runtime runs it.
type Plan struct {
	ID     string
	Bundle string // the bundle directory
	Spec   *specs.Spec
	Stages *translate.Stages
	// AgentBPF is the agent stage as it is loaded (inline in the spec's
	// process.args).
	AgentBPF *seccomp.Program
	// Links are the symlinks of the default view's root.
	Links map[string]string
	// Ports is enforced in the sandbox's network namespace; nil for none.
	Ports *namespaces.PortPolicy
	// Init is clawos-init on the host, copied into the bundle.
	Init string
	// Command is the agent's command line, as given.
	Command []string
	// Landlock is the state of the Landlock exec restriction, in words.
	Landlock string
	// ExecAllowed: the whitelist lets the agent execute programs of the
	// read-only view (not start-only exec).
	ExecAllowed bool
	// AppArmor is the profile the spec names, loaded when the sandbox
	// starts; nil without one.
	AppArmor *confine.AppArmorProfile
	// PIDOneInit: clawos-init stays as pid 1 (Config.Init).
	PIDOneInit bool
	// Resolv is the sandbox's /etc/resolv.conf under --net pasta, written
	// into the bundle and bound there.
	Resolv []byte
	// Hosts is the sandbox's /etc/hosts under --net pasta, written into
	// the bundle; nil otherwise.
	Hosts []byte

	cfg  Config
	host Host
	// obs receives and collects the calls of a learn or complain run; nil
	// otherwise.
	obs *observation
	// initLoadsContainer: clawos-init loads the container stage
	// (--container-filter), so the embedded runtime does not.
	initLoadsContainer bool
	// prepared is when the plan was made: a kernel log record of a
	// seccomp kill older than that is another process's.
	prepared time.Time
	log      logrus.FieldLogger
}

// NewPlan validates and translates the whitelist and builds the sandbox's
// OCI config for cfg (WithDefaults applied) on host.
func NewPlan(cfg Config, host Host, log logrus.FieldLogger) (*Plan, error) {
	c := cfg.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	bl, err := translate.ParseBaselines(c.Baseline)
	if err != nil {
		return nil, err
	}
	opts := translate.Options{RequireSignature: c.RequireSignature, Baselines: bl, InitReaper: c.Init}
	netMode, err := c.netMode()
	if err != nil {
		return nil, err
	}
	if host.Rand == nil {
		host.Rand = rand.Reader
	}
	if c.PlanCache == "off" {
		host.PlanCache = ""
	} else if c.PlanCache != "" {
		host.PlanCache = c.PlanCache
	}
	wl := learnPlaceholder()
	if c.Learn == "" {
		raw, err := translate.ReadFile(c.Whitelist, host.Stdin)
		if err != nil {
			return nil, err
		}
		if wl, err = host.whitelist(c.Whitelist, raw, opts, log); err != nil {
			return nil, err
		}
	}
	runtimeName := runtimeKind(c.Runtime)
	measured := runtimeName
	if c.MeasureRuntime {
		measured = translate.RuntimeMeasure
		log.Warn("measurement mode: the container-level filter logs every call and kills none; the agent's own filter is exact")
	}
	// Unless the agent is observed (learn, complain), the agent filter lets
	// only clawos-init's own execve through where the whitelist does not
	// allow execve: its pathname sits at a secret address.
	var execAt uint64
	if c.Learn == "" && !c.Complain {
		if execAt, err = confine.ExecAddress(host.Rand); err != nil {
			return nil, err
		}
		opts.ExecStart = execAt
	}
	// Port rules are enforced by Landlock too where the kernel can (ABI
	// 4): beside the network namespace's table, and alone under --net
	// host. Not while observing: learn has no rules, complain must not
	// refuse.
	landlockNet := c.Learn == "" && !c.Complain && confine.LandlockNet(c.Landlock, host.LandlockABI)
	plan, err := confine.NewPlan(wl, opts, measured, netMode != namespaces.NetHost, netMode == namespaces.NetNone, landlockNet)
	if err != nil {
		return nil, err
	}
	var obs *observation
	if c.Learn != "" || c.Complain {
		if obs, err = observe(plan, c.Learn != ""); err != nil {
			return nil, err
		}
		if c.Learn != "" && c.AppArmor != confine.AppArmorOff {
			log.Info("learn mode: no AppArmor profile (there is no whitelist to generate it from)")
			c.AppArmor = confine.AppArmorOff
		}
	}
	if host.Init == "" {
		return nil, clawerr.New(clawerr.ENoEnt, "the host's clawos-init is not known (Host.Init)")
	}

	id := c.ID
	if id == "" {
		var b [6]byte
		if _, err := io.ReadFull(host.Rand, b[:]); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "container id")
		}
		id = "clawos-" + hex.EncodeToString(b[:])
	}
	bundle := bundleDir(c.StateDir, id)
	if c.BundleDir != "" {
		if bundle, err = filepath.Abs(c.BundleDir); err != nil {
			return nil, clawerr.Wrap(clawerr.EIO, err, "bundle directory")
		}
	}
	base, err := baseConfig(c.Bundle)
	if err != nil {
		return nil, err
	}
	cmdArgs := c.Command
	if len(cmdArgs) == 0 && base != nil && base.Process != nil {
		cmdArgs = base.Process.Args
	}
	if len(cmdArgs) == 0 {
		return nil, &UsageError{errNoCommand}
	}
	root := ""
	switch {
	case base != nil:
		root = base.Root.Path
	case c.Rootfs != "":
		if root, err = filepath.Abs(c.Rootfs); err != nil {
			return nil, clawerr.Wrap(clawerr.EIO, err, "--rootfs")
		}
	}
	var binds []namespaces.Bind
	for _, list := range []struct {
		specs    []string
		readOnly bool
	}{{c.ROBinds, true}, {c.Binds, false}} {
		for _, b := range list.specs {
			bd, err := namespaces.ParseBind(b, list.readOnly)
			if err != nil {
				return nil, err
			}
			binds = append(binds, bd)
		}
	}
	workspace := ""
	if c.Workspace != "" {
		ws, err := namespaces.Workspace(c.Workspace)
		if err != nil {
			return nil, err
		}
		binds = append(binds, ws...)
		workspace = ws[0].Dest
	}
	// The command as the sandbox sees it: in its own view and PATH.
	cmdPath, execFiles, execMounts, err := resolve(root, namespaces.View{Binds: binds}, sandboxPATH(c.Env), cmdArgs[0])
	if err != nil {
		return nil, err
	}
	// The working directory: the host's current directory, visible
	// read-only, in the default view; "/" (or the bundle's) in a root
	// filesystem of the user's, where no host path is visible.
	workdir := c.Workdir
	if workdir != "" && root == "" && base == nil {
		if namespaces.Managed(workdir) {
			return nil, usage("--workdir %s would bind the host's directory over the sandbox's own (/proc, /sys, /dev, /tmp, /run, /etc and below); use --chdir %s to start there inside the sandbox, or --ro-bind to share a host directory elsewhere", workdir, workdir)
		}
	}
	switch {
	case c.Chdir != "":
		// A directory of the sandbox's own view: nothing of the host's is
		// bound for it.
		workdir = c.Chdir
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
			workdir = host.Cwd
			if ok, why := namespaces.ImplicitWorkdir(workdir, host.Home); !ok {
				log.WithField("directory", workdir).Warnf("the current directory is not made visible to the agent, which starts in /: %s (share a directory explicitly with --ro-bind or --bind)", why)
				workdir = "/"
			}
		}
	}
	view := namespaces.View{Level: confine.Level(wl), PrivateNet: netMode != namespaces.NetHost, Custom: root != ""}
	if root == "" {
		if c.Chdir == "" && workspace == "" {
			view.Workdir = workdir
		}
		// What the command needs from outside the view, at its real path.
		view.Exec = execMounts
	}
	view.Binds = binds
	view.Tmpfs = c.Tmpfs
	if host.EUID == 0 {
		// Writable binds are idmapped: the files of the bind's owner are
		// the sandbox root's, and what it writes is that owner's (never
		// root: refused); a non-root caller's user namespace maps its own
		// id to root already.
		view.IDMap = &namespaces.IDMap{HostID: idMapBase}
		if c.NoUserNS {
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

	// The agent dies with its launcher: clawos-init arms its parent-death
	// signal and checks the launcher's pipe (fd 3, see launchPipe). A
	// bundle written for another runtime to run has no launcher.
	ex := confine.Exec{Notify: obs != nil, ParentFD: launcherFD, ExecAt: execAt, Init: c.Init}
	if c.BundleOnly {
		ex.ParentFD = 0
	}
	// The embedded runtime leaves the container stage to clawos-init,
	// which loads it before anything else it does (docs/security.md):
	// libcontainer's init would compile it with libseccomp at every start
	// (about 3 ms here). Not where the stage is for another runtime (a
	// bundle), measures the runtime itself, or observes (learn, complain).
	initLoadsContainer := runtimeName == "embedded" && !c.BundleOnly && !c.MeasureRuntime && obs == nil
	if initLoadsContainer {
		if ex.ContainerFilter, err = plan.ContainerFilter(); err != nil {
			return nil, err
		}
	}
	// A payload written to a memfd runs where execve is allowed unless
	// memfds are not executable: that needs vm.memfd_noexec (Linux 6.3+).
	if c.Learn == "" && plan.ExecAllowed() && plan.Allows("memfd_create") && !host.MemfdNoexec {
		return nil, &clawerr.Error{Code: clawerr.EPerm,
			Message: "the whitelist allows execve and memfd_create, and memfds cannot be made non-executable here (vm.memfd_noexec needs Linux 6.3+ and a root caller): a payload written to memory could run",
			Hint:    "run as root on Linux 6.3+, or a whitelist without one of the two"}
	}
	landlock := "off (learn mode records what the agent runs)"
	if c.Learn == "" {
		var use bool
		if use, landlock, err = plan.Landlock(c.Landlock, host.LandlockABI); err != nil {
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
	if landlockNet && plan.Ports != nil {
		ex.Ports = plan.Ports
		landlock += "; " + portRights(plan.Ports) + " (Landlock network rules)"
	}
	// The filter goes inline: a file in the sandbox would let the agent
	// read its own filter, and with it the exec address.
	args := confine.InitArgs(plan.InlineFilter(), ex, append([]string{cmdPath}, cmdArgs[1:]...))

	user := specs.User{UID: 0, GID: 0}
	if c.NoUserNS {
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
	spec.Process = &specs.Process{Args: args, Env: append(env, c.Env...), Cwd: workdir, User: user, Terminal: c.TTY}
	if c.TTY {
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
	var hosts, resolv []byte
	if netMode == namespaces.NetPasta {
		// The host's loopback services are reachable at HostAlias: pasta
		// maps the gateway (the host's default gateway, which it copies) to
		// the host's loopback.
		gw, err := platform.DefaultGateway("/proc/self/net/route")
		if err != nil {
			return nil, &clawerr.Error{Code: clawerr.EIO, Message: "--net pasta: the host has no IPv4 default route for pasta to copy", Err: err}
		}
		own, _ := os.ReadFile("/etc/hosts")
		hosts = hostsFile(own, gw)
		// DNS goes to pasta's forwarding address, which reaches the
		// host's own resolver wherever it listens (127.0.0.53 included).
		ownResolv, _ := os.ReadFile("/etc/resolv.conf")
		resolv = resolvFile(ownResolv)
		etcFromBundle(spec, bundle, "hosts")
		etcFromBundle(spec, bundle, "resolv.conf")
	}
	rootless := host.EUID != 0
	if rootless && c.Slice != "" && !host.CgroupV2 {
		return nil, &clawerr.Error{Code: clawerr.EPerm, Message: "P1.5 quotas need cgroups, which a non-root user cannot manage on this cgroup v1 host",
			Hint: "run clawos-run as root for --slice, or on a cgroup v2 host with delegation"}
	}
	if rootless && c.NoUserNS {
		return nil, usage("a non-root user needs a user namespace: drop --userns=false")
	}
	if err := namespaces.Apply(spec, namespaces.Options{Net: netMode, UserNS: !c.NoUserNS, Hostname: c.Hostname, IDMapBase: idMapBase,
		Rootless: rootless, HostUID: uint32(host.EUID), HostGID: uint32(host.EGID),
		Level: confine.Level(wl), Slice: c.Slice, CgroupV2: host.CgroupV2,
		NoIOWeight: confine.NoIOWeight(c.Slice, log), HardLimits: host.HardLimits}); err != nil {
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
	_, prof, err := plan.ApplyAppArmor(spec, c.AppArmor, c.AppArmorPreset, append(execFiles, cmdPath), log)
	if err != nil {
		return nil, err
	}
	return &Plan{AppArmor: prof, ID: id, Bundle: bundle, Spec: spec, Stages: plan.Stages, AgentBPF: plan.AgentBPF, Links: links,
		Init: host.Init, Ports: plan.Ports, Command: cmdArgs, obs: obs, Landlock: landlock,
		ExecAllowed: plan.ExecAllowed(), PIDOneInit: c.Init, Hosts: hosts, Resolv: resolv, initLoadsContainer: initLoadsContainer,
		prepared: time.Now(), cfg: c, host: host, log: log}, nil
}

// baseConfig reads the config.json of the bundle directory, with its root
// made absolute; nil without one. The user's files are only read.
func baseConfig(bundle string) (*specs.Spec, error) {
	if bundle == "" {
		return nil, nil
	}
	dir, err := filepath.Abs(bundle)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "--bundle")
	}
	s, err := runcargs.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, clawerr.New(clawerr.EProto, "the bundle's config.json has no root.path")
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(dir, s.Root.Path)
	}
	return s, nil
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

// ErrNotFound is what a failure to find the agent's command in the
// sandbox's view matches (errors.Is): clawos-run exits 127 for it.
var ErrNotFound = errors.New("command not found")

type notFoundError struct{ error }

func (n *notFoundError) Unwrap() error        { return n.error }
func (n *notFoundError) Is(target error) bool { return target == ErrNotFound }

// resolve finds the command in the sandbox's view (resolveInView), or
// inside a root filesystem.
func resolve(root string, view namespaces.View, sandboxPATH, cmd string) (string, []string, []string, error) {
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

// PrivateNet reports whether the sandbox has a network namespace of its
// own, where the port policy's nftables table goes (not --net host).
func (p *Plan) PrivateNet() bool { return p.cfg.Net != string(namespaces.NetHost) }

// Pasta reports whether pasta gives the namespace egress (--net pasta).
func (p *Plan) Pasta() bool { return p.cfg.Net == string(namespaces.NetPasta) }

// PrintSpec writes what the plan would run as JSON: the OCI config, the
// agent stage, the container stage's origins, the port rules, the rootfs
// symlinks and the exec and Landlock modes.
func (p *Plan) PrintSpec(w io.Writer) error {
	if err := confine.CheckContainer(p.Stages); err != nil {
		return err
	}
	cfg, err := translate.MarshalSpec(p.Spec)
	if err != nil {
		return err
	}
	agent, err := translate.MarshalSeccomp(p.Stages.Agent.Seccomp)
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
	}{cfg, agent, p.AgentBPF.Len(), p.Stages.Container.Origins, nftText(p.Ports), p.Links, p.Stages.Agent.ExecMode(), p.Landlock}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode spec")
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// portRights says what Landlock's network rules allow of policy p.
func portRights(p *namespaces.PortPolicy) string {
	var parts []string
	for _, r := range []struct {
		what  string
		ports []int
	}{{"TCP connect", p.Connect}, {"TCP bind", p.Bind}} {
		switch {
		case r.ports == nil:
		case len(r.ports) == 0:
			parts = append(parts, r.what+" to no port")
		default:
			s := make([]string, len(r.ports))
			for i, v := range r.ports {
				s[i] = fmt.Sprint(v)
			}
			parts = append(parts, r.what+" to port "+strings.Join(s, ", ")+" only")
		}
	}
	return strings.Join(parts, "; ")
}

func nftText(p *namespaces.PortPolicy) string {
	if p == nil {
		return ""
	}
	return p.Ruleset()
}

// etcFromBundle makes the sandbox's /etc/NAME the bundle's file NAME: the
// mount of the host's file, where the view has one, is redirected.
func etcFromBundle(spec *specs.Spec, bundle, name string) {
	src, dst := filepath.Join(bundle, name), "/etc/"+name
	for i := range spec.Mounts {
		if spec.Mounts[i].Destination == dst {
			spec.Mounts[i].Source = src
			return
		}
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: src,
		Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
}
