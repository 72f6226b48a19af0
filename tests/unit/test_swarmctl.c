/* Tests of swarmctl's parsing and printing (net/swarmctl_cli.c): values
 * with units, the service flags (bad ones named with what is expected; an
 * update changes only what it is told), aligned tables and JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "net/swarmctl_cli.h"

static void test_swarmctl_durations(void **state)
{
	char err[256];
	uint64_t ms;

	assert_int_equal(swarmctl_cli_duration_ms("--d", "10s", &ms, err, sizeof err), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "500ms", &ms, err, sizeof err),
			 0);
	assert_int_equal(ms, 500);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "1m30s", &ms, err, sizeof err),
			 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "1h", &ms, err, sizeof err), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "1.5s", &ms, err, sizeof err),
			 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "0", &ms, err, sizeof err), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(
		swarmctl_cli_duration_ms("--restart-delay", "10", &ms, err, sizeof err),
		CS_EINVAL);
	assert_string_equal(err, "--restart-delay: '10' is not a duration (expected a "
				 "number and a unit: 500ms, 10s, 1m30s, 2h)");
	assert_int_equal(swarmctl_cli_duration_ms("--d", "", &ms, err, sizeof err),
			 CS_EINVAL);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "5x", &ms, err, sizeof err),
			 CS_EINVAL);
	assert_int_equal(swarmctl_cli_duration_ms("--d", "s", &ms, err, sizeof err),
			 CS_EINVAL);
}

static void test_swarmctl_sizes_cpus_ratios(void **state)
{
	char err[256];
	uint64_t v;
	uint32_t ppm;

	assert_int_equal(swarmctl_cli_bytes("--m", "64MiB", &v, err, sizeof err), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(swarmctl_cli_bytes("--m", "1G", &v, err, sizeof err), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(swarmctl_cli_bytes("--m", "1.5g", &v, err, sizeof err), 0);
	assert_int_equal(v, 3ull << 29);
	assert_int_equal(swarmctl_cli_bytes("--m", "512k", &v, err, sizeof err), 0);
	assert_int_equal(v, 512ull << 10);
	assert_int_equal(swarmctl_cli_bytes("--m", "4096", &v, err, sizeof err), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(
		swarmctl_cli_bytes("--reserve-memory", "64XB", &v, err, sizeof err),
		CS_EINVAL);
	assert_non_null(strstr(err, "--reserve-memory: '64XB' is not a size"));
	assert_int_equal(swarmctl_cli_bytes("--m", "99999999999T", &v, err, sizeof err),
			 CS_EINVAL); /* over 2^64 */

	assert_int_equal(swarmctl_cli_millicpus("--c", "0.5", &v, err, sizeof err), 0);
	assert_int_equal(v, 500);
	assert_int_equal(swarmctl_cli_millicpus("--c", "2", &v, err, sizeof err), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(swarmctl_cli_millicpus("--c", "0.125", &v, err, sizeof err), 0);
	assert_int_equal(v, 125);
	assert_int_equal(
		swarmctl_cli_millicpus("--limit-cpu", "0.0001", &v, err, sizeof err),
		CS_EINVAL);
	assert_non_null(strstr(err, "--limit-cpu: '0.0001'"));
	assert_int_equal(swarmctl_cli_millicpus("--c", "half", &v, err, sizeof err),
			 CS_EINVAL);

	assert_int_equal(swarmctl_cli_ratio_ppm("--r", "0.25", &ppm, err, sizeof err), 0);
	assert_int_equal(ppm, 250000);
	assert_int_equal(swarmctl_cli_ratio_ppm("--r", "1", &ppm, err, sizeof err), 0);
	assert_int_equal(ppm, 1000000);
	assert_int_equal(swarmctl_cli_ratio_ppm("--r", "1.5", &ppm, err, sizeof err),
			 CS_EINVAL);
	assert_int_equal(swarmctl_cli_u64("--replicas", "3x", 10, &v, err, sizeof err),
			 CS_EINVAL);
	assert_string_equal(err, "--replicas: '3x' is not a whole number from 0 to 10");
}

static int parse(struct swarmctl_cli_spec *b, bool update, char *err, size_t n, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;

	va_start(ap, n);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	return swarmctl_cli_spec(b, argc, argv, update, err, n);
}

static void test_swarmctl_service_create_flags(void **state)
{
	struct swarmctl_cli_spec b;
	const Cs__TaskSpec *t;
	char err[256];

	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(
		parse(&b, false, err, sizeof err, "--name", "web", "--image=nginx",
		      "--replicas", "3", "--env", "A=1", "--env", "B=x=y", "--constraint",
		      "node.labels.zone==a", "--reserve-cpu", "0.5", "--reserve-memory",
		      "64MiB", "--restart-condition", "on-failure", "--restart-delay",
		      "2s", "--update-parallelism", "2", "--update-order", "start-first",
		      "--placement-pref", "spread=node.labels.zone", "--", "sh", "-c",
		      "--name x", NULL),
		0);
	assert_string_equal(b.spec.name, "web");
	assert_int_equal(b.spec.replicas, 3);
	t = b.spec.task;
	assert_non_null(t);
	assert_string_equal(t->container->image, "nginx");
	assert_int_equal(t->container->n_env, 2);
	assert_string_equal(t->container->env[1], "B=x=y");
	assert_int_equal(t->container->n_command, 3);
	assert_string_equal(t->container->command[2], "--name x");
	assert_int_equal(t->placement->n_constraints, 1);
	assert_string_equal(t->placement->spread_labels[0], "node.labels.zone");
	assert_int_equal(t->reservations->millicpus, 500);
	assert_int_equal(t->reservations->memory_bytes, 64ull << 20);
	assert_null(t->limits); /* not given: not sent */
	assert_int_equal(t->restart->condition,
			 CS__RESTART_POLICY__CONDITION__CONDITION_ON_FAILURE);
	assert_int_equal(t->restart->delay_ms, 2000);
	assert_int_equal(b.spec.update->parallelism, 2);
	assert_int_equal(b.spec.update->order,
			 CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST);

	/* defaults and requirements */
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(
		parse(&b, false, err, sizeof err, "--name", "a", "--image", "i", NULL),
		0);
	assert_int_equal(b.spec.replicas, 1);
	assert_null(b.spec.update);
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "a", NULL),
			 CS_EINVAL);
	assert_string_equal(err, "--image: required");

	/* bad values name the flag and what is expected */
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--env", "=1", NULL),
			 CS_EINVAL);
	assert_string_equal(err,
			    "--env: '=1' is not KEY=VALUE (a non-empty key, then =)");
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(
		parse(&b, false, err, sizeof err, "--constraint", "zone=a", NULL),
		CS_EINVAL);
	assert_non_null(strstr(err, "--constraint: 'zone=a' is not a constraint"));
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--mode", "both", NULL),
			 CS_EINVAL);
	assert_string_equal(err,
			    "--mode: unknown value 'both' (expected replicated, global, "
			    "replicated-job or global-job)");
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--replica", "2", NULL),
			 CS_EINVAL);
	assert_string_equal(err, "unknown flag '--replica' (see --help)");
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--image", NULL), CS_EINVAL);
	assert_string_equal(err, "--image: needs a value");
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "g", "--image", "i",
			       "--mode", "global", "--replicas", "2", NULL),
			 CS_EINVAL);
	assert_string_equal(err, "--replicas: a global service has no replica count");
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(
		parse(&b, false, err, sizeof err, "--placement-pref", "zone", NULL),
		CS_EINVAL);
	assert_non_null(strstr(err, "expected spread=node.labels.KEY"));
}

/* Packs a task spec (for byte comparison). */
static size_t pack_task(const Cs__TaskSpec *t, uint8_t *buf, size_t max)
{
	size_t len = t ? cs__task_spec__get_packed_size(t) : 0;
	assert_true(len <= max);
	if (t)
		cs__task_spec__pack(t, buf);
	return len;
}

static void test_swarmctl_update_changes_only_what_is_said(void **state)
{
	struct swarmctl_cli_spec cur, b;
	uint8_t before[1024], after[1024];
	size_t lb, la;
	char err[256];

	swarmctl_cli_spec_init(&cur, NULL);
	assert_int_equal(parse(&cur, false, err, sizeof err, "--name", "web", "--image",
			       "nginx", "--env", "A=1", "--env", "B=2", "--replicas", "2",
			       "--restart-delay", "1s", NULL),
			 0);
	lb = pack_task(cur.spec.task, before, sizeof before);

	/* replicas only: the task spec stays byte for byte (no rolling update) */
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--replicas", "5", NULL),
			 0);
	assert_string_equal(b.target, "web");
	assert_int_equal(b.spec.replicas, 5);
	assert_string_equal(b.spec.name, "web");
	la = pack_task(b.spec.task, after, sizeof after);
	assert_int_equal(la, lb);
	assert_memory_equal(after, before, lb);

	/* a list given replaces the list; the rest stays */
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--env", "C=3",
			       "--image", "nginx:2", NULL),
			 0);
	assert_int_equal(b.spec.task->container->n_env, 1);
	assert_string_equal(b.spec.task->container->env[0], "C=3");
	assert_string_equal(b.spec.task->container->image, "nginx:2");
	assert_int_equal(b.spec.task->restart->delay_ms, 1000);
	assert_int_equal(b.spec.replicas, 2);
	/* the spec it started from is untouched */
	assert_int_equal(cur.spec.task->container->n_env, 2);
	assert_string_equal(cur.spec.task->container->image, "nginx");

	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--rollback", NULL), 0);
	assert_true(b.rollback);
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--name", "x", NULL),
			 CS_EINVAL);
	assert_non_null(strstr(err, "--name: a service cannot be renamed"));
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "--replicas", "1", NULL),
			 CS_EINVAL);
	assert_string_equal(err, "NAME: say which service to update");
}

/* Issue 20: --rebalance (also =true/=false), --no-rebalance and
 * --rebalance-parallelism; an update keeps what it does not name, and
 * rebalancing is no part of the task spec (no rolling update). */
static void test_swarmctl_rebalance_flags(void **state)
{
	struct swarmctl_cli_spec cur, b;
	uint8_t before[1024], after[1024];
	size_t lb;
	char err[256];

	(void)state;
	swarmctl_cli_spec_init(&cur, NULL);
	assert_int_equal(parse(&cur, false, err, sizeof err, "--name", "web", "--image",
			       "nginx", "--rebalance", "--rebalance-parallelism", "3",
			       NULL),
			 0);
	assert_true(cur.spec.rebalance);
	assert_int_equal(cur.spec.rebalance_parallelism, 3);
	lb = pack_task(cur.spec.task, before, sizeof before);

	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--replicas", "4", NULL),
			 0);
	assert_true(b.spec.rebalance);
	assert_int_equal(b.spec.rebalance_parallelism, 3);

	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--no-rebalance", NULL),
			 0);
	assert_false(b.spec.rebalance);
	assert_int_equal(b.spec.rebalance_parallelism, 0);
	assert_int_equal(pack_task(b.spec.task, after, sizeof after), lb);
	assert_memory_equal(after, before, lb);

	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(
		parse(&b, true, err, sizeof err, "web", "--rebalance=false", NULL), 0);
	assert_false(b.spec.rebalance);
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "w", "--image", "i",
			       "--rebalance=true", NULL),
			 0);
	assert_true(b.spec.rebalance);
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "w", "--image", "i",
			       "--rebalance-parallelism", "x", NULL),
			 CS_EINVAL);
	assert_non_null(strstr(err, "--rebalance-parallelism"));
}

/* Issue 14: docker service's health flags and --stop-grace-period; an
 * update changes only the parts given; --no-healthcheck is ["NONE"] and
 * conflicts with the --health-* flags. */
static void test_swarmctl_health_and_stop_grace_flags(void **state)
{
	struct swarmctl_cli_spec cur, b;
	const Cs__ContainerSpec *c;
	char err[256];
	(void)state;

	swarmctl_cli_spec_init(&cur, NULL);
	assert_int_equal(parse(&cur, false, err, sizeof err, "--name", "web", "--image",
			       "nginx", "--health-cmd", "wget -q localhost",
			       "--health-interval", "5s", "--health-timeout=2s",
			       "--health-retries", "4", "--health-start-period", "1m",
			       "--stop-grace-period", "30s", NULL),
			 0);
	c = cur.spec.task->container;
	assert_non_null(c->healthcheck);
	assert_int_equal(c->healthcheck->n_test, 2);
	assert_string_equal(c->healthcheck->test[0], "CMD-SHELL");
	assert_string_equal(c->healthcheck->test[1], "wget -q localhost");
	assert_int_equal(c->healthcheck->interval_ms, 5000);
	assert_int_equal(c->healthcheck->timeout_ms, 2000);
	assert_int_equal(c->healthcheck->retries, 4);
	assert_int_equal(c->healthcheck->start_period_ms, 60000);
	assert_int_equal(c->stop_grace_period_ms, 30000);

	/* an update of the retries keeps the command and the rest */
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(
		parse(&b, true, err, sizeof err, "web", "--health-retries", "2", NULL),
		0);
	c = b.spec.task->container;
	assert_int_equal(c->healthcheck->retries, 2);
	assert_int_equal(c->healthcheck->n_test, 2);
	assert_string_equal(c->healthcheck->test[1], "wget -q localhost");
	assert_int_equal(c->healthcheck->interval_ms, 5000);
	assert_int_equal(c->stop_grace_period_ms, 30000);
	assert_int_equal(cur.spec.task->container->healthcheck->retries, 4);

	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(
		parse(&b, true, err, sizeof err, "web", "--no-healthcheck", NULL), 0);
	c = b.spec.task->container;
	assert_int_equal(c->healthcheck->n_test, 1);
	assert_string_equal(c->healthcheck->test[0], "NONE");

	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "web", "--image",
			       "x", "--no-healthcheck", "--health-retries", "2", NULL),
			 CS_EINVAL);
	assert_string_equal(err, "--no-healthcheck conflicts with --health-* options");
	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "web", "--image",
			       "x", "--stop-grace-period", "soon", NULL),
			 CS_EINVAL);
	assert_non_null(strstr(err, "--stop-grace-period"));
}

/* Issue 14: --rollback-* and update --force. */
static void test_swarmctl_rollback_config_and_force(void **state)
{
	struct swarmctl_cli_spec cur, b;
	char err[256];

	/* --rollback-* fill the rollback's own config, from SwarmKit's
	 * defaults; the update config stays as it was */
	swarmctl_cli_spec_init(&cur, NULL);
	assert_int_equal(parse(&cur, false, err, sizeof err, "--name", "web", "--image",
			       "nginx", "--update-parallelism", "4", "--rollback-delay",
			       "30s", "--rollback-failure-action", "continue", NULL),
			 0);
	assert_non_null(cur.spec.rollback);
	assert_int_equal(cur.spec.rollback->parallelism, 1);
	assert_int_equal(cur.spec.rollback->delay_ms, 30000);
	assert_int_equal(cur.spec.rollback->monitor_ms, 5000);
	assert_int_equal(cur.spec.rollback->failure_action,
			 CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_CONTINUE);
	assert_int_equal(cur.spec.update->parallelism, 4);
	assert_int_equal(cur.spec.task->force_update, 0);

	/* an update keeps the rollback config and changes what it says */
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--rollback-parallelism",
			       "3", "--rollback-order", "start-first", NULL),
			 0);
	assert_int_equal(b.spec.rollback->parallelism, 3);
	assert_int_equal(b.spec.rollback->delay_ms, 30000);
	assert_int_equal(b.spec.rollback->order,
			 CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST);

	/* --force raises the counter by one, and nothing else */
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(parse(&b, true, err, sizeof err, "web", "--force", NULL), 0);
	assert_int_equal(b.spec.task->force_update, 1);
	assert_string_equal(b.spec.task->container->image, "nginx");
	assert_int_equal(parse(&b, false, err, sizeof err, "--force", NULL), CS_EINVAL);
	swarmctl_cli_spec_init(&b, &cur.spec);
	assert_int_equal(
		parse(&b, true, err, sizeof err, "web", "--rollback-order", "x", NULL),
		CS_EINVAL);
}

static void test_swarmctl_table_aligns_columns(void **state)
{
	static const char *const heads[] = {"ID", "NAME", "MESSAGE"};
	static const char *const r1[] = {"1", "a-long-name", "started"};
	static const char *const r2[] = {"22", "b", ""};
	struct swarmctl_cli_table t;
	char *buf = NULL;
	size_t len;
	FILE *f;

	assert_int_equal(swarmctl_cli_table_init(&t, 3, heads), 0);
	assert_int_equal(swarmctl_cli_table_add(&t, r1), 0);
	assert_int_equal(swarmctl_cli_table_add(&t, r2), 0);
	f = open_memstream(&buf, &len);
	swarmctl_cli_table_print(&t, f);
	fclose(f);
	assert_string_equal(buf, "ID   NAME          MESSAGE\n"
				 "1    a-long-name   started\n"
				 "22   b\n");
	free(buf);
	swarmctl_cli_table_free(&t);
}

static void test_swarmctl_json_escapes(void **state)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	swarmctl_cli_json_escape(f, "a\"b\\c\n\t\x01 é \xff end");
	fclose(f);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\t\\u0001 é \\ufffd end\"");
	free(buf);
}

/* Issue 14: --label KEY=VALUE gives the service labels (argv untouched, as
 * update parses it twice); an update's --label replaces the list. */
static void test_swarmctl_service_labels(void **state)
{
	struct swarmctl_cli_spec b, u;
	char err[256];
	char arg[] = "tier=back";

	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "web", "--image",
			       "i", "--label", arg, "--label=gpu", NULL),
			 0);
	assert_int_equal(b.spec.n_labels, 2);
	assert_string_equal(b.spec.labels[0]->key, "tier");
	assert_string_equal(b.spec.labels[0]->value, "back");
	assert_string_equal(b.spec.labels[1]->key, "gpu");
	assert_string_equal(b.spec.labels[1]->value, "");
	assert_string_equal(arg, "tier=back");
	assert_null(b.spec.task->placement); /* not a task spec change */

	swarmctl_cli_spec_init(&u, &b.spec);
	assert_int_equal(parse(&u, true, err, sizeof err, "web", "--replicas", "2", NULL),
			 0);
	assert_int_equal(u.spec.n_labels, 2); /* kept */
	swarmctl_cli_spec_init(&u, &b.spec);
	assert_int_equal(parse(&u, true, err, sizeof err, "web", "--label", "a=1", NULL),
			 0);
	assert_int_equal(u.spec.n_labels, 1);
	assert_string_equal(u.spec.labels[0]->key, "a");

	swarmctl_cli_spec_init(&u, NULL);
	assert_int_equal(parse(&u, false, err, sizeof err, "--label", "=x", NULL),
			 CS_EINVAL);
	assert_string_equal(err,
			    "--label: '=x' is not KEY=VALUE (a key of 1 to 63 bytes, "
			    "then = and a value, or the key alone)");
}

/* Issue 20: --secret and --config in Docker's syntax; on update a name
 * given again replaces its reference, --secret-rm drops one. */
static void test_swarmctl_secret_and_config_flags(void **state)
{
	struct swarmctl_cli_spec b, u;
	char err[256];
	char arg[] = "source=db,target=pw,uid=1000,gid=1001,mode=0400";
	(void)state;

	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(parse(&b, false, err, sizeof err, "--name", "web", "--image",
			       "i", "--secret", arg, "--secret", "other", "--config",
			       "src=conf,target=/etc/app.conf", NULL),
			 0);
	assert_string_equal(arg, "source=db,target=pw,uid=1000,gid=1001,mode=0400");
	assert_int_equal(b.spec.task->container->n_secrets, 2);
	assert_string_equal(b.spec.task->container->secrets[0]->secret_name, "db");
	assert_string_equal(b.spec.task->container->secrets[0]->target, "pw");
	assert_string_equal(b.spec.task->container->secrets[0]->uid, "1000");
	assert_string_equal(b.spec.task->container->secrets[0]->gid, "1001");
	assert_int_equal(b.spec.task->container->secrets[0]->mode, 0400);
	assert_string_equal(b.spec.task->container->secrets[1]->secret_name, "other");
	assert_int_equal(b.spec.task->container->n_configs, 1);
	assert_string_equal(b.spec.task->container->configs[0]->target, "/etc/app.conf");

	swarmctl_cli_spec_init(&u, &b.spec);
	assert_int_equal(parse(&u, true, err, sizeof err, "web", "--secret-rm", "db",
			       "--config", "conf", NULL),
			 0);
	assert_int_equal(u.spec.task->container->n_secrets, 1);
	assert_string_equal(u.spec.task->container->secrets[0]->secret_name, "other");
	assert_int_equal(u.spec.task->container->n_configs, 1);
	assert_string_equal(u.spec.task->container->configs[0]->target,
			    ""); /* replaced */

	swarmctl_cli_spec_init(&u, &b.spec);
	assert_int_equal(
		parse(&u, true, err, sizeof err, "web", "--secret-rm", "nope", NULL),
		CS_EINVAL);
	assert_string_equal(err, "--secret-rm: the service has no secret named 'nope'");
	swarmctl_cli_spec_init(&u, NULL);
	assert_int_equal(
		parse(&u, false, err, sizeof err, "--secret", "db,mode=999", NULL),
		CS_EINVAL);
	assert_string_equal(err, "--secret: mode '999' is not an octal file mode (0444)");
}

/* Issue 14: task ls --filter in Docker's syntax. */
static void test_swarmctl_task_filters(void **state)
{
	struct swarmctl_cli_task_filter f;
	char err[256];
	char a1[] = "node=w1", a2[] = "node=ab12", a3[] = "desired-state=running",
	     a4[] = "desired-state=shutdown", a5[] = "label=tier=back",
	     a6[] = "label=gpu", a7[] = "service=web", b1[] = "desired-state=up",
	     b2[] = "color=red", b3[] = "node=", b4[] = "label==x";

	memset(&f, 0, sizeof f);
	assert_int_equal(swarmctl_cli_task_filter(&f, a1, err, sizeof err), 0);
	assert_int_equal(swarmctl_cli_task_filter(&f, a2, err, sizeof err), 0);
	assert_int_equal(swarmctl_cli_task_filter(&f, a3, err, sizeof err), 0);
	assert_int_equal(swarmctl_cli_task_filter(&f, a4, err, sizeof err), 0);
	assert_int_equal(swarmctl_cli_task_filter(&f, a5, err, sizeof err), 0);
	assert_int_equal(swarmctl_cli_task_filter(&f, a6, err, sizeof err), 0);
	assert_int_equal(swarmctl_cli_task_filter(&f, a7, err, sizeof err), 0);
	assert_int_equal(f.node_count, 2);
	assert_string_equal(f.nodes[1], "ab12");
	assert_int_equal(f.desired_count, 2);
	assert_int_equal(f.desired[0], CS__TASK_STATE__TASK_STATE_RUNNING);
	assert_int_equal(f.desired[1], CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	assert_int_equal(f.label_count, 2);
	assert_string_equal(f.labels[0], "tier=back");
	assert_string_equal(f.labels[1], "gpu");
	assert_string_equal(f.service, "web");

	assert_int_equal(swarmctl_cli_task_filter(&f, b1, err, sizeof err), CS_EINVAL);
	assert_string_equal(err,
			    "--filter: desired-state 'up' is not a task state "
			    "(expected running, shutdown, accepted, complete, remove, "
			    "...)");
	assert_int_equal(swarmctl_cli_task_filter(&f, b2, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "--filter: unknown filter 'color' (expected node, "
				 "desired-state, label or service)");
	assert_int_equal(swarmctl_cli_task_filter(&f, b3, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "--filter: 'node=' is not KEY=VALUE (node=, "
				 "desired-state=, label= or service=)");
	assert_int_equal(swarmctl_cli_task_filter(&f, b4, err, sizeof err), CS_EINVAL);
	assert_int_equal(f.label_count, 2);
}

/* Issue 14: inspect shows created_at and updated_at in RFC 3339 (UTC), as
 * docker inspect's CreatedAt/UpdatedAt; a record without times shows "". */
static void test_swarmctl_inspect_shows_times(void **state)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__Node nd = CS__NODE__INIT;
	char *buf = NULL, tm[40];
	size_t len;
	FILE *f;

	swarmctl_cli_time(tm, sizeof tm, 1767225605250ull);
	assert_string_equal(tm, "2026-01-01T00:00:05.250Z");
	swarmctl_cli_time(tm, sizeof tm, 0);
	assert_string_equal(tm, "");

	t.id = 1;
	t.created_ms = 1767225600000ull;
	t.updated_ms = 1767229261007ull;
	f = open_memstream(&buf, &len);
	swarmctl_cli_print_task(f, &t, "web", "w1");
	fclose(f);
	assert_non_null(strstr(buf, "\"created_at\": \"2026-01-01T00:00:00.000Z\",\n"
				    "  \"updated_at\": \"2026-01-01T01:01:01.007Z\"\n}"));
	free(buf);
	nd.hostname = "w1";
	f = open_memstream(&buf, &len);
	swarmctl_cli_print_node(f, &nd, 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"created_at\": \"\",\n  \"updated_at\": \"\"\n}"));
	free(buf);
}

static void test_swarmctl_service_ls_json(void **state)
{
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Task t1 = CS__TASK__INIT, t2 = CS__TASK__INIT;
	Cs__TaskStatus running = CS__TASK_STATUS__INIT, starting = CS__TASK_STATUS__INIT;
	Cs__Service *svcs[] = {&svc};
	Cs__Task *tasks[] = {&t1, &t2};
	char *buf = NULL;
	size_t len;
	FILE *f;

	spec.name = "we\"b";
	spec.replicas = 2;
	svc.id = 0xab;
	svc.spec = &spec;
	svc.version = 4;
	running.state = CS__TASK_STATE__TASK_STATE_RUNNING;
	starting.state = CS__TASK_STATE__TASK_STATE_STARTING;
	t1.service_id = t2.service_id = 0xab;
	t1.desired_state = t2.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t1.status = &running;
	t2.status = &starting;

	f = open_memstream(&buf, &len);
	swarmctl_cli_print_services(f, SWARMCTL_CLI_JSON, svcs, 1, NULL, 0, tasks, 2);
	fclose(f);
	assert_string_equal(buf, "[\n"
				 "  {\n"
				 "    \"id\": \"00000000000000ab\",\n"
				 "    \"name\": \"we\\\"b\",\n"
				 "    \"mode\": \"replicated\",\n"
				 "    \"replicas\": 2,\n"
				 "    \"running\": 1,\n"
				 "    \"image\": \"\",\n"
				 "    \"version\": 4,\n"
				 "    \"update_state\": \"\"\n"
				 "  }\n"
				 "]\n");
	free(buf);

	f = open_memstream(&buf, &len);
	swarmctl_cli_print_services(f, SWARMCTL_CLI_JSON, svcs, 0, NULL, 0, tasks, 0);
	fclose(f);
	assert_string_equal(buf, "[]\n");
	free(buf);

	f = open_memstream(&buf, &len);
	swarmctl_cli_print_services(f, SWARMCTL_CLI_TABLE, svcs, 1, NULL, 0, tasks, 2);
	fclose(f);
	assert_string_equal(buf,
			    "ID                 NAME   MODE         REPLICAS   IMAGE\n"
			    "00000000000000ab   we\"b   replicated   1/2\n");
	free(buf);
}

/* Issue 18: service ls's REPLICAS come from the manager's counts
 * (SERVICE_LIST with status: a DOWN node's tasks not running) when it
 * answers them, with no task list; a service the counts leave out is
 * counted from tasks. */
static void test_swarmctl_service_ls_uses_the_managers_counts(void **state)
{
	Cs__Service svc = CS__SERVICE__INIT, other = CS__SERVICE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT, ospec = CS__SERVICE_SPEC__INIT;
	Cs__ServiceCounts cnt = CS__SERVICE_COUNTS__INIT;
	Cs__Task t1 = CS__TASK__INIT;
	Cs__TaskStatus running = CS__TASK_STATUS__INIT;
	Cs__Service *svcs[] = {&svc, &other};
	Cs__ServiceCounts *counts[] = {&cnt};
	Cs__Task *tasks[] = {&t1};
	char *buf = NULL;
	size_t len;
	FILE *f;
	(void)state;

	spec.name = "web";
	spec.replicas = 100000;
	svc.id = 0xab;
	svc.spec = &spec;
	ospec.name = "db";
	ospec.replicas = 3;
	other.id = 0xcd;
	other.spec = &ospec;
	cnt.service_id = 0xab;
	cnt.running = 99000;
	cnt.desired = 100000;
	running.state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t1.service_id = 0xcd;
	t1.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t1.status = &running;

	f = open_memstream(&buf, &len);
	swarmctl_cli_print_services(f, SWARMCTL_CLI_TABLE, svcs, 2, counts, 1, tasks, 1);
	fclose(f);
	assert_string_equal(
		buf, "ID                 NAME   MODE         REPLICAS       IMAGE\n"
		     "00000000000000ab   web    replicated   99000/100000\n"
		     "00000000000000cd   db     replicated   1/3\n");
	free(buf);
	f = open_memstream(&buf, &len);
	swarmctl_cli_print_services(f, SWARMCTL_CLI_JSON, svcs, 1, counts, 1, NULL, 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"replicas\": 100000,\n    \"running\": 99000,"));
	free(buf);
}

/* issue 15: --network, --publish and -p; an update's list replaces the
 * whole list, other fields keep the service's */
static void test_swarmctl_network_publish_flags(void **state)
{
	struct swarmctl_cli_spec b, u;
	Cs__PortConfig p;
	char err[512];
	char a0[] = "--name", a1[] = "web", a2[] = "--image", a3[] = "busybox",
	     a4[] = "--network", a5[] = "name=front,alias=www", a6[] = "-p",
	     a7[] = "8080:80", a8[] = "--publish",
	     a9[] = "published=9000,target=90,protocol=udp,mode=host";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9};
	char u0[] = "web", u1[] = "--publish", u2[] = "target=81";
	char *uargv[] = {u0, u1, u2};
	(void)state;

	swarmctl_cli_spec_init(&b, NULL);
	assert_int_equal(swarmctl_cli_spec(&b, 10, argv, false, err, sizeof err), 0);
	assert_int_equal(b.spec.n_networks, 1);
	assert_string_equal(b.spec.networks[0]->target, "front");
	assert_int_equal(b.spec.networks[0]->n_aliases, 1);
	assert_string_equal(b.spec.networks[0]->aliases[0], "www");
	assert_non_null(b.spec.endpoint);
	assert_int_equal(b.spec.endpoint->n_ports, 2);
	assert_int_equal(b.spec.endpoint->ports[0]->published, 8080);
	assert_int_equal(b.spec.endpoint->ports[0]->target, 80);
	assert_int_equal(b.spec.endpoint->ports[0]->mode,
			 CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS);
	assert_int_equal(b.spec.endpoint->ports[1]->protocol,
			 CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP);
	assert_int_equal(b.spec.endpoint->ports[1]->mode,
			 CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST);
	/* what swarmctl sends must pack (every part initialised) */
	assert_true(cs__service_spec__get_packed_size(&b.spec) > 0);
	/* update: the ports given replace the list, the networks stay */
	swarmctl_cli_spec_init(&u, &b.spec);
	assert_int_equal(swarmctl_cli_spec(&u, 3, uargv, true, err, sizeof err), 0);
	assert_int_equal(u.spec.n_networks, 1);
	assert_string_equal(u.spec.networks[0]->target, "front");
	assert_int_equal(u.spec.endpoint->n_ports, 1);
	assert_int_equal(u.spec.endpoint->ports[0]->target, 81);
	assert_int_equal(u.spec.endpoint->ports[0]->published, 0);
	assert_true(cs__service_spec__get_packed_size(&u.spec) > 0);
	/* refusals */
	assert_int_equal(swarmctl_cli_publish("8080", &p, err, sizeof err), CS_EINVAL);
	assert_int_equal(swarmctl_cli_publish("8080:70000", &p, err, sizeof err),
			 CS_EINVAL);
	assert_int_equal(
		swarmctl_cli_publish("published=1,mode=mesh", &p, err, sizeof err),
		CS_EINVAL);
	assert_non_null(strstr(err, "--publish"));
	assert_int_equal(swarmctl_cli_publish("53:53/udp", &p, err, sizeof err), 0);
	assert_int_equal(p.protocol, CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP);
}

/* A backup file (issue 20) is written 0600 whatever the umask, replacing
 * what was there whole; a directory that does not exist is an error naming
 * the path, and leaves nothing behind. */
static void test_swarmctl_backup_file_is_private(void **state)
{
	char dir[] = "/tmp/swarmctl-bak.XXXXXX", path[64], bad[96], err[256], buf[16];
	struct stat st;
	mode_t old = umask(0);
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/b.bak", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old content, longer than the new", f);
	fclose(f);
	chmod(path, 0644);
	assert_int_equal(swarmctl_cli_write_private(path, (const uint8_t *)"new", 3, err,
						    sizeof err),
			 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 3);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof buf, f), 3);
	fclose(f);
	assert_memory_equal(buf, "new", 3);
	snprintf(bad, sizeof bad, "%s/no/such/dir/b.bak", dir);
	assert_int_equal(
		swarmctl_cli_write_private(bad, (const uint8_t *)"x", 1, err, sizeof err),
		CS_ESTORAGE);
	assert_non_null(strstr(err, "No such file or directory"));
	unlink(path);
	assert_int_equal(rmdir(dir), 0); /* nothing else was left */
}

/* issue 20: an event as one line, and as one JSON object a line. */
/* service logs --tail N: the first read is not bounded by the time of the
 * ask (a line written before the node reads would leave the tail empty);
 * the reads after it are, as is every read without a tail; none while
 * following. */
static void test_swarmctl_logs_tail_first_read_unbounded(void **state)
{
	(void)state;
	assert_int_equal(swarmctl_cli_logs_until(false, true, 1234), 0);
	assert_int_equal(swarmctl_cli_logs_until(false, false, 1234), 1234);
	assert_int_equal(swarmctl_cli_logs_until(true, false, 1234), 0);
	assert_int_equal(swarmctl_cli_logs_until(true, true, 1234), 0);
}

static void test_swarmctl_print_event(void **state)
{
	Cs__Event ev = CS__EVENT__INIT;
	Cs__Label a = CS__LABEL__INIT, *attrs[1] = {&a};
	char *buf = NULL;
	size_t len;
	FILE *f;
	(void)state;

	ev.index = 12;
	ev.ord = 1;
	ev.time_ms = 1700000000123ull;
	ev.kind = "task";
	ev.action = "update";
	ev.object_id = 0xab;
	ev.name = "web.1";
	ev.service_id = 0xa;
	ev.node_id = 0xb;
	ev.slot = 1;
	ev.state = "running";
	f = open_memstream(&buf, &len);
	swarmctl_cli_print_event(f, &ev, false);
	fclose(f);
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z task update 00000000000000ab "
				 "(name=web.1, index=12, service=000000000000000a, "
				 "node=000000000000000b, slot=1, state=running)\n");
	free(buf);
	ev.kind = "service";
	ev.name = "we\"b";
	a.key = "image.new";
	a.value = "img:2";
	ev.attrs = attrs;
	ev.n_attrs = 1;
	f = open_memstream(&buf, &len);
	swarmctl_cli_print_event(f, &ev, true);
	fclose(f);
	assert_string_equal(
		buf, "{\"index\":12,\"ord\":1,\"time\":\"2023-11-14T22:13:20.123Z\","
		     "\"type\":\"service\",\"action\":\"update\",\"id\":"
		     "\"00000000000000ab\",\"name\":\"we\\\"b\",\"attributes\":"
		     "{\"image.new\":\"img:2\"}}\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swarmctl_durations),
		cmocka_unit_test(test_swarmctl_sizes_cpus_ratios),
		cmocka_unit_test(test_swarmctl_service_create_flags),
		cmocka_unit_test(test_swarmctl_update_changes_only_what_is_said),
		cmocka_unit_test(test_swarmctl_rebalance_flags),
		cmocka_unit_test(test_swarmctl_health_and_stop_grace_flags),
		cmocka_unit_test(test_swarmctl_rollback_config_and_force),
		cmocka_unit_test(test_swarmctl_table_aligns_columns),
		cmocka_unit_test(test_swarmctl_json_escapes),
		cmocka_unit_test(test_swarmctl_service_ls_json),
		cmocka_unit_test(test_swarmctl_service_ls_uses_the_managers_counts),
		cmocka_unit_test(test_swarmctl_service_labels),
		cmocka_unit_test(test_swarmctl_task_filters),
		cmocka_unit_test(test_swarmctl_inspect_shows_times),
		cmocka_unit_test(test_swarmctl_network_publish_flags),
		cmocka_unit_test(test_swarmctl_secret_and_config_flags),
		cmocka_unit_test(test_swarmctl_backup_file_is_private),
		cmocka_unit_test(test_swarmctl_logs_tail_first_read_unbounded),
		cmocka_unit_test(test_swarmctl_print_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
