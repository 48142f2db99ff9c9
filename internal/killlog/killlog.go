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
// architecture is named by its number and audit architecture.
func Syscall(pid int, since time.Time, arch translate.Arch, wait time.Duration) (name string, found bool) {
	deadline := time.Now().Add(wait)
	for {
		name, found = once(pid, since, arch)
		if found || !time.Now().Before(deadline) {
			return name, found
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func once(pid int, since time.Time, arch translate.Arch) (string, bool) {
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return "unknown (the kernel log is not readable)", false
	}
	return Parse(buf[:n], pid, since, arch)
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
