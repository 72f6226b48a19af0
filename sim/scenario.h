/* scenario: the parser of the scenario language (../shared/SCENARIOS.md).
 * scn_parse turns a whole file into a script of commands, or fails with one
 * exact error (file:line:col: what was expected) and nothing to run. The
 * runner (sim/runner.c) executes the script; this module never runs anything.
 * The script owns every string it holds; scn_free releases it all. */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

enum scn_cmd_kind {
	SCN_CLUSTER,
	SCN_SEED,
	SCN_SET,
	SCN_RUN,
	SCN_SERVICE_CREATE,
	SCN_SERVICE_UPDATE,
	SCN_SERVICE_RM,
	SCN_NODE_ADD,
	SCN_NODE_RM,
	SCN_NODE_DRAIN,
	SCN_NODE_PAUSE,
	SCN_NODE_ACTIVATE,
	SCN_NODE_LABEL,
	SCN_NODE_PROMOTE,
	SCN_NODE_DEMOTE,
	SCN_KILL,
	SCN_RESTART,
	SCN_PARTITION,
	SCN_ISOLATE,
	SCN_LINK,
	SCN_HEAL,
	SCN_IMAGE,
	SCN_EXPECT,
	SCN_ALWAYS,
	SCN_AWAIT,     /* addition: await COND within DUR (waits, never fails) */
	SCN_RUNTIME,   /* addition: runtime NODE fail=OPS|restart|ok (issue 12) */
	SCN_DISK,      /* addition: disk NODE fault=eio|full|ok (issue 12) */
	SCN_CERT,      /* addition: cert NODE expire|foreign|other-cluster|none */
	SCN_FORGE,     /* addition: forge SRC KIND to=DST [as=NODE] (issue 13) */
	SCN_CA_ROTATE, /* addition: ca rotate (a root CA rotation, issue 13) */
	/* issue 15: network create NAME [subnet=CIDR] [driver=D], network rm NAME */
	SCN_NETWORK_CREATE,
	SCN_NETWORK_RM,
	SCN_BACKUP, /* addition: backup (issue 20): the leader's, kept by the run */
	/* issue 16: logs SVC contain WORD[-WORD...] [within DUR] */
	SCN_LOGS,
	/* issue 20: secret|config create NAME [bytes=SIZE] [data=WORD],
	 * secret|config rm NAME */
	SCN_SECRET_CREATE,
	SCN_SECRET_RM,
	/* issue 17: network keys rotate (the key manager's rotation, now) */
	SCN_NETWORK_KEYS_ROTATE,
};

/* A node reference: a concrete node, or "leader" (resolved when run). A
 * stranger (x1, x2...: `node add stranger`, issue 13) runs nothing and holds
 * no certificate: a source of forged messages only. */
enum scn_node_kind {
	SCN_NODE_MANAGER,
	SCN_NODE_WORKER,
	SCN_NODE_LEADER,
	SCN_NODE_STRANGER,
};
struct scn_node {
	enum scn_node_kind kind;
	uint32_t number; /* m3 -> 3; 0 for leader */
};

/* node add ... [os=OS] [arch=ARCH] [ip=ADDR] [engine-label=KEY=VALUE]...:
 * what the node says of itself (issue 14), for node.platform.*, node.ip
 * and engine.labels.* constraints. Strings owned by the command; NULL:
 * not said. */
struct scn_node_desc {
	char *os;
	char *arch;
	char *ip;
	size_t engine_label_count;
	char *engine_keys[LIMIT_ENGINE_LABELS_MAX];
	char *engine_values[LIMIT_ENGINE_LABELS_MAX];
};

enum scn_op { SCN_OP_EQ, SCN_OP_NE, SCN_OP_LT, SCN_OP_LE, SCN_OP_GT, SCN_OP_GE };

/* A duration range in milliseconds; a single value has min_ms == max_ms. */
struct scn_range {
	uint64_t min_ms;
	uint64_t max_ms;
};

/* Task states as in DESIGN.md, in order. */
enum scn_task_state {
	SCN_TS_NEW,
	SCN_TS_PENDING,
	SCN_TS_ASSIGNED,
	SCN_TS_ACCEPTED,
	SCN_TS_PREPARING,
	SCN_TS_READY,
	SCN_TS_STARTING,
	SCN_TS_RUNNING,
	SCN_TS_COMPLETE,
	SCN_TS_SHUTDOWN,
	SCN_TS_FAILED,
	SCN_TS_REJECTED,
	SCN_TS_REMOVE,
	SCN_TS_ORPHANED,
};

enum scn_cond_kind {
	SCN_COND_LEADER,      /* leader */
	SCN_COND_NO_LEADER,   /* no leader */
	SCN_COND_LEADER_IS,   /* leader == NODE / leader != NODE (op) */
	SCN_COND_RUNNING,     /* running SVC [on NODE] OP N */
	SCN_COND_STORE_TASKS, /* store tasks SVC state=STATE OP N */
	SCN_COND_NODES_READY, /* nodes ready OP N */
	SCN_COND_NODE_STATUS, /* node NODE ready|down */
	SCN_COND_CONVERGED,   /* converged */
	/* addition beyond SCENARIOS.md: every running manager is a voter,
	 * has applied the same index and holds a byte-identical store */
	SCN_COND_MANAGERS_SYNC, /* managers in sync */
	/* additions of issue 13 */
	SCN_COND_REFUSED,    /* refused [on NODE] OP N: `msg="refused"` lines */
	SCN_COND_TERM,	     /* term OP N: the highest term of any running manager */
	SCN_COND_SERVICE,    /* service NAME exists|absent */
	SCN_COND_CA_ROTATED, /* ca rotated: the last `ca rotate` finished */
	/* addition of issue 14 (jobs) */
	SCN_COND_JOB_COMPLETED, /* service NAME completed: its current run is done */
	/* additions of issue 15 (the allocator), from the leader's store */
	SCN_COND_ADDRESSES,	  /* store addresses SVC OP N: held by its live tasks */
	SCN_COND_VIPS,		  /* store vips SVC OP N */
	SCN_COND_PUBLISHES,	  /* service NAME publishes PORT (count: the port) */
	SCN_COND_PENDING_BECAUSE, /* pending SVC because=WORDS OP N */
	/* addition of issue 17 (the data plane), from the simulated machines */
	SCN_COND_REACH, /* reach TARGET from SVC.SLOT: service in target, task in reason */
	/* addition of issue 20 (rebalancing): max - min of SVC's running
	 * containers per eligible node (ready, active, meeting the
	 * constraints in the leader's store) */
	SCN_COND_SPREAD, /* spread SVC OP N */
	/* addition of issue 20 (the event stream) */
	SCN_COND_EVENT, /* event KIND NAME ACTION: service NAME, reason KIND, count the
			   action (0 create, 1 update, 2 remove) */
	/* issue 20: files NAME [on NODE] OP N: containers (any state) that
	 * hold a file of the secret or config NAME (service holds NAME) */
	SCN_COND_FILES,
	/* issue 17 (the routing mesh), from the simulated machines: a client
	 * outside the cluster connecting to NODE's published PORT; count the
	 * port, proto its protocol, node the node */
	SCN_COND_MESH_REACH,   /* reach PORT[/PROTO] on NODE */
	SCN_COND_MESH_REFUSED, /* no reach PORT[/PROTO] on NODE */
	/* issue 17: network keys newest OP N: the newest network key's id
	 * (the key manager's lamport time; 0: none) in the leader's store */
	SCN_COND_NET_KEYS,
};

struct scn_cond {
	enum scn_cond_kind kind;
	enum scn_op op;	      /* LEADER_IS (EQ/NE), RUNNING, STORE_TASKS, NODES_READY */
	uint64_t count;	      /* the N of OP N */
	char *service;	      /* RUNNING, STORE_TASKS */
	bool has_node;	      /* RUNNING ... on NODE */
	struct scn_node node; /* LEADER_IS, RUNNING on, NODE_STATUS */
	enum scn_task_state state; /* STORE_TASKS */
	bool node_ready;	   /* NODE_STATUS: true = ready, false = down */
	/* NODE_STATUS: 0 = its status (node_ready); else the role its store
	 * record says it runs as (`node NODE manager|worker`) */
	enum scn_node_role { SCN_ROLE_ANY, SCN_ROLE_MANAGER, SCN_ROLE_WORKER } node_role;
	bool exists;	/* SERVICE: exists (true) or absent */
	char *reason;	/* PENDING_BECAUSE: the words, '-' read as blanks */
	uint32_t proto; /* MESH_*: the port's protocol (enum env_port_proto) */
};

enum scn_mode {
	SCN_MODE_REPLICATED,
	SCN_MODE_GLOBAL,
	/* issue 14: jobs (SwarmKit's replicated-job and global-job) */
	SCN_MODE_REPLICATED_JOB,
	SCN_MODE_GLOBAL_JOB,
};
enum scn_restart { SCN_RESTART_ANY, SCN_RESTART_ON_FAILURE, SCN_RESTART_NONE };
enum scn_failure_action { SCN_FA_PAUSE, SCN_FA_CONTINUE, SCN_FA_ROLLBACK };
enum scn_update_order { SCN_ORDER_STOP_FIRST, SCN_ORDER_START_FIRST };

/* Bits of scn_service.set: which keys the command gave. */
enum scn_svc_key {
	SCN_SVC_REPLICAS = 1u << 0,
	SCN_SVC_MODE = 1u << 1,
	SCN_SVC_IMAGE = 1u << 2,
	SCN_SVC_CONSTRAINT = 1u << 3,
	SCN_SVC_RESERVE_CPU = 1u << 4,
	SCN_SVC_RESERVE_MEM = 1u << 5,
	SCN_SVC_MAX_PER_NODE = 1u << 6,
	SCN_SVC_SPREAD = 1u << 7,
	SCN_SVC_RESTART = 1u << 8,
	SCN_SVC_RESTART_DELAY = 1u << 9,
	SCN_SVC_RESTART_MAX = 1u << 10,
	SCN_SVC_UPDATE_PARALLELISM = 1u << 11,
	SCN_SVC_UPDATE_DELAY = 1u << 12,
	SCN_SVC_UPDATE_FAILURE_ACTION = 1u << 13,
	SCN_SVC_UPDATE_ORDER = 1u << 14,
	/* additions beyond SCENARIOS.md (issue 5 names these policies) */
	SCN_SVC_RESTART_WINDOW = 1u << 15,
	SCN_SVC_UPDATE_MONITOR = 1u << 16,
	SCN_SVC_UPDATE_MAX_FAILURE_RATIO = 1u << 17,
	/* issue 12: environment variables (swarmctl's --env) */
	SCN_SVC_ENV = 1u << 18,
	SCN_SVC_ENV_BYTES = 1u << 19,
	/* issue 14 (jobs): a replicated job's max-concurrent=N */
	SCN_SVC_MAX_CONCURRENT = 1u << 22,
	/* issue 14: any of health-cmd, health-interval, health-timeout,
	 * health-retries, health-start-period (scn_service.health_set says
	 * which); stop-grace-period */
	SCN_SVC_HEALTH = 1u << 20,
	SCN_SVC_STOP_GRACE = 1u << 21,
	/* issue 14: the rollback's own configuration (SwarmKit's
	 * ServiceSpec.Rollback), from the top bit down */
	SCN_SVC_ROLLBACK_PARALLELISM = 1u << 31,
	SCN_SVC_ROLLBACK_DELAY = 1u << 30,
	SCN_SVC_ROLLBACK_FAILURE_ACTION = 1u << 29,
	SCN_SVC_ROLLBACK_MONITOR = 1u << 28,
	SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO = 1u << 27,
	SCN_SVC_ROLLBACK_ORDER = 1u << 26,
	/* issue 15: network=NAME and publish=[host:][P]:T[/PROTO], repeatable
	 * (either list given on update replaces that list) */
	SCN_SVC_NETWORK = 1u << 24,
	SCN_SVC_PUBLISH = 1u << 25,
	/* issue 20: rebalance=true|false and rebalance-parallelism=N
	 * (scn_service.rebalance_set says which) */
	SCN_SVC_REBALANCE = 1u << 23,
};

/* issue 20: secret= and config= (files_set says which): past the 32 bits
 * of the enum (scn_service.set is 64 bits) */
#define SCN_SVC_FILES (1ull << 32)

/* issue 20: secret=/config= per command (LIMIT_SERVICE_SECRETS_MAX in all
 * is the control API's) */
#define LIMIT_SCN_FILES_MAX 16u

#define LIMIT_SCN_NETWORKS_MAX 16u /* LIMIT_SERVICE_NETWORKS_MAX */
#define LIMIT_SCN_PORTS_MAX    16u

/* publish=[host:][P]:T[/PROTO]: P 0 is drawn (ingress); host: host mode */
struct scn_port {
	uint32_t published, target;
	unsigned protocol; /* 0 tcp, 1 udp, 2 sctp (Cs__PortProtocol) */
	bool host;
};

/* The scenario's own limits on env (the control API's spec limit,
 * LIMIT_SPEC_BYTES_MAX, bounds the rest): env= per command, as swarmctl's
 * --env list; env-bytes=SIZE's size. */
#define LIMIT_SCN_ENVS_MAX	256u
#define LIMIT_SCN_ENV_BYTES_MAX LIMIT_SPEC_BYTES_MAX

/* A constraint expression, SwarmKit's: node.role==worker,
 * node.hostname!=w3, node.labels.zone==a, node.id==... */
struct scn_constraint {
	char *key;  /* "node.role", "node.hostname", "node.id", "node.labels.zone" */
	bool equal; /* == (true) or != (false) */
	char *value;
	char *text; /* the expression as written, for messages */
};

/* SERVICE_CREATE: keys not given hold `docker service create`'s defaults
 * (replicas 1, or 0 with mode=global; restart any, restart-delay 5s,
 * update-parallelism 1, update-failure-action pause, update-order stop-first,
 * update-monitor 5s; no image: NULL). SERVICE_UPDATE: only the fields whose
 * bit is in `set` mean anything. */
struct scn_service {
	char *name;
	uint64_t set; /* enum scn_svc_key bits, and SCN_SVC_FILES */
	uint64_t replicas;
	enum scn_mode mode;
	char *image;
	struct scn_constraint constraints[LIMIT_SCN_CONSTRAINTS_MAX];
	size_t constraint_count;
	uint64_t reserve_millicpu; /* reserve-cpu=0.5 -> 500 */
	uint64_t reserve_mem_bytes;
	uint64_t max_per_node;
	char *spreads[LIMIT_SCN_SPREADS_MAX]; /* label keys, outermost first */
	size_t spread_count;
	enum scn_restart restart;
	uint64_t restart_delay_ms;
	uint64_t restart_max;
	uint64_t restart_window_ms;
	uint64_t update_parallelism;
	uint64_t update_delay_ms;
	enum scn_failure_action update_failure_action;
	enum scn_update_order update_order;
	uint64_t update_monitor_ms;
	uint32_t update_max_failure_ratio_ppm; /* 0.25 -> 250000 */
	/* env=KEY=VALUE (repeatable) and env-bytes=SIZE, one "KEY=VALUE"
	 * string each, in the order given; env-bytes adds PAD= and SIZE 'x's.
	 * Either key sets the whole list (an update replaces it). */
	char **envs;
	size_t env_count;
	uint64_t max_concurrent; /* max-concurrent=N (a replicated job) */
	/* issue 14: health-cmd=CMD (Docker's CMD-SHELL; `none`: disabled,
	 * as --no-healthcheck), health-interval=D, health-timeout=D,
	 * health-retries=N, health-start-period=D; an update changes only
	 * the parts given (health_set: SCN_HEALTH_* bits) */
	uint32_t health_set;
	char *health_cmd; /* NULL when health_none */
	bool health_none;
	uint64_t health_interval_ms, health_timeout_ms, health_retries,
		health_start_period_ms;
	uint64_t stop_grace_period_ms; /* stop-grace-period=D */
	/* issue 14: rollback-* keys (as update-*), and `force` on update
	 * (swarmctl's --force: tasks outdated with no other change) */
	uint64_t rollback_parallelism;
	uint64_t rollback_delay_ms;
	enum scn_failure_action rollback_failure_action;
	uint64_t rollback_monitor_ms;
	uint32_t rollback_max_failure_ratio_ppm;
	enum scn_update_order rollback_order;
	bool force;
	/* `service update NAME rollback` (alone): swarmctl's --rollback, the
	 * manager's manual rollback with the rollback config */
	bool rollback;
	/* issue 15 */
	char *networks[LIMIT_SCN_NETWORKS_MAX];
	size_t network_count;
	struct scn_port ports[LIMIT_SCN_PORTS_MAX];
	size_t port_count;
	/* issue 20: rebalance=true|false, rebalance-parallelism=N (an update
	 * changes only the ones given: rebalance_set, 1 and 2) */
	uint32_t rebalance_set;
	bool rebalance;
	uint64_t rebalance_parallelism;
	/* issue 20: secret=NAME[:TARGET] ([0]) and config=NAME[:TARGET] ([1]),
	 * repeatable; `none` alone empties the list; each list given (bit k
	 * of files_set) replaces the spec's on update */
	uint32_t files_set;
	char *file_names[2][LIMIT_SCN_FILES_MAX];
	char *file_targets[2][LIMIT_SCN_FILES_MAX]; /* NULL: the default */
	size_t file_count[2];
};

/* Bits of scn_service.health_set. */
enum scn_health_key {
	SCN_HEALTH_CMD = 1u << 0,
	SCN_HEALTH_INTERVAL = 1u << 1,
	SCN_HEALTH_TIMEOUT = 1u << 2,
	SCN_HEALTH_RETRIES = 1u << 3,
	SCN_HEALTH_START_PERIOD = 1u << 4,
};

/* Bits of scn_settings.set. */
enum scn_set_key {
	SCN_SET_HEARTBEAT = 1u << 0,
	SCN_SET_ELECTION_TICKS = 1u << 1,
	SCN_SET_TICK = 1u << 2,
	SCN_SET_HISTORY = 1u << 3,
	SCN_SET_SNAPSHOT_EVERY = 1u << 4,
	SCN_SET_CERT_EXPIRY = 1u << 5,
	/* issue 14: written to the running cluster's record (after cluster) */
	SCN_SET_ORPHAN_DELAY = 1u << 31,
	/* issue 17: the network keys' rotation period (the cluster record's,
	 * after cluster; a set command of its own) */
	SCN_SET_NET_KEY_ROTATION = 1u << 30,
};

struct scn_settings {
	uint32_t set;
	uint64_t heartbeat_ms;
	uint64_t election_ticks;
	uint64_t tick_ms;
	uint64_t history;
	uint64_t snapshot_every;
	uint64_t cert_expiry_ms;      /* node certificates' life */
	uint64_t orphan_delay_ms;     /* a down node's tasks orphaned after */
	uint64_t net_key_rotation_ms; /* issue 17: network keys rotated every */
};

/* One link fault rule: link A B ... (both ways) or link A -> B ... */
struct scn_link {
	struct scn_node a, b;
	bool one_way; /* A -> B only */
	bool has_loss, has_delay, has_dup, has_reorder;
	uint32_t loss_ppm;	/* loss=0.2 or loss=20% -> 200000 */
	struct scn_range delay; /* delay=D or delay=D..D */
	uint32_t dup_ppm;
	uint32_t reorder_ppm; /* addition: reorder=P */
};

/* A partition: groups of nodes; a group may be "*" (every node not named
 * in another group). isolate NODE is parsed as partition NODE | *. */
struct scn_group {
	bool star;
	struct scn_node *nodes;
	size_t node_count;
};
struct scn_partition {
	struct scn_group groups[LIMIT_SCN_GROUPS_MAX];
	size_t group_count;
};

struct scn_image {
	char *name;
	bool pull_fail;
	bool start_fail;  /* start=fail: created, never runs */
	bool stop_ignore; /* stop=ignore: killed at the stop timeout */
	bool has_start;
	struct scn_range start; /* default 100ms..1s when !has_start */
	bool has_exit;
	int32_t exit_code;
	struct scn_range exit_after;
	/* issue 14: healthy-after=D[..D], unhealthy-after=D[..D]: when its
	 * health command starts to succeed, and to fail, after each start */
	bool has_healthy_after, has_unhealthy_after;
	struct scn_range healthy_after, unhealthy_after;
};

/* runtime NODE fail=OPS [for=DUR] | restart [containers=keep|lose]
 * [down=DUR] | ok. OPS bits, as the simulated runtime's SIMEXEC_OP_*: */
#define SCN_RT_OP_PREPARE (1u << 0)
#define SCN_RT_OP_START	  (1u << 1)
#define SCN_RT_OP_WAIT	  (1u << 2)
#define SCN_RT_OP_STOP	  (1u << 3)
#define SCN_RT_OP_REMOVE  (1u << 4)
#define SCN_RT_OP_LIST	  (1u << 5)
#define SCN_RT_OP_INSPECT (1u << 6) /* only through `all` */
#define SCN_RT_OP_ALL	  ((1u << 7) - 1)
enum scn_runtime_action {
	SCN_RT_FAIL,
	SCN_RT_RESTART,
	SCN_RT_OK,
	SCN_RT_BIND,	  /* issue 15: bind=PORT[/PROTO], held outside cswarm */
	SCN_RT_UNBIND,	  /* unbind: every such port let go */
	SCN_RT_DATAPLANE, /* dataplane=none|present */
};
#define SCN_RT_DOWN_MS_DEFAULT 1000u
struct scn_runtime {
	struct scn_node node;
	enum scn_runtime_action action;
	uint32_t ops; /* FAIL: SCN_RT_OP_* bits */
	bool has_for; /* FAIL: for=DUR given (else until `runtime NODE ok`) */
	uint64_t for_ms;
	bool lose;	     /* RESTART: containers=lose */
	uint64_t down_ms;    /* RESTART: down=DUR, SCN_RT_DOWN_MS_DEFAULT if not given */
	uint32_t bind_port;  /* BIND */
	uint32_t bind_proto; /* BIND: 0 tcp, 1 udp, 2 sctp */
	bool data_plane;     /* DATAPLANE: present */
};

/* disk NODE fault=eio [on=write|sync|both] [for=DUR] | fault=full [for=DUR]
 * | ok */
/* Issue 19 adds: disk NODE fault=torn [for=DUR] (a crash while it holds
 * tears the pages written since the last sync) and disk NODE fault=corrupt
 * [file=NAME] [pages=N] (flips one bit in each of N drawn pages, 1 by
 * default, of file NAME or of drawn files: at once, no duration). Issue 18
 * adds [table=NAME] (file= needed): only in the rows' bytes of sqlite table
 * or index NAME of the file, never in its b-tree's structure. */
enum scn_disk_fault {
	SCN_DISK_EIO,
	SCN_DISK_FULL,
	SCN_DISK_OK,
	SCN_DISK_TORN,
	SCN_DISK_CORRUPT
};
struct scn_disk {
	struct scn_node node;
	enum scn_disk_fault fault;
	bool on_write, on_sync; /* EIO: which calls fail (both by default) */
	bool has_for;		/* else until `disk NODE ok` */
	uint64_t for_ms;
	char file[LIMIT_NAME_BYTES_MAX + 1];  /* corrupt: the file ("": drawn) */
	uint32_t pages;			      /* corrupt: pages to flip a bit in */
	char table[LIMIT_NAME_BYTES_MAX + 1]; /* corrupt: only this b-tree ("": any) */
};

/* cert NODE expire|foreign|other-cluster|none: the world replaces NODE's
 * installed certificate (its key and roots stay) with one of the cluster's
 * CA that expired now, one of another CA of the same cluster id, one of
 * another cluster, or none. */
enum scn_cert_kind {
	SCN_CERT_EXPIRE,
	SCN_CERT_FOREIGN,
	SCN_CERT_OTHER_CLUSTER,
	SCN_CERT_NONE
};
struct scn_cert {
	struct scn_node node;
	enum scn_cert_kind kind;
};

/* forge SRC KIND to=DST [as=NODE]: SRC sends DST one crafted wire message
 * with SRC's own certificate (see the README for what each carries). */
enum scn_forge_kind {
	SCN_FORGE_RAFT_APPEND,
	SCN_FORGE_RAFT_VOTE,
	SCN_FORGE_PROPOSAL,
	SCN_FORGE_CONTROL,
	SCN_FORGE_JOIN,
	SCN_FORGE_SESSION,
	SCN_FORGE_STATUS,
	SCN_FORGE_CERT_REQUEST,
	SCN_FORGE_SESSION_RESPONSE,
	SCN_FORGE_ASSIGNMENTS,
};
struct scn_forge {
	struct scn_node src, dst;
	enum scn_forge_kind kind;
	bool has_as;
	struct scn_node as; /* the node the message claims to be or concern */
};

struct scn_cluster {
	uint32_t managers;
	uint32_t workers;
	uint64_t millicpus;    /* cpus=4 -> 4000; default 4 cpus */
	uint64_t memory_bytes; /* default 8G */
};

struct scn_cmd {
	enum scn_cmd_kind kind;
	uint32_t line;
	uint32_t col; /* of the command word; columns count bytes from 1 */
	char *text;   /* the command as written, trimmed, without comment */
	union {
		struct scn_cluster cluster;
		uint64_t seed;
		struct scn_settings settings;
		uint64_t run_ms;
		struct scn_service service; /* SERVICE_CREATE, SERVICE_UPDATE */
		char *service_name;	    /* SERVICE_RM */
		bool add_manager;	    /* NODE_ADD: true = manager (shares
					     * bytes with node.node; node.added
					     * says the same and is the one to read) */
		struct {
			struct scn_node node;	/* NODE_RM..NODE_DEMOTE, KILL, RESTART */
			bool process_only;	/* KILL NODE process */
			bool disk_lost;		/* KILL NODE disk (issue 20) */
			bool force_new_cluster; /* RESTART NODE force-new-cluster */
			bool refused;	  /* RESTART NODE refused: its start must fail */
			bool from_backup; /* NODE_ADD manager from-backup (issue 20) */
			char *label_key;  /* NODE_LABEL */
			char *label_value;
			struct scn_node added; /* NODE_ADD: the name it gets */
			bool initial_token;    /* NODE_ADD token=initial: the join
						* token the cluster began with
						* (else the leader's current one) */
			/* NODE_ADD: NULL, or what the node says of itself */
			struct scn_node_desc *desc;
		} node;
		struct scn_partition partition; /* PARTITION, ISOLATE */
		struct scn_link link;
		struct scn_image image;
		struct scn_runtime runtime;
		struct scn_disk disk;
		struct scn_cert cert;
		struct scn_forge forge;
		struct {
			char *name;
			char *subnet;	/* NULL: from the pool */
			char *driver;	/* NULL: overlay */
			bool encrypted; /* issue 17: encrypted=yes */
		} network;		/* NETWORK_CREATE, NETWORK_RM (name only) */
		struct {
			bool config; /* config (else secret) */
			char *name;
			char *data;	/* data=WORD, or NULL */
			uint64_t bytes; /* bytes=SIZE: that many 's' (0: none) */
		} secret; /* SECRET_CREATE, SECRET_RM (config and name only) */
		struct {
			struct scn_cond cond;
			bool has_within;
			uint64_t within_ms;
		} expect; /* EXPECT, ALWAYS (no within) */
		struct {
			char *service;
			char *text; /* the WORD-WORD given, '-' as spaces */
			bool has_within;
			uint64_t within_ms;
		} logs; /* LOGS */
	} u;
	/* issue 15: `refuse CMD...`: the control API must refuse the command */
	bool refuse;
};

struct scn_script {
	char *path;
	struct scn_cmd *cmds;
	size_t cmd_count;
	bool has_seed; /* a `seed N` command appeared */
	uint64_t seed;
	uint32_t managers_total; /* managers and workers ever named */
	uint32_t workers_total;
	uint32_t strangers_total; /* x1..xN: `node add stranger` */
};

/* scn_parse parses `len` bytes of `text` read from `path` (path is used in
 * messages). On success returns 0 and fills *script (the caller frees it
 * with scn_free). On bad input returns CS_EINVAL and writes one line,
 * "PATH:LINE:COL: message", into err (NUL-terminated, truncated to err_size);
 * *script is then left empty. Borrows text and path. Returns CS_ENOMEM (err
 * says "out of memory") when memory runs out. A node named before `cluster`
 * or `node add` created it is bad input; `node rm` does not un-name one. */
int scn_parse(const char *path, const char *text, size_t len, struct scn_script *script,
	      char *err, size_t err_size);

/* scn_parse_file reads path and parses it; an unreadable file is an error
 * "PATH: cannot read: REASON" (REASON is strerror's text, or "larger than
 * N bytes (LIMIT_SCN_FILE_BYTES_MAX)"). */
int scn_parse_file(const char *path, struct scn_script *script, char *err,
		   size_t err_size);

/* scn_free releases everything the script owns; the struct is left zeroed. */
void scn_free(struct scn_script *script);

/* scn_first returns the script's first command of kind, or NULL. */
const struct scn_cmd *scn_first(const struct scn_script *script, enum scn_cmd_kind kind);

/* scn_node_name writes "m3", "w12", "x1" or "leader" into buf. Returns buf. */
const char *scn_node_name(struct scn_node node, char *buf, size_t size);

/* Names for messages and traces. */
const char *scn_cmd_name(enum scn_cmd_kind kind);
const char *scn_task_state_name(enum scn_task_state state);
const char *scn_op_text(enum scn_op op);
const char *scn_forge_name(enum scn_forge_kind kind);
const char *scn_cert_name(enum scn_cert_kind kind);

/* scn_op_holds returns whether `got OP want` is true. */
bool scn_op_holds(enum scn_op op, uint64_t got, uint64_t want);

#endif
