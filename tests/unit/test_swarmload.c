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

/* Each agent its own loopback address, none a network's or broadcast's
 * number, all different up to the most agents; --one-address: none. */
static void test_swarmload_dial_from_addresses(void **state)
{
	struct swarmload sl;
	char a[INET_ADDRSTRLEN];
	unsigned x, y, z;
	(void)state;

	sl_dial_from(0, a);
	assert_string_equal(a, "");
	sl_dial_from(1, a);
	assert_string_equal(a, "127.1.1.1");
	sl_dial_from(254, a);
	assert_string_equal(a, "127.1.1.254");
	sl_dial_from(255, a);
	assert_string_equal(a, "127.1.2.1");
	sl_dial_from(SL_AGENTS_MAX, a);
	assert_string_equal(a, "127.2.140.178");
	for (unsigned n = 1; n <= SL_AGENTS_MAX; n++) {
		sl_dial_from(n, a);
		assert_int_equal(sscanf(a, "127.%u.%u.%u", &x, &y, &z), 3);
		assert_true(x >= 1 && x <= 254 && y >= 1 && y <= 254 && z >= 1 &&
			    z <= 254);
		/* the number read back: one address per agent */
		assert_int_equal((x - 1) * 254 * 254 + (y - 1) * 254 + (z - 1), n - 1);
	}
	assert_int_equal(parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--token",
						     "t", NULL}),
			 0);
	assert_false(sl.one_address);
	free(sl.join_buf);
	assert_int_equal(
		parse(&sl, (const char *[]){"--one-address", "--join", "127.0.0.1:1",
					    "--token", "t", NULL}),
		0);
	assert_true(sl.one_address);
	free(sl.join_buf);
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
	struct swarmload sl;
	uint64_t dead[] = {7, 9, 1000};
	(void)state;

	memset(&sl, 0, sizeof sl);
	sl.prefix = "load";
	sl.agents = 12;
	sl.kill_agents = 2; /* node-death's: load11 and load12, once killed */
	assert_true(sl_is_live_agent(&sl, "load1"));
	assert_true(sl_is_live_agent(&sl, "load12")); /* not killed yet */
	sl.dead_ids = dead;
	sl.dead_count = 2;
	assert_true(sl_is_live_agent(&sl, "load10"));
	assert_false(sl_is_live_agent(&sl, "load11")); /* dead */
	assert_false(sl_is_live_agent(&sl, "load12"));
	sl.dead_ids = NULL;
	sl.dead_count = 0;
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

/* Issue 18: the count the create and node-death phases poll is the
 * service's own in a SERVICE_LIST answer with status (none from a manager
 * without counts); node-death ends when every dead agent's node is DOWN
 * and all the replicas run, not before (while the dead are not all DOWN,
 * their tasks still count running). */
static void test_swarmload_count_and_node_death_end(void **state)
{
	struct swarmload sl;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	Cs__Service a = CS__SERVICE__INIT, b = CS__SERVICE__INIT;
	Cs__ServiceSpec as = CS__SERVICE_SPEC__INIT, bs = CS__SERVICE_SPEC__INIT;
	Cs__ServiceCounts ac = CS__SERVICE_COUNTS__INIT, bc = CS__SERVICE_COUNTS__INIT;
	Cs__Service *svcs[] = {&a, &b};
	Cs__ServiceCounts *counts[] = {&ac, &bc};
	uint64_t running = 0, desired = 0, down = 0;
	(void)state;

	memset(&sl, 0, sizeof sl);
	sl.service = "swarmload";
	sl.replicas = 100;
	sl.kill_agents = 10;
	as.name = "other";
	bs.name = "swarmload";
	a.id = ac.service_id = 1;
	b.id = bc.service_id = 2;
	a.spec = &as;
	b.spec = &bs;
	ac.running = 5;
	bc.running = 90;
	bc.desired = 100;
	resp.services = svcs;
	resp.n_services = 2;
	resp.nodes_down = 4;
	assert_int_equal(sl_count_of(&sl, &resp, &running, &desired, &down), -1);
	resp.counts = counts;
	resp.n_counts = 2;
	assert_int_equal(sl_count_of(&sl, &resp, &running, &desired, &down), 0);
	assert_int_equal(running, 90);
	assert_int_equal(desired, 100);
	assert_int_equal(down, 4);
	bc.service_id = 3; /* counts out of order: not taken */
	assert_int_equal(sl_count_of(&sl, &resp, &running, &desired, &down), -1);

	/* 1 node DOWN before the kill */
	assert_false(sl_death_done(&sl, 100, 100, 1, 1));  /* none DOWN yet */
	assert_false(sl_death_done(&sl, 100, 100, 10, 1)); /* 9 of 10 */
	assert_false(sl_death_done(&sl, 95, 100, 11, 1));  /* not all running */
	assert_false(sl_death_done(&sl, 100, 90, 11, 1));  /* not the replicas */
	assert_true(sl_death_done(&sl, 100, 100, 11, 1));
}

/* Issue 18: create and leader-kill end their all-RUNNING wait on the
 * control API's count: every replica running, and desired the replicas
 * (not while the count is short, nor while desired says another size). */
static void test_swarmload_all_running_by_the_count(void **state)
{
	struct swarmload sl;
	(void)state;

	memset(&sl, 0, sizeof sl);
	sl.replicas = 1000;
	assert_false(sl_all_running(&sl, 0, 0));
	assert_false(sl_all_running(&sl, 999, 1000));
	assert_false(sl_all_running(&sl, 1000, 999));
	assert_false(sl_all_running(&sl, 1000, 1001));
	assert_true(sl_all_running(&sl, 1000, 1000));
}

/* A task list cut at the frame's size is asked again by slices of
 * hostnames: a slice the control API refuses would fail every count. */
static void test_swarmload_slices_fit_the_control_filter(void **state)
{
	(void)state;
	assert_true(SL_NODES_PER_LIST >= 1);
	assert_true(SL_NODES_PER_LIST <= CONTROL_FILTER_VALUES_MAX);
}

/* --procs: the shares of the agents cover each once, in order, evenly; the
 * option refuses more processes than agents, 0 and over SL_PROCS_MAX. */
static void test_swarmload_procs_shares(void **state)
{
	static const unsigned agents[] = {1, 7, 100, 2400, 10000, 10007};
	struct swarmload sl;
	(void)state;

	for (size_t i = 0; i < sizeof agents / sizeof agents[0]; i++)
		for (unsigned procs = 1; procs <= SL_PROCS_MAX && procs <= agents[i];
		     procs++) {
			unsigned next = 0, lo, n, least = ~0u, most = 0;
			for (unsigned k = 0; k < procs; k++) {
				sl_share_of(agents[i], procs, k, &lo, &n);
				assert_int_equal(lo, next);
				assert_true(n >= 1);
				least = n < least ? n : least;
				most = n > most ? n : most;
				next = lo + n;
			}
			assert_int_equal(next, agents[i]);
			assert_true(most - least <= 1);
		}
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--token", "t",
					    "--agents", "10000", "--procs", "5", NULL}),
		0);
	assert_int_equal(sl.procs, 5);
	free(sl.join_buf);
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--token", "t",
					    "--agents", "3", "--procs", "4", NULL}),
		-1);
	free(sl.join_buf);
	assert_int_equal(parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--token",
						     "t", "--procs", "0", NULL}),
			 -1);
	free(sl.join_buf);
	assert_int_equal(
		parse(&sl, (const char *[]){"--join", "127.0.0.1:1", "--token", "t",
					    "--agents", "1000", "--procs", "17", NULL}),
		-1);
	free(sl.join_buf);
}

/* The control thread's counts are every process's slot summed, and the
 * e2e time the latest start any of them saw. */
static void test_swarmload_counts_summed_over_processes(void **state)
{
	static struct sl_shared sh;
	struct swarmload sl;
	(void)state;

	memset(&sl, 0, sizeof sl);
	memset(&sh, 0, sizeof sh);
	sl.sh = &sh;
	sl.procs = 3;
	atomic_store(&sh.slot[0].running, 5);
	atomic_store(&sh.slot[1].running, 7);
	atomic_store(&sh.slot[2].running, 11);
	atomic_store(&sh.slot[3].running, 1000); /* no process of this run */
	assert_int_equal(SL_SUM(&sl, running), 23);
	atomic_store(&sh.slot[0].last_start_ns, 30);
	atomic_store(&sh.slot[1].last_start_ns, 90);
	atomic_store(&sh.slot[2].last_start_ns, 60);
	assert_int_equal(SL_MAX(&sl, last_start_ns), 90);
	assert_int_equal(sl_phase_all(&sl), SL_PH_JOIN);
	atomic_store(&sh.slot[0].phase, SL_PH_READY);
	atomic_store(&sh.slot[1].phase, SL_PH_READY);
	assert_int_equal(sl_phase_all(&sl), SL_PH_JOIN);
	atomic_store(&sh.slot[2].phase, SL_PH_READY);
	assert_int_equal(sl_phase_all(&sl), SL_PH_READY);
	atomic_store(&sh.slot[1].phase, SL_PH_FAILED);
	assert_int_equal(sl_phase_all(&sl), SL_PH_FAILED);
	assert_int_equal(sl_killed(&sl), 0);
	atomic_store(&sh.slot[0].killed, 1);
	atomic_store(&sh.slot[2].killed, 1);
	assert_int_equal(sl_killed(&sl), 2);
}

/* create's timeline: each process notes the first and last time of an
 * event for its own agents; the first over all processes is the earliest
 * of those that saw one (a process that saw none is not a 0), the last
 * the latest. */
static void test_swarmload_timeline_first_and_last_over_processes(void **state)
{
	static struct sl_shared sh;
	struct swarmload sl;
	(void)state;

	memset(&sl, 0, sizeof sl);
	memset(&sh, 0, sizeof sh);
	sl.sh = &sh;
	sl.procs = 3;
	assert_int_equal(SL_MIN(&sl, tl_start_first_ns), 0); /* none yet */
	sl_tl_note(&sh.slot[1].tl_start_first_ns, &sh.slot[1].tl_start_last_ns);
	sl_tl_note(&sh.slot[2].tl_start_first_ns, &sh.slot[2].tl_start_last_ns);
	sl_tl_note(&sh.slot[1].tl_start_first_ns, &sh.slot[1].tl_start_last_ns);
	/* slot 0 saw none: the first is slot 1's, the last slot 1's second */
	assert_true(SL_MIN(&sl, tl_start_first_ns) ==
		    atomic_load(&sh.slot[1].tl_start_first_ns));
	assert_true(atomic_load(&sh.slot[1].tl_start_first_ns) <=
		    atomic_load(&sh.slot[2].tl_start_first_ns));
	assert_true(atomic_load(&sh.slot[1].tl_start_last_ns) >=
		    atomic_load(&sh.slot[2].tl_start_last_ns));
	assert_true(SL_MAX(&sl, tl_start_last_ns) ==
		    atomic_load(&sh.slot[1].tl_start_last_ns));
	atomic_store(&sh.slot[0].tl_ack_first_ns, 50);
	atomic_store(&sh.slot[2].tl_ack_first_ns, 40);
	atomic_store(&sh.slot[3].tl_ack_first_ns, 1); /* no process of this run */
	assert_int_equal(SL_MIN(&sl, tl_ack_first_ns), 40);
	assert_true(sl_since_s(1000000000u, 2500000000u) == 1.5);
	assert_true(sl_since_s(1000000000u, 0) < 0); /* never */
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
		cmocka_unit_test(test_swarmload_dial_from_addresses),
		cmocka_unit_test(test_swarmload_phase_options),
		cmocka_unit_test(test_swarmload_live_agents_and_dead_tasks),
		cmocka_unit_test(test_swarmload_count_and_node_death_end),
		cmocka_unit_test(test_swarmload_all_running_by_the_count),
		cmocka_unit_test(test_swarmload_slices_fit_the_control_filter),
		cmocka_unit_test(test_swarmload_timeline_first_and_last_over_processes),
		cmocka_unit_test(test_swarmload_port_of),
		cmocka_unit_test(test_swarmload_procs_shares),
		cmocka_unit_test(test_swarmload_counts_summed_over_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
