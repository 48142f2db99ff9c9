//go:build !amd64

package platform

const amd64 = false

func Int80(nr, a1, a2, a3 uint32) uint32 { panic("int 0x80 exists only on x86_64") }

// DefaultSIGSEGV is needed only where Int80 exists.
func DefaultSIGSEGV() error { return nil }
