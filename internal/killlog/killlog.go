// Package killlog finds, in the kernel log, the syscall for which seccomp
// killed a process: the kernel logs a kill (SECCOMP_RET_KILL_*) as an
// audit record of type 1326 with the process's pid, its architecture and
// the syscall number. Reading the log needs CAP_SYSLOG (root); the kernel
// rate-limits these lines, and without an audit daemon its audit thread
// prints the record after the process has died.
package killlog

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/translate"
)

var (
	type1326 = []byte("type=1326 ")
	sig31    = []byte(" sig=31 ")
)

var record = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`type=1326 audit\((\d+)\.(\d+):\d+\): .* pid=(\d+) .* sig=31 arch=([0-9a-f]+) syscall=(\d+)`)
})

// Syscall names the syscall of the last seccomp kill of pid logged at or
// after since, looking again for at most wait while none is found. found
// is false when there is none (then name says so); a call of another
// architecture is named by its number and audit architecture. It is for
// a caller that knows pid died of SIGSYS: the record is on its way.
func Syscall(pid int, since time.Time, arch translate.Arch, wait time.Duration) (name string, found bool) {
	return kernel.find(pid, since, Mark{}, arch, wait, false)
}

// IfKilled is Syscall for a caller that does not know whether pid was
// killed at all, once pid is dead (an engine's poststop hook): the record
// of a kill is queued for the kernel's audit thread (kauditd) before the
// process dies, and kauditd prints it after taking it off the queue. So
// when the queue is empty (auditBacklog) and kauditd is asleep (it sleeps
// only with the queue empty and every record it took printed), a record
// not in the log is not coming, and IfKilled reads the log once and
// returns instead of waiting out wait. While kauditd runs (a record taken
// off the queue may not be printed yet: a preempted kauditd on a loaded
// machine took more than a millisecond in CI) it looks again every
// millisecond; where records are queued, or the kernel will not tell, it
// waits as Syscall does.
//
// mark is the audit thread as seen before pid could run (MarkAudit; the
// zero Mark when there was none): where kauditd has not been woken since
// (Mark.Quiet), pid was not killed by seccomp, and IfKilled returns
// without asking the kernel anything else or reading its log (one read of
// the log costs the kernel a walk over every record in its ring: 0.7 ms
// for a full ring of 128 KiB here, and it grows with the ring).
func IfKilled(pid int, since time.Time, mark Mark, arch translate.Arch, wait time.Duration) (name string, found bool) {
	return kernel.find(pid, since, mark, arch, wait, true)
}

// clockSlack is how far before since a record may be stamped and still be
// taken: more than a tick at the slowest kernel clock (HZ=100), far less
// than the kernel takes to hand a dead process's pid to another.
const clockSlack = 50 * time.Millisecond

// settle is how long IfKilled waits before it looks again while kauditd
// runs with its queue empty.
const settle = time.Millisecond

// source is where the records come from: the kernel, or a test's script.
type source struct {
	read    func() ([]byte, error) // the kernel log
	backlog func() (int, bool)     // records queued for the audit thread
	idle    func() bool            // the audit thread sleeps
	quiet   func(Mark) bool        // the audit thread has not run since the mark
	sleep   func(time.Duration)
	now     func() time.Time
}

var kernel = source{read: readKernelLog, backlog: auditBacklog, idle: kauditdSleeps, quiet: Mark.Quiet, sleep: time.Sleep, now: time.Now}

// notKilled is the name IfKilled gives when the audit thread has not run
// since the mark.
const notKilled = "none (the kernel's audit thread has not run since the mark)"

func (src source) find(pid int, since time.Time, mark Mark, arch translate.Arch, wait time.Duration, ifKilled bool) (string, bool) {
	if ifKilled && mark.Pid > 0 && src.quiet(mark) {
		return notKilled, false
	}
	deadline := src.now().Add(wait)
	for {
		// With the queue empty and kauditd asleep, every record queued
		// before now is in the log: one read decides, which is the
		// common case (a process that was not killed) at the cost of
		// one read instead of two.
		emptyQueue := false
		if ifKilled {
			if n, ok := src.backlog(); ok && n == 0 {
				if src.idle() {
					return src.once(pid, since, arch)
				}
				emptyQueue = true
			}
		}
		name, found := src.once(pid, since, arch)
		if found || !src.now().Before(deadline) {
			return name, found
		}
		if emptyQueue {
			// kauditd runs with an empty queue: a record it took may not
			// be printed yet.
			src.sleep(settle)
			continue
		}
		src.sleep(10 * time.Millisecond)
	}
}

func (src source) once(pid int, since time.Time, arch translate.Arch) (string, bool) {
	log, err := src.read()
	if err != nil {
		return "unknown (the kernel log is not readable)", false
	}
	return Parse(log, pid, since, arch)
}

// logBuffer is the size of the read: the kernel's ring buffer (128 KiB
// here), so that a read neither allocates and clears more than the log
// holds nor misses its start on a larger ring; 1 MiB where the kernel
// will not say, at most maxLogBuffer.
func logBuffer() int {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil || n <= 0 {
		return 1 << 20
	}
	return min(n, maxLogBuffer)
}

const maxLogBuffer = 32 << 20

func readKernelLog() ([]byte, error) {
	buf := make([]byte, logBuffer())
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// Parse is Syscall on a kernel log already read.
func Parse(log []byte, pid int, since time.Time, arch translate.Arch) (string, bool) {
	found := false
	name := "unknown (the kernel did not log it)"
	// Every line the expression matches for pid contains these three, so
	// the expression (which backtracks over a whole audit record) runs
	// only on the lines that have them: a log full of other processes'
	// records (SECCOMP_RET_LOG writes one per call) cost milliseconds per
	// read before.
	pidField := []byte(" pid=" + strconv.Itoa(pid) + " ")
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, pidField) || !bytes.Contains(line, sig31) || !bytes.Contains(line, type1326) {
			continue
		}
		m := record().FindStringSubmatch(string(line))
		if m == nil || m[3] != strconv.Itoa(pid) {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		ms, _ := strconv.ParseInt(m[2], 10, 64)
		// The record's time has millisecond resolution, and comes from the
		// kernel's coarse real-time clock (the syscall's entry, or the
		// last tick): up to a tick behind the moment, so a kill soon
		// after since can carry an earlier time (it did in CI: a
		// container killed milliseconds after its createRuntime stage).
		if time.Unix(sec, ms*int64(time.Millisecond)).Before(since.Add(-clockSlack).Truncate(time.Millisecond)) {
			continue
		}
		found = true
		nr, _ := strconv.Atoi(m[5])
		if a, _ := strconv.ParseUint(m[4], 16, 32); uint32(a) != arch.Audit() {
			name = fmt.Sprintf("syscall %d of another architecture (audit arch %s)", nr, m[4])
			continue
		}
		name = arch.SyscallName(nr)
	}
	return name, found
}
