/* The `swarmsim explore` and `swarmsim shrink` commands. See explore_main.h;
 * the schedules themselves are drawn and shrunk by sim/explore.c. */
#define _POSIX_C_SOURCE 200809L
#include "sim/explore_main.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "sim/explore.h"
#include "sim/report.h"
#include "sim/runner.h"
#include "sim/scenario.h"
#include "sim/timeline.h"

enum {
	EXPLORE_JOBS_MAX = 256,
	EXPLORE_LINE_MAX = 1024, /* one result line; < PIPE_BUF, so atomic */
};

static const char explore_usage[] =
	"usage: swarmsim explore FILE... [--seeds N] [--from S] [--faults LIST]\n"
	"                        [--jobs J] [--time-budget DUR] [--swarm] [--quiet]\n"
	"                        [--print] [--report DIR]\n"
	"       swarmsim shrink FILE --seed S [--faults LIST] [--swarm] [-o OUT.scn]\n"
	"\n"
	"explore runs each FILE under seeds S..S+N-1 (--from 1, --seeds 100 by\n"
	"default), each with a random fault schedule drawn from the seed, then a\n"
	"liveness phase: every fault healed, every node restarted, and\n"
	"`expect converged within 120s` and `expect managers in sync within 60s`.\n"
	"\n"
	"What is checked: the five invariants after every event, the scenario's\n"
	"`always` conditions, and the liveness phase. The scenario's timed `expect`\n"
	"lines become `await` (wait as long, never fail: a timed expectation may\n"
	"fail under faults without a bug), its other `expect` lines are dropped,\n"
	"and its other commands run as written. Generated faults leave alone the\n"
	"nodes the scenario itself kills, restarts, partitions or links (all\n"
	"managers when it names `leader`) and stay survivable: at most a\n"
	"minority of the managers down or cut off at once, never every worker.\n"
	"\n"
	"fault kinds (--faults, comma-separated, or all; default all):\n"
	"  crash      kill NODE: the machine dies (containers too); back later or\n"
	"             only in the liveness phase\n"
	"  restart    kill NODE process, then restart NODE (containers keep running)\n"
	"  partition  partition a minority of managers and some workers | *, heal\n"
	"  link       link A B loss=P [delay=D..D] [dup=P] for a while\n"
	"  process    image IMG exit=1 after=D..D or pull=fail for a while, on the\n"
	"             images of services that restart on any exit; with no such\n"
	"             image, the closest fault: the node's daemon dies (restart)\n"
	"  runtime    runtime NODE fail=OPS or restart containers=keep|lose for at\n"
	"             most 30s, then runtime NODE ok\n"
	"  disk       disk NODE fault=eio|full (its daemon exits at a failed durable\n"
	"             write), then disk NODE ok and restart NODE; a minority of\n"
	"             managers, never every worker\n"
	"  cert       cert wN expire: a worker's certificate expires; it joins\n"
	"             again (a new node) with its token\n"
	"  ca         ca rotate: a root CA rotation mid-run (one per plan, and\n"
	"             never with cert: the rotation replaces the join tokens)\n"
	"\n"
	"options:\n"
	"  --swarm            swarm testing: the seed also draws the cluster keys\n"
	"                     the `cluster` line leaves out (1..7 managers, 1..9\n"
	"                     workers), the heartbeat/election timings no `set`\n"
	"                     gives, which fault kinds are on, how many, how long\n"
	"  --jobs J           worker processes (default: online CPUs)\n"
	"  --time-budget DUR  start no new seed after DUR of wall time (60s, 2m)\n"
	"  --quiet            no progress line\n"
	"  --print            print each seed's scenario text; run nothing\n"
	"  --report DIR       write DIR/index.html (every seed run) and a page\n"
	"                     per seed, with a timeline for the first failing ones\n"
	"\n"
	"Each failing seed prints the commands that replay and shrink it; shrink\n"
	"drops faults while the run still fails (any failure), halves the rest's\n"
	"durations, and writes a scenario file that `swarmsim run` replays to the\n"
	"same failure and trace hash.\n"
	"\n"
	"exit status: 0 no failure, 1 failures, 2 bad input\n";

static double explore_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int explore_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	*v = strtoull(s, &end, 10);
	return (errno || *end) ? -1 : 0;
}

/* Reads 90, 90s, 1500ms, 2m, 1h into seconds. */
static int explore_duration(const char *s, double *seconds)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	if (!*end || strcmp(end, "s") == 0)
		*seconds = v;
	else if (strcmp(end, "ms") == 0)
		*seconds = v / 1000;
	else if (strcmp(end, "m") == 0)
		*seconds = v * 60;
	else if (strcmp(end, "h") == 0)
		*seconds = v * 3600;
	else
		return -1;
	return 0;
}

static void explore_sim_text(uint64_t us, char *buf, size_t size)
{
	uint64_t s = us / 1000000;
	if (s >= 3600)
		snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, size, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, size, "%.1fs", (double)us / 1e6);
}

/* ---------------------------------------------------------------- explore */

struct explore_opts {
	const char **files;
	size_t file_count;
	uint64_t seeds, from;
	uint32_t kinds;
	bool swarm;
	bool quiet;
	bool print;		/* print the schedules' scenario texts, run nothing */
	const char *report_dir; /* --report: index, a page per seed */
	long jobs;
	bool has_budget;
	double budget_s;
};

/* One seed's outcome, as a worker reports it. */
struct explore_outcome {
	bool done;
	bool passed;
	uint64_t sim_us, events, hash;
	char message[600];
};

/* The flags that reproduce this exploration's schedules. */
static void explore_flags(const struct explore_opts *o, char *buf, size_t size)
{
	char kinds[64];
	snprintf(buf, size, "--faults %s%s",
		 explore_kinds_text(o->kinds, kinds, sizeof kinds),
		 o->swarm ? " --swarm" : "");
}

/* A worker: runs units k, k+J, k+2J... and writes one line per unit to fd:
 * "UNIT PASSED SIM_US EVENTS HASH MESSAGE". Never returns. */
static void explore_worker(const struct explore_opts *o, const struct scn_script *scripts,
			   long k, int fd, double t0)
{
	uint64_t total = o->file_count * o->seeds;

	for (uint64_t u = (uint64_t)k; u < total; u += (uint64_t)o->jobs) {
		const struct scn_script *s = &scripts[u / o->seeds];
		uint64_t seed = o->from + u % o->seeds;
		struct explore_plan plan;
		struct runner_result res;
		char line[EXPLORE_LINE_MAX], err[256] = "";
		int n, rv;

		if (o->has_budget && explore_wall() - t0 >= o->budget_s)
			break;
		rv = explore_plan_make(s, seed, o->kinds, o->swarm, &plan);
		if (!rv)
			rv = explore_run(s, &plan, &res, NULL, err, sizeof err);
		if (rv) {
			memset(&res, 0, sizeof res);
			snprintf(res.message, sizeof res.message, "explore: %s",
				 err[0] ? err : cs_strerror(rv));
		}
		n = snprintf(line, sizeof line,
			     "%" PRIu64 " %d %" PRIu64 " %" PRIu64 " %016" PRIx64 " %s\n",
			     u, !rv && res.passed, res.sim_us, res.events, res.hash,
			     res.message);
		if (n < 0 || (size_t)n >= sizeof line) {
			n = (int)sizeof line - 1;
			line[n - 1] = '\n';
		}
		if (write(fd, line, (size_t)n) != n)
			_exit(3);
	}
	_exit(0);
}

static void explore_report_failure(const struct explore_opts *o,
				   const struct scn_script *scripts, uint64_t u,
				   const struct explore_outcome *r)
{
	const char *file = o->files[u / o->seeds];
	uint64_t seed = o->from + u % o->seeds;
	char flags[128];

	(void)scripts;
	explore_flags(o, flags, sizeof flags);
	printf("FAIL %s seed=%" PRIu64 " sim=%.1fs events=%" PRIu64 " trace=%016" PRIx64
	       " at sim=%.1fs %s\n"
	       "  replay: build/swarmsim run %s --seed %" PRIu64 " %s\n"
	       "  shrink: build/swarmsim shrink %s --seed %" PRIu64 " %s -o seed-%" PRIu64
	       ".scn\n",
	       file, seed, (double)r->sim_us / 1e6, r->events, r->hash,
	       (double)r->sim_us / 1e6, r->message, file, seed, flags, file, seed, flags,
	       seed);
	fflush(stdout);
}

/* The failing seeds that get a timeline picture in a report (each is run
 * again, here, with a recorder: the replay is exact). */
#define EXPLORE_REPORT_PICTURES 20

/* One failing seed replayed for its picture: the text, its script and the
 * timeline must outlive report_write. */
struct explore_replay {
	struct scn_script script;
	struct timeline *tl;
	bool parsed;
};

static void explore_replay(const struct explore_opts *o, const struct scn_script *s,
			   uint64_t seed, struct explore_replay *rp)
{
	struct explore_plan plan;
	struct runner_opts ropts = {0};
	struct runner_result res;
	char *text = NULL, err[256];
	size_t len;

	if (explore_plan_make(s, seed, o->kinds, o->swarm, &plan) ||
	    explore_text(s, &plan, &text, &len))
		return;
	if (scn_parse(s->path ? s->path : "-", text, len, &rp->script, err, sizeof err) ==
	    0) {
		rp->parsed = true;
		rp->tl = timeline_new(&rp->script);
		if (rp->tl) {
			timeline_attach(rp->tl, &ropts);
			if (runner_run(&rp->script, plan.seed, &ropts, &res) == 0) {
				timeline_finish(rp->tl, &res);
				runner_result_free(&res);
			} else {
				timeline_free(rp->tl);
				rp->tl = NULL;
			}
		}
	}
	free(text);
}

/* --report DIR: every seed run in the index, a timeline for the first
 * failing ones. Returns 0, or 1 when the report cannot be written. */
static int explore_write_report(const struct explore_opts *o,
				const struct scn_script *scripts,
				const struct explore_outcome *outs, uint64_t total)
{
	struct report_run *runs = calloc(total ? total : 1, sizeof *runs);
	struct explore_replay *rps = calloc(EXPLORE_REPORT_PICTURES, sizeof *rps);
	struct report_opts ropts = {.title = "swarmsim explore"};
	size_t n = 0, pictures = 0;
	char err[512];
	int rv = 1;

	if (!runs || !rps) {
		fprintf(stderr, "swarmsim explore: out of memory for the report\n");
		goto out;
	}
	for (uint64_t u = 0; u < total; u++) {
		struct report_run *r;
		if (!outs[u].done)
			continue;
		r = &runs[n++];
		r->file = o->files[u / o->seeds];
		r->seed = o->from + u % o->seeds;
		r->passed = outs[u].passed;
		r->message = outs[u].message;
		r->sim_s = (double)outs[u].sim_us / 1e6;
		r->events = outs[u].events;
		r->hash = outs[u].hash;
		if (!r->passed && pictures < EXPLORE_REPORT_PICTURES) {
			explore_replay(o, &scripts[u / o->seeds], r->seed,
				       &rps[pictures]);
			r->tl = rps[pictures++].tl;
		}
	}
	if (report_write(o->report_dir, runs, n, &ropts, err, sizeof err)) {
		fprintf(stderr, "swarmsim explore: report: %s\n", err);
		goto out;
	}
	printf("report: %s/index.html\n", o->report_dir);
	rv = 0;
out:
	for (size_t i = 0; rps && i < pictures; i++) {
		timeline_free(rps[i].tl);
		if (rps[i].parsed)
			scn_free(&rps[i].script);
	}
	free(rps);
	free(runs);
	return rv;
}

/* Parses one worker line into outs; returns the unit, or UINT64_MAX. */
static uint64_t explore_parse_line(char *line, struct explore_outcome *outs,
				   uint64_t total)
{
	uint64_t u, sim_us, events, hash;
	int passed, off = 0;

	if (sscanf(line, "%" SCNu64 " %d %" SCNu64 " %" SCNu64 " %" SCNx64 " %n", &u,
		   &passed, &sim_us, &events, &hash, &off) != 5 ||
	    u >= total)
		return UINT64_MAX;
	outs[u].done = true;
	outs[u].passed = passed != 0;
	outs[u].sim_us = sim_us;
	outs[u].events = events;
	outs[u].hash = hash;
	snprintf(outs[u].message, sizeof outs[u].message, "%s", line + off);
	return u;
}

static int explore_parse_args(int argc, char **argv, struct explore_opts *o)
{
	char err[256];

	o->seeds = 100;
	o->from = 1;
	o->kinds = EXPLORE_FAULTS_DEFAULT;
	o->jobs = sysconf(_SC_NPROCESSORS_ONLN);
	if (o->jobs < 1)
		o->jobs = 1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(explore_usage, stdout);
			exit(0);
		} else if (strcmp(a, "--swarm") == 0) {
			o->swarm = true;
		} else if (strcmp(a, "--quiet") == 0) {
			o->quiet = true;
		} else if (strcmp(a, "--print") == 0) {
			o->print = true;
		} else if (strcmp(a, "--report") == 0 && v) {
			o->report_dir = argv[++i];
		} else if (strcmp(a, "--seeds") == 0 && v) {
			if (explore_u64(argv[++i], &o->seeds) || o->seeds == 0) {
				fprintf(stderr,
					"swarmsim explore: --seeds wants a count > 0, got '%s'\n",
					v);
				return -1;
			}
		} else if (strcmp(a, "--from") == 0 && v) {
			if (explore_u64(argv[++i], &o->from)) {
				fprintf(stderr,
					"swarmsim explore: --from wants a seed, got '%s'\n",
					v);
				return -1;
			}
		} else if (strcmp(a, "--jobs") == 0 && v) {
			if (explore_u64(argv[++i], &n) || n == 0 ||
			    n > EXPLORE_JOBS_MAX) {
				fprintf(stderr,
					"swarmsim explore: --jobs wants 1..%d, got '%s'\n",
					EXPLORE_JOBS_MAX, v);
				return -1;
			}
			o->jobs = (long)n;
		} else if (strcmp(a, "--time-budget") == 0 && v) {
			if (explore_duration(argv[++i], &o->budget_s)) {
				fprintf(stderr,
					"swarmsim explore: --time-budget wants a duration (60s, 2m), got '%s'\n",
					v);
				return -1;
			}
			o->has_budget = true;
		} else if (strcmp(a, "--faults") == 0 && v) {
			if (explore_kinds_parse(argv[++i], &o->kinds, err, sizeof err)) {
				fprintf(stderr, "swarmsim explore: %s\n", err);
				return -1;
			}
		} else if (a[0] == '-') {
			fprintf(stderr,
				"swarmsim explore: unknown option or missing value: %s\n%s",
				a, explore_usage);
			return -1;
		} else {
			o->files[o->file_count++] = a;
		}
	}
	if (!o->file_count) {
		fprintf(stderr, "swarmsim explore: no scenario file\n%s", explore_usage);
		return -1;
	}
	return 0;
}

/* Loads every file; returns the number loaded, or -1 (message printed) on
 * bad input. */
static int explore_load(const char **files, size_t count, struct scn_script *scripts)
{
	char err[512];

	for (size_t i = 0; i < count; i++) {
		struct explore_plan plan;
		if (scn_parse_file(files[i], &scripts[i], err, sizeof err)) {
			fprintf(stderr, "%s\n", err);
			for (size_t k = 0; k < i; k++)
				scn_free(&scripts[k]);
			return -1;
		}
		if (explore_plan_make(&scripts[i], 1, EXPLORE_FAULTS_ALL, false, &plan)) {
			fprintf(stderr, "%s: no `cluster` command: nothing to explore\n",
				files[i]);
			for (size_t k = 0; k <= i; k++)
				scn_free(&scripts[k]);
			return -1;
		}
	}
	return (int)count;
}

/* --print: writes each unit's scenario text to stdout. Returns 0, or 2
 * when memory runs out. */
static int explore_print(const struct explore_opts *o, const struct scn_script *scripts,
			 uint64_t total)
{
	for (uint64_t u = 0; u < total; u++) {
		struct explore_plan plan;
		char *text;
		size_t len;
		explore_plan_make(&scripts[u / o->seeds], o->from + u % o->seeds,
				  o->kinds, o->swarm, &plan);
		if (explore_text(&scripts[u / o->seeds], &plan, &text, &len))
			return 2;
		fwrite(text, 1, len, stdout);
		free(text);
	}
	return 0;
}

int explore_main(int argc, char **argv)
{
	struct explore_opts o = {0};
	struct scn_script *scripts = NULL;
	struct explore_outcome *outs = NULL;
	pid_t pids[EXPLORE_JOBS_MAX];
	uint64_t total, ran = 0, failures = 0, sim_us = 0;
	char buf[8192];
	size_t buf_len = 0;
	bool tty;
	int fds[2], status = 2;
	double t0;

	o.files = calloc((size_t)argc + 1, sizeof *o.files);
	if (!o.files)
		return 2;
	if (explore_parse_args(argc, argv, &o))
		goto out_files;
	scripts = calloc(o.file_count, sizeof *scripts);
	if (!scripts || explore_load(o.files, o.file_count, scripts) < 0)
		goto out_files;
	total = o.file_count * o.seeds;
	if (o.print) {
		status = explore_print(&o, scripts, total);
		goto out_scripts;
	}
	if ((uint64_t)o.jobs > total)
		o.jobs = (long)total;
	outs = calloc(total, sizeof *outs);
	if (!outs || pipe(fds)) {
		fprintf(stderr, "swarmsim explore: out of memory or pipes\n");
		goto out_scripts;
	}
	tty = !o.quiet && isatty(STDERR_FILENO);
	fflush(stdout);
	fflush(stderr);
	t0 = explore_wall();
	for (long k = 0; k < o.jobs; k++) {
		pids[k] = fork();
		if (pids[k] < 0) {
			fprintf(stderr, "swarmsim explore: fork: %s\n", strerror(errno));
			o.jobs = k; /* the started ones cover only their share */
			break;
		}
		if (pids[k] == 0) {
			close(fds[0]);
			explore_worker(&o, scripts, k, fds[1], t0);
		}
	}
	close(fds[1]);

	for (;;) {
		ssize_t n = read(fds[0], buf + buf_len, sizeof buf - buf_len - 1);
		char *nl;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_len += (size_t)n;
		buf[buf_len] = '\0';
		while ((nl = memchr(buf, '\n', buf_len))) {
			uint64_t u;
			*nl = '\0';
			u = explore_parse_line(buf, outs, total);
			if (u != UINT64_MAX) {
				ran++;
				sim_us += outs[u].sim_us;
				if (!outs[u].passed) {
					failures++;
					if (tty)
						fputs("\r\033[K", stderr);
					explore_report_failure(&o, scripts, u, &outs[u]);
				}
			}
			buf_len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, buf_len);
			if (tty) {
				double dt = explore_wall() - t0;
				fprintf(stderr,
					"\r%" PRIu64 "/%" PRIu64 " seeds, %" PRIu64
					" failures, %.1f seeds/s",
					ran, total, failures,
					dt > 0 ? (double)ran / dt : 0.0);
			}
		}
	}
	close(fds[0]);
	if (tty)
		fputs("\r\033[K", stderr);

	/* a worker that died (an assertion in the simulated code: a bug found)
	 * leaves its next unit unreported */
	for (long k = 0; k < o.jobs; k++) {
		int ws;
		if (waitpid(pids[k], &ws, 0) < 0)
			continue;
		if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
			continue;
		for (uint64_t u = (uint64_t)k; u < total; u += (uint64_t)o.jobs) {
			if (outs[u].done)
				continue;
			outs[u].done = true;
			snprintf(outs[u].message, sizeof outs[u].message,
				 "the worker process died (%s %d) running this seed",
				 WIFSIGNALED(ws) ? "signal" : "exit status",
				 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
			ran++;
			failures++;
			explore_report_failure(&o, scripts, u, &outs[u]);
			break;
		}
	}

	{
		char sim[64];
		explore_sim_text(sim_us, sim, sizeof sim);
		printf("explore: %" PRIu64 " seeds, %" PRIu64
		       " failures, sim %s covered, wall %.1fs",
		       ran, failures, sim, explore_wall() - t0);
		if (ran < total)
			printf(" (time budget: %" PRIu64 " of %" PRIu64 " seeds ran)",
			       ran, total);
		printf("\n");
	}
	status = failures ? 1 : 0;
	if (o.report_dir && explore_write_report(&o, scripts, outs, total))
		status = 2;
	free(outs);
out_scripts:
	if (scripts)
		for (size_t i = 0; i < o.file_count; i++)
			scn_free(&scripts[i]);
	free(scripts);
out_files:
	free(o.files);
	return status;
}

/* ---------------------------------------------------------------- shrink */

static void shrink_progress(void *ctx, const char *what, const struct runner_result *res)
{
	const struct explore_plan *plan = ctx;
	fprintf(stderr, "shrink: %s: %s (%zu faults on)\n", what,
		res->passed ? "passes" : "fails", explore_enabled_count(plan));
}

int shrink_main(int argc, char **argv)
{
	const char *file = NULL, *out_path = NULL;
	uint32_t kinds = EXPLORE_FAULTS_DEFAULT;
	bool swarm = false, has_seed = false;
	uint64_t seed = 0;
	struct scn_script script;
	struct explore_plan plan;
	struct runner_result res;
	char err[512], *text = NULL;
	int rv;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(explore_usage, stdout);
			return 0;
		} else if (strcmp(a, "--swarm") == 0) {
			swarm = true;
		} else if (strcmp(a, "--seed") == 0 && v) {
			if (explore_u64(argv[++i], &seed)) {
				fprintf(stderr,
					"swarmsim shrink: --seed wants a seed, got '%s'\n",
					v);
				return 2;
			}
			has_seed = true;
		} else if (strcmp(a, "--faults") == 0 && v) {
			if (explore_kinds_parse(argv[++i], &kinds, err, sizeof err)) {
				fprintf(stderr, "swarmsim shrink: %s\n", err);
				return 2;
			}
		} else if (strcmp(a, "-o") == 0 && v) {
			out_path = argv[++i];
		} else if (a[0] == '-' || file) {
			fprintf(stderr, "swarmsim shrink: unexpected argument: %s\n%s", a,
				explore_usage);
			return 2;
		} else {
			file = a;
		}
	}
	if (!file || !has_seed) {
		fprintf(stderr, "swarmsim shrink: wants FILE and --seed S\n%s",
			explore_usage);
		return 2;
	}
	if (explore_load(&file, 1, &script) < 0)
		return 2;
	explore_plan_make(&script, seed, kinds, swarm, &plan);
	fprintf(stderr, "shrink: %s seed=%" PRIu64 ": %zu faults drawn\n", file, seed,
		plan.fault_count);
	rv = explore_shrink(&script, &plan, &res, shrink_progress, &plan, err,
			    sizeof err);
	if (rv < 0) {
		fprintf(stderr, "swarmsim shrink: %s\n", err);
		scn_free(&script);
		return 2;
	}
	if (rv == 1) {
		fprintf(stderr, "shrink: seed %" PRIu64 " passes: nothing to shrink\n",
			seed);
		scn_free(&script);
		return 0;
	}
	/* the text of the smallest failing plan, run once more as written */
	rv = explore_run(&script, &plan, &res, &text, err, sizeof err);
	scn_free(&script);
	if (rv) {
		fprintf(stderr, "swarmsim shrink: %s\n", err);
		return 2;
	}
	if (out_path) {
		FILE *f = fopen(out_path, "w");
		if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
			fprintf(stderr, "swarmsim shrink: cannot write %s: %s\n",
				out_path, strerror(errno));
			free(text);
			return 2;
		}
	} else {
		fputs(text, stdout);
	}
	free(text);
	fprintf(stderr,
		"shrink: %zu of %zu faults left; %s at sim=%.1fs trace=%016" PRIx64
		": %s\n",
		explore_enabled_count(&plan), plan.fault_count,
		res.passed ? "PASSES (not reproduced)" : "FAIL", (double)res.sim_us / 1e6,
		res.hash, res.message);
	if (out_path)
		fprintf(stderr, "shrink: replay: build/swarmsim run %s\n", out_path);
	return res.passed ? 0 : 1;
}
