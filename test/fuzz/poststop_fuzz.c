/*
 * Fuzz driver for clawos-poststop (cmd/clawos-poststop/poststop.c): its
 * reader of runc's state (the container's id), of the file createRuntime
 * leaves, of /proc/PID/status, and its time stamp, built with
 * -fsanitize=address,undefined by `make fuzz`, so that an out-of-bounds
 * read, an overflow or undefined behaviour aborts the run, and checked
 * against oracles (below).
 *
 * LLVMFuzzerTestOneInput is libFuzzer's entry point. Without libFuzzer,
 * main runs the built-in seeds, then COUNT deterministic mutations of them
 * (bit flips, bytes, tokens spliced in, truncations).
 *
 *   poststop_fuzz COUNT
 */
#define CLAWOS_POSTSTOP_NO_MAIN
#include "../../cmd/clawos-poststop/poststop.c"

#include <stdint.h>

/* id_oracle: what state_id accepts is runc's head with a valid id, found
 * where the input says. */
static void check_state(const char *s, size_t n) {
	char id[MAX_ID + 1];
	size_t len = state_id(s, n, id);
	if (len == 0)
		return;
	if (strlen(id) != len || !valid_id(id, len) || memcmp(s, "{\"ociVersion\":\"", 15) != 0)
		abort();
	const char *at = NULL;
	for (size_t i = 15; i + 8 <= n; i++)
		if (memcmp(s + i, "\",\"id\":\"", 8) == 0) {
			at = s + i + 8;
			break;
		}
	if (at == NULL || (size_t)(at - s) + len + 1 >= n + 1 || memcmp(at, id, len) != 0 || at[len] != '"')
		abort();
	for (const char *p = s + 15; p < at - 8; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80)
			abort();
}

/* What parse_fast accepts: a valid id, a pid, and a tail that is one line
 * of the audit record after its time, without control characters. */
static void check_fast(const char *s, size_t n) {
	struct fast f;
	if (parse_fast(s, n, &f) != 0)
		return;
	if (!valid_id(f.id, strlen(f.id)) || f.pid == 0 || f.pid > INT_MAX || f.tail < s || f.tail + f.tail_len + 1 != s + n)
		abort();
	if (f.tail_len > MAX_TAIL || memcmp(f.tail, ",\"stage\":\"poststop\",", 20) != 0 || f.tail[f.tail_len - 1] != '}' ||
	    s[n - 1] != '\n')
		abort();
	for (size_t i = 0; i < f.tail_len; i++)
		if ((unsigned char)f.tail[i] < 0x20 || f.tail[i] == 0x7f)
			abort();
}

/* quiet_status is true only with all four fields as kauditd's. */
static void check_status(const char *s, size_t n) {
	if (quiet_status(s, n, 82448) && (memmem(s, n, "kauditd", 7) == NULL || memmem(s, n, "82448", 5) == NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static char text[1 << 16];
	if (size >= sizeof text)
		size = sizeof text - 1;
	memcpy(text, data, size);
	text[size] = '\0';
	check_state(text, size);
	check_fast(text, size);
	check_status(text, size);
	/* The time stamp, for seconds and nanoseconds the input gives. */
	if (size >= 12) {
		struct timespec ts;
		int64_t sec;
		int32_t ns;
		memcpy(&sec, data, 8);
		memcpy(&ns, data + 8, 4);
		ts.tv_sec = (time_t)(sec % 400000000000LL);
		ts.tv_nsec = ns;
		char out[64];
		size_t k = rfc3339(out, sizeof out, &ts);
		if (k != 0 && (k != strlen(out) || out[k - 1] != 'Z' || out[4] != '-' || out[10] != 'T' || k > 30))
			abort();
	}
	return 0;
}

#ifndef CLAWOS_LIBFUZZER
#include "rng.h"

static const char *const tokens[] = {
	"{\"ociVersion\":\"", "\",\"id\":\"", "\"", "\\", "\\u0022", ",", "}", "\n", "clawos-poststop 1\n", "id ", "mark ",
	" ", "0", "18446744073709551616", "2147483648", ",\"stage\":\"poststop\",", "\x7f", "\t", "Name:\tkauditd\n",
	"PPid:\t2\n", "State:\tS (sleeping)\n", "voluntary_ctxt_switches:\t82448\n", "../", "a.b-c_d",
};

static const char *const builtin[] = {
	"{\"ociVersion\":\"1.0.2\",\"id\":\"c-1\",\"status\":\"stopped\",\"pid\":0,\"bundle\":\"/b\",\"annotations\":{\"a\":\"\\\"\"}}",
	"{\"ociVersion\":\"1.2.1\",\"id\":\"k8s.io_abc\"}",
	"clawos-poststop 1\nid c-1\nmark 30 82448\n,\"stage\":\"poststop\",\"container_id\":\"c-1\",\"whitelist\":\"probe\",\"decision\":\"cleaned\"}\n",
	"Name:\tkauditd\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t30\nPid:\t30\nPPid:\t2\nvoluntary_ctxt_switches:\t82448\nnonvoluntary_ctxt_switches:\t142\n",
};

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: poststop_fuzz COUNT\n");
		return 2;
	}
	long count = atol(argv[1]);
	enum { NSEEDS = sizeof builtin / sizeof builtin[0] };
	/* The seeds themselves, with what they must give. */
	char id[MAX_ID + 1];
	struct fast f;
	if (state_id(builtin[0], strlen(builtin[0]), id) != 3 || strcmp(id, "c-1") != 0 ||
	    state_id(builtin[1], strlen(builtin[1]), id) != 10 || parse_fast(builtin[2], strlen(builtin[2]), &f) != 0 ||
	    f.pid != 30 || f.sleeps != 82448 || strcmp(f.id, "c-1") != 0 || !quiet_status(builtin[3], strlen(builtin[3]), 82448) ||
	    quiet_status(builtin[3], strlen(builtin[3]), 82449)) {
		fprintf(stderr, "poststop_fuzz: a built-in seed does not read as it must\n");
		return 1;
	}
	struct timespec ts = { 1796272611, 810923210 };
	char out[64];
	if (rfc3339(out, sizeof out, &ts) == 0 || strcmp(out, "2026-12-03T04:36:51.81092321Z") != 0) {
		fprintf(stderr, "poststop_fuzz: time stamp %s\n", out);
		return 1;
	}
	ts.tv_nsec = 0;
	if (rfc3339(out, sizeof out, &ts) == 0 || strcmp(out, "2026-12-03T04:36:51Z") != 0) {
		fprintf(stderr, "poststop_fuzz: time stamp %s\n", out);
		return 1;
	}
	for (int s = 0; s < NSEEDS; s++)
		LLVMFuzzerTestOneInput((const uint8_t *)builtin[s], strlen(builtin[s]));
	static char d[1 << 16];
	for (long it = 0; it < count; it++) {
		int s = (int)(next() % NSEEDS);
		size_t n = strlen(builtin[s]);
		memcpy(d, builtin[s], n);
		for (int m = (int)(next() % 4) + 1; m > 0; m--)
			splice_mutate(d, &n, sizeof d - 1, tokens, sizeof tokens / sizeof tokens[0]);
		LLVMFuzzerTestOneInput((const uint8_t *)d, n);
	}
	printf("poststop_fuzz: %ld inputs from %d seeds, no fault\n", count + NSEEDS, NSEEDS);
	(void)argv;
	return 0;
}
#endif
