/* agent: the worker side of every node (SwarmKit's agent, worker and task
 * managers in one module). It keeps a list of managers and a session with
 * the leader's dispatcher (following redirects, reconnecting with backoff
 * and jitter), heartbeats, applies its assignments, and drives one
 * controller per task through the executor: ACCEPTED, PREPARING, READY,
 * STARTING, RUNNING, then COMPLETE / FAILED / SHUTDOWN / REJECTED, each
 * change reported until acknowledged. Assignments and each task's last
 * state live in the node's sqlite storage "agent"; a restarted agent adopts
 * the containers the executor still runs and never starts a task twice
 * (STARTING is on disk before the start is asked). Tasks keep running while
 * no manager is reachable.
 *
 * Error paths (issue 12): no task saved before a restart is stepped before
 * the executor's list of containers has come back (asked again with
 * backoff while it fails; a task new to this process goes on, and with no
 * Docker ends REJECTED with Docker's words); a
 * failed wait, stop or remove is asked again with a backoff (core/limits.h
 * LIMIT_AGENT_RETRY_MS_*), a wait after an inspect, a stop escalated to a
 * kill after LIMIT_AGENT_STOP_TRIES; SHUTDOWN is reported only once the
 * stop succeeded, and a task is forgotten only once its container's
 * removal succeeded. A container the list shows (by its cswarm.* labels)
 * that no known task owns is stopped and removed once the first whole full
 * set of assignments does not name it. A full set may come in parts
 * (Assignments.more); status updates are split under the frame limit. A
 * failed durable write is fatal (env exit) before anything it decided
 * leaves the agent.
 *
 * Owned by the node program; single-threaded; timers and messages only. */
#ifndef CS_AGENT_H
#define CS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"

struct agent_cfg {
	const char *hostname;
	Cs__NodeRole role;
	uint64_t millicpus;
	uint64_t memory_bytes;
	const char *const *managers; /* addresses to try first */
	size_t manager_count;
	const char *join_token; /* shown to the CA while the node has no
				   certificate (SWMTKN-1-...) */
	uint64_t raft_id;	/* unused: a manager's raft id is its node id */
	/* The cluster wants this node to have another role (after a promote
	 * or demote): the host restarts the node's daemon as that role. Called
	 * on the answer that says so, at most once per distinct role. NULL:
	 * ignored. */
	void (*on_role)(void *data, Cs__NodeRole desired);
	/* The cluster refused this node (a wrong join token): why, for the
	 * operator. The agent stops trying. NULL: logged only. */
	void (*on_refused)(void *data, const char *why);
	void *hook_data;
	/* appended (issue 13): a new certificate was installed (joined,
	 * renewed, another role); id is borrowed. NULL: nothing. */
	void (*on_identity)(void *data, const struct env_identity *id);
	void *identity_data;
	/* appended (issue 14): what the node says of itself for placement,
	 * sent with each new session; borrowed for the agent's life; NULL:
	 * nothing. */
	const struct agent_desc *desc;
	/* appended (issue 15): true when this node cannot realise a task's
	 * network attachments (no overlay data plane: issue 17; swarmd today).
	 * Such a task is REJECTED before anything is asked of the executor,
	 * with why ("cannot attach to network N (ADDR): no overlay data plane
	 * on this node"), as SwarmKit's executor fails Prepare when it cannot
	 * create a task's networks; never run without its network. false: the
	 * executor realises them (the simulator models them so).
	 * Issue 17: with it false and the env's net_set/net_remove present,
	 * the agent declares each network its tasks attach to (the managers'
	 * NetworkState) before PREPARE, again when the state changes, and
	 * removes it after its last task there; a task waits in ACCEPTED for
	 * its networks' state, and is REJECTED with the env's words when
	 * net_set refuses it. An env without net_set is treated as true. */
	bool no_data_plane;
};

/* A node's description (SwarmKit's NodeDescription): node.platform.os,
 * node.platform.arch, engine.labels.KEY and node.ip constraints read it. */
struct agent_desc {
	const char *platform_os;   /* "linux"; NULL: unknown */
	const char *platform_arch; /* "x86_64"; NULL: unknown */
	const char *addr;	   /* its IP address; the manager's view wins */
	Cs__Label **engine_labels; /* its Docker daemon's labels */
	size_t engine_label_count;
};

struct agent;

/* agent_start starts an agent on env (borrows cfg for its life). Returns 0
 * and *out, or CS_ENOMEM / CS_ESTORAGE / CS_ECORRUPT (a state file it
 * cannot read: nothing is changed). */
int agent_start(struct env *env, const struct agent_cfg *cfg, struct agent **out);

/* agent_stop: the process dies; frees everything, no env calls. */
void agent_stop(struct agent *a);

struct metrics_buf;
/* agent_metrics writes the agent's metrics (its tasks by state, its
 * executor calls' latencies) for a scrape (core/metrics.h). */
void agent_metrics(const struct agent *a, struct metrics_buf *out);

/* agent_handle handles a frame meant for the agent (session, heartbeat and
 * certificate answers, assignments, status acks) from the sender `who`
 * proves: only a manager's certificate of this node's cluster is heard
 * (others are logged `msg="refused"` and change nothing). Returns false
 * when it is not one. wire is as cs__wire__unpack(NULL, ...) made it, and
 * the caller frees it with cs__wire__free_unpacked: the agent takes the
 * tasks of an assignments frame out of it (their slots left NULL). */
bool agent_handle(struct agent *a, const char *from, const struct env_identity *who,
		  Cs__Wire *wire);

/* agent_logs_handle handles Wire.log_request (issue 16): from a manager of
 * this node's cluster, the lines of the containers of the tasks it names,
 * read through env logs_read and sent back to `from` as one LogResponse
 * (at most LIMIT_LOG_BYTES_MAX of data; others are refused, logged).
 * Returns false when wire is not one. */
bool agent_logs_handle(struct agent *a, const char *from, const struct env_identity *who,
		       const Cs__Wire *wire);

/* agent_peer takes the env's peer notice (env_peer_cb) for addr: the
 * connection to the manager it is in session with (or connecting to) went
 * down. That session is taken as lost (a connect as unanswered) at once, as
 * SwarmKit's agent does when its stream breaks, rather than after
 * AGENT_SESSION_GRACE heartbeat periods: the next manager is tried after
 * the backoff. Notices of other addresses, and "up" notices, change
 * nothing. A hint only: without notices the heartbeat grace still tells. */
void agent_peer(struct agent *a, const char *addr, bool up);

/* Status, for tests and checks. */
uint64_t agent_node_id(const struct agent *a);
/* agent_saves: task rows this agent wrote to its database since it
 * started (one per task changed in a transaction, issue 18). */
uint64_t agent_saves(const struct agent *a);
/* agent_db_resets: how many times this agent found its task database
 * corrupt at start (a row that does not decode, or sqlite's
 * SQLITE_CORRUPT/SQLITE_NOTADB) and started clean (issue 19). */
uint64_t agent_db_resets(const struct agent *a);
bool agent_connected(const struct agent *a);
size_t agent_task_count(const struct agent *a);

#endif
