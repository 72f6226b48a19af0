/* env: the one environment contract. Everything the manager and agent code
 * (core/) needs from the world — clock and timers, transport, storage,
 * executor, randomness, logging — it asks of a `struct env`. net/ implements
 * it for the real world (libuv, sqlite files, Docker), sim/ for the simulated
 * one (virtual time, simulated links, disks and containers). One env per
 * node; every call and every callback on that node's single thread.
 *
 * The contract, for every asynchronous operation here (as libuv's):
 *  - the caller owns a request and the buffers it points to until the
 *    request's callback runs;
 *  - a function that returns an error never calls its callback;
 *  - a callback never runs inside the call that started it;
 *  - after the node's program is stopped (env_program_ops.stop), no callback
 *    of that program runs again.
 * Errors are the negative codes of core/errors.h.
 *
 * Interfaces are { ops, impl }; methods are appended, never reordered. */
#ifndef CS_ENV_H
#define CS_ENV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct env;

typedef uint64_t ms_t;	       /* milliseconds of the env's monotonic clock */
typedef uint64_t env_timer_id; /* 0 is never a valid timer */

/* ---------------------------------------------------------------- clock */

/* Fires once per expiry. For a one-shot timer the id is dead when the
 * callback runs; for a repeating one it stays valid until timer_stop. */
typedef void (*env_timer_cb)(struct env *env, env_timer_id id, void *data);

/* ---------------------------------------------------------------- transport
 *
 * Peers are named by address: "host:port" in the real world, the node name
 * ("m1", "w3") in the simulator. Delivery is best effort: a message may be
 * lost (a peer down, a broken connection, a full queue, a faulty link) but is
 * never corrupted or cut; between two live processes over a healthy link,
 * messages arrive in the order sent. Everything above the transport must
 * tolerate loss, and in the simulator also duplicates and reordering, which
 * the link faults can inject. */

/* A message arrived. `from` and `buf` are borrowed for the call only. */
typedef void (*env_recv_cb)(struct env *env, const char *from, const uint8_t *buf,
			    size_t len, void *data);

/* The connection to `addr` came up (true) or went down (false). Notices are
 * hints for faster reaction (reconnect, resend); correctness never depends on
 * them: a peer can vanish without a notice. `addr` is borrowed. */
typedef void (*env_peer_cb)(struct env *env, const char *addr, bool up, void *data);

/* ---------------------------------------------------------------- executor
 *
 * A controller runs one task's container (SwarmKit's exec.Controller). The
 * env owns controllers; the core holds them by pointer from ctl_open until
 * ctl_close, which is async. Requests follow the contract above. */

enum env_ctl_op {
	ENV_CTL_PREPARE,   /* make the container exist (pull/create) */
	ENV_CTL_START,	   /* start it; returns when started */
	ENV_CTL_WAIT,	   /* returns when the container exits (exit_code set) */
	ENV_CTL_SHUTDOWN,  /* stop gracefully, kill after stop_timeout_ms */
	ENV_CTL_TERMINATE, /* kill now */
	ENV_CTL_REMOVE,	   /* remove the container */
	ENV_CTL_INSPECT,   /* fill state/exit_code (and health) without
			      changing anything */
};

enum env_ctl_state {
	ENV_CTL_ABSENT,	 /* no container */
	ENV_CTL_CREATED, /* exists, never started */
	ENV_CTL_RUNNING,
	ENV_CTL_EXITED,
};

/* appended (issue 14): a container's health, as its runtime reports it
 * (Docker's State.Health.Status). */
enum env_ctl_health {
	ENV_HEALTH_NONE = 0, /* no health check (or none reported) */
	ENV_HEALTH_STARTING, /* checked, no verdict yet */
	ENV_HEALTH_HEALTHY,
	ENV_HEALTH_UNHEALTHY, /* `retries` checks failed in a row */
};

/* What to run. Every pointer is borrowed for the ctl_open call only; the env
 * copies what it keeps. Labels carry task and service ids so that a restarted
 * agent finds its containers (ctl_list). */
enum env_port_proto { ENV_PORT_TCP, ENV_PORT_UDP, ENV_PORT_SCTP };

struct env_port {
	uint32_t target;    /* the container's port */
	uint32_t published; /* the node's port; 0: the runtime picks */
	enum env_port_proto proto;
};

struct env_container_spec {
	const char *task_id;
	const char *service_id;
	const char *image;
	const char *const *command;  /* NULL-terminated, or NULL for the image's */
	const char *const *envs;     /* "K=V", NULL-terminated, or NULL */
	uint64_t memory_limit_bytes; /* 0: none */
	uint64_t millicpu_limit;     /* 0: none */
	ms_t stop_timeout_ms;
	/* appended: more labels, for people and for the simulator's checks */
	const char *service_name;
	uint64_t slot; /* replicated slot, 0 for global tasks */
	/* appended (issue 14): the health check, Docker's HealthConfig.
	 * health_test NULL-terminated: NULL or empty keeps the image's,
	 * {"NONE"} disables it, {"CMD-SHELL", cmd} or {"CMD", args...}.
	 * Durations 0: the runtime's defaults (interval and timeout 30s,
	 * start period 0); retries 0: 3. The runtime runs it; INSPECT
	 * reports its verdict (env_ctl_req.health). */
	const char *const *health_test;
	ms_t health_interval_ms;
	ms_t health_timeout_ms;
	ms_t health_start_period_ms;
	uint64_t health_retries;
	/* appended (issue 15): host-mode published ports, Docker's
	 * ExposedPorts and HostConfig.PortBindings: the container's target
	 * port bound on the node's published port (0: one the runtime picks),
	 * every address. A start whose port is bound already fails (Docker's
	 * "port is already allocated"). */
	const struct env_port *ports;
	size_t port_count;
	/* appended (issue 17): the task's network attachments, in the task's
	 * order. PREPARE attaches the container to each at its address (the
	 * network must have been declared by net_set on this node; PREPARE
	 * fails with the runtime's words otherwise) and gives it a default
	 * route out through the node and the node's resolver for names. */
	const struct env_net_attach *networks;
	size_t network_count;
	/* appended (issue 16): Docker's Entrypoint, NULL-terminated (NULL:
	 * the image's; command then holds its arguments, Docker's Cmd); the
	 * service's container labels, set beside cswarm's own (which win on
	 * a clash); the working dir and user (NULL or "": the image's); the
	 * mounts, in the spec's order. */
	const char *const *entrypoint;
	const struct env_label *labels;
	size_t label_count;
	const char *dir;
	const char *user;
	const struct env_mount *mounts;
	size_t mount_count;
	/* appended (issue 20): the task's secrets and configs as files.
	 * PREPARE materialises each on node-local memory (never the node's
	 * disk: the real executor writes them on a tmpfs) and mounts it
	 * read-only into the container at its path; REMOVE deletes them,
	 * also for a container adopted with no files given (a restarted
	 * agent's). The data is borrowed for ctl_open only (the env copies
	 * what it keeps, in memory). */
	const struct env_file *files;
	size_t file_count;
};

/* appended (issue 20): one secret or config file of a container. */
struct env_file {
	bool config;	     /* a config (else a secret) */
	const char *name;    /* the secret's or config's name */
	uint64_t id;	     /* its id */
	const char *path;    /* absolute, in the container */
	const uint8_t *data; /* its content */
	size_t len;
	const char *uid, *gid; /* numeric strings ("0") */
	uint32_t mode;	       /* file mode (0444) */
};

/* appended (issue 16): a container label. */
struct env_label {
	const char *key;
	const char *value;
};

/* appended (issue 16): a container mount: BIND mounts the node's path
 * source; VOLUME the node's named volume source (the runtime creates it
 * when missing; source "": an anonymous volume). */
enum env_mount_type { ENV_MOUNT_BIND, ENV_MOUNT_VOLUME };
struct env_mount {
	enum env_mount_type type;
	const char *source;
	const char *target;
	bool read_only;
};

/* appended (issue 17): one attachment of a container. */
struct env_net_attach {
	uint64_t network_id;
	const char *addr;	    /* "10.0.3.5/24": its address and prefix */
	const char *const *aliases; /* NULL-terminated, or NULL */
};

struct env_ctl;

/* appended (issue 16): a request for a container's log lines (logs_read). */
struct env_log_line {
	uint64_t time_ns; /* since the Unix epoch, the runtime's clock */
	uint32_t stream;  /* 1 stdout, 2 stderr */
	const char *data; /* the line, its newline kept */
	size_t len;
};
struct env_logs_req {
	void *data;
	const char *task_id;   /* as in env_container_spec */
	uint64_t after_ns;     /* stdout's lines after this */
	uint64_t after_err_ns; /* stderr's (both 0: since_ms, tail) */
	uint64_t since_ms;
	uint64_t tail;
	bool tail_set;
	size_t max_bytes;
	uint64_t until_ms; /* no line after this time (0: none) */
	/* results, valid in the callback */
	const struct env_log_line *lines;
	size_t line_count;
	char message[256];
};
typedef void (*env_logs_cb)(struct env_logs_req *req, int status);

struct env_ctl_req {
	void *data;
	/* results, valid in the callback */
	enum env_ctl_state state;
	int32_t exit_code;
	char message[256]; /* the runtime's own words on failure, or "" */
	/* appended (issue 14): INSPECT: the container's health (NONE when it
	 * has no health check); other ops leave it as it was */
	enum env_ctl_health health;
};

/* status is 0 or a negative error (CS_EEXEC with req->message set). */
typedef void (*env_ctl_cb)(struct env_ctl_req *req, int status);
typedef void (*env_ctl_close_cb)(struct env_ctl *ctl, void *data);

/* One container found by ctl_list. */
struct env_ctl_found {
	char task_id[64];
	char service_id[64];
	enum env_ctl_state state;
	int32_t exit_code;
};
struct env_ctl_list_req {
	void *data;
	struct env_ctl_found *found; /* results: owned by the env, valid in cb */
	size_t found_count;
};
typedef void (*env_ctl_list_cb)(struct env_ctl_list_req *req, int status);

/* ---------------------------------------------------------------- identity
 *
 * Who sent a message is what the certificate of the connection it came on
 * proves (DESIGN.md, "Trust"), never what the message says. Certificates are
 * X.509 with Ed25519 keys (core/pki.h builds and reads them, the same code in
 * both worlds). The env keeps this node's private key (it never leaves the
 * env), presents its certificate, and checks its peers' against the roots it
 * trusts, on its own clock (the wall clock in the real world, virtual time
 * in the simulator). */

enum env_role { ENV_ROLE_NONE = 0, ENV_ROLE_WORKER = 1, ENV_ROLE_MANAGER = 2 };

#define ENV_DIGEST_BYTES 32

/* What a certificate says. All zero: no certificate (or none that holds). */
struct env_identity {
	uint64_t node_id; /* 0: no valid certificate (a joiner, or anyone) */
	uint64_t cluster_id;
	enum env_role role;
	ms_t expires_ms; /* on the env's clock (now_ms): valid while now < this */
	ms_t life_ms;	 /* its whole validity (not_after - not_before) */
	uint8_t root[ENV_DIGEST_BYTES]; /* SHA-256 of the root certificate (DER)
					   it chains to: the join token's digest */
	uint8_t key[ENV_DIGEST_BYTES];	/* SHA-256 of its public key (DER) */
	/* appended: sender() only: the connection the message came on, for
	 * reply() (0 outside a recv callback). Not part of the certificate. */
	uint64_t conn;
	/* appended (issue 15): sender() only: the IP address the connection
	 * the message came on comes from, as the transport sees it (the
	 * socket's peer: "127.0.0.1", "::1"), NUL-terminated; "" when unknown
	 * (the simulator, whose addresses are names, and replies on
	 * connections this node dialled). Not part of the certificate, never
	 * said by the peer: what SwarmKit records as a node's address. */
	char peer_ip[48];
};

/* Bytes borrowed for a call. */
struct env_blob {
	const uint8_t *data;
	size_t len;
};

/* ---------------------------------------------------------------- data plane
 *
 * Appended (issue 17). What one node must realise of one network, declared
 * by the agent from what its managers tell it (SwarmKit's network database):
 * the network itself (an overlay: a bridge joined to the same network on
 * other nodes by a VXLAN device of the VNI), where every endpoint of the
 * network lives (so that the forwarding and neighbour entries are programmed
 * and nothing floods), and the names and virtual IPs tasks on it resolve and
 * reach. Declarative: each net_set replaces the whole state of that network
 * on this node; an entry not named any more is removed. Every pointer is
 * borrowed for the call only.
 * (Added, issue 17 core:) What was declared belongs to the machine, not to
 * the process: it stays across a restart of the node's daemon (adopted
 * containers keep their network meanwhile; the simulator keeps it over
 * `kill NODE process` and drops it with a machine crash), and the agent
 * declares every network again once its new session brings the managers'
 * state. The agent declares a network before the PREPARE of any container
 * attached to it, again only when the managers' state changed, and removes
 * it once no task of its own attaches to it; the ingress network is
 * declared on every node while some service publishes an ingress port.
 * "Ascending addr" is numeric IPv4 order (10.0.0.9 before 10.0.0.10). A
 * dead node's endpoints leave the others' states once the store says it is
 * down, not before (SwarmKit's gossip has the same window). */

struct env_net_endpoint {
	uint64_t task_id;
	const char *addr;    /* "10.0.3.5": the task's address, no prefix */
	const char *node_ip; /* the underlay IP of the node that holds it */
	bool local;	     /* on this node (node_ip is this node's) */
	/* (issue 17 core: `local` is decided by node id. node_ip may be ""
	 * for a remote endpoint whose node the leader knows no address of
	 * yet (no session since it started leading): such an entry has no
	 * underlay to point at until a later net_set names one) */
};

struct env_net_service {
	uint64_t service_id;
	const char *name;
	const char *const *aliases; /* NULL-terminated, or NULL */
	const char *vip;	    /* "10.0.3.2" in vip mode; NULL: dnsrr */
	/* the addresses of its tasks that run now, ascending: what the VIP
	 * spreads over, what `tasks.NAME` (and NAME in dnsrr mode) resolves
	 * to. A task that stops running leaves this list. */
	const char *const *backends; /* NULL-terminated, or NULL */
	/* ingress-published ports (on the ingress network's state only):
	 * each answers on every node and reaches a backend's target port */
	const struct env_port *ports;
	size_t port_count;
};

/* (appended, issue 17 encryption) one of the cluster's network keys. */
#define ENV_NET_KEYS_MAX  3
#define ENV_NET_KEY_BYTES 32
struct env_net_key {
	uint32_t id; /* the key manager's key id (its lamport time), > 0 */
	uint8_t key[ENV_NET_KEY_BYTES]; /* AES-256 key material: secret */
};

struct env_net_state {
	uint64_t network_id;
	const char *name;
	uint32_t vni;				  /* VXLAN id (overlay) */
	const char *subnet;			  /* "10.0.3.0/24" */
	const char *gateway;			  /* "10.0.3.1" */
	bool internal;				  /* no route out of the cluster */
	bool ingress;				  /* the routing mesh's network */
	const struct env_net_endpoint *endpoints; /* ascending addr */
	size_t endpoint_count;
	const struct env_net_service *services; /* ascending service_id */
	size_t service_count;
	/* (appended, issue 17 mesh) the ingress network only: this node's own
	 * address on it ("10.255.0.5", from Node.ingress; NULL: none known
	 * yet). The node holds it and sends the routing mesh's traffic to
	 * remote backends from it, so that their answers come back through
	 * it (every node's, its own included, is also an endpoint, whose
	 * task_id is that node's id). Without one, a published port reaches
	 * this node's own backends only. */
	const char *node_addr;
	/* (appended, issue 17 encryption) an overlay created with the option
	 * `encrypted` (SwarmKit's `--opt encrypted`): traffic between nodes on
	 * this network is sealed with the cluster's network keys, which the
	 * key manager (a leader component) makes, rotates and gives to each
	 * node on its authenticated session. keys: ascending id, at most
	 * ENV_NET_KEYS_MAX; every key is accepted on receive, the one at
	 * key_primary is the one to send with (a new key is given to every
	 * node before any node sends with it, as SwarmKit's key manager
	 * orders them). An encrypted network with no key yet (key_count 0)
	 * carries no traffic between nodes: it never falls back to clear. */
	bool encrypted;
	const struct env_net_key *keys;
	size_t key_count;
	size_t key_primary; /* < key_count when key_count > 0 */
};

/* ---------------------------------------------------------------- log */

enum env_log_level { ENV_LOG_DEBUG, ENV_LOG_INFO, ENV_LOG_WARN, ENV_LOG_ERROR };

/* ---------------------------------------------------------------- the table */

struct env_ops {
	/* now_ms returns the monotonic clock in milliseconds. Never fails. */
	ms_t (*now_ms)(struct env *env);

	/* timer_start arms a timer firing after delay_ms, then every repeat_ms
	 * if repeat_ms > 0. Returns 0 and sets *id, or CS_ELIMIT when the node
	 * has LIMIT_TIMERS_PER_NODE_MAX timers. */
	int (*timer_start)(struct env *env, ms_t delay_ms, ms_t repeat_ms,
			   env_timer_cb cb, void *data, env_timer_id *id);

	/* timer_stop disarms a timer: its callback never runs after this call
	 * returns. Stopping a dead or unknown id does nothing. */
	void (*timer_stop)(struct env *env, env_timer_id id);

	/* self_addr returns this node's own address (owned by the env, valid
	 * while the node lives). */
	const char *(*self_addr)(struct env *env);

	/* listen registers the receive and peer callbacks (either may be NULL).
	 * Before listen, arriving messages are dropped. Returns 0. */
	int (*listen)(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		      void *data);

	/* send queues one message of len bytes to addr. The env copies buf
	 * before returning. Returns 0 when queued (delivery is still best
	 * effort), CS_ELIMIT when len > LIMIT_FRAME_BYTES_MAX, CS_EINVAL for a
	 * malformed address, CS_EAGAIN when the peer's queue is full. */
	int (*send)(struct env *env, const char *addr, const uint8_t *buf, size_t len);

	/* storage_open returns in *db the sqlite database `name` of this node,
	 * opening or creating it. The env owns the handle: it stays valid until
	 * the node's program stops, and the core never closes it. Opening the
	 * same name twice returns the same handle. Durable settings
	 * (synchronous=FULL) are the env's job. Returns 0 or CS_ESTORAGE. */
	int (*storage_open)(struct env *env, const char *name, struct sqlite3 **db);

	/* random_u64 returns 64 random bits: the node's own stream of the
	 * scenario's seed in the simulator, the OS's entropy in the real world. */
	uint64_t (*random_u64)(struct env *env);

	/* log writes one line at level; msg is borrowed. The env adds the time
	 * and the node's name. */
	void (*log)(struct env *env, enum env_log_level level, const char *msg);

	/* ctl_open creates a controller for spec. Returns 0 and *ctl, or
	 * CS_ENOMEM / CS_ENOTSUP (no executor on this node). */
	int (*ctl_open)(struct env *env, const struct env_container_spec *spec,
			struct env_ctl **ctl);

	/* ctl_do starts op on ctl; cb runs once it finished. At most one request
	 * per controller at a time, except that ENV_CTL_WAIT may be in flight
	 * alongside one other op. Returns 0, or CS_EAGAIN when busy. */
	int (*ctl_do)(struct env_ctl *ctl, enum env_ctl_op op, struct env_ctl_req *req,
		      env_ctl_cb cb);

	/* ctl_close releases the controller (the container itself stays, see
	 * ENV_CTL_REMOVE); pending requests are cancelled without their
	 * callbacks; cb runs once its memory is freed. */
	void (*ctl_close)(struct env_ctl *ctl, env_ctl_close_cb cb, void *data);

	/* ctl_list lists this node's containers made by cswarm, in task id
	 * order. Returns 0 or an error; cb gets the results. */
	int (*ctl_list)(struct env *env, struct env_ctl_list_req *req,
			env_ctl_list_cb cb);

	/* exit: the program cannot go on. A durable write failed, so what it
	 * was writing is lost, and carrying on would act on a state its disk
	 * does not hold (as libraft and etcd treat a failed write). The world
	 * stops the program as a process death once the current callback
	 * returns, never inside this call: the real daemon logs `why` and
	 * exits with status 3 (its supervisor starts it again); the simulator
	 * records a process death (containers keep running) that a scenario's
	 * `restart`, or exploration's liveness phase, undoes. Until the stop,
	 * callbacks may still run: the caller refuses new work itself. `why`
	 * is borrowed; calls after the first do nothing. */
	void (*exit)(struct env *env, const char *why);

	/* ---- identity (appended) */

	/* sender: inside a recv callback, the identity proven by the
	 * certificate of the connection the message came on: a chain to one of
	 * this node's trusted roots (or, before it has any, to a root of the
	 * pinned digest), valid now. Anything else, or outside a recv callback:
	 * all zero. */
	void (*sender)(struct env *env, struct env_identity *out);

	/* pki_csr: draws a new key pair for this node (the env keeps it as the
	 * pending key; a later call replaces it) and writes a certificate
	 * signing request for it (DER) into buf. Returns 0, or CS_ELIMIT when
	 * cap is too small. */
	int (*pki_csr)(struct env *env, uint8_t *buf, size_t cap, size_t *len);

	/* pki_ca_create: a new self-signed root CA for cluster_id, valid
	 * life_ms from now: its certificate (DER) into cert, its private key
	 * (DER) into key; the core keeps both in the replicated store. Returns
	 * 0, CS_ELIMIT (a buffer too small) or CS_ENOMEM. */
	int (*pki_ca_create)(struct env *env, uint64_t cluster_id, ms_t life_ms,
			     uint8_t *cert, size_t cert_cap, size_t *cert_len,
			     uint8_t *key, size_t key_cap, size_t *key_len);

	/* pki_sign: with the CA (ca_cert, ca_key), signs a certificate for
	 * csr's key naming who->node_id, who->cluster_id and who->role, valid
	 * life_ms from now (never past the CA's own end), into cert (DER).
	 * Returns 0, CS_EAUTH when the CSR does not verify, CS_EINVAL when the
	 * CA's certificate and key do not match, CS_ELIMIT (cap). */
	int (*pki_sign)(struct env *env, const struct env_blob *ca_cert,
			const struct env_blob *ca_key, const struct env_blob *csr,
			const struct env_identity *who, ms_t life_ms, uint8_t *cert,
			size_t cap, size_t *len);

	/* pki_install: cert, for the pending key of the last pki_csr or the key
	 * of the current certificate, becomes this node's certificate, and
	 * roots (1 or 2 root certificates, DER) the roots it trusts, durably:
	 * after 0 a crash keeps them. What this node sends from then on
	 * presents it (connections it dialled are dialled again: a joiner's
	 * first one had no certificate); connections its peers dialled keep
	 * theirs until they close. Returns 0, CS_EAUTH (cert is
	 * for neither key, or chains to none of roots), CS_ESTORAGE (not
	 * durable: fatal to the caller). */
	int (*pki_install)(struct env *env, const struct env_blob *cert,
			   const struct env_blob *roots, size_t root_count);

	/* pki_pin: for a node without a certificate: trust a root whose
	 * certificate's SHA-256 is digest (a join token's), learnt from the
	 * peer's chain. Replaced by pki_install's roots. Returns 0.
	 *
	 * Outgoing connections check the peer too: a connection to a peer
	 * whose certificate does not chain to a trusted root (or, pinned, to
	 * a root of the digest) fails, and nothing sent on it reaches that
	 * peer (the fake manager a join token's digest exposes). With neither
	 * roots nor a pin, the node trusts no one and sends to anyone (tests
	 * and the programs that have no identity). */
	int (*pki_pin)(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES]);

	/* pki_info: what a certificate (DER) says, its signature unchecked (the
	 * transport checks); with cert->len == 0, this node's own certificate:
	 * CS_ENOENT when it has none. Returns 0, CS_EINVAL (not a certificate
	 * of ours). */
	int (*pki_info)(struct env *env, const struct env_blob *cert,
			struct env_identity *out);

	/* reply queues one message back on the connection conn (a sender()'s
	 * conn, kept as long as wanted) to the peer that sent on it, without
	 * dialling anyone: the only way to answer a peer that has no
	 * certificate of its own (a joiner), and no address of the message is
	 * trusted for it. The peer receives it through its recv callback, from
	 * the address it dialled, with sender() = what this node's certificate
	 * proves to it. Returns 0 (delivery best effort), CS_ECLOSED (that
	 * connection is gone), CS_ELIMIT, CS_EAGAIN (its queue is full). */
	int (*reply)(struct env *env, uint64_t conn, const uint8_t *buf, size_t len);

	/* pki_lock (autolock): with kek (32 bytes), this node's private key is
	 * kept on its disk sealed with kek from now on (a new key installed
	 * later too); with NULL, in the clear again. Durable before it returns
	 * 0 (CS_ESTORAGE: fatal to the caller). A node whose key is sealed
	 * starts with no usable key: it presents no certificate and pki_info
	 * of its own is CS_EAUTH, until pki_unlock is given the same kek (0;
	 * another: CS_EAUTH, nothing changes). pki_unlock on a node whose key
	 * is not sealed remembers kek for later installs and returns 0. */
	int (*pki_lock)(struct env *env, const uint8_t *kek);
	int (*pki_unlock)(struct env *env, const uint8_t *kek);

	/* ---- wall clock (appended, issue 14) */

	/* wall_ms returns the wall clock: ms since the Unix epoch (the
	 * simulator: its fixed epoch plus virtual time, so a seed replays the
	 * same times). For times people read (a record's created and updated
	 * times), never for timeouts: it may jump. NULL in an env that has none
	 * (records then carry no times). */
	uint64_t (*wall_ms)(struct env *env);

	/* ---- data plane (appended, issue 17) */

	/* net_set: this node realises st from now on (see "data plane"
	 * above), replacing what it had of that network. Returns 0 when
	 * accepted (realised before it returns, or before any later PREPARE
	 * that attaches to it); CS_EINVAL for a malformed state (bad address,
	 * subnet or VNI), CS_EEXEC with the runtime's words logged when the
	 * node cannot realise it. NULL in an env without a data plane: its
	 * agent rejects tasks on networks. */
	int (*net_set)(struct env *env, const struct env_net_state *st);

	/* net_remove: nothing of network_id stays on this node (no task of
	 * this node attaches to it any more). Unknown ids: 0. */
	int (*net_remove)(struct env *env, uint64_t network_id);

	/* appended (issue 16): logs_read reads lines of the logs of the
	 * container of req->task_id (one made by ctl_open): those after
	 * req->after_ns (stdout) and after_err_ns (stderr), or when both are 0
	 * those from req->since_ms on (0: the
	 * start), or with tail_set only the last req->tail of them; at most
	 * req->max_bytes of data (at least one line when there is one), in
	 * time order. cb runs once, never inside the call, with status 0 and
	 * req's results (valid in the callback only; no container: no lines),
	 * or an error (the runtime's words in req->message). Returns 0, or an
	 * error (then cb never runs). NULL: the world reads no logs. */
	int (*logs_read)(struct env *env, struct env_logs_req *req, env_logs_cb cb);

	/* appended (issue 17 mesh): net_error writes into buf (size > 0
	 * bytes, always NUL-terminated) the runtime's words for why the last
	 * net_set that failed on this node failed (netlink's extack or errno
	 * text, nft's message), or "" when it said none; cut at size with
	 * "..." at the end (the whole text is in the node's log). Called
	 * right after that net_set returned. NULL: the env has no words (its
	 * failures say only their error code). */
	void (*net_error)(struct env *env, char *buf, size_t size);
};

struct env {
	const struct env_ops *ops;
	void *impl;
};

/* ---------------------------------------------------------------- programs
 *
 * What runs on a node (the manager and agent, or a test program) is a
 * program: started with an env, stopped by the world. stop is the process
 * dying: it frees the program's memory and makes no env call (timers,
 * connections, storage handles and controllers die with it; the env
 * reclaims them). */
struct env_program_ops {
	/* start a new process of the program on env: allocate its state into
	 * *state. `cfg` is the program's configuration, borrowed for the
	 * program's life. Returns 0, or an error (nothing left allocated). */
	int (*start)(const void *cfg, struct env *env, void **state);
	/* stop: the process is gone. Free state; make no env call. */
	void (*stop)(void *state);
};

/* env_logf formats and logs one line (vsnprintf into a bounded buffer;
 * longer lines are cut with "..."). */
void env_logf(struct env *env, enum env_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
