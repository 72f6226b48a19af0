/* Tests of the jobs orchestrator (core/jobs.c): what a job's progress reads
 * from a store (only the current iteration counts; a failed task waiting for
 * its restart holds its place; max attempts give up), the control API's rules
 * for jobs, and, through the simulator's real parts, SwarmKit's jobs tests
 * (manager/orchestrator/jobs: restart none makes one task, max attempts 3
 * make 4, total completions bound the tasks whatever max concurrent says,
 * an update reruns the job) and the restart delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"
#include "core/errors.h"
#include "core/jobs.h"
#include "core/store.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "tests/support/scnrun.h"

/* ---------------------------------------------------------------- a store */

static uint64_t next_index = 1;

static void apply(struct store *s, struct store_batch *b)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_batch_encode(b, 0, 0, &buf, &len), 0);
	assert_int_equal(store_apply(s, buf, len, next_index++, NULL, NULL), 0);
	free(buf);
	store_batch_free(b);
	store_batch_init(b);
}

struct fixture {
	struct store *st;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__RestartPolicy restart;
	Cs__Service svc;
	Cs__JobStatus js;
};

/* A replicated job of `total` completions, max concurrent `max`, in a new
 * store, at iteration `iteration`. */
static void fixture_init(struct fixture *f, uint64_t total, uint64_t max,
			 uint64_t iteration)
{
	struct store_batch b;

	memset(f, 0, sizeof *f);
	cs__service_spec__init(&f->spec);
	cs__task_spec__init(&f->task);
	cs__restart_policy__init(&f->restart);
	cs__service__init(&f->svc);
	cs__job_status__init(&f->js);
	f->spec.name = "j";
	f->spec.job = true;
	f->spec.replicas = total;
	f->spec.max_concurrent = max;
	f->spec.task = &f->task;
	f->task.restart = &f->restart;
	f->restart.condition = CS__RESTART_POLICY__CONDITION__CONDITION_ON_FAILURE;
	f->svc.id = 7;
	f->svc.spec = &f->spec;
	f->svc.spec_version = 1;
	f->js.job_iteration = iteration;
	f->svc.job_status = &f->js;
	f->st = store_new();
	assert_non_null(f->st);
	store_batch_init(&b);
	assert_int_equal(
		store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &f->svc), 0);
	apply(f->st, &b);
}

/* Adds a task of the job in slot, of iteration, desired and observed. */
static void add_task(struct fixture *f, uint64_t id, uint64_t slot, uint64_t iteration,
		     Cs__TaskState desired, Cs__TaskState state, uint64_t at_ms)
{
	struct store_batch b;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;

	t.id = id;
	t.service_id = f->svc.id;
	t.slot = slot;
	t.desired_state = desired;
	t.spec_version = 1;
	t.job_iteration = iteration;
	st.state = state;
	st.timestamp_ms = at_ms;
	st.exit_code = state == CS__TASK_STATE__TASK_STATE_FAILED ? 3 : 0;
	t.status = &st;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	apply(f->st, &b);
}

static const Cs__Service *job(const struct fixture *f)
{
	return store_service_get(f->st, f->svc.id);
}

#define RUNNING	 CS__TASK_STATE__TASK_STATE_RUNNING
#define COMPLETE CS__TASK_STATE__TASK_STATE_COMPLETE
#define SHUTDOWN CS__TASK_STATE__TASK_STATE_SHUTDOWN
#define FAILED	 CS__TASK_STATE__TASK_STATE_FAILED
#define REMOVE	 CS__TASK_STATE__TASK_STATE_REMOVE

static void test_jobs_max_concurrent_defaults_to_total_completions(void **state)
{
	struct fixture f;
	(void)state;
	fixture_init(&f, 5, 0, 0);
	assert_int_equal(jobs_max_concurrent(job(&f)), 5);
	store_free(f.st);
	fixture_init(&f, 5, 2, 0);
	assert_int_equal(jobs_max_concurrent(job(&f)), 2);
	store_free(f.st);
	/* never more than the completions (SwarmKit: TotalCompletions is
	 * also the most that run at once) */
	fixture_init(&f, 3, 10, 0);
	assert_int_equal(jobs_max_concurrent(job(&f)), 3);
	store_free(f.st);
}

static void test_jobs_progress_counts_only_the_current_iteration(void **state)
{
	struct fixture f;
	struct jobs_progress p;
	(void)state;

	fixture_init(&f, 3, 0, 1);
	/* iteration 0 completed in full; iteration 1 has one done, one running */
	add_task(&f, 11, 1, 0, COMPLETE, COMPLETE, 100);
	add_task(&f, 13, 2, 0, COMPLETE, COMPLETE, 100);
	add_task(&f, 15, 3, 0, COMPLETE, COMPLETE, 100);
	add_task(&f, 21, 1, 1, COMPLETE, COMPLETE, 200);
	add_task(&f, 23, 2, 1, RUNNING, RUNNING, 200);
	jobs_progress(f.st, job(&f), &p);
	assert_int_equal(p.iteration, 1);
	assert_int_equal(p.desired, 3);
	assert_int_equal(p.completed, 1);
	assert_int_equal(p.running, 1);
	assert_int_equal(p.gave_up, 0);
	assert_false(jobs_completed(f.st, job(&f)));
	assert_false(jobs_settled(f.st, job(&f)));
	store_free(f.st);
}

static void test_jobs_completed_once_every_slot_has_a_complete_task(void **state)
{
	struct fixture f;
	(void)state;

	fixture_init(&f, 2, 1, 0);
	add_task(&f, 11, 1, 0, COMPLETE, COMPLETE, 100);
	/* a failure before the completion of slot 2 is history */
	add_task(&f, 13, 2, 0, SHUTDOWN, FAILED, 100);
	assert_false(jobs_completed(f.st, job(&f)));
	add_task(&f, 15, 2, 0, COMPLETE, COMPLETE, 300);
	assert_true(jobs_completed(f.st, job(&f)));
	assert_true(jobs_settled(f.st, job(&f)));
	store_free(f.st);
}

static void test_jobs_failed_task_waiting_for_restart_holds_its_place(void **state)
{
	struct fixture f;
	struct jobs_progress p;
	(void)state;

	/* on-failure, no max attempts: the failed slot will be restarted, so
	 * it counts towards max concurrent (SwarmKit's reconciler counts a
	 * failed task of the iteration as running) */
	fixture_init(&f, 4, 2, 0);
	add_task(&f, 11, 1, 0, SHUTDOWN, FAILED, 100);
	jobs_progress(f.st, job(&f), &p);
	assert_int_equal(p.running, 1);
	assert_int_equal(p.gave_up, 0);
	assert_int_equal(p.completed, 0);
	store_free(f.st);
}

static void test_jobs_max_attempts_give_up_a_place(void **state)
{
	struct fixture f;
	struct jobs_progress p;
	(void)state;

	fixture_init(&f, 1, 0, 0);
	f.restart.max_attempts = 1;
	{
		/* the policy lives in the stored spec: store it again */
		struct store_batch b;
		const Cs__Service *cur = job(&f);
		Cs__Service copy = *cur;
		copy.spec = &f.spec;
		store_batch_init(&b);
		assert_int_equal(store_batch_service(
					 &b, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy),
				 0);
		apply(f.st, &b);
	}
	add_task(&f, 11, 1, 0, SHUTDOWN, FAILED, 100);
	jobs_progress(f.st, job(&f), &p);
	assert_int_equal(p.gave_up, 0); /* one restart left */
	add_task(&f, 13, 1, 0, SHUTDOWN, FAILED, 200);
	jobs_progress(f.st, job(&f), &p);
	assert_int_equal(p.gave_up, 1);
	assert_int_equal(p.running, 0);
	assert_false(jobs_completed(f.st, job(&f)));
	assert_true(jobs_settled(f.st, job(&f))); /* converged does not wait */
	store_free(f.st);
}

static void test_jobs_earlier_run_still_stopping_is_not_settled(void **state)
{
	struct fixture f;
	(void)state;

	fixture_init(&f, 1, 0, 1);
	add_task(&f, 21, 1, 1, COMPLETE, COMPLETE, 300);
	/* iteration 0's task told to go, not yet seen stopped */
	add_task(&f, 11, 2, 0, REMOVE, RUNNING, 100);
	assert_true(jobs_completed(f.st, job(&f)));
	assert_false(jobs_settled(f.st, job(&f)));
	store_free(f.st);
}

/* ---------------------------------------------------------------- the control API */

static void test_jobs_control_rules(void **state)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__UpdateConfig up = CS__UPDATE_CONFIG__INIT;
	char err[256];
	(void)state;

	spec.name = "j";
	spec.job = true;
	spec.replicas = 3;
	spec.max_concurrent = 2;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
	/* SwarmKit: "Jobs may not have an update config" */
	spec.update = &up;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "update"));
	spec.update = NULL;
	/* a global job has no max concurrent, nor replicas */
	spec.global = true;
	spec.replicas = 0;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "max-concurrent"));
	spec.max_concurrent = 0;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
	/* a service has no max concurrent */
	spec.job = false;
	spec.global = false;
	spec.max_concurrent = 1;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
}

/* ---------------------------------------------------------------- the scenario forms */

static void test_jobs_scenario_forms(void **state)
{
	const char *text =
		"cluster managers=1\n"
		"service create j mode=replicated-job replicas=5 max-concurrent=2\n"
		"service create g mode=global-job\n"
		"expect service j completed within 1m\n";
	const char *bad = "cluster managers=1\n"
			  "service create g mode=global-job replicas=2\n";
	struct scn_script s;
	char err[512];
	(void)state;

	assert_int_equal(scn_parse("t.scn", text, strlen(text), &s, err, sizeof err), 0);
	assert_int_equal(s.cmd_count, 4);
	assert_int_equal(s.cmds[1].u.service.mode, SCN_MODE_REPLICATED_JOB);
	assert_int_equal(s.cmds[1].u.service.replicas, 5);
	assert_int_equal(s.cmds[1].u.service.max_concurrent, 2);
	assert_true(s.cmds[1].u.service.set & SCN_SVC_MAX_CONCURRENT);
	assert_int_equal(s.cmds[2].u.service.mode, SCN_MODE_GLOBAL_JOB);
	assert_int_equal(s.cmds[2].u.service.replicas, 0);
	assert_int_equal(s.cmds[3].u.expect.cond.kind, SCN_COND_JOB_COMPLETED);
	assert_string_equal(s.cmds[3].u.expect.cond.service, "j");
	scn_free(&s);
	assert_int_not_equal(scn_parse("t.scn", bad, strlen(bad), &s, err, sizeof err),
			     0);
	assert_non_null(strstr(err, "replicas= cannot be used with mode=global"));
}

/* ---------------------------------------------------------------- through the simulator */

static void test_jobs_restart_none_makes_one_task(void **state)
{
	/* SwarmKit: "should not restart tasks if the Condition is
	 * RestartOnNone" */
	struct runner_result r = scnrun("cluster managers=1\n"
					"image bad exit=1 after=1s\n"
					"service create j mode=replicated-job image=bad "
					"restart=none restart-delay=100ms\n"
					"run 30s\n"
					"expect store tasks j state=failed == 1\n"
					"expect running j == 0\n"
					"expect converged\n",
					5, NULL);
	(void)state;
	assert_true(r.passed);
}

static void test_jobs_max_attempts_3_make_4_tasks(void **state)
{
	/* SwarmKit: "should only restart tasks MaxAttempt times" */
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image bad exit=1 after=1s\n"
		       "service create j mode=replicated-job image=bad "
		       "restart=on-failure restart-max=3 restart-delay=100ms\n"
		       "run 1m\n"
		       "expect store tasks j state=failed == 4\n"
		       "expect running j == 0\n",
		       5, NULL);
	(void)state;
	assert_true(r.passed);
}

static void test_jobs_total_completions_bound_max_concurrent(void **state)
{
	/* max concurrent above the completions: only as many run, and no
	 * more tasks than completions are made */
	struct runner_result r = scnrun("cluster managers=1 workers=3\n"
					"image batch exit=0 after=5s\n"
					"service create j mode=replicated-job replicas=3 "
					"max-concurrent=10 image=batch\n"
					"always running j <= 3\n"
					"expect running j == 3 within 30s\n"
					"expect service j completed within 30s\n"
					"run 30s\n"
					"expect store tasks j state=complete == 3\n"
					"expect store tasks j state=running == 0\n",
					5, NULL);
	(void)state;
	assert_true(r.passed);
}

static void test_jobs_restart_delay_holds(void **state)
{
	/* fails after 1 s, restarted only 10 s later */
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image bad exit=1 after=1s\n"
		       "service create j mode=replicated-job image=bad "
		       "restart-delay=10s restart-max=1\n"
		       "expect store tasks j state=failed == 1 within 30s\n"
		       "run 7s\n"
		       "expect running j == 0\n"
		       "expect store tasks j state=failed == 1\n"
		       "expect store tasks j state=failed == 2 within 10s\n",
		       5, NULL);
	(void)state;
	assert_true(r.passed);
}

static void test_jobs_short_restart_delay_is_not_rounded_up(void **state)
{
	/* a 300 ms delay restarts within 600 ms of virtual time (a restart
	 * looked at once a second started it up to 1 s late) */
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image bad exit=1 after=5s start=100ms\n"
		       "service create j mode=replicated-job image=bad "
		       "restart-delay=300ms restart-max=1\n"
		       "expect store tasks j state=failed == 1 within 30s\n"
		       "run 200ms\n"
		       "expect running j == 0\n"
		       "expect running j == 1 within 600ms\n",
		       5, NULL);
	(void)state;
	assert_true(r.passed);
}

static void test_jobs_update_reruns_and_mode_is_fixed(void **state)
{
	struct runner_result r =
		scnrun("cluster managers=1\n"
		       "image batch exit=0 after=1s\n"
		       "service create j mode=replicated-job replicas=2 image=batch\n"
		       "expect service j completed within 30s\n"
		       "service update j restart-delay=1s\n"
		       "expect store tasks j state=complete == 0 within 10s\n"
		       "expect service j completed within 30s\n"
		       "expect store tasks j state=complete == 2\n",
		       5, NULL);
	struct runner_result mode = scnrun("cluster managers=1\n"
					   "service create j mode=replicated-job\n"
					   "service update j mode=replicated\n",
					   5, NULL);
	(void)state;
	assert_true(r.passed);
	assert_false(mode.passed);
	assert_non_null(strstr(mode.message, "mode"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_max_concurrent_defaults_to_total_completions),
		cmocka_unit_test(test_jobs_progress_counts_only_the_current_iteration),
		cmocka_unit_test(test_jobs_completed_once_every_slot_has_a_complete_task),
		cmocka_unit_test(
			test_jobs_failed_task_waiting_for_restart_holds_its_place),
		cmocka_unit_test(test_jobs_max_attempts_give_up_a_place),
		cmocka_unit_test(test_jobs_earlier_run_still_stopping_is_not_settled),
		cmocka_unit_test(test_jobs_control_rules),
		cmocka_unit_test(test_jobs_scenario_forms),
		cmocka_unit_test(test_jobs_restart_none_makes_one_task),
		cmocka_unit_test(test_jobs_max_attempts_3_make_4_tasks),
		cmocka_unit_test(test_jobs_total_completions_bound_max_concurrent),
		cmocka_unit_test(test_jobs_restart_delay_holds),
		cmocka_unit_test(test_jobs_short_restart_delay_is_not_rounded_up),
		cmocka_unit_test(test_jobs_update_reruns_and_mode_is_fixed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
