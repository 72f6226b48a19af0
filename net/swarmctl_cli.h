/* swarmctl_cli: the parts of swarmctl that need no daemon — parsing of
 * values (durations, sizes, cpus, ratios), the service flags shared by
 * `service create` and `service update` into a ServiceSpec, aligned tables
 * and a small JSON emitter, and the listing formats. Called by
 * net/swarmctl.c's main and by tests. Nothing here owns strings it is
 * given: a spec built by swarmctl_cli_spec points into argv and into the
 * spec it started from. */
#ifndef CS_SWARMCTL_CLI_H
#define CS_SWARMCTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/api.pb-c.h"

/* ---------------------------------------------------------------- values
 * Each returns 0, or CS_EINVAL with "FLAG: 'TEXT' is not ... (expected
 * ...)" in err (flag names the flag for people). */

/* Durations: "10s", "500ms", "1m30s", "1h", "1.5s", "0". */
int swarmctl_cli_duration_ms(const char *flag, const char *s, uint64_t *ms, char *err,
			     size_t n);
/* Sizes, binary units as docker's: "1024", "64k", "64MiB", "1G", "1.5gb". */
int swarmctl_cli_bytes(const char *flag, const char *s, uint64_t *bytes, char *err,
		       size_t n);
/* Cores, to a thousandth: "0.5" is 500 millicpus. */
int swarmctl_cli_millicpus(const char *flag, const char *s, uint64_t *mcpu, char *err,
			   size_t n);
/* A ratio 0 to 1 ("0.25") in parts per million. */
int swarmctl_cli_ratio_ppm(const char *flag, const char *s, uint32_t *ppm, char *err,
			   size_t n);
/* A whole number 0..max. */
int swarmctl_cli_u64(const char *flag, const char *s, uint64_t max, uint64_t *v,
		     char *err, size_t n);

/* ---------------------------------------------------------------- services */

#define SWARMCTL_CLI_LIST_MAX  256u /* --env, --constraint, arguments... */
#define SWARMCTL_CLI_NETS_MAX  16u  /* --network (LIMIT_SERVICE_NETWORKS_MAX) */
#define SWARMCTL_CLI_PORTS_MAX 64u  /* --publish (LIMIT_SERVICE_PORTS_MAX) */
#define SWARMCTL_CLI_FILES_MAX 64u  /* --secret, --config (LIMIT_SERVICE_SECRETS_MAX) */

/* A ServiceSpec under construction. Init from nothing (create) or from the
 * current spec (update, borrowed: it must outlive b), then apply flags. */
struct swarmctl_cli_spec {
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec container;
	Cs__Resources reserve, limit;
	Cs__RestartPolicy restart;
	Cs__Placement placement;
	Cs__UpdateConfig update;
	bool has_task, has_container, has_reserve, has_limit, has_restart, has_placement,
		has_update;
	char *env[SWARMCTL_CLI_LIST_MAX];
	char *constraints[SWARMCTL_CLI_LIST_MAX];
	char *spreads[SWARMCTL_CLI_LIST_MAX];
	char *command[SWARMCTL_CLI_LIST_MAX];
	bool env_given, constraints_given, spreads_given, command_given;
	bool mode_given, replicas_given;
	/* issue 15: --network, --publish (-p), --endpoint-mode */
	Cs__NetworkAttachmentConfig nets[SWARMCTL_CLI_NETS_MAX];
	Cs__NetworkAttachmentConfig *net_ptrs[SWARMCTL_CLI_NETS_MAX];
	char *aliases[SWARMCTL_CLI_NETS_MAX][SWARMCTL_CLI_NETS_MAX];
	Cs__PortConfig ports[SWARMCTL_CLI_PORTS_MAX];
	Cs__PortConfig *port_ptrs[SWARMCTL_CLI_PORTS_MAX];
	Cs__EndpointSpec endpoint;
	bool nets_given, ports_given, has_endpoint;
	/* not spec: what else the arguments said */
	const char *target; /* update: the service NAME */
	bool rollback;	    /* update --rollback */
	/* appended (issue 14): the health check, once a --health-* flag or
	 * --no-healthcheck changed it (else the spec's stays as it was) */
	Cs__HealthConfig health;
	char *health_test[2];
	bool health_given, no_healthcheck, health_flag;
	/* issue 14: the rollback's own config (--rollback-*), and --force */
	Cs__UpdateConfig rollback_cfg;
	bool has_rollback_cfg;
	bool force; /* update --force: raises the task spec's force_update */
	/* --label KEY=VALUE (issue 14): the service's labels */
	Cs__Label label_store[SWARMCTL_CLI_LIST_MAX];
	Cs__Label *labels[SWARMCTL_CLI_LIST_MAX];
	char label_keys[SWARMCTL_CLI_LIST_MAX][64]; /* LIMIT_NAME_BYTES_MAX + 1 */
	bool labels_given;
	/* issue 20: --secret and --config (Docker's NAME or
	 * source=NAME[,target=T][,uid=U][,gid=G][,mode=M]), and on update
	 * --secret-rm / --config-rm NAME; [0] secrets, [1] configs, the
	 * spec's own first (an update keeps them unless removed or given
	 * again by name) */
	Cs__SecretReference file_refs[2][SWARMCTL_CLI_FILES_MAX];
	Cs__SecretReference *file_ptrs[2][SWARMCTL_CLI_FILES_MAX];
	size_t file_count[2];
	bool files_given;
	/* the flags' values, copied (argv is left as it was), cut at , and = */
	char file_args[2][SWARMCTL_CLI_FILES_MAX][512];
};

/* swarmctl_cli_spec parses the flags of `service create` (update false) or
 * `service update NAME` (update true) in argv[0..argc) onto b, which must
 * have been set up with swarmctl_cli_spec_init. Returns 0 (b->spec is
 * ready to send), or CS_EINVAL with err naming the flag and what is
 * expected. On update, a list flag (--env, --constraint, --placement-pref,
 * -- CMD) replaces that whole list. */
int swarmctl_cli_spec(struct swarmctl_cli_spec *b, int argc, char **argv, bool update,
		      char *err, size_t n);

/* swarmctl_cli_spec_init empties b, or copies from (borrowed; NULL for a
 * new service). */
void swarmctl_cli_spec_init(struct swarmctl_cli_spec *b, const Cs__ServiceSpec *from);

/* ---------------------------------------------------------------- task filters */

/* What `task ls --filter KEY=VALUE` (Docker's filters) asks for: service=,
 * node= (id, id prefix or hostname), desired-state= (a task state: running,
 * shutdown, accepted...), label= (KEY or KEY=VALUE of the task's service).
 * Strings point into the arguments. */
struct swarmctl_cli_task_filter {
	const char *service;
	char *nodes[32];
	size_t node_count;
	Cs__TaskState desired[32];
	size_t desired_count;
	char *labels[32];
	size_t label_count;
};

/* swarmctl_cli_task_filter adds one `--filter` value (arg, borrowed) to f
 * (zeroed first by the caller). Returns 0, or CS_EINVAL with err saying
 * what is expected. */
int swarmctl_cli_task_filter(struct swarmctl_cli_task_filter *f, char *arg, char *err,
			     size_t n);

/* swarmctl_cli_time formats a record's time (ms since the Unix epoch) as
 * RFC 3339 in UTC with milliseconds ("2026-01-01T00:00:05.250Z"), or "" for
 * 0 (never stamped), into buf (at least 32 bytes). */
void swarmctl_cli_time(char *buf, size_t size, uint64_t ms);

/* ---------------------------------------------------------------- tables */

struct swarmctl_cli_table {
	size_t cols, rows;
	char **cells; /* rows * cols, owned; row 0 the headers */
	size_t cap;
};

/* Returns 0 or CS_ENOMEM. headers borrowed. */
int swarmctl_cli_table_init(struct swarmctl_cli_table *t, size_t cols,
			    const char *const *headers);
/* Adds a row of cols cells (copied). Returns 0 or CS_ENOMEM. */
int swarmctl_cli_table_add(struct swarmctl_cli_table *t, const char *const *cells);
/* Prints columns aligned, 3 spaces apart; no trailing spaces. */
void swarmctl_cli_table_print(const struct swarmctl_cli_table *t, FILE *out);
void swarmctl_cli_table_free(struct swarmctl_cli_table *t);

/* ---------------------------------------------------------------- JSON */

#define SWARMCTL_CLI_JSON_DEPTH_MAX 16u

/* A JSON writer: pretty printed, two spaces an indent. Values are written
 * in order; a key before each value in an object. */
struct swarmctl_cli_json {
	FILE *out;
	unsigned depth;
	bool first[SWARMCTL_CLI_JSON_DEPTH_MAX];
	bool after_key;
};

void swarmctl_cli_json_init(struct swarmctl_cli_json *j, FILE *out);
void swarmctl_cli_json_open(struct swarmctl_cli_json *j, char bracket); /* '{' '[' */
void swarmctl_cli_json_close(struct swarmctl_cli_json *j, char bracket);
void swarmctl_cli_json_key(struct swarmctl_cli_json *j, const char *key);
void swarmctl_cli_json_str(struct swarmctl_cli_json *j, const char *s); /* NULL: "" */
void swarmctl_cli_json_u64(struct swarmctl_cli_json *j, uint64_t v);
void swarmctl_cli_json_i64(struct swarmctl_cli_json *j, int64_t v);
void swarmctl_cli_json_bool(struct swarmctl_cli_json *j, bool v);
/* swarmctl_cli_json_escape writes s as a JSON string, quotes included:
 * control characters escaped, invalid UTF-8 replaced with U+FFFD. */
void swarmctl_cli_json_escape(FILE *out, const char *s);

/* ---------------------------------------------------------------- listings
 * What `ls` and `inspect` print. Field names of the JSON forms (snake_case,
 * ids as 16 hex digits):
 *   service ls: id, name, mode ("replicated"|"global"), replicas (desired),
 *     running, image, version, update_state
 *   task ls: id, service, service_id, slot, node, node_id, desired, state,
 *     message, container_id, exit_code, timestamp_ms
 *   node ls: id, hostname, status, availability, role, desired_role,
 *     leader, manager_addr, labels {k: v}
 * `inspect` prints the same object with the whole spec (JSON in both
 * formats, as docker inspect). */

enum swarmctl_cli_format { SWARMCTL_CLI_TABLE, SWARMCTL_CLI_JSON };

/* Lists services. REPLICAS (running/desired) come from counts (borrowed,
 * the manager's: SERVICE_LIST with status, issue 18; Docker's rule, a
 * DOWN node's tasks not running) for a service they hold, else from tasks
 * (borrowed, any service); a job's completions from tasks always. */
void swarmctl_cli_print_services(FILE *out, enum swarmctl_cli_format fmt,
				 Cs__Service *const *services, size_t n_services,
				 Cs__ServiceCounts *const *counts, size_t n_counts,
				 Cs__Task *const *tasks, size_t n_tasks);
/* Lists tasks; services and nodes give the names. */
void swarmctl_cli_print_tasks(FILE *out, enum swarmctl_cli_format fmt,
			      Cs__Task *const *tasks, size_t n_tasks,
			      Cs__Service *const *services, size_t n_services,
			      Cs__Node *const *nodes, size_t n_nodes);
/* leader_raft_id: the cluster record's leader (0: unknown), to mark it. */
void swarmctl_cli_print_nodes(FILE *out, enum swarmctl_cli_format fmt,
			      Cs__Node *const *nodes, size_t n_nodes,
			      uint64_t leader_raft_id);
void swarmctl_cli_print_service(FILE *out, const Cs__Service *s, Cs__Task *const *tasks,
				size_t n_tasks);
/* swarmctl_cli_print_networks prints networks as a table (ID NAME DRIVER
 * SUBNET) or JSON; swarmctl_cli_print_network one as JSON (issue 15). */
void swarmctl_cli_print_networks(FILE *out, enum swarmctl_cli_format fmt,
				 Cs__Network *const *nets, size_t n);
void swarmctl_cli_print_network(FILE *out, const Cs__Network *n);
/* swarmctl_cli_publish parses one --publish value (published=P,target=T
 * [,protocol=tcp|udp|sctp][,mode=ingress|host], or P:T[/PROTO]) into p:
 * 0, or CS_EINVAL with err. */
int swarmctl_cli_publish(const char *v, Cs__PortConfig *p, char *err, size_t n);

void swarmctl_cli_print_task(FILE *out, const Cs__Task *t, const char *service,
			     const char *node);
void swarmctl_cli_print_node(FILE *out, const Cs__Node *nd, uint64_t leader_raft_id);
/* swarmctl_cli_print_cluster prints the cluster record as JSON (no token,
 * no key): its root's digest and, during a root CA rotation, its phase, the
 * new root's digest and ca_nodes_done of ca_nodes_total nodes done with the
 * phase (ControlResponse's counts). */
void swarmctl_cli_print_cluster(FILE *out, const Cs__Cluster *c, uint64_t ca_nodes_done,
				uint64_t ca_nodes_total);

/* Names of enum values as the CLI writes them ("running", "drain"...). */
const char *swarmctl_cli_task_state(Cs__TaskState s);
const char *swarmctl_cli_node_state(Cs__NodeState s);
const char *swarmctl_cli_availability(Cs__NodeAvailability a);
const char *swarmctl_cli_role(Cs__NodeRole r);

/* swarmctl_cli_write_private writes len bytes of data (borrowed) to path as a
 * file of mode 0600 whatever the umask, whole or not at all: a temporary file
 * beside it, fsynced, renamed over path, the directory fsynced (a backup:
 * it holds the cluster's CA key). Returns 0, or CS_ESTORAGE with err filled
 * (the path and the system's words); then path is as it was. */
int swarmctl_cli_write_private(const char *path, const uint8_t *data, size_t len,
			       char *err, size_t n);

/* ---------------------------------------------------------------- events */

/* swarmctl_cli_print_event writes one event (issue 20) as one line:
 * "TIME TYPE ACTION ID (name=N, index=I[, service=S, node=N, slot=K,
 * state=S][, key=value...])", or with json one JSON object
 * {"index","ord","time","type","action","id","name",...,"attributes"}. */
void swarmctl_cli_print_event(FILE *out, const Cs__Event *ev, bool json);
/* ---------------------------------------------------------------- secrets and configs (issue 20) */

/* swarmctl_cli_print_secrets lists secrets or configs (ID NAME CREATED
 * UPDATED, or JSON); swarmctl_cli_print_secret prints one as JSON (its
 * data only when the answer holds it: a config's, base64 as Docker's). */
void swarmctl_cli_print_secrets(FILE *out, enum swarmctl_cli_format fmt,
				Cs__Secret *const *v, size_t n);
void swarmctl_cli_print_secret(FILE *out, const Cs__Secret *x);

/* The bound of one `service logs` read (ms since the epoch; 0: none):
 * none while following; a tail's first read takes the last lines as each
 * node reads them (Docker cuts a tail before its until, so a task that
 * writes between the ask and its node's read would show nothing); every
 * other read stops at the time of the ask (asked_ms), so a chatty
 * service's logs end. */
uint64_t swarmctl_cli_logs_until(bool follow, bool tail_first_read, uint64_t asked_ms);

#endif
