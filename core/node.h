/* node: what runs on every cswarm node (SwarmKit's node): an agent, and a
 * manager too when the node is one. One env, one receive callback: frames
 * go to the manager or the agent by kind, each with the identity the env
 * proves for its sender.
 *
 * A manager's raft id is its node id, which its certificate names: a node
 * configured as a manager opens its manager at start when it holds a
 * manager's certificate (or starts the cluster: voters given), else once
 * its agent has installed one (a joining or promoted manager). */
#ifndef CS_NODE_H
#define CS_NODE_H

#include "core/agent.h"
#include "core/env.h"
#include "core/manager.h"

struct node_cfg {
	const struct manager_cfg *manager; /* NULL: a worker */
	struct agent_cfg agent;
};

struct node;

extern const struct env_program_ops node_program;

/* The parts of a running node (borrowed; NULL when it has none). */
struct manager *node_manager(const struct node *n);
struct agent *node_agent(const struct node *n);
/* The control RPC of a manager node (control_rpc.h), NULL on a worker. */
struct control_rpc *node_control(const struct node *n);

#endif
