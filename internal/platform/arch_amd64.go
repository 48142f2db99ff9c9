package platform

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const amd64 = true

// Int80 makes an i386 system call with int $0x80 and returns the kernel's
// result (a negative errno on failure).
func Int80(nr, a1, a2, a3 uint32) uint32

// DefaultSIGSEGV gives SIGSEGV its default action (end the process) in
// this process. Where the kernel refuses ia32 system calls, int 0x80 raises
// SIGSEGV: without this, the Go runtime's handler turns it into a crash that
// exits with status 2, which says nothing about ia32; with it the process
// dies of SIGSEGV, the platform's answer. Call it before a seccomp filter
// is loaded (rt_sigaction may not be allowed after), and make no other use
// of memory faults afterwards.
func DefaultSIGSEGV() error {
	// struct sigaction of the kernel on x86_64: handler, flags, restorer, mask.
	var act struct {
		handler, flags, restorer uintptr
		mask                     uint64
	} // handler 0: SIG_DFL
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
