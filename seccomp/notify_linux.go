package seccomp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Call is one system call a seccomp user notification reports: the
// thread's pid as this process sees it, and the seccomp data.
type Call struct {
	Pid  uint32
	Nr   int32
	Arch uint32 // AUDIT_ARCH_* value
	IP   uint64
	Args [6]uint64
	// Valid reports whether the call still waits for its answer
	// (SECCOMP_IOCTL_NOTIF_ID_VALID): what was read from Pid's memory
	// before it returns true was the caller's, not a process that took
	// its pid after it died. nil outside Supervise.
	Valid func() bool `json:"-"`
}

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and struct seccomp_notif_resp (include/uapi/linux/seccomp.h).
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// listenerLink is what /proc/PID/fd/N reads for a seccomp listener.
const listenerLink = "anon_inode:seccomp notify"

// TakeListener copies the seccomp listener fd that process pid holds
// (clawos-init --notify, between loading its filter and the execve that
// waits for an answer) into this process with pidfd_getfd. It looks until
// timeout, and fails at once if the process is gone.
func TakeListener(pid int, timeout time.Duration) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "pidfd_open of the sandbox's process")
	}
	defer unix.Close(pidfd)
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Microsecond) {
		if n, ok := findListener(dir); ok {
			fd, err := unix.PidfdGetfd(pidfd, n, 0)
			if err != nil {
				return nil, clawerr.Wrap(clawerr.EPerm, err, "pidfd_getfd of the seccomp listener")
			}
			return os.NewFile(uintptr(fd), "seccomp-listener"), nil
		}
		if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
			return nil, clawerr.Wrap(clawerr.ENoEnt, err, "the sandbox's process exited before it loaded its filter")
		}
		if time.Now().After(deadline) {
			return nil, clawerr.New(clawerr.ETimeout, fmt.Sprintf("no seccomp listener in process %d after %s", pid, timeout))
		}
	}
}

func findListener(dir string) (int, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == listenerLink {
			n, err := strconv.Atoi(e.Name())
			return n, err == nil
		}
	}
	return 0, false
}

// Supervise answers every notification of listener: it calls record with
// the call, then lets the call continue as if the notifying filter had
// allowed it (SECCOMP_USER_NOTIF_FLAG_CONTINUE; other stacked filters still
// apply). It returns when no process uses the filter any more.
func Supervise(listener *os.File, record func(Call)) error {
	fd := int(listener.Fd())
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		pfd[0].Revents = 0
		if _, err := unix.Poll(pfd, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return clawerr.Wrap(clawerr.EIO, err, "poll the seccomp listener")
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			return nil // POLLHUP: every process under the filter is gone
		}
		var n seccompNotif
		if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
				continue // the caller was interrupted or died meanwhile
			}
			return clawerr.Wrap(clawerr.EIO, err, "receive a seccomp notification")
		}
		id := n.ID
		valid := func() bool { return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil }
		record(Call{Pid: n.Pid, Nr: n.Nr, Arch: n.Arch, IP: n.IP, Args: n.Args, Valid: valid})
		resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp)); err != nil && !errors.Is(err, unix.ENOENT) {
			return clawerr.Wrap(clawerr.EIO, err, "answer a seccomp notification")
		}
	}
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}
