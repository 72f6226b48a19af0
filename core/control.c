/* control: validation and writes of the control API. See control.h. */
#include "core/control.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/allocator.h"
#include "core/keymanager.h"
#include "core/ca.h"
#include "core/errors.h"
#include "core/grow.h"
#include "core/orchestrator.h"
#include "core/limits.h"
#include "core/pki.h"
#include "core/seal.h"
#include "core/scheduler.h"
#include "core/secret.h"
#include "core/sort.h"
#include "core/store.h"
#include "core/svccount.h"

__attribute__((format(printf, 3, 4))) static int control_fail(char *err, size_t err_size,
							      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && err_size)
		vsnprintf(err, err_size, fmt, ap);
	va_end(ap);
	return CS_EINVAL;
}

static bool control_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > LIMIT_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr("_.-", c)))
			return false;
	}
	return true;
}

/* Jobs (SwarmKit's ReplicatedJob and GlobalJob): a replicated job's
 * max_concurrent, no update or rollback config (SwarmKit: "Jobs may not
 * have an update config"; an update of a job reruns it). */
static int control_validate_job(const Cs__ServiceSpec *spec, char *err, size_t err_size)
{
	if (!spec->job && spec->max_concurrent)
		return control_fail(err, err_size,
				    "max-concurrent: only a replicated job has one");
	if (!spec->job)
		return 0;
	if (spec->global && spec->max_concurrent)
		return control_fail(err, err_size,
				    "max-concurrent: a global job runs one task on every "
				    "node");
	if (spec->update || spec->rollback)
		return control_fail(err, err_size,
				    "update: a job has no update or rollback config (an "
				    "update of a job runs it again)");
	return 0;
}

/* Rebalancing (issue 20, core/rebalancer.c) spreads a replicated service's
 * slots: a global service has one task per node, a job's tasks end. */
static int control_validate_rebalance(const Cs__ServiceSpec *spec, char *err,
				      size_t err_size)
{
	if (!spec->rebalance && spec->rebalance_parallelism)
		return control_fail(err, err_size,
				    "rebalance-parallelism: only with --rebalance");
	if (spec->rebalance && (spec->global || spec->job))
		return control_fail(
			err, err_size,
			"rebalance: only a replicated service (not global, not "
			"a job) is rebalanced");
	return 0;
}

/* A service update between a job and a service, or of a job: refused, or
 * the job's next iteration in *js (svc points at it). */
static int control_update_job(const Cs__Service *cur, const Cs__ServiceSpec *spec,
			      Cs__Service *svc, Cs__JobStatus *js, char *err,
			      size_t err_size)
{
	if (spec->job != cur->spec->job)
		return control_fail(err, err_size,
				    "mode: a service cannot change between a job and a "
				    "service (remove it and create it again)");
	if (!spec->job)
		return 0;
	/* every update of a job is a rerun (SwarmKit's JobIteration) */
	js->job_iteration = (cur->job_status ? cur->job_status->job_iteration : 0) + 1;
	svc->job_status = js;
	return 0;
}

int control_validate_spec(const Cs__ServiceSpec *spec, char *err, size_t err_size)
{
	const Cs__TaskSpec *t = spec->task;

	if (!control_name_ok(spec->name))
		return control_fail(
			err, err_size,
			"name: '%s' is not a valid name (1 to %u letters, digits, '_', "
			"'.' or '-', starting with a letter or digit)",
			spec->name ? spec->name : "", LIMIT_NAME_BYTES_MAX);
	if (spec->global && spec->replicas)
		return control_fail(err, err_size,
				    "replicas: a global service has no replica count");
	if (spec->replicas > LIMIT_SCN_REPLICAS_MAX)
		return control_fail(
			err, err_size, "replicas: %llu is over the limit of %u",
			(unsigned long long)spec->replicas, LIMIT_SCN_REPLICAS_MAX);
	if (t && t->placement) {
		for (size_t i = 0; i < t->placement->n_constraints; i++)
			if (!sched_constraint_is_valid(t->placement->constraints[i]))
				return control_fail(
					err, err_size,
					"constraint: '%s' is not a constraint (expected node.id, "
					"node.hostname, node.role, node.labels.KEY, "
					"node.platform.os, node.platform.arch, engine.labels.KEY "
					"or node.ip, then == or !=, then a value)",
					t->placement->constraints[i]);
	}
	if (t && t->restart &&
	    t->restart->condition > CS__RESTART_POLICY__CONDITION__CONDITION_NONE)
		return control_fail(
			err, err_size,
			"restart-condition: unknown (expected any, on-failure or none)");
	if (cs__service_spec__get_packed_size(spec) > LIMIT_SPEC_BYTES_MAX)
		return control_fail(err, err_size,
				    "spec: %zu bytes encoded, over the limit of %u (env, "
				    "command and labels together)",
				    cs__service_spec__get_packed_size(spec),
				    LIMIT_SPEC_BYTES_MAX);
	if (spec->update && spec->update->max_failure_ratio_ppm > 1000000)
		return control_fail(err, err_size,
				    "update-max-failure-ratio: over 1 (expected 0 to 1)");
	return control_validate_rebalance(spec, err, err_size)
		       ? CS_EINVAL
		       : control_validate_job(spec, err, err_size);
}

/* Whether two task specs differ, byte for byte in their encoding. */
static bool control_task_spec_differs(const Cs__TaskSpec *a, const Cs__TaskSpec *b)
{
	size_t la, lb;
	uint8_t *pa, *pb;
	bool differ;

	if (!a || !b)
		return a != b;
	la = cs__task_spec__get_packed_size(a);
	lb = cs__task_spec__get_packed_size(b);
	if (la != lb)
		return true;
	pa = malloc(la ? la : 1);
	pb = malloc(lb ? lb : 1);
	if (!pa || !pb) {
		free(pa);
		free(pb);
		return true; /* when in doubt, update */
	}
	cs__task_spec__pack(a, pa);
	cs__task_spec__pack(b, pb);
	differ = memcmp(pa, pb, la) != 0;
	free(pa);
	free(pb);
	return differ;
}

/* Whether two task specs differ in more than their placement (constraints,
 * spread, max per node): SwarmKit's IsTaskDirty leaves a task whose spec
 * changed in placement only, on a node that still qualifies. */
static bool control_task_spec_differs_beyond_placement(const Cs__TaskSpec *a,
						       const Cs__TaskSpec *b)
{
	Cs__TaskSpec ca, cb;

	if (!a || !b)
		return a != b;
	ca = *a;
	cb = *b;
	ca.placement = NULL;
	cb.placement = NULL;
	return control_task_spec_differs(&ca, &cb);
}

static int control_write(struct manager *m, struct store_batch *b, manager_write_cb cb,
			 void *data);

/* ---------------------------------------------------------------- networks (issue 15) */

/* Whether a service's networks or endpoint differ (a rolling update, as a
 * change of its task spec: SwarmKit's tasks carry both). */
static bool control_net_spec_differs(const Cs__ServiceSpec *a, const Cs__ServiceSpec *b)
{
	Cs__ServiceSpec x = CS__SERVICE_SPEC__INIT, y = CS__SERVICE_SPEC__INIT;
	uint8_t small[2][512];
	size_t lx, ly;
	bool differ;

	x.n_networks = a->n_networks;
	x.networks = a->networks;
	x.endpoint = a->endpoint;
	y.n_networks = b->n_networks;
	y.networks = b->networks;
	y.endpoint = b->endpoint;
	lx = cs__service_spec__get_packed_size(&x);
	ly = cs__service_spec__get_packed_size(&y);
	if (lx != ly)
		return true;
	if (lx > sizeof small[0])
		return true; /* too long to compare here: treat as changed */
	cs__service_spec__pack(&x, small[0]);
	cs__service_spec__pack(&y, small[1]);
	differ = memcmp(small[0], small[1], lx) != 0;
	return differ;
}

/* A service spec's networks exist and its ports are free (self_id's own
 * are fine): 0, or an error with err. */
static int control_validate_net(const struct store *st, const Cs__ServiceSpec *spec,
				uint64_t self_id, char *err, size_t err_size)
{
	if (spec->n_networks > LIMIT_SERVICE_NETWORKS_MAX)
		return control_fail(err, err_size, "network: more than %u networks",
				    LIMIT_SERVICE_NETWORKS_MAX);
	for (size_t i = 0; i < spec->n_networks; i++) {
		const char *target = spec->networks[i]->target;
		if (!target || !store_network_by_name(st, target)) {
			snprintf(err, err_size, "network: no network named '%s'",
				 target ? target : "");
			return CS_ENOENT;
		}
	}
	if (spec->endpoint && spec->endpoint->mode > CS__ENDPOINT_SPEC__MODE__MODE_DNSRR)
		return control_fail(err, err_size,
				    "endpoint-mode: expected vip or dnsrr");
	return alloc_check_ports(st, spec, self_id, err, err_size);
}

/* A network create in flight. A subnet or VNI drawn from the pool may be
 * drawn by another create in flight too: the store refuses the later one
 * at apply (CS_EADDRINUSE), and the create draws again against the store
 * that now holds the first, up to CONTROL_NET_DRAWS times in all. */
#define CONTROL_NET_DRAWS 4

struct control_net_create {
	struct manager *m;
	uint8_t *spec; /* packed NetworkSpec */
	size_t spec_len;
	uint64_t id;
	unsigned draws;
	manager_write_cb cb;
	void *data;
};

/* Prepares and proposes c's network. Returns 0 (then control_net_written
 * runs), or an error with err. */
static int control_net_propose(struct control_net_create *c, char *err, size_t err_size);

static void control_net_written(void *data, int status)
{
	struct control_net_create *c = data;
	char err[160];

	if (status == CS_EADDRINUSE && c->draws < CONTROL_NET_DRAWS &&
	    manager_serves(c->m) && control_net_propose(c, err, sizeof err) == 0)
		return;
	c->cb(c->data, status);
	free(c->spec);
	free(c);
}

static int control_net_propose(struct control_net_create *c, char *err, size_t err_size)
{
	Cs__NetworkSpec *spec = cs__network_spec__unpack(NULL, c->spec_len, c->spec);
	Cs__Network net = CS__NETWORK__INIT;
	char bufs[2][20];
	struct store_batch b;
	int rv;

	if (!spec)
		return CS_ENOMEM;
	net.id = c->id;
	rv = alloc_network_prepare(manager_store(c->m), spec, &net, bufs, err, err_size);
	if (rv == 0) {
		store_batch_init(&b);
		rv = store_batch_network(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &net);
		if (rv)
			store_batch_free(&b);
		else
			rv = control_write(c->m, &b, control_net_written, c);
	}
	cs__network_spec__free_unpacked(spec, NULL);
	c->draws++;
	return rv;
}

int control_network_create(struct manager *m, const Cs__NetworkSpec *spec, uint64_t *id,
			   char *err, size_t err_size, manager_write_cb cb, void *data)
{
	struct control_net_create *c;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (!control_name_ok(spec->name))
		return control_fail(err, err_size, "name: '%s' is not a valid name",
				    spec->name ? spec->name : "");
	if (spec->ingress && spec->encrypted)
		return control_fail(err, err_size,
				    "encrypted: the ingress network (the routing mesh's) "
				    "cannot be encrypted");
	if (spec->ingress)
		return control_fail(err, err_size,
				    "ingress: the cluster has its ingress network");
	/* issue 17: SwarmKit encrypts overlays only (IPsec between nodes) */
	if (spec->encrypted && spec->driver && spec->driver[0] &&
	    strcmp(spec->driver, "overlay") != 0)
		return control_fail(err, err_size,
				    "encrypted: only an overlay network can be encrypted "
				    "(driver %s)",
				    spec->driver);
	c = calloc(1, sizeof *c);
	if (!c)
		return CS_ENOMEM;
	c->m = m;
	c->id = manager_random(m) | 1;
	c->cb = cb;
	c->data = data;
	c->spec_len = cs__network_spec__get_packed_size(spec);
	c->spec = malloc(c->spec_len ? c->spec_len : 1);
	if (!c->spec) {
		free(c);
		return CS_ENOMEM;
	}
	cs__network_spec__pack(spec, c->spec);
	rv = control_net_propose(c, err, err_size);
	if (rv) {
		free(c->spec);
		free(c);
		return rv;
	}
	*id = c->id;
	return 0;
}

/* The network named name, or with id name (hex). */
static const Cs__Network *control_network_find(const struct store *st, const char *name)
{
	const Cs__Network *n = store_network_by_name(st, name);
	char *end;
	unsigned long long id;
	if (n || !name || !name[0])
		return n;
	id = strtoull(name, &end, 16);
	return *end == 0 ? store_network_get(st, id) : NULL;
}

int control_network_remove(struct manager *m, const char *name, char *err,
			   size_t err_size, manager_write_cb cb, void *data)
{
	const struct store *st = manager_store(m);
	const Cs__Network *n;
	const Cs__Service *user;
	struct store_batch b;
	size_t users;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	n = control_network_find(st, name);
	if (!n) {
		snprintf(err, err_size, "no network named '%s'", name);
		return CS_ENOENT;
	}
	users = alloc_network_users(st, n, &user);
	if (users > 0) {
		if (user)
			snprintf(err, err_size,
				 "network %s is in use by service %s (%zu users)",
				 n->spec->name, user->spec->name, users);
		else
			snprintf(err, err_size,
				 "network %s is in use by %zu tasks not yet stopped",
				 n->spec->name, users);
		return CS_EADDRINUSE;
	}
	store_batch_init(&b);
	if ((rv = store_batch_network(&b, CS__STORE_ACTION__KIND__KIND_DELETE, n))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

int control_network_inspect(struct manager *m, const char *name, const Cs__Network **out,
			    char *err, size_t err_size)
{
	*out = control_network_find(manager_store(m), name);
	if (!*out) {
		snprintf(err, err_size, "no network named '%s'", name);
		return CS_ENOENT;
	}
	return 0;
}

int control_network_list(struct manager *m, const Cs__Network **out, size_t max,
			 size_t *count)
{
	const struct store *st = manager_store(m);
	size_t n = 0;
	for (const Cs__Network *net = store_network_next(st, NULL); net && n < max;
	     net = store_network_next(st, net))
		out[n++] = net;
	*count = store_network_count(st);
	return 0;
}

/* Writes one batch; takes b. */
static int control_write(struct manager *m, struct store_batch *b, manager_write_cb cb,
			 void *data)
{
	uint8_t *buf;
	size_t len;
	int rv = store_batch_encode(b, 0, 0, &buf, &len);
	store_batch_free(b);
	if (rv)
		return rv;
	rv = manager_write(m, buf, len, cb, data);
	free(buf);
	return rv;
}

int control_service_create(struct manager *m, const Cs__ServiceSpec *spec, uint64_t *id,
			   char *err, size_t err_size, manager_write_cb cb, void *data)
{
	const struct store *st = manager_store(m);
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__JobStatus js = CS__JOB_STATUS__INIT;
	Cs__ServiceSpec *resolved = NULL;
	struct store_batch b;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if ((rv = control_validate_spec(spec, err, err_size)))
		return rv;
	if (spec->job)
		svc.job_status = &js; /* its first run, iteration 0 */
	if (store_service_by_name(st, spec->name)) {
		snprintf(err, err_size, "name: a service named '%s' exists", spec->name);
		return CS_EEXIST;
	}
	if ((rv = control_validate_net(st, spec, 0, err, err_size)))
		return rv;
	/* issue 20: its secrets and configs, by id (the copy, when any) */
	if ((rv = secret_resolve_spec(st, spec, &resolved, err, err_size)))
		return rv;
	svc.id = manager_random(m) | 1;
	svc.spec = resolved ? resolved : (Cs__ServiceSpec *)spec;
	svc.spec_version = 1;
	store_batch_init(&b);
	rv = store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc);
	if (resolved)
		cs__service_spec__free_unpacked(resolved, NULL);
	if (rv) {
		store_batch_free(&b);
		return rv;
	}
	*id = svc.id;
	return control_write(m, &b, cb, data);
}

/* The service named name, on the leader, at expect_version (0: any): 0 and
 * *cur, or CS_ENOTLEADER, CS_ENOENT, CS_EVERSION with err. */
static int control_service_cur(struct manager *m, const char *name,
			       uint64_t expect_version, const Cs__Service **cur,
			       char *err, size_t err_size)
{
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	*cur = store_service_by_name(manager_store(m), name);
	if (!*cur) {
		snprintf(err, err_size, "no service named '%s'", name);
		return CS_ENOENT;
	}
	if (expect_version && (*cur)->version != expect_version) {
		snprintf(err, err_size, "service '%s' is at version %llu, not %llu", name,
			 (unsigned long long)(*cur)->version,
			 (unsigned long long)expect_version);
		return CS_EVERSION;
	}
	return 0;
}

static int control_service_update_resolved(struct manager *m, const char *name,
					   const Cs__Service *cur,
					   const Cs__ServiceSpec *spec, char *err,
					   size_t err_size, manager_write_cb cb,
					   void *data);

int control_service_update(struct manager *m, const char *name,
			   const Cs__ServiceSpec *spec, uint64_t expect_version,
			   char *err, size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Service *cur;
	Cs__ServiceSpec *resolved = NULL;
	int rv;

	if ((rv = control_service_cur(m, name, expect_version, &cur, err, err_size)))
		return rv;
	if ((rv = control_validate_spec(spec, err, err_size)))
		return rv;
	/* issue 20: its secrets and configs, by id (the copy, when any): a
	 * changed reference is a change of the task spec, a rolling update */
	if ((rv = secret_resolve_spec(manager_store(m), spec, &resolved, err, err_size)))
		return rv;
	if (resolved)
		spec = resolved;
	rv = control_service_update_resolved(m, name, cur, spec, err, err_size, cb, data);
	if (resolved)
		cs__service_spec__free_unpacked(resolved, NULL);
	return rv;
}

/* control_service_update once spec's references are resolved. */
static int control_service_update_resolved(struct manager *m, const char *name,
					   const Cs__Service *cur,
					   const Cs__ServiceSpec *spec, char *err,
					   size_t err_size, manager_write_cb cb,
					   void *data)
{
	Cs__Service svc;
	Cs__JobStatus js = CS__JOB_STATUS__INIT;
	struct store_batch b;
	int rv;

	if (strcmp(spec->name, name) != 0)
		return control_fail(err, err_size, "name: a service cannot be renamed");
	if (spec->global != cur->spec->global)
		return control_fail(
			err, err_size,
			"mode: a service cannot change between replicated and global");
	if ((rv = control_validate_net(manager_store(m), spec, cur->id, err, err_size)))
		return rv;
	svc = *cur;
	if ((rv = control_update_job(cur, spec, &svc, &js, err, err_size)))
		return rv;
	svc.previous_spec = cur->spec;
	svc.spec = (Cs__ServiceSpec *)spec;
	/* only a change of what a task runs makes tasks outdated (a rolling
	 * update); replicas or update settings do not (SwarmKit's rule) */
	svc.previous_spec_version = cur->spec_version;
	svc.spec_version_restored = 0;
	if (control_task_spec_differs(cur->spec->task, spec->task) ||
	    control_net_spec_differs(cur->spec, spec)) {
		svc.spec_version = cur->spec_version + 1;
		/* a change of placement only outdates no task whose node
		 * still qualifies: the base is the oldest version whose spec
		 * is this one but for placement */
		if (control_net_spec_differs(cur->spec, spec) ||
		    control_task_spec_differs_beyond_placement(cur->spec->task,
							       spec->task))
			svc.placement_base_version = 0;
		else if (!cur->placement_base_version)
			svc.placement_base_version = cur->spec_version;
	}
	/* any update ends a paused or finished update: SwarmKit's
	 * UpdateService sets UpdateStatus to nil on every update that is not
	 * a rollback (controlapi/service.go), so a paused update resumes */
	svc.update_status = NULL;
	store_batch_init(&b);
	if ((rv = store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &svc))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

int control_service_rollback(struct manager *m, const char *name, uint64_t expect_version,
			     char *err, size_t err_size, manager_write_cb cb, void *data)
{
	Cs__UpdateStatus us = CS__UPDATE_STATUS__INIT;
	const Cs__Service *cur;
	struct store_batch b;
	Cs__Service svc;
	int rv;

	if ((rv = control_service_cur(m, name, expect_version, &cur, err, err_size)))
		return rv;
	if (!cur->previous_spec)
		return control_fail(err, err_size,
				    "service %s has no previous spec to roll back to",
				    name);
	if (cur->spec->job)
		return control_fail(err, err_size,
				    "service %s is a job: update it to run it again",
				    name);
	/* as the orchestrator's own rollback (an update's failure action) */
	svc = *cur;
	orchestrator_rollback_spec(cur, &svc);
	us.state = CS__UPDATE_STATUS__STATE__STATE_ROLLBACK_STARTED;
	us.message = "manually requested rollback";
	svc.update_status = &us;
	store_batch_init(&b);
	if ((rv = store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &svc))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

int control_service_remove(struct manager *m, const char *name, char *err,
			   size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Service *cur;
	struct store_batch b;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	cur = store_service_by_name(manager_store(m), name);
	if (!cur) {
		snprintf(err, err_size, "no service named '%s'", name);
		return CS_ENOENT;
	}
	store_batch_init(&b);
	if ((rv = store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_DELETE, cur))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

/* The node a node call is about, on the leader: 0, CS_ENOTLEADER, or
 * CS_ENOENT with err saying so. */
static int control_node_get(struct manager *m, uint64_t node_id, const Cs__Node **out,
			    char *err, size_t err_size)
{
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	*out = store_node_get(manager_store(m), node_id);
	if (!*out) {
		snprintf(err, err_size, "no node %016llx", (unsigned long long)node_id);
		return CS_ENOENT;
	}
	return 0;
}

int control_node_update(struct manager *m, uint64_t node_id, bool set_availability,
			Cs__NodeAvailability availability, const char *label_key,
			const char *label_value, char *err, size_t err_size,
			manager_write_cb cb, void *data)
{
	const Cs__Node *cur;
	Cs__Node n;
	Cs__Label *labels = NULL, **ptrs = NULL;
	struct store_batch b;
	size_t count = 0;
	int rv;

	if ((rv = control_node_get(m, node_id, &cur, err, err_size)) != 0)
		return rv;
	n = *cur;
	if (set_availability)
		n.availability = availability;
	if (label_key) {
		if (!*label_key || strlen(label_key) > LIMIT_NAME_BYTES_MAX)
			return control_fail(err, err_size, "label: bad key '%s'",
					    label_key);
		labels = calloc(cur->n_labels + 1, sizeof *labels);
		ptrs = calloc(cur->n_labels + 1, sizeof *ptrs);
		if (!labels || !ptrs) {
			free(labels);
			free(ptrs);
			return CS_ENOMEM;
		}
		for (size_t i = 0; i < cur->n_labels; i++)
			if (strcmp(cur->labels[i]->key, label_key) != 0)
				ptrs[count++] = cur->labels[i];
		if (label_value) {
			cs__label__init(&labels[0]);
			labels[0].key = (char *)label_key;
			labels[0].value = (char *)label_value;
			ptrs[count++] = &labels[0];
		}
		n.n_labels = count;
		n.labels = ptrs;
	}
	store_batch_init(&b);
	rv = store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &n);
	free(labels);
	free(ptrs);
	if (rv) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

/* Adds to b the cluster record with node_id among the removed nodes (kept
 * ascending), so that its agent cannot register again. Returns 0 or an
 * error of store_batch_cluster. */
static int control_note_removed(struct manager *m, struct store_batch *b,
				uint64_t node_id)
{
	const Cs__Cluster *cur = store_cluster(manager_store(m));
	Cs__Cluster c;
	uint64_t *ids;
	size_t n, i = 0;
	int rv;

	if (!cur)
		return 0;
	n = cur->n_removed_nodes;
	ids = malloc((n + 1) * sizeof *ids);
	if (!ids)
		return CS_ENOMEM;
	while (i < n && cur->removed_nodes[i] < node_id) {
		ids[i] = cur->removed_nodes[i];
		i++;
	}
	ids[i] = node_id;
	if (n)
		memcpy(ids + i + 1, cur->removed_nodes + i, (n - i) * sizeof *ids);
	c = *cur;
	c.removed_nodes = ids;
	c.n_removed_nodes = n + 1;
	rv = store_batch_cluster(b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c);
	free(ids);
	return rv;
}

int control_node_remove(struct manager *m, uint64_t node_id, bool force, char *err,
			size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Node *cur;
	struct store_batch b;
	int rv;

	if ((rv = control_node_get(m, node_id, &cur, err, err_size)) != 0)
		return rv;
	/* SwarmKit's RemoveNode (controlapi/node.go), its FailedPrecondition
	 * answered as CS_EINVAL (a 400, as moby maps it): a node the cluster
	 * wants as a manager and that the Raft configuration names is refused,
	 * force or not; force never touches Raft membership. A demoted
	 * manager that left the Raft group is a worker to the cluster, though
	 * its record says manager until the node itself renews: never, when
	 * it is dead. One the configuration does not name (lost, then
	 * force-new-cluster or a restore, issue 20) is removed as it is. */
	if (cur->desired_role != CS__NODE_ROLE__NODE_ROLE_WORKER &&
	    (manager_member_addr(m, cur->id) ||
	     (cur->manager_status && cur->manager_status->raft_id &&
	      manager_member_addr(m, cur->manager_status->raft_id))))
		return control_fail(err, err_size,
				    "node %s is a cluster manager and is a member of "
				    "the raft cluster. It must be demoted to worker "
				    "before removal",
				    cur->hostname);
	/* a demoted node still leaving the Raft group goes too, as in
	 * SwarmKit (its integration tests demote, then remove at once): the
	 * leader's role reconciler then removes the member of a removed node
	 * (manager_evict_removed) */
	/* SwarmKit's words, and its test: READY needs force; DOWN,
	 * DISCONNECTED and UNKNOWN do not */
	if (cur->state == CS__NODE_STATE__NODE_STATE_READY && !force)
		return control_fail(err, err_size,
				    "node %s is not down and can't be removed",
				    cur->hostname);
	store_batch_init(&b);
	if ((rv = store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_DELETE, cur)) ||
	    (rv = control_note_removed(m, &b, cur->id))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

/* ---------------------------------------------------------------- reads */

int control_service_inspect(struct manager *m, const char *name, const Cs__Service **out,
			    char *err, size_t err_size)
{
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	*out = store_service_by_name(manager_store(m), name);
	if (*out)
		return 0;
	snprintf(err, err_size, "no service named '%s'", name);
	return CS_ENOENT;
}

int control_service_list(struct manager *m, const Cs__Service **out, size_t max,
			 size_t *count)
{
	const struct store *st = manager_store(m);
	size_t n = 0;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	for (const Cs__Service *s = store_service_next(st, NULL); s;
	     s = store_service_next(st, s)) {
		if (n < max)
			out[n] = s;
		n++;
	}
	*count = n;
	return 0;
}

void control_service_counts(struct manager *m, const Cs__Service *svc,
			    struct svccount_counts *out, uint64_t *nodes_down)
{
	const struct svccount *c = store_svccount(manager_store(m));

	assert(svc != NULL);
	assert(store_service_get(manager_store(m), svc->id) == svc);
	svccount_service(c, svc, out);
	if (nodes_down)
		*nodes_down = c->nodes_down;
}

int control_task_list(struct manager *m, const char *service, const Cs__Task **out,
		      size_t max, size_t *count, char *err, size_t err_size)
{
	const struct store *st = manager_store(m);
	const Cs__Service *svc = NULL;
	size_t n = 0;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (service) {
		svc = store_service_by_name(st, service);
		if (!svc) {
			snprintf(err, err_size, "no service named '%s'", service);
			return CS_ENOENT;
		}
	}
	for (const Cs__Task *t = store_task_next(st, NULL); t;
	     t = store_task_next(st, t)) {
		if (svc && t->service_id != svc->id)
			continue;
		if (n < max)
			out[n] = t;
		n++;
	}
	*count = n;
	return 0;
}

int control_task_inspect(struct manager *m, uint64_t id, const Cs__Task **out, char *err,
			 size_t err_size)
{
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	*out = store_task_get(manager_store(m), id);
	if (*out)
		return 0;
	snprintf(err, err_size, "no task %016llx", (unsigned long long)id);
	return CS_ENOENT;
}

int control_node_list(struct manager *m, const Cs__Node **out, size_t max, size_t *count)
{
	const struct store *st = manager_store(m);
	size_t n = 0;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	for (const Cs__Node *node = store_node_next(st, NULL); node;
	     node = store_node_next(st, node)) {
		if (n < max)
			out[n] = node;
		n++;
	}
	*count = n;
	return 0;
}

int control_node_inspect(struct manager *m, const char *id_or_name, const Cs__Node **out,
			 char *err, size_t err_size)
{
	const struct store *st = manager_store(m);
	char *end;
	unsigned long long id;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	id = strtoull(id_or_name, &end, 16);
	*out = *id_or_name && !*end ? store_node_get(st, id) : NULL;
	for (const Cs__Node *n = store_node_next(st, NULL); n && !*out;
	     n = store_node_next(st, n))
		if (n->hostname && strcmp(n->hostname, id_or_name) == 0)
			*out = n;
	if (*out)
		return 0;
	snprintf(err, err_size, "no node '%s'", id_or_name);
	return CS_ENOENT;
}

/* Whether the managers left after removing raft id `gone` still form a
 * quorum of reachable managers (their nodes ready, or this leader). */
static bool control_quorum_after(struct manager *m, uint64_t gone)
{
	const struct store *st = manager_store(m);
	uint64_t ids[LIMIT_MANAGERS_MAX];
	size_t n = manager_voters(m, ids, LIMIT_MANAGERS_MAX), left = 0, up = 0;

	for (size_t i = 0; i < n && i < LIMIT_MANAGERS_MAX; i++) {
		const Cs__Node *node = NULL;
		if (ids[i] == gone)
			continue;
		left++;
		if (ids[i] == manager_raft_id(m)) {
			up++;
			continue;
		}
		while ((node = store_node_next(st, node)) != NULL)
			if (node->manager_status &&
			    node->manager_status->raft_id == ids[i])
				break;
		if (node && node->state == CS__NODE_STATE__NODE_STATE_READY)
			up++;
	}
	return left > 0 && up >= left / 2 + 1;
}

int control_node_set_role(struct manager *m, uint64_t node_id, Cs__NodeRole role,
			  char *err, size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Node *cur;
	struct store_batch b;
	Cs__Node n;
	int rv;

	if ((rv = control_node_get(m, node_id, &cur, err, err_size)) != 0)
		return rv;
	if (role != CS__NODE_ROLE__NODE_ROLE_MANAGER &&
	    role != CS__NODE_ROLE__NODE_ROLE_WORKER)
		return control_fail(err, err_size,
				    "role: unknown (expected manager or worker)");
	if (cur->desired_role == role) {
		/* nothing to change: answer as a write would, not inside the call */
		store_batch_init(&b);
		n = *cur;
		if ((rv = store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_UPDATE,
					   &n))) {
			store_batch_free(&b);
			return rv;
		}
		return control_write(m, &b, cb, data);
	}
	if (role == CS__NODE_ROLE__NODE_ROLE_WORKER && cur->manager_status &&
	    cur->manager_status->raft_id) {
		uint64_t ids[LIMIT_MANAGERS_MAX];
		size_t voters = manager_voters(m, ids, LIMIT_MANAGERS_MAX);
		bool member = false;
		for (size_t i = 0; i < voters && i < LIMIT_MANAGERS_MAX; i++)
			member = member || ids[i] == cur->manager_status->raft_id;
		/* a manager the configuration no longer names (lost, then
		 * force-new-cluster or a restore, issue 20) costs no quorum */
		if (member && voters <= 1)
			return control_fail(
				err, err_size,
				"node %s is the last manager: promote another "
				"node before demoting it",
				cur->hostname);
		if (!control_quorum_after(m, cur->manager_status->raft_id))
			return control_fail(err, err_size,
					    "demoting node %s would leave the managers "
					    "without a quorum of reachable members",
					    cur->hostname);
	}
	n = *cur;
	n.desired_role = role;
	store_batch_init(&b);
	if ((rv = store_batch_node(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &n))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

/* The cluster record a cluster operation reads or changes: 0 and *cur,
 * CS_ENOTLEADER, or CS_ENOENT (err says so). */
static int control_cluster_cur(struct manager *m, const Cs__Cluster **cur, char *err,
			       size_t err_size)
{
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	*cur = store_cluster(manager_store(m));
	if (!*cur) {
		snprintf(err, err_size, "the cluster has no record yet");
		return CS_ENOENT;
	}
	return 0;
}

int control_cluster_rotate_token(struct manager *m, bool worker, bool manager, char *err,
				 size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Cluster *cur;
	char wt[PKI_TOKEN_BYTES], mt[PKI_TOKEN_BYTES];
	uint8_t root[ENV_DIGEST_BYTES];
	struct env *env = manager_env(m);
	struct store_batch b;
	Cs__Cluster c;
	int rv;

	if ((rv = control_cluster_cur(m, &cur, err, err_size)) != 0)
		return rv;
	if (!worker && !manager)
		return control_fail(err, err_size,
				    "rotate-token: say which (worker, manager or both)");
	c = *cur;
	/* a new secret; the digest still names the cluster's root */
	pki_digest(cur->ca_cert.data, cur->ca_cert.len, root);
	if (worker) {
		pki_token_new(env, root, wt);
		c.worker_token = wt;
	}
	if (manager) {
		pki_token_new(env, root, mt);
		c.manager_token = mt;
	}
	store_batch_init(&b);
	if ((rv = store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

/* The cluster settings one call changes (control_cluster_settings_write). */
enum control_setting {
	CONTROL_SET_CERT_EXPIRY,
	CONTROL_SET_ORPHAN_DELAY,
	CONTROL_SET_NET_KEY_ROTATION, /* issue 17 */
	CONTROL_SET_HEARTBEAT,
	CONTROL_SET_TASK_HISTORY
};

/* Writes the cluster record with one setting changed to ms. Returns 0
 * (then cb runs) or an error with err. */
static int control_cluster_settings_write(struct manager *m, enum control_setting which,
					  uint64_t ms, char *err, size_t err_size,
					  manager_write_cb cb, void *data)
{
	Cs__ClusterSettings settings = CS__CLUSTER_SETTINGS__INIT;
	const Cs__Cluster *cur;
	struct store_batch b;
	Cs__Cluster c;
	int rv;

	if ((rv = control_cluster_cur(m, &cur, err, err_size)) != 0)
		return rv;
	c = *cur;
	if (cur->settings)
		settings = *cur->settings;
	if (which == CONTROL_SET_CERT_EXPIRY)
		settings.cert_expiry_ms = ms;
	else if (which == CONTROL_SET_NET_KEY_ROTATION)
		settings.network_key_rotation_ms = ms;
	else if (which == CONTROL_SET_HEARTBEAT)
		settings.dispatcher_heartbeat_ms = ms;
	else if (which == CONTROL_SET_TASK_HISTORY)
		settings.task_history = ms;
	else
		settings.orphan_delay_ms = ms;
	c.settings = &settings;
	store_batch_init(&b);
	if ((rv = store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

int control_cluster_set_cert_expiry(struct manager *m, uint64_t ms, char *err,
				    size_t err_size, manager_write_cb cb, void *data)
{
	if (ms < LIMIT_CERT_LIFE_MS_MIN)
		return control_fail(
			err, err_size,
			"cert-expiry: %llu ms is under the minimum of %llu ms",
			(unsigned long long)ms,
			(unsigned long long)LIMIT_CERT_LIFE_MS_MIN);
	return control_cluster_settings_write(m, CONTROL_SET_CERT_EXPIRY, ms, err,
					      err_size, cb, data);
}

int control_cluster_set_heartbeat(struct manager *m, uint64_t ms, char *err,
				  size_t err_size, manager_write_cb cb, void *data)
{
	/* SwarmKit's validateClusterSpec refuses a negative period, which a
	 * count of ms cannot be; cswarm has a floor (LIMIT_HEARTBEAT_MS_MIN) */
	if (ms != 0 && ms < LIMIT_HEARTBEAT_MS_MIN)
		return control_fail(
			err, err_size,
			"dispatcher-heartbeat: %llu ms is under the minimum of %llu ms",
			(unsigned long long)ms,
			(unsigned long long)LIMIT_HEARTBEAT_MS_MIN);
	return control_cluster_settings_write(m, CONTROL_SET_HEARTBEAT, ms, err, err_size,
					      cb, data);
}

int control_cluster_set_task_history(struct manager *m, uint64_t n, char *err,
				     size_t err_size, manager_write_cb cb, void *data)
{
	return control_cluster_settings_write(m, CONTROL_SET_TASK_HISTORY, n, err,
					      err_size, cb, data);
}

int control_cluster_set_network_key_rotation(struct manager *m, uint64_t ms, char *err,
					     size_t err_size, manager_write_cb cb,
					     void *data)
{
	if (ms != 0 && ms < LIMIT_NET_KEY_ROTATION_MS_MIN)
		return control_fail(
			err, err_size,
			"network-key-rotation: %llu ms is under the minimum of %llu ms",
			(unsigned long long)ms,
			(unsigned long long)LIMIT_NET_KEY_ROTATION_MS_MIN);
	return control_cluster_settings_write(m, CONTROL_SET_NET_KEY_ROTATION, ms, err,
					      err_size, cb, data);
}

int control_cluster_rotate_network_keys(struct manager *m, char *err, size_t err_size,
					manager_write_cb cb, void *data)
{
	const Cs__Cluster *cur;
	struct keymgr_keys next;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	if ((rv = control_cluster_cur(m, &cur, err, err_size)) != 0)
		return rv;
	keymgr_next(manager_env(m), cur, &next);
	rv = keymgr_batch(cur, &next, 0, &buf, &len);
	keymgr_keys_wipe(&next);
	if (rv)
		return rv;
	rv = manager_write(m, buf, len, cb, data);
	seal_wipe(buf, len);
	free(buf);
	return rv;
}

int control_cluster_set_orphan_delay(struct manager *m, uint64_t ms, char *err,
				     size_t err_size, manager_write_cb cb, void *data)
{
	if (ms != 0 && ms < 1000)
		return control_fail(err, err_size,
				    "orphan-delay: %llu ms is under the minimum of 1 s",
				    (unsigned long long)ms);
	return control_cluster_settings_write(m, CONTROL_SET_ORPHAN_DELAY, ms, err,
					      err_size, cb, data);
}

/* Writes the cluster record with autolock on (with key) or off. */
static int control_write_autolock(struct manager *m, const Cs__Cluster *cur, bool on,
				  const char *key, manager_write_cb cb, void *data)
{
	struct store_batch b;
	Cs__Cluster c = *cur;
	int rv;

	c.autolock = on;
	c.unlock_key = (char *)(on ? key : "");
	store_batch_init(&b);
	if ((rv = store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c))) {
		store_batch_free(&b);
		return rv;
	}
	return control_write(m, &b, cb, data);
}

/* Draws a new unlock key into key (SEAL_UNLOCK_KEY_CHARS + 1 bytes). */
static void control_draw_unlock_key(struct manager *m, char *key)
{
	uint8_t secret[SEAL_UNLOCK_SECRET_BYTES];
	seal_random(manager_env(m), secret, sizeof secret);
	seal_unlock_key_format(secret, key);
	memset(secret, 0, sizeof secret);
}

int control_cluster_set_autolock(struct manager *m, bool on, char *key, char *err,
				 size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Cluster *cur;
	int rv;

	key[0] = '\0';
	if ((rv = control_cluster_cur(m, &cur, err, err_size)) != 0)
		return rv;
	if (on && cur->autolock)
		return control_write_autolock(m, cur, true, cur->unlock_key, cb, data);
	if (on)
		control_draw_unlock_key(m, key);
	return control_write_autolock(m, cur, on, key, cb, data);
}

int control_cluster_unlock_key(struct manager *m, bool rotate, char *key, char *err,
			       size_t err_size, manager_write_cb cb, void *data)
{
	const Cs__Cluster *cur;

	key[0] = '\0';
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	cur = store_cluster(manager_store(m));
	if (!cur || !cur->autolock || !cur->unlock_key || !*cur->unlock_key) {
		snprintf(err, err_size,
			 "autolock is off: swarmctl cluster update --autolock=true");
		return CS_ENOENT;
	}
	if (!rotate) {
		snprintf(key, SEAL_UNLOCK_KEY_CHARS + 1, "%s", cur->unlock_key);
		return 1; /* nothing to write */
	}
	control_draw_unlock_key(m, key);
	return control_write_autolock(m, cur, true, key, cb, data);
}

int control_ca_rotate(struct manager *m, char *err, size_t err_size, manager_write_cb cb,
		      void *data)
{
	uint8_t *cert = NULL, *key = NULL;
	struct store_batch b;
	Cs__Cluster c;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	cert = malloc(PKI_DER_BYTES_MAX);
	key = malloc(PKI_DER_BYTES_MAX);
	if (!cert || !key) {
		rv = CS_ENOMEM;
		goto out;
	}
	rv = ca_rotation_start(manager_env(m), store_cluster(manager_store(m)), &c, cert,
			       key, err, err_size);
	if (rv)
		goto out;
	store_batch_init(&b);
	if ((rv = store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &c))) {
		store_batch_free(&b);
		goto out;
	}
	rv = control_write(m, &b, cb, data);
out:
	free(cert);
	free(key);
	return rv;
}

int control_cluster_inspect(struct manager *m, const Cs__Cluster **out, char *err,
			    size_t err_size)
{
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	*out = store_cluster(manager_store(m));
	if (!*out) {
		snprintf(err, err_size, "the cluster has no record yet");
		return CS_ENOENT;
	}
	return 0;
}

/* ---------------------------------------------------------------- lookups */

/* Whether ref is 1 to 16 hex digits (either case): then [*lo, *hi] are the
 * ids whose 16-digit hex form starts with it. */
static bool control_hex_prefix(const char *ref, uint64_t *lo, uint64_t *hi)
{
	size_t n = strlen(ref);
	uint64_t v = 0;
	unsigned shift;

	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = ref[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	shift = 4u * (unsigned)(16 - n);
	assert(shift < 64);
	*lo = v << shift;
	*hi = *lo | ((1ull << shift) - 1);
	assert(*lo <= *hi);
	return true;
}

/* The objects a reference fits, as they are found (the first kept, the
 * first CONTROL_CANDIDATES_SHOWN named for an error). */
struct control_matches {
	size_t count;
	const void *first;
	char shown[CONTROL_CANDIDATES_SHOWN][LIMIT_NAME_BYTES_MAX + 24];
};

static void control_match_add(struct control_matches *mt, const void *obj, uint64_t id,
			      const char *name)
{
	if (mt->count < CONTROL_CANDIDATES_SHOWN)
		snprintf(mt->shown[mt->count], sizeof mt->shown[0],
			 name && *name ? "%016llx (%s)" : "%016llx",
			 (unsigned long long)id, name);
	if (mt->count == 0)
		mt->first = obj;
	mt->count++;
}

/* Ends a lookup: 0 and *out for one match; several: CS_EINVAL with err
 * naming them, as Docker's "service X is ambiguous (N matches found)", then
 * advice; none: 0 and *out NULL (the caller goes on). */
static int control_match_end(const struct control_matches *mt, const char *what,
			     const char *ref, const char *advice, const void **out,
			     char *err, size_t err_size)
{
	size_t used;

	*out = NULL;
	if (mt->count == 1)
		*out = mt->first;
	if (mt->count <= 1)
		return 0;
	used = (size_t)snprintf(err, err_size,
				"%s '%s' is ambiguous (%zu matches found):", what, ref,
				mt->count);
	for (size_t i = 0; i < mt->count && i < CONTROL_CANDIDATES_SHOWN; i++)
		if (used < err_size)
			used += (size_t)snprintf(err + used, err_size - used, "%s %s",
						 i ? "," : "", mt->shown[i]);
	if (used < err_size)
		snprintf(err + used, err_size - used, "%s; %s",
			 mt->count > CONTROL_CANDIDATES_SHOWN ? ", ..." : "", advice);
	return CS_EINVAL;
}

/* None fits ref: CS_ENOENT, err in the words the API always used
 * ("no service named 'x'", "no node 'x'", "no task 'x'"). */
static int control_not_found(const char *what, const char *ref, char *err,
			     size_t err_size)
{
	snprintf(err, err_size, "no %s '%s'", what, ref);
	return CS_ENOENT;
}

int control_service_find(struct manager *m, const char *ref, const Cs__Service **out,
			 char *err, size_t err_size)
{
	const struct store *st = manager_store(m);
	struct control_matches mt = {0};
	uint64_t lo, hi;
	const void *one;
	int rv;

	*out = NULL;
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (control_hex_prefix(ref, &lo, &hi) && lo == hi &&
	    (*out = store_service_get(st, lo)) != NULL)
		return 0;
	if ((*out = store_service_by_name(st, ref)) != NULL)
		return 0;
	if (control_hex_prefix(ref, &lo, &hi))
		for (const Cs__Service *s = store_service_next(st, NULL);
		     s && s->id <= hi; s = store_service_next(st, s))
			if (s->id >= lo)
				control_match_add(&mt, s, s->id,
						  s->spec ? s->spec->name : "");
	if ((rv = control_match_end(&mt, "service", ref, "give more of the id", &one, err,
				    err_size)))
		return rv;
	*out = one;
	return one ? 0 : control_not_found("service named", ref, err, err_size);
}

int control_task_find(struct manager *m, const char *ref, const Cs__Task **out, char *err,
		      size_t err_size)
{
	const struct store *st = manager_store(m);
	struct control_matches mt = {0};
	uint64_t lo, hi;
	const void *one;
	int rv;

	*out = NULL;
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (control_hex_prefix(ref, &lo, &hi)) {
		if (lo == hi && (*out = store_task_get(st, lo)) != NULL)
			return 0;
		for (const Cs__Task *t = store_task_next(st, NULL); t && t->id <= hi;
		     t = store_task_next(st, t))
			if (t->id >= lo)
				control_match_add(&mt, t, t->id, NULL);
	}
	if ((rv = control_match_end(&mt, "task", ref, "give more of the id", &one, err,
				    err_size)))
		return rv;
	*out = one;
	return one ? 0 : control_not_found("task", ref, err, err_size);
}

int control_node_find(struct manager *m, const char *ref, const Cs__Node **out, char *err,
		      size_t err_size)
{
	const struct store *st = manager_store(m);
	struct control_matches named = {0}, mt = {0};
	uint64_t lo, hi;
	const void *one;
	int rv;

	*out = NULL;
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (control_hex_prefix(ref, &lo, &hi) && lo == hi &&
	    (*out = store_node_get(st, lo)) != NULL)
		return 0;
	for (const Cs__Node *n = store_node_next(st, NULL); n; n = store_node_next(st, n))
		if (n->hostname && strcmp(n->hostname, ref) == 0)
			control_match_add(&named, n, n->id, n->hostname);
	if ((rv = control_match_end(&named, "node", ref, "use its id", &one, err,
				    err_size)))
		return rv;
	if ((*out = one) != NULL)
		return 0;
	if (control_hex_prefix(ref, &lo, &hi))
		for (const Cs__Node *n = store_node_next(st, NULL); n && n->id <= hi;
		     n = store_node_next(st, n))
			if (n->id >= lo)
				control_match_add(&mt, n, n->id, n->hostname);
	if ((rv = control_match_end(&mt, "node", ref, "give more of the id", &one, err,
				    err_size)))
		return rv;
	*out = one;
	return one ? 0 : control_not_found("node", ref, err, err_size);
}

/* ---------------------------------------------------------------- task filters */

/* Whether labels (n of them) carry want: "KEY" (any value) or "KEY=VALUE". */
static bool control_labels_match(Cs__Label *const *labels, size_t n, const char *want)
{
	const char *eq = strchr(want, '=');
	size_t key_len = eq ? (size_t)(eq - want) : strlen(want);

	for (size_t i = 0; i < n; i++) {
		const char *k = labels[i]->key ? labels[i]->key : "";
		if (strlen(k) != key_len || memcmp(k, want, key_len) != 0)
			continue;
		return !eq ||
		       strcmp(labels[i]->value ? labels[i]->value : "", eq + 1) == 0;
	}
	return false;
}

/* Whether task t passes f, its nodes resolved to node_ids. */
static bool control_task_passes(const struct store *st, const Cs__Task *t,
				const struct control_task_filter *f, uint64_t service_id,
				const uint64_t *node_ids)
{
	const Cs__Service *svc;
	bool any;

	if (service_id && t->service_id != service_id)
		return false;
	any = f->node_count == 0;
	for (size_t i = 0; i < f->node_count && !any; i++)
		any = t->node_id == node_ids[i];
	if (!any)
		return false;
	any = f->desired_count == 0;
	for (size_t i = 0; i < f->desired_count && !any; i++)
		any = t->desired_state == f->desired[i];
	if (!any)
		return false;
	if (f->label_count == 0)
		return true;
	svc = store_service_get(st, t->service_id);
	for (size_t i = 0; i < f->label_count; i++)
		if (!svc || !svc->spec ||
		    !control_labels_match(svc->spec->labels, svc->spec->n_labels,
					  f->labels[i]))
			return false;
	return true;
}

/* The node references of a task filter, while they are resolved: each
 * reference's hostname matches (a walk of the nodes finds them all at once:
 * one control_node_find per reference walks every node with an O(log n)
 * step, per request). */
struct control_node_refs {
	char *const *refs;
	const size_t *order; /* ref indexes, by the refs' text */
	size_t count;
	size_t matches[CONTROL_FILTER_VALUES_MAX];
	uint64_t first[CONTROL_FILTER_VALUES_MAX];
};

static int control_node_refs_visit(void *arg, const Cs__Node *n)
{
	struct control_node_refs *r = arg;
	size_t lo = 0, hi = r->count;

	if (!n->hostname || !n->hostname[0])
		return 0;
	while (lo < hi) { /* the first ref not below the hostname */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(r->refs[r->order[mid]], n->hostname) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < r->count && strcmp(r->refs[r->order[lo]], n->hostname) == 0; lo++) {
		size_t i = r->order[lo];
		if (r->matches[i]++ == 0)
			r->first[i] = n->id;
	}
	return 0;
}

/* Resolves the count (at most CONTROL_FILTER_VALUES_MAX) node references
 * refs as control_node_find does, one by one in order (the first that fails
 * gives err), into ids; one walk of the nodes for every hostname. */
static int control_nodes_resolve(struct manager *m, char *const *refs, size_t count,
				 uint64_t *ids, char *err, size_t err_size)
{
	const struct store *st = manager_store(m);
	struct control_node_refs r = {.refs = refs};
	size_t order[CONTROL_FILTER_VALUES_MAX];
	bool by_id[CONTROL_FILTER_VALUES_MAX];
	int rv;

	assert(count <= CONTROL_FILTER_VALUES_MAX);
	for (size_t i = 0; i < count; i++) {
		uint64_t lo, hi;
		by_id[i] = control_hex_prefix(refs[i], &lo, &hi) && lo == hi &&
			   store_node_get(st, lo) != NULL;
		ids[i] = by_id[i] ? lo : 0;
		if (by_id[i])
			continue;
		/* insertion by text: at most CONTROL_FILTER_VALUES_MAX */
		size_t j = r.count++;
		for (; j > 0 && strcmp(refs[order[j - 1]], refs[i]) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	r.order = order;
	if (r.count)
		store_node_scan(st, control_node_refs_visit, &r);
	for (size_t i = 0; i < count; i++) {
		const Cs__Node *node;
		if (by_id[i])
			continue;
		if (r.matches[i] == 1) {
			ids[i] = r.first[i];
			continue;
		}
		/* none or several by hostname: its id prefix, or its error */
		if ((rv = control_node_find(m, refs[i], &node, err, err_size)))
			return rv;
		ids[i] = node->id;
	}
	return 0;
}

/* A task list's walk: what passes the filter is counted, and kept: up to
 * max in out when the walk is in id order, else (sort) every one in keep,
 * to be sorted by id. */
struct control_list {
	const struct store *st;
	const struct control_task_filter *f;
	uint64_t service_id;
	const uint64_t *node_ids;
	const Cs__Task **out;
	size_t max, n;
	bool sort;
	const Cs__Task **keep; /* sort: malloc'ed */
	size_t keep_cap;
	bool nomem;
};

static int control_list_visit(void *arg, const Cs__Task *t)
{
	struct control_list *l = arg;

	if (!control_task_passes(l->st, t, l->f, l->service_id, l->node_ids))
		return 0;
	if (l->sort && l->max) {
		if (grow_array((void **)&l->keep, &l->keep_cap, l->n + 1,
			       sizeof *l->keep)) {
			l->nomem = true;
			return 1;
		}
		l->keep[l->n] = t;
	} else if (l->n < l->max) {
		l->out[l->n] = t;
	}
	l->n++;
	return 0;
}

static int control_task_id_cmp(const void *a, const void *b)
{
	uint64_t x = (*(const Cs__Task *const *)a)->id,
		 y = (*(const Cs__Task *const *)b)->id;
	return x < y ? -1 : x > y;
}

int control_task_list_filtered(struct manager *m, const struct control_task_filter *f,
			       const Cs__Task **out, size_t max, size_t *count, char *err,
			       size_t err_size)
{
	const struct store *st = manager_store(m);
	uint64_t node_ids[CONTROL_FILTER_VALUES_MAX], nodes[CONTROL_FILTER_VALUES_MAX];
	struct control_list l = {
		.st = st, .f = f, .node_ids = node_ids, .out = out, .max = max};
	size_t node_count = 0;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (f->node_count > CONTROL_FILTER_VALUES_MAX ||
	    f->desired_count > CONTROL_FILTER_VALUES_MAX ||
	    f->label_count > CONTROL_FILTER_VALUES_MAX)
		return control_fail(err, err_size, "filter: over %u values of one kind",
				    CONTROL_FILTER_VALUES_MAX);
	if (f->service) {
		const Cs__Service *svc;
		if ((rv = control_service_find(m, f->service, &svc, err, err_size)))
			return rv;
		l.service_id = svc->id;
	}
	if (f->node_count && (rv = control_nodes_resolve(m, f->nodes, f->node_count,
							 node_ids, err, err_size)))
		return rv;
	for (size_t i = 0; i < f->label_count; i++)
		if (!f->labels[i][0] || f->labels[i][0] == '=')
			return control_fail(err, err_size,
					    "label: '%s' is not a label filter (expected "
					    "KEY or KEY=VALUE)",
					    f->labels[i]);
	/* through the narrowest index (issue 18: a list of a few nodes' tasks
	 * walked every task in O(log n) steps, twice a request), then in id
	 * order as a walk by id gives */
	if (f->node_count) {
		memcpy(nodes, node_ids, f->node_count * sizeof *nodes);
		qsort(nodes, f->node_count, sizeof *nodes, sort_u64_cmp);
		for (size_t i = 0; i < f->node_count; i++)
			if (i == 0 || nodes[i] != nodes[i - 1])
				nodes[node_count++] = nodes[i];
		l.sort = true;
		for (size_t i = 0; i < node_count && !l.nomem; i++)
			for (const Cs__Task *t =
				     store_task_next_by_node(st, nodes[i], NULL);
			     t && !l.nomem; t = store_task_next_by_node(st, nodes[i], t))
				control_list_visit(&l, t);
	} else if (l.service_id) {
		l.sort = true;
		store_task_scan_service(st, l.service_id, control_list_visit, &l);
	} else {
		store_task_scan(st, control_list_visit, &l);
	}
	if (l.nomem) {
		free(l.keep);
		return CS_ENOMEM;
	}
	if (l.keep) {
		qsort(l.keep, l.n, sizeof *l.keep, control_task_id_cmp);
		memcpy(out, l.keep, (l.n < max ? l.n : max) * sizeof *out);
		free(l.keep);
	}
	*count = l.n;
	return 0;
}
