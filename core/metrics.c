/* metrics: see metrics.h. */
#include "core/metrics.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

const double metrics_hist_bounds_ms[METRICS_HIST_BUCKETS] = {
	1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000,
};

/* Appends printf-formatted text; on a failed allocation marks out failed
 * and appends nothing more. */
__attribute__((format(printf, 2, 3))) static void metrics_printf(struct metrics_buf *out,
								 const char *fmt, ...)
{
	va_list ap;
	int n;

	if (out->failed)
		return;
	for (;;) {
		size_t room = out->cap - out->len;
		va_start(ap, fmt);
		n = vsnprintf(out->text ? out->text + out->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			out->failed = true;
			return;
		}
		if ((size_t)n < room) {
			out->len += (size_t)n;
			return;
		}
		size_t cap = out->cap ? out->cap * 2 : 4096;
		while (cap < out->len + (size_t)n + 1)
			cap *= 2;
		char *text = realloc(out->text, cap);
		if (!text) {
			out->failed = true;
			return;
		}
		out->text = text;
		out->cap = cap;
	}
}

static const char *metrics_type_name(enum metrics_type type)
{
	switch (type) {
	case METRICS_COUNTER: return "counter";
	case METRICS_GAUGE: return "gauge";
	case METRICS_HISTOGRAM: return "histogram";
	}
	return "untyped";
}

void metrics_family(struct metrics_buf *out, const char *name, enum metrics_type type,
		    const char *help)
{
	metrics_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		       metrics_type_name(type));
}

/* Writes value as Prometheus reads it: integers without a fraction. */
static void metrics_value(struct metrics_buf *out, double value)
{
	if (value == (double)(int64_t)value && value > -9e15 && value < 9e15)
		metrics_printf(out, "%lld\n", (long long)value);
	else
		metrics_printf(out, "%.9g\n", value);
}

void metrics_sample(struct metrics_buf *out, const char *name, const char *labels,
		    double value)
{
	if (labels && labels[0])
		metrics_printf(out, "%s{%s} ", name, labels);
	else
		metrics_printf(out, "%s ", name);
	metrics_value(out, value);
}

char *metrics_label(char *buf, size_t cap, const char *key, const char *value)
{
	size_t n = 0;

	assert(cap > 0);
	n = (size_t)snprintf(buf, cap, "%s=\"", key);
	for (const char *p = value ? value : ""; *p && n + 3 < cap; p++) {
		if (*p == '\\' || *p == '"') {
			buf[n++] = '\\';
			buf[n++] = *p;
		} else if (*p == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *p;
		}
	}
	if (n + 2 <= cap) {
		buf[n++] = '"';
		buf[n] = '\0';
	} else {
		buf[cap - 1] = '\0';
	}
	return buf;
}

void metrics_buf_free(struct metrics_buf *out)
{
	free(out->text);
	memset(out, 0, sizeof *out);
}

void metrics_hist_observe(struct metrics_hist *h, double ms)
{
	size_t i = 0;
	while (i < METRICS_HIST_BUCKETS && ms > metrics_hist_bounds_ms[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum_ms += ms;
}

void metrics_hist_write(struct metrics_buf *out, const char *name, const char *labels,
			const struct metrics_hist *h)
{
	const char *sep = labels && labels[0] ? "," : "";
	const char *l = labels ? labels : "";
	uint64_t cum = 0;

	for (size_t i = 0; i <= METRICS_HIST_BUCKETS; i++) {
		cum += h->counts[i];
		if (i < METRICS_HIST_BUCKETS)
			metrics_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, l,
				       sep, metrics_hist_bounds_ms[i] / 1000.0,
				       (unsigned long long)cum);
		else
			metrics_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, l,
				       sep, (unsigned long long)cum);
	}
	if (l[0]) {
		metrics_printf(out, "%s_sum{%s} %.9g\n", name, l, h->sum_ms / 1000.0);
		metrics_printf(out, "%s_count{%s} %llu\n", name, l,
			       (unsigned long long)h->count);
	} else {
		metrics_printf(out, "%s_sum %.9g\n", name, h->sum_ms / 1000.0);
		metrics_printf(out, "%s_count %llu\n", name,
			       (unsigned long long)h->count);
	}
}

char *metrics_enum_name(const struct ProtobufCEnumDescriptor *d, int value,
			const char *prefix, char *buf, size_t cap)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
	const char *name = v ? v->name : "unknown";
	size_t n = 0, skip = strlen(prefix);

	assert(cap > 0);
	if (strncmp(name, prefix, skip) == 0)
		name += skip;
	for (; name[n] && n + 1 < cap; n++)
		buf[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] - 'A' + 'a'
								 : name[n]);
	buf[n] = '\0';
	return buf;
}
