/* Tests of the scenario parser (sim/scenario.c): the whole language of
 * SCENARIOS.md, and the exact message of each kind of bad input. */
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
#include "sim/scenario.h"

/* ---------------------------------------------------------------- helpers */

/* Parses text, which must be valid; prints the error when it is not. */
static void parse_ok(const char *text, struct scn_script *s)
{
	char err[1024] = "";
	int rv = scn_parse("scn.scn", text, strlen(text), s, err, sizeof err);

	if (rv)
		print_error("unexpected parse error: %s\n", err);
	assert_int_equal(rv, 0);
	assert_string_equal(err, "");
}

/* Parses text, which must fail with exactly want, leaving an empty script. */
static void parse_fails(const char *text, const char *want)
{
	struct scn_script s;
	char err[1024] = "";
	int rv = scn_parse("scn.scn", text, strlen(text), &s, err, sizeof err);

	assert_int_equal(rv, CS_EINVAL);
	assert_string_equal(err, want);
	assert_null(s.cmds);
	assert_null(s.path);
	assert_int_equal(s.cmd_count, 0);
}

/* Parses `cluster managers=3 workers=2` then line (as line 2), which must
 * fail with exactly want. */
static void line_fails(const char *line, const char *want)
{
	char text[8192];

	snprintf(text, sizeof text, "cluster managers=3 workers=2\n%s\n", line);
	parse_fails(text, want);
}

/* The one command on line 2, after `cluster managers=3 workers=2`. */
static const struct scn_cmd *line_cmd(const char *line, struct scn_script *s)
{
	char text[8192];

	snprintf(text, sizeof text, "cluster managers=3 workers=2\n%s\n", line);
	parse_ok(text, s);
	assert_int_equal(s->cmd_count, 2);
	return &s->cmds[1];
}

static void assert_node(struct scn_node n, enum scn_node_kind kind, uint32_t number)
{
	assert_int_equal(n.kind, kind);
	assert_int_equal(n.number, number);
}

/* ---------------------------------------------------------------- valid input */

static const char rich[] =
	"# every command and condition form\n"
	"seed 42\n"
	"set heartbeat=5s election-ticks=10 tick=1s history=5 snapshot-every=1000\n"
	"cluster managers=3 workers=4 cpus=2.5 memory=16G\n"
	"run 1.5s\n"
	"service create web replicas=8 image=nginx:1.25 constraint=node.role==worker "
	"constraint=node.labels.zone!=b reserve-cpu=0.5 reserve-mem=64M max-per-node=2 "
	"spread=node.labels.zone spread=rack restart=on-failure restart-delay=250ms "
	"restart-max=3 restart-window=2m update-parallelism=2 update-delay=10s "
	"update-failure-action=rollback update-order=start-first update-monitor=30s "
	"update-max-failure-ratio=25%\n"
	"service create agent mode=global\n"
	"service update web image=nginx:1.26 replicas=10\n"
	"service rm agent\n"
	"node add worker\n"
	"node add manager\n"
	"node rm w5\n"
	"node drain w1\n"
	"node pause w2\n"
	"node activate w2\n"
	"node label w3 zone=a\n"
	"node promote w4\n"
	"node demote m4\n"
	"kill m1\n"
	"kill w1 process\n"
	"restart m1\n"
	"partition m1 m2 | m3,w1 | *\n"
	"isolate leader\n"
	"link m1 m2 loss=0.2 delay=5ms..20ms dup=1% reorder=0.5\n"
	"link w1 -> m1 loss=100%\n"
	"heal\n"
	"image flaky pull=fail start=1s..2s exit=3 after=5s..10s\n"
	"expect leader within 10s\n"
	"expect no leader\n"
	"expect leader == m2\n"
	"expect leader!=m1\n"
	"expect running web == 8 within 1m\n"
	"expect running web on w2>=1\n"
	"expect store tasks web state=RUNNING <= 8\n"
	"expect nodes ready==9\n"
	"expect node w3 down\n"
	"expect node leader ready within 30s\n"
	"expect converged within 2m\n"
	"always leader\n"
	"always running web > 0\n";

static void test_scn_parses_every_command_and_condition(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;
	const struct scn_service *svc;
	const struct scn_partition *part;
	const struct scn_link *l;
	const struct scn_cond *cond;
	size_t i = 0;

	parse_ok(rich, &s);
	assert_string_equal(s.path, "scn.scn");
	assert_int_equal(s.cmd_count, 39);
	assert_true(s.has_seed);
	assert_int_equal(s.seed, 42);
	assert_int_equal(s.managers_total, 4);
	assert_int_equal(s.workers_total, 5);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_SEED);
	assert_int_equal(c->line, 2);
	assert_int_equal(c->u.seed, 42);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_SET);
	assert_int_equal(c->u.settings.set, SCN_SET_HEARTBEAT | SCN_SET_ELECTION_TICKS |
						    SCN_SET_TICK | SCN_SET_HISTORY |
						    SCN_SET_SNAPSHOT_EVERY);
	assert_int_equal(c->u.settings.heartbeat_ms, 5000);
	assert_int_equal(c->u.settings.election_ticks, 10);
	assert_int_equal(c->u.settings.tick_ms, 1000);
	assert_int_equal(c->u.settings.history, 5);
	assert_int_equal(c->u.settings.snapshot_every, 1000);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_CLUSTER);
	assert_int_equal(c->line, 4);
	assert_int_equal(c->u.cluster.managers, 3);
	assert_int_equal(c->u.cluster.workers, 4);
	assert_int_equal(c->u.cluster.millicpus, 2500);
	assert_int_equal(c->u.cluster.memory_bytes, 16ull << 30);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_RUN);
	assert_int_equal(c->u.run_ms, 1500);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_SERVICE_CREATE);
	svc = &c->u.service;
	assert_string_equal(svc->name, "web");
	assert_int_equal(svc->set,
			 SCN_SVC_REPLICAS | SCN_SVC_IMAGE | SCN_SVC_CONSTRAINT |
				 SCN_SVC_RESERVE_CPU | SCN_SVC_RESERVE_MEM |
				 SCN_SVC_MAX_PER_NODE | SCN_SVC_SPREAD | SCN_SVC_RESTART |
				 SCN_SVC_RESTART_DELAY | SCN_SVC_RESTART_MAX |
				 SCN_SVC_RESTART_WINDOW | SCN_SVC_UPDATE_PARALLELISM |
				 SCN_SVC_UPDATE_DELAY | SCN_SVC_UPDATE_FAILURE_ACTION |
				 SCN_SVC_UPDATE_ORDER | SCN_SVC_UPDATE_MONITOR |
				 SCN_SVC_UPDATE_MAX_FAILURE_RATIO);
	assert_int_equal(svc->replicas, 8);
	assert_int_equal(svc->mode, SCN_MODE_REPLICATED);
	assert_string_equal(svc->image, "nginx:1.25");
	assert_int_equal(svc->constraint_count, 2);
	assert_string_equal(svc->constraints[0].key, "node.role");
	assert_true(svc->constraints[0].equal);
	assert_string_equal(svc->constraints[0].value, "worker");
	assert_string_equal(svc->constraints[0].text, "node.role==worker");
	assert_string_equal(svc->constraints[1].key, "node.labels.zone");
	assert_false(svc->constraints[1].equal);
	assert_string_equal(svc->constraints[1].value, "b");
	assert_int_equal(svc->reserve_millicpu, 500);
	assert_int_equal(svc->reserve_mem_bytes, 64ull << 20);
	assert_int_equal(svc->max_per_node, 2);
	assert_int_equal(svc->spread_count, 2);
	assert_string_equal(svc->spreads[0], "zone");
	assert_string_equal(svc->spreads[1], "rack");
	assert_int_equal(svc->restart, SCN_RESTART_ON_FAILURE);
	assert_int_equal(svc->restart_delay_ms, 250);
	assert_int_equal(svc->restart_max, 3);
	assert_int_equal(svc->restart_window_ms, 120000);
	assert_int_equal(svc->update_parallelism, 2);
	assert_int_equal(svc->update_delay_ms, 10000);
	assert_int_equal(svc->update_failure_action, SCN_FA_ROLLBACK);
	assert_int_equal(svc->update_order, SCN_ORDER_START_FIRST);
	assert_int_equal(svc->update_monitor_ms, 30000);
	assert_int_equal(svc->update_max_failure_ratio_ppm, 250000);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_SERVICE_CREATE);
	assert_string_equal(c->u.service.name, "agent");
	assert_int_equal(c->u.service.set, SCN_SVC_MODE);
	assert_int_equal(c->u.service.mode, SCN_MODE_GLOBAL);
	assert_int_equal(c->u.service.replicas, 0);
	assert_null(c->u.service.image);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_SERVICE_UPDATE);
	assert_string_equal(c->u.service.name, "web");
	assert_int_equal(c->u.service.set, SCN_SVC_IMAGE | SCN_SVC_REPLICAS);
	assert_string_equal(c->u.service.image, "nginx:1.26");
	assert_int_equal(c->u.service.replicas, 10);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_SERVICE_RM);
	assert_string_equal(c->u.service_name, "agent");

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_ADD);
	assert_false(c->u.add_manager);
	assert_node(c->u.node.added, SCN_NODE_WORKER, 5);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_ADD);
	assert_true(c->u.add_manager);
	assert_node(c->u.node.added, SCN_NODE_MANAGER, 4);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_RM);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 5);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_DRAIN);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 1);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_PAUSE);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 2);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_ACTIVATE);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 2);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_LABEL);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 3);
	assert_string_equal(c->u.node.label_key, "zone");
	assert_string_equal(c->u.node.label_value, "a");
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_PROMOTE);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 4);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_NODE_DEMOTE);
	assert_node(c->u.node.node, SCN_NODE_MANAGER, 4);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_KILL);
	assert_node(c->u.node.node, SCN_NODE_MANAGER, 1);
	assert_false(c->u.node.process_only);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_KILL);
	assert_node(c->u.node.node, SCN_NODE_WORKER, 1);
	assert_true(c->u.node.process_only);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_RESTART);
	assert_node(c->u.node.node, SCN_NODE_MANAGER, 1);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_PARTITION);
	part = &c->u.partition;
	assert_int_equal(part->group_count, 3);
	assert_false(part->groups[0].star);
	assert_int_equal(part->groups[0].node_count, 2);
	assert_node(part->groups[0].nodes[0], SCN_NODE_MANAGER, 1);
	assert_node(part->groups[0].nodes[1], SCN_NODE_MANAGER, 2);
	assert_int_equal(part->groups[1].node_count, 2);
	assert_node(part->groups[1].nodes[0], SCN_NODE_MANAGER, 3);
	assert_node(part->groups[1].nodes[1], SCN_NODE_WORKER, 1);
	assert_true(part->groups[2].star);
	assert_int_equal(part->groups[2].node_count, 0);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_ISOLATE);
	part = &c->u.partition;
	assert_int_equal(part->group_count, 2);
	assert_int_equal(part->groups[0].node_count, 1);
	assert_node(part->groups[0].nodes[0], SCN_NODE_LEADER, 0);
	assert_true(part->groups[1].star);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_LINK);
	l = &c->u.link;
	assert_node(l->a, SCN_NODE_MANAGER, 1);
	assert_node(l->b, SCN_NODE_MANAGER, 2);
	assert_false(l->one_way);
	assert_true(l->has_loss && l->has_delay && l->has_dup && l->has_reorder);
	assert_int_equal(l->loss_ppm, 200000);
	assert_int_equal(l->delay.min_ms, 5);
	assert_int_equal(l->delay.max_ms, 20);
	assert_int_equal(l->dup_ppm, 10000);
	assert_int_equal(l->reorder_ppm, 500000);
	c = &s.cmds[i++];
	l = &c->u.link;
	assert_node(l->a, SCN_NODE_WORKER, 1);
	assert_node(l->b, SCN_NODE_MANAGER, 1);
	assert_true(l->one_way);
	assert_true(l->has_loss);
	assert_false(l->has_delay || l->has_dup || l->has_reorder);
	assert_int_equal(l->loss_ppm, 1000000);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_HEAL);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_IMAGE);
	assert_string_equal(c->u.image.name, "flaky");
	assert_true(c->u.image.pull_fail);
	assert_true(c->u.image.has_start);
	assert_int_equal(c->u.image.start.min_ms, 1000);
	assert_int_equal(c->u.image.start.max_ms, 2000);
	assert_true(c->u.image.has_exit);
	assert_int_equal(c->u.image.exit_code, 3);
	assert_int_equal(c->u.image.exit_after.min_ms, 5000);
	assert_int_equal(c->u.image.exit_after.max_ms, 10000);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_EXPECT);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_LEADER);
	assert_true(c->u.expect.has_within);
	assert_int_equal(c->u.expect.within_ms, 10000);
	c = &s.cmds[i++];
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_NO_LEADER);
	assert_false(c->u.expect.has_within);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_LEADER_IS);
	assert_int_equal(cond->op, SCN_OP_EQ);
	assert_node(cond->node, SCN_NODE_MANAGER, 2);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_LEADER_IS);
	assert_int_equal(cond->op, SCN_OP_NE);
	assert_node(cond->node, SCN_NODE_MANAGER, 1);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_RUNNING);
	assert_string_equal(cond->service, "web");
	assert_false(cond->has_node);
	assert_int_equal(cond->op, SCN_OP_EQ);
	assert_int_equal(cond->count, 8);
	assert_int_equal(c->u.expect.within_ms, 60000);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_RUNNING);
	assert_true(cond->has_node);
	assert_node(cond->node, SCN_NODE_WORKER, 2);
	assert_int_equal(cond->op, SCN_OP_GE);
	assert_int_equal(cond->count, 1);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_STORE_TASKS);
	assert_string_equal(cond->service, "web");
	assert_int_equal(cond->state, SCN_TS_RUNNING);
	assert_int_equal(cond->op, SCN_OP_LE);
	assert_int_equal(cond->count, 8);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_NODES_READY);
	assert_int_equal(cond->op, SCN_OP_EQ);
	assert_int_equal(cond->count, 9);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_NODE_STATUS);
	assert_node(cond->node, SCN_NODE_WORKER, 3);
	assert_false(cond->node_ready);
	c = &s.cmds[i++];
	cond = &c->u.expect.cond;
	assert_int_equal(cond->kind, SCN_COND_NODE_STATUS);
	assert_node(cond->node, SCN_NODE_LEADER, 0);
	assert_true(cond->node_ready);
	assert_int_equal(c->u.expect.within_ms, 30000);
	c = &s.cmds[i++];
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_CONVERGED);
	assert_int_equal(c->u.expect.within_ms, 120000);

	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_ALWAYS);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_LEADER);
	assert_false(c->u.expect.has_within);
	c = &s.cmds[i++];
	assert_int_equal(c->kind, SCN_ALWAYS);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_RUNNING);
	assert_int_equal(c->u.expect.cond.op, SCN_OP_GT);
	assert_int_equal(c->u.expect.cond.count, 0);
	assert_int_equal(c->line, 40);
	assert_string_equal(c->text, "always running web > 0");

	assert_int_equal(i, s.cmd_count);
	scn_free(&s);
	assert_null(s.cmds);
	assert_int_equal(s.cmd_count, 0);
}

/* await (an addition) parses like a timed expect; it needs its duration. */
static void test_scn_await_needs_within(void **state)
{
	struct scn_script s;
	char err[256];

	assert_int_equal(
		scn_parse("t.scn",
			  "cluster managers=1\nawait running web >= 2 within 5s\n", 52,
			  &s, err, sizeof err),
		0);
	assert_int_equal(s.cmds[1].kind, SCN_AWAIT);
	assert_true(s.cmds[1].u.expect.has_within);
	assert_int_equal(s.cmds[1].u.expect.within_ms, 5000);
	assert_string_equal(scn_cmd_name(SCN_AWAIT), "await");
	scn_free(&s);
	assert_int_equal(
		scn_parse("t.scn", "cluster\nawait leader\n", 21, &s, err, sizeof err),
		CS_EINVAL);
	assert_non_null(strstr(err, "t.scn:2:"));
	assert_non_null(strstr(err, "'within DUR'"));
}

static void test_scn_keeps_text_line_and_column_without_comment(void **state)
{
	struct scn_script s;
	const char *text = "\n"
			   "   # only a comment\n"
			   "cluster managers=1   # one manager\r\n"
			   "\t  run   250ms\t# indented\n"
			   "\n"
			   "run 1s#no space before the comment";

	parse_ok(text, &s);
	assert_int_equal(s.cmd_count, 3);
	assert_int_equal(s.cmds[0].line, 3);
	assert_int_equal(s.cmds[0].col, 1);
	assert_string_equal(s.cmds[0].text, "cluster managers=1");
	assert_int_equal(s.cmds[1].line, 4);
	assert_int_equal(s.cmds[1].col, 4);
	assert_string_equal(s.cmds[1].text, "run   250ms");
	assert_int_equal(s.cmds[1].u.run_ms, 250);
	assert_int_equal(s.cmds[2].line, 6);
	assert_string_equal(s.cmds[2].text, "run 1s");
	assert_int_equal(s.cmds[2].u.run_ms, 1000);
	scn_free(&s);
}

static void test_scn_cluster_defaults_to_one_manager_four_cpus_8g(void **state)
{
	struct scn_script s;

	parse_ok("cluster\n", &s);
	assert_int_equal(s.cmds[0].u.cluster.managers, 1);
	assert_int_equal(s.cmds[0].u.cluster.workers, 0);
	assert_int_equal(s.cmds[0].u.cluster.millicpus, 4000);
	assert_int_equal(s.cmds[0].u.cluster.memory_bytes, 8ull << 30);
	assert_int_equal(s.managers_total, 1);
	assert_int_equal(s.workers_total, 0);
	assert_false(s.has_seed);
	scn_free(&s);
}

static void test_scn_reads_durations_with_units_and_decimals(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} cases[] = {
		{"0s", 0},	 {"250ms", 250},
		{"5s", 5000},	 {"1.5s", 1500},
		{"2m", 120000},	 {"0.5m", 30000},
		{"1h", 3600000}, {"1.25h", 4500000},
		{"0.001s", 1},	 {"720h", 720ull * 3600 * 1000},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct scn_script s;
		char line[64];

		snprintf(line, sizeof line, "run %s", cases[i].text);
		assert_int_equal(line_cmd(line, &s)->u.run_ms, cases[i].ms);
		scn_free(&s);
	}
}

/* Durations as Go and Docker write them (docker service create
 * --update-delay 1m30s): several number-unit parts in a row, summed; in a
 * range too. The whole token stays what a message names. */
static void test_scn_reads_compound_durations(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} cases[] = {
		{"1m30s", 90000},    {"1h30m", 5400000},
		{"2s500ms", 2500},   {"1h0m0s", 3600000},
		{"1.5m30s", 120000}, {"719h60m", 720ull * 3600 * 1000},
	};
	struct scn_script s;
	const struct scn_cmd *c;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char line[64];

		snprintf(line, sizeof line, "run %s", cases[i].text);
		assert_int_equal(line_cmd(line, &s)->u.run_ms, cases[i].ms);
		scn_free(&s);
	}
	c = line_cmd("link m1 m2 delay=1s500ms..2m1s", &s);
	assert_int_equal(c->u.link.delay.min_ms, 1500);
	assert_int_equal(c->u.link.delay.max_ms, 121000);
	scn_free(&s);
	c = line_cmd("expect leader within 1m30s", &s);
	assert_int_equal(c->u.expect.within_ms, 90000);
	scn_free(&s);
	line_fails("run 1m30", "scn.scn:2:5: bad duration '1m30' (missing unit: expected "
			       "ms, s, m or h, like 5s)");
	line_fails("run 1m30x", "scn.scn:2:5: bad duration '1m30x' (expected a number "
				"with ms, s, m or h, like 250ms or 5s)");
	line_fails("run 719h61m", "scn.scn:2:5: duration '719h61m' is over the limit of "
				  "720h (LIMIT_SCN_DURATION_MS_MAX)");
}

static void test_scn_reads_sizes_as_binary_multiples(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} cases[] = {
		{"1024", 1024},	    {"100b", 100},	  {"1K", 1024},
		{"1k", 1024},	    {"64M", 64ull << 20}, {"512MiB", 512ull << 20},
		{"2G", 2ull << 30}, {"3GB", 3ull << 30},  {"1.5G", 3ull << 29},
		{"1T", 1ull << 40}, {"2tb", 2ull << 40},  {"0.1K", 102},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct scn_script s;
		char text[64];

		snprintf(text, sizeof text, "cluster memory=%s\n", cases[i].text);
		parse_ok(text, &s);
		assert_int_equal(s.cmds[0].u.cluster.memory_bytes, cases[i].bytes);
		scn_free(&s);
	}
}

static void test_scn_reads_probabilities_as_fraction_or_percent(void **state)
{
	static const struct {
		const char *text;
		uint32_t ppm;
	} cases[] = {
		{"0", 0},	   {"1", 1000000},    {"0.2", 200000}, {"20%", 200000},
		{"12.5%", 125000}, {"100%", 1000000}, {"0.000001", 1}, {"1.0", 1000000},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct scn_script s;
		char line[64];

		snprintf(line, sizeof line, "link m1 w2 dup=%s", cases[i].text);
		assert_int_equal(line_cmd(line, &s)->u.link.dup_ppm, cases[i].ppm);
		scn_free(&s);
	}
}

static void test_scn_reads_ops_with_or_without_spaces(void **state)
{
	static const struct {
		const char *text;
		enum scn_op op;
	} cases[] = {
		{"expect running web == 8", SCN_OP_EQ},
		{"expect running web==8", SCN_OP_EQ},
		{"expect running web !=8", SCN_OP_NE},
		{"expect running web< 8", SCN_OP_LT},
		{"expect running web<=8", SCN_OP_LE},
		{"expect running web >8", SCN_OP_GT},
		{"expect running web>= 8", SCN_OP_GE},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct scn_script s;
		const struct scn_cmd *c = line_cmd(cases[i].text, &s);

		assert_int_equal(c->u.expect.cond.kind, SCN_COND_RUNNING);
		assert_string_equal(c->u.expect.cond.service, "web");
		assert_int_equal(c->u.expect.cond.op, cases[i].op);
		assert_int_equal(c->u.expect.cond.count, 8);
		scn_free(&s);
	}
}

static void test_scn_node_add_names_the_next_node_which_then_exists(void **state)
{
	struct scn_script s;

	parse_ok("cluster managers=1\n"
		 "node add worker\n"
		 "node add manager\n"
		 "node add worker\n"
		 "kill w2\n"
		 "link m2 -> w1 delay=1s\n",
		 &s);
	assert_node(s.cmds[1].u.node.added, SCN_NODE_WORKER, 1);
	assert_node(s.cmds[2].u.node.added, SCN_NODE_MANAGER, 2);
	assert_node(s.cmds[3].u.node.added, SCN_NODE_WORKER, 2);
	assert_node(s.cmds[4].u.node.node, SCN_NODE_WORKER, 2);
	assert_int_equal(s.managers_total, 2);
	assert_int_equal(s.workers_total, 2);
	assert_int_equal(s.cmds[5].u.link.delay.min_ms, 1000);
	assert_int_equal(s.cmds[5].u.link.delay.max_ms, 1000);
	scn_free(&s);
}

/* link A -> B needs no blanks around the arrow, as partition A|B needs
 * none around the bar: `link m1->m2`, `link m1 ->m2` and `link m1-> m2`
 * are the one-way link of `link m1 -> m2` (and the columns stay the
 * line's). */
static void test_scn_link_arrow_needs_no_blanks(void **state)
{
	static const char *const lines[] = {
		"link m1->w2 loss=1",
		"link m1 ->w2 loss=1",
		"link m1-> w2 loss=1",
		"link m1 -> w2 loss=1",
	};

	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		struct scn_script s;
		const struct scn_cmd *c = line_cmd(lines[i], &s);

		assert_int_equal(c->kind, SCN_LINK);
		assert_true(c->u.link.one_way);
		assert_node(c->u.link.a, SCN_NODE_MANAGER, 1);
		assert_node(c->u.link.b, SCN_NODE_WORKER, 2);
		assert_int_equal(c->u.link.loss_ppm, 1000000);
		scn_free(&s);
	}
	line_fails("link m1->m1",
		   "scn.scn:2:10: link needs two different nodes, got m1 twice");
	line_fails("link m1->", "scn.scn:2:10: expected a node (mN, wN or leader) after "
				"'link m1->', got end of line");
}

static void test_scn_service_update_sets_only_given_keys(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c =
		line_cmd("service update web update-delay=2s spread=zone", &s);

	assert_int_equal(c->kind, SCN_SERVICE_UPDATE);
	assert_int_equal(c->u.service.set, SCN_SVC_UPDATE_DELAY | SCN_SVC_SPREAD);
	assert_int_equal(c->u.service.update_delay_ms, 2000);
	assert_int_equal(c->u.service.replicas, 0);
	assert_int_equal(c->u.service.update_parallelism, 0);
	assert_string_equal(c->u.service.spreads[0], "zone");
	scn_free(&s);
}

static void test_scn_service_update_force_and_rollback_keys(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c =
		line_cmd("service update web force rollback-parallelism=2 "
			 "rollback-delay=30s rollback-failure-action=continue "
			 "rollback-monitor=1m rollback-max-failure-ratio=0.5 "
			 "rollback-order=start-first",
			 &s);

	assert_int_equal(c->kind, SCN_SERVICE_UPDATE);
	assert_true(c->u.service.force);
	assert_int_equal(
		c->u.service.set,
		SCN_SVC_ROLLBACK_PARALLELISM | SCN_SVC_ROLLBACK_DELAY |
			SCN_SVC_ROLLBACK_FAILURE_ACTION | SCN_SVC_ROLLBACK_MONITOR |
			SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO | SCN_SVC_ROLLBACK_ORDER);
	assert_int_equal(c->u.service.rollback_parallelism, 2);
	assert_int_equal(c->u.service.rollback_delay_ms, 30000);
	assert_int_equal(c->u.service.rollback_failure_action, SCN_FA_CONTINUE);
	assert_int_equal(c->u.service.rollback_monitor_ms, 60000);
	assert_int_equal(c->u.service.rollback_max_failure_ratio_ppm, 500000);
	assert_int_equal(c->u.service.rollback_order, SCN_ORDER_START_FIRST);
	scn_free(&s);
	/* force alone is a whole update; never on create, never twice */
	c = line_cmd("service update web force", &s);
	assert_true(c->u.service.force);
	assert_int_equal(c->u.service.set, 0);
	scn_free(&s);
	line_fails("service update web force force", "scn.scn:2:26: force given twice");
	line_fails(
		"service create web force",
		"scn.scn:2:20: expected KEY=VALUE for service create, got 'force' "
		"(keys: replicas, mode, image, constraint, reserve-cpu, reserve-mem, "
		"max-per-node, spread, restart, restart-delay, restart-max, "
		"restart-window, update-parallelism, update-delay, "
		"update-failure-action, update-order, update-monitor, "
		"update-max-failure-ratio, env, env-bytes, max-concurrent, "
		"health-cmd, health-interval, health-timeout, health-retries, "
		"health-start-period, stop-grace-period, rollback-parallelism, "
		"rollback-delay, rollback-failure-action, rollback-monitor, "
		"rollback-max-failure-ratio, rollback-order, network, publish, rebalance, "
		"rebalance-parallelism, secret, config)");
}

static void test_scn_set_orphan_delay_goes_after_cluster(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("set orphan-delay=2m", &s);

	assert_int_equal(c->kind, SCN_SET);
	assert_int_equal(c->u.settings.set, SCN_SET_ORPHAN_DELAY);
	assert_int_equal(c->u.settings.orphan_delay_ms, 120000);
	scn_free(&s);
	parse_fails("set orphan-delay=2m\ncluster\n",
		    "scn.scn:1:5: orphan-delay is written to the running cluster's "
		    "record: set it after 'cluster'");
	line_fails("set orphan-delay=500ms",
		   "scn.scn:2:18: orphan-delay must be at least 1s");
	/* the heartbeat's floor, before `cluster` (the managers' own) and
	 * after (the control API's): bad input, nothing run */
	line_fails("set heartbeat=9ms", "scn.scn:2:15: heartbeat must be at least 10ms "
					"(LIMIT_HEARTBEAT_MS_MIN)");
	parse_fails("set heartbeat=0s\ncluster\n",
		    "scn.scn:1:15: heartbeat must be at least 10ms "
		    "(LIMIT_HEARTBEAT_MS_MIN)");
	c = line_cmd("set heartbeat=10ms", &s);
	assert_int_equal(c->u.settings.heartbeat_ms, 10);
	scn_free(&s);
	line_fails(
		"set orphan-delay=1m cert-expiry=1h",
		"scn.scn:2:21: orphan-delay and cert-expiry: one set command each (each "
		"is its own control API call)");
}

/* Issue 17 (encrypted overlays): network create ... encrypted=yes|no,
 * network keys rotate, set network-key-rotation=DUR (after cluster, alone),
 * and the condition network keys newest OP N. */
static void test_scn_network_key_forms(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;
	(void)state;

	c = line_cmd("network create secure encrypted=yes", &s);
	assert_int_equal(c->kind, SCN_NETWORK_CREATE);
	assert_string_equal(c->u.network.name, "secure");
	assert_true(c->u.network.encrypted);
	scn_free(&s);
	c = line_cmd("network create plain encrypted=no driver=bridge", &s);
	assert_false(c->u.network.encrypted);
	assert_string_equal(c->u.network.driver, "bridge");
	scn_free(&s);
	line_fails("network create x encrypted=maybe",
		   "scn.scn:2:28: encrypted: yes or no");
	c = line_cmd("network keys rotate", &s);
	assert_int_equal(c->kind, SCN_NETWORK_KEYS_ROTATE);
	scn_free(&s);
	line_fails("network keys",
		   "scn.scn:2:13: expected rotate after 'network keys', got end of line");
	line_fails("network keys rotate now",
		   "scn.scn:2:21: unexpected 'now' after complete command 'network keys "
		   "rotate'");
	c = line_cmd("set network-key-rotation=5m", &s);
	assert_int_equal(c->kind, SCN_SET);
	assert_int_equal(c->u.settings.set, SCN_SET_NET_KEY_ROTATION);
	assert_int_equal(c->u.settings.net_key_rotation_ms, 300000);
	scn_free(&s);
	line_fails("set network-key-rotation=30s",
		   "scn.scn:2:26: network-key-rotation must be at least 1m");
	parse_fails("set network-key-rotation=5m\ncluster\n",
		    "scn.scn:1:5: network-key-rotation is written to the running "
		    "cluster's record: set it after 'cluster'");
	line_fails("set orphan-delay=1m network-key-rotation=5m",
		   "scn.scn:2:21: network-key-rotation: a set command of its own (its "
		   "own control API call)");
	c = line_cmd("expect network keys newest >= 4 within 30s", &s);
	assert_int_equal(c->kind, SCN_EXPECT);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_NET_KEYS);
	assert_int_equal(c->u.expect.cond.op, SCN_OP_GE);
	assert_int_equal(c->u.expect.cond.count, 4);
	scn_free(&s);
	line_fails("expect network keys == 3",
		   "scn.scn:2:21: expected 'newest' after 'network keys', got '=='");
}

static void test_scn_service_create_starts_from_docker_defaults(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("service create web", &s);

	assert_int_equal(c->u.service.set, 0);
	assert_int_equal(c->u.service.replicas, 1);
	assert_int_equal(c->u.service.mode, SCN_MODE_REPLICATED);
	assert_int_equal(c->u.service.restart, SCN_RESTART_ANY);
	assert_int_equal(c->u.service.restart_delay_ms, 5000);
	assert_int_equal(c->u.service.update_parallelism, 1);
	assert_int_equal(c->u.service.update_monitor_ms, 5000);
	assert_int_equal(c->u.service.update_failure_action, SCN_FA_PAUSE);
	assert_int_equal(c->u.service.update_order, SCN_ORDER_STOP_FIRST);
	scn_free(&s);
}

static void test_scn_service_env_keeps_each_variable_in_order(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd(
		"service create web env=LANG=C env=OPTS=a=b,c=d env=EMPTY= replicas=2",
		&s);

	assert_int_equal(c->u.service.set, SCN_SVC_ENV | SCN_SVC_REPLICAS);
	assert_int_equal(c->u.service.env_count, 3);
	assert_string_equal(c->u.service.envs[0], "LANG=C");
	assert_string_equal(c->u.service.envs[1], "OPTS=a=b,c=d");
	assert_string_equal(c->u.service.envs[2], "EMPTY=");
	scn_free(&s);
}

static void test_scn_service_env_bytes_adds_one_pad_variable(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c =
		line_cmd("service update web env=A=1 env-bytes=1K env=B=2", &s);
	const char *pad;

	assert_int_equal(c->kind, SCN_SERVICE_UPDATE);
	assert_int_equal(c->u.service.set, SCN_SVC_ENV | SCN_SVC_ENV_BYTES);
	assert_int_equal(c->u.service.env_count, 3);
	assert_string_equal(c->u.service.envs[0], "A=1");
	assert_string_equal(c->u.service.envs[2], "B=2");
	pad = c->u.service.envs[1];
	assert_int_equal(strlen(pad), 4 + 1024);
	assert_memory_equal(pad, "PAD=", 4);
	assert_int_equal(strspn(pad + 4, "x"), 1024);
	scn_free(&s);

	c = line_cmd("service create web env-bytes=0", &s);
	assert_int_equal(c->u.service.env_count, 1);
	assert_string_equal(c->u.service.envs[0], "PAD=");
	scn_free(&s);
}

static void test_scn_service_without_env_has_none(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("service update web image=b", &s);

	assert_int_equal(c->u.service.set & (SCN_SVC_ENV | SCN_SVC_ENV_BYTES), 0);
	assert_int_equal(c->u.service.env_count, 0);
	assert_null(c->u.service.envs);
	scn_free(&s);
}

static void test_scn_rejects_bad_env(void **state)
{
	line_fails(
		"service create web env=LANG",
		"scn.scn:2:24: bad env 'LANG' (expected KEY=VALUE with a non-empty KEY, "
		"like env=LANG=C)");
	line_fails("service update web env==C",
		   "scn.scn:2:24: bad env '=C' (expected KEY=VALUE with a non-empty KEY, "
		   "like env=LANG=C)");
	line_fails("service create web env=", "scn.scn:2:24: missing value after 'env='");
	line_fails(
		"service create web env=A=1 env-bytes=1Q",
		"scn.scn:2:38: bad size '1Q' (expected bytes or a number with K, M, G or "
		"T, like 512M or 2G)");
	line_fails("service create web env-bytes=2M",
		   "scn.scn:2:30: env-bytes '2M' is over the limit of 1048576 bytes "
		   "(LIMIT_SCN_ENV_BYTES_MAX)");
	line_fails("service create web env-bytes=1K env-bytes=2K",
		   "scn.scn:2:33: duplicate key 'env-bytes' (first given at column 20)");
}

static void test_scn_rejects_more_env_than_the_limit(void **state)
{
	char line[LIMIT_SCN_LINE_BYTES_MAX];
	char want[256];
	size_t n = (size_t)snprintf(line, sizeof line, "service create web");
	uint32_t col = 0;

	for (uint32_t i = 0; i <= LIMIT_SCN_ENVS_MAX; i++) {
		col = (uint32_t)n + 2;
		n += (size_t)snprintf(line + n, sizeof line - n,
				      " env=%c=", 'A' + (int)(i % 26));
		assert_true(n < sizeof line);
	}
	snprintf(want, sizeof want,
		 "scn.scn:2:%u: more than %u environment variables (LIMIT_SCN_ENVS_MAX)",
		 col, LIMIT_SCN_ENVS_MAX);
	line_fails(line, want);
}

static void test_scn_names_nodes_commands_states_and_ops(void **state)
{
	char buf[16];

	assert_string_equal(
		scn_node_name((struct scn_node){SCN_NODE_MANAGER, 3}, buf, sizeof buf),
		"m3");
	assert_string_equal(
		scn_node_name((struct scn_node){SCN_NODE_WORKER, 12}, buf, sizeof buf),
		"w12");
	assert_string_equal(
		scn_node_name((struct scn_node){SCN_NODE_LEADER, 0}, buf, sizeof buf),
		"leader");
	assert_string_equal(scn_cmd_name(SCN_CLUSTER), "cluster");
	assert_string_equal(scn_cmd_name(SCN_SERVICE_UPDATE), "service update");
	assert_string_equal(scn_cmd_name(SCN_NODE_DEMOTE), "node demote");
	assert_string_equal(scn_cmd_name(SCN_ALWAYS), "always");
	assert_string_equal(scn_task_state_name(SCN_TS_NEW), "new");
	assert_string_equal(scn_task_state_name(SCN_TS_RUNNING), "running");
	assert_string_equal(scn_task_state_name(SCN_TS_ORPHANED), "orphaned");
	assert_string_equal(scn_op_text(SCN_OP_EQ), "==");
	assert_string_equal(scn_op_text(SCN_OP_NE), "!=");
	assert_string_equal(scn_op_text(SCN_OP_LE), "<=");
	assert_string_equal(scn_op_text(SCN_OP_GE), ">=");
}

static void test_scn_op_holds_compares_got_with_want(void **state)
{
	assert_true(scn_op_holds(SCN_OP_EQ, 8, 8));
	assert_false(scn_op_holds(SCN_OP_EQ, 7, 8));
	assert_true(scn_op_holds(SCN_OP_NE, 7, 8));
	assert_false(scn_op_holds(SCN_OP_NE, 8, 8));
	assert_true(scn_op_holds(SCN_OP_LT, 7, 8));
	assert_false(scn_op_holds(SCN_OP_LT, 8, 8));
	assert_true(scn_op_holds(SCN_OP_LE, 8, 8));
	assert_false(scn_op_holds(SCN_OP_LE, 9, 8));
	assert_true(scn_op_holds(SCN_OP_GT, 9, 8));
	assert_false(scn_op_holds(SCN_OP_GT, 8, 8));
	assert_true(scn_op_holds(SCN_OP_GE, 8, 8));
	assert_false(scn_op_holds(SCN_OP_GE, 7, 8));
}

static void test_scn_parse_file_reads_a_file_and_names_an_unreadable_one(void **state)
{
	char path[] = "/tmp/test_scenario_XXXXXX";
	struct scn_script s;
	char err[512] = "";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("cluster managers=3\nrun 2m\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(scn_parse_file(path, &s, err, sizeof err), 0);
	assert_string_equal(s.path, path);
	assert_int_equal(s.cmd_count, 2);
	assert_int_equal(s.cmds[1].u.run_ms, 120000);
	scn_free(&s);
	assert_int_equal(unlink(path), 0);

	assert_int_equal(scn_parse_file(path, &s, err, sizeof err), CS_EINVAL);
	assert_true(strncmp(err, path, strlen(path)) == 0);
	assert_string_equal(err + strlen(path),
			    ": cannot read: No such file or directory");
	assert_null(s.cmds);
	assert_int_equal(scn_parse_file("/tmp", &s, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
}

/* ---------------------------------------------------------------- bad input */

static void test_scn_rejects_unknown_command(void **state)
{
	line_fails(
		"serivce create web",
		"scn.scn:2:1: unknown command 'serivce' (expected cluster, seed, set, run, "
		"service, node, kill, restart, partition, isolate, link, heal, image, runtime, "
		"disk, cert, forge, expect, always, await, network, refuse)");
}

static void test_scn_rejects_unknown_key_naming_the_allowed_ones(void **state)
{
	line_fails(
		"service create web replica=3",
		"scn.scn:2:20: unknown key 'replica' for service create (expected replicas, "
		"mode, image, constraint, reserve-cpu, reserve-mem, max-per-node, spread, "
		"restart, restart-delay, restart-max, restart-window, update-parallelism, "
		"update-delay, update-failure-action, update-order, update-monitor, "
		"update-max-failure-ratio, env, env-bytes, max-concurrent, health-cmd, health-interval, "
		"health-timeout, health-retries, health-start-period, stop-grace-period, "
		"rollback-parallelism, rollback-delay, rollback-failure-action, rollback-monitor, "
		"rollback-max-failure-ratio, rollback-order, network, publish, rebalance, "
		"rebalance-parallelism, secret, config)");
	line_fails(
		"link m1 m2 jitter=5ms",
		"scn.scn:2:12: unknown key 'jitter' for link (expected loss, delay, dup, "
		"reorder)");
}

static void test_scn_rejects_duplicate_key(void **state)
{
	line_fails("service create web replicas=3 image=a replicas=4",
		   "scn.scn:2:39: duplicate key 'replicas' (first given at column 20)");
}

static void test_scn_rejects_a_word_where_key_value_belongs(void **state)
{
	parse_fails("cluster 3\n",
		    "scn.scn:1:9: expected KEY=VALUE for cluster, got '3' (keys: "
		    "managers, workers, cpus, memory)");
}

static void test_scn_rejects_missing_value(void **state)
{
	line_fails("service create web image=",
		   "scn.scn:2:26: missing value after 'image='");
}

static void test_scn_rejects_bad_duration(void **state)
{
	line_fails("run 5x",
		   "scn.scn:2:5: bad duration '5x' (expected a number with ms, s, m "
		   "or h, like 250ms or 5s)");
	line_fails(
		"service create web restart-delay=5x",
		"scn.scn:2:34: bad duration '5x' (expected a number with ms, s, m or h, like "
		"250ms or 5s)");
	line_fails("run 1.s",
		   "scn.scn:2:5: bad duration '1.s' (expected a number with ms, s, "
		   "m or h, like 250ms or 5s)");
}

static void test_scn_rejects_duration_without_unit(void **state)
{
	line_fails("run 5",
		   "scn.scn:2:5: bad duration '5' (missing unit: expected ms, s, m or "
		   "h, like 5s)");
}

static void test_scn_rejects_duration_finer_than_a_millisecond(void **state)
{
	line_fails("run 1.5ms", "scn.scn:2:5: bad duration '1.5ms' (finer than 1ms)");
}

static void test_scn_rejects_duration_over_the_limit(void **state)
{
	line_fails("run 721h", "scn.scn:2:5: duration '721h' is over the limit of 720h "
			       "(LIMIT_SCN_DURATION_MS_MAX)");
	line_fails(
		"run 99999999999999999999999s",
		"scn.scn:2:5: duration '99999999999999999999999s' is over the limit of 720h "
		"(LIMIT_SCN_DURATION_MS_MAX)");
}

static void test_scn_rejects_bad_size(void **state)
{
	parse_fails(
		"cluster managers=1 memory=8Q\n",
		"scn.scn:1:27: bad size '8Q' (expected bytes or a number with K, M, G or T, "
		"like 512M or 2G)");
	line_fails(
		"service create web reserve-mem=64MX",
		"scn.scn:2:32: bad size '64MX' (expected bytes or a number with K, M, G or T, "
		"like 512M or 2G)");
}

static void test_scn_rejects_bad_probability(void **state)
{
	line_fails("link m1 m2 loss=1.5",
		   "scn.scn:2:17: probability '1.5' is out of range "
		   "(expected 0..1 or 0%..100%)");
	line_fails("link m1 m2 dup=120%",
		   "scn.scn:2:16: probability '120%' is out of range "
		   "(expected 0..1 or 0%..100%)");
	line_fails(
		"link m1 m2 loss=much",
		"scn.scn:2:17: bad probability 'much' (expected a number from 0 to 1 or a "
		"percentage, like 0.2 or 20%)");
	line_fails("service create web update-max-failure-ratio=2",
		   "scn.scn:2:45: ratio '2' is out of range (expected 0..1 or 0%..100%)");
}

static void test_scn_rejects_range_with_min_over_max(void **state)
{
	line_fails(
		"link m1 m2 delay=2s..1s",
		"scn.scn:2:18: bad range '2s..1s' (the minimum is more than the maximum)");
	line_fails("image slow start=..1s",
		   "scn.scn:2:18: bad range '..1s' (expected D..D, like 100ms..1s)");
}

static void test_scn_rejects_node_that_does_not_exist(void **state)
{
	line_fails("kill m4", "scn.scn:2:6: node m4 does not exist (cluster has m1..m3)");
	line_fails("partition m1 | w3",
		   "scn.scn:2:16: node w3 does not exist (cluster has "
		   "w1..w2)");
	parse_fails("cluster\nrestart w1\n",
		    "scn.scn:2:9: node w1 does not exist (cluster has no workers)");
	parse_fails("cluster\nexpect leader == m2\n",
		    "scn.scn:2:18: node m2 does not exist (cluster has m1)");
}

static void test_scn_rejects_what_is_not_a_node_name(void **state)
{
	line_fails(
		"kill x1",
		"scn.scn:2:6: expected a node (mN, wN or leader) after 'kill', got 'x1'");
	line_fails(
		"restart m01",
		"scn.scn:2:9: expected a node (mN, wN or leader) after 'restart', got 'm01'");
	line_fails("link m1",
		   "scn.scn:2:8: expected a node (mN, wN or leader) or '->' after "
		   "'link m1', got end of line");
}

static void test_scn_rejects_command_before_cluster(void **state)
{
	parse_fails(
		"seed 1\nset tick=1s\nrun 5s\ncluster\n",
		"scn.scn:3:1: 'run' before 'cluster' (cluster comes first; only seed and set "
		"may precede it)");
}

/* SCENARIOS.md has `cluster` first and `set election-ticks=... tick=...`
 * among the cluster's settings: right after `cluster`, before anything
 * runs, Raft's timing is the managers' from their start; once the cluster
 * runs it is refused (a change would be half applied). */
static void test_scn_rejects_raft_timing_after_cluster(void **state)
{
	struct scn_script sc;

	parse_ok("cluster managers=3\nseed 4\nset heartbeat=1s tick=200ms\n"
		 "set election-ticks=5\nrun 1s\n",
		 &sc);
	scn_free(&sc);
	parse_fails("cluster managers=3\nrun 1s\nset heartbeat=1s tick=200ms\n",
		    "scn.scn:3:18: tick is the managers' Raft timing: set it before "
		    "line 2 (the cluster runs from there)");
	parse_fails(
		"cluster managers=3\nexpect leader within 30s\nset election-ticks=5\n",
		"scn.scn:3:5: election-ticks is the managers' Raft timing: set it "
		"before line 2 (the cluster runs from there)");
	/* the others may change on the way */
	parse_ok(
		"cluster managers=3\nrun 1s\nset heartbeat=1s history=2 snapshot-every=10\n",
		&sc);
	scn_free(&sc);
}

static void test_scn_rejects_second_cluster(void **state)
{
	parse_fails("cluster managers=3\nrun 1s\n  cluster managers=1\n",
		    "scn.scn:3:3: second 'cluster' (the first is at line 1)");
}

static void test_scn_rejects_scenario_without_cluster(void **state)
{
	parse_fails(
		"# nothing but a seed\nseed 3\n",
		"scn.scn:1:1: no 'cluster' command (a scenario needs one, like cluster "
		"managers=3 workers=2)");
	parse_fails(
		"",
		"scn.scn:1:1: no 'cluster' command (a scenario needs one, like cluster "
		"managers=3 workers=2)");
}

static void test_scn_rejects_partition_with_one_group(void **state)
{
	line_fails(
		"partition m1 m2",
		"scn.scn:2:1: partition needs at least two groups separated by '|', got one");
}

static void test_scn_rejects_node_in_two_groups(void **state)
{
	line_fails("partition m1 m2 | m3 m2",
		   "scn.scn:2:22: node m2 is in two groups (first at column 14)");
	line_fails(
		"partition m1,m1 | *",
		"scn.scn:2:14: node m1 is named twice in one group (first at column 11)");
}

static void test_scn_rejects_two_star_groups(void **state)
{
	line_fails("partition m1 | * | *",
		   "scn.scn:2:20: second '*' group (the first is at column 16)");
}

static void test_scn_rejects_star_sharing_a_group(void **state)
{
	line_fails(
		"partition m1 * | m2",
		"scn.scn:2:14: '*' must be a group of its own (separate groups with '|')");
}

static void test_scn_rejects_empty_partition_group(void **state)
{
	line_fails("partition m1 | | m2",
		   "scn.scn:2:16: expected a group (node names or *) "
		   "after 'partition m1 |', got '|'");
	line_fails("partition m1 |",
		   "scn.scn:2:15: expected a group (node names or *) after "
		   "'partition m1 |', got end of line");
}

static void test_scn_rejects_more_groups_than_the_limit(void **state)
{
	char line[512] = "partition m1 | m2 | m3";
	char want[128];
	const char *bar = NULL;

	for (int w = 1; w <= 14; w++)
		snprintf(line + strlen(line), sizeof line - strlen(line), " | w%d", w);
	/* 17 groups: the 16th '|' starts the one too many */
	bar = strrchr(line, '|');
	snprintf(want, sizeof want,
		 "scn.scn:2:%d: more than 16 groups (LIMIT_SCN_GROUPS_MAX)",
		 (int)(bar - line) + 1);
	{
		char text[600];
		snprintf(text, sizeof text, "cluster managers=3 workers=14\n%s\n", line);
		parse_fails(text, want);
	}
}

static void test_scn_rejects_bad_op(void **state)
{
	line_fails("expect running web eight",
		   "scn.scn:2:20: expected OP (one of == != < <= > "
		   ">=) after 'running web', got 'eight'");
	line_fails("expect leader < m2",
		   "scn.scn:2:15: leader can only be compared with == or !=, got '<'");
}

static void test_scn_rejects_missing_count(void **state)
{
	line_fails(
		"expect running web ==",
		"scn.scn:2:22: expected a count after 'running web ==', got end of line");
	line_fails("expect nodes ready>=x",
		   "scn.scn:2:21: expected a count after 'nodes ready>=', got 'x'");
}

/* `node NODE manager|worker` (issue 16): the role in the store's record,
 * beside ready|down */
static void test_scn_node_condition_reads_a_role(void **state)
{
	struct scn_script s;
	(void)state;
	parse_ok("cluster managers=1 workers=1\nexpect node w1 manager within 1m\n"
		 "expect node w1 worker\nexpect node w1 ready\n",
		 &s);
	assert_int_equal(s.cmds[1].u.expect.cond.kind, SCN_COND_NODE_STATUS);
	assert_int_equal(s.cmds[1].u.expect.cond.node_role, SCN_ROLE_MANAGER);
	assert_int_equal(s.cmds[2].u.expect.cond.node_role, SCN_ROLE_WORKER);
	assert_int_equal(s.cmds[3].u.expect.cond.node_role, SCN_ROLE_ANY);
	assert_true(s.cmds[3].u.expect.cond.node_ready);
	scn_free(&s);
	line_fails(
		"expect node w1 leader",
		"scn.scn:2:16: expected ready, down, manager or worker after 'node w1', got 'leader'");
}

static void test_scn_rejects_bad_state_name(void **state)
{
	line_fails(
		"expect store tasks web state=runing == 3",
		"scn.scn:2:30: unknown task state 'runing' (expected new, pending, assigned, "
		"accepted, preparing, ready, starting, running, complete, shutdown, failed, "
		"rejected, remove or orphaned)");
}

static void test_scn_rejects_unknown_condition(void **state)
{
	line_fails(
		"expect leadr",
		"scn.scn:2:8: unknown condition 'leadr' (expected leader, no "
		"leader, running, store tasks, nodes ready, node, converged, managers in sync, "
		"refused, term, service, ca rotated, reach or spread)");
	line_fails("expect no leaders",
		   "scn.scn:2:11: expected 'leader' after 'no', got 'leaders'");
	line_fails(
		"expect",
		"scn.scn:2:7: expected a condition (leader, no leader, running, "
		"store tasks, nodes ready, node, converged, managers in sync, refused, term, service, ca rotated, reach or spread) "
		"after 'expect', got end "
		"of line");
}

/* Issue 20: rebalance=true|false and rebalance-parallelism=N on services
 * (an update sets only what it names), and the condition spread SVC OP N. */
static void test_scn_rebalance_keys_and_spread(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;

	(void)state;
	c = line_cmd(
		"service create web replicas=6 rebalance=true rebalance-parallelism=2",
		&s);
	assert_true(c->u.service.set & SCN_SVC_REBALANCE);
	assert_int_equal(c->u.service.rebalance_set, 3);
	assert_true(c->u.service.rebalance);
	assert_int_equal(c->u.service.rebalance_parallelism, 2);
	scn_free(&s);
	c = line_cmd("service update web rebalance=false", &s);
	assert_int_equal(c->u.service.rebalance_set, 1);
	assert_false(c->u.service.rebalance);
	scn_free(&s);
	c = line_cmd("service update web replicas=3", &s);
	assert_false(c->u.service.set & SCN_SVC_REBALANCE);
	assert_int_equal(c->u.service.rebalance_set, 0);
	scn_free(&s);
	c = line_cmd("expect spread web <= 1 within 30s", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_SPREAD);
	assert_string_equal(c->u.expect.cond.service, "web");
	assert_int_equal(c->u.expect.cond.op, SCN_OP_LE);
	assert_int_equal(c->u.expect.cond.count, 1);
	scn_free(&s);
	line_fails("service create web rebalance=yes",
		   "scn.scn:2:30: bad rebalance 'yes' (expected false or true)");
	line_fails("expect spread web",
		   "scn.scn:2:18: expected OP (one of == != < <= > >=) "
		   "after 'spread web', got end of line");
}

static void test_scn_rejects_always_within(void **state)
{
	line_fails(
		"always leader within 5s",
		"scn.scn:2:15: 'within' cannot follow always (always COND must hold after "
		"every event; use expect COND within DUR)");
}

static void test_scn_rejects_within_without_duration(void **state)
{
	line_fails(
		"expect converged within",
		"scn.scn:2:24: expected a duration after 'converged within', got end of line");
}

static void test_scn_rejects_replicas_with_mode_global(void **state)
{
	line_fails(
		"service create web mode=global replicas=3",
		"scn.scn:2:32: replicas= cannot be used with mode=global (a global service runs "
		"one task on every node)");
}

static void test_scn_rejects_bad_choice_value(void **state)
{
	line_fails("service create web mode=globl",
		   "scn.scn:2:25: bad mode 'globl' (expected replicated, global, "
		   "replicated-job or global-job)");
	line_fails(
		"service create web restart=always",
		"scn.scn:2:28: bad restart 'always' (expected any, on-failure or none)");
	line_fails("image flaky pull=slow",
		   "scn.scn:2:18: bad pull 'slow' (expected fail)");
}

static void test_scn_rejects_exit_without_after(void **state)
{
	line_fails("image flaky exit=1",
		   "scn.scn:2:13: exit= needs after=D (when the container exits)");
	line_fails("image flaky after=1s",
		   "scn.scn:2:13: after= needs exit=CODE (the code it exits with)");
}

static void test_scn_rejects_bad_constraint(void **state)
{
	line_fails(
		"service create web constraint=node.rol==worker",
		"scn.scn:2:31: bad constraint 'node.rol==worker' (expected node.id, "
		"node.hostname, node.role, node.labels.KEY, node.platform.os, "
		"node.platform.arch, engine.labels.KEY or node.ip (an address or CIDR block), "
		"then == or !=, then a value, like node.role==worker)");
	line_fails(
		"service create web constraint=node.role==boss",
		"scn.scn:2:42: bad constraint 'node.role==boss' (node.role is manager or "
		"worker)");
	line_fails(
		"service create web constraint=node.labels.zone==",
		"scn.scn:2:31: bad constraint 'node.labels.zone==' (expected node.id, "
		"node.hostname, node.role, node.labels.KEY, node.platform.os, "
		"node.platform.arch, engine.labels.KEY or node.ip (an address or CIDR block), "
		"then == or !=, then a value, like node.role==worker)");
}

static void test_scn_rejects_more_constraints_than_the_limit(void **state)
{
	char line[1024] = "service create web";
	char want[128];

	for (int i = 0; i < 17; i++)
		snprintf(line + strlen(line), sizeof line - strlen(line),
			 " constraint=node.role==worker");
	snprintf(want, sizeof want,
		 "scn.scn:2:%d: more than 16 constraints (LIMIT_SCN_CONSTRAINTS_MAX)",
		 (int)(strrchr(line, ' ') - line) + 2);
	line_fails(line, want);
}

static void test_scn_rejects_more_spreads_than_the_limit(void **state)
{
	line_fails("service create web spread=a spread=b spread=c spread=d spread=e",
		   "scn.scn:2:56: more than 4 spreads (LIMIT_SCN_SPREADS_MAX)");
}

static void test_scn_rejects_more_commands_than_the_limit(void **state)
{
	const char line[] = "run 1s\n";
	size_t size =
		strlen("cluster\n") + (LIMIT_SCN_COMMANDS_MAX + 1) * strlen(line) + 1;
	char *text = malloc(size);
	char *at = text;

	assert_non_null(text);
	at += sprintf(at, "cluster\n");
	for (unsigned i = 0; i < LIMIT_SCN_COMMANDS_MAX; i++)
		at += sprintf(at, "%s", line);
	parse_fails(
		text,
		"scn.scn:100001:1: more than 100000 commands (LIMIT_SCN_COMMANDS_MAX)");
	free(text);
}

static void test_scn_rejects_bad_spread(void **state)
{
	line_fails(
		"service create web spread=node.role",
		"scn.scn:2:27: bad spread 'node.role' (expected a node label, like zone or "
		"node.labels.zone)");
}

static void test_scn_rejects_counts_over_their_limits(void **state)
{
	line_fails("service create web replicas=1000001",
		   "scn.scn:2:29: replicas 1000001 is over the limit of 1000000 "
		   "(LIMIT_SCN_REPLICAS_MAX)");
	parse_fails(
		"cluster managers=16\n",
		"scn.scn:1:18: managers 16 is over the limit of 15 (LIMIT_MANAGERS_MAX)");
	parse_fails(
		"cluster managers=0\n",
		"scn.scn:1:18: managers must be at least 1 (a cluster needs a manager)");
	parse_fails(
		"cluster managers=15\nnode add manager\n",
		"scn.scn:2:10: node add manager would make m16, over the limit of 15 managers "
		"(LIMIT_MANAGERS_MAX)");
}

static void test_scn_rejects_line_too_long(void **state)
{
	char line[5001];

	memset(line, 'x', sizeof line - 1);
	line[sizeof line - 1] = '\0';
	line_fails(line,
		   "scn.scn:2:4097: line is 5000 bytes long, over the limit of 4096 "
		   "(LIMIT_SCN_LINE_BYTES_MAX)");
}

static void test_scn_rejects_trailing_garbage_after_complete_command(void **state)
{
	line_fails("run 5s now",
		   "scn.scn:2:8: unexpected 'now' after complete command 'run 5s'");
	line_fails("heal all",
		   "scn.scn:2:6: unexpected 'all' after complete command 'heal'");
	line_fails(
		"always converged now",
		"scn.scn:2:18: unexpected 'now' after complete command 'always converged'");
	line_fails("expect converged now",
		   "scn.scn:2:18: expected 'within DUR' or end of line "
		   "after 'expect converged', got 'now'");
	line_fails("kill m1 proc",
		   "scn.scn:2:9: expected 'process', 'disk' or end of line after 'kill "
		   "m1', got 'proc'");
}

/* Issue 20's forms: `kill NODE disk` (the machine and its disk gone for
 * good), `restart NODE force-new-cluster`, `backup` and `node add manager
 * from-backup`; the old forms keep their meaning (no flag set). */
static void test_scn_disaster_recovery_forms(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;

	c = line_cmd("kill m2 disk", &s);
	assert_int_equal(c->kind, SCN_KILL);
	assert_node(c->u.node.node, SCN_NODE_MANAGER, 2);
	assert_true(c->u.node.disk_lost);
	assert_false(c->u.node.process_only);
	scn_free(&s);
	c = line_cmd("kill m2", &s);
	assert_false(c->u.node.disk_lost);
	scn_free(&s);
	c = line_cmd("restart m3 force-new-cluster", &s);
	assert_int_equal(c->kind, SCN_RESTART);
	assert_node(c->u.node.node, SCN_NODE_MANAGER, 3);
	assert_true(c->u.node.force_new_cluster);
	scn_free(&s);
	c = line_cmd("restart m3", &s);
	assert_false(c->u.node.force_new_cluster);
	assert_false(c->u.node.refused);
	scn_free(&s);
	c = line_cmd("restart m3 refused", &s);
	assert_int_equal(c->kind, SCN_RESTART);
	assert_true(c->u.node.refused);
	assert_false(c->u.node.force_new_cluster);
	scn_free(&s);
	c = line_cmd("backup", &s);
	assert_int_equal(c->kind, SCN_BACKUP);
	scn_free(&s);
	c = line_cmd("node add manager from-backup", &s);
	assert_int_equal(c->kind, SCN_NODE_ADD);
	assert_true(c->u.node.from_backup);
	assert_node(c->u.node.added, SCN_NODE_MANAGER, 4);
	scn_free(&s);
	c = line_cmd("node add manager", &s);
	assert_false(c->u.node.from_backup);
	scn_free(&s);
	line_fails("backup now",
		   "scn.scn:2:8: unexpected 'now' after complete command 'backup'");
	line_fails("restart m3 force",
		   "scn.scn:2:12: expected 'force-new-cluster', 'refused' or end of line "
		   "after 'restart m3', got 'force'");
	line_fails("restart m3 refused now",
		   "scn.scn:2:20: unexpected 'now' after complete command 'restart m3 "
		   "refused'");
	line_fails(
		"kill m1 disk now",
		"scn.scn:2:14: unexpected 'now' after complete command 'kill m1 disk'");
}

static void test_scn_rejects_empty_service_update(void **state)
{
	line_fails(
		"service update web",
		"scn.scn:2:19: expected KEY=VALUE after 'service update web', got end of line");
}

static void test_scn_rejects_unknown_subcommand(void **state)
{
	line_fails(
		"service creat web",
		"scn.scn:2:9: unknown service command 'creat' (expected create, update or rm)");
	line_fails(
		"node add boss",
		"scn.scn:2:10: expected worker or manager after 'node add', got 'boss'");
	line_fails("node label w1 zone",
		   "scn.scn:2:15: expected KEY=VALUE after 'node label w1', got 'zone'");
}

static void test_scn_rejects_bad_seed(void **state)
{
	parse_fails("seed 12abc\ncluster\n",
		    "scn.scn:1:6: bad seed '12abc' (expected a whole number, like 3)");
	parse_fails("seed 18446744073709551616\ncluster\n",
		    "scn.scn:1:6: seed 18446744073709551616 is too large (at most "
		    "18446744073709551615)");
	parse_fails("seed 1\ncluster\nseed 2\n",
		    "scn.scn:3:1: second 'seed' (the first is at "
		    "line 1)");
}

static void test_scn_rejects_link_to_itself(void **state)
{
	line_fails("link m1 -> m1",
		   "scn.scn:2:12: link needs two different nodes, got m1 twice");
}

/* A file that starts with a UTF-8 byte order mark (Notepad's "UTF-8")
 * reads as the same file without it: the mark is no part of `cluster`. */
static void test_scn_skips_a_byte_order_mark(void **state)
{
	struct scn_script s;

	parse_ok("\xEF\xBB\xBF"
		 "cluster managers=3 workers=2\n"
		 "run 5s\n",
		 &s);
	assert_int_equal(s.cmd_count, 2);
	assert_int_equal(s.cmds[0].kind, SCN_CLUSTER);
	assert_int_equal(s.cmds[0].u.cluster.managers, 3);
	assert_int_equal(s.cmds[1].u.run_ms, 5000);
	scn_free(&s);
	/* only first: anywhere else it is a bad byte in a word */
	line_fails("\xEF\xBB\xBFrun 5s",
		   "scn.scn:2:1: unknown command '\xEF\xBB\xBFrun' "
		   "(expected cluster, seed, set, run, service, node, "
		   "kill, restart, partition, isolate, link, heal, image, "
		   "runtime, disk, cert, forge, expect, always, await, "
		   "network, refuse)");
}

static void test_scn_rejects_control_bytes(void **state)
{
	line_fails("run 5s\x01", "scn.scn:2:7: unexpected control byte 0x01");
}

/* ---------------------------------------------------------------- fault vocabulary */

/* Issue 14: health checks and the stop grace period of a service, and when
 * an image's health command succeeds. */
static void test_scn_health_keys_and_image_health(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd(
		"service create web health-cmd=check health-interval=5s health-timeout=2s "
		"health-retries=4 health-start-period=1m stop-grace-period=3s",
		&s);

	assert_true(c->u.service.set & SCN_SVC_HEALTH);
	assert_true(c->u.service.set & SCN_SVC_STOP_GRACE);
	assert_int_equal(c->u.service.health_set,
			 SCN_HEALTH_CMD | SCN_HEALTH_INTERVAL | SCN_HEALTH_TIMEOUT |
				 SCN_HEALTH_RETRIES | SCN_HEALTH_START_PERIOD);
	assert_string_equal(c->u.service.health_cmd, "check");
	assert_false(c->u.service.health_none);
	assert_int_equal(c->u.service.health_interval_ms, 5000);
	assert_int_equal(c->u.service.health_timeout_ms, 2000);
	assert_int_equal(c->u.service.health_retries, 4);
	assert_int_equal(c->u.service.health_start_period_ms, 60000);
	assert_int_equal(c->u.service.stop_grace_period_ms, 3000);
	scn_free(&s);
	c = line_cmd("service update web health-cmd=none", &s);
	assert_int_equal(c->u.service.set, SCN_SVC_HEALTH);
	assert_int_equal(c->u.service.health_set, SCN_HEALTH_CMD);
	assert_true(c->u.service.health_none);
	assert_null(c->u.service.health_cmd);
	scn_free(&s);
	c = line_cmd("image app:1 healthy-after=5s..10s unhealthy-after=1m", &s);
	assert_true(c->u.image.has_healthy_after);
	assert_int_equal(c->u.image.healthy_after.min_ms, 5000);
	assert_int_equal(c->u.image.healthy_after.max_ms, 10000);
	assert_true(c->u.image.has_unhealthy_after);
	assert_int_equal(c->u.image.unhealthy_after.min_ms, 60000);
	scn_free(&s);
	line_fails(
		"service create web health-retries=x",
		"scn.scn:2:35: bad health-retries 'x' (expected a whole number, like 3)");
	line_fails("service create web health-cmd=a health-cmd=b",
		   "scn.scn:2:33: duplicate key 'health-cmd' (first given at column 20)");
}

static void test_scn_image_start_fail_and_stop_ignore(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("image app:1 start=fail stop=ignore", &s);

	assert_int_equal(c->kind, SCN_IMAGE);
	assert_true(c->u.image.start_fail);
	assert_false(c->u.image.has_start);
	assert_true(c->u.image.stop_ignore);
	scn_free(&s);
	c = line_cmd("image app:1 start=200ms..2s", &s);
	assert_false(c->u.image.start_fail);
	assert_false(c->u.image.stop_ignore);
	assert_true(c->u.image.has_start);
	assert_int_equal(c->u.image.start.max_ms, 2000);
	scn_free(&s);
}

static void test_scn_runtime_fail_reads_ops_and_for(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("runtime w2 fail=wait,stop,list for=30s", &s);

	assert_int_equal(c->kind, SCN_RUNTIME);
	assert_node(c->u.runtime.node, SCN_NODE_WORKER, 2);
	assert_int_equal(c->u.runtime.action, SCN_RT_FAIL);
	assert_int_equal(c->u.runtime.ops,
			 SCN_RT_OP_WAIT | SCN_RT_OP_STOP | SCN_RT_OP_LIST);
	assert_true(c->u.runtime.has_for);
	assert_int_equal(c->u.runtime.for_ms, 30000);
	assert_string_equal(scn_cmd_name(c->kind), "runtime");
	scn_free(&s);
	c = line_cmd("runtime leader fail=all", &s);
	assert_int_equal(c->u.runtime.node.kind, SCN_NODE_LEADER);
	assert_int_equal(c->u.runtime.ops, SCN_RT_OP_ALL);
	assert_false(c->u.runtime.has_for);
	scn_free(&s);
	c = line_cmd("runtime m1 fail=prepare,start,remove", &s);
	assert_int_equal(c->u.runtime.ops,
			 SCN_RT_OP_PREPARE | SCN_RT_OP_START | SCN_RT_OP_REMOVE);
	scn_free(&s);
}

static void test_scn_runtime_restart_and_ok(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("runtime w1 restart", &s);

	assert_int_equal(c->u.runtime.action, SCN_RT_RESTART);
	assert_false(c->u.runtime.lose);
	assert_int_equal(c->u.runtime.down_ms, SCN_RT_DOWN_MS_DEFAULT);
	scn_free(&s);
	c = line_cmd("runtime w1 restart containers=lose down=5s", &s);
	assert_true(c->u.runtime.lose);
	assert_int_equal(c->u.runtime.down_ms, 5000);
	scn_free(&s);
	c = line_cmd("runtime w1 restart containers=keep down=0ms", &s);
	assert_false(c->u.runtime.lose);
	assert_int_equal(c->u.runtime.down_ms, 0);
	scn_free(&s);
	c = line_cmd("runtime m3 ok", &s);
	assert_int_equal(c->u.runtime.action, SCN_RT_OK);
	assert_node(c->u.runtime.node, SCN_NODE_MANAGER, 3);
	scn_free(&s);
}

/* Issue 15: runtime NODE bind=PORT[/PROTO] | unbind | dataplane=none|present */
static void test_scn_runtime_bind_unbind_and_dataplane(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("runtime w1 bind=8080", &s);

	(void)state;
	assert_int_equal(c->u.runtime.action, SCN_RT_BIND);
	assert_int_equal(c->u.runtime.bind_port, 8080);
	assert_int_equal(c->u.runtime.bind_proto, 0);
	scn_free(&s);
	c = line_cmd("runtime m2 bind=53/udp", &s);
	assert_int_equal(c->u.runtime.bind_port, 53);
	assert_int_equal(c->u.runtime.bind_proto, 1);
	scn_free(&s);
	c = line_cmd("runtime w1 unbind", &s);
	assert_int_equal(c->u.runtime.action, SCN_RT_UNBIND);
	scn_free(&s);
	c = line_cmd("runtime w2 dataplane=none", &s);
	assert_int_equal(c->u.runtime.action, SCN_RT_DATAPLANE);
	assert_false(c->u.runtime.data_plane);
	scn_free(&s);
	c = line_cmd("runtime w2 dataplane=present", &s);
	assert_true(c->u.runtime.data_plane);
	scn_free(&s);
	line_fails("runtime w1 bind=0",
		   "scn.scn:2:12: runtime bind: expected bind=PORT[/tcp|udp|sctp] "
		   "(PORT 1-65535), got 'bind=0'");
	line_fails("runtime w1 bind=80/icmp",
		   "scn.scn:2:12: runtime bind: expected bind=PORT[/tcp|udp|sctp] "
		   "(PORT 1-65535), got 'bind=80/icmp'");
	line_fails("runtime w1 dataplane=maybe",
		   "scn.scn:2:12: runtime dataplane: expected dataplane=none or "
		   "dataplane=present, got 'dataplane=maybe'");
}

static void test_scn_disk_faults_and_ok(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd("disk m3 fault=eio", &s);

	assert_int_equal(c->kind, SCN_DISK);
	assert_string_equal(scn_cmd_name(c->kind), "disk");
	assert_int_equal(c->u.disk.fault, SCN_DISK_EIO);
	assert_true(c->u.disk.on_write);
	assert_true(c->u.disk.on_sync);
	assert_false(c->u.disk.has_for);
	scn_free(&s);
	c = line_cmd("disk m3 fault=eio on=sync for=1m", &s);
	assert_false(c->u.disk.on_write);
	assert_true(c->u.disk.on_sync);
	assert_int_equal(c->u.disk.for_ms, 60000);
	scn_free(&s);
	c = line_cmd("disk w1 on=write fault=eio", &s);
	assert_true(c->u.disk.on_write);
	assert_false(c->u.disk.on_sync);
	scn_free(&s);
	c = line_cmd("disk leader fault=full for=90s", &s);
	assert_int_equal(c->u.disk.fault, SCN_DISK_FULL);
	assert_int_equal(c->u.disk.node.kind, SCN_NODE_LEADER);
	assert_true(c->u.disk.has_for);
	scn_free(&s);
	c = line_cmd("disk m2 fault=torn for=30s", &s);
	assert_int_equal(c->u.disk.fault, SCN_DISK_TORN);
	assert_int_equal(c->u.disk.for_ms, 30000);
	scn_free(&s);
	c = line_cmd("disk w2 fault=corrupt file=agent pages=12", &s);
	assert_int_equal(c->u.disk.fault, SCN_DISK_CORRUPT);
	assert_string_equal(c->u.disk.file, "agent");
	assert_int_equal(c->u.disk.pages, 12);
	scn_free(&s);
	c = line_cmd("disk w2 fault=corrupt", &s);
	assert_string_equal(c->u.disk.file, "");
	assert_string_equal(c->u.disk.table, "");
	assert_int_equal(c->u.disk.pages, 1);
	scn_free(&s);
	/* issue 18: only the rows of one table */
	c = line_cmd("disk m3 fault=corrupt file=raft table=raft_log pages=8", &s);
	assert_string_equal(c->u.disk.file, "raft");
	assert_string_equal(c->u.disk.table, "raft_log");
	assert_int_equal(c->u.disk.pages, 8);
	scn_free(&s);
	c = line_cmd("disk m2 ok", &s);
	assert_int_equal(c->u.disk.fault, SCN_DISK_OK);
	scn_free(&s);
}

static void test_scn_rejects_bad_fault_commands(void **state)
{
	line_fails(
		"image app start=fast",
		"scn.scn:2:17: bad start 'fast' (expected fail, or a duration D[..D] like "
		"100ms..1s)");
	line_fails("image app stop=kill",
		   "scn.scn:2:16: bad stop 'kill' (expected ignore)");
	line_fails("runtime", "scn.scn:2:8: expected a node (mN, wN or leader) after "
			      "'runtime', got end of line");
	line_fails("runtime w9 ok",
		   "scn.scn:2:9: node w9 does not exist (cluster has w1..w2)");
	line_fails("runtime w1", "scn.scn:2:11: expected fail=OPS, restart or ok after "
				 "'runtime w1', got end of line");
	line_fails("runtime w1 stop",
		   "scn.scn:2:12: expected fail=OPS, restart or ok after "
		   "'runtime w1', got 'stop'");
	line_fails("runtime w1 fail=", "scn.scn:2:17: missing value after 'fail='");
	line_fails(
		"runtime w1 fail=wait,,stop",
		"scn.scn:2:22: missing call kind in fail='wait,,stop' (expected a comma list "
		"of prepare, start, wait, stop, remove, list, or all)");
	line_fails(
		"runtime w1 fail=start,",
		"scn.scn:2:23: missing call kind in fail='start,' (expected a comma list of "
		"prepare, start, wait, stop, remove, list, or all)");
	line_fails("runtime w1 fail=foo",
		   "scn.scn:2:17: bad call kind 'foo' (expected "
		   "prepare, start, wait, stop, remove, list or all)");
	line_fails("runtime w1 fail=all,start",
		   "scn.scn:2:17: 'all' stands alone (it names every call kind)");
	line_fails("runtime w1 fail=start,all",
		   "scn.scn:2:23: 'all' stands alone (it names every call kind)");
	line_fails("runtime w1 fail=start,start",
		   "scn.scn:2:23: call kind 'start' given twice");
	line_fails("runtime w1 for=5s",
		   "scn.scn:2:12: runtime needs fail=OPS with for= (the calls that fail: "
		   "prepare, start, wait, stop, remove, list, or all)");
	line_fails(
		"runtime w1 fail=start for=0s",
		"scn.scn:2:27: for=0 ends the fault before it begins (expected a duration "
		"of 1ms or more, or no for= to hold it until ok)");
	line_fails(
		"runtime w1 fail=start for=5",
		"scn.scn:2:27: bad duration '5' (missing unit: expected ms, s, m or h, like "
		"5s)");
	line_fails(
		"runtime w1 fail=start down=1s",
		"scn.scn:2:23: unknown key 'down' for runtime fail (expected fail, for)");
	line_fails("runtime w1 restart containers=maybe",
		   "scn.scn:2:31: bad containers 'maybe' (expected keep or lose)");
	line_fails(
		"runtime w1 restart for=1s",
		"scn.scn:2:20: unknown key 'for' for runtime restart (expected containers, "
		"down)");
	line_fails("runtime w1 restart down=1s down=2s",
		   "scn.scn:2:28: duplicate key 'down' (first given at column 20)");
	line_fails(
		"runtime w1 ok now",
		"scn.scn:2:15: unexpected 'now' after complete command 'runtime w1 ok'");
	line_fails("disk",
		   "scn.scn:2:5: expected a node (mN, wN or leader) after 'disk', "
		   "got end of line");
	line_fails("disk m1", "scn.scn:2:8: expected fault=eio, fault=full, fault=torn, "
			      "fault=corrupt or ok after 'disk m1', got end of line");
	line_fails(
		"disk m1 full",
		"scn.scn:2:9: expected fault=eio, fault=full, fault=torn, fault=corrupt or "
		"ok after 'disk m1', got 'full'");
	line_fails("disk m1 fault=zap",
		   "scn.scn:2:15: bad fault 'zap' (expected eio, full, torn or corrupt)");
	line_fails(
		"disk m1 fault=full on=sync",
		"scn.scn:2:20: on= goes with fault=eio (a full disk fails the writes that "
		"grow a file)");
	line_fails("disk m1 fault=eio on=disk",
		   "scn.scn:2:22: bad on 'disk' (expected write, sync or both)");
	line_fails("disk m1 on=sync",
		   "scn.scn:2:9: disk needs fault=eio, fault=full, fault=torn or "
		   "fault=corrupt (or ok)");
	/* issue 19 */
	line_fails("disk m1 fault=eio file=raft",
		   "scn.scn:2:19: file=, pages= and table= go with fault=corrupt");
	line_fails("disk m1 fault=eio table=raft_log",
		   "scn.scn:2:19: file=, pages= and table= go with fault=corrupt");
	line_fails("disk m1 fault=full pages=2 table=raft_log file=raft",
		   "scn.scn:2:20: file=, pages= and table= go with fault=corrupt");
	line_fails("disk m1 fault=corrupt table=raft_log",
		   "scn.scn:2:23: table= needs file= (the sqlite file the table is in)");
	line_fails("disk m1 fault=corrupt file=raft table=a/b",
		   "scn.scn:2:39: table= takes an sqlite table or index name of the file "
		   "(raft_log, ...)");
	line_fails("disk m1 fault=corrupt for=1m",
		   "scn.scn:2:23: fault=corrupt flips bits at once: it takes no for=");
	line_fails("disk m1 fault=corrupt pages=0",
		   "scn.scn:2:29: pages= takes a count from 1 to 1000");
	line_fails(
		"disk m1 fault=corrupt file=a/b",
		"scn.scn:2:28: file= takes a file name of the node's disk (raft, agent, ...)");
	line_fails(
		"disk m1 fault=eio for=0ms",
		"scn.scn:2:23: for=0 ends the fault before it begins (expected a duration "
		"of 1ms or more, or no for= to hold it until ok)");
	line_fails("disk m1 ok x",
		   "scn.scn:2:12: unexpected 'x' after complete command 'disk m1 ok'");
	line_fails(
		"disk m1 fault=eio size=1G",
		"scn.scn:2:19: unknown key 'size' for disk (expected fault, on, for, file,"
		" pages, table)");
	parse_fails(
		"disk m1 fault=full\ncluster managers=1\n",
		"scn.scn:1:1: 'disk' before 'cluster' (cluster comes first; only seed and "
		"set may precede it)");
}

/* ---------------------------------------------------------------- identity (issue 13) */

static void test_scn_parses_strangers_cert_and_forge(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;

	(void)state;
	parse_ok("cluster managers=3 workers=2\n"
		 "node add stranger\n"
		 "node add stranger\n"
		 "cert x2 other-cluster\n"
		 "cert w1 expire\n"
		 "forge x1 session to=leader as=w2\n"
		 "forge w1 raft-vote to=m3\n"
		 "expect refused on m1 >= 2\n"
		 "expect refused == 0\n"
		 "always term <= 3\n"
		 "expect service evil absent\n"
		 "expect service web exists within 5s\n",
		 &s);
	assert_int_equal(s.strangers_total, 2);
	c = &s.cmds[2];
	assert_int_equal(c->kind, SCN_NODE_ADD);
	assert_int_equal(c->u.node.added.kind, SCN_NODE_STRANGER);
	assert_int_equal(c->u.node.added.number, 2);
	c = &s.cmds[3];
	assert_int_equal(c->kind, SCN_CERT);
	assert_int_equal(c->u.cert.kind, SCN_CERT_OTHER_CLUSTER);
	assert_int_equal(c->u.cert.node.kind, SCN_NODE_STRANGER);
	assert_int_equal(s.cmds[4].u.cert.kind, SCN_CERT_EXPIRE);
	c = &s.cmds[5];
	assert_int_equal(c->kind, SCN_FORGE);
	assert_int_equal(c->u.forge.kind, SCN_FORGE_SESSION);
	assert_int_equal(c->u.forge.src.kind, SCN_NODE_STRANGER);
	assert_int_equal(c->u.forge.dst.kind, SCN_NODE_LEADER);
	assert_true(c->u.forge.has_as);
	assert_int_equal(c->u.forge.as.kind, SCN_NODE_WORKER);
	assert_int_equal(c->u.forge.as.number, 2);
	assert_int_equal(s.cmds[6].u.forge.kind, SCN_FORGE_RAFT_VOTE);
	assert_false(s.cmds[6].u.forge.has_as);
	c = &s.cmds[7];
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_REFUSED);
	assert_true(c->u.expect.cond.has_node);
	assert_int_equal(c->u.expect.cond.op, SCN_OP_GE);
	assert_int_equal(c->u.expect.cond.count, 2);
	assert_false(s.cmds[8].u.expect.cond.has_node);
	assert_int_equal(s.cmds[9].u.expect.cond.kind, SCN_COND_TERM);
	assert_int_equal(s.cmds[10].u.expect.cond.kind, SCN_COND_SERVICE);
	assert_false(s.cmds[10].u.expect.cond.exists);
	assert_string_equal(s.cmds[10].u.expect.cond.service, "evil");
	assert_true(s.cmds[11].u.expect.cond.exists);
	assert_true(s.cmds[11].u.expect.has_within);
	scn_free(&s);
}

static void test_scn_rejects_bad_identity_commands(void **state)
{
	(void)state;
	line_fails(
		"cert x1 expire",
		"scn.scn:2:6: expected a node (mN, wN or leader) after 'cert', got 'x1'");
	line_fails("cert w1 stolen",
		   "scn.scn:2:9: unknown certificate 'stolen' (expected "
		   "expire, foreign, other-cluster or none)");
	line_fails(
		"forge w1 raft-vote",
		"scn.scn:2:19: expected to=NODE after 'forge w1 raft-vote', got end of "
		"line");
	line_fails(
		"forge w1 session to=m1",
		"scn.scn:2:23: expected as=NODE (the node the message names) after 'forge "
		"w1 session to=m1', got end of line");
	line_fails("forge w1 hello to=m1",
		   "scn.scn:2:10: unknown message kind 'hello' (expected raft-append, "
		   "raft-vote, proposal, control, join, session, status, cert-request, "
		   "session-response or assignments)");
	line_fails("forge w1 control to=w9",
		   "scn.scn:2:21: node w9 does not exist (cluster has w1..w2)");
	line_fails(
		"expect service web here",
		"scn.scn:2:20: expected exists, absent or completed after 'service web', "
		"got 'here'");
}

static void test_scn_parses_ca_rotation_and_tokens(void **state)
{
	struct scn_script s;

	(void)state;
	parse_ok("cluster managers=3 workers=2\n"
		 "ca rotate\n"
		 "expect ca rotated within 5m\n"
		 "always ca rotated\n"
		 "node add worker\n"
		 "node add worker token=initial\n"
		 "node add manager token=current\n",
		 &s);
	assert_int_equal(s.cmds[1].kind, SCN_CA_ROTATE);
	assert_string_equal(scn_cmd_name(SCN_CA_ROTATE), "ca rotate");
	assert_int_equal(s.cmds[2].kind, SCN_EXPECT);
	assert_int_equal(s.cmds[2].u.expect.cond.kind, SCN_COND_CA_ROTATED);
	assert_true(s.cmds[2].u.expect.has_within);
	assert_int_equal(s.cmds[2].u.expect.within_ms, 5 * 60 * 1000);
	assert_int_equal(s.cmds[3].u.expect.cond.kind, SCN_COND_CA_ROTATED);
	assert_false(s.cmds[4].u.node.initial_token);
	assert_int_equal(s.cmds[4].u.node.added.number, 3);
	assert_true(s.cmds[5].u.node.initial_token);
	assert_int_equal(s.cmds[5].u.node.added.number, 4);
	assert_false(s.cmds[6].u.node.initial_token);
	assert_int_equal(s.cmds[6].u.node.added.kind, SCN_NODE_MANAGER);
	assert_int_equal(s.workers_total, 4);
	scn_free(&s);
}

/* node add's description (issue 14): os=, arch=, ip=, engine-label=K=V. */
static void test_scn_node_add_description(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c = line_cmd(
		"node add worker os=linux arch=x86_64 ip=fd00::7 engine-label=a=b "
		"engine-label=c=d=e",
		&s);
	const struct scn_node_desc *d = c->u.node.desc;

	assert_int_equal(c->kind, SCN_NODE_ADD);
	assert_non_null(d);
	assert_string_equal(d->os, "linux");
	assert_string_equal(d->arch, "x86_64");
	assert_string_equal(d->ip, "fd00::7");
	assert_int_equal(d->engine_label_count, 2);
	assert_string_equal(d->engine_keys[1], "c");
	assert_string_equal(d->engine_values[1], "d=e");
	scn_free(&s);
	c = line_cmd("node add worker", &s);
	assert_null(c->u.node.desc);
	scn_free(&s);
	line_fails("node add worker ip=10.0.0",
		   "scn.scn:2:20: bad ip '10.0.0' (expected an IPv4 or IPv6 address, "
		   "like 10.0.1.5)");
	line_fails("node add worker os=a os=b", "scn.scn:2:22: 'os=b' given twice");
	line_fails("node add worker engine-label=x",
		   "scn.scn:2:30: bad engine-label 'x' (expected KEY=VALUE)");
	line_fails("node add worker arch=x y",
		   "scn.scn:2:24: unexpected 'y' after complete command 'node add worker "
		   "arch=x'");
	line_fails("service create web constraint=node.ip==10.0.0.0/33",
		   "scn.scn:2:31: bad constraint 'node.ip==10.0.0.0/33' (expected "
		   "node.id, node.hostname, node.role, node.labels.KEY, "
		   "node.platform.os, node.platform.arch, engine.labels.KEY or node.ip "
		   "(an address or CIDR block), then == or !=, then a value, like "
		   "node.role==worker)");
}

static void test_scn_rejects_bad_ca_commands(void **state)
{
	(void)state;
	line_fails("ca", "scn.scn:2:3: expected rotate after 'ca', got end of line");
	line_fails("ca renew", "scn.scn:2:4: expected rotate after 'ca', got 'renew'");
	line_fails("ca rotate now",
		   "scn.scn:2:11: unexpected 'now' after complete command 'ca rotate'");
	line_fails("expect ca done",
		   "scn.scn:2:11: expected 'rotated' after 'ca', got 'done'");
	line_fails("node add worker token=old",
		   "scn.scn:2:23: unknown token 'old' (expected initial or current)");
	line_fails(
		"node add worker token=initial x",
		"scn.scn:2:31: unexpected 'x' after complete command 'node add worker token=initial'");
}

/* issue 15: network create/rm, refuse, network= and publish=, and the
 * allocator's conditions */
static void test_scn_network_forms(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;
	(void)state;

	c = line_cmd("network create small subnet=10.0.3.0/29 driver=overlay", &s);
	assert_int_equal(c->kind, SCN_NETWORK_CREATE);
	assert_string_equal(c->u.network.name, "small");
	assert_string_equal(c->u.network.subnet, "10.0.3.0/29");
	assert_false(c->refuse);
	scn_free(&s);
	c = line_cmd("refuse network rm small", &s);
	assert_int_equal(c->kind, SCN_NETWORK_RM);
	assert_true(c->refuse);
	scn_free(&s);
	c = line_cmd("refuse service create b network=x network=y publish=8080:80/udp "
		     "publish=:81 publish=host:9000:90",
		     &s);
	assert_int_equal(c->kind, SCN_SERVICE_CREATE);
	assert_true(c->refuse);
	assert_int_equal(c->u.service.network_count, 2);
	assert_string_equal(c->u.service.networks[1], "y");
	assert_int_equal(c->u.service.port_count, 3);
	assert_int_equal(c->u.service.ports[0].published, 8080);
	assert_int_equal(c->u.service.ports[0].protocol, 1);
	assert_int_equal(c->u.service.ports[1].published, 0);
	assert_int_equal(c->u.service.ports[1].target, 81);
	assert_true(c->u.service.ports[2].host);
	scn_free(&s);
	c = line_cmd("expect pending web because=no-free-address == 2 within 5s", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_PENDING_BECAUSE);
	assert_string_equal(c->u.expect.cond.reason, "no free address");
	assert_int_equal(c->u.expect.cond.count, 2);
	scn_free(&s);
	c = line_cmd("expect service web publishes 8080", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_PUBLISHES);
	assert_int_equal(c->u.expect.cond.count, 8080);
	scn_free(&s);
	c = line_cmd("expect store vips web >= 1", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_VIPS);
	scn_free(&s);
	line_fails(
		"service create b publish=host::80",
		"scn.scn:2:26: publish: expected [host:][P]:T[/tcp|udp|sctp] (P 1-65535, "
		"left out to draw one; host mode needs P), got 'host::80'");
	line_fails(
		"refuse node drain w1",
		"scn.scn:2:8: expected service, network, secret or config (the command to refuse) after "
		"'refuse', got 'node'");
}

/* Issue 17, the routing mesh: reach PORT[/PROTO] on NODE and no reach
 * PORT[/PROTO] on NODE; `reach NAME from SVC.SLOT` and `no leader` keep
 * their meaning; a bad port, protocol or node is named. */
static void test_scn_mesh_conditions(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;
	(void)state;

	c = line_cmd("expect reach 8080 on w1 within 5s", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_MESH_REACH);
	assert_int_equal(c->u.expect.cond.count, 8080);
	assert_int_equal(c->u.expect.cond.proto, 0);
	assert_true(c->u.expect.cond.has_node);
	assert_int_equal(c->u.expect.cond.node.kind, SCN_NODE_WORKER);
	assert_int_equal(c->u.expect.cond.node.number, 1);
	assert_true(c->u.expect.has_within);
	scn_free(&s);
	c = line_cmd("always reach 53/udp on leader", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_MESH_REACH);
	assert_int_equal(c->u.expect.cond.count, 53);
	assert_int_equal(c->u.expect.cond.proto, 1);
	assert_int_equal(c->u.expect.cond.node.kind, SCN_NODE_LEADER);
	scn_free(&s);
	c = line_cmd("expect no reach 9090/sctp on m2", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_MESH_REFUSED);
	assert_int_equal(c->u.expect.cond.count, 9090);
	assert_int_equal(c->u.expect.cond.proto, 2);
	assert_int_equal(c->u.expect.cond.node.kind, SCN_NODE_MANAGER);
	assert_int_equal(c->u.expect.cond.node.number, 2);
	scn_free(&s);
	/* the older forms read as before */
	c = line_cmd("expect reach db from web.1", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_REACH);
	assert_string_equal(c->u.expect.cond.service, "db");
	scn_free(&s);
	c = line_cmd("expect no leader", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_NO_LEADER);
	scn_free(&s);
	line_fails(
		"expect reach 0 on w1",
		"scn.scn:2:14: expected a published port 1-65535 (e.g. 8080 or 53/udp) after "
		"'reach', got '0'");
	line_fails(
		"expect reach 8080/icmp on w1",
		"scn.scn:2:14: expected a published port 1-65535 (e.g. 8080 or 53/udp) after "
		"'reach', got '8080/icmp'");
	line_fails(
		"expect reach 70000 on w1",
		"scn.scn:2:14: expected a published port 1-65535 (e.g. 8080 or 53/udp) after "
		"'reach', got '70000'");
	line_fails("expect reach 8080 on w9",
		   "scn.scn:2:22: node w9 does not exist (cluster has w1..w2)");
	line_fails("expect no reach 8080 w1",
		   "scn.scn:2:22: expected 'on' after 'no reach 8080', got 'w1'");
}

/* issue 20: expect event KIND NAME ACTION; a kind or action it does not
 * know is named with what it knows. */
static void test_scn_event_condition(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;
	(void)state;

	c = line_cmd("expect event service web create within 5s", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_EVENT);
	assert_string_equal(c->u.expect.cond.reason, "service");
	assert_string_equal(c->u.expect.cond.service, "web");
	assert_int_equal(c->u.expect.cond.count, 0);
	assert_true(c->u.expect.has_within);
	scn_free(&s);
	c = line_cmd("expect event task web.3 remove", &s);
	assert_string_equal(c->u.expect.cond.reason, "task");
	assert_string_equal(c->u.expect.cond.service, "web.3");
	assert_int_equal(c->u.expect.cond.count, 2);
	scn_free(&s);
	line_fails(
		"expect event volume s create",
		"scn.scn:2:14: expected a kind of event (service, node, task, network, "
		"secret, config) after 'event', got 'volume'");
	line_fails(
		"expect event node w1 vanish",
		"scn.scn:2:22: expected create, update or remove after 'event node w1', "
		"got 'vanish'");
}

/* issue 20: secret|config create|rm, refuse secret rm, secret= and
 * config= keys (NAME[:TARGET], none), files NAME [on NODE] OP N */
static void test_scn_secret_forms(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;
	(void)state;

	c = line_cmd("secret create db data=pw bytes=1K", &s);
	assert_int_equal(c->kind, SCN_SECRET_CREATE);
	assert_false(c->u.secret.config);
	assert_string_equal(c->u.secret.name, "db");
	assert_string_equal(c->u.secret.data, "pw");
	assert_int_equal(c->u.secret.bytes, 1024);
	scn_free(&s);
	c = line_cmd("config rm app", &s);
	assert_int_equal(c->kind, SCN_SECRET_RM);
	assert_true(c->u.secret.config);
	scn_free(&s);
	c = line_cmd("refuse secret rm db", &s);
	assert_int_equal(c->kind, SCN_SECRET_RM);
	assert_true(c->refuse);
	scn_free(&s);
	c = line_cmd("service create web secret=db secret=db2:pw config=app:/etc/a", &s);
	assert_true(c->u.service.set & SCN_SVC_FILES);
	assert_int_equal(c->u.service.files_set, 3);
	assert_int_equal(c->u.service.file_count[0], 2);
	assert_string_equal(c->u.service.file_names[0][1], "db2");
	assert_string_equal(c->u.service.file_targets[0][1], "pw");
	assert_null(c->u.service.file_targets[0][0]);
	assert_string_equal(c->u.service.file_targets[1][0], "/etc/a");
	scn_free(&s);
	c = line_cmd("service update web secret=none", &s);
	assert_int_equal(c->u.service.files_set, 1);
	assert_int_equal(c->u.service.file_count[0], 0);
	scn_free(&s);
	c = line_cmd("expect files db on w1 == 2 within 5s", &s);
	assert_int_equal(c->u.expect.cond.kind, SCN_COND_FILES);
	assert_string_equal(c->u.expect.cond.service, "db");
	assert_true(c->u.expect.cond.has_node);
	assert_int_equal(c->u.expect.cond.count, 2);
	scn_free(&s);
	line_fails("secret drop db", "scn.scn:2:8: expected create or rm after 'secret', "
				     "got 'drop'");
	line_fails("service create web secret=db:",
		   "scn.scn:2:30: missing target after ':'");
}

/* scn_first: the first command of a kind, NULL when there is none. */
static void test_scn_first_finds_the_first_of_a_kind(void **state)
{
	struct scn_script s;
	const struct scn_cmd *c;

	(void)state;
	parse_ok("cluster managers=1 workers=2\nrun 1s\nrun 2s\n", &s);
	c = scn_first(&s, SCN_RUN);
	assert_non_null(c);
	assert_ptr_equal(c, &s.cmds[1]);
	assert_int_equal(c->u.run_ms, 1000);
	assert_ptr_equal(scn_first(&s, SCN_CLUSTER), &s.cmds[0]);
	assert_null(scn_first(&s, SCN_CA_ROTATE));
	scn_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scn_secret_forms),
		cmocka_unit_test(test_scn_parses_ca_rotation_and_tokens),
		cmocka_unit_test(test_scn_rejects_bad_ca_commands),
		cmocka_unit_test(test_scn_first_finds_the_first_of_a_kind),
		cmocka_unit_test(test_scn_node_add_description),
		cmocka_unit_test(test_scn_parses_strangers_cert_and_forge),
		cmocka_unit_test(test_scn_rejects_bad_identity_commands),
		cmocka_unit_test(test_scn_parses_every_command_and_condition),
		cmocka_unit_test(test_scn_await_needs_within),
		cmocka_unit_test(test_scn_keeps_text_line_and_column_without_comment),
		cmocka_unit_test(test_scn_cluster_defaults_to_one_manager_four_cpus_8g),
		cmocka_unit_test(test_scn_reads_durations_with_units_and_decimals),
		cmocka_unit_test(test_scn_reads_compound_durations),
		cmocka_unit_test(test_scn_reads_sizes_as_binary_multiples),
		cmocka_unit_test(test_scn_reads_probabilities_as_fraction_or_percent),
		cmocka_unit_test(test_scn_reads_ops_with_or_without_spaces),
		cmocka_unit_test(test_scn_node_add_names_the_next_node_which_then_exists),
		cmocka_unit_test(test_scn_service_update_sets_only_given_keys),
		cmocka_unit_test(test_scn_service_update_force_and_rollback_keys),
		cmocka_unit_test(test_scn_set_orphan_delay_goes_after_cluster),
		cmocka_unit_test(test_scn_service_create_starts_from_docker_defaults),
		cmocka_unit_test(test_scn_service_env_keeps_each_variable_in_order),
		cmocka_unit_test(test_scn_service_env_bytes_adds_one_pad_variable),
		cmocka_unit_test(test_scn_service_without_env_has_none),
		cmocka_unit_test(test_scn_rejects_bad_env),
		cmocka_unit_test(test_scn_rejects_more_env_than_the_limit),
		cmocka_unit_test(test_scn_names_nodes_commands_states_and_ops),
		cmocka_unit_test(test_scn_op_holds_compares_got_with_want),
		cmocka_unit_test(
			test_scn_parse_file_reads_a_file_and_names_an_unreadable_one),
		cmocka_unit_test(test_scn_rejects_unknown_command),
		cmocka_unit_test(test_scn_rejects_unknown_key_naming_the_allowed_ones),
		cmocka_unit_test(test_scn_rejects_duplicate_key),
		cmocka_unit_test(test_scn_rejects_a_word_where_key_value_belongs),
		cmocka_unit_test(test_scn_rejects_missing_value),
		cmocka_unit_test(test_scn_rejects_bad_duration),
		cmocka_unit_test(test_scn_rejects_duration_without_unit),
		cmocka_unit_test(test_scn_rejects_duration_finer_than_a_millisecond),
		cmocka_unit_test(test_scn_rejects_duration_over_the_limit),
		cmocka_unit_test(test_scn_rejects_bad_size),
		cmocka_unit_test(test_scn_rejects_bad_probability),
		cmocka_unit_test(test_scn_rejects_range_with_min_over_max),
		cmocka_unit_test(test_scn_rejects_node_that_does_not_exist),
		cmocka_unit_test(test_scn_rejects_what_is_not_a_node_name),
		cmocka_unit_test(test_scn_rejects_command_before_cluster),
		cmocka_unit_test(test_scn_rejects_raft_timing_after_cluster),
		cmocka_unit_test(test_scn_rejects_second_cluster),
		cmocka_unit_test(test_scn_rejects_scenario_without_cluster),
		cmocka_unit_test(test_scn_rejects_partition_with_one_group),
		cmocka_unit_test(test_scn_rejects_node_in_two_groups),
		cmocka_unit_test(test_scn_rejects_two_star_groups),
		cmocka_unit_test(test_scn_rejects_star_sharing_a_group),
		cmocka_unit_test(test_scn_rejects_empty_partition_group),
		cmocka_unit_test(test_scn_rejects_more_groups_than_the_limit),
		cmocka_unit_test(test_scn_rejects_bad_op),
		cmocka_unit_test(test_scn_rejects_missing_count),
		cmocka_unit_test(test_scn_node_condition_reads_a_role),
		cmocka_unit_test(test_scn_rejects_bad_state_name),
		cmocka_unit_test(test_scn_rejects_unknown_condition),
		cmocka_unit_test(test_scn_rebalance_keys_and_spread),
		cmocka_unit_test(test_scn_rejects_always_within),
		cmocka_unit_test(test_scn_rejects_within_without_duration),
		cmocka_unit_test(test_scn_rejects_replicas_with_mode_global),
		cmocka_unit_test(test_scn_rejects_bad_choice_value),
		cmocka_unit_test(test_scn_rejects_exit_without_after),
		cmocka_unit_test(test_scn_rejects_bad_constraint),
		cmocka_unit_test(test_scn_rejects_more_constraints_than_the_limit),
		cmocka_unit_test(test_scn_rejects_bad_spread),
		cmocka_unit_test(test_scn_rejects_more_spreads_than_the_limit),
		cmocka_unit_test(test_scn_rejects_more_commands_than_the_limit),
		cmocka_unit_test(test_scn_rejects_counts_over_their_limits),
		cmocka_unit_test(test_scn_rejects_line_too_long),
		cmocka_unit_test(
			test_scn_rejects_trailing_garbage_after_complete_command),
		cmocka_unit_test(test_scn_rejects_empty_service_update),
		cmocka_unit_test(test_scn_rejects_unknown_subcommand),
		cmocka_unit_test(test_scn_rejects_bad_seed),
		cmocka_unit_test(test_scn_rejects_link_to_itself),
		cmocka_unit_test(test_scn_link_arrow_needs_no_blanks),
		cmocka_unit_test(test_scn_rejects_control_bytes),
		cmocka_unit_test(test_scn_skips_a_byte_order_mark),
		cmocka_unit_test(test_scn_image_start_fail_and_stop_ignore),
		cmocka_unit_test(test_scn_health_keys_and_image_health),
		cmocka_unit_test(test_scn_runtime_fail_reads_ops_and_for),
		cmocka_unit_test(test_scn_runtime_restart_and_ok),
		cmocka_unit_test(test_scn_disaster_recovery_forms),
		cmocka_unit_test(test_scn_runtime_bind_unbind_and_dataplane),
		cmocka_unit_test(test_scn_disk_faults_and_ok),
		cmocka_unit_test(test_scn_rejects_bad_fault_commands),
		cmocka_unit_test(test_scn_network_forms),
		cmocka_unit_test(test_scn_mesh_conditions),
		cmocka_unit_test(test_scn_network_key_forms),
		cmocka_unit_test(test_scn_event_condition),
	};
	return cmocka_run_group_tests_name("scenario", tests, NULL, NULL);
}
