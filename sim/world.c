/* world: virtual time, the event queue, nodes and their env, the network.
 * See world.h for the contract. Sections: event queue, trace, name map,
 * nodes and timers, the env of a simulated node, network, running. */
#include "sim/world.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/pki.h"
#include "sim/simdisk.h"
#include "sim/simexec.h"

#define ASSERT_NODE(w, i) assert((i) < (w)->node_count)

enum { WORLD_STORAGE_MAX = 8 }; /* sqlite databases per node */
enum { WORLD_NODE_NONE = UINT32_MAX };
/* sqlite's clock in the simulator: virtual time from 2026-01-01T00:00:00Z;
 * certificates' times too */
#define WORLD_EPOCH_MS 1767225600000ll
/* The drop reason of a message the sender's TLS check refused (SIM_EV_DROP's
 * b): the receiver's certificate does not chain to the sender's trust. */
#define WORLD_DROP_AUTH 6u

/* ---------------------------------------------------------------- types */

struct sim_event {
	us_t at_us;
	uint64_t seq;  /* schedule order: the tie-breaker at equal times */
	void *obj;     /* MSG: the message; CALL: the call */
	uint64_t arg;  /* TIMER: slot | gen << 32; PEER: peer | up << 32 */
	uint32_t node; /* the node the event belongs to */
	uint32_t inc;  /* its incarnation when scheduled */
	uint32_t kind;
};

struct sim_msg {
	uint32_t src, dst;
	uint32_t src_inc, dst_inc;
	uint32_t cred; /* the sender's credentials when it sent (0: none) */
	uint32_t len;
	uint8_t data[];
};

struct sim_call {
	world_call_fn fn;
	void *data;
};

struct sim_timer {
	env_timer_cb cb;
	void *data;
	us_t repeat_us;
	uint32_t node;
	uint32_t inc; /* the node's incarnation that armed it */
	uint32_t gen; /* bumped when the slot is freed */
	bool live;
};

struct sim_storage {
	char name[32];
	sqlite3 *db;
};

/* One set of credentials a node held: its certificate (or none), the roots
 * it trusted (or none) and a pinned root digest (or none). Never changed once
 * made, so that a message can name the set its sender held when it sent;
 * the world keeps every set (one per install or pin) until it is freed. */
struct sim_cred {
	uint8_t *cert; /* DER, NULL: no certificate */
	size_t cert_len;
	uint8_t *roots[2];
	size_t root_len[2];
	uint8_t root_digest[2][ENV_DIGEST_BYTES];
	size_t root_count;
	bool has_pin;
	uint8_t pin[ENV_DIGEST_BYTES];
	bool read_ok;	      /* info holds what cert says (pki_read) */
	struct pki_cert info; /* cert's fields, its signature unchecked */
	/* The first credential set (its id) that trusts as this one does: the
	 * same roots, or with none the same pin; what a holder accepts depends
	 * on nothing else, so the verification cache is keyed by it (every
	 * worker holds the same roots: a certificate is verified once for
	 * them all, not once per holder). Its own id when it trusts nothing. */
	uint32_t trust;
};

/* What cert_cred's certificate proves to a holder of trust_cred's roots or
 * pin, the times aside: computed once (pki_verify is ~100 us), then only the
 * times are checked per message. */
struct sim_vcache {
	uint64_t key; /* cert_cred << 32 | creds[trust_cred].trust; 0: empty */
	bool ok;
	struct pki_cert c;
};

struct sim_node {
	struct world *world;
	uint32_t index;
	char name[LIMIT_ADDR_BYTES_MAX];
	struct env env;
	const struct env_program_ops *prog;
	const void *prog_cfg;
	void *prog_state;
	bool up;
	bool starting;	  /* inside prog->start */
	bool exiting;	  /* the program asked to exit (env exit): dies next */
	us_t up_since_us; /* when its process last started */
	uint32_t inc;	  /* incarnation: bumped at every start and kill */
	env_recv_cb recv_cb;
	env_peer_cb peer_cb;
	void *net_data;
	uint32_t timer_count;
	struct rng rng_env;
	struct rng rng_net;
	/* Bit i of word 2*(i/64): this node heard from node i's current process
	 * (the next message from a new process of i is a peer-up notice); bit i
	 * of word 2*(i/64)+1: it sent to i (a connection to i exists). Either
	 * bit means a kill of i gives a peer-down notice. Grows with the world;
	 * NULL until used. */
	uint64_t *conn;
	size_t conn_words;
	struct sim_storage storage[WORLD_STORAGE_MAX];
	size_t storage_count;
	/* Identity: its durable state (as files on its disk: a kill or a
	 * restart keeps it), but the pending key, which its process holds. */
	uint32_t cred; /* current credentials: index + 1 in world->creds; 0 none */
	bool has_key;
	uint8_t key_seed[PKI_SEED_BYTES]; /* the key of its certificate */
	bool has_pending;
	uint8_t pending_seed[PKI_SEED_BYTES]; /* drawn by the last pki_csr */
	/* pki_key_digest of pending_seed, made with its CSR (install matches
	 * the certificate by it without deriving the key again) */
	uint8_t pending_digest[ENV_DIGEST_BYTES];
	/* autolock: its key is sealed on its disk with kek (durable); a new
	 * process starts with the key locked until pki_unlock gives kek */
	bool key_sealed, key_locked;
	uint8_t kek[32];
	struct rng rng_key;		 /* keys: a stream of its own, so that drawing one
			       shifts neither its env's draws nor anyone's */
	bool in_recv;			 /* inside its recv callback */
	uint32_t recv_cred;		 /* there: the credentials the sender sent with */
	uint32_t recv_src, recv_src_inc; /* and who sent it, which process */
	char ip[48]; /* what its receivers' sender() says as peer_ip ("") */
};

struct world {
	uint64_t seed;
	uint64_t inc_total; /* every node's starts and kills, counted */
	us_t now_us;
	uint64_t seq;
	uint64_t events;
	uint64_t hash;
	/* world_free has begun: nodes go down for their memory only (the
	 * queue is dropped next, the runtime frees its containers whole) */
	bool ending;

	struct sim_event *heap;
	size_t heap_count, heap_cap;

	struct sim_node **nodes;
	size_t node_count, node_cap;
	uint32_t *name_slots; /* open addressing: node index + 1, 0 empty */
	size_t name_cap;

	struct sim_timer *timers;
	uint32_t timer_count, timer_cap;
	uint32_t *timer_free;
	size_t timer_free_count, timer_free_cap;

	us_t delay_min_us, delay_max_us;
	struct sim_link_rule *rules;
	size_t rule_count, rule_cap;
	struct sim_partition *parts;
	size_t part_count;
	struct sim_net_stats stats;

	struct rng rng_faults, rng_workload, rng_disk;
	struct simvfs *vfs;
	struct simexec *exec; /* the containers of every machine */

	world_trace_fn trace_fn;
	void *trace_ctx;
	world_log_fn log_fn;
	void *log_ctx;
	bool recording;
	struct sim_trace_rec *recs;
	size_t rec_count, rec_cap;

	world_tap_fn tap_fn;
	void *tap_ctx;
	world_tap_fn send_tap_fn; /* frames as they leave their node */
	void *send_tap_ctx;

	struct sim_cred *creds;
	size_t cred_count, cred_cap;
	struct sim_vcache *vcache; /* open addressing, cap a power of two */
	size_t vcache_count, vcache_cap;
	uint32_t *trusts; /* the ids of the credential sets first to trust as they do */
	size_t trust_count, trust_cap;
	uint64_t pki_serial; /* the last certificate serial the world gave */
	/* the roots and CA certificates every join presents, parsed once for
	 * all nodes (pki_sign_cached, pki_verify_cached) */
	struct pki_cache pki_cache;
};

static const struct env_ops world_env_ops;

/* Grows *buf (of *cap elements of size elem) to hold at least need. */

/* ---------------------------------------------------------------- event queue
 * A 4-ary min-heap ordered by (at_us, seq): total and deterministic, so
 * any heap pops the same sequence. Four children a node, not two: half the
 * levels, and a pop's misses in a queue of 10^5 events were 3% of the
 * 1,000-worker run's time (issue 18). */

#define WORLD_HEAP_ARITY 4

static bool world_ev_before(const struct sim_event *a, const struct sim_event *b)
{
	if (a->at_us != b->at_us)
		return a->at_us < b->at_us;
	return a->seq < b->seq;
}

static int world_push(struct world *w, us_t at_us, uint32_t kind, uint32_t node,
		      uint32_t inc, void *obj, uint64_t arg)
{
	struct sim_event ev;
	size_t i;

	assert(at_us >= w->now_us);
	if (w->heap_count >= LIMIT_SIM_EVENTS_MAX)
		return CS_ELIMIT;
	if (w->heap_count == w->heap_cap &&
	    grow_array((void **)&w->heap, &w->heap_cap, w->heap_count + 1,
		       sizeof *w->heap))
		return CS_ENOMEM;
	ev.at_us = at_us;
	ev.seq = w->seq++;
	ev.obj = obj;
	ev.arg = arg;
	ev.node = node;
	ev.inc = inc;
	ev.kind = kind;
	i = w->heap_count++;
	while (i > 0) {
		size_t parent = (i - 1) / WORLD_HEAP_ARITY;
		if (!world_ev_before(&ev, &w->heap[parent]))
			break;
		w->heap[i] = w->heap[parent];
		i = parent;
	}
	w->heap[i] = ev;
	return 0;
}

static struct sim_event world_pop(struct world *w)
{
	struct sim_event top = w->heap[0];
	struct sim_event last;
	size_t i = 0, n;

	assert(w->heap_count > 0);
	n = --w->heap_count;
	if (n == 0)
		return top;
	last = w->heap[n];
	for (;;) {
		size_t first = WORLD_HEAP_ARITY * i + 1, child = first;
		if (first >= n)
			break;
		for (size_t k = first + 1; k < first + WORLD_HEAP_ARITY && k < n; k++)
			if (world_ev_before(&w->heap[k], &w->heap[child]))
				child = k;
		if (!world_ev_before(&w->heap[child], &last))
			break;
		w->heap[i] = w->heap[child];
		i = child;
	}
	w->heap[i] = last;
	return top;
}

/* ---------------------------------------------------------------- trace */

static uint64_t world_fold(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t world_bytes_hash(const uint8_t *p, size_t len)
{
	uint64_t h = HASH_FNV_OFFSET ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		h = world_fold(h, x);
	}
	if (i < len) {
		uint64_t x = 0;
		memcpy(&x, p + i, len - i);
		h = world_fold(h, x);
	}
	return h;
}

static void world_trace_at(struct world *w, uint32_t node, enum sim_ev_kind kind,
			   uint64_t a, uint64_t b)
{
	uint64_t h = w->hash;
	h = world_fold(h, w->now_us);
	h = world_fold(h, ((uint64_t)kind << 32) | node);
	h = world_fold(h, a);
	h = world_fold(h, b);
	w->hash = h;
	w->events++;
	if (w->trace_fn)
		w->trace_fn(w->trace_ctx, w, w->now_us, node, kind, a, b);
	if (w->recording) {
		if (w->rec_count == w->rec_cap &&
		    grow_array((void **)&w->recs, &w->rec_cap, w->rec_count + 1,
			       sizeof *w->recs)) {
			w->recording = false; /* out of memory: stop recording */
			return;
		}
		w->recs[w->rec_count++] = (struct sim_trace_rec){
			.at_us = w->now_us, .node = node, .kind = kind, .hash = h};
	}
}

void world_trace(struct world *w, uint32_t node, enum sim_ev_kind kind, uint64_t a,
		 uint64_t b)
{
	world_trace_at(w, node, kind, a, b);
}

void world_record(struct world *w, bool on)
{
	w->recording = on;
}

const struct sim_trace_rec *world_records(const struct world *w, size_t *count)
{
	*count = w->rec_count;
	return w->recs;
}

/* ---------------------------------------------------------------- name map */

static int world_names_rehash(struct world *w, size_t cap)
{
	uint32_t *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return CS_ENOMEM;
	for (size_t i = 0; i < w->node_count; i++) {
		size_t j = hash_str(w->nodes[i]->name) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = (uint32_t)i + 1;
	}
	free(w->name_slots);
	w->name_slots = slots;
	w->name_cap = cap;
	return 0;
}

int64_t world_node_find(const struct world *w, const char *name)
{
	size_t j;
	if (!w->name_cap)
		return -1;
	j = hash_str(name) & (w->name_cap - 1);
	while (w->name_slots[j]) {
		uint32_t i = w->name_slots[j] - 1;
		if (strcmp(w->nodes[i]->name, name) == 0)
			return i;
		j = (j + 1) & (w->name_cap - 1);
	}
	return -1;
}

/* ---------------------------------------------------------------- connections */

enum world_conn_kind { WORLD_CONN_HEARD = 0, WORLD_CONN_SENT = 1 };

static bool world_conn_test(const struct sim_node *n, uint32_t peer,
			    enum world_conn_kind kind)
{
	size_t word = 2 * (peer / 64) + kind;
	return word < n->conn_words && (n->conn[word] >> (peer % 64)) & 1;
}

static void world_conn_clear(struct sim_node *n, uint32_t peer)
{
	size_t word = 2 * (peer / 64);
	if (word < n->conn_words) {
		n->conn[word] &= ~(1ull << (peer % 64));
		n->conn[word + 1] &= ~(1ull << (peer % 64));
	}
}

/* Sets n's bit of kind for peer; returns false when out of memory (the
 * notice is then lost: notices are hints). */
static bool world_conn_set(struct sim_node *n, uint32_t peer, enum world_conn_kind kind)
{
	size_t word = 2 * (peer / 64) + kind;
	if (word >= n->conn_words) {
		size_t words = 2 * (n->world->node_count / 64 + 1);
		uint64_t *c = realloc(n->conn, words * sizeof *c);
		if (!c)
			return false;
		memset(c + n->conn_words, 0, (words - n->conn_words) * sizeof *c);
		n->conn = c;
		n->conn_words = words;
	}
	n->conn[word] |= 1ull << (peer % 64);
	return true;
}

/* ---------------------------------------------------------------- lifecycle */

static int64_t world_sqlite_now(void *ctx)
{
	const struct world *w = ctx;
	return WORLD_EPOCH_MS + (int64_t)(w->now_us / 1000);
}

static void world_sqlite_random(void *ctx, void *buf, size_t size)
{
	struct world *w = ctx;
	uint8_t *p = buf;
	while (size > 0) {
		uint64_t x = rng_next(&w->rng_disk);
		size_t n = size < 8 ? size : 8;
		memcpy(p, &x, n);
		p += n;
		size -= n;
	}
}

struct world *world_new(uint64_t seed)
{
	struct world *w = calloc(1, sizeof *w);
	char vfs_name[64];

	if (!w)
		return NULL;
	w->seed = seed;
	w->hash = rng_mix64(seed);
	w->delay_min_us = 1000;
	w->delay_max_us = 3000;
	rng_init(&w->rng_faults, seed, RNG_FAULTS, 0);
	rng_init(&w->rng_workload, seed, RNG_WORKLOAD, 0);
	rng_init(&w->rng_disk, seed, RNG_DISK, 0);
	/* The VFS name only has to be unique in this process; it never
	 * reaches the trace. */
	snprintf(vfs_name, sizeof vfs_name, "simvfs-%p", (void *)w);
	w->vfs = simvfs_create(vfs_name, world_sqlite_now, world_sqlite_random, w);
	if (!w->vfs) {
		free(w);
		return NULL;
	}
	w->exec = simexec_new(w);
	if (!w->exec) {
		simvfs_destroy(w->vfs);
		free(w);
		return NULL;
	}
	return w;
}

static void world_event_free(struct sim_event *ev)
{
	if (ev->kind == SIM_EV_MSG || ev->kind == SIM_EV_CALL)
		free(ev->obj);
}

void world_free(struct world *w)
{
	if (!w)
		return;
	w->ending = true;
	for (size_t i = 0; i < w->node_count; i++)
		if (w->nodes[i]->up)
			world_node_kill(w, (uint32_t)i, true, false);
	for (size_t i = 0; i < w->heap_count; i++)
		world_event_free(&w->heap[i]);
	for (size_t i = 0; i < w->node_count; i++) {
		free(w->nodes[i]->conn);
		free(w->nodes[i]);
	}
	for (size_t i = 0; i < w->part_count; i++)
		free(w->parts[i].group_of);
	/* after the queue: the data of calls still queued are its records */
	simexec_free(w->exec);
	simvfs_destroy(w->vfs);
	free(w->parts);
	free(w->rules);
	free(w->heap);
	free(w->nodes);
	free(w->name_slots);
	free(w->timers);
	free(w->timer_free);
	free(w->recs);
	for (size_t i = 0; i < w->cred_count; i++) {
		free(w->creds[i].cert);
		free(w->creds[i].roots[0]);
		free(w->creds[i].roots[1]);
	}
	free(w->creds);
	free(w->vcache);
	free(w->trusts);
	pki_cache_free(&w->pki_cache);
	free(w);
}

uint64_t world_seed(const struct world *w)
{
	return w->seed;
}
us_t world_now_us(const struct world *w)
{
	return w->now_us;
}
uint64_t world_events(const struct world *w)
{
	return w->events;
}
uint64_t world_hash(const struct world *w)
{
	return rng_mix64(w->hash);
}
size_t world_pending(const struct world *w)
{
	return w->heap_count;
}
struct simvfs *world_vfs(struct world *w)
{
	return w->vfs;
}
struct simexec *world_exec(struct world *w)
{
	return w->exec;
}

void world_set_trace(struct world *w, world_trace_fn fn, void *ctx)
{
	w->trace_fn = fn;
	w->trace_ctx = ctx;
}

void world_set_tap(struct world *w, world_tap_fn fn, void *ctx)
{
	w->tap_fn = fn;
	w->tap_ctx = ctx;
}

void world_set_send_tap(struct world *w, world_tap_fn fn, void *ctx)
{
	w->send_tap_fn = fn;
	w->send_tap_ctx = ctx;
}

void world_set_log(struct world *w, world_log_fn fn, void *ctx)
{
	w->log_fn = fn;
	w->log_ctx = ctx;
}

struct rng *world_rng(struct world *w, enum rng_purpose purpose)
{
	switch (purpose) {
	case RNG_FAULTS: return &w->rng_faults;
	case RNG_DISK: return &w->rng_disk;
	default: return &w->rng_workload;
	}
}

/* ---------------------------------------------------------------- nodes */

int world_node_add(struct world *w, const char *name, const struct env_program_ops *prog,
		   const void *cfg, uint32_t *index)
{
	struct sim_node *n;
	size_t len = strlen(name);

	if (len == 0 || len >= LIMIT_ADDR_BYTES_MAX)
		return CS_EINVAL;
	if (w->node_count >= LIMIT_NODES_MAX)
		return CS_ELIMIT;
	if (world_node_find(w, name) >= 0)
		return CS_EEXIST;
	if (grow_array((void **)&w->nodes, &w->node_cap, w->node_count + 1,
		       sizeof *w->nodes))
		return CS_ENOMEM;
	if ((w->node_count + 1) * 2 > w->name_cap &&
	    world_names_rehash(w, w->name_cap ? w->name_cap * 2 : 64))
		return CS_ENOMEM;
	n = calloc(1, sizeof *n);
	if (!n)
		return CS_ENOMEM;
	n->world = w;
	n->index = (uint32_t)w->node_count;
	memcpy(n->name, name, len + 1);
	n->env.ops = &world_env_ops;
	n->env.impl = n;
	n->prog = prog;
	n->prog_cfg = cfg;
	rng_init(&n->rng_env, w->seed, RNG_NODE, n->index);
	rng_init(&n->rng_net, w->seed, RNG_NET, n->index);
	/* the node's key stream: RNG_NODE's, past every node index */
	rng_init(&n->rng_key, w->seed, RNG_NODE, (1ull << 32) | n->index);
	w->nodes[w->node_count++] = n;
	{
		size_t j = hash_str(name) & (w->name_cap - 1);
		while (w->name_slots[j])
			j = (j + 1) & (w->name_cap - 1);
		w->name_slots[j] = n->index + 1;
	}
	/* Star groups take nodes that join later. */
	for (size_t p = 0; p < w->part_count; p++) {
		struct sim_partition *part = &w->parts[p];
		uint32_t *g = realloc(part->group_of, w->node_count * sizeof *g);
		if (!g)
			return CS_ENOMEM;
		g[n->index] = part->star_group;
		part->group_of = g;
		part->group_of_count = w->node_count;
	}
	assert(world_node_find(w, name) == n->index);
	*index = n->index;
	return 0;
}

void world_node_set_program(struct world *w, uint32_t node,
			    const struct env_program_ops *prog, const void *cfg)
{
	ASSERT_NODE(w, node);
	w->nodes[node]->prog = prog;
	w->nodes[node]->prog_cfg = cfg;
}

size_t world_node_count(const struct world *w)
{
	return w->node_count;
}

const char *world_node_name(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return w->nodes[node]->name;
}

bool world_node_is_up(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return w->nodes[node]->up;
}

uint32_t world_node_incarnation(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return w->nodes[node]->inc;
}

void *world_node_state(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return w->nodes[node]->up ? w->nodes[node]->prog_state : NULL;
}

struct env *world_node_env(struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return &w->nodes[node]->env;
}

int world_node_start(struct world *w, uint32_t node)
{
	struct sim_node *n;
	int rv = 0;

	ASSERT_NODE(w, node);
	n = w->nodes[node];
	if (n->up)
		return CS_EEXIST;
	n->inc++;
	w->inc_total++;
	n->up = true;
	n->exiting = false;
	n->up_since_us = w->now_us;
	n->has_pending = false; /* the last process's pending key died with it */
	n->key_locked = n->key_sealed;
	n->timer_count = 0;
	n->recv_cb = NULL;
	n->peer_cb = NULL;
	n->prog_state = NULL;
	world_trace_at(w, node, SIM_EV_NODE_UP, n->inc, 0);
	if (n->prog) {
		n->starting = true;
		rv = n->prog->start(n->prog_cfg, &n->env, &n->prog_state);
		n->starting = false;
		if (rv != 0) {
			n->prog_state = NULL;
			world_node_kill(w, node, false, false);
		}
	}
	return rv;
}

/* The one-way latency of a message src -> dst. A link with a delay rule
 * draws each message's delay from the rule's range (jitter); every other
 * link has a fixed latency of its own, drawn once from the default range by
 * hashing (seed, src, dst): steady as a LAN, and FIFO without any state. */
static us_t world_link_delay(struct world *w, struct sim_node *src, uint32_t dst,
			     const struct sim_link_rule *rule)
{
	us_t lo = w->delay_min_us, hi = w->delay_max_us;
	if (rule && rule->has_delay)
		return rng_range(&src->rng_net, rule->delay_min_us, rule->delay_max_us);
	if (lo == hi)
		return lo;
	return lo +
	       rng_mix64(w->seed ^ ((uint64_t)src->index << 32 | dst)) % (hi - lo + 1);
}

static const struct sim_link_rule *world_rule_find(const struct world *w, uint32_t src,
						   uint32_t dst);

/* The kill of world_node_kill; why is the node-down event's `a`
 * (WORLD_DOWN_*). */
static int world_node_down(struct world *w, uint32_t node, uint32_t why,
			   bool lose_unsynced);

int world_node_kill(struct world *w, uint32_t node, bool machine, bool lose_unsynced)
{
	return world_node_down(w, node, machine ? WORLD_DOWN_MACHINE : WORLD_DOWN_PROCESS,
			       lose_unsynced);
}

static int world_node_down(struct world *w, uint32_t node, uint32_t why,
			   bool lose_unsynced)
{
	bool machine = why == WORLD_DOWN_MACHINE;
	struct sim_node *n;

	ASSERT_NODE(w, node);
	n = w->nodes[node];
	if (!n->up)
		return CS_ENOENT;
	/* The process is gone: its program frees its state, no callbacks. */
	if (n->prog && n->prog_state)
		n->prog->stop(n->prog_state);
	n->prog_state = NULL;
	/* Its controllers and pending executor requests go with it (their
	 * calls are stale once inc moves); on a machine crash its containers
	 * die too (at the world's end simexec_free frees them all at once:
	 * records, controllers and containers, without a walk of every
	 * record per node). */
	if (!w->ending)
		simexec_node_died(w->exec, node, machine);
	simvfs_crash_begin(w->vfs, n->name);
	for (size_t i = 0; i < n->storage_count; i++)
		sqlite3_close_v2(n->storage[i].db);
	n->storage_count = 0;
	simvfs_crash_end(w->vfs, n->name, lose_unsynced);
	n->up = false;
	n->inc++; /* every pending timer, message and call of n is now stale */
	w->inc_total++;
	n->recv_cb = NULL;
	n->peer_cb = NULL;
	world_trace_at(w, node, SIM_EV_NODE_DOWN, why, lose_unsynced);

	/* Connected peers see the connection drop after the link's latency
	 * (in peer index order), unless a partition hides it. At the world's
	 * end nothing runs any more: no notices (O(nodes) per node). */
	for (uint32_t i = 0; i < w->node_count && !w->ending; i++) {
		struct sim_node *p = w->nodes[i];
		if (i == node || !p->up ||
		    !(world_conn_test(p, node, WORLD_CONN_HEARD) ||
		      world_conn_test(p, node, WORLD_CONN_SENT)))
			continue;
		world_conn_clear(p, node);
		if (world_net_blocked(w, node, i))
			continue;
		world_push(w,
			   w->now_us +
				   world_link_delay(w, n, i, world_rule_find(w, node, i)),
			   SIM_EV_PEER, i, p->inc, NULL, node);
	}
	if (n->conn)
		memset(n->conn, 0, n->conn_words * sizeof *n->conn);
	return 0;
}

/* ---------------------------------------------------------------- timers */

static void world_timer_release(struct world *w, uint32_t slot);

static int world_timer_start(struct env *env, ms_t delay_ms, ms_t repeat_ms,
			     env_timer_cb cb, void *data, env_timer_id *id)
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	struct sim_timer *t;
	uint32_t slot;
	int rv;

	assert(n->up);
	assert(cb != NULL);
	if (n->timer_count >= LIMIT_TIMERS_PER_NODE_MAX)
		return CS_ELIMIT;
	if (w->timer_free_count > 0) {
		slot = w->timer_free[--w->timer_free_count];
	} else {
		size_t cap = w->timer_cap;
		if (grow_array((void **)&w->timers, &cap, w->timer_count + 1,
			       sizeof *w->timers))
			return CS_ENOMEM;
		w->timer_cap = (uint32_t)cap;
		slot = w->timer_count++;
		w->timers[slot].gen = 1;
	}
	t = &w->timers[slot];
	t->cb = cb;
	t->data = data;
	t->repeat_us = repeat_ms * 1000;
	t->node = n->index;
	t->inc = n->inc;
	t->live = true;
	n->timer_count++;
	rv = world_push(w, w->now_us + delay_ms * 1000, SIM_EV_TIMER, n->index, n->inc,
			NULL, slot | ((uint64_t)t->gen << 32));
	if (rv) {
		world_timer_release(w, slot);
		return rv;
	}
	*id = ((uint64_t)t->gen << 32) | ((uint64_t)slot + 1);
	return 0;
}

/* Frees a timer slot: pending events for it become stale. */
static void world_timer_release(struct world *w, uint32_t slot)
{
	struct sim_timer *t = &w->timers[slot];
	struct sim_node *n = w->nodes[t->node];

	assert(t->live);
	if (n->inc == t->inc) {
		assert(n->timer_count > 0);
		n->timer_count--;
	}
	t->live = false;
	t->gen++;
	if (grow_array((void **)&w->timer_free, &w->timer_free_cap,
		       w->timer_free_count + 1, sizeof *w->timer_free) == 0)
		w->timer_free[w->timer_free_count++] = slot;
	/* else: the slot is never reused; it is freed with the world */
}

static void world_timer_stop(struct env *env, env_timer_id id)
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	uint32_t slot = (uint32_t)(id & 0xffffffffu);
	uint32_t gen = (uint32_t)(id >> 32);

	if (slot == 0 || slot > w->timer_count)
		return;
	slot--;
	if (!w->timers[slot].live || w->timers[slot].gen != gen ||
	    w->timers[slot].node != n->index)
		return;
	world_timer_release(w, slot);
}

static void world_timer_fire(struct world *w, const struct sim_event *ev)
{
	uint32_t slot = (uint32_t)(ev->arg & 0xffffffffu);
	uint32_t gen = (uint32_t)(ev->arg >> 32);
	struct sim_timer *t = &w->timers[slot];
	struct sim_node *n = w->nodes[ev->node];
	env_timer_id id = ((uint64_t)gen << 32) | ((uint64_t)slot + 1);
	env_timer_cb cb = t->cb;
	void *data = t->data;

	if (!t->live || t->gen != gen)
		return; /* stopped */
	if (!n->up || n->inc != t->inc) {
		world_timer_release(w, slot); /* its process died */
		return;
	}
	world_trace_at(w, ev->node, SIM_EV_TIMER, slot, gen);
	if (t->repeat_us > 0) {
		if (world_push(w, w->now_us + t->repeat_us, SIM_EV_TIMER, n->index,
			       n->inc, NULL, ev->arg))
			world_timer_release(w, slot);
	} else {
		world_timer_release(w, slot);
	}
	cb(&n->env, id, data); /* may arm timers: t may move */
}

/* ---------------------------------------------------------------- identity
 * Credentials (sim_cred) and what a certificate proves to a peer. The
 * cryptography is core/pki.c's; keys are drawn from each node's key stream
 * and certificate times are WORLD_EPOCH_MS plus virtual time, so a seed
 * replays the same certificates. */

/* Virtual time as certificate time: seconds since the Unix epoch. */
static int64_t world_pki_now(const struct world *w)
{
	return (WORLD_EPOCH_MS + (int64_t)(w->now_us / 1000)) / 1000;
}

int64_t world_pki_now_s(const struct world *w)
{
	return world_pki_now(w);
}

int64_t world_epoch_ms(void)
{
	return WORLD_EPOCH_MS;
}

/* A certificate time as the env's clock (ms since the world began), 0 for
 * any time before it. */
static ms_t world_pki_ms(int64_t s)
{
	if (s <= WORLD_EPOCH_MS / 1000)
		return 0;
	return (ms_t)(s - WORLD_EPOCH_MS / 1000) * 1000;
}

static void world_pki_fields(const struct pki_cert *c, struct env_identity *out)
{
	memset(out, 0, sizeof *out);
	out->node_id = c->node_id;
	out->cluster_id = c->cluster_id;
	out->role = c->role;
	out->expires_ms = world_pki_ms(c->not_after_s);
	out->life_ms = c->not_after_s > c->not_before_s
			       ? (ms_t)(c->not_after_s - c->not_before_s) * 1000
			       : 0;
	memcpy(out->root, c->root, sizeof out->root);
	memcpy(out->key, c->key, sizeof out->key);
}

static uint8_t *world_dup(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	if (d && len)
		memcpy(d, p, len);
	return d;
}

/* Whether a holder of a accepts exactly what a holder of b does: the same
 * roots, in the same order, or, with none, the same pin (see
 * world_vcache_compute). */
static bool world_cred_same_trust(const struct sim_cred *a, const struct sim_cred *b)
{
	if (a->root_count != b->root_count)
		return false;
	if (a->root_count == 0)
		return a->has_pin && b->has_pin &&
		       memcmp(a->pin, b->pin, ENV_DIGEST_BYTES) == 0;
	for (size_t i = 0; i < a->root_count; i++)
		if (a->root_len[i] != b->root_len[i] ||
		    memcmp(a->root_digest[i], b->root_digest[i], ENV_DIGEST_BYTES) != 0 ||
		    memcmp(a->roots[i], b->roots[i], a->root_len[i]) != 0)
			return false;
	return true;
}

/* Adds a credential set: a copy of cert (NULL: none), of roots (count 0..2)
 * and pin (NULL: none). Returns its id (> 0), or 0 when out of memory. */
static uint32_t world_cred_add_read(struct world *w, const struct env_blob *cert,
				    const struct pki_cert *read,
				    const struct env_blob *roots, size_t root_count,
				    const uint8_t *pin);

static uint32_t world_cred_add(struct world *w, const struct env_blob *cert,
			       const struct env_blob *roots, size_t root_count,
			       const uint8_t *pin)
{
	return world_cred_add_read(w, cert, NULL, roots, root_count, pin);
}

/* world_cred_add, with what pki_read says of cert when the caller has it
 * already (read: NULL to read it here). */
static uint32_t world_cred_add_read(struct world *w, const struct env_blob *cert,
				    const struct pki_cert *read,
				    const struct env_blob *roots, size_t root_count,
				    const uint8_t *pin)
{
	struct sim_cred *c;
	char why[PKI_WHY_BYTES];

	assert(root_count <= 2);
	if (w->cred_count >= UINT32_MAX - 1)
		return 0;
	if (w->cred_count == w->cred_cap &&
	    grow_array((void **)&w->creds, &w->cred_cap, w->cred_count + 1,
		       sizeof *w->creds))
		return 0;
	c = &w->creds[w->cred_count];
	memset(c, 0, sizeof *c);
	if (cert && cert->len) {
		c->cert = world_dup(cert->data, cert->len);
		if (!c->cert)
			goto nomem;
		c->cert_len = cert->len;
		if (read) {
			c->read_ok = true;
			c->info = *read;
		} else {
			c->read_ok = pki_read(cert, &c->info, why) == 0;
		}
	}
	for (size_t i = 0; i < root_count; i++) {
		c->roots[i] = world_dup(roots[i].data, roots[i].len);
		if (!c->roots[i])
			goto nomem;
		c->root_len[i] = roots[i].len;
		c->root_count = i + 1;
		pki_digest(roots[i].data, roots[i].len, c->root_digest[i]);
	}
	if (pin) {
		c->has_pin = true;
		memcpy(c->pin, pin, ENV_DIGEST_BYTES);
	}
	c->trust = (uint32_t)w->cred_count + 1;
	if (c->root_count > 0 || c->has_pin) {
		size_t i;
		for (i = 0; i < w->trust_count; i++)
			if (world_cred_same_trust(&w->creds[w->trusts[i] - 1], c))
				break;
		if (i < w->trust_count)
			c->trust = w->trusts[i];
		else if (w->trust_count == w->trust_cap &&
			 grow_array((void **)&w->trusts, &w->trust_cap,
				    w->trust_count + 1, sizeof *w->trusts))
			goto nomem;
		else
			w->trusts[w->trust_count++] = c->trust;
	}
	return (uint32_t)++w->cred_count;
nomem:
	free(c->cert);
	free(c->roots[0]);
	free(c->roots[1]);
	memset(c, 0, sizeof *c);
	return 0;
}

static const struct sim_cred *world_cred(const struct world *w, uint32_t id)
{
	assert(id <= w->cred_count);
	return id ? &w->creds[id - 1] : NULL;
}

/* Whether a holder of id checks its peers: it has roots or a pin. */
static bool world_cred_trusts(const struct world *w, uint32_t id)
{
	const struct sim_cred *c = world_cred(w, id);
	return c && (c->root_count > 0 || c->has_pin);
}

/* Verifies cert_cred's certificate against trust_cred's roots (or, with a
 * pin and no roots, against the root of that digest among cert_cred's own:
 * the chain its holder would present), times aside. */
static void world_vcache_compute(struct world *w, uint32_t cert_cred, uint32_t trust_cred,
				 struct sim_vcache *e)
{
	const struct sim_cred *c = world_cred(w, cert_cred);
	const struct sim_cred *t = world_cred(w, trust_cred);
	struct env_blob cert, roots[2];
	size_t root_count = 0;
	char why[PKI_WHY_BYTES];

	e->ok = false;
	if (!c || !c->cert || !c->read_ok || !t)
		return;
	if (t->root_count > 0) {
		for (size_t i = 0; i < t->root_count; i++)
			roots[root_count++] =
				(struct env_blob){t->roots[i], t->root_len[i]};
	} else if (t->has_pin) {
		for (size_t i = 0; i < c->root_count && !root_count; i++)
			if (memcmp(c->root_digest[i], t->pin, ENV_DIGEST_BYTES) == 0)
				roots[root_count++] =
					(struct env_blob){c->roots[i], c->root_len[i]};
	}
	if (!root_count)
		return;
	cert = (struct env_blob){c->cert, c->cert_len};
	/* at its own start: the times are checked per message */
	e->ok = pki_verify_cached(&w->pki_cache, &cert, roots, root_count,
				  c->info.not_before_s, &e->c, why) == 0;
}

static struct sim_vcache *world_vcache_slot(struct world *w, uint64_t key);

/* What cert_cred's certificate proves to a holder of trust_cred at now:
 * true and *out, or false (no certificate, not chaining, outside its
 * validity). Cached per pair. */
static bool world_verify(struct world *w, uint32_t cert_cred, uint32_t trust_cred,
			 struct pki_cert *out)
{
	uint64_t key;
	struct sim_vcache *e = NULL;
	int64_t now_s = world_pki_now(w);

	if (!cert_cred || !trust_cred)
		return false;
	/* what trust_cred accepts is what its trust's first holder does */
	trust_cred = world_cred(w, trust_cred)->trust;
	key = (uint64_t)cert_cred << 32 | trust_cred;
	e = world_vcache_slot(w, key);
	if (!e)
		return false; /* out of memory: as a failed handshake */
	if (!e->key) {
		world_vcache_compute(w, cert_cred, trust_cred, e);
		e->key = key;
		w->vcache_count++;
	}
	if (!e->ok || now_s < e->c.not_before_s || now_s >= e->c.not_after_s)
		return false;
	*out = e->c;
	return true;
}

/* The cache's entry for key (cert_cred << 32 | trust): the one held, or an
 * empty one (key 0) for it to fill; NULL when out of memory. */
static struct sim_vcache *world_vcache_slot(struct world *w, uint64_t key)
{
	size_t j;

	if ((w->vcache_count + 1) * 2 > w->vcache_cap) {
		size_t cap = w->vcache_cap ? w->vcache_cap * 2 : 64;
		struct sim_vcache *v = calloc(cap, sizeof *v);
		if (!v)
			return NULL;
		for (size_t i = 0; i < w->vcache_cap; i++) {
			if (!w->vcache[i].key)
				continue;
			j = rng_mix64(w->vcache[i].key) & (cap - 1);
			while (v[j].key)
				j = (j + 1) & (cap - 1);
			v[j] = w->vcache[i];
		}
		free(w->vcache);
		w->vcache = v;
		w->vcache_cap = cap;
	}
	j = rng_mix64(key) & (w->vcache_cap - 1);
	while (w->vcache[j].key && w->vcache[j].key != key)
		j = (j + 1) & (w->vcache_cap - 1);
	return &w->vcache[j];
}

/* 32 bytes of n's key stream. */
static void world_key_draw(struct sim_node *n, uint8_t seed[PKI_SEED_BYTES])
{
	for (size_t i = 0; i < PKI_SEED_BYTES; i += 8) {
		uint64_t x = rng_next(&n->rng_key);
		memcpy(seed + i, &x, 8);
	}
}

int world_pki_provision(struct world *w, uint32_t node,
			const uint8_t seed[PKI_SEED_BYTES], const struct env_blob *cert,
			const struct env_blob *roots, size_t root_count)
{
	struct env_blob key = {seed, PKI_SEED_BYTES};
	struct sim_node *n;
	uint32_t id;

	ASSERT_NODE(w, node);
	n = w->nodes[node];
	if (root_count < 1 || root_count > 2 || !cert || !cert->len)
		return CS_EINVAL;
	if (!pki_key_matches(&key, cert))
		return CS_EAUTH;
	id = world_cred_add(w, cert, roots, root_count, NULL);
	if (!id)
		return CS_ENOMEM;
	n->cred = id;
	memcpy(n->key_seed, seed, PKI_SEED_BYTES);
	n->has_key = true;
	return 0;
}

int world_pki_csr(struct world *w, uint32_t node, uint8_t *buf, size_t cap, size_t *len)
{
	struct sim_node *n;

	ASSERT_NODE(w, node);
	n = w->nodes[node];
	if (!n->has_key) {
		world_key_draw(n, n->key_seed);
		n->has_key = true;
	}
	return pki_csr_create(n->key_seed, buf, cap, len);
}

int world_pki_cert_set(struct world *w, uint32_t node, const struct env_blob *cert)
{
	const struct sim_cred *c;
	struct env_blob roots[2];
	struct sim_node *n;
	uint32_t id;

	ASSERT_NODE(w, node);
	n = w->nodes[node];
	c = world_cred(w, n->cred);
	for (size_t i = 0; c && i < c->root_count; i++)
		roots[i] = (struct env_blob){c->roots[i], c->root_len[i]};
	id = world_cred_add(w, cert && cert->len ? cert : NULL, roots,
			    c ? c->root_count : 0, c && c->has_pin ? c->pin : NULL);
	if (!id)
		return CS_ENOMEM;
	n->cred = id;
	world_trace_at(w, node, SIM_EV_FAULT, 0xce47, cert ? cert->len : 0);
	return 0;
}

bool world_pki_identity(struct world *w, uint32_t of, uint32_t to,
			struct env_identity *out)
{
	struct pki_cert c;

	ASSERT_NODE(w, of);
	ASSERT_NODE(w, to);
	memset(out, 0, sizeof *out);
	if (!world_verify(w, w->nodes[of]->cred, w->nodes[to]->cred, &c))
		return false;
	world_pki_fields(&c, out);
	return true;
}

/* ---------------------------------------------------------------- network */

void world_net_set_delay(struct world *w, us_t min_us, us_t max_us)
{
	assert(min_us <= max_us);
	w->delay_min_us = min_us;
	w->delay_max_us = max_us;
	world_trace_at(w, WORLD_NODE_NONE, SIM_EV_FAULT, min_us, max_us);
}

static const struct sim_link_rule *world_rule_find(const struct world *w, uint32_t src,
						   uint32_t dst)
{
	for (size_t i = 0; i < w->rule_count; i++)
		if (w->rules[i].src == src && w->rules[i].dst == dst)
			return &w->rules[i];
	return NULL;
}

int world_net_link(struct world *w, const struct sim_link_rule *rule)
{
	struct sim_link_rule *r =
		(struct sim_link_rule *)world_rule_find(w, rule->src, rule->dst);
	us_t last_due_us = 0;

	assert(rule->src < w->node_count);
	assert(rule->dst < w->node_count);
	if (rule->has_delay)
		assert(rule->delay_min_us <= rule->delay_max_us);
	if (!r) {
		if (w->rule_count >= LIMIT_SIM_LINK_RULES_MAX)
			return CS_ELIMIT;
		if (grow_array((void **)&w->rules, &w->rule_cap, w->rule_count + 1,
			       sizeof *w->rules))
			return CS_ENOMEM;
		r = &w->rules[w->rule_count++];
	} else {
		last_due_us = r->last_due_us; /* FIFO holds across a change */
	}
	*r = *rule;
	r->last_due_us = last_due_us;
	world_trace_at(w, rule->src, SIM_EV_FAULT, rule->dst,
		       ((uint64_t)rule->loss_ppm << 32) | rule->dup_ppm);
	return 0;
}

int world_net_partition(struct world *w, const uint32_t *group_of, size_t count,
			uint32_t star_group)
{
	struct sim_partition *parts, *p;
	uint64_t h = star_group;

	if (w->part_count >= LIMIT_SIM_PARTITIONS_MAX)
		return CS_ELIMIT;
	parts = realloc(w->parts, (w->part_count + 1) * sizeof *parts);
	if (!parts)
		return CS_ENOMEM;
	w->parts = parts;
	p = &parts[w->part_count];
	p->group_of = calloc(w->node_count ? w->node_count : 1, sizeof *p->group_of);
	if (!p->group_of)
		return CS_ENOMEM;
	p->group_of_count = w->node_count;
	p->star_group = star_group;
	for (size_t i = 0; i < w->node_count; i++) {
		uint32_t g = i < count ? group_of[i] : 0;
		p->group_of[i] = g ? g : star_group;
		h = world_fold(h, p->group_of[i]);
	}
	w->part_count++;
	world_trace_at(w, WORLD_NODE_NONE, SIM_EV_FAULT, w->part_count, h);
	return 0;
}

void world_net_heal(struct world *w)
{
	for (size_t i = 0; i < w->part_count; i++)
		free(w->parts[i].group_of);
	free(w->parts);
	w->parts = NULL;
	w->part_count = 0;
	w->rule_count = 0;
	world_trace_at(w, WORLD_NODE_NONE, SIM_EV_FAULT, 0, 0);
}

bool world_net_blocked(const struct world *w, uint32_t a, uint32_t b)
{
	for (size_t i = 0; i < w->part_count; i++) {
		const struct sim_partition *p = &w->parts[i];
		uint32_t ga = p->group_of[a], gb = p->group_of[b];
		if (ga != 0 && gb != 0 && ga != gb)
			return true;
	}
	return false;
}

bool world_net_cut(const struct world *w, uint32_t a, uint32_t b)
{
	const struct sim_link_rule *ab = world_rule_find(w, a, b);
	const struct sim_link_rule *ba = world_rule_find(w, b, a);
	return world_net_blocked(w, a, b) || (ab && ab->loss_ppm >= 1000000) ||
	       (ba && ba->loss_ppm >= 1000000);
}

void world_net_stats(const struct world *w, struct sim_net_stats *stats)
{
	*stats = w->stats;
}

/* Schedules one copy of a message; takes ownership of m. Messages on a
 * link with jitter stay FIFO, as on a TCP connection, unless reordered. */
static int world_msg_schedule(struct world *w, struct sim_node *src, struct sim_msg *m,
			      struct sim_link_rule *rule, bool reorder)
{
	us_t at = w->now_us + world_link_delay(w, src, m->dst, rule);
	int rv;
	if (rule && !reorder) {
		if (at < rule->last_due_us)
			at = rule->last_due_us;
		rule->last_due_us = at;
	}
	rv = world_push(w, at, SIM_EV_MSG, m->dst, m->dst_inc, m, 0);
	if (rv)
		free(m);
	return rv;
}

/* Sends from src to node di; `answer`: back on the connection a message
 * came on (env reply): the peer is not checked, as no new TLS handshake
 * happens. */
static int world_send_to(struct sim_node *src, int64_t di, const uint8_t *buf, size_t len,
			 bool answer)
{
	struct world *w = src->world;
	struct sim_link_rule *rule;
	struct sim_node *dst;
	struct sim_msg *m;
	int rv;

	dst = w->nodes[di];
	if (w->send_tap_fn)
		w->send_tap_fn(w->send_tap_ctx, w, src->index, dst->index, buf, len);
	w->stats.sent++;
	world_trace_at(w, src->index, SIM_EV_SEND, (uint64_t)di,
		       world_bytes_hash(buf, len));
	if (!dst->up) {
		w->stats.dropped_down++;
		world_trace_at(w, src->index, SIM_EV_DROP, (uint64_t)di, 1);
		return 0;
	}
	if (world_net_blocked(w, src->index, dst->index)) {
		w->stats.dropped_partition++;
		world_trace_at(w, src->index, SIM_EV_DROP, (uint64_t)di, 2);
		return 0;
	}
	/* A sender that trusts someone checks its peer, as its TLS handshake
	 * would: a peer whose certificate does not chain to its roots (or
	 * pin) gets nothing. */
	if (!answer && src->cred && world_cred_trusts(w, src->cred)) {
		struct pki_cert peer;
		if (dst->key_locked || !world_verify(w, dst->cred, src->cred, &peer)) {
			w->stats.dropped_auth++;
			world_trace_at(w, src->index, SIM_EV_DROP, (uint64_t)di,
				       WORLD_DROP_AUTH);
			return 0;
		}
	}
	rule = w->rule_count ? (struct sim_link_rule *)world_rule_find(w, src->index,
								       dst->index)
			     : NULL;
	if (rule && rng_chance_ppm(&src->rng_net, rule->loss_ppm)) {
		w->stats.dropped_loss++;
		world_trace_at(w, src->index, SIM_EV_DROP, (uint64_t)di, 3);
		return 0;
	}
	if (!world_conn_test(src, dst->index, WORLD_CONN_SENT))
		world_conn_set(src, dst->index, WORLD_CONN_SENT);
	m = malloc(sizeof *m + len);
	if (!m)
		return CS_ENOMEM;
	m->src = src->index;
	m->dst = dst->index;
	m->src_inc = src->inc;
	m->dst_inc = dst->inc;
	m->cred = src->key_locked ? 0 : src->cred; /* a locked key shows nothing */
	m->len = (uint32_t)len;
	if (len)
		memcpy(m->data, buf, len);
	if (rule && rule->dup_ppm && rng_chance_ppm(&src->rng_net, rule->dup_ppm)) {
		struct sim_msg *copy = malloc(sizeof *m + len);
		if (copy) {
			memcpy(copy, m, sizeof *m + len);
			w->stats.duplicated++;
			rv = world_msg_schedule(w, src, copy, rule, true);
			if (rv) {
				free(m);
				return rv;
			}
		}
	}
	return world_msg_schedule(
		w, src, m, rule,
		rule && rule->reorder_ppm &&
			rng_chance_ppm(&src->rng_net, rule->reorder_ppm));
}

static int world_send(struct env *env, const char *addr, const uint8_t *buf, size_t len)
{
	struct sim_node *src = env->impl;
	int64_t di;

	assert(src->up);
	if (len > LIMIT_FRAME_BYTES_MAX)
		return CS_ELIMIT;
	di = world_node_find(src->world, addr);
	if (di < 0)
		return CS_EINVAL;
	return world_send_to(src, di, buf, len, false);
}

/* A connection is its sending node and that node's incarnation: it closes
 * when that process dies. */
static int world_env_reply(struct env *env, uint64_t conn, const uint8_t *buf, size_t len)
{
	struct sim_node *src = env->impl;
	struct world *w = src->world;
	uint64_t node = conn >> 32;

	assert(src->up);
	if (len > LIMIT_FRAME_BYTES_MAX)
		return CS_ELIMIT;
	if (node == 0 || node > w->node_count || !w->nodes[node - 1]->up ||
	    w->nodes[node - 1]->inc != (uint32_t)conn)
		return CS_ECLOSED;
	return world_send_to(src, (int64_t)node - 1, buf, len, true);
}

static void world_msg_deliver(struct world *w, const struct sim_event *ev)
{
	struct sim_msg *m = ev->obj;
	struct sim_node *src = w->nodes[m->src];
	struct sim_node *dst = w->nodes[m->dst];

	if (!src->up || src->inc != m->src_inc || !dst->up || dst->inc != m->dst_inc) {
		w->stats.dropped_down++;
		world_trace_at(w, m->dst, SIM_EV_DROP, m->src, 4);
		return;
	}
	if (world_net_blocked(w, m->src, m->dst)) {
		w->stats.dropped_partition++;
		world_trace_at(w, m->dst, SIM_EV_DROP, m->src, 5);
		return;
	}
	w->stats.delivered++;
	world_trace_at(w, m->dst, SIM_EV_MSG, m->src, m->len);
	if (!world_conn_test(dst, m->src, WORLD_CONN_HEARD) &&
	    world_conn_set(dst, m->src, WORLD_CONN_HEARD)) {
		/* a new connection from this process of src */
		if (dst->peer_cb) {
			dst->peer_cb(&dst->env, src->name, true, dst->net_data);
			if (!dst->up || dst->inc != m->dst_inc)
				return;
		}
	}
	if (w->tap_fn)
		w->tap_fn(w->tap_ctx, w, m->src, m->dst, m->data, m->len);
	if (dst->recv_cb) {
		dst->in_recv = true;
		dst->recv_cred = m->cred;
		dst->recv_src = m->src;
		dst->recv_src_inc = m->src_inc;
		dst->recv_cb(&dst->env, src->name, m->data, m->len, dst->net_data);
		dst->in_recv = false;
		dst->recv_cred = 0;
	}
}

static void world_peer_deliver(struct world *w, const struct sim_event *ev)
{
	struct sim_node *n = w->nodes[ev->node];
	uint32_t peer = (uint32_t)ev->arg;

	world_trace_at(w, ev->node, SIM_EV_PEER, peer, 0);
	if (n->peer_cb)
		n->peer_cb(&n->env, w->nodes[peer]->name, false, n->net_data);
}

/* ---------------------------------------------------------------- env of a node */

static ms_t world_env_now(struct env *env)
{
	struct sim_node *n = env->impl;
	return n->world->now_us / 1000;
}

static const char *world_env_self(struct env *env)
{
	struct sim_node *n = env->impl;
	return n->name;
}

static int world_env_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
			    void *data)
{
	struct sim_node *n = env->impl;
	assert(n->up);
	n->recv_cb = recv_cb;
	n->peer_cb = peer_cb;
	n->net_data = data;
	return 0;
}

static int world_env_storage(struct env *env, const char *name, sqlite3 **db)
{
	struct sim_node *n = env->impl;
	char file[48], err[256];
	int rv;

	assert(n->up);
	for (size_t i = 0; i < n->storage_count; i++)
		if (strcmp(n->storage[i].name, name) == 0) {
			*db = n->storage[i].db;
			return 0;
		}
	if (n->storage_count >= WORLD_STORAGE_MAX ||
	    strlen(name) >= sizeof n->storage[0].name)
		return CS_ELIMIT;
	snprintf(file, sizeof file, "%s.db", name);
	rv = simvfs_open(n->world->vfs, n->name, file, db, err, sizeof err);
	if (rv)
		return rv;
	if (sqlite3_exec(*db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		/* a corrupt file (issue 19) is handed over all the same: its
		 * owner finds it corrupt at its first read and decides (the
		 * agent starts clean, raft refuses); a failing disk is not */
		int code = sqlite3_errcode(*db) & 0xff;
		if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB) {
			sqlite3_close_v2(*db);
			return CS_ESTORAGE;
		}
	}
	memcpy(n->storage[n->storage_count].name, name, strlen(name) + 1);
	n->storage[n->storage_count++].db = *db;
	return 0;
}

static uint64_t world_env_random(struct env *env)
{
	struct sim_node *n = env->impl;
	return rng_next(&n->rng_env);
}

static void world_env_log(struct env *env, enum env_log_level level, const char *msg)
{
	struct sim_node *n = env->impl;
	if (n->world->log_fn)
		n->world->log_fn(n->world->log_ctx, n->world, n->index, level, msg);
}

/* The executor: the world's simulated runtime (sim/simexec). */
static int world_env_ctl_open(struct env *env, const struct env_container_spec *spec,
			      struct env_ctl **ctl)
{
	struct sim_node *n = env->impl;
	assert(n->up);
	return simexec_ctl_open(n->world->exec, n->index, spec, ctl);
}

static int world_env_ctl_do(struct env_ctl *ctl, enum env_ctl_op op,
			    struct env_ctl_req *req, env_ctl_cb cb)
{
	return simexec_ctl_do(ctl, op, req, cb);
}

static void world_env_ctl_close(struct env_ctl *ctl, env_ctl_close_cb cb, void *data)
{
	simexec_ctl_close(ctl, cb, data);
}

static int world_env_logs_read(struct env *env, struct env_logs_req *req, env_logs_cb cb)
{
	struct sim_node *n = env->impl;
	assert(n->up);
	return simexec_logs_read(n->world->exec, n->index, req, cb);
}

static int world_env_ctl_list(struct env *env, struct env_ctl_list_req *req,
			      env_ctl_list_cb cb)
{
	struct sim_node *n = env->impl;
	assert(n->up);
	return simexec_ctl_list(n->world->exec, n->index, req, cb);
}

/* The program asked to die: the process death runs as a call of its own,
 * after the current callback (the program cannot be freed under its own
 * feet). Its containers keep running, as under a real dockerd. */
static void world_exit_fire(struct world *w, void *data)
{
	struct sim_node *n = data;
	world_node_down(w, n->index, WORLD_DOWN_EXIT, false);
}

static void world_env_exit(struct env *env, const char *why)
{
	struct sim_node *n = env->impl;
	if (n->exiting)
		return;
	n->exiting = true;
	env_logf(env, ENV_LOG_ERROR, "msg=\"fatal: the daemon exits\" why=\"%s\"", why);
	if (world_call_at(n->world, n->world->now_us, n->index, world_exit_fire, n))
		assert(!"no memory for a node's exit"); /* the queue's own bound */
}

/* ---- identity (env.h's contract; the helpers are in "identity" above) */

static void world_env_sender(struct env *env, struct env_identity *out)
{
	struct sim_node *n = env->impl;
	struct pki_cert c;

	memset(out, 0, sizeof *out);
	if (!n->in_recv)
		return;
	if (world_verify(n->world, n->recv_cred, n->cred, &c))
		world_pki_fields(&c, out);
	out->conn = (uint64_t)(n->recv_src + 1) << 32 | n->recv_src_inc;
	if (n->recv_src < n->world->node_count)
		memcpy(out->peer_ip, n->world->nodes[n->recv_src]->ip,
		       sizeof out->peer_ip);
}

void world_node_set_ip(struct world *w, uint32_t node, const char *ip)
{
	assert(node < w->node_count);
	assert(strlen(ip) < sizeof w->nodes[node]->ip);
	memcpy(w->nodes[node]->ip, ip, strlen(ip) + 1);
}

static int world_env_pki_csr(struct env *env, uint8_t *buf, size_t cap, size_t *len)
{
	struct sim_node *n = env->impl;
	uint8_t seed[PKI_SEED_BYTES];
	int rv;

	world_key_draw(n, seed);
	rv = pki_csr_create_cached(&n->world->pki_cache, seed, buf, cap, len,
				   n->pending_digest);
	if (rv)
		return rv;
	memcpy(n->pending_seed, seed, sizeof seed);
	n->has_pending = true;
	return 0;
}

static int world_env_pki_ca_create(struct env *env, uint64_t cluster_id, ms_t life_ms,
				   uint8_t *cert, size_t cert_cap, size_t *cert_len,
				   uint8_t *key, size_t key_cap, size_t *key_len)
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	uint8_t seed[PKI_SEED_BYTES];
	int64_t now_s = world_pki_now(w);

	world_key_draw(n, seed);
	return pki_ca_create(seed, cluster_id, now_s, now_s + (int64_t)(life_ms / 1000),
			     ++w->pki_serial, cert, cert_cap, cert_len, key, key_cap,
			     key_len);
}

static int world_env_pki_sign(struct env *env, const struct env_blob *ca_cert,
			      const struct env_blob *ca_key, const struct env_blob *csr,
			      const struct env_identity *who, ms_t life_ms, uint8_t *cert,
			      size_t cap, size_t *len)
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	int64_t now_s = world_pki_now(w);
	char why[PKI_WHY_BYTES];

	return pki_sign_cached(&w->pki_cache, ca_cert, ca_key, csr, who, now_s,
			       now_s + (int64_t)(life_ms / 1000), ++w->pki_serial, cert,
			       cap, len, why);
}

/* Whether seed is the key of the certificate read into c. */
static bool world_key_is(const uint8_t seed[PKI_SEED_BYTES], const struct pki_cert *c)
{
	uint8_t d[ENV_DIGEST_BYTES];
	return pki_key_digest(seed, d) == 0 && memcmp(d, c->key, sizeof d) == 0;
}

static int world_env_pki_install(struct env *env, const struct env_blob *cert,
				 const struct env_blob *roots, size_t root_count)
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	const uint8_t *seed;
	struct pki_cert c, read;
	struct sim_vcache *e;
	char why[PKI_WHY_BYTES];
	uint32_t id;

	if (root_count < 1 || root_count > 2 || !cert || !cert->len)
		return CS_EAUTH;
	/* The certificate is parsed once (pki_verify), and the keys matched
	 * by the digest of their public key: a refusal is CS_EAUTH whether
	 * the key or the chain is wrong, as when pki_key_matches went first */
	if (pki_verify_cached(&w->pki_cache, cert, roots, root_count, world_pki_now(w),
			      &c, why))
		return CS_EAUTH;
	if (n->has_pending && memcmp(n->pending_digest, c.key, sizeof c.key) == 0)
		seed = n->pending_seed;
	else if (n->has_key && world_key_is(n->key_seed, &c))
		seed = n->key_seed;
	else
		return CS_EAUTH;
	/* its files: a faulty disk keeps nothing new (and the old ones) */
	if (world_disk_faulted(w, n->index))
		return CS_ESTORAGE;
	read = c; /* what pki_read says: pki_verify's fields, no root */
	memset(read.root, 0, sizeof read.root);
	id = world_cred_add_read(w, cert, &read, roots, root_count, NULL);
	if (!id)
		return CS_ESTORAGE; /* not durable: fatal to the caller */
	/* what the holder's own check of it (world_verify) would compute: the
	 * same certificate and roots, verified at its start, where a
	 * certificate that verifies now verifies too */
	e = world_vcache_slot(w, (uint64_t)id << 32 | world_cred(w, id)->trust);
	if (e && !e->key) {
		e->key = (uint64_t)id << 32 | world_cred(w, id)->trust;
		e->ok = true;
		e->c = c;
		w->vcache_count++;
	}
	if (seed != n->key_seed)
		memcpy(n->key_seed, seed, PKI_SEED_BYTES);
	n->has_key = true;
	n->has_pending = false;
	n->cred = id;
	return 0;
}

static int world_env_pki_pin(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES])
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	const struct sim_cred *c = world_cred(w, n->cred);
	struct env_blob cert = {c ? c->cert : NULL, c ? c->cert_len : 0};
	uint32_t id = world_cred_add(w, cert.len ? &cert : NULL, NULL, 0, digest);

	if (!id)
		return CS_ENOMEM;
	n->cred = id;
	return 0;
}

static int world_env_pki_lock(struct env *env, const uint8_t *kek)
{
	struct sim_node *n = env->impl;
	if (n->key_locked)
		return CS_EINVAL;
	if (world_disk_faulted(n->world, n->index))
		return CS_ESTORAGE;
	n->key_sealed = kek != NULL;
	memset(n->kek, 0, sizeof n->kek);
	if (kek)
		memcpy(n->kek, kek, sizeof n->kek);
	return 0;
}

static int world_env_pki_unlock(struct env *env, const uint8_t *kek)
{
	struct sim_node *n = env->impl;
	if (!n->key_sealed) {
		memcpy(n->kek, kek, sizeof n->kek);
		return 0;
	}
	if (memcmp(n->kek, kek, sizeof n->kek) != 0)
		return CS_EAUTH;
	n->key_locked = false;
	return 0;
}

static int world_env_pki_info(struct env *env, const struct env_blob *cert,
			      struct env_identity *out)
{
	struct sim_node *n = env->impl;
	struct world *w = n->world;
	const struct sim_cred *own = world_cred(w, n->cred);
	struct pki_cert c;
	char why[PKI_WHY_BYTES];

	memset(out, 0, sizeof *out);
	if (cert->len == 0) {
		if (!own || !own->cert)
			return CS_ENOENT;
		if (n->key_locked)
			return CS_EAUTH; /* its key still locked (autolock) */
		if (!own->read_ok)
			return CS_EINVAL;
		/* its root too, when it chains to one it trusts (as the real
		 * env says) */
		if (world_cred_trusts(w, n->cred) &&
		    world_verify(w, n->cred, n->cred, &c))
			world_pki_fields(&c, out);
		else
			world_pki_fields(&own->info, out);
		return 0;
	}
	if (pki_read_cached(&w->pki_cache, cert, &c, why))
		return CS_EINVAL;
	world_pki_fields(&c, out);
	return 0;
}

/* issue 17: the data plane, on the node's machine (sim/simexec.c) */
static int world_env_net_set(struct env *env, const struct env_net_state *st)
{
	struct sim_node *n = env->impl;
	assert(n->up);
	return simexec_net_set(n->world->exec, n->index, st);
}

static int world_env_net_remove(struct env *env, uint64_t network_id)
{
	struct sim_node *n = env->impl;
	assert(n->up);
	return simexec_net_remove(n->world->exec, n->index, network_id);
}

/* The wall clock: WORLD_EPOCH_MS plus virtual time (a seed replays it). */
static uint64_t world_env_wall(struct env *env)
{
	return (uint64_t)WORLD_EPOCH_MS + world_env_now(env);
}

static const struct env_ops world_env_ops = {
	.now_ms = world_env_now,
	.timer_start = world_timer_start,
	.timer_stop = world_timer_stop,
	.self_addr = world_env_self,
	.listen = world_env_listen,
	.send = world_send,
	.storage_open = world_env_storage,
	.random_u64 = world_env_random,
	.log = world_env_log,
	.ctl_open = world_env_ctl_open,
	.ctl_do = world_env_ctl_do,
	.ctl_close = world_env_ctl_close,
	.ctl_list = world_env_ctl_list,
	.logs_read = world_env_logs_read,
	.exit = world_env_exit,
	.sender = world_env_sender,
	.pki_csr = world_env_pki_csr,
	.pki_ca_create = world_env_pki_ca_create,
	.pki_sign = world_env_pki_sign,
	.pki_install = world_env_pki_install,
	.pki_pin = world_env_pki_pin,
	.pki_info = world_env_pki_info,
	.reply = world_env_reply,
	.pki_lock = world_env_pki_lock,
	.pki_unlock = world_env_pki_unlock,
	.wall_ms = world_env_wall,
	.net_set = world_env_net_set,
	.net_remove = world_env_net_remove,
};

/* ---------------------------------------------------------------- running */

int world_call_at(struct world *w, us_t at_us, uint32_t node, world_call_fn fn,
		  void *data)
{
	struct sim_call *c = malloc(sizeof *c);
	uint32_t inc = 0;
	int rv;

	if (!c)
		return CS_ENOMEM;
	if (node != WORLD_NODE_NONE) {
		ASSERT_NODE(w, node);
		inc = w->nodes[node]->inc;
	}
	c->fn = fn;
	c->data = data;
	rv = world_push(w, at_us < w->now_us ? w->now_us : at_us, SIM_EV_CALL, node, inc,
			c, 0);
	if (rv)
		free(c);
	return rv;
}

us_t world_next_at(const struct world *w)
{
	return w->heap_count ? w->heap[0].at_us : UINT64_MAX;
}

void world_advance(struct world *w, us_t at_us)
{
	assert(at_us >= w->now_us);
	assert(at_us <= world_next_at(w));
	w->now_us = at_us;
}

bool world_step(struct world *w, us_t until_us)
{
	struct sim_event ev;

	if (w->heap_count == 0 || w->heap[0].at_us > until_us)
		return false;
	ev = world_pop(w);
	assert(ev.at_us >= w->now_us);
	w->now_us = ev.at_us;
	switch (ev.kind) {
	case SIM_EV_TIMER: world_timer_fire(w, &ev); break;
	case SIM_EV_MSG: world_msg_deliver(w, &ev); break;
	case SIM_EV_PEER: {
		struct sim_node *n = w->nodes[ev.node];
		if (n->up && n->inc == ev.inc)
			world_peer_deliver(w, &ev);
		break;
	}
	case SIM_EV_CALL: {
		struct sim_call *c = ev.obj;
		bool live = ev.node == WORLD_NODE_NONE ||
			    (w->nodes[ev.node]->up && w->nodes[ev.node]->inc == ev.inc);
		if (live) {
			world_trace_at(w, ev.node, SIM_EV_CALL, ev.seq, 0);
			c->fn(w, c->data);
		}
		break;
	}
	default: assert(!"unknown event kind");
	}
	world_event_free(&ev);
	return true;
}

/* ---------------------------------------------------------------- faults */

us_t world_node_up_since(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return w->nodes[node]->up_since_us;
}

/* A virtual time as the disks' clock (world_sqlite_now's), rounded up. */
static int64_t world_disk_clock(us_t at_us)
{
	if (at_us == UINT64_MAX)
		return INT64_MAX;
	return WORLD_EPOCH_MS + (int64_t)((at_us + 999) / 1000);
}

int world_disk_fault(struct world *w, uint32_t node, uint32_t faults, us_t until_us)
{
	ASSERT_NODE(w, node);
	return simvfs_fault(w->vfs, w->nodes[node]->name, faults,
			    world_disk_clock(until_us));
}

int world_disk_corrupt(struct world *w, uint32_t node, const char *file,
		       const char *table, uint32_t pages, uint32_t *flipped)
{
	ASSERT_NODE(w, node);
	return simvfs_corrupt(w->vfs, w->nodes[node]->name, file, table, pages, flipped);
}

uint64_t world_incarnations(const struct world *w)
{
	return w->inc_total;
}

/* A time of the disks' clock as virtual time: world_disk_clock's inverse
 * (INT64_MAX, a fault without an end, is UINT64_MAX). */
static us_t world_disk_us(int64_t ms)
{
	if (ms == INT64_MAX)
		return UINT64_MAX;
	if (ms <= WORLD_EPOCH_MS)
		return 0;
	return (us_t)(ms - WORLD_EPOCH_MS) * 1000;
}

us_t world_disk_faults_until(const struct world *w)
{
	return world_disk_us(simvfs_faults_until(w->vfs));
}

bool world_disk_faulted(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return simvfs_faulted(w->vfs, w->nodes[node]->name);
}

us_t world_disk_healthy_from(const struct world *w, uint32_t node)
{
	ASSERT_NODE(w, node);
	return world_disk_us(simvfs_healthy_from(w->vfs, w->nodes[node]->name));
}
