/* control: the control API (what swarmctl and the scenario runner call on
 * the leader): create, update (with a version check), remove services;
 * update a node's availability and labels. Each call validates its input
 * (a bad field is named with what is allowed), turns it into one store
 * batch and writes it through the manager; cb reports the commit. */
#ifndef CS_CONTROL_H
#define CS_CONTROL_H

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

/* control_node_remove removes node_id from the cluster. A manager must be
 * demoted first; a node that is ready needs force (SwarmKit's rules).
 * CS_ENOENT, CS_EINVAL (err says why), or 0 and cb. */
int control_node_remove(struct manager *m, uint64_t node_id, bool force, char *err,
			size_t err_size, manager_write_cb cb, void *data);

#endif
