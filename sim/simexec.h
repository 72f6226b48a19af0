/* simexec: the simulated container runtime, the ground truth of what really
 * runs where. world.c routes every node's executor calls (env ctl_*) here;
 * scenario conditions (`running`) and invariant 3 read its counts.
 * Containers belong to the machine, not to the node's process: a process
 * kill frees the node's controllers and drops their pending requests, and
 * containers keep running on their schedule; a machine crash also makes the
 * node's containers vanish (a restarted agent finds none).
 *
 * The runtime owns its containers, controllers, image settings and every
 * record it schedules with world_call_at (kept in a list of its own, since
 * the world never frees the data of a call it drops), and frees them all in
 * simexec_free. Every callback runs from a world event, never inside the
 * call that started it; a call that returns an error never calls back.
 * Containers are kept in (node, task id) order; the only randomness is the
 * world's RNG_WORKLOAD stream. */
#ifndef SIM_SIMEXEC_H
#define SIM_SIMEXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"
#include "sim/world.h"

struct simexec;

/* Timings and exit codes of the simulated runtime. A container stopped by
 * SHUTDOWN exits with SIMEXEC_EXIT_STOPPED (the process died of SIGTERM);
 * TERMINATE, a forced REMOVE and a SHUTDOWN past its stop timeout kill it
 * with SIMEXEC_EXIT_KILLED. Image names are bounded by
 * SIMEXEC_IMAGE_BYTES_MAX; ids and service names by LIMIT_NAME_BYTES_MAX;
 * a container's published host ports by SIMEXEC_PORTS_MAX. */
#define SIMEXEC_API_US		1000u	 /* a quick call (inspect, remove, kill, list) */
#define SIMEXEC_PREPARE_US	50000u	 /* create a container, or report a failed pull */
#define SIMEXEC_STOP_US		50000u	 /* a container exits this long after SIGTERM */
#define SIMEXEC_START_MIN_US	100000u	 /* default start latency: 100ms.. */
#define SIMEXEC_START_MAX_US	1000000u /* ..1s, uniform */
#define SIMEXEC_EXIT_STOPPED	143	 /* 128 + SIGTERM */
#define SIMEXEC_EXIT_KILLED	137	 /* 128 + SIGKILL */
#define SIMEXEC_IMAGE_BYTES_MAX 255u
#define SIMEXEC_PORTS_MAX	16u
/* Docker's health check defaults (issue 14) */
#define SIMEXEC_HEALTH_INTERVAL_MS 30000u
#define SIMEXEC_HEALTH_RETRIES	   3u

/* simexec_new returns an empty runtime for w (borrowed; it must outlive the
 * runtime), or NULL when out of memory. The world makes its own in
 * world_new (see world_exec); free with simexec_free. */
struct simexec *simexec_new(struct world *w);

/* simexec_free frees every container, controller, image setting and pending
 * record. Events already queued in the world that point at records must
 * never run after this: call it only from world_free, after the queue is
 * dropped. NULL is fine. */
void simexec_free(struct simexec *x);

/* simexec_image sets how the runtime treats image `name` (copied) from now
 * on (the scenario's `image` command): pulls fail when pull_fail; a start
 * takes a uniform draw in [start_min_us, start_max_us]; with has_exit, a
 * container exits with exit_code a uniform draw in [exit_min_us,
 * exit_max_us] after it started running. An image never configured starts
 * in SIMEXEC_START_MIN_US..SIMEXEC_START_MAX_US and runs until stopped.
 * Returns 0, CS_EINVAL (empty name, a range with min > max), CS_ELIMIT (name
 * over SIMEXEC_IMAGE_BYTES_MAX) or CS_ENOMEM. */
int simexec_image(struct simexec *x, const char *name, bool pull_fail, us_t start_min_us,
		  us_t start_max_us, bool has_exit, int32_t exit_code, us_t exit_min_us,
		  us_t exit_max_us);

/* simexec_image_faults sets the faults of image `name`, which
 * simexec_image configured before (and resets to none each time): with
 * start_fail a START of a created or exited container fails with CS_EEXEC
 * and the runtime's message after SIMEXEC_PREPARE_US, the container left
 * as it was (`image NAME start=fail`); with stop_ignore a container ignores
 * SHUTDOWN's SIGTERM and is killed (SIMEXEC_EXIT_KILLED) at the stop
 * timeout (`stop=ignore`). Returns 0 or CS_ENOENT (no such image). */
int simexec_image_faults(struct simexec *x, const char *name, bool start_fail,
			 bool stop_ignore);

/* simexec_image_health (issue 14) sets when the health command of image
 * `name` (configured before by simexec_image, which resets this to "always
 * succeeds") succeeds, from each start of a container: from a uniform draw
 * in [healthy_min_us, healthy_max_us] (has_healthy; else at once) until a
 * draw in [unhealthy_min_us, unhealthy_max_us] (has_unhealthy; else for
 * good): `image NAME healthy-after=D[..D] unhealthy-after=D[..D]`. Only a
 * container whose spec has a health check runs it (see INSPECT). Returns
 * 0, CS_ENOENT (no such image) or CS_EINVAL (min > max). */
int simexec_image_health(struct simexec *x, const char *name, bool has_healthy,
			 us_t healthy_min_us, us_t healthy_max_us, bool has_unhealthy,
			 us_t unhealthy_min_us, us_t unhealthy_max_us);

/* ---------------------------------------------------------------- runtime faults
 *
 * A node's runtime (its dockerd) may stop answering. A call that fails
 * completes, through its callback from a later event as any call does,
 * with CS_EEXEC and Docker's "Cannot connect to the Docker daemon ..."
 * message, and changes nothing; ctl_list's callback gets CS_EEXEC and no
 * containers. These faults belong to the machine: they hold across kills
 * and restarts of the node's process. Kinds of calls, as bits: */
#define SIMEXEC_OP_PREPARE (1u << 0)
#define SIMEXEC_OP_START   (1u << 1)
#define SIMEXEC_OP_WAIT	   (1u << 2)
#define SIMEXEC_OP_STOP	   (1u << 3) /* SHUTDOWN and TERMINATE */
#define SIMEXEC_OP_REMOVE  (1u << 4)
#define SIMEXEC_OP_LIST	   (1u << 5)
#define SIMEXEC_OP_INSPECT (1u << 6)
#define SIMEXEC_OP_ALL	   ((1u << 7) - 1)

/* simexec_runtime_fail makes every call of the kinds in ops on node fail
 * until until_us (UINT64_MAX: until simexec_runtime_ok), replacing an
 * earlier fail. WAITs in flight fail now when ops holds SIMEXEC_OP_WAIT;
 * other calls in flight complete as they would have; containers are
 * untouched. Returns 0, CS_EINVAL (no ops, or unknown bits) or CS_ENOMEM. */
int simexec_runtime_fail(struct simexec *x, uint32_t node, uint32_t ops, us_t until_us);

/* simexec_runtime_restart: node's daemon restarts. Every call in flight
 * on node fails (WAITs included; what an op already did stays done), and
 * every call fails for down_us from now. lose: every running or starting
 * container of node exits now with SIMEXEC_EXIT_STOPPED (the daemon's
 * shutdown stopped it); else they keep running (live-restore). Returns 0
 * or CS_ENOMEM. */
int simexec_runtime_restart(struct simexec *x, uint32_t node, bool lose, us_t down_us);

/* simexec_runtime_ok ends node's runtime faults (a fail, a restart's down
 * time) now. */
void simexec_runtime_ok(struct simexec *x, uint32_t node);

/* simexec_faults_until returns a time from which no runtime is faulted
 * (until a new fault): the latest end of any fault set so far, 0 when
 * none (UINT64_MAX for one without an end). */
us_t simexec_faults_until(const struct simexec *x);

/* simexec_runtime_faulted returns whether some call on node would fail now.
 * simexec_runtime_healthy_from returns when node's last runtime fault ended
 * or will end (0: never faulted; UINT64_MAX: a fail with no end). */
bool simexec_runtime_faulted(const struct simexec *x, uint32_t node);
us_t simexec_runtime_healthy_from(const struct simexec *x, uint32_t node);

/* ---------------------------------------------------------------- executor
 *
 * The env ops of a simulated node, as core/env.h specifies them; `node` is
 * the node index, which must be up (only its running program calls). Op by
 * op (times from the call; results read when the callback runs unless said):
 *  PREPARE   pull + create after SIMEXEC_PREPARE_US: state CREATED (an
 *            existing container of the task is kept as it is); a pull=fail
 *            image gives CS_EEXEC and "pull access denied for IMAGE, ..."
 *  START     CREATED or EXITED: RUNNING after the image's start latency,
 *            then its exit schedule, if any, begins; already running: at
 *            once; no container: CS_EEXEC "No such container: TASK"
 *  WAIT      completes when the container exits (state EXITED, exit_code,
 *            as of the exit), at once if it has; CS_EEXEC when there is no
 *            container or it is removed first. May be in flight alongside
 *            one other op.
 *  SHUTDOWN  a running (or starting: once started) container exits with
 *            SIMEXEC_EXIT_STOPPED after SIMEXEC_STOP_US, or with
 *            SIMEXEC_EXIT_KILLED at stop_timeout_ms if that is shorter
 *            (0: killed at once); anything else: no change
 *  TERMINATE a running or starting container exits now with
 *            SIMEXEC_EXIT_KILLED (during the call; the callback still
 *            comes later)
 *  REMOVE    forced, as SwarmKit asks: killed if running, then deleted
 *            now; no container is fine
 *  INSPECT   state and exit code (ABSENT when there is no container), and
 *            health: NONE without a health check in the spec (a test, not
 *            NONE); else Docker's verdict on the probes run so far, one
 *            every health_interval_ms (default 30s) from the start, each a
 *            success while the image's health command succeeds
 *            (simexec_image_health), `health_retries` (default 3) failures
 *            in a row unhealthy, failures before a first success within
 *            the start period not counted; the timeout is not modelled
 * Busy rules: one op plus one WAIT per controller, else CS_EAGAIN. */

/* simexec_ctl_open makes a controller for spec's task on node (spec
 * borrowed: the strings are copied). Its ops act on the node's container of
 * that task id, whenever it exists: a controller opened after a restart
 * adopts the container left running. Returns 0 and *ctl (owned by the
 * runtime until simexec_ctl_close's callback), CS_EINVAL (no task id or
 * image) or CS_ELIMIT (a string over its limit) or CS_ENOMEM. */
int simexec_ctl_open(struct simexec *x, uint32_t node,
		     const struct env_container_spec *spec, struct env_ctl **ctl);

/* simexec_ctl_do starts op on ctl (see above). req (borrowed until cb) gets
 * the results. Returns 0, CS_EAGAIN when busy, CS_EINVAL for an unknown
 * op, CS_ENOMEM. */
int simexec_ctl_do(struct env_ctl *ctl, enum env_ctl_op op, struct env_ctl_req *req,
		   env_ctl_cb cb);

/* simexec_ctl_close cancels ctl's pending requests (their callbacks never
 * run) and releases it; cb(ctl, data) runs from a later event, when ctl is
 * unreachable, and ctl is freed right after (ctl is only a token in cb).
 * cb may be NULL. The container stays. If the close event cannot be
 * scheduled (out of memory), ctl is freed at once and cb never runs. */
void simexec_ctl_close(struct env_ctl *ctl, env_ctl_close_cb cb, void *data);

/* simexec_ctl_list lists node's containers in task id order, as they are
 * when cb runs; req->found is owned by the runtime and valid in cb only.
 * Returns 0 or CS_ENOMEM. */
int simexec_ctl_list(struct simexec *x, uint32_t node, struct env_ctl_list_req *req,
		     env_ctl_list_cb cb);

/* simexec_logs_read: env's logs_read (issue 16) on node: the running
 * container of req->task_id has deterministic lines (see simexec.c's logs
 * section), others none; cb runs from a later event (SIMEXEC_API_US), with
 * CS_EEXEC while the runtime's LIST fails. Returns 0, CS_EINVAL or
 * CS_ENOMEM. */
int simexec_logs_read(struct simexec *x, uint32_t node, struct env_logs_req *req,
		      env_logs_cb cb);

/* simexec_node_died: node's process died (world_node_kill calls this). Its
 * controllers are freed and its pending requests dropped without callbacks.
 * machine: its containers vanish too (no callbacks, nothing to adopt after
 * a restart); else they keep running and keep their exit schedule. Safe
 * for a node already down (a machine crash after a process kill). */
void simexec_node_died(struct simexec *x, uint32_t node, bool machine);

/* ---------------------------------------------------------------- ground truth */

/* simexec_running counts containers in state RUNNING of service_name (NULL:
 * any service) on node (-1: any node). */
size_t simexec_running(const struct simexec *x, const char *service_name, int64_t node);

/* simexec_check checks invariant 3 on what runs now: no task id runs in two
 * containers at once, and no (service name, slot > 0) runs more than one
 * container (two when allowed, see below). Returns true, or false with a
 * message naming the task or slot and the nodes written to msg (size
 * bytes, cut to fit). O(1) while nothing is wrong. */
bool simexec_check(const struct simexec *x, char *msg, size_t size);

/* simexec_allow_two_per_slot lets service_name run two containers per slot
 * (a start-first update in progress) or takes it back. Returns 0, CS_ELIMIT
 * (name too long) or CS_ENOMEM. */
int simexec_allow_two_per_slot(struct simexec *x, const char *service_name, bool allow);

/* Issue 20: a secret or config file of a container, as materialised at
 * PREPARE from its spec (env_file), gone once the container exits or is
 * removed (Docker unmounts a container's secrets when it stops). */
struct simexec_file {
	uint64_t id;
	bool config;
	uint32_t mode;
	uint64_t len;
	uint64_t digest; /* hash_fnv of the data */
	char name[65];
	char path[256];
};

/* One container as simexec_foreach shows it; strings borrowed for the
 * callback only. */
struct simexec_info {
	uint32_t node;
	const char *task_id;
	const char *service_id;
	const char *service_name;
	const char *image;
	uint64_t slot;
	enum env_ctl_state state; /* CREATED (also while starting), RUNNING, EXITED */
	int32_t exit_code;
	/* appended (issue 15): the host ports it binds while it runs */
	const struct env_port *ports;
	size_t port_count;
	/* appended (issue 20): its secret and config files */
	const struct simexec_file *files;
	size_t file_count;
};
typedef void (*simexec_foreach_fn)(void *ctx, const struct simexec_info *info);

/* simexec_foreach calls fn for every container, in (node, task id) order.
 * fn must not call into the runtime. */
void simexec_foreach(const struct simexec *x, simexec_foreach_fn fn, void *ctx);

/* simexec_count returns how many containers exist (any state). */
size_t simexec_count(const struct simexec *x);

/* Invariant 3's tallies, without building simexec_check's message: a task
 * id running in two containers; a slot running over its limit. */
bool simexec_tasks_twice(const struct simexec *x);
bool simexec_slots_over(const struct simexec *x);

/* The containers linked in the indexes by task id and by slot: 0 until
 * something reads them (why invariant 3 fails, a count the running tallies
 * cannot give, a service's backends), then every container (issue 18). */
size_t simexec_indexed(const struct simexec *x);

/* Issue 15: host ports. simexec_runtime_bind makes something outside
 * cswarm hold port/proto on node's machine (a start that binds it then
 * fails, Docker's "port is already allocated"); simexec_runtime_unbind
 * lets go of all such. Return 0, CS_ENOMEM or CS_ELIMIT (16 per node).
 * simexec_check_ports checks the ground truth: no two running containers
 * of one node bind one host port and protocol; false with msg if they do.
 * O(running containers with host ports, squared per node). */
int simexec_runtime_bind(struct simexec *x, uint32_t node, uint32_t port,
			 enum env_port_proto proto);
void simexec_runtime_unbind(struct simexec *x, uint32_t node);
bool simexec_check_ports(const struct simexec *x, char *msg, size_t size);

/* simexec_changes counts changes to what runs (a container started or
 * stopped, a slot limit changed): checks that depend only on that may skip
 * work while it stays the same. */
uint64_t simexec_changes(const struct simexec *x);

/* ---------------------------------------------------------------- data plane (issue 17)
 *
 * simexec_net_set / simexec_net_remove: env net_set / net_remove on node
 * (see core/env.h): the node's programmed state of a network, replaced
 * whole (copied) / dropped. A machine crash drops them all; a process kill
 * keeps them (the kernel's). PREPARE of a container attached to a network
 * its node has not been told of fails ("network ... not found"). */
int simexec_net_set(struct simexec *x, uint32_t node, const struct env_net_state *st);
int simexec_net_remove(struct simexec *x, uint32_t node, uint64_t network_id);
size_t simexec_net_count(const struct simexec *x, uint32_t node);

/* simexec_reach judges `reach TARGET from FROM`: FROM is SVC.SLOT (its
 * running container); TARGET a service name or alias (every backend its
 * node's state lists for it reachable, and at least one), tasks.NAME
 * (likewise), or an address. Returns 1, or 0 with why in got. */
int simexec_reach(const struct simexec *x, const char *target, const char *from,
		  char *got, size_t size);

/* simexec_check_reach checks the data plane's invariant: every running
 * container attached to a network reaches the address of every other
 * running container on a network they share; containers for which skip
 * says true (NULL: none) are left out. false with the first pair in msg. */
bool simexec_check_reach(const struct simexec *x,
			 bool (*skip)(void *ctx, uint32_t node, const char *task_id),
			 void *ctx, char *msg, size_t size);

/* The routing mesh (issue 17): simexec_mesh_reach judges a connection from
 * outside the cluster to node's published port (proto), by what node has
 * declared of the ingress network and what the backends' nodes have:
 * REACHES when a rule sends it to at least one backend and every backend
 * the rule spreads over is a running container of the rule's service that
 * answers back through the ingress network (on node itself, or on the node
 * node's state lists it at, which lists node's own ingress address at
 * node); REFUSED when no rule publishes the port there or its rule has no
 * backend; BROKEN when some backend does not answer. out->service (borrowed
 * until the node's next net_set; NULL: no rule) and out->backend_count say
 * what the rule is; got why it does not reach. */
enum simexec_mesh { SIMEXEC_MESH_REACHES, SIMEXEC_MESH_REFUSED, SIMEXEC_MESH_BROKEN };
struct simexec_mesh_out {
	const char *service;
	uint64_t network_id; /* node's ingress network (0: none declared) */
	size_t backend_count;
};
enum simexec_mesh simexec_mesh_reach(const struct simexec *x, uint32_t node,
				     uint32_t port, enum env_port_proto proto,
				     struct simexec_mesh_out *out, char *got,
				     size_t size);

/* simexec_check_mesh: the routing mesh's invariant for one node and one
 * port that service publishes: the port is not BROKEN there, answers for
 * no other service, and every running container of service on the ingress
 * network (those skip says true for left out) is a backend it reaches
 * (a port with none of them running may refuse). false with why in msg. */
bool simexec_check_mesh(const struct simexec *x, uint32_t node, uint32_t port,
			enum env_port_proto proto, const char *service,
			bool (*skip)(void *ctx, uint32_t node, const char *task_id),
			void *ctx, char *msg, size_t size);

/* simexec_mesh_ports calls fn for every port node's ingress state
 * publishes (service name borrowed for the call), in the state's order. */
void simexec_mesh_ports(const struct simexec *x, uint32_t node,
			void (*fn)(void *ctx, const char *service, uint32_t port,
				   enum env_port_proto proto),
			void *ctx);

/* simexec_set_node_ip: how endpoints' node IPs that are not node names
 * map to nodes (a node's described ip=); fn returns NULL for none. */
void simexec_set_node_ip(struct simexec *x, const char *(*fn)(void *ctx, uint32_t node),
			 void *ctx);

#endif
