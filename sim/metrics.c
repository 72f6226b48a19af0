/* metrics: scheduler figures of one run, their JSON and baselines. See
 * metrics.h. */
#include "sim/metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/grow.h"
#include "core/manager.h"
#include "core/orchestrator.h"
#include "core/scheduler.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/clusterops.h"
#include "sim/simexec.h"

/* The runner traces each scenario command as this kind (a = line, b = the
 * command's kind); see RUNNER_EV_CMD in runner.c. */
#define METRICS_EV_CMD 10u

enum {
	METRICS_SCAN_US = 1000000,    /* reschedules: the store is read every 1 s */
	METRICS_CHECK_US = 10000,     /* open measures are checked every 10 ms */
	METRICS_REPLACE_SVC_MAX = 16, /* services followed per dead node */
	METRICS_JSON_DEPTH_MAX = 32,  /* nesting of a baseline file */
	METRICS_FILE_BYTES_MAX = 64 << 20,
};

static const char *const metrics_names[METRICS_GROUP_COUNT] = {
	"create_to_running_s",
	"dead_node_replaced_s",
	"spread_balance",
	"pending_reasons",
	"pending",
	"reschedules",
};

const char *metrics_group_name(enum metrics_group g)
{
	assert(g < METRICS_GROUP_COUNT);
	return metrics_names[g];
}

const char *metrics_group_unit(enum metrics_group g)
{
	return g == METRICS_CREATE_S || g == METRICS_REPLACE_S ? "s" : "";
}

bool metrics_is_single(enum metrics_group g)
{
	return g == METRICS_PENDING || g == METRICS_RESCHEDULES;
}

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof *m);
}

void metrics_free(struct metrics *m)
{
	free(m->entries);
	memset(m, 0, sizeof *m);
}

int metrics_add(struct metrics *m, enum metrics_group g, const char *key, bool has_value,
		double value)
{
	struct metrics_entry *e;

	assert(g < METRICS_GROUP_COUNT);
	if (grow_array((void **)&m->entries, &m->cap, m->count + 1, sizeof *m->entries))
		return CS_ENOMEM;
	e = &m->entries[m->count++];
	e->group = g;
	snprintf(e->key, sizeof e->key, "%s", key ? key : "");
	e->has_value = has_value;
	e->value = has_value ? value : 0;
	return 0;
}

const struct metrics_entry *metrics_find(const struct metrics *m, enum metrics_group g,
					 const char *key)
{
	for (size_t i = 0; i < m->count; i++)
		if (m->entries[i].group == g && strcmp(m->entries[i].key, key) == 0)
			return &m->entries[i];
	return NULL;
}

/* ---------------------------------------------------------------- recording */

/* A measure under way: its entry is in m (null until it ends). */
struct metrics_open {
	size_t entry;
	us_t from_us;
	char service[LIMIT_NAME_BYTES_MAX + 1]; /* create */
	/* replace: the services that lost running tasks, and how many tasks
	 * of each must run again */
	size_t svc_count;
	char svc[METRICS_REPLACE_SVC_MAX][LIMIT_NAME_BYTES_MAX + 1];
	uint64_t target[METRICS_REPLACE_SVC_MAX];
};

/* A machine death seen in the trace, measured at the next observation. */
struct metrics_death {
	uint32_t node;
	us_t at_us;
};

/* A sorted set of 64-bit keys. */
struct metrics_keys {
	uint64_t *keys;
	size_t count, cap;
};

struct metrics_rec {
	const struct scn_script *script;
	const struct scn_cmd *last_cmd; /* a new command: look now, off the grid */
	struct metrics m;
	struct metrics_open *creates;
	size_t create_count, create_cap;
	struct metrics_open *replaces;
	size_t replace_count, replace_cap;
	struct metrics_death *deaths;
	size_t death_count, death_cap;
	uint32_t *deaths_of; /* by node index: machine deaths so far */
	size_t deaths_of_cap;
	struct metrics_keys task_ids, slots;
	uint64_t reschedules;
	us_t next_scan_us;
	us_t next_check_us;
	bool done;
	bool oom; /* a figure could not be kept */
};

struct metrics_rec *metrics_rec_new(const struct scn_script *script)
{
	struct metrics_rec *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->script = script;
	metrics_init(&r->m);
	return r;
}

void metrics_rec_free(struct metrics_rec *r)
{
	if (!r)
		return;
	metrics_free(&r->m);
	free(r->creates);
	free(r->replaces);
	free(r->deaths);
	free(r->deaths_of);
	free(r->task_ids.keys);
	free(r->slots.keys);
	free(r);
}

const struct metrics *metrics_rec_result(const struct metrics_rec *r)
{
	return &r->m;
}

/* Inserts key; returns true when it was new. */
static bool metrics_keys_insert(struct metrics_keys *k, uint64_t key, bool *oom)
{
	size_t lo = 0, hi = k->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < k->count && k->keys[lo] == key)
		return false;
	if (grow_array((void **)&k->keys, &k->cap, k->count + 1, sizeof *k->keys)) {
		*oom = true;
		return false;
	}
	memmove(&k->keys[lo + 1], &k->keys[lo], (k->count - lo) * sizeof *k->keys);
	k->keys[lo] = key;
	k->count++;
	return true;
}

static const struct scn_cmd *metrics_cmd_at_line(const struct scn_script *s,
						 uint32_t line)
{
	size_t lo = 0, hi = s->cmd_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->cmds[mid].line < line)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->cmd_count && s->cmds[lo].line == line ? &s->cmds[lo] : NULL;
}

/* Opens a measure with entry (group, key) set to null. */
static struct metrics_open *metrics_open(struct metrics_rec *r, struct metrics_open **arr,
					 size_t *count, size_t *cap, enum metrics_group g,
					 const char *key, us_t at_us)
{
	struct metrics_open *o;

	if (grow_array((void **)arr, cap, *count + 1, sizeof **arr) ||
	    metrics_add(&r->m, g, key, false, 0)) {
		r->oom = true;
		return NULL;
	}
	o = &(*arr)[(*count)++];
	memset(o, 0, sizeof *o);
	o->entry = r->m.count - 1;
	o->from_us = at_us;
	return o;
}

/* Closes measure i of arr (it reached its end at now_us). */
static void metrics_close(struct metrics_rec *r, struct metrics_open *arr, size_t *count,
			  size_t i, us_t now_us)
{
	struct metrics_entry *e = &r->m.entries[arr[i].entry];
	assert(now_us >= arr[i].from_us);
	e->has_value = true;
	e->value = (double)(now_us - arr[i].from_us) / 1e6;
	memmove(&arr[i], &arr[i + 1], (*count - i - 1) * sizeof *arr);
	(*count)--;
}

void metrics_rec_trace(struct metrics_rec *r, const struct world *w, us_t at_us,
		       uint32_t node, enum sim_ev_kind kind, uint64_t a, uint64_t b)
{
	if (r->done)
		return;
	if ((uint32_t)kind == METRICS_EV_CMD && b == SCN_SERVICE_CREATE) {
		const struct scn_cmd *cmd = metrics_cmd_at_line(r->script, (uint32_t)a);
		char key[METRICS_KEY_BYTES];
		unsigned again = 1;
		struct metrics_open *o;
		if (!cmd || cmd->kind != SCN_SERVICE_CREATE || !cmd->u.service.name)
			return;
		snprintf(key, sizeof key, "%s", cmd->u.service.name);
		while (metrics_find(&r->m, METRICS_CREATE_S, key))
			snprintf(key, sizeof key, "%s#%u", cmd->u.service.name, ++again);
		o = metrics_open(r, &r->creates, &r->create_count, &r->create_cap,
				 METRICS_CREATE_S, key, at_us);
		if (o) {
			snprintf(o->service, sizeof o->service, "%s",
				 cmd->u.service.name);
			o->from_us = UINT64_MAX; /* from when the create commits */
		}
	} else if (kind == SIM_EV_NODE_DOWN && a == WORLD_DOWN_MACHINE &&
		   node < world_node_count(w)) {
		if (grow_array((void **)&r->deaths, &r->death_cap, r->death_count + 1,
			       sizeof *r->deaths)) {
			r->oom = true;
			return;
		}
		r->deaths[r->death_count++] = (struct metrics_death){node, at_us};
	}
}

/* The store to read: the leader's, else the most advanced running
 * manager's (a killed leader's followers still know its tasks). NULL when
 * no manager runs. */
static const struct store *metrics_store(const struct runner_view *v)
{
	int64_t leader = simcluster_leader(v->cluster);
	const struct manager *best = NULL;

	if (leader >= 0 && simcluster_manager(v->cluster, (uint32_t)leader))
		return manager_store(simcluster_manager(v->cluster, (uint32_t)leader));
	for (size_t i = 0; i < world_node_count(v->w); i++) {
		const struct manager *m = simcluster_manager(v->cluster, (uint32_t)i);
		if (m && (!best || manager_applied(m) > manager_applied(best)))
			best = m;
	}
	return best ? manager_store(best) : NULL;
}

static const Cs__Node *metrics_store_node(const struct store *st, const char *hostname)
{
	for (const Cs__Node *n = store_node_next(st, NULL); n; n = store_node_next(st, n))
		if (n->hostname && strcmp(n->hostname, hostname) == 0)
			return n;
	return NULL;
}

/* Whether service `name` has all its tasks running: the store says so, the
 * containers agree, and none is still on its way or outdated. */
static bool metrics_all_running(const struct runner_view *v, const struct store *st,
				const char *name)
{
	const Cs__Service *svc = store_service_by_name(st, name);
	uint64_t want, running = 0, waiting = 0;

	if (!svc || !svc->spec)
		return false;
	want = clops_desired(st, svc);
	for (const Cs__Task *t = store_task_next_by_service(st, svc->id, NULL); t;
	     t = store_task_next_by_service(st, svc->id, t)) {
		if (t->desired_state != CS__TASK_STATE__TASK_STATE_RUNNING || !t->status)
			continue;
		if (orchestrator_outdated(svc, t))
			waiting++;
		else if (t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING)
			running++;
		else if (t->status->state < CS__TASK_STATE__TASK_STATE_RUNNING)
			waiting++;
	}
	return running == want && waiting == 0 &&
	       simexec_running(world_exec(v->w), name, -1) == want;
}

/* A machine died: which replicated services lost running tasks, and how
 * many of each must run again (those running elsewhere now plus the lost
 * ones). */
static void metrics_death_measure(struct metrics_rec *r, const struct runner_view *v,
				  const struct store *st, const struct metrics_death *d)
{
	const char *name = world_node_name(v->w, d->node);
	const Cs__Node *n = st ? metrics_store_node(st, name) : NULL;
	struct metrics_open *o;
	char key[METRICS_KEY_BYTES];
	uint32_t nth;

	if (grow_array((void **)&r->deaths_of, &r->deaths_of_cap, (size_t)d->node + 1,
		       sizeof *r->deaths_of)) {
		r->oom = true;
		return;
	}
	nth = ++r->deaths_of[d->node];
	if (!n)
		return;
	if (nth == 1)
		snprintf(key, sizeof key, "%s", name);
	else
		snprintf(key, sizeof key, "%s#%" PRIu32, name, nth);
	o = NULL;
	for (const Cs__Task *t = store_task_next_by_node(st, n->id, NULL); t;
	     t = store_task_next_by_node(st, n->id, t)) {
		const Cs__Service *svc = store_service_get(st, t->service_id);
		size_t i;
		if (!svc || !svc->spec || svc->spec->global || !t->status ||
		    t->desired_state != CS__TASK_STATE__TASK_STATE_RUNNING ||
		    t->status->state != CS__TASK_STATE__TASK_STATE_RUNNING)
			continue;
		if (!o) {
			o = metrics_open(r, &r->replaces, &r->replace_count,
					 &r->replace_cap, METRICS_REPLACE_S, key,
					 d->at_us);
			if (!o)
				return;
		}
		for (i = 0; i < o->svc_count; i++)
			if (strcmp(o->svc[i], svc->spec->name) == 0)
				break;
		if (i == o->svc_count) {
			if (o->svc_count == METRICS_REPLACE_SVC_MAX)
				continue;
			snprintf(o->svc[i], sizeof o->svc[i], "%s", svc->spec->name);
			o->target[i] =
				simexec_running(world_exec(v->w), svc->spec->name, -1);
			o->svc_count++;
		}
		o->target[i]++;
	}
}

/* Every task id ever seen; one more than the first in a slot (replicated)
 * or on a node (global) is a reschedule. */
static void metrics_scan_tasks(struct metrics_rec *r, const struct store *st)
{
	for (const Cs__Task *t = store_task_next(st, NULL); t;
	     t = store_task_next(st, t)) {
		uint64_t slot;
		if (!metrics_keys_insert(&r->task_ids, t->id, &r->oom))
			continue;
		slot = t->slot ? t->slot : (t->node_id | (1ull << 63));
		slot = (slot ^ (t->service_id * 0x9e3779b97f4a7c15ull)) *
		       0xbf58476d1ce4e5b9ull;
		if (!metrics_keys_insert(&r->slots, slot, &r->oom))
			r->reschedules++;
	}
}

static int metrics_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The end: balance per service, pending tasks by reason. */
static void metrics_finish(struct metrics_rec *r, const struct runner_view *v,
			   const struct store *st)
{
	const char **why = NULL;
	size_t why_count = 0, why_cap = 0;
	uint64_t pending = 0;

	if (st) {
		for (const Cs__Service *svc = store_service_next(st, NULL); svc;
		     svc = store_service_next(st, svc)) {
			size_t min = SIZE_MAX, max = 0, eligible = 0;
			if (!svc->spec || !svc->spec->name)
				continue;
			for (const Cs__Node *n = store_node_next(st, NULL); n;
			     n = store_node_next(st, n)) {
				int64_t idx;
				size_t c;
				if (n->state != CS__NODE_STATE__NODE_STATE_READY ||
				    n->availability !=
					    CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE ||
				    !sched_node_satisfies(svc, n) || !n->hostname)
					continue;
				idx = world_node_find(v->w, n->hostname);
				if (idx < 0)
					continue;
				c = simexec_running(world_exec(v->w), svc->spec->name,
						    idx);
				min = c < min ? c : min;
				max = c > max ? c : max;
				eligible++;
			}
			if (eligible &&
			    metrics_add(&r->m, METRICS_BALANCE, svc->spec->name, true,
					(double)(max - min)))
				r->oom = true;
		}
		for (const Cs__Task *t = store_task_next(st, NULL); t;
		     t = store_task_next(st, t)) {
			if (!t->status ||
			    t->status->state != CS__TASK_STATE__TASK_STATE_PENDING ||
			    t->desired_state != CS__TASK_STATE__TASK_STATE_RUNNING)
				continue;
			pending++;
			if (grow_array((void **)&why, &why_cap, why_count + 1,
				       sizeof *why)) {
				r->oom = true;
				continue;
			}
			why[why_count++] = t->status->message && t->status->message[0]
						   ? t->status->message
						   : "(no message)";
		}
	}
	if (why_count)
		qsort(why, why_count, sizeof *why, metrics_cmp_str);
	for (size_t i = 0; i < why_count;) {
		size_t j = i;
		while (j < why_count && strcmp(why[j], why[i]) == 0)
			j++;
		if (metrics_add(&r->m, METRICS_PENDING_WHY, why[i], true,
				(double)(j - i)))
			r->oom = true;
		i = j;
	}
	free(why);
	if (metrics_add(&r->m, METRICS_PENDING, "", true, (double)pending) ||
	    metrics_add(&r->m, METRICS_RESCHEDULES, "", true, (double)r->reschedules))
		r->oom = true;
}

void metrics_rec_observe(struct metrics_rec *r, const struct runner_view *v)
{
	us_t now = world_now_us(v->w);
	const struct store *st;

	if (r->done)
		return;
	/* a command may change the cluster without time passing (an update
	 * right after a condition held): what held must be seen first */
	if (v->cmd != r->last_cmd) {
		r->last_cmd = v->cmd;
		r->next_check_us = 0;
	}
	if (!v->final && !r->death_count && now < r->next_scan_us &&
	    (now < r->next_check_us || (!r->create_count && !r->replace_count)))
		return; /* the common case: nothing to look at */
	r->next_check_us = now + METRICS_CHECK_US;
	st = metrics_store(v);
	for (size_t i = 0; i < r->death_count; i++)
		metrics_death_measure(r, v, st, &r->deaths[i]);
	r->death_count = 0;
	if (st) {
		for (size_t i = 0; i < r->create_count;) {
			struct metrics_open *o = &r->creates[i];
			if (o->from_us == UINT64_MAX) {
				if (!store_service_by_name(st, o->service)) {
					i++;
					continue;
				}
				o->from_us = now; /* committed: the clock starts */
			}
			if (metrics_all_running(v, st, o->service))
				metrics_close(r, r->creates, &r->create_count, i, now);
			else
				i++;
		}
	}
	for (size_t i = 0; i < r->replace_count;) {
		const struct metrics_open *o = &r->replaces[i];
		bool done = true;
		for (size_t s = 0; s < o->svc_count && done; s++)
			done = simexec_running(world_exec(v->w), o->svc[s], -1) >=
			       o->target[s];
		if (done)
			metrics_close(r, r->replaces, &r->replace_count, i, now);
		else
			i++;
	}
	if (st && (now >= r->next_scan_us || v->final)) {
		metrics_scan_tasks(r, st);
		r->next_scan_us = now + METRICS_SCAN_US;
	}
	if (v->final) {
		metrics_finish(r, v, st);
		r->create_count = 0;
		r->replace_count = 0;
		r->done = true;
	}
}

/* ---------------------------------------------------------------- JSON out */

void metrics_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void metrics_json_value(FILE *f, const struct metrics_entry *e)
{
	if (!e->has_value)
		fputs("null", f);
	else if (metrics_group_unit(e->group)[0])
		fprintf(f, "%.3f", e->value);
	else
		fprintf(f, "%.0f", e->value);
}

void metrics_json(FILE *f, const struct metrics *m)
{
	fputc('{', f);
	for (int g = 0; g < METRICS_GROUP_COUNT; g++) {
		bool first = true;
		fprintf(f, "%s\"%s\":", g ? "," : "", metrics_names[g]);
		if (metrics_is_single((enum metrics_group)g)) {
			const struct metrics_entry *e =
				metrics_find(m, (enum metrics_group)g, "");
			if (e)
				metrics_json_value(f, e);
			else
				fputs("null", f);
			continue;
		}
		fputc('{', f);
		for (size_t i = 0; i < m->count; i++) {
			if (m->entries[i].group != (enum metrics_group)g)
				continue;
			if (!first)
				fputc(',', f);
			first = false;
			metrics_json_string(f, m->entries[i].key);
			fputc(':', f);
			metrics_json_value(f, &m->entries[i]);
		}
		fputc('}', f);
	}
	fputc('}', f);
}

/* ---------------------------------------------------------------- JSON in */

/* A parsed JSON value (only what a metrics.json needs). */
enum mj_type { MJ_NULL, MJ_BOOL, MJ_NUM, MJ_STR, MJ_ARR, MJ_OBJ };
struct mj {
	enum mj_type type;
	bool b;
	double num;
	char *str;
	struct mj *items; /* ARR, OBJ */
	char **keys;	  /* OBJ */
	size_t count;
};

struct mj_parser {
	const char *start, *p, *end;
	char *err;
	size_t err_size;
	bool oom;
};

static void mj_free(struct mj *v)
{
	free(v->str);
	for (size_t i = 0; i < v->count; i++) {
		mj_free(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
}

static int mj_fail(struct mj_parser *ps, const char *what)
{
	if (ps->err[0] == '\0')
		snprintf(ps->err, ps->err_size, "%s at byte %td", what,
			 ps->p - ps->start);
	return -1;
}

static void mj_ws(struct mj_parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int mj_utf8(char *out, size_t *n, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xe0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
	return 0;
}

static int mj_string(struct mj_parser *ps, char **out)
{
	const char *start = ++ps->p; /* past the quote */
	char *s;
	size_t n = 0;

	while (ps->p < ps->end && *ps->p != '"') {
		if (*ps->p == '\\')
			ps->p++;
		ps->p++;
	}
	if (ps->p >= ps->end)
		return mj_fail(ps, "unterminated string");
	s = malloc((size_t)(ps->p - start) * 3 + 1); /* \uXXXX -> <= 3 bytes */
	if (!s) {
		ps->oom = true;
		return -1;
	}
	for (const char *q = start; q < ps->p; q++) {
		if ((unsigned char)*q < 0x20) {
			free(s);
			return mj_fail(ps, "control character in string");
		}
		if (*q != '\\') {
			s[n++] = *q;
			continue;
		}
		q++;
		switch (*q) {
		case '"': s[n++] = '"'; break;
		case '\\': s[n++] = '\\'; break;
		case '/': s[n++] = '/'; break;
		case 'b': s[n++] = '\b'; break;
		case 'f': s[n++] = '\f'; break;
		case 'n': s[n++] = '\n'; break;
		case 'r': s[n++] = '\r'; break;
		case 't': s[n++] = '\t'; break;
		case 'u': {
			uint32_t cp = 0;
			for (int i = 1; i <= 4; i++) {
				char c = q + i < ps->p ? q[i] : '\0';
				int d = c >= '0' && c <= '9'   ? c - '0'
					: c >= 'a' && c <= 'f' ? c - 'a' + 10
					: c >= 'A' && c <= 'F' ? c - 'A' + 10
							       : -1;
				if (d < 0) {
					free(s);
					return mj_fail(ps, "bad \\u escape");
				}
				cp = cp * 16 + (uint32_t)d;
			}
			q += 4;
			mj_utf8(s, &n, cp >= 0xd800 && cp < 0xe000 ? '?' : cp);
			break;
		}
		default: free(s); return mj_fail(ps, "bad escape");
		}
	}
	s[n] = '\0';
	ps->p++; /* the closing quote */
	*out = s;
	return 0;
}

static int mj_value(struct mj_parser *ps, struct mj *v, int depth);

static int mj_push(struct mj_parser *ps, struct mj *v, size_t *cap, char *key)
{
	if (grow_array((void **)&v->items, cap, v->count + 1, sizeof *v->items)) {
		ps->oom = true;
		return -1;
	}
	if (v->type == MJ_OBJ) {
		size_t kcap = *cap;
		char **keys = realloc(v->keys, kcap * sizeof *keys);
		if (!keys) {
			ps->oom = true;
			return -1;
		}
		v->keys = keys;
		v->keys[v->count] = key;
	}
	return 0;
}

static int mj_container(struct mj_parser *ps, struct mj *v, int depth)
{
	char close = *ps->p == '[' ? ']' : '}';
	size_t cap = 0;

	v->type = close == ']' ? MJ_ARR : MJ_OBJ;
	ps->p++;
	mj_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		mj_ws(ps);
		if (v->type == MJ_OBJ) {
			if (ps->p >= ps->end || *ps->p != '"')
				return mj_fail(ps, "expected a key");
			if (mj_string(ps, &key))
				return -1;
			mj_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				return mj_fail(ps, "expected ':'");
			}
			ps->p++;
		}
		if (mj_push(ps, v, &cap, key)) {
			free(key);
			return -1;
		}
		memset(&v->items[v->count], 0, sizeof v->items[v->count]);
		v->count++;
		if (mj_value(ps, &v->items[v->count - 1], depth + 1))
			return -1;
		mj_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		return mj_fail(ps, close == ']' ? "expected ',' or ']'"
						: "expected ',' or '}'");
	}
}

static int mj_value(struct mj_parser *ps, struct mj *v, int depth)
{
	if (depth > METRICS_JSON_DEPTH_MAX)
		return mj_fail(ps, "nested too deep");
	mj_ws(ps);
	if (ps->p >= ps->end)
		return mj_fail(ps, "unexpected end");
	switch (*ps->p) {
	case '{':
	case '[': return mj_container(ps, v, depth);
	case '"': v->type = MJ_STR; return mj_string(ps, &v->str);
	default: break;
	}
	if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
		ps->p += 4;
		v->type = MJ_NULL;
		return 0;
	}
	if (ps->end - ps->p >= 4 && memcmp(ps->p, "true", 4) == 0) {
		ps->p += 4;
		v->type = MJ_BOOL;
		v->b = true;
		return 0;
	}
	if (ps->end - ps->p >= 5 && memcmp(ps->p, "false", 5) == 0) {
		ps->p += 5;
		v->type = MJ_BOOL;
		return 0;
	}
	if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
		char buf[64];
		size_t n = 0;
		char *endp;
		while (ps->p < ps->end && n < sizeof buf - 1 &&
		       strchr("+-.eE0123456789", *ps->p))
			buf[n++] = *ps->p++;
		buf[n] = '\0';
		v->type = MJ_NUM;
		v->num = strtod(buf, &endp);
		if (*endp)
			return mj_fail(ps, "bad number");
		return 0;
	}
	return mj_fail(ps, "unexpected character");
}

static const struct mj *mj_get(const struct mj *obj, const char *key)
{
	if (obj->type != MJ_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->count; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return &obj->items[i];
	return NULL;
}

/* Reads one scenario's "metrics" object into m. */
static int metrics_from_mj(const struct mj *o, struct metrics *m)
{
	for (int g = 0; g < METRICS_GROUP_COUNT; g++) {
		const struct mj *v = mj_get(o, metrics_names[g]);
		if (!v)
			continue;
		if (metrics_is_single((enum metrics_group)g)) {
			if (v->type == MJ_NUM &&
			    metrics_add(m, (enum metrics_group)g, "", true, v->num))
				return CS_ENOMEM;
			continue;
		}
		if (v->type != MJ_OBJ)
			return CS_EINVAL;
		for (size_t i = 0; i < v->count; i++) {
			const struct mj *x = &v->items[i];
			if (x->type != MJ_NUM && x->type != MJ_NULL)
				return CS_EINVAL;
			if (metrics_add(m, (enum metrics_group)g, v->keys[i],
					x->type == MJ_NUM, x->num))
				return CS_ENOMEM;
		}
	}
	return 0;
}

int metrics_set_parse(const char *text, size_t len, struct metrics_set *set, char *err,
		      size_t err_size)
{
	struct mj_parser ps = {text, text, text + len, err, err_size, false};
	struct mj root = {0};
	const struct mj *arr;
	int rv = 0;

	memset(set, 0, sizeof *set);
	err[0] = '\0';
	if (mj_value(&ps, &root, 0)) {
		rv = ps.oom ? CS_ENOMEM : CS_EINVAL;
		goto out;
	}
	mj_ws(&ps);
	if (ps.p != ps.end) {
		mj_fail(&ps, "text after the JSON value");
		rv = CS_EINVAL;
		goto out;
	}
	arr = mj_get(&root, "scenarios");
	if (!arr || arr->type != MJ_ARR) {
		snprintf(err, err_size, "no \"scenarios\" array");
		rv = CS_EINVAL;
		goto out;
	}
	set->runs = calloc(arr->count ? arr->count : 1, sizeof *set->runs);
	if (!set->runs) {
		rv = CS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < arr->count; i++) {
		const struct mj *s = &arr->items[i];
		const struct mj *file = mj_get(s, "file"), *seed = mj_get(s, "seed");
		const struct mj *passed = mj_get(s, "passed"), *m = mj_get(s, "metrics");
		struct metrics_run *run = &set->runs[set->count];
		if (!file || file->type != MJ_STR || !m || m->type != MJ_OBJ) {
			snprintf(err, err_size,
				 "scenario %zu: wants \"file\" and \"metrics\"", i);
			rv = CS_EINVAL;
			goto out;
		}
		run->file = strdup(file->str);
		if (!run->file) {
			rv = CS_ENOMEM;
			goto out;
		}
		set->count++;
		run->seed = seed && seed->type == MJ_NUM ? (uint64_t)seed->num : 0;
		run->passed = passed && passed->type == MJ_BOOL && passed->b;
		rv = metrics_from_mj(m, &run->m);
		if (rv) {
			if (rv == CS_EINVAL)
				snprintf(err, err_size, "scenario %zu: bad metrics", i);
			goto out;
		}
	}
out:
	if (rv == CS_ENOMEM)
		snprintf(err, err_size, "out of memory");
	if (rv)
		metrics_set_free(set);
	mj_free(&root);
	return rv;
}

int metrics_set_load(const char *path, struct metrics_set *set, char *err,
		     size_t err_size)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rv;

	memset(set, 0, sizeof *set);
	if (!f) {
		snprintf(err, err_size, "%s: cannot read: %s", path, strerror(errno));
		return CS_EINVAL;
	}
	for (;;) {
		size_t n;
		if (grow_array((void **)&buf, &cap, len + 4096, 1)) {
			fclose(f);
			free(buf);
			snprintf(err, err_size, "out of memory");
			return CS_ENOMEM;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0 || len > METRICS_FILE_BYTES_MAX)
			break;
	}
	fclose(f);
	if (len > METRICS_FILE_BYTES_MAX) {
		free(buf);
		snprintf(err, err_size, "%s: cannot read: larger than %d bytes", path,
			 METRICS_FILE_BYTES_MAX);
		return CS_EINVAL;
	}
	rv = metrics_set_parse(buf, len, set, err, err_size);
	free(buf);
	if (rv == CS_EINVAL) {
		char why[256];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, err_size, "%s: %s", path, why);
	}
	return rv;
}

void metrics_set_free(struct metrics_set *set)
{
	for (size_t i = 0; i < set->count; i++) {
		free(set->runs[i].file);
		metrics_free(&set->runs[i].m);
	}
	free(set->runs);
	memset(set, 0, sizeof *set);
}

const struct metrics *metrics_set_find(const struct metrics_set *set, const char *file,
				       uint64_t seed)
{
	const struct metrics *any = NULL;
	if (!set)
		return NULL;
	for (size_t i = 0; i < set->count; i++) {
		if (strcmp(set->runs[i].file, file) != 0)
			continue;
		if (set->runs[i].seed == seed)
			return &set->runs[i].m;
		if (!any)
			any = &set->runs[i].m;
	}
	return any;
}

/* ---------------------------------------------------------------- baselines */

bool metrics_regressed(const struct metrics_entry *was, const struct metrics_entry *now)
{
	if (!was || !now || was->group != now->group || !was->has_value)
		return false;
	switch (now->group) {
	case METRICS_CREATE_S:
	case METRICS_REPLACE_S:
		if (!now->has_value)
			return true;
		return now->value > was->value * 1.1 && now->value - was->value >= 1.0;
	case METRICS_BALANCE:
	case METRICS_PENDING: return now->has_value && now->value > was->value;
	case METRICS_RESCHEDULES:
		return now->has_value && now->value > was->value * 1.1 &&
		       now->value - was->value >= 2.0;
	case METRICS_PENDING_WHY:
	case METRICS_GROUP_COUNT: break;
	}
	return false;
}

size_t metrics_regressions(const struct metrics *base, const struct metrics *now)
{
	size_t n = 0;
	if (!base)
		return 0;
	for (size_t i = 0; i < now->count; i++) {
		const struct metrics_entry *e = &now->entries[i];
		n += metrics_regressed(metrics_find(base, e->group, e->key), e);
	}
	return n;
}

const char *metrics_format(const struct metrics_entry *e, char *buf, size_t size)
{
	if (!e)
		snprintf(buf, size, "-");
	else if (!e->has_value)
		snprintf(buf, size, "never");
	else if (metrics_group_unit(e->group)[0])
		snprintf(buf, size, "%.1f s", e->value);
	else
		snprintf(buf, size, "%.0f", e->value);
	return buf;
}
