/*
 * clawos-probe: a small static program that makes one attempt and reports
 * what the kernel answered, for the demo and the kernel tests.
 *
 *   clawos-probe [--bpf FILE] call NR [A0..A5]   raw syscall NR with arguments
 *   clawos-probe [--bpf FILE] int80 NR [A0..A2]  i386 syscall through int 0x80 (x86_64)
 *   clawos-probe [--bpf FILE] connect IPV4 PORT  TCP connect
 *   clawos-probe listen-connect PORT             listen on 127.0.0.1:PORT, then connect to it
 *   clawos-probe dgram PROTO 4|6 PORT            datagram socket of protocol PROTO (17 UDP, 136 UDP-Lite)
 *                                                bound on loopback:PORT; send itself one datagram and
 *                                                wait 1 s for it (ETIMEDOUT if it never came)
 *   clawos-probe send-udp IPV4 PORT [MS]         one UDP datagram ("u") to IPV4:PORT, then wait MS ms
 *                                                (a datagram in flight when the sandbox ends may be lost)
 *   clawos-probe connects IPV4 PORT N            N TCP connections to IPV4:PORT, one after the other;
 *                                                print ns per connection
 *   clawos-probe bulk IPV4 PORT MB               send MB MiB over one TCP connection; print bytes per second
 *   clawos-probe exec PATH                       execve(PATH) (a Landlock check)
 *   clawos-probe write-file PATH                 create PATH for writing
 *   clawos-probe open PATH FLAGS                 openat(AT_FDCWD, PATH, FLAGS, 0644)
 *   clawos-probe status                          print pid, ids, NoNewPrivs, CapEff and interfaces
 *   clawos-probe forks N                         clone N children that pause; report the first failure
 *   clawos-probe alloc MB                        map and touch MB MiB of memory
 *   clawos-probe loop NR COUNT [ARGS]            make syscall NR COUNT times; print ns per call
 *   clawos-probe env NAME                        print the value of environment variable NAME
 *   clawos-probe uname                           print the host name (uname)
 *   clawos-probe cwd                             print the working directory (getcwd)
 *   clawos-probe ping                            ICMP echo to 127.0.0.1 through a ping socket; wait 1 s for the reply
 *   clawos-probe read FD                         read one byte from FD: ok, errno, or ENODATA at end of file
 *   clawos-probe open-tty                        open /dev/tty (the controlling terminal) read-only
 *   clawos-probe ns                              print the inode of each of its namespaces (pid ipc uts mnt cgroup net)
 *   clawos-probe isatty                          report whether stdout is a terminal (ioctl TCGETS)
 *   clawos-probe ready                           print "ready", then pause forever (no handlers)
 *   clawos-probe sigwait                         exit 128+N when signal N (INT, TERM, HUP) arrives
 *   clawos-probe orphan                          leave an orphan (a grandchild whose parent exits) that
 *                                                exits 50 ms later; 300 ms on, print "reaped" (exit 0)
 *                                                or "zombie" (exit 1): did the sandbox's pid 1 reap it?
 *
 * --bpf FILE loads a seccomp BPF program (struct sock_filter array, as
 * `clawos-policy compile -o` writes it) with no_new_privs, exactly as a
 * launcher's init would, before the attempt. The process then makes the
 * attempt and exit_group. It prints one line, "ok" or "errno N NAME", and
 * exits with the errno (0 on success); a seccomp kill shows as SIGSYS.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static void load_bpf(const char *path) {
	static struct sock_filter insns[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) { perror("clawos-probe: open bpf"); exit(125); }
	ssize_t n = read(fd, insns, sizeof(insns));
	close(fd);
	if (n <= 0 || n % sizeof(struct sock_filter) != 0) {
		fprintf(stderr, "clawos-probe: bad BPF file %s\n", path);
		exit(125);
	}
	struct sock_fprog prog = { .len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = insns };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("clawos-probe: no_new_privs"); exit(125); }
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		perror("clawos-probe: seccomp");
		exit(125);
	}
}

/* report ends the process through the raw exit_group syscall: nothing else
 * (no stdio flush path that might call other syscalls) runs after the
 * attempt but one write. */
static void report(long err) {
	char buf[64];
	int len = err ? snprintf(buf, sizeof buf, "errno %ld %s\n", err, strerrorname_np((int)err))
	              : snprintf(buf, sizeof buf, "ok\n");
	syscall(SYS_write, 1, buf, len);
	syscall(SYS_exit_group, (int)err);
}

/* pause_forever waits for a signal: pause(2) where the architecture has it
 * (x86_64), ppoll with no descriptors and no timeout elsewhere (aarch64). */
static void pause_forever(void) {
#ifdef SYS_pause
	syscall(SYS_pause);
#else
	syscall(SYS_ppoll, NULL, 0, NULL, NULL, 0);
#endif
}

static void on_signal(int sig) { syscall(SYS_exit_group, 128 + sig); }

/* lines writes "WORD 1\n" to "WORD N\n" on stdout, with write(2) only. */
static void lines(const char *word, long n) {
	char buf[64];
	for (long k = 1; k <= n; k++) {
		int len = snprintf(buf, sizeof buf, "%s %ld\n", word, k);
		for (int off = 0; off < len;) {
			long w = syscall(SYS_write, 1, buf + off, len - off);
			if (w <= 0)
				syscall(SYS_exit_group, 125);
			off += (int)w;
		}
	}
}

static long chatter_n;

/* chatter's second batch, then exit 0: write is async-signal-safe. */
static void on_chatter(int sig) {
	(void)sig;
	lines("more", chatter_n);
	syscall(SYS_exit_group, 0);
}

static unsigned long arg(int argc, char **argv, int i) {
	return i < argc ? strtoul(argv[i], NULL, 0) : 0;
}

int main(int argc, char **argv) {
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--bpf") == 0) {
		load_bpf(argv[i + 1]);
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: clawos-probe [--bpf FILE] [ready-then] call NR [ARGS] | int80 NR [ARGS] | connect IPV4 PORT\n");
		return 125;
	}
	const char *op = argv[i++];
	/* ready-then OP ...: say ready, wait for a byte on stdin, then OP. */
	if (strcmp(op, "ready-then") == 0 && i < argc) {
		char c;
		syscall(SYS_write, 1, "ready\n", 6);
		syscall(SYS_read, 0, &c, 1);
		op = argv[i++];
	}
	if (strcmp(op, "call") == 0) {
		long r = syscall(arg(argc, argv, i), arg(argc, argv, i + 1), arg(argc, argv, i + 2), arg(argc, argv, i + 3),
		                 arg(argc, argv, i + 4), arg(argc, argv, i + 5), arg(argc, argv, i + 6));
		report(r == -1 ? errno : 0);
	}
#if defined(__x86_64__)
	if (strcmp(op, "int80") == 0) {
		long r, nr = arg(argc, argv, i), a = arg(argc, argv, i + 1), b = arg(argc, argv, i + 2), c = arg(argc, argv, i + 3);
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
		report(r < 0 && r > -4096 ? -r : 0);
	}
#endif
	if (strcmp(op, "connect") == 0 && i + 1 < argc) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[i + 1])) };
		if (inet_pton(AF_INET, argv[i], &sa.sin_addr) != 1) { fprintf(stderr, "clawos-probe: bad address\n"); return 125; }
		long s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) report(errno);
		long r = syscall(SYS_connect, s, &sa, sizeof sa);
		report(r == -1 ? errno : 0);
	}
	if ((strcmp(op, "send-udp") == 0 || strcmp(op, "connects") == 0 || strcmp(op, "bulk") == 0) && i + 1 < argc) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[i + 1])) };
		if (inet_pton(AF_INET, argv[i], &sa.sin_addr) != 1) { fprintf(stderr, "clawos-probe: bad address\n"); return 125; }
		if (op[1] == 'e') { /* send-udp */
			long s = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (s < 0) report(errno);
			if (syscall(SYS_sendto, s, "u", 1, 0, &sa, sizeof sa) < 0)
				report(errno);
			if (i + 2 < argc) {
				long ms = atol(argv[i + 2]);
				struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
				syscall(SYS_ppoll, NULL, 0, &ts, NULL, 0);
			}
			report(0);
		}
		long n = i + 2 < argc ? atol(argv[i + 2]) : 1;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (op[0] == 'c') { /* connects */
			for (long k = 0; k < n; k++) {
				long s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
				if (s < 0) report(errno);
				if (syscall(SYS_connect, s, &sa, sizeof sa) != 0) report(errno);
				syscall(SYS_close, s);
			}
		} else { /* bulk */
			static char chunk[65536];
			long s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s < 0) report(errno);
			if (syscall(SYS_connect, s, &sa, sizeof sa) != 0) report(errno);
			for (long left = n * 1048576; left > 0;) {
				long w = syscall(SYS_write, s, chunk, left < (long)sizeof chunk ? left : (long)sizeof chunk);
				if (w < 0) report(errno);
				left -= w;
			}
			syscall(SYS_close, s);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
		char buf[64];
		int len = op[0] == 'c' ? snprintf(buf, sizeof buf, "ns_per_connect %.0f\n", ns / (double)n)
		                       : snprintf(buf, sizeof buf, "bytes_per_sec %.0f\n", (double)n * 1048576 * 1e9 / ns);
		syscall(SYS_write, 1, buf, len);
		syscall(SYS_exit_group, 0);
	}
	if (strcmp(op, "listen-connect") == 0 && i < argc) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[i])) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		long l = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l < 0) report(errno);
		int one = 1;
		syscall(SYS_setsockopt, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (syscall(SYS_bind, l, &sa, sizeof sa) != 0) report(errno);
		if (syscall(SYS_listen, l, 4) != 0) report(errno);
		long s = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) report(errno);
		long r = syscall(SYS_connect, s, &sa, sizeof sa);
		report(r == -1 ? errno : 0);
	}
	if (strcmp(op, "dgram") == 0 && i + 2 < argc) {
		int proto = atoi(argv[i]), fam = atoi(argv[i + 1]) == 6 ? AF_INET6 : AF_INET;
		unsigned short port = (unsigned short)atoi(argv[i + 2]);
		struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(port) };
		sa4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		void *sa = fam == AF_INET ? (void *)&sa4 : (void *)&sa6;
		socklen_t len = fam == AF_INET ? sizeof sa4 : sizeof sa6;
		long r = syscall(SYS_socket, fam, SOCK_DGRAM | SOCK_CLOEXEC, proto);
		if (r < 0) report(errno);
		long s = syscall(SYS_socket, fam, SOCK_DGRAM | SOCK_CLOEXEC, proto);
		if (s < 0) report(errno);
		if (syscall(SYS_bind, r, sa, len) != 0) report(errno);
		if (syscall(SYS_sendto, s, "x", 1, 0, sa, len) < 0) report(errno);
		struct pollfd pfd = { .fd = (int)r, .events = POLLIN };
		struct timespec ts = { 1, 0 };
		long n = syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 0);
		if (n < 0) report(errno);
		if (n == 0) report(ETIMEDOUT);
		char b;
		if (syscall(SYS_recvfrom, r, &b, 1, 0, NULL, NULL) < 0) report(errno);
		report(0);
	}
	/* dns NAME: ask the first nameserver of /etc/resolv.conf for NAME's
	 * A record over UDP and print "a ADDRESS" (the first answer). */
	if (strcmp(op, "dns") == 0 && i < argc) {
		char conf[4096] = { 0 }, *ns = NULL;
		long fd = syscall(SYS_openat, AT_FDCWD, "/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
		if (fd < 0) report(errno);
		if (syscall(SYS_read, fd, conf, sizeof conf - 1) < 0) report(errno);
		for (char *line = strtok(conf, "\n"); line; line = strtok(NULL, "\n"))
			if (strncmp(line, "nameserver", 10) == 0 && !ns)
				ns = line + 10 + strspn(line + 10, " \t");
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
		if (!ns || inet_pton(AF_INET, ns, &sa.sin_addr) != 1) { fprintf(stderr, "clawos-probe: no IPv4 nameserver\n"); return 125; }
		unsigned char q[512] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
		size_t n = 12;
		for (const char *l = argv[i]; *l && n < 400;) {
			size_t k = strcspn(l, ".");
			if (k == 0 || k > 63) { fprintf(stderr, "clawos-probe: bad name\n"); return 125; }
			q[n++] = (unsigned char)k;
			memcpy(q + n, l, k);
			n += k;
			l += k + (l[k] == '.');
		}
		q[n++] = 0;
		q[n++] = 0; q[n++] = 1; /* A */
		q[n++] = 0; q[n++] = 1; /* IN */
		long s = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s < 0) report(errno);
		if (syscall(SYS_sendto, s, q, n, 0, &sa, sizeof sa) < 0) report(errno);
		struct pollfd pfd = { .fd = (int)s, .events = POLLIN };
		struct timespec ts = { 3, 0 };
		long r = syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 0);
		if (r < 0) report(errno);
		if (r == 0) report(ETIMEDOUT);
		unsigned char a[512];
		long got = syscall(SYS_recvfrom, s, a, sizeof a, 0, NULL, NULL);
		if (got < 0) report(errno);
		/* The question echoed, then the first answer: a name (a
		 * compression pointer), type, class, TTL, length 4, the address. */
		if (got < (long)n + 16 || a[0] != 0x12 || a[1] != 0x34 || a[7] == 0) report(ENODATA);
		const unsigned char *ans = a + n;
		if ((ans[0] & 0xc0) != 0xc0 || ans[2] != 0 || ans[3] != 1 || ans[10] != 0 || ans[11] != 4) report(EPROTO);
		char buf[64];
		int len = snprintf(buf, sizeof buf, "a %u.%u.%u.%u\n", ans[12], ans[13], ans[14], ans[15]);
		syscall(SYS_write, 1, buf, len);
		syscall(SYS_exit_group, 0);
	}
	if (strcmp(op, "ping") == 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		long s = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
		if (s < 0) report(errno);
		unsigned char echo[8] = { 8, 0, 0, 0, 0, 0, 0, 1 }; /* type 8: echo request; the kernel fills id and checksum */
		if (syscall(SYS_sendto, s, echo, sizeof echo, 0, &sa, sizeof sa) < 0) report(errno);
		struct pollfd pfd = { .fd = (int)s, .events = POLLIN };
		struct timespec ts = { 1, 0 };
		long n = syscall(SYS_ppoll, &pfd, 1, &ts, NULL, 0);
		if (n < 0) report(errno);
		report(n == 0 ? ETIMEDOUT : 0);
	}
	if (strcmp(op, "forks") == 0 && i < argc) {
		long n = atol(argv[i]);
		for (long k = 0; k < n; k++) {
			long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
			if (pid < 0) report(errno);
			if (pid == 0) for (;;) pause_forever();
		}
		report(0);
	}
	if (strcmp(op, "alloc") == 0 && i < argc) {
		long mb = atol(argv[i]);
		for (long k = 0; k < mb; k++) {
			char *p = (char *)syscall(SYS_mmap, 0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) report(errno);
			for (long b = 0; b < (1 << 20); b += 4096) p[b] = 1;
		}
		report(0);
	}
	if (strcmp(op, "loop") == 0 && i + 1 < argc) {
		/* clock_gettime is served by the vDSO: timing adds no syscall. */
		long nr = arg(argc, argv, i), count = arg(argc, argv, i + 1);
		unsigned long a0 = arg(argc, argv, i + 2), a1 = arg(argc, argv, i + 3);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long k = 0; k < count; k++)
			syscall(nr, a0, a1, 0, 0, 0, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
		char buf[64];
		int len = snprintf(buf, sizeof buf, "ns_per_call %.2f\n", ns / (double)count);
		syscall(SYS_write, 1, buf, len);
		syscall(SYS_exit_group, 0);
	}
	if (strcmp(op, "env") == 0 && i < argc) {
		const char *v = getenv(argv[i]);
		char buf[512];
		int len = snprintf(buf, sizeof buf, "%s=%s\n", argv[i], v ? v : "(unset)");
		syscall(SYS_write, 1, buf, len);
		report(v ? 0 : ENOENT);
	}
	if (strcmp(op, "uname") == 0) {
		struct utsname u;
		if (syscall(SYS_uname, &u) != 0) report(errno);
		char buf[128];
		int len = snprintf(buf, sizeof buf, "hostname %s\n", u.nodename);
		syscall(SYS_write, 1, buf, len);
		report(0);
	}
	if (strcmp(op, "cwd") == 0) {
		char buf[4096];
		long n = syscall(SYS_getcwd, buf, sizeof buf - 2);
		if (n < 0) report(errno);
		size_t len = strlen(buf);
		buf[len] = '\n';
		syscall(SYS_write, 1, buf, len + 1);
		report(0);
	}
	if (strcmp(op, "read") == 0 && i < argc) {
		char c;
		long n = syscall(SYS_read, atoi(argv[i]), &c, 1);
		report(n < 0 ? errno : n == 0 ? ENODATA : 0);
	}
	if (strcmp(op, "open-tty") == 0) {
		long fd = syscall(SYS_openat, AT_FDCWD, "/dev/tty", O_RDONLY | O_CLOEXEC);
		report(fd < 0 ? errno : 0);
	}
	if (strcmp(op, "ns") == 0) {
		const char *types[] = { "pid", "ipc", "uts", "mnt", "cgroup", "net", NULL };
		for (int k = 0; types[k]; k++) {
			char path[64];
			struct stat st;
			snprintf(path, sizeof path, "/proc/self/ns/%s", types[k]);
			if (stat(path, &st) != 0) report(errno);
			printf("ns %s %lu\n", types[k], (unsigned long)st.st_ino);
		}
		fflush(stdout);
		report(0);
	}
	if (strcmp(op, "orphan") == 0) {
		int p[2];
		if (pipe(p) != 0)
			report(errno);
		pid_t child = fork();
		if (child < 0)
			report(errno);
		if (child == 0) {
			pid_t g = fork();
			if (g == 0) {
				struct timespec d = { 0, 50 * 1000 * 1000 };
				nanosleep(&d, NULL);
				_exit(0);
			}
			if (write(p[1], &g, sizeof g) != (ssize_t)sizeof g)
				_exit(1);
			_exit(0);
		}
		pid_t g = 0;
		if (read(p[0], &g, sizeof g) != (ssize_t)sizeof g || g <= 0)
			report(EIO);
		waitpid(child, NULL, 0);
		struct timespec d = { 0, 300 * 1000 * 1000 };
		nanosleep(&d, NULL);
		char path[64], stat[256] = { 0 };
		snprintf(path, sizeof path, "/proc/%d/stat", (int)g);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			printf("reaped\n");
			fflush(stdout);
			syscall(SYS_exit_group, 0);
		}
		ssize_t n = read(fd, stat, sizeof stat - 1);
		char *e = n > 0 ? strrchr(stat, ')') : NULL;
		printf("%s\n", e && e[1] == ' ' && e[2] == 'Z' ? "zombie" : "running");
		fflush(stdout);
		syscall(SYS_exit_group, 1);
	}
	if (strcmp(op, "isatty") == 0) {
		char t[64];
		long r = syscall(SYS_ioctl, 1, 0x5401 /* TCGETS */, t);
		report(r == -1 ? errno : 0);
	}
	if (strcmp(op, "ready") == 0) {
		syscall(SYS_write, 1, "ready\n", 6);
		for (;;) pause_forever();
	}
	/* chatter N: N lines, "ready", then at SIGHUP N more lines, exit 0. */
	if (strcmp(op, "chatter") == 0 && i < argc) {
		chatter_n = atol(argv[i]);
		struct sigaction sa = { .sa_handler = on_chatter };
		sigaction(SIGHUP, &sa, NULL);
		lines("line", chatter_n);
		syscall(SYS_write, 1, "ready\n", 6);
		for (;;) pause_forever();
	}
	if (strcmp(op, "sigwait") == 0) {
		struct sigaction sa = { .sa_handler = on_signal };
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		syscall(SYS_write, 1, "ready\n", 6);
		for (;;) pause_forever();
	}
	if (strcmp(op, "exec") == 0 && i < argc) {
		char *args[] = { argv[i], NULL };
		execve(argv[i], args, NULL);
		report(errno);
	}
	if (strcmp(op, "write-file") == 0 && i < argc) {
		long fd = syscall(SYS_openat, AT_FDCWD, argv[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		report(fd < 0 ? errno : 0);
	}
	if (strcmp(op, "open") == 0 && i + 1 < argc) {
		long fd = syscall(SYS_openat, AT_FDCWD, argv[i], strtol(argv[i + 1], NULL, 0), 0644);
		report(fd < 0 ? errno : 0);
	}
	if (strcmp(op, "status") == 0) {
		char buf[8192];
		printf("pid %d\n", getpid());
		fflush(stdout);
		/* The AppArmor label, where the kernel has AppArmor. */
		int afd = open("/proc/self/attr/current", O_RDONLY | O_CLOEXEC);
		if (afd >= 0) {
			ssize_t n = read(afd, buf, sizeof buf - 1);
			close(afd);
			if (n > 0) {
				buf[n] = 0;
				buf[strcspn(buf, "\n")] = 0;
				printf("AppArmor %s\n", buf);
			}
		}
		const char *files[] = { "/proc/self/status", "/proc/self/uid_map", "/proc/net/dev", "/proc/self/limits", NULL };
		for (int f = 0; files[f]; f++) {
			int fd = open(files[f], O_RDONLY | O_CLOEXEC);
			if (fd < 0) report(errno);
			ssize_t n = read(fd, buf, sizeof buf - 1);
			close(fd);
			if (n < 0) report(errno);
			buf[n] = 0;
			for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
				if (f == 0 && strncmp(line, "NoNewPrivs", 10) && strncmp(line, "CapEff", 6) && strncmp(line, "Uid", 3) &&
				    strncmp(line, "Seccomp", 7))
					continue;
				if (f == 3 && strncmp(line, "Max open files", 14) && strncmp(line, "Max processes", 13) && strncmp(line, "Max core file size", 18))
					continue;
				if (f == 1) printf("uid_map %s\n", line);
				else if (f == 2) { char *c = strchr(line, ':'); if (c) { *c = 0; while (*line == ' ') line++; printf("iface %s\n", line); } }
				else printf("%s\n", line);
			}
		}
		fflush(stdout);
		report(0);
	}
	fprintf(stderr, "clawos-probe: unknown operation %s\n", op);
	return 125;
}
