package translate

import (
	"fmt"
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Arch is a target architecture, named as the kernel and P1.2 users name it.
type Arch string

// The architectures a whitelist can be translated for.
const (
	ArchX8664   Arch = "x86_64"
	ArchAArch64 Arch = "aarch64"
)

type archInfo struct {
	scmp  libseccomp.ScmpArch
	oci   specs.Arch
	audit uint32 // AUDIT_ARCH_* value the kernel puts in seccomp_data.arch
	goarc string // GOARCH
}

var arches = map[Arch]archInfo{
	ArchX8664:   {libseccomp.ArchAMD64, specs.ArchX86_64, 0xc000003e, "amd64"},
	ArchAArch64: {libseccomp.ArchARM64, specs.ArchAARCH64, 0xc00000b7, "arm64"},
}

// KnownArches lists the supported target architectures, sorted.
func KnownArches() []Arch {
	out := make([]Arch, 0, len(arches))
	for a := range arches {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// NativeArch is the architecture this program runs on, or "" when it is not
// a supported target.
func NativeArch() Arch {
	for a, i := range arches {
		if i.goarc == runtime.GOARCH {
			return a
		}
	}
	return ""
}

// ParseArch accepts a kernel name (x86_64, aarch64), a GOARCH (amd64, arm64)
// or an OCI name (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64).
func ParseArch(s string) (Arch, error) {
	for a, i := range arches {
		if s == string(a) || s == i.goarc || s == string(i.oci) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unsupported architecture %q (supported: %v)", s, KnownArches())
}

// OCI returns the runtime-spec name of the architecture.
func (a Arch) OCI() specs.Arch { return arches[a].oci }

// Seccomp returns the libseccomp architecture token.
func (a Arch) Seccomp() libseccomp.ScmpArch { return arches[a].scmp }

// Audit returns the AUDIT_ARCH_* value of the architecture.
func (a Arch) Audit() uint32 { return arches[a].audit }

// SyscallNumber returns the number of a syscall on a, and false when the
// name is not a real syscall there. libseccomp also knows pseudo-syscalls
// (negative numbers, such as recv on x86_64, which only exists inside
// socketcall on multiplexing architectures); those count as absent.
func (a Arch) SyscallNumber(name string) (int, bool) {
	nr, err := libseccomp.GetSyscallFromNameByArch(name, a.Seccomp())
	if err != nil || int(nr) < 0 {
		return 0, false
	}
	return int(nr), true
}

// maxSyscallNr bounds the scan of a syscall table. x86_64 and aarch64 stay
// below 512 (x32 numbers start at 512 with the x32 bit set, which libseccomp
// does not give for these arches).
const maxSyscallNr = 1024

// Syscalls lists every syscall name libseccomp knows on a, sorted.
func (a Arch) Syscalls() []string {
	var out []string
	for nr := 0; nr < maxSyscallNr; nr++ {
		name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(a.Seccomp())
		if err != nil || name == "" {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// SyscallName returns the name of syscall nr on a, or its number in
// brackets when libseccomp has no name for it.
func (a Arch) SyscallName(nr int) string {
	name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(a.Seccomp())
	if err != nil || name == "" {
		return fmt.Sprintf("syscall %d", nr)
	}
	return name
}
