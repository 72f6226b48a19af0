#include "core/scheduler_loop.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "core/leader.h"
#include "core/scheduler.h"
#include "core/store.h"

enum {
	SCHEDLOOP_DEBOUNCE_MS = 5, /* changes gather this long */
	SCHEDLOOP_PERIOD_MS = 1000,
	/* a plan goes on across batches at most this long, then the store is
	 * read again (new pending tasks wait for a fresh plan) */
	SCHEDLOOP_PLAN_MAX_MS = 2000,
};

struct schedloop {
	struct env *env;
	const struct leader_ctx *ctx; /* what the leader lets it see */
	env_timer_id pass_timer, period_timer;
	bool writing, dirty, stopped, dying;
	bool more; /* the last run stopped at its limit */
	bool idle; /* the last run found nothing pending, and nothing changed */
	/* the failures of tasks on their nodes this leader saw (SwarmKit's
	 * recentFailures, in the scheduler's memory: a new leader starts
	 * with none) */
	struct sched_failures *failures;
	/* the plan the last pass left work in (sched_pass), kept while every
	 * store change is one sched_survives accepts; NULL: read afresh */
	struct sched *plan;
	ms_t plan_ms; /* when it was read */
	uint64_t plans_read, plans_continued;
	/* metrics: the last run's counts, placements written, pass times */
	struct sched_stats last;
	uint64_t placed_total;
	struct metrics_hist placement_ms; /* PENDING (on this clock) to ASSIGNED */
};

static void schedloop_write_done(void *data, int status);
static void schedloop_arm(struct schedloop *l);

static void schedloop_drop_plan(struct schedloop *l)
{
	sched_free(l->plan);
	l->plan = NULL;
}

static void schedloop_pass(struct schedloop *l)
{
	ms_t now;
	struct store_batch b;
	struct sched_stats stats;
	uint8_t *buf;
	size_t len;
	int rv;

	if (l->writing || l->stopped)
		return;
	l->dirty = false;
	store_batch_init(&b);
	b.placements = true; /* issue 18: compact placements */
	memset(&stats, 0, sizeof stats);
	now = l->env->ops->now_ms(l->env);
	if (l->plan && now - l->plan_ms >= SCHEDLOOP_PLAN_MAX_MS) {
		sched_free(l->plan);
		l->plan = NULL;
	}
	if (l->plan) {
		l->plans_continued++;
	} else {
		l->plans_read++;
		l->plan_ms = now;
	}
	rv = sched_pass(&l->plan, leader_store(l->ctx), now, l->failures,
			LIMIT_SCHED_TASKS_PER_RUN, &b, &stats);
	if (rv == 0) {
		l->last = stats;
		l->placed_total += stats.assigned_count;
	}
	l->idle = rv == 0 && stats.pending_count == 0 && stats.skipped_count == 0;
	if (rv == 0 && b.action_count > 0 &&
	    store_batch_encode(&b, 0, 0, &buf, &len) == 0) {
		if (leader_write(l->ctx, buf, len, schedloop_write_done, l) == 0)
			l->writing = true;
		l->more = stats.more;
		free(buf);
	}
	if (!l->writing)
		schedloop_drop_plan(l); /* its writes are not going out */
	store_batch_free(&b);
}

static void schedloop_on_timer(struct env *env, env_timer_id id, void *data)
{
	struct schedloop *l = data;
	if (id == l->pass_timer)
		l->pass_timer = 0;
	/* the period is a safety net for pending tasks; with none, and no
	 * change since, a run would read the whole store to find nothing */
	else if (l->idle && !l->dirty)
		return;
	schedloop_pass(l);
}

static void schedloop_arm(struct schedloop *l)
{
	if (l->pass_timer || l->dying)
		return;
	l->env->ops->timer_start(l->env, SCHEDLOOP_DEBOUNCE_MS, 0, schedloop_on_timer, l,
				 &l->pass_timer);
}

static void schedloop_write_done(void *data, int status)
{
	struct schedloop *l = data;
	l->writing = false;
	if (status)
		schedloop_drop_plan(l); /* its writes may not have landed */
	if (l->stopped) {
		schedloop_drop_plan(l);
		sched_failures_free(l->failures);
		free(l);
		return;
	}
	if (status || l->dirty || l->more)
		schedloop_arm(l);
}

/* Whether a task's change can matter to placement: a task to place, a
 * task that moved, went or ended (resources freed), one told to stop. A
 * task that only moves along on its node (ASSIGNED ... RUNNING: most of
 * the traffic) cannot. */
static bool schedloop_task_matters(const Cs__Task *o, const Cs__Task *n)
{
	int os, ns;
	if (!o || !n || o->node_id != n->node_id || o->desired_state != n->desired_state)
		return true;
	os = o->status ? (int)o->status->state : 0;
	ns = n->status ? (int)n->status->state : 0;
	if (os <= CS__TASK_STATE__TASK_STATE_PENDING ||
	    ns <= CS__TASK_STATE__TASK_STATE_PENDING)
		return true;
	return (os >= CS__TASK_STATE__TASK_STATE_COMPLETE) !=
	       (ns >= CS__TASK_STATE__TASK_STATE_COMPLETE);
}

/* Records the failure of a task on its node, when the change from old to
 * new is one (sched_task_is_failure), and says when a node reaches the
 * count that makes the scheduler avoid it for the service. */
static void schedloop_note_failure(struct schedloop *l, const Cs__Task *old,
				   const Cs__Task *n)
{
	const struct store *st = leader_store(l->ctx);
	uint64_t now = l->env->ops->now_ms(l->env);
	size_t count;
	int rv;

	if (!sched_task_is_failure(old, n, store_service_get(st, n->service_id)) ||
	    !store_node_get(st, n->node_id))
		return;
	rv = sched_failures_add(l->failures, n->node_id, n->service_id, n->spec_version,
				now);
	if (rv) {
		env_logf(l->env, ENV_LOG_WARN,
			 "msg=\"task failure not recorded\" node=%016" PRIx64
			 " service=%016" PRIx64 " why=\"%s\"",
			 n->node_id, n->service_id, cs_strerror(rv));
		return;
	}
	count = sched_failures_count(l->failures, n->node_id, n->service_id,
				     n->spec_version, now);
	if (count == SCHED_FAILURES_MAX)
		env_logf(l->env, ENV_LOG_WARN,
			 "msg=\"underweighting node for service\" node=%016" PRIx64
			 " service=%016" PRIx64 " spec_version=%" PRIu64
			 " failures=%zu within_ms=%u",
			 n->node_id, n->service_id, n->spec_version, count,
			 (unsigned)SCHED_FAILURES_WINDOW_MS);
}

static void schedloop_on_event(void *state, const struct store_event *ev)
{
	struct schedloop *l = state;

	/* first: the plan borrows the failure history noted below */
	if (l->plan && !sched_survives(l->plan, ev))
		schedloop_drop_plan(l);

	if (ev->table == STORE_TASK && ev->old_obj && ev->new_obj) {
		const Cs__Task *was = (const Cs__Task *)ev->old_obj;
		const Cs__Task *now = (const Cs__Task *)ev->new_obj;
		ms_t at = l->env->ops->now_ms(l->env);
		schedloop_note_failure(l, was, now);
		/* placed: how long it waited since its PENDING stamp (one
		 * ahead of this clock, an earlier leader's, is not counted) */
		if (was->status && now->status &&
		    was->status->state == CS__TASK_STATE__TASK_STATE_PENDING &&
		    now->status->state == CS__TASK_STATE__TASK_STATE_ASSIGNED &&
		    was->status->timestamp_ms <= at)
			metrics_hist_observe(&l->placement_ms,
					     (double)(at - was->status->timestamp_ms));
	}
	/* a new pending task, a node that changed, resources freed: all of
	 * them may let something be placed; a service alone cannot (its
	 * tasks come as task events), nor a task moving along on its node */
	if (ev->table == STORE_CLUSTER || ev->table == STORE_SERVICE)
		return;
	if (ev->table == STORE_TASK &&
	    !schedloop_task_matters((const Cs__Task *)ev->old_obj,
				    (const Cs__Task *)ev->new_obj))
		return;
	l->dirty = true;
	l->idle = false;
	if (!l->writing)
		schedloop_arm(l);
}

static int schedloop_start(const struct leader_ctx *ctx, void **state)
{
	struct env *env = leader_env(ctx);
	struct schedloop *l = calloc(1, sizeof *l);
	if (!l)
		return CS_ENOMEM;
	l->env = env;
	l->ctx = ctx;
	if (sched_failures_new(&l->failures)) {
		free(l);
		return CS_ENOMEM;
	}
	if (env->ops->timer_start(env, SCHEDLOOP_PERIOD_MS, SCHEDLOOP_PERIOD_MS,
				  schedloop_on_timer, l, &l->period_timer)) {
		sched_failures_free(l->failures);
		free(l);
		return CS_ENOMEM;
	}
	schedloop_arm(l);
	*state = l;
	return 0;
}

static void schedloop_stop(void *state, bool dying)
{
	struct schedloop *l = state;

	l->stopped = true;
	l->dying = dying;
	if (!dying) {
		l->env->ops->timer_stop(l->env, l->period_timer);
		if (l->pass_timer)
			l->env->ops->timer_stop(l->env, l->pass_timer);
	}
	if (!l->writing) {
		schedloop_drop_plan(l);
		sched_failures_free(l->failures);
		free(l);
	}
}

/* Pending tasks by reason (issue 20): the store's tasks meant to run and
 * still PENDING, by what their status message (the scheduler's "no
 * suitable node (...)") names; a task failing on several nodes for
 * several reasons counts under each; "none" is one with no reason yet. */
static void schedloop_metrics_reasons(const struct schedloop *l, struct metrics_buf *out)
{
	static const struct {
		const char *label, *words;
	} reasons[] = {
		{"no_nodes", "(no nodes)"},
		{"not_available", "not available for new tasks"},
		{"cpu", " CPU"},
		{"memory", " memory"},
		{"constraint", " constraint "},
		{"max_replicas", "max replicas per node"},
		{"host_port", "host port in use"},
	};
	enum { REASONS = sizeof reasons / sizeof *reasons };
	uint64_t counts[REASONS + 1] = {0}; /* the last: none */
	const struct store *st = leader_store(l->ctx);
	char label[64];

	for (const Cs__Task *t = store_task_next_by_desired(
		     st, CS__TASK_STATE__TASK_STATE_RUNNING, NULL);
	     t;
	     t = store_task_next_by_desired(st, CS__TASK_STATE__TASK_STATE_RUNNING, t)) {
		bool any = false;
		if (!t->status || t->status->state != CS__TASK_STATE__TASK_STATE_PENDING)
			continue;
		for (size_t i = 0; i < REASONS; i++)
			if (t->status->message &&
			    strstr(t->status->message, reasons[i].words)) {
				counts[i]++;
				any = true;
			}
		if (!any)
			counts[REASONS]++;
	}
	for (size_t i = 0; i <= REASONS; i++)
		metrics_sample(out, "cswarm_scheduler_pending_tasks",
			       metrics_label(label, sizeof label, "reason",
					     i < REASONS ? reasons[i].label : "none"),
			       (double)counts[i]);
}

static void schedloop_metrics(void *state, struct metrics_buf *out)
{
	const struct schedloop *l = state;

	metrics_family(out, "cswarm_scheduler_pending_tasks", METRICS_GAUGE,
		       "Pending tasks the last scheduler run saw, and of them those that "
		       "fit no node.");
	metrics_sample(out, "cswarm_scheduler_pending_tasks", "kind=\"pending\"",
		       (double)l->last.pending_count);
	metrics_sample(out, "cswarm_scheduler_pending_tasks", "kind=\"unplaceable\"",
		       (double)l->last.unplaceable_count);
	schedloop_metrics_reasons(l, out);
	metrics_family(
		out, "cswarm_scheduler_placements_total", METRICS_COUNTER,
		"Tasks the scheduler placed (proposed ASSIGNED) while this manager "
		"led.");
	metrics_sample(out, "cswarm_scheduler_placements_total", NULL,
		       (double)l->placed_total);
	metrics_family(out, "cswarm_scheduler_passes_total", METRICS_COUNTER,
		       "Scheduler passes that read the whole store into a new plan, and "
		       "those that went on with the last pass's plan (a placement larger "
		       "than one batch, nothing else changed).");
	metrics_sample(out, "cswarm_scheduler_passes_total", "plan=\"read\"",
		       (double)l->plans_read);
	metrics_sample(out, "cswarm_scheduler_passes_total", "plan=\"continued\"",
		       (double)l->plans_continued);
	metrics_family(out, "cswarm_scheduler_placement_seconds", METRICS_HISTOGRAM,
		       "A task placed: from its PENDING stamp to ASSIGNED applied on the "
		       "leader (a stamp of another manager's clock counts as it reads).");
	metrics_hist_write(out, "cswarm_scheduler_placement_seconds", NULL,
			   &l->placement_ms);
}

const struct leader_component_ops scheduler_component = {
	.name = "scheduler",
	.start = schedloop_start,
	.stop = schedloop_stop,
	.on_event = schedloop_on_event,
	.metrics = schedloop_metrics,
};
