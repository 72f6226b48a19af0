/* runner: one scenario on one world. See runner.h. */
#include "sim/runner.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "core/allocator.h"
#include "core/api.pb-c.h"
#include "core/backup.h"
#include "core/ca.h"
#include "core/control.h"
#include "core/errors.h"
#include "core/events.h"
#include "core/logbroker.h"
#include "core/manager.h"
#include "core/node.h"
#include "core/pki.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/clusterops.h"
#include "sim/simdisk.h"
#include "sim/simexec.h"
#include "sim/taskrun.h"

enum { RUNNER_ALWAYS_MAX = 256 };

/* Traced-only event kind for scenario commands (after enum sim_ev_kind). */
#define RUNNER_EV_CMD 10u

struct runner {
	const struct scn_script *script;
	const struct runner_opts *opts;
	struct world *w;
	struct simcluster *cluster;
	struct clops *ops;
	bool real_managers;	/* managers run core/manager (not a test program) */
	uint64_t ports_checked; /* simexec_changes when host ports were judged, +1 */
	uint32_t initial_managers;
	const struct scn_cmd *always[RUNNER_ALWAYS_MAX];
	size_t always_count;
	const struct scn_cmd *cur; /* the command being run */
	struct runner_result *res;
	bool failed;
	uint64_t default_millicpus, default_memory_bytes;
	/* issue 13: the core's refusals counted by node, what the tap saw,
	 * the serials of the certificates the scenario makes */
	uint64_t *refused;
	size_t refused_cap;
	uint64_t refused_total;
	/* `restart NODE`: the node starting (UINT32_MAX: none) and the last
	 * error its program logged meanwhile, the reason a refusal gives */
	uint32_t starting;
	char start_error[256];
	struct runner_seen *seen; /* by node index, seen_cap of them */
	size_t seen_cap;
	uint64_t serial;
	/* `ca rotate`: the root the cluster had when it was asked, and the
	 * one that rotation made (a later `ca rotate` replaces it) */
	bool ca_rotate_asked, ca_rotate_made;
	uint8_t ca_rotate_from[ENV_DIGEST_BYTES];
	uint8_t ca_rotate_to[ENV_DIGEST_BYTES];
	/* the join tokens nodes added later were given (each lives as long
	 * as the run: a node's config points at it) */
	char **tokens;
	size_t token_count;
	/* `kill NODE disk` (issue 20): by node index, the machines gone for
	 * good with their disks; they never start again */
	bool *gone;
	size_t gone_cap;
	/* `backup` (issue 20): every backup taken, the last one restored by
	 * `node add manager from-backup` (configs borrow them: freed at the
	 * end of the run) */
	struct backup **backups;
	size_t backup_count;
	uint32_t restored_number; /* the restored manager's (0: none) */
	/* invariant 8 (issue 20): the first secret the tap saw sent where no
	 * task needs it ("" while none) */
	char secret_leak[200];
	/* invariant 11: what the real agents report of each task, as sent
	 * (NULL with test programs); forging: a forgery leaves a node now,
	 * not the agent's report */
	struct taskrun *runs;
	bool forging;
};

uint64_t runner_seed(const struct scn_script *script, bool has_flag, uint64_t flag_seed)
{
	if (has_flag)
		return flag_seed;
	if (script->has_seed)
		return script->seed;
	return 1;
}

/* Marks the run failed at cmd with a formatted reason (the first failure
 * wins). Always returns -1 so callers can `return runner_fail(...)`. */
__attribute__((format(printf, 3, 4))) static int runner_fail(struct runner *r,
							     const struct scn_cmd *cmd,
							     const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->failed)
		return -1;
	r->failed = true;
	r->res->passed = false;
	r->res->fail_line = cmd->line;
	n = snprintf(r->res->message, sizeof r->res->message,
		     "line %" PRIu32 ": %s: ", cmd->line, cmd->text);
	if (n < 0 || (size_t)n >= sizeof r->res->message)
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->res->message + n, sizeof r->res->message - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int runner_not_built(struct runner *r, const struct scn_cmd *cmd, const char *what)
{
	return runner_fail(r, cmd, "not built yet: %s", what);
}

/* ---------------------------------------------------------------- nodes */

static int runner_node(struct runner *r, const struct scn_cmd *cmd, struct scn_node ref,
		       uint32_t *index);

/* ---------------------------------------------------------------- identity and attacks
 * Issue 13's vocabulary: strangers, `cert NODE ...`, `forge SRC KIND ...`
 * and the conditions `refused`, `term`, `service NAME exists|absent`. */

/* What an attacker on the path learns of a node's session (the tap). */
struct runner_seen {
	uint64_t session_id; /* the last session id its managers gave it */
	uint64_t seq;	     /* the last Assignments seq it was sent */
};

static const struct store *runner_store(struct runner *r, struct manager **mp);

/* Invariant 8 (issue 20) on one Assignments sent to node dst: a secret's or
 * config's data goes only inside a task assigned to dst, not ended (at
 * most RUNNING), whose spec references it (SwarmKit's dispatcher sends a
 * node only the secrets of its live tasks). The first breach is kept in
 * r->secret_leak. */
static void runner_tap_secrets(struct runner *r, const struct world *w, uint32_t dst,
			       const Cs__Assignments *a)
{
	const struct store *st = runner_store(r, NULL);

	for (size_t i = 0; i < a->n_tasks && !r->secret_leak[0]; i++) {
		const Cs__Task *t = a->tasks[i];
		const Cs__ContainerSpec *cs =
			t->spec && t->spec->container ? t->spec->container : NULL;
		for (size_t j = 0; j < t->n_secret_data && !r->secret_leak[0]; j++) {
			const Cs__Secret *x = t->secret_data[j];
			size_t n = !cs ? 0 : x->config ? cs->n_configs : cs->n_secrets;
			Cs__SecretReference **refs = !cs	 ? NULL
						     : x->config ? cs->configs
								 : cs->secrets;
			bool used = false;
			for (size_t k = 0; k < n && !used; k++)
				used = refs[k]->secret_id == x->id;
			/* the task's node is the machine it is sent to (a
			 * machine that joined again under a new id has two
			 * records of its hostname: the task's one must be its) */
			const Cs__Node *rec = st ? store_node_get(st, t->node_id) : NULL;
			bool ended =
				t->status &&
				t->status->state > CS__TASK_STATE__TASK_STATE_RUNNING;
			if (!used || ended ||
			    (rec && rec->hostname &&
			     strcmp(rec->hostname, world_node_name(w, dst)) != 0))
				snprintf(
					r->secret_leak, sizeof r->secret_leak,
					"invariant 8 (secrets): %s %s sent to %s with task "
					"%016" PRIx64 " %s",
					x->config ? "config" : "secret",
					x->name ? x->name : "", world_node_name(w, dst),
					t->id,
					!used	? "whose spec does not reference it"
					: ended ? "that has ended"
						: "assigned to another node");
		}
	}
}

/* The tap: keeps the session ids and assignment numbers sent to each node,
 * for `forge ... status` and `assignments`, and checks invariant 8 on the
 * assignments. Reads only. */
static void runner_tap(void *ctx, const struct world *w, uint32_t src, uint32_t dst,
		       const uint8_t *data, size_t len)
{
	struct runner *r = ctx;
	Cs__Wire *wire;

	(void)src;
	if (len == 0 || (data[0] != (6 << 3 | 2) && data[0] != (9 << 3 | 2)))
		return; /* neither a session response nor assignments: skip the decode */
	wire = cs__wire__unpack(NULL, len, data);
	if (!wire)
		return;
	if (wire->assignments && r->real_managers)
		runner_tap_secrets(r, w, dst, wire->assignments);
	if (dst >= r->seen_cap) {
		cs__wire__free_unpacked(wire, NULL);
		return;
	}
	if (wire->session_response && wire->session_response->status == 0 &&
	    wire->session_response->session_id)
		r->seen[dst].session_id = wire->session_response->session_id;
	if (wire->assignments) {
		r->seen[dst].session_id = wire->assignments->session_id;
		if (wire->assignments->seq > r->seen[dst].seq)
			r->seen[dst].seq = wire->assignments->seq;
	}
	cs__wire__free_unpacked(wire, NULL);
}

/* The send tap (invariant 11): every StatusUpdate a real agent sends, in
 * the order its node sends them. Reads only. */
static void runner_send_tap(void *ctx, const struct world *w, uint32_t src, uint32_t dst,
			    const uint8_t *data, size_t len)
{
	struct runner *r = ctx;

	(void)w;
	(void)dst;
	if (!r->forging)
		taskrun_frame(r->runs, src, data, len);
}

/* Every program log line: counts the core's refusals (`msg="refused"`), by
 * node, then hands the line on. */
static void runner_log(void *ctx, const struct world *w, uint32_t node,
		       enum env_log_level level, const char *msg)
{
	struct runner *r = ctx;

	if (strstr(msg, "msg=\"refused\"")) {
		r->refused_total++;
		if (node >= r->refused_cap) {
			size_t cap = world_node_count(w) + 16;
			uint64_t *c = realloc(r->refused, cap * sizeof *c);
			if (c) {
				memset(c + r->refused_cap, 0,
				       (cap - r->refused_cap) * sizeof *c);
				r->refused = c;
				r->refused_cap = cap;
			}
		}
		if (node < r->refused_cap)
			r->refused[node]++;
	}
	if (node == r->starting && level == ENV_LOG_ERROR) {
		/* the msg="..." of the line (else the line), and its why */
		const char *m = strstr(msg, "msg=\""), *why = strstr(msg, "why=\"");
		m = m ? m + 5 : msg;
		snprintf(r->start_error, sizeof r->start_error, "%.*s%s%.*s%s",
			 (int)strcspn(m, "\""), m, why ? " (" : "",
			 why ? (int)strcspn(why + 5, "\"") : 0, why ? why + 5 : "",
			 why ? ")" : "");
	}
	if (r->opts->log)
		r->opts->log(r->opts->log_ctx, w, node, level, msg);
}

/* The store of the leader, else of the first running manager, else NULL. */
static const struct store *runner_store(struct runner *r, struct manager **mp)
{
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *m = NULL;

	if (leader >= 0)
		m = simcluster_manager(r->cluster, (uint32_t)leader);
	for (uint32_t i = 0; !m && i < world_node_count(r->w); i++)
		m = simcluster_manager(r->cluster, i);
	if (mp)
		*mp = m;
	return m ? manager_store(m) : NULL;
}

/* The highest current term of any running manager. */
static uint64_t runner_max_term(struct runner *r)
{
	uint64_t max = 0;
	for (uint32_t i = 0; i < world_node_count(r->w); i++) {
		struct manager *m = simcluster_manager(r->cluster, i);
		if (m && manager_term(m) > max)
			max = manager_term(m);
	}
	return max;
}

/* The store's record of the node named hostname, or NULL. */
static const Cs__Node *runner_node_record(const struct store *st, const char *hostname)
{
	if (!st)
		return NULL;
	for (const Cs__Node *nd = store_node_next(st, NULL); nd;
	     nd = store_node_next(st, nd))
		if (nd->hostname && strcmp(nd->hostname, hostname) == 0)
			return nd;
	return NULL;
}

/* A batch deleting every service of st (encoded; free with free()). */
static int runner_delete_all(const struct store *st, uint64_t proposer, uint8_t **buf,
			     size_t *len)
{
	struct store_batch b;
	int rv = 0;

	store_batch_init(&b);
	for (const Cs__Service *s = store_service_next(st, NULL); s && !rv;
	     s = store_service_next(st, s))
		rv = store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_DELETE, s);
	if (!rv)
		rv = store_batch_encode(&b, proposer, 1, buf, len);
	store_batch_free(&b);
	return rv;
}

/* cert NODE expire|foreign|other-cluster|none */
static int runner_cert(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_cert *sc = &cmd->u.cert;
	const struct store *st = runner_store(r, NULL);
	const Cs__Cluster *cl = st ? store_cluster(st) : NULL;
	struct env_identity own, who;
	struct env_blob cert_blob, csr_blob, ca_cert_blob, ca_key_blob;
	uint8_t csr[PKI_DER_BYTES_MAX], cert[PKI_DER_BYTES_MAX];
	uint8_t ca_cert[PKI_DER_BYTES_MAX], ca_key[PKI_DER_BYTES_MAX];
	size_t csr_len, cert_len, ca_cert_len, ca_key_len;
	int64_t now_s = world_pki_now_s(r->w), nb, na;
	char why[PKI_WHY_BYTES] = "";
	uint32_t node;
	int rv;

	if (runner_node(r, cmd, sc->node, &node))
		return -1;
	if (sc->kind == SCN_CERT_NONE) {
		rv = world_pki_cert_set(r->w, node, NULL);
		return rv ? runner_fail(r, cmd, "%s", cs_strerror(rv)) : 0;
	}
	cert_blob = (struct env_blob){NULL, 0};
	memset(&who, 0, sizeof who);
	if (world_node_env(r->w, node)
		    ->ops->pki_info(world_node_env(r->w, node), &cert_blob, &own) == 0) {
		who = own;
	} else {
		/* none yet (a stranger): a worker's, under a name of its own */
		who.node_id = rng_mix64(0x5354524e47ull ^ node) | 1;
		who.role = ENV_ROLE_WORKER;
		who.cluster_id = cl ? cl->id : 1;
	}
	rv = world_pki_csr(r->w, node, csr, sizeof csr, &csr_len);
	if (rv)
		return runner_fail(r, cmd, "CSR: %s", cs_strerror(rv));
	if (sc->kind == SCN_CERT_EXPIRE) {
		if (!cl || !cl->ca_cert.len || !cl->ca_key.len)
			return runner_fail(r, cmd, "the cluster has no CA in its store");
		ca_cert_blob = (struct env_blob){cl->ca_cert.data, cl->ca_cert.len};
		ca_key_blob = (struct env_blob){cl->ca_key.data, cl->ca_key.len};
		nb = now_s - 3600;
		na = now_s; /* valid while now < not_after: expired now */
	} else {
		uint8_t seed[PKI_SEED_BYTES];
		uint64_t cluster_id = who.cluster_id;
		for (size_t i = 0; i < PKI_SEED_BYTES; i += 8) {
			uint64_t x = rng_next(world_rng(r->w, RNG_WORKLOAD));
			memcpy(seed + i, &x, 8);
		}
		if (sc->kind == SCN_CERT_OTHER_CLUSTER)
			cluster_id = rng_mix64(cluster_id ^ 0x6f74686572ull) | 1;
		rv = pki_ca_create(seed, cluster_id, now_s - 60, now_s + 90 * 86400,
				   ++r->serial, ca_cert, sizeof ca_cert, &ca_cert_len,
				   ca_key, sizeof ca_key, &ca_key_len);
		if (rv)
			return runner_fail(r, cmd, "CA: %s", cs_strerror(rv));
		ca_cert_blob = (struct env_blob){ca_cert, ca_cert_len};
		ca_key_blob = (struct env_blob){ca_key, ca_key_len};
		who.cluster_id = cluster_id;
		nb = now_s - 60;
		na = now_s + 90 * 86400;
	}
	csr_blob = (struct env_blob){csr, csr_len};
	rv = pki_sign(&ca_cert_blob, &ca_key_blob, &csr_blob, &who, nb, na, ++r->serial,
		      cert, sizeof cert, &cert_len, why);
	if (rv)
		return runner_fail(r, cmd, "signing: %s %s", cs_strerror(rv), why);
	cert_blob = (struct env_blob){cert, cert_len};
	rv = world_pki_cert_set(r->w, node, &cert_blob);
	return rv ? runner_fail(r, cmd, "%s", cs_strerror(rv)) : 0;
}

/* forge SRC KIND to=DST [as=NODE]: builds the message as an attacker holding
 * SRC's key would, with what it could know or guess most convincingly, and
 * sends it from SRC's env (so with SRC's certificate). */
static int runner_forge(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_forge *f = &cmd->u.forge;
	struct manager *any = NULL;
	const struct store *st = runner_store(r, &any);
	const Cs__Cluster *cl = st ? store_cluster(st) : NULL;
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *lm = NULL;
	uint32_t src, dst, as = UINT32_MAX;
	const char *src_name, *dst_name, *as_name = NULL;
	const Cs__Node *as_rec = NULL, *dst_rec;
	struct manager *dm;
	Cs__Wire wire = CS__WIRE__INIT;
	Cs__RaftMessage rm = CS__RAFT_MESSAGE__INIT;
	Cs__RaftEntry re = CS__RAFT_ENTRY__INIT, *rep[1] = {&re};
	Cs__Proposal pr = CS__PROPOSAL__INIT;
	Cs__ControlRequest cr = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec cs = CS__CONTAINER_SPEC__INIT;
	Cs__JoinRequest jr = CS__JOIN_REQUEST__INIT;
	Cs__SessionRequest sq = CS__SESSION_REQUEST__INIT;
	Cs__SessionResponse sr = CS__SESSION_RESPONSE__INIT;
	Cs__StatusUpdate su = CS__STATUS_UPDATE__INIT;
	Cs__CertRequest cq = CS__CERT_REQUEST__INIT;
	Cs__Assignments asg = CS__ASSIGNMENTS__INIT;
	Cs__Task task = CS__TASK__INIT, **tasks = NULL;
	Cs__TaskStatus tstat = CS__TASK_STATUS__INIT, *stats = NULL;
	char *managers[1];
	uint8_t csr[PKI_DER_BYTES_MAX];
	size_t csr_len = 0, n_tasks = 0;
	uint8_t *batch = NULL, *buf = NULL;
	size_t batch_len = 0, len;
	int rv = 0;

	/* whom to impersonate: the leader, or with none the manager with the
	 * highest term (the last one that led) */
	if (leader >= 0) {
		lm = simcluster_manager(r->cluster, (uint32_t)leader);
	} else {
		for (uint32_t i = 0; i < world_node_count(r->w); i++) {
			struct manager *m = simcluster_manager(r->cluster, i);
			if (m && (!lm || manager_term(m) > manager_term(lm))) {
				lm = m;
				leader = i;
			}
		}
	}
	if (runner_node(r, cmd, f->src, &src) || runner_node(r, cmd, f->dst, &dst))
		return -1;
	if (f->has_as && runner_node(r, cmd, f->as, &as))
		return -1;
	if (!world_node_is_up(r->w, src))
		return runner_fail(r, cmd, "%s is down", world_node_name(r->w, src));
	src_name = world_node_name(r->w, src);
	dst_name = world_node_name(r->w, dst);
	if (as != UINT32_MAX) {
		as_name = world_node_name(r->w, as);
		as_rec = runner_node_record(st, as_name);
	}
	dst_rec = runner_node_record(st, dst_name);
	dm = simcluster_manager(r->cluster, dst);
	switch (f->kind) {
	case SCN_FORGE_RAFT_APPEND:
		if (!st || !lm)
			return runner_fail(r, cmd, "no leader to impersonate");
		/* the leader's raft id and address, a term above every
		 * manager's, one entry deleting every service, placed right
		 * after what the victim holds */
		rv = runner_delete_all(st, manager_raft_id(lm), &batch, &batch_len);
		if (rv)
			return runner_fail(r, cmd, "%s", cs_strerror(rv));
		rm.type = RAFT_IO_APPEND_ENTRIES;
		rm.from_id = manager_raft_id(lm);
		rm.from_address = (char *)world_node_name(r->w, (uint32_t)leader);
		rm.term = runner_max_term(r) + 1;
		if (simcluster_manager(r->cluster, src)) {
			/* a member's own key (a compromised manager): its own raft
			 * id and address, claiming the lead in the leader's
			 * current term (libraft 0.15 crashed on one at the
			 * leader's own term) */
			rm.from_id = manager_raft_id(simcluster_manager(r->cluster, src));
			rm.from_address = (char *)src_name;
			rm.term = manager_term(lm);
		}
		rm.prev_log_index = dm ? manager_applied(dm) : manager_applied(lm);
		rm.prev_log_term = dm ? manager_term(dm) : manager_term(lm);
		rm.leader_commit = rm.prev_log_index + 1;
		re.term = rm.term;
		re.type = RAFT_COMMAND;
		re.data = (ProtobufCBinaryData){batch_len, batch};
		rm.n_entries = 1;
		rm.entries = rep;
		wire.raft = &rm;
		break;
	case SCN_FORGE_RAFT_VOTE: {
		/* the term that bricked the cluster, from a member's raft id
		 * (as=NODE's, else SRC's own, else the leader's) */
		uint64_t id = as != UINT32_MAX ? simcluster_number(r->cluster, as)
					       : simcluster_number(r->cluster, src);
		if (!id && lm)
			id = manager_raft_id(lm);
		rm.type = RAFT_IO_REQUEST_VOTE;
		rm.from_id = id ? id : 1;
		rm.from_address = (char *)src_name;
		rm.term = UINT64_MAX;
		rm.candidate_id = rm.from_id;
		rm.last_log_index = simcluster_max_applied(r->cluster) + 1000;
		rm.last_log_term = UINT64_MAX;
		rm.disrupt_leader = true;
		wire.raft = &rm;
		break;
	}
	case SCN_FORGE_PROPOSAL:
		if (!st)
			return runner_fail(r, cmd, "no manager running");
		rv = runner_delete_all(st, lm ? manager_raft_id(lm) : 1, &batch,
				       &batch_len);
		if (rv)
			return runner_fail(r, cmd, "%s", cs_strerror(rv));
		pr.id = 1;
		pr.batch = (ProtobufCBinaryData){batch_len, batch};
		pr.reply_to = (char *)src_name;
		wire.proposal = &pr;
		break;
	case SCN_FORGE_CONTROL:
		cs.image = (char *)"evil";
		ts.container = &cs;
		spec.name = (char *)"evil";
		spec.replicas = 1;
		spec.task = &ts;
		cr.id = 1;
		cr.reply_to = (char *)src_name;
		cr.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
		cr.name = (char *)"evil";
		cr.spec = &spec;
		wire.control_request = &cr;
		break;
	case SCN_FORGE_JOIN: {
		uint64_t ids[LIMIT_MANAGERS_MAX], max = 0;
		size_t n = lm ? manager_voters(lm, ids, LIMIT_MANAGERS_MAX) : 0;
		for (size_t i = 0; i < n && i < LIMIT_MANAGERS_MAX; i++)
			max = ids[i] > max ? ids[i] : max;
		jr.raft_id =
			(max > r->script->managers_total ? max
							 : r->script->managers_total) +
			1;
		jr.addr = (char *)src_name;
		jr.token = cl && cl->manager_token ? cl->manager_token : (char *)"";
		wire.join = &jr;
		break;
	}
	case SCN_FORGE_SESSION:
		/* as=NODE's id, name, role and raft id; no token */
		sq.node_id = as_rec ? as_rec->id : 0;
		sq.hostname = (char *)as_name;
		sq.role = as_rec ? as_rec->role : CS__NODE_ROLE__NODE_ROLE_WORKER;
		if (as_rec && as_rec->resources)
			sq.resources = as_rec->resources;
		sq.raft_id = simcluster_number(r->cluster, as);
		if (sq.raft_id)
			sq.manager_addr = (char *)src_name;
		wire.session = &sq;
		break;
	case SCN_FORGE_STATUS:
		/* every task of as=NODE FAILED, under its id and session */
		su.node_id = as_rec ? as_rec->id : 0;
		su.session_id = as < r->seen_cap ? r->seen[as].session_id : 0;
		if (as_rec && st) {
			for (const Cs__Task *t =
				     store_task_next_by_node(st, as_rec->id, NULL);
			     t; t = store_task_next_by_node(st, as_rec->id, t))
				n_tasks++;
			tasks = calloc(n_tasks ? n_tasks : 1,
				       sizeof *tasks + sizeof(Cs__Task) +
					       sizeof(Cs__TaskStatus));
			if (!tasks)
				return runner_fail(r, cmd, "out of memory");
			{
				Cs__Task *ts_arr = (Cs__Task *)(tasks + n_tasks);
				Cs__TaskStatus *st_arr =
					(Cs__TaskStatus *)(ts_arr + n_tasks);
				size_t k = 0;
				for (const Cs__Task *t = store_task_next_by_node(
					     st, as_rec->id, NULL);
				     t && k < n_tasks;
				     t = store_task_next_by_node(st, as_rec->id, t),
						    k++) {
					cs__task__init(&ts_arr[k]);
					cs__task_status__init(&st_arr[k]);
					ts_arr[k].id = t->id;
					st_arr[k].state =
						CS__TASK_STATE__TASK_STATE_FAILED;
					st_arr[k].message = (char *)"forged";
					st_arr[k].exit_code = 1;
					ts_arr[k].status = &st_arr[k];
					tasks[k] = &ts_arr[k];
				}
			}
		}
		su.n_tasks = n_tasks;
		su.tasks = tasks;
		wire.status_update = &su;
		break;
	case SCN_FORGE_CERT_REQUEST: {
		uint8_t seed[PKI_SEED_BYTES];
		for (size_t i = 0; i < PKI_SEED_BYTES; i += 8) {
			uint64_t x = rng_next(world_rng(r->w, RNG_WORKLOAD));
			memcpy(seed + i, &x, 8);
		}
		rv = pki_csr_create(seed, csr, sizeof csr, &csr_len);
		if (rv)
			return runner_fail(r, cmd, "CSR: %s", cs_strerror(rv));
		cq.csr = (ProtobufCBinaryData){csr_len, csr};
		cq.token = cl && cl->worker_token ? cl->worker_token : (char *)"";
		cq.node_id = as_rec ? as_rec->id : 0;
		cq.hostname = (char *)as_name;
		wire.cert_request = &cq;
		break;
	}
	case SCN_FORGE_SESSION_RESPONSE:
		/* SRC as the leader, for the agent's own node */
		sr.status = 0;
		sr.node_id = dst_rec ? dst_rec->id : 0;
		sr.session_id = dst < r->seen_cap && r->seen[dst].session_id
					? r->seen[dst].session_id + 1
					: 1;
		sr.heartbeat_ms = 5000;
		sr.leader = (char *)src_name;
		managers[0] = (char *)src_name;
		sr.n_managers = 1;
		sr.managers = managers;
		sr.desired_role =
			dst_rec ? dst_rec->role : CS__NODE_ROLE__NODE_ROLE_WORKER;
		wire.session_response = &sr;
		break;
	case SCN_FORGE_ASSIGNMENTS:
		/* the agent's current session, the next number, a full set of
		 * one task running image "evil" */
		cs.image = (char *)"evil";
		ts.container = &cs;
		tstat.state = CS__TASK_STATE__TASK_STATE_ASSIGNED;
		task.id = 0xe0e0e0e0e0e0e0e0ull;
		task.service_id = 0xe1e1e1e1e1e1e1e1ull;
		task.slot = 1;
		task.node_id = dst_rec ? dst_rec->id : 0;
		task.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
		task.status = &tstat;
		task.spec = &ts;
		task.spec_version = 1;
		task.version = 1;
		task.service_name = (char *)"evil";
		stats = NULL;
		tasks = calloc(1, sizeof *tasks);
		if (!tasks)
			return runner_fail(r, cmd, "out of memory");
		tasks[0] = &task;
		asg.session_id = dst < r->seen_cap ? r->seen[dst].session_id : 0;
		asg.full = true;
		asg.seq = (dst < r->seen_cap ? r->seen[dst].seq : 0) + 1;
		asg.set_seq = asg.seq;
		asg.n_tasks = 1;
		asg.tasks = tasks;
		wire.assignments = &asg;
		break;
	}
	(void)stats;
	(void)any;
	len = cs__wire__get_packed_size(&wire);
	buf = malloc(len ? len : 1);
	if (!buf) {
		rv = CS_ENOMEM;
		goto out;
	}
	cs__wire__pack(&wire, buf);
	world_trace(r->w, src, (enum sim_ev_kind)RUNNER_EV_CMD, 0xf0f0 + f->kind, dst);
	r->forging = true;
	rv = world_node_env(r->w, src)->ops->send(world_node_env(r->w, src), dst_name,
						  buf, len);
	r->forging = false;
out:
	free(buf);
	free(batch);
	free(tasks);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

/* The refusals logged on node (UINT32_MAX: anywhere). */
static uint64_t runner_refused(const struct runner *r, uint32_t node)
{
	if (node == UINT32_MAX)
		return r->refused_total;
	return node < r->refused_cap ? r->refused[node] : 0;
}

/* refused [on NODE] OP N | term OP N | service NAME exists|absent */
static int runner_cond_identity(struct runner *r, const struct scn_cond *cond, char *got,
				size_t got_size)
{
	uint64_t count = 0;

	switch (cond->kind) {
	case SCN_COND_REFUSED: {
		uint32_t node = UINT32_MAX;
		if (cond->has_node) {
			char name[32];
			int64_t i;
			if (cond->node.kind == SCN_NODE_LEADER) {
				i = simcluster_leader(r->cluster);
				if (i < 0) {
					snprintf(got, got_size, "no leader");
					return 0;
				}
			} else {
				i = world_node_find(r->w, scn_node_name(cond->node, name,
									sizeof name));
				if (i < 0) {
					snprintf(got, got_size, "no node %s", name);
					return 0;
				}
			}
			node = (uint32_t)i;
		}
		count = runner_refused(r, node);
		break;
	}
	case SCN_COND_TERM: count = runner_max_term(r); break;
	case SCN_COND_SERVICE: {
		/* exists: some running manager's store holds it; absent: none */
		const char *holder = NULL;
		for (uint32_t i = 0; i < world_node_count(r->w) && !holder; i++) {
			struct manager *m = simcluster_manager(r->cluster, i);
			if (m && store_service_by_name(manager_store(m), cond->service))
				holder = world_node_name(r->w, i);
		}
		if ((holder != NULL) == cond->exists)
			return 1;
		if (holder)
			snprintf(got, got_size, "%s holds it", holder);
		else
			snprintf(got, got_size, "no manager holds it");
		return 0;
	}
	default: assert(!"not an identity condition"); return 0;
	}
	if (scn_op_holds(cond->op, count, cond->count))
		return 1;
	snprintf(got, got_size, "%" PRIu64, count);
	return 0;
}

/* ---------------------------------------------------------------- events */

struct runner_event_find {
	const struct scn_cond *cond;
	bool found;
};

static void runner_event_visit(void *arg, const struct events_event *ev)
{
	struct runner_event_find *f = arg;
	if (strcmp(ev->name, f->cond->service) == 0 &&
	    (uint64_t)ev->action == f->cond->count &&
	    strcmp(events_kinds[ev->kind].name, f->cond->reason) == 0)
		f->found = true;
}

/* event KIND NAME ACTION (issue 20): some running manager's event stream
 * (what `swarmctl events` reads there) holds such an event among those it
 * keeps. */
static int runner_cond_event(struct runner *r, const struct scn_cond *cond, char *got,
			     size_t got_size)
{
	struct runner_event_find f = {cond, false};
	size_t managers = 0;

	for (uint32_t i = 0; i < world_node_count(r->w) && !f.found; i++) {
		struct manager *m = simcluster_manager(r->cluster, i);
		struct events *e = m ? manager_events(m) : NULL;
		uint64_t index, ni;
		uint32_t ord, no;
		char err[256];
		int n;
		if (!e)
			continue;
		managers++;
		if (!events_oldest(e, &index, &ord))
			continue;
		/* what the ring has, from its oldest on */
		do {
			n = events_read(e, NULL, index, ord, EVENTS_READ_MAX,
					runner_event_visit, &f, &ni, &no, err,
					sizeof err);
			index = ni;
			ord = no;
		} while (n > 0 && !f.found);
	}
	if (f.found)
		return 1;
	snprintf(got, got_size, "no such event on any of %zu running managers", managers);
	return 0;
}

/* Resolves a node reference to a world index, or fails the run. */
static int runner_node(struct runner *r, const struct scn_cmd *cmd, struct scn_node ref,
		       uint32_t *index)
{
	char name[32];
	int64_t i;

	if (ref.kind == SCN_NODE_LEADER) {
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"`leader` needs the Raft managers");
		i = simcluster_leader(r->cluster);
		if (i < 0)
			return runner_fail(r, cmd, "no leader at sim=%.1fs",
					   (double)world_now_us(r->w) / 1e6);
		*index = (uint32_t)i;
		return 0;
	}
	scn_node_name(ref, name, sizeof name);
	i = world_node_find(r->w, name);
	if (i < 0)
		return runner_fail(r, cmd, "no node %s", name);
	*index = (uint32_t)i;
	return 0;
}

/* A node added later joins with the token the cluster holds now, as an
 * operator would read it (`swarmctl cluster join-token`): after a `ca
 * rotate`, not the one the cluster began with (`node add ... token=initial`
 * keeps that one). The config is the cluster's, made for this node alone. */
static void runner_current_token(struct runner *r, struct node_cfg *cfg, bool manager)
{
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *m =
		leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader) : NULL;
	const Cs__Cluster *c = m ? store_cluster(manager_store(m)) : NULL;
	const char *token = c ? (manager ? c->manager_token : c->worker_token) : NULL;

	if (!token || !*token || strlen(token) >= PKI_TOKEN_BYTES)
		return;
	char **t = realloc(r->tokens, (r->token_count + 1) * sizeof *t);
	if (!t)
		return; /* the token it was made with: refused, and logged */
	r->tokens = t;
	t[r->token_count] = strdup(token);
	if (!t[r->token_count])
		return;
	cfg->agent.join_token = t[r->token_count++];
}

/* backup (issue 20): the leader's store at its applied index, as the
 * control API's CLUSTER_BACKUP makes it, read back as swarmd --restore
 * would; kept for `node add manager from-backup`. */
static int runner_backup(struct runner *r, const struct scn_cmd *cmd)
{
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *m =
		leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader) : NULL;
	char why[BACKUP_WHY_BYTES];
	struct backup *b, **v;
	uint8_t *buf;
	size_t len;
	int rv;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "backup needs the cluster's programs");
	if (!m || !manager_serves(m))
		return runner_fail(r, cmd, "no leader serves: no backup");
	rv = backup_encode(manager_store(m), manager_term(m), &buf, &len);
	if (rv)
		return runner_fail(r, cmd, "backup refused: %s", cs_strerror(rv));
	b = calloc(1, sizeof *b);
	v = realloc(r->backups, (r->backup_count + 1) * sizeof *v);
	if (v)
		r->backups = v;
	if (!b || !v) {
		free(b);
		free(buf);
		return runner_fail(r, cmd, "out of memory");
	}
	rv = backup_decode(buf, len, b, why, sizeof why);
	free(buf);
	if (rv) {
		free(b);
		return runner_fail(r, cmd, "the backup does not read back: %s", why);
	}
	r->backups[r->backup_count++] = b;
	return 0;
}

/* node add manager from-backup: every manager must be down (a restore
 * starts a new cluster; two would share the cluster's id); the new
 * manager's config restores the last backup, and the invariants' history
 * starts again at the backup. */
static int runner_from_backup(struct runner *r, const struct scn_cmd *cmd,
			      uint32_t number)
{
	const struct backup *b;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "a restore needs the cluster's programs");
	if (r->backup_count == 0)
		return runner_fail(r, cmd, "no backup was taken");
	for (size_t i = 0; i < world_node_count(r->w); i++)
		if (simcluster_number(r->cluster, (uint32_t)i) &&
		    world_node_is_up(r->w, (uint32_t)i))
			return runner_fail(r, cmd,
					   "%s still runs: a restore starts a new "
					   "cluster once the old one is gone",
					   world_node_name(r->w, (uint32_t)i));
	b = r->backups[r->backup_count - 1];
	if (simcluster_restore_cfg(r->cluster, number, b))
		return runner_fail(r, cmd, "out of memory");
	simcluster_new_history(r->cluster, b->index, b->term);
	clops_forget_after(r->ops, b->index);
	/* nodes added from now on ask m1..mN: the new manager among them */
	r->restored_number = number;
	return 0;
}

static int runner_add_node(struct runner *r, const struct scn_cmd *cmd,
			   struct scn_node ref)
{
	bool manager = ref.kind == SCN_NODE_MANAGER;
	char name[32];
	uint32_t index;
	int rv;

	const struct env_program_ops *prog =
		manager ? r->opts->manager_prog : r->opts->worker_prog;
	const void *cfg = manager ? r->opts->manager_cfg : r->opts->worker_cfg;

	scn_node_name(ref, name, sizeof name);
	if (ref.kind == SCN_NODE_STRANGER) {
		/* runs nothing, holds no certificate: a source of forgeries */
		prog = NULL;
		cfg = NULL;
	} else if (r->real_managers) {
		/* every node runs an agent; the cluster's first managers
		 * bootstrap together, later ones join */
		bool restore = cmd->kind == SCN_NODE_ADD && cmd->u.node.from_backup;
		prog = &node_program;
		if (cmd->kind == SCN_NODE_ADD && cmd->u.node.desc &&
		    simcluster_describe(r->cluster, name, cmd->u.node.desc))
			return runner_fail(r, cmd, "out of memory");
		if (restore && runner_from_backup(r, cmd, ref.number))
			return -1;
		/* a restored manager's agent asks m1..mN, itself among them,
		 * and so do nodes added after it */
		cfg = simcluster_node_cfg(r->cluster, name, manager ? ref.number : 0,
					  manager && ref.number <= r->initial_managers
						  ? r->initial_managers
						  : 0,
					  restore	       ? ref.number
					  : r->restored_number ? r->restored_number
							       : r->initial_managers,
					  r->default_millicpus, r->default_memory_bytes);
		if (!cfg)
			return runner_fail(r, cmd, "out of memory");
	}
	rv = world_node_add(r->w, name, prog, cfg, &index);
	if (rv)
		return runner_fail(r, cmd, "cannot add node %s: %s", name,
				   cs_strerror(rv));
	if (cfg && prog == &node_program && cmd->kind == SCN_NODE_ADD &&
	    !cmd->u.node.initial_token)
		runner_current_token(r, (struct node_cfg *)cfg, manager);
	if (simcluster_track(r->cluster, index,
			     manager && r->real_managers ? ref.number : 0))
		return runner_fail(r, cmd, "out of memory");
	rv = world_node_start(r->w, index);
	if (rv)
		return runner_fail(r, cmd, "node %s failed to start: %s", name,
				   cs_strerror(rv));
	return 0;
}

static int runner_cluster(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_cluster *c = &cmd->u.cluster;

	/* the settings set right after `cluster`, before anything runs, are
	 * the nodes' from their start, as if set before it (Raft's timing:
	 * the parser allows no later one; the heartbeat period, the task
	 * history, snapshot-every and the certificates' life were read only
	 * at a restart) */
	for (const struct scn_cmd *next = cmd + 1;
	     next < r->script->cmds + r->script->cmd_count &&
	     (next->kind == SCN_SET || next->kind == SCN_SEED);
	     next++) {
		struct scn_settings early = next->u.settings;
		if (next->kind != SCN_SET)
			continue;
		early.set &= SCN_SET_ELECTION_TICKS | SCN_SET_TICK | SCN_SET_HEARTBEAT |
			     SCN_SET_HISTORY | SCN_SET_SNAPSHOT_EVERY |
			     SCN_SET_CERT_EXPIRY;
		if (early.set)
			simcluster_set(r->cluster, &early);
	}
	r->initial_managers = c->managers;
	simcluster_set_next_number(r->cluster, r->script->managers_total + 1);
	r->default_millicpus = c->millicpus;
	r->default_memory_bytes = c->memory_bytes;
	for (uint32_t i = 1; i <= c->managers; i++)
		if (runner_add_node(r, cmd, (struct scn_node){SCN_NODE_MANAGER, i}))
			return -1;
	for (uint32_t i = 1; i <= c->workers; i++)
		if (runner_add_node(r, cmd, (struct scn_node){SCN_NODE_WORKER, i}))
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- conditions */

/* ca rotated: the leader's store says the rotation is over (no phase), its
 * root is not the one `ca rotate` started from but the one the last `ca
 * rotate` made (not a root it replaced), and every node's record says its
 * certificate is from that root and it trusts that root alone. */
static int runner_cond_ca_rotated(struct runner *r, char *got, size_t got_size)
{
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *m =
		leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader) : NULL;
	const struct store *st = m ? manager_store(m) : NULL;
	const Cs__Cluster *c = st ? store_cluster(st) : NULL;
	uint8_t root[ENV_DIGEST_BYTES];
	size_t behind = 0, total = 0;

	if (!c || c->ca_cert.len == 0) {
		snprintf(got, got_size, "no leader with a cluster record");
		return 0;
	}
	if (c->ca_rotation != CS__CA_ROTATION_PHASE__CA_ROTATION_NONE) {
		uint64_t ids[LIMIT_MANAGERS_MAX];
		size_t done, all, voters = manager_voters(m, ids, LIMIT_MANAGERS_MAX);
		ca_rotation_progress(st, ids, voters, &done, &all);
		snprintf(got, got_size, "phase %s, %zu of %zu nodes done with it",
			 ca_rotation_name(c->ca_rotation), done, all);
		return 0;
	}
	pki_digest(c->ca_cert.data, c->ca_cert.len, root);
	if (r->ca_rotate_asked && memcmp(root, r->ca_rotate_from, sizeof root) == 0) {
		snprintf(got, got_size, "the root is still the one before `ca rotate`");
		return 0;
	}
	if (r->ca_rotate_made && memcmp(root, r->ca_rotate_to, sizeof root) != 0) {
		snprintf(got, got_size,
			 "the root is not the one the last `ca rotate` made");
		return 0;
	}
	for (const Cs__Node *n = store_node_next(st, NULL); n;
	     n = store_node_next(st, n)) {
		total++;
		if (n->cert_root.len != sizeof root ||
		    memcmp(n->cert_root.data, root, sizeof root) != 0 ||
		    n->n_cert_trust != 1 || n->cert_trust[0].len != sizeof root ||
		    memcmp(n->cert_trust[0].data, root, sizeof root) != 0)
			behind++;
	}
	if (behind == 0)
		return 1;
	snprintf(got, got_size, "%zu of %zu nodes not on the new root alone", behind,
		 total);
	return 0;
}

static int runner_api(struct runner *r, const struct scn_cmd *cmd, uint32_t node);

/* ca rotate: through the leader's control API, as swarmctl ca rotate; the
 * root it starts from is kept for `ca rotated`. */
static int runner_ca_rotate(struct runner *r, const struct scn_cmd *cmd)
{
	int64_t leader;
	struct manager *m;
	const Cs__Cluster *c;
	int rv;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "ca rotate needs the control API");
	rv = runner_api(r, cmd, UINT32_MAX);
	if (rv)
		return rv;
	leader = simcluster_leader(r->cluster);
	m = leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader) : NULL;
	c = m ? store_cluster(manager_store(m)) : NULL;
	if (c && c->ca_cert.len) {
		r->ca_rotate_asked = true;
		/* committed: the root it rotates from is still ca_cert,
		 * the one it made ca_next_cert */
		pki_digest(c->ca_cert.data, c->ca_cert.len, r->ca_rotate_from);
		r->ca_rotate_made = c->ca_next_cert.len > 0;
		if (r->ca_rotate_made)
			pki_digest(c->ca_next_cert.data, c->ca_next_cert.len,
				   r->ca_rotate_to);
	}
	return 0;
}

/* Evaluates cond. Returns 1 when it holds, 0 when not (got describes what
 * was seen), -1 when the run failed (a part not built yet). */
/* files NAME [on NODE] OP N (issue 20): containers of the simulated
 * runtime (any state) holding a file of the secret or config NAME. */
struct runner_files {
	const char *name;
	int64_t node;
	uint64_t count;
};

static void runner_files_visit(void *ctx, const struct simexec_info *info)
{
	struct runner_files *f = ctx;
	if (f->node >= 0 && info->node != (uint32_t)f->node)
		return;
	for (size_t i = 0; i < info->file_count; i++)
		if (strcmp(info->files[i].name, f->name) == 0) {
			f->count++;
			return;
		}
}

static int runner_cond_files(struct runner *r, const struct scn_cond *cond, char *got,
			     size_t got_size)
{
	struct runner_files f = {.name = cond->service, .node = -1};
	bool holds;

	if (cond->has_node) {
		char name[32];
		if (cond->node.kind == SCN_NODE_LEADER) {
			int64_t leader = simcluster_leader(r->cluster);
			if (leader < 0) {
				snprintf(got, got_size, "no leader");
				return 0;
			}
			f.node = leader;
		} else {
			snprintf(name, sizeof name, "%c%u",
				 cond->node.kind == SCN_NODE_MANAGER ? 'm' : 'w',
				 (unsigned)cond->node.number);
			f.node = world_node_find(r->w, name);
			if (f.node < 0) {
				snprintf(got, got_size, "no node %s", name);
				return 0;
			}
		}
	}
	simexec_foreach(world_exec(r->w), runner_files_visit, &f);
	switch (cond->op) {
	case SCN_OP_EQ: holds = f.count == cond->count; break;
	case SCN_OP_NE: holds = f.count != cond->count; break;
	case SCN_OP_LT: holds = f.count < cond->count; break;
	case SCN_OP_LE: holds = f.count <= cond->count; break;
	case SCN_OP_GT: holds = f.count > cond->count; break;
	default: holds = f.count >= cond->count; break;
	}
	snprintf(got, got_size, "%" PRIu64, f.count);
	return holds;
}

/* Issue 17, the routing mesh: `reach PORT on NODE` holds when a client
 * outside the cluster reaches a running task of the port's service through
 * NODE (every backend NODE's rule spreads over answers, at least one);
 * `no reach PORT on NODE` when NODE refuses it (no rule, or no backend).
 * Ground truth: what the machines have declared (simexec_mesh_reach). */
static int runner_cond_mesh(struct runner *r, const struct scn_cond *cond, char *got,
			    size_t got_size)
{
	struct simexec_mesh_out out;
	enum simexec_mesh v;
	int64_t node;
	char name[32];

	if (cond->node.kind == SCN_NODE_LEADER) {
		node = r->cluster ? simcluster_leader(r->cluster) : -1;
		if (node < 0) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
	} else {
		scn_node_name(cond->node, name, sizeof name);
		node = world_node_find(r->w, name);
		if (node < 0) {
			snprintf(got, got_size, "no node %s", name);
			return 0;
		}
	}
	v = simexec_mesh_reach(world_exec(r->w), (uint32_t)node, (uint32_t)cond->count,
			       (enum env_port_proto)cond->proto, &out, got, got_size);
	if (cond->kind == SCN_COND_MESH_REACH)
		return v == SIMEXEC_MESH_REACHES;
	if (v == SIMEXEC_MESH_REFUSED)
		return 1;
	if (v == SIMEXEC_MESH_REACHES)
		snprintf(got, got_size, "%s: port %" PRIu64 " reaches %s (%zu backends)",
			 world_node_name(r->w, (uint32_t)node), cond->count, out.service,
			 out.backend_count);
	return 0;
}

static int runner_cond(struct runner *r, const struct scn_cmd *cmd,
		       const struct scn_cond *cond, char *got, size_t got_size)
{
	switch (cond->kind) {
	case SCN_COND_LEADER:
	case SCN_COND_NO_LEADER:
	case SCN_COND_LEADER_IS: {
		int64_t leader;
		bool holds;
		if (!r->real_managers)
			return runner_not_built(
				r, cmd, "leader conditions need the Raft managers");
		leader = simcluster_leader(r->cluster);
		if (cond->kind == SCN_COND_LEADER) {
			holds = leader >= 0;
		} else if (cond->kind == SCN_COND_NO_LEADER) {
			holds = leader < 0;
		} else {
			char want[32];
			bool same;
			scn_node_name(cond->node, want, sizeof want);
			same = leader >= 0 &&
			       strcmp(world_node_name(r->w, (uint32_t)leader), want) == 0;
			holds = cond->op == SCN_OP_EQ ? same : !same;
		}
		if (!holds)
			snprintf(got, got_size, "%s",
				 leader >= 0 ? world_node_name(r->w, (uint32_t)leader)
					     : "no leader");
		return holds;
	}
	case SCN_COND_RUNNING:
	case SCN_COND_STORE_TASKS:
	case SCN_COND_NODES_READY:
	case SCN_COND_NODE_STATUS:
	case SCN_COND_JOB_COMPLETED:
	case SCN_COND_CONVERGED: {
		int64_t leader;
		if (!r->real_managers)
			return runner_not_built(
				r, cmd, "this condition needs the cluster's programs");
		leader = simcluster_leader(r->cluster);
		return clops_cond(
			r->ops,
			leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
				    : NULL,
			cond, got, got_size);
	}
	case SCN_COND_MANAGERS_SYNC:
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"`managers in sync` needs the managers");
		return simcluster_in_sync(r->cluster, got, got_size);
	case SCN_COND_CA_ROTATED:
		if (!r->real_managers)
			return runner_not_built(r, cmd, "ca rotated needs the managers");
		return runner_cond_ca_rotated(r, got, got_size);
	case SCN_COND_ADDRESSES:
	case SCN_COND_VIPS:
	case SCN_COND_PUBLISHES:
	case SCN_COND_PENDING_BECAUSE: {
		int64_t leader;
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"this condition needs the managers");
		leader = simcluster_leader(r->cluster);
		return clops_net_cond(
			r->ops,
			leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
				    : NULL,
			cond, got, got_size);
	}
	case SCN_COND_SPREAD: {
		/* issue 20: ground truth per node the leader's store finds eligible */
		int64_t leader;
		if (!r->real_managers)
			return runner_not_built(r, cmd, "spread needs the managers");
		leader = simcluster_leader(r->cluster);
		return clops_spread_cond(
			r->ops,
			leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
				    : NULL,
			cond, got, got_size);
	}
	case SCN_COND_FILES: return runner_cond_files(r, cond, got, got_size);
	case SCN_COND_MESH_REACH:
	case SCN_COND_MESH_REFUSED: return runner_cond_mesh(r, cond, got, got_size);
	case SCN_COND_NET_KEYS: {
		/* issue 17: the leader's store's newest network key id */
		const Cs__Cluster *cl;
		int64_t leader;
		uint64_t newest = 0;
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"network keys needs the managers");
		leader = simcluster_leader(r->cluster);
		if (leader < 0) {
			snprintf(got, got_size, "no leader");
			return 0;
		}
		cl = store_cluster(
			manager_store(simcluster_manager(r->cluster, (uint32_t)leader)));
		if (cl && cl->n_network_keys)
			newest = cl->network_keys[cl->n_network_keys - 1]->id;
		if (scn_op_holds(cond->op, newest, cond->count))
			return 1;
		snprintf(got, got_size, "%" PRIu64, newest);
		return 0;
	}
	case SCN_COND_REACH:
		/* issue 17: ground truth, the machines' programmed networks */
		return simexec_reach(world_exec(r->w), cond->service, cond->reason, got,
				     got_size);
	case SCN_COND_EVENT:
		if (!r->real_managers)
			return runner_not_built(r, cmd, "event needs the managers");
		return runner_cond_event(r, cond, got, got_size);
	case SCN_COND_REFUSED:
	case SCN_COND_TERM:
	case SCN_COND_SERVICE:
		if (!r->real_managers && cond->kind != SCN_COND_REFUSED)
			return runner_not_built(r, cmd,
						"this condition needs the managers");
		return runner_cond_identity(r, cond, got, got_size);
	}
	return runner_fail(r, cmd, "unknown condition");
}

/* Shows the run to the observer, if any. */
static void runner_observe(struct runner *r, bool final)
{
	struct runner_view v = {
		.w = r->w, .cluster = r->cluster, .cmd = r->cur, .final = final};
	if (r->opts->observe)
		r->opts->observe(r->opts->observe_ctx, &v);
}

/* Checks every `always` condition and the invariants; false when the run
 * failed. */
/* Invariant 7's ground truth of host ports (issue 15): every running
 * container binds each host-mode port its task publishes in the leader's
 * store (Task.ports), so none runs without what it was placed for. */
_Static_assert((int)ENV_PORT_TCP == CS__PORT_PROTOCOL__PORT_PROTOCOL_TCP &&
		       (int)ENV_PORT_UDP == CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP &&
		       (int)ENV_PORT_SCTP == CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP,
	       "env's port protocols are the API's");

struct runner_bound {
	const struct store *st;
	char *why;
	size_t size;
	bool ok;
};

static void runner_bound_visit(void *ctx, const struct simexec_info *info)
{
	struct runner_bound *b = ctx;
	const Cs__Task *t;
	char *end;
	uint64_t id;

	if (!b->ok || info->state != ENV_CTL_RUNNING)
		return;
	id = strtoull(info->task_id, &end, 16);
	t = *end ? NULL : store_task_get(b->st, id);
	for (size_t i = 0; t && i < t->n_ports; i++) {
		const Cs__PortConfig *p = t->ports[i];
		bool bound = false;
		if (p->mode != CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST ||
		    !p->published)
			continue;
		for (size_t j = 0; j < info->port_count && !bound; j++)
			bound = info->ports[j].published == p->published &&
				(uint32_t)info->ports[j].proto == (uint32_t)p->protocol;
		if (!bound) {
			snprintf(
				b->why, b->size,
				"task %s runs on node %u without binding its host port %u",
				info->task_id, (unsigned)info->node,
				(unsigned)p->published);
			b->ok = false;
			return;
		}
	}
}

static bool runner_check_bound(struct runner *r, char *why, size_t size)
{
	struct runner_bound b = {.why = why, .size = size, .ok = true};
	int64_t leader;

	if (!r->real_managers)
		return true;
	leader = simcluster_leader(r->cluster);
	if (leader < 0)
		return true;
	b.st = manager_store(simcluster_manager(r->cluster, (uint32_t)leader));
	{
		bool any = false; /* O(services) while no service publishes one */
		for (const Cs__Service *s = store_service_next(b.st, NULL); s && !any;
		     s = store_service_next(b.st, s))
			any = alloc_has_host_ports(s);
		if (!any)
			return true;
	}
	simexec_foreach(world_exec(r->w), runner_bound_visit, &b);
	return b.ok;
}

static bool runner_check(struct runner *r)
{
	char got[256];

	runner_observe(r, false);
	if (r->secret_leak[0]) {
		runner_fail(r, r->cur, "%s at sim=%.6fs", r->secret_leak,
			    (double)world_now_us(r->w) / 1e6);
		return false;
	}

	if (!simcluster_check(r->cluster, got, sizeof got)) {
		runner_fail(r, r->cur, "%s at sim=%.6fs", got,
			    (double)world_now_us(r->w) / 1e6);
		return false;
	}
	{
		uint32_t first, node;
		uint64_t task;
		if (r->runs && taskrun_broken(r->runs, &first, &node, &task)) {
			runner_fail(r, r->cur,
				    "invariant 11: task %016" PRIx64
				    " was reported RUNNING by %s, then in another "
				    "state, then RUNNING again by %s (started twice) "
				    "at sim=%.6fs",
				    task, world_node_name(r->w, first),
				    world_node_name(r->w, node),
				    (double)world_now_us(r->w) / 1e6);
			return false;
		}
	}
	/* invariants 3 (containers), 4 (placements) and 5 (acknowledged
	 * services) */
	if (r->real_managers) {
		int64_t leader = simcluster_leader(r->cluster);
		if (!clops_check(
			    r->ops,
			    leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
					: NULL,
			    got, sizeof got) ||
		    !clops_check_alloc(
			    r->ops,
			    leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
					: NULL,
			    got, sizeof got)) {
			runner_fail(r, r->cur, "%s at sim=%.6fs", got,
				    (double)world_now_us(r->w) / 1e6);
			return false;
		}
	}
	/* invariant 7's host ports on the ground truth (issue 15): what the
	 * runtime binds, not only what the store says */
	if (simexec_changes(world_exec(r->w)) + 1 != r->ports_checked) {
		char why[200];
		r->ports_checked = simexec_changes(world_exec(r->w)) + 1;
		if (!simexec_check_ports(world_exec(r->w), why, sizeof why) ||
		    !runner_check_bound(r, why, sizeof why)) {
			runner_fail(r, r->cur, "invariant 7 (allocator): %s at sim=%.6fs",
				    why, (double)world_now_us(r->w) / 1e6);
			return false;
		}
	}

	for (size_t i = 0; i < r->always_count; i++) {
		const struct scn_cmd *a = r->always[i];
		int rv = runner_cond(r, a, &a->u.expect.cond, got, sizeof got);
		if (rv < 0)
			return false;
		if (rv == 0) {
			runner_fail(r, a, "broken at sim=%.1fs: got %s",
				    (double)world_now_us(r->w) / 1e6, got);
			return false;
		}
	}
	return !r->failed;
}

/* Runs events up to and including until_us, checking after each; then sets
 * the clock to until_us. stop, when given, ends the run early as soon as it
 * returns 1 (or fails with -1). Returns 1 when stop held, 0 at until_us, -1
 * when the run failed. */
static int runner_until(struct runner *r, us_t until_us, const struct scn_cmd *cmd,
			const struct scn_cond *stop, char *got, size_t got_size)
{
	for (;;) {
		if (stop) {
			int rv = runner_cond(r, cmd, stop, got, got_size);
			if (rv != 0)
				return rv;
		}
		if (!world_step(r->w, until_us))
			break;
		if (!runner_check(r))
			return -1;
	}
	world_advance(r->w, until_us);
	return 0;
}

static int runner_expect(struct runner *r, const struct scn_cmd *cmd)
{
	char got[128] = "";
	us_t deadline = world_now_us(r->w);
	int rv;

	if (cmd->u.expect.has_within)
		deadline += cmd->u.expect.within_ms * 1000;
	rv = runner_until(r, deadline, cmd, &cmd->u.expect.cond, got, sizeof got);
	if (rv < 0)
		return -1;
	if (rv == 0 && cmd->kind == SCN_AWAIT)
		return 0; /* await waits as long, and never fails */
	if (rv == 0) {
		/* The deadline: check once more at exactly that instant. */
		rv = runner_cond(r, cmd, &cmd->u.expect.cond, got, sizeof got);
		if (rv < 0)
			return -1;
		if (rv == 0)
			return runner_fail(r, cmd, "got %s", got);
	}
	return 0;
}

/* ---------------------------------------------------------------- network */

/* partition G1 | G2 ... (and isolate NODE) and link A B: the rule for a
 * `leader` that names a node the line names again, which realworld.c's
 * real backend applies too. The parser refuses a node named twice;
 * `leader` names one only when it runs. The leader named again in its own
 * group is that node once: the author wanted those nodes on one side, and
 * they are. Named again in another group it fails the line: the author
 * meant to cut the leader off from that node, which cannot be when it is
 * that node, and any side chosen for it would tell another story. */
int runner_partition_put(uint32_t *group_of, size_t node_count, uint32_t node,
			 uint32_t group, const char *node_name, char *err,
			 size_t err_size)
{
	assert(node < node_count);
	assert(group > 0);
	if (group_of[node] && group_of[node] != group) {
		snprintf(err, err_size,
			 "the leader is %s, which another group names: a node "
			 "can be on one side only",
			 node_name);
		return CS_EINVAL;
	}
	group_of[node] = group;
	return 0;
}

/* As the parser refuses `link m2 m2`, a `leader` that is the other node
 * fails the line: a link joins two nodes. */
int runner_link_check(uint32_t a, uint32_t b, const char *node_name, char *err,
		      size_t err_size)
{
	if (a == b) {
		snprintf(err, err_size,
			 "the leader is %s, the link's other node: a link needs "
			 "two different nodes",
			 node_name);
		return CS_EINVAL;
	}
	return 0;
}

static int runner_partition(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_partition *p = &cmd->u.partition;
	size_t count = world_node_count(r->w);
	uint32_t *group_of = calloc(count ? count : 1, sizeof *group_of);
	uint32_t star = 0;
	char err[128];
	int rv;

	if (!group_of)
		return runner_fail(r, cmd, "out of memory");
	for (size_t g = 0; g < p->group_count; g++) {
		const struct scn_group *grp = &p->groups[g];
		if (grp->star) {
			star = (uint32_t)g + 1;
			continue;
		}
		for (size_t i = 0; i < grp->node_count; i++) {
			uint32_t index;
			if (runner_node(r, cmd, grp->nodes[i], &index)) {
				free(group_of);
				return -1;
			}
			if (runner_partition_put(group_of, count, index, (uint32_t)g + 1,
						 world_node_name(r->w, index), err,
						 sizeof err)) {
				free(group_of);
				return runner_fail(r, cmd, "%s", err);
			}
		}
	}
	rv = world_net_partition(r->w, group_of, count, star);
	free(group_of);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

static int runner_link_one(struct runner *r, const struct scn_cmd *cmd, uint32_t src,
			   uint32_t dst)
{
	const struct scn_link *l = &cmd->u.link;
	struct sim_link_rule rule = {
		.src = src,
		.dst = dst,
		.loss_ppm = l->has_loss ? l->loss_ppm : 0,
		.dup_ppm = l->has_dup ? l->dup_ppm : 0,
		.reorder_ppm = l->has_reorder ? l->reorder_ppm : 0,
		.has_delay = l->has_delay,
		.delay_min_us = l->delay.min_ms * 1000,
		.delay_max_us = l->delay.max_ms * 1000,
	};
	int rv = world_net_link(r->w, &rule);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

/* link A B / link A -> B (runner_link_check: a link joins two nodes). */
static int runner_link(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t a, b;
	char err[128];

	if (runner_node(r, cmd, cmd->u.link.a, &a) ||
	    runner_node(r, cmd, cmd->u.link.b, &b))
		return -1;
	if (runner_link_check(a, b, world_node_name(r->w, a), err, sizeof err))
		return runner_fail(r, cmd, "%s", err);
	if (runner_link_one(r, cmd, a, b))
		return -1;
	if (!cmd->u.link.one_way && runner_link_one(r, cmd, b, a))
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- commands */

/* Records that node's machine and disk are gone for good (`kill NODE
 * disk`). Returns 0 or CS_ENOMEM. */
static int runner_mark_gone(struct runner *r, uint32_t node)
{
	if (node >= r->gone_cap) {
		size_t cap = (size_t)node + 16;
		bool *g = realloc(r->gone, cap * sizeof *g);
		if (!g)
			return CS_ENOMEM;
		memset(g + r->gone_cap, 0, (cap - r->gone_cap) * sizeof *g);
		r->gone = g;
		r->gone_cap = cap;
	}
	r->gone[node] = true;
	return 0;
}

static int runner_kill(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t index;
	int rv;

	if (runner_node(r, cmd, cmd->u.node.node, &index))
		return -1;
	if (cmd->u.node.disk_lost && runner_mark_gone(r, index))
		return runner_fail(r, cmd, "out of memory");
	rv = world_node_kill(r->w, index, !cmd->u.node.process_only, false);
	if (rv == CS_ENOENT && !cmd->u.node.process_only) {
		/* its daemon was already dead: now the machine goes too */
		simexec_node_died(world_exec(r->w), index, true);
		return 0;
	}
	if (rv == CS_ENOENT)
		return runner_fail(r, cmd, "%s is already down",
				   world_node_name(r->w, index));
	return 0;
}

/* restart NODE [force-new-cluster | refused]: starts a stopped node from
 * its disk. A start that fails fails the line, with the reason the node's
 * program logged (a corrupt Raft term or vote, ...); with `refused` the
 * start must fail, and the node stays down. */
static int runner_restart(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t index;
	int rv;

	if (runner_node(r, cmd, cmd->u.node.node, &index))
		return -1;
	/* A node that is running is left as it is: after `kill leader` a
	 * scenario cannot name the dead one, so `restart m1 ... mN` must be
	 * harmless for the others. */
	if (world_node_is_up(r->w, index) && cmd->u.node.force_new_cluster)
		return runner_fail(r, cmd,
				   "%s is running: force-new-cluster is a start (stop it "
				   "first: kill %s process)",
				   world_node_name(r->w, index),
				   world_node_name(r->w, index));
	if (world_node_is_up(r->w, index) && cmd->u.node.refused)
		return runner_fail(r, cmd,
				   "%s is running: a refused start needs it stopped "
				   "(kill %s process)",
				   world_node_name(r->w, index),
				   world_node_name(r->w, index));
	if (world_node_is_up(r->w, index))
		return 0;
	if (index < r->gone_cap && r->gone[index])
		return runner_fail(r, cmd, "%s is gone with its disk (kill %s disk)",
				   world_node_name(r->w, index),
				   world_node_name(r->w, index));
	if (cmd->u.node.force_new_cluster &&
	    (!r->real_managers || simcluster_force_new_cluster(r->cluster, index, true)))
		return runner_fail(r, cmd, "%s runs no manager",
				   world_node_name(r->w, index));
	r->starting = index;
	r->start_error[0] = '\0';
	rv = world_node_start(r->w, index);
	r->starting = UINT32_MAX;
	if (cmd->u.node.force_new_cluster)
		simcluster_force_new_cluster(r->cluster, index, false);
	/* `restart NODE refused`: the start must fail (a disk the node
	 * rightly refuses); the node stays down, the story goes on */
	if (cmd->u.node.refused && rv == 0)
		return runner_fail(r, cmd, "%s started: its start was to be refused",
				   world_node_name(r->w, index));
	if (cmd->u.node.refused)
		return 0;
	if (rv)
		return runner_fail(r, cmd, "%s failed to start: %s%s%s",
				   world_node_name(r->w, index), cs_strerror(rv),
				   r->start_error[0] ? ": " : "", r->start_error);
	return 0;
}

_Static_assert(SCN_RT_OP_PREPARE == SIMEXEC_OP_PREPARE &&
		       SCN_RT_OP_START == SIMEXEC_OP_START &&
		       SCN_RT_OP_WAIT == SIMEXEC_OP_WAIT &&
		       SCN_RT_OP_STOP == SIMEXEC_OP_STOP &&
		       SCN_RT_OP_REMOVE == SIMEXEC_OP_REMOVE &&
		       SCN_RT_OP_LIST == SIMEXEC_OP_LIST &&
		       SCN_RT_OP_INSPECT == SIMEXEC_OP_INSPECT &&
		       SCN_RT_OP_ALL == SIMEXEC_OP_ALL,
	       "the scenario's call kinds are the runtime's");

/* runtime NODE fail=OPS [for=DUR] | restart ... | ok */
static int runner_runtime(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_runtime *rt = &cmd->u.runtime;
	struct simexec *x = world_exec(r->w);
	us_t now_us = world_now_us(r->w);
	uint32_t index;
	int rv = 0;

	if (runner_node(r, cmd, rt->node, &index))
		return -1;
	switch (rt->action) {
	case SCN_RT_FAIL:
		rv = simexec_runtime_fail(x, index, rt->ops,
					  rt->has_for ? now_us + rt->for_ms * 1000
						      : UINT64_MAX);
		break;
	case SCN_RT_RESTART:
		rv = simexec_runtime_restart(x, index, rt->lose, rt->down_ms * 1000);
		break;
	case SCN_RT_OK: simexec_runtime_ok(x, index); break;
	case SCN_RT_BIND:
		rv = simexec_runtime_bind(x, index, rt->bind_port,
					  (enum env_port_proto)rt->bind_proto);
		break;
	case SCN_RT_UNBIND: simexec_runtime_unbind(x, index); break;
	case SCN_RT_DATAPLANE:
		rv = simcluster_data_plane(r->cluster, world_node_name(r->w, index),
					   rt->data_plane);
		break;
	}
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

/* disk NODE fault=eio|full ... | ok */
static int runner_disk(struct runner *r, const struct scn_cmd *cmd)
{
	const struct scn_disk *d = &cmd->u.disk;
	uint32_t index, faults = 0;
	int rv;

	if (runner_node(r, cmd, d->node, &index))
		return -1;
	if (d->fault == SCN_DISK_FULL)
		faults = SIMVFS_FAULT_FULL;
	if (d->fault == SCN_DISK_EIO)
		faults = (d->on_write ? SIMVFS_FAULT_EIO_WRITE : 0) |
			 (d->on_sync ? SIMVFS_FAULT_EIO_SYNC : 0);
	if (d->fault == SCN_DISK_TORN)
		faults = SIMVFS_FAULT_TORN;
	if (d->fault == SCN_DISK_CORRUPT) {
		uint32_t flipped = 0;
		char file[sizeof d->file + 3];
		/* file=raft is the node's storage "raft", the file raft.db; a
		 * name with a dot is a file's own (raft.db-journal) */
		snprintf(file, sizeof file, strchr(d->file, '.') ? "%s" : "%s.db",
			 d->file);
		rv = world_disk_corrupt(r->w, index, d->file[0] ? file : NULL,
					d->table[0] ? d->table : NULL, d->pages,
					&flipped);
		if (rv)
			return runner_fail(r, cmd, "%s", cs_strerror(rv));
		if (flipped == 0)
			return runner_fail(r, cmd, "%s has no file %s%s%s to corrupt",
					   world_node_name(r->w, index),
					   d->file[0] ? d->file : "at all",
					   d->table[0] ? " with a table " : "", d->table);
		return 0;
	}
	rv = world_disk_fault(r->w, index, faults,
			      d->has_for ? world_now_us(r->w) + d->for_ms * 1000
					 : UINT64_MAX);
	if (rv)
		return runner_fail(r, cmd, "%s", cs_strerror(rv));
	return 0;
}

struct runner_call {
	bool done;
	int status;
};

static void runner_call_done(void *data, int status)
{
	struct runner_call *c = data;
	c->done = true;
	c->status = status;
}

/* Waits (running events, checking invariants) for an API call's answer, at
 * most limit_us of virtual time. Returns 0 when answered, -1 when the run
 * failed. */
static int runner_wait_call(struct runner *r, const struct scn_cmd *cmd,
			    struct runner_call *call, us_t limit_us)
{
	us_t end = world_now_us(r->w) + limit_us;
	while (!call->done) {
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "no answer within %.0fs",
					   (double)limit_us / 1e6);
		if (!runner_check(r))
			return -1;
	}
	return 0;
}

/* A control API call on the current leader, as swarmctl would make it:
 * waits for its answer; an error fails the run with the API's words. */
static int runner_api_once(struct runner *r, const struct scn_cmd *cmd, uint32_t node,
			   bool retried, struct runner_call *call, char *err,
			   size_t err_size)
{
	int64_t leader = simcluster_leader(r->cluster);
	struct manager *m;
	int rv;

	/* like a client retrying: wait for a leader, a minute at most */
	for (us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull; leader < 0;) {
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "no leader to ask (waited 60s)");
		if (!runner_check(r))
			return -1;
		leader = simcluster_leader(r->cluster);
	}
	m = simcluster_manager(r->cluster, (uint32_t)leader);
	if (cmd->kind == SCN_CA_ROTATE) {
		rv = control_ca_rotate(m, err, err_size, runner_call_done, call);
	} else if (cmd->kind == SCN_NETWORK_KEYS_ROTATE) { /* issue 17 */
		rv = control_cluster_rotate_network_keys(m, err, err_size,
							 runner_call_done, call);
	} else if (cmd->kind == SCN_SET &&
		   (cmd->u.settings.set & SCN_SET_NET_KEY_ROTATION)) {
		rv = control_cluster_set_network_key_rotation(
			m, cmd->u.settings.net_key_rotation_ms, err, err_size,
			runner_call_done, call);
	} else if (cmd->kind == SCN_SET && (cmd->u.settings.set & SCN_SET_HEARTBEAT)) {
		rv = control_cluster_set_heartbeat(m, cmd->u.settings.heartbeat_ms, err,
						   err_size, runner_call_done, call);
	} else if (cmd->kind == SCN_SET && (cmd->u.settings.set & SCN_SET_HISTORY)) {
		/* (0 there restores the managers' own) */
		rv = control_cluster_set_task_history(m, cmd->u.settings.history, err,
						      err_size, runner_call_done, call);
	} else if (cmd->kind == SCN_SET && (cmd->u.settings.set & SCN_SET_ORPHAN_DELAY)) {
		rv = control_cluster_set_orphan_delay(m, cmd->u.settings.orphan_delay_ms,
						      err, err_size, runner_call_done,
						      call);
	} else if (cmd->kind == SCN_SET) {
		rv = control_cluster_set_cert_expiry(m, cmd->u.settings.cert_expiry_ms,
						     err, err_size, runner_call_done,
						     call);
	} else if (cmd->kind == SCN_NETWORK_CREATE || cmd->kind == SCN_NETWORK_RM) {
		rv = clops_network(r->ops, m, cmd, err, err_size, runner_call_done, call);
	} else if (cmd->kind == SCN_SECRET_CREATE || cmd->kind == SCN_SECRET_RM) {
		rv = clops_secret(r->ops, m, cmd, err, err_size, runner_call_done, call);
	} else if (node == UINT32_MAX) {
		rv = clops_service(r->ops, m, cmd, err, err_size, runner_call_done, call);
	} else {
		/* a node that has not registered yet: wait for it, a minute */
		us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull;
		while ((rv = clops_node(r->ops, m, cmd, node, err, err_size,
					runner_call_done, call)) == CS_ENOENT) {
			if (!world_step(r->w, end))
				break;
			if (!runner_check(r))
				return -1;
			leader = simcluster_leader(r->cluster);
			if (leader >= 0)
				m = simcluster_manager(r->cluster, (uint32_t)leader);
		}
	}
	if (rv == CS_ENOTLEADER)
		return CS_ENOTLEADER; /* leadership moved under us: ask again */
	if (cmd->refuse) {
		/* issue 15: `refuse CMD`: the API must say no */
		if (rv) {
			world_trace(r->w, UINT32_MAX, (enum sim_ev_kind)RUNNER_EV_CMD,
				    0xe0e0, (uint64_t)-rv);
			call->status = 0;
			return 0;
		}
		if (runner_wait_call(r, cmd, call, 30 * 1000 * 1000ull))
			return -1;
		if (call->status == 0)
			return runner_fail(
				r, cmd,
				"accepted (expected the control API to refuse it)");
		if (call->status != CS_ENOTLEADER)
			call->status = 0;
		return 0;
	}
	if (rv == CS_EEXIST && retried && cmd->kind == SCN_SERVICE_CREATE)
		return 0; /* the first attempt did commit */
	if (rv)
		return runner_fail(r, cmd, "%s", err[0] ? err : cs_strerror(rv));
	if (runner_wait_call(r, cmd, call, 30 * 1000 * 1000ull))
		return -1;
	if (call->status == CS_EEXIST && retried && cmd->kind == SCN_SERVICE_CREATE)
		call->status = 0;
	return 0;
}

/* A control API call on the current leader, as swarmctl would make it:
 * waits for its answer; an error fails the run with the API's words. A
 * leader lost on the way is asked again, as a client retries; a create
 * that turns out to have committed the first time counts as done. */
static int runner_api(struct runner *r, const struct scn_cmd *cmd, uint32_t node)
{
	us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull;
	bool retried = false;

	if (!r->real_managers)
		return runner_not_built(
			r, cmd, "services need the control API and orchestrators");
	for (;;) {
		struct runner_call call = {0};
		char err[256] = "";
		int rv = runner_api_once(r, cmd, node, retried, &call, err, sizeof err);
		if (rv == CS_ENOTLEADER)
			call.status = CS_ENOTLEADER;
		else if (rv)
			return -1;
		if (call.status == 0)
			return 0;
		if (retried && call.status == CS_EEXIST &&
		    cmd->kind == SCN_SERVICE_CREATE)
			return 0;
		/* a leader whose durable write failed (a disk fault) stops: ask
		 * the next one, as a client would */
		if ((call.status != CS_ENOTLEADER && call.status != CS_ECLOSED &&
		     call.status != CS_ESTORAGE) ||
		    world_now_us(r->w) >= end)
			return runner_fail(r, cmd, "%s", cs_strerror(call.status));
		retried = true;
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "%s", cs_strerror(call.status));
		if (!runner_check(r))
			return -1;
	}
}

/* node rm NODE: the node leaves the cluster: its record is removed through
 * the control API and its machine turned off. Forced, so that the command
 * keeps its written meaning (the node is removed, READY or not), as an
 * operator taking a node out for good runs `docker node rm --force`; the
 * control API refuses, as SwarmKit's, a manager still in the Raft group
 * (`node demote` first: it returns once the node left the group, and the
 * daemon may still be restarting as a worker). */
static int runner_node_rm(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t node;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "node management needs the control API");
	if (runner_node(r, cmd, cmd->u.node.node, &node))
		return -1;
	if (runner_api(r, cmd, node))
		return -1;
	if (world_node_kill(r->w, node, true, false) == CS_ENOENT)
		simexec_node_died(world_exec(r->w), node, true);
	return 0;
}

/* Steps the world until done(r, node) holds, for up to 60 s; fails the
 * command with what it waited for. */
static int runner_wait_role(struct runner *r, const struct scn_cmd *cmd, uint32_t node,
			    bool (*done)(struct runner *, uint32_t), const char *what)
{
	for (us_t end = world_now_us(r->w) + 60 * 1000 * 1000ull; !done(r, node);) {
		if (!world_step(r->w, end))
			return runner_fail(r, cmd, "%s %s after 60s",
					   world_node_name(r->w, node), what);
		if (!runner_check(r))
			return -1;
	}
	return 0;
}

static bool runner_runs_manager(struct runner *r, uint32_t node)
{
	return simcluster_number(r->cluster, node) != 0;
}

/* Whether node's raft id is out of the leader's configuration (true with
 * no raft id). */
static bool runner_left_raft(struct runner *r, uint32_t node)
{
	int64_t leader = simcluster_leader(r->cluster);
	uint64_t ids[LIMIT_MANAGERS_MAX], raft_id;
	size_t n;

	if (simcluster_number(r->cluster, node) == 0)
		return true;
	if (leader < 0)
		return false;
	raft_id = simcluster_raft_id(r->cluster, node);
	n = manager_voters(simcluster_manager(r->cluster, (uint32_t)leader), ids,
			   LIMIT_MANAGERS_MAX);
	for (size_t i = 0; i < n && i < LIMIT_MANAGERS_MAX; i++)
		if (ids[i] == raft_id)
			return false;
	return true;
}

/* node promote wN: the control API records the wish; the worker's agent
 * learns it in its session, renews its certificate as a manager's and its
 * daemon restarts as a manager (swarmd execs itself; the simulator plays
 * that part), its containers left running. The command returns once the
 * daemon runs as a manager (it then joins Raft as a spare and becomes a
 * voter once caught up; its node record says manager from its next
 * session). */
static int runner_promote(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t node;

	if (!r->real_managers)
		return runner_not_built(r, cmd, "node management needs the control API");
	if (runner_node(r, cmd, cmd->u.node.node, &node))
		return -1;
	if (runner_api(r, cmd, node))
		return -1;
	return runner_wait_role(r, cmd, node, runner_runs_manager,
				"did not restart as a manager");
}

/* node demote mN: the control API records the wish; the leader's role
 * manager takes mN out of the Raft group (handing leadership over first
 * when it is the one demoted); its agent then gets a worker's certificate
 * and its daemon restarts as a worker, as SwarmKit's demoted manager
 * carries on as a worker. The command returns once mN left the group. A
 * node not running as a manager (a worker, or one promoted whose daemon has
 * not restarted yet) is demoted all the same. */
static int runner_demote(struct runner *r, const struct scn_cmd *cmd)
{
	uint32_t node;

	if (runner_node(r, cmd, cmd->u.node.node, &node))
		return -1;
	if (runner_api(r, cmd, node))
		return -1;
	return runner_wait_role(r, cmd, node, runner_left_raft, "is still a Raft member");
}

/* ---------------------------------------------------------------- logs */

struct runner_logs {
	bool done;
	int status;
	const char *text;
	bool found;
	size_t lines;
};

static void runner_logs_done(void *data, const Cs__ControlResponse *resp)
{
	struct runner_logs *l = data;
	l->done = true;
	l->status = resp->status;
	l->lines = resp->n_logs;
	for (size_t i = 0; i < resp->n_logs && !l->found; i++) {
		const Cs__LogLine *ln = resp->logs[i];
		size_t tl = strlen(l->text);
		for (size_t k = 0; !l->found && k + tl <= ln->data.len; k++)
			l->found = memcmp(ln->data.data + k, l->text, tl) == 0;
	}
}

/* logs SVC contain TEXT [within DUR] (issue 16): reads the service's logs
 * from the start through the leader's log broker (as the control RPC's
 * SERVICE_LOGS does), every second until a line contains TEXT. */
static int runner_logs(struct runner *r, const struct scn_cmd *cmd)
{
	us_t end = world_now_us(r->w) + cmd->u.logs.within_ms * 1000;
	char got[128];

	if (!r->real_managers)
		return runner_not_built(r, cmd, "logs need the managers");
	for (;;) {
		struct runner_logs l = {.text = cmd->u.logs.text};
		int64_t leader = simcluster_leader(r->cluster);
		struct manager *m =
			leader >= 0 ? simcluster_manager(r->cluster, (uint32_t)leader)
				    : NULL;
		struct logbroker *lb =
			m ? manager_component(m, &logbroker_component) : NULL;
		const Cs__Service *svc =
			m ? store_service_by_name(manager_store(m), cmd->u.logs.service)
			  : NULL;
		struct logbroker_task tasks[64];
		size_t n = 0;

		if (lb && svc) {
			const struct store *st = manager_store(m);
			for (const Cs__Task *t =
				     store_task_next_by_service(st, svc->id, NULL);
			     t; t = store_task_next_by_service(st, svc->id, t)) {
				if (!t->node_id)
					continue;
				if (n == 64)
					return runner_fail(
						r, cmd,
						"logs: %s has over 64 tasks placed",
						cmd->u.logs.service);
				tasks[n++] = (struct logbroker_task){t->id, t->service_id,
								     t->node_id, 0, 0};
			}
			if (logbroker_read(lb, tasks, n, 0, 0, 0, false, runner_logs_done,
					   &l) == 0) {
				while (!l.done) {
					if (!world_step(r->w, world_now_us(r->w) +
								      60 * 1000000ull))
						break;
					if (!runner_check(r))
						return -1;
				}
			}
		}
		if (l.found)
			return 0;
		if (!cmd->u.logs.has_within || world_now_us(r->w) >= end)
			return runner_fail(r, cmd,
					   "no line of %s's logs contains '%s' (%zu "
					   "lines read%s)",
					   cmd->u.logs.service, cmd->u.logs.text, l.lines,
					   !lb	  ? ", no leader to ask"
					   : !svc ? ", no such service"
						  : "");
		if (runner_until(r, world_now_us(r->w) + 1000000, cmd, NULL, got,
				 sizeof got) < 0)
			return -1;
	}
}

static int runner_cmd(struct runner *r, const struct scn_cmd *cmd)
{
	char got[128];

	r->cur = cmd;
	world_trace(r->w, UINT32_MAX, (enum sim_ev_kind)RUNNER_EV_CMD, cmd->line,
		    cmd->kind);
	switch (cmd->kind) {
	case SCN_CLUSTER: return runner_cluster(r, cmd);
	case SCN_SEED: return 0;
	case SCN_SET: /* read by managers when they (re)start */
		simcluster_set(r->cluster, &cmd->u.settings);
		/* the heartbeat period and the task history of a running
		 * cluster: its record's, through the control API (swarmctl
		 * cluster update --dispatcher-heartbeat, --task-history-limit);
		 * right after `cluster` (time 0, nothing elected yet) the
		 * nodes start with them instead */
		if ((cmd->u.settings.set & (SCN_SET_HEARTBEAT | SCN_SET_HISTORY)) &&
		    r->real_managers &&
		    (simcluster_leader(r->cluster) >= 0 || world_now_us(r->w) > 0)) {
			struct scn_cmd one = *cmd;
			if (cmd->u.settings.set & SCN_SET_HEARTBEAT) {
				one.u.settings.set = SCN_SET_HEARTBEAT;
				if (runner_api(r, &one, UINT32_MAX))
					return -1;
			}
			if (cmd->u.settings.set & SCN_SET_HISTORY) {
				one.u.settings.set = SCN_SET_HISTORY;
				if (runner_api(r, &one, UINT32_MAX))
					return -1;
			}
		}
		/* the certificates' life is the cluster's: once it runs, set
		 * through the control API, as swarmctl cluster update would */
		if ((cmd->u.settings.set & SCN_SET_CERT_EXPIRY) && r->real_managers &&
		    simcluster_leader(r->cluster) >= 0)
			return runner_api(r, cmd, UINT32_MAX);
		/* the orphan delay is only the cluster record's (the parser
		 * keeps it after `cluster`): through the control API */
		if ((cmd->u.settings.set & SCN_SET_ORPHAN_DELAY) && r->real_managers)
			return runner_api(r, cmd, UINT32_MAX);
		if ((cmd->u.settings.set & SCN_SET_NET_KEY_ROTATION) && r->real_managers)
			return runner_api(r, cmd, UINT32_MAX); /* issue 17 */
		return 0;
	case SCN_RUN:
		return runner_until(r, world_now_us(r->w) + cmd->u.run_ms * 1000, cmd,
				    NULL, got, sizeof got) < 0
			       ? -1
			       : 0;
	case SCN_SERVICE_CREATE:
	case SCN_SERVICE_UPDATE:
	case SCN_SERVICE_RM:
	case SCN_NETWORK_CREATE:
	case SCN_NETWORK_RM:
	case SCN_SECRET_CREATE:
	case SCN_SECRET_RM:
	case SCN_NETWORK_KEYS_ROTATE: return runner_api(r, cmd, UINT32_MAX);
	case SCN_LOGS: return runner_logs(r, cmd);
	case SCN_NODE_ADD: return runner_add_node(r, cmd, cmd->u.node.added);
	case SCN_NODE_DRAIN:
	case SCN_NODE_PAUSE:
	case SCN_NODE_ACTIVATE:
	case SCN_NODE_LABEL: {
		uint32_t node;
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"node management needs the control API");
		if (runner_node(r, cmd, cmd->u.node.node, &node))
			return -1;
		return runner_api(r, cmd, node);
	}
	case SCN_NODE_RM: return runner_node_rm(r, cmd);
	case SCN_NODE_PROMOTE: return runner_promote(r, cmd);
	case SCN_NODE_DEMOTE:
		if (r->real_managers)
			return runner_demote(r, cmd);
		return runner_not_built(r, cmd, "node management needs the control API");
	case SCN_KILL: return runner_kill(r, cmd);
	case SCN_RESTART: return runner_restart(r, cmd);
	case SCN_PARTITION:
	case SCN_ISOLATE: return runner_partition(r, cmd);
	case SCN_LINK: return runner_link(r, cmd);
	case SCN_HEAL: world_net_heal(r->w); return 0;
	case SCN_IMAGE: clops_image(r->ops, &cmd->u.image); return 0;
	case SCN_RUNTIME: return runner_runtime(r, cmd);
	case SCN_DISK: return runner_disk(r, cmd);
	case SCN_CERT: return runner_cert(r, cmd);
	case SCN_CA_ROTATE: return runner_ca_rotate(r, cmd);
	case SCN_BACKUP: return runner_backup(r, cmd);
	case SCN_FORGE:
		if (!r->real_managers)
			return runner_not_built(r, cmd,
						"forge needs the cluster's programs");
		return runner_forge(r, cmd);
	case SCN_EXPECT: return runner_expect(r, cmd);
	case SCN_AWAIT: return runner_expect(r, cmd);
	case SCN_ALWAYS: {
		int rv;
		if (r->always_count >= RUNNER_ALWAYS_MAX)
			return runner_fail(r, cmd, "more than %d `always` conditions",
					   RUNNER_ALWAYS_MAX);
		r->always[r->always_count++] = cmd;
		rv = runner_cond(r, cmd, &cmd->u.expect.cond, got, sizeof got);
		if (rv == 0)
			return runner_fail(r, cmd, "does not hold at sim=%.1fs: got %s",
					   (double)world_now_us(r->w) / 1e6, got);
		return rv < 0 ? -1 : 0;
	}
	}
	return runner_fail(r, cmd, "unknown command");
}

int runner_run(const struct scn_script *script, uint64_t seed,
	       const struct runner_opts *opts, struct runner_result *res)
{
	struct runner r = {
		.script = script, .opts = opts, .res = res, .starting = UINT32_MAX};

	memset(res, 0, sizeof *res);
	res->seed = seed;
	res->passed = true;
	r.w = world_new(seed);
	if (!r.w)
		return CS_ENOMEM;
	r.cluster = simcluster_new(r.w, NULL);
	if (r.cluster)
		simexec_set_node_ip(world_exec(r.w), simcluster_node_ip, r.cluster);
	if (!r.cluster) {
		world_free(r.w);
		return CS_ENOMEM;
	}
	r.real_managers = opts->manager_prog == NULL;
	simcluster_node_programs(r.cluster, r.real_managers);
	r.ops = clops_new(r.w, r.cluster);
	r.runs = r.real_managers ? taskrun_new() : NULL;
	if (!r.ops || (r.real_managers && !r.runs)) {
		clops_free(r.ops);
		taskrun_free(r.runs);
		world_free(r.w);
		simcluster_free(r.cluster);
		return CS_ENOMEM;
	}
	if (r.runs)
		world_set_send_tap(r.w, runner_send_tap, &r);
	world_record(r.w, opts->record);
	if (opts->trace)
		world_set_trace(r.w, opts->trace, opts->trace_ctx);
	world_set_log(r.w, runner_log, &r); /* counts refusals, hands on */
	for (size_t i = 0; i < script->cmd_count; i++) {
		if (script->cmds[i].kind != SCN_FORGE)
			continue;
		/* an attacker on the path: what a forgery may need to name */
		r.seen_cap = (size_t)script->managers_total + script->workers_total +
			     script->strangers_total + 1;
		r.seen = calloc(r.seen_cap, sizeof *r.seen);
		if (!r.seen) {
			clops_free(r.ops);
			taskrun_free(r.runs);
			world_free(r.w);
			simcluster_free(r.cluster);
			return CS_ENOMEM;
		}
		world_set_tap(r.w, runner_tap, &r);
		break;
	}
	/* invariant 8 (issue 20) reads the assignments on the wire: only a
	 * story with secrets or configs pays for the tap */
	if (scn_first(script, SCN_SECRET_CREATE))
		world_set_tap(r.w, runner_tap, &r);
	for (size_t i = 0; i < script->cmd_count; i++) {
		int rv = runner_cmd(&r, &script->cmds[i]);
		runner_observe(&r, false);
		if (rv || r.failed)
			break;
	}
	runner_observe(&r, true);
	assert(r.failed == !res->passed);
	res->sim_us = world_now_us(r.w);
	res->events = world_events(r.w);
	res->hash = world_hash(r.w);
	if (opts->record) {
		size_t n;
		const struct sim_trace_rec *recs = world_records(r.w, &n);
		res->recs = malloc((n ? n : 1) * sizeof *recs);
		if (res->recs) {
			if (n)
				memcpy(res->recs, recs, n * sizeof *recs);
			res->rec_count = n;
		}
	}
	if (!opts->exit_after) {
		world_free(r.w);
		clops_free(r.ops);
		taskrun_free(r.runs);
		simcluster_free(r.cluster);
	}
	free(r.refused);
	free(r.gone);
	for (size_t i = 0; i < r.backup_count; i++) {
		backup_free(r.backups[i]);
		free(r.backups[i]);
	}
	free(r.backups);
	free(r.seen);
	for (size_t i = 0; i < r.token_count; i++)
		free(r.tokens[i]);
	free(r.tokens);
	return 0;
}

void runner_result_free(struct runner_result *res)
{
	free(res->recs);
	res->recs = NULL;
	res->rec_count = 0;
}

int64_t runner_diverge(const struct runner_result *a, const struct runner_result *b)
{
	size_t n = a->rec_count < b->rec_count ? a->rec_count : b->rec_count;
	for (size_t i = 0; i < n; i++) {
		const struct sim_trace_rec *x = &a->recs[i], *y = &b->recs[i];
		if (x->at_us != y->at_us || x->node != y->node || x->kind != y->kind ||
		    x->hash != y->hash)
			return (int64_t)i;
	}
	if (a->rec_count != b->rec_count || a->hash != b->hash)
		return (int64_t)n;
	return -1;
}
