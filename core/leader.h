/* leader: the components that run only while their manager leads
 * (SwarmKit's dispatcher, orchestrators, scheduler, CA signer, ...), behind
 * one interface and one table in manager.c. A component sees the manager
 * through a narrow leader context: the env, the store to read, a way to
 * write, the cluster's settings. The manager starts every component once
 * its first write of the term has applied (its store is the cluster's),
 * passes each store event and each frame meant for the leader, and stops
 * them all when leadership goes or the process dies.
 *
 * Adding a component: write its ops, add a row to manager.c's table. */
#ifndef CS_LEADER_H
#define CS_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/metrics.h"
#include "core/manager.h"
#include "core/store.h"

/* What a leader component may see of its manager. Valid from start to
 * stop. */
struct leader_ctx;

struct env *leader_env(const struct leader_ctx *ctx);
const struct store *leader_store(const struct leader_ctx *ctx);
const struct manager_cfg *leader_cfg(const struct leader_ctx *ctx);
/* The dispatcher's heartbeat period and the finished tasks kept per slot:
 * the cluster record's settings (swarmctl cluster update), or the
 * manager's configuration where those are 0 (unset). */
ms_t leader_heartbeat_ms(const struct leader_ctx *ctx);
uint64_t leader_task_history(const struct leader_ctx *ctx);
/* leader_write proposes an encoded batch (manager_write's contract). */
int leader_write(const struct leader_ctx *ctx, const uint8_t *batch, size_t len,
		 manager_write_cb cb, void *data);
/* leader_raft_id: this manager's raft id (the proposer of its batches). */
uint64_t leader_raft_id(const struct leader_ctx *ctx);
/* leader_send encodes wire and sends it to addr (best effort). */
int leader_send(const struct leader_ctx *ctx, const char *addr, const Cs__Wire *wire);
/* leader_reply encodes wire and sends it back on connection conn (env
 * reply: a sender()'s conn). */
int leader_reply(const struct leader_ctx *ctx, uint64_t conn, const Cs__Wire *wire);
/* The Raft group as this manager knows it (manager.h's manager_voters,
 * manager_member_addrs, manager_member_addr). */
size_t leader_voters(const struct leader_ctx *ctx, uint64_t *ids, size_t max);
size_t leader_member_addrs(const struct leader_ctx *ctx, const char **addrs, size_t max);
const char *leader_member_addr(const struct leader_ctx *ctx, uint64_t id);
/* leader_log_refusal: manager_log_refusal's throttled `msg="refused"`. */
void leader_log_refusal(const struct leader_ctx *ctx, const char *what, const char *from,
			const struct env_identity *who, const char *why);

struct leader_component_ops {
	const char *name;
	/* start: the manager leads; returns 0 and *state, or an error (logged;
	 * the next election tries again). */
	int (*start)(const struct leader_ctx *ctx, void **state);
	/* stop: leadership lost (dying false) or the process dying (true: no
	 * env call, free only). */
	void (*stop)(void *state, bool dying);
	/* on_event: a store change applied on this manager. NULL: none. */
	void (*on_event)(void *state, const struct store_event *ev);
	/* recv: a frame meant for the leader, from the sender `who` proves
	 * (env.h's sender()); returns true when it was this component's.
	 * NULL: takes none. */
	bool (*recv)(void *state, const char *from, const struct env_identity *who,
		     const Cs__Wire *wire);
	/* metrics: writes the component's families (core/metrics.h) for a
	 * scrape, in a fixed order. NULL: none. */
	void (*metrics)(void *state, struct metrics_buf *out);
};

#endif
