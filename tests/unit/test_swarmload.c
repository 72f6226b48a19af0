/* Tests of the load generator's harness (net/swarmload.c, included here
 * with its main renamed: its parts are static): the options of the
 * node-death and leader-kill phases and what they refuse, the agents a
 * node list counts as this run's live ones, the dead agents' tasks left out
 * of the RUNNING count, the port of an address (how an agent's manager is
 * told from the new leader). The phases themselves run against real
 * daemons in `make swarmload-smoke`. */
int swarmload_main(int argc, char **argv);
#define main swarmload_main
#include "net/swarmload.c"
#undef main

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/control.h"

static int parse(struct swarmload *sl, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	memset(sl, 0, sizeof *sl);
	argv[argc++] = "swarmload";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return sl_parse(sl, argc, argv);
}

static void test_swarmload_phase_options(void **state)
{
	struct swarmload sl;
	(void)state;

	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--control-socket",
					    "s", "--agents", "10", "--replicas", "100",
					    "--kill-agents", "3", "--kill-leader", "1234",
					    "--after-socket", "s2", NULL}),
		0);
	assert_int_equal(sl.kill_agents, 3);
	assert_int_equal(sl.kill_leader, 1234);
	assert_string_equal(sl.after_socket, "s2");
	free(sl.join_buf);
	/* node-death needs a service, and an agent left */
	assert_int_equal(parse(&sl, (const char *[]){"--join", "127.0.0.1:1",
						     "--control-socket", "s", "--agents",
						     "10", "--kill-agents", "3", NULL}),
			 -1);
	free(sl.join_buf);
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--control-socket",
					    "s", "--agents", "10", "--replicas", "5",
					    "--kill-agents", "10", NULL}),
		-1);
	free(sl.join_buf);
	/* leader-kill needs a socket to read from after the kill */
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--control-socket",
					    "s", "--kill-leader", "1234", NULL}),
		-1);
	free(sl.join_buf);
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--control-socket",
					    "s", "--after-socket", "s2", NULL}),
		-1);
	free(sl.join_buf);
	/* pid 0 and 1 are no manager's: kill(0) would be swarmload's group */
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--control-socket",
					    "s", "--kill-leader", "0", "--after-socket",
					    "s2", NULL}),
		-1);
	free(sl.join_buf);
}

static void test_swarmload_live_agents_and_dead_tasks(void **state)
{
	static struct sl_agent a[12];
	struct swarmload sl;
	uint64_t dead[] = {7, 9, 1000};
	(void)state;

	memset(&sl, 0, sizeof sl);
	memset(a, 0, sizeof a);
	sl.prefix = "load";
	sl.agents = 12;
	sl.a = a;
	a[10].dead = true; /* load11 */
	assert_true(sl_is_live_agent(&sl, "load1"));
	assert_true(sl_is_live_agent(&sl, "load12"));
	assert_false(sl_is_live_agent(&sl, "load11")); /* dead */
	assert_false(sl_is_live_agent(&sl, "load13")); /* not this run's */
	assert_false(sl_is_live_agent(&sl, "load0"));
	assert_false(sl_is_live_agent(&sl, "load01"));
	assert_false(sl_is_live_agent(&sl, "load"));
	assert_false(sl_is_live_agent(&sl, "load1x"));
	assert_false(sl_is_live_agent(&sl, "m1"));
	assert_false(sl_is_live_agent(&sl, NULL));

	assert_false(sl_is_dead(&sl, 7)); /* none yet */
	sl.dead_ids = dead;
	sl.dead_count = 3;
	assert_true(sl_is_dead(&sl, 7));
	assert_true(sl_is_dead(&sl, 1000));
	assert_false(sl_is_dead(&sl, 8));
	assert_false(sl_is_dead(&sl, 0));
}

/* A task list cut at the frame's size is asked again by slices of
 * hostnames: a slice the control API refuses would fail every count. */
static void test_swarmload_slices_fit_the_control_filter(void **state)
{
	(void)state;
	assert_true(SL_NODES_PER_LIST >= 1);
	assert_true(SL_NODES_PER_LIST <= CONTROL_FILTER_VALUES_MAX);
}

static void test_swarmload_port_of(void **state)
{
	(void)state;
	assert_int_equal(sl_port_of("127.0.0.1:4242"), 4242);
	assert_int_equal(sl_port_of("[::1]:80"), 80);
	assert_int_equal(sl_port_of("127.0.0.1"), 0);
	assert_int_equal(sl_port_of("127.0.0.1:0"), 0);
	assert_int_equal(sl_port_of("127.0.0.1:70000"), 0);
	assert_int_equal(sl_port_of(""), 0);
	assert_int_equal(sl_port_of(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swarmload_phase_options),
		cmocka_unit_test(test_swarmload_live_agents_and_dead_tasks),
		cmocka_unit_test(test_swarmload_slices_fit_the_control_filter),
		cmocka_unit_test(test_swarmload_port_of),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
