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
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/translate"
)

var (
	type1326 = []byte("type=1326 ")
	sig31    = []byte(" sig=31 ")
)

var record = regexp.MustCompile(`type=1326 audit\((\d+)\.(\d+):\d+\): .* pid=(\d+) .* sig=31 arch=([0-9a-f]+) syscall=(\d+)`)

// Syscall names the syscall of the last seccomp kill of pid logged at or
// after since, looking again for at most wait while none is found. found
// is false when there is none (then name says so); a call of another
// architecture is named by its number and audit architecture. It is for
// a caller that knows pid died of SIGSYS: the record is on its way.
func Syscall(pid int, since time.Time, arch translate.Arch, wait time.Duration) (name string, found bool) {
	return kernel.find(pid, since, arch, wait, false)
}

// IfKilled is Syscall for a caller that does not know whether pid was
// killed at all, once pid is dead (an engine's poststop hook): the record
// of a kill is queued for the kernel's audit thread before the process
// dies, so when the kernel's audit queue is empty (auditBacklog) and the
// log has no record, none is coming, and IfKilled returns after one more
// read settle later (for the instant between the audit thread's taking a
// record off the queue and printing it) instead of waiting out wait.
// Where the kernel will not tell its backlog, or the queue holds records,
// it waits as Syscall does.
func IfKilled(pid int, since time.Time, arch translate.Arch, wait time.Duration) (name string, found bool) {
	return kernel.find(pid, since, arch, wait, true)
}

// settle is how long IfKilled waits for a record the audit thread has
// taken off its queue to reach the log.
const settle = time.Millisecond

// source is where the records come from: the kernel, or a test's script.
type source struct {
	read    func() ([]byte, error) // the kernel log
	backlog func() (int, bool)     // records queued for the audit thread
	sleep   func(time.Duration)
	now     func() time.Time
}

var kernel = source{read: readKernelLog, backlog: auditBacklog, sleep: time.Sleep, now: time.Now}

func (src source) find(pid int, since time.Time, arch translate.Arch, wait time.Duration, ifKilled bool) (string, bool) {
	deadline := src.now().Add(wait)
	for {
		name, found := src.once(pid, since, arch)
		if found || !src.now().Before(deadline) {
			return name, found
		}
		if ifKilled {
			if n, ok := src.backlog(); ok && n == 0 {
				src.sleep(settle)
				return src.once(pid, since, arch)
			}
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

func readKernelLog() ([]byte, error) {
	buf := make([]byte, 1<<20)
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
		m := record.FindStringSubmatch(string(line))
		if m == nil || m[3] != strconv.Itoa(pid) {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		ms, _ := strconv.ParseInt(m[2], 10, 64)
		// The record's time has millisecond resolution.
		if time.Unix(sec, ms*int64(time.Millisecond)).Before(since.Truncate(time.Millisecond)) {
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
