package test

// int80 makes an i386 system call with `int $0x80` from 64-bit code and
// returns the kernel's result (a negative errno on failure). seccomp sees it
// with arch AUDIT_ARCH_I386 and i386 syscall numbers.
func int80(nr, a1, a2, a3 uint32) uint32
