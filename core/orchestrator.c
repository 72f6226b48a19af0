/* orchestrator: replicated and global services, restart policy, reaper.
 * See orchestrator.h. Sections: helpers, replicated, global, removed
 * services, the loop. */
#include "core/orchestrator.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/grow.h"
#include "core/limits.h"
#include "core/leader.h"
#include "core/scheduler.h"
#include "core/sort.h"
#include "core/store.h"

enum {
	ORCH_DEBOUNCE_MS = 5,  /* changes gather this long before a pass */
	ORCH_PERIOD_MS = 1000, /* a pass at least this often (delays) */
	ORCH_FULL_EVERY = 30,  /* periods between passes over every service */
	ORCH_DEFAULT_DELAY_MS = 5000,
};

/* How long a node stays down before its tasks are ORPHANED when the
 * cluster settings say nothing: SwarmKit's defaultNodeDownPeriod
 * (manager/dispatcher/dispatcher.go). */
#define ORCH_ORPHAN_DELAY_DEFAULT_MS (24ull * 3600 * 1000)

/* A node this leader saw down, and since when (its tasks are orphaned
 * once it has been down for the orphan delay). */
struct orch_down {
	uint64_t node_id;
	ms_t since_ms;
};

/* A slot that may not get a new task before a time (restart delay). */
struct orch_delay {
	uint64_t service_id;
	uint64_t slot; /* or node id, for global services */
	ms_t not_before_ms;
};

struct orchestrator {
	struct env *env;
	const struct leader_ctx *ctx; /* what the leader lets it see */
	const struct manager_cfg *cfg;
	env_timer_id pass_timer, period_timer, wake_timer;
	ms_t wake_at_ms;
	bool writing; /* one write in flight at a time */
	/* the write in flight: when it was proposed, its actions and bytes
	 * (a debug line when it is answered: create's timeline) */
	ms_t write_ms;
	size_t write_actions, write_bytes;
	bool dirty; /* changes since the last pass */
	bool stopped;
	bool dying;
	struct orch_delay *delays;
	size_t delay_count, delay_cap;
	struct orch_down *downs; /* nodes seen down, in node id order */
	size_t down_count, down_cap;
	ms_t downs_scan_ms; /* when the nodes were last looked at for it */
	bool downs_scanned; /* (at all, by this leader) */
	/* what changed since the last pass: the services to look at, or all
	 * of them (a node changed, a timer, a pass cut short) */
	uint64_t *dirty_svcs;
	size_t dirty_count, dirty_cap;
	bool all_dirty;
	bool orphans_dirty; /* a service went, or a task of none appeared */
	unsigned periods;   /* period timer ticks, for the full pass */
	/* metrics (issue 20): tasks created by the restart policy (proposed)
	 * while this manager led */
	uint64_t restarts_total;
	/* the pass being built */
	struct store_batch batch;
	ms_t now_ms;
	ms_t next_wake_ms; /* earliest delay that ends, 0: none */
	/* the tasks of the replicated service being passed over, in the
	 * store's (service, slot, id) order, as orch_plan_update walked them:
	 * its slots read them from here rather than walk the store again
	 * (the store does not change during a pass); svc_tasks_ok false when
	 * they did not fit in memory (the slots then walk the store) */
	const Cs__Task **svc_tasks;
	size_t svc_task_count, svc_task_cap;
	bool svc_tasks_ok;
	bool svc_no_update; /* orch_plan_update found no update going on */
	/* the replicated services a pass may skip (in id order): the last
	 * look at each made no write and needed no timer, and every change
	 * since is one that leaves every decision of a look as it was (a
	 * task moving on between PENDING and RUNNING, placed on a node that
	 * keeps it; see orch_task_change_is_quiet) */
	uint64_t *quiet_svcs;
	size_t quiet_count, quiet_cap;
	/* the last look for orphans found no task without its service, and
	 * nothing since may have made one */
	bool orphans_quiet;
	/* metrics: services looked at, and skipped as quiet */
	uint64_t looks_full, looks_quiet;
};

bool orchestrator_is_terminal(int state)
{
	return state >= CS__TASK_STATE__TASK_STATE_COMPLETE;
}

/* ---------------------------------------------------------------- helpers */

/* Whether a task on node_id must move: its node is drained. */
static bool orch_node_drained(const struct store *st, uint64_t node_id)
{
	const Cs__Node *n = node_id ? store_node_get(st, node_id) : NULL;
	return n && n->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
}

static bool orch_outdated(const struct store *st, const Cs__Service *svc,
			  const Cs__Task *t);

/* Whether task t (of svc's current spec) runs on a node that its
 * constraints no longer accept: a label or role changed under it.
 * SwarmKit's constraint enforcer stops such tasks; the orchestrator then
 * places them again. Outdated tasks are left to the rolling update, which
 * keeps its pace. */
static bool orch_node_unfit(const struct store *st, const Cs__Service *svc,
			    const Cs__Task *t)
{
	const Cs__Node *n = t->node_id ? store_node_get(st, t->node_id) : NULL;
	const Cs__Placement *pl = svc->spec->task ? svc->spec->task->placement : NULL;
	return n && pl && pl->n_constraints && !orch_outdated(st, svc, t) &&
	       !sched_node_satisfies(svc, n);
}

bool orchestrator_node_is_down(const struct store *st, uint64_t node_id)
{
	const Cs__Node *n;
	if (node_id == 0)
		return false; /* not placed yet */
	n = store_node_get(st, node_id);
	return !n || n->state == CS__NODE_STATE__NODE_STATE_DOWN;
}

static struct orch_delay *orch_delay_find(struct orchestrator *o, uint64_t service_id,
					  uint64_t slot)
{
	for (size_t i = 0; i < o->delay_count; i++)
		if (o->delays[i].service_id == service_id && o->delays[i].slot == slot)
			return &o->delays[i];
	return NULL;
}

static void orch_delay_set(struct orchestrator *o, uint64_t service_id, uint64_t slot,
			   ms_t not_before_ms)
{
	struct orch_delay *d = orch_delay_find(o, service_id, slot);
	if (!d) {
		if (o->delay_count == o->delay_cap) {
			size_t cap = o->delay_cap ? o->delay_cap * 2 : 16;
			struct orch_delay *p = realloc(o->delays, cap * sizeof *p);
			if (!p)
				return; /* no delay then: restart at once */
			o->delays = p;
			o->delay_cap = cap;
		}
		d = &o->delays[o->delay_count++];
		d->service_id = service_id;
		d->slot = slot;
	}
	d->not_before_ms = not_before_ms;
}

static void orch_delay_clear(struct orchestrator *o, uint64_t service_id, uint64_t slot)
{
	struct orch_delay *d = orch_delay_find(o, service_id, slot);
	if (d)
		*d = o->delays[--o->delay_count];
}

int orchestrator_batch_desired(struct store_batch *b, const Cs__Task *t,
			       Cs__TaskState desired, const char *why)
{
	Cs__Task copy = *t;
	Cs__TaskStatus status;
	if (t->status) {
		status = *t->status;
		if (why && !orchestrator_is_terminal(status.state))
			status.message = (char *)why;
		copy.status = &status;
	}
	copy.desired_state = desired;
	return store_batch_task(b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy);
}

/* Adds a copy of t with a new desired state (and message) to the pass. */
static void orch_set_desired(struct orchestrator *o, const Cs__Task *t,
			     Cs__TaskState desired, const char *why)
{
	(void)orchestrator_batch_desired(&o->batch, t, desired, why);
}

static void orch_create(struct orchestrator *o, const Cs__Service *svc, uint64_t slot,
			uint64_t node_id)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus status = CS__TASK_STATUS__INIT;

	t.id = o->env->ops->random_u64(o->env) | 1;
	t.service_id = svc->id;
	t.slot = slot;
	t.node_id = node_id;
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t.spec_version = svc->spec_version;
	status.state = CS__TASK_STATE__TASK_STATE_PENDING;
	status.timestamp_ms = o->now_ms;
	status.message = "pending task scheduling";
	t.status = &status;
	store_batch_task(&o->batch, CS__STORE_ACTION__KIND__KIND_CREATE, &t);
}

static void orch_delete(struct orchestrator *o, const Cs__Task *t)
{
	store_batch_task(&o->batch, CS__STORE_ACTION__KIND__KIND_DELETE, t);
}

static const Cs__RestartPolicy *orch_policy(const Cs__Service *svc)
{
	return svc->spec->task ? svc->spec->task->restart : NULL;
}

/* Whether a finished task was stopped on the cluster's request (scaled
 * down, drained, updated, its node no longer eligible) rather than ending
 * by itself: the restart policy is about the latter only. */
static bool orch_stopped_on_request(const Cs__Task *t)
{
	/* an orphaned task's node died: not the task's own end either */
	return t->status && (t->status->state == CS__TASK_STATE__TASK_STATE_SHUTDOWN ||
			     t->status->state == CS__TASK_STATE__TASK_STATE_ORPHANED);
}

/* Whether the policy lets a slot whose last task ended (last, may be NULL)
 * have a new one, counting `failures` restarts already made in the window.
 * A slot whose last task was stopped on request gets a new one whatever the
 * policy: that is reconciling, not restarting (as in SwarmKit, where only
 * a task that ended goes through the restart supervisor). */
static bool orch_may_restart(const Cs__Service *svc, const Cs__Task *last,
			     size_t restarts)
{
	const Cs__RestartPolicy *p = orch_policy(svc);
	bool failed;

	if (!last || orch_stopped_on_request(last))
		return true; /* a first task, or a stopped one */
	failed = !last->status ||
		 last->status->state != CS__TASK_STATE__TASK_STATE_COMPLETE ||
		 last->status->exit_code != 0;
	if (p && p->condition == CS__RESTART_POLICY__CONDITION__CONDITION_NONE)
		return false;
	if (p && p->condition == CS__RESTART_POLICY__CONDITION__CONDITION_ON_FAILURE &&
	    !failed)
		return false;
	if (p && p->max_attempts && restarts >= p->max_attempts)
		return false;
	return true;
}

static ms_t orch_restart_delay(const Cs__Service *svc)
{
	const Cs__RestartPolicy *p = orch_policy(svc);
	return p ? p->delay_ms : ORCH_DEFAULT_DELAY_MS;
}

/* Keeps the newest `keep` finished tasks of a slot, deletes the rest.
 * hist holds the slot's finished tasks (desired past RUNNING, observed
 * terminal or on a dead node). */
static int orch_hist_cmp(const void *a, const void *b)
{
	const Cs__Task *x = *(const Cs__Task *const *)a, *y = *(const Cs__Task *const *)b;
	uint64_t tx = x->status ? x->status->timestamp_ms : 0;
	uint64_t ty = y->status ? y->status->timestamp_ms : 0;
	if (tx != ty)
		return tx > ty ? -1 : 1; /* newest first */
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Orders a place's finished tasks for the one whose end decides what
 * comes next (last_end): the newest created first, then by orch_hist_cmp
 * (created in the same millisecond, or stamped without a time). Not the
 * latest status: a task the cluster told to stop (its node dead) may be
 * reported stopped only when its daemon is back, after its replacement
 * ended, and that late report must not decide for the place (SwarmKit's
 * restart supervisor judges a task once, when it ends, and never one
 * already told to stop: restart-none-late-stop-report.scn). */
static int orch_last_cmp(const void *a, const void *b)
{
	const Cs__Task *x = *(const Cs__Task *const *)a, *y = *(const Cs__Task *const *)b;
	if (x->created_ms != y->created_ms)
		return x->created_ms > y->created_ms ? -1 : 1; /* newest first */
	return orch_hist_cmp(a, b);
}

#define ORCH_SLOT_TASKS_MAX 64 /* tasks looked at per slot in one pass */
#define ORCH_HIST_MAX	    (ORCH_SLOT_TASKS_MAX - 8) /* finished tasks kept at most */

/* Whether finished task t counts towards the restarts of a place whose
 * last task to end is last: it ran the same spec version. SwarmKit's
 * restart supervisor keeps a place's restart history per spec version and
 * starts it over when the version changes (restart.go, shouldRestart and
 * recordRestartHistory): failures of an older spec do not use up the
 * attempts of a new one. */
static bool orch_same_spec(const Cs__Task *t, const Cs__Task *last)
{
	return t->spec_version == last->spec_version;
}

/* How many of a place's finished tasks hist[0..n) count as restarts: those
 * of last_end's spec version that ended by themselves, within the policy's
 * window before the last one ended (last_end; none without it). Measured from the last end, not from now, the verdict
 * is made once, when a task ends, as SwarmKit's restart supervisor makes
 * it: a policy that gave up does not start again when old failures leave
 * the window. */
static size_t orch_restarts(const Cs__Service *svc, const Cs__Task *const *hist, size_t n,
			    const Cs__Task *last_end)
{
	const Cs__RestartPolicy *p = orch_policy(svc);
	ms_t window = p ? p->window_ms : 0;
	uint64_t last_ms;
	size_t count = 0;

	if (!last_end || !last_end->status)
		return 0;
	last_ms = last_end->status->timestamp_ms;
	for (size_t i = 0; i < n; i++) {
		const Cs__Task *t = hist[i];
		if (orch_stopped_on_request(t) || !orch_same_spec(t, last_end))
			continue;
		if (!window || !t->status || t->status->timestamp_ms + window >= last_ms)
			count++;
	}
	return count;
}

/* How many of the tasks ended[0..n), which end in this pass, count as
 * restarts of a place whose last task to end is last_end: those of its
 * spec version (see orch_same_spec). */
static size_t orch_ended_restarts(const Cs__Task *const *ended, size_t n,
				  const Cs__Task *last_end)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += last_end && orch_same_spec(ended[i], last_end);
	return count;
}

/* Notes finished task t in a place's history: hist (up to
 * ORCH_SLOT_TASKS_MAX), and *last_end when it is the newest (orch_last_cmp). */
static void orch_hist_note(const Cs__Task *t, const Cs__Task **last_end,
			   const Cs__Task **hist, size_t *hist_count)
{
	if (!*last_end || orch_last_cmp(&t, last_end) < 0)
		*last_end = t;
	if (*hist_count < ORCH_SLOT_TASKS_MAX)
		hist[(*hist_count)++] = t;
}

/* How many tasks a place keeps, its live one included (SwarmKit's task
 * reaper, taskreaper/task_reaper.go: the cluster's history retention
 * limit, or with a restart policy's most attempts set, exactly that many
 * plus one, which lets the restarts be counted again by a new leader). */
static size_t orch_keep(const struct orchestrator *o, const Cs__Service *svc)
{
	const Cs__RestartPolicy *p = orch_policy(svc);
	if (p && p->max_attempts)
		return p->max_attempts + 1 < ORCH_HIST_MAX ? (size_t)p->max_attempts + 1
							   : ORCH_HIST_MAX;
	return (size_t)leader_task_history(o->ctx);
}

/* How many of a place's older finished tasks (its history) stay when it
 * keeps `keep` tasks in all and `others` of them are not history: those
 * that may still run, the one created (or due) in this pass, and those
 * that ended in this pass. The oldest go first, as in SwarmKit. */
static size_t orch_hist_room(size_t keep, size_t others)
{
	return keep > others ? keep - others : 0;
}

static void orch_reap(struct orchestrator *o, const Cs__Task **hist, size_t n,
		      size_t keep)
{
	if (n <= keep)
		return;
	qsort(hist, n, sizeof *hist, orch_hist_cmp);
	for (size_t i = keep; i < n; i++)
		orch_delete(o, hist[i]);
}

/* ---------------------------------------------------------------- replicated */

/* A pass stops adding to its batch past this many encoded bytes, so that
 * the batch is one manager_write (at most LIMIT_FRAME_BYTES_MAX / 2) even
 * after the slot or service being looked at adds its writes: a quarter of
 * the frame leaves a quarter for those (2 x ORCH_SLOT_TASKS_MAX tasks of a
 * few hundred bytes, or a service record and its previous spec). */
#define ORCH_BATCH_BYTES_MAX (LIMIT_FRAME_BYTES_MAX / 4)

/* Whether this pass's batch is as full as a pass lets it get: the rest
 * waits for the next pass. */
static bool orch_batch_full(const struct orchestrator *o)
{
	return o->batch.action_count >=
		       LIMIT_STORE_BATCH_ACTIONS - 2 * ORCH_SLOT_TASKS_MAX ||
	       store_batch_bytes(&o->batch) >= ORCH_BATCH_BYTES_MAX;
}

/* The rolling update of one service in this pass (SwarmKit's updater):
 * how many more slots may start updating now. */
struct orch_update {
	bool active;	     /* the service has outdated live tasks */
	bool start_first;    /* new task first, old one stopped once it runs */
	size_t room;	     /* slots that may start updating in this pass */
	size_t room_planned; /* room as planned, before the slots used it */
	uint64_t max_slot;   /* a replicated service's highest slot with a task,
				or its replicas when higher */
};

/* The orch_delay slot that marks a service whose update (or rollback)
 * started a batch at the spec version in not_before_ms: later batches wait
 * the delay between batches. */
#define ORCH_BATCH_MARK (UINT64_MAX - 1)

/* Notes, after a pass over a service's places, that its update started a
 * batch (the delay between batches then applies to the next). */
static void orch_note_batch(struct orchestrator *o, const Cs__Service *svc,
			    const struct orch_update *up)
{
	if (up->active && up->room < up->room_planned)
		orch_delay_set(o, svc->id, ORCH_BATCH_MARK, svc->spec_version);
}

bool orchestrator_outdated(const Cs__Service *svc, const Cs__Task *t)
{
	if (t->spec_version >= svc->spec_version)
		return false;
	if (svc->spec_version_restored && t->spec_version == svc->spec_version_restored)
		return false;
	/* a spec that differs from the current one in placement only */
	return !(svc->placement_base_version &&
		 t->spec_version >= svc->placement_base_version);
}

/* Whether the rolling update replaces task t: it runs an older spec, or its
 * spec differs in placement only and its node no longer satisfies the
 * constraints (SwarmKit's IsTaskDirty: a placement-only change leaves the
 * tasks whose node still matches, and the updater replaces the others at
 * its pace). A task not placed yet is placed under the new constraints. */
static bool orch_outdated(const struct store *st, const Cs__Service *svc,
			  const Cs__Task *t)
{
	const Cs__Node *n;

	if (orchestrator_outdated(svc, t))
		return true;
	if (t->spec_version >= svc->spec_version || !t->node_id)
		return false;
	if (svc->spec_version_restored && t->spec_version == svc->spec_version_restored)
		return false;
	assert(svc->placement_base_version &&
	       t->spec_version >= svc->placement_base_version);
	n = store_node_get(st, t->node_id);
	return n && !sched_node_satisfies(svc, n);
}

/* The slot's task after prev (NULL: its first): the k-th of tasks (n of
 * them, the slot's, in store order) when given, else from the store. */
static const Cs__Task *orch_slot_next(const struct store *st, const Cs__Service *svc,
				      uint64_t slot, const Cs__Task *const *tasks,
				      size_t n, size_t k, const Cs__Task *prev)
{
	if (tasks)
		return k < n ? tasks[k] : NULL;
	return store_task_next_in_slot(st, svc->id, slot, prev);
}

/* What a slot needs: its tasks are tasks[0..n) when tasks is given (the
 * slot's, in the store's order), else read from the store. */
static void orch_slot(struct orchestrator *o, const Cs__Service *svc, uint64_t slot,
		      bool wanted, struct orch_update *up, const Cs__Task *const *tasks,
		      size_t n)
{
	const struct store *st = leader_store(o->ctx);
	const Cs__Task *hist[ORCH_SLOT_TASKS_MAX], *ended[ORCH_SLOT_TASKS_MAX];
	const Cs__Task *live = NULL, *fresh = NULL, *last_end = NULL;
	size_t hist_count = 0, ended_count = 0, restarts, present = 0;
	bool node_died = false, ended_now = false, occupied = false, coming = false;
	size_t k = 0;

	for (const Cs__Task *t = orch_slot_next(st, svc, slot, tasks, n, k, NULL); t;
	     t = orch_slot_next(st, svc, slot, tasks, n, ++k, t)) {
		bool terminal = t->status && orchestrator_is_terminal(t->status->state);
		bool down = orchestrator_node_is_down(st, t->node_id);
		/* what the reaper counts as not finished (it may still run) */
		present += !terminal && !down &&
			   !(t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING &&
			     t->status &&
			     t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED);
		if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING) {
			if (terminal || down) {
				/* dead: shut it in the store, replace below */
				orch_set_desired(o, t,
						 CS__TASK_STATE__TASK_STATE_SHUTDOWN,
						 down ? "node is down" : NULL);
				node_died |= down && !terminal;
				ended_now |= !down;
				if (!last_end || orch_last_cmp(&t, &last_end) < 0)
					last_end = t;
				if (ended_count < ORCH_SLOT_TASKS_MAX)
					ended[ended_count++] = t;
				continue;
			}
			if (!wanted) {
				orch_set_desired(o, t,
						 CS__TASK_STATE__TASK_STATE_SHUTDOWN,
						 "scaled down");
				continue;
			}
			if (orch_node_drained(st, t->node_id) ||
			    orch_node_unfit(st, svc, t)) {
				/* moved off at once, once it stopped: no restart
				 * delay, as for a dead node */
				orch_set_desired(
					o, t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					orch_node_drained(st, t->node_id)
						? "node drained"
						: "constraint no longer satisfied");
				orch_delay_clear(o, svc->id, slot);
				occupied = true;
				continue;
			}
			/* a start-first update runs the new task beside the old */
			if (up->start_first && !orch_outdated(st, svc, t) && live &&
			    orch_outdated(st, svc, live) && !fresh) {
				fresh = t;
				continue;
			}
			if (up->start_first && orch_outdated(st, svc, t) && live &&
			    !fresh && !orch_outdated(st, svc, live)) {
				fresh = live;
				live = t;
				continue;
			}
			if (live) /* two live tasks in a slot: keep the first */
				orch_set_desired(o, t,
						 CS__TASK_STATE__TASK_STATE_SHUTDOWN,
						 "duplicate in slot");
			else
				live = t;
			continue;
		}
		/* desired past RUNNING and never placed: nothing runs, and no
		 * node will start it: gone (SwarmKit deletes these too) */
		if (t->status && t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED) {
			orch_delete(o, t);
			continue;
		}
		/* desired past RUNNING: still running somewhere reachable? */
		if (!terminal && !down) {
			occupied = true;
			continue;
		}
		/* history, once really finished */
		orch_hist_note(t, &last_end, hist, &hist_count);
	}
	restarts = orch_ended_restarts(ended, ended_count, last_end) +
		   orch_restarts(svc, hist, hist_count, last_end);
	if (!wanted) {
		orch_reap(o, hist, hist_count, 0);
		return;
	}
	if (live && fresh) {
		/* start-first: once the new one runs, the old one goes */
		if (fresh->status &&
		    fresh->status->state == CS__TASK_STATE__TASK_STATE_RUNNING)
			orch_set_desired(o, live, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					 "replaced by update");
		goto reap;
	}
	if (live) {
		if (!orch_outdated(st, svc, live) || up->room == 0)
			goto reap;
		up->room--;
		if (up->start_first)
			orch_create(o, svc, slot, 0);
		else
			orch_set_desired(o, live, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					 "stopping for update");
		coming = up->start_first;
		goto reap;
	}
	/* never a second task while the last one may still run (invariant 3):
	 * the replacement waits until it is seen stopped, or its node down */
	if (occupied)
		goto reap;
	if (node_died) {
		orch_delay_clear(o, svc->id, slot);
		orch_create(o, svc, slot, 0); /* at once: no restart delay */
		coming = true;
		goto reap;
	}
	/* the first task, or a restart under the policy */
	if (last_end && !orch_outdated(st, svc, last_end) &&
	    !orch_may_restart(svc, last_end, restarts ? restarts - 1 : 0))
		goto reap;
	/* a task the cluster stopped (drained, moved off) is replaced at
	 * once, as one on a dead node: the delay is for tasks that ended */
	if (last_end && !orch_outdated(st, svc, last_end) &&
	    !orch_stopped_on_request(last_end)) {
		struct orch_delay *d = orch_delay_find(o, svc->id, slot);
		if (ended_now || !d) {
			ms_t delay = orch_restart_delay(svc);
			if (delay) {
				orch_delay_set(o, svc->id, slot, o->now_ms + delay);
				d = orch_delay_find(o, svc->id, slot);
			}
		}
		if (d && d->not_before_ms > o->now_ms) {
			if (!o->next_wake_ms || d->not_before_ms < o->next_wake_ms)
				o->next_wake_ms = d->not_before_ms;
			coming = true; /* SwarmKit creates it now, to start later */
			goto reap;
		}
	}
	orch_delay_clear(o, svc->id, slot);
	if (last_end && !orch_outdated(st, svc, last_end) &&
	    !orch_stopped_on_request(last_end))
		o->restarts_total++;
	orch_create(o, svc, slot, 0);
	coming = true;
reap:
	orch_reap(o, hist, hist_count,
		  orch_hist_room(orch_keep(o, svc), present + coming + ended_count));
}

/* Sets the service's update state (one write per change). */
void orchestrator_rollback_spec(const Cs__Service *svc, Cs__Service *out)
{
	/* back to the previous spec, as a new version to roll to; tasks
	 * still on that spec are not outdated by it */
	out->spec = svc->previous_spec;
	out->previous_spec = svc->spec;
	out->spec_version = svc->spec_version + 1;
	out->previous_spec_version = svc->spec_version;
	out->spec_version_restored = svc->previous_spec_version;
	/* the versions that differ from the spec rolled back from in
	 * placement only differ from the restored one so too when the update
	 * was itself placement only */
	if (svc->placement_base_version > svc->previous_spec_version)
		out->placement_base_version = 0;
}

static void orch_update_status(struct orchestrator *o, const Cs__Service *svc,
			       Cs__UpdateStatus__State state, const char *message,
			       bool rollback)
{
	Cs__Service copy = *svc;
	Cs__UpdateStatus us = CS__UPDATE_STATUS__INIT;

	if (svc->update_status && svc->update_status->state == state && !rollback)
		return;
	us.state = state;
	us.message = (char *)message;
	copy.update_status = &us;
	if (rollback)
		orchestrator_rollback_spec(svc, &copy);
	store_batch_service(&o->batch, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy);
}

static bool orch_failed(const Cs__Task *t)
{
	return t->status && (t->status->state == CS__TASK_STATE__TASK_STATE_FAILED ||
			     t->status->state == CS__TASK_STATE__TASK_STATE_REJECTED);
}

static bool orch_node_eligible(const Cs__Service *svc, const Cs__Node *n);

/* A paused node keeps its tasks but gets no new one: a global service
 * neither adds nor updates a task there (as SwarmKit's global
 * orchestrator). */
static bool orch_node_paused(const Cs__Node *n)
{
	return n->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
}

/* What a rolling update counts, place by place (a replicated slot, or a
 * global service's node). */
struct orch_count {
	ms_t monitor;
	size_t outdated;    /* live tasks of an older spec */
	size_t in_flight;   /* places of the batch not settled yet */
	size_t failures;    /* of the new spec, failed within the monitor period */
	size_t current;	    /* tasks of the new spec, in any state */
	ms_t last_start_ms; /* the latest start among those (0: none) */
	size_t waiting;	    /* places in the update whose new task has not
			     * started (nor ended) yet */
	size_t places_seen; /* places in the update that have a task */
	size_t made;	    /* of those, made for this update (or rollback):
			     * of its spec version, not one restored or kept
			     * through a placement-only change */
	size_t live_places; /* places with a live task (or done, failed) */
	size_t places;	    /* places in the update: the failure ratio's
			     * denominator (SwarmKit's dirty slots) */
	/* update-delay with parallelism over 1: each of SwarmKit's updater
	 * workers waits the delay after its task runs before it takes the
	 * next place; a new task that started within the delay holds one */
	ms_t rest, now;
	size_t resting;	  /* new tasks started within the delay */
	ms_t rest_end_ms; /* the earliest end of their waits */
	/* the place being counted */
	bool place_live, place_failed, place_seen, place_in_update, place_new_seen;
	size_t place_in_flight;
};

/* Ends a place: adds what it counted (to places when in_update: a
 * replicated slot within the replicas, a global service's eligible node).
 * A place whose new task failed is
 * done with: it does not hold the next batch back, whatever its restarts
 * do. When the failure counts (within the monitor period), the failure
 * action has its say first; when it does not (a crash long after the task
 * started), the update goes on, as SwarmKit's updater does. */
static void orch_count_place_end(struct orch_count *c, bool in_update)
{
	if (c->place_failed) {
		c->place_live = true;
		c->place_in_flight = 0;
	}
	c->in_flight += c->place_in_flight;
	c->live_places += c->place_live;
	c->places += in_update && c->place_in_update;
	c->places_seen += in_update && c->place_seen;
	c->waiting += in_update && c->place_seen && !c->place_new_seen;
	c->place_live = c->place_failed = c->place_seen = c->place_in_update = false;
	c->place_new_seen = false;
	c->place_in_flight = 0;
}

static void orch_count_task(struct orchestrator *o, const Cs__Service *svc,
			    const Cs__Task *t, struct orch_count *c)
{
	const struct store *st = leader_store(o->ctx);
	bool live = t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
	bool terminal = t->status && orchestrator_is_terminal(t->status->state);

	c->place_seen = true;
	if (live && !terminal)
		c->place_live = true;
	/* in the update: it has an old task still there, or a new one */
	c->place_in_update |= !terminal || !orch_outdated(st, svc, t);
	if (orch_outdated(st, svc, t)) {
		if (live && !terminal)
			c->outdated++;
		else if (!live && !terminal && !orchestrator_node_is_down(st, t->node_id))
			c->place_in_flight++; /* being stopped for the update */
		return;
	}
	c->current++;
	c->made += t->spec_version == svc->spec_version;
	if (c->rest && live && !terminal && t->spec_version == svc->spec_version &&
	    t->started_ms && t->started_ms + c->rest > c->now) {
		c->resting++;
		if (!c->rest_end_ms || t->started_ms + c->rest < c->rest_end_ms)
			c->rest_end_ms = t->started_ms + c->rest;
	}
	if (t->started_ms > c->last_start_ms)
		c->last_start_ms = t->started_ms;
	c->place_new_seen |= t->started_ms != 0 || terminal;
	c->place_failed |= orch_failed(t);
	if (t->spec_version > 1 || svc->spec_version > 1) {
		/* a failure counts when the task failed before running, or
		 * within the monitor period after it started (SwarmKit's
		 * updater): a crash long after is not the update's */
		c->failures += orch_failed(t) &&
			       (!c->monitor || !t->started_ms ||
				t->status->timestamp_ms <= t->started_ms + c->monitor);
	}
	if (live && !terminal && t->status &&
	    t->status->state < CS__TASK_STATE__TASK_STATE_RUNNING)
		c->place_in_flight++;
	/* once it runs, the next batch may go (after update-delay): the
	 * monitor period only decides which failures count, as in SwarmKit's
	 * updater, whose workers wait for RUNNING, not for the monitor */
}

/* Whether an update with no outdated task left is still settling: a place
 * whose new task has not started (nor ended) yet, or the monitor period
 * after the last start not over (then a pass is due when it ends). */
static bool orch_update_settling(struct orchestrator *o, const struct orch_count *c)
{
	ms_t end_ms;

	if (c->waiting)
		return true;
	if (!c->monitor || !c->last_start_ms)
		return false;
	end_ms = c->last_start_ms + c->monitor;
	if (end_ms <= o->now_ms)
		return false;
	if (!o->next_wake_ms || end_ms < o->next_wake_ms)
		o->next_wake_ms = end_ms;
	return true;
}

/* Whether the update (or rollback) of svc started a batch already, so that
 * the next waits the delay: this leader saw it start one at this spec
 * version; or, for an update, tasks of the new spec exist (what a new
 * leader can tell). Not so for a rollback: the tasks it restored, and
 * those the restart policy replaced, are no batch of its own (SwarmKit's
 * updater waits its delay after each task it updated, the first batch
 * at once). */
static bool orch_batch_started(const struct orchestrator *o, const Cs__Service *svc,
			       bool rolling_back, const struct orch_count *c)
{
	const struct orch_delay *mark = NULL;
	for (size_t i = 0; i < o->delay_count; i++)
		if (o->delays[i].service_id == svc->id &&
		    o->delays[i].slot == ORCH_BATCH_MARK)
			mark = &o->delays[i];
	if (mark && mark->not_before_ms == svc->spec_version)
		return true;
	return !rolling_back && c->made > 0;
}

/* The configuration a rollback goes by (SwarmKit's updater): the spec's
 * own rollback config, or SwarmKit's default one (one at a time, stop
 * first, pause on failure, monitor 5 s), written into *def. Never the
 * update config. */
static const Cs__UpdateConfig *orch_rollback_config(const Cs__Service *svc,
						    Cs__UpdateConfig *def)
{
	if (svc->spec->rollback)
		return svc->spec->rollback;
	def->parallelism = 1;
	def->delay_ms = 0;
	def->failure_action = CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_PAUSE;
	def->monitor_ms = 5000;
	def->max_failure_ratio_ppm = 0;
	def->order = CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST;
	return def;
}

/* Plans this pass of a service's rolling update: how many slots may start
 * (parallelism minus those in flight, after the delay between batches),
 * and the failure action when updated tasks fail too often. Returns false
 * when the service's record changed (the pass leaves its tasks alone). */
static bool orch_plan_update(struct orchestrator *o, const Cs__Service *svc,
			     struct orch_update *up)
{
	const struct store *st = leader_store(o->ctx);
	Cs__UpdateStatus__State state = svc->update_status
						? svc->update_status->state
						: CS__UPDATE_STATUS__STATE__STATE_NONE;
	bool rolling_back = state == CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED;
	Cs__UpdateConfig rollback_default = CS__UPDATE_CONFIG__INIT;
	const Cs__UpdateConfig *uc =
		rolling_back ? orch_rollback_config(svc, &rollback_default)
			     : svc->spec->update;
	size_t outdated, in_flight, failures;
	uint64_t parallelism = uc && uc->parallelism ? uc->parallelism : 0;
	ms_t monitor = uc ? uc->monitor_ms : 0;
	struct orch_delay *quiet;
	struct orch_count c = {0};

	memset(up, 0, sizeof *up);
	up->start_first = uc && uc->order == CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST;
	c.monitor = monitor;
	/* one place at a time waits the delay as a whole batch (below) */
	c.rest = parallelism > 1 ? uc->delay_ms : 0;
	c.now = o->now_ms;
	o->svc_task_count = 0;
	o->svc_tasks_ok = false;
	o->svc_no_update = false;
	if (!svc->spec->global) {
		uint64_t slot = 0;
		o->svc_tasks_ok = true;
		up->max_slot = svc->spec->replicas;
		for (const Cs__Task *t = store_task_next_by_service(st, svc->id, NULL); t;
		     t = store_task_next_by_service(st, svc->id, t)) {
			if (t->slot > up->max_slot)
				up->max_slot = t->slot;
			if (o->svc_tasks_ok &&
			    grow_array((void **)&o->svc_tasks, &o->svc_task_cap,
				       o->svc_task_count + 1, sizeof *o->svc_tasks))
				o->svc_tasks_ok = false; /* the slots walk the store */
			if (o->svc_tasks_ok)
				o->svc_tasks[o->svc_task_count++] = t;
			if (t->slot > svc->spec->replicas)
				continue;
			if (t->slot != slot) { /* tasks come in slot order */
				orch_count_place_end(&c, true);
				slot = t->slot;
			}
			orch_count_task(o, svc, t, &c);
		}
		orch_count_place_end(&c, true);
		/* a slot with no task at all waits for its first new one */
		if (c.places_seen < svc->spec->replicas)
			c.waiting += (size_t)(svc->spec->replicas - c.places_seen);
		/* a slot with no live task is being replaced: part of the batch */
		if (c.live_places < svc->spec->replicas)
			c.in_flight += (size_t)(svc->spec->replicas - c.live_places);
	} else {
		for (const Cs__Node *n = store_node_next(st, NULL); n;
		     n = store_node_next(st, n)) {
			if (orch_node_paused(n))
				continue; /* not updated: see orch_global */
			for (const Cs__Task *t = store_task_next_by_node(st, n->id, NULL);
			     t; t = store_task_next_by_node(st, n->id, t))
				if (t->service_id == svc->id)
					orch_count_task(o, svc, t, &c);
			/* a node that had a task and has no live one is being
			 * replaced: part of the batch (as a replicated slot) */
			if (c.place_seen && !c.place_live && orch_node_eligible(svc, n) &&
			    !c.place_failed)
				c.place_in_flight++;
			orch_count_place_end(&c, orch_node_eligible(svc, n));
		}
	}
	outdated = c.outdated;
	in_flight = c.in_flight;
	failures = c.failures;
	if (outdated == 0 && state != CS__UPDATE_STATUS__STATE__STATE_UPDATING &&
	    !rolling_back) {
		orch_delay_clear(o, svc->id, ORCH_BATCH_MARK);
		o->svc_no_update = true;
		return true; /* no update going on */
	}
	if (state == CS__UPDATE_STATUS__STATE__STATE_PAUSED ||
	    state == CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_PAUSED)
		return true; /* an operator's turn */
	/* failures of updated tasks over the allowed ratio of the places in
	 * the update (SwarmKit's updater: failures / len(dirtySlots), not
	 * over the tasks live now, which a failure itself makes fewer) */
	if (failures && uc &&
	    uc->failure_action !=
		    CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_CONTINUE &&
	    (uint64_t)failures * 1000000 >
		    (uint64_t)uc->max_failure_ratio_ppm * c.places) {
		if (uc->failure_action ==
			    CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_ROLLBACK &&
		    !rolling_back && svc->previous_spec) {
			orch_update_status(
				o, svc, CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED,
				"update failed: rolling back", true);
			return false;
		}
		orch_update_status(
			o, svc,
			rolling_back ? CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_PAUSED
				     : CS__UPDATE_STATUS__STATE__STATE_PAUSED,
			"update paused: tasks failed", false);
		return false;
	}
	if (outdated == 0) {
		/* every place has its new task: SwarmKit's updater watches one
		 * more monitor period after its last batch before it says the
		 * update completed (updater.go), so that a failure within it
		 * still gets the failure action above */
		if (orch_update_settling(o, &c))
			return true;
		orch_delay_clear(o, svc->id, ORCH_BATCH_MARK);
		orch_update_status(
			o, svc,
			rolling_back ? CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_COMPLETED
				     : CS__UPDATE_STATUS__STATE__STATE_COMPLETED,
			rolling_back ? "rollback completed" : "update completed", false);
		return false;
	}
	if (state != CS__UPDATE_STATUS__STATE__STATE_UPDATING && !rolling_back) {
		orch_update_status(o, svc, CS__UPDATE_STATUS__STATE__STATE_UPDATING,
				   "update in progress", false);
		return false;
	}
	up->active = true;
	/* the delay between batches runs from when the last batch settled */
	quiet = orch_delay_find(o, svc->id, UINT64_MAX);
	if (in_flight || c.rest) {
		/* (with lanes, each waits on its own: c.resting) */
		orch_delay_clear(o, svc->id, UINT64_MAX);
		quiet = NULL;
	} else if (uc && uc->delay_ms && orch_batch_started(o, svc, rolling_back, &c)) {
		/* (the first batch goes at once: the delay is between
		 * batches) */
		if (!quiet) {
			orch_delay_set(o, svc->id, UINT64_MAX, o->now_ms + uc->delay_ms);
			quiet = orch_delay_find(o, svc->id, UINT64_MAX);
		}
		if (quiet && quiet->not_before_ms > o->now_ms) {
			if (!o->next_wake_ms || quiet->not_before_ms < o->next_wake_ms)
				o->next_wake_ms = quiet->not_before_ms;
			return true;
		}
	}
	if (parallelism == 0)
		up->room = outdated;
	else
		up->room = in_flight + c.resting >= parallelism
				   ? 0
				   : (size_t)(parallelism - in_flight - c.resting);
	/* a lane at rest takes its next place when its wait ends */
	if (c.resting && up->room < outdated &&
	    (!o->next_wake_ms || c.rest_end_ms < o->next_wake_ms))
		o->next_wake_ms = c.rest_end_ms;
	if (up->room && !in_flight)
		orch_delay_clear(o, svc->id, UINT64_MAX);
	up->room_planned = up->room;
	return true;
}

/* The pass over a replicated service. Returns whether it looked at every
 * slot (false: the service record changes first, or the batch filled). */
static bool orch_replicated(struct orchestrator *o, const Cs__Service *svc)
{
	uint64_t want = svc->spec->replicas, max_slot;
	const Cs__Task *none[1] = {NULL}; /* a slot with no task */
	const Cs__Task *const *v;
	struct orch_update up;
	size_t i = 0;

	if (!orch_plan_update(o, svc, &up))
		return false; /* the service record changes first; tasks next pass */
	/* orch_plan_update walked the service's tasks: the highest slot, and
	 * (when they fit in memory) the tasks themselves, in slot order */
	max_slot = up.max_slot;
	v = o->svc_tasks; /* (after the walk: it may have moved them) */
	for (uint64_t slot = 1; slot <= max_slot && slot <= LIMIT_SCN_REPLICAS_MAX;
	     slot++) {
		size_t lo;
		if (orch_batch_full(o)) {
			orch_note_batch(o, svc, &up);
			return false; /* the next pass goes on */
		}
		if (!o->svc_tasks_ok) {
			orch_slot(o, svc, slot, slot <= want, &up, NULL, 0);
			continue;
		}
		while (i < o->svc_task_count && v[i]->slot < slot)
			i++;
		lo = i;
		while (i < o->svc_task_count && v[i]->slot == slot)
			i++;
		orch_slot(o, svc, slot, slot <= want, &up, i > lo ? v + lo : none,
			  i - lo);
	}
	orch_note_batch(o, svc, &up);
	return true;
}

/* ---------------------------------------------------------------- global */

static bool orch_node_eligible(const Cs__Service *svc, const Cs__Node *n)
{
	if (n->state == CS__NODE_STATE__NODE_STATE_DOWN)
		return false;
	if (n->availability == CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN)
		return false;
	return sched_node_satisfies(svc, n);
}

/* One task per eligible node. An update rolls over the nodes as over the
 * slots of a replicated service: parallelism, delay, monitor, failure
 * action and order all apply (SwarmKit's global orchestrator shares the
 * updater too). */
static void orch_global(struct orchestrator *o, const Cs__Service *svc)
{
	const struct store *st = leader_store(o->ctx);
	struct orch_update up;

	if (!orch_plan_update(o, svc, &up))
		return; /* the service record changes first; tasks next pass */
	for (const Cs__Node *n = store_node_next(st, NULL); n;
	     n = store_node_next(st, n)) {
		bool eligible = orch_node_eligible(svc, n);
		const Cs__Task *old = NULL, *fresh = NULL, *hist[ORCH_SLOT_TASKS_MAX];
		const Cs__Task *last_end = NULL, *ended[ORCH_SLOT_TASKS_MAX];
		size_t hist_count = 0, ended_count = 0, restarts, present = 0;
		bool occupied = false, crashed = false, coming = false;

		if (orch_batch_full(o))
			break;
		for (const Cs__Task *t = store_task_next_by_node(st, n->id, NULL); t;
		     t = store_task_next_by_node(st, n->id, t)) {
			bool terminal;
			if (t->service_id != svc->id)
				continue;
			terminal =
				t->status && orchestrator_is_terminal(t->status->state);
			/* what the reaper counts as not finished, as for a slot */
			present +=
				!terminal &&
				!(t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING &&
				  t->status &&
				  t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED);
			if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING) {
				if (!terminal && eligible && orch_outdated(st, svc, t) &&
				    !old) {
					old = t;
				} else if (!terminal && eligible &&
					   !orch_outdated(st, svc, t) && !fresh) {
					fresh = t;
				} else {
					orch_set_desired(
						o, t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
						!eligible  ? "node not eligible"
						: terminal ? NULL
							   : "duplicate on node");
					crashed |= terminal;
					occupied |= !terminal;
					if (terminal) {
						if (ended_count < ORCH_SLOT_TASKS_MAX)
							ended[ended_count++] = t;
						if (!last_end ||
						    orch_last_cmp(&t, &last_end) < 0)
							last_end = t;
					}
				}
			} else if (t->status &&
				   t->status->state <
					   CS__TASK_STATE__TASK_STATE_ASSIGNED) {
				orch_delete(o, t); /* never placed: gone */
			} else if (!terminal) {
				occupied = true; /* still stopping */
			} else {
				/* history, as for a replicated slot */
				orch_hist_note(t, &last_end, hist, &hist_count);
			}
		}
		restarts = orch_ended_restarts(ended, ended_count, last_end) +
			   orch_restarts(svc, hist, hist_count, last_end);
		if (!eligible)
			goto reap;
		if (old && fresh) {
			/* start-first: once the new one runs, the old one goes */
			if (fresh->status &&
			    fresh->status->state == CS__TASK_STATE__TASK_STATE_RUNNING)
				orch_set_desired(o, old,
						 CS__TASK_STATE__TASK_STATE_SHUTDOWN,
						 "replaced by update");
			goto reap;
		}
		if (old) {
			if (up.room == 0 || orch_node_paused(n))
				goto reap; /* a later batch; never while paused */
			up.room--;
			if (up.start_first && !occupied) {
				orch_create(o, svc, 0, n->id);
				coming = true;
			} else
				orch_set_desired(o, old,
						 CS__TASK_STATE__TASK_STATE_SHUTDOWN,
						 "stopping for update");
			goto reap;
		}
		if (fresh || occupied || orch_node_paused(n))
			goto reap;
		/* the restart policy, as for a replicated slot */
		if (last_end && !orch_outdated(st, svc, last_end) &&
		    !orch_may_restart(svc, last_end, restarts ? restarts - 1 : 0))
			goto reap;
		if (crashed && !orch_stopped_on_request(last_end)) {
			ms_t delay = orch_restart_delay(svc);
			if (delay)
				orch_delay_set(o, svc->id, n->id, o->now_ms + delay);
		}
		{
			struct orch_delay *d = orch_delay_find(o, svc->id, n->id);
			if (d && d->not_before_ms > o->now_ms) {
				if (!o->next_wake_ms ||
				    d->not_before_ms < o->next_wake_ms)
					o->next_wake_ms = d->not_before_ms;
				coming = true;
				goto reap;
			}
		}
		orch_delay_clear(o, svc->id, n->id);
		if (crashed && last_end && !orch_outdated(st, svc, last_end) &&
		    !orch_stopped_on_request(last_end))
			o->restarts_total++;
		orch_create(o, svc, 0, n->id);
		coming = true;
	reap:
		orch_reap(o, hist, hist_count,
			  orch_hist_room(orch_keep(o, svc),
					 present + coming + ended_count));
	}
	orch_note_batch(o, svc, &up);
	/* tasks on nodes gone from the store (node rm): shut, then gone */
	for (const Cs__Task *t = store_task_next_by_service(st, svc->id, NULL); t;
	     t = store_task_next_by_service(st, svc->id, t)) {
		if (!t->node_id || store_node_get(st, t->node_id))
			continue;
		if (orch_batch_full(o))
			return;
		if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING)
			orch_set_desired(o, t, CS__TASK_STATE__TASK_STATE_SHUTDOWN,
					 "node removed");
		else
			orch_delete(o, t);
	}
}

/* ---------------------------------------------------------------- policy, read only */

/* The restart policy may give up only when it has a condition other than
 * any, or a most attempts. */
static bool orch_policy_may_give_up(const Cs__Service *svc)
{
	const Cs__RestartPolicy *p = orch_policy(svc);
	return p && (p->condition != CS__RESTART_POLICY__CONDITION__CONDITION_ANY ||
		     p->max_attempts);
}

bool orchestrator_gave_up(const struct store *st, const Cs__Service *svc, uint64_t slot,
			  uint64_t node_id)
{
	const Cs__Task *hist[ORCH_SLOT_TASKS_MAX];
	const Cs__Task *last_end = NULL;
	size_t hist_count = 0, restarts;
	bool global = svc->spec->global;

	if (!orch_policy_may_give_up(svc))
		return false;
	for (const Cs__Task *t =
		     global ? store_task_next_by_node(st, node_id, NULL)
			    : store_task_next_in_slot(st, svc->id, slot, NULL);
	     t; t = global ? store_task_next_by_node(st, node_id, t)
			   : store_task_next_in_slot(st, svc->id, slot, t)) {
		bool terminal = t->status && orchestrator_is_terminal(t->status->state);
		if (t->service_id != svc->id)
			continue;
		if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING)
			return false; /* wanted, or about to be replaced */
		if (t->status && t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED)
			continue; /* never placed: being deleted */
		if (!terminal && !orchestrator_node_is_down(st, t->node_id))
			return false; /* still stopping */
		orch_hist_note(t, &last_end, hist, &hist_count);
	}
	if (!last_end || !last_end->status)
		return false;
	restarts = orch_restarts(svc, hist, hist_count, last_end);
	return !orch_outdated(st, svc, last_end) &&
	       !orch_may_restart(svc, last_end, restarts ? restarts - 1 : 0);
}

/* ---------------------------------------------------------------- removed services */

/* Tasks whose service is gone: told to go (desired REMOVE), deleted once
 * finished or when their node is gone. */
static void orch_orphans(struct orchestrator *o)
{
	const struct store *st = leader_store(o->ctx);
	bool none = true;

	for (const Cs__Task *t = store_task_next(st, NULL); t;
	     t = store_task_next(st, t)) {
		bool terminal;
		if (orch_batch_full(o))
			return;
		if (store_service_get(st, t->service_id))
			continue;
		none = false;
		terminal = !t->status || orchestrator_is_terminal(t->status->state) ||
			   t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED;
		if (terminal || orchestrator_node_is_down(st, t->node_id))
			orch_delete(o, t);
		else if (t->desired_state != CS__TASK_STATE__TASK_STATE_REMOVE)
			orch_set_desired(o, t, CS__TASK_STATE__TASK_STATE_REMOVE,
					 "service removed");
	}
	/* none: the next full pass need not look until one may appear */
	o->orphans_quiet = none;
}

/* ---------------------------------------------------------------- orphaned tasks */

/* The cluster's orphan delay (ClusterSettings.orphan_delay_ms; 0: 24 h). */
static ms_t orch_orphan_delay(const struct store *st)
{
	const Cs__Cluster *c = store_cluster(st);
	if (c && c->settings && c->settings->orphan_delay_ms)
		return c->settings->orphan_delay_ms;
	return ORCH_ORPHAN_DELAY_DEFAULT_MS;
}

/* Marks ORPHANED, and so frees, the tasks of node_id that may have made
 * progress since it was last heard (ASSIGNED to RUNNING): SwarmKit's
 * moveTasksToOrphaned. Returns false when the batch filled first. */
static bool orch_orphan_node(struct orchestrator *o, uint64_t node_id, ms_t delay_ms)
{
	const struct store *st = leader_store(o->ctx);
	char why[96];

	snprintf(why, sizeof why, "node down for %llu s: task orphaned",
		 (unsigned long long)(delay_ms / 1000));
	for (const Cs__Task *t = store_task_next_by_node(st, node_id, NULL); t;
	     t = store_task_next_by_node(st, node_id, t)) {
		Cs__Task copy;
		Cs__TaskStatus status;
		if (!t->status ||
		    t->status->state < CS__TASK_STATE__TASK_STATE_ASSIGNED ||
		    t->status->state > CS__TASK_STATE__TASK_STATE_RUNNING)
			continue;
		if (orch_batch_full(o))
			return false;
		copy = *t;
		status = *t->status;
		status.state = CS__TASK_STATE__TASK_STATE_ORPHANED;
		status.timestamp_ms = o->now_ms;
		status.message = why;
		copy.status = &status;
		store_batch_task(&o->batch, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy);
	}
	return true;
}

/* The record of node_id among the nodes seen down (sorted by id), or NULL. */
static const struct orch_down *orch_down_find(const struct orchestrator *o,
					      uint64_t node_id)
{
	size_t lo = 0, hi = o->down_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->downs[mid].node_id == node_id)
			return &o->downs[mid];
		if (o->downs[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Follows the nodes that are down: one down for the orphan delay (from
 * when this leader first saw it down, as SwarmKit's dispatcher times it)
 * has its tasks that may have made progress orphaned; the next passes find
 * none left unless a write was lost. A node back up, or gone, is
 * forgotten. */
static void orch_orphan_down_nodes(struct orchestrator *o)
{
	const struct store *st = leader_store(o->ctx);
	ms_t delay_ms = orch_orphan_delay(st);
	struct orch_down *next;
	size_t count = 0, n_down = 0;

	/* once a period at most: passes come often, nodes may be many, and
	 * the delay is hours (a down node is seen at most a period late) */
	if (o->downs_scanned && o->now_ms < o->downs_scan_ms + ORCH_PERIOD_MS) {
		for (size_t i = 0; i < o->down_count; i++) {
			ms_t at = o->downs[i].since_ms + delay_ms;
			if (at > o->now_ms && (!o->next_wake_ms || at < o->next_wake_ms))
				o->next_wake_ms = at;
		}
		return;
	}
	o->downs_scanned = true;
	o->downs_scan_ms = o->now_ms;

	for (const Cs__Node *n = store_node_next(st, NULL); n; n = store_node_next(st, n))
		n_down += n->state == CS__NODE_STATE__NODE_STATE_DOWN;
	if (n_down == 0) {
		o->down_count = 0;
		return;
	}
	next = malloc(n_down * sizeof *next);
	if (!next)
		return; /* no memory: the next pass tries again */
	/* nodes come in id order: so does the new list */
	for (const Cs__Node *n = store_node_next(st, NULL); n;
	     n = store_node_next(st, n)) {
		const struct orch_down *old;
		struct orch_down d = {n->id, o->now_ms};
		if (n->state != CS__NODE_STATE__NODE_STATE_DOWN)
			continue;
		if ((old = orch_down_find(o, n->id)) != NULL)
			d = *old;
		/* past the delay, every pass orphans what is left: a batch
		 * that was refused (a version raced) is made again */
		if (d.since_ms + delay_ms <= o->now_ms)
			(void)orch_orphan_node(o, n->id, delay_ms); /* full: next pass */
		else if (!o->next_wake_ms || d.since_ms + delay_ms < o->next_wake_ms)
			o->next_wake_ms = d.since_ms + delay_ms;
		assert(count < n_down);
		assert(count == 0 || next[count - 1].node_id < d.node_id);
		next[count++] = d;
	}
	free(o->downs);
	o->downs = next;
	o->down_count = count;
	o->down_cap = n_down;
}

static void orch_write_done(void *data, int status);
static void orch_arm(struct orchestrator *o, ms_t delay_ms);

static bool orch_svc_timed(const struct orchestrator *o, const Cs__Service *svc);

/* ---------------------------------------------------------------- quiet services */

/* The index of service_id in the quiet list, or where it would go. */
static size_t orch_quiet_at(const struct orchestrator *o, uint64_t service_id)
{
	size_t lo = 0, hi = o->quiet_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->quiet_svcs[mid] < service_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool orch_quiet_has(const struct orchestrator *o, uint64_t service_id)
{
	size_t i = orch_quiet_at(o, service_id);
	return i < o->quiet_count && o->quiet_svcs[i] == service_id;
}

/* Notes service_id quiet (no memory: it is looked at again, as before). */
static void orch_quiet_add(struct orchestrator *o, uint64_t service_id)
{
	size_t i = orch_quiet_at(o, service_id);
	if (i < o->quiet_count && o->quiet_svcs[i] == service_id)
		return;
	if (grow_array((void **)&o->quiet_svcs, &o->quiet_cap, o->quiet_count + 1,
		       sizeof *o->quiet_svcs))
		return;
	memmove(o->quiet_svcs + i + 1, o->quiet_svcs + i,
		(o->quiet_count - i) * sizeof *o->quiet_svcs);
	o->quiet_svcs[i] = service_id;
	o->quiet_count++;
	assert(i == 0 || o->quiet_svcs[i - 1] < service_id);
}

static void orch_quiet_drop(struct orchestrator *o, uint64_t service_id)
{
	size_t i = orch_quiet_at(o, service_id);
	if (i == o->quiet_count || o->quiet_svcs[i] != service_id)
		return;
	memmove(o->quiet_svcs + i, o->quiet_svcs + i + 1,
		(o->quiet_count - i - 1) * sizeof *o->quiet_svcs);
	o->quiet_count--;
}

/* Whether a task's change from old to t leaves every decision a look at
 * its (quiet) service would make as it was: the same place and spec,
 * meant to run, before and after between NEW and RUNNING (live, never
 * terminal: a slot with it keeps it and starts nothing), and, when it
 * moved to another node, on one that keeps it (up, not drained, meeting
 * the constraints, not outdated by a placement-only change). What a look
 * reads of the node later changes with a node event, which drops the
 * services of the node's tasks. */
static bool orch_task_change_is_quiet(const struct orchestrator *o, const Cs__Task *old,
				      const Cs__Task *t)
{
	const struct store *st = leader_store(o->ctx);
	const Cs__Service *svc;

	if (!old || !t || !old->status || !t->status)
		return false;
	if (old->service_id != t->service_id || old->slot != t->slot ||
	    old->spec_version != t->spec_version ||
	    old->desired_state != t->desired_state)
		return false;
	if (t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING ||
	    old->status->state > CS__TASK_STATE__TASK_STATE_RUNNING ||
	    t->status->state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return false;
	if (old->node_id == t->node_id)
		return true;
	svc = store_service_get(st, t->service_id);
	return svc && !orchestrator_node_is_down(st, t->node_id) &&
	       !orch_node_drained(st, t->node_id) && !orch_node_unfit(st, svc, t) &&
	       !orch_outdated(st, svc, t);
}

/* A node changed (or came, or went): the services of its tasks are looked
 * at again (a look reads whether a task's node is up, drained, fit). */
static void orch_quiet_drop_node(struct orchestrator *o, uint64_t node_id)
{
	const struct store *st = leader_store(o->ctx);
	if (o->quiet_count == 0)
		return;
	for (const Cs__Task *t = store_task_next_by_node(st, node_id, NULL); t;
	     t = store_task_next_by_node(st, node_id, t))
		orch_quiet_drop(o, t->service_id);
}

/* ---------------------------------------------------------------- the loop */

/* The pass over one service. A replicated service noted quiet is skipped:
 * its look would make no write and need no timer, as its last did. */
static void orch_service(struct orchestrator *o, const Cs__Service *svc)
{
	size_t actions = o->batch.action_count;
	ms_t wake_ms = o->next_wake_ms;

	if (svc->spec->job)
		return; /* jobs are core/jobs.c's (SwarmKit's jobs orchestrator) */
	if (svc->spec->global) {
		orch_global(o, svc);
		return;
	}
	if (orch_quiet_has(o, svc->id)) {
		o->looks_quiet++;
		return;
	}
	o->looks_full++;
	if (orch_replicated(o, svc) && o->svc_no_update &&
	    o->batch.action_count == actions && o->next_wake_ms == wake_ms &&
	    !orch_svc_timed(o, svc))
		orch_quiet_add(o, svc->id);
}

static void orch_mark(struct orchestrator *o, uint64_t service_id);

/* Whether time alone may change what the service needs: a delay running
 * (restart or between update batches), an update watching its tasks, a
 * restart window counting. */
static bool orch_svc_timed(const struct orchestrator *o, const Cs__Service *svc)
{
	const Cs__UpdateStatus *us = svc->update_status;
	const Cs__TaskSpec *t = svc->spec->task;

	if (us && (us->state == CS__UPDATE_STATUS__STATE__STATE_UPDATING ||
		   us->state == CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED))
		return true;
	if (t && t->restart && t->restart->window_ms)
		return true;
	for (size_t i = 0; i < o->delay_count; i++)
		if (o->delays[i].service_id == svc->id)
			return true;
	return false;
}

static void orch_mark_timed(struct orchestrator *o)
{
	const struct store *st = leader_store(o->ctx);
	for (const Cs__Service *svc = store_service_next(st, NULL); svc;
	     svc = store_service_next(st, svc))
		if (orch_svc_timed(o, svc))
			orch_mark(o, svc->id);
}

static void orch_on_timer(struct env *env, env_timer_id id, void *data);

/* The timer for the earliest delay that ends (one at a time: re-armed when
 * a pass finds an earlier one). */
static void orch_arm_wake(struct orchestrator *o, ms_t at_ms)
{
	if (o->dying)
		return;
	if (o->wake_timer) {
		if (o->wake_at_ms <= at_ms)
			return;
		o->env->ops->timer_stop(o->env, o->wake_timer);
		o->wake_timer = 0;
	}
	o->wake_at_ms = at_ms;
	o->env->ops->timer_start(o->env, at_ms > o->now_ms ? at_ms - o->now_ms : 0, 0,
				 orch_on_timer, o, &o->wake_timer);
}

static void orch_pass(struct orchestrator *o)
{
	const struct store *st = leader_store(o->ctx);
	uint8_t *buf;
	size_t len;

	if (o->writing || o->stopped)
		return;
	o->dirty = false;
	o->now_ms = o->env->ops->now_ms(o->env);
	o->next_wake_ms = 0;
	store_batch_init(&o->batch);
	if (o->all_dirty) {
		o->all_dirty = false;
		o->orphans_dirty = false;
		o->dirty_count = 0;
		for (const Cs__Service *svc = store_service_next(st, NULL); svc;
		     svc = store_service_next(st, svc))
			orch_service(o, svc);
		if (!o->orphans_quiet)
			orch_orphans(o);
	} else {
		/* only what changed, in id order as a full pass would go */
		size_t n = o->dirty_count;
		if (n > 1)
			qsort(o->dirty_svcs, n, sizeof *o->dirty_svcs, sort_u64_cmp);
		o->dirty_count = 0;
		for (size_t i = 0; i < n; i++) {
			const Cs__Service *svc;
			if (i > 0 && o->dirty_svcs[i] == o->dirty_svcs[i - 1])
				continue;
			svc = store_service_get(st, o->dirty_svcs[i]);
			if (svc)
				orch_service(o, svc);
			else
				o->orphans_dirty = true;
		}
		if (o->orphans_dirty) {
			o->orphans_dirty = false;
			orch_orphans(o);
		}
	}
	orch_orphan_down_nodes(o);
	/* a pass cut short by the batch's size: the next one, as soon as this
	 * write is done, looks at all */
	if (orch_batch_full(o)) {
		o->all_dirty = true;
		o->dirty = true;
	}
	if (o->next_wake_ms)
		orch_arm_wake(o, o->next_wake_ms);
	if (o->batch.action_count == 0) {
		store_batch_free(&o->batch);
		return;
	}
	if (store_batch_encode(&o->batch, 0, 0, &buf, &len) == 0) {
		int rv = leader_write(o->ctx, buf, len, orch_write_done, o);
		if (rv == 0) {
			o->writing = true;
			o->write_ms = o->now_ms;
			o->write_actions = o->batch.action_count;
			o->write_bytes = len;
		} else if (rv == CS_ELIMIT)
			env_logf(
				o->env, ENV_LOG_ERROR,
				"msg=\"orchestrator batch refused\" actions=%zu bytes=%zu "
				"err=%s",
				o->batch.action_count, len, cs_errname(rv));
		free(buf);
	}
	store_batch_free(&o->batch);
}

static void orch_on_timer(struct env *env, env_timer_id id, void *data)
{
	struct orchestrator *o = data;
	if (id == o->pass_timer)
		o->pass_timer = 0;
	/* the period and delays ending: time itself may let something go, in
	 * the services whose decisions depend on time; every few periods, in
	 * all of them (a safety net, not a need) */
	if (id == o->period_timer && ++o->periods % ORCH_FULL_EVERY == 0)
		o->all_dirty = true;
	else if (id == o->period_timer || id == o->wake_timer)
		orch_mark_timed(o);
	if (id == o->wake_timer)
		o->wake_timer = 0;
	orch_pass(o);
}

static void orch_arm(struct orchestrator *o, ms_t delay_ms)
{
	if (o->pass_timer || o->dying)
		return;
	o->env->ops->timer_start(o->env, delay_ms, 0, orch_on_timer, o, &o->pass_timer);
}

static void orch_free(struct orchestrator *o)
{
	free(o->svc_tasks);
	free(o->quiet_svcs);
	free(o->dirty_svcs);
	free(o->delays);
	free(o->downs);
	free(o);
}

static void orch_write_done(void *data, int status)
{
	struct orchestrator *o = data;
	o->writing = false;
	if (o->stopped) {
		orch_free(o);
		return;
	}
	env_logf(o->env, ENV_LOG_DEBUG,
		 "msg=\"orchestrator write done\" actions=%zu bytes=%zu status=%d"
		 " ms=%" PRIu64 " more=%d",
		 o->write_actions, o->write_bytes, status,
		 (uint64_t)(o->env->ops->now_ms(o->env) - o->write_ms), (int)o->dirty);
	/* a refused batch (a version raced) or more to do: look again (at
	 * every service, when refused) */
	if (status) {
		o->quiet_count = 0;
		o->orphans_quiet = false;
	}
	if (status || o->dirty)
		orch_arm(o, ORCH_DEBOUNCE_MS);
}

static void orch_mark(struct orchestrator *o, uint64_t service_id)
{
	if (o->all_dirty)
		return;
	if (o->dirty_count > 0 && o->dirty_svcs[o->dirty_count - 1] == service_id)
		return;
	if (grow_array((void **)&o->dirty_svcs, &o->dirty_cap, o->dirty_count + 1,
		       sizeof *o->dirty_svcs)) {
		o->all_dirty = true; /* no memory for the list: look at all */
		return;
	}
	o->dirty_svcs[o->dirty_count++] = service_id;
}

static void orchestrator_on_event(void *state, const struct store_event *ev)
{
	struct orchestrator *o = state;

	if (ev->table == STORE_TASK) {
		const Cs__Task *old = (const Cs__Task *)ev->old_obj;
		const Cs__Task *t =
			(const Cs__Task *)(ev->new_obj ? ev->new_obj : ev->old_obj);
		if (old && ev->new_obj && old->service_id != t->service_id) {
			orch_mark(o, old->service_id);
			orch_quiet_drop(o, old->service_id);
		}
		orch_mark(o, t->service_id);
		if (orch_quiet_has(o, t->service_id) &&
		    !orch_task_change_is_quiet(o, old, (const Cs__Task *)ev->new_obj))
			orch_quiet_drop(o, t->service_id);
		if (ev->new_obj &&
		    !store_service_get(leader_store(o->ctx), t->service_id))
			o->orphans_quiet = false;
	} else if (ev->table == STORE_SERVICE) {
		const Cs__Service *s =
			(const Cs__Service *)(ev->new_obj ? ev->new_obj : ev->old_obj);
		orch_mark(o, s->id);
		orch_quiet_drop(o, s->id);
		if (!ev->new_obj) {
			o->orphans_dirty = true;
			o->orphans_quiet = false;
		}
	} else if (ev->table == STORE_NODE) {
		const Cs__Node *n =
			(const Cs__Node *)(ev->new_obj ? ev->new_obj : ev->old_obj);
		orch_quiet_drop_node(o, n->id);
		o->all_dirty = true; /* nodes touch every service */
	} else {
		o->all_dirty = true; /* settings touch every service */
		o->quiet_count = 0;
		o->orphans_quiet = false;
	}
	o->dirty = true;
	if (!o->writing)
		orch_arm(o, ORCH_DEBOUNCE_MS);
}

static int orchestrator_start(const struct leader_ctx *ctx, void **state)
{
	struct env *env = leader_env(ctx);
	struct orchestrator *o = calloc(1, sizeof *o);
	if (!o)
		return CS_ENOMEM;
	o->env = env;
	o->ctx = ctx;
	o->cfg = leader_cfg(ctx);
	o->all_dirty = true; /* a new leader looks at everything first */
	if (env->ops->timer_start(env, ORCH_PERIOD_MS, ORCH_PERIOD_MS, orch_on_timer, o,
				  &o->period_timer)) {
		free(o);
		return CS_ENOMEM;
	}
	orch_arm(o, ORCH_DEBOUNCE_MS);
	*state = o;
	return 0;
}

static void orchestrator_stop(void *state, bool dying)
{
	struct orchestrator *o = state;

	o->stopped = true;
	o->dying = dying;
	if (!dying) {
		o->env->ops->timer_stop(o->env, o->period_timer);
		if (o->pass_timer)
			o->env->ops->timer_stop(o->env, o->pass_timer);
		if (o->wake_timer)
			o->env->ops->timer_stop(o->env, o->wake_timer);
	}
	if (!o->writing)
		orch_free(o);
	/* else the write's answer frees it (the manager answers CS_ECLOSED
	 * to a dying process's writes) */
}

/* ---------------------------------------------------------------- for the jobs orchestrator */

/* The restart policy's rules, shared with core/jobs.c (see orchestrator.h). */
bool orchestrator_may_restart(const Cs__Service *svc, const Cs__Task *last,
			      size_t restarts)
{
	return orch_may_restart(svc, last, restarts);
}

size_t orchestrator_restarts(const Cs__Service *svc, const Cs__Task *const *hist,
			     size_t n, const Cs__Task *last_end)
{
	return orch_restarts(svc, hist, n, last_end);
}

ms_t orchestrator_restart_delay(const Cs__Service *svc)
{
	return orch_restart_delay(svc);
}

/* ---------------------------------------------------------------- metrics */

/* Restarts, and the progress of each service being updated or rolled back
 * (issue 20): of its tasks meant to run, those on its current spec. */
static void orchestrator_metrics(void *state, struct metrics_buf *out)
{
	const struct orchestrator *o = state;
	const struct store *st = leader_store(o->ctx);
	char label[160], name[96];

	metrics_family(out, "cswarm_orchestrator_restarts_total", METRICS_COUNTER,
		       "Tasks the restart policy replaced (proposed) while this manager "
		       "led.");
	metrics_sample(out, "cswarm_orchestrator_restarts_total", NULL,
		       (double)o->restarts_total);
	metrics_family(out, "cswarm_orchestrator_service_looks_total", METRICS_COUNTER,
		       "Replicated services a pass looked at (full), and those it "
		       "skipped because nothing changed that could change its "
		       "decisions (quiet), while this manager led.");
	metrics_sample(out, "cswarm_orchestrator_service_looks_total", "look=\"full\"",
		       (double)o->looks_full);
	metrics_sample(out, "cswarm_orchestrator_service_looks_total", "look=\"quiet\"",
		       (double)o->looks_quiet);
	metrics_family(out, "cswarm_orchestrator_update_tasks", METRICS_GAUGE,
		       "Services being updated or rolled back: their tasks meant to run "
		       "(total) and of them those on the current spec (updated).");
	for (const Cs__Service *svc = store_service_next(st, NULL); svc;
	     svc = store_service_next(st, svc)) {
		uint64_t total = 0, updated = 0;
		Cs__UpdateStatus__State us =
			svc->update_status ? svc->update_status->state
					   : CS__UPDATE_STATUS__STATE__STATE_NONE;
		if (us != CS__UPDATE_STATUS__STATE__STATE_UPDATING &&
		    us != CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED)
			continue;
		for (const Cs__Task *t = store_task_next_by_service(st, svc->id, NULL); t;
		     t = store_task_next_by_service(st, svc->id, t)) {
			if (t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING)
				continue;
			total++;
			if (!orch_outdated(st, svc, t))
				updated++;
		}
		metrics_label(name, sizeof name, "service",
			      svc->spec ? svc->spec->name : "");
		snprintf(label, sizeof label, "%s,kind=\"updated\"", name);
		metrics_sample(out, "cswarm_orchestrator_update_tasks", label,
			       (double)updated);
		snprintf(label, sizeof label, "%s,kind=\"total\"", name);
		metrics_sample(out, "cswarm_orchestrator_update_tasks", label,
			       (double)total);
	}
}

const struct leader_component_ops orchestrator_component = {
	.name = "orchestrator",
	.start = orchestrator_start,
	.stop = orchestrator_stop,
	.on_event = orchestrator_on_event,
	.metrics = orchestrator_metrics,
};
