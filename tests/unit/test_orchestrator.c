/* Tests of the orchestrator, through the simulator's real parts (the
 * scenario runner on a cluster of node programs): the restart delay holds
 * for a crash but not for a dead node, max attempts stop a crash loop, the
 * reaper keeps `history` tasks per slot (the live one included), scale down
 * stops the highest slots, removed services lose their tasks, a slot never
 * gets a second task while its last one may still run; and SwarmKit's
 * numbers for issue 14: placement-only changes, a paused update resumed by
 * any update, rollback config, force, orphaned tasks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/manager.h"
#include "core/metrics.h"
#include "sim/cluster.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "tests/support/scnrun.h"

static void test_orch_restart_delay_holds_for_a_crash(void **state)
{
	/* exits after 2 s; restarted only 10 s later: at 6 s nothing runs */
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image crashy exit=1 after=2s\n"
		       "service create web image=crashy restart-delay=10s\n"
		       "expect running web == 1 within 30s\n"
		       "expect running web == 0 within 5s\n"
		       "run 6s\n"
		       "expect running web == 0\n"
		       "expect store tasks web state=failed == 1\n"
		       "expect running web == 1 within 10s\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_dead_node_tasks_replaced_without_delay(void **state)
{
	/* restart delay 1 hour: still replaced once the node is down */
	struct runner_result r = scnrun("cluster managers=1 workers=2\n"
					"service create web replicas=2 restart-delay=1h "
					"constraint=node.role==worker max-per-node=2\n"
					"expect running web == 2 within 1m\n"
					"kill w1\n"
					"kill w2\n"
					"node add worker\n"
					"expect running web == 2 within 1m\n"
					"expect running web on w3 == 2\n",
					5, NULL);
	assert_true(r.passed);
}

static void test_orch_max_attempts_stop_a_crash_loop(void **state)
{
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image crashy exit=3 after=1s\n"
		       "service create web image=crashy restart-delay=1s "
		       "restart-max=2 restart=on-failure\n"
		       "run 1m\n"
		       "expect running web == 0\n"
		       "expect store tasks web state=failed == 3\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_on_failure_does_not_restart_a_clean_exit(void **state)
{
	struct runner_result r = scnrun("cluster managers=1\n"
					"image job exit=0 after=1s\n"
					"service create web image=job restart=on-failure "
					"restart-delay=1s\n"
					"run 30s\n"
					"expect store tasks web state=complete == 1\n"
					"expect running web == 0\n",
					5, NULL);
	assert_true(r.passed);
}

static void test_orch_restart_none_still_reconciles_stopped_slots(void **state)
{
	/* scaled down then up, drained: stopped on request, not ended */
	struct runner_result r = scnrun("cluster managers=1 workers=2\n"
					"service create web replicas=3 restart=none\n"
					"expect running web == 3 within 30s\n"
					"service update web replicas=1\n"
					"expect running web == 1 within 30s\n"
					"service update web replicas=3\n"
					"expect running web == 3 within 30s\n"
					"node drain w1\n"
					"expect running web on w1 == 0 within 30s\n"
					"expect running web == 3 within 30s\n",
					5, NULL);
	assert_true(r.passed);
}

/* A dead node's task is replaced at once, the replacement fails by itself,
 * and only then does the old task's daemon come back and report it
 * stopped: that late report is not the slot's last end. The replacement's
 * failure decides, under restart=none (no new task) and under a restart
 * delay of 1 h (none within it). Both got a new task at once before. */
static const char *late_stop_text(const char *policy)
{
	static char text[1024];
	snprintf(text, sizeof text,
		 "cluster managers=1 workers=2\n"
		 "image v1\n"
		 "node drain m1\n"
		 "node drain w2\n"
		 "service create web image=v1 replicas=1 %s\n"
		 "expect running web on w1 == 1 within 30s\n"
		 "node activate w2\n"
		 "image v1 exit=1 after=2s\n"
		 "kill w1 process\n"
		 "expect node w1 down within 1m\n"
		 "expect store tasks web state=failed == 1 within 30s\n"
		 "restart w1\n"
		 "expect node w1 ready within 30s\n"
		 "run 30s\n"
		 "expect store tasks web state=failed == 1\n"
		 "expect running web == 0\n",
		 policy);
	return text;
}

static void test_orch_late_stop_report_of_a_replaced_task_decides_nothing(void **state)
{
	struct runner_result r = scnrun(late_stop_text("restart=none"), 5, NULL);
	assert_true(r.passed);
	r = scnrun(late_stop_text("restart=any restart-delay=1h"), 5, NULL);
	assert_true(r.passed);
}

static void test_orch_global_service_keeps_its_restart_policy(void **state)
{
	struct runner_result r =
		scnrun("cluster managers=1 workers=1\n"
		       "image crashy exit=3 after=1s\n"
		       "service create g mode=global image=crashy "
		       "restart=on-failure restart-max=1 restart-delay=1s\n"
		       "run 30s\n"
		       "expect running g == 0\n"
		       "expect store tasks g state=failed == 4\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_converged_does_not_wait_for_a_policy_that_gave_up(void **state)
{
	/* two slots give up; the third runs a clean image: converged */
	struct runner_result r =
		scnrun("cluster managers=1 workers=1\n"
		       "image crashy exit=3 after=1s\n"
		       "service create web replicas=2 image=crashy "
		       "restart=none\n"
		       "service create ok replicas=1\n"
		       "expect store tasks web state=failed == 2 within 30s\n"
		       "expect converged within 10s\n"
		       "expect running ok == 1\n",
		       5, NULL);
	struct runner_result loop = scnrun("cluster managers=1\n"
					   "image crashy exit=3 after=1s\n"
					   "service create web image=crashy "
					   "restart-delay=1s\n"
					   "run 20s\n"
					   "expect converged\n",
					   5, NULL);

	assert_true(r.passed);
	/* a crash loop under restart=any is never converged */
	assert_false(loop.passed);
	assert_non_null(strstr(loop.message, "expect converged"));
}

static void test_orch_reaper_keeps_history_per_slot(void **state)
{
	/* SwarmKit's task reaper counts the live task in the history limit:
	 * with history=2 a crash loop shows at most 2 failed tasks (the one
	 * kept, and the one that just ended until its replacement exists);
	 * before, 3 */
	struct runner_result r =
		scnrun("set history=2\n"
		       "cluster managers=1\n"
		       "image crashy exit=1 after=500ms\n"
		       "service create web image=crashy restart-delay=1s\n"
		       "expect store tasks web state=failed >= 1 within 10s\n"
		       "always store tasks web state=failed <= 2\n"
		       "run 1m\n"
		       "expect store tasks web state=failed >= 1\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_max_attempts_keep_exactly_attempts_plus_one(void **state)
{
	/* restart-max 1 keeps 2 tasks a slot, under the default history of 5
	 * (SwarmKit: MaxAttempts + 1 overrides the retention limit): after a
	 * second spec's crash loop, 2 failed remain, not 4 */
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image crashy exit=1 after=500ms\n"
		       "image crashy2 exit=1 after=500ms\n"
		       "service create web image=crashy restart=on-failure "
		       "restart-max=1 restart-delay=1s\n"
		       "run 30s\n"
		       "expect store tasks web state=failed == 2\n"
		       "service update web image=crashy2\n"
		       "run 30s\n"
		       "expect running web == 0\n"
		       "expect store tasks web state=failed == 2\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_placement_only_change_keeps_qualifying_tasks(void **state)
{
	/* SwarmKit's IsTaskDirty: a constraint change replaces only the task
	 * on the node that no longer qualifies (1 shut, not 3); a spread or
	 * max-per-node change alone replaces none */
	struct runner_result r =
		scnrun("cluster managers=1 workers=3\n"
		       "service create web replicas=3 constraint=node.role==worker "
		       "max-per-node=1\n"
		       "expect converged within 30s\n"
		       "service update web constraint=node.role==worker "
		       "constraint=node.hostname!=w3 max-per-node=2\n"
		       "expect running web on w3 == 0 within 30s\n"
		       "expect converged within 30s\n"
		       "expect store tasks web state=shutdown == 1\n"
		       "service update web spread=node.labels.zone max-per-node=3\n"
		       "run 20s\n"
		       "expect store tasks web state=shutdown == 1\n"
		       "expect store tasks web state=running == 3\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_any_update_resumes_a_paused_update(void **state)
{
	/* SwarmKit resets the update status on every service update: a
	 * change of the failure action alone resumes the paused update */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "image good\n"
		       "image broken pull=fail\n"
		       "service create web image=good replicas=4 update-parallelism=1 "
		       "update-failure-action=pause\n"
		       "expect converged within 1m\n"
		       "service update web image=broken\n"
		       "run 1m\n"
		       "expect running web == 3\n"
		       "service update web update-failure-action=continue\n"
		       "expect running web == 0 within 2m\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_rollback_uses_its_own_config(void **state)
{
	/* SwarmKit's updater reads Spec.Rollback while rolling back: the two
	 * new tasks still running go back together (rollback-parallelism 2,
	 * no delay), where the update config (1 every 5 minutes) would take
	 * one, then wait */
	struct runner_result r = scnrun(
		"cluster managers=1 workers=3\n"
		"image good\n"
		"image bad exit=1 after=12m..14m\n"
		"service create web image=good replicas=5 update-parallelism=1 "
		"update-delay=5m update-failure-action=rollback update-monitor=20m "
		"rollback-parallelism=2 rollback-delay=0s "
		"rollback-failure-action=continue\n"
		"expect converged within 1m\n"
		"service update web image=bad\n"
		"expect store tasks web state=shutdown == 3 within 11m\n"
		"expect store tasks web state=failed == 1 within 5m\n"
		"expect store tasks web state=shutdown == 5 within 20s\n"
		"expect converged within 1m\n",
		5, NULL);
	assert_true(r.passed);
}

static void test_orch_update_watches_the_monitor_after_its_last_batch(void **state)
{
	/* SwarmKit's updater keeps watching one monitor period after its
	 * last batch: one batch of 2, both new tasks crash 3 s in (monitor
	 * 10 s): rolled back, so 2 failed tasks and no more; before, the
	 * update completed and the crash loop ran on (8 or 9 failed) */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "image good\n"
		       "image bad exit=1 after=3s\n"
		       "service create web image=good replicas=2 update-parallelism=2 "
		       "update-monitor=10s update-failure-action=rollback "
		       "restart-delay=1s\n"
		       "expect converged within 1m\n"
		       "service update web image=bad\n"
		       "expect store tasks web state=failed >= 1 within 30s\n"
		       "run 1m\n"
		       "expect store tasks web state=failed <= 2\n"
		       "expect running web == 2\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_update_delay_holds_each_of_parallel_updaters(void **state)
{
	/* SwarmKit's updater: parallelism 2 is two workers, each waiting the
	 * delay after its task runs; 6 tasks go two by two, 10 s apart.
	 * Before, a slot whose new task ran freed its place at once: all 6
	 * were replaced within 3 s */
	struct runner_result r =
		scnrun("cluster managers=1 workers=3\n"
		       "service create web replicas=6 image=v1 update-parallelism=2 "
		       "update-delay=10s\n"
		       "expect converged within 1m\n"
		       "service update web image=v2\n"
		       "always running web >= 4\n"
		       "run 8s\n"
		       "expect store tasks web state=shutdown == 2\n"
		       "expect store tasks web state=shutdown == 4 within 8s\n"
		       "run 5s\n"
		       "expect store tasks web state=shutdown == 4\n"
		       "expect store tasks web state=shutdown == 6 within 10s\n"
		       "expect converged within 30s\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_global_update_delay_holds_each_of_parallel_updaters(void **state)
{
	/* the same for a global service's nodes */
	struct runner_result r =
		scnrun("cluster managers=1 workers=4\n"
		       "service create web mode=global image=v1 update-parallelism=2 "
		       "update-delay=10s\n"
		       "expect converged within 1m\n"
		       "service update web image=v2\n"
		       "run 8s\n"
		       "expect store tasks web state=shutdown == 2\n"
		       "expect store tasks web state=shutdown == 4 within 8s\n"
		       "expect converged within 1m\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_force_replaces_every_task(void **state)
{
	/* SwarmKit's ForceUpdate: a rolling update with no other change */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "service create web replicas=3\n"
		       "expect converged within 30s\n"
		       "service update web force\n"
		       "always running web >= 2\n"
		       "expect store tasks web state=shutdown == 3 within 1m\n"
		       "expect converged within 1m\n"
		       "run 10s\n"
		       "expect store tasks web state=shutdown == 3\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_tasks_of_a_node_down_for_the_orphan_delay_are_orphaned(void **state)
{
	/* SwarmKit's node down period (24 h, here 1 minute): the dead node's
	 * task turns ORPHANED once, not before the delay */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "set orphan-delay=1m\n"
		       "service create web replicas=2 "
		       "constraint=node.role==worker max-per-node=1\n"
		       "expect converged within 30s\n"
		       "kill w1\n"
		       "expect node w1 down within 1m\n"
		       "run 30s\n"
		       "expect store tasks web state=orphaned == 0\n"
		       "expect store tasks web state=running == 2\n"
		       "expect store tasks web state=orphaned == 1 within 1m\n"
		       "expect store tasks web state=running == 1\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_removed_service_tasks_still_counted(void **state)
{
	/* `store tasks NAME` after `service rm NAME`: the task on the worker
	 * cut off is still RUNNING in the store until its node is down */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "service create web replicas=2 "
		       "constraint=node.role==worker max-per-node=1\n"
		       "expect converged within 30s\n"
		       "isolate w1\n"
		       "service rm web\n"
		       "expect store tasks web state=running == 1 within 10s\n"
		       "expect node w1 down within 1m\n"
		       "expect store tasks web state=running == 0 within 30s\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_scale_down_and_remove(void **state)
{
	struct runner_result r =
		scnrun("cluster managers=1 workers=1\n"
		       "service create web replicas=5\n"
		       "expect converged within 1m\n"
		       "service update web replicas=1\n"
		       "expect running web == 1 within 30s\n"
		       "expect store tasks web state=running == 1 within 10s\n"
		       "service rm web\n"
		       "expect running web == 0 within 30s\n"
		       "expect store tasks web state=shutdown == 0 within 30s\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_never_two_tasks_in_a_slot_on_stop_first_update(void **state)
{
	/* invariant 3 (one running task per slot) is checked after every
	 * event; a slow stop makes an overlap likely if it were allowed */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "image v1\n"
		       "image v2 start=2s..3s\n"
		       "service create web image=v1 replicas=4 update-parallelism=2\n"
		       "expect converged within 1m\n"
		       "service update web image=v2\n"
		       "expect converged within 2m\n"
		       "expect store tasks web state=shutdown >= 4\n",
		       5, NULL);
	assert_true(r.passed);
}

static void test_orch_restart_attempts_count_per_spec_version(void **state)
{
	/* SwarmKit's restart supervisor keeps a slot's (a global service's
	 * node's) restart history per spec version: an update starts it
	 * over. restart-max 2: 1 task + 2 restarts of each image: the new
	 * image runs 3 times (before, the old image's 3 failures used up the
	 * new image's attempts and only its first task ran); the slot keeps
	 * restart-max + 1 = 3 tasks (SwarmKit's reaper). */
	struct runner_result r =
		scnrun("set history=10\n"
		       "cluster managers=1\n"
		       "image crashy exit=1 after=1s\n"
		       "image crashy2 exit=2 after=1s\n"
		       "service create web image=crashy restart-delay=1s "
		       "restart-max=2 restart=on-failure\n"
		       "run 1m\n"
		       "expect store tasks web state=failed == 3\n"
		       "service update web image=crashy2\n"
		       "expect running web == 1 within 10s\n"
		       "expect running web == 0 within 5s\n"
		       "expect running web == 1 within 5s\n"
		       "expect running web == 0 within 5s\n"
		       "expect running web == 1 within 5s\n"
		       "run 1m\n"
		       "expect running web == 0\n"
		       "expect store tasks web state=failed == 3\n"
		       "expect converged\n",
		       5, NULL);
	/* global: restart-max 1 on two nodes (the manager and w1): each
	 * image runs twice on each; each node keeps 2 tasks */
	struct runner_result g =
		scnrun("set history=10\n"
		       "cluster managers=1 workers=1\n"
		       "image crashy exit=3 after=1s\n"
		       "image crashy2 exit=4 after=1s\n"
		       "service create g mode=global image=crashy "
		       "restart=on-failure restart-max=1 restart-delay=1s\n"
		       "run 30s\n"
		       "expect store tasks g state=failed == 4\n"
		       "service update g image=crashy2\n"
		       "expect running g == 2 within 10s\n"
		       "expect running g == 0 within 5s\n"
		       "expect running g == 2 within 5s\n"
		       "run 1m\n"
		       "expect running g == 0\n"
		       "expect store tasks g state=failed == 4\n",
		       5, NULL);
	assert_true(r.passed);
	assert_true(g.passed);
}

static void test_orch_update_failure_ratio_over_slots_in_update(void **state)
{
	/* SwarmKit's updater: failures / len(dirtySlots) > max ratio. Four
	 * slots, ratio 0.5, every new task fails at once: 1/4 and 2/4 are
	 * within it, 3/4 is over: three slots tried, one keeps v1. Over the
	 * live tasks (2/2 > 0.5) it paused after two. */
	struct runner_result r =
		scnrun("cluster managers=1 workers=2\n"
		       "image v1\n"
		       "image early exit=1 after=1s\n"
		       "service create web image=v1 replicas=4 restart=none "
		       "update-parallelism=1 update-delay=2s update-monitor=10s "
		       "update-failure-action=pause update-max-failure-ratio=0.5\n"
		       "expect converged within 1m\n"
		       "service update web image=early\n"
		       "run 2m\n"
		       "expect running web == 1\n"
		       "expect store tasks web state=failed == 3\n",
		       5, NULL);
	/* global, one task per node on 4 nodes, ratio 0.3: 1/4 goes on,
	 * 2/4 pauses (over the live tasks, 1/3 paused at once) */
	struct runner_result g =
		scnrun("cluster managers=1 workers=3\n"
		       "image v1\n"
		       "image early exit=1 after=1s\n"
		       "service create g mode=global image=v1 restart=none "
		       "update-parallelism=1 update-delay=2s update-monitor=10s "
		       "update-failure-action=pause update-max-failure-ratio=0.3\n"
		       "expect converged within 1m\n"
		       "service update g image=early\n"
		       "run 2m\n"
		       "expect running g == 2\n"
		       "expect store tasks g state=failed == 2\n",
		       5, NULL);
	assert_true(r.passed);
	assert_true(g.passed);
}

/* The leader's scrape at the end of a run (issue 20). */
struct scrape_end {
	char *text;
};

static void scrape_observe(void *ctx, const struct runner_view *v)
{
	struct scrape_end *se = ctx;
	int64_t l;
	struct metrics_buf out = {0};

	if (!v->final)
		return;
	l = simcluster_leader(v->cluster);
	assert_true(l >= 0);
	manager_metrics(simcluster_manager(v->cluster, (uint32_t)l), &out);
	assert_false(out.failed);
	se->text = out.text;
}

/* Runs text (seed 5), which must pass, and returns the leader's metrics
 * scrape at its end (the caller frees it). */
static char *metrics_after_run(const char *text)
{
	struct runner_opts o = {0};
	struct scrape_end se = {0};

	o.observe = scrape_observe;
	o.observe_ctx = &se;
	assert_true(scnrun(text, 5, &o).passed);
	assert_non_null(se.text);
	return se.text;
}

/* The value of the sample line starting with key, or -1. */
static double sample_of(const char *text, const char *key)
{
	char want[160];
	const char *p;

	snprintf(want, sizeof want, "\n%s ", key);
	p = strstr(text, want);
	return p ? strtod(p + strlen(want), NULL) : -1;
}

/* Issue 20's orchestrator metrics: the restarts of a crashing service are
 * counted; a service mid-update shows its tasks on the new spec of those
 * meant to run; one not updating shows none. */
static void test_orch_metrics_restarts_and_update_progress(void **state)
{
	static const char text[] =
		"cluster managers=1 workers=2\n"
		"image crashy exit=1 after=1s\n"
		"service create c image=crashy restart-delay=1s\n"
		"service create web replicas=4 update-parallelism=1 update-delay=10s\n"
		"service create idle replicas=1\n"
		"run 15s\n"
		"service update web image=img2\n"
		"run 12s\n";
	char *metrics;
	double updated, total;
	(void)state;

	metrics = metrics_after_run(text);
	assert_true(sample_of(metrics, "cswarm_orchestrator_restarts_total") >= 3);
	updated = sample_of(
		metrics,
		"cswarm_orchestrator_update_tasks{service=\"web\",kind=\"updated\"}");
	total = sample_of(
		metrics,
		"cswarm_orchestrator_update_tasks{service=\"web\",kind=\"total\"}");
	print_message("restarts %g, web updated %g of %g\n",
		      sample_of(metrics, "cswarm_orchestrator_restarts_total"), updated,
		      total);
	assert_true(total >= 4);
	assert_true(updated >= 1);
	assert_true(updated < total);
	assert_null(strstr(metrics, "service=\"idle\""));
	free(metrics);
}

/* A replicated service whose tasks only move along (placed, then
 * ASSIGNED to RUNNING) is skipped by the passes those moves call for
 * (quiet); a node's death makes it looked at again, and its tasks there
 * are replaced as before. */
static void test_orch_quiet_service_skipped_until_a_change_matters(void **state)
{
	static const char text[] = "cluster managers=1 workers=3\n"
				   "service create web replicas=30\n"
				   "expect running web == 30 within 1m\n"
				   "expect converged within 30s\n"
				   "kill w1\n"
				   "expect running web == 30 within 1m\n"
				   "expect running web on w1 == 0\n"
				   "expect converged within 1m\n";
	char *metrics;
	double full, quiet;
	(void)state;

	metrics = metrics_after_run(text);
	full = sample_of(metrics,
			 "cswarm_orchestrator_service_looks_total{look=\"full\"}");
	quiet = sample_of(metrics,
			  "cswarm_orchestrator_service_looks_total{look=\"quiet\"}");
	print_message("looks: %g full, %g quiet\n", full, quiet);
	assert_true(full >= 2); /* the first look, and after the node died */
	assert_true(quiet >= 1);
	free(metrics);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orch_metrics_restarts_and_update_progress),
		cmocka_unit_test(test_orch_quiet_service_skipped_until_a_change_matters),
		cmocka_unit_test(test_orch_restart_delay_holds_for_a_crash),
		cmocka_unit_test(test_orch_dead_node_tasks_replaced_without_delay),
		cmocka_unit_test(test_orch_max_attempts_stop_a_crash_loop),
		cmocka_unit_test(test_orch_on_failure_does_not_restart_a_clean_exit),
		cmocka_unit_test(test_orch_restart_none_still_reconciles_stopped_slots),
		cmocka_unit_test(
			test_orch_late_stop_report_of_a_replaced_task_decides_nothing),
		cmocka_unit_test(test_orch_global_service_keeps_its_restart_policy),
		cmocka_unit_test(
			test_orch_converged_does_not_wait_for_a_policy_that_gave_up),
		cmocka_unit_test(test_orch_reaper_keeps_history_per_slot),
		cmocka_unit_test(test_orch_max_attempts_keep_exactly_attempts_plus_one),
		cmocka_unit_test(test_orch_placement_only_change_keeps_qualifying_tasks),
		cmocka_unit_test(test_orch_any_update_resumes_a_paused_update),
		cmocka_unit_test(test_orch_rollback_uses_its_own_config),
		cmocka_unit_test(
			test_orch_update_watches_the_monitor_after_its_last_batch),
		cmocka_unit_test(test_orch_update_delay_holds_each_of_parallel_updaters),
		cmocka_unit_test(
			test_orch_global_update_delay_holds_each_of_parallel_updaters),
		cmocka_unit_test(test_orch_force_replaces_every_task),
		cmocka_unit_test(
			test_orch_tasks_of_a_node_down_for_the_orphan_delay_are_orphaned),
		cmocka_unit_test(test_orch_removed_service_tasks_still_counted),
		cmocka_unit_test(test_orch_scale_down_and_remove),
		cmocka_unit_test(
			test_orch_never_two_tasks_in_a_slot_on_stop_first_update),
		cmocka_unit_test(test_orch_restart_attempts_count_per_spec_version),
		cmocka_unit_test(test_orch_update_failure_ratio_over_slots_in_update),
	};
	return cmocka_run_group_tests_name("orchestrator", tests, NULL, NULL);
}
