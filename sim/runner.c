/* runner: one scenario on one world. See runner.h. */
#include "sim/runner.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/manager.h"
#include "core/node.h"
#include "sim/cluster.h"
#include "sim/clusterops.h"
#include "sim/simdisk.h"
#include "sim/simexec.h"

enum { RUNNER_ALWAYS_MAX = 256 };

/* Traced-only event kind for scenario commands (after enum sim_ev_kind). */
#define RUNNER_EV_CMD 10u

struct runner {
	const struct scn_script *script;
	const struct runner_opts *opts;
	struct world *w;
	struct simcluster *cluster;
	struct clops *ops;
	bool real_managers; /* managers run core/manager (not a test program) */
	uint32_t initial_managers;
	uint32_t next_manager_number; /* for promoted workers */
	const struct scn_cmd *always[RUNNER_ALWAYS_MAX];
	size_t always_count;
	const struct scn_cmd *cur; /* the command being run */
	struct runner_result *res;
	bool failed;
	uint64_t default_millicpus, default_memory_bytes;
};

uint64_t runner_seed(const struct scn_script *script, bool has_flag, uint64_t flag_seed)
{
	if (has_flag)
		return flag_seed;
	if (script->has_seed)
		return script->seed;
	return 1;
}

/* Marks the run failed at cmd with a formatted reason (the first failure
 * wins). Always returns -1 so callers can `return runner_fail(...)`. */
__attribute__((format(printf, 3, 4))) static int runner_fail(struct runner *r,
							     const struct scn_cmd *cmd,
							     const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->failed)
		return -1;
	r->failed = true;
	r->res->passed = false;
	r->res->fail_line = cmd->line;
	n = snprintf(r->res->message, sizeof r->res->message,
		     "line %" PRIu32 ": %s: ", cmd->line, cmd->text);
	if (n < 0 || (size_t)n >= sizeof r->res->message)
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->res->message + n, sizeof r->res->message - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int runner_not_built(struct runner *r, const struct scn_cmd *cmd, const char *what)
{
	return runner_fail(r, cmd, "not built yet: %s", what);
}

/* ---------------------------------------------------------------- nodes */

/* Resolves a node reference to a world index, or fails the run. */
static int runner_node(struct runner *r, const struct scn_cmd *cmd, struct scn_node ref,
		       uint32_t *index)
{
	char name[32];
	int64_t i;

	if (ref.kind == SCN_NODE_LEADER) {
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"`leader` needs the Raft managers");
		i = simcluster_leader(r->cluster);
		if (i < 0)
			return runner_fail(r, cmd, "no leader at sim=%.1fs",
					   (double)world_now_us(r->w) / 1e6);
		*index = (uint32_t)i;
		return 0;
	}
	scn_node_name(ref, name, sizeof name);
	i = world_node_find(r->w, name);
	if (i < 0)
		return runner_fail(r, cmd, "no node %s", name);
	*index = (uint32_t)i;
	return 0;
}

static int runner_add_node(struct runner *r, const struct scn_cmd *cmd,
			   struct scn_node ref)
{
	bool manager = ref.kind == SCN_NODE_MANAGER;
	char name[32];
	uint32_t index;
	int rv;

	const struct env_program_ops *prog =
		manager ? r->opts->manager_prog : r->opts->worker_prog;
	const void *cfg = manager ? r->opts->manager_cfg : r->opts->worker_cfg;

	scn_node_name(ref, name, sizeof name);
	if (r->real_managers) {
		/* every node runs an agent; the cluster's first managers
		 * bootstrap together, later ones join */
		prog = &node_program;
		cfg = simcluster_node_cfg(r->cluster, name, manager ? ref.number : 0,
					  manager && ref.number <= r->initial_managers
						  ? r->initial_managers
						  : 0,
					  r->initial_managers, r->default_millicpus,
					  r->default_memory_bytes);
		if (!cfg)
			return runner_fail(r, cmd, "out of memory");
	}
	rv = world_node_add(r->w, name, prog, cfg, &index);
	if (rv)
		return runner_fail(r, cmd, "cannot add node %s: %s", name,
				   cs_strerror(rv));
	if (simcluster_track(r->cluster, index,
			     manager && r->real_managers ? ref.number : 0))
		return runner_fail(r, cmd, "out of memory");
	rv = world_node_start(r->w, index);
	if (rv)
		return runner_fail(r, cmd, "node %s failed to start: %s", name,
				   cs_strerror(rv));
	return 0;
}

static int runner_cluster(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_cluster *c = &cmd->u.cluster;

	r->initial_managers = c->managers;
	r->next_manager_number = r->script->managers_total + 1;
	r->default_millicpus = c->millicpus;
	r->default_memory_bytes = c->memory_bytes;
	for (uint32_t i = 1; i <= c->managers; i++)
		if (runner_add_node(r, cmd, (struct scn_node){SCN_NODE_MANAGER, i}))
			return -1;
	for (uint32_t i = 1; i <= c->workers; i++)
		if (runner_add_node(r, cmd, (struct scn_node){SCN_NODE_WORKER, i}))
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- conditions */

/* Evaluates cond. Returns 1 when it holds, 0 when not (got describes what
 * was seen), -1 when the run failed (a part not built yet). */
static int runner_cond(struct runner *r, const struct scn_cmd *cmd,
		       const struct scn_cond *cond, char *got, size_t got_size)
{
	switch (cond->kind) {
	case SCN_COND_LEADER:
	case SCN_COND_NO_LEADER:
	case SCN_COND_LEADER_IS: {
		int64_t leader;
		bool holds;
		if (!r->real_managers)
			return runner_not_built(
				r, cmd, "leader conditions need the Raft managers");
		leader = simcluster_leader(r->cluster);
		if (cond->kind == SCN_COND_LEADER) {
			holds = leader >= 0;
		} else if (cond->kind == SCN_COND_NO_LEADER) {
			holds = leader < 0;
		} else {
			char want[32];
			bool same;
			scn_node_name(cond->node, want, sizeof want);
			same = leader >= 0 &&
			       strcmp(world_node_name(r->w, (uint32_t)leader), want) == 0;
			holds = cond->op == SCN_OP_EQ ? same : !same;
		}
		if (!holds)
			snprintf(got, got_size, "%s",
				 leader >= 0 ? world_node_name(r->w, (uint32_t)leader)
					     : "no leader");
		return holds;
	}
	case SCN_COND_RUNNING:
	case SCN_COND_STORE_TASKS:
	case SCN_COND_NODES_READY:
	case SCN_COND_NODE_STATUS:
	case SCN_COND_CONVERGED: {
		int64_t leader;
		if (!r->real_managers)
			return runner_not_built(
				r, cmd, "this condition needs the cluster's programs");
		leader = simcluster_leader(r->cluster);
		return clops_cond(
			r->ops,
			leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
				    : NULL,
			cond, got, got_size);
	}
	case SCN_COND_MANAGERS_SYNC:
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"`managers in sync` needs the managers");
		return simcluster_in_sync(r->cluster, got, got_size);
	}
	return runner_fail(r, cmd, "unknown condition");
}

/* Shows the run to the observer, if any. */
static void runner_observe(struct runner *r, bool final)
{
	struct runner_view v = {
		.w = r->w, .cluster = r->cluster, .cmd = r->cur, .final = final};
	if (r->opts->observe)
		r->opts->observe(r->opts->observe_ctx, &v);
}

/* Checks every `always` condition and the invariants; false when the run
 * failed. */
static bool runner_check(struct runner *r)
{
	char got[256];

	runner_observe(r, false);

	if (!simcluster_check(r->cluster, got, sizeof got)) {
		runner_fail(r, r->cur, "%s at sim=%.6fs", got,
			    (double)world_now_us(r->w) / 1e6);
		return false;
	}
	/* invariants 3 (containers), 4 (placements) and 5 (acknowledged
	 * services) */
	if (r->real_managers) {
		int64_t leader = simcluster_leader(r->cluster);
		if (!clops_check(
			    r->ops,
			    leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
					: NULL,
			    got, sizeof got)) {
			runner_fail(r, r->cur, "%s at sim=%.6fs", got,
				    (double)world_now_us(r->w) / 1e6);
			return false;
		}
	}

	for (size_t i = 0; i < r->always_count; i++) {
		const struct scn_cmd *a = r->always[i];
		int rv = runner_cond(r, a, &a->u.expect.cond, got, sizeof got);
		if (rv < 0)
			return false;
		if (rv == 0) {
			runner_fail(r, a, "broken at sim=%.1fs: got %s",
				    (double)world_now_us(r->w) / 1e6, got);
			return false;
		}
	}
	return !r->failed;
}

/* Runs events up to and including until_us, checking after each; then sets
 * the clock to until_us. stop, when given, ends the run early as soon as it
 * returns 1 (or fails with -1). Returns 1 when stop held, 0 at until_us, -1
 * when the run failed. */
static int runner_until(struct runner *r, us_t until_us, const struct scn_cmd *cmd,
			const struct scn_cond *stop, char *got, size_t got_size)
{
	for (;;) {
		if (stop) {
			int rv = runner_cond(r, cmd, stop, got, got_size);
			if (rv != 0)
				return rv;
		}
		if (!world_step(r->w, until_us))
			break;
		if (!runner_check(r))
			return -1;
	}
	world_advance(r->w, until_us);
	return 0;
}

static int runner_expect(struct runner *r, const struct scn_cmd *cmd)
{
	char got[128] = "";
	us_t deadline = world_now_us(r->w);
	int rv;

	if (cmd->u.expect.has_within)
		deadline += cmd->u.expect.within_ms * 1000;
	rv = runner_until(r, deadline, cmd, &cmd->u.expect.cond, got, sizeof got);
	if (rv < 0)
		return -1;
	if (rv == 0 && cmd->kind == SCN_AWAIT)
		return 0; /* await waits as long, and never fails */
	if (rv == 0) {
		/* The deadline: check once more at exactly that instant. */
		rv = runner_cond(r, cmd, &cmd->u.expect.cond, got, sizeof got);
		if (rv < 0)
			return -1;
		if (rv == 0)
			return runner_fail(r, cmd, "got %s", got);
	}
	return 0;
}

/* ---------------------------------------------------------------- network */

static int runner_partition(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_partition *p = &cmd->u.partition;
	size_t count = world_node_count(r->w);
	uint32_t *group_of = calloc(count ? count : 1, sizeof *group_of);
	uint32_t star = 0;
	int rv;

	if (!group_of)
		return runner_fail(r, cmd, "out of memory");
	for (size_t g = 0; g < p->group_count; g++) {
		const struct scn_group *grp = &p->groups[g];
		if (grp->star) {
			star = (uint32_t)g + 1;
			continue;
		}
		for (size_t i = 0; i < grp->node_count; i++) {
			uint32_t index;
			if (runner_node(r, cmd, grp->nodes[i], &index)) {
				free(group_of);
				return -1;
			}
			group_of[index] = (uint32_t)g + 1;
		}
	}
	rv = world_net_partition(r->w, group_of, count, star);
	free(group_of);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

static int runner_link_one(struct runner *r, const struct scn_cmd *cmd, uint32_t src,
			   uint32_t dst)
{
	const struct scn_link *l = &cmd->u.link;
	struct sim_link_rule rule = {
		.src = src,
		.dst = dst,
		.loss_ppm = l->has_loss ? l->loss_ppm : 0,
		.dup_ppm = l->has_dup ? l->dup_ppm : 0,
		.reorder_ppm = l->has_reorder ? l->reorder_ppm : 0,
		.has_delay = l->has_delay,
		.delay_min_us = l->delay.min_ms * 1000,
		.delay_max_us = l->delay.max_ms * 1000,
	};
	int rv = world_net_link(r->w, &rule);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

static int runner_link(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t a, b;

	if (runner_node(r, cmd, cmd->u.link.a, &a) ||
	    runner_node(r, cmd, cmd->u.link.b, &b))
		return -1;
	if (runner_link_one(r, cmd, a, b))
		return -1;
	if (!cmd->u.link.one_way && runner_link_one(r, cmd, b, a))
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- commands */

static int runner_kill(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t index;
	int rv;

	if (runner_node(r, cmd, cmd->u.node.node, &index))
		return -1;
	rv = world_node_kill(r->w, index, !cmd->u.node.process_only, false);
	if (rv == CS_ENOENT && !cmd->u.node.process_only) {
		/* its daemon was already dead: now the machine goes too */
		simexec_node_died(world_exec(r->w), index, true);
		return 0;
	}
	if (rv == CS_ENOENT)
		return runner_fail(r, cmd, "%s is already down",
				   world_node_name(r->w, index));
	return 0;
}

static int runner_restart(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t index;
	int rv;

	if (runner_node(r, cmd, cmd->u.node.node, &index))
		return -1;
	/* A node that is running is left as it is: after `kill leader` a
	 * scenario cannot name the dead one, so `restart m1 ... mN` must be
	 * harmless for the others. */
	if (world_node_is_up(r->w, index))
		return 0;
	rv = world_node_start(r->w, index);
	if (rv)
		return runner_fail(r, cmd, "%s failed to start: %s",
				   world_node_name(r->w, index), cs_strerror(rv));
	return 0;
}

_Static_assert(SCN_RT_OP_PREPARE == SIMEXEC_OP_PREPARE &&
		       SCN_RT_OP_START == SIMEXEC_OP_START &&
		       SCN_RT_OP_WAIT == SIMEXEC_OP_WAIT &&
		       SCN_RT_OP_STOP == SIMEXEC_OP_STOP &&
		       SCN_RT_OP_REMOVE == SIMEXEC_OP_REMOVE &&
		       SCN_RT_OP_LIST == SIMEXEC_OP_LIST &&
		       SCN_RT_OP_INSPECT == SIMEXEC_OP_INSPECT &&
		       SCN_RT_OP_ALL == SIMEXEC_OP_ALL,
	       "the scenario's call kinds are the runtime's");

/* runtime NODE fail=OPS [for=DUR] | restart ... | ok */
static int runner_runtime(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_runtime *rt = &cmd->u.runtime;
	struct simexec *x = world_exec(r->w);
	us_t now_us = world_now_us(r->w);
	uint32_t index;
	int rv = 0;

	if (runner_node(r, cmd, rt->node, &index))
		return -1;
	switch (rt->action) {
	case SCN_RT_FAIL:
		rv = simexec_runtime_fail(x, index, rt->ops,
					  rt->has_for ? now_us + rt->for_ms * 1000
						      : UINT64_MAX);
		break;
	case SCN_RT_RESTART:
		rv = simexec_runtime_restart(x, index, rt->lose, rt->down_ms * 1000);
		break;
	case SCN_RT_OK: simexec_runtime_ok(x, index); break;
	}
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

/* disk NODE fault=eio|full ... | ok */
static int runner_disk(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_disk *d = &cmd->u.disk;
	uint32_t index, faults = 0;
	int rv;

	if (runner_node(r, cmd, d->node, &index))
		return -1;
	if (d->fault == SCN_DISK_FULL)
		faults = SIMVFS_FAULT_FULL;
	if (d->fault == SCN_DISK_EIO)
		faults = (d->on_write ? SIMVFS_FAULT_EIO_WRITE : 0) |
			 (d->on_sync ? SIMVFS_FAULT_EIO_SYNC : 0);
	rv = world_disk_fault(r->w, index, faults,
			      d->has_for ? world_now_us(r->w) + d->for_ms * 1000
					 : UINT64_MAX);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

struct runner_call {
	bool done;
	int status;
};

static void runner_call_done(void *data, int status)
{
	struct runner_call *c = data;
	c->done = true;
	c->status = status;
}

/* Waits (running events, checking invariants) for an API call's answer, at
 * most limit_us of virtual time. Returns 0 when answered, -1 when the run
 * failed. */
static int runner_wait_call(struct runner *r, const struct scn_cmd *cmd,
			    struct runner_call *call, us_t limit_us)
{
	us_t end = world_now_us(r->w) + limit_us;
	while (!call->done) {
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "no answer within %.0fs",
					   (double)limit_us / 1e6);
		if (!runner_check(r))
			return -1;
	}
	return 0;
}

/* A control API call on the current leader, as swarmctl would make it:
 * waits for its answer; an error fails the run with the API's words. */
static int runner_api_once(struct runner *r, const struct scn_cmd *cmd, uint32_t node,
			   bool retried, struct runner_call *call, char *err,
			   size_t err_size)
{
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *m;
	int rv;

	/* like a client retrying: wait for a leader, a minute at most */
	for (us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull; leader < 0;) {
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "no leader to ask (waited 60s)");
		if (!runner_check(r))
			return -1;
		leader = simcluster_leader(r->cluster);
	}
	m = simcluster_manager(r->cluster, (uint32_t)leader);
	if (node == UINT32_MAX) {
		rv = clops_service(r->ops, m, cmd, err, err_size, runner_call_done, call);
	} else {
		/* a node that has not registered yet: wait for it, a minute */
		us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull;
		while ((rv = clops_node(r->ops, m, cmd, node, err, err_size,
					runner_call_done, call)) == CS_ENOENT) {
			if (!world_step(r->w, end))
				break;
			if (!runner_check(r))
				return -1;
			leader = simcluster_leader(r->cluster);
			if (leader >= 0)
				m = simcluster_manager(r->cluster, (uint32_t)leader);
		}
	}
	if (rv == CS_ENOTLEADER)
		return CS_ENOTLEADER; /* leadership moved under us: ask again */
	if (rv == CS_EEXIST && retried && cmd->kind == SCN_SERVICE_CREATE)
		return 0; /* the first attempt did commit */
	if (rv)
		return runner_fail(r, cmd, "%s", err[0] ? err : cs_strerror(rv));
	if (runner_wait_call(r, cmd, call, 30 * 1000 * 1000ull))
		return -1;
	if (call->status == CS_EEXIST && retried && cmd->kind == SCN_SERVICE_CREATE)
		call->status = 0;
	return 0;
}

/* A control API call on the current leader, as swarmctl would make it:
 * waits for its answer; an error fails the run with the API's words. A
 * leader lost on the way is asked again, as a client retries; a create
 * that turns out to have committed the first time counts as done. */
static int runner_api(struct runner *r, const struct scn_cmd *cmd, uint32_t node)
{
	us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull;
	bool retried = false;

	if (!r->real_managers)
		return runner_not_built(
			r, cmd, "services need the control API and orchestrators");
	for (;;) {
		struct runner_call call = {0};
		char err[256] = "";
		int rv = runner_api_once(r, cmd, node, retried, &call, err, sizeof err);
		if (rv == CS_ENOTLEADER)
			call.status = CS_ENOTLEADER;
		else if (rv)
			return -1;
		if (call.status == 0)
			return 0;
		if (retried && call.status == CS_EEXIST &&
		    cmd->kind == SCN_SERVICE_CREATE)
			return 0;
		/* a leader whose durable write failed (a disk fault) stops: ask
		 * the next one, as a client would */
		if ((call.status != CS_ENOTLEADER && call.status != CS_ECLOSED &&
		     call.status != CS_ESTORAGE) ||
		    world_now_us(r->w) >= end)
			return runner_fail(r, cmd, "%s", cs_strerror(call.status));
		retried = true;
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "%s", cs_strerror(call.status));
		if (!runner_check(r))
			return -1;
	}
}

/* node rm NODE: the node leaves the cluster: its machine is turned off and
 * its record removed (forced, as an operator removing a dead node would). A
 * manager must be demoted first. */
static int runner_node_rm(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t node;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "node management needs the control API");
	if (runner_node(r, cmd, cmd->u.node.node, &node))
		return -1;
	if (simcluster_manager(r->cluster, node))
		return runner_fail(r, cmd,
				   "%s is a manager: demote it before removing it",
				   world_node_name(r->w, node));
	if (runner_api(r, cmd, node))
		return -1;
	if (world_node_kill(r->w, node, true, false) == CS_ENOENT)
		simexec_node_died(world_exec(r->w), node, true);
	return 0;
}

/* node promote wN: the worker's daemon restarts as a manager too (its
 * containers keep running), joins Raft as a spare and becomes a voter once
 * caught up; its node record says manager from its next session. */
static int runner_promote(struct runner *r, const struct scn_cmd *cmd)
{
	const struct node_cfg *cfg;
	uint32_t node, number;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "node management needs the control API");
	if (runner_node(r, cmd, cmd->u.node.node, &node))
		return -1;
	if (simcluster_manager(r->cluster, node))
		return 0; /* a manager already */
	/* the control API records the wish; the node's daemon then restarts as
	 * a manager (the simulator plays swarmd's part) */
	if (runner_api(r, cmd, node))
		return -1;
	number = r->next_manager_number++;
	cfg = simcluster_node_cfg(r->cluster, world_node_name(r->w, node), number, 0,
				  r->initial_managers, r->default_millicpus,
				  r->default_memory_bytes);
	if (!cfg)
		return runner_fail(r, cmd, "out of memory");
	if (world_node_is_up(r->w, node))
		world_node_kill(r->w, node, false, false);
	world_node_set_program(r->w, node, &node_program, cfg);
	simcluster_track(r->cluster, node, number);
	if (world_node_start(r->w, node))
		return runner_fail(r, cmd, "%s failed to start",
				   world_node_name(r->w, node));
	return 0;
}

/* node demote mN: the leader removes mN from the Raft group; its machine
 * then comes back as a worker (what it runs from its next start), as
 * SwarmKit's demoted manager carries on as a worker. */
static int runner_demote(struct runner *r, const struct scn_cmd *cmd)
{
	int64_t leader = simcluster_leader(r->cluster);
	uint64_t raft_id;
	uint32_t node;

	if (runner_node(r, cmd, cmd->u.node.node, &node))
		return -1;
	/* a manager's raft id is its number, up or down; a promoted worker
	 * has one too. A worker already: nothing to do (as promoting a
	 * manager) */
	if (simcluster_number(r->cluster, node) == 0)
		return 0;
	raft_id = simcluster_raft_id(r->cluster, node);
	/* the control API records the wish; the leader's role manager takes
	 * the manager out of the Raft group (handing leadership over first
	 * when it is the one demoted) */
	if (runner_api(r, cmd, node))
		return -1;
	for (us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull;;) {
		uint64_t ids[LIMIT_MANAGERS_MAX];
		size_t n = 0;
		bool member = true;
		leader = simcluster_leader(r->cluster);
		if (leader >= 0) {
			n = manager_voters(
				simcluster_manager(r->cluster, (uint32_t)leader), ids,
				LIMIT_MANAGERS_MAX);
			member = false;
			for (size_t i = 0; i < n && i < LIMIT_MANAGERS_MAX; i++)
				member |= ids[i] == raft_id;
		}
		if (!member)
			break;
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "%s is still a Raft member after 60s",
					   world_node_name(r->w, node));
		if (!runner_check(r))
			return -1;
	}
	if (world_node_is_up(r->w, node))
		world_node_kill(r->w, node, false, false);
	world_node_set_program(
		r->w, node, &node_program,
		simcluster_node_cfg(r->cluster, world_node_name(r->w, node), 0, 0,
				    r->initial_managers, r->default_millicpus,
				    r->default_memory_bytes));
	simcluster_track(r->cluster, node, 0);
	world_node_start(r->w, node);
	return 0;
}

static int runner_cmd(struct runner *r, const struct scn_cmd *cmd)
{
	char got[128];

	r->cur = cmd;
	world_trace(r->w, UINT32_MAX, (enum sim_ev_kind)RUNNER_EV_CMD, cmd->line,
		    cmd->kind);
	switch (cmd->kind) {
	case SCN_CLUSTER: return runner_cluster(r, cmd);
	case SCN_SEED: return 0;
	case SCN_SET: /* read by managers when they (re)start */
		simcluster_set(r->cluster, &cmd->u.settings);
		return 0;
	case SCN_RUN:
		return runner_until(r, world_now_us(r->w) + cmd->u.run_ms * 1000, cmd,
				    NULL, got, sizeof got) < 0
			       ? -1
			       : 0;
	case SCN_SERVICE_CREATE:
	case SCN_SERVICE_UPDATE:
	case SCN_SERVICE_RM: return runner_api(r, cmd, UINT32_MAX);
	case SCN_NODE_ADD: return runner_add_node(r, cmd, cmd->u.node.added);
	case SCN_NODE_DRAIN:
	case SCN_NODE_PAUSE:
	case SCN_NODE_ACTIVATE:
	case SCN_NODE_LABEL: {
		uint32_t node;
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"node management needs the control API");
		if (runner_node(r, cmd, cmd->u.node.node, &node))
			return -1;
		return runner_api(r, cmd, node);
	}
	case SCN_NODE_RM: return runner_node_rm(r, cmd);
	case SCN_NODE_PROMOTE: return runner_promote(r, cmd);
	case SCN_NODE_DEMOTE:
		if (r->real_managers)
			return runner_demote(r, cmd);
		return runner_not_built(r, cmd, "node management needs the control API");
	case SCN_KILL: return runner_kill(r, cmd);
	case SCN_RESTART: return runner_restart(r, cmd);
	case SCN_PARTITION:
	case SCN_ISOLATE: return runner_partition(r, cmd);
	case SCN_LINK: return runner_link(r, cmd);
	case SCN_HEAL: world_net_heal(r->w); return 0;
	case SCN_IMAGE: clops_image(r->ops, &cmd->u.image); return 0;
	case SCN_RUNTIME: return runner_runtime(r, cmd);
	case SCN_DISK: return runner_disk(r, cmd);
	case SCN_EXPECT: return runner_expect(r, cmd);
	case SCN_AWAIT: return runner_expect(r, cmd);
	case SCN_ALWAYS: {
		int rv;
		if (r->always_count >= RUNNER_ALWAYS_MAX)
			return runner_fail(r, cmd, "more than %d `always` conditions",
					   RUNNER_ALWAYS_MAX);
		r->always[r->always_count++] = cmd;
		rv = runner_cond(r, cmd, &cmd->u.expect.cond, got, sizeof got);
		if (rv == 0)
			return runner_fail(r, cmd, "does not hold at sim=%.1fs: got %s",
					   (double)world_now_us(r->w) / 1e6, got);
		return rv < 0 ? -1 : 0;
	}
	}
	return runner_fail(r, cmd, "unknown command");
}

int runner_run(const struct scn_script *script, uint64_t seed,
	       const struct runner_opts *opts, struct runner_result *res)
{
	struct runner r = {.script = script, .opts = opts, .res = res};

	memset(res, 0, sizeof *res);
	res->seed = seed;
	res->passed = true;
	r.w = world_new(seed);
	if (!r.w)
		return CS_ENOMEM;
	r.cluster = simcluster_new(r.w, NULL);
	if (!r.cluster) {
		world_free(r.w);
		return CS_ENOMEM;
	}
	r.real_managers = opts->manager_prog == NULL;
	simcluster_node_programs(r.cluster, r.real_managers);
	r.ops = clops_new(r.w, r.cluster);
	if (!r.ops) {
		world_free(r.w);
		simcluster_free(r.cluster);
		return CS_ENOMEM;
	}
	world_record(r.w, opts->record);
	if (opts->trace)
		world_set_trace(r.w, opts->trace, opts->trace_ctx);
	if (opts->log)
		world_set_log(r.w, opts->log, opts->log_ctx);
	for (size_t i = 0; i < script->cmd_count; i++) {
		int rv = runner_cmd(&r, &script->cmds[i]);
		runner_observe(&r, false);
		if (rv || r.failed)
			break;
	}
	runner_observe(&r, true);
	assert(r.failed == !res->passed);
	res->sim_us = world_now_us(r.w);
	res->events = world_events(r.w);
	res->hash = world_hash(r.w);
	if (opts->record) {
		size_t n;
		const struct sim_trace_rec *recs = world_records(r.w, &n);
		res->recs = malloc((n ? n : 1) * sizeof *recs);
		if (res->recs) {
			if (n)
				memcpy(res->recs, recs, n * sizeof *recs);
			res->rec_count = n;
		}
	}
	world_free(r.w);
	clops_free(r.ops);
	simcluster_free(r.cluster);
	return 0;
}

void runner_result_free(struct runner_result *res)
{
	free(res->recs);
	res->recs = NULL;
	res->rec_count = 0;
}

int64_t runner_diverge(const struct runner_result *a, const struct runner_result *b)
{
	size_t n = a->rec_count < b->rec_count ? a->rec_count : b->rec_count;
	for (size_t i = 0; i < n; i++) {
		const struct sim_trace_rec *x = &a->recs[i], *y = &b->recs[i];
		if (x->at_us != y->at_us || x->node != y->node || x->kind != y->kind ||
		    x->hash != y->hash)
			return (int64_t)i;
	}
	if (a->rec_count != b->rec_count || a->hash != b->hash)
		return (int64_t)n;
	return -1;
}
