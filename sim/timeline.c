/* timeline: the record of one run for the report's picture. See
 * timeline.h. */
#include "sim/timeline.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/manager.h"
#include "sim/cluster.h"
#include "sim/simexec.h"

/* The runner traces scenario commands as this kind (runner.c's
 * RUNNER_EV_CMD): a = line, b = command kind. */
#define TL_EV_CMD 10u

struct timeline *timeline_new(const struct scn_script *script)
{
	struct timeline *tl = calloc(1, sizeof *tl);
	if (!tl)
		return NULL;
	tl->script = script;
	tl->leader = -1;
	tl->metrics = metrics_rec_new(script);
	if (!tl->metrics) {
		free(tl);
		return NULL;
	}
	return tl;
}

void timeline_free(struct timeline *tl)
{
	if (!tl)
		return;
	for (size_t i = 0; i < tl->series_count; i++)
		free(tl->series[i].points);
	free(tl->series);
	free(tl->nodes);
	free(tl->spans);
	free(tl->cmds);
	free(tl->events);
	metrics_rec_free(tl->metrics);
	free(tl);
}

void timeline_attach(struct timeline *tl, struct runner_opts *opts)
{
	opts->observe = timeline_observe;
	opts->observe_ctx = tl;
	if (!opts->trace) {
		opts->trace = timeline_trace;
		opts->trace_ctx = tl;
	}
}

const struct metrics *timeline_metrics(const struct timeline *tl)
{
	return metrics_rec_result(tl->metrics);
}

static void tl_span(struct timeline *tl, enum tl_span_kind kind, uint32_t node,
		    us_t from_us, us_t to_us)
{
	uint32_t detail = kind == TL_PARTITION ? tl->nodes[node].cut_count
			  : kind == TL_DOWN    ? tl->nodes[node].down_why
					       : 0;

	assert(from_us <= to_us);
	if (grow_array((void **)&tl->spans, &tl->span_cap, tl->span_count + 1,
		       sizeof *tl->spans)) {
		tl->oom = true;
		return;
	}
	tl->spans[tl->span_count++] =
		(struct tl_span){kind, node, from_us, to_us, detail};
}

/* Makes sure nodes 0..node are known (a node is known from its first
 * traced event: its start). Returns false when out of memory. */
static bool tl_node_known(struct timeline *tl, const struct world *w, uint32_t node,
			  us_t at_us)
{
	if (node < tl->node_count)
		return true;
	if (node >= world_node_count(w) ||
	    grow_array((void **)&tl->nodes, &tl->node_cap, (size_t)node + 1,
		       sizeof *tl->nodes)) {
		tl->oom = tl->oom || node < world_node_count(w);
		return false;
	}
	for (size_t i = tl->node_count; i <= node; i++) {
		struct tl_node *n = &tl->nodes[i];
		snprintf(n->name, sizeof n->name, "%s", world_node_name(w, (uint32_t)i));
		n->added_us = at_us;
		n->down_since = n->part_since = n->link_since = TL_NONE;
	}
	tl->node_count = (size_t)node + 1;
	return true;
}

/* A network fault changed: which nodes a partition cuts off, which have a
 * link rule. */
static void tl_fault(struct timeline *tl, const struct world *w, us_t at_us,
		     uint32_t node, uint64_t a, uint64_t b)
{
	bool heal = node >= world_node_count(w) && a == 0 && b == 0;

	for (size_t i = 0; i < tl->node_count; i++) {
		struct tl_node *n = &tl->nodes[i];
		uint32_t cut_count = 0;
		bool cut;
		for (size_t j = 0; j < tl->node_count; j++)
			cut_count +=
				j != i && world_net_blocked(w, (uint32_t)i, (uint32_t)j);
		cut = cut_count > 0;
		if (cut && n->part_since == TL_NONE) {
			n->part_since = at_us;
			n->cut_count = cut_count;
		}
		if (!cut && n->part_since != TL_NONE) {
			tl_span(tl, TL_PARTITION, (uint32_t)i, n->part_since, at_us);
			n->part_since = TL_NONE;
		}
		if (heal && n->link_since != TL_NONE) {
			tl_span(tl, TL_LINK, (uint32_t)i, n->link_since, at_us);
			n->link_since = TL_NONE;
		}
	}
	if (node < tl->node_count && a < tl->node_count) {
		/* a link rule node -> a */
		if (tl->nodes[node].link_since == TL_NONE)
			tl->nodes[node].link_since = at_us;
		if (tl->nodes[a].link_since == TL_NONE)
			tl->nodes[a].link_since = at_us;
	}
}

void timeline_trace(void *ctx, const struct world *w, us_t at_us, uint32_t node,
		    enum sim_ev_kind kind, uint64_t a, uint64_t b)
{
	struct timeline *tl = ctx;

	if (tl->finished)
		return;
	metrics_rec_trace(tl->metrics, w, at_us, node, kind, a, b);
	switch ((uint32_t)kind) {
	case SIM_EV_NODE_UP:
		if (tl_node_known(tl, w, node, at_us) &&
		    tl->nodes[node].down_since != TL_NONE) {
			tl_span(tl, TL_DOWN, node, tl->nodes[node].down_since, at_us);
			tl->nodes[node].down_since = TL_NONE;
		}
		break;
	case SIM_EV_NODE_DOWN:
		if (tl_node_known(tl, w, node, at_us) &&
		    tl->nodes[node].down_since == TL_NONE) {
			tl->nodes[node].down_since = at_us;
			tl->nodes[node].down_why = (uint32_t)a;
		}
		break;
	case SIM_EV_FAULT: tl_fault(tl, w, at_us, node, a, b); break;
	case TL_EV_CMD: {
		const struct scn_cmd *cmd = NULL;
		struct tl_command *c;
		for (size_t i = 0; i < tl->script->cmd_count && !cmd; i++)
			if (tl->script->cmds[i].line == a)
				cmd = &tl->script->cmds[i];
		if (grow_array((void **)&tl->cmds, &tl->cmd_cap, tl->cmd_count + 1,
			       sizeof *tl->cmds)) {
			tl->oom = true;
			break;
		}
		c = &tl->cmds[tl->cmd_count++];
		c->at_us = at_us;
		c->line = (uint32_t)a;
		snprintf(c->text, sizeof c->text, "%s",
			 cmd && cmd->text ? cmd->text : "?");
		break;
	}
	default: break;
	}
}

/* ---------------------------------------------------------------- samples */

struct tl_count {
	struct timeline *tl;
	uint32_t *running; /* by series index */
	size_t cap;
};

static struct tl_series *tl_series_get(struct timeline *tl, const char *name,
				       size_t *index)
{
	for (size_t i = 0; i < tl->series_count; i++)
		if (strcmp(tl->series[i].name, name) == 0) {
			*index = i;
			return &tl->series[i];
		}
	if (grow_array((void **)&tl->series, &tl->series_cap, tl->series_count + 1,
		       sizeof *tl->series)) {
		tl->oom = true;
		return NULL;
	}
	*index = tl->series_count;
	memset(&tl->series[*index], 0, sizeof tl->series[*index]);
	snprintf(tl->series[*index].name, sizeof tl->series[*index].name, "%s", name);
	tl->series_count++;
	return &tl->series[*index];
}

static void tl_count_one(void *ctx, const struct simexec_info *info)
{
	struct tl_count *c = ctx;
	size_t i;

	if (info->state != ENV_CTL_RUNNING || !info->service_name)
		return;
	if (!tl_series_get(c->tl, info->service_name, &i))
		return;
	if (grow_array((void **)&c->running, &c->cap, i + 1, sizeof *c->running)) {
		c->tl->oom = true;
		return;
	}
	c->running[i]++;
}

/* Counts running containers per service; appends a point to each series
 * whose count changed. */
static void tl_sample(struct timeline *tl, struct world *w, us_t now_us)
{
	struct tl_count c = {.tl = tl};

	simexec_foreach(world_exec(w), tl_count_one, &c);
	for (size_t i = 0; i < tl->series_count; i++) {
		struct tl_series *s = &tl->series[i];
		uint32_t n = i < c.cap && c.running ? c.running[i] : 0;
		if (s->count && s->points[s->count - 1].running == n)
			continue;
		if (grow_array((void **)&s->points, &s->cap, s->count + 1,
			       sizeof *s->points)) {
			tl->oom = true;
			continue;
		}
		/* a service that appears mid-run starts from 0 */
		if (s->count == 0 && now_us > 0 && n > 0) {
			s->points[s->count++] = (struct tl_point){now_us, 0};
			if (grow_array((void **)&s->points, &s->cap, s->count + 1,
				       sizeof *s->points)) {
				tl->oom = true;
				continue;
			}
		}
		s->points[s->count++] = (struct tl_point){now_us, n};
	}
	free(c.running);
}

static void tl_event_visit(void *arg, const struct events_event *ev)
{
	struct timeline *tl = arg;
	assert(tl->event_count < EVENTS_KEPT_MAX);
	tl->events[tl->event_count++] = *ev;
}

/* Copies the event stream of the leader (else of the first running
 * manager) at the end of the run (issue 20). */
static void tl_events(struct timeline *tl, const struct runner_view *v)
{
	int64_t leader = simcluster_leader(v->cluster);
	struct manager *m = NULL;
	struct events *e;
	uint64_t index, ni;
	uint32_t ord, no;
	uint32_t from = 0;
	char err[256];
	int n;

	if (leader >= 0)
		m = simcluster_manager(v->cluster, (uint32_t)(from = (uint32_t)leader));
	for (uint32_t i = 0; !m && i < world_node_count(v->w); i++)
		if ((m = simcluster_manager(v->cluster, i)))
			from = i;
	if (!m || !(e = manager_events(m)) || !events_oldest(e, &index, &ord))
		return;
	tl->events = malloc(EVENTS_KEPT_MAX * sizeof *tl->events);
	if (!tl->events) {
		tl->oom = true;
		return;
	}
	snprintf(tl->events_from, sizeof tl->events_from, "%s",
		 world_node_name(v->w, from));
	do {
		n = events_read(e, NULL, index, ord, EVENTS_READ_MAX, tl_event_visit, tl,
				&ni, &no, err, sizeof err);
		index = ni;
		ord = no;
	} while (n > 0);
}

void timeline_observe(void *ctx, const struct runner_view *v)
{
	struct timeline *tl = ctx;
	us_t now = world_now_us(v->w);
	int64_t leader;

	if (tl->finished)
		return;
	metrics_rec_observe(tl->metrics, v);
	/* asking who leads costs as much as an event: on a 10 ms grid, and
	 * when a command begins or ends */
	if (now < tl->next_leader_us && v->cmd == tl->last_cmd && !v->final)
		goto sample;
	tl->next_leader_us = now + TL_LEADER_US;
	tl->last_cmd = v->cmd;
	leader = simcluster_leader(v->cluster);
	if (leader != tl->leader) {
		if (tl->leader >= 0 && (size_t)tl->leader < tl->node_count)
			tl_span(tl, TL_LEADER, (uint32_t)tl->leader, tl->leader_since,
				now);
		tl->leader = leader;
		tl->leader_since = now;
	}
sample:
	if (now >= tl->next_sample_us || v->final) {
		tl_sample(tl, v->w, now);
		tl->next_sample_us = now - now % TL_SAMPLE_US + TL_SAMPLE_US;
	}
	if (!v->final)
		return;
	/* the end: close what is open */
	tl->end_us = now;
	tl_events(tl, v);
	if (tl->leader >= 0 && (size_t)tl->leader < tl->node_count)
		tl_span(tl, TL_LEADER, (uint32_t)tl->leader, tl->leader_since, now);
	tl->leader = -1;
	for (size_t i = 0; i < tl->node_count; i++) {
		struct tl_node *n = &tl->nodes[i];
		if (n->down_since != TL_NONE)
			tl_span(tl, TL_DOWN, (uint32_t)i, n->down_since, now);
		if (n->part_since != TL_NONE)
			tl_span(tl, TL_PARTITION, (uint32_t)i, n->part_since, now);
		if (n->link_since != TL_NONE)
			tl_span(tl, TL_LINK, (uint32_t)i, n->link_since, now);
		n->down_since = n->part_since = n->link_since = TL_NONE;
	}
	tl->finished = true;
}

void timeline_finish(struct timeline *tl, const struct runner_result *res)
{
	tl->end_us = res->sim_us;
	tl->failed = !res->passed;
	tl->fail_us = res->sim_us;
	snprintf(tl->fail_msg, sizeof tl->fail_msg, "%s",
		 res->passed ? "" : res->message);
}
