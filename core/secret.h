/* secret: secrets and configs (issue 20; SwarmKit's Secret and Config, one
 * store table told apart by Secret.config). The control API's calls for
 * them (create, remove refused while a service references one, label
 * updates, finds and lists on the leader's store), the check and
 * resolution of a service spec's references (by name to id, targets,
 * limits), and what the dispatcher adds to a task it sends an agent: the
 * data of the secrets and configs the task's spec references, and nothing
 * else. Called by control.c, control_rpc.c, dockerapi (through the control
 * RPC), the dispatcher and the simulator's runner. Keeps no state; every
 * object it returns is borrowed from the store (valid until the next
 * apply) unless said otherwise. */
#ifndef CS_SECRET_H
#define CS_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/manager.h"
#include "core/store.h"

/* The default file of a reference: a secret's under /run/secrets/, a
 * config's at the root (Docker's defaults). */
#define SECRET_DIR "/run/secrets/"

/* secret_kind names the kind: "secret" or "config" (static). */
const char *secret_kind(bool config);

/* secret_create writes a new secret (or config, in->config) of in's name,
 * labels and data (borrowed), with a new id (*id). Returns 0 (cb reports
 * the commit), or CS_EINVAL (a bad name, no data; err says why), CS_ELIMIT
 * (data over LIMIT_SECRET_BYTES_MAX: err says the size and the limit),
 * CS_EEXIST (its kind has that name), CS_ENOTLEADER, CS_ENOMEM. */
int secret_create(struct manager *m, const Cs__Secret *in, uint64_t *id, char *err,
		  size_t err_size, manager_write_cb cb, void *data);

/* secret_find finds the secret (or config) ref names: its id (hex), name,
 * or a unique id prefix. 0 and *out, or CS_ENOENT (err says so),
 * CS_ENOTLEADER. */
int secret_find(struct manager *m, bool config, const char *ref, const Cs__Secret **out,
		char *err, size_t err_size);

/* secret_remove removes the secret (config) ref names; refused with
 * CS_EADDRINUSE while a service's spec references it, err naming the
 * services (SwarmKit's "secret X is in use by the following services:").
 * 0 and cb, or CS_ENOENT / CS_ENOTLEADER with err. */
int secret_remove(struct manager *m, bool config, const char *ref, char *err,
		  size_t err_size, manager_write_cb cb, void *data);

/* secret_update_labels sets the labels of add (borrowed; an existing key's
 * value replaced) and removes the keys of rm, on the secret (config) ref
 * names; expect_version 0: any, else CS_EVERSION when it differs. Only
 * labels change (SwarmKit's rule for both kinds). 0 and cb, or an error
 * with err. */
int secret_update_labels(struct manager *m, bool config, const char *ref,
			 Cs__Label *const *add, size_t n_add, char *const *rm,
			 size_t n_rm, uint64_t expect_version, char *err, size_t err_size,
			 manager_write_cb cb, void *data);

/* secret_list puts the first max secrets (or configs) of the store, in id
 * order, in out, and in *count how many there are. */
void secret_list(const struct store *st, bool config, const Cs__Secret **out, size_t max,
		 size_t *count);

/* secret_shown: what the control API shows of x, in *out (shallow: points
 * into x): a secret's data left out (SwarmKit never returns it), a
 * config's kept (as Docker's config inspect). */
void secret_shown(const Cs__Secret *x, Cs__Secret *out);

/* secret_resolve_spec checks the secret and config references of spec
 * and returns in *out a copy of spec (the caller frees it with
 * cs__service_spec__free_unpacked) whose references carry the id and name
 * of what they name (by secret_id when set, else secret_name), a target
 * (a secret's: a file name under SECRET_DIR, or an absolute path; a
 * config's: an absolute path, "" meaning /NAME) and a mode (0: 0444).
 * *out is NULL when spec has no references. Returns 0, or CS_EINVAL /
 * CS_ENOENT / CS_ELIMIT with err ("secret: no secret named 'x'", a target
 * used twice, more than LIMIT_SERVICE_SECRETS_MAX references, data over
 * LIMIT_SERVICE_SECRETS_BYTES_MAX in all), or CS_ENOMEM. */
int secret_resolve_spec(const struct store *st, const Cs__ServiceSpec *spec,
			Cs__ServiceSpec **out, char *err, size_t err_size);

/* secret_target writes into buf (size bytes) the absolute path in the
 * container of reference r (a secret's when !config): its target, or the
 * default of its name. Returns false when it does not fit. */
bool secret_target(const Cs__SecretReference *r, bool config, char *buf, size_t size);

/* secret_wire_data: the secrets and configs spec references that exist in
 * st, in reference order (secrets, then configs; one entry per distinct
 * id), in a new array of borrowed pointers the caller frees with free()
 * (*out NULL and *n 0 when none). Returns 0 or CS_ENOMEM. */
int secret_wire_data(const struct store *st, const Cs__TaskSpec *spec, Cs__Secret ***out,
		     size_t *n);

#endif
