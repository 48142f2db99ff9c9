package platform

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClassifyIA32(t *testing.T) {
	exited := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	signaled := func(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }
	for _, c := range []struct {
		name    string
		ws      syscall.WaitStatus
		has     bool
		wantErr bool
	}{
		{"delivered", exited(0), true, false},
		{"refused by the platform", signaled(unix.SIGSEGV), false, false},
		{"a crash of another kind is no answer", signaled(unix.SIGBUS), false, true},
		{"a seccomp kill is no answer (the probe runs unconfined)", signaled(unix.SIGSYS), false, true},
		{"an errno is no answer", exited(2), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			has, err := ClassifyIA32(c.ws)
			if has != c.has || (err != nil) != c.wantErr {
				t.Errorf("ClassifyIA32(%#x) = %v, %v; want %v, error %v", c.ws, has, err, c.has, c.wantErr)
			}
		})
	}
}

// TestGuarantees checks that a host's answers change what the report says
// holds, and never drop a guarantee from the list.
func TestGuarantees(t *testing.T) {
	no := false
	bare := Report{IA32: &no, Cgroup: Cgroup{Mode: "v1"}, UserNS: UserNS{Why: "kernel.unprivileged_userns_clone is 0"}, MemfdNoexec: -1}
	full := Report{Landlock: 7, AppArmor: true, SeccompNotify: true, PidfdGetfd: true, Nftables: true, MountSetattr: true,
		Cgroup: Cgroup{Mode: "v2"}, UserNS: UserNS{Unprivileged: true}}
	gb, gf := bare.Guarantees(false), full.Guarantees(false)
	if len(gb) != len(gf) || len(gb) < 8 {
		t.Fatalf("the guarantees listed depend on the host: %d and %d", len(gb), len(gf))
	}
	for i := range gf {
		if !gf[i].Holds {
			t.Errorf("a full host: %q does not hold (%s)", gf[i].What, gf[i].Why)
		}
	}
	held := 0
	for _, g := range gb {
		if g.Holds {
			held++
		}
	}
	if held != 3 { // the two stages, other architectures, start-only exec
		t.Errorf("a bare host: %d guarantees hold, want 3: %+v", held, gb)
	}
	rows := bare.Rows()
	if rows[1][1] != IA32Refused {
		t.Errorf("ia32 row %q, want %q", rows[1][1], IA32Refused)
	}
}
