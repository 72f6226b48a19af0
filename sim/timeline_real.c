/* timeline_real: see timeline_real.h. */
#include "sim/timeline_real.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "core/grow.h"
#include "sim/world.h"

static void tlr_span(struct timeline *tl, enum tl_span_kind kind, uint32_t node,
		     us_t from_us, us_t to_us, uint32_t detail)
{
	assert(from_us <= to_us);
	if (grow_array((void **)&tl->spans, &tl->span_cap, tl->span_count + 1,
		       sizeof *tl->spans)) {
		tl->oom = true;
		return;
	}
	tl->spans[tl->span_count++] =
		(struct tl_span){kind, node, from_us, to_us, detail};
}

static bool tlr_known(const struct timeline *tl, uint32_t node)
{
	return node < tl->node_count;
}

void timeline_real_node(struct timeline *tl, uint32_t node, const char *name, us_t at_us)
{
	if (grow_array((void **)&tl->nodes, &tl->node_cap, (size_t)node + 1,
		       sizeof *tl->nodes)) {
		tl->oom = true;
		return;
	}
	while (tl->node_count <= node) {
		struct tl_node *n = &tl->nodes[tl->node_count++];
		memset(n, 0, sizeof *n);
		n->down_since = n->part_since = n->link_since = TL_NONE;
		n->added_us = at_us;
	}
	snprintf(tl->nodes[node].name, sizeof tl->nodes[node].name, "%s", name);
}

void timeline_real_down(struct timeline *tl, uint32_t node, bool machine, us_t at_us)
{
	if (!tlr_known(tl, node) || tl->nodes[node].down_since != TL_NONE)
		return;
	tl->nodes[node].down_since = at_us;
	tl->nodes[node].down_why = machine ? WORLD_DOWN_MACHINE : WORLD_DOWN_PROCESS;
}

void timeline_real_up(struct timeline *tl, uint32_t node, us_t at_us)
{
	struct tl_node *n;
	if (!tlr_known(tl, node) || tl->nodes[node].down_since == TL_NONE)
		return;
	n = &tl->nodes[node];
	tlr_span(tl, TL_DOWN, node, n->down_since, at_us, n->down_why);
	n->down_since = TL_NONE;
}

void timeline_real_leader(struct timeline *tl, int64_t leader, us_t at_us)
{
	if (leader == tl->leader)
		return;
	if (tl->leader >= 0 && tlr_known(tl, (uint32_t)tl->leader))
		tlr_span(tl, TL_LEADER, (uint32_t)tl->leader, tl->leader_since, at_us, 0);
	tl->leader = leader;
	tl->leader_since = at_us;
}

void timeline_real_cut(struct timeline *tl, uint32_t node, uint32_t cut_count, us_t at_us)
{
	struct tl_node *n;
	if (!tlr_known(tl, node))
		return;
	n = &tl->nodes[node];
	if (n->part_since != TL_NONE && n->cut_count != cut_count) {
		tlr_span(tl, TL_PARTITION, node, n->part_since, at_us, n->cut_count);
		n->part_since = TL_NONE;
	}
	if (cut_count && n->part_since == TL_NONE) {
		n->part_since = at_us;
		n->cut_count = cut_count;
	}
}

void timeline_real_link(struct timeline *tl, uint32_t node, bool on, us_t at_us)
{
	struct tl_node *n;
	if (!tlr_known(tl, node))
		return;
	n = &tl->nodes[node];
	if (!on && n->link_since != TL_NONE) {
		tlr_span(tl, TL_LINK, node, n->link_since, at_us, 0);
		n->link_since = TL_NONE;
	} else if (on && n->link_since == TL_NONE) {
		n->link_since = at_us;
	}
}

void timeline_real_running(struct timeline *tl, const char *svc, uint32_t running,
			   us_t at_us)
{
	struct tl_series *s = NULL;
	for (size_t i = 0; i < tl->series_count && !s; i++)
		if (strcmp(tl->series[i].name, svc) == 0)
			s = &tl->series[i];
	if (!s) {
		if (running == 0)
			return;
		if (grow_array((void **)&tl->series, &tl->series_cap,
			       tl->series_count + 1, sizeof *tl->series)) {
			tl->oom = true;
			return;
		}
		s = &tl->series[tl->series_count++];
		memset(s, 0, sizeof *s);
		snprintf(s->name, sizeof s->name, "%s", svc);
		if (at_us > 0) {
			if (grow_array((void **)&s->points, &s->cap, 1,
				       sizeof *s->points)) {
				tl->oom = true;
				return;
			}
			s->points[s->count++] = (struct tl_point){at_us, 0};
		}
	}
	if (s->count && s->points[s->count - 1].running == running)
		return;
	if (grow_array((void **)&s->points, &s->cap, s->count + 1, sizeof *s->points)) {
		tl->oom = true;
		return;
	}
	s->points[s->count++] = (struct tl_point){at_us, running};
}

void timeline_real_command(struct timeline *tl, uint32_t line, const char *text,
			   us_t at_us)
{
	struct tl_command *c;
	if (grow_array((void **)&tl->cmds, &tl->cmd_cap, tl->cmd_count + 1,
		       sizeof *tl->cmds)) {
		tl->oom = true;
		return;
	}
	c = &tl->cmds[tl->cmd_count++];
	c->at_us = at_us;
	c->line = line;
	snprintf(c->text, sizeof c->text, "%s", text ? text : "?");
}

void timeline_real_end(struct timeline *tl, us_t at_us)
{
	timeline_real_leader(tl, -1, at_us);
	for (uint32_t i = 0; i < tl->node_count; i++) {
		timeline_real_up(tl, i, at_us);
		timeline_real_cut(tl, i, 0, at_us);
		timeline_real_link(tl, i, false, at_us);
	}
	tl->end_us = at_us;
	tl->finished = true;
}
