// Package platform probes, unconfined, what the running kernel offers a
// sandbox: facts that change what a confinement test may expect (a kernel
// that refuses ia32 system calls never lets them reach seccomp), never
// facts that excuse a missing guarantee. The demo, clawos-run and the tests
// ask here instead of assuming the host they were written on.
package platform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// IA32Refused is how a verdict reads where the kernel refuses ia32 system
// calls before seccomp sees them (ia32_emulation=0,
// CONFIG_IA32_EMULATION_DEFAULT_DISABLED, some paravirtualised guests): the
// process dies of SIGSEGV with or without a filter.
const IA32Refused = "refused by the platform: no ia32 syscalls"

// ClassifyIA32 reads the end of a process that made one i386 getpid through
// int 0x80 with no filter loaded: a normal exit means the kernel delivers
// ia32 system calls (to seccomp first), SIGSEGV that it refuses them. Any
// other end is not an answer.
func ClassifyIA32(ws syscall.WaitStatus) (bool, error) {
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return true, nil
	case ws.Signaled() && ws.Signal() == unix.SIGSEGV:
		return false, nil
	case ws.Signaled():
		return false, fmt.Errorf("the ia32 probe died of %v, which says nothing about ia32 support", ws.Signal())
	}
	return false, fmt.Errorf("the ia32 probe exited with status %d", ws.ExitStatus())
}

// ChildEnv asks a program that calls RunChild first thing (clawos-run
// does) to make one platform probe and exit: the ia32 probe must run in a
// process of its own, since the kernel can kill it.
const ChildEnv = "CLAWOS_PLATFORM_PROBE"

// RunChild makes the probe ChildEnv names and exits, when it is set; it
// returns otherwise. "ia32": an i386 getpid through int 0x80 (SIGSEGV
// where the kernel refuses them).
func RunChild() {
	if os.Getenv(ChildEnv) != "ia32" {
		return
	}
	if amd64 {
		if err := DefaultSIGSEGV(); err != nil {
			fmt.Fprintln(os.Stderr, "ia32 probe:", err)
			os.Exit(125)
		}
		Int80(20, 0, 0, 0)
	}
	os.Exit(0)
}

// IA32Self is IA32 run through exe, a program that calls RunChild (the
// running clawos-run: no clawos-probe needed).
func IA32Self(exe string) (bool, error) {
	if !amd64 {
		return false, nil
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ChildEnv+"=ia32")
	return ia32Result(cmd.Run())
}

// IA32 reports whether the kernel delivers ia32 system calls (int 0x80 on
// x86_64), by running probe (clawos-probe) unconfined: `probe int80 20`.
// On other architectures it is false.
func IA32(probe string) (bool, error) {
	if !amd64 {
		return false, nil
	}
	return ia32Result(exec.Command(probe, "int80", "20").Run())
}

func ia32Result(err error) (bool, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee):
		return ClassifyIA32(ee.Sys().(syscall.WaitStatus))
	}
	return false, fmt.Errorf("run the ia32 probe: %w", err)
}

// LandlockABI is the kernel's Landlock ABI version, 0 where Landlock is
// absent or disabled.
func LandlockABI() int {
	const createRulesetVersion = 1
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0
	}
	return int(v)
}
