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
#include <stdlib.h>
#include <string.h>

#include "core/control_rpc.h"
#include "core/errors.h"
#include "core/limits.h"
#include "core/node.h"
#include "core/manager.h"
#include "core/store.h"
#include "core/svccount.h"
#include "sim/cluster.h"
#include "sim/world.h"

#define SEC 1000000ull
/* an image name that makes a request bigger than one frame */
#define LIMIT_BIG (LIMIT_FRAME_BYTES_MAX + 1024u)

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
	uint64_t service_version;
	size_t n_tasks;
	uint64_t first_task_id;
	uint64_t first_task_service_id;
	size_t n_nodes;
	uint64_t first_node_id;
	char first_hostname[64];
	Cs__NodeRole desired_role;
	bool has_cluster;
	char worker_token[128];
	char manager_token[128];
	size_t cluster_net_keys;	/* issue 17: keys shown (must be 0) */
	uint32_t cluster_net_key_clock; /* the key manager's clock shown */
	/* EVENTS (issue 20) */
	size_t n_events;
	char events[256]; /* "kind action name index," in order */
	uint64_t events_next_index;
	/* SERVICE_LIST with status (issue 18) */
	size_t n_counts;
	uint64_t counts_running, counts_desired, counts_service_id, nodes_down;
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
	if (resp->n_services) {
		snprintf(a->first_name, sizeof a->first_name, "%s",
			 resp->services[0]->spec->name);
		a->service_version = resp->services[0]->version;
	}
	a->n_tasks = resp->n_tasks;
	if (resp->n_tasks) {
		a->first_task_id = resp->tasks[0]->id;
		a->first_task_service_id = resp->tasks[0]->service_id;
	}
	a->n_nodes = resp->n_nodes;
	a->n_counts = resp->n_counts;
	a->nodes_down = resp->nodes_down;
	if (resp->n_counts) {
		a->counts_running = resp->counts[0]->running;
		a->counts_desired = resp->counts[0]->desired;
		a->counts_service_id = resp->counts[0]->service_id;
	}
	a->n_events = resp->n_events;
	a->events_next_index = resp->events_next_index;
	a->events[0] = 0;
	for (size_t i = 0; i < resp->n_events; i++) {
		size_t used = strlen(a->events);
		snprintf(a->events + used, sizeof a->events - used, "%s %s %s,",
			 resp->events[i]->kind, resp->events[i]->action,
			 resp->events[i]->name);
	}
	a->has_cluster = resp->cluster != NULL;
	if (resp->cluster) {
		snprintf(a->worker_token, sizeof a->worker_token, "%s",
			 resp->cluster->worker_token);
		snprintf(a->manager_token, sizeof a->manager_token, "%s",
			 resp->cluster->manager_token);
		a->cluster_net_keys = resp->cluster->n_network_keys;
		a->cluster_net_key_clock = resp->cluster->network_key_clock;
	}
	if (resp->n_nodes) {
		const Cs__Node *n = resp->nodes[0];
		a->first_node_id = n->id;
		snprintf(a->first_hostname, sizeof a->first_hostname, "%s", n->hostname);
		a->desired_role = n->desired_role;
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

/* Makes *req a new request: id, op, and the object it names (borrowed;
 * NULL: none), every other field unset. */
static void request(Cs__ControlRequest *req, uint64_t id, Cs__ControlOp op,
		    const char *name)
{
	cs__control_request__init(req);
	req->id = id;
	req->op = op;
	req->name = (char *)name;
}

/* Makes *req request id: drain m3 and add the two labels of add
 * (borrowed). */
static void drain_and_label_m3(Cs__ControlRequest *req, uint64_t id, Cs__Label **add)
{
	request(req, id, CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE, "m3");
	req->set_availability = true;
	req->availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
	req->n_label_add = 2;
	req->label_add = add;
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
	request(&req, 7, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
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

	request(&req, 10, CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST, NULL);
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

/* Issue 18: SERVICE_LIST with status answers each service's running/desired
 * (Docker's REPLICAS, kept by the store) and the DOWN nodes, on the leader
 * and through a follower; without status, none. A node's death takes its
 * tasks out of running once it is DOWN, until they run elsewhere. */
static void test_control_rpc_service_list_status_counts(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	struct answer a;
	uint32_t third;
	us_t until;
	(void)state;

	boot(&f);
	third = 3 - f.leader - f.follower;
	web_spec(&spec, &task, &c, "web");
	spec.replicas = 6;
	req.id = 1;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	until = world_now_us(f.w) + 30 * SEC;
	while (world_step(f.w, until))
		;
	cs__control_request__init(&req);
	req.id = 2;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.n_services, 1);
	assert_int_equal(a.n_counts, 0); /* not asked */
	req.id = 3;
	req.status = true;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.n_counts, 1);
	assert_int_equal(a.counts_running, 6);
	assert_int_equal(a.counts_desired, 6);
	assert_int_equal(a.nodes_down, 0);

	/* the third manager's machine dies: DOWN after 3 heartbeats, its
	 * tasks (each node has two, spread) out of running until replaced */
	assert_int_equal(world_node_kill(f.w, third, true, false), 0);
	while (store_svccount(manager_store(simcluster_manager(f.c, f.leader)))
		       ->nodes_down == 0)
		assert_true(world_step(f.w, UINT64_MAX));
	req.id = 4;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.nodes_down, 1);
	assert_int_equal(a.counts_desired, 6);
	assert_int_equal(a.counts_running, 4); /* the dead node's two out */
	until = world_now_us(f.w) + 30 * SEC;
	while (world_step(f.w, until))
		;
	req.id = 5;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.counts_running, 6);
	assert_int_equal(a.nodes_down, 1);
	teardown(&f);
}

/* Issue 20: EVENTS is this manager's own stream, never forwarded: a
 * follower alone, with no leader and no quorum, still answers with what it
 * applied, filtered; a bad filter is CS_EINVAL naming the key. */
static void test_control_rpc_events_on_a_follower_without_leader(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	char *filters[] = {"type=service", "name=web"}, *bad[] = {"colour=red"};
	struct answer a;
	uint32_t third;
	(void)state;

	boot(&f);
	third = (f.follower + 1) % 3;
	web_spec(&spec, &task, &c, "web");
	request(&req, 7, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
	req.spec = &spec;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	web_spec(&spec, &task, &c, "api");
	req.id = 8;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	for (us_t end = world_now_us(f.w) + 2 * SEC; world_step(f.w, end);)
		;
	assert_int_equal(world_node_kill(f.w, f.leader, true, false), 0);
	assert_int_equal(world_node_kill(f.w, third, true, false), 0);
	for (us_t end = world_now_us(f.w) + 5 * SEC; world_step(f.w, end);)
		;
	assert_true(simcluster_leader(f.c) < 0);
	request(&req, 9, CS__CONTROL_OP__CONTROL_OP_EVENTS, NULL);
	req.events_from_index = 1;
	req.events_filter = filters;
	req.n_events_filter = 2;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_string_equal(a.events, "service create web,");
	assert_true(a.events_next_index > 1);
	/* from now: nothing, and a cursor after what it has */
	req.id = 10;
	req.events_from_index = 0;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.n_events, 0);
	assert_true(a.events_next_index > 1);
	req.id = 11;
	req.events_filter = bad;
	req.n_events_filter = 1;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_non_null(strstr(a.error, "unknown key"));
	teardown(&f);
}

/* Issue 14 through the wire (a follower forwards): services, tasks and
 * nodes named by an id prefix wherever a name or id is; task list filters
 * by node, desired state and service label. */
static void test_control_rpc_prefixes_and_task_filters(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Label tier = CS__LABEL__INIT, *labels[1] = {&tier};
	Cs__TaskState running = CS__TASK_STATE__TASK_STATE_RUNNING;
	char *nodes[1], *lab[1] = {"tier=back"};
	struct answer a;
	char hex[17], node_hex[17];
	uint64_t web_id, m2_id;

	boot(&f);
	web_spec(&spec, &task, &c, "web");
	tier.key = "tier";
	tier.value = "back";
	spec.n_labels = 1;
	spec.labels = labels;
	request(&req, 1, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
	req.spec = &spec;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	web_id = a.created_id;
	web_spec(&spec, &task, &c, "api");
	req.id = 2;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);

	/* inspect, update and task list by a prefix of the service's id */
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)web_id);
	hex[10] = '\0';
	request(&req, 3, CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT, hex);
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_string_equal(a.first_name, "web");
	web_spec(&spec, &task, &c, "web");
	spec.replicas = 3;
	spec.n_labels = 1;
	spec.labels = labels;
	req.id = 4;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE;
	req.spec = &spec;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	cs__control_request__init(&req);
	req.op = CS__CONTROL_OP__CONTROL_OP_TASK_LIST;
	req.service = hex;
	for (int i = 0; i < 1000 && a.total < 3; i++) {
		req.id = 5;
		call(&f, f.leader, &req, &a);
		assert_int_equal(a.status, 0);
		world_step(f.w, UINT64_MAX);
	}
	assert_int_equal(a.total, 3);
	assert_int_equal(a.first_task_service_id, web_id);

	/* a task by a prefix of its id (task_id 0, name set) */
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)a.first_task_id);
	hex[13] = '\0';
	request(&req, 6, CS__CONTROL_OP__CONTROL_OP_TASK_INSPECT, hex);
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.n_tasks, 1);
	assert_int_equal(a.first_task_service_id, web_id);

	/* filters: the label picks web's 3 tasks of the 5, desired running all
	 * of them, a node its own share */
	request(&req, 7, CS__CONTROL_OP__CONTROL_OP_TASK_LIST, NULL);
	req.n_filter_labels = 1;
	req.filter_labels = lab;
	req.n_filter_desired_states = 1;
	req.filter_desired_states = &running;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.total, 3);
	req.n_filter_labels = 0;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.total, 5);
	request(&req, 8, CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT, "m2");
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	snprintf(node_hex, sizeof node_hex, "%016llx",
		 (unsigned long long)a.first_node_id);
	node_hex[8] = '\0';
	m2_id = a.first_node_id;
	nodes[0] = node_hex;
	request(&req, 9, CS__CONTROL_OP__CONTROL_OP_TASK_LIST, NULL);
	req.n_filter_nodes = 1;
	req.filter_nodes = nodes;
	call(&f, f.follower, &req, &a);
	/* here node ids are 1, 2, 3: their first digits are all zeros */
	assert_int_equal(a.status, CS_EINVAL);
	assert_non_null(strstr(a.error,
			       "node '00000000' is ambiguous (3 matches found): "
			       "0000000000000001 (m1), 0000000000000002 (m2), "));
	snprintf(node_hex, sizeof node_hex, "%016llx", (unsigned long long)m2_id);
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	{
		const struct store *st = manager_store(simcluster_manager(f.c, f.leader));
		uint64_t want = 0;
		for (const Cs__Task *t = store_task_next(st, NULL); t;
		     t = store_task_next(st, t))
			want += t->node_id == m2_id;
		assert_int_equal(a.total, want);
		assert_true(want < 5);
	}
	nodes[0] = "m9";
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	assert_string_equal(a.error, "no node 'm9'");

	/* removal by prefix */
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)web_id);
	hex[6] = '\0';
	request(&req, 10, CS__CONTROL_OP__CONTROL_OP_SERVICE_REMOVE, hex);
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	req.id = 11;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT;
	req.name = "web";
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
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
	request(&req, 1, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
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
	request(&req, 5, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL);
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
	drain_and_label_m3(&req, 1, add);
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);

	request(&req, 2, CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT, "m3");
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.availability, CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN);
	assert_string_equal(a.labels, "zone=a,disk=ssd,");

	request(&req, 3, CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE, "m3");
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

/* A node update refused for a bad label key changes nothing, not even the
 * availability it asked for before the label (the update is written in
 * steps: the keys are checked before the first). Found by
 * tests/fuzz/fuzz_control: the availability was written, then the label
 * refused, and the caller told "refused". */
static void test_control_rpc_node_update_refused_changes_nothing(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__Label zone = CS__LABEL__INIT, bad = CS__LABEL__INIT;
	Cs__Label *add[] = {&zone, &bad};
	char *rm[] = {""};
	struct answer a;

	boot(&f);
	zone.key = "zone";
	zone.value = "a";
	bad.key = "";
	bad.value = "x";
	drain_and_label_m3(&req, 1, add);
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "label: bad key ''");
	req.n_label_add = 1;
	req.n_label_rm = 1;
	req.label_rm = rm;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);

	request(&req, 2, CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT, "m3");
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.availability, CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE);
	assert_string_equal(a.labels, "");
	teardown(&f);
}

/* Runs the same sequence of every op on `node` (the leader, or a follower
 * that forwards); `svc` names the service it makes and removes. */
static void every_op_on(struct fixture *f, uint32_t node, const char *svc)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__Label bad = CS__LABEL__INIT;
	Cs__Label *add[] = {&bad};
	const char *other = strcmp(world_node_name(f->w, node), "m1") ? "m1" : "m2";
	struct answer a;
	char want[256], hex[17], token[128];
	uint64_t version, service_id, task_id = 0, node_id;

	/* a create or update without a spec */
	request(&req, 100, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "spec: missing");
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "spec: missing");

	web_spec(&spec, &task, &c, svc);
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	service_id = a.created_id;

	request(&req, 101, CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT, (char *)svc);
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.total, 1);
	assert_string_equal(a.first_name, svc);
	version = a.service_version;

	/* update: a wrong version, then the right one (name from the spec) */
	request(&req, 102, CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE, NULL);
	spec.replicas = 3;
	req.spec = &spec;
	req.version = version + 1;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EVERSION);
	snprintf(want, sizeof want, "service '%s' is at version %llu, not %llu", svc,
		 (unsigned long long)version, (unsigned long long)(version + 1));
	assert_string_equal(a.error, want);
	req.version = version;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	/* and by name, with any version */
	req.name = (char *)svc;
	req.version = 0;
	spec.replicas = 2;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	request(&req, 103, CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT, (char *)svc);
	call(f, node, &req, &a);
	assert_true(a.service_version > version);

	/* tasks: of this service, then of every service */
	request(&req, 104, CS__CONTROL_OP__CONTROL_OP_TASK_LIST, NULL);
	req.service = (char *)svc;
	for (int i = 0; i < 100; i++) {
		call(f, node, &req, &a);
		assert_int_equal(a.status, 0);
		if (a.total >= 2)
			break;
		world_step(f->w, world_now_us(f->w) + SEC);
	}
	assert_true(a.total >= 2);
	assert_int_equal(a.n_tasks, a.total);
	assert_int_equal(a.first_task_service_id, service_id);
	task_id = a.first_task_id;
	req.service = NULL;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_true(a.total >= 2);

	request(&req, 105, CS__CONTROL_OP__CONTROL_OP_TASK_INSPECT, NULL);
	req.task_id = task_id;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.n_tasks, 1);
	assert_int_equal(a.first_task_id, task_id);
	req.task_id = 42;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	assert_string_equal(a.error, "no task 000000000000002a");

	/* nodes: by hostname, then by hex id */
	request(&req, 106, CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT, (char *)other);
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_string_equal(a.first_hostname, other);
	node_id = a.first_node_id;
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)node_id);
	req.name = hex;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.first_node_id, node_id);
	assert_string_equal(a.first_hostname, other);
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.total, 3);
	assert_int_equal(a.n_nodes, 3);

	/* set-role: which node, what role; the role it has is no change */
	request(&req, 107, CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE, NULL);
	req.role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "name: say which node (its id or hostname)");
	req.name = hex;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	req.role = (Cs__NodeRole)7;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "role: unknown (expected manager or worker)");

	/* a manager is not removed */
	request(&req, 108, CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE, (char *)other);
	req.force = true;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	snprintf(want, sizeof want,
		 "node %s is a cluster manager and is a member of the raft cluster. "
		 "It must be demoted to worker before removal",
		 other);
	assert_string_equal(a.error, want);

	/* a node update with nothing to change; one whose second change is
	 * bad changes nothing (not the first either) and names the second, as
	 * SwarmKit's UpdateNode, which validates the whole spec first */
	request(&req, 109, CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE, (char *)other);
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	bad.key = "";
	bad.value = "x";
	req.set_availability = true;
	req.availability = CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
	req.n_label_add = 1;
	req.label_add = add;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "label: bad key ''");
	req.set_availability = false;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "label: bad key ''");
	request(&req, 110, CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT, (char *)other);
	call(f, node, &req, &a);
	assert_int_equal(a.availability, CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE);
	assert_string_equal(a.labels, "");

	/* the cluster: inspect, rotate the worker token, inspect again */
	request(&req, 111, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT, NULL);
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_true(a.has_cluster);
	snprintf(token, sizeof token, "%s", a.worker_token);
	assert_true(strlen(token) > 0);
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_ROTATE_TOKEN;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "rotate-token: say which (worker, manager or both)");
	req.rotate_worker = true;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_string_not_equal(a.worker_token, token);
	assert_true(strlen(a.manager_token) > 0);

	/* issue 17: the network keys, rotated now (a first set), are in the
	 * store but never in inspect's answer; a period under a minute is
	 * refused */
	request(&req, 113, CS__CONTROL_OP__CONTROL_OP_CLUSTER_UPDATE, NULL);
	req.rotate_network_keys = true;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	request(&req, 114, CS__CONTROL_OP__CONTROL_OP_CLUSTER_UPDATE, NULL);
	req.set_network_key_rotation = true;
	req.network_key_rotation_ms = 59000;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "network-key-rotation: 59000 ms is under the "
				     "minimum of 60000 ms");
	req.network_key_rotation_ms = 3600000;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	request(&req, 115, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT, NULL);
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	assert_true(a.cluster_net_key_clock >= 3); /* 4 on the second pass */
	assert_int_equal(a.cluster_net_keys, 0);

	/* an operation nobody knows */
	cs__control_request__init(&req);
	req.id = 112;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "op: unknown operation 0");

	/* the service goes */
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_REMOVE;
	req.name = (char *)svc;
	call(f, node, &req, &a);
	assert_int_equal(a.status, 0);
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT;
	call(f, node, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
}

static void test_control_rpc_every_op_on_leader_and_follower(void **state)
{
	struct fixture f;

	boot(&f);
	every_op_on(&f, f.leader, "on-leader");
	every_op_on(&f, f.follower, "on-follower");
	teardown(&f);
}

static void test_control_rpc_too_many_calls_is_eagain(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	struct answer *as, extra = {0};
	uint32_t nodes[2];

	as = calloc(CONTROL_RPC_PENDING_MAX, sizeof *as);
	assert_non_null(as);
	boot(&f);
	nodes[0] = f.leader;
	nodes[1] = f.follower;
	for (int k = 0; k < 2; k++) {
		struct control_rpc *r = rpc_of(&f, nodes[k]);
		bool all;

		memset(as, 0, CONTROL_RPC_PENDING_MAX * sizeof *as);
		req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
		for (uint32_t i = 0; i < CONTROL_RPC_PENDING_MAX; i++) {
			req.id = i + 1;
			assert_int_equal(control_rpc_call(r, &req, answered, &as[i]), 0);
		}
		req.id = 9999;
		memset(&extra, 0, sizeof extra);
		assert_int_equal(control_rpc_call(r, &req, answered, &extra), CS_EAGAIN);
		do {
			all = true;
			for (uint32_t i = 0; all && i < CONTROL_RPC_PENDING_MAX; i++)
				all = as[i].calls > 0;
		} while (!all && world_step(f.w, UINT64_MAX));
		for (uint32_t i = 0; i < CONTROL_RPC_PENDING_MAX; i++) {
			assert_int_equal(as[i].calls, 1);
			assert_int_equal(as[i].id, i + 1);
			assert_int_equal(as[i].status, 0);
			assert_int_equal(as[i].total, 3);
		}
		assert_int_equal(extra.calls, 0);
		/* room again */
		req.id = 10000;
		call(&f, nodes[k], &req, &extra);
		assert_int_equal(extra.status, 0);
	}
	free(as);
	teardown(&f);
}

static void test_control_rpc_request_over_the_frame_limit(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	struct answer a;
	char *big = malloc(LIMIT_BIG);

	assert_non_null(big);
	memset(big, 'x', LIMIT_BIG - 1);
	big[LIMIT_BIG - 1] = 0;
	boot(&f);
	web_spec(&spec, &task, &c, "web");
	c.image = big;
	request(&req, 1, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
	req.spec = &spec;
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ELIMIT);
	assert_memory_equal(a.error, "request of ", 11);
	assert_non_null(strstr(a.error, "bytes is over the frame limit"));
	free(big);
	teardown(&f);
}

/* What node's manager certificate proves: a member manager of the
 * fixture's cluster. */
static struct env_identity member_who(struct fixture *f, uint32_t node)
{
	struct manager *m = simcluster_manager(f->c, node);
	struct env_identity who = {0};
	who.node_id = manager_raft_id(m);
	who.cluster_id = manager_cluster_id(m);
	who.role = ENV_ROLE_MANAGER;
	return who;
}

static void test_control_rpc_odd_wires(void **state)
{
	struct fixture f;
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	struct env_identity leader, stranger = {0}, worker = {0};
	struct env *lenv;
	uint64_t events;

	boot(&f);
	lenv = world_node_env(f.w, f.leader);
	assert_non_null(lenv);
	leader = member_who(&f, f.leader);
	worker.node_id = 0x99;
	worker.cluster_id = leader.cluster_id;
	worker.role = ENV_ROLE_WORKER;

	/* neither a request nor a response */
	assert_false(control_rpc_handle(rpc_of(&f, f.leader), "m9", &leader, &wire));

	/* an answer nobody waits for (late or duplicate): dropped */
	resp.id = 12345;
	wire.control_response = &resp;
	assert_true(control_rpc_handle(rpc_of(&f, f.follower), "m1", &leader, &wire));

	/* a request from a stranger, or a worker's certificate, whatever
	 * reply_to it names: refused, nothing sent (issue 13: a control
	 * request over TCP ran the attacker's service and dialled reply_to) */
	wire.control_response = NULL;
	request(&req, 1, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL);
	req.reply_to = "attacker:1";
	wire.control_request = &req;
	events = world_pending(f.w);
	assert_true(control_rpc_handle(rpc_of(&f, f.leader), "m9", &stranger, &wire));
	assert_true(control_rpc_handle(rpc_of(&f, f.leader), "m9", &worker, &wire));
	assert_int_equal(world_pending(f.w), events);

	/* a request forwarded to a follower by a member: it answers that it
	 * does not lead, at the member's address in the configuration (to
	 * the leader, which drops the unknown answer), not at reply_to */
	assert_true(control_rpc_handle(rpc_of(&f, f.follower), "m9", &leader, &wire));
	assert_true(world_pending(f.w) > events);
	world_step(f.w, world_now_us(f.w) + SEC);
	teardown(&f);
}

static void test_control_rpc_close_drops_calls_in_flight(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	struct answer a[3];

	memset(a, 0, sizeof a);
	boot(&f);
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
	for (int i = 0; i < 3; i++) {
		req.id = (uint64_t)i + 1;
		assert_int_equal(control_rpc_call(rpc_of(&f, i ? f.follower : f.leader),
						  &req, answered, &a[i]),
				 0);
	}
	/* the nodes die with the world: no callback runs */
	teardown(&f);
	for (int i = 0; i < 3; i++)
		assert_int_equal(a[i].calls, 0);
}

/* A write on a leader cut off from the other managers before it commits:
 * the answer says why, in one line. */
static void test_control_rpc_write_without_quorum(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	uint32_t groups[3] = {1, 1, 1};
	struct answer a;

	memset(&a, 0, sizeof a);
	boot(&f);
	web_spec(&spec, &task, &c, "web");
	request(&req, 4, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
	req.spec = &spec;
	assert_int_equal(control_rpc_call(rpc_of(&f, f.leader), &req, answered, &a), 0);
	groups[f.leader] = 2;
	assert_int_equal(world_net_partition(f.w, groups, 3, 0), 0);
	while (a.calls == 0 && world_step(f.w, UINT64_MAX))
		;
	assert_int_equal(a.calls, 1);
	if (a.status == CS_ENOQUORUM)
		assert_string_equal(a.error,
				    "not committed in time: the managers have no quorum");
	else if (a.status == CS_ENOTLEADER)
		assert_string_equal(
			a.error,
			"leadership changed before the write committed: try again");
	else
		fail_msg("status %d (%s)", a.status, a.error);
	teardown(&f);
}

static void test_control_rpc_node_errors(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	struct answer a;

	boot(&f);
	request(&req, 2, CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE, NULL);
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_EINVAL);
	assert_string_equal(a.error, "name: say which node (its id or hostname)");
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT;
	req.name = "w7";
	call(&f, f.follower, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	assert_string_equal(a.error, "no node 'w7'");
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE;
	call(&f, f.leader, &req, &a);
	assert_int_equal(a.status, CS_ENOENT);
	assert_string_equal(a.error, "no node 'w7'");
	teardown(&f);
}

/* A leader with no room for one more call answers a follower's forward
 * with CS_EAGAIN (sent, not run) and still answers its own calls. */
static void test_control_rpc_full_leader_refuses_a_forward(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__Wire wire = CS__WIRE__INIT;
	struct answer *as;
	struct env *fenv;
	size_t before;
	bool all;

	as = calloc(CONTROL_RPC_PENDING_MAX, sizeof *as);
	assert_non_null(as);
	boot(&f);
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
	for (uint32_t i = 0; i < CONTROL_RPC_PENDING_MAX; i++) {
		req.id = i + 1;
		assert_int_equal(
			control_rpc_call(rpc_of(&f, f.leader), &req, answered, &as[i]),
			0);
	}
	fenv = world_node_env(f.w, f.follower);
	req.id = 77;
	req.reply_to = (char *)fenv->ops->self_addr(fenv);
	wire.control_request = &req;
	before = world_pending(f.w);
	{
		struct env_identity who = member_who(&f, f.follower);
		assert_true(control_rpc_handle(rpc_of(&f, f.leader), "m9", &who, &wire));
	}
	assert_int_equal(world_pending(f.w), before + 1); /* the answer, only */
	do {
		all = true;
		for (uint32_t i = 0; all && i < CONTROL_RPC_PENDING_MAX; i++)
			all = as[i].calls > 0;
	} while (!all && world_step(f.w, UINT64_MAX));
	for (uint32_t i = 0; i < CONTROL_RPC_PENDING_MAX; i++)
		assert_int_equal(as[i].calls, 1);
	free(as);
	teardown(&f);
}

/* A write through the control RPC still uncommitted when the node dies:
 * manager_close reports CS_ECLOSED to the write's callback (rpc_written),
 * which must find its call alive and answer nobody (it was a
 * heap-use-after-free under ASan before node_stop told the RPC first). */
static void test_control_rpc_close_with_a_write_in_flight(void **state)
{
	struct fixture f;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	struct answer a;

	memset(&a, 0, sizeof a);
	boot(&f);
	web_spec(&spec, &task, &c, "web");
	request(&req, 1, CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE, NULL);
	req.spec = &spec;
	assert_int_equal(control_rpc_call(rpc_of(&f, f.leader), &req, answered, &a), 0);
	teardown(&f);
	assert_int_equal(a.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_rpc_create_on_follower_list_on_leader),
		cmocka_unit_test(test_control_rpc_service_list_status_counts),
		cmocka_unit_test(test_control_rpc_bad_spec_names_the_field),
		cmocka_unit_test(test_control_rpc_unknown_service_is_enoent),
		cmocka_unit_test(test_control_rpc_partitioned_follower_answers_once),
		cmocka_unit_test(test_control_rpc_node_update_applies_every_change),
		cmocka_unit_test(test_control_rpc_node_update_refused_changes_nothing),
		cmocka_unit_test(test_control_rpc_every_op_on_leader_and_follower),
		cmocka_unit_test(test_control_rpc_too_many_calls_is_eagain),
		cmocka_unit_test(test_control_rpc_request_over_the_frame_limit),
		cmocka_unit_test(test_control_rpc_odd_wires),
		cmocka_unit_test(test_control_rpc_close_drops_calls_in_flight),
		cmocka_unit_test(test_control_rpc_write_without_quorum),
		cmocka_unit_test(test_control_rpc_node_errors),
		cmocka_unit_test(test_control_rpc_full_leader_refuses_a_forward),
		cmocka_unit_test(test_control_rpc_close_with_a_write_in_flight),
		cmocka_unit_test(test_control_rpc_events_on_a_follower_without_leader),
		cmocka_unit_test(test_control_rpc_prefixes_and_task_filters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
