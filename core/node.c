#include "core/node.h"

#include <stdlib.h>

#include "core/api.pb-c.h"
#include "core/control_rpc.h"
#include "core/errors.h"

struct node {
	struct env *env;
	const struct node_cfg *cfg;
	struct manager_cfg mcfg; /* cfg->manager, with the raft id the
				    certificate names */
	struct agent_cfg acfg;	 /* cfg->agent, with the identity hook */
	struct manager *m;
	struct agent *a;
	struct control_rpc *rpc; /* with the manager */
};

/* Opens the manager (and its control RPC) as raft id `id`. */
static int node_open_manager(struct node *n, uint64_t id)
{
	int rv;

	n->mcfg.raft_id = id;
	if ((rv = manager_open(n->env, &n->mcfg, &n->m)) != 0) {
		n->m = NULL;
		return rv;
	}
	if ((rv = control_rpc_open(n->m, &n->rpc)) != 0) {
		manager_close(n->m);
		n->m = NULL;
		n->rpc = NULL;
		return rv;
	}
	return 0;
}

/* The agent installed a certificate: a manager's, on a node configured as
 * one whose manager waited for it, opens the manager now. */
static void node_on_identity(void *data, const struct env_identity *id)
{
	struct node *n = data;
	int rv;

	if (!n->cfg->manager || n->m || id->role != ENV_ROLE_MANAGER)
		return;
	if ((rv = node_open_manager(n, id->node_id)) != 0) {
		env_logf(n->env, ENV_LOG_ERROR, "msg=\"cannot open the manager\" err=%s",
			 cs_strerror(rv));
		return;
	}
	manager_set_node_id(n->m, id->node_id);
}

/* A connection came up or went down: the agent's hint (agent_peer). */
static void node_peer(struct env *env, const char *addr, bool up, void *data)
{
	struct node *n = data;
	(void)env;
	agent_peer(n->a, addr, up);
}

static void node_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		      void *data)
{
	struct node *n = data;
	Cs__Wire *wire = cs__wire__unpack(NULL, len, buf);
	struct env_identity who;

	if (!wire) {
		env_logf(env, ENV_LOG_WARN, "msg=\"malformed frame\" from=%s bytes=%zu",
			 from, len);
		return;
	}
	env->ops->sender(env, &who);
	if (n->rpc && control_rpc_handle(n->rpc, from, &who, wire))
		; /* control requests and answers */
	else if (n->a && agent_logs_handle(n->a, from, &who, wire))
		; /* the log broker's requests (issue 16) */
	else if (!(n->m && manager_handle(n->m, from, &who, wire)) &&
		 !agent_handle(n->a, from, &who, wire) && !n->m &&
		 (wire->raft || wire->cert_request || wire->control_request ||
		  wire->session || wire->proposal || wire->join))
		/* a manager's frame at a worker (or a manager not open yet) */
		env_logf(env, ENV_LOG_DEBUG,
			 "msg=\"frame for a manager at a node without one\" from=%s",
			 from);
	cs__wire__free_unpacked(wire, NULL);
}

static int node_start(const void *cfg_ptr, struct env *env, void **state)
{
	const struct node_cfg *cfg = cfg_ptr;
	struct node *n = calloc(1, sizeof *n);
	int rv;

	if (!n)
		return CS_ENOMEM;
	n->env = env;
	n->cfg = cfg;
	n->acfg = cfg->agent;
	n->acfg.on_identity = node_on_identity;
	n->acfg.identity_data = n;
	if (cfg->manager) {
		struct env_identity me;
		struct env_blob none = {NULL, 0};
		int info;
		n->mcfg = *cfg->manager;
		info = env->ops->pki_info(env, &none, &me);
		if (info == 0 && me.role == ENV_ROLE_MANAGER)
			rv = node_open_manager(n, me.node_id);
		else if (info == CS_EAUTH && n->mcfg.raft_id)
			/* its key is locked (autolock): the manager opens
			 * locked, as the raft id its daemon recorded, and
			 * waits for the unlock key (which opens both) */
			rv = node_open_manager(n, n->mcfg.raft_id);
		else if (n->mcfg.voter_count)
			/* starting the cluster: signs its own certificate */
			rv = node_open_manager(n, n->mcfg.raft_id);
		else
			rv = 0; /* opens once the agent has a manager's certificate */
		if (rv)
			goto err;
	}
	if ((rv = agent_start(env, &n->acfg, &n->a)) != 0)
		goto err_manager;
	if (n->m)
		manager_set_node_id(n->m, agent_node_id(n->a));
	env->ops->listen(env, node_recv, node_peer, n);
	*state = n;
	return 0;
err_manager:
	control_rpc_close(n->rpc);
	if (n->m)
		manager_close(n->m);
err:
	free(n);
	return rv;
}

static void node_stop(void *state)
{
	struct node *n = state;
	agent_stop(n->a);
	/* the manager answers the control RPC's writes as it closes: the RPC
	 * must still be there, and know not to answer */
	control_rpc_dying(n->rpc);
	if (n->m)
		manager_close(n->m);
	control_rpc_close(n->rpc);
	free(n);
}

const struct env_program_ops node_program = {
	.start = node_start,
	.stop = node_stop,
};

struct manager *node_manager(const struct node *n)
{
	return n->m;
}
struct agent *node_agent(const struct node *n)
{
	return n->a;
}
struct control_rpc *node_control(const struct node *n)
{
	return n->rpc;
}
