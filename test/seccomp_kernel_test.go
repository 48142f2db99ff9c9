package test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// whitelist builds a valid unsigned whitelist of rules for the testing
// environment and checks it through the validator, as a user's file would be.
func whitelist(t *testing.T, rules ...translate.Rule) *translate.Whitelist {
	t.Helper()
	wl := &translate.Whitelist{
		SchemaVersion: "1.0.0",
		WhitelistID:   "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
		CreatedAt:     "2026-11-28T00:00:00Z",
		CreatedBy:     "Security Agent",
		Syscalls:      rules,
		Metadata:      &translate.Metadata{Environment: "testing", SecurityLevel: "strict"},
	}
	raw, err := json.Marshal(wl)
	if err != nil {
		t.Fatal(err)
	}
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	got, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatalf("test whitelist is invalid: %v", err)
	}
	return got
}

func allow(name string) translate.Rule {
	return translate.Rule{Name: name, Permission: translate.Allow}
}
func deny(name, errno string) translate.Rule {
	return translate.Rule{Name: name, Permission: translate.Deny, DenyErrno: errno}
}

func argFilter(name string, idx int, op string, value uint64, mask *uint64) translate.Rule {
	af := &translate.ArgumentFilter{ArgIndex: idx, Operator: op, Value: translate.NewArgValue(value)}
	if mask != nil {
		m := translate.NewArgValue(*mask)
		af.Mask = &m
	}
	return translate.Rule{Name: name, Permission: translate.Conditional,
		Conditions: &translate.Conditions{ArgumentFilter: af, Description: "test"}}
}

func nr(t *testing.T, name string) int {
	t.Helper()
	n, ok := translate.NativeArch().SyscallNumber(name)
	if !ok {
		t.Fatalf("%s is not a syscall here", name)
	}
	return n
}

// kernelCase is one call made under one profile.
type kernelCase struct {
	name string
	call string // native syscall name (for int80: an i386 number in i386Nr)
	args [6]uint64
	via  string
	// i386Nr is the i386 syscall number for viaInt80.
	i386Nr int
	// want is the P1.2 expectation; allowed means "same as without a filter".
	want    outcome
	allowed bool
}

// runCases runs every case under both stages of wl stacked as in a
// sandbox (the container stage, then the agent stage), loading their
// exported BPF bytes (what the runtime and clawos-init load), and checks
// that the kernel's outcome is the P1.2 expectation and equals the
// stacked verdict the userspace evaluator predicts from the same bytes
// (seccomp.Stacked: the stricter wins, as in the kernel). Where the kernel
// refuses i386 calls before seccomp (platform.IA32Refused), an int 0x80
// case must die of SIGSEGV filtered and unfiltered, and the evaluator
// must still say the programs kill it.
func runCases(t *testing.T, wl *translate.Whitelist, opts translate.Options, cases []kernelCase) {
	t.Helper()
	stages, err := translate.TwoStage(wl, opts, "runc")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	var evs []*seccomp.Evaluator
	var added map[string]bool
	for _, p := range []*translate.Profile{stages.Container, stages.Agent} {
		prof, add := withHarness(p.Seccomp)
		added = add // the agent stage's: the calls a case must not rely on
		prog, err := seccomp.Compile(prof)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := seccomp.NewEvaluator(prog)
		if err != nil {
			t.Fatal(err)
		}
		files, evs = append(files, bpfFile(t, prog)), append(evs, ev)
	}
	// The agent stage is loaded last, so the kernel runs it first.
	evaluate := func(in seccomp.Input) seccomp.Verdict {
		return seccomp.Stacked(evs[1].Evaluate(in), evs[0].Evaluate(in))
	}
	arch := translate.NativeArch()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if added[c.call] {
				t.Fatalf("test case calls %s, which the harness added for the Go runtime", c.call)
			}
			spec := childSpec{BPF: files, Args: c.args, Via: c.via}
			in := seccomp.Input{Arch: arch.Audit(), Args: c.args}
			if (c.via == viaInt80 || c.via == viaX32) && runtime.GOARCH != "amd64" {
				// No int 0x80 or x32 here to make the call with: the
				// programs must still kill every other architecture's
				// calls (this kernel's compat one included: 32-bit ARM on
				// aarch64), which only the evaluator can show.
				for _, a := range []uint32{auditArchI386, auditArchARM, translate.ArchX8664.Audit()} {
					if v := evaluate(seccomp.Input{Arch: a, Nr: int32(c.i386Nr)}); v.Action() != seccomp.RetKillProcess {
						t.Errorf("a call of architecture %#x: %v, want the process killed", a, v)
					}
				}
				t.Logf("%s cannot be made on %s; the programs kill other architectures' calls (evaluator)", c.via, runtime.GOARCH)
				return
			}
			switch c.via {
			case viaInt80:
				spec.Nr, in.Arch, in.Nr = c.i386Nr, auditArchI386, int32(c.i386Nr)
			case viaX32:
				spec.Nr = nr(t, c.call)
				in.Nr = int32(spec.Nr | 0x40000000)
			default:
				spec.Nr = nr(t, c.call)
				in.Nr = int32(spec.Nr)
			}
			verdict := evaluate(in)
			if c.via == viaInt80 && !ia32(t) {
				if got := runChild(t, spec); got != (outcome{Signal: unix.SIGSEGV}) {
					t.Errorf("kernel without ia32 syscalls: %v, want the platform's SIGSEGV", got)
				}
				if a := verdict.Action(); a != seccomp.RetKillProcess && a != seccomp.RetKillThread {
					t.Errorf("%s; but the compiled program would %v it where ia32 calls reach seccomp", platform.IA32Refused, verdict)
				}
				t.Logf("%s; the compiled program would %v it", platform.IA32Refused, verdict)
				return
			}
			predicted := expectFromVerdict(t, verdict, spec)
			want := c.want
			if c.allowed {
				unfiltered := spec
				unfiltered.BPF = nil
				want = runChild(t, unfiltered)
			}
			got := runChild(t, spec)
			if got != want {
				t.Errorf("kernel: %v, P1.2 expects %v (evaluator verdict %v)", got, want, verdict)
			}
			if got != predicted {
				t.Errorf("kernel: %v, evaluator predicted %v (%v)", got, predicted, verdict)
			}
		})
	}
}

func TestKernelVerdicts(t *testing.T) {
	wl := whitelist(t,
		allow("getppid"),
		deny("getuid", ""),
		deny("geteuid", "EAGAIN"),
		deny("getegid", "ENOSYS"),
		translate.Rule{Name: "socket", Permission: translate.Conditional, Conditions: &translate.Conditions{
			PortRestriction: &translate.PortRestriction{AllowedPorts: []int{5432}}, Description: "postgres only"}},
	)
	runCases(t, wl, translate.Options{}, []kernelCase{
		{name: "allowed call works", call: "getppid", allowed: true},
		{name: "DENY returns EPERM", call: "getuid", want: errnoOutcome(int(unix.EPERM))},
		{name: "DENY with P1.7 EAGAIN", call: "geteuid", want: errnoOutcome(int(unix.EAGAIN))},
		{name: "DENY with ENOSYS", call: "getegid", want: errnoOutcome(int(unix.ENOSYS))},
		{name: "unlisted call kills the process", call: "getgid", want: killed},
		{name: "DENY on another thread (TSYNC)", call: "getuid", via: viaThread, want: errnoOutcome(int(unix.EPERM))},
		{name: "unlisted call on another thread kills the process (TSYNC)", call: "getgid", via: viaThread, want: killed},
		{name: "allowed call on another thread", call: "getppid", via: viaThread, allowed: true},
		{name: "i386 int 0x80 getppid hits the bad-arch action", via: viaInt80, call: "int80", i386Nr: 64, want: killed},
		{name: "x32 getppid hits the bad-arch action", call: "getppid", via: viaX32, want: killed},
		{name: "socket AF_INET stream", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_CLOEXEC}, allowed: true},
		{name: "socket AF_INET6 datagram", call: "socket", args: [6]uint64{unix.AF_INET6, unix.SOCK_DGRAM | unix.SOCK_NONBLOCK}, allowed: true},
		{name: "socket AF_UNIX refused", call: "socket", args: [6]uint64{unix.AF_UNIX, unix.SOCK_STREAM}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_NETLINK refused", call: "socket", args: [6]uint64{unix.AF_NETLINK, unix.SOCK_RAW}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET raw refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_RAW, 1}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET stream TCP", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP}, allowed: true},
		{name: "socket AF_INET6 datagram UDP", call: "socket", args: [6]uint64{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP}, allowed: true},
		{name: "socket AF_INET UDP-Lite refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET6 UDP-Lite refused", call: "socket", args: [6]uint64{unix.AF_INET6, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, unix.IPPROTO_UDPLITE}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET ICMP ping socket refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET6 ICMPv6 ping socket refused", call: "socket", args: [6]uint64{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET MPTCP refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM, 262}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET SCTP stream refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET SCTP seqpacket refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET stream with UDP's protocol refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET TCP with the protocol's upper 32 bits set refused", call: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM, 1<<32 | unix.IPPROTO_TCP}, want: errnoOutcome(int(unix.EPERM))},
		{name: "socket AF_INET with family in the upper 32 bits refused", call: "socket", args: [6]uint64{1<<32 | unix.AF_INET, unix.SOCK_STREAM}, want: errnoOutcome(int(unix.EPERM))},
	})
}

// TestKernelArgumentFilters checks both branches of every operator on a
// value above 2^32, at the boundaries and with equal low words, so that a
// comparison of only the low 32 bits would fail the test.
func TestKernelArgumentFilters(t *testing.T) {
	const v = 0x1_0000_0005
	probes := []uint64{v, v - 1, v + 1, 5, 0x2_0000_0005, 0, ^uint64(0)}
	holds := map[string]func(a uint64) bool{
		"eq": func(a uint64) bool { return a == v },
		"ne": func(a uint64) bool { return a != v },
		"gt": func(a uint64) bool { return a > v },
		"ge": func(a uint64) bool { return a >= v },
		"lt": func(a uint64) bool { return a < v },
		"le": func(a uint64) bool { return a <= v },
	}
	for _, op := range []string{"eq", "ne", "gt", "ge", "lt", "le"} {
		for _, idx := range []int{0, 5} {
			t.Run(fmt.Sprintf("%s/arg%d", op, idx), func(t *testing.T) {
				wl := whitelist(t, argFilter("getppid", idx, op, v, nil))
				var cases []kernelCase
				for _, a := range probes {
					var args [6]uint64
					args[idx] = a
					c := kernelCase{name: fmt.Sprintf("%#x", a), call: "getppid", args: args}
					if holds[op](a) {
						c.allowed = true
					} else {
						c.want = errnoOutcome(int(unix.EPERM))
					}
					cases = append(cases, c)
				}
				runCases(t, wl, translate.Options{}, cases)
			})
		}
	}
	t.Run("masked_eq", func(t *testing.T) {
		mask := uint64(0xff_0000_00ff)
		wl := whitelist(t, argFilter("getppid", 2, "masked_eq", 0x01_0000_0005, &mask))
		var cases []kernelCase
		for _, a := range []uint64{0x01_0000_0005, 0x01_1234_5605, 0x02_0000_0005, 0x5, 0x01_0000_0006, ^uint64(0)} {
			c := kernelCase{name: fmt.Sprintf("%#x", a), call: "getppid", args: [6]uint64{0, 0, a}}
			if a&mask == 0x01_0000_0005 {
				c.allowed = true
			} else {
				c.want = errnoOutcome(int(unix.EPERM))
			}
			cases = append(cases, c)
		}
		runCases(t, wl, translate.Options{}, cases)
	})
}

// exampleUnsafe are calls of the reference example that the test child must
// not make with zero arguments (they would end the child or fork it); their
// verdicts are still checked by the evaluator in package seccomp.
var exampleUnsafe = map[string]bool{"exit": true, "exit_group": true, "rt_sigreturn": true, "clone": true}

// TestKernelReferenceExample runs every call of the corrected, signed
// reference whitelist in the kernel.
func TestKernelReferenceExample(t *testing.T) {
	raw, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	wl, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	var cases []kernelCase
	for _, r := range wl.Syscalls {
		if exampleUnsafe[r.Name] {
			continue
		}
		if _, ok := translate.NativeArch().SyscallNumber(r.Name); !ok {
			continue
		}
		c := kernelCase{name: r.Name, call: r.Name}
		switch {
		case r.Permission == translate.Allow:
			c.allowed = true
		case r.Permission == translate.Deny && r.DenyErrno == "ENOSYS":
			c.want = errnoOutcome(int(unix.ENOSYS))
		case r.Permission == translate.Deny:
			c.want = errnoOutcome(int(unix.EPERM))
		case r.Name == "socket":
			c.name, c.args, c.allowed = "socket AF_INET stream", [6]uint64{unix.AF_INET, unix.SOCK_STREAM}, true
			cases = append(cases, c)
			c = kernelCase{name: "socket AF_UNIX", call: "socket", args: [6]uint64{unix.AF_UNIX, unix.SOCK_STREAM}, want: errnoOutcome(int(unix.EPERM))}
		default: // connect: ports are the network policy's
			c.allowed = true
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		kernelCase{name: "unlisted getuid", call: "getuid", want: killed},
		kernelCase{name: "unlisted setuid", call: "setuid", want: killed},
		kernelCase{name: "unlisted io_uring_setup", call: "io_uring_setup", want: killed},
		kernelCase{name: "unlisted unshare with CLONE_NEWUSER", call: "unshare", args: [6]uint64{unix.CLONE_NEWUSER}, want: killed},
		kernelCase{name: "unlisted ptrace", call: "ptrace", want: killed},
		kernelCase{name: "unlisted bpf", call: "bpf", want: killed},
		kernelCase{name: "i386 int 0x80 getpid", via: viaInt80, call: "int80", i386Nr: 20, want: killed},
	)
	if len(cases) < 30 {
		t.Fatalf("only %d cases from the example", len(cases))
	}
	runCases(t, wl, translate.Options{}, cases)
}

// TestKernelProfileHasNoHarness guards the harness: the profile under test
// must not already contain a harness call that a case would rely on being
// killed; withHarness only adds names the profile lacks.
func TestKernelProfileHasNoHarness(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"write"}, Action: specs.ActErrno}}}
	h, added := withHarness(s)
	if added["write"] {
		t.Fatal("withHarness reports write as added")
	}
	for _, c := range h.Syscalls[1:] {
		for _, n := range c.Names {
			if n == "write" {
				t.Fatal("withHarness overrode the profile's own rule for write")
			}
		}
	}
}
