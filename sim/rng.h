/* rng: deterministic random streams for the simulator. One seed splits into
 * independent streams by purpose and index (the network of node 7, the faults
 * of the run, the workload, the env of node 3), so that adding a draw to one
 * stream never shifts another. xoshiro256** seeded through splitmix64. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

enum rng_purpose {
	RNG_NODE = 1,	  /* a node's env random_u64 */
	RNG_NET = 2,	  /* link decisions for messages a node sends */
	RNG_FAULTS = 3,	  /* fault schedules (explore) */
	RNG_WORKLOAD = 4, /* the scenario's own draws (image latencies...) */
	RNG_DISK = 5,	  /* sqlite's randomness */
	RNG_TEST = 6,	  /* tests and benchmarks */
};

struct rng {
	uint64_t s[4];
};

/* rng_init seeds r with the stream (seed, purpose, index). Same triple, same
 * stream; different triples, independent streams. */
void rng_init(struct rng *r, uint64_t seed, enum rng_purpose purpose, uint64_t index);

/* rng_next returns 64 random bits. */
uint64_t rng_next(struct rng *r);

/* rng_below returns a uniform value in [0, n); n must be > 0 (Lemire's
 * method, unbiased). */
uint64_t rng_below(struct rng *r, uint64_t n);

/* rng_range returns a uniform value in [lo, hi]; requires lo <= hi. */
uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi);

/* rng_chance_ppm returns true with probability ppm / 1,000,000. */
int rng_chance_ppm(struct rng *r, uint32_t ppm);

/* rng_mix64 is splitmix64's finaliser: a strong 64-bit mix. */
uint64_t rng_mix64(uint64_t x);

#endif
