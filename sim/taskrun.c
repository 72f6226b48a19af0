/* taskrun: invariant 11, a task runs once. See taskrun.h. */
#include "sim/taskrun.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

enum {
	TASKRUN_RAN = 1,  /* reported RUNNING */
	TASKRUN_LEFT = 2, /* then reported in another state */
	/* the Wire's status_update (field 10, length-delimited): the first
	 * byte of every frame that carries one (a Wire holds one message) */
	TASKRUN_TAG = 10 << 3 | 2,
	TASKRUN_CAP_MIN = 1024, /* a power of two */
};

struct taskrun_entry {
	uint64_t id;
	uint32_t ran_node; /* the node that first reported it RUNNING */
	uint8_t used;
	uint8_t seen; /* TASKRUN_* */
};

struct taskrun {
	struct taskrun_entry *v; /* open addressing, linear probing */
	size_t cap;		 /* a power of two, or 0 */
	size_t count;
	bool oom; /* some task could not be followed */
	bool broken;
	uint64_t broken_id;
	uint32_t broken_first, broken_node;
};

struct taskrun *taskrun_new(void)
{
	return calloc(1, sizeof(struct taskrun));
}

void taskrun_free(struct taskrun *tr)
{
	if (!tr)
		return;
	free(tr->v);
	free(tr);
}

/* The slot of id in v (cap a power of two): its entry, or the free slot
 * where it goes. */
static struct taskrun_entry *taskrun_slot(struct taskrun_entry *v, size_t cap,
					  uint64_t id)
{
	size_t i = (size_t)hash_mix64(id) & (cap - 1);
	while (v[i].used && v[i].id != id)
		i = (i + 1) & (cap - 1);
	return &v[i];
}

/* Doubles the table (kept at most half full). Returns false when out of
 * memory (the table stays as it was). */
static bool taskrun_grow(struct taskrun *tr)
{
	size_t cap = tr->cap ? 2 * tr->cap : TASKRUN_CAP_MIN;
	struct taskrun_entry *v = calloc(cap, sizeof *v);

	if (!v)
		return false;
	for (size_t i = 0; i < tr->cap; i++)
		if (tr->v[i].used)
			*taskrun_slot(v, cap, tr->v[i].id) = tr->v[i];
	free(tr->v);
	tr->v = v;
	tr->cap = cap;
	return true;
}

bool taskrun_note(struct taskrun *tr, uint32_t node, uint64_t task_id,
		  Cs__TaskState state)
{
	struct taskrun_entry *e;
	bool running = state == CS__TASK_STATE__TASK_STATE_RUNNING;

	if (tr->cap == 0 || 2 * (tr->count + 1) > tr->cap) {
		if (!running && tr->cap == 0)
			return true; /* nothing ran yet: nothing to follow */
		if (!taskrun_grow(tr) && (tr->cap == 0 || tr->count + 1 >= tr->cap)) {
			tr->oom = true;
			return true;
		}
	}
	e = taskrun_slot(tr->v, tr->cap, task_id);
	if (!e->used) {
		if (!running)
			return true; /* only what ran needs following */
		e->used = 1;
		e->id = task_id;
		e->ran_node = node;
		e->seen = TASKRUN_RAN;
		tr->count++;
		return true;
	}
	assert(e->seen & TASKRUN_RAN);
	if (!running) {
		e->seen |= TASKRUN_LEFT;
		return true;
	}
	if (!(e->seen & TASKRUN_LEFT))
		return true; /* RUNNING again, as a report resent is */
	if (tr->broken)
		return true;
	tr->broken = true;
	tr->broken_id = task_id;
	tr->broken_first = e->ran_node;
	tr->broken_node = node;
	return false;
}

bool taskrun_frame(struct taskrun *tr, uint32_t node, const uint8_t *data, size_t len)
{
	Cs__Wire *wire;
	bool ok = true;

	if (len == 0 || data[0] != TASKRUN_TAG)
		return true;
	wire = cs__wire__unpack(NULL, len, data);
	if (!wire)
		return true; /* not ours to judge: the receiver refuses it */
	if (wire->status_update) {
		const Cs__StatusUpdate *u = wire->status_update;
		for (size_t i = 0; i < u->n_tasks; i++) {
			const Cs__Task *t = u->tasks[i];
			if (t && t->status &&
			    !taskrun_note(tr, node, t->id, t->status->state))
				ok = false;
		}
	}
	cs__wire__free_unpacked(wire, NULL);
	return ok;
}

bool taskrun_check(const struct taskrun *tr, char *msg, size_t size)
{
	if (!tr->broken)
		return true;
	snprintf(msg, size,
		 "invariant 11: task %016" PRIx64 " was reported RUNNING (node %" PRIu32
		 "), then in another state, then RUNNING again (node %" PRIu32
		 "): started twice under one id",
		 tr->broken_id, tr->broken_first, tr->broken_node);
	return false;
}

bool taskrun_broken(const struct taskrun *tr, uint32_t *first_node, uint32_t *node,
		    uint64_t *task_id)
{
	if (!tr->broken)
		return false;
	*first_node = tr->broken_first;
	*node = tr->broken_node;
	*task_id = tr->broken_id;
	return true;
}

size_t taskrun_count(const struct taskrun *tr)
{
	return tr->count;
}
