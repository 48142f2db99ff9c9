/*
 * clawos-init: the second stage of a ClawOS sandbox. clawos-run (and
 * clawos-hook) mount it read-only into the container and prefix it to the
 * agent's command:
 *
 *   clawos-init FILTER [--container-filter FILTER] [--exec PATH]... [--exec-cmd] [--tcp-connect PORTS]
 *               [--tcp-bind PORTS] [--notify] [--parent-fd N] [--exec-at ADDR] [--init] -- CMD [ARGS...]
 *
 * FILTER is a file holding the compiled filter, or "hex:" and the filter's
 * bytes in hexadecimal (clawos-hook: no file to create and clean up).
 *
 * With --container-filter FILTER (clawos-run's embedded runtime, which does
 * not have its runtime load the container-level filter), this process
 * loads that filter first, before it reads anything of the container or
 * makes any other call: everything it and the agent do then runs under it,
 * as under a filter the runtime loaded before the exec of this program.
 *
 * It runs after the OCI runtime has finished starting the container (under
 * the container-level filter), and as its last acts:
 *   1. with --exec (and where the kernel has Landlock), allows execution of
 *      the listed files only (the agent and its ELF interpreter), so that the
 *      execve the whitelist must permit cannot start anything else later.
 *      --exec-cmd finds those files itself, inside the container: CMD
 *      (searched in $PATH when it has no slash), its ELF interpreter or its
 *      #! interpreter, so that nothing outside reads the container's files;
 *      with --tcp-connect and --tcp-bind (comma-separated ports, "" for
 *      none), TCP connect and bind are allowed to those ports only, by
 *      Landlock's network rules (ABI 4, Linux 6.7): a second layer beside
 *      the network namespace's nftables table, and the only one where the
 *      sandbox shares the host's network namespace. A kernel that cannot
 *      apply them refuses the start;
 *   2. loads FILTER.bpf, the exact whitelist compiled by clawos-run, with
 *      SECCOMP_FILTER_FLAG_TSYNC (it is single-threaded; TSYNC refuses if not);
 *   3. execve(CMD). Filters stack: the agent runs under exactly the whitelist.
 *
 * With --notify (clawos-run --learn and --complain), FILTER returns
 * SECCOMP_RET_USER_NOTIF for what is to be recorded, and is loaded with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER: the listener fd stays open in this
 * process (close-on-exec) until clawos-run, outside the sandbox, has taken
 * it with pidfd_getfd; until then a getppid call right after the load waits
 * in the kernel for its notification to be answered (the filter always
 * reports it, and the supervisor drops it), so no call goes unrecorded.
 *
 * With --exec-at ADDR (clawos-run), the pathname of the final execve is
 * copied to ADDR, a secret address chosen at random per sandbox, and FILTER
 * allows execve only with that pathname pointer (translate's start-only
 * exec mode): clawos-init's own execve is the only one, and an agent that
 * maps a path at a guessed address is killed on a wrong guess. This binary
 * is static and not position-independent, so its own data would be at an
 * address anyone can read off the file: the page is mapped fresh at ADDR
 * (MAP_FIXED_NOREPLACE), and the filter never leaves this process's memory
 * and the launcher's (FILTER is passed inline).
 *
 * With --parent-fd N (clawos-run), the agent dies with its launcher: this
 * process, the sandbox's pid 1, asks for SIGKILL when its parent dies
 * (PR_SET_PDEATHSIG, kept across execve), then checks that the launcher was
 * still there when it asked: N is the read end of a pipe whose only write
 * end clawos-run holds, so a hang-up means it is already gone (killed before
 * the request) and the agent is never started. Either way, no agent
 * outlives clawos-run. N is also the launcher's go-ahead: before step 1
 * this process waits for one byte, GATE_BYTE, which clawos-run writes once
 * what must hold from the agent's first instruction is in place outside
 * the sandbox (the port rules in its network namespace, its idmapped mounts
 * checked, memfds made non-executable), work it does while the runtime
 * finishes the start and this program prepares; end of file instead (the
 * launcher gone, or giving up on the start) and the agent is never started.
 * N is closed before the agent starts.
 *
 * With --init (clawos-run --init, as docker run --init), this process stays
 * as the sandbox's pid 1, a minimal init: it forks before step 1, the child
 * goes on with steps 1 to 3 and becomes the agent (under exactly its
 * filter, as without --init), and this process only reaps every process
 * that ends up its child (orphans are re-parented to pid 1), forwards the
 * signals sent to it (SIGTERM from the runtime) to the agent, and exits with
 * the agent's status once the agent has exited: its exit status, or 128+N
 * when it died of signal N (a pid namespace's init cannot die of its own
 * signal); the kernel then kills what is left in the namespace. It never
 * runs the agent's code and is not dumpable: the agent, the same user, can
 * neither ptrace it nor write its memory through /proc. Its calls (fork,
 * the signal wait, wait4, kill) are in the container-level filter, as
 * measured (baseline clawos-init-reaper).
 *
 * Errors before step 2 are reported on stderr and exit 127; so is a command
 * that does not exist (checked before the filter is loaded). After step 2
 * the only calls are (with --notify, getppid,) execve and, if it fails,
 * exit_group(127).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_EXEC 64 /* namespaces.MaxExecPlaces */
#define MAX_PATH 4096

static char resolved[MAX_EXEC][MAX_PATH];

static int fail(const char *what) {
	fprintf(stderr, "clawos-init: %s: %s\n", what, strerror(errno));
	return 127;
}

/* install_filter sets no_new_privs and loads the n bytes of BPF at insns
 * with flags: 0, or 127 once it has said what failed (what: the load). */
static int install_filter(struct sock_filter *insns, ssize_t n, unsigned int flags, const char *what) {
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail("no_new_privs");
	struct sock_fprog prog = { .len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = insns };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0)
		return fail(what);
	return 0;
}

/* GATE_BYTE is the launcher's go-ahead on --parent-fd (sandbox.gateByte). */
#define GATE_BYTE 'g'

/* wait_launcher waits on fd, the launcher's pipe, for its go-ahead: 0 once
 * GATE_BYTE arrived; 127 at end of file (the launcher is gone or gave up)
 * or on any other byte, and the agent must not start. */
static int wait_launcher(int fd) {
	for (;;) {
		unsigned char b;
		ssize_t r = read(fd, &b, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail("wait for the launcher");
		if (r == 1 && b == GATE_BYTE)
			return 0;
		fprintf(stderr, "clawos-init: %s; the agent is not started\n",
		        r == 0 ? "the launcher is gone" : "the launcher sent something else than its go-ahead");
		return 127;
	}
}

/* Landlock's network rules (ABI 4, Linux 6.7), which the build host's
 * headers may predate. */
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define LANDLOCK_RULE_NET_PORT 2
struct landlock_net_port_attr {
	__u64 allowed_access;
	__u64 port;
};
#endif
/* The ruleset attribute with the network field (ABI 4); the kernel takes
 * the size given, so an older one refuses the network rights (EINVAL),
 * never ignores them. */
struct ruleset_attr_net {
	__u64 handled_access_fs;
	__u64 handled_access_net;
};

#define MAX_PORTS 64

/* A port list of --tcp-connect or --tcp-bind: handled says the right is
 * restricted at all (the list may be empty: no port). */
struct ports {
	int handled, n;
	unsigned short port[MAX_PORTS];
};

/* parse_ports reads "5432,8080" (or "", none) into p. 0, or -1. */
static int parse_ports(const char *s, struct ports *p) {
	p->handled = 1;
	p->n = 0;
	while (*s) {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno != 0 || end == s || v < 1 || v > 65535 || p->n == MAX_PORTS || (*end != ',' && *end != 0))
			return -1;
		p->port[p->n++] = (unsigned short)v;
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

/* restrict_exec allows LANDLOCK_ACCESS_FS_EXECUTE on the given files only
 * (none given: execution is not restricted), and, where connect or bind
 * are handled, TCP connect and bind to their ports only. Returns 0, or -1
 * with errno. ENOSYS/EOPNOTSUPP mean no Landlock: acceptable for the exec
 * restriction alone (clawos-run decided with its probe), never for the
 * network rules, which the caller refuses to go without. */
static int restrict_exec(char **paths, int n, const struct ports *connect, const struct ports *bind) {
	struct ruleset_attr_net attr = { .handled_access_fs = n > 0 ? LANDLOCK_ACCESS_FS_EXECUTE : 0 };
	if (connect->handled)
		attr.handled_access_net |= LANDLOCK_ACCESS_NET_CONNECT_TCP;
	if (bind->handled)
		attr.handled_access_net |= LANDLOCK_ACCESS_NET_BIND_TCP;
	size_t size = attr.handled_access_net ? sizeof attr : sizeof attr.handled_access_fs;
	int rs = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct landlock_path_beneath_attr pb = { .allowed_access = LANDLOCK_ACCESS_FS_EXECUTE };
		pb.parent_fd = open(paths[i], O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0)
			return -1;
		if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
			return -1;
		close(pb.parent_fd);
	}
	const struct ports *lists[2] = { connect, bind };
	const __u64 rights[2] = { LANDLOCK_ACCESS_NET_CONNECT_TCP, LANDLOCK_ACCESS_NET_BIND_TCP };
	for (int l = 0; l < 2; l++) {
		for (int i = 0; i < lists[l]->n; i++) {
			struct landlock_net_port_attr np = { .allowed_access = rights[l], .port = lists[l]->port[i] };
			if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
				return -1;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	if (syscall(SYS_landlock_restrict_self, rs, 0) != 0)
		return -1;
	close(rs);
	return 0;
}

/* hexval decodes one hexadecimal digit, -1 if it is none. */
static int hexval(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* read_fd reads from fd until end of file or size bytes; returns how many,
 * or -1 with errno. */
static ssize_t read_fd(int fd, unsigned char *buf, size_t size) {
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* read_all reads a whole file into buf, refusing one larger than size
 * (never a silent truncation); returns its length, or -1 with errno (EFBIG
 * when too large). */
static ssize_t read_all(const char *path, unsigned char *buf, size_t size) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read_fd(fd, buf, size);
	if (n == (ssize_t)size) {
		unsigned char extra;
		ssize_t r = read_fd(fd, &extra, 1);
		if (r != 0) {
			n = -1;
			if (r > 0)
				errno = EFBIG;
		}
	}
	int e = errno;
	close(fd);
	errno = e;
	return n;
}

/* load_filter reads FILTER (a file, or "hex:" and bytes) into buf; returns
 * its length in bytes, or -1 after printing why. */
static ssize_t load_filter(const char *arg, unsigned char *buf, size_t size) {
	ssize_t n = 0;
	int inline_hex = strncmp(arg, "hex:", 4) == 0;
	if (inline_hex) {
		const char *h = arg + 4;
		size_t len = strlen(h);
		if (len % 2 != 0 || len / 2 > size) {
			fprintf(stderr, "clawos-init: the inline filter is malformed\n");
			return -1;
		}
		for (size_t j = 0; j < len; j += 2) {
			int hi = hexval(h[j]), lo = hexval(h[j + 1]);
			if (hi < 0 || lo < 0) {
				fprintf(stderr, "clawos-init: the inline filter is malformed\n");
				return -1;
			}
			buf[n++] = (unsigned char)(hi << 4 | lo);
		}
	} else {
		n = read_all(arg, buf, size);
		if (n < 0) {
			fail(arg);
			return -1;
		}
	}
	if (n <= 0 || n % sizeof(struct sock_filter) != 0) {
		fprintf(stderr, "clawos-init: %s is not a BPF program\n", inline_hex ? "the inline filter" : arg);
		return -1;
	}
	return n;
}

/* read_head reads up to size bytes from the start of path; -1 if it cannot
 * be opened or read (a directory, a missing file). */
static ssize_t read_head(const char *path, unsigned char *buf, size_t size) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read_fd(fd, buf, size);
	close(fd);
	return n;
}

/* parse_interp copies into out (outsz bytes) the interpreter that the first
 * n bytes of a file name: its ELF PT_INTERP (a 64-bit ELF of this machine's
 * byte order) or its #! line. Returns 1 if it names one, 0 if not. Every
 * bound is checked in subtraction form (a - b only where a >= b), so no
 * field of a crafted file can make an offset wrap. */
static int parse_interp(const unsigned char *head, size_t n, char *out, size_t outsz) {
	if (outsz == 0)
		return 0;
	if (n > 2 && head[0] == '#' && head[1] == '!') {
		size_t s = 2, e;
		while (s < n && (head[s] == ' ' || head[s] == '\t'))
			s++;
		for (e = s; e < n && head[e] != ' ' && head[e] != '\t' && head[e] != '\n' && head[e] != 0; e++)
			;
		if (e == s || e - s >= outsz)
			return 0;
		memcpy(out, head + s, e - s);
		out[e - s] = 0;
		return 1;
	}
	Elf64_Ehdr eh;
	if (n < sizeof eh || memcmp(head, ELFMAG, SELFMAG) != 0 || head[EI_CLASS] != ELFCLASS64)
		return 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (head[EI_DATA] != ELFDATA2LSB)
		return 0;
#else
	if (head[EI_DATA] != ELFDATA2MSB)
		return 0;
#endif
	memcpy(&eh, head, sizeof eh);
	if (eh.e_phentsize < sizeof(Elf64_Phdr) || eh.e_phoff > n)
		return 0;
	size_t room = n - (size_t)eh.e_phoff; /* bytes from the first header on */
	for (size_t k = 0; k < eh.e_phnum; k++) {
		if (k > room / eh.e_phentsize)
			return 0;
		size_t rel = k * eh.e_phentsize; /* <= room: no overflow */
		if (room - rel < sizeof(Elf64_Phdr))
			return 0;
		Elf64_Phdr ph;
		memcpy(&ph, head + eh.e_phoff + rel, sizeof ph);
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz == 0 || ph.p_filesz >= outsz || ph.p_offset > n || n - ph.p_offset < ph.p_filesz)
			return 0;
		memcpy(out, head + ph.p_offset, ph.p_filesz);
		out[ph.p_filesz] = 0; /* PT_INTERP holds its NUL; a missing one is added */
		return out[0] != 0;
	}
	return 0;
}

/* interpreter copies into out (MAX_PATH bytes) the interpreter a file
 * names. Returns 1 if it has one, 0 if not, -1 if path cannot be read. */
static int interpreter(const char *path, char *out) {
	static unsigned char head[65536];
	ssize_t n = read_head(path, head, sizeof head);
	if (n < 0)
		return -1;
	return parse_interp(head, (size_t)n, out, MAX_PATH);
}

/* search finds cmd as execvp would: itself when it has a slash, else the
 * first $PATH entry that can be read. Returns 0, or -1 with errno ENOENT. */
static int search(const char *cmd, char *out) {
	if (strchr(cmd, '/') != NULL) {
		if (strlen(cmd) >= MAX_PATH)
			return errno = ENAMETOOLONG, -1;
		strcpy(out, cmd);
		return 0;
	}
	const char *path = getenv("PATH");
	if (path == NULL || *path == 0)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	static unsigned char probe[4];
	while (*path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		if (len > 0 && len + strlen(cmd) + 2 < MAX_PATH) {
			memcpy(out, path, len);
			out[len] = '/';
			strcpy(out + len + 1, cmd);
			if (read_head(out, probe, sizeof probe) >= 0)
				return 0;
		}
		path += len + (end ? 1 : 0);
	}
	errno = ENOENT;
	return -1;
}

/* resolve_cmd fills resolved[] with CMD and its chain of interpreters, as
 * the container sees them; returns how many, or -1 after printing why. */
static int resolve_cmd(const char *cmd) {
	int n = 0;
	if (search(cmd, resolved[0]) != 0) {
		fail(cmd);
		return -1;
	}
	for (n = 1; n < 5; n++) {
		int r = interpreter(resolved[n - 1], resolved[n]);
		if (r < 0) {
			fail(resolved[n - 1]);
			return -1;
		}
		if (r == 0)
			return n;
		for (int k = 0; k < n; k++)
			if (strcmp(resolved[k], resolved[n]) == 0)
				return n;
	}
	fprintf(stderr, "clawos-init: too many levels of interpreters for %s\n", cmd);
	return -1;
}

/* reap is pid 1 of --init: it waits for signals only (all are blocked, but
 * those of a fault of its own), reaps every child that ends, forwards a
 * signal sent to it to the agent, and returns the agent's status once the
 * agent is gone. A signal the terminal sent (si_code SI_KERNEL) went to the
 * agent's process group as well, and is not sent twice. The agent itself
 * is left a zombie (WNOWAIT) until the launcher, which holds the other end
 * of ack_fd (--parent-fd), has read its pid from this process's children
 * and written a byte, or is gone: the kernel logs a seccomp kill by pid,
 * and a pid 1 that exits takes its zombies with it. */
static int reap(pid_t agent, const sigset_t *set, int ack_fd) {
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			return fail("wait for signals");
		}
		if (sig != SIGCHLD) {
			if (si.si_code <= 0)
				kill(agent, sig);
			continue;
		}
		for (;;) {
			siginfo_t ci = { 0 };
			if (waitid(P_ALL, 0, &ci, WEXITED | WNOHANG | WNOWAIT) != 0 || ci.si_pid == 0)
				break;
			if (ci.si_pid != agent) {
				/* An orphan: reaped (waitid, the call measured). */
				siginfo_t gone;
				waitid(P_PID, (id_t)ci.si_pid, &gone, WEXITED);
				continue;
			}
			if (ack_fd >= 0) {
				struct pollfd p = { .fd = ack_fd, .events = POLLIN };
				poll(&p, 1, 5000);
			}
			return ci.si_code == CLD_EXITED ? ci.si_status : 128 + ci.si_status;
		}
	}
}

/* become_init forks for --init: it returns 0 in the child, which goes on to
 * become the agent with the signal mask it had; the parent never returns
 * from it but exits with the agent's status (see reap). ack_fd, when not
 * -1, is the launcher's pipe (--parent-fd): the child closes it. */
static int become_init(int ack_fd) {
	sigset_t all, old;
	sigfillset(&all);
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGSYS, SIGTRAP, SIGABRT };
	for (size_t k = 0; k < sizeof faults / sizeof faults[0]; k++)
		sigdelset(&all, faults[k]);
	/* Not dumpable from before the fork: the child is reset by its execve,
	 * the parent stays so. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return fail("not dumpable");
	if (sigprocmask(SIG_SETMASK, &all, &old) != 0)
		return fail("block signals");
	pid_t child = fork();
	if (child < 0)
		return fail("fork");
	if (child == 0) {
		if (ack_fd >= 0)
			close(ack_fd);
		if (sigprocmask(SIG_SETMASK, &old, NULL) != 0)
			return fail("unblock signals");
		return 0;
	}
	exit(reap(child, &all, ack_fd));
}

#ifndef CLAWOS_INIT_NO_MAIN
int main(int argc, char **argv) {
	static struct sock_filter insns[BPF_MAXINSNS], container_insns[BPF_MAXINSNS];
	const char *container_filter = NULL;
	char *exec_paths[MAX_EXEC];
	int nexec = 0, exec_cmd = 0, notify = 0, init = 0, parent_fd = -1, i = 2;
	unsigned long long exec_at = 0;
	static struct ports connect, bind;

	if (argc < 4) {
		fprintf(stderr, "usage: clawos-init FILTER [--container-filter FILTER] [--exec PATH]... [--exec-cmd] [--tcp-connect PORTS] [--tcp-bind PORTS] [--notify] [--parent-fd N] [--exec-at ADDR] [--init] -- CMD [ARGS...]\n");
		return 127;
	}
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--exec-cmd") == 0) {
			exec_cmd = 1;
			continue;
		}
		if (strcmp(argv[i], "--notify") == 0) {
			notify = 1;
			continue;
		}
		if (strcmp(argv[i], "--init") == 0) {
			init = 1;
			continue;
		}
		if (strcmp(argv[i], "--container-filter") == 0 && i + 1 < argc && container_filter == NULL) {
			container_filter = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--exec-at") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			exec_at = strtoull(argv[++i], &end, 0);
			if (errno != 0 || *end != 0 || exec_at < 65536 || exec_at % 8 != 0) {
				fprintf(stderr, "clawos-init: bad --exec-at %s\n", argv[i]);
				return 127;
			}
			continue;
		}
		if (strcmp(argv[i], "--parent-fd") == 0 && i + 1 < argc) {
			char *end;
			long fd = strtol(argv[++i], &end, 10);
			if (*end != 0 || fd < 3 || fd > 1024) {
				fprintf(stderr, "clawos-init: bad --parent-fd %s\n", argv[i]);
				return 127;
			}
			parent_fd = (int)fd;
			continue;
		}
		if ((strcmp(argv[i], "--tcp-connect") == 0 || strcmp(argv[i], "--tcp-bind") == 0) && i + 1 < argc) {
			struct ports *p = argv[i][6] == 'c' ? &connect : &bind;
			if (parse_ports(argv[i + 1], p) != 0) {
				fprintf(stderr, "clawos-init: bad %s %s\n", argv[i], argv[i + 1]);
				return 127;
			}
			i++;
			continue;
		}
		if (strcmp(argv[i], "--exec") != 0 || i + 1 >= argc || nexec == MAX_EXEC) {
			fprintf(stderr, "clawos-init: bad argument %s\n", argv[i]);
			return 127;
		}
		exec_paths[nexec++] = argv[++i];
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "clawos-init: no command after --\n");
		return 127;
	}
	char **cmd = &argv[i + 1];
	char *path = cmd[0];

	if (container_filter != NULL) {
		ssize_t cn = load_filter(container_filter, (unsigned char *)container_insns, sizeof container_insns);
		if (cn < 0 || install_filter(container_insns, cn, SECCOMP_FILTER_FLAG_TSYNC, "container filter") != 0)
			return 127;
	}
	if (parent_fd >= 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
			return fail("parent-death signal");
		struct pollfd p = { .fd = parent_fd, .events = POLLIN };
		struct timespec zero = { 0, 0 };
		long r = syscall(SYS_ppoll, &p, 1, &zero, NULL, 0);
		if (r < 0)
			return fail("check the launcher");
		/* A hang-up, not data: its go-ahead may be there already. */
		if (r > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
			fprintf(stderr, "clawos-init: the launcher is gone; the agent is not started\n");
			return 127;
		}
	}
	/* A session of its own: the agent has no controlling terminal, so
	 * /dev/tty cannot reach the caller's (clawos-run --tty and engines'
	 * terminals are set up by the runtime, which already made this process
	 * a session leader: EPERM then, and the terminal stays). */
	if (setsid() < 0 && errno != EPERM)
		return fail("setsid");
	ssize_t n = load_filter(argv[1], (unsigned char *)insns, sizeof insns);
	if (n < 0)
		return 127;
	if (exec_cmd) {
		int r = resolve_cmd(cmd[0]);
		if (r < 0)
			return 127;
		path = resolved[0];
		for (int k = 0; k < r && nexec < MAX_EXEC; k++)
			exec_paths[nexec++] = resolved[k];
	}

	if (!exec_cmd && strchr(path, '/') == NULL) {
		/* A bare name is searched in $PATH whether or not exec can be
		 * restricted: execve itself never searches. */
		if (search(path, resolved[0]) != 0)
			return fail(path);
		path = resolved[0];
	}
	/* Say now what would make execve fail once the filter is loaded, when
	 * this process may no longer be allowed to write a message. */
	int cmd_fd = open(path, O_PATH | O_CLOEXEC);
	if (cmd_fd < 0)
		return fail(path);
	close(cmd_fd);

	/* The go-ahead: from here on the agent's confinement is this
	 * process's own work. */
	if (parent_fd >= 0) {
		if (wait_launcher(parent_fd) != 0)
			return 127;
		if (!init) {
			close(parent_fd);
			parent_fd = -1;
		}
	}
	if (init && become_init(parent_fd) != 0)
		return 127;
	if (connect.handled || bind.handled) {
		/* The port rules: never without them (clawos-run passes them only
		 * where its probe found Landlock ABI 4 or later). */
		if (restrict_exec(exec_paths, nexec, &connect, &bind) != 0)
			return fail("landlock network rules");
	} else if (nexec > 0 && restrict_exec(exec_paths, nexec, &connect, &bind) != 0) {
		if (errno != ENOSYS && errno != EOPNOTSUPP)
			return fail("landlock");
		/* No Landlock in this kernel: clawos-run was told by its probe. */
	}
	char *exec_path = path;
	if (exec_at != 0) {
		/* Two pages: the offset within the first is below 4096 and a path
		 * is below MAX_PATH, so it always fits. */
		unsigned long long page = exec_at & ~4095ULL;
		size_t len = strlen(path) + 1;
		if (len > MAX_PATH) {
			errno = ENAMETOOLONG;
			return fail(path);
		}
		void *m = mmap((void *)page, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (m == MAP_FAILED)
			return fail("map the exec address");
		if (m != (void *)page) {
			errno = EEXIST;
			return fail("map the exec address");
		}
		exec_path = (char *)exec_at;
		memcpy(exec_path, path, len);
	}
	/* TSYNC and NEW_LISTENER exclude each other; this process is
	 * single-threaded, so NEW_LISTENER alone covers it. */
	if (install_filter(insns, n, notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : SECCOMP_FILTER_FLAG_TSYNC, "seccomp") != 0)
		return 127;
	/* The notifying filters always report getppid: this call waits until
	 * the supervisor holds the listener (which exec would close). */
	if (notify)
		syscall(SYS_getppid);
	execve(exec_path, cmd, environ);
	syscall(SYS_exit_group, 127);
	return 127;
}
#endif /* CLAWOS_INIT_NO_MAIN */
