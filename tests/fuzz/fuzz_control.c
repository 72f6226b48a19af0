/* fuzz_control: a control socket's request (what swarmctl sends over
 * net/ctlsock, and what the Docker API and a follower's forward carry):
 * Cs__ControlRequest decoded from the input, then run by the leader's
 * control RPC (core/control_rpc.c's validation and core/control.c) on the
 * live simulated cluster of tests/fuzz/fworld. Properties:
 * - the request packs to bytes that decode and pack again to the same
 *   bytes (fuzz_wire's property; see its note on field 0);
 * - control_validate_spec of its spec never crashes, and says why when it
 *   refuses;
 * - the call is answered exactly once, never inside the call, with the
 *   request's id, in an answer that fits a frame, within 30 s of virtual
 *   time; the cluster's invariants hold after every event;
 * - a refused request leaves the leader's store as it was (its snapshot,
 *   but for the applied index, the same bytes).
 * An accepted write changes the cluster for the inputs after it; the
 * cluster is then built again (so every input meets the same cluster,
 * and a finding reproduces alone). */
#include <stdbool.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/control.h"
#include "core/errors.h"
#include "core/limits.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fworld.h"

static struct fworld fw;
static uint64_t clean_digest;

static void build(void)
{
	char msg[256];
	fworld_new(&fw, 17);
	fworld_create_web(&fw, 2);
	FUZZ_CHECK(fworld_run(&fw, 5000000, msg, sizeof msg));
	clean_digest = fworld_store_digest(&fw);
	/* the cluster is quiet: nothing changes the store by itself */
	FUZZ_CHECK(fworld_run(&fw, 5000000, msg, sizeof msg));
	FUZZ_CHECK(fworld_store_digest(&fw) == clean_digest);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	build();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Cs__ControlRequest *req = cs__control_request__unpack(NULL, size, data);
	Cs__ControlRequest *again;
	struct fworld_answer a;
	uint8_t *b1, *b2;
	size_t l1, l2;
	uint64_t before, after;

	if (!req)
		return 0;
	l1 = cs__control_request__get_packed_size(req);
	b1 = malloc(l1 ? l1 : 1);
	FUZZ_CHECK(b1);
	cs__control_request__pack(req, b1);
	again = cs__control_request__unpack(NULL, l1, b1);
	if (again) {
		l2 = cs__control_request__get_packed_size(again);
		b2 = malloc(l2 ? l2 : 1);
		FUZZ_CHECK(b2);
		cs__control_request__pack(again, b2);
		FUZZ_CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
		free(b2);
		cs__control_request__free_unpacked(again, NULL);
	}
	free(b1);
	if (req->spec) {
		char err[256] = "";
		if (control_validate_spec(req->spec, err, sizeof err) != 0)
			FUZZ_CHECK(err[0] != '\0');
	}
	before = fworld_store_digest(&fw);
	FUZZ_CHECK(before == clean_digest);
	fworld_call(&fw, req, 30000000, &a);
	FUZZ_CHECK(a.calls == 1);
	FUZZ_CHECK(a.id == req->id);
	FUZZ_CHECK(a.packed <= LIMIT_FRAME_BYTES_MAX);
	after = fworld_store_digest(&fw);
	if (a.status != 0) {
		if (after != before)
			fprintf(stderr, "refused (%d: %s) but the store changed\n",
				a.status, a.error);
		FUZZ_CHECK(a.error[0] != '\0');
		FUZZ_CHECK(after == before);
	}
	if (after != clean_digest) {
		fworld_free(&fw);
		build();
	}
	cs__control_request__free_unpacked(req, NULL);
	return 0;
}
