/* Tests of sim/realplan.c, the pure half of `swarmsim run --real` (issue
 * 19): what a real run refuses at parse time (file:line, form, why), the
 * time scale, the nftables text of partitions and loss, the image scripts
 * and the JSON reader of swarmctl's listings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "sim/realplan.h"
#include "sim/scenario.h"

static void parse(const char *text, struct scn_script *s)
{
	char err[512] = "";
	int rv = scn_parse("t.scn", text, strlen(text), s, err, sizeof err);
	if (rv)
		print_error("parse: %s\n", err);
	assert_int_equal(rv, 0);
}

/* realplan_check on text: 0, or the refusal in err. */
static int check(const char *text, bool netem, char *err, size_t n)
{
	struct scn_script s;
	int rv;
	parse(text, &s);
	err[0] = '\0';
	rv = realplan_check(&s, netem, err, n);
	scn_free(&s);
	return rv;
}

static void test_realplan_accepts_the_subset(void **state)
{
	char err[512];
	(void)state;
	assert_int_equal(
		check("set election-ticks=10 tick=1s\n"
		      "cluster managers=3 workers=2\n"
		      "set heartbeat=5s\n"
		      "image slow start=2s\n"
		      "service create web replicas=4 image=slow constraint=node.role==worker\n"
		      "expect converged within 1m\n"
		      "kill leader\nkill w1 process\nrestart w1\n"
		      "partition m1 | *\nisolate w2\nlink m1 m2 loss=20%\nheal\n"
		      "node drain w1\nservice update web image=slow update-parallelism=2\n"
		      "expect running web on w2 >= 1 within 30s\n"
		      "expect store tasks web state=running == 4\n"
		      "always leader != m3\nexpect nodes ready == 5\n",
		      false, err, sizeof err),
		0);
	assert_string_equal(err, "");
}

static void test_realplan_refuses_with_file_line_form_and_why(void **state)
{
	char err[512];
	(void)state;
	/* netem is missing: delay= is refused, naming the qdisc */
	assert_int_equal(check("cluster managers=2\nrun 1s\nlink m1 m2 delay=50ms\n",
			       false, err, sizeof err),
			 CS_EINVAL);
	assert_non_null(
		strstr(err, "t.scn:3: --real cannot run `link m1 m2 delay=50ms`: "));
	assert_non_null(strstr(err, "netem"));
	/* a heartbeat a real swarmd cannot have */
	assert_int_equal(
		check("cluster managers=1\nset heartbeat=1s\n", false, err, sizeof err),
		CS_EINVAL);
	assert_non_null(
		strstr(err, "t.scn:2: --real cannot run `set heartbeat=1s`: heartbeat="));
	/* simulated-only faults */
	assert_int_equal(
		check("cluster managers=1\ndisk m1 fault=eio\n", false, err, sizeof err),
		CS_EINVAL);
	assert_non_null(strstr(err, "t.scn:2:"));
	assert_int_equal(check("cluster managers=1\nexpect managers in sync\n", false,
			       err, sizeof err),
			 CS_EINVAL);
	assert_non_null(strstr(err, "managers in sync"));
	assert_int_equal(check("cluster managers=1\nservice create a max-per-node=1\n",
			       false, err, sizeof err),
			 CS_EINVAL);
	assert_non_null(strstr(err, "max-per-node"));
	assert_int_equal(
		check("cluster managers=1\nnode add worker\n", false, err, sizeof err),
		CS_EINVAL);
	assert_non_null(strstr(err, "t.scn:2: --real cannot run `node add worker`"));
}

static void test_realplan_scale_shortens_every_written_duration(void **state)
{
	struct scn_script s;
	(void)state;
	parse("cluster managers=1\nrun 10s\nimage a start=1s..2s exit=3 after=4s\n"
	      "service create web restart-delay=2s update-delay=1s\n"
	      "expect leader within 30s\nrun 1ms\n",
	      &s);
	realplan_scale(&s, 250000); /* x 0.25 */
	assert_int_equal(s.cmds[1].u.run_ms, 2500);
	assert_int_equal(s.cmds[2].u.image.start.min_ms, 250);
	assert_int_equal(s.cmds[2].u.image.start.max_ms, 500);
	assert_int_equal(s.cmds[2].u.image.exit_after.min_ms, 1000);
	assert_int_equal(s.cmds[3].u.service.restart_delay_ms, 500);
	assert_int_equal(s.cmds[3].u.service.update_delay_ms, 250);
	assert_int_equal(s.cmds[4].u.expect.within_ms, 7500);
	assert_int_equal(s.cmds[5].u.run_ms, 1); /* never 0 */
	scn_free(&s);
}

static void test_realplan_nft_drops_across_a_partition_and_some_loss(void **state)
{
	static struct realplan_net net;
	const char *addrs[] = {"10.26.0.1", "10.26.0.2", "10.26.0.3"};
	uint32_t groups[3] = {1, 0, 0};
	char buf[2048];
	(void)state;
	memset(&net, 0, sizeof net);
	net.node_count = 3;
	/* partition m1 | * */
	assert_int_equal(realplan_net_partition(&net, groups, 2), 0);
	assert_true(realplan_net_blocked(&net, 0, 1));
	assert_true(realplan_net_blocked(&net, 2, 0));
	assert_false(realplan_net_blocked(&net, 1, 2));
	net.loss_ppm[1][2] = 200000;
	assert_true(realplan_nft(&net, 0, "rwfault", addrs, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "ip daddr 10.26.0.2 drop\n"));
	assert_non_null(strstr(buf, "ip daddr 10.26.0.3 drop\n"));
	assert_null(strstr(buf, "10.26.0.1 "));
	assert_true(realplan_nft(&net, 1, "rwfault", addrs, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "ip daddr 10.26.0.1 drop\n"));
	assert_non_null(strstr(
		buf, "ip daddr 10.26.0.3 numgen random mod 1000000 < 200000 drop\n"));
	/* the table is replaced whole: created, deleted, made again */
	assert_non_null(
		strstr(buf, "table inet rwfault {}\ndelete table inet rwfault\n"));
	/* too small a buffer is an error, never a cut rule set */
	assert_int_equal(realplan_nft(&net, 1, "rwfault", addrs, buf, 40), -1);
}

static void test_realplan_image_script_follows_the_declaration(void **state)
{
	struct scn_script s;
	char buf[1024];
	(void)state;
	parse("cluster managers=1\nimage bad start=2s exit=3 after=1s..2s\n"
	      "image stubborn stop=ignore\n",
	      &s);
	assert_true(realplan_image_script(&s.cmds[1].u.image, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "trap 'exit 0' TERM\nms=2000\n"));
	assert_non_null(strstr(buf, "ms=$((1000 + (RANDOM * 32768 + RANDOM) % 1001))\n"));
	assert_non_null(strstr(buf, "exit 3\n"));
	assert_true(realplan_image_script(&s.cmds[2].u.image, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "trap '' TERM\n"));
	assert_non_null(strstr(buf, "while :; do sleep 1; done\n"));
	/* the default image: 100ms..1s, then runs */
	assert_true(realplan_image_script(NULL, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "ms=$((100 + (RANDOM * 32768 + RANDOM) % 901))\n"));
	assert_int_equal(realplan_image_script(NULL, buf, 20), -1);
	scn_free(&s);
}

static void test_realplan_json_reads_swarmctl_listings(void **state)
{
	const char *json = "[{\"id\":\"ab\",\"hostname\":\"m1\",\"leader\":true,"
			   "\"labels\":{\"a\":\"}\"},\"status\":\"ready\"},\n"
			   " {\"id\":\"cd\",\"hostname\":\"w\\\"1\",\"leader\":false,"
			   "\"status\":\"down\"}]";
	const char *p = json, *obj;
	size_t len;
	char v[32];
	(void)state;
	assert_true(realplan_json_next(&p, &obj, &len));
	assert_true(realplan_json_get(obj, len, "hostname", v, sizeof v));
	assert_string_equal(v, "m1");
	assert_true(realplan_json_get(obj, len, "leader", v, sizeof v));
	assert_string_equal(v, "true");
	/* a key after a nested object with a brace in a string */
	assert_true(realplan_json_get(obj, len, "status", v, sizeof v));
	assert_string_equal(v, "ready");
	assert_false(realplan_json_get(obj, len, "labels", v, sizeof v));
	assert_false(realplan_json_get(obj, len, "nope", v, sizeof v));
	assert_false(realplan_json_get(obj, len, "status", v, 3)); /* does not fit */
	assert_true(realplan_json_next(&p, &obj, &len));
	assert_true(realplan_json_get(obj, len, "status", v, sizeof v));
	assert_string_equal(v, "down");
	assert_false(realplan_json_next(&p, &obj, &len));
	p = "[]";
	assert_false(realplan_json_next(&p, &obj, &len));
	p = "[{\"a\":";
	assert_false(realplan_json_next(&p, &obj, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realplan_accepts_the_subset),
		cmocka_unit_test(test_realplan_refuses_with_file_line_form_and_why),
		cmocka_unit_test(test_realplan_scale_shortens_every_written_duration),
		cmocka_unit_test(
			test_realplan_nft_drops_across_a_partition_and_some_loss),
		cmocka_unit_test(test_realplan_image_script_follows_the_declaration),
		cmocka_unit_test(test_realplan_json_reads_swarmctl_listings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
