/* swarmd: the cswarm daemon — one node of a cluster in the real world: the
 * node program (agent, and manager when the node is one) on a libuv env
 * (net/uvenv), Docker as the executor (net/docker), and for managers the
 * control socket swarmctl talks to (net/ctlsock) and the Docker Engine API
 * socket the docker CLI talks to (net/dockerapi).
 *
 *   swarmd --state-dir DIR --listen-addr HOST:PORT [--advertise-addr HOST:PORT]
 *          [--control-socket PATH] [--join-addr HOST:PORT --join-token TOKEN]
 *          [--hostname NAME] [--docker-socket PATH] [--cpus N] [--memory SIZE]
 *          [--log-level debug|info|warn|error]
 *
 * Without --join-addr the first start initialises a new cluster and makes
 * this node its first manager; with a manager token it joins as a manager,
 * with a worker token as a worker. What a start decided (role, raft id, the
 * managers to ask) is kept in DIR/swarmd.db, so a restart needs no join
 * flags. SIGTERM and SIGINT stop the daemon cleanly; containers keep
 * running and the next start adopts them. A promoted or demoted node
 * restarts itself (exec) as its new role. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include "core/backup.h"
#include "core/control_rpc.h"
#include "core/errors.h"
#include "core/limits.h"
#include "core/node.h"
#include "core/pki.h"
#include "net/ctlsock.h"
#include "net/docker.h"
#include "net/crypttun.h"
#include "net/dataplane.h"
#include "net/dockerapi.h"
#include "net/metricsd.h"
#include "net/record.h"
#include "net/uvenv.h"

#define SWARMD_VERSION	    "0.1.0"
#define SWARMD_MANAGERS_MAX 16
/* A durable write failed (env exit): start it again (a full disk: once
 * there is room). 1 is a refusal that retrying does not fix. */
#define SWARMD_EXIT_FATAL_IO 3

static const char swarmd_usage[] =
	"usage: swarmd --state-dir DIR --listen-addr HOST:PORT [options]\n"
	"\n"
	"Runs one cswarm node. Without --join-addr, the first start creates a new\n"
	"cluster with this node as its first manager. With --join-addr and a join\n"
	"token, the node joins an existing cluster: as a manager with the manager\n"
	"token, as a worker with the worker token (`swarmctl cluster join-token`).\n"
	"Later starts read the state directory and need no join flags.\n"
	"\n"
	"options:\n"
	"  --state-dir DIR          where the node keeps its state (created 0700)\n"
	"  --listen-addr HOST:PORT  address for other nodes (IPv4)\n"
	"  --advertise-addr H:P     address other nodes use (default: listen addr)\n"
	"  --control-socket PATH    managers: unix socket for swarmctl\n"
	"                           (default: DIR/swarmd.sock)\n"
	"  --docker-api-socket PATH managers: unix socket serving the Docker\n"
	"                           Engine API's swarm part to the docker CLI\n"
	"                           (default: DIR/docker.sock)\n"
	"  --metrics-addr HOST:PORT serve Prometheus metrics at\n"
	"                           http://HOST:PORT/metrics (default: none;\n"
	"                           the text says counts, not secrets: still,\n"
	"                           bind it where only your scraper reaches)\n"
	"  --join-addr HOST:PORT    a manager of the cluster to join\n"
	"  --join-token TOKEN       the cluster's worker or manager join token\n"
	"                           (shows in ps: prefer the next two)\n"
	"  --join-token-file FILE   read the token from FILE's first line\n"
	"  (environment)            SWARMD_JOIN_TOKEN=TOKEN, when neither flag\n"
	"  --unlock-key-file FILE   managers with autolock: the unlock key (else\n"
	"                           the manager waits for `swarmctl node unlock`)\n"
	"  --hostname NAME          the node's name (default: the machine's)\n"
	"  --docker-socket PATH     Docker Engine API socket\n"
	"                           (default: DOCKER_HOST=unix://... or\n"
	"                           /var/run/docker.sock)\n"
	"  --cpus N                 CPUs offered to tasks (default: online CPUs)\n"
	"  --memory SIZE            memory offered to tasks, e.g. 4G (default: all)\n"
	"  --log-level LEVEL        debug, info, warn or error (default info)\n"
	"  --default-addr-pool CIDR creating a cluster: where networks without\n"
	"                           --subnet get theirs (default 10.0.0.0/8)\n"
	"  --default-addr-pool-mask-len N  creating a cluster: their prefix\n"
	"                           length, 16..30 (default 24)\n"
	"  --force-new-cluster      disaster recovery, on a manager whose cluster\n"
	"                           lost its quorum for good: start a new cluster\n"
	"                           of this manager alone, keeping its store;\n"
	"                           other managers join again (fresh state dirs);\n"
	"                           once: refused again until a start without it\n"
	"  --restore FILE           start a new one-manager cluster from a backup\n"
	"                           (`swarmctl cluster backup`) on an empty state\n"
	"                           dir; other nodes join again\n"
	"  --data-plane MODE        auto, on or off (default auto): realise\n"
	"                           overlay networks on this node (a bridge and\n"
	"                           a VXLAN device per network, over the\n"
	"                           advertised address); auto: where the kernel\n"
	"                           and our privileges allow it and the address\n"
	"                           is not a loopback one; on: refuse to start\n"
	"                           without it; off: tasks on networks are\n"
	"                           rejected here\n"
	"  --vxlan-port N           the VXLAN UDP port (default 4789)\n"
	"  --crypt-port N           the UDP port of encrypted overlays' tunnel\n"
	"                           (default 4788; AES-256-GCM in swarmd, on\n"
	"                           every node of the cluster alike)\n"
	"  --record FILE            record what crosses this node's env seam\n"
	"                           into FILE (appended, mode 0600: it holds\n"
	"                           the node's tokens), for `swarmsim replay`\n"
	"  --help, --version\n"
	"\n"
	"Logs are logfmt lines on stderr. SIGTERM or SIGINT stops the daemon;\n"
	"containers keep running and the next start adopts them.\n"
	"exit status: 0 stopped by a signal, 1 failed (a refused join token, a\n"
	"corrupt state directory: retrying does not help), 2 bad usage, 3 a\n"
	"write to the state directory failed (a full disk, an I/O error): the\n"
	"daemon stopped rather than carry on; start it again once the disk is\n"
	"right, and it goes on from what the disk holds\n";

struct swarmd_opts {
	const char *state_dir, *listen_addr, *advertise_addr, *control_socket;
	const char *docker_api_socket;
	const char *metrics_addr;
	const char *join_addr, *join_token, *hostname, *docker_socket;
	const char *join_token_file;
	char join_token_buf[256]; /* read from the file or the environment */
	const char *unlock_key_file;
	char unlock_key_buf[128]; /* autolock: read from the file */
	uint64_t millicpus, memory_bytes;
	enum env_log_level log_level;
	/* issue 15: the cluster's default address pool (0: the default) */
	uint32_t addr_pool, addr_pool_len, addr_pool_mask_len;
	/* issue 20: disaster recovery */
	bool force_new_cluster;
	const char *restore_file;
	/* issue 17: the data plane: "auto", "on" or "off"; the VXLAN port */
	const char *data_plane;
	const char *record_file; /* issue 19: --record FILE */
	uint16_t vxlan_port;
	uint16_t crypt_port; /* issue 17 encryption: 0: CRYPTTUN_PORT_DEFAULT */
};

/* What the state directory remembers between starts. */
struct swarmd_state {
	bool exists;
	Cs__NodeRole role;
	uint64_t raft_id;
	bool bootstrap; /* this node created the cluster */
	char join_token[160];
	/* the tokens a new cluster starts with (its first manager draws them) */
	char boot_worker_token[160], boot_manager_token[160];
	char managers[SWARMD_MANAGERS_MAX][LIMIT_ADDR_BYTES_MAX];
	size_t manager_count;
	/* issue 20: the last start forced a new cluster (--force-new-cluster);
	 * cleared by a start without the flag */
	bool forced;
};

struct swarmd {
	struct swarmd_opts opts;
	struct swarmd_state st;
	char **argv; /* for the exec of a role change */
	uv_loop_t loop;
	uv_signal_t sigterm, sigint;
	uv_timer_t log_timer;
	uint64_t log_id;       /* the node id the log lines carry */
	uv_timer_t stop_timer; /* stops outside the node's own callbacks */
	struct uvenv *uv;
	struct docker *docker;
	struct dataplane *dp; /* issue 17: NULL: no data plane */
	struct crypttun *ct;  /* issue 17 encryption: NULL: none */
	struct ctlsock *ctl;
	struct dockerapi *dapi;
	struct dockerapi_backend dapi_be;
	struct metricsd *metrics;
	struct record *rec; /* --record: the node's env is recorded */
	struct sqlite3 *db;
	/* the node program's configuration (borrowed by it for its life) */
	struct manager_cfg mcfg;
	struct manager_peer self_peer;
	const char *manager_ptrs[SWARMD_MANAGERS_MAX];
	struct node_cfg ncfg;
	char hostname[256];
	void *node;
	int exit_code;
	bool reexec;
	char state_error[4096 + 256]; /* why swarmd.db could not be read, or "" */
	bool stopping;
	/* what the node says of itself (issue 14): uname's system and
	 * machine, its Docker daemon's labels (GET /info, before the node
	 * starts) */
	struct agent_desc desc;
	char platform_os[sizeof((struct utsname *)0)->sysname];
	char platform_arch[sizeof((struct utsname *)0)->machine];
	Cs__Label *engine_labels;
	Cs__Label **engine_label_ptrs;
	size_t engine_label_alloc; /* entries of engine_labels */
	struct backup restore;	   /* --restore: the backup read (cfg borrows it) */
	char files_dir[4096 + 16]; /* issue 20: secrets' tmpfs (docker_cfg) */
};

__attribute__((format(printf, 1, 2))) static void swarmd_die_usage(const char *fmt, ...)
{
	va_list ap;
	fputs("swarmd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see swarmd --help)\n", stderr);
	exit(2);
}

/* ---------------------------------------------------------------- flags */

static uint64_t swarmd_parse_size(const char *flag, const char *s)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		swarmd_die_usage("%s '%s': expected a size such as 512M or 4G", flag, s);
	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024.0;
		end++;
		break;
	case 'm':
	case 'M':
		v *= 1024.0 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		end++;
		break;
	case 't':
	case 'T':
		v *= 1024.0 * 1024 * 1024 * 1024;
		end++;
		break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' ? 1 : 0;
	if (*end == 'B')
		end++;
	if (*end)
		swarmd_die_usage("%s '%s': expected a size such as 512M or 4G", flag, s);
	return (uint64_t)v;
}

/* --default-addr-pool CIDR: an IPv4 subnet a.b.c.d/N, N 8..30, no host
 * bits (SwarmKit's default is 10.0.0.0/8). */
static void swarmd_parse_pool(const char *v, struct swarmd_opts *o)
{
	unsigned a[4], len;
	char tail;

	if (sscanf(v, "%u.%u.%u.%u/%u%c", &a[0], &a[1], &a[2], &a[3], &len, &tail) != 5 ||
	    a[0] > 255 || a[1] > 255 || a[2] > 255 || a[3] > 255 || len < 8 ||
	    len > LIMIT_NET_PREFIX_MAX)
		swarmd_die_usage("--default-addr-pool '%s': expected an IPv4 subnet "
				 "a.b.c.d/N with N 8..%u, such as 10.20.0.0/16",
				 v, LIMIT_NET_PREFIX_MAX);
	o->addr_pool = a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3];
	o->addr_pool_len = len;
	if (o->addr_pool & ~(~0u << (32 - len)))
		swarmd_die_usage("--default-addr-pool '%s': host bits set after /%u "
				 "(expected the subnet's first address)",
				 v, len);
}

/* --default-addr-pool-mask-len N: N 16..30 (SwarmKit's default 24). */
static void swarmd_parse_mask_len(const char *v, struct swarmd_opts *o)
{
	unsigned n;
	char tail;

	if (sscanf(v, "%u%c", &n, &tail) != 1 || n < LIMIT_NET_PREFIX_MIN ||
	    n > LIMIT_NET_PREFIX_MAX || v[0] < '0' || v[0] > '9')
		swarmd_die_usage("--default-addr-pool-mask-len '%s': expected a prefix "
				 "length %u..%u",
				 v, LIMIT_NET_PREFIX_MIN, LIMIT_NET_PREFIX_MAX);
	o->addr_pool_mask_len = n;
}

static void swarmd_parse(int argc, char **argv, struct swarmd_opts *o)
{
	memset(o, 0, sizeof *o);
	o->log_level = ENV_LOG_INFO;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(swarmd_usage, stdout);
			exit(0);
		}
		if (strcmp(a, "--version") == 0) {
			printf("swarmd %s\n", SWARMD_VERSION);
			exit(0);
		}
#define SWARMD_FLAG(name, field)                                    \
	if (strcmp(a, name) == 0) {                                 \
		if (!v)                                             \
			swarmd_die_usage("%s needs a value", name); \
		o->field = v;                                       \
		i++;                                                \
		continue;                                           \
	}
		SWARMD_FLAG("--state-dir", state_dir)
		SWARMD_FLAG("--listen-addr", listen_addr)
		SWARMD_FLAG("--advertise-addr", advertise_addr)
		SWARMD_FLAG("--control-socket", control_socket)
		SWARMD_FLAG("--docker-api-socket", docker_api_socket)
		SWARMD_FLAG("--metrics-addr", metrics_addr)
		SWARMD_FLAG("--join-addr", join_addr)
		SWARMD_FLAG("--join-token", join_token)
		SWARMD_FLAG("--join-token-file", join_token_file)
		SWARMD_FLAG("--unlock-key-file", unlock_key_file)
		SWARMD_FLAG("--hostname", hostname)
		SWARMD_FLAG("--docker-socket", docker_socket)
		SWARMD_FLAG("--restore", restore_file)
		SWARMD_FLAG("--data-plane", data_plane)
		SWARMD_FLAG("--record", record_file)
		if (strcmp(a, "--vxlan-port") == 0 || strcmp(a, "--crypt-port") == 0) {
			char *end;
			unsigned long n;
			if (!v)
				swarmd_die_usage("%s needs a value", a);
			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno || end == v || *end || n < 1 || n > 65535)
				swarmd_die_usage("%s '%s': expected a UDP port "
						 "1..65535",
						 a, v);
			if (a[2] == 'v')
				o->vxlan_port = (uint16_t)n;
			else
				o->crypt_port = (uint16_t)n;
			i++;
			continue;
		}
#undef SWARMD_FLAG
		if (strcmp(a, "--force-new-cluster") == 0) {
			o->force_new_cluster = true;
			continue;
		}
		if (strcmp(a, "--cpus") == 0) {
			char *end;
			double c;
			if (!v)
				swarmd_die_usage("--cpus needs a value");
			c = strtod(v, &end);
			if (*end || c <= 0 || c > 4096)
				swarmd_die_usage("--cpus '%s': expected a number of CPUs "
						 "such as 2 or 0.5",
						 v);
			o->millicpus = (uint64_t)(c * 1000.0);
			i++;
			continue;
		}
		if (strcmp(a, "--memory") == 0) {
			if (!v)
				swarmd_die_usage("--memory needs a value");
			o->memory_bytes = swarmd_parse_size("--memory", v);
			i++;
			continue;
		}
		if (strcmp(a, "--default-addr-pool") == 0) {
			if (!v)
				swarmd_die_usage("--default-addr-pool needs a value");
			swarmd_parse_pool(v, o);
			i++;
			continue;
		}
		if (strcmp(a, "--default-addr-pool-mask-len") == 0) {
			if (!v)
				swarmd_die_usage(
					"--default-addr-pool-mask-len needs a value");
			swarmd_parse_mask_len(v, o);
			i++;
			continue;
		}
		if (strcmp(a, "--log-level") == 0) {
			if (!v)
				swarmd_die_usage("--log-level needs a value");
			if (strcmp(v, "debug") == 0)
				o->log_level = ENV_LOG_DEBUG;
			else if (strcmp(v, "info") == 0)
				o->log_level = ENV_LOG_INFO;
			else if (strcmp(v, "warn") == 0)
				o->log_level = ENV_LOG_WARN;
			else if (strcmp(v, "error") == 0)
				o->log_level = ENV_LOG_ERROR;
			else
				swarmd_die_usage(
					"--log-level '%s': expected debug, info, "
					"warn or error",
					v);
			i++;
			continue;
		}
		swarmd_die_usage("unknown flag '%s'", a);
	}
	if (!o->state_dir)
		swarmd_die_usage("--state-dir is required");
	if (!o->data_plane)
		o->data_plane = "auto";
	if (strcmp(o->data_plane, "auto") != 0 && strcmp(o->data_plane, "on") != 0 &&
	    strcmp(o->data_plane, "off") != 0)
		swarmd_die_usage("--data-plane '%s': expected auto, on or off",
				 o->data_plane);
	if (!o->listen_addr)
		swarmd_die_usage("--listen-addr is required");
	if ((o->addr_pool_len || o->addr_pool_mask_len) && o->join_addr)
		swarmd_die_usage("--default-addr-pool and --default-addr-pool-mask-len "
				 "are for creating a cluster, not with --join-addr");
	if (o->addr_pool_mask_len &&
	    o->addr_pool_mask_len <
		    (o->addr_pool_len ? o->addr_pool_len : LIMIT_NET_POOL_LEN))
		swarmd_die_usage(
			"--default-addr-pool-mask-len %u: shorter than the "
			"pool's /%u (each network's subnet lies inside the pool)",
			o->addr_pool_mask_len,
			o->addr_pool_len ? o->addr_pool_len : LIMIT_NET_POOL_LEN);
	if (o->addr_pool_len && !o->addr_pool_mask_len &&
	    o->addr_pool_len > LIMIT_NET_SUBNET_LEN)
		swarmd_die_usage("--default-addr-pool /%u is smaller than the default "
				 "/%u subnets: give --default-addr-pool-mask-len",
				 o->addr_pool_len, LIMIT_NET_SUBNET_LEN);
	if (o->restore_file && (o->join_addr || o->join_token || o->join_token_file))
		swarmd_die_usage("--restore starts a new cluster: not with --join-addr "
				 "or a join token");
	if (o->restore_file && o->force_new_cluster)
		swarmd_die_usage("--restore and --force-new-cluster: one or the other");
	/* the token: a file or the environment keep it out of `ps` */
	if (o->join_token && o->join_token_file)
		swarmd_die_usage("--join-token and --join-token-file: one or the other");
	if (o->join_token)
		fputs("swarmd: warning: --join-token shows in ps to every user of this "
		      "machine; prefer --join-token-file FILE or SWARMD_JOIN_TOKEN\n",
		      stderr);
	if (o->join_token_file) {
		FILE *f = fopen(o->join_token_file, "r");
		if (!f)
			swarmd_die_usage("--join-token-file %s: %s", o->join_token_file,
					 strerror(errno));
		if (!fgets(o->join_token_buf, sizeof o->join_token_buf, f))
			o->join_token_buf[0] = '\0';
		fclose(f);
		o->join_token_buf[strcspn(o->join_token_buf, "\r\n")] = '\0';
		if (!o->join_token_buf[0])
			swarmd_die_usage(
				"--join-token-file %s: empty (expected the token "
				"on its first line)",
				o->join_token_file);
		o->join_token = o->join_token_buf;
	} else if (!o->join_token && o->join_addr && getenv("SWARMD_JOIN_TOKEN")) {
		snprintf(o->join_token_buf, sizeof o->join_token_buf, "%s",
			 getenv("SWARMD_JOIN_TOKEN"));
		o->join_token = o->join_token_buf;
	}
	if (o->unlock_key_file) {
		FILE *f = fopen(o->unlock_key_file, "r");
		if (!f)
			swarmd_die_usage("--unlock-key-file %s: %s", o->unlock_key_file,
					 strerror(errno));
		if (!fgets(o->unlock_key_buf, sizeof o->unlock_key_buf, f))
			o->unlock_key_buf[0] = '\0';
		fclose(f);
		o->unlock_key_buf[strcspn(o->unlock_key_buf, "\r\n")] = '\0';
		if (!o->unlock_key_buf[0])
			swarmd_die_usage("--unlock-key-file %s: empty (expected the key "
					 "SWMKEY-1-... on its first line)",
					 o->unlock_key_file);
	}
	/* a join address without a token (or the reverse) is a mistake only
	 * on a first start: a node with state needs neither, and a unit that
	 * kept --join-addr must still start (see main) */
	{
		struct sockaddr_in sa;
		char err[256];
		if (uvenv_parse_addr(o->listen_addr, &sa, err, sizeof err))
			swarmd_die_usage("--listen-addr: %s", err);
		if (o->advertise_addr &&
		    uvenv_parse_addr(o->advertise_addr, &sa, err, sizeof err))
			swarmd_die_usage("--advertise-addr: %s", err);
		if (o->join_addr && uvenv_parse_addr(o->join_addr, &sa, err, sizeof err))
			swarmd_die_usage("--join-addr: %s", err);
	}
}

/* ---------------------------------------------------------------- state */

static int swarmd_db_exec(struct swarmd *d, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "swarmd: state: %s\n", msg ? msg : "sqlite error");
		sqlite3_free(msg);
		return CS_ESTORAGE;
	}
	return 0;
}

static int swarmd_state_load(struct swarmd *d)
{
	sqlite3_stmt *q;
	struct swarmd_state *s = &d->st;
	int rc;

	if (swarmd_db_exec(d, "CREATE TABLE IF NOT EXISTS swarmd (key TEXT PRIMARY KEY, "
			      "value TEXT NOT NULL)"))
		return CS_ESTORAGE;
	if (sqlite3_prepare_v2(d->db, "SELECT key, value FROM swarmd ORDER BY key", -1,
			       &q, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(q, 0);
		const char *v = (const char *)sqlite3_column_text(q, 1);
		if (!k || !v)
			continue;
		s->exists = true;
		if (strcmp(k, "role") == 0 && strcmp(v, "manager") != 0 &&
		    strcmp(v, "worker") != 0) {
			snprintf(
				d->state_error, sizeof d->state_error,
				"%s/swarmd.db: role '%.32s' is neither manager nor worker",
				d->opts.state_dir, v);
			sqlite3_finalize(q);
			return CS_ECORRUPT;
		}
		if (strcmp(k, "role") == 0)
			s->role = strcmp(v, "manager") == 0
					  ? CS__NODE_ROLE__NODE_ROLE_MANAGER
					  : CS__NODE_ROLE__NODE_ROLE_WORKER;
		else if (strcmp(k, "raft_id") == 0)
			s->raft_id = strtoull(v, NULL, 16);
		else if (strcmp(k, "bootstrap") == 0)
			s->bootstrap = strcmp(v, "1") == 0;
		else if (strcmp(k, "forced_new_cluster") == 0)
			s->forced = strcmp(v, "1") == 0;
		else if (strcmp(k, "join_token") == 0)
			snprintf(s->join_token, sizeof s->join_token, "%s", v);
		else if (strcmp(k, "boot_worker_token") == 0) /* unused */
			snprintf(s->boot_worker_token, sizeof s->boot_worker_token, "%s",
				 v);
		else if (strcmp(k, "boot_manager_token") == 0)
			snprintf(s->boot_manager_token, sizeof s->boot_manager_token,
				 "%s", v);
		else if (strncmp(k, "manager.", 8) == 0 &&
			 s->manager_count < SWARMD_MANAGERS_MAX)
			snprintf(s->managers[s->manager_count++], LIMIT_ADDR_BYTES_MAX,
				 "%s", v);
	}
	/* an error is not the end of the rows: read as "no state", a broken
	 * file would have a new cluster made over the old one */
	if (rc != SQLITE_DONE) {
		snprintf(d->state_error, sizeof d->state_error, "%s/swarmd.db: %s",
			 d->opts.state_dir, sqlite3_errmsg(d->db));
		sqlite3_finalize(q);
		return CS_ESTORAGE;
	}
	sqlite3_finalize(q);
	return 0;
}

static int swarmd_state_put(struct swarmd *d, const char *key, const char *value)
{
	sqlite3_stmt *q;
	int rc;
	if (sqlite3_prepare_v2(d->db,
			       "INSERT OR REPLACE INTO swarmd (key, value) VALUES (?, ?)",
			       -1, &q, NULL) != SQLITE_OK)
		return CS_ESTORAGE;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : CS_ESTORAGE;
}

/* Writes the whole state in one transaction (nothing half-written). */
static int swarmd_state_save(struct swarmd *d)
{
	struct swarmd_state *s = &d->st;
	char buf[32];
	int rv = 0;

	if (swarmd_db_exec(d, "BEGIN IMMEDIATE"))
		return CS_ESTORAGE;
	rv |= swarmd_db_exec(d, "DELETE FROM swarmd WHERE key LIKE 'manager.%'");
	rv |= swarmd_state_put(d, "role",
			       s->role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager"
									   : "worker");
	snprintf(buf, sizeof buf, "%016" PRIx64, s->raft_id);
	rv |= swarmd_state_put(d, "raft_id", buf);
	rv |= swarmd_state_put(d, "bootstrap", s->bootstrap ? "1" : "0");
	rv |= swarmd_state_put(d, "forced_new_cluster", s->forced ? "1" : "0");
	rv |= swarmd_state_put(d, "join_token", s->join_token);
	/* tokens of a cluster's first start (before issue 13): gone */
	rv |= swarmd_state_put(d, "boot_worker_token", "");
	rv |= swarmd_state_put(d, "boot_manager_token", "");
	for (size_t i = 0; i < s->manager_count; i++) {
		snprintf(buf, sizeof buf, "manager.%02zu", i);
		rv |= swarmd_state_put(d, buf, s->managers[i]);
	}
	if (rv) {
		swarmd_db_exec(d, "ROLLBACK");
		return CS_ESTORAGE;
	}
	return swarmd_db_exec(d, "COMMIT");
}

static void swarmd_add_manager(struct swarmd_state *s, const char *addr)
{
	if (!addr || !*addr || strlen(addr) >= LIMIT_ADDR_BYTES_MAX)
		return;
	for (size_t i = 0; i < s->manager_count; i++)
		if (strcmp(s->managers[i], addr) == 0)
			return;
	if (s->manager_count < SWARMD_MANAGERS_MAX)
		snprintf(s->managers[s->manager_count++], LIMIT_ADDR_BYTES_MAX, "%s",
			 addr);
}

/* ---------------------------------------------------------------- hooks */

static void swarmd_stop(struct swarmd *d, int code);

static void swarmd_stop_cb(uv_timer_t *t)
{
	struct swarmd *d = t->data;
	swarmd_stop(d, d->exit_code);
}

/* Asked from inside the node's callbacks: the node cannot be freed under
 * its own feet, so the stop runs from the loop next. */
static void swarmd_stop_later(struct swarmd *d, int code)
{
	if (d->stopping)
		return;
	d->exit_code = code;
	uv_timer_start(&d->stop_timer, swarmd_stop_cb, 0, 0);
}

/* The node cannot go on (env exit: a durable write failed). Exit 3, not 1:
 * a supervisor starts the daemon again (the unit refuses to retry 1, a
 * refusal that retrying does not fix), on what its disk really holds. */
static void swarmd_on_exit(void *data, const char *why)
{
	struct swarmd *d = data;
	fprintf(stderr, "swarmd: fatal: %s\n", why);
	swarmd_stop_later(d, SWARMD_EXIT_FATAL_IO);
}

static void swarmd_on_refused(void *data, const char *why)
{
	struct swarmd *d = data;
	fprintf(stderr, "swarmd: %s\n", why);
	swarmd_stop_later(d, 1);
}

/* The cluster wants this node to be another role: remember it, with the
 * managers this node knows, and start again as that role. */
static void swarmd_on_role(void *data, Cs__NodeRole desired)
{
	struct swarmd *d = data;
	struct manager *m = d->node ? node_manager(d->node) : NULL;

	if (m) {
		const struct store *st = manager_store(m);
		for (const Cs__Node *n = store_node_next(st, NULL); n;
		     n = store_node_next(st, n))
			if (n->manager_status && n->manager_status->addr &&
			    n->desired_role == CS__NODE_ROLE__NODE_ROLE_MANAGER &&
			    strcmp(n->manager_status->addr, uvenv_addr(d->uv)) != 0)
				swarmd_add_manager(&d->st, n->manager_status->addr);
	}
	d->st.role = desired;
	if (desired == CS__NODE_ROLE__NODE_ROLE_MANAGER) {
		/* a manager's raft id is its node id (its certificate's) */
		struct agent *a = d->node ? node_agent(d->node) : NULL;
		d->st.raft_id = a ? agent_node_id(a) : 0;
		d->st.bootstrap = false;
	}
	if (swarmd_state_save(d)) {
		env_logf(uvenv_env(d->uv), ENV_LOG_ERROR,
			 "msg=\"cannot record the new role\" state_dir=%s",
			 d->opts.state_dir);
		return;
	}
	env_logf(uvenv_env(d->uv), ENV_LOG_INFO, "msg=\"restarting as %s\"",
		 desired == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
	d->reexec = true;
	swarmd_stop_later(d, 0);
}

static struct control_rpc *swarmd_get_rpc(void *data)
{
	struct swarmd *d = data;
	return d->node ? node_control(d->node) : NULL;
}

/* The Docker API's backend: the control RPC, as the control socket's. */
static int swarmd_dapi_call(void *data, const Cs__ControlRequest *req, control_rpc_cb cb,
			    void *cb_data)
{
	struct control_rpc *rpc = swarmd_get_rpc(data);
	struct swarmd *d = data;
	if (rpc && d->rec) /* issue 19: a recorded input */
		return record_control_call(d->rec, rpc, req, cb, cb_data);
	return rpc ? control_rpc_call(rpc, req, cb, cb_data) : CS_ENOTSUP;
}

/* The control socket's way to the control RPC: recorded with --record. */
static int swarmd_ctl_call(void *data, struct control_rpc *rpc,
			   const Cs__ControlRequest *req, control_rpc_cb cb,
			   void *cb_data)
{
	struct swarmd *d = data;
	if (d->rec)
		return record_control_call(d->rec, rpc, req, cb, cb_data);
	return control_rpc_call(rpc, req, cb, cb_data);
}

static uint64_t swarmd_dapi_self(void *data)
{
	struct swarmd *d = data;
	struct agent *a = d->node ? node_agent(d->node) : NULL;
	return a ? agent_node_id(a) : 0;
}

/* Issue 18: a manager keeps a connection open to every other member of
 * the Raft group (uvenv_keep_peers): followers send each other nothing
 * until an election, and a vote request dialled then waited behind the
 * dead leader's thousands of agents at the other follower's listener. */
static void swarmd_keep_members(struct swarmd *d)
{
	struct manager *m = d->node ? node_manager(d->node) : NULL;
	const char *addrs[LIMIT_MANAGERS_MAX] = {0};
	size_t n = m ? manager_member_addrs(m, addrs, LIMIT_MANAGERS_MAX) : 0;

	if (n > LIMIT_MANAGERS_MAX)
		n = LIMIT_MANAGERS_MAX; /* the first ones; the rest dial on use */
	(void)uvenv_keep_peers(d->uv, addrs, n); /* a bad address: skipped */
}

/* Logs carry the node id, the one its certificate names once it has one
 * (a joiner's drawn id until then). Every half second, with the members
 * kept connected. */
static void swarmd_log_tick(uv_timer_t *t)
{
	struct swarmd *d = t->data;
	struct agent *a = d->node ? node_agent(d->node) : NULL;

	swarmd_keep_members(d);
	if (a && agent_node_id(a) && agent_node_id(a) != d->log_id) {
		char id[17];
		d->log_id = agent_node_id(a);
		snprintf(id, sizeof id, "%016" PRIx64, d->log_id);
		uvenv_set_log_node(d->uv, id);
	}
}

static void swarmd_on_signal(uv_signal_t *s, int signum)
{
	struct swarmd *d = s->data;
	env_logf(uvenv_env(d->uv), ENV_LOG_INFO, "msg=\"stopping\" signal=%s",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT");
	swarmd_stop(d, 0);
}

/* The metrics a scrape reads: the manager's (Raft, store, and its leader
 * components' while it leads) and the agent's. */
static void swarmd_metrics(void *data, struct metrics_buf *out)
{
	struct swarmd *d = data;
	struct manager *m = d->node ? node_manager(d->node) : NULL;
	struct agent *a = d->node ? node_agent(d->node) : NULL;

	metrics_family(out, "cswarm_node_info", METRICS_GAUGE,
		       "This node: its role and version (always 1).");
	{
		char labels[160];
		snprintf(labels, sizeof labels, "role=\"%s\",version=\"%s\"",
			 d->st.role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager"
									: "worker",
			 SWARMD_VERSION);
		metrics_sample(out, "cswarm_node_info", labels, 1);
	}
	if (m)
		manager_metrics(m, out);
	if (a)
		agent_metrics(a, out);
}

/* Stops everything: the node program dies as a process would (its
 * containers keep running), then every handle closes and the loop ends. */
static void swarmd_stop(struct swarmd *d, int code)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->exit_code = code;
	if (d->ctl) {
		ctlsock_close(d->ctl);
		d->ctl = NULL;
	}
	if (d->dapi) {
		dockerapi_close(d->dapi);
		d->dapi = NULL;
	}
	if (d->metrics) {
		metricsd_close(d->metrics);
		d->metrics = NULL;
	}
	if (d->node) {
		if (d->rec)
			record_program_stop(d->rec, &node_program, d->node);
		else
			node_program.stop(d->node);
		d->node = NULL;
	}
	record_close(d->rec);
	d->rec = NULL;
	uv_signal_stop(&d->sigterm);
	uv_signal_stop(&d->sigint);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->log_timer, NULL);
	uv_close((uv_handle_t *)&d->stop_timer, NULL);
	uvenv_close(d->uv);
	d->uv = NULL;
	crypttun_close(d->ct); /* after the env: no net_set comes any more */
	d->ct = NULL;
	if (d->docker) {
		docker_close(d->docker);
		d->docker = NULL;
	}
}

/* ---------------------------------------------------------------- start */

/* Opens the data plane (issue 17) over the advertised (else listen)
 * address's IP, as --data-plane says. Returns 0 (d->dp set or NULL), or 1
 * when --data-plane on cannot have it (said on stderr). */
static int swarmd_data_plane(struct swarmd *d)
{
	const char *addr =
		d->opts.advertise_addr ? d->opts.advertise_addr : d->opts.listen_addr;
	struct dataplane_cfg cfg;
	char ip[64], err[256];
	size_t len = strcspn(addr, ":");
	int rv;

	d->dp = NULL;
	if (strcmp(d->opts.data_plane, "off") == 0)
		return 0;
	snprintf(ip, sizeof ip, "%.*s", (int)(len < sizeof ip ? len : sizeof ip - 1),
		 addr);
	if (strcmp(ip, "localhost") == 0)
		snprintf(ip, sizeof ip, "127.0.0.1");
	memset(&cfg, 0, sizeof cfg);
	cfg.underlay_ip = ip;
	cfg.vxlan_port = d->opts.vxlan_port;
	rv = dataplane_open(&cfg, &d->dp, err, sizeof err);
	if (rv == 0) {
		/* the encrypted overlays' tunnel (a UDP port of its own): without
		 * it, encrypted networks are refused here, never carried clear */
		struct crypttun_cfg ccfg;
		memset(&ccfg, 0, sizeof ccfg);
		ccfg.underlay_ip = ip;
		ccfg.port = d->opts.crypt_port;
		ccfg.loop = &d->loop;
		rv = crypttun_open(&ccfg, &d->ct, err, sizeof err);
		if (rv) {
			d->ct = NULL;
			fprintf(stderr,
				"swarmd: no encrypted overlays on this node (their tasks "
				"are rejected here): %s\n",
				err[0] ? err : cs_strerror(rv));
		}
		return 0;
	}
	d->dp = NULL;
	if (strcmp(d->opts.data_plane, "on") == 0) {
		fprintf(stderr, "swarmd: --data-plane on: %s\n",
			err[0] ? err : cs_strerror(rv));
		return 1;
	}
	fprintf(stderr,
		"swarmd: no data plane on this node (tasks on networks are rejected "
		"here): %s\n",
		err[0] ? err : cs_strerror(rv));
	return 0;
}

static int swarmd_first_start(struct swarmd *d)
{
	struct swarmd_state *s = &d->st;
	struct env *env = uvenv_env(d->uv);

	if (!d->opts.join_addr) {
		/* the first leader makes the root CA and the tokens, and signs
		 * this manager's certificate (its agent waits for it) */
		s->role = CS__NODE_ROLE__NODE_ROLE_MANAGER;
		s->bootstrap = true;
	} else {
		uint8_t digest[ENV_DIGEST_BYTES];
		char secret[PKI_TOKEN_SECRET_BYTES], why[PKI_WHY_BYTES];
		if (pki_token_parse(d->opts.join_token, digest, secret, why)) {
			/* the token itself is a secret: not echoed */
			fprintf(stderr,
				"swarmd: --join-token: %s (expected SWMTKN-1-<digest>-<secret>; "
				"see swarmctl cluster join-token)\n",
				why);
			return CS_EINVAL;
		}
		/* a worker until the CA says otherwise: a manager token's
		 * certificate makes the node a manager (it restarts as one) */
		s->role = CS__NODE_ROLE__NODE_ROLE_WORKER;
		snprintf(s->join_token, sizeof s->join_token, "%s", d->opts.join_token);
		swarmd_add_manager(s, d->opts.join_addr);
	}
	if (s->role == CS__NODE_ROLE__NODE_ROLE_MANAGER)
		while (s->raft_id == 0)
			s->raft_id = env->ops->random_u64(env);
	return swarmd_state_save(d);
}

static void swarmd_resources(struct swarmd *d, uint64_t *millicpus, uint64_t *memory)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	*millicpus = d->opts.millicpus ? d->opts.millicpus
				       : (uint64_t)(cpus > 0 ? cpus : 1) * 1000;
	*memory = d->opts.memory_bytes ? d->opts.memory_bytes
				       : (uint64_t)(pages > 0 ? pages : 0) *
						 (uint64_t)(page > 0 ? page : 4096);
}

static int swarmd_start_node(struct swarmd *d)
{
	struct swarmd_state *s = &d->st;
	struct env *env = uvenv_env(d->uv);
	bool manager = s->role == CS__NODE_ROLE__NODE_ROLE_MANAGER;
	size_t agent_managers;
	int rv;

	memset(&d->ncfg, 0, sizeof d->ncfg);
	/* the join token is a secret: kept only until this node has a
	 * certificate (it joins again with one only if that expires) */
	{
		struct env_identity me;
		struct env_blob none = {NULL, 0};
		if (s->join_token[0] && env->ops->pki_info(env, &none, &me) == 0) {
			memset(s->join_token, 0, sizeof s->join_token);
			if (swarmd_state_save(d))
				return CS_ESTORAGE;
		}
	}
	/* a state dir from before certificates (issue 20: upgraded on start):
	 * the cluster's first manager kept its own manager token, of the old
	 * form, as a join token it never needs (it bootstraps; its
	 * certificate comes from its own CA): the agent refused it and the
	 * daemon exited 1 */
	if (s->bootstrap && s->join_token[0]) {
		memset(s->join_token, 0, sizeof s->join_token);
		if (swarmd_state_save(d))
			return CS_ESTORAGE;
		env_logf(env, ENV_LOG_INFO,
			 "msg=\"state upgraded: the first manager's join token of an "
			 "earlier format is forgotten\"");
	}
	d->ncfg.agent.desc = &d->desc;
	/* without a data plane (issue 17: --data-plane off, or auto where
	 * the kernel, our privileges or a loopback address refuse it) a task
	 * on a network is REJECTED with the reason rather than run without */
	d->ncfg.agent.no_data_plane = d->dp == NULL;
	if (manager) {
		manager_defaults(&d->mcfg);
		d->mcfg.raft_id = s->raft_id;
		d->mcfg.on_refused = swarmd_on_refused;
		d->mcfg.refused_data = d;
		d->mcfg.unlock_key =
			d->opts.unlock_key_buf[0] ? d->opts.unlock_key_buf : NULL;
		d->mcfg.force_new_cluster = d->opts.force_new_cluster;
		if (s->bootstrap && d->opts.restore_file) {
			/* a new cluster holding the backup's store; this
			 * manager's certificate from the backup's CA */
			d->mcfg.restore_store = d->restore.store;
			d->mcfg.restore_store_len = d->restore.store_len;
			d->mcfg.restore_index = d->restore.index;
			d->mcfg.restore_term = d->restore.term;
			d->mcfg.ca_cert = (struct env_blob){d->restore.ca_cert,
							    d->restore.ca_cert_len};
			d->mcfg.ca_key = (struct env_blob){d->restore.ca_key,
							   d->restore.ca_key_len};
			d->mcfg.cluster_id = d->restore.cluster_id;
		}
		if (s->bootstrap) {
			d->self_peer.raft_id = s->raft_id;
			d->self_peer.addr = uvenv_addr(d->uv);
			d->mcfg.voters = &d->self_peer;
			d->mcfg.voter_count = 1;
			/* used once, when the cluster record is first written */
			d->mcfg.default_addr_pool = d->opts.addr_pool;
			d->mcfg.default_addr_pool_len = d->opts.addr_pool_len;
			d->mcfg.default_subnet_len = d->opts.addr_pool_mask_len;
		}
		d->ncfg.manager = &d->mcfg;
	}
	for (size_t i = 0; i < s->manager_count; i++)
		d->manager_ptrs[i] = s->managers[i];
	if (manager && !s->bootstrap) {
		d->mcfg.join_addrs = d->manager_ptrs;
		d->mcfg.join_count = s->manager_count;
	}
	/* a manager's agent may ask its own manager too */
	agent_managers = s->manager_count;
	if (manager && agent_managers < SWARMD_MANAGERS_MAX)
		d->manager_ptrs[agent_managers++] = uvenv_addr(d->uv);
	d->ncfg.agent.hostname = d->hostname;
	d->ncfg.agent.role = s->role;
	swarmd_resources(d, &d->ncfg.agent.millicpus, &d->ncfg.agent.memory_bytes);
	d->ncfg.agent.managers = d->manager_ptrs;
	d->ncfg.agent.manager_count = agent_managers;
	d->ncfg.agent.join_token = s->join_token[0] ? s->join_token : NULL;
	d->ncfg.agent.raft_id = manager ? s->raft_id : 0;
	d->ncfg.agent.on_role = swarmd_on_role;
	d->ncfg.agent.on_refused = swarmd_on_refused;
	d->ncfg.agent.hook_data = d;
	if (d->opts.record_file) {
		char err[512];
		rv = record_open(d->opts.record_file, env, &d->ncfg, &d->rec, err,
				 sizeof err);
		if (rv) {
			fprintf(stderr, "swarmd: %s\n", err);
			return rv;
		}
		rv = record_program_start(d->rec, &node_program, &d->ncfg, &d->node);
	} else {
		rv = node_program.start(&d->ncfg, env, &d->node);
	}
	if (rv) {
		const char *why = uvenv_storage_error(d->uv);
		fprintf(stderr, "swarmd: cannot start the node: %s%s%s\n",
			cs_strerror(rv), why && *why ? ": " : "", why ? why : "");
		d->node = NULL;
	}
	return rv;
}

/* The node's platform as SwarmKit's engine reports it: the system in
 * lower case ("linux"), the machine ("x86_64"). */
static void swarmd_platform(struct swarmd *d)
{
	struct utsname u;

	if (uname(&u) != 0)
		return;
	for (size_t i = 0; u.sysname[i] && i + 1 < sizeof d->platform_os; i++)
		d->platform_os[i] = (char)(u.sysname[i] >= 'A' && u.sysname[i] <= 'Z'
						   ? u.sysname[i] - 'A' + 'a'
						   : u.sysname[i]);
	snprintf(d->platform_arch, sizeof d->platform_arch, "%s", u.machine);
	d->desc.platform_os = d->platform_os;
	d->desc.platform_arch = d->platform_arch;
}

/* Keeps the Docker daemon's labels ("key=value") as the node's engine
 * labels (the agent sends them; the dispatcher refuses, logged, more than
 * LIMIT_ENGINE_LABELS_MAX). Returns 0 or CS_ENOMEM. */
static int swarmd_engine_labels(struct swarmd *d, const char *const *labels, size_t count)
{
	if (count == 0)
		return 0;
	d->engine_labels = calloc(count, sizeof *d->engine_labels);
	d->engine_label_ptrs = calloc(count, sizeof *d->engine_label_ptrs);
	if (!d->engine_labels || !d->engine_label_ptrs)
		return CS_ENOMEM;
	d->engine_label_alloc = count;
	for (size_t i = 0; i < count; i++) {
		const char *eq = strchr(labels[i], '=');
		size_t klen = eq ? (size_t)(eq - labels[i]) : strlen(labels[i]);
		Cs__Label *l = &d->engine_labels[i];

		cs__label__init(l);
		l->key = strndup(labels[i], klen);
		l->value = strdup(eq ? eq + 1 : "");
		if (!l->key || !l->value)
			return CS_ENOMEM;
		d->engine_label_ptrs[i] = l;
	}
	d->desc.engine_labels = d->engine_label_ptrs;
	d->desc.engine_label_count = count;
	return 0;
}

/* Starts the node (the last step of main), and says so. */
static void swarmd_go(struct swarmd *d)
{
	if (swarmd_start_node(d)) {
		swarmd_stop(d, 1);
		return;
	}
	if (d->opts.force_new_cluster) {
		/* done (the manager forced it as it opened): not again */
		d->st.forced = true;
		if (swarmd_state_save(d)) {
			fprintf(stderr, "swarmd: fatal: cannot record the forced new "
					"cluster in swarmd.db\n");
			swarmd_stop(d, SWARMD_EXIT_FATAL_IO);
			return;
		}
	}
	env_logf(uvenv_env(d->uv), ENV_LOG_INFO,
		 "msg=\"started\" version=%s role=%s addr=%s state_dir=%s",
		 SWARMD_VERSION,
		 d->st.role == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker",
		 uvenv_addr(d->uv), d->opts.state_dir);
}

/* Docker's answer to GET /info: its labels, then the node starts (without
 * them when Docker did not answer: logged by the docker module). */
static void swarmd_on_info(void *data, int status, const char *message,
			   const char *const *labels, size_t count)
{
	struct swarmd *d = data;

	(void)message;
	if (d->stopping)
		return;
	if (status == 0 && swarmd_engine_labels(d, labels, count)) {
		fputs("swarmd: out of memory\n", stderr);
		swarmd_stop(d, 1);
		return;
	}
	swarmd_go(d);
}

/* ---------------------------------------------------------------- recovery */

/* Removes the one-shot flags (--force-new-cluster, --restore FILE) from
 * argv, so that the exec of a later role change does not do them again. */
static void swarmd_argv_forget_once(char **argv)
{
	size_t out = 1;

	for (size_t i = 1; argv[i]; i++) {
		if (strcmp(argv[i], "--force-new-cluster") == 0)
			continue;
		if (strcmp(argv[i], "--restore") == 0 && argv[i + 1]) {
			i++;
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
}

/* Whether dir is missing or empty (what --restore needs). */
static bool swarmd_dir_is_empty(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!dh)
		return errno == ENOENT;
	while ((e = readdir(dh)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(dh);
	return empty;
}

/* --restore FILE: reads and checks the backup into d->restore before
 * anything is made. Exits 2 (the state dir is not empty) or 1 (the file
 * cannot be read, or is no backup this build restores), saying why. */
static void swarmd_restore_read(struct swarmd *d)
{
	const char *path = d->opts.restore_file;
	char why[BACKUP_WHY_BYTES];
	struct stat stt;
	uint8_t *buf;
	size_t got = 0;
	FILE *f;
	int rv;

	if (!swarmd_dir_is_empty(d->opts.state_dir))
		swarmd_die_usage("--restore: the state dir %s is not empty (a restore "
				 "starts a new cluster on an empty one)",
				 d->opts.state_dir);
	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &stt) != 0) {
		fprintf(stderr, "swarmd: --restore %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!S_ISREG(stt.st_mode) || stt.st_size <= 0 ||
	    (uint64_t)stt.st_size > LIMIT_RAFT_SNAPSHOT_BYTES_MAX) {
		fprintf(stderr,
			"swarmd: --restore %s: not a cswarm backup (%s of %lld bytes)\n",
			path, S_ISREG(stt.st_mode) ? "a file" : "not a file",
			(long long)stt.st_size);
		exit(1);
	}
	if (stt.st_mode & 077)
		fprintf(stderr,
			"swarmd: warning: --restore %s: mode %03o: others may read "
			"it, and it holds the cluster's CA key\n",
			path, (unsigned)(stt.st_mode & 0777));
	buf = malloc((size_t)stt.st_size);
	if (!buf) {
		fputs("swarmd: out of memory\n", stderr);
		exit(1);
	}
	got = fread(buf, 1, (size_t)stt.st_size, f);
	fclose(f);
	if (backup_is_sealed(buf, got) && d->opts.unlock_key_buf[0]) {
		/* taken under autolock: the unlock key opens it */
		uint8_t *plain;
		size_t plain_len;
		rv = backup_open(d->opts.unlock_key_buf, buf, got, &plain, &plain_len,
				 why, sizeof why);
		memset(buf, 0, got);
		free(buf);
		if (rv) {
			fprintf(stderr, "swarmd: --restore %s: %s\n", path, why);
			exit(1);
		}
		buf = plain;
		got = plain_len;
	}
	rv = backup_decode(buf, got, &d->restore, why, sizeof why);
	memset(buf, 0, got); /* the CA key */
	free(buf);
	if (rv) {
		fprintf(stderr, "swarmd: --restore %s: %s\n", path, why);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct swarmd *d = calloc(1, sizeof *d);
	struct uvenv_cfg ucfg;
	struct docker_cfg dcfg;
	char err[512], sock_default[4096];
	int rv;

	if (!d) {
		fputs("swarmd: out of memory\n", stderr);
		return 1;
	}
	/* what swarmd makes is its own (sqlite's files, sockets), whatever
	 * umask it was started with; uvenv also sets the state's modes */
	umask(077);
	swarmd_parse(argc, argv, &d->opts);
	d->argv = argv;
	if (d->opts.restore_file)
		swarmd_restore_read(d);
	signal(SIGPIPE, SIG_IGN);
	if (d->opts.hostname)
		snprintf(d->hostname, sizeof d->hostname, "%s", d->opts.hostname);
	else if (gethostname(d->hostname, sizeof d->hostname) != 0)
		snprintf(d->hostname, sizeof d->hostname, "node");
	if (uv_loop_init(&d->loop)) {
		fputs("swarmd: cannot start the event loop\n", stderr);
		return 1;
	}

	memset(&dcfg, 0, sizeof dcfg);
	dcfg.loop = &d->loop;
	dcfg.socket_path = d->opts.docker_socket;
	dcfg.node_id_label = d->hostname;
	/* issue 20: secrets' files on a tmpfs under the state directory */
	snprintf(d->files_dir, sizeof d->files_dir, "%s/secrets", d->opts.state_dir);
	dcfg.files_dir = d->files_dir;
	if (docker_open(&dcfg, &d->docker)) {
		fputs("swarmd: out of memory\n", stderr);
		return 1;
	}
	if (swarmd_data_plane(d))
		return 1;
	memset(&ucfg, 0, sizeof ucfg);
	ucfg.dataplane = d->dp;
	ucfg.crypttun = d->ct;
	ucfg.loop = &d->loop;
	ucfg.on_exit = swarmd_on_exit;
	ucfg.exit_data = d;
	ucfg.listen_addr = d->opts.listen_addr;
	ucfg.advertise_addr = d->opts.advertise_addr;
	ucfg.state_dir = d->opts.state_dir;
	ucfg.name = d->hostname;
	ucfg.docker = d->docker;
	ucfg.log_out = stderr;
	ucfg.log_level = d->opts.log_level;
	if ((rv = uvenv_open(&ucfg, &d->uv, err, sizeof err)) != 0) {
		fprintf(stderr, "swarmd: %s\n", err[0] ? err : cs_strerror(rv));
		return 1;
	}
	if (uvenv_env(d->uv)->ops->storage_open(uvenv_env(d->uv), "swarmd", &d->db) ||
	    swarmd_state_load(d)) {
		const char *why =
			d->state_error[0] ? d->state_error : uvenv_storage_error(d->uv);
		fprintf(stderr, "swarmd: cannot read the state in %s%s%s\n",
			d->opts.state_dir, why && *why ? ": " : "", why ? why : "");
		return 1;
	}
	if (!d->st.exists && !!d->opts.join_addr != !!d->opts.join_token)
		swarmd_die_usage("--join-addr and a join token go together on a node's "
				 "first start (--join-token-file, SWARMD_JOIN_TOKEN or "
				 "--join-token)");
	if (d->opts.force_new_cluster &&
	    (!d->st.exists || d->st.role != CS__NODE_ROLE__NODE_ROLE_MANAGER))
		swarmd_die_usage("--force-new-cluster: %s holds no manager's state (it "
				 "recovers the cluster a manager's own state holds)",
				 d->opts.state_dir);
	/* a flag left in a unit's options would force again at every restart,
	 * dropping the managers that joined since: once is what it means */
	if (d->opts.force_new_cluster && d->st.forced)
		swarmd_die_usage(
			"--force-new-cluster: this manager forced a new cluster at "
			"its last start; remove the flag (start once without it "
			"before forcing again)");
	if (!d->opts.force_new_cluster && d->st.forced) {
		d->st.forced = false;
		if (swarmd_state_save(d)) {
			fprintf(stderr, "swarmd: cannot write the state in %s\n",
				d->opts.state_dir);
			return 1;
		}
	}
	if (d->opts.restore_file && d->st.exists)
		swarmd_die_usage("--restore: the state dir %s is not empty",
				 d->opts.state_dir);
	if (!d->st.exists && swarmd_first_start(d))
		return 1;
	if (d->st.exists && (d->opts.join_addr || d->opts.join_token))
		env_logf(uvenv_env(d->uv), ENV_LOG_INFO,
			 "msg=\"already part of a cluster: the join flags are ignored\"");
	uv_timer_init(&d->loop, &d->stop_timer);
	d->stop_timer.data = d;
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	d->sigterm.data = d->sigint.data = d;
	uv_signal_start(&d->sigterm, swarmd_on_signal, SIGTERM);
	uv_signal_start(&d->sigint, swarmd_on_signal, SIGINT);
	uv_timer_init(&d->loop, &d->log_timer);
	d->log_timer.data = d;
	uv_timer_start(&d->log_timer, swarmd_log_tick, 100, 500);

	/* the control socket before the node: a manager that cannot be
	 * driven does not start at all (exit 1, the socket named) */
	if (d->st.role == CS__NODE_ROLE__NODE_ROLE_MANAGER) {
		const char *path = d->opts.control_socket;
		if (!path) {
			snprintf(sock_default, sizeof sock_default, "%s/swarmd.sock",
				 d->opts.state_dir);
			path = sock_default;
		}
		if (ctlsock_open(&d->loop, path, swarmd_get_rpc, d, &d->ctl, err,
				 sizeof err)) {
			fprintf(stderr, "swarmd: control socket: %s\n", err);
			swarmd_stop(d, 1);
			uv_run(&d->loop, UV_RUN_DEFAULT); /* the closes */
			uv_loop_close(&d->loop);
			free(d);
			return 1;
		}
		ctlsock_set_call(d->ctl, swarmd_ctl_call, d);
		path = d->opts.docker_api_socket;
		if (!path) {
			snprintf(sock_default, sizeof sock_default, "%s/docker.sock",
				 d->opts.state_dir);
			path = sock_default;
		}
		d->dapi_be.call = swarmd_dapi_call;
		d->dapi_be.self_id = swarmd_dapi_self;
		d->dapi_be.hostname = d->hostname;
		d->dapi_be.data = d;
		if (dockerapi_open(&d->loop, path, &d->dapi_be, &d->dapi, err,
				   sizeof err)) {
			fprintf(stderr, "swarmd: docker API socket: %s\n", err);
			swarmd_stop(d, 1);
			uv_run(&d->loop, UV_RUN_DEFAULT); /* the closes */
			uv_loop_close(&d->loop);
			free(d);
			return 1;
		}
	}
	if (d->opts.metrics_addr &&
	    metricsd_open(&d->loop, d->opts.metrics_addr, swarmd_metrics, d, &d->metrics,
			  err, sizeof err)) {
		fprintf(stderr, "swarmd: --metrics-addr: %s\n", err);
		swarmd_stop(d, 2);
		uv_run(&d->loop, UV_RUN_DEFAULT); /* the closes */
		uv_loop_close(&d->loop);
		free(d);
		return 2;
	}
	if (d->metrics)
		env_logf(uvenv_env(d->uv), ENV_LOG_INFO,
			 "msg=\"metrics served\" url=http://%s/metrics port=%d",
			 d->opts.metrics_addr, metricsd_port(d->metrics));
	swarmd_platform(d);
	if (docker_info(d->docker, swarmd_on_info, d) != 0)
		swarmd_go(d); /* out of memory asking: no engine labels */
	uv_run(&d->loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&d->loop);
	if (rv)
		fprintf(stderr, "swarmd: warning: event loop closed with handles open\n");
	dataplane_close(d->dp);
	d->dp = NULL;
	if (d->reexec) {
		fflush(NULL);
		swarmd_argv_forget_once(d->argv);
		execv("/proc/self/exe", d->argv);
		fprintf(stderr, "swarmd: cannot restart itself: %s\n", strerror(errno));
		return 1;
	}
	rv = d->exit_code;
	for (size_t i = 0; i < d->engine_label_alloc; i++) {
		free(d->engine_labels[i].key);
		free(d->engine_labels[i].value);
	}
	free(d->engine_labels);
	free(d->engine_label_ptrs);
	backup_free(&d->restore);
	free(d);
	return rv;
}
