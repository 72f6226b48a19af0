/* rebalancer: moves running tasks of the replicated services that opted in
 * (ServiceSpec.rebalance) so that their spread becomes the one the
 * scheduler would choose, when nodes join or recover or whenever it is
 * uneven (issue 20; SwarmKit's most-asked feature, its issue 310, which
 * SwarmKit never built: `docker service update --force` is its workaround,
 * a full restart of every task). A leader component (core/leader.h): it
 * reads the store and writes one batch at a time through the leader
 * context; the orchestrator and the scheduler do the rest.
 *
 * A move is stop-first: the rebalancer sets a running task's desired state
 * to SHUTDOWN ("rebalanced"); the orchestrator replaces it in its slot once
 * it is seen stopped, with no restart delay (a task the cluster stopped);
 * the scheduler places the replacement where its spread says. Which task
 * moves is chosen so that the scheduler's own choice for the replacement is
 * a better place: the rebalancer models the scheduler's ranking (fewest
 * tasks of the service per spread-preference branch, level by level, then
 * per node), and moves a task only when that strictly lowers the sum of
 * squared counts at the first level where source and destination differ
 * (the flat case: max - min >= 2 between the nodes). That sum goes down
 * with every move, so moves end, and a task is never moved to be moved
 * back. Should the scheduler still put a replacement back on the node it
 * left (a ranking the model does not see, such as bad-node avoidance), the
 * service is left alone until a node changes (counted in
 * cswarm_rebalance_frozen_total).
 *
 * Disruption budget (max-unavailable): at most K slots of the service
 * without a RUNNING task at once, moves included, K =
 * rebalance_parallelism, else the update parallelism, else 1; so never
 * fewer than replicas - K running. A move starts only once the update delay
 * has passed since the service's last move completed (its replacement
 * running), and not while an update or rollback runs, a task is outdated,
 * or the service has more tasks than replicas. Placement constraints,
 * resources, max replicas per node and host-mode ports are the scheduler's
 * filters, modelled here: a task is moved only towards a node that takes it.
 * Tasks on paused, drained, down or no longer fitting nodes are not this
 * component's (paused keeps them; the orchestrator moves the others). */
#ifndef CS_REBALANCER_H
#define CS_REBALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/limits.h"
#include "core/store.h"

struct leader_component_ops;

/* The rebalancer, a leader component (core/leader.h). */
extern const struct leader_component_ops rebalancer_component;

/* The status message of a task the rebalancer stopped. */
#define REBALANCER_MSG "rebalanced: moving to even out the spread"

/* Why a plan moves nothing although the service opted in. */
enum rebalancer_skip {
	REBALANCER_GO = 0,	  /* planned (maybe no move: balanced) */
	REBALANCER_SKIP_OFF,	  /* not opted in */
	REBALANCER_SKIP_MODE,	  /* global or job: nothing to spread */
	REBALANCER_SKIP_UPDATING, /* an update or rollback runs */
	REBALANCER_SKIP_SETTLING, /* outdated tasks, or more than replicas */
	REBALANCER_SKIP_LEVELS,	  /* more spread levels than modelled */
};

/* One planned move: task task_id (slot slot) stopped on from_node; the
 * scheduler is expected to place its replacement on to_node. */
struct rebalancer_move {
	uint64_t task_id;
	uint64_t slot;
	uint64_t from_node;
	uint64_t to_node;
};

/* What rebalancer_plan found for one service. */
struct rebalancer_plan {
	enum rebalancer_skip skip;
	size_t unavailable;	  /* slots 1..replicas without a RUNNING task */
	size_t budget;		  /* moves the budget allows now */
	uint64_t imbalance;	  /* max - min tasks per eligible node, now */
	uint64_t imbalance_after; /* the same once the moves are done (modelled) */
	size_t move_count;
	struct rebalancer_move moves[LIMIT_REBALANCE_MOVES_MAX];
};

/* rebalancer_parallelism returns K for spec: rebalance_parallelism, else
 * the update config's parallelism, else 1 (never 0: SwarmKit's update
 * parallelism 0 means all at once, which a move never is). Borrows spec. */
uint64_t rebalancer_parallelism(const Cs__ServiceSpec *spec);

/* rebalancer_plan decides, from store st alone, which tasks of service svc
 * to move now: at most moves_max (and the budget, and
 * LIMIT_REBALANCE_MOVES_MAX), into *out (the caller's; fully written).
 * An "eligible node" is READY, ACTIVE and meets the constraints. Pure: no
 * clock, no randomness; the same store gives the same plan. Borrows st and
 * svc. Returns 0 or CS_ENOMEM (*out then says no move). */
int rebalancer_plan(const struct store *st, const Cs__Service *svc, size_t moves_max,
		    struct rebalancer_plan *out);

/* rebalancer_imbalance returns max - min of the tasks of svc counted for
 * spread (ASSIGNED..RUNNING, desired RUNNING or less) per eligible node of
 * st (0 with none). Borrows both. Returns UINT64_MAX when out of memory. */
uint64_t rebalancer_imbalance(const struct store *st, const Cs__Service *svc);

#endif
