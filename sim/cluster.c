/* cluster: manager configs, the leader as ground truth, invariants 1 and 2.
 * See cluster.h. */
#include "sim/cluster.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backup.h"
#include "core/errors.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/pki.h"
#include "sim/rng.h"

struct simcluster_mgr {
	struct simcluster *c;
	struct manager_cfg cfg;
	struct manager_peer *voters;
	char (*voter_addrs)[16];
	const char **join_addrs;
	uint32_t number;
	int64_t node; /* -1 until tracked */
};

/* What a node says of itself (scenario node add os= arch= ip=
 * engine-label=), with the strings it points to. */
struct simcluster_desc {
	char hostname[LIMIT_ADDR_BYTES_MAX];
	struct agent_desc ad;
	struct scn_node_desc copy; /* owns the strings */
	Cs__Label labels[LIMIT_ENGINE_LABELS_MAX];
	Cs__Label *label_ptrs[LIMIT_ENGINE_LABELS_MAX];
};

/* The config of one node program, with the strings it points to. */
struct simcluster_node {
	struct node_cfg cfg;
	struct simcluster *c;
	uint32_t manager_count; /* the managers its agent knows at start */
	Cs__NodeRole want;	/* the role its daemon restarts as */
	bool refused;		/* its agent was refused by the cluster (node rm) */
	char hostname[LIMIT_ADDR_BYTES_MAX];
	char (*addrs)[16];
	const char **managers;
};

struct simcluster {
	struct world *w;
	bool node_programs;
	struct simcluster_node **nodes;
	size_t nodes_count, nodes_cap;
	/* nodes ever refused (none: simcluster_refused scans nothing; a
	 * check per container scanned 1,000 hostnames) */
	size_t refused_ever;
	struct scn_settings settings;
	struct simcluster_mgr **mgrs; /* by manager number - 1 */
	size_t mgr_count;
	uint32_t *number_of_node; /* node index -> manager number (0: none) */
	size_t node_cap;
	/* invariant 1: the leader's raft id of each term seen */
	uint64_t *term_leader;
	size_t term_cap;
	/* invariant 2: hash of the entry applied at each index, and who first */
	uint64_t *applied_hash;
	uint32_t *applied_by;
	size_t applied_cap, applied_by_cap;
	char violation[256];
	/* the cluster's root CA and join tokens */
	uint8_t ca_cert[PKI_DER_BYTES_MAX], ca_key[PKI_DER_BYTES_MAX];
	size_t ca_cert_len, ca_key_len;
	char worker_token[PKI_TOKEN_BYTES], manager_token[PKI_TOKEN_BYTES];
	struct simcluster_desc **descs; /* in the order described */
	size_t desc_count;
	uint32_t next_number; /* the manager number of the next promoted node */
};

struct simcluster *simcluster_new(struct world *w, const struct scn_settings *settings)
{
	struct simcluster *c = calloc(1, sizeof *c);
	uint8_t seed[PKI_SEED_BYTES], root[ENV_DIGEST_BYTES];

	if (!c)
		return NULL;
	c->w = w;
	if (settings)
		simcluster_set(c, settings);
	/* the root CA: a fixed seed, valid from the epoch for 20 years */
	for (size_t i = 0; i < sizeof seed; i++)
		seed[i] = (uint8_t)(0xca + i);
	if (pki_ca_create(seed, SIMCLUSTER_ID, SIMCLUSTER_EPOCH,
			  SIMCLUSTER_EPOCH + (int64_t)(LIMIT_CA_LIFE_MS / 1000), 1,
			  c->ca_cert, sizeof c->ca_cert, &c->ca_cert_len, c->ca_key,
			  sizeof c->ca_key, &c->ca_key_len) != 0) {
		free(c);
		return NULL;
	}
	pki_digest(c->ca_cert, c->ca_cert_len, root);
	pki_token_make(root, 0x5157000000000001ull, 0x0000000000000077ull,
		       c->worker_token);
	pki_token_make(root, 0x5157000000000002ull, 0x00000000000000aaull,
		       c->manager_token);
	return c;
}

void simcluster_free(struct simcluster *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->mgr_count; i++) {
		if (!c->mgrs[i])
			continue;
		free(c->mgrs[i]->voters);
		free(c->mgrs[i]->voter_addrs);
		free(c->mgrs[i]->join_addrs);
		free(c->mgrs[i]);
	}
	free(c->mgrs);
	for (size_t i = 0; i < c->nodes_count; i++) {
		free(c->nodes[i]->addrs);
		free(c->nodes[i]->managers);
		free(c->nodes[i]);
	}
	free(c->nodes);
	for (size_t i = 0; i < c->desc_count; i++) {
		struct scn_node_desc *d = &c->descs[i]->copy;
		free(d->os);
		free(d->arch);
		free(d->ip);
		for (size_t k = 0; k < d->engine_label_count; k++) {
			free(d->engine_keys[k]);
			free(d->engine_values[k]);
		}
		free(c->descs[i]);
	}
	free(c->descs);
	free(c->number_of_node);
	free(c->term_leader);
	free(c->applied_hash);
	free(c->applied_by);
	free(c);
}

void simcluster_set(struct simcluster *c, const struct scn_settings *s)
{
	uint32_t set = c->settings.set | s->set;
	if (s->set & SCN_SET_HEARTBEAT)
		c->settings.heartbeat_ms = s->heartbeat_ms;
	if (s->set & SCN_SET_ELECTION_TICKS)
		c->settings.election_ticks = s->election_ticks;
	if (s->set & SCN_SET_TICK)
		c->settings.tick_ms = s->tick_ms;
	if (s->set & SCN_SET_HISTORY)
		c->settings.history = s->history;
	if (s->set & SCN_SET_SNAPSHOT_EVERY)
		c->settings.snapshot_every = s->snapshot_every;
	if (s->set & SCN_SET_CERT_EXPIRY)
		c->settings.cert_expiry_ms = s->cert_expiry_ms;
	c->settings.set = set;
	/* managers read their config when they (re)start */
	for (size_t i = 0; i < c->mgr_count; i++) {
		struct manager_cfg *cfg = c->mgrs[i] ? &c->mgrs[i]->cfg : NULL;
		if (!cfg)
			continue;
		if (set & SCN_SET_TICK)
			cfg->tick_ms = c->settings.tick_ms;
		if (set & SCN_SET_ELECTION_TICKS)
			cfg->election_ticks = (unsigned)c->settings.election_ticks;
		if (set & SCN_SET_HEARTBEAT)
			cfg->heartbeat_ms = c->settings.heartbeat_ms;
		if (set & SCN_SET_HISTORY)
			cfg->task_history = c->settings.history;
		if (set & SCN_SET_CERT_EXPIRY)
			cfg->cert_expiry_ms = c->settings.cert_expiry_ms;
		if (set & SCN_SET_SNAPSHOT_EVERY) {
			cfg->snapshot_every = (unsigned)c->settings.snapshot_every;
			cfg->snapshot_trailing = cfg->snapshot_every / 4 + 1;
		}
	}
}

/* A hash of an applied entry for invariant 2, 8 bytes a step (FNV-1a a
 * byte a step was 1.7% of a 1,000-worker rollout: 3 managers hash every
 * entry). Compared only with itself; never in a trace. */
static uint64_t simcluster_entry_hash(const uint8_t *buf, size_t len)
{
	uint64_t h = HASH_FNV_OFFSET ^ len, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, buf + i, sizeof w);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return hash_mix64(hash_fnv(h, buf + i, len - i));
}

/* Invariant 2's hook: every entry any manager applies. */
static void simcluster_on_apply(void *data, struct env *env, uint64_t index,
				const uint8_t *buf, size_t len)
{
	struct simcluster_mgr *mg = data;
	struct simcluster *c = mg->c;
	/* 0 means "nothing seen" */
	uint64_t h = simcluster_entry_hash(buf, len) | 1;
	if (grow_array((void **)&c->applied_hash, &c->applied_cap, index + 1,
		       sizeof *c->applied_hash) ||
	    grow_array((void **)&c->applied_by, &c->applied_by_cap, index + 1,
		       sizeof *c->applied_by))
		return;
	if (c->applied_hash[index] == 0) {
		c->applied_hash[index] = h;
		c->applied_by[index] = mg->number;
	} else if (c->applied_hash[index] != h && !c->violation[0]) {
		snprintf(c->violation, sizeof c->violation,
			 "invariant 2: m%" PRIu32
			 " applied a different entry at index %" PRIu64 " than m%" PRIu32,
			 mg->number, index, c->applied_by[index]);
	}
}

static void simcluster_refused_fire(struct world *w, void *data)
{
	struct simcluster_mgr *mg = data;
	if (mg->node >= 0)
		world_node_kill(w, (uint32_t)mg->node, false, false);
}

/* A manager was refused (its join: swarmd says why and exits 1): the
 * daemon stops after this callback, as a process kill that `restart`
 * undoes. */
static void simcluster_manager_refused(void *data, const char *why)
{
	struct simcluster_mgr *mg = data;
	(void)why;
	if (mg->node >= 0 &&
	    world_call_at(mg->c->w, world_now_us(mg->c->w), (uint32_t)mg->node,
			  simcluster_refused_fire, mg))
		assert(!"no memory for a refused manager's exit");
}

const struct manager_cfg *simcluster_manager_cfg(struct simcluster *c, uint32_t number,
						 uint32_t voters)
{
	struct simcluster_mgr *mg;

	assert(number > 0);
	if (grow_array((void **)&c->mgrs, &c->mgr_count, number, sizeof *c->mgrs))
		return NULL;
	if (c->mgrs[number - 1])
		return &c->mgrs[number - 1]->cfg;
	mg = calloc(1, sizeof *mg);
	if (!mg)
		return NULL;
	mg->c = c;
	mg->number = number;
	mg->node = -1;
	manager_defaults(&mg->cfg);
	mg->cfg.raft_id = number;
	mg->cfg.worker_token = c->worker_token;
	mg->cfg.manager_token = c->manager_token;
	mg->cfg.cluster_id = SIMCLUSTER_ID;
	if (voters) {
		/* the managers the cluster starts with sign their own
		 * certificates from its CA (node id = raft id = number) */
		mg->cfg.ca_cert = (struct env_blob){c->ca_cert, c->ca_cert_len};
		mg->cfg.ca_key = (struct env_blob){c->ca_key, c->ca_key_len};
	}
	mg->cfg.on_apply = simcluster_on_apply;
	mg->cfg.hook_data = mg;
	mg->cfg.on_refused = simcluster_manager_refused;
	mg->cfg.refused_data = mg;
	if (voters) {
		mg->voters = calloc(voters, sizeof *mg->voters);
		mg->voter_addrs = calloc(voters, sizeof *mg->voter_addrs);
		if (!mg->voters || !mg->voter_addrs) {
			free(mg->voters);
			free(mg->voter_addrs);
			free(mg);
			return NULL;
		}
		for (uint32_t i = 0; i < voters; i++) {
			snprintf(mg->voter_addrs[i], sizeof mg->voter_addrs[i],
				 "m%" PRIu32, i + 1);
			mg->voters[i].raft_id = i + 1;
			mg->voters[i].addr = mg->voter_addrs[i];
		}
		mg->cfg.voters = mg->voters;
		mg->cfg.voter_count = voters;
	}
	if (!voters && number > 1) {
		/* a joiner asks the managers named before it */
		uint32_t n = number - 1;
		mg->voter_addrs = calloc(n, sizeof *mg->voter_addrs);
		mg->join_addrs = calloc(n, sizeof *mg->join_addrs);
		if (!mg->voter_addrs || !mg->join_addrs) {
			free(mg->voter_addrs);
			free(mg->join_addrs);
			free(mg);
			return NULL;
		}
		for (uint32_t i = 0; i < n; i++) {
			snprintf(mg->voter_addrs[i], sizeof mg->voter_addrs[i],
				 "m%" PRIu32, i + 1);
			mg->join_addrs[i] = mg->voter_addrs[i];
		}
		mg->cfg.join_addrs = mg->join_addrs;
		mg->cfg.join_count = n;
	}
	c->mgrs[number - 1] = mg;
	simcluster_set(c, &c->settings);
	return &mg->cfg;
}

int simcluster_track(struct simcluster *c, uint32_t node, uint32_t number)
{
	if (grow_array((void **)&c->number_of_node, &c->node_cap, node + 1,
		       sizeof *c->number_of_node))
		return CS_ENOMEM;
	c->number_of_node[node] = number;
	if (number && number <= c->mgr_count && c->mgrs[number - 1])
		c->mgrs[number - 1]->node = node;
	return 0;
}

uint32_t simcluster_number(const struct simcluster *c, uint32_t node)
{
	return node < c->node_cap ? c->number_of_node[node] : 0;
}

struct manager *simcluster_manager(const struct simcluster *c, uint32_t node)
{
	void *state;
	if (node >= c->node_cap || c->number_of_node[node] == 0)
		return NULL;
	state = world_node_state(c->w, node);
	if (!state || !c->node_programs)
		return state;
	return node_manager(state);
}

int simcluster_restore_cfg(struct simcluster *c, uint32_t number, const struct backup *b)
{
	struct simcluster_mgr *mg;

	assert(number > 1);
	assert(b != NULL);
	if (number <= c->mgr_count && c->mgrs[number - 1])
		return CS_EEXIST;
	/* a joiner's config (it has room for one address), made a lone voter */
	if (!simcluster_manager_cfg(c, number, 0))
		return CS_ENOMEM;
	mg = c->mgrs[number - 1];
	assert(mg->voter_addrs != NULL);
	mg->voters = calloc(1, sizeof *mg->voters);
	if (!mg->voters)
		return CS_ENOMEM;
	snprintf(mg->voter_addrs[0], sizeof mg->voter_addrs[0], "m%" PRIu32, number);
	mg->voters[0].raft_id = number;
	mg->voters[0].addr = mg->voter_addrs[0];
	mg->cfg.voters = mg->voters;
	mg->cfg.voter_count = 1;
	mg->cfg.join_addrs = NULL;
	mg->cfg.join_count = 0;
	mg->cfg.ca_cert = (struct env_blob){b->ca_cert, b->ca_cert_len};
	mg->cfg.ca_key = (struct env_blob){b->ca_key, b->ca_key_len};
	mg->cfg.cluster_id = b->cluster_id;
	mg->cfg.restore_store = b->store;
	mg->cfg.restore_store_len = b->store_len;
	mg->cfg.restore_index = b->index;
	mg->cfg.restore_term = b->term;
	return 0;
}

void simcluster_new_history(struct simcluster *c, uint64_t index, uint64_t term)
{
	for (size_t t = (size_t)term + 1; t < c->term_cap; t++)
		c->term_leader[t] = 0;
	for (size_t i = (size_t)index + 1; i < c->applied_cap && i < c->applied_by_cap;
	     i++) {
		c->applied_hash[i] = 0;
		c->applied_by[i] = 0;
	}
}

int simcluster_force_new_cluster(struct simcluster *c, uint32_t node, bool on)
{
	uint32_t number = simcluster_number(c, node);

	if (number == 0 || number > c->mgr_count || !c->mgrs[number - 1])
		return CS_ENOENT;
	c->mgrs[number - 1]->cfg.force_new_cluster = on;
	return 0;
}

void simcluster_node_programs(struct simcluster *c, bool on)
{
	c->node_programs = on;
}

/* A node's agent was refused: as swarmd, it stops trying (the daemon would
 * exit); the checks then leave it out. */
static void simcluster_node_refused(void *data, const char *why)
{
	struct simcluster_node *n = data;
	(void)why;
	n->refused = true;
	n->c->refused_ever++;
}

/* The daemon restarts as its new role (swarmd execs itself): a process
 * restart, its containers left running, with the config of that role; a
 * promoted node takes the next manager number. */
static void simcluster_role_fire(struct world *w, void *data)
{
	struct simcluster_node *n = data;
	struct simcluster *c = n->c;
	int64_t node = world_node_find(w, n->hostname);
	bool manager = n->want == CS__NODE_ROLE__NODE_ROLE_MANAGER;
	uint32_t number = manager ? c->next_number++ : 0;
	const struct node_cfg *cfg;

	if (node < 0)
		return;
	cfg = simcluster_node_cfg(c, n->hostname, number, 0, n->manager_count,
				  n->cfg.agent.millicpus, n->cfg.agent.memory_bytes);
	assert(cfg); /* out of memory in the simulator */
	if (world_node_is_up(w, (uint32_t)node))
		world_node_kill(w, (uint32_t)node, false, false);
	world_node_set_program(w, (uint32_t)node, &node_program, cfg);
	if (simcluster_track(c, (uint32_t)node, number))
		assert(!"no memory to track a manager");
	world_node_start(w, (uint32_t)node);
}

static void simcluster_node_role(void *data, Cs__NodeRole desired)
{
	struct simcluster_node *n = data;
	int64_t node = world_node_find(n->c->w, n->hostname);

	n->want = desired;
	if (node >= 0 && world_call_at(n->c->w, world_now_us(n->c->w), (uint32_t)node,
				       simcluster_role_fire, n))
		assert(!"no memory for a role change");
}

void simcluster_set_next_number(struct simcluster *c, uint32_t number)
{
	c->next_number = number;
}

bool simcluster_refused(const struct simcluster *c, const char *hostname)
{
	if (!c->refused_ever)
		return false;
	for (size_t i = c->nodes_count; i-- > 0;)
		if (strcmp(c->nodes[i]->hostname, hostname) == 0)
			return c->nodes[i]->refused;
	return false;
}

const char *simcluster_join_token(const struct simcluster *c, const char *hostname)
{
	for (size_t i = c->nodes_count; i-- > 0;)
		if (strcmp(c->nodes[i]->hostname, hostname) == 0)
			return c->nodes[i]->cfg.agent.join_token;
	return NULL;
}

/* Returns the description of hostname (the last one given), or NULL. */
static const struct agent_desc *simcluster_desc_of(const struct simcluster *c,
						   const char *hostname)
{
	for (size_t i = c->desc_count; i-- > 0;)
		if (strcmp(c->descs[i]->hostname, hostname) == 0)
			return &c->descs[i]->ad;
	return NULL;
}

const char *simcluster_node_ip(void *ctx, uint32_t node)
{
	const struct simcluster *c = ctx;
	const struct agent_desc *d = simcluster_desc_of(c, world_node_name(c->w, node));
	return d ? d->addr : NULL;
}

static char *simcluster_strdup(const char *s, bool *failed)
{
	char *d;
	if (!s)
		return NULL;
	d = malloc(strlen(s) + 1);
	if (!d) {
		*failed = true;
		return NULL;
	}
	memcpy(d, s, strlen(s) + 1);
	return d;
}

int simcluster_describe(struct simcluster *c, const char *hostname,
			const struct scn_node_desc *desc)
{
	struct simcluster_desc *x, **v;
	bool failed = false;

	assert(desc->engine_label_count <= LIMIT_ENGINE_LABELS_MAX);
	v = realloc(c->descs, (c->desc_count + 1) * sizeof *v);
	if (!v)
		return CS_ENOMEM;
	c->descs = v;
	x = calloc(1, sizeof *x);
	if (!x)
		return CS_ENOMEM;
	c->descs[c->desc_count++] = x; /* freed with the cluster, whole or not */
	snprintf(x->hostname, sizeof x->hostname, "%s", hostname);
	x->copy.os = simcluster_strdup(desc->os, &failed);
	x->copy.arch = simcluster_strdup(desc->arch, &failed);
	x->copy.ip = simcluster_strdup(desc->ip, &failed);
	for (size_t i = 0; i < desc->engine_label_count; i++) {
		x->copy.engine_keys[i] = simcluster_strdup(desc->engine_keys[i], &failed);
		x->copy.engine_values[i] =
			simcluster_strdup(desc->engine_values[i], &failed);
		x->copy.engine_label_count++;
		cs__label__init(&x->labels[i]);
		x->labels[i].key = x->copy.engine_keys[i];
		x->labels[i].value = x->copy.engine_values[i];
		x->label_ptrs[i] = &x->labels[i];
	}
	if (failed)
		return CS_ENOMEM;
	x->ad.platform_os = x->copy.os;
	x->ad.platform_arch = x->copy.arch;
	x->ad.addr = x->copy.ip;
	x->ad.engine_labels = x->label_ptrs;
	x->ad.engine_label_count = x->copy.engine_label_count;
	return 0;
}

const struct node_cfg *simcluster_node_cfg(struct simcluster *c, const char *hostname,
					   uint32_t manager_number, uint32_t voters,
					   uint32_t managers, uint64_t millicpus,
					   uint64_t memory_bytes)
{
	struct simcluster_node *n;

	if (c->nodes_count == c->nodes_cap) {
		size_t cap = c->nodes_cap ? c->nodes_cap * 2 : 16;
		struct simcluster_node **p = realloc(c->nodes, cap * sizeof *p);
		if (!p)
			return NULL;
		c->nodes = p;
		c->nodes_cap = cap;
	}
	n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	snprintf(n->hostname, sizeof n->hostname, "%s", hostname);
	n->addrs = calloc(managers ? managers : 1, sizeof *n->addrs);
	n->managers = calloc(managers ? managers : 1, sizeof *n->managers);
	if (!n->addrs || !n->managers) {
		free(n->addrs);
		free(n->managers);
		free(n);
		return NULL;
	}
	for (uint32_t i = 0; i < managers; i++) {
		snprintf(n->addrs[i], sizeof n->addrs[i], "m%" PRIu32, i + 1);
		n->managers[i] = n->addrs[i];
	}
	n->cfg.agent.hostname = n->hostname;
	n->cfg.agent.role = manager_number ? CS__NODE_ROLE__NODE_ROLE_MANAGER
					   : CS__NODE_ROLE__NODE_ROLE_WORKER;
	n->cfg.agent.millicpus = millicpus;
	n->cfg.agent.memory_bytes = memory_bytes;
	n->cfg.agent.managers = n->managers;
	n->cfg.agent.manager_count = managers;
	n->cfg.agent.join_token = manager_number ? c->manager_token : c->worker_token;
	n->cfg.agent.on_refused = simcluster_node_refused;
	n->cfg.agent.on_role = simcluster_node_role;
	n->cfg.agent.hook_data = n;
	n->c = c;
	n->manager_count = managers;
	n->cfg.agent.raft_id = manager_number;
	n->cfg.agent.desc = simcluster_desc_of(c, hostname);
	/* a machine without a data plane stays so in every role */
	for (size_t i = c->nodes_count; i-- > 0;)
		if (strcmp(c->nodes[i]->hostname, hostname) == 0) {
			n->cfg.agent.no_data_plane = c->nodes[i]->cfg.agent.no_data_plane;
			break;
		}
	if (manager_number) {
		n->cfg.manager = simcluster_manager_cfg(c, manager_number, voters);
		if (!n->cfg.manager) {
			free(n->addrs);
			free(n->managers);
			free(n);
			return NULL;
		}
	}
	c->nodes[c->nodes_count++] = n;
	return &n->cfg;
}

int simcluster_data_plane(struct simcluster *c, const char *hostname, bool present)
{
	int rv = CS_ENOENT;
	for (size_t i = 0; i < c->nodes_count; i++)
		if (strcmp(c->nodes[i]->hostname, hostname) == 0) {
			c->nodes[i]->cfg.agent.no_data_plane = !present;
			rv = 0;
		}
	return rv;
}

bool simcluster_has_data_plane(const struct simcluster *c, const char *hostname)
{
	for (size_t i = 0; i < c->nodes_count; i++)
		if (strcmp(c->nodes[i]->hostname, hostname) == 0)
			return !c->nodes[i]->cfg.agent.no_data_plane;
	return true;
}

uint64_t simcluster_raft_id(const struct simcluster *c, uint32_t node)
{
	struct manager *m = simcluster_manager(c, node);
	uint32_t number = simcluster_number(c, node);
	if (m)
		return manager_raft_id(m);
	/* down, or not open yet: the number for the first managers; a joined
	 * one's is its node id, known to its agent */
	if (number && number <= c->mgr_count && c->mgrs[number - 1] &&
	    c->mgrs[number - 1]->cfg.voter_count)
		return number;
	{
		void *state = world_node_state(c->w, node);
		struct agent *a = state && c->node_programs ? node_agent(state) : NULL;
		return number && a ? agent_node_id(a) : 0;
	}
}

const char *simcluster_worker_token(const struct simcluster *c)
{
	return c->worker_token;
}
const char *simcluster_manager_token(const struct simcluster *c)
{
	return c->manager_token;
}

/* The node running raft id `id`, or -1: the first managers' raft ids are
 * their numbers; a joined manager's is its node id. */
static int64_t simcluster_node_of(const struct simcluster *c, uint64_t id)
{
	if (id == 0)
		return -1;
	if (id <= c->mgr_count && c->mgrs[id - 1] && c->mgrs[id - 1]->cfg.voter_count)
		return c->mgrs[id - 1]->node;
	for (size_t k = 0; k < c->mgr_count; k++) {
		const struct simcluster_mgr *mg = c->mgrs[k];
		struct manager *m;
		if (!mg || mg->node < 0)
			continue;
		m = simcluster_manager(c, (uint32_t)mg->node);
		if (m && manager_raft_id(m) == id)
			return mg->node;
	}
	return -1;
}

/* The nodes that run a manager now, in node order: the checks after every
 * event look at these, not at every node (a thousand workers). */
static size_t simcluster_manager_nodes(const struct simcluster *c, uint32_t *out,
				       size_t max)
{
	size_t n = 0;
	for (size_t k = 0; k < c->mgr_count && n < max; k++) {
		const struct simcluster_mgr *mg = c->mgrs[k];
		if (!mg || mg->node < 0 || (size_t)mg->node >= c->node_cap ||
		    c->number_of_node[mg->node] != mg->number)
			continue;
		/* in node order, by insertion: a handful of managers, asked
		 * for the leader after every event (qsort's setup was most of
		 * the cost, 1% of a 1,000-worker run) */
		size_t j = n++;
		for (; j > 0 && out[j - 1] > (uint32_t)mg->node; j--)
			out[j] = out[j - 1];
		out[j] = (uint32_t)mg->node;
	}
	return n;
}

int64_t simcluster_leader(const struct simcluster *c)
{
	int64_t best = -1;
	uint64_t best_term = 0;
	uint32_t nodes[LIMIT_NODES_MAX < 64 ? LIMIT_NODES_MAX : 64];
	size_t n = simcluster_manager_nodes(c, nodes, sizeof nodes / sizeof nodes[0]);

	for (size_t k = 0; k < n; k++) {
		uint32_t i = nodes[k];
		struct manager *m = simcluster_manager(c, i);
		uint64_t voters[LIMIT_MANAGERS_MAX * 2];
		size_t voter_count, followers = 0;
		uint64_t term;

		if (!m || !manager_is_leader(m))
			continue;
		term = manager_term(m);
		voter_count = manager_voters(m, voters, sizeof voters / sizeof voters[0]);
		if (voter_count > sizeof voters / sizeof voters[0])
			voter_count = sizeof voters / sizeof voters[0];
		for (size_t v = 0; v < voter_count; v++) {
			int64_t node = simcluster_node_of(c, voters[v]);
			struct manager *f;
			if (node < 0)
				continue;
			if ((uint32_t)node == i) {
				followers++;
				continue;
			}
			f = simcluster_manager(c, (uint32_t)node);
			if (!f || world_net_cut(c->w, i, (uint32_t)node))
				continue;
			if (manager_term(f) == term &&
			    manager_leader(f) == manager_raft_id(m))
				followers++;
		}
		if (followers * 2 > voter_count && (best < 0 || term > best_term)) {
			best = i;
			best_term = term;
		}
	}
	return best;
}

bool simcluster_check(struct simcluster *c, char *msg, size_t size)
{
	uint32_t nodes[64];
	size_t n = simcluster_manager_nodes(c, nodes, sizeof nodes / sizeof nodes[0]);

	if (c->violation[0]) {
		snprintf(msg, size, "%s", c->violation);
		return false;
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t i = nodes[k];
		struct manager *m = simcluster_manager(c, i);
		uint64_t term, id;
		if (!m || !manager_is_leader(m))
			continue;
		term = manager_term(m);
		id = manager_raft_id(m);
		if (grow_array((void **)&c->term_leader, &c->term_cap, term + 1,
			       sizeof *c->term_leader))
			continue;
		if (c->term_leader[term] == 0) {
			c->term_leader[term] = id;
		} else if (c->term_leader[term] != id) {
			snprintf(c->violation, sizeof c->violation,
				 "invariant 1: m%" PRIu64 " and m%" PRIu64
				 " both lead term %" PRIu64,
				 c->term_leader[term], id, term);
			snprintf(msg, size, "%s", c->violation);
			return false;
		}
	}
	return true;
}

/* Whether node i is left out of `managers in sync`: the cluster refused
 * its agent (node rm: "join it again with a new state directory"). swarmd
 * exits then; the simulator keeps the node up, refused, and its manager
 * can never apply another entry (the managers refuse its raft messages),
 * as clops_nodes_agree leaves it out of `converged`. */
static bool simcluster_sync_skips(const struct simcluster *c, uint32_t i)
{
	return simcluster_refused(c, world_node_name(c->w, i));
}

bool simcluster_in_sync(const struct simcluster *c, char *got, size_t size)
{
	size_t n = world_node_count(c->w);
	uint8_t *first = NULL;
	size_t first_len = 0;
	uint32_t first_node = 0;
	uint64_t applied = 0;
	bool any = false, same = true;

	for (uint32_t i = 0; i < n && same; i++) {
		struct manager *m = simcluster_manager(c, i);
		if (simcluster_sync_skips(c, i))
			continue;
		if (!m && simcluster_number(c, i) && c->node_programs &&
		    world_node_state(c->w, i)) {
			/* up, and its manager waits for a manager's certificate */
			snprintf(got, size, "%s has no manager's certificate yet",
				 world_node_name(c->w, i));
			same = false;
			break;
		}
		if (!m)
			continue;
		if (!manager_is_voter(m)) {
			snprintf(got, size, "%s is not a voter yet",
				 world_node_name(c->w, i));
			same = false;
			break;
		}
		if (!any) {
			applied = manager_applied(m);
			first_node = i;
			any = true;
		} else if (manager_applied(m) != applied) {
			snprintf(got, size, "%s applied %" PRIu64 ", %s applied %" PRIu64,
				 world_node_name(c->w, first_node), applied,
				 world_node_name(c->w, i), manager_applied(m));
			same = false;
		}
	}
	for (uint32_t i = 0; i < n && same; i++) {
		struct manager *m = simcluster_manager(c, i);
		uint8_t *buf;
		size_t len;
		if (!m || simcluster_sync_skips(c, i) ||
		    store_snapshot(manager_store(m), &buf, &len))
			continue;
		if (!first) {
			first = buf;
			first_len = len;
			first_node = i;
			continue;
		}
		if (len != first_len || memcmp(buf, first, len) != 0) {
			snprintf(got, size, "stores of %s and %s differ",
				 world_node_name(c->w, first_node),
				 world_node_name(c->w, i));
			same = false;
		}
		free(buf);
	}
	free(first);
	if (!any) {
		snprintf(got, size, "no manager running");
		return false;
	}
	return same;
}

uint64_t simcluster_max_applied(const struct simcluster *c)
{
	uint64_t max = 0;
	for (uint32_t i = 0; i < world_node_count(c->w); i++) {
		struct manager *m = simcluster_manager(c, i);
		if (m && manager_applied(m) > max)
			max = manager_applied(m);
	}
	return max;
}
