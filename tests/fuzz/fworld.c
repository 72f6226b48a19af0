/* fworld: see fworld.h. */
#include "tests/fuzz/fworld.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/agent.h"
#include "core/control_rpc.h"
#include "core/errors.h"
#include "core/hash.h"
#include "core/manager.h"
#include "core/node.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/simexec.h"
#include "sim/world.h"
#include "tests/fuzz/fuzz.h"

#define SEC 1000000ull

static uint32_t fworld_add(struct fworld *f, const char *name, uint32_t number)
{
	uint32_t idx;
	const struct node_cfg *cfg = simcluster_node_cfg(
		f->c, name, number, number ? 1 : 0, 1, 4000, 8ull << 30);
	FUZZ_CHECK(cfg);
	FUZZ_CHECK(world_node_add(f->w, name, &node_program, cfg, &idx) == 0);
	FUZZ_CHECK(simcluster_track(f->c, idx, number) == 0);
	FUZZ_CHECK(world_node_start(f->w, idx) == 0);
	return idx;
}

static bool fworld_w1_ready(struct fworld *f)
{
	struct node *n = world_node_state(f->w, f->w1);
	struct agent *a = n ? node_agent(n) : NULL;
	int64_t l = simcluster_leader(f->c);
	struct manager *m = l < 0 ? NULL : simcluster_manager(f->c, (uint32_t)l);
	const Cs__Node *rec;

	if (!a || !m || !agent_connected(a) || !agent_node_id(a))
		return false;
	rec = store_node_get(manager_store(m), agent_node_id(a));
	return rec && rec->state == CS__NODE_STATE__NODE_STATE_READY;
}

void fworld_new(struct fworld *f, uint64_t seed)
{
	uint64_t end;

	memset(f, 0, sizeof *f);
	f->w = world_new(seed);
	FUZZ_CHECK(f->w);
	f->c = simcluster_new(f->w, NULL);
	FUZZ_CHECK(f->c);
	simcluster_node_programs(f->c, true);
	f->m1 = fworld_add(f, "m1", 1);
	f->w1 = fworld_add(f, "w1", 0);
	end = world_now_us(f->w) + 60 * SEC;
	while (!fworld_w1_ready(f)) {
		FUZZ_CHECK(world_step(f->w, end)); /* ready within 60 s */
	}
}

void fworld_free(struct fworld *f)
{
	world_free(f->w);
	simcluster_free(f->c);
	memset(f, 0, sizeof *f);
}

bool fworld_run(struct fworld *f, uint64_t d_us, char *msg, size_t size)
{
	uint64_t end = world_now_us(f->w) + d_us;

	while (world_step(f->w, end)) {
		if (!simcluster_check(f->c, msg, size))
			return false;
		if (!simexec_check(world_exec(f->w), msg, size))
			return false;
	}
	world_advance(f->w, end);
	return true;
}

void fworld_send(struct fworld *f, uint32_t from, uint32_t to, const uint8_t *buf,
		 size_t len)
{
	struct env *e = world_node_env(f->w, from);

	if (!e)
		return;
	/* refused sends (a peer down, a queue full) are the network's loss */
	(void)e->ops->send(e, world_node_name(f->w, to), buf, len);
}

uint64_t fworld_store_digest(struct fworld *f)
{
	int64_t l = simcluster_leader(f->c);
	struct manager *m = l < 0 ? NULL : simcluster_manager(f->c, (uint32_t)l);
	uint8_t *buf = NULL, *again;
	size_t len = 0;
	Cs__StoreSnapshot *snap;
	uint64_t h;

	if (!m)
		return 0;
	FUZZ_CHECK(store_snapshot(manager_store(m), &buf, &len) == 0);
	snap = cs__store_snapshot__unpack(NULL, len, buf);
	FUZZ_CHECK(snap);
	snap->applied = 0;
	len = cs__store_snapshot__get_packed_size(snap);
	again = malloc(len ? len : 1);
	FUZZ_CHECK(again);
	cs__store_snapshot__pack(snap, again);
	h = hash_fnv(HASH_FNV_OFFSET, again, len);
	free(again);
	free(buf);
	cs__store_snapshot__free_unpacked(snap, NULL);
	return h;
}

static void fworld_answered(void *data, const Cs__ControlResponse *resp)
{
	struct fworld_answer *a = data;

	a->calls++;
	a->status = resp->status;
	a->id = resp->id;
	a->packed = cs__control_response__get_packed_size(resp);
	snprintf(a->error, sizeof a->error, "%s", resp->error ? resp->error : "");
}

void fworld_call(struct fworld *f, const Cs__ControlRequest *req, uint64_t limit_us,
		 struct fworld_answer *a)
{
	struct node *n = world_node_state(f->w, f->m1);
	uint64_t end = world_now_us(f->w) + limit_us;
	char msg[256];
	int rc;

	memset(a, 0, sizeof *a);
	FUZZ_CHECK(n && node_control(n));
	rc = control_rpc_call(node_control(n), req, fworld_answered, a);
	FUZZ_CHECK(a->calls == 0); /* never inside the call */
	if (rc != 0) {
		FUZZ_CHECK(rc == CS_ENOMEM || rc == CS_EAGAIN);
		return;
	}
	while (a->calls == 0 && world_step(f->w, end)) {
		if (!simcluster_check(f->c, msg, sizeof msg) ||
		    !simexec_check(world_exec(f->w), msg, sizeof msg)) {
			fprintf(stderr, "invariant: %s\n", msg);
			FUZZ_CHECK(!"an invariant holds");
		}
	}
}

void fworld_create_web(struct fworld *f, uint64_t replicas)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec task = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec c = CS__CONTAINER_SPEC__INIT;
	struct fworld_answer a;

	c.image = "busybox";
	task.container = &c;
	spec.task = &task;
	spec.name = "web";
	spec.replicas = replicas;
	req.id = 1;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	fworld_call(f, &req, 30 * SEC, &a);
	FUZZ_CHECK(a.calls == 1 && a.status == 0);
}
