/* events: the event stream a manager keeps from its applied store changes.
 * See events.h. */
#include "core/events.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/metrics.h"
#include "core/str.h"

/* A kept event, as compact as its kind allows. A task's event (nearly all
 * of them: every state a task goes through) keeps its facts and its
 * service's name as they were at commit, and is rendered into a
 * struct events_event when read (events are rarely read; Docker shows no
 * task events): the same bytes a rendering at commit gave. Other kinds
 * (services, nodes, networks, secrets: few) are rendered at commit, with
 * their attributes, and kept so (full). */
struct events_rec {
	uint64_t index;
	uint32_t ord;
	uint8_t kind;	/* a row of events_kinds */
	uint8_t action; /* enum events_action */
	int32_t state;	/* tasks: their observed state */
	uint64_t time_ms;
	uint64_t id, service_id, node_id, slot; /* tasks */
	struct events_event *full;	    /* other kinds: rendered at commit (owned) */
	char svc[LIMIT_NAME_BYTES_MAX + 1]; /* tasks: their service's name */
};

struct events {
	struct env *env;	 /* the wall clock; NULL in tests */
	struct events_rec *ring; /* cap slots, grown to EVENTS_KEPT_MAX */
	size_t cap, head, count; /* head: the oldest kept */
	uint64_t cur_index;	 /* the batch being applied */
	uint32_t next_ord;	 /* its next event's place */
	bool gone_set;		 /* some event at or before gone is lost */
	uint64_t gone_index;
	uint32_t gone_ord;
	uint64_t last_index;	/* the newest event's (or gone's) index */
	const struct store *st; /* during events_on_store_event */
	struct {
		uint64_t id;
		char name[EVENTS_NAME_BYTES];
	} removed[EVENTS_REMOVED_NAMES_MAX]; /* a ring, by removal */
	size_t removed_next;
};

/* ---------------------------------------------------------------- kinds */

/* Adds key=value to ev's attributes; a value over its room is never cut:
 * it reads "(too long)" (names and images are validated shorter). */
static void ev_attr(struct events_event *ev, const char *key, const char *value)
{
	struct events_attr *a;

	assert(ev->attr_count < EVENTS_ATTRS_MAX);
	assert(strlen(key) < EVENTS_ATTR_KEY_BYTES);
	a = &ev->attrs[ev->attr_count++];
	str_copy(a->key, sizeof a->key, key);
	if (strlen(value) < sizeof a->value)
		str_copy(a->value, sizeof a->value, value);
	else
		snprintf(a->value, sizeof a->value, "(too long)");
}

/* Adds base.old and base.new when they differ. */
static void ev_attr_change(struct events_event *ev, const char *base, const char *was,
			   const char *now)
{
	char key[EVENTS_ATTR_KEY_BYTES];

	if (strcmp(was, now) == 0)
		return;
	snprintf(key, sizeof key, "%s.old", base);
	ev_attr(ev, key, was);
	snprintf(key, sizeof key, "%s.new", base);
	ev_attr(ev, key, now);
}

static void ev_name(struct events_event *ev, const char *name)
{
	str_copy(ev->name, sizeof ev->name, name);
}

static const char *enum_lower(const ProtobufCEnumDescriptor *d, int v, const char *prefix,
			      char *buf, size_t cap)
{
	return metrics_enum_name(d, v, prefix, buf, cap);
}

/* A service: its name; an update says what Docker's says (image,
 * replicas, update state). */
static void describe_service(struct events_event *ev, const struct events *e,
			     const ProtobufCMessage *obj, const ProtobufCMessage *old)
{
	const Cs__Service *s = (const Cs__Service *)obj;
	const Cs__Service *o = (const Cs__Service *)old;
	char a[24], b[24];

	(void)e;
	ev->id = s->id;
	ev_name(ev, s->spec ? s->spec->name : "");
	if (ev->action != EVENTS_UPDATE || !o || !o->spec || !s->spec)
		return;
	if (s->spec->task && s->spec->task->container && o->spec->task &&
	    o->spec->task->container)
		ev_attr_change(ev, "image", o->spec->task->container->image,
			       s->spec->task->container->image);
	if (!s->spec->global && !o->spec->global) {
		snprintf(a, sizeof a, "%llu", (unsigned long long)o->spec->replicas);
		snprintf(b, sizeof b, "%llu", (unsigned long long)s->spec->replicas);
		ev_attr_change(ev, "replicas", a, b);
	}
	if (s->update_status) {
		enum_lower(&cs__update_status__state__descriptor,
			   (int)s->update_status->state, "STATE_", b, sizeof b);
		if (!o->update_status)
			ev_attr(ev, "updatestate.new", b);
		else if (o->update_status->state != s->update_status->state)
			ev_attr_change(ev, "updatestate",
				       enum_lower(&cs__update_status__state__descriptor,
						  (int)o->update_status->state, "STATE_",
						  a, sizeof a),
				       b);
	}
}

/* A node: its hostname; an update says what Docker's says (availability,
 * role, state). */
static void describe_node(struct events_event *ev, const struct events *e,
			  const ProtobufCMessage *obj, const ProtobufCMessage *old)
{
	const Cs__Node *n = (const Cs__Node *)obj;
	const Cs__Node *o = (const Cs__Node *)old;
	char a[24], b[24];

	(void)e;
	ev->id = n->id;
	ev_name(ev, n->hostname);
	if (ev->action != EVENTS_UPDATE || !o)
		return;
	ev_attr_change(
		ev, "availability",
		enum_lower(&cs__node_availability__descriptor, (int)o->availability,
			   "NODE_AVAILABILITY_", a, sizeof a),
		enum_lower(&cs__node_availability__descriptor, (int)n->availability,
			   "NODE_AVAILABILITY_", b, sizeof b));
	ev_attr_change(ev, "role",
		       enum_lower(&cs__node_role__descriptor, (int)o->role, "NODE_ROLE_",
				  a, sizeof a),
		       enum_lower(&cs__node_role__descriptor, (int)n->role, "NODE_ROLE_",
				  b, sizeof b));
	ev_attr_change(ev, "state",
		       enum_lower(&cs__node_state__descriptor, (int)o->state,
				  "NODE_STATE_", a, sizeof a),
		       enum_lower(&cs__node_state__descriptor, (int)n->state,
				  "NODE_STATE_", b, sizeof b));
}

/* A task's facts at commit: its id, service, node, slot, state and its
 * service's name (of the store being applied, else of a service removed
 * lately, else the task's own service_name, else the service id in hex). */
static void task_facts(struct events_rec *r, const struct events *e, const Cs__Task *t)
{
	const char *name = events_service_name(e, t->service_id);
	size_t len;

	r->id = t->id;
	r->service_id = t->service_id;
	r->node_id = t->node_id;
	r->slot = t->slot;
	r->state =
		t->status ? (int)t->status->state : (int)CS__TASK_STATE__TASK_STATE_NEW;
	if (name && (len = strlen(name)) < sizeof r->svc) /* a service's name */
		memcpy(r->svc, name, len + 1);
	else if (t->service_name && *t->service_name &&
		 (len = strlen(t->service_name)) < sizeof r->svc)
		memcpy(r->svc, t->service_name, len + 1);
	else
		snprintf(r->svc, sizeof r->svc, "%016llx",
			 (unsigned long long)t->service_id);
}

/* Renders a task's record into ev (all of it written, unused bytes 0):
 * named "<service>.<slot>" (a global task's slot 0: "<service>.<node
 * id>", as Docker names containers), with its service, node, slot and
 * state. */
static void task_render(struct events_event *ev, const struct events_rec *r)
{
	memset(ev, 0, sizeof *ev);
	ev->index = r->index;
	ev->ord = r->ord;
	ev->time_ms = r->time_ms;
	ev->kind = r->kind;
	ev->action = (enum events_action)r->action;
	ev->id = r->id;
	ev->service_id = r->service_id;
	ev->node_id = r->node_id;
	ev->slot = r->slot;
	ev->state = r->state;
	enum_lower(&cs__task_state__descriptor, ev->state, "TASK_STATE_", ev->state_name,
		   sizeof ev->state_name);
	if (r->slot)
		snprintf(ev->name, sizeof ev->name, "%s.%llu", r->svc,
			 (unsigned long long)r->slot);
	else
		snprintf(ev->name, sizeof ev->name, "%s.%016llx", r->svc,
			 (unsigned long long)r->node_id);
}

static void describe_network(struct events_event *ev, const struct events *e,
			     const ProtobufCMessage *obj, const ProtobufCMessage *old)
{
	const Cs__Network *n = (const Cs__Network *)obj;

	(void)e;
	(void)old;
	ev->id = n->id;
	ev_name(ev, n->spec ? n->spec->name : "");
}

/* A secret or a config (one store table): its name; never its data. */
static void describe_secret(struct events_event *ev, const struct events *e,
			    const ProtobufCMessage *obj, const ProtobufCMessage *old)
{
	const Cs__Secret *x = (const Cs__Secret *)obj;

	(void)e;
	(void)old;
	ev->id = x->id;
	ev_name(ev, x->name);
}

static bool match_secret(const ProtobufCMessage *obj)
{
	return !((const Cs__Secret *)obj)->config;
}

static bool match_config(const ProtobufCMessage *obj)
{
	return ((const Cs__Secret *)obj)->config;
}

/* One row per object kind: its name, its store table, whether Docker
 * shows it, a describe function setting id and name (NULL for tasks: kept
 * as their facts, rendered when read), and (for a table of two kinds)
 * which of its objects it takes. */
const struct events_kind events_kinds[] = {
	{"service", STORE_SERVICE, true, describe_service, NULL},
	{"node", STORE_NODE, true, describe_node, NULL},
	{"task", STORE_TASK, false, NULL, NULL},
	{"network", STORE_NETWORK, true, describe_network, NULL},
	{"secret", STORE_SECRET, true, describe_secret, match_secret},
	{"config", STORE_SECRET, true, describe_secret, match_config},
};
const size_t events_kind_count = sizeof events_kinds / sizeof *events_kinds;

const char *events_service_name(const struct events *e, uint64_t id)
{
	const Cs__Service *s = e->st ? store_service_get(e->st, id) : NULL;

	if (s && s->spec)
		return s->spec->name;
	for (size_t i = 0; i < EVENTS_REMOVED_NAMES_MAX; i++)
		if (e->removed[i].id == id && id)
			return e->removed[i].name;
	return NULL;
}

const char *events_action_name(enum events_action a)
{
	switch (a) {
	case EVENTS_CREATE: return "create";
	case EVENTS_UPDATE: return "update";
	default: assert(a == EVENTS_REMOVE); return "remove";
	}
}

/* ---------------------------------------------------------------- the ring */

struct events *events_new(struct env *env, uint64_t start_index)
{
	struct events *e = calloc(1, sizeof *e);

	if (!e)
		return NULL;
	e->env = env;
	if (start_index > 1) {
		e->gone_set = true;
		e->gone_index = start_index - 1;
		e->gone_ord = UINT32_MAX;
		e->last_index = start_index - 1;
	}
	return e;
}

/* Frees what the kept events own (their rendered events). */
static void ev_free_kept(struct events *e)
{
	for (size_t i = 0; i < e->count; i++)
		free(e->ring[(e->head + i) % e->cap].full);
}

void events_free(struct events *e)
{
	if (!e)
		return;
	ev_free_kept(e);
	free(e->ring);
	free(e);
}

static const struct events_rec *ev_at(const struct events *e, size_t i)
{
	assert(i < e->count);
	return &e->ring[(e->head + i) % e->cap];
}

/* Position order: (index, ord). */
static int pos_cmp(uint64_t ia, uint32_t oa, uint64_t ib, uint32_t ob)
{
	if (ia != ib)
		return ia < ib ? -1 : 1;
	if (oa != ob)
		return oa < ob ? -1 : 1;
	return 0;
}

/* A free slot for the next event: grows the ring to EVENTS_KEPT_MAX, then
 * drops the oldest (recording it as gone, and freeing what it owned). NULL
 * when out of memory: the event is then lost too, and recorded as gone, so
 * that a reader is told. */
static struct events_rec *ev_slot(struct events *e)
{
	struct events_rec *slot;

	if (e->count == e->cap && e->cap < EVENTS_KEPT_MAX) {
		size_t ncap = e->cap ? e->cap * 2 : 64;
		struct events_rec *nr;
		if (ncap > EVENTS_KEPT_MAX)
			ncap = EVENTS_KEPT_MAX;
		nr = malloc(ncap * sizeof *nr);
		if (nr) {
			for (size_t i = 0; i < e->count; i++)
				nr[i] = *ev_at(e, i);
			free(e->ring);
			e->ring = nr;
			e->cap = ncap;
			e->head = 0;
		}
	}
	if (e->count < e->cap) {
		slot = &e->ring[(e->head + e->count) % e->cap];
		e->count++;
		return slot;
	}
	if (e->cap == 0)
		return NULL;
	/* full: the oldest goes */
	slot = &e->ring[e->head];
	e->gone_set = true;
	e->gone_index = slot->index;
	e->gone_ord = slot->ord;
	free(slot->full);
	slot->full = NULL;
	e->head = (e->head + 1) % e->cap;
	return slot;
}

/* The record's own time when it has one (the same on every manager), else
 * the applying manager's wall clock. */
static uint64_t ev_time_ms(const struct events *e, const struct store_event *sev)
{
	uint64_t t = 0;

	if (sev->new_obj && sev->table == STORE_SERVICE)
		t = ((const Cs__Service *)sev->new_obj)->updated_ms;
	else if (sev->new_obj && sev->table == STORE_NODE)
		t = ((const Cs__Node *)sev->new_obj)->updated_ms;
	else if (sev->new_obj && sev->table == STORE_TASK)
		t = ((const Cs__Task *)sev->new_obj)->updated_ms;
	if (!t && e->env && e->env->ops->wall_ms)
		t = e->env->ops->wall_ms(e->env);
	return t;
}

void events_on_store_event(struct events *e, const struct store *st,
			   const struct store_event *sev)
{
	const struct events_kind *k = NULL;
	struct events_event *full = NULL;
	struct events_rec rec, *slot;
	const ProtobufCMessage *obj;

	assert(sev->index >= e->cur_index);
	obj = sev->new_obj ? sev->new_obj : sev->old_obj;
	assert(obj);
	for (size_t i = 0; i < events_kind_count && !k; i++)
		if (events_kinds[i].table == sev->table &&
		    (!events_kinds[i].match || events_kinds[i].match(obj)))
			k = &events_kinds[i];
	if (!k)
		return; /* the cluster record: no event */
	if (sev->index != e->cur_index) {
		e->cur_index = sev->index;
		e->next_ord = 0;
	}
	memset(&rec, 0, sizeof rec);
	rec.index = sev->index;
	rec.ord = e->next_ord++;
	rec.kind = (uint8_t)(k - events_kinds);
	rec.action = sev->change == STORE_CREATED   ? EVENTS_CREATE
		     : sev->change == STORE_UPDATED ? EVENTS_UPDATE
						    : EVENTS_REMOVE;
	e->st = st;
	if (!k->describe) {
		/* a task: rendered when read (task_render) */
		task_facts(&rec, e, (const Cs__Task *)obj);
	} else {
		full = malloc(sizeof *full);
		if (full) {
			memset(full, 0, sizeof *full);
			full->index = rec.index;
			full->ord = rec.ord;
			full->kind = rec.kind;
			full->state = -1;
			full->action = (enum events_action)rec.action;
			k->describe(full, e, obj,
				    sev->change == STORE_UPDATED ? sev->old_obj : NULL);
			rec.id = full->id;
		}
	}
	e->st = NULL;
	if (sev->table == STORE_SERVICE && rec.action == EVENTS_REMOVE) {
		/* its tasks go after it: keep its name for theirs */
		const Cs__Service *s = (const Cs__Service *)obj;
		size_t r = e->removed_next++ % EVENTS_REMOVED_NAMES_MAX;
		e->removed[r].id = s->id;
		snprintf(e->removed[r].name, sizeof e->removed[r].name, "%s",
			 s->spec && s->spec->name ? s->spec->name : "");
	}
	rec.time_ms = ev_time_ms(e, sev);
	if (full)
		full->time_ms = rec.time_ms;
	e->last_index = rec.index;
	slot = !k->describe || full ? ev_slot(e) : NULL;
	if (!slot) {
		free(full);
		e->gone_set = true;
		e->gone_index = rec.index;
		e->gone_ord = rec.ord;
		return;
	}
	rec.full = full;
	*slot = rec;
	assert(e->count <= EVENTS_KEPT_MAX);
}

void events_restored(struct events *e, uint64_t index)
{
	ev_free_kept(e);
	e->head = 0;
	e->count = 0;
	e->gone_set = true;
	e->gone_index = index;
	e->gone_ord = UINT32_MAX;
	e->cur_index = index;
	e->next_ord = 0;
	if (index > e->last_index)
		e->last_index = index;
}

uint64_t events_last_index(const struct events *e)
{
	return e->count ? ev_at(e, e->count - 1)->index : 0;
}

bool events_oldest(const struct events *e, uint64_t *index, uint32_t *ord)
{
	if (!e->count)
		return false;
	*index = ev_at(e, 0)->index;
	*ord = ev_at(e, 0)->ord;
	return true;
}

size_t events_kept_count(const struct events *e)
{
	return e->count;
}

/* ---------------------------------------------------------------- filters */

int events_filter_add(struct events_filter *f, const char *kv, char *err, size_t err_size)
{
	const char *eq = strchr(kv, '=');
	struct events_clause c;
	size_t klen;

	memset(&c, 0, sizeof c);
	if (!eq || eq == kv || !eq[1]) {
		snprintf(err, err_size, "filter \"%s\": not key=value", kv);
		return CS_EINVAL;
	}
	if (f->count >= EVENTS_FILTERS_MAX) {
		snprintf(err, err_size, "filter: at most %u", EVENTS_FILTERS_MAX);
		return CS_ELIMIT;
	}
	if (strlen(eq + 1) >= sizeof c.value) {
		snprintf(err, err_size, "filter \"%.40s...\": value over %zu bytes", kv,
			 sizeof c.value - 1);
		return CS_EINVAL;
	}
	str_copy(c.value, sizeof c.value, eq + 1);
	klen = (size_t)(eq - kv);
#define KEY_IS(s) (klen == strlen(s) && strncmp(kv, s, klen) == 0)
	if (KEY_IS("type")) {
		c.key = EVENTS_KEY_TYPE;
		for (c.kind = 0; c.kind < events_kind_count; c.kind++)
			if (strcmp(events_kinds[c.kind].name, c.value) == 0)
				break;
		/* Docker's other types (container, image...): valid, no event */
	} else if (KEY_IS("event")) {
		c.key = EVENTS_KEY_EVENT;
		c.action = -1;
		for (int a = EVENTS_CREATE; a <= EVENTS_REMOVE; a++)
			if (strcmp(events_action_name((enum events_action)a), c.value) ==
			    0)
				c.action = a;
	} else if (KEY_IS("name")) {
		c.key = EVENTS_KEY_NAME;
	} else if (KEY_IS("id")) {
		c.key = EVENTS_KEY_ID;
	} else if (KEY_IS("scope")) {
		c.key = EVENTS_KEY_SCOPE;
		if (strcmp(c.value, "swarm") != 0 && strcmp(c.value, "local") != 0) {
			snprintf(err, err_size, "filter scope=%s: swarm or local",
				 c.value);
			return CS_EINVAL;
		}
	} else {
		c.key = EVENTS_KEY_KIND;
		for (c.kind = 0; c.kind < events_kind_count; c.kind++)
			if (KEY_IS(events_kinds[c.kind].name))
				break;
		if (c.kind == events_kind_count) {
			static const char *const docker[] = {"container", "image",
							     "volume",	  "plugin",
							     "daemon",	  "label"};
			for (size_t d = 0; d < sizeof docker / sizeof *docker; d++)
				if (KEY_IS(docker[d]))
					c.key = EVENTS_KEY_NONE;
		}
		if (c.key == EVENTS_KEY_KIND && c.kind == events_kind_count) {
			snprintf(err, err_size,
				 "filter \"%.*s\": unknown key (type, event, name, id, "
				 "scope, service, node, task, network, secret, config)",
				 (int)(klen > 40 ? 40 : klen), kv);
			return CS_EINVAL;
		}
	}
#undef KEY_IS
	f->clauses[f->count++] = c;
	return 0;
}

static bool clause_match(const struct events_clause *c, const struct events_event *ev)
{
	char hex[17];

	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ev->id);
	switch (c->key) {
	case EVENTS_KEY_TYPE: return c->kind == ev->kind;
	case EVENTS_KEY_EVENT: return c->action == (int)ev->action;
	case EVENTS_KEY_NAME: return strcmp(c->value, ev->name) == 0;
	case EVENTS_KEY_ID: return strncmp(hex, c->value, strlen(c->value)) == 0;
	case EVENTS_KEY_SCOPE: return strcmp(c->value, "swarm") == 0;
	case EVENTS_KEY_NONE: return false;
	default:
		assert(c->key == EVENTS_KEY_KIND);
		return c->kind == ev->kind &&
		       (strncmp(hex, c->value, strlen(c->value)) == 0 ||
			strncmp(ev->name, c->value, strlen(c->value)) == 0);
	}
}

bool events_filter_match(const struct events_filter *f, const struct events_event *ev)
{
	if (!f)
		return true;
	for (size_t i = 0; i < f->count; i++) {
		bool any = false, first = true;
		/* the first clause of each key decides for the key */
		for (size_t j = 0; j < i; j++)
			if (f->clauses[j].key == f->clauses[i].key &&
			    (f->clauses[i].key != EVENTS_KEY_KIND ||
			     f->clauses[j].kind == f->clauses[i].kind))
				first = false;
		if (!first)
			continue;
		for (size_t j = i; j < f->count && !any; j++)
			if (f->clauses[j].key == f->clauses[i].key &&
			    (f->clauses[i].key != EVENTS_KEY_KIND ||
			     f->clauses[j].kind == f->clauses[i].kind))
				any = clause_match(&f->clauses[j], ev);
		if (!any)
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------- reads */

int events_read(const struct events *e, const struct events_filter *f,
		uint64_t from_index, uint32_t from_ord, size_t max, events_visit_fn fn,
		void *arg, uint64_t *next_index, uint32_t *next_ord, char *err,
		size_t err_size)
{
	struct events_event tmp; /* a task's event, rendered */
	size_t i = 0;
	int visited = 0;

	assert(max <= EVENTS_READ_MAX);
	if (from_index == 0) { /* from now */
		*next_index = e->last_index + 1;
		*next_ord = 0;
		return 0;
	}
	if (e->gone_set &&
	    pos_cmp(from_index, from_ord, e->gone_index, e->gone_ord) <= 0) {
		snprintf(err, err_size,
			 "events from index %llu are no longer kept on this manager (it "
			 "keeps the last %u, and %s): the reader fell behind; start "
			 "again with --since %llu",
			 (unsigned long long)from_index, EVENTS_KEPT_MAX,
			 e->gone_ord == UINT32_MAX ? "installed a snapshot"
						   : "dropped older ones",
			 (unsigned long long)(e->gone_index + 1));
		return CS_ELIMIT;
	}
	*next_index = from_index;
	*next_ord = from_ord;
	/* the first kept at or after the cursor (binary search: positions
	 * grow along the ring) */
	{
		size_t lo = 0, hi = e->count;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct events_rec *m = ev_at(e, mid);
			if (pos_cmp(m->index, m->ord, from_index, from_ord) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	for (; i < e->count && (size_t)visited < max; i++) {
		const struct events_rec *r = ev_at(e, i);
		const struct events_event *ev = r->full;
		if (!ev) {
			task_render(&tmp, r);
			ev = &tmp;
		}
		if (events_filter_match(f, ev)) {
			fn(arg, ev);
			visited++;
		}
		*next_index = r->index;
		*next_ord = r->ord + 1;
	}
	assert(visited >= 0 && (size_t)visited <= max);
	return visited;
}

void events_to_proto(const struct events_event *ev, Cs__Event *out, Cs__Label *attrs,
		     Cs__Label **ptrs)
{
	cs__event__init(out);
	out->index = ev->index;
	out->ord = ev->ord;
	out->time_ms = ev->time_ms;
	out->kind = (char *)events_kinds[ev->kind].name;
	out->action = (char *)events_action_name(ev->action);
	out->object_id = ev->id;
	out->name = (char *)ev->name;
	out->service_id = ev->service_id;
	out->node_id = ev->node_id;
	out->slot = ev->slot;
	out->state = (char *)ev->state_name;
	for (size_t i = 0; i < ev->attr_count; i++) {
		cs__label__init(&attrs[i]);
		attrs[i].key = (char *)ev->attrs[i].key;
		attrs[i].value = (char *)ev->attrs[i].value;
		ptrs[i] = &attrs[i];
	}
	out->n_attrs = ev->attr_count;
	out->attrs = ptrs;
}
