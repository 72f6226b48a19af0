/* report: static HTML reports of scenario runs. For a set of runs (swarmsim
 * run's scenarios, or explore's seeds) it writes into one directory an
 * index.html summarising every run, one page per run with its timeline as
 * inline SVG (node rows: up/down, leader, partitions, link faults; running
 * tasks per service; commands; the failure) and its scheduler metrics, and
 * metrics.json. With a baseline (an earlier metrics.json) it marks the
 * figures that got worse. Pages need no server and load nothing: CSS is
 * inline, no scripts, no fonts; every text is escaped. Borrows everything
 * it is given; writes files and nothing else. */
#ifndef SIM_REPORT_H
#define SIM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/metrics.h"
#include "sim/timeline.h"

/* The picture's geometry: a time t of a run ending at end goes to
 * x = REPORT_SVG_LEFT + REPORT_SVG_PLOT_W * t / end (printed with one
 * decimal); node row i's bar starts at REPORT_SVG_TOP + i * REPORT_SVG_ROW_H
 * + 6. */
#define REPORT_SVG_LEFT	      120
#define REPORT_SVG_PLOT_W     1000
#define REPORT_SVG_TOP	      44
#define REPORT_SVG_ROW_H      24
#define REPORT_SVG_CHART_H    150
#define REPORT_SVG_POINTS_MAX 2000 /* per series; more are thinned out */

/* One run, as the report shows it. */
struct report_run {
	const char *file; /* the scenario's path */
	uint64_t seed;
	bool passed;
	const char *message; /* why it failed ("" or NULL when passed) */
	double sim_s;	     /* virtual time at the end */
	double wall_s;
	uint64_t events;
	uint64_t hash;		   /* trace hash */
	const struct timeline *tl; /* NULL: no picture and no metrics */
};

struct report_opts {
	const char *title;		    /* NULL: "swarmsim report" */
	const struct metrics_set *baseline; /* NULL: no comparison */
	const char *baseline_name;	    /* shown with the baseline */
};

/* report_write writes dir/index.html, one page per run (see
 * report_page_name) and dir/metrics.json, creating dir if needed (not its
 * parents). Returns 0, or CS_ESTORAGE with "PATH: REASON" in err (cannot
 * create or write), or CS_ENOMEM. */
int report_write(const char *dir, const struct report_run *runs, size_t count,
		 const struct report_opts *opts, char *err, size_t err_size);

/* report_page_name writes the file name of run i's page into buf: the
 * scenario's base name with .html ("leader-loss.html"), made unique among
 * runs with "-sSEED" and then "-I" when needed. Returns buf. */
const char *report_page_name(const struct report_run *runs, size_t count, size_t i,
			     char *buf, size_t size);

/* report_svg writes run's timeline picture (one <svg> element) to f. */
void report_svg(FILE *f, const struct report_run *run);

/* report_metrics_json writes {"scenarios":[...]} for runs to f. */
void report_metrics_json(FILE *f, const struct report_run *runs, size_t count);

/* report_regressions prints one line per figure worse than in baseline
 * ("regression: FILE FIGURE KEY: WAS -> NOW") to out (NULL: count only);
 * returns how many. */
size_t report_regressions(FILE *out, const struct report_run *runs, size_t count,
			  const struct metrics_set *baseline);

/* report_escape writes s escaped for HTML and XML text and attributes
 * (& < > " '). */
void report_escape(FILE *f, const char *s);

#endif
