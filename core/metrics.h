/* metrics: what a node counts about itself, written in Prometheus' text
 * exposition format (version 0.0.4) for a scrape. Pure: a growable text
 * buffer, families and samples written in the order the caller writes them
 * (each writer walks its state in a fixed order: no pointer order), and
 * fixed-bucket histograms. The real daemon serves the text on
 * --metrics-addr (net/metricsd.c); the simulator and tests read it as it
 * is. */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics_buf {
	char *text; /* NUL-terminated (NULL until the first write) */
	size_t len, cap;
	bool failed; /* out of memory once: the text is cut, say so */
};

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* metrics_family writes a family's "# HELP" and "# TYPE" lines; its
 * samples follow. name: [a-z_:][a-z0-9_:]*, help: one line. */
void metrics_family(struct metrics_buf *out, const char *name, enum metrics_type type,
		    const char *help);

/* metrics_sample writes `name{labels} value`; labels: NULL or "" for
 * none, else `k="v",k2="v2"` (values escaped by metrics_label). */
void metrics_sample(struct metrics_buf *out, const char *name, const char *labels,
		    double value);

/* metrics_label writes `key="value"` with value escaped (\\, \", \n) into
 * buf (cap bytes, cut at cap). Returns buf. */
char *metrics_label(char *buf, size_t cap, const char *key, const char *value);

void metrics_buf_free(struct metrics_buf *out);

struct ProtobufCEnumDescriptor;
/* metrics_enum_name writes value's name in enum d, less prefix and in
 * lower case ("TASK_STATE_RUNNING", "TASK_STATE_": "running"), into buf
 * (cap bytes); "unknown" for a value d does not have. Returns buf. */
char *metrics_enum_name(const struct ProtobufCEnumDescriptor *d, int value,
			const char *prefix, char *buf, size_t cap);

/* A latency histogram in milliseconds, with fixed upper bounds (le) of
 * METRICS_HIST_BUCKETS buckets plus +Inf. */
#define METRICS_HIST_BUCKETS 12
extern const double metrics_hist_bounds_ms[METRICS_HIST_BUCKETS];

struct metrics_hist {
	uint64_t counts[METRICS_HIST_BUCKETS + 1]; /* per bucket, the last +Inf */
	uint64_t count;
	double sum_ms;
};

void metrics_hist_observe(struct metrics_hist *h, double ms);

/* metrics_hist_write writes h's cumulative _bucket samples (le in
 * seconds, as Prometheus names durations), _sum (seconds) and _count
 * under name, each with labels (NULL: none) before le. The family line is
 * the caller's. */
void metrics_hist_write(struct metrics_buf *out, const char *name, const char *labels,
			const struct metrics_hist *h);

#endif
