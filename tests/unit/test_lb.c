/* Tests of net/lb.c: the exact nft text for a network's state, the minimal
 * difference when backends or services change, what a state may not hold,
 * and (as root, in a network namespace of its own) that the kernel takes the
 * text and that nft's error text comes back. */
#define _GNU_SOURCE /* unshare */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "net/lb.h"

static const char *const web_b2[] = {"10.0.3.6", "10.0.3.5",
				     NULL}; /* unsorted on purpose */
static const char *const web_b1[] = {"10.0.3.5", NULL};
static const char *const web_b3[] = {"10.0.3.5", "10.0.3.6", "10.0.3.10", NULL};
static const char *const db_b[] = {"10.0.3.7", NULL};

static struct env_net_state state_of(struct env_net_service *svcs, size_t n)
{
	struct env_net_state st = {.network_id = 0xab,
				   .name = "app",
				   .subnet = "10.0.3.0/24",
				   .gateway = "10.0.3.1",
				   .services = svcs,
				   .service_count = n};
	return st;
}

static char *vip_full(const struct env_net_state *st)
{
	struct lb_model m;
	char *text = NULL;
	assert_int_equal(lb_model_build(st, &m), 0);
	assert_int_equal(lb_vip_script(NULL, &m, NULL, &text), 0);
	lb_model_free(&m);
	return text;
}

static char *vip_diff(const struct env_net_state *a, const struct env_net_state *b)
{
	struct lb_model ma, mb;
	char *text = NULL;
	assert_int_equal(lb_model_build(a, &ma), 0);
	assert_int_equal(lb_model_build(b, &mb), 0);
	assert_int_equal(lb_vip_script(&ma, &mb, NULL, &text), 0);
	lb_model_free(&ma);
	lb_model_free(&mb);
	return text;
}

static void test_lb_vip_whole_table_text(void **state)
{
	struct env_net_service svcs[] = {
		{.service_id = 1, .name = "web", .vip = "10.0.3.2", .backends = web_b2},
		{.service_id = 2,
		 .name = "db",
		 .vip = NULL,
		 .backends = db_b}, /* dnsrr: no rules */
		{.service_id = 3, .name = "idle", .vip = "10.0.3.3", .backends = NULL},
	};
	struct env_net_state st = state_of(svcs, 3);
	char *text = vip_full(&st);
	(void)state;
	assert_string_equal(
		text,
		"table ip cswarm_vip_00000000000000ab\n"
		"delete table ip cswarm_vip_00000000000000ab\n"
		"table ip cswarm_vip_00000000000000ab {\n"
		"\tmap vips {\n"
		"\t\ttype ipv4_addr : verdict\n"
		"\t\telements = { 10.0.3.2 : jump svc_0000000000000001, "
		"10.0.3.3 : jump svc_0000000000000003 }\n"
		"\t}\n"
		"\tset vipset {\n"
		"\t\ttype ipv4_addr\n"
		"\t\telements = { 10.0.3.2, 10.0.3.3 }\n"
		"\t}\n"
		"\tchain svc_0000000000000001 {\n"
		"\t\tdnat to numgen random mod 2 map { 0 : 10.0.3.5, 1 : 10.0.3.6 }\n"
		"\t}\n"
		"\tchain svc_0000000000000003 {\n"
		"\t}\n"
		"\tchain out {\n"
		"\t\ttype nat hook output priority -100; policy accept;\n"
		"\t\tip daddr vmap @vips\n"
		"\t}\n"
		"\tchain refuse {\n"
		"\t\ttype filter hook output priority 0; policy accept;\n"
		"\t\tip daddr @vipset meta l4proto tcp reject with tcp reset\n"
		"\t\tip daddr @vipset reject\n"
		"\t}\n"
		"}\n");
	free(text);
}

static void test_lb_vip_empty_network_has_empty_maps(void **state)
{
	struct env_net_state st = state_of(NULL, 0);
	char *text = vip_full(&st);
	(void)state;
	assert_non_null(
		strstr(text, "\tmap vips {\n\t\ttype ipv4_addr : verdict\n\t}\n"));
	assert_non_null(strstr(text, "\tset vipset {\n\t\ttype ipv4_addr\n\t}\n"));
	assert_null(strstr(text, "elements"));
	free(text);
}

static void test_lb_vip_backend_change_rewrites_one_chain(void **state)
{
	struct env_net_service a[] = {
		{.service_id = 1, .vip = "10.0.3.2", .backends = web_b2},
		{.service_id = 4, .vip = "10.0.3.4", .backends = db_b},
	};
	struct env_net_service b[] = {
		{.service_id = 1,
		 .vip = "10.0.3.2",
		 .backends = web_b1}, /* 10.0.3.6 stopped */
		{.service_id = 4, .vip = "10.0.3.4", .backends = db_b},
	};
	struct env_net_state sa = state_of(a, 2), sb = state_of(b, 2);
	char *text = vip_diff(&sa, &sb);
	(void)state;
	assert_string_equal(
		text, "flush chain ip cswarm_vip_00000000000000ab svc_0000000000000001\n"
		      "add rule ip cswarm_vip_00000000000000ab svc_0000000000000001 "
		      "dnat to numgen random mod 1 map { 0 : 10.0.3.5 }\n");
	free(text);
	/* the same state again: nothing to do */
	text = vip_diff(&sb, &sb);
	assert_string_equal(text, "");
	free(text);
	/* the last backend gone: the chain stays, empty (the VIP refuses) */
	b[0].backends = NULL;
	text = vip_diff(&sa, &sb);
	assert_string_equal(
		text,
		"flush chain ip cswarm_vip_00000000000000ab svc_0000000000000001\n");
	free(text);
}

static void test_lb_vip_services_come_and_go(void **state)
{
	struct env_net_service a[] = {
		{.service_id = 1, .vip = "10.0.3.2", .backends = web_b1},
		{.service_id = 2, .vip = "10.0.3.3", .backends = db_b},
	};
	/* 1 goes, 2 moves to 1's old VIP (keys deleted before added), 5 comes
	 * in dnsrr mode (nothing), 7 comes with a VIP */
	struct env_net_service b[] = {
		{.service_id = 2, .vip = "10.0.3.2", .backends = db_b},
		{.service_id = 5, .vip = NULL, .backends = web_b3},
		{.service_id = 7, .vip = "10.0.3.8", .backends = web_b3},
	};
	struct env_net_state sa = state_of(a, 2), sb = state_of(b, 3);
	char *text = vip_diff(&sa, &sb);
	(void)state;
	assert_string_equal(
		text,
		"delete element ip cswarm_vip_00000000000000ab vips { 10.0.3.2 }\n"
		"delete element ip cswarm_vip_00000000000000ab vipset { 10.0.3.2 }\n"
		"delete element ip cswarm_vip_00000000000000ab vips { 10.0.3.3 }\n"
		"delete element ip cswarm_vip_00000000000000ab vipset { 10.0.3.3 }\n"
		"add chain ip cswarm_vip_00000000000000ab svc_0000000000000007\n"
		"add rule ip cswarm_vip_00000000000000ab svc_0000000000000007 dnat to numgen "
		"random mod 3 map { 0 : 10.0.3.5, 1 : 10.0.3.6, 2 : 10.0.3.10 }\n"
		"add element ip cswarm_vip_00000000000000ab vips { 10.0.3.2 : jump "
		"svc_0000000000000002 }\n"
		"add element ip cswarm_vip_00000000000000ab vipset { 10.0.3.2 }\n"
		"add element ip cswarm_vip_00000000000000ab vips { 10.0.3.8 : jump "
		"svc_0000000000000007 }\n"
		"add element ip cswarm_vip_00000000000000ab vipset { 10.0.3.8 }\n"
		"flush chain ip cswarm_vip_00000000000000ab svc_0000000000000001\n"
		"delete chain ip cswarm_vip_00000000000000ab svc_0000000000000001\n");
	free(text);
}

static void test_lb_model_rejects_bad_states(void **state)
{
	struct lb_model m;
	const char *const inject[] = {"10.0.3.5 } ; flush ruleset ; {", NULL};
	struct env_port port0 = {.target = 80, .published = 0, .proto = ENV_PORT_TCP};
	struct env_port big = {.target = 70000, .published = 8080, .proto = ENV_PORT_TCP};
	struct env_port dup[] = {{80, 8080, ENV_PORT_TCP}, {81, 8080, ENV_PORT_TCP}};
	struct env_net_service s[2] = {{.service_id = 1, .vip = "10.0.3.2"},
				       {.service_id = 2}};
	struct env_net_state st = state_of(s, 1);
	(void)state;
	s[0].vip = "10.0.3.2/24";
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	s[0].vip = "10.0.3.2";
	s[0].backends = inject;
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	s[0].backends = NULL;
	s[0].ports = &port0, s[0].port_count = 1;
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	s[0].ports = &big;
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	s[0].ports = dup, s[0].port_count = 2;
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	/* the same port in two services */
	s[0].port_count = 1, s[1].ports = dup, s[1].port_count = 1;
	st.service_count = 2;
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	s[1].ports = &dup[1];
	s[1].port_count = 0;
	/* not ascending */
	s[1].service_id = 1;
	assert_int_equal(lb_model_build(&st, &m), CS_EINVAL);
	s[1].service_id = 2;
	assert_int_equal(lb_model_build(&st, &m), 0);
	assert_int_equal(m.service_count, 2);
	lb_model_free(&m);
	/* bad bridge and SNAT address never reach the text */
	assert_int_equal(lb_model_build(&st, &m), 0);
	char *text = NULL;
	assert_int_equal(lb_ingress_script(NULL, &m, "br\" ; flush", NULL, &text),
			 CS_EINVAL);
	assert_int_equal(lb_ingress_script(NULL, &m, "br-ingress0123456", NULL, &text),
			 CS_EINVAL);
	assert_int_equal(lb_ingress_script(NULL, &m, "br-ing", "10.0.0.300", &text),
			 CS_EINVAL);
	assert_null(text);
	lb_model_free(&m);
}

static void test_lb_model_dedupes_and_sorts_backends_numerically(void **state)
{
	const char *const b[] = {"10.0.3.10", "10.0.3.9", "10.0.3.10", NULL};
	struct env_net_service s[] = {
		{.service_id = 1, .vip = "10.0.3.2", .backends = b}};
	struct env_net_state st = state_of(s, 1);
	struct lb_model m;
	(void)state;
	assert_int_equal(lb_model_build(&st, &m), 0);
	assert_int_equal(m.services[0].backend_count, 2);
	assert_string_equal(m.services[0].backends[0], "10.0.3.9");
	assert_string_equal(m.services[0].backends[1], "10.0.3.10");
	lb_model_free(&m);
}

static void test_lb_ingress_whole_table_text(void **state)
{
	struct env_port web_ports[] = {
		{.target = 80, .published = 30080, .proto = ENV_PORT_TCP},
		{.target = 53, .published = 30053, .proto = ENV_PORT_UDP}};
	struct env_port idle_ports[] = {
		{.target = 8080, .published = 30081, .proto = ENV_PORT_TCP}};
	struct env_net_service svcs[] = {
		{.service_id = 1,
		 .vip = "10.255.0.2",
		 .backends = web_b2,
		 .ports = web_ports,
		 .port_count = 2},
		{.service_id = 2,
		 .vip = "10.255.0.3",
		 .backends = NULL,
		 .ports = idle_ports,
		 .port_count = 1},
		{.service_id = 3,
		 .vip = "10.255.0.4",
		 .backends = db_b}, /* no published port */
	};
	struct env_net_state st = state_of(svcs, 3);
	struct lb_model m;
	char *text = NULL;
	(void)state;
	st.ingress = true;
	assert_int_equal(lb_model_build(&st, &m), 0);
	assert_int_equal(lb_ingress_script(NULL, &m, "br-ingress", "10.255.0.250", &text),
			 0);
	assert_string_equal(
		text,
		"table ip cswarm_ingress\n"
		"delete table ip cswarm_ingress\n"
		"table ip cswarm_ingress {\n"
		"\tmap ports {\n"
		"\t\ttype inet_proto . inet_service : verdict\n"
		"\t\telements = { tcp . 30080 : jump svc_0000000000000001, udp . 30053 : jump "
		"svc_0000000000000001, tcp . 30081 : jump svc_0000000000000002 }\n"
		"\t}\n"
		"\tset published {\n"
		"\t\ttype inet_proto . inet_service\n"
		"\t\telements = { tcp . 30080, udp . 30053, tcp . 30081 }\n"
		"\t}\n"
		"\tchain svc_0000000000000001 {\n"
		"\t\ttcp dport 30080 dnat to numgen random mod 2 map { 0 : 10.0.3.5, 1 : "
		"10.0.3.6 } : 80\n"
		"\t\tudp dport 30053 dnat to numgen random mod 2 map { 0 : 10.0.3.5, 1 : "
		"10.0.3.6 } : 53\n"
		"\t}\n"
		"\tchain svc_0000000000000002 {\n"
		"\t}\n"
		"\tchain pre {\n"
		"\t\ttype nat hook prerouting priority -100; policy accept;\n"
		"\t\tfib daddr type local meta l4proto . th dport vmap @ports\n"
		"\t}\n"
		"\tchain out {\n"
		"\t\ttype nat hook output priority -100; policy accept;\n"
		"\t\tfib daddr type local meta l4proto . th dport vmap @ports\n"
		"\t}\n"
		"\tchain post {\n"
		"\t\ttype nat hook postrouting priority 100; policy accept;\n"
		"\t\toifname \"br-ingress\" ct status dnat snat to 10.255.0.250\n"
		"\t}\n"
		"\tchain refuse {\n"
		"\t\ttype filter hook input priority 0; policy accept;\n"
		"\t\tmeta l4proto . th dport @published meta l4proto tcp reject with tcp reset\n"
		"\t\tmeta l4proto . th dport @published reject\n"
		"\t}\n"
		"}\n");
	free(text);
	assert_int_equal(lb_ingress_script(NULL, &m, "br-ingress", NULL, &text), 0);
	assert_non_null(
		strstr(text, "oifname \"br-ingress\" ct status dnat masquerade\n"));
	free(text);
	lb_model_free(&m);
}

static void test_lb_ingress_diff_ports_and_backends(void **state)
{
	struct env_port p1[] = {
		{.target = 80, .published = 30080, .proto = ENV_PORT_TCP}};
	struct env_port p2[] = {
		{.target = 80, .published = 30090, .proto = ENV_PORT_TCP}};
	struct env_net_service a[] = {
		{.service_id = 1, .backends = web_b2, .ports = p1, .port_count = 1}};
	struct env_net_service b[] = {
		{.service_id = 1, .backends = web_b1, .ports = p1, .port_count = 1}};
	struct env_net_service c[] = {
		{.service_id = 1, .backends = web_b1, .ports = p2, .port_count = 1}};
	struct env_net_state sa = state_of(a, 1), sb = state_of(b, 1),
			     sc = state_of(c, 1);
	struct lb_model ma, mb, mc;
	char *text = NULL;
	(void)state;
	assert_int_equal(lb_model_build(&sa, &ma), 0);
	assert_int_equal(lb_model_build(&sb, &mb), 0);
	assert_int_equal(lb_model_build(&sc, &mc), 0);
	assert_int_equal(lb_ingress_script(&ma, &mb, "br-ingress", "10.255.0.250", &text),
			 0);
	assert_string_equal(
		text,
		"flush chain ip cswarm_ingress svc_0000000000000001\n"
		"add rule ip cswarm_ingress svc_0000000000000001 tcp dport 30080 dnat to "
		"numgen random mod 1 map { 0 : 10.0.3.5 } : 80\n");
	free(text);
	assert_int_equal(lb_ingress_script(&mb, &mc, "br-ingress", "10.255.0.250", &text),
			 0);
	assert_string_equal(
		text,
		"delete element ip cswarm_ingress ports { tcp . 30080 }\n"
		"delete element ip cswarm_ingress published { tcp . 30080 }\n"
		"flush chain ip cswarm_ingress svc_0000000000000001\n"
		"add rule ip cswarm_ingress svc_0000000000000001 tcp dport 30090 dnat to "
		"numgen random mod 1 map { 0 : 10.0.3.5 } : 80\n"
		"add element ip cswarm_ingress ports { tcp . 30090 : jump svc_0000000000000001 }\n"
		"add element ip cswarm_ingress published { tcp . 30090 }\n");
	free(text);
	lb_model_free(&ma);
	lb_model_free(&mb);
	lb_model_free(&mc);
}

static const struct env_net_endpoint app_eps[] = {
	{.task_id = 1, .addr = "10.0.3.5", .node_ip = "192.168.1.1", .local = true},
	{.task_id = 2, .addr = "10.0.3.6", .node_ip = "192.168.1.2", .local = false},
	{.task_id = 3, .addr = "10.0.3.7", .node_ip = "192.168.1.1", .local = true},
};

static void test_lb_vip_node_table_text(void **state)
{
	struct env_net_service svcs[] = {
		{.service_id = 1, .name = "web", .vip = "10.0.3.2", .backends = web_b2},
	};
	struct env_net_state st = state_of(svcs, 1);
	struct lb_model m;
	char *text = NULL;
	(void)state;
	st.endpoints = app_eps, st.endpoint_count = 3;
	assert_int_equal(lb_model_build(&st, &m), 0);
	assert_int_equal(lb_vip_script(NULL, &m, "cs-br-4097", &text), 0);
	assert_string_equal(
		text,
		"table ip cswarm_vip_00000000000000ab\n"
		"delete table ip cswarm_vip_00000000000000ab\n"
		"table ip cswarm_vip_00000000000000ab {\n"
		"\tmap vips {\n"
		"\t\ttype ipv4_addr : verdict\n"
		"\t\telements = { 10.0.3.2 : jump svc_0000000000000001 }\n"
		"\t}\n"
		"\tset vipset {\n"
		"\t\ttype ipv4_addr\n"
		"\t\telements = { 10.0.3.2 }\n"
		"\t}\n"
		"\tchain svc_0000000000000001 {\n"
		"\t\tdnat to numgen random mod 2 map { 0 : 10.0.3.5, 1 : 10.0.3.6 }\n"
		"\t}\n"
		"\tset hairpin {\n"
		"\t\ttype ipv4_addr . ipv4_addr\n"
		"\t\telements = { 10.0.3.5 . 10.0.3.5, 10.0.3.7 . 10.0.3.7 }\n"
		"\t}\n"
		"\tchain pre {\n"
		"\t\ttype nat hook prerouting priority -100; policy accept;\n"
		"\t\tiifname \"cs-br-4097\" ip daddr vmap @vips\n"
		"\t}\n"
		"\tchain out {\n"
		"\t\ttype nat hook output priority -100; policy accept;\n"
		"\t\tip daddr vmap @vips\n"
		"\t}\n"
		"\tchain post {\n"
		"\t\ttype nat hook postrouting priority 100; policy accept;\n"
		"\t\toifname \"cs-br-4097\" ct status dnat ip saddr . ip daddr @hairpin "
		"masquerade\n"
		"\t}\n"
		"\tchain refuse {\n"
		"\t\ttype filter hook input priority 0; policy accept;\n"
		"\t\tip daddr @vipset meta l4proto tcp reject with tcp reset\n"
		"\t\tip daddr @vipset reject\n"
		"\t}\n"
		"}\n");
	free(text);
	assert_int_equal(lb_vip_script(NULL, &m, "br\"; flush ruleset", &text),
			 CS_EINVAL);
	assert_null(text);
	lb_model_free(&m);
}

static void test_lb_vip_node_diff_follows_local_tasks(void **state)
{
	struct env_net_service svcs[] = {
		{.service_id = 1, .name = "web", .vip = "10.0.3.2", .backends = web_b2},
	};
	struct env_net_endpoint eps2[] = {app_eps[1], app_eps[2]};
	struct env_net_state sa = state_of(svcs, 1), sb = state_of(svcs, 1);
	struct lb_model ma, mb;
	char *text = NULL;
	(void)state;
	sa.endpoints = app_eps, sa.endpoint_count = 3;
	eps2[0].local = true; /* 10.0.3.6 moved here, 10.0.3.5 went */
	sb.endpoints = eps2, sb.endpoint_count = 2;
	assert_int_equal(lb_model_build(&sa, &ma), 0);
	assert_int_equal(lb_model_build(&sb, &mb), 0);
	assert_int_equal(lb_vip_script(&ma, &mb, "cs-br-4097", &text), 0);
	assert_string_equal(text,
			    "delete element ip cswarm_vip_00000000000000ab hairpin { "
			    "10.0.3.5 . 10.0.3.5 }\n"
			    "add element ip cswarm_vip_00000000000000ab hairpin { "
			    "10.0.3.6 . 10.0.3.6 }\n");
	free(text);
	/* in a container's namespace the local tasks do not matter */
	assert_int_equal(lb_vip_script(&ma, &mb, NULL, &text), 0);
	assert_string_equal(text, "");
	free(text);
	lb_model_free(&ma);
	lb_model_free(&mb);
}

static void test_lb_ingress_without_node_address_uses_local_backends(void **state)
{
	struct env_port p1[] = {
		{.target = 80, .published = 30080, .proto = ENV_PORT_TCP}};
	struct env_net_service s[] = {
		{.service_id = 1, .backends = web_b3, .ports = p1, .port_count = 1}};
	struct env_net_state sa = state_of(s, 1), sb = state_of(s, 1);
	struct lb_model ma, mb;
	char *text = NULL;
	(void)state;
	sa.endpoints = app_eps, sa.endpoint_count = 3; /* 10.0.3.5 local */
	assert_int_equal(lb_model_build(&sa, &ma), 0);
	assert_int_equal(lb_model_build(&sb, &mb), 0); /* no local task */
	assert_int_equal(lb_ingress_script(NULL, &ma, "br-ingress", NULL, &text), 0);
	assert_non_null(
		strstr(text, "\tchain svc_0000000000000001 {\n"
			     "\t\ttcp dport 30080 dnat to numgen random mod 1 map { 0 : "
			     "10.0.3.5 } : 80\n\t}\n"));
	free(text);
	/* the local task goes: the chain empties (the port refuses here) */
	assert_int_equal(lb_ingress_script(&ma, &mb, "br-ingress", NULL, &text), 0);
	assert_string_equal(text, "flush chain ip cswarm_ingress svc_0000000000000001\n");
	free(text);
	/* with the node's own address every backend serves */
	assert_int_equal(lb_ingress_script(&ma, &mb, "br-ingress", "10.255.0.250", &text),
			 0);
	assert_string_equal(text, "");
	free(text);
	lb_model_free(&ma);
	lb_model_free(&mb);
}

/* ---------------------------------------------------------------- kernel */

/* run fn in a child in a network namespace of its own; its exit status */
static int in_new_netns(int (*fn)(void))
{
	pid_t pid = fork();
	int status = 0;
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) != 0)
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int child_syncs_and_diffs(void)
{
	struct env_net_service a[] = {
		{.service_id = 1, .vip = "10.0.3.2", .backends = web_b2},
		{.service_id = 2, .vip = "10.0.3.3", .backends = db_b},
	};
	struct env_net_service b[] = {
		{.service_id = 2, .vip = "10.0.3.2", .backends = web_b3},
		{.service_id = 7, .vip = "10.0.3.8", .backends = NULL},
	};
	struct env_port p[] = {{.target = 80, .published = 30080, .proto = ENV_PORT_TCP}};
	struct env_net_service ing[] = {{.service_id = 1,
					 .vip = "10.255.0.2",
					 .backends = web_b1,
					 .ports = p,
					 .port_count = 1}};
	struct env_net_state sa = state_of(a, 2), sb = state_of(b, 2),
			     si = state_of(ing, 1);
	struct lb_target t, ti;
	char err[LB_ERR_BYTES];
	if (lb_target_init_vip(&t, NULL, NULL))
		return 1;
	if (lb_target_sync(&t, &sa, err, sizeof err))
		return fprintf(stderr, "sync a: %s\n", err), 2;
	if (lb_target_sync(&t, &sb, err, sizeof err)) /* the difference */
		return fprintf(stderr, "sync b: %s\n", err), 3;
	if (lb_target_sync(&t, &sa, err, sizeof err))
		return fprintf(stderr, "sync a again: %s\n", err), 4;
	/* someone deleted the table behind our back: the next sync writes it
	 * all again instead of failing */
	if (lb_apply(NULL, "delete table ip cswarm_vip_00000000000000ab\n", err,
		     sizeof err))
		return fprintf(stderr, "delete: %s\n", err), 5;
	if (lb_target_sync(&t, &sb, err, sizeof err))
		return fprintf(stderr, "sync after loss: %s\n", err), 6;
	if (lb_target_clear(&t, 0xab, err, sizeof err))
		return fprintf(stderr, "clear: %s\n", err), 7;
	/* node mode on a bridge that need not exist (iifname matches names) */
	sa.endpoints = app_eps, sa.endpoint_count = 3;
	if (lb_target_init_vip(&t, NULL, "cs-br-4097"))
		return 11;
	if (lb_target_sync(&t, &sa, err, sizeof err))
		return fprintf(stderr, "node a: %s\n", err), 12;
	sb.endpoints = &app_eps[1], sb.endpoint_count = 2;
	if (lb_target_sync(&t, &sb, err, sizeof err))
		return fprintf(stderr, "node b: %s\n", err), 13;
	if (lb_target_clear(&t, 0xab, err, sizeof err))
		return fprintf(stderr, "node clear: %s\n", err), 14;
	if (lb_target_init_ingress(&ti, NULL, "br-ingress", "10.255.0.250"))
		return 8;
	if (lb_target_sync(&ti, &si, err, sizeof err))
		return fprintf(stderr, "ingress: %s\n", err), 9;
	if (lb_target_clear(&ti, 0, err, sizeof err))
		return fprintf(stderr, "ingress clear: %s\n", err), 10;
	return 0;
}

static void test_lb_kernel_takes_the_text(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_new_netns(child_syncs_and_diffs), 0);
}

static int child_reports_nft_error(void)
{
	char err[LB_ERR_BYTES];
	int rc = lb_apply(NULL, "add rule ip nosuchtable nosuchchain accept\n", err,
			  sizeof err);
	if (rc != CS_EEXEC)
		return 1;
	if (!strstr(err, "No such file or directory"))
		return fprintf(stderr, "err: %s\n", err), 2;
	rc = lb_apply("/nonexistent/ns", "table ip x\n", err, sizeof err);
	if (rc != CS_EEXEC || !strstr(err, "/nonexistent/ns"))
		return 3;
	return 0;
}

static void test_lb_apply_reports_nft_error_text(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(in_new_netns(child_reports_nft_error), 0);
}

/* The routing mesh through Docker's filter: exactly one rule of ours in
 * DOCKER-USER per ingress bridge, found by its comment; closing removes
 * every one (also duplicates a race left). */
static void test_lb_forward_script_keeps_exactly_one(void **state)
{
	const char *none = "table ip filter {\n\tchain DOCKER-USER { # handle 7\n"
			   "\t\tcounter packets 0 bytes 0 return # handle 9\n\t}\n}\n";
	const char *two =
		"table ip filter {\n\tchain DOCKER-USER { # handle 7\n"
		"\t\toifname \"cs-br-4096\" ct status dnat counter packets 3 bytes 180 "
		"accept comment \"cswarm-mesh cs-br-4096\" # handle 12\n"
		"\t\toifname \"cs-br-4\" ct status dnat counter packets 0 bytes 0 "
		"accept comment \"cswarm-mesh cs-br-4\" # handle 13\n"
		"\t\toifname \"cs-br-4096\" ct status dnat counter packets 0 bytes 0 "
		"accept comment \"cswarm-mesh cs-br-4096\" # handle 14\n"
		"\t\tiifname \"cs-br-4096\" ct status dnat counter packets 0 bytes 0 "
		"accept comment \"cswarm-mesh-reply cs-br-4096\" # handle 15\n"
		"\t\tcounter packets 0 bytes 0 return # handle 9\n\t}\n}\n";
	char *text = NULL;
	(void)state;
	assert_int_equal(lb_forward_script(none, "cs-br-4096", true, &text), 0);
	assert_string_equal(text,
			    "insert rule ip filter DOCKER-USER oifname \"cs-br-4096\" "
			    "ct status dnat counter accept comment \"cswarm-mesh "
			    "cs-br-4096\"\n"
			    "insert rule ip filter DOCKER-USER iifname \"cs-br-4096\" "
			    "ct status dnat counter accept comment \"cswarm-mesh-reply "
			    "cs-br-4096\"\n");
	free(text);
	assert_int_equal(lb_forward_script(none, "cs-br-4096", false, &text), 0);
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(lb_forward_script(two, "cs-br-4096", true, &text), 0);
	assert_string_equal(text, "delete rule ip filter DOCKER-USER handle 14\n");
	free(text);
	assert_int_equal(lb_forward_script(two, "cs-br-4096", false, &text), 0);
	assert_string_equal(text, "delete rule ip filter DOCKER-USER handle 12\n"
				  "delete rule ip filter DOCKER-USER handle 14\n"
				  "delete rule ip filter DOCKER-USER handle 15\n");
	free(text);
	assert_int_equal(lb_forward_script(two, "br\" accept", true, &text), CS_EINVAL);
}

static int child_forward_open_close(void)
{
	char err[LB_ERR_BYTES];
	char *o;
	/* no Docker filter here: nothing to open, no error */
	if (lb_forward_open("cs-br-4096", err, sizeof err))
		return fprintf(stderr, "open without docker: %s\n", err), 1;
	/* Docker's chain, made as Docker makes it */
	if (system("iptables -N DOCKER-USER && iptables -A DOCKER-USER -j RETURN && "
		   "iptables -I FORWARD -j DOCKER-USER") != 0)
		return 2;
	if (lb_forward_open("cs-br-4096", err, sizeof err) ||
	    lb_forward_open("cs-br-4096", err, sizeof err))
		return fprintf(stderr, "open: %s\n", err), 3;
	o = NULL;
	{
		FILE *f = popen("nft list chain ip filter DOCKER-USER", "r");
		size_t n;
		if (!f)
			return 4;
		o = calloc(1, 8192);
		n = o ? fread(o, 1, 8191, f) : 0;
		(void)n;
		pclose(f);
	}
	if (!o)
		return 5;
	{
		const char *first = strstr(o, "cswarm-mesh cs-br-4096");
		const char *reply = strstr(o, "cswarm-mesh-reply cs-br-4096");
		bool one = first && !strstr(first + 1, "cswarm-mesh cs-br-4096") &&
			   reply && !strstr(reply + 1, "cswarm-mesh-reply cs-br-4096");
		bool before_return = first && strstr(first, "return");
		if (!one || !before_return)
			return fprintf(stderr, "chain: %s\n", o), free(o), 6;
	}
	free(o);
	if (lb_forward_close("cs-br-4096", err, sizeof err))
		return fprintf(stderr, "close: %s\n", err), 7;
	if (system("nft list chain ip filter DOCKER-USER | grep -q cswarm-mesh") == 0)
		return 8;
	return 0;
}

static void test_lb_forward_open_close_in_docker_user(void **state)
{
	(void)state;
	if (geteuid() != 0 || system("iptables --version >/dev/null 2>&1") != 0)
		skip();
	assert_int_equal(in_new_netns(child_forward_open_close), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lb_forward_script_keeps_exactly_one),
		cmocka_unit_test(test_lb_forward_open_close_in_docker_user),
		cmocka_unit_test(test_lb_vip_whole_table_text),
		cmocka_unit_test(test_lb_vip_empty_network_has_empty_maps),
		cmocka_unit_test(test_lb_vip_backend_change_rewrites_one_chain),
		cmocka_unit_test(test_lb_vip_services_come_and_go),
		cmocka_unit_test(test_lb_model_rejects_bad_states),
		cmocka_unit_test(test_lb_model_dedupes_and_sorts_backends_numerically),
		cmocka_unit_test(test_lb_ingress_whole_table_text),
		cmocka_unit_test(test_lb_ingress_diff_ports_and_backends),
		cmocka_unit_test(test_lb_vip_node_table_text),
		cmocka_unit_test(test_lb_vip_node_diff_follows_local_tasks),
		cmocka_unit_test(
			test_lb_ingress_without_node_address_uses_local_backends),
		cmocka_unit_test(test_lb_kernel_takes_the_text),
		cmocka_unit_test(test_lb_apply_reports_nft_error_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
