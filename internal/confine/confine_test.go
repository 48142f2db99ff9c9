package confine

import (
	"crypto/rand"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// TestExecAddress checks the range and alignment of the secret exec
// addresses, and that two draws differ.
func TestExecAddress(t *testing.T) {
	seen := map[uint64]bool{}
	for i := 0; i < 10000; i++ {
		a, err := ExecAddress(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if a%8 != 0 || a < 0x2000_0000_0000 || a+4096+4096 > 0x6000_0000_0000 || a&4095 > 4088 {
			t.Fatalf("address %#x out of range or misaligned", a)
		}
		seen[a] = true
	}
	if len(seen) < 9990 {
		t.Errorf("only %d distinct addresses in 10000 draws", len(seen))
	}
}

// TestLandlockMode checks the Landlock decision: required refuses without
// Landlock; auto refuses without it only where the agent may execute
// programs (the whitelist allows execve, or no start-only exec is in
// place), and runs on seccomp alone with start-only exec; off never
// applies it; an unknown mode is refused.
func TestLandlockMode(t *testing.T) {
	raw, err := os.ReadFile("../../examples/ironclaw.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	wl, rep := validator(t).Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	plan := func(start uint64) *Plan {
		p, err := NewPlan(wl, translate.Options{Baselines: []string{"start"}, ExecStart: start}, "runc", true, false, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	startOnly, execAllowed := plan(0x2000_0000_1000), plan(0)
	if execAllowed.ExecAllowed() == false || startOnly.ExecAllowed() {
		t.Fatalf("ExecAllowed: start-only %v, plain %v", startOnly.ExecAllowed(), execAllowed.ExecAllowed())
	}
	for _, c := range []struct {
		name    string
		p       *Plan
		mode    string
		abi     int
		use     bool
		wantErr bool
	}{
		{"auto with Landlock", startOnly, LandlockAuto, 7, true, false},
		{"auto without Landlock, start-only exec", startOnly, LandlockAuto, 0, false, false},
		{"auto without Landlock, exec allowed", execAllowed, LandlockAuto, 0, false, true},
		{"required without Landlock", startOnly, LandlockRequired, 0, false, true},
		{"required with Landlock", execAllowed, LandlockRequired, 1, true, false},
		{"off", execAllowed, LandlockOff, 7, false, false},
		{"unknown mode", startOnly, "maybe", 7, false, true},
	} {
		use, state, err := c.p.Landlock(c.mode, c.abi)
		if use != c.use || (err != nil) != c.wantErr {
			t.Errorf("%s: %v %q %v; want use %v, error %v", c.name, use, state, err, c.use, c.wantErr)
		}
		if err == nil && state == "" {
			t.Errorf("%s: no state to record", c.name)
		}
	}
}

func ironclaw(t *testing.T) *translate.Whitelist {
	t.Helper()
	raw, err := os.ReadFile("../../examples/ironclaw.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	wl, rep := validator(t).Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil || rep.Signature != translate.SignatureValid {
		t.Fatalf("validate: %v (signature %q)", err, rep.Signature)
	}
	return wl
}

// TestNewPlan checks the port policy a plan carries in each network mode:
// the whitelist's ports in a namespace of its own, none at all with
// --net none (an empty, default-deny policy), and a refusal in the host's
// namespace, naming the rule.
func TestNewPlan(t *testing.T) {
	wl := ironclaw(t)
	opts := translate.Options{Baselines: []string{"start"}}
	p, err := NewPlan(wl, opts, "embedded", true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Ports == nil || len(p.Ports.Connect) == 0 || p.AgentBPF == nil || p.Stages.Container == nil {
		t.Errorf("plan: %+v", p)
	}
	if !p.Allows("read") || p.Allows("ptrace") {
		t.Errorf("Allows: read %v, ptrace %v", p.Allows("read"), p.Allows("ptrace"))
	}
	none, err := NewPlan(wl, opts, "embedded", true, true, false)
	if err != nil || none.Ports == nil || len(none.Ports.Connect) != 0 || len(none.Ports.Bind) != 0 {
		t.Errorf("--net none: %+v %v", none.Ports, err)
	}
	_, err = NewPlan(wl, opts, "embedded", false, false, false)
	var ce *clawerr.Error
	if !errors.As(err, &ce) || ce.Code != clawerr.EPerm || ce.Path == "" {
		t.Errorf("host network with port rules: %v", err)
	}
	if _, err := NewPlan(wl, opts, "no-such-runtime", true, false, false); err == nil {
		t.Error("an unmeasured runtime was accepted")
	}
	// The host's network namespace with Landlock's network rules: the port
	// rules stand, and the agent's sockets are TCP only (seccomp).
	host, err := NewPlan(wl, opts, "embedded", false, false, true)
	if err != nil || host.Ports == nil || len(host.Ports.Connect) == 0 {
		t.Fatalf("host network with Landlock network rules: %+v %v", host, err)
	}
	for _, c := range []struct {
		typ  uint64
		want string
	}{{1, "ALLOW"}, {2, "ERRNO(1)"}, {3, "ERRNO(1)"}} {
		for _, fam := range []uint64{2, 10} {
			if v := evalCall(t, host.AgentBPF, "socket", [6]uint64{fam, c.typ | 0x80000, 0}); v.String() != c.want {
				t.Errorf("host network: socket(%d, %d): %v, want %s", fam, c.typ, v, c.want)
			}
		}
	}
	if v := evalCall(t, p.AgentBPF, "socket", [6]uint64{2, 2, 0}); v.String() != "ALLOW" {
		t.Errorf("a private network namespace keeps UDP sockets: %v", v)
	}
	for mode, abi := range map[string]int{LandlockAuto: 4, LandlockRequired: 7} {
		if !LandlockNet(mode, abi) {
			t.Errorf("LandlockNet(%s, %d) = false", mode, abi)
		}
	}
	if LandlockNet(LandlockAuto, 3) || LandlockNet(LandlockOff, 7) {
		t.Error("Landlock network rules without ABI 4, or with Landlock off")
	}
}

// TestInitArgs checks clawos-init's command line for each option, the
// filter inline and the command after "--".
func TestInitArgs(t *testing.T) {
	p, err := NewPlan(ironclaw(t), translate.Options{Baselines: []string{"start"}}, "runc", true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	filter := p.InlineFilter()
	if !strings.HasPrefix(filter, "hex:") || len(filter) != 4+2*len(p.AgentBPF.Bytes()) {
		t.Fatalf("inline filter %.20s... of %d bytes", filter, len(p.AgentBPF.Bytes()))
	}
	got := InitArgs("F", Exec{Files: []string{"/usr", "/app"}, Cmd: true, Notify: true, ParentFD: 3, ExecAt: 0x2000_0000_1008, Init: true}, []string{"/app/agent", "-v"})
	want := []string{Init, "F", "--exec", "/usr", "--exec", "/app", "--exec-cmd", "--notify", "--parent-fd", "3", "--exec-at", "0x200000001008", "--init", "--", "/app/agent", "-v"}
	if !slices.Equal(got, want) {
		t.Errorf("InitArgs:\n got %q\nwant %q", got, want)
	}
	ports := InitArgs("F", Exec{Ports: &namespaces.PortPolicy{Connect: []int{5432, 443}, Bind: []int{}}}, []string{"a"})
	if want := []string{Init, "F", "--tcp-connect", "5432,443", "--tcp-bind", "", "--", "a"}; !slices.Equal(ports, want) {
		t.Errorf("InitArgs with ports:\n got %q\nwant %q", ports, want)
	}
	if got := InitArgs("F", Exec{Ports: &namespaces.PortPolicy{Connect: []int{80}}}, []string{"a"}); slices.Contains(got, "--tcp-bind") {
		t.Errorf("InitArgs: a bind right the policy leaves alone is restricted: %q", got)
	}
	if got := InitArgs("F", Exec{}, []string{"a"}); !slices.Equal(got, []string{Init, "F", "--", "a"}) {
		t.Errorf("InitArgs without options: %q", got)
	}
	if m := InitMount("/usr/local/bin/clawos-init"); m.Destination != Init || !slices.Contains(m.Options, "ro") {
		t.Errorf("InitMount: %+v", m)
	}
}

// TestAnnotate checks what a confined spec carries: the container stage as
// linux.seccomp, no_new_privs, both digests and the runtime.
func TestAnnotate(t *testing.T) {
	wl := ironclaw(t)
	p, err := NewPlan(wl, translate.Options{Baselines: []string{"start"}}, "runc", true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}, Annotations: map[string]string{}}
	if err := p.Annotate(spec, "runc"); err != nil {
		t.Fatal(err)
	}
	agent, _ := translate.ProfileDigest(p.Stages.Agent.Seccomp)
	if spec.Linux.Seccomp == nil || !spec.Process.NoNewPrivileges || spec.Annotations[AnnotationAgentDigest] != agent ||
		spec.Annotations[AnnotationRuntime] != "runc" || spec.Annotations[translate.AnnotationProfileDigest] == "" {
		t.Errorf("annotated spec: %+v %v", spec.Process, spec.Annotations)
	}
	if Level(wl) != wl.Metadata.SecurityLevel || Level(&translate.Whitelist{}) != "" {
		t.Errorf("Level: %q", Level(wl))
	}
}

// TestApplyAppArmor checks the modes on this kernel: off applies nothing;
// auto names no profile where the kernel has no AppArmor and says so;
// required refuses there; an unknown mode is refused. Where the kernel has
// AppArmor, the profile is named by its whitelist and a digest of its
// text (the VM matrix's AppArmor guest loads and unloads it).
func TestApplyAppArmor(t *testing.T) {
	p, err := NewPlan(ironclaw(t), translate.Options{Baselines: []string{"start"}}, "runc", true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	spec := func() *specs.Spec { return &specs.Spec{Process: &specs.Process{}} }
	if state, prof, err := p.ApplyAppArmor(spec(), AppArmorOff, "", nil, logrus.New()); state != AppArmorDisabled || prof != nil || err != nil {
		t.Errorf("off: %q %v %v", state, prof, err)
	}
	if _, _, err := p.ApplyAppArmor(spec(), "maybe", "", nil, logrus.New()); err == nil {
		t.Error("an unknown mode was accepted")
	}
	// Whatever the kernel: the profile is not generated where AppArmor is
	// missing, but a wrong preset name is still refused.
	for _, mode := range []string{AppArmorAuto, AppArmorRequired} {
		if _, _, err := p.ApplyAppArmor(spec(), mode, "nope", nil, logrus.New()); !errors.Is(err, clawerr.ErrNotFound) {
			t.Errorf("%s, an unknown preset: %v", mode, err)
		}
	}
	s := spec()
	state, prof, err := p.ApplyAppArmor(s, AppArmorAuto, "", []string{"/usr/bin/true"}, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	switch state {
	case AppArmorUnavailable:
		if prof != nil || s.Process.ApparmorProfile != "" {
			t.Errorf("no AppArmor, but a profile is named: %q", s.Process.ApparmorProfile)
		}
		if _, _, err := p.ApplyAppArmor(spec(), AppArmorRequired, "", nil, logrus.New()); err == nil {
			t.Error("required was met on a kernel without AppArmor")
		}
	case AppArmorApplied:
		if !regexp.MustCompile(`^clawos-[0-9a-f]{8}-[0-9a-f]{12}$`).MatchString(prof.Name) || s.Process.ApparmorProfile != prof.Name ||
			!strings.Contains(prof.Text, "profile "+prof.Name) {
			t.Errorf("profile %q named %q", prof.Name, s.Process.ApparmorProfile)
		}
	default:
		t.Errorf("auto: state %q", state)
	}
}

func validator(t *testing.T) *translate.Validator {
	t.Helper()
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// evalCall is the verdict of prog on a native call with args.
func evalCall(t *testing.T, prog *seccomp.Program, call string, args [6]uint64) seccomp.Verdict {
	t.Helper()
	e, err := seccomp.NewEvaluator(prog)
	if err != nil {
		t.Fatal(err)
	}
	arch := translate.NativeArch()
	nr, ok := arch.SyscallNumber(call)
	if !ok {
		t.Fatalf("no syscall %s", call)
	}
	return e.Evaluate(seccomp.Input{Arch: arch.Audit(), Nr: int32(nr), Args: args})
}

// TestCheckContainer: a plan's container stage compiles; one that names a
// call libseccomp does not know is refused, naming the stage.
func TestCheckContainer(t *testing.T) {
	p, err := NewPlan(ironclaw(t), translate.Options{Baselines: []string{"start"}}, "embedded", true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckContainer(p.Stages); err != nil {
		t.Errorf("the reference whitelist's container stage: %v", err)
	}
	bad := *p.Stages.Container.Seccomp
	bad.Syscalls = append(append([]specs.LinuxSyscall{}, bad.Syscalls...), specs.LinuxSyscall{Names: []string{"no_such_call"}, Action: specs.ActAllow})
	c := *p.Stages.Container
	c.Seccomp = &bad
	if err := CheckContainer(&translate.Stages{Container: &c, Agent: p.Stages.Agent}); err == nil || !strings.Contains(err.Error(), "container stage") {
		t.Errorf("an unknown call in the container stage: %v", err)
	}
}
