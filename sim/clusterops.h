/* clusterops: what the scenario runner does to a running simulated cluster
 * and asks of it, beyond Raft (sim/cluster.c): service and node commands
 * through the control API of the current leader, as swarmctl would; the
 * `image` command; the conditions on containers and the store (`running`,
 * `store tasks`, `nodes ready`, `node N ready|down`, `converged`); and the
 * invariants 3, 4 and 5 of SCENARIOS.md. */
#ifndef SIM_CLUSTEROPS_H
#define SIM_CLUSTEROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/manager.h"
#include "sim/cluster.h"
#include "sim/scenario.h"
#include "sim/world.h"

struct clops;

struct clops *clops_new(struct world *w, struct simcluster *c);
void clops_free(struct clops *o);

/* The answer of an API call made on the leader: a write that commits, or
 * fails. */
typedef void (*clops_done_fn)(void *data, int status);

/* clops_service starts `service create|update|rm` (cmd) on leader m.
 * Returns 0 (done runs when committed), or an error with its text in err
 * (nothing started). */
int clops_service(struct clops *o, struct manager *m, const struct scn_cmd *cmd,
		  char *err, size_t err_size, clops_done_fn done, void *data);

/* clops_node starts `node drain|pause|activate|label` on node (world
 * index) through leader m. */
int clops_node(struct clops *o, struct manager *m, const struct scn_cmd *cmd,
	       uint32_t node, char *err, size_t err_size, clops_done_fn done, void *data);

/* clops_image applies an `image` command to the simulated runtime. */
void clops_image(struct clops *o, const struct scn_image *img);

/* clops_cond evaluates a condition on containers or on the store of
 * `leader` (NULL: no leader). Returns 1 holds, 0 not (got says what was
 * seen). */
int clops_cond(struct clops *o, struct manager *leader, const struct scn_cond *cond,
	       char *got, size_t got_size);

/* clops_forget_after (issue 20): a restore from a backup at index loses
 * what was acknowledged after it; invariant 5 stops expecting those
 * services. */
void clops_forget_after(struct clops *o, uint64_t index);

/* clops_check checks invariants 3 (containers), 4 (placements), 5
 * (acknowledged services) and 6 (no container runs for a task its agent
 * reported terminal, once its node has been healthy for 30 s) now. Returns
 * false with msg when one broke. `converged` (clops_cond) also holds
 * invariant 8: no container runs on a healthy node the leader can reach
 * for a task the store does not hold or does not want running. */
bool clops_check(struct clops *o, struct manager *leader, char *msg, size_t size);

/* clops_inv6_enable turns invariant 6 on (the default) or off (a
 * scenario's opt-out). */
void clops_inv6_enable(struct clops *o, bool on);

/* Issue 15. clops_network runs network create/rm (cmd) on m, as
 * clops_service does. clops_net_cond judges `store addresses|vips SVC OP
 * N`, `service NAME publishes PORT` and `pending SVC because=... OP N` on
 * the leader's store (1 holds, 0 not, with got). clops_check_alloc checks
 * the allocator's invariants (allocator.h's alloc_invariants) on the
 * leader's store when it changed: false with msg when broken. */
int clops_network(struct clops *o, struct manager *m, const struct scn_cmd *cmd,
		  char *err, size_t err_size, clops_done_fn done, void *data);
int clops_net_cond(struct clops *o, struct manager *leader, const struct scn_cond *cond,
		   char *got, size_t got_size);
bool clops_check_alloc(struct clops *o, struct manager *leader, char *msg, size_t size);

/* Issue 20. clops_spread_cond judges `spread SVC OP N`: max - min of
 * SVC's containers really running (ground truth) per node that the
 * leader's store says is READY, ACTIVE and meets SVC's constraints (0 with
 * no such node); 1 holds, 0 not (got: the value and the counts). */
int clops_spread_cond(struct clops *o, struct manager *leader,
		      const struct scn_cond *cond, char *got, size_t got_size);
/* Issue 20. clops_secret runs secret|config create/rm (cmd) on m, as
 * clops_service does: a create's data is the data= word (else the name),
 * then bytes= bytes of 's'. */
int clops_secret(struct clops *o, struct manager *m, const struct scn_cmd *cmd, char *err,
		 size_t err_size, clops_done_fn done, void *data);

/* clops_desired returns how many tasks a service should run now: its
 * replicas, or one per node that can take it (global: ready, not drained,
 * passing its constraints; a paused node only if it holds one), less the
 * places whose restart policy gave up. */
uint64_t clops_desired(const struct store *st, const Cs__Service *svc);

#endif
