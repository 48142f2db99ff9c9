package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Load installs the exported program itself, exactly as clawos-init loads
// the bytes clawos-run or clawos-hook hand it: no_new_privs first, then
// seccomp(SECCOMP_SET_MODE_FILTER) with SECCOMP_FILTER_FLAG_TSYNC, so that
// every thread of the process (the Go runtime's included) runs under it or
// nothing is loaded. No libseccomp is involved: what is loaded is what was
// exported.
func (p *Program) Load() error {
	if p.Len() == 0 || p.Len() > MaxInstructions {
		return clawerr.New(clawerr.EProto, "a BPF program has 1 to 4096 instructions")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "set no_new_privs")
	}
	b := p.Bytes()
	prog := unix.SockFprog{Len: uint16(p.Len()), Filter: (*unix.SockFilter)(unsafe.Pointer(&b[0]))}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(b)
	if errno != 0 {
		return clawerr.Wrap(clawerr.EInternal, errno, "load the seccomp filter")
	}
	if r != 0 {
		return clawerr.New(clawerr.EInternal, fmt.Sprintf("load the seccomp filter: thread %d could not be synchronised", r))
	}
	return nil
}
