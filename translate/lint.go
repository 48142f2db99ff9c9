package translate

import (
	"fmt"
	"sort"
	"strings"

	clawerr "github.com/clawos/clawos-security/errors"
)

// dangerous are syscalls that are legal to allow but break the sandbox or
// widen the kernel's attack surface, each with the reason given to the user.
var dangerous = map[string]string{
	"io_uring_setup":    "io_uring operations run inside the kernel without passing through seccomp, so they bypass this whitelist",
	"io_uring_enter":    "io_uring operations run inside the kernel without passing through seccomp, so they bypass this whitelist",
	"io_uring_register": "io_uring operations run inside the kernel without passing through seccomp, so they bypass this whitelist",
	"clone3":            "clone3 passes its flags in a struct that seccomp cannot read, so namespace flags cannot be filtered",
	"unshare":           "creates namespaces (with user namespaces, a root-equivalent view of new kernel interfaces)",
	"setns":             "joins other namespaces, leaving the sandbox's",
	"mount":             "changes the filesystem view; with a user namespace it reaches kernel filesystem code",
	"umount2":           "can uncover paths the sandbox hid",
	"pivot_root":        "changes the root filesystem",
	"move_mount":        "new mount API: changes the filesystem view",
	"open_tree":         "new mount API: clones mount trees",
	"fsopen":            "new mount API: creates filesystem contexts",
	"fsmount":           "new mount API: creates mounts",
	"fsconfig":          "new mount API: configures filesystems",
	"ptrace":            "reads and writes other processes' memory and registers",
	"process_vm_readv":  "reads other processes' memory",
	"process_vm_writev": "writes other processes' memory",
	"bpf":               "loads programs into the kernel",
	"keyctl":            "the kernel keyring is not namespaced",
	"add_key":           "the kernel keyring is not namespaced",
	"request_key":       "the kernel keyring is not namespaced",
	"userfaultfd":       "lets a process stall the kernel at chosen points, a building block of kernel exploits",
	"perf_event_open":   "exposes kernel and hardware performance data and a large kernel surface",
	"init_module":       "loads kernel modules",
	"finit_module":      "loads kernel modules",
	"delete_module":     "unloads kernel modules",
	"kexec_load":        "replaces the running kernel",
	"kexec_file_load":   "replaces the running kernel",
	"reboot":            "reboots the machine",
	"open_by_handle_at": "opens files by handle, escaping the mount namespace (the 'shocker' container escape)",
	"iopl":              "grants raw I/O port access",
	"ioperm":            "grants raw I/O port access",
	"swapon":            "changes system swap",
	"swapoff":           "changes system swap",
	"acct":              "changes system process accounting",
	"personality":       "can change the syscall ABI and address-space layout",
}

// KnownDangerous lists the syscalls the dangerous-syscall lint reports.
func KnownDangerous() []string { return sortedKeys(dangerous) }

func lintDangerous(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		reason, ok := dangerous[rule.Name]
		if !ok || rule.Permission == Deny {
			continue
		}
		hint := "DENY it unless the agent cannot work without it"
		if rule.Name == "clone3" {
			hint = `DENY it with "x-clawos-deny-errno": "ENOSYS" so that libc falls back to clone, whose flags can be filtered`
		}
		r.warnf(clawerr.EPerm, "dangerous-syscall", rulePath(i, "permission"), hint, "%s allowed: %s", rule.Name, reason)
	}
}

// args32 lists, per syscall, the arguments the kernel declares as 32-bit
// (int, unsigned int, umode_t...) in SYSCALL_DEFINE. seccomp sees the whole
// 64-bit register, and the kernel truncates it: a process can set the upper
// 32 bits so that ne, gt or ge holds for seccomp while the kernel sees the
// forbidden value. The table covers the calls whose arguments are commonly
// filtered; see docs/policy.md.
var args32 = map[string][]int{
	"socket": {0, 1, 2}, "socketpair": {0, 1, 2}, "connect": {0, 2}, "bind": {0, 2},
	"accept4": {0, 3}, "listen": {0, 1}, "setsockopt": {0, 1, 2, 4}, "getsockopt": {0, 1, 2},
	"sendto": {0, 3, 5}, "recvfrom": {0, 3}, "sendmsg": {0, 2}, "recvmsg": {0, 2}, "shutdown": {0, 1},
	"open": {1, 2}, "openat": {0, 2, 3}, "creat": {1}, "mkdirat": {0, 2}, "fchmodat": {0, 2},
	"read": {0}, "write": {0}, "close": {0}, "dup3": {0, 1, 2}, "fcntl": {0, 1}, "ioctl": {0, 1},
	"mmap": {2, 3, 4}, "mprotect": {2}, "madvise": {2}, "kill": {0, 1}, "tgkill": {0, 1, 2}, "tkill": {0, 1},
	"prctl": {0}, "personality": {0}, "futex": {1}, "epoll_ctl": {0, 1, 2}, "eventfd2": {0, 1},
	"pipe2": {1}, "setuid": {0}, "setgid": {0}, "unshare": {0}, "setns": {0, 1},
}

// bypassable are the operators that upper-bit garbage can satisfy.
var bypassable = map[string]bool{"ne": true, "gt": true, "ge": true}

func lint32BitArgs(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		if rule.Conditions == nil || rule.Conditions.ArgumentFilter == nil {
			continue
		}
		af := rule.Conditions.ArgumentFilter
		if !bypassable[af.Operator] || !contains(args32[rule.Name], af.ArgIndex) {
			continue
		}
		r.errorf(clawerr.EPerm, "arg-32bit", rulePath(i, "conditions", "argument_filter", "operator"),
			"compare with eq, or with masked_eq and a mask within 0xffffffff",
			"argument %d of %s is 32-bit, but seccomp compares the whole 64-bit register: a process can set the upper bits so that %s holds while the kernel sees another value",
			af.ArgIndex, rule.Name, af.Operator)
	}
}

// Open flags that make an open write: the access mode (O_WRONLY, O_RDWR),
// O_CREAT (creates the file, whatever the access mode), O_TRUNC (Linux
// truncates even with O_RDONLY when the file is writable to the caller) and
// __O_TMPFILE (an anonymous file; it needs a writing access mode, but a
// rule should not rely on the kernel's check). The values are the same on
// x86_64 and aarch64 (asm-generic/fcntl.h).
const (
	oAccMode  = 0x3
	oCreat    = 0x40
	oTrunc    = 0x200
	oTmpfile  = 0x400000
	writeBits = oAccMode | oCreat | oTrunc | oTmpfile
)

// ReadOnlyOpenMask is the masked_eq mask that, with value 0 on open's or
// openat's flags, allows read-only opens only: O_RDONLY without O_CREAT,
// O_TRUNC or O_TMPFILE.
const ReadOnlyOpenMask uint64 = writeBits

// openFlagsArg is the flags argument of the open calls a read-only rule
// restricts.
var openFlagsArg = map[string]int{"openat": 2, "open": 1}

// openLetsThrough names the writing open flags that a masked_eq rule on
// name's flags with mask and value lets through; "" when the rule is not
// on open flags, does not mean read-only, or lets none through.
func openLetsThrough(name string, idx int, mask, value uint64) string {
	if a, ok := openFlagsArg[name]; !ok || a != idx || mask&oAccMode != oAccMode || value&writeBits != 0 || value&^mask != 0 {
		return ""
	}
	var open []string
	for _, f := range []struct {
		bit  uint64
		name string
	}{{oCreat, "O_CREAT"}, {oTrunc, "O_TRUNC"}, {oTmpfile, "O_TMPFILE"}} {
		if mask&f.bit == 0 {
			open = append(open, f.name)
		}
	}
	return strings.Join(open, ", ")
}

// lintReadOnlyOpen warns about a "read-only" open rule that masks only the
// access mode: O_RDONLY|O_CREAT creates files and O_RDONLY|O_TRUNC empties
// them, both with access mode O_RDONLY.
func lintReadOnlyOpen(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		if rule.Conditions == nil || rule.Conditions.ArgumentFilter == nil {
			continue
		}
		af := rule.Conditions.ArgumentFilter
		if af.Operator != "masked_eq" || af.Mask == nil {
			continue
		}
		m, err1 := af.Mask.Uint64()
		v, err2 := af.Value.Uint64()
		if err1 != nil || err2 != nil {
			continue
		}
		if open := openLetsThrough(rule.Name, af.ArgIndex, m, v); open != "" {
			r.warnf(clawerr.EPerm, "open-read-only", rulePath(i, "conditions", "argument_filter", "mask"),
				fmt.Sprintf("use mask %d (%#x: the access mode, O_CREAT, O_TRUNC and O_TMPFILE) with value 0", ReadOnlyOpenMask, ReadOnlyOpenMask),
				"this read-only %s rule masks %#x, which lets %s through: the agent can create or truncate files with access mode O_RDONLY",
				rule.Name, m, open)
		}
	}
}

// lintTokio warns when a whitelist that says its agent is a tokio program
// lacks calls that the tokio runtime needs beyond program start-up.
func lintTokio(in *input, r *Report) {
	isTokio := in.wl.Metadata != nil && in.wl.Metadata.TokioVersion != ""
	for _, rule := range in.wl.Syscalls {
		isTokio = isTokio || (rule.TokioRequired != nil && *rule.TokioRequired)
	}
	if !isTokio {
		return
	}
	tokio, err := Baseline(in.arch, BaselineTokio)
	if err != nil {
		r.warnf(clawerr.ENoEnt, "tokio", "syscalls", "", "cannot check what the tokio runtime needs: %v", err)
		return
	}
	start, _ := Baseline(in.arch, BaselineStart)
	skip := map[string]bool{}
	for _, c := range start {
		skip[c.Name] = true
	}
	allowed := map[string]bool{}
	for _, rule := range in.wl.Syscalls {
		switch {
		case rule.Permission != Deny:
			allowed[rule.Name] = true
		case rule.Name == "clone3" && rule.DenyErrno == "ENOSYS":
			// glibc falls back to clone when clone3 fails with ENOSYS.
			allowed["clone3"] = true
		}
	}
	var missing []string
	for _, c := range tokio {
		if !skip[c.Name] && !allowed[c.Name] {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		r.warnf(clawerr.ENoEnt, "tokio", "syscalls", "add them, or run with --baseline tokio",
			"the agent is a tokio program, but the tokio runtime also needs %s (measured, see docs/baselines.md)", strings.Join(missing, ", "))
	}
}

// renamed maps names that are not syscalls on x86_64 or aarch64 to the calls
// that replace them.
var renamed = map[string][]string{
	"recv": {"recvfrom", "recvmsg"}, "send": {"sendto", "sendmsg"},
	"open": {"openat"}, "stat": {"newfstatat", "statx"}, "lstat": {"newfstatat", "statx"},
	"fstatat": {"newfstatat"}, "poll": {"ppoll"}, "select": {"pselect6"}, "epoll_wait": {"epoll_pwait"},
	"epoll_create": {"epoll_create1"}, "pipe": {"pipe2"}, "dup2": {"dup3"}, "access": {"faccessat", "faccessat2"},
	"fork": {"clone"}, "vfork": {"clone"}, "mkdir": {"mkdirat"}, "unlink": {"unlinkat"}, "rmdir": {"unlinkat"},
	"rename": {"renameat2"}, "readlink": {"readlinkat"}, "chmod": {"fchmodat"}, "chown": {"fchownat"},
	"eventfd": {"eventfd2"}, "signalfd": {"signalfd4"}, "inotify_init": {"inotify_init1"},
	"getdents": {"getdents64"}, "sigaction": {"rt_sigaction"}, "sigprocmask": {"rt_sigprocmask"},
	"sigreturn": {"rt_sigreturn"}, "nanosleep": {"clock_nanosleep"}, "time": {"clock_gettime"},
	"accept": {"accept4"}, "socketcall": {"socket", "connect", "sendto", "recvfrom"},
}

// maxSuggestLen bounds the names suggest compares: Linux syscall names are
// under 30 bytes, and the edit distance costs len(name) per known name.
const maxSuggestLen = 64

// suggest returns a hint naming the calls to use instead of name on arch.
func suggest(arch Arch, name string) string {
	if len(name) > maxSuggestLen {
		return "syscall names are short identifiers such as openat"
	}
	var cands []string
	for _, n := range renamed[name] {
		if _, ok := arch.SyscallNumber(n); ok {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 && len(name) > 2 {
		best := 3
		for _, n := range arch.Syscalls() {
			d := editDistance(name, n)
			switch {
			case d < best:
				best, cands = d, []string{n}
			case d == best:
				cands = append(cands, n)
			}
		}
	}
	if len(cands) == 0 {
		return ""
	}
	if len(cands) > 4 {
		cands = cands[:4]
	}
	return fmt.Sprintf("on %s use %s", arch, strings.Join(cands, " or "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
