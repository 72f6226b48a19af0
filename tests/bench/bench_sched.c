/* bench_sched: the scheduler alone, in one process. For 100,000 tasks on
 * 1,000 nodes and 1,000,000 tasks on 10,000 nodes, builds a store (untimed)
 * of ready nodes (zones, some with an ssd label, three managers, 1% drained)
 * and pending tasks of 100 services: one global (a task pinned to every
 * node), the rest replicated, in four kinds: plain, constrained to
 * node.labels.disk==ssd, spread over zone, and node.role==worker with spread
 * over zone. Then places every task with one plan (sched_new, then
 * sched_step per group, a new batch every LIMIT_SCHED_TASKS_PER_RUN writes)
 * and prints, per size:
 *
 *   scheduler: T tasks on N nodes: R placements/s, p99 D us
 *
 * R: tasks placed / (time to read the store + time of every step), one
 * core. p99: the 99th percentile over groups of one group's latency (all of
 * its steps: its decision tree, its placements, their copies into batches).
 * A breakdown goes to stderr. Batches are freed untimed and never applied
 * (the plan needs the store unchanged); every placement is checked to be
 * counted and each replicated service spread within one task per eligible
 * node of its branch.
 *
 * --loop: the scheduler-loop lines alone (below); --loop NODES TASKS: one
 * size of it, with the store's build time and the loop's CPU time on
 * stderr (a profile of that size alone: perf record -g ... --loop 10000
 * 1000000). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/limits.h"
#include "core/scheduler.h"
#include "core/store.h"

enum { BENCH_BATCH = 1000, BENCH_SERVICES = 100, BENCH_ZONES = 8 };

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's CPU time: on a shared machine, less of the others' load
 * than the wall clock (though not their share of the caches). */
static double bench_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ids as the leader draws them: random-looking 64-bit numbers. */
static uint64_t node_id(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull;
}

static uint64_t task_id(uint64_t i)
{
	return (i + 1) * 0xbf58476d1ce4e5b9ull;
}

struct bench_store {
	struct store *s;
	struct store_batch b;
	uint64_t index;
};

static void bench_flush(struct bench_store *bs)
{
	uint8_t *buf;
	size_t len;
	if (bs->b.action_count == 0)
		return;
	if (store_batch_encode(&bs->b, 1, bs->index + 1, &buf, &len) ||
	    store_apply(bs->s, buf, len, ++bs->index, NULL, NULL)) {
		fprintf(stderr, "bench_sched: store build failed\n");
		exit(1);
	}
	free(buf);
	store_batch_free(&bs->b);
	store_batch_init(&bs->b);
}

static void bench_check(int rv)
{
	if (rv) {
		fprintf(stderr, "bench_sched: batch add failed (%d)\n", rv);
		exit(1);
	}
}

static void bench_maybe_flush(struct bench_store *bs)
{
	if (bs->b.action_count >= BENCH_BATCH)
		bench_flush(bs);
}

static void build_nodes(struct bench_store *bs, size_t nodes)
{
	static const char *zones[BENCH_ZONES] = {"z0", "z1", "z2", "z3",
						 "z4", "z5", "z6", "z7"};
	for (size_t i = 0; i < nodes; i++) {
		Cs__Node n = CS__NODE__INIT;
		Cs__Resources r = CS__RESOURCES__INIT;
		Cs__Label zone = CS__LABEL__INIT, disk = CS__LABEL__INIT;
		Cs__Label *labels[2] = {&zone, &disk};
		char host[32];

		snprintf(host, sizeof host, "node-%zu", i);
		n.id = node_id(i);
		n.hostname = host;
		n.role = i < 3 ? CS__NODE_ROLE__NODE_ROLE_MANAGER
			       : CS__NODE_ROLE__NODE_ROLE_WORKER;
		n.availability =
			i % 100 == 99 ? CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN
				      : CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
		n.state = CS__NODE_STATE__NODE_STATE_READY;
		r.millicpus = 64000;
		r.memory_bytes = 256ull << 30;
		n.resources = &r;
		zone.key = "zone";
		zone.value = (char *)zones[(i / 7) % BENCH_ZONES];
		disk.key = "disk";
		disk.value = i % 4 == 0 ? "ssd" : "hdd";
		n.labels = labels;
		n.n_labels = 2;
		bench_check(store_batch_node(&bs->b, CS__STORE_ACTION__KIND__KIND_CREATE,
					     &n));
		bench_maybe_flush(bs);
	}
	bench_flush(bs);
}

/* Service k (1..BENCH_SERVICES): 1 is global; the others by k % 4. */
static void build_services(struct bench_store *bs)
{
	for (uint64_t k = 1; k <= BENCH_SERVICES; k++) {
		Cs__Service svc = CS__SERVICE__INIT;
		Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
		Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
		Cs__Resources res = CS__RESOURCES__INIT;
		Cs__Placement pl = CS__PLACEMENT__INIT;
		char name[32];
		char *ssd[] = {"node.labels.disk==ssd"};
		char *worker[] = {"node.role==worker"};
		char *zone[] = {"zone"};

		snprintf(name, sizeof name, "svc-%" PRIu64, k);
		spec.name = name;
		spec.global = k == 1;
		res.millicpus = 10;
		res.memory_bytes = 64ull << 20;
		ts.reservations = &res;
		ts.placement = &pl;
		spec.task = &ts;
		if (k > 1 && k % 4 == 1) {
			pl.constraints = ssd;
			pl.n_constraints = 1;
		} else if (k > 1 && k % 4 == 2) {
			pl.spread_labels = zone;
			pl.n_spread_labels = 1;
		} else if (k > 1 && k % 4 == 3) {
			pl.constraints = worker;
			pl.n_constraints = 1;
			pl.spread_labels = zone;
			pl.n_spread_labels = 1;
		}
		svc.id = k;
		svc.spec = &spec;
		bench_check(store_batch_service(
			&bs->b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc));
	}
	bench_flush(bs);
}

/* A pending task pinned to every node (the global service), then the rest
 * of the tasks over the replicated services, round robin. */
static void build_tasks(struct bench_store *bs, size_t nodes, size_t tasks)
{
	for (size_t i = 0; i < tasks; i++) {
		Cs__Task t = CS__TASK__INIT;
		Cs__TaskStatus st = CS__TASK_STATUS__INIT;

		t.id = task_id(i);
		if (i < nodes) {
			t.service_id = 1;
			t.node_id = node_id(i);
			t.slot = 0;
		} else {
			t.service_id = 2 + (i - nodes) % (BENCH_SERVICES - 1);
			t.slot = 1 + (i - nodes) / (BENCH_SERVICES - 1);
		}
		t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
		st.state = CS__TASK_STATE__TASK_STATE_PENDING;
		st.timestamp_ms = 1;
		t.status = &st;
		t.spec_version = 1;
		bench_check(store_batch_task(&bs->b, CS__STORE_ACTION__KIND__KIND_CREATE,
					     &t));
		bench_maybe_flush(bs);
	}
	bench_flush(bs);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Counts, from a full batch, placements per (service, node rank). Node
 * ranks come from a sorted copy of the node ids. */
struct tally {
	uint64_t *ids; /* sorted node ids */
	size_t nodes;
	uint32_t *per; /* [service][rank] */
	size_t assigned;
	size_t other;
};

static size_t tally_rank(const struct tally *t, uint64_t id)
{
	size_t lo = 0, hi = t->nodes;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void tally_batch(struct tally *t, const struct store *s,
			const struct store_batch *b)
{
	Cs__StoreBatch *dec;

	if (store_batch_decode(b, &dec) || dec->n_actions != b->action_count) {
		fprintf(stderr, "bench_sched: batch does not decode\n");
		exit(1);
	}
	for (size_t i = 0; i < dec->n_actions; i++) {
		const Cs__StoreAction *a = dec->actions[i];
		const Cs__TaskPlacement *pl =
			a->object_case == CS__STORE_ACTION__OBJECT_PLACEMENT
				? a->placement
				: NULL;
		const Cs__Task *task = pl ? store_task_get(s, pl->task_id) : a->task;
		uint64_t node = pl ? pl->node_id : task->node_id;
		Cs__TaskState state = pl ? pl->state : task->status->state;
		/* a placement (issue 18) names its task: the service is the
		 * stored one's */
		if (!task || state != CS__TASK_STATE__TASK_STATE_ASSIGNED || !node) {
			t->other++;
			continue;
		}
		t->assigned++;
		t->per[task->service_id * t->nodes + tally_rank(t, node)]++;
	}
	cs__store_batch__free_unpacked(dec, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Plain services (k % 4 == 0) must be even over the active nodes: max -
 * min <= 1. Returns 0 when so. */
static int tally_check(const struct tally *t, size_t nodes)
{
	for (uint64_t k = 4; k <= BENCH_SERVICES; k += 4) {
		uint32_t lo = UINT32_MAX, hi = 0;
		for (size_t i = 0; i < nodes; i++) {
			uint32_t c;
			if (i % 100 == 99)
				continue; /* drained */
			c = t->per[k * t->nodes + tally_rank(t, node_id(i))];
			lo = c < lo ? c : lo;
			hi = c > hi ? c : hi;
		}
		if (hi - lo > 1) {
			fprintf(stderr,
				"bench_sched: service %" PRIu64 " spread %u..%u\n", k, lo,
				hi);
			return 1;
		}
	}
	return 0;
}

static int bench_size(size_t nodes, size_t tasks)
{
	struct bench_store bs = {.s = store_new()};
	struct sched *p;
	struct sched_stats st;
	struct store_batch out;
	struct tally tl = {.nodes = nodes};
	double *group_s = calloc(BENCH_SERVICES + 1, sizeof *group_s);
	double t0, t_read, t_steps = 0, t_group = 0, build0, write_bytes = 0;
	size_t groups = 0, drained = nodes / 100, expect;
	int rv;

	if (!bs.s || !group_s)
		return 1;
	build0 = bench_now();
	store_batch_init(&bs.b);
	build_nodes(&bs, nodes);
	build_services(&bs);
	build_tasks(&bs, nodes, tasks);
	fprintf(stderr, "bench_sched: built %zu tasks on %zu nodes in %.1f s\n", tasks,
		nodes, bench_now() - build0);

	tl.ids = malloc(nodes * sizeof *tl.ids);
	tl.per = calloc((BENCH_SERVICES + 1) * nodes, sizeof *tl.per);
	if (!tl.ids || !tl.per)
		return 1;
	for (size_t i = 0; i < nodes; i++)
		tl.ids[i] = node_id(i);
	qsort(tl.ids, nodes, sizeof *tl.ids, cmp_u64);

	t0 = bench_now();
	if (sched_new(bs.s, 1, &p))
		return 1;
	t_read = bench_now() - t0;
	store_batch_init(&out);
	out.placements = true; /* the leader's loop writes them */
	for (;;) {
		size_t room = LIMIT_SCHED_TASKS_PER_RUN - out.action_count;
		double s0 = bench_now(), dt;

		rv = sched_step(p, &out, room, NULL);
		dt = bench_now() - s0;
		t_steps += dt;
		t_group += dt;
		if (rv < 0) {
			fprintf(stderr, "bench_sched: sched_step: %d\n", rv);
			return 1;
		}
		if (rv == SCHED_STEP_GROUP) {
			if (groups <= BENCH_SERVICES)
				group_s[groups] = t_group;
			groups++;
			t_group = 0;
		}
		if (rv == SCHED_STEP_DONE ||
		    out.action_count == LIMIT_SCHED_TASKS_PER_RUN) {
			tally_batch(&tl, bs.s, &out); /* untimed */
			if (!write_bytes && out.action_count) {
				uint8_t *buf;
				size_t len;
				if (store_batch_encode(&out, 1, 1, &buf, &len))
					return 1;
				write_bytes = (double)len / (double)out.action_count;
				free(buf);
			}
			store_batch_free(&out);
			store_batch_init(&out);
			out.placements = true; /* the leader's loop writes them */
		}
		if (rv == SCHED_STEP_DONE)
			break;
	}
	sched_get_stats(p, &st);
	sched_free(p);

	/* every task placed but the global one on each drained node */
	expect = tasks - drained;
	if (st.assigned_count != expect || tl.assigned != expect ||
	    groups != BENCH_SERVICES || tally_check(&tl, nodes)) {
		fprintf(stderr,
			"bench_sched: placed %zu (batches %zu, other %zu) of %zu, %zu groups\n",
			st.assigned_count, tl.assigned, tl.other, expect, groups);
		return 1;
	}
	qsort(group_s, groups, sizeof *group_s, cmp_double);
	printf("scheduler: %zu tasks on %zu nodes: %.0f placements/s, p99 %.0f us\n",
	       tasks, nodes, (double)st.assigned_count / (t_read + t_steps),
	       group_s[(groups * 99 + 99) / 100 - 1] * 1e6);
	fprintf(stderr,
		"bench_sched: read store %.3f s, %zu groups %.3f s (mean %.0f us, max %.0f us), "
		"%zu unplaceable, %.0f bytes per write encoded\n",
		t_read, groups, t_steps, t_steps / (double)groups * 1e6,
		group_s[groups - 1] * 1e6, st.unplaceable_count, write_bytes);
	fflush(stdout);
	free(tl.ids);
	free(tl.per);
	free(group_s);
	store_batch_free(&bs.b);
	store_free(bs.s);
	return 0;
}

/* The loop's view of the store: ASSIGNED updates counted, and the plan
 * dropped on a change it does not survive (as core/scheduler_loop.c). */
struct loop_watch {
	struct sched **plan;
	size_t assigned;
	size_t dropped;
};

static void loop_on_event(void *data, const struct store_event *ev)
{
	struct loop_watch *w = data;
	const Cs__Task *o = (const Cs__Task *)ev->old_obj;
	const Cs__Task *n = (const Cs__Task *)ev->new_obj;

	if (ev->table == STORE_TASK && o && n && n->status && o->status &&
	    o->status->state == CS__TASK_STATE__TASK_STATE_PENDING &&
	    n->status->state == CS__TASK_STATE__TASK_STATE_ASSIGNED)
		w->assigned++;
	if (*w->plan && !sched_survives(*w->plan, ev)) {
		sched_free(*w->plan);
		*w->plan = NULL;
		w->dropped++;
	}
}

/* The leader's scheduler loop less Raft, as core/scheduler_loop.c runs it:
 * a pass (sched_pass: at most LIMIT_SCHED_TASKS_PER_RUN writes), encode,
 * store_apply (what every manager does with the committed entry), again
 * until a pass writes nothing. keep: the plan goes on across batches (else
 * each pass reads the whole store again, as before). Prints
 *
 *   scheduler-loop: T tasks on N nodes: R placements/s written ...
 *
 * R: ASSIGNED updates applied to the store (counted by a store watch) / the
 * wall time of every pass, encode and apply; the store's build is not
 * timed. */
static int bench_loop(size_t nodes, size_t tasks, bool keep)
{
	struct bench_store bs = {.s = store_new()};
	struct sched *plan = NULL;
	struct loop_watch w = {.plan = &plan};
	size_t passes = 0, reads = 0, expect = tasks - nodes / 100;
	double t0, dt, c0, t_pass = 0, t_encode = 0, t_apply = 0, m, tb = bench_now();
	double c_pass = 0, c_encode = 0, c_apply = 0, mc; /* CPU time of each */
	double entry_bytes = 0, writes = 0; /* what the loop's entries carry */

	if (!bs.s)
		return 1;
	store_batch_init(&bs.b);
	build_nodes(&bs, nodes);
	build_services(&bs);
	build_tasks(&bs, nodes, tasks);
	if (store_watch(bs.s, loop_on_event, &w) <= 0)
		return 1;
	t0 = bench_now();
	c0 = bench_cpu();
	fprintf(stderr, "bench_sched: loop: store of %zu tasks built in %.3f s\n", tasks,
		t0 - tb);
	for (;;) {
		struct store_batch out;
		struct sched_stats st;
		uint8_t *buf;
		size_t len;
		int rv;

		store_batch_init(&out);
		out.placements = true; /* the leader's loop writes them */
		if (!plan)
			reads++;
		m = bench_now();
		mc = bench_cpu();
		rv = sched_pass(&plan, bs.s, 1, NULL, LIMIT_SCHED_TASKS_PER_RUN, &out,
				&st);
		t_pass += bench_now() - m;
		c_pass += bench_cpu() - mc;
		if (!keep) {
			sched_free(plan);
			plan = NULL;
		}
		if (rv) {
			fprintf(stderr, "bench_sched: sched_pass: %d\n", rv);
			return 1;
		}
		passes++;
		if (out.action_count == 0) {
			store_batch_free(&out);
			break;
		}
		m = bench_now();
		mc = bench_cpu();
		if (store_batch_encode(&out, 1, bs.index + 1, &buf, &len)) {
			fprintf(stderr, "bench_sched: loop encode failed\n");
			return 1;
		}
		t_encode += bench_now() - m;
		c_encode += bench_cpu() - mc;
		entry_bytes += (double)len;
		writes += (double)out.action_count;
		m = bench_now();
		mc = bench_cpu();
		if (store_apply(bs.s, buf, len, ++bs.index, NULL, NULL)) {
			fprintf(stderr, "bench_sched: loop apply failed\n");
			return 1;
		}
		t_apply += bench_now() - m;
		c_apply += bench_cpu() - mc;
		free(buf);
		store_batch_free(&out);
	}
	dt = bench_now() - t0;
	c0 = bench_cpu() - c0;
	sched_free(plan);
	if (w.assigned != expect) {
		fprintf(stderr, "bench_sched: loop placed %zu of %zu\n", w.assigned,
			expect);
		return 1;
	}
	printf("scheduler-loop%s: %zu tasks on %zu nodes: %.0f placements/s written to "
	       "the store (the leader's loop less Raft: passes of at most %u writes, "
	       "encode, apply; store build excluded), %zu passes, %zu plans read\n",
	       keep ? "" : " (a new plan every pass, as before)", tasks, nodes,
	       (double)w.assigned / dt, (unsigned)LIMIT_SCHED_TASKS_PER_RUN, passes,
	       reads);
	fprintf(stderr,
		"bench_sched: loop: passes %.3f s, encode %.3f s, apply %.3f s (%.1f us "
		"a write); %.3f s of CPU: %.0f placements per CPU second\n",
		t_pass, t_encode, t_apply, t_apply / (double)w.assigned * 1e6, c0,
		(double)w.assigned / c0);
	/* on a shared machine the steadier split: each part's CPU time */
	fprintf(stderr,
		"bench_sched: loop CPU: passes %.3f s, encode %.3f s, apply %.3f s\n",
		c_pass, c_encode, c_apply);
	/* issue 18: placements go as compact actions, applied in place */
	fprintf(stderr,
		"store: %.0f entry bytes a write (%.1f MB in %zu entries), apply %.2f us a "
		"write\n",
		writes ? entry_bytes / writes : 0, entry_bytes / 1e6, passes - 1,
		t_apply / (double)w.assigned * 1e6);
	fflush(stdout);
	store_batch_free(&bs.b);
	store_free(bs.s);
	return 0;
}

int main(int argc, char **argv)
{
	/* --loop: the loop's lines alone; --loop NODES TASKS: one size */
	bool loop_only = argc > 1 && strcmp(argv[1], "--loop") == 0;

	if (loop_only && argc == 4) {
		size_t nodes = strtoul(argv[2], NULL, 10),
		       tasks = strtoul(argv[3], NULL, 10);
		if (nodes < 100 || tasks < nodes) {
			fprintf(stderr, "usage: bench_sched [--loop [NODES TASKS]]\n");
			return 2;
		}
		return bench_loop(nodes, tasks, true) ? 1 : 0;
	}

	if (!loop_only && bench_size(1000, 100000))
		return 1;
	if (!loop_only && bench_size(10000, 1000000))
		return 1;
	if (bench_loop(1000, 100000, false) || bench_loop(1000, 100000, true))
		return 1;
	if (bench_loop(10000, 1000000, true))
		return 1;
	return 0;
}
