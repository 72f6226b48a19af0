/* Tests of invariant 11 (sim/taskrun): a task id reaches RUNNING at most
 * once in what real agents report; RUNNING, another state, then RUNNING
 * again is a task started twice. Fed with StatusUpdate frames as the
 * agent builds them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "sim/taskrun.h"

/* ---------------------------------------------------------------- helpers */

#define RUNNING	 CS__TASK_STATE__TASK_STATE_RUNNING
#define STARTING CS__TASK_STATE__TASK_STATE_STARTING
#define SHUTDOWN CS__TASK_STATE__TASK_STATE_SHUTDOWN
#define COMPLETE CS__TASK_STATE__TASK_STATE_COMPLETE

/* Feeds one StatusUpdate frame from node with the n given (id, state)
 * pairs; returns what taskrun_frame returned. */
static bool report(struct taskrun *tr, uint32_t node, size_t n, const uint64_t *ids,
		   const Cs__TaskState *states)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__StatusUpdate u = CS__STATUS_UPDATE__INIT;
	Cs__Task tasks[8], *ptrs[8];
	Cs__TaskStatus st[8];
	uint8_t *buf;
	size_t len;
	bool ok;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		cs__task__init(&tasks[i]);
		cs__task_status__init(&st[i]);
		tasks[i].id = ids[i];
		st[i].state = states[i];
		tasks[i].status = &st[i];
		ptrs[i] = &tasks[i];
	}
	u.node_id = 7;
	u.session_id = 9;
	u.n_tasks = n;
	u.tasks = ptrs;
	wire.status_update = &u;
	len = cs__wire__get_packed_size(&wire);
	buf = malloc(len);
	assert_non_null(buf);
	cs__wire__pack(&wire, buf);
	ok = taskrun_frame(tr, node, buf, len);
	free(buf);
	return ok;
}

static bool report1(struct taskrun *tr, uint32_t node, uint64_t id, Cs__TaskState state)
{
	return report(tr, node, 1, &id, &state);
}

/* ---------------------------------------------------------------- tests */

static void test_taskrun_fires_on_running_twice_with_a_state_between(void **state)
{
	struct taskrun *tr = taskrun_new();
	char msg[256];
	uint32_t first, node;
	uint64_t id;

	assert_non_null(tr);
	assert_true(report1(tr, 3, 0xabc, STARTING));
	assert_true(report1(tr, 3, 0xabc, RUNNING));
	assert_true(taskrun_check(tr, msg, sizeof msg));
	/* unassigned and given back: prepared and started again */
	assert_true(report1(tr, 3, 0xabc, STARTING));
	assert_true(taskrun_check(tr, msg, sizeof msg));
	assert_false(report1(tr, 4, 0xabc, RUNNING));
	assert_false(taskrun_check(tr, msg, sizeof msg));
	assert_non_null(strstr(msg, "invariant 11"));
	assert_non_null(strstr(msg, "0000000000000abc"));
	assert_true(taskrun_broken(tr, &first, &node, &id));
	assert_int_equal(first, 3);
	assert_int_equal(node, 4);
	assert_int_equal(id, 0xabc);
	taskrun_free(tr);
}

static void test_taskrun_fires_on_running_after_a_terminal_state(void **state)
{
	struct taskrun *tr = taskrun_new();
	char msg[256];

	assert_non_null(tr);
	assert_true(report1(tr, 1, 5, RUNNING));
	assert_true(report1(tr, 1, 5, SHUTDOWN));
	assert_false(report1(tr, 1, 5, RUNNING));
	assert_false(taskrun_check(tr, msg, sizeof msg));
	/* the first break is the one kept */
	assert_true(report1(tr, 1, 6, RUNNING));
	assert_true(report1(tr, 1, 6, COMPLETE));
	assert_true(report1(tr, 2, 6, RUNNING)); /* a second break: not reported */
	assert_false(taskrun_check(tr, msg, sizeof msg));
	assert_non_null(strstr(msg, "0000000000000005"));
	taskrun_free(tr);
}

static void test_taskrun_allows_a_report_resent_and_a_life_to_its_end(void **state)
{
	/* RUNNING sent again until acknowledged, then the end of the task;
	 * another task's states do not mix with it */
	struct taskrun *tr = taskrun_new();
	uint64_t ids[3] = {1, 2, 3};
	Cs__TaskState run3[3] = {RUNNING, RUNNING, STARTING};
	Cs__TaskState end3[3] = {SHUTDOWN, RUNNING, RUNNING};
	char msg[256];

	assert_non_null(tr);
	assert_true(report(tr, 0, 3, ids, run3));
	assert_true(report(tr, 0, 3, ids, run3));
	assert_true(report(tr, 0, 3, ids, end3));
	assert_true(report(tr, 0, 3, ids, end3));
	assert_true(taskrun_check(tr, msg, sizeof msg));
	assert_int_equal(taskrun_count(tr), 3);
	taskrun_free(tr);
}

static void test_taskrun_reads_only_status_updates(void **state)
{
	struct taskrun *tr = taskrun_new();
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__Heartbeat hb = CS__HEARTBEAT__INIT;
	uint8_t buf[64], junk[3] = {10 << 3 | 2, 0xff, 0xff};
	size_t len;
	char msg[256];

	assert_non_null(tr);
	hb.node_id = 1;
	wire.heartbeat = &hb;
	len = cs__wire__get_packed_size(&wire);
	assert_true(len <= sizeof buf);
	cs__wire__pack(&wire, buf);
	assert_true(taskrun_frame(tr, 0, buf, len));
	assert_true(taskrun_frame(tr, 0, junk, sizeof junk)); /* does not decode */
	assert_true(taskrun_frame(tr, 0, buf, 0));
	assert_int_equal(taskrun_count(tr), 0);
	assert_true(taskrun_check(tr, msg, sizeof msg));
	taskrun_free(tr);
}

static void test_taskrun_follows_many_tasks(void **state)
{
	/* the table grows past its first size and forgets nothing */
	struct taskrun *tr = taskrun_new();
	char msg[256];

	assert_non_null(tr);
	for (uint64_t id = 1; id <= 20000; id++)
		assert_true(taskrun_note(tr, (uint32_t)(id % 100),
					 id * 0x9e3779b97f4a7c15ull, RUNNING));
	assert_int_equal(taskrun_count(tr), 20000);
	for (uint64_t id = 1; id <= 20000; id++)
		assert_true(taskrun_note(tr, 0, id * 0x9e3779b97f4a7c15ull, SHUTDOWN));
	assert_true(taskrun_check(tr, msg, sizeof msg));
	assert_false(taskrun_note(tr, 0, 12345 * 0x9e3779b97f4a7c15ull, RUNNING));
	assert_true(taskrun_note(tr, 0, 20001 * 0x9e3779b97f4a7c15ull, RUNNING));
	assert_false(taskrun_check(tr, msg, sizeof msg));
	taskrun_free(tr);
}

/* Feeds one StatusUpdate frame from node: tasks first..first+n-1 (ids
 * spread by a multiplier), each in state, a message and a container id
 * apiece (objects and strings to unpack, as an agent's report has). */
static bool report_range(struct taskrun *tr, uint32_t node, uint64_t first, size_t n,
			 Cs__TaskState state)
{
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__StatusUpdate u = CS__STATUS_UPDATE__INIT;
	Cs__Task *tasks = calloc(n, sizeof *tasks);
	Cs__Task **ptrs = calloc(n, sizeof *ptrs);
	Cs__TaskStatus *st = calloc(n, sizeof *st);
	uint8_t *buf;
	size_t len;
	bool ok;

	assert_non_null(tasks);
	assert_non_null(ptrs);
	assert_non_null(st);
	for (size_t i = 0; i < n; i++) {
		cs__task__init(&tasks[i]);
		cs__task_status__init(&st[i]);
		tasks[i].id = (first + i) * 0x9e3779b97f4a7c15ull;
		st[i].state = state;
		st[i].message = "started by the simulated runtime";
		tasks[i].status = &st[i];
		ptrs[i] = &tasks[i];
	}
	u.node_id = 7;
	u.n_tasks = n;
	u.tasks = ptrs;
	wire.status_update = &u;
	len = cs__wire__get_packed_size(&wire);
	buf = malloc(len);
	assert_non_null(buf);
	cs__wire__pack(&wire, buf);
	ok = taskrun_frame(tr, node, buf, len);
	free(buf);
	free(tasks);
	free(ptrs);
	free(st);
	return ok;
}

static void test_taskrun_reads_frames_large_and_small_one_after_another(void **state)
{
	/* issue 18: a frame is unpacked into room kept from frame to frame
	 * (grown by the largest): frames of every size, one after another,
	 * are each read whole and alone */
	struct taskrun *tr = taskrun_new();
	char msg[256];

	assert_non_null(tr);
	assert_true(report_range(tr, 1, 1, 1, RUNNING));
	assert_true(report_range(tr, 1, 2, 3000, RUNNING)); /* past the room */
	assert_true(report_range(tr, 2, 5000, 10, RUNNING));
	assert_true(report_range(tr, 1, 10000, 6000, STARTING)); /* past it again */
	assert_true(report_range(tr, 1, 1, 3001, SHUTDOWN));
	assert_int_equal(taskrun_count(tr), 3011);
	assert_true(taskrun_check(tr, msg, sizeof msg));
	assert_true(report_range(tr, 2, 5000, 10, RUNNING)); /* resent */
	assert_false(report_range(tr, 3, 2999, 2, RUNNING)); /* 2999: started twice */
	assert_false(taskrun_check(tr, msg, sizeof msg));
	taskrun_free(tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_taskrun_fires_on_running_twice_with_a_state_between),
		cmocka_unit_test(test_taskrun_fires_on_running_after_a_terminal_state),
		cmocka_unit_test(
			test_taskrun_allows_a_report_resent_and_a_life_to_its_end),
		cmocka_unit_test(test_taskrun_reads_only_status_updates),
		cmocka_unit_test(test_taskrun_follows_many_tasks),
		cmocka_unit_test(
			test_taskrun_reads_frames_large_and_small_one_after_another),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
