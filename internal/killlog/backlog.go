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
	_, st := kauditdStat()
	// pid (comm) STATE ...
	i := strings.LastIndexByte(st, ')')
	return i > 0 && i+2 < len(st) && (st[i+2] == 'S' || st[i+2] == 'I')
}

// kauditdPid is the pid of the kernel thread kauditd, 0 if there is none.
func kauditdPid() int {
	pid, _ := kauditdStat()
	return pid
}

// kauditdStat finds the kernel thread kauditd among kthreadd's children,
// and returns its pid and /proc/PID/stat; 0 and "" if there is none. Its
// parent is kthreadd (pid 2): no process can take the name.
func kauditdStat() (int, string) {
	var buf [1024]byte
	for _, p := range kthreads() {
		st := readSmall("/proc/"+strconv.Itoa(p)+"/stat", buf[:])
		i, j := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if i < 0 || j < i || st[i+1:j] != "kauditd" || !strings.HasPrefix(st, strconv.Itoa(p)+" (") {
			continue
		}
		if ppidOf(st) == 2 {
			return p, st
		}
	}
	return 0, ""
}

// kthreads are the pids of kthreadd's children, the kernel threads, as the
// kernel lists them; where it does not (no CONFIG_PROC_CHILDREN), every
// pid, lowest first (kernel threads have the lowest).
func kthreads() []int {
	var pids []int
	if b, err := os.ReadFile("/proc/2/task/2/children"); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		return pids
	}
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		if p, err := strconv.Atoi(n); err == nil {
			pids = append(pids, p)
		}
	}
	sort.Ints(pids)
	return pids
}

// readSmall is the start of a small file (a /proc record) read into buf,
// with one open, read and close; "" if it cannot be read.
func readSmall(path string, buf []byte) string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
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
