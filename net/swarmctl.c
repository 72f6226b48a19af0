/* swarmctl: the operator's command line. Sends one ControlRequest at a time
 * to swarmd's control socket (net/ctlsock.h) and prints the answer as an
 * aligned table or as JSON. Parsing and printing live in swarmctl_cli.c;
 * this file holds the commands, their help and main. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <time.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "core/limits.h"
#include "net/ctlsock.h"
#include "net/swarmctl_cli.h"

#define SWARMCTL_VERSION      "0.1.0"
#define SWARMCTL_SOCKET	      "/run/cswarm/swarmd.sock"
#define SWARMCTL_TIMEOUT_MS   30000 /* a follower waits 10 s for the leader */
#define SWARMCTL_EXIT_CLUSTER 1
#define SWARMCTL_EXIT_USAGE   2

struct ctl {
	const char *socket;
	enum swarmctl_cli_format format;
	uint64_t next_id;
};

/* ---------------------------------------------------------------- help */

static const char help_main[] =
	"Usage: swarmctl [--socket PATH] [--format table|json] COMMAND ...\n"
	"\n"
	"Operates a cswarm cluster through a manager's control socket.\n"
	"\n"
	"Commands:\n"
	"  service create|ls|inspect|update|rm|ps   services\n"
	"  task ls|inspect                        tasks\n"
	"  node ls|inspect|update|promote|demote|rm|ps   nodes\n"
	"  cluster inspect|join-token|rotate-token|update|backup   the cluster\n"
	"  ca rotate                              a new root CA\n"
	"  network create|ls|inspect|rm           networks\n"
	"  events [--filter K=V] [--since INDEX]  the event stream, until interrupted\n"
	"  secret create|ls|inspect|rm            secrets (issue 20)\n"
	"  config create|ls|inspect|rm            configs\n"
	"\n"
	"Options (anywhere before --):\n"
	"  --socket PATH        the daemon's control socket (default: $SWARM_SOCKET,\n"
	"                       else " SWARMCTL_SOCKET ")\n"
	"  --format table|json  output of ls commands (default table); inspect\n"
	"                       always prints JSON\n"
	"  --help, -h           help of any command\n"
	"  --version            print the version\n"
	"\n"
	"A service, task or node is named by its id, a unique prefix of its id, or\n"
	"its name (a service) or hostname (a node), as docker's.\n"
	"\n"
	"Exit status: 0 success, 1 an error from the cluster or the socket, 2 bad\n"
	"usage. Errors are one line on stderr: 'swarmctl: ...'.\n"
	"\n"
	"JSON fields (snake_case; ids are 16 hex digits):\n"
	"  service ls: id name mode replicas running image version update_state\n"
	"              (a job: job_iteration completed completions)\n"
	"  task ls:    id service service_id slot node node_id desired state message\n"
	"              container_id exit_code timestamp_ms\n"
	"  node ls:    id hostname status availability role desired_role leader\n"
	"              manager_addr labels\n";

static const char help_service_flags[] =
	"  --replicas N                  replicas (replicated mode; default 1)\n"
	"  --mode replicated|global|replicated-job|global-job   (create only;\n"
	"                                a job's tasks run to completion, and\n"
	"                                every update runs it again)\n"
	"  --max-concurrent N            a replicated job's tasks at once (default:\n"
	"                                --replicas, its total completions)\n"
	"  --image IMAGE                 (required on create)\n"
	"  --env KEY=VALUE               repeatable\n"
	"  --constraint EXPR             repeatable: node.id|node.hostname|node.role|\n"
	"                                node.labels.KEY, == or !=, value\n"
	"  --placement-pref spread=node.labels.KEY   repeatable (up to 4)\n"
	"  --label KEY=VALUE             repeatable: the service's labels (task ls\n"
	"                                --filter label=...); no task restarts\n"
	"  --reserve-cpu CORES           e.g. 0.5\n"
	"  --reserve-memory SIZE         e.g. 64MiB, 1G (units of 1024)\n"
	"  --limit-cpu CORES\n"
	"  --limit-memory SIZE\n"
	"  --restart-condition any|on-failure|none\n"
	"  --restart-delay DUR           e.g. 500ms, 10s, 1m30s\n"
	"  --restart-max-attempts N\n"
	"  --restart-window DUR\n"
	"  --update-parallelism N\n"
	"  --update-delay DUR\n"
	"  --update-failure-action pause|continue|rollback\n"
	"  --update-monitor DUR\n"
	"  --update-max-failure-ratio F  0 to 1\n"
	"  --update-order stop-first|start-first\n"
	"  --rebalance                   move running tasks to even out the spread\n"
	"                                when nodes join or come back (issue 20);\n"
	"                                --no-rebalance (or --rebalance=false): off\n"
	"  --rebalance-parallelism N     tasks down at once for it (default: the\n"
	"                                update parallelism, or 1)\n"
	"  --health-cmd CMD              run by the container's shell; a task is\n"
	"                                RUNNING once healthy, FAILED when unhealthy\n"
	"  --health-interval DUR         (default 30s)\n"
	"  --health-timeout DUR          (default 30s)\n"
	"  --health-retries N            failures in a row: unhealthy (default 3)\n"
	"  --health-start-period DUR     failures before the first success not counted\n"
	"  --no-healthcheck              disable any check, the image's too\n"
	"  --stop-grace-period DUR       SIGTERM, then SIGKILL after this (default 10s)\n"
	"  --rollback-parallelism N      the rollback's own config (as --update-*;\n"
	"  --rollback-delay DUR          without one: 1 at a time, pause, 5s,\n"
	"  --rollback-failure-action pause|continue|rollback    stop-first)\n"
	"  --rollback-monitor DUR\n"
	"  --rollback-max-failure-ratio F\n"
	"  --rollback-order stop-first|start-first\n"
	"  --network NAME                repeatable (or name=NAME,alias=A...)\n"
	"  --publish published=P,target=T[,protocol=tcp|udp|sctp][,mode=ingress|host]\n"
	"  -p P:T[/PROTO]                repeatable; an ingress port not given is\n"
	"                                drawn from 30000-32767\n"
	"  --endpoint-mode vip|dnsrr\n"
	"  --secret NAME|source=NAME[,target=T][,uid=U][,gid=G][,mode=0444]\n"
	"                                repeatable: a file /run/secrets/T (T: NAME)\n"
	"  --config NAME|source=NAME[,target=/PATH][,uid=U][,gid=G][,mode=0444]\n"
	"                                repeatable: a file at PATH (/NAME)\n"
	"  --secret-rm NAME, --config-rm NAME   update: drop a reference\n"
	"  -- CMD ARG...                 the command to run (the image's if none)\n";

struct cmd {
	const char *group, *name;
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *usage;
	const char *help; /* extra lines */
};

/* ---------------------------------------------------------------- calls */

static int usage_error(const struct cmd *cmd, const char *what)
{
	fprintf(stderr, "swarmctl: %s\n", what);
	if (cmd)
		fprintf(stderr, "Usage: swarmctl %s\n", cmd->usage);
	if (cmd)
		fprintf(stderr, "See 'swarmctl %s %s --help'.\n", cmd->group, cmd->name);
	else
		fputs("See 'swarmctl --help'.\n", stderr);
	return SWARMCTL_EXIT_USAGE;
}

/* call sends req; on success *resp (free with
 * cs__control_response__free_unpacked). Prints the error and returns
 * SWARMCTL_EXIT_CLUSTER on failure. */
static int call(struct ctl *c, Cs__ControlRequest *req, Cs__ControlResponse **resp)
{
	char err[512];
	int rv;

	req->id = ++c->next_id;
	rv = ctlsock_request(c->socket, req, resp, SWARMCTL_TIMEOUT_MS, err, sizeof err);
	if (rv) {
		fprintf(stderr, "swarmctl: %s\n", err);
		return SWARMCTL_EXIT_CLUSTER;
	}
	if ((*resp)->status != 0) {
		fprintf(stderr, "swarmctl: %s\n",
			(*resp)->error && *(*resp)->error ? (*resp)->error
							  : cs_strerror((*resp)->status));
		cs__control_response__free_unpacked(*resp, NULL);
		*resp = NULL;
		return SWARMCTL_EXIT_CLUSTER;
	}
	return 0;
}

static void warn_cut(size_t shown, uint64_t total, const char *what)
{
	if (total > shown)
		fprintf(stderr, "swarmctl: showing %zu of %llu %s (one answer's limit)\n",
			shown, (unsigned long long)total, what);
}

static int list(struct ctl *c, Cs__ControlOp op, const char *service,
		Cs__ControlResponse **resp)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	req.op = op;
	req.service = (char *)(service ? service : "");
	return call(c, &req, resp);
}

/* ---------------------------------------------------------------- services */

static int service_create(struct ctl *c, int argc, char **argv);
static int service_update(struct ctl *c, int argc, char **argv);
static int service_ls(struct ctl *c, int argc, char **argv);
static int service_inspect(struct ctl *c, int argc, char **argv);
static int service_rm(struct ctl *c, int argc, char **argv);
static int task_ls(struct ctl *c, int argc, char **argv);
static int task_inspect(struct ctl *c, int argc, char **argv);
static int service_ps(struct ctl *c, int argc, char **argv);
static int node_ps(struct ctl *c, int argc, char **argv);

#define TASK_FILTER_HELP                                                          \
	"Filters, as docker's (values of one kind are alternatives; kinds all\n"  \
	"apply): node=NODE (id, id prefix or hostname), desired-state=STATE\n"    \
	"(running, shutdown, accepted, ...), label=KEY or label=KEY=VALUE (the\n" \
	"labels of the task's service), service=SERVICE.\n"
static int node_ls(struct ctl *c, int argc, char **argv);
static int node_inspect(struct ctl *c, int argc, char **argv);
static int node_update(struct ctl *c, int argc, char **argv);
static int node_promote(struct ctl *c, int argc, char **argv);
static int node_demote(struct ctl *c, int argc, char **argv);
static int node_rm(struct ctl *c, int argc, char **argv);
static int cluster_inspect(struct ctl *c, int argc, char **argv);
static uint64_t leader_raft_id(struct ctl *c);
static int cluster_join_token(struct ctl *c, int argc, char **argv);
static int cluster_rotate_token(struct ctl *c, int argc, char **argv);
static int cluster_update(struct ctl *c, int argc, char **argv);
static int cluster_unlock_key(struct ctl *c, int argc, char **argv);
static int node_unlock(struct ctl *c, int argc, char **argv);
static int ca_rotate(struct ctl *c, int argc, char **argv);
static int cluster_backup(struct ctl *c, int argc, char **argv);
static int network_create(struct ctl *c, int argc, char **argv);
static int network_ls(struct ctl *c, int argc, char **argv);
static int network_inspect(struct ctl *c, int argc, char **argv);
static int network_rm(struct ctl *c, int argc, char **argv);
static int service_logs(struct ctl *c, int argc, char **argv);
static int events_run(struct ctl *c, int argc, char **argv);
static const char events_usage[] =
	"events [--filter KEY=VALUE]... [--since RAFT_INDEX] [--json]";
static const char events_help[] =
	"Streams this manager's events (issue 20) until interrupted: services,\n"
	"nodes, tasks and networks created, updated and removed, in commit order,\n"
	"each with the Raft index it committed at. Every manager keeps its own\n"
	"(the last 4096): no leader is needed to read them.\n"
	"  --filter type=service|node|task|network   repeatable; same keys are\n"
	"  --filter name=NAME                        alternatives, different keys\n"
	"  --filter id=ID (or a prefix)              must all hold\n"
	"  --filter event=create|update|remove\n"
	"  --since RAFT_INDEX   from the events at that index on (default: from now)\n"
	"  --json               one JSON object a line\n"
	"A reader that falls more than 4096 events behind (or asks for events the\n"
	"manager no longer has) is stopped with a message naming the index to\n"
	"start again from (exit 1): events are never skipped silently.\n";
static int secret_create(struct ctl *c, int argc, char **argv);
static int secret_ls(struct ctl *c, int argc, char **argv);
static int secret_inspect(struct ctl *c, int argc, char **argv);
static int secret_rm(struct ctl *c, int argc, char **argv);
static int config_create(struct ctl *c, int argc, char **argv);
static int config_ls(struct ctl *c, int argc, char **argv);
static int config_inspect(struct ctl *c, int argc, char **argv);
static int config_rm(struct ctl *c, int argc, char **argv);

static const struct cmd cmds[] = {
	{"service", "create", service_create,
	 "service create --name NAME --image IMAGE [FLAGS] [-- CMD ARG...]",
	 "Creates a service; prints its id.\n"},
	{"service", "ls", service_ls, "service ls",
	 "Lists services: ID NAME MODE REPLICAS (running/desired) IMAGE.\n"},
	{"service", "inspect", service_inspect, "service inspect NAME",
	 "Prints a service, its spec and previous spec as JSON.\n"},
	{"service", "update", service_update,
	 "service update NAME [FLAGS] [--rollback] [--force] [-- CMD ARG...]",
	 "Changes only what the flags say (lists given replace the whole list);\n"
	 "--rollback (alone) goes back to the previous spec, rolled out with the\n"
	 "service's rollback config (--rollback-*). Sent with the version read,\n"
	 "so a concurrent change makes it fail rather than be lost.\n"
	 "--force replaces every task (a rolling update) with no other change\n"
	 "(SwarmKit's ForceUpdate counter).\n"},
	{"service", "rm", service_rm, "service rm NAME...", "Removes services.\n"},
	{"task", "ls", task_ls, "task ls [--service NAME] [--filter KEY=VALUE]...",
	 "Lists tasks: ID SERVICE SLOT NODE DESIRED STATE MESSAGE.\n" TASK_FILTER_HELP},
	{"service", "ps", service_ps, "service ps SERVICE [--filter KEY=VALUE]...",
	 "Lists the tasks of a service (task ls --service SERVICE).\n" TASK_FILTER_HELP},
	{"node", "ps", node_ps, "node ps NODE [--filter KEY=VALUE]...",
	 "Lists the tasks on a node (task ls --filter node=NODE).\n" TASK_FILTER_HELP},
	{"task", "inspect", task_inspect, "task inspect ID", "Prints a task as JSON.\n"},
	{"node", "ls", node_ls, "node ls",
	 "Lists nodes: ID HOSTNAME STATUS AVAILABILITY ROLE.\n"},
	{"node", "inspect", node_inspect, "node inspect NODE",
	 "Prints a node (id or hostname) as JSON.\n"},
	{"node", "update", node_update,
	 "node update NODE [--availability active|pause|drain] [--label-add K=V]... "
	 "[--label-rm K]...",
	 "Changes a node's availability and labels.\n"},
	{"node", "promote", node_promote, "node promote NODE...",
	 "Makes workers managers.\n"},
	{"node", "demote", node_demote, "node demote NODE...",
	 "Makes managers workers (refused when it would cost the quorum).\n"},
	{"node", "rm", node_rm, "node rm [--force|-f] NODE...",
	 "Removes nodes from the cluster, as SwarmKit: a node still a manager in\n"
	 "the Raft group is refused, --force or not (demote it first); a READY\n"
	 "node needs --force (its tasks move to other nodes); a node down goes\n"
	 "without. A removed node may not join again as itself.\n"},
	{"cluster", "inspect", cluster_inspect, "cluster inspect",
	 "Prints the cluster record as JSON (without the tokens).\n"},
	{"cluster", "join-token", cluster_join_token, "cluster join-token worker|manager",
	 "Prints the join token alone on one line.\n"},
	{"cluster", "rotate-token", cluster_rotate_token,
	 "cluster rotate-token [worker|manager|both]",
	 "Replaces join tokens (both by default); joined nodes are not affected.\n"},
	{"cluster", "update", cluster_update,
	 "cluster update --cert-expiry DURATION | --autolock=true|false | "
	 "--orphan-delay DURATION | --network-key-rotation DURATION | "
	 "--rotate-network-keys | --dispatcher-heartbeat DURATION | "
	 "--task-history-limit N",
	 "--cert-expiry sets the life of node certificates (90 days by default, at\n"
	 "least 1m); nodes renew theirs by themselves at 50-80% of its life.\n"
	 "--autolock=true seals every manager's state with an unlock key, printed\n"
	 "once: keep it; a restarted manager waits for `swarmctl node unlock`.\n"
	 "--orphan-delay: a node down that long has its tasks marked ORPHANED and\n"
	 "freed (24h by default, at least 1s; 0 for the default).\n"
	 "--network-key-rotation: how often the encrypted overlays' keys rotate\n"
	 "(12h by default, at least 1m; 0 for the default); --rotate-network-keys\n"
	 "rotates them now.\n"
	 "--dispatcher-heartbeat: how often agents heartbeat (the managers' own, 5s\n"
	 "by default; 0 for it; at least 10ms); a node silent for 3 periods is\n"
	 "DOWN.\n"
	 "--task-history-limit: the tasks a slot keeps, its live one included (the\n"
	 "managers' own, 5 by default; 0 for it).\n"},
	{"cluster", "unlock-key", cluster_unlock_key, "cluster unlock-key [--rotate]",
	 "Prints the unlock key (autolock on), or replaces it with --rotate.\n"},
	{"cluster", "backup", cluster_backup, "cluster backup FILE",
	 "Writes a backup of the cluster to FILE (mode 0600): the leader's whole\n"
	 "store at one applied index, taken while it runs. It holds the cluster's\n"
	 "root CA key in the clear: keep it like that key. `swarmd --restore FILE`\n"
	 "starts a new one-manager cluster from it on an empty state dir.\n"},
	{"node", "unlock", node_unlock, "node unlock [--unlock-key-file FILE]",
	 "Unlocks this manager (locked by autolock after a restart): the key from\n"
	 "FILE's first line, or from stdin.\n"},
	{"ca", "rotate", ca_rotate, "ca rotate",
	 "Starts a root CA rotation and returns: a new root; nodes renew to trust\n"
	 "both roots, then get certificates from the new one, then trust only it.\n"
	 "No node loses contact on the way. It waits for every node in the\n"
	 "cluster (one that is down holds it until it is back, or removed).\n"
	 "The join tokens change when the new root takes over: the old ones stop\n"
	 "working (`cluster join-token` prints the new ones). `cluster inspect`\n"
	 "shows the phase and how many nodes are done with it. During a rotation\n"
	 "it replaces that one with a new root (as SwarmKit does): certificates\n"
	 "of the replaced root are re-issued first, then the rotation goes on.\n"},
	{"network", "create", network_create,
	 "network create [--driver overlay|bridge|host] [--subnet CIDR] [--gateway IP] "
	 "[--attachable] [--internal] [--opt encrypted] NAME",
	 "Creates a network; prints its id. Without --subnet it gets the next\n"
	 "free /24 of the cluster's pool (10.0.0.0/8).\n"},
	{"network", "ls", network_ls, "network ls",
	 "Lists networks: ID NAME DRIVER SUBNET.\n"},
	{"network", "inspect", network_inspect, "network inspect NAME",
	 "Prints a network as JSON.\n"},
	{"network", "rm", network_rm, "network rm NAME...",
	 "Removes networks (refused while a service uses one).\n"},
	{"service", "logs", service_logs,
	 "service logs [--follow] [--tail N] [--timestamps] [--task] NAME",
	 "Prints the logs of a service's tasks (of one task with --task),\n"
	 "read from their nodes through the leader's log broker: TASK@NODE | LINE,\n"
	 "stderr's lines on stderr. --tail N: the last N lines of each task;\n"
	 "--follow: then the new ones as they come, until interrupted.\n"},
	{"secret", "create", secret_create,
	 "secret create [--label KEY=VALUE]... NAME FILE|-",
	 "Creates a secret from FILE's bytes (- : stdin), at most 500 KiB; prints\n"
	 "its id. Its data is never shown again: it goes only to the nodes that\n"
	 "run a task using it, in memory, as a file /run/secrets/NAME.\n"},
	{"secret", "ls", secret_ls, "secret ls",
	 "Lists secrets: ID NAME CREATED UPDATED.\n"},
	{"secret", "inspect", secret_inspect, "secret inspect NAME",
	 "Prints a secret as JSON (without its data).\n"},
	{"secret", "rm", secret_rm, "secret rm NAME...",
	 "Removes secrets (refused while a service uses one: it names them).\n"},
	{"config", "create", config_create,
	 "config create [--label KEY=VALUE]... NAME FILE|-",
	 "Creates a config from FILE's bytes (- : stdin), at most 500 KiB; prints\n"
	 "its id.\n"},
	{"config", "ls", config_ls, "config ls",
	 "Lists configs: ID NAME CREATED UPDATED.\n"},
	{"config", "inspect", config_inspect, "config inspect NAME",
	 "Prints a config as JSON, its data in base64 (as docker config inspect).\n"},
	{"config", "rm", config_rm, "config rm NAME...",
	 "Removes configs (refused while a service uses one: it names them).\n"},
};
#define CMD_COUNT (sizeof cmds / sizeof cmds[0])

static const struct cmd *cmd_find(const char *group, const char *name)
{
	for (size_t i = 0; i < CMD_COUNT; i++)
		if (strcmp(cmds[i].group, group) == 0 && name &&
		    strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static bool group_known(const char *group)
{
	for (size_t i = 0; i < CMD_COUNT; i++)
		if (strcmp(cmds[i].group, group) == 0)
			return true;
	return false;
}

static void help_cmd(const struct cmd *cmd)
{
	printf("Usage: swarmctl %s\n\n%s", cmd->usage, cmd->help);
	if (cmd->run == service_create || cmd->run == service_update)
		printf("\nFlags:\n%s", help_service_flags);
}

static void help_group(const char *group)
{
	printf("Usage: swarmctl %s COMMAND\n\nCommands:\n", group);
	for (size_t i = 0; i < CMD_COUNT; i++)
		if (strcmp(cmds[i].group, group) == 0)
			printf("  swarmctl %s\n", cmds[i].usage);
}

static int service_create(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	struct swarmctl_cli_spec b;
	char err[512];
	int rv;

	swarmctl_cli_spec_init(&b, NULL);
	if (swarmctl_cli_spec(&b, argc, argv, false, err, sizeof err))
		return usage_error(cmd_find("service", "create"), err);
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = &b.spec;
	if ((rv = call(c, &req, &resp)))
		return rv;
	printf("%016llx\n", (unsigned long long)resp->created_id);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int service_update(struct ctl *c, int argc, char **argv)
{
	const struct cmd *cmd = cmd_find("service", "update");
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *cur, *resp;
	struct swarmctl_cli_spec b;
	const Cs__Service *svc;
	char err[512];
	int rv;

	/* once to check the flags before asking anything */
	swarmctl_cli_spec_init(&b, NULL);
	if (swarmctl_cli_spec(&b, argc, argv, true, err, sizeof err))
		return usage_error(cmd, err);
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT;
	req.name = (char *)b.target;
	if ((rv = call(c, &req, &cur)))
		return rv;
	if (cur->n_services != 1 || !cur->services[0]->spec) {
		fprintf(stderr, "swarmctl: the answer holds no service\n");
		cs__control_response__free_unpacked(cur, NULL);
		return SWARMCTL_EXIT_CLUSTER;
	}
	svc = cur->services[0];
	cs__control_request__init(&req);
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE;
	req.name = (char *)b.target;
	req.version = svc->version;
	if (b.rollback) {
		/* the manager rolls back (SwarmKit's manual rollback: the
		 * previous spec, with the service's rollback config) */
		if (argc != 2) {
			cs__control_response__free_unpacked(cur, NULL);
			return usage_error(cmd, "--rollback takes no other flag");
		}
		req.rollback = true;
	} else {
		swarmctl_cli_spec_init(&b, svc->spec);
		rv = swarmctl_cli_spec(&b, argc, argv, true, err, sizeof err);
		if (rv) {
			cs__control_response__free_unpacked(cur, NULL);
			return usage_error(cmd, err);
		}
		req.spec = &b.spec;
	}
	rv = call(c, &req, &resp);
	cs__control_response__free_unpacked(cur, NULL);
	if (rv)
		return rv;
	printf("%s\n", b.target);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

/* service ls: the services with their running/desired counts, which the
 * manager keeps (SERVICE_LIST with status, issue 18: O(services), as
 * docker service ls's REPLICAS). Every task is listed too only when a
 * job's completions need them, or the manager answers no counts (an older
 * one). */
static int service_ls(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *svcs, *tasks = NULL;
	bool need_tasks;
	int rv;

	if (argc > 0)
		return usage_error(cmd_find("service", "ls"),
				   "service ls takes no argument");
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST;
	req.status = true;
	if ((rv = call(c, &req, &svcs)))
		return rv;
	need_tasks = svcs->n_counts < svcs->n_services;
	for (size_t i = 0; i < svcs->n_services; i++)
		need_tasks |= svcs->services[i]->spec && svcs->services[i]->spec->job;
	if (need_tasks &&
	    (rv = list(c, CS__CONTROL_OP__CONTROL_OP_TASK_LIST, NULL, &tasks))) {
		cs__control_response__free_unpacked(svcs, NULL);
		return rv;
	}
	warn_cut(svcs->n_services, svcs->total, "services");
	if (tasks)
		warn_cut(tasks->n_tasks, tasks->total,
			 "tasks (running counts may be low)");
	swarmctl_cli_print_services(
		stdout, c->format, svcs->services, svcs->n_services, svcs->counts,
		svcs->n_counts, tasks ? tasks->tasks : NULL, tasks ? tasks->n_tasks : 0);
	cs__control_response__free_unpacked(svcs, NULL);
	if (tasks)
		cs__control_response__free_unpacked(tasks, NULL);
	return 0;
}

static int service_inspect(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *svc, *tasks;
	int rv;

	if (argc != 1 || argv[0][0] == '-')
		return usage_error(cmd_find("service", "inspect"),
				   "say which service (NAME)");
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_INSPECT;
	req.name = argv[0];
	if ((rv = call(c, &req, &svc)))
		return rv;
	if ((rv = list(c, CS__CONTROL_OP__CONTROL_OP_TASK_LIST, argv[0], &tasks))) {
		cs__control_response__free_unpacked(svc, NULL);
		return rv;
	}
	if (svc->n_services == 1)
		swarmctl_cli_print_service(stdout, svc->services[0], tasks->tasks,
					   tasks->n_tasks);
	cs__control_response__free_unpacked(svc, NULL);
	cs__control_response__free_unpacked(tasks, NULL);
	return 0;
}

/* Removes each of the objects argv names with op, printing each name
 * removed; group ("service", "network") and what ("services") for the
 * usage error. */
static int rm_each(struct ctl *c, int argc, char **argv, Cs__ControlOp op,
		   const char *group, const char *what)
{
	char msg[64];
	int status = 0;

	if (argc < 1) {
		snprintf(msg, sizeof msg, "say which %s (NAME...)", what);
		return usage_error(cmd_find(group, "rm"), msg);
	}
	for (int i = 0; i < argc; i++) {
		Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
		Cs__ControlResponse *resp;
		req.op = op;
		req.name = argv[i];
		if (call(c, &req, &resp)) {
			status = SWARMCTL_EXIT_CLUSTER;
			continue;
		}
		printf("%s\n", argv[i]);
		cs__control_response__free_unpacked(resp, NULL);
	}
	return status;
}

static int service_rm(struct ctl *c, int argc, char **argv)
{
	return rm_each(c, argc, argv, CS__CONTROL_OP__CONTROL_OP_SERVICE_REMOVE,
		       "service", "services");
}

/* ---------------------------------------------------------------- networks (issue 15) */

static int network_create(struct ctl *c, int argc, char **argv)
{
	const struct cmd *cmd = cmd_find("network", "create");
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__NetworkSpec spec = CS__NETWORK_SPEC__INIT;
	Cs__ControlResponse *resp;
	int rv;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--attachable") == 0) {
			spec.attachable = true;
		} else if (strcmp(a, "--internal") == 0) {
			spec.internal = true;
		} else if (strcmp(a, "--opt") == 0 && i + 1 < argc) {
			/* issue 17: docker's -o/--opt; encrypted only */
			if (strcmp(argv[++i], "encrypted") != 0 &&
			    strcmp(argv[i], "encrypted=") != 0)
				return usage_error(cmd,
						   "--opt: only encrypted is supported");
			spec.encrypted = true;
		} else if ((strcmp(a, "--driver") == 0 || strcmp(a, "-d") == 0) &&
			   i + 1 < argc) {
			spec.driver = argv[++i];
		} else if (strcmp(a, "--subnet") == 0 && i + 1 < argc) {
			spec.subnet = argv[++i];
		} else if (strcmp(a, "--gateway") == 0 && i + 1 < argc) {
			spec.gateway = argv[++i];
		} else if (a[0] != '-' && !spec.name[0]) {
			spec.name = argv[i];
		} else {
			return usage_error(cmd, "unexpected argument (see --help)");
		}
	}
	if (!spec.name[0])
		return usage_error(cmd, "say which network (NAME)");
	req.op = CS__CONTROL_OP__CONTROL_OP_NETWORK_CREATE;
	req.network = &spec;
	if ((rv = call(c, &req, &resp)))
		return rv;
	printf("%016llx\n", (unsigned long long)resp->created_id);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int network_ls(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;
	(void)argv;

	if (argc > 0)
		return usage_error(cmd_find("network", "ls"),
				   "network ls takes no argument");
	req.op = CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST;
	if ((rv = call(c, &req, &resp)))
		return rv;
	swarmctl_cli_print_networks(stdout, c->format, resp->networks, resp->n_networks);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int network_inspect(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;

	if (argc != 1 || argv[0][0] == '-')
		return usage_error(cmd_find("network", "inspect"),
				   "say which network (NAME)");
	req.op = CS__CONTROL_OP__CONTROL_OP_NETWORK_INSPECT;
	req.name = argv[0];
	if ((rv = call(c, &req, &resp)))
		return rv;
	if (resp->n_networks == 1)
		swarmctl_cli_print_network(stdout, resp->networks[0]);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int network_rm(struct ctl *c, int argc, char **argv)
{
	return rm_each(c, argc, argv, CS__CONTROL_OP__CONTROL_OP_NETWORK_REMOVE,
		       "network", "networks");
}

/* ---------------------------------------------------------------- secrets and configs (issue 20) */

/* Reads path ("-": stdin) whole into *buf (freed by the caller), at most
 * LIMIT_SECRET_BYTES_MAX + 1 bytes: one more says it is over the limit. */
static int read_secret_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = LIMIT_SECRET_BYTES_MAX + 1, n;
	uint8_t *p;

	if (!f) {
		fprintf(stderr, "swarmctl: %s: %s\n", path, strerror(errno));
		return SWARMCTL_EXIT_USAGE;
	}
	p = malloc(cap);
	if (!p) {
		if (f != stdin)
			fclose(f);
		return SWARMCTL_EXIT_CLUSTER;
	}
	n = fread(p, 1, cap, f);
	if (ferror(f)) {
		fprintf(stderr, "swarmctl: %s: read failed\n", path);
		free(p);
		if (f != stdin)
			fclose(f);
		return SWARMCTL_EXIT_USAGE;
	}
	if (f != stdin)
		fclose(f);
	*buf = p;
	*len = n;
	return 0;
}

static int file_create(struct ctl *c, int argc, char **argv, bool config)
{
	const struct cmd *cmd = cmd_find(config ? "config" : "secret", "create");
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__Secret x = CS__SECRET__INIT;
	Cs__Label labels[64], *label_ptrs[64];
	Cs__ControlResponse *resp;
	const char *name = NULL, *path = NULL;
	uint8_t *data = NULL;
	size_t len = 0, n_labels = 0;
	int rv;

	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "--label") == 0 || strcmp(argv[i], "-l") == 0) &&
		    i + 1 < argc) {
			char *eq;
			if (n_labels == 64)
				return usage_error(cmd, "more than 64 labels");
			cs__label__init(&labels[n_labels]);
			labels[n_labels].key = argv[++i];
			eq = strchr(argv[i], '=');
			labels[n_labels].value = eq ? eq + 1 : "";
			if (eq)
				*eq = 0;
			label_ptrs[n_labels] = &labels[n_labels];
			n_labels++;
		} else if (!name && (argv[i][0] != '-' || !argv[i][1])) {
			name = argv[i];
		} else if (!path && (argv[i][0] != '-' || !argv[i][1])) {
			path = argv[i];
		} else {
			return usage_error(cmd, "unexpected argument (see --help)");
		}
	}
	if (!name || !path)
		return usage_error(cmd, "say NAME and FILE (or - for stdin)");
	if ((rv = read_secret_file(path, &data, &len)))
		return rv;
	if (len > LIMIT_SECRET_BYTES_MAX) {
		fprintf(stderr,
			"swarmctl: %s: over the limit of %u bytes for a %s: not created\n",
			path, LIMIT_SECRET_BYTES_MAX, config ? "config" : "secret");
		free(data);
		return SWARMCTL_EXIT_USAGE;
	}
	x.name = (char *)name;
	x.data.data = data;
	x.data.len = len;
	x.n_labels = n_labels;
	x.labels = label_ptrs;
	req.op = CS__CONTROL_OP__CONTROL_OP_SECRET_CREATE;
	req.secret = &x;
	req.secret_config = config;
	rv = call(c, &req, &resp);
	memset(data, 0, len);
	free(data);
	if (rv)
		return rv;
	printf("%016llx\n", (unsigned long long)resp->created_id);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int file_ls(struct ctl *c, int argc, char **argv, bool config)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;
	(void)argv;

	if (argc > 0)
		return usage_error(cmd_find(config ? "config" : "secret", "ls"),
				   "ls takes no argument");
	req.op = CS__CONTROL_OP__CONTROL_OP_SECRET_LIST;
	req.secret_config = config;
	if ((rv = call(c, &req, &resp)))
		return rv;
	swarmctl_cli_print_secrets(stdout, c->format, resp->secrets, resp->n_secrets);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int file_inspect(struct ctl *c, int argc, char **argv, bool config)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;

	if (argc != 1 || argv[0][0] == '-')
		return usage_error(cmd_find(config ? "config" : "secret", "inspect"),
				   "say which one (NAME)");
	req.op = CS__CONTROL_OP__CONTROL_OP_SECRET_INSPECT;
	req.secret_config = config;
	req.name = argv[0];
	if ((rv = call(c, &req, &resp)))
		return rv;
	if (resp->n_secrets == 1)
		swarmctl_cli_print_secret(stdout, resp->secrets[0]);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int file_rm(struct ctl *c, int argc, char **argv, bool config)
{
	int status = 0;

	if (argc < 1)
		return usage_error(cmd_find(config ? "config" : "secret", "rm"),
				   "say which (NAME...)");
	for (int i = 0; i < argc; i++) {
		Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
		Cs__ControlResponse *resp;
		req.op = CS__CONTROL_OP__CONTROL_OP_SECRET_REMOVE;
		req.secret_config = config;
		req.name = argv[i];
		if (call(c, &req, &resp)) {
			status = SWARMCTL_EXIT_CLUSTER;
			continue;
		}
		printf("%s\n", argv[i]);
		cs__control_response__free_unpacked(resp, NULL);
	}
	return status;
}

static int secret_create(struct ctl *c, int argc, char **argv)
{
	return file_create(c, argc, argv, false);
}
static int secret_ls(struct ctl *c, int argc, char **argv)
{
	return file_ls(c, argc, argv, false);
}
static int secret_inspect(struct ctl *c, int argc, char **argv)
{
	return file_inspect(c, argc, argv, false);
}
static int secret_rm(struct ctl *c, int argc, char **argv)
{
	return file_rm(c, argc, argv, false);
}
static int config_create(struct ctl *c, int argc, char **argv)
{
	return file_create(c, argc, argv, true);
}
static int config_ls(struct ctl *c, int argc, char **argv)
{
	return file_ls(c, argc, argv, true);
}
static int config_inspect(struct ctl *c, int argc, char **argv)
{
	return file_inspect(c, argc, argv, true);
}
static int config_rm(struct ctl *c, int argc, char **argv)
{
	return file_rm(c, argc, argv, true);
}

/* ---------------------------------------------------------------- tasks */

/* Lists tasks for cmd: those of service / on node when given (a command's
 * argument), and what argv's --service and --filter flags say. */
static int tasks_show(struct ctl *c, const struct cmd *cmd, const char *service,
		      char *node, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *tasks, *svcs = NULL, *nodes = NULL;
	struct swarmctl_cli_task_filter f;
	char err[512];
	int rv;

	memset(&f, 0, sizeof f);
	f.service = service;
	if (node)
		f.nodes[f.node_count++] = node;
	for (int i = 0; i < argc; i++) {
		char *v = NULL;
		bool is_service = strcmp(argv[i], "--service") == 0;
		if ((is_service || strcmp(argv[i], "--filter") == 0) && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--service=", 10) == 0) {
			is_service = true;
			v = argv[i] + 10;
		} else if (strncmp(argv[i], "--filter=", 9) == 0)
			v = argv[i] + 9;
		else if (is_service || strcmp(argv[i], "--filter") == 0)
			return usage_error(cmd, is_service ? "--service: needs a value"
							   : "--filter: needs a value");
		else
			return usage_error(cmd, "unexpected argument (see --help)");
		if (is_service)
			f.service = v;
		else if (swarmctl_cli_task_filter(&f, v, err, sizeof err))
			return usage_error(cmd, err);
	}
	req.op = CS__CONTROL_OP__CONTROL_OP_TASK_LIST;
	req.service = (char *)(f.service ? f.service : "");
	req.n_filter_nodes = f.node_count;
	req.filter_nodes = f.nodes;
	req.n_filter_desired_states = f.desired_count;
	req.filter_desired_states = f.desired;
	req.n_filter_labels = f.label_count;
	req.filter_labels = f.labels;
	if ((rv = call(c, &req, &tasks)))
		return rv;
	if ((rv = list(c, CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST, NULL, &svcs)) ||
	    (rv = list(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL, &nodes)))
		goto out;
	warn_cut(tasks->n_tasks, tasks->total, "tasks");
	swarmctl_cli_print_tasks(stdout, c->format, tasks->tasks, tasks->n_tasks,
				 svcs->services, svcs->n_services, nodes->nodes,
				 nodes->n_nodes);
out:
	cs__control_response__free_unpacked(tasks, NULL);
	if (svcs)
		cs__control_response__free_unpacked(svcs, NULL);
	if (nodes)
		cs__control_response__free_unpacked(nodes, NULL);
	return rv;
}

static int task_ls(struct ctl *c, int argc, char **argv)
{
	return tasks_show(c, cmd_find("task", "ls"), NULL, NULL, argc, argv);
}

static int service_ps(struct ctl *c, int argc, char **argv)
{
	if (argc < 1 || argv[0][0] == '-')
		return usage_error(cmd_find("service", "ps"), "say which service");
	return tasks_show(c, cmd_find("service", "ps"), argv[0], NULL, argc - 1,
			  argv + 1);
}

static int node_ps(struct ctl *c, int argc, char **argv)
{
	if (argc < 1 || argv[0][0] == '-')
		return usage_error(cmd_find("node", "ps"), "say which node");
	return tasks_show(c, cmd_find("node", "ps"), NULL, argv[0], argc - 1, argv + 1);
}

static int task_inspect(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *task, *svcs = NULL, *nodes = NULL;
	const char *service = "", *node = "";
	int rv;

	if (argc != 1)
		return usage_error(cmd_find("task", "inspect"), "say which task (ID)");
	if (!*argv[0] || strlen(argv[0]) > 16 ||
	    strspn(argv[0], "0123456789abcdefABCDEF") != strlen(argv[0]))
		return usage_error(cmd_find("task", "inspect"),
				   "ID: expected a task id or its prefix (up to 16 hex "
				   "digits)");
	req.op = CS__CONTROL_OP__CONTROL_OP_TASK_INSPECT;
	req.name = argv[0]; /* the leader resolves a prefix (task_id 0) */
	if ((rv = call(c, &req, &task)))
		return rv;
	/* names are a nicety: without them the ids still print */
	if (list(c, CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST, NULL, &svcs) == 0)
		for (size_t i = 0; i < svcs->n_services && task->n_tasks; i++)
			if (svcs->services[i]->id == task->tasks[0]->service_id)
				service = svcs->services[i]->spec->name;
	if (list(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL, &nodes) == 0)
		for (size_t i = 0; i < nodes->n_nodes && task->n_tasks; i++)
			if (nodes->nodes[i]->id == task->tasks[0]->node_id)
				node = nodes->nodes[i]->hostname;
	if (task->n_tasks == 1)
		swarmctl_cli_print_task(stdout, task->tasks[0], service, node);
	cs__control_response__free_unpacked(task, NULL);
	if (svcs)
		cs__control_response__free_unpacked(svcs, NULL);
	if (nodes)
		cs__control_response__free_unpacked(nodes, NULL);
	return 0;
}

/* ---------------------------------------------------------------- nodes */

static int node_ls(struct ctl *c, int argc, char **argv)
{
	Cs__ControlResponse *nodes;
	int rv;

	if (argc > 0)
		return usage_error(cmd_find("node", "ls"), "node ls takes no argument");
	if ((rv = list(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL, &nodes)))
		return rv;
	warn_cut(nodes->n_nodes, nodes->total, "nodes");
	swarmctl_cli_print_nodes(stdout, c->format, nodes->nodes, nodes->n_nodes,
				 leader_raft_id(c));
	cs__control_response__free_unpacked(nodes, NULL);
	return 0;
}

static int node_inspect(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;

	if (argc != 1 || argv[0][0] == '-')
		return usage_error(cmd_find("node", "inspect"),
				   "say which node (id or hostname)");
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_INSPECT;
	req.name = argv[0];
	if ((rv = call(c, &req, &resp)))
		return rv;
	if (resp->n_nodes == 1)
		swarmctl_cli_print_node(stdout, resp->nodes[0], leader_raft_id(c));
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int node_update(struct ctl *c, int argc, char **argv)
{
	const struct cmd *cmd = cmd_find("node", "update");
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	Cs__Label labels[SWARMCTL_CLI_LIST_MAX], *adds[SWARMCTL_CLI_LIST_MAX];
	char *rms[SWARMCTL_CLI_LIST_MAX], msg[512];
	int rv;

	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE;
	req.label_add = adds;
	req.label_rm = rms;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i], *v;
		if (a[0] != '-') {
			if (*req.name) /* the INIT's "" until named */
				return usage_error(cmd, "one node at a time");
			req.name = a;
			continue;
		}
		if (strcmp(a, "--availability") && strcmp(a, "--label-add") &&
		    strcmp(a, "--label-rm")) {
			snprintf(msg, sizeof msg, "unknown flag '%s' (see --help)", a);
			return usage_error(cmd, msg);
		}
		if (i + 1 >= argc) {
			snprintf(msg, sizeof msg, "%s: needs a value", a);
			return usage_error(cmd, msg);
		}
		v = argv[++i];
		if (strcmp(a, "--availability") == 0) {
			static const char *const names[] = {"active", "pause", "drain"};
			size_t k = 0;
			while (k < 3 && strcmp(names[k], v) != 0)
				k++;
			if (k == 3) {
				snprintf(msg, sizeof msg,
					 "--availability: unknown value '%s' (expected "
					 "active, pause or drain)",
					 v);
				return usage_error(cmd, msg);
			}
			req.set_availability = true;
			req.availability = (Cs__NodeAvailability)k;
		} else if (req.n_label_add + req.n_label_rm >= SWARMCTL_CLI_LIST_MAX) {
			return usage_error(cmd, "too many label changes");
		} else if (strcmp(a, "--label-add") == 0) {
			char *eq = strchr(v, '=');
			Cs__Label *l = &labels[req.n_label_add];
			if (eq == v || !*v) {
				snprintf(msg, sizeof msg,
					 "--label-add: '%s' is not KEY=VALUE or KEY", v);
				return usage_error(cmd, msg);
			}
			cs__label__init(l);
			if (eq)
				*eq = 0; /* argv is ours to cut */
			l->key = v;
			l->value = eq ? eq + 1 : "";
			adds[req.n_label_add++] = l;
		} else {
			if (!*v)
				return usage_error(cmd, "--label-rm: needs a key");
			rms[req.n_label_rm++] = v;
		}
	}
	if (!*req.name)
		return usage_error(cmd, "say which node (id or hostname)");
	if ((rv = call(c, &req, &resp)))
		return rv;
	printf("%s\n", req.name);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int node_each(struct ctl *c, const struct cmd *cmd, int argc, char **argv,
		     Cs__ControlOp op, Cs__NodeRole role)
{
	bool force = false;
	int status = 0, named = 0;

	for (int i = 0; i < argc; i++) {
		if (op == CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE &&
		    (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0))
			force = true;
		else if (argv[i][0] == '-')
			return usage_error(cmd, "unknown flag (see --help)");
		else
			named++;
	}
	if (!named)
		return usage_error(cmd, "say which nodes (id or hostname)");
	for (int i = 0; i < argc; i++) {
		Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
		Cs__ControlResponse *resp;
		if (argv[i][0] == '-')
			continue;
		req.op = op;
		req.name = argv[i];
		req.role = role;
		req.force = force;
		if (call(c, &req, &resp)) {
			status = SWARMCTL_EXIT_CLUSTER;
			continue;
		}
		printf("%s\n", argv[i]);
		cs__control_response__free_unpacked(resp, NULL);
	}
	return status;
}

static int node_promote(struct ctl *c, int argc, char **argv)
{
	return node_each(c, cmd_find("node", "promote"), argc, argv,
			 CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE,
			 CS__NODE_ROLE__NODE_ROLE_MANAGER);
}

static int node_demote(struct ctl *c, int argc, char **argv)
{
	return node_each(c, cmd_find("node", "demote"), argc, argv,
			 CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE,
			 CS__NODE_ROLE__NODE_ROLE_WORKER);
}

static int node_rm(struct ctl *c, int argc, char **argv)
{
	return node_each(c, cmd_find("node", "rm"), argc, argv,
			 CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE,
			 CS__NODE_ROLE__NODE_ROLE_WORKER);
}

/* ---------------------------------------------------------------- cluster */

static int cluster_get(struct ctl *c, Cs__ControlResponse **resp)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	int rv;

	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT;
	if ((rv = call(c, &req, resp)))
		return rv;
	if (!(*resp)->cluster) {
		fprintf(stderr, "swarmctl: the answer holds no cluster\n");
		cs__control_response__free_unpacked(*resp, NULL);
		return SWARMCTL_EXIT_CLUSTER;
	}
	return 0;
}

/* The raft id of the leader the cluster record names (0: unknown; the
 * record is a nicety here, its errors are not shown). */
static uint64_t leader_raft_id(struct ctl *c)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	char err[256];
	uint64_t id = 0;

	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT;
	req.id = ++c->next_id;
	if (ctlsock_request(c->socket, &req, &resp, SWARMCTL_TIMEOUT_MS, err, sizeof err))
		return 0;
	if (resp->status == 0 && resp->cluster)
		id = resp->cluster->leader_raft_id;
	cs__control_response__free_unpacked(resp, NULL);
	return id;
}

static int cluster_inspect(struct ctl *c, int argc, char **argv)
{
	Cs__ControlResponse *resp;
	int rv;

	if (argc > 0)
		return usage_error(cmd_find("cluster", "inspect"),
				   "cluster inspect takes no argument");
	if ((rv = cluster_get(c, &resp)))
		return rv;
	swarmctl_cli_print_cluster(stdout, resp->cluster, resp->ca_nodes_done,
				   resp->ca_nodes_total);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int cluster_join_token(struct ctl *c, int argc, char **argv)
{
	Cs__ControlResponse *resp;
	bool manager;
	int rv;

	if (argc != 1 || (strcmp(argv[0], "worker") && strcmp(argv[0], "manager")))
		return usage_error(cmd_find("cluster", "join-token"),
				   "say which token: worker or manager");
	manager = strcmp(argv[0], "manager") == 0;
	if ((rv = cluster_get(c, &resp)))
		return rv;
	printf("%s\n",
	       manager ? resp->cluster->manager_token : resp->cluster->worker_token);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int cluster_rotate_token(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	const char *which = argc ? argv[0] : "both";
	int rv;

	if (argc > 1 || (strcmp(which, "worker") && strcmp(which, "manager") &&
			 strcmp(which, "both")))
		return usage_error(cmd_find("cluster", "rotate-token"),
				   "say which tokens: worker, manager or both");
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_ROTATE_TOKEN;
	req.rotate_worker = strcmp(which, "manager") != 0;
	req.rotate_manager = strcmp(which, "worker") != 0;
	if ((rv = call(c, &req, &resp)))
		return rv;
	printf("rotated %s\n", strcmp(which, "both") == 0 ? "both tokens" : which);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int ca_rotate(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;

	(void)argv;
	if (argc > 0)
		return usage_error(cmd_find("ca", "rotate"),
				   "ca rotate takes no argument");
	req.op = CS__CONTROL_OP__CONTROL_OP_CA_ROTATE;
	if ((rv = call(c, &req, &resp)))
		return rv;
	cs__control_response__free_unpacked(resp, NULL);
	printf("root CA rotation started: `swarmctl cluster inspect` shows its progress; "
	       "the join tokens change when it takes over\n");
	return 0;
}

static int cluster_update(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	char err[256];
	const char *v = NULL, *lock = NULL, *orphan = NULL, *keyrot = NULL;
	const char *hb = NULL, *hist = NULL;
	bool rotate_keys = false;
	int rv;

	for (int i = 0; i < argc; i++) {
		/* Docker's `swarm update` names */
		if (strcmp(argv[i], "--dispatcher-heartbeat") == 0 && i + 1 < argc)
			hb = argv[++i];
		else if (strncmp(argv[i], "--dispatcher-heartbeat=", 23) == 0)
			hb = argv[i] + 23;
		else if (strcmp(argv[i], "--task-history-limit") == 0 && i + 1 < argc)
			hist = argv[++i];
		else if (strncmp(argv[i], "--task-history-limit=", 21) == 0)
			hist = argv[i] + 21;
		/* issue 17: the network keys of encrypted overlays */
		else if (strcmp(argv[i], "--network-key-rotation") == 0 && i + 1 < argc)
			keyrot = argv[++i];
		else if (strncmp(argv[i], "--network-key-rotation=", 23) == 0)
			keyrot = argv[i] + 23;
		else if (strcmp(argv[i], "--rotate-network-keys") == 0)
			rotate_keys = true;
		else if (strcmp(argv[i], "--orphan-delay") == 0 && i + 1 < argc)
			orphan = argv[++i];
		else if (strncmp(argv[i], "--orphan-delay=", 15) == 0)
			orphan = argv[i] + 15;
		else if (strcmp(argv[i], "--cert-expiry") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--cert-expiry=", 14) == 0)
			v = argv[i] + 14;
		else if (strcmp(argv[i], "--autolock") == 0 && i + 1 < argc)
			lock = argv[++i];
		else if (strncmp(argv[i], "--autolock=", 11) == 0)
			lock = argv[i] + 11;
		else {
			snprintf(err, sizeof err, "cluster update: unknown argument '%s'",
				 argv[i]);
			return usage_error(cmd_find("cluster", "update"), err);
		}
	}
	if (!v && !lock && !orphan && !keyrot && !rotate_keys && !hb && !hist)
		return usage_error(
			cmd_find("cluster", "update"),
			"say what to change: --cert-expiry DURATION, "
			"--autolock=true|false, --orphan-delay DURATION, "
			"--network-key-rotation DURATION, --rotate-network-keys, "
			"--dispatcher-heartbeat DURATION or --task-history-limit N");
	if ((v != NULL) + (lock != NULL) + (orphan != NULL) + (keyrot != NULL) +
		    rotate_keys + (hb != NULL) + (hist != NULL) >
	    1)
		return usage_error(cmd_find("cluster", "update"),
				   "one change at a time: --cert-expiry, --autolock, "
				   "--orphan-delay, --network-key-rotation, "
				   "--rotate-network-keys, --dispatcher-heartbeat or "
				   "--task-history-limit");
	if (hb) {
		req.set_heartbeat = true;
		if (swarmctl_cli_duration_ms("--dispatcher-heartbeat", hb,
					     &req.heartbeat_ms, err, sizeof err))
			return usage_error(cmd_find("cluster", "update"), err);
	} else if (hist) {
		req.set_task_history = true;
		if (swarmctl_cli_u64("--task-history-limit", hist, UINT32_MAX,
				     &req.task_history, err, sizeof err))
			return usage_error(cmd_find("cluster", "update"), err);
	} else if (rotate_keys) {
		req.rotate_network_keys = true;
	} else if (keyrot) {
		req.set_network_key_rotation = true;
		if (swarmctl_cli_duration_ms("--network-key-rotation", keyrot,
					     &req.network_key_rotation_ms, err,
					     sizeof err))
			return usage_error(cmd_find("cluster", "update"), err);
	} else if (orphan) {
		req.set_orphan_delay = true;
		if (swarmctl_cli_duration_ms("--orphan-delay", orphan,
					     &req.orphan_delay_ms, err, sizeof err))
			return usage_error(cmd_find("cluster", "update"), err);
	} else if (lock) {
		if (strcmp(lock, "true") && strcmp(lock, "false"))
			return usage_error(cmd_find("cluster", "update"),
					   "--autolock: true or false");
		req.set_autolock = true;
		req.autolock = strcmp(lock, "true") == 0;
	} else if (swarmctl_cli_duration_ms("--cert-expiry", v, &req.cert_expiry_ms, err,
					    sizeof err)) {
		return usage_error(cmd_find("cluster", "update"), err);
	}
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_UPDATE;
	if ((rv = call(c, &req, &resp)))
		return rv;
	if (lock && resp->unlock_key && *resp->unlock_key)
		printf("autolock is on. The unlock key, shown this once (keep it: a "
		       "restarted manager\nwaits for it, `swarmctl node unlock`):\n\n"
		       "    %s\n",
		       resp->unlock_key);
	else if (lock)
		printf("autolock is %s\n", req.autolock ? "on (key unchanged)" : "off");
	else if (orphan)
		printf("a node down for %s now has its tasks orphaned\n", orphan);
	else if (rotate_keys)
		printf("network keys rotated\n");
	else if (keyrot)
		printf("network keys now rotate every %s\n", keyrot);
	else if (hb)
		printf("agents now heartbeat every %s (0: the managers' own)\n", hb);
	else if (hist)
		printf("a slot now keeps %s tasks (0: the managers' own)\n", hist);
	else
		printf("node certificates now live %s\n", v);
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int cluster_unlock_key(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	int rv;

	if (argc > 1 || (argc == 1 && strcmp(argv[0], "--rotate")))
		return usage_error(cmd_find("cluster", "unlock-key"),
				   "cluster unlock-key takes --rotate or nothing");
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_UNLOCK_KEY;
	req.rotate_unlock_key = argc == 1;
	if ((rv = call(c, &req, &resp)))
		return rv;
	printf("%s\n", resp->unlock_key ? resp->unlock_key : "");
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

static int cluster_backup(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	char err[4200];
	int rv;

	if (argc != 1 || !*argv[0])
		return usage_error(cmd_find("cluster", "backup"),
				   "cluster backup takes one FILE");
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_BACKUP;
	if ((rv = call(c, &req, &resp)))
		return rv;
	if (!resp->backup.len) {
		fprintf(stderr, "swarmctl: the manager answered no backup\n");
		cs__control_response__free_unpacked(resp, NULL);
		return SWARMCTL_EXIT_CLUSTER;
	}
	rv = swarmctl_cli_write_private(argv[0], resp->backup.data, resp->backup.len, err,
					sizeof err);
	memset(resp->backup.data, 0, resp->backup.len); /* the CA key */
	if (rv == 0)
		printf("backup written to %s (%zu bytes, mode 0600: it holds the "
		       "cluster's CA key)\n",
		       argv[0], resp->backup.len);
	cs__control_response__free_unpacked(resp, NULL);
	if (rv) {
		fprintf(stderr, "swarmctl: %s\n", err);
		return SWARMCTL_EXIT_CLUSTER;
	}
	return 0;
}

static int node_unlock(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp;
	char key[256] = "", err[300];
	FILE *f = stdin;
	int rv;

	if (argc == 2 && strcmp(argv[0], "--unlock-key-file") == 0) {
		f = fopen(argv[1], "r");
		if (!f) {
			snprintf(err, sizeof err, "--unlock-key-file %s: %s", argv[1],
				 strerror(errno));
			return usage_error(cmd_find("node", "unlock"), err);
		}
	} else if (argc != 0) {
		return usage_error(cmd_find("node", "unlock"),
				   "node unlock takes --unlock-key-file FILE or nothing "
				   "(the key on stdin)");
	}
	if (f == stdin && isatty(0))
		fputs("Unlock key: ", stderr);
	if (!fgets(key, sizeof key, f))
		key[0] = '\0';
	if (f != stdin)
		fclose(f);
	key[strcspn(key, "\r\n")] = '\0';
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_UNLOCK;
	req.unlock_key = key;
	rv = call(c, &req, &resp);
	memset(key, 0, sizeof key);
	if (rv)
		return rv;
	printf("unlocked\n");
	cs__control_response__free_unpacked(resp, NULL);
	return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct ctl c = {0};
	char **args = calloc((size_t)argc + 1, sizeof *args);
	const char *format = "table";
	const struct cmd *cmd;
	bool help = false;
	int n = 0, rv;

	if (!args) {
		fprintf(stderr, "swarmctl: out of memory\n");
		return SWARMCTL_EXIT_CLUSTER;
	}
	c.socket = getenv("SWARM_SOCKET");
	if (!c.socket || !*c.socket)
		c.socket = SWARMCTL_SOCKET;
	/* global options anywhere before "--"; the rest keeps its order */
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < argc)
				args[n++] = argv[i++];
			break;
		}
		if (strcmp(a, "--socket") == 0 || strcmp(a, "--format") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "swarmctl: %s: needs a value\n", a);
				return SWARMCTL_EXIT_USAGE;
			}
			*(a[2] == 's' ? &c.socket : &format) = argv[++i];
		} else if (strncmp(a, "--socket=", 9) == 0) {
			c.socket = a + 9;
		} else if (strncmp(a, "--format=", 9) == 0) {
			format = a + 9;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			help = true;
		} else if (strcmp(a, "--version") == 0 && n == 0) {
			printf("swarmctl %s\n", SWARMCTL_VERSION);
			free(args);
			return 0;
		} else {
			args[n++] = a;
		}
	}
	if (strcmp(format, "table") == 0) {
		c.format = SWARMCTL_CLI_TABLE;
	} else if (strcmp(format, "json") == 0) {
		c.format = SWARMCTL_CLI_JSON;
	} else {
		fprintf(stderr,
			"swarmctl: --format: unknown value '%s' (expected table or json)\n",
			format);
		free(args);
		return SWARMCTL_EXIT_USAGE;
	}
	if (n == 0) {
		fputs(help_main, help ? stdout : stderr);
		free(args);
		return help ? 0 : SWARMCTL_EXIT_USAGE;
	}
	if (strcmp(args[0], "events") == 0) { /* one word, no group */
		if (help)
			printf("Usage: swarmctl %s\n\n%s", events_usage, events_help);
		rv = help ? 0 : events_run(&c, n - 1, args + 1);
		free(args);
		return rv;
	}
	if (!group_known(args[0])) {
		fprintf(stderr, "swarmctl: unknown command '%s'\n", args[0]);
		fputs("See 'swarmctl --help'.\n", stderr);
		free(args);
		return SWARMCTL_EXIT_USAGE;
	}
	cmd = cmd_find(args[0], n > 1 ? args[1] : NULL);
	if (!cmd) {
		if (help) {
			help_group(args[0]);
			free(args);
			return 0;
		}
		if (n > 1)
			fprintf(stderr, "swarmctl: unknown command '%s %s'\n", args[0],
				args[1]);
		else
			fprintf(stderr, "swarmctl: %s: say which command\n", args[0]);
		fprintf(stderr, "See 'swarmctl %s --help'.\n", args[0]);
		free(args);
		return SWARMCTL_EXIT_USAGE;
	}
	if (help) {
		help_cmd(cmd);
		free(args);
		return 0;
	}
	rv = cmd->run(&c, n - 2, args + 2);
	free(args);
	return rv;
}

/* ---------------------------------------------------------------- events */

static int events_usage_error(const char *what)
{
	fprintf(stderr,
		"swarmctl: %s\nUsage: swarmctl %s\nSee 'swarmctl events --help'.\n", what,
		events_usage);
	return SWARMCTL_EXIT_USAGE;
}

/* Reads events for ever: a read with events is followed by the next at
 * once, one without waits a quarter of a second. */
static int events_run(struct ctl *c, int argc, char **argv)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp = NULL;
	char **filters = calloc((size_t)argc + 1, sizeof *filters);
	bool json = c->format == SWARMCTL_CLI_JSON;
	int rv = 0;

	if (!filters) {
		fprintf(stderr, "swarmctl: out of memory\n");
		return SWARMCTL_EXIT_CLUSTER;
	}
	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "--filter") == 0 || strcmp(argv[i], "-f") == 0) &&
		    i + 1 < argc) {
			filters[req.n_events_filter++] = argv[++i];
		} else if (strncmp(argv[i], "--filter=", 9) == 0) {
			filters[req.n_events_filter++] = argv[i] + 9;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			char *end;
			req.events_from_index = strtoull(argv[++i], &end, 10);
			if (*end || !req.events_from_index) {
				free(filters);
				return events_usage_error(
					"--since: not a Raft index (a number from 1)");
			}
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			free(filters);
			return events_usage_error("unknown flag or extra argument");
		}
	}
	req.op = CS__CONTROL_OP__CONTROL_OP_EVENTS;
	req.events_filter = filters;
	for (;;) {
		if ((rv = call(c, &req, &resp)))
			break;
		for (size_t i = 0; i < resp->n_events; i++)
			swarmctl_cli_print_event(stdout, resp->events[i], json);
		fflush(stdout);
		req.events_from_index = resp->events_next_index;
		req.events_from_ord = resp->events_next_ord;
		if (!resp->n_events)
			nanosleep(&(struct timespec){0, 250 * 1000 * 1000}, NULL);
		cs__control_response__free_unpacked(resp, NULL);
		resp = NULL;
	}
	free(filters);
	return rv;
}

/* ---------------------------------------------------------------- logs */

/* Reads logs until a read brings none (then, with --follow, every second
 * for ever): each read goes on from the cursors of the last. */
static int service_logs(struct ctl *c, int argc, char **argv)
{
	const struct cmd *cmd = cmd_find("service", "logs");
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ControlResponse *resp = NULL;
	Cs__LogCursor *cursors = NULL, **ptrs = NULL;
	size_t ncur = 0;
	bool follow = false, timestamps = false, first = true;
	const char *name = NULL;
	int rv = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			follow = true;
		} else if (strcmp(argv[i], "--timestamps") == 0 ||
			   strcmp(argv[i], "-t") == 0) {
			timestamps = true;
		} else if (strcmp(argv[i], "--task") == 0) {
			req.logs_task = true;
		} else if (strcmp(argv[i], "--tail") == 0 && i + 1 < argc) {
			char *end;
			req.logs_tail = strtoull(argv[++i], &end, 10);
			if (*end)
				return usage_error(cmd, "--tail: not a number");
			req.logs_tail_set = true;
		} else if (argv[i][0] == '-' || name) {
			return usage_error(cmd, "unknown flag or extra argument");
		} else {
			name = argv[i];
		}
	}
	if (!name)
		return usage_error(cmd, "service logs needs a service (or task) name");
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LOGS;
	req.name = (char *)name;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t asked_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (;;) {
		req.logs_until_ms = swarmctl_cli_logs_until(
			follow, first && req.logs_tail_set, asked_ms);
		if ((rv = call(c, &req, &resp)))
			break;
		for (size_t i = 0; i < resp->n_logs; i++) {
			const Cs__LogLine *ln = resp->logs[i];
			FILE *out = ln->stream == 2 ? stderr : stdout;
			if (timestamps) {
				time_t t = (time_t)(ln->time_ns / 1000000000ull);
				struct tm tm;
				gmtime_r(&t, &tm);
				fprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ ",
					tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec,
					(unsigned long long)(ln->time_ns %
							     1000000000ull));
			}
			fprintf(out, "%016llx@%016llx | ",
				(unsigned long long)ln->task_id,
				(unsigned long long)ln->node_id);
			fwrite(ln->data.data, 1, ln->data.len, out);
			if (!ln->data.len || ln->data.data[ln->data.len - 1] != '\n')
				fputc('\n', out);
		}
		fflush(stdout);
		if (resp->logs_unanswered)
			fprintf(stderr,
				"swarmctl: the nodes of %llu tasks did not answer\n",
				(unsigned long long)resp->logs_unanswered);
		/* the cursors to go on from */
		free(cursors);
		free(ptrs);
		ncur = resp->n_logs_next;
		cursors = calloc(ncur + 1, sizeof *cursors);
		ptrs = calloc(ncur + 1, sizeof *ptrs);
		if (!cursors || !ptrs) {
			fprintf(stderr, "swarmctl: out of memory\n");
			rv = SWARMCTL_EXIT_CLUSTER;
			break;
		}
		for (size_t i = 0; i < ncur; i++) {
			cs__log_cursor__init(&cursors[i]);
			cursors[i].task_id = resp->logs_next[i]->task_id;
			cursors[i].after_ns = resp->logs_next[i]->after_ns;
			cursors[i].after_err_ns = resp->logs_next[i]->after_err_ns;
			ptrs[i] = &cursors[i];
		}
		req.logs_after = ptrs;
		req.n_logs_after = ncur;
		if (first) { /* the tail is of the first read only */
			req.logs_tail = 0;
			req.logs_tail_set = false;
			first = false;
		}
		if (!resp->n_logs && !follow)
			break;
		if (!resp->n_logs)
			sleep(1);
		cs__control_response__free_unpacked(resp, NULL);
		resp = NULL;
	}
	if (resp)
		cs__control_response__free_unpacked(resp, NULL);
	free(cursors);
	free(ptrs);
	return rv;
}
