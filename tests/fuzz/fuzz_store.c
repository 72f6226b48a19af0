/* fuzz_store: the store's decoders on arbitrary bytes, on a store that holds
 * something (services, tasks on nodes, a network, the cluster object): what
 * a manager applies from its Raft log (store_apply of a StoreBatch) and what
 * it restores from a snapshot (store_restore). The first input byte picks
 * which. Properties:
 * - all or nothing: a refused batch or snapshot leaves the store exactly as
 *   it was (its snapshot, but for the applied index, is the same bytes);
 * - a batch that applied refuses to apply twice when it changed anything
 *   (a create exists, a version moved, a deleted id is gone), leaving the
 *   store as the first apply left it;
 * - the store after any apply or restore snapshots, and that snapshot
 *   restores into a new store whose snapshot is the same bytes. */
#include <stdbool.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/store.h"
#include "tests/fuzz/fuzz.h"

#define BASE_INDEX 100u

static uint8_t *base;
static size_t base_len;

/* The store's snapshot bytes with the applied index left out. */
static uint8_t *content(const struct store *s, size_t *len)
{
	uint8_t *buf, *again;
	Cs__StoreSnapshot *snap;

	FUZZ_CHECK(store_snapshot(s, &buf, len) == 0);
	snap = cs__store_snapshot__unpack(NULL, *len, buf);
	FUZZ_CHECK(snap); /* our own snapshot decodes */
	snap->applied = 0;
	*len = cs__store_snapshot__get_packed_size(snap);
	again = malloc(*len ? *len : 1);
	FUZZ_CHECK(again);
	cs__store_snapshot__pack(snap, again);
	cs__store_snapshot__free_unpacked(snap, NULL);
	free(buf);
	return again;
}

static bool same(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

/* FUZZ_DUMP=DIR: the batches built here go to DIR/store/ as seeds (each
 * with the apply selector byte 0), then the base snapshot (byte 1). */
static void dump_seed(uint8_t sel, const uint8_t *buf, size_t len)
{
	const char *dir = getenv("FUZZ_DUMP");
	char path[512];
	FILE *fp;

	if (!dir)
		return;
	snprintf(path, sizeof path, "%s/store-%u-%zu", dir, sel, len);
	fp = fopen(path, "wb");
	FUZZ_CHECK(fp);
	fputc(sel, fp);
	fwrite(buf, 1, len, fp);
	fclose(fp);
}

static void apply_built(struct store *s, struct store_batch *b, uint64_t index)
{
	uint8_t *buf;
	size_t len;
	FUZZ_CHECK(store_batch_encode(b, 1, index, &buf, &len) == 0);
	dump_seed(0, buf, len);
	FUZZ_CHECK(store_apply(s, buf, len, index, NULL, NULL) == 0);
	free(buf);
	store_batch_free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct store *s = store_new();
	struct store_batch b;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__Node node = CS__NODE__INIT;
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;
	Cs__Cluster cl = CS__CLUSTER__INIT;
	Cs__Network net = CS__NETWORK__INIT;
	Cs__NetworkSpec nspec = CS__NETWORK_SPEC__INIT;
	uint64_t index = 1;

	FUZZ_CHECK(s);
	store_batch_init(&b);
	cl.id = 1;
	FUZZ_CHECK(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &cl) ==
		   0);
	for (uint64_t i = 1; i <= 3; i++) {
		node.id = 0x100 + i;
		node.hostname = i == 1 ? "m1" : i == 2 ? "w1" : "w2";
		FUZZ_CHECK(store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_CREATE,
					    &node) == 0);
	}
	nspec.name = "app";
	net.id = 0x300;
	net.spec = &nspec;
	FUZZ_CHECK(store_batch_network(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &net) ==
		   0);
	spec.replicas = 2;
	spec.name = "web";
	svc.id = 0x200;
	svc.spec = &spec;
	FUZZ_CHECK(store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc) ==
		   0);
	spec.name = "db";
	svc.id = 0x201;
	FUZZ_CHECK(store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc) ==
		   0);
	apply_built(s, &b, index++);
	store_batch_init(&b);
	st.state = CS__TASK_STATE__TASK_STATE_RUNNING;
	t.status = &st;
	t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
	for (uint64_t i = 0; i < 4; i++) {
		t.id = 0x400 + i;
		t.service_id = 0x200 + (i & 1);
		t.slot = 1 + i / 2;
		t.node_id = 0x102 + (i & 1);
		FUZZ_CHECK(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE,
					    &t) == 0);
	}
	apply_built(s, &b, index++);
	FUZZ_CHECK(store_snapshot(s, &base, &base_len) == 0);
	dump_seed(1, base, base_len);
	if (getenv("FUZZ_DUMP")) {
		/* a batch the base takes: a task updated, one deleted */
		Cs__Task up = *store_task_get(s, 0x400);
		Cs__TaskStatus ust = *up.status;
		uint8_t *buf;
		size_t len;
		ust.state = CS__TASK_STATE__TASK_STATE_FAILED;
		up.status = &ust;
		store_batch_init(&b);
		FUZZ_CHECK(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
					    &up) == 0);
		FUZZ_CHECK(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE,
					    store_task_get(s, 0x403)) == 0);
		FUZZ_CHECK(store_batch_encode(&b, 1, index, &buf, &len) == 0);
		dump_seed(0, buf, len);
		free(buf);
		store_batch_free(&b);
	}
	store_free(s);
	return 0;
}

/* s's snapshot restores into a new store with the same snapshot. */
static void check_round_trip(const struct store *s)
{
	uint8_t *a, *b;
	size_t al, bl;
	struct store *t = store_new();

	FUZZ_CHECK(t);
	FUZZ_CHECK(store_snapshot(s, &a, &al) == 0);
	FUZZ_CHECK(store_restore(t, a, al, 0) == 0);
	FUZZ_CHECK(store_snapshot(t, &b, &bl) == 0);
	FUZZ_CHECK(same(a, al, b, bl));
	FUZZ_CHECK(store_node_count(s) == store_node_count(t));
	FUZZ_CHECK(store_task_count(s) == store_task_count(t));
	FUZZ_CHECK(store_service_count(s) == store_service_count(t));
	free(a);
	free(b);
	store_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *s;
	uint8_t *before, *after;
	size_t bl, al;
	int rc;

	if (size < 1)
		return 0;
	s = store_new();
	FUZZ_CHECK(s);
	FUZZ_CHECK(store_restore(s, base, base_len, BASE_INDEX) == 0);
	before = content(s, &bl);
	if (data[0] & 1) {
		rc = store_restore(s, data + 1, size - 1,
				   (data[0] & 2) ? 0 : BASE_INDEX + 1);
		after = content(s, &al);
		if (rc != 0) {
			FUZZ_CHECK(rc == CS_ECORRUPT || rc == CS_EVERSION);
			FUZZ_CHECK(same(before, bl, after, al));
			FUZZ_CHECK(store_applied(s) == BASE_INDEX);
		}
	} else {
		rc = store_apply(s, data + 1, size - 1, BASE_INDEX + 1, NULL, NULL);
		FUZZ_CHECK(store_applied(s) == BASE_INDEX + 1);
		after = content(s, &al);
		if (rc != 0) {
			FUZZ_CHECK(same(before, bl, after, al));
		} else if (!same(before, bl, after, al)) {
			uint8_t *again;
			size_t gl;
			FUZZ_CHECK(store_apply(s, data + 1, size - 1, BASE_INDEX + 2,
					       NULL, NULL) != 0);
			again = content(s, &gl);
			FUZZ_CHECK(same(after, al, again, gl));
			free(again);
		}
	}
	check_round_trip(s);
	free(before);
	free(after);
	store_free(s);
	return 0;
}
