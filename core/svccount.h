/* svccount: each service's running and desired task counts (`service ls`'s
 * REPLICAS, Docker's ServiceStatus), kept up to date by the store as it
 * applies, so that every manager has them (a new leader at once) and the
 * control API answers them in O(services), not O(tasks).
 *
 * The rule is Docker's (moby daemon/cluster/services.go with status=true,
 * docker/cli's service list; SwarmKit's ListServiceStatuses): running
 * counts a service's tasks desired RUNNING and observed RUNNING on a node
 * the store holds and that is not DOWN; desired is a replicated service's
 * replicas (a replicated job's max_concurrent when set), a global
 * service's tasks desired RUNNING. The store owns one (store_svccount),
 * feeds it every change it applies (svccount_event) and rebuilds it after
 * a restore. Nothing is traced: the simulator's events do not depend on
 * it. Single-threaded, like the store. */
#ifndef CS_SVCCOUNT_H
#define CS_SVCCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/store.h"

/* One service id's task counts (the service may be gone: its tasks are
 * counted until they are). */
struct svccount_entry {
	uint64_t service_id;
	uint64_t running;	  /* desired RUNNING, RUNNING, node not DOWN */
	uint64_t desired_running; /* desired RUNNING, any node */
	uint64_t completed;	  /* observed COMPLETE */
};

/* Zeroed: empty. */
struct svccount {
	struct svccount_entry *entries; /* by service_id; no entry all zero */
	size_t count;
	size_t cap;
	uint64_t nodes_down; /* nodes in the store whose state is DOWN */
};

/* What the control API answers for a service. */
struct svccount_counts {
	uint64_t running;
	uint64_t desired;
	uint64_t completed;
};

/* svccount_event updates c with one change the store s just applied (s
 * already holds ev's new object; ev and s borrowed). A task costs
 * O(log services); a node whose DOWN-ness changes, O(its tasks). Out of
 * memory aborts (the store could not go on either: store_apply). */
void svccount_event(struct svccount *c, const struct store *s,
		    const struct store_event *ev);

/* svccount_rebuild recomputes c from the whole of s: O(tasks + nodes).
 * The store calls it after a restore (watches are not told of one). */
void svccount_rebuild(struct svccount *c, const struct store *s);

/* svccount_free releases c's memory and leaves it empty. */
void svccount_free(struct svccount *c);

/* svccount_service fills out with svc's counts (svc borrowed, in the store
 * c counts). O(log services). */
void svccount_service(const struct svccount *c, const Cs__Service *svc,
		      struct svccount_counts *out);

/* svccount_recount fills out with svc's counts computed from scratch over
 * s: O(svc's tasks). What svccount_service must equal; for tests and
 * checks. */
void svccount_recount(const struct store *s, const Cs__Service *svc,
		      struct svccount_counts *out);

/* svccount_recount_nodes_down counts s's DOWN nodes from scratch. */
uint64_t svccount_recount_nodes_down(const struct store *s);

/* svccount_check compares c with a recount of s: every service's counts,
 * every entry (a service removed while its tasks remain included) and the
 * DOWN nodes. Returns true when equal; else false with the first
 * difference in msg (size bytes). O(tasks). */
bool svccount_check(const struct svccount *c, const struct store *s, char *msg,
		    size_t size);

#endif
