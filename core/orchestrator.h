/* orchestrator: keeps every service at its desired state (SwarmKit's
 * replicated and global orchestrators, restart supervisor and task reaper,
 * in one reconcile loop). Replicated services get one live task per slot
 * 1..N; global services one per eligible node. A task that ends by itself
 * is replaced in its slot (or on its node) under the restart policy
 * (condition, delay, max attempts in a window, counted per spec version);
 * a task the cluster stopped (scaled down, drained, updated) is replaced
 * whatever the policy, and one
 * whose node is down at once — a node's death is not the task's crash
 * loop, so no restart delay. A place keeps the history limit's number of
 * tasks, its live one included (max attempts + 1 when the policy sets
 * them, as SwarmKit's task reaper); older finished ones, and the tasks of
 * removed services, are deleted. Rolling updates go by the update config,
 * rollbacks by the rollback config. The tasks of a node down for the
 * cluster's orphan delay (24 h) are marked ORPHANED.
 *
 * Leader only: the manager starts it on leadership and stops it on loss.
 * It reads the store and writes batches through the manager, one at a time. */
#ifndef CS_ORCHESTRATOR_H
#define CS_ORCHESTRATOR_H

#include <stdbool.h>

#include "core/env.h"
#include "core/store.h"

struct leader_component_ops;

/* The replicated and global services' orchestrator, a leader component
 * (core/leader.h): it sees the store, the manager's configuration (task
 * history) and writes, nothing else of the manager. */
extern const struct leader_component_ops orchestrator_component;

/* orchestrator_rollback_spec makes *out (a copy of svc) the rollback of
 * svc: its previous spec as a new spec version, the tasks of the version
 * it restores not outdated by it. svc must have a previous spec. Borrows
 * svc's specs. (An update's rollback failure action and a manual rollback,
 * core/control.c, both.) */
void orchestrator_rollback_spec(const Cs__Service *svc, Cs__Service *out);

/* orchestrator_is_terminal says whether a task state is final. */
bool orchestrator_is_terminal(int state);

/* orchestrator_node_is_down says whether node_id names a node that is
 * down or that st no longer has; false for 0 (a task not placed yet).
 * Borrows st. (The jobs orchestrator asks it too.) */
bool orchestrator_node_is_down(const struct store *st, uint64_t node_id);

/* orchestrator_batch_desired adds to b the update of a copy of t with
 * desired state `desired` and, unless t's state is already final, why
 * (when not NULL) as its status message. Borrows t and why until b is
 * encoded. Returns as store_batch_task. */
int orchestrator_batch_desired(struct store_batch *b, const Cs__Task *t,
			       Cs__TaskState desired, const char *why);

/* orchestrator_outdated says whether task t runs an older spec than svc's:
 * an older spec_version, unless a rollback restored that version's spec or
 * that version differs from the current one in placement only (then the
 * orchestrator replaces t only if its node no longer satisfies the
 * constraints, which this function, reading no node, does not say). */
bool orchestrator_outdated(const Cs__Service *svc, const Cs__Task *t);

/* orchestrator_gave_up says whether the restart policy of svc leaves one of
 * its places without a task for good: nothing in it is wanted running or
 * still stopping, and tasks of its last task's spec version ended by
 * themselves more often (within the window before that end) than the
 * policy restarts: an update starts the count over, as in SwarmKit. The place is slot
 * `slot` of a replicated service, or the node node_id of a global one.
 * What `converged` asks, so that it does not wait for what the policy
 * will never start. */
bool orchestrator_gave_up(const struct store *st, const Cs__Service *svc, uint64_t slot,
			  uint64_t node_id);

/* The restart policy's rules, for the jobs orchestrator (core/jobs.c), which
 * restarts its failed tasks as this one does:
 * orchestrator_may_restart says whether a place whose last task to end is
 * last (NULL: none yet) may get a new one after `restarts` restarts made
 * (a task stopped on request always may); orchestrator_restarts counts the
 * restarts among a place's finished tasks hist[0..n) (those of last_end's
 * spec version, within the policy's window before last_end ended);
 * orchestrator_restart_delay is the policy's delay. All borrow their
 * arguments. */
bool orchestrator_may_restart(const Cs__Service *svc, const Cs__Task *last,
			      size_t restarts);
size_t orchestrator_restarts(const Cs__Service *svc, const Cs__Task *const *hist,
			     size_t n, const Cs__Task *last_end);
ms_t orchestrator_restart_delay(const Cs__Service *svc);

#endif
