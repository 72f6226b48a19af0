/* docker: the real world's executor, on the Docker Engine API (v1.41) over
 * the daemon's unix socket, with libcurl's multi interface driven by a libuv
 * loop (never blocking it). net/uvenv.c calls it for env's ctl_* ops; the
 * semantics and the async contract are env.h's: a callback never runs inside
 * the call that started it, a call that returns an error never calls back.
 * One `struct docker` per node; it owns its controllers, transfers and uv
 * handles and frees them all in docker_close. A container is named
 * "cswarm-<task id>" and labelled cswarm.* so that a restarted agent finds
 * it again (docker_ctl_list). Images are never pulled. */
#ifndef NET_DOCKER_H
#define NET_DOCKER_H

#include <stdbool.h>
#include <uv.h>

#include "core/env.h"

struct docker;

#define DOCKER_SOCKET_DEFAULT "/var/run/docker.sock"
#define DOCKER_API_VERSION    "v1.41"

/* Bounds: a quick call (create, start, kill, remove, inspect, list) gives up
 * after DOCKER_CALL_TIMEOUT_MS; a stop after its stop timeout plus that; a
 * WAIT never. A response body over DOCKER_RESPONSE_BYTES_MAX is an error. */
#define DOCKER_CALL_TIMEOUT_MS	  30000u
#define DOCKER_CONNECT_TIMEOUT_MS 5000u
#define DOCKER_RESPONSE_BYTES_MAX (8u * 1024 * 1024)
#define DOCKER_SOCKET_BYTES_MAX	  107u /* sun_path */

struct docker_cfg {
	uv_loop_t *loop; /* borrowed; must outlive the docker */
	/* the daemon's socket; NULL: $DOCKER_HOST when it is unix://PATH,
	 * else DOCKER_SOCKET_DEFAULT */
	const char *socket_path;
	/* optional: label value of "cswarm.node.id" on every container made,
	 * and a filter on what docker_ctl_list finds (several nodes may share
	 * one daemon); NULL or "": none */
	const char *node_id_label;
	/* true: containers get NetworkMode "none" (no network at all) */
	bool network_none;
	/* optional log sink; msg is borrowed for the call */
	void (*log)(void *data, enum env_log_level lvl, const char *msg);
	void *log_data;
	/* appended (issue 20): where containers' secret and config files are
	 * written, FILES_DIR/TASK_ID/N, and bind-mounted read-only from; it
	 * must be a tmpfs (checked before each write: a task with files fails
	 * PREPARE otherwise, nothing written). Removed once the container
	 * exits or is removed. NULL or "": no files (such tasks fail). */
	const char *files_dir;
};
#define DOCKER_FILES_DIR_BYTES_MAX 200u

/* docker_open makes an executor for cfg (copied; the loop is borrowed). No
 * I/O yet: a missing daemon shows in the first op. Returns 0 and *out, or
 * CS_EINVAL (no loop, socket path too long), CS_ENOMEM. */
int docker_open(const struct docker_cfg *cfg, struct docker **out);

/* docker_close cancels every transfer without its callback, frees every
 * controller (open or closing: no close callback runs) and uv_close's its
 * handles; the caller runs the loop until it empties, and the memory is
 * freed in the last close callback. NULL is fine. */
void docker_close(struct docker *d);

/* docker_ctl_open makes a controller for spec (borrowed for the call: the
 * create request is built now). Returns 0 and *ctl, or CS_EINVAL (no task id
 * or image, a task id that is not [A-Za-z0-9_.-], a string that is not
 * UTF-8), CS_ELIMIT (an id over LIMIT_NAME_BYTES_MAX), CS_ENOMEM. */
int docker_ctl_open(struct docker *d, const struct env_container_spec *spec,
		    struct env_ctl **ctl);

/* Appended (issue 17): a network a container attaches to, as the data plane
 * (net/dataplane) realised it on this node: a Docker bridge network of that
 * name on that bridge (made by the PREPARE that first needs it; one that
 * exists is used as it is). */
struct docker_net {
	const char *name;    /* the Docker network; NULL: not declared here */
	const char *bridge;  /* the Linux bridge it uses ("cs-br-4097") */
	const char *subnet;  /* "10.0.3.0/24" */
	const char *gateway; /* "10.0.3.1": the bridge's own address */
	unsigned mtu;	     /* 0: Docker's default */
	bool internal;	     /* no NAT out of the cluster */
};

/* docker_ctl_open_net is docker_ctl_open for a spec with network
 * attachments: nets[i] (borrowed for the call) describes
 * spec->networks[i]. PREPARE then makes each Docker network that is
 * missing, creates the container attached to the first at its address
 * (MAC 02:42 + the address), and connects it to the others; it fails with
 * Docker's words (CS_EEXEC) when any step does, or when a network was not
 * declared (its name NULL). nets NULL or no networks: docker_ctl_open.
 * Returns as docker_ctl_open. */
int docker_ctl_open_net(struct docker *d, const struct env_container_spec *spec,
			const struct docker_net *nets, struct env_ctl **ctl);

/* docker_net_remove deletes the Docker network name (copied), from the
 * loop; a failure other than "no such network" is logged. Returns 0 or
 * CS_ENOMEM. */
int docker_net_remove(struct docker *d, const char *name);

/* docker_ctl_do starts op (env.h's env_ctl_op); cb gets req back with
 * state, exit_code and message set. Docker's own failures (a 4xx/5xx, no
 * daemon, a timeout) complete with CS_EEXEC and Docker's words in
 * req->message. Returns 0; CS_EAGAIN when an op (or, for WAIT, a WAIT) is
 * already in flight; CS_EINVAL for an unknown op; CS_ENOMEM. req is
 * borrowed until cb runs. */
int docker_ctl_do(struct env_ctl *ctl, enum env_ctl_op op, struct env_ctl_req *req,
		  env_ctl_cb cb);

/* docker_ctl_close cancels ctl's pending requests without their callbacks,
 * frees ctl, then calls cb (may be NULL) with the old pointer from the loop,
 * never inside this call. The container stays. */
void docker_ctl_close(struct env_ctl *ctl, env_ctl_close_cb cb, void *data);

/* docker_ctl_list lists the containers labelled cswarm.task.id (and, when
 * configured, this node's cswarm.node.id), in task id order; req->found is
 * owned by the docker and valid in cb only. Returns 0 or CS_ENOMEM;
 * failures of the daemon complete with CS_EEXEC and no results. */
int docker_ctl_list(struct docker *d, struct env_ctl_list_req *req, env_ctl_list_cb cb);

/* docker_ping asks whether the daemon answers (GET /_ping). cb gets 0, or
 * CS_EEXEC and a message (borrowed for the call). Returns 0 or CS_ENOMEM. */
typedef void (*docker_ping_cb)(void *data, int status, const char *message);
int docker_ping(struct docker *d, docker_ping_cb cb, void *data);

/* docker_info asks the daemon for what it says of itself (GET /info),
 * within DOCKER_CONNECT_TIMEOUT_MS: cb gets 0 and its engine labels
 * ("key=value" strings, borrowed for the call; none when it has none), or
 * CS_EEXEC / CS_ENOMEM and a message (borrowed) with none. Returns 0 or
 * CS_ENOMEM. */
typedef void (*docker_info_cb)(void *data, int status, const char *message,
			       const char *const *labels, size_t label_count);
int docker_info(struct docker *d, docker_info_cb cb, void *data);

/* docker_logs_read: env's logs_read (issue 16) for the container of
 * req->task_id: GET /containers/NAME/logs with timestamps, within
 * DOCKER_LOGS_TIMEOUT_MS; a container that is gone has no lines. Reads at
 * most req->max_bytes + DOCKER_LOGS_SLACK_BYTES of the answer (the lines
 * after it are left for the next read). Returns 0 or CS_ENOMEM /
 * CS_EINVAL. */
#define DOCKER_LOGS_TIMEOUT_MS	10000u
#define DOCKER_LOGS_SLACK_BYTES 65536u
int docker_logs_read(struct docker *d, struct env_logs_req *req, env_logs_cb cb);

#endif
