/* Tests of the control API: every bad field is named with what is allowed;
 * create, update (version check, task-spec changes only make tasks
 * outdated), remove and node updates on a simulated leader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ca.h"
#include "core/allocator.h"
#include "core/control.h"
#include "core/limits.h"
#include "core/errors.h"
#include "core/node.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"

#define SEC 1000000ull

static void spec_init(Cs__ServiceSpec *spec, Cs__TaskSpec *task, Cs__ContainerSpec *c,
		      Cs__Placement *pl, const char *name)
{
	cs__service_spec__init(spec);
	cs__task_spec__init(task);
	cs__container_spec__init(c);
	cs__placement__init(pl);
	spec->name = (char *)name;
	spec->replicas = 2;
	c->image = "img";
	task->container = c;
	task->placement = pl;
	spec->task = task;
}

/* Issue 20: rebalancing is for replicated services only; its parallelism
 * only with it. */
static void test_control_rebalance_replicated_only(void **state)
{
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	char err[256];

	(void)state;
	spec_init(&spec, &task, &c, &pl, "web");
	spec.rebalance = true;
	spec.rebalance_parallelism = 2;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
	spec.replicas = 0;
	spec.global = true;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "rebalance: only a replicated service"));
	spec_init(&spec, &task, &c, &pl, "job");
	spec.job = true;
	spec.rebalance = true;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "rebalance: only a replicated service"));
	spec_init(&spec, &task, &c, &pl, "web");
	spec.rebalance_parallelism = 2;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "rebalance-parallelism: only with --rebalance");
}

static void test_control_names_the_bad_field(void **state)
{
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	char *bad[] = {"node.zone==a"};
	char err[256];

	spec_init(&spec, &task, &c, &pl, "-web");
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err,
			    "name: '-web' is not a valid name (1 to 63 letters, digits, "
			    "'_', '.' or '-', starting with a letter or digit)");

	spec_init(&spec, &task, &c, &pl, "web");
	spec.global = true;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "replicas: a global service has no replica count");

	spec_init(&spec, &task, &c, &pl, "web");
	pl.n_constraints = 1;
	pl.constraints = bad;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err,
			    "constraint: 'node.zone==a' is not a constraint (expected "
			    "node.id, node.hostname, node.role, node.labels.KEY, "
			    "node.platform.os, node.platform.arch, engine.labels.KEY or "
			    "node.ip, then == or !=, then a value)");

	spec_init(&spec, &task, &c, &pl, "web");
	spec.replicas = 2000000;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "replicas: 2000000 is over the limit of 1000000");

	/* a spec whose tasks could not fit in a frame (issue 12, item 3) */
	{
		char *env = malloc(LIMIT_SPEC_BYTES_MAX + 1);
		assert_non_null(env);
		memset(env, 'x', LIMIT_SPEC_BYTES_MAX);
		env[LIMIT_SPEC_BYTES_MAX] = '\0';
		spec_init(&spec, &task, &c, &pl, "web");
		c.n_env = 1;
		c.env = &env;
		assert_int_equal(control_validate_spec(&spec, err, sizeof err),
				 CS_EINVAL);
		assert_non_null(strstr(err, "spec: "));
		assert_non_null(strstr(err, "over the limit of 1048576"));
		env[LIMIT_SPEC_BYTES_MAX - 1024] = '\0';
		assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
		free(env);
	}

	spec_init(&spec, &task, &c, &pl, "web");
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
}

static void test_control_validate_restart_update_and_names(void **state)
{
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	Cs__RestartPolicy restart = CS__RESTART_POLICY__INIT;
	Cs__UpdateConfig update = CS__UPDATE_CONFIG__INIT;
	char err[256];
	char long_name[80];

	/* a missing name, one too long, a bad character inside */
	spec_init(&spec, &task, &c, &pl, NULL);
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_memory_equal(err, "name: '' is not a valid name", 28);
	memset(long_name, 'a', 64);
	long_name[64] = 0;
	spec_init(&spec, &task, &c, &pl, long_name);
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	spec_init(&spec, &task, &c, &pl, "we b");
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_memory_equal(err, "name: 'we b'", 12);
	/* 63 bytes and the allowed punctuation are fine */
	long_name[63] = 0;
	long_name[10] = '.';
	long_name[11] = '_';
	long_name[12] = '-';
	spec_init(&spec, &task, &c, &pl, long_name);
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);

	spec_init(&spec, &task, &c, &pl, "web");
	restart.condition =
		(Cs__RestartPolicy__Condition)(CS__RESTART_POLICY__CONDITION__CONDITION_NONE +
					       1);
	task.restart = &restart;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(
		err, "restart-condition: unknown (expected any, on-failure or none)");
	restart.condition = CS__RESTART_POLICY__CONDITION__CONDITION_NONE;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);

	spec_init(&spec, &task, &c, &pl, "web");
	update.max_failure_ratio_ppm = 1000001;
	spec.update = &update;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "update-max-failure-ratio: over 1 (expected 0 to 1)");
	update.max_failure_ratio_ppm = 1000000;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);

	/* a global service without replicas, and no err buffer at all */
	spec_init(&spec, &task, &c, &pl, "web");
	spec.global = true;
	spec.replicas = 0;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
	spec.replicas = 1;
	assert_int_equal(control_validate_spec(&spec, NULL, 0), CS_EINVAL);
}

/* A one-manager cluster on the simulator, with its leader. */
struct fixture {
	struct world *w;
	struct simcluster *c;
};

/* Boots m1 and steps only until it leads: elected, not yet serving. */
static struct manager *boot_elected(struct fixture *f)
{
	const struct node_cfg *cfg;
	uint32_t idx;
	int64_t l;

	f->w = world_new(3);
	f->c = simcluster_new(f->w, NULL);
	simcluster_node_programs(f->c, true);
	cfg = simcluster_node_cfg(f->c, "m1", 1, 1, 1, 4000, 1ull << 33);
	assert_int_equal(world_node_add(f->w, "m1", &node_program, cfg, &idx), 0);
	simcluster_track(f->c, idx, 1);
	assert_int_equal(world_node_start(f->w, idx), 0);
	while ((l = simcluster_leader(f->c)) < 0 && world_step(f->w, 60 * SEC))
		;
	assert_true(l >= 0);
	return simcluster_manager(f->c, (uint32_t)l);
}

/* Boots m1 and steps until it serves (its first write applied). */
static struct manager *boot(struct fixture *f)
{
	struct manager *m = boot_elected(f);
	while (!manager_serves(m) && world_step(f->w, 60 * SEC))
		;
	assert_true(manager_serves(m));
	return m;
}

struct answer {
	bool done;
	int status;
};

static void answered(void *data, int status)
{
	struct answer *a = data;
	a->done = true;
	a->status = status;
}

static int wait_answer(struct fixture *f, struct answer *a)
{
	while (!a->done && world_step(f->w, UINT64_MAX))
		;
	assert_true(a->done);
	return a->status;
}

/* Asserts that a control call was taken (rv 0) and that its answer, once
 * it came (in *a), was success. */
static void assert_committed(struct fixture *f, int rv, struct answer *a)
{
	assert_int_equal(rv, 0);
	assert_int_equal(wait_answer(f, a), 0);
}

static void teardown(struct fixture *f)
{
	world_free(f->w);
	simcluster_free(f->c);
}

/* Two creates of one name in flight at once: each was checked against a
 * store holding neither; the store refuses the second at apply, so exactly
 * one service of the name exists. */
static void test_control_two_creates_in_flight_make_one_service(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	struct answer a = {0}, b = {0};
	char err[256];
	uint64_t id_a, id_b;
	size_t count = 0;
	(void)state;

	spec_init(&spec, &task, &c, &pl, "web");
	assert_int_equal(
		control_service_create(m, &spec, &id_a, err, sizeof err, answered, &a),
		0);
	assert_int_equal(
		control_service_create(m, &spec, &id_b, err, sizeof err, answered, &b),
		0);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_int_equal(wait_answer(&f, &b), CS_EEXIST);
	for (const Cs__Service *s = store_service_next(manager_store(m), NULL); s;
	     s = store_service_next(manager_store(m), s))
		count += strcmp(s->spec->name, "web") == 0;
	assert_int_equal(count, 1);
	assert_int_equal(store_service_by_name(manager_store(m), "web")->id, id_a);
	teardown(&f);
}

/* Networks created at once, their subnets and VNIs drawn from the pool:
 * each draw saw a store holding none of the others, so they drew the same;
 * the store refuses all but the first at apply and each of the others
 * draws again, so all are created, with distinct subnets and VNIs. */
static void test_control_networks_created_at_once_draw_distinct_subnets(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	struct answer a[3] = {{0}};
	char err[256], name[3][16];
	uint64_t id[3];
	const Cs__Network *n[3];
	(void)state;

	for (int i = 0; i < 3; i++) {
		snprintf(name[i], sizeof name[i], "net%d", i);
		spec.name = name[i];
		assert_int_equal(control_network_create(m, &spec, &id[i], err, sizeof err,
							answered, &a[i]),
				 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wait_answer(&f, &a[i]), 0);
		n[i] = store_network_get(manager_store(m), id[i]);
		assert_non_null(n[i]);
	}
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++) {
			assert_string_not_equal(n[i]->subnet, n[j]->subnet);
			assert_int_not_equal(n[i]->vni, n[j]->vni);
		}
	teardown(&f);
}

static void test_control_create_update_remove_on_the_leader(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	const Cs__Service *svc;
	struct answer a = {0};
	char err[256];
	uint64_t id, version;

	spec_init(&spec, &task, &c, &pl, "web");
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	svc = store_service_by_name(manager_store(m), "web");
	assert_non_null(svc);
	assert_int_equal(svc->id, id);
	assert_int_equal(svc->spec_version, 1);
	version = svc->version;

	/* the name is taken */
	assert_int_equal(
		control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		CS_EEXIST);
	assert_string_equal(err, "name: a service named 'web' exists");

	/* replicas change: no new task spec version */
	a.done = false;
	spec.replicas = 5;
	assert_committed(&f,
			 control_service_update(m, "web", &spec, version, err, sizeof err,
						answered, &a),
			 &a);
	svc = store_service_by_name(manager_store(m), "web");
	assert_int_equal(svc->spec->replicas, 5);
	assert_int_equal(svc->spec_version, 1);

	/* an old version is refused */
	assert_int_equal(control_service_update(m, "web", &spec, version, err, sizeof err,
						answered, &a),
			 CS_EVERSION);

	/* the image changes: tasks become outdated */
	a.done = false;
	c.image = "img2";
	assert_committed(
		&f,
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		&a);
	svc = store_service_by_name(manager_store(m), "web");
	assert_int_equal(svc->spec_version, 2);
	assert_string_equal(svc->previous_spec->task->container->image, "img");

	/* a global service cannot become replicated */
	spec.global = true;
	spec.replicas = 0;
	assert_int_equal(
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		CS_EINVAL);
	assert_string_equal(
		err, "mode: a service cannot change between replicated and global");

	/* a manual rollback: the previous spec as a new version, the tasks
	 * of the restored one kept, the rollback config's turn */
	a.done = false;
	assert_int_equal(
		control_service_rollback(m, "web", 1, err, sizeof err, answered, &a),
		CS_EVERSION);
	assert_committed(
		&f, control_service_rollback(m, "web", 0, err, sizeof err, answered, &a),
		&a);
	svc = store_service_by_name(manager_store(m), "web");
	assert_int_equal(svc->spec_version, 3);
	assert_int_equal(svc->spec_version_restored, 1);
	assert_string_equal(svc->spec->task->container->image, "img");
	assert_string_equal(svc->previous_spec->task->container->image, "img2");
	assert_int_equal(svc->update_status->state,
			 CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED);
	assert_string_equal(svc->update_status->message, "manually requested rollback");
	assert_int_equal(
		control_service_rollback(m, "nope", 0, err, sizeof err, answered, &a),
		CS_ENOENT);

	/* reads: inspect and list, on the leader */
	{
		const Cs__Service *found, *list[4];
		const Cs__Task *tasks[16], *one;
		size_t count = 0;
		assert_int_equal(
			control_service_inspect(m, "web", &found, err, sizeof err), 0);
		assert_int_equal(found->spec_version, 3);
		assert_int_equal(control_service_list(m, list, 4, &count), 0);
		assert_int_equal(count, 1);
		assert_string_equal(list[0]->spec->name, "web");
		/* the orchestrator makes the tasks: wait for them */
		for (int i = 0; i < 1000 && count < 5; i++) {
			assert_int_equal(control_task_list(m, "web", tasks, 16, &count,
							   err, sizeof err),
					 0);
			if (count < 5)
				world_step(f.w, UINT64_MAX);
		}
		assert_true(count >= 5);
		for (size_t i = 1; i < count && i < 16; i++)
			assert_true(tasks[i - 1]->id < tasks[i]->id); /* id order */
		assert_int_equal(
			control_task_inspect(m, tasks[0]->id, &one, err, sizeof err), 0);
		assert_int_equal(one->service_id, list[0]->id);
		assert_int_equal(
			control_service_inspect(m, "nope", &found, err, sizeof err),
			CS_ENOENT);
		assert_string_equal(err, "no service named 'nope'");
		assert_int_equal(
			control_task_list(m, "nope", tasks, 16, &count, err, sizeof err),
			CS_ENOENT);
	}

	a.done = false;
	assert_committed(
		&f, control_service_remove(m, "web", err, sizeof err, answered, &a), &a);
	assert_null(store_service_by_name(manager_store(m), "web"));
	assert_int_equal(control_service_remove(m, "web", err, sizeof err, answered, &a),
			 CS_ENOENT);
	assert_string_equal(err, "no service named 'web'");
	teardown(&f);
}

static void test_control_node_availability_labels_and_removal(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	const Cs__Node *n = NULL;
	struct answer a = {0};
	char err[256];

	/* the manager's own agent registers its node */
	while (!(n = store_node_next(manager_store(m), NULL)) &&
	       world_step(f.w, 60 * SEC))
		;
	assert_non_null(n);
	assert_committed(
		&f,
		control_node_update(m, n->id, true,
				    CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN,
				    "zone", "a", err, sizeof err, answered, &a),
		&a);
	n = store_node_next(manager_store(m), NULL);
	assert_int_equal(n->availability, CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN);
	assert_int_equal(n->n_labels, 1);
	assert_string_equal(n->labels[0]->key, "zone");
	assert_string_equal(n->labels[0]->value, "a");

	/* a label removed (value NULL) */
	a.done = false;
	assert_committed(&f,
			 control_node_update(m, n->id, false, 0, "zone", NULL, err,
					     sizeof err, answered, &a),
			 &a);
	n = store_node_next(manager_store(m), NULL);
	assert_int_equal(n->n_labels, 0);

	/* a manager is not removed */
	assert_int_equal(
		control_node_remove(m, n->id, true, err, sizeof err, answered, &a),
		CS_EINVAL);
	assert_string_equal(err, "node m1 is a cluster manager and is a member of the "
				 "raft cluster. It must be demoted to worker before "
				 "removal");
	assert_int_equal(control_node_update(m, 42, false, 0, NULL, NULL, err, sizeof err,
					     answered, &a),
			 CS_ENOENT);
	assert_string_equal(err, "no node 000000000000002a");
	{
		const Cs__Node *found, *list[4];
		size_t count;
		char hex[17];
		assert_int_equal(control_node_inspect(m, "m1", &found, err, sizeof err),
				 0);
		assert_int_equal(found->id, n->id);
		snprintf(hex, sizeof hex, "%016llx", (unsigned long long)n->id);
		assert_int_equal(control_node_inspect(m, hex, &found, err, sizeof err),
				 0);
		assert_string_equal(found->hostname, "m1");
		assert_int_equal(control_node_inspect(m, "w9", &found, err, sizeof err),
				 CS_ENOENT);
		assert_string_equal(err, "no node 'w9'");
		assert_int_equal(control_node_list(m, list, 4, &count), 0);
		assert_int_equal(count, 1);
	}
	teardown(&f);
}

/* A cluster of `managers` managers (m1..) and `workers` workers (w1..),
 * stepped until there is a leader and every node is registered and ready.
 * Returns the leader's node index. */
static uint32_t boot_cluster(struct fixture *f, uint32_t managers, uint32_t workers)
{
	uint32_t total = managers + workers;
	int64_t l = -1;

	f->w = world_new(5);
	f->c = simcluster_new(f->w, NULL);
	simcluster_node_programs(f->c, true);
	for (uint32_t i = 0; i < total; i++) {
		const struct node_cfg *cfg;
		char name[16];
		uint32_t idx;
		bool manager = i < managers;

		snprintf(name, sizeof name, "%c%u", manager ? 'm' : 'w',
			 manager ? i + 1 : i - managers + 1);
		cfg = simcluster_node_cfg(f->c, name, manager ? i + 1 : 0,
					  manager ? managers : 0, managers, 4000,
					  1ull << 33);
		assert_non_null(cfg);
		assert_int_equal(world_node_add(f->w, name, &node_program, cfg, &idx), 0);
		simcluster_track(f->c, idx, manager ? i + 1 : 0);
		assert_int_equal(world_node_start(f->w, idx), 0);
	}
	for (;;) {
		size_t ready = 0;
		if ((l = simcluster_leader(f->c)) >= 0 &&
		    manager_serves(simcluster_manager(f->c, (uint32_t)l))) {
			const struct store *st =
				manager_store(simcluster_manager(f->c, (uint32_t)l));
			for (const Cs__Node *n = store_node_next(st, NULL); n;
			     n = store_node_next(st, n))
				ready += n->state == CS__NODE_STATE__NODE_STATE_READY;
			if (ready == total && world_now_us(f->w) > 20 * SEC)
				break;
		}
		assert_true(world_step(f->w, 600 * SEC));
	}
	return (uint32_t)l;
}

static const Cs__Node *node_named(struct manager *m, const char *hostname)
{
	const Cs__Node *n = NULL;
	char err[128];

	assert_int_equal(control_node_inspect(m, hostname, &n, err, sizeof err), 0);
	return n;
}

/* Writes b (taken) through m and waits for its commit. */
static void write_batch(struct fixture *f, struct manager *m, struct store_batch *b)
{
	struct answer a = {0};
	uint8_t *buf;
	size_t len;

	assert_int_equal(store_batch_encode(b, 0, 0, &buf, &len), 0);
	store_batch_free(b);
	assert_int_equal(manager_write(m, buf, len, answered, &a), 0);
	free(buf);
	assert_int_equal(wait_answer(f, &a), 0);
}

/* A service record of chosen id and name, no replicas (no tasks). */
static void put_service(struct store_batch *b, uint64_t id, const char *name)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT;
	spec.name = (char *)name;
	svc.id = id;
	svc.spec = &spec;
	svc.spec_version = 1;
	assert_int_equal(
		store_batch_service(b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc), 0);
}

/* Issue 14: a service, task or node is named by its full id, its name
 * (service) or hostname (node), or a unique prefix of its id, in Docker's
 * order; a prefix (or hostname) that fits several is refused naming them. */
static void test_control_finds_by_id_name_or_unique_prefix(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	const Cs__Service *svc;
	const Cs__Node *node, *self = NULL;
	const Cs__Task *task;
	struct store_batch b;
	Cs__Node dup = CS__NODE__INIT;
	char err[512], hex[17];

	store_batch_init(&b);
	put_service(&b, 0xab00000000000001ull, "web");
	put_service(&b, 0xab00000000000002ull, "db");
	put_service(&b, 0xcd00000000000003ull, "ab"); /* a name that is a prefix */
	write_batch(&f, m, &b);

	/* the full id, then the name, then a unique prefix (either case) */
	assert_int_equal(
		control_service_find(m, "ab00000000000002", &svc, err, sizeof err), 0);
	assert_string_equal(svc->spec->name, "db");
	assert_int_equal(control_service_find(m, "web", &svc, err, sizeof err), 0);
	assert_int_equal(svc->id, 0xab00000000000001ull);
	assert_int_equal(control_service_find(m, "ab", &svc, err, sizeof err), 0);
	assert_int_equal(svc->id, 0xcd00000000000003ull); /* the name wins */
	assert_int_equal(control_service_find(m, "CD", &svc, err, sizeof err), 0);
	assert_string_equal(svc->spec->name, "ab");
	assert_int_equal(
		control_service_find(m, "ab000000000000001", &svc, err, sizeof err),
		CS_ENOENT); /* 17 digits: no id */
	assert_string_equal(err, "no service named 'ab000000000000001'");
	/* ambiguous: refused, naming the candidates */
	assert_int_equal(control_service_find(m, "ab0", &svc, err, sizeof err),
			 CS_EINVAL);
	assert_string_equal(err, "service 'ab0' is ambiguous (2 matches found): "
				 "ab00000000000001 (web), ab00000000000002 (db); give "
				 "more of the id");
	assert_null(svc);
	assert_int_equal(control_service_find(m, "ef", &svc, err, sizeof err), CS_ENOENT);
	assert_string_equal(err, "no service named 'ef'");

	/* nodes: a hostname two nodes share is ambiguous too */
	while (!(self = store_node_next(manager_store(m), NULL)) &&
	       world_step(f.w, 60 * SEC))
		;
	assert_non_null(self);
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)self->id);
	hex[12] = '\0';
	assert_int_equal(control_node_find(m, hex, &node, err, sizeof err), 0);
	assert_string_equal(node->hostname, "m1");
	dup.id = self->id ^ 1; /* the same first 15 digits */
	dup.hostname = "m1";
	store_batch_init(&b);
	assert_int_equal(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &dup),
			 0);
	write_batch(&f, m, &b);
	assert_int_equal(control_node_find(m, "m1", &node, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "node 'm1' is ambiguous (2 matches found): "));
	assert_non_null(strstr(err, "; use its id"));
	assert_int_equal(control_node_find(m, hex, &node, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "; give more of the id"));
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)self->id);
	assert_int_equal(control_node_find(m, hex, &node, err, sizeof err), 0);
	assert_ptr_equal(node, store_node_get(manager_store(m), self->id));
	assert_int_equal(control_node_find(m, "w9", &node, err, sizeof err), CS_ENOENT);
	assert_string_equal(err, "no node 'w9'");

	/* tasks: 17 of them, so two share a first digit (pigeonhole) */
	{
		Cs__ServiceSpec spec;
		Cs__TaskSpec ts;
		Cs__ContainerSpec c;
		Cs__Placement pl;
		struct answer a = {0};
		const Cs__Task *t = NULL;
		size_t per_digit[16] = {0};
		uint64_t id;
		char digit[2] = "";

		spec_init(&spec, &ts, &c, &pl, "many");
		spec.replicas = 17;
		assert_committed(&f,
				 control_service_create(m, &spec, &id, err, sizeof err,
							answered, &a),
				 &a);
		while (store_task_count(manager_store(m)) < 17 &&
		       world_step(f.w, UINT64_MAX))
			;
		assert_int_equal(store_task_count(manager_store(m)), 17);
		while ((t = store_task_next(manager_store(m), t)) != NULL)
			per_digit[t->id >> 60]++;
		for (unsigned d = 0; d < 16; d++) {
			snprintf(hex, sizeof hex, "%x", d);
			if (per_digit[d] > 1 && !digit[0])
				digit[0] = hex[0];
			if (per_digit[d] == 0)
				assert_int_equal(
					control_task_find(m, hex, &task, err, sizeof err),
					CS_ENOENT);
		}
		assert_true(digit[0] != '\0');
		assert_int_equal(control_task_find(m, digit, &task, err, sizeof err),
				 CS_EINVAL);
		assert_non_null(strstr(err, "task '"));
		assert_non_null(strstr(err, "matches found): "));
		t = store_task_next(manager_store(m), NULL);
		snprintf(hex, sizeof hex, "%016llx", (unsigned long long)t->id);
		assert_int_equal(control_task_find(m, hex, &task, err, sizeof err), 0);
		assert_ptr_equal(task, t);
		hex[15] = '\0'; /* 15 digits: one task among 17 */
		assert_int_equal(control_task_find(m, hex, &task, err, sizeof err), 0);
		assert_ptr_equal(task, t);
		assert_int_equal(control_task_find(m, "many", &task, err, sizeof err),
				 CS_ENOENT);
		assert_string_equal(err, "no task 'many'");
	}
	teardown(&f);
}

/* Counts the tasks of st that pred lets through (what a filter should). */
static size_t count_tasks(const struct store *st, uint64_t node_id, int desired,
			  uint64_t service_id)
{
	size_t n = 0;
	for (const Cs__Task *t = store_task_next(st, NULL); t; t = store_task_next(st, t))
		n += (!node_id || t->node_id == node_id) &&
		     (desired < 0 || t->desired_state == (Cs__TaskState)desired) &&
		     (!service_id || t->service_id == service_id);
	return n;
}

/* Issue 17's routing mesh: the allocator gives every node its own address
 * on the ingress network, each a different one, none the gateway; a node's
 * record written by others keeps it. */
static void test_control_nodes_get_ingress_addresses(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 3, 2);
	struct manager *m = simcluster_manager(f.c, leader);
	const struct store *st = manager_store(m);
	const Cs__Network *ing = store_network_by_name(st, "ingress");
	char seen[8][20];
	size_t n = 0;
	char why[160];
	(void)state;

	assert_non_null(ing);
	for (int i = 0; i < 50; i++) /* a few passes of the allocator */
		world_step(f.w, UINT64_MAX);
	for (const Cs__Node *nd = store_node_next(st, NULL); nd;
	     nd = store_node_next(st, nd)) {
		assert_non_null(nd->ingress);
		assert_int_equal(nd->ingress->network_id, ing->id);
		assert_true(strncmp(nd->ingress->addr, "10.0.0.", 7) == 0);
		assert_string_not_equal(nd->ingress->addr,
					"10.0.0.1/24"); /* the gateway */
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(seen[j], nd->ingress->addr);
		snprintf(seen[n++], sizeof seen[0], "%s", nd->ingress->addr);
	}
	assert_int_equal(n, 5);
	assert_true(alloc_invariants(st, why, sizeof why));
	teardown(&f);
}

/* Issue 14: task list filters by node, desired state and service label
 * (Docker's `--filter node=X --filter desired-state=running --filter
 * label=K=V`): values of one kind are alternatives, kinds all apply. */
static void test_control_task_filters(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 1, 2);
	struct manager *m = simcluster_manager(f.c, leader);
	const struct store *st = manager_store(m);
	Cs__ServiceSpec spec;
	Cs__TaskSpec ts;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	Cs__Label tier = CS__LABEL__INIT, *labels[1] = {&tier};
	struct answer a = {0};
	const Cs__Task *out[64];
	const Cs__Service *db;
	uint64_t id, w1, w2;
	size_t count, want;
	char err[256], w1_prefix[17];
	char *nodes[2] = {"w1", NULL};
	char *lab[2];
	Cs__TaskState running = CS__TASK_STATE__TASK_STATE_RUNNING;
	Cs__TaskState gone[2] = {CS__TASK_STATE__TASK_STATE_SHUTDOWN,
				 CS__TASK_STATE__TASK_STATE_REMOVE};
	struct control_task_filter flt;

	spec_init(&spec, &ts, &c, &pl, "web");
	spec.replicas = 9;
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	spec_init(&spec, &ts, &c, &pl, "db");
	spec.replicas = 3;
	tier.key = "tier";
	tier.value = "back";
	spec.n_labels = 1;
	spec.labels = labels;
	a.done = false;
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	/* every task placed */
	while ((store_task_count(st) < 12 || store_task_next_by_node(st, 0, NULL)) &&
	       world_step(f.w, UINT64_MAX))
		;
	assert_int_equal(store_task_count(st), 12);
	assert_null(store_task_next_by_node(st, 0, NULL));
	w1 = node_named(m, "w1")->id;
	w2 = node_named(m, "w2")->id;
	db = store_service_by_name(st, "db");

	/* by node: hostname, id prefix; two nodes are either */
	memset(&flt, 0, sizeof flt);
	flt.nodes = nodes;
	flt.node_count = 1;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	want = count_tasks(st, w1, -1, 0);
	assert_true(want > 0);
	assert_int_equal(count, want);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(out[i]->node_id, w1);
	snprintf(w1_prefix, sizeof w1_prefix, "%016llx", (unsigned long long)w1);
	w1_prefix[10] = '\0';
	nodes[0] = w1_prefix;
	nodes[1] = "w2";
	flt.node_count = 2;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, want + count_tasks(st, w2, -1, 0));
	for (size_t i = 1; i < count; i++)
		assert_true(out[i - 1]->id < out[i]->id); /* id order */
	nodes[1] = "w9";
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err),
		CS_ENOENT);
	assert_string_equal(err, "no node 'w9'");

	/* by label of the task's service: KEY, KEY=VALUE; and with a service */
	memset(&flt, 0, sizeof flt);
	lab[0] = "tier";
	flt.labels = lab;
	flt.label_count = 1;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, 3);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(out[i]->service_id, db->id);
	lab[0] = "tier=back";
	lab[1] = "tier=front"; /* every label must match */
	flt.label_count = 2;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, 0);
	flt.label_count = 1;
	flt.service = "web";
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, 0);
	flt.service = "db";
	nodes[0] = "w1";
	flt.nodes = nodes;
	flt.node_count = 1;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, count_tasks(st, w1, -1, db->id));
	lab[0] = "=x";
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err),
		CS_EINVAL);
	assert_string_equal(
		err, "label: '=x' is not a label filter (expected KEY or KEY=VALUE)");

	/* by desired state, once a scale-down made some tasks go */
	spec_init(&spec, &ts, &c, &pl, "web");
	spec.replicas = 4;
	a.done = false;
	assert_committed(
		&f,
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		&a);
	while (count_tasks(st, 0, CS__TASK_STATE__TASK_STATE_RUNNING, 0) > 7 &&
	       world_step(f.w, UINT64_MAX))
		;
	memset(&flt, 0, sizeof flt);
	flt.desired = &running;
	flt.desired_count = 1;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, 7);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(out[i]->desired_state,
				 CS__TASK_STATE__TASK_STATE_RUNNING);
	flt.desired = gone;
	flt.desired_count = 2;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	assert_int_equal(count, store_task_count(st) - 7);
	assert_true(count > 0);
	/* too many values of one kind */
	flt.desired_count = CONTROL_FILTER_VALUES_MAX + 1;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err),
		CS_EINVAL);
	assert_string_equal(err, "filter: over 32 values of one kind");
	teardown(&f);
}

/* The model of a filtered task list: every task, by id, tested alone. */
static size_t model_list(const struct store *st, const uint64_t *nodes, size_t n_nodes,
			 uint64_t service_id, const Cs__Task **out, size_t max)
{
	size_t n = 0;
	for (const Cs__Task *t = store_task_next(st, NULL); t;
	     t = store_task_next(st, t)) {
		bool on = n_nodes == 0;
		for (size_t i = 0; i < n_nodes; i++)
			on = on || t->node_id == nodes[i];
		if (!on || (service_id && t->service_id != service_id))
			continue;
		if (n < max)
			out[n] = t;
		n++;
	}
	return n;
}

/* Issue 18: a list by node or by service goes through those indexes, not a
 * walk of every task: the same tasks, in id order, the first max of them,
 * each once when two references name one node. */
static void test_control_task_list_by_index_is_the_walk(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 1, 3);
	struct manager *m = simcluster_manager(f.c, leader);
	const struct store *st = manager_store(m);
	Cs__ServiceSpec spec;
	Cs__TaskSpec ts;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	struct answer a = {0};
	const Cs__Task *out[64], *want[64];
	uint64_t id, w1, w3, ids[2];
	size_t count, n;
	char err[256], w3_id[17];
	char *nodes[3];
	struct control_task_filter flt;

	spec_init(&spec, &ts, &c, &pl, "web");
	spec.replicas = 20;
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	spec_init(&spec, &ts, &c, &pl, "db");
	spec.replicas = 7;
	a.done = false;
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	while ((store_task_count(st) < 27 || store_task_next_by_node(st, 0, NULL)) &&
	       world_step(f.w, UINT64_MAX))
		;
	assert_null(store_task_next_by_node(st, 0, NULL));
	w1 = node_named(m, "w1")->id;
	w3 = node_named(m, "w3")->id;
	snprintf(w3_id, sizeof w3_id, "%016llx", (unsigned long long)w3);

	/* two nodes, named out of id order, one of them twice (by hostname
	 * and by id); then cut at 5 */
	memset(&flt, 0, sizeof flt);
	nodes[0] = "w3";
	nodes[1] = "w1";
	nodes[2] = w3_id;
	flt.nodes = nodes;
	flt.node_count = 3;
	ids[0] = w1;
	ids[1] = w3;
	for (size_t max = 64; max >= 5; max = max == 64 ? 5 : 0) {
		assert_int_equal(control_task_list_filtered(m, &flt, out, max, &count,
							    err, sizeof err),
				 0);
		n = model_list(st, ids, 2, 0, want, max);
		assert_true(n > 5);
		assert_int_equal(count, n);
		for (size_t i = 0; i < (n < max ? n : max); i++)
			assert_ptr_equal(out[i], want[i]);
	}
	/* one service; one service on one node; no filter */
	memset(&flt, 0, sizeof flt);
	flt.service = "db";
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	n = model_list(st, NULL, 0, store_service_by_name(st, "db")->id, want, 64);
	assert_int_equal(count, 7);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(out[i], want[i]);
	flt.nodes = nodes;
	flt.node_count = 1;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err), 0);
	n = model_list(st, &w3, 1, store_service_by_name(st, "db")->id, want, 64);
	assert_int_equal(count, n);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(out[i], want[i]);
	memset(&flt, 0, sizeof flt);
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 10, &count, err, sizeof err), 0);
	n = model_list(st, NULL, 0, 0, want, 10);
	assert_int_equal(count, 27);
	assert_int_equal(n, 27);
	for (size_t i = 0; i < 10; i++)
		assert_ptr_equal(out[i], want[i]);
	/* the first reference that fails is the one named */
	nodes[0] = "w1";
	nodes[1] = "nope";
	nodes[2] = "w7";
	flt.nodes = nodes;
	flt.node_count = 3;
	assert_int_equal(
		control_task_list_filtered(m, &flt, out, 64, &count, err, sizeof err),
		CS_ENOENT);
	assert_string_equal(err, "no node 'nope'");
	(void)state;
	teardown(&f);
}

/* Issue 14: records carry the leader's wall clock (the simulator's epoch,
 * 2026-01-01, plus virtual time) as created and updated times; an update
 * moves only the updated time. */
static void test_control_records_carry_created_and_updated_times(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	const struct store *st = manager_store(m);
	Cs__ServiceSpec spec;
	Cs__TaskSpec ts;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	const Cs__Service *svc;
	const Cs__Task *t;
	struct answer a = {0};
	uint64_t id, created, later;
	char err[256];

	spec_init(&spec, &ts, &c, &pl, "web");
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	svc = store_service_get(st, id);
	created = svc->created_ms;
	assert_true(created >= 1767225600000ull + world_now_us(f.w) / 1000 - 1000);
	assert_true(created <= 1767225600000ull + world_now_us(f.w) / 1000);
	assert_int_equal(svc->updated_ms, created);

	later = world_now_us(f.w) + 5 * SEC;
	while (world_now_us(f.w) < later && world_step(f.w, later))
		;
	while ((t = store_task_next(st, NULL)) == NULL && world_step(f.w, UINT64_MAX))
		;
	assert_non_null(t);
	assert_true(t->created_ms > created);
	while (!store_node_next(st, NULL) && world_step(f.w, UINT64_MAX))
		;
	assert_true(store_node_next(st, NULL)->created_ms >= 1767225600000ull);
	assert_true(t->updated_ms >= t->created_ms);
	spec.replicas = 3;
	a.done = false;
	assert_committed(
		&f,
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		&a);
	svc = store_service_get(st, id);
	assert_int_equal(svc->created_ms, created);
	assert_true(svc->updated_ms >= created + 5000);
	teardown(&f);
}

static void test_control_node_set_role(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 3, 1);
	struct manager *m = simcluster_manager(f.c, leader);
	const char *follower = strcmp(world_node_name(f.w, leader), "m2") ? "m2" : "m3";
	const Cs__Node *n;
	struct answer a = {0};
	char err[256];
	uint64_t id;

	/* unknown node, unknown role */
	assert_int_equal(control_node_set_role(m, 42, CS__NODE_ROLE__NODE_ROLE_WORKER,
					       err, sizeof err, answered, &a),
			 CS_ENOENT);
	assert_string_equal(err, "no node 000000000000002a");
	n = node_named(m, "w1");
	assert_int_equal(control_node_set_role(m, n->id, (Cs__NodeRole)7, err, sizeof err,
					       answered, &a),
			 CS_EINVAL);
	assert_string_equal(err, "role: unknown (expected manager or worker)");

	/* the role it already has: answered as a write, never inside the call */
	id = n->id;
	assert_int_equal(control_node_set_role(m, id, CS__NODE_ROLE__NODE_ROLE_WORKER,
					       err, sizeof err, answered, &a),
			 0);
	assert_false(a.done);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_int_equal(node_named(m, "w1")->desired_role,
			 CS__NODE_ROLE__NODE_ROLE_WORKER);

	/* a worker promoted */
	a.done = false;
	assert_committed(&f,
			 control_node_set_role(m, id, CS__NODE_ROLE__NODE_ROLE_MANAGER,
					       err, sizeof err, answered, &a),
			 &a);
	assert_int_equal(node_named(m, "w1")->desired_role,
			 CS__NODE_ROLE__NODE_ROLE_MANAGER);

	/* a follower demoted: the other two managers are a quorum */
	n = node_named(m, follower);
	assert_int_equal(n->role, CS__NODE_ROLE__NODE_ROLE_MANAGER);
	assert_non_null(n->manager_status);
	a.done = false;
	assert_committed(&f,
			 control_node_set_role(m, n->id, CS__NODE_ROLE__NODE_ROLE_WORKER,
					       err, sizeof err, answered, &a),
			 &a);
	assert_int_equal(node_named(m, follower)->desired_role,
			 CS__NODE_ROLE__NODE_ROLE_WORKER);
	teardown(&f);
}

static void test_control_demotion_needs_a_quorum_and_another_manager(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 3, 0);
	struct manager *m = simcluster_manager(f.c, leader);
	uint32_t up = (leader + 1) % 3, down = (leader + 2) % 3;
	const char *up_name = world_node_name(f.w, up);
	const char *down_name = world_node_name(f.w, down);
	const Cs__Node *n;
	struct answer a = {0};
	char err[256], want[256];

	/* one manager goes down: demoting the other follower would leave the
	 * leader and a dead manager, one reachable member of two */
	assert_int_equal(world_node_kill(f.w, down, true, false), 0);
	while ((n = node_named(m, down_name))->state ==
		       CS__NODE_STATE__NODE_STATE_READY &&
	       world_step(f.w, world_now_us(f.w) + 600 * SEC))
		;
	assert_int_not_equal(node_named(m, down_name)->state,
			     CS__NODE_STATE__NODE_STATE_READY);
	m = simcluster_manager(f.c, leader);
	assert_true(manager_is_leader(m));
	n = node_named(m, up_name);
	assert_int_equal(control_node_set_role(m, n->id, CS__NODE_ROLE__NODE_ROLE_WORKER,
					       err, sizeof err, answered, &a),
			 CS_EINVAL);
	snprintf(want, sizeof want,
		 "demoting node %s would leave the managers without a quorum of "
		 "reachable members",
		 up_name);
	assert_string_equal(err, want);
	assert_int_equal(node_named(m, up_name)->desired_role,
			 CS__NODE_ROLE__NODE_ROLE_MANAGER);
	teardown(&f);
}

static void test_control_last_manager_is_not_demoted(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	const Cs__Node *n;
	struct answer a = {0};
	char err[256];

	while (!(n = store_node_next(manager_store(m), NULL)) &&
	       world_step(f.w, 60 * SEC))
		;
	assert_non_null(n);
	assert_int_equal(control_node_set_role(m, n->id, CS__NODE_ROLE__NODE_ROLE_WORKER,
					       err, sizeof err, answered, &a),
			 CS_EINVAL);
	assert_string_equal(
		err,
		"node m1 is the last manager: promote another node before demoting it");
	assert_false(a.done);
	teardown(&f);
}

static void test_control_node_remove_rules(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 1, 2);
	struct manager *m = simcluster_manager(f.c, leader);
	const Cs__Node *n;
	struct answer a = {0};
	char err[256];
	uint64_t id;
	int64_t w2;

	assert_int_equal(control_node_remove(m, 42, false, err, sizeof err, answered, &a),
			 CS_ENOENT);
	assert_string_equal(err, "no node 000000000000002a");

	/* a ready worker needs force */
	n = node_named(m, "w1");
	id = n->id;
	assert_int_equal(control_node_remove(m, id, false, err, sizeof err, answered, &a),
			 CS_EINVAL);
	assert_string_equal(err, "node w1 is not down and can't be removed");
	assert_int_equal(control_node_remove(m, id, true, err, sizeof err, answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_null(store_node_get(manager_store(m), id));
	/* and it is remembered: its agent may not come back as itself */
	{
		const Cs__Cluster *cl = store_cluster(manager_store(m));
		assert_non_null(cl);
		assert_int_equal(cl->n_removed_nodes, 1);
		assert_int_equal(cl->removed_nodes[0], id);
	}

	/* a worker that is down goes without force */
	w2 = world_node_find(f.w, "w2");
	assert_true(w2 >= 0);
	id = node_named(m, "w2")->id;
	assert_int_equal(world_node_kill(f.w, (uint32_t)w2, true, false), 0);
	while (node_named(m, "w2")->state == CS__NODE_STATE__NODE_STATE_READY &&
	       world_step(f.w, world_now_us(f.w) + 600 * SEC))
		;
	a.done = false;
	assert_committed(
		&f, control_node_remove(m, id, false, err, sizeof err, answered, &a), &a);
	assert_null(store_node_get(manager_store(m), id));

	/* a label key must be a name */
	n = node_named(m, "m1");
	assert_int_equal(control_node_update(m, n->id, false, 0, "", "v", err, sizeof err,
					     answered, &a),
			 CS_EINVAL);
	assert_string_equal(err, "label: bad key ''");
	world_free(f.w);
	simcluster_free(f.c);
}

/* Demotes a manager (the leader itself when self), removes it while still
 * a member, and checks that the Raft group (as the leader of the moment
 * sees it) drops it within 60 s. */
static void remove_demoted_member(bool self)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 3, 0);
	struct manager *m = simcluster_manager(f.c, leader);
	const char *name = self ? world_node_name(f.w, leader)
			   : strcmp(world_node_name(f.w, leader), "m3") ? "m3"
									: "m2";
	uint64_t ids[LIMIT_MANAGERS_MAX], id = node_named(m, name)->id;
	struct answer a = {0};
	char err[256];
	size_t n = 0;
	bool member = false;

	assert_int_equal(manager_voters(m, ids, LIMIT_MANAGERS_MAX), 3);
	assert_int_equal(control_node_set_role(m, id, CS__NODE_ROLE__NODE_ROLE_WORKER,
					       err, sizeof err, answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	n = manager_voters(m, ids, LIMIT_MANAGERS_MAX);
	for (size_t i = 0; i < n; i++)
		member = member || ids[i] == id;
	assert_true(member); /* the demotion's Raft change is still to come */
	a.done = false;
	assert_int_equal(control_node_remove(m, id, true, err, sizeof err, answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_null(store_node_get(manager_store(m), id));
	for (uint64_t end = world_now_us(f.w) + 60 * SEC; world_step(f.w, end);) {
		int64_t l = simcluster_leader(f.c);
		n = l >= 0 ? manager_voters(simcluster_manager(f.c, (uint32_t)l), ids,
					    LIMIT_MANAGERS_MAX)
			   : 0;
		if (n == 2)
			break;
	}
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(ids[i], id);
	world_free(f.w);
	simcluster_free(f.c);
}

/* SwarmKit's integration tests demote a manager and remove it at once,
 * forced: it goes, though still in the Raft group, and the leader then
 * takes its member out (SwarmKit's role manager, evictRemovedNode); the
 * leader itself hands its leadership over first. */
static void test_control_node_remove_demoted_manager_still_in_raft(void **state)
{
	remove_demoted_member(false);
	remove_demoted_member(true);
}

/* The heartbeat period: SwarmKit refuses only a negative one (a count of
 * ms cannot be); cswarm's floor is LIMIT_HEARTBEAT_MS_MIN, 0 the default. */
static void test_control_heartbeat_has_a_floor(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 1, 0);
	struct manager *m = simcluster_manager(f.c, leader);
	struct answer a = {0};
	char err[256];

	assert_int_equal(control_cluster_set_heartbeat(m, LIMIT_HEARTBEAT_MS_MIN - 1, err,
						       sizeof err, answered, &a),
			 CS_EINVAL);
	assert_string_equal(err,
			    "dispatcher-heartbeat: 9 ms is under the minimum of 10 ms");
	assert_false(a.done);
	assert_int_equal(control_cluster_set_heartbeat(m, LIMIT_HEARTBEAT_MS_MIN, err,
						       sizeof err, answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_int_equal(
		store_cluster(manager_store(m))->settings->dispatcher_heartbeat_ms,
		LIMIT_HEARTBEAT_MS_MIN);
	a.done = false;
	assert_int_equal(
		control_cluster_set_heartbeat(m, 0, err, sizeof err, answered, &a), 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_int_equal(
		store_cluster(manager_store(m))->settings->dispatcher_heartbeat_ms, 0);
	world_free(f.w);
	simcluster_free(f.c);
}

static void test_control_rotate_tokens_and_inspect_the_cluster(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	const Cs__Cluster *cl = NULL;
	struct answer a = {0};
	char err[256], wt[128], mt[128];

	while (!store_cluster(manager_store(m)) && world_step(f.w, UINT64_MAX))
		;
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), 0);
	assert_non_null(cl);
	snprintf(wt, sizeof wt, "%s", cl->worker_token);
	snprintf(mt, sizeof mt, "%s", cl->manager_token);
	assert_true(strlen(wt) > 0);
	assert_true(strlen(mt) > 0);

	/* neither is an error */
	assert_int_equal(control_cluster_rotate_token(m, false, false, err, sizeof err,
						      answered, &a),
			 CS_EINVAL);
	assert_string_equal(err, "rotate-token: say which (worker, manager or both)");

	/* the worker token alone */
	assert_committed(&f,
			 control_cluster_rotate_token(m, true, false, err, sizeof err,
						      answered, &a),
			 &a);
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), 0);
	assert_string_not_equal(cl->worker_token, wt);
	assert_memory_equal(cl->worker_token, "SWMTKN-1-", 9);
	assert_string_equal(cl->manager_token, mt);
	snprintf(wt, sizeof wt, "%s", cl->worker_token);

	/* the manager token alone */
	a.done = false;
	assert_committed(&f,
			 control_cluster_rotate_token(m, false, true, err, sizeof err,
						      answered, &a),
			 &a);
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), 0);
	assert_string_equal(cl->worker_token, wt);
	assert_string_not_equal(cl->manager_token, mt);
	assert_string_not_equal(cl->manager_token, cl->worker_token);
	snprintf(mt, sizeof mt, "%s", cl->manager_token);

	/* both */
	a.done = false;
	assert_committed(&f,
			 control_cluster_rotate_token(m, true, true, err, sizeof err,
						      answered, &a),
			 &a);
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), 0);
	assert_string_not_equal(cl->worker_token, wt);
	assert_string_not_equal(cl->manager_token, mt);
	/* drawn tokens name the cluster's root, and grant their roles */
	{
		uint8_t digest[ENV_DIGEST_BYTES], root[ENV_DIGEST_BYTES];
		char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
		Cs__NodeRole role;
		pki_digest(cl->ca_cert.data, cl->ca_cert.len, root);
		assert_int_equal(pki_token_parse(cl->worker_token, digest, secret, why),
				 0);
		assert_memory_equal(digest, root, sizeof root);
		assert_int_equal(ca_token_role(cl, cl->worker_token, &role, why), 0);
		assert_int_equal(role, CS__NODE_ROLE__NODE_ROLE_WORKER);
		assert_int_equal(ca_token_role(cl, cl->manager_token, &role, why), 0);
		assert_int_equal(role, CS__NODE_ROLE__NODE_ROLE_MANAGER);
		assert_int_equal(ca_token_role(cl, wt, &role, why), CS_EAUTH);
		assert_string_equal(
			why, "wrong join token (rotated, or never this cluster's)");
	}
	teardown(&f);
}

static void test_control_update_errors_and_reads(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	const Cs__Service *svc;
	const Cs__Task *tasks[8], *one;
	struct answer a = {0};
	char err[256], want[256];
	uint64_t id;
	size_t count = 99;

	/* no tasks yet: every-task list is empty, an unknown task is named */
	assert_int_equal(control_task_list(m, NULL, tasks, 8, &count, err, sizeof err),
			 0);
	assert_int_equal(count, 0);
	assert_int_equal(control_task_inspect(m, 42, &one, err, sizeof err), CS_ENOENT);
	assert_string_equal(err, "no task 000000000000002a");

	spec_init(&spec, &task, &c, &pl, "web");
	assert_int_equal(
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		CS_ENOENT);
	assert_string_equal(err, "no service named 'web'");
	assert_committed(
		&f, control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		&a);
	svc = store_service_by_name(manager_store(m), "web");
	assert_non_null(svc);

	/* a wrong version names both */
	assert_int_equal(control_service_update(m, "web", &spec, svc->version + 5, err,
						sizeof err, answered, &a),
			 CS_EVERSION);
	snprintf(want, sizeof want, "service 'web' is at version %llu, not %llu",
		 (unsigned long long)svc->version,
		 (unsigned long long)(svc->version + 5));
	assert_string_equal(err, want);

	/* a bad spec, and a rename, are refused */
	spec.replicas = 2000000;
	assert_int_equal(
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		CS_EINVAL);
	assert_string_equal(err, "replicas: 2000000 is over the limit of 1000000");
	spec_init(&spec, &task, &c, &pl, "web2");
	assert_int_equal(
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		CS_EINVAL);
	assert_string_equal(err, "name: a service cannot be renamed");

	/* a spec without a task, then back to one: a task-spec change */
	spec_init(&spec, &task, &c, &pl, "web");
	spec.task = NULL;
	a.done = false;
	assert_committed(
		&f,
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		&a);
	svc = store_service_by_name(manager_store(m), "web");
	assert_int_equal(svc->spec_version, 2);

	/* every task of the cluster, listed without a filter */
	for (int i = 0; i < 1000 && count < 2; i++) {
		assert_int_equal(
			control_task_list(m, NULL, tasks, 8, &count, err, sizeof err), 0);
		if (count < 2)
			world_step(f.w, UINT64_MAX);
	}
	assert_true(count >= 2);
	/* a list cut short still counts them all */
	assert_int_equal(control_task_list(m, NULL, tasks, 1, &count, err, sizeof err),
			 0);
	assert_true(count >= 2);
	teardown(&f);
}

static void test_control_followers_refuse(void **state)
{
	struct fixture f;
	uint32_t leader = boot_cluster(&f, 3, 0);
	struct manager *m = simcluster_manager(f.c, (leader + 1) % 3);
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	const Cs__Service *svc, *svcs[2];
	const Cs__Task *tasks[2], *t;
	const Cs__Node *nodes[2], *n;
	const Cs__Cluster *cl;
	struct answer a = {0};
	char err[256];
	uint64_t id;
	size_t count;

	assert_false(manager_is_leader(m));
	spec_init(&spec, &task, &c, &pl, "web");
	assert_int_equal(
		control_service_create(m, &spec, &id, err, sizeof err, answered, &a),
		CS_ENOTLEADER);
	assert_int_equal(
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		CS_ENOTLEADER);
	assert_int_equal(control_service_remove(m, "web", err, sizeof err, answered, &a),
			 CS_ENOTLEADER);
	assert_int_equal(control_node_update(m, 1, false, 0, NULL, NULL, err, sizeof err,
					     answered, &a),
			 CS_ENOTLEADER);
	assert_int_equal(control_node_remove(m, 1, true, err, sizeof err, answered, &a),
			 CS_ENOTLEADER);
	assert_int_equal(control_node_set_role(m, 1, CS__NODE_ROLE__NODE_ROLE_WORKER, err,
					       sizeof err, answered, &a),
			 CS_ENOTLEADER);
	assert_int_equal(control_cluster_rotate_token(m, true, true, err, sizeof err,
						      answered, &a),
			 CS_ENOTLEADER);
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), CS_ENOTLEADER);
	assert_int_equal(control_service_inspect(m, "web", &svc, err, sizeof err),
			 CS_ENOTLEADER);
	assert_int_equal(control_service_list(m, svcs, 2, &count), CS_ENOTLEADER);
	assert_int_equal(control_task_list(m, NULL, tasks, 2, &count, err, sizeof err),
			 CS_ENOTLEADER);
	assert_int_equal(control_task_inspect(m, 1, &t, err, sizeof err), CS_ENOTLEADER);
	assert_int_equal(control_node_list(m, nodes, 2, &count), CS_ENOTLEADER);
	assert_int_equal(control_node_inspect(m, "m1", &n, err, sizeof err),
			 CS_ENOTLEADER);
	/* nothing was written */
	world_step(f.w, world_now_us(f.w) + 10 * SEC);
	assert_false(a.done);
	assert_null(store_service_by_name(manager_store(simcluster_manager(f.c, leader)),
					  "web"));
	teardown(&f);
}

/* A write still uncommitted when the manager's process dies: its caller
 * hears CS_ECLOSED (so it can free what it holds). */
static void test_control_write_in_flight_at_close(void **state)
{
	struct fixture f;
	struct manager *m = boot(&f);
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Placement pl;
	struct answer a = {0};
	char err[256];
	uint64_t id;

	spec_init(&spec, &task, &c, &pl, "web");
	assert_int_equal(
		control_service_create(m, &spec, &id, err, sizeof err, answered, &a), 0);
	assert_false(a.done);
	world_free(f.w);
	assert_true(a.done);
	assert_int_equal(a.status, CS_ECLOSED);
	simcluster_free(f.c);
}

/* Right after its election the leader has not applied its own first
 * write (the cluster record): it does not serve yet, so that no call sees a
 * store behind what earlier leaders acknowledged. Once it serves, the
 * record is there. */
static void test_control_no_cluster_record_yet(void **state)
{
	struct fixture f;
	struct manager *m = boot_elected(&f);
	const Cs__Cluster *cl = NULL;
	struct answer a = {0};
	char err[256] = "";

	assert_true(manager_is_leader(m));
	assert_false(manager_serves(m));
	assert_null(store_cluster(manager_store(m)));
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), CS_ENOTLEADER);
	assert_int_equal(control_cluster_rotate_token(m, true, false, err, sizeof err,
						      answered, &a),
			 CS_ENOTLEADER);
	while (!manager_serves(m) && world_step(f.w, 60 * SEC))
		;
	assert_true(manager_serves(m));
	assert_int_equal(control_cluster_inspect(m, &cl, err, sizeof err), 0);
	assert_non_null(cl);
	assert_false(a.done);
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_names_the_bad_field),
		cmocka_unit_test(test_control_create_update_remove_on_the_leader),
		cmocka_unit_test(
			test_control_networks_created_at_once_draw_distinct_subnets),
		cmocka_unit_test(test_control_two_creates_in_flight_make_one_service),
		cmocka_unit_test(test_control_node_availability_labels_and_removal),
		cmocka_unit_test(test_control_validate_restart_update_and_names),
		cmocka_unit_test(test_control_rebalance_replicated_only),
		cmocka_unit_test(test_control_node_set_role),
		cmocka_unit_test(
			test_control_demotion_needs_a_quorum_and_another_manager),
		cmocka_unit_test(test_control_last_manager_is_not_demoted),
		cmocka_unit_test(test_control_node_remove_rules),
		cmocka_unit_test(test_control_heartbeat_has_a_floor),
		cmocka_unit_test(test_control_node_remove_demoted_manager_still_in_raft),
		cmocka_unit_test(test_control_rotate_tokens_and_inspect_the_cluster),
		cmocka_unit_test(test_control_update_errors_and_reads),
		cmocka_unit_test(test_control_followers_refuse),
		cmocka_unit_test(test_control_write_in_flight_at_close),
		cmocka_unit_test(test_control_no_cluster_record_yet),
		cmocka_unit_test(test_control_finds_by_id_name_or_unique_prefix),
		cmocka_unit_test(test_control_task_filters),
		cmocka_unit_test(test_control_task_list_by_index_is_the_walk),
		cmocka_unit_test(test_control_nodes_get_ingress_addresses),
		cmocka_unit_test(test_control_records_carry_created_and_updated_times),
	};
	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
