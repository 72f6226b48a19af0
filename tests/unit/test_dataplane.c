/* Tests of net/dataplane.c's pure parts: the names of what it makes, the
 * MACs it derives, and the entries it programs for a network's state (which
 * FDB and neighbour entries a net_set adds and removes). Then, where the
 * test may make a network namespace of its own (root), the kernel part in
 * one: adoption of what a restarted daemon finds, and a network the kernel
 * refuses leaving nothing half-made. Real traffic between nodes is
 * tests/integration/netns.sh's. */
#define _GNU_SOURCE /* unshare, CLONE_NEWNET */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "net/dataplane.h"
#include "tests/support/netnschild.h"

#define IP(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static void test_dataplane_names_fit_ifnamsiz(void **state)
{
	char br[DATAPLANE_IFNAME_BYTES], vx[DATAPLANE_IFNAME_BYTES];
	char dn[DATAPLANE_DOCKER_NAME_BYTES];
	(void)state;
	dataplane_bridge_name(4097, br);
	dataplane_vxlan_name(4097, vx);
	assert_string_equal(br, "cs-br-4097");
	assert_string_equal(vx, "cs-vx-4097");
	/* the largest VNI still fits in IFNAMSIZ with its NUL */
	dataplane_bridge_name(DATAPLANE_VNI_MAX, br);
	dataplane_vxlan_name(DATAPLANE_VNI_MAX, vx);
	assert_string_equal(br, "cs-br-16777215");
	assert_string_equal(vx, "cs-vx-16777215");
	assert_true(strlen(br) < DATAPLANE_IFNAME_BYTES);
	dataplane_docker_name(0xfedcba9876543210ull, dn);
	assert_string_equal(dn, "cswarm-net-fedcba9876543210");
	dataplane_docker_name(1, dn);
	assert_string_equal(dn, "cswarm-net-0000000000000001");
}

static void test_dataplane_mac_is_docker_s_and_inverts(void **state)
{
	uint8_t mac[6];
	uint32_t addr = 0;
	const uint8_t want[6] = {0x02, 0x42, 0x0a, 0x00, 0x03, 0x05};
	(void)state;
	dataplane_mac_of(IP(10, 0, 3, 5), mac);
	assert_memory_equal(mac, want, 6);
	assert_true(dataplane_addr_of_mac(mac, &addr));
	assert_int_equal(addr, IP(10, 0, 3, 5));
	/* locally administered, unicast */
	assert_int_equal(mac[0] & 0x03, 0x02);
	/* a MAC not of this form (all zeros: a flood entry) is not ours */
	memset(mac, 0, sizeof mac);
	assert_false(dataplane_addr_of_mac(mac, &addr));
}

static void test_dataplane_parse(void **state)
{
	uint32_t a = 0;
	unsigned p = 0;
	(void)state;
	assert_int_equal(dataplane_parse_ipv4("10.0.3.1", &a), 0);
	assert_int_equal(a, IP(10, 0, 3, 1));
	assert_int_equal(dataplane_parse_ipv4("10.0.3", &a), CS_EINVAL);
	assert_int_equal(dataplane_parse_ipv4(NULL, &a), CS_EINVAL);
	assert_int_equal(dataplane_parse_cidr("10.0.3.0/24", &a, &p), 0);
	assert_int_equal(a, IP(10, 0, 3, 0));
	assert_int_equal(p, 24);
	assert_int_equal(dataplane_parse_cidr("10.0.3.0", &a, &p), CS_EINVAL);
	assert_int_equal(dataplane_parse_cidr("10.0.3.0/31", &a, &p), CS_EINVAL);
	assert_int_equal(dataplane_parse_cidr("10.0.3.0/0", &a, &p), CS_EINVAL);
	assert_int_equal(dataplane_parse_cidr("10.0.3.0/24x", &a, &p), CS_EINVAL);
	assert_int_equal(dataplane_parse_cidr("/24", &a, &p), CS_EINVAL);
}

static const struct env_net_endpoint eps[] = {
	{.task_id = 1, .addr = "10.0.3.3", .node_ip = "192.168.50.2", .local = true},
	{.task_id = 2, .addr = "10.0.3.4", .node_ip = "192.168.50.3"},
	{.task_id = 3, .addr = "10.0.3.5", .node_ip = "192.168.50.4"},
	/* not marked local, but on this node's underlay IP: local all the same */
	{.task_id = 4, .addr = "10.0.3.6", .node_ip = "192.168.50.2"},
	{.task_id = 5, .addr = "10.0.3.7", .node_ip = "192.168.50.3"},
};

static struct env_net_state state_of(const struct env_net_endpoint *e, size_t n)
{
	struct env_net_state st;
	memset(&st, 0, sizeof st);
	st.network_id = 7;
	st.vni = 4097;
	st.subnet = "10.0.3.0/24";
	st.gateway = "10.0.3.1";
	st.endpoints = e;
	st.endpoint_count = n;
	return st;
}

static void test_dataplane_entries_are_the_remote_endpoints(void **state)
{
	struct env_net_state st = state_of(eps, 5);
	struct dataplane_entry *es = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(dataplane_entries_of(&st, IP(192, 168, 50, 2), true, &es, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(es[0].addr, IP(10, 0, 3, 4));
	assert_int_equal(es[0].node_ip, IP(192, 168, 50, 3));
	assert_int_equal(es[1].addr, IP(10, 0, 3, 5));
	assert_int_equal(es[1].node_ip, IP(192, 168, 50, 4));
	assert_int_equal(es[2].addr, IP(10, 0, 3, 7));
	free(es);
	/* neighbour entries: the same addresses, no node */
	assert_int_equal(dataplane_entries_of(&st, IP(192, 168, 50, 2), false, &es, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(es[0].node_ip, 0);
	assert_int_equal(es[2].addr, IP(10, 0, 3, 7));
	free(es);
	/* only local endpoints: nothing to program, nothing allocated */
	st = state_of(eps, 1);
	assert_int_equal(dataplane_entries_of(&st, IP(192, 168, 50, 2), true, &es, &n),
			 0);
	assert_int_equal(n, 0);
	assert_null(es);
}

static void test_dataplane_entries_refuse_malformed(void **state)
{
	const struct env_net_endpoint outside[] = {
		{.task_id = 1, .addr = "10.0.4.3", .node_ip = "192.168.50.3"},
	};
	const struct env_net_endpoint bad_node[] = {
		{.task_id = 1, .addr = "10.0.3.3", .node_ip = "node-b"},
	};
	struct env_net_state st = state_of(outside, 1);
	struct dataplane_entry *es = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(dataplane_entries_of(&st, IP(192, 168, 50, 2), true, &es, &n),
			 CS_EINVAL);
	assert_null(es);
	st = state_of(bad_node, 1);
	assert_int_equal(dataplane_entries_of(&st, IP(192, 168, 50, 2), true, &es, &n),
			 CS_EINVAL);
	st = state_of(eps, 5);
	st.subnet = "10.0.3.0";
	assert_int_equal(dataplane_entries_of(&st, IP(192, 168, 50, 2), true, &es, &n),
			 CS_EINVAL);
}

static void test_dataplane_sort_dedups(void **state)
{
	struct dataplane_entry es[] = {
		{IP(10, 0, 3, 9), 2}, {IP(10, 0, 3, 4), 3}, {IP(10, 0, 3, 9), 2},
		{IP(10, 0, 3, 4), 1}, {IP(10, 0, 3, 9), 2},
	};
	(void)state;
	assert_int_equal(dataplane_entry_sort(es, 5), 3);
	assert_int_equal(es[0].addr, IP(10, 0, 3, 4));
	assert_int_equal(es[0].node_ip, 1);
	assert_int_equal(es[1].node_ip, 3);
	assert_int_equal(es[2].addr, IP(10, 0, 3, 9));
	assert_int_equal(dataplane_entry_sort(es, 0), 0);
}

/* The kernel holds A@n1, B@n1, C@n2; the state wants B@n1, C@n3 (C moved to
 * another node), D@n2: A goes, C@n2 goes, C@n3 and D@n2 come, B stays. */
static void test_dataplane_diff_adds_and_removes_exactly(void **state)
{
	const struct dataplane_entry have[] = {{1, 100}, {2, 100}, {3, 200}};
	const struct dataplane_entry want[] = {{2, 100}, {3, 300}, {4, 200}};
	struct dataplane_entry del[3], add[3];
	size_t nd = 9, na = 9;
	(void)state;
	dataplane_diff(have, 3, want, 3, del, &nd, add, &na);
	assert_int_equal(nd, 2);
	assert_int_equal(del[0].addr, 1);
	assert_int_equal(del[1].addr, 3);
	assert_int_equal(del[1].node_ip, 200);
	assert_int_equal(na, 2);
	assert_int_equal(add[0].addr, 3);
	assert_int_equal(add[0].node_ip, 300);
	assert_int_equal(add[1].addr, 4);
	/* equal: nothing to do */
	dataplane_diff(want, 3, want, 3, del, &nd, add, &na);
	assert_int_equal(nd, 0);
	assert_int_equal(na, 0);
	/* empty kernel: everything added; empty state: everything removed */
	dataplane_diff(NULL, 0, want, 3, del, &nd, add, &na);
	assert_int_equal(nd, 0);
	assert_int_equal(na, 3);
	dataplane_diff(have, 3, NULL, 0, del, &nd, add, &na);
	assert_int_equal(nd, 3);
	assert_int_equal(na, 0);
}

/* Two net_sets in a row: the entries the second adds and removes are the
 * endpoints that came and went between them, nothing else. */
static void test_dataplane_two_states_diff(void **state)
{
	const struct env_net_endpoint before[] = {
		{.task_id = 2, .addr = "10.0.3.4", .node_ip = "192.168.50.3"},
		{.task_id = 3, .addr = "10.0.3.5", .node_ip = "192.168.50.4"},
	};
	const struct env_net_endpoint after[] = {
		{.task_id = 3, .addr = "10.0.3.5", .node_ip = "192.168.50.4"},
		{.task_id = 6, .addr = "10.0.3.8", .node_ip = "192.168.50.3"},
	};
	struct env_net_state s1 = state_of(before, 2), s2 = state_of(after, 2);
	struct dataplane_entry *e1, *e2, del[2], add[2];
	size_t n1, n2, nd, na;
	(void)state;
	assert_int_equal(dataplane_entries_of(&s1, IP(192, 168, 50, 2), true, &e1, &n1),
			 0);
	assert_int_equal(dataplane_entries_of(&s2, IP(192, 168, 50, 2), true, &e2, &n2),
			 0);
	dataplane_diff(e1, n1, e2, n2, del, &nd, add, &na);
	assert_int_equal(nd, 1);
	assert_int_equal(del[0].addr, IP(10, 0, 3, 4));
	assert_int_equal(na, 1);
	assert_int_equal(add[0].addr, IP(10, 0, 3, 8));
	assert_int_equal(add[0].node_ip, IP(192, 168, 50, 3));
	free(e1);
	free(e2);
}

static void test_dataplane_open_refuses_loopback_and_foreign(void **state)
{
	struct dataplane_cfg cfg;
	struct dataplane *dp = NULL;
	char err[256];
	(void)state;
	memset(&cfg, 0, sizeof cfg);
	cfg.underlay_ip = "127.0.0.1";
	assert_int_equal(dataplane_open(&cfg, &dp, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "loopback"));
	assert_null(dp);
	/* TEST-NET-3: never an address of this machine */
	cfg.underlay_ip = "203.0.113.77";
	assert_int_equal(dataplane_open(&cfg, &dp, err, sizeof err), CS_EINVAL);
	assert_non_null(strstr(err, "not an address of this node"));
	cfg.underlay_ip = "nonsense";
	assert_int_equal(dataplane_open(&cfg, &dp, err, sizeof err), CS_EINVAL);
}

/* ---------------------------------------------------------------- in a network namespace */

/* Runs cmd (a shell line) and returns its whole output (the caller frees
 * it), or NULL. */
static char *run_out(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	char *buf;
	size_t len = 0;
	if (!f)
		return NULL;
	buf = calloc(1, 65536);
	if (buf)
		len = fread(buf, 1, 65535, f);
	(void)len;
	pclose(f);
	return buf;
}

/* In the child, in its own network namespace: each check returns its line
 * number on failure (the child's exit status), 0 when all held. */
#define CHILD_CHECK(cond)                                                            \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "failed at line %d: %s\n", __LINE__, #cond); \
			return __LINE__ % 250 + 1;                                   \
		}                                                                    \
	} while (0)

static bool out_has(const char *cmd, const char *what)
{
	char *o = run_out(cmd);
	bool has = o && strstr(o, what);
	free(o);
	return has;
}

static int kernel_child(void)
{
	const struct env_net_endpoint e[] = {
		{.task_id = 1,
		 .addr = "10.0.3.3",
		 .node_ip = "192.168.77.1",
		 .local = true},
		{.task_id = 2, .addr = "10.0.3.4", .node_ip = "192.168.77.2"},
	};
	struct env_net_state st = state_of(e, 2);
	struct dataplane_cfg cfg;
	struct dataplane *dp;
	char err[256];

	CHILD_CHECK(
		system("ip link set lo up && "
		       "ip link add cs-t0 type veth peer name cs-t1 && "
		       "ip addr add 192.168.77.1/24 dev cs-t0 && ip link set cs-t0 up && "
		       /* what a restarted daemon finds: a bridge of this VNI
			    * with another subnet's address, a VXLAN device of
			    * its name with another VNI */
		       "ip link add cs-br-4097 type bridge && "
		       "ip addr add 10.9.9.1/24 dev cs-br-4097 && "
		       "ip link add cs-t4 type veth peer name cs-t5 && "
		       "ip link set cs-t4 master cs-br-4097 && "
		       "ip link add cs-vx-4097 type vxlan id 77 dstport 4789 && "
		       /* a network's VXLAN device of the start probe's VNI:
			* the probe must not clash with it */
		       "ip link add cs-vx-16777215 type vxlan id 16777215 "
		       "dstport 4789 && "
		       /* left by an earlier daemon: a network nothing uses
			* any more (swept at open), one with a container's
			* veth on it (kept) */
		       "ip link add cs-br-4242 type bridge && "
		       "ip link add cs-vx-4242 type vxlan id 4242 dstport 4789 && "
		       "ip link set cs-vx-4242 master cs-br-4242 && "
		       "ip link add cs-br-4243 type bridge && "
		       "ip link add cs-t2 type veth peer name cs-t3 && "
		       "ip link set cs-t2 master cs-br-4243 && "
		       /* someone else's VXLAN device holding VNI 5000 */
		       "ip link add other5000 type vxlan id 5000 dstport 4789 "
		       "local 192.168.77.1") == 0);
	memset(&cfg, 0, sizeof cfg);
	cfg.underlay_ip = "192.168.77.1";
	CHILD_CHECK(dataplane_open(&cfg, &dp, err, sizeof err) == 0);
	CHILD_CHECK(if_nametoindex("cs-br-4242") == 0);
	CHILD_CHECK(if_nametoindex("cs-vx-4242") == 0);
	CHILD_CHECK(if_nametoindex("cs-br-4243") != 0);
	CHILD_CHECK(if_nametoindex("other5000") != 0);
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == 0);
	CHILD_CHECK(err[0] == '\0');
	/* adopted and made right */
	CHILD_CHECK(out_has("ip -4 -o addr show dev cs-br-4097", "10.0.3.1/24"));
	CHILD_CHECK(!out_has("ip -4 -o addr show dev cs-br-4097", "10.9.9.1"));
	CHILD_CHECK(out_has("ip -d link show cs-vx-4097",
			    "vxlan id 4097 local 192.168.77.1"));
	CHILD_CHECK(out_has("ip -d link show cs-vx-4097", "nolearning proxy"));
	CHILD_CHECK(out_has("ip -d link show cs-vx-4097", "master cs-br-4097"));
	CHILD_CHECK(out_has("bridge fdb show dev cs-vx-4097",
			    "02:42:0a:00:03:04 dst 192.168.77.2 self permanent"));
	CHILD_CHECK(!out_has("bridge fdb show dev cs-vx-4097", "00:00:00:00:00:00"));
	CHILD_CHECK(out_has("ip neigh show dev cs-vx-4097",
			    "10.0.3.4 lladdr 02:42:0a:00:03:04 PERMANENT"));
	CHILD_CHECK(dataplane_find(dp, 7) != NULL);
	/* the bridge's MAC (the gateway's, in the tasks' ARP caches) stays
	 * what it is as ports come and go: a lower one joining, then going
	 * (an encrypted network's TAP goes with its swarmd) */
	{
		const char *show =
			"ip -o link show cs-br-4097 | grep -o 'link/ether [0-9a-f:]*'";
		char *mac0 = run_out(show);
		char *mac1, *mac2;
		CHILD_CHECK(mac0 != NULL && strlen(mac0) > 16);
		CHILD_CHECK(
			system("ip link add cs-t6 address 00:00:00:00:00:01 type veth "
			       "peer name cs-t7 && ip link set cs-t6 master cs-br-4097 "
			       "&& ip link set cs-t6 up") == 0);
		mac1 = run_out(show);
		CHILD_CHECK(system("ip link del cs-t6") == 0);
		mac2 = run_out(show);
		CHILD_CHECK(mac1 != NULL && strcmp(mac1, mac0) == 0);
		CHILD_CHECK(mac2 != NULL && strcmp(mac2, mac0) == 0);
		free(mac0);
		free(mac1);
		free(mac2);
	}
	/* the routing mesh: on the ingress network the node's own address is
	 * a /32 of the bridge, whose MAC is that address's (what the other
	 * nodes' entries for it say); one outside the subnet is refused */
	st.ingress = true;
	st.node_addr = "10.0.3.9";
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == 0);
	CHILD_CHECK(out_has("ip -4 -o addr show dev cs-br-4097", "10.0.3.9/32"));
	CHILD_CHECK(out_has("ip -4 -o addr show dev cs-br-4097", "10.0.3.1/24"));
	CHILD_CHECK(out_has("ip link show cs-br-4097", "link/ether 02:42:0a:00:03:09"));
	st.node_addr = "10.0.4.9";
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == CS_EINVAL);
	CHILD_CHECK(strstr(err, "node address 10.0.4.9") != NULL);
	st.ingress = false;
	st.node_addr = NULL;
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == 0);
	CHILD_CHECK(!out_has("ip -4 -o addr show dev cs-br-4097", "10.0.3.9"));
	/* a VNI the kernel refuses: the kernel's words, nothing half-made */
	st.network_id = 9;
	st.vni = 5000;
	st.subnet = "10.0.5.0/24";
	st.gateway = "10.0.5.1";
	st.endpoints = NULL;
	st.endpoint_count = 0;
	CHILD_CHECK(dataplane_set(dp, &st, err, sizeof err) == CS_EEXEC);
	fprintf(stderr, "(the kernel's words: %s)\n", err);
	CHILD_CHECK(strstr(err, "create cs-vx-5000: File exists") != NULL);
	CHILD_CHECK(if_nametoindex("cs-vx-5000") == 0);
	CHILD_CHECK(if_nametoindex("cs-br-5000") == 0);
	CHILD_CHECK(dataplane_find(dp, 9) == NULL);
	/* removed: nothing of it stays */
	CHILD_CHECK(dataplane_remove(dp, 7, err, sizeof err) == 0);
	CHILD_CHECK(if_nametoindex("cs-vx-4097") == 0);
	CHILD_CHECK(if_nametoindex("cs-br-4097") == 0);
	CHILD_CHECK(dataplane_find(dp, 7) == NULL);
	CHILD_CHECK(dataplane_remove(dp, 7, err, sizeof err) == 0); /* unknown: 0 */
	dataplane_close(dp);
	return 0;
}

static void test_dataplane_kernel_adopts_and_never_half_makes(void **state)
{
	int status = 0;
	(void)state;
	if (geteuid() != 0 || system("ip -V >/dev/null 2>&1") != 0)
		skip();
	status = netnschild_run(kernel_child);
	if (status == NETNSCHILD_NO_RIGHT)
		skip(); /* no right to a network namespace here */
	assert_int_equal(status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dataplane_names_fit_ifnamsiz),
		cmocka_unit_test(test_dataplane_mac_is_docker_s_and_inverts),
		cmocka_unit_test(test_dataplane_parse),
		cmocka_unit_test(test_dataplane_entries_are_the_remote_endpoints),
		cmocka_unit_test(test_dataplane_entries_refuse_malformed),
		cmocka_unit_test(test_dataplane_sort_dedups),
		cmocka_unit_test(test_dataplane_diff_adds_and_removes_exactly),
		cmocka_unit_test(test_dataplane_two_states_diff),
		cmocka_unit_test(test_dataplane_open_refuses_loopback_and_foreign),
		cmocka_unit_test(test_dataplane_kernel_adopts_and_never_half_makes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
