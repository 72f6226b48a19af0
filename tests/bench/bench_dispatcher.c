/* bench_dispatcher: the dispatcher's load. One simulated manager (m1, a
 * node_program with a manager and its own agent) and 10,000 simulated
 * workers (w1..w10000, agents only) heartbeating for 10 simulated minutes.
 * Prints
 *   dispatcher-sim: N heartbeats/s (10000 agents, 600s virtual in Ws wall; M heartbeats)
 *   dispatcher-sim: B bytes/node in the manager (what it counts)
 * and fails (exit 1) if any node is ever marked anything but READY during
 * the window (no false down), or if not all nodes get ready.
 *
 * Heartbeats (exact): m1 runs node_program behind a tap — a copy of its env
 * whose `listen` puts a counter in front of the node's receive callback.
 * Every frame is one Cs__Wire with exactly one field set, so its first byte
 * is that field's tag: a frame from a worker starting with the tag of
 * Wire.heartbeat is one heartbeat received by the dispatcher. N is the
 * heartbeats received in the window divided by the window's wall time, which
 * is the whole simulation's time (10,001 nodes' timers, the network, the
 * manager), one core.
 *
 * Memory (the manager's own): the bench replaces malloc and friends with a
 * thin layer over glibc's that tags every block with its owner: the node
 * whose event is running (the world's trace callback names it before each
 * timer, message, peer notice or call runs), the simulated disks (the
 * sqlite VFS's write, truncate, sync, open and close calls are wrapped), the
 * world itself, or the bench. A block is charged the chunk glibc would give
 * it (16-byte rounding and its size word), to its owner until freed, so a
 * message a worker sends and m1 frees stays the worker's. B is the growth of
 * m1's live bytes from "m1 alone and ready" to "all 10,001 nodes ready",
 * divided by 10,000: the store's Node objects and indexes, the dispatcher's
 * sessions, Raft's in-memory log (entries since the last snapshot, bounded
 * by snapshot_every), m1's sqlite page cache, its messages in flight and its
 * share of the world's connection bits; not its simulated disk (reported
 * apart on stderr). The world's event queue, which only grows, is grown
 * before anything runs so that its growth is not charged to the node whose
 * event happens to fill it. The store's part alone is measured by restoring
 * the leader's snapshot into an empty store. Under sanitizers (which own
 * malloc) the tagging is off and memory figures are not measured. */
#include <inttypes.h>
#include <malloc.h>
#include <protobuf-c/protobuf-c.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/api.pb-c.h"
#include "core/manager.h"
#include "core/node.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/sanitize.h"
#include "sim/world.h"

enum {
	AGENTS = 10000,
	NODES = AGENTS + 1, /* m1 is a node too, with its own agent */
	WINDOW_S = 600,
	CHECK_EVERY_S = 10,
	READY_WITHIN_S = 600,
	QUEUE_RESERVE = 1 << 18, /* events; the run peaks under 65,536 */
};
#define SEC 1000000ull

/* ---------------------------------------------------------------- heap tags */

#if defined(CS_SANITIZED)
#define BENCH_HEAP_TAGS 0
#else
#define BENCH_HEAP_TAGS 1
#endif

/* Owners: node indexes 0..NODES-1, then these. */
enum { OWNER_WORLD = NODES, OWNER_BENCH, OWNER_DISK, OWNERS };

static uint32_t heap_owner = OWNER_BENCH;
static int64_t heap_live[OWNERS]; /* bytes, as glibc chunks */

static int64_t heap_total(void)
{
	int64_t t = 0;
	for (uint32_t i = 0; i < OWNERS; i++)
		t += heap_live[i];
	return t;
}

#if BENCH_HEAP_TAGS
extern void *__libc_malloc(size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

enum { HEAP_TAG_MAGIC = 0x7a6b5c4d };

struct heap_tag {
	void *base;  /* what glibc returned */
	size_t size; /* bytes asked for */
	uint32_t owner;
	uint32_t magic;
	uint64_t pad; /* keeps the block after the tag 16-byte aligned */
};
_Static_assert(sizeof(struct heap_tag) == 32, "heap_tag keeps 16-byte alignment");

/* The chunk glibc's malloc would use for n bytes on a 64-bit system. */
static int64_t heap_chunk(size_t n)
{
	return n + 8 <= 32 ? 32 : (int64_t)((n + 8 + 15) & ~(size_t)15);
}

static void *heap_alloc(size_t size, size_t align)
{
	size_t extra = sizeof(struct heap_tag) + (align > 16 ? align : 0);
	unsigned char *base, *user;
	struct heap_tag *t;

	if (size > SIZE_MAX - extra)
		return NULL;
	base = __libc_malloc(size + extra);
	if (!base)
		return NULL;
	user = base + sizeof(struct heap_tag);
	if (align > 16)
		user = (unsigned char *)(((uintptr_t)user + align - 1) &
					 ~(uintptr_t)(align - 1));
	t = (struct heap_tag *)(void *)user - 1;
	t->base = base;
	t->size = size;
	t->owner = heap_owner;
	t->magic = HEAP_TAG_MAGIC;
	heap_live[t->owner] += heap_chunk(size);
	return user;
}

static struct heap_tag *heap_tag_of(void *ptr)
{
	struct heap_tag *t = (struct heap_tag *)ptr - 1;
	if (t->magic != HEAP_TAG_MAGIC)
		abort(); /* not ours: never expected */
	return t;
}

void *malloc(size_t size)
{
	return heap_alloc(size, 16);
}

void free(void *ptr)
{
	struct heap_tag *t;
	if (!ptr)
		return;
	t = heap_tag_of(ptr);
	heap_live[t->owner] -= heap_chunk(t->size);
	t->magic = 0;
	__libc_free(t->base);
}

void *calloc(size_t nmemb, size_t size)
{
	size_t n;
	void *p;
	if (__builtin_mul_overflow(nmemb, size, &n))
		return NULL;
	p = heap_alloc(n, 16);
	if (p)
		memset(p, 0, n);
	return p;
}

void *realloc(void *ptr, size_t size)
{
	struct heap_tag *t, *nt;
	size_t old;
	uint32_t owner;

	if (!ptr)
		return heap_alloc(size, 16);
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	t = heap_tag_of(ptr);
	old = t->size;
	owner = t->owner;
	if (t->base != (void *)t) { /* over-aligned: move it */
		void *p = heap_alloc(size, 16);
		if (p) {
			memcpy(p, ptr, old < size ? old : size);
			free(ptr);
		}
		return p;
	}
	if (size > SIZE_MAX - sizeof *t)
		return NULL;
	nt = __libc_realloc(t, size + sizeof *t);
	if (!nt)
		return NULL;
	heap_live[owner] -= heap_chunk(old);
	nt->base = nt;
	nt->size = size;
	nt->owner = heap_owner; /* whoever grew it */
	heap_live[nt->owner] += heap_chunk(size);
	return nt + 1;
}

void *reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n))
		return NULL;
	return realloc(ptr, n);
}

int posix_memalign(void **memptr, size_t alignment, size_t size)
{
	void *p;
	if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
		return 22; /* EINVAL */
	p = heap_alloc(size, alignment);
	if (!p)
		return 12; /* ENOMEM */
	*memptr = p;
	return 0;
}

void *aligned_alloc(size_t alignment, size_t size)
{
	return alignment & (alignment - 1) ? NULL : heap_alloc(size, alignment);
}

void *memalign(size_t alignment, size_t size)
{
	return alignment & (alignment - 1) ? NULL : heap_alloc(size, alignment);
}

void *valloc(size_t size)
{
	return heap_alloc(size, 4096);
}

void *pvalloc(size_t size)
{
	return heap_alloc((size + 4095) & ~(size_t)4095, 4096);
}

size_t malloc_usable_size(void *ptr)
{
	return ptr ? heap_tag_of(ptr)->size : 0;
}

/* ---------------------------------------------------------------- disk calls
 *
 * What the simulated disks allocate (file images, synced copies) is the
 * disks', not the node's: the VFS calls that allocate run as OWNER_DISK. */

static int (*vfs_open_orig)(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
			    int flags, int *out_flags);
static const sqlite3_io_methods *disk_orig;
static sqlite3_io_methods disk_methods;

#define AS_DISK(expr)                        \
	do {                                 \
		uint32_t prev_ = heap_owner; \
		heap_owner = OWNER_DISK;     \
		rc = (expr);                 \
		heap_owner = prev_;          \
	} while (0)

static int disk_close(sqlite3_file *f)
{
	int rc;
	AS_DISK(disk_orig->xClose(f));
	return rc;
}

static int disk_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	int rc;
	AS_DISK(disk_orig->xWrite(f, buf, n, off));
	return rc;
}

static int disk_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc;
	AS_DISK(disk_orig->xTruncate(f, size));
	return rc;
}

static int disk_sync(sqlite3_file *f, int flags)
{
	int rc;
	AS_DISK(disk_orig->xSync(f, flags));
	return rc;
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
		    int *out_flags)
{
	int rc;
	AS_DISK(vfs_open_orig(vfs, name, f, flags, out_flags));
	if (rc != SQLITE_OK || !f->pMethods)
		return rc;
	if (!disk_orig) {
		disk_orig = f->pMethods;
		disk_methods = *disk_orig;
		disk_methods.xClose = disk_close;
		disk_methods.xWrite = disk_write;
		disk_methods.xTruncate = disk_truncate;
		disk_methods.xSync = disk_sync;
	}
	if (f->pMethods == disk_orig)
		f->pMethods = &disk_methods;
	return rc;
}

/* Wraps sqlite's default VFS (the world's simulated disks, once world_new
 * has registered them). */
static int disk_wrap(void)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
	if (!vfs)
		return -1;
	vfs_open_orig = vfs->xOpen;
	vfs->xOpen = vfs_open;
	return 0;
}
#else
static int disk_wrap(void)
{
	return 0;
}
#endif

/* Every event a node runs is charged to that node (the trace callback runs
 * just before the event's handler); traced-only events (sends, drops,
 * faults) happen inside another event and change nothing. */
static void on_trace(void *ctx, const struct world *w, us_t at_us, uint32_t node,
		     enum sim_ev_kind kind, uint64_t a, uint64_t b)
{
	switch (kind) {
	case SIM_EV_TIMER:
	case SIM_EV_MSG:
	case SIM_EV_PEER:
	case SIM_EV_CALL:
	case SIM_EV_NODE_UP:
	case SIM_EV_NODE_DOWN: heap_owner = node < NODES ? node : OWNER_WORLD; break;
	default: break;
	}
}

/* ---------------------------------------------------------------- the tap */

struct tap {
	struct env proxy; /* what m1's node program runs on */
	struct env_ops ops;
	struct env *real;
	env_recv_cb recv;
	uint8_t heartbeat_tag; /* first byte of a Wire holding a Heartbeat */
	bool on;
	uint64_t heartbeats; /* from workers, while on */
	uint64_t others;     /* other frames from workers, while on */
};

static struct tap tap; /* m1 is started once */

static void tap_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		     void *data)
{
	if (tap.on && strcmp(from, "m1") != 0) {
		if (len > 0 && buf[0] == tap.heartbeat_tag)
			tap.heartbeats++;
		else
			tap.others++;
	}
	tap.recv(&tap.proxy, from, buf, len, data);
}

static int tap_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		      void *data)
{
	tap.recv = recv_cb;
	return tap.real->ops->listen(tap.real, recv_cb ? tap_recv : NULL, peer_cb, data);
}

static int tap_start(const void *cfg, struct env *env, void **state)
{
	tap.real = env;
	tap.ops = *env->ops;
	tap.ops.listen = tap_listen;
	tap.proxy.ops = &tap.ops;
	tap.proxy.impl = env->impl;
	return node_program.start(cfg, &tap.proxy, state);
}

static void tap_stop(void *state)
{
	node_program.stop(state);
}

static const struct env_program_ops tap_program = {tap_start, tap_stop};

static int tap_init(void)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(&cs__wire__descriptor,
								"heartbeat");
	/* a one-byte tag: field number below 16, length-delimited */
	if (!f || f->id >= 16 || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return -1;
	tap.heartbeat_tag = (uint8_t)((f->id << 3) | 2);
	return 0;
}

/* ---------------------------------------------------------------- checks */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct store *leader_store(struct simcluster *c)
{
	int64_t l = simcluster_leader(c);
	struct manager *m = l < 0 ? NULL : simcluster_manager(c, (uint32_t)l);
	return m ? manager_store(m) : NULL;
}

/* Node objects in state READY in the leader's store (0: no leader). */
static size_t ready_nodes(struct simcluster *c)
{
	const struct store *st = leader_store(c);
	size_t n = 0;
	if (!st)
		return 0;
	for (const Cs__Node *node = store_node_next(st, NULL); node;
	     node = store_node_next(st, node))
		n += node->state == CS__NODE_STATE__NODE_STATE_READY;
	return n;
}

/* The version of every Node object, in store order: the same list at both
 * ends of the window means no node changed in between (not even a down and
 * back). */
static size_t node_versions(struct simcluster *c, uint64_t (*v)[2], size_t max)
{
	const struct store *st = leader_store(c);
	size_t n = 0;
	if (!st)
		return 0;
	for (const Cs__Node *node = store_node_next(st, NULL); node && n < max;
	     node = store_node_next(st, node), n++) {
		v[n][0] = node->id;
		v[n][1] = node->version;
	}
	return n;
}

static void noop_call(struct world *w, void *data)
{
}

static void run_until(struct world *w, us_t until)
{
	while (world_step(w, until))
		;
	heap_owner = OWNER_BENCH;
}

int main(void)
{
	static uint64_t before[NODES][2], after[NODES][2];
	struct world *w = world_new(1);
	struct simcluster *c = w ? simcluster_new(w, NULL) : NULL;
	const struct node_cfg *m1cfg;
	size_t ready = 0, nv;
	int64_t m1_0, m1_1, m1_2, disk_0, disk_1, all_0, all_1, store_bytes = -1;
	double setup0, t0, t1;
	uint32_t m1;
	ms_t period;
	us_t end;

	if (!c || disk_wrap() || tap_init()) {
		fprintf(stderr, "bench_dispatcher: setup failed\n");
		return 1;
	}
	world_set_trace(w, on_trace, NULL);
	/* The world's event queue never shrinks. Grown now, the bench's, its
	 * growth is not charged to whichever node's event pushes the event
	 * that fills it (the manager's, most likely). */
	for (uint32_t i = 0; i < QUEUE_RESERVE; i++)
		if (world_call_at(w, 0, UINT32_MAX, noop_call, NULL))
			return 1;
	run_until(w, 0);
	simcluster_node_programs(c, true);
	m1cfg = simcluster_node_cfg(c, "m1", 1, 1, 1, 4000, 8ull << 30);
	if (!m1cfg || world_node_add(w, "m1", &tap_program, m1cfg, &m1) ||
	    simcluster_track(c, m1, 1))
		return 1;
	heap_owner = m1;
	if (world_node_start(w, m1))
		return 1;
	period = m1cfg->manager->heartbeat_ms ? m1cfg->manager->heartbeat_ms : 5000;
	for (us_t until = SEC; ready_nodes(c) < 1; until += SEC) {
		run_until(w, until);
		if (world_now_us(w) > 60 * SEC) {
			fprintf(stderr, "bench_dispatcher: m1 never got ready\n");
			return 1;
		}
	}
	m1_0 = heap_live[m1];
	disk_0 = heap_live[OWNER_DISK];
	all_0 = heap_total();

	setup0 = now_s();
	for (uint32_t i = 1; i <= AGENTS; i++) {
		const struct node_cfg *cfg;
		char name[16];
		uint32_t idx;
		snprintf(name, sizeof name, "w%" PRIu32, i);
		cfg = simcluster_node_cfg(c, name, 0, 0, 1, 4000, 8ull << 30);
		if (!cfg || world_node_add(w, name, &node_program, cfg, &idx) ||
		    simcluster_track(c, idx, 0))
			return 1;
		heap_owner = idx;
		if (world_node_start(w, idx))
			return 1;
		heap_owner = OWNER_BENCH;
	}
	/* until every node is ready, looking once a virtual second */
	for (us_t until = world_now_us(w) + SEC; (ready = ready_nodes(c)) < NODES;
	     until += SEC) {
		run_until(w, until);
		if (world_now_us(w) > READY_WITHIN_S * SEC) {
			fprintf(stderr,
				"bench_dispatcher: only %zu of %d nodes ready after %.0f s\n",
				ready, NODES, (double)world_now_us(w) / 1e6);
			return 1;
		}
	}
	m1_1 = heap_live[m1];
	disk_1 = heap_live[OWNER_DISK];
	all_1 = heap_total();
	fprintf(stderr,
		"bench_dispatcher: %d nodes ready at %.1f s virtual (%.2f s wall to get there)\n",
		NODES, (double)world_now_us(w) / 1e6, now_s() - setup0);

	/* the window */
	nv = node_versions(c, before, NODES);
	tap.on = true;
	t0 = now_s();
	end = world_now_us(w) + WINDOW_S * SEC;
	for (us_t until = world_now_us(w) + CHECK_EVERY_S * SEC; until <= end;
	     until += CHECK_EVERY_S * SEC) {
		run_until(w, until);
		if ((ready = ready_nodes(c)) != NODES) {
			fprintf(stderr,
				"bench_dispatcher: FAIL: %zu of %d nodes ready at %.0f s virtual\n",
				ready, NODES, (double)world_now_us(w) / 1e6);
			return 1;
		}
	}
	t1 = now_s();
	tap.on = false;
	if (nv != NODES || node_versions(c, after, NODES) != nv ||
	    memcmp(before, after, sizeof before) != 0) {
		fprintf(stderr,
			"bench_dispatcher: FAIL: a Node object changed during the "
			"window (a node was marked down and back)\n");
		return 1;
	}
	m1_2 = heap_live[m1];

	/* the store's part: the leader's snapshot restored into an empty store */
	{
		const struct store *st = leader_store(c);
		struct store *copy = store_new();
		uint8_t *buf;
		size_t len;
		int64_t b0;
		if (!st || !copy || store_snapshot(st, &buf, &len))
			return 1;
		b0 = heap_live[OWNER_BENCH];
		if (store_restore(copy, buf, len, 0))
			return 1;
		if (BENCH_HEAP_TAGS)
			store_bytes = heap_live[OWNER_BENCH] - b0;
		free(buf);
		store_free(copy);
	}

	printf("dispatcher-sim: %.0f heartbeats/s (%d agents, %ds virtual in %.2fs wall; %" PRIu64
	       " heartbeats)\n",
	       (double)tap.heartbeats / (t1 - t0), AGENTS, WINDOW_S, t1 - t0,
	       tap.heartbeats);
	if (BENCH_HEAP_TAGS)
		printf("dispatcher-sim: %" PRId64
		       " bytes/node in the manager (m1's heap growth from 1 to %d nodes "
		       "ready, as glibc chunks: the store's Node objects and indexes "
		       "%" PRId64
		       ", then the dispatcher's sessions, Raft's in-memory log, "
		       "sqlite's page cache; not its simulated disk)\n",
		       (m1_1 - m1_0) / AGENTS, NODES, store_bytes / NODES);
	else
		printf("dispatcher-sim: memory not measured (sanitizer build)\n");
	fprintf(stderr,
		"bench_dispatcher: expected about %" PRIu64
		" heartbeats (%d agents, one per %" PRIu64 " ms); %" PRIu64
		" other frames from workers in the window; every node READY and "
		"unchanged throughout\n",
		(uint64_t)AGENTS * WINDOW_S * 1000 / period, AGENTS, (uint64_t)period,
		tap.others);
	if (BENCH_HEAP_TAGS)
		fprintf(stderr,
			"bench_dispatcher: per node: m1 after the window %" PRId64
			", m1's and the workers' simulated disks %" PRId64
			", whole world (every node, disks, world) %" PRId64 " bytes\n",
			(m1_2 - m1_0) / AGENTS, (disk_1 - disk_0) / AGENTS,
			(all_1 - all_0) / AGENTS);
	world_free(w);
	simcluster_free(c);
	return 0;
}
