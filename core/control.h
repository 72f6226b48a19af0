/* control: the control API (what swarmctl and the scenario runner call on
 * the leader): create, update (with a version check), remove services;
 * update a node's availability and labels. Each call validates its input
 * (a bad field is named with what is allowed), turns it into one store
 * batch and writes it through the manager; cb reports the commit. */
#ifndef CS_CONTROL_H
#define CS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/manager.h"

/* control_validate_spec checks a service spec. Returns 0, or CS_EINVAL with
 * "field: what is wrong (what is allowed)" in err. */
int control_validate_spec(const Cs__ServiceSpec *spec, char *err, size_t err_size);

/* control_service_create creates a service from spec (borrowed) with a new
 * id (*id). Returns 0 (then cb reports the commit), or CS_EINVAL (err says
 * why), CS_EEXIST (the name is taken), CS_ENOTLEADER, CS_ENOMEM. */
int control_service_create(struct manager *m, const Cs__ServiceSpec *spec, uint64_t *id,
			   char *err, size_t err_size, manager_write_cb cb, void *data);

/* control_service_update replaces the spec of the service named `name`,
 * keeping the previous spec for rollback. expect_version 0 skips the version
 * check; else a service whose version differs gives CS_EVERSION. */
int control_service_update(struct manager *m, const char *name,
			   const Cs__ServiceSpec *spec, uint64_t expect_version,
			   char *err, size_t err_size, manager_write_cb cb, void *data);

/* control_service_rollback rolls the service named `name` back to its
 * previous spec as SwarmKit's manual rollback does: the update status
 * becomes ROLLBACK_STARTED ("manually requested rollback"), so the
 * orchestrator rolls with the rollback config; the tasks still on the
 * previous spec stay. CS_EINVAL when it has no previous spec or is a job,
 * CS_EVERSION as control_service_update. */
int control_service_rollback(struct manager *m, const char *name, uint64_t expect_version,
			     char *err, size_t err_size, manager_write_cb cb, void *data);

/* control_service_remove removes the service named name (its tasks are
 * then removed by the orchestrator). CS_ENOENT when there is none. */
int control_service_remove(struct manager *m, const char *name, char *err,
			   size_t err_size, manager_write_cb cb, void *data);

/* control_node_update changes a node: availability (when set_availability),
 * a label (key set to value; value NULL removes it). CS_ENOENT for no such
 * node. */
int control_node_update(struct manager *m, uint64_t node_id, bool set_availability,
			Cs__NodeAvailability availability, const char *label_key,
			const char *label_value, char *err, size_t err_size,
			manager_write_cb cb, void *data);

/* control_node_remove removes node_id from the cluster, as SwarmKit's
 * RemoveNode: a node wanted as a manager and in the Raft group is refused,
 * force or not (demote it first); a READY node needs force, one DOWN,
 * DISCONNECTED or UNKNOWN does not. Its tasks are then shut down and
 * deleted by the orchestrator. CS_ENOENT, CS_EINVAL (SwarmKit's
 * FailedPrecondition; err in SwarmKit's words), or 0 and cb. */
int control_node_remove(struct manager *m, uint64_t node_id, bool force, char *err,
			size_t err_size, manager_write_cb cb, void *data);

/* control_node_set_role sets the role the cluster wants node_id to have
 * (Node.desired_role). Demoting a manager also removes it from the Raft
 * group (refused when that would leave the remaining managers without a
 * quorum, or it is the last manager); the node then carries on as a worker.
 * A promoted worker restarts its daemon as a manager and joins. CS_ENOENT,
 * CS_EINVAL (err says why), CS_EAGAIN (another membership change is under
 * way), or 0 and cb. */
int control_node_set_role(struct manager *m, uint64_t node_id, Cs__NodeRole role,
			  char *err, size_t err_size, manager_write_cb cb, void *data);

/* control_cluster_rotate_token replaces the worker and/or manager join
 * token with a new random one; nodes already joined are not affected. */
int control_cluster_rotate_token(struct manager *m, bool worker, bool manager, char *err,
				 size_t err_size, manager_write_cb cb, void *data);

/* control_cluster_set_orphan_delay sets how long a node stays down before
 * the orchestrator marks its tasks ORPHANED and frees them (SwarmKit's
 * node down period; 0 restores the default of 24 h). CS_EINVAL under
 * 1 s (err says so), or 0 and cb. */
int control_cluster_set_orphan_delay(struct manager *m, uint64_t ms, char *err,
				     size_t err_size, manager_write_cb cb, void *data);

/* control_cluster_set_heartbeat sets the dispatcher's heartbeat period
 * (SwarmKit's DispatcherConfig.HeartbeatPeriod; 0 restores the manager's
 * own, 5 s by default): agents take it from their next heartbeat's
 * answer, and a node is DOWN after 3 periods of silence. CS_EINVAL under
 * LIMIT_HEARTBEAT_MS_MIN (err says so).
 * control_cluster_set_task_history sets the finished tasks a slot keeps,
 * its live one included (SwarmKit's TaskHistoryRetentionLimit; 0 restores
 * the manager's own, 5 by default). 0 and cb, or an error with err. */
int control_cluster_set_heartbeat(struct manager *m, uint64_t ms, char *err,
				  size_t err_size, manager_write_cb cb, void *data);
int control_cluster_set_task_history(struct manager *m, uint64_t n, char *err,
				     size_t err_size, manager_write_cb cb, void *data);

/* control_cluster_set_network_key_rotation sets how often the key manager
 * rotates the network keys (issue 17; 0 restores SwarmKit's 12 h).
 * CS_EINVAL under LIMIT_NET_KEY_ROTATION_MS_MIN (err says so), or 0 and
 * cb. */
int control_cluster_set_network_key_rotation(struct manager *m, uint64_t ms, char *err,
					     size_t err_size, manager_write_cb cb,
					     void *data);

/* control_cluster_rotate_network_keys rotates the network keys now
 * (issue 17; the key manager's rotation, out of its period; a first set
 * when there is none). Returns 0 and cb, or an error with err. */
int control_cluster_rotate_network_keys(struct manager *m, char *err, size_t err_size,
					manager_write_cb cb, void *data);

/* control_cluster_set_cert_expiry sets the life of the node certificates
 * the CA signs from now on (nodes renew at 50-80% of theirs: a shorter
 * life reaches every node within the old one's 80%). CS_EINVAL under
 * LIMIT_CERT_LIFE_MS_MIN (err says so), or 0 and cb. */
int control_cluster_set_cert_expiry(struct manager *m, uint64_t ms, char *err,
				    size_t err_size, manager_write_cb cb, void *data);

/* control_cluster_set_autolock turns autolock on (a new unlock key is
 * drawn and written into key, SEAL_UNLOCK_KEY_CHARS + 1 bytes: show it once)
 * or off (key ""); on when on already keeps the key (key ""). Every manager
 * then seals its Raft keys with it, and a restarted manager waits locked
 * for it. control_cluster_unlock_key writes the current key into key (""
 * when autolock is off: CS_ENOENT), or with rotate a new one (written
 * through Raft: 0 and cb). */
int control_cluster_set_autolock(struct manager *m, bool on, char *key, char *err,
				 size_t err_size, manager_write_cb cb, void *data);
int control_cluster_unlock_key(struct manager *m, bool rotate, char *key, char *err,
			       size_t err_size, manager_write_cb cb, void *data);
/* control_ca_rotate starts a root CA rotation (ca.h says how it goes on):
 * a new root, made here, written as the next one; one in progress is
 * replaced by it, as SwarmKit does. CS_ENOENT (no CA yet), or 0 and cb
 * (the rotation has started; cluster inspect shows how far it went). */
int control_ca_rotate(struct manager *m, char *err, size_t err_size, manager_write_cb cb,
		      void *data);

/* control_cluster_inspect returns the cluster record (tokens, settings). */
int control_cluster_inspect(struct manager *m, const Cs__Cluster **out, char *err,
			    size_t err_size);

/* ---------------------------------------------------------------- reads
 *
 * Reads are served by the leader, from its store (SwarmKit forwards every
 * control call to the leader; a follower's store may lag). Each returns
 * CS_ENOTLEADER on a follower. Objects returned are borrowed from the store:
 * valid until the next committed write is applied. Lists are in id order. */

/* control_service_inspect finds the service named name: 0 and *out, or
 * CS_ENOENT (err says so). */
int control_service_inspect(struct manager *m, const char *name, const Cs__Service **out,
			    char *err, size_t err_size);

/* control_service_list fills out with up to max services; *count receives
 * how many exist (may exceed max). */
int control_service_list(struct manager *m, const Cs__Service **out, size_t max,
			 size_t *count);

/* control_service_counts fills out with svc's running, desired and
 * completed task counts (svc borrowed, one of the store's; svccount.h's
 * rule, Docker's), and *nodes_down (NULL: not wanted) with the store's
 * DOWN nodes. O(log services): kept as the store applies. */
struct svccount_counts;
void control_service_counts(struct manager *m, const Cs__Service *svc,
			    struct svccount_counts *out, uint64_t *nodes_down);

/* control_task_list lists the tasks of the service named service (NULL:
 * every task), like control_service_list. CS_ENOENT for an unknown name. */
int control_task_list(struct manager *m, const char *service, const Cs__Task **out,
		      size_t max, size_t *count, char *err, size_t err_size);

/* control_task_inspect finds task id: 0 and *out, or CS_ENOENT. */
int control_task_inspect(struct manager *m, uint64_t id, const Cs__Task **out, char *err,
			 size_t err_size);

/* control_node_list lists nodes like control_service_list. */
int control_node_list(struct manager *m, const Cs__Node **out, size_t max, size_t *count);

/* control_node_inspect finds a node by id (hex) or hostname: 0 and *out,
 * or CS_ENOENT. */
int control_node_inspect(struct manager *m, const char *id_or_name, const Cs__Node **out,
			 char *err, size_t err_size);

/* ---------------------------------------------------------------- lookups
 *
 * What a person types to name a service, task or node (issue 14, Docker's
 * rules): its full id (16 hex digits), else its name (a service's name, a
 * node's hostname), else a unique prefix of its id in hex. A prefix or a
 * hostname that fits several is refused (CS_EINVAL), err naming up to
 * CONTROL_CANDIDATES_SHOWN of them; none is CS_ENOENT. On the leader only
 * (CS_ENOTLEADER); *out is borrowed as with the reads above. */
#define CONTROL_CANDIDATES_SHOWN 4u

int control_service_find(struct manager *m, const char *ref, const Cs__Service **out,
			 char *err, size_t err_size);
int control_task_find(struct manager *m, const char *ref, const Cs__Task **out, char *err,
		      size_t err_size);
int control_node_find(struct manager *m, const char *ref, const Cs__Node **out, char *err,
		      size_t err_size);

/* Values one kind of task filter may list. */
#define CONTROL_FILTER_VALUES_MAX 32u

/* Which tasks a task list shows (issue 14, Docker's `--filter`): each kind
 * given matches when any of its values does, and a task is shown when
 * every kind given matches. Everything borrowed. */
struct control_task_filter {
	const char *service; /* a service (control_service_find); NULL: any */
	char *const *nodes;  /* nodes (control_node_find): on one of them */
	size_t node_count;
	const Cs__TaskState *desired; /* desired state one of these */
	size_t desired_count;
	char *const *labels; /* "KEY" (present) or "KEY=VALUE": every one on the
				labels of the task's service (SwarmKit matches
				its ServiceAnnotations) */
	size_t label_count;
};

/* control_task_list_filtered lists the tasks f lets through, like
 * control_task_list (id order, up to max into out, *count all of them).
 * CS_ENOENT or CS_EINVAL for a service or node f names that is unknown or
 * ambiguous, CS_EINVAL for a bad label or more than
 * CONTROL_FILTER_VALUES_MAX values of a kind (err says which). */
int control_task_list_filtered(struct manager *m, const struct control_task_filter *f,
			       const Cs__Task **out, size_t max, size_t *count, char *err,
			       size_t err_size);
/* ---------------------------------------------------------------- networks (issue 15) */

/* control_network_create creates a network from spec (borrowed): its
 * subnet given or the next of the cluster's pool, a VNI when overlay; *id
 * receives its id. Returns 0 (then cb runs), CS_ENOTLEADER, or an error
 * with err (CS_EEXIST, CS_EINVAL, CS_EADDRINUSE, CS_ELIMIT). */
int control_network_create(struct manager *m, const Cs__NetworkSpec *spec, uint64_t *id,
			   char *err, size_t err_size, manager_write_cb cb, void *data);
/* control_network_remove removes network name (or hex id); refused with
 * CS_EADDRINUSE while a service names it or a task holds an address on
 * it. */
int control_network_remove(struct manager *m, const char *name, char *err,
			   size_t err_size, manager_write_cb cb, void *data);
/* control_network_inspect: 0 and *out (borrowed from the store), or
 * CS_ENOENT. */
int control_network_inspect(struct manager *m, const char *name, const Cs__Network **out,
			    char *err, size_t err_size);
/* control_network_list: like control_service_list. */
int control_network_list(struct manager *m, const Cs__Network **out, size_t max,
			 size_t *count);

#endif
