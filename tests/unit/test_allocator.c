/* Tests of the allocator (core/allocator.c): the bitmap IPAM (exhaustion,
 * release, lowest first), addresses and VIPs through a store (exhaustion
 * with a readable reason, release once a task is known stopped, a rebuild
 * after a leader change equal bit for bit to the state kept by events,
 * the same across a store snapshot), ingress ports (conflicts refused,
 * drawn from 30000), network preparation from the pool, and the
 * invariants the simulator checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/allocator.h"
#include "core/errors.h"
#include "core/limits.h"
#include "core/store.h"

/* ---------------------------------------------------------------- the IPAM */

static void test_ipam_exhaust_release(void **state)
{
	struct alloc_ipam ip;
	uint32_t base = 0x0a000300u, a;
	(void)state;

	/* a /29: 8 addresses; network, gateway (.1) and broadcast reserved */
	assert_int_equal(alloc_ipam_init(&ip, base, 29, 0), 0);
	assert_int_equal(ip.used, 3);
	for (uint32_t want = 2; want <= 6; want++) {
		assert_int_equal(alloc_ipam_take(&ip, &a), 0);
		assert_int_equal(a, base + want); /* lowest first */
	}
	assert_int_equal(alloc_ipam_take(&ip, &a), CS_ELIMIT);
	assert_int_equal(ip.used, 8);
	/* release .4: the next take gets it back, and nothing else */
	assert_true(alloc_ipam_release(&ip, base + 4));
	assert_false(alloc_ipam_release(&ip, base + 4));
	assert_false(alloc_ipam_release(&ip, base + 0)); /* reserved */
	assert_int_equal(alloc_ipam_take(&ip, &a), 0);
	assert_int_equal(a, base + 4);
	assert_int_equal(alloc_ipam_take(&ip, &a), CS_ELIMIT);
	assert_int_equal(alloc_ipam_mark(&ip, base + 5), CS_EEXIST);
	assert_int_equal(alloc_ipam_mark(&ip, base + 9), CS_EINVAL);
	alloc_ipam_free(&ip);
}

static void test_ipam_bounds(void **state)
{
	struct alloc_ipam ip;
	uint32_t a, n = 0;
	(void)state;

	assert_int_equal(alloc_ipam_init(&ip, 0x0a000000u, 15, 0), CS_EINVAL);
	assert_int_equal(alloc_ipam_init(&ip, 0x0a000000u, 31, 0), CS_EINVAL);
	assert_int_equal(alloc_ipam_init(&ip, 0x0a000001u, 24, 0), CS_EINVAL);
	/* a /16 with a gateway given: 65536 - 3 addresses, across words */
	assert_int_equal(alloc_ipam_init(&ip, 0x0a010000u, 16, 0x0a0100feu), 0);
	while (alloc_ipam_take(&ip, &a) == 0) {
		assert_int_not_equal(a, 0x0a0100feu);
		n++;
	}
	assert_int_equal(n, 65536 - 3);
	assert_int_equal(ip.hint_word, 65536 / 64);
	alloc_ipam_free(&ip);
}

static void test_cidr_text(void **state)
{
	uint32_t a;
	unsigned len;
	char buf[20];
	(void)state;

	assert_int_equal(alloc_parse_cidr("10.0.3.0/24", &a, &len), 0);
	assert_int_equal(a, 0x0a000300u);
	assert_int_equal(len, 24);
	assert_int_equal(alloc_parse_cidr("10.0.3.0/33", &a, &len), CS_EINVAL);
	assert_int_equal(alloc_parse_cidr("10.0.300.0/24", &a, &len), CS_EINVAL);
	assert_int_equal(alloc_parse_cidr("10.0.3.0/24x", &a, &len), CS_EINVAL);
	assert_int_equal(alloc_parse_cidr("10.0.3.1", &a, NULL), 0);
	alloc_format_cidr(buf, sizeof buf, 0x0a000305u, 24);
	assert_string_equal(buf, "10.0.3.5/24");
}

/* ---------------------------------------------------------------- a store */

static uint64_t next_index = 1;

struct fix {
	struct store *st;
	struct alloc_state a; /* kept by events, as the leader keeps it */
	Cs__ServiceSpec spec;
	Cs__NetworkAttachmentConfig att;
	Cs__NetworkAttachmentConfig *atts[1];
	Cs__EndpointSpec ep;
	Cs__PortConfig port;
	Cs__PortConfig *ports[1];
};

static void fix_watch(void *data, const struct store_event *ev)
{
	alloc_state_on_event(data, ev);
}

static void apply(struct store *s, struct store_batch *b)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_batch_encode(b, 0, 0, &buf, &len), 0);
	assert_int_equal(store_apply(s, buf, len, next_index++, NULL, NULL), 0);
	free(buf);
	store_batch_free(b);
	store_batch_init(b);
}

static void add_network(struct fix *f, uint64_t id, const char *name, const char *subnet,
			bool ingress)
{
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	Cs__Network net = CS__NETWORK__INIT;
	struct store_batch b;
	char bufs[2][20], why[160];

	spec.name = (char *)name;
	spec.subnet = (char *)subnet;
	spec.ingress = ingress;
	net.id = id;
	assert_int_equal(alloc_network_prepare(f->st, &spec, &net, bufs, why, sizeof why),
			 0);
	store_batch_init(&b);
	assert_int_equal(
		store_batch_network(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &net), 0);
	apply(f->st, &b);
}

static void fix_init(struct fix *f)
{
	memset(f, 0, sizeof *f);
	f->st = store_new();
	assert_non_null(f->st);
	alloc_state_init(&f->a);
	assert_true(store_watch(f->st, fix_watch, &f->a) > 0);
	add_network(f, 0x100, "ingress", "10.0.0.0/24", true);
	add_network(f, 0x200, "small", "10.0.3.0/29", false);
	cs__service_spec__init(&f->spec);
	cs__network_attachment_config__init(&f->att);
	cs__endpoint_spec__init(&f->ep);
	cs__port_config__init(&f->port);
	f->att.target = "small";
	f->atts[0] = &f->att;
	f->spec.name = "web";
	f->spec.replicas = 1;
	f->spec.n_networks = 1;
	f->spec.networks = f->atts;
	f->ports[0] = &f->port;
	f->ep.ports = f->ports;
}

static void fix_free(struct fix *f)
{
	alloc_state_free(&f->a);
	store_free(f->st);
}

static void add_service(struct fix *f, uint64_t id)
{
	Cs__Service svc = CS__SERVICE__INIT;
	struct store_batch b;
	svc.id = id;
	svc.spec = &f->spec;
	svc.spec_version = 1;
	store_batch_init(&b);
	assert_int_equal(
		store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc), 0);
	apply(f->st, &b);
}

static void add_task(struct fix *f, uint64_t id, uint64_t svc_id)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	struct store_batch b;
	t.id = id;
	t.service_id = svc_id;
	t.slot = id;
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t.spec_version = 1;
	st.state = CS__TASK_STATE__TASK_STATE_PENDING;
	t.status = &st;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	apply(f->st, &b);
}

/* Allocates service id in f's state and commits it. */
static void commit_service(struct fix *f, uint64_t id)
{
	struct alloc_mem mem = {0};
	struct store_batch b;
	Cs__Service out;
	char why[160];
	assert_int_equal(alloc_service(&f->a, f->st, store_service_get(f->st, id), &out,
				       &mem, why, sizeof why),
			 0);
	store_batch_init(&b);
	assert_int_equal(
		store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &out), 0);
	alloc_mem_free(&mem);
	apply(f->st, &b);
	assert_true(alloc_service_ready(store_service_get(f->st, id)));
}

/* Allocates task id: 0 and commits it, or the error with why. */
static int commit_task(struct fix *f, uint64_t id, char *why, size_t why_size)
{
	const Cs__Task *t = store_task_get(f->st, id);
	struct alloc_mem mem = {0};
	struct store_batch b;
	Cs__Task out;
	int rv = alloc_task(&f->a, f->st, store_service_get(f->st, t->service_id), t,
			    &out, &mem, why, why_size);
	if (rv == 0) {
		store_batch_init(&b);
		assert_int_equal(
			store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &out),
			0);
		apply(f->st, &b);
	}
	alloc_mem_free(&mem);
	return rv;
}

static void set_state(struct fix *f, uint64_t id, Cs__TaskState state)
{
	Cs__Task t = *store_task_get(f->st, id);
	Cs__TaskStatus st = *t.status;
	struct store_batch b;
	st.state = state;
	t.status = &st;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t),
			 0);
	apply(f->st, &b);
}

/* The state a new leader would build now equals the one kept by events. */
static void assert_rebuild_equal(struct fix *f)
{
	struct alloc_state r;
	alloc_state_init(&r);
	assert_int_equal(alloc_state_rebuild(&r, f->st), 0);
	assert_true(alloc_state_equal(&r, &f->a));
	alloc_state_free(&r);
}

/* ---------------------------------------------------------------- addresses */

static void test_subnet_exhausted_then_freed(void **state)
{
	struct fix f;
	char why[160];
	(void)state;

	fix_init(&f);
	assert_int_equal(alloc_state_rebuild(&f.a, f.st), 0);
	add_service(&f, 0x10);
	assert_false(alloc_task_ready(store_service_get(f.st, 0x10),
				      &(Cs__Task)CS__TASK__INIT));
	commit_service(&f, 0x10); /* its VIP: 10.0.3.2 */
	assert_string_equal(store_service_get(f.st, 0x10)->vips[0]->addr, "10.0.3.2/29");
	for (uint64_t id = 1; id <= 5; id++)
		add_task(&f, id, 0x10);
	/* 5 usable addresses, one the VIP's: 4 tasks fit, the 5th waits */
	for (uint64_t id = 1; id <= 4; id++)
		assert_int_equal(commit_task(&f, id, why, sizeof why), 0);
	assert_string_equal(store_task_get(f.st, 1)->networks[0]->addr, "10.0.3.3/29");
	assert_true(store_task_get(f.st, 4)->alloc_done);
	assert_int_equal(commit_task(&f, 5, why, sizeof why), CS_ELIMIT);
	assert_string_equal(why, "no free address in 10.0.3.0/29");
	assert_false(store_task_get(f.st, 5)->alloc_done);
	assert_rebuild_equal(&f);

	/* task 2 told to stop but still running: its address stays held */
	{
		Cs__Task t = *store_task_get(f.st, 2);
		struct store_batch b;
		t.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
		set_state(&f, 2, CS__TASK_STATE__TASK_STATE_RUNNING);
		t = *store_task_get(f.st, 2);
		t.desired_state = CS__TASK_STATE__TASK_STATE_SHUTDOWN;
		store_batch_init(&b);
		assert_int_equal(
			store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t), 0);
		apply(f.st, &b);
	}
	assert_int_equal(commit_task(&f, 5, why, sizeof why), CS_ELIMIT);
	/* known stopped: freed, and task 5 gets its address */
	set_state(&f, 2, CS__TASK_STATE__TASK_STATE_SHUTDOWN);
	assert_rebuild_equal(&f);
	assert_int_equal(commit_task(&f, 5, why, sizeof why), 0);
	assert_string_equal(store_task_get(f.st, 5)->networks[0]->addr, "10.0.3.4/29");
	assert_true(alloc_invariants(f.st, why, sizeof why));
	assert_rebuild_equal(&f);
	fix_free(&f);
}

static void test_rebuild_after_leader_change(void **state)
{
	struct fix f;
	struct alloc_state fresh;
	char why[160];
	(void)state;

	fix_init(&f);
	f.att.target = "big";
	add_network(&f, 0x300, "big", "10.1.0.0/16", false);
	assert_int_equal(alloc_state_rebuild(&f.a, f.st), 0);
	add_service(&f, 0x10);
	commit_service(&f, 0x10);
	for (uint64_t id = 1; id <= 300; id++) {
		add_task(&f, id, 0x10);
		assert_int_equal(commit_task(&f, id, why, sizeof why), 0);
	}
	for (uint64_t id = 1; id <= 300; id += 3)
		set_state(&f, id, CS__TASK_STATE__TASK_STATE_FAILED);
	/* a new leader's state, from the store alone, is the old one's */
	alloc_state_init(&fresh);
	assert_int_equal(alloc_state_rebuild(&fresh, f.st), 0);
	assert_true(alloc_state_equal(&fresh, &f.a));
	/* and what it hands out next is held by no live task */
	alloc_state_free(&f.a);
	f.a = fresh;
	for (uint64_t id = 301; id <= 400; id++) {
		add_task(&f, id, 0x10);
		assert_int_equal(commit_task(&f, id, why, sizeof why), 0);
	}
	assert_true(alloc_invariants(f.st, why, sizeof why));
	assert_rebuild_equal(&f);
	fix_free(&f);
}

static void test_bit_exact_across_snapshot(void **state)
{
	struct fix f;
	struct store *copy;
	struct alloc_state a;
	uint8_t *buf, *buf2;
	size_t len, len2;
	char why[160];
	(void)state;

	fix_init(&f);
	assert_int_equal(alloc_state_rebuild(&f.a, f.st), 0);
	f.port.target = 80;
	f.ep.n_ports = 1;
	f.spec.endpoint = &f.ep;
	add_service(&f, 0x10);
	commit_service(&f, 0x10);
	for (uint64_t id = 1; id <= 3; id++) {
		add_task(&f, id, 0x10);
		assert_int_equal(commit_task(&f, id, why, sizeof why), 0);
	}
	set_state(&f, 2, CS__TASK_STATE__TASK_STATE_COMPLETE);
	assert_int_equal(store_snapshot(f.st, &buf, &len), 0);
	copy = store_new();
	assert_int_equal(store_restore(copy, buf, len, 0), 0);
	assert_int_equal(store_network_count(copy), 2);
	assert_int_equal(store_snapshot(copy, &buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	alloc_state_init(&a);
	assert_int_equal(alloc_state_rebuild(&a, copy), 0);
	assert_true(alloc_state_equal(&a, &f.a));
	assert_int_equal(a.port_count, 1);
	alloc_state_free(&a);
	store_free(copy);
	free(buf);
	free(buf2);
	fix_free(&f);
}

/* ---------------------------------------------------------------- ports */

static void test_ingress_ports(void **state)
{
	struct fix f;
	const Cs__Service *s;
	char why[160];
	(void)state;

	fix_init(&f);
	assert_int_equal(alloc_state_rebuild(&f.a, f.st), 0);
	f.spec.n_networks = 0;
	f.spec.endpoint = &f.ep;
	f.ep.n_ports = 1;
	f.port.target = 80;
	f.port.published = 8080;
	assert_int_equal(alloc_check_ports(f.st, &f.spec, 0, why, sizeof why), 0);
	add_service(&f, 0x10);
	/* another service asking for 8080/tcp is refused; udp is another port */
	f.spec.name = "other";
	assert_int_equal(alloc_check_ports(f.st, &f.spec, 0, why, sizeof why),
			 CS_EADDRINUSE);
	assert_string_equal(why, "port 8080/tcp is in use by service web");
	assert_int_equal(alloc_check_ports(f.st, &f.spec, 0x10, why, sizeof why), 0);
	f.port.protocol = CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP;
	assert_int_equal(alloc_check_ports(f.st, &f.spec, 0, why, sizeof why), 0);
	f.port.protocol = CS__PORT_PROTOCOL__PORT_PROTOCOL_TCP;
	f.spec.name = "web";
	commit_service(&f, 0x10);
	s = store_service_get(f.st, 0x10);
	assert_int_equal(s->n_ports, 1);
	assert_int_equal(s->ports[0]->published, 8080);
	/* the ingress network: a VIP on it */
	assert_int_equal(s->n_vips, 1);
	assert_int_equal(s->vips[0]->network_id, 0x100);
	/* a port not given: the lowest free from 30000 */
	f.port.published = 0;
	f.spec.name = "drawn";
	add_service(&f, 0x20);
	commit_service(&f, 0x20);
	assert_int_equal(store_service_get(f.st, 0x20)->ports[0]->published,
			 LIMIT_PORT_DYNAMIC_MIN);
	assert_int_equal(f.a.port_count, 2);
	assert_true(alloc_invariants(f.st, why, sizeof why));
	assert_rebuild_equal(&f);
	/* removing the service frees its port */
	{
		struct store_batch b;
		store_batch_init(&b);
		assert_int_equal(store_batch_service(&b,
						     CS__STORE_ACTION__KIND__KIND_DELETE,
						     store_service_get(f.st, 0x10)),
				 0);
		apply(f.st, &b);
	}
	assert_int_equal(f.a.port_count, 1);
	assert_rebuild_equal(&f);
	/* a host-mode port needs published= */
	f.port.mode = CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST;
	assert_int_equal(alloc_check_ports(f.st, &f.spec, 0, why, sizeof why), CS_EINVAL);
	fix_free(&f);
}

/* A task's host ports are the ones it was given (Task.ports), whatever its
 * service's spec says now: a task two updates old still holds 8080 while
 * its service now publishes 9090. */
static void test_host_ports_busy_are_the_tasks_own(void **state)
{
	struct fix f;
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__ServiceSpec now_spec, want_spec;
	Cs__EndpointSpec now_ep = CS__ENDPOINT_SPEC__INIT,
			 want_ep = CS__ENDPOINT_SPEC__INIT;
	Cs__PortConfig held = CS__PORT_CONFIG__INIT, now_port = CS__PORT_CONFIG__INIT;
	Cs__PortConfig *held_ports[1] = {&held}, *now_ports[1] = {&now_port};
	Cs__Service want = CS__SERVICE__INIT;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus ts = CS__TASK_STATUS__INIT;
	struct store_batch b;
	char why[160];
	(void)state;

	fix_init(&f);
	held.target = 80;
	held.published = 8080;
	held.mode = CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST;
	now_port = held;
	now_port.published = 9090;
	now_spec = f.spec;
	now_spec.n_networks = 0;
	now_spec.endpoint = &now_ep;
	now_ep.n_ports = 1;
	now_ep.ports = now_ports;
	svc.id = 0x10;
	svc.spec = &now_spec;
	svc.spec_version = 3; /* two updates since the task's */
	t.id = 0x11;
	t.service_id = 0x10;
	t.node_id = 0x77;
	t.slot = 1;
	t.spec_version = 1;
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t.alloc_done = true;
	t.n_ports = 1;
	t.ports = held_ports;
	ts.state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t.status = &ts;
	store_batch_init(&b);
	assert_int_equal(
		store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc), 0);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	apply(f.st, &b);
	want_spec = now_spec;
	want_spec.name = "other";
	want_spec.endpoint = &want_ep;
	want_ep.n_ports = 1;
	want_ep.ports = held_ports;
	want.spec = &want_spec;
	assert_true(alloc_host_port_busy(f.st, &want, 0x77));
	assert_false(alloc_host_port_busy(f.st, &want, 0x78));
	want_ep.ports = now_ports; /* 9090: nobody holds it on 0x77 */
	assert_false(alloc_host_port_busy(f.st, &want, 0x77));
	assert_true(alloc_invariants(f.st, why, sizeof why));
	fix_free(&f);
}

/* ---------------------------------------------------------------- networks */

static void test_network_prepare(void **state)
{
	struct fix f;
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	Cs__Network net = CS__NETWORK__INIT;
	char bufs[2][20], why[160];
	const Cs__Service *user;
	(void)state;

	fix_init(&f);
	/* the pool's next /24 after the ingress network's 10.0.0.0/24 */
	spec.name = "a";
	assert_int_equal(alloc_network_prepare(f.st, &spec, &net, bufs, why, sizeof why),
			 0);
	assert_string_equal(net.subnet, "10.0.1.0/24");
	assert_string_equal(net.gateway, "10.0.1.1");
	assert_int_equal(net.vni, LIMIT_NET_VNI_MIN + 2);
	spec.name = "small";
	assert_int_equal(alloc_network_prepare(f.st, &spec, &net, bufs, why, sizeof why),
			 CS_EEXIST);
	spec.name = "b";
	spec.subnet = "10.0.3.0/24";
	assert_int_equal(alloc_network_prepare(f.st, &spec, &net, bufs, why, sizeof why),
			 CS_EADDRINUSE);
	spec.subnet = "10.9.0.0/8";
	assert_int_equal(alloc_network_prepare(f.st, &spec, &net, bufs, why, sizeof why),
			 CS_EINVAL);
	spec.subnet = "";
	spec.driver = "macvlan";
	assert_int_equal(alloc_network_prepare(f.st, &spec, &net, bufs, why, sizeof why),
			 CS_EINVAL);
	/* users: a service naming it */
	assert_int_equal(alloc_network_users(f.st, store_network_get(f.st, 0x200), &user),
			 0);
	add_service(&f, 0x10);
	assert_int_equal(alloc_network_users(f.st, store_network_get(f.st, 0x200), &user),
			 1);
	assert_int_equal(user->id, 0x10);
	fix_free(&f);
}

static void test_invariants_catch_double(void **state)
{
	struct fix f;
	char why[160];
	Cs__Task t;
	struct store_batch b;
	(void)state;

	fix_init(&f);
	assert_int_equal(alloc_state_rebuild(&f.a, f.st), 0);
	add_service(&f, 0x10);
	commit_service(&f, 0x10);
	add_task(&f, 1, 0x10);
	add_task(&f, 2, 0x10);
	assert_int_equal(commit_task(&f, 1, why, sizeof why), 0);
	assert_true(alloc_invariants(f.st, why, sizeof why));
	/* task 2 written with task 1's address: caught */
	t = *store_task_get(f.st, 2);
	t.n_networks = store_task_get(f.st, 1)->n_networks;
	t.networks = store_task_get(f.st, 1)->networks;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &t),
			 0);
	apply(f.st, &b);
	assert_false(alloc_invariants(f.st, why, sizeof why));
	assert_non_null(strstr(why, "address"));
	fix_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipam_exhaust_release),
		cmocka_unit_test(test_ipam_bounds),
		cmocka_unit_test(test_cidr_text),
		cmocka_unit_test(test_subnet_exhausted_then_freed),
		cmocka_unit_test(test_rebuild_after_leader_change),
		cmocka_unit_test(test_bit_exact_across_snapshot),
		cmocka_unit_test(test_ingress_ports),
		cmocka_unit_test(test_host_ports_busy_are_the_tasks_own),
		cmocka_unit_test(test_network_prepare),
		cmocka_unit_test(test_invariants_catch_double),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
