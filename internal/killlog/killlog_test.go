package killlog

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/translate"
)

// TestParse reads kernel log lines as the kernel writes them: the last kill
// of the pid at or after since, named for the architecture; a logged but
// allowed call (SCMP_ACT_LOG, sig=0), another pid and an older kill are not
// it.
func TestParse(t *testing.T) {
	const log = `[1.0] audit: type=1326 audit(1000.500:1): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=42 comm="a" exe="/a" sig=31 arch=c000003e syscall=62 compat=0 ip=0x1 code=0x80000000
[2.0] audit: type=1326 audit(2000.250:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=42 comm="a" exe="/a" sig=0 arch=c000003e syscall=0 compat=0 ip=0x1 code=0x7ffc0000
[3.0] audit: type=1326 audit(2000.300:3): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=43 comm="b" exe="/b" sig=31 arch=c000003e syscall=59 compat=0 ip=0x1 code=0x80000000
[4.0] audit: type=1326 audit(2000.400:4): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=42 comm="a" exe="/a" sig=31 arch=c000003e syscall=102 compat=0 ip=0x1 code=0x80000000
[5.0] audit: type=1326 audit(2000.500:5): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=44 comm="c" exe="/c" sig=31 arch=40000003 syscall=20 compat=1 ip=0x1 code=0x80000000
`
	for _, c := range []struct {
		pid   int
		since time.Time
		name  string
		found bool
	}{
		{42, time.Unix(1500, 0), "getuid", true},
		{42, time.Unix(0, 0), "getuid", true},
		{42, time.Unix(2001, 0), "unknown (the kernel did not log it)", false},
		// Stamped by the coarse clock, a tick before since: still it.
		{42, time.Unix(2000, 410_000_000), "getuid", true},
		// Beyond the slack: an older kill of a pid since reused.
		{42, time.Unix(2000, 400_000_000).Add(clockSlack + time.Millisecond), "unknown (the kernel did not log it)", false},
		{43, time.Unix(1500, 0), "execve", true},
		{44, time.Unix(1500, 0), "syscall 20 of another architecture (audit arch 40000003)", true},
		{45, time.Unix(0, 0), "unknown (the kernel did not log it)", false},
	} {
		name, found := Parse([]byte(log), c.pid, c.since, translate.ArchX8664)
		if name != c.name || found != c.found {
			t.Errorf("pid %d since %v: %q %v, want %q %v", c.pid, c.since, name, found, c.name, c.found)
		}
	}
}

// TestFind scripts the kernel: the log each read returns, the audit
// queue's backlog, whether kauditd sleeps (at each ask), a clock that
// moves only with the waits. IfKilled asks first, and reads the log once
// when the queue is empty and kauditd asleep, looks again every millisecond
// while kauditd runs with an empty queue (a record it took may not be
// printed yet: CI once read the log in that instant), and waits as before
// while records are queued or the kernel will not say; Syscall (a known
// kill) always waits for its record and never asks.
func TestFind(t *testing.T) {
	const rec = `[4.0] audit: type=1326 audit(2000.400:4): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=42 comm="a" exe="/a" sig=31 arch=c000003e syscall=102 compat=0 ip=0x1 code=0x80000000` + "\n"
	const other = "[1.0] eth0: link up\n"
	for _, c := range []struct {
		name     string
		ifKilled bool
		mark     Mark     // taken before the process ran
		quiet    bool     // the audit thread has not run since mark
		logs     []string // one per read; the last repeats
		backlog  int      // -1: the kernel will not say
		idle     []bool   // kauditd asleep, one per ask; the last repeats
		found    bool
		reads    int
		waited   time.Duration
	}{
		{"recorded at once", true, Mark{}, false, []string{rec}, 0, []bool{true}, true, 1, 0},
		{"not killed, queue empty, kauditd asleep", true, Mark{}, false, []string{other}, 0, []bool{true}, false, 1, 0},
		{"taken, printed after two looks", true, Mark{}, false, []string{other, other, rec}, 0, []bool{false, false, true}, true, 3, 2 * settle},
		{"kauditd never sleeps", true, Mark{}, false, []string{other}, 0, []bool{false}, false, 101, 100 * time.Millisecond},
		{"records queued", true, Mark{}, false, []string{other, other, rec}, 3, []bool{true}, true, 3, 20 * time.Millisecond},
		{"backlog unknown", true, Mark{}, false, []string{other}, -1, []bool{true}, false, 11, 100 * time.Millisecond},
		{"a known kill waits", false, Mark{}, false, []string{other}, 0, []bool{true}, false, 11, 100 * time.Millisecond},
		// The audit thread has not run since the mark: nothing is read.
		{"quiet since the mark", true, Mark{Pid: 30, Sleeps: 7}, true, []string{rec}, 0, []bool{true}, false, 0, 0},
		// It has: the kill is found as without a mark.
		{"woken since the mark", true, Mark{Pid: 30, Sleeps: 7}, false, []string{rec}, 0, []bool{true}, true, 1, 0},
		{"woken, records queued", true, Mark{Pid: 30, Sleeps: 7}, false, []string{other, rec}, 2, []bool{true}, true, 2, 10 * time.Millisecond},
		{"a zero mark is never quiet", true, Mark{}, true, []string{rec}, 0, []bool{true}, true, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := time.Unix(5000, 0)
			reads, asks := 0, 0
			var waited time.Duration
			src := source{
				read: func() ([]byte, error) {
					l := c.logs[min(reads, len(c.logs)-1)]
					reads++
					return []byte(l), nil
				},
				backlog: func() (int, bool) {
					if !c.ifKilled {
						t.Error("the kernel was asked its backlog for a known kill")
					}
					return c.backlog, c.backlog >= 0
				},
				idle: func() bool {
					i := c.idle[min(asks, len(c.idle)-1)]
					asks++
					return i
				},
				quiet: func(m Mark) bool {
					if m != c.mark || m.Pid == 0 {
						t.Errorf("asked whether %+v is quiet", m)
					}
					return c.quiet
				},
				sleep: func(d time.Duration) { waited += d; clock = clock.Add(d) },
				now:   func() time.Time { return clock },
			}
			name, found := src.find(42, time.Unix(1500, 0), c.mark, translate.ArchX8664, 100*time.Millisecond, c.ifKilled)
			if found != c.found || (found && name != "getuid") || reads != c.reads || waited != c.waited {
				t.Errorf("%q %v after %d reads and %v, want found %v after %d reads and %v", name, found, reads, waited, c.found, c.reads, c.waited)
			}
		})
	}
}

// TestKauditd finds the kernel's audit thread wherever the kernel answers
// AUDIT_GET (audit built in and initialised): a kernel thread, child of
// kthreadd. Without it IfKilled would look every millisecond until its
// deadline.
func TestKauditd(t *testing.T) {
	pid := kauditdPid()
	if _, ok := auditBacklog(); ok && pid == 0 {
		t.Fatal("the kernel answers AUDIT_GET, and no kauditd was found")
	}
	if pid != 0 {
		t.Logf("kauditd is pid %d, asleep %v", pid, kauditdSleeps())
	}
}

// TestReadKernelLog: the read is the size of the kernel's ring buffer
// (what dmesg reads), and the log is readable as root.
func TestReadKernelLog(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatal("reading the kernel log needs CAP_SYSLOG (root)")
		}
		t.Skip("reading the kernel log needs CAP_SYSLOG")
	}
	ring, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil || ring <= 0 {
		t.Fatalf("the kernel does not say its log's size: %d %v", ring, err)
	}
	if got := logBuffer(); got != min(ring, maxLogBuffer) {
		t.Errorf("reads %d bytes, the ring holds %d", got, ring)
	}
	log, err := readKernelLog()
	if err != nil || len(log) > ring {
		t.Fatalf("read %d bytes of a %d-byte ring: %v", len(log), ring, err)
	}
	t.Logf("ring %d bytes, %d in use", ring, len(log))
}

// TestAuditBacklog asks the running kernel. As root on the host of a
// kernel with audit (/proc/self/loginuid is audit's) the answer is
// required (the hooks' fast path depends on it); elsewhere the kernel
// refuses, which is the documented fallback.
func TestAuditBacklog(t *testing.T) {
	n, ok := auditBacklog()
	_, audit := os.Stat("/proc/self/loginuid")
	if os.Geteuid() == 0 && os.Getenv("CLAWOS_INTEGRATION") != "" && audit == nil && !ok {
		t.Fatal("AUDIT_GET refused to root on a kernel with audit: poststop would wait 10 ms at every container's stop")
	}
	if ok && n < 0 {
		t.Errorf("backlog %d", n)
	}
	t.Logf("audit backlog %d (answered: %v)", n, ok)
}

// BenchmarkParse reads a kernel log of 2,000 lines, a few of them seccomp
// kills of other processes, as poststop and clawos-run do after every
// exit: a log without the pid's record is read in full.
// BenchmarkParse reads a kernel log of 2,000 lines for a pid that has no
// record: "driver" is mostly other lines, "audit" other processes' seccomp
// records (what a node whose agents run with SECCOMP_RET_LOG rules, or a
// complain run, fills the ring buffer with).
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name  string
		every int // an audit record every this many lines
	}{{"driver", 100}, {"audit", 1}} {
		var log bytes.Buffer
		for i := 0; i < 2000; i++ {
			if i%c.every == 0 {
				fmt.Fprintf(&log, "[ 2634.619644] audit: type=1326 audit(1796219833.095:%d): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=%d comm=\"clawos-probe\" exe=\"/bin/clawos-probe\" sig=%d arch=c000003e syscall=102 compat=0 ip=0x4 code=0x80000000\n", i, 20000+i, 31*(i%2))
				continue
			}
			fmt.Fprintf(&log, "[ 2634.%06d] eth0: some driver said something about its link state, line %d of the kernel's log\n", i, i)
		}
		arch := translate.NativeArch()
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, found := Parse(log.Bytes(), 1234, time.Unix(0, 0), arch); found {
					b.Fatal("found a record of another pid")
				}
			}
		})
	}
}
