/* pingprog: a test-only node program for the simulator kernel. Every node
 * pings a random peer every period and answers pings with pongs; with
 * persist, it counts pongs in its sqlite storage. Nothing of it enters the
 * product: it exists so that tests and benchmarks can drive the kernel
 * before managers and workers exist. */
#ifndef TESTS_PINGPROG_H
#define TESTS_PINGPROG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"

struct pingprog_cfg {
	const char *const *peers; /* addresses to ping (borrowed) */
	size_t peer_count;
	ms_t period_ms;
	bool persist; /* keep a pong count in storage "ping" */
};

struct pingprog {
	struct env *env;
	const struct pingprog_cfg *cfg;
	env_timer_id timer;
	uint64_t pings_sent;
	uint64_t pings_received;
	uint64_t pongs_received;
	uint64_t stored_pongs; /* read from storage at start when persist */
	struct sqlite3 *db;
};

extern const struct env_program_ops pingprog_ops;

#endif
