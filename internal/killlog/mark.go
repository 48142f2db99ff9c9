package killlog

import (
	"strconv"
	"strings"
)

// Mark is the kernel's audit thread (kauditd) seen asleep: its pid and
// how many times it had gone to sleep then (its voluntary context
// switches). A seccomp kill queues its record and wakes kauditd before
// the process dies; kauditd takes the record off its queue, prints it and
// goes back to sleep, counting one more voluntary switch. So where
// kauditd is asleep now and has not gone to sleep since the mark, it has
// not been woken since, and no process has been killed by seccomp since
// (Quiet): a caller that took the mark before a process could run need
// not read the kernel log after its death. A kauditd woken for any other
// record (another process's, an AppArmor load, nftables with audit on)
// only sends the caller to the log as before.
type Mark struct {
	Pid    int    `json:"pid"`
	Sleeps uint64 `json:"sleeps"`
}

// MarkAudit returns the audit thread's mark when it is asleep; ok is false
// where there is no kauditd (no audit in the kernel), where /proc does not
// show the host's kernel threads, and while kauditd is at work.
func MarkAudit() (m Mark, ok bool) {
	pid := kauditdPid()
	if pid == 0 {
		return Mark{}, false
	}
	st, ok := auditThreadStatus(pid)
	if !ok || !st.asleep {
		return Mark{}, false
	}
	return Mark{Pid: pid, Sleeps: st.sleeps}, true
}

// Quiet reports whether the audit thread is asleep and has not gone to
// sleep since m was taken: then it has not been woken since, and no
// seccomp kill has been recorded since. The zero Mark is never quiet.
func (m Mark) Quiet() bool { return m.quiet(auditThreadStatus) }

func (m Mark) quiet(status func(pid int) (threadStatus, bool)) bool {
	if m.Pid <= 0 {
		return false
	}
	st, ok := status(m.Pid)
	return ok && st.asleep && st.sleeps == m.Sleeps
}

// threadStatus is what Mark needs of /proc/PID/status.
type threadStatus struct {
	asleep bool   // State S (sleeping) or I (idle)
	sleeps uint64 // voluntary_ctxt_switches
}

// auditThreadStatus reads /proc/PID/status of kauditd; ok is false when
// pid is not the kernel thread kauditd (Name kauditd, parent kthreadd) or
// the file does not say.
func auditThreadStatus(pid int) (threadStatus, bool) {
	var buf [4096]byte
	return parseAuditThreadStatus(readSmall("/proc/"+strconv.Itoa(pid)+"/status", buf[:]))
}

// parseAuditThreadStatus reads the fields of a /proc/PID/status that Mark
// needs, and says whether it is kauditd's.
func parseAuditThreadStatus(s string) (threadStatus, bool) {
	var st threadStatus
	var name, ppid, state, sleeps bool
	for line := range strings.Lines(s) {
		k, v, found := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			name = v == "kauditd"
		case "PPid":
			ppid = v == "2"
		case "State":
			state = v != ""
			st.asleep = v != "" && (v[0] == 'S' || v[0] == 'I')
		case "voluntary_ctxt_switches":
			n, err := strconv.ParseUint(v, 10, 64)
			st.sleeps, sleeps = n, err == nil
		}
	}
	return st, name && ppid && state && sleeps
}
