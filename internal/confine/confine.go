// Package confine composes the confinement of one ClawOS agent from its
// whitelist: validation, the two seccomp stages and the agent's compiled
// filter, the second stage's command line, the port policy, the AppArmor
// profile and the annotations that record what was applied. clawos-run and
// clawos-hook both use it, so that a whitelist means the same in a sandbox
// of clawos-run's and in a container of podman's, containerd's or runc's.
package confine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/apparmor"
	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/annotations"
	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// Paths inside the sandbox: inside its own /dev tmpfs, so that no mount
// point is ever created in a root filesystem someone else owns.
const (
	Dir  = "/dev/.clawos"
	Init = Dir + "/clawos-init"
)

// ExecAddress picks a secret address for clawos-init's --exec-at at random
// from r: 8-byte aligned, in the first of two pages within
// [0x2000_0000_0000, 0x6000_0000_0000), about 2^43 choices, in every x86_64
// and aarch64 (48-bit) address space and clear of where a static init and
// its stack live, and of AddressSanitizer's shadow and allocator (below
// 0x1001_0000_0000 and from 0x6000_0000_0000: a sanitized test build).
func ExecAddress(r io.Reader) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "random exec address")
	}
	const lo, hi = 0x2000_0000_0000, 0x6000_0000_0000
	v := binary.LittleEndian.Uint64(b[:])
	page := lo + (v%((hi-lo)/4096))*4096
	return page + (v>>52)%512*8, nil
}

// Annotations written on a confined container's config.
const (
	AnnotationAgentDigest = runcargs.AnnotationAgentDigest
	AnnotationRuntime     = annotations.Runtime
)

// Plan is a whitelist translated for one runtime.
type Plan struct {
	Whitelist *translate.Whitelist
	Stages    *translate.Stages
	AgentBPF  *seccomp.Program
	// Ports is enforced in the sandbox's network namespace; nil when the
	// whitelist restricts nothing.
	Ports *namespaces.PortPolicy
	// containerFilter is ContainerFilter's result, compiled once.
	containerFilter string
}

// NewPlan translates wl into its two stages for runtime ("embedded" or
// "runc", see translate.Runtimes) and compiles both. privateNet tells
// whether the sandbox has a network namespace of its own: port restrictions
// cannot be enforced in the host's, so a whitelist with them is refused
// there. With noNet, the namespace passes nothing at all (--net none).
//
// In the host's network namespace (privateNet false) port restrictions are
// enforced by Landlock alone: landlockNet says the caller will pass them to
// clawos-init (Exec.Ports, where LandlockNet holds); without it such a
// whitelist is refused there. Landlock restricts TCP only, so the agent's
// sockets are then limited to TCP by seccomp (translate.Options.TCPOnly).
func NewPlan(wl *translate.Whitelist, opts translate.Options, runtime string, privateNet, noNet, landlockNet bool) (*Plan, error) {
	if !privateNet && landlockNet {
		opts.TCPOnly = true
	}
	stages, err := translate.TwoStage(wl, opts, runtime)
	if err != nil {
		return nil, err
	}
	netw := stages.Agent.Network
	if netw.Restricted() && !privateNet && !landlockNet {
		return nil, &clawerr.Error{Code: clawerr.EPerm, Path: netw.Sources[0],
			Message: "the whitelist restricts ports, which cannot be enforced in the host's network namespace without Landlock's network rules (ABI 4, Linux 6.7), which this kernel lacks or Landlock mode off excludes",
			Hint:    "give the sandbox a network namespace of its own (clawos-run: --net loopback or --net none), or run on Linux 6.7+"}
	}
	bpf, err := seccomp.Compile(stages.Agent.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("agent stage: %w", err)
	}
	p := &Plan{Whitelist: wl, Stages: stages, AgentBPF: bpf}
	switch {
	case noNet:
		p.Ports = &namespaces.PortPolicy{Connect: []int{}, Bind: []int{}}
	case netw.Restricted():
		// A restriction lists at least one port (validation refuses an
		// empty allowed_ports), so nil means "not restricted".
		p.Ports = &namespaces.PortPolicy{Connect: netw.ConnectPorts, Bind: netw.BindPorts}
	}
	return p, nil
}

// CheckContainer compiles st's container stage with libseccomp, to refuse
// a config whose stage does not compile before it leaves for an engine or
// a file. A launcher that hands the stage to its runtime at once need not:
// the runtime compiles and loads it before the agent's first instruction,
// failing the start where it cannot load it, and leaving out a call name
// its libseccomp does not know (runc and libcontainer do: the stage then
// allows less, never more). The agent stage, which clawos-init loads as
// compiled here, is always compiled by NewPlan.
func CheckContainer(st *translate.Stages) error {
	if _, err := seccomp.Compile(st.Container.Seccomp); err != nil {
		return fmt.Errorf("container stage: %w", err)
	}
	return nil
}

// InlineFilter is the agent's filter as clawos-init's FILTER argument, for
// a container that has no file of ours to read it from.
func (p *Plan) InlineFilter() string { return "hex:" + hex.EncodeToString(p.AgentBPF.Bytes()) }

// ContainerFilter compiles the container stage as clawos-init's
// --container-filter argument, for a launcher whose runtime does not load
// it (Exec.ContainerFilter). It compiles once per plan (a plan is not for
// concurrent use).
func (p *Plan) ContainerFilter() (string, error) {
	if p.containerFilter == "" {
		bpf, err := seccomp.Compile(p.Stages.Container.Seccomp)
		if err != nil {
			return "", fmt.Errorf("container stage: %w", err)
		}
		p.containerFilter = "hex:" + hex.EncodeToString(bpf.Bytes())
	}
	return p.containerFilter, nil
}

// Exec says which files the agent may execute once clawos-init has
// restricted it with Landlock: Files (paths inside the sandbox), or, with
// Cmd, the command and its interpreters as clawos-init finds them inside
// the sandbox. Neither restricts nothing (a kernel without Landlock).
type Exec struct {
	Files []string
	Cmd   bool
	// ContainerFilter, when set, is the container-level filter as
	// clawos-init's FILTER argument (ContainerFilter): clawos-init loads
	// it first, for a runtime that does not (--container-filter).
	ContainerFilter string
	// Notify: the filter reports to a supervisor (clawos-run --learn and
	// --complain): clawos-init loads it with a listener (--notify).
	Notify bool
	// ParentFD, when non-zero, is the descriptor of a pipe whose write end
	// the launcher holds: clawos-init arms a parent-death SIGKILL, refuses
	// to start the agent if the launcher is already gone, and starts it
	// only once the launcher has written its go-ahead there (--parent-fd).
	ParentFD int
	// ExecAt, when non-zero, is the secret address at which clawos-init
	// places the pathname of the agent's execve (--exec-at); the plan must
	// have been made with the same translate.Options.ExecStart.
	ExecAt uint64
	// Init: clawos-init stays as pid 1 to reap and forward signals, the
	// agent its child (--init); the plan must have been made with
	// translate.Options.InitReaper.
	Init bool
	// Ports, when set, are enforced by Landlock's network rules as well
	// (--tcp-connect, --tcp-bind: TCP connect and bind to these ports
	// only; a nil list leaves that right alone, an empty one allows no
	// port). clawos-init refuses to start without them: set only where
	// the kernel has Landlock ABI 4 (LandlockNet).
	Ports *namespaces.PortPolicy
}

// LandlockNetABI is the first Landlock ABI with network rules (Linux 6.7).
const LandlockNetABI = 4

// LandlockNet reports whether port rules can be enforced by Landlock as
// well, in Landlock mode mode on a kernel of Landlock ABI abi.
func LandlockNet(mode string, abi int) bool { return mode != LandlockOff && abi >= LandlockNetABI }

// InitArgs is the container's process.args: clawos-init, which loads
// filter (a path in the sandbox or InlineFilter) and execs cmd.
func InitArgs(filter string, ex Exec, cmd []string) []string {
	args := []string{Init, filter}
	if ex.ContainerFilter != "" {
		args = append(args, "--container-filter", ex.ContainerFilter)
	}
	for _, f := range ex.Files {
		args = append(args, "--exec", f)
	}
	if ex.Cmd {
		args = append(args, "--exec-cmd")
	}
	if ex.Notify {
		args = append(args, "--notify")
	}
	if ex.ParentFD > 0 {
		args = append(args, "--parent-fd", strconv.Itoa(ex.ParentFD))
	}
	if ex.ExecAt != 0 {
		args = append(args, "--exec-at", "0x"+strconv.FormatUint(ex.ExecAt, 16))
	}
	if ex.Init {
		args = append(args, "--init")
	}
	if p := ex.Ports; p != nil {
		for _, l := range []struct {
			flag  string
			ports []int
		}{{"--tcp-connect", p.Connect}, {"--tcp-bind", p.Bind}} {
			if l.ports != nil {
				s := make([]string, len(l.ports))
				for i, v := range l.ports {
					s[i] = strconv.Itoa(v)
				}
				args = append(args, l.flag, strings.Join(s, ","))
			}
		}
	}
	return append(append(args, "--"), cmd...)
}

// InitMount mounts the host's clawos-init read-only at Init.
func InitMount(initBin string) specs.Mount {
	return specs.Mount{Destination: Init, Type: "bind", Source: initBin, Options: []string{"bind", "ro", "nosuid", "nodev"}}
}

// Annotate sets the container-level filter and no_new_privs on spec and
// records the whitelist, both stages' digests, the network policy and the
// runtime in its annotations.
func (p *Plan) Annotate(spec *specs.Spec, runtime string) error {
	if err := translate.ApplyToSpec(spec, p.Whitelist, p.Stages.Container); err != nil {
		return err
	}
	d, err := translate.ProfileDigest(p.Stages.Agent.Seccomp)
	if err != nil {
		return err
	}
	spec.Annotations[AnnotationAgentDigest] = d
	spec.Annotations[AnnotationRuntime] = runtime
	return nil
}

// Level is the whitelist's security level ("" for strict).
func Level(wl *translate.Whitelist) string {
	if wl.Metadata != nil {
		return wl.Metadata.SecurityLevel
	}
	return ""
}

// Landlock modes, as AppArmor's: auto applies the exec restriction where
// the kernel has Landlock and refuses where it does not and the plan's
// guarantees depend on it; required refuses without it; off applies none.
const (
	LandlockAuto     = "auto"
	LandlockRequired = "required"
	LandlockOff      = "off"
)

// ExecAllowed reports whether the agent may execute programs after its
// start (translate.Profile.ExecAllowed of its stage).
func (p *Plan) ExecAllowed() bool { return p.Stages.Agent.ExecAllowed() }

// Allows reports whether the agent stage allows call at all (under any
// condition).
func (p *Plan) Allows(call string) bool {
	for _, o := range p.Stages.Agent.Origins {
		if o.Syscall == call {
			return strings.HasPrefix(o.Verdict, "allow")
		}
	}
	return false
}

// Landlock decides clawos-init's Landlock exec restriction for mode on a
// kernel whose Landlock ABI is abi (0: none): whether to apply it, and the
// state to record. What the agent may execute depends on Landlock only
// where the plan lets it execute programs (ExecAllowed): there, auto
// refuses without Landlock instead of running with any executable allowed;
// with start-only exec, seccomp alone keeps every other program out.
func (p *Plan) Landlock(mode string, abi int) (bool, string, error) {
	switch mode {
	case LandlockOff:
		return false, "off", nil
	case LandlockAuto, LandlockRequired:
	default:
		return false, "", &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("Landlock mode %q: want auto, required or off", mode)}
	}
	if abi > 0 {
		return true, fmt.Sprintf("applied (ABI %d)", abi), nil
	}
	switch {
	case mode == LandlockRequired:
		return false, "", &clawerr.Error{Code: clawerr.EPerm, Message: "Landlock is required, but this kernel has no Landlock",
			Hint: "a kernel with Landlock (5.13+, in the lsm= list), or Landlock mode off"}
	case p.ExecAllowed():
		return false, "", &clawerr.Error{Code: clawerr.EPerm,
			Message: "the whitelist allows execve, and what the agent may execute is restricted with Landlock, which this kernel lacks: the agent would run with every program executable",
			Hint:    "a kernel with Landlock (5.13+), a whitelist that does not allow execve, or Landlock mode off to accept it"}
	}
	return false, "unavailable (not needed: no program but the agent can start, by seccomp)", nil
}

// HardLimits are this process's hard rlimits, by OCI name.
func HardLimits() (map[string]uint64, error) {
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

// AppArmor modes: auto applies a profile where the kernel has AppArmor and
// warns elsewhere; required refuses without it; off applies none.
const (
	AppArmorAuto     = "auto"
	AppArmorRequired = "required"
	AppArmorOff      = "off"
)

// AppArmor outcomes, for logs and audit records.
const (
	AppArmorApplied     = "applied"
	AppArmorUnavailable = "unavailable"
	AppArmorDisabled    = "off"
)

// AppArmorProfile is a sandbox's generated profile: Name is what the spec
// names, Text what the kernel must have loaded under it.
type AppArmorProfile struct {
	Name, Text string
}

// ApplyAppArmor generates the sandbox's AppArmor profile from the agent
// stage, the mounts of spec and the agent's files, and names it in spec
// (process.apparmorProfile) where the kernel has AppArmor (mode auto) or
// must have it (required: refused without). It does not load it: the
// caller does when the sandbox starts (LoadAppArmor), so that printing a
// spec changes nothing in the kernel. The profile's name ends in a digest
// of its text: two sandboxes of one whitelist with different mounts have
// two profiles, and one that replaced the other in the kernel would confine
// the first by the second's rules. A P1.6 preset keeps its name. It returns
// the state to record and the profile (nil unless applied).
func (p *Plan) ApplyAppArmor(spec *specs.Spec, mode, preset string, execFiles []string, log logrus.FieldLogger) (string, *AppArmorProfile, error) {
	switch mode {
	case AppArmorOff:
		return AppArmorDisabled, nil, nil
	case AppArmorAuto, AppArmorRequired:
	default:
		return "", nil, &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("AppArmor mode %q: want auto, required or off", mode)}
	}
	// A preset the user named wrong is refused whatever the kernel; the
	// profile itself is generated only where the kernel can load it (0.3
	// ms of every start on a kernel without AppArmor).
	if err := apparmor.CheckPreset(preset); err != nil {
		return "", nil, err
	}
	if err := apparmor.Enabled("/sys/module/apparmor/parameters/enabled", AppArmorFS); err != nil {
		if mode == AppArmorRequired {
			return "", nil, &clawerr.Error{Code: clawerr.EPerm, Message: "AppArmor is required, but the kernel has no AppArmor", Err: err}
		}
		// Every run on such a kernel would say it: clawos-run --check does
		// once, the audit record and --print-spec say it per sandbox.
		log.WithError(err).Debug("no AppArmor profile applied (AppArmor mode auto)")
		return AppArmorUnavailable, nil, nil
	}
	base := "clawos-" + strings.SplitN(p.Whitelist.WhitelistID, "-", 2)[0]
	if preset != "" {
		base = preset
	}
	prof, err := apparmor.Generate(apparmor.Input{Name: base, Preset: preset, Agent: p.Stages.Agent, Mounts: spec.Mounts, Exec: execFiles})
	if err != nil {
		return "", nil, err
	}
	text, err := prof.Render()
	if err != nil {
		return "", nil, err
	}
	if preset == "" {
		sum := sha256.Sum256([]byte(text))
		prof.Name = base + "-" + hex.EncodeToString(sum[:6])
		if text, err = prof.Render(); err != nil {
			return "", nil, err
		}
	}
	spec.Process.ApparmorProfile = prof.Name
	return AppArmorApplied, &AppArmorProfile{Name: prof.Name, Text: text}, nil
}

// AppArmorFS is the kernel's AppArmor policy interface.
const AppArmorFS = "/sys/kernel/security/apparmor"

// LoadAppArmor loads (or replaces) the profile in the kernel.
func LoadAppArmor(p *AppArmorProfile) error {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return &clawerr.Error{Code: clawerr.ENoEnt, Message: "apparmor_parser not found", Err: err, Hint: "apt-get install apparmor, or AppArmor mode off"}
	}
	return apparmor.Load(parser, p.Text, false)
}

// NoIOWeight tells whether the io.weight of P1.5 slice must be left out on
// this host, which cannot weight block IO (platform.IOWeight), and warns
// on log when the slice has one: a proportional share, not a limit, that
// the kernel has no means to apply here.
func NoIOWeight(slice string, log logrus.FieldLogger) bool {
	if slice == "" || platform.IOWeight("/sys/fs/cgroup", "/sys/block") {
		return false
	}
	if r, err := namespaces.SliceResources(slice, false); err == nil && r.BlockIO != nil {
		log.WithField("slice", slice).Warn("the slice's io.weight is not applied: this host cannot weight block IO (cgroup v1 without the BFQ scheduler, or cgroup v2 without the io controller's cost model or BFQ)")
	}
	return true
}
