/* scheduler: placement of pending tasks, as a pure function of the store.
 * The leader's scheduler loop (core/scheduler_loop.c) calls sched_run and
 * proposes the batch it fills; no clock, I/O or randomness here, and the
 * same store always gives the same batch. The store owns every object; a
 * plan (struct sched) borrows them, so the store must not change while a
 * plan lives.
 *
 * What it does, after SwarmKit's manager/scheduler:
 *   - pending task: desired RUNNING and status PENDING, spec read from its
 *     service (tasks whose service is missing are skipped);
 *   - filters, in this order (the first failing one names the node in the
 *     reason): node READY and ACTIVE; CPU and memory reservations fit what
 *     the node's tasks leave free; each placement constraint; max replicas
 *     per node;
 *   - ranking: the node with the fewest tasks of the service, then the
 *     fewest tasks overall, then the smallest id; with spread preferences,
 *     first the label value (branch) with the fewest tasks of the service,
 *     level by level, nodes missing the label forming a branch of their own;
 *   - a task pinned to a node (global services) is only checked there (one
 *     pinned to a node gone from the store is left to the orchestrator);
 *   - the pending tasks of one service form a group, placed in one pass over
 *     the nodes; the result equals placing them one at a time;
 *   - a task that fits nowhere stays PENDING with a reason such as "no
 *     suitable node (1 node not available for new tasks; 2 nodes lack
 *     memory)", written only when it changes;
 *   - order (SwarmKit's processPreassignedTasks, then tick): first the
 *     pinned tasks of every service (by service id, then node id), so that
 *     a global service's task is never short of room a replicated task took
 *     in the same pass; then the unpinned tasks, by service id, then task
 *     id;
 *   - bad-node avoidance (SwarmKit's nodeLess, scheduler.go): given the
 *     leader's failure history (struct sched_failures), a node where
 *     SCHED_FAILURES_MAX or more tasks of the same service and spec version
 *     failed within SCHED_FAILURES_WINDOW_MS ranks after every node with
 *     fewer, whatever its load (among such nodes, fewer failures first). It
 *     is a preference, not a filter: such a node still takes tasks when no
 *     other is eligible. Pinned tasks are not concerned.
 *
 * Cost: a run reads every task once through the store's iterators (about
 * 0.4 s at 1,000,000 tasks), then costs O(nodes) per group and
 * O(spread levels x log nodes) plus one batch copy per task.
 *
 * What a node's tasks hold (SwarmKit's nodeinfo.go): a task on a node with
 * status ASSIGNED..RUNNING holds its reservations whatever its desired
 * state (a task being stopped still runs until it stops); of those, the
 * ones desired RUNNING or less count for spread ("active"); max replicas
 * per node counts all of them (not terminal), so the cap holds at every
 * instant, also while a replaced task stops. */
#ifndef CS_SCHEDULER_H
#define CS_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/store.h"

/* The status message of a task the scheduler assigned. */
#define SCHED_MSG_ASSIGNED "scheduler assigned task to node"

/* The most a run's writes add to an encoded batch, so that the batch (the
 * run's writes and a proposal header) is one manager_write, which takes up
 * to LIMIT_FRAME_BYTES_MAX / 2. A placement adds about 80 bytes. */
#define SCHED_RUN_BYTES_MAX (LIMIT_FRAME_BYTES_MAX / 2 - 1024)

/* What one run (or one plan so far) did. */
struct sched_stats {
	size_t nodes_count;	  /* nodes in the store */
	size_t pending_count;	  /* pending tasks with a service */
	size_t skipped_count;	  /* pending tasks whose service is missing */
	size_t groups_count;	  /* services with pending tasks */
	size_t assigned_count;	  /* tasks written ASSIGNED */
	size_t unplaceable_count; /* tasks that fit nowhere (left PENDING) */
	size_t reasons_written;	  /* of those, reason updates written */
	bool more;		  /* stopped at a bound: work remains */
};

/* sched_run places what it can of the pending tasks of s, adding at most
 * writes_max (1..LIMIT_SCHED_TASKS_PER_RUN) task UPDATEs, of at most
 * SCHED_RUN_BYTES_MAX bytes encoded, to out (pass it empty): placed
 * tasks with node_id set and status ASSIGNED / SCHED_MSG_ASSIGNED, and
 * unplaceable tasks whose reason changed, still PENDING. now_ms, when not
 * 0, becomes the status timestamp of every write (else it is kept). s is
 * borrowed; out is the caller's (each add is a copy; the caller frees it
 * with store_batch_free, also after an error). stats, when not NULL,
 * receives the counts. Returns 0, CS_EINVAL (writes_max 0), CS_ELIMIT
 * (writes_max over the limit, or out without room), or CS_ENOMEM (out then
 * holds the writes made before, each a valid decision). */
int sched_run(const struct store *s, uint64_t now_ms, size_t writes_max,
	      struct store_batch *out, struct sched_stats *stats);

/* ---------------------------------------------------------------- failure history */

/* SwarmKit's maxFailures and monitorFailures (manager/scheduler). */
#define SCHED_FAILURES_MAX	 5u
#define SCHED_FAILURES_WINDOW_MS (5u * 60u * 1000u)

/* The leader's memory of recent task failures, per (service, spec version,
 * node): what SwarmKit keeps in its nodeInfo.recentFailures. It is not in
 * the store: a new leader starts with none, as SwarmKit's scheduler does
 * (its node set is rebuilt from the store when it starts). Owned by the
 * scheduler loop; a plan borrows it. */
struct sched_failures;

/* sched_failures_new returns an empty history in *out (freed with
 * sched_failures_free). Returns 0 or CS_ENOMEM. */
int sched_failures_new(struct sched_failures **out);

/* sched_failures_free frees f (NULL is fine). */
void sched_failures_free(struct sched_failures *f);

/* sched_failures_add records a failure at now_ms of a task of service
 * service_id at spec version spec_version on node node_id, and forgets
 * what is older than the window (now_ms should not go back). Returns 0,
 * CS_ENOMEM, or CS_ELIMIT when the history holds
 * LIMIT_SCHED_FAILURES_KEPT failures within the window (nothing recorded:
 * the caller says so). */
int sched_failures_add(struct sched_failures *f, uint64_t node_id, uint64_t service_id,
		       uint64_t spec_version, uint64_t now_ms);

/* sched_failures_count returns how many failures of (service_id,
 * spec_version) on node_id f holds within SCHED_FAILURES_WINDOW_MS before
 * now_ms (SwarmKit's countRecentFailures: one exactly a window old still
 * counts). f may be NULL (none). */
size_t sched_failures_count(const struct sched_failures *f, uint64_t node_id,
			    uint64_t service_id, uint64_t spec_version, uint64_t now_ms);

/* sched_failures_total returns how many failures f holds (expired ones
 * included until the next add forgets them). */
size_t sched_failures_total(const struct sched_failures *f);

/* sched_task_is_failure says whether a task's change from old to new is a
 * failure the scheduler records (SwarmKit's updateTask): new is FAILED or
 * REJECTED, on a node, and old (not NULL) was a live task in another state
 * (PENDING..RUNNING). Pinned tasks (global services': svc NULL or global)
 * are not recorded: the scheduler does not choose their node. */
bool sched_task_is_failure(const Cs__Task *old, const Cs__Task *new_task,
			   const Cs__Service *svc);

/* sched_run_with is sched_run with the leader's failure history f
 * (borrowed for the call; NULL: none), counted as of now_ms. */
int sched_run_with(const struct store *s, uint64_t now_ms, const struct sched_failures *f,
		   size_t writes_max, struct store_batch *out, struct sched_stats *stats);

/* ---------------------------------------------------------------- plans */

/* A plan is sched_run cut in steps, for callers that place more than one
 * batch from one store state (the benchmark) or time each group: sched_new
 * reads the store once (nodes, services, what each node's tasks hold, the
 * pending tasks); each sched_step places one group (or the rest of it).
 * Decisions already written are part of the plan's state, so a plan's
 * batches, applied in order, give the same result as sched_run repeated
 * with each batch applied between runs. */
struct sched;

enum sched_step_result {
	SCHED_STEP_DONE = 0,  /* nothing left: no write made */
	SCHED_STEP_GROUP = 1, /* one group finished */
	SCHED_STEP_FULL = 2,  /* out of writes or bytes: the group goes on next step */
};

/* sched_new reads s (borrowed until sched_free; s must not change
 * meanwhile) into a new plan *out, freed with sched_free. Returns 0,
 * CS_ENOMEM or CS_ELIMIT (more tasks or nodes than 32-bit indexes hold). */
int sched_new(const struct store *s, uint64_t now_ms, struct sched **out);

/* sched_new_with is sched_new with a failure history f (borrowed until
 * sched_free; NULL: none; must not change meanwhile). */
int sched_new_with(const struct store *s, uint64_t now_ms, const struct sched_failures *f,
		   struct sched **out);

/* sched_step places the current group, adding at most writes_max writes
 * (1..LIMIT_SCHED_TASKS_PER_RUN, and within the room LIMIT_STORE_BATCH_ACTIONS
 * leaves in out). bytes_left, when not NULL, is the room left for their
 * encoding: each write takes an upper bound of its size off it, and one that
 * does not fit ends the step (SCHED_STEP_FULL). Returns an enum
 * sched_step_result, or CS_EINVAL / CS_ELIMIT (bad writes_max) / CS_ENOMEM,
 * after which the plan is spent (only sched_free and sched_get_stats
 * remain). */
int sched_step(struct sched *p, struct store_batch *out, size_t writes_max,
	       size_t *bytes_left);

/* sched_get_stats copies the plan's counts so far into *st. */
void sched_get_stats(const struct sched *p, struct sched_stats *st);

/* sched_free releases p (NULL is fine). */
void sched_free(struct sched *p);

/* ---------------------------------------------------------------- the loop's plan */

/* sched_pass is sched_run_with for a loop that writes one batch at a time
 * and keeps the plan between batches: with *plan NULL it reads s into a
 * new plan; with a plan from the last pass it goes on with it (the clock
 * moved to now_ms), which saves reading the whole store again for every
 * batch of a large placement. The caller passes a plan on only when every
 * change s saw since the last pass was one sched_survives accepted, and
 * after the last pass's writes were applied (or lost: then it frees the
 * plan). On return *plan is the plan to go on with when this pass wrote
 * something (work may remain: stats->more), else NULL (freed). A plan kept
 * with nothing left saves the read of the pass its own writes call for:
 * passed on, it writes nothing and counts what a new read would (pending
 * and unplaceable tasks, groups) unless a task came into the store since
 * its read (sched_survives noted it), when it is freed and a new one read;
 * so is a plan of another store or failure history. stats, when not NULL,
 * receives the plan's counts, with assigned_count and reasons_written of
 * this pass alone. Returns as sched_run_with (after an error *plan is
 * NULL). */
int sched_pass(struct sched **plan, const struct store *s, uint64_t now_ms,
	       const struct sched_failures *f, size_t writes_max, struct store_batch *out,
	       struct sched_stats *stats);

/* sched_survives says whether plan p may go on after the store change ev
 * (a store watch's event): its own writes landing as written, a new task
 * (left to a later plan), a task moving along on its node (ASSIGNED to
 * RUNNING, most of the traffic of a large rollout) or one the plan never
 * counted. Any change to a node or service (the plan points at them), to
 * a pending task the plan may still place, or to what a node's tasks hold
 * (resources, tasks active for spread) ends it. A new task is noted in p:
 * a plan with nothing left then no longer stands for a read (sched_pass). */
bool sched_survives(struct sched *p, const struct store_event *ev);

/* ---------------------------------------------------------------- constraints */

/* sched_constraint_is_valid says whether text is a constraint the
 * scheduler understands: node.id, node.hostname, node.role,
 * node.labels.KEY, node.platform.os, node.platform.arch, engine.labels.KEY
 * or node.ip (keys and their prefixes in any case), then == or !=, then a
 * value (spaces around key and value ignored; no =, !, < or > in the
 * value; node.id's value 1 to 16 hex digits; node.ip's an IPv4 or IPv6
 * address or CIDR block, as SwarmKit's manager/constraint, which matches
 * the node's address as the manager sees it). Values compare without case;
 * a node without the label, platform or address fails == and passes !=.
 * The scheduler treats any other constraint as failing on every node, so
 * that such a task stays pending with a reason naming it. */
bool sched_constraint_is_valid(const char *text);

/* sched_ip_is_valid says whether text[0..len) is an IPv4 or IPv6 address
 * (what node.ip compares: the dispatcher records only such an address). */
bool sched_ip_is_valid(const char *text, size_t len);

/* sched_node_satisfies says whether node n passes every placement
 * constraint of svc (constraints only: not readiness or resources). The
 * global orchestrator and the simulator's invariant 4 ask it. */
bool sched_node_satisfies(const Cs__Service *svc, const Cs__Node *n);

#endif
