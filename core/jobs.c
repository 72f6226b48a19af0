/* jobs: replicated and global jobs. See jobs.h. Sections: places (what one
 * slot or node of a job holds, and what it needs), replicated jobs, global
 * jobs, progress (read only), the loop, the component. */
#include "core/jobs.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/grow.h"
#include "core/limits.h"
#include "core/orchestrator.h"
#include "core/scheduler.h"
#include "core/sort.h"
#include "core/store.h"

enum {
	JOBS_DEBOUNCE_MS = 5,	   /* changes gather this long before a pass */
	JOBS_PLACE_TASKS_MAX = 64, /* tasks of one place looked at in a pass */
	JOBS_FRESH_MAX = 1024,	   /* new places a pass starts, at most */
};

/* A pass stops adding to its batch past this many encoded bytes (as the
 * orchestrator's: a quarter of a frame, the place being looked at adds at
 * most 2 x JOBS_PLACE_TASKS_MAX small writes to it). */
#define JOBS_BATCH_BYTES_MAX (LIMIT_FRAME_BYTES_MAX / 4)
/* finished tasks a place keeps at most, whatever max attempts says */
#define JOBS_HIST_MAX (JOBS_PLACE_TASKS_MAX - 8)

/* A place (slot, or node of a global job) that may not get its restarted
 * task before a time. */
struct jobs_delay {
	uint64_t service_id;
	uint64_t place;
	ms_t not_before_ms;
};

struct jobs {
	const struct leader_ctx *ctx;
	struct env *env;
	env_timer_id pass_timer, wake_timer;
	ms_t wake_at_ms; /* when wake_timer fires: the earliest delay's end */
	bool writing;	 /* one write in flight at a time */
	bool dirty;	 /* changes since the last pass */
	bool stopped, dying;
	bool all_dirty; /* look at every job (a node changed, a pass cut short) */
	uint64_t *dirty_svcs;
	size_t dirty_count, dirty_cap;
	struct jobs_delay *delays;
	size_t delay_count, delay_cap;
};

bool jobs_is_job(const Cs__Service *svc)
{
	return svc && svc->spec && svc->spec->job;
}

uint64_t jobs_iteration(const Cs__Service *svc)
{
	return svc->job_status ? svc->job_status->job_iteration : 0;
}

uint64_t jobs_max_concurrent(const Cs__Service *svc)
{
	uint64_t total = svc->spec->replicas, max = svc->spec->max_concurrent;
	assert(!svc->spec->global);
	return max == 0 || max > total ? total : max;
}

/* ---------------------------------------------------------------- places */

/* One pass over one job: where it writes (NULL: read only), and what it
 * needs to. */
struct jobs_scan {
	const struct store *st;
	struct jobs *j;		   /* NULL: read only */
	struct store_batch *batch; /* NULL: read only */
	ms_t now_ms;
	uint64_t history; /* finished tasks a place keeps (task history) */
	bool more;	  /* the pass stopped short: another one goes on */
};

/* What one place holds of a job's current iteration. */
struct jobs_place {
	/* the finished tasks the restart policy counts over (ending now or
	 * before), and of those the ones history may delete */
	const Cs__Task *ended[JOBS_PLACE_TASKS_MAX];
	size_t ended_count;
	const Cs__Task *hist[JOBS_PLACE_TASKS_MAX];
	size_t hist_count;
	const Cs__Task *last_end; /* the one that ended last */
	bool complete;		  /* a task of it COMPLETE: done for good */
	bool live;		  /* a task of it runs, or is on its way to */
	bool occupied;		  /* a task (of any iteration) still stops */
	bool node_died;		  /* its task's node went down in this pass */
};

/* What a place needs. */
enum jobs_verdict {
	JOBS_COMPLETE,	     /* done */
	JOBS_BUSY,	     /* a task runs or stops there */
	JOBS_GAVE_UP,	     /* the restart policy gave up on it */
	JOBS_FRESH,	     /* never had a task of this iteration */
	JOBS_RESTART_NOW,    /* a new task at once (node died, task moved) */
	JOBS_RESTART_DELAYED /* a new task after the restart delay */
};

static bool jobs_terminal(const Cs__Task *t)
{
	return t->status && orchestrator_is_terminal(t->status->state);
}

/* Newest end first, then by id: the order history keeps. */
static int jobs_hist_cmp(const void *a, const void *b)
{
	const Cs__Task *x = *(const Cs__Task *const *)a, *y = *(const Cs__Task *const *)b;
	uint64_t tx = x->status ? x->status->timestamp_ms : 0;
	uint64_t ty = y->status ? y->status->timestamp_ms : 0;
	if (tx != ty)
		return tx > ty ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Adds a copy of t with a new desired state (and message) to the pass. */
static void jobs_set_desired(struct jobs_scan *sc, const Cs__Task *t,
			     Cs__TaskState desired, const char *why)
{
	if (sc->batch)
		(void)orchestrator_batch_desired(sc->batch, t, desired, why);
}

static void jobs_delete(struct jobs_scan *sc, const Cs__Task *t)
{
	if (sc->batch)
		(void)store_batch_task(sc->batch, CS__STORE_ACTION__KIND__KIND_DELETE, t);
}

/* A new task of svc's current iteration in slot (replicated) or on node_id
 * (global). */
static void jobs_create(struct jobs_scan *sc, const Cs__Service *svc, uint64_t slot,
			uint64_t node_id)
{
	struct env *env;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus status = CS__TASK_STATUS__INIT;

	assert(slot == 0 || node_id == 0);
	if (!sc->batch)
		return;
	env = leader_env(sc->j->ctx);
	t.id = env->ops->random_u64(env) | 1;
	t.service_id = svc->id;
	t.slot = slot;
	t.node_id = node_id;
	/* what cswarm's scheduler and agents run; COMPLETE once done */
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t.spec_version = svc->spec_version;
	t.job_iteration = jobs_iteration(svc);
	status.state = CS__TASK_STATE__TASK_STATE_PENDING;
	status.timestamp_ms = sc->now_ms;
	status.message = "pending task scheduling";
	t.status = &status;
	(void)store_batch_task(sc->batch, CS__STORE_ACTION__KIND__KIND_CREATE, &t);
}

static bool jobs_batch_full(const struct jobs_scan *sc)
{
	return sc->batch &&
	       (sc->batch->action_count >=
			LIMIT_STORE_BATCH_ACTIONS - 2 * JOBS_PLACE_TASKS_MAX ||
		store_batch_bytes(sc->batch) >= JOBS_BATCH_BYTES_MAX);
}

static void jobs_note_end(struct jobs_place *pl, const Cs__Task *t, bool deletable)
{
	if (!pl->last_end || jobs_hist_cmp(&t, &pl->last_end) < 0)
		pl->last_end = t;
	if (pl->ended_count < JOBS_PLACE_TASKS_MAX)
		pl->ended[pl->ended_count++] = t;
	if (deletable && pl->hist_count < JOBS_PLACE_TASKS_MAX)
		pl->hist[pl->hist_count++] = t;
}

/* Looks at task t of job svc in place pl. wanted: the place belongs to the
 * current iteration (a slot within replicas); fit: its node may keep a task
 * of the job (why not, else). Stops and deletes what must go. */
static void jobs_place_task(struct jobs_scan *sc, const Cs__Service *svc,
			    const Cs__Task *t, struct jobs_place *pl, bool wanted,
			    const char *unfit_why)
{
	bool terminal = jobs_terminal(t);
	bool down = orchestrator_node_is_down(sc->st, t->node_id);
	bool never_placed =
		t->status && t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED;

	if (!wanted || t->job_iteration != jobs_iteration(svc)) {
		/* an earlier run's (SwarmKit: desired REMOVE): gone once
		 * finished; the place waits until then (one task per slot) */
		if (terminal || down ||
		    (never_placed &&
		     t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING)) {
			jobs_delete(sc, t);
			return;
		}
		pl->occupied = true;
		if (t->desired_state != CS__TASK_STATE__TASK_STATE_REMOVE)
			jobs_set_desired(sc, t, CS__TASK_STATE__TASK_STATE_REMOVE,
					 "job rerun");
		return;
	}
	if (t->status && t->status->state == CS__TASK_STATE__TASK_STATE_COMPLETE) {
		/* done for good: never restarted, kept (history spares it) */
		pl->complete = true;
		if (t->desired_state < CS__TASK_STATE__TASK_STATE_COMPLETE)
			jobs_set_desired(sc, t, CS__TASK_STATE__TASK_STATE_COMPLETE,
					 NULL);
		return;
	}
	if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING) {
		if (terminal || down) {
			/* failed, or its node died: shut in the store, and the
			 * place decides below */
			jobs_set_desired(sc, t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					 down ? "node is down" : NULL);
			pl->node_died |= down && !terminal;
			jobs_note_end(pl, t, false);
			return;
		}
		if (unfit_why || pl->live) {
			/* drained, no longer meeting its constraints, or a
			 * second one: moved off once it stopped, at once */
			jobs_set_desired(sc, t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					 unfit_why ? unfit_why : "duplicate in slot");
			pl->occupied = true;
			return;
		}
		pl->live = true;
		return;
	}
	if (never_placed) {
		jobs_delete(sc, t); /* nothing runs it, nothing will */
		return;
	}
	if (!terminal && !down) {
		pl->occupied = true; /* still stopping */
		return;
	}
	jobs_note_end(pl, t, true);
}

/* How many finished tasks a place keeps: the history setting, and at least
 * as many as the policy's most attempts needs counted (the orchestrator's
 * rule); never fewer than one, which tells a place that had a task from a
 * fresh one. COMPLETE tasks are not history: they are the job's result. */
static size_t jobs_keep(const struct jobs_scan *sc, const Cs__Service *svc)
{
	const Cs__RestartPolicy *p = svc->spec->task ? svc->spec->task->restart : NULL;
	size_t keep = sc->history ? (size_t)sc->history : 1;
	if (p && p->max_attempts && p->max_attempts + 1 > keep)
		keep = p->max_attempts + 1 < JOBS_HIST_MAX ? (size_t)p->max_attempts + 1
							   : JOBS_HIST_MAX;
	return keep;
}

static void jobs_reap(struct jobs_scan *sc, const Cs__Service *svc, struct jobs_place *pl)
{
	size_t keep = jobs_keep(sc, svc);
	if (!sc->batch || pl->hist_count <= keep)
		return;
	qsort(pl->hist, pl->hist_count, sizeof *pl->hist, jobs_hist_cmp);
	for (size_t i = keep; i < pl->hist_count; i++)
		jobs_delete(sc, pl->hist[i]);
}

/* What place pl needs, once its tasks were looked at. */
static enum jobs_verdict jobs_verdict(const Cs__Service *svc, const struct jobs_place *pl)
{
	size_t restarts;

	if (pl->complete)
		return JOBS_COMPLETE;
	if (pl->live || pl->occupied)
		return JOBS_BUSY;
	if (!pl->last_end)
		return JOBS_FRESH;
	if (pl->node_died)
		return JOBS_RESTART_NOW; /* not the task's crash loop: no delay */
	restarts = orchestrator_restarts(svc, pl->ended, pl->ended_count, pl->last_end);
	/* a job's task that completed never gets here; condition any is
	 * on-failure for a job (SwarmKit's restart supervisor) */
	if (!orchestrator_may_restart(svc, pl->last_end, restarts ? restarts - 1 : 0))
		return JOBS_GAVE_UP;
	if (pl->last_end->status &&
	    pl->last_end->status->state == CS__TASK_STATE__TASK_STATE_SHUTDOWN)
		return JOBS_RESTART_NOW; /* stopped on request (drained, moved) */
	return JOBS_RESTART_DELAYED;
}

static struct jobs_delay *jobs_delay_find(struct jobs *j, uint64_t service_id,
					  uint64_t place)
{
	for (size_t i = 0; i < j->delay_count; i++)
		if (j->delays[i].service_id == service_id && j->delays[i].place == place)
			return &j->delays[i];
	return NULL;
}

static void jobs_delay_clear(struct jobs *j, uint64_t service_id, uint64_t place)
{
	struct jobs_delay *d = jobs_delay_find(j, service_id, place);
	if (d)
		*d = j->delays[--j->delay_count];
}

/* Whether a place whose task failed may get its new one now: its restart
 * delay, counted from the pass that first saw the failure (the delay is
 * cleared when the new task is made), has run out. Out of memory for the
 * delay: at once. */
static bool jobs_delay_over(struct jobs_scan *sc, const Cs__Service *svc, uint64_t place)
{
	struct jobs *j = sc->j;
	struct jobs_delay *d = jobs_delay_find(j, svc->id, place);
	ms_t delay = orchestrator_restart_delay(svc);

	if (!d) {
		if (delay == 0 || grow_array((void **)&j->delays, &j->delay_cap,
					     j->delay_count + 1, sizeof *j->delays))
			return true;
		d = &j->delays[j->delay_count++];
		d->service_id = svc->id;
		d->place = place;
		d->not_before_ms = sc->now_ms + delay;
	}
	return d->not_before_ms <= sc->now_ms;
}

/* Acts on a place that had a task: restarts it when its verdict says so
 * (the delay permitting). Returns whether the place counts as running. */
static bool jobs_restart(struct jobs_scan *sc, const Cs__Service *svc, uint64_t place,
			 enum jobs_verdict v, uint64_t slot, uint64_t node_id)
{
	if (v == JOBS_RESTART_DELAYED && sc->j && !jobs_delay_over(sc, svc, place))
		return true; /* waits, and holds its place in max concurrent */
	if (sc->j)
		jobs_delay_clear(sc->j, svc->id, place);
	jobs_create(sc, svc, slot, node_id);
	return true;
}

/* ---------------------------------------------------------------- replicated jobs */

/* Whether a task of svc on node_id must move: drained, or its constraints
 * no longer met. Returns why, or NULL. */
static const char *jobs_unfit(const struct store *st, const Cs__Service *svc,
			      uint64_t node_id)
{
	const Cs__Node *n = node_id ? store_node_get(st, node_id) : NULL;
	if (!n)
		return NULL;
	if (n->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN)
		return "node drained";
	if (!sched_node_satisfies(svc, n))
		return "constraint no longer satisfied";
	return NULL;
}

/* Replicated job svc: slots 1..replicas each want one COMPLETE task of the
 * current iteration; new ones start in slot order while fewer than
 * max_concurrent run (SwarmKit's replicated job reconciler: running tasks,
 * failed ones waiting for their restart included, count). Fills *out. */
static void jobs_replicated(struct jobs_scan *sc, const Cs__Service *svc,
			    struct jobs_progress *out)
{
	uint64_t total = svc->spec->replicas, max_slot = total;
	uint64_t fresh[JOBS_FRESH_MAX], max_run = jobs_max_concurrent(svc);
	size_t fresh_count = 0;

	memset(out, 0, sizeof *out);
	out->iteration = jobs_iteration(svc);
	out->desired = total;
	for (const Cs__Task *t = store_task_next_by_service(sc->st, svc->id, NULL); t;
	     t = store_task_next_by_service(sc->st, svc->id, t))
		if (t->slot > max_slot)
			max_slot = t->slot;
	for (uint64_t slot = 1; slot <= max_slot; slot++) {
		struct jobs_place pl;
		enum jobs_verdict v;
		bool wanted = slot <= total;
		size_t n = 0;

		if (jobs_batch_full(sc)) {
			sc->more = true;
			return;
		}
		memset(&pl, 0, sizeof pl);
		for (const Cs__Task *t =
			     store_task_next_in_slot(sc->st, svc->id, slot, NULL);
		     t && n < JOBS_PLACE_TASKS_MAX;
		     t = store_task_next_in_slot(sc->st, svc->id, slot, t), n++)
			jobs_place_task(sc, svc, t, &pl, wanted,
					t->desired_state <=
							CS__TASK_STATE__TASK_STATE_RUNNING
						? jobs_unfit(sc->st, svc, t->node_id)
						: NULL);
		jobs_reap(sc, svc, &pl);
		if (!wanted) {
			out->running += pl.occupied;
			continue;
		}
		v = jobs_verdict(svc, &pl);
		if (v != JOBS_RESTART_DELAYED && sc->j && sc->j->delay_count)
			jobs_delay_clear(sc->j, svc->id, slot); /* not waiting */
		switch (v) {
		case JOBS_COMPLETE: out->completed++; break;
		case JOBS_BUSY: out->running++; break;
		case JOBS_GAVE_UP: out->gave_up++; break;
		case JOBS_FRESH:
			if (fresh_count < JOBS_FRESH_MAX)
				fresh[fresh_count++] = slot;
			else
				sc->more = true;
			break;
		case JOBS_RESTART_NOW:
		case JOBS_RESTART_DELAYED:
			out->running += jobs_restart(sc, svc, slot, v, slot, 0);
			break;
		}
	}
	/* new slots, lowest first, up to max concurrent */
	for (size_t i = 0; i < fresh_count && out->running < max_run; i++) {
		if (jobs_batch_full(sc)) {
			sc->more = true;
			return;
		}
		if (!sc->batch)
			break; /* read only: what runs, not what would start */
		jobs_create(sc, svc, fresh[i], 0);
		out->running++;
	}
}

/* ---------------------------------------------------------------- global jobs */

/* Whether node n takes a new task of global job svc: ready, active (not
 * paused or drained) and meeting its constraints (SwarmKit's global job
 * reconciler's candidate nodes). */
static bool jobs_node_eligible(const Cs__Service *svc, const Cs__Node *n)
{
	return n->state == CS__NODE_STATE__NODE_STATE_READY &&
	       n->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE &&
	       sched_node_satisfies(svc, n);
}

/* Why a task of svc may not stay on node n: drained, or its constraints no
 * longer met (a paused node keeps its task; a down node's is seen as such).
 * NULL: it may. */
static const char *jobs_node_unfit(const Cs__Service *svc, const Cs__Node *n)
{
	if (n->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN)
		return "node drained";
	if (!sched_node_satisfies(svc, n))
		return "node not eligible";
	return NULL;
}

/* Global job svc: one COMPLETE task of the current iteration on every
 * eligible node. Fills *out. */
static void jobs_global(struct jobs_scan *sc, const Cs__Service *svc,
			struct jobs_progress *out)
{
	memset(out, 0, sizeof *out);
	out->iteration = jobs_iteration(svc);
	for (const Cs__Node *n = store_node_next(sc->st, NULL); n;
	     n = store_node_next(sc->st, n)) {
		bool eligible = jobs_node_eligible(svc, n);
		const char *unfit = jobs_node_unfit(svc, n);
		struct jobs_place pl;
		enum jobs_verdict v;
		size_t count = 0;

		if (jobs_batch_full(sc)) {
			sc->more = true;
			return;
		}
		memset(&pl, 0, sizeof pl);
		for (const Cs__Task *t = store_task_next_by_node(sc->st, n->id, NULL);
		     t && count < JOBS_PLACE_TASKS_MAX;
		     t = store_task_next_by_node(sc->st, n->id, t)) {
			if (t->service_id != svc->id)
				continue;
			count++;
			jobs_place_task(sc, svc, t, &pl, true, unfit);
		}
		jobs_reap(sc, svc, &pl);
		v = jobs_verdict(svc, &pl);
		if ((v != JOBS_RESTART_DELAYED || !eligible) && sc->j &&
		    sc->j->delay_count)
			jobs_delay_clear(sc->j, svc->id, n->id); /* not waiting */
		out->desired += eligible || v == JOBS_COMPLETE || pl.live;
		switch (v) {
		case JOBS_COMPLETE: out->completed++; break;
		case JOBS_BUSY: out->running++; break;
		case JOBS_GAVE_UP: out->gave_up += eligible; break;
		case JOBS_FRESH:
			if (eligible && sc->batch) {
				jobs_create(sc, svc, 0, n->id);
				out->running++;
			}
			break;
		case JOBS_RESTART_NOW:
		case JOBS_RESTART_DELAYED:
			if (eligible)
				out->running += jobs_restart(sc, svc, n->id, v, 0, n->id);
			break;
		}
	}
	/* tasks on nodes gone from the store (node rm): shut, then gone */
	for (const Cs__Task *t = store_task_next_by_service(sc->st, svc->id, NULL); t;
	     t = store_task_next_by_service(sc->st, svc->id, t)) {
		if (!t->node_id || store_node_get(sc->st, t->node_id))
			continue;
		if (jobs_batch_full(sc)) {
			sc->more = true;
			return;
		}
		if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING)
			jobs_set_desired(sc, t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					 "node removed");
		else
			jobs_delete(sc, t);
	}
}

static void jobs_service(struct jobs_scan *sc, const Cs__Service *svc,
			 struct jobs_progress *out)
{
	assert(jobs_is_job(svc));
	if (svc->spec->global)
		jobs_global(sc, svc, out);
	else
		jobs_replicated(sc, svc, out);
	assert(out->completed <= out->desired || sc->more);
}

/* ---------------------------------------------------------------- progress */

void jobs_progress(const struct store *st, const Cs__Service *svc,
		   struct jobs_progress *out)
{
	struct jobs_scan sc = {.st = st};
	jobs_service(&sc, svc, out);
}

bool jobs_completed(const struct store *st, const Cs__Service *svc)
{
	struct jobs_progress p;
	jobs_progress(st, svc, &p);
	return p.completed == p.desired;
}

bool jobs_settled(const struct store *st, const Cs__Service *svc)
{
	struct jobs_progress p;
	jobs_progress(st, svc, &p);
	return p.running == 0 && p.completed + p.gave_up >= p.desired;
}

/* ---------------------------------------------------------------- the loop */

static void jobs_on_timer(struct env *env, env_timer_id id, void *data);
static void jobs_write_done(void *data, int status);

static void jobs_arm(struct jobs *j, ms_t delay_ms)
{
	struct env *env = leader_env(j->ctx);
	if (j->pass_timer || j->dying || j->stopped)
		return;
	env->ops->timer_start(env, delay_ms, 0, jobs_on_timer, j, &j->pass_timer);
}

static void jobs_mark(struct jobs *j, uint64_t service_id)
{
	if (j->all_dirty)
		return;
	if (j->dirty_count > 0 && j->dirty_svcs[j->dirty_count - 1] == service_id)
		return;
	if (grow_array((void **)&j->dirty_svcs, &j->dirty_cap, j->dirty_count + 1,
		       sizeof *j->dirty_svcs)) {
		j->all_dirty = true; /* no memory for the list: look at all */
		return;
	}
	j->dirty_svcs[j->dirty_count++] = service_id;
}

/* Arms the wake timer for the earliest restart delay still to end (one
 * timer, moved earlier when a pass finds an earlier delay). Delays already
 * over are left out: a pass acts on them, or clears them. */
static void jobs_arm_wake(struct jobs *j, ms_t now_ms)
{
	ms_t at = 0;

	if (j->dying || j->stopped)
		return;
	for (size_t i = 0; i < j->delay_count; i++) {
		ms_t t = j->delays[i].not_before_ms;
		if (t > now_ms && (!at || t < at))
			at = t;
	}
	if (!at)
		return;
	if (j->wake_timer) {
		if (j->wake_at_ms <= at)
			return;
		j->env->ops->timer_stop(j->env, j->wake_timer);
		j->wake_timer = 0;
	}
	j->wake_at_ms = at;
	if (j->env->ops->timer_start(j->env, at - now_ms, 0, jobs_on_timer, j,
				     &j->wake_timer))
		j->wake_timer = 0; /* no timer: the next change looks again */
}

/* One pass: every job that changed (or all), in id order, into one batch. */
static void jobs_pass(struct jobs *j)
{
	const struct store *st = leader_store(j->ctx);
	struct store_batch batch;
	struct jobs_scan sc = {.st = st, .j = j, .batch = &batch};
	struct jobs_progress progress;
	uint8_t *buf;
	size_t len;

	if (j->writing || j->stopped)
		return;
	j->dirty = false;
	sc.now_ms = j->env->ops->now_ms(j->env);
	sc.history = leader_task_history(j->ctx);
	store_batch_init(&batch);
	if (j->all_dirty) {
		j->all_dirty = false;
		j->dirty_count = 0;
		for (const Cs__Service *svc = store_service_next(st, NULL);
		     svc && !sc.more; svc = store_service_next(st, svc))
			if (jobs_is_job(svc))
				jobs_service(&sc, svc, &progress);
		/* delays of jobs gone */
		for (size_t i = 0; i < j->delay_count;)
			if (!store_service_get(st, j->delays[i].service_id))
				j->delays[i] = j->delays[--j->delay_count];
			else
				i++;
	} else {
		size_t n = j->dirty_count;
		if (n > 1)
			qsort(j->dirty_svcs, n, sizeof *j->dirty_svcs, sort_u64_cmp);
		j->dirty_count = 0;
		for (size_t i = 0; i < n && !sc.more; i++) {
			const Cs__Service *svc;
			if (i > 0 && j->dirty_svcs[i] == j->dirty_svcs[i - 1])
				continue;
			svc = store_service_get(st, j->dirty_svcs[i]);
			if (jobs_is_job(svc))
				jobs_service(&sc, svc, &progress);
		}
	}
	if (sc.more) {
		/* cut short: the next pass, once this write is done, looks at
		 * all */
		j->all_dirty = true;
		j->dirty = true;
	}
	jobs_arm_wake(j, sc.now_ms);
	if (batch.action_count == 0) {
		store_batch_free(&batch);
		return;
	}
	if (store_batch_encode(&batch, 0, 0, &buf, &len) == 0) {
		int rv = leader_write(j->ctx, buf, len, jobs_write_done, j);
		if (rv == 0)
			j->writing = true;
		else
			env_logf(
				j->env, ENV_LOG_ERROR,
				"msg=\"jobs batch refused\" actions=%zu bytes=%zu err=%s",
				batch.action_count, len, cs_errname(rv));
		free(buf);
	}
	store_batch_free(&batch);
}

static void jobs_on_timer(struct env *env, env_timer_id id, void *data)
{
	struct jobs *j = data;
	(void)env;
	if (id == j->pass_timer)
		j->pass_timer = 0;
	if (id == j->wake_timer) {
		/* restart delays that ran out: their jobs */
		ms_t now = j->env->ops->now_ms(j->env);
		j->wake_timer = 0;
		for (size_t i = 0; i < j->delay_count; i++)
			if (j->delays[i].not_before_ms <= now)
				jobs_mark(j, j->delays[i].service_id);
		j->dirty = true;
	}
	jobs_pass(j);
}

static void jobs_free(struct jobs *j)
{
	free(j->dirty_svcs);
	free(j->delays);
	free(j);
}

static void jobs_write_done(void *data, int status)
{
	struct jobs *j = data;
	j->writing = false;
	if (j->stopped) {
		jobs_free(j);
		return;
	}
	/* a refused batch (a version raced) or more to do: look again */
	if (status || j->dirty)
		jobs_arm(j, JOBS_DEBOUNCE_MS);
}

/* ---------------------------------------------------------------- the component */

static void jobs_on_event(void *state, const struct store_event *ev)
{
	struct jobs *j = state;
	const struct store *st = leader_store(j->ctx);

	if (ev->table == STORE_TASK) {
		const Cs__Task *t =
			(const Cs__Task *)(ev->new_obj ? ev->new_obj : ev->old_obj);
		if (!jobs_is_job(store_service_get(st, t->service_id)))
			return; /* the orchestrator's, or an orphan (its too) */
		jobs_mark(j, t->service_id);
	} else if (ev->table == STORE_SERVICE) {
		const Cs__Service *s =
			(const Cs__Service *)(ev->new_obj ? ev->new_obj : ev->old_obj);
		if (!jobs_is_job(s) || !ev->new_obj)
			return; /* a removed job's tasks are orphans */
		jobs_mark(j, s->id);
	} else if (ev->table == STORE_NODE) {
		j->all_dirty = true; /* eligibility, dead nodes' tasks */
	} else {
		return;
	}
	j->dirty = true;
	if (!j->writing)
		jobs_arm(j, JOBS_DEBOUNCE_MS);
}

static int jobs_start(const struct leader_ctx *ctx, void **state)
{
	struct env *env = leader_env(ctx);
	struct jobs *j = calloc(1, sizeof *j);

	if (!j)
		return CS_ENOMEM;
	j->ctx = ctx;
	j->env = env;
	j->all_dirty = true; /* a new leader looks at every job first */
	jobs_arm(j, JOBS_DEBOUNCE_MS);
	if (!j->pass_timer) {
		free(j);
		return CS_ENOMEM;
	}
	*state = j;
	return 0;
}

static void jobs_stop(void *state, bool dying)
{
	struct jobs *j = state;
	j->stopped = true;
	j->dying = dying;
	if (!dying) {
		if (j->wake_timer)
			j->env->ops->timer_stop(j->env, j->wake_timer);
		if (j->pass_timer)
			j->env->ops->timer_stop(j->env, j->pass_timer);
	}
	if (!j->writing)
		jobs_free(j);
	/* else the write's answer frees it (a dying process's writes are
	 * answered CS_ECLOSED) */
}

const struct leader_component_ops jobs_component = {
	.name = "jobs",
	.start = jobs_start,
	.stop = jobs_stop,
	.on_event = jobs_on_event,
};
