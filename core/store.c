/* store: tables, indexes, watches, the FSM's apply, snapshots. See store.h.
 * Sections: entries and keys, lifecycle, reads, watches, batches, apply,
 * snapshots. */
#include "core/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/allocator.h" /* its pure CIDR functions */
#include "core/errors.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/svccount.h"
#include "core/tree.h"

enum { STORE_WATCHES_MAX = 32 };

/* Placements (issue 18) carry one status message (the scheduler's), and
 * status reports a few (the agents': "accepted", "preparing", "started",
 * ...): the store keeps each of the first few texts once and points every
 * task a placement or a report wrote at it, instead of a copy a task. */
enum { STORE_MSGS_MAX = 8 };

/* A batch's actions and lookups are independent cache misses (a batch of
 * 10,000 decoded does not stay in the cache): while apply works on one
 * action it asks for the action this many ahead, then for each nearer one
 * the next thing its lookup reads (object, hash slot, entry, version: see
 * store_prefetch_check; then, applying, the entry, the object, its status
 * and group neighbours alike). A prefetch changes nothing but timing: a
 * guess that is wrong (a stale link, another key's slot) costs a fetch. */
enum { STORE_PREFETCH_AHEAD = 16 };
/* The check sweep's (store_prefetch_check): a check is a short step, so a
 * lookup's chain of misses (hash slot, entry, version: about 300 ns each on
 * a loaded machine) needs more actions in between to land in time. */
enum { STORE_CHECK_AHEAD = 64 };
#if defined(__GNUC__)
#define STORE_PREFETCH(addr) __builtin_prefetch(addr)
#else
#define STORE_PREFETCH(addr) ((void)(addr))
#endif

struct store_block;

/* One stored object and its index links. Tasks use all three secondary
 * links; services use by_a for their name; nodes none. */
struct store_entry {
	struct tree_node by_id;
	/* obj's version, beside id in the same 16 bytes (an entry is
	 * 16-aligned): a placement's check (the version its writer read)
	 * reads this one line and no line of the object (issue 18). Set
	 * wherever the object's version is, with store_entry_set */
	uint64_t version;
	uint64_t id; /* obj's id: a lookup reads no object */
	/* next to id: the line of the lookup's key holds the object's
	 * address too, for three entries in four (a fourth starts it on the
	 * next line, which apply asks for with it) */
	ProtobufCMessage *obj;
	struct store_block *blk; /* task: its block, in a large group (else NULL) */
	struct tree_node by_a;	 /* task: (service, slot, id); service: name */
	/* a task's keys in by_a, copied from obj as it is linked there (and
	 * by_c's below): the compares and priorities of a search read the
	 * entries on its path alone, where reading each task cost another
	 * cache miss a level (issue 18: the create of 100,000 tasks) */
	uint64_t key_service, key_slot;
	struct tree_node by_c; /* task: (desired state, id) */
	uint64_t key_desired;
};

/* A task of a small group: its id beside its entry, so that a search reads
 * one array, not an entry per step. */
struct store_gpair {
	uint64_t id;
	struct store_entry *e;
};

/* The tasks of one node id (0: unassigned): up to STORE_GROUP_ARRAY_MAX in
 * an array sorted by id (a node's tasks: a search in a few cache lines and
 * a short move), more in blocks (the unassigned tasks of a large rollout:
 * a task leaves with a search of its own block, no move of the rest). The
 * groups are found by node id through a hash and kept in node id order in
 * a tree (scans). A group lives while it holds a task. */
enum { STORE_GROUP_ARRAY_MAX = 256, STORE_GROUP_ARRAY_BACK = 64 };

/* A run of one large group's tasks (issue 18): up to STORE_BLOCK_MAX ids
 * in order, their entries beside them. The blocks of a group are a list in
 * id order, found by the highest id each may hold (hi) through a tree:
 * block k holds ids in (hi of block k-1, hi of block k], and the last
 * block's hi is UINT64_MAX. Each task's entry points at its block, so that
 * a task leaves its group with a look at one block (five lines, which
 * apply asks for ahead) where a treap rotated it down to a leaf through
 * its neighbours' entries (a miss each). A block lives while it holds a
 * task. */
enum { STORE_BLOCK_MAX = 16 };

struct store_block {
	uint32_t count;
	uint64_t hi;
	uint64_t ids[STORE_BLOCK_MAX];
	struct store_entry *e[STORE_BLOCK_MAX];
	struct tree_node by_hi;
	struct store_block *prev, *next;
};

struct store_group {
	struct tree_node by_node_id;
	uint64_t node_id;
	bool blocked;		 /* the tasks are in blocks, else in arr */
	struct store_gpair *arr; /* sorted by id */
	size_t cap;
	size_t count;
	struct tree blocks; /* by hi */
	struct store_block *first, *last;
	struct store_block *spare; /* kept for the next split (store_group_room) */
	/* blocks in the list, and of them empty ones: an emptied block stays
	 * (its range is still its own) until store_blocks_compact */
	size_t block_count, empty_count;
};

/* An open-addressing hash of pointers keyed by a uint64_t at key_off in
 * each (linear probing, NULL empty, at most half full): a lookup costs a
 * cache miss or two where a tree costs one per level. Each slot keeps its
 * pointer's key beside it (issue 18), so that a probe past another key,
 * and a lookup of a key not there (each create's), read the slots' line
 * alone, not the entries they point to (a cache miss each: store_hash_find
 * was 5% of a 1,000-worker rollout). */
struct store_hash_slot {
	uint64_t key;
	void *p; /* NULL: empty */
};
struct store_hash {
	struct store_hash_slot *slots;
	size_t mask;
	size_t count;
	size_t key_off;
};

struct store_watch {
	store_watch_fn fn;
	void *data;
};

struct store_seen {
	uint64_t table, id;
	uint64_t gen; /* the raft index that wrote it */
};

/* The last step of a walk of one service's tasks (store_task_next_by_service,
 * issue 18): the path from the root of tasks_by_service to the node of the
 * task it returned, so that the next step is the in-order successor from
 * there (O(1) amortised) instead of a search from the root (O(log tasks)
 * compares). Valid while the tree has not changed since (gen) and the task
 * is the one the caller passes back; otherwise the step searches, as
 * before, and keeps its path. The steps return the same tasks either way. */
enum { STORE_WALK_DEPTH_MAX = 128 };
/* The task of a node of tasks_by_service. */
#define STORE_WALK_TASK(node) \
	((const Cs__Task *)TREE_ENTRY(node, struct store_entry, by_a)->obj)

struct store_walk {
	uint64_t gen;	      /* by_service_gen when the path was taken */
	const Cs__Task *last; /* the task at the path's end; NULL: no path */
	size_t depth;
	struct tree_node *path[STORE_WALK_DEPTH_MAX];
};

struct store {
	struct tree nodes, services, service_names;
	/* tasks by id: an order for walks (store_task_next, store_task_scan,
	 * a snapshot), lookups going through task_hash. Linked at the first
	 * walk (store_task_index) and kept from then on: the leader's
	 * components walk it, a follower's store may never (issue 18: a
	 * treap insert of every task created on every manager). A treap's
	 * shape depends on its keys alone: built late, it is what the inserts
	 * would have made. */
	struct tree tasks;
	bool tasks_built; /* tasks holds every task */
	struct tree tasks_by_service;
	/* tasks by (desired state, id): read by the scheduler's metrics
	 * alone, so linked at its first read (store_desired_index) and kept
	 * from then on (issue 18: a treap insert of every task created, 3%
	 * of a 100,000-task rollout, for an index no write reads). A treap's
	 * shape depends on its keys alone: built late, it is what the
	 * inserts would have made. */
	struct tree tasks_by_desired;
	bool desired_built; /* tasks_by_desired holds every task */
	/* tasks by (node, id): groups by node id (si: per-node arrays and
	 * blocks where one tree of every task cost a cache miss per level,
	 * twice) */
	struct tree node_groups;
	struct store_hash groups_by_node;
	Cs__Cluster *cluster;
	struct tree networks; /* issue 15: by id (few: names are scanned) */
	struct tree secrets;  /* issue 20: secrets and configs, by id */
	/* tasks by id again, hashed: the tree keeps the id order */
	struct store_hash task_hash;
	/* nodes by id again, hashed (issue 18: a node looked up per task, in
	 * the orchestrator's passes, cost a tree search of cache misses) */
	struct store_hash node_hash;
	uint64_t applied;
	struct store_watch watches[STORE_WATCHES_MAX];
	/* status messages placements share (store_msg_shared) */
	char *msgs[STORE_MSGS_MAX];
	size_t msg_count;
	/* changes to tasks_by_service (a link or unlink, a clear), and the
	 * last by-service step's path (the walk is a reader's, kept in the
	 * store the reader holds const: it changes nothing a reader sees) */
	uint64_t by_service_gen;
	struct store_walk walk;
	struct svccount counts; /* each service's running/desired (svccount.h) */
	/* the same for a walk of every task by id (store_task_next: the
	 * dispatcher's network pass walks them all, a tree search a step):
	 * tasks_gen counts links and unlinks of the id tree and clears */
	uint64_t tasks_gen;
	struct store_walk id_walk;
	/* the (table, id) pairs of the batch being applied (store_keys_repeat):
	 * seen_cap slots (a power of two, or 0), each empty unless its gen is
	 * the index being applied */
	struct store_seen *seen;
	size_t seen_cap;
};

/* ---------------------------------------------------------------- entries and keys */

static int store_cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Every ProtobufCMessage we store has its uint64 id as the first field after
 * the base, which the per-table getters below read. */
static uint64_t store_obj_id(const ProtobufCMessage *m)
{
	if (m->descriptor == &cs__node__descriptor)
		return ((const Cs__Node *)m)->id;
	if (m->descriptor == &cs__service__descriptor)
		return ((const Cs__Service *)m)->id;
	if (m->descriptor == &cs__task__descriptor)
		return ((const Cs__Task *)m)->id;
	if (m->descriptor == &cs__network__descriptor)
		return ((const Cs__Network *)m)->id;
	if (m->descriptor == &cs__secret__descriptor)
		return ((const Cs__Secret *)m)->id;
	assert(m->descriptor == &cs__cluster__descriptor);
	return ((const Cs__Cluster *)m)->id;
}

static int store_cmp_id(const struct tree_node *a, const struct tree_node *b)
{
	const struct store_entry *x = TREE_ENTRY(a, struct store_entry, by_id);
	const struct store_entry *y = TREE_ENTRY(b, struct store_entry, by_id);
	return store_cmp_u64(x->id, y->id);
}

static uint64_t store_prio_id(const struct tree_node *a)
{
	const struct store_entry *x = TREE_ENTRY(a, struct store_entry, by_id);
	return hash_mix64(x->id);
}

#define STORE_ENTRY_OF(node, member) \
	((const struct store_entry *)TREE_ENTRY(node, struct store_entry, member))

/* Copies task t's index keys (and id) into e: before e is linked by them,
 * and into a probe. */
static void store_entry_keys(struct store_entry *e, const Cs__Task *t)
{
	e->id = t->id;
	e->key_service = t->service_id;
	e->key_slot = t->slot;
	e->key_desired = (uint64_t)t->desired_state;
}

static int store_cmp_task_service(const struct tree_node *a, const struct tree_node *b)
{
	const struct store_entry *x = STORE_ENTRY_OF(a, by_a),
				 *y = STORE_ENTRY_OF(b, by_a);
	int c = store_cmp_u64(x->key_service, y->key_service);
	if (c == 0)
		c = store_cmp_u64(x->key_slot, y->key_slot);
	return c ? c : store_cmp_u64(x->id, y->id);
}

static uint64_t store_prio_task_service(const struct tree_node *a)
{
	const struct store_entry *x = STORE_ENTRY_OF(a, by_a);
	return hash_mix64(x->id ^ hash_mix64(x->key_service + x->key_slot));
}

static int store_cmp_group(const struct tree_node *a, const struct tree_node *b)
{
	return store_cmp_u64(TREE_ENTRY(a, struct store_group, by_node_id)->node_id,
			     TREE_ENTRY(b, struct store_group, by_node_id)->node_id);
}

static uint64_t store_prio_group(const struct tree_node *a)
{
	return hash_mix64(TREE_ENTRY(a, struct store_group, by_node_id)->node_id ^
			  0x5bd1e995u);
}

static int store_cmp_task_desired(const struct tree_node *a, const struct tree_node *b)
{
	const struct store_entry *x = STORE_ENTRY_OF(a, by_c),
				 *y = STORE_ENTRY_OF(b, by_c);
	int c = store_cmp_u64(x->key_desired, y->key_desired);
	return c ? c : store_cmp_u64(x->id, y->id);
}

static uint64_t store_prio_task_desired(const struct tree_node *a)
{
	const struct store_entry *x = STORE_ENTRY_OF(a, by_c);
	return hash_mix64(x->id ^ hash_mix64(x->key_desired + 7));
}

static const char *store_service_name(const struct tree_node *a)
{
	const Cs__Service *s =
		(const Cs__Service *)TREE_ENTRY(a, struct store_entry, by_a)->obj;
	return s->spec && s->spec->name ? s->spec->name : "";
}

static uint64_t store_service_id_of(const struct tree_node *a)
{
	return ((const Cs__Service *)TREE_ENTRY(a, struct store_entry, by_a)->obj)->id;
}

static int store_cmp_name(const struct tree_node *a, const struct tree_node *b)
{
	int c = strcmp(store_service_name(a), store_service_name(b));
	return c ? c : store_cmp_u64(store_service_id_of(a), store_service_id_of(b));
}

static uint64_t store_prio_name(const struct tree_node *a)
{
	return hash_mix64(hash_str(store_service_name(a)) ^ store_service_id_of(a));
}

/* ---------------------------------------------------------------- lifecycle */

static void store_group_free(struct store_group *g);

static void store_trees_init(struct store *s)
{
	tree_init(&s->nodes, store_cmp_id, store_prio_id);
	tree_init(&s->services, store_cmp_id, store_prio_id);
	tree_init(&s->tasks, store_cmp_id, store_prio_id);
	tree_init(&s->networks, store_cmp_id, store_prio_id);
	tree_init(&s->secrets, store_cmp_id, store_prio_id);
	tree_init(&s->service_names, store_cmp_name, store_prio_name);
	tree_init(&s->tasks_by_service, store_cmp_task_service, store_prio_task_service);
	tree_init(&s->node_groups, store_cmp_group, store_prio_group);
	s->task_hash = (struct store_hash){.key_off = offsetof(struct store_entry, id)};
	s->node_hash = (struct store_hash){.key_off = offsetof(struct store_entry, id)};
	s->groups_by_node =
		(struct store_hash){.key_off = offsetof(struct store_group, node_id)};
	tree_init(&s->tasks_by_desired, store_cmp_task_desired, store_prio_task_desired);
	s->desired_built = false;
	s->tasks_built = false;
}

struct store *store_new(void)
{
	struct store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	store_trees_init(s);
	return s;
}

/* Frees every entry of one id tree (and its object). */
static void store_table_clear(struct tree *t)
{
	struct tree_node *n;
	while ((n = tree_first(t)) != NULL) {
		struct store_entry *e = TREE_ENTRY(n, struct store_entry, by_id);
		tree_remove(t, n);
		protobuf_c_message_free_unpacked(e->obj, NULL);
		free(e);
	}
}

/* Whether str is one of the status messages s shares. */
static bool store_msg_is_shared(const struct store *s, const char *str)
{
	for (size_t i = 0; i < s->msg_count; i++)
		if (str == s->msgs[i])
			return true;
	return false;
}

/* Detaches a shared status message from obj (a task about to be freed by
 * protobuf-c, which would free it), so that only s frees it. */
static void store_task_unshare(const struct store *s, ProtobufCMessage *obj)
{
	Cs__Task *t = (Cs__Task *)obj;

	if (s->msg_count && obj->descriptor == &cs__task__descriptor && t->status &&
	    store_msg_is_shared(s, t->status->message))
		t->status->message = (char *)protobuf_c_empty_string;
}

static void store_clear(struct store *s)
{
	/* Secondary trees only link entries owned through the id trees. */
	store_table_clear(&s->nodes);
	store_table_clear(&s->services);
	/* tasks through their hash: every entry once, no tree searches (the
	 * order of frees shows nowhere) */
	for (size_t i = 0; s->task_hash.slots && i <= s->task_hash.mask; i++) {
		struct store_entry *e = s->task_hash.slots[i].p;
		if (!e)
			continue;
		store_task_unshare(s, e->obj);
		protobuf_c_message_free_unpacked(e->obj, NULL);
		free(e);
	}
	store_table_clear(&s->networks);
	store_table_clear(&s->secrets);
	/* the groups only link entries freed above */
	for (struct tree_node *n; (n = tree_first(&s->node_groups)) != NULL;) {
		tree_remove(&s->node_groups, n);
		store_group_free(TREE_ENTRY(n, struct store_group, by_node_id));
	}
	free(s->task_hash.slots);
	free(s->node_hash.slots);
	free(s->groups_by_node.slots);
	if (s->cluster)
		protobuf_c_message_free_unpacked(&s->cluster->base, NULL);
	s->cluster = NULL;
	store_trees_init(s);
	s->by_service_gen++;
	s->walk.last = NULL;
	s->tasks_gen++;
	s->id_walk.last = NULL;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	store_clear(s);
	svccount_free(&s->counts);
	for (size_t i = 0; i < s->msg_count; i++)
		free(s->msgs[i]);
	free(s->seen);
	free(s);
}

/* ---------------------------------------------------------------- reads */

static struct store_entry *store_find(const struct tree *t, uint64_t id)
{
	struct store_entry probe = {.id = id};
	struct tree_node *n = tree_find(t, &probe.by_id);
	return n ? TREE_ENTRY(n, struct store_entry, by_id) : NULL;
}

static uint64_t store_hash_key(const struct store_hash *h, const void *p)
{
	uint64_t k;
	memcpy(&k, (const char *)p + h->key_off, sizeof k);
	return k;
}

static size_t store_hash_home(const struct store_hash *h, uint64_t key)
{
	return (size_t)hash_mix64(key) & h->mask;
}

/* The pointer of key in h, or NULL. */
static void *store_hash_find(const struct store_hash *h, uint64_t key)
{
	if (!h->slots)
		return NULL;
	for (size_t i = store_hash_home(h, key); h->slots[i].p; i = (i + 1) & h->mask)
		if (h->slots[i].key == key)
			return h->slots[i].p;
	return NULL;
}

/* Makes room for count pointers in h (grown, never shrunk). Returns 0 or
 * CS_ENOMEM (nothing changed). */
static int store_hash_reserve(struct store_hash *h, size_t count)
{
	size_t cap = h->slots ? h->mask + 1 : 0, ncap = cap ? cap : 64;
	struct store_hash_slot *slots;

	while (2 * count > ncap)
		ncap *= 2;
	if (ncap == cap)
		return 0;
	slots = calloc(ncap, sizeof *slots);
	if (!slots)
		return CS_ENOMEM;
	for (size_t j = 0; j < cap; j++) {
		size_t i;
		if (!h->slots[j].p)
			continue;
		for (i = (size_t)hash_mix64(h->slots[j].key) & (ncap - 1); slots[i].p;
		     i = (i + 1) & (ncap - 1))
			;
		slots[i] = h->slots[j];
	}
	free(h->slots);
	h->slots = slots;
	h->mask = ncap - 1;
	return 0;
}

/* Adds p, whose key is not in h (room reserved). */
static void store_hash_add(struct store_hash *h, void *p)
{
	uint64_t key = store_hash_key(h, p);
	size_t i;
	assert(h->slots && 2 * (h->count + 1) <= h->mask + 1);
	for (i = store_hash_home(h, key); h->slots[i].p; i = (i + 1) & h->mask)
		assert(h->slots[i].p != p);
	h->slots[i] = (struct store_hash_slot){.key = key, .p = p};
	h->count++;
}

/* Removes p, shifting back the pointers of its probe run (no tombstones). */
static void store_hash_del(struct store_hash *h, const void *p)
{
	size_t i = store_hash_home(h, store_hash_key(h, p)), j;

	while (h->slots[i].p != p) {
		assert(h->slots[i].p);
		i = (i + 1) & h->mask;
	}
	h->slots[i].p = NULL;
	for (j = (i + 1) & h->mask; h->slots[j].p; j = (j + 1) & h->mask) {
		size_t home = store_hash_home(h, h->slots[j].key);
		/* j's pointer may fill the hole at i unless its home lies in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		h->slots[i] = h->slots[j];
		h->slots[j].p = NULL;
		i = j;
	}
	assert(h->count > 0);
	h->count--;
}

static struct store_entry *store_task_find(const struct store *s, uint64_t id)
{
	return store_hash_find(&s->task_hash, id);
}

/* ------------------------------------------------ tasks by node: the groups */

static int store_cmp_block(const struct tree_node *a, const struct tree_node *b)
{
	return store_cmp_u64(TREE_ENTRY(a, struct store_block, by_hi)->hi,
			     TREE_ENTRY(b, struct store_block, by_hi)->hi);
}

static uint64_t store_prio_block(const struct tree_node *a)
{
	return hash_mix64(TREE_ENTRY(a, struct store_block, by_hi)->hi ^
			  0x2545f4914f6cdd1dull);
}

/* A new block (uninitialised but for its links), or NULL. */
static struct store_block *store_block_new(void)
{
	/* whole lines: a removal reads the count and ids, then the
	 * entries from its place on, and apply asks for exactly those */
	struct store_block *b = aligned_alloc(64, (sizeof *b + 63) / 64 * 64);
	if (b)
		b->prev = b->next = NULL;
	return b;
}

/* How many of b's ids are below id: the index of id, or of the first id
 * above it. Branch-free: the ids are few and sorted. */
static size_t store_block_rank(const struct store_block *b, uint64_t id)
{
	size_t n = 0;
	for (size_t i = 0; i < b->count; i++)
		n += b->ids[i] < id;
	return n;
}

/* The block of g that holds id, or would: the first whose hi is not below
 * id (the last block's hi is UINT64_MAX, so there is one). */
static struct store_block *store_block_of(const struct store_group *g, uint64_t id)
{
	struct store_block probe = {.hi = id};
	struct tree_node *n = tree_ceil(&g->blocks, &probe.by_hi);
	assert(n != NULL);
	return TREE_ENTRY(n, struct store_block, by_hi);
}

/* The place of e in its block (it is there). */
static size_t store_block_index(const struct store_entry *e)
{
	size_t i = store_block_rank(e->blk, e->id);
	assert(i < e->blk->count);
	assert(e->blk->e[i] == e);
	return i;
}

/* The entry at place i of block b, or the first after it in the group's
 * order (empty blocks passed over), or NULL. */
static struct store_entry *store_block_at(const struct store_block *b, size_t i)
{
	while (b && i >= b->count) {
		b = b->next;
		i = 0;
	}
	return b ? b->e[i] : NULL;
}

/* Every block of g, and its spare, freed (their entries are not). */
static void store_blocks_free(struct store_group *g)
{
	for (struct store_block *b = g->first, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(g->spare);
	g->first = g->last = g->spare = NULL;
	g->block_count = g->empty_count = 0;
	tree_init(&g->blocks, store_cmp_block, store_prio_block);
}

/* Links block b into g's list after prev (NULL: first) and into its tree. */
static void store_block_link(struct store_group *g, struct store_block *b,
			     struct store_block *prev)
{
	b->prev = prev;
	b->next = prev ? prev->next : g->first;
	if (b->next)
		b->next->prev = b;
	else
		g->last = b;
	if (prev)
		prev->next = b;
	else
		g->first = b;
	tree_insert(&g->blocks, &b->by_hi);
	g->block_count++;
}

/* Frees g's empty blocks once they outnumber a quarter of its tasks (and
 * 16): the rest are linked again, the last given hi UINT64_MAX, and their
 * tree built anew in one pass (tree_build), where taking each emptied
 * block out of the tree on its own cost a search from the root (5% of the
 * loop at a million tasks). A block's range goes to the next one left.
 * When memory for the list of the rest is short, nothing changes. */
static void store_blocks_compact(struct store_group *g)
{
	struct tree_node **live;
	struct store_block *b, *next;
	size_t n = 0;

	if (g->count == 0 || g->empty_count <= g->count / 4 + 16)
		return;
	live = malloc((g->block_count - g->empty_count) * sizeof *live);
	if (!live)
		return;
	for (b = g->first; b; b = next) {
		next = b->next;
		if (b->count > 0) {
			live[n++] = &b->by_hi;
		} else if (!g->spare) {
			g->spare = b;
		} else {
			free(b);
		}
	}
	assert(n == g->block_count - g->empty_count);
	assert(n > 0);
	g->first = TREE_ENTRY(live[0], struct store_block, by_hi);
	g->last = TREE_ENTRY(live[n - 1], struct store_block, by_hi);
	g->last->hi = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		b = TREE_ENTRY(live[i], struct store_block, by_hi);
		b->prev =
			i > 0 ? TREE_ENTRY(live[i - 1], struct store_block, by_hi) : NULL;
		b->next = i + 1 < n ? TREE_ENTRY(live[i + 1], struct store_block, by_hi)
				    : NULL;
	}
	tree_init(&g->blocks, store_cmp_block, store_prio_block);
	tree_build(&g->blocks, live, n);
	g->block_count = n;
	g->empty_count = 0;
	free(live);
}

/* Turns g's full array into blocks, each STORE_BLOCK_FILL tasks but the
 * last, and keeps a spare. Returns 0 or CS_ENOMEM (nothing changed). */
enum { STORE_BLOCK_FILL = STORE_BLOCK_MAX * 3 / 4 };
enum {
	STORE_BLOCKS_FROM_ARRAY =
		(STORE_GROUP_ARRAY_MAX + STORE_BLOCK_FILL - 1) / STORE_BLOCK_FILL + 1
};

static int store_group_to_blocks(struct store_group *g)
{
	struct store_block *made[STORE_BLOCKS_FROM_ARRAY];
	size_t need = (g->count + STORE_BLOCK_FILL - 1) / STORE_BLOCK_FILL + 1, k, i;

	assert(!g->blocked);
	assert(need <= STORE_BLOCKS_FROM_ARRAY);
	for (k = 0; k < need; k++)
		if (!(made[k] = store_block_new())) {
			while (k > 0)
				free(made[--k]);
			return CS_ENOMEM;
		}
	tree_init(&g->blocks, store_cmp_block, store_prio_block);
	g->first = g->last = NULL;
	for (k = 0, i = 0; i < g->count; k++) {
		struct store_block *b = made[k];
		b->count = 0;
		while (b->count < STORE_BLOCK_FILL && i < g->count) {
			b->ids[b->count] = g->arr[i].id;
			b->e[b->count] = g->arr[i].e;
			g->arr[i].e->blk = b;
			b->count++;
			i++;
		}
		b->hi = i == g->count ? UINT64_MAX : b->ids[b->count - 1];
		store_block_link(g, b, g->last);
	}
	assert(k == need - 1);
	g->spare = made[k];
	free(g->arr);
	g->arr = NULL;
	g->cap = 0;
	g->blocked = true;
	return 0;
}

/* Turns g's blocks back into an array when memory allows (else they
 * stay). */
static void store_group_to_array(struct store_group *g)
{
	struct store_gpair *arr = malloc(2 * STORE_GROUP_ARRAY_BACK * sizeof *arr);
	size_t i = 0;

	assert(g->blocked);
	assert(g->count <= STORE_GROUP_ARRAY_BACK);
	if (!arr)
		return;
	for (struct store_block *b = g->first; b; b = b->next)
		for (size_t j = 0; j < b->count; j++, i++) {
			arr[i] = (struct store_gpair){.id = b->ids[j], .e = b->e[j]};
			b->e[j]->blk = NULL;
		}
	assert(i == g->count);
	store_blocks_free(g);
	g->blocked = false;
	g->arr = arr;
	g->cap = 2 * STORE_GROUP_ARRAY_BACK;
}

/* The first index of g's array whose id is not below id. */
static size_t store_gpair_ceil(const struct store_group *g, uint64_t id)
{
	size_t lo = 0, hi = g->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->arr[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first task of g, or NULL. */
static struct store_entry *store_group_first(const struct store_group *g)
{
	if (g->blocked)
		return g->first ? store_block_at(g->first, 0) : NULL;
	return g->count ? g->arr[0].e : NULL;
}

/* The first task of g with id above id, or NULL. */
static struct store_entry *store_group_after(const struct store_group *g, uint64_t id)
{
	size_t i;
	if (g->blocked) {
		const struct store_block *b = store_block_of(g, id);
		i = store_block_rank(b, id);
		if (i < b->count && b->ids[i] == id)
			i++;
		return store_block_at(b, i);
	}
	i = store_gpair_ceil(g, id);
	if (i < g->count && g->arr[i].id == id)
		i++;
	return i < g->count ? g->arr[i].e : NULL;
}

/* The task after e (in g), or NULL. */
static struct store_entry *store_group_next(const struct store_group *g,
					    struct store_entry *e)
{
	if (g->blocked)
		return store_block_at(e->blk, store_block_index(e) + 1);
	return store_group_after(g, e->id);
}

/* Makes room for one more task in g: in its array (a full one turns into
 * blocks), or a spare block for a split. Returns 0 or CS_ENOMEM (nothing
 * changed). */
static int store_group_room(struct store_group *g)
{
	size_t cap;
	struct store_gpair *arr;

	if (g->blocked) {
		if (!g->spare && !(g->spare = store_block_new()))
			return CS_ENOMEM;
		return 0;
	}
	if (g->count == STORE_GROUP_ARRAY_MAX)
		return store_group_to_blocks(g);
	if (g->count < g->cap)
		return 0;
	cap = g->cap ? 2 * g->cap : 4;
	if (cap > STORE_GROUP_ARRAY_MAX)
		cap = STORE_GROUP_ARRAY_MAX;
	arr = realloc(g->arr, cap * sizeof *arr);
	if (!arr)
		return CS_ENOMEM;
	g->arr = arr;
	g->cap = cap;
	return 0;
}

/* Adds e to g's blocks (room made): into the block of its id, split in
 * two (the spare taking the lower half) when full. */
static void store_blocks_insert(struct store_group *g, struct store_entry *e)
{
	struct store_block *b = store_block_of(g, e->id);
	size_t i;

	if (b->count == STORE_BLOCK_MAX) {
		struct store_block *c = g->spare;
		enum { HALF = STORE_BLOCK_MAX / 2 };
		assert(c != NULL);
		g->spare = NULL;
		memcpy(c->ids, b->ids, HALF * sizeof *b->ids);
		memcpy(c->e, b->e, HALF * sizeof *b->e);
		c->count = HALF;
		c->hi = b->ids[HALF - 1];
		memmove(b->ids, b->ids + HALF, HALF * sizeof *b->ids);
		memmove(b->e, b->e + HALF, HALF * sizeof *b->e);
		b->count = HALF;
		for (i = 0; i < HALF; i++)
			c->e[i]->blk = c;
		store_block_link(g, c, b->prev);
		if (e->id <= c->hi)
			b = c;
	}
	if (b->count == 0)
		g->empty_count--;
	i = store_block_rank(b, e->id);
	assert(i == b->count || b->ids[i] != e->id);
	memmove(b->ids + i + 1, b->ids + i, (b->count - i) * sizeof *b->ids);
	memmove(b->e + i + 1, b->e + i, (b->count - i) * sizeof *b->e);
	b->ids[i] = e->id;
	b->e[i] = e;
	b->count++;
	e->blk = b;
	g->count++;
}

/* Adds e to g (room made). */
static void store_group_insert(struct store_group *g, struct store_entry *e)
{
	size_t i;

	if (g->blocked) {
		store_blocks_insert(g, e);
		return;
	}
	assert(g->count < g->cap);
	i = store_gpair_ceil(g, e->id);
	assert(i == g->count || g->arr[i].id != e->id);
	memmove(g->arr + i + 1, g->arr + i, (g->count - i) * sizeof *g->arr);
	g->arr[i] = (struct store_gpair){.id = e->id, .e = e};
	e->blk = NULL;
	g->count++;
}

/* Removes e from g; blocks shrunk to STORE_GROUP_ARRAY_BACK tasks turn
 * back into an array when memory allows (else stay blocks). */
static void store_group_remove(struct store_group *g, struct store_entry *e)
{
	size_t i;

	if (g->blocked) {
		struct store_block *b = e->blk;
		i = store_block_index(e);
		memmove(b->ids + i, b->ids + i + 1, (b->count - i - 1) * sizeof *b->ids);
		memmove(b->e + i, b->e + i + 1, (b->count - i - 1) * sizeof *b->e);
		b->count--;
		g->count--;
		e->blk = NULL;
		if (b->count == 0) {
			g->empty_count++;
			store_blocks_compact(g);
		}
		if (g->count > 0 && g->count <= STORE_GROUP_ARRAY_BACK)
			store_group_to_array(g);
		return;
	}
	i = store_gpair_ceil(g, e->id);
	assert(i < g->count && g->arr[i].e == e);
	memmove(g->arr + i, g->arr + i + 1, (g->count - i - 1) * sizeof *g->arr);
	g->count--;
}

static void store_group_free(struct store_group *g)
{
	if (g->blocked)
		store_blocks_free(g);
	free(g->arr);
	free(g);
}

static struct store_group *store_group_find(const struct store *s, uint64_t node_id)
{
	return store_hash_find(&s->groups_by_node, node_id);
}

/* Makes sure node_id has a group, so that linking a task there cannot fail.
 * Returns 0 or CS_ENOMEM (nothing changed). */
static int store_group_reserve(struct store *s, uint64_t node_id)
{
	struct store_group *g = store_group_find(s, node_id);

	if (g)
		return store_group_room(g);
	if (store_hash_reserve(&s->groups_by_node, s->groups_by_node.count + 1))
		return CS_ENOMEM;
	g = calloc(1, sizeof *g);
	if (!g)
		return CS_ENOMEM;
	g->node_id = node_id;
	if (store_group_room(g)) {
		free(g);
		return CS_ENOMEM;
	}
	store_hash_add(&s->groups_by_node, g);
	tree_insert(&s->node_groups, &g->by_node_id);
	return 0;
}

/* Links e into its task's node's group (reserved). */
static void store_group_link(struct store *s, struct store_entry *e)
{
	struct store_group *g = store_group_find(s, ((const Cs__Task *)e->obj)->node_id);
	assert(g != NULL);
	store_group_insert(g, e);
}

/* Unlinks e from the group of node_id (its task's, when it was linked); a
 * group left empty goes. */
static void store_group_unlink(struct store *s, struct store_entry *e, uint64_t node_id)
{
	struct store_group *g = store_group_find(s, node_id);
	assert(g != NULL);
	store_group_remove(g, e);
	if (g->count == 0) {
		store_hash_del(&s->groups_by_node, g);
		tree_remove(&s->node_groups, &g->by_node_id);
		store_group_free(g);
	}
}

/* The entry of id in table t (tasks through the hash). */
static struct store_entry *store_entry_find(struct store *s, enum store_table t,
					    uint64_t id);

const Cs__Node *store_node_get(const struct store *s, uint64_t id)
{
	struct store_entry *e = store_hash_find(&s->node_hash, id);
	return e ? (const Cs__Node *)e->obj : NULL;
}

const Cs__Service *store_service_get(const struct store *s, uint64_t id)
{
	struct store_entry *e = store_find(&s->services, id);
	return e ? (const Cs__Service *)e->obj : NULL;
}

const Cs__Task *store_task_get(const struct store *s, uint64_t id)
{
	struct store_entry *e = store_task_find(s, id);
	return e ? (const Cs__Task *)e->obj : NULL;
}

bool store_cluster_removed(const Cs__Cluster *c, uint64_t id)
{
	size_t lo = 0, hi = c ? c->n_removed_nodes : 0;

	while (id && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->removed_nodes[mid] == id)
			return true;
		if (c->removed_nodes[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

uint64_t store_cluster_removed_digest(const Cs__Cluster *c)
{
	uint64_t acc = 0x9e3779b97f4a7c15ull;
	size_t n = c ? c->n_removed_nodes : 0;

	for (size_t i = 0; i < n; i++)
		acc = hash_mix64(acc ^ c->removed_nodes[i]);
	return hash_mix64(acc ^ n) | 1;
}

const Cs__Cluster *store_cluster(const struct store *s)
{
	return s->cluster;
}

const Cs__Service *store_service_by_name(const struct store *s, const char *name)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Service key = CS__SERVICE__INIT;
	struct store_entry probe = {.obj = &key.base};
	struct tree_node *n;

	spec.name = (char *)name;
	key.spec = &spec;
	key.id = 0; /* the smallest id with this name */
	n = tree_ceil(&s->service_names, &probe.by_a);
	if (!n || strcmp(store_service_name(n), name) != 0)
		return NULL;
	return (const Cs__Service *)TREE_ENTRY(n, struct store_entry, by_a)->obj;
}

size_t store_node_count(const struct store *s)
{
	return s->nodes.count;
}
size_t store_service_count(const struct store *s)
{
	return s->services.count;
}
size_t store_task_count(const struct store *s)
{
	return s->task_hash.count;
}
const struct svccount *store_svccount(const struct store *s)
{
	return &s->counts;
}

uint64_t store_applied(const struct store *s)
{
	return s->applied;
}

/* Next object of an id tree after prev (NULL: first). */
static const ProtobufCMessage *store_next_id(const struct tree *t,
					     const ProtobufCMessage *prev)
{
	struct tree_node *n;
	if (!prev) {
		n = tree_first(t);
	} else {
		struct store_entry probe = {.id = store_obj_id(prev)};
		n = tree_next(t, &probe.by_id);
	}
	return n ? TREE_ENTRY(n, struct store_entry, by_id)->obj : NULL;
}

const Cs__Node *store_node_next(const struct store *s, const Cs__Node *prev)
{
	return (const Cs__Node *)store_next_id(&s->nodes, prev ? &prev->base : NULL);
}

const Cs__Service *store_service_next(const struct store *s, const Cs__Service *prev)
{
	return (const Cs__Service *)store_next_id(&s->services,
						  prev ? &prev->base : NULL);
}

/* Next task in a secondary tree after prev, or the first at/after the key
 * in first_key; NULL when past the group (same() says who belongs). */
static const Cs__Task *store_task_walk(const struct tree *t, size_t link_offset,
				       const Cs__Task *prev, const Cs__Task *first_key,
				       bool (*same)(const Cs__Task *, const Cs__Task *))
{
	struct store_entry probe = {.obj = (ProtobufCMessage *)(prev ? prev : first_key)};
	struct tree_node *link = (struct tree_node *)((char *)&probe + link_offset);

	store_entry_keys(&probe, prev ? prev : first_key);
	struct tree_node *n = prev ? tree_next(t, link) : tree_ceil(t, link);
	const Cs__Task *task;

	if (!n)
		return NULL;
	task = (const Cs__Task *)((const struct store_entry *)(const void *)((char *)n -
									     link_offset))
		       ->obj;
	return same(task, first_key) ? task : NULL;
}

static bool store_same_service(const Cs__Task *a, const Cs__Task *b)
{
	return a->service_id == b->service_id;
}

static bool store_same_slot(const Cs__Task *a, const Cs__Task *b)
{
	return a->service_id == b->service_id && a->slot == b->slot;
}

static bool store_same_desired(const Cs__Task *a, const Cs__Task *b)
{
	return a->desired_state == b->desired_state;
}

/* The in-order successor of the node at the end of w's path, the path
 * moved to it; NULL (and no path) at the end of the tree. */
static struct tree_node *store_walk_succ(struct store_walk *w)
{
	struct tree_node *n = w->path[w->depth - 1];

	if (n->right) {
		n = n->right;
		for (;;) {
			if (w->depth == STORE_WALK_DEPTH_MAX)
				return NULL; /* deeper than kept: the caller searches */
			w->path[w->depth++] = n;
			if (!n->left)
				return n;
			n = n->left;
		}
	}
	/* up while we come from a right child; then the parent is next */
	while (w->depth > 1 && w->path[w->depth - 2]->right == w->path[w->depth - 1])
		w->depth--;
	w->depth--;
	return w->depth ? w->path[w->depth - 1] : NULL;
}

/* The first node of t with key above probe's (strictly: tree_next) or at
 * least probe's (tree_ceil), the search's path to it kept in w. NULL (no
 * path) when there is none or the path is deeper than kept. */
static struct tree_node *store_walk_search(const struct tree *t, struct store_walk *w,
					   const struct tree_node *probe, bool strictly)
{
	struct tree_node *n = t->root, *best = NULL;
	size_t best_depth = 0;

	w->depth = 0;
	while (n) {
		int c = t->cmp(probe, n);
		if (w->depth == STORE_WALK_DEPTH_MAX) {
			w->depth = 0;
			return NULL;
		}
		w->path[w->depth++] = n;
		if (c < 0 || (c == 0 && !strictly)) {
			best = n;
			best_depth = w->depth;
			if (c == 0)
				break;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	w->depth = best ? best_depth : 0;
	return best;
}

const Cs__Task *store_task_next_by_service(const struct store *s, uint64_t service_id,
					   const Cs__Task *prev)
{
	/* the walk's path is a cache: writing it changes nothing a reader
	 * of s can see (s is never a const object: store_new allocates it) */
	struct store_walk *w = &((struct store *)s)->walk;
	Cs__Task key = CS__TASK__INIT;
	struct tree_node *n = NULL;
	const Cs__Task *task;

	key.service_id = service_id;
	if (prev && w->last == prev && w->gen == s->by_service_gen && w->depth > 0 &&
	    STORE_WALK_TASK(w->path[w->depth - 1]) == prev) {
		n = store_walk_succ(w);
		if (!n && w->depth == 0) {
			w->last = NULL; /* the end of the tree */
			return NULL;
		}
	}
	if (!n) {
		/* a search, with a stored entry as the probe (its keys are
		 * the tree's own): prev's entry (strictly above it), or the
		 * first task of the service found as before (then the path
		 * to it); prev no longer stored: the search of before, no
		 * path */
		const struct store_entry *e = prev ? store_task_find(s, prev->id) : NULL;
		const Cs__Task *first = NULL;
		if (prev && !(e && e->obj == &prev->base)) {
			w->last = NULL;
			return store_task_walk(&s->tasks_by_service,
					       offsetof(struct store_entry, by_a), prev,
					       &key, store_same_service);
		}
		if (!prev) {
			first = store_task_walk(&s->tasks_by_service,
						offsetof(struct store_entry, by_a), NULL,
						&key, store_same_service);
			e = first ? store_task_find(s, first->id) : NULL;
			if (!e || e->obj != &first->base) {
				w->last = NULL;
				return first;
			}
		}
		n = store_walk_search(&s->tasks_by_service, w, &e->by_a, prev != NULL);
		if (!n && w->depth == 0) {
			/* nothing above prev, or a path deeper than kept */
			w->last = NULL;
			return prev ? store_task_walk(&s->tasks_by_service,
						      offsetof(struct store_entry, by_a),
						      prev, &key, store_same_service)
				    : first;
		}
	}
	w->gen = s->by_service_gen;
	task = STORE_WALK_TASK(n);
	w->last = w->depth > 0 && w->path[w->depth - 1] == n ? task : NULL;
	return store_same_service(task, &key) ? task : NULL;
}

/* Links every task into tree t (through the node at node_off in its
 * entry), the first time the index is read (*built); from then on link
 * and unlink keep it. The index's keys are the entries' own, so building
 * it changes no answer, and a reader holding the store const may. */
static void store_index_build(const struct store *s, struct tree *t, size_t node_off,
			      bool *built)
{
	if (*built)
		return;
	assert(t->count == 0);
	for (size_t i = 0; s->task_hash.slots && i <= s->task_hash.mask; i++) {
		struct store_entry *e = s->task_hash.slots[i].p;
		if (e)
			tree_insert(t, (struct tree_node *)((char *)e + node_off));
	}
	*built = true;
	assert(t->count == s->task_hash.count);
}

/* The tasks tree, by id, built at its first walk (struct store; cs points
 * at a store that is not const). */
static void store_task_index(const struct store *cs)
{
	struct store *s = (struct store *)cs;
	store_index_build(s, &s->tasks, offsetof(struct store_entry, by_id),
			  &s->tasks_built);
}

const Cs__Task *store_task_next(const struct store *s, const Cs__Task *prev)
{
	/* the walk's path is a cache, as store_task_next_by_service's */
	struct store_walk *w = &((struct store *)s)->id_walk;
	struct store_entry probe = {.id = prev ? prev->id : 0};
	struct tree_node *n = NULL;
	const struct store_entry *e;

	store_task_index(s);
	if (prev && w->last == prev && w->gen == s->tasks_gen && w->depth > 0 &&
	    TREE_ENTRY(w->path[w->depth - 1], struct store_entry, by_id)->obj ==
		    &prev->base) {
		n = store_walk_succ(w);
		if (!n && w->depth == 0) {
			w->last = NULL; /* the end of the tree */
			return NULL;
		}
	}
	if (!n) {
		/* the first id above prev's (at least 0: the first), the path
		 * to it kept; none, or a path deeper than kept: as before */
		n = store_walk_search(&s->tasks, w, &probe.by_id, prev != NULL);
		if (!n) {
			w->last = NULL;
			return (const Cs__Task *)store_next_id(&s->tasks,
							       prev ? &prev->base : NULL);
		}
	}
	e = TREE_ENTRY(n, struct store_entry, by_id);
	w->gen = s->tasks_gen;
	w->last = w->depth > 0 && w->path[w->depth - 1] == n ? (const Cs__Task *)e->obj
							     : NULL;
	return (const Cs__Task *)e->obj;
}

const Cs__Task *store_task_next_in_slot(const struct store *s, uint64_t service_id,
					uint64_t slot, const Cs__Task *prev)
{
	Cs__Task key = CS__TASK__INIT;
	key.service_id = service_id;
	key.slot = slot;
	return store_task_walk(&s->tasks_by_service, offsetof(struct store_entry, by_a),
			       prev, &key, store_same_slot);
}

const Cs__Task *store_task_next_by_node(const struct store *s, uint64_t node_id,
					const Cs__Task *prev)
{
	const struct store_group *g = store_group_find(s, node_id);
	struct store_entry *e;

	if (!g)
		return NULL;
	if (!prev) {
		e = store_group_first(g);
	} else {
		/* prev still on this node: its successor (in blocks, with a
		 * look at its own block alone) */
		e = store_task_find(s, prev->id);
		if (e && ((const Cs__Task *)e->obj)->node_id == node_id)
			e = store_group_next(g, e);
		else
			e = store_group_after(g, prev->id);
	}
	return e ? (const Cs__Task *)e->obj : NULL;
}

struct store_scan {
	store_task_fn fn;
	void *arg;
	uint64_t service_id; /* scan of one service: stop past it */
	bool past;	     /* stopped there */
};

/* Asks for the lines a scan's callback reads of task t first (the
 * scheduler's read: id, node, service, desired state, the status pointer,
 * then the status). */
static void store_prefetch_task(const Cs__Task *t)
{
	STORE_PREFETCH(&t->id);
	STORE_PREFETCH(&t->status);
}

enum { STORE_SCAN_AHEAD = 8 }; /* a power of two */

/* Visits one group's tasks in id order, asking for each task's lines some
 * tasks ahead: in an array, by index; in blocks, a block ahead for the
 * entries and two ahead for the block itself. */
static int store_scan_visit(void *arg, struct tree_node *n)
{
	const struct store_scan *sc = arg;
	const struct store_group *g = TREE_ENTRY(n, struct store_group, by_node_id);

	if (!g->blocked) {
		for (size_t i = 0; i < g->count; i++) {
			int rv;
			if (i + STORE_SCAN_AHEAD < g->count)
				STORE_PREFETCH(&g->arr[i + STORE_SCAN_AHEAD].e->obj);
			if (i + STORE_SCAN_AHEAD / 2 < g->count)
				store_prefetch_task(
					(const Cs__Task *)g->arr[i + STORE_SCAN_AHEAD / 2]
						.e->obj);
			rv = sc->fn(sc->arg, (const Cs__Task *)g->arr[i].e->obj);
			if (rv)
				return rv;
		}
		return 0;
	}
	for (const struct store_block *b = g->first; b; b = b->next) {
		const struct store_block *b1 = b->next;
		size_t i;
		if (b1 && b1->next)
			for (size_t off = 0; off < sizeof *b; off += 64)
				STORE_PREFETCH((const char *)b1->next + off);
		for (i = 0; i < b->count; i++) {
			size_t j = i + STORE_SCAN_AHEAD / 4;
			int rv;
			if (b1 && i < b1->count)
				STORE_PREFETCH(&b1->e[i]->obj);
			if (j < b->count)
				store_prefetch_task((const Cs__Task *)b->e[j]->obj);
			else if (b1 && j - b->count < b1->count)
				store_prefetch_task(
					(const Cs__Task *)b1->e[j - b->count]->obj);
			rv = sc->fn(sc->arg, (const Cs__Task *)b->e[i]->obj);
			if (rv)
				return rv;
		}
		for (; b1 && i < b1->count; i++)
			STORE_PREFETCH(&b1->e[i]->obj);
	}
	return 0;
}

static int store_scan_service_visit(void *arg, struct tree_node *n)
{
	struct store_scan *sc = arg;
	const struct store_entry *e = TREE_ENTRY(n, struct store_entry, by_a);
	const Cs__Task *t = (const Cs__Task *)e->obj;
	if (t->service_id != sc->service_id) {
		sc->past = true;
		return 1;
	}
	return sc->fn(sc->arg, t);
}

int store_task_scan_service(const struct store *s, uint64_t service_id, store_task_fn fn,
			    void *arg)
{
	Cs__Task key = CS__TASK__INIT;
	struct store_entry probe = {.obj = &key.base};
	struct store_scan sc = {.fn = fn, .arg = arg, .service_id = service_id};
	int rv;

	key.service_id = service_id;
	store_entry_keys(&probe, &key);
	rv = tree_walk(&s->tasks_by_service, &probe.by_a, store_scan_service_visit, &sc);
	return sc.past ? 0 : rv;
}

int store_task_scan_by_node(const struct store *s, uint64_t node_from, store_task_fn fn,
			    void *arg)
{
	struct store_group probe = {.node_id = node_from};
	struct store_scan sc = {.fn = fn, .arg = arg};

	return tree_walk(&s->node_groups, &probe.by_node_id, store_scan_visit, &sc);
}

/* One id-order walk's callback (one of the two) and its argument. */
struct store_id_scan {
	store_task_fn task_fn;
	store_node_fn node_fn;
	void *arg;
};

static int store_id_scan_visit(void *arg, struct tree_node *n)
{
	const struct store_id_scan *sc = arg;
	const ProtobufCMessage *obj = TREE_ENTRY(n, struct store_entry, by_id)->obj;
	return sc->task_fn ? sc->task_fn(sc->arg, (const Cs__Task *)obj)
			   : sc->node_fn(sc->arg, (const Cs__Node *)obj);
}

int store_task_scan(const struct store *s, store_task_fn fn, void *arg)
{
	struct store_id_scan sc = {.task_fn = fn, .arg = arg};
	assert(fn != NULL);
	store_task_index(s);
	return tree_walk(&s->tasks, NULL, store_id_scan_visit, &sc);
}

int store_node_scan(const struct store *s, store_node_fn fn, void *arg)
{
	struct store_id_scan sc = {.node_fn = fn, .arg = arg};
	assert(fn != NULL);
	return tree_walk(&s->nodes, NULL, store_id_scan_visit, &sc);
}

/* tasks_by_desired, an index of keys the entries hold already
 * (store_entry_keys), built at its first read (as store_task_index). */
static void store_desired_index(const struct store *cs)
{
	struct store *s = (struct store *)cs;
	store_index_build(s, &s->tasks_by_desired, offsetof(struct store_entry, by_c),
			  &s->desired_built);
}

struct store_index_counts store_indexed(const struct store *s)
{
	return (struct store_index_counts){.by_id = s->tasks.count,
					   .by_desired = s->tasks_by_desired.count};
}

const Cs__Task *store_task_next_by_desired(const struct store *s, Cs__TaskState desired,
					   const Cs__Task *prev)
{
	Cs__Task key = CS__TASK__INIT;
	key.desired_state = desired;
	store_desired_index(s);
	return store_task_walk(&s->tasks_by_desired, offsetof(struct store_entry, by_c),
			       prev, &key, store_same_desired);
}

/* ---------------------------------------------------------------- watches */

int store_watch(struct store *s, store_watch_fn fn, void *data)
{
	for (int i = 0; i < STORE_WATCHES_MAX; i++) {
		if (!s->watches[i].fn) {
			s->watches[i].fn = fn;
			s->watches[i].data = data;
			return i + 1;
		}
	}
	return CS_ELIMIT;
}

void store_unwatch(struct store *s, int handle)
{
	if (handle >= 1 && handle <= STORE_WATCHES_MAX)
		s->watches[handle - 1].fn = NULL;
}

static void store_notify(struct store *s, const struct store_event *ev)
{
	svccount_event(&s->counts, s, ev);
	for (int i = 0; i < STORE_WATCHES_MAX; i++)
		if (s->watches[i].fn)
			s->watches[i].fn(s->watches[i].data, ev);
}

/* ---------------------------------------------------------------- batches */

void store_batch_init(struct store_batch *b)
{
	memset(b, 0, sizeof *b);
}

void store_batch_free(struct store_batch *b)
{
	free(b->buf);
	memset(b, 0, sizeof *b);
}

/* StoreBatch's fields on the wire: actions = 1 (length-delimited),
 * proposer = 2 and proposal_id = 3 (varints). */
enum {
	STORE_WIRE_ACTIONS = (1 << 3) | 2,
	STORE_WIRE_PROPOSER = (2 << 3) | 0,
	STORE_WIRE_PROPOSAL = (3 << 3) | 0,
	STORE_VARINT_MAX = 10
};

/* Writes v as a varint at p; returns its length. */
static size_t store_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Encodes the action (kind, obj) onto the batch's bytes, as protobuf-c
 * would inside a StoreBatch: tag, length, the StoreAction. The object is
 * read now and not kept. */
static int store_batch_put(struct store_batch *b, const Cs__StoreAction *a);

static int store_batch_add(struct store_batch *b, Cs__StoreAction__Kind kind,
			   const ProtobufCMessage *obj)
{
	Cs__StoreAction a = CS__STORE_ACTION__INIT;

	a.kind = kind;
	if (obj->descriptor == &cs__node__descriptor) {
		a.object_case = CS__STORE_ACTION__OBJECT_NODE;
		a.node = (Cs__Node *)obj;
	} else if (obj->descriptor == &cs__service__descriptor) {
		a.object_case = CS__STORE_ACTION__OBJECT_SERVICE;
		a.service = (Cs__Service *)obj;
	} else if (obj->descriptor == &cs__task__descriptor) {
		a.object_case = CS__STORE_ACTION__OBJECT_TASK;
		a.task = (Cs__Task *)obj;
	} else if (obj->descriptor == &cs__network__descriptor) {
		a.object_case = CS__STORE_ACTION__OBJECT_NETWORK;
		a.network = (Cs__Network *)obj;
	} else if (obj->descriptor == &cs__secret__descriptor) {
		a.object_case = CS__STORE_ACTION__OBJECT_SECRET;
		a.secret = (Cs__Secret *)obj;
	} else {
		assert(obj->descriptor == &cs__cluster__descriptor);
		a.object_case = CS__STORE_ACTION__OBJECT_CLUSTER;
		a.cluster = (Cs__Cluster *)obj;
	}
	return store_batch_put(b, &a);
}

/* Makes room in b for one more action of size bytes (with its tag and
 * length). Returns 0, CS_ELIMIT or CS_ENOMEM (nothing changed). */
static int store_batch_room(struct store_batch *b, size_t size)
{
	size_t need;

	if (b->action_count >= LIMIT_STORE_BATCH_ACTIONS)
		return CS_ELIMIT;
	need = b->len + 1 + STORE_VARINT_MAX + size;
	if (need < b->len)
		return CS_ELIMIT;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;
		while (cap < need)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p)
			return CS_ENOMEM;
		b->buf = p;
		b->cap = cap;
	}
	return 0;
}

/* Encodes action a onto the batch's bytes (see store_batch_add). */
static int store_batch_put(struct store_batch *b, const Cs__StoreAction *a)
{
	size_t size = cs__store_action__get_packed_size(a);
	int rv = store_batch_room(b, size);

	if (rv)
		return rv;
	b->buf[b->len++] = STORE_WIRE_ACTIONS;
	b->len += store_varint(b->buf + b->len, size);
	b->len += cs__store_action__pack(a, b->buf + b->len);
	b->action_count++;
	return 0;
}

/* Bytes of v as a varint. */
static size_t store_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Field f holding v, as protobuf-c packs a proto3 varint field: nothing
 * when v is 0. Returns the bytes written at p (at most 2 * STORE_VARINT_MAX). */
static size_t store_wire_field(uint8_t *p, unsigned f, uint64_t v)
{
	size_t n;
	if (v == 0)
		return 0;
	n = store_varint(p, (uint64_t)f << 3);
	return n + store_varint(p + n, v);
}

int store_batch_placement(struct store_batch *b, uint64_t task_id, uint64_t version,
			  uint64_t node_id, Cs__TaskState state, uint64_t timestamp_ms,
			  const char *message)
{
	/* written by hand, byte for byte what cs__store_action__pack writes
	 * (fields in number order, zeros left out: the kind, then the
	 * placement's task_id .. message): most of a rollout's writes, where
	 * protobuf-c's descriptor walk cost more than the rest of the write
	 * (test_store_batch_placement_packs_as_protobuf_c) */
	enum {
		F_KIND = 1,
		F_PLACEMENT = 480,
		F_TASK_ID = 480,
		F_VERSION,
		F_NODE_ID,
		F_STATE,
		F_TIMESTAMP,
		F_MESSAGE,
	};
	uint8_t head[6 * 2 * STORE_VARINT_MAX], *o;
	size_t mlen = message ? strlen(message) : 0, n = 0, body, size;
	int rv;

	n += store_wire_field(head + n, F_TASK_ID, task_id);
	n += store_wire_field(head + n, F_VERSION, version);
	n += store_wire_field(head + n, F_NODE_ID, node_id);
	/* an enum packs as an int32: a negative one sign-extended (10 bytes) */
	n += store_wire_field(head + n, F_STATE, (uint64_t)(int64_t)(int32_t)state);
	n += store_wire_field(head + n, F_TIMESTAMP, timestamp_ms);
	if (mlen) {
		n += store_varint(head + n, ((uint64_t)F_MESSAGE << 3) | 2);
		n += store_varint(head + n, mlen);
	}
	body = n + mlen;
	size = 2 + store_varint_len(((uint64_t)F_PLACEMENT << 3) | 2) +
	       store_varint_len(body) + body;
	if (body < mlen || size < body)
		return CS_ELIMIT;
	if ((rv = store_batch_room(b, size)) != 0)
		return rv;
	o = b->buf + b->len;
	*o++ = STORE_WIRE_ACTIONS;
	o += store_varint(o, size);
	o += store_varint(o, (uint64_t)F_KIND << 3);
	o += store_varint(o, CS__STORE_ACTION__KIND__KIND_UPDATE);
	o += store_varint(o, ((uint64_t)F_PLACEMENT << 3) | 2);
	o += store_varint(o, body);
	memcpy(o, head, n);
	o += n;
	if (mlen)
		memcpy(o, message, mlen);
	o += mlen;
	b->len = (size_t)(o - b->buf);
	b->action_count++;
	return 0;
}

int store_batch_status_report(struct store_batch *b, uint64_t task_id, uint64_t node_id,
			      Cs__TaskState state, int32_t exit_code,
			      uint64_t timestamp_ms, const char *message)
{
	Cs__StoreAction a = CS__STORE_ACTION__INIT;
	Cs__TaskStatusReport r = CS__TASK_STATUS_REPORT__INIT;

	r.task_id = task_id;
	r.node_id = node_id;
	r.state = state;
	r.exit_code = exit_code;
	r.timestamp_ms = timestamp_ms;
	r.message = (char *)(message ? message : "");
	a.kind = CS__STORE_ACTION__KIND__KIND_UPDATE;
	a.object_case = CS__STORE_ACTION__OBJECT_STATUS_REPORT;
	a.status_report = &r;
	return store_batch_put(b, &a);
}

int store_batch_node(struct store_batch *b, Cs__StoreAction__Kind kind,
		     const Cs__Node *obj)
{
	return store_batch_add(b, kind, &obj->base);
}

int store_batch_service(struct store_batch *b, Cs__StoreAction__Kind kind,
			const Cs__Service *obj)
{
	return store_batch_add(b, kind, &obj->base);
}

int store_batch_task(struct store_batch *b, Cs__StoreAction__Kind kind,
		     const Cs__Task *obj)
{
	return store_batch_add(b, kind, &obj->base);
}

int store_batch_cluster(struct store_batch *b, Cs__StoreAction__Kind kind,
			const Cs__Cluster *obj)
{
	return store_batch_add(b, kind, &obj->base);
}

int store_batch_encode(const struct store_batch *b, uint64_t proposer,
		       uint64_t proposal_id, uint8_t **buf, size_t *len)
{
	uint8_t *p = malloc(b->len + 2 * (1 + STORE_VARINT_MAX));
	size_t n = b->len;

	if (!p)
		return CS_ENOMEM;
	if (b->len)
		memcpy(p, b->buf, b->len);
	/* proto3: zero scalars are left out */
	if (proposer) {
		p[n++] = STORE_WIRE_PROPOSER;
		n += store_varint(p + n, proposer);
	}
	if (proposal_id) {
		p[n++] = STORE_WIRE_PROPOSAL;
		n += store_varint(p + n, proposal_id);
	}
	*buf = p;
	*len = n;
	return 0;
}

size_t store_batch_bytes(const struct store_batch *b)
{
	return b->len;
}

int store_batch_decode(const struct store_batch *b, Cs__StoreBatch **out)
{
	*out = cs__store_batch__unpack(NULL, b->len, b->buf);
	return *out ? 0 : CS_ENOMEM;
}

/* ---------------------------------------------------------------- apply */

static enum store_table store_action_table(const Cs__StoreAction *a)
{
	switch (a->object_case) {
	case CS__STORE_ACTION__OBJECT_NODE: return STORE_NODE;
	case CS__STORE_ACTION__OBJECT_SERVICE: return STORE_SERVICE;
	case CS__STORE_ACTION__OBJECT_TASK: return STORE_TASK;
	case CS__STORE_ACTION__OBJECT_PLACEMENT: return STORE_TASK;
	case CS__STORE_ACTION__OBJECT_STATUS_REPORT: return STORE_TASK;
	case CS__STORE_ACTION__OBJECT_NETWORK: return STORE_NETWORK;
	case CS__STORE_ACTION__OBJECT_SECRET: return STORE_SECRET;
	default: return STORE_CLUSTER;
	}
}

static ProtobufCMessage *store_action_obj(const Cs__StoreAction *a)
{
	switch (a->object_case) {
	case CS__STORE_ACTION__OBJECT_NODE: return &a->node->base;
	case CS__STORE_ACTION__OBJECT_SERVICE: return &a->service->base;
	case CS__STORE_ACTION__OBJECT_TASK: return &a->task->base;
	case CS__STORE_ACTION__OBJECT_CLUSTER: return &a->cluster->base;
	case CS__STORE_ACTION__OBJECT_NETWORK: return &a->network->base;
	case CS__STORE_ACTION__OBJECT_SECRET: return &a->secret->base;
	default: return NULL;
	}
}

static void store_action_steal(Cs__StoreAction *a)
{
	a->node = NULL;
	a->service = NULL;
	a->task = NULL;
	a->cluster = NULL;
	a->network = NULL;
	a->secret = NULL;
	a->placement = NULL;
}

static uint64_t store_obj_version(const ProtobufCMessage *m)
{
	if (m->descriptor == &cs__node__descriptor)
		return ((const Cs__Node *)m)->version;
	if (m->descriptor == &cs__service__descriptor)
		return ((const Cs__Service *)m)->version;
	if (m->descriptor == &cs__task__descriptor)
		return ((const Cs__Task *)m)->version;
	if (m->descriptor == &cs__network__descriptor)
		return ((const Cs__Network *)m)->version;
	if (m->descriptor == &cs__secret__descriptor)
		return ((const Cs__Secret *)m)->version;
	return ((const Cs__Cluster *)m)->version;
}

static void store_obj_set_version(ProtobufCMessage *m, uint64_t v)
{
	if (m->descriptor == &cs__node__descriptor)
		((Cs__Node *)m)->version = v;
	else if (m->descriptor == &cs__service__descriptor)
		((Cs__Service *)m)->version = v;
	else if (m->descriptor == &cs__task__descriptor)
		((Cs__Task *)m)->version = v;
	else if (m->descriptor == &cs__network__descriptor)
		((Cs__Network *)m)->version = v;
	else if (m->descriptor == &cs__secret__descriptor)
		((Cs__Secret *)m)->version = v;
	else
		((Cs__Cluster *)m)->version = v;
}

/* The created and updated times of a node, service or task (NULLs for the
 * cluster record, which has none). */
static void store_obj_times(ProtobufCMessage *m, uint64_t **created, uint64_t **updated)
{
	*created = *updated = NULL;
	if (m->descriptor == &cs__node__descriptor) {
		*created = &((Cs__Node *)m)->created_ms;
		*updated = &((Cs__Node *)m)->updated_ms;
	} else if (m->descriptor == &cs__service__descriptor) {
		*created = &((Cs__Service *)m)->created_ms;
		*updated = &((Cs__Service *)m)->updated_ms;
	} else if (m->descriptor == &cs__task__descriptor) {
		*created = &((Cs__Task *)m)->created_ms;
		*updated = &((Cs__Task *)m)->updated_ms;
	} else if (m->descriptor == &cs__secret__descriptor) {
		*created = &((Cs__Secret *)m)->created_ms;
		*updated = &((Cs__Secret *)m)->updated_ms;
	}
}

/* Stamps obj, written by a batch of time time_ms (0: none), as SwarmKit's
 * store touches Meta: a create is created and updated then; an update keeps
 * the creation time of old and is updated then (or keeps old's time, by a
 * batch without one). What the writer sent is ignored: times are the
 * store's. */
static void store_obj_stamp(ProtobufCMessage *obj, const ProtobufCMessage *old,
			    uint64_t time_ms)
{
	uint64_t *created, *updated, *old_created, *old_updated;

	store_obj_times(obj, &created, &updated);
	if (!created)
		return;
	if (!old) {
		*created = *updated = time_ms;
		return;
	}
	store_obj_times((ProtobufCMessage *)old, &old_created, &old_updated);
	assert(old_created != NULL);
	assert(old_updated != NULL);
	*created = *old_created;
	*updated = time_ms ? time_ms : *old_updated;
}

static struct tree *store_table_tree(struct store *s, enum store_table t)
{
	switch (t) {
	case STORE_NODE: return &s->nodes;
	case STORE_SERVICE: return &s->services;
	case STORE_NETWORK: return &s->networks;
	case STORE_SECRET: return &s->secrets;
	default: return &s->tasks;
	}
}

static struct store_entry *store_entry_find(struct store *s, enum store_table t,
					    uint64_t id)
{
	return t == STORE_TASK	 ? store_task_find(s, id)
	       : t == STORE_NODE ? store_hash_find(&s->node_hash, id)
				 : store_find(store_table_tree(s, t), id);
}

/* The id of an action's object (which it has). */
static uint64_t store_action_id(const Cs__StoreAction *a)
{
	switch (a->object_case) {
	case CS__STORE_ACTION__OBJECT_NODE: return a->node->id;
	case CS__STORE_ACTION__OBJECT_SERVICE: return a->service->id;
	case CS__STORE_ACTION__OBJECT_TASK: return a->task->id;
	case CS__STORE_ACTION__OBJECT_NETWORK: return a->network->id;
	case CS__STORE_ACTION__OBJECT_SECRET: return a->secret->id;
	case CS__STORE_ACTION__OBJECT_PLACEMENT: return a->placement->task_id;
	case CS__STORE_ACTION__OBJECT_STATUS_REPORT: return a->status_report->task_id;
	default: return store_obj_id(store_action_obj(a));
	}
}

/* Whether an action names an object (a whole one, or a placement's or a
 * status report's task). */
static bool store_action_names(const Cs__StoreAction *a)
{
	return store_action_obj(a) ||
	       (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT && a->placement) ||
	       (a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT &&
		a->status_report);
}

/* The current object an action targets, or NULL; *entry: its entry (NULL
 * for none, or the cluster). */
static const ProtobufCMessage *store_current(struct store *s, const Cs__StoreAction *a,
					     struct store_entry **entry)
{
	enum store_table t = store_action_table(a);
	*entry = NULL;
	if (t == STORE_CLUSTER)
		return s->cluster ? &s->cluster->base : NULL;
	*entry = store_entry_find(s, t, store_action_id(a));
	return *entry ? (*entry)->obj : NULL;
}

/* A placement's check (issue 18): the full task UPDATE's, by the task's id
 * and the version the writer read. */
static int store_check_placement(struct store *s, const Cs__StoreAction *a,
				 struct store_entry **entry)
{
	const Cs__TaskPlacement *p = a->placement;

	*entry = NULL;
	if (!p || a->kind != CS__STORE_ACTION__KIND__KIND_UPDATE)
		return CS_ECORRUPT;
	*entry = store_task_find(s, p->task_id);
	if (!*entry)
		return CS_ENOENT;
	/* the entry's copy: no line of the task read */
	if ((*entry)->version != p->version)
		return CS_EVERSION;
	return 0;
}

/* A status report's check (issue 18): well formed; the task it names is
 * looked up (*entry, NULL: none), and whether it applies is store_do's
 * (a stale report changes nothing: never the batch's verdict). */
static int store_check_status_report(struct store *s, const Cs__StoreAction *a,
				     struct store_entry **entry)
{
	*entry = NULL;
	if (!a->status_report || a->kind != CS__STORE_ACTION__KIND__KIND_UPDATE)
		return CS_ECORRUPT;
	*entry = store_task_find(s, a->status_report->task_id);
	return 0;
}

/* What makes a new network's create fail at apply on every manager alike,
 * whatever the control API checked before proposing it (two creates in
 * flight at once were both checked against a store holding neither): a
 * network of that name exists (CS_EEXIST), or one whose subnet overlaps
 * or whose VNI is the same (CS_EADDRINUSE). */
static int store_check_network_create(struct store *s, const Cs__Network *n)
{
	uint32_t base = 0, b;
	unsigned len = 0, l;
	bool has_subnet = n->subnet && n->subnet[0] &&
			  alloc_parse_cidr(n->subnet, &base, &len) == 0;

	if (store_network_by_name(s, n->spec->name))
		return CS_EEXIST;
	for (const Cs__Network *o = store_network_next(s, NULL); o;
	     o = store_network_next(s, o)) {
		if (n->vni && o->vni == n->vni)
			return CS_EADDRINUSE;
		if (has_subnet && o->subnet && alloc_parse_cidr(o->subnet, &b, &l) == 0 &&
		    alloc_cidr_overlap(base, len, b, l))
			return CS_EADDRINUSE;
	}
	return 0;
}

/* Issue 20: what makes a secret's create fail at apply on every manager
 * alike: no name or data over the limit (CS_ECORRUPT: the control API
 * refuses both first), or one of that name and kind (CS_EEXIST). */
static int store_check_secret_create(struct store *s, const Cs__Secret *x)
{
	if (!x->name || !x->name[0] || x->data.len > LIMIT_SECRET_BYTES_MAX)
		return CS_ECORRUPT;
	if (store_secret_by_name(s, x->config, x->name))
		return CS_EEXIST;
	if (s->secrets.count >= LIMIT_SECRETS_MAX)
		return CS_ELIMIT;
	return 0;
}

/* Issue 20: a secret's update changes its labels only (SwarmKit: "only
 * updates to Labels are allowed"): CS_EINVAL otherwise. */
static int store_check_secret_update(const Cs__Secret *cur, const Cs__Secret *x)
{
	if (cur->config != x->config || !x->name || strcmp(cur->name, x->name) != 0 ||
	    cur->data.len != x->data.len ||
	    (x->data.len && memcmp(cur->data.data, x->data.data, x->data.len) != 0))
		return CS_EINVAL;
	return 0;
}

/* Issue 20: a service's spec may reference only secrets and configs that
 * exist, each of its own kind (CS_ENOENT): a delete in flight when the
 * control API checked cannot leave a service without one. */
static int store_check_service_refs(struct store *s, const Cs__Service *svc)
{
	const Cs__ContainerSpec *cs =
		svc->spec && svc->spec->task ? svc->spec->task->container : NULL;
	if (!cs)
		return 0;
	for (size_t i = 0; i < cs->n_secrets + cs->n_configs; i++) {
		bool config = i >= cs->n_secrets;
		const Cs__SecretReference *r =
			config ? cs->configs[i - cs->n_secrets] : cs->secrets[i];
		const Cs__Secret *x = store_secret_get(s, r->secret_id);
		if (!x || x->config != config)
			return CS_ENOENT;
	}
	return 0;
}

/* Checks one action against the current store; *entry: the entry it
 * targets (NULL: none), which the batch's other actions leave in place
 * (each touches another object), for store_do. */
static int store_check(struct store *s, const Cs__StoreAction *a,
		       struct store_entry **entry)
{
	const ProtobufCMessage *obj = store_action_obj(a);
	const ProtobufCMessage *cur;

	*entry = NULL;
	if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT)
		return store_check_placement(s, a, entry);
	if (a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT)
		return store_check_status_report(s, a, entry);
	/* an object this version does not know (a newer manager's action,
	 * kept as an unknown field): not a verdict this manager can share */
	if (!obj && a->object_case == CS__STORE_ACTION__OBJECT__NOT_SET &&
	    a->base.n_unknown_fields > 0)
		return CS_ENOTSUP;
	if (!obj)
		return CS_ECORRUPT;
	cur = store_current(s, a, entry);
	/* issue 20: a secret's data travels to agents in tasks on the wire,
	 * never into the store (whose log and snapshots hold each secret once,
	 * in its own record) */
	if (obj->descriptor == &cs__task__descriptor && a->task->n_secret_data)
		return CS_ECORRUPT;
	switch (a->kind) {
	case CS__STORE_ACTION__KIND__KIND_CREATE:
		if (cur)
			return CS_EEXIST;
		if (obj->descriptor == &cs__service__descriptor &&
		    (!a->service->spec || !a->service->spec->name))
			return CS_ECORRUPT;
		if (obj->descriptor == &cs__network__descriptor &&
		    (!a->network->spec || !a->network->spec->name))
			return CS_ECORRUPT;
		/* names are unique at apply, not only when the control API
		 * checked (a create in flight was invisible to it) */
		if (obj->descriptor == &cs__service__descriptor &&
		    store_service_by_name(s, a->service->spec->name))
			return CS_EEXIST;
		if (obj->descriptor == &cs__network__descriptor)
			return store_check_network_create(s, a->network);
		if (obj->descriptor == &cs__secret__descriptor)
			return store_check_secret_create(s, a->secret);
		if (obj->descriptor == &cs__service__descriptor)
			return store_check_service_refs(s, a->service);
		return 0;
	case CS__STORE_ACTION__KIND__KIND_UPDATE:
	case CS__STORE_ACTION__KIND__KIND_DELETE:
		if (!cur)
			return CS_ENOENT;
		/* the entry's copy of the version (the cluster has none): the
		 * check reads no line of the current object (issue 18) */
		if ((*entry ? (*entry)->version : store_obj_version(cur)) !=
		    store_obj_version(obj))
			return CS_EVERSION;
		if (a->kind == CS__STORE_ACTION__KIND__KIND_UPDATE &&
		    obj->descriptor == &cs__service__descriptor &&
		    (!a->service->spec || !a->service->spec->name))
			return CS_ECORRUPT;
		if (a->kind == CS__STORE_ACTION__KIND__KIND_UPDATE &&
		    obj->descriptor == &cs__secret__descriptor)
			return store_check_secret_update((const Cs__Secret *)cur,
							 a->secret);
		if (a->kind == CS__STORE_ACTION__KIND__KIND_UPDATE &&
		    obj->descriptor == &cs__service__descriptor)
			return store_check_service_refs(s, a->service);
		/* issue 20: a secret in use stays (SwarmKit's RemoveSecret) */
		if (a->kind == CS__STORE_ACTION__KIND__KIND_DELETE &&
		    obj->descriptor == &cs__secret__descriptor &&
		    store_secret_users(s, (const Cs__Secret *)cur, NULL, 0) > 0)
			return CS_EADDRINUSE;
		return 0;
	default: return CS_ECORRUPT;
	}
}

static int store_key_cmp(const void *pa, const void *pb)
{
	const uint64_t *a = pa, *b = pb;
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

/* Whether a (table, id) pair repeats among the n pairs of keys (sorted
 * here): a batch touches each object at most once, otherwise its check
 * against the store before the batch would not be its check at apply. */
static bool store_keys_repeat_sorted(uint64_t *keys, size_t n)
{
	qsort(keys, n, 2 * sizeof *keys, store_key_cmp);
	for (size_t i = 1; i < n; i++)
		if (keys[2 * i] == keys[2 * i - 2] && keys[2 * i + 1] == keys[2 * i - 1])
			return true;
	return false;
}

/* store_keys_repeat_sorted's verdict through a set of the pairs (issue 18:
 * the sort of a batch of 10,000 was 1% of a rollout on 1,000 workers): the
 * store's seen table, at most half full, whose slots count as empty unless
 * stamped with gen (the raft index being applied: every apply has its own,
 * so the table is never cleared). Sorts instead when the table cannot
 * grow. */
static bool store_keys_repeat(struct store *s, uint64_t *keys, size_t n, uint64_t gen)
{
	size_t mask;

	assert(gen > 0); /* a new slot (zeroed) is empty */
	if (n < 2)
		return false;
	if (s->seen_cap < 2 * n) {
		size_t cap = 1024;
		struct store_seen *v;
		while (cap < 2 * n)
			cap *= 2;
		if (!(v = calloc(cap, sizeof *v)))
			return store_keys_repeat_sorted(keys, n);
		free(s->seen);
		s->seen = v;
		s->seen_cap = cap;
	}
	mask = s->seen_cap - 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t t = keys[2 * i], id = keys[2 * i + 1];
		size_t j = (size_t)hash_mix64(id ^ hash_mix64(t + 1)) & mask;
		for (; s->seen[j].gen == gen; j = (j + 1) & mask)
			if (s->seen[j].id == id && s->seen[j].table == t)
				return true;
		s->seen[j] = (struct store_seen){.table = t, .id = id, .gen = gen};
	}
	return false;
}

/* Which secondary index keys differ between old and n (objects of table
 * t with one id): STORE_KEY_A (service name; a task's service and slot),
 * STORE_KEY_B (a task's node), STORE_KEY_C (a task's desired state). An
 * index's priority reads only what its key does. */
enum { STORE_KEY_A = 1u, STORE_KEY_B = 2u, STORE_KEY_C = 4u, STORE_KEYS_ALL = 7u };

static unsigned store_moved_keys(enum store_table t, const ProtobufCMessage *old,
				 const ProtobufCMessage *n)
{
	unsigned moved = 0;

	if (t == STORE_SERVICE) {
		const Cs__Service *x = (const Cs__Service *)old,
				  *y = (const Cs__Service *)n;
		const char *a = x->spec && x->spec->name ? x->spec->name : "";
		const char *b = y->spec && y->spec->name ? y->spec->name : "";
		moved = strcmp(a, b) != 0 ? STORE_KEY_A : 0;
	} else if (t == STORE_TASK) {
		const Cs__Task *x = (const Cs__Task *)old, *y = (const Cs__Task *)n;
		if (x->service_id != y->service_id || x->slot != y->slot)
			moved |= STORE_KEY_A;
		if (x->node_id != y->node_id)
			moved |= STORE_KEY_B;
		if (x->desired_state != y->desired_state)
			moved |= STORE_KEY_C;
	}
	return moved;
}

/* Unlinks e from (links e into) the indexes other than by id that moved
 * names (their keys read e->obj); STORE_KEYS_ALL: every one. */
static void store_unlink_keys(struct store *s, enum store_table t, struct store_entry *e,
			      unsigned moved)
{
	if (t == STORE_SERVICE && (moved & STORE_KEY_A))
		tree_remove(&s->service_names, &e->by_a);
	if (t == STORE_TASK) {
		if (moved & STORE_KEY_A) {
			tree_remove(&s->tasks_by_service, &e->by_a);
			s->by_service_gen++;
		}
		if (moved & STORE_KEY_B)
			store_group_unlink(s, e, ((const Cs__Task *)e->obj)->node_id);
		if ((moved & STORE_KEY_C) && s->desired_built)
			tree_remove(&s->tasks_by_desired, &e->by_c);
	}
}

static void store_link_keys(struct store *s, enum store_table t, struct store_entry *e,
			    unsigned moved)
{
	if (t == STORE_SERVICE && (moved & STORE_KEY_A))
		tree_insert(&s->service_names, &e->by_a);
	if (t == STORE_TASK) {
		/* the keys of the indexes that did not move are the same */
		store_entry_keys(e, (const Cs__Task *)e->obj);
		if (moved & STORE_KEY_A) {
			tree_insert(&s->tasks_by_service, &e->by_a);
			s->by_service_gen++;
		}
		if (moved & STORE_KEY_B)
			store_group_link(s, e);
		if ((moved & STORE_KEY_C) && s->desired_built)
			tree_insert(&s->tasks_by_desired, &e->by_c);
	}
}

/* Links e into every index of t (a task: room reserved in the hash). */
static void store_link(struct store *s, enum store_table t, struct store_entry *e)
{
	if (t == STORE_TASK) {
		store_hash_add(&s->task_hash, e);
		s->tasks_gen++;
	}
	if (t == STORE_NODE)
		store_hash_add(&s->node_hash, e);
	if (t != STORE_TASK || s->tasks_built)
		tree_insert(store_table_tree(s, t), &e->by_id);
	store_link_keys(s, t, e, STORE_KEYS_ALL);
}

static void store_unlink(struct store *s, enum store_table t, struct store_entry *e)
{
	if (t == STORE_TASK) {
		store_hash_del(&s->task_hash, e);
		s->tasks_gen++;
	}
	if (t == STORE_NODE)
		store_hash_del(&s->node_hash, e);
	if (t != STORE_TASK || s->tasks_built)
		tree_remove(store_table_tree(s, t), &e->by_id);
	store_unlink_keys(s, t, e, STORE_KEYS_ALL);
}

/* Frees a string of an unpacked message (its default is not allocated). */
static void store_str_free(char *str)
{
	if (str && str != protobuf_c_empty_string)
		free(str);
}

/* The shared copy of status message msg (not empty), kept by s from now
 * on, or NULL when s shares STORE_MSGS_MAX others already or is out of
 * memory (the caller then makes a copy of its own). */
static char *store_msg_shared(struct store *s, const char *msg, size_t len)
{
	char *copy;

	for (size_t i = 0; i < s->msg_count; i++)
		if (strcmp(s->msgs[i], msg) == 0)
			return s->msgs[i];
	if (s->msg_count == STORE_MSGS_MAX || !(copy = malloc(len + 1)))
		return NULL;
	memcpy(copy, msg, len + 1);
	s->msgs[s->msg_count++] = copy;
	return copy;
}

/* Frees a status message of a stored task (not a shared one). */
static void store_msg_free(const struct store *s, char *str)
{
	if (!store_msg_is_shared(s, str))
		store_str_free(str);
}

/* Applies a checked placement (issue 18) in place on the task of entry e:
 * what store_do's UPDATE of a copy of the task with the placement's node
 * and a fresh status would leave, byte for byte, with the same event (its
 * old object a copy of the task as it was, for the callback) and the same
 * move in the node index. Keeps nothing of the placement. Returns 0 or
 * CS_ENOMEM before anything changed. */
static int store_do_placement(struct store *s, Cs__StoreAction *a, struct store_entry *e,
			      uint64_t index, uint64_t time_ms)
{
	const Cs__TaskPlacement *p = a->placement;
	Cs__Task *t = (Cs__Task *)e->obj;
	Cs__Task was = *t;
	Cs__TaskStatus was_status, *st = t->status;
	struct store_event ev = {
		.table = STORE_TASK, .change = STORE_UPDATED, .index = index};
	bool move = t->node_id != p->node_id;
	char *msg = (char *)protobuf_c_empty_string;
	size_t msg_len = p->message ? strlen(p->message) : 0;

	assert(e->version == t->version); /* what the check read */

	/* the message is the store's (the batch may live in an arena:
	 * store_apply): shared, else a copy */
	if (msg_len && !(msg = store_msg_shared(s, p->message, msg_len))) {
		if (!(msg = malloc(msg_len + 1)))
			return CS_ENOMEM;
		memcpy(msg, p->message, msg_len + 1);
	}
	if (move && store_group_reserve(s, p->node_id)) {
		store_msg_free(s, msg);
		return CS_ENOMEM;
	}
	if (!st) {
		st = malloc(sizeof *st);
		if (!st) {
			store_msg_free(s, msg);
			return CS_ENOMEM;
		}
		cs__task_status__init(st);
		st->message = st->container_id = (char *)protobuf_c_empty_string;
	} else {
		was_status = *st;
		was.status = &was_status;
	}
	if (move)
		store_group_unlink(s, e, t->node_id);
	t->node_id = p->node_id;
	/* a fresh status, as the full update's (unknown fields and all) */
	st->base.n_unknown_fields = 0;
	st->base.unknown_fields = NULL;
	st->state = p->state;
	st->timestamp_ms = p->timestamp_ms;
	st->exit_code = 0;
	st->container_id = (char *)protobuf_c_empty_string;
	st->message = msg;
	t->status = st;
	t->version = e->version = index;
	store_obj_stamp(&t->base, &was.base, time_ms);
	if (move)
		store_group_link(s, e);
	ev.old_obj = &was.base;
	ev.new_obj = &t->base;
	store_notify(s, &ev);
	if (was.status) {
		store_msg_free(s, was_status.message);
		store_str_free(was_status.container_id);
		for (unsigned i = 0; i < was_status.base.n_unknown_fields; i++)
			free(was_status.base.unknown_fields[i].data);
		free(was_status.base.unknown_fields);
	}
	return 0;
}

/* Applies a checked status report (issue 18) in place on the task of entry
 * e (NULL: none, then nothing) when the report moves it forward on the
 * node that reported it: what the dispatcher's full UPDATE of the task as
 * it is now would leave (the status's state, exit code, timestamp and
 * message; its container id and unknown fields kept; started_ms the first
 * time it is RUNNING or past), with the same event (its old object a copy
 * of the task as it was). Keeps nothing of the report. Returns 0, or
 * CS_ENOMEM before anything changed. */
static int store_do_status_report(struct store *s, const Cs__StoreAction *a,
				  struct store_entry *e, uint64_t index, uint64_t time_ms)
{
	const Cs__TaskStatusReport *r = a->status_report;
	struct store_event ev = {
		.table = STORE_TASK, .change = STORE_UPDATED, .index = index};
	Cs__Task *t, was;
	Cs__TaskStatus was_status;
	size_t msg_len = r->message ? strlen(r->message) : 0;
	char *msg = (char *)protobuf_c_empty_string;

	if (!e)
		return 0;
	t = (Cs__Task *)e->obj;
	if (t->node_id != r->node_id || !t->status || r->state <= t->status->state)
		return 0; /* stale: another node's task now, or no news */
	/* shared, else a copy (as a placement's message) */
	if (msg_len && !(msg = store_msg_shared(s, r->message, msg_len))) {
		if (!(msg = malloc(msg_len + 1)))
			return CS_ENOMEM;
		memcpy(msg, r->message, msg_len + 1);
	}
	was = *t;
	was_status = *t->status;
	was.status = &was_status;
	if (!t->started_ms && r->state >= CS__TASK_STATE__TASK_STATE_RUNNING)
		t->started_ms = r->timestamp_ms ? r->timestamp_ms : 1;
	t->status->state = r->state;
	t->status->exit_code = r->exit_code;
	t->status->timestamp_ms = r->timestamp_ms;
	t->status->message = msg;
	t->version = e->version = index;
	store_obj_stamp(&t->base, &was.base, time_ms);
	ev.old_obj = &was.base;
	ev.new_obj = &t->base;
	store_notify(s, &ev);
	store_msg_free(s, was_status.message);
	return 0;
}

/* Applies one checked action (found: the entry its check found); takes its
 * object. Returns 0 or CS_ENOMEM (on a create, or an update moving a task
 * to a node with no group yet, before anything changed). */
static int store_do(struct store *s, Cs__StoreAction *a, struct store_entry *found,
		    uint64_t index, uint64_t time_ms)
{
	enum store_table t = store_action_table(a);
	ProtobufCMessage *obj = store_action_obj(a);
	struct store_event ev = {.table = t, .index = index};
	struct store_entry *e = NULL;

	if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT)
		return store_do_placement(s, a, found, index, time_ms);
	if (a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT)
		return store_do_status_report(s, a, found, index, time_ms);
	if (t == STORE_CLUSTER) {
		ProtobufCMessage *old = s->cluster ? &s->cluster->base : NULL;
		store_action_steal(a);
		ev.change = a->kind == CS__STORE_ACTION__KIND__KIND_CREATE ? STORE_CREATED
			    : a->kind == CS__STORE_ACTION__KIND__KIND_UPDATE
				    ? STORE_UPDATED
				    : STORE_DELETED;
		store_obj_set_version(obj, index);
		s->cluster = ev.change == STORE_DELETED ? NULL : (Cs__Cluster *)obj;
		ev.old_obj = old;
		ev.new_obj = s->cluster ? &s->cluster->base : NULL;
		store_notify(s, &ev);
		if (old)
			protobuf_c_message_free_unpacked(old, NULL);
		if (ev.change == STORE_DELETED)
			protobuf_c_message_free_unpacked(obj, NULL);
		return 0;
	}
	if (a->kind != CS__STORE_ACTION__KIND__KIND_CREATE) {
		e = found;
		assert(e && e->id == store_obj_id(obj));
	}
	switch (a->kind) {
	case CS__STORE_ACTION__KIND__KIND_CREATE:
		if (t == STORE_TASK &&
		    (store_hash_reserve(&s->task_hash, s->task_hash.count + 1) ||
		     store_group_reserve(s, ((const Cs__Task *)obj)->node_id)))
			return CS_ENOMEM;
		if (t == STORE_NODE &&
		    store_hash_reserve(&s->node_hash, s->nodes.count + 1))
			return CS_ENOMEM;
		e = calloc(1, sizeof *e);
		if (!e)
			return CS_ENOMEM;
		store_action_steal(a);
		store_obj_set_version(obj, index);
		store_obj_stamp(obj, NULL, time_ms);
		e->obj = obj;
		e->id = store_obj_id(obj);
		e->version = index;
		store_link(s, t, e);
		ev.change = STORE_CREATED;
		ev.new_obj = obj;
		store_notify(s, &ev);
		return 0;
	case CS__STORE_ACTION__KIND__KIND_UPDATE: {
		ProtobufCMessage *old;
		unsigned moved;
		assert(e != NULL);
		old = e->obj;
		/* the id stays: only the other indexes move, and only those
		 * whose key changed (a placement moves a task in the node
		 * index alone: most of a large rollout's writes) */
		moved = store_moved_keys(t, old, obj);
		if ((moved & STORE_KEY_B) &&
		    store_group_reserve(s, ((const Cs__Task *)obj)->node_id))
			return CS_ENOMEM;
		store_action_steal(a);
		store_unlink_keys(s, t, e, moved);
		store_obj_set_version(obj, index);
		store_obj_stamp(obj, old, time_ms);
		e->obj = obj;
		e->version = index;
		store_link_keys(s, t, e, moved);
		ev.change = STORE_UPDATED;
		ev.old_obj = old;
		ev.new_obj = obj;
		store_notify(s, &ev);
		store_task_unshare(s, old);
		protobuf_c_message_free_unpacked(old, NULL);
		return 0;
	}
	default:
		assert(e != NULL);
		store_unlink(s, t, e);
		ev.change = STORE_DELETED;
		ev.old_obj = e->obj;
		store_notify(s, &ev);
		store_task_unshare(s, e->obj);
		protobuf_c_message_free_unpacked(e->obj, NULL);
		free(e);
		return 0;
	}
}

/* Whether m, or a message inside it, kept an unknown field numbered 0.
 * libprotobuf-c (1.4.1) takes a field-0 tag whose varint is overlong (0x80
 * 0x00) as an unknown field and packs it back as 0x00 0x00, which it then
 * refuses: an object holding one would make the store's own snapshot (and
 * every batch that writes it again) undecodable. Such bytes are refused as
 * corrupt. Found by tests/fuzz/fuzz_store. */
bool store_has_field0(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* a oneof's members share one pointer: only the set one's is
		 * a message of that member's type (walking each would walk one
		 * object once per member) */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *v =
				*(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t j = 0; j < n; j++)
				if (v[j] && store_has_field0(v[j]))
					return true;
		} else {
			const ProtobufCMessage *sub =
				*(const ProtobufCMessage *const *)(base + f->offset);
			if (sub && store_has_field0(sub))
				return true;
		}
	}
	return false;
}

/* The entry at task id's home slot in the hash (most often the task's own:
 * the hash is at most half full), or NULL: a guess to prefetch. */
static struct store_entry *store_task_guess(const struct store *s, uint64_t id)
{
	return s->task_hash.slots
		       ? s->task_hash.slots[store_hash_home(&s->task_hash, id)].p
		       : NULL;
}

/* Asks for what checking action i touches, in steps (see
 * STORE_CHECK_AHEAD): the action, its object, the task's hash slot, then
 * the entry there (its id and version: a placement's whole check, and a
 * task update's or delete's lookup and version). Each
 * step reads only what the step before asked for, so that a batch's
 * lookups overlap instead of waiting on cache misses in turn. */
static void store_prefetch_check(const struct store *s, const Cs__StoreBatch *b, size_t i)
{
	const Cs__StoreAction *a;
	struct store_entry *e;
	size_t n = b->n_actions;

	if (i + STORE_CHECK_AHEAD < n)
		STORE_PREFETCH(b->actions[i + STORE_CHECK_AHEAD]);
	if (i + STORE_CHECK_AHEAD * 3 / 4 < n &&
	    store_action_obj(b->actions[i + STORE_CHECK_AHEAD * 3 / 4]))
		STORE_PREFETCH(
			store_action_obj(b->actions[i + STORE_CHECK_AHEAD * 3 / 4]));
	if (!s->task_hash.slots)
		return;
	if (i + STORE_CHECK_AHEAD / 2 < n) {
		a = b->actions[i + STORE_CHECK_AHEAD / 2];
		if (a->object_case == CS__STORE_ACTION__OBJECT_TASK && a->task)
			STORE_PREFETCH(&s->task_hash.slots[store_hash_home(&s->task_hash,
									   a->task->id)]);
		else if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT &&
			 a->placement)
			STORE_PREFETCH(&s->task_hash.slots[store_hash_home(
				&s->task_hash, a->placement->task_id)]);
		else if (a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT &&
			 a->status_report)
			STORE_PREFETCH(&s->task_hash.slots[store_hash_home(
				&s->task_hash, a->status_report->task_id)]);
	}
	if (i + STORE_CHECK_AHEAD / 4 < n) {
		a = b->actions[i + STORE_CHECK_AHEAD / 4];
		if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT &&
		    a->placement &&
		    (e = store_task_guess(s, a->placement->task_id)) != NULL)
			STORE_PREFETCH(&e->id);
		else if (a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT &&
			 a->status_report &&
			 (e = store_task_guess(s, a->status_report->task_id)) != NULL)
			STORE_PREFETCH(&e->id);
		else if (a->object_case == CS__STORE_ACTION__OBJECT_TASK && a->task &&
			 a->kind != CS__STORE_ACTION__KIND__KIND_CREATE &&
			 (e = store_task_guess(s, a->task->id)) != NULL)
			STORE_PREFETCH(&e->id);
	}
}

/* Asks, for a placement some actions ahead, for what linking its task
 * into its node's group reads: the hash slot of the node id, the group
 * there (most often the node's own: the hash is at most half full), then
 * the lines of its array a search reads first. A guess that is wrong (a
 * probe further on, a group of blocks) costs a fetch. */
static void store_prefetch_group(const struct store *s, const Cs__StoreBatch *b, size_t i)
{
	const struct store_hash *h = &s->groups_by_node;
	const Cs__StoreAction *a;
	const struct store_group *g;
	size_t n = b->n_actions;

	if (!h->slots)
		return;
	if (i + STORE_PREFETCH_AHEAD / 2 < n) {
		a = b->actions[i + STORE_PREFETCH_AHEAD / 2];
		if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT && a->placement)
			STORE_PREFETCH(
				&h->slots[store_hash_home(h, a->placement->node_id)]);
	}
	if (i + STORE_PREFETCH_AHEAD / 4 < n) {
		a = b->actions[i + STORE_PREFETCH_AHEAD / 4];
		if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT &&
		    a->placement &&
		    (g = h->slots[store_hash_home(h, a->placement->node_id)].p) != NULL)
			STORE_PREFETCH(&g->count);
	}
	if (i + STORE_PREFETCH_AHEAD / 8 < n) {
		a = b->actions[i + STORE_PREFETCH_AHEAD / 8];
		if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT &&
		    a->placement &&
		    (g = h->slots[store_hash_home(h, a->placement->node_id)].p) != NULL &&
		    g->node_id == a->placement->node_id && !g->blocked && g->count > 0) {
			STORE_PREFETCH(&g->arr[g->count / 2]);
			STORE_PREFETCH(&g->arr[g->count / 4]);
			STORE_PREFETCH(&g->arr[g->count * 3 / 4]);
		}
	}
}

/* Asks for what applying action i touches first: its entry, then the
 * current object (every line of a task: a placement copies it whole), then
 * a task's status and its block in a large group (a placement takes it out
 * of the unassigned tasks' blocks). */
static void store_prefetch_do(const struct store *s, const Cs__StoreBatch *b,
			      struct store_entry *const *found, size_t i)
{
	struct store_entry *e;
	size_t n = b->n_actions;

	store_prefetch_group(s, b, i);

	/* the lines of fields, not of starts: an entry or object is only
	 * 16-aligned, so its first field and a later one may lie apart */
	if (i + STORE_PREFETCH_AHEAD < n) {
		STORE_PREFETCH(b->actions[i + STORE_PREFETCH_AHEAD]);
		if (found[i + STORE_PREFETCH_AHEAD]) {
			STORE_PREFETCH(&found[i + STORE_PREFETCH_AHEAD]->id);
			STORE_PREFETCH(&found[i + STORE_PREFETCH_AHEAD]->obj);
		}
	}
	if (i + STORE_PREFETCH_AHEAD / 2 < n &&
	    (e = found[i + STORE_PREFETCH_AHEAD / 2])) {
		const char *o = (const char *)e->obj;
		const Cs__StoreAction *a = b->actions[i + STORE_PREFETCH_AHEAD / 2];
		STORE_PREFETCH(o);
		/* a task's by its action (the object is not here yet); a
		 * status report copies the task whole too (the event's old) */
		if (a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT ||
		    a->object_case == CS__STORE_ACTION__OBJECT_STATUS_REPORT ||
		    a->object_case == CS__STORE_ACTION__OBJECT_TASK) {
			for (size_t off = 64; off < sizeof(Cs__Task); off += 64)
				STORE_PREFETCH(o + off);
			STORE_PREFETCH(o + sizeof(Cs__Task) - 1);
			STORE_PREFETCH(&e->blk);
		}
	}
	if (i + STORE_PREFETCH_AHEAD / 4 < n &&
	    (e = found[i + STORE_PREFETCH_AHEAD / 4]) &&
	    e->obj->descriptor == &cs__task__descriptor) {
		const Cs__Task *t = (const Cs__Task *)e->obj;
		STORE_PREFETCH(t->status);
		if (e->blk) /* the block a placement takes it out of */
			for (size_t off = 0; off < sizeof *e->blk; off += 64)
				STORE_PREFETCH((const char *)e->blk + off);
		STORE_PREFETCH(
			store_action_obj(b->actions[i + STORE_PREFETCH_AHEAD / 4]));
	}
}

/* A batch of placements alone (the scheduler's, most of the log in a
 * rollout) keeps nothing of its decoding (store_do_placement copies what it
 * needs): it decodes into an arena of a few chunks, where each action's
 * three allocations and frees (action, placement, message) cost a bump. */
struct store_arena {
	struct store_arena_chunk *head;
};
struct store_arena_chunk {
	struct store_arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};
enum { STORE_ARENA_CHUNK = 256 * 1024 };

static void *store_arena_alloc(void *data, size_t size)
{
	struct store_arena *a = data;
	struct store_arena_chunk *c = a->head;
	size_t align = sizeof(max_align_t), need = (size + align - 1) / align * align;
	void *p;

	if (need < size)
		return NULL;
	if (!c || c->cap - c->used < need) {
		size_t cap = need > STORE_ARENA_CHUNK ? need : STORE_ARENA_CHUNK;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	return p;
}

static void store_arena_free(void *data, void *p)
{
	(void)data;
	(void)p; /* all at once, in store_arena_release */
}

static void store_arena_release(struct store_arena *a)
{
	while (a->head) {
		struct store_arena_chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
}

/* Reads a varint at *p (below end); returns false past end or overlong. */
static bool store_wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t c = *(*p)++;
		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return true;
	}
	return false;
}

/* Skips the value of a field of wire type wt; false when it does not fit
 * or the type is not one protobuf-c keeps. */
static bool store_wire_skip(const uint8_t **p, const uint8_t *end, unsigned wt)
{
	uint64_t v;
	switch (wt) {
	case 0: return store_wire_varint(p, end, &v);
	case 1:
		if (end - *p < 8)
			return false;
		*p += 8;
		return true;
	case 5:
		if (end - *p < 4)
			return false;
		*p += 4;
		return true;
	case 2:
		if (!store_wire_varint(p, end, &v) || v > (uint64_t)(end - *p))
			return false;
		*p += v;
		return true;
	default: return false;
	}
}

/* A batch of placements and status reports alone (the scheduler's and the
 * dispatcher's, issue 18) decoded without protobuf-c: its descriptor walk,
 * an allocation per message and the field-0 sweep cost more than the rest
 * of the check. Only the forms the
 * store's own writers make are read (store_batch_placement,
 * store_batch_encode, the manager's time stamp), each field at most once;
 * for any other bytes the decoder declines and protobuf-c decodes them, so
 * that every verdict stays protobuf-c's. */
enum {
	STORE_WIRE_TIME = (90 << 3) | 0,
	STORE_WIRE_KIND = (1 << 3) | 0,
	STORE_WIRE_PLACEMENT = (480 << 3) | 2,
	STORE_WIRE_PL_FIRST = 480, /* task_id .. timestamp_ms: varints */
	STORE_WIRE_PL_MESSAGE = 485,
	STORE_WIRE_REPORT = (501 << 3) | 2,
	STORE_WIRE_SR_FIRST = 501, /* task_id .. timestamp_ms: varints */
	STORE_WIRE_SR_MESSAGE = 506,
};

/* Reads a varint as protobuf-c reads it alike: at most 10 bytes, no bit
 * past the 64th. */
static bool store_wire_varint_exact(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *q = *p;

	if (q < end && *q < 0x80) { /* one byte: most of them */
		*v = *q;
		*p = q + 1;
		return true;
	}
	if (!store_wire_varint(&q, end, v))
		return false;
	if (q - *p == STORE_VARINT_MAX && q[-1] > 1)
		return false;
	*p = q;
	return true;
}

/* Reads a tag or a length: a varint of at most 5 bytes and 32 bits, as
 * protobuf-c reads both. */
static bool store_wire_varint32(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *q = *p;

	if (q < end && *q < 0x80) { /* one byte: every tag here, most lengths */
		*v = *q;
		*p = q + 1;
		return true;
	}
	if (!store_wire_varint(&q, end, v) || q - *p > 5 || *v > UINT32_MAX)
		return false;
	*p = q;
	return true;
}

/* Reads a length-delimited field's length at *p and leaves *p at its bytes,
 * *body_end after them; false when they do not fit before end. */
static bool store_wire_len(const uint8_t **p, const uint8_t *end,
			   const uint8_t **body_end)
{
	uint64_t n;

	if (!store_wire_varint32(p, end, &n) || n > (uint64_t)(end - *p))
		return false;
	*body_end = *p + n;
	return true;
}

/* An int32 (or enum) varint's value as protobuf-c keeps it whole (a
 * negative one sign-extended); false for any other. */
static bool store_wire_i32(uint64_t v, int32_t *out)
{
	if (v > INT32_MAX && v >> 31 != UINT64_MAX >> 31)
		return false;
	*out = (int32_t)(uint32_t)v;
	return true;
}

/* Reads the next field's tag at *p into *tag: its number, if it is one of
 * first..last not seen before in *seen (then marked), else 0. */
static uint64_t store_wire_next_field(const uint8_t **p, const uint8_t *end,
				      uint64_t first, uint64_t last, unsigned *seen,
				      uint64_t *tag)
{
	uint64_t f;

	if (!store_wire_varint32(p, end, tag))
		return 0;
	f = *tag >> 3;
	if (f < first || f > last || (*seen & (1u << (f - first))))
		return 0;
	*seen |= 1u << (f - first);
	return f;
}

/* Decodes a status message's length-delimited field at *p (its tag read):
 * bytes 0x01..0x7f (ASCII without NUL: what protobuf-c gives as the same
 * C string), copied into alloc's memory, or *last when its bytes equal
 * last's (*last_len), into *out; *p past it. False for anything else (or
 * no memory). */
static bool store_wire_message(const uint8_t **p, const uint8_t *end, uint64_t tag,
			       ProtobufCAllocator *alloc, char **last, size_t *last_len,
			       char **out)
{
	const uint8_t *mend;
	size_t n;
	char *m;

	if ((tag & 7) != 2 || !store_wire_len(p, end, &mend))
		return false;
	n = (size_t)(mend - *p);
	for (size_t i = 0; i < n; i++)
		if ((*p)[i] == 0 || (*p)[i] > 0x7f)
			return false;
	if (*last && *last_len == n && memcmp(*last, *p, n) == 0) {
		m = *last;
	} else {
		if (!(m = alloc->alloc(alloc->allocator_data, n + 1)))
			return false;
		memcpy(m, *p, n);
		m[n] = 0;
		*last = m;
		*last_len = n;
	}
	*out = m;
	*p = mend;
	return true;
}

/* Decodes a TaskPlacement's bytes [p, end) into pl (initialised): fields
 * 480..485 each at most once at their wire types, state an int32 (a
 * negative one sign-extended), a message of bytes 0x01..0x7f (ASCII without NUL: what protobuf-c
 * gives as the same C string). The message is copied into alloc's memory,
 * or is *last when its bytes equal last's (*last_len). False for anything
 * else (or no memory). */
static bool store_wire_placement(const uint8_t *p, const uint8_t *end,
				 Cs__TaskPlacement *pl, ProtobufCAllocator *alloc,
				 char **last, size_t *last_len)
{
	unsigned seen = 0;

	while (p < end) {
		uint64_t tag, v, f;
		if (!(f = store_wire_next_field(&p, end, STORE_WIRE_PL_FIRST,
						STORE_WIRE_PL_MESSAGE, &seen, &tag)))
			return false;
		if (f == STORE_WIRE_PL_MESSAGE) {
			if (!store_wire_message(&p, end, tag, alloc, last, last_len,
						&pl->message))
				return false;
			continue;
		}
		if ((tag & 7) != 0 || !store_wire_varint_exact(&p, end, &v))
			return false;
		switch (f) {
		case 480: pl->task_id = v; break;
		case 481: pl->version = v; break;
		case 482: pl->node_id = v; break;
		case 483: {
			int32_t state;
			if (!store_wire_i32(v, &state))
				return false;
			pl->state = (Cs__TaskState)state;
			break;
		}
		default: pl->timestamp_ms = v; break;
		}
	}
	return true;
}

/* Decodes a TaskStatusReport's bytes [p, end) into r (initialised), as
 * store_wire_placement a placement's: fields 501..506 each at most once at
 * their wire types, state and exit code int32s (a negative one
 * sign-extended), a message of bytes 0x01..0x7f, in alloc's memory or
 * *last. False for anything else (or no memory). */
static bool store_wire_report(const uint8_t *p, const uint8_t *end,
			      Cs__TaskStatusReport *r, ProtobufCAllocator *alloc,
			      char **last, size_t *last_len)
{
	unsigned seen = 0;

	while (p < end) {
		uint64_t tag, v, f;
		if (!(f = store_wire_next_field(&p, end, STORE_WIRE_SR_FIRST,
						STORE_WIRE_SR_MESSAGE, &seen, &tag)))
			return false;
		if (f == STORE_WIRE_SR_MESSAGE) {
			if (!store_wire_message(&p, end, tag, alloc, last, last_len,
						&r->message))
				return false;
			continue;
		}
		if ((tag & 7) != 0 || !store_wire_varint_exact(&p, end, &v))
			return false;
		switch (f) {
		case 501: r->task_id = v; break;
		case 502: r->node_id = v; break;
		case 503:
		case 504:
			if (f == 503) {
				int32_t state;
				if (!store_wire_i32(v, &state))
					return false;
				r->state = (Cs__TaskState)state;
			} else if (!store_wire_i32(v, &r->exit_code)) {
				return false;
			}
			break;
		default: r->timestamp_ms = v; break;
		}
	}
	return true;
}

/* Decodes action bytes [p, end) into a and pl (initialised here): a kind
 * (0..2) at most once and one placement or one status report (its room
 * from alloc); false for anything else. */
static bool store_wire_action(const uint8_t *p, const uint8_t *end, Cs__StoreAction *a,
			      Cs__TaskPlacement *pl, ProtobufCAllocator *alloc,
			      char **last, size_t *last_len)
{
	bool kind = false;

	cs__store_action__init(a);
	cs__task_placement__init(pl);
	while (p < end) {
		uint64_t tag, v;
		const uint8_t *body_end = NULL;
		if (!store_wire_varint32(&p, end, &tag))
			return false;
		if (tag == STORE_WIRE_KIND && !kind) {
			if (!store_wire_varint_exact(&p, end, &v) ||
			    v > CS__STORE_ACTION__KIND__KIND_DELETE)
				return false;
			a->kind = (Cs__StoreAction__Kind)v;
			kind = true;
		} else if (tag == STORE_WIRE_PLACEMENT && !a->placement &&
			   !a->status_report) {
			if (!store_wire_len(&p, end, &body_end) ||
			    !store_wire_placement(p, body_end, pl, alloc, last, last_len))
				return false;
			a->object_case = CS__STORE_ACTION__OBJECT_PLACEMENT;
			a->placement = pl;
			p = body_end;
		} else if (tag == STORE_WIRE_REPORT && !a->placement &&
			   !a->status_report) {
			Cs__TaskStatusReport *r =
				alloc->alloc(alloc->allocator_data, sizeof *r);
			if (!r)
				return false;
			cs__task_status_report__init(r);
			if (!store_wire_len(&p, end, &body_end) ||
			    !store_wire_report(p, body_end, r, alloc, last, last_len))
				return false;
			a->object_case = CS__STORE_ACTION__OBJECT_STATUS_REPORT;
			a->status_report = r;
			p = body_end;
		} else {
			return false;
		}
	}
	return a->placement != NULL || a->status_report != NULL;
}

Cs__StoreBatch *store_batch_decode_placements(const uint8_t *buf, size_t len,
					      ProtobufCAllocator *alloc)
{
	const uint8_t *p = buf, *end = buf + len, *body_end = NULL;
	uint64_t v, fields[4] = {0, 0, 0, 0}; /* proposer, proposal, time */
	unsigned seen = 0;
	size_t n = 0, i = 0;
	Cs__StoreBatch *b;
	Cs__StoreAction *acts;
	Cs__TaskPlacement *pls;
	char *last = NULL;
	size_t last_len = 0;

	/* the batch's own fields, and its actions counted */
	while (p < end) {
		unsigned bit;
		if (!store_wire_varint32(&p, end, &v))
			return NULL;
		if (v == STORE_WIRE_ACTIONS) {
			if (!store_wire_len(&p, end, &body_end))
				return NULL;
			p = body_end;
			n++;
			continue;
		}
		bit = v == STORE_WIRE_PROPOSER	 ? 1u
		      : v == STORE_WIRE_PROPOSAL ? 2u
		      : v == STORE_WIRE_TIME	 ? 3u
						 : 0u;
		if (!bit || (seen & (1u << bit)) || !store_wire_varint_exact(&p, end, &v))
			return NULL;
		seen |= 1u << bit;
		fields[bit] = v;
	}
	if (n == 0 || n > SIZE_MAX / (sizeof *acts + sizeof *pls + sizeof *b->actions))
		return NULL;
	b = alloc->alloc(alloc->allocator_data, sizeof *b);
	acts = alloc->alloc(alloc->allocator_data, n * sizeof *acts);
	pls = alloc->alloc(alloc->allocator_data, n * sizeof *pls);
	if (!b || !acts || !pls)
		return NULL;
	cs__store_batch__init(b);
	b->proposer = fields[1];
	b->proposal_id = fields[2];
	b->time_ms = fields[3];
	b->actions = alloc->alloc(alloc->allocator_data, n * sizeof *b->actions);
	if (!b->actions)
		return NULL;
	/* the actions, in order (the other fields were read above) */
	for (p = buf; p < end;) {
		store_wire_varint32(&p, end, &v);
		if (v != STORE_WIRE_ACTIONS) {
			store_wire_varint_exact(&p, end, &v);
			continue;
		}
		store_wire_len(&p, end, &body_end);
		assert(i < n);
		if (!store_wire_action(p, body_end, &acts[i], &pls[i], alloc, &last,
				       &last_len))
			return NULL;
		b->actions[i] = &acts[i];
		i++;
		p = body_end;
	}
	assert(i == n);
	b->n_actions = n;
	return b;
}

/* ------------------------------------------------ tasks decoded by hand */

/* A batch of whole tasks (the orchestrator's creates: 100,000 of them in a
 * rollout, each decoded by every manager) decoded without protobuf-c's
 * descriptor walk: each task, its status and their strings in malloc's
 * memory as protobuf-c's unpack with the default allocator gives them (the
 * store keeps them, and frees them with protobuf_c_message_free_unpacked),
 * the batch and its actions in the arena. Only the forms the store's
 * writers make are read: Task fields 1-6, 8-11, 60, 90, 91 and TaskStatus
 * fields 1-5, each at most once at its wire type, int32s and enums in
 * range (a negative one sign-extended), strings of bytes 0x01..0x7f that
 * are not empty; a task with a spec, networks, ports or anything else is
 * declined (protobuf-c decodes the batch then). Issue 18. */
enum { STORE_WIRE_TASK = (4 << 3) | 2 };

/* A malloc'd C string of the bytes [p, end), or NULL when they are empty,
 * not ASCII or hold a NUL (the decoder declines), or no memory. */
static char *store_wire_str(const uint8_t *p, const uint8_t *end)
{
	size_t n = (size_t)(end - p);
	char *m;

	if (n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (p[i] == 0 || p[i] > 0x7f)
			return NULL;
	if (!(m = malloc(n + 1)))
		return NULL;
	memcpy(m, p, n);
	m[n] = 0;
	return m;
}

/* Reads an int32 (or enum) varint as protobuf-c does for the values it
 * keeps whole; false for any other. */
static bool store_wire_int32(const uint8_t **p, const uint8_t *end, int32_t *out)
{
	uint64_t v;

	return store_wire_varint_exact(p, end, &v) && store_wire_i32(v, out);
}

/* Decodes a TaskStatus's bytes [p, end) into st (initialised); on false
 * st may hold strings already (the caller frees it whole). */
static bool store_wire_status(const uint8_t *p, const uint8_t *end, Cs__TaskStatus *st)
{
	unsigned seen = 0;

	while (p < end) {
		uint64_t tag, f, v;
		int32_t i32;
		if (!store_wire_varint32(&p, end, &tag))
			return false;
		f = tag >> 3;
		if (f < 1 || f > 5 || (seen & (1u << f)))
			return false;
		seen |= 1u << f;
		if (f == 3 || f == 5) {
			const uint8_t *mend;
			char *m;
			if ((tag & 7) != 2 || !store_wire_len(&p, end, &mend) ||
			    !(m = store_wire_str(p, mend)))
				return false;
			if (f == 3)
				st->message = m;
			else
				st->container_id = m;
			p = mend;
			continue;
		}
		if ((tag & 7) != 0)
			return false;
		if (f == 2) {
			if (!store_wire_varint_exact(&p, end, &v))
				return false;
			st->timestamp_ms = v;
		} else {
			if (!store_wire_int32(&p, end, &i32))
				return false;
			if (f == 1)
				st->state = (Cs__TaskState)i32;
			else
				st->exit_code = i32;
		}
	}
	return true;
}

/* Decodes a Task's bytes [p, end) into a new task (malloc'd, freed with
 * protobuf_c_message_free_unpacked(&t->base, NULL)), or NULL when it
 * declines or is out of memory. */
static Cs__Task *store_wire_task(const uint8_t *p, const uint8_t *end)
{
	Cs__Task *t = malloc(sizeof *t);
	uint32_t seen = 0;

	if (!t)
		return NULL;
	cs__task__init(t);
	while (p < end) {
		uint64_t tag, f, v;
		unsigned bit;
		int32_t i32;
		if (!store_wire_varint32(&p, end, &tag))
			goto decline;
		f = tag >> 3;
		bit = f >= 1 && f <= 11 && f != 7 ? (unsigned)f
		      : f == 60			  ? 12u
		      : f == 90			  ? 13u
		      : f == 91			  ? 14u
						  : 0u;
		if (!bit || (seen & (1u << bit)))
			goto decline;
		seen |= 1u << bit;
		if (f == 6 || f == 10) {
			const uint8_t *mend;
			if ((tag & 7) != 2 || !store_wire_len(&p, end, &mend))
				goto decline;
			if (f == 10) {
				if (!(t->service_name = store_wire_str(p, mend))) {
					t->service_name = (char *)protobuf_c_empty_string;
					goto decline;
				}
			} else {
				if (!(t->status = malloc(sizeof *t->status)))
					goto decline;
				cs__task_status__init(t->status);
				if (!store_wire_status(p, mend, t->status))
					goto decline;
			}
			p = mend;
			continue;
		}
		if ((tag & 7) != 0)
			goto decline;
		if (f == 5) {
			if (!store_wire_int32(&p, end, &i32))
				goto decline;
			t->desired_state = (Cs__TaskState)i32;
			continue;
		}
		if (!store_wire_varint_exact(&p, end, &v))
			goto decline;
		switch (f) {
		case 1: t->id = v; break;
		case 2: t->service_id = v; break;
		case 3: t->slot = v; break;
		case 4: t->node_id = v; break;
		case 8: t->spec_version = v; break;
		case 9: t->version = v; break;
		case 11: t->started_ms = v; break;
		case 60: t->job_iteration = v; break;
		case 90: t->created_ms = v; break;
		default: t->updated_ms = v; break;
		}
	}
	return t;
decline:
	protobuf_c_message_free_unpacked(&t->base, NULL);
	return NULL;
}

/* Frees the tasks b's actions still hold (a batch of store_batch_decode_tasks
 * whose arena is about to go: what store_do took it set to NULL). */
static void store_wire_tasks_free(Cs__StoreBatch *b)
{
	for (size_t i = 0; i < b->n_actions; i++)
		if (b->actions[i] && b->actions[i]->task) {
			protobuf_c_message_free_unpacked(&b->actions[i]->task->base,
							 NULL);
			b->actions[i]->task = NULL;
		}
}

Cs__StoreBatch *store_batch_decode_tasks(const uint8_t *buf, size_t len,
					 ProtobufCAllocator *alloc)
{
	const uint8_t *p = buf, *end = buf + len, *body_end = NULL;
	uint64_t v, fields[4] = {0, 0, 0, 0}; /* proposer, proposal, time */
	unsigned seen = 0;
	size_t n = 0, i = 0;
	Cs__StoreBatch *b;
	Cs__StoreAction *acts;

	/* the batch's own fields, and its actions counted */
	while (p < end) {
		unsigned bit;
		if (!store_wire_varint32(&p, end, &v))
			return NULL;
		if (v == STORE_WIRE_ACTIONS) {
			if (!store_wire_len(&p, end, &body_end))
				return NULL;
			p = body_end;
			n++;
			continue;
		}
		bit = v == STORE_WIRE_PROPOSER	 ? 1u
		      : v == STORE_WIRE_PROPOSAL ? 2u
		      : v == STORE_WIRE_TIME	 ? 3u
						 : 0u;
		if (!bit || (seen & (1u << bit)) || !store_wire_varint_exact(&p, end, &v))
			return NULL;
		seen |= 1u << bit;
		fields[bit] = v;
	}
	if (n == 0 || n > SIZE_MAX / (sizeof *acts + sizeof *b->actions))
		return NULL;
	b = alloc->alloc(alloc->allocator_data, sizeof *b);
	acts = alloc->alloc(alloc->allocator_data, n * sizeof *acts);
	if (!b || !acts)
		return NULL;
	cs__store_batch__init(b);
	b->proposer = fields[1];
	b->proposal_id = fields[2];
	b->time_ms = fields[3];
	b->actions = alloc->alloc(alloc->allocator_data, n * sizeof *b->actions);
	if (!b->actions)
		return NULL;
	/* the actions, in order: a kind (0..2) at most once and one task */
	for (p = buf; p < end;) {
		const uint8_t *q;
		bool kind = false;
		Cs__StoreAction *a;
		store_wire_varint32(&p, end, &v);
		if (v != STORE_WIRE_ACTIONS) {
			store_wire_varint_exact(&p, end, &v);
			continue;
		}
		store_wire_len(&p, end, &body_end);
		assert(i < n);
		a = &acts[i];
		cs__store_action__init(a);
		b->actions[i] = a;
		b->n_actions = ++i; /* what store_wire_tasks_free looks at */
		for (q = p; q < body_end;) {
			uint64_t tag;
			const uint8_t *tend;
			if (!store_wire_varint32(&q, body_end, &tag))
				goto decline;
			if (tag == STORE_WIRE_KIND && !kind) {
				if (!store_wire_varint_exact(&q, body_end, &v) ||
				    v > CS__STORE_ACTION__KIND__KIND_DELETE)
					goto decline;
				a->kind = (Cs__StoreAction__Kind)v;
				kind = true;
			} else if (tag == STORE_WIRE_TASK && !a->task) {
				if (!store_wire_len(&q, body_end, &tend) ||
				    !(a->task = store_wire_task(q, tend)))
					goto decline;
				a->object_case = CS__STORE_ACTION__OBJECT_TASK;
				q = tend;
			} else {
				goto decline;
			}
		}
		if (!a->task)
			goto decline;
		p = body_end;
	}
	assert(i == n);
	return b;
decline:
	store_wire_tasks_free(b);
	return NULL;
}

/* Whether the encoded batch holds no whole object (only placements, or
 * nothing the store could keep): a scan of the bytes without decoding.
 * False for anything it cannot read (the decode then judges it). */
static bool store_wire_placements_only(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;

	while (p < end) {
		uint64_t tag, alen;
		const uint8_t *ap, *aend;
		if (!store_wire_varint(&p, end, &tag))
			return false;
		if (tag != STORE_WIRE_ACTIONS) {
			if (!store_wire_skip(&p, end, (unsigned)(tag & 7)))
				return false;
			continue;
		}
		if (!store_wire_varint(&p, end, &alen) || alen > (uint64_t)(end - p))
			return false;
		ap = p;
		aend = p + alen;
		p = aend;
		while (ap < aend) {
			uint64_t f;
			if (!store_wire_varint(&ap, aend, &tag))
				return false;
			f = tag >> 3;
			/* the kind (1), a placement (480) or a status
			 * report (501) only */
			if (f != 1 && f != 480 && f != 501)
				return false;
			if (!store_wire_skip(&ap, aend, (unsigned)(tag & 7)))
				return false;
		}
	}
	return true;
}

int store_apply(struct store *s, const uint8_t *buf, size_t len, uint64_t index,
		uint64_t *proposer, uint64_t *proposal_id)
{
	struct store_arena arena = {NULL};
	ProtobufCAllocator arena_alloc = {store_arena_alloc, store_arena_free, &arena};
	/* by hand: no unknown field, so no field 0 to look for */
	Cs__StoreBatch *b =
		len > 0 ? store_batch_decode_placements(buf, len, &arena_alloc) : NULL;
	bool by_hand = b != NULL, in_arena = by_hand, has_tasks = false;
	struct store_entry *small[64], **found = small;
	uint64_t small_keys[2 * 64], *keys = small_keys;
	bool corrupt = false;
	size_t n;
	int rv = 0;

	assert(index > s->applied);
	s->applied = index;
	if (!b && len > 0) {
		store_arena_release(&arena); /* what the decoder took, declining */
		b = store_batch_decode_tasks(buf, len, &arena_alloc);
		by_hand = in_arena = has_tasks = b != NULL;
	}
	if (!b) {
		store_arena_release(&arena); /* what the decoder took, declining */
		in_arena = len > 0 && store_wire_placements_only(buf, len);
		b = cs__store_batch__unpack(in_arena ? &arena_alloc : NULL, len, buf);
	}
	if (!b) {
		store_arena_release(&arena);
		return CS_ECORRUPT;
	}
	n = b->n_actions;
	/* One sweep over the actions (a batch of 10,000 does not stay in the
	 * cache between sweeps) finds field 0 anywhere (the batch's own
	 * fields: the actions are its one message field), the keys that must
	 * be distinct, and each action's check against the store while the
	 * batch passes; the verdict is as if each came in turn: field 0
	 * (CS_ECORRUPT), then the limit, a repeated object, the first check
	 * that fails. The checks read the store only. */
	for (unsigned u = 0; u < b->base.n_unknown_fields; u++)
		corrupt = corrupt || b->base.unknown_fields[u].tag == 0;
	if (n > LIMIT_STORE_BATCH_ACTIONS)
		rv = CS_ELIMIT;
	if (rv == 0 && n > 64 &&
	    (!(found = malloc(n * sizeof *found)) ||
	     !(keys = malloc(2 * n * sizeof *keys))))
		abort(); /* as below: out of memory, a manager cannot go on */
	for (size_t i = 0; i < n; i++) {
		const Cs__StoreAction *a = b->actions[i];
		store_prefetch_check(s, b, i);
		if (!by_hand && store_has_field0(&a->base))
			corrupt = true;
		if (corrupt)
			break;
		if (rv == CS_ELIMIT)
			continue;
		keys[2 * i] = store_action_table(a);
		keys[2 * i + 1] = store_action_names(a) ? store_action_id(a) : 0;
		if (rv == 0)
			rv = store_check(s, a, &found[i]);
	}
	if (corrupt) {
		rv = CS_ECORRUPT;
		goto out;
	}
	if (proposer)
		*proposer = b->proposer;
	if (proposal_id)
		*proposal_id = b->proposal_id;
	if (rv != CS_ELIMIT && store_keys_repeat(s, keys, n, index))
		rv = CS_EEXIST;
	for (size_t i = 0; rv == 0 && i < n; i++) {
		int err;
		store_prefetch_do(s, b, found, i);
		/* only a create can fail (memory), and then the store would be
		 * half-applied: a manager out of memory cannot go on. */
		err = store_do(s, b->actions[i], found[i], index, b->time_ms);
		if (err)
			abort();
	}
out:
	if (found != small)
		free(found);
	if (keys != small_keys)
		free(keys);
	if (has_tasks)
		store_wire_tasks_free(b); /* those no action took */
	if (in_arena)
		store_arena_release(&arena);
	else
		cs__store_batch__free_unpacked(b, NULL);
	return rv;
}

/* ---------------------------------------------------------------- snapshots */

int store_snapshot(const struct store *s, uint8_t **buf, size_t *len)
{
	Cs__StoreSnapshot snap = CS__STORE_SNAPSHOT__INIT;
	const ProtobufCMessage *m;
	size_t i;
	int rv = CS_ENOMEM;

	snap.format = STORE_SNAPSHOT_FORMAT;
	store_task_index(s);
	snap.n_nodes = s->nodes.count;
	snap.n_services = s->services.count;
	snap.n_tasks = s->tasks.count;
	snap.nodes = malloc((snap.n_nodes + 1) * sizeof *snap.nodes);
	snap.services = malloc((snap.n_services + 1) * sizeof *snap.services);
	snap.tasks = malloc((snap.n_tasks + 1) * sizeof *snap.tasks);
	snap.n_networks = s->networks.count;
	snap.networks = malloc((snap.n_networks + 1) * sizeof *snap.networks);
	snap.n_secrets = s->secrets.count;
	snap.secrets = malloc((snap.n_secrets + 1) * sizeof *snap.secrets);
	if (!snap.nodes || !snap.services || !snap.tasks || !snap.networks ||
	    !snap.secrets)
		goto out;
	for (i = 0, m = store_next_id(&s->nodes, NULL); m;
	     m = store_next_id(&s->nodes, m))
		snap.nodes[i++] = (Cs__Node *)m;
	for (i = 0, m = store_next_id(&s->services, NULL); m;
	     m = store_next_id(&s->services, m))
		snap.services[i++] = (Cs__Service *)m;
	for (i = 0, m = store_next_id(&s->tasks, NULL); m;
	     m = store_next_id(&s->tasks, m))
		snap.tasks[i++] = (Cs__Task *)m;
	for (i = 0, m = store_next_id(&s->networks, NULL); m;
	     m = store_next_id(&s->networks, m))
		snap.networks[i++] = (Cs__Network *)m;
	for (i = 0, m = store_next_id(&s->secrets, NULL); m;
	     m = store_next_id(&s->secrets, m))
		snap.secrets[i++] = (Cs__Secret *)m;
	snap.cluster = s->cluster;
	snap.applied = s->applied;
	*len = cs__store_snapshot__get_packed_size(&snap);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		goto out;
	cs__store_snapshot__pack(&snap, *buf);
	rv = 0;
out:
	free(snap.nodes);
	free(snap.services);
	free(snap.tasks);
	free(snap.networks);
	free(snap.secrets);
	return rv;
}

/* Moves the objects of one repeated snapshot field into tree t of table
 * tab; returns CS_ECORRUPT for a duplicate id or an unnamed service. */
static int store_restore_table(struct store *s, enum store_table tab,
			       ProtobufCMessage **objs, size_t count)
{
	if (tab == STORE_TASK && store_hash_reserve(&s->task_hash, count))
		return CS_ENOMEM;
	if (tab == STORE_NODE && store_hash_reserve(&s->node_hash, count))
		return CS_ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct store_entry *e = calloc(1, sizeof *e);
		if (!e)
			return CS_ENOMEM;
		e->obj = objs[i];
		e->id = store_obj_id(e->obj);
		e->version = store_obj_version(e->obj);
		if (tab == STORE_SERVICE) {
			const Cs__Service *svc = (const Cs__Service *)e->obj;
			if (!svc->spec || !svc->spec->name) {
				free(e);
				return CS_ECORRUPT;
			}
		}
		if (tab == STORE_NETWORK) {
			const Cs__Network *net = (const Cs__Network *)e->obj;
			if (!net->spec || !net->spec->name) {
				free(e);
				return CS_ECORRUPT;
			}
		}
		if (tab == STORE_SECRET && !((const Cs__Secret *)e->obj)->name) {
			free(e);
			return CS_ECORRUPT;
		}
		if (store_entry_find(s, tab, e->id)) {
			free(e);
			return CS_ECORRUPT;
		}
		if (tab == STORE_TASK &&
		    store_group_reserve(s, ((const Cs__Task *)e->obj)->node_id)) {
			free(e);
			return CS_ENOMEM;
		}
		objs[i] = NULL; /* the store owns it now */
		store_link(s, tab, e);
	}
	return 0;
}

int store_restore(struct store *s, const uint8_t *buf, size_t len, uint64_t index)
{
	Cs__StoreSnapshot *snap = cs__store_snapshot__unpack(NULL, len, buf);
	struct store *fresh;
	int rv;

	if (snap && store_has_field0(&snap->base)) {
		cs__store_snapshot__free_unpacked(snap, NULL);
		snap = NULL;
	}
	if (!snap)
		return CS_ECORRUPT;
	if (snap->format != STORE_SNAPSHOT_FORMAT) {
		cs__store_snapshot__free_unpacked(snap, NULL);
		return CS_EVERSION;
	}
	fresh = store_new();
	if (!fresh) {
		cs__store_snapshot__free_unpacked(snap, NULL);
		return CS_ENOMEM;
	}
	rv = store_restore_table(fresh, STORE_NODE, (ProtobufCMessage **)snap->nodes,
				 snap->n_nodes);
	if (rv == 0)
		rv = store_restore_table(fresh, STORE_SERVICE,
					 (ProtobufCMessage **)snap->services,
					 snap->n_services);
	if (rv == 0)
		rv = store_restore_table(fresh, STORE_TASK,
					 (ProtobufCMessage **)snap->tasks, snap->n_tasks);
	if (rv == 0)
		rv = store_restore_table(fresh, STORE_NETWORK,
					 (ProtobufCMessage **)snap->networks,
					 snap->n_networks);
	if (rv == 0)
		rv = store_restore_table(fresh, STORE_SECRET,
					 (ProtobufCMessage **)snap->secrets,
					 snap->n_secrets);
	if (rv == 0) {
		fresh->cluster = snap->cluster;
		snap->cluster = NULL;
		if (index == 0)
			index = snap->applied;
	}
	/* objects moved into fresh are NULL in snap: free_unpacked skips them */
	cs__store_snapshot__free_unpacked(snap, NULL);
	if (rv) {
		store_free(fresh);
		return rv;
	}
	/* swap the content, keep the watches */
	store_clear(s);
	s->nodes = fresh->nodes;
	s->services = fresh->services;
	s->service_names = fresh->service_names;
	s->tasks = fresh->tasks;
	s->tasks_built = fresh->tasks_built;
	s->tasks_by_service = fresh->tasks_by_service;
	s->node_groups = fresh->node_groups;
	s->groups_by_node = fresh->groups_by_node; /* store_clear freed s's */
	s->tasks_by_desired = fresh->tasks_by_desired;
	s->desired_built = fresh->desired_built;
	s->networks = fresh->networks;
	s->secrets = fresh->secrets;
	s->task_hash = fresh->task_hash; /* store_clear freed s's */
	s->node_hash = fresh->node_hash;
	s->cluster = fresh->cluster;
	s->applied = index;
	s->tasks_gen++;
	s->id_walk.last = NULL;
	/* the index may go back: the seen table's stamps would be taken for
	 * the pairs of a batch applied at one of them again */
	free(s->seen);
	s->seen = NULL;
	s->seen_cap = 0;
	free(fresh);
	svccount_rebuild(&s->counts, s);
	return 0;
}

/* ---------------------------------------------------------------- networks (issue 15) */

const Cs__Network *store_network_get(const struct store *s, uint64_t id)
{
	struct store_entry *e = store_find(&s->networks, id);
	return e ? (const Cs__Network *)e->obj : NULL;
}

const Cs__Network *store_network_next(const struct store *s, const Cs__Network *prev)
{
	return (const Cs__Network *)store_next_id(&s->networks,
						  prev ? &prev->base : NULL);
}

size_t store_network_count(const struct store *s)
{
	return s->networks.count;
}

const Cs__Network *store_network_by_name(const struct store *s, const char *name)
{
	for (const Cs__Network *n = store_network_next(s, NULL); n;
	     n = store_network_next(s, n))
		if (strcmp(n->spec->name, name) == 0)
			return n;
	return NULL;
}

int store_batch_network(struct store_batch *b, Cs__StoreAction__Kind kind,
			const Cs__Network *obj)
{
	return store_batch_add(b, kind, &obj->base);
}

/* ---------------------------------------------------------------- secrets and configs (issue 20) */

const Cs__Secret *store_secret_get(const struct store *s, uint64_t id)
{
	struct store_entry *e = store_find(&s->secrets, id);
	return e ? (const Cs__Secret *)e->obj : NULL;
}

const Cs__Secret *store_secret_next(const struct store *s, const Cs__Secret *prev)
{
	return (const Cs__Secret *)store_next_id(&s->secrets, prev ? &prev->base : NULL);
}

size_t store_secret_count(const struct store *s)
{
	return s->secrets.count;
}

const Cs__Secret *store_secret_by_name(const struct store *s, bool config,
				       const char *name)
{
	for (const Cs__Secret *x = store_secret_next(s, NULL); x;
	     x = store_secret_next(s, x))
		if (x->config == config && x->name && strcmp(x->name, name) == 0)
			return x;
	return NULL;
}

bool store_spec_uses_secret(const Cs__ServiceSpec *spec, const Cs__Secret *x)
{
	const Cs__ContainerSpec *cs = spec && spec->task ? spec->task->container : NULL;
	size_t n;
	Cs__SecretReference **refs;

	if (!cs)
		return false;
	n = x->config ? cs->n_configs : cs->n_secrets;
	refs = x->config ? cs->configs : cs->secrets;
	for (size_t i = 0; i < n; i++)
		if (refs[i]->secret_id == x->id)
			return true;
	return false;
}

size_t store_secret_users(const struct store *s, const Cs__Secret *x,
			  const Cs__Service **out, size_t out_max)
{
	size_t n = 0;
	for (const Cs__Service *svc = store_service_next(s, NULL); svc;
	     svc = store_service_next(s, svc)) {
		if (!store_spec_uses_secret(svc->spec, x))
			continue;
		if (n < out_max)
			out[n] = svc;
		n++;
	}
	return n;
}

int store_batch_secret(struct store_batch *b, Cs__StoreAction__Kind kind,
		       const Cs__Secret *obj)
{
	return store_batch_add(b, kind, &obj->base);
}
