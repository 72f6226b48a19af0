/* taskrun: invariant 11, a task runs once. Keeps, for every task id, what
 * the cluster's real agents have reported of it, in the order they sent
 * their StatusUpdates (the world's send tap, so a link that reorders or
 * duplicates changes nothing): a task reported RUNNING, then some other
 * state, then RUNNING again was stopped and started a second time under
 * one id (a double start: SwarmKit never restarts a task, it replaces it).
 * The runner feeds it; it only observes. Ids are kept for the whole run,
 * O(1) memory per task id, found by open addressing (no iteration). */
#ifndef SIM_TASKRUN_H
#define SIM_TASKRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"

struct taskrun;

/* taskrun_new returns an empty record, or NULL when out of memory. */
struct taskrun *taskrun_new(void);
void taskrun_free(struct taskrun *tr);

/* taskrun_note records that the agent of node reported task_id in state.
 * Returns false the first time the invariant breaks (the message is kept
 * for taskrun_check); true otherwise, also when out of memory (the task is
 * then not followed and a flag says so). */
bool taskrun_note(struct taskrun *tr, uint32_t node, uint64_t task_id,
		  Cs__TaskState state);

/* taskrun_frame notes every task state of a frame node sent (data, len
 * borrowed), when it is a StatusUpdate; other frames cost one byte's
 * compare. Returns as taskrun_note, for the frame's first break. */
bool taskrun_frame(struct taskrun *tr, uint32_t node, const uint8_t *data, size_t len);

/* taskrun_check returns true while no task was reported RUNNING twice with
 * another state between; else false, with the first case in msg (names of
 * nodes as indexes: the caller adds names if it wants). */
bool taskrun_check(const struct taskrun *tr, char *msg, size_t size);

/* taskrun_broken returns the node index of the second RUNNING report and
 * the task id of the first break (false when none). For messages. */
bool taskrun_broken(const struct taskrun *tr, uint32_t *first_node, uint32_t *node,
		    uint64_t *task_id);

/* taskrun_count returns how many task ids are followed. */
size_t taskrun_count(const struct taskrun *tr);

#endif
