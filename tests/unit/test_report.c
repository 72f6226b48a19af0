/* Tests for sim/report.c, sim/timeline.c and sim/metrics.c: the structure
 * of a scenario page's SVG (one picture, a row per node, a down bar where
 * the node was killed, the failure marker, escaping), metrics.json is
 * well-formed JSON with the stable keys, and baselines flag regressions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "sim/metrics.h"
#include "sim/report.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/timeline.h"

/* ---------------------------------------------------------------- helpers */

struct fixture {
	struct scn_script script;
	struct runner_result res;
	struct timeline *tl;
	struct report_run run;
};

/* Parses text as path and runs it with a timeline attached. */
static void run_scenario(struct fixture *fx, const char *path, const char *text)
{
	struct runner_opts opts = {0};
	char err[256];

	memset(fx, 0, sizeof *fx);
	assert_int_equal(
		scn_parse(path, text, strlen(text), &fx->script, err, sizeof err), 0);
	fx->tl = timeline_new(&fx->script);
	assert_non_null(fx->tl);
	timeline_attach(fx->tl, &opts);
	assert_int_equal(runner_run(&fx->script, 1, &opts, &fx->res), 0);
	timeline_finish(fx->tl, &fx->res);
	fx->run = (struct report_run){
		.file = fx->script.path,
		.seed = fx->res.seed,
		.passed = fx->res.passed,
		.message = fx->res.message,
		.sim_s = (double)fx->res.sim_us / 1e6,
		.events = fx->res.events,
		.hash = fx->res.hash,
		.tl = fx->tl,
	};
}

static void fixture_free(struct fixture *fx)
{
	timeline_free(fx->tl);
	runner_result_free(&fx->res);
	scn_free(&fx->script);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Writes runs into a fresh directory; returns its path (static buffer). */
static const char *write_report(const struct report_run *runs, size_t count,
				const struct report_opts *opts)
{
	static char dir[64];
	char err[512];

	snprintf(dir, sizeof dir, "/tmp/test_report.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(report_write(dir, runs, count, opts, err, sizeof err), 0);
	return dir;
}

static char *read_in(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return read_all(path);
}

static void remove_report(const char *dir, const struct report_run *runs, size_t count)
{
	char path[256], page[128];
	for (size_t i = 0; i < count; i++) {
		report_page_name(runs, count, i, page, sizeof page);
		snprintf(path, sizeof path, "%s/%s", dir, page);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/index.html", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/metrics.json", dir);
	unlink(path);
	rmdir(dir);
}

/* ---------------------------------------------------------------- a tiny JSON validator */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	return p;
}

static const char *json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) ||
					    !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
	return *p == '"' ? p + 1 : NULL;
}

static const char *json_number(const char *p)
{
	const char *start = p;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > start ? p : NULL;
}

static const char *json_container(const char *p, char close, int depth)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		p = json_ws(p);
		if (close == '}') {
			p = json_string(p);
			if (!p)
				return NULL;
			p = json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = json_value(p, depth + 1);
		if (!p)
			return NULL;
		p = json_ws(p);
		if (*p == ',') {
			p++;
			continue;
		}
		return *p == close ? p + 1 : NULL;
	}
}

static const char *json_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = json_ws(p);
	switch (*p) {
	case '{': return json_container(p, '}', depth);
	case '[': return json_container(p, ']', depth);
	case '"': return json_string(p);
	case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default: return json_number(p);
	}
}

static bool json_valid(const char *text)
{
	const char *end = json_value(text, 0);
	return end && *json_ws(end) == '\0';
}

/* ---------------------------------------------------------------- tests */

static const char kill_text[] = "cluster managers=1 workers=2\n"
				"run 10s\n"
				"kill w1\n"
				"run 10s\n";

/* A node killed at 10 s of a 20 s run: one picture, a row per node with its
 * name, and w1's down bar starting at the middle of the time axis. */
static void test_report_page_has_rows_and_down_bar_at_kill_time(void **state)
{
	struct fixture fx;
	const char *dir;
	char *page, want[128];
	const char *w1, *end;

	(void)state;
	run_scenario(&fx, "scenarios/kill-w1.scn", kill_text);
	assert_true(fx.res.passed);
	assert_int_equal(fx.res.sim_us, 20000000);
	dir = write_report(&fx.run, 1, NULL);
	page = read_in(dir, "kill-w1.html");

	assert_int_equal(count_of(page, "<svg"), 1);
	assert_int_equal(count_of(page, "</svg>"), 1);
	assert_int_equal(count_of(page, "<g class=\"node\""), 3);
	assert_non_null(strstr(page, "<g class=\"node\" data-node=\"m1\">"));
	assert_non_null(strstr(page, "<g class=\"node\" data-node=\"w2\">"));
	w1 = strstr(page, "<g class=\"node\" data-node=\"w1\">");
	assert_non_null(w1);
	end = strstr(w1, "</g>");
	assert_non_null(end);
	/* the name is drawn in the row */
	assert_non_null(strstr(w1, ">w1</text>"));
	/* down from 10 s to the end: x = LEFT + PLOT_W * 10/20 */
	snprintf(want, sizeof want, "<rect class=\"down\" x=\"%.1f\"",
		 REPORT_SVG_LEFT + REPORT_SVG_PLOT_W * 0.5);
	assert_non_null(strstr(w1, want));
	assert_true(strstr(w1, want) < end);
	assert_non_null(strstr(w1, "data-from-us=\"10000000\" data-to-us=\"20000000\""));
	/* only w1 went down; m1 led (a band with a tooltip) */
	assert_int_equal(count_of(page, "<rect class=\"down\""), 1);
	assert_non_null(strstr(page, "<rect class=\"leader\""));
	assert_non_null(strstr(page, "<title>m1 leader "));
	/* a passing run has no failure marker */
	assert_null(strstr(page, "class=\"failure\""));
	/* the index links to the page */
	free(page);
	page = read_in(dir, "index.html");
	assert_non_null(strstr(page, "href=\"kill-w1.html\""));
	assert_non_null(strstr(page, "PASS"));
	free(page);
	remove_report(dir, &fx.run, 1);
	fixture_free(&fx);
}

/* A failing run gets a red line at its failure's instant, and its message
 * is escaped everywhere (<, & and " never appear raw). */
static void test_report_failure_marker_and_escaping(void **state)
{
	struct fixture fx;
	const char *dir;
	char *page, want[128];

	(void)state;
	run_scenario(&fx, "scenarios/fails.scn",
		     "cluster managers=1 workers=1\n"
		     "run 5s\n"
		     "expect no leader\n");
	assert_false(fx.res.passed);
	snprintf(fx.res.message, sizeof fx.res.message, "bad <script> & \"quoted\"");
	timeline_finish(fx.tl, &fx.res);
	dir = write_report(&fx.run, 1, NULL);
	page = read_in(dir, "fails.html");

	assert_int_equal(count_of(page, "<g class=\"failure\">"), 1);
	/* failed at 5 s, the end of the run: the right edge of the axis */
	snprintf(want, sizeof want, "<g class=\"failure\"><line x1=\"%.1f\"",
		 (double)REPORT_SVG_LEFT + REPORT_SVG_PLOT_W);
	assert_non_null(strstr(page, want));
	assert_non_null(strstr(page, "stroke=\"#cf222e\""));
	assert_null(strstr(page, "<script>"));
	assert_null(strstr(page, "& \""));
	assert_non_null(strstr(page, "bad &lt;script&gt; &amp; &quot;quoted&quot;"));
	free(page);
	page = read_in(dir, "index.html");
	assert_non_null(strstr(page, "FAIL"));
	assert_null(strstr(page, "<script>"));
	assert_non_null(strstr(page, "bad &lt;script&gt; &amp; &quot;quoted&quot;"));
	free(page);
	remove_report(dir, &fx.run, 1);
	fixture_free(&fx);
}

static const char replace_text[] =
	"cluster managers=3 workers=3\n"
	"expect nodes ready == 6 within 60s\n"
	"service create web replicas=6 constraint=node.role==worker\n"
	"expect converged within 1m\n"
	"run 5s\n"
	"kill w1\n"
	"run 30s\n";

/* metrics.json is valid JSON with the stable keys; the figures of a worker
 * killed under a converged service are there. */
static void test_report_metrics_json_is_well_formed(void **state)
{
	struct fixture a, b;
	struct report_run runs[2];
	const struct metrics *m;
	const struct metrics_entry *e;
	const char *dir;
	char *json;
	static const char *const keys[] = {
		"\"scenarios\":[",
		"\"file\":",
		"\"seed\":",
		"\"passed\":",
		"\"metrics\":",
		"\"create_to_running_s\":",
		"\"dead_node_replaced_s\":",
		"\"spread_balance\":",
		"\"pending_reasons\":",
		"\"pending\":",
		"\"reschedules\":",
	};

	(void)state;
	run_scenario(&a, "scenarios/replace.scn", replace_text);
	run_scenario(&b, "scenarios/kill-w1.scn", kill_text);
	assert_true(a.res.passed);
	m = timeline_metrics(a.tl);
	e = metrics_find(m, METRICS_CREATE_S, "web");
	assert_non_null(e);
	assert_true(e->has_value);
	assert_true(e->value > 0 && e->value < 60);
	e = metrics_find(m, METRICS_REPLACE_S, "w1");
	assert_non_null(e);
	assert_true(e->has_value);
	assert_true(e->value > 0 && e->value < 30);
	e = metrics_find(m, METRICS_BALANCE, "web");
	assert_non_null(e);
	assert_true(e->value <= 1);
	e = metrics_find(m, METRICS_PENDING, "");
	assert_non_null(e);
	assert_true(e->value == 0);
	e = metrics_find(m, METRICS_RESCHEDULES, "");
	assert_non_null(e);
	assert_true(e->value >= 1); /* w1's tasks were replaced */

	runs[0] = a.run;
	runs[1] = b.run;
	dir = write_report(runs, 2, NULL);
	json = read_in(dir, "metrics.json");
	assert_true(json_valid(json));
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		assert_non_null(strstr(json, keys[i]));
	assert_int_equal(count_of(json, "\"file\":"), 2);
	assert_non_null(strstr(json, "\"file\":\"scenarios/replace.scn\""));
	/* the validator itself rejects broken JSON */
	assert_false(json_valid("{\"a\":[1,2}"));
	assert_false(json_valid("{\"a\":1,}"));
	assert_false(json_valid("{\"a\":\"x\ny\"}"));
	free(json);
	remove_report(dir, runs, 2);
	fixture_free(&a);
	fixture_free(&b);
}

/* A metrics.json read back as a baseline: slower creates, worse balance
 * and more pending tasks are regressions; small changes are not. */
static void test_metrics_baseline_flags_regressions(void **state)
{
	static const char base_text[] =
		"{\"scenarios\":[{\"file\":\"s.scn\",\"seed\":1,\"passed\":true,"
		"\"metrics\":{\"create_to_running_s\":{\"web\":3.000,\"db\":2.0,"
		"\"q\\\"x\":1.0},\"dead_node_replaced_s\":{\"w1\":16.0},"
		"\"spread_balance\":{\"web\":0},\"pending_reasons\":{},"
		"\"pending\":0,\"reschedules\":4}}]}";
	struct metrics_set set;
	struct metrics now;
	const struct metrics *base;
	char err[256];

	(void)state;
	assert_int_equal(
		metrics_set_parse(base_text, strlen(base_text), &set, err, sizeof err),
		0);
	assert_int_equal(set.count, 1);
	base = metrics_set_find(&set, "s.scn", 7); /* another seed: by file */
	assert_non_null(base);
	assert_non_null(metrics_find(base, METRICS_CREATE_S, "q\"x"));

	metrics_init(&now);
	assert_int_equal(metrics_add(&now, METRICS_CREATE_S, "web", true, 4.5),
			 0); /* +50%: yes */
	assert_int_equal(metrics_add(&now, METRICS_CREATE_S, "db", true, 2.9),
			 0); /* < 1 s: no */
	assert_int_equal(metrics_add(&now, METRICS_REPLACE_S, "w1", false, 0),
			 0); /* never: yes */
	assert_int_equal(metrics_add(&now, METRICS_BALANCE, "web", true, 1), 0); /* yes */
	assert_int_equal(metrics_add(&now, METRICS_PENDING, "", true, 0), 0);	 /* no */
	assert_int_equal(metrics_add(&now, METRICS_RESCHEDULES, "", true, 5), 0); /* no */
	assert_true(metrics_regressed(metrics_find(base, METRICS_CREATE_S, "web"),
				      metrics_find(&now, METRICS_CREATE_S, "web")));
	assert_false(metrics_regressed(metrics_find(base, METRICS_CREATE_S, "db"),
				       metrics_find(&now, METRICS_CREATE_S, "db")));
	assert_int_equal(metrics_regressions(base, &now), 3);
	assert_int_equal(metrics_regressions(NULL, &now), 0);
	metrics_free(&now);
	metrics_set_free(&set);

	/* bad baselines are refused with a reason */
	assert_int_equal(metrics_set_parse("{\"scenarios\":[", 14, &set, err, sizeof err),
			 CS_EINVAL);
	assert_true(err[0] != '\0');
	assert_int_equal(metrics_set_parse("[]", 2, &set, err, sizeof err), CS_EINVAL);
}

/* What report_metrics_json writes, metrics_set_parse reads back the same. */
static void test_metrics_json_round_trip(void **state)
{
	struct fixture fx;
	struct metrics_set set;
	const struct metrics *m, *back;
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *f;

	(void)state;
	run_scenario(&fx, "scenarios/replace.scn", replace_text);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	report_metrics_json(f, &fx.run, 1);
	fclose(f);
	assert_true(json_valid(buf));
	assert_int_equal(metrics_set_parse(buf, len, &set, err, sizeof err), 0);
	back = metrics_set_find(&set, "scenarios/replace.scn", 1);
	assert_non_null(back);
	m = timeline_metrics(fx.tl);
	assert_int_equal(back->count, m->count);
	for (size_t i = 0; i < m->count; i++) {
		const struct metrics_entry *e =
			metrics_find(back, m->entries[i].group, m->entries[i].key);
		assert_non_null(e);
		assert_int_equal(e->has_value, m->entries[i].has_value);
		assert_true(e->value - m->entries[i].value < 0.001 &&
			    m->entries[i].value - e->value < 0.001);
	}
	/* the same run against itself: nothing regressed */
	assert_int_equal(report_regressions(NULL, &fx.run, 1, &set), 0);
	metrics_set_free(&set);
	free(buf);
	fixture_free(&fx);
}

/* Pages of runs of one file are told apart by seed. */
static void test_report_page_names_are_unique(void **state)
{
	struct report_run runs[3] = {
		{.file = "scenarios/a.scn", .seed = 1},
		{.file = "other/a.scn", .seed = 2},
		{.file = "scenarios/b<x>.scn", .seed = 1},
	};
	char buf[64];

	(void)state;
	assert_string_equal(report_page_name(runs, 3, 0, buf, sizeof buf), "a-s1.html");
	assert_string_equal(report_page_name(runs, 3, 1, buf, sizeof buf), "a-s2.html");
	assert_string_equal(report_page_name(runs, 3, 2, buf, sizeof buf), "b_x_.html");
	assert_string_equal(report_page_name(runs, 1, 0, buf, sizeof buf), "a.html");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_page_has_rows_and_down_bar_at_kill_time),
		cmocka_unit_test(test_report_failure_marker_and_escaping),
		cmocka_unit_test(test_report_metrics_json_is_well_formed),
		cmocka_unit_test(test_metrics_baseline_flags_regressions),
		cmocka_unit_test(test_metrics_json_round_trip),
		cmocka_unit_test(test_report_page_names_are_unique),
	};
	return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
