/* clusterops: services, nodes, images, conditions and invariants 3-5 of the
 * simulated cluster. See clusterops.h. Sections: specs, commands,
 * conditions, invariants. */
#include "sim/clusterops.h"

#include "core/allocator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"
#include "core/errors.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/jobs.h"
#include "core/limits.h"
#include "core/orchestrator.h"
#include "core/pki.h"
#include "core/scheduler.h"
#include "core/secret.h"
#include "core/sort.h"
#include "core/store.h"
#include "core/str.h"
#include "sim/simexec.h"

#define CLOPS_DEFAULT_IMAGE "cswarm/default"

/* A service acknowledged to the scenario (invariant 5). */
struct clops_ack {
	char name[LIMIT_NAME_BYTES_MAX + 1];
	uint64_t index; /* the leader's applied index when it answered */
	bool removed;
	uint64_t id; /* the service's id, so that `store tasks NAME` can count
		      * the tasks of a removed service */
};

struct clops_placed {
	uint64_t task;
	uint64_t node;
};

enum { CLOPS_VERDICTS = 32, CLOPS_GOT_BYTES = 256 };

struct clops_verdict {
	const struct scn_cond *cond; /* NULL: free */
	uint64_t leader, applied, changes, health;
	int result;
	char got[CLOPS_GOT_BYTES];
};

struct clops {
	struct world *w;
	struct simcluster *c;
	struct clops_ack *acks;
	size_t ack_count, ack_cap;
	uint64_t checked_index; /* the leader's applied index at the last check */
	uint64_t checked_leader;
	/* the last time slots running twice were judged fine: what ran, and
	 * the store that judged (they stay fine until either changes) */
	uint64_t slots_changes, slots_index, slots_leader;
	bool slots_ok;
	/* placements already judged (invariant 4): the ASSIGNED tasks of the
	 * last check, by task id, with their node */
	struct clops_placed *placed, *placed_next;
	size_t placed_count, placed_next_count, placed_cap;
	bool placed_oom;
	/* conditions' last verdicts, judged again only when what they read
	 * changed: the leader's store (who leads, how far it applied) or what
	 * runs */
	struct clops_verdict verdicts[CLOPS_VERDICTS];
	size_t verdict_next;
	/* invariant 6: running containers of terminal tasks, since when (in
	 * (node, task id) order), and what the last check saw */
	struct clops_suspect *suspects;
	size_t suspect_count, suspect_cap;
	uint64_t inv6_changes, inv6_applied, inv6_leader, inv6_health;
	/* the allocator's invariants (issue 15): the store last judged */
	uint64_t alloc_applied, alloc_leader;
	us_t inv6_at_us;
	/* the ids of the tasks the store says are terminal, ascending: read
	 * in one scan of the store per judgement (O(tasks), sequential)
	 * instead of a lookup per running container */
	uint64_t *term_ids;
	size_t term_count, term_cap;
	bool inv6_checked;
	bool inv6_off; /* the scenario opted out (runner) */
};

/* A running container whose task the store says is terminal. */
struct clops_suspect {
	uint32_t node;
	char task[LIMIT_NAME_BYTES_MAX + 1];
	us_t since_us; /* first seen so, or its node healthy again, if later */
};

/* A call in flight: the runner's callback, and what to remember. */
struct clops_call {
	struct clops *o;
	struct manager *m;
	clops_done_fn done;
	void *data;
	enum scn_cmd_kind kind;
	char name[LIMIT_NAME_BYTES_MAX + 1];
	uint64_t id; /* a create's new service */
};

struct clops *clops_new(struct world *w, struct simcluster *c)
{
	struct clops *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->w = w;
	o->c = c;
	return o;
}

void clops_free(struct clops *o)
{
	if (!o)
		return;
	free(o->acks);
	free(o->term_ids);
	free(o->placed);
	free(o->placed_next);
	free(o->suspects);
	free(o);
}

/* ---------------------------------------------------------------- specs */

/* A service spec built from a scenario command, with room for its parts. */
struct clops_spec {
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec container;
	Cs__Resources reservations;
	Cs__RestartPolicy restart;
	Cs__Placement placement;
	Cs__UpdateConfig update;
	Cs__UpdateConfig rollback; /* when has_rollback */
	bool has_rollback;
	char *constraints[LIMIT_SCN_CONSTRAINTS_MAX];
	char *spreads[LIMIT_SCN_SPREADS_MAX];
	/* issue 14: the health check (has_health: the spec has one); its
	 * test is the stored spec's (borrowed) or health_test */
	Cs__HealthConfig health;
	bool has_health, own_test;
	char *health_test[3];
	/* issue 15: networks and published ports */
	Cs__NetworkAttachmentConfig nets[LIMIT_SCN_NETWORKS_MAX];
	Cs__NetworkAttachmentConfig *net_ptrs[LIMIT_SCN_NETWORKS_MAX];
	Cs__EndpointSpec endpoint;
	Cs__PortConfig ports[LIMIT_SCN_PORTS_MAX];
	Cs__PortConfig *port_ptrs[LIMIT_SCN_PORTS_MAX];
	/* issue 20: secret= ([0]) and config= ([1]) references, by name (the
	 * control API resolves them) */
	Cs__SecretReference refs[2][LIMIT_SCN_FILES_MAX];
	Cs__SecretReference *ref_ptrs[2][LIMIT_SCN_FILES_MAX];
};

/* Defaults of `docker service create`. */
static void clops_spec_defaults(struct clops_spec *s, const char *name)
{
	cs__service_spec__init(&s->spec);
	cs__task_spec__init(&s->task);
	cs__container_spec__init(&s->container);
	cs__resources__init(&s->reservations);
	cs__restart_policy__init(&s->restart);
	cs__placement__init(&s->placement);
	cs__update_config__init(&s->update);
	s->spec.name = (char *)name;
	s->spec.replicas = 1;
	s->container.image = CLOPS_DEFAULT_IMAGE;
	s->restart.condition = CS__RESTART_POLICY__CONDITION__CONDITION_ANY;
	s->restart.delay_ms = 5000;
	s->update.parallelism = 1;
	s->update.monitor_ms = 5000;
	s->update.failure_action =
		CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_PAUSE;
	s->update.order = CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST;
}

/* Starts from a stored spec: copies each part so that keys can change. */
static void clops_spec_from(struct clops_spec *s, const Cs__ServiceSpec *cur)
{
	clops_spec_defaults(s, cur->name);
	s->spec = *cur;
	if (cur->task) {
		s->task = *cur->task;
		if (cur->task->container)
			s->container = *cur->task->container;
		if (cur->task->container && cur->task->container->healthcheck) {
			s->health = *cur->task->container->healthcheck;
			s->has_health = true;
		}
		if (cur->task->reservations)
			s->reservations = *cur->task->reservations;
		if (cur->task->restart)
			s->restart = *cur->task->restart;
		if (cur->task->placement) {
			s->placement = *cur->task->placement;
			for (size_t i = 0; i < s->placement.n_constraints &&
					   i < LIMIT_SCN_CONSTRAINTS_MAX;
			     i++)
				s->constraints[i] = s->placement.constraints[i];
			for (size_t i = 0; i < s->placement.n_spread_labels &&
					   i < LIMIT_SCN_SPREADS_MAX;
			     i++)
				s->spreads[i] = s->placement.spread_labels[i];
		}
	}
	if (cur->update)
		s->update = *cur->update;
	if ((s->has_rollback = cur->rollback != NULL))
		s->rollback = *cur->rollback;
}

/* The rollback-* keys a command gave, over the spec's rollback config or,
 * when it has none, SwarmKit's default one (as the orchestrator reads it). */
static void clops_spec_apply_rollback(struct clops_spec *s, const struct scn_service *k)
{
	const uint32_t keys = SCN_SVC_ROLLBACK_PARALLELISM | SCN_SVC_ROLLBACK_DELAY |
			      SCN_SVC_ROLLBACK_FAILURE_ACTION | SCN_SVC_ROLLBACK_MONITOR |
			      SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO | SCN_SVC_ROLLBACK_ORDER;

	if (!(k->set & keys))
		return;
	if (!s->has_rollback) {
		cs__update_config__init(&s->rollback);
		s->rollback.parallelism = 1;
		s->rollback.monitor_ms = 5000;
		s->rollback.failure_action =
			CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_PAUSE;
		s->rollback.order = CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST;
		s->has_rollback = true;
	}
	if (k->set & SCN_SVC_ROLLBACK_PARALLELISM)
		s->rollback.parallelism = k->rollback_parallelism;
	if (k->set & SCN_SVC_ROLLBACK_DELAY)
		s->rollback.delay_ms = k->rollback_delay_ms;
	if (k->set & SCN_SVC_ROLLBACK_FAILURE_ACTION)
		s->rollback.failure_action =
			(Cs__UpdateConfig__FailureAction)k->rollback_failure_action;
	if (k->set & SCN_SVC_ROLLBACK_MONITOR)
		s->rollback.monitor_ms = k->rollback_monitor_ms;
	if (k->set & SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO)
		s->rollback.max_failure_ratio_ppm = k->rollback_max_failure_ratio_ppm;
	if (k->set & SCN_SVC_ROLLBACK_ORDER)
		s->rollback.order = (Cs__UpdateConfig__Order)k->rollback_order;
}

/* Applies the health-* keys a command gave (as docker service's flags:
 * --health-cmd CMD is ["CMD-SHELL", CMD], --no-healthcheck ["NONE"]). */
static void clops_spec_health(struct clops_spec *s, const struct scn_service *k)
{
	if (!s->has_health) {
		cs__health_config__init(&s->health);
		s->has_health = true;
	}
	if (k->health_set & SCN_HEALTH_CMD) {
		s->own_test = true;
		s->health_test[0] = k->health_none ? "NONE" : "CMD-SHELL";
		s->health_test[1] = k->health_cmd;
		s->health.n_test = k->health_none ? 1 : 2;
	}
	if (k->health_set & SCN_HEALTH_INTERVAL)
		s->health.interval_ms = k->health_interval_ms;
	if (k->health_set & SCN_HEALTH_TIMEOUT)
		s->health.timeout_ms = k->health_timeout_ms;
	if (k->health_set & SCN_HEALTH_RETRIES)
		s->health.retries = k->health_retries;
	if (k->health_set & SCN_HEALTH_START_PERIOD)
		s->health.start_period_ms = k->health_start_period_ms;
}

/* network= and publish= (issue 15): each list given replaces the spec's. */
static void clops_spec_apply_net(struct clops_spec *s, const struct scn_service *k)
{
	if (k->set & SCN_SVC_NETWORK) {
		for (size_t i = 0; i < k->network_count; i++) {
			cs__network_attachment_config__init(&s->nets[i]);
			s->nets[i].target = k->networks[i];
			s->net_ptrs[i] = &s->nets[i];
		}
		s->spec.n_networks = k->network_count;
		s->spec.networks = s->net_ptrs;
	}
	if (k->set & SCN_SVC_PUBLISH) {
		if (s->spec.endpoint)
			s->endpoint = *s->spec.endpoint;
		else
			cs__endpoint_spec__init(&s->endpoint);
		for (size_t i = 0; i < k->port_count; i++) {
			cs__port_config__init(&s->ports[i]);
			s->ports[i].published = k->ports[i].published;
			s->ports[i].target = k->ports[i].target;
			s->ports[i].protocol = (Cs__PortProtocol)k->ports[i].protocol;
			s->ports[i].mode =
				k->ports[i].host
					? CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST
					: CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS;
			s->port_ptrs[i] = &s->ports[i];
		}
		s->endpoint.n_ports = k->port_count;
		s->endpoint.ports = s->port_ptrs;
		s->spec.endpoint = &s->endpoint;
	}
}

/* Applies the keys a command gave. */
static void clops_spec_apply(struct clops_spec *s, const struct scn_service *k)
{
	if (k->set & SCN_SVC_MODE) {
		s->spec.global =
			k->mode == SCN_MODE_GLOBAL || k->mode == SCN_MODE_GLOBAL_JOB;
		s->spec.job = k->mode == SCN_MODE_REPLICATED_JOB ||
			      k->mode == SCN_MODE_GLOBAL_JOB;
		if (s->spec.global)
			s->spec.replicas = 0;
	}
	if (k->set & SCN_SVC_REPLICAS)
		s->spec.replicas = k->replicas;
	if (k->set & SCN_SVC_MAX_CONCURRENT)
		s->spec.max_concurrent = k->max_concurrent;
	if (k->set & SCN_SVC_IMAGE)
		s->container.image = k->image;
	/* as swarmctl's --env: the list given replaces the whole list */
	if (k->set & (SCN_SVC_ENV | SCN_SVC_ENV_BYTES)) {
		s->container.env = k->envs;
		s->container.n_env = k->env_count;
	}
	if (k->set & SCN_SVC_CONSTRAINT) {
		for (size_t i = 0; i < k->constraint_count; i++)
			s->constraints[i] = k->constraints[i].text;
		s->placement.n_constraints = k->constraint_count;
	}
	if (k->set & SCN_SVC_SPREAD) {
		for (size_t i = 0; i < k->spread_count; i++)
			s->spreads[i] = k->spreads[i];
		s->placement.n_spread_labels = k->spread_count;
	}
	if (k->set & SCN_SVC_RESERVE_CPU)
		s->reservations.millicpus = k->reserve_millicpu;
	if (k->set & SCN_SVC_RESERVE_MEM)
		s->reservations.memory_bytes = k->reserve_mem_bytes;
	if (k->set & SCN_SVC_MAX_PER_NODE)
		s->placement.max_replicas_per_node = k->max_per_node;
	if (k->set & SCN_SVC_RESTART)
		s->restart.condition =
			k->restart == SCN_RESTART_ANY
				? CS__RESTART_POLICY__CONDITION__CONDITION_ANY
			: k->restart == SCN_RESTART_ON_FAILURE
				? CS__RESTART_POLICY__CONDITION__CONDITION_ON_FAILURE
				: CS__RESTART_POLICY__CONDITION__CONDITION_NONE;
	if (k->set & SCN_SVC_RESTART_DELAY)
		s->restart.delay_ms = k->restart_delay_ms;
	if (k->set & SCN_SVC_RESTART_MAX)
		s->restart.max_attempts = k->restart_max;
	if (k->set & SCN_SVC_RESTART_WINDOW)
		s->restart.window_ms = k->restart_window_ms;
	if (k->set & SCN_SVC_UPDATE_PARALLELISM)
		s->update.parallelism = k->update_parallelism;
	if (k->set & SCN_SVC_UPDATE_DELAY)
		s->update.delay_ms = k->update_delay_ms;
	if (k->set & SCN_SVC_UPDATE_FAILURE_ACTION)
		s->update.failure_action =
			(Cs__UpdateConfig__FailureAction)k->update_failure_action;
	if (k->set & SCN_SVC_UPDATE_ORDER)
		s->update.order = (Cs__UpdateConfig__Order)k->update_order;
	if (k->set & SCN_SVC_UPDATE_MONITOR)
		s->update.monitor_ms = k->update_monitor_ms;
	if (k->set & SCN_SVC_UPDATE_MAX_FAILURE_RATIO)
		s->update.max_failure_ratio_ppm = k->update_max_failure_ratio_ppm;
	if (k->set & SCN_SVC_STOP_GRACE)
		s->container.stop_grace_period_ms = k->stop_grace_period_ms;
	if (k->set & SCN_SVC_HEALTH)
		clops_spec_health(s, k);
	clops_spec_apply_rollback(s, k);
	if (k->rebalance_set & 1) /* issue 20 */
		s->spec.rebalance = k->rebalance;
	if (k->rebalance_set & 2)
		s->spec.rebalance_parallelism = k->rebalance_parallelism;
	if (k->force) /* swarmctl's --force: SwarmKit's ForceUpdate counter */
		s->task.force_update++;
	clops_spec_apply_net(s, k);
	/* issue 20: each list given replaces the spec's */
	for (size_t kind = 0; kind < 2; kind++) {
		if (!(k->set & SCN_SVC_FILES) || !(k->files_set & (1u << kind)))
			continue;
		for (size_t i = 0; i < k->file_count[kind]; i++) {
			Cs__SecretReference *r = &s->refs[kind][i];
			cs__secret_reference__init(r);
			r->secret_name = k->file_names[kind][i];
			if (k->file_targets[kind][i])
				r->target = k->file_targets[kind][i];
			s->ref_ptrs[kind][i] = r;
		}
		if (kind == 0) {
			s->container.n_secrets = k->file_count[0];
			s->container.secrets = s->ref_ptrs[0];
		} else {
			s->container.n_configs = k->file_count[1];
			s->container.configs = s->ref_ptrs[1];
		}
	}
}

/* Points the parts at each other (after any copy of the struct). */
static void clops_spec_link(struct clops_spec *s)
{
	s->placement.constraints = s->constraints;
	s->placement.spread_labels = s->spreads;
	s->task.container = &s->container;
	s->container.healthcheck = s->has_health ? &s->health : NULL;
	if (s->own_test)
		s->health.test = s->health_test;
	s->task.reservations = &s->reservations;
	s->task.restart = &s->restart;
	s->task.placement = &s->placement;
	s->task.limits = NULL;
	s->spec.task = &s->task;
	s->spec.update = &s->update;
	s->spec.rollback = s->has_rollback ? &s->rollback : NULL;
	if (s->spec.job) {
		/* a job has none (the control API's rule) */
		s->spec.update = NULL;
		s->spec.rollback = NULL;
	}
}

/* ---------------------------------------------------------------- commands */

static void clops_call_done(void *data, int status)
{
	struct clops_call *call = data;
	struct clops *o = call->o;

	if (status == 0 && call->kind == SCN_SERVICE_CREATE &&
	    o->ack_count < LIMIT_NODES_MAX) {
		if (o->ack_count == o->ack_cap) {
			size_t cap = o->ack_cap ? o->ack_cap * 2 : 16;
			struct clops_ack *p = realloc(o->acks, cap * sizeof *p);
			if (p) {
				o->acks = p;
				o->ack_cap = cap;
			}
		}
		if (o->ack_count < o->ack_cap) {
			struct clops_ack *a = &o->acks[o->ack_count++];
			memcpy(a->name, call->name, sizeof a->name);
			/* an upper bound of the write's index: libraft answers a
			 * write before it counts it applied (last applied + 1),
			 * and another manager may be ahead */
			a->index = simcluster_max_applied(o->c) + 1;
			a->removed = false;
			a->id = call->id;
		}
	}
	if (status == 0 && call->kind == SCN_SERVICE_RM)
		for (size_t i = 0; i < o->ack_count; i++)
			if (strcmp(o->acks[i].name, call->name) == 0)
				o->acks[i].removed = true;
	call->done(call->data, status);
	free(call);
}

int clops_service(struct clops *o, struct manager *m, const struct scn_cmd *cmd,
		  char *err, size_t err_size, clops_done_fn done, void *data)
{
	struct clops_call *call = calloc(1, sizeof *call);
	struct clops_spec *s = calloc(1, sizeof *s);
	const char *name =
		cmd->kind == SCN_SERVICE_RM ? cmd->u.service_name : cmd->u.service.name;
	uint64_t id;
	int rv;

	/* a leader just elected answers once it applied what came before it
	 * (its store may lack what an earlier leader acknowledged) */
	if (!manager_serves(m)) {
		free(call);
		free(s);
		return CS_ENOTLEADER;
	}
	if (!call || !s) {
		free(call);
		free(s);
		return CS_ENOMEM;
	}
	call->o = o;
	call->m = m;
	call->done = done;
	call->data = data;
	call->kind = cmd->kind;
	snprintf(call->name, sizeof call->name, "%s", name);
	if (cmd->kind == SCN_SERVICE_RM) {
		rv = control_service_remove(m, name, err, err_size, clops_call_done,
					    call);
	} else if (cmd->kind == SCN_SERVICE_CREATE) {
		clops_spec_defaults(s, name);
		if ((cmd->u.service.set & SCN_SVC_MODE) &&
		    (cmd->u.service.mode == SCN_MODE_GLOBAL ||
		     cmd->u.service.mode == SCN_MODE_GLOBAL_JOB))
			s->spec.replicas = 0;
		clops_spec_apply(s, &cmd->u.service);
		clops_spec_link(s);
		rv = control_service_create(m, &s->spec, &id, err, err_size,
					    clops_call_done, call);
		if (rv == 0)
			call->id = id;
	} else {
		const Cs__Service *cur = store_service_by_name(manager_store(m), name);
		if (!cur) {
			snprintf(err, err_size, "no service named '%s'", name);
			rv = CS_ENOENT;
		} else if (cmd->u.service.rollback) {
			rv = control_service_rollback(m, name, 0, err, err_size,
						      clops_call_done, call);
		} else {
			clops_spec_from(s, cur->spec);
			clops_spec_apply(s, &cmd->u.service);
			clops_spec_link(s);
			rv = control_service_update(m, name, &s->spec, 0, err, err_size,
						    clops_call_done, call);
		}
	}
	free(s);
	if (rv == 0 && cmd->kind != SCN_SERVICE_RM) {
		/* a start-first update may run two containers in a slot */
		const Cs__Service *cur = store_service_by_name(manager_store(m), name);
		bool start_first =
			cmd->u.service.set & SCN_SVC_UPDATE_ORDER
				? cmd->u.service.update_order == SCN_ORDER_START_FIRST
			: cur && cur->spec->update
				? cur->spec->update->order ==
					  CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST
				: false;
		simexec_allow_two_per_slot(world_exec(o->w), name, start_first);
	}
	if (rv)
		free(call);
	return rv;
}

/* The store's node for the simulated node named name, or NULL. */
static const Cs__Node *clops_store_node(const struct store *st, const char *name)
{
	for (const Cs__Node *n = store_node_next(st, NULL); n; n = store_node_next(st, n))
		if (n->hostname && strcmp(n->hostname, name) == 0)
			return n;
	return NULL;
}

int clops_node(struct clops *o, struct manager *m, const struct scn_cmd *cmd,
	       uint32_t node, char *err, size_t err_size, clops_done_fn done, void *data)
{
	const char *name = world_node_name(o->w, node);
	const Cs__Node *n;
	struct clops_call *call;
	bool set_avail = true;
	Cs__NodeAvailability avail = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	n = clops_store_node(manager_store(m), name);
	if (!n) {
		snprintf(err, err_size, "%s has not joined the cluster", name);
		return CS_ENOENT;
	}
	call = calloc(1, sizeof *call);
	if (!call)
		return CS_ENOMEM;
	call->o = o;
	call->m = m;
	call->done = done;
	call->data = data;
	call->kind = cmd->kind;
	switch (cmd->kind) {
	case SCN_NODE_DRAIN:
		avail = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
		break;
	case SCN_NODE_PAUSE:
		avail = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
		break;
	case SCN_NODE_LABEL: set_avail = false; break;
	case SCN_NODE_RM:
		/* forced, as an operator removing a dead node would */
		rv = control_node_remove(m, n->id, true, err, err_size, clops_call_done,
					 call);
		if (rv)
			free(call);
		return rv;
	case SCN_NODE_PROMOTE:
	case SCN_NODE_DEMOTE:
		rv = control_node_set_role(m, n->id,
					   cmd->kind == SCN_NODE_PROMOTE
						   ? CS__NODE_ROLE__NODE_ROLE_MANAGER
						   : CS__NODE_ROLE__NODE_ROLE_WORKER,
					   err, err_size, clops_call_done, call);
		if (rv)
			free(call);
		return rv;
	default: break;
	}
	rv = control_node_update(
		m, n->id, set_avail, avail,
		cmd->kind == SCN_NODE_LABEL ? cmd->u.node.label_key : NULL,
		cmd->kind == SCN_NODE_LABEL ? cmd->u.node.label_value : NULL, err,
		err_size, clops_call_done, call);
	if (rv)
		free(call);
	return rv;
}

void clops_image(struct clops *o, const struct scn_image *img)
{
	us_t smin = 100000, smax = 1000000;
	if (img->has_start) {
		smin = img->start.min_ms * 1000;
		smax = img->start.max_ms * 1000;
	}
	if (simexec_image(world_exec(o->w), img->name, img->pull_fail, smin, smax,
			  img->has_exit, img->exit_code, img->exit_after.min_ms * 1000,
			  img->exit_after.max_ms * 1000) == 0 &&
	    simexec_image_faults(world_exec(o->w), img->name, img->start_fail,
				 img->stop_ignore) == 0)
		simexec_image_health(world_exec(o->w), img->name, img->has_healthy_after,
				     img->healthy_after.min_ms * 1000,
				     img->healthy_after.max_ms * 1000,
				     img->has_unhealthy_after,
				     img->unhealthy_after.min_ms * 1000,
				     img->unhealthy_after.max_ms * 1000);
}

/* ---------------------------------------------------------------- conditions */

/* Whether node holds a live task of svc (desired running, not finished). */
static bool clops_node_has_live(const struct store *st, const Cs__Service *svc,
				const Cs__Node *node)
{
	for (const Cs__Task *t = store_task_next_by_node(st, node->id, NULL); t;
	     t = store_task_next_by_node(st, node->id, t))
		if (t->service_id == svc->id &&
		    t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING &&
		    (!t->status ||
		     t->status->state <= CS__TASK_STATE__TASK_STATE_RUNNING))
			return true;
	return false;
}

/* How many tasks a service should run now: its replicas, or one per node
 * that can take it (global: ready, not drained, meeting the constraints; a
 * paused node only keeps the task it has), less the places whose restart
 * policy gave up. */
uint64_t clops_desired(const struct store *st, const Cs__Service *svc)
{
	uint64_t n = 0;

	if (!svc->spec->global) {
		n = svc->spec->replicas;
		for (uint64_t slot = 1; slot <= svc->spec->replicas; slot++)
			n -= orchestrator_gave_up(st, svc, slot, 0);
		return n;
	}
	for (const Cs__Node *node = store_node_next(st, NULL); node;
	     node = store_node_next(st, node))
		if (node->state == CS__NODE_STATE__NODE_STATE_READY &&
		    node->availability !=
			    CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN &&
		    sched_node_satisfies(svc, node) &&
		    (node->availability !=
			     CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE ||
		     clops_node_has_live(st, svc, node)) &&
		    !orchestrator_gave_up(st, svc, 0, node->id))
			n++;
	return n;
}

struct clops_tally {
	const struct store *st;
	const Cs__Service *svc;
	uint64_t store_running, waiting;
};

static int clops_tally_task(void *arg, const Cs__Task *t)
{
	struct clops_tally *c = arg;
	const Cs__Node *node;

	if (!t->status)
		return 0;
	/* told to stop, and its node (up) has not said it stopped: the store
	 * does not agree with the runtime yet */
	if (t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING &&
	    t->status->state >= CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	    t->status->state <= CS__TASK_STATE__TASK_STATE_RUNNING &&
	    (node = store_node_get(c->st, t->node_id)) != NULL &&
	    node->state == CS__NODE_STATE__NODE_STATE_READY) {
		c->waiting++;
		return 0;
	}
	if (t->desired_state != CS__TASK_STATE__TASK_STATE_RUNNING)
		return 0;
	if (orchestrator_outdated(c->svc, t) && c->svc->spec->global &&
	    t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING &&
	    (node = store_node_get(c->st, t->node_id)) != NULL &&
	    node->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE)
		c->store_running++; /* a paused node keeps its old task */
	else if (orchestrator_outdated(c->svc, t))
		c->waiting++; /* an update is not done while old tasks run */
	else if (t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING)
		c->store_running++;
	else if (t->status->state < CS__TASK_STATE__TASK_STATE_RUNNING)
		c->waiting++;
	return 0;
}

/* Whether job svc is done with its run (issue 14): every place complete
 * or given up by its restart policy, nothing of it running in the store
 * or in a container. */
static bool clops_job_converged(struct clops *o, const struct store *st,
				const Cs__Service *svc, char *got, size_t got_size)
{
	struct jobs_progress p;
	size_t real = simexec_running(world_exec(o->w), svc->spec->name, -1);

	jobs_progress(st, svc, &p);
	if (real == 0 && jobs_settled(st, svc))
		return true;
	snprintf(got, got_size,
		 "%s: job %" PRIu64 " of %" PRIu64 " completed, %" PRIu64
		 " running in the store, %zu containers",
		 svc->spec->name, p.completed, p.desired, p.running, real);
	return false;
}

/* Whether the service has what it wants: the store says so, the containers
 * agree, and nothing waits. */
static bool clops_service_converged(struct clops *o, const struct store *st,
				    const Cs__Service *svc, char *got, size_t got_size)
{
	uint64_t want, store_running, waiting;
	struct clops_tally c = {.st = st, .svc = svc};
	size_t real;

	if (jobs_is_job(svc))
		return clops_job_converged(o, st, svc, got, got_size);
	want = clops_desired(st, svc);
	real = simexec_running(world_exec(o->w), svc->spec->name, -1);
	if (real != want) {
		/* the runtime alone says no: the store need not be read (a
		 * wait on a large service would read it after every event) */
		snprintf(got, got_size, "%s: %" PRIu64 " wanted, %zu containers running",
			 svc->spec->name, want, real);
		return false;
	}
	(void)store_task_scan_service(st, svc->id, clops_tally_task, &c);
	store_running = c.store_running;
	waiting = c.waiting;
	if (store_running == want && waiting == 0)
		return true;
	snprintf(got, got_size,
		 "%s: %" PRIu64 " wanted, %" PRIu64
		 " running in the store, %zu containers, %" PRIu64
		 " not settled (starting, outdated or stopping)",
		 svc->spec->name, want, store_running, real, waiting);
	return false;
}

/* Whether node i can never join: it holds no certificate the leader
 * accepts, so it asks with its join token, and that token names a root
 * that is not the cluster's any more (`node add ... token=initial` after
 * a `ca rotate`, or a node given the token of its moment whose join came
 * after a rotation finished). Its transport refuses every manager (none
 * presents the token's root), as SwarmKit's joiner refuses a CA that does
 * not match its token's digest: it cannot reach the leader, by design, and
 * waits for an operator to hand it the current token. A node that holds a
 * certificate the leader accepts never counts here, whatever its token. */
static bool clops_token_stale(struct clops *o, const Cs__Cluster *cl, int64_t leader,
			      uint32_t i)
{
	struct env_identity id;
	uint8_t pin[ENV_DIGEST_BYTES], root[ENV_DIGEST_BYTES];
	char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
	const char *token = simcluster_join_token(o->c, world_node_name(o->w, i));

	if (leader < 0 || !cl || cl->ca_cert.len == 0 || !token || !*token)
		return false;
	if (world_pki_identity(o->w, i, (uint32_t)leader, &id))
		return false; /* it holds a certificate: its token is not used */
	if (pki_token_parse(token, pin, secret, why) != 0)
		return false;
	pki_digest(cl->ca_cert.data, cl->ca_cert.len, root);
	return memcmp(pin, root, sizeof root) != 0;
}

/* Whether every node whose daemon runs, and that the leader can reach, is
 * READY in the store: until a node has joined, services cannot be judged
 * converged (a global service would be, vacuously, before any node
 * registers). A node whose join token names a root the cluster no longer
 * has cannot reach it (clops_token_stale). */
static bool clops_nodes_agree(struct clops *o, const struct store *st, char *got,
			      size_t got_size)
{
	size_t n = world_node_count(o->w);
	int64_t leader = simcluster_leader(o->c);
	bool *ready = calloc(n ? n : 1, sizeof *ready);
	bool ok = true;

	if (!ready) {
		snprintf(got, got_size, "out of memory");
		return false;
	}
	for (const Cs__Node *nd = store_node_next(st, NULL); nd;
	     nd = store_node_next(st, nd)) {
		int64_t i = nd->hostname ? world_node_find(o->w, nd->hostname) : -1;
		if (i >= 0 && nd->state == CS__NODE_STATE__NODE_STATE_READY)
			ready[i] = true;
	}
	for (uint32_t i = 0; i < n && ok; i++) {
		if (ready[i] || !world_node_is_up(o->w, i) ||
		    !world_node_state(o->w, i) ||
		    simcluster_refused(o->c, world_node_name(o->w, i)))
			continue; /* (a refused node's daemon gives up; a
				   * stranger runs nothing) */
		if (leader >= 0 && world_net_cut(o->w, (uint32_t)leader, i))
			continue; /* cut off: it cannot say it is up */
		if (clops_token_stale(o, store_cluster(st), leader, i))
			continue; /* its token from before a rotation */
		snprintf(got, got_size, "%s is up but not ready in the store",
			 world_node_name(o->w, i));
		ok = false;
	}
	free(ready);
	return ok;
}

struct clops_state_count {
	int state;
	uint64_t count;
};

static int clops_count_state(void *arg, const Cs__Task *t)
{
	struct clops_state_count *c = arg;
	c->count += t->status && (int)t->status->state == c->state;
	return 0;
}

/* The id of the service the scenario last created under name, once
 * removed (0: none): `store tasks NAME` then counts its tasks, which may
 * outlive it (still stopping, or on an unreachable node). */
static uint64_t clops_removed_id(const struct clops *o, const char *name)
{
	for (size_t i = o->ack_count; i-- > 0;)
		if (strcmp(o->acks[i].name, name) == 0)
			return o->acks[i].removed ? o->acks[i].id : 0;
	return 0;
}

/* The name of the node a condition names: `leader` is whoever leads now.
 * Returns false (with why in got) when there is none. */
static bool clops_cond_node(struct clops *o, struct scn_node ref, char *name,
			    size_t name_size, char *got, size_t got_size)
{
	if (ref.kind == SCN_NODE_LEADER) {
		int64_t i = simcluster_leader(o->c);
		if (i < 0) {
			snprintf(got, got_size, "no leader");
			return false;
		}
		snprintf(name, name_size, "%s", world_node_name(o->w, (uint32_t)i));
		return true;
	}
	scn_node_name(ref, name, name_size);
	return true;
}

/* Whether node is healthy now: its daemon runs, its runtime answers and
 * its disk works (vocabulary of issue 12). */
static bool clops_node_healthy(const struct clops *o, uint32_t node)
{
	return world_node_is_up(o->w, node) &&
	       !simexec_runtime_faulted(world_exec(o->w), node) &&
	       !world_disk_faulted(o->w, node);
}

/* A summary of every node's health and incarnation: a verdict that reads
 * health is judged again when it changes. */
static uint64_t clops_health(const struct clops *o)
{
	uint64_t h = 0;
	us_t now_us = world_now_us(o->w);

	/* no runtime or disk faulted: health is up or down, and every start
	 * and kill counts in world_incarnations (O(1); the walk below, after
	 * every event, cost a 1,000-node hour 60 times its time) */
	if (now_us >= simexec_faults_until(world_exec(o->w)) &&
	    now_us >= world_disk_faults_until(o->w))
		return hash_mix64(world_incarnations(o->w) ^ 0x6865616c7468ull);
	for (uint32_t i = 0; i < world_node_count(o->w); i++)
		h = hash_mix64(h ^
			       ((uint64_t)world_node_incarnation(o->w, i) << 2 |
				(uint64_t)clops_node_healthy(o, i) << 1) ^
			       i);
	return h;
}

/* The store's task of a container's task id (hex), or NULL. */
static const Cs__Task *clops_task_of(const struct store *st, const char *task_id)
{
	char *end;
	uint64_t id = strtoull(task_id, &end, 16);
	return *end || end == task_id ? NULL : store_task_get(st, id);
}

/* Invariant 8, as part of `converged`: no container runs, on a healthy
 * node the leader can reach (and that was not removed), for a task the
 * store does not hold or does not want running. */
struct clops_leftover {
	const struct clops *o;
	const struct store *st;
	int64_t leader;
	char *got;
	size_t got_size;
	bool found;
};

static void clops_leftover_fn(void *ctx, const struct simexec_info *i)
{
	struct clops_leftover *l = ctx;
	const Cs__Task *t;

	if (l->found || i->state != ENV_CTL_RUNNING || !clops_node_healthy(l->o, i->node))
		return;
	if (simcluster_refused(l->o->c, world_node_name(l->o->w, i->node)))
		return;
	if (l->leader >= 0 && world_net_cut(l->o->w, (uint32_t)l->leader, i->node))
		return; /* cut off: it cannot hear that its task should stop */
	t = clops_task_of(l->st, i->task_id);
	if (t && t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING)
		return;
	snprintf(l->got, l->got_size, "a container of %s task %s still runs on %s (%s)",
		 i->service_name, i->task_id, world_node_name(l->o->w, i->node),
		 t ? "told to stop" : "task not in the store");
	l->found = true;
}

static bool clops_no_leftovers(struct clops *o, const struct store *st, char *got,
			       size_t got_size)
{
	struct clops_leftover l = {.o = o,
				   .st = st,
				   .leader = simcluster_leader(o->c),
				   .got = got,
				   .got_size = got_size};
	simexec_foreach(world_exec(o->w), clops_leftover_fn, &l);
	return !l.found;
}

/* Invariant 9 (issue 17), as part of `converged`: every running task's
 * address is reachable from every other running task on a network they
 * share, among tasks the store wants running on healthy nodes the leader
 * can reach. */
static bool clops_reach_skip(void *ctx, uint32_t node, const char *task_id)
{
	struct clops_leftover *l = ctx;
	const Cs__Task *t;
	if (!clops_node_healthy(l->o, node) ||
	    simcluster_refused(l->o->c, world_node_name(l->o->w, node)))
		return true;
	if (l->leader >= 0 && world_net_cut(l->o->w, (uint32_t)l->leader, node))
		return true;
	t = clops_task_of(l->st, task_id);
	return !t || t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING;
}

static bool clops_reach_all(struct clops *o, const struct store *st, char *got,
			    size_t got_size)
{
	struct clops_leftover l = {.o = o, .st = st, .leader = simcluster_leader(o->c)};
	return simexec_check_reach(world_exec(o->w), clops_reach_skip, &l, got, got_size);
}

/* Invariant 10 (issue 17, the routing mesh), part of `converged`: on every
 * node the store says READY, healthy, not cut off from the leader, whose
 * machine has a data plane, every ingress port a service publishes (as
 * allocated in the store) reaches only running tasks of that service, and
 * every one of them the store wants running on a healthy node the leader
 * can reach (invariant 9's set); and no port answers there for a service
 * that does not publish it (no stale answer after a change or a removal). */
struct clops_mesh_stale {
	const struct store *st;
	const char *node;
	char *got;
	size_t got_size;
	bool found;
};

static bool clops_publishes(const Cs__Service *svc, uint32_t port,
			    enum env_port_proto proto)
{
	for (size_t i = 0; svc && i < svc->n_ports; i++) {
		const Cs__PortConfig *p = svc->ports[i];
		enum env_port_proto pp =
			p->protocol == CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP ? ENV_PORT_UDP
			: p->protocol == CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP
				? ENV_PORT_SCTP
				: ENV_PORT_TCP;
		if (p->mode == CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS &&
		    p->published == port && pp == proto)
			return true;
	}
	return false;
}

static void clops_mesh_stale_fn(void *ctx, const char *service, uint32_t port,
				enum env_port_proto proto)
{
	struct clops_mesh_stale *m = ctx;
	if (m->found ||
	    clops_publishes(store_service_by_name(m->st, service), port, proto))
		return;
	snprintf(m->got, m->got_size,
		 "%s: port %u/%s still answers for %s, which does not publish it",
		 m->node, port,
		 proto == ENV_PORT_UDP	  ? "udp"
		 : proto == ENV_PORT_SCTP ? "sctp"
					  : "tcp",
		 service);
	m->found = true;
}

static bool clops_mesh_all(struct clops *o, const struct store *st, char *got,
			   size_t got_size)
{
	struct clops_leftover l = {.o = o, .st = st, .leader = simcluster_leader(o->c)};
	const struct simexec *x = world_exec(o->w);

	for (const Cs__Node *nd = store_node_next(st, NULL); nd;
	     nd = store_node_next(st, nd)) {
		int64_t i = nd->hostname ? world_node_find(o->w, nd->hostname) : -1;
		struct clops_mesh_stale m = {
			.st = st, .node = nd->hostname, .got = got, .got_size = got_size};
		if (i < 0 || nd->state != CS__NODE_STATE__NODE_STATE_READY ||
		    !clops_node_healthy(o, (uint32_t)i) ||
		    simcluster_refused(o->c, nd->hostname) ||
		    !simcluster_has_data_plane(o->c, nd->hostname))
			continue;
		if (l.leader >= 0 && world_net_cut(o->w, (uint32_t)l.leader, (uint32_t)i))
			continue;
		for (const Cs__Service *svc = store_service_next(st, NULL); svc;
		     svc = store_service_next(st, svc)) {
			for (size_t p = 0; p < svc->n_ports; p++) {
				const Cs__PortConfig *pc = svc->ports[p];
				if (pc->mode !=
					    CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS ||
				    !pc->published || !svc->spec || !svc->spec->name)
					continue;
				if (!simexec_check_mesh(
					    x, (uint32_t)i, pc->published,
					    pc->protocol == CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP
						    ? ENV_PORT_UDP
					    : pc->protocol ==
							    CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP
						    ? ENV_PORT_SCTP
						    : ENV_PORT_TCP,
					    svc->spec->name, clops_reach_skip, &l, got,
					    got_size))
					return false;
			}
		}
		simexec_mesh_ports(x, (uint32_t)i, clops_mesh_stale_fn, &m);
		if (m.found)
			return false;
	}
	return true;
}

static int clops_cond_judge(struct clops *o, struct manager *leader,
			    const struct scn_cond *cond, char *got, size_t got_size);

/* Judges cond, or gives its last verdict when nothing it reads changed: a
 * wait on `store tasks web ... == 40000` would otherwise walk 40,000 tasks
 * after every event. */
int clops_cond(struct clops *o, struct manager *leader, const struct scn_cond *cond,
	       char *got, size_t got_size)
{
	uint64_t lid = leader ? manager_raft_id(leader) : 0;
	uint64_t applied = leader ? manager_applied(leader) : 0;
	uint64_t changes = simexec_changes(world_exec(o->w));
	uint64_t health = cond->kind == SCN_COND_CONVERGED ? clops_health(o) : 0;
	struct clops_verdict *v = NULL;
	int rv;

	for (size_t i = 0; i < CLOPS_VERDICTS; i++) {
		if (o->verdicts[i].cond == cond) {
			v = &o->verdicts[i];
			break;
		}
	}
	/* `leader` in a condition names a node that may change on its own;
	 * judged every time */
	if (v && v->leader == lid && v->applied == applied && v->changes == changes &&
	    v->health == health &&
	    !(cond->has_node && cond->node.kind == SCN_NODE_LEADER) &&
	    !(cond->kind == SCN_COND_NODE_STATUS && cond->node.kind == SCN_NODE_LEADER)) {
		str_copy(got, got_size, v->got);
		return v->result;
	}
	rv = clops_cond_judge(o, leader, cond, got, got_size);
	if (!v) {
		v = &o->verdicts[o->verdict_next];
		o->verdict_next = (o->verdict_next + 1) % CLOPS_VERDICTS;
	}
	v->cond = cond;
	v->leader = lid;
	v->applied = applied;
	v->changes = changes;
	v->health = health;
	v->result = rv;
	str_copy(v->got, sizeof v->got, rv == 1 ? "" : got);
	return rv;
}

static int clops_cond_judge(struct clops *o, struct manager *leader,
			    const struct scn_cond *cond, char *got, size_t got_size)
{
	const struct store *st = leader ? manager_store(leader) : NULL;
	uint64_t count = 0;

	switch (cond->kind) {
	case SCN_COND_RUNNING: {
		int64_t node = -1;
		if (cond->has_node) {
			char name[32];
			if (!clops_cond_node(o, cond->node, name, sizeof name, got,
					     got_size))
				return 0;
			node = world_node_find(o->w, name);
			if (node < 0) {
				snprintf(got, got_size, "no node %s", name);
				return 0;
			}
		}
		count = simexec_running(world_exec(o->w), cond->service, node);
		break;
	}
	case SCN_COND_STORE_TASKS: {
		const Cs__Service *svc;
		if (!st) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
		svc = store_service_by_name(st, cond->service);
		{
			/* a service of that name, or the last one created under
			 * it (since removed): its tasks may outlive it */
			uint64_t id = svc ? svc->id : clops_removed_id(o, cond->service);
			struct clops_state_count c = {.state = (int)cond->state};
			if (id)
				(void)store_task_scan_service(st, id, clops_count_state,
							      &c);
			count = c.count;
		}
		break;
	}
	case SCN_COND_NODES_READY:
		if (!st) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
		for (const Cs__Node *n = store_node_next(st, NULL); n;
		     n = store_node_next(st, n))
			count += n->state == CS__NODE_STATE__NODE_STATE_READY;
		break;
	case SCN_COND_NODE_STATUS: {
		char name[32];
		const Cs__Node *n;
		if (!st) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
		if (!clops_cond_node(o, cond->node, name, sizeof name, got, got_size))
			return 0;
		n = clops_store_node(st, name);
		if (!n) {
			snprintf(got, got_size, "%s not in the store", name);
			return 0;
		}
		if (cond->node_role != SCN_ROLE_ANY) {
			/* the role its record says it runs as (its session's
			 * certificate), and no manager status left on a worker */
			bool manager = n->role == CS__NODE_ROLE__NODE_ROLE_MANAGER;
			if (cond->node_role == SCN_ROLE_MANAGER
				    ? manager
				    : !manager && !n->manager_status)
				return 1;
			snprintf(got, got_size, "%s is a %s%s", name,
				 manager ? "manager" : "worker",
				 !manager && n->manager_status ? " with a manager status"
							       : "");
			return 0;
		}
		if (cond->node_ready ? n->state == CS__NODE_STATE__NODE_STATE_READY
				     : n->state == CS__NODE_STATE__NODE_STATE_DOWN)
			return 1;
		snprintf(got, got_size, "%s is %s", name,
			 n->state == CS__NODE_STATE__NODE_STATE_READY  ? "ready"
			 : n->state == CS__NODE_STATE__NODE_STATE_DOWN ? "down"
								       : "unknown");
		return 0;
	}
	case SCN_COND_JOB_COMPLETED: {
		const Cs__Service *svc;
		struct jobs_progress p;
		if (!st) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
		svc = store_service_by_name(st, cond->service);
		if (!svc || !jobs_is_job(svc)) {
			snprintf(got, got_size, "%s",
				 svc ? "not a job" : "no such service");
			return 0;
		}
		/* a global job is judged once every node up is ready in the
		 * store (as converged: before, it is vacuously done) */
		if (svc->spec->global && !clops_nodes_agree(o, st, got, got_size))
			return 0;
		jobs_progress(st, svc, &p);
		if (p.completed == p.desired)
			return 1;
		snprintf(got, got_size,
			 "%" PRIu64 " of %" PRIu64 " completed, %" PRIu64
			 " running, %" PRIu64 " given up",
			 p.completed, p.desired, p.running, p.gave_up);
		return 0;
	}
	case SCN_COND_CONVERGED:
		if (!st) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
		if (!clops_nodes_agree(o, st, got, got_size))
			return 0;
		for (const Cs__Service *svc = store_service_next(st, NULL); svc;
		     svc = store_service_next(st, svc))
			if (!clops_service_converged(o, st, svc, got, got_size))
				return 0;
		if (!clops_no_leftovers(o, st, got, got_size))
			return 0;
		if (!clops_reach_all(o, st, got, got_size))
			return 0;
		if (!clops_mesh_all(o, st, got, got_size))
			return 0;
		return 1;
	default: snprintf(got, got_size, "not a cluster condition"); return 0;
	}
	if (scn_op_holds(cond->op, count, cond->count))
		return 1;
	snprintf(got, got_size, "%" PRIu64, count);
	return 0;
}

/* ---------------------------------------------------------------- invariants */

/* Invariant 4: every task placed and not finished is on a node that passes
 * its service's constraints and has room for the reservations there. */
static int clops_placed_cmp(const void *a, const void *b)
{
	const struct clops_placed *x = a, *y = b;
	return x->task < y->task ? -1 : x->task > y->task;
}

/* Whether task t on node was ASSIGNED there at the last check already:
 * then it was judged then, against the labels and spec of that time. */
static bool clops_placed_before(const struct clops *o, const Cs__Task *t)
{
	struct clops_placed key = {.task = t->id};
	const struct clops_placed *hit =
		o->placed_count ? bsearch(&key, o->placed, o->placed_count, sizeof key,
					  clops_placed_cmp)
				: NULL;
	return hit && hit->node == t->node_id;
}

/* Remembers t as ASSIGNED at this check (for the next one). */
static void clops_placed_note(struct clops *o, const Cs__Task *t)
{
	if (o->placed_next_count == o->placed_cap) {
		size_t cap = o->placed_cap ? 2 * o->placed_cap : 64;
		struct clops_placed *a = realloc(o->placed, cap * sizeof *a);
		struct clops_placed *b =
			a ? realloc(o->placed_next, cap * sizeof *b) : NULL;
		if (a)
			o->placed = a;
		if (!b) {
			o->placed_oom = true; /* judged again next time: still safe */
			return;
		}
		o->placed_next = b;
		o->placed_cap = cap;
	}
	o->placed_next[o->placed_next_count++] =
		(struct clops_placed){.task = t->id, .node = t->node_id};
}

/* One walk of invariant 4 over every task in (node id, task id) order: the
 * node of the tasks being read, what it holds so far, and one service
 * looked up (a service's tasks come in runs). */
struct clops_place_walk {
	struct clops *o;
	const struct store *st;
	char *msg;
	size_t size;
	bool ok;
	uint64_t node_id;     /* the tasks' node; 0 before the first */
	const Cs__Node *node; /* NULL: not in the store (its tasks are skipped) */
	uint64_t cpu, mem;
	bool placed_now;
	uint64_t svc_id;
	const Cs__Service *svc;
};

/* The node just read ends: a new placement there must leave room for
 * every reservation it holds. */
static void clops_place_node_end(struct clops_place_walk *p)
{
	const Cs__Node *n = p->node;

	if (p->ok && n && p->placed_now && n->resources &&
	    (p->cpu > n->resources->millicpus || p->mem > n->resources->memory_bytes)) {
		snprintf(p->msg, p->size,
			 "invariant 4: a task was placed on %s, whose reservations "
			 "(%" PRIu64 " millicpus, %" PRIu64 " bytes) then exceed its "
			 "resources",
			 n->hostname, p->cpu, p->mem);
		p->ok = false;
	}
}

static int clops_place_visit(void *arg, const Cs__Task *t)
{
	struct clops_place_walk *p = arg;
	const Cs__Service *svc;
	const Cs__TaskSpec *ts;

	if (t->node_id != p->node_id) {
		clops_place_node_end(p);
		if (!p->ok)
			return 1; /* the first node that breaks it is named */
		p->node_id = t->node_id;
		p->node = store_node_get(p->st, t->node_id);
		p->cpu = p->mem = 0;
		p->placed_now = false;
	}
	if (!p->node)
		return 0; /* a task of a node the store lacks: not judged */
	if (t->service_id != p->svc_id || !p->svc) {
		p->svc_id = t->service_id;
		p->svc = store_service_get(p->st, t->service_id);
	}
	svc = p->svc;
	if (!svc || !t->status ||
	    t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED ||
	    t->status->state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return 0;
	if (t->status->state == CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	    t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING) {
		clops_placed_note(p->o, t);
		if (!clops_placed_before(p->o, t) && !orchestrator_outdated(svc, t)) {
			p->placed_now = true;
			if (p->ok && !sched_node_satisfies(svc, p->node)) {
				snprintf(p->msg, p->size,
					 "invariant 4: a task of %s was "
					 "placed on %s, which fails its "
					 "constraints",
					 svc->spec->name, p->node->hostname);
				p->ok = false;
			}
		}
	}
	/* what the node holds: every task placed and not finished (a
	 * stopping task still runs) */
	ts = svc->spec->task;
	if (ts && ts->reservations) {
		p->cpu += ts->reservations->millicpus;
		p->mem += ts->reservations->memory_bytes;
	}
	return 0;
}

static bool clops_check_placements(struct clops *o, const struct store *st, char *msg,
				   size_t size)
{
	/* A placement is judged when it is made: a task newly ASSIGNED (not
	 * so at the last check) must be on a node that passes the constraints
	 * of the spec it was made for, and the node's reservations, new one
	 * included, must fit. A label or spec changed later makes a placed
	 * task ineligible; the orchestrator then moves it: not a violation.
	 * One scan of the tasks by node (O(tasks)), not a search per task. */
	struct clops_place_walk p = {
		.o = o, .st = st, .msg = msg, .size = size, .ok = true};

	o->placed_next_count = 0;
	o->placed_oom = false;
	if (store_task_scan_by_node(st, 1, clops_place_visit, &p) == 0)
		clops_place_node_end(&p);
	if (o->placed_oom) {
		o->placed_count = 0; /* nothing counts as judged */
	} else {
		struct clops_placed *t = o->placed;
		o->placed = o->placed_next;
		o->placed_next = t;
		o->placed_count = o->placed_next_count;
		if (o->placed_count > 1)
			qsort(o->placed, o->placed_count, sizeof *o->placed,
			      clops_placed_cmp);
	}
	return p.ok;
}

/* Invariant 3, judged with the store when the runtime flags something: a
 * task in two containers is always a violation; two running containers in
 * one slot are one when the cluster wants both (desired RUNNING in the
 * leader's store) beyond what a start-first update allows. A container left
 * on a partitioned node whose task the cluster has already replaced (and
 * told to stop) is SwarmKit's behaviour under a partition, not a double
 * placement. */
struct clops_running {
	char svc[64];
	uint64_t slot;
	char task[32];
	uint32_t node;
};

struct clops_collect {
	const struct store *st;
	struct clops_running *v;
	size_t n, cap;
	bool oom;
};

static void clops_collect_fn(void *ctx, const struct simexec_info *i)
{
	struct clops_collect *c = ctx;
	const Cs__Task *t;
	uint64_t id;
	char *end;

	if (i->state != ENV_CTL_RUNNING || i->slot == 0)
		return;
	id = strtoull(i->task_id, &end, 16);
	t = *end ? NULL : store_task_get(c->st, id);
	if (!t || t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return; /* told to stop, or gone: the cluster does not want it */
	if (grow_array((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) {
		c->oom = true;
		return;
	}
	snprintf(c->v[c->n].svc, sizeof c->v[c->n].svc, "%s", i->service_name);
	snprintf(c->v[c->n].task, sizeof c->v[c->n].task, "%s", i->task_id);
	c->v[c->n].slot = i->slot;
	c->v[c->n].node = i->node;
	c->n++;
}

static int clops_running_cmp(const void *pa, const void *pb)
{
	const struct clops_running *a = pa, *b = pb;
	int r = strcmp(a->svc, b->svc);
	if (r)
		return r;
	if (a->slot != b->slot)
		return a->slot < b->slot ? -1 : 1;
	return strcmp(a->task, b->task);
}

static bool clops_check_slots(struct clops *o, const struct store *st, char *msg,
			      size_t size)
{
	struct clops_collect c = {.st = st};
	bool ok = true;

	simexec_foreach(world_exec(o->w), clops_collect_fn, &c);
	if (c.oom || c.n == 0) {
		free(c.v);
		return true; /* nothing wanted runs twice (or cannot judge) */
	}
	qsort(c.v, c.n, sizeof *c.v, clops_running_cmp);
	for (size_t i = 0; i < c.n && ok; i++) {
		size_t j = i;
		const Cs__Service *svc = store_service_by_name(st, c.v[i].svc);
		size_t limit =
			svc && svc->spec->update &&
					svc->spec->update->order ==
						CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST
				? 2
				: 1;
		while (j + 1 < c.n && strcmp(c.v[j + 1].svc, c.v[i].svc) == 0 &&
		       c.v[j + 1].slot == c.v[i].slot)
			j++;
		if (j - i + 1 > limit) {
			snprintf(
				msg, size,
				"invariant 3: service %s slot %" PRIu64
				" runs %zu tasks the "
				"cluster wants running (at most %zu): task %s on %s, task %s "
				"on %s",
				c.v[i].svc, c.v[i].slot, j - i + 1, limit, c.v[i].task,
				world_node_name(o->w, c.v[i].node), c.v[i + 1].task,
				world_node_name(o->w, c.v[i + 1].node));
			ok = false;
		}
		i = j;
	}
	free(c.v);
	return ok;
}

/* Invariant 6: once the store says a task is terminal (COMPLETE, SHUTDOWN,
 * FAILED, REJECTED: only its agent reports these), no container of that
 * task runs. Judged only while the container's node is healthy (daemon up,
 * runtime and disk not faulted), and only after the agent had the chance
 * to act: a container flagged for CLOPS_INV6_GRACE_US of healthy time (a
 * start that failed at the daemon but happened, cleaned up by labels) is a
 * violation. */
#define CLOPS_INV6_GRACE_US (30ull * 1000000)
/* Judged at most this often: a scan reads every container, so judging
 * after each change made a node of N tasks cost N^2 (50,000 tasks: minutes
 * of CPU). A suspect is first seen at most this late, against a grace of
 * CLOPS_INV6_GRACE_US. */
#define CLOPS_INV6_SCAN_US (1000000ull)
_Static_assert(CLOPS_INV6_SCAN_US * 10 <= CLOPS_INV6_GRACE_US,
	       "the scan period is small against the grace");

static bool clops_terminal(const Cs__Task *t)
{
	if (!t || !t->status)
		return false;
	switch (t->status->state) {
	case CS__TASK_STATE__TASK_STATE_COMPLETE:
	case CS__TASK_STATE__TASK_STATE_SHUTDOWN:
	case CS__TASK_STATE__TASK_STATE_FAILED:
	case CS__TASK_STATE__TASK_STATE_REJECTED: return true;
	default: return false;
	}
}

static int clops_suspect_cmp(const void *pa, const void *pb)
{
	const struct clops_suspect *a = pa, *b = pb;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return strcmp(a->task, b->task);
}

struct clops_inv6 {
	struct clops *o;
	const struct store *st;
	bool by_ids; /* o->term_ids holds the terminal tasks (else: look up) */
	struct clops_suspect *next;
	size_t n, cap;
	bool oom;
	char *msg;
	size_t size;
	bool broken;
};

/* When node's current healthy stretch began. */
static us_t clops_healthy_since(const struct clops *o, uint32_t node)
{
	us_t since = world_node_up_since(o->w, node);
	us_t rt = simexec_runtime_healthy_from(world_exec(o->w), node);
	us_t disk = world_disk_healthy_from(o->w, node);
	if (rt > since)
		since = rt;
	return disk > since ? disk : since;
}

static int clops_term_visit(void *arg, const Cs__Task *t)
{
	struct clops *o = arg;
	if (!clops_terminal(t))
		return 0;
	if (grow_array((void **)&o->term_ids, &o->term_cap, o->term_count + 1,
		       sizeof *o->term_ids))
		return 1; /* out of memory: each container looks its task up */
	o->term_ids[o->term_count++] = t->id;
	return 0;
}

/* Reads the ids of the store's terminal tasks into o->term_ids, ascending.
 * Returns false when out of memory (nothing to rely on). */
static bool clops_term_read(struct clops *o, const struct store *st)
{
	o->term_count = 0;
	if (store_task_scan_by_node(st, 0, clops_term_visit, o) != 0)
		return false;
	if (o->term_count > 1)
		qsort(o->term_ids, o->term_count, sizeof *o->term_ids, sort_u64_cmp);
	return true;
}

static void clops_inv6_fn(void *ctx, const struct simexec_info *i)
{
	struct clops_inv6 *v = ctx;
	struct clops *o = v->o;
	struct clops_suspect key, *old, *s;
	const Cs__Task *t;
	us_t now_us = world_now_us(o->w), since;

	if (v->broken || i->state != ENV_CTL_RUNNING || !clops_node_healthy(o, i->node))
		return;
	if (v->by_ids) {
		char *end;
		uint64_t id = strtoull(i->task_id, &end, 16);
		if (*end || end == i->task_id || o->term_count == 0 ||
		    !bsearch(&id, o->term_ids, o->term_count, sizeof id, sort_u64_cmp))
			return; /* as clops_task_of: no task, or not terminal */
	}
	t = clops_task_of(v->st, i->task_id);
	if (!clops_terminal(t))
		return;
	key.node = i->node;
	snprintf(key.task, sizeof key.task, "%s", i->task_id);
	old = o->suspect_count ? bsearch(&key, o->suspects, o->suspect_count, sizeof key,
					 clops_suspect_cmp)
			       : NULL;
	since = old ? old->since_us : now_us;
	if (clops_healthy_since(o, i->node) > since)
		since = clops_healthy_since(o, i->node);
	if (now_us >= since + CLOPS_INV6_GRACE_US) {
		snprintf(v->msg, v->size,
			 "invariant 6: task %s of %s is %s in the store (its agent said "
			 "so), yet its container has run on %s for %.1fs since",
			 i->task_id, i->service_name,
			 scn_task_state_name((enum scn_task_state)t->status->state),
			 world_node_name(o->w, i->node), (double)(now_us - since) / 1e6);
		v->broken = true;
		return;
	}
	if (grow_array((void **)&v->next, &v->cap, v->n + 1, sizeof *v->next)) {
		v->oom = true;
		return;
	}
	s = &v->next[v->n++];
	*s = key;
	s->since_us = since;
}

static bool clops_check_terminal(struct clops *o, struct manager *leader, char *msg,
				 size_t size)
{
	struct clops_inv6 v = {.o = o, .msg = msg, .size = size};
	uint64_t changes = simexec_changes(world_exec(o->w));
	uint64_t applied = manager_applied(leader), lid = manager_raft_id(leader);
	uint64_t health = clops_health(o);
	us_t now_us = world_now_us(o->w);

	if (o->inv6_off)
		return true;
	/* judged once per CLOPS_INV6_SCAN_US at most, and not again while
	 * nothing changed and nothing is suspect */
	if (o->inv6_checked && (now_us < o->inv6_at_us + CLOPS_INV6_SCAN_US ||
				(o->suspect_count == 0 && o->inv6_changes == changes &&
				 o->inv6_applied == applied && o->inv6_leader == lid &&
				 o->inv6_health == health)))
		return true;
	v.st = manager_store(leader);
	v.by_ids = clops_term_read(o, v.st);
	/* no terminal task: no container can be a suspect (the scan would
	 * find none) */
	if (!v.by_ids || o->term_count > 0)
		simexec_foreach(world_exec(o->w), clops_inv6_fn, &v);
	if (v.broken) {
		free(v.next);
		return false;
	}
	if (v.oom) {
		free(v.next); /* judged again next time */
		o->inv6_checked = false;
		return true;
	}
	free(o->suspects);
	o->suspects = v.next;
	o->suspect_count = v.n;
	o->suspect_cap = v.cap;
	o->inv6_checked = true;
	o->inv6_changes = changes;
	o->inv6_applied = applied;
	o->inv6_leader = lid;
	o->inv6_health = health;
	o->inv6_at_us = now_us;
	return true;
}

void clops_inv6_enable(struct clops *o, bool on)
{
	o->inv6_off = !on;
}

bool clops_check(struct clops *o, struct manager *leader, char *msg, size_t size)
{
	const struct store *st;
	uint64_t applied;

	/* a task twice is always wrong; a slot twice, when the cluster wants
	 * both (judged again only when what runs or the store changed) */
	if (simexec_tasks_twice(world_exec(o->w))) {
		simexec_check(world_exec(o->w), msg, size);
		return false;
	}
	if (leader && simexec_slots_over(world_exec(o->w))) {
		uint64_t changes = simexec_changes(world_exec(o->w));
		if (!(o->slots_ok && o->slots_changes == changes &&
		      o->slots_index == manager_applied(leader) &&
		      o->slots_leader == manager_raft_id(leader))) {
			o->slots_ok = false;
			if (!clops_check_slots(o, manager_store(leader), msg, size))
				return false;
			o->slots_ok = true;
			o->slots_changes = changes;
			o->slots_index = manager_applied(leader);
			o->slots_leader = manager_raft_id(leader);
		}
	}
	if (!leader)
		return true;
	if (!clops_check_terminal(o, leader, msg, size))
		return false;
	st = manager_store(leader);
	applied = manager_applied(leader);
	if (applied == o->checked_index && manager_raft_id(leader) == o->checked_leader)
		return true; /* nothing new in the store */
	o->checked_index = applied;
	o->checked_leader = manager_raft_id(leader);
	if (!clops_check_placements(o, st, msg, size))
		return false;
	/* Invariant 5: what was acknowledged is there, once the leader has
	 * applied as far as the answer */
	for (size_t i = 0; i < o->ack_count; i++) {
		const struct clops_ack *a = &o->acks[i];
		if (a->removed || applied < a->index)
			continue;
		if (!store_service_by_name(st, a->name)) {
			snprintf(msg, size,
				 "invariant 5: service %s, acknowledged at index %" PRIu64
				 ", is missing from the leader's store at %" PRIu64,
				 a->name, a->index, applied);
			return false;
		}
	}
	return true;
}

void clops_forget_after(struct clops *o, uint64_t index)
{
	for (size_t i = 0; i < o->ack_count; i++)
		if (o->acks[i].index > index)
			o->acks[i].removed = true;
	o->checked_index = 0;
	o->checked_leader = 0;
}

/* ---------------------------------------------------------------- networks (issue 15) */

int clops_network(struct clops *o, struct manager *m, const struct scn_cmd *cmd,
		  char *err, size_t err_size, clops_done_fn done, void *data)
{
	struct clops_call *call;
	uint64_t id;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	call = calloc(1, sizeof *call);
	if (!call)
		return CS_ENOMEM;
	call->o = o;
	call->m = m;
	call->done = done;
	call->data = data;
	call->kind = cmd->kind;
	snprintf(call->name, sizeof call->name, "%s", cmd->u.network.name);
	if (cmd->kind == SCN_NETWORK_RM) {
		rv = control_network_remove(m, cmd->u.network.name, err, err_size,
					    clops_call_done, call);
	} else {
		Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
		spec.name = cmd->u.network.name;
		if (cmd->u.network.subnet)
			spec.subnet = cmd->u.network.subnet;
		if (cmd->u.network.driver)
			spec.driver = cmd->u.network.driver;
		spec.encrypted = cmd->u.network.encrypted; /* issue 17 */
		rv = control_network_create(m, &spec, &id, err, err_size, clops_call_done,
					    call);
	}
	if (rv)
		free(call);
	return rv;
}

int clops_secret(struct clops *o, struct manager *m, const struct scn_cmd *cmd, char *err,
		 size_t err_size, clops_done_fn done, void *data)
{
	struct clops_call *call;
	uint64_t id;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	call = calloc(1, sizeof *call);
	if (!call)
		return CS_ENOMEM;
	call->o = o;
	call->m = m;
	call->done = done;
	call->data = data;
	call->kind = cmd->kind;
	snprintf(call->name, sizeof call->name, "%s", cmd->u.secret.name);
	if (cmd->kind == SCN_SECRET_RM) {
		rv = secret_remove(m, cmd->u.secret.config, cmd->u.secret.name, err,
				   err_size, clops_call_done, call);
	} else {
		Cs__Secret x = CS__SECRET__INIT;
		const char *word =
			cmd->u.secret.data ? cmd->u.secret.data : cmd->u.secret.name;
		size_t wl = strlen(word);
		uint8_t *buf = malloc(wl + cmd->u.secret.bytes + 1);
		if (!buf) {
			free(call);
			return CS_ENOMEM;
		}
		memcpy(buf, word, wl);
		memset(buf + wl, 's', cmd->u.secret.bytes);
		x.config = cmd->u.secret.config;
		x.name = cmd->u.secret.name;
		x.data.data = buf;
		x.data.len = wl + cmd->u.secret.bytes;
		rv = secret_create(m, &x, &id, err, err_size, clops_call_done, call);
		free(buf);
	}
	if (rv)
		free(call);
	return rv;
}

/* The count a network condition reads from st (see clusterops.h). */
static uint64_t clops_net_count(const struct store *st, const Cs__Service *svc,
				const struct scn_cond *cond)
{
	uint64_t n = 0;
	switch (cond->kind) {
	case SCN_COND_ADDRESSES:
		for (const Cs__Task *t = store_task_next_by_service(st, svc->id, NULL); t;
		     t = store_task_next_by_service(st, svc->id, t))
			if (alloc_task_holds(t))
				n += t->n_networks;
		return n;
	case SCN_COND_VIPS: return svc->n_vips;
	default:
		assert(cond->kind == SCN_COND_PENDING_BECAUSE);
		for (const Cs__Task *t = store_task_next_by_service(st, svc->id, NULL); t;
		     t = store_task_next_by_service(st, svc->id, t))
			if (t->status &&
			    t->status->state == CS__TASK_STATE__TASK_STATE_PENDING &&
			    t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING &&
			    t->status->message &&
			    strstr(t->status->message, cond->reason))
				n++;
		return n;
	}
}

int clops_net_cond(struct clops *o, struct manager *leader, const struct scn_cond *cond,
		   char *got, size_t got_size)
{
	const struct store *st;
	const Cs__Service *svc;
	uint64_t n;

	(void)o;
	if (!leader) {
		snprintf(got, got_size, "no leader");
		return 0;
	}
	st = manager_store(leader);
	svc = store_service_by_name(st, cond->service);
	if (!svc) {
		snprintf(got, got_size, "no service %s", cond->service);
		return 0;
	}
	if (cond->kind == SCN_COND_PUBLISHES) {
		for (size_t i = 0; i < svc->n_ports; i++)
			if (svc->ports[i]->published == cond->count)
				return 1;
		snprintf(got, got_size, "%zu ports, %u not among them", svc->n_ports,
			 (unsigned)cond->count);
		return 0;
	}
	n = clops_net_count(st, svc, cond);
	if (scn_op_holds(cond->op, n, cond->count))
		return 1;
	snprintf(got, got_size, "%llu", (unsigned long long)n);
	return 0;
}

int clops_spread_cond(struct clops *o, struct manager *leader,
		      const struct scn_cond *cond, char *got, size_t got_size)
{
	const struct store *st;
	const Cs__Service *svc;
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t at = 0;

	if (!leader) {
		snprintf(got, got_size, "no leader");
		return 0;
	}
	st = manager_store(leader);
	svc = store_service_by_name(st, cond->service);
	if (!svc) {
		snprintf(got, got_size, "no service %s", cond->service);
		return 0;
	}
	got[0] = '\0';
	for (const Cs__Node *n = store_node_next(st, NULL); n;
	     n = store_node_next(st, n)) {
		int64_t wn;
		uint64_t c;
		if (n->state != CS__NODE_STATE__NODE_STATE_READY ||
		    n->availability != CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE ||
		    !sched_node_satisfies(svc, n) || !n->hostname)
			continue;
		wn = world_node_find(o->w, n->hostname);
		c = wn < 0 ? 0 : simexec_running(world_exec(o->w), cond->service, wn);
		lo = c < lo ? c : lo;
		hi = c > hi ? c : hi;
		if (at < got_size)
			at += (size_t)snprintf(got + at, got_size - at, "%s%s=%llu",
					       at ? " " : " (", n->hostname,
					       (unsigned long long)c);
	}
	if (lo == UINT64_MAX)
		lo = hi = 0;
	if (scn_op_holds(cond->op, hi - lo, cond->count))
		return 1;
	{
		char head[32];
		size_t hl = (size_t)snprintf(head, sizeof head, "%llu",
					     (unsigned long long)(hi - lo));
		if (at + hl + 2 < got_size) {
			memmove(got + hl, got, at + 1);
			memcpy(got, head, hl);
			strcat(got, ")");
		} else {
			snprintf(got, got_size, "%s", head);
		}
	}
	return 0;
}

bool clops_check_alloc(struct clops *o, struct manager *leader, char *msg, size_t size)
{
	const struct store *st;
	uint64_t lid, applied;

	if (!leader)
		return true;
	lid = manager_raft_id(leader);
	applied = manager_applied(leader);
	if (lid == o->alloc_leader && applied == o->alloc_applied)
		return true; /* judged already */
	o->alloc_leader = lid;
	o->alloc_applied = applied;
	st = manager_store(leader);
	if (store_network_count(st) <= 1) {
		/* only the ingress network: judge only if some service publishes */
		bool any = false;
		for (const Cs__Service *s = store_service_next(st, NULL); s && !any;
		     s = store_service_next(st, s))
			any = s->spec->endpoint != NULL;
		if (!any)
			return true;
	}
	if (alloc_invariants(st, msg, size))
		return true;
	{
		char why[200];
		snprintf(why, sizeof why, "%s", msg);
		snprintf(msg, size, "invariant 7 (allocator): %s", why);
	}
	return false;
}
