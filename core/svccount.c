/* svccount: per-service running and desired task counts. See svccount.h. */
#include "core/svccount.h"

#include "core/grow.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- entries */

/* The index of the first entry whose service id is at least id. */
static size_t svccount_lower(const struct svccount *c, uint64_t id)
{
	size_t lo = 0, hi = c->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->entries[mid].service_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct svccount_entry *svccount_find(const struct svccount *c, uint64_t id)
{
	size_t i = svccount_lower(c, id);
	return i < c->count && c->entries[i].service_id == id ? &c->entries[i] : NULL;
}

static bool svccount_entry_is_zero(const struct svccount_entry *e)
{
	return e->running == 0 && e->desired_running == 0 && e->completed == 0;
}

/* Adds d (sign +1) or takes it away (sign -1) from the entry of d's
 * service id, making the entry when it has none and dropping it when it
 * comes to all zero. Out of memory aborts (svccount.h). */
static void svccount_apply(struct svccount *c, const struct svccount_entry *d, int sign)
{
	size_t i;
	struct svccount_entry *e;

	if (svccount_entry_is_zero(d))
		return;
	i = svccount_lower(c, d->service_id);
	if (i == c->count || c->entries[i].service_id != d->service_id) {
		assert(sign > 0); /* nothing taken away that was not added */
		if (grow_array((void **)&c->entries, &c->cap, c->count + 1,
			       sizeof c->entries[0]))
			abort();
		memmove(&c->entries[i + 1], &c->entries[i],
			(c->count - i) * sizeof c->entries[0]);
		c->entries[i] = (struct svccount_entry){.service_id = d->service_id};
		c->count++;
	}
	e = &c->entries[i];
	if (sign > 0) {
		e->running += d->running;
		e->desired_running += d->desired_running;
		e->completed += d->completed;
	} else {
		assert(e->running >= d->running);
		assert(e->desired_running >= d->desired_running);
		assert(e->completed >= d->completed);
		e->running -= d->running;
		e->desired_running -= d->desired_running;
		e->completed -= d->completed;
	}
	assert(e->running <= e->desired_running);
	if (svccount_entry_is_zero(e)) {
		memmove(&c->entries[i], &c->entries[i + 1],
			(c->count - i - 1) * sizeof c->entries[0]);
		c->count--;
	}
}

/* ---------------------------------------------------------------- the rule */

/* Whether node id is in s and not DOWN (Docker's active node). */
static bool svccount_node_active(const struct store *s, uint64_t id)
{
	const Cs__Node *n = store_node_get(s, id);
	return n && n->state != CS__NODE_STATE__NODE_STATE_DOWN;
}

static bool svccount_task_runs(const Cs__Task *t)
{
	return t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING && t->status &&
	       t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING;
}

/* What task t adds to its service's entry, its node looked up in s. */
static struct svccount_entry svccount_of_task(const struct store *s, const Cs__Task *t)
{
	struct svccount_entry d = {.service_id = t->service_id};

	d.desired_running = t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING;
	d.completed =
		t->status && t->status->state == CS__TASK_STATE__TASK_STATE_COMPLETE;
	d.running = svccount_task_runs(t) && svccount_node_active(s, t->node_id);
	return d;
}

static bool svccount_node_down(const ProtobufCMessage *m)
{
	return m && ((const Cs__Node *)m)->state == CS__NODE_STATE__NODE_STATE_DOWN;
}

static bool svccount_node_up(const ProtobufCMessage *m)
{
	return m && !svccount_node_down(m);
}

/* ---------------------------------------------------------------- updates */

/* A walk of one node's tasks (store_task_scan_by_node from its id: the
 * scan goes on to the next nodes, so it stops at the first task past). */
struct svccount_node_walk {
	struct svccount *c;
	uint64_t node_id;
	int sign; /* +1: the node's running tasks count again; -1: no more */
};

static int svccount_node_task(void *arg, const Cs__Task *t)
{
	struct svccount_node_walk *w = arg;
	struct svccount_entry d = {.service_id = t->service_id};

	assert(t->node_id >= w->node_id);
	if (t->node_id != w->node_id)
		return 1;
	d.running = svccount_task_runs(t);
	svccount_apply(w->c, &d, w->sign);
	return 0;
}

void svccount_event(struct svccount *c, const struct store *s,
		    const struct store_event *ev)
{
	if (ev->table == STORE_TASK) {
		struct svccount_entry was = {0}, now = {0};
		if (ev->old_obj)
			was = svccount_of_task(s, (const Cs__Task *)ev->old_obj);
		if (ev->new_obj)
			now = svccount_of_task(s, (const Cs__Task *)ev->new_obj);
		if (was.service_id == now.service_id && was.running == now.running &&
		    was.desired_running == now.desired_running &&
		    was.completed == now.completed)
			return; /* most updates: a placement, a step before RUNNING */
		svccount_apply(c, &was, -1);
		svccount_apply(c, &now, +1);
		return;
	}
	if (ev->table == STORE_NODE) {
		bool up_was = svccount_node_up(ev->old_obj);
		bool up_now = svccount_node_up(ev->new_obj);
		const ProtobufCMessage *any = ev->new_obj ? ev->new_obj : ev->old_obj;
		uint64_t id;

		assert(any != NULL);
		id = ((const Cs__Node *)any)->id;
		if (svccount_node_down(ev->old_obj)) {
			assert(c->nodes_down > 0);
			c->nodes_down--;
		}
		if (svccount_node_down(ev->new_obj))
			c->nodes_down++;
		if (up_was == up_now)
			return;
		/* the node's running tasks stop or start counting: O(its tasks) */
		{
			struct svccount_node_walk w = {c, id, up_now ? +1 : -1};
			store_task_scan_by_node(s, id, svccount_node_task, &w);
		}
	}
}

/* What a rebuild's walk adds to, and the store it reads. */
struct svccount_walk {
	struct svccount *c;
	const struct store *s;
};

/* store_task_scan's callback of a rebuild. */
static int svccount_add_task(void *arg, const Cs__Task *t)
{
	struct svccount_walk *r = arg;
	struct svccount_entry d = svccount_of_task(r->s, t);
	svccount_apply(r->c, &d, +1);
	return 0;
}

void svccount_rebuild(struct svccount *c, const struct store *s)
{
	struct svccount_walk r = {c, s};

	c->count = 0;
	c->nodes_down = svccount_recount_nodes_down(s);
	store_task_scan(s, svccount_add_task, &r);
}

void svccount_free(struct svccount *c)
{
	free(c->entries);
	*c = (struct svccount){0};
}

/* ---------------------------------------------------------------- reads */

/* A service's desired count from its spec and its tasks desired RUNNING:
 * replicas for a replicated service (max_concurrent for a replicated job
 * that sets it: SwarmKit's), the tasks desired RUNNING for a global one. */
static uint64_t svccount_desired(const Cs__Service *svc, uint64_t desired_running)
{
	const Cs__ServiceSpec *spec = svc->spec;

	if (!spec)
		return 0;
	if (spec->global)
		return desired_running;
	if (spec->job && spec->max_concurrent && spec->max_concurrent < spec->replicas)
		return spec->max_concurrent;
	return spec->replicas;
}

void svccount_service(const struct svccount *c, const Cs__Service *svc,
		      struct svccount_counts *out)
{
	const struct svccount_entry *e = svccount_find(c, svc->id);

	out->running = e ? e->running : 0;
	out->completed = e ? e->completed : 0;
	out->desired = svccount_desired(svc, e ? e->desired_running : 0);
}

void svccount_recount(const struct store *s, const Cs__Service *svc,
		      struct svccount_counts *out)
{
	uint64_t desired_running = 0;

	out->running = out->completed = 0;
	for (const Cs__Task *t = store_task_next_by_service(s, svc->id, NULL); t;
	     t = store_task_next_by_service(s, svc->id, t)) {
		struct svccount_entry d = svccount_of_task(s, t);
		desired_running += d.desired_running;
		out->running += d.running;
		out->completed += d.completed;
	}
	out->desired = svccount_desired(svc, desired_running);
}

uint64_t svccount_recount_nodes_down(const struct store *s)
{
	uint64_t down = 0;

	for (const Cs__Node *n = store_node_next(s, NULL); n; n = store_node_next(s, n))
		down += n->state == CS__NODE_STATE__NODE_STATE_DOWN;
	return down;
}

bool svccount_check(const struct svccount *c, const struct store *s, char *msg,
		    size_t size)
{
	struct svccount fresh = {0};
	bool ok = true;

	for (const Cs__Service *svc = store_service_next(s, NULL); ok && svc;
	     svc = store_service_next(s, svc)) {
		struct svccount_counts kept, counted;
		svccount_service(c, svc, &kept);
		svccount_recount(s, svc, &counted);
		if (kept.running != counted.running || kept.desired != counted.desired ||
		    kept.completed != counted.completed) {
			snprintf(msg, size,
				 "service %" PRIx64 ": kept %" PRIu64 "/%" PRIu64
				 " (%" PRIu64 " complete), counted %" PRIu64 "/%" PRIu64
				 " (%" PRIu64 " complete)",
				 svc->id, kept.running, kept.desired, kept.completed,
				 counted.running, counted.desired, counted.completed);
			ok = false;
		}
	}
	if (!ok)
		return false;
	svccount_rebuild(&fresh, s);
	if (fresh.nodes_down != c->nodes_down) {
		snprintf(msg, size, "nodes down: kept %" PRIu64 ", counted %" PRIu64,
			 c->nodes_down, fresh.nodes_down);
		ok = false;
	} else if (fresh.count != c->count ||
		   (c->count && memcmp(fresh.entries, c->entries,
				       c->count * sizeof c->entries[0]) != 0)) {
		snprintf(msg, size,
			 "entries: kept %zu, counted %zu (or their counts differ)",
			 c->count, fresh.count);
		ok = false;
	}
	svccount_free(&fresh);
	return ok;
}
