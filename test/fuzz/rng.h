/* The fuzz drivers' deterministic generator (xorshift64): the same
 * mutations at every run, so that a fault found in CI is found again. */
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* splice_mutate changes d[0..*n) (at most cap bytes) once: a bit flipped,
 * a byte replaced, a truncation, or one of tokens spliced in. */
static void splice_mutate(char *d, size_t *n, size_t cap, const char *const *tokens, size_t ntokens) {
	int kind = (int)(next() % 5);
	if (*n == 0)
		kind = 3;
	switch (kind) {
	case 0: /* bit flip */
		d[next() % *n] ^= (char)(1u << (next() % 8));
		break;
	case 1: /* byte */
		d[next() % *n] = (char)next();
		break;
	case 2: /* truncate */
		*n = next() % (*n + 1);
		break;
	default: { /* a token spliced in */
		const char *t = tokens[next() % ntokens];
		size_t tl = strlen(t), at = *n ? next() % (*n + 1) : 0;
		if (*n + tl + 1 <= cap) {
			memmove(d + at + tl, d + at, *n - at);
			memcpy(d + at, t, tl);
			*n += tl;
		}
		break;
	}
	}
}
