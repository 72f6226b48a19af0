#include "sim/rng.h"

#include <assert.h>

#include "core/hash.h"

uint64_t rng_mix64(uint64_t x)
{
	return hash_mix64(x);
}

static uint64_t rng_splitmix(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return rng_mix64(*state);
}

void rng_init(struct rng *r, uint64_t seed, enum rng_purpose purpose, uint64_t index)
{
	uint64_t sm = rng_mix64(seed) ^
		      rng_mix64(((uint64_t)purpose << 56) ^ rng_mix64(index + 1));
	for (int i = 0; i < 4; i++)
		r->s[i] = rng_splitmix(&sm);
	/* xoshiro's state must not be all zero; splitmix makes that
	 * astronomically unlikely, the assertion makes it impossible. */
	assert((r->s[0] | r->s[1] | r->s[2] | r->s[3]) != 0);
}

static uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return result;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	assert(n > 0);
	unsigned __int128 m = (unsigned __int128)rng_next(r) * n;
	uint64_t low = (uint64_t)m;
	if (low < n) {
		uint64_t threshold = -n % n;
		while (low < threshold) {
			m = (unsigned __int128)rng_next(r) * n;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	assert(lo <= hi);
	if (lo == 0 && hi == UINT64_MAX)
		return rng_next(r);
	return lo + rng_below(r, hi - lo + 1);
}

int rng_chance_ppm(struct rng *r, uint32_t ppm)
{
	if (ppm == 0)
		return 0;
	if (ppm >= 1000000)
		return 1;
	return rng_below(r, 1000000) < ppm;
}
