/* rebalancer: opt-in moves of running tasks to even out a service's spread.
 * See rebalancer.h. Sections: the plan (a pure function of the store), the
 * component (moves in flight, the delay, the write). */
#include "core/rebalancer.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/allocator.h"
#include "core/errors.h"
#include "core/grow.h"
#include "core/leader.h"
#include "core/metrics.h"
#include "core/orchestrator.h"
#include "core/scheduler.h"
#include "core/sort.h"

#define RB_NONE		    UINT32_MAX
#define RB_LABEL_PREFIX	    "node.labels."
#define RB_LABEL_PREFIX_LEN (sizeof RB_LABEL_PREFIX - 1)

enum {
	RB_DEBOUNCE_MS = 5,	    /* changes gather this long before a pass */
	RB_PERIOD_MS = 1000,	    /* a pass at least this often (moves, delays) */
	RB_MOVE_FORGET_MS = 600000, /* a move not done after this is forgotten */
};

uint64_t rebalancer_parallelism(const Cs__ServiceSpec *spec)
{
	if (spec->rebalance_parallelism)
		return spec->rebalance_parallelism;
	if (spec->update && spec->update->parallelism)
		return spec->update->parallelism;
	return 1;
}

/* ---------------------------------------------------------------- the plan */

/* One node as the plan sees it. */
struct rb_node {
	const Cs__Node *node;
	bool fine;	  /* READY, ACTIVE, meets the constraints */
	bool target;	  /* fine, and the scheduler would give it one more */
	int64_t cpu_free; /* milli-CPUs left (reservations only) */
	int64_t mem_free; /* bytes left */
	uint64_t active;  /* the service's tasks counted for spread */
	uint64_t live;	  /* the service's tasks holding the node (max per node) */
	bool port_busy;	  /* a host-mode port of the service is taken */
	uint32_t cand_first, cand_count; /* its movable tasks in p->cands */
};

struct rb_plan_ctx {
	const struct store *st;
	const Cs__Service *svc;
	int64_t cpu_milli, mem_bytes; /* one task's reservations */
	uint64_t replicas_max;	      /* max replicas per node (0: none) */
	struct rb_node *nodes;	      /* in id order */
	size_t node_count;
	size_t levels; /* spread preference levels */
	const char *keys[LIMIT_REBALANCE_LEVELS_MAX];
	uint32_t *branch; /* branch[l * node_count + i]: node i's branch at level l */
	uint64_t *cnt;	  /* cnt[l * node_count + b]: tasks under branch b */
	bool *has_target; /* has_target[l * node_count + b] */
	const Cs__Task **cands; /* movable tasks, by node, best first */
	size_t cand_count;
};

static const char *rb_node_label(const Cs__Node *n, const char *key)
{
	for (size_t i = 0; i < n->n_labels; i++) {
		const Cs__Label *l = n->labels[i];
		if (l->key && strcmp(l->key, key) == 0)
			return l->value && l->value[0] ? l->value : NULL;
	}
	return NULL;
}

/* The scheduler's spread key: the label after node.labels. (any case). */
static const char *rb_spread_key(const char *pref)
{
	if (!pref)
		return "";
	if (strlen(pref) <= RB_LABEL_PREFIX_LEN)
		return pref;
	for (size_t i = 0; i < RB_LABEL_PREFIX_LEN; i++) {
		char c = pref[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != RB_LABEL_PREFIX[i])
			return pref;
	}
	return pref + RB_LABEL_PREFIX_LEN;
}

/* As the scheduler: a missing (or empty) value after every other. */
static int rb_value_cmp(const char *a, const char *b)
{
	if (!a || !b)
		return (a == NULL) - (b == NULL);
	return strcmp(a, b);
}

static int rb_spread_cmp(const struct rb_plan_ctx *c, uint32_t a, uint32_t b)
{
	for (size_t l = 0; l < c->levels; l++) {
		int r = rb_value_cmp(rb_node_label(c->nodes[a].node, c->keys[l]),
				     rb_node_label(c->nodes[b].node, c->keys[l]));
		if (r)
			return r;
	}
	return a < b ? -1 : a > b;
}

static int rb_spread_sort_cmp(const void *ctx, uint32_t a, uint32_t b)
{
	return rb_spread_cmp(ctx, a, b);
}

static bool rb_state_holds(const Cs__Task *t)
{
	int s = t->status ? (int)t->status->state : 0;
	return s >= CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	       s <= CS__TASK_STATE__TASK_STATE_RUNNING;
}

static bool rb_running(const Cs__Task *t)
{
	return t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING && t->status &&
	       t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING;
}

/* Whether node i takes one more task of the service (the scheduler's
 * filters: readiness, resources, constraints, max per node, host ports). */
static bool rb_takes(const struct rb_plan_ctx *c, const struct rb_node *n)
{
	if (!n->fine || n->port_busy)
		return false;
	if (c->cpu_milli > 0 && c->cpu_milli > n->cpu_free)
		return false;
	if (c->mem_bytes > 0 && c->mem_bytes > n->mem_free)
		return false;
	return c->replicas_max == 0 || n->live < c->replicas_max;
}

static void rb_ctx_free(struct rb_plan_ctx *c)
{
	free(c->nodes);
	free(c->branch);
	free(c->cnt);
	free(c->has_target);
	free(c->cands);
	memset(c, 0, sizeof *c);
}

static int64_t rb_i64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Reads the nodes: readiness, constraints, what they hold. */
static int rb_read_nodes(struct rb_plan_ctx *c)
{
	const struct store *st = c->st;
	size_t n = store_node_count(st), i = 0;

	c->nodes = calloc(n ? n : 1, sizeof *c->nodes);
	if (!c->nodes)
		return CS_ENOMEM;
	for (const Cs__Node *node = store_node_next(st, NULL); node && i < n;
	     node = store_node_next(st, node), i++) {
		struct rb_node *rn = &c->nodes[i];
		rn->node = node;
		rn->fine = node->state == CS__NODE_STATE__NODE_STATE_READY &&
			   node->availability ==
				   CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE &&
			   sched_node_satisfies(c->svc, node);
		rn->cpu_free = node->resources ? rb_i64(node->resources->millicpus) : 0;
		rn->mem_free =
			node->resources ? rb_i64(node->resources->memory_bytes) : 0;
		/* what every task on it reserves, as the scheduler counts it */
		if (rn->fine && (c->cpu_milli > 0 || c->mem_bytes > 0)) {
			for (const Cs__Task *t =
				     store_task_next_by_node(st, node->id, NULL);
			     t; t = store_task_next_by_node(st, node->id, t)) {
				const Cs__Service *s;
				const Cs__TaskSpec *ts;
				if (!rb_state_holds(t))
					continue;
				s = store_service_get(st, t->service_id);
				ts = s && s->spec ? s->spec->task : NULL;
				if (!ts || !ts->reservations)
					continue;
				rn->cpu_free -= rb_i64(ts->reservations->millicpus);
				rn->mem_free -= rb_i64(ts->reservations->memory_bytes);
			}
		}
		rn->port_busy = rn->fine && alloc_has_host_ports(c->svc) &&
				alloc_host_port_busy(st, c->svc, node->id);
	}
	c->node_count = i;
	return 0;
}

/* Returns the index of node id, or RB_NONE. */
static uint32_t rb_node_find(const struct rb_plan_ctx *c, uint64_t id)
{
	size_t lo = 0, hi = c->node_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->nodes[mid].node->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->node_count && c->nodes[lo].node->id == id ? (uint32_t)lo : RB_NONE;
}

/* Candidate order on one node: the youngest running task moves first (the
 * one with the least behind it), then the larger id. */
static int rb_cand_cmp(const void *a, const void *b)
{
	const Cs__Task *x = *(const Cs__Task *const *)a, *y = *(const Cs__Task *const *)b;
	if (x->node_id != y->node_id)
		return x->node_id < y->node_id ? -1 : 1;
	if (x->started_ms != y->started_ms)
		return x->started_ms > y->started_ms ? -1 : 1;
	return x->id > y->id ? -1 : x->id < y->id;
}

/* Reads the service's tasks: counts per node, the budget, the movable
 * tasks. Sets out->skip when the orchestrator is still at work. */
static int rb_read_tasks(struct rb_plan_ctx *c, struct rebalancer_plan *out)
{
	const Cs__Service *svc = c->svc;
	uint64_t replicas = svc->spec->replicas;
	uint8_t *slot_up = calloc(replicas ? replicas : 1, 1);
	size_t cap = 0, up = 0;

	if (!slot_up)
		return CS_ENOMEM;
	for (const Cs__Task *t = store_task_next_by_service(c->st, svc->id, NULL); t;
	     t = store_task_next_by_service(c->st, svc->id, t))
		cap++;
	c->cands = calloc(cap ? cap : 1, sizeof *c->cands);
	if (!c->cands) {
		free(slot_up);
		return CS_ENOMEM;
	}
	for (const Cs__Task *t = store_task_next_by_service(c->st, svc->id, NULL); t;
	     t = store_task_next_by_service(c->st, svc->id, t)) {
		uint32_t ni = t->node_id ? rb_node_find(c, t->node_id) : RB_NONE;
		bool holds = rb_state_holds(t);
		bool wanted = t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
		bool terminal = t->status && orchestrator_is_terminal(t->status->state);

		if (wanted && !terminal &&
		    (t->slot == 0 || t->slot > replicas || orchestrator_outdated(svc, t)))
			out->skip = REBALANCER_SKIP_SETTLING;
		if (ni != RB_NONE && holds) {
			c->nodes[ni].live++;
			if (wanted)
				c->nodes[ni].active++;
		}
		if (!rb_running(t) || ni == RB_NONE || t->slot == 0 || t->slot > replicas)
			continue;
		/* a running task counts for the budget only on a READY node */
		if (c->nodes[ni].node->state == CS__NODE_STATE__NODE_STATE_READY &&
		    !slot_up[t->slot - 1]) {
			slot_up[t->slot - 1] = 1;
			up++;
		}
		if (c->nodes[ni].fine)
			c->cands[c->cand_count++] = t;
	}
	free(slot_up);
	assert(up <= replicas);
	out->unavailable = (size_t)(replicas - up);
	if (c->cand_count > 1)
		qsort(c->cands, c->cand_count, sizeof *c->cands, rb_cand_cmp);
	for (size_t i = 0; i < c->cand_count; i++) {
		uint32_t ni = rb_node_find(c, c->cands[i]->node_id);
		assert(ni != RB_NONE);
		if (c->nodes[ni].cand_count == 0)
			c->nodes[ni].cand_first = (uint32_t)i;
		c->nodes[ni].cand_count++;
	}
	return 0;
}

/* Numbers the spread branches: nodes sorted by their label values level by
 * level (the scheduler's order: its tie-break between branches), a new
 * branch at level l wherever a value at level 0..l changes. */
static int rb_build_branches(struct rb_plan_ctx *c)
{
	size_t n = c->node_count, m = c->levels;
	uint32_t *order = malloc((n ? n : 1) * sizeof *order);
	uint32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
	int rv = CS_ENOMEM;

	c->branch = calloc((m ? m : 1) * (n ? n : 1), sizeof *c->branch);
	c->cnt = calloc((m ? m : 1) * (n ? n : 1), sizeof *c->cnt);
	c->has_target = calloc((m ? m : 1) * (n ? n : 1), sizeof *c->has_target);
	if (!order || !tmp || !c->branch || !c->cnt || !c->has_target)
		goto out;
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	if (m > 0)
		sort_u32(order, tmp, n, rb_spread_sort_cmp, c);
	for (size_t l = 0; l < m; l++) {
		uint32_t b = 0;
		for (size_t k = 0; k < n; k++) {
			if (k > 0) {
				bool same = true;
				for (size_t j = 0; j <= l && same; j++)
					same = rb_value_cmp(
						       rb_node_label(
							       c->nodes[order[k]].node,
							       c->keys[j]),
						       rb_node_label(
							       c->nodes[order[k - 1]]
								       .node,
							       c->keys[j])) == 0;
				b += !same;
			}
			c->branch[l * n + order[k]] = b;
		}
	}
	rv = 0;
out:
	free(order);
	free(tmp);
	return rv;
}

/* Recomputes the branch counts and which branches hold a node that takes
 * a task. */
static void rb_recount(struct rb_plan_ctx *c)
{
	size_t n = c->node_count;

	for (size_t l = 0; l < c->levels; l++) {
		memset(c->cnt + l * n, 0, n * sizeof *c->cnt);
		memset(c->has_target + l * n, 0, n * sizeof *c->has_target);
		for (size_t i = 0; i < n; i++) {
			uint32_t b = c->branch[l * n + i];
			c->cnt[l * n + b] += c->nodes[i].active;
			c->has_target[l * n + b] |= c->nodes[i].target;
		}
	}
}

/* Adds delta to node i's count at every level. */
static void rb_add(struct rb_plan_ctx *c, uint32_t i, int delta)
{
	size_t n = c->node_count;
	c->nodes[i].active = (uint64_t)((int64_t)c->nodes[i].active + delta);
	for (size_t l = 0; l < c->levels; l++) {
		uint64_t *x = &c->cnt[l * n + c->branch[l * n + i]];
		*x = (uint64_t)((int64_t)*x + delta);
	}
}

/* The scheduler's choice for one more task (its decision tree): the branch
 * with the fewest tasks of the service among those with a node that takes
 * it, level by level (ties: label value order), then the node with the
 * fewest, then the smallest id. (Its other tie-break, fewest tasks of any
 * service, changes no count this plan compares.) RB_NONE: no node. */
static uint32_t rb_pick(const struct rb_plan_ctx *c)
{
	size_t n = c->node_count;
	uint32_t chosen = RB_NONE, best = RB_NONE;

	for (size_t l = 0; l < c->levels; l++) {
		uint32_t pick = RB_NONE;
		for (size_t i = 0; i < n; i++) {
			uint32_t b = c->branch[l * n + i];
			if (!c->has_target[l * n + b])
				continue;
			if (l > 0 && c->branch[(l - 1) * n + i] != chosen)
				continue;
			if (pick == RB_NONE || c->cnt[l * n + b] < c->cnt[l * n + pick] ||
			    (c->cnt[l * n + b] == c->cnt[l * n + pick] && b < pick))
				pick = b;
		}
		if (pick == RB_NONE)
			return RB_NONE;
		chosen = pick;
	}
	for (size_t i = 0; i < n; i++) {
		if (!c->nodes[i].target)
			continue;
		if (c->levels > 0 && c->branch[(c->levels - 1) * n + i] != chosen)
			continue;
		if (best == RB_NONE || c->nodes[i].active < c->nodes[best].active)
			best = (uint32_t)i;
	}
	return best;
}

/* What moving one task from s to d does to the sums of squared counts:
 * the first level (0..levels, levels being the nodes) where s and d are
 * in different branches, and the change there (counts before the move:
 * 2 (c_d - c_s + 1)), and at the node level. */
struct rb_gain {
	size_t level;
	int64_t delta, node_delta;
};

static struct rb_gain rb_gain(const struct rb_plan_ctx *c, uint32_t s, uint32_t d)
{
	size_t n = c->node_count;
	struct rb_gain g = {.level = c->levels};

	g.node_delta =
		2 * ((int64_t)c->nodes[d].active - (int64_t)c->nodes[s].active + 1);
	g.delta = g.node_delta;
	for (size_t l = 0; l < c->levels; l++) {
		uint32_t bs = c->branch[l * n + s], bd = c->branch[l * n + d];
		if (bs == bd)
			continue;
		g.level = l;
		g.delta = 2 *
			  ((int64_t)c->cnt[l * n + bd] - (int64_t)c->cnt[l * n + bs] + 1);
		break;
	}
	return g;
}

static bool rb_gain_better(struct rb_gain a, struct rb_gain b)
{
	if (a.level != b.level)
		return a.level < b.level;
	if (a.delta != b.delta)
		return a.delta < b.delta;
	return a.node_delta < b.node_delta;
}

static uint64_t rb_spread_of(const struct rb_plan_ctx *c)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < c->node_count; i++) {
		if (!c->nodes[i].fine)
			continue;
		lo = c->nodes[i].active < lo ? c->nodes[i].active : lo;
		hi = c->nodes[i].active > hi ? c->nodes[i].active : hi;
	}
	return lo == UINT64_MAX ? 0 : hi - lo;
}

/* Reads everything but the branches. */
static int rb_read(struct rb_plan_ctx *c, const struct store *st, const Cs__Service *svc,
		   struct rebalancer_plan *out)
{
	const Cs__TaskSpec *ts = svc->spec->task;
	const Cs__Placement *pl = ts ? ts->placement : NULL;
	int rv;

	c->st = st;
	c->svc = svc;
	if (ts && ts->reservations) {
		c->cpu_milli = rb_i64(ts->reservations->millicpus);
		c->mem_bytes = rb_i64(ts->reservations->memory_bytes);
	}
	if (pl) {
		c->replicas_max = pl->max_replicas_per_node;
		if (pl->n_spread_labels > LIMIT_REBALANCE_LEVELS_MAX) {
			out->skip = REBALANCER_SKIP_LEVELS;
			return 0;
		}
		c->levels = pl->n_spread_labels;
		for (size_t l = 0; l < c->levels; l++)
			c->keys[l] = rb_spread_key(pl->spread_labels[l]);
	}
	if ((rv = rb_read_nodes(c)) || (rv = rb_read_tasks(c, out)))
		return rv;
	for (size_t i = 0; i < c->node_count; i++)
		c->nodes[i].target = rb_takes(c, &c->nodes[i]);
	return 0;
}

uint64_t rebalancer_imbalance(const struct store *st, const Cs__Service *svc)
{
	struct rb_plan_ctx c;
	struct rebalancer_plan scratch;
	uint64_t v;

	if (!svc->spec)
		return 0;
	memset(&c, 0, sizeof c);
	memset(&scratch, 0, sizeof scratch);
	if (rb_read(&c, st, svc, &scratch)) {
		rb_ctx_free(&c);
		return UINT64_MAX;
	}
	v = rb_spread_of(&c);
	rb_ctx_free(&c);
	return v;
}

int rebalancer_plan(const struct store *st, const Cs__Service *svc, size_t moves_max,
		    struct rebalancer_plan *out)
{
	const Cs__UpdateStatus *us = svc->update_status;
	struct rb_plan_ctx c;
	uint64_t k;
	int rv;

	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	if (!svc->spec || !svc->spec->rebalance) {
		out->skip = REBALANCER_SKIP_OFF;
		return 0;
	}
	if (svc->spec->global || svc->spec->job) {
		out->skip = REBALANCER_SKIP_MODE;
		return 0;
	}
	if ((rv = rb_read(&c, st, svc, out)))
		goto fail;
	out->imbalance = rb_spread_of(&c);
	out->imbalance_after = out->imbalance;
	if (us && (us->state == CS__UPDATE_STATUS__STATE__STATE_UPDATING ||
		   us->state == CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED))
		out->skip = REBALANCER_SKIP_UPDATING;
	if (out->skip != REBALANCER_GO)
		goto done;
	if ((rv = rb_build_branches(&c)))
		goto fail;
	rb_recount(&c);
	k = rebalancer_parallelism(svc->spec);
	out->budget = k > out->unavailable ? (size_t)(k - out->unavailable) : 0;
	if (out->budget > moves_max)
		out->budget = moves_max;
	if (out->budget > LIMIT_REBALANCE_MOVES_MAX)
		out->budget = LIMIT_REBALANCE_MOVES_MAX;
	while (out->move_count < out->budget) {
		struct rb_gain best_gain = {0};
		uint32_t best_s = RB_NONE, best_d = RB_NONE;
		struct rebalancer_move *mv;
		const Cs__Task *t;

		for (size_t s = 0; s < c.node_count; s++) {
			struct rb_node *sn = &c.nodes[s];
			uint32_t d;
			struct rb_gain g;
			if (sn->cand_count == 0 || sn->active == 0)
				continue;
			rb_add(&c, (uint32_t)s, -1);
			d = rb_pick(&c);
			rb_add(&c, (uint32_t)s, +1);
			if (d == RB_NONE || d == s)
				continue;
			g = rb_gain(&c, (uint32_t)s, d);
			if (g.delta >= 0)
				continue; /* not better: it would only come back */
			if (best_s == RB_NONE || rb_gain_better(g, best_gain)) {
				best_gain = g;
				best_s = (uint32_t)s;
				best_d = d;
			}
		}
		if (best_s == RB_NONE)
			break;
		/* the move, in the model: the task leaves, one arrives */
		t = c.cands[c.nodes[best_s].cand_first];
		assert(t->node_id == c.nodes[best_s].node->id);
		c.nodes[best_s].cand_first++;
		c.nodes[best_s].cand_count--;
		rb_add(&c, best_s, -1);
		rb_add(&c, best_d, +1);
		c.nodes[best_d].live++;
		c.nodes[best_d].cpu_free -= c.cpu_milli;
		c.nodes[best_d].mem_free -= c.mem_bytes;
		c.nodes[best_d].target = rb_takes(&c, &c.nodes[best_d]);
		rb_recount(&c);
		mv = &out->moves[out->move_count++];
		mv->task_id = t->id;
		mv->slot = t->slot;
		mv->from_node = t->node_id;
		mv->to_node = c.nodes[best_d].node->id;
	}
	out->imbalance_after = rb_spread_of(&c);
done:
	rb_ctx_free(&c);
	return 0;
fail:
	rb_ctx_free(&c);
	memset(out, 0, sizeof *out);
	return rv;
}

/* ---------------------------------------------------------------- the component */

/* A move this leader started: done once its slot has another task RUNNING. */
struct rb_move {
	uint64_t service_id;
	uint64_t slot;
	uint64_t task_id;   /* the task stopped */
	uint64_t from_node; /* where it ran */
	uint64_t node_gen;  /* the rebalancer's node_gen when it started */
	ms_t started_ms;
};

/* Per service that opted in: the delay, the freeze, what a scrape shows. */
struct rb_svc {
	uint64_t service_id;
	char name[LIMIT_NAME_BYTES_MAX + 1];
	ms_t not_before_ms;	   /* no new move before (the update delay) */
	bool frozen;		   /* a replacement came back: wait for nodes */
	uint64_t frozen_gen;	   /* ... until node_gen moves past this */
	uint64_t imbalance;	   /* at the last pass */
	uint64_t imbalance_before; /* when its latest round of moves began */
	uint64_t moves;		   /* moves started by this leader */
	bool in_round;		   /* moves under way since imbalance_before */
	bool seen;		   /* still in the store at the last pass */
};

struct rebalancer {
	struct env *env;
	const struct leader_ctx *ctx;
	env_timer_id pass_timer, period_timer;
	bool writing, stopped, dying, dirty;
	uint64_t node_gen; /* node changes seen (unfreezes services) */
	ms_t start_ms;
	struct rb_move *moves;
	size_t move_count, move_cap;
	struct rb_svc *svcs; /* in service id order */
	size_t svc_count, svc_cap;
	uint64_t moves_total, frozen_total;
	struct store_batch batch;
	size_t batch_first; /* moves[batch_first..] are the write in flight's */
};

static void rb_on_timer(struct env *env, env_timer_id id, void *data);

static void rb_arm(struct rebalancer *r)
{
	if (r->pass_timer || r->dying || r->stopped)
		return;
	r->env->ops->timer_start(r->env, RB_DEBOUNCE_MS, 0, rb_on_timer, r,
				 &r->pass_timer);
}

/* The entry of service svc, created when missing (not_before: one update
 * delay from now: a new leader, or a service just opted in, waits one delay
 * before its first move); NULL when out of memory. */
static struct rb_svc *rb_svc_get(struct rebalancer *r, const Cs__Service *svc, ms_t now)
{
	size_t lo = 0, hi = r->svc_count;
	struct rb_svc *e;
	const Cs__UpdateConfig *up = svc->spec->update;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->svcs[mid].service_id < svc->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->svc_count && r->svcs[lo].service_id == svc->id)
		return &r->svcs[lo];
	if (grow_array((void **)&r->svcs, &r->svc_cap, r->svc_count + 1, sizeof *r->svcs))
		return NULL;
	memmove(&r->svcs[lo + 1], &r->svcs[lo], (r->svc_count - lo) * sizeof *r->svcs);
	r->svc_count++;
	e = &r->svcs[lo];
	memset(e, 0, sizeof *e);
	e->service_id = svc->id;
	e->not_before_ms = now + (up ? up->delay_ms : 0);
	return e;
}

static size_t rb_moves_of(const struct rebalancer *r, uint64_t service_id)
{
	size_t n = 0;
	for (size_t i = 0; i < r->move_count; i++)
		n += r->moves[i].service_id == service_id;
	return n;
}

/* Looks at the moves in flight: done (the slot runs another task), gone,
 * or too old. A replacement back on the node it left freezes its service. */
static void rb_check_moves(struct rebalancer *r, ms_t now)
{
	const struct store *st = leader_store(r->ctx);
	size_t keep = 0;

	for (size_t i = 0; i < r->move_count; i++) {
		struct rb_move *mv = &r->moves[i];
		const Cs__Service *svc = store_service_get(st, mv->service_id);
		const Cs__Task *now_t = NULL;
		bool done = false;

		if (svc)
			for (const Cs__Task *t =
				     store_task_next_in_slot(st, svc->id, mv->slot, NULL);
			     t; t = store_task_next_in_slot(st, svc->id, mv->slot, t))
				if (t->id != mv->task_id && rb_running(t))
					now_t = t;
		if (!svc || now - mv->started_ms >= RB_MOVE_FORGET_MS)
			done = true;
		if (now_t) {
			struct rb_svc *e = rb_svc_get(r, svc, now);
			const Cs__UpdateConfig *up = svc->spec->update;
			done = true;
			if (e) {
				e->not_before_ms = now + (up ? up->delay_ms : 0);
				/* back where it left, on the same nodes: the
				 * model missed a ranking (a node change in
				 * between explains it otherwise) */
				if (now_t->node_id == mv->from_node &&
				    mv->node_gen == r->node_gen) {
					e->frozen = true;
					e->frozen_gen = r->node_gen;
					r->frozen_total++;
					env_logf(
						r->env, ENV_LOG_WARN,
						"msg=\"rebalance came back\" service=%s "
						"slot=%" PRIu64 " node=%016" PRIx64
						" why=\"the scheduler chose the node the task "
						"left: service left alone until a node "
						"changes\"",
						svc->spec->name, mv->slot, mv->from_node);
				}
			}
		}
		if (!done)
			r->moves[keep++] = *mv;
	}
	r->move_count = keep;
}

/* Adds the move's write to the batch and remembers it. */
static int rb_start_move(struct rebalancer *r, const Cs__Service *svc,
			 const struct rebalancer_move *pm, ms_t now)
{
	const Cs__Task *t = store_task_get(leader_store(r->ctx), pm->task_id);
	Cs__Task copy;
	Cs__TaskStatus status;
	struct rb_move *mv;
	int rv;

	assert(t && t->service_id == svc->id);
	if (r->move_count >= LIMIT_REBALANCE_TRACKED_MAX)
		return CS_ELIMIT;
	if (grow_array((void **)&r->moves, &r->move_cap, r->move_count + 1,
		       sizeof *r->moves))
		return CS_ENOMEM;
	copy = *t;
	if (t->status) {
		status = *t->status;
		status.message = REBALANCER_MSG;
		copy.status = &status;
	}
	copy.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
	if ((rv = store_batch_task(&r->batch, CS__STORE_ACTION__KIND__KIND_UPDATE,
				   &copy)))
		return rv;
	mv = &r->moves[r->move_count++];
	mv->service_id = svc->id;
	mv->slot = pm->slot;
	mv->task_id = pm->task_id;
	mv->from_node = pm->from_node;
	mv->node_gen = r->node_gen;
	mv->started_ms = now;
	env_logf(r->env, ENV_LOG_INFO,
		 "msg=\"rebalance move\" service=%s task=%016" PRIx64 " slot=%" PRIu64
		 " from=%016" PRIx64 " to=%016" PRIx64,
		 svc->spec->name, pm->task_id, pm->slot, pm->from_node, pm->to_node);
	return 0;
}

/* One service's turn in a pass. */
static void rb_service(struct rebalancer *r, const Cs__Service *svc, ms_t now)
{
	const struct store *st = leader_store(r->ctx);
	struct rebalancer_plan *plan;
	struct rb_svc *e = rb_svc_get(r, svc, now);
	size_t inflight, k;

	if (!e)
		return;
	e->seen = true;
	snprintf(e->name, sizeof e->name, "%s", svc->spec->name ? svc->spec->name : "");
	if (e->frozen && e->frozen_gen != r->node_gen)
		e->frozen = false;
	plan = malloc(sizeof *plan);
	if (!plan)
		return;
	inflight = rb_moves_of(r, svc->id);
	k = (size_t)rebalancer_parallelism(svc->spec);
	/* in flight and not yet seen stopped count against K too */
	if (rebalancer_plan(st, svc,
			    e->frozen || now < e->not_before_ms || inflight >= k
				    ? 0
				    : k - inflight,
			    plan) != 0) {
		free(plan);
		return;
	}
	e->imbalance = plan->imbalance;
	/* a round: from the first move after a balanced spread until a plan
	 * with room finds nothing to move */
	if (plan->move_count > 0 && !e->in_round) {
		e->imbalance_before = plan->imbalance;
		e->in_round = true;
	}
	if (plan->move_count == 0 && plan->budget > 0 && inflight == 0)
		e->in_round = false;
	for (size_t i = 0; i < plan->move_count; i++) {
		if (rb_start_move(r, svc, &plan->moves[i], now))
			break;
		e->moves++;
	}
	free(plan);
}

static void rb_write_done(void *data, int status);

static void rb_pass(struct rebalancer *r)
{
	const struct store *st = leader_store(r->ctx);
	ms_t now;
	size_t keep = 0;
	uint8_t *buf;
	size_t len;
	int rv;

	if (r->writing || r->stopped)
		return;
	r->dirty = false;
	now = r->env->ops->now_ms(r->env);
	rb_check_moves(r, now);
	for (size_t i = 0; i < r->svc_count; i++)
		r->svcs[i].seen = false;
	store_batch_init(&r->batch);
	r->batch_first = r->move_count;
	for (const Cs__Service *svc = store_service_next(st, NULL); svc;
	     svc = store_service_next(st, svc)) {
		if (!svc->spec || !svc->spec->rebalance || svc->spec->global ||
		    svc->spec->job)
			continue;
		rb_service(r, svc, now);
	}
	/* services gone, or no longer opted in, are forgotten */
	for (size_t i = 0; i < r->svc_count; i++)
		if (r->svcs[i].seen)
			r->svcs[keep++] = r->svcs[i];
	r->svc_count = keep;
	if (r->batch.action_count == 0) {
		store_batch_free(&r->batch);
		return;
	}
	rv = store_batch_encode(&r->batch, 0, 0, &buf, &len);
	if (rv == 0) {
		rv = leader_write(r->ctx, buf, len, rb_write_done, r);
		free(buf);
	}
	if (rv == 0) {
		r->writing = true;
	} else {
		/* none of this batch's moves happens: forget them (the next
		 * pass plans again), the earlier ones stay */
		r->move_count = r->batch_first;
		env_logf(r->env, ENV_LOG_ERROR,
			 "msg=\"rebalance batch refused\" actions=%zu err=%s",
			 r->batch.action_count, cs_errname(rv));
	}
	store_batch_free(&r->batch);
}

static void rb_free(struct rebalancer *r)
{
	free(r->moves);
	free(r->svcs);
	free(r);
}

static void rb_write_done(void *data, int status)
{
	struct rebalancer *r = data;

	r->writing = false;
	if (r->stopped) {
		rb_free(r);
		return;
	}
	if (status == 0)
		r->moves_total += r->move_count - r->batch_first;
	if (status) {
		/* this batch's moves did not happen (a version raced, a lost
		 * leadership): forget them; the next pass plans again */
		env_logf(r->env, ENV_LOG_INFO, "msg=\"rebalance write failed\" err=%s",
			 cs_errname(status));
		assert(r->batch_first <= r->move_count);
		r->move_count = r->batch_first;
	}
	if (status || r->dirty)
		rb_arm(r);
}

static void rb_on_timer(struct env *env, env_timer_id id, void *data)
{
	struct rebalancer *r = data;
	(void)env;
	if (id == r->pass_timer)
		r->pass_timer = 0;
	rb_pass(r);
}

/* Whether a node's change can change where tasks may go: new, gone, its
 * state, availability, labels or resources. */
static bool rb_node_changed(const Cs__Node *o, const Cs__Node *n)
{
	if (!o || !n)
		return true;
	if (o->state != n->state || o->availability != n->availability ||
	    o->n_labels != n->n_labels || !o->resources != !n->resources)
		return true;
	if (o->resources && (o->resources->millicpus != n->resources->millicpus ||
			     o->resources->memory_bytes != n->resources->memory_bytes))
		return true;
	for (size_t i = 0; i < o->n_labels; i++)
		if (strcmp(o->labels[i]->key ? o->labels[i]->key : "",
			   n->labels[i]->key ? n->labels[i]->key : "") != 0 ||
		    strcmp(o->labels[i]->value ? o->labels[i]->value : "",
			   n->labels[i]->value ? n->labels[i]->value : "") != 0)
			return true;
	return false;
}

static void rebalancer_on_event(void *state, const struct store_event *ev)
{
	struct rebalancer *r = state;

	if (ev->table == STORE_NODE) {
		if (!rb_node_changed((const Cs__Node *)ev->old_obj,
				     (const Cs__Node *)ev->new_obj))
			return;
		r->node_gen++;
	} else if (ev->table != STORE_SERVICE) {
		return; /* task changes: the period looks at moves */
	}
	r->dirty = true;
	if (!r->writing)
		rb_arm(r);
}

static int rebalancer_start(const struct leader_ctx *ctx, void **state)
{
	struct env *env = leader_env(ctx);
	struct rebalancer *r = calloc(1, sizeof *r);

	if (!r)
		return CS_ENOMEM;
	r->env = env;
	r->ctx = ctx;
	r->start_ms = env->ops->now_ms(env);
	if (env->ops->timer_start(env, RB_PERIOD_MS, RB_PERIOD_MS, rb_on_timer, r,
				  &r->period_timer)) {
		free(r);
		return CS_ENOMEM;
	}
	rb_arm(r);
	*state = r;
	return 0;
}

static void rebalancer_stop(void *state, bool dying)
{
	struct rebalancer *r = state;

	r->stopped = true;
	r->dying = dying;
	if (!dying) {
		r->env->ops->timer_stop(r->env, r->period_timer);
		if (r->pass_timer)
			r->env->ops->timer_stop(r->env, r->pass_timer);
	}
	if (!r->writing)
		rb_free(r);
	/* else the write's answer frees it */
}

static void rebalancer_metrics(void *state, struct metrics_buf *out)
{
	const struct rebalancer *r = state;
	char label[LIMIT_NAME_BYTES_MAX * 2 + 16];

	metrics_family(
		out, "cswarm_rebalance_moves_total", METRICS_COUNTER,
		"Tasks the rebalancer stopped to move them while this manager led.");
	metrics_sample(out, "cswarm_rebalance_moves_total", NULL, (double)r->moves_total);
	metrics_family(out, "cswarm_rebalance_moves_in_flight", METRICS_GAUGE,
		       "Moves started whose replacement does not run yet.");
	metrics_sample(out, "cswarm_rebalance_moves_in_flight", NULL,
		       (double)r->move_count);
	metrics_family(out, "cswarm_rebalance_frozen_total", METRICS_COUNTER,
		       "Replacements the scheduler put back on the node their task left "
		       "(the service then waits for a node to change).");
	metrics_sample(out, "cswarm_rebalance_frozen_total", NULL,
		       (double)r->frozen_total);
	metrics_family(out, "cswarm_service_spread_imbalance", METRICS_GAUGE,
		       "Max - min tasks per eligible node (ready, active, meeting the "
		       "constraints) of a service that opted in to rebalancing, at the "
		       "last pass.");
	for (size_t i = 0; i < r->svc_count; i++)
		metrics_sample(
			out, "cswarm_service_spread_imbalance",
			metrics_label(label, sizeof label, "service", r->svcs[i].name),
			(double)r->svcs[i].imbalance);
	metrics_family(out, "cswarm_rebalance_imbalance_before", METRICS_GAUGE,
		       "The same spread imbalance when the service's latest round of "
		       "moves began (before rebalancing).");
	for (size_t i = 0; i < r->svc_count; i++)
		metrics_sample(
			out, "cswarm_rebalance_imbalance_before",
			metrics_label(label, sizeof label, "service", r->svcs[i].name),
			(double)r->svcs[i].imbalance_before);
}

const struct leader_component_ops rebalancer_component = {
	.name = "rebalancer",
	.start = rebalancer_start,
	.stop = rebalancer_stop,
	.on_event = rebalancer_on_event,
	.metrics = rebalancer_metrics,
};
