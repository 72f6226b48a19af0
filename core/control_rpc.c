/* control_rpc: requests and responses of the control API, run on the
 * leader or forwarded to it. See control_rpc.h. */
#include "core/control_rpc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backup.h"
#include "core/ca.h"
#include "core/control.h"
#include "core/errors.h"
#include "core/events.h"
#include "core/seal.h"
#include "core/limits.h"
#include "core/grow.h"
#include "core/logbroker.h"
#include "core/secret.h"
#include "core/store.h"
#include "core/svccount.h"

/* A list answer stays this far under one frame (the Wire around it). */
#define RPC_FRAME_SLACK_BYTES 4096u
#define RPC_ERR_BYTES	      512u

enum rpc_kind {
	RPC_LOCAL,   /* our caller's request, run here (we lead) */
	RPC_FORWARD, /* our caller's request, sent to the leader */
	RPC_SERVE,   /* a follower's forward, run here; answer by wire */
};

struct rpc_call {
	struct control_rpc *r;
	struct rpc_call *prev, *next;
	enum rpc_kind kind;
	uint64_t caller_id; /* the request's id, echoed in the answer */
	uint64_t wire_id;   /* RPC_FORWARD: the id the leader echoes */
	char *reply_to;	    /* RPC_SERVE: where the answer goes */
	control_rpc_cb cb;  /* RPC_LOCAL, RPC_FORWARD */
	void *data;
	env_timer_id timer; /* the deferred answer, or the forward's timeout */
	bool in_call;	    /* control_rpc_call is still on the stack */
	uint8_t *answer;    /* a packed answer waiting for the timer */
	size_t answer_len;
	Cs__ControlRequest *req; /* node update: owned copy, for its steps */
	size_t step;
	uint64_t node_id;
	uint64_t created_id;
	char unlock_key[SEAL_UNLOCK_KEY_CHARS + 1]; /* shown once, on success */
	Cs__ControlOp op; /* issue 20: what it runs (a failed write's words) */
};

struct control_rpc {
	struct manager *m;
	struct env *env;
	struct rpc_call *calls; /* in flight, newest first */
	size_t call_count;
	uint64_t next_wire_id; /* 0: not drawn yet */
	bool dying;	       /* the process is going: answer nobody */
};

int control_rpc_open(struct manager *m, struct control_rpc **out)
{
	struct control_rpc *r = calloc(1, sizeof *r);

	assert(m);
	if (!r)
		return CS_ENOMEM;
	r->m = m;
	r->env = manager_env(m);
	*out = r;
	return 0;
}

static void rpc_call_unlink_free(struct rpc_call *c)
{
	struct control_rpc *r = c->r;

	if (c->prev)
		c->prev->next = c->next;
	else
		r->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	assert(r->call_count > 0);
	r->call_count--;
	free(c->answer);
	free(c->reply_to);
	if (c->req)
		cs__control_request__free_unpacked(c->req, NULL);
	free(c);
}

void control_rpc_dying(struct control_rpc *r)
{
	if (r)
		r->dying = true;
}

void control_rpc_close(struct control_rpc *r)
{
	if (!r)
		return;
	while (r->calls)
		rpc_call_unlink_free(r->calls);
	assert(r->call_count == 0);
	free(r);
}

/* Ends call c: stops its timer (a live process only) and frees it. */
static void rpc_call_end(struct rpc_call *c)
{
	if (c->timer)
		c->r->env->ops->timer_stop(c->r->env, c->timer);
	c->timer = 0;
	rpc_call_unlink_free(c);
}

static struct rpc_call *rpc_call_new(struct control_rpc *r, enum rpc_kind kind,
				     uint64_t caller_id)
{
	struct rpc_call *c;

	if (r->call_count >= CONTROL_RPC_PENDING_MAX)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->r = r;
	c->kind = kind;
	c->caller_id = caller_id;
	c->next = r->calls;
	if (r->calls)
		r->calls->prev = c;
	r->calls = c;
	r->call_count++;
	return c;
}

/* ---------------------------------------------------------------- answers */

static void rpc_send_answer(struct control_rpc *r, const char *to,
			    const Cs__ControlResponse *resp)
{
	Cs__Wire wire = CS__WIRE__INIT;
	uint8_t *buf;
	size_t len;

	wire.control_response = (Cs__ControlResponse *)resp;
	len = cs__wire__get_packed_size(&wire);
	buf = malloc(len ? len : 1);
	if (!buf) {
		env_logf(r->env, ENV_LOG_WARN,
			 "msg=\"control answer lost: out of memory\"");
		return;
	}
	cs__wire__pack(&wire, buf);
	if (r->env->ops->send(r->env, to, buf, len) != 0)
		env_logf(r->env, ENV_LOG_WARN, "msg=\"control answer not sent\" to=%s",
			 to);
	free(buf);
}

static void rpc_deliver(struct env *env, env_timer_id id, void *data)
{
	struct rpc_call *c = data;
	Cs__ControlResponse *resp;

	c->timer = 0;
	resp = cs__control_response__unpack(NULL, c->answer_len, c->answer);
	if (resp) {
		c->cb(c->data, resp);
		cs__control_response__free_unpacked(resp, NULL);
	} else {
		Cs__ControlResponse oom = CS__CONTROL_RESPONSE__INIT;
		oom.id = c->caller_id;
		oom.status = CS_ENOMEM;
		oom.error = (char *)cs_strerror(CS_ENOMEM);
		c->cb(c->data, &oom);
	}
	rpc_call_unlink_free(c);
}

/* rpc_finish answers c with resp (borrowed; its id is set here) and ends
 * c. Inside control_rpc_call the answer is packed and deferred to a timer.
 * Returns 0, or an error when it could not be deferred (then c is left to
 * the caller, and cb will not run). */
static int rpc_finish(struct rpc_call *c, Cs__ControlResponse *resp)
{
	struct env *env = c->r->env;
	int rv;

	resp->id = c->caller_id;
	if (c->kind == RPC_SERVE) {
		rpc_send_answer(c->r, c->reply_to, resp);
		rpc_call_end(c);
		return 0;
	}
	assert(c->kind == RPC_LOCAL || c->kind == RPC_FORWARD);
	if (!c->in_call) {
		c->cb(c->data, resp);
		rpc_call_end(c);
		return 0;
	}
	assert(!c->answer);
	c->answer_len = cs__control_response__get_packed_size(resp);
	c->answer = malloc(c->answer_len ? c->answer_len : 1);
	if (!c->answer)
		return CS_ENOMEM;
	cs__control_response__pack(resp, c->answer);
	if (c->timer)
		env->ops->timer_stop(env, c->timer);
	c->timer = 0;
	rv = env->ops->timer_start(env, 0, 0, rpc_deliver, c, &c->timer);
	if (rv) {
		free(c->answer);
		c->answer = NULL;
	}
	return rv;
}

/* rpc_fail answers c with status and one line: err when it says something,
 * else cs_strerror(status). */
static int rpc_fail(struct rpc_call *c, int status, const char *err)
{
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;

	assert(status != 0);
	resp.status = status;
	resp.error = (char *)(err && *err ? err : cs_strerror(status));
	return rpc_finish(c, &resp);
}

/* ---------------------------------------------------------------- writes */

static int rpc_node_step(struct rpc_call *c, char *err, size_t err_size);

static void rpc_written(void *data, int status)
{
	struct rpc_call *c = data;
	char err[RPC_ERR_BYTES] = "";
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	int rv;

	if (c->r->dying) {
		/* the manager closing under a dying process: no one to answer,
		 * no env to call */
		rpc_call_unlink_free(c);
		return;
	}
	if (status != 0) {
		if (status == CS_ENOQUORUM)
			snprintf(err, sizeof err,
				 "not committed in time: the managers have no quorum");
		else if (status == CS_ENOTLEADER)
			snprintf(
				err, sizeof err,
				"leadership changed before the write committed: try again");
		else if (status == CS_EEXIST)
			snprintf(err, sizeof err,
				 "name taken: another request created it first");
		else if (status == CS_EADDRINUSE &&
			 c->op == CS__CONTROL_OP__CONTROL_OP_SECRET_REMOVE)
			snprintf(
				err, sizeof err,
				"in use: a service that references it was written first");
		else if (status == CS_ENOENT &&
			 (c->op == CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE ||
			  c->op == CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE))
			snprintf(err, sizeof err,
				 "a secret or config it references was removed first");
		else if (status == CS_EADDRINUSE)
			snprintf(err, sizeof err,
				 "subnet or VNI taken: another network created first "
				 "holds it");
		rpc_fail(c, status, err);
		return;
	}
	if (c->req && c->req->op == CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE) {
		rv = rpc_node_step(c, err, sizeof err);
		if (rv < 0)
			rpc_fail(c, rv, err);
		if (rv != 1)
			return; /* failed, or the next change is on its way */
	}
	resp.created_id = c->created_id;
	if (c->unlock_key[0])
		resp.unlock_key = c->unlock_key;
	rpc_finish(c, &resp);
}

/* rpc_node_step starts the next change of a node update: availability,
 * then each label added, then each removed. Returns 0 (a write is under
 * way), 1 (nothing left), or an error with err. */
static int rpc_node_step(struct rpc_call *c, char *err, size_t err_size)
{
	const Cs__ControlRequest *q = c->req;
	struct manager *m = c->r->m;
	size_t s = c->step++;
	size_t avail = q->set_availability ? 1 : 0;

	if (s < avail)
		return control_node_update(m, c->node_id, true, q->availability, NULL,
					   NULL, err, err_size, rpc_written, c);
	s -= avail;
	if (s < q->n_label_add) {
		const Cs__Label *l = q->label_add[s];
		return control_node_update(m, c->node_id, false, 0, l->key,
					   l->value ? l->value : "", err, err_size,
					   rpc_written, c);
	}
	s -= q->n_label_add;
	if (s < q->n_label_rm)
		return control_node_update(m, c->node_id, false, 0, q->label_rm[s], NULL,
					   err, err_size, rpc_written, c);
	return 1;
}

/* Checks every label key of a node update before its first write, with
 * control_node_update's rule: a node update is written in steps, and a bad
 * key found at a later step would leave the earlier steps written under a
 * refusal (found by tests/fuzz/fuzz_control). Returns 0 or CS_EINVAL. */
static int rpc_node_labels_ok(const Cs__ControlRequest *q, char *err, size_t err_size)
{
	for (size_t i = 0; i < q->n_label_add + q->n_label_rm; i++) {
		const char *key = i < q->n_label_add ? q->label_add[i]->key
						     : q->label_rm[i - q->n_label_add];
		if (!key || !*key || strlen(key) > LIMIT_NAME_BYTES_MAX) {
			snprintf(err, err_size, "label: bad key '%s'", key ? key : "");
			return CS_EINVAL;
		}
	}
	return 0;
}

/* Copies req (deep) into c, for writes in several steps. */
static int rpc_keep_request(struct rpc_call *c, const Cs__ControlRequest *req)
{
	size_t len = cs__control_request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return CS_ENOMEM;
	cs__control_request__pack(req, buf);
	c->req = cs__control_request__unpack(NULL, len, buf);
	free(buf);
	return c->req ? 0 : CS_ENOMEM;
}

/* ---------------------------------------------------------------- reads */

static size_t rpc_service_size(const void *s)
{
	return cs__service__get_packed_size(s);
}
/* A service and its counts (ServiceCounts: four varints and their tags,
 * with the list's own). */
static size_t rpc_service_counted_size(const void *s)
{
	return cs__service__get_packed_size(s) + 64;
}
static size_t rpc_task_size(const void *t)
{
	return cs__task__get_packed_size(t);
}
static size_t rpc_node_size(const void *n)
{
	return cs__node__get_packed_size(n);
}

/* rpc_fit returns how many of the first objects fit in one frame. */
static size_t rpc_fit(const void *const *objs, size_t count,
		      size_t (*size_of)(const void *))
{
	size_t fit = 0, bytes = 0;

	while (fit < count) {
		bytes += size_of(objs[fit]) + 11; /* tag and length */
		if (bytes > LIMIT_FRAME_BYTES_MAX - RPC_FRAME_SLACK_BYTES)
			break;
		fit++;
	}
	return fit;
}

/* rpc_list lists services, tasks or nodes (by op) into resp: *objs gets a
 * malloc'ed array the caller frees. Returns 0 or an error with err. */
static int rpc_list(struct manager *m, const Cs__ControlRequest *req,
		    Cs__ControlResponse *resp, const void ***objs, char *err,
		    size_t err_size)
{
	struct control_task_filter filter = {
		.service = req->service && *req->service ? req->service : NULL,
		.nodes = req->filter_nodes,
		.node_count = req->n_filter_nodes,
		.desired = req->filter_desired_states,
		.desired_count = req->n_filter_desired_states,
		.labels = req->filter_labels,
		.label_count = req->n_filter_labels,
	};
	size_t count = 0, got = 0, fit;
	int rv;

	*objs = NULL;
	for (int pass = 0; pass < 2; pass++) {
		size_t max = pass ? count : 0;
		switch (req->op) {
		case CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST:
			rv = control_service_list(m, (const Cs__Service **)*objs, max,
						  &got);
			break;
		case CS__CONTROL_OP__CONTROL_OP_TASK_LIST:
			rv = control_task_list_filtered(m, &filter,
							(const Cs__Task **)*objs, max,
							&got, err, err_size);
			break;
		default:
			assert(req->op == CS__CONTROL_OP__CONTROL_OP_NODE_LIST);
			rv = control_node_list(m, (const Cs__Node **)*objs, max, &got);
			break;
		}
		if (rv)
			return rv;
		if (pass == 0) {
			count = got;
			*objs = calloc(count ? count : 1, sizeof **objs);
			if (!*objs)
				return CS_ENOMEM;
		}
	}
	assert(got == count); /* nothing runs between the two passes */
	resp->total = count;
	switch (req->op) {
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST:
		fit = rpc_fit(*objs, count,
			      req->status ? rpc_service_counted_size : rpc_service_size);
		resp->services = (Cs__Service **)*objs;
		resp->n_services = fit;
		break;
	case CS__CONTROL_OP__CONTROL_OP_TASK_LIST:
		fit = rpc_fit(*objs, count, rpc_task_size);
		resp->tasks = (Cs__Task **)*objs;
		resp->n_tasks = fit;
		break;
	default:
		fit = rpc_fit(*objs, count, rpc_node_size);
		resp->nodes = (Cs__Node **)*objs;
		resp->n_nodes = fit;
		break;
	}
	assert(fit <= count);
	return 0;
}

/* rpc_service_counts fills resp->counts for the services resp lists (issue
 * 18: service ls's REPLICAS, kept by the store: O(services)) and
 * resp->nodes_down. *mem gets one malloc'ed block holding them, which the
 * caller frees after the answer is packed. Returns 0 or CS_ENOMEM. */
static int rpc_service_counts(struct manager *m, Cs__ControlResponse *resp, void **mem)
{
	size_t n = resp->n_services;
	Cs__ServiceCounts **ptrs;
	Cs__ServiceCounts *counts;

	*mem = malloc((n ? n : 1) * (sizeof *ptrs + sizeof *counts));
	if (!*mem)
		return CS_ENOMEM;
	counts = *mem;
	ptrs = (Cs__ServiceCounts **)(counts + n);
	for (size_t i = 0; i < n; i++) {
		struct svccount_counts sc;
		control_service_counts(m, resp->services[i], &sc, &resp->nodes_down);
		cs__service_counts__init(&counts[i]);
		counts[i].service_id = resp->services[i]->id;
		counts[i].running = sc.running;
		counts[i].desired = sc.desired;
		counts[i].completed = sc.completed;
		ptrs[i] = &counts[i];
	}
	if (n == 0)
		resp->nodes_down = store_svccount(manager_store(m))->nodes_down;
	resp->counts = ptrs;
	resp->n_counts = n;
	return 0;
}

/* ---------------------------------------------------------------- running */

/* rpc_node_id resolves req->name (id in hex, or hostname) to a node id. */
static int rpc_node_id(struct manager *m, const Cs__ControlRequest *req, uint64_t *id,
		       char *err, size_t err_size)
{
	const Cs__Node *n;
	int rv;

	if (!req->name || !*req->name) {
		snprintf(err, err_size, "name: say which node (its id or hostname)");
		return CS_EINVAL;
	}
	if ((rv = control_node_find(m, req->name, &n, err, err_size)))
		return rv;
	*id = n->id;
	return 0;
}

/* rpc_service_name resolves ref (a service's id, name or id prefix) to
 * the service's name, borrowed from the store (valid until the next
 * apply). */
static int rpc_service_name(struct manager *m, const char *ref, const char **name,
			    char *err, size_t err_size)
{
	const Cs__Service *svc;
	int rv;

	if ((rv = control_service_find(m, ref, &svc, err, err_size)))
		return rv;
	assert(svc->spec && svc->spec->name);
	*name = svc->spec->name;
	return 0;
}

/* rpc_network runs a network op (issue 15): 0 when answered or deferred,
 * or an error with err. A list holds every network (LIMIT_NETWORKS_MAX of
 * them fit a frame). */
static int rpc_network(struct rpc_call *c, const Cs__ControlRequest *req, char *err,
		       size_t err_size)
{
	struct manager *m = c->r->m;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	const char *name = req->name ? req->name : "";
	const Cs__Network *net, **all;
	size_t count;
	int rv;

	switch (req->op) {
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_CREATE:
		if (!req->network) {
			snprintf(err, err_size, "network: missing");
			return CS_EINVAL;
		}
		return control_network_create(m, req->network, &c->created_id, err,
					      err_size, rpc_written, c);
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_REMOVE:
		return control_network_remove(m, name, err, err_size, rpc_written, c);
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_INSPECT:
		if ((rv = control_network_inspect(m, name, &net, err, err_size)))
			return rv;
		resp.n_networks = 1;
		resp.networks = (Cs__Network **)&net;
		resp.total = 1;
		return rpc_finish(c, &resp);
	default:
		assert(req->op == CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST);
		control_network_list(m, NULL, 0, &count);
		all = calloc(count ? count : 1, sizeof *all);
		if (!all)
			return CS_ENOMEM;
		control_network_list(m, all, count, &count);
		resp.n_networks = count;
		resp.networks = (Cs__Network **)all;
		resp.total = count;
		rv = rpc_finish(c, &resp);
		free(all);
		return rv;
	}
}

/* rpc_secret runs a secret or config op (issue 20): 0 when answered or
 * deferred, or an error with err. A secret's data is never in an answer;
 * a list is cut to fit a frame (total says how many exist). */
static int rpc_secret(struct rpc_call *c, const Cs__ControlRequest *req, char *err,
		      size_t err_size)
{
	struct manager *m = c->r->m;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	const char *name = req->name ? req->name : "";
	bool config = req->secret_config;
	const Cs__Secret *x, **all;
	Cs__Secret *shown, **ptrs;
	size_t count, n = 0, bytes = 0;
	int rv;

	switch (req->op) {
	case CS__CONTROL_OP__CONTROL_OP_SECRET_CREATE: {
		Cs__Secret in;
		if (!req->secret) {
			snprintf(err, err_size, "%s: missing", secret_kind(config));
			return CS_EINVAL;
		}
		in = *req->secret;
		in.config = config;
		return secret_create(m, &in, &c->created_id, err, err_size, rpc_written,
				     c);
	}
	case CS__CONTROL_OP__CONTROL_OP_SECRET_REMOVE:
		return secret_remove(m, config, name, err, err_size, rpc_written, c);
	case CS__CONTROL_OP__CONTROL_OP_SECRET_UPDATE:
		return secret_update_labels(
			m, config, name, req->label_add, req->n_label_add, req->label_rm,
			req->n_label_rm, req->version, err, err_size, rpc_written, c);
	case CS__CONTROL_OP__CONTROL_OP_SECRET_INSPECT:
		if ((rv = secret_find(m, config, name, &x, err, err_size)))
			return rv;
		all = &x;
		count = 1;
		break;
	default:
		assert(req->op == CS__CONTROL_OP__CONTROL_OP_SECRET_LIST);
		if (!manager_serves(m))
			return CS_ENOTLEADER;
		secret_list(manager_store(m), config, NULL, 0, &count);
		all = calloc(count ? count : 1, sizeof *all);
		if (!all)
			return CS_ENOMEM;
		secret_list(manager_store(m), config, all, count, &count);
		break;
	}
	shown = calloc(count ? count : 1, sizeof *shown);
	ptrs = calloc(count ? count : 1, sizeof *ptrs);
	if (!shown || !ptrs) {
		rv = CS_ENOMEM;
		goto out;
	}
	for (n = 0; n < count; n++) {
		secret_shown(all[n], &shown[n]);
		bytes += cs__secret__get_packed_size(&shown[n]) + 8;
		if (n && bytes > LIMIT_FRAME_BYTES_MAX / 2)
			break; /* cut: total says how many */
		ptrs[n] = &shown[n];
	}
	resp.n_secrets = n;
	resp.secrets = ptrs;
	resp.total = count;
	rv = rpc_finish(c, &resp);
out:
	free(shown);
	free(ptrs);
	if (all != &x)
		free(all);
	return rv;
}

/* ---------------------------------------------------------------- logs */

static void rpc_logs_done(void *data, const Cs__ControlResponse *resp)
{
	struct rpc_call *c = data;
	Cs__ControlResponse mine = *resp;

	if (c->r->dying) {
		rpc_call_unlink_free(c);
		return;
	}
	rpc_finish(c, &mine); /* from the broker's timer or a frame: not in the call */
}

/* rpc_logs reads the logs of the service (or task) req names through the
 * leader's log broker (issue 16): 0 when the read is on its way, or an
 * error with err. */
static int rpc_logs(struct rpc_call *c, const Cs__ControlRequest *req, char *err,
		    size_t err_size)
{
	struct manager *m = c->r->m;
	const struct store *st = manager_store(m);
	struct logbroker *lb = manager_component(m, &logbroker_component);
	const char *name = req->name ? req->name : "";
	struct logbroker_task *tasks = NULL;
	const Cs__Service *svc;
	const Cs__Task *task;
	size_t n = 0, cap = 0;
	int rv;

	if (!lb)
		return CS_ENOTLEADER;
	if (req->logs_task) {
		if ((rv = control_task_find(m, name, &task, err, err_size)))
			return rv;
		if (!(tasks = calloc(1, sizeof *tasks)))
			return CS_ENOMEM;
		if (task->node_id)
			tasks[n++] = (struct logbroker_task){task->id, task->service_id,
							     task->node_id, 0, 0};
	} else {
		if ((rv = control_service_find(m, name, &svc, err, err_size)))
			return rv;
		for (task = store_task_next_by_service(st, svc->id, NULL); task;
		     task = store_task_next_by_service(st, svc->id, task)) {
			if (!task->node_id)
				continue;
			if (n >= LIMIT_LOG_TASKS_MAX) {
				free(tasks);
				snprintf(
					err, err_size,
					"service %s has over %u tasks placed: read a task's "
					"logs",
					svc->spec->name, LIMIT_LOG_TASKS_MAX);
				return CS_ELIMIT;
			}
			if (grow_array((void **)&tasks, &cap, n + 1, sizeof *tasks)) {
				free(tasks);
				return CS_ENOMEM;
			}
			tasks[n++] = (struct logbroker_task){task->id, task->service_id,
							     task->node_id, 0, 0};
		}
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < req->n_logs_after; k++)
			if (req->logs_after[k]->task_id == tasks[i].task_id) {
				tasks[i].after_ns = req->logs_after[k]->after_ns;
				tasks[i].after_err_ns = req->logs_after[k]->after_err_ns;
			}
	rv = logbroker_read(lb, tasks, n, req->logs_since_ms, req->logs_until_ms,
			    req->logs_tail, req->logs_tail_set, rpc_logs_done, c);
	free(tasks);
	if (rv == CS_EAGAIN)
		snprintf(err, err_size, "too many log reads in flight: try again");
	return rv;
}

/* ---------------------------------------------------------------- events */

struct rpc_events_out {
	Cs__Event *evs;
	Cs__Event **ptrs;
	Cs__Label *attrs;
	Cs__Label **attr_ptrs;
	size_t n;
};

static void rpc_events_visit(void *arg, const struct events_event *ev)
{
	struct rpc_events_out *o = arg;
	size_t i = o->n++;

	assert(i < EVENTS_READ_MAX);
	events_to_proto(ev, &o->evs[i], &o->attrs[i * EVENTS_ATTRS_MAX],
			&o->attr_ptrs[i * EVENTS_ATTRS_MAX]);
	o->ptrs[i] = &o->evs[i];
}

/* rpc_events reads this manager's own event stream (issue 20): never
 * forwarded, since every manager applies every change. One answer holds
 * at most EVENTS_READ_MAX events (well under a frame); the caller reads on
 * from events_next_*. Answers now (0), or an error with err. */
static int rpc_events(struct rpc_call *c, const Cs__ControlRequest *req, char *err,
		      size_t err_size)
{
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	struct events *e = manager_events(c->r->m);
	struct events_filter *f = calloc(1, sizeof *f);
	struct rpc_events_out o = {0};
	uint64_t next_index = 0;
	uint32_t next_ord = 0;
	int rv = CS_ENOMEM;

	_Static_assert(EVENTS_READ_MAX * 2048u <
			       LIMIT_FRAME_BYTES_MAX - RPC_FRAME_SLACK_BYTES,
		       "a read's events fit in one answer");
	if (!f)
		return CS_ENOMEM;
	for (size_t i = 0; i < req->n_events_filter; i++)
		if ((rv = events_filter_add(f, req->events_filter[i], err, err_size)))
			goto out;
	rv = CS_ENOMEM;
	o.evs = calloc(EVENTS_READ_MAX, sizeof *o.evs);
	o.ptrs = calloc(EVENTS_READ_MAX, sizeof *o.ptrs);
	o.attrs = calloc(EVENTS_READ_MAX * EVENTS_ATTRS_MAX, sizeof *o.attrs);
	o.attr_ptrs = calloc(EVENTS_READ_MAX * EVENTS_ATTRS_MAX, sizeof *o.attr_ptrs);
	if (!o.evs || !o.ptrs || !o.attrs || !o.attr_ptrs)
		goto out;
	{
		uint64_t from_index = req->events_from_index;
		uint32_t from_ord = req->events_from_ord;
		if (req->events_from_oldest && !events_oldest(e, &from_index, &from_ord))
			from_index = from_ord = 0; /* none kept: from now */
		rv = events_read(e, f, from_index, from_ord, EVENTS_READ_MAX,
				 rpc_events_visit, &o, &next_index, &next_ord, err,
				 err_size);
	}
	if (rv < 0)
		goto out;
	resp.n_events = o.n;
	resp.events = o.ptrs;
	resp.events_next_index = next_index;
	resp.events_next_ord = next_ord;
	rv = rpc_finish(c, &resp);
out:
	free(o.evs);
	free(o.ptrs);
	free(o.attrs);
	free(o.attr_ptrs);
	free(f);
	return rv;
}

/* rpc_exec runs req on this manager, the leader: answers c now (reads,
 * failures) or once committed (writes). Returns 0, or an error when the
 * answer could not even be deferred (see rpc_finish). */
/* CLUSTER_BACKUP (issue 20): this manager's (the leader's) store at the
 * index it has applied, as a backup file's bytes (core/backup.h), in one
 * answer; a backup over one frame is refused with its size (not cut). */
static int rpc_backup(struct rpc_call *c, char *err, size_t err_size)
{
	struct manager *m = c->r->m;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	uint8_t *bk;
	size_t len;
	const Cs__Cluster *cl = store_cluster(manager_store(m));
	int rv = backup_encode(manager_store(m), manager_term(m), &bk, &len);

	if (rv == CS_ENOENT)
		snprintf(err, err_size,
			 "the cluster has no record yet: nothing to back up");
	if (rv)
		return rv;
	if (cl && cl->autolock && cl->unlock_key && *cl->unlock_key) {
		/* as the managers' state at rest under autolock: sealed with
		 * the unlock key (core/backup.h) */
		uint8_t *sealed;
		size_t sealed_len;
		rv = backup_seal(c->r->env, cl->unlock_key, bk, len, &sealed,
				 &sealed_len);
		seal_wipe(bk, len);
		free(bk);
		if (rv) {
			snprintf(err, err_size, "cannot seal the backup: %s",
				 cs_strerror(rv));
			return rv;
		}
		bk = sealed;
		len = sealed_len;
	}
	if (len > LIMIT_FRAME_BYTES_MAX - LIMIT_FRAME_BYTES_MAX / 64) {
		snprintf(err, err_size,
			 "the backup is %zu bytes, over what one control answer "
			 "carries (%u): not taken",
			 len, LIMIT_FRAME_BYTES_MAX - LIMIT_FRAME_BYTES_MAX / 64);
		seal_wipe(bk, len);
		free(bk);
		return CS_ELIMIT;
	}
	resp.backup.data = bk;
	resp.backup.len = len;
	env_logf(c->r->env, ENV_LOG_INFO, "msg=\"backup taken\" index=%llu bytes=%zu",
		 (unsigned long long)store_applied(manager_store(m)), len);
	rv = rpc_finish(c, &resp);
	seal_wipe(bk, len); /* it holds the CA key */
	free(bk);
	return rv;
}

static int rpc_exec(struct rpc_call *c, const Cs__ControlRequest *req)
{
	struct manager *m = c->r->m;
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	char err[RPC_ERR_BYTES] = "";
	const char *name = req->name ? req->name : "";
	const void **objs = NULL;
	void *counts = NULL; /* service list with status: rpc_service_counts */
	const Cs__Service *svc;
	const Cs__Task *task;
	const Cs__Node *node;
	const Cs__Cluster *cluster;
	Cs__Cluster shown;
	size_t done, total;
	uint64_t node_id;
	int rv;

	c->op = req->op;
	switch (req->op) {
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE:
		if (!req->spec) {
			snprintf(err, sizeof err, "spec: missing");
			rv = CS_EINVAL;
			break;
		}
		rv = control_service_create(m, req->spec, &c->created_id, err, sizeof err,
					    rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE:
		if (req->rollback) {
			if ((rv = rpc_service_name(m, name, &name, err, sizeof err)))
				break;
			rv = control_service_rollback(m, name, req->version, err,
						      sizeof err, rpc_written, c);
			if (rv == 0)
				return 0;
			break;
		}
		if (!req->spec) {
			snprintf(err, sizeof err, "spec: missing");
			rv = CS_EINVAL;
			break;
		}
		if ((rv = rpc_service_name(m, *name ? name : req->spec->name, &name, err,
					   sizeof err)))
			break;
		rv = control_service_update(m, name, req->spec, req->version, err,
					    sizeof err, rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_REMOVE:
		if ((rv = rpc_service_name(m, name, &name, err, sizeof err)))
			break;
		rv = control_service_remove(m, name, err, sizeof err, rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE:
		if ((rv = rpc_node_id(m, req, &c->node_id, err, sizeof err)))
			break;
		if ((rv = rpc_node_labels_ok(req, err, sizeof err)))
			break;
		if ((rv = rpc_keep_request(c, req)))
			break;
		rv = rpc_node_step(c, err, sizeof err);
		if (rv == 0)
			return 0;
		if (rv == 1) /* nothing to change */
			return rpc_finish(c, &resp);
		break;
	case CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE:
		if ((rv = rpc_node_id(m, req, &node_id, err, sizeof err)))
			break;
		rv = control_node_set_role(m, node_id, req->role, err, sizeof err,
					   rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE:
		if ((rv = rpc_node_id(m, req, &node_id, err, sizeof err)))
			break;
		rv = control_node_remove(m, node_id, req->force, err, sizeof err,
					 rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_ROTATE_TOKEN:
		rv = control_cluster_rotate_token(m, req->rotate_worker,
						  req->rotate_manager, err, sizeof err,
						  rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CA_ROTATE:
		rv = control_ca_rotate(m, err, sizeof err, rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_UPDATE:
		if (req->set_autolock)
			rv = control_cluster_set_autolock(m, req->autolock, c->unlock_key,
							  err, sizeof err, rpc_written,
							  c);
		else if (req->set_orphan_delay)
			rv = control_cluster_set_orphan_delay(
				m, req->orphan_delay_ms, err, sizeof err, rpc_written, c);
		else if (req->rotate_network_keys) /* issue 17 */
			rv = control_cluster_rotate_network_keys(m, err, sizeof err,
								 rpc_written, c);
		else if (req->set_network_key_rotation)
			rv = control_cluster_set_network_key_rotation(
				m, req->network_key_rotation_ms, err, sizeof err,
				rpc_written, c);
		else if (req->set_heartbeat)
			rv = control_cluster_set_heartbeat(m, req->heartbeat_ms, err,
							   sizeof err, rpc_written, c);
		else if (req->set_task_history)
			rv = control_cluster_set_task_history(m, req->task_history, err,
							      sizeof err, rpc_written, c);
		else
			rv = control_cluster_set_cert_expiry(m, req->cert_expiry_ms, err,
							     sizeof err, rpc_written, c);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_UNLOCK_KEY:
		rv = control_cluster_unlock_key(m, req->rotate_unlock_key, c->unlock_key,
						err, sizeof err, rpc_written, c);
		if (rv == 0)
			return 0;
		if (rv == 1) {
			resp.unlock_key = c->unlock_key;
			return rpc_finish(c, &resp);
		}
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT:
		if ((rv = control_service_find(m, name, &svc, err, sizeof err)))
			break;
		resp.n_services = 1;
		resp.services = (Cs__Service **)&svc;
		resp.total = 1;
		return rpc_finish(c, &resp);
	case CS__CONTROL_OP__CONTROL_OP_TASK_INSPECT:
		if (req->task_id)
			rv = control_task_inspect(m, req->task_id, &task, err,
						  sizeof err);
		else
			rv = control_task_find(m, name, &task, err, sizeof err);
		if (rv)
			break;
		resp.n_tasks = 1;
		resp.tasks = (Cs__Task **)&task;
		resp.total = 1;
		return rpc_finish(c, &resp);
	case CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT:
		if ((rv = control_node_find(m, name, &node, err, sizeof err)))
			break;
		resp.n_nodes = 1;
		resp.nodes = (Cs__Node **)&node;
		resp.total = 1;
		return rpc_finish(c, &resp);
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT:
		if ((rv = control_cluster_inspect(m, &cluster, err, sizeof err)))
			break;
		/* the CA's private keys never leave the store */
		shown = *cluster;
		shown.ca_key.data = NULL;
		shown.ca_key.len = 0;
		shown.ca_next_key.data = NULL;
		shown.ca_next_key.len = 0;
		/* issue 17: nor the network keys (ids are said by the logs) */
		shown.network_keys = NULL;
		shown.n_network_keys = 0;
		resp.cluster = &shown;
		{
			uint64_t ids[LIMIT_MANAGERS_MAX];
			size_t voters = manager_voters(m, ids, LIMIT_MANAGERS_MAX);
			ca_rotation_progress(manager_store(m), ids, voters, &done,
					     &total);
		}
		resp.ca_nodes_done = done;
		resp.ca_nodes_total = total;
		return rpc_finish(c, &resp);
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST:
	case CS__CONTROL_OP__CONTROL_OP_TASK_LIST:
	case CS__CONTROL_OP__CONTROL_OP_NODE_LIST:
		rv = rpc_list(m, req, &resp, &objs, err, sizeof err);
		if (rv == 0 && req->op == CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST &&
		    req->status)
			rv = rpc_service_counts(m, &resp, &counts);
		if (rv == 0) {
			rv = rpc_finish(c, &resp);
			free(counts);
			free(objs);
			return rv;
		}
		free(counts);
		free(objs);
		break;
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_CREATE:
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_REMOVE:
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_INSPECT:
	case CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST:
		rv = rpc_network(c, req, err, sizeof err);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_SECRET_CREATE:
	case CS__CONTROL_OP__CONTROL_OP_SECRET_LIST:
	case CS__CONTROL_OP__CONTROL_OP_SECRET_INSPECT:
	case CS__CONTROL_OP__CONTROL_OP_SECRET_REMOVE:
	case CS__CONTROL_OP__CONTROL_OP_SECRET_UPDATE:
		rv = rpc_secret(c, req, err, sizeof err);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_CLUSTER_BACKUP:
		rv = rpc_backup(c, err, sizeof err);
		if (rv == 0)
			return 0;
		break;
	case CS__CONTROL_OP__CONTROL_OP_SERVICE_LOGS:
		rv = rpc_logs(c, req, err, sizeof err);
		if (rv == 0)
			return 0;
		break;
	default:
		snprintf(err, sizeof err, "op: unknown operation %d", (int)req->op);
		rv = CS_EINVAL;
		break;
	}
	assert(rv != 0);
	if (rv == CS_ENOTLEADER && !*err)
		snprintf(err, sizeof err, "this manager lost the leadership: try again");
	return rpc_fail(c, rv, err);
}

/* rpc_forward sends req to the leader this follower knows, as call c. */
static int rpc_forward(struct rpc_call *c, const Cs__ControlRequest *req,
		       const char *leader)
{
	struct control_rpc *r = c->r;
	struct env *env = r->env;
	Cs__ControlRequest fwd = *req;
	Cs__Wire wire = CS__WIRE__INIT;
	char err[RPC_ERR_BYTES];
	uint8_t *buf;
	size_t len;
	int rv;

	if (r->next_wire_id == 0) /* drawn late: runs without control calls
				     draw nothing */
		r->next_wire_id = manager_random(r->m) | 1;
	c->kind = RPC_FORWARD;
	c->wire_id = r->next_wire_id++;
	fwd.id = c->wire_id;
	fwd.reply_to = (char *)env->ops->self_addr(env);
	wire.control_request = &fwd;
	len = cs__wire__get_packed_size(&wire);
	if (len > LIMIT_FRAME_BYTES_MAX) {
		snprintf(err, sizeof err, "request of %zu bytes is over the frame limit",
			 len);
		return rpc_fail(c, CS_ELIMIT, err);
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return CS_ENOMEM;
	cs__wire__pack(&wire, buf);
	rv = env->ops->send(env, leader, buf, len);
	free(buf);
	if (rv) {
		snprintf(err, sizeof err, "could not send to the leader at %s: %s",
			 leader, cs_strerror(rv));
		return rpc_fail(c, CS_EUNREACH, err);
	}
	return 0;
}

static void rpc_timeout(struct env *env, env_timer_id id, void *data)
{
	struct rpc_call *c = data;
	char err[RPC_ERR_BYTES];

	c->timer = 0;
	snprintf(err, sizeof err, "the leader did not answer within %u s",
		 CONTROL_RPC_TIMEOUT_MS / 1000);
	rpc_fail(c, CS_ETIMEDOUT, err);
}

int control_rpc_call(struct control_rpc *r, const Cs__ControlRequest *req,
		     control_rpc_cb cb, void *data)
{
	struct env *env = r->env;
	struct rpc_call *c;
	const char *leader;
	int rv;

	assert(req);
	assert(cb);
	c = rpc_call_new(r, RPC_LOCAL, req->id);
	if (!c)
		return r->call_count >= CONTROL_RPC_PENDING_MAX ? CS_EAGAIN : CS_ENOMEM;
	c->cb = cb;
	c->data = data;
	c->in_call = true;
	if (req->op == CS__CONTROL_OP__CONTROL_OP_NODE_UNLOCK) {
		/* this manager's own keys: never forwarded */
		int u = manager_unlock(r->m, req->unlock_key ? req->unlock_key : "");
		rv = u == 0 ? rpc_finish(c,
					 &(Cs__ControlResponse)CS__CONTROL_RESPONSE__INIT)
			    : rpc_fail(c, u,
				       u == CS_EAUTH
					       ? "wrong unlock key: still locked"
					       : "not an unlock key (SWMKEY-1-...)");
	} else if (manager_locked(r->m)) {
		rv = rpc_fail(c, CS_EAUTH,
			      "this manager is locked: swarmctl node unlock first");
	} else if (req->op == CS__CONTROL_OP__CONTROL_OP_EVENTS) {
		/* this manager's own stream: never forwarded (issue 20) */
		char err[RPC_ERR_BYTES] = "";
		rv = rpc_events(c, req, err, sizeof err);
		if (rv)
			rv = rpc_fail(c, rv, err);
	} else if (manager_serves(r->m)) {
		rv = rpc_exec(c, req);
	} else {
		leader = manager_leader_addr(r->m);
		if (!leader || !*leader ||
		    strcmp(leader, env->ops->self_addr(env)) == 0) {
			rv = rpc_fail(
				c, CS_ENOTLEADER,
				manager_is_leader(r->m)
					? "the leader was just elected and is applying "
					  "what came before it: try again"
					: "no leader: the cluster has no quorum (try again "
					  "once a leader is elected)");
		} else {
			rv = rpc_forward(c, req, leader);
			if (rv == 0 && !c->answer)
				rv = env->ops->timer_start(env, CONTROL_RPC_TIMEOUT_MS, 0,
							   rpc_timeout, c, &c->timer);
		}
	}
	if (rv) {
		rpc_call_end(c);
		return rv;
	}
	c->in_call = false;
	return 0;
}

/* ---------------------------------------------------------------- the wire */

/* Runs a member's forwarded request, answering at reply_to: the member's
 * address in the Raft configuration (never the one the request names). */
static void rpc_serve(struct control_rpc *r, const char *reply_to,
		      const Cs__ControlRequest *req)
{
	Cs__ControlResponse resp = CS__CONTROL_RESPONSE__INIT;
	struct rpc_call *c;

	if (strlen(reply_to) >= LIMIT_ADDR_BYTES_MAX)
		return;
	resp.id = req->id;
	if (!manager_serves(r->m)) {
		/* never forwarded twice: the follower asks again */
		resp.status = CS_ENOTLEADER;
		resp.error = "the manager asked is not the leader any more: try again";
		rpc_send_answer(r, reply_to, &resp);
		return;
	}
	c = rpc_call_new(r, RPC_SERVE, req->id);
	if (c)
		c->reply_to = strdup(reply_to);
	if (!c || !c->reply_to) {
		if (c)
			rpc_call_end(c);
		resp.status = c ? CS_ENOMEM : CS_EAGAIN;
		resp.error = (char *)cs_strerror(resp.status);
		rpc_send_answer(r, reply_to, &resp);
		return;
	}
	rpc_exec(c, req); /* RPC_SERVE answers are sent, never deferred */
}

static void rpc_answered(struct control_rpc *r, const Cs__ControlResponse *resp)
{
	Cs__ControlResponse mine;

	for (struct rpc_call *c = r->calls; c; c = c->next) {
		if (c->kind != RPC_FORWARD || c->wire_id != resp->id || c->answer)
			continue;
		mine = *resp;
		rpc_finish(c, &mine); /* not in the call: runs cb and ends c */
		return;
	}
	/* late (timed out) or a duplicate: dropped */
}

bool control_rpc_handle(struct control_rpc *r, const char *from,
			const struct env_identity *who, const Cs__Wire *wire)
{
	const char *member;

	if (!wire->control_request && !wire->control_response)
		return false;
	/* the control API is the local socket's; over the network only a
	 * member manager forwards it, and only a manager answers */
	member = who->role == ENV_ROLE_MANAGER &&
				 who->cluster_id == manager_cluster_id(r->m)
			 ? manager_member_addr(r->m, who->node_id)
			 : NULL;
	if (!member) {
		env_logf(r->env, ENV_LOG_WARN,
			 "msg=\"refused\" what=%s from=%s node=%016llx why=\"%s\"",
			 wire->control_request ? "control_request" : "control_response",
			 from, (unsigned long long)who->node_id,
			 "control over the network from a sender that is not a member "
			 "manager");
		return true;
	}
	if (wire->control_request)
		rpc_serve(r, member, wire->control_request);
	else
		rpc_answered(r, wire->control_response);
	return true;
}
