/* allocator: networks' addresses, virtual IPs and ingress ports. See
 * allocator.h. Sections: the IPAM, text forms, the state, allocating,
 * checks, the component. */
#include "core/allocator.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/grow.h"
#include "core/limits.h"
#include "core/sort.h"

/* ---------------------------------------------------------------- the IPAM */

static uint32_t alloc_words(uint32_t size)
{
	return size < 64 ? 1 : size / 64;
}

static void alloc_ipam_set(struct alloc_ipam *ipam, uint32_t i)
{
	assert(i < ipam->size);
	assert(!(ipam->bits[i / 64] >> (i % 64) & 1));
	ipam->bits[i / 64] |= 1ull << (i % 64);
	ipam->used++;
}

static bool alloc_word_full(const struct alloc_ipam *ipam, uint32_t w)
{
	uint32_t bits = ipam->size < 64 ? ipam->size : 64;
	uint64_t all = bits == 64 ? ~0ull : (1ull << bits) - 1;
	return (ipam->bits[w] & all) == all;
}

/* Moves the hint past full words: it is a function of the bits alone. */
static void alloc_ipam_advance(struct alloc_ipam *ipam)
{
	uint32_t words = alloc_words(ipam->size);
	while (ipam->hint_word < words && alloc_word_full(ipam, ipam->hint_word))
		ipam->hint_word++;
}

int alloc_ipam_init(struct alloc_ipam *ipam, uint32_t base, unsigned prefix_len,
		    uint32_t gateway)
{
	memset(ipam, 0, sizeof *ipam);
	if (prefix_len < LIMIT_NET_PREFIX_MIN || prefix_len > LIMIT_NET_PREFIX_MAX)
		return CS_EINVAL;
	ipam->size = 1u << (32 - prefix_len);
	if (base & (ipam->size - 1))
		return CS_EINVAL;
	if (gateway == 0)
		gateway = base + 1;
	if (gateway <= base || gateway >= base + ipam->size - 1)
		return CS_EINVAL;
	ipam->bits = calloc(alloc_words(ipam->size), sizeof *ipam->bits);
	if (!ipam->bits)
		return CS_ENOMEM;
	ipam->base = base;
	ipam->prefix_len = prefix_len;
	alloc_ipam_set(ipam, 0);
	alloc_ipam_set(ipam, ipam->size - 1);
	alloc_ipam_set(ipam, gateway - base);
	alloc_ipam_advance(ipam);
	assert(ipam->used == 3);
	return 0;
}

void alloc_ipam_free(struct alloc_ipam *ipam)
{
	free(ipam->bits);
	memset(ipam, 0, sizeof *ipam);
}

int alloc_ipam_take(struct alloc_ipam *ipam, uint32_t *addr)
{
	uint32_t words = alloc_words(ipam->size);
	alloc_ipam_advance(ipam);
	if (ipam->hint_word >= words)
		return CS_ELIMIT;
	for (uint32_t b = 0; b < 64; b++) {
		uint32_t i = ipam->hint_word * 64 + b;
		if (i >= ipam->size)
			break;
		if (!(ipam->bits[ipam->hint_word] >> b & 1)) {
			alloc_ipam_set(ipam, i);
			alloc_ipam_advance(ipam);
			*addr = ipam->base + i;
			return 0;
		}
	}
	assert(!"a word below the hint's end has no free bit");
	return CS_ELIMIT;
}

int alloc_ipam_mark(struct alloc_ipam *ipam, uint32_t addr)
{
	uint32_t i = addr - ipam->base;
	if (addr < ipam->base || i >= ipam->size)
		return CS_EINVAL;
	if (alloc_ipam_held(ipam, addr))
		return CS_EEXIST;
	alloc_ipam_set(ipam, i);
	alloc_ipam_advance(ipam);
	return 0;
}

bool alloc_ipam_held(const struct alloc_ipam *ipam, uint32_t addr)
{
	uint32_t i = addr - ipam->base;
	if (addr < ipam->base || i >= ipam->size)
		return false;
	return ipam->bits[i / 64] >> (i % 64) & 1;
}

bool alloc_ipam_release(struct alloc_ipam *ipam, uint32_t addr)
{
	uint32_t i = addr - ipam->base;
	if (addr < ipam->base || i >= ipam->size)
		return false;
	if (i == 0 || i == ipam->size - 1)
		return false; /* reserved */
	if (!alloc_ipam_held(ipam, addr))
		return false;
	ipam->bits[i / 64] &= ~(1ull << (i % 64));
	assert(ipam->used > 3);
	ipam->used--;
	if (i / 64 < ipam->hint_word)
		ipam->hint_word = i / 64;
	return true;
}

/* ---------------------------------------------------------------- text forms */

int alloc_parse_cidr(const char *s, uint32_t *addr, unsigned *len_out)
{
	unsigned o[4], len = 32;
	char tail;
	int n;

	if (!s)
		return CS_EINVAL;
	if (len_out) {
		n = sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &o[0], &o[1], &o[2], &o[3], &len,
			   &tail);
		if (n != 5 || len > 32)
			return CS_EINVAL;
	} else {
		n = sscanf(s, "%3u.%3u.%3u.%3u%c", &o[0], &o[1], &o[2], &o[3], &tail);
		if (n != 4)
			return CS_EINVAL;
	}
	for (int i = 0; i < 4; i++)
		if (o[i] > 255)
			return CS_EINVAL;
	*addr = o[0] << 24 | o[1] << 16 | o[2] << 8 | o[3];
	if (len_out)
		*len_out = len;
	return 0;
}

void alloc_format_cidr(char *buf, size_t size, uint32_t addr, unsigned len)
{
	if (len > 32)
		snprintf(buf, size, "%u.%u.%u.%u", addr >> 24, addr >> 16 & 255,
			 addr >> 8 & 255, addr & 255);
	else
		snprintf(buf, size, "%u.%u.%u.%u/%u", addr >> 24, addr >> 16 & 255,
			 addr >> 8 & 255, addr & 255, len);
}

static const char *alloc_proto_name(Cs__PortProtocol p)
{
	switch (p) {
	case CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP: return "udp";
	case CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP: return "sctp";
	default: return "tcp";
	}
}

void alloc_port_text(char *buf, size_t size, uint32_t port, Cs__PortProtocol proto)
{
	snprintf(buf, size, "%u/%s", port, alloc_proto_name(proto));
}

/* ---------------------------------------------------------------- the state */

void alloc_state_init(struct alloc_state *a)
{
	memset(a, 0, sizeof *a);
}

void alloc_state_free(struct alloc_state *a)
{
	for (size_t i = 0; i < a->net_count; i++)
		alloc_ipam_free(&a->nets[i].ipam);
	free(a->nets);
	alloc_state_init(a);
}

/* The index of network id in a->nets, or where it would go. */
static size_t alloc_net_pos(const struct alloc_state *a, uint64_t id)
{
	size_t lo = 0, hi = a->net_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->nets[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct alloc_net *alloc_state_net(const struct alloc_state *a, uint64_t id)
{
	size_t i = alloc_net_pos(a, id);
	return i < a->net_count && a->nets[i].id == id ? &a->nets[i] : NULL;
}

static struct alloc_net *alloc_net_mut(struct alloc_state *a, uint64_t id)
{
	return (struct alloc_net *)alloc_state_net(a, id);
}

/* Adds network n (a network whose subnet does not parse holds nothing:
 * the control API never writes one). */
static int alloc_net_add(struct alloc_state *a, const Cs__Network *n)
{
	struct alloc_net net;
	uint32_t base, gw = 0;
	unsigned len;
	size_t pos = alloc_net_pos(a, n->id);
	int rv;

	if (pos < a->net_count && a->nets[pos].id == n->id)
		return 0;
	if (alloc_parse_cidr(n->subnet, &base, &len))
		return 0;
	if (n->gateway && n->gateway[0] && alloc_parse_cidr(n->gateway, &gw, NULL))
		gw = 0;
	memset(&net, 0, sizeof net);
	net.id = n->id;
	snprintf(net.subnet, sizeof net.subnet, "%s", n->subnet);
	rv = alloc_ipam_init(&net.ipam, base, len, gw);
	if (rv == CS_EINVAL)
		return 0;
	if (rv)
		return rv;
	if (grow_array((void **)&a->nets, &a->net_cap, a->net_count + 1,
		       sizeof *a->nets)) {
		alloc_ipam_free(&net.ipam);
		return CS_ENOMEM;
	}
	memmove(&a->nets[pos + 1], &a->nets[pos], (a->net_count - pos) * sizeof *a->nets);
	a->nets[pos] = net;
	a->net_count++;
	return 0;
}

static void alloc_net_remove(struct alloc_state *a, uint64_t id)
{
	size_t pos = alloc_net_pos(a, id);
	if (pos >= a->net_count || a->nets[pos].id != id)
		return;
	alloc_ipam_free(&a->nets[pos].ipam);
	memmove(&a->nets[pos], &a->nets[pos + 1],
		(a->net_count - pos - 1) * sizeof *a->nets);
	a->net_count--;
}

static unsigned alloc_proto_index(Cs__PortProtocol p)
{
	return (unsigned)p < ALLOC_PROTOCOLS ? (unsigned)p : 0;
}

static bool alloc_port_held(const struct alloc_state *a, Cs__PortProtocol p,
			    uint32_t port)
{
	unsigned x = alloc_proto_index(p);
	return port < 65536 && (a->ports[x][port / 64] >> (port % 64) & 1);
}

static void alloc_port_set(struct alloc_state *a, Cs__PortProtocol p, uint32_t port,
			   bool held)
{
	unsigned x = alloc_proto_index(p);
	if (port == 0 || port >= 65536 || alloc_port_held(a, p, port) == held)
		return;
	if (held) {
		a->ports[x][port / 64] |= 1ull << (port % 64);
		a->port_count++;
	} else {
		a->ports[x][port / 64] &= ~(1ull << (port % 64));
		assert(a->port_count > 0);
		a->port_count--;
	}
}

/* Marks (held) or releases one address "a.b.c.d/len" on network id;
 * returns whether a release freed something. */
static bool alloc_addr_set(struct alloc_state *a, uint64_t net_id, const char *addr,
			   bool held)
{
	struct alloc_net *n = alloc_net_mut(a, net_id);
	uint32_t ip;
	unsigned len;

	if (!n || alloc_parse_cidr(addr, &ip, &len))
		return false;
	if (held) {
		(void)alloc_ipam_mark(&n->ipam, ip); /* already held: ours, in flight */
		return false;
	}
	return alloc_ipam_release(&n->ipam, ip);
}

static bool alloc_service_set(struct alloc_state *a, const Cs__Service *s, bool held)
{
	bool freed = false;
	for (size_t i = 0; i < s->n_vips; i++)
		freed |=
			alloc_addr_set(a, s->vips[i]->network_id, s->vips[i]->addr, held);
	for (size_t i = 0; i < s->n_ports; i++) {
		const Cs__PortConfig *p = s->ports[i];
		if (p->mode != CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS)
			continue;
		if (!held && alloc_port_held(a, p->protocol, p->published))
			freed = true;
		alloc_port_set(a, p->protocol, p->published, held);
	}
	return freed;
}

bool alloc_task_holds(const Cs__Task *t)
{
	Cs__TaskState st = t->status ? t->status->state : CS__TASK_STATE__TASK_STATE_NEW;
	if (t->n_networks == 0)
		return false;
	if (st > CS__TASK_STATE__TASK_STATE_RUNNING)
		return false; /* known stopped */
	if (st < CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	    t->desired_state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return false; /* never placed, and never will be */
	return true;
}

static bool alloc_task_set(struct alloc_state *a, const Cs__Task *t, bool held)
{
	bool freed = false;
	for (size_t i = 0; i < t->n_networks; i++)
		freed |= alloc_addr_set(a, t->networks[i]->network_id,
					t->networks[i]->addr, held);
	return freed;
}

/* A node's ingress address (held while its record exists). */
static bool alloc_node_set(struct alloc_state *a, const Cs__Node *n, bool held)
{
	if (!n->ingress || !n->ingress->addr || !n->ingress->addr[0])
		return false;
	return alloc_addr_set(a, n->ingress->network_id, n->ingress->addr, held);
}

int alloc_state_rebuild(struct alloc_state *a, const struct store *st)
{
	alloc_state_free(a);
	for (const Cs__Network *n = store_network_next(st, NULL); n;
	     n = store_network_next(st, n))
		if (alloc_net_add(a, n)) {
			alloc_state_free(a);
			return CS_ENOMEM;
		}
	for (const Cs__Service *s = store_service_next(st, NULL); s;
	     s = store_service_next(st, s))
		alloc_service_set(a, s, true);
	for (const Cs__Task *t = store_task_next(st, NULL); t; t = store_task_next(st, t))
		if (alloc_task_holds(t))
			alloc_task_set(a, t, true);
	for (const Cs__Node *n = store_node_next(st, NULL); n; n = store_node_next(st, n))
		alloc_node_set(a, n, true);
	return 0;
}

bool alloc_state_equal(const struct alloc_state *a, const struct alloc_state *b)
{
	if (a->net_count != b->net_count || a->port_count != b->port_count ||
	    memcmp(a->ports, b->ports, sizeof a->ports) != 0)
		return false;
	for (size_t i = 0; i < a->net_count; i++) {
		const struct alloc_ipam *x = &a->nets[i].ipam, *y = &b->nets[i].ipam;
		if (a->nets[i].id != b->nets[i].id || x->base != y->base ||
		    x->size != y->size || x->used != y->used ||
		    x->hint_word != y->hint_word ||
		    memcmp(x->bits, y->bits, alloc_words(x->size) * sizeof *x->bits))
			return false;
	}
	return true;
}

bool alloc_state_on_event(struct alloc_state *a, const struct store_event *ev)
{
	bool freed = false;
	if (ev->table == STORE_NETWORK) {
		if (ev->change == STORE_CREATED)
			(void)alloc_net_add(a, (const Cs__Network *)ev->new_obj);
		else if (ev->change == STORE_DELETED)
			alloc_net_remove(a, ((const Cs__Network *)ev->old_obj)->id);
		return false;
	}
	if (ev->table == STORE_SERVICE) {
		if (ev->old_obj)
			freed |= alloc_service_set(a, (const Cs__Service *)ev->old_obj,
						   false);
		if (ev->new_obj)
			alloc_service_set(a, (const Cs__Service *)ev->new_obj, true);
		return freed;
	}
	if (ev->table == STORE_TASK) {
		const Cs__Task *o = (const Cs__Task *)ev->old_obj;
		const Cs__Task *n = (const Cs__Task *)ev->new_obj;
		if (o && alloc_task_holds(o))
			freed |= alloc_task_set(a, o, false);
		if (n && alloc_task_holds(n))
			alloc_task_set(a, n, true);
		return freed;
	}
	if (ev->table == STORE_NODE) {
		if (ev->old_obj)
			freed |= alloc_node_set(a, (const Cs__Node *)ev->old_obj, false);
		if (ev->new_obj)
			alloc_node_set(a, (const Cs__Node *)ev->new_obj, true);
		return freed;
	}
	return false;
}

/* ---------------------------------------------------------------- predicates */

static bool alloc_spec_ingress_ports(const Cs__ServiceSpec *spec)
{
	if (!spec || !spec->endpoint)
		return false;
	for (size_t i = 0; i < spec->endpoint->n_ports; i++)
		if (spec->endpoint->ports[i]->mode ==
		    CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS)
			return true;
	return false;
}

bool alloc_service_needs(const Cs__Service *svc)
{
	return svc && svc->spec &&
	       (svc->spec->n_networks > 0 || alloc_spec_ingress_ports(svc->spec) ||
		alloc_has_host_ports(svc));
}

bool alloc_service_ready(const Cs__Service *svc)
{
	return !alloc_service_needs(svc) || svc->alloc_spec_version == svc->spec_version;
}

bool alloc_task_ready(const Cs__Service *svc, const Cs__Task *t)
{
	return !alloc_service_needs(svc) || t->alloc_done;
}

/* ---------------------------------------------------------------- allocating */

void alloc_mem_free(struct alloc_mem *mem)
{
	for (size_t i = 0; i < mem->count; i++)
		free(mem->ptrs[i]);
	free(mem->ptrs);
	memset(mem, 0, sizeof *mem);
}

/* Allocates size zeroed bytes owned by mem (NULL when out of memory). */
static void *alloc_mem_get(struct alloc_mem *mem, size_t size)
{
	void *p;
	if (grow_array((void **)&mem->ptrs, &mem->cap, mem->count + 1, sizeof *mem->ptrs))
		return NULL;
	p = calloc(1, size ? size : 1);
	if (p)
		mem->ptrs[mem->count++] = p;
	return p;
}

static char *alloc_mem_cidr(struct alloc_mem *mem, uint32_t addr, unsigned len)
{
	char *s = alloc_mem_get(mem, 20);
	if (s)
		alloc_format_cidr(s, 20, addr, len);
	return s;
}

/* The network a service names: by name, else by id in hex. */
static const Cs__Network *alloc_find_network(const struct store *st, const char *target)
{
	const Cs__Network *n = store_network_by_name(st, target);
	char *end;
	unsigned long long id;

	if (n || !target || !target[0])
		return n;
	id = strtoull(target, &end, 16);
	return *end == 0 ? store_network_get(st, id) : NULL;
}

static const Cs__Network *alloc_ingress_network(const struct store *st)
{
	for (const Cs__Network *n = store_network_next(st, NULL); n;
	     n = store_network_next(st, n))
		if (n->spec->ingress)
			return n;
	return NULL;
}

/* The networks svc's tasks attach to, in spec order, the ingress network
 * last when svc publishes ingress ports; with each the config (NULL for
 * the ingress network) for its aliases. Returns the count, or -1 with why. */
static int alloc_resolve(const struct store *st, const Cs__ServiceSpec *spec,
			 const Cs__Network *nets[],
			 const Cs__NetworkAttachmentConfig *cfgs[], char *why,
			 size_t why_size)
{
	int count = 0;
	if (spec->n_networks > LIMIT_SERVICE_NETWORKS_MAX) {
		snprintf(why, why_size, "more than %u networks",
			 LIMIT_SERVICE_NETWORKS_MAX);
		return -1;
	}
	for (size_t i = 0; i < spec->n_networks; i++) {
		const Cs__Network *n = alloc_find_network(st, spec->networks[i]->target);
		bool dup = false;
		if (!n) {
			snprintf(why, why_size, "network %s not found",
				 spec->networks[i]->target);
			return -1;
		}
		for (int j = 0; j < count; j++)
			dup |= nets[j]->id == n->id;
		if (dup)
			continue;
		cfgs[count] = spec->networks[i];
		nets[count++] = n;
	}
	if (alloc_spec_ingress_ports(spec)) {
		const Cs__Network *n = alloc_ingress_network(st);
		bool dup = false;
		if (!n) {
			snprintf(why, why_size, "no ingress network");
			return -1;
		}
		for (int j = 0; j < count; j++)
			dup |= nets[j]->id == n->id;
		if (!dup) {
			cfgs[count] = NULL;
			nets[count++] = n;
		}
	}
	return count;
}

static bool alloc_ep_is_vip(const Cs__EndpointSpec *ep)
{
	return !ep || ep->mode == CS__ENDPOINT_SPEC__MODE__MODE_VIP;
}

/* Taken so far by one call, to undo on failure. */
struct alloc_undo {
	uint64_t net_ids[LIMIT_SERVICE_NETWORKS_MAX + 1];
	uint32_t addrs[LIMIT_SERVICE_NETWORKS_MAX + 1];
	size_t addr_count;
	uint32_t ports[LIMIT_SERVICE_PORTS_MAX];
	Cs__PortProtocol protos[LIMIT_SERVICE_PORTS_MAX];
	size_t port_count;
};

static void alloc_undo(struct alloc_state *a, const struct alloc_undo *u)
{
	for (size_t i = 0; i < u->addr_count; i++)
		alloc_ipam_release(&alloc_net_mut(a, u->net_ids[i])->ipam, u->addrs[i]);
	for (size_t i = 0; i < u->port_count; i++)
		alloc_port_set(a, u->protos[i], u->ports[i], false);
}

/* Takes an address on n for u; returns 0, or CS_ELIMIT with why. */
static int alloc_take_addr(struct alloc_state *a, const Cs__Network *n,
			   struct alloc_undo *u, uint32_t *ip, unsigned *len, char *why,
			   size_t why_size)
{
	struct alloc_net *an = alloc_net_mut(a, n->id);
	if (!an) {
		snprintf(why, why_size, "network %s has no subnet", n->spec->name);
		return CS_ENOENT;
	}
	if (alloc_ipam_take(&an->ipam, ip)) {
		snprintf(why, why_size, "no free address in %s", an->subnet);
		return CS_ELIMIT;
	}
	assert(u->addr_count < LIMIT_SERVICE_NETWORKS_MAX + 1);
	u->net_ids[u->addr_count] = n->id;
	u->addrs[u->addr_count++] = *ip;
	*len = an->ipam.prefix_len;
	return 0;
}

int alloc_task(struct alloc_state *a, const struct store *st, const Cs__Service *svc,
	       const Cs__Task *t, Cs__Task *out, struct alloc_mem *mem, char *why,
	       size_t why_size)
{
	const Cs__Network *nets[LIMIT_SERVICE_NETWORKS_MAX + 1];
	const Cs__NetworkAttachmentConfig *cfgs[LIMIT_SERVICE_NETWORKS_MAX + 1];
	struct alloc_undo u;
	int count, rv = CS_ENOMEM;

	assert(svc && svc->spec);
	assert(t->service_id == svc->id);
	u.addr_count = u.port_count = 0;
	count = alloc_resolve(st, svc->spec, nets, cfgs, why, why_size);
	if (count < 0)
		return CS_ENOENT;
	*out = *t;
	out->n_networks = (size_t)count;
	out->networks = alloc_mem_get(mem, (size_t)count * sizeof *out->networks);
	if (!out->networks)
		goto undo;
	for (int i = 0; i < count; i++) {
		Cs__NetworkAttachment *att = alloc_mem_get(mem, sizeof *att);
		uint32_t ip;
		unsigned len;
		if (!att)
			goto undo;
		cs__network_attachment__init(att);
		rv = alloc_take_addr(a, nets[i], &u, &ip, &len, why, why_size);
		if (rv)
			goto undo;
		rv = CS_ENOMEM;
		att->network_id = nets[i]->id;
		att->addr = alloc_mem_cidr(mem, ip, len);
		if (!att->addr)
			goto undo;
		if (cfgs[i]) {
			att->n_aliases = cfgs[i]->n_aliases;
			att->aliases = cfgs[i]->aliases; /* borrowed from svc */
		}
		out->networks[i] = att;
	}
	/* the service's ports as allocated, for the agent (borrowed) */
	out->n_ports = svc->n_ports;
	out->ports = svc->ports;
	out->alloc_done = true;
	return 0;
undo:
	alloc_undo(a, &u);
	if (rv == CS_ENOMEM)
		snprintf(why, why_size, "out of memory");
	return rv;
}

/* The first port of old's allocation that matches p (a kept published
 * port, or the one drawn for p before), or 0. */
static uint32_t alloc_old_port(const Cs__Service *old, const Cs__PortConfig *p,
			       const Cs__PortConfig *const *taken, size_t taken_count)
{
	for (size_t i = 0; i < old->n_ports; i++) {
		const Cs__PortConfig *o = old->ports[i];
		bool used = false;
		if (o->mode != p->mode || o->protocol != p->protocol ||
		    o->target != p->target)
			continue;
		if (p->published && o->published != p->published)
			continue;
		for (size_t j = 0; j < taken_count; j++)
			used |= taken[j]->published == o->published &&
				taken[j]->protocol == o->protocol;
		if (!used)
			return o->published;
	}
	return 0;
}

int alloc_service(struct alloc_state *a, const struct store *st, const Cs__Service *svc,
		  Cs__Service *out, struct alloc_mem *mem, char *why, size_t why_size)
{
	const Cs__Network *nets[LIMIT_SERVICE_NETWORKS_MAX + 1];
	const Cs__NetworkAttachmentConfig *cfgs[LIMIT_SERVICE_NETWORKS_MAX + 1];
	const Cs__EndpointSpec *ep = svc->spec->endpoint;
	size_t port_count = ep ? ep->n_ports : 0;
	struct alloc_undo u;
	int count, rv = CS_ENOMEM;

	u.addr_count = u.port_count = 0;
	count = alloc_resolve(st, svc->spec, nets, cfgs, why, why_size);
	if (count < 0)
		return CS_ENOENT;
	if (port_count > LIMIT_SERVICE_PORTS_MAX) {
		snprintf(why, why_size, "more than %u ports", LIMIT_SERVICE_PORTS_MAX);
		return CS_ELIMIT;
	}
	*out = *svc;
	out->alloc_spec_version = svc->spec_version;
	out->n_vips = 0;
	out->vips = alloc_mem_get(mem, (size_t)(count + 1) * sizeof *out->vips);
	out->n_ports = 0;
	out->ports = alloc_mem_get(mem, (port_count + 1) * sizeof *out->ports);
	if (!out->vips || !out->ports)
		goto undo;
	/* a VIP per network in vip mode; a network kept keeps its VIP */
	for (int i = 0; alloc_ep_is_vip(ep) && i < count; i++) {
		Cs__EndpointVirtualIP *vip = alloc_mem_get(mem, sizeof *vip);
		uint32_t ip;
		unsigned len;
		if (!vip)
			goto undo;
		cs__endpoint_virtual_ip__init(vip);
		vip->addr = NULL; /* init points it at "" */
		vip->network_id = nets[i]->id;
		for (size_t j = 0; j < svc->n_vips && !vip->addr; j++)
			if (svc->vips[j]->network_id == nets[i]->id &&
			    alloc_state_net(a, nets[i]->id))
				vip->addr = svc->vips[j]->addr; /* borrowed */
		if (!vip->addr) {
			rv = alloc_take_addr(a, nets[i], &u, &ip, &len, why, why_size);
			if (rv)
				goto undo;
			rv = CS_ENOMEM;
			vip->addr = alloc_mem_cidr(mem, ip, len);
			if (!vip->addr)
				goto undo;
		}
		out->vips[out->n_vips++] = vip;
	}
	/* ports: a given ingress port must be free (or already ours); one not
	 * given keeps what was drawn for it, or draws the lowest free */
	for (size_t i = 0; i < port_count; i++) {
		const Cs__PortConfig *p = ep->ports[i];
		Cs__PortConfig *q = alloc_mem_get(mem, sizeof *q);
		char text[16];
		if (!q)
			goto undo;
		*q = *p;
		if (p->mode == CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS) {
			uint32_t old = alloc_old_port(
				svc, p, (const Cs__PortConfig *const *)out->ports,
				out->n_ports);
			if (old) {
				q->published = old;
			} else if (p->published) {
				if (alloc_port_held(a, p->protocol, p->published)) {
					alloc_port_text(text, sizeof text, p->published,
							p->protocol);
					snprintf(why, why_size, "port %s is in use",
						 text);
					rv = CS_EADDRINUSE;
					goto undo;
				}
			} else {
				uint32_t port = LIMIT_PORT_DYNAMIC_MIN;
				while (port <= LIMIT_PORT_DYNAMIC_MAX &&
				       alloc_port_held(a, p->protocol, port))
					port++;
				if (port > LIMIT_PORT_DYNAMIC_MAX) {
					snprintf(why, why_size, "no free port in %u-%u",
						 LIMIT_PORT_DYNAMIC_MIN,
						 LIMIT_PORT_DYNAMIC_MAX);
					rv = CS_ELIMIT;
					goto undo;
				}
				q->published = port;
			}
			if (!old) {
				alloc_port_set(a, q->protocol, q->published, true);
				u.protos[u.port_count] = q->protocol;
				u.ports[u.port_count++] = q->published;
			}
		}
		out->ports[out->n_ports++] = q;
	}
	return 0;
undo:
	alloc_undo(a, &u);
	if (rv == CS_ENOMEM)
		snprintf(why, why_size, "out of memory");
	return rv;
}

/* ---------------------------------------------------------------- checks */

static bool alloc_port_is_ingress(const Cs__PortConfig *p)
{
	return p->mode == CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS;
}

/* The service other than self_id that holds or asks for ingress port
 * (proto, port), or NULL. */
static const Cs__Service *alloc_port_user(const struct store *st, uint64_t self_id,
					  Cs__PortProtocol proto, uint32_t port)
{
	for (const Cs__Service *s = store_service_next(st, NULL); s;
	     s = store_service_next(st, s)) {
		const Cs__EndpointSpec *ep = s->spec->endpoint;
		if (s->id == self_id)
			continue;
		for (size_t i = 0; i < s->n_ports; i++)
			if (alloc_port_is_ingress(s->ports[i]) &&
			    s->ports[i]->protocol == proto &&
			    s->ports[i]->published == port)
				return s;
		for (size_t i = 0; ep && i < ep->n_ports; i++)
			if (alloc_port_is_ingress(ep->ports[i]) &&
			    ep->ports[i]->protocol == proto &&
			    ep->ports[i]->published == port)
				return s;
	}
	return NULL;
}

int alloc_check_ports(const struct store *st, const Cs__ServiceSpec *spec,
		      uint64_t self_id, char *why, size_t why_size)
{
	const Cs__EndpointSpec *ep = spec->endpoint;
	char text[16];

	if (!ep)
		return 0;
	if (ep->n_ports > LIMIT_SERVICE_PORTS_MAX) {
		snprintf(why, why_size, "more than %u ports", LIMIT_SERVICE_PORTS_MAX);
		return CS_EINVAL;
	}
	for (size_t i = 0; i < ep->n_ports; i++) {
		const Cs__PortConfig *p = ep->ports[i];
		const Cs__Service *user;
		if (p->target == 0 || p->target > 65535 || p->published > 65535 ||
		    (unsigned)p->protocol >= ALLOC_PROTOCOLS) {
			snprintf(why, why_size, "port %u: out of range", p->target);
			return CS_EINVAL;
		}
		if (!alloc_port_is_ingress(p) && p->published == 0) {
			snprintf(why, why_size,
				 "a host-mode port needs published= (target %u)",
				 p->target);
			return CS_EINVAL;
		}
		if (p->published == 0)
			continue;
		alloc_port_text(text, sizeof text, p->published, p->protocol);
		for (size_t j = 0; j < i; j++)
			if (ep->ports[j]->published == p->published &&
			    ep->ports[j]->protocol == p->protocol) {
				snprintf(why, why_size, "port %s is published twice",
					 text);
				return CS_EADDRINUSE;
			}
		if (!alloc_port_is_ingress(p))
			continue;
		user = alloc_port_user(st, self_id, p->protocol, p->published);
		if (user) {
			snprintf(why, why_size, "port %s is in use by service %s", text,
				 user->spec->name);
			return CS_EADDRINUSE;
		}
	}
	return 0;
}

bool alloc_cidr_overlap(uint32_t a, unsigned alen, uint32_t b, unsigned blen)
{
	unsigned len = alen < blen ? alen : blen;
	uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);
	return (a & mask) == (b & mask);
}

/* The network whose subnet overlaps base/len, or NULL. */
static const Cs__Network *alloc_overlapping(const struct store *st, uint32_t base,
					    unsigned len)
{
	for (const Cs__Network *n = store_network_next(st, NULL); n;
	     n = store_network_next(st, n)) {
		uint32_t b;
		unsigned l;
		if (alloc_parse_cidr(n->subnet, &b, &l) == 0 &&
		    alloc_cidr_overlap(base, len, b, l))
			return n;
	}
	return NULL;
}

int alloc_network_prepare(const struct store *st, const Cs__NetworkSpec *spec,
			  Cs__Network *net, char bufs[2][20], char *why, size_t why_size)
{
	const Cs__Cluster *c = store_cluster(st);
	const Cs__Network *other;
	const char *driver = spec->driver && spec->driver[0] ? spec->driver : "overlay";
	uint32_t base, gw;
	unsigned len;

	if (!spec->name || !spec->name[0]) {
		snprintf(why, why_size, "a network needs a name");
		return CS_EINVAL;
	}
	if (store_network_by_name(st, spec->name)) {
		snprintf(why, why_size, "network %s already exists", spec->name);
		return CS_EEXIST;
	}
	if (store_network_count(st) >= LIMIT_NETWORKS_MAX) {
		snprintf(why, why_size, "%u networks already", LIMIT_NETWORKS_MAX);
		return CS_ELIMIT;
	}
	if (strcmp(driver, "overlay") && strcmp(driver, "bridge") &&
	    strcmp(driver, "host")) {
		snprintf(why, why_size, "unknown driver %s (overlay, bridge, host)",
			 driver);
		return CS_EINVAL;
	}
	if (spec->subnet && spec->subnet[0]) {
		if (alloc_parse_cidr(spec->subnet, &base, &len) ||
		    len < LIMIT_NET_PREFIX_MIN || len > LIMIT_NET_PREFIX_MAX ||
		    (base & ~(~0u << (32 - len)))) {
			snprintf(why, why_size,
				 "subnet %s: want a.b.c.d/%u..%u with no host bits",
				 spec->subnet, LIMIT_NET_PREFIX_MIN,
				 LIMIT_NET_PREFIX_MAX);
			return CS_EINVAL;
		}
		other = alloc_overlapping(st, base, len);
		if (other) {
			snprintf(why, why_size, "subnet %s overlaps network %s's %s",
				 spec->subnet, other->spec->name, other->subnet);
			return CS_EADDRINUSE;
		}
	} else {
		const Cs__ClusterSettings *cs = c ? c->settings : NULL;
		uint32_t pool = cs && cs->default_addr_pool ? cs->default_addr_pool
							    : LIMIT_NET_POOL_DEFAULT;
		unsigned plen = cs && cs->default_addr_pool_len
					? cs->default_addr_pool_len
					: LIMIT_NET_POOL_LEN;
		uint64_t count;
		len = cs && cs->default_subnet_len ? cs->default_subnet_len
						   : LIMIT_NET_SUBNET_LEN;
		if (plen > len || len < LIMIT_NET_PREFIX_MIN ||
		    len > LIMIT_NET_PREFIX_MAX) {
			snprintf(why, why_size, "the cluster's address pool is invalid");
			return CS_EINVAL;
		}
		count = 1ull << (len - plen);
		base = 0;
		for (uint64_t k = 0; k < count; k++) {
			uint32_t b = pool + (uint32_t)(k << (32 - len));
			if (!alloc_overlapping(st, b, len)) {
				base = b;
				break;
			}
		}
		if (!base) {
			snprintf(why, why_size, "the default address pool is full");
			return CS_ELIMIT;
		}
	}
	gw = base + 1;
	if (spec->gateway && spec->gateway[0]) {
		if (alloc_parse_cidr(spec->gateway, &gw, NULL) || gw <= base ||
		    gw >= base + (1u << (32 - len)) - 1) {
			snprintf(why, why_size, "gateway %s is not in the subnet",
				 spec->gateway);
			return CS_EINVAL;
		}
	}
	alloc_format_cidr(bufs[0], 20, base, len);
	alloc_format_cidr(bufs[1], 20, gw, 33);
	net->spec = (Cs__NetworkSpec *)spec;
	net->subnet = bufs[0];
	net->gateway = bufs[1];
	net->vni = 0;
	if (strcmp(driver, "overlay") == 0) {
		uint32_t vni = LIMIT_NET_VNI_MIN;
		bool taken = true;
		while (taken) {
			taken = false;
			for (const Cs__Network *n = store_network_next(st, NULL);
			     n && !taken; n = store_network_next(st, n))
				taken = n->vni == vni;
			if (taken)
				vni++;
		}
		net->vni = vni;
	}
	return 0;
}

static bool alloc_service_uses(const struct store *st, const Cs__Service *s,
			       const Cs__Network *n)
{
	for (size_t i = 0; i < s->spec->n_networks; i++)
		if (alloc_find_network(st, s->spec->networks[i]->target) == n)
			return true;
	if (n->spec->ingress && alloc_spec_ingress_ports(s->spec))
		return true;
	for (size_t i = 0; i < s->n_vips; i++)
		if (s->vips[i]->network_id == n->id)
			return true;
	return false;
}

size_t alloc_network_users(const struct store *st, const Cs__Network *n,
			   const Cs__Service **first)
{
	size_t count = 0;
	*first = NULL;
	for (const Cs__Service *s = store_service_next(st, NULL); s;
	     s = store_service_next(st, s))
		if (alloc_service_uses(st, s, n)) {
			if (!*first)
				*first = s;
			count++;
		}
	for (const Cs__Task *t = store_task_next(st, NULL); t; t = store_task_next(st, t))
		for (size_t i = 0; alloc_task_holds(t) && i < t->n_networks; i++)
			if (t->networks[i]->network_id == n->id) {
				count++;
				break;
			}
	return count;
}

/* One thing held, for the invariants: (space, key) must be unique among
 * live owners. */
struct alloc_held {
	uint64_t space; /* network id; node id (host ports); 0 (ingress ports) */
	uint64_t key;	/* address; (protocol << 16 | port) */
	uint64_t owner;
};

static int alloc_held_cmp(const void *pa, const void *pb)
{
	const struct alloc_held *a = pa, *b = pb;
	if (a->space != b->space)
		return a->space < b->space ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->owner < b->owner ? -1 : a->owner > b->owner;
}

struct alloc_helds {
	struct alloc_held *v;
	size_t count, cap;
	bool oom;
};

static void alloc_helds_add(struct alloc_helds *h, uint64_t space, uint64_t key,
			    uint64_t owner)
{
	if (grow_array((void **)&h->v, &h->cap, h->count + 1, sizeof *h->v)) {
		h->oom = true;
		return;
	}
	h->v[h->count++] = (struct alloc_held){space, key, owner};
}

/* Sorts h and says whether any key is held twice (into why). */
static bool alloc_helds_unique(struct alloc_helds *h, const char *what, char *why,
			       size_t why_size)
{
	if (h->count > 1)
		qsort(h->v, h->count, sizeof *h->v, alloc_held_cmp);
	for (size_t i = 1; i < h->count; i++)
		if (h->v[i].space == h->v[i - 1].space &&
		    h->v[i].key == h->v[i - 1].key) {
			char key[24];
			if (strcmp(what, "address") == 0)
				alloc_format_cidr(key, sizeof key, (uint32_t)h->v[i].key,
						  33);
			else
				alloc_port_text(key, sizeof key, h->v[i].key & 0xffff,
						(Cs__PortProtocol)(h->v[i].key >> 16));
			snprintf(why, why_size, "%s %s (in %llx) held by %llx and %llx",
				 what, key, (unsigned long long)h->v[i].space,
				 (unsigned long long)h->v[i - 1].owner,
				 (unsigned long long)h->v[i].owner);
			return false;
		}
	return true;
}

/* Whether t is bound to its node: placed and not known stopped. */
static bool alloc_task_bound(const Cs__Task *t)
{
	Cs__TaskState st = t->status ? t->status->state : CS__TASK_STATE__TASK_STATE_NEW;
	return t->node_id && st >= CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	       st <= CS__TASK_STATE__TASK_STATE_RUNNING;
}

bool alloc_invariants(const struct store *st, char *why, size_t why_size)
{
	struct alloc_helds addrs = {0}, ports = {0}, host = {0};
	bool ok = true;

	for (const Cs__Service *s = store_service_next(st, NULL); s;
	     s = store_service_next(st, s)) {
		for (size_t i = 0; i < s->n_vips; i++) {
			uint32_t ip;
			if (alloc_parse_cidr(s->vips[i]->addr, &ip, &(unsigned){0}) == 0)
				alloc_helds_add(&addrs, s->vips[i]->network_id, ip,
						s->id);
		}
		for (size_t i = 0; i < s->n_ports; i++)
			if (alloc_port_is_ingress(s->ports[i]))
				alloc_helds_add(&ports, 0,
						(uint64_t)s->ports[i]->protocol << 16 |
							s->ports[i]->published,
						s->id);
		for (const Cs__Task *t = store_task_next_by_service(st, s->id, NULL); t;
		     t = store_task_next_by_service(st, s->id, t)) {
			if (!alloc_task_bound(t))
				continue;
			for (size_t i = 0; i < t->n_ports; i++)
				if (!alloc_port_is_ingress(t->ports[i]) &&
				    t->ports[i]->published)
					alloc_helds_add(&host, t->node_id,
							(uint64_t)t->ports[i]->protocol
									<< 16 |
								t->ports[i]->published,
							t->id);
		}
	}
	for (const Cs__Task *t = store_task_next(st, NULL); t && ok;
	     t = store_task_next(st, t)) {
		if (!alloc_task_holds(t))
			continue;
		for (size_t i = 0; i < t->n_networks; i++) {
			uint32_t ip;
			if (!store_network_get(st, t->networks[i]->network_id)) {
				snprintf(
					why, why_size,
					"task %llx holds an address on missing network %llx",
					(unsigned long long)t->id,
					(unsigned long long)t->networks[i]->network_id);
				ok = false;
				break;
			}
			if (alloc_parse_cidr(t->networks[i]->addr, &ip, &(unsigned){0}) ==
			    0)
				alloc_helds_add(&addrs, t->networks[i]->network_id, ip,
						t->id);
		}
	}
	for (const Cs__Node *nd = store_node_next(st, NULL); nd && ok;
	     nd = store_node_next(st, nd)) {
		uint32_t ip;
		if (nd->ingress && nd->ingress->addr && nd->ingress->addr[0] &&
		    store_network_get(st, nd->ingress->network_id) &&
		    alloc_parse_cidr(nd->ingress->addr, &ip, &(unsigned){0}) == 0)
			alloc_helds_add(&addrs, nd->ingress->network_id, ip, nd->id);
	}
	if (ok && (addrs.oom || ports.oom || host.oom)) {
		snprintf(why, why_size, "out of memory");
		ok = false;
	}
	ok = ok && alloc_helds_unique(&addrs, "address", why, why_size);
	ok = ok && alloc_helds_unique(&ports, "ingress port", why, why_size);
	ok = ok && alloc_helds_unique(&host, "host port on node", why, why_size);
	free(addrs.v);
	free(ports.v);
	free(host.v);
	return ok;
}

/* ---------------------------------------------------------------- the component */

enum {
	ALLOC_DEBOUNCE_MS = 5, /* changes gather this long before a pass */
};

/* A pass stops adding past this many encoded bytes (a quarter frame, as
 * the orchestrators'); the rest waits for the next pass. */
#define ALLOC_BATCH_BYTES_MAX (LIMIT_FRAME_BYTES_MAX / 4)

struct allocator {
	const struct leader_ctx *ctx;
	struct env *env;
	struct alloc_state state;
	env_timer_id pass_timer;
	bool writing, dirty, stopped, dying;
	bool all_dirty;	     /* look at every service and task */
	bool rebuild;	     /* the state may hold what no write will commit */
	bool blocked;	     /* a task waits for room: a release looks at all */
	uint64_t *dirty_ids; /* services and tasks to look at (ids are random:
			      * one list, each id looked up in both tables) */
	size_t dirty_count, dirty_cap;
};

static void alloc_on_timer(struct env *env, env_timer_id id, void *data);
static void alloc_write_done(void *data, int status);

static void alloc_arm(struct allocator *al)
{
	if (al->pass_timer || al->dying || al->stopped)
		return;
	al->env->ops->timer_start(al->env, ALLOC_DEBOUNCE_MS, 0, alloc_on_timer, al,
				  &al->pass_timer);
}

static void alloc_mark_id(struct allocator *al, uint64_t id)
{
	if (al->all_dirty)
		return;
	if (al->dirty_count > 0 && al->dirty_ids[al->dirty_count - 1] == id)
		return;
	if (grow_array((void **)&al->dirty_ids, &al->dirty_cap, al->dirty_count + 1,
		       sizeof *al->dirty_ids)) {
		al->all_dirty = true;
		return;
	}
	al->dirty_ids[al->dirty_count++] = id;
}

/* Whether t waits for the allocator. */
static bool alloc_task_waits(const Cs__Task *t)
{
	return !t->alloc_done && t->status &&
	       t->status->state == CS__TASK_STATE__TASK_STATE_PENDING &&
	       t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING;
}

struct alloc_pass {
	struct allocator *al;
	const struct store *st;
	struct store_batch *batch;
	bool more;
};

static bool alloc_pass_full(struct alloc_pass *p)
{
	if (store_batch_bytes(p->batch) >= ALLOC_BATCH_BYTES_MAX ||
	    p->batch->action_count >= LIMIT_STORE_BATCH_ACTIONS - 1)
		p->more = true;
	return p->more;
}

/* Writes t's pending reason, unless it says so already. */
static void alloc_pass_reason(struct alloc_pass *p, const Cs__Task *t, const char *why)
{
	Cs__Task copy = *t;
	Cs__TaskStatus status = *t->status;
	if (t->status->message && strcmp(t->status->message, why) == 0)
		return;
	status.message = (char *)why;
	copy.status = &status;
	(void)store_batch_task(p->batch, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy);
}

static void alloc_pass_task(struct alloc_pass *p, const Cs__Task *t)
{
	const Cs__Service *svc = store_service_get(p->st, t->service_id);
	struct alloc_mem mem = {0};
	Cs__Task out;
	Cs__TaskStatus status;
	char why[160];

	if (!svc || !alloc_task_waits(t) || !alloc_service_needs(svc) ||
	    alloc_pass_full(p))
		return;
	if (!alloc_service_ready(svc))
		return; /* its service's allocation comes first */
	if (alloc_task(&p->al->state, p->st, svc, t, &out, &mem, why, sizeof why)) {
		p->al->blocked = true;
		alloc_pass_reason(p, t, why);
		alloc_mem_free(&mem);
		return;
	}
	status = *t->status;
	status.message = "pending task scheduling";
	out.status = &status;
	if (store_batch_task(p->batch, CS__STORE_ACTION__KIND__KIND_UPDATE, &out))
		p->al->rebuild = true; /* reserved, not written */
	alloc_mem_free(&mem);
}

/* A service whose allocation failed: its waiting tasks say why. */
static int alloc_reason_visit(void *arg, const Cs__Task *t)
{
	struct alloc_pass *p = ((void **)arg)[0];
	const char *why = ((void **)arg)[1];
	if (alloc_task_waits(t) && !alloc_pass_full(p))
		alloc_pass_reason(p, t, why);
	return 0;
}

static int alloc_task_visit(void *arg, const Cs__Task *t)
{
	alloc_pass_task(arg, t);
	return 0;
}

static void alloc_pass_service(struct alloc_pass *p, const Cs__Service *svc)
{
	struct alloc_mem mem = {0};
	Cs__Service out;
	char why[160];

	if (alloc_pass_full(p))
		return;
	if (alloc_service_ready(svc)) {
		if (alloc_service_needs(svc))
			store_task_scan_service(p->st, svc->id, alloc_task_visit, p);
		return;
	}
	if (alloc_service(&p->al->state, p->st, svc, &out, &mem, why, sizeof why)) {
		void *arg[2] = {p, why};
		p->al->blocked = true;
		store_task_scan_service(p->st, svc->id, alloc_reason_visit, arg);
		alloc_mem_free(&mem);
		return;
	}
	if (store_batch_service(p->batch, CS__STORE_ACTION__KIND__KIND_UPDATE, &out))
		p->al->rebuild = true;
	alloc_mem_free(&mem);
	/* its tasks once this commits (the event marks the service again) */
}

/* A node with no address on the ingress network (or one on an ingress
 * network that is gone) gets the lowest free one: its routing-mesh
 * address. None free: it waits for a release (blocked). */
static void alloc_pass_node(struct alloc_pass *p, const Cs__Node *nd)
{
	const Cs__Network *ing = alloc_ingress_network(p->st);
	struct alloc_net *net = ing ? alloc_net_mut(&p->al->state, ing->id) : NULL;
	Cs__NetworkAttachment att = CS__NETWORK_ATTACHMENT__INIT;
	Cs__Node copy;
	uint32_t ip;
	char addr[20];

	if (!net || alloc_pass_full(p) ||
	    (nd->ingress && nd->ingress->network_id == ing->id && nd->ingress->addr &&
	     nd->ingress->addr[0]))
		return;
	if (alloc_ipam_take(&net->ipam, &ip)) {
		p->al->blocked = true;
		return;
	}
	alloc_format_cidr(addr, sizeof addr, ip, net->ipam.prefix_len);
	att.network_id = ing->id;
	att.addr = addr;
	copy = *nd;
	copy.ingress = &att;
	if (store_batch_node(p->batch, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy))
		p->al->rebuild = true; /* reserved, not written */
}

static void alloc_pass(struct allocator *al)
{
	const struct store *st = leader_store(al->ctx);
	struct store_batch batch;
	struct alloc_pass p = {.al = al, .st = st, .batch = &batch};
	uint8_t *buf;
	size_t len;

	if (al->writing || al->stopped)
		return;
	al->dirty = false;
	if (al->rebuild) {
		/* what the last pass reserved did not commit: start from the
		 * store, as a new leader does */
		if (alloc_state_rebuild(&al->state, st)) {
			al->dirty = true;
			return;
		}
		al->rebuild = false;
		al->all_dirty = true;
	}
	store_batch_init(&batch);
	if (al->all_dirty) {
		al->all_dirty = false;
		al->dirty_count = 0;
		al->blocked = false;
		for (const Cs__Service *s = store_service_next(st, NULL); s && !p.more;
		     s = store_service_next(st, s))
			if (alloc_service_needs(s))
				alloc_pass_service(&p, s);
		for (const Cs__Node *nd = store_node_next(st, NULL); nd && !p.more;
		     nd = store_node_next(st, nd))
			alloc_pass_node(&p, nd);
	} else {
		size_t n = al->dirty_count;
		if (n > 1)
			qsort(al->dirty_ids, n, sizeof *al->dirty_ids, sort_u64_cmp);
		al->dirty_count = 0;
		for (size_t i = 0; i < n && !p.more; i++) {
			const Cs__Service *s;
			const Cs__Task *t;
			const Cs__Node *nd;
			if (i > 0 && al->dirty_ids[i] == al->dirty_ids[i - 1])
				continue;
			s = store_service_get(st, al->dirty_ids[i]);
			t = store_task_get(st, al->dirty_ids[i]);
			nd = store_node_get(st, al->dirty_ids[i]);
			if (s && alloc_service_needs(s))
				alloc_pass_service(&p, s);
			if (t)
				alloc_pass_task(&p, t);
			if (nd)
				alloc_pass_node(&p, nd);
		}
	}
	if (p.more) {
		al->all_dirty = true;
		al->dirty = true;
	}
	if (batch.action_count > 0) {
		int rv = store_batch_encode(&batch, 0, 0, &buf, &len);
		if (rv == 0) {
			rv = leader_write(al->ctx, buf, len, alloc_write_done, al);
			free(buf);
		}
		if (rv == 0) {
			al->writing = true;
		} else {
			env_logf(al->env, ENV_LOG_ERROR,
				 "msg=\"allocator batch refused\" actions=%zu err=%s",
				 batch.action_count, cs_errname(rv));
			al->rebuild = true;
			al->dirty = true;
		}
	}
	store_batch_free(&batch);
	if (al->dirty && !al->writing)
		alloc_arm(al);
}

static void alloc_on_timer(struct env *env, env_timer_id id, void *data)
{
	struct allocator *al = data;
	(void)env;
	if (id == al->pass_timer)
		al->pass_timer = 0;
	alloc_pass(al);
}

static void alloc_free(struct allocator *al)
{
	alloc_state_free(&al->state);
	free(al->dirty_ids);
	free(al);
}

static void alloc_write_done(void *data, int status)
{
	struct allocator *al = data;
	al->writing = false;
	if (al->stopped) {
		alloc_free(al);
		return;
	}
	if (status) {
		/* refused (a version raced, or no longer leading): what it
		 * reserved is not in the store */
		al->rebuild = true;
		al->dirty = true;
	}
	if (al->dirty)
		alloc_arm(al);
}

static void alloc_on_event(void *state, const struct store_event *ev)
{
	struct allocator *al = state;

	if (alloc_state_on_event(&al->state, ev) && al->blocked) {
		/* room freed: the waiting may fit now */
		al->all_dirty = true;
		al->dirty = true;
		if (!al->writing)
			alloc_arm(al);
	}
	if (ev->table == STORE_TASK) {
		const Cs__Task *t = (const Cs__Task *)ev->new_obj;
		if (!t || !alloc_task_waits(t))
			return;
		alloc_mark_id(al, t->id);
	} else if (ev->table == STORE_SERVICE) {
		const Cs__Service *s = (const Cs__Service *)ev->new_obj;
		if (!s || !alloc_service_needs(s))
			return;
		alloc_mark_id(al, s->id);
	} else if (ev->table == STORE_NETWORK) {
		al->all_dirty = true;
	} else if (ev->table == STORE_NODE) {
		const Cs__Node *nd = (const Cs__Node *)ev->new_obj;
		if (!nd || (nd->ingress && nd->ingress->addr && nd->ingress->addr[0]))
			return;
		alloc_mark_id(al, nd->id);
	} else {
		return;
	}
	al->dirty = true;
	if (!al->writing)
		alloc_arm(al);
}

static int alloc_start(const struct leader_ctx *ctx, void **state)
{
	struct allocator *al = calloc(1, sizeof *al);
	int rv;

	if (!al)
		return CS_ENOMEM;
	al->ctx = ctx;
	al->env = leader_env(ctx);
	alloc_state_init(&al->state);
	/* a new leader rebuilds from the store before it allocates anything */
	rv = alloc_state_rebuild(&al->state, leader_store(ctx));
	if (rv) {
		alloc_free(al);
		return rv;
	}
	al->all_dirty = true;
	al->dirty = true;
	alloc_arm(al);
	if (!al->pass_timer) {
		alloc_free(al);
		return CS_ENOMEM;
	}
	*state = al;
	return 0;
}

static void alloc_stop(void *state, bool dying)
{
	struct allocator *al = state;
	al->stopped = true;
	al->dying = dying;
	if (!dying && al->pass_timer)
		al->env->ops->timer_stop(al->env, al->pass_timer);
	if (!al->writing)
		alloc_free(al);
	/* else the write's answer frees it */
}

const struct leader_component_ops allocator_component = {
	.name = "allocator",
	.start = alloc_start,
	.stop = alloc_stop,
	.on_event = alloc_on_event,
};

/* ---------------------------------------------------------------- host ports (the scheduler's filter) */

bool alloc_has_host_ports(const Cs__Service *svc)
{
	const Cs__EndpointSpec *ep = svc && svc->spec ? svc->spec->endpoint : NULL;
	for (size_t i = 0; ep && i < ep->n_ports; i++)
		if (!alloc_port_is_ingress(ep->ports[i]) && ep->ports[i]->published)
			return true;
	return false;
}

bool alloc_host_port_busy(const struct store *st, const Cs__Service *svc,
			  uint64_t node_id)
{
	const Cs__EndpointSpec *want = svc->spec->endpoint;

	for (const Cs__Task *t = store_task_next_by_node(st, node_id, NULL); t;
	     t = store_task_next_by_node(st, node_id, t)) {
		if (!alloc_task_bound(t))
			continue;
		/* the ports it was given, whatever its service says now */
		for (size_t i = 0; i < t->n_ports; i++) {
			const Cs__PortConfig *p = t->ports[i];
			if (alloc_port_is_ingress(p) || !p->published)
				continue;
			for (size_t j = 0; want && j < want->n_ports; j++)
				if (!alloc_port_is_ingress(want->ports[j]) &&
				    want->ports[j]->published == p->published &&
				    want->ports[j]->protocol == p->protocol)
					return true;
		}
	}
	return false;
}
