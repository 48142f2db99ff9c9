package learn

import "sync"

// categories is the syscall -> P1.2 category table of learned whitelists
// (docs/learn.md). It follows the reference whitelist where that names a
// call (for example poll and epoll_* under network, eventfd2 and pipe2
// under misc) and groups the rest by the kernel subsystem they enter;
// anything not listed is misc.
var categories = sync.OnceValue(func() map[string]string {
	categories := map[string]string{}
	for cat, names := range map[string][]string{
		"memory": {"mmap", "munmap", "mprotect", "brk", "madvise", "mremap", "msync", "mlock", "mlock2", "munlock",
			"mlockall", "munlockall", "mincore", "membarrier", "memfd_create", "pkey_alloc", "pkey_free", "pkey_mprotect",
			"set_mempolicy", "get_mempolicy", "mbind", "process_madvise", "userfaultfd", "shmget", "shmat", "shmdt", "shmctl"},
		"file_io": {"read", "write", "open", "openat", "openat2", "close", "close_range", "stat", "fstat", "lstat",
			"newfstatat", "statx", "statfs", "fstatfs", "lseek", "pread64", "pwrite64", "readv", "writev", "preadv",
			"pwritev", "preadv2", "pwritev2", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64",
			"getdents", "fcntl", "flock", "fsync", "fdatasync", "ftruncate", "truncate", "dup", "dup2", "dup3", "ioctl",
			"mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
			"symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "umask",
			"getcwd", "chdir", "fchdir", "utimensat", "copy_file_range", "sendfile", "splice", "tee", "fadvise64",
			"fallocate", "getxattr", "lgetxattr", "fgetxattr", "setxattr", "fsetxattr", "listxattr", "flistxattr",
			"inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_init", "sync", "syncfs", "creat",
			"io_uring_setup", "io_uring_enter", "io_uring_register", "mknod", "mknodat"},
		"network": {"socket", "connect", "bind", "listen", "accept", "accept4", "sendto", "recvfrom", "sendmsg",
			"recvmsg", "sendmmsg", "recvmmsg", "setsockopt", "getsockopt", "getsockname", "getpeername", "shutdown",
			"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
			"epoll_pwait", "epoll_pwait2"},
		"time": {"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "times",
			"timerfd_create", "timerfd_settime", "timerfd_gettime", "timer_create", "timer_settime", "timer_gettime",
			"timer_delete", "alarm", "setitimer", "getitimer", "adjtimex", "clock_adjtime"},
		"signals": {"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
			"rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "kill",
			"tkill", "tgkill", "pause", "pidfd_send_signal"},
		"process": {"exit", "exit_group", "getpid", "getppid", "gettid", "futex", "futex_waitv", "clone", "clone3",
			"fork", "vfork", "execve", "execveat", "wait4", "waitid", "set_tid_address", "set_robust_list",
			"get_robust_list", "rseq", "arch_prctl", "prlimit64", "getrlimit", "setrlimit", "getrusage", "sched_yield",
			"sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
			"sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min", "getpriority", "setpriority",
			"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
			"setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setsid", "getsid", "setpgid", "getpgid",
			"getpgrp", "capget", "capset", "uname", "sysinfo", "pidfd_open", "pidfd_getfd", "unshare", "setns",
			"personality", "getcpu"},
		"misc": {"prctl", "getrandom", "eventfd", "eventfd2", "pipe", "pipe2", "seccomp", "landlock_create_ruleset",
			"landlock_add_rule", "landlock_restrict_self"},
		"tokio_runtime": {"socketpair"},
	} {
		for _, n := range names {
			categories[n] = cat
		}
	}
	return categories
})

// Category is the P1.2 category of a syscall in learned whitelists.
func Category(name string) string {
	if c, ok := categories()[name]; ok {
		return c
	}
	return "misc"
}
