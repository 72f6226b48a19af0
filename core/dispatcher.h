/* dispatcher: the leader's side of the agents (SwarmKit's dispatcher).
 * Agents open sessions (new nodes get an id and a Node object), heartbeat at
 * the period it sets, receive their assignments as a full set then numbered
 * changes, and report task status, which it batches into store writes,
 * dropping stale reports (old session, or a state not ahead of the store's).
 * A node silent for 3 heartbeat periods is marked down.
 *
 * Started by the manager when it becomes leader, stopped when it stops
 * leading; owned by the manager. Single-threaded, timers and messages only. */
#ifndef CS_DISPATCHER_H
#define CS_DISPATCHER_H

#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"

struct manager;
struct store;
struct dispatcher;

/* dispatcher_start starts dispatching for manager m (the leader). Nodes the
 * store says are ready get three periods of grace to reconnect. Returns NULL
 * when out of memory. */
struct dispatcher *dispatcher_start(struct env *env, struct manager *m,
				    ms_t heartbeat_ms);

/* dispatcher_stop stops it (leadership lost, or the process dying when
 * dying is true: then no env call is made). Frees it now, or once its
 * writes in flight have answered. */
void dispatcher_stop(struct dispatcher *d, bool dying);

/* dispatcher_recv handles one agent frame from address `from` (borrowed):
 * a session request, heartbeat or status update, acting for the node who
 * (the sender's certificate) names, never for a node id the frame names: a
 * frame naming another node is refused (logged `msg="refused"`), and a
 * status report for a task not assigned to who's node changes nothing.
 * Returns true when the frame was for the dispatcher. */
bool dispatcher_recv(struct dispatcher *d, const char *from,
		     const struct env_identity *who, const Cs__Wire *wire);

/* dispatcher_on_write tells it about a committed change (the manager's
 * store watch) so that it streams assignments. */
struct store_event;
void dispatcher_on_event(struct dispatcher *d, const struct store_event *ev);

/* dispatcher_sessions returns the number of live sessions. */
size_t dispatcher_sessions(const struct dispatcher *d);

/* dispatcher_is_assigned says whether task t belongs in its node's
 * assignments: placed (ASSIGNED or later) and not yet to be removed. */
bool dispatcher_is_assigned(const Cs__Task *t);

#endif
