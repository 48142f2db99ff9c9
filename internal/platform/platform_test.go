package platform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// TestIOWeight: on cgroup v1, block IO can be weighted with CFQ's
// blkio.weight in the root, or with BFQ among a device's schedulers; not
// without a blkio hierarchy, and not with only none, mq-deadline and kyber
// (the aarch64 VM's kernel: no BFQ module loaded).
func TestIOWeight(t *testing.T) {
	for _, tc := range []struct {
		name       string
		blkio      bool
		rootWeight bool
		scheds     []string
		want       bool
	}{
		{"no blkio hierarchy", false, false, []string{"[none] mq-deadline kyber bfq"}, false},
		{"BFQ offered", true, false, []string{"[none] mq-deadline kyber bfq"}, true},
		{"BFQ in use on one device", true, false, []string{"[none] mq-deadline", "mq-deadline [bfq]"}, true},
		{"no BFQ", true, false, []string{"[none] mq-deadline kyber"}, false},
		{"no block devices", true, false, nil, false},
		{"CFQ's weight in the root", true, true, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cg, block := filepath.Join(dir, "cgroup"), filepath.Join(dir, "block")
			mustMkdir(t, cg)
			if tc.blkio {
				mustMkdir(t, filepath.Join(cg, "blkio"))
			}
			if tc.rootWeight {
				mustWrite(t, filepath.Join(cg, "blkio", "blkio.weight"), "500\n")
			}
			for i, s := range tc.scheds {
				q := filepath.Join(block, fmt.Sprintf("vd%c", 'a'+i), "queue")
				mustMkdir(t, q)
				mustWrite(t, filepath.Join(q, "scheduler"), s+"\n")
			}
			if got := IOWeight(cg, block); got != tc.want {
				t.Errorf("IOWeight: %v, want %v", got, tc.want)
			}
		})
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultSIGSEGV: after DefaultSIGSEGV a memory fault ends the process
// with SIGSEGV, as int 0x80 does where ia32 calls are refused; without it
// the Go runtime turns the fault into a crash with exit status 2 (which the
// ia32 probes once misread). The fault is a nil write in a child process.
func TestDefaultSIGSEGV(t *testing.T) {
	if mode := os.Getenv("CLAWOS_TEST_SEGV"); mode != "" {
		if mode == "default" {
			if err := DefaultSIGSEGV(); err != nil {
				os.Exit(125)
			}
		}
		var p *int
		*p = 1 // the fault under test
		os.Exit(0)
	}
	for _, tc := range []struct {
		mode string
		want func(syscall.WaitStatus) bool
	}{
		{"default", func(ws syscall.WaitStatus) bool { return ws.Signaled() && ws.Signal() == unix.SIGSEGV }},
		{"go", func(ws syscall.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 2 }},
	} {
		if !amd64 && tc.mode == "default" {
			continue // only where int 0x80 exists
		}
		cmd := exec.Command(os.Args[0], "-test.run", "^TestDefaultSIGSEGV$")
		cmd.Env = append(os.Environ(), "CLAWOS_TEST_SEGV="+tc.mode, "GOTRACEBACK=none")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: %v, want a fault", tc.mode, err)
		}
		if ws := ee.Sys().(syscall.WaitStatus); !tc.want(ws) {
			t.Errorf("%s: the child ended with %v (status %d)", tc.mode, ws.Signal(), ws.ExitStatus())
		}
	}
}
