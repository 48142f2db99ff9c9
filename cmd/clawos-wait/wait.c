/* clawos-wait is what clawos-run becomes while a long-running agent runs
 * (sandbox.Sandbox.HandOff): a small static program that takes clawos-run's
 * place by execve, so the same process (pid, parent, start time: the
 * bundle's owner record) holds almost nothing while the agent runs, the
 * sandbox's init still its child, forked by the very thread that execs.
 *
 *   clawos-wait PID KILL_AFTER_MS EXE_FD -- ARGV...
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
 * clawos-run blocks the signals this program waits for before the hand-off
 * (the mask survives execve), so none that arrives meanwhile is lost; the
 * rest keep their default actions: a SIGKILL or SIGQUIT of this process
 * ends it, and the sandbox's init, whose parent-death signal is SIGKILL,
 * with it; the next clawos-run removes what is left, as after a killed
 * clawos-run. Nothing else is read: no file, no environment. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

static void arm(long ms) {
	struct itimerval t = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
	if (ms == 0)
		t.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &t, NULL);
}

int main(int argc, char **argv) {
	if (argc < 6 || strcmp(argv[4], "--") != 0) {
		fprintf(stderr, "usage: clawos-wait PID KILL_AFTER_MS EXE_FD -- ARGV...\n");
		return 125;
	}
	long pid = number(argv[1], 1L << 30), kill_after = number(argv[2], 1L << 40), exe = number(argv[3], 1 << 20);
	if (pid <= 0 || kill_after < 0 || exe < 0) {
		fprintf(stderr, "clawos-wait: bad PID, KILL_AFTER_MS or EXE_FD\n");
		return 125;
	}
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
	/* The agent's clean-up program is not this one's to pass on. */
	fcntl((int)exe, F_SETFD, FD_CLOEXEC);

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
	char ws_arg[16], killed_arg[2] = { killed ? '1' : '0', '\0' };
	snprintf(ws_arg, sizeof ws_arg, "%d", ws);
	int n = argc - 5;
	char **next = calloc((size_t)n + 3, sizeof *next);
	if (next == NULL) {
		perror("clawos-wait");
		return status_of(ws);
	}
	memcpy(next, &argv[5], (size_t)n * sizeof *next);
	next[n] = ws_arg;
	next[n + 1] = killed_arg;
	/* The signals stay blocked for clawos-run's clean-up, which handles
	 * them itself. */
	syscall(SYS_execveat, (int)exe, "", next, environ, AT_EMPTY_PATH);
	fprintf(stderr, "clawos-run: cannot run the clean-up (%s); the next clawos-run removes the sandbox\n", strerror(errno));
	return status_of(ws);
}
