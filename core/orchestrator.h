/* orchestrator: keeps every service at its desired state (SwarmKit's
 * replicated and global orchestrators, restart supervisor and task reaper,
 * in one reconcile loop). Replicated services get one live task per slot
 * 1..N; global services one per eligible node. A task that ends is replaced
 * in its slot under the restart policy (condition, delay, max attempts in a
 * window); a task whose node is down is replaced at once — a node's death is
 * not the task's crash loop, so no restart delay. Finished tasks beyond the
 * history limit, and the tasks of removed services, are deleted.
 *
 * Leader only: the manager starts it on leadership and stops it on loss.
 * It reads the store and writes batches through the manager, one at a time. */
#ifndef CS_ORCHESTRATOR_H
#define CS_ORCHESTRATOR_H

#include <stdbool.h>

#include "core/env.h"

struct manager;
struct manager_cfg;
struct store_event;
struct orchestrator;

/* Returns NULL when out of memory. Borrows cfg (task history). */
struct orchestrator *orchestrator_start(struct env *env, struct manager *m,
					const struct manager_cfg *cfg);
void orchestrator_stop(struct orchestrator *o, bool dying);
void orchestrator_on_event(struct orchestrator *o, const struct store_event *ev);

/* orchestrator_is_terminal says whether a task state is final. */
bool orchestrator_is_terminal(int state);

#endif
