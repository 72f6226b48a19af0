/* ctlsock: swarmd's control socket — a unix socket where swarmctl sends
 * ControlRequests and reads ControlResponses, each frame a 4-byte
 * big-endian length then the encoded message (at most
 * CTLSOCK_FRAME_BYTES_MAX). The server side runs on the daemon's libuv loop
 * and hands requests to the node's control RPC; the client side
 * (ctlsock_request) is a blocking call for swarmctl, which has no loop.
 * The server owns its connections; answers to a client gone are dropped. */
#ifndef CS_CTLSOCK_H
#define CS_CTLSOCK_H

#include <stddef.h>
#include <uv.h>

#include "core/api.pb-c.h"
#include "core/control_rpc.h"

#define CTLSOCK_FRAME_BYTES_MAX (16u * 1024 * 1024)
#define CTLSOCK_CLIENTS_MAX	64u /* connections at once; more are refused */
#define CTLSOCK_INFLIGHT_MAX	64u /* requests in flight per connection */

struct ctlsock;

/* get_rpc returns the node's control RPC now, or NULL when this node is not
 * a manager (then requests answer CS_ENOTSUP). */
typedef struct control_rpc *(*ctlsock_rpc_fn)(void *data);

/* ctlsock_open listens on the unix socket at path (a stale socket file
 * there is removed first; the socket gets mode 0600). loop, path and data
 * are borrowed (loop and data for the server's life). Returns 0 and *out,
 * or a cs error with err saying why (CS_EADDRINUSE: path is something
 * other than a socket, or another daemon listens there). */
int ctlsock_open(uv_loop_t *loop, const char *path, ctlsock_rpc_fn get_rpc, void *data,
		 struct ctlsock **out, char *err, size_t n);

/* The unix-socket listening that ctlsock and the Docker API server
 * (net/dockerapi.c) share. ctlsock_path_check readies path for a socket of
 * `what` ("control socket"): CS_EINVAL for a path too long or a missing
 * directory (said as such: libuv would say "permission denied"),
 * CS_EADDRINUSE for something other than a socket or another daemon's live
 * socket; a stale socket file is removed. ctlsock_listen_pipe binds h (an
 * initialised pipe) at path, makes it 0600 before anyone can connect, and
 * listens with cb; on an error (err says which step) the file is removed
 * and h stays open for the caller to close. Both return 0 or a cs error. */
int ctlsock_path_check(const char *path, const char *what, char *err, size_t n);
int ctlsock_listen_pipe(uv_pipe_t *h, const char *path, uv_connection_cb cb, char *err,
			size_t n);

/* (issue 19) How requests reach the control RPC: call(data, rpc, req, cb,
 * cb_data) instead of control_rpc_call(rpc, req, cb, cb_data), with the
 * same contract (swarmd --record records them as inputs). data borrowed. */
typedef int (*ctlsock_call_fn)(void *data, struct control_rpc *rpc,
			       const Cs__ControlRequest *req, control_rpc_cb cb,
			       void *cb_data);
void ctlsock_set_call(struct ctlsock *s, ctlsock_call_fn call, void *data);

/* ctlsock_close stops listening, closes every connection and removes the
 * socket file; memory goes in the close callbacks (run the loop). Calls
 * still pending in the control RPC are answered into nothing. */
void ctlsock_close(struct ctlsock *s);

/* ctlsock_request sends req (borrowed) to the socket at path and waits at
 * most timeout_ms for the answer. Returns 0 and *resp (free with
 * cs__control_response__free_unpacked(*resp, NULL)), or a cs error with err
 * saying why: CS_EUNREACH (no daemon there), CS_ETIMEDOUT, CS_ECORRUPT (an
 * answer that does not decode), CS_ECLOSED (the daemon hung up). */
int ctlsock_request(const char *path, const Cs__ControlRequest *req,
		    Cs__ControlResponse **resp, int timeout_ms, char *err, size_t n);

#endif
