#define _GNU_SOURCE /* memmem */
/* Tests of the Docker Engine API server (net/dockerapi): the spec mapping on
 * request bodies recorded from Debian's docker CLI (20.10.24) and from
 * docker 28.2.2, the exact errors for fields cswarm does not support, and
 * the HTTP server on a libuv loop against a fake control API (bad input:
 * malformed JSON and HTTP, a huge body, unknown endpoints, a stale version,
 * a name taken, no leader, keep-alive, an idle client closed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "core/errors.h"
#include "net/dockerapi.h"

/* ---------------------------------------------------------------- recorded bodies */

/* docker service create -d --name full --replicas 2 --env A=1 --constraint
 * node.role==manager --placement-pref spread=node.labels.zone --reserve-cpu
 * 0.1 --reserve-memory 16M --limit-cpu 0.5 --limit-memory 64M
 * --restart-condition on-failure --restart-delay 2s --restart-max-attempts 3
 * --update-parallelism 2 --update-delay 1s --update-order start-first
 * --update-failure-action rollback --rollback-parallelism 1 --health-cmd
 * true --health-interval 2s --stop-grace-period 3s cswarm-test:busybox
 * sleep 1000 (Debian's docker 20.10.24) */
static const char body_full_2010[] =
	"{\"Name\":\"full\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Args\":[\"sleep\",\"1000\"],\"Env\":[\"A=1\"],\"Init\":"
	"false,\"StopGracePeriod\":3000000000,\"Healthcheck\":{\"Test\":[\"CMD-SHELL\","
	"\"true\"],\"Interval\":2000000000},\"DNSConfig\":{}},\"Resources\":{\"Limits\":{"
	"\"NanoCPUs\":500000000,\"MemoryBytes\":67108864},\"Reservations\":{\"NanoCPUs\":"
	"100000000,\"MemoryBytes\":16777216}},\"RestartPolicy\":{\"Condition\":\"on-"
	"failure\",\"Delay\":2000000000,\"MaxAttempts\":3},\"Placement\":{\"Constraints\":["
	"\"node.role==manager\"],\"Preferences\":[{\"Spread\":{\"SpreadDescriptor\":"
	"\"node.labels.zone\"}}]},\"ForceUpdate\":0},\"Mode\":{\"Replicated\":{"
	"\"Replicas\":2}},\"UpdateConfig\":{\"Parallelism\":2,\"Delay\":1000000000,"
	"\"FailureAction\":\"rollback\",\"Monitor\":5000000000,\"MaxFailureRatio\":0,"
	"\"Order\":\"start-first\"},\"RollbackConfig\":{\"Parallelism\":1,"
	"\"FailureAction\":\"pause\",\"Monitor\":5000000000,\"MaxFailureRatio\":0,"
	"\"Order\":\"stop-first\"},\"EndpointSpec\":{\"Mode\":\"vip\"}}\n";

/* docker service create --name web cswarm-test:busybox sleep 1 (20.10):
 * no replica count (Docker's default is 1), no restart or update config */
static const char body_web_2010[] =
	"{\"Name\":\"web\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Args\":[\"sleep\",\"1\"],\"Init\":false,\"DNSConfig\":"
	"{}},\"Resources\":{\"Limits\":{},\"Reservations\":{}},\"Placement\":{},"
	"\"ForceUpdate\":0},\"Mode\":{\"Replicated\":{}},\"EndpointSpec\":{\"Mode\":"
	"\"vip\"}}\n";

/* ... --mount type=bind,src=/tmp,dst=/x (20.10) */
static const char body_mount_2010[] =
	"{\"Name\":\"mnt\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Args\":[\"sleep\",\"1\"],\"Init\":false,\"Mounts\":[{"
	"\"Type\":\"bind\",\"Source\":\"/tmp\",\"Target\":\"/x\"}],\"DNSConfig\":{}},"
	"\"Resources\":{\"Limits\":{},\"Reservations\":{}},\"Placement\":{},"
	"\"ForceUpdate\":0},\"Mode\":{\"Replicated\":{}},\"EndpointSpec\":{\"Mode\":"
	"\"vip\"}}\n";

/* ... --mount type=tmpfs,dst=/x (20.10; the tmpfs options left out) */
static const char body_tmpfs_2010[] =
	"{\"Name\":\"tmp\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Args\":[\"sleep\",\"1\"],\"Init\":false,\"Mounts\":[{"
	"\"Type\":\"tmpfs\",\"Target\":\"/x\"}],\"DNSConfig\":{}},"
	"\"Resources\":{\"Limits\":{},\"Reservations\":{}},\"Placement\":{},"
	"\"ForceUpdate\":0},\"Mode\":{\"Replicated\":{}},\"EndpointSpec\":{\"Mode\":"
	"\"vip\"}}\n";

/* docker service create -d --name ex2 --entrypoint /bin/sh --workdir /tmp
 * --user 65534:65534 --container-label a=b --mount
 * type=bind,src=/tmp/dapi2/bm,dst=/x,readonly --mount
 * type=volume,src=dapi2vol,dst=/v cswarm-test:busybox -c "sleep 1000"
 * (20.10) */
static const char body_container_2010[] =
	"{\"Name\":\"ex2\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Labels\":{\"a\":\"b\"},\"Command\":[\"/bin/sh\"],"
	"\"Args\":[\"-c\",\"sleep 1000\"],\"Dir\":\"/tmp\",\"User\":\"65534:65534\","
	"\"Init\":false,\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/tmp/dapi2/bm\","
	"\"Target\":\"/x\",\"ReadOnly\":true},{\"Type\":\"volume\",\"Source\":"
	"\"dapi2vol\",\"Target\":\"/v\"}],\"DNSConfig\":{}},\"Resources\":{\"Limits\":"
	"{},\"Reservations\":{}},\"Placement\":{},\"ForceUpdate\":0},\"Mode\":{"
	"\"Replicated\":{}},\"EndpointSpec\":{\"Mode\":\"vip\"}}\n";

/* docker stack deploy -c compose.yml st (20.10): the service web, with
 * command: sleep 1000 and 2 replicas, on the stack's default network */
static const char body_stack_2010[] =
	"{\"Name\":\"st_web\",\"Labels\":{\"com.docker.stack.image\":"
	"\"cswarm-test:busybox\",\"com.docker.stack.namespace\":\"st\"},\"TaskTemplate\":"
	"{\"ContainerSpec\":{\"Image\":\"cswarm-test:busybox\",\"Labels\":{"
	"\"com.docker.stack.namespace\":\"st\"},\"Args\":[\"sleep\",\"1000\"],\"Env\":"
	"[\"A=1\"],\"Privileges\":{\"CredentialSpec\":null,\"SELinuxContext\":null}},"
	"\"Resources\":{},\"Placement\":{},\"Networks\":[{\"Target\":\"st_default\","
	"\"Aliases\":[\"web\"]}],\"ForceUpdate\":0},\"Mode\":{\"Replicated\":{"
	"\"Replicas\":2}},\"EndpointSpec\":{}}";

/* ... and the network it created first */
static const char body_stack_net_2010[] =
	"{\"CheckDuplicate\":false,\"Driver\":\"overlay\",\"Scope\":\"\","
	"\"EnableIPv6\":false,\"IPAM\":null,\"Internal\":false,\"Attachable\":false,"
	"\"Ingress\":false,\"ConfigOnly\":false,\"ConfigFrom\":null,\"Options\":null,"
	"\"Labels\":{\"com.docker.stack.namespace\":\"st\"},\"Name\":\"st_default\"}";

/* docker service update -d --env-add C=3 web (20.10): the whole spec as
 * this server showed it, with ?version=N */
static const char body_update_2010[] =
	"{\"Name\":\"web\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Args\":[\"sleep\",\"1000\"],\"Env\":[\"B=2\",\"C=3\"],"
	"\"Isolation\":\"default\"},\"Resources\":{\"Limits\":{},\"Reservations\":{}},"
	"\"RestartPolicy\":{\"Condition\":\"any\",\"Delay\":5000000000,\"MaxAttempts\":0},"
	"\"Placement\":{},\"ForceUpdate\":0,\"Runtime\":\"container\"},\"Mode\":{"
	"\"Replicated\":{\"Replicas\":3}},\"UpdateConfig\":{\"Parallelism\":1,"
	"\"FailureAction\":\"pause\",\"Monitor\":5000000000,\"MaxFailureRatio\":0,"
	"\"Order\":\"stop-first\"},\"RollbackConfig\":{\"Parallelism\":1,"
	"\"FailureAction\":\"pause\",\"Monitor\":5000000000,\"MaxFailureRatio\":0,"
	"\"Order\":\"stop-first\"},\"EndpointSpec\":{\"Mode\":\"vip\"}}\n";

/* docker service create -d --name new28 --replicas 2 --env A=1
 * --restart-condition none cswarm-test:busybox sleep 1000 (docker 28.2.2) */
static const char body_new28[] =
	"{\"Name\":\"new28\",\"Labels\":{},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
	"\"cswarm-test:busybox\",\"Args\":[\"sleep\",\"1000\"],\"Env\":[\"A=1\"],\"Init\":"
	"false,\"DNSConfig\":{}},\"Resources\":{\"Limits\":{},\"Reservations\":{}},"
	"\"RestartPolicy\":{\"Condition\":\"none\",\"Delay\":5000000000,\"MaxAttempts\":"
	"0},\"Placement\":{},\"ForceUpdate\":0},\"Mode\":{\"Replicated\":{\"Replicas\":2}},"
	"\"EndpointSpec\":{\"Mode\":\"vip\"}}\n";

static Cs__ServiceSpec *parse_ok(const char *body)
{
	Cs__ServiceSpec *s = NULL;
	char err[512] = "";
	int rv = dockerapi_spec_from_json(body, strlen(body), &s, err, sizeof err);
	if (rv)
		fprintf(stderr, "unexpected error: %s\n", err);
	assert_int_equal(rv, 0);
	assert_non_null(s);
	return s;
}

static void parse_fails(const char *body, const char *want)
{
	Cs__ServiceSpec *s = NULL;
	char err[512] = "";
	int rv = dockerapi_spec_from_json(body, strlen(body), &s, err, sizeof err);
	assert_int_equal(rv, CS_EINVAL);
	assert_null(s);
	assert_string_equal(err, want);
}

static void test_map_full_2010(void **state)
{
	Cs__ServiceSpec *s = parse_ok(body_full_2010);
	const Cs__TaskSpec *t = s->task;
	(void)state;

	assert_string_equal(s->name, "full");
	assert_false(s->global);
	assert_false(s->job);
	assert_int_equal(s->replicas, 2);
	assert_string_equal(t->container->image, "cswarm-test:busybox");
	assert_int_equal(t->container->n_command, 2);
	assert_string_equal(t->container->command[0], "sleep");
	assert_string_equal(t->container->command[1], "1000");
	assert_int_equal(t->container->n_env, 1);
	assert_string_equal(t->container->env[0], "A=1");
	assert_int_equal(t->container->stop_grace_period_ms, 3000);
	assert_non_null(t->container->healthcheck);
	assert_int_equal(t->container->healthcheck->n_test, 2);
	assert_string_equal(t->container->healthcheck->test[0], "CMD-SHELL");
	assert_int_equal(t->container->healthcheck->interval_ms, 2000);
	assert_int_equal(t->limits->millicpus, 500);
	assert_int_equal(t->limits->memory_bytes, 64u << 20);
	assert_int_equal(t->reservations->millicpus, 100);
	assert_int_equal(t->reservations->memory_bytes, 16u << 20);
	assert_int_equal(t->restart->condition,
			 CS__RESTART_POLICY__CONDITION__CONDITION_ON_FAILURE);
	assert_int_equal(t->restart->delay_ms, 2000);
	assert_int_equal(t->restart->max_attempts, 3);
	assert_int_equal(t->placement->n_constraints, 1);
	assert_string_equal(t->placement->constraints[0], "node.role==manager");
	assert_int_equal(t->placement->n_spread_labels, 1);
	assert_string_equal(t->placement->spread_labels[0], "node.labels.zone");
	assert_int_equal(s->update->parallelism, 2);
	assert_int_equal(s->update->delay_ms, 1000);
	assert_int_equal(s->update->monitor_ms, 5000);
	assert_int_equal(s->update->failure_action,
			 CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_ROLLBACK);
	assert_int_equal(s->update->order, CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST);
	assert_int_equal(s->rollback->parallelism, 1);
	assert_int_equal(s->rollback->order, CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST);
	cs__service_spec__free_unpacked(s, NULL);
}

/* What the CLI leaves out gets Docker's defaults. */
static void test_map_defaults(void **state)
{
	Cs__ServiceSpec *s = parse_ok(body_web_2010);
	(void)state;

	assert_int_equal(s->replicas, 1);
	assert_int_equal(s->task->restart->condition,
			 CS__RESTART_POLICY__CONDITION__CONDITION_ANY);
	assert_int_equal(s->task->restart->delay_ms, 5000);
	assert_null(s->task->placement); /* {}: none */
	assert_null(s->task->limits);
	assert_null(s->task->container->healthcheck);
	assert_non_null(s->update);
	assert_int_equal(s->update->parallelism, 1);
	assert_int_equal(s->update->delay_ms, 0);
	assert_int_equal(s->update->monitor_ms, 5000);
	assert_int_equal(s->update->failure_action,
			 CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_PAUSE);
	assert_int_equal(s->update->order, CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST);
	assert_non_null(s->rollback);
	assert_int_equal(s->rollback->parallelism, 1);
	cs__service_spec__free_unpacked(s, NULL);
}

static void test_map_update_and_28(void **state)
{
	Cs__ServiceSpec *s = parse_ok(body_update_2010);
	(void)state;

	assert_int_equal(s->replicas, 3);
	assert_int_equal(s->task->container->n_env, 2);
	assert_string_equal(s->task->container->env[1], "C=3");
	cs__service_spec__free_unpacked(s, NULL);

	s = parse_ok(body_new28);
	assert_int_equal(s->replicas, 2);
	assert_int_equal(s->task->restart->condition,
			 CS__RESTART_POLICY__CONDITION__CONDITION_NONE);
	assert_int_equal(s->update->parallelism, 1);
	cs__service_spec__free_unpacked(s, NULL);
}

static void test_map_modes(void **state)
{
	Cs__ServiceSpec *s;
	(void)state;

	s = parse_ok(
		"{\"Name\":\"g\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}},"
		"\"Mode\":{\"Global\":{}}}");
	assert_true(s->global);
	assert_int_equal(s->replicas, 0);
	cs__service_spec__free_unpacked(s, NULL);
	s = parse_ok(
		"{\"Name\":\"j\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}},"
		"\"Mode\":{\"ReplicatedJob\":{\"MaxConcurrent\":2,\"TotalCompletions\":"
		"4}}}");
	assert_true(s->job);
	assert_false(s->global);
	assert_int_equal(s->replicas, 4);
	assert_int_equal(s->max_concurrent, 2);
	assert_null(s->update); /* a job takes no update config */
	cs__service_spec__free_unpacked(s, NULL);
}

/* Secret and config references that say no File, or Mode 0 */
static const char body_refs_defaults[] =
	"{\"Name\":\"t\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"y\","
	"\"Configs\":[{\"ConfigName\":\"u\"}],\"Secrets\":[{\"SecretName\":\"v\","
	"\"File\":{\"Mode\":0}}]}}}";

/* Issue 20: ContainerSpec.Secrets and .Configs as the docker CLI sends
 * them (moby's SecretReference, ConfigReference), and back. */
static void test_map_secrets_and_configs(void **state)
{
	Cs__ServiceSpec *s;
	json_t *j, *r;
	(void)state;

	s = parse_ok("{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
		     "\"i\",\"Secrets\":[{\"File\":{\"Name\":\"pw\",\"UID\":\"0\","
		     "\"GID\":\"0\",\"Mode\":292},\"SecretID\":\"00000000000000ab\","
		     "\"SecretName\":\"db\"}],\"Configs\":[{\"File\":{\"Name\":"
		     "\"/etc/a.conf\",\"UID\":\"1\",\"GID\":\"2\",\"Mode\":288},"
		     "\"ConfigID\":\"cd\",\"ConfigName\":\"conf\"}]}}}");
	assert_int_equal(s->task->container->n_secrets, 1);
	assert_int_equal(s->task->container->secrets[0]->secret_id, 0xab);
	assert_string_equal(s->task->container->secrets[0]->secret_name, "db");
	assert_string_equal(s->task->container->secrets[0]->target, "pw");
	assert_int_equal(s->task->container->secrets[0]->mode, 0444);
	assert_int_equal(s->task->container->n_configs, 1);
	assert_string_equal(s->task->container->configs[0]->target, "/etc/a.conf");
	assert_string_equal(s->task->container->configs[0]->uid, "1");
	assert_int_equal(s->task->container->configs[0]->mode, 0440);
	j = dockerapi_spec_json(s);
	r = json_object_get(
		json_object_get(json_object_get(j, "TaskTemplate"), "ContainerSpec"),
		"Configs");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(r, 0), "ConfigName")),
		"conf");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_array_get(r, 0), "File"), "Mode")),
			 0440);
	json_decref(j);
	cs__service_spec__free_unpacked(s, NULL);
	/* a reference that says no File (or Mode 0) takes the defaults it is
	 * shown with, so what is shown reads back as the same spec
	 * (test_map_round_trip reads it back; the fuzzer found it read back
	 * different) */
	s = parse_ok(body_refs_defaults);
	assert_string_equal(s->task->container->configs[0]->target, "u");
	assert_string_equal(s->task->container->configs[0]->uid, "0");
	assert_string_equal(s->task->container->configs[0]->gid, "0");
	assert_int_equal(s->task->container->configs[0]->mode, 0444);
	assert_string_equal(s->task->container->secrets[0]->target, "v");
	assert_int_equal(s->task->container->secrets[0]->mode, 0444);
	cs__service_spec__free_unpacked(s, NULL);
	parse_fails("{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
		    "\"i\",\"Secrets\":[{\"File\":{\"Name\":\"pw\"}}]}}}",
		    "TaskTemplate.ContainerSpec.Secrets[0]: SecretID or SecretName is "
		    "required");
}

/* A field cswarm does not support: a 400 naming it, never a silent drop. */
static void test_map_unsupported(void **state)
{
	(void)state;
	parse_fails(body_tmpfs_2010,
		    "TaskTemplate.ContainerSpec.Mounts[0].Type: 'tmpfs' is not "
		    "supported by cswarm (bind or volume)");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\","
		"\"Mounts\":[{\"Type\":\"volume\",\"Source\":\"v\",\"Target\":\"/v\","
		"\"VolumeOptions\":{\"DriverConfig\":{\"Name\":\"nfs\"}}}]}}}",
		"TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions: not supported by "
		"cswarm");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\","
		"\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"rel\",\"Target\":\"/v\"}]}}}",
		"TaskTemplate.ContainerSpec.Mounts[0].Source: a bind mount needs an "
		"absolute path");
	/* the service's labels are the model's (ServiceSpec.labels); the
	 * container's are not */
	{
		Cs__ServiceSpec *l = parse_ok(
			"{\"Name\":\"l\",\"Labels\":{\"x\":\"y\",\"tier\":\"front\"},"
			"\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}");
		assert_int_equal(l->n_labels, 2);
		assert_string_equal(l->labels[0]->key, "x");
		assert_string_equal(l->labels[0]->value, "y");
		assert_string_equal(l->labels[1]->key, "tier");
		cs__service_spec__free_unpacked(l, NULL);
	}
	parse_fails("{\"Name\":\"l\",\"Labels\":{\"x\":1},\"TaskTemplate\":{"
		    "\"ContainerSpec\":{\"Image\":\"i\"}}}",
		    "Labels.x: expected a string");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\","
		"\"Labels\":{\"a\":1}}}}",
		"TaskTemplate.ContainerSpec.Labels.a: expected a string");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"},"
		"\"Networks\":[{\"Target\":\"n\",\"DriverOpts\":{\"a\":\"b\"}}]}}",
		"TaskTemplate.Networks[0].DriverOpts: not supported by cswarm");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}},"
		"\"EndpointSpec\":{\"Mode\":\"vip\",\"Ports\":[{\"TargetPort\":80}]}}",
		"EndpointSpec.Ports: not supported by cswarm");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"},"
		"\"Resources\":{\"Limits\":{\"Pids\":5}}}}",
		"TaskTemplate.Resources.Limits.Pids: not supported by cswarm");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"},"
		"\"Placement\":{\"Platforms\":[{\"OS\":\"linux\"}]}}}",
		"TaskTemplate.Placement.Platforms: not supported by cswarm");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\","
		"\"Hostname\":\"h\"}}}",
		"TaskTemplate.ContainerSpec.Hostname: not supported by cswarm");
	parse_fails(
		"{\"Name\":\"l\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}},"
		"\"Mode\":{\"Replicated\":{\"Replicas\":1},\"Global\":{}}}",
		"Mode: more than one mode");
}

static void test_map_bad_input(void **state)
{
	(void)state;
	parse_fails("{\"Name\":", "malformed JSON: unexpected token near end of file "
				  "(at byte 8)");
	parse_fails("[]", "the body is not a JSON object (a ServiceSpec)");
	parse_fails("{\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}",
		    "Name: required (cswarm does not draw names)");
	parse_fails("{\"Name\":\"x\",\"TaskTemplate\":{\"ContainerSpec\":{}}}",
		    "TaskTemplate.ContainerSpec.Image: required");
	parse_fails(
		"{\"Name\":\"x\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}},"
		"\"Mode\":{\"Replicated\":{\"Replicas\":\"two\"}}}",
		"Mode.Replicated.Replicas: expected a non-negative integer");
	parse_fails(
		"{\"Name\":\"x\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"},"
		"\"RestartPolicy\":{\"Condition\":\"sometimes\"}}}",
		"TaskTemplate.RestartPolicy.Condition: 'sometimes' (expected any, "
		"on-failure or none)");
	parse_fails(
		"{\"Name\":\"x\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\","
		"\"StopGracePeriod\":1500}}}",
		"TaskTemplate.ContainerSpec.StopGracePeriod: 1500ns is not a whole number "
		"of milliseconds (cswarm keeps milliseconds)");
}

/* Issue 16's model fields: entrypoint apart from args, container labels,
 * working dir, user, bind and volume mounts. */
static void test_map_container_fields(void **state)
{
	Cs__ServiceSpec *s = parse_ok(body_container_2010);
	const Cs__ContainerSpec *cs = s->task->container;
	(void)state;

	assert_int_equal(cs->n_entrypoint, 1);
	assert_string_equal(cs->entrypoint[0], "/bin/sh");
	assert_int_equal(cs->n_command, 2);
	assert_string_equal(cs->command[1], "sleep 1000");
	assert_string_equal(cs->dir, "/tmp");
	assert_string_equal(cs->user, "65534:65534");
	assert_int_equal(cs->n_labels, 1);
	assert_string_equal(cs->labels[0]->key, "a");
	assert_string_equal(cs->labels[0]->value, "b");
	assert_int_equal(cs->n_mounts, 2);
	assert_int_equal(cs->mounts[0]->type, CS__MOUNT__TYPE__TYPE_BIND);
	assert_string_equal(cs->mounts[0]->source, "/tmp/dapi2/bm");
	assert_string_equal(cs->mounts[0]->target, "/x");
	assert_true(cs->mounts[0]->read_only);
	assert_int_equal(cs->mounts[1]->type, CS__MOUNT__TYPE__TYPE_VOLUME);
	assert_string_equal(cs->mounts[1]->source, "dapi2vol");
	assert_false(cs->mounts[1]->read_only);
	assert_int_equal(s->n_networks, 0);
	cs__service_spec__free_unpacked(s, NULL);
}

/* What `stack deploy` sends: the stack's labels on the service and its
 * containers, the stack's network by name with the service's alias. */
static void test_map_stack(void **state)
{
	Cs__ServiceSpec *s = parse_ok(body_stack_2010);
	static const char opts[] = "{\"Name\":\"x\",\"Options\":{\"mtu\":\"1400\"}}";
	static const char local[] = "{\"Name\":\"x\",\"Scope\":\"local\"}";
	Cs__NetworkSpec *n = NULL;
	char err[256] = "";
	(void)state;

	assert_string_equal(s->name, "st_web");
	assert_int_equal(s->replicas, 2);
	assert_int_equal(s->n_labels, 2);
	assert_int_equal(s->task->container->n_labels, 1);
	assert_string_equal(s->task->container->labels[0]->key,
			    "com.docker.stack.namespace");
	assert_int_equal(s->n_networks, 1);
	assert_string_equal(s->networks[0]->target, "st_default");
	assert_int_equal(s->networks[0]->n_aliases, 1);
	assert_string_equal(s->networks[0]->aliases[0], "web");
	cs__service_spec__free_unpacked(s, NULL);

	assert_int_equal(dockerapi_network_from_json(body_stack_net_2010,
						     strlen(body_stack_net_2010), &n, err,
						     sizeof err),
			 0);
	assert_string_equal(n->name, "st_default");
	assert_string_equal(n->driver, "overlay");
	assert_int_equal(n->n_labels, 1);
	assert_string_equal(n->labels[0]->value, "st");
	cs__network_spec__free_unpacked(n, NULL);
	n = NULL;
	assert_int_equal(
		dockerapi_network_from_json(opts, strlen(opts), &n, err, sizeof err),
		CS_EINVAL);
	assert_null(n);
	/* issue 17: the one driver option cswarm takes is encrypted */
	assert_string_equal(err, "Options.mtu: not supported by cswarm (only encrypted)");
	{
		static const char enc[] =
			"{\"Name\":\"s\",\"Driver\":\"overlay\",\"Options\":"
			"{\"encrypted\":\"\"}}";
		Cs__Network nw = CS__NETWORK__INIT;
		json_t *j;
		assert_int_equal(dockerapi_network_from_json(enc, strlen(enc), &n, err,
							     sizeof err),
				 0);
		assert_true(n->encrypted);
		/* inspect says so, as Docker shows --opt encrypted */
		nw.id = 5;
		nw.spec = n;
		nw.subnet = (char *)"10.0.9.0/24";
		j = dockerapi_network_json(&nw);
		assert_non_null(j);
		assert_non_null(
			json_object_get(json_object_get(j, "Options"), "encrypted"));
		json_decref(j);
		n->encrypted = false;
		j = dockerapi_network_json(&nw);
		assert_null(json_object_get(json_object_get(j, "Options"), "encrypted"));
		json_decref(j);
		cs__network_spec__free_unpacked(n, NULL);
		n = NULL;
	}
	assert_int_equal(
		dockerapi_network_from_json(local, strlen(local), &n, err, sizeof err),
		CS_EINVAL);
	assert_string_equal(err,
			    "Scope: 'local' is not supported by cswarm (swarm only)");
}

/* insertDefaults shows Docker's defaults where the service has none, and
 * a spec posted back with them is the same spec (the default grace period
 * is the model's 0: no task is replaced for it). */
static void test_map_insert_defaults(void **state)
{
	Cs__ServiceSpec *a = parse_ok(
		"{\"Name\":\"d\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}");
	Cs__ServiceSpec *b;
	json_t *j = dockerapi_spec_json(a);
	char *text;
	(void)state;

	assert_null(json_object_get(
		json_object_get(json_object_get(j, "TaskTemplate"), "ContainerSpec"),
		"StopGracePeriod"));
	dockerapi_insert_defaults(j);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_object_get(j, "TaskTemplate"),
						 "ContainerSpec"),
				 "StopGracePeriod")),
			 10000000000ll);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(j, "TaskTemplate"),
						    "RestartPolicy"),
				    "Condition")),
			    "any");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(j, "RollbackConfig"), "Parallelism")),
			 1);
	text = json_dumps(j, JSON_COMPACT);
	b = parse_ok(text);
	assert_int_equal(b->task->container->stop_grace_period_ms, 0);
	assert_int_equal(cs__service_spec__get_packed_size(a),
			 cs__service_spec__get_packed_size(b));
	free(text);
	json_decref(j);
	cs__service_spec__free_unpacked(a, NULL);
	cs__service_spec__free_unpacked(b, NULL);
}

/* Issue 20: rebalancing rides on the labels com.cswarm.rebalance and
 * com.cswarm.rebalance.parallelism (Docker's spec has no field); one set
 * otherwise (swarmctl) shows as those labels, and reads back the same. */
static void test_map_rebalance_labels(void **state)
{
	Cs__ServiceSpec *a, *b;
	json_t *j, *labels;
	char *text;
	(void)state;

	a = parse_ok("{\"Name\":\"r\",\"Labels\":{\"com.cswarm.rebalance\":\"true\","
		     "\"com.cswarm.rebalance.parallelism\":\"2\"},"
		     "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}");
	assert_true(a->rebalance);
	assert_int_equal(a->rebalance_parallelism, 2);
	cs__service_spec__free_unpacked(a, NULL);
	a = parse_ok("{\"Name\":\"r\",\"Labels\":{\"com.cswarm.rebalance\":\"false\"},"
		     "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}");
	assert_false(a->rebalance);
	/* set without the labels (as swarmctl does): inspect shows them */
	a->rebalance = true;
	a->rebalance_parallelism = 3;
	j = dockerapi_spec_json(a);
	labels = json_object_get(j, "Labels");
	assert_string_equal(
		json_string_value(json_object_get(labels, "com.cswarm.rebalance")),
		"true");
	assert_string_equal(json_string_value(json_object_get(
				    labels, "com.cswarm.rebalance.parallelism")),
			    "3");
	text = json_dumps(j, JSON_COMPACT);
	b = parse_ok(text);
	assert_true(b->rebalance);
	assert_int_equal(b->rebalance_parallelism, 3);
	free(text);
	json_decref(j);
	cs__service_spec__free_unpacked(a, NULL);
	cs__service_spec__free_unpacked(b, NULL);
	parse_fails("{\"Name\":\"r\",\"Labels\":{\"com.cswarm.rebalance\":\"yes\"},"
		    "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}",
		    "Labels.com.cswarm.rebalance: expected true or false");
	parse_fails("{\"Name\":\"r\",\"Labels\":{\"com.cswarm.rebalance.parallelism\":"
		    "\"2x\"},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"i\"}}}",
		    "Labels.com.cswarm.rebalance.parallelism: expected a number up to "
		    "1000000");
}

/* What inspect shows reads back as the same spec (update posts it back). */
static void test_map_round_trip(void **state)
{
	const char *bodies[] = {body_full_2010,	 body_web_2010,	      body_update_2010,
				body_new28,	 body_container_2010, body_stack_2010,
				body_mount_2010, body_refs_defaults};
	(void)state;

	for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
		Cs__ServiceSpec *a = parse_ok(bodies[i]), *b;
		json_t *j = dockerapi_spec_json(a);
		char *text = json_dumps(j, JSON_COMPACT);
		size_t la = cs__service_spec__get_packed_size(a);
		uint8_t *pa = malloc(la), *pb;

		assert_non_null(text);
		b = parse_ok(text);
		assert_int_equal(cs__service_spec__get_packed_size(b), la);
		pb = malloc(la);
		cs__service_spec__pack(a, pa);
		cs__service_spec__pack(b, pb);
		assert_memory_equal(pa, pb, la);
		free(pa);
		free(pb);
		free(text);
		json_decref(j);
		cs__service_spec__free_unpacked(a, NULL);
		cs__service_spec__free_unpacked(b, NULL);
	}
}

/* A task's spec comes from its service; the fields the CLI needs are set. */
static void test_task_json(void **state)
{
	Cs__ServiceSpec *spec = parse_ok(body_full_2010);
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	json_t *j;
	(void)state;

	svc.id = 0xabc;
	svc.spec = spec;
	svc.spec_version = 1;
	t.id = 0x1234;
	t.service_id = 0xabc;
	t.slot = 2;
	t.node_id = 0x77;
	t.spec_version = 1;
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	st.state = CS__TASK_STATE__TASK_STATE_FAILED;
	st.message = "exit 1";
	st.timestamp_ms = 1000;
	t.status = &st;
	j = dockerapi_task_json(&t, &svc, 1700000000000 - 1000);
	assert_string_equal(json_string_value(json_object_get(j, "ID")),
			    "0000000000001234");
	assert_string_equal(json_string_value(json_object_get(j, "ServiceID")),
			    "0000000000000abc");
	assert_int_equal(json_integer_value(json_object_get(j, "Slot")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "DesiredState")),
			    "running");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "Status"), "State")),
		"failed");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "Status"), "Err")),
		"exit 1");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "Status"), "Timestamp")),
			    "2023-11-14T22:13:20.000Z");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(j, "Spec"), "ContainerSpec"),
			"Image")),
		"cswarm-test:busybox");
	json_decref(j);
	cs__service_spec__free_unpacked(spec, NULL);
}

/* ---------------------------------------------------------------- the server */

/* A fake control API: one service "web" at version 7, one node; records
 * the ops it was asked, answers inside the call. */
struct fake {
	int ops[64];
	size_t nops;
	int list_status; /* answer to every list (CS_ENOTLEADER: no leader) */
	bool no_counts;	 /* SERVICE_LIST with status answers no counts */
	/* SERVICE_LOGS: reads asked, and the stdout cursor the last one gave */
	int log_reads;
	uint64_t log_after_ns;
	bool log_tail_set;
	uint64_t log_until_ms;
	uint64_t log_first_until_ms; /* the first read's */
	/* EVENTS (issue 20): reads asked, the first's filters and start */
	int ev_reads;
	char ev_filters[128];
	bool ev_from_oldest;
	uint64_t ev_from_index;
	/* NODE_REMOVE: the node is READY (refused without force, as SwarmKit) */
	bool node_removed;
	bool node_remove_force;
};

static int fake_call(void *data, const Cs__ControlRequest *req, control_rpc_cb cb,
		     void *cb_data)
{
	struct fake *f = data;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT, *svcs[1] = {&svc};
	Cs__Node node = CS__NODE__INIT, *nodes[1] = {&node};
	Cs__Cluster cl = CS__CLUSTER__INIT;

	if (f->nops < 64)
		f->ops[f->nops++] = req->op;
	cs.image = "img";
	ts.container = &cs;
	spec.name = "web";
	spec.replicas = 1;
	spec.task = &ts;
	svc.id = 0x00000000000000aa;
	svc.spec = &spec;
	svc.version = 7;
	node.id = 0x5;
	node.hostname = "n1";
	node.version = 3;
	cl.id = 1;
	cl.version = 2;
	resp.id = req->id;
	switch (req->op) {
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST: {
		static Cs__ServiceCounts cnt = CS__SERVICE_COUNTS__INIT;
		static Cs__ServiceCounts *counts[1] = {&cnt};
		resp.status = f->list_status;
		resp.services = svcs;
		resp.n_services = f->list_status ? 0 : 1;
		if (req->status && !f->list_status && !f->no_counts) {
			cnt.service_id = svc.id;
			cnt.running = 3;
			cnt.desired = 4;
			cnt.completed = 2;
			resp.counts = counts;
			resp.n_counts = 1;
		}
		break;
	}
	case CS__CONTROL_OP__CONTROL_OP_NODE_LIST:
		resp.status = f->list_status;
		resp.nodes = nodes;
		resp.n_nodes = f->list_status ? 0 : 1;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT: resp.cluster = &cl; break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE:
		if (strcmp(req->spec->name, "web") == 0) {
			resp.status = CS_EEXIST;
			resp.error = "name: a service named 'web' exists";
		} else {
			resp.created_id = 0xbb;
		}
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE:
		if (req->version != 7) {
			resp.status = CS_EVERSION;
			resp.error = "service 'web' is at version 7, not 6";
		}
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_LOGS: {
		static uint8_t hello[] = "hello\n", oops[] = "oops\n";
		static Cs__LogLine l1 = CS__LOG_LINE__INIT, l2 = CS__LOG_LINE__INIT;
		static Cs__LogLine *lines[2] = {&l1, &l2};
		static Cs__LogCursor cur = CS__LOG_CURSOR__INIT;
		static Cs__LogCursor *curs[1] = {&cur};
		f->log_reads++;
		f->log_after_ns = req->n_logs_after ? req->logs_after[0]->after_ns : 0;
		f->log_until_ms = req->logs_until_ms;
		if (f->log_reads == 1) {
			f->log_tail_set = req->logs_tail_set && req->logs_tail == 7;
			f->log_first_until_ms = req->logs_until_ms;
		}
		if (strcmp(req->name, "web") != 0) {
			resp.status = CS_ENOENT;
			resp.error = "no such task or service: nosuch";
			break;
		}
		l1.task_id = l2.task_id = cur.task_id = 0x11;
		l1.service_id = l2.service_id = 0xaa;
		l1.node_id = l2.node_id = 0x5;
		l1.time_ns = 1700000000123456789ull;
		l2.time_ns = l1.time_ns + 1;
		l1.stream = 1;
		l2.stream = 2;
		l1.data = (ProtobufCBinaryData){6, hello};
		l2.data = (ProtobufCBinaryData){5, oops};
		cur.after_ns = l1.time_ns;
		cur.after_err_ns = l2.time_ns;
		if (!req->n_logs_after) { /* a first read: the lines */
			resp.logs = lines;
			resp.n_logs = 2;
		}
		resp.logs_next = curs;
		resp.n_logs_next = 1;
		break;
	}
	case CS__CONTROL_OP__CONTROL_OP_EVENTS: {
		static Cs__Event e1 = CS__EVENT__INIT, e2 = CS__EVENT__INIT;
		static Cs__Event *evs[2] = {&e1, &e2};
		static Cs__Label a1 = CS__LABEL__INIT, *attrs[1] = {&a1};
		if (f->ev_reads++ == 0) {
			f->ev_filters[0] = '\0';
			for (size_t i = 0; i < req->n_events_filter; i++) {
				strncat(f->ev_filters, req->events_filter[i],
					sizeof f->ev_filters - strlen(f->ev_filters) - 2);
				strcat(f->ev_filters, ";");
			}
			f->ev_from_oldest = req->events_from_oldest;
			if (strstr(f->ev_filters, "name=gone")) {
				resp.status = CS_ELIMIT;
				resp.error = "the reader fell behind";
				break;
			}
			e1.index = 9;
			e1.time_ms = 1500;
			e1.kind = "service";
			e1.action = "update";
			e1.object_id = 0xaa;
			e1.name = "web";
			a1.key = "image.new";
			a1.value = "img:2";
			e1.attrs = attrs;
			e1.n_attrs = 1;
			e2 = e1;
			e2.kind = "task"; /* not Docker's: skipped */
			e2.n_attrs = 0;
			resp.events = evs;
			resp.n_events = 2;
			resp.events_next_index = 9;
			resp.events_next_ord = 2;
		} else {
			f->ev_from_index = req->events_from_index;
			resp.events_next_index = 9;
			resp.events_next_ord = 2;
		}
		break;
	}
	case CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE:
		/* core/control.c's answer for a READY node: SwarmKit's
		 * FailedPrecondition, which Docker answers 400 */
		f->node_remove_force = req->force;
		if (!req->name || strcmp(req->name, "0000000000000005") != 0) {
			resp.status = CS_ENOENT;
			resp.error = "node not found";
		} else if (!req->force) {
			resp.status = CS_EINVAL;
			resp.error = "node n1 is not down and can't be removed";
		} else {
			f->node_removed = true;
		}
		break;
	default: break;
	}
	cb(cb_data, &resp);
	return 0;
}

struct srv {
	uv_loop_t loop;
	struct dockerapi *api;
	struct dockerapi_backend be;
	struct fake fake;
	char dir[40], path[64];
};

static int setup_idle(void **state, unsigned idle_ms)
{
	struct srv *s = calloc(1, sizeof *s);
	char err[256];

	assert_non_null(s);
	snprintf(s->dir, sizeof s->dir, "/tmp/test_dockerapi.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof s->path, "%s/docker.sock", s->dir);
	uv_loop_init(&s->loop);
	s->be.call = fake_call;
	s->be.hostname = "n1";
	s->be.idle_ms = idle_ms;
	s->be.data = &s->fake;
	assert_int_equal(
		dockerapi_open(&s->loop, s->path, &s->be, &s->api, err, sizeof err), 0);
	*state = s;
	return 0;
}

static int setup(void **state)
{
	return setup_idle(state, 0); /* DOCKERAPI_IDLE_MS */
}

/* Idle and slow clients are closed after 50 ms. */
static int setup_short(void **state)
{
	return setup_idle(state, 50);
}

static int teardown(void **state)
{
	struct srv *s = *state;
	dockerapi_close(s->api);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&s->loop), 0);
	rmdir(s->dir);
	free(s);
	return 0;
}

static int cli_connect(struct srv *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Sends len bytes, running the server's loop in between (it may answer
 * and close before all is sent: what is left is dropped). */
static void cli_send(struct srv *s, int fd, const char *data, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = send(fd, data + done, len - done, MSG_NOSIGNAL);
		if (k < 0 && errno != EAGAIN)
			return; /* the server closed */
		if (k > 0)
			done += (size_t)k;
		uv_run(&s->loop, UV_RUN_NOWAIT);
	}
}

/* Reads until want responses are whole or the server closes; returns the
 * bytes read (malloc'd) and whether the server closed. */
static char *cli_read(struct srv *s, int fd, int want, bool *closed)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = calloc(1, cap);
	int got = 0;

	*closed = false;
	for (int spins = 0; spins < 20000; spins++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t k;
		uv_run(&s->loop, UV_RUN_NOWAIT);
		if (poll(&p, 1, 1) <= 0)
			continue;
		k = recv(fd, buf + len, cap - len - 1, 0);
		if (k == 0) {
			*closed = true;
			break;
		}
		if (k < 0 && errno == ECONNRESET) {
			*closed = true; /* closed with our bytes unread */
			break;
		}
		if (k < 0)
			continue;
		len += (size_t)k;
		/* count whole responses: head, then Content-Length bytes */
		got = 0;
		for (const char *p2 = buf; p2 && *p2;) {
			const char *end = strstr(p2, "\r\n\r\n");
			const char *cl = strstr(p2, "Content-Length: ");
			size_t body;
			if (!end || !cl || cl > end)
				break;
			body = strtoul(cl + 16, NULL, 10);
			if (strstr(p2, "HEAD") == p2)
				body = 0;
			if ((size_t)(buf + len - (end + 4)) < body)
				break;
			got++;
			p2 = end + 4 + body;
		}
		if (got >= want)
			break;
	}
	buf[len] = '\0';
	return buf;
}

/* One request on a new connection: the response text; with closed, reads
 * on until the server closes (or nothing more comes). */
static char *request(struct srv *s, const char *req, bool *closed)
{
	int fd = cli_connect(s);
	char *out;
	bool c;
	cli_send(s, fd, req, strlen(req));
	out = cli_read(s, fd, closed ? 99 : 1, closed ? closed : &c);
	close(fd);
	return out;
}

/* A POST of body to path on a new connection: the response text. */
static char *post(struct srv *s, const char *path, const char *body)
{
	char req[4096];
	snprintf(req, sizeof req,
		 "POST %s HTTP/1.1\r\nHost: d\r\nContent-Length: %zu\r\n\r\n%s", path,
		 strlen(body), body);
	return request(s, req, NULL);
}

static bool fake_saw(const struct fake *f, int op)
{
	for (size_t i = 0; i < f->nops; i++)
		if (f->ops[i] == op)
			return true;
	return false;
}

static void test_http_ping(void **state)
{
	struct srv *s = *state;
	char *r = request(s, "HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "Api-Version: 1.41\r\n"));
	assert_non_null(strstr(r, "Ostype: linux\r\n"));
	assert_non_null(strstr(r, "Docker-Experimental: false\r\n"));
	assert_non_null(strstr(r, "Swarm: active/manager\r\n"));
	assert_null(strstr(r, "\r\n\r\nOK")); /* HEAD: no body */
	free(r);
	r = request(s, "GET /v1.24/_ping HTTP/1.1\r\nHost: docker\r\n\r\n", NULL);
	assert_non_null(strstr(r, "\r\n\r\nOK"));
	free(r);
}

static void test_http_unknown_endpoint(void **state)
{
	struct srv *s = *state;
	char *r = request(s, "GET /v1.41/plugins HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 404 Not Found\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"page not found: GET /plugins is not "
				  "served by cswarm\"}"));
	free(r);
	/* a known path with another method */
	r = request(s, "PUT /services HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n",
		    NULL);
	assert_non_null(strstr(r, "HTTP/1.1 404 Not Found\r\n"));
	free(r);
	assert_int_equal(s->fake.nops, 0);
}

static void test_http_malformed(void **state)
{
	struct srv *s = *state;
	bool closed;
	char *r = request(s,
			  "POST /v1.41/services/create HTTP/1.1\r\nHost: d\r\n"
			  "Content-Length: 9\r\n\r\n{\"Name\":[",
			  NULL);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"malformed JSON: "));
	free(r);
	assert_false(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE));
	/* not HTTP at all: 400, then closed */
	r = request(s, "HELLO\r\n\r\n", &closed);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "malformed HTTP request"));
	assert_true(closed);
	free(r);
}

static void test_http_huge_body(void **state)
{
	struct srv *s = *state;
	size_t big = DOCKERAPI_BODY_BYTES_MAX + 4096;
	char *req = malloc(big + 256), *r;
	bool closed;
	int n;

	/* announced too large: refused before the body */
	r = request(s,
		    "POST /services/create HTTP/1.1\r\nHost: d\r\n"
		    "Content-Length: 100000000\r\n\r\n{",
		    &closed);
	assert_non_null(strstr(r, "HTTP/1.1 413 Payload Too Large\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"request body over the limit of 1048576 "
				  "bytes\"}"));
	assert_true(closed);
	free(r);
	/* chunked, no length: refused once over */
	n = snprintf(req, 256,
		     "POST /services/create HTTP/1.1\r\nHost: d\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
		     big);
	memset(req + n, ' ', big);
	memcpy(req + n + big, "\r\n0\r\n\r\n", 8);
	r = request(s, req, &closed);
	assert_non_null(strstr(r, "HTTP/1.1 413 Payload Too Large\r\n"));
	assert_true(closed);
	free(r);
	free(req);
	assert_int_equal(s->fake.nops, 0); /* nothing changed */
}

static void test_http_errors(void **state)
{
	struct srv *s = *state;
	char req[2048], *r;

	/* a stale version: 500 update out of sequence */
	snprintf(req, sizeof req,
		 "POST /v1.41/services/00000000000000aa/update?version=6 HTTP/1.1\r\n"
		 "Host: d\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen(body_update_2010), body_update_2010);
	r = request(s, req, NULL);
	assert_non_null(strstr(r, "HTTP/1.1 500 Internal Server Error\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"update out of sequence: service 'web' "
				  "is at version 7, not 6\"}"));
	free(r);
	/* the right version, by id prefix */
	snprintf(req, sizeof req,
		 "POST /v1.41/services/00000000000000a/update?version=7 HTTP/1.1\r\n"
		 "Host: d\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(body_update_2010), body_update_2010);
	r = request(s, req, NULL);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	free(r);
	/* no version */
	r = request(s,
		    "POST /services/web/update HTTP/1.1\r\nHost: d\r\n"
		    "Content-Length: 2\r\n\r\n{}",
		    NULL);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "invalid service version"));
	free(r);
	/* name taken */
	snprintf(
		req, sizeof req,
		"POST /services/create HTTP/1.1\r\nHost: d\r\nContent-Length: %zu\r\n\r\n%s",
		strlen(body_web_2010), body_web_2010);
	r = request(s, req, NULL);
	assert_non_null(strstr(r, "HTTP/1.1 409 Conflict\r\n"));
	assert_non_null(
		strstr(r, "{\"message\":\"name: a service named 'web' exists\"}"));
	free(r);
	/* an unsupported field, named */
	snprintf(
		req, sizeof req,
		"POST /services/create HTTP/1.1\r\nHost: d\r\nContent-Length: %zu\r\n\r\n%s",
		strlen(body_tmpfs_2010), body_tmpfs_2010);
	r = request(s, req, NULL);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(
		strstr(r, "{\"message\":\"TaskTemplate.ContainerSpec.Mounts[0].Type: "
			  "'tmpfs' is not supported by cswarm (bind or volume)\"}"));
	free(r);
	/* no such service */
	r = request(s, "GET /v1.41/services/nosuch HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 404 Not Found\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"service nosuch not found\"}"));
	free(r);
	/* issue 18: ?status=true: the manager's counts, no task list; from a
	 * manager with none, the tasks listed and counted */
	s->fake.nops = 0;
	r = request(s, "GET /services?status=true HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "\"ServiceStatus\":{\"RunningTasks\":3,"
				  "\"DesiredTasks\":4,\"CompletedTasks\":2}"));
	assert_false(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_TASK_LIST));
	free(r);
	s->fake.no_counts = true;
	r = request(s, "GET /services?status=true HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "\"ServiceStatus\":{\"RunningTasks\":0,"
				  "\"DesiredTasks\":1,\"CompletedTasks\":0}"));
	assert_true(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_TASK_LIST));
	free(r);
	s->fake.no_counts = false;
	/* no leader */
	s->fake.list_status = CS_ENOTLEADER;
	r = request(s, "GET /services HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 503 Service Unavailable\r\n"));
	free(r);
}

/* Node and swarm updates: a stale version, a field not served, a swarm
 * spec change: each refused with nothing asked of the control API but
 * reads. */
static void test_http_node_swarm_update(void **state)
{
	struct srv *s = *state;
	char *r, *spec;
	json_t *sw;

	r = post(s, "/v1.41/nodes/n1/update?version=2", "{\"Availability\":\"drain\"}");
	assert_non_null(strstr(r, "HTTP/1.1 500 Internal Server Error\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"update out of sequence: node n1 is at "
				  "version 3, not 2\"}"));
	free(r);
	r = post(s, "/v1.41/nodes/n1/update?version=3", "{\"Name\":\"x1\"}");
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"Name: not supported by cswarm\"}"));
	free(r);
	assert_false(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE));
	r = post(s, "/v1.41/nodes/00000000000000/update?version=3",
		 "{\"Availability\":\"drain\"}");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	free(r);
	assert_true(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE));
	assert_false(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE));

	r = post(
		s, "/v1.41/swarm/update?version=2&rotateWorkerToken=true",
		"{\"Name\":\"default\",\"Orchestration\":{\"TaskHistoryRetentionLimit\":3}}");
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "only token rotation is"));
	free(r);
	assert_false(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_CLUSTER_ROTATE_TOKEN));
	/* what GET /swarm shows, posted back with a rotation: rotated */
	r = request(s, "GET /v1.41/swarm HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	sw = json_loads(strstr(r, "\r\n\r\n") + 4, 0, NULL);
	assert_non_null(sw);
	free(r);
	spec = json_dumps(json_object_get(sw, "Spec"), JSON_COMPACT);
	json_decref(sw);
	r = post(s, "/v1.41/swarm/update?version=2&rotateWorkerToken=true", spec);
	free(spec);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	free(r);
	assert_true(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_CLUSTER_ROTATE_TOKEN));
}

/* DELETE /nodes/{id} of a READY node: refused without ?force=true with
 * SwarmKit's words and Docker's 400 (FailedPrecondition), the node kept;
 * removed with it (the force flag reaches the control API). */
static void test_http_node_remove_needs_force_when_ready(void **state)
{
	struct srv *s = *state;
	char *r;

	r = request(s, "DELETE /v1.41/nodes/n1 HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(
		strstr(r, "{\"message\":\"node n1 is not down and can't be removed\"}"));
	free(r);
	assert_true(fake_saw(&s->fake, CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE));
	assert_false(s->fake.node_remove_force);
	assert_false(s->fake.node_removed);

	r = request(s, "DELETE /v1.41/nodes/n1?force=true HTTP/1.1\r\nHost: d\r\n\r\n",
		    NULL);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	free(r);
	assert_true(s->fake.node_remove_force);
	assert_true(s->fake.node_removed);
}

/* Two requests in one write on one connection: two answers, in order. */
static void test_http_keep_alive(void **state)
{
	struct srv *s = *state;
	int fd = cli_connect(s);
	bool closed;
	char *r, *first, *second;
	static const char two[] = "GET /v1.41/services HTTP/1.1\r\nHost: d\r\n\r\n"
				  "GET /v1.41/nodes/n1 HTTP/1.1\r\nHost: d\r\n\r\n";

	cli_send(s, fd, two, strlen(two));
	r = cli_read(s, fd, 2, &closed);
	assert_false(closed);
	first = strstr(r, "HTTP/1.1 200 OK");
	assert_non_null(first);
	assert_non_null(strstr(first, "\"Name\":\"web\""));
	second = strstr(first + 1, "HTTP/1.1 200 OK");
	assert_non_null(second);
	assert_non_null(strstr(second, "\"Hostname\":\"n1\""));
	free(r);
	/* then idle: the server closes it (after 50 ms here) */
	r = cli_read(s, fd, 1, &closed);
	assert_true(closed);
	free(r);
	close(fd);
}

/* A client that sends half a request and stops is closed too. */
static void test_http_slow_client(void **state)
{
	struct srv *s = *state;
	int fd = cli_connect(s);
	bool closed;
	char *r;

	cli_send(s, fd, "GET /services HTTP/1.1\r\nHo", 26);
	r = cli_read(s, fd, 1, &closed);
	assert_true(closed);
	assert_string_equal(r, "");
	free(r);
	close(fd);
	assert_int_equal(s->fake.nops, 0);
}

/* service logs: the multiplexed frames the CLI reads, each line with its
 * time and the swarm details, in a chunked answer that ends once a read
 * brings no line; the second read goes on from the first's cursors. */
static void test_http_service_logs(void **state)
{
	static const char want1[] =
		"\x01\0\0\0\0\0\0\xa6"
		"2023-11-14T22:13:20.123456789Z com.docker.swarm.node.id=0000000000000005,"
		"com.docker.swarm.service.id=00000000000000aa,com.docker.swarm.task.id="
		"0000000000000011 hello\n";
	static const char want2[] =
		"\x02\0\0\0\0\0\0\xa5"
		"2023-11-14T22:13:20.123456790Z com.docker.swarm.node.id=0000000000000005,"
		"com.docker.swarm.service.id=00000000000000aa,com.docker.swarm.task.id="
		"0000000000000011 oops\n";
	struct srv *s = *state;
	bool closed = false;
	char *r;

	r = request(
		s,
		"GET /v1.41/services/web/logs?details=1&stdout=1&stderr=1&timestamps=1"
		"&tail=7 HTTP/1.1\r\nHost: d\r\n\r\n",
		&closed);
	assert_true(closed);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "Transfer-Encoding: chunked\r\n"));
	assert_non_null(memmem(r, 1 << 19, want1, sizeof want1 - 1));
	assert_non_null(memmem(r, 1 << 19, want2, sizeof want2 - 1));
	/* one chunk, then the end */
	assert_non_null(memmem(r, 1 << 19, "\r\n0\r\n\r\n", 7));
	assert_int_equal(s->fake.log_reads, 2);
	assert_true(s->fake.log_tail_set);
	/* without follow: up to when it was asked, so that it ends */
	assert_true(s->fake.log_until_ms > 1700000000000ull);
	assert_true(s->fake.log_after_ns == 1700000000123456789ull);
	/* but the tail's read is not cut at that time: Docker takes the last
	 * N lines before until, and a line written since the ask left none */
	assert_true(s->fake.log_first_until_ms == 0);
	free(r);
	/* no tail: the first read is up to the ask's time too */
	s->fake.log_reads = 0;
	r = request(s, "GET /services/web/logs?stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n",
		    &closed);
	assert_true(s->fake.log_first_until_ms > 1700000000000ull);
	free(r);
	/* an until asked for is kept, with a tail too */
	s->fake.log_reads = 0;
	r = request(s,
		    "GET /services/web/logs?stdout=1&tail=7&until=1800000000 HTTP/1.1\r\n"
		    "Host: d\r\n\r\n",
		    &closed);
	assert_true(s->fake.log_first_until_ms == 1800000000000ull);
	assert_true(s->fake.log_until_ms == 1800000000000ull);
	free(r);
	/* stdout only, no details: the bare line */
	s->fake.log_reads = 0;
	r = request(s, "GET /services/web/logs?stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n",
		    &closed);
	assert_non_null(memmem(r, 1 << 19, "\x01\0\0\0\0\0\0\x06hello\n", 14));
	assert_null(memmem(r, 1 << 19, "oops", 4));
	free(r);
	/* no such service: an error answer, before any frame */
	r = request(s, "GET /services/nosuch/logs?stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n",
		    NULL);
	assert_non_null(strstr(r, "HTTP/1.1 404 Not Found\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"no such task or service: nosuch\"}"));
	free(r);
	r = request(s, "GET /services/web/logs HTTP/1.1\r\nHost: d\r\n\r\n", NULL);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	free(r);
}

/* A follow stream (events, logs) whose client half-closes ends as HTTP
 * says: what there was, the closing chunk, then the close (it was cut
 * mid-answer before, which the fuzzer found). */
static void test_http_stream_ends_whole_on_half_close(void **state)
{
	static const char *const reqs[] = {
		"GET /v1.41/events HTTP/1.1\r\nHost: d\r\n\r\n",
		"GET /v1.41/services/web/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n",
	};
	struct srv *s = *state;

	for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
		int fd = cli_connect(s);
		bool closed;
		char *r;
		size_t len;

		cli_send(s, fd, reqs[i], strlen(reqs[i]));
		/* the stream is under way: its head comes, and no end yet */
		r = cli_read(s, fd, 0, &closed);
		assert_false(closed);
		free(r);
		assert_int_equal(shutdown(fd, SHUT_WR), 0);
		r = cli_read(s, fd, 99, &closed);
		assert_true(closed);
		len = strlen(r);
		assert_true(len >= 5);
		assert_memory_equal(r + len - 5, "0\r\n\r\n", 5);
		free(r);
		close(fd);
	}
}

/* GET /events (issue 20): Docker's swarm event messages, one a line, in a
 * chunked answer; task events left out; the filters passed to the
 * manager; since from the oldest kept, and the next read from the cursor;
 * until passed ends the answer. A manager's refusal before any event is
 * an error answer. */
static void test_http_events(void **state)
{
	struct srv *s = *state;
	bool closed = false;
	char *r;

	r = request(
		s,
		"GET /v1.41/events?since=0&until=2&filters=%7B%22type%22%3A%5B%22service"
		"%22%5D%2C%22scope%22%3A%7B%22swarm%22%3Atrue%7D%7D HTTP/1.1\r\n"
		"Host: d\r\n\r\n",
		&closed);
	assert_true(closed);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(
		r,
		"{\"Type\":\"service\",\"Action\":\"update\",\"Actor\":{\"ID\":"
		"\"00000000000000aa\",\"Attributes\":{\"name\":\"web\",\"image.new\":"
		"\"img:2\"}},\"scope\":\"swarm\",\"time\":1,\"timeNano\":1500000000}\n"));
	assert_null(strstr(r, "\"task\""));
	assert_non_null(memmem(r, 1 << 19, "\r\n0\r\n\r\n", 7));
	assert_int_equal(s->fake.ev_reads, 2);
	assert_string_equal(s->fake.ev_filters, "type=service;scope=swarm;");
	assert_true(s->fake.ev_from_oldest);
	assert_int_equal(s->fake.ev_from_index, 9);
	free(r);
	s->fake.ev_reads = 0;
	r = request(s,
		    "GET /events?filters=%7B%22name%22%3A%5B%22gone%22%5D%7D HTTP/1.1\r\n"
		    "Host: d\r\n\r\n",
		    NULL);
	assert_non_null(strstr(r, "fell behind"));
	assert_null(strstr(r, "HTTP/1.1 200"));
	free(r);
	r = request(
		s,
		"GET /events?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D HTTP/1.1\r\n"
		"Host: d\r\n\r\n",
		NULL);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "invalid filter 'colour'"));
	free(r);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_full_2010),
		cmocka_unit_test(test_map_rebalance_labels),
		cmocka_unit_test(test_map_secrets_and_configs),
		cmocka_unit_test(test_map_defaults),
		cmocka_unit_test(test_map_update_and_28),
		cmocka_unit_test(test_map_modes),
		cmocka_unit_test(test_map_unsupported),
		cmocka_unit_test(test_map_bad_input),
		cmocka_unit_test(test_map_round_trip),
		cmocka_unit_test(test_map_container_fields),
		cmocka_unit_test(test_map_stack),
		cmocka_unit_test(test_map_insert_defaults),
		cmocka_unit_test(test_task_json),
		T(test_http_ping),
		T(test_http_unknown_endpoint),
		T(test_http_malformed),
		T(test_http_huge_body),
		T(test_http_errors),
		T(test_http_node_swarm_update),
		T(test_http_node_remove_needs_force_when_ready),
		T(test_http_service_logs),
		T(test_http_events),
		T(test_http_stream_ends_whole_on_half_close),
		cmocka_unit_test_setup_teardown(test_http_keep_alive, setup_short,
						teardown),
		cmocka_unit_test_setup_teardown(test_http_slow_client, setup_short,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
