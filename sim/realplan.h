/* realplan: the pure half of `swarmsim run FILE --real` (issue 19): what
 * can be realised on real daemons (a parse-time refusal naming file:line,
 * the form and why), the time scale applied to a script's durations (both
 * worlds), the network faults as per-node nftables rule text, and the
 * image declarations as a container script. It reads and writes no world:
 * sim/realworld.c does the fork/exec side and calls it. The plan owns
 * nothing it is given; the text it writes goes into caller's buffers. */
#ifndef SIM_REALPLAN_H
#define SIM_REALPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/scenario.h"

/* Nodes of one real run (managers then workers): the scenario's m1..mM and
 * w1..wW. More than this is refused (an address each on one /24). */
#define REALPLAN_NODES_MAX 32u

/* The real swarmd's fixed protocol timings: `set` may name them only with
 * these values (there is no flag to change them on a real daemon). */
#define REALPLAN_TICK_MS	1000u
#define REALPLAN_ELECTION_TICKS 10u
#define REALPLAN_HEARTBEAT_MS	5000u

/* realplan_check returns 0 when every command of script can be realised
 * against real daemons, else CS_EINVAL with "PATH:LINE: FORM: why" in err
 * (the first such command). netem_ok says whether this kernel has the netem
 * qdisc (link delay=, dup=, reorder= need it). Borrows script. */
int realplan_check(const struct scn_script *script, bool netem_ok, char *err,
		   size_t err_size);

/* realplan_scale multiplies every duration written in script (run, within,
 * set's timings, a service's delays and periods, image start and exit
 * times, link delays, fault periods) by scale_ppm / 1e6, rounding down and
 * keeping a non-zero duration at least 1 ms. scale_ppm 1000000 changes
 * nothing. Changes script in place. */
void realplan_scale(struct scn_script *script, uint32_t scale_ppm);

/* realplan_node_index returns the index of node (m1.. then w1..) in a run
 * of `managers` managers, or -1 for `leader`, a stranger or a number out of
 * range. */
int realplan_node_index(struct scn_node node, uint32_t managers, uint32_t workers);

/* The network faults in force: partitions (accumulated, as the simulated
 * world's: a pair is cut when one partition puts them in different named
 * groups) and one-way loss rules. */
struct realplan_net {
	uint32_t node_count;
	uint32_t part_count;
	/* group of each node in each partition: 0 in none */
	uint8_t group_of[LIMIT_SCN_GROUPS_MAX * 2][REALPLAN_NODES_MAX];
	uint32_t loss_ppm[REALPLAN_NODES_MAX][REALPLAN_NODES_MAX]; /* src, dst */
};

/* realplan_net_partition adds a partition: group_of_node[k] (node_count
 * of them) is the group, from 1, of node k, 0 when named nowhere;
 * star_group is the group of every node named nowhere (`*`), or 0.
 * Returns 0, or CS_ELIMIT past the partitions this plan keeps. */
int realplan_net_partition(struct realplan_net *net, const uint32_t *group_of_node,
			   uint32_t star_group);

/* realplan_net_blocked says whether a partition cuts a from b. */
bool realplan_net_blocked(const struct realplan_net *net, uint32_t a, uint32_t b);

/* realplan_nft writes the nftables script for node `node` (run in its own
 * namespace with `nft -f -`): it replaces table inet `table` with an output
 * chain dropping what goes to a node it is cut from, and a share loss_ppm
 * of what goes to a node a loss rule names. addr(k) is node k's address.
 * Returns the length written, or -1 when size is too small. */
int realplan_nft(const struct realplan_net *net, uint32_t node, const char *table,
		 const char *const *addrs, char *buf, size_t size);

/* realplan_image_script writes the shell script an image runs for an
 * `image` declaration (NULL: the default image, which starts in
 * 100ms..1s and runs until stopped): a start delay drawn in its range,
 * then, with exit=, exit with the code after its delay, else run until
 * SIGTERM (ignored with stop=ignore). Returns the length, or -1 when size
 * is too small. */
int realplan_image_script(const struct scn_image *img, char *buf, size_t size);

/* realplan_json_next steps through the objects of the JSON array at *p
 * (swarmctl's `--format json` listings): returns true with the next
 * object's bytes in *obj and *len and *p after it, false at the array's
 * end or on text that is not an array of objects. Borrows the text. */
bool realplan_json_next(const char **p, const char **obj, size_t *len);

/* realplan_json_get copies the value of key at the top level of the
 * object obj[0..len) into out: a string's bytes (escapes kept as written),
 * or a literal's text (true, 12). Returns false when the key is absent, the
 * value is an object or array, or it does not fit in size - 1 bytes. */
bool realplan_json_get(const char *obj, size_t len, const char *key, char *out,
		       size_t size);

#endif
