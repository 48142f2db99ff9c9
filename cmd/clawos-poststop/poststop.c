/*
 * clawos-poststop: the quick path of clawos-hook's poststop stage.
 *
 *   clawos-poststop --state-dir DIR --audit-log FILE -- HOOK ARG0 ARGS...
 *
 * runc runs it as a confined container's poststop hook (the hook package
 * injects it where it is installed), with the container's state on
 * standard input. Where the container's createRuntime stage left
 * DIR/ID.poststop (a container with nothing to remove but its state
 * record: no port rules in a network namespace it joined, no AppArmor
 * profile held) and the kernel's audit thread has not run since the mark
 * in that file (then no process was killed by seccomp since:
 * internal/killlog.Mark), it removes DIR/ID.poststop and DIR/ID.json and
 * appends the audit line the file holds, stamped with the time, to FILE:
 * what clawos-hook poststop does in that case, in a fraction of its start.
 * For anything else (a state it does not read, no such file, a mark no
 * longer quiet, an audit log due for rotation, any error) it execs HOOK
 * with ARG0 ARGS... and the same standard input: clawos-hook does the
 * stage, and says what went wrong.
 *
 * DIR/ID.poststop (hook.quickFile), the caller's, mode 0600:
 *
 *   clawos-poststop 1
 *   id ID
 *   mark PID SLEEPS
 *   ,"stage":"poststop",...}
 *
 * The last line is the audit record clawos-hook renders, after its time.
 * Nothing it reads from the state is copied anywhere but the id, which is
 * checked as runcargs.ValidID checks it and must be the file's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ID 256           /* runcargs.ValidID */
#define MAX_AUDIT_LOG (16 << 20) /* hook.MaxAuditLog: clawos-hook rotates it */
#define MAX_FAST 8192
#define MAX_TAIL 6144
#define STATE_HEAD 4096

/* valid_id is runcargs.ValidID: letters and digits, then also _ . -. */
static int valid_id(const char *id, size_t n) {
	if (n == 0 || n > MAX_ID)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return 0;
	}
	return 1;
}

/* state_id reads the container's id from the start of runc's state as
 * runc writes it ({"ociVersion":"V","id":"ID", or "}" after the id), into
 * id; it returns the id's length, 0 for any other text. */
static size_t state_id(const char *s, size_t n, char id[MAX_ID + 1]) {
	static const char head[] = "{\"ociVersion\":\"", key[] = "\",\"id\":\"";
	size_t i = sizeof head - 1;
	if (n < i || memcmp(s, head, i) != 0)
		return 0;
	for (; i < n && s[i] != '"'; i++)
		if (s[i] == '\\' || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x80)
			return 0;
	if (n - i < sizeof key - 1 || memcmp(s + i, key, sizeof key - 1) != 0)
		return 0;
	i += sizeof key - 1;
	size_t start = i;
	while (i < n && s[i] != '"')
		i++;
	if (i + 1 >= n || (s[i + 1] != ',' && s[i + 1] != '}') || !valid_id(s + start, i - start))
		return 0;
	memcpy(id, s + start, i - start);
	id[i - start] = '\0';
	return i - start;
}

/* decimal reads s[0..n) as a decimal number without sign or leading
 * zeros; -1 for anything else or more than fits. */
static int decimal(const char *s, size_t n, unsigned long long *v) {
	if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned long long)(s[i] - '0');
	}
	return 0;
}

/* line returns the length of the line at s (without its '\n'), or -1
 * when s[0..n) has no '\n'. */
static long line(const char *s, size_t n) {
	const char *nl = memchr(s, '\n', n);
	return nl ? nl - s : -1;
}

struct fast {
	char id[MAX_ID + 1];
	unsigned long long pid, sleeps;
	const char *tail;
	size_t tail_len;
};

/* parse_fast reads DIR/ID.poststop; -1 for anything but the format. */
static int parse_fast(const char *b, size_t n, struct fast *f) {
	static const char magic[] = "clawos-poststop 1", stage[] = ",\"stage\":\"poststop\",";
	long l = line(b, n);
	if (l != (long)sizeof magic - 1 || memcmp(b, magic, sizeof magic - 1) != 0)
		return -1;
	b += l + 1, n -= (size_t)l + 1;
	/* id ID */
	l = line(b, n);
	if (l < 4 || memcmp(b, "id ", 3) != 0 || !valid_id(b + 3, (size_t)l - 3))
		return -1;
	memcpy(f->id, b + 3, (size_t)l - 3);
	f->id[l - 3] = '\0';
	b += l + 1, n -= (size_t)l + 1;
	/* mark PID SLEEPS */
	l = line(b, n);
	const char *sp = l > 5 ? memchr(b + 5, ' ', (size_t)l - 5) : NULL;
	if (l < 8 || memcmp(b, "mark ", 5) != 0 || sp == NULL || decimal(b + 5, (size_t)(sp - b - 5), &f->pid) != 0 ||
	    decimal(sp + 1, (size_t)(b + l - sp - 1), &f->sleeps) != 0 || f->pid == 0 || f->pid > INT_MAX)
		return -1;
	b += l + 1, n -= (size_t)l + 1;
	/* the audit line's tail, and nothing after it */
	l = line(b, n);
	if (l < (long)sizeof stage || (size_t)l + 1 != n || l > MAX_TAIL || memcmp(b, stage, sizeof stage - 1) != 0 || b[l - 1] != '}')
		return -1;
	for (long i = 0; i < l; i++)
		if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
			return -1;
	f->tail = b, f->tail_len = (size_t)l;
	return 0;
}

/* quiet_status reads a /proc/PID/status: kauditd's (Name kauditd, a child
 * of kthreadd), asleep (S or I), having gone to sleep sleeps times
 * (voluntary_ctxt_switches). Every field must be there; 1 if it is so. */
static int quiet_status(const char *s, size_t n, unsigned long long sleeps) {
	int name = 0, ppid = 0, asleep = 0, count = 0;
	while (n > 0) {
		long l = line(s, n);
		size_t len = l < 0 ? n : (size_t)l;
		const char *colon = memchr(s, ':', len);
		if (colon) {
			size_t k = (size_t)(colon - s);
			const char *v = colon + 1, *end = s + len;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			size_t vn = (size_t)(end - v);
			unsigned long long c;
			if (k == 4 && memcmp(s, "Name", 4) == 0)
				name = vn == 7 && memcmp(v, "kauditd", 7) == 0;
			else if (k == 4 && memcmp(s, "PPid", 4) == 0)
				ppid = vn == 1 && v[0] == '2';
			else if (k == 5 && memcmp(s, "State", 5) == 0)
				asleep = vn > 0 && (v[0] == 'S' || v[0] == 'I');
			else if (k == 23 && memcmp(s, "voluntary_ctxt_switches", 23) == 0)
				count = decimal(v, vn, &c) == 0 && c == sleeps;
		}
		if (l < 0)
			break;
		s += l + 1, n -= (size_t)l + 1;
	}
	return name && ppid && asleep && count;
}

/* read_small reads a file of at most max bytes (fd closed). */
static ssize_t read_small(int fd, char *buf, size_t max) {
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, max - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return -1;
		}
		got += (size_t)r;
		if (r == 0 || got == max)
			break;
	}
	close(fd);
	return (ssize_t)got;
}

/* audit_thread_quiet: the kernel's audit thread pid is asleep, not woken
 * since it had gone to sleep sleeps times. */
static int audit_thread_quiet(unsigned long long pid, unsigned long long sleeps) {
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%llu/status", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read_small(fd, buf, sizeof buf);
	return n > 0 && quiet_status(buf, (size_t)n, sleeps);
}

/* rfc3339 writes ts as Go's time.RFC3339Nano in UTC (its JSON form), for
 * the years 1000-9999 (0 for others: clawos-hook does those):
 * nanoseconds without trailing zeros, none at all for a whole second. */
static size_t rfc3339(char *out, size_t cap, const struct timespec *ts) {
	struct tm tm;
	if (cap < 40 || gmtime_r(&ts->tv_sec, &tm) == NULL || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
		return 0;
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return 0;
	if (ts->tv_nsec > 0 && ts->tv_nsec < 1000000000) {
		char frac[16];
		int k = snprintf(frac, sizeof frac, ".%09ld", ts->tv_nsec);
		while (k > 1 && frac[k - 1] == '0')
			k--;
		memcpy(out + n, frac, (size_t)k);
		n += (size_t)k;
	}
	out[n++] = 'Z';
	out[n] = '\0';
	return n;
}

/* quick does the stage where it can: 0 when done, -1 to leave it to
 * clawos-hook. */
static int quick(const char *dir, const char *log, const char *state, size_t n) {
	char id[MAX_ID + 1], rec[PATH_MAX], fastp[PATH_MAX];
	if (dir[0] != '/' || log[0] != '/' || state_id(state, n, id) == 0)
		return -1;
	if (snprintf(rec, sizeof rec, "%s/%s.json", dir, id) >= (int)sizeof rec ||
	    snprintf(fastp, sizeof fastp, "%s/%s.poststop", dir, id) >= (int)sizeof fastp)
		return -1;
	int fd = open(fastp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_size <= 0 || st.st_size > MAX_FAST) {
		close(fd);
		return -1;
	}
	static char buf[MAX_FAST + 1];
	ssize_t got = read_small(fd, buf, sizeof buf);
	struct fast f;
	if (got != st.st_size || parse_fast(buf, (size_t)got, &f) != 0 || strcmp(f.id, id) != 0)
		return -1;
	/* No seccomp kill to name since createRuntime. */
	if (!audit_thread_quiet(f.pid, f.sleeps))
		return -1;
	static char entry[MAX_TAIL + 64];
	size_t len = sizeof "{\"time\":\"" - 1;
	memcpy(entry, "{\"time\":\"", len);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	size_t t = rfc3339(entry + len, 48, &now);
	if (t == 0)
		return -1;
	len += t;
	entry[len++] = '"';
	memcpy(entry + len, f.tail, f.tail_len);
	len += f.tail_len;
	entry[len++] = '\n';
	/* Appended as clawos-hook appends (one write, O_APPEND); a log due
	 * for rotation, or not there, is clawos-hook's to rotate or make. */
	int lf = open(log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (lf < 0)
		return -1;
	if (fstat(lf, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size + (off_t)len > MAX_AUDIT_LOG) {
		close(lf);
		return -1;
	}
	/* This file first: a record without it goes to clawos-hook. */
	if ((unlink(fastp) != 0 && errno != ENOENT) || (unlink(rec) != 0 && errno != ENOENT)) {
		close(lf);
		return -1;
	}
	ssize_t w = write(lf, entry, len);
	close(lf);
	return w == (ssize_t)len ? 0 : -1;
}

/* fail says on stderr, as a P1.7 payload, why clawos-hook could not run. */
static int fail(const char *what, const char *hook, int err) {
	fprintf(stderr, "{\"error_code\":3,\"error_message\":\"clawos-poststop: %s ", what);
	for (const char *p = hook; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			fprintf(stderr, "\\%c", c);
		else if (c < 0x20)
			fprintf(stderr, "\\u%04x", c);
		else
			fputc(c, stderr);
	}
	fprintf(stderr, ": %s\",\"component\":\"clawos-poststop\",\"severity\":\"error\",\"context\":{\"path\":\"hook\"}}\n",
		strerror(err));
	return 1;
}

#ifndef CLAWOS_POSTSTOP_NO_MAIN
int main(int argc, char **argv) {
	if (argc < 8 || strcmp(argv[1], "--state-dir") != 0 || strcmp(argv[3], "--audit-log") != 0 || strcmp(argv[5], "--") != 0) {
		fprintf(stderr, "usage: clawos-poststop --state-dir DIR --audit-log FILE -- HOOK ARG0 ARGS...\n");
		return 2;
	}
	char **hook = argv + 6;
	/* The state, kept whole for clawos-hook; its start read here. */
	static char head[STATE_HEAD];
	size_t headlen = 0;
	int in = memfd_create("clawos-poststop-state", MFD_CLOEXEC);
	if (in < 0) {
		execv(hook[0], hook + 1);
		return fail("cannot run", hook[0], errno);
	}
	static char buf[65536];
	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail("cannot read the state for", hook[0], errno);
		if (r == 0)
			break;
		size_t k = (size_t)r < sizeof head - headlen ? (size_t)r : sizeof head - headlen;
		memcpy(head + headlen, buf, k);
		headlen += k;
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(in, buf + off, (size_t)(r - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return fail("cannot keep the state for", hook[0], errno);
			off += w;
		}
	}
	if (quick(argv[2], argv[4], head, headlen) == 0)
		return 0;
	if (lseek(in, 0, SEEK_SET) != 0 || dup2(in, 0) != 0)
		return fail("cannot give the state to", hook[0], errno);
	execv(hook[0], hook + 1);
	return fail("cannot run", hook[0], errno);
}
#endif
