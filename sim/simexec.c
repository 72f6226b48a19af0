/* simexec: the simulated container runtime. See simexec.h for the contract.
 * Sections: types and keys, records (the events the runtime schedules),
 * containers and ground truth counts, the executor ops, node death, reads.
 *
 * Two kinds of events: a request's completion belongs to the node's process
 * (scheduled on the node, so the world drops it when the process dies; the
 * runtime frees its record then), a container's own change (started, exited,
 * stopped) belongs to the machine (scheduled on the world, so it happens
 * whatever the process does; cancelled by clearing its container pointer).
 * Both kinds of records stay in one list until they fire or are freed. */
#include "sim/simexec.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "core/errors.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/str.h"
#include "core/tree.h"

#define SIMEXEC_ON_WORLD UINT32_MAX /* world_call_at's "the world itself" */

enum { SIMEXEC_ID_BYTES = LIMIT_NAME_BYTES_MAX + 1 };
_Static_assert(SIMEXEC_ID_BYTES <= sizeof(((struct env_ctl_found *)0)->task_id),
	       "a task id fits ctl_list's results");

/* ---------------------------------------------------------------- types and keys */

/* ":latest", which an image's name without a tag is short for */
#define SIMEXEC_TAG_LATEST ":latest"

struct simexec_image_cfg {
	struct tree_node by_name;
	/* the name as Docker reads it (simexec_image_name) */
	char name[SIMEXEC_IMAGE_BYTES_MAX + sizeof SIMEXEC_TAG_LATEST];
	bool pull_fail;
	us_t start_min_us, start_max_us;
	bool has_exit;
	int32_t exit_code;
	us_t exit_min_us, exit_max_us;
	bool start_fail;  /* START fails: the container stays created */
	bool stop_ignore; /* SIGTERM ignored: killed at the stop timeout */
	/* issue 14: when its health command succeeds, from its start: from
	 * a draw in healthy_after (else at once) until a draw in
	 * unhealthy_after (else for good) */
	bool has_healthy_after, has_unhealthy_after;
	us_t healthy_min_us, healthy_max_us;
	us_t unhealthy_min_us, unhealthy_max_us;
};

/* A service name seen in a container or an allow call; lives until
 * simexec_free. */
struct simexec_service {
	struct tree_node by_name;
	char name[SIMEXEC_ID_BYTES];
	bool allow_two;
	size_t running_count;
	/* running containers by slot (slot_running[slot], slot <
	 * slot_cap): what simexec_slot_running counts in by_slot, kept as
	 * containers start and stop (slots past SIMEXEC_SLOT_COUNTS_MAX, or
	 * out of memory: counted in the tree) */
	uint32_t *slot_running;
	size_t slot_cap;
	bool slot_counts_off;
};

/* Issue 18: the slots whose running containers a service counts in place;
 * a replicated service's slots are 1..replicas. */
enum { SIMEXEC_SLOT_COUNTS_MAX = 1 << 22 };
/* 1: every count kept in place is checked against the trees' (tests) */
#ifndef SIMEXEC_CHECK_COUNTS
#define SIMEXEC_CHECK_COUNTS 0
#endif

/* Running containers by the 64-bit hash of their task id (open
 * addressing; a hash of 0 is kept as 1): an upper bound of each task id's
 * count (ids that share a hash add up), exact when it is 0, or 1 for a
 * container of that id that runs. */
struct simexec_tcount {
	uint64_t hash; /* 0: free */
	uint64_t running;
};

struct simexec_rec;

/* A container's health check, from its spec (has: a test, not NONE). */
struct simexec_health_cfg {
	bool has;
	us_t interval_us, start_period_us;
	uint64_t retries;
};

/* Host ports a container binds (issue 15), as Docker's PortBindings with
 * a HostPort given; more than SIMEXEC_PORTS_MAX is refused at ctl_open. */
struct simexec_ports {
	size_t count;
	struct env_port v[SIMEXEC_PORTS_MAX];
};

/* A container's (or its controller's) published host ports, at most
 * SIMEXEC_PORTS_MAX: v owned, NULL when none (issue 18: the array in
 * place cost every container and controller 200 bytes, most of them
 * publishing none). */
struct simexec_port_list {
	struct env_port *v;
	size_t count;
};

/* issue 18: a text many containers share (an image, a service's name or
 * id), kept once until simexec_free: a container and its controller held
 * their own copies in arrays of the longest size, 704 bytes a task. s
 * points at the record's own tail, or at a probe's text. */
struct simexec_text {
	struct tree_node by_text;
	const char *s;
};

/* issue 17: data plane */
enum { SIMEXEC_ADDR_BYTES = 48, SIMEXEC_ATTS_MAX = LIMIT_SERVICE_NETWORKS_MAX + 1 };

struct simexec_att {
	uint64_t network_id;
	char addr[SIMEXEC_ADDR_BYTES]; /* no prefix */
};

struct simexec_nep {
	char addr[SIMEXEC_ADDR_BYTES];
	char node_ip[LIMIT_ADDR_BYTES_MAX];
	int64_t node; /* node_ip's node (-1: none), resolved at net_set */
	bool local;
};

struct simexec_nsvc {
	char name[SIMEXEC_ID_BYTES];
	char vip[SIMEXEC_ADDR_BYTES]; /* "": dnsrr */
	char (*aliases)[SIMEXEC_ID_BYTES];
	size_t alias_count;
	char (*backends)[SIMEXEC_ADDR_BYTES];
	size_t backend_count;
	struct env_port *ports; /* ingress-published (the ingress network) */
	size_t port_count;
};

/* One network as a node has programmed it (net_set). */
struct simexec_netst {
	uint64_t id;
	struct simexec_nep *eps;
	size_t ep_count;
	struct simexec_nsvc *svcs;
	size_t svc_count;
	bool ingress;			    /* the routing mesh's network */
	char node_addr[SIMEXEC_ADDR_BYTES]; /* ingress: the node's own ("": none) */
	/* issue 17: an encrypted network: the ids of the keys the node holds
	 * (what it accepts) and of the one it sends with (0: none, it sends
	 * nothing to other nodes). Ids only: the simulator keeps no key. */
	bool encrypted;
	uint32_t key_ids[ENV_NET_KEYS_MAX];
	size_t key_count;
	uint32_t primary_id;
};

/* Issue 20: a container's secret or config files, as PREPARE materialised
 * them (the runtime's memory, as the real one's tmpfs): what each is, where
 * and how, and a digest of the data (the data itself is not kept). */
struct simexec_files {
	struct simexec_file *v; /* owned, or NULL */
	size_t count;
};

struct simexec_container {
	struct tree_node by_node; /* (node, task id): the order of everything */
	struct tree_node by_task; /* (task id, node): a task's containers */
	struct tree_node by_slot; /* (service name, slot, node, task id) */
	/* the three trees' priorities, hashes of the keys above, fixed at
	 * create: a treap asks for two at every level an insert or a remove
	 * passes (a string hash apiece, 120 per container made) */
	uint64_t prio_node, prio_task, prio_slot;
	uint32_t node;
	char task_id[SIMEXEC_ID_BYTES];
	const char *service_id; /* simexec_text's */
	const char *image;	/* likewise */
	uint64_t slot;
	struct simexec_service *svc;
	enum env_ctl_state state; /* CREATED, RUNNING or EXITED */
	int32_t exit_code;
	/* pending changes of the machine (world events), or NULL */
	struct simexec_rec *ev_start;
	struct simexec_rec *ev_exit;
	struct simexec_rec *ev_stop;
	us_t start_due_us; /* while ev_start */
	us_t stop_due_us;  /* while ev_stop */
	/* issue 14: its health check (the spec's, fixed at create) and
	 * Docker's probe state, advanced to the time asked (simexec_health):
	 * a probe every interval from the start, a success healthy, `retries`
	 * failures in a row unhealthy, failures before any success within
	 * the start period not counted. */
	struct simexec_health_cfg hc;
	us_t started_us;			 /* its last start */
	us_t healthy_from_us, unhealthy_from_us; /* from started_us; drawn at start */
	uint64_t probes_done;
	uint64_t failing_streak;
	enum env_ctl_health health;
	/* issue 15: its host ports, bound while it runs or starts */
	struct simexec_port_list ports;
	/* issue 17: its network attachments (att_count, at most
	 * SIMEXEC_ATTS_MAX; owned, NULL when none: an array in place cost
	 * every container 952 bytes, most of them with no network) */
	struct simexec_att *atts;
	size_t att_count;
	struct simexec_files files; /* issue 20: removed with the container */
};

struct simexec_ctl {
	struct simexec *x;
	struct simexec_ctl *prev, *next; /* the node's controllers, oldest first */
	uint32_t node;
	char task_id[SIMEXEC_ID_BYTES];
	const char *service_id;	  /* simexec_text's */
	const char *service_name; /* likewise */
	const char *image;	  /* likewise */
	uint64_t slot;
	us_t stop_timeout_us;
	struct simexec_health_cfg hc;	/* given to the container it creates */
	struct simexec_port_list ports; /* likewise (a copy) */
	struct simexec_att *atts;	/* likewise (issue 17); owned, or NULL */
	size_t att_count;
	struct simexec_files files;   /* likewise (issue 20): a copy */
	struct simexec_rec *op;	      /* the op in flight, or NULL */
	struct env_ctl_req *wait_req; /* a WAIT in flight, or NULL */
	env_ctl_cb wait_cb;
	struct simexec_rec *wait_rec; /* its completion once scheduled, or NULL */
	bool closing;
};

/* A node's controllers and its runtime's faults (the machine's, so they
 * outlive the node's process). */
struct simexec_node {
	struct simexec_ctl *head, *tail;
	uint32_t fail_ops;	    /* SIMEXEC_OP_* bits failing until fail_until_us */
	us_t fail_until_us;	    /* UINT64_MAX: until simexec_runtime_ok */
	us_t down_until_us;	    /* a restarting daemon: every call fails before */
	us_t healthy_from_us;	    /* when the last fault ended (or ends) */
	struct simexec_ports binds; /* held by something else on the machine */
	struct simexec_netst *nets; /* issue 17: networks programmed (net_set) */
	size_t net_count;
};

/* The room of env_ctl_req.message, which a result's words are cut to. */
enum { SIMEXEC_MSG_BYTES = sizeof(((struct env_ctl_req *)0)->message) };

enum simexec_rec_kind {
	SIMEXEC_REC_OP,	     /* node: an op's completion */
	SIMEXEC_REC_WAIT,    /* node: a WAIT's completion */
	SIMEXEC_REC_CLOSE,   /* node: a controller's close callback */
	SIMEXEC_REC_LOGS,    /* node: logs_read's lines (issue 16) */
	SIMEXEC_REC_LIST,    /* node: ctl_list's results (the last node kind) */
	SIMEXEC_REC_STARTED, /* world: a container starts running */
	SIMEXEC_REC_EXIT,    /* world: a container exits on its own */
	SIMEXEC_REC_STOPPED, /* world: a container stops after SHUTDOWN */
};

/* A scheduled event's data. Node records are freed when they fire or when
 * their process dies; world records when they fire (or at simexec_free). */
struct simexec_rec {
	struct simexec *x;
	struct simexec_rec *prev, *next; /* x->recs */
	enum simexec_rec_kind kind;
	uint32_t node;
	bool on_node;
	struct simexec_ctl *ctl;     /* OP, WAIT, CLOSE; NULL: cancelled */
	struct simexec_container *c; /* STARTED, EXIT, STOPPED; NULL: cancelled */
	struct env_ctl_req *req;     /* OP, WAIT */
	enum env_ctl_op op_kind;     /* OP */
	env_ctl_cb cb;
	env_ctl_close_cb close_cb; /* CLOSE */
	void *close_data;
	struct env_ctl_list_req *list_req; /* LIST (fixed: fails with status) */
	env_ctl_list_cb list_cb;
	struct env_logs_req *logs_req; /* LOGS */
	env_logs_cb logs_cb;
	/* OP, WAIT: results fixed when scheduled (errors, WAIT), else read from
	 * the container when the callback runs */
	bool fixed;
	int status;
	enum env_ctl_state state;
	int32_t exit_code; /* also EXIT, STOPPED: the code to exit with */
	/* a fixed result's words, at most SIMEXEC_MSG_BYTES - 1 (owned; NULL:
	 * none): an array in place cost each record 256 bytes, and a
	 * healthy run has one or two records a task in flight and no words */
	char *message;
};

struct simexec {
	struct world *w;
	us_t faults_until_us;	/* no runtime is faulted from then on (a bound) */
	struct tree containers; /* by_node */
	/* by (task id, node) and by (service, slot, node, task id): read
	 * only to tell why invariant 3 fails, on a count the hashes below
	 * cannot give, or for a service's backends, so built at their first
	 * read (simexec_aux) and kept from then on (issue 18: two treap
	 * inserts of every container created, 4% of a 100,000-task rollout,
	 * for trees a healthy run never reads). A treap's shape depends on
	 * its keys alone: built late, they are what inserts would have made */
	struct tree by_task;
	struct tree by_slot;
	bool aux_built; /* by_task and by_slot hold every container */
	struct tree images;
	struct tree services;
	struct tree texts;	    /* struct simexec_text, by s */
	struct simexec_node *nodes; /* by node index, grown on demand */
	size_t node_count;
	struct simexec_rec *recs;
	size_t rec_count;
	size_t running_count;
	size_t bad_tasks;	/* task ids running in two containers or more */
	size_t bad_slots;	/* slots running more than their limit */
	size_t port_containers; /* containers with host ports (issue 15) */
	uint64_t changes;	/* containers started or stopped, limits changed */
	/* issue 18: running containers by task id hash (cap a power of two,
	 * at most half full; entries stay once made) */
	struct simexec_tcount *tcounts;
	size_t tcount_cap, tcount_used;
	bool tcounts_off; /* out of memory once: counted in the tree */
	/* issue 18: the containers by (node, task id), hashed by prio_node
	 * (cap a power of two, at most half full; linear probing): a find
	 * at each op's completion searched the by-node treap (a cache miss
	 * per level at 100,000 containers) */
	struct simexec_container **cidx;
	size_t cidx_cap;
	bool cidx_off; /* out of memory once: found in the tree */
	/* issue 17: a node's described IP (NULL: none), for endpoints */
	const char *(*node_ip)(void *ctx, uint32_t node);
	void *node_ip_ctx;
};

static bool simexec_addr_copy(char *out, const char *in);
static struct simexec_netst *simexec_netst_get(const struct simexec *x, uint32_t node,
					       uint64_t id);
static void simexec_net_vanish(struct simexec *x, uint32_t node);
static void simexec_netst_free(struct simexec_netst *n);
static int64_t simexec_node_of_ip(const struct simexec *x, const char *ip);
static int simexec_nep_cmp(const void *a, const void *b);

static void simexec_aux(const struct simexec *cx);

static struct simexec_container *simexec_c_of_node(const struct tree_node *n)
{
	return TREE_ENTRY(n, struct simexec_container, by_node);
}
static struct simexec_container *simexec_c_of_task(const struct tree_node *n)
{
	return TREE_ENTRY(n, struct simexec_container, by_task);
}
static struct simexec_container *simexec_c_of_slot(const struct tree_node *n)
{
	return TREE_ENTRY(n, struct simexec_container, by_slot);
}

static int simexec_cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int simexec_by_node_cmp(const struct tree_node *a, const struct tree_node *b)
{
	const struct simexec_container *ca = simexec_c_of_node(a),
				       *cb = simexec_c_of_node(b);
	int r = simexec_cmp_u64(ca->node, cb->node);
	return r ? r : strcmp(ca->task_id, cb->task_id);
}
static uint64_t simexec_by_node_prio(const struct tree_node *a)
{
	return simexec_c_of_node(a)->prio_node;
}

static int simexec_by_task_cmp(const struct tree_node *a, const struct tree_node *b)
{
	const struct simexec_container *ca = simexec_c_of_task(a),
				       *cb = simexec_c_of_task(b);
	int r = strcmp(ca->task_id, cb->task_id);
	return r ? r : simexec_cmp_u64(ca->node, cb->node);
}
static uint64_t simexec_by_task_prio(const struct tree_node *a)
{
	return simexec_c_of_task(a)->prio_task;
}

static int simexec_by_slot_cmp(const struct tree_node *a, const struct tree_node *b)
{
	const struct simexec_container *ca = simexec_c_of_slot(a),
				       *cb = simexec_c_of_slot(b);
	/* one service record per name: the same record, the same name */
	int r = ca->svc == cb->svc ? 0 : strcmp(ca->svc->name, cb->svc->name);
	if (!r)
		r = simexec_cmp_u64(ca->slot, cb->slot);
	if (!r)
		r = simexec_cmp_u64(ca->node, cb->node);
	return r ? r : strcmp(ca->task_id, cb->task_id);
}
static uint64_t simexec_by_slot_prio(const struct tree_node *a)
{
	return simexec_c_of_slot(a)->prio_slot;
}

/* Sets c's tree priorities from its keys (node, task id, service, slot),
 * which never change after. */
static void simexec_prio_set(struct simexec_container *c)
{
	uint64_t task = hash_str(c->task_id);

	c->prio_node = hash_mix64(task ^ c->node); /* simexec_cidx_hash too */
	c->prio_task = hash_mix64(task + c->node);
	c->prio_slot = hash_mix64(hash_str(c->svc->name) ^ hash_mix64(c->slot) ^ task ^
				  ((uint64_t)c->node << 40));
}

static int simexec_image_cmp(const struct tree_node *a, const struct tree_node *b)
{
	return strcmp(TREE_ENTRY(a, struct simexec_image_cfg, by_name)->name,
		      TREE_ENTRY(b, struct simexec_image_cfg, by_name)->name);
}
static uint64_t simexec_image_prio(const struct tree_node *a)
{
	return hash_str(TREE_ENTRY(a, struct simexec_image_cfg, by_name)->name);
}

static int simexec_text_cmp(const struct tree_node *a, const struct tree_node *b)
{
	return strcmp(TREE_ENTRY(a, struct simexec_text, by_text)->s,
		      TREE_ENTRY(b, struct simexec_text, by_text)->s);
}
static uint64_t simexec_text_prio(const struct tree_node *a)
{
	return hash_str(TREE_ENTRY(a, struct simexec_text, by_text)->s);
}

static int simexec_service_cmp(const struct tree_node *a, const struct tree_node *b)
{
	return strcmp(TREE_ENTRY(a, struct simexec_service, by_name)->name,
		      TREE_ENTRY(b, struct simexec_service, by_name)->name);
}
static uint64_t simexec_service_prio(const struct tree_node *a)
{
	return hash_str(TREE_ENTRY(a, struct simexec_service, by_name)->name);
}

/* Copies s (NULL: "") into buf of size bytes; false when it does not fit. */
static bool simexec_copy(char *buf, size_t size, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	if (len >= size)
		return false;
	memcpy(buf, s ? s : "", len + 1);
	return true;
}

struct simexec *simexec_new(struct world *w)
{
	struct simexec *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->w = w;
	tree_init(&x->containers, simexec_by_node_cmp, simexec_by_node_prio);
	tree_init(&x->by_task, simexec_by_task_cmp, simexec_by_task_prio);
	tree_init(&x->by_slot, simexec_by_slot_cmp, simexec_by_slot_prio);
	tree_init(&x->images, simexec_image_cmp, simexec_image_prio);
	tree_init(&x->services, simexec_service_cmp, simexec_service_prio);
	tree_init(&x->texts, simexec_text_cmp, simexec_text_prio);
	return x;
}

/* Returns s (NULL: "") as kept in x, one copy per distinct text; or NULL
 * with *rv set: CS_ELIMIT when s is over max bytes, CS_ENOMEM. */
static const char *simexec_text(struct simexec *x, const char *s, size_t max, int *rv)
{
	struct simexec_text probe, *t;
	struct tree_node *n;
	size_t len;

	probe.s = s ? s : "";
	len = strlen(probe.s);
	if (len > max) {
		*rv = CS_ELIMIT;
		return NULL;
	}
	n = tree_find(&x->texts, &probe.by_text);
	if (n)
		return TREE_ENTRY(n, struct simexec_text, by_text)->s;
	t = malloc(sizeof *t + len + 1);
	if (!t) {
		*rv = CS_ENOMEM;
		return NULL;
	}
	memcpy(t + 1, probe.s, len + 1);
	t->s = (const char *)(t + 1);
	tree_insert(&x->texts, &t->by_text);
	return t->s;
}

/* Writes into buf (its size: SIMEXEC_IMAGE_BYTES_MAX + sizeof ":latest")
 * the image's name as Docker reads it, so that the names of one image are
 * one: Docker Hub's official images are named without docker.io/library/
 * (or docker.io/, or library/), and a name with neither tag nor digest is
 * its :latest (nginx, library/nginx, docker.io/library/nginx:latest).
 * False when the name is too long. */
static bool simexec_image_name(char *buf, size_t size, const char *name)
{
	static const char *const hub[] = {"docker.io/library/",
					  "index.docker.io/library/", "docker.io/",
					  "index.docker.io/", "library/"};
	const char *last;
	size_t len;

	for (size_t i = 0; i < sizeof hub / sizeof hub[0]; i++) {
		size_t n = strlen(hub[i]);
		if (strncmp(name, hub[i], n) == 0 && name[n]) {
			name += n;
			break;
		}
	}
	if (strlen(name) > SIMEXEC_IMAGE_BYTES_MAX)
		return false;
	last = strrchr(name, '/');
	last = last ? last + 1 : name;
	len = strlen(name);
	if (strchr(last, ':') || strchr(name, '@'))
		return simexec_copy(buf, size, name);
	if (len + sizeof SIMEXEC_TAG_LATEST > size)
		return false;
	memcpy(buf, name, len);
	memcpy(buf + len, SIMEXEC_TAG_LATEST, sizeof SIMEXEC_TAG_LATEST);
	return true;
}

static const struct simexec_image_cfg *simexec_image_find(const struct simexec *x,
							  const char *name)
{
	struct simexec_image_cfg probe;
	struct tree_node *n;
	if (!simexec_image_name(probe.name, sizeof probe.name, name))
		return NULL;
	n = tree_find(&x->images, &probe.by_name);
	return n ? TREE_ENTRY(n, struct simexec_image_cfg, by_name) : NULL;
}

int simexec_image(struct simexec *x, const char *name, bool pull_fail, us_t start_min_us,
		  us_t start_max_us, bool has_exit, int32_t exit_code, us_t exit_min_us,
		  us_t exit_max_us)
{
	struct simexec_image_cfg *img;

	if (!name || !name[0] || start_min_us > start_max_us)
		return CS_EINVAL;
	if (has_exit && exit_min_us > exit_max_us)
		return CS_EINVAL;
	if (strlen(name) > SIMEXEC_IMAGE_BYTES_MAX)
		return CS_ELIMIT;
	img = (struct simexec_image_cfg *)simexec_image_find(x, name);
	if (!img) {
		img = calloc(1, sizeof *img);
		if (!img)
			return CS_ENOMEM;
		simexec_image_name(img->name, sizeof img->name, name);
		tree_insert(&x->images, &img->by_name);
	}
	img->pull_fail = pull_fail;
	img->start_min_us = start_min_us;
	img->start_max_us = start_max_us;
	img->has_exit = has_exit;
	img->exit_code = exit_code;
	img->exit_min_us = exit_min_us;
	img->exit_max_us = exit_max_us;
	img->start_fail = false;
	img->stop_ignore = false;
	img->has_healthy_after = img->has_unhealthy_after = false;
	assert(simexec_image_find(x, name) == img);
	return 0;
}

int simexec_image_faults(struct simexec *x, const char *name, bool start_fail,
			 bool stop_ignore)
{
	struct simexec_image_cfg *img =
		(struct simexec_image_cfg *)simexec_image_find(x, name ? name : "");
	if (!img)
		return CS_ENOENT;
	img->start_fail = start_fail;
	img->stop_ignore = stop_ignore;
	return 0;
}

int simexec_image_health(struct simexec *x, const char *name, bool has_healthy,
			 us_t healthy_min_us, us_t healthy_max_us, bool has_unhealthy,
			 us_t unhealthy_min_us, us_t unhealthy_max_us)
{
	struct simexec_image_cfg *img =
		(struct simexec_image_cfg *)simexec_image_find(x, name ? name : "");
	if (!img)
		return CS_ENOENT;
	if ((has_healthy && healthy_min_us > healthy_max_us) ||
	    (has_unhealthy && unhealthy_min_us > unhealthy_max_us))
		return CS_EINVAL;
	img->has_healthy_after = has_healthy;
	img->healthy_min_us = healthy_min_us;
	img->healthy_max_us = healthy_max_us;
	img->has_unhealthy_after = has_unhealthy;
	img->unhealthy_min_us = unhealthy_min_us;
	img->unhealthy_max_us = unhealthy_max_us;
	return 0;
}

/* Returns the service named name, creating it; NULL when out of memory or
 * the name is too long. */
static struct simexec_service *simexec_service_get(struct simexec *x, const char *name)
{
	struct simexec_service probe, *s;
	struct tree_node *n;

	if (!simexec_copy(probe.name, sizeof probe.name, name))
		return NULL;
	n = tree_find(&x->services, &probe.by_name);
	if (n)
		return TREE_ENTRY(n, struct simexec_service, by_name);
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	memcpy(s->name, probe.name, sizeof s->name);
	tree_insert(&x->services, &s->by_name);
	return s;
}

static const struct simexec_service *simexec_service_find(const struct simexec *x,
							  const char *name)
{
	struct simexec_service probe;
	struct tree_node *n;
	if (!simexec_copy(probe.name, sizeof probe.name, name))
		return NULL;
	n = tree_find(&x->services, &probe.by_name);
	return n ? TREE_ENTRY(n, struct simexec_service, by_name) : NULL;
}

/* ---------------------------------------------------------------- runtime faults */

/* Docker's words when its daemon does not answer. */
#define SIMEXEC_DAEMON_MSG                                                            \
	"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the " \
	"docker daemon running?"

/* Makes x->nodes hold node. Returns 0 or CS_ENOMEM. */
static int simexec_node_grow(struct simexec *x, uint32_t node)
{
	size_t count = (size_t)node + 1;
	struct simexec_node *nodes;

	if (node < x->node_count)
		return 0;
	nodes = realloc(x->nodes, count * sizeof *nodes);
	if (!nodes)
		return CS_ENOMEM;
	memset(nodes + x->node_count, 0, (count - x->node_count) * sizeof *nodes);
	x->nodes = nodes;
	x->node_count = count;
	return 0;
}

/* Whether a call of kind op_bit (SIMEXEC_OP_*) on node fails now: its
 * daemon is restarting, or a `runtime NODE fail=` holds for that kind. */
static bool simexec_fails(const struct simexec *x, uint32_t node, uint32_t op_bit)
{
	us_t now_us = world_now_us(x->w);
	const struct simexec_node *n;

	if (node >= x->node_count)
		return false;
	n = &x->nodes[node];
	if (now_us < n->down_until_us)
		return true;
	return (n->fail_ops & op_bit) && now_us < n->fail_until_us;
}

static uint32_t simexec_op_bit(enum env_ctl_op op)
{
	switch (op) {
	case ENV_CTL_PREPARE: return SIMEXEC_OP_PREPARE;
	case ENV_CTL_START: return SIMEXEC_OP_START;
	case ENV_CTL_WAIT: return SIMEXEC_OP_WAIT;
	case ENV_CTL_SHUTDOWN:
	case ENV_CTL_TERMINATE: return SIMEXEC_OP_STOP;
	case ENV_CTL_REMOVE: return SIMEXEC_OP_REMOVE;
	case ENV_CTL_INSPECT: return SIMEXEC_OP_INSPECT;
	}
	return 0;
}

/* ---------------------------------------------------------------- records */

static void simexec_fire(struct world *w, void *data);

/* Returns a new record of kind, listed in x->recs, or NULL. */
static struct simexec_rec *simexec_rec_new(struct simexec *x, enum simexec_rec_kind kind,
					   uint32_t node)
{
	struct simexec_rec *rec = calloc(1, sizeof *rec);
	if (!rec)
		return NULL;
	rec->x = x;
	rec->kind = kind;
	rec->node = node;
	rec->on_node = kind <= SIMEXEC_REC_LIST;
	rec->next = x->recs;
	if (x->recs)
		x->recs->prev = rec;
	x->recs = rec;
	x->rec_count++;
	return rec;
}

/* Frees rec, unlinked already. */
static void simexec_rec_release(struct simexec_rec *rec)
{
	free(rec->message);
	free(rec);
}

static void simexec_rec_unlink(struct simexec *x, struct simexec_rec *rec)
{
	assert(x->rec_count > 0);
	if (rec->prev)
		rec->prev->next = rec->next;
	else
		x->recs = rec->next;
	if (rec->next)
		rec->next->prev = rec->prev;
	rec->prev = rec->next = NULL;
	x->rec_count--;
}

static void simexec_rec_free(struct simexec *x, struct simexec_rec *rec)
{
	simexec_rec_unlink(x, rec);
	simexec_rec_release(rec);
}

/* Schedules rec at at_us: on its node (dropped if the process dies) or on
 * the world. Returns 0, or an error after freeing rec. */
static int simexec_rec_schedule(struct simexec *x, struct simexec_rec *rec, us_t at_us)
{
	int rv = world_call_at(x->w, at_us, rec->on_node ? rec->node : SIMEXEC_ON_WORLD,
			       simexec_fire, rec);
	if (rv)
		simexec_rec_free(x, rec);
	return rv;
}

/* Sets a fixed result on an OP or WAIT record. */
static void simexec_rec_result(struct simexec_rec *rec, int status,
			       enum env_ctl_state state, int32_t exit_code,
			       const char *message)
{
	rec->fixed = true;
	rec->status = status;
	rec->state = state;
	rec->exit_code = exit_code;
	free(rec->message);
	rec->message = NULL;
	if (message && message[0]) {
		rec->message = strndup(message, SIMEXEC_MSG_BYTES - 1);
		if (!rec->message)
			rec->status = CS_ENOMEM; /* the words are lost: say why */
	}
}

/* Copies rec's words into req. */
static void simexec_rec_message(const struct simexec_rec *rec, struct env_ctl_req *req)
{
	str_copy(req->message, sizeof req->message, rec->message);
}

static void simexec_rec_no_container(struct simexec_rec *rec, const char *task_id)
{
	char msg[SIMEXEC_MSG_BYTES];
	snprintf(msg, sizeof msg, "No such container: %s", task_id);
	simexec_rec_result(rec, CS_EEXEC, ENV_CTL_ABSENT, 0, msg);
}

/* The result of a call the daemon never answered. */
static void simexec_rec_daemon_down(struct simexec_rec *rec, enum env_ctl_state state)
{
	simexec_rec_result(rec, CS_EEXEC, state, 0, SIMEXEC_DAEMON_MSG);
}

/* ---------------------------------------------------------------- containers */

/* ---------------------------------------------------------------- container index */

static uint64_t simexec_cidx_hash(uint32_t node, const char *task_id)
{
	return hash_mix64(hash_str(task_id) ^ node); /* as prio_node */
}

/* Links c into x->cidx, growing it; on out of memory the index is dropped
 * for good (finds search the tree). */
static void simexec_cidx_add(struct simexec *x, struct simexec_container *c)
{
	size_t i, mask;

	if (x->cidx_off)
		return;
	if (2 * (x->containers.count + 1) > x->cidx_cap) {
		size_t cap = x->cidx_cap ? 2 * x->cidx_cap : 1024;
		struct simexec_container **v = calloc(cap, sizeof *v);
		if (!v) {
			x->cidx_off = true;
			free(x->cidx);
			x->cidx = NULL;
			x->cidx_cap = 0;
			return;
		}
		for (size_t k = 0; k < x->cidx_cap; k++) {
			struct simexec_container *o = x->cidx[k];
			if (!o)
				continue;
			for (i = (size_t)o->prio_node & (cap - 1); v[i];
			     i = (i + 1) & (cap - 1))
				;
			v[i] = o;
		}
		free(x->cidx);
		x->cidx = v;
		x->cidx_cap = cap;
	}
	mask = x->cidx_cap - 1;
	for (i = (size_t)c->prio_node & mask; x->cidx[i]; i = (i + 1) & mask)
		assert(x->cidx[i] != c);
	x->cidx[i] = c;
}

/* Unlinks c from x->cidx (backward-shift deletion: no tombstones). */
static void simexec_cidx_remove(struct simexec *x, const struct simexec_container *c)
{
	size_t i, j, mask;

	if (x->cidx_off)
		return;
	mask = x->cidx_cap - 1;
	for (i = (size_t)c->prio_node & mask; x->cidx[i] != c; i = (i + 1) & mask)
		assert(x->cidx[i] != NULL);
	x->cidx[i] = NULL;
	/* move back every entry of the run after i that may sit at i */
	for (j = (i + 1) & mask; x->cidx[j]; j = (j + 1) & mask) {
		size_t home = (size_t)x->cidx[j]->prio_node & mask;
		/* j's entry stays when its home lies cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		x->cidx[i] = x->cidx[j];
		x->cidx[j] = NULL;
		i = j;
	}
}

static struct simexec_container *simexec_find(const struct simexec *x, uint32_t node,
					      const char *task_id)
{
	struct simexec_container probe;
	struct tree_node *n;

	if (!x->cidx_off) {
		size_t mask = x->cidx_cap - 1, i;
		if (!x->cidx_cap)
			return NULL;
		for (i = (size_t)simexec_cidx_hash(node, task_id) & mask; x->cidx[i];
		     i = (i + 1) & mask) {
			struct simexec_container *c = x->cidx[i];
			if (c->node == node && strcmp(c->task_id, task_id) == 0)
				return c;
		}
		return NULL;
	}
	probe.node = node;
	if (!simexec_copy(probe.task_id, sizeof probe.task_id, task_id))
		return NULL;
	n = tree_find(&x->containers, &probe.by_node);
	return n ? simexec_c_of_node(n) : NULL;
}

/* Links every container into by_task and by_slot, the first time either
 * is read (struct simexec); from then on create and delete keep them. A
 * cache of the containers' keys: it changes no answer, so a const reader
 * may build it (cx points at a struct simexec that is not const). */
static void simexec_aux(const struct simexec *cx)
{
	struct simexec *x = (struct simexec *)cx;

	if (x->aux_built)
		return;
	assert(x->by_task.count == 0 && x->by_slot.count == 0);
	for (struct tree_node *n = tree_first(&x->containers); n;
	     n = tree_next(&x->containers, n)) {
		struct simexec_container *c = simexec_c_of_node(n);
		tree_insert(&x->by_task, &c->by_task);
		tree_insert(&x->by_slot, &c->by_slot);
	}
	x->aux_built = true;
	assert(x->by_task.count == x->containers.count);
	assert(x->by_slot.count == x->containers.count);
}

/* Counts the running containers of task_id, on every node. */
static size_t simexec_task_running(const struct simexec *x, const char *task_id)
{
	struct simexec_container probe;
	struct tree_node *n;
	size_t count = 0;

	probe.node = 0;
	if (!simexec_copy(probe.task_id, sizeof probe.task_id, task_id))
		return 0;
	simexec_aux(x);
	for (n = tree_ceil(&x->by_task, &probe.by_task); n;
	     n = tree_next(&x->by_task, n)) {
		const struct simexec_container *c = simexec_c_of_task(n);
		if (strcmp(c->task_id, task_id) != 0)
			break;
		count += c->state == ENV_CTL_RUNNING;
	}
	return count;
}

/* Returns the first container of (svc, slot) in by_slot order, or NULL. */
static struct simexec_container *simexec_slot_first(const struct simexec *x,
						    struct simexec_service *svc,
						    uint64_t slot)
{
	struct simexec_container probe;
	struct tree_node *n;
	probe.svc = svc;
	probe.slot = slot;
	probe.node = 0;
	probe.task_id[0] = '\0';
	simexec_aux(x);
	n = tree_ceil(&x->by_slot, &probe.by_slot);
	return n ? simexec_c_of_slot(n) : NULL;
}

/* Counts the running containers of (svc, slot). */
static size_t simexec_slot_running(const struct simexec *x, struct simexec_service *svc,
				   uint64_t slot)
{
	size_t count = 0;
	const struct simexec_container *c = simexec_slot_first(x, svc, slot);
	for (; c && c->svc == svc && c->slot == slot;) {
		struct tree_node *n = tree_next(&x->by_slot, &c->by_slot);
		count += c->state == ENV_CTL_RUNNING;
		c = n ? simexec_c_of_slot(n) : NULL;
	}
	return count;
}

static size_t simexec_slot_limit(const struct simexec_service *svc)
{
	return svc->allow_two ? 2 : 1;
}

/* The entry of hash h in x->tcounts (made, with running 0, when missing);
 * NULL when x counts in the tree (out of memory once). */
static struct simexec_tcount *simexec_tcount(struct simexec *x, uint64_t h)
{
	size_t i;

	if (x->tcounts_off)
		return NULL;
	if (2 * (x->tcount_used + 1) > x->tcount_cap) {
		size_t cap = x->tcount_cap ? 2 * x->tcount_cap : 1024;
		struct simexec_tcount *v = calloc(cap, sizeof *v);
		if (!v) {
			x->tcounts_off = true;
			free(x->tcounts);
			x->tcounts = NULL;
			return NULL;
		}
		for (size_t k = 0; k < x->tcount_cap; k++) {
			if (!x->tcounts[k].hash)
				continue;
			for (i = (size_t)x->tcounts[k].hash & (cap - 1); v[i].hash;
			     i = (i + 1) & (cap - 1))
				;
			v[i] = x->tcounts[k];
		}
		free(x->tcounts);
		x->tcounts = v;
		x->tcount_cap = cap;
	}
	for (i = (size_t)h & (x->tcount_cap - 1);
	     x->tcounts[i].hash && x->tcounts[i].hash != h;
	     i = (i + 1) & (x->tcount_cap - 1))
		;
	if (!x->tcounts[i].hash) {
		x->tcounts[i].hash = h;
		x->tcount_used++;
	}
	return &x->tcounts[i];
}

/* How many containers of c's task id run, before c's change to running
 * (now) or from it: from the counts by hash when they tell it exactly (none
 * of that hash runs, or only c), else from the tree; then the counts are
 * moved by c's change. */
static size_t simexec_task_running_was(struct simexec *x,
				       const struct simexec_container *c, bool now)
{
	uint64_t h = hash_str(c->task_id);
	struct simexec_tcount *e = simexec_tcount(x, h ? h : 1);
	size_t count;

	if (!e)
		return simexec_task_running(x, c->task_id);
	if (now && e->running == 0)
		count = 0;
	else if (!now && e->running == 1)
		count = 1;
	else
		count = simexec_task_running(x, c->task_id);
	assert(now || e->running > 0);
	e->running = now ? e->running + 1 : e->running - 1;
	return count;
}

/* How many containers of c's slot run, before c's change (as above), from
 * its service's counts by slot, which it then moves. */
static size_t simexec_slot_running_was(struct simexec *x,
				       const struct simexec_container *c, bool now)
{
	struct simexec_service *svc = c->svc;
	size_t count;

	if (!svc->slot_counts_off && c->slot >= svc->slot_cap) {
		size_t cap = svc->slot_cap ? svc->slot_cap : 64;
		uint32_t *v;
		while (cap <= c->slot && cap < SIMEXEC_SLOT_COUNTS_MAX)
			cap *= 2;
		v = c->slot < cap ? realloc(svc->slot_running, cap * sizeof *v) : NULL;
		if (!v) {
			/* counted in the tree from now on */
			svc->slot_counts_off = true;
			free(svc->slot_running);
			svc->slot_running = NULL;
			svc->slot_cap = 0;
		} else {
			/* the slots not counted yet: none had a container
			 * that runs (every change was counted) */
			memset(v + svc->slot_cap, 0, (cap - svc->slot_cap) * sizeof *v);
			svc->slot_running = v;
			svc->slot_cap = cap;
		}
	}
	if (svc->slot_counts_off)
		return simexec_slot_running(x, svc, c->slot);
	count = svc->slot_running[c->slot];
	if (SIMEXEC_CHECK_COUNTS) {
		size_t in_tree = simexec_slot_running(x, svc, c->slot);
		assert(count == in_tree);
		(void)in_tree;
	}
	assert(now || count > 0);
	svc->slot_running[c->slot] = now ? (uint32_t)count + 1 : (uint32_t)count - 1;
	return count;
}

/* Sets c's state, keeping the running counts and the invariant 3 tallies
 * (bad_tasks, bad_slots) true. */
static void simexec_set_state(struct simexec *x, struct simexec_container *c,
			      enum env_ctl_state state, int32_t exit_code)
{
	bool was = c->state == ENV_CTL_RUNNING;
	bool now = state == ENV_CTL_RUNNING;

	c->exit_code = exit_code;
	if (was == now) {
		c->state = state;
		return;
	}
	x->changes++;
	{
		size_t t0 = simexec_task_running_was(x, c, now);
		size_t t1 = now ? t0 + 1 : t0 - 1;
		if (SIMEXEC_CHECK_COUNTS) {
			size_t in_tree = simexec_task_running(x, c->task_id);
			assert(t0 == in_tree);
			(void)in_tree;
		}
		assert(now || t0 > 0);
		if ((t0 >= 2) != (t1 >= 2)) {
			if (t1 >= 2)
				x->bad_tasks++;
			else
				x->bad_tasks--;
		}
	}
	if (c->slot > 0) {
		size_t s0 = simexec_slot_running_was(x, c, now);
		size_t s1 = now ? s0 + 1 : s0 - 1;
		size_t limit = simexec_slot_limit(c->svc);
		assert(now || s0 > 0);
		if ((s0 > limit) != (s1 > limit)) {
			if (s1 > limit)
				x->bad_slots++;
			else
				x->bad_slots--;
		}
	}
	c->state = state;
	if (now) {
		c->svc->running_count++;
		x->running_count++;
	} else {
		assert(c->svc->running_count > 0);
		assert(x->running_count > 0);
		c->svc->running_count--;
		x->running_count--;
	}
}

/* Cancels c's pending machine events (their records fire as no-ops). */
static void simexec_cancel_events(struct simexec_container *c)
{
	if (c->ev_start) {
		c->ev_start->c = NULL;
		c->ev_start = NULL;
	}
	if (c->ev_exit) {
		c->ev_exit->c = NULL;
		c->ev_exit = NULL;
	}
	if (c->ev_stop) {
		c->ev_stop->c = NULL;
		c->ev_stop = NULL;
	}
}

/* Completes the WAITs in flight on c's task at c's node: with c's exit
 * (c exited), or with "No such container" (gone: c is being removed). */
static void simexec_notify_waiters(struct simexec *x, const struct simexec_container *c,
				   bool gone)
{
	if (c->node >= x->node_count)
		return;
	for (struct simexec_ctl *ctl = x->nodes[c->node].head; ctl; ctl = ctl->next) {
		struct simexec_rec *rec;
		if (ctl->closing || !ctl->wait_req || ctl->wait_rec ||
		    strcmp(ctl->task_id, c->task_id) != 0)
			continue;
		rec = simexec_rec_new(x, SIMEXEC_REC_WAIT, c->node);
		if (!rec)
			continue; /* out of memory: this WAIT never completes */
		rec->ctl = ctl;
		rec->req = ctl->wait_req;
		rec->cb = ctl->wait_cb;
		if (gone)
			simexec_rec_no_container(rec, c->task_id);
		else
			simexec_rec_result(rec, 0, ENV_CTL_EXITED, c->exit_code, NULL);
		if (simexec_rec_schedule(x, rec, world_now_us(x->w)) == 0)
			ctl->wait_rec = rec;
	}
}

/* c exits now with exit_code: its pending changes are cancelled and the
 * WAITs on it complete. */
static void simexec_exited(struct simexec *x, struct simexec_container *c,
			   int32_t exit_code)
{
	simexec_cancel_events(c);
	simexec_set_state(x, c, ENV_CTL_EXITED, exit_code);
	simexec_notify_waiters(x, c, false);
	/* issue 20: its secret and config files go with it (Docker unmounts
	 * a container's secrets when it stops) */
	free(c->files.v);
	c->files.v = NULL;
	c->files.count = 0;
	assert(c->state == ENV_CTL_EXITED);
}

/* Issue 20: copies files (a controller's, for the container PREPARE
 * makes). Returns 0 or CS_ENOMEM (out left empty). */
static int simexec_files_copy(struct simexec_files *out, const struct simexec_files *in)
{
	out->v = NULL;
	out->count = 0;
	if (!in->count)
		return 0;
	out->v = malloc(in->count * sizeof *out->v);
	if (!out->v)
		return CS_ENOMEM;
	memcpy(out->v, in->v, in->count * sizeof *out->v);
	out->count = in->count;
	return 0;
}

static void simexec_ctl_free(struct simexec_ctl *ctl)
{
	free(ctl->ports.v);
	free(ctl->files.v);
	free(ctl->atts);
	free(ctl);
}

static void simexec_container_free(struct simexec_container *c)
{
	free(c->ports.v);
	free(c->files.v);
	free(c->atts);
	free(c);
}

/* Unlinks and frees c, which must not be running. */
static void simexec_delete(struct simexec *x, struct simexec_container *c)
{
	assert(c->state != ENV_CTL_RUNNING);
	simexec_cancel_events(c);
	assert(x->port_containers >= (c->ports.count > 0));
	x->port_containers -= c->ports.count > 0;
	simexec_cidx_remove(x, c);
	tree_remove(&x->containers, &c->by_node);
	if (x->aux_built) {
		tree_remove(&x->by_task, &c->by_task);
		tree_remove(&x->by_slot, &c->by_slot);
	}
	simexec_container_free(c);
}

/* Makes a new CREATED container for ctl's task. Returns it, or NULL when out
 * of memory. */
static struct simexec_container *simexec_create(struct simexec *x,
						const struct simexec_ctl *ctl)
{
	struct simexec_container *c;
	struct simexec_service *svc = simexec_service_get(x, ctl->service_name);

	if (!svc)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (simexec_files_copy(&c->files, &ctl->files)) {
		free(c);
		return NULL;
	}
	if (ctl->ports.count) {
		c->ports.v = malloc(ctl->ports.count * sizeof *c->ports.v);
		if (!c->ports.v) {
			simexec_container_free(c);
			return NULL;
		}
		memcpy(c->ports.v, ctl->ports.v, ctl->ports.count * sizeof *c->ports.v);
		c->ports.count = ctl->ports.count;
	}
	c->node = ctl->node;
	memcpy(c->task_id, ctl->task_id, sizeof c->task_id);
	c->service_id = ctl->service_id;
	c->image = ctl->image;
	c->slot = ctl->slot;
	c->svc = svc;
	simexec_prio_set(c);
	c->state = ENV_CTL_CREATED;
	c->hc = ctl->hc;
	if (ctl->att_count) {
		c->atts = malloc(ctl->att_count * sizeof *c->atts);
		if (!c->atts) {
			simexec_container_free(c);
			return NULL;
		}
		memcpy(c->atts, ctl->atts, ctl->att_count * sizeof *c->atts);
		c->att_count = ctl->att_count;
	}
	x->port_containers += c->ports.count > 0;
	simexec_cidx_add(x, c); /* before the insert: it sizes by the count */
	tree_insert(&x->containers, &c->by_node);
	if (x->aux_built) {
		tree_insert(&x->by_task, &c->by_task);
		tree_insert(&x->by_slot, &c->by_slot);
	}
	{
		const struct simexec_container *found =
			simexec_find(x, ctl->node, ctl->task_id);
		assert(found == c);
		(void)found;
	}
	return c;
}

/* c started running now: its health check starts over (Docker's), with
 * the image's healthy and unhealthy times drawn (only for an image that
 * has them, so that no other draw moves). */
static void simexec_health_start(struct simexec *x, struct simexec_container *c,
				 const struct simexec_image_cfg *img)
{
	c->started_us = world_now_us(x->w);
	c->probes_done = 0;
	c->failing_streak = 0;
	c->health = c->hc.has ? ENV_HEALTH_STARTING : ENV_HEALTH_NONE;
	c->healthy_from_us = 0;
	c->unhealthy_from_us = UINT64_MAX;
	if (img && img->has_healthy_after)
		c->healthy_from_us = rng_range(world_rng(x->w, RNG_WORKLOAD),
					       img->healthy_min_us, img->healthy_max_us);
	if (img && img->has_unhealthy_after)
		c->unhealthy_from_us =
			rng_range(world_rng(x->w, RNG_WORKLOAD), img->unhealthy_min_us,
				  img->unhealthy_max_us);
}

/* Returns c's health now: runs, in order, the probes due since its start
 * (Docker's rules: a success is healthy and ends the failing streak; a
 * failure counts unless the container never was healthy and the probe
 * ran within the start period; `retries` counted failures in a row are
 * unhealthy). Probes take no time (the timeout is not modelled). */
static enum env_ctl_health simexec_health(struct simexec_container *c, us_t now_us)
{
	if (!c->hc.has || c->state != ENV_CTL_RUNNING)
		return c->health;
	assert(c->hc.interval_us > 0);
	while (now_us >= c->started_us &&
	       (now_us - c->started_us) / c->hc.interval_us > c->probes_done) {
		us_t at_us = ++c->probes_done * c->hc.interval_us; /* since start */
		bool ok = at_us >= c->healthy_from_us && at_us < c->unhealthy_from_us;
		if (ok) {
			c->failing_streak = 0;
			c->health = ENV_HEALTH_HEALTHY;
		} else if (c->health != ENV_HEALTH_STARTING ||
			   at_us >= c->hc.start_period_us) {
			if (++c->failing_streak >= c->hc.retries)
				c->health = ENV_HEALTH_UNHEALTHY;
		}
	}
	return c->health;
}

/* ---------------------------------------------------------------- events */

static void simexec_fire_op(struct simexec *x, struct simexec_rec *rec)
{
	struct simexec_ctl *ctl = rec->ctl;
	struct env_ctl_req *req = rec->req;
	env_ctl_cb cb = rec->cb;
	int status = 0;

	if (!ctl) {
		simexec_rec_release(rec); /* cancelled by ctl_close */
		return;
	}
	assert(ctl->op == rec);
	assert(!ctl->closing);
	ctl->op = NULL;
	if (rec->fixed) {
		status = rec->status;
		req->state = rec->state;
		req->exit_code = rec->exit_code;
		simexec_rec_message(rec, req);
	} else {
		struct simexec_container *c = simexec_find(x, ctl->node, ctl->task_id);
		req->state = c ? c->state : ENV_CTL_ABSENT;
		req->exit_code = c ? c->exit_code : 0;
		req->message[0] = '\0';
		if (c && rec->op_kind == ENV_CTL_INSPECT)
			req->health = simexec_health(c, world_now_us(x->w));
	}
	simexec_rec_release(rec);
	cb(req, status);
}

static void simexec_fire_wait(struct simexec_rec *rec)
{
	struct simexec_ctl *ctl = rec->ctl;
	struct env_ctl_req *req = rec->req;
	env_ctl_cb cb = rec->cb;
	int status = rec->status;

	if (!ctl) {
		simexec_rec_release(rec);
		return;
	}
	assert(ctl->wait_rec == rec);
	assert(ctl->wait_req == req);
	assert(rec->fixed);
	ctl->wait_req = NULL;
	ctl->wait_rec = NULL;
	req->state = rec->state;
	req->exit_code = rec->exit_code;
	simexec_rec_message(rec, req);
	simexec_rec_release(rec);
	cb(req, status);
}

static void simexec_ctl_unlink(struct simexec *x, struct simexec_ctl *ctl)
{
	struct simexec_node *n = &x->nodes[ctl->node];
	if (ctl->prev)
		ctl->prev->next = ctl->next;
	else
		n->head = ctl->next;
	if (ctl->next)
		ctl->next->prev = ctl->prev;
	else
		n->tail = ctl->prev;
	ctl->prev = ctl->next = NULL;
}

static void simexec_fire_close(struct simexec *x, struct simexec_rec *rec)
{
	struct simexec_ctl *ctl = rec->ctl;
	env_ctl_close_cb cb = rec->close_cb;
	void *data = rec->close_data;

	assert(ctl && ctl->closing);
	assert(!ctl->op && !ctl->wait_req);
	simexec_rec_release(rec);
	simexec_ctl_unlink(x, ctl);
	if (cb)
		cb((struct env_ctl *)ctl, data);
	simexec_ctl_free(ctl);
}

static void simexec_fire_list(struct simexec *x, struct simexec_rec *rec)
{
	struct env_ctl_list_req *req = rec->list_req;
	env_ctl_list_cb cb = rec->list_cb;
	uint32_t node = rec->node;
	struct env_ctl_found *found = NULL;
	struct simexec_container probe;
	struct tree_node *first, *n;
	size_t count = 0;
	int status = 0;
	bool failed = rec->fixed;

	if (failed)
		status = rec->status;
	simexec_rec_release(rec);
	if (failed) {
		req->found = NULL;
		req->found_count = 0;
		cb(req, status);
		return;
	}
	probe.node = node;
	probe.task_id[0] = '\0';
	first = tree_ceil(&x->containers, &probe.by_node);
	for (n = first; n && simexec_c_of_node(n)->node == node;
	     n = tree_next(&x->containers, n))
		count++;
	if (count > 0) {
		found = calloc(count, sizeof *found);
		if (!found) {
			status = CS_ENOMEM;
			count = 0;
		}
	}
	for (size_t i = 0; i < count; i++, first = tree_next(&x->containers, first)) {
		const struct simexec_container *c = simexec_c_of_node(first);
		assert(c->node == node);
		memcpy(found[i].task_id, c->task_id, sizeof c->task_id);
		_Static_assert(SIMEXEC_ID_BYTES <= sizeof found[i].service_id,
			       "a service id fits env_ctl_found's");
		memcpy(found[i].service_id, c->service_id, strlen(c->service_id) + 1);
		found[i].state = c->state;
		found[i].exit_code = c->exit_code;
	}
	req->found = found;
	req->found_count = count;
	cb(req, status); /* req may be freed by cb */
	free(found);
}

static void simexec_fire_started(struct simexec *x, struct simexec_rec *rec)
{
	struct simexec_container *c = rec->c;
	const struct simexec_image_cfg *img;

	if (c) {
		assert(c->ev_start == rec);
		c->ev_start = NULL;
	}
	simexec_rec_release(rec);
	if (!c)
		return;
	assert(c->state != ENV_CTL_RUNNING);
	simexec_set_state(x, c, ENV_CTL_RUNNING, 0);
	img = simexec_image_find(x, c->image);
	simexec_health_start(x, c, img);
	if (img && img->has_exit) {
		us_t after = rng_range(world_rng(x->w, RNG_WORKLOAD), img->exit_min_us,
				       img->exit_max_us);
		struct simexec_rec *ev = simexec_rec_new(x, SIMEXEC_REC_EXIT, c->node);
		if (!ev)
			return; /* out of memory: it runs until stopped */
		ev->exit_code = img->exit_code;
		if (simexec_rec_schedule(x, ev, world_now_us(x->w) + after))
			return;
		ev->c = c;
		c->ev_exit = ev;
	}
}

/* A machine change: the container exits on its own (EXIT) or stops after
 * SHUTDOWN (STOPPED). */
static void simexec_fire_exit(struct simexec *x, struct simexec_rec *rec)
{
	struct simexec_container *c = rec->c;
	int32_t code = rec->exit_code;

	if (c && rec->kind == SIMEXEC_REC_EXIT) {
		assert(c->ev_exit == rec);
		c->ev_exit = NULL;
	} else if (c) {
		assert(c->ev_stop == rec);
		c->ev_stop = NULL;
	}
	simexec_rec_release(rec);
	if (!c)
		return;
	assert(c->state == ENV_CTL_RUNNING);
	simexec_exited(x, c, code);
}

/* The one world_call_at function of the runtime. A node record runs only
 * while the process that scheduled it lives (the world drops it otherwise
 * and simexec_node_died frees it). */
/* ---------------------------------------------------------------- logs
 * Issue 16: a running container's log, made up deterministically from what
 * the simulator knows of it: "started IMAGE task TASK" on stdout at its
 * last start, then "tick N" every SIMEXEC_LOG_TICK_US of virtual time on
 * stdout, and every fifth tick "tock N" on stderr; times are the world's
 * wall clock (WORLD_EPOCH_MS plus virtual time, as world_env_wall_ms). A
 * container not running has no lines (its log went with its run). */

enum { SIMEXEC_LOG_TICK_US = 1000000, SIMEXEC_LOG_LINES_MAX = 4096 };

static uint64_t simexec_log_ns(us_t t_us)
{
	return ((uint64_t)world_epoch_ms() * 1000 + t_us) * 1000;
}

static void simexec_fire_logs(struct simexec *x, struct simexec_rec *rec)
{
	struct env_logs_req *req = rec->logs_req;
	env_logs_cb cb = rec->logs_cb;
	const struct simexec_container *c = simexec_find(x, rec->node, req->task_id);
	struct env_log_line *lines = NULL;
	char *text = NULL;
	size_t n = 0, first = 0, bytes = 0, total;
	us_t now = world_now_us(x->w);
	int status = rec->fixed ? rec->status : 0;

	simexec_rec_release(rec);
	req->lines = NULL;
	req->line_count = 0;
	if (status || !c || c->state != ENV_CTL_RUNNING || now < c->started_us) {
		if (status)
			snprintf(req->message, sizeof req->message,
				 "the runtime does not answer");
		cb(req, status);
		return;
	}
	total = (size_t)((now - c->started_us) / SIMEXEC_LOG_TICK_US) + 1;
	if (total > SIMEXEC_LOG_LINES_MAX)
		total = SIMEXEC_LOG_LINES_MAX; /* a bound: the oldest are kept */
	lines = calloc(total * 2, sizeof *lines);
	text = calloc(total * 2, 96);
	if (!lines || !text) {
		free(lines);
		free(text);
		cb(req, CS_ENOMEM);
		return;
	}
	for (size_t k = 0; k < total; k++) {
		us_t t_us = c->started_us + (us_t)k * SIMEXEC_LOG_TICK_US;
		for (int err = 0; err < 2; err++) {
			char *buf = text + n * 96;
			struct env_log_line *l = &lines[n];
			int len;
			if (err && (k == 0 || k % 5))
				continue;
			if (k == 0)
				len = snprintf(buf, 96, "started %.40s task %.20s\n",
					       c->image, c->task_id);
			else
				len = snprintf(buf, 96, "%s %zu\n", err ? "tock" : "tick",
					       k);
			l->time_ns = simexec_log_ns(t_us) + (uint64_t)err;
			l->stream = err ? 2 : 1;
			l->data = buf;
			l->len = (size_t)len;
			n++;
		}
	}
	/* what was asked: after the cursors, or since, or the tail */
	{
		size_t keep = 0;
		bool first_read = !req->after_ns && !req->after_err_ns;
		uint64_t since_ns = req->since_ms * 1000000ull;
		for (size_t i = 0; i < n; i++) {
			const struct env_log_line *l = &lines[i];
			bool ok = first_read	   ? l->time_ns >= since_ns
				  : l->stream == 2 ? l->time_ns > req->after_err_ns
						   : l->time_ns > req->after_ns;
			if (req->until_ms && l->time_ns > req->until_ms * 1000000ull)
				ok = false;
			if (ok)
				lines[keep++] = *l;
		}
		n = keep;
		if (first_read && req->tail_set && req->tail < n)
			first = n - (size_t)req->tail;
	}
	{
		size_t end = first;
		while (end < n &&
		       (end == first || bytes + lines[end].len <= req->max_bytes))
			bytes += lines[end++].len;
		req->lines = lines + first;
		req->line_count = end - first;
	}
	cb(req, 0);
	free(lines);
	free(text);
}

int simexec_logs_read(struct simexec *x, uint32_t node, struct env_logs_req *req,
		      env_logs_cb cb)
{
	struct simexec_rec *rec;

	assert(world_node_is_up(x->w, node));
	assert(cb != NULL);
	if (!req->task_id)
		return CS_EINVAL;
	rec = simexec_rec_new(x, SIMEXEC_REC_LOGS, node);
	if (!rec)
		return CS_ENOMEM;
	rec->logs_req = req;
	rec->logs_cb = cb;
	if (simexec_fails(x, node, SIMEXEC_OP_LIST)) {
		rec->fixed = true;
		rec->status = CS_EEXEC;
	}
	return simexec_rec_schedule(x, rec, world_now_us(x->w) + SIMEXEC_API_US);
}

static void simexec_fire(struct world *w, void *data)
{
	struct simexec_rec *rec = data;
	struct simexec *x = rec->x;

	assert(x->w == w);
	simexec_rec_unlink(x, rec);
	switch (rec->kind) {
	case SIMEXEC_REC_OP: simexec_fire_op(x, rec); break;
	case SIMEXEC_REC_WAIT: simexec_fire_wait(rec); break;
	case SIMEXEC_REC_CLOSE: simexec_fire_close(x, rec); break;
	case SIMEXEC_REC_LIST: simexec_fire_list(x, rec); break;
	case SIMEXEC_REC_LOGS: simexec_fire_logs(x, rec); break;
	case SIMEXEC_REC_STARTED: simexec_fire_started(x, rec); break;
	case SIMEXEC_REC_EXIT:
	case SIMEXEC_REC_STOPPED: simexec_fire_exit(x, rec); break;
	}
}

/* ---------------------------------------------------------------- executor ops */

static struct simexec_ctl *simexec_ctl_of(struct env_ctl *ctl)
{
	return (struct simexec_ctl *)ctl;
}

int simexec_ctl_open(struct simexec *x, uint32_t node,
		     const struct env_container_spec *spec, struct env_ctl **out)
{
	struct simexec_ctl *ctl;
	size_t published = 0;
	int rv = 0;

	assert(world_node_is_up(x->w, node));
	if (!spec->task_id || !spec->task_id[0] || !spec->image || !spec->image[0])
		return CS_EINVAL;
	if (simexec_node_grow(x, node))
		return CS_ENOMEM;
	ctl = calloc(1, sizeof *ctl);
	if (!ctl)
		return CS_ENOMEM;
	if (!simexec_copy(ctl->task_id, sizeof ctl->task_id, spec->task_id)) {
		simexec_ctl_free(ctl);
		return CS_ELIMIT;
	}
	ctl->service_id = simexec_text(x, spec->service_id, SIMEXEC_ID_BYTES - 1, &rv);
	if (ctl->service_id)
		ctl->service_name =
			simexec_text(x, spec->service_name, SIMEXEC_ID_BYTES - 1, &rv);
	if (ctl->service_name)
		ctl->image = simexec_text(x, spec->image, SIMEXEC_IMAGE_BYTES_MAX, &rv);
	if (!ctl->image) {
		simexec_ctl_free(ctl);
		return rv;
	}
	ctl->x = x;
	ctl->node = node;
	ctl->slot = spec->slot;
	ctl->stop_timeout_us = spec->stop_timeout_ms * 1000;
	/* Docker's defaults for what the spec leaves at 0 */
	ctl->hc.has = spec->health_test && spec->health_test[0] &&
		      strcmp(spec->health_test[0], "NONE") != 0;
	ctl->hc.interval_us = (spec->health_interval_ms ? spec->health_interval_ms
							: SIMEXEC_HEALTH_INTERVAL_MS) *
			      1000;
	ctl->hc.start_period_us = spec->health_start_period_ms * 1000;
	ctl->hc.retries =
		spec->health_retries ? spec->health_retries : SIMEXEC_HEALTH_RETRIES;
	for (size_t i = 0; i < spec->port_count; i++)
		published += spec->ports[i].published != 0;
	if (published > SIMEXEC_PORTS_MAX) {
		simexec_ctl_free(ctl);
		return CS_ELIMIT;
	}
	if (published) {
		ctl->ports.v = malloc(published * sizeof *ctl->ports.v);
		if (!ctl->ports.v) {
			simexec_ctl_free(ctl);
			return CS_ENOMEM;
		}
	}
	for (size_t i = 0; i < spec->port_count; i++) {
		if (!spec->ports[i].published)
			continue; /* Docker picks a free one: never a conflict */
		ctl->ports.v[ctl->ports.count++] = spec->ports[i];
	}
	if (spec->network_count > SIMEXEC_ATTS_MAX) {
		simexec_ctl_free(ctl);
		return CS_ELIMIT;
	}
	if (spec->network_count) {
		ctl->atts = calloc(spec->network_count, sizeof *ctl->atts);
		if (!ctl->atts) {
			simexec_ctl_free(ctl);
			return CS_ENOMEM;
		}
	}
	for (size_t i = 0; i < spec->network_count; i++) {
		if (!simexec_addr_copy(ctl->atts[ctl->att_count].addr,
				       spec->networks[i].addr)) {
			simexec_ctl_free(ctl);
			return CS_ELIMIT;
		}
		ctl->atts[ctl->att_count++].network_id = spec->networks[i].network_id;
	}
	if (spec->file_count) {
		/* issue 20: what PREPARE materialises; the data is not kept */
		ctl->files.v = calloc(spec->file_count, sizeof *ctl->files.v);
		if (!ctl->files.v) {
			simexec_ctl_free(ctl);
			return CS_ENOMEM;
		}
		for (size_t i = 0; i < spec->file_count; i++) {
			const struct env_file *f = &spec->files[i];
			struct simexec_file *g = &ctl->files.v[i];
			if (!simexec_copy(g->name, sizeof g->name, f->name) ||
			    !simexec_copy(g->path, sizeof g->path, f->path)) {
				simexec_ctl_free(ctl);
				return CS_ELIMIT;
			}
			g->config = f->config;
			g->id = f->id;
			g->mode = f->mode;
			g->len = f->len;
			g->digest = hash_fnv(HASH_FNV_OFFSET, f->data, f->len);
		}
		ctl->files.count = spec->file_count;
	}
	ctl->prev = x->nodes[node].tail;
	if (ctl->prev)
		ctl->prev->next = ctl;
	else
		x->nodes[node].head = ctl;
	x->nodes[node].tail = ctl;
	*out = (struct env_ctl *)ctl;
	return 0;
}

/* WAIT: registered on the container; completes from simexec_exited or
 * simexec_delete, or soon when there is nothing to wait for. */
static int simexec_do_wait(struct simexec *x, struct simexec_ctl *ctl,
			   struct env_ctl_req *req, env_ctl_cb cb)
{
	const struct simexec_container *c = simexec_find(x, ctl->node, ctl->task_id);
	struct simexec_rec *rec;
	int rv;

	if (ctl->wait_req)
		return CS_EAGAIN;
	if (c && c->state != ENV_CTL_EXITED &&
	    !simexec_fails(x, ctl->node, SIMEXEC_OP_WAIT)) {
		ctl->wait_req = req;
		ctl->wait_cb = cb;
		ctl->wait_rec = NULL;
		return 0;
	}
	rec = simexec_rec_new(x, SIMEXEC_REC_WAIT, ctl->node);
	if (!rec)
		return CS_ENOMEM;
	rec->ctl = ctl;
	rec->req = req;
	rec->cb = cb;
	if (simexec_fails(x, ctl->node, SIMEXEC_OP_WAIT))
		simexec_rec_daemon_down(rec, c ? c->state : ENV_CTL_ABSENT);
	else if (c)
		simexec_rec_result(rec, 0, ENV_CTL_EXITED, c->exit_code, NULL);
	else
		simexec_rec_no_container(rec, ctl->task_id);
	rv = simexec_rec_schedule(x, rec, world_now_us(x->w) + SIMEXEC_API_US);
	if (rv)
		return rv;
	ctl->wait_req = req;
	ctl->wait_cb = cb;
	ctl->wait_rec = rec;
	return 0;
}

/* Schedules a machine event ev_kind at at_us for c, then the op's record
 * (so that at equal times the change comes first). Returns the machine
 * record (not yet tied to c), or NULL with rec freed on failure. */
static struct simexec_rec *simexec_schedule_pair(struct simexec *x,
						 struct simexec_container *c,
						 enum simexec_rec_kind ev_kind,
						 struct simexec_rec *rec, us_t at_us)
{
	struct simexec_rec *ev = simexec_rec_new(x, ev_kind, c->node);
	if (!ev) {
		simexec_rec_free(x, rec);
		return NULL;
	}
	if (simexec_rec_schedule(x, ev, at_us)) {
		simexec_rec_free(x, rec);
		return NULL;
	}
	if (simexec_rec_schedule(x, rec, at_us))
		return NULL; /* ev fires as a no-op: its c is NULL */
	return ev;
}

static int simexec_do_prepare(struct simexec *x, struct simexec_ctl *ctl,
			      struct simexec_container *c, struct simexec_rec *rec)
{
	const struct simexec_image_cfg *img = simexec_image_find(x, ctl->image);
	us_t at_us = world_now_us(x->w) + SIMEXEC_PREPARE_US;
	bool made = false;
	int rv;

	if (img && img->pull_fail) {
		char msg[SIMEXEC_MSG_BYTES];
		/* Docker's words; a very long name is cut to fit req->message */
		snprintf(msg, sizeof msg,
			 "pull access denied for %.170s, repository does not exist or "
			 "may require 'docker login'",
			 ctl->image);
		simexec_rec_result(rec, CS_EEXEC, c ? c->state : ENV_CTL_ABSENT, 0, msg);
		return simexec_rec_schedule(x, rec, at_us);
	}
	for (size_t i = 0; !c && i < ctl->att_count; i++) {
		/* issue 17: a network the node has not been told of */
		char msg[SIMEXEC_MSG_BYTES];
		if (simexec_netst_get(x, ctl->node, ctl->atts[i].network_id))
			continue;
		snprintf(msg, sizeof msg,
			 "Error response from daemon: network %016" PRIx64 " not found",
			 ctl->atts[i].network_id);
		simexec_rec_result(rec, CS_EEXEC, ENV_CTL_ABSENT, 0, msg);
		return simexec_rec_schedule(x, rec, at_us);
	}
	if (!c) {
		c = simexec_create(x, ctl);
		if (!c) {
			simexec_rec_free(x, rec);
			return CS_ENOMEM;
		}
		made = true;
	}
	rv = simexec_rec_schedule(x, rec, at_us);
	if (rv && made)
		simexec_delete(x, c);
	return rv;
}

static const char *const simexec_protos[] = {"tcp", "udp", "sctp"};

/* Whether c's container binds port p now (it runs, or starts). */
static bool simexec_binds(const struct simexec_container *c, const struct env_port *p)
{
	if (c->state != ENV_CTL_RUNNING && !c->ev_start)
		return false;
	for (size_t i = 0; i < c->ports.count; i++)
		if (c->ports.v[i].published == p->published &&
		    c->ports.v[i].proto == p->proto)
			return true;
	return false;
}

/* Whether a host port of c is bound on its node already, by another
 * container or something else: then Docker's words in msg. */
static bool simexec_port_taken(const struct simexec *x, const struct simexec_container *c,
			       char *msg, size_t size)
{
	const struct simexec_node *n = &x->nodes[c->node];

	for (size_t i = 0; i < c->ports.count; i++) {
		const struct env_port *p = &c->ports.v[i];
		bool taken = false;
		for (size_t j = 0; j < n->binds.count && !taken; j++)
			taken = n->binds.v[j].published == p->published &&
				n->binds.v[j].proto == p->proto;
		struct simexec_container probe;
		probe.node = c->node;
		probe.task_id[0] = '\0';
		for (struct tree_node *t = tree_ceil(&x->containers, &probe.by_node);
		     t && !taken; t = tree_next(&x->containers, t)) {
			const struct simexec_container *d = simexec_c_of_node(t);
			if (d->node != c->node)
				break;
			taken = d != c && simexec_binds(d, p);
		}
		if (taken) {
			assert((unsigned)p->proto < 3);
			snprintf(
				msg, size,
				"driver failed programming external connectivity on "
				"endpoint cswarm-%.40s: Bind for 0.0.0.0:%u failed: port is "
				"already allocated",
				c->task_id, (unsigned)p->published);
			return true;
		}
	}
	return false;
}

static int simexec_do_start(struct simexec *x, struct simexec_ctl *ctl,
			    struct simexec_container *c, struct simexec_rec *rec)
{
	us_t now_us = world_now_us(x->w);
	const struct simexec_image_cfg *img;
	struct simexec_rec *ev;
	char msg[SIMEXEC_MSG_BYTES];
	us_t at_us;

	if (!c) {
		simexec_rec_no_container(rec, ctl->task_id);
		return simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
	}
	if (c->ev_start)
		return simexec_rec_schedule(x, rec, c->start_due_us);
	if (c->state == ENV_CTL_RUNNING)
		return simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
	if (simexec_port_taken(x, c, msg, sizeof msg)) {
		simexec_rec_result(rec, CS_EEXEC, c->state, c->exit_code, msg);
		return simexec_rec_schedule(x, rec, now_us + SIMEXEC_PREPARE_US);
	}
	img = simexec_image_find(x, c->image);
	if (img && img->start_fail) {
		/* Docker's words (cut to fit); the container stays as it was */
		snprintf(
			msg, sizeof msg,
			"failed to create task for container: OCI runtime create failed: "
			"unable to start container process: exec of %.80s: permission "
			"denied: unknown",
			c->image);
		simexec_rec_result(rec, CS_EEXEC, c->state, c->exit_code, msg);
		return simexec_rec_schedule(x, rec, now_us + SIMEXEC_PREPARE_US);
	}
	at_us = now_us + rng_range(world_rng(x->w, RNG_WORKLOAD),
				   img ? img->start_min_us : SIMEXEC_START_MIN_US,
				   img ? img->start_max_us : SIMEXEC_START_MAX_US);
	ev = simexec_schedule_pair(x, c, SIMEXEC_REC_STARTED, rec, at_us);
	if (!ev)
		return CS_ENOMEM;
	ev->c = c;
	c->ev_start = ev;
	c->start_due_us = at_us;
	return 0;
}

static int simexec_do_shutdown(struct simexec *x, struct simexec_ctl *ctl,
			       struct simexec_container *c, struct simexec_rec *rec)
{
	us_t now_us = world_now_us(x->w);
	us_t from_us, delay_us;
	struct simexec_rec *ev;
	const struct simexec_image_cfg *img;
	bool ignore;

	if (c && c->ev_stop)
		return simexec_rec_schedule(x, rec, c->stop_due_us);
	if (!c || (c->state != ENV_CTL_RUNNING && !c->ev_start))
		return simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
	/* running, or starting: stopped once started; a container that
	 * ignores SIGTERM is killed at the stop timeout */
	img = simexec_image_find(x, c->image);
	ignore = img && img->stop_ignore;
	from_us = c->ev_start ? c->start_due_us : now_us;
	delay_us = ignore || ctl->stop_timeout_us < SIMEXEC_STOP_US ? ctl->stop_timeout_us
								    : SIMEXEC_STOP_US;
	ev = simexec_schedule_pair(x, c, SIMEXEC_REC_STOPPED, rec, from_us + delay_us);
	if (!ev)
		return CS_ENOMEM;
	ev->c = c;
	ev->exit_code = ignore || ctl->stop_timeout_us < SIMEXEC_STOP_US
				? SIMEXEC_EXIT_KILLED
				: SIMEXEC_EXIT_STOPPED;
	c->ev_stop = ev;
	c->stop_due_us = from_us + delay_us;
	return 0;
}

int simexec_ctl_do(struct env_ctl *handle, enum env_ctl_op op, struct env_ctl_req *req,
		   env_ctl_cb cb)
{
	struct simexec_ctl *ctl = simexec_ctl_of(handle);
	struct simexec *x = ctl->x;
	struct simexec_container *c;
	struct simexec_rec *rec;
	us_t now_us = world_now_us(x->w);
	int rv;

	assert(!ctl->closing);
	assert(req != NULL);
	assert(cb != NULL);
	if (op == ENV_CTL_WAIT)
		return simexec_do_wait(x, ctl, req, cb);
	if (ctl->op)
		return CS_EAGAIN;
	rec = simexec_rec_new(x, SIMEXEC_REC_OP, ctl->node);
	if (!rec)
		return CS_ENOMEM;
	rec->ctl = ctl;
	rec->req = req;
	rec->op_kind = op;
	rec->cb = cb;
	c = simexec_find(x, ctl->node, ctl->task_id);
	if (simexec_op_bit(op) && simexec_fails(x, ctl->node, simexec_op_bit(op))) {
		/* the daemon does not answer: nothing changes */
		simexec_rec_daemon_down(rec, c ? c->state : ENV_CTL_ABSENT);
		rv = simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
		if (rv == 0)
			ctl->op = rec;
		return rv;
	}
	switch (op) {
	case ENV_CTL_PREPARE: rv = simexec_do_prepare(x, ctl, c, rec); break;
	case ENV_CTL_START: rv = simexec_do_start(x, ctl, c, rec); break;
	case ENV_CTL_SHUTDOWN: rv = simexec_do_shutdown(x, ctl, c, rec); break;
	case ENV_CTL_TERMINATE:
		rv = simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
		if (rv == 0 && c && (c->state == ENV_CTL_RUNNING || c->ev_start))
			simexec_exited(x, c, SIMEXEC_EXIT_KILLED);
		break;
	case ENV_CTL_REMOVE:
		rv = simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
		if (rv == 0 && c) {
			if (c->state == ENV_CTL_RUNNING || c->ev_start)
				simexec_exited(x, c, SIMEXEC_EXIT_KILLED);
			simexec_notify_waiters(x, c, true);
			simexec_delete(x, c);
		}
		break;
	case ENV_CTL_INSPECT:
		rv = simexec_rec_schedule(x, rec, now_us + SIMEXEC_API_US);
		break;
	default: simexec_rec_free(x, rec); return CS_EINVAL;
	}
	if (rv == 0)
		ctl->op = rec;
	return rv;
}

void simexec_ctl_close(struct env_ctl *handle, env_ctl_close_cb cb, void *data)
{
	struct simexec_ctl *ctl = simexec_ctl_of(handle);
	struct simexec *x = ctl->x;
	struct simexec_rec *rec;

	assert(!ctl->closing);
	ctl->closing = true;
	if (ctl->op) {
		ctl->op->ctl = NULL;
		ctl->op = NULL;
	}
	if (ctl->wait_rec)
		ctl->wait_rec->ctl = NULL;
	ctl->wait_rec = NULL;
	ctl->wait_req = NULL;
	rec = simexec_rec_new(x, SIMEXEC_REC_CLOSE, ctl->node);
	if (rec) {
		rec->ctl = ctl;
		rec->close_cb = cb;
		rec->close_data = data;
		if (simexec_rec_schedule(x, rec, world_now_us(x->w)) == 0)
			return;
	}
	simexec_ctl_unlink(x, ctl); /* out of memory: no callback */
	simexec_ctl_free(ctl);
}

int simexec_ctl_list(struct simexec *x, uint32_t node, struct env_ctl_list_req *req,
		     env_ctl_list_cb cb)
{
	struct simexec_rec *rec;

	assert(world_node_is_up(x->w, node));
	assert(cb != NULL);
	rec = simexec_rec_new(x, SIMEXEC_REC_LIST, node);
	if (!rec)
		return CS_ENOMEM;
	rec->list_req = req;
	rec->list_cb = cb;
	if (simexec_fails(x, node, SIMEXEC_OP_LIST)) {
		rec->fixed = true;
		rec->status = CS_EEXEC;
	}
	return simexec_rec_schedule(x, rec, world_now_us(x->w) + SIMEXEC_API_US);
}

/* ---------------------------------------------------------------- fault commands */

/* Fails ctl's WAIT in flight soon (its completion, if already scheduled, is
 * cancelled first): the daemon that would have answered is gone. */
static void simexec_fail_wait(struct simexec *x, struct simexec_ctl *ctl)
{
	struct simexec_rec *rec;
	const struct simexec_container *c;

	if (ctl->closing || !ctl->wait_req)
		return;
	rec = simexec_rec_new(x, SIMEXEC_REC_WAIT, ctl->node);
	if (!rec)
		return; /* out of memory: the WAIT completes as it would have */
	if (ctl->wait_rec)
		ctl->wait_rec->ctl = NULL;
	ctl->wait_rec = NULL;
	c = simexec_find(x, ctl->node, ctl->task_id);
	rec->ctl = ctl;
	rec->req = ctl->wait_req;
	rec->cb = ctl->wait_cb;
	simexec_rec_daemon_down(rec, c ? c->state : ENV_CTL_ABSENT);
	if (simexec_rec_schedule(x, rec, world_now_us(x->w)) == 0)
		ctl->wait_rec = rec;
}

/* Fails ctl's op in flight: its completion is cancelled and a failure
 * takes its place (what the op already did to the container stays done,
 * as when a daemon dies after acting and before answering). */
static void simexec_fail_op(struct simexec *x, struct simexec_ctl *ctl)
{
	struct simexec_rec *rec;
	const struct simexec_container *c;

	if (ctl->closing || !ctl->op)
		return;
	rec = simexec_rec_new(x, SIMEXEC_REC_OP, ctl->node);
	if (!rec)
		return;
	ctl->op->ctl = NULL;
	c = simexec_find(x, ctl->node, ctl->task_id);
	rec->ctl = ctl;
	rec->req = ctl->op->req;
	rec->cb = ctl->op->cb;
	ctl->op = NULL;
	simexec_rec_daemon_down(rec, c ? c->state : ENV_CTL_ABSENT);
	if (simexec_rec_schedule(x, rec, world_now_us(x->w) + SIMEXEC_API_US) == 0)
		ctl->op = rec;
}

int simexec_runtime_fail(struct simexec *x, uint32_t node, uint32_t ops, us_t until_us)
{
	struct simexec_node *n;

	if (ops == 0 || (ops & ~SIMEXEC_OP_ALL))
		return CS_EINVAL;
	if (simexec_node_grow(x, node))
		return CS_ENOMEM;
	n = &x->nodes[node];
	n->fail_ops = ops;
	n->fail_until_us = until_us;
	if (until_us > x->faults_until_us)
		x->faults_until_us = until_us;
	if (until_us > n->healthy_from_us)
		n->healthy_from_us = until_us;
	if (ops & SIMEXEC_OP_WAIT)
		for (struct simexec_ctl *ctl = n->head; ctl; ctl = ctl->next)
			simexec_fail_wait(x, ctl);
	return 0;
}

int simexec_runtime_restart(struct simexec *x, uint32_t node, bool lose, us_t down_us)
{
	us_t now_us = world_now_us(x->w);
	struct simexec_node *n;
	struct simexec_container probe;
	struct tree_node *t;

	if (simexec_node_grow(x, node))
		return CS_ENOMEM;
	n = &x->nodes[node];
	if (now_us + down_us > n->down_until_us)
		n->down_until_us = now_us + down_us;
	if (n->down_until_us > n->healthy_from_us)
		n->healthy_from_us = n->down_until_us;
	if (n->down_until_us > x->faults_until_us)
		x->faults_until_us = n->down_until_us;
	/* every call in flight fails, waits included */
	for (struct simexec_ctl *ctl = n->head; ctl; ctl = ctl->next) {
		simexec_fail_op(x, ctl);
		simexec_fail_wait(x, ctl);
	}
	for (struct simexec_rec *rec = x->recs; rec; rec = rec->next)
		if (rec->kind == SIMEXEC_REC_LIST && rec->node == node) {
			rec->fixed = true;
			rec->status = CS_EEXEC;
		}
	if (!lose)
		return 0;
	/* the daemon's shutdown stops every container (SIGTERM) */
	probe.node = node;
	probe.task_id[0] = '\0';
	for (t = tree_ceil(&x->containers, &probe.by_node);
	     t && simexec_c_of_node(t)->node == node; t = tree_next(&x->containers, t)) {
		struct simexec_container *c = simexec_c_of_node(t);
		if (c->state == ENV_CTL_RUNNING || c->ev_start)
			simexec_exited(x, c, SIMEXEC_EXIT_STOPPED);
	}
	return 0;
}

void simexec_runtime_ok(struct simexec *x, uint32_t node)
{
	us_t now_us = world_now_us(x->w);
	struct simexec_node *n;

	if (node >= x->node_count)
		return;
	n = &x->nodes[node];
	n->fail_ops = 0;
	n->fail_until_us = 0;
	if (n->down_until_us > now_us)
		n->down_until_us = now_us;
	if (n->healthy_from_us > now_us)
		n->healthy_from_us = now_us;
}

us_t simexec_faults_until(const struct simexec *x)
{
	return x->faults_until_us;
}

bool simexec_runtime_faulted(const struct simexec *x, uint32_t node)
{
	return simexec_fails(x, node, SIMEXEC_OP_ALL);
}

us_t simexec_runtime_healthy_from(const struct simexec *x, uint32_t node)
{
	return node < x->node_count ? x->nodes[node].healthy_from_us : 0;
}

/* ---------------------------------------------------------------- node death */

/* Removes every container of node without a trace (the machine is gone). */
static void simexec_vanish(struct simexec *x, uint32_t node)
{
	struct simexec_container probe;
	struct tree_node *n;

	probe.node = node;
	probe.task_id[0] = '\0';
	while ((n = tree_ceil(&x->containers, &probe.by_node)) &&
	       simexec_c_of_node(n)->node == node) {
		struct simexec_container *c = simexec_c_of_node(n);
		simexec_cancel_events(c);
		simexec_set_state(x, c, ENV_CTL_ABSENT, 0);
		simexec_delete(x, c);
	}
}

void simexec_node_died(struct simexec *x, uint32_t node, bool machine)
{
	struct simexec_rec *rec = x->recs;

	/* The process's records: the world drops their events unrun. */
	while (rec) {
		struct simexec_rec *next = rec->next;
		if (rec->on_node && rec->node == node)
			simexec_rec_free(x, rec);
		rec = next;
	}
	if (node < x->node_count) {
		struct simexec_ctl *ctl = x->nodes[node].head;
		while (ctl) {
			struct simexec_ctl *next = ctl->next;
			simexec_ctl_free(ctl);
			ctl = next;
		}
		x->nodes[node].head = x->nodes[node].tail = NULL;
	}
	if (machine) {
		simexec_vanish(x, node);
		simexec_net_vanish(x, node);
	}
}

/* Frees the containers of the by-node subtree at n, children first: no
 * unlinking from the three trees, which are dropped whole (the world's end
 * with 100,000 containers removed one by one cost a treap removal apiece,
 * three times). Recursion as deep as the treap (O(log count) expected). */
static void simexec_containers_free(struct tree_node *n)
{
	if (!n)
		return;
	simexec_containers_free(n->left);
	simexec_containers_free(n->right);
	simexec_container_free(simexec_c_of_node(n));
}

void simexec_free(struct simexec *x)
{
	struct tree_node *n;

	if (!x)
		return;
	while (x->recs)
		simexec_rec_free(x, x->recs);
	for (size_t i = 0; i < x->node_count; i++) {
		struct simexec_ctl *ctl = x->nodes[i].head;
		while (ctl) {
			struct simexec_ctl *next = ctl->next;
			simexec_ctl_free(ctl);
			ctl = next;
		}
		for (size_t j = 0; j < x->nodes[i].net_count; j++)
			simexec_netst_free(&x->nodes[i].nets[j]);
		free(x->nodes[i].nets);
	}
	free(x->nodes);
	/* every record is gone: no event points at a container any more */
	simexec_containers_free(x->containers.root);
	tree_init(&x->containers, simexec_by_node_cmp, simexec_by_node_prio);
	tree_init(&x->by_task, simexec_by_task_cmp, simexec_by_task_prio);
	tree_init(&x->by_slot, simexec_by_slot_cmp, simexec_by_slot_prio);
	x->aux_built = false;
	while ((n = tree_first(&x->images))) {
		tree_remove(&x->images, n);
		free(TREE_ENTRY(n, struct simexec_image_cfg, by_name));
	}
	while ((n = tree_first(&x->services))) {
		struct simexec_service *svc =
			TREE_ENTRY(n, struct simexec_service, by_name);
		tree_remove(&x->services, n);
		free(svc->slot_running);
		free(svc);
	}
	while ((n = tree_first(&x->texts))) {
		tree_remove(&x->texts, n);
		free(TREE_ENTRY(n, struct simexec_text, by_text));
	}
	free(x->tcounts);
	free(x->cidx);
	free(x);
}

/* ---------------------------------------------------------------- reads */

size_t simexec_running(const struct simexec *x, const char *service_name, int64_t node)
{
	struct simexec_container probe;
	struct tree_node *n;
	size_t count = 0;

	if (node < 0) {
		const struct simexec_service *svc;
		if (!service_name)
			return x->running_count;
		svc = simexec_service_find(x, service_name);
		return svc ? svc->running_count : 0;
	}
	if (node > UINT32_MAX)
		return 0;
	probe.node = (uint32_t)node;
	probe.task_id[0] = '\0';
	for (n = tree_ceil(&x->containers, &probe.by_node);
	     n && simexec_c_of_node(n)->node == (uint32_t)node;
	     n = tree_next(&x->containers, n)) {
		const struct simexec_container *c = simexec_c_of_node(n);
		if (c->state == ENV_CTL_RUNNING &&
		    (!service_name || strcmp(c->svc->name, service_name) == 0))
			count++;
	}
	return count;
}

int simexec_allow_two_per_slot(struct simexec *x, const char *service_name, bool allow)
{
	struct simexec_service *svc;
	const struct simexec_container *c;
	size_t before, after;

	if (service_name && strlen(service_name) >= SIMEXEC_ID_BYTES)
		return CS_ELIMIT;
	svc = simexec_service_get(x, service_name);
	if (!svc)
		return CS_ENOMEM;
	if (svc->allow_two == allow)
		return 0;
	before = simexec_slot_limit(svc);
	svc->allow_two = allow;
	x->changes++;
	after = simexec_slot_limit(svc);
	/* Recount the service's bad slots under the new limit. */
	c = simexec_slot_first(x, svc, 1);
	while (c && c->svc == svc) {
		uint64_t slot = c->slot;
		size_t running = simexec_slot_running(x, svc, slot);
		if ((running > before) != (running > after)) {
			if (running > after)
				x->bad_slots++;
			else
				x->bad_slots--;
		}
		if (slot == UINT64_MAX)
			break;
		c = simexec_slot_first(x, svc, slot + 1);
	}
	return 0;
}

/* Appends s to msg (of size bytes, holding *len), cut to fit. */
static void simexec_append(char *msg, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);
	assert(*len < size);
	if (n > size - *len - 1)
		n = size - *len - 1;
	memcpy(msg + *len, s, n);
	*len += n;
	msg[*len] = '\0';
}

bool simexec_check(const struct simexec *x, char *msg, size_t size)
{
	size_t len = 0;
	char head[160];

	if (size)
		msg[0] = '\0';
	if (x->bad_tasks == 0 && x->bad_slots == 0)
		return true;
	if (!size)
		return false;
	simexec_aux(x);
	if (x->bad_tasks > 0) {
		/* the first task id, in order, that runs twice */
		for (struct tree_node *n = tree_first(&x->by_task); n;
		     n = tree_next(&x->by_task, n)) {
			const struct simexec_container *c = simexec_c_of_task(n);
			size_t running = simexec_task_running(x, c->task_id);
			const char *sep = ": on ";
			if (running < 2)
				continue;
			snprintf(head, sizeof head,
				 "task %s runs in %zu containers at once", c->task_id,
				 running);
			simexec_append(msg, size, &len, head);
			for (;
			     n && strcmp(simexec_c_of_task(n)->task_id, c->task_id) == 0;
			     n = tree_next(&x->by_task, n)) {
				const struct simexec_container *d = simexec_c_of_task(n);
				if (d->state != ENV_CTL_RUNNING)
					continue;
				simexec_append(msg, size, &len, sep);
				simexec_append(msg, size, &len,
					       world_node_name(x->w, d->node));
				sep = ", ";
			}
			return false;
		}
		assert(!"bad_tasks counts a task that runs once");
	}
	for (struct tree_node *n = tree_first(&x->by_slot); n;
	     n = tree_next(&x->by_slot, n)) {
		const struct simexec_container *c = simexec_c_of_slot(n);
		size_t running;
		const char *sep = ": ";
		if (c->slot == 0)
			continue;
		running = simexec_slot_running(x, c->svc, c->slot);
		if (running <= simexec_slot_limit(c->svc))
			continue;
		snprintf(head, sizeof head,
			 "service %s slot %llu runs %zu containers at once (at most %zu)",
			 c->svc->name, (unsigned long long)c->slot, running,
			 simexec_slot_limit(c->svc));
		simexec_append(msg, size, &len, head);
		for (; n && simexec_c_of_slot(n)->svc == c->svc &&
		       simexec_c_of_slot(n)->slot == c->slot;
		     n = tree_next(&x->by_slot, n)) {
			const struct simexec_container *d = simexec_c_of_slot(n);
			if (d->state != ENV_CTL_RUNNING)
				continue;
			simexec_append(msg, size, &len, sep);
			simexec_append(msg, size, &len, "task ");
			simexec_append(msg, size, &len, d->task_id);
			simexec_append(msg, size, &len, " on ");
			simexec_append(msg, size, &len, world_node_name(x->w, d->node));
			sep = ", ";
		}
		return false;
	}
	assert(!"bad_slots counts a slot within its limit");
	return false;
}

bool simexec_slots_over(const struct simexec *x)
{
	return x->bad_slots > 0;
}

size_t simexec_indexed(const struct simexec *x)
{
	assert(x->by_task.count == x->by_slot.count);
	return x->by_task.count;
}

bool simexec_tasks_twice(const struct simexec *x)
{
	return x->bad_tasks > 0;
}

uint64_t simexec_changes(const struct simexec *x)
{
	return x->changes;
}

void simexec_foreach(const struct simexec *x, simexec_foreach_fn fn, void *ctx)
{
	for (struct tree_node *n = tree_first(&x->containers); n;
	     n = tree_next(&x->containers, n)) {
		const struct simexec_container *c = simexec_c_of_node(n);
		struct simexec_info info = {
			.node = c->node,
			.task_id = c->task_id,
			.service_id = c->service_id,
			.service_name = c->svc->name,
			.image = c->image,
			.slot = c->slot,
			.state = c->state,
			.exit_code = c->exit_code,
			.ports = c->ports.v,
			.port_count = c->ports.count,
			.files = c->files.v,
			.file_count = c->files.count,
		};
		fn(ctx, &info);
	}
}

size_t simexec_count(const struct simexec *x)
{
	return x->containers.count;
}

/* ---------------------------------------------------------------- host ports (issue 15) */

int simexec_runtime_bind(struct simexec *x, uint32_t node, uint32_t port,
			 enum env_port_proto proto)
{
	struct simexec_node *n;

	if (simexec_node_grow(x, node))
		return CS_ENOMEM;
	n = &x->nodes[node];
	if (n->binds.count == SIMEXEC_PORTS_MAX)
		return CS_ELIMIT;
	n->binds.v[n->binds.count].target = port;
	n->binds.v[n->binds.count].published = port;
	n->binds.v[n->binds.count].proto = proto;
	n->binds.count++;
	return 0;
}

void simexec_runtime_unbind(struct simexec *x, uint32_t node)
{
	if (node < x->node_count)
		x->nodes[node].binds.count = 0;
}

bool simexec_check_ports(const struct simexec *x, char *msg, size_t size)
{
	const struct simexec_container *prev_node_first = NULL;

	if (!x->port_containers)
		return true;

	for (struct tree_node *t = tree_first(&x->containers); t;
	     t = tree_next(&x->containers, t)) {
		const struct simexec_container *c = simexec_c_of_node(t);
		if (c->state != ENV_CTL_RUNNING || !c->ports.count)
			continue;
		if (!prev_node_first || prev_node_first->node != c->node)
			prev_node_first = c;
		/* the running containers of c's node before c */
		for (struct tree_node *u =
			     &((struct simexec_container *)prev_node_first)->by_node;
		     u && u != t; u = tree_next(&x->containers, u)) {
			const struct simexec_container *d = simexec_c_of_node(u);
			if (d->state != ENV_CTL_RUNNING)
				continue;
			for (size_t i = 0; i < c->ports.count; i++)
				for (size_t j = 0; j < d->ports.count; j++)
					if (c->ports.v[i].published ==
						    d->ports.v[j].published &&
					    c->ports.v[i].proto == d->ports.v[j].proto) {
						snprintf(
							msg, size,
							"host port %u/%s bound twice on node %u: "
							"tasks %s and %s",
							(unsigned)c->ports.v[i].published,
							simexec_protos[c->ports.v[i]
									       .proto],
							(unsigned)c->node, d->task_id,
							c->task_id);
						return false;
					}
		}
	}
	return true;
}

/* ---------------------------------------------------------------- data plane (issue 17)
 *
 * What each node has programmed of each network (net_set, net_remove: the
 * machine's kernel state, so it survives a process kill and goes with a
 * machine crash), and reachability over it: task X reaches address A on
 * network N iff X's node has N set, X is attached to N and runs, and A is
 * a running container's address on N on X's node, or X's node's state
 * lists A at node B (by B's address: its name here, or the ip= it
 * describes itself with) and B has N set with A on a running container;
 * on an encrypted network (issue 17), only when B holds the key X's node
 * sends with (key ids compared). */

/* Issue 17: whether what node `from` sends on network state fs is opened
 * by a node whose state of the same network is ts: always on a clear
 * network; on an encrypted one, when the sender has a key to send with
 * and the receiver holds it. */
static bool simexec_keys_open(const struct simexec_netst *fs,
			      const struct simexec_netst *ts)
{
	if (!fs->encrypted && !ts->encrypted)
		return true;
	if (!fs->primary_id)
		return false;
	for (size_t i = 0; i < ts->key_count; i++)
		if (ts->key_ids[i] == fs->primary_id)
			return true;
	return false;
}

static void simexec_netst_free(struct simexec_netst *n)
{
	for (size_t i = 0; i < n->svc_count; i++) {
		free(n->svcs[i].aliases);
		free(n->svcs[i].backends);
		free(n->svcs[i].ports);
	}
	free(n->svcs);
	free(n->eps);
}

static struct simexec_netst *simexec_netst_get(const struct simexec *x, uint32_t node,
					       uint64_t id)
{
	if (node >= x->node_count)
		return NULL;
	for (size_t i = 0; i < x->nodes[node].net_count; i++)
		if (x->nodes[node].nets[i].id == id)
			return &x->nodes[node].nets[i];
	return NULL;
}

static bool simexec_addr_copy(char *out, const char *in)
{
	size_t len = in ? strcspn(in, "/") : 0;
	if (len >= SIMEXEC_ADDR_BYTES)
		return false;
	memcpy(out, in ? in : "", len);
	out[len] = '\0';
	return true;
}

int simexec_net_set(struct simexec *x, uint32_t node, const struct env_net_state *st)
{
	struct simexec_netst n, *old;
	int rv = CS_ENOMEM;

	if (!st || !st->network_id || simexec_node_grow(x, node))
		return !st || !st->network_id ? CS_EINVAL : CS_ENOMEM;
	memset(&n, 0, sizeof n);
	n.id = st->network_id;
	n.ingress = st->ingress;
	n.encrypted = st->encrypted;
	if (st->encrypted && st->key_count) {
		if (st->key_count > ENV_NET_KEYS_MAX || st->key_primary >= st->key_count)
			return CS_EINVAL;
		for (size_t i = 0; i < st->key_count; i++)
			n.key_ids[i] = st->keys[i].id;
		n.key_count = st->key_count;
		n.primary_id = st->keys[st->key_primary].id;
	}
	n.eps = calloc(st->endpoint_count ? st->endpoint_count : 1, sizeof *n.eps);
	n.svcs = calloc(st->service_count ? st->service_count : 1, sizeof *n.svcs);
	if (!n.eps || !n.svcs)
		goto fail;
	if (st->ingress && !simexec_addr_copy(n.node_addr, st->node_addr)) {
		rv = CS_EINVAL;
		goto fail;
	}
	for (size_t i = 0; i < st->endpoint_count; i++) {
		const struct env_net_endpoint *e = &st->endpoints[i];
		struct simexec_nep *d = &n.eps[n.ep_count++];
		if (!simexec_addr_copy(d->addr, e->addr) ||
		    !simexec_copy(d->node_ip, sizeof d->node_ip,
				  e->node_ip ? e->node_ip : "")) {
			rv = CS_EINVAL;
			goto fail;
		}
		d->local = e->local;
		d->node = simexec_node_of_ip(x, d->node_ip);
	}
	for (size_t i = 1; i < n.ep_count; i++) {
		if (simexec_nep_cmp(&n.eps[i - 1], &n.eps[i]) > 0) {
			/* not in the contract's order: sorted for lookups */
			qsort(n.eps, n.ep_count, sizeof *n.eps, simexec_nep_cmp);
			break;
		}
	}
	for (size_t i = 0; i < st->service_count; i++) {
		const struct env_net_service *s = &st->services[i];
		struct simexec_nsvc *d = &n.svcs[n.svc_count++];
		size_t na = 0, nb = 0;
		while (s->aliases && s->aliases[na])
			na++;
		while (s->backends && s->backends[nb])
			nb++;
		d->aliases = calloc(na ? na : 1, sizeof *d->aliases);
		d->backends = calloc(nb ? nb : 1, sizeof *d->backends);
		d->ports = calloc(s->port_count ? s->port_count : 1, sizeof *d->ports);
		if (!d->aliases || !d->backends || !d->ports)
			goto fail;
		if (s->port_count)
			memcpy(d->ports, s->ports, s->port_count * sizeof *d->ports);
		d->port_count = s->port_count;
		if (!simexec_copy(d->name, sizeof d->name, s->name ? s->name : "") ||
		    !simexec_addr_copy(d->vip, s->vip)) {
			rv = CS_EINVAL;
			goto fail;
		}
		for (size_t j = 0; j < na; j++)
			if (!simexec_copy(d->aliases[d->alias_count++],
					  sizeof d->aliases[0], s->aliases[j])) {
				rv = CS_EINVAL;
				goto fail;
			}
		for (size_t j = 0; j < nb; j++)
			if (!simexec_addr_copy(d->backends[d->backend_count++],
					       s->backends[j])) {
				rv = CS_EINVAL;
				goto fail;
			}
	}
	old = simexec_netst_get(x, node, n.id);
	if (old) {
		simexec_netst_free(old);
		*old = n;
	} else {
		struct simexec_node *sn = &x->nodes[node];
		struct simexec_netst *v =
			realloc(sn->nets, (sn->net_count + 1) * sizeof *v);
		if (!v)
			goto fail;
		sn->nets = v;
		sn->nets[sn->net_count++] = n;
	}
	x->changes++;
	return 0;
fail:
	simexec_netst_free(&n);
	return rv;
}

int simexec_net_remove(struct simexec *x, uint32_t node, uint64_t network_id)
{
	struct simexec_netst *n = simexec_netst_get(x, node, network_id);
	struct simexec_node *sn;
	if (!n)
		return 0;
	sn = &x->nodes[node];
	simexec_netst_free(n);
	*n = sn->nets[--sn->net_count];
	x->changes++;
	return 0;
}

/* The machine went: its kernel state with it. */
static void simexec_net_vanish(struct simexec *x, uint32_t node)
{
	if (node >= x->node_count)
		return;
	for (size_t i = 0; i < x->nodes[node].net_count; i++)
		simexec_netst_free(&x->nodes[node].nets[i]);
	free(x->nodes[node].nets);
	x->nodes[node].nets = NULL;
	x->nodes[node].net_count = 0;
	x->changes++;
}

size_t simexec_net_count(const struct simexec *x, uint32_t node)
{
	return node < x->node_count ? x->nodes[node].net_count : 0;
}

/* The running container on node attached to network id at addr, or NULL. */
static const struct simexec_container *simexec_at_addr(const struct simexec *x,
						       uint32_t node, uint64_t id,
						       const char *addr)
{
	struct simexec_container probe;
	probe.node = node;
	probe.task_id[0] = '\0';
	for (struct tree_node *t = tree_ceil(&x->containers, &probe.by_node); t;
	     t = tree_next(&x->containers, t)) {
		const struct simexec_container *c = simexec_c_of_node(t);
		if (c->node != node)
			break;
		if (c->state != ENV_CTL_RUNNING)
			continue;
		for (size_t i = 0; i < c->att_count; i++)
			if (c->atts[i].network_id == id &&
			    strcmp(c->atts[i].addr, addr) == 0)
				return c;
	}
	return NULL;
}

/* The world node whose address is ip: its name (the simulator's
 * addresses), else the one whose description says ip. */
static int64_t simexec_node_of_ip(const struct simexec *x, const char *ip)
{
	int64_t n = world_node_find(x->w, ip);
	if (n >= 0 || !x->node_ip)
		return n;
	for (uint32_t i = 0; i < x->node_count; i++) {
		const char *own = x->node_ip(x->node_ip_ctx, i);
		if (own && strcmp(own, ip) == 0)
			return i;
	}
	return -1;
}

static const struct simexec_att *simexec_att_of(const struct simexec_container *c,
						uint64_t id)
{
	for (size_t i = 0; i < c->att_count; i++)
		if (c->atts[i].network_id == id)
			return &c->atts[i];
	return NULL;
}

/* Whether c (running) reaches addr on network id (see above). */
static bool simexec_reaches(const struct simexec *x, const struct simexec_container *c,
			    uint64_t id, const char *addr)
{
	const struct simexec_netst *n = simexec_netst_get(x, c->node, id);
	if (c->state != ENV_CTL_RUNNING || !n || !simexec_att_of(c, id))
		return false;
	if (simexec_at_addr(x, c->node, id, addr))
		return true;
	{
		struct simexec_nep key = {0};
		const struct simexec_nep *e;
		const struct simexec_netst *to;
		snprintf(key.addr, sizeof key.addr, "%s", addr);
		e = bsearch(&key, n->eps, n->ep_count, sizeof *n->eps, simexec_nep_cmp);
		to = e && e->node >= 0 ? simexec_netst_get(x, (uint32_t)e->node, id)
				       : NULL;
		return to && simexec_at_addr(x, (uint32_t)e->node, id, addr) &&
		       simexec_keys_open(n, to);
	}
}

/* The running container of service svc, slot (SVC.SLOT), or NULL. */
static const struct simexec_container *simexec_slot_container(const struct simexec *x,
							      const char *svc,
							      uint64_t slot)
{
	for (struct tree_node *t = tree_first(&x->containers); t;
	     t = tree_next(&x->containers, t)) {
		const struct simexec_container *c = simexec_c_of_node(t);
		if (c->state == ENV_CTL_RUNNING && c->slot == slot &&
		    strcmp(c->svc->name, svc) == 0)
			return c;
	}
	return NULL;
}

int simexec_reach(const struct simexec *x, const char *target, const char *from,
		  char *got, size_t size)
{
	char svc[SIMEXEC_ID_BYTES];
	const char *dot = strrchr(from, '.');
	const struct simexec_container *c;
	bool tasks = strncmp(target, "tasks.", 6) == 0;
	const char *name = tasks ? target + 6 : target;
	char *end;
	uint64_t slot;

	if (!dot || (size_t)(dot - from) >= sizeof svc) {
		snprintf(got, size, "%s: not a task (SVC.SLOT)", from);
		return 0;
	}
	memcpy(svc, from, (size_t)(dot - from));
	svc[dot - from] = '\0';
	slot = strtoull(dot + 1, &end, 10);
	c = *end ? NULL : simexec_slot_container(x, svc, slot);
	if (!c) {
		snprintf(got, size, "%s does not run", from);
		return 0;
	}
	for (size_t a = 0; a < c->att_count; a++) {
		uint64_t id = c->atts[a].network_id;
		const struct simexec_netst *n = simexec_netst_get(x, c->node, id);
		if (!n)
			continue;
		if (simexec_reaches(x, c, id, target))
			return 1; /* an address */
		for (size_t i = 0; i < n->svc_count; i++) {
			const struct simexec_nsvc *s = &n->svcs[i];
			bool named = strcmp(s->name, name) == 0;
			for (size_t j = 0; !named && !tasks && j < s->alias_count; j++)
				named = strcmp(s->aliases[j], name) == 0;
			if (!named)
				continue;
			if (!s->backend_count) {
				snprintf(got, size, "%s resolves to no backend on %s",
					 target, world_node_name(x->w, c->node));
				return 0;
			}
			for (size_t j = 0; j < s->backend_count; j++)
				if (!simexec_reaches(x, c, id, s->backends[j])) {
					snprintf(got, size,
						 "%s: backend %s unreachable from %s",
						 target, s->backends[j], from);
					return 0;
				}
			return 1;
		}
	}
	snprintf(got, size, "%s does not resolve or reach from %s", target, from);
	return 0;
}

/* One running attached container, as simexec_check_reach collects them. */
struct simexec_reach_rec {
	uint64_t network_id;
	uint32_t node;
	const char *addr;
	const struct simexec_container *c;
};

static int simexec_reach_rec_cmp(const void *a, const void *b)
{
	const struct simexec_reach_rec *x = a, *y = b;
	if (x->network_id != y->network_id)
		return x->network_id < y->network_id ? -1 : 1;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return strcmp(x->c->task_id, y->c->task_id);
}

/* An IPv4 address as a number (0: not one), for the order the env
 * contract gives endpoints in (ascending address). */
static uint32_t simexec_ip4(const char *s)
{
	uint32_t v = 0, part = 0;
	int dots = 0, digits = 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (!digits || ++dots > 3)
				return 0;
			v = v << 8 | part;
			part = 0;
			digits = 0;
		} else if (*s >= '0' && *s <= '9' && digits < 3) {
			part = part * 10 + (uint32_t)(*s - '0');
			digits++;
		} else {
			return 0;
		}
	}
	return dots == 3 && digits && part < 256 ? v << 8 | part : 0;
}

static int simexec_nep_cmp(const void *a, const void *b)
{
	const char *x = ((const struct simexec_nep *)a)->addr,
		   *y = ((const struct simexec_nep *)b)->addr;
	uint32_t ix = simexec_ip4(x), iy = simexec_ip4(y);
	if (ix != iy)
		return ix < iy ? -1 : 1;
	return strcmp(x, y);
}

/* The same verdict as simexec_reaches for every pair, in
 * O(pairs of (source node, target) log endpoints): the node's programmed
 * endpoints are kept sorted by address (simexec_net_set) and resolved to
 * nodes once. */
bool simexec_check_reach(const struct simexec *x,
			 bool (*skip)(void *ctx, uint32_t node, const char *task_id),
			 void *ctx, char *msg, size_t size)
{
	struct simexec_reach_rec *v = NULL;
	size_t n = 0, cap = 0;
	bool ok = true;

	for (struct tree_node *t = tree_first(&x->containers); t;
	     t = tree_next(&x->containers, t)) {
		const struct simexec_container *c = simexec_c_of_node(t);
		if (c->state != ENV_CTL_RUNNING || !c->att_count ||
		    (skip && skip(ctx, c->node, c->task_id)))
			continue;
		for (size_t i = 0; i < c->att_count; i++) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct simexec_reach_rec *g =
					realloc(v, ncap * sizeof *g);
				if (!g) {
					free(v);
					snprintf(msg, size,
						 "out of memory checking reachability");
					return false;
				}
				v = g;
				cap = ncap;
			}
			v[n].network_id = c->atts[i].network_id;
			v[n].node = c->node;
			v[n].addr = c->atts[i].addr;
			v[n].c = c;
			n++;
		}
	}
	if (n)
		qsort(v, n, sizeof *v, simexec_reach_rec_cmp);
	for (size_t g = 0; g < n && ok;) {
		size_t end = g;
		while (end < n && v[end].network_id == v[g].network_id)
			end++;
		/* each source node of the network against every target */
		for (size_t s = g; s < end && ok;) {
			uint32_t node = v[s].node;
			const struct simexec_netst *st =
				simexec_netst_get(x, node, v[s].network_id);
			size_t s_end = s;
			while (s_end < end && v[s_end].node == node)
				s_end++;
			if (end - g < 2) /* alone on it: nothing to reach */
				break;
			for (size_t d = g; d < end && ok; d++) {
				const struct simexec_nep *e = NULL;
				const struct simexec_netst *to = NULL;
				struct simexec_nep key;
				if (&v[d] == &v[s] && s_end - s == 1)
					continue;
				if (st && v[d].node == node)
					continue; /* local, on the node's bridge */
				if (st) {
					snprintf(key.addr, sizeof key.addr, "%s",
						 v[d].addr);
					e = bsearch(&key, st->eps, st->ep_count,
						    sizeof *st->eps, simexec_nep_cmp);
				}
				if (st && e && e->node == (int64_t)v[d].node &&
				    (to = simexec_netst_get(x, v[d].node,
							    v[d].network_id)) &&
				    simexec_keys_open(st, to))
					continue;
				snprintf(
					msg, size,
					"task %s on %s cannot reach %s (task %s on %s) on "
					"network %016" PRIx64 " (%s)",
					v[s].c->task_id, world_node_name(x->w, node),
					v[d].addr, v[d].c->task_id,
					world_node_name(x->w, v[d].node), v[d].network_id,
					!st  ? "the network is not set on its node"
					: !e ? "no entry for the address"
					: e->node != (int64_t)v[d].node
						? "the entry names another node"
					: !to ? "the network is not set on the target's node"
					: !st->primary_id
						? "encrypted: the sender has no key to send with"
						: "encrypted: the target does not hold the "
						  "sender's key");
				ok = false;
			}
			s = s_end;
		}
		g = end;
	}
	free(v);
	return ok;
}

/* ---------------------------------------------------------------- the routing mesh (issue 17)
 *
 * A published port of the ingress network, as net/lb.c realises it on a
 * real node: a connection to node N's port P meets N's declared ingress
 * state; the service publishing P there spreads it over its backends (all
 * of them when N holds its own ingress address, else N's local ones only:
 * without an address to answer to, a remote backend's reply would not come
 * back through N); a rule with no backend refuses. A backend answers when
 * it is a running container of that service on the ingress network: on N
 * itself (over N's bridge), or on the node B that N's state lists it at,
 * when B has the ingress network set and lists N's own ingress address at
 * N (the reply, SNATed to that address, goes back through N). */

static const char *simexec_proto_name(enum env_port_proto proto)
{
	return proto == ENV_PORT_UDP ? "udp" : proto == ENV_PORT_SCTP ? "sctp" : "tcp";
}

/* node's ingress network state (the lowest id when, wrongly, several). */
static const struct simexec_netst *simexec_ingress_of(const struct simexec *x,
						      uint32_t node)
{
	const struct simexec_netst *best = NULL;
	if (node >= x->node_count)
		return NULL;
	for (size_t i = 0; i < x->nodes[node].net_count; i++) {
		const struct simexec_netst *n = &x->nodes[node].nets[i];
		if (n->ingress && (!best || n->id < best->id))
			best = n;
	}
	return best;
}

static const struct simexec_nep *simexec_nep_find(const struct simexec_netst *n,
						  const char *addr)
{
	struct simexec_nep key;
	memset(&key, 0, sizeof key);
	snprintf(key.addr, sizeof key.addr, "%s", addr);
	return n->ep_count ? bsearch(&key, n->eps, n->ep_count, sizeof *n->eps,
				     simexec_nep_cmp)
			   : NULL;
}

/* Whether backend addr of the rule of service svc on node's ingress state
 * n answers; the running container that does in *out. Otherwise false and
 * why in got. */
static bool simexec_mesh_backend(const struct simexec *x, uint32_t node,
				 const struct simexec_netst *n, const char *svc,
				 const char *addr, const struct simexec_container **out,
				 char *got, size_t size)
{
	const struct simexec_container *c = simexec_at_addr(x, node, n->id, addr);
	const struct simexec_nep *e, *back;
	const struct simexec_netst *bn;
	const char *name = world_node_name(x->w, node);

	if (!c) {
		e = simexec_nep_find(n, addr);
		if (!e || e->node < 0 || (uint32_t)e->node == node) {
			snprintf(got, size, "%s: backend %s %s", name, addr,
				 !e	       ? "has no entry"
				 : e->node < 0 ? "is listed at no known node"
					       : "does not run here");
			return false;
		}
		if (!n->node_addr[0]) {
			snprintf(got, size,
				 "%s: backend %s is on %s but %s has no ingress address",
				 name, addr, world_node_name(x->w, (uint32_t)e->node),
				 name);
			return false;
		}
		bn = simexec_netst_get(x, (uint32_t)e->node, n->id);
		c = bn ? simexec_at_addr(x, (uint32_t)e->node, n->id, addr) : NULL;
		if (!c) {
			snprintf(got, size, "%s: backend %s does not run on %s%s", name,
				 addr, world_node_name(x->w, (uint32_t)e->node),
				 bn ? "" : " (no ingress network there)");
			return false;
		}
		back = simexec_nep_find(bn, n->node_addr);
		if (!back || back->node != (int64_t)node) {
			snprintf(
				got, size,
				"%s: backend %s on %s cannot answer back to %s's address %s "
				"(%s)",
				name, addr, world_node_name(x->w, c->node), name,
				n->node_addr,
				!back ? "no entry for it"
				      : "its entry names another node");
			return false;
		}
	}
	if (strcmp(c->svc->name, svc) != 0) {
		snprintf(got, size, "%s: backend %s of %s is a task of %s", name, addr,
			 svc, c->svc->name);
		return false;
	}
	*out = c;
	return true;
}

enum simexec_mesh simexec_mesh_reach(const struct simexec *x, uint32_t node,
				     uint32_t port, enum env_port_proto proto,
				     struct simexec_mesh_out *out, char *got, size_t size)
{
	const struct simexec_netst *n = simexec_ingress_of(x, node);
	const char *name = world_node_name(x->w, node);

	memset(out, 0, sizeof *out);
	if (got && size)
		got[0] = '\0';
	if (!n) {
		snprintf(got, size, "%s: port %u/%s refused (no ingress network)", name,
			 port, simexec_proto_name(proto));
		return SIMEXEC_MESH_REFUSED;
	}
	out->network_id = n->id;
	for (size_t i = 0; i < n->svc_count; i++) {
		const struct simexec_nsvc *s = &n->svcs[i];
		bool has = false;
		for (size_t j = 0; j < s->port_count && !has; j++)
			has = s->ports[j].published == port && s->ports[j].proto == proto;
		if (!has)
			continue;
		out->service = s->name;
		for (size_t j = 0; j < s->backend_count; j++) {
			const struct simexec_container *c = NULL;
			if (!n->node_addr[0]) {
				/* local-only: the rule leaves remote ones out */
				const struct simexec_nep *e =
					simexec_nep_find(n, s->backends[j]);
				if (!e || !e->local)
					continue;
			}
			out->backend_count++;
			if (!simexec_mesh_backend(x, node, n, s->name, s->backends[j], &c,
						  got, size))
				return SIMEXEC_MESH_BROKEN;
		}
		if (!out->backend_count) {
			snprintf(got, size, "%s: port %u/%s of %s refused (no backend%s)",
				 name, port, simexec_proto_name(proto), s->name,
				 n->node_addr[0] ? "" : " here, and no ingress address");
			return SIMEXEC_MESH_REFUSED;
		}
		return SIMEXEC_MESH_REACHES;
	}
	snprintf(got, size, "%s: port %u/%s refused (not published there)", name, port,
		 simexec_proto_name(proto));
	return SIMEXEC_MESH_REFUSED;
}

bool simexec_check_mesh(const struct simexec *x, uint32_t node, uint32_t port,
			enum env_port_proto proto, const char *service,
			bool (*skip)(void *ctx, uint32_t node, const char *task_id),
			void *ctx, char *msg, size_t size)
{
	struct simexec_mesh_out out;
	enum simexec_mesh r = simexec_mesh_reach(x, node, port, proto, &out, msg, size);
	const struct simexec_netst *n;
	struct simexec_service probe_svc;
	struct simexec_container probe;
	const char *name = world_node_name(x->w, node);

	if (r == SIMEXEC_MESH_BROKEN)
		return false;
	if (out.service && strcmp(out.service, service) != 0) {
		snprintf(msg, size, "%s: port %u/%s answers for %s, published by %s",
			 name, port, simexec_proto_name(proto), out.service, service);
		return false;
	}
	n = simexec_ingress_of(x, node);
	if (strlen(service) >= sizeof probe_svc.name)
		return true; /* no container has such a name */
	memset(&probe_svc, 0, sizeof probe_svc);
	memcpy(probe_svc.name, service, strlen(service) + 1);
	probe.svc = &probe_svc;
	probe.slot = 0;
	probe.node = 0;
	probe.task_id[0] = '\0';
	/* every running task of the service on the ingress network is
	 * among the backends (a task left out gets no connection); the
	 * service's containers only, by (service name, slot) */
	simexec_aux(x);
	for (struct tree_node *t = tree_ceil(&x->by_slot, &probe.by_slot); t;
	     t = tree_next(&x->by_slot, t)) {
		const struct simexec_container *c = simexec_c_of_slot(t);
		const struct simexec_att *a;
		bool listed = false;
		if (strcmp(c->svc->name, service) != 0)
			break;
		if (c->state != ENV_CTL_RUNNING ||
		    (skip && skip(ctx, c->node, c->task_id)))
			continue;
		for (size_t i = 0; i < c->att_count && !n; i++) {
			/* no ingress state here, but the task runs on one */
			const struct simexec_netst *o = simexec_ingress_of(x, c->node);
			if (o && c->atts[i].network_id == o->id) {
				snprintf(
					msg, size,
					"%s: port %u/%s of %s refused (no ingress network) "
					"while task %s runs on %s",
					name, port, simexec_proto_name(proto), service,
					c->task_id, world_node_name(x->w, c->node));
				return false;
			}
		}
		a = n ? simexec_att_of(c, n->id) : NULL;
		if (!a)
			continue;
		for (size_t i = 0; out.service && i < n->svc_count && !listed; i++) {
			const struct simexec_nsvc *s = &n->svcs[i];
			if (strcmp(s->name, service) != 0)
				continue;
			for (size_t j = 0; j < s->backend_count && !listed; j++)
				listed = strcmp(s->backends[j], a->addr) == 0 &&
					 (n->node_addr[0] || c->node == node);
		}
		if (!listed) {
			snprintf(
				msg, size,
				"%s: port %u/%s of %s does not reach task %s (%s on %s)%s",
				name, port, simexec_proto_name(proto), service,
				c->task_id, a->addr, world_node_name(x->w, c->node),
				r == SIMEXEC_MESH_REFUSED ? ": refused" : "");
			return false;
		}
	}
	return true;
}

void simexec_mesh_ports(const struct simexec *x, uint32_t node,
			void (*fn)(void *ctx, const char *service, uint32_t port,
				   enum env_port_proto proto),
			void *ctx)
{
	const struct simexec_netst *n = simexec_ingress_of(x, node);
	for (size_t i = 0; n && i < n->svc_count; i++)
		for (size_t j = 0; j < n->svcs[i].port_count; j++)
			fn(ctx, n->svcs[i].name, n->svcs[i].ports[j].published,
			   n->svcs[i].ports[j].proto);
}

void simexec_set_node_ip(struct simexec *x, const char *(*fn)(void *ctx, uint32_t node),
			 void *ctx)
{
	x->node_ip = fn;
	x->node_ip_ctx = ctx;
}
