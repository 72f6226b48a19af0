/* lb: VIP and ingress load balancing as nftables rules (see lb.h). */
#define _GNU_SOURCE /* setns */
#include "net/lb.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "core/errors.h"

/* ---------------------------------------------------------------- text */

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int err; /* first error; later appends do nothing */
};

static void sb_add(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = CS_EINVAL;
			return;
		}
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t want = b->len + (size_t)n + 1;
		if (want > LB_SCRIPT_BYTES_MAX) {
			b->err = CS_ELIMIT;
			return;
		}
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < want)
			cap *= 2;
		if (cap > LB_SCRIPT_BYTES_MAX)
			cap = LB_SCRIPT_BYTES_MAX;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = CS_ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
		if (b->len == 0)
			b->p[0] = '\0';
	}
}

/* sb_finish hands the text to *text ("" when nothing was written) or frees
 * it and returns the error. */
static int sb_finish(struct sbuf *b, char **text)
{
	if (!b->err && !b->p) {
		b->p = malloc(1);
		if (!b->p)
			b->err = CS_ENOMEM;
		else
			b->p[0] = '\0';
	}
	if (b->err) {
		free(b->p);
		*text = NULL;
		return b->err;
	}
	*text = b->p;
	return 0;
}

/* ---------------------------------------------------------------- model */

static int addr_canon(const char *in, char out[16])
{
	struct in_addr a;
	if (!in || inet_pton(AF_INET, in, &a) != 1)
		return CS_EINVAL;
	if (!inet_ntop(AF_INET, &a, out, 16))
		return CS_EINVAL;
	return 0;
}

static uint32_t addr_value(const char a[16])
{
	struct in_addr v;
	int rc = inet_pton(AF_INET, a, &v);
	assert(rc == 1);
	(void)rc;
	return ntohl(v.s_addr);
}

static int cmp_addr(const void *x, const void *y)
{
	uint32_t a = addr_value(x), b = addr_value(y);
	return a < b ? -1 : a > b;
}

static int cmp_port(const void *x, const void *y)
{
	const struct lb_port *a = x, *b = y;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return a->published < b->published ? -1 : a->published > b->published;
}

void lb_model_free(struct lb_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->service_count; i++) {
		free(m->services[i].backends);
		free(m->services[i].ports);
	}
	free(m->services);
	free(m->local);
	memset(m, 0, sizeof *m);
}

static int service_build(const struct env_net_service *in, struct lb_service *out)
{
	size_t n = 0;
	out->service_id = in->service_id;
	if (in->vip) {
		if (addr_canon(in->vip, out->vip))
			return CS_EINVAL;
	}
	if (in->backends)
		while (in->backends[n])
			if (++n > LB_BACKENDS_MAX)
				return CS_ELIMIT;
	if (n) {
		out->backends = calloc(n, sizeof *out->backends);
		if (!out->backends)
			return CS_ENOMEM;
		for (size_t i = 0; i < n; i++)
			if (addr_canon(in->backends[i], out->backends[i]))
				return CS_EINVAL;
		qsort(out->backends, n, sizeof *out->backends, cmp_addr);
		/* two tasks never share an address; a repeat is the same one */
		size_t k = 1;
		for (size_t i = 1; i < n; i++)
			if (strcmp(out->backends[i], out->backends[k - 1]) != 0)
				memcpy(out->backends[k++], out->backends[i], 16);
		n = k;
	}
	out->backend_count = n;
	if (in->port_count > LB_PORTS_MAX)
		return CS_ELIMIT;
	if (in->port_count && !in->ports)
		return CS_EINVAL;
	if (in->port_count) {
		out->ports = calloc(in->port_count, sizeof *out->ports);
		if (!out->ports)
			return CS_ENOMEM;
	}
	for (size_t i = 0; i < in->port_count; i++) {
		const struct env_port *p = &in->ports[i];
		if (p->published == 0 || p->published > 65535 || p->target == 0 ||
		    p->target > 65535)
			return CS_EINVAL;
		if (p->proto != ENV_PORT_TCP && p->proto != ENV_PORT_UDP &&
		    p->proto != ENV_PORT_SCTP)
			return CS_EINVAL;
		out->ports[i] = (struct lb_port){(uint16_t)p->published,
						 (uint16_t)p->target, p->proto};
	}
	out->port_count = in->port_count;
	if (out->port_count)
		qsort(out->ports, out->port_count, sizeof *out->ports, cmp_port);
	return 0;
}

/* one (proto, published) pair across the whole network at most once: the
 * kernel's map would refuse it, and two services cannot own one port */
static int ports_unique(const struct lb_model *m)
{
	size_t n = 0, k = 0;
	int rc = 0;
	for (size_t i = 0; i < m->service_count; i++)
		n += m->services[i].port_count;
	if (n < 2)
		return 0;
	struct lb_port *all = malloc(n * sizeof *all);
	if (!all)
		return CS_ENOMEM;
	for (size_t i = 0; i < m->service_count; i++)
		for (size_t j = 0; j < m->services[i].port_count; j++)
			all[k++] = m->services[i].ports[j];
	qsort(all, n, sizeof *all, cmp_port);
	for (size_t i = 1; i < n; i++)
		if (cmp_port(&all[i - 1], &all[i]) == 0)
			rc = CS_EINVAL;
	free(all);
	return rc;
}

/* the network's endpoints on this node, canonical, ascending, once each */
static int locals_build(const struct env_net_state *st, struct lb_model *out)
{
	size_t n = 0;
	if (st->endpoint_count > LB_ENDPOINTS_MAX)
		return CS_ELIMIT;
	if (st->endpoint_count && !st->endpoints)
		return CS_EINVAL;
	for (size_t i = 0; i < st->endpoint_count; i++)
		n += st->endpoints[i].local;
	if (n == 0)
		return 0;
	out->local = calloc(n, sizeof *out->local);
	if (!out->local)
		return CS_ENOMEM;
	n = 0;
	for (size_t i = 0; i < st->endpoint_count; i++)
		if (st->endpoints[i].local &&
		    addr_canon(st->endpoints[i].addr, out->local[n++]))
			return CS_EINVAL;
	qsort(out->local, n, sizeof *out->local, cmp_addr);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (strcmp(out->local[i], out->local[k - 1]) != 0)
			memcpy(out->local[k++], out->local[i], 16);
	out->local_count = k;
	return 0;
}

int lb_model_build(const struct env_net_state *st, struct lb_model *out)
{
	int rc = 0;
	memset(out, 0, sizeof *out);
	if (!st || (st->service_count && !st->services))
		return CS_EINVAL;
	if (st->service_count > LB_SERVICES_MAX)
		return CS_ELIMIT;
	out->network_id = st->network_id;
	if (st->service_count) {
		out->services = calloc(st->service_count, sizeof *out->services);
		if (!out->services)
			return CS_ENOMEM;
	}
	for (size_t i = 0; i < st->service_count; i++) {
		if (i && st->services[i].service_id <= st->services[i - 1].service_id) {
			rc = CS_EINVAL;
			goto fail_free;
		}
		out->service_count = i + 1; /* so that free sees what it built */
		rc = service_build(&st->services[i], &out->services[i]);
		if (rc)
			goto fail_free;
	}
	rc = ports_unique(out);
	if (!rc)
		rc = locals_build(st, out);
	if (rc)
		goto fail_free;
	return 0;
fail_free:
	lb_model_free(out);
	return rc;
}

static bool model_is_local(const struct lb_model *m, const char addr[16])
{
	return m->local_count && bsearch(addr, m->local, m->local_count, sizeof *m->local,
					 cmp_addr) != NULL;
}

static bool locals_equal(const struct lb_model *a, const struct lb_model *b)
{
	if (a->local_count != b->local_count)
		return false;
	for (size_t i = 0; i < a->local_count; i++)
		if (strcmp(a->local[i], b->local[i]) != 0)
			return false;
	return true;
}

/* ---------------------------------------------------------------- scripts */

static const char *proto_name(enum env_port_proto p)
{
	switch (p) {
	case ENV_PORT_TCP: return "tcp";
	case ENV_PORT_UDP: return "udp";
	case ENV_PORT_SCTP: return "sctp";
	}
	return "tcp";
}

void lb_vip_table_name(uint64_t network_id, char *buf, size_t size)
{
	assert(size >= 32);
	snprintf(buf, size, "cswarm_vip_%016" PRIx64, network_id);
}

#define LB_INGRESS_TABLE "cswarm_ingress"

/* What one script is written for. */
struct gen {
	struct sbuf *b;
	const char *table;
	bool ingress;
	bool local_only;  /* ingress without a node address: local backends only */
	bool rewrite_all; /* local_only and the local endpoints changed */
	const struct lb_model *cur;
};

/* the backends a chain spreads over: all, or (local_only) this node's */
static size_t chain_backends(const struct gen *g, const struct lb_service *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->backend_count; i++)
		n += !g->local_only || model_is_local(g->cur, s->backends[i]);
	return n;
}

/* a backend list as an nft anonymous map for numgen: "{ 0 : a, 1 : b }" */
static void sb_numgen(const struct gen *g, const struct lb_service *s)
{
	size_t k = 0;
	sb_add(g->b, "dnat to numgen random mod %zu map { ", chain_backends(g, s));
	for (size_t i = 0; i < s->backend_count; i++) {
		if (g->local_only && !model_is_local(g->cur, s->backends[i]))
			continue;
		sb_add(g->b, "%s%zu : %s", k ? ", " : "", k, s->backends[i]);
		k++;
	}
	assert(k == chain_backends(g, s)); /* mod N has an entry for each of 0..N-1 */
	sb_add(g->b, " }");
}

/* the rules of a service's chain, each as "add rule ip T svc_X ...\n"
 * (as_add: a difference) or as a line of the chain's body (whole table) */
static void sb_chain_rules(const struct gen *g, const struct lb_service *s, bool as_add)
{
	if (chain_backends(g, s) == 0)
		return; /* no DNAT: the refuse rules answer it */
	size_t rules = g->ingress ? s->port_count : 1;
	for (size_t i = 0; i < rules; i++) {
		if (as_add)
			sb_add(g->b, "add rule ip %s svc_%016" PRIx64 " ", g->table,
			       s->service_id);
		else
			sb_add(g->b, "\t\t");
		if (g->ingress)
			sb_add(g->b, "%s dport %u ", proto_name(s->ports[i].proto),
			       s->ports[i].published);
		sb_numgen(g, s);
		if (g->ingress)
			sb_add(g->b, " : %u", s->ports[i].target);
		sb_add(g->b, "\n");
	}
}

static bool svc_present(const struct lb_service *s, bool ingress)
{
	return ingress ? s->port_count > 0 : s->vip[0] != '\0';
}

static bool backends_equal(const struct lb_service *a, const struct lb_service *b)
{
	if (a->backend_count != b->backend_count)
		return false;
	for (size_t i = 0; i < a->backend_count; i++)
		if (strcmp(a->backends[i], b->backends[i]) != 0)
			return false;
	return true;
}

static bool ports_equal(const struct lb_service *a, const struct lb_service *b)
{
	if (a->port_count != b->port_count)
		return false;
	for (size_t i = 0; i < a->port_count; i++)
		if (cmp_port(&a->ports[i], &b->ports[i]) != 0 ||
		    a->ports[i].target != b->ports[i].target)
			return false;
	return true;
}

/* keys: what the service's map elements are keyed by (its VIP, or its
 * published ports) */
static bool keys_equal(const struct lb_service *a, const struct lb_service *b,
		       bool ingress)
{
	if (!ingress)
		return strcmp(a->vip, b->vip) == 0;
	if (a->port_count != b->port_count)
		return false;
	for (size_t i = 0; i < a->port_count; i++)
		if (cmp_port(&a->ports[i], &b->ports[i]) != 0)
			return false;
	return true;
}

/* "add|delete element" lines for s's keys in both maps */
static void sb_elements(const struct gen *g, const struct lb_service *s, bool add)
{
	const char *verb = add ? "add" : "delete";
	const char *t = g->table;
	if (!g->ingress) {
		if (add)
			sb_add(g->b,
			       "add element ip %s vips { %s : jump svc_%016" PRIx64
			       " }\n",
			       t, s->vip, s->service_id);
		else
			sb_add(g->b, "delete element ip %s vips { %s }\n", t, s->vip);
		sb_add(g->b, "%s element ip %s vipset { %s }\n", verb, t, s->vip);
		return;
	}
	for (size_t i = 0; i < s->port_count; i++) {
		const struct lb_port *p = &s->ports[i];
		if (add)
			sb_add(g->b,
			       "add element ip %s ports { %s . %u : jump svc_%016" PRIx64
			       " }\n",
			       t, proto_name(p->proto), p->published, s->service_id);
		else
			sb_add(g->b, "delete element ip %s ports { %s . %u }\n", t,
			       proto_name(p->proto), p->published);
		sb_add(g->b, "%s element ip %s published { %s . %u }\n", verb, t,
		       proto_name(p->proto), p->published);
	}
}

/* The difference between two models of one table, in an order the kernel
 * accepts in one transaction: elements that go are deleted first (so that a
 * key may move between services), then chains are added or rewritten, then
 * new elements added (they jump to chains that exist by then), and chains
 * that go are deleted last (nothing refers to them any more). */
enum diff_pass {
	PASS_DEL_ELEMENTS,
	PASS_CHAINS,
	PASS_ADD_ELEMENTS,
	PASS_DEL_CHAINS,
	PASS_COUNT
};

static void diff_one(const struct gen *g, const struct lb_service *o,
		     const struct lb_service *c, enum diff_pass pass)
{
	bool op = o && svc_present(o, g->ingress);
	bool cp = c && svc_present(c, g->ingress);
	bool keys_same = op && cp && keys_equal(o, c, g->ingress);
	switch (pass) {
	case PASS_DEL_ELEMENTS:
		if (op && !keys_same)
			sb_elements(g, o, false);
		break;
	case PASS_CHAINS:
		if (cp && !op) {
			sb_add(g->b, "add chain ip %s svc_%016" PRIx64 "\n", g->table,
			       c->service_id);
			sb_chain_rules(g, c, true);
		} else if (cp && op &&
			   (g->rewrite_all || !backends_equal(o, c) ||
			    (g->ingress && !ports_equal(o, c)))) {
			sb_add(g->b, "flush chain ip %s svc_%016" PRIx64 "\n", g->table,
			       c->service_id);
			sb_chain_rules(g, c, true);
		}
		break;
	case PASS_ADD_ELEMENTS:
		if (cp && !keys_same)
			sb_elements(g, c, true);
		break;
	case PASS_DEL_CHAINS:
		if (op && !cp) {
			sb_add(g->b, "flush chain ip %s svc_%016" PRIx64 "\n", g->table,
			       o->service_id);
			sb_add(g->b, "delete chain ip %s svc_%016" PRIx64 "\n", g->table,
			       o->service_id);
		}
		break;
	case PASS_COUNT: break;
	}
}

/* the hairpin set's difference (node VIP tables): "A . A" per local task */
static void sb_hairpin_diff(const struct gen *g, const struct lb_model *old, bool add)
{
	const struct lb_model *from = add ? g->cur : old, *other = add ? old : g->cur;
	for (size_t i = 0; i < from->local_count; i++)
		if (!model_is_local(other, from->local[i]))
			sb_add(g->b, "%s element ip %s hairpin { %s . %s }\n",
			       add ? "add" : "delete", g->table, from->local[i],
			       from->local[i]);
}

static void sb_diff(const struct gen *g, const struct lb_model *old, bool hairpin)
{
	const struct lb_model *cur = g->cur;
	for (int pass = 0; pass < PASS_COUNT; pass++) {
		size_t i = 0, j = 0;
		if (hairpin && pass == PASS_DEL_ELEMENTS)
			sb_hairpin_diff(g, old, false);
		while (i < old->service_count || j < cur->service_count) {
			const struct lb_service *o =
				i < old->service_count ? &old->services[i] : NULL;
			const struct lb_service *c =
				j < cur->service_count ? &cur->services[j] : NULL;
			if (o && c && o->service_id == c->service_id) {
				diff_one(g, o, c, (enum diff_pass)pass);
				i++, j++;
			} else if (o && (!c || o->service_id < c->service_id)) {
				diff_one(g, o, NULL, (enum diff_pass)pass);
				i++;
			} else {
				diff_one(g, NULL, c, (enum diff_pass)pass);
				j++;
			}
		}
		if (hairpin && pass == PASS_ADD_ELEMENTS)
			sb_hairpin_diff(g, old, true);
	}
}

/* the service chains and the two maps' elements of a whole table */
static void sb_whole_services(const struct gen *g)
{
	const struct lb_model *cur = g->cur;
	const char *map = g->ingress ? "ports" : "vips";
	const char *set = g->ingress ? "published" : "vipset";
	const char *type = g->ingress ? "inet_proto . inet_service" : "ipv4_addr";
	for (int m = 0; m < 2; m++) {
		bool any = false;
		sb_add(g->b, "\t%s %s {\n\t\ttype %s%s\n", m ? "set" : "map",
		       m ? set : map, type, m ? "" : " : verdict");
		for (size_t i = 0; i < cur->service_count; i++) {
			const struct lb_service *s = &cur->services[i];
			if (!svc_present(s, g->ingress))
				continue;
			size_t keys = g->ingress ? s->port_count : 1;
			for (size_t k = 0; k < keys; k++) {
				sb_add(g->b, "%s", any ? ", " : "\t\telements = { ");
				any = true;
				if (g->ingress)
					sb_add(g->b, "%s . %u",
					       proto_name(s->ports[k].proto),
					       s->ports[k].published);
				else
					sb_add(g->b, "%s", s->vip);
				if (!m)
					sb_add(g->b, " : jump svc_%016" PRIx64,
					       s->service_id);
			}
		}
		sb_add(g->b, "%s\t}\n", any ? " }\n" : "");
	}
	for (size_t i = 0; i < cur->service_count; i++) {
		const struct lb_service *s = &cur->services[i];
		if (!svc_present(s, g->ingress))
			continue;
		sb_add(g->b, "\tchain svc_%016" PRIx64 " {\n", s->service_id);
		sb_chain_rules(g, s, false);
		sb_add(g->b, "\t}\n");
	}
}

static bool bridge_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int lb_vip_script(const struct lb_model *old, const struct lb_model *cur,
		  const char *bridge, char **text)
{
	struct sbuf b = {0};
	char table[32];
	struct gen g = {.b = &b, .table = table, .cur = cur};
	assert(cur);
	*text = NULL;
	if (old)
		assert(old->network_id == cur->network_id);
	if (bridge && !bridge_ok(bridge))
		return CS_EINVAL;
	lb_vip_table_name(cur->network_id, table, sizeof table);
	if (old) {
		sb_diff(&g, old, bridge != NULL);
		return sb_finish(&b, text);
	}
	/* add (a no-op when it is there) then delete: whatever was there
	 * goes, in the same transaction as the new table comes */
	sb_add(&b, "table ip %s\ndelete table ip %s\ntable ip %s {\n", table, table,
	       table);
	sb_whole_services(&g);
	if (!bridge) {
		sb_add(&b,
		       "\tchain out {\n\t\ttype nat hook output priority -100; policy accept;\n"
		       "\t\tip daddr vmap @vips\n\t}\n");
		/* after DNAT a packet still addressed to a VIP had no backend */
		sb_add(&b,
		       "\tchain refuse {\n\t\ttype filter hook output priority 0; policy accept;\n"
		       "\t\tip daddr @vipset meta l4proto tcp reject with tcp reset\n"
		       "\t\tip daddr @vipset reject\n\t}\n}\n");
		return sb_finish(&b, text);
	}
	sb_add(&b, "\tset hairpin {\n\t\ttype ipv4_addr . ipv4_addr\n");
	for (size_t i = 0; i < cur->local_count; i++)
		sb_add(&b, "%s%s . %s", i ? ", " : "\t\telements = { ", cur->local[i],
		       cur->local[i]);
	sb_add(&b, "%s\t}\n", cur->local_count ? " }\n" : "");
	/* from the network's tasks, and from the node itself */
	sb_add(&b,
	       "\tchain pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n"
	       "\t\tiifname \"%s\" ip daddr vmap @vips\n\t}\n",
	       bridge);
	sb_add(&b,
	       "\tchain out {\n\t\ttype nat hook output priority -100; policy accept;\n"
	       "\t\tip daddr vmap @vips\n\t}\n");
	/* a task given itself: its answer would never pass the bridge */
	sb_add(&b,
	       "\tchain post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n"
	       "\t\toifname \"%s\" ct status dnat ip saddr . ip daddr @hairpin masquerade\n\t}\n",
	       bridge);
	/* a VIP is an address of the bridge: one not DNATed arrives here */
	sb_add(&b,
	       "\tchain refuse {\n\t\ttype filter hook input priority 0; policy accept;\n"
	       "\t\tip daddr @vipset meta l4proto tcp reject with tcp reset\n"
	       "\t\tip daddr @vipset reject\n\t}\n}\n");
	return sb_finish(&b, text);
}

int lb_ingress_script(const struct lb_model *old, const struct lb_model *cur,
		      const char *bridge, const char *snat_addr, char **text)
{
	struct sbuf b = {0};
	char snat[16];
	struct gen g = {.b = &b, .table = LB_INGRESS_TABLE, .ingress = true, .cur = cur};
	assert(cur);
	*text = NULL;
	if (!bridge_ok(bridge))
		return CS_EINVAL;
	if (snat_addr && addr_canon(snat_addr, snat))
		return CS_EINVAL;
	g.local_only = snat_addr == NULL;
	if (old) {
		g.rewrite_all = g.local_only && !locals_equal(old, cur);
		sb_diff(&g, old, false);
		return sb_finish(&b, text);
	}
	const char *table = LB_INGRESS_TABLE;
	sb_add(&b, "table ip %s\ndelete table ip %s\ntable ip %s {\n", table, table,
	       table);
	sb_whole_services(&g);
	/* a published port on any of this node's addresses, from outside
	 * (prerouting) or from the node itself (output) */
	sb_add(&b,
	       "\tchain pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n"
	       "\t\tfib daddr type local meta l4proto . th dport vmap @ports\n\t}\n");
	sb_add(&b,
	       "\tchain out {\n\t\ttype nat hook output priority -100; policy accept;\n"
	       "\t\tfib daddr type local meta l4proto . th dport vmap @ports\n\t}\n");
	/* the answer must come back through this node, where the DNAT is */
	sb_add(&b,
	       "\tchain post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n");
	if (snat_addr)
		sb_add(&b, "\t\toifname \"%s\" ct status dnat snat to %s\n\t}\n", bridge,
		       snat);
	else
		sb_add(&b, "\t\toifname \"%s\" ct status dnat masquerade\n\t}\n", bridge);
	/* DNATed traffic is forwarded; what reaches input had no backend */
	sb_add(&b,
	       "\tchain refuse {\n\t\ttype filter hook input priority 0; policy accept;\n"
	       "\t\tmeta l4proto . th dport @published meta l4proto tcp reject with tcp reset\n"
	       "\t\tmeta l4proto . th dport @published reject\n\t}\n}\n");
	return sb_finish(&b, text);
}

int lb_vip_remove_script(uint64_t network_id, char **text)
{
	struct sbuf b = {0};
	char table[32];
	lb_vip_table_name(network_id, table, sizeof table);
	sb_add(&b, "table ip %s\ndelete table ip %s\n", table, table);
	return sb_finish(&b, text);
}

int lb_ingress_remove_script(char **text)
{
	struct sbuf b = {0};
	sb_add(&b, "table ip %s\ndelete table ip %s\n", LB_INGRESS_TABLE,
	       LB_INGRESS_TABLE);
	return sb_finish(&b, text);
}

/* ---------------------------------------------------------------- apply */

static void set_err(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!err || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

/* nft_run runs script in the calling thread's current namespace; a fresh
 * context each time, so that its netlink socket is opened here */
static int nft_run(const char *script, char *err, size_t err_size)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc;
	if (!nft) {
		set_err(err, err_size, "nft_ctx_new failed");
		return CS_EEXEC;
	}
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		nft_ctx_free(nft);
		set_err(err, err_size, "nft: cannot buffer output");
		return CS_EEXEC;
	}
	rc = nft_run_cmd_from_buffer(nft, script);
	if (rc != 0) {
		const char *e = nft_ctx_get_error_buffer(nft);
		set_err(err, err_size, "%s", e && *e ? e : "nft: the transaction failed");
		/* nft's text ends with a newline and a caret line; keep it */
		nft_ctx_free(nft);
		return CS_EEXEC;
	}
	nft_ctx_free(nft);
	return 0;
}

/* nft_list runs one listing command (with handles) and returns nft's
 * output (the caller frees it), or NULL when nft refused it (err: why) */
static char *nft_list(const char *cmd, char *err, size_t err_size)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	char *out = NULL;
	if (!nft) {
		set_err(err, err_size, "nft_ctx_new failed");
		return NULL;
	}
	nft_ctx_output_set_flags(nft, NFT_CTX_OUTPUT_HANDLE);
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		set_err(err, err_size, "nft: cannot buffer output");
	} else if (nft_run_cmd_from_buffer(nft, cmd) != 0) {
		const char *e = nft_ctx_get_error_buffer(nft);
		set_err(err, err_size, "%s", e && *e ? e : "nft: the listing failed");
	} else {
		const char *o = nft_ctx_get_output_buffer(nft);
		out = strdup(o ? o : "");
		if (!out)
			set_err(err, err_size, "out of memory");
	}
	nft_ctx_free(nft);
	return out;
}

#define LB_FWD_CHAIN "ip filter DOCKER-USER"

/* the rules of one direction (dir 0: into bridge, 1: answers out of it) */
static void forward_one(struct sbuf *b, const char *listing, const char *bridge,
			bool open, int dir)
{
	char tag[64];
	const char *at = listing;
	bool have = false;
	snprintf(tag, sizeof tag, "comment \"cswarm-mesh%s %s\"", dir ? "-reply" : "",
		 bridge);
	/* each of our rules (there may be several: two daemons' races) */
	while (at && (at = strstr(at, tag)) != NULL) {
		const char *eol = strchr(at, '\n');
		const char *h = strstr(at, "# handle ");
		unsigned long long handle;
		at += strlen(tag);
		if (!h || (eol && h > eol) || sscanf(h, "# handle %llu", &handle) != 1)
			continue;
		if (open && !have) {
			have = true; /* the first one stays */
			continue;
		}
		sb_add(b, "delete rule %s handle %llu\n", LB_FWD_CHAIN, handle);
	}
	if (open && !have)
		sb_add(b, "insert rule %s %s \"%s\" ct status dnat counter accept %s\n",
		       LB_FWD_CHAIN, dir ? "iifname" : "oifname", bridge, tag);
}

int lb_forward_script(const char *listing, const char *bridge, bool open, char **text)
{
	struct sbuf b = {0};
	*text = NULL;
	if (!bridge_ok(bridge))
		return CS_EINVAL;
	/* the way in (to the bridge) and the answers out of it: on a node
	 * with no task of the network Docker has no rule for the bridge */
	for (int dir = 0; dir < 2; dir++)
		forward_one(&b, listing, bridge, open, dir);
	return sb_finish(&b, text);
}

/* what lb_forward_open/_close do: the listing, then the difference */
static int forward_sync(const char *bridge, bool open, char *err, size_t err_size)
{
	char *listing, *text = NULL;
	int rc;
	if (err && err_size)
		err[0] = '\0';
	if (!bridge_ok(bridge))
		return CS_EINVAL;
	listing = nft_list("list chain " LB_FWD_CHAIN, err, err_size);
	if (!listing) {
		/* no Docker filter here (no such table or chain): nothing
		 * drops what the mesh forwards, nothing to open */
		if (err && err_size)
			err[0] = '\0';
		return 0;
	}
	rc = lb_forward_script(listing, bridge, open, &text);
	free(listing);
	if (rc == 0)
		rc = lb_apply(NULL, text, err, err_size);
	free(text);
	return rc;
}

int lb_forward_open(const char *bridge, char *err, size_t err_size)
{
	return forward_sync(bridge, true, err, err_size);
}

int lb_forward_close(const char *bridge, char *err, size_t err_size)
{
	return forward_sync(bridge, false, err, err_size);
}

int lb_apply(const char *netns_path, const char *script, char *err, size_t err_size)
{
	int self = -1, target = -1, rc;
	if (err && err_size)
		err[0] = '\0';
	if (!script || !*script)
		return 0;
	if (!netns_path)
		return nft_run(script, err, err_size);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		set_err(err, err_size, "open /proc/thread-self/ns/net: %s",
			strerror(errno));
		return CS_EEXEC;
	}
	target = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		set_err(err, err_size, "open %s: %s", netns_path, strerror(errno));
		rc = CS_EEXEC;
		goto close_self;
	}
	if (setns(target, CLONE_NEWNET) != 0) {
		set_err(err, err_size, "setns %s: %s", netns_path, strerror(errno));
		rc = CS_EEXEC;
		goto close_target;
	}
	rc = nft_run(script, err, err_size);
	if (setns(self, CLONE_NEWNET) != 0) {
		/* this thread would go on in a container's namespace: every
		 * socket it opened from now on would be wrong */
		fprintf(stderr, "lb: cannot return to the node's namespace: %s\n",
			strerror(errno));
		abort();
	}
close_target:
	close(target);
close_self:
	close(self);
	return rc;
}

/* ---------------------------------------------------------------- glue */

static char *dup_or_null(const char *s, int *rc)
{
	char *d;
	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = CS_ENOMEM;
	return d;
}

int lb_target_init_vip(struct lb_target *t, const char *netns_path, const char *bridge)
{
	int rc = 0;
	memset(t, 0, sizeof *t);
	if (bridge && !bridge_ok(bridge))
		return CS_EINVAL;
	t->netns_path = dup_or_null(netns_path, &rc);
	t->bridge = dup_or_null(bridge, &rc);
	if (rc) {
		free(t->netns_path);
		free(t->bridge);
		memset(t, 0, sizeof *t);
	}
	return rc;
}

int lb_target_init_ingress(struct lb_target *t, const char *netns_path,
			   const char *bridge, const char *snat_addr)
{
	int rc = 0;
	char canon[16];
	memset(t, 0, sizeof *t);
	if (!bridge_ok(bridge) || (snat_addr && addr_canon(snat_addr, canon)))
		return CS_EINVAL;
	t->ingress = 1;
	t->netns_path = dup_or_null(netns_path, &rc);
	t->bridge = dup_or_null(bridge, &rc);
	t->snat_addr = dup_or_null(snat_addr, &rc);
	if (rc) {
		free(t->netns_path);
		free(t->bridge);
		free(t->snat_addr);
		memset(t, 0, sizeof *t);
	}
	return rc;
}

static int target_script(const struct lb_target *t, const struct lb_model *old,
			 const struct lb_model *cur, char **text)
{
	if (t->ingress)
		return lb_ingress_script(old, cur, t->bridge, t->snat_addr, text);
	return lb_vip_script(old, cur, t->bridge, text);
}

int lb_target_sync(struct lb_target *t, const struct env_net_state *st, char *err,
		   size_t err_size)
{
	struct lb_model cur;
	char *text = NULL;
	int rc = lb_model_build(st, &cur);
	if (rc) {
		set_err(err, err_size, "lb: %s", cs_strerror(rc));
		return rc;
	}
	if (t->applied_valid && t->applied.network_id == cur.network_id) {
		rc = target_script(t, &t->applied, &cur, &text);
		if (rc)
			goto free_cur;
		rc = lb_apply(t->netns_path, text, err, err_size);
		free(text);
		text = NULL;
		if (rc == 0)
			goto keep_cur;
		/* the kernel is not what we thought: write it all */
	}
	t->applied_valid = 0;
	rc = target_script(t, NULL, &cur, &text);
	if (rc)
		goto free_cur;
	rc = lb_apply(t->netns_path, text, err, err_size);
	free(text);
	if (rc)
		goto free_cur;
keep_cur:
	lb_model_free(&t->applied);
	t->applied = cur;
	t->applied_valid = 1;
	return 0;
free_cur:
	lb_model_free(&cur);
	return rc;
}

int lb_target_clear(struct lb_target *t, uint64_t network_id, char *err, size_t err_size)
{
	char *text = NULL;
	int rc = t->ingress ? lb_ingress_remove_script(&text)
			    : lb_vip_remove_script(network_id, &text);
	if (rc == 0) {
		rc = lb_apply(t->netns_path, text, err, err_size);
		free(text);
	}
	lb_model_free(&t->applied);
	free(t->netns_path);
	free(t->bridge);
	free(t->snat_addr);
	memset(t, 0, sizeof *t);
	return rc;
}
