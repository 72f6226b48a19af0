/* events: the event stream (issue 20), kept by every manager from its own
 * applied store changes (every manager applies the whole Raft log, so none
 * needs the leader's): one event per created, updated or removed service,
 * node, task and network, in commit order, each with the Raft index it
 * committed at and its place in that batch (ord). The manager owns one
 * (manager_events) and feeds it each store event; the control API's
 * EVENTS read, swarmctl events, the Docker API's GET /events and the
 * simulator read it.
 *
 * Memory is bounded: the last EVENTS_KEPT_MAX events are kept in a ring
 * (older ones are dropped as new ones come); a task's event (nearly all
 * of them) is kept as its facts and rendered when read, byte for byte as
 * at commit, for events of tasks are rarely read. A reader keeps only a cursor
 * (index, ord) and reads on from it, at most EVENTS_READ_MAX events a
 * read: nothing is held per reader. A reader whose cursor points at an
 * event this manager no longer has (dropped from the ring, or before a
 * snapshot it installed) is told so with CS_ELIMIT and the index to start
 * again from: it is cut off loudly, never skipped silently.
 *
 * Object kinds are rows of one table (events_kinds in events.c): a new
 * kind (secrets, configs) is one row with its store table, its name and a
 * describe function. */
#ifndef CS_EVENTS_H
#define CS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/api.pb-c.h"
#include "core/env.h"
#include "core/limits.h"
#include "core/store.h"

/* Removed services whose names are kept, to name their tasks' events
 * (their tasks go after them). */
#define EVENTS_REMOVED_NAMES_MAX 64u
/* Events a manager keeps (the ring). */
#define EVENTS_KEPT_MAX 4096u
/* Events one read returns at most. */
#define EVENTS_READ_MAX 256u
/* Filter clauses (key=value) in one read. */
#define EVENTS_FILTERS_MAX 16u
/* An event's name: a task's is "<service>.<slot>" or "<service>.<node id>". */
#define EVENTS_NAME_BYTES (LIMIT_NAME_BYTES_MAX + 1 + 20 + 1)
/* Attributes beyond the name (Docker's Actor.Attributes: image.old, ...). */
#define EVENTS_ATTRS_MAX      6u
#define EVENTS_ATTR_KEY_BYTES 24u
#define EVENTS_ATTR_VAL_BYTES (LIMIT_NAME_BYTES_MAX + 1)

enum events_action { EVENTS_CREATE, EVENTS_UPDATE, EVENTS_REMOVE };

struct events;

struct events_attr {
	char key[EVENTS_ATTR_KEY_BYTES];
	char value[EVENTS_ATTR_VAL_BYTES];
};

struct events_event {
	uint64_t index;	  /* the Raft index of its batch */
	uint32_t ord;	  /* its place among that batch's events, from 0 */
	uint64_t time_ms; /* wall clock: the record's updated time, else the
			     applying manager's */
	size_t kind;	  /* a row of events_kinds */
	enum events_action action;
	uint64_t id;
	char name[EVENTS_NAME_BYTES];
	/* tasks: their service, node, slot and observed state (-1: none) */
	uint64_t service_id, node_id, slot;
	int state;
	char state_name[24]; /* "running" ("" : none) */
	size_t attr_count;
	struct events_attr attrs[EVENTS_ATTRS_MAX];
};

/* One object kind: a row of the table. */
struct events_kind {
	const char *name;	/* "service": the type filter's value */
	enum store_table table; /* whose store events it turns into events */
	bool docker;		/* Docker's API shows it (Docker has no task events) */
	/* describe fills ev's id, name, task fields and attributes from obj
	 * (the new object; the old one for a remove) and old (NULL on a
	 * create; on an update the object before), with e to look names up
	 * (events_service_name). Borrowed for the call. NULL for tasks:
	 * kept as their facts and rendered when read (events.c). */
	void (*describe)(struct events_event *ev, const struct events *e,
			 const ProtobufCMessage *obj, const ProtobufCMessage *old);
	/* which objects of the table are of this kind (NULL: all): a table
	 * of two kinds (secrets and configs) has a row for each */
	bool (*match)(const ProtobufCMessage *obj);
};

extern const struct events_kind events_kinds[];
extern const size_t events_kind_count;

/* events_service_name: the name of service id in the store being applied,
 * else of a service removed lately, else NULL. */
const char *events_service_name(const struct events *e, uint64_t id);

/* events_action_name: "create", "update", "remove". */
const char *events_action_name(enum events_action a);

/* events_new returns an empty stream whose events before index
 * start_index are not known (0: all are), or NULL when out of memory. env
 * (borrowed, may be NULL in tests) gives the wall clock. */
struct events *events_new(struct env *env, uint64_t start_index);
void events_free(struct events *e);

/* events_on_store_event turns one store change (borrowed), just applied to
 * st (borrowed: a task's service name is read there), into an event, if
 * its table has a row. Store events of one batch come in order, with one
 * index. */
void events_on_store_event(struct events *e, const struct store *st,
			   const struct store_event *ev);

/* events_restored: the store was replaced by a snapshot at index: events
 * up to it are not known here any more (the ring is emptied). */
void events_restored(struct events *e, uint64_t index);

/* events_last_index: the index of the last event kept (0: none yet). */
uint64_t events_last_index(const struct events *e);
/* events_oldest: the cursor of the oldest event kept (false: none kept). */
bool events_oldest(const struct events *e, uint64_t *index, uint32_t *ord);
/* events_kept_count: how many are in the ring. */
size_t events_kept_count(const struct events *e);

/* ---------------------------------------------------------------- filters */

enum events_filter_key {
	EVENTS_KEY_TYPE,  /* a kind's name */
	EVENTS_KEY_EVENT, /* an action's name */
	EVENTS_KEY_NAME,  /* the object's name, exactly */
	EVENTS_KEY_ID,	  /* the object's id in hex, or a prefix of it */
	EVENTS_KEY_SCOPE, /* swarm (every event), local (none) */
	EVENTS_KEY_KIND,  /* Docker's service=X, node=X...: of that kind, and X a
			     prefix of its id or of its name */
	EVENTS_KEY_NONE,  /* Docker's keys for objects with no row here
			     (container=X, image=X, secret=X...): matches none */
};

struct events_clause {
	enum events_filter_key key;
	size_t kind; /* EVENTS_KEY_TYPE, EVENTS_KEY_KIND: the row */
	int action;  /* EVENTS_KEY_EVENT */
	char value[EVENTS_NAME_BYTES];
};

/* Clauses with the same key are alternatives; different keys must all
 * hold (Docker's filters). No clause: every event. */
struct events_filter {
	size_t count;
	struct events_clause clauses[EVENTS_FILTERS_MAX];
};

/* events_filter_add parses "key=value" (key: type, event, name, id, scope,
 * or a kind's name; Docker's other keys, container, image, volume, plugin,
 * daemon, label, secret, config, are accepted and match nothing until a
 * row of that kind exists) into f. Returns 0, or CS_EINVAL / CS_ELIMIT with err
 * saying what is wrong and what is allowed. */
int events_filter_add(struct events_filter *f, const char *kv, char *err,
		      size_t err_size);

/* events_filter_match: whether ev passes f (borrowed). */
bool events_filter_match(const struct events_filter *f, const struct events_event *ev);

/* ---------------------------------------------------------------- reads */

/* What a read visits: each event that passes, borrowed for the call. */
typedef void (*events_visit_fn)(void *arg, const struct events_event *ev);

/* events_read visits, in commit order, the events at or after the cursor
 * (from_index, from_ord) that pass f (NULL: all), at most max of them;
 * from_index 0 means from now (none visited). *next_index, *next_ord
 * receive the cursor to read on from. Returns the count visited, or
 * CS_ELIMIT when events at the cursor are no longer kept here (err says
 * from which index a reader can start again), and then nothing is
 * visited. */
int events_read(const struct events *e, const struct events_filter *f,
		uint64_t from_index, uint32_t from_ord, size_t max, events_visit_fn fn,
		void *arg, uint64_t *next_index, uint32_t *next_ord, char *err,
		size_t err_size);

/* events_to_proto fills out (initialised here) from ev; strings borrowed
 * from ev, attrs from the caller's attrs/ptrs (EVENTS_ATTRS_MAX each). */
void events_to_proto(const struct events_event *ev, Cs__Event *out, Cs__Label *attrs,
		     Cs__Label **ptrs);

#endif
