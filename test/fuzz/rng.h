/* The fuzz drivers' deterministic generator (xorshift64): the same
 * mutations at every run, so that a fault found in CI is found again. */
#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
