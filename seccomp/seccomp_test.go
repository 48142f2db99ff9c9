package seccomp_test

import (
	"bytes"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

func rule(name string, perm translate.Permission) translate.Rule {
	return translate.Rule{Name: name, Permission: perm}
}

func filterRule(name string, idx int, op string, v uint64, mask *uint64) translate.Rule {
	af := &translate.ArgumentFilter{ArgIndex: idx, Operator: op, Value: translate.NewArgValue(v)}
	if mask != nil {
		m := translate.NewArgValue(*mask)
		af.Mask = &m
	}
	return translate.Rule{Name: name, Permission: translate.Conditional,
		Conditions: &translate.Conditions{ArgumentFilter: af, Description: "test"}}
}

func compile(t testing.TB, arch translate.Arch, rules ...translate.Rule) (*seccomp.Program, *seccomp.Evaluator) {
	t.Helper()
	wl := &translate.Whitelist{Syscalls: rules}
	p, err := translate.Translate(wl, translate.Options{Arch: arch})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := seccomp.Compile(p.Seccomp)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := seccomp.NewEvaluator(prog)
	if err != nil {
		t.Fatal(err)
	}
	return prog, ev
}

func sysnr(t testing.TB, arch translate.Arch, name string) int32 {
	t.Helper()
	n, ok := arch.SyscallNumber(name)
	if !ok {
		t.Fatalf("%s: no %s", arch, name)
	}
	return int32(n)
}

// TestEvaluatorOperators compares the verdicts of compiled programs for both
// architectures with Go's own comparison, over boundary values and random
// 64-bit values. The kernel agrees with the evaluator on the same programs
// (test/seccomp_kernel_test.go), so this covers aarch64 without an aarch64
// kernel.
func TestEvaluatorOperators(t *testing.T) {
	const v = 0x1_0000_0005
	mask := uint64(0xff_0000_00ff)
	ops := map[string]func(a uint64) bool{
		"eq": func(a uint64) bool { return a == v }, "ne": func(a uint64) bool { return a != v },
		"gt": func(a uint64) bool { return a > v }, "ge": func(a uint64) bool { return a >= v },
		"lt": func(a uint64) bool { return a < v }, "le": func(a uint64) bool { return a <= v },
		"masked_eq": func(a uint64) bool { return a&mask == v },
	}
	rng := rand.New(rand.NewSource(1))
	values := []uint64{0, 5, v - 1, v, v + 1, 0x2_0000_0005, 0xff_0000_0005, 0x01_0000_0005, 1 << 63, ^uint64(0)}
	for i := 0; i < 200; i++ {
		values = append(values, rng.Uint64(), v^(1<<uint(rng.Intn(64))))
	}
	for _, arch := range translate.KnownArches() {
		for op, holds := range ops {
			var m *uint64
			if op == "masked_eq" {
				m = &mask
			}
			for _, idx := range []int{0, 3, 5} {
				_, ev := compile(t, arch, filterRule("getppid", idx, op, v, m), rule("getpid", translate.Allow))
				for _, a := range values {
					in := seccomp.Input{Arch: arch.Audit(), Nr: sysnr(t, arch, "getppid")}
					in.Args[idx] = a
					got := ev.Evaluate(in)
					want := seccomp.Verdict(seccomp.RetErrno | 1)
					if holds(a) {
						want = seccomp.RetAllow
					}
					if got != want {
						t.Fatalf("%s %s arg%d=%#x: %v, want %v", arch, op, idx, a, got, want)
					}
				}
			}
		}
	}
}

func TestEvaluatorActions(t *testing.T) {
	for _, arch := range translate.KnownArches() {
		deny := rule("getuid", translate.Deny)
		enosys := rule("geteuid", translate.Deny)
		enosys.DenyErrno = "ENOSYS"
		_, ev := compile(t, arch, rule("getppid", translate.Allow), deny, enosys)
		tests := []struct {
			in   seccomp.Input
			want seccomp.Verdict
		}{
			{seccomp.Input{Arch: arch.Audit(), Nr: sysnr(t, arch, "getppid")}, seccomp.RetAllow},
			{seccomp.Input{Arch: arch.Audit(), Nr: sysnr(t, arch, "getuid")}, seccomp.RetErrno | 1},
			{seccomp.Input{Arch: arch.Audit(), Nr: sysnr(t, arch, "geteuid")}, seccomp.RetErrno | 38},
			{seccomp.Input{Arch: arch.Audit(), Nr: sysnr(t, arch, "getgid")}, seccomp.RetKillProcess},
			{seccomp.Input{Arch: 0x40000003, Nr: 64}, seccomp.RetKillProcess},   // i386
			{seccomp.Input{Arch: 0x40000028, Nr: 64}, seccomp.RetKillProcess},   // arm
			{seccomp.Input{Arch: arch.Audit(), Nr: -1}, seccomp.RetKillProcess}, // invalid number
			{seccomp.Input{Arch: arch.Audit(), Nr: 0x40000000 | 110}, seccomp.RetKillProcess},
		}
		for _, tt := range tests {
			if got := ev.Evaluate(tt.in); got != tt.want {
				t.Errorf("%s nr %#x arch %#x: %v, want %v", arch, tt.in.Nr, tt.in.Arch, got, tt.want)
			}
		}
	}
}

func TestListingGolden(t *testing.T) {
	prog, _ := compile(t, translate.ArchX8664, rule("read", translate.Allow), rule("getuid", translate.Deny),
		filterRule("openat", 2, "masked_eq", 0, ptr(3)))
	golden.Check(t, "small.x86_64.listing", []byte(prog.Listing()))
	again, err := seccomp.ParseProgram(prog.Bytes())
	if err != nil || again.Len() != prog.Len() || !bytes.Equal(again.Bytes(), prog.Bytes()) {
		t.Errorf("bytes do not round-trip: %v", err)
	}
	if _, err := seccomp.ParseProgram(make([]byte, 7)); err == nil {
		t.Error("ParseProgram accepted 7 bytes")
	}
}

func ptr(v uint64) *uint64 { return &v }

// TestCompileLimit builds a section whose program exceeds the kernel's 4096
// instructions and expects a refusal that names the limit.
func TestCompileLimit(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{translate.NativeArch().OCI()}}
	for i := uint64(0); i < 1200; i++ {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: i << 20, Op: specs.OpEqualTo}, {Index: 1, Value: i, Op: specs.OpEqualTo}}})
	}
	_, err := seccomp.Compile(s)
	var ce *clawerr.Error
	if !stderrors.As(err, &ce) || ce.Code != clawerr.EProto {
		t.Fatalf("want an EPROTO refusal, got %v", err)
	}
	if !strings.Contains(ce.Message, "BPF instructions") || !strings.Contains(ce.Message, "at most 4096") {
		t.Errorf("the refusal does not name the limit: %v", err)
	}
}

func TestBuildRefusals(t *testing.T) {
	tests := []struct {
		name string
		s    *specs.LinuxSeccomp
	}{
		{"nil", nil},
		{"unknown action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}},
		{"unknown syscall", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"recv_all"}, Action: specs.ActAllow}}}},
		{"unknown operator", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_ALMOST"}}}}}},
		{"unknown arch", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{"SCMP_ARCH_PDP11"}}},
		{"errno out of range", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: ptrUint(70000)}}}},
	}
	for _, tt := range tests {
		if f, err := seccomp.Build(tt.s); err == nil {
			f.Release()
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func ptrUint(v uint) *uint { return &v }

// TestKnownMaps walks every OCI action and operator: each must build.
func TestKnownMaps(t *testing.T) {
	if len(seccomp.KnownActions()) != 9 || len(seccomp.KnownOperators()) != 7 {
		t.Fatalf("actions %v operators %v", seccomp.KnownActions(), seccomp.KnownOperators())
	}
	for _, a := range seccomp.KnownActions() {
		if a == specs.ActNotify {
			continue // a notify rule needs a listener; libseccomp refuses it as default
		}
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: a}}}
		if _, err := seccomp.Compile(s); err != nil && a != specs.ActKillProcess {
			t.Errorf("action %s: %v", a, err)
		}
	}
	for _, op := range seccomp.KnownOperators() {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 3, ValueTwo: 1, Op: op}}}}}
		if _, err := seccomp.Compile(s); err != nil {
			t.Errorf("operator %s: %v", op, err)
		}
	}
}

// largeWhitelist names every syscall of arch; every third one is CONDITIONAL
// with an argument filter, the rest ALLOW.
func largeWhitelist(arch translate.Arch) *translate.Whitelist {
	wl := &translate.Whitelist{SchemaVersion: "1.0.0"}
	ops := translate.KnownOperators()
	for i, name := range arch.Syscalls() {
		if i%3 == 0 {
			op := ops[i%len(ops)]
			var m *uint64
			v := uint64(i)
			if op == "masked_eq" {
				m = ptr(0xff)
				v &= 0xff
			}
			wl.Syscalls = append(wl.Syscalls, filterRule(name, i%6, op, v, m))
			continue
		}
		wl.Syscalls = append(wl.Syscalls, rule(name, translate.Allow))
	}
	return wl
}

func TestLargeWhitelistCompiles(t *testing.T) {
	for _, arch := range translate.KnownArches() {
		wl := largeWhitelist(arch)
		p, err := translate.Translate(wl, translate.Options{Arch: arch})
		if err != nil {
			t.Fatal(err)
		}
		prog, err := seccomp.Compile(p.Seccomp)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		t.Logf("%s: %d rules, %d instructions", arch, len(wl.Syscalls), prog.Len())
	}
}

func benchmarkTranslateCompile(b *testing.B, wl *translate.Whitelist) {
	b.ReportAllocs()
	var n int
	for i := 0; i < b.N; i++ {
		p, err := translate.Translate(wl, translate.Options{Baselines: []string{"start"}})
		if err != nil {
			b.Fatal(err)
		}
		prog, err := seccomp.Compile(p.Seccomp)
		if err != nil {
			b.Fatal(err)
		}
		n = prog.Len()
	}
	b.ReportMetric(float64(n), "insns")
}

// BenchmarkTranslateCompile measures translate+compile of the reference
// example and of a whitelist of every syscall, a third of them conditional.
func BenchmarkTranslateCompile(b *testing.B) {
	raw, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		b.Fatal(err)
	}
	var example translate.Whitelist
	if err := json.Unmarshal(raw, &example); err != nil {
		b.Fatal(err)
	}
	b.Run("example", func(b *testing.B) { benchmarkTranslateCompile(b, &example) })
	b.Run("every-syscall", func(b *testing.B) { benchmarkTranslateCompile(b, largeWhitelist(translate.NativeArch())) })
}

// BenchmarkValidate measures schema validation plus every check of the
// reference example.
func BenchmarkValidate(b *testing.B) {
	raw, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		b.Fatal(err)
	}
	v, err := schema.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, rep := v.Validate(raw, translate.Options{}); rep.Err() != nil {
			b.Fatal(rep.Err())
		}
	}
}

// BenchmarkEvaluate measures one verdict of the userspace evaluator.
func BenchmarkEvaluate(b *testing.B) {
	_, ev := compile(b, translate.NativeArch(), largeWhitelist(translate.NativeArch()).Syscalls...)
	in := seccomp.Input{Arch: translate.NativeArch().Audit(), Nr: 300}
	for i := 0; i < b.N; i++ {
		ev.Evaluate(in)
	}
}

func ExampleProgram_Listing() {
	p, _ := translate.Translate(&translate.Whitelist{Syscalls: []translate.Rule{{Name: "read", Permission: translate.Allow}}},
		translate.Options{Arch: translate.ArchX8664})
	prog, _ := seccomp.Compile(p.Seccomp)
	fmt.Print(prog.Listing())
	// Output:
	// 0000: ld [4]                                   ; arch
	// 0001: jneq #3221225534,5
	// 0002: ld [0]                                   ; nr
	// 0003: jlt #1073741824,1
	// 0004: jneq #4294967295,2
	// 0005: jneq #0,1
	// 0006: ret #2147418112                          ; ALLOW
	// 0007: ret #2147483648                          ; KILL_PROCESS
}

func TestStacked(t *testing.T) {
	errno := func(e uint16) seccomp.Verdict { return seccomp.RetErrno | seccomp.Verdict(e) }
	for _, c := range []struct {
		in   []seccomp.Verdict
		want seccomp.Verdict
	}{
		{[]seccomp.Verdict{seccomp.RetAllow, seccomp.RetAllow}, seccomp.RetAllow},
		{[]seccomp.Verdict{seccomp.RetAllow, errno(1)}, errno(1)},
		{[]seccomp.Verdict{errno(38), errno(1)}, errno(38)}, // the newest filter's errno
		{[]seccomp.Verdict{errno(1), seccomp.RetKillProcess}, seccomp.RetKillProcess},
		{[]seccomp.Verdict{seccomp.RetKillThread, seccomp.RetKillProcess}, seccomp.RetKillProcess},
		{[]seccomp.Verdict{seccomp.RetLog, seccomp.RetAllow}, seccomp.RetLog},
		{[]seccomp.Verdict{seccomp.RetUserNotif, errno(1)}, errno(1)},
	} {
		if got := seccomp.Stacked(c.in...); got != c.want {
			t.Errorf("Stacked(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
