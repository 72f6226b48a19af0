/* Tests of the control RPC on a simulated 3-manager cluster: a request to
 * the leader and the same request to a follower (forwarded) both work; bad
 * fields are named; unknown objects are CS_ENOENT; a partitioned follower
 * answers exactly once; a node update applies every change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/control_rpc.h"
#include "core/errors.h"
#include "core/node.h"
#include "sim/cluster.h"
#include "sim/world.h"

#define SEC 1000000ull

struct fixture {
	struct world *w;
	struct simcluster *c;
	uint32_t leader;
	uint32_t follower;
};

static void boot(struct fixture *f)
{
	static const char *const names[] = {"m1", "m2", "m3"};
	int64_t l = -1;

	f->w = world_new(11);
	f->c = simcluster_new(f->w, NULL);
	simcluster_node_programs(f->c, true);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t idx;
		const struct node_cfg *cfg = simcluster_node_cfg(f->c, names[i], i + 1, 3,
								 3, 4000, 1ull << 33);
		assert_non_null(cfg);
		assert_int_equal(world_node_add(f->w, names[i], &node_program, cfg, &idx),
				 0);
		simcluster_track(f->c, idx, i + 1);
		assert_int_equal(world_node_start(f->w, idx), 0);
	}
	/* a leader, followed by both followers, and every node registered */
	for (;;) {
		bool ready = (l = simcluster_leader(f->c)) >= 0;
		for (uint32_t i = 0; ready && i < 3; i++)
			ready = manager_leader_addr(simcluster_manager(f->c, i)) != NULL;
		if (ready && world_now_us(f->w) > 20 * SEC)
			break;
		assert_true(world_step(f->w, 120 * SEC));
	}
	f->leader = (uint32_t)l;
	f->follower = (f->leader + 1) % 3;
}

static void teardown(struct fixture *f)
{
	world_free(f->w);
	simcluster_free(f->c);
}

static struct control_rpc *rpc_of(struct fixture *f, uint32_t node)
{
	struct node *n = world_node_state(f->w, node);
	assert_non_null(n);
	assert_non_null(node_control(n));
	return node_control(n);
}

struct answer {
	int calls;
	int status;
	uint64_t id;
	char error[256];
	uint64_t created_id;
	uint64_t total;
	size_t n_services;
	char first_name[64];
	Cs__NodeAvailability availability;
	char labels[256]; /* "k=v," in order */
};

static void answered(void *data, const Cs__ControlResponse *resp)
{
	struct answer *a = data;

	a->calls++;
	a->status = resp->status;
	a->id = resp->id;
	snprintf(a->error, sizeof a->error, "%s", resp->error ? resp->error : "");
	a->created_id = resp->created_id;
	a->total = resp->total;
	a->n_services = resp->n_services;
	if (resp->n_services)
		snprintf(a->first_name, sizeof a->first_name, "%s",
			 resp->services[0]->spec->name);
	if (resp->n_nodes) {
		const Cs__Node *n = resp->nodes[0];
		a->availability = n->availability;
		a->labels[0] = 0;
		for (size_t i = 0; i < n->n_labels; i++) {
			size_t used = strlen(a->labels);
			snprintf(a->labels + used, sizeof a->labels - used, "%s=%s,",
				 n->labels[i]->key, n->labels[i]->value);
		}
	}
}

/* Calls req on node and steps the world until the answer. */
static void call(struct fixture *f, uint32_t node, const Cs__ControlRequest *req,
		 struct answer *a)
{
	memset(a, 0, sizeof *a);
	assert_int_equal(control_rpc_call(rpc_of(f, node), req, answered, a), 0);
	assert_int_equal(a->calls, 0); /* never inside the call */
	while (a->calls == 0 && world_step(f->w, UINT64_MAX))
		;
	assert_int_equal(a->calls, 1);
	assert_int_equal(a->id, req->id);
}

static void web_spec(Cs__ServiceSpec *spec, Cs__TaskSpec *task, Cs__ContainerSpec *c,
		     const char *name)
{
	cs__service_spec__init(spec);
	cs__task_spec__init(task);
	cs__container_spec__init(c);
	spec->name = (char *)name;
	spec->replicas = 2;
	c->image = "img";
	task->container = c;
	spec->task = task;
}

static void test_control_rpc_create_on_follower_list_on_leader(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	struct answer a;

	boot(&f);
	web_spec(&spec, &task, &c, "web");
	req.id = 7;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_true(a.created_id != 0);

	/* the same create on the leader: the name is taken */
	req.id = 8;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, CS_EEXIST);
	assert_string_equal(a.error, "name: a service named 'web' exists");

	web_spec(&spec, &task, &c, "api");
	req.id = 9;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);

	cs__control_request__init(&req);
	req.id = 10;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.total, 2);
	assert_int_equal(a.n_services, 2);

	/* the same list through the follower */
	req.id = 11;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.total, 2);
	assert_int_equal(a.n_services, 2);

	req.id = 12;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT;
	req.name = "web";
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_string_equal(a.first_name, "web");
	teardown(&f);
}

static void test_control_rpc_bad_spec_names_the_field(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	struct answer a;

	boot(&f);
	web_spec(&spec, &task, &c, "-web");
	req.id = 1;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_memory_equal(a.error, "name: '-web'", 12);
	teardown(&f);
}

static void test_control_rpc_unknown_service_is_enoent(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	struct answer a;

	boot(&f);
	req.id = 3;
	req.name = "nope";
	for (int i = 0; i < 2; i++) {
		req.op = i ? CS__CONTROL_OP__CONTROL_OP_SERVICE_REMOVE
			   : CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT;
		call(&f, f.follower, &req, &a);
		assert_int_equal(a.status, CS_ENOENT);
		assert_string_equal(a.error, "no service named 'nope'");
		call(&f, f.leader, &req, &a);
		assert_int_equal(a.status, CS_ENOENT);
	}
	req.op = CS__CONTROL_OP__CONTROL_OP_TASK_LIST;
	req.service = "nope";
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	teardown(&f);
}

static void test_control_rpc_partitioned_follower_answers_once(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	uint32_t groups[3] = {1, 1, 1};
	struct answer a;

	boot(&f);
	groups[f.follower] = 2;
	assert_int_equal(world_net_partition(f.w, groups, 3, 0), 0);
	req.id = 5;
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
	call(&f, f.follower, &req, &a);
	assert_true(a.status == CS_ETIMEDOUT || a.status == CS_ENOTLEADER);
	assert_true(strlen(a.error) > 0);
	/* nothing more comes, even once healed */
	world_net_heal(f.w);
	world_step(f.w, world_now_us(f.w) + 60 * SEC);
	while (world_step(f.w, world_now_us(f.w) + 60 * SEC) &&
	       world_now_us(f.w) < 200 * SEC)
		;
	assert_int_equal(a.calls, 1);

	/* once it lost its leader for good, the answer is CS_ENOTLEADER */
	world_net_partition(f.w, groups, 3, 0);
	while (manager_leader_addr(simcluster_manager(f.c, f.follower)) &&
	       world_step(f.w, world_now_us(f.w) + 120 * SEC))
		;
	req.id = 6;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ENOTLEADER);
	assert_string_equal(a.error, "no leader: the cluster has no quorum (try again "
				     "once a leader is elected)");
	teardown(&f);
}

static void test_control_rpc_node_update_applies_every_change(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__Label zone = CS__LABEL__INIT, disk = CS__LABEL__INIT;
	Cs__Label *add[] = {&zone, &disk};
	char *rm[] = {"zone"};
	struct answer a;

	boot(&f);
	zone.key = "zone";
	zone.value = "a";
	disk.key = "disk";
	disk.value = "ssd";
	req.id = 1;
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE;
	req.name = "m3";
	req.set_availability = true;
	req.availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
	req.n_label_add = 2;
	req.label_add = add;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);

	cs__control_request__init(&req);
	req.id = 2;
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT;
	req.name = "m3";
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.availability, CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN);
	assert_string_equal(a.labels, "zone=a,disk=ssd,");

	cs__control_request__init(&req);
	req.id = 3;
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE;
	req.name = "m3";
	req.n_label_rm = 1;
	req.label_rm = rm;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT;
	req.n_label_rm = 0;
	call(&f, f.leader, &req, &a);
	assert_string_equal(a.labels, "disk=ssd,");

	req.name = "nosuchnode";
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	assert_string_equal(a.error, "no node 'nosuchnode'");
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_rpc_create_on_follower_list_on_leader),
		cmocka_unit_test(test_control_rpc_bad_spec_names_the_field),
		cmocka_unit_test(test_control_rpc_unknown_service_is_enoent),
		cmocka_unit_test(test_control_rpc_partitioned_follower_answers_once),
		cmocka_unit_test(test_control_rpc_node_update_applies_every_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
