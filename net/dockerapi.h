/* dockerapi: the swarm part of the Docker Engine API (issue 16), served by
 * managers on a unix socket so that the stock docker CLI drives a cswarm
 * cluster (DOCKER_HOST=unix://STATE_DIR/docker.sock docker service ls).
 *
 * HTTP/1.1 with keep-alive on the daemon's libuv loop, parsed by Node's
 * http_parser (Debian's libhttp-parser-dev, the one HTTP request parser
 * bookworm ships for C: llhttp, its successor, is packaged only for
 * Node.js there). JSON with jansson. Every request becomes one or more
 * ControlRequests run through the same control RPC as swarmctl's socket
 * (net/ctlsock.c), so a follower forwards them to the leader.
 *
 * Served: HEAD/GET /_ping, /version, /info, /swarm (inspect with the join
 * tokens; update for token rotation only), /nodes (list, inspect, update
 * of availability, labels and role, remove), /services (create, list with
 * status, inspect, update with ?version=N and rollback=previous, remove),
 * /tasks (list with the service, node, desired-state, id, name and
 * _up-to-date filters; inspect); each with or without a /vX.Y prefix.
 * /distribution/... answers 404: cswarm asks no registry.
 * Errors are {"message": ...}: 400 bad request or spec (a field cswarm does
 * not support is named), 404 no such object or endpoint, 409 name taken,
 * 413 body over DOCKERAPI_BODY_BYTES_MAX, 500 "update out of sequence" for
 * a stale version, 503 no leader. The server owns its connections. */
#ifndef CS_DOCKERAPI_H
#define CS_DOCKERAPI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/api.pb-c.h"
#include "core/control_rpc.h"

#define DOCKERAPI_VERSION	 "1.41" /* announced; the client takes the lower */
#define DOCKERAPI_MIN_VERSION	 "1.24"
#define DOCKERAPI_BODY_BYTES_MAX (1024u * 1024) /* more: 413 */
#define DOCKERAPI_URL_BYTES_MAX	 8192u		/* more: 414 */
#define DOCKERAPI_HEAD_BYTES_MAX 65536u		/* header lines; more: 431 */
#define DOCKERAPI_CLIENTS_MAX	 64u		/* connections; more are closed */
#define DOCKERAPI_IDLE_MS \
	30000u		       /* a connection with no whole request
					  * in this long is closed (idle or
					  * slow); one waiting for the leader
					  * is not */
#define DOCKERAPI_CALLS_MAX 4u /* control calls one request makes */
#define DOCKERAPI_LOGS_POLL_MS \
	1000u /* logs --follow: a read with no lines waits this long */
#define DOCKERAPI_EVENTS_POLL_MS \
	250u /* GET /events: a read with no events waits this long */
#define EVENTS_FILTERS_MAX_DAPI \
	16u /* GET /events: filter values (the
				       manager's EVENTS_FILTERS_MAX) */
#define DOCKERAPI_STOP_GRACE_DEFAULT_MS \
	10000u /* Docker's; the model's 0 (the agent's default) */

/* What the server runs requests against. call runs req (borrowed) and
 * answers through cb exactly once (it may answer inside the call); it
 * returns 0, or a cs error and then cb never runs. self_id is this node's
 * id (0 when not known yet). */
struct dockerapi_backend {
	int (*call)(void *data, const Cs__ControlRequest *req, control_rpc_cb cb,
		    void *cb_data);
	uint64_t (*self_id)(void *data);
	const char *hostname; /* borrowed for the server's life */
	unsigned idle_ms;     /* 0: DOCKERAPI_IDLE_MS (tests make it short) */
	void *data;
};

struct dockerapi;

/* dockerapi_open listens on the unix socket at path (a stale socket file is
 * removed first; mode 0600). loop, path and be's pointers are borrowed for
 * the server's life. Returns 0 and *out, or a cs error with err saying why
 * (CS_EADDRINUSE: path is not a socket, or another daemon listens). */
int dockerapi_open(uv_loop_t *loop, const char *path, const struct dockerapi_backend *be,
		   struct dockerapi **out, char *err, size_t n);

/* dockerapi_close stops listening, closes every connection and removes the
 * socket file; memory goes in the close callbacks (run the loop). Answers
 * still pending in the backend go nowhere. */
void dockerapi_close(struct dockerapi *s);

/* ---------------------------------------------------------------- mapping
 * Pure functions, exposed for tests. */

/* dockerapi_spec_from_json reads a Docker ServiceSpec (body, len bytes)
 * into *out (free with cs__service_spec__free_unpacked(*out, NULL)), with
 * Docker's defaults where the body has none (restart any with a 5 s delay;
 * update and rollback: parallelism 1, pause, 5 s monitor, stop-first).
 * Returns 0, or CS_EINVAL with err naming what is wrong: not JSON, a field
 * of the wrong type, or a field cswarm does not support set to anything
 * but its empty value ("TaskTemplate.ContainerSpec.Mounts: not supported
 * by cswarm"). CS_ENOMEM. */
int dockerapi_spec_from_json(const char *body, size_t len, Cs__ServiceSpec **out,
			     char *err, size_t n);

/* The Docker JSON of cswarm's objects (new references; NULL only when out
 * of memory). Ids are cswarm's, 16 hex digits. A manager whose raft id is
 * leader_raft_id shows as the leader. */
json_t *dockerapi_spec_json(const Cs__ServiceSpec *spec);
json_t *dockerapi_service_json(const Cs__Service *svc);
/* A task's spec is its service's (svc, may be NULL) of the task's version;
 * its times are env clock readings plus offset_ms. */
json_t *dockerapi_task_json(const Cs__Task *t, const Cs__Service *svc, int64_t offset_ms);
json_t *dockerapi_node_json(const Cs__Node *node, uint64_t leader_raft_id);

/* dockerapi_insert_defaults fills in a ServiceSpec's JSON (spec, changed in
 * place) what Docker's ?insertDefaults=true shows where the service has
 * none: the 10 s stop grace period, the restart policy (any, 5 s), update
 * and rollback configs (1, pause, 5 s monitor, stop-first; not for jobs)
 * and the vip endpoint mode (SwarmKit's api/defaults). */
void dockerapi_insert_defaults(json_t *spec);

/* A network's Docker JSON (NetworkResource; a new reference, NULL only
 * when out of memory). */
json_t *dockerapi_network_json(const Cs__Network *nw);

/* dockerapi_network_from_json reads a Docker NetworkCreateRequest into
 * *out (free with cs__network_spec__free_unpacked(*out, NULL)); the
 * driver defaults to overlay. Returns 0, or CS_EINVAL with err naming what
 * cswarm does not take (a local scope, an IPAM driver, more than one
 * subnet, driver options, IPv6), or CS_ENOMEM. */
int dockerapi_network_from_json(const char *body, size_t len, Cs__NetworkSpec **out,
				char *err, size_t n);

/* dockerapi_status is the HTTP status of a cs error code from the control
 * API (0: 200). */
int dockerapi_status(int cs_err);

#endif
