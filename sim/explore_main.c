/* The `swarmsim explore` and `swarmsim shrink` commands. See explore_main.h;
 * the schedules themselves are drawn and shrunk by sim/explore.c. */
#define _POSIX_C_SOURCE 200809L /* getline, strdup */
#include "sim/explore_main.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	"                        [--print] [--report DIR] [--strict-claims]\n"
	"                        [--shard I/N] [--out DIR]\n"
	"       swarmsim merge DIR... [--out DIR] [--strict-claims]\n"
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
	"nodes the scenario itself kills, restarts, partitions, links, drains,\n"
	"pauses, removes, promotes, demotes or gives runtime or disk faults (all\n"
	"managers when it names `leader`) and stay survivable: at most a\n"
	"minority of the managers down or cut off at once, never every worker.\n"
	"No cert fault is drawn into a scenario that sizes a network's pool\n"
	"(`subnet=`): the old node's tasks keep their addresses for 24 h.\n"
	"\n"
	"The scenario's own faults (kill, partition, isolate, disk faults, node\n"
	"rm, demote, drain, pause; each naming `leader` counts one more manager)\n"
	"come off the survivability budget first. Its waits (`expect ... within`,\n"
	"`await`) are stretched to the drawn timings (an election of 20 ticks of\n"
	"1s waits twice as long), and a command naming `leader` first waits for\n"
	"one (`await leader within 60s`, stretched). With --swarm, the drawn\n"
	"shape always has room for the scenario's services (replicas, max per\n"
	"node, reservations, role constraints).\n"
	"\n"
	"Each failure has a class: invariant (an invariant broken, or the\n"
	"simulated code died: always a bug), liveness (the liveness phase, or a\n"
	"command that got no leader or no answer), claim (an `always` of the\n"
	"scenario broken after a generated fault, which is named: the fault may\n"
	"make the claim false; a failure only with --strict-claims), and\n"
	"claim-unfaulted (an `always` broken before any generated fault). A\n"
	"liveness failure that the same plan with every fault off fails with the\n"
	"same words, up to their counts, is story (the scenario's own story never\n"
	"converges, as a service it leaves no room for or a paused update):\n"
	"printed as STORY, not a failure.\n"
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
	"             write), fault=torn then kill NODE (torn pages), or kill NODE\n"
	"             process then fault=corrupt file=agent (a clean start), then\n"
	"             disk NODE ok and restart NODE; a minority of\n"
	"             managers, never every worker\n"
	"  cert       cert wN expire: a worker's certificate expires; it joins\n"
	"             again (a new node) with its token\n"
	"  ca         ca rotate: a root CA rotation mid-run (one per plan, and\n"
	"             never with cert: the rotation replaces the join tokens);\n"
	"             every other one is replaced by a second `ca rotate` 1 to\n"
	"             30 s later, in whatever phase it is then\n"
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
	"  --strict-claims    a claim broken after a generated fault fails the run\n"
	"  --shard I/N        run only the units (file, seed) whose index modulo N\n"
	"                     is I (0 <= I < N): N shards cover the range once\n"
	"  --out DIR          write DIR/results.tsv (one line per seed run),\n"
	"                     DIR/failures.txt, DIR/summary.txt, DIR/metrics.json;\n"
	"                     `swarmsim merge` combines the DIRs of the shards\n"
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
	bool strict_claims;
	uint64_t shard, shards; /* --shard I/N: 0/1 when not given */
	const char *out_dir;	/* --out */
};

/* One seed's outcome, as a worker reports it. */
struct explore_outcome {
	bool done;
	bool passed; /* cls == EXPLORE_PASSED */
	enum explore_class cls;
	uint64_t sim_us, events, hash;
	char fault[EXPLORE_CMD_MAX + 32];
	char message[600];
};

/* Tabs and line ends become blanks, so that a field stays one field. */
static void explore_flatten(char *s)
{
	for (; *s; s++)
		if (*s == '\t' || *s == '\n' || *s == '\r')
			*s = ' ';
}

/* The flags that reproduce this exploration's schedules. */
static void explore_flags(const struct explore_opts *o, char *buf, size_t size)
{
	char kinds[64];
	snprintf(buf, size, "--faults %s%s",
		 explore_kinds_text(o->kinds, kinds, sizeof kinds),
		 o->swarm ? " --swarm" : "");
}

/* The units (index into files x seeds) of this shard: u % N == I. */
static uint64_t explore_shard_count(const struct explore_opts *o, uint64_t total)
{
	return total / o->shards + (o->shard < total % o->shards);
}

static uint64_t explore_shard_unit(const struct explore_opts *o, uint64_t i)
{
	return o->shard + i * o->shards;
}

/* A worker: runs the shard's units k, k+J, k+2J... and writes one line per
 * unit to fd: "UNIT\tCLASS\tSIM_US\tEVENTS\tHASH\tFAULT\tMESSAGE". Never
 * returns. */
static void explore_worker(const struct explore_opts *o, const struct scn_script *scripts,
			   long k, int fd, double t0)
{
	uint64_t total = o->file_count * o->seeds, count = explore_shard_count(o, total);

	for (uint64_t i = (uint64_t)k; i < count; i += (uint64_t)o->jobs) {
		uint64_t u = explore_shard_unit(o, i);
		const struct scn_script *s = &scripts[u / o->seeds];
		uint64_t seed = o->from + u % o->seeds;
		struct explore_plan plan;
		struct runner_result res;
		struct explore_verdict v;
		char line[EXPLORE_LINE_MAX], err[256] = "";
		int n, rv;

		if (o->has_budget && explore_wall() - t0 >= o->budget_s)
			break;
		memset(&v, 0, sizeof v);
		rv = explore_plan_make(s, seed, o->kinds, o->swarm, &plan);
		if (!rv)
			rv = explore_run_judged(s, &plan, &res, &v, NULL, err,
						sizeof err);
		if (rv) {
			memset(&res, 0, sizeof res);
			snprintf(res.message, sizeof res.message, "explore: %s",
				 err[0] ? err : cs_strerror(rv));
			v.cls = EXPLORE_LIVENESS;
		}
		explore_flatten(res.message);
		explore_flatten(v.fault);
		n = snprintf(line, sizeof line,
			     "%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\t%016" PRIx64
			     "\t%s\t%s\n",
			     u, explore_class_name(v.cls), res.sim_us, res.events,
			     res.hash, v.fault, res.message);
		if (n < 0 || (size_t)n >= sizeof line) {
			n = (int)sizeof line - 1;
			line[n - 1] = '\n';
		}
		if (write(fd, line, (size_t)n) != n)
			_exit(3);
	}
	_exit(0);
}

/* Prints a failing (or claim) unit to f: its line, its class, the replay
 * and shrink commands. */
static void explore_report_failure(const struct explore_opts *o, FILE *f, uint64_t u,
				   const struct explore_outcome *r)
{
	const char *file = o->files[u / o->seeds];
	uint64_t seed = o->from + u % o->seeds;
	bool fails = explore_class_fails(r->cls, o->strict_claims);
	char flags[128];

	explore_flags(o, flags, sizeof flags);
	fprintf(f,
		"%s %s seed=%" PRIu64 " sim=%.1fs events=%" PRIu64 " trace=%016" PRIx64
		" at sim=%.1fs %s\n"
		"  class: %s%s%s%s\n"
		"  replay: build/swarmsim run %s --seed %" PRIu64 " %s\n"
		"  shrink: build/swarmsim shrink %s --seed %" PRIu64
		" %s -o seed-%" PRIu64 ".scn\n",
		fails			  ? "FAIL"
		: r->cls == EXPLORE_STORY ? "STORY"
					  : "CLAIM",
		file, seed, (double)r->sim_us / 1e6, r->events, r->hash,
		(double)r->sim_us / 1e6, r->message, explore_class_name(r->cls),
		r->fault[0] ? ", after generated fault: " : "", r->fault,
		fails			  ? ""
		: r->cls == EXPLORE_STORY ? " (the same with no generated fault: the "
					    "scenario's own story; not a failure)"
					  : " (not a failure without --strict-claims)",
		file, seed, flags, file, seed, flags, seed);
	fflush(f);
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
		r->passed = !explore_class_fails(outs[u].cls, o->strict_claims);
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

/* Parses one result line ("UNIT\tCLASS\tSIM_US\tEVENTS\tHASH\tFAULT\t
 * MESSAGE", a worker's or a results.tsv's) into outs; returns the unit, or
 * UINT64_MAX when the line is not one. */
static uint64_t explore_parse_line(char *line, struct explore_outcome *outs,
				   uint64_t total)
{
	char *field[7], *p = line, *end;
	uint64_t u, num[3];
	enum explore_class cls;

	for (int i = 0; i < 7; i++) {
		field[i] = p;
		if (i < 6) {
			p = strchr(p, '\t');
			if (!p)
				return UINT64_MAX;
			*p++ = '\0';
		}
	}
	errno = 0;
	u = strtoull(field[0], &end, 10);
	if (errno || *end || end == field[0] || u >= total ||
	    explore_class_parse(field[1], &cls))
		return UINT64_MAX;
	for (int i = 0; i < 3; i++) {
		num[i] = strtoull(field[2 + i], &end, i == 2 ? 16 : 10);
		if (errno || *end || end == field[2 + i])
			return UINT64_MAX;
	}
	outs[u].done = true;
	outs[u].cls = cls;
	outs[u].passed = cls == EXPLORE_PASSED;
	outs[u].sim_us = num[0];
	outs[u].events = num[1];
	outs[u].hash = num[2];
	snprintf(outs[u].fault, sizeof outs[u].fault, "%s", field[5]);
	snprintf(outs[u].message, sizeof outs[u].message, "%s", field[6]);
	return u;
}

static int explore_parse_args(int argc, char **argv, struct explore_opts *o)
{
	char err[256];

	o->seeds = 100;
	o->from = 1;
	o->shards = 1;
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
		} else if (strcmp(a, "--strict-claims") == 0) {
			o->strict_claims = true;
		} else if (strcmp(a, "--out") == 0 && v) {
			o->out_dir = argv[++i];
		} else if (strcmp(a, "--shard") == 0 && v) {
			char *slash;
			uint64_t si, sn;
			i++;
			slash = strchr(v, '/');
			if (!slash || (*slash = '\0', explore_u64(v, &si)) ||
			    explore_u64(slash + 1, &sn) || sn == 0 || si >= sn) {
				if (slash)
					*slash = '/';
				fprintf(stderr,
					"swarmsim explore: --shard wants I/N with 0 <= I < N, got '%s'\n",
					v);
				return -1;
			}
			*slash = '/';
			o->shard = si;
			o->shards = sn;
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

/* --print: writes each unit's (of the shard) scenario text to stdout. Returns 0, or 2
 * when memory runs out. */
static int explore_print(const struct explore_opts *o, const struct scn_script *scripts,
			 uint64_t total)
{
	for (uint64_t u = o->shard; u < total; u += o->shards) {
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

/* Counts of the units run, by class, and the virtual time covered. */
struct explore_tally {
	uint64_t ran, failures, sim_us;
	uint64_t by_class[EXPLORE_CLASS_COUNT];
};

static void explore_tally(const struct explore_opts *o,
			  const struct explore_outcome *outs, uint64_t total,
			  struct explore_tally *t)
{
	memset(t, 0, sizeof *t);
	for (uint64_t u = 0; u < total; u++) {
		if (!outs[u].done)
			continue;
		t->ran++;
		t->sim_us += outs[u].sim_us;
		t->by_class[outs[u].cls]++;
		t->failures += explore_class_fails(outs[u].cls, o->strict_claims);
	}
}

/* The summary: the first line as it always was, then the classes. */
static void explore_summary(const struct explore_opts *o, FILE *f,
			    const struct explore_tally *t, uint64_t total, double wall_s)
{
	char sim[64];

	explore_sim_text(t->sim_us, sim, sizeof sim);
	fprintf(f, "explore: %" PRIu64 " seeds, %" PRIu64 " failures, sim %s covered",
		t->ran, t->failures, sim);
	if (wall_s >= 0)
		fprintf(f, ", wall %.1fs", wall_s);
	if (t->ran < total)
		fprintf(f, " (%" PRIu64 " of %" PRIu64 " seeds ran)", t->ran, total);
	fprintf(f,
		"\nexplore: classes: invariant %" PRIu64 ", liveness %" PRIu64
		", claim-unfaulted %" PRIu64 ", claim %" PRIu64 "%s\n",
		t->by_class[EXPLORE_INVARIANT], t->by_class[EXPLORE_LIVENESS],
		t->by_class[EXPLORE_CLAIM_UNFAULTED], t->by_class[EXPLORE_CLAIM],
		t->by_class[EXPLORE_CLAIM]
			? (o->strict_claims
				   ? " (failures: --strict-claims)"
				   : " (broken by generated faults: not failures "
				     "without --strict-claims)")
			: "");
	if (t->by_class[EXPLORE_STORY])
		fprintf(f,
			"explore: story %" PRIu64
			" (a liveness wait failed as it does with no generated "
			"fault: the scenario's own story, not failures)\n",
			t->by_class[EXPLORE_STORY]);
}

/* The header of results.tsv: everything that decides the units' results
 * (and the shard), so that merge can tell shards of one exploration. */
static void explore_header(const struct explore_opts *o, FILE *f, bool with_shard)
{
	char kinds[64];
	fprintf(f, "#explore\t1\n");
	for (size_t i = 0; i < o->file_count; i++)
		fprintf(f, "#file\t%s\n", o->files[i]);
	fprintf(f,
		"#from\t%" PRIu64 "\n#seeds\t%" PRIu64 "\n#faults\t%s\n#swarm\t%d\n"
		"#strict-claims\t%d\n",
		o->from, o->seeds, explore_kinds_text(o->kinds, kinds, sizeof kinds),
		o->swarm, o->strict_claims);
	if (with_shard)
		fprintf(f, "#shard\t%" PRIu64 "/%" PRIu64 "\n", o->shard, o->shards);
}

static FILE *explore_open_out(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "swarmsim: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

static int explore_close_out(FILE *f, const char *dir, const char *name, int rv)
{
	if (fclose(f) != 0 && !rv) {
		fprintf(stderr, "swarmsim: cannot write %s/%s: %s\n", dir, name,
			strerror(errno));
		return -1;
	}
	return rv;
}

/* --out DIR: results.tsv, failures.txt, summary.txt, metrics.json, every
 * one in unit order (so that the merge of shards writes the same bytes as
 * one run; the wall time alone differs, on its own line). Returns 0, or -1
 * with a message printed. */
static int explore_write_out(const struct explore_opts *o,
			     const struct explore_outcome *outs, uint64_t total,
			     double wall_s)
{
	static const char *const names[] = {"results.tsv", "failures.txt", "summary.txt",
					    "metrics.json"};
	struct explore_tally t;
	FILE *f;
	int rv = 0;

	if (mkdir(o->out_dir, 0777) && errno != EEXIST) {
		fprintf(stderr, "swarmsim: cannot create %s: %s\n", o->out_dir,
			strerror(errno));
		return -1;
	}
	explore_tally(o, outs, total, &t);
	for (int k = 0; k < 4 && !rv; k++) {
		f = explore_open_out(o->out_dir, names[k]);
		if (!f)
			return -1;
		if (k == 0) {
			explore_header(o, f, true);
			for (uint64_t u = 0; u < total; u++)
				if (outs[u].done)
					fprintf(f,
						"%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64
						"\t%016" PRIx64 "\t%s\t%s\n",
						u, explore_class_name(outs[u].cls),
						outs[u].sim_us, outs[u].events,
						outs[u].hash, outs[u].fault,
						outs[u].message);
		} else if (k == 1) {
			for (uint64_t u = 0; u < total; u++)
				if (outs[u].done && outs[u].cls != EXPLORE_PASSED)
					explore_report_failure(o, f, u, &outs[u]);
		} else if (k == 2) {
			explore_summary(o, f, &t, total, -1);
		} else {
			fprintf(f,
				"{\n  \"seeds_total\": %" PRIu64
				",\n  \"seeds_run\": %" PRIu64
				",\n  \"failures\": %" PRIu64
				",\n  \"invariant\": %" PRIu64
				",\n  \"liveness\": %" PRIu64
				",\n  \"claim_unfaulted\": %" PRIu64
				",\n  \"claim\": %" PRIu64 ",\n  \"story\": %" PRIu64
				",\n  \"strict_claims\": %s,\n  \"sim_us\": %" PRIu64
				",\n  \"shard\": \"%" PRIu64 "/%" PRIu64
				"\",\n  \"wall_s\": %.3f\n}\n",
				total, t.ran, t.failures, t.by_class[EXPLORE_INVARIANT],
				t.by_class[EXPLORE_LIVENESS],
				t.by_class[EXPLORE_CLAIM_UNFAULTED],
				t.by_class[EXPLORE_CLAIM], t.by_class[EXPLORE_STORY],
				o->strict_claims ? "true" : "false", t.sim_us, o->shard,
				o->shards, wall_s);
		}
		rv = explore_close_out(f, o->out_dir, names[k], ferror(f) ? -1 : 0);
	}
	return rv;
}

int explore_main(int argc, char **argv)
{
	struct explore_opts o = {0};
	struct scn_script *scripts = NULL;
	struct explore_outcome *outs = NULL;
	struct explore_tally tally;
	pid_t pids[EXPLORE_JOBS_MAX];
	uint64_t total, count;
	char buf[8192];
	size_t buf_len = 0;
	bool tty;
	int fds[2], status = 2;
	double t0, wall;

	o.files = calloc((size_t)argc + 1, sizeof *o.files);
	if (!o.files)
		return 2;
	if (explore_parse_args(argc, argv, &o))
		goto out_files;
	scripts = calloc(o.file_count, sizeof *scripts);
	if (!scripts || explore_load(o.files, o.file_count, scripts) < 0)
		goto out_files;
	total = o.file_count * o.seeds;
	count = explore_shard_count(&o, total);
	if (o.print) {
		status = explore_print(&o, scripts, total);
		goto out_scripts;
	}
	if ((uint64_t)o.jobs > count)
		o.jobs = count ? (long)count : 1;
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

	for (uint64_t ran = 0, failures = 0;;) {
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
				if (outs[u].cls != EXPLORE_PASSED) {
					failures += explore_class_fails(outs[u].cls,
									o.strict_claims);
					if (tty)
						fputs("\r\033[K", stderr);
					explore_report_failure(&o, stdout, u, &outs[u]);
				}
			}
			buf_len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, buf_len);
			if (tty) {
				double dt = explore_wall() - t0;
				fprintf(stderr,
					"\r%" PRIu64 "/%" PRIu64 " seeds, %" PRIu64
					" failures, %.1f seeds/s",
					ran, count, failures,
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
		for (uint64_t i = (uint64_t)k; i < count; i += (uint64_t)o.jobs) {
			uint64_t u = explore_shard_unit(&o, i);
			if (outs[u].done)
				continue;
			outs[u].done = true;
			outs[u].cls = EXPLORE_INVARIANT;
			snprintf(outs[u].message, sizeof outs[u].message,
				 "the worker process died (%s %d) running this seed",
				 WIFSIGNALED(ws) ? "signal" : "exit status",
				 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
			explore_report_failure(&o, stdout, u, &outs[u]);
			break;
		}
	}

	wall = explore_wall() - t0;
	explore_tally(&o, outs, total, &tally);
	explore_summary(&o, stdout, &tally, count, wall);
	status = tally.failures ? 1 : 0;
	if (o.out_dir && explore_write_out(&o, outs, total, wall))
		status = 2;
	else if (o.out_dir)
		printf("explore: results in %s/\n", o.out_dir);
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

/* ---------------------------------------------------------------- merge */

static const char merge_usage[] =
	"usage: swarmsim merge DIR... [--out DIR] [--strict-claims]\n"
	"\n"
	"Combines the --out directories of `swarmsim explore --shard I/N` runs of\n"
	"one exploration (same files, seeds, faults, --swarm) into one report:\n"
	"the failures in seed order, the summary, and with --out the same four\n"
	"files one unsharded run writes. Every shard 0..N-1 must be there once.\n"
	"--strict-claims counts claims as failures (as the shards' own flag).\n"
	"\n"
	"exit status: 0 no failure, 1 failures, 2 bad input or missing shards\n";

/* One shard directory read: its header lines (without #shard), its shard
 * and its result lines. */
struct merge_shard {
	char *header; /* malloc'd */
	uint64_t shard, shards;
	char **lines;
	size_t line_count;
};

static void merge_shard_free(struct merge_shard *m)
{
	free(m->header);
	for (size_t i = 0; i < m->line_count; i++)
		free(m->lines[i]);
	free(m->lines);
}

/* Appends s to *p (a malloc'd string). Returns 0, or -1 out of memory. */
static int merge_append(char **p, size_t *len, const char *s)
{
	size_t n = strlen(s);
	char *q = realloc(*p, *len + n + 1);
	if (!q)
		return -1;
	memcpy(q + *len, s, n + 1);
	*p = q;
	*len += n;
	return 0;
}

static int merge_read(const char *dir, struct merge_shard *m)
{
	char path[4096], *line = NULL;
	size_t cap = 0, hlen = 0;
	ssize_t n;
	FILE *f;
	int rv = -1;

	memset(m, 0, sizeof *m);
	snprintf(path, sizeof path, "%s/results.tsv", dir);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "swarmsim merge: cannot read %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	m->header = calloc(1, 1);
	if (!m->header)
		goto out;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (line[0] == '#') {
			if (strncmp(line, "#shard\t", 7) == 0) {
				if (sscanf(line + 7, "%" SCNu64 "/%" SCNu64, &m->shard,
					   &m->shards) != 2 ||
				    m->shards == 0 || m->shard >= m->shards) {
					fprintf(stderr,
						"swarmsim merge: %s: bad #shard line\n",
						path);
					goto out;
				}
			} else if (merge_append(&m->header, &hlen, line)) {
				goto out;
			}
			continue;
		}
		char **lines = realloc(m->lines, (m->line_count + 1) * sizeof *lines);
		if (!lines)
			goto out;
		m->lines = lines;
		m->lines[m->line_count] = strdup(line);
		if (!m->lines[m->line_count])
			goto out;
		m->line_count++;
	}
	if (!m->shards || strncmp(m->header, "#explore\t1\n", 11) != 0) {
		fprintf(stderr,
			"swarmsim merge: %s: not the results of swarmsim explore\n",
			path);
		goto out;
	}
	rv = 0;
out:
	if (rv && !m->header)
		fprintf(stderr, "swarmsim merge: out of memory\n");
	free(line);
	fclose(f);
	return rv;
}

/* Rebuilds the options of the exploration from a header. */
static int merge_opts(const char *header, struct explore_opts *o, char *files_buf)
{
	const char *p = header;
	char *fb = files_buf;
	char err[256];

	while (*p) {
		const char *nl = strchr(p, '\n'), *tab = strchr(p, '\t');
		size_t klen, vlen;
		char val[4096];
		if (!nl || !tab || tab > nl)
			return -1;
		klen = (size_t)(tab - p);
		vlen = (size_t)(nl - tab - 1);
		if (vlen >= sizeof val)
			return -1;
		memcpy(val, tab + 1, vlen);
		val[vlen] = '\0';
		if (klen == 5 && strncmp(p, "#file", 5) == 0) {
			memcpy(fb, val, vlen + 1);
			o->files[o->file_count++] = fb;
			fb += vlen + 1;
		} else if (klen == 5 && strncmp(p, "#from", 5) == 0) {
			if (explore_u64(val, &o->from))
				return -1;
		} else if (klen == 6 && strncmp(p, "#seeds", 6) == 0) {
			if (explore_u64(val, &o->seeds) || !o->seeds)
				return -1;
		} else if (klen == 7 && strncmp(p, "#faults", 7) == 0) {
			if (explore_kinds_parse(val, &o->kinds, err, sizeof err))
				return -1;
		} else if (klen == 6 && strncmp(p, "#swarm", 6) == 0) {
			o->swarm = strcmp(val, "1") == 0;
		} else if (klen == 14 && strncmp(p, "#strict-claims", 14) == 0) {
			o->strict_claims = o->strict_claims || strcmp(val, "1") == 0;
		}
		p = nl + 1;
	}
	return o->file_count ? 0 : -1;
}

int merge_main(int argc, char **argv)
{
	struct explore_opts o = {0};
	struct merge_shard *shards = NULL;
	struct explore_outcome *outs = NULL;
	struct explore_tally tally;
	const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
	char *files_buf = NULL;
	bool *seen = NULL;
	size_t dir_count = 0, read = 0;
	uint64_t total;
	int status = 2;

	if (!dirs)
		return 2;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(merge_usage, stdout);
			free(dirs);
			return 0;
		} else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			o.out_dir = argv[++i];
		} else if (strcmp(argv[i], "--strict-claims") == 0) {
			o.strict_claims = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "swarmsim merge: unknown option: %s\n%s", argv[i],
				merge_usage);
			goto out;
		} else {
			dirs[dir_count++] = argv[i];
		}
	}
	if (!dir_count) {
		fprintf(stderr, "swarmsim merge: no shard directory\n%s", merge_usage);
		goto out;
	}
	shards = calloc(dir_count, sizeof *shards);
	if (!shards)
		goto out;
	for (; read < dir_count; read++) {
		if (merge_read(dirs[read], &shards[read]))
			goto out;
		if (strcmp(shards[read].header, shards[0].header) != 0 ||
		    shards[read].shards != shards[0].shards) {
			fprintf(stderr,
				"swarmsim merge: %s is a shard of another exploration than %s\n",
				dirs[read], dirs[0]);
			read++;
			goto out;
		}
	}
	seen = calloc(shards[0].shards, sizeof *seen);
	files_buf = malloc(strlen(shards[0].header) + 1);
	o.files = calloc(strlen(shards[0].header) + 1, sizeof *o.files);
	if (!seen || !files_buf || !o.files)
		goto out;
	for (size_t i = 0; i < dir_count; i++) {
		if (seen[shards[i].shard]) {
			fprintf(stderr,
				"swarmsim merge: shard %" PRIu64 "/%" PRIu64
				" given twice (%s)\n",
				shards[i].shard, shards[i].shards, dirs[i]);
			goto out;
		}
		seen[shards[i].shard] = true;
	}
	if (merge_opts(shards[0].header, &o, files_buf)) {
		fprintf(stderr, "swarmsim merge: %s: a header I cannot read\n", dirs[0]);
		goto out;
	}
	total = o.file_count * o.seeds;
	outs = calloc(total ? total : 1, sizeof *outs);
	if (!outs)
		goto out;
	for (size_t i = 0; i < dir_count; i++)
		for (size_t k = 0; k < shards[i].line_count; k++) {
			char *line = shards[i].lines[k];
			size_t n = strlen(line);
			uint64_t u;
			if (n && line[n - 1] == '\n')
				line[n - 1] = '\0';
			u = explore_parse_line(line, outs, total);
			if (u == UINT64_MAX || u % shards[i].shards != shards[i].shard) {
				fprintf(stderr,
					"swarmsim merge: %s: a result line not of its shard\n",
					dirs[i]);
				goto out;
			}
		}
	for (uint64_t u = 0; u < total; u++)
		if (outs[u].cls != EXPLORE_PASSED)
			explore_report_failure(&o, stdout, u, &outs[u]);
	explore_tally(&o, outs, total, &tally);
	explore_summary(&o, stdout, &tally, total, -1);
	status = tally.failures ? 1 : 0;
	for (uint64_t k = 0; k < shards[0].shards; k++)
		if (!seen[k]) {
			printf("merge: shard %" PRIu64 "/%" PRIu64 " is missing\n", k,
			       shards[0].shards);
			status = 2;
		}
	/* the merged files are those of one unsharded run: shard 0/1 */
	o.shard = 0;
	o.shards = 1;
	if (o.out_dir) {
		if (explore_write_out(&o, outs, total, 0))
			status = 2;
		else
			printf("merge: results in %s/\n", o.out_dir);
	}
out:
	for (size_t i = 0; shards && i < read; i++)
		merge_shard_free(&shards[i]);
	free(shards);
	free(outs);
	free(seen);
	free(files_buf);
	free(o.files);
	free(dirs);
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
