package platform

const amd64 = true

// Int80 makes an i386 system call with int $0x80 and returns the kernel's
// result (a negative errno on failure).
func Int80(nr, a1, a2, a3 uint32) uint32
