/* Tests of sim/timeline_real.c: a real run's observations become the same
 * timeline records the simulated recorder makes (spans, series, commands),
 * and the end closes what is open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sim/scenario.h"
#include "sim/timeline_real.h"
#include "sim/world.h"

static struct timeline *tl_make(struct scn_script *s)
{
	const char *text = "cluster managers=1 workers=1\nrun 1s\n";
	char err[256];
	struct timeline *tl;
	assert_int_equal(scn_parse("t.scn", text, strlen(text), s, err, sizeof err), 0);
	tl = timeline_new(s);
	assert_non_null(tl);
	timeline_real_node(tl, 0, "m1", 0);
	timeline_real_node(tl, 1, "w1", 0);
	assert_int_equal(tl->node_count, 2);
	assert_string_equal(tl->nodes[1].name, "w1");
	return tl;
}

static const struct tl_span *find(const struct timeline *tl, enum tl_span_kind kind,
				  uint32_t node)
{
	for (size_t i = 0; i < tl->span_count; i++)
		if (tl->spans[i].kind == kind && tl->spans[i].node == node)
			return &tl->spans[i];
	return NULL;
}

static void test_timeline_real_spans_close_at_the_end(void **state)
{
	struct scn_script s;
	struct timeline *tl = tl_make(&s);
	const struct tl_span *sp;
	(void)state;
	timeline_real_leader(tl, 0, 1000);
	timeline_real_down(tl, 1, true, 2000);
	timeline_real_down(tl, 1, true, 2500); /* already down: nothing new */
	timeline_real_up(tl, 1, 3000);
	timeline_real_cut(tl, 0, 1, 4000);
	timeline_real_link(tl, 1, true, 4500);
	timeline_real_end(tl, 9000);
	sp = find(tl, TL_DOWN, 1);
	assert_non_null(sp);
	assert_int_equal(sp->from_us, 2000);
	assert_int_equal(sp->to_us, 3000);
	assert_int_equal(sp->detail, WORLD_DOWN_MACHINE);
	sp = find(tl, TL_LEADER, 0);
	assert_non_null(sp);
	assert_int_equal(sp->from_us, 1000);
	assert_int_equal(sp->to_us, 9000);
	sp = find(tl, TL_PARTITION, 0);
	assert_non_null(sp);
	assert_int_equal(sp->from_us, 4000);
	assert_int_equal(sp->to_us, 9000);
	assert_int_equal(sp->detail, 1);
	sp = find(tl, TL_LINK, 1);
	assert_non_null(sp);
	assert_int_equal(sp->to_us, 9000);
	assert_int_equal(tl->end_us, 9000);
	assert_false(tl->oom);
	timeline_free(tl);
	scn_free(&s);
}

static void test_timeline_real_series_keep_changes_only(void **state)
{
	struct scn_script s;
	struct timeline *tl = tl_make(&s);
	(void)state;
	timeline_real_running(tl, "web", 0, 0); /* unseen and 0: no series */
	assert_int_equal(tl->series_count, 0);
	timeline_real_running(tl, "web", 2, 5000);
	timeline_real_running(tl, "web", 2, 6000);
	timeline_real_running(tl, "web", 1, 7000);
	timeline_real_command(tl, 2, "run 1s", 100);
	assert_int_equal(tl->series_count, 1);
	/* a series that appears mid-run starts from 0 */
	assert_int_equal(tl->series[0].count, 3);
	assert_int_equal(tl->series[0].points[0].running, 0);
	assert_int_equal(tl->series[0].points[1].at_us, 5000);
	assert_int_equal(tl->series[0].points[2].running, 1);
	assert_int_equal(tl->cmd_count, 1);
	assert_string_equal(tl->cmds[0].text, "run 1s");
	timeline_free(tl);
	scn_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeline_real_spans_close_at_the_end),
		cmocka_unit_test(test_timeline_real_series_keep_changes_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
