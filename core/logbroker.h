/* logbroker: service logs (issue 16, SwarmKit's log broker), a leader
 * component. A read names tasks with a cursor each; the broker asks each
 * task's node (LogRequest, over the agents' authenticated connections, at
 * the address the node's last session or heartbeat frame came from),
 * waits for the answers (at most LOGBROKER_WAIT_MS), merges the lines by
 * time and answers once with them and the cursors to read on with. It
 * keeps no log: nothing is written to the store, and a read's lines are
 * freed once answered. Runs on the leader because only the leader hears
 * the agents; a follower's reader reaches it through the control RPC's
 * forwarding, one read at a time (a follow is a sequence of reads). */
#ifndef CS_LOGBROKER_H
#define CS_LOGBROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/leader.h"

/* How long a read waits for its nodes; those silent by then count as
 * unanswered (their cursors stay). */
#define LOGBROKER_WAIT_MS 5000u
/* Reads in flight; over it a read answers CS_EAGAIN. */
#define LOGBROKER_READS_MAX 256u

extern const struct leader_component_ops logbroker_component;

struct logbroker;

/* One task to read: its cursor (after_ns 0: a first read). */
struct logbroker_task {
	uint64_t task_id;
	uint64_t service_id;
	uint64_t node_id;
	uint64_t after_ns;     /* stdout */
	uint64_t after_err_ns; /* stderr */
};

/* The answer of a read: resp (borrowed for the callback) has logs (by time,
 * then task), logs_next (one cursor per task asked, in the order asked)
 * and logs_unanswered; status 0 or a cs error. */
typedef void (*logbroker_cb)(void *data, const Cs__ControlResponse *resp);

/* logbroker_read reads the lines of tasks (n of them, at most
 * LIMIT_LOG_TASKS_MAX; borrowed for the call): after each cursor, or for a
 * first read those from since_ms (0: all), or the last tail of each task
 * (tail_set); none after until_ms (0: no bound). Returns 0 (cb runs exactly once, never inside this call), or
 * CS_ELIMIT / CS_EAGAIN / CS_ENOMEM (then cb never runs). */
int logbroker_read(struct logbroker *lb, const struct logbroker_task *tasks, size_t n,
		   uint64_t since_ms, uint64_t until_ms, uint64_t tail, bool tail_set,
		   logbroker_cb cb, void *data);

#endif
