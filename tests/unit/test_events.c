/* Tests of the event stream (issue 20): a store's applied changes become
 * events in commit order with their index and place in the batch, named as
 * people name them; filters as Docker's (same key: alternatives, keys: all
 * hold); cursors that read on without a gap or a repeat; and a reader
 * behind what is kept cut off with the index to start again from, never
 * skipped silently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/events.h"
#include "core/store.h"

struct fixture {
	struct store *st;
	struct events *ev;
	uint64_t index;
};

static void on_event(void *data, const struct store_event *sev)
{
	struct fixture *f = data;
	events_on_store_event(f->ev, f->st, sev);
}

static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	f->st = store_new();
	f->ev = events_new(NULL, 0);
	assert_non_null(f->st);
	assert_non_null(f->ev);
	assert_true(store_watch(f->st, on_event, f) > 0);
}

static void fx_free(struct fixture *f)
{
	events_free(f->ev);
	store_free(f->st);
}

/* Applies b at the next index. */
static void apply(struct fixture *f, struct store_batch *b)
{
	uint8_t *buf;
	size_t len;

	assert_int_equal(store_batch_encode(b, 1, 1, &buf, &len), 0);
	assert_int_equal(store_apply(f->st, buf, len, ++f->index, NULL, NULL), 0);
	free(buf);
	store_batch_free(b);
}

static void service(struct fixture *f, Cs__StoreAction__Kind kind, uint64_t id,
		    const char *name, const char *image, uint64_t replicas)
{
	Cs__ContainerSpec c = CS__CONTAINER_SPEC__INIT;
	Cs__TaskSpec ts = CS__TASK_SPEC__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__Service svc = CS__SERVICE__INIT;
	const Cs__Service *old = store_service_get(f->st, id);
	struct store_batch b;

	c.image = (char *)image;
	ts.container = &c;
	spec.name = (char *)name;
	spec.replicas = replicas;
	spec.task = &ts;
	svc.id = id;
	svc.spec = &spec;
	svc.version = old ? old->version : 0;
	store_batch_init(&b);
	assert_int_equal(store_batch_service(&b, kind, &svc), 0);
	apply(f, &b);
}

static void add_task(struct store_batch *b, Cs__StoreAction__Kind kind, uint64_t id,
		     uint64_t service_id, uint64_t slot, uint64_t node,
		     Cs__TaskState state, uint64_t version)
{
	Cs__Task t = CS__TASK__INIT;
	Cs__TaskStatus st = CS__TASK_STATUS__INIT;

	t.id = id;
	t.service_id = service_id;
	t.slot = slot;
	t.node_id = node;
	t.version = version;
	st.state = state;
	t.status = &st;
	assert_int_equal(store_batch_task(b, kind, &t), 0);
}

struct seen {
	size_t n;
	struct events_event evs[EVENTS_READ_MAX];
};

static void visit(void *arg, const struct events_event *ev)
{
	struct seen *s = arg;
	assert_true(s->n < EVENTS_READ_MAX);
	s->evs[s->n++] = *ev;
}

/* Reads from (index, ord) with filter strings (NULL-ended); returns the
 * count, *s the events. */
static int read_from(struct fixture *f, struct seen *s, uint64_t index, uint32_t ord,
		     const char *const *filters, uint64_t *ni, uint32_t *no, char *err,
		     size_t err_size)
{
	struct events_filter flt;
	char ferr[256];

	memset(&flt, 0, sizeof flt);
	memset(s, 0, sizeof *s);
	for (size_t i = 0; filters && filters[i]; i++)
		assert_int_equal(events_filter_add(&flt, filters[i], ferr, sizeof ferr),
				 0);
	return events_read(f->ev, &flt, index, ord, EVENTS_READ_MAX, visit, s, ni, no,
			   err, err_size);
}

static void test_events_service_create_update_remove_in_commit_order(void **state)
{
	struct fixture f;
	struct seen s;
	uint64_t ni;
	uint32_t no;
	char err[256];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 2);
	service(&f, CS__STORE_ACTION__KIND__KIND_UPDATE, 10, "web", "img:2", 3);
	service(&f, CS__STORE_ACTION__KIND__KIND_DELETE, 10, "web", "img:2", 3);
	assert_int_equal(read_from(&f, &s, 1, 0, NULL, &ni, &no, err, sizeof err), 3);
	assert_string_equal(events_kinds[s.evs[0].kind].name, "service");
	assert_int_equal(s.evs[0].action, EVENTS_CREATE);
	assert_int_equal(s.evs[1].action, EVENTS_UPDATE);
	assert_int_equal(s.evs[2].action, EVENTS_REMOVE);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(s.evs[i].index, i + 1);
		assert_int_equal(s.evs[i].ord, 0);
		assert_int_equal(s.evs[i].id, 10);
		assert_string_equal(s.evs[i].name, "web");
	}
	/* the update says what changed, as Docker's does */
	assert_int_equal(s.evs[1].attr_count, 4);
	assert_string_equal(s.evs[1].attrs[0].key, "image.old");
	assert_string_equal(s.evs[1].attrs[0].value, "img:1");
	assert_string_equal(s.evs[1].attrs[1].value, "img:2");
	assert_string_equal(s.evs[1].attrs[2].key, "replicas.old");
	assert_string_equal(s.evs[1].attrs[3].value, "3");
	assert_int_equal(s.evs[0].attr_count, 0);
	/* the cursor goes on after the last */
	assert_int_equal(ni, 3);
	assert_int_equal(no, 1);
	assert_int_equal(read_from(&f, &s, ni, no, NULL, &ni, &no, err, sizeof err), 0);
	assert_int_equal(ni, 3);
	fx_free(&f);
}

static void test_events_tasks_of_a_batch_in_order_with_their_place(void **state)
{
	struct fixture f;
	struct store_batch b;
	struct seen s;
	uint64_t ni;
	uint32_t no;
	char err[256];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 2);
	store_batch_init(&b);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, 101, 10, 1, 7,
		 CS__TASK_STATE__TASK_STATE_NEW, 0);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, 102, 10, 0, 8,
		 CS__TASK_STATE__TASK_STATE_NEW, 0);
	apply(&f, &b);
	store_batch_init(&b);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, 101, 10, 1, 7,
		 CS__TASK_STATE__TASK_STATE_RUNNING, store_task_get(f.st, 101)->version);
	apply(&f, &b);
	assert_int_equal(read_from(&f, &s, 2, 0, (const char *const[]){"type=task", NULL},
				   &ni, &no, err, sizeof err),
			 3);
	assert_int_equal(s.evs[0].index, 2);
	assert_int_equal(s.evs[0].ord, 0);
	assert_int_equal(s.evs[1].index, 2);
	assert_int_equal(s.evs[1].ord, 1);
	assert_string_equal(s.evs[0].name, "web.1");
	/* a global task (slot 0): its node names it */
	assert_string_equal(s.evs[1].name, "web.0000000000000008");
	assert_int_equal(s.evs[2].action, EVENTS_UPDATE);
	assert_string_equal(s.evs[2].state_name, "running");
	assert_int_equal(s.evs[2].service_id, 10);
	assert_int_equal(s.evs[2].node_id, 7);
	assert_int_equal(s.evs[2].slot, 1);
	/* reading on from inside a batch: the rest of it */
	assert_int_equal(read_from(&f, &s, 2, 1, NULL, &ni, &no, err, sizeof err), 2);
	assert_int_equal(s.evs[0].id, 102);
	fx_free(&f);
}

static void test_events_filters_same_key_any_keys_all(void **state)
{
	struct fixture f;
	struct seen s;
	struct events_filter flt;
	uint64_t ni;
	uint32_t no;
	char err[256];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 0xab10, "web", "img:1", 1);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 0xcd20, "db", "img:1", 1);
	service(&f, CS__STORE_ACTION__KIND__KIND_DELETE, 0xcd20, "db", "img:1", 1);
	assert_int_equal(read_from(&f, &s, 1, 0,
				   (const char *const[]){"name=web", "name=db", NULL},
				   &ni, &no, err, sizeof err),
			 3);
	assert_int_equal(read_from(&f, &s, 1, 0,
				   (const char *const[]){"name=db", "event=create", NULL},
				   &ni, &no, err, sizeof err),
			 1);
	assert_int_equal(s.evs[0].id, 0xcd20);
	assert_int_equal(read_from(&f, &s, 1, 0,
				   (const char *const[]){"id=000000000000ab", NULL}, &ni,
				   &no, err, sizeof err),
			 1);
	assert_int_equal(read_from(&f, &s, 1, 0,
				   (const char *const[]){"service=we", NULL}, &ni, &no,
				   err, sizeof err),
			 1);
	assert_int_equal(read_from(&f, &s, 1, 0, (const char *const[]){"type=node", NULL},
				   &ni, &no, err, sizeof err),
			 0);
	assert_int_equal(read_from(&f, &s, 1, 0,
				   (const char *const[]){"scope=local", NULL}, &ni, &no,
				   err, sizeof err),
			 0);
	/* Docker's types with no swarm event: valid, nothing */
	assert_int_equal(read_from(&f, &s, 1, 0,
				   (const char *const[]){"type=container", NULL}, &ni,
				   &no, err, sizeof err),
			 0);
	memset(&flt, 0, sizeof flt);
	assert_int_equal(events_filter_add(&flt, "colour=red", err, sizeof err),
			 CS_EINVAL);
	assert_non_null(strstr(err, "unknown key"));
	assert_int_equal(events_filter_add(&flt, "name", err, sizeof err), CS_EINVAL);
	assert_int_equal(events_filter_add(&flt, "scope=galaxy", err, sizeof err),
			 CS_EINVAL);
	for (size_t i = 0; i < EVENTS_FILTERS_MAX; i++)
		assert_int_equal(events_filter_add(&flt, "name=x", err, sizeof err), 0);
	assert_int_equal(events_filter_add(&flt, "name=x", err, sizeof err), CS_ELIMIT);
	fx_free(&f);
}

static void test_events_from_now_sees_only_later_ones(void **state)
{
	struct fixture f;
	struct seen s;
	uint64_t ni;
	uint32_t no;
	char err[256];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 1);
	assert_int_equal(read_from(&f, &s, 0, 0, NULL, &ni, &no, err, sizeof err), 0);
	assert_int_equal(ni, 2);
	assert_int_equal(no, 0);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 20, "db", "img:1", 1);
	assert_int_equal(read_from(&f, &s, ni, no, NULL, &ni, &no, err, sizeof err), 1);
	assert_string_equal(s.evs[0].name, "db");
	fx_free(&f);
}

static void test_events_read_is_bounded_and_reads_on_without_gap(void **state)
{
	struct fixture f;
	struct store_batch b;
	struct seen s;
	uint64_t ni = 1, seen_ids = 0;
	uint32_t no = 0;
	char err[256];
	int n;
	(void)state;

	fx_init(&f);
	store_batch_init(&b);
	for (uint64_t i = 1; i <= EVENTS_READ_MAX + 10; i++)
		add_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, i, 10, i, 7,
			 CS__TASK_STATE__TASK_STATE_NEW, 0);
	apply(&f, &b);
	n = read_from(&f, &s, ni, no, NULL, &ni, &no, err, sizeof err);
	assert_int_equal(n, EVENTS_READ_MAX);
	for (int i = 0; i < n; i++)
		assert_int_equal(s.evs[i].id, ++seen_ids);
	n = read_from(&f, &s, ni, no, NULL, &ni, &no, err, sizeof err);
	assert_int_equal(n, 10);
	for (int i = 0; i < n; i++)
		assert_int_equal(s.evs[i].id, ++seen_ids);
	fx_free(&f);
}

static void test_events_reader_behind_the_ring_is_cut_off_loudly(void **state)
{
	struct fixture f;
	struct seen s;
	uint64_t ni;
	uint32_t no;
	char err[256];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 1);
	for (uint64_t i = 0; i < EVENTS_KEPT_MAX; i++)
		service(&f, CS__STORE_ACTION__KIND__KIND_UPDATE, 10, "web", "img:1",
			i + 2);
	assert_int_equal(events_kept_count(f.ev), EVENTS_KEPT_MAX);
	/* index 1 (the create) was dropped: a reader there is told */
	err[0] = '\0';
	assert_int_equal(read_from(&f, &s, 1, 0, NULL, &ni, &no, err, sizeof err),
			 CS_ELIMIT);
	assert_int_equal(s.n, 0);
	assert_non_null(strstr(err, "fell behind"));
	assert_non_null(strstr(err, "--since 2"));
	/* from where it says: every kept one */
	assert_int_equal(read_from(&f, &s, 2, 0, NULL, &ni, &no, err, sizeof err),
			 EVENTS_READ_MAX);
	assert_int_equal(s.evs[0].index, 2);
	fx_free(&f);
}

static void test_events_before_an_installed_snapshot_are_unknown(void **state)
{
	struct fixture f;
	struct seen s;
	uint64_t ni;
	uint32_t no;
	char err[256];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 1);
	events_restored(f.ev, 50);
	f.index = 50;
	assert_int_equal(events_kept_count(f.ev), 0);
	assert_int_equal(read_from(&f, &s, 1, 0, NULL, &ni, &no, err, sizeof err),
			 CS_ELIMIT);
	assert_non_null(strstr(err, "snapshot"));
	assert_int_equal(read_from(&f, &s, 0, 0, NULL, &ni, &no, err, sizeof err), 0);
	assert_int_equal(ni, 51);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 20, "db", "img:1", 1);
	assert_int_equal(read_from(&f, &s, 51, 0, NULL, &ni, &no, err, sizeof err), 1);
	fx_free(&f);
}

/* Secrets and configs share a store table; each has its row and type, and
 * an event never carries a secret's data. */
static void test_events_secret_and_config_each_their_kind(void **state)
{
	struct fixture f;
	struct store_batch b;
	Cs__Secret x = CS__SECRET__INIT;
	struct seen s;
	uint64_t ni;
	uint32_t no;
	char err[256];
	const char *only_config[] = {"type=config", NULL};

	(void)state;
	fx_init(&f);
	x.id = 0x51;
	x.name = "db-password";
	x.data.data = (uint8_t *)"hunter2";
	x.data.len = 7;
	store_batch_init(&b);
	assert_int_equal(store_batch_secret(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &x),
			 0);
	apply(&f, &b);
	x.id = 0xc0;
	x.name = "app.conf";
	x.config = true;
	store_batch_init(&b);
	assert_int_equal(store_batch_secret(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &x),
			 0);
	apply(&f, &b);
	assert_int_equal(read_from(&f, &s, 1, 0, NULL, &ni, &no, err, sizeof err), 2);
	assert_string_equal(events_kinds[s.evs[0].kind].name, "secret");
	assert_string_equal(s.evs[0].name, "db-password");
	assert_int_equal(s.evs[0].id, 0x51);
	assert_string_equal(events_kinds[s.evs[1].kind].name, "config");
	assert_string_equal(s.evs[1].name, "app.conf");
	for (size_t i = 0; i < 2; i++)
		for (size_t a = 0; a < s.evs[i].attr_count; a++)
			assert_null(strstr(s.evs[i].attrs[a].value, "hunter2"));
	assert_int_equal(read_from(&f, &s, 1, 0, only_config, &ni, &no, err, sizeof err),
			 1);
	assert_int_equal(s.evs[0].id, 0xc0);
	fx_free(&f);
}

static void test_events_to_proto_carries_every_field(void **state)
{
	struct fixture f;
	struct seen s;
	struct store_batch b;
	uint64_t ni;
	uint32_t no;
	char err[256];
	Cs__Event pe;
	Cs__Label attrs[EVENTS_ATTRS_MAX], *ptrs[EVENTS_ATTRS_MAX];
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 1);
	service(&f, CS__STORE_ACTION__KIND__KIND_UPDATE, 10, "web", "img:2", 1);
	store_batch_init(&b);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, 101, 10, 3, 7,
		 CS__TASK_STATE__TASK_STATE_PENDING, 0);
	apply(&f, &b);
	assert_int_equal(read_from(&f, &s, 2, 0, NULL, &ni, &no, err, sizeof err), 2);
	events_to_proto(&s.evs[0], &pe, attrs, ptrs);
	assert_string_equal(pe.kind, "service");
	assert_string_equal(pe.action, "update");
	assert_int_equal(pe.index, 2);
	assert_int_equal(pe.n_attrs, 2);
	assert_string_equal(pe.attrs[1]->value, "img:2");
	events_to_proto(&s.evs[1], &pe, attrs, ptrs);
	assert_string_equal(pe.kind, "task");
	assert_string_equal(pe.state, "pending");
	assert_string_equal(pe.name, "web.3");
	assert_int_equal(pe.slot, 3);
	fx_free(&f);
}

/* The event of a task as a reader would have had it rendered at commit,
 * every byte (unused ones 0). */
static void want_task(struct events_event *w, uint64_t index, uint32_t ord,
		      enum events_action action, uint64_t id, uint64_t service_id,
		      uint64_t node_id, uint64_t slot, int state, const char *state_name,
		      const char *name)
{
	memset(w, 0, sizeof *w);
	w->index = index;
	w->ord = ord;
	w->kind = 2;
	assert_string_equal(events_kinds[w->kind].name, "task");
	w->action = action;
	w->id = id;
	w->service_id = service_id;
	w->node_id = node_id;
	w->slot = slot;
	w->state = state;
	snprintf(w->state_name, sizeof w->state_name, "%s", state_name);
	snprintf(w->name, sizeof w->name, "%s", name);
}

/* Tasks' events are kept compact and rendered when read: what is read is,
 * byte for byte, what a rendering at commit gave, named after their
 * service as it was then (renamed since, removed since and its name
 * pushed out of the removed names, never known but by the task's own
 * service_name, or not at all), read once or twice. */
static void test_events_task_events_read_as_rendered_at_commit(void **state)
{
	struct fixture f;
	struct store_batch b;
	struct seen s, again;
	uint64_t ni;
	uint32_t no;
	char err[256];
	Cs__Task t = CS__TASK__INIT;
	struct events_event w;
	(void)state;

	fx_init(&f);
	service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 10, "web", "img:1", 2);
	store_batch_init(&b);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, 101, 10, 3, 7,
		 CS__TASK_STATE__TASK_STATE_RUNNING, 0);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, 102, 10, 0, 0xab,
		 CS__TASK_STATE__TASK_STATE_FAILED, 0);
	/* of a service this store never had: its own service_name */
	t.id = 103;
	t.service_id = 99;
	t.service_name = "ghost";
	t.slot = 1;
	t.node_id = 7;
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	/* nor that: the service id, in hex; no status: new */
	t.id = 104;
	t.service_id = 98;
	t.service_name = "";
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	apply(&f, &b);
	store_batch_init(&b);
	add_task(&b, CS__STORE_ACTION__KIND__KIND_DELETE, 101, 10, 3, 7,
		 CS__TASK_STATE__TASK_STATE_RUNNING, store_task_get(f.st, 101)->version);
	apply(&f, &b);
	/* since: renamed, removed, and more removed after it than are named */
	service(&f, CS__STORE_ACTION__KIND__KIND_UPDATE, 10, "www", "img:1", 2);
	service(&f, CS__STORE_ACTION__KIND__KIND_DELETE, 10, "www", "img:1", 2);
	for (uint64_t i = 0; i < EVENTS_REMOVED_NAMES_MAX + 1; i++) {
		service(&f, CS__STORE_ACTION__KIND__KIND_CREATE, 1000 + i, "other",
			"img:1", 1);
		service(&f, CS__STORE_ACTION__KIND__KIND_DELETE, 1000 + i, "other",
			"img:1", 1);
	}
	assert_int_equal(read_from(&f, &s, 2, 0, (const char *const[]){"type=task", NULL},
				   &ni, &no, err, sizeof err),
			 5);
	want_task(&w, 2, 0, EVENTS_CREATE, 101, 10, 7, 3,
		  CS__TASK_STATE__TASK_STATE_RUNNING, "running", "web.3");
	assert_memory_equal(&s.evs[0], &w, sizeof w);
	want_task(&w, 2, 1, EVENTS_CREATE, 102, 10, 0xab, 0,
		  CS__TASK_STATE__TASK_STATE_FAILED, "failed", "web.00000000000000ab");
	assert_memory_equal(&s.evs[1], &w, sizeof w);
	want_task(&w, 2, 2, EVENTS_CREATE, 103, 99, 7, 1, CS__TASK_STATE__TASK_STATE_NEW,
		  "new", "ghost.1");
	assert_memory_equal(&s.evs[2], &w, sizeof w);
	want_task(&w, 2, 3, EVENTS_CREATE, 104, 98, 7, 1, CS__TASK_STATE__TASK_STATE_NEW,
		  "new", "0000000000000062.1");
	assert_memory_equal(&s.evs[3], &w, sizeof w);
	want_task(&w, 3, 0, EVENTS_REMOVE, 101, 10, 7, 3,
		  CS__TASK_STATE__TASK_STATE_RUNNING, "running", "web.3");
	assert_memory_equal(&s.evs[4], &w, sizeof w);
	/* a name filter sees the name as read */
	assert_int_equal(read_from(&f, &again, 2, 0,
				   (const char *const[]){"name=ghost.1", NULL}, &ni, &no,
				   err, sizeof err),
			 1);
	assert_memory_equal(&again.evs[0], &s.evs[2], sizeof w);
	/* read again: the same bytes */
	assert_int_equal(read_from(&f, &again, 2, 0,
				   (const char *const[]){"type=task", NULL}, &ni, &no,
				   err, sizeof err),
			 5);
	assert_memory_equal(again.evs, s.evs, 5 * sizeof w);
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_events_service_create_update_remove_in_commit_order),
		cmocka_unit_test(test_events_tasks_of_a_batch_in_order_with_their_place),
		cmocka_unit_test(test_events_filters_same_key_any_keys_all),
		cmocka_unit_test(test_events_from_now_sees_only_later_ones),
		cmocka_unit_test(test_events_read_is_bounded_and_reads_on_without_gap),
		cmocka_unit_test(test_events_reader_behind_the_ring_is_cut_off_loudly),
		cmocka_unit_test(test_events_before_an_installed_snapshot_are_unknown),
		cmocka_unit_test(test_events_to_proto_carries_every_field),
		cmocka_unit_test(test_events_secret_and_config_each_their_kind),
		cmocka_unit_test(test_events_task_events_read_as_rendered_at_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
