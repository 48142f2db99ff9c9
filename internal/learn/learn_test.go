package learn

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

func call(t *testing.T, arch translate.Arch, name string, args ...uint64) seccomp.Call {
	t.Helper()
	nr, ok := arch.SyscallNumber(name)
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	c := seccomp.Call{Nr: int32(nr), Arch: arch.Audit()}
	copy(c.Args[:], args)
	return c
}

func decode(t *testing.T, raw []byte) *translate.Whitelist {
	t.Helper()
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	wl, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatalf("does not validate: %v\n%s", err, raw)
	}
	if rep.Signature != translate.SignatureValid {
		t.Fatalf("signature %s", rep.Signature)
	}
	return wl
}

func rules(wl *translate.Whitelist) map[string]translate.Rule {
	m := map[string]translate.Rule{}
	for _, r := range wl.Syscalls {
		m[r.Name] = r
	}
	return m
}

func TestWhitelistProposals(t *testing.T) {
	arch := translate.ArchX8664
	r := NewRecording(arch)
	for _, c := range []seccomp.Call{
		call(t, arch, "socket", unix.AF_INET, unix.SOCK_STREAM), call(t, arch, "socket", unix.AF_INET, unix.SOCK_DGRAM),
		call(t, arch, "openat", 0, 0, unix.O_RDONLY|unix.O_CLOEXEC), call(t, arch, "openat", 0, 0, unix.O_RDONLY),
		call(t, arch, "clone", unix.CLONE_VM|unix.CLONE_THREAD), call(t, arch, "read"), call(t, arch, "read"),
		call(t, arch, "exit_group"), {Nr: 11, Arch: 0x40000003}, // an i386 call
	} {
		r.Add(c)
	}
	raw, err := r.Whitelist(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC), Target{Process: "agent", Command: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	wl := decode(t, raw)
	m := rules(wl)
	for _, c := range []struct {
		name, perm, category, note string
	}{
		{"socket", "CONDITIONAL", "network", "address family 2 only"},
		{"openat", "CONDITIONAL", "file_io", "read-only opens only"},
		{"clone", "CONDITIONAL", "process", "no namespace flags"},
		{"read", "ALLOW", "file_io", "seen 2 time(s) in 1 run(s) of agent"},
		{"exit_group", "ALLOW", "process", "seen 1 time(s)"},
	} {
		got, ok := m[c.name]
		if !ok {
			t.Errorf("%s missing", c.name)
			continue
		}
		text := got.Notes
		if got.Conditions != nil {
			text += " " + got.Conditions.Description
		}
		if string(got.Permission) != c.perm || got.Category != c.category || !strings.Contains(text, c.note) {
			t.Errorf("%s: %s %s %q", c.name, got.Permission, got.Category, text)
		}
	}
	if len(m) != 5 || len(r.Foreign) != 1 {
		t.Errorf("%d rules, foreign %v", len(m), r.Foreign)
	}
	if wl.CreatedBy != "Security Agent" || wl.CreatedAt != "2026-11-28T09:00:00Z" || wl.Metadata.TargetProcess != "agent" {
		t.Errorf("header %+v", wl)
	}
	for _, rule := range wl.Syscalls {
		if rule.TokioRequired != nil {
			t.Errorf("%s marked tokio_required in a program that is not tokio's", rule.Name)
		}
	}
	// Two families: no proposal. A write open: none either.
	r2 := NewRecording(arch)
	r2.Add(call(t, arch, "socket", unix.AF_INET))
	r2.Add(call(t, arch, "socket", unix.AF_UNIX))
	r2.Add(call(t, arch, "openat", 0, 0, unix.O_WRONLY))
	raw, _ = r2.Whitelist(time.Now(), Target{})
	for n, rule := range rules(decode(t, raw)) {
		if rule.Permission != translate.Allow {
			t.Errorf("%s: %s", n, rule.Permission)
		}
	}
	if _, err := NewRecording(arch).Whitelist(time.Now(), Target{}); err == nil {
		t.Error("an empty recording gave a whitelist")
	}
}

func TestMerge(t *testing.T) {
	arch := translate.ArchX8664
	a, b := NewRecording(arch), NewRecording(arch)
	a.Add(call(t, arch, "read"))
	a.Add(call(t, arch, "kill"))
	b.Add(call(t, arch, "read"))
	b.Add(call(t, arch, "read"))
	b.Add(call(t, arch, "write"))
	b.Add(call(t, arch, "kill"))
	rawA, _ := a.Whitelist(time.Now(), Target{})
	rawB, _ := b.Whitelist(time.Now(), Target{})
	wa, wb := decode(t, rawA), decode(t, rawB)
	// The existing whitelist was reviewed: kill denied.
	for i := range wa.Syscalls {
		if wa.Syscalls[i].Name == "kill" {
			wa.Syscalls[i].Permission = translate.Deny
		}
	}
	merged, conflicts, err := Merge(wa, wb, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wm := decode(t, merged)
	m := rules(wm)
	if !strings.Contains(m["read"].Notes, "seen 3 time(s) in 2 run(s)") {
		t.Errorf("read: %q", m["read"].Notes)
	}
	if m["write"].Permission != translate.Allow || m["kill"].Permission != translate.Deny || !strings.Contains(m["kill"].Notes, "kept the existing rule (DENY)") {
		t.Errorf("merged %+v", m)
	}
	if len(conflicts) != 1 || conflicts[0].Syscall != "kill" || conflicts[0].Kept != "existing" {
		t.Errorf("conflicts %+v", conflicts)
	}
	if wm.WhitelistID != wa.WhitelistID || wm.UpdatedBy != "Security Agent" || wm.UpdatedAt == "" {
		t.Errorf("header %+v", wm)
	}
}

func TestComplaining(t *testing.T) {
	in := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "getppid"}, Action: specs.ActAllow},
			{Names: []string{"getppid"}, Action: specs.ActErrno},
			{Names: []string{"kill"}, Action: specs.ActErrno},
		}}
	out := Complaining(in)
	b, _ := json.Marshal(out)
	want := `{"defaultAction":"SCMP_ACT_NOTIFY","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if in.DefaultAction != specs.ActKillProcess || len(in.Syscalls) != 3 {
		t.Error("Complaining changed its input")
	}
	if _, err := seccomp.Compile(out); err != nil {
		t.Errorf("does not compile: %v", err)
	}
	prog, err := seccomp.Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewComplaints(translate.ArchX8664, prog)
	if err != nil {
		t.Fatal(err)
	}
	arch := translate.ArchX8664
	c.Add(call(t, arch, "kill", 1, 0))
	c.Add(call(t, arch, "kill", 1, 0))
	c.Add(call(t, arch, "kill", 2, 9))
	c.Add(call(t, arch, "getuid"))
	c.Add(call(t, arch, "read")) // allowed: not a violation
	vs := c.Report()
	if len(vs) != 2 || vs[0].Syscall != "kill" || vs[0].Count != 3 || len(vs[0].Examples) != 2 || vs[0].Verdict != "ERRNO(1)" ||
		vs[1].Syscall != "getuid" || vs[1].Verdict != "KILL_PROCESS" {
		t.Errorf("report %+v", vs)
	}
	var sb strings.Builder
	Table(&sb, vs)
	if !strings.Contains(sb.String(), "kill") || !strings.Contains(sb.String(), "KILL_PROCESS") {
		t.Errorf("table:\n%s", sb.String())
	}
}

func TestCategoriesComplete(t *testing.T) {
	valid := map[string]bool{"memory": true, "file_io": true, "process": true, "network": true, "time": true, "signals": true, "misc": true, "tokio_runtime": true}
	arch := translate.ArchX8664
	known := map[string]bool{}
	for _, n := range arch.Syscalls() {
		known[n] = true
	}
	for name, cat := range categories() {
		if !valid[cat] {
			t.Errorf("%s: category %q is not P1.2's", name, cat)
		}
		if !known[name] && !known[strings.TrimSuffix(name, "64")] {
			if _, ok := translate.ArchAArch64.SyscallNumber(name); !ok {
				t.Errorf("%s is not a syscall", name)
			}
		}
	}
}
