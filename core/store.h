/* store: the managers' in-memory object store — nodes, services, tasks and
 * the cluster object — with indexes (tasks by service and slot, by node, by
 * desired state) and watches. Every change arrives as an encoded batch of
 * actions (core/api.proto StoreBatch) that the Raft FSM applies in log order
 * on every manager, all or nothing; writers build batches with
 * store_batch_*. Iteration follows ids (and index keys), never pointers.
 *
 * The store owns every object in it; readers get const pointers valid until
 * the next store_apply / store_restore. Single-threaded. */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"

#define STORE_SNAPSHOT_FORMAT 1u

struct store;

enum store_table {
	STORE_NODE,
	STORE_SERVICE,
	STORE_TASK,
	STORE_CLUSTER,
	STORE_NETWORK,
	STORE_SECRET /* issue 20: secrets and configs */
};
enum store_change { STORE_CREATED, STORE_UPDATED, STORE_DELETED };

/* One change, as watches see it: old is NULL for a create, new for a
 * delete. Both are borrowed for the callback only. */
struct store_event {
	enum store_table table;
	enum store_change change;
	uint64_t index; /* the raft index of the batch */
	const ProtobufCMessage *old_obj;
	const ProtobufCMessage *new_obj;
};

/* Watches run after each action is applied, in commit order. They must not
 * apply to the store themselves (propose instead). */
typedef void (*store_watch_fn)(void *data, const struct store_event *ev);

/* store_new returns an empty store, or NULL when out of memory. */
struct store *store_new(void);
void store_free(struct store *s);

/* ---------------------------------------------------------------- reads */

const Cs__Node *store_node_get(const struct store *s, uint64_t id);
const Cs__Service *store_service_get(const struct store *s, uint64_t id);
const Cs__Task *store_task_get(const struct store *s, uint64_t id);
/* store_cluster returns the cluster object, or NULL before bootstrap. */
const Cs__Cluster *store_cluster(const struct store *s);
/* store_cluster_removed: whether node id is among c's removed nodes (node
 * rm: it may not come back as itself). c may be NULL. O(log removed): the
 * list is kept ascending. */
bool store_cluster_removed(const Cs__Cluster *c, uint64_t id);
/* store_service_by_name returns the service named name, or NULL. */
const Cs__Service *store_service_by_name(const struct store *s, const char *name);

size_t store_node_count(const struct store *s);
size_t store_service_count(const struct store *s);
size_t store_task_count(const struct store *s);
/* store_applied returns the raft index of the last batch applied. */
uint64_t store_applied(const struct store *s);

/* store_svccount returns the store's per-service task counts (svccount.h),
 * up to date with every change applied. Borrowed, valid as long as s. */
struct svccount;
const struct svccount *store_svccount(const struct store *s);

/* Iteration: pass NULL for the first object, then the previous one. Each
 * returns NULL at the end. Removing the previous object between calls is
 * fine. Orders: nodes, services and tasks by id; by_service by (slot, id);
 * by_node and by_desired by id. */
const Cs__Node *store_node_next(const struct store *s, const Cs__Node *prev);
const Cs__Service *store_service_next(const struct store *s, const Cs__Service *prev);
const Cs__Task *store_task_next(const struct store *s, const Cs__Task *prev);
const Cs__Task *store_task_next_by_service(const struct store *s, uint64_t service_id,
					   const Cs__Task *prev);
const Cs__Task *store_task_next_by_node(const struct store *s, uint64_t node_id,
					const Cs__Task *prev);
const Cs__Task *store_task_next_by_desired(const struct store *s, Cs__TaskState desired,
					   const Cs__Task *prev);
/* The tasks linked in the indexes built at their first walk (issue 18: a
 * write need not pay for an index only some readers walk): 0 in each
 * until then (and after a clear or a restore), then every task. */
struct store_index_counts {
	size_t by_id;	   /* store_task_next, store_task_scan, a snapshot */
	size_t by_desired; /* store_task_next_by_desired */
};
struct store_index_counts store_indexed(const struct store *s);
/* store_task_next_in_slot iterates the tasks of one slot of a service. */
const Cs__Task *store_task_next_in_slot(const struct store *s, uint64_t service_id,
					uint64_t slot, const Cs__Task *prev);

/* store_task_scan_by_node calls fn(arg, t) for every task t whose node id is
 * at least node_from, in (node id, task id) order, until fn returns nonzero;
 * returns that value, or 0. fn must not change s. A whole scan visits each
 * task once: O(tasks), where store_task_next_by_node costs O(log tasks) per
 * task. */
typedef int (*store_task_fn)(void *arg, const Cs__Task *t);
int store_task_scan_by_node(const struct store *s, uint64_t node_from, store_task_fn fn,
			    void *arg);
/* store_task_scan_service calls fn(arg, t) for every task of one service,
 * in (slot, id) order, until fn returns nonzero; returns that value, or 0.
 * O(log tasks + the service's tasks), where store_task_next_by_service
 * costs O(log tasks) per task. fn must not change s. */
int store_task_scan_service(const struct store *s, uint64_t service_id, store_task_fn fn,
			    void *arg);
/* store_task_scan calls fn(arg, t) for every task in id order, until fn
 * returns nonzero; returns that value, or 0. O(tasks) for a whole scan,
 * where store_task_next costs O(log tasks) per task. fn must not change s. */
int store_task_scan(const struct store *s, store_task_fn fn, void *arg);
/* store_node_scan is store_task_scan for nodes (id order). */
typedef int (*store_node_fn)(void *arg, const Cs__Node *n);
int store_node_scan(const struct store *s, store_node_fn fn, void *arg);

/* ---------------------------------------------------------------- watches */

/* store_watch registers fn; returns a handle > 0, or CS_ELIMIT. */
int store_watch(struct store *s, store_watch_fn fn, void *data);
void store_unwatch(struct store *s, int handle);

/* ---------------------------------------------------------------- writes */

/* A batch being built: its actions, encoded as they are added (each add
 * reads its object then and keeps nothing of it), so that proposing the
 * batch is one copy and adding needs no allocation but the buffer's
 * growth. store_batch_free releases the bytes. */
struct store_batch {
	uint8_t *buf; /* StoreBatch field 1, once per action */
	size_t len;
	size_t cap;
	size_t action_count;
	/* issue 18: a writer that places tasks may write them as compact
	 * placements (store_batch_placement) rather than whole tasks. Set by
	 * the leader's scheduler loop; false after store_batch_init, so a
	 * batch another program builds and reads back (a benchmark's harness,
	 * a tool) holds whole tasks only. Every manager of one cluster must
	 * understand placements: they run one version (README). */
	bool placements;
};

void store_batch_init(struct store_batch *b);
void store_batch_free(struct store_batch *b);

/* Each returns 0, CS_ENOMEM, or CS_ELIMIT past LIMIT_STORE_BATCH_ACTIONS.
 * An update or delete carries the version the writer read (obj->version). */
int store_batch_node(struct store_batch *b, Cs__StoreAction__Kind kind,
		     const Cs__Node *obj);
int store_batch_service(struct store_batch *b, Cs__StoreAction__Kind kind,
			const Cs__Service *obj);
int store_batch_task(struct store_batch *b, Cs__StoreAction__Kind kind,
		     const Cs__Task *obj);
int store_batch_cluster(struct store_batch *b, Cs__StoreAction__Kind kind,
			const Cs__Cluster *obj);

/* store_batch_placement adds a compact UPDATE (issue 18) of the task
 * task_id, read at version: placed on node_id with a fresh status {state,
 * timestamp_ms, message (NULL: "")}. At apply it is checked and applied as
 * store_batch_task's UPDATE of a copy of the task with that node and status
 * would be (same verdicts, same stored bytes, same event), but in place on
 * the stored task: no task decoded, none freed. Returns as
 * store_batch_task. */
int store_batch_placement(struct store_batch *b, uint64_t task_id, uint64_t version,
			  uint64_t node_id, Cs__TaskState state, uint64_t timestamp_ms,
			  const char *message);
/* store_batch_status_report adds a compact UPDATE (issue 18) of task
 * task_id's status as node node_id reported it (message NULL: ""). It
 * cannot fail at apply: it changes the task as store_batch_task's UPDATE of
 * the task as it then is with that status would (see TaskStatusReport in
 * api.proto) when the task is on node_id and the state moves it forward,
 * and nothing otherwise. Returns as store_batch_task. */
int store_batch_status_report(struct store_batch *b, uint64_t task_id, uint64_t node_id,
			      Cs__TaskState state, int32_t exit_code,
			      uint64_t timestamp_ms, const char *message);

/* store_batch_encode packs the batch (with proposer and proposal id) into a
 * new buffer the caller frees with free(). Returns 0 or CS_ENOMEM. */
int store_batch_encode(const struct store_batch *b, uint64_t proposer,
		       uint64_t proposal_id, uint8_t **buf, size_t *len);

/* store_batch_bytes returns how many bytes the actions take encoded (the
 * batch's encoding adds at most 22 for proposer and proposal id). */
size_t store_batch_bytes(const struct store_batch *b);

/* store_batch_decode unpacks the actions added so far into a new message
 * (proposer and proposal id 0) that the caller frees with
 * cs__store_batch__free_unpacked: for readers such as tests and
 * benchmarks. Returns 0 or CS_ENOMEM. */
int store_batch_decode(const struct store_batch *b, Cs__StoreBatch **out);

/* store_has_field0: whether m (or a message in it) holds a field numbered
 * 0, which libprotobuf-c 1.4 accepts in an overlong tag and then packs as
 * bytes it refuses: the store refuses such a batch or snapshot as corrupt
 * (and the fuzz targets use it to tell that case apart). */
bool store_has_field0(const ProtobufCMessage *m);

/* store_batch_decode_placements decodes buf, a batch of placements and
 * status reports alone (the scheduler's and the dispatcher's: issue 18),
 * without protobuf-c, into memory from alloc
 * (several allocations, freed only all at once: an arena's; alloc's free is
 * never called). Returns the batch, equal field for field to what
 * cs__store_batch__unpack gives, or NULL when buf holds anything else or a
 * form the decoder does not read (a field twice, an unknown field, a
 * message that is not ASCII, ...: decode it with protobuf-c), or when alloc
 * fails. store_apply uses it; exposed for tests. */
Cs__StoreBatch *store_batch_decode_placements(const uint8_t *buf, size_t len,
					      ProtobufCAllocator *alloc);

/* store_batch_decode_tasks decodes buf, a batch of whole tasks alone in the
 * forms the store's writers make (the orchestrator's creates: issue 18),
 * without protobuf-c: the batch and its actions in memory from alloc (as
 * store_batch_decode_placements), each task with its status and strings in
 * malloc's, as cs__store_batch__unpack(NULL, ...) gives them (free each
 * with protobuf_c_message_free_unpacked(&task->base, NULL)). Returns the
 * batch, equal field for field to protobuf-c's, or NULL (having freed what
 * it made) when buf holds anything else or a form it does not read (a
 * spec, a field twice, an empty or non-ASCII string, ...), or when memory
 * runs out. store_apply uses it; exposed for tests. */
Cs__StoreBatch *store_batch_decode_tasks(const uint8_t *buf, size_t len,
					 ProtobufCAllocator *alloc);

/* ---------------------------------------------------------------- the FSM */

/* store_apply decodes and applies one committed batch at raft index. All or
 * nothing: returns 0 when every action applied, CS_ECORRUPT for bytes that
 * do not decode, CS_EEXIST (create of an existing id), CS_ENOENT (update or
 * delete of a missing id), CS_EVERSION (a version that does not match),
 * CS_ENOTSUP (an action whose object this version does not know: a newer
 * manager's; its caller cannot share the others' verdict and must stop),
 * and then nothing changed. Either way the applied index moves to index (every
 * manager reaches the same verdict). proposer and proposal_id, when not
 * NULL, receive the batch's. */
int store_apply(struct store *s, const uint8_t *buf, size_t len, uint64_t index,
		uint64_t *proposer, uint64_t *proposal_id);

/* store_cluster_removed_digest sums up c's removed-node list (NULL: empty)
 * in a nonzero 64-bit value: equal lists give equal values, so an agent and
 * the dispatcher compare lists by it. */
uint64_t store_cluster_removed_digest(const Cs__Cluster *c);

/* store_snapshot encodes the whole store (in id order) into a new buffer the
 * caller frees. Returns 0 or CS_ENOMEM. Equal stores give equal bytes. */
int store_snapshot(const struct store *s, uint8_t **buf, size_t *len);

/* store_restore replaces the whole content with a snapshot taken at index
 * (0: the index recorded in the snapshot).
 * Returns 0, or CS_ECORRUPT / CS_EVERSION (unknown format) leaving the store
 * as it was. Watches are not told (a restore is a new world for them);
 * callers that care rebuild their views. */
int store_restore(struct store *s, const uint8_t *buf, size_t len, uint64_t index);

/* ---------------------------------------------------------------- networks (issue 15) */

/* Networks, by id; names are unique (the control API checks) and few, so
 * store_network_by_name scans (NULL: none). */
const Cs__Network *store_network_get(const struct store *s, uint64_t id);
const Cs__Network *store_network_next(const struct store *s, const Cs__Network *prev);
size_t store_network_count(const struct store *s);
const Cs__Network *store_network_by_name(const struct store *s, const char *name);
/* store_batch_network: store_batch_node's contract, for a network. */
int store_batch_network(struct store_batch *b, Cs__StoreAction__Kind kind,
			const Cs__Network *obj);

/* ---------------------------------------------------------------- secrets and configs (issue 20) */

/* Secrets and configs (Cs__Secret, told apart by config), by id; a name is
 * unique among its kind (checked at apply), found by a scan (NULL: none). */
const Cs__Secret *store_secret_get(const struct store *s, uint64_t id);
const Cs__Secret *store_secret_next(const struct store *s, const Cs__Secret *prev);
size_t store_secret_count(const struct store *s);
const Cs__Secret *store_secret_by_name(const struct store *s, bool config,
				       const char *name);
/* store_spec_uses_secret: whether spec (NULL: no) references x, among the
 * references of x's kind. */
bool store_spec_uses_secret(const Cs__ServiceSpec *spec, const Cs__Secret *x);
/* store_secret_users returns how many services' specs reference x, and
 * puts the first out_max of them, in id order, in out (borrowed from the
 * store; out may be NULL when out_max is 0). */
size_t store_secret_users(const struct store *s, const Cs__Secret *x,
			  const Cs__Service **out, size_t out_max);
/* store_batch_secret: store_batch_node's contract, for a secret or config.
 * At apply a create fails with CS_EEXIST for a name its kind has, an update
 * with CS_EINVAL when it changes anything but labels, a delete with
 * CS_EADDRINUSE
 * while a service's spec references it; a service whose spec references a
 * missing one fails with CS_ENOENT. */
int store_batch_secret(struct store_batch *b, Cs__StoreAction__Kind kind,
		       const Cs__Secret *obj);

#endif
