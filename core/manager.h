/* manager: one manager process — libraft over raftio, the store as its FSM,
 * writes proposed through Raft (forwarded to the leader by followers), and
 * (later) the leader-only components started and stopped with leadership.
 * Runs as a program on an env (env_program_ops) in both worlds. Owns its
 * raft, raftio and store; readers borrow them. */
#ifndef CS_MANAGER_H
#define CS_MANAGER_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/store.h"

/* A voter of the initial configuration. */
struct manager_peer {
	uint64_t raft_id;
	const char *addr;
};

/* Called on every entry applied, in log order (for checkers). */
typedef void (*manager_apply_hook)(void *data, struct env *env, uint64_t index,
				   const uint8_t *buf, size_t len);

struct manager_cfg {
	uint64_t raft_id;		   /* > 0, unique in the cluster */
	const struct manager_peer *voters; /* initial voters (bootstrap) */
	size_t voter_count;
	ms_t tick_ms;		    /* raft heartbeat tick (1 s) */
	unsigned election_ticks;    /* election after N ticks (10) */
	unsigned snapshot_every;    /* entries between snapshots */
	unsigned snapshot_trailing; /* entries kept behind one */
	ms_t write_timeout_ms;	    /* a write not applied by then fails */
	const char *const
		*join_addrs; /* managers to ask when joining (no voters given) */
	size_t join_count;
	ms_t heartbeat_ms;     /* dispatcher heartbeat period (5 s) */
	uint64_t task_history; /* finished tasks kept per slot (5) */
	manager_apply_hook on_apply;
	void *hook_data;
	/* appended: join tokens. The first leader writes these into the
	 * cluster record (NULL: random ones); a joiner shows join_token. */
	const char *worker_token;
	const char *manager_token;
	const char *join_token;
	/* A joiner refused (a wrong token): why, for the operator; the
	 * manager stops asking. NULL: logged only. */
	void (*on_refused)(void *data, const char *why);
	void *refused_data;
	/* appended (issue 13): the cluster's root CA and id, for managers that
	 * start together (the simulator's, tests'): each gives itself a
	 * certificate from it at its first start, and the first leader keeps
	 * it in the cluster record. Empty: the first leader makes one. */
	struct env_blob ca_cert, ca_key;
	uint64_t cluster_id;
	/* the node certificates' life a new cluster starts with (0: 90 days;
	 * `cluster update --cert-expiry` changes it later) */
	uint64_t cert_expiry_ms;
	/* the unlock key, when autolock is on and it was given at start
	 * (swarmd --unlock-key-file); NULL: the manager waits locked for
	 * manager_unlock */
	const char *unlock_key;
	/* appended (issue 15): the default address pool a new cluster starts
	 * with (ClusterSettings; 0: SwarmKit's 10.0.0.0/8 in /24s): swarmd
	 * --default-addr-pool and --default-addr-pool-mask-len, validated */
	uint32_t default_addr_pool, default_addr_pool_len, default_subnet_len;
	/* appended (issue 20): swarmd --force-new-cluster. At this start, a
	 * manager whose log holds a cluster forces a new Raft configuration of
	 * itself alone (raft_recover) before Raft starts: it keeps the store,
	 * leads alone, and other managers join again with the token. Read at
	 * manager_open only. */
	bool force_new_cluster;
	/* appended (issue 20): swarmd --restore. A manager that starts a new
	 * cluster (voters given) on an empty log seeds it with this store
	 * (store_snapshot's encoding, borrowed; from a backup, core/backup.h)
	 * at restore_index and restore_term instead of bootstrapping an empty
	 * one: it leads a new cluster, of the voters given, holding that
	 * store. On a log that is not empty, nothing is seeded (a restart). */
	const uint8_t *restore_store;
	size_t restore_store_len;
	uint64_t restore_index, restore_term;
};

struct manager;

/* manager_program runs a manager alone on a node (tests); node_program
 * (core/node.c) runs a manager beside the node's agent. */
extern const struct env_program_ops manager_program;

/* manager_open starts a manager on env without taking the env's receive
 * callback (the caller passes frames to manager_handle). Returns 0 and *out,
 * or CS_ENOMEM / CS_ESTORAGE / CS_EVERSION. */
int manager_open(struct env *env, const struct manager_cfg *cfg, struct manager **out);

/* manager_close: the process dies; frees everything, no env calls. */
void manager_close(struct manager *m);

/* manager_defaults fills cfg with DESIGN.md's timings. */
void manager_defaults(struct manager_cfg *cfg);

/* manager_handle handles one decoded frame for the manager (Raft, writes,
 * joins, agents' sessions, certificate requests) from the sender `who`
 * proves (env.h's sender()): what `who` may not say is refused (logged
 * `msg="refused"`) and changes nothing. Returns false when the frame is not
 * the manager's. The node program calls it; manager_program too. */
bool manager_handle(struct manager *m, const char *from, const struct env_identity *who,
		    const Cs__Wire *wire);

/* ---------------------------------------------------------------- status */

bool manager_is_leader(const struct manager *m);
/* manager_serves: this manager leads and has applied an entry of its own
 * term (so every earlier one): what the control API and the leader
 * components wait for. */
bool manager_serves(const struct manager *m);
uint64_t manager_term(const struct manager *m);
uint64_t manager_raft_id(const struct manager *m);
/* manager_leader returns the raft id this manager follows (0: none). */
uint64_t manager_leader(const struct manager *m);
uint64_t manager_applied(const struct manager *m);
/* manager_leader_addr returns the address of the leader this manager
 * follows (itself when leading), or NULL when it knows none. Borrowed: valid
 * until the next event. */
const char *manager_leader_addr(const struct manager *m);
/* manager_log_refusal logs that a frame `what` from `from` (who its
 * certificate proves) was refused and why: `msg="refused"`, at most 10
 * lines a second (the rest counted in the next line's `unlogged=`). */
void manager_log_refusal(struct manager *m, const char *what, const char *from,
			 const struct env_identity *who, const char *why);

/* Autolock (issue 13): a manager whose Raft keys are sealed with the
 * cluster's unlock key opens locked: no Raft, no leader components, until
 * manager_unlock. manager_unlock returns 0 (unlocked and started, or was
 * not locked), CS_EAUTH (a wrong key: still locked, logged), CS_EINVAL (not
 * an unlock key). */
bool manager_locked(const struct manager *m);
int manager_unlock(struct manager *m, const char *unlock_key);

/* manager_cluster_id: the cluster's id (0 before its record exists). */
uint64_t manager_cluster_id(const struct manager *m);

/* manager_set_node_id tells the manager its node's id (known to the agent
 * once registered): a promoted node joins Raft by it instead of a token. */
void manager_set_node_id(struct manager *m, uint64_t node_id);
/* manager_env returns the env the manager runs on. */
struct env *manager_env(const struct manager *m);
/* manager_last_write_id returns the id of the last write this manager
 * forwarded to its leader (or the random start of this process's ids, when
 * none yet): for tests and logs. */
uint64_t manager_last_write_id(const struct manager *m);
/* manager_random returns 64 random bits from the manager's env (new ids). */
uint64_t manager_random(struct manager *m);
const struct store *manager_store(const struct manager *m);
/* manager_events: this manager's event stream (core/events.h), kept from
 * what it applies; owned by the manager. */
struct events;
struct events *manager_events(const struct manager *m);
/* manager_voters fills ids with up to max voter ids of the configuration
 * this manager knows; returns how many there are. */
size_t manager_voters(const struct manager *m, uint64_t *ids, size_t max);

/* ---------------------------------------------------------------- writes */

/* status: 0 (committed and applied here), CS_ENOTLEADER, CS_ENOQUORUM
 * (not committed within the write timeout), CS_EVERSION / CS_EEXIST /
 * CS_ENOENT (the batch was refused by the FSM). */
typedef void (*manager_write_cb)(void *data, int status);

/* manager_write proposes batch (encoded with store_batch_encode; copied).
 * On a follower it is forwarded to the leader. cb runs exactly once, never
 * inside this call. Returns 0, or CS_ENOMEM / CS_ELIMIT (then no cb). */
int manager_write(struct manager *m, const uint8_t *batch, size_t len,
		  manager_write_cb cb, void *data);

/* ---------------------------------------------------------------- membership */

/* manager_member_addrs fills addrs with up to max addresses of the Raft
 * group's members this manager knows (borrowed: valid until the next
 * event); returns how many there are. */
size_t manager_member_addrs(const struct manager *m, const char **addrs, size_t max);

/* manager_member_addr: the address the Raft configuration this manager
 * knows has for member id, or NULL when id is not a member. Borrowed. */
const char *manager_member_addr(const struct manager *m, uint64_t id);

/* manager_is_voter returns whether this manager sees itself as a voter. */
bool manager_is_voter(const struct manager *m);

struct metrics_buf;
/* manager_metrics writes this manager's metrics (Raft, its store, and its
 * leader components' while it leads) for a scrape (core/metrics.h). */
void manager_metrics(const struct manager *m, struct metrics_buf *out);
/* manager_component: the running state of leader component ops (NULL
 * when this manager does not lead, or the component did not start). For
 * the control RPC's service logs (issue 16): the log broker. */
struct leader_component_ops;
void *manager_component(struct manager *m, const struct leader_component_ops *ops);

#endif
