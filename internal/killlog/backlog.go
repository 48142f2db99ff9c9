package killlog

import (
	"encoding/binary"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// auditBacklog is the number of audit records the kernel has queued for
// its audit thread (kauditd) and not yet delivered: the backlog field of
// AUDIT_GET's struct audit_status. Without an audit daemon, kauditd
// prints each record to the kernel log as it takes it off that queue. It
// needs CAP_AUDIT_CONTROL in the initial user namespace and pid namespace
// (root on the host, as the engines' hooks run); ok is false where the
// kernel will not say (a user, a container, no audit in the kernel).
func auditBacklog() (n int, ok bool) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	// Never wait long for an answer: the caller falls back to waiting for
	// the record itself.
	tv := unix.Timeval{Usec: 100000}
	if unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) != nil {
		return 0, false
	}
	req := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.AUDIT_GET)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence
	if unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}) != nil {
		return 0, false
	}
	buf := make([]byte, 4096)
	for {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, false
		}
		return parseStatus(buf[:m])
	}
}

// backlogOffset is where struct audit_status holds backlog: after mask,
// enabled, failure, pid, rate_limit, backlog_limit and lost (u32 each).
const backlogOffset = 7 * 4

// parseStatus reads the backlog from the kernel's answer to AUDIT_GET; an
// error message or anything else is ok false.
func parseStatus(b []byte) (int, bool) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Type == unix.AUDIT_GET && len(m.Data) >= backlogOffset+4 {
			return int(binary.NativeEndian.Uint32(m.Data[backlogOffset:])), true
		}
	}
	return 0, false
}

// kauditdSleeps reports whether the kernel's audit thread (kauditd) is
// asleep: it sleeps only once its queue is empty and every record it took
// off it was sent and printed. A kauditd not found (no audit in the
// kernel) or in any other state is not asleep.
func kauditdSleeps() bool {
	pid := kauditdPid()
	if pid == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	st := string(b)
	i := strings.LastIndexByte(st, ')')
	return i > 0 && i+2 < len(st) && strings.HasPrefix(st[:i], strconv.Itoa(pid)+" (kauditd") && (st[i+2] == 'S' || st[i+2] == 'I')
}

// kauditdPid is the pid of the kernel thread kauditd, 0 if there is none.
// Kernel threads have the lowest pids: the scan is short.
func kauditdPid() int {
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if p, err := strconv.Atoi(n); err == nil {
			pids = append(pids, p)
		}
	}
	sort.Ints(pids)
	for _, p := range pids {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm")
		if err == nil && string(comm) == "kauditd\n" {
			// Its parent is kthreadd (pid 2): no process can take the name.
			if stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); err == nil && ppidOf(string(stat)) == 2 {
				return p
			}
		}
	}
	return 0
}

// ppidOf is field 4 of a /proc/PID/stat line.
func ppidOf(stat string) int {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return -1
	}
	p, _ := strconv.Atoi(f[1])
	return p
}
