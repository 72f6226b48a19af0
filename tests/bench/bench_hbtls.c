/* bench_hbtls: what one real manager costs per heartbeat over mutual TLS,
 * and how fast it takes joins.
 *
 * One process, two libuv loops on two threads (so that the manager's CPU
 * time is measured alone, with getrusage(RUSAGE_THREAD)):
 *  - the manager thread: a real manager node (core/node.c's node_program, a
 *    manager with its own agent, on a uvenv bound to 127.0.0.1, state in a
 *    temp dir under /tmp, no Docker: the executor answers CS_ENOTSUP) that
 *    starts a new cluster (it makes the root CA, the join tokens and its own
 *    certificate), with the dispatcher's heartbeat period P;
 *  - the agents thread: A agent-only nodes (node_program with a worker's
 *    agent cfg, each its own uvenv on 127.0.0.1:0 with its own state dir),
 *    started in waves once the manager serves, with the cluster's worker
 *    token read from the manager's store (SWMTKN-1-...). Each joins in full:
 *    pins the token's root, makes its key and CSR, asks the CA over TLS (the
 *    join exchange), the CA signs and writes the node record through Raft,
 *    the agent installs the certificate; then it opens its session over
 *    mutual TLS and heartbeats every P.
 *
 * join-real: agents start in waves of J (default 50, under the 64 TLS
 * handshakes a manager takes at once), the next wave once the last has its
 * certificates; from the first agent's node start to the last certificate
 * installed (each agent's certificate seen by polling its env every 5 ms):
 * the agents' node start (sqlite state, key and CSR), TCP connects and TLS
 * handshakes both ways, the CA's checks and Ed25519 signature, the Raft
 * write of each node record (one voter: the leader's sqlite log and fsync),
 * the answer and the install (files written and fsync'd). Not timed: the
 * agents' uvenv_open (listener, state dir). Both threads work in it.
 *
 * dispatcher-real: after all A sessions are up and P*2 have passed, a
 * window of W seconds. Counted on the manager's side: every frame a worker
 * sends starts with the tag of its one Wire field; a frame from another
 * node than the manager itself whose tag is Wire.heartbeat is one heartbeat
 * the dispatcher received (a tap in front of the node's receive callback,
 * as bench_dispatcher does). Also counted on the agents' side: the heartbeat
 * answers they received in the same window (a check that each was
 * answered). The manager thread's CPU time in the window (user+sys, its own
 * thread only): TLS decryption and encryption both ways, frame parsing,
 * protobuf, the dispatcher, libuv and syscalls; the agents' side (their
 * TLS, their timers) is on the other thread and reported apart.
 *
 * Usage: bench_hbtls [A [P_MS [W_S [J]]]]  (defaults 500 agents, 1000 ms,
 * 10 s, waves of 50; J = A starts them all at once: a join storm, which the
 * manager's limit of concurrent TLS handshakes turns into closed
 * connections and redials).
 * The agent's clock ticks at most every second: below 1000 ms the period is
 * rounded up to ticks of P/5. RLIMIT_NOFILE is raised to its hard limit;
 * each agent costs about 8 descriptors. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <inttypes.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/manager.h"
#include "core/node.h"
#include "core/store.h"
#include "net/envproxy.h"
#include "net/uvenv.h"
#include "tests/support/benchutil.h"

enum {
	AGENTS_DEFAULT = 500,
	AGENTS_MAX = 4000,
	PERIOD_MS_DEFAULT = 1000,
	WINDOW_S_DEFAULT = 10,
	WAVE_DEFAULT = 50, /* joins at once: under LIMIT_TLS_HANDSHAKES_MAX */
	POLL_MS = 5,
	SETUP_S_MAX = 60, /* cluster up, all joined and in session */
	FDS_PER_AGENT = 8,
	TOKEN_BYTES = 256,
};

/* What the threads share: phases and counters, all atomics. */
enum phase {
	PH_START,   /* the manager is starting */
	PH_TOKEN,   /* token[] is set: agents, go */
	PH_SESSION, /* agents: every session is up */
	PH_STOP,    /* everyone: stop */
	PH_FAILED,  /* agents: could not start or join */
};

/* A tap: a proxy of a node's env (net/envproxy) whose listen puts a
 * counter in front of the node's receive callback. */
struct tap {
	struct envproxy px; /* first: a tap is found from its env */
	env_recv_cb recv;
	env_peer_cb peer;
	void *data;
	uint8_t tag;	  /* the Wire field counted */
	const char *self; /* frames from this address are not counted */
	atomic_uint_fast64_t *count;
};

struct agentnode {
	struct uvenv *uv;
	struct tap tap;
	struct node_cfg cfg;
	void *node;
	char name[32], dir[96];
	const char *managers[1];
	bool joined, session;
};

struct bench {
	unsigned agents, period_ms, window_s;
	char dir[64], log_path[96];
	FILE *log;
	_Atomic int phase;
	char token[TOKEN_BYTES];
	char maddr[64];
	atomic_uint_fast64_t hb_in;	 /* heartbeats the manager received */
	atomic_uint_fast64_t hb_answers; /* answers the agents received */
	atomic_uint_fast64_t joined, sessions;
	/* the agents' thread's figures (read after the phase says so) */
	double join_t0, join_t1, join_mid, session_t1, start_secs;
	unsigned wave;
	/* manager thread */
	uv_loop_t mloop;
	struct uvenv *muv;
	struct tap mtap;
	struct manager_cfg mcfg;
	struct manager_peer self_peer;
	struct node_cfg mncfg;
	const char *mmanagers[1];
	void *mnode;
	uv_timer_t mpoll;
	double setup_t0, win_t0, win_t1, settle_until;
	uint64_t win_hb0, win_hb1, win_ans0, win_ans1;
	struct rusage win_m0, win_m1, win_p0, win_p1;
	int mstate;
	/* agents thread */
	uv_loop_t aloop;
	uv_timer_t apoll;
	struct agentnode *an;
	unsigned started;
	int astate;
	pthread_t athread;
};

static struct bench bench;

/* ---------------------------------------------------------------- taps */

static void tap_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		     void *data)
{
	struct tap *t = data;
	(void)env;
	if (len > 0 && buf[0] == t->tag && (!t->self || strcmp(from, t->self) != 0))
		atomic_fetch_add_explicit(t->count, 1, memory_order_relaxed);
	t->recv(&t->px.env, from, buf, len, t->data);
}

static void tap_peer(struct env *env, const char *addr, bool up, void *data)
{
	struct tap *t = data;
	(void)env;
	t->peer(&t->px.env, addr, up, t->data);
}

/* The proxy's listen: callbacks come with the real env, so that only the
 * program's own calls come through the proxy. */
static int tap_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		      void *data)
{
	struct tap *t = (struct tap *)envproxy_of(env);
	t->recv = recv_cb;
	t->peer = peer_cb;
	t->data = data;
	return t->px.real->ops->listen(t->px.real, recv_cb ? tap_recv : NULL,
				       peer_cb ? tap_peer : NULL, t);
}

static void tap_init(struct tap *t, struct env *real, uint8_t tag, const char *self,
		     atomic_uint_fast64_t *count)
{
	envproxy_init(&t->px, real);
	t->px.ops.listen = tap_listen;
	t->tag = tag;
	t->self = self;
	t->count = count;
}

static int has_cert(struct env *env)
{
	struct env_identity me;
	struct env_blob none = {NULL, 0};
	return env->ops->pki_info(env, &none, &me) == 0;
}

static uint64_t cpu_us(const struct rusage *a, const struct rusage *b)
{
	int64_t us = (b->ru_utime.tv_sec - a->ru_utime.tv_sec) * 1000000ll +
		     (b->ru_utime.tv_usec - a->ru_utime.tv_usec) +
		     (b->ru_stime.tv_sec - a->ru_stime.tv_sec) * 1000000ll +
		     (b->ru_stime.tv_usec - a->ru_stime.tv_usec);
	return us > 0 ? (uint64_t)us : 0;
}

/* ---------------------------------------------------------------- agents */

static void agents_stop(struct bench *b)
{
	uv_timer_stop(&b->apoll);
	uv_close((uv_handle_t *)&b->apoll, NULL);
	for (unsigned i = 0; i < b->agents; i++) {
		struct agentnode *n = &b->an[i];
		if (n->node)
			node_program.stop(n->node);
		n->node = NULL;
		if (n->uv)
			uvenv_close(n->uv);
		n->uv = NULL;
	}
}

static int agents_open(struct bench *b)
{
	char err[256];
	uint8_t tag;

	if (envproxy_wire_tag("heartbeat_response", &tag))
		return -1;
	for (unsigned i = 0; i < b->agents; i++) {
		struct agentnode *n = &b->an[i];
		snprintf(n->name, sizeof n->name, "w%u", i + 1);
		snprintf(n->dir, sizeof n->dir, "%.63s/%.31s", b->dir, n->name);
		if (uvenv_open(&(struct uvenv_cfg){.loop = &b->aloop,
						   .listen_addr = "127.0.0.1:0",
						   .state_dir = n->dir,
						   .name = n->name,
						   .log_out = b->log,
						   .log_level = ENV_LOG_WARN},
			       &n->uv, err, sizeof err) != 0) {
			fprintf(stderr, "bench_hbtls: agent %u: %s\n", i + 1, err);
			return -1;
		}
		tap_init(&n->tap, uvenv_env(n->uv), tag, NULL, &b->hb_answers);
		n->managers[0] = b->maddr;
		n->cfg.manager = NULL;
		n->cfg.agent.hostname = n->name;
		n->cfg.agent.role = CS__NODE_ROLE__NODE_ROLE_WORKER;
		n->cfg.agent.millicpus = 1000;
		n->cfg.agent.memory_bytes = 1ull << 30;
		n->cfg.agent.managers = n->managers;
		n->cfg.agent.manager_count = 1;
		n->cfg.agent.join_token = b->token;
	}
	return 0;
}

static void agents_poll(uv_timer_t *t)
{
	struct bench *b = t->data;
	int ph = atomic_load(&b->phase);
	double now = bench_now();

	if (ph == PH_STOP) {
		agents_stop(b);
		return;
	}
	if (b->astate == 0) {
		if (ph != PH_TOKEN)
			return;
		if (agents_open(b)) {
			atomic_store(&b->phase, PH_FAILED);
			agents_stop(b);
			return;
		}
		b->join_t0 = bench_now();
		b->astate = 1;
	}
	if (b->astate == 1) {
		uint64_t joined = atomic_load(&b->joined),
			 sessions = atomic_load(&b->sessions);
		/* the next wave of J agents once the last one has joined */
		if (joined == b->started && b->started < b->agents) {
			double t_start = bench_now();
			for (unsigned k = 0; k < b->wave && b->started < b->agents; k++) {
				struct agentnode *n = &b->an[b->started];
				int rv = node_program.start(&n->cfg, &n->tap.px.env,
							    &n->node);
				if (rv) {
					fprintf(stderr,
						"bench_hbtls: agent %u: node start: %s\n",
						b->started + 1, cs_strerror(rv));
					n->node = NULL;
					atomic_store(&b->phase, PH_FAILED);
					agents_stop(b);
					return;
				}
				b->started++;
			}
			b->start_secs += bench_now() - t_start;
		}
		for (unsigned i = 0; i < b->started; i++) {
			struct agentnode *n = &b->an[i];
			if (!n->joined && has_cert(uvenv_env(n->uv))) {
				n->joined = true;
				joined++;
				if (joined == (b->agents + 1) / 2)
					b->join_mid = now;
				if (joined == b->agents)
					b->join_t1 = now;
			}
			if (n->joined && !n->session &&
			    agent_connected(node_agent(n->node))) {
				n->session = true;
				sessions++;
			}
		}
		atomic_store(&b->joined, joined);
		atomic_store(&b->sessions, sessions);
		if (sessions == b->agents) {
			b->session_t1 = now;
			b->astate = 2;
			atomic_store(&b->phase, PH_SESSION);
		}
	}
}

static void *agents_main(void *arg)
{
	struct bench *b = arg;
	pthread_setname_np(pthread_self(), "hb-agents");
	uv_timer_init(&b->aloop, &b->apoll);
	b->apoll.data = b;
	uv_timer_start(&b->apoll, agents_poll, POLL_MS, POLL_MS);
	uv_run(&b->aloop, UV_RUN_DEFAULT);
	return NULL;
}

/* ---------------------------------------------------------------- manager */

static void manager_poll(uv_timer_t *t)
{
	struct bench *b = t->data;
	int ph = atomic_load(&b->phase);
	double now = bench_now();
	struct manager *m = node_manager(b->mnode);

	if (ph == PH_FAILED || (b->mstate < 3 && now - b->setup_t0 > SETUP_S_MAX)) {
		if (ph != PH_FAILED)
			fprintf(stderr,
				"bench_hbtls: not ready in %ds: %" PRIu64
				" joined, %" PRIu64 " sessions of %u (log: %s)\n",
				SETUP_S_MAX, (uint64_t)atomic_load(&b->joined),
				(uint64_t)atomic_load(&b->sessions), b->agents,
				b->log_path);
		b->mstate = -1;
		goto stop;
	}
	switch (b->mstate) {
	case 0: { /* the cluster's record, its CA and tokens */
		const Cs__Cluster *c =
			m && manager_serves(m) ? store_cluster(manager_store(m)) : NULL;
		if (!c || !c->worker_token || !*c->worker_token ||
		    !has_cert(uvenv_env(b->muv)))
			return;
		snprintf(b->token, sizeof b->token, "%s", c->worker_token);
		b->mstate = 1;
		atomic_store(&b->phase, PH_TOKEN);
		return;
	}
	case 1:
		if (ph != PH_SESSION)
			return;
		b->settle_until = now + 2.0 * b->period_ms / 1000.0;
		b->mstate = 2;
		return;
	case 2:
		if (now < b->settle_until)
			return;
		b->win_t0 = bench_now();
		getrusage(RUSAGE_THREAD, &b->win_m0);
		getrusage(RUSAGE_SELF, &b->win_p0);
		b->win_hb0 = atomic_load(&b->hb_in);
		b->win_ans0 = atomic_load(&b->hb_answers);
		b->mstate = 3;
		return;
	case 3:
		if (now - b->win_t0 < b->window_s)
			return;
		getrusage(RUSAGE_THREAD, &b->win_m1);
		getrusage(RUSAGE_SELF, &b->win_p1);
		b->win_hb1 = atomic_load(&b->hb_in);
		b->win_ans1 = atomic_load(&b->hb_answers);
		b->win_t1 = bench_now();
		b->mstate = 4;
		goto stop;
	default: return;
	}
stop:
	atomic_store(&b->phase, PH_STOP);
	uv_timer_stop(&b->mpoll);
	uv_close((uv_handle_t *)&b->mpoll, NULL);
	if (b->mnode)
		node_program.stop(b->mnode);
	b->mnode = NULL;
	uvenv_close(b->muv);
}

static int manager_open_node(struct bench *b)
{
	char err[256];
	char mdir[96];
	uint8_t tag;

	snprintf(mdir, sizeof mdir, "%.63s/m1", b->dir);
	if (uvenv_open(&(struct uvenv_cfg){.loop = &b->mloop,
					   .listen_addr = "127.0.0.1:0",
					   .state_dir = mdir,
					   .name = "m1",
					   .log_out = b->log,
					   .log_level = ENV_LOG_WARN},
		       &b->muv, err, sizeof err) != 0) {
		fprintf(stderr, "bench_hbtls: manager: %s\n", err);
		return -1;
	}
	snprintf(b->maddr, sizeof b->maddr, "%s", uvenv_addr(b->muv));
	if (envproxy_wire_tag("heartbeat", &tag))
		return -1;
	tap_init(&b->mtap, uvenv_env(b->muv), tag, b->maddr, &b->hb_in);
	manager_defaults(&b->mcfg);
	b->mcfg.raft_id = 1;
	b->mcfg.heartbeat_ms = b->period_ms;
	b->self_peer.raft_id = 1;
	b->self_peer.addr = b->maddr;
	b->mcfg.voters = &b->self_peer;
	b->mcfg.voter_count = 1;
	b->mmanagers[0] = b->maddr;
	b->mncfg.manager = &b->mcfg;
	b->mncfg.agent.hostname = "m1";
	b->mncfg.agent.role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
	b->mncfg.agent.millicpus = 1000;
	b->mncfg.agent.memory_bytes = 1ull << 30;
	b->mncfg.agent.managers = b->mmanagers;
	b->mncfg.agent.manager_count = 1;
	b->mncfg.agent.raft_id = 1;
	int rv = node_program.start(&b->mncfg, &b->mtap.px.env, &b->mnode);
	if (rv) {
		fprintf(stderr, "bench_hbtls: manager: node start: %s: %s\n",
			cs_strerror(rv), uvenv_storage_error(b->muv));
		b->mnode = NULL;
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- main */

static unsigned fds_raise(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur > 1000000 ? 1000000 : (unsigned)rl.rlim_cur;
}

int main(int argc, char **argv)
{
	struct bench *b = &bench;
	unsigned fds = fds_raise();
	int rc = 1;

	b->agents = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : AGENTS_DEFAULT;
	b->period_ms =
		argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : PERIOD_MS_DEFAULT;
	b->window_s = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : WINDOW_S_DEFAULT;
	b->wave = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : WAVE_DEFAULT;
	if (b->agents == 0 || b->agents > AGENTS_MAX || b->period_ms < 100 ||
	    b->window_s == 0 || b->wave == 0) {
		fprintf(stderr,
			"usage: bench_hbtls [A (1..%d) [P_MS (>= 100) [W_S [J]]]]\n",
			AGENTS_MAX);
		return 2;
	}
	if ((uint64_t)b->agents * FDS_PER_AGENT + 64 > fds) {
		unsigned fit = (fds - 64) / FDS_PER_AGENT;
		fprintf(stderr, "bench_hbtls: %u descriptors: %u agents, not %u\n", fds,
			fit, b->agents);
		b->agents = fit;
	}
	snprintf(b->dir, sizeof b->dir, "/tmp/bench_hbtls-XXXXXX");
	if (!mkdtemp(b->dir))
		return 1;
	snprintf(b->log_path, sizeof b->log_path, "%.63s/log", b->dir);
	if (!(b->log = fopen(b->log_path, "w")))
		return 1;
	b->an = calloc(b->agents, sizeof *b->an);
	if (!b->an)
		return 1;
	uv_loop_init(&b->mloop);
	uv_loop_init(&b->aloop);

	b->setup_t0 = bench_now();
	if (manager_open_node(b))
		goto out;
	uv_timer_init(&b->mloop, &b->mpoll);
	b->mpoll.data = b;
	uv_timer_start(&b->mpoll, manager_poll, POLL_MS, POLL_MS);
	if (pthread_create(&b->athread, NULL, agents_main, b) != 0)
		goto out;
	uv_run(&b->mloop, UV_RUN_DEFAULT);
	pthread_join(b->athread, NULL);
	uv_loop_close(&b->mloop);
	uv_loop_close(&b->aloop);
	if (b->mstate != 4)
		goto out;

	{
		double secs = b->win_t1 - b->win_t0;
		uint64_t hb = b->win_hb1 - b->win_hb0, ans = b->win_ans1 - b->win_ans0;
		uint64_t mus = cpu_us(&b->win_m0, &b->win_m1);
		uint64_t pus = cpu_us(&b->win_p0, &b->win_p1);
		uint64_t aus = pus > mus ? pus - mus : 0;
		double jsecs = b->join_t1 - b->join_t0;

		printf("join-real: %.0f joins/s (CSR + CA signature + Raft write of the node "
		       "record + install, %u agents against one manager in waves of %u, "
		       "the next when the last has installed its certificates: %.2fs from "
		       "the first start to the last install, of which %.2fs in the agents' "
		       "node starts; half of them by %.2fs; all %u sessions up at %.2fs)\n",
		       b->agents / jsecs, b->agents, b->wave, jsecs, b->start_secs,
		       b->join_mid - b->join_t0, b->agents, b->session_t1 - b->join_t0);
		printf("dispatcher-real: %.0f heartbeats/s (%u agents over mutual TLS, period "
		       "%ums, one process; counted as received by the manager over %.1fs, "
		       "%" PRIu64 " heartbeats, %" PRIu64
		       " answers received by the agents; "
		       "the manager's thread used %.1f%% of a core: %.1f us CPU per "
		       "heartbeat, includes TLS both ways, framing, protobuf, the "
		       "dispatcher, libuv and syscalls; excludes the agents' side, on "
		       "another thread: %.1f us per heartbeat)\n",
		       hb / secs, b->agents, b->period_ms, secs, hb, ans,
		       100.0 * mus / 1e6 / secs, hb ? (double)mus / hb : 0.0,
		       hb ? (double)aus / hb : 0.0);
		/* the agents heartbeat in step (they joined in waves): a window
		 * edge may fall between a burst's heartbeats and its answers */
		if (ans + b->agents + ans / 20 < hb || hb + b->agents + hb / 20 < ans)
			fprintf(stderr,
				"bench_hbtls: %" PRIu64 " heartbeats but %" PRIu64
				" answers\n",
				hb, ans);
		else
			rc = 0;
	}
out:
	fclose(b->log);
	if (rc == 0)
		bench_rm_tree(b->dir);
	else
		fprintf(stderr, "bench_hbtls: state and log kept in %s\n", b->dir);
	free(b->an);
	return rc;
}
