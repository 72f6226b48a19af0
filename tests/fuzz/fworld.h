/* fworld: the small simulated cluster the handler targets of tests/fuzz/
 * run their inputs against: one manager m1 (the leader) and one worker w1,
 * both running node_program (agent, and manager on m1) over the simulated
 * runtime, w1 ready. Everything is the real core code; only the world is
 * simulated, so a run is deterministic for its inputs. */
#ifndef TESTS_FUZZ_FWORLD_H
#define TESTS_FUZZ_FWORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"

struct world;
struct simcluster;

struct fworld {
	struct world *w;
	struct simcluster *c;
	uint32_t m1, w1; /* node indexes */
};

/* fworld_new makes the cluster and runs it until w1 is ready (aborts when
 * it is not within 60 s of virtual time: the fixture is broken). */
void fworld_new(struct fworld *f, uint64_t seed);
void fworld_free(struct fworld *f);

/* fworld_run runs the world for d_us of virtual time, checking the
 * cluster's and the runtime's invariants after every event; returns false
 * (msg says which) when one fails. */
bool fworld_run(struct fworld *f, uint64_t d_us, char *msg, size_t size);

/* fworld_send sends len bytes as node `from` to node `to` (a frame of the
 * env transport, delivered by the simulated network). */
void fworld_send(struct fworld *f, uint32_t from, uint32_t to, const uint8_t *buf,
		 size_t len);

/* fworld_call runs req (borrowed) on m1's control RPC and steps the world
 * (checking invariants) until it is answered or limit_us of virtual time
 * passed; returns the number of answers (aborts when an invariant fails:
 * msg says which), with the answer's status, id and packed size. */
struct fworld_answer {
	int calls;
	int status;
	uint64_t id;
	size_t packed;
	char error[256];
};
void fworld_call(struct fworld *f, const Cs__ControlRequest *req, uint64_t limit_us,
		 struct fworld_answer *a);

/* fworld_create_web creates a replicated service "web" of `replicas` tasks
 * on image busybox and runs until answered (aborts when refused). */
void fworld_create_web(struct fworld *f, uint64_t replicas);

/* fworld_leader_digest is a digest of the leader's store snapshot, without
 * the applied index (0 when no leader). */
uint64_t fworld_store_digest(struct fworld *f);

#endif
