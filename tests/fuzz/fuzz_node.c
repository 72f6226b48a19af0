/* fuzz_node: any bytes a worker sends its manager, handled by the real
 * manager code (node.c's frame handling, then manager_handle, the
 * dispatcher, control_rpc_handle, Raft's message decoding) on a live
 * simulated cluster (tests/fuzz/fworld: m1 leads, w1 runs two tasks of
 * "web"). The input is one message, sent as w1 (its certificate, its
 * session's address) to m1; the world then runs 200 ms of virtual time.
 * Properties: the cluster's and the runtime's invariants hold after every
 * event (simcluster_check, simexec_check: one task per slot, a task's
 * states only move forward, a container belongs to one task...), and m1
 * still leads once the world ran on. fuzz_agent (the same code, built with
 * FUZZ_TO_AGENT) sends the bytes the other way: m1 to w1's agent.
 *
 * The cluster lives across inputs (building it costs far more than an
 * input), so a finding that needs the state of earlier inputs may not
 * reproduce alone: run the crash's input with the corpus before it, or set
 * FUZZ_NODE_FRESH=1 (a new cluster for each input: slow, exact).
 *
 * FUZZ_DUMP=DIR writes every message of the fixture's own traffic (the
 * real frames between m1 and w1 while it is built) into DIR/node/ and
 * DIR/agent/ (the direction each goes), DIR/wire/ (with fuzz_wire's
 * selector byte 0), and the Raft entries' store batches into DIR/store/
 * (fuzz_store's apply byte 0), then the leader's snapshot (byte 1): how
 * tests/fuzz/corpus/ was seeded. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "core/api.pb-c.h"
#include "core/hash.h"
#include "core/manager.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fworld.h"

#ifndef FUZZ_TO_AGENT
#define FUZZ_TO_AGENT 0
#endif

static struct fworld fw;
static bool fresh;
static const char *dump;

static void dump_file(const char *sub, uint8_t sel, bool with_sel, const uint8_t *data,
		      size_t len)
{
	char path[512];
	FILE *fp;
	uint64_t h = hash_fnv(HASH_FNV_OFFSET, data, len);

	snprintf(path, sizeof path, "%s/%s", dump, sub);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%016" PRIx64, dump, sub, h);
	fp = fopen(path, "wb");
	FUZZ_CHECK(fp);
	if (with_sel)
		fputc(sel, fp);
	fwrite(data, 1, len, fp);
	fclose(fp);
}

static void dump_tap(void *ctx, const struct world *w, uint32_t src, uint32_t dst,
		     const uint8_t *data, size_t len)
{
	Cs__Wire *wire;

	dump_file(src == fw.w1 ? "node" : "agent", 0, false, data, len);
	dump_file("wire", 0, true, data, len);
	wire = cs__wire__unpack(NULL, len, data);
	if (!wire)
		return;
	if (wire->raft) {
		for (size_t i = 0; i < wire->raft->n_entries; i++) {
			const Cs__RaftEntry *e = wire->raft->entries[i];
			if (e->data.len)
				dump_file("store", 0, true, e->data.data, e->data.len);
		}
	}
	cs__wire__free_unpacked(wire, NULL);
}

static void build(void)
{
	fworld_new(&fw, 19);
	fworld_create_web(&fw, 4);
	FUZZ_CHECK(fworld_run(&fw, 5000000, (char[256]){0}, 256));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fresh = getenv("FUZZ_NODE_FRESH") != NULL;
	dump = getenv("FUZZ_DUMP");
	if (dump) {
		/* the fixture's traffic, with a few managers for Raft's */
		struct world *w;
		uint8_t *snap;
		size_t len;
		int64_t l;

		(void)mkdir(dump, 0755);
		fworld_new(&fw, 19);
		w = fw.w;
		world_set_tap(w, dump_tap, NULL);
		fworld_create_web(&fw, 4);
		FUZZ_CHECK(fworld_run(&fw, 20000000, (char[256]){0}, 256));
		world_set_tap(w, NULL, NULL);
		l = simcluster_leader(fw.c);
		FUZZ_CHECK(l >= 0);
		FUZZ_CHECK(store_snapshot(
				   manager_store(simcluster_manager(fw.c, (uint32_t)l)),
				   &snap, &len) == 0);
		dump_file("store", 1, true, snap, len);
		dump_file("wire", 2, true, snap, len);
		free(snap);
		fworld_free(&fw);
	}
	if (!fresh)
		build();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[256];
	bool ok;

	if (fresh)
		build();
	if (FUZZ_TO_AGENT)
		fworld_send(&fw, fw.m1, fw.w1, data, size);
	else
		fworld_send(&fw, fw.w1, fw.m1, data, size);
	ok = fworld_run(&fw, 200000, msg, sizeof msg);
	if (!ok && !FUZZ_TO_AGENT)
		fprintf(stderr, "invariant: %s\n", msg);
	/* a forged manager message may make the cluster's invariants false
	 * (the agent trusts its manager): only crashes and sanitizers count
	 * for fuzz_agent */
	FUZZ_CHECK(ok || FUZZ_TO_AGENT);
	if (!FUZZ_TO_AGENT)
		FUZZ_CHECK(simcluster_leader(fw.c) == (int64_t)fw.m1);
	if (fresh)
		fworld_free(&fw);
	return 0;
}
