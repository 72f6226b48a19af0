/* cluster: the simulated cluster as the scenario runner sees it — the
 * configuration of every manager it starts (raft ids, initial voters,
 * timings), the ground truth about who leads, and the invariant checks of
 * SCENARIOS.md that watch every manager after every event (1: at most one
 * leader per term; 2: no two managers apply different entries at one log
 * index). Owned by the runner; it owns the configs the programs borrow. */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/manager.h"
#include "core/node.h"
#include "sim/scenario.h"
#include "sim/world.h"

struct simcluster;

/* The simulated cluster's id, and the epoch of its certificates' times
 * (the world's virtual time 0 is this instant). The root CA is made from a
 * fixed seed: the same in every run. */
#define SIMCLUSTER_ID	 0x5157c1a5e4000001ull
#define SIMCLUSTER_EPOCH 1767225600 /* 2026-01-01T00:00:00Z */

/* simcluster_worker_token / _manager_token: the cluster's join tokens
 * (SWMTKN-1-<digest of its root>-<secret>, the secrets fixed). */
const char *simcluster_worker_token(const struct simcluster *c);
const char *simcluster_manager_token(const struct simcluster *c);

/* simcluster_raft_id: the raft id of the manager node runs (its node id;
 * the number for the managers the cluster started with), or 0. */
uint64_t simcluster_raft_id(const struct simcluster *c, uint32_t node);

struct simcluster;

/* simcluster_new prepares a cluster on w with settings (borrowed). Returns
 * NULL when out of memory. */
struct simcluster *simcluster_new(struct world *w, const struct scn_settings *settings);
void simcluster_free(struct simcluster *c);

/* simcluster_set applies `set` keys: they reach managers when they (re)start. */
void simcluster_set(struct simcluster *c, const struct scn_settings *settings);

/* simcluster_manager_cfg returns the program config of manager number
 * `number` (m<number>), creating it; voters are m1..m<voters>; with voters
 * 0 the manager joins by asking m1..m<number-1>. The config
 * lives as long as the cluster. NULL when out of memory. */
const struct manager_cfg *simcluster_manager_cfg(struct simcluster *c, uint32_t number,
						 uint32_t voters);

/* simcluster_node_cfg returns the program config of a cluster node (a
 * node_program: an agent, and a manager when manager_number > 0) named
 * hostname with the given resources; agents first try the cluster's first
 * `managers` managers. Lives as long as the cluster; NULL when out of
 * memory. */
const struct node_cfg *simcluster_node_cfg(struct simcluster *c, const char *hostname,
					   uint32_t manager_number, uint32_t voters,
					   uint32_t managers, uint64_t millicpus,
					   uint64_t memory_bytes);

/* simcluster_data_plane (issue 15): whether the machine named hostname
 * realises network attachments (the default: the simulator models the
 * data plane as present); without, its agent REJECTS tasks on networks
 * (agent_cfg.no_data_plane) once its daemon starts again (the agent's
 * config is read at start), in every role it takes. Returns 0 or CS_ENOENT (no such node). */
int simcluster_data_plane(struct simcluster *c, const char *hostname, bool present);
/* simcluster_has_data_plane: what simcluster_data_plane last set for the
 * machine named hostname (true when never set, or no such node). */
bool simcluster_has_data_plane(const struct simcluster *c, const char *hostname);

/* simcluster_describe records what the node named hostname says of itself
 * (desc borrowed for the call, copied): every config made for it from now
 * on (simcluster_node_cfg, also after a promote or demote) carries it.
 * Returns 0 or CS_ENOMEM. */
int simcluster_describe(struct simcluster *c, const char *hostname,
			const struct scn_node_desc *desc);

/* simcluster_set_next_number sets the manager number the next promoted
 * node takes (its daemon restarts as a manager when its agent learns the
 * cluster wants it: the simulator plays swarmd's exec). */
void simcluster_set_next_number(struct simcluster *c, uint32_t number);

/* simcluster_track tells the cluster that node runs manager number
 * `number` (0: not a manager, or not a real one). */
int simcluster_track(struct simcluster *c, uint32_t node, uint32_t number);
/* simcluster_refused says whether the agent of the node named hostname was
 * refused by the cluster (a node removed, then started again). */
bool simcluster_refused(const struct simcluster *c, const char *hostname);
/* simcluster_join_token: the join token the agent of the node named
 * hostname was given (the last node of that name), or NULL. */
const char *simcluster_join_token(const struct simcluster *c, const char *hostname);
/* simcluster_number returns the manager number (its raft id) the node runs
 * as, up or down, or 0 for a worker. */
uint32_t simcluster_number(const struct simcluster *c, uint32_t node);

/* simcluster_force_new_cluster (issue 20) sets whether the manager the
 * node runs starts with force_new_cluster (swarmd --force-new-cluster) the
 * next time its program starts: the runner sets it around one start.
 * Returns 0, or CS_ENOENT when the node runs no manager. */
int simcluster_force_new_cluster(struct simcluster *c, uint32_t node, bool on);

struct backup;

/* simcluster_restore_cfg (issue 20, `node add manager from-backup`) makes
 * the config of manager number `number` (> 1, none made yet): a new machine
 * that starts a new cluster of itself alone from backup b (borrowed: must
 * outlive the cluster), as swarmd --restore, its certificate from the
 * backup's CA. simcluster_node_cfg then returns it for that number.
 * Returns 0, CS_EEXIST (that manager has a config), CS_ENOMEM. */
int simcluster_restore_cfg(struct simcluster *c, uint32_t number, const struct backup *b);

/* simcluster_new_history (issue 20): a restore starts a new cluster at the
 * backup's index and term: invariants 1 and 2 forget the leaders of later
 * terms and the entries applied after that index by the cluster that is
 * gone. */
void simcluster_new_history(struct simcluster *c, uint64_t index, uint64_t term);

/* simcluster_node_programs says that nodes run node_program (agent and
 * manager), not manager_program alone. */
void simcluster_node_programs(struct simcluster *c, bool on);

/* simcluster_leader returns the node index of the leader — a manager in the
 * leader role that a majority of the voting managers can reach and follow
 * in its term — or -1 when there is none. */
int64_t simcluster_leader(const struct simcluster *c);

/* simcluster_check checks the invariants now. Returns true when they hold;
 * else false with what broke (and which nodes) in msg. */
bool simcluster_check(struct simcluster *c, char *msg, size_t size);

/* simcluster_in_sync returns true when every running manager has applied
 * the same index and holds byte-identical stores; else false with what
 * differs in got. A node the cluster refused (removed) is left out. */
bool simcluster_in_sync(const struct simcluster *c, char *got, size_t size);

/* simcluster_max_applied returns the highest index any running manager has
 * applied (an upper bound of what is committed and acknowledged). */
uint64_t simcluster_max_applied(const struct simcluster *c);

/* The manager running on node, or NULL (down, or not a manager). */
struct manager *simcluster_manager(const struct simcluster *c, uint32_t node);

/* simcluster_node_ip (issue 17) returns the ip= node (a world index)
 * describes itself with, or NULL; ctx is the simcluster (the shape
 * simexec_set_node_ip takes). */
const char *simcluster_node_ip(void *ctx, uint32_t node);

#endif
