/* clawos-runc is the ClawOS runtime wrapper for containerd (also as a
 * Kubernetes CRI runtime handler) and plain runc, called with runc's
 * command line. It runs for every runc call of its handler, so this front
 * is a small static C program that only routes the call:
 *
 *   - to the real runc, with the same arguments and environment, when the
 *     call cannot concern ClawOS: start, delete, kill, state, ps, events,
 *     pause, resume, list, features (their flags as runc 1.1 declares
 *     them), no command at all (--version, --help), and a create or run
 *     whose bundle's config.json cannot hold a ClawOS annotation;
 *   - to `clawos-hook runc-wrap WRAPPER ARGS...` for everything else, which
 *     reads the call in full (internal/runcargs), confines it or refuses it,
 *     and execs runc itself for a call that turns out not to concern it.
 *
 * In doubt it hands the call to clawos-hook: an unknown flag or command,
 * "--", a flag value missing, a configuration it does not read exactly as
 * the hook does, a config.json it cannot read. A config.json "cannot hold a
 * ClawOS annotation" when its bytes contain neither "clawos" (in any case)
 * nor a backslash: every annotation key ClawOS reads ("io.clawos.*",
 * "whitelist.clawos.io/NAME" and the like) contains "clawos", and JSON can
 * spell a key without those literal bytes only with a backslash escape.
 * The full wrapper decides the rest (test/wrapper_front_test.go checks the
 * routing against runcargs.Concerns).
 *
 * Its configuration is clawos-runc.json next to the path it was called by,
 * else /etc/clawos/runtime.json: of it, the front reads the "runc" and
 * "hook" programs (defaults /usr/bin/runc and clawos-hook next to the
 * wrapper). A file with a backslash, a byte outside ASCII, a key that
 * matches either name other than exactly, or a value that is not a plain
 * string goes to clawos-hook, which reads the file with its own decoder
 * and reports the error. See docs/kubernetes.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_RUNC "/usr/bin/runc"
#define DEFAULT_CONFIG "/etc/clawos/runtime.json"
#define LOCAL_CONFIG "clawos-runc.json"
/* runcargs.MaxConfig: a larger config.json is not an OCI config the hook
 * reads; the programs' file is bounded likewise. */
#define MAX_CONFIG (16 << 20)

enum route { ROUTE_HOOK, ROUTE_RUNC };

/* A flag of runc 1.1 as runcargs' table declares it: takes a value or not. */
struct flag {
	const char *name;
	int takes;
};

struct command {
	const char *name;
	const struct flag *flags;
	int bundle; /* create, run: the bundle's config.json decides */
};

static const struct flag global_flags[] = {
	{ "debug", 0 }, { "log", 1 }, { "log-format", 1 }, { "root", 1 }, { "criu", 1 }, { "systemd-cgroup", 0 },
	{ "rootless", 1 }, { "help", 0 }, { "h", 0 }, { "version", 0 }, { "v", 0 }, { NULL, 0 },
};
static const struct flag create_flags[] = {
	{ "bundle", 1 }, { "b", 1 }, { "console-socket", 1 }, { "pid-file", 1 }, { "no-pivot", 0 }, { "no-new-keyring", 0 },
	{ "preserve-fds", 1 }, { NULL, 0 },
};
static const struct flag run_flags[] = {
	{ "bundle", 1 }, { "b", 1 }, { "console-socket", 1 }, { "detach", 0 }, { "d", 0 }, { "keep", 0 }, { "pid-file", 1 },
	{ "no-subreaper", 0 }, { "no-pivot", 0 }, { "no-new-keyring", 0 }, { "preserve-fds", 1 }, { NULL, 0 },
};
static const struct flag delete_flags[] = { { "force", 0 }, { "f", 0 }, { NULL, 0 } };
static const struct flag events_flags[] = { { "interval", 1 }, { "stats", 0 }, { NULL, 0 } };
static const struct flag kill_flags[] = { { "all", 0 }, { "a", 0 }, { NULL, 0 } };
static const struct flag list_flags[] = { { "format", 1 }, { "f", 1 }, { "quiet", 0 }, { "q", 0 }, { NULL, 0 } };
static const struct flag ps_flags[] = { { "format", 1 }, { "f", 1 }, { NULL, 0 } };
static const struct flag no_flags[] = { { NULL, 0 } };

/* The commands the front may pass to runc; any other goes to the hook. */
static const struct command commands[] = {
	{ "create", create_flags, 1 }, { "run", run_flags, 1 }, { "start", no_flags, 0 }, { "delete", delete_flags, 0 },
	{ "kill", kill_flags, 0 }, { "state", no_flags, 0 }, { "ps", ps_flags, 0 }, { "events", events_flags, 0 },
	{ "pause", no_flags, 0 }, { "resume", no_flags, 0 }, { "list", list_flags, 0 }, { "features", no_flags, 0 },
	{ NULL, NULL, 0 },
};

/* lookup returns the flag named by arg ("-name", "--name", either with
 * "=value"), NULL if the table has none; *inline_value tells whether the
 * value came after "=". */
static const struct flag *lookup(const struct flag *table, const char *arg, int *inline_value) {
	const char *name = arg + 1;
	if (*name == '-')
		name++;
	const char *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	*inline_value = eq != NULL;
	for (const struct flag *f = table; f->name; f++)
		if (strlen(f->name) == n && strncmp(f->name, name, n) == 0)
			return f;
	return NULL;
}

/* contains_clawos tells whether buf holds "clawos" in any ASCII case. */
static int contains_clawos(const char *buf, size_t len) {
	static const char word[] = "clawos";
	for (size_t i = 0; i + 6 <= len; i++) {
		size_t k = 0;
		while (k < 6 && (buf[i + k] | 0x20) == word[k])
			k++;
		if (k == 6)
			return 1;
	}
	return 0;
}

/* read_file reads at most max bytes of a regular file (flags: O_NOFOLLOW
 * or 0); NULL on any error or a larger file, errno ENOENT only when the
 * file does not exist. */
static char *read_file(const char *path, int flags, size_t max, size_t *len) {
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	errno = EINVAL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size > max) {
		if (errno == ENOENT)
			errno = EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto out;
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || got + (size_t)r > (size_t)st.st_size) { /* an error, or the file grew */
			errno = EIO;
			free(buf);
			buf = NULL;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*len = got;
	buf[got] = '\0';
out:
	close(fd);
	return buf;
}

/* bundle_route decides a create or run by its bundle's config.json. */
static enum route bundle_route(const char *bundle) {
	char path[PATH_MAX];
	if (bundle == NULL || *bundle == '\0')
		return ROUTE_HOOK;
	if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path)
		return ROUTE_HOOK;
	size_t len;
	char *buf = read_file(path, O_NOFOLLOW, MAX_CONFIG, &len);
	if (buf == NULL)
		return ROUTE_HOOK;
	enum route r = (memchr(buf, '\\', len) || contains_clawos(buf, len)) ? ROUTE_HOOK : ROUTE_RUNC;
	free(buf);
	return r;
}

/* route decides where runc's arguments args[0..n) go, as runcargs.Parse
 * reads them: global flags, the command, the command's flags anywhere
 * before "--". A relative bundle is read from the working directory,
 * which runc is given too. *log is runc's --log, where it was read. */
static enum route route(int n, char **args, const char **log) {
	const struct flag *table = global_flags;
	const struct command *cmd = NULL;
	const char *bundle = ".";
	for (int i = 0; i < n; i++) {
		const char *a = args[i];
		if (strcmp(a, "--") == 0)
			return ROUTE_HOOK; /* runcargs stops reading here; so does the front's trust */
		if (a[0] == '-' && a[1] != '\0') {
			int inline_value;
			const struct flag *f = lookup(table, a, &inline_value);
			if (f == NULL)
				return ROUTE_HOOK;
			const char *value = inline_value ? strchr(a, '=') + 1 : NULL;
			if (f->takes && !inline_value) {
				if (i + 1 >= n)
					return ROUTE_HOOK;
				value = args[++i];
			}
			if (cmd && cmd->bundle && (strcmp(f->name, "bundle") == 0 || strcmp(f->name, "b") == 0))
				bundle = value;
			if (!cmd && strcmp(f->name, "log") == 0)
				*log = value;
			continue;
		}
		if (cmd == NULL) {
			for (cmd = commands; cmd->name; cmd++)
				if (strcmp(cmd->name, a) == 0)
					break;
			if (cmd->name == NULL)
				return ROUTE_HOOK; /* exec, update, restore, an unknown command, ... */
			table = cmd->flags;
		}
	}
	if (cmd == NULL || !cmd->bundle)
		return ROUTE_RUNC;
	return bundle_route(bundle);
}

struct programs {
	char runc[PATH_MAX];
	char hook[PATH_MAX];
};

static const char *skip_ws(const char *p) {
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* string reads a JSON string without escapes at p ('"'), returning the
 * character after it; its contents are [*start, *start+*len). */
static const char *string(const char *p, const char **start, size_t *len) {
	if (*p != '"')
		return NULL;
	const char *e = p + 1;
	while (*e && *e != '"') {
		if ((unsigned char)*e < 0x20)
			return NULL;
		e++;
	}
	if (*e != '"')
		return NULL;
	*start = p + 1;
	*len = (size_t)(e - p - 1);
	return e + 1;
}

/* skip_value skips one JSON value (no escapes: the caller refused them). */
static const char *skip_value(const char *p, int depth) {
	const char *s;
	size_t n;
	if (depth > 64)
		return NULL;
	p = skip_ws(p);
	switch (*p) {
	case '"':
		return string(p, &s, &n);
	case '{':
	case '[': {
		char close = *p == '{' ? '}' : ']';
		p = skip_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = string(skip_ws(p), &s, &n);
				if (!p)
					return NULL;
				p = skip_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = skip_value(p, depth + 1);
			if (!p)
				return NULL;
			p = skip_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	default:
		if (strncmp(p, "true", 4) == 0)
			return p + 4;
		if (strncmp(p, "false", 5) == 0)
			return p + 5;
		if (strncmp(p, "null", 4) == 0)
			return p + 4;
		s = p;
		if (*p == '-')
			p++;
		while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-')
			p++;
		return p > s && (p[-1] >= '0' && p[-1] <= '9') ? p : NULL;
	}
}

/* names tells whether key (len bytes) is name in any ASCII case (Go's
 * decoder matches a field's name so); *exact whether in this case. */
static int names(const char *key, size_t len, const char *name, int *exact) {
	if (len != strlen(name) || strncasecmp(key, name, len) != 0)
		return 0;
	*exact = strncmp(key, name, len) == 0;
	return 1;
}

/* parse_programs reads the "runc" and "hook" of a configuration file into
 * p (left as they are when absent; the last one wins, as in Go's decoder).
 * It returns -1 for anything it does not read as runcargs.ReadPrograms
 * would: the caller hands the call to the hook. */
static int parse_programs(const char *buf, size_t len, struct programs *p) {
	if (memchr(buf, '\\', len) || strlen(buf) != len)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] >= 0x80)
			return -1;
	const char *q = skip_ws(buf);
	if (*q++ != '{')
		return -1;
	q = skip_ws(q);
	if (*q == '}') {
		q++;
	} else {
		for (;;) {
			const char *key, *val;
			size_t klen, vlen;
			q = string(skip_ws(q), &key, &klen);
			if (!q)
				return -1;
			q = skip_ws(q);
			if (*q++ != ':')
				return -1;
			q = skip_ws(q);
			int exact = 0;
			char *dst = NULL;
			if (names(key, klen, "runc", &exact))
				dst = p->runc;
			else if (names(key, klen, "hook", &exact))
				dst = p->hook;
			if (dst) {
				q = string(q, &val, &vlen);
				if (!exact || !q || vlen >= PATH_MAX)
					return -1;
				memcpy(dst, val, vlen);
				dst[vlen] = '\0';
			} else {
				q = skip_value(q, 0);
				if (!q)
					return -1;
			}
			q = skip_ws(q);
			if (*q == '}') {
				q++;
				break;
			}
			if (*q++ != ',')
				return -1;
		}
	}
	return *skip_ws(q) == '\0' ? 0 : -1;
}

#ifndef CLAWOS_RUNC_NO_MAIN
#include <time.h>

/* json_string writes s as a JSON string's contents. */
static void json_string(FILE *f, const char *s) {
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

/* fail reports that neither program could be run as the Go wrapper's
 * runcargs.Fail does: a line in runc's JSON log format in --log (where
 * containerd reads it) and a P1.7 payload (E_NOENT, 3) on stderr. */
static int fail(const char *log, const char *hook, int err) {
	char msg[PATH_MAX + 128];
	snprintf(msg, sizeof msg, "cannot run the ClawOS hook %s; the call was not made: %s", hook, strerror(err));
	if (log && *log) {
		FILE *f = fopen(log, "ae");
		if (f) {
			char when[64];
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", gmtime(&ts.tv_sec));
			fprintf(f, "{\"code\":\"ENOENT\",\"level\":\"error\",\"msg\":\"clawos: ");
			json_string(f, msg);
			fprintf(f, "\",\"time\":\"%s.%09ldZ\"}\n", when, ts.tv_nsec);
			fclose(f);
		}
	}
	fprintf(stderr, "{\"error_code\":3,\"error_message\":\"");
	json_string(stderr, msg);
	fprintf(stderr, "\",\"component\":\"clawos-runc\",\"severity\":\"error\",\"context\":{\"path\":\"hook\"}}\n");
	return 1;
}

int main(int argc, char **argv) {
	char self[PATH_MAX], dir[PATH_MAX], config[PATH_MAX];
	if (argc < 1)
		return 1;
	if (argv[0][0] == '/') {
		if (snprintf(self, sizeof self, "%s", argv[0]) >= (int)sizeof self)
			return fail(NULL, argv[0], ENAMETOOLONG);
	} else {
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n < 0)
			return fail(NULL, "next to /proc/self/exe", errno);
		self[n] = '\0';
	}
	/* The wrapper's directory, with a trailing slash. */
	snprintf(dir, sizeof dir, "%s", self);
	*(strrchr(dir, '/') + 1) = '\0';
	struct programs p = { .runc = DEFAULT_RUNC };
	if (snprintf(p.hook, sizeof p.hook, "%sclawos-hook", dir) >= (int)sizeof p.hook)
		return fail(NULL, dir, ENAMETOOLONG);
	struct stat st;
	if (snprintf(config, sizeof config, "%s" LOCAL_CONFIG, dir) >= (int)sizeof config || stat(config, &st) != 0)
		snprintf(config, sizeof config, "%s", DEFAULT_CONFIG);

	const char *log = NULL;
	enum route r = route(argc - 1, argv + 1, &log);
	size_t len;
	char *buf = read_file(config, 0, MAX_CONFIG, &len);
	struct programs conf = { "", "" };
	if (buf == NULL) {
		if (errno != ENOENT)
			r = ROUTE_HOOK; /* the hook reads it again and reports it */
	} else if (parse_programs(buf, len, &conf) != 0) {
		r = ROUTE_HOOK;
	} else {
		/* An empty value means the default, as in runcargs.ReadPrograms. */
		if (conf.runc[0])
			memcpy(p.runc, conf.runc, sizeof p.runc);
		if (conf.hook[0])
			memcpy(p.hook, conf.hook, sizeof p.hook);
	}
	free(buf);

	if (r == ROUTE_RUNC) {
		argv[0] = "runc";
		execv(p.runc, argv);
		/* Not runnable: the hook reports it with runc's --log. */
	}
	char **hook_argv = calloc((size_t)argc + 3, sizeof *hook_argv);
	if (!hook_argv)
		return fail(log, p.hook, ENOMEM);
	hook_argv[0] = "clawos-hook";
	hook_argv[1] = "runc-wrap";
	hook_argv[2] = self;
	for (int i = 1; i < argc; i++)
		hook_argv[i + 2] = argv[i];
	execv(p.hook, hook_argv);
	int err = errno;
	free(hook_argv);
	return fail(log, p.hook, err);
}
#endif
