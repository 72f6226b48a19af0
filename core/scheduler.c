/* scheduler: filters, spread, batch placement. See scheduler.h.
 * Sections: types, helpers, constraints, failure history, reading the
 * store, spread orders, filters and reasons, the decision tree, writes,
 * groups, steps and runs.
 *
 * Shape of a plan: nodes are indexed by their rank in id order, services
 * likewise; every index is a uint32. Per node the plan keeps what is free
 * (CPU, memory) and how many active tasks it runs; per service, the records
 * of its tasks that hold resources (sorted by service) and its pending
 * tasks (pinned ones first, in node order, then unpinned ones in id order).
 * Groups come in two sweeps: first one per service with pending pinned
 * tasks (each checked on its node), then one per service with unpinned
 * ones, in id order (what the first sweep placed counts in the second).
 * When a group opens, the service's per-node counts are spread into two
 * dense arrays, its constraints parsed, and for unpinned tasks a decision
 * tree is built whose branches are label values (spread preferences) and
 * whose leaves hold heaps of the eligible nodes. Every placement changes only the chosen path (one node, and one
 * branch per level, each at the top of its heap), so it costs
 * O(levels x log(width)): one pass over the nodes per group, then a heap
 * fix per task. With a failure history, a group whose service has failures
 * ranks the nodes of its leaves by them first (SwarmKit's nodeLess), the
 * tree built again when a task of another spec version comes. */
#include "core/scheduler.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/allocator.h"
#include "core/errors.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/sort.h"

_Static_assert(LIMIT_SCHED_TASKS_PER_RUN <= LIMIT_STORE_BATCH_ACTIONS,
	       "a run's writes fit one batch");
_Static_assert(SCHED_RUN_BYTES_MAX < LIMIT_FRAME_BYTES_MAX / 2,
	       "a run's batch is one write");

#define SCHED_NONE	     UINT32_MAX
#define SCHED_LABEL_PREFIX   "node.labels."
#define SCHED_LABEL_PREFLEN  (sizeof SCHED_LABEL_PREFIX - 1)
#define SCHED_ENGINE_PREFIX  "engine.labels."
#define SCHED_ENGINE_PREFLEN (sizeof SCHED_ENGINE_PREFIX - 1)

enum { SCHED_REASON_BYTES = 1024 };

/* Pending tasks are read again when written, long after sched_new: fetch
 * the task this many places ahead, and its status half as many. */
enum { SCHED_PREFETCH_AHEAD = 16 };
#if defined(__GNUC__)
#define SCHED_PREFETCH(addr) __builtin_prefetch(addr)
#else
#define SCHED_PREFETCH(addr) ((void)(addr))
#endif

/* sched_group_place's answer when no node takes the next task. */
enum { SCHED_PLACE_STUCK = SCHED_STEP_FULL + 1 };

/* Filters in the order they run; constraint i is SCHED_F_CONSTRAINT + i, and
 * max replicas comes after the last constraint. */
enum {
	SCHED_F_AVAILABLE = 0,
	SCHED_F_CPU = 1,
	SCHED_F_MEMORY = 2,
	SCHED_F_CONSTRAINT = 3
};

/* ---------------------------------------------------------------- types */

struct sched_node {
	const Cs__Node *node;
	uint64_t id;		/* node->id, beside the counts a placement updates */
	int64_t cpu_free_milli; /* may go below 0 when a node shrank */
	int64_t mem_free_bytes;
	uint32_t active_count; /* active tasks, every service */
	bool available;	       /* READY and ACTIVE */
};

struct sched_svc {
	const Cs__Service *svc;
	int64_t cpu_milli; /* reservations of one task */
	int64_t mem_bytes;
	uint32_t rec_first, rec_count;	     /* in sched.recs */
	uint32_t pend_first, pend_count;     /* in sched.pend */
	uint32_t pin_count;		     /* the leading pinned ones of those */
	uint32_t pinned_first, pinned_count; /* in sched.pinned: placed pinned */
	uint32_t placed_count;		     /* of pend_count, written ASSIGNED */
};

/* A task that holds resources on a node: what the groups count. */
struct sched_rec {
	uint32_t svc;
	uint32_t node;
	bool active; /* desired RUNNING or less: counts for spread */
};

/* A pending task, and what its placement writes of it as read (the plan
 * lives only while its pending tasks stay as read: sched_survives), so
 * that a placement reads no line of the task (at 1,000,000 tasks each is
 * a cache miss: a third of the plan's time). */
struct sched_pend {
	const Cs__Task *task;
	uint64_t id, version;
	uint64_t timestamp_ms; /* of its status */
	uint32_t svc;
	uint32_t node; /* pinned node, or SCHED_NONE */
};

enum sched_ckey {
	SCHED_CKEY_INVALID,
	SCHED_CKEY_ID,
	SCHED_CKEY_HOSTNAME,
	SCHED_CKEY_ROLE,
	SCHED_CKEY_LABEL,
	SCHED_CKEY_OS,		 /* node.platform.os */
	SCHED_CKEY_ARCH,	 /* node.platform.arch */
	SCHED_CKEY_ENGINE_LABEL, /* engine.labels.KEY */
	SCHED_CKEY_IP,		 /* node.ip: an address or a CIDR block */
};

enum { SCHED_IP_BYTES = 16 }; /* IPv6; IPv4 as ::ffff:a.b.c.d */

/* A parsed constraint; strings point into text (borrowed from the spec). */
struct sched_constraint {
	const char *text;
	enum sched_ckey key;
	bool equal; /* == (else !=) */
	const char *label;
	size_t label_len;
	const char *value;
	size_t value_len;
	uint64_t id;		    /* node.id's value */
	uint8_t ip[SCHED_IP_BYTES]; /* node.ip's address (masked: a block) */
	unsigned ip_bits;	    /* node.ip's prefix length (128: one address) */
};

/* Nodes ordered by the values of a list of labels (missing last), then id;
 * shared by every group with the same spread preferences. */
struct sched_spread {
	const char **keys; /* label keys, borrowed from a spec */
	size_t level_count;
	uint32_t *order; /* node indexes */
	uint32_t *diff;	 /* first level where order[i] differs from order[i-1] */
};

/* A branch of the decision tree: the root, a label value at some level, or
 * a leaf. Its items (a slice of group.items) are its eligible nodes (leaf)
 * or its children with an eligible node under them (inner), in order of
 * their keys (struct sched_item): a sorted run made when the tree is
 * built, and a queue of the items that took a task since, keyed again.
 * The next pick is the smaller of the two heads (issue 18: a heap's sift
 * down, 13 levels at 10,000 nodes, was 7% of the loop). Why a queue stays
 * in order: only the smallest item of a branch ever changes (it takes a
 * task: its counts go up by one, its key by one fixed step), so the items
 * taken come in ascending order, and so do their new keys. */
struct sched_branch {
	uint32_t parent;	  /* SCHED_NONE for the root */
	uint32_t count;		  /* active tasks of the service under it */
	uint32_t item_first;	  /* its slice: the run, then the queue's ring */
	uint32_t item_cap;	  /* the most items it holds (run or ring) */
	uint32_t item_count;	  /* items now: the run's rest and the queue */
	uint32_t run_at, run_end; /* the run's rest */
	uint32_t q_at, q_count;	  /* the queue's head in its ring, and length */
	bool leaf;
};

/* An item of a branch with its sort key, so that an order compares keys
 * alone (reading each compared node's counts from p->svc_active and
 * p->nodes cost a cache miss or two). A leaf's: hi = failure rank << 32 |
 * the service's active tasks, lo = all active tasks << 32 | node index
 * (SwarmKit's nodeLess, then the index); an inner one's: hi = the
 * branch's count, lo = branch index. The index is lo's low 32 bits. */
struct sched_item {
	uint64_t hi, lo;
};

enum sched_phase { SCHED_PHASE_PINNED, SCHED_PHASE_PLACE, SCHED_PHASE_REASONS };

struct sched_group {
	uint32_t svc;
	enum sched_phase phase;
	bool fail_svc;	       /* the history holds failures of the service */
	bool fail_on;	       /* fail_rank has a non-zero entry */
	uint64_t fail_version; /* the spec version fail_rank is for */
	uint32_t next;	       /* next pending task, relative to pend_first */
	uint32_t pinned_count; /* the leading pinned tasks */
	struct sched_constraint *cons;
	size_t cons_count;
	/* per constraint, the plan's memo of its results by node index
	 * (sched_cmemo; NULL: none, evaluated every time) */
	uint8_t **cons_memo;
	uint64_t replicas_max; /* 0: no limit */
	const struct sched_spread *spread;
	struct sched_branch *branches; /* NULL until the tree is built */
	size_t branch_count;
	struct sched_item *items;
	size_t *fail_counts; /* per filter, for reasons */
	char reason[SCHED_REASON_BYTES];
	bool *port_busy; /* per node: a host port taken (issue 15); NULL: none */
};

/* A constraint's results on the plan's nodes, by node index: 0 not asked
 * yet, else SCHED_CMEMO_PASS or SCHED_CMEMO_FAIL. Groups whose services
 * name the same constraint text share one (issue 18: at 10,000 nodes each
 * group evaluated its constraints on every node, label lookups and string
 * compares, 8% of the loop). A node's change drops the plan, and a result
 * depends on the node alone, so a memo holds for the plan's life. */
enum { SCHED_CMEMO_MAX = 32, SCHED_CMEMO_PASS = 1, SCHED_CMEMO_FAIL = 2 };

struct sched_cmemo {
	const char *text; /* borrowed from a service's spec, as the plan's */
	uint8_t *result;
};

struct sched {
	const struct store *s;
	uint64_t now_ms;
	struct sched_node *nodes;
	size_t node_count;
	struct sched_svc *svcs;
	size_t svc_count;
	uint32_t *svc_slots; /* open addressing: service id -> index */
	size_t svc_slot_mask;
	struct sched_rec *recs;
	size_t rec_count;
	struct sched_pend *pend;
	size_t pend_count;
	uint32_t *svc_active; /* per node, for the open group */
	uint32_t *svc_live;
	uint32_t *fail_rank; /* per node, for the open group: SwarmKit's nodeLess */
	const struct sched_failures *fails; /* borrowed; NULL: none */
	uint32_t *pinned; /* nodes of the pinned tasks placed, by service */
	size_t pinned_count;
	bool place_sweep; /* the pinned tasks of every service are done */
	struct sched_spread *spreads;
	size_t spread_count;
	size_t spread_cap;
	uint32_t next_svc; /* where to look for the next group */
	bool in_group;
	bool spent;
	/* a task came into the store since the read (sched_survives): a
	 * finished plan cannot stand for a new read (see sched_pass) */
	bool stale;
	struct sched_group g;
	struct sched_stats stats;
	/* ids of the tasks this pass wrote (open addressing, 0 = empty): how
	 * sched_survives knows its own writes landing (see sched_pass) */
	uint64_t *written;
	size_t written_mask, written_count;
	struct sched_cmemo cmemo[SCHED_CMEMO_MAX];
	size_t cmemo_count;
};

/* ---------------------------------------------------------------- helpers */

static char sched_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive equality of a[0..alen) and b[0..blen). */
static bool sched_eq_fold(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (sched_lower(a[i]) != sched_lower(b[i]))
			return false;
	return true;
}

static bool sched_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trims spaces off both ends of s[0..*len); returns the new start. */
static const char *sched_trim(const char *s, size_t *len)
{
	while (*len > 0 && sched_is_space(s[0])) {
		s++;
		(*len)--;
	}
	while (*len > 0 && sched_is_space(s[*len - 1]))
		(*len)--;
	return s;
}

/* Returns the value of node label key[0..key_len) (case-sensitive, as in
 * SwarmKit), or NULL when the node lacks it. */
static const char *sched_node_label(const Cs__Node *n, const char *key, size_t key_len)
{
	for (size_t i = 0; i < n->n_labels; i++) {
		const Cs__Label *l = n->labels[i];
		if (l->key && strlen(l->key) == key_len &&
		    memcmp(l->key, key, key_len) == 0)
			return l->value ? l->value : "";
	}
	return NULL;
}

/* Returns the value of engine label key[0..key_len), or NULL. */
static const char *sched_engine_label(const Cs__Node *n, const char *key, size_t key_len)
{
	for (size_t i = 0; i < n->n_engine_labels; i++) {
		const Cs__Label *l = n->engine_labels[i];
		if (l->key && strlen(l->key) == key_len &&
		    memcmp(l->key, key, key_len) == 0)
			return l->value ? l->value : "";
	}
	return NULL;
}

/* Parses text[0..len) as an IPv4 or IPv6 address into out (IPv4 mapped
 * into IPv6, as Go's net.ParseIP); *v4 says which it was. Returns whether
 * it is one. */
static bool sched_ip_parse(const char *text, size_t len, uint8_t out[SCHED_IP_BYTES],
			   bool *v4)
{
	char buf[64];
	uint8_t a4[4];

	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, a4) == 1) {
		memset(out, 0, SCHED_IP_BYTES);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, a4, 4);
		*v4 = true;
		return true;
	}
	*v4 = false;
	return inet_pton(AF_INET6, buf, out) == 1;
}

/* Whether a and b agree on their first bits bits. */
static bool sched_ip_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	assert(bits <= 8 * SCHED_IP_BYTES);
	for (unsigned i = 0; i < bits / 8; i++)
		if (a[i] != b[i])
			return false;
	if (bits % 8) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits % 8));
		return (a[bits / 8] & mask) == (b[bits / 8] & mask);
	}
	return true;
}

/* Reads node.ip's value: an address (ip_bits 128) or a CIDR block
 * (SwarmKit's net.ParseIP, then net.ParseCIDR). Returns whether it is
 * either. */
static bool sched_ip_value(struct sched_constraint *c)
{
	const char *slash = memchr(c->value, '/', c->value_len);
	size_t addr_len = slash ? (size_t)(slash - c->value) : c->value_len;
	unsigned bits = 0;
	bool v4;

	if (!sched_ip_parse(c->value, addr_len, c->ip, &v4))
		return false;
	if (!slash) {
		c->ip_bits = 8 * SCHED_IP_BYTES;
		return true;
	}
	if (addr_len + 1 == c->value_len || c->value_len - addr_len - 1 > 3)
		return false;
	for (size_t i = addr_len + 1; i < c->value_len; i++) {
		if (c->value[i] < '0' || c->value[i] > '9')
			return false;
		bits = bits * 10 + (unsigned)(c->value[i] - '0');
	}
	if (bits > (v4 ? 32u : 128u))
		return false;
	c->ip_bits = v4 ? bits + 96 : bits;
	/* the block's own address: host bits off, as ParseCIDR */
	for (unsigned i = c->ip_bits; i < 8 * SCHED_IP_BYTES; i++)
		c->ip[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	return true;
}

bool sched_ip_is_valid(const char *text, size_t len)
{
	uint8_t ip[SCHED_IP_BYTES];
	bool v4;
	return text && sched_ip_parse(text, len, ip, &v4);
}

/* Whether node n's address is in c's block (or is c's address). */
static bool sched_ip_match(const struct sched_constraint *c, const Cs__Node *n)
{
	uint8_t ip[SCHED_IP_BYTES];
	bool v4;

	if (!n->addr || !sched_ip_parse(n->addr, strlen(n->addr), ip, &v4))
		return false;
	return sched_ip_prefix_eq(ip, c->ip, c->ip_bits);
}

/* Clamps a uint64 quantity to int64 (free resources may go negative). */
static int64_t sched_i64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static Cs__TaskState sched_task_state(const Cs__Task *t)
{
	return t->status ? t->status->state : CS__TASK_STATE__TASK_STATE_NEW;
}

/* ---------------------------------------------------------------- constraints */

static bool sched_key_is(const char *key, size_t len, const char *name)
{
	return sched_eq_fold(key, len, name, strlen(name));
}

/* Parses text into *c; c->key is SCHED_CKEY_INVALID for anything the
 * scheduler does not understand. Borrows text. */
static void sched_constraint_parse(const char *text, struct sched_constraint *c)
{
	size_t i, key_len, value_len;
	const char *key, *value;

	memset(c, 0, sizeof *c);
	c->text = text ? text : "";
	c->key = SCHED_CKEY_INVALID;
	if (!text)
		return;
	for (i = 0; text[i] && text[i + 1]; i++)
		if (text[i + 1] == '=' && (text[i] == '=' || text[i] == '!'))
			break;
	if (!text[i] || !text[i + 1])
		return;
	c->equal = text[i] == '=';
	key_len = i;
	key = sched_trim(text, &key_len);
	value_len = strlen(text + i + 2);
	value = sched_trim(text + i + 2, &value_len);
	if (key_len == 0 || value_len == 0)
		return;
	for (size_t j = 0; j < value_len; j++)
		if (strchr("=!<>", value[j]))
			return;
	c->value = value;
	c->value_len = value_len;
	if (sched_key_is(key, key_len, "node.id")) {
		uint64_t id = 0;
		if (value_len > 16)
			return;
		for (size_t j = 0; j < value_len; j++) {
			char d = sched_lower(value[j]);
			if (d >= '0' && d <= '9')
				id = id << 4 | (uint64_t)(d - '0');
			else if (d >= 'a' && d <= 'f')
				id = id << 4 | (uint64_t)(d - 'a' + 10);
			else
				return;
		}
		c->id = id;
		c->key = SCHED_CKEY_ID;
	} else if (sched_key_is(key, key_len, "node.hostname")) {
		c->key = SCHED_CKEY_HOSTNAME;
	} else if (sched_key_is(key, key_len, "node.role")) {
		c->key = SCHED_CKEY_ROLE;
	} else if (key_len > SCHED_LABEL_PREFLEN &&
		   sched_eq_fold(key, SCHED_LABEL_PREFLEN, SCHED_LABEL_PREFIX,
				 SCHED_LABEL_PREFLEN)) {
		c->label = key + SCHED_LABEL_PREFLEN;
		c->label_len = key_len - SCHED_LABEL_PREFLEN;
		c->key = SCHED_CKEY_LABEL;
	} else if (sched_key_is(key, key_len, "node.platform.os")) {
		c->key = SCHED_CKEY_OS;
	} else if (sched_key_is(key, key_len, "node.platform.arch")) {
		c->key = SCHED_CKEY_ARCH;
	} else if (key_len > SCHED_ENGINE_PREFLEN &&
		   sched_eq_fold(key, SCHED_ENGINE_PREFLEN, SCHED_ENGINE_PREFIX,
				 SCHED_ENGINE_PREFLEN)) {
		c->label = key + SCHED_ENGINE_PREFLEN;
		c->label_len = key_len - SCHED_ENGINE_PREFLEN;
		c->key = SCHED_CKEY_ENGINE_LABEL;
	} else if (sched_key_is(key, key_len, "node.ip")) {
		/* SwarmKit takes any value and matches no node with one that
		 * is neither an address nor a block: refused here instead */
		if (sched_ip_value(c))
			c->key = SCHED_CKEY_IP;
	}
}

bool sched_constraint_is_valid(const char *text)
{
	struct sched_constraint c;
	sched_constraint_parse(text, &c);
	return c.key != SCHED_CKEY_INVALID;
}

/* Whether node n satisfies c. Values compare without case (SwarmKit); a
 * missing label or hostname fails == and passes !=; an invalid constraint
 * fails everywhere. */
static bool sched_constraint_match(const struct sched_constraint *c, const Cs__Node *n)
{
	bool match = false;
	const char *v;

	switch (c->key) {
	case SCHED_CKEY_INVALID: return false;
	case SCHED_CKEY_ID: match = n->id == c->id; break;
	case SCHED_CKEY_HOSTNAME:
		v = n->hostname ? n->hostname : "";
		match = sched_eq_fold(c->value, c->value_len, v, strlen(v));
		break;
	case SCHED_CKEY_ROLE:
		v = n->role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker";
		match = sched_eq_fold(c->value, c->value_len, v, strlen(v));
		break;
	case SCHED_CKEY_LABEL:
		v = sched_node_label(n, c->label, c->label_len);
		match = v && sched_eq_fold(c->value, c->value_len, v, strlen(v));
		break;
	case SCHED_CKEY_OS:
		v = n->platform_os ? n->platform_os : "";
		match = sched_eq_fold(c->value, c->value_len, v, strlen(v));
		break;
	case SCHED_CKEY_ARCH:
		v = n->platform_arch ? n->platform_arch : "";
		match = sched_eq_fold(c->value, c->value_len, v, strlen(v));
		break;
	case SCHED_CKEY_ENGINE_LABEL:
		v = sched_engine_label(n, c->label, c->label_len);
		match = v && sched_eq_fold(c->value, c->value_len, v, strlen(v));
		break;
	case SCHED_CKEY_IP: match = sched_ip_match(c, n); break;
	}
	return c->equal ? match : !match;
}

bool sched_node_satisfies(const Cs__Service *svc, const Cs__Node *n)
{
	const Cs__Placement *pl =
		svc->spec && svc->spec->task ? svc->spec->task->placement : NULL;
	for (size_t i = 0; pl && i < pl->n_constraints; i++) {
		struct sched_constraint c;
		sched_constraint_parse(pl->constraints[i], &c);
		if (!sched_constraint_match(&c, n))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------- failure history */

/* The failures of one (service, spec version, node), oldest first. */
struct sched_fail_entry {
	uint64_t service_id;
	uint64_t spec_version;
	uint64_t node_id;
	uint64_t *times_ms;
	size_t time_count;
	size_t time_cap;
};

/* Entries sorted by (service, spec version, node), so that a group finds
 * its service's in one binary search. */
struct sched_failures {
	struct sched_fail_entry *entries;
	size_t entry_count;
	size_t entry_cap;
	size_t total;	     /* times over every entry */
	uint64_t cleaned_ms; /* the last forgetting of expired entries */
};

static int sched_fail_key_cmp(const struct sched_fail_entry *e, uint64_t svc,
			      uint64_t ver, uint64_t node)
{
	if (e->service_id != svc)
		return e->service_id < svc ? -1 : 1;
	if (e->spec_version != ver)
		return e->spec_version < ver ? -1 : 1;
	if (e->node_id != node)
		return e->node_id < node ? -1 : 1;
	return 0;
}

/* Returns the index of the first entry not below (svc, ver, node). */
static size_t sched_fail_lower(const struct sched_failures *f, uint64_t svc, uint64_t ver,
			       uint64_t node)
{
	size_t lo = 0, hi = f->entry_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sched_fail_key_cmp(&f->entries[mid], svc, ver, node) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether a failure at t_ms still counts at now_ms (a clock that went back
 * counts it). */
static bool sched_fail_recent(uint64_t t_ms, uint64_t now_ms)
{
	return t_ms >= now_ms || now_ms - t_ms <= SCHED_FAILURES_WINDOW_MS;
}

/* Failures of e still counting at now_ms. */
static size_t sched_fail_entry_count(const struct sched_fail_entry *e, uint64_t now_ms)
{
	size_t i = e->time_count;
	/* oldest first: count back from the newest */
	while (i > 0 && sched_fail_recent(e->times_ms[i - 1], now_ms))
		i--;
	return e->time_count - i;
}

int sched_failures_new(struct sched_failures **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : CS_ENOMEM;
}

void sched_failures_free(struct sched_failures *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->entry_count; i++)
		free(f->entries[i].times_ms);
	free(f->entries);
	free(f);
}

size_t sched_failures_total(const struct sched_failures *f)
{
	return f ? f->total : 0;
}

/* Forgets every failure out of the window at now_ms, and the entries left
 * empty (SwarmKit's cleanupFailures, also once per window). */
static void sched_failures_forget(struct sched_failures *f, uint64_t now_ms)
{
	size_t kept = 0;
	for (size_t i = 0; i < f->entry_count; i++) {
		struct sched_fail_entry *e = &f->entries[i];
		size_t live = sched_fail_entry_count(e, now_ms);
		assert(f->total >= e->time_count - live);
		f->total -= e->time_count - live;
		memmove(e->times_ms, e->times_ms + (e->time_count - live),
			live * sizeof *e->times_ms);
		e->time_count = live;
		if (live == 0) {
			free(e->times_ms);
			continue;
		}
		f->entries[kept++] = *e;
	}
	f->entry_count = kept;
	f->cleaned_ms = now_ms;
}

int sched_failures_add(struct sched_failures *f, uint64_t node_id, uint64_t service_id,
		       uint64_t spec_version, uint64_t now_ms)
{
	struct sched_fail_entry *e;
	size_t at;

	assert(f != NULL);
	if (now_ms < f->cleaned_ms || now_ms - f->cleaned_ms >= SCHED_FAILURES_WINDOW_MS)
		sched_failures_forget(f, now_ms);
	if (f->total >= LIMIT_SCHED_FAILURES_KEPT)
		return CS_ELIMIT;
	at = sched_fail_lower(f, service_id, spec_version, node_id);
	if (at == f->entry_count ||
	    sched_fail_key_cmp(&f->entries[at], service_id, spec_version, node_id) != 0) {
		if (f->entry_count == f->entry_cap) {
			size_t cap = f->entry_cap ? 2 * f->entry_cap : 16;
			struct sched_fail_entry *v = realloc(f->entries, cap * sizeof *v);
			if (!v)
				return CS_ENOMEM;
			f->entries = v;
			f->entry_cap = cap;
		}
		memmove(&f->entries[at + 1], &f->entries[at],
			(f->entry_count - at) * sizeof *f->entries);
		f->entries[at] = (struct sched_fail_entry){
			.service_id = service_id,
			.spec_version = spec_version,
			.node_id = node_id,
		};
		f->entry_count++;
	}
	e = &f->entries[at];
	if (e->time_count > 0 && !sched_fail_recent(e->times_ms[0], now_ms)) {
		/* what SwarmKit's taskFailed drops: the expired head */
		size_t live = sched_fail_entry_count(e, now_ms);
		f->total -= e->time_count - live;
		memmove(e->times_ms, e->times_ms + (e->time_count - live),
			live * sizeof *e->times_ms);
		e->time_count = live;
	}
	if (e->time_count == e->time_cap) {
		size_t cap = e->time_cap ? 2 * e->time_cap : SCHED_FAILURES_MAX + 1;
		uint64_t *v = realloc(e->times_ms, cap * sizeof *v);
		if (!v) {
			if (e->time_count == 0) { /* a new entry: take it out again */
				free(e->times_ms);
				memmove(&f->entries[at], &f->entries[at + 1],
					(f->entry_count - at - 1) * sizeof *f->entries);
				f->entry_count--;
			}
			return CS_ENOMEM;
		}
		e->times_ms = v;
		e->time_cap = cap;
	}
	/* oldest first: a clock that went back files it as the newest */
	e->times_ms[e->time_count++] = now_ms;
	f->total++;
	assert(f->total <= LIMIT_SCHED_FAILURES_KEPT);
	return 0;
}

size_t sched_failures_count(const struct sched_failures *f, uint64_t node_id,
			    uint64_t service_id, uint64_t spec_version, uint64_t now_ms)
{
	size_t at;
	if (!f)
		return 0;
	at = sched_fail_lower(f, service_id, spec_version, node_id);
	if (at == f->entry_count ||
	    sched_fail_key_cmp(&f->entries[at], service_id, spec_version, node_id) != 0)
		return 0;
	return sched_fail_entry_count(&f->entries[at], now_ms);
}

/* Whether f holds an entry of service svc (any spec version). */
static bool sched_failures_has_service(const struct sched_failures *f, uint64_t svc)
{
	size_t at;
	if (!f || f->entry_count == 0)
		return false;
	at = sched_fail_lower(f, svc, 0, 0);
	return at < f->entry_count && f->entries[at].service_id == svc;
}

bool sched_task_is_failure(const Cs__Task *old, const Cs__Task *new_task,
			   const Cs__Service *svc)
{
	Cs__TaskState os, ns;

	if (!old || !new_task || new_task->node_id == 0)
		return false;
	os = sched_task_state(old);
	ns = sched_task_state(new_task);
	if (ns != CS__TASK_STATE__TASK_STATE_FAILED &&
	    ns != CS__TASK_STATE__TASK_STATE_REJECTED)
		return false;
	if (os == ns || os < CS__TASK_STATE__TASK_STATE_PENDING ||
	    os > CS__TASK_STATE__TASK_STATE_RUNNING)
		return false;
	/* pinned: SwarmKit's preassigned tasks */
	return svc && svc->spec && !svc->spec->global;
}

/* ---------------------------------------------------------------- reading the store */

/* Returns the index of service id, or SCHED_NONE. */
static uint32_t sched_svc_find(const struct sched *p, uint64_t id)
{
	size_t i = (size_t)hash_mix64(id) & p->svc_slot_mask;
	for (;;) {
		uint32_t x = p->svc_slots[i];
		if (x == SCHED_NONE)
			return SCHED_NONE;
		if (p->svcs[x].svc->id == id)
			return x;
		i = (i + 1) & p->svc_slot_mask;
	}
}

static int sched_read_nodes(struct sched *p)
{
	const Cs__Node *n;
	size_t i = 0;

	p->nodes = calloc(p->node_count ? p->node_count : 1, sizeof *p->nodes);
	p->svc_active = calloc(p->node_count ? p->node_count : 1, sizeof *p->svc_active);
	p->svc_live = calloc(p->node_count ? p->node_count : 1, sizeof *p->svc_live);
	p->fail_rank = calloc(p->node_count ? p->node_count : 1, sizeof *p->fail_rank);
	if (!p->nodes || !p->svc_active || !p->svc_live || !p->fail_rank)
		return CS_ENOMEM;
	for (n = store_node_next(p->s, NULL); n; n = store_node_next(p->s, n), i++) {
		struct sched_node *sn = &p->nodes[i];
		assert(i < p->node_count);
		if (i > 0)
			assert(p->nodes[i - 1].node->id < n->id);
		sn->node = n;
		sn->id = n->id;
		sn->cpu_free_milli =
			n->resources ? sched_i64(n->resources->millicpus) : 0;
		sn->mem_free_bytes =
			n->resources ? sched_i64(n->resources->memory_bytes) : 0;
		sn->available = n->state == CS__NODE_STATE__NODE_STATE_READY &&
				n->availability ==
					CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
	}
	assert(i == p->node_count);
	return 0;
}

static int sched_read_services(struct sched *p)
{
	const Cs__Service *sv;
	size_t slots = 16, i = 0;

	while (slots < 2 * p->svc_count)
		slots *= 2;
	p->svcs = calloc(p->svc_count ? p->svc_count : 1, sizeof *p->svcs);
	p->svc_slots = malloc(slots * sizeof *p->svc_slots);
	if (!p->svcs || !p->svc_slots)
		return CS_ENOMEM;
	memset(p->svc_slots, 0xff, slots * sizeof *p->svc_slots); /* SCHED_NONE */
	p->svc_slot_mask = slots - 1;
	for (sv = store_service_next(p->s, NULL); sv;
	     sv = store_service_next(p->s, sv), i++) {
		struct sched_svc *x = &p->svcs[i];
		const Cs__TaskSpec *ts = sv->spec ? sv->spec->task : NULL;
		size_t slot = (size_t)hash_mix64(sv->id) & p->svc_slot_mask;

		assert(i < p->svc_count);
		x->svc = sv;
		if (ts && ts->reservations) {
			x->cpu_milli = sched_i64(ts->reservations->millicpus);
			x->mem_bytes = sched_i64(ts->reservations->memory_bytes);
		}
		while (p->svc_slots[slot] != SCHED_NONE)
			slot = (slot + 1) & p->svc_slot_mask;
		p->svc_slots[slot] = (uint32_t)i;
	}
	assert(i == p->svc_count);
	return 0;
}

/* Classifies task t found on node index node (SCHED_NONE: unassigned):
 * pending, holding resources, or neither. */
static void sched_read_task(struct sched *p, const Cs__Task *t, uint32_t node,
			    struct sched_rec *recs, struct sched_pend *pend)
{
	Cs__TaskState state = sched_task_state(t);
	uint32_t svc;

	if (state == CS__TASK_STATE__TASK_STATE_PENDING &&
	    t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING) {
		svc = sched_svc_find(p, t->service_id);
		if (svc == SCHED_NONE) {
			p->stats.skipped_count++;
			return;
		}
		/* the allocator's first (issue 15: SwarmKit's NEW -> PENDING) */
		if (!alloc_task_ready(p->svcs[svc].svc, t)) {
			p->stats.skipped_count++;
			return;
		}
		assert(t->status != NULL); /* PENDING */
		pend[p->pend_count++] =
			(struct sched_pend){.task = t,
					    .id = t->id,
					    .version = t->version,
					    .timestamp_ms = t->status->timestamp_ms,
					    .svc = svc,
					    .node = node};
		return;
	}
	if (node == SCHED_NONE || state < CS__TASK_STATE__TASK_STATE_ASSIGNED ||
	    state > CS__TASK_STATE__TASK_STATE_RUNNING)
		return;
	svc = sched_svc_find(p, t->service_id);
	if (t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING)
		p->nodes[node].active_count++;
	if (svc == SCHED_NONE)
		return; /* its reservations went with its service */
	p->nodes[node].cpu_free_milli -= p->svcs[svc].cpu_milli;
	p->nodes[node].mem_free_bytes -= p->svcs[svc].mem_bytes;
	recs[p->rec_count++] = (struct sched_rec){
		.svc = svc,
		.node = node,
		.active = t->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING,
	};
}

/* A scan of the tasks by node: nodes are in id order too, so one cursor
 * follows the scan. Tasks are read SCHED_SCAN_AHEAD behind the scan, in
 * its order, each prefetched when the scan passes it and its status half
 * as far ahead (issue 18: at 1,000,000 tasks the read's cache misses, a
 * task and its status each, were about a third of the passes' CPU). */
enum { SCHED_SCAN_AHEAD = 16 };

struct sched_scan {
	struct sched *p;
	struct sched_rec *recs;
	struct sched_pend *pend;
	uint32_t node;	 /* the first node whose id is not below the scan's */
	bool unassigned; /* the scan of unassigned tasks, which come first */
	bool stop;	 /* it met the first task on a node: the rest is not read */
	const Cs__Task *ahead[SCHED_SCAN_AHEAD]; /* a ring: passed, not read */
	size_t ahead_at, ahead_count;
};

/* The fields sched_read_task reads of t (id to version: alloc_done, read
 * only for services the allocator works on, is not fetched), and of its
 * status (state and timestamp_ms), in at most two lines each. */
static void sched_scan_prefetch_task(const Cs__Task *t)
{
	SCHED_PREFETCH(&t->id);
	SCHED_PREFETCH(&t->version);
}

static void sched_scan_prefetch_status(const Cs__Task *t)
{
	if (t->status) {
		SCHED_PREFETCH(&t->status->state);
		SCHED_PREFETCH(&t->status->timestamp_ms);
	}
}

/* Reads task t, the scan's next: tasks on nodes, in (node id, task id)
 * order, those on nodes gone from the store passed over; or unassigned
 * ones (node id 0), up to the first on a node. */
static void sched_scan_read(struct sched_scan *sc, const Cs__Task *t)
{
	const struct sched *p = sc->p;

	if (sc->stop)
		return;
	if (sc->unassigned) {
		if (t->node_id != 0)
			sc->stop = true;
		else
			sched_read_task(sc->p, t, SCHED_NONE, sc->recs, sc->pend);
		return;
	}
	while (sc->node < p->node_count && p->nodes[sc->node].node->id < t->node_id)
		sc->node++;
	if (sc->node < p->node_count && p->nodes[sc->node].node->id == t->node_id)
		sched_read_task(sc->p, t, sc->node, sc->recs, sc->pend);
}

/* The scan's callback: t joins the ring; the ring's oldest is read once
 * the ring is full. Stops the scan once a read says so. */
static int sched_scan_visit(void *arg, const Cs__Task *t)
{
	struct sched_scan *sc = arg;
	size_t mask = SCHED_SCAN_AHEAD - 1;

	sched_scan_prefetch_task(t);
	if (sc->ahead_count >= SCHED_SCAN_AHEAD / 2)
		sched_scan_prefetch_status(sc->ahead[(sc->ahead_at + sc->ahead_count -
						      SCHED_SCAN_AHEAD / 2) &
						     mask]);
	if (sc->ahead_count == SCHED_SCAN_AHEAD) {
		sched_scan_read(sc, sc->ahead[sc->ahead_at]);
		sc->ahead_at = (sc->ahead_at + 1) & mask;
		sc->ahead_count--;
	}
	sc->ahead[(sc->ahead_at + sc->ahead_count++) & mask] = t;
	return sc->stop ? 1 : 0;
}

/* Reads what the ring holds still, at the scan's end. */
static void sched_scan_flush(struct sched_scan *sc)
{
	for (; sc->ahead_count > 0; sc->ahead_count--) {
		sched_scan_read(sc, sc->ahead[sc->ahead_at]);
		sc->ahead_at = (sc->ahead_at + 1) & (SCHED_SCAN_AHEAD - 1);
	}
}

/* Walks every node's tasks, then the unassigned ones, into recs and pend
 * (both in walk order, sorted by service afterwards). */
static void sched_read_tasks(struct sched *p, struct sched_rec *recs,
			     struct sched_pend *pend)
{
	size_t task_count = store_task_count(p->s);
	struct sched_scan sc = {.p = p, .recs = recs, .pend = pend};

	(void)store_task_scan_by_node(p->s, 1, sched_scan_visit, &sc);
	sched_scan_flush(&sc);
	sc.unassigned = true;
	sc.ahead_at = 0;
	(void)store_task_scan_by_node(p->s, 0, sched_scan_visit, &sc);
	sched_scan_flush(&sc);
	assert(p->rec_count <= task_count);
	assert(p->pend_count <= task_count);
}

/* Stable counting sorts of recs and pend by service, into p, with each
 * service's ranges. */
static int sched_sort_by_service(struct sched *p, const struct sched_rec *recs,
				 const struct sched_pend *pend)
{
	uint32_t *at = calloc(p->svc_count + 1, sizeof *at);

	p->recs = malloc((p->rec_count ? p->rec_count : 1) * sizeof *p->recs);
	p->pend = malloc((p->pend_count ? p->pend_count : 1) * sizeof *p->pend);
	p->pinned = malloc((p->pend_count ? p->pend_count : 1) * sizeof *p->pinned);
	if (!at || !p->recs || !p->pend || !p->pinned) {
		free(at);
		return CS_ENOMEM;
	}
	for (size_t i = 0; i < p->rec_count; i++)
		p->svcs[recs[i].svc].rec_count++;
	for (size_t i = 0; i < p->pend_count; i++) {
		p->svcs[pend[i].svc].pend_count++;
		p->svcs[pend[i].svc].pin_count += pend[i].node != SCHED_NONE;
	}
	for (uint32_t i = 0, r = 0, q = 0; i < p->svc_count; i++) {
		p->svcs[i].rec_first = r;
		p->svcs[i].pend_first = q;
		r += p->svcs[i].rec_count;
		q += p->svcs[i].pend_count;
	}
	for (size_t i = 0; i < p->rec_count; i++) {
		const struct sched_svc *x = &p->svcs[recs[i].svc];
		p->recs[x->rec_first + at[recs[i].svc]++] = recs[i];
	}
	memset(at, 0, (p->svc_count + 1) * sizeof *at);
	for (size_t i = 0; i < p->pend_count; i++) {
		const struct sched_svc *x = &p->svcs[pend[i].svc];
		p->pend[x->pend_first + at[pend[i].svc]++] = pend[i];
	}
	free(at);
	return 0;
}

int sched_new(const struct store *s, uint64_t now_ms, struct sched **out)
{
	return sched_new_with(s, now_ms, NULL, out);
}

int sched_new_with(const struct store *s, uint64_t now_ms, const struct sched_failures *f,
		   struct sched **out)
{
	struct sched *p = calloc(1, sizeof *p);
	struct sched_rec *recs = NULL;
	struct sched_pend *pend = NULL;
	size_t task_count = store_task_count(s);
	int rv = CS_ENOMEM;

	*out = NULL;
	if (!p)
		return CS_ENOMEM;
	p->s = s;
	p->now_ms = now_ms;
	p->fails = f;
	p->node_count = store_node_count(s);
	p->svc_count = store_service_count(s);
	if (p->node_count >= SCHED_NONE || p->svc_count >= SCHED_NONE ||
	    task_count >= SCHED_NONE) {
		rv = CS_ELIMIT;
		goto fail_plan;
	}
	if ((rv = sched_read_nodes(p)) != 0 || (rv = sched_read_services(p)) != 0)
		goto fail_plan;
	rv = CS_ENOMEM;
	recs = malloc((task_count ? task_count : 1) * sizeof *recs);
	pend = malloc((task_count ? task_count : 1) * sizeof *pend);
	if (!recs || !pend)
		goto fail_scratch;
	sched_read_tasks(p, recs, pend);
	if ((rv = sched_sort_by_service(p, recs, pend)) != 0)
		goto fail_scratch;
	free(recs);
	free(pend);
	p->stats.nodes_count = p->node_count;
	p->stats.pending_count = p->pend_count;
	*out = p;
	return 0;

fail_scratch:
	free(recs);
	free(pend);
fail_plan:
	sched_free(p);
	return rv;
}

/* ---------------------------------------------------------------- spread orders */

/* Label key of a spread preference: "zone" or "node.labels.zone". */
static const char *sched_spread_key(const char *pref)
{
	if (!pref)
		return "";
	if (strlen(pref) > SCHED_LABEL_PREFLEN &&
	    sched_eq_fold(pref, SCHED_LABEL_PREFLEN, SCHED_LABEL_PREFIX,
			  SCHED_LABEL_PREFLEN))
		return pref + SCHED_LABEL_PREFLEN;
	return pref;
}

struct sched_sort_ctx {
	const char **vals; /* vals[level * node_count + node]; NULL: missing */
	size_t node_count;
	size_t level_count;
};

/* Compares two label values, a missing one (NULL) after every other. */
static int sched_value_cmp(const char *a, const char *b)
{
	if (!a || !b)
		return (a == NULL) - (b == NULL);
	return strcmp(a, b);
}

static int sched_spread_cmp(const struct sched_sort_ctx *c, uint32_t a, uint32_t b)
{
	for (size_t l = 0; l < c->level_count; l++) {
		int r = sched_value_cmp(c->vals[l * c->node_count + a],
					c->vals[l * c->node_count + b]);
		if (r)
			return r;
	}
	return a < b ? -1 : a > b;
}

/* sort_u32's comparison: the spread order of two nodes. */
static int sched_spread_sort_cmp(const void *ctx, uint32_t a, uint32_t b)
{
	return sched_spread_cmp(ctx, a, b);
}

static bool sched_spread_same(const struct sched_spread *sp, const Cs__Placement *pl)
{
	if (sp->level_count != pl->n_spread_labels)
		return false;
	for (size_t l = 0; l < sp->level_count; l++)
		if (strcmp(sp->keys[l], sched_spread_key(pl->spread_labels[l])) != 0)
			return false;
	return true;
}

/* Computes the node order for the spread preferences of pl into sp. */
static int sched_spread_build(struct sched *p, const Cs__Placement *pl,
			      struct sched_spread *sp)
{
	size_t n = p->node_count, m = pl->n_spread_labels;
	struct sched_sort_ctx c = {.node_count = n, .level_count = m};
	uint32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
	int rv = CS_ENOMEM;

	assert(m > 0);
	sp->level_count = m;
	sp->keys = malloc(m * sizeof *sp->keys);
	sp->order = malloc((n ? n : 1) * sizeof *sp->order);
	sp->diff = malloc((n ? n : 1) * sizeof *sp->diff);
	c.vals = malloc((n ? n : 1) * m * sizeof *c.vals);
	if (!tmp || !sp->keys || !sp->order || !sp->diff || !c.vals)
		goto out;
	for (size_t l = 0; l < m; l++) {
		sp->keys[l] = sched_spread_key(pl->spread_labels[l]);
		for (size_t i = 0; i < n; i++) {
			const char *v = sched_node_label(p->nodes[i].node, sp->keys[l],
							 strlen(sp->keys[l]));
			/* "" and missing are one branch, as in SwarmKit */
			c.vals[l * n + i] = v && v[0] ? v : NULL;
		}
	}
	for (size_t i = 0; i < n; i++)
		sp->order[i] = (uint32_t)i;
	sort_u32(sp->order, tmp, n, sched_spread_sort_cmp, &c);
	for (size_t i = 0; i < n; i++) {
		uint32_t l = 0;
		if (i > 0)
			while (l < m &&
			       sched_value_cmp(c.vals[l * n + sp->order[i]],
					       c.vals[l * n + sp->order[i - 1]]) == 0)
				l++;
		sp->diff[i] = l;
		if (i > 0)
			assert(sched_spread_cmp(&c, sp->order[i - 1], sp->order[i]) < 0);
	}
	rv = 0;
out:
	free(tmp);
	free(c.vals);
	return rv;
}

/* Returns (in *out) the shared order for pl's spread preferences, built on
 * first use. Returns 0 or CS_ENOMEM. */
static int sched_spread_get(struct sched *p, const Cs__Placement *pl,
			    const struct sched_spread **out)
{
	struct sched_spread *sp;
	int rv;

	for (size_t i = 0; i < p->spread_count; i++) {
		if (sched_spread_same(&p->spreads[i], pl)) {
			*out = &p->spreads[i];
			return 0;
		}
	}
	if (p->spread_count == p->spread_cap) {
		size_t cap = p->spread_cap ? 2 * p->spread_cap : 4;
		struct sched_spread *v = realloc(p->spreads, cap * sizeof *v);
		if (!v)
			return CS_ENOMEM;
		p->spreads = v;
		p->spread_cap = cap;
	}
	sp = &p->spreads[p->spread_count];
	memset(sp, 0, sizeof *sp);
	p->spread_count++; /* freed with the plan even when half built */
	if ((rv = sched_spread_build(p, pl, sp)) != 0)
		return rv;
	*out = sp;
	return 0;
}

/* ---------------------------------------------------------------- filters and reasons */

/* Returns the first filter node n fails for the open group, or -1 when it
 * passes them all. */
static int sched_first_fail(const struct sched *p, const struct sched_group *g,
			    uint32_t n)
{
	const struct sched_node *sn = &p->nodes[n];
	const struct sched_svc *x = &p->svcs[g->svc];

	if (!sn->available)
		return SCHED_F_AVAILABLE;
	if (x->cpu_milli > 0 && x->cpu_milli > sn->cpu_free_milli)
		return SCHED_F_CPU;
	if (x->mem_bytes > 0 && x->mem_bytes > sn->mem_free_bytes)
		return SCHED_F_MEMORY;
	for (size_t i = 0; i < g->cons_count; i++) {
		uint8_t *memo = g->cons_memo ? g->cons_memo[i] : NULL;
		bool pass;
		if (memo && memo[n]) {
			pass = memo[n] == SCHED_CMEMO_PASS;
		} else {
			pass = sched_constraint_match(&g->cons[i], sn->node);
			if (memo)
				memo[n] = pass ? SCHED_CMEMO_PASS : SCHED_CMEMO_FAIL;
		}
		if (!pass)
			return SCHED_F_CONSTRAINT + (int)i;
	}
	if (g->replicas_max > 0 && p->svc_live[n] >= g->replicas_max)
		return SCHED_F_CONSTRAINT + (int)g->cons_count;
	if (g->port_busy && g->port_busy[n])
		return SCHED_F_CONSTRAINT + (int)g->cons_count + 1;
	return -1;
}

/* Whether node n, which passed every filter before taking a task, still
 * does: only resources and max replicas change with placements. */
static bool sched_still_fits(const struct sched *p, const struct sched_group *g,
			     uint32_t n)
{
	const struct sched_node *sn = &p->nodes[n];
	const struct sched_svc *x = &p->svcs[g->svc];

	if (x->cpu_milli > 0 && x->cpu_milli > sn->cpu_free_milli)
		return false;
	if (x->mem_bytes > 0 && x->mem_bytes > sn->mem_free_bytes)
		return false;
	if (g->port_busy && g->port_busy[n])
		return false;
	return g->replicas_max == 0 || p->svc_live[n] < g->replicas_max;
}

/* Appends one reason part for count nodes failing filter f to the reason
 * in buf, whose length is at; returns the new length (>= size when cut). */
static size_t sched_explain_part(const struct sched_group *g, int f, size_t count,
				 char *buf, size_t size, size_t at)
{
	const char *s = count == 1 ? "" : "s";
	const char *verb_s = count == 1 ? "s" : "";
	const char *sep = at > strlen("no suitable node (") ? "; " : "";
	int w;

	if (at >= size)
		return at;
	if (f == SCHED_F_AVAILABLE)
		w = snprintf(buf + at, size - at,
			     "%s%zu node%s not available for new tasks", sep, count, s);
	else if (f == SCHED_F_CPU)
		w = snprintf(buf + at, size - at, "%s%zu node%s lack%s CPU", sep, count,
			     s, verb_s);
	else if (f == SCHED_F_MEMORY)
		w = snprintf(buf + at, size - at, "%s%zu node%s lack%s memory", sep,
			     count, s, verb_s);
	else if ((size_t)(f - SCHED_F_CONSTRAINT) < g->cons_count)
		w = snprintf(buf + at, size - at, "%s%zu node%s fail%s constraint %s",
			     sep, count, s, verb_s, g->cons[f - SCHED_F_CONSTRAINT].text);
	else if ((size_t)(f - SCHED_F_CONSTRAINT) > g->cons_count)
		w = snprintf(buf + at, size - at,
			     "%s%zu node%s ha%s its host port in use", sep, count, s,
			     count == 1 ? "s" : "ve");
	else
		w = snprintf(buf + at, size - at,
			     "%s%zu node%s at max replicas per node (%llu)", sep, count,
			     s, (unsigned long long)g->replicas_max);
	assert(w >= 0);
	return at + (size_t)w;
}

/* Writes into g->reason why no node takes the group's tasks: for every node
 * (or only node only, when not SCHED_NONE) its first failing filter, counted
 * per filter, in filter order. */
static void sched_explain(const struct sched *p, struct sched_group *g, uint32_t only)
{
	size_t filter_count = SCHED_F_CONSTRAINT + g->cons_count + 2;
	size_t size = sizeof g->reason, at;

	memset(g->fail_counts, 0, filter_count * sizeof *g->fail_counts);
	for (uint32_t n = only == SCHED_NONE ? 0 : only;
	     n < (only == SCHED_NONE ? p->node_count : (size_t)only + 1); n++) {
		int f = sched_first_fail(p, g, n);
		if (f >= 0)
			g->fail_counts[f]++;
	}
	at = (size_t)snprintf(g->reason, size, "no suitable node (");
	for (size_t f = 0; f < filter_count; f++)
		if (g->fail_counts[f] > 0)
			at = sched_explain_part(g, (int)f, g->fail_counts[f], g->reason,
						size, at);
	if (at == strlen("no suitable node (")) {
		snprintf(g->reason, size, "no suitable node (no nodes)");
	} else if (at + 2 <= size) {
		g->reason[at] = ')';
		g->reason[at + 1] = '\0';
	} else {
		/* cut: say so rather than end mid-word */
		memcpy(g->reason + size - 5, "...)", 5);
	}
	assert(strncmp(g->reason, "no suitable node", 16) == 0);
}

/* ---------------------------------------------------------------- the decision tree */

/* The item of node n in a leaf of g, keyed by its counts now. */
static struct sched_item sched_leaf_item(const struct sched *p,
					 const struct sched_group *g, uint32_t n)
{
	/* the rank is 0 for every node unless fail_on */
	uint64_t rank = g->fail_on ? p->fail_rank[n] : 0;
	return (struct sched_item){.hi = rank << 32 | p->svc_active[n],
				   .lo = (uint64_t)p->nodes[n].active_count << 32 | n};
}

/* The item of branch b in its parent's heap. */
static struct sched_item sched_branch_item(const struct sched_group *g, uint32_t b)
{
	return (struct sched_item){.hi = g->branches[b].count, .lo = b};
}

/* The node or branch index of item x. */
static uint32_t sched_item_index(struct sched_item x)
{
	return (uint32_t)x.lo;
}

/* Whether x goes before y: a leaf's, SwarmKit's nodeLess (fewer recent
 * failures, fewer of the service's tasks, fewer tasks), then node index;
 * an inner one's, fewer of the service's tasks under the branch, then the
 * branch index (branches are numbered in label value order). */
static bool sched_item_less(struct sched_item x, struct sched_item y)
{
	return x.hi != y.hi ? x.hi < y.hi : x.lo < y.lo;
}

static int sched_item_cmp(const void *a, const void *b)
{
	const struct sched_item *x = a, *y = b;
	return sched_item_less(*x, *y) ? -1 : sched_item_less(*y, *x) ? 1 : 0;
}

/* One 32-bit part of a key: 0 all tasks, 1 the service's (or a branch's
 * count), 2 the failure rank. */
static uint32_t sched_item_part(struct sched_item x, unsigned k)
{
	return k == 0	? (uint32_t)(x.lo >> 32)
	       : k == 1 ? (uint32_t)x.hi
			: (uint32_t)(x.hi >> 32);
}

/* Sorts the n items of a, which come in index order, by key: a stable
 * counting sort by each part of the key that varies (all tasks, then the
 * service's, then the rank), where its values span at most counts_cap;
 * else qsort (keys are distinct: one order either way). tmp holds n
 * items, counts counts_cap. */
static void sched_items_sort(struct sched_item *a, size_t n, struct sched_item *tmp,
			     uint32_t *counts, size_t counts_cap)
{
	for (unsigned k = 0; k < 3 && n > 1; k++) {
		uint32_t lo = UINT32_MAX, hi = 0;
		size_t at = 0;
		for (size_t i = 0; i < n; i++) {
			uint32_t v = sched_item_part(a[i], k);
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		if (lo == hi)
			continue;
		if ((size_t)(hi - lo) >= counts_cap) {
			qsort(a, n, sizeof *a, sched_item_cmp);
			return;
		}
		memset(counts, 0, ((size_t)(hi - lo) + 1) * sizeof *counts);
		for (size_t i = 0; i < n; i++)
			counts[sched_item_part(a[i], k) - lo]++;
		for (size_t v = 0; v <= (size_t)(hi - lo); v++) {
			uint32_t c = counts[v];
			counts[v] = (uint32_t)at;
			at += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[counts[sched_item_part(a[i], k) - lo]++] = a[i];
		memcpy(a, tmp, n * sizeof *a);
	}
	for (size_t i = 1; i < n; i++)
		assert(sched_item_less(a[i - 1], a[i]));
}

/* Whether branch b's smallest item (it has one) heads its run, not its
 * queue. */
static bool sched_branch_top_in_run(const struct sched_group *g, uint32_t b)
{
	const struct sched_branch *br = &g->branches[b];
	const struct sched_item *run = g->items + br->item_first, *q = run + br->item_cap;

	assert(br->item_count > 0);
	if (br->run_at == br->run_end)
		return false;
	return br->q_count == 0 || sched_item_less(run[br->run_at], q[br->q_at]);
}

/* The smallest item of branch b (it has one). */
static struct sched_item sched_branch_top(const struct sched_group *g, uint32_t b)
{
	const struct sched_branch *br = &g->branches[b];
	const struct sched_item *run = g->items + br->item_first;

	return sched_branch_top_in_run(g, b) ? run[br->run_at]
					     : run[br->item_cap + br->q_at];
}

/* Takes branch b's smallest item out, and returns it. */
static struct sched_item sched_branch_take(struct sched_group *g, uint32_t b)
{
	struct sched_branch *br = &g->branches[b];
	const struct sched_item *run = g->items + br->item_first;
	struct sched_item x;

	if (sched_branch_top_in_run(g, b)) {
		x = run[br->run_at++];
	} else {
		x = run[br->item_cap + br->q_at];
		br->q_at = br->q_at + 1 == br->item_cap ? 0 : br->q_at + 1;
		br->q_count--;
	}
	br->item_count--;
	return x;
}

/* Adds x to the end of branch b's queue: after every item there. */
static void sched_branch_put(struct sched_group *g, uint32_t b, struct sched_item x)
{
	struct sched_branch *br = &g->branches[b];
	struct sched_item *q = g->items + br->item_first + br->item_cap;
	uint32_t at = br->q_at + br->q_count;

	assert(br->q_count < br->item_cap);
	if (at >= br->item_cap)
		at -= br->item_cap;
	if (br->q_count > 0)
		assert(sched_item_less(q[at == 0 ? br->item_cap - 1 : at - 1], x));
	q[at] = x;
	br->q_count++;
	br->item_count++;
}

/* Builds the group's tree: branches in preorder (siblings in label value
 * order), each leaf's eligible nodes and each inner branch's children with
 * an eligible node under them sorted into its run. Returns 0 or
 * CS_ENOMEM. */
static int sched_tree_build(struct sched *p, struct sched_group *g)
{
	size_t n = p->node_count, m = g->spread ? g->spread->level_count : 0;
	const uint32_t *order = g->spread ? g->spread->order : NULL;
	uint32_t *leaf_of = malloc((n ? n : 1) * sizeof *leaf_of);
	uint32_t *cur = malloc((m + 1) * sizeof *cur);
	struct sched_item *tmp = NULL;
	uint32_t *counts = NULL;
	size_t bc = 1, items = 0, counts_cap;
	int rv = CS_ENOMEM;

	if (!leaf_of || !cur)
		goto out;
	for (size_t i = 0; i < n && m > 0; i++)
		bc += m - (i == 0 ? 0 : g->spread->diff[i]);
	if (2 * (bc + n) >= SCHED_NONE) {
		rv = CS_ELIMIT;
		goto out;
	}
	counts_cap = 2 * (bc + n) + 64;
	g->branches = calloc(bc, sizeof *g->branches);
	g->items = malloc(2 * (bc + n) * sizeof *g->items);
	tmp = malloc((bc + n) * sizeof *tmp);
	counts = malloc(counts_cap * sizeof *counts);
	if (!g->branches || !g->items || !tmp || !counts)
		goto out;
	g->branch_count = 1;
	g->branches[0] = (struct sched_branch){.parent = SCHED_NONE, .leaf = m == 0};
	cur[0] = 0;
	/* branches, and each one's capacity */
	for (size_t i = 0; i < n; i++) {
		for (size_t l = i == 0 || m == 0 ? 0 : g->spread->diff[i]; l < m; l++) {
			uint32_t b = (uint32_t)g->branch_count++;
			g->branches[b] = (struct sched_branch){.parent = cur[l],
							       .leaf = l + 1 == m};
			g->branches[cur[l]].item_cap++;
			cur[l + 1] = b;
		}
		leaf_of[i] = cur[m];
		g->branches[cur[m]].item_cap++;
	}
	assert(g->branch_count == bc);
	for (size_t b = 0; b < bc; b++) {
		g->branches[b].item_first = (uint32_t)items;
		items += 2 * (size_t)g->branches[b].item_cap;
	}
	assert(items == 2 * (bc - 1 + n));
	/* leaves: every node's tasks count; eligible nodes join the run, in
	 * index order (the spread order is by id within a leaf) */
	for (size_t i = 0; i < n; i++) {
		uint32_t node = order ? order[i] : (uint32_t)i;
		struct sched_branch *leaf = &g->branches[leaf_of[i]];
		leaf->count += p->svc_active[node];
		if (sched_first_fail(p, g, node) < 0)
			g->items[leaf->item_first + leaf->run_end++] =
				sched_leaf_item(p, g, node);
	}
	/* bottom up: children come after their parent in preorder, so a
	 * parent's run gets them in descending index order */
	for (size_t b = bc; b-- > 0;) {
		struct sched_branch *br = &g->branches[b];
		struct sched_item *run = g->items + br->item_first;
		if (!br->leaf)
			for (uint32_t i = 0, j = br->run_end; i + 1 < j; i++, j--) {
				struct sched_item x = run[i];
				run[i] = run[j - 1];
				run[j - 1] = x;
			}
		sched_items_sort(run, br->run_end, tmp, counts, counts_cap);
		br->item_count = br->run_end;
		if (b == 0)
			break;
		g->branches[br->parent].count += br->count;
		if (br->item_count > 0) {
			struct sched_branch *up = &g->branches[br->parent];
			g->items[up->item_first + up->run_end++] =
				sched_branch_item(g, (uint32_t)b);
		}
	}
	rv = 0;
out:
	free(leaf_of);
	free(cur);
	free(tmp);
	free(counts);
	return rv;
}

/* Returns the node the next task goes to (following the smallest item of
 * each branch from the root), or SCHED_NONE when no node is eligible. */
static uint32_t sched_tree_pick(const struct sched_group *g, uint32_t *leaf)
{
	uint32_t b = 0;
	if (g->branches[0].item_count == 0)
		return SCHED_NONE;
	while (!g->branches[b].leaf) {
		b = sched_item_index(sched_branch_top(g, b));
		assert(g->branches[b].item_count > 0);
	}
	*leaf = b;
	return sched_item_index(sched_branch_top(g, b));
}

/* After the smallest node of leaf took a task (sched_take: its counts went
 * up): it goes to the end of the leaf's queue keyed again (or out, with no
 * room left), and so does each branch on the path in its parent's (or out,
 * with no eligible node left). */
static void sched_tree_took(struct sched *p, struct sched_group *g, uint32_t leaf,
			    uint32_t node)
{
	struct sched_item x = sched_branch_take(g, leaf);

	assert(sched_item_index(x) == node);
	if (sched_still_fits(p, g, node))
		sched_branch_put(g, leaf, sched_leaf_item(p, g, node));
	for (uint32_t c = leaf; c != 0;) {
		uint32_t up = g->branches[c].parent;
		x = sched_branch_take(g, up);
		assert(sched_item_index(x) == c);
		g->branches[c].count++;
		if (g->branches[c].item_count > 0)
			sched_branch_put(g, up, sched_branch_item(g, c));
		c = up;
	}
}

/* ---------------------------------------------------------------- writes */

/* What a step may still add to its batch. */
struct sched_budget {
	size_t writes;
	size_t bytes; /* of encoding, an upper bound per write */
};

/* Bytes one task UPDATE adds to an encoded batch at most, apart from its
 * strings and spec: the action's tags and lengths, the task's and its
 * status's scalar fields each as a widest varint (11 bytes with its tag),
 * every string's tag and length. */
enum { SCHED_WRITE_BYTES_FIXED = 171 };

/* Bytes one placement (issue 18's compact UPDATE) adds at most, apart from
 * its message: the action's tag and length (6), its kind (2), the
 * placement's tag and length (7), five scalar fields at two-byte tags and
 * widest varints (60), the message's tag and length (7). */
enum { SCHED_PLACE_BYTES_FIXED = 82 };

/* The leader's loop writes compact placements: a run of them stops at its
 * count, not at its bytes. A run of plain task updates (a batch that does
 * not take placements) stops at its bytes first, near 10,000. */
_Static_assert(LIMIT_SCHED_TASKS_PER_RUN *(SCHED_PLACE_BYTES_FIXED +
					   sizeof SCHED_MSG_ASSIGNED) <=
		       SCHED_RUN_BYTES_MAX,
	       "a run of compact placements stops at its count, not at its bytes");

/* Returns an upper bound of the bytes the UPDATE of t with status message
 * msg adds to an encoded batch. */
static size_t sched_write_bytes(const Cs__Task *t, const char *msg)
{
	size_t n = SCHED_WRITE_BYTES_FIXED + strlen(msg);

	/* a tripwire: a field appended to Task or TaskStatus needs its bytes
	 * counted above (created_ms and updated_ms are not sent: the store
	 * stamps them) */
	assert(cs__task__descriptor.n_fields == 18);
	assert(cs__task_status__descriptor.n_fields == 5);
	if (t->job_iteration) /* a job's task (issue 14): tag 2, varint 10 */
		n += 12;
	n += 3; /* alloc_done (issue 15): tag 2, value 1 */
	for (size_t i = 0; i < t->n_networks; i++) /* tag 2, length <= 5 */
		n += 7 + protobuf_c_message_get_packed_size(&t->networks[i]->base);
	for (size_t i = 0; i < t->n_ports; i++) /* ports: tag 2, length 1 */
		n += 3 + protobuf_c_message_get_packed_size(&t->ports[i]->base);
	if (t->service_name)
		n += strlen(t->service_name);
	if (t->status->container_id)
		n += strlen(t->status->container_id);
	if (t->spec)
		n += protobuf_c_message_get_packed_size(&t->spec->base);
	/* secret_data (issue 20) is never in the store (its check refuses
	 * it): nothing to count */
	assert(t->n_secret_data == 0);
	return n;
}

/* Adds an UPDATE of t to out: assigned to node_id, or still pending with
 * message msg. Borrows t and msg (out keeps a copy). Returns 0,
 * SCHED_STEP_FULL when the budget has no room for it (nothing added), or
 * CS_ENOMEM. */
/* Adds id to the plan's written set (open addressing, linear probes).
 * Returns 0 or CS_ENOMEM. */
static int sched_written_add(struct sched *p, uint64_t id)
{
	size_t i;

	assert(id != 0);
	/* at most three quarters full: a run of LIMIT_SCHED_TASKS_PER_RUN
	 * (18,000) fits 32,768 slots, 256 KB (issue 18: at most half full it
	 * took 512 KB, twice a run of 10,000's, of the cache the pass and the
	 * apply's sched_survives work in) */
	if (4 * (p->written_count + 1) > 3 * (p->written_mask + 1)) {
		size_t cap = p->written_mask ? 2 * (p->written_mask + 1) : 1024;
		uint64_t *w = calloc(cap, sizeof *w);
		if (!w)
			return CS_ENOMEM;
		for (size_t j = 0; p->written && j <= p->written_mask; j++) {
			if (!p->written[j])
				continue;
			for (i = (size_t)hash_mix64(p->written[j]) & (cap - 1); w[i];
			     i = (i + 1) & (cap - 1))
				;
			w[i] = p->written[j];
		}
		free(p->written);
		p->written = w;
		p->written_mask = cap - 1;
	}
	for (i = (size_t)hash_mix64(id) & p->written_mask; p->written[i];
	     i = (i + 1) & p->written_mask)
		if (p->written[i] == id)
			return 0;
	p->written[i] = id;
	p->written_count++;
	return 0;
}

static bool sched_written_has(const struct sched *p, uint64_t id)
{
	if (!p->written || id == 0)
		return false;
	for (size_t i = (size_t)hash_mix64(id) & p->written_mask; p->written[i];
	     i = (i + 1) & p->written_mask)
		if (p->written[i] == id)
			return true;
	return false;
}

static int sched_write(struct sched *p, struct store_batch *out,
		       struct sched_budget *budget, const Cs__Task *t, uint64_t node_id,
		       bool assign, const char *msg)
{
	Cs__Task copy = *t;
	Cs__TaskStatus st;
	size_t bytes;
	int rv;

	assert(t->status != NULL);
	bytes = assign && out->placements ? SCHED_PLACE_BYTES_FIXED + strlen(msg)
					  : sched_write_bytes(t, msg);
	if (budget->writes == 0 || bytes > budget->bytes)
		return SCHED_STEP_FULL;
	if (assign) {
		cs__task_status__init(&st); /* a fresh status, as SwarmKit's */
		st.state = CS__TASK_STATE__TASK_STATE_ASSIGNED;
		st.timestamp_ms = t->status->timestamp_ms;
	} else {
		st = *t->status;
		assert(st.state == CS__TASK_STATE__TASK_STATE_PENDING);
	}
	st.message = (char *)msg;
	if (p->now_ms)
		st.timestamp_ms = p->now_ms;
	copy.node_id = node_id;
	copy.status = &st;
	copy.created_ms = copy.updated_ms = 0; /* the store's: not counted */
	/* known as this plan's before it is out (an error spends the plan) */
	rv = sched_written_add(p, t->id);
	/* a placement goes as the compact action (issue 18) when the batch
	 * takes them: the same update, applied in place; a reason rewrites
	 * the status it keeps */
	if (!rv && assign && out->placements)
		rv = store_batch_placement(out, t->id, t->version, node_id, st.state,
					   st.timestamp_ms, msg);
	else if (!rv)
		rv = store_batch_task(out, CS__STORE_ACTION__KIND__KIND_UPDATE, &copy);
	if (rv)
		return rv;
	budget->writes--;
	budget->bytes -= bytes;
	return 0;
}

/* Writes pending task pd ASSIGNED to node_id: sched_write's placement,
 * byte for byte, from what the plan read of the task (a compact one,
 * issue 18, reads no line of it). Returns as sched_write. */
static int sched_write_placement(struct sched *p, struct store_batch *out,
				 struct sched_budget *budget, const struct sched_pend *pd,
				 uint64_t node_id)
{
	size_t bytes = SCHED_PLACE_BYTES_FIXED + strlen(SCHED_MSG_ASSIGNED);
	int rv;

	if (!out->placements)
		return sched_write(p, out, budget, pd->task, node_id, true,
				   SCHED_MSG_ASSIGNED);
	if (budget->writes == 0 || bytes > budget->bytes)
		return SCHED_STEP_FULL;
	rv = sched_written_add(p, pd->id);
	if (!rv)
		rv = store_batch_placement(out, pd->id, pd->version, node_id,
					   CS__TASK_STATE__TASK_STATE_ASSIGNED,
					   p->now_ms ? p->now_ms : pd->timestamp_ms,
					   SCHED_MSG_ASSIGNED);
	if (rv)
		return rv;
	budget->writes--;
	budget->bytes -= bytes;
	return 0;
}

/* Counts a task placed on node n for the open group (and the plan); a
 * pinned one is remembered for the service's unpinned tasks, placed in the
 * second sweep. */
static void sched_take(struct sched *p, const struct sched_group *g, uint32_t n)
{
	struct sched_svc *x = &p->svcs[g->svc];
	if (g->phase == SCHED_PHASE_PINNED) {
		assert(p->pinned_count < p->pend_count);
		assert(x->pinned_first + x->pinned_count == p->pinned_count);
		p->pinned[p->pinned_count++] = n;
		x->pinned_count++;
	}
	x->placed_count++;
	p->svc_active[n]++;
	p->svc_live[n]++;
	p->nodes[n].active_count++;
	p->nodes[n].cpu_free_milli -= x->cpu_milli;
	p->nodes[n].mem_free_bytes -= x->mem_bytes;
	if (g->port_busy)
		g->port_busy[n] = true; /* its host ports are taken now */
	p->stats.assigned_count++;
}

/* Writes the reason for task t, still pending, when it differs from the
 * stored one (so an idle cluster writes nothing). Returns as sched_write;
 * counts the task as unplaceable once it is through. */
static int sched_write_reason(struct sched *p, struct store_batch *out,
			      struct sched_budget *budget, const Cs__Task *t,
			      const char *reason)
{
	const char *old = t->status->message ? t->status->message : "";

	if (strcmp(old, reason) != 0) {
		int rv = sched_write(p, out, budget, t, t->node_id, false, reason);
		if (rv)
			return rv;
		p->stats.reasons_written++;
	}
	p->stats.unplaceable_count++;
	return 0;
}

/* ---------------------------------------------------------------- groups */

static void sched_group_close(struct sched *p)
{
	struct sched_group *g = &p->g;
	if (g->fail_on)
		memset(p->fail_rank, 0, p->node_count * sizeof *p->fail_rank);
	free(g->cons);
	free(g->cons_memo);
	free(g->fail_counts);
	free(g->port_busy);
	free(g->branches);
	free(g->items);
	memset(g, 0, sizeof *g);
	p->in_group = false;
}

/* The memo of constraint text's results in p (made now, empty), or NULL
 * when p has SCHED_CMEMO_MAX already or no memory for one: the group then
 * evaluates that constraint every time, to the same results. */
static uint8_t *sched_cmemo_get(struct sched *p, const char *text)
{
	struct sched_cmemo *m;

	for (size_t i = 0; i < p->cmemo_count; i++)
		if (strcmp(p->cmemo[i].text, text) == 0)
			return p->cmemo[i].result;
	if (p->cmemo_count == SCHED_CMEMO_MAX)
		return NULL;
	m = &p->cmemo[p->cmemo_count];
	m->result = calloc(p->node_count ? p->node_count : 1, sizeof *m->result);
	if (!m->result)
		return NULL;
	m->text = text;
	p->cmemo_count++;
	return m->result;
}

/* Opens the group of service svc: its counts per node, constraints, spread
 * order. Returns 0 or CS_ENOMEM. */
static int sched_group_open(struct sched *p, uint32_t svc)
{
	struct sched_group *g = &p->g;
	struct sched_svc *x = &p->svcs[svc];
	const Cs__TaskSpec *ts = x->svc->spec ? x->svc->spec->task : NULL;
	const Cs__Placement *pl = ts ? ts->placement : NULL;

	assert(!p->in_group);
	assert(x->pend_count > 0);
	memset(g, 0, sizeof *g);
	p->in_group = true;
	g->svc = svc;
	g->phase = p->place_sweep ? SCHED_PHASE_PLACE : SCHED_PHASE_PINNED;
	memset(p->svc_active, 0, p->node_count * sizeof *p->svc_active);
	memset(p->svc_live, 0, p->node_count * sizeof *p->svc_live);
	for (uint32_t i = 0; i < x->rec_count; i++) {
		const struct sched_rec *r = &p->recs[x->rec_first + i];
		assert(r->svc == svc);
		p->svc_live[r->node]++;
		p->svc_active[r->node] += r->active;
	}
	if (p->place_sweep) {
		/* what the first sweep placed of its pinned tasks */
		for (uint32_t i = 0; i < x->pinned_count; i++) {
			p->svc_live[p->pinned[x->pinned_first + i]]++;
			p->svc_active[p->pinned[x->pinned_first + i]]++;
		}
	} else {
		x->pinned_first = (uint32_t)p->pinned_count;
		x->pinned_count = 0;
	}
	while (g->pinned_count < x->pend_count &&
	       p->pend[x->pend_first + g->pinned_count].node != SCHED_NONE)
		g->pinned_count++;
	assert(g->pinned_count == x->pin_count);
	g->next = p->place_sweep ? g->pinned_count : 0;
	g->fail_svc = sched_failures_has_service(p->fails, x->svc->id);
	if (pl) {
		g->replicas_max = pl->max_replicas_per_node;
		g->cons_count = pl->n_constraints;
		if (g->cons_count) {
			g->cons = calloc(g->cons_count, sizeof *g->cons);
			if (!g->cons)
				return CS_ENOMEM;
		}
		for (size_t i = 0; i < g->cons_count; i++)
			sched_constraint_parse(pl->constraints[i], &g->cons[i]);
		if (g->cons_count) {
			g->cons_memo = calloc(g->cons_count, sizeof *g->cons_memo);
			if (!g->cons_memo)
				return CS_ENOMEM;
			for (size_t i = 0; i < g->cons_count; i++)
				g->cons_memo[i] = sched_cmemo_get(p, pl->constraints[i]);
		}
		if (pl->n_spread_labels && sched_spread_get(p, pl, &g->spread) != 0)
			return CS_ENOMEM;
	}
	g->fail_counts =
		calloc(SCHED_F_CONSTRAINT + g->cons_count + 2, sizeof *g->fail_counts);
	if (!g->fail_counts)
		return CS_ENOMEM;
	if (alloc_has_host_ports(x->svc)) {
		g->port_busy =
			calloc(p->node_count ? p->node_count : 1, sizeof *g->port_busy);
		if (!g->port_busy)
			return CS_ENOMEM;
		for (size_t i = 0; i < p->node_count; i++)
			g->port_busy[i] =
				alloc_host_port_busy(p->s, x->svc, p->nodes[i].node->id);
	}
	if (!p->place_sweep || x->pin_count == 0)
		p->stats.groups_count++; /* a service counts once */
	return 0;
}

/* Pinned tasks: each checked on its own node. */
static int sched_group_pinned(struct sched *p, struct store_batch *out,
			      struct sched_budget *budget)
{
	struct sched_group *g = &p->g;
	const struct sched_svc *x = &p->svcs[g->svc];

	for (; g->next < g->pinned_count; g->next++) {
		const struct sched_pend *pd = &p->pend[x->pend_first + g->next];
		int rv;

		assert(pd->node != SCHED_NONE);
		assert(pd->task->node_id == p->nodes[pd->node].node->id);
		if (sched_first_fail(p, g, pd->node) < 0) {
			rv = sched_write(p, out, budget, pd->task, pd->task->node_id,
					 true, SCHED_MSG_ASSIGNED);
			if (rv)
				return rv;
			sched_take(p, g, pd->node);
			continue;
		}
		sched_explain(p, g, pd->node);
		rv = sched_write_reason(p, out, budget, pd->task, g->reason);
		if (rv)
			return rv;
	}
	return 0;
}

/* Returns the index of the node with id id, or SCHED_NONE. */
static uint32_t sched_node_find(const struct sched *p, uint64_t id)
{
	size_t lo = 0, hi = p->node_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->nodes[mid].node->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->node_count && p->nodes[lo].node->id == id ? (uint32_t)lo
								 : SCHED_NONE;
}

/* Fills p->fail_rank for the open group's tasks of spec version version:
 * per node, its recent failures when SCHED_FAILURES_MAX or more, else 0
 * (SwarmKit's nodeLess compares failures only when either node has that
 * many: ranking by this key first is the same order). */
static void sched_fail_rank(struct sched *p, struct sched_group *g, uint64_t version)
{
	const struct sched_failures *f = p->fails;
	uint64_t svc_id = p->svcs[g->svc].svc->id;

	if (g->fail_on)
		memset(p->fail_rank, 0, p->node_count * sizeof *p->fail_rank);
	g->fail_on = false;
	g->fail_version = version;
	for (size_t at = sched_fail_lower(f, svc_id, version, 0);
	     at < f->entry_count && f->entries[at].service_id == svc_id &&
	     f->entries[at].spec_version == version;
	     at++) {
		size_t c = sched_fail_entry_count(&f->entries[at], p->now_ms);
		uint32_t n = sched_node_find(p, f->entries[at].node_id);
		if (c < SCHED_FAILURES_MAX || n == SCHED_NONE)
			continue;
		p->fail_rank[n] = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
		g->fail_on = true;
	}
}

/* (Re)builds the group's tree for tasks of spec version version, ranking
 * nodes by their failures of that version. Returns 0 or CS_ENOMEM. */
static int sched_tree_for(struct sched *p, struct sched_group *g, uint64_t version)
{
	free(g->branches);
	free(g->items);
	g->branches = NULL;
	g->items = NULL;
	g->branch_count = 0;
	if (g->fail_svc)
		sched_fail_rank(p, g, version);
	return sched_tree_build(p, g);
}

/* Unpinned tasks: down the decision tree, one after the other. */
static int sched_group_place(struct sched *p, struct store_batch *out,
			     struct sched_budget *budget)
{
	struct sched_group *g = &p->g;
	const struct sched_svc *x = &p->svcs[g->svc];
	int rv;

	if (!g->branches && g->next < x->pend_count &&
	    (rv = sched_tree_for(
		     p, g, p->pend[x->pend_first + g->next].task->spec_version)) != 0)
		return rv;
	for (; g->next < x->pend_count; g->next++) {
		const struct sched_pend *pd = &p->pend[x->pend_first + g->next];
		uint32_t leaf = 0, node;

		assert(pd->node == SCHED_NONE);
		/* tasks of another spec version rank nodes by their own
		 * failures (SwarmKit groups them apart) */
		if (g->fail_svc && pd->task->spec_version != g->fail_version &&
		    (rv = sched_tree_for(p, g, pd->task->spec_version)) != 0)
			return rv;
		node = sched_tree_pick(g, &leaf);
		/* a whole task's write reads the task (a compact placement
		 * does not): every line it reads, id, status, version (a
		 * task spans three or four; the profile stalled on the
		 * status pointer's, not the first) */
		if (!out->placements && g->next + SCHED_PREFETCH_AHEAD < x->pend_count) {
			const Cs__Task *ahead = pd[SCHED_PREFETCH_AHEAD].task;
			SCHED_PREFETCH(&ahead->id);
			SCHED_PREFETCH(&ahead->status);
			SCHED_PREFETCH(&ahead->version);
		}
		if (!out->placements &&
		    g->next + SCHED_PREFETCH_AHEAD / 2 < x->pend_count)
			SCHED_PREFETCH(pd[SCHED_PREFETCH_AHEAD / 2].task->status);
		if (node == SCHED_NONE)
			return SCHED_PLACE_STUCK; /* the rest fits nowhere */
		assert(sched_first_fail(p, g, node) < 0);
		rv = sched_write_placement(p, out, budget, pd, p->nodes[node].id);
		if (rv)
			return rv;
		sched_take(p, g, node);
		sched_tree_took(p, g, leaf, node);
	}
	return 0;
}

/* Unplaceable unpinned tasks: the group's reason, where it changed. */
static int sched_group_reasons(struct sched *p, struct store_batch *out,
			       struct sched_budget *budget)
{
	struct sched_group *g = &p->g;
	const struct sched_svc *x = &p->svcs[g->svc];

	for (; g->next < x->pend_count; g->next++) {
		int rv = sched_write_reason(
			p, out, budget, p->pend[x->pend_first + g->next].task, g->reason);
		if (rv)
			return rv;
	}
	return 0;
}

/* Runs the open group's phases from where it stopped. Returns 0 when the
 * group is done, SCHED_STEP_FULL when the budget ran out, or an error. */
static int sched_group_run(struct sched *p, struct store_batch *out,
			   struct sched_budget *budget)
{
	struct sched_group *g = &p->g;
	int rv;

	if (g->phase == SCHED_PHASE_PINNED) {
		/* the first sweep: pinned tasks only */
		assert(!p->place_sweep);
		return sched_group_pinned(p, out, budget);
	}
	if (g->phase == SCHED_PHASE_PLACE) {
		rv = sched_group_place(p, out, budget);
		if (rv < 0 || rv == SCHED_STEP_FULL)
			return rv;
		if (rv == SCHED_PLACE_STUCK) {
			sched_explain(p, g, SCHED_NONE);
			g->phase = SCHED_PHASE_REASONS;
		} else {
			return 0;
		}
	}
	assert(g->phase == SCHED_PHASE_REASONS);
	return sched_group_reasons(p, out, budget);
}

/* ---------------------------------------------------------------- steps and runs */

/* Index of the next service from from with pending tasks for a sweep (its
 * pinned tasks, or its others), or SCHED_NONE. */
static uint32_t sched_next_in(const struct sched *p, bool place_sweep, uint32_t from)
{
	for (uint32_t i = from; i < p->svc_count; i++) {
		const struct sched_svc *x = &p->svcs[i];
		if (place_sweep ? x->pend_count > x->pin_count : x->pin_count > 0)
			return i;
	}
	return SCHED_NONE;
}

/* Index of the next group's service from p->next_svc in this sweep, else
 * whether the second sweep has one (SCHED_NONE: nothing left). */
static uint32_t sched_next_group(const struct sched *p)
{
	uint32_t i = sched_next_in(p, p->place_sweep, p->next_svc);
	if (i == SCHED_NONE && !p->place_sweep)
		i = sched_next_in(p, true, 0);
	return i;
}

int sched_step(struct sched *p, struct store_batch *out, size_t writes_max,
	       size_t *bytes_left)
{
	struct sched_budget budget;
	int rv;

	assert(p != NULL);
	if (p->spent || writes_max == 0)
		return CS_EINVAL;
	if (writes_max > LIMIT_SCHED_TASKS_PER_RUN ||
	    out->action_count >= LIMIT_STORE_BATCH_ACTIONS)
		return CS_ELIMIT;
	budget.writes = LIMIT_STORE_BATCH_ACTIONS - out->action_count;
	if (budget.writes > writes_max)
		budget.writes = writes_max;
	budget.bytes = bytes_left ? *bytes_left : SIZE_MAX;
	if (!p->in_group) {
		uint32_t svc = sched_next_in(p, p->place_sweep, p->next_svc);
		if (svc == SCHED_NONE && !p->place_sweep) {
			p->place_sweep = true; /* every pinned task is through */
			p->next_svc = 0;
			svc = sched_next_in(p, true, 0);
		}
		if (svc == SCHED_NONE)
			return SCHED_STEP_DONE;
		if ((rv = sched_group_open(p, svc)) != 0)
			goto spent;
	}
	rv = sched_group_run(p, out, &budget);
	if (bytes_left)
		*bytes_left = budget.bytes;
	if (rv < 0)
		goto spent;
	if (rv == SCHED_STEP_FULL)
		return SCHED_STEP_FULL;
	assert(rv == 0);
	p->next_svc = p->g.svc + 1;
	sched_group_close(p);
	return SCHED_STEP_GROUP;
spent:
	p->spent = true;
	return rv;
}

void sched_get_stats(const struct sched *p, struct sched_stats *st)
{
	*st = p->stats;
	st->more = !p->spent && (p->in_group || sched_next_group(p) != SCHED_NONE);
}

void sched_free(struct sched *p)
{
	if (!p)
		return;
	sched_group_close(p);
	for (size_t i = 0; i < p->spread_count; i++) {
		free(p->spreads[i].keys);
		free(p->spreads[i].order);
		free(p->spreads[i].diff);
	}
	free(p->spreads);
	free(p->svc_active);
	free(p->svc_live);
	free(p->fail_rank);
	free(p->pinned);
	free(p->recs);
	free(p->pend);
	free(p->svc_slots);
	free(p->svcs);
	free(p->nodes);
	free(p->written);
	for (size_t i = 0; i < p->cmemo_count; i++)
		free(p->cmemo[i].result);
	free(p);
}

/* Whether t holds resources on its node in the plan's count (ASSIGNED to
 * RUNNING on a node, as sched_read_task counts it). */
static bool sched_counted(const Cs__Task *t)
{
	Cs__TaskState st = sched_task_state(t);
	return t->node_id != 0 && st >= CS__TASK_STATE__TASK_STATE_ASSIGNED &&
	       st <= CS__TASK_STATE__TASK_STATE_RUNNING;
}

bool sched_survives(struct sched *p, const struct store_event *ev)
{
	const Cs__Task *o, *n;

	if (ev->table != STORE_TASK)
		return false; /* nodes and services: the plan points at them */
	o = (const Cs__Task *)ev->old_obj;
	n = (const Cs__Task *)ev->new_obj;
	if (!o) {
		/* a new task: not in the plan (a later one places it), so a
		 * finished plan no longer stands for a read */
		p->stale = true;
		return true;
	}
	if (sched_written_has(p, o->id))
		/* this plan's own write landing: as written, or someone
		 * else's change came first */
		return n && n->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING &&
		       o->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING &&
		       sched_task_state(o) == CS__TASK_STATE__TASK_STATE_PENDING &&
		       (sched_task_state(n) == CS__TASK_STATE__TASK_STATE_PENDING
				? n->node_id == o->node_id
				: sched_task_state(n) ==
						  CS__TASK_STATE__TASK_STATE_ASSIGNED &&
					  n->node_id != 0);
	if (sched_task_state(o) == CS__TASK_STATE__TASK_STATE_PENDING &&
	    o->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING)
		return false; /* one the plan may hold and place */
	if (!n)
		return !sched_counted(o);
	/* a task the plan counted on its node, or did not look at: the count
	 * (resources, active tasks for spread) must stay as it read it */
	return sched_counted(o) == sched_counted(n) &&
	       (!sched_counted(o) ||
		(o->node_id == n->node_id && o->service_id == n->service_id &&
		 (o->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING) ==
			 (n->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING)));
}

/* Whether p has nothing left to place or write. */
static bool sched_finished(const struct sched *p)
{
	return !p->spent && !p->in_group && sched_next_group(p) == SCHED_NONE;
}

/* The counts a new read would give, in *st, for a finished plan whose
 * writes landed and which saw no change it does not survive and no new
 * task: the tasks it placed are no longer pending; those it left pending
 * are pending still, as unplaceable as they were; nothing to write. */
static void sched_finished_stats(const struct sched *p, struct sched_stats *st)
{
	st->pending_count = p->stats.pending_count - p->stats.assigned_count;
	st->unplaceable_count = p->stats.unplaceable_count;
	st->groups_count = 0;
	for (size_t i = 0; i < p->svc_count; i++)
		st->groups_count += p->svcs[i].pend_count > p->svcs[i].placed_count;
	st->assigned_count = st->reasons_written = 0;
}

int sched_pass(struct sched **plan, const struct store *s, uint64_t now_ms,
	       const struct sched_failures *f, size_t writes_max, struct store_batch *out,
	       struct sched_stats *stats)
{
	struct sched *p = *plan;
	struct sched_stats st;
	size_t start = out->action_count, bytes_left = SCHED_RUN_BYTES_MAX;
	size_t assigned0 = 0, reasons0 = 0;
	bool continued = false;
	int rv = 0;

	if (writes_max == 0)
		return CS_EINVAL;
	if (writes_max > LIMIT_SCHED_TASKS_PER_RUN)
		return CS_ELIMIT;
	if (p &&
	    (p->spent || p->s != s || p->fails != f || (p->stale && sched_finished(p)))) {
		sched_free(p);
		*plan = p = NULL;
	}
	if (p) {
		/* the last pass's writes have landed (the caller says so by
		 * passing the plan on): forget them; the clock moves on */
		if (p->written)
			memset(p->written, 0, (p->written_mask + 1) * sizeof *p->written);
		p->written_count = 0;
		p->now_ms = now_ms;
		assigned0 = p->stats.assigned_count;
		reasons0 = p->stats.reasons_written;
		continued = true;
	} else if ((rv = sched_new_with(s, now_ms, f, &p)) != 0) {
		return rv;
	}
	do {
		size_t used = out->action_count - start;
		assert(used <= writes_max);
		if (used == writes_max)
			break;
		rv = sched_step(p, out, writes_max - used, &bytes_left);
	} while (rv == SCHED_STEP_GROUP);
	sched_get_stats(p, &st);
	st.assigned_count -= assigned0;
	st.reasons_written -= reasons0;
	if (continued && !st.more && out->action_count == start)
		sched_finished_stats(p, &st); /* what a new read would count */
	if (stats)
		*stats = st;
	/* a plan that wrote is kept even when it has nothing left: once its
	 * writes land, the next pass (which the loop makes for them) finds
	 * nothing without reading the whole store again */
	if (rv < 0 || (!st.more && out->action_count == start)) {
		sched_free(p);
		p = NULL;
	}
	*plan = p;
	assert(out->action_count - start <= writes_max);
	return rv < 0 ? rv : 0;
}

int sched_run(const struct store *s, uint64_t now_ms, size_t writes_max,
	      struct store_batch *out, struct sched_stats *stats)
{
	return sched_run_with(s, now_ms, NULL, writes_max, out, stats);
}

int sched_run_with(const struct store *s, uint64_t now_ms, const struct sched_failures *f,
		   size_t writes_max, struct store_batch *out, struct sched_stats *stats)
{
	struct sched *p = NULL; /* a plan for this run alone */
	int rv = sched_pass(&p, s, now_ms, f, writes_max, out, stats);

	sched_free(p);
	return rv;
}
