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
#include <string.h>

#include "core/control.h"
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
	assert_string_equal(
		err, "constraint: 'node.zone==a' is not a constraint (expected "
		     "node.id, node.hostname, node.role or node.labels.KEY, then == "
		     "or !=, then a value; node.role is manager or worker)");

	spec_init(&spec, &task, &c, &pl, "web");
	spec.replicas = 2000000;
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), CS_EINVAL);
	assert_string_equal(err, "replicas: 2000000 is over the limit of 1000000");

	spec_init(&spec, &task, &c, &pl, "web");
	assert_int_equal(control_validate_spec(&spec, err, sizeof err), 0);
}

/* A one-manager cluster on the simulator, with its leader. */
struct fixture {
	struct world *w;
	struct simcluster *c;
};

static struct manager *boot(struct fixture *f)
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
	assert_int_equal(
		control_service_create(m, &spec, &id, err, sizeof err, answered, &a), 0);
	assert_int_equal(wait_answer(&f, &a), 0);
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
	assert_int_equal(control_service_update(m, "web", &spec, version, err, sizeof err,
						answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
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
	assert_int_equal(
		control_service_update(m, "web", &spec, 0, err, sizeof err, answered, &a),
		0);
	assert_int_equal(wait_answer(&f, &a), 0);
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

	/* reads: inspect and list, on the leader */
	{
		const Cs__Service *found, *list[4];
		const Cs__Task *tasks[16], *one;
		size_t count = 0;
		assert_int_equal(
			control_service_inspect(m, "web", &found, err, sizeof err), 0);
		assert_int_equal(found->spec_version, 2);
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
	assert_int_equal(control_service_remove(m, "web", err, sizeof err, answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	assert_null(store_service_by_name(manager_store(m), "web"));
	assert_int_equal(control_service_remove(m, "web", err, sizeof err, answered, &a),
			 CS_ENOENT);
	assert_string_equal(err, "no service named 'web'");
	world_free(f.w);
	simcluster_free(f.c);
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
	assert_int_equal(
		control_node_update(m, n->id, true,
				    CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN,
				    "zone", "a", err, sizeof err, answered, &a),
		0);
	assert_int_equal(wait_answer(&f, &a), 0);
	n = store_node_next(manager_store(m), NULL);
	assert_int_equal(n->availability, CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN);
	assert_int_equal(n->n_labels, 1);
	assert_string_equal(n->labels[0]->key, "zone");
	assert_string_equal(n->labels[0]->value, "a");

	/* a label removed (value NULL) */
	a.done = false;
	assert_int_equal(control_node_update(m, n->id, false, 0, "zone", NULL, err,
					     sizeof err, answered, &a),
			 0);
	assert_int_equal(wait_answer(&f, &a), 0);
	n = store_node_next(manager_store(m), NULL);
	assert_int_equal(n->n_labels, 0);

	/* a manager is not removed */
	assert_int_equal(
		control_node_remove(m, n->id, true, err, sizeof err, answered, &a),
		CS_EINVAL);
	assert_string_equal(err, "node m1 is a manager: demote it before removing it");
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
	world_free(f.w);
	simcluster_free(f.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_names_the_bad_field),
		cmocka_unit_test(test_control_create_update_remove_on_the_leader),
		cmocka_unit_test(test_control_node_availability_labels_and_removal),
	};
	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
