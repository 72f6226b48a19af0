/* Tests of the metrics text: Prometheus' exposition format (families,
 * samples, escaped labels, cumulative histograms in seconds) and the enum
 * names it labels with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/api.pb-c.h"
#include "core/metrics.h"

static void test_metrics_family_and_samples(void **state)
{
	struct metrics_buf out = {0};
	(void)state;

	metrics_family(&out, "cswarm_x_total", METRICS_COUNTER, "Things counted.");
	metrics_sample(&out, "cswarm_x_total", NULL, 3);
	metrics_sample(&out, "cswarm_x_total", "kind=\"a\"", 2.5);
	metrics_sample(&out, "cswarm_x_total", "", 1e20);
	assert_false(out.failed);
	assert_string_equal(out.text, "# HELP cswarm_x_total Things counted.\n"
				      "# TYPE cswarm_x_total counter\n"
				      "cswarm_x_total 3\n"
				      "cswarm_x_total{kind=\"a\"} 2.5\n"
				      "cswarm_x_total 1e+20\n");
	assert_int_equal(out.len, strlen(out.text));
	metrics_buf_free(&out);
	assert_null(out.text);
}

static void test_metrics_label_escapes_and_cuts(void **state)
{
	char buf[64], tiny[12];
	(void)state;

	assert_string_equal(metrics_label(buf, sizeof buf, "name", "a\"b\\c\nd"),
			    "name=\"a\\\"b\\\\c\\nd\"");
	assert_string_equal(metrics_label(buf, sizeof buf, "name", NULL), "name=\"\"");
	/* never past cap, always terminated */
	metrics_label(tiny, sizeof tiny, "name", "a long value");
	assert_true(strlen(tiny) < sizeof tiny);
}

static void test_metrics_histogram_is_cumulative_in_seconds(void **state)
{
	struct metrics_hist h = {0};
	struct metrics_buf out = {0};
	(void)state;

	metrics_hist_observe(&h, 0.5);	 /* le 1 ms */
	metrics_hist_observe(&h, 1);	 /* le 1 ms: bounds are inclusive */
	metrics_hist_observe(&h, 30);	 /* le 50 ms */
	metrics_hist_observe(&h, 60000); /* +Inf */
	assert_int_equal(h.count, 4);
	metrics_hist_write(&out, "lat_seconds", "op=\"start\"", &h);
	assert_non_null(
		strstr(out.text, "lat_seconds_bucket{op=\"start\",le=\"0.001\"} 2\n"));
	assert_non_null(
		strstr(out.text, "lat_seconds_bucket{op=\"start\",le=\"0.025\"} 2\n"));
	assert_non_null(
		strstr(out.text, "lat_seconds_bucket{op=\"start\",le=\"0.05\"} 3\n"));
	assert_non_null(
		strstr(out.text, "lat_seconds_bucket{op=\"start\",le=\"10\"} 3\n"));
	assert_non_null(
		strstr(out.text, "lat_seconds_bucket{op=\"start\",le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(out.text, "lat_seconds_sum{op=\"start\"} 60.0315\n"));
	assert_non_null(strstr(out.text, "lat_seconds_count{op=\"start\"} 4\n"));
	metrics_buf_free(&out);
	metrics_hist_write(&out, "lat_seconds", NULL, &h);
	assert_non_null(strstr(out.text, "lat_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(out.text, "lat_seconds_count 4\n"));
	metrics_buf_free(&out);
}

static void test_metrics_enum_names(void **state)
{
	char buf[32];
	(void)state;

	assert_string_equal(metrics_enum_name(&cs__task_state__descriptor,
					      CS__TASK_STATE__TASK_STATE_RUNNING,
					      "TASK_STATE_", buf, sizeof buf),
			    "running");
	assert_string_equal(metrics_enum_name(&cs__task_state__descriptor, 999,
					      "TASK_STATE_", buf, sizeof buf),
			    "unknown");
}

/* A large text grows its buffer and stays whole. */
static void test_metrics_buffer_grows(void **state)
{
	struct metrics_buf out = {0};
	(void)state;

	for (int i = 0; i < 5000; i++)
		metrics_sample(&out, "cswarm_many", "kind=\"a-fairly-long-label-value\"",
			       i);
	assert_false(out.failed);
	assert_non_null(strstr(out.text,
			       "cswarm_many{kind=\"a-fairly-long-label-value\"} 4999\n"));
	assert_int_equal(out.len, strlen(out.text));
	metrics_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_family_and_samples),
		cmocka_unit_test(test_metrics_label_escapes_and_cuts),
		cmocka_unit_test(test_metrics_histogram_is_cumulative_in_seconds),
		cmocka_unit_test(test_metrics_enum_names),
		cmocka_unit_test(test_metrics_buffer_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
