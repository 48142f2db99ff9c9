package killlog

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// killEnv makes the test binary a process that seccomp kills at its first
// getppid (TestMain).
const killEnv = "CLAWOS_KILLLOG_TEST_KILL"

func TestMain(m *testing.M) {
	if os.Getenv(killEnv) != "" {
		dieBySeccomp()
		os.Exit(3) // not killed
	}
	os.Exit(m.Run())
}

// dieBySeccomp loads, as clawos-init loads a stage (seccomp.Program.Load),
// a filter that kills the process at getppid, and calls getppid.
func dieBySeccomp() {
	prog, err := seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{translate.NativeArch().OCI()},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}}})
	if err != nil {
		os.Exit(4)
	}
	if err := prog.Load(); err != nil {
		os.Exit(5)
	}
	unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
}

func TestParseAuditThreadStatus(t *testing.T) {
	const kauditd = "Name:\tkauditd\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t30\nPid:\t30\nPPid:\t2\nvoluntary_ctxt_switches:\t82448\nnonvoluntary_ctxt_switches:\t142\n"
	for _, c := range []struct {
		name   string
		status string
		want   threadStatus
		ok     bool
	}{
		{"asleep", kauditd, threadStatus{asleep: true, sleeps: 82448}, true},
		{"idle", "Name:\tkauditd\nState:\tI (idle)\nPPid:\t2\nvoluntary_ctxt_switches:\t5\n", threadStatus{asleep: true, sleeps: 5}, true},
		{"running", "Name:\tkauditd\nState:\tR (running)\nPPid:\t2\nvoluntary_ctxt_switches:\t5\n", threadStatus{sleeps: 5}, true},
		// A process of that name is not the kernel's thread.
		{"another parent", "Name:\tkauditd\nState:\tS (sleeping)\nPPid:\t1\nvoluntary_ctxt_switches:\t5\n", threadStatus{asleep: true, sleeps: 5}, false},
		{"another name", "Name:\tkauditd2\nState:\tS (sleeping)\nPPid:\t2\nvoluntary_ctxt_switches:\t5\n", threadStatus{asleep: true, sleeps: 5}, false},
		{"no switch count", "Name:\tkauditd\nState:\tS (sleeping)\nPPid:\t2\n", threadStatus{asleep: true}, false},
		{"no state", "Name:\tkauditd\nPPid:\t2\nvoluntary_ctxt_switches:\t5\n", threadStatus{sleeps: 5}, false},
		{"bad count", "Name:\tkauditd\nState:\tS (sleeping)\nPPid:\t2\nvoluntary_ctxt_switches:\tmany\n", threadStatus{asleep: true}, false},
		{"unreadable", "", threadStatus{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseAuditThreadStatus(c.status)
			if got != c.want || ok != c.ok {
				t.Errorf("%+v %v, want %+v %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// TestMarkQuiet: a mark is quiet only while the thread is kauditd, asleep,
// with the count of the mark.
func TestMarkQuiet(t *testing.T) {
	m := Mark{Pid: 30, Sleeps: 7}
	for _, c := range []struct {
		name  string
		st    threadStatus
		ok    bool
		quiet bool
	}{
		{"asleep since", threadStatus{asleep: true, sleeps: 7}, true, true},
		{"slept again", threadStatus{asleep: true, sleeps: 8}, true, false},
		{"woken", threadStatus{sleeps: 7}, true, false},
		{"not kauditd", threadStatus{asleep: true, sleeps: 7}, false, false},
	} {
		got := m.quiet(func(pid int) (threadStatus, bool) {
			if pid != m.Pid {
				t.Errorf("read the status of pid %d", pid)
			}
			return c.st, c.ok
		})
		if got != c.quiet {
			t.Errorf("%s: quiet %v, want %v", c.name, got, c.quiet)
		}
	}
	if (Mark{}).quiet(func(int) (threadStatus, bool) { return threadStatus{asleep: true}, true }) {
		t.Error("the zero mark is quiet")
	}
}

// TestMarkSeesAKill, in the running kernel: the audit thread is seen
// quiet while nothing is recorded, and a process killed by seccomp after
// the mark is never missed: the mark is no longer quiet once the process
// is dead, and IfKilled given the mark names the call. It fails if the
// kernel's audit thread can go back to sleep after a kill without its
// count moving (the fast path would then hide kills).
func TestMarkSeesAKill(t *testing.T) {
	if kauditdPid() == 0 {
		// No audit thread (no audit in the kernel, or /proc without the
		// host's kernel threads): no mark, so every stop reads the log.
		if m, ok := MarkAudit(); ok {
			t.Fatalf("a mark %+v without kauditd", m)
		}
		if _, audit := os.Stat("/proc/self/loginuid"); audit == nil && os.Geteuid() == 0 && os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatal("a kernel with audit, root, and no kauditd found")
		}
		return
	}
	// Quiet while nothing happens: other tests' kills and logged calls
	// wake the thread, so wait for a quiet 20 ms, up to 10 s.
	quiet := false
	for deadline := time.Now().Add(10 * time.Second); !quiet && time.Now().Before(deadline); {
		m, ok := MarkAudit()
		time.Sleep(20 * time.Millisecond)
		quiet = ok && m.Quiet()
	}
	if !quiet {
		t.Fatal("kauditd never stayed asleep for 20 ms in 10 s: every container's stop would read the kernel log")
	}
	var m Mark
	for deadline := time.Now().Add(10 * time.Second); ; {
		var ok bool
		if m, ok = MarkAudit(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kauditd not seen asleep in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	since := time.Now()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), killEnv+"=1")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGSYS {
		t.Fatalf("the helper was not killed by seccomp: %v", err)
	}
	if m.Quiet() {
		t.Fatal("the audit thread looks quiet after a seccomp kill: poststop would not look for it")
	}
	if os.Geteuid() != 0 {
		return // the log needs CAP_SYSLOG
	}
	name, found := IfKilled(cmd.Process.Pid, since, m, translate.NativeArch(), time.Second)
	if !found || name != "getppid" {
		t.Errorf("IfKilled: %q %v, want getppid", name, found)
	}
}
