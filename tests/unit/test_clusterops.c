/* Tests of the scenario runner's cluster operations and invariant checks
 * (sim/clusterops.c): a task in two containers breaks invariant 3; two
 * containers in one slot that the cluster does not want running (no task
 * in its store asks for them: a partitioned node's leftovers) do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "core/node.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/clusterops.h"
#include "sim/simexec.h"
#include "sim/world.h"

#define SEC 1000000ull

struct fixture {
	struct world *w;
	struct simcluster *c;
	struct clops *o;
	struct manager *m;
};

static void boot(struct fixture *f)
{
	static const char *const names[] = {"m1", "w1", "w2"};
	int64_t l;

	f->w = world_new(7);
	f->c = simcluster_new(f->w, NULL);
	f->o = clops_new(f->w, f->c);
	assert_non_null(f->o);
	simcluster_node_programs(f->c, true);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t idx;
		const struct node_cfg *cfg =
			simcluster_node_cfg(f->c, names[i], i == 0 ? 1 : 0,
					    i == 0 ? 1 : 0, 1, 4000, 1ull << 33);
		assert_int_equal(world_node_add(f->w, names[i], &node_program, cfg, &idx),
				 0);
		simcluster_track(f->c, idx, i == 0 ? 1 : 0);
		assert_int_equal(world_node_start(f->w, idx), 0);
	}
	while ((l = simcluster_leader(f->c)) < 0 && world_step(f->w, 60 * SEC))
		;
	assert_true(l >= 0);
	f->m = simcluster_manager(f->c, (uint32_t)l);
}

static void teardown(struct fixture *f)
{
	world_free(f->w);
	clops_free(f->o);
	simcluster_free(f->c);
}

static void started(struct env_ctl_req *req, int status)
{
	int *n = req->data;
	assert_int_equal(status, 0);
	(*n)++;
}

/* Runs a container of task_text (service web, slot) on node by hand. */
static void run_container(struct fixture *f, uint32_t node, const char *task_text,
			  uint64_t slot)
{
	struct env_container_spec spec = {0};
	struct env_ctl *ctl;
	struct env_ctl_req prep = {0}, start = {0};
	int done = 0;

	spec.task_id = task_text;
	spec.service_id = "0000000000000001";
	spec.service_name = "web";
	spec.image = "img";
	spec.slot = slot;
	assert_int_equal(simexec_ctl_open(world_exec(f->w), node, &spec, &ctl), 0);
	prep.data = &done;
	assert_int_equal(simexec_ctl_do(ctl, ENV_CTL_PREPARE, &prep, started), 0);
	while (done < 1 && world_step(f->w, UINT64_MAX))
		;
	start.data = &done;
	assert_int_equal(simexec_ctl_do(ctl, ENV_CTL_START, &start, started), 0);
	while (done < 2 && world_step(f->w, UINT64_MAX))
		;
	simexec_ctl_close(ctl, NULL, NULL);
}

static void test_clops_task_in_two_containers_breaks_invariant_3(void **state)
{
	struct fixture f;
	char msg[256];

	boot(&f);
	assert_true(clops_check(f.o, f.m, msg, sizeof msg));
	run_container(&f, 1, "00000000000000aa", 1);
	assert_true(clops_check(f.o, f.m, msg, sizeof msg));
	run_container(&f, 2, "00000000000000aa", 1);
	assert_false(clops_check(f.o, f.m, msg, sizeof msg));
	assert_non_null(strstr(msg, "task 00000000000000aa runs in 2 containers"));
	teardown(&f);
}

static void test_clops_slot_judged_by_what_the_cluster_wants(void **state)
{
	struct fixture f;
	char msg[256];

	boot(&f);
	/* two containers in slot 1 of web; the store knows one as wanted,
	 * the other as told to stop (a partitioned node's leftover) */
	run_container(&f, 1, "00000000000000b1", 1);
	run_container(&f, 2, "00000000000000b2", 1);
	/* no service or tasks in the store: nothing is wanted, no violation */
	assert_true(clops_check(f.o, f.m, msg, sizeof msg));
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clops_task_in_two_containers_breaks_invariant_3),
		cmocka_unit_test(test_clops_slot_judged_by_what_the_cluster_wants),
	};
	return cmocka_run_group_tests_name("clusterops", tests, NULL, NULL);
}
