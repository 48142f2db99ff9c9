/* clawos-wait is what clawos-run becomes while a long-running agent runs
 * (sandbox.Sandbox.HandOff): a small static program that takes clawos-run's
 * place by execve, so the same process (pid, parent, start time: the
 * bundle's owner record) holds almost nothing while the agent runs, the
 * sandbox's init still its child, forked by the very thread that execs.
 *
 *   clawos-wait PID KILL_AFTER_MS EXE_FD [--relay FROM TO]... -- ARGV...
 *
 * It forwards SIGINT, SIGTERM and SIGHUP to PID (the sandbox's pid 1, a
 * child of this process that it alone reaps, so the pid cannot have been
 * reused), kills PID with SIGKILL at a second such signal or KILL_AFTER_MS
 * after the first, as clawos-run does, reaps it, and execs EXE_FD (the
 * clawos-run binary that started the sandbox, opened before the hand-off:
 * a replaced file does not matter) with ARGV and two more arguments: the
 * raw wait status and 1 if it killed the agent for not exiting in time,
 * else 0. That program cleans up the sandbox and exits with the agent's
 * status.
 *
 * With --relay (at most two: the agent's stdout and stderr where they are
 * the caller's terminal, which the agent never holds), a thread copies
 * what arrives on the pipe FROM to TO, as clawos-run did before the
 * hand-off, until every writer has closed the pipe (the sandbox's
 * processes are gone); where TO fails (the terminal hung up) it goes on
 * reading and discarding, so that the agent never blocks on a full pipe.
 * The clean-up program is run once the init is reaped and every relay has
 * copied all there was. A relay that cannot start kills the init: an
 * agent whose output nobody reads would block.
 *
 * clawos-run blocks the signals this program waits for before the hand-off
 * (the mask survives execve), so none that arrives meanwhile is lost; the
 * rest keep their default actions: a SIGKILL or SIGQUIT of this process
 * ends it, and the sandbox's init, whose parent-death signal is SIGKILL,
 * with it; the next clawos-run removes what is left, as after a killed
 * clawos-run. Nothing else is read: no file, no environment. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* number parses a non-negative decimal of at most max, or returns -1. */
static long number(const char *s, long max) {
	if (*s == '\0')
		return -1;
	long n = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
		if (n > max)
			return -1;
	}
	return n;
}

/* statusOf is the agent's exit status as clawos-run reports it. */
static int status_of(int ws) {
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* A relay copies the pipe from to the descriptor to (see above). */
struct relay {
	int from, to;
	pthread_t thread;
};

#define MAX_RELAYS 2

static void *copy(void *arg) {
	const struct relay *r = arg;
	/* A write to a closed pipe fails with EPIPE here instead of ending
	 * the process: the signal is this thread's, blocked, and goes with it. */
	sigset_t pipe_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
	char buf[65536];
	int writable = 1;
	for (;;) {
		ssize_t n = read(r->from, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; writable && off < n;) {
			ssize_t w = write(r->to, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EAGAIN) { /* a terminal someone made non-blocking */
				struct pollfd p = { .fd = r->to, .events = POLLOUT };
				if (poll(&p, 1, -1) >= 0 || errno == EINTR)
					continue;
			}
			if (w <= 0) {
				writable = 0;
				break;
			}
			off += w;
		}
	}
	return NULL;
}

/* open_fd tells whether fd is an open descriptor. */
static int open_fd(long fd) { return fd >= 0 && fcntl((int)fd, F_GETFD) >= 0; }

static void arm(long ms) {
	struct itimerval t = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
	if (ms == 0)
		t.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &t, NULL);
}

int main(int argc, char **argv) {
	struct relay relays[MAX_RELAYS];
	int nrelays = 0, i = 4;
	while (i + 2 < argc && strcmp(argv[i], "--relay") == 0 && nrelays < MAX_RELAYS) {
		long from = number(argv[i + 1], 1 << 20), to = number(argv[i + 2], 1 << 20);
		if (!open_fd(from) || !open_fd(to) || from == to) {
			fprintf(stderr, "clawos-wait: bad --relay %s %s\n", argv[i + 1], argv[i + 2]);
			return 125;
		}
		relays[nrelays].from = (int)from;
		relays[nrelays].to = (int)to;
		nrelays++;
		i += 3;
	}
	if (argc < i + 2 || strcmp(argv[i], "--") != 0) {
		fprintf(stderr, "usage: clawos-wait PID KILL_AFTER_MS EXE_FD [--relay FROM TO]... -- ARGV...\n");
		return 125;
	}
	long pid = number(argv[1], 1L << 30), kill_after = number(argv[2], 1L << 40), exe = number(argv[3], 1 << 20);
	if (pid <= 0 || kill_after < 0 || exe < 0) {
		fprintf(stderr, "clawos-wait: bad PID, KILL_AFTER_MS or EXE_FD\n");
		return 125;
	}
	char **rest = &argv[i + 1];
	int nrest = argc - i - 1;
	sigset_t set;
	sigemptyset(&set);
	static const int waited[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGALRM };
	for (size_t k = 0; k < sizeof waited / sizeof waited[0]; k++)
		sigaddset(&set, waited[k]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		perror("clawos-wait: block signals");
		return 125;
	}
	/* Waited for, whatever the disposition inherited (blocked first). */
	for (size_t k = 0; k < sizeof waited / sizeof waited[0]; k++)
		signal(waited[k], SIG_DFL);
	/* The agent's clean-up program is not this one's to pass on, nor are
	 * the relays' descriptors. */
	fcntl((int)exe, F_SETFD, FD_CLOEXEC);
	for (int k = 0; k < nrelays; k++) {
		fcntl(relays[k].from, F_SETFD, FD_CLOEXEC);
		if (relays[k].to > 2) /* a standard stream stays the clean-up's */
			fcntl(relays[k].to, F_SETFD, FD_CLOEXEC);
		/* Read blocking, whatever the pipe's last reader set (its
		 * description is shared). */
		int fl = fcntl(relays[k].from, F_GETFL);
		if (fl >= 0)
			fcntl(relays[k].from, F_SETFL, fl & ~O_NONBLOCK);
	}
	/* Started with the signals blocked: the threads inherit the mask, and
	 * every signal waited for comes to sigwaitinfo below. */
	int started = 0;
	for (; started < nrelays; started++) {
		int err = pthread_create(&relays[started].thread, NULL, copy, &relays[started]);
		if (err != 0) {
			fprintf(stderr, "clawos-wait: cannot relay the agent's output (%s); the agent is killed\n", strerror(err));
			kill((pid_t)pid, SIGKILL);
			break;
		}
	}

	int forwarded = 0, killed = 0, ws = 0;
	for (;;) {
		/* Reaped first: the init may have exited before the hand-off,
		 * its SIGCHLD taken by clawos-run. */
		pid_t r = waitpid((pid_t)pid, &ws, WNOHANG);
		if (r == (pid_t)pid)
			break;
		if (r < 0 && errno != EINTR) {
			perror("clawos-wait: wait for the sandbox");
			return 125;
		}
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		switch (sig) {
		case SIGCHLD:
			break;
		case SIGALRM:
			if (forwarded > 0 && !killed) {
				killed = 1;
				kill((pid_t)pid, SIGKILL);
			}
			break;
		default:
			if (++forwarded > 1) {
				kill((pid_t)pid, SIGKILL);
				break;
			}
			kill((pid_t)pid, sig);
			arm(kill_after);
		}
	}
	/* All the agent wrote is copied before the clean-up runs: the pipes'
	 * writers were the sandbox's processes, gone with its init. */
	for (int k = 0; k < started; k++)
		pthread_join(relays[k].thread, NULL);
	char ws_arg[16], killed_arg[2] = { killed ? '1' : '0', '\0' };
	snprintf(ws_arg, sizeof ws_arg, "%d", ws);
	int n = nrest;
	char **next = calloc((size_t)n + 3, sizeof *next);
	if (next == NULL) {
		perror("clawos-wait");
		return status_of(ws);
	}
	memcpy(next, rest, (size_t)n * sizeof *next);
	next[n] = ws_arg;
	next[n + 1] = killed_arg;
	/* The signals stay blocked for clawos-run's clean-up, which handles
	 * them itself. */
	syscall(SYS_execveat, (int)exe, "", next, environ, AT_EMPTY_PATH);
	fprintf(stderr, "clawos-run: cannot run the clean-up (%s); the next clawos-run removes the sandbox\n", strerror(errno));
	return status_of(ws);
}
