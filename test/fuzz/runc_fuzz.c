/*
 * Fuzz driver for the runtime wrapper's front (cmd/clawos-runc/front.c):
 * its reader of the programs' configuration, its scan of a bundle's
 * config.json and its routing of runc's command line, built with
 * -fsanitize=address,undefined by `make fuzz`, so that an out-of-bounds
 * read, an overflow or undefined behaviour aborts the run, and checked
 * against simple oracles (below).
 *
 * LLVMFuzzerTestOneInput is libFuzzer's entry point. Without libFuzzer,
 * main runs the built-in seeds and the files given, then COUNT
 * deterministic mutations of them (bit flips, bytes, runc flag and command
 * names and JSON tokens spliced in, truncations).
 *
 *   runc_fuzz COUNT [SEED...]
 *
 * It works in a directory of its own: "create" arguments read
 * ./config.json (an annotated one) and bundles named by the input.
 */
#define CLAWOS_RUNC_NO_MAIN
#include "../../cmd/clawos-runc/front.c"

#include <stdint.h>

/* naive_clawos is contains_clawos's oracle. */
static int naive_clawos(const char *buf, size_t len) {
	for (size_t i = 0; i + 6 <= len; i++)
		if (strncasecmp(buf + i, "clawos", 6) == 0)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static char text[1 << 16];
	if (size >= sizeof text)
		size = sizeof text - 1;
	memcpy(text, data, size);
	text[size] = '\0';

	/* The configuration reader: what it accepts is plain ASCII paths. */
	struct programs p = { "", "" };
	if (parse_programs(text, size, &p) == 0) {
		for (const char *s = p.runc; *s; s++)
			if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x80)
				abort();
		for (const char *s = p.hook; *s; s++)
			if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x80)
				abort();
	}
	if (contains_clawos(text, size) != naive_clawos(text, size) && !memchr(text, 0, size))
		abort();

	/* The router: the input's lines are the arguments. */
	static char *args[64];
	int n = 0;
	char *line = text;
	for (char *q = text; n < 63; q++) {
		if (*q == '\n' || *q == '\0') {
			int end = *q == '\0';
			*q = '\0';
			args[n++] = line;
			line = q + 1;
			if (end)
				break;
		}
	}
	args[n] = NULL;
	const char *log = NULL;
	enum route r = route(n, args, &log);
	/* Never to runc: a command the front leaves to the hook (the first
	 * argument that is not a flag is the command). */
	static const char *const hooks[] = { "exec", "update", "restore", "checkpoint", "spec", "init", "--" };
	for (size_t k = 0; r == ROUTE_RUNC && n > 0 && k < sizeof hooks / sizeof hooks[0]; k++)
		if (strcmp(args[0], hooks[k]) == 0)
			abort();
	if (r != ROUTE_RUNC && r != ROUTE_HOOK)
		abort();
	return 0;
}

#ifndef CLAWOS_LIBFUZZER
#include "rng.h"

static const char *const tokens[] = {
	"--root", "--log", "--log-format=json", "-root=/r", "--debug", "--systemd-cgroup", "--", "-", "create", "run", "start",
	"delete", "exec", "kill", "state", "update", "restore", "--bundle", "-b", "-b=.", "--bundle=.", "--pid-file", "--force",
	"-f", "--all", "--format", "\n", "\"", "\\", "\\u0063", "{", "}", "[", "]", ":", ",", "\"runc\"", "\"hook\"",
	"\"RUNC\"", "null", "true", "-1e5", "clawos", "CLAWOS", "\"io.clawos.whitelist\":\"x\"",
};

static const char *const builtin[] = {
	"{\"runc\": \"/usr/bin/runc\", \"hook\": \"/usr/local/bin/clawos-hook\", \"whitelist_dir\": \"/etc/clawos/whitelists\","
	" \"cri\": true, \"timeout\": \"10s\", \"n\": [1, -2.5e3, {\"a\": null}]}",
	"{}",
	"--root\n/run/containerd/runc/k8s.io\n--log\n/l.json\n--log-format\njson\ncreate\n--bundle\n.\n--pid-file\n/p\nid",
	"--root\n/r\ndelete\n--force\nid",
	"start\nid",
	"kill\n--all\nid\n9",
	"exec\n--process\n/p.json\nid",
	"--root=start\ncreate\n-b=/nonexistent\nid",
};

static char seeds[16][1 << 16];
static size_t seedlen[16];

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: runc_fuzz COUNT [SEED...]\n");
		return 2;
	}
	long count = atol(argv[1]);
	int nseeds = 0;
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
		seedlen[nseeds] = strlen(builtin[i]);
		memcpy(seeds[nseeds++], builtin[i], strlen(builtin[i]));
	}
	for (int i = 2; i < argc && nseeds < 16; i++) {
		size_t len;
		char *b = read_file(argv[i], 0, sizeof seeds[0] - 1, &len);
		if (!b) {
			perror(argv[i]);
			return 2;
		}
		memcpy(seeds[nseeds], b, len);
		seedlen[nseeds++] = len;
		free(b);
	}
	char dir[] = "/tmp/clawos-runc-fuzz-XXXXXX";
	if (!mkdtemp(dir) || chdir(dir) != 0) {
		perror("runc_fuzz: work directory");
		return 2;
	}
	FILE *f = fopen("config.json", "w");
	if (!f || fputs("{\"annotations\": {\"io.clawos.whitelist\": \"agent\"}}", f) < 0 || fclose(f) != 0) {
		perror("runc_fuzz: config.json");
		return 2;
	}
	/* The seeds themselves, with what they must give. */
	struct programs p = { "", "" };
	if (parse_programs(seeds[0], seedlen[0], &p) != 0 || strcmp(p.runc, "/usr/bin/runc") != 0 ||
	    strcmp(p.hook, "/usr/local/bin/clawos-hook") != 0) {
		fprintf(stderr, "runc_fuzz: the built-in configuration does not parse\n");
		return 1;
	}
	for (int s = 0; s < nseeds; s++)
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[s], seedlen[s]);
	static char d[1 << 16];
	for (long it = 0; it < count; it++) {
		int s = (int)(next() % (uint64_t)nseeds);
		size_t n = seedlen[s];
		memcpy(d, seeds[s], n);
		for (int m = (int)(next() % 4) + 1; m > 0; m--)
			splice_mutate(d, &n, sizeof d - 1, tokens, sizeof tokens / sizeof tokens[0]);
		LLVMFuzzerTestOneInput((const uint8_t *)d, n);
	}
	unlink("config.json");
	rmdir(dir);
	printf("runc_fuzz: %ld inputs from %d seeds, no fault\n", count + nseeds, nseeds);
	return 0;
}
#endif
