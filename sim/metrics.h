/* metrics: how well the scheduler did in one scenario run, measured from the
 * runner's trace and observer (sim/timeline.c feeds a recorder): time from
 * service create to all running, time to replace the tasks of a dead node,
 * spread balance, pending tasks and why, reschedules. The README defines
 * each. Also writes them as JSON (metrics.json), reads a metrics.json back
 * as a baseline and says which figures got worse. Reads the world and the
 * leader's store; changes nothing. */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/world.h"

enum { METRICS_KEY_BYTES = 128 }; /* keys longer than this are cut */

/* The groups of figures, in the order they are written. Appended only. */
enum metrics_group {
	METRICS_CREATE_S,    /* "create_to_running_s": by service */
	METRICS_REPLACE_S,   /* "dead_node_replaced_s": by dead node ("w1", "w1#2") */
	METRICS_BALANCE,     /* "spread_balance": by service */
	METRICS_PENDING_WHY, /* "pending_reasons": by PENDING message */
	METRICS_PENDING,     /* "pending": one figure (key "") */
	METRICS_RESCHEDULES, /* "reschedules": one figure (key "") */
	METRICS_GROUP_COUNT
};

/* One figure. has_value false: the thing never happened by the end of the
 * run (a service never all running, a dead node's tasks never replaced):
 * JSON null. */
struct metrics_entry {
	enum metrics_group group;
	char key[METRICS_KEY_BYTES];
	bool has_value;
	double value;
};

/* The figures of one run, in the order found. */
struct metrics {
	struct metrics_entry *entries;
	size_t count;
	size_t cap;
};

/* metrics_group_name returns the JSON name of group g ("reschedules"). */
const char *metrics_group_name(enum metrics_group g);

/* metrics_group_unit returns "s" for times, "" for counts. */
const char *metrics_group_unit(enum metrics_group g);

/* metrics_is_single says whether g is one figure (no keys). */
bool metrics_is_single(enum metrics_group g);

void metrics_init(struct metrics *m);
void metrics_free(struct metrics *m);

/* metrics_add appends a figure (key copied, cut to METRICS_KEY_BYTES-1).
 * Returns 0 or CS_ENOMEM. */
int metrics_add(struct metrics *m, enum metrics_group g, const char *key, bool has_value,
		double value);

/* metrics_find returns the figure (g, key), or NULL. Borrowed. */
const struct metrics_entry *metrics_find(const struct metrics *m, enum metrics_group g,
					 const char *key);

/* ---------------------------------------------------------------- recording */

struct metrics_rec;

/* metrics_rec_new returns a recorder for one run of script (borrowed: it
 * must outlive the recorder), or NULL when out of memory. */
struct metrics_rec *metrics_rec_new(const struct scn_script *script);
void metrics_rec_free(struct metrics_rec *r);

/* metrics_rec_trace takes one traced event (the runner's trace callback's
 * arguments): service creates, node deaths. */
void metrics_rec_trace(struct metrics_rec *r, const struct world *w, us_t at_us,
		       uint32_t node, enum sim_ev_kind kind, uint64_t a, uint64_t b);

/* metrics_rec_observe takes one runner observation; the final one computes
 * the figures at the end (balance, pending) and closes the others. */
void metrics_rec_observe(struct metrics_rec *r, const struct runner_view *v);

/* metrics_rec_result returns the figures (borrowed from r; complete after
 * the final observation). */
const struct metrics *metrics_rec_result(const struct metrics_rec *r);

/* ---------------------------------------------------------------- JSON */

/* metrics_json writes m as one JSON object ({"create_to_running_s":{...},
 * ...,"reschedules":N}); every group appears. Borrows f and m. */
void metrics_json(FILE *f, const struct metrics *m);

/* metrics_json_string writes s as a JSON string, quotes included. */
void metrics_json_string(FILE *f, const char *s);

/* One scenario of a metrics.json. */
struct metrics_run {
	char *file;
	uint64_t seed;
	bool passed;
	struct metrics m;
};

/* A whole metrics.json: {"scenarios":[{"file":..,"seed":..,"passed":..,
 * "metrics":{...}}, ...]}. */
struct metrics_set {
	struct metrics_run *runs;
	size_t count;
};

/* metrics_set_parse reads a metrics.json from text (len bytes). Returns 0
 * and fills *set (free with metrics_set_free), CS_EINVAL with the reason in
 * err (bad JSON, or not that shape), or CS_ENOMEM. Unknown keys are
 * ignored. */
int metrics_set_parse(const char *text, size_t len, struct metrics_set *set, char *err,
		      size_t err_size);

/* metrics_set_load reads and parses the file at path (err as above, or
 * "PATH: cannot read: REASON"). */
int metrics_set_load(const char *path, struct metrics_set *set, char *err,
		     size_t err_size);

void metrics_set_free(struct metrics_set *set);

/* metrics_set_find returns the baseline of (file, seed): the run with that
 * file and seed, else the first with that file, else NULL. Borrowed. */
const struct metrics *metrics_set_find(const struct metrics_set *set, const char *file,
				       uint64_t seed);

/* ---------------------------------------------------------------- baselines */

/* metrics_regressed says whether `now` is worse than `was` (the same figure
 * of a baseline run; NULL: nothing to compare with, never a regression):
 * times (create, replace) worse by more than 10% and at least 1 s, or
 * never reached now when they were; balance and pending: any increase;
 * reschedules: more than 10% and at least 2 more. Pending reasons are not
 * compared (their total is). */
bool metrics_regressed(const struct metrics_entry *was, const struct metrics_entry *now);

/* metrics_regressions counts the regressions of now against base (NULL:
 * none). */
size_t metrics_regressions(const struct metrics *base, const struct metrics *now);

/* metrics_format writes a figure as text ("3.2 s", "never", "4") into buf;
 * returns buf. */
const char *metrics_format(const struct metrics_entry *e, char *buf, size_t size);

#endif
