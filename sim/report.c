/* report: HTML pages, SVG timelines and metrics.json. See report.h. */
#include "sim/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/errors.h"

enum {
	REPORT_NAME_BYTES = 256,
	REPORT_PATH_BYTES = 4096,
	REPORT_LABEL_CHARS = 90, /* failure text drawn on the picture; all in <title> */
};

#define REPORT_SVG_W (REPORT_SVG_LEFT + REPORT_SVG_PLOT_W + 40)

/* Service line colours (colour-blind safe, Okabe-Ito). */
static const char *const report_colors[] = {
	"#0072b2", "#e69f00", "#009e73", "#cc79a7",
	"#56b4e9", "#d55e00", "#f0e442", "#000000",
};

static const char report_css[] =
	"body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,"
	"sans-serif;margin:24px;color:#1b1f23;background:#fff}"
	"h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:24px 0 8px}"
	"table{border-collapse:collapse;margin:8px 0}"
	"th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;"
	"vertical-align:top}th{background:#f6f8fa}"
	"td.num{text-align:right;font-variant-numeric:tabular-nums}"
	"code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
	"font-size:12px}"
	".pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}"
	".reg{color:#cf222e;font-weight:600}.ok{color:#57606a}"
	".failbox{border:1px solid #cf222e;background:#fff5f5;padding:8px 12px;"
	"margin:8px 0;white-space:pre-wrap}"
	"svg{border:1px solid #d0d7de;background:#fff}"
	"svg text{font-family:system-ui,Helvetica,Arial,sans-serif;font-size:11px;"
	"fill:#1b1f23}"
	"a{color:#0969da}";

/* ---------------------------------------------------------------- text */

void report_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
				fputc(' ', f);
			else
				fputc(*s, f);
		}
	}
}

/* Writes s cut to at most n bytes (at a UTF-8 boundary) with "…", escaped. */
static void report_escape_cut(FILE *f, const char *s, size_t n)
{
	char buf[REPORT_LABEL_CHARS + 8];
	size_t len = strlen(s);
	if (len <= n || n >= sizeof buf - 4) {
		report_escape(f, s);
		return;
	}
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "\xe2\x80\xa6", 4);
	report_escape(f, buf);
}

/* "12.345s" */
static void report_secs(char *buf, size_t size, us_t t_us)
{
	snprintf(buf, size, "%.3fs", (double)t_us / 1e6);
}

static const char *report_base(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The page name before making it unique: the base name without .scn, with
 * anything but [A-Za-z0-9._-] replaced by '_'. */
static void report_stem(const char *file, char *buf, size_t size)
{
	const char *b = report_base(file);
	size_t n = strlen(b);
	if (n > 4 && strcmp(b + n - 4, ".scn") == 0)
		n -= 4;
	if (n == 0)
		b = "scenario", n = 8;
	if (n > size - 1)
		n = size - 1;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		buf[i] = ok ? c : '_';
	}
	buf[n] = '\0';
	if (strcmp(buf, "index") == 0 || strcmp(buf, "metrics") == 0)
		snprintf(buf, size, "scenario-%s", b);
}

const char *report_page_name(const struct report_run *runs, size_t count, size_t i,
			     char *buf, size_t size)
{
	char stem[REPORT_NAME_BYTES], other[REPORT_NAME_BYTES];
	bool same_stem = false, same_seed = false;

	report_stem(runs[i].file, stem, sizeof stem);
	for (size_t j = 0; j < count; j++) {
		if (j == i)
			continue;
		report_stem(runs[j].file, other, sizeof other);
		if (strcmp(stem, other) == 0) {
			same_stem = true;
			same_seed |= runs[j].seed == runs[i].seed;
		}
	}
	if (!same_stem)
		snprintf(buf, size, "%s.html", stem);
	else if (!same_seed)
		snprintf(buf, size, "%s-s%" PRIu64 ".html", stem, runs[i].seed);
	else
		snprintf(buf, size, "%s-s%" PRIu64 "-%zu.html", stem, runs[i].seed,
			 i + 1);
	return buf;
}

/* ---------------------------------------------------------------- svg */

struct report_axis {
	us_t end_us; /* > 0 */
};

static double report_x(const struct report_axis *ax, us_t t_us)
{
	if (t_us > ax->end_us)
		t_us = ax->end_us;
	return REPORT_SVG_LEFT +
	       (double)REPORT_SVG_PLOT_W * (double)t_us / (double)ax->end_us;
}

/* A tick step giving at most ~10 ticks over end_us. */
static us_t report_tick_us(us_t end_us)
{
	static const uint32_t steps_s[] = {1,	2,   5,	  10,	15,   30,   60,	   120,
					   300, 600, 900, 1800, 3600, 7200, 21600, 86400};
	for (size_t i = 0; i < sizeof steps_s / sizeof steps_s[0]; i++)
		if (end_us / ((us_t)steps_s[i] * 1000000u) <= 10)
			return (us_t)steps_s[i] * 1000000u;
	return (us_t)86400 * 1000000u * (end_us / ((us_t)86400 * 1000000u * 10) + 1);
}

static void report_tick_label(char *buf, size_t size, us_t t_us, us_t step_us)
{
	uint64_t s = t_us / 1000000u;
	if (step_us >= 60u * 1000000u && s % 60 == 0)
		snprintf(buf, size, "%" PRIu64 "m", s / 60);
	else if (s >= 60)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, size, "%" PRIu64 "s", s);
}

/* The time axis: grid lines from y0 to y1, labels at label_y. */
static void report_svg_axis(FILE *f, const struct report_axis *ax, double y0, double y1,
			    double label_y)
{
	us_t step = report_tick_us(ax->end_us);
	char label[32];

	fprintf(f, "<g class=\"axis\">\n");
	for (us_t t = 0; t <= ax->end_us; t += step) {
		double x = report_x(ax, t);
		report_tick_label(label, sizeof label, t, step);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#d8dee4\" stroke-width=\"1\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			"fill=\"#57606a\">%s</text>\n",
			x, y0, x, y1, x, label_y, label);
	}
	fprintf(f, "</g>\n");
}

static void report_svg_rect_n(FILE *f, const char *cls, const char *fill, double x0,
			      double x1, double y, double h, const char *node,
			      const char *what, uint32_t n, us_t from_us, us_t to_us)
{
	char a[32], b[32];
	report_secs(a, sizeof a, from_us);
	report_secs(b, sizeof b, to_us);
	if (x1 - x0 < 1.0)
		x1 = x0 + 1.0; /* a blink still shows */
	fprintf(f,
		"<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		"fill=\"%s\" data-from-us=\"%" PRIu64 "\" data-to-us=\"%" PRIu64
		"\"><title>",
		cls, x0, y, x1 - x0, h, fill, from_us, to_us);
	report_escape(f, node);
	fprintf(f, " %s", what);
	if (n)
		fprintf(f, " (cannot reach %" PRIu32 " node%s)", n, n == 1 ? "" : "s");
	fprintf(f, " %s \xe2\x80\x93 %s (%.3fs)</title></rect>\n", a, b,
		(double)(to_us - from_us) / 1e6);
}

static void report_svg_rect(FILE *f, const char *cls, const char *fill, double x0,
			    double x1, double y, double h, const char *node,
			    const char *what, us_t from_us, us_t to_us)
{
	report_svg_rect_n(f, cls, fill, x0, x1, y, h, node, what, 0, from_us, to_us);
}

/* One row per node: its life (up green, down red), leader band, partition
 * and link-fault overlays. */
static void report_svg_nodes(FILE *f, const struct timeline *tl,
			     const struct report_axis *ax)
{
	for (size_t i = 0; i < tl->node_count; i++) {
		const struct tl_node *n = &tl->nodes[i];
		double top = REPORT_SVG_TOP + (double)i * REPORT_SVG_ROW_H;
		double bar_y = top + 6, bar_h = 14;
		double x0 = report_x(ax, n->added_us), x1 = report_x(ax, ax->end_us);
		char a[32];

		fprintf(f, "<g class=\"node\" data-node=\"");
		report_escape(f, n->name);
		fprintf(f, "\">\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
			REPORT_SVG_LEFT - 8, bar_y + 11);
		report_escape(f, n->name);
		fprintf(f, "</text>\n");
		report_secs(a, sizeof a, n->added_us);
		fprintf(f,
			"<rect class=\"up\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.1f\" fill=\"#8fd19e\"><title>",
			x0, bar_y, x1 - x0, bar_h);
		report_escape(f, n->name);
		fprintf(f, " added at %s; up unless marked down</title></rect>\n", a);
		for (size_t s = 0; s < tl->span_count; s++) {
			const struct tl_span *sp = &tl->spans[s];
			double sx0, sx1;
			if (sp->node != i)
				continue;
			sx0 = report_x(ax, sp->from_us);
			sx1 = report_x(ax, sp->to_us);
			switch (sp->kind) {
			case TL_DOWN:
				report_svg_rect(
					f, "down", "#d73a49", sx0, sx1, bar_y, bar_h,
					n->name,
					sp->detail == WORLD_DOWN_EXIT
						? "down (exit: its program stopped itself)"
					: sp->detail == WORLD_DOWN_MACHINE
						? "down (machine crash)"
						: "down (process killed)",
					sp->from_us, sp->to_us);
				break;
			case TL_LEADER:
				report_svg_rect(f, "leader", "#bf8700", sx0, sx1, bar_y,
						5, n->name, "leader", sp->from_us,
						sp->to_us);
				break;
			case TL_PARTITION:
				report_svg_rect_n(f, "partition", "url(#hatch)", sx0, sx1,
						  bar_y, bar_h, n->name,
						  "cut off by a partition", sp->detail,
						  sp->from_us, sp->to_us);
				break;
			case TL_LINK:
				report_svg_rect(f, "link", "url(#dots)", sx0, sx1,
						bar_y + bar_h - 5, 5, n->name,
						"faulty link", sp->from_us, sp->to_us);
				break;
			}
		}
		fprintf(f, "</g>\n");
	}
}

/* Running tasks per service: one step line per service. */
static void report_svg_chart(FILE *f, const struct timeline *tl,
			     const struct report_axis *ax, double top)
{
	uint32_t max = 1;
	double bottom = top + REPORT_SVG_CHART_H;
	uint32_t ticks[3];

	for (size_t i = 0; i < tl->series_count; i++)
		for (size_t p = 0; p < tl->series[i].count; p++)
			if (tl->series[i].points[p].running > max)
				max = tl->series[i].points[p].running;
	ticks[0] = 0;
	ticks[1] = max / 2;
	ticks[2] = max;
	fprintf(f,
		"<g class=\"chart\">\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">"
		"running</text>\n<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">tasks"
		"</text>\n",
		REPORT_SVG_LEFT - 30, top + REPORT_SVG_CHART_H / 2.0,
		REPORT_SVG_LEFT - 30, top + REPORT_SVG_CHART_H / 2.0 + 13);
	for (int k = 0; k < 3; k++) {
		double y = bottom - (double)ticks[k] * REPORT_SVG_CHART_H / max;
		if (k == 1 && (ticks[1] == 0 || ticks[1] == max))
			continue;
		fprintf(f,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d8dee4\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#57606a\">"
			"%" PRIu32 "</text>\n",
			REPORT_SVG_LEFT, y, REPORT_SVG_LEFT + REPORT_SVG_PLOT_W, y,
			REPORT_SVG_LEFT - 6, y + 4, ticks[k]);
	}
	if (tl->series_count == 0)
		fprintf(f,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			"fill=\"#57606a\">no task ran in this scenario</text>\n",
			REPORT_SVG_LEFT + REPORT_SVG_PLOT_W / 2.0,
			top + REPORT_SVG_CHART_H / 2.0);
	for (size_t i = 0; i < tl->series_count; i++) {
		const struct tl_series *s = &tl->series[i];
		const char *color = report_colors[i % (sizeof report_colors /
						       sizeof report_colors[0])];
		size_t stride = s->count / REPORT_SVG_POINTS_MAX + 1;
		uint32_t peak = 0, last = 0;
		double prev_y = bottom;

		fprintf(f, "<g class=\"series\" data-service=\"");
		report_escape(f, s->name);
		fprintf(f,
			"\"><polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
			"points=\"%d,%.1f",
			color, REPORT_SVG_LEFT, bottom);
		for (size_t p = 0; p < s->count; p += stride) {
			/* thinned out: keep the last point too */
			const struct tl_point *pt = p + stride >= s->count
							    ? &s->points[s->count - 1]
							    : &s->points[p];
			double x = report_x(ax, pt->at_us);
			double y =
				bottom - (double)pt->running * REPORT_SVG_CHART_H / max;
			fprintf(f, " %.1f,%.1f %.1f,%.1f", x, prev_y, x, y);
			prev_y = y;
			peak = pt->running > peak ? pt->running : peak;
			last = pt->running;
			if (p + stride >= s->count)
				break;
		}
		fprintf(f, " %.1f,%.1f\"><title>", report_x(ax, ax->end_us), prev_y);
		report_escape(f, s->name);
		fprintf(f,
			": running tasks, at most %" PRIu32 ", %" PRIu32 " at the end"
			"</title></polyline>\n",
			peak, last);
		/* exact changes as tooltips on small markers */
		for (size_t p = 0; p < s->count && s->count <= REPORT_SVG_POINTS_MAX / 4;
		     p++) {
			const struct tl_point *pt = &s->points[p];
			char a[32];
			report_secs(a, sizeof a, pt->at_us);
			fprintf(f,
				"<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\">"
				"<title>",
				report_x(ax, pt->at_us),
				bottom - (double)pt->running * REPORT_SVG_CHART_H / max,
				color);
			report_escape(f, s->name);
			fprintf(f, ": %" PRIu32 " running at %s</title></circle>\n",
				pt->running, a);
		}
		fprintf(f, "</g>\n");
	}
	fprintf(f,
		"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#57606a\"/>\n"
		"</g>\n",
		REPORT_SVG_LEFT, bottom, REPORT_SVG_LEFT + REPORT_SVG_PLOT_W, bottom);
}

static void report_svg_legend_box(FILE *f, double x, double y, const char *fill,
				  const char *label)
{
	fprintf(f,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"10\" fill=\"%s\" "
		"stroke=\"#57606a\" stroke-width=\"0.5\"/><text x=\"%.1f\" y=\"%.1f\">",
		x, y, fill, x + 24, y + 9);
	report_escape(f, label);
	fprintf(f, "</text>\n");
}

void report_svg(FILE *f, const struct report_run *run)
{
	const struct timeline *tl = run->tl;
	struct report_axis ax;
	double nodes_bottom, chart_top, chart_bottom, legend_y, height;

	if (!tl) {
		fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" "
			   "height=\"10\"></svg>\n");
		return;
	}
	ax.end_us = tl->end_us ? tl->end_us : 1;
	nodes_bottom = REPORT_SVG_TOP + (double)tl->node_count * REPORT_SVG_ROW_H;
	chart_top = nodes_bottom + 34;
	chart_bottom = chart_top + REPORT_SVG_CHART_H;
	legend_y = chart_bottom + 34;
	height = legend_y + 22 + 18.0 * (double)((tl->series_count + 5) / 6);

	fprintf(f,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" "
		"width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
		"data-end-us=\"%" PRIu64 "\">\n",
		REPORT_SVG_W, height, REPORT_SVG_W, height, ax.end_us);
	fprintf(f,
		"<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" "
		"patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
		"<rect width=\"6\" height=\"6\" fill=\"#ffffff\" fill-opacity=\"0.35\"/>"
		"<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#6e40c9\" "
		"stroke-width=\"3\"/></pattern>"
		"<pattern id=\"dots\" width=\"5\" height=\"5\" "
		"patternUnits=\"userSpaceOnUse\"><rect width=\"5\" height=\"5\" "
		"fill=\"#fb8500\"/><circle cx=\"2.5\" cy=\"2.5\" r=\"1.2\" "
		"fill=\"#ffffff\"/></pattern></defs>\n");
	fprintf(f, "<text x=\"%d\" y=\"14\" fill=\"#57606a\">virtual time</text>\n",
		REPORT_SVG_LEFT - 8 - 70);
	report_svg_axis(f, &ax, REPORT_SVG_TOP - 10, chart_bottom, 14);
	/* scenario commands: ticks above the node rows */
	fprintf(f, "<g class=\"commands\">\n");
	for (size_t i = 0; i < tl->cmd_count; i++) {
		const struct tl_command *c = &tl->cmds[i];
		double x = report_x(&ax, c->at_us);
		char a[32];
		report_secs(a, sizeof a, c->at_us);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#24292f\" "
			"stroke-width=\"1.5\"><title>%s line %" PRIu32 ": ",
			x, REPORT_SVG_TOP - 18, x, REPORT_SVG_TOP - 4, a, c->line);
		report_escape(f, c->text);
		fprintf(f, "</title></line>\n");
	}
	fprintf(f, "</g>\n");
	report_svg_nodes(f, tl, &ax);
	report_svg_chart(f, tl, &ax, chart_top);
	report_svg_axis(f, &ax, chart_bottom, chart_bottom, chart_bottom + 14);
	if (tl->failed) {
		double x = report_x(&ax, tl->fail_us);
		bool left = x > REPORT_SVG_LEFT + REPORT_SVG_PLOT_W / 2.0;
		char a[32];
		report_secs(a, sizeof a, tl->fail_us);
		fprintf(f,
			"<g class=\"failure\"><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" "
			"y2=\"%.1f\" stroke=\"#cf222e\" stroke-width=\"2\"/>"
			"<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" "
			"style=\"fill:#cf222e;font-weight:600\">",
			x, REPORT_SVG_TOP - 26, x, chart_bottom, left ? x - 4 : x + 4,
			REPORT_SVG_TOP - 26 + 10, left ? "end" : "start");
		fprintf(f, "FAIL at %s: ", a);
		report_escape_cut(f, tl->fail_msg, REPORT_LABEL_CHARS);
		fprintf(f, "<title>failed at %s: ", a);
		report_escape(f, tl->fail_msg);
		fprintf(f, "</title></text></g>\n");
	}
	/* legend */
	fprintf(f, "<g class=\"legend\">\n");
	report_svg_legend_box(f, REPORT_SVG_LEFT, legend_y, "#8fd19e", "up");
	report_svg_legend_box(f, REPORT_SVG_LEFT + 90, legend_y, "#d73a49", "down");
	report_svg_legend_box(f, REPORT_SVG_LEFT + 190, legend_y, "#bf8700",
			      "leader (band on top of the bar)");
	report_svg_legend_box(f, REPORT_SVG_LEFT + 400, legend_y, "url(#hatch)",
			      "cut off by a partition");
	report_svg_legend_box(f, REPORT_SVG_LEFT + 580, legend_y, "url(#dots)",
			      "faulty link");
	fprintf(f,
		"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#cf222e\" "
		"stroke-width=\"2\"/><text x=\"%d\" y=\"%.1f\">failure</text>\n",
		REPORT_SVG_LEFT + 700, legend_y - 2, REPORT_SVG_LEFT + 700, legend_y + 12,
		REPORT_SVG_LEFT + 706, legend_y + 9);
	fprintf(f,
		"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#24292f\" "
		"stroke-width=\"1.5\"/><text x=\"%d\" y=\"%.1f\">command</text>\n",
		REPORT_SVG_LEFT + 780, legend_y - 2, REPORT_SVG_LEFT + 780, legend_y + 12,
		REPORT_SVG_LEFT + 786, legend_y + 9);
	for (size_t i = 0; i < tl->series_count; i++) {
		double x = REPORT_SVG_LEFT + 160.0 * (double)(i % 6);
		double y = legend_y + 22 + 18.0 * (double)(i / 6);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"%s\" stroke-width=\"3\"/><text x=\"%.1f\" y=\"%.1f\">"
			"service ",
			x, y + 5, x + 18, y + 5,
			report_colors[i %
				      (sizeof report_colors / sizeof report_colors[0])],
			x + 24, y + 9);
		report_escape(f, tl->series[i].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</g>\n</svg>\n");
}

/* ---------------------------------------------------------------- metrics */

void report_metrics_json(FILE *f, const struct report_run *runs, size_t count)
{
	struct metrics none;

	metrics_init(&none);
	fprintf(f, "{\"scenarios\":[");
	for (size_t i = 0; i < count; i++) {
		const struct report_run *r = &runs[i];
		fprintf(f, "%s\n{\"file\":", i ? "," : "");
		metrics_json_string(f, r->file);
		fprintf(f,
			",\"seed\":%" PRIu64
			",\"passed\":%s,\"sim_s\":%.3f,\"events\":%" PRIu64
			",\"trace\":\"%016" PRIx64 "\",\"metrics\":",
			r->seed, r->passed ? "true" : "false", r->sim_s, r->events,
			r->hash);
		metrics_json(f, r->tl ? timeline_metrics(r->tl) : &none);
		fputc('}', f);
	}
	fprintf(f, "\n]}\n");
}

size_t report_regressions(FILE *out, const struct report_run *runs, size_t count,
			  const struct metrics_set *baseline)
{
	size_t n = 0;
	char was[48], now[48];

	if (!baseline)
		return 0;
	for (size_t i = 0; i < count; i++) {
		const struct metrics *base, *m;
		if (!runs[i].tl)
			continue;
		base = metrics_set_find(baseline, runs[i].file, runs[i].seed);
		m = timeline_metrics(runs[i].tl);
		if (!base)
			continue;
		for (size_t k = 0; k < m->count; k++) {
			const struct metrics_entry *e = &m->entries[k];
			const struct metrics_entry *b =
				metrics_find(base, e->group, e->key);
			if (!metrics_regressed(b, e))
				continue;
			n++;
			if (out)
				fprintf(out, "regression: %s %s%s%s: %s -> %s\n",
					runs[i].file, metrics_group_name(e->group),
					e->key[0] ? " " : "", e->key,
					metrics_format(b, was, sizeof was),
					metrics_format(e, now, sizeof now));
		}
	}
	return n;
}

static const char *const report_group_text[METRICS_GROUP_COUNT] = {
	"create to all running",
	"dead node's tasks replaced",
	"spread balance (max - min per eligible node)",
	"pending at the end, because",
	"pending at the end",
	"reschedules",
};

static void report_metrics_table(FILE *f, const struct metrics *m,
				 const struct metrics *base)
{
	char buf[48];

	fprintf(f,
		"<table class=\"metrics\"><tr><th>figure</th><th>of</th>"
		"<th>value</th>%s</tr>\n",
		base ? "<th>baseline</th><th></th>" : "");
	for (int g = 0; g < METRICS_GROUP_COUNT; g++) {
		for (size_t i = 0; i < m->count; i++) {
			const struct metrics_entry *e = &m->entries[i];
			const struct metrics_entry *b;
			bool reg;
			if (e->group != (enum metrics_group)g)
				continue;
			b = base ? metrics_find(base, e->group, e->key) : NULL;
			reg = metrics_regressed(b, e);
			fprintf(f, "<tr%s><td>%s</td><td>", reg ? " class=\"reg\"" : "",
				report_group_text[g]);
			report_escape(f, e->key);
			fprintf(f, "</td><td class=\"num\">%s</td>",
				metrics_format(e, buf, sizeof buf));
			if (base)
				fprintf(f, "<td class=\"num\">%s</td><td>%s</td>",
					metrics_format(b, buf, sizeof buf),
					reg ? "\xe2\x96\xb2 regression" : "");
			fprintf(f, "</tr>\n");
		}
	}
	fprintf(f, "</table>\n");
}

/* ---------------------------------------------------------------- pages */

static void report_head(FILE *f, const char *title)
{
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	report_escape(f, title);
	fprintf(f, "</title><style>%s</style></head><body>\n", report_css);
}

/* The event stream at the end of the run (issue 20): what `swarmctl
 * events --since 1` would print on that manager, oldest first. */
static void report_events(FILE *f, const struct timeline *tl)
{
	if (!tl->events_from[0])
		return;
	fprintf(f, "<h2>Events</h2>\n<p>The event stream of ");
	report_escape(f, tl->events_from);
	fprintf(f, " at the end: %zu events kept (at most %u).</p>\n", tl->event_count,
		EVENTS_KEPT_MAX);
	fprintf(f, "<table><tr><th>index</th><th>type</th><th>action</th><th>id</th>"
		   "<th>name</th><th>details</th></tr>\n");
	for (size_t i = 0; i < tl->event_count; i++) {
		const struct events_event *ev = &tl->events[i];
		fprintf(f,
			"<tr><td class=\"num\">%" PRIu64 ".%" PRIu32
			"</td><td>%s</td><td>%s</td><td class=\"mono\">%016" PRIx64
			"</td><td>",
			ev->index, ev->ord, events_kinds[ev->kind].name,
			events_action_name(ev->action), ev->id);
		report_escape(f, ev->name);
		fprintf(f, "</td><td>");
		if (ev->state >= 0) {
			fprintf(f, "state=");
			report_escape(f, ev->state_name);
			fprintf(f, " node=%016" PRIx64 " ", ev->node_id);
		}
		for (size_t a = 0; a < ev->attr_count; a++) {
			report_escape(f, ev->attrs[a].key);
			fputc('=', f);
			report_escape(f, ev->attrs[a].value);
			fputc(' ', f);
		}
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n");
}

static void report_page(FILE *f, const struct report_run *r, const struct report_opts *o)
{
	const struct metrics *base =
		o->baseline ? metrics_set_find(o->baseline, r->file, r->seed) : NULL;
	char title[REPORT_PATH_BYTES];

	snprintf(title, sizeof title, "%s %s seed %" PRIu64, r->passed ? "PASS" : "FAIL",
		 r->file, r->seed);
	report_head(f, title);
	fprintf(f, "<p><a href=\"index.html\">\xe2\x86\x90 all scenarios</a></p>\n<h1>");
	fprintf(f, "<span class=\"%s\">%s</span> ", r->passed ? "pass" : "fail",
		r->passed ? "PASS" : "FAIL");
	report_escape(f, r->file);
	fprintf(f,
		"</h1>\n<p class=\"mono\">seed=%" PRIu64 " sim=%.1fs wall=%.2fs "
		"events=%" PRIu64 " trace=%016" PRIx64 "</p>\n",
		r->seed, r->sim_s, r->wall_s, r->events, r->hash);
	if (!r->passed) {
		fprintf(f, "<div class=\"failbox\">");
		report_escape(f, r->message ? r->message : "");
		fprintf(f, "</div>\n");
	}
	fprintf(f, "<h2>Timeline</h2>\n<p>Hover over any bar, line or tick for exact "
		   "virtual times.</p>\n");
	report_svg(f, r);
	if (r->tl) {
		const struct timeline *tl = r->tl;
		if (tl->oom)
			fprintf(f, "<p class=\"fail\">Out of memory while recording: the "
				   "picture is partial.</p>\n");
		fprintf(f, "<h2>Scheduler metrics</h2>\n");
		if (o->baseline && !base)
			fprintf(f, "<p>No baseline for this scenario.</p>\n");
		report_metrics_table(f, timeline_metrics(tl), base);
		fprintf(f, "<h2>Commands</h2>\n<table><tr><th>virtual time</th>"
			   "<th>line</th><th>command</th></tr>\n");
		for (size_t i = 0; i < tl->cmd_count; i++) {
			fprintf(f,
				"<tr><td class=\"num\">%.3fs</td><td class=\"num\">%" PRIu32
				"</td><td><code>",
				(double)tl->cmds[i].at_us / 1e6, tl->cmds[i].line);
			report_escape(f, tl->cmds[i].text);
			fprintf(f, "</code></td></tr>\n");
		}
		fprintf(f, "</table>\n");
		report_events(f, tl);
	}
	fprintf(f, "</body></html>\n");
}

static void report_index(FILE *f, const struct report_run *runs, size_t count,
			 const struct report_opts *o)
{
	size_t failed = 0, regressions = 0;
	char page[REPORT_NAME_BYTES];

	for (size_t i = 0; i < count; i++)
		failed += !runs[i].passed;
	regressions = report_regressions(NULL, runs, count, o->baseline);
	report_head(f, o->title ? o->title : "swarmsim report");
	fprintf(f, "<h1>");
	report_escape(f, o->title ? o->title : "swarmsim report");
	fprintf(f,
		"</h1>\n<p>%zu scenarios: <span class=\"pass\">%zu passed</span>, "
		"<span class=\"%s\">%zu failed</span>",
		count, count - failed, failed ? "fail" : "ok", failed);
	if (o->baseline) {
		fprintf(f, "; <span class=\"%s\">%zu regressions</span> against ",
			regressions ? "reg" : "ok", regressions);
		report_escape(f, o->baseline_name ? o->baseline_name : "the baseline");
	}
	fprintf(f,
		". Scheduler figures: <a href=\"metrics.json\">metrics.json</a>.</p>\n");
	fprintf(f,
		"<table><tr><th>result</th><th>scenario</th><th>seed</th>"
		"<th>virtual</th><th>wall</th><th>events</th><th>trace</th>%s"
		"<th>failure</th></tr>\n",
		o->baseline ? "<th>regressions</th>" : "");
	for (size_t i = 0; i < count; i++) {
		const struct report_run *r = &runs[i];
		report_page_name(runs, count, i, page, sizeof page);
		fprintf(f, "<tr><td class=\"%s\">%s</td><td><a href=\"",
			r->passed ? "pass" : "fail", r->passed ? "PASS" : "FAIL");
		report_escape(f, page);
		fprintf(f, "\">");
		report_escape(f, r->file);
		fprintf(f,
			"</a></td><td class=\"num\">%" PRIu64
			"</td><td class=\"num\">%.1fs"
			"</td><td class=\"num\">%.2fs</td><td class=\"num\">%" PRIu64
			"</td><td class=\"mono\">%016" PRIx64 "</td>",
			r->seed, r->sim_s, r->wall_s, r->events, r->hash);
		if (o->baseline) {
			struct report_run one = *r;
			size_t n = report_regressions(NULL, &one, 1, o->baseline);
			fprintf(f, "<td class=\"num %s\">%zu</td>", n ? "reg" : "ok", n);
		}
		fprintf(f, "<td>");
		report_escape(f, r->passed ? "" : r->message);
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n</body></html>\n");
}

/* ---------------------------------------------------------------- files */

static FILE *report_open(const char *dir, const char *name, char *path, size_t size,
			 char *err, size_t err_size)
{
	FILE *f;
	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
	return f;
}

static int report_close(FILE *f, const char *path, char *err, size_t err_size)
{
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno ? errno : EIO));
		return CS_ESTORAGE;
	}
	return 0;
}

int report_write(const char *dir, const struct report_run *runs, size_t count,
		 const struct report_opts *opts, char *err, size_t err_size)
{
	static const struct report_opts none = {0};
	char path[REPORT_PATH_BYTES], page[REPORT_NAME_BYTES];
	FILE *f;
	int rv;

	if (!opts)
		opts = &none;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		snprintf(err, err_size, "%s: %s", dir, strerror(errno));
		return CS_ESTORAGE;
	}
	for (size_t i = 0; i < count; i++) {
		report_page_name(runs, count, i, page, sizeof page);
		f = report_open(dir, page, path, sizeof path, err, err_size);
		if (!f)
			return CS_ESTORAGE;
		report_page(f, &runs[i], opts);
		if ((rv = report_close(f, path, err, err_size)))
			return rv;
	}
	f = report_open(dir, "metrics.json", path, sizeof path, err, err_size);
	if (!f)
		return CS_ESTORAGE;
	report_metrics_json(f, runs, count);
	if ((rv = report_close(f, path, err, err_size)))
		return rv;
	f = report_open(dir, "index.html", path, sizeof path, err, err_size);
	if (!f)
		return CS_ESTORAGE;
	report_index(f, runs, count, opts);
	return report_close(f, path, err, err_size);
}
