/* swarmsim: replays scenario files on the deterministic simulator.
 *
 *   swarmsim run FILE... [--seed N] [--trace FILE.jsonl] [--junit FILE]
 *                        [--report DIR] [--baseline FILE.json]
 *                        [--fail-on-regression] [--check-determinism]
 *                        [--quiet] [--verbose]
 *
 * --trace FILE.jsonl writes one JSON object per line. These field names are
 * stable (fields may be added, never renamed or removed):
 *   {"scenario":"PATH","seed":N}   starts each scenario's events
 *   {"t_us":T,"node":"NAME","kind":"KIND","a":A,"b":B}   one per event
 * t_us is virtual time in microseconds; node is the node's name, or "-" for
 * the world itself (network faults, scenario commands); kind is one of
 *   timer      a node's timer fired (a: timer id)
 *   msg        a message delivered to node (a: sender's index, b: length)
 *   peer-down  a peer down notice delivered (a: the peer's index)
 *   call       a deferred call ran (executor, runner)
 *   drop       a message lost (loss, partition or dead peer)
 *   node-up    node's process started (a: incarnation)
 *   node-down  node killed (a: 1 machine crash, 0 process; b: lose unsynced)
 *   fault      the network changed (node "-": a partition (a = partitions,
 *              b = their hash), a heal (a = b = 0) or the default delay;
 *              node NAME: a link rule NAME -> a, b = loss_ppm << 32 | dup_ppm)
 *   send       a message sent (a: destination index, b: length)
 *   command    a scenario command began (a: its line, b: its kind)
 *
 * --report DIR writes DIR/index.html, one page per scenario (timeline
 * picture and scheduler metrics) and DIR/metrics.json (sim/report.h).
 * --baseline FILE.json compares the metrics with an earlier metrics.json:
 * one line per regression on stdout, marked in the report; the exit status
 * changes only with --fail-on-regression.
 *
 * Exit status: 0 every scenario passed, 1 some failed, 2 bad input (nothing
 * run). This file is the one place of sim/ that reads the wall clock: to
 * print how long each run took; and its environment: to start again with
 * glibc's allocator tuned (swarmsim_malloc_tune). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "sim/explore.h"
#include "sim/explore_main.h"
#include "sim/metrics.h"
#include "sim/replay.h"
#include "sim/realplan.h"
#include "sim/realworld.h"
#include "sim/report.h"
#include "sim/runner.h"
#include "sim/sanitize.h"
#include "sim/scenario.h"
#include "sim/timeline.h"

#define SWARMSIM_VERSION "0.1.0"

/* valgrind's allocator is not glibc's either (swarmsim_plain_allocator) */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SWARMSIM_ON_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef SWARMSIM_ON_VALGRIND
#define SWARMSIM_ON_VALGRIND() 0
#endif

/* glibc's per-thread cache of freed chunks (tcache): its count per size,
 * the tunable's maximum */
#define SWARMSIM_TUNABLES "glibc.malloc.tcache_count=32767"

static const char swarmsim_usage[] =
	"usage: swarmsim run FILE... [options]\n"
	"       swarmsim explore FILE [--seeds N] [--from S] [--faults LIST]\n"
	"       swarmsim merge DIR... [--out DIR]  (explore --shard I/N --out DIR)\n"
	"       swarmsim replay FILE... [--logs] [--timeline] [--report DIR]\n"
	"                (recordings of swarmd --record FILE)\n"
	"       swarmsim --help | --version\n"
	"\n"
	"Replays scenario files (see SCENARIOS.md) on virtual time, from a seed.\n"
	"One result line per scenario:\n"
	"  PASS FILE seed=N sim=T wall=T events=N trace=HASH\n"
	"  FAIL FILE seed=N sim=T wall=T events=N trace=HASH at sim=T line L: ...\n"
	"\n"
	"run options:\n"
	"  --seed N              seed for every file (wins over `seed N` in a file)\n"
	"  --faults LIST         replay what `explore` ran for the seed: the\n"
	"                        scenario with the seed's fault schedule\n"
	"  --swarm               ... and the seed's cluster shape (as explore --swarm)\n"
	"  --check-determinism   run each scenario twice; fail naming the first\n"
	"                        event where the two runs differ\n"
	"  --trace FILE.jsonl    write every event as one JSON object per line\n"
	"  --junit FILE          write results as JUnit XML\n"
	"  --report DIR          write DIR/index.html, a page per scenario (timeline,\n"
	"                        scheduler metrics) and DIR/metrics.json\n"
	"  --baseline FILE.json  compare metrics with an earlier metrics.json; print\n"
	"                        one line per regression (exit status unchanged)\n"
	"  --fail-on-regression  with --baseline: exit 1 when a figure got worse\n"
	"  --quiet               print only failures and the summary\n"
	"  --verbose             print the nodes' log lines on stderr\n"
	"  --real                also run each file against real swarmd and Docker\n"
	"                        in network namespaces (root; sim/realworld.h):\n"
	"                        a second line with world=real; FAIL when the two\n"
	"                        worlds' outcomes differ. Forms a real run cannot\n"
	"                        realise are refused as bad input (file:line)\n"
	"  --time-scale F        multiply every duration the files write by F\n"
	"                        (0 < F <= 10), in both worlds\n"
	"  --bin DIR             with --real: where swarmd and swarmctl are (build)\n"
	"  --keep-logs           with --real: keep the daemons' logs in\n"
	"                        /tmp/rw-logs.TAG\n"
	"\n"
	"exit status: 0 all passed, 1 some scenario failed (or regressed, with\n"
	"--fail-on-regression), 2 bad input\n";

struct swarmsim_opts {
	const char **files;
	size_t file_count;
	bool has_seed;
	uint64_t seed;
	bool check_determinism;
	bool quiet;
	bool verbose;
	const char *trace_path;
	const char *junit_path;
	const char *report_dir;
	const char *baseline_path;
	bool fail_on_regression;
	/* --faults / --swarm: replay what `explore` ran for the seed */
	bool explored;
	uint32_t fault_kinds;
	bool swarm;
	/* --real, --time-scale (issue 19) */
	bool real;
	uint32_t scale_ppm; /* 0: not given */
	const char *bin_dir;
	bool keep_logs;
};

struct swarmsim_outcome {
	struct runner_result res;
	double wall_s;
	bool nondeterministic;
	struct timeline *tl; /* with --report */
	/* with --real: the real world's run of the same file */
	bool has_real;
	struct runner_result real_res;
	double real_wall_s;
	struct timeline *real_tl; /* with --report */
	char *real_name;	  /* "PATH (real)", the report's name for it */
};

/* What the trace callback feeds: the JSONL file and the timeline. */
struct swarmsim_tracer {
	FILE *f;
	struct timeline *tl;
};

static double swarmsim_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- traces */

static const char *swarmsim_kind_name(uint32_t kind)
{
	static const char *const names[] = {
		"?",	   "timer",	"msg",	 "peer-down", "call",	 "drop",
		"node-up", "node-down", "fault", "send",      "command",
	};
	return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static void swarmsim_trace_event(void *ctx, const struct world *w, us_t at_us,
				 uint32_t node, enum sim_ev_kind kind, uint64_t a,
				 uint64_t b)
{
	const struct swarmsim_tracer *t = ctx;
	FILE *f = t->f;
	if (t->tl)
		timeline_trace(t->tl, w, at_us, node, kind, a, b);
	if (!f)
		return;
	fprintf(f,
		"{\"t_us\":%" PRIu64 ",\"node\":\"%s\",\"kind\":\"%s\",\"a\":%" PRIu64
		",\"b\":%" PRIu64 "}\n",
		at_us, node < world_node_count(w) ? world_node_name(w, node) : "-",
		swarmsim_kind_name(kind), a, b);
}

static void swarmsim_log(void *ctx, const struct world *w, uint32_t node,
			 enum env_log_level level, const char *msg)
{
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	(void)ctx;
	fprintf(stderr, "t=%.3fs node=%s level=%s %s\n", (double)world_now_us(w) / 1e6,
		world_node_name(w, node), levels[level], msg);
}

/* ---------------------------------------------------------------- junit */

static void swarmsim_xml(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static int swarmsim_junit(const char *path, const struct scn_script *scripts,
			  const struct swarmsim_outcome *out, size_t count)
{
	FILE *f = fopen(path, "w");
	size_t failures = 0;
	double total = 0;

	if (!f) {
		fprintf(stderr, "swarmsim: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		failures += !out[i].res.passed;
		total += out[i].wall_s;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuite name=\"swarmsim\" tests=\"%zu\" failures=\"%zu\" "
		"errors=\"0\" time=\"%.3f\">\n",
		count, failures, total);
	for (size_t i = 0; i < count; i++) {
		const struct runner_result *r = &out[i].res;
		fprintf(f, "  <testcase classname=\"scenarios\" name=\"");
		swarmsim_xml(f, scripts[i].path);
		fprintf(f, "\" time=\"%.3f\">\n", out[i].wall_s);
		fprintf(f,
			"    <properties><property name=\"seed\" value=\"%" PRIu64
			"\"/><property name=\"trace\" value=\"%016" PRIx64
			"\"/><property name=\"sim_s\" value=\"%.1f\"/></properties>\n",
			r->seed, r->hash, (double)r->sim_us / 1e6);
		if (!r->passed) {
			fprintf(f, "    <failure message=\"");
			swarmsim_xml(f, r->message);
			fprintf(f, "\"/>\n");
		}
		fprintf(f, "  </testcase>\n");
	}
	fprintf(f, "</testsuite>\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "swarmsim: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- report */

/* Writes the report (with --report) and prints the regressions against
 * the baseline (with --baseline). Returns the number of regressions; a
 * report that cannot be written is said on stderr. */
static size_t swarmsim_report(const struct swarmsim_opts *o,
			      const struct scn_script *scripts,
			      const struct swarmsim_outcome *out,
			      const struct metrics_set *baseline)
{
	struct report_run *runs =
		calloc(o->file_count ? 2 * o->file_count : 1, sizeof *runs);
	size_t count = o->file_count;
	struct report_opts ropts = {
		.baseline = o->baseline_path ? baseline : NULL,
		.baseline_name = o->baseline_path,
	};
	char err[512];
	size_t regressions;

	if (!runs) {
		fprintf(stderr, "swarmsim: out of memory writing the report\n");
		return 0;
	}
	for (size_t i = 0; i < o->file_count; i++) {
		const struct runner_result *r = &out[i].res;
		runs[i] = (struct report_run){
			.file = scripts[i].path,
			.seed = r->seed,
			.passed = r->passed,
			.message = r->message,
			.sim_s = (double)r->sim_us / 1e6,
			.wall_s = out[i].wall_s,
			.events = r->events,
			.hash = r->hash,
			.tl = out[i].tl,
		};
	}
	/* --real: each file's real run beside its simulated one */
	for (size_t i = 0; i < o->file_count; i++) {
		const struct runner_result *r = &out[i].real_res;
		if (!out[i].has_real || !out[i].real_name)
			continue;
		runs[count++] = (struct report_run){
			.file = out[i].real_name,
			.seed = r->seed,
			.passed = r->passed,
			.message = r->message,
			.sim_s = (double)r->sim_us / 1e6,
			.wall_s = out[i].real_wall_s,
			.events = r->events,
			.hash = r->hash,
			.tl = out[i].real_tl,
		};
	}
	regressions = report_regressions(stdout, runs, count, ropts.baseline);
	if (o->baseline_path)
		printf("baseline %s: %zu regressions\n", o->baseline_path, regressions);
	if (o->report_dir) {
		if (report_write(o->report_dir, runs, count, &ropts, err, sizeof err))
			fprintf(stderr, "swarmsim: cannot write the report: %s\n", err);
		else
			printf("report: %s/index.html\n", o->report_dir);
	}
	free(runs);
	return regressions;
}

/* ---------------------------------------------------------------- run */

/* world: NULL for a simulated run alone (the line as it always was), else
 * "sim" or "real", printed as world=WORLD. */
static void swarmsim_print(const struct scn_script *s, const struct swarmsim_outcome *o,
			   bool quiet, const char *world)
{
	const struct runner_result *r = &o->res;
	if (quiet && r->passed)
		return;
	printf("%s %s seed=%" PRIu64 " sim=%.1fs wall=%.2fs events=%" PRIu64
	       " trace=%016" PRIx64,
	       r->passed ? "PASS" : "FAIL", s->path, r->seed, (double)r->sim_us / 1e6,
	       o->wall_s, r->events, r->hash);
	if (world)
		printf(" world=%s", world);
	if (!r->passed)
		printf(" at sim=%.1fs %s", (double)r->sim_us / 1e6, r->message);
	printf("\n");
	fflush(stdout);
}

/* Whether memory is glibc's alone: not a sanitizer's allocator nor
 * valgrind's, whose leak checks would also report a world left to the
 * process's end (runner_opts.exit_after), and which a start again with
 * tunables would leave (swarmsim_malloc_tune). */
static bool swarmsim_plain_allocator(void)
{
#if defined(CS_SANITIZED)
	return false;
#else
	return !SWARMSIM_ON_VALGRIND();
#endif
}

/* Runs one script (twice with --check-determinism). Returns 0 or an error
 * (out of memory). last: no run follows (its world is left to the exit
 * when nothing watches its end: no trace, no report, not --real). */
static int swarmsim_run_one(const struct swarmsim_opts *o, const struct scn_script *s,
			    FILE *trace, bool last, struct swarmsim_outcome *out)
{
	struct runner_opts ropts = {.record = o->check_determinism};
	uint64_t seed = runner_seed(s, o->has_seed, o->seed);
	struct swarmsim_tracer tracer = {.f = trace};
	double t0 = swarmsim_wall();
	int rv;

	if (o->report_dir || o->baseline_path) {
		out->tl = timeline_new(s);
		if (!out->tl)
			return CS_ENOMEM;
		timeline_attach(out->tl, &ropts);
		tracer.tl = out->tl;
	}
	if (trace) {
		fputs("{\"scenario\":", trace);
		metrics_json_string(trace, s->path);
		fprintf(trace, ",\"seed\":%" PRIu64 "}\n", seed);
	}
	if (trace || out->tl) {
		ropts.trace = swarmsim_trace_event;
		ropts.trace_ctx = &tracer;
	}
	if (o->verbose)
		ropts.log = swarmsim_log;
	/* the world's teardown traces its nodes going down: only a run
	 * nobody traces may skip it */
	last = last && !ropts.trace && !o->real && swarmsim_plain_allocator();
	ropts.exit_after = last && !o->check_determinism;
	rv = runner_run(s, seed, &ropts, &out->res);
	out->wall_s = swarmsim_wall() - t0;
	if (rv)
		return rv;
	if (o->check_determinism) {
		struct runner_result again;
		int64_t at;
		ropts.trace = NULL;
		ropts.log = NULL;
		ropts.observe = NULL;
		ropts.exit_after = last;
		rv = runner_run(s, seed, &ropts, &again);
		if (rv)
			return rv;
		at = runner_diverge(&out->res, &again);
		if (at >= 0) {
			const struct sim_trace_rec *rec = (size_t)at < out->res.rec_count
								  ? &out->res.recs[at]
								  : NULL;
			out->nondeterministic = true;
			out->res.passed = false;
			if (rec)
				snprintf(
					out->res.message, sizeof out->res.message,
					"nondeterminism: the two runs diverge at event %" PRId64
					" (sim=%.6fs node=%" PRIu32
					" kind=%s); trace %016" PRIx64
					" then %016" PRIx64,
					at, (double)rec->at_us / 1e6, rec->node,
					swarmsim_kind_name(rec->kind), out->res.hash,
					again.hash);
			else
				snprintf(
					out->res.message, sizeof out->res.message,
					"nondeterminism: the second run goes on after event %" PRId64
					"; trace %016" PRIx64 " then %016" PRIx64,
					at, out->res.hash, again.hash);
		}
		runner_result_free(&again);
		out->wall_s = swarmsim_wall() - t0;
	}
	if (out->tl)
		timeline_finish(out->tl, &out->res);
	runner_result_free(&out->res);
	return 0;
}

/* Runs script on real daemons (--real), prints its line (world=real), and
 * turns *out (the simulated run's) into the verdict of both: FAIL naming
 * both results when their outcomes differ (one passes, or they fail at
 * different lines). Returns 0, or -1 when a signal stopped the run. */
static int swarmsim_run_real(const struct swarmsim_opts *o, const struct scn_script *s,
			     struct swarmsim_outcome *out)
{
	struct realworld_opts ropts = {
		.bin_dir = o->bin_dir ? o->bin_dir : "build",
		.verbose = o->verbose,
		.keep_logs = o->keep_logs,
	};
	struct swarmsim_outcome real = {0};
	double t0;
	int rv;
	bool same;
	size_t nlen = strlen(s->path) + sizeof " (real)";

	if (o->report_dir) {
		out->real_tl = timeline_new(s);
		out->real_name = malloc(nlen);
		if (out->real_name)
			snprintf(out->real_name, nlen, "%s (real)", s->path);
		ropts.tl = out->real_tl;
	}
	t0 = swarmsim_wall();
	rv = realworld_run(s, &ropts, &real.res);
	real.wall_s = swarmsim_wall() - t0;
	real.res.seed = out->res.seed;
	if (out->real_tl)
		timeline_finish(out->real_tl, &real.res);
	out->has_real = true;
	out->real_res = real.res;
	out->real_wall_s = real.wall_s;
	swarmsim_print(s, &real, false, "real");
	if (rv == CS_ECANCELED)
		return -1;
	same = real.res.passed == out->res.passed &&
	       (real.res.passed || real.res.fail_line == out->res.fail_line);
	if (!same) {
		char msg[sizeof out->res.message];
		snprintf(msg, sizeof msg,
			 "the worlds differ: sim %s%.200s, real %s%.200s",
			 out->res.passed ? "PASS" : "FAIL ",
			 out->res.passed ? "" : out->res.message,
			 real.res.passed ? "PASS" : "FAIL ",
			 real.res.passed ? "" : real.res.message);
		memcpy(out->res.message, msg, sizeof msg);
		out->res.passed = false;
		printf("FAIL %s %s\n", s->path, msg);
	}
	return 0;
}

static int swarmsim_parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	*v = strtoull(s, &end, 10);
	return (errno || *end) ? -1 : 0;
}

static int swarmsim_cmd_run(int argc, char **argv)
{
	struct swarmsim_opts o = {0};
	struct scn_script *scripts = NULL;
	struct swarmsim_outcome *out = NULL;
	char **texts = NULL;		    /* --faults: the explored scenarios' texts */
	struct explore_lines *lines = NULL; /* --faults: where their lines come from */
	struct explore_plan *plans = NULL;  /* --faults: their plans */
	size_t failed = 0, loaded = 0;
	FILE *trace = NULL;
	struct metrics_set baseline = {0};
	char err[512];
	int status = 2;

	o.files = calloc((size_t)argc, sizeof *o.files);
	if (!o.files)
		return 2;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
			if (swarmsim_parse_u64(argv[++i], &o.seed)) {
				fprintf(stderr,
					"swarmsim: --seed wants a number from 0 to 2^64-1, got '%s'\n",
					argv[i]);
				goto out_files;
			}
			o.has_seed = true;
		} else if (strcmp(a, "--trace") == 0 && i + 1 < argc) {
			o.trace_path = argv[++i];
		} else if (strcmp(a, "--junit") == 0 && i + 1 < argc) {
			o.junit_path = argv[++i];
		} else if (strcmp(a, "--report") == 0 && i + 1 < argc) {
			o.report_dir = argv[++i];
		} else if (strcmp(a, "--baseline") == 0 && i + 1 < argc) {
			o.baseline_path = argv[++i];
		} else if (strcmp(a, "--faults") == 0 && i + 1 < argc) {
			if (explore_kinds_parse(argv[++i], &o.fault_kinds, err,
						sizeof err)) {
				fprintf(stderr, "swarmsim: --faults: %s\n", err);
				goto out_files;
			}
			o.explored = true;
		} else if (strcmp(a, "--swarm") == 0) {
			o.swarm = true;
			o.explored = true;
			if (!o.fault_kinds)
				o.fault_kinds = EXPLORE_FAULTS_DEFAULT;
		} else if (strcmp(a, "--real") == 0) {
			o.real = true;
		} else if (strcmp(a, "--keep-logs") == 0) {
			o.keep_logs = true;
		} else if (strcmp(a, "--bin") == 0 && i + 1 < argc) {
			o.bin_dir = argv[++i];
		} else if (strcmp(a, "--time-scale") == 0 && i + 1 < argc) {
			char *end;
			double f = strtod(argv[++i], &end);
			if (*end || !(f > 0) || f > 10 || f * 1e6 < 1) {
				fprintf(stderr,
					"swarmsim: --time-scale wants a number in (0, 10], got "
					"'%s'\n",
					argv[i]);
				goto out_files;
			}
			o.scale_ppm = (uint32_t)(f * 1e6 + 0.5);
		} else if (strcmp(a, "--fail-on-regression") == 0) {
			o.fail_on_regression = true;
		} else if (strcmp(a, "--check-determinism") == 0) {
			o.check_determinism = true;
		} else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
			o.quiet = true;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			o.verbose = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(swarmsim_usage, stdout);
			status = 0;
			goto out_files;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr,
				"swarmsim: unknown option '%s' (or missing value); see swarmsim --help\n",
				a);
			goto out_files;
		} else {
			o.files[o.file_count++] = a;
		}
	}
	if (o.file_count == 0) {
		fprintf(stderr, "swarmsim: run needs at least one scenario file\n%s",
			swarmsim_usage);
		goto out_files;
	}
	scripts = calloc(o.file_count, sizeof *scripts);
	out = calloc(o.file_count, sizeof *out);
	texts = calloc(o.file_count, sizeof *texts);
	lines = calloc(o.file_count, sizeof *lines);
	plans = calloc(o.file_count, sizeof *plans);
	if (!scripts || !out || !texts || !lines || !plans)
		goto out_files;
	/* Parse everything first: bad input runs nothing. */
	status = 0;
	for (size_t i = 0; i < o.file_count; i++) {
		if (scn_parse_file(o.files[i], &scripts[i], err, sizeof err)) {
			fprintf(stderr, "%s\n", err);
			status = 2;
		}
		loaded = i + 1;
	}
	if (status == 2)
		goto out_scripts;
	/* a seed of `explore`, exactly: the scenario with the seed's fault
	 * schedule (and shape, with --swarm), as explore wrote it */
	for (size_t i = 0; o.explored && i < o.file_count; i++) {
		struct explore_plan plan;
		struct scn_script gen;
		size_t len;
		uint64_t seed = runner_seed(&scripts[i], o.has_seed, o.seed);
		err[0] = '\0';
		if (explore_plan_make(&scripts[i], seed, o.fault_kinds, o.swarm, &plan) ||
		    explore_text_lines(&scripts[i], &plan, &texts[i], &len, &lines[i]) ||
		    scn_parse(o.files[i], texts[i], len, &gen, err, sizeof err)) {
			fprintf(stderr,
				"swarmsim: %s: cannot replay seed %" PRIu64
				" of explore: %s\n",
				o.files[i], seed, err[0] ? err : "out of memory");
			status = 2;
			goto out_scripts;
		}
		scn_free(&scripts[i]);
		scripts[i] = gen;
		plans[i] = plan;
	}
	/* --time-scale: both worlds run the scaled script */
	for (size_t i = 0; o.scale_ppm && i < o.file_count; i++)
		realplan_scale(&scripts[i], o.scale_ppm);
	if (o.real) {
		bool netem = realworld_netem_works();
		for (size_t i = 0; i < o.file_count; i++) {
			if (realplan_check(&scripts[i], netem, err, sizeof err)) {
				fprintf(stderr, "%s\n", err);
				status = 2;
			}
		}
		if (o.explored || o.check_determinism || o.baseline_path) {
			fprintf(stderr,
				"swarmsim: --real runs without --faults, --swarm, "
				"--check-determinism and --baseline\n");
			status = 2;
		}
		if (status == 2)
			goto out_scripts;
	}
	if (o.fail_on_regression && !o.baseline_path) {
		fprintf(stderr, "swarmsim: --fail-on-regression needs --baseline FILE\n");
		status = 2;
		goto out_scripts;
	}
	if (o.baseline_path &&
	    metrics_set_load(o.baseline_path, &baseline, err, sizeof err)) {
		fprintf(stderr, "swarmsim: baseline %s\n", err);
		status = 2;
		goto out_scripts;
	}
	if (o.trace_path) {
		trace = fopen(o.trace_path, "w");
		if (!trace) {
			fprintf(stderr, "swarmsim: cannot write %s: %s\n", o.trace_path,
				strerror(errno));
			status = 2;
			goto out_scripts;
		}
	}
	for (size_t i = 0; i < o.file_count; i++) {
		if (swarmsim_run_one(&o, &scripts[i], trace, i + 1 == o.file_count,
				     &out[i])) {
			fprintf(stderr, "swarmsim: out of memory running %s\n",
				scripts[i].path);
			status = 1;
			goto out_trace;
		}
		/* a failure names the line of the user's file, not the plan's */
		if (o.explored)
			explore_lines_apply(&lines[i], &plans[i], &out[i].res);
		swarmsim_print(&scripts[i], &out[i], o.quiet, o.real ? "sim" : NULL);
		if (o.real && swarmsim_run_real(&o, &scripts[i], &out[i])) {
			status = 130;
			goto out_trace;
		}
		failed += !out[i].res.passed;
	}
	status = failed ? 1 : 0;
	if (o.file_count > 1 || o.quiet)
		printf("%zu scenarios: %zu passed, %zu failed\n", o.file_count,
		       o.file_count - failed, failed);
	if (o.junit_path && swarmsim_junit(o.junit_path, scripts, out, o.file_count))
		status = status ? status : 1;
	if ((o.report_dir || o.baseline_path) &&
	    swarmsim_report(&o, scripts, out, &baseline) && o.fail_on_regression)
		status = status ? status : 1;
out_trace:
	if (trace && fclose(trace) != 0) {
		fprintf(stderr, "swarmsim: cannot write %s: %s\n", o.trace_path,
			strerror(errno));
		status = status ? status : 1;
	}
out_scripts:
	for (size_t i = 0; i < loaded; i++) {
		timeline_free(out[i].tl);
		timeline_free(out[i].real_tl);
		free(out[i].real_name);
		scn_free(&scripts[i]);
	}
	metrics_set_free(&baseline);
out_files:
	for (size_t i = 0; texts && i < o.file_count; i++)
		free(texts[i]);
	for (size_t i = 0; lines && i < o.file_count; i++)
		explore_lines_free(&lines[i]);
	free(lines);
	free(plans);
	free(texts);
	free(out);
	free(scripts);
	free(o.files);
	return status;
}

/* glibc keeps at most 7 freed chunks of one size in its thread cache by
 * default. A simulated rollout frees and makes again tens of thousands of
 * objects of a few sizes per batch (tasks, statuses, decoded messages):
 * past 7 they go to the fast bins, which every large free then
 * consolidates (issue 18: malloc and free were a fifth of
 * converge-100k-on-1k-workers). glibc reads its tunables once, at start,
 * so swarmsim starts again (the same program, arguments and process) with
 * a cache of SWARMSIM_TUNABLES: 7% off that run's wall time, 9% off its
 * CPU time, 34 MB more of its 1.15 GB. Nothing the simulation computes
 * depends on where memory is (no iteration in pointer order), so no trace
 * changes. Not when GLIBC_TUNABLES is set (the caller's choice, and the
 * mark of the second start, which then drops it from its environment),
 * under valgrind (the second start would run outside it) or a sanitizer
 * (an allocator of its own); when the start again fails, swarmsim goes on
 * as it is. */
static void swarmsim_malloc_tune(char **argv)
{
#if defined(__GLIBC__)
	const char *tunables = getenv("GLIBC_TUNABLES");

	if (tunables) {
		/* the second start (glibc has read them): what it starts in
		 * turn (swarmd under --real) keeps glibc's defaults */
		if (strcmp(tunables, SWARMSIM_TUNABLES) == 0)
			unsetenv("GLIBC_TUNABLES");
		return;
	}
	if (!swarmsim_plain_allocator())
		return;
	if (setenv("GLIBC_TUNABLES", SWARMSIM_TUNABLES, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	unsetenv("GLIBC_TUNABLES");
#else
	(void)argv;
#endif
}

int main(int argc, char **argv)
{
	swarmsim_malloc_tune(argv);
	if (argc < 2) {
		fputs(swarmsim_usage, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(swarmsim_usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("swarmsim %s\n", SWARMSIM_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return swarmsim_cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "explore") == 0)
		return explore_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "shrink") == 0)
		return shrink_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "merge") == 0)
		return merge_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "replay") == 0) /* issue 19 */
		return replay_main(argc - 2, argv + 2);
	fprintf(stderr, "swarmsim: unknown command '%s' (expected run or explore)\n%s",
		argv[1], swarmsim_usage);
	return 2;
}
