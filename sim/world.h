/* world: the simulator kernel. One world holds virtual time, the one event
 * queue, the simulated nodes (each with its env), the network between them
 * and their disks. Events at the same instant run in the order they were
 * scheduled (a global sequence number), so the order is total and a seed
 * replays exactly. Every event delivered is folded into the trace hash.
 *
 * The world owns nodes, messages, timers and disks. Programs (the manager
 * and agent, or test programs) run on nodes through their env and own only
 * their own state. Single-threaded; no globals. */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"
#include "core/pki.h"
#include "sim/rng.h"

typedef uint64_t us_t; /* virtual microseconds since the world began */

struct world;
struct sim_node;
struct simexec;

/* Event kinds, as they appear in traces. Appended, never renumbered. */
enum sim_ev_kind {
	SIM_EV_TIMER = 1,   /* a node's timer fired */
	SIM_EV_MSG = 2,	    /* a message delivered */
	SIM_EV_PEER = 3,    /* a peer up/down notice delivered */
	SIM_EV_CALL = 4,    /* a deferred call (executor, runner) */
	SIM_EV_DROP = 5,    /* traced only: a message lost (loss, partition, dead peer) */
	SIM_EV_NODE_UP = 6, /* traced only: a node's process started */
	SIM_EV_NODE_DOWN = 7, /* traced only: a node killed */
	SIM_EV_FAULT = 8,     /* traced only: a network fault changed */
	SIM_EV_SEND = 9,      /* traced only: a message sent */
};

/* One link rule (a directed fault on src -> dst). */
struct sim_link_rule {
	uint32_t src, dst;
	uint32_t loss_ppm;
	uint32_t dup_ppm;
	uint32_t reorder_ppm;
	bool has_delay;
	us_t delay_min_us, delay_max_us;
	us_t last_due_us; /* the world's: FIFO on jittery links; callers give 0 */
};

/* One partition: each node's group (0 = not in this partition). Nodes that
 * join later fall into the star group, if the partition has one. */
struct sim_partition {
	uint32_t *group_of; /* by node index; grows with nodes */
	size_t group_of_count;
	uint32_t star_group; /* 0: none */
};

/* The record of one delivered event, kept when recording is on (for the
 * determinism check: it names the first event where two runs differ). */
struct sim_trace_rec {
	us_t at_us;
	uint32_t node;
	uint32_t kind;
	uint64_t hash; /* the trace hash after this event */
};

/* Called for every traced event when set (JSONL traces, reports). `a` and `b`
 * are kind-specific details (peer index, length, timer id...). */
typedef void (*world_trace_fn)(void *ctx, const struct world *w, us_t at_us,
			       uint32_t node, enum sim_ev_kind kind, uint64_t a,
			       uint64_t b);

/* Every message delivered, just before its receiver's callback (borrowed for
 * the call): for the scenario runner, which reads what an attacker on the
 * path would (a session id). A tap reads and never changes the world. */
typedef void (*world_tap_fn)(void *ctx, const struct world *w, uint32_t src, uint32_t dst,
			     const uint8_t *data, size_t len);

/* Log lines of programs, with the node and virtual time. */
typedef void (*world_log_fn)(void *ctx, const struct world *w, uint32_t node,
			     enum env_log_level level, const char *msg);

/* ---------------------------------------------------------------- lifecycle */

/* world_new returns a new empty world at time 0 for seed, or NULL when out of
 * memory or sqlite refuses the simulated disk. Free with world_free. */
struct world *world_new(uint64_t seed);

/* world_free kills every node and frees everything the world owns. */
void world_free(struct world *w);

uint64_t world_seed(const struct world *w);
us_t world_now_us(const struct world *w);
uint64_t world_events(const struct world *w); /* events delivered */
uint64_t world_hash(const struct world *w);   /* trace hash so far */
size_t world_pending(const struct world *w);  /* events queued */

void world_set_trace(struct world *w, world_trace_fn fn, void *ctx);
void world_set_log(struct world *w, world_log_fn fn, void *ctx);
void world_set_tap(struct world *w, world_tap_fn fn, void *ctx);
/* world_set_send_tap: fn is called for every frame a node sends, as it
 * leaves the node (before the network loses, delays, duplicates or
 * reorders it): what each sender said, in the order it said it. Reads
 * only, like the delivery tap. */
void world_set_send_tap(struct world *w, world_tap_fn fn, void *ctx);

/* world_record turns on keeping one sim_trace_rec per delivered event.
 * world_records returns them (borrowed; valid until the next event). */
void world_record(struct world *w, bool on);
const struct sim_trace_rec *world_records(const struct world *w, size_t *count);

/* ---------------------------------------------------------------- nodes */

/* world_node_add adds a node named `name` (copied; unique, at most
 * LIMIT_ADDR_BYTES_MAX-1 bytes), which runs `prog` with cfg (borrowed for the
 * world's life) when started. The node starts down. Returns its index (0,
 * 1, 2... in order of addition) in *index, or CS_EEXIST / CS_ELIMIT /
 * CS_ENOMEM. prog may be NULL: the node runs nothing. */
int world_node_add(struct world *w, const char *name, const struct env_program_ops *prog,
		   const void *cfg, uint32_t *index);

size_t world_node_count(const struct world *w);

/* world_node_set_program changes what a node runs from its next start (a
 * demoted manager comes back as a worker). */
void world_node_set_program(struct world *w, uint32_t node,
			    const struct env_program_ops *prog, const void *cfg);

/* world_node_find returns the index of node `name`, or -1. */
int64_t world_node_find(const struct world *w, const char *name);

const char *world_node_name(const struct world *w, uint32_t node);
bool world_node_is_up(const struct world *w, uint32_t node);
uint32_t world_node_incarnation(const struct world *w, uint32_t node);

/* world_node_state returns the program state of a running node (NULL when
 * down or with no program): for conditions and invariant checkers. */
void *world_node_state(const struct world *w, uint32_t node);

/* world_node_set_ip: the IP address the node's connections come from, as
 * its receivers' sender() gives it (env_identity.peer_ip); "" (the default)
 * for none, as the simulator's addresses are names. ip is copied (< 48
 * bytes). */
void world_node_set_ip(struct world *w, uint32_t node, const char *ip);

/* world_node_env returns the node's env (valid while the world lives). */
struct env *world_node_env(struct world *w, uint32_t node);

/* world_node_start starts the node's process: a new incarnation, its program
 * started on its env. Returns 0, CS_EEXIST when it is already up, or the
 * program's error (the node then stays down). */
int world_node_start(struct world *w, uint32_t node);

/* world_node_kill kills the node's process: its program stops, its timers,
 * connections, in-flight messages and storage handles vanish (connected
 * peers get a down notice after the link's latency); its disk stays.
 * Its executor controllers and pending requests go too (no callbacks).
 * machine=true is a machine crash: its containers die too (see simexec);
 * otherwise they keep running. With lose_unsynced the disk loses what was
 * written but not synced. Returns 0 or CS_ENOENT when the node is already
 * down (then nothing happens: a machine crash of a node whose process is
 * already dead is simexec_node_died(world_exec(w), node, true)). */
int world_node_kill(struct world *w, uint32_t node, bool machine, bool lose_unsynced);

/* The `a` of a node-down event: why the node went down. */
#define WORLD_DOWN_PROCESS 0u /* its process was killed (kill NODE process) */
#define WORLD_DOWN_MACHINE 1u /* its machine crashed (kill NODE) */
#define WORLD_DOWN_EXIT	   2u /* its program exited (env exit): a process death */

/* world_node_up_since returns when the node's process last started (0 when
 * it never did). */
us_t world_node_up_since(const struct world *w, uint32_t node);

/* world_disk_fault sets the disk faults of node (SIMVFS_FAULT_* bits, see
 * sim/simdisk.h) until until_us (UINT64_MAX: until changed); faults 0 ends
 * them now. Returns 0, CS_EINVAL or CS_ENOMEM. world_disk_faulted says
 * whether one holds now; world_disk_healthy_from when the last one ended
 * or ends (0: never; UINT64_MAX: no end set). */
int world_disk_fault(struct world *w, uint32_t node, uint32_t faults, us_t until_us);
bool world_disk_faulted(const struct world *w, uint32_t node);
/* world_disk_corrupt flips a bit in each of `pages` drawn pages of node's
 * file `file` (NULL: drawn files), of its b-tree `table` if not NULL, see
 * simvfs_corrupt; *flipped says how many. Returns 0 or CS_ENOMEM. */
int world_disk_corrupt(struct world *w, uint32_t node, const char *file,
		       const char *table, uint32_t pages, uint32_t *flipped);
/* world_disk_faults_until: a time from which no disk is faulted, until a
 * new fault (the latest end of any disk fault so far; 0 when none). */
us_t world_disk_faults_until(const struct world *w);
/* world_incarnations counts every node's starts and kills: it changes
 * whenever any node goes up or down. */
uint64_t world_incarnations(const struct world *w);
us_t world_disk_healthy_from(const struct world *w, uint32_t node);

/* ---------------------------------------------------------------- network */

/* Default one-way latency: every link without a delay rule gets a fixed
 * latency of its own in [min, max] (1..3 ms unless set). */
void world_net_set_delay(struct world *w, us_t min_us, us_t max_us);

/* world_net_link sets the rule for src -> dst (replacing an earlier one).
 * Returns 0, CS_ELIMIT or CS_ENOMEM. */
int world_net_link(struct world *w, const struct sim_link_rule *rule);

/* world_net_partition adds a partition. group_of[i] is node i's group (0 for
 * none) for i < count; star_group (0 for none) takes every node with no
 * group, including nodes added later. Messages between two nodes in
 * different groups of any partition are dropped, in flight ones too.
 * Returns 0, CS_ELIMIT or CS_ENOMEM. */
int world_net_partition(struct world *w, const uint32_t *group_of, size_t count,
			uint32_t star_group);

/* world_net_heal removes every partition and link rule. */
void world_net_heal(struct world *w);

/* world_net_blocked returns whether a partition separates a and b. */
bool world_net_blocked(const struct world *w, uint32_t a, uint32_t b);
/* world_net_cut returns whether a and b cannot talk: a partition, or a
 * link that loses every message one way or the other. */
bool world_net_cut(const struct world *w, uint32_t a, uint32_t b);

/* Counters of the network, for tests and reports. */
struct sim_net_stats {
	uint64_t sent;
	uint64_t delivered;
	uint64_t dropped_loss;
	uint64_t dropped_partition;
	uint64_t dropped_down;
	uint64_t duplicated;
	uint64_t dropped_auth; /* the sender's TLS check refused the receiver */
};
void world_net_stats(const struct world *w, struct sim_net_stats *stats);

/* ---------------------------------------------------------------- identity
 *
 * env.h's identity ops on simulated certificates (core/pki.c's X.509,
 * Ed25519): keys come from each node's own key stream of the seed,
 * certificate times are 2026-01-01T00:00:00Z plus virtual time, serials
 * count up, so a seed replays the same bytes. A node's key, certificate,
 * roots and pin are its durable state (a kill, a restart keep them);
 * pki_install fails with CS_ESTORAGE while its disk is faulted. A message
 * carries the credentials its sender held when it sent; env sender() is
 * what they prove to the receiver at delivery (its roots, or its pin: a
 * root of that digest among the sender's roots stands for the chain the
 * sender would present), at the delivery's virtual time. A sender with
 * roots or a pin drops, at send (a SIM_EV_DROP with b = 6), what it sends
 * to a node whose certificate does not chain to them; one with neither
 * sends to anyone. */

/* world_pki_provision: node starts with the key of seed, certificate cert
 * and roots (1 or 2, DER), as if it had joined earlier (borrowed; copied).
 * Returns 0, CS_EINVAL, CS_EAUTH (cert is not for that key), CS_ENOMEM. */
int world_pki_provision(struct world *w, uint32_t node,
			const uint8_t seed[PKI_SEED_BYTES], const struct env_blob *cert,
			const struct env_blob *roots, size_t root_count);

/* world_pki_csr writes a CSR (DER) for node's current key (drawn now when it
 * has none) into buf: for a scenario that gives it a certificate of its
 * choosing. Returns 0 or pki_csr_create's error. */
int world_pki_csr(struct world *w, uint32_t node, uint8_t *buf, size_t cap, size_t *len);

/* world_pki_cert_set makes cert (copied; NULL or empty: none) node's
 * certificate, unchecked, keeping its key, roots and pin: `cert NODE ...`.
 * Returns 0 or CS_ENOMEM. */
int world_pki_cert_set(struct world *w, uint32_t node, const struct env_blob *cert);

/* world_pki_identity: what of's certificate proves to `to` now (as env
 * sender() would say of a message from of). Returns false and all zero when
 * nothing. */
bool world_pki_identity(struct world *w, uint32_t of, uint32_t to,
			struct env_identity *out);

/* world_pki_now_s returns virtual time as certificate time (seconds since
 * the Unix epoch). */
int64_t world_pki_now_s(const struct world *w);
/* world_epoch_ms: the Unix time (ms) virtual time 0 stands for on the
 * world's wall clock (issue 16's log lines are stamped with it). */
int64_t world_epoch_ms(void);

/* ---------------------------------------------------------------- running */

/* world_step delivers the next event (advancing time to it) if it is due at
 * or before until_us. Returns true when an event ran, false when none is due
 * by until_us (time is then unchanged). */
bool world_step(struct world *w, us_t until_us);

/* world_advance sets the clock to at_us, which must not be before now and
 * not after the next pending event. */
void world_advance(struct world *w, us_t at_us);

/* world_next_at returns the time of the next event, or UINT64_MAX. */
us_t world_next_at(const struct world *w);

/* world_call_at schedules fn(w, data) at at_us (>= now) as an event of node
 * (UINT32_MAX: the world itself); for a node, the call is dropped if the
 * node dies or restarts first. Returns 0 or CS_ENOMEM. */
typedef void (*world_call_fn)(struct world *w, void *data);
int world_call_at(struct world *w, us_t at_us, uint32_t node, world_call_fn fn,
		  void *data);

/* world_trace folds a traced-only event (a fault change, a scenario command)
 * into the hash at the current time. */
void world_trace(struct world *w, uint32_t node, enum sim_ev_kind kind, uint64_t a,
		 uint64_t b);

/* world_rng returns a stream of the world (faults, workload). */
struct rng *world_rng(struct world *w, enum rng_purpose purpose);

/* world_vfs returns the world's simulated disks. */
struct simvfs *world_vfs(struct world *w);

/* world_exec returns the world's simulated container runtime (owned by the
 * world): image settings, ground truth counts, invariant 3. */
struct simexec *world_exec(struct world *w);

#endif
