/* Tests of the simulated cluster's checks (sim/cluster.c), through the
 * scenario runner: `managers in sync` leaves out a manager the cluster
 * removed, whose node came back with its old disk and was refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/manager.h"
#include "sim/cluster.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "tests/support/scnrun.h"
#include "sim/world.h"

/* m3 is demoted and removed while its daemon is dead, then started again
 * from its disk: the cluster refuses it and it never applies another
 * entry. The managers of the cluster are in sync without it (explore's
 * liveness phase on security-removed-manager-to-agent.scn failed every
 * seed with "m1 applied 62, m3 applied 1"). */
static void test_cluster_in_sync_leaves_out_a_removed_manager(void **state)
{
	struct runner_result r;

	(void)state;
	r = scnrun("cluster managers=3 workers=1\n"
		   "service create web replicas=2\n"
		   "expect converged within 1m\n"
		   "kill m3 process\n"
		   "node demote m3\n"
		   "expect managers in sync within 1m\n"
		   "node rm m3\n"
		   "run 10s\n"
		   "restart m3\n"
		   "run 30s\n"
		   "service update web replicas=3\n"
		   "expect converged within 1m\n"
		   "expect managers in sync within 1m\n",
		   1, NULL);
	assert_true(r.passed);
}

/* Invariant 2 (every manager applies the same entry at an index) hashes
 * each entry 8 bytes a step (issue 18): an entry that differs from the
 * first applied at its index in any one byte (in a word or in the tail)
 * is a violation; the same bytes, or another index, are not. */
static void test_cluster_invariant_2_sees_any_byte_differ(void **state)
{
	struct world *w = world_new(7);
	struct simcluster *c;
	const struct manager_cfg *m1, *m2;
	uint8_t entry[29], other[29];
	char msg[512];
	uint64_t index = 1;

	(void)state;
	assert_non_null(w);
	c = simcluster_new(w, NULL);
	assert_non_null(c);
	m1 = simcluster_manager_cfg(c, 1, 2);
	m2 = simcluster_manager_cfg(c, 2, 2);
	assert_non_null(m1);
	assert_non_null(m2);
	assert_false(simcluster_refused(c, "w1"));
	for (size_t i = 0; i < sizeof entry; i++)
		entry[i] = (uint8_t)(i * 37 + 1);
	for (size_t len = 0; len <= sizeof entry; len++) {
		m1->on_apply(m1->hook_data, NULL, index, entry, len);
		m2->on_apply(m2->hook_data, NULL, index, entry, len);
		assert_true(simcluster_check(c, msg, sizeof msg));
		index++;
	}
	for (size_t i = 0; i < sizeof entry; i++) {
		/* a fresh cluster: the first violation is kept */
		simcluster_free(c);
		c = simcluster_new(w, NULL);
		m1 = simcluster_manager_cfg(c, 1, 2);
		m2 = simcluster_manager_cfg(c, 2, 2);
		memcpy(other, entry, sizeof other);
		other[i] ^= 0x40;
		m1->on_apply(m1->hook_data, NULL, 5, entry, sizeof entry);
		m2->on_apply(m2->hook_data, NULL, 5, other, sizeof other);
		assert_false(simcluster_check(c, msg, sizeof msg));
		assert_non_null(strstr(msg, "invariant 2"));
	}
	simcluster_free(c);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_in_sync_leaves_out_a_removed_manager),
		cmocka_unit_test(test_cluster_invariant_2_sees_any_byte_differ),
	};
	return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
