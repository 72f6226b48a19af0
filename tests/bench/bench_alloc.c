/* bench_alloc: the allocator's speed: 100,000 tasks given an address on one
 * network of a /16 (which holds 65,533: two rounds of 50,000, the first
 * released as its tasks are known stopped before the second), each task's
 * update encoded into a batch as the leader component does. Prints
 * `allocator: N tasks/s`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/allocator.h"
#include "core/store.h"

enum { BENCH_TASKS = 100000, BENCH_ROUND = 50000, BENCH_BATCH = 5000 };

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t bench_index;

static int bench_apply(struct store *s, struct store_batch *b)
{
	uint8_t *buf;
	size_t len;
	int rv = store_batch_encode(b, 1, 1, &buf, &len);
	if (rv == 0)
		rv = store_apply(s, buf, len, ++bench_index, NULL, NULL);
	free(buf);
	store_batch_free(b);
	store_batch_init(b);
	return rv;
}

/* The ids of the service's tasks (objects move as batches apply: read
 * by id). Returns how many. */
static uint64_t bench_id[BENCH_ROUND];
static size_t bench_id_count;

static size_t bench_ids(const struct store *s, uint64_t svc_id)
{
	if (bench_id_count)
		return bench_id_count;
	for (const Cs__Task *t = store_task_next_by_service(s, svc_id, NULL);
	     t && bench_id_count < BENCH_ROUND;
	     t = store_task_next_by_service(s, svc_id, t))
		bench_id[bench_id_count++] = t->id;
	return bench_id_count;
}

static void bench_watch(void *data, const struct store_event *ev)
{
	alloc_state_on_event(data, ev);
}

int main(void)
{
	struct store *s = store_new();
	struct alloc_state a;
	struct store_batch b;
	Cs__NetworkSpec nspec = CS__NETWORK_SPEC__INIT;
	Cs__Network net = CS__NETWORK__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__NetworkAttachmentConfig att = CS__NETWORK_ATTACHMENT_CONFIG__INIT;
	Cs__NetworkAttachmentConfig *atts[1] = {&att};
	Cs__Service svc = CS__SERVICE__INIT;
	char bufs[2][20], why[160];
	double busy = 0;
	uint64_t done = 0;

	if (!s)
		return 1;
	alloc_state_init(&a);
	store_watch(s, bench_watch, &a);
	store_batch_init(&b);
	nspec.name = "big";
	nspec.subnet = "10.1.0.0/16";
	net.id = 0x100;
	if (alloc_network_prepare(s, &nspec, &net, bufs, why, sizeof why) ||
	    store_batch_network(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &net) ||
	    bench_apply(s, &b))
		return 1;
	att.target = "big";
	spec.name = "web";
	spec.n_networks = 1;
	spec.networks = atts;
	svc.id = 0x10;
	svc.spec = &spec;
	svc.spec_version = 1;
	svc.alloc_spec_version = 1; /* no VIP: dnsrr-like, every address a task's */
	if (store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc) ||
	    bench_apply(s, &b))
		return 1;
	for (uint64_t round = 0; done < BENCH_TASKS; round++) {
		/* a round's tasks, pending */
		for (uint64_t i = 0; i < BENCH_ROUND; i++) {
			Cs__Task t = CS__TASK__INIT;
			Cs__TaskStatus st = CS__TASK_STATUS__INIT;
			t.id = (round * BENCH_ROUND + i + 1) * 0x9e3779b97f4a7c15ull;
			t.service_id = svc.id;
			t.slot = i + 1;
			t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
			st.state = CS__TASK_STATE__TASK_STATE_PENDING;
			t.status = &st;
			t.spec_version = 1;
			if (store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE,
					     &t) ||
			    (b.action_count == BENCH_BATCH && bench_apply(s, &b)))
				return 1;
		}
		if (b.action_count && bench_apply(s, &b))
			return 1;
		/* allocate them (timed: what a leader's passes do) */
		bench_id_count = 0;
		{
			const Cs__Service *sv = store_service_get(s, svc.id);
			double t0 = bench_now();
			uint64_t n = 0;
			for (size_t k = 0; k < bench_ids(s, svc.id); k++) {
				const Cs__Task *t = store_task_get(s, bench_id[k]);
				struct alloc_mem mem = {0};
				Cs__Task out;
				if (t->alloc_done)
					continue;
				if (alloc_task(&a, s, sv, t, &out, &mem, why,
					       sizeof why)) {
					fprintf(stderr, "bench_alloc: %s\n", why);
					return 1;
				}
				if (store_batch_task(&b,
						     CS__STORE_ACTION__KIND__KIND_UPDATE,
						     &out))
					return 1;
				alloc_mem_free(&mem);
				n++;
				if (b.action_count == BENCH_BATCH) {
					busy += bench_now() - t0;
					if (bench_apply(s, &b))
						return 1;
					t0 = bench_now();
				}
			}
			busy += bench_now() - t0;
			if (b.action_count && bench_apply(s, &b))
				return 1;
			done += n;
		}
		/* the round's tasks stop: deleted (known stopped), addresses free */
		for (size_t k = 0, n = bench_ids(s, svc.id); k < n; k++) {
			const Cs__Task *t = store_task_get(s, bench_id[k]);
			if (store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE,
					     t) ||
			    (b.action_count == BENCH_BATCH && bench_apply(s, &b)))
				return 1;
		}
		if (b.action_count && bench_apply(s, &b))
			return 1;
	}
	printf("allocator: %.0f tasks/s (%" PRIu64
	       " tasks on one /16, %u live at once)\n",
	       (double)done / busy, done, BENCH_ROUND);
	alloc_state_free(&a);
	store_free(s);
	return 0;
}
