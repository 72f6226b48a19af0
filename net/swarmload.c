/* swarmload: a load generator that is N real nodes in one process. Each
 * agent is the real node program (core/node.c with a worker's agent cfg, as
 * swarmd runs one) on its own uvenv (net/uvenv: its own state dir, its own
 * listener on 127.0.0.1, its own key and certificate, got by joining with
 * the worker token over TLS), all on one libuv loop; the executor is
 * net/fakeexec (no Docker: containers start after a delay and fail at a
 * seeded rate) put in front of each env by net/envproxy. On the wire it is
 * N worker nodes. It joins a running cluster of swarmd managers, then:
 *   join:   agents start in waves of --wave, the next once the last has its
 *           certificate; until every agent holds a session;
 *   hold:   --hold seconds of sessions held: heartbeats/s (answers the
 *           agents received);
 *   create: with --replicas M and a control socket, SERVICE_CREATE of M
 *           replicas; the time until the fake executors have M containers
 *           running, and until the control API counts M tasks RUNNING
 *           (service ls's count, asked every 100 ms; one list of every
 *           task after the timed region confirms it);
 *   node-death: with --kill-agents K, the last K agents stopped at once
 *           as a process death (the node program's stop, its controllers
 *           freed, its env closed: connections closed, no goodbye); the
 *           time until the control API counts M tasks RUNNING with the K
 *           nodes DOWN (so all on the agents left; one list of every task
 *           after it confirms), against SwarmKit's detection time;
 *   leader-kill: with --kill-leader PID (the leader manager's process,
 *           which the bench names) and --after-socket PATH (another
 *           manager's), SIGKILL to it; the time until every live agent
 *           is in a session with the new leader (a session or heartbeat
 *           answer from its address since the kill, and connected), and
 *           the fake executors' count of tasks started twice (any is a
 *           failure); after the timed region, the control API's count of
 *           M RUNNING (service ls's, asked every 100 ms), one list of
 *           every task confirming it.
 * At the end of hold, the control API's node list must show every agent
 * READY.
 * For each phase, the CPU and resident memory of every --watch process
 * (the managers), from /proc. A control thread makes the control-API calls
 * (blocking) and prints; the loop thread runs the nodes; they share
 * atomics only. Exit status: 0 done, 1 a phase failed or timed out, 2 bad
 * usage. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/api.pb-c.h"
#include "core/control.h"
#include "core/errors.h"
#include "core/node.h"
#include "core/sort.h"
#include "net/ctlsock.h"
#include "net/envproxy.h"
#include "net/fakeexec.h"
#include "net/procstat.h"
#include "net/uvenv.h"

enum {
	SL_AGENTS_MAX = 100000,
	SL_MANAGERS_MAX = 16,
	SL_WATCH_MAX = 16,
	SL_FDS_PER_AGENT = 8, /* listener, connections both ways, sqlite files */
	SL_POLL_MS = 5,
	/* leader-kill's look at every agent's session (sl_count_lk): each
	 * look reads every agent's state, a cache miss each; every 5 ms it
	 * was 7% of the machine's CPU during the phase. A session is seen
	 * begun at the first look after it did: T errs late by this at most */
	SL_LK_POLL_MS = 25,
	/* the control API's running/desired count (SERVICE_LIST with status:
	 * kept by the managers, O(services) to answer), asked this often in
	 * the create and node-death phases */
	SL_COUNT_POLL_MS = 100,
	SL_PROGRESS_S = 2,
	/* leader-kill timeline: one-second buckets from the kill (the last
	 * holds everything later) */
	SL_LK_BUCKETS = 300,
	SL_CALL_MS = 30000,
	SL_QUIET_CALL_MS = 1000, /* a call that may find no leader: asked again */
	/* hostnames per TASK_LIST when a list is cut: as many as the control
	 * API takes in one filter (256 was refused, "filter: over 32 values
	 * of one kind": every count of a list over a frame failed, 24,000
	 * tasks on 2,400 agents) */
	SL_NODES_PER_LIST = CONTROL_FILTER_VALUES_MAX,
	SL_TOKEN_BYTES = 256,
	SL_RESTARTS_SHOWN = 10, /* task ids printed when tasks restart */
	SL_PROCS_MAX = 16,	/* --procs */
};

/* SwarmKit's defaults (manager/dispatcher/dispatcher.go at v2.1.0:
 * DefaultHeartBeatPeriod 5 s, defaultHeartBeatEpsilon 0.5 s,
 * defaultGracePeriodMultiplier 3; its heartbeat TTL is the multiplier
 * times the period plus up to the epsilon, the most of which is taken
 * here) and swarmd's, which are the same (core/manager.h: heartbeat_ms
 * 5 s, tick_ms 1 s, election_ticks 10). */
#define SL_HEARTBEAT_S 5.0
#define SL_DETECTION_S (3 * (SL_HEARTBEAT_S + 0.5))
#define SL_ELECTION_S  10.0

static const char sl_usage[] =
	"usage: swarmload --join HOST:PORT[,HOST:PORT...] (--token TOKEN |\n"
	"                 --control-socket PATH) [options]\n"
	"\n"
	"Runs N real agents (core/agent.c on net/uvenv, each its own identity and\n"
	"state) in one process, with a fake executor, against a running cluster.\n"
	"\n"
	"  --join ADDRS             the managers' addresses, comma-separated\n"
	"  --token TOKEN            the worker join token (SWMTKN-1-...)\n"
	"  --control-socket PATH    a manager's control socket: the worker token\n"
	"                           when --token is not given, the service of\n"
	"                           --replicas, and the control API's view\n"
	"  --agents N               agents to run (default 100, at most 100000)\n"
	"  --wave N                 agents joining at once (default 50)\n"
	"  --replicas M             create a service of M replicas once all\n"
	"                           agents hold a session (needs --control-socket)\n"
	"  --service NAME           its name (default swarmload)\n"
	"  --hold S                 seconds of sessions held before the service,\n"
	"                           measuring heartbeats/s (default 5)\n"
	"  --start-ms MS            a container starts after MS (default 100)\n"
	"  --start-jitter-ms MS     plus 0..MS from the seed (default 50)\n"
	"  --stop-ms MS             a container stops after MS (default 100)\n"
	"  --fail-permille N        starts that fail, per 1,000 (default 0)\n"
	"  --seed N                 the fake executor's seed (default 1)\n"
	"  --name-prefix P          agents are P1..PN (default load)\n"
	"  --state-dir DIR          agents' state under DIR (default: a new\n"
	"                           /dev/shm/swarmload-XXXXXX, else /tmp/...,\n"
	"                           removed at a successful exit; a disk there\n"
	"                           makes one thread do every agent's fsyncs)\n"
	"  --watch NAME=PID         report that process's CPU and memory per\n"
	"                           phase (repeatable: the managers; at most\n"
	"                           15); swarmload's own is reported too\n"
	"  --kill-agents K          after the service, stop the last K agents at\n"
	"                           once as a process death and time until\n"
	"                           their tasks run elsewhere (needs --replicas)\n"
	"  --kill-leader PID        then SIGKILL that process (the leader\n"
	"                           manager) and time until every agent is in\n"
	"                           a session with the new leader; a task\n"
	"                           started twice fails it\n"
	"  --after-socket PATH      another manager's control socket, used from\n"
	"                           the leader's kill on (needs --kill-leader)\n"
	"  --timeout S              a phase that takes longer fails (default 600)\n"
	"  --procs P                run the agents in P processes (default 1), each\n"
	"                           under its own open-file limit (an agent holds\n"
	"                           about 4.3 descriptors): this one runs the first\n"
	"                           share and the phases, the others (forked) their\n"
	"                           shares; counts are summed over all of them\n"
	"  --one-address            every agent connects from 127.0.0.1 (default:\n"
	"                           agent n from an address of loopback's own,\n"
	"                           127.1.1.1 on, as machines have their own;\n"
	"                           from one address the kernel's search for a\n"
	"                           free port costs CPU the managers need)\n"
	"  --help\n"
	"\n"
	"Prints one progress line every 2 s of a long phase, a line per phase,\n"
	"and with --replicas: `e2e: M tasks on N agents: T s (R tasks/s)`;\n"
	"`node-death: K agents killed: ...`, `leader-kill: N agents in session\n"
	"with the new leader in ...` for those phases.\n"
	"Exit status: 0 done, 1 a phase failed or timed out, 2 bad usage.\n";

enum sl_phase {
	SL_PH_JOIN,   /* the loop thread starts agents */
	SL_PH_READY,  /* every agent holds a session */
	SL_PH_STOP,   /* everyone: stop */
	SL_PH_FAILED, /* the loop thread could not start an agent */
};

struct sl_agent {
	struct envproxy px; /* first: the agent is found from its env */
	struct swarmload *sl;
	env_recv_cb recv;
	env_peer_cb peer;
	void *recv_data; /* the node's, for both */
	struct uvenv *uv;
	struct node_cfg cfg;
	void *node;
	char name[48];
	bool joined, session;
	bool dead;    /* stopped by node-death */
	int mgr_port; /* the port of the last session/heartbeat answer */
	/* leader-kill: connected at the last poll, and since when */
	bool was_connected;
	uint64_t connected_ns;
	bool lk_lost; /* lost its session since the kill (counted once) */
};

struct sl_watch {
	char name[32];
	pid_t pid;
	struct procstat at0; /* at the phase's start */
	double wait0;	     /* sl_runq_wait_s at the phase's start */
	uint64_t rss_max;    /* sampled during the phase */
	bool ok;
	bool killed;	  /* by leader-kill: its end is no failure */
	double cpu_share; /* the last phase's, of a core (0..) */
	uint64_t rss_end; /* at the last phase's end */
	long fds_max;	  /* open descriptors, the most sampled (-1: unread) */
	long fds_end;	  /* ... at the last phase's end */
};

/* What one process's loop publishes (its agents only), in memory shared by
 * the --procs processes; the control thread (of the first) sums them. */
struct sl_slot {
	_Atomic int phase;  /* SL_PH_JOIN, then SL_PH_READY or SL_PH_FAILED */
	_Atomic int killed; /* node-death done on its agents */
	atomic_uint_fast64_t hb_answers, joined, sessions, refused;
	atomic_uint_fast64_t running, started_tasks, failed_starts;
	atomic_uint_fast64_t last_start_ns; /* its latest container start */
	/* create's timeline (since sl_shared.tl_on): the first and last
	 * Assignments frame its agents received, container started, and
	 * StatusAck received (ns; 0: none yet) */
	atomic_uint_fast64_t tl_asg_first_ns, tl_asg_last_ns;
	atomic_uint_fast64_t tl_start_first_ns, tl_start_last_ns;
	atomic_uint_fast64_t tl_ack_first_ns, tl_ack_last_ns;
	atomic_uint_fast64_t restarted, untracked;
	/* leader-kill: how many of its live agents are in session with the new
	 * leader since the kill, and the latest of those beginnings (ns) */
	atomic_uint_fast64_t lk_in_session, lk_last_ns;
};

/* What the control thread asks of every process. */
struct sl_shared {
	_Atomic int stop;     /* every loop: stop the agents, end */
	_Atomic int kill_req; /* node-death: kill the last kill_agents agents */
	_Atomic int tl_on;    /* create: the loops note its timeline */
	/* leader-kill: the new leader's port (0: not known yet), since when */
	atomic_int lk_port;
	atomic_uint_fast64_t lk_since_ns;
	/* leader-kill timeline, per second from the kill, over every
	 * process's agents: agents that saw their session end (first time),
	 * sessions begun, and session answers received: accepted, redirected
	 * naming no leader, naming the old leader, naming another manager,
	 * refused otherwise */
	atomic_uint lk_lost[SL_LK_BUCKETS], lk_up[SL_LK_BUCKETS],
		lk_relost[SL_LK_BUCKETS];
	atomic_uint lk_sr_ok[SL_LK_BUCKETS], lk_sr_none[SL_LK_BUCKETS],
		lk_sr_old[SL_LK_BUCKETS], lk_sr_other[SL_LK_BUCKETS],
		lk_sr_err[SL_LK_BUCKETS];
	atomic_int lk_old_port;
	struct sl_slot slot[SL_PROCS_MAX];
	/* then kill_agents node ids: the killed agents', by global index
	 * from agents - kill_agents (each process writes its own) */
	uint64_t dead[];
};

struct swarmload {
	struct uvenv_vcache *vcache; /* this process's agents share it */
	struct uvenv_clock *clock;   /* and their timers' clock */
	/* options */
	unsigned agents, wave, hold_s, timeout_s;
	uint64_t replicas;
	const char *token_opt, *socket, *service, *prefix, *state_opt;
	char *join_buf;
	const char *managers[SL_MANAGERS_MAX];
	size_t manager_count;
	struct fakeexec_cfg xcfg;
	struct sl_watch watch[SL_WATCH_MAX];
	size_t watch_count;
	unsigned kill_agents;
	bool one_address; /* every agent dials from 127.0.0.1 */
	pid_t kill_leader;
	const char *after_socket;
	/* state */
	char dir[256];
	bool dir_made;
	char token[SL_TOKEN_BYTES];
	uint8_t hb_tag, session_tag, asg_tag, ack_tag;
	FILE *log;
	char log_path[300];
	uv_loop_t loop;
	uv_timer_t poll;
	struct sl_agent *a;
	unsigned started, joined_n, sessions_n;
	unsigned polls; /* sl_poll's calls */
	struct fakeexec x;
	/* --procs: this process's share of the agents, global indexes
	 * lo..lo+n-1 (a[] holds them), its slot, and what all share */
	unsigned procs, lo, n;
	struct sl_shared *sh;
	size_t sh_bytes;
	struct sl_slot *me;
	pid_t kids[SL_PROCS_MAX];
	/* the control thread's: sorted, the dead agents' node ids */
	uint64_t *dead_ids;
	size_t dead_count;
	pthread_t ctl;
	int rc;
};

static double sl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t sl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The port of an address "HOST:PORT" (0: none). */
static int sl_port_of(const char *addr)
{
	const char *c = addr ? strrchr(addr, ':') : NULL;
	long p = c ? strtol(c + 1, NULL, 10) : 0;
	return p > 0 && p < 65536 ? (int)p : 0;
}

static void sl_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- options */

static int sl_u64(const char *flag, const char *s, uint64_t min, uint64_t max,
		  uint64_t *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || n < min || n > max) {
		fprintf(stderr,
			"swarmload: %s: '%s' is not a number in %" PRIu64 "..%" PRIu64
			"\n",
			flag, s, min, max);
		return -1;
	}
	*v = n;
	return 0;
}

static int sl_parse(struct swarmload *sl, int argc, char **argv)
{
	uint64_t v;

	sl->agents = 100;
	sl->procs = 1;
	sl->wave = 50;
	sl->hold_s = 5;
	sl->timeout_s = 600;
	sl->service = "swarmload";
	sl->prefix = "load";
	sl->xcfg = (struct fakeexec_cfg){
		.seed = 1, .start_ms = 100, .start_jitter_ms = 50, .stop_ms = 100};
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
			fputs(sl_usage, stdout);
			exit(0);
		}
		if (strcmp(f, "--one-address") == 0) {
			sl->one_address = true;
			continue;
		}
		if (!arg) {
			fprintf(stderr, "swarmload: %s: needs a value (--help)\n", f);
			return -1;
		}
		i++;
		if (strcmp(f, "--join") == 0) {
			char *save = NULL, *p;
			free(sl->join_buf);
			sl->join_buf = strdup(arg);
			sl->manager_count = 0;
			for (p = strtok_r(sl->join_buf, ",", &save); p;
			     p = strtok_r(NULL, ",", &save)) {
				if (sl->manager_count == SL_MANAGERS_MAX) {
					fprintf(stderr, "swarmload: --join: at most %d\n",
						SL_MANAGERS_MAX);
					return -1;
				}
				sl->managers[sl->manager_count++] = p;
			}
		} else if (strcmp(f, "--token") == 0) {
			sl->token_opt = arg;
		} else if (strcmp(f, "--control-socket") == 0) {
			sl->socket = arg;
		} else if (strcmp(f, "--agents") == 0) {
			if (sl_u64(f, arg, 1, SL_AGENTS_MAX, &v))
				return -1;
			sl->agents = (unsigned)v;
		} else if (strcmp(f, "--procs") == 0) {
			if (sl_u64(f, arg, 1, SL_PROCS_MAX, &v))
				return -1;
			sl->procs = (unsigned)v;
		} else if (strcmp(f, "--wave") == 0) {
			if (sl_u64(f, arg, 1, SL_AGENTS_MAX, &v))
				return -1;
			sl->wave = (unsigned)v;
		} else if (strcmp(f, "--replicas") == 0) {
			if (sl_u64(f, arg, 1, 10000000, &sl->replicas))
				return -1;
		} else if (strcmp(f, "--service") == 0) {
			sl->service = arg;
		} else if (strcmp(f, "--hold") == 0) {
			if (sl_u64(f, arg, 0, 86400, &v))
				return -1;
			sl->hold_s = (unsigned)v;
		} else if (strcmp(f, "--start-ms") == 0) {
			if (sl_u64(f, arg, 0, 3600000, &sl->xcfg.start_ms))
				return -1;
		} else if (strcmp(f, "--start-jitter-ms") == 0) {
			if (sl_u64(f, arg, 0, 3600000, &sl->xcfg.start_jitter_ms))
				return -1;
		} else if (strcmp(f, "--stop-ms") == 0) {
			if (sl_u64(f, arg, 0, 3600000, &sl->xcfg.stop_ms))
				return -1;
		} else if (strcmp(f, "--fail-permille") == 0) {
			if (sl_u64(f, arg, 0, 1000, &v))
				return -1;
			sl->xcfg.fail_permille = (uint32_t)v;
		} else if (strcmp(f, "--seed") == 0) {
			if (sl_u64(f, arg, 0, UINT64_MAX, &sl->xcfg.seed))
				return -1;
		} else if (strcmp(f, "--name-prefix") == 0) {
			if (!*arg || strlen(arg) > 24) {
				fprintf(stderr,
					"swarmload: --name-prefix: 1..24 characters\n");
				return -1;
			}
			sl->prefix = arg;
		} else if (strcmp(f, "--state-dir") == 0) {
			sl->state_opt = arg;
		} else if (strcmp(f, "--watch") == 0) {
			const char *eq = strchr(arg, '=');
			struct sl_watch *w = &sl->watch[sl->watch_count];
			if (sl->watch_count == SL_WATCH_MAX - 1 || !eq || eq == arg ||
			    (size_t)(eq - arg) >= sizeof w->name ||
			    sl_u64(f, eq + 1, 1, INT32_MAX, &v)) {
				fprintf(stderr,
					"swarmload: --watch: NAME=PID, at most %d\n",
					SL_WATCH_MAX - 1);
				return -1;
			}
			snprintf(w->name, sizeof w->name, "%.*s", (int)(eq - arg), arg);
			w->pid = (pid_t)v;
			sl->watch_count++;
		} else if (strcmp(f, "--kill-agents") == 0) {
			if (sl_u64(f, arg, 1, SL_AGENTS_MAX, &v))
				return -1;
			sl->kill_agents = (unsigned)v;
		} else if (strcmp(f, "--kill-leader") == 0) {
			if (sl_u64(f, arg, 2, INT32_MAX, &v))
				return -1;
			sl->kill_leader = (pid_t)v;
		} else if (strcmp(f, "--after-socket") == 0) {
			sl->after_socket = arg;
		} else if (strcmp(f, "--timeout") == 0) {
			if (sl_u64(f, arg, 1, 86400, &v))
				return -1;
			sl->timeout_s = (unsigned)v;
		} else {
			fprintf(stderr, "swarmload: unknown option %s (--help)\n", f);
			return -1;
		}
	}
	if (sl->watch_count < SL_WATCH_MAX) { /* and itself, last */
		snprintf(sl->watch[sl->watch_count].name, sizeof sl->watch[0].name,
			 "swarmload(self)");
		sl->watch[sl->watch_count++].pid = getpid();
	}
	if (!sl->manager_count) {
		fprintf(stderr, "swarmload: --join HOST:PORT is required (--help)\n");
		return -1;
	}
	for (size_t i = 0; i < sl->manager_count; i++) {
		struct sockaddr_in sa;
		char err[256];
		if (uvenv_parse_addr(sl->managers[i], &sa, err, sizeof err) ||
		    sa.sin_port == 0) {
			fprintf(stderr, "swarmload: --join: %s\n",
				sa.sin_port == 0 ? "port 0 is no manager's" : err);
			return -1;
		}
	}
	if (!sl->token_opt && !sl->socket) {
		fprintf(stderr, "swarmload: --token or --control-socket is required\n");
		return -1;
	}
	if (sl->replicas && !sl->socket) {
		fprintf(stderr, "swarmload: --replicas needs --control-socket\n");
		return -1;
	}
	if (sl->kill_agents && (!sl->replicas || sl->kill_agents >= sl->agents)) {
		fprintf(stderr, "swarmload: --kill-agents needs --replicas and fewer "
				"than --agents\n");
		return -1;
	}
	if (sl->procs > sl->agents) {
		fprintf(stderr, "swarmload: --procs: at most one per agent\n");
		return -1;
	}
	if (!sl->kill_leader != !sl->after_socket || (sl->kill_leader && !sl->socket)) {
		fprintf(stderr, "swarmload: --kill-leader, --after-socket and "
				"--control-socket go together\n");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- the nodes */

static unsigned sl_lk_bucket(const struct swarmload *sl, uint64_t now_ns)
{
	uint64_t since = atomic_load(&sl->sh->lk_since_ns);
	uint64_t s = now_ns > since ? (now_ns - since) / 1000000000u : 0;
	return s < SL_LK_BUCKETS ? (unsigned)s : SL_LK_BUCKETS - 1;
}

/* leader-kill timeline: a session answer, by what it says. */
static void sl_lk_session_answer(struct swarmload *sl, const uint8_t *buf, size_t len)
{
	Cs__Wire *w = cs__wire__unpack(NULL, len, buf);
	unsigned b = sl_lk_bucket(sl, sl_now_ns());
	const Cs__SessionResponse *r;

	if (!w)
		return;
	r = w->session_response;
	if (!r)
		;
	else if (r->status == 0)
		atomic_fetch_add(&sl->sh->lk_sr_ok[b], 1);
	else if (r->status != CS_ENOTLEADER)
		atomic_fetch_add(&sl->sh->lk_sr_err[b], 1);
	else if (!r->leader || !*r->leader)
		atomic_fetch_add(&sl->sh->lk_sr_none[b], 1);
	else if (sl_port_of(r->leader) == atomic_load(&sl->sh->lk_old_port))
		atomic_fetch_add(&sl->sh->lk_sr_old[b], 1);
	else
		atomic_fetch_add(&sl->sh->lk_sr_other[b], 1);
	cs__wire__free_unpacked(w, NULL);
}

/* Notes the time of one of create's timeline events in the pair at
 * first/last (this loop's slot: one writer). */
static void sl_tl_note(atomic_uint_fast64_t *first, atomic_uint_fast64_t *last)
{
	uint64_t now = sl_now_ns();
	if (atomic_load_explicit(first, memory_order_relaxed) == 0)
		atomic_store(first, now);
	atomic_store(last, now);
}

/* Counts heartbeat answers in front of the agent's receive callback, and
 * during create notes its Assignments and StatusAcks. */
static void sl_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		    void *data)
{
	struct sl_agent *a = data;
	(void)env;
	if (len > 0 && buf[0] == a->sl->hb_tag)
		atomic_fetch_add_explicit(&a->sl->me->hb_answers, 1,
					  memory_order_relaxed);
	if (len > 0 && (buf[0] == a->sl->hb_tag || buf[0] == a->sl->session_tag)) {
		a->mgr_port = sl_port_of(from);
	}
	if (len > 0 && buf[0] == a->sl->session_tag &&
	    atomic_load(&a->sl->sh->lk_since_ns))
		sl_lk_session_answer(a->sl, buf, len);
	if (len > 0 && atomic_load_explicit(&a->sl->sh->tl_on, memory_order_relaxed)) {
		if (buf[0] == a->sl->asg_tag)
			sl_tl_note(&a->sl->me->tl_asg_first_ns,
				   &a->sl->me->tl_asg_last_ns);
		else if (buf[0] == a->sl->ack_tag)
			sl_tl_note(&a->sl->me->tl_ack_first_ns,
				   &a->sl->me->tl_ack_last_ns);
	}
	a->recv(&a->px.env, from, buf, len, a->recv_data);
}

/* The node's peer notices, with its own data and env. */
static void sl_peer(struct env *env, const char *addr, bool up, void *data)
{
	struct sl_agent *a = data;
	(void)env;
	a->peer(&a->px.env, addr, up, a->recv_data);
}

static int sl_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		     void *data)
{
	struct sl_agent *a = (struct sl_agent *)envproxy_of(env);
	a->recv = recv_cb;
	a->peer = peer_cb;
	a->recv_data = data;
	return a->px.real->ops->listen(a->px.real, recv_cb ? sl_recv : NULL,
				       peer_cb ? sl_peer : NULL, a);
}

static void sl_refused(void *data, const char *why)
{
	struct sl_agent *a = data;
	fprintf(stderr, "swarmload: %s refused by the cluster: %s\n", a->name, why);
	atomic_fetch_add(&a->sl->me->refused, 1);
}

static void sl_on_start(void *data, const char *service_id)
{
	struct swarmload *sl = data;
	(void)service_id;
	atomic_store(&sl->me->last_start_ns, sl_now_ns());
	if (atomic_load_explicit(&sl->sh->tl_on, memory_order_relaxed))
		sl_tl_note(&sl->me->tl_start_first_ns, &sl->me->tl_start_last_ns);
}

static void sl_on_restart(void *data, const char *task_id, uint64_t starts)
{
	struct swarmload *sl = data;
	if (sl->x.counts.restarted <= SL_RESTARTS_SHOWN)
		fprintf(stderr,
			"swarmload: task %s started %" PRIu64 " times (a restart)%s\n",
			task_id, starts,
			sl->x.counts.restarted == SL_RESTARTS_SHOWN ? "; more not shown"
								    : "");
}

static bool sl_has_cert(struct env *env)
{
	struct env_identity me;
	struct env_blob none = {NULL, 0};
	return env->ops->pki_info(env, &none, &me) == 0;
}

/* Opens agent i's env and fills its cfg (not started). */
/* The address agent n (1..) connects from: 127.A.B.C, each of A, B, C in
 * 1..254 (none a network's or broadcast's number), 127.1.1.1 for the
 * first; n 0: "" (the kernel's choice, 127.0.0.1 for a loopback peer).
 * Loopback is all of 127.0.0.0/8 on Linux: nothing is configured. */
static void sl_dial_from(unsigned n, char out[INET_ADDRSTRLEN])
{
	unsigned k = n - 1;

	if (n == 0) {
		out[0] = '\0';
		return;
	}
	snprintf(out, INET_ADDRSTRLEN, "127.%u.%u.%u", 1 + k / (254 * 254) % 254,
		 1 + k / 254 % 254, 1 + k % 254);
}

static int sl_agent_open(struct swarmload *sl, unsigned i)
{
	struct sl_agent *a = &sl->a[i];
	char dir[320], err[256], from[INET_ADDRSTRLEN], listen[INET_ADDRSTRLEN + 3];

	a->sl = sl;
	snprintf(a->name, sizeof a->name, "%s%u", sl->prefix, sl->lo + i + 1);
	sl_dial_from(sl->one_address ? 0 : sl->lo + i + 1, from);
	/* it listens there too: ten thousand listeners took ten thousand
	 * of 127.0.0.1's ports from the connections' search */
	snprintf(listen, sizeof listen, "%s:0", from[0] ? from : "127.0.0.1");
	snprintf(dir, sizeof dir, "%.200s/%s", sl->dir, a->name);
	if (uvenv_open(&(struct uvenv_cfg){.loop = &sl->loop,
					   .listen_addr = listen,
					   .state_dir = dir,
					   .name = a->name,
					   .log_out = sl->log,
					   .log_level = ENV_LOG_WARN,
					   .vcache = sl->vcache,
					   .clock = sl->clock,
					   .dial_from = from},
		       &a->uv, err, sizeof err) != 0) {
		fprintf(stderr, "swarmload: agent %s: %s\n", a->name, err);
		return -1;
	}
	envproxy_init(&a->px, uvenv_env(a->uv));
	a->px.ops.listen = sl_listen;
	fakeexec_attach(&sl->x, &a->px);
	a->cfg.manager = NULL;
	a->cfg.agent.hostname = a->name;
	a->cfg.agent.role = CS__NODE_ROLE__NODE_ROLE_WORKER;
	a->cfg.agent.millicpus = 1000;
	a->cfg.agent.memory_bytes = 1ull << 30;
	a->cfg.agent.managers = sl->managers;
	a->cfg.agent.manager_count = sl->manager_count;
	a->cfg.agent.join_token = sl->token;
	a->cfg.agent.on_refused = sl_refused;
	a->cfg.agent.hook_data = a;
	return 0;
}

static void sl_nodes_stop(struct swarmload *sl)
{
	uv_timer_stop(&sl->poll);
	uv_close((uv_handle_t *)&sl->poll, NULL);
	for (unsigned i = 0; i < sl->n; i++) {
		struct sl_agent *a = &sl->a[i];
		if (a->node)
			node_program.stop(a->node);
		a->node = NULL;
		if (a->uv)
			uvenv_close(a->uv);
		a->uv = NULL;
	}
}

/* node-death, on each process's loop thread: the last kill_agents agents
 * (of all processes: those of this one among them) die as processes do:
 * the node program's stop (no goodbye), their containers' handles freed
 * (no callback), their envs closed (connections closed by this side, as
 * the kernel closes a dead process's). Their node ids go to the shared
 * dead[]. */
static void sl_kill_agents(struct swarmload *sl)
{
	unsigned from = sl->agents - sl->kill_agents;
	unsigned first = from > sl->lo ? from - sl->lo : 0;
	const struct env **reals;

	/* the controllers of every dying env go in one walk
	 * (fakeexec_envs_gone), before their envs close; nothing runs on
	 * this loop in between */
	reals = sl->n > first ? calloc(sl->n - first, sizeof *reals) : NULL;
	for (unsigned i = first; i < sl->n; i++) {
		struct sl_agent *a = &sl->a[i];
		sl->sh->dead[sl->lo + i - from] = agent_node_id(node_agent(a->node));
		node_program.stop(a->node);
		a->node = NULL;
		if (reals)
			reals[i - first] = uvenv_env(a->uv);
		else
			fakeexec_env_gone(&sl->x, uvenv_env(a->uv));
	}
	if (reals)
		fakeexec_envs_gone(&sl->x, reals, sl->n - first);
	free(reals);
	for (unsigned i = first; i < sl->n; i++) {
		struct sl_agent *a = &sl->a[i];
		uvenv_close(a->uv);
		a->uv = NULL;
		a->dead = true;
	}
}

/* leader-kill, on the loop thread (each poll, from the kill on): when
 * each live agent's session began (its link READY, agent_connected, seen
 * at this poll and not the last); how many are in session with the new
 * leader (once the control thread knows its port: their last session or
 * heartbeat answer came from it) having begun it since the kill; and the
 * latest of those beginnings (whenever the control thread learnt the
 * port). */
static void sl_count_lk(struct swarmload *sl)
{
	int port = atomic_load(&sl->sh->lk_port);
	uint64_t since = atomic_load(&sl->sh->lk_since_ns), n = 0, last = 0, now;

	if (!since)
		return;
	now = sl_now_ns();
	for (unsigned i = 0; i < sl->n; i++) {
		struct sl_agent *a = &sl->a[i];
		bool c = !a->dead && a->node && agent_connected(node_agent(a->node));
		if (c && !a->was_connected) {
			a->connected_ns = now;
			/* a session begun after the one the kill ended */
			if (a->lk_lost)
				atomic_fetch_add(&sl->sh->lk_up[sl_lk_bucket(sl, now)],
						 1);
		}
		if (!c && !a->dead && a->was_connected) {
			atomic_fetch_add(
				a->lk_lost ? &sl->sh->lk_relost[sl_lk_bucket(sl, now)]
					   : &sl->sh->lk_lost[sl_lk_bucket(sl, now)],
				1);
			a->lk_lost = true;
		}
		a->was_connected = c;
		if (c && port && a->mgr_port == port && a->connected_ns >= since) {
			n++;
			if (a->connected_ns > last)
				last = a->connected_ns;
		}
	}
	atomic_store(&sl->me->lk_last_ns, last);
	atomic_store(&sl->me->lk_in_session, n);
}

/* The loop thread's clock: starts the next wave, counts certificates and
 * sessions, publishes the fake executors' counts. */
static void sl_poll(uv_timer_t *t)
{
	struct swarmload *sl = t->data;
	int ph = atomic_load(&sl->me->phase);

	if (atomic_load(&sl->sh->stop) || ph == SL_PH_FAILED) {
		sl_nodes_stop(sl);
		return;
	}
	if (sl->joined_n == sl->started && sl->started < sl->n) {
		for (unsigned k = 0; k < sl->wave && sl->started < sl->n; k++) {
			struct sl_agent *a = &sl->a[sl->started];
			int rv;
			if (sl_agent_open(sl, sl->started)) {
				atomic_store(&sl->me->phase, SL_PH_FAILED);
				return;
			}
			rv = node_program.start(&a->cfg, &a->px.env, &a->node);
			if (rv) {
				fprintf(stderr,
					"swarmload: agent %s: node start: %s: %s\n",
					a->name, cs_strerror(rv),
					uvenv_storage_error(a->uv));
				a->node = NULL;
				atomic_store(&sl->me->phase, SL_PH_FAILED);
				return;
			}
			sl->started++;
		}
	}
	if (sl->sessions_n < sl->n) {
		for (unsigned i = 0; i < sl->started; i++) {
			struct sl_agent *a = &sl->a[i];
			if (!a->joined && sl_has_cert(uvenv_env(a->uv))) {
				a->joined = true;
				sl->joined_n++;
			}
			if (a->joined && !a->session &&
			    agent_connected(node_agent(a->node))) {
				a->session = true;
				sl->sessions_n++;
			}
		}
		atomic_store(&sl->me->joined, sl->joined_n);
		atomic_store(&sl->me->sessions, sl->sessions_n);
		if (sl->sessions_n == sl->n)
			atomic_store(&sl->me->phase, SL_PH_READY);
	}
	if (atomic_load(&sl->sh->kill_req) && !atomic_load(&sl->me->killed)) {
		sl_kill_agents(sl);
		atomic_store(&sl->me->killed, 1);
	}
	if (++sl->polls % (SL_LK_POLL_MS / SL_POLL_MS) == 0)
		sl_count_lk(sl);
	atomic_store(&sl->me->running, sl->x.counts.running);
	atomic_store(&sl->me->started_tasks, sl->x.counts.started);
	atomic_store(&sl->me->failed_starts, sl->x.counts.failed);
	atomic_store(&sl->me->restarted, sl->x.counts.restarted);
	atomic_store(&sl->me->untracked, sl->x.counts.untracked);
}

/* The sum over every process's slot of the counter at offset off. */
static uint64_t sl_sum(const struct swarmload *sl, size_t off)
{
	uint64_t sum = 0;
	for (unsigned k = 0; k < sl->procs; k++)
		sum += atomic_load(
			(atomic_uint_fast64_t *)((char *)&sl->sh->slot[k] + off));
	return sum;
}
#define SL_SUM(sl, field) sl_sum((sl), offsetof(struct sl_slot, field))

/* The latest over every process's slot of the time at offset off. */
static uint64_t sl_max(const struct swarmload *sl, size_t off)
{
	uint64_t m = 0;
	for (unsigned k = 0; k < sl->procs; k++) {
		uint64_t v = atomic_load(
			(atomic_uint_fast64_t *)((char *)&sl->sh->slot[k] + off));
		m = v > m ? v : m;
	}
	return m;
}
#define SL_MAX(sl, field) sl_max((sl), offsetof(struct sl_slot, field))

/* The earliest over every process's slot of the time at offset off, of
 * those that have one (0: none has). */
static uint64_t sl_min(const struct swarmload *sl, size_t off)
{
	uint64_t m = 0;
	for (unsigned k = 0; k < sl->procs; k++) {
		uint64_t v = atomic_load(
			(atomic_uint_fast64_t *)((char *)&sl->sh->slot[k] + off));
		m = v && (!m || v < m) ? v : m;
	}
	return m;
}
#define SL_MIN(sl, field) sl_min((sl), offsetof(struct sl_slot, field))

/* How many processes killed their share of node-death's agents. */
static unsigned sl_killed(const struct swarmload *sl)
{
	unsigned n = 0;
	for (unsigned k = 0; k < sl->procs; k++)
		n += atomic_load(&sl->sh->slot[k].killed) != 0;
	return n;
}

/* Every process's loop: SL_PH_FAILED when one failed, SL_PH_READY when
 * all are, else SL_PH_JOIN. */
static int sl_phase_all(const struct swarmload *sl)
{
	bool all = true;
	for (unsigned k = 0; k < sl->procs; k++) {
		int ph = atomic_load(&sl->sh->slot[k].phase);
		if (ph == SL_PH_FAILED)
			return SL_PH_FAILED;
		all &= ph == SL_PH_READY;
	}
	return all ? SL_PH_READY : SL_PH_JOIN;
}

/* ---------------------------------------------------------------- reports */

/* Seconds pid's threads spent runnable but waiting for a CPU, so far
 * (the second field of /proc/PID/task/TID/schedstat, summed; -1: not
 * readable): how much of a phase's wall time this machine's other load
 * took from it. */
static double sl_runq_wait_s(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	double sum = 0;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d))) {
		char f[300];
		unsigned long long run, wait;
		FILE *fp;
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof f, "/proc/%d/task/%.32s/schedstat", (int)pid,
			 e->d_name);
		if (!(fp = fopen(f, "r")))
			continue; /* the thread ended */
		if (fscanf(fp, "%llu %llu", &run, &wait) == 2)
			sum += (double)wait / 1e9;
		fclose(fp);
	}
	closedir(d);
	return sum;
}

/* How many descriptors pid holds open now (the entries of /proc/PID/fd),
 * or -1 when that is not readable. */
static long sl_fd_count(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	long n = 0;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void sl_watch_begin(struct swarmload *sl)
{
	for (size_t i = 0; i < sl->watch_count; i++) {
		struct sl_watch *w = &sl->watch[i];
		w->wait0 = sl_runq_wait_s(w->pid);
		w->ok = procstat_read(w->pid, &w->at0) == 0;
		w->rss_max = w->ok ? w->at0.rss_bytes : 0;
		w->fds_max = sl_fd_count(w->pid);
	}
}

static void sl_watch_sample(struct swarmload *sl)
{
	for (size_t i = 0; i < sl->watch_count; i++) {
		struct sl_watch *w = &sl->watch[i];
		struct procstat now;
		long fds = sl_fd_count(w->pid);
		if (w->ok && procstat_read(w->pid, &now) == 0 &&
		    now.rss_bytes > w->rss_max)
			w->rss_max = now.rss_bytes;
		if (fds > w->fds_max)
			w->fds_max = fds;
	}
}

/* One line per watched process: its share of a core over the phase, its
 * resident memory at the end and the most sampled. */
static void sl_watch_end(struct swarmload *sl, const char *phase, double secs)
{
	for (size_t i = 0; i < sl->watch_count; i++) {
		struct sl_watch *w = &sl->watch[i];
		struct procstat now;
		if (w->killed)
			continue;
		if (!w->ok || procstat_read(w->pid, &now) != 0) {
			printf("  %s %s: not readable (pid %d exited?)\n", phase, w->name,
			       (int)w->pid);
			continue;
		}
		if (now.rss_bytes > w->rss_max)
			w->rss_max = now.rss_bytes;
		w->cpu_share = secs > 0 ? (now.cpu_s - w->at0.cpu_s) / secs : 0;
		w->rss_end = now.rss_bytes;
		{
			double wait = sl_runq_wait_s(w->pid);
			printf("  %s %s: %.0f%% of a core (%.2f s CPU in %.2f s; %.2f s "
			       "runnable waiting for a CPU), RSS %.0f MiB (max sampled %.0f "
			       "MiB)\n",
			       phase, w->name,
			       secs > 0 ? 100.0 * (now.cpu_s - w->at0.cpu_s) / secs : 0,
			       now.cpu_s - w->at0.cpu_s, secs,
			       wait >= 0 && w->wait0 >= 0 ? wait - w->wait0 : 0.0,
			       now.rss_bytes / 1048576.0, w->rss_max / 1048576.0);
		}
		w->fds_end = sl_fd_count(w->pid);
		if (w->fds_end > w->fds_max)
			w->fds_max = w->fds_end;
		printf("  %s %s: %ld open descriptors at the end (max sampled %ld)\n",
		       phase, w->name, w->fds_end, w->fds_max);
	}
	fflush(stdout);
}

static bool sl_watched_alive(struct swarmload *sl)
{
	for (size_t i = 0; i < sl->watch_count; i++)
		if (!sl->watch[i].killed && kill(sl->watch[i].pid, 0) != 0 &&
		    errno == ESRCH) {
			fprintf(stderr, "swarmload: %s (pid %d) is gone\n",
				sl->watch[i].name, (int)sl->watch[i].pid);
			return false;
		}
	return true;
}

/* ---------------------------------------------------------------- control API */

static Cs__ControlResponse *sl_call_quiet(struct swarmload *sl, Cs__ControlRequest *req,
					  bool quiet)
{
	Cs__ControlResponse *resp = NULL;
	char err[256];
	int rv = ctlsock_request(sl->socket, req, &resp,
				 quiet ? SL_QUIET_CALL_MS : SL_CALL_MS, err, sizeof err);
	if (rv) {
		if (!quiet)
			fprintf(stderr, "swarmload: %s: %s\n", sl->socket, err);
		return NULL;
	}
	return resp;
}

static Cs__ControlResponse *sl_call(struct swarmload *sl, Cs__ControlRequest *req)
{
	return sl_call_quiet(sl, req, false);
}

/* Whether node id is one of the agents node-death killed. */
static bool sl_is_dead(const struct swarmload *sl, uint64_t id)
{
	return sl->dead_count &&
	       bsearch(&id, sl->dead_ids, sl->dead_count, sizeof id, sort_u64_cmp);
}

/* Whether hostname is one of this run's live agents' (PREFIX then 1..N). */
static bool sl_is_live_agent(const struct swarmload *sl, const char *hostname)
{
	size_t n = strlen(sl->prefix);
	char *end;
	unsigned long i;

	if (!hostname || strncmp(hostname, sl->prefix, n) != 0 || !hostname[n] ||
	    hostname[n] == '0')
		return false;
	errno = 0;
	i = strtoul(hostname + n, &end, 10);
	if (errno || *end || i < 1 || i > sl->agents)
		return false;
	return !sl->dead_count || i <= sl->agents - sl->kill_agents;
}

/* The control API's node list: *ready of this run's live agents READY,
 * *listed of them listed; the leader manager's address port in
 * *leader_port (0: none says it leads). A list cut at the frame's size
 * is said on stderr (the nodes past the cut are not counted). Returns 0,
 * or -1 (the call failed: said unless quiet). */
static int sl_node_list(struct swarmload *sl, bool quiet, uint64_t *ready,
			uint64_t *listed, int *leader_port)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	uint64_t leader_id = 0;

	*ready = *listed = 0;
	*leader_port = 0;
	/* the leader: the cluster record's raft id (a node's own flag may
	 * lag) */
	req.id = 5;
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT;
	if (!(resp = sl_call_quiet(sl, &req, quiet)))
		return -1;
	if (resp->status == 0 && resp->cluster)
		leader_id = resp->cluster->leader_raft_id;
	cs__control_response__free_unpacked(resp, NULL);
	req.id = 4;
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_LIST;
	if (!(resp = sl_call_quiet(sl, &req, quiet)))
		return -1;
	if (resp->status != 0) {
		if (!quiet)
			fprintf(stderr, "swarmload: node list: %s\n",
				resp->error && *resp->error ? resp->error
							    : cs_errname(resp->status));
		cs__control_response__free_unpacked(resp, NULL);
		return -1;
	}
	if (resp->n_nodes < resp->total)
		fprintf(stderr,
			"swarmload: node list cut at %zu of %" PRIu64
			" nodes (the frame's size): the rest not checked\n",
			resp->n_nodes, resp->total);
	for (size_t i = 0; i < resp->n_nodes; i++) {
		const Cs__Node *n = resp->nodes[i];
		const Cs__ManagerStatus *st = n->manager_status;
		if (st && (st->leader || (leader_id && st->raft_id == leader_id)))
			*leader_port = sl_port_of(st->addr);
		if (!sl_is_live_agent(sl, n->hostname))
			continue;
		(*listed)++;
		if (n->state == CS__NODE_STATE__NODE_STATE_READY)
			(*ready)++;
	}
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int sl_fetch_token(struct swarmload *sl)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv = -1;

	req.id = 1;
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT;
	if (!(resp = sl_call(sl, &req)))
		return -1;
	if (resp->status == 0 && resp->cluster && resp->cluster->worker_token &&
	    *resp->cluster->worker_token) {
		snprintf(sl->token, sizeof sl->token, "%s", resp->cluster->worker_token);
		rv = 0;
	} else {
		fprintf(stderr, "swarmload: cluster inspect: %s\n",
			resp->error && *resp->error ? resp->error : "no worker token");
	}
	cs__control_response__free_unpacked(resp, NULL);
	return rv;
}

static int sl_create(struct swarmload *sl)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec task = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec container = CS__CONTAINER_SPEC__INIT;
	Cs__ControlResponse *resp;
	int rv = -1;

	container.image = "swarmload/fake:1";
	task.container = &container;
	spec.task = &task;
	spec.name = (char *)sl->service;
	spec.replicas = sl->replicas;
	req.id = 2;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &spec;
	if (!(resp = sl_call(sl, &req)))
		return -1;
	if (resp->status == 0)
		rv = 0;
	else
		fprintf(stderr, "swarmload: service create %s: %s (%s)\n", sl->service,
			resp->error ? resp->error : "", cs_errname(resp->status));
	cs__control_response__free_unpacked(resp, NULL);
	return rv;
}

/* Counts the service's tasks the control API lists RUNNING, in *running;
 * *listed how many tasks it has. A list cut at the frame's size is asked
 * again by slices of the agents' hostnames. Returns 0 or -1. */
static int sl_count_running(struct swarmload *sl, uint64_t *running, uint64_t *listed)
{
	bool slices = false;

	*running = *listed = 0;
	for (unsigned from = 0; from < sl->agents || !slices;) {
		Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
		Cs__ControlResponse *resp;
		char *names[SL_NODES_PER_LIST];
		char name_buf[SL_NODES_PER_LIST][48];
		size_t n = 0;

		req.id = 3;
		req.op = CS__CONTROL_OP__CONTROL_OP_TASK_LIST;
		req.service = (char *)sl->service;
		if (slices) {
			for (; n < SL_NODES_PER_LIST && from < sl->agents; from++)
				if (!sl->dead_count ||
				    from < sl->agents - sl->kill_agents) {
					snprintf(name_buf[n], sizeof name_buf[n], "%s%u",
						 sl->prefix, from + 1);
					names[n] = name_buf[n];
					n++;
				}
			if (!n)
				break; /* only dead agents were left */
			req.filter_nodes = names;
			req.n_filter_nodes = n;
		}
		if (!(resp = sl_call(sl, &req)))
			return -1;
		if (resp->status != 0) {
			fprintf(stderr, "swarmload: task list: %s\n",
				resp->error ? resp->error : cs_errname(resp->status));
			cs__control_response__free_unpacked(resp, NULL);
			return -1;
		}
		if (!slices && resp->n_tasks < resp->total) {
			/* cut: ask again in slices */
			cs__control_response__free_unpacked(resp, NULL);
			slices = true;
			continue;
		}
		if (slices && resp->n_tasks < resp->total) {
			fprintf(stderr,
				"swarmload: task list of %zu nodes cut at %zu of "
				"%" PRIu64 " tasks\n",
				n, resp->n_tasks, resp->total);
			cs__control_response__free_unpacked(resp, NULL);
			return -1;
		}
		for (size_t i = 0; i < resp->n_tasks; i++) {
			const Cs__Task *t = resp->tasks[i];
			if (sl_is_dead(sl, t->node_id))
				continue; /* node-death's: not RUNNING elsewhere */
			(*listed)++;
			if (t->status &&
			    t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING)
				(*running)++;
		}
		cs__control_response__free_unpacked(resp, NULL);
		if (!slices)
			break;
	}
	return 0;
}

/* The service's counts in resp, a SERVICE_LIST answer with status: 0 and
 * *running, *desired, *nodes_down; -1 when resp holds no count of it (not
 * listed, or a manager that answers no counts). */
static int sl_count_of(const struct swarmload *sl, const Cs__ControlResponse *resp,
		       uint64_t *running, uint64_t *desired, uint64_t *nodes_down)
{
	for (size_t i = 0; i < resp->n_services && i < resp->n_counts; i++) {
		const Cs__Service *svc = resp->services[i];
		if (!svc->spec || !svc->spec->name ||
		    strcmp(svc->spec->name, sl->service))
			continue;
		if (resp->counts[i]->service_id != svc->id)
			return -1;
		*running = resp->counts[i]->running;
		*desired = resp->counts[i]->desired;
		*nodes_down = resp->nodes_down;
		return 0;
	}
	return -1;
}

/* The control API's count of the service's tasks (SERVICE_LIST with status,
 * issue 18: what docker service ls's REPLICAS says, kept by the managers as
 * they apply, so asking costs O(services) where a list of every task cost
 * O(tasks)): *running (desired RUNNING, RUNNING, on a node not DOWN),
 * *desired, and the nodes the store holds DOWN. Returns 0, or -1 (the call
 * failed, or no count of the service: said). */
static int sl_count_api(struct swarmload *sl, uint64_t *running, uint64_t *desired,
			uint64_t *nodes_down)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv = -1;

	*running = *desired = *nodes_down = 0;
	req.id = 6;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST;
	req.status = true;
	if (!(resp = sl_call(sl, &req)))
		return -1;
	if (resp->status != 0)
		fprintf(stderr, "swarmload: service list: %s\n",
			resp->error && *resp->error ? resp->error
						    : cs_errname(resp->status));
	else if ((rv = sl_count_of(sl, resp, running, desired, nodes_down)))
		fprintf(stderr,
			"swarmload: service list: no count of %s (%zu services, "
			"%zu counts)\n",
			sl->service, resp->n_services, resp->n_counts);
	cs__control_response__free_unpacked(resp, NULL);
	return rv;
}

/* Whether the control API's count says every replica RUNNING: desired is
 * the replicas (the service is not being changed) and as many run (create
 * and leader-kill end on it). */
static bool sl_all_running(const struct swarmload *sl, uint64_t running, uint64_t desired)
{
	return desired == sl->replicas && running >= desired;
}

/* Whether node-death is over by the control API's count: every dead agent's
 * node DOWN (nodes_down past down_before by kill_agents: a DOWN node's
 * tasks are not counted running, so what is runs on live agents), and all
 * of the replicas running. */
static bool sl_death_done(const struct swarmload *sl, uint64_t running, uint64_t desired,
			  uint64_t nodes_down, uint64_t down_before)
{
	return nodes_down >= down_before + sl->kill_agents && desired == sl->replicas &&
	       running >= desired;
}

/* ---------------------------------------------------------------- phases */

static bool sl_phase_timed_out(struct swarmload *sl, double t0, const char *what)
{
	if (sl_now() - t0 <= sl->timeout_s)
		return false;
	fprintf(stderr, "swarmload: %s: not done in %u s (--timeout)\n", what,
		sl->timeout_s);
	return true;
}

static int sl_phase_join(struct swarmload *sl)
{
	double t0 = sl_now(), next = t0 + SL_PROGRESS_S, secs;

	sl_watch_begin(sl);
	for (;;) {
		int ph = sl_phase_all(sl);
		if (ph == SL_PH_READY)
			break;
		if (ph == SL_PH_FAILED || !sl_watched_alive(sl) ||
		    sl_phase_timed_out(sl, t0, "join"))
			return -1;
		if (SL_SUM(sl, refused) > 0)
			return -1;
		if (sl_now() >= next) {
			printf("swarmload: join: %" PRIu64 "/%u certificates, %" PRIu64
			       " sessions, %.0f s\n",
			       SL_SUM(sl, joined), sl->agents, SL_SUM(sl, sessions),
			       sl_now() - t0);
			fflush(stdout);
			sl_watch_sample(sl);
			next += SL_PROGRESS_S;
		}
		sl_sleep_ms(20);
	}
	secs = sl_now() - t0;
	printf("join: %u agents joined (certificate each) and in session in %.2f s "
	       "(%.0f joins/s, waves of %u%s)\n",
	       sl->agents, secs, sl->agents / secs, sl->wave,
	       sl->procs > 1 ? " in each swarmload process" : "");
	if (sl->procs > 1)
		printf("  join: %u swarmload processes of about %u agents each\n",
		       sl->procs, (sl->agents + sl->procs - 1) / sl->procs);
	sl_watch_end(sl, "join", secs);
	return 0;
}

/* Whether the control API lists every live agent READY (said when not). */
static bool sl_all_ready(struct swarmload *sl, const char *when, uint64_t *ready)
{
	uint64_t listed;
	int leader_port;
	unsigned live = sl->agents - (unsigned)sl->dead_count;

	if (sl_node_list(sl, false, ready, &listed, &leader_port))
		return false;
	if (*ready == live)
		return true;
	fprintf(stderr,
		"swarmload: %s: node ls lists %" PRIu64
		" of the %u agents READY (%" PRIu64 " listed)\n",
		when, *ready, live, listed);
	return false;
}

static int sl_phase_hold(struct swarmload *sl)
{
	double t0, secs;
	uint64_t hb0, hb1, ready0 = 0, ready1 = 0;
	bool ok;

	if (sl->hold_s == 0)
		return 0;
	if (sl->socket && !sl_all_ready(sl, "hold's start", &ready0))
		return -1;
	sl_watch_begin(sl);
	t0 = sl_now();
	hb0 = SL_SUM(sl, hb_answers);
	while (sl_now() - t0 < sl->hold_s) {
		if (!sl_watched_alive(sl))
			return -1;
		sl_watch_sample(sl);
		sl_sleep_ms(200);
	}
	hb1 = SL_SUM(sl, hb_answers);
	secs = sl_now() - t0;
	printf("hold: %.0f heartbeats/s over %.1f s (%u agents in session; answers the "
	       "agents received)\n",
	       (double)(hb1 - hb0) / secs, secs, sl->agents);
	sl_watch_end(sl, "hold", secs);
	ok = !sl->socket || sl_all_ready(sl, "hold's end", &ready1);
	for (size_t i = 0; i < sl->watch_count; i++) {
		const struct sl_watch *w = &sl->watch[i];
		if (!w->ok || !strstr(w->name, "(leader)"))
			continue;
		printf("hold-leader: %u agents, heartbeats every %.0f s: leader %.0f%% of a "
		       "core, RSS %.0f MiB (max sampled %.0f MiB) (timed: the hold's %.1f "
		       "s of sessions held, no tasks)\n",
		       sl->agents, SL_HEARTBEAT_S, 100.0 * w->cpu_share,
		       w->rss_end / 1048576.0, w->rss_max / 1048576.0, secs);
		printf("hold-leader-fds: %u agents: leader holds %ld descriptors (max "
		       "sampled %ld; %.2f per agent) (timed: the hold)\n",
		       sl->agents, w->fds_end, w->fds_max,
		       sl->agents ? (double)w->fds_max / sl->agents : 0.0);
	}
	if (sl->socket)
		printf("hold-ready: node ls: %" PRIu64
		       "/%u agents READY at the hold's start, "
		       "%" PRIu64 "/%u at its end\n",
		       ready0, sl->agents, ready1, sl->agents);
	fflush(stdout);
	if (SL_SUM(sl, sessions) < sl->agents || !ok)
		return -1;
	return 0;
}

/* Seconds from t0_ns to t_ns (-1 when t_ns is 0: never). */
static double sl_since_s(uint64_t t0_ns, uint64_t t_ns)
{
	return t_ns ? ((double)t_ns - (double)t0_ns) / 1e9 : -1.0;
}

/* create's timeline by the agents' own view, from SERVICE_CREATE sent
 * (t0_ns) to the control API's all-RUNNING (api_s), and the wall-clock
 * time of t0 as the managers' logs stamp it (their debug lines give the
 * leader's side: tools/e2e-timeline). */
static void sl_create_timeline(struct swarmload *sl, uint64_t t0_ns,
			       const struct timespec *wall0, double api_s)
{
	struct tm tm;
	time_t sec = wall0->tv_sec;

	gmtime_r(&sec, &tm);
	printf("create-timeline: service create sent at ts=%04d-%02d-%02dT%02d:%02d:%02d."
	       "%03ldZ (the managers' log clock)\n",
	       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	       tm.tm_sec, wall0->tv_nsec / 1000000L);
	printf("create-timeline: agents: Assignments received first %.3f s, last %.3f s; "
	       "containers started first %.3f s, last %.3f s; StatusAcks received "
	       "first %.3f s, last %.3f s; control API all RUNNING by %.3f s (seconds "
	       "from service create sent; the last StatusAck is the last status "
	       "committed that an agent heard of)\n",
	       sl_since_s(t0_ns, SL_MIN(sl, tl_asg_first_ns)),
	       sl_since_s(t0_ns, SL_MAX(sl, tl_asg_last_ns)),
	       sl_since_s(t0_ns, SL_MIN(sl, tl_start_first_ns)),
	       sl_since_s(t0_ns, SL_MAX(sl, tl_start_last_ns)),
	       sl_since_s(t0_ns, SL_MIN(sl, tl_ack_first_ns)),
	       sl_since_s(t0_ns, SL_MAX(sl, tl_ack_last_ns)), api_s);
}

static int sl_phase_create(struct swarmload *sl)
{
	double t0, next, next_count, t_own, t_api = 0, own, api, t_list, list_s;
	uint64_t running = 0, listed = 0, desired = 0, down = 0, t0_ns;
	struct timespec wall0;

	sl_watch_begin(sl);
	atomic_store(&sl->sh->tl_on, 1);
	clock_gettime(CLOCK_REALTIME, &wall0);
	t0_ns = sl_now_ns();
	t0 = (double)t0_ns / 1e9;
	next = t0 + SL_PROGRESS_S;
	next_count = t0;
	if (sl_create(sl))
		return -1;
	/* the fake executors' view (of every process): M containers running;
	 * and the control API's count (M of M RUNNING), asked every
	 * SL_COUNT_POLL_MS meanwhile: whichever comes last ends the phase */
	while (SL_SUM(sl, running) < sl->replicas || !t_api) {
		if (!sl_watched_alive(sl) || sl_phase_timed_out(sl, t0, "create"))
			return -1;
		if (!t_api && sl_now() >= next_count) {
			next_count = sl_now() + SL_COUNT_POLL_MS / 1000.0;
			if (sl_count_api(sl, &running, &desired, &down))
				return -1;
			if (sl_all_running(sl, running, desired))
				t_api = sl_now();
		}
		if (sl_now() >= next) {
			printf("swarmload: create: %" PRIu64 "/%" PRIu64
			       " running (own view), %" PRIu64 " failed starts; control "
			       "API counts %" PRIu64 "/%" PRIu64 " RUNNING, %.0f s\n",
			       SL_SUM(sl, running), sl->replicas,
			       SL_SUM(sl, failed_starts), running, desired,
			       sl_now() - t0);
			fflush(stdout);
			sl_watch_sample(sl);
			next += SL_PROGRESS_S;
		}
		sl_sleep_ms(5);
	}
	/* the last of them started at the latest start any process saw */
	t_own = (double)SL_MAX(sl, last_start_ns) / 1e9;
	sl_watch_sample(sl);
	own = t_own - t0;
	api = t_api - t0;
	/* out of the timed region: one list of every task confirms the count
	 * (what the phase used to poll, each list O(tasks)) */
	t_list = sl_now();
	if (sl_count_running(sl, &running, &listed))
		return -1;
	list_s = sl_now() - t_list;
	printf("e2e: %" PRIu64 " tasks on %u agents: %.2f s (%.0f tasks/s)\n",
	       sl->replicas, sl->agents, own, (double)sl->replicas / own);
	printf("  create: from service create to the last fake container started "
	       "(start delay %" PRIu64 "+0..%" PRIu64 " ms, %" PRIu64
	       " failed starts): %.2f s; the control API counted all %" PRIu64
	       " RUNNING by %.2f s (service ls's count, asked every %d ms); one list "
	       "of every task after it: %" PRIu64 " RUNNING of %" PRIu64
	       " listed at %.2f s (the list took %.2f s)%s\n",
	       sl->xcfg.start_ms, sl->xcfg.start_jitter_ms, SL_SUM(sl, failed_starts),
	       own, sl->replicas, api, (int)SL_COUNT_POLL_MS, running, listed,
	       sl_now() - t0, list_s, running >= sl->replicas ? "" : ": NOT confirmed");
	sl_watch_end(sl, "create", api);
	sl_create_timeline(sl, t0_ns, &wall0, api);
	atomic_store(&sl->sh->tl_on, 0);
	return running >= sl->replicas ? 0 : -1;
}

/* Whether the loop thread failed (said already) or a watched process is
 * gone, or the phase ran past --timeout. */
static bool sl_phase_broken(struct swarmload *sl, double t0, const char *what)
{
	return sl_phase_all(sl) == SL_PH_FAILED || !sl_watched_alive(sl) ||
	       sl_phase_timed_out(sl, t0, what);
}

/* node-death: the last kill_agents agents die at once (process deaths);
 * timed from the kill to the control API's count saying every task RUNNING
 * on the agents left: all of the dead agents' nodes DOWN (the count leaves
 * a DOWN node's tasks out of running, Docker's rule: with every dead one
 * DOWN, what it counts runs on live agents) and running == desired. The
 * count is asked every SL_COUNT_POLL_MS from the kill (O(services) for the
 * leader); one list of every task after the timed region confirms it by
 * the dead agents' node ids. */
static int sl_phase_node_death(struct swarmload *sl)
{
	double t0, t_own = 0, t_api, next, next_count, t_list, list_s;
	uint64_t running = 0, listed = 0, desired = 0, down = 0, down_before = 0;
	uint64_t before, lost;

	sl_watch_begin(sl);
	before = SL_SUM(sl, running);
	if (!(sl->dead_ids = calloc(sl->kill_agents, sizeof *sl->dead_ids)))
		return -1;
	/* the nodes DOWN already (none, in a run of its own) */
	if (sl_count_api(sl, &running, &desired, &down_before))
		return -1;
	t0 = sl_now();
	next = t0 + SL_PROGRESS_S;
	atomic_store(&sl->sh->kill_req, 1);
	while (sl_killed(sl) != sl->procs)
		if (sl_phase_broken(sl, t0, "node-death (the kill)"))
			return -1;
		else
			sl_sleep_ms(1);
	memcpy(sl->dead_ids, sl->sh->dead, sl->kill_agents * sizeof *sl->dead_ids);
	qsort(sl->dead_ids, sl->kill_agents, sizeof *sl->dead_ids, sort_u64_cmp);
	sl->dead_count = sl->kill_agents;
	sl_sleep_ms(2 * SL_POLL_MS); /* the counts published after it */
	lost = before - SL_SUM(sl, running);
	printf("swarmload: node-death: %u agents stopped (%" PRIu64
	       " running containers with them) in %.3f s\n",
	       sl->kill_agents, lost, sl_now() - t0);
	fflush(stdout);
	next_count = sl_now();
	for (;;) {
		if (sl_phase_broken(sl, t0, "node-death"))
			return -1;
		if (!t_own && SL_SUM(sl, running) >= sl->replicas)
			t_own = sl_now();
		if (sl_now() >= next_count) {
			next_count = sl_now() + SL_COUNT_POLL_MS / 1000.0;
			if (sl_count_api(sl, &running, &desired, &down))
				return -1;
			if (sl_death_done(sl, running, desired, down, down_before))
				break;
		}
		if (sl_now() >= next) {
			printf("swarmload: node-death: control API counts %" PRIu64
			       "/%" PRIu64 " RUNNING, %" PRIu64 " of %u dead nodes DOWN; "
			       "%" PRIu64 " running (own view), %.0f s\n",
			       running, desired, down - down_before, sl->kill_agents,
			       SL_SUM(sl, running), sl_now() - t0);
			fflush(stdout);
			sl_watch_sample(sl);
			next += SL_PROGRESS_S;
		}
		sl_sleep_ms(SL_POLL_MS);
	}
	t_api = sl_now();
	if (!t_own)
		t_own = t_api; /* the control API said it first */
	/* out of the timed region: one list of every task, the dead agents'
	 * tasks told apart by node id, confirms the count */
	t_list = sl_now();
	if (sl_count_running(sl, &running, &listed))
		return -1;
	list_s = sl_now() - t_list;
	printf("node-death: %u agents killed: tasks running elsewhere in %.2f s (detection "
	       "%.1f s)\n",
	       sl->kill_agents, t_api - t0, SL_DETECTION_S);
	printf("  node-death: %" PRIu64 " of %" PRIu64
	       " tasks were on them; from the kill to the control API counting all "
	       "%" PRIu64 " RUNNING with the %u dead nodes DOWN (service ls's count, "
	       "asked every %d ms; own view: %.2f s); one list of every task after "
	       "it: %" PRIu64 " RUNNING on the %u agents left (%" PRIu64
	       " listed) at %.2f s (the list took %.2f s)%s; SwarmKit's detection is 3 "
	       "heartbeat periods of %.0f s plus their 0.5 s epsilon, the goal that "
	       "plus 2 s: %.1f s, %s\n",
	       lost, sl->replicas, sl->replicas, sl->kill_agents, (int)SL_COUNT_POLL_MS,
	       t_own - t0, running, sl->agents - sl->kill_agents, listed, sl_now() - t0,
	       list_s, running >= sl->replicas ? "" : ": NOT confirmed", SL_HEARTBEAT_S,
	       SL_DETECTION_S + 2, t_api - t0 <= SL_DETECTION_S + 2 ? "met" : "NOT met");
	sl_watch_end(sl, "node-death", t_api - t0);
	return running >= sl->replicas ? 0 : -1;
}

/* leader-kill: the timeline, a line per second from the kill up to the
 * last second anything happened in: agents that lost their session, that
 * began one (with the new leader: no other leads), and the session
 * answers they got (accepted; redirected to no leader, to the killed one,
 * to another; refused). */
static void sl_lk_timeline(struct swarmload *sl, double t_known)
{
	unsigned last = 0, lost = 0, up = 0;

	for (unsigned b = 0; b < SL_LK_BUCKETS; b++)
		if (atomic_load(&sl->sh->lk_lost[b]) || atomic_load(&sl->sh->lk_up[b]) ||
		    atomic_load(&sl->sh->lk_relost[b]) ||
		    atomic_load(&sl->sh->lk_sr_ok[b]) ||
		    atomic_load(&sl->sh->lk_sr_none[b]) ||
		    atomic_load(&sl->sh->lk_sr_old[b]) ||
		    atomic_load(&sl->sh->lk_sr_other[b]) ||
		    atomic_load(&sl->sh->lk_sr_err[b]))
			last = b;
	printf("  leader-kill timeline (per second from the kill; the control API named "
	       "the new leader at %.2f s): lost = sessions seen ending, up = sessions "
	       "begun with the new leader, again = those lost again; session answers: ok, no-leader, "
	       "old-leader, other, refused\n",
	       t_known);
	for (unsigned b = 0; b <= last; b++) {
		lost += atomic_load(&sl->sh->lk_lost[b]);
		up += atomic_load(&sl->sh->lk_up[b]);
		printf("  lk-t %3u%s s: lost %5u (%5u)  up %5u (%5u)  again %u  answers %u "
		       "%u %u %u %u\n",
		       b, b == SL_LK_BUCKETS - 1 ? "+" : "",
		       atomic_load(&sl->sh->lk_lost[b]), lost,
		       atomic_load(&sl->sh->lk_up[b]), up,
		       atomic_load(&sl->sh->lk_relost[b]),
		       atomic_load(&sl->sh->lk_sr_ok[b]),
		       atomic_load(&sl->sh->lk_sr_none[b]),
		       atomic_load(&sl->sh->lk_sr_old[b]),
		       atomic_load(&sl->sh->lk_sr_other[b]),
		       atomic_load(&sl->sh->lk_sr_err[b]));
	}
}

static int sl_phase_leader_kill(struct swarmload *sl)
{
	double t0, t_known = 0, t_done, t_seen, next,
		   bound = 2 * SL_ELECTION_S + SL_HEARTBEAT_S;
	uint64_t t0_ns;
	uint64_t ready, listed, running = 0, desired = 0, down = 0, restarted;
	double t_api = 0, next_count, t_list, list_s;
	unsigned live = sl->agents - (unsigned)sl->dead_count;
	int old_port, new_port = 0;

	if (sl_node_list(sl, false, &ready, &listed, &old_port))
		return -1;
	if (!old_port) {
		fprintf(stderr, "swarmload: leader-kill: no manager says it leads\n");
		return -1;
	}
	for (size_t i = 0; i < sl->watch_count; i++)
		if (sl->watch[i].pid == sl->kill_leader)
			sl->watch[i].killed = true;
	sl_watch_begin(sl);
	t0 = sl_now();
	t0_ns = sl_now_ns();
	atomic_store(&sl->sh->lk_old_port, old_port);
	atomic_store(&sl->sh->lk_since_ns, t0_ns);
	if (kill(sl->kill_leader, SIGKILL) != 0) {
		fprintf(stderr, "swarmload: leader-kill: kill %d: %s\n",
			(int)sl->kill_leader, strerror(errno));
		return -1;
	}
	sl->socket = sl->after_socket;
	next = t0 + SL_PROGRESS_S;
	for (;;) {
		if (sl_phase_broken(sl, t0, "leader-kill"))
			return -1;
		if (!new_port) {
			int port = 0;
			/* no leader yet: a follower cannot answer (quiet) */
			if (sl_node_list(sl, true, &ready, &listed, &port) == 0 && port &&
			    port != old_port) {
				new_port = port;
				t_known = sl_now();
				atomic_store(&sl->sh->lk_port, new_port);
			}
		} else if (SL_SUM(sl, lk_in_session) >= live) {
			break;
		}
		if (sl_now() >= next) {
			printf("swarmload: leader-kill: %s, %" PRIu64
			       "/%u agents in session with it, %.0f s\n",
			       new_port ? "new leader known" : "no new leader yet",
			       SL_SUM(sl, lk_in_session), live, sl_now() - t0);
			fflush(stdout);
			sl_watch_sample(sl);
			next += SL_PROGRESS_S;
		}
		sl_sleep_ms(new_port ? SL_POLL_MS : 100);
	}
	t_seen = sl_now() - t0;
	sl_sleep_ms(2 * SL_LK_POLL_MS); /* lk_last_ns of the count that said all */
	t_done = (double)(SL_MAX(sl, lk_last_ns) - t0_ns) / 1e9;
	/* out of the timed region (the agents' sessions): the tasks still all
	 * RUNNING by the control API (the new leader's store), by service ls's
	 * count asked every SL_COUNT_POLL_MS (O(services); a call that fails,
	 * the new leader not answering yet, is asked again), then one list of
	 * every task confirms it; and none started twice by the agents
	 * re-syncing */
	next_count = sl_now();
	while (sl->replicas && !t_api) {
		if (sl_phase_broken(sl, t0, "leader-kill (control API)"))
			return -1;
		if (sl_now() >= next_count) {
			next_count = sl_now() + SL_COUNT_POLL_MS / 1000.0;
			if (sl_count_api(sl, &running, &desired, &down) == 0 &&
			    sl_all_running(sl, running, desired))
				t_api = sl_now();
		}
		if (!t_api)
			sl_sleep_ms(SL_POLL_MS);
	}
	if (!sl->replicas)
		t_api = sl_now();
	t_list = sl_now();
	running = listed = 0;
	if (sl->replicas && sl_count_running(sl, &running, &listed))
		return -1;
	list_s = sl_now() - t_list;
	restarted = SL_SUM(sl, restarted);
	printf("leader-kill: %u agents in session with the new leader in %.2f s (two "
	       "election timeouts + one heartbeat = %.0f s); tasks restarted: %" PRIu64
	       "\n",
	       live, t_done, bound, restarted);
	printf("  leader-kill: SIGKILL to pid %d (the leader, port %d); T is when the last "
	       "agent first heard the new leader (port %d) in session (seen every 25 ms); the control API "
	       "named it after %.2f s, this thread saw them all after %.2f s; all %" PRIu64
	       " tasks RUNNING by the control API's count at %.2f s (service ls's count, "
	       "asked every %d ms); one list of every task after it: %" PRIu64
	       " RUNNING of %" PRIu64 " listed at %.2f s (the list took %.2f s)%s; %s\n",
	       (int)sl->kill_leader, old_port, new_port, t_known - t0, t_seen,
	       sl->replicas, t_api - t0, (int)SL_COUNT_POLL_MS, running, listed,
	       sl_now() - t0, list_s, running >= sl->replicas ? "" : ": NOT confirmed",
	       t_done <= bound ? "within the bound" : "NOT within the bound");
	sl_lk_timeline(sl, new_port ? t_known - t0 : 0);
	sl_watch_end(sl, "leader-kill", sl_now() - t0);
	if (SL_SUM(sl, untracked)) {
		fprintf(stderr,
			"swarmload: %" PRIu64 " starts not tracked per task "
			"(out of memory): restarts unknown\n",
			SL_SUM(sl, untracked));
		return -1;
	}
	return restarted || running < sl->replicas ? -1 : 0;
}

static void *sl_control_main(void *arg)
{
	struct swarmload *sl = arg;
	int rv = -1;

	pthread_setname_np(pthread_self(), "swarmload-ctl");
	if (sl_phase_join(sl) == 0 && sl_phase_hold(sl) == 0 &&
	    (sl->replicas == 0 || sl_phase_create(sl) == 0) &&
	    (!sl->kill_agents || sl_phase_node_death(sl) == 0) &&
	    (!sl->kill_leader || sl_phase_leader_kill(sl) == 0))
		rv = 0;
	sl->rc = rv ? 1 : 0;
	if (rv)
		fprintf(stderr, "swarmload: stopped; agents' log: %s\n", sl->log_path);
	atomic_store(&sl->sh->stop, 1);
	return NULL;
}

/* ---------------------------------------------------------------- main */

static int sl_fds(struct swarmload *sl)
{
	struct rlimit rl;
	uint64_t share = (sl->agents + sl->procs - 1) / sl->procs;
	uint64_t need = share * SL_FDS_PER_AGENT + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) { /* all this machine allows */
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need) {
		/* past the hard limit when privileged (root), else up to it */
		struct rlimit want = {need, rl.rlim_max > need ? rl.rlim_max : need};
		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need) {
		fprintf(stderr,
			"swarmload: %" PRIu64 " agents in a process need about %" PRIu64
			" descriptors; the limit is %llu (ulimit -n; more --procs)\n",
			share, need, (unsigned long long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

static void sl_rm_tree(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* Share k of `agents` agents over `procs` processes: global indexes
 * *lo..*lo+*n-1; the shares are contiguous, in order, cover every agent
 * once and differ by at most one agent. */
static void sl_share_of(unsigned agents, unsigned procs, unsigned k, unsigned *lo,
			unsigned *n)
{
	*lo = (unsigned)((uint64_t)k * agents / procs);
	*n = (unsigned)((uint64_t)(k + 1) * agents / procs) - *lo;
}

/* One process's share k of the agents: its loop (and in share 0 the
 * control thread, which runs the phases over every share's counts).
 * Returns the exit status: 0, or 1 (failed: said). */
static int sl_share_main(struct swarmload *sl, unsigned k)
{
	int rc = 1;

	sl_share_of(sl->agents, sl->procs, k, &sl->lo, &sl->n);
	sl->me = &sl->sh->slot[k];
	if (k == 0)
		snprintf(sl->log_path, sizeof sl->log_path, "%.200s/agents.log", sl->dir);
	else
		snprintf(sl->log_path, sizeof sl->log_path, "%.200s/agents-%u.log",
			 sl->dir, k);
	if (!(sl->log = fopen(sl->log_path, "w"))) {
		fprintf(stderr, "swarmload: %s: %s\n", sl->log_path, strerror(errno));
		atomic_store(&sl->me->phase, SL_PH_FAILED);
		return 1;
	}
	if (!(sl->a = calloc(sl->n, sizeof *sl->a))) {
		fprintf(stderr, "swarmload: out of memory for %u agents\n", sl->n);
		atomic_store(&sl->me->phase, SL_PH_FAILED);
		fclose(sl->log);
		return 1;
	}
	if (k == 0) {
		printf("swarmload: %u agents (waves of %u%s) joining %s%s; state in %s\n",
		       sl->agents, sl->wave, sl->procs > 1 ? " per process" : "",
		       sl->managers[0], sl->manager_count > 1 ? " and others" : "",
		       sl->dir);
		fflush(stdout);
	}
	/* one cache of verified peer certificates for all this process's
	 * agents: each checks the same managers' certificates */
	sl->vcache = uvenv_vcache_new(UVENV_VCACHE_SLOTS);
	if (!sl->vcache) {
		fprintf(stderr, "swarmload: out of memory\n");
		atomic_store(&sl->me->phase, SL_PH_FAILED);
		fakeexec_free(&sl->x);
		free(sl->a);
		fclose(sl->log);
		return 1;
	}
	uv_loop_init(&sl->loop);
	/* one clock for all this process's agents' timers: one heap and one
	 * libuv timer, not a libuv timer each */
	sl->clock = uvenv_clock_new(&sl->loop);
	if (!sl->clock) {
		fprintf(stderr, "swarmload: out of memory\n");
		atomic_store(&sl->me->phase, SL_PH_FAILED);
		(void)uv_loop_close(&sl->loop);
		uvenv_vcache_free(sl->vcache);
		fakeexec_free(&sl->x);
		free(sl->a);
		fclose(sl->log);
		return 1;
	}
	uv_timer_init(&sl->loop, &sl->poll);
	sl->poll.data = sl;
	uv_timer_start(&sl->poll, sl_poll, 0, SL_POLL_MS);
	if (k != 0) {
		uv_run(&sl->loop, UV_RUN_DEFAULT);
		rc = atomic_load(&sl->me->phase) == SL_PH_FAILED;
	} else if (pthread_create(&sl->ctl, NULL, sl_control_main, sl) != 0) {
		fprintf(stderr, "swarmload: cannot start the control thread\n");
		atomic_store(&sl->sh->stop, 1);
		uv_run(&sl->loop, UV_RUN_DEFAULT);
	} else {
		uv_run(&sl->loop, UV_RUN_DEFAULT);
		pthread_join(sl->ctl, NULL);
		rc = sl->rc;
	}
	uvenv_clock_free(sl->clock); /* every agent's env is closed */
	sl->clock = NULL;
	uv_run(&sl->loop, UV_RUN_DEFAULT); /* its handle's close */
	if (uv_loop_close(&sl->loop) != 0)
		fprintf(stderr, "swarmload: handles left on the loop\n");
	uvenv_vcache_free(sl->vcache);
	sl->vcache = NULL;
	fakeexec_free(&sl->x);
	free(sl->a);
	fclose(sl->log);
	return rc;
}

int main(int argc, char **argv)
{
	static struct swarmload s;
	struct swarmload *sl = &s;
	int rc = 1;

	if (sl_parse(sl, argc, argv)) {
		free(sl->join_buf);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (sl_fds(sl))
		goto out;
	if (envproxy_wire_tag("heartbeat_response", &sl->hb_tag) ||
	    envproxy_wire_tag("session_response", &sl->session_tag) ||
	    envproxy_wire_tag("assignments", &sl->asg_tag) ||
	    envproxy_wire_tag("status_ack", &sl->ack_tag)) {
		fprintf(stderr,
			"swarmload: no Wire.heartbeat_response, session_response, "
			"assignments or status_ack\n");
		goto out;
	}
	if (fakeexec_init(&sl->x, &sl->xcfg))
		goto out;
	sl->x.on_start = sl_on_start;
	sl->x.on_start_data = sl;
	sl->x.on_restart = sl_on_restart;
	sl->x.on_restart_data = sl;
	if (sl->token_opt)
		snprintf(sl->token, sizeof sl->token, "%s", sl->token_opt);
	else if (sl_fetch_token(sl))
		goto out;
	if (sl->state_opt && strlen(sl->state_opt) > 200) {
		fprintf(stderr, "swarmload: --state-dir: at most 200 characters\n");
		goto out;
	}
	if (sl->state_opt) {
		snprintf(sl->dir, sizeof sl->dir, "%s", sl->state_opt);
		if (mkdir(sl->dir, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "swarmload: --state-dir %s: %s\n", sl->dir,
				strerror(errno));
			goto out;
		}
	} else {
		/* tmpfs when there is one: N machines' fsyncs, each on its own
		 * disk, are not N fsyncs in a row on one thread's disk (on
		 * /tmp, 1,000 agents took 12.8 s to start 10,000 containers,
		 * 2.6 s on /dev/shm, the managers unchanged) */
		struct stat st;
		snprintf(sl->dir, sizeof sl->dir, "%s/swarmload-XXXXXX",
			 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
					 access("/dev/shm", W_OK) == 0
				 ? "/dev/shm"
				 : "/tmp");
		if (!mkdtemp(sl->dir)) {
			fprintf(stderr, "swarmload: mkdtemp: %s\n", strerror(errno));
			goto out;
		}
		sl->dir_made = true;
	}
	/* --procs: the processes share the counts and the control thread's
	 * asks; each forked one runs its share of the agents (own open-file
	 * table: the limit is per process) until told to stop */
	sl->sh_bytes = sizeof *sl->sh + (size_t)sl->kill_agents * sizeof(uint64_t);
	sl->sh = mmap(NULL, sl->sh_bytes, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sl->sh == MAP_FAILED) {
		fprintf(stderr, "swarmload: mmap: %s\n", strerror(errno));
		sl->sh = NULL;
		goto out_dir;
	}
	for (unsigned k = 1; k < sl->procs; k++) {
		pid_t parent = getpid(), pid;
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0) {
			fprintf(stderr, "swarmload: fork: %s\n", strerror(errno));
			atomic_store(&sl->sh->stop, 1);
			goto out_kids;
		}
		if (pid == 0) {
			/* a share's process dies with the first one */
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
				_exit(1);
			exit(sl_share_main(sl, k));
		}
		sl->kids[k] = pid;
		if (sl->watch_count < SL_WATCH_MAX) { /* its CPU, memory, descriptors */
			snprintf(sl->watch[sl->watch_count].name,
				 sizeof sl->watch[0].name, "swarmload-%u", k);
			sl->watch[sl->watch_count++].pid = pid;
		}
	}
	rc = sl_share_main(sl, 0);
out_kids:
	for (unsigned k = 1; k < sl->procs; k++) {
		int st;
		if (sl->kids[k] <= 0)
			continue;
		while (waitpid(sl->kids[k], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr,
				"swarmload: the process of share %u (pid %d) failed "
				"(status %d)\n",
				k, (int)sl->kids[k],
				WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
			rc = 1;
		}
	}
	free(sl->dead_ids);
	munmap(sl->sh, sl->sh_bytes);
out_dir:
	if (sl->dir_made && rc == 0)
		sl_rm_tree(sl->dir);
	else if (rc != 0)
		fprintf(stderr, "swarmload: state and log kept in %s\n", sl->dir);
out:
	free(sl->join_buf);
	return rc;
}
