/* control_rpc: the control API as requests and responses (what swarmctl
 * sends a manager's control socket). One per manager node: the leader runs
 * a request with the control API (core/control.h); a follower forwards it
 * over the wire to the leader it follows and relays the answer, as SwarmKit
 * forwards every control call to the leader. Every call gets exactly one
 * answer, never inside the call. Owns its pending calls; borrows the
 * manager, which must outlive it. */
#ifndef CS_CONTROL_RPC_H
#define CS_CONTROL_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/manager.h"

/* A follower waits this long for the leader's answer (then CS_ETIMEDOUT). */
#define CONTROL_RPC_TIMEOUT_MS 10000u
/* Calls in flight on one node (its own and those it serves); over it a
 * call answers CS_EAGAIN. */
#define CONTROL_RPC_PENDING_MAX 1024u

struct control_rpc;

/* control_rpc_open makes the control RPC of manager m (borrowed). Returns 0
 * and *out (freed with control_rpc_close), or CS_ENOMEM. */
int control_rpc_open(struct manager *m, struct control_rpc **out);

/* control_rpc_close: the process dies. Frees r and its pending calls
 * without running their callbacks; makes no env call. */
void control_rpc_close(struct control_rpc *r);

/* control_rpc_dying tells r its process is dying, before the manager it
 * writes through closes: the manager then answers r's writes in flight
 * (CS_ECLOSED), and r frees those calls without answering anyone. Call
 * control_rpc_close after manager_close. */
void control_rpc_dying(struct control_rpc *r);

/* The answer to one call: resp is borrowed for the callback only. resp->id
 * is the request's id; resp->status is 0 or a cs error code, with
 * resp->error one line for people. */
typedef void (*control_rpc_cb)(void *data, const Cs__ControlResponse *resp);

/* control_rpc_call executes req (borrowed for the call only). Writes answer
 * once committed, reads from the leader's store; lists come in id order,
 * cut to fit one frame (total says how many exist). With no leader known
 * the answer is CS_ENOTLEADER; a leader silent for CONTROL_RPC_TIMEOUT_MS,
 * CS_ETIMEDOUT. Returns 0 (cb runs exactly once, never inside this call),
 * or CS_ENOMEM / CS_EAGAIN (then cb never runs). */
int control_rpc_call(struct control_rpc *r, const Cs__ControlRequest *req,
		     control_rpc_cb cb, void *data);

/* control_rpc_handle handles Wire.control_request (a member manager's
 * forward: this manager runs it and sends Wire.control_response to that
 * member's address in the Raft configuration) and Wire.control_response
 * (the answer to a forward of ours), from the sender `who` proves; from
 * anyone but a member manager of this cluster, both are refused (logged
 * `msg="refused"`). Returns false when wire is neither. from, who and wire
 * are borrowed. */
bool control_rpc_handle(struct control_rpc *r, const char *from,
			const struct env_identity *who, const Cs__Wire *wire);

#endif
