#include "core/node.h"

#include <stdlib.h>

#include "core/api.pb-c.h"
#include "core/control_rpc.h"
#include "core/errors.h"

struct node {
	struct env *env;
	struct manager *m;
	struct agent *a;
	struct control_rpc *rpc; /* with the manager */
};

static void node_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
		      void *data)
{
	struct node *n = data;
	Cs__Wire *wire = cs__wire__unpack(NULL, len, buf);

	if (!wire) {
		env_logf(env, ENV_LOG_WARN, "msg=\"malformed frame\" from=%s bytes=%zu",
			 from, len);
		return;
	}
	if (n->rpc && control_rpc_handle(n->rpc, from, wire))
		; /* control requests and answers */
	else if (!(n->m && manager_handle(n->m, from, wire)))
		agent_handle(n->a, from, wire);
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
	if (cfg->manager && (rv = manager_open(env, cfg->manager, &n->m)) != 0)
		goto err;
	if (n->m && (rv = control_rpc_open(n->m, &n->rpc)) != 0)
		goto err_manager;
	if ((rv = agent_start(env, &cfg->agent, &n->a)) != 0)
		goto err_manager;
	if (n->m)
		manager_set_node_id(n->m, agent_node_id(n->a));
	env->ops->listen(env, node_recv, NULL, n);
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
