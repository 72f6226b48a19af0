/* Tests of the scenario runner: results, failures that name what is missing,
 * determinism (same seed same hash, other seed other hash, the divergence
 * finder), and that a run starts no thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "sim/runner.h"
#include "sim/sanitize.h"
#include "sim/scenario.h"
#include "tests/support/pingprog.h"

#if defined(CS_ASAN)
#include <sanitizer/lsan_interface.h>
#endif

static const char *const ping_peers[] = {"m1", "m2", "m3", "w1", "w2", "w3"};
static const struct pingprog_cfg ping_cfg = {ping_peers, 6, 50, true};

static const char storm[] = "cluster managers=3 workers=3\n"
			    "run 2s\n"
			    "partition m1 | *\n"
			    "link m2 w1 loss=30% delay=1ms..40ms dup=5% reorder=20%\n"
			    "run 3s\n"
			    "kill m2\n"
			    "kill w3 process\n"
			    "run 1s\n"
			    "heal\n"
			    "restart m2\n"
			    "restart w3\n"
			    "isolate w2\n"
			    "run 5s\n"
			    "heal\n"
			    "run 10s\n";

static void parse(const char *text, struct scn_script *s)
{
	char err[512];
	int rv = scn_parse("t.scn", text, strlen(text), s, err, sizeof err);
	if (rv)
		fail_msg("parse failed: %s", err);
}

static struct runner_result run_text(const char *text, uint64_t seed, bool ping,
				     bool record)
{
	struct scn_script s;
	struct runner_opts o = {.record = record};
	struct runner_result res;

	if (ping) {
		o.manager_prog = o.worker_prog = &pingprog_ops;
		o.manager_cfg = o.worker_cfg = &ping_cfg;
	}
	parse(text, &s);
	assert_int_equal(runner_run(&s, seed, &o, &res), 0);
	scn_free(&s);
	return res;
}

/* exit_after (swarmsim's last run): the world is left to the process's
 * end, and the run's outcome is the same to the event. (Under ASan the
 * world left is kept out of the leak check: that is what the caller's
 * exit does.) */
static void test_runner_exit_after_gives_the_same_run(void **state)
{
	static const char text[] = "cluster managers=3 workers=3\n"
				   "service create web replicas=6\n"
				   "expect converged within 1m\n"
				   "kill leader\n"
				   "expect running web == 6 within 1m\n";
	struct runner_opts o = {.record = true};
	struct runner_result a, b;
	struct scn_script s;

	parse(text, &s);
	assert_int_equal(runner_run(&s, 7, &o, &a), 0);
	o.exit_after = true;
#if defined(CS_ASAN)
	__lsan_disable();
#endif
	assert_int_equal(runner_run(&s, 7, &o, &b), 0);
#if defined(CS_ASAN)
	__lsan_enable();
#endif
	assert_true(a.passed);
	assert_true(b.passed);
	assert_int_equal(a.hash, b.hash);
	assert_int_equal(a.events, b.events);
	assert_int_equal(a.sim_us, b.sim_us);
	assert_int_equal(runner_diverge(&a, &b), -1);
	runner_result_free(&a);
	runner_result_free(&b);
	scn_free(&s);
}

static void test_runner_passes_fault_story_and_reports_time(void **state)
{
	struct runner_result r = run_text(storm, 1, true, false);
	assert_true(r.passed);
	assert_int_equal(r.fail_line, 0);
	assert_int_equal(r.sim_us, 21u * 1000 * 1000);
	assert_true(r.events > 1000);
	assert_int_equal(r.seed, 1);
}

static void test_runner_settings_right_after_cluster_are_from_the_start(void **state)
{
	/* `set heartbeat=1s` right after `cluster` (which comes first): a
	 * dead worker is down within a few 1 s periods; before, only Raft's
	 * timing reached the managers and it took 3 x 5 s */
	struct runner_result r = run_text("cluster managers=1 workers=1\n"
					  "set heartbeat=1s\n"
					  "expect nodes ready == 2 within 30s\n"
					  "kill w1\n"
					  "expect node w1 down within 6s\n",
					  3, false, false);
	assert_true(r.passed);
}

static void test_runner_same_seed_same_hash_other_seed_other_hash(void **state)
{
	struct runner_result a = run_text(storm, 5, true, true);
	struct runner_result b = run_text(storm, 5, true, true);
	struct runner_result c = run_text(storm, 6, true, true);

	assert_int_equal(a.hash, b.hash);
	assert_int_equal(a.events, b.events);
	assert_int_equal(runner_diverge(&a, &b), -1);
	assert_int_not_equal(a.hash, c.hash);
	assert_true(runner_diverge(&a, &c) >= 0);
	runner_result_free(&a);
	runner_result_free(&b);
	runner_result_free(&c);
}

static void test_runner_diverge_names_first_differing_event(void **state)
{
	struct runner_result a = run_text(storm, 5, true, true);
	struct runner_result b = run_text(storm, 5, true, true);

	assert_true(a.rec_count > 100);
	b.recs[77].hash ^= 1; /* as if event 77 differed */
	assert_int_equal(runner_diverge(&a, &b), 77);
	b.rec_count = 50; /* a prefix */
	assert_int_equal(runner_diverge(&a, &b), 50);
	runner_result_free(&a);
	runner_result_free(&b);
}

static void test_runner_seed_flag_wins_over_file(void **state)
{
	struct scn_script s;
	parse("seed 9\ncluster managers=1\n", &s);
	assert_int_equal(runner_seed(&s, false, 0), 9);
	assert_int_equal(runner_seed(&s, true, 4), 4);
	scn_free(&s);
	parse("cluster managers=1\n", &s);
	assert_int_equal(runner_seed(&s, false, 0), 1);
	scn_free(&s);
}

static void test_runner_names_the_part_not_built(void **state)
{
	struct runner_result r = run_text(
		"cluster managers=1\nrun 1s\nservice create web replicas=3\nrun 1s\n", 1,
		true, false);
	assert_false(r.passed);
	assert_int_equal(r.fail_line, 3);
	assert_string_equal(r.message,
			    "line 3: service create web replicas=3: not built yet: "
			    "services need the control API and orchestrators");
	assert_int_equal(r.sim_us, 1000000); /* stopped there */

	/* with test programs in place of managers, leaders do not exist */
	r = run_text("cluster managers=3\nexpect leader within 10s\n", 1, true, false);
	assert_false(r.passed);
	assert_string_equal(r.message, "line 2: expect leader within 10s: not built yet: "
				       "leader conditions need the Raft managers");

	r = run_text("cluster managers=3\nkill leader\n", 1, true, false);
	assert_false(r.passed);
	assert_string_equal(r.message, "line 2: kill leader: not built yet: "
				       "`leader` needs the Raft managers");
}

static void test_runner_fails_on_impossible_node_commands(void **state)
{
	struct runner_result r = run_text(
		"cluster managers=1 workers=1\nkill w1 process\nkill w1 process\n", 1,
		false, false);
	assert_false(r.passed);
	assert_string_equal(r.message, "line 3: kill w1 process: w1 is already down");

	/* the machine of a node whose daemon died can still die (containers) */
	r = run_text("cluster managers=1 workers=1\nkill w1 process\nkill w1\n", 1, false,
		     false);
	assert_true(r.passed);

	/* restarting a running node leaves it alone */
	r = run_text("cluster managers=1 workers=1\nrestart w1\nkill w1\n", 1, false,
		     false);
	assert_true(r.passed);

	r = run_text("cluster managers=1\nnode add worker\nkill w1\nrestart w1\n", 1,
		     false, false);
	assert_true(r.passed);
}

/* await waits like expect and never fails: at most its duration when the
 * condition never holds, no longer than needed when it does. */
static void test_runner_await_waits_and_never_fails(void **state)
{
	struct runner_result r = run_text("cluster managers=1\n"
					  "await running web == 1 within 5s\n"
					  "await leader within 60s\n"
					  "expect leader\n",
					  1, false, false);
	assert_true(r.passed);
	/* 5 s for the first, then the leader came before 60 s more */
	assert_true(r.sim_us >= 5u * 1000 * 1000);
	assert_true(r.sim_us < 60u * 1000 * 1000);
}

static void test_runner_real_managers_elect_and_survive_leader_death(void **state)
{
	struct runner_result r = run_text("cluster managers=3\n"
					  "expect no leader\n"
					  "expect leader within 30s\n"
					  "kill leader\n"
					  "expect leader within 20s\n"
					  "partition m1 | m2 | m3\n"
					  "expect no leader within 30s\n"
					  "heal\n"
					  "expect leader within 30s\n",
					  4, false, false);
	assert_true(r.passed);

	r = run_text("cluster managers=3\nexpect leader within 30s\nexpect no leader\n",
		     4, false, false);
	assert_false(r.passed);
	assert_int_equal(r.fail_line, 3);
}

/* `leader` resolves when the line runs: named again in its own group it is
 * that node once (the author's side holds), in another group or as a
 * link's other node it fails the line (the cut the author meant cannot
 * be). Tried with each manager, whoever leads. */
static void test_runner_leader_named_twice_fails_the_line_or_merges(void **state)
{
	/* each form: the words before and after the manager's name */
	static const char *const forms[][2] = {{"partition leader | ", ""},
					       {"link leader ", ""},
					       {"link ", " -> leader"}};
	char text[256], want[256], line[64];
	unsigned refused;

	for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
		refused = 0;
		for (int k = 1; k <= 3; k++) {
			struct runner_result r;
			snprintf(line, sizeof line, "%sm%d%s", forms[f][0], k,
				 forms[f][1]);
			snprintf(text, sizeof text,
				 "cluster managers=3\nexpect leader within 30s\n%s\n"
				 "run 1s\n",
				 line);
			r = run_text(text, 4, false, false);
			if (r.passed)
				continue;
			refused++;
			if (f == 0)
				snprintf(want, sizeof want,
					 "line 3: %s: the leader is m%d, which another "
					 "group names: a node can be on one side only",
					 line, k);
			else
				snprintf(want, sizeof want,
					 "line 3: %s: the leader is m%d, the link's "
					 "other node: a link needs two different nodes",
					 line, k);
			assert_string_equal(r.message, want);
		}
		assert_int_equal(refused, 1); /* the one that leads */
	}
	/* in its own group: that node once, cut off with it */
	for (int k = 1; k <= 3; k++) {
		struct runner_result r;
		snprintf(text, sizeof text,
			 "cluster managers=3\nexpect leader within 30s\n"
			 "partition leader m%d | *\nexpect leader != m%d within 30s\n",
			 k, k);
		r = run_text(text, 4, false, false);
		assert_true(r.passed);
	}
	/* isolate takes one node: the leader, whoever it is */
	{
		struct runner_result r = run_text(
			"cluster managers=3\nexpect leader within 30s\nisolate leader\n"
			"run 1s\nexpect leader within 30s\n",
			4, false, false);
		assert_true(r.passed);
	}
}

/* The rule both backends call (runner_partition and realworld.c's
 * rw_partition / rw_link): a node put again in its own group stays there
 * once; put in another group, or a link whose two ends are one node, is
 * refused with the words the line fails with, and the first group kept. */
static void test_runner_partition_put_and_link_check_are_the_shared_rule(void **state)
{
	uint32_t group_of[4] = {0};
	char err[128] = "";

	(void)state;
	assert_int_equal(runner_partition_put(group_of, 4, 1, 1, "m2", err, sizeof err),
			 0);
	assert_int_equal(runner_partition_put(group_of, 4, 2, 1, "m3", err, sizeof err),
			 0);
	/* `partition leader m2 | *` with m2 leading: m2 once, in group 1 */
	assert_int_equal(runner_partition_put(group_of, 4, 1, 1, "m2", err, sizeof err),
			 0);
	assert_int_equal(group_of[1], 1);
	assert_string_equal(err, "");
	/* `partition m2 | leader` with m2 leading: refused, m2 stays put */
	assert_int_equal(runner_partition_put(group_of, 4, 1, 2, "m2", err, sizeof err),
			 CS_EINVAL);
	assert_string_equal(err, "the leader is m2, which another group names: a node "
				 "can be on one side only");
	assert_int_equal(group_of[1], 1);
	assert_int_equal(runner_partition_put(group_of, 4, 0, 2, "m1", err, sizeof err),
			 0);
	assert_int_equal(group_of[0], 2);

	err[0] = '\0';
	assert_int_equal(runner_link_check(0, 1, "m1", err, sizeof err), 0);
	assert_string_equal(err, "");
	assert_int_equal(runner_link_check(2, 2, "m3", err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "the leader is m3, the link's other node: a link needs "
				 "two different nodes");
}

/* A start the node refuses (its Raft term and vote corrupt) fails
 * `restart NODE` with the node's reason, and is what `restart NODE
 * refused` requires; a start that works fails the latter. */
static void test_runner_restart_refused_says_why(void **state)
{
	static const char story[] =
		"cluster managers=3 workers=1\n"
		"expect leader within 30s\n"
		"expect nodes ready == 4 within 1m\n"
		"kill m3 process\n"
		"disk m3 fault=corrupt file=raft table=raft_meta pages=16\n";
	char text[512];
	struct runner_result r;

	snprintf(text, sizeof text, "%srestart m3\n", story);
	r = run_text(text, 6, false, false);
	assert_false(r.passed);
	assert_int_equal(r.fail_line, 6);
	assert_non_null(strstr(r.message, "line 6: restart m3: m3 failed to start: "));
	assert_non_null(strstr(r.message, "this manager refuses to start; remove it "
					  "from the cluster and join it again with an "
					  "empty state"));
	snprintf(text, sizeof text,
		 "%srestart m3 refused\nexpect node m3 down within 1m\n"
		 "expect leader\n",
		 story);
	r = run_text(text, 6, false, false);
	assert_true(r.passed);
	r = run_text("cluster managers=3\nexpect leader within 30s\nkill m3 process\n"
		     "restart m3 refused\n",
		     6, false, false);
	assert_false(r.passed);
	assert_string_equal(r.message, "line 4: restart m3 refused: m3 started: its "
				       "start was to be refused");
	r = run_text("cluster managers=3\nrestart m3 refused\n", 6, false, false);
	assert_false(r.passed);
	assert_string_equal(r.message,
			    "line 2: restart m3 refused: m3 is running: a refused start "
			    "needs it stopped (kill m3 process)");
}

static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void test_runner_starts_no_thread(void **state)
{
	int before = thread_count();
	struct runner_result r = run_text(storm, 3, true, false);
	assert_true(r.passed);
	assert_int_equal(before, 1);
	assert_int_equal(thread_count(), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runner_passes_fault_story_and_reports_time),
		cmocka_unit_test(
			test_runner_settings_right_after_cluster_are_from_the_start),
		cmocka_unit_test(test_runner_same_seed_same_hash_other_seed_other_hash),
		cmocka_unit_test(test_runner_diverge_names_first_differing_event),
		cmocka_unit_test(test_runner_seed_flag_wins_over_file),
		cmocka_unit_test(test_runner_names_the_part_not_built),
		cmocka_unit_test(test_runner_fails_on_impossible_node_commands),
		cmocka_unit_test(
			test_runner_real_managers_elect_and_survive_leader_death),
		cmocka_unit_test(test_runner_await_waits_and_never_fails),
		cmocka_unit_test(test_runner_restart_refused_says_why),
		cmocka_unit_test(test_runner_leader_named_twice_fails_the_line_or_merges),
		cmocka_unit_test(
			test_runner_partition_put_and_link_check_are_the_shared_rule),
		cmocka_unit_test(test_runner_starts_no_thread),
		cmocka_unit_test(test_runner_exit_after_gives_the_same_run),
	};
	return cmocka_run_group_tests_name("runner", tests, NULL, NULL);
}
