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

struct dispatcher;
struct leader_component_ops;

/* A new leader's grace for the nodes ready under the last one is three
 * heartbeat periods and this much more: their agents lost their session
 * (the old leader's connection closed, or three silent periods) and,
 * through an election without a leader, backed off up to 5 s between
 * tries of the managers they know: two such waits before they reach the
 * new one. Without it a live worker was marked down and its tasks run
 * twice (explore of scenarios/leader-killed-tasks-run.scn --swarm: 7 of
 * 100 seeds). */
#define DISPATCHER_NEW_LEADER_EXTRA_MS 10000u
/* The dispatcher, a leader component (core/leader.h): sessions,
 * heartbeats, assignments and status reports of every node's agent.
 * It sees the store, writes, the Raft group's addresses and the manager's
 * configuration (heartbeat period), nothing else of the manager.
 * - start: nodes the store says are ready get three periods of grace to
 *   reconnect;
 * - recv: one agent frame from address `from`: a session request,
 *   heartbeat or status update, acting for the node who (the sender's
 *   certificate) names, never for a node id the frame names: a frame
 *   naming another node is refused (logged `msg="refused"`), and a status
 *   report for a task not assigned to who's node changes nothing;
 * - on_event: committed changes, streamed to the nodes as assignments;
 * - stop: frees it now, or once its writes in flight have answered. */
extern const struct leader_component_ops dispatcher_component;

/* dispatcher_sessions returns the number of live sessions. */
size_t dispatcher_sessions(const struct dispatcher *d);

/* dispatcher_is_assigned says whether task t belongs in its node's
 * assignments: placed (ASSIGNED or later) and not yet to be removed. */
bool dispatcher_is_assigned(const Cs__Task *t);

/* dispatcher_net_part (issue 17) fills out with the next part of whole
 * (shallow: it points into whole) from endpoint *ep_index and service
 * *svc_index on: as many endpoints, then services, as fit in budget_bytes
 * (at least one each time, so that every part makes progress), with more
 * set when some are left; advances both indexes. Returns the part's packed
 * bytes of endpoints and services. The dispatcher sends a network state
 * larger than a frame this way; its parts repeat whole's other fields. */
size_t dispatcher_net_part(const Cs__NetworkState *whole, size_t budget_bytes,
			   size_t *ep_index, size_t *svc_index, Cs__NetworkState *out);

#endif
