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
	TASKRUN_ARENA_MIN = 4096,
	TASKRUN_ALIGN = 16, /* every object protobuf-c asks room for */
};

/* Where a frame is unpacked: one buffer, reset after each frame, grown to
 * the largest frame's need; what does not fit in it meanwhile has blocks
 * of its own, freed at the reset (a StatusUpdate of 100 tasks is about
 * 400 small objects: a malloc and a free apiece before). */
struct taskrun_arena {
	unsigned char *buf;
	size_t cap, used;
	void **extra; /* blocks beyond buf, this frame's */
	size_t extra_count, extra_cap;
	size_t need; /* what this frame asked for, in all */
	bool oom;    /* extra could not be listed: the frame is not judged */
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
	struct taskrun_arena arena;
	bool broken;
	uint64_t broken_id;
	uint32_t broken_first, broken_node;
};

struct taskrun *taskrun_new(void)
{
	return calloc(1, sizeof(struct taskrun));
}

/* ---------------------------------------------------------------- arena */

static void *taskrun_arena_alloc(void *data, size_t size)
{
	struct taskrun_arena *a = data;
	size_t room = (size + TASKRUN_ALIGN - 1) / TASKRUN_ALIGN * TASKRUN_ALIGN;
	void *p;

	if (room < size)
		return NULL;
	a->need += room;
	if (a->buf && room <= a->cap - a->used) {
		p = a->buf + a->used;
		a->used += room;
		return p;
	}
	if (a->extra_count == a->extra_cap) {
		size_t cap = a->extra_cap ? 2 * a->extra_cap : 16;
		void **v = realloc(a->extra, cap * sizeof *v);
		if (!v) {
			a->oom = true;
			return NULL;
		}
		a->extra = v;
		a->extra_cap = cap;
	}
	p = malloc(size ? size : 1);
	if (p)
		a->extra[a->extra_count++] = p;
	return p;
}

static void taskrun_arena_free(void *data, void *p)
{
	(void)data;
	(void)p; /* all at once, in taskrun_arena_reset */
}

/* Frees what the last frame took; the buffer grows to hold its all. */
static void taskrun_arena_reset(struct taskrun_arena *a)
{
	for (size_t i = 0; i < a->extra_count; i++)
		free(a->extra[i]);
	if (a->extra_count && a->need > a->cap) {
		size_t cap = a->cap ? a->cap : TASKRUN_ARENA_MIN;
		unsigned char *buf;
		while (cap < a->need)
			cap *= 2;
		buf = malloc(cap);
		if (buf) {
			free(a->buf);
			a->buf = buf;
			a->cap = cap;
		}
	}
	a->extra_count = 0;
	a->used = 0;
	a->need = 0;
	a->oom = false;
}

void taskrun_free(struct taskrun *tr)
{
	if (!tr)
		return;
	taskrun_arena_reset(&tr->arena);
	free(tr->arena.buf);
	free(tr->arena.extra);
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
	ProtobufCAllocator alloc = {taskrun_arena_alloc, taskrun_arena_free, &tr->arena};
	Cs__Wire *wire;
	bool ok = true;

	if (len == 0 || data[0] != TASKRUN_TAG)
		return true;
	wire = cs__wire__unpack(&alloc, len, data);
	if (!wire || tr->arena.oom) {
		/* not ours to judge: the receiver refuses it (or, out of
		 * memory, the receiver's own unpack may fail too) */
		taskrun_arena_reset(&tr->arena);
		return true;
	}
	if (wire->status_update) {
		const Cs__StatusUpdate *u = wire->status_update;
		for (size_t i = 0; i < u->n_tasks; i++) {
			const Cs__Task *t = u->tasks[i];
			if (t && t->status &&
			    !taskrun_note(tr, node, t->id, t->status->state))
				ok = false;
		}
	}
	taskrun_arena_reset(&tr->arena); /* the unpacked frame with it */
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
