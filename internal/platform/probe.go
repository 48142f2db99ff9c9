package platform

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Report is what Probe found. Every field is measured on this host,
// unconfined; none is assumed from the kernel version.
type Report struct {
	Kernel string
	Arch   string
	// IA32 is nil when it was not probed (no clawos-probe given) or the
	// architecture has none.
	IA32     *bool
	X32      bool
	Landlock int // ABI version, 0 without
	AppArmor bool
	// SeccompNotify: user notification (learn and complain modes).
	SeccompNotify bool
	// PidfdGetfd: taking the listener from the sandbox (learn mode).
	PidfdGetfd bool
	UserNS     UserNS
	Cgroup     Cgroup
	Nftables   bool
	// MountSetattr: recursive read-only binds (rro) and idmapped mounts.
	MountSetattr bool
	// MemfdNoexec is vm.memfd_noexec (0, 1, 2), -1 where the kernel has
	// no such setting.
	MemfdNoexec int
}

// UserNS is what user namespaces allow here.
type UserNS struct {
	Max int // user.max_user_namespaces
	// Unprivileged: an unprivileged user may create one (Debian's
	// kernel.unprivileged_userns_clone, Ubuntu's
	// kernel.apparmor_restrict_unprivileged_userns).
	Unprivileged bool
	Why          string // why not, when not
}

// Cgroup is the cgroup layout.
type Cgroup struct {
	Mode        string   // "v2", "hybrid" or "v1"
	Controllers []string // available (v2: the root's cgroup.controllers)
	// IOWeight: block IO can be weighted (IOWeight), a P1.5 io.weight applies.
	IOWeight bool
}

// Probe measures the host. ia32 runs the one probe that needs a process
// of its own (IA32 or IA32Self); nil skips it.
func Probe(ia32 func() (bool, error)) Report {
	var r Report
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Kernel = unix.ByteSliceToString(u.Release[:])
		r.Arch = unix.ByteSliceToString(u.Machine[:])
	}
	if ia32 != nil && amd64 {
		if has, err := ia32(); err == nil {
			r.IA32 = &has
		}
	}
	if amd64 {
		// An x32 getpid: ENOSYS without x32 support. Safe in-process.
		_, _, e := unix.RawSyscall(0x40000000|unix.SYS_GETPID, 0, 0, 0)
		r.X32 = e == 0
	}
	r.Landlock = LandlockABI()
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
		_, err := os.Stat("/sys/kernel/security/apparmor")
		r.AppArmor = err == nil
	}
	var sizes [3]uint16
	const seccompGetNotifSizes = 3
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, seccompGetNotifSizes, 0, uintptr(unsafe.Pointer(&sizes)))
	r.SeccompNotify = e == 0
	// pidfd_getfd on a bad pidfd: EBADF where it exists, ENOSYS where not.
	_, _, e = unix.Syscall(unix.SYS_PIDFD_GETFD, ^uintptr(0), 0, 0)
	r.PidfdGetfd = e != unix.ENOSYS
	r.UserNS = probeUserNS()
	r.Cgroup = probeCgroup("/sys/fs/cgroup")
	r.Cgroup.IOWeight = IOWeight("/sys/fs/cgroup", "/sys/block")
	if c, err := nftables.New(); err == nil {
		_, err := c.ListTables()
		r.Nftables = err == nil
	}
	_, _, e = unix.Syscall6(unix.SYS_MOUNT_SETATTR, ^uintptr(0), 0, 0, 0, 0, 0)
	r.MountSetattr = e != unix.ENOSYS
	r.MemfdNoexec = -1
	if v, ok := sysctl("vm/memfd_noexec"); ok {
		r.MemfdNoexec = v
	}
	return r
}

func sysctl(name string) (int, bool) {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return v, err == nil
}

func probeUserNS() UserNS {
	u := UserNS{Unprivileged: true}
	u.Max, _ = sysctl("user/max_user_namespaces")
	switch {
	case u.Max == 0:
		u.Unprivileged, u.Why = false, "user.max_user_namespaces is 0"
	default:
		if v, ok := sysctl("kernel/unprivileged_userns_clone"); ok && v == 0 {
			u.Unprivileged, u.Why = false, "kernel.unprivileged_userns_clone is 0"
		}
		if v, ok := sysctl("kernel/apparmor_restrict_unprivileged_userns"); ok && v == 1 {
			u.Unprivileged, u.Why = false, "kernel.apparmor_restrict_unprivileged_userns is 1"
		}
	}
	return u
}

// isCgroup2 reports whether a cgroup v2 (unified) hierarchy is mounted at p.
func isCgroup2(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func probeCgroup(root string) Cgroup {
	var st unix.Statfs_t
	c := Cgroup{Mode: "v1"}
	if isCgroup2(root) {
		c.Mode = "v2"
		if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
			c.Controllers = strings.Fields(string(b))
		}
		return c
	}
	if isCgroup2(filepath.Join(root, "unified")) {
		c.Mode = "hybrid"
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && e.Name() != "unified" && e.Name() != "systemd" && !strings.Contains(e.Name(), ",") {
			if unix.Statfs(filepath.Join(root, e.Name()), &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
				c.Controllers = append(c.Controllers, e.Name())
			}
		}
	}
	return c
}

// IOWeight reports whether block IO can be weighted (P1.5 io.weight) under
// the cgroup filesystem mounted at mount, with the block devices listed in
// sysBlock (normally /sys/block): on cgroup v2 the io controller with the
// IO cost model (io.cost.qos) or BFQ; on v1 the blkio controller with a
// scheduler that offers weights (BFQ, or CFQ before Linux 5.0, whose
// blkio.weight shows in the root). A v1 root never shows BFQ's
// blkio.bfq.weight, so BFQ is found among the schedulers the kernel offers
// the devices. Docker likewise discards a weight the kernel cannot apply.
func IOWeight(mount, sysBlock string) bool {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	bfq := func() bool {
		scheds, _ := filepath.Glob(filepath.Join(sysBlock, "*", "queue", "scheduler"))
		for _, f := range scheds {
			b, _ := os.ReadFile(f)
			for _, s := range strings.Fields(string(b)) {
				if strings.Trim(s, "[]") == "bfq" {
					return true
				}
			}
		}
		return false
	}
	if isCgroup2(mount) {
		b, _ := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
		return slices.Contains(strings.Fields(string(b)), "io") && (exists(filepath.Join(mount, "io.cost.qos")) || bfq())
	}
	blkio := filepath.Join(mount, "blkio")
	return exists(blkio) && (exists(filepath.Join(blkio, "blkio.weight")) || bfq())
}

// Rows is the report as a table: feature, value, what it means for the
// sandbox.
func (r Report) Rows() [][3]string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	ia32 := "not probed"
	switch {
	case !amd64:
		ia32 = "none on this architecture"
	case r.IA32 != nil && *r.IA32:
		ia32 = "delivered (seccomp kills them: bad architecture)"
	case r.IA32 != nil:
		ia32 = IA32Refused
	}
	landlock := "off (no exec restriction where a whitelist allows execve: --landlock auto refuses such whitelists)"
	if r.Landlock > 0 {
		landlock = fmt.Sprintf("ABI %d", r.Landlock)
	}
	userns := yes(r.UserNS.Unprivileged)
	if !r.UserNS.Unprivileged {
		userns = "no: " + r.UserNS.Why
	}
	memfd := "no such setting (memfds may be executable)"
	if r.MemfdNoexec >= 0 {
		memfd = strconv.Itoa(r.MemfdNoexec)
	}
	return [][3]string{
		{"kernel", r.Kernel + " " + r.Arch, ""},
		{"ia32 syscalls", ia32, "i386 calls through int 0x80"},
		{"x32 syscalls", yes(r.X32), "the filters kill them either way"},
		{"Landlock", landlock, "exec restriction where a whitelist allows execve; TCP port rules from ABI 4"},
		{"AppArmor", yes(r.AppArmor), "--apparmor required needs it"},
		{"seccomp user notification", yes(r.SeccompNotify), "learn and complain modes"},
		{"pidfd_getfd", yes(r.PidfdGetfd), "learn and complain modes"},
		{"unprivileged user namespaces", userns, "rootless sandboxes"},
		{"cgroups", r.Cgroup.Mode + " (" + strings.Join(r.Cgroup.Controllers, " ") + ")", "P1.5 quotas (rootless: v2 with delegation)"},
		{"block IO weight", yes(r.Cgroup.IOWeight), "a P1.5 slice's io.weight (left out where no: a share, not a limit)"},
		{"nftables", yes(r.Nftables), "port restrictions"},
		{"mount_setattr", yes(r.MountSetattr), "recursive read-only binds, idmapped mounts"},
		{"vm.memfd_noexec", memfd, ""},
	}
}

// Guarantee is one guarantee of docs/security.md and whether it holds on
// this host, with the reason.
type Guarantee struct {
	What  string
	Holds bool
	Why   string
}

// Guarantees says which of the sandbox's guarantees hold on this host for
// a caller that is root or not.
func (r Report) Guarantees(root bool) []Guarantee {
	ia32 := Guarantee{What: "i386 and x32 calls never reach the whitelist", Holds: true, Why: "the filters kill every other architecture's calls"}
	if r.IA32 != nil && !*r.IA32 {
		ia32.Why = IA32Refused + "; the filters would kill them too"
	}
	quotas := Guarantee{What: "P1.5 quotas (--slice)", Holds: root || r.Cgroup.Mode == "v2", Why: "cgroups " + r.Cgroup.Mode}
	if !quotas.Holds {
		quotas.Why += ": a non-root user cannot manage cgroup v1"
	}
	rootless := Guarantee{What: "sandboxes for a non-root user", Holds: r.UserNS.Unprivileged, Why: "unprivileged user namespaces"}
	if !rootless.Holds {
		rootless.Why = r.UserNS.Why
	}
	why := func(ok bool, yes, no string) string {
		if ok {
			return yes
		}
		return no
	}
	return []Guarantee{
		{"the agent runs under exactly its whitelist (two seccomp stages)", true, "seccomp-bpf with TSYNC"},
		ia32,
		{"no program but the agent starts where the whitelist does not allow execve", true, "seccomp: only clawos-init's execve, at a secret address"},
		{"where the whitelist allows execve, only programs of the read-only view execute (clawos-run; the hook: the agent and its interpreters)", r.Landlock > 0,
			why(r.Landlock > 0, fmt.Sprintf("Landlock ABI %d", r.Landlock), "no Landlock: --landlock auto refuses such whitelists")},
		{"port restrictions, default-deny for every protocol", r.Nftables, why(r.Nftables, "nftables", "no nftables: whitelists with port rules are refused")},
		{"TCP ports held by a second layer, and port rules under --net host", r.Landlock >= 4,
			why(r.Landlock >= 4, fmt.Sprintf("Landlock ABI %d network rules", r.Landlock), "no Landlock network rules (ABI 4, Linux 6.7): nftables alone, and --net host with port rules is refused")},
		{"read-only views are read-only all the way down", r.MountSetattr, why(r.MountSetattr, "mount_setattr", "no mount_setattr: the runtime refuses rro")},
		{"AppArmor profile (--apparmor)", r.AppArmor, why(r.AppArmor, "AppArmor enabled", "no AppArmor: auto runs without, required refuses")},
		{"learn and complain modes", r.SeccompNotify && r.PidfdGetfd, why(r.SeccompNotify && r.PidfdGetfd, "seccomp user notification, pidfd_getfd", "no seccomp user notification or pidfd_getfd")},
		quotas,
		rootless,
	}
}
