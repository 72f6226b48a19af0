/* Tests of secrets and configs (issue 20): the store's rules at apply (a
 * name unique among its kind, labels the only change, no removal while a
 * service references one, no task carrying data), snapshots, and what the
 * control API and the dispatcher take from them (references resolved by
 * name, targets, limits; a secret's data never shown; a task's data only
 * what its spec references). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "core/secret.h"
#include "core/store.h"

static int apply(struct store *s, struct store_batch *b, uint64_t index)
{
	uint8_t *buf;
	size_t len;
	int rv;
	assert_int_equal(store_batch_encode(b, 1, index, &buf, &len), 0);
	rv = store_apply(s, buf, len, index, NULL, NULL);
	free(buf);
	store_batch_free(b);
	return rv;
}

static int put_secret(struct store *s, Cs__StoreAction__Kind kind, uint64_t id,
		      bool config, const char *name, const char *data, uint64_t version,
		      uint64_t index)
{
	struct store_batch b;
	Cs__Secret x = CS__SECRET__INIT;
	x.id = id;
	x.config = config;
	x.name = (char *)name;
	x.data.data = (uint8_t *)data;
	x.data.len = strlen(data);
	x.version = version;
	store_batch_init(&b);
	assert_int_equal(store_batch_secret(&b, kind, &x), 0);
	return apply(s, &b, index);
}

/* A service whose spec references secret ids secrets[] and config ids
 * configs[] (0-terminated), by id. */
static int put_service(struct store *s, Cs__StoreAction__Kind kind, uint64_t id,
		       const uint64_t *secrets, const uint64_t *configs, uint64_t version,
		       uint64_t index)
{
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;
	Cs__TaskSpec task = CS__TASK_SPEC__INIT;
	Cs__ContainerSpec c = CS__CONTAINER_SPEC__INIT;
	Cs__SecretReference refs[2][4], *ptrs[2][4];
	Cs__Service svc = CS__SERVICE__INIT;
	struct store_batch b;
	const uint64_t *ids[2] = {secrets, configs};
	size_t n[2] = {0, 0};

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; ids[k] && ids[k][i]; i++) {
			cs__secret_reference__init(&refs[k][i]);
			refs[k][i].secret_id = ids[k][i];
			ptrs[k][i] = &refs[k][i];
			n[k]++;
		}
	c.n_secrets = n[0];
	c.secrets = ptrs[0];
	c.n_configs = n[1];
	c.configs = ptrs[1];
	c.image = "img";
	task.container = &c;
	spec.task = &task;
	spec.name = "web";
	spec.replicas = 1;
	svc.id = id;
	svc.spec = &spec;
	svc.version = version;
	store_batch_init(&b);
	assert_int_equal(store_batch_service(&b, kind, &svc), 0);
	return apply(s, &b, index);
}

static void test_secret_names_unique_per_kind_at_apply(void **state)
{
	struct store *s = store_new();
	(void)state;
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x11, false,
				    "db", "pw", 0, 1),
			 0);
	/* another secret of that name: refused by every manager alike */
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x12, false,
				    "db", "pw2", 0, 2),
			 CS_EEXIST);
	/* a config may share it (Docker's secrets and configs are apart) */
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x13, true,
				    "db", "conf", 0, 3),
			 0);
	assert_non_null(store_secret_by_name(s, false, "db"));
	assert_int_equal(store_secret_by_name(s, false, "db")->id, 0x11);
	assert_int_equal(store_secret_by_name(s, true, "db")->id, 0x13);
	assert_int_equal(store_secret_count(s), 2);
	/* a name-less one is corrupt */
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x14, false,
				    "", "x", 0, 4),
			 CS_ECORRUPT);
	store_free(s);
}

static void test_secret_update_changes_labels_only(void **state)
{
	struct store *s = store_new();
	(void)state;
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x11, false,
				    "db", "pw", 0, 1),
			 0);
	/* its data cannot change (SwarmKit: only labels) */
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_UPDATE, 0x11, false,
				    "db", "other", 1, 2),
			 CS_EINVAL);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_UPDATE, 0x11, false,
				    "db2", "pw", 1, 3),
			 CS_EINVAL);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_UPDATE, 0x11, false,
				    "db", "pw", 1, 4),
			 0);
	assert_int_equal(store_secret_get(s, 0x11)->version, 4);
	store_free(s);
}

static void test_secret_in_use_cannot_be_deleted(void **state)
{
	struct store *s = store_new();
	const uint64_t secrets[] = {0x11, 0}, configs[] = {0x21, 0}, none[] = {0};
	const Cs__Service *users[2];
	(void)state;
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x11, false,
				    "db", "pw", 0, 1),
			 0);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x21, true,
				    "conf", "c", 0, 2),
			 0);
	/* a reference to a secret id that is a config: refused */
	assert_int_equal(put_service(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x99,
				     configs, NULL, 0, 3),
			 CS_ENOENT);
	assert_int_equal(put_service(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x99,
				     secrets, configs, 0, 4),
			 0);
	assert_int_equal(store_secret_users(s, store_secret_get(s, 0x11), users, 2), 1);
	assert_int_equal(users[0]->id, 0x99);
	/* a removal in flight when the control API looked is refused at apply */
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_DELETE, 0x11, false,
				    "db", "pw", 1, 5),
			 CS_EADDRINUSE);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_DELETE, 0x21, true,
				    "conf", "c", 2, 6),
			 CS_EADDRINUSE);
	/* once the service drops them, they go */
	assert_int_equal(put_service(s, CS__STORE_ACTION__KIND__KIND_UPDATE, 0x99, none,
				     none, 4, 7),
			 0);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_DELETE, 0x11, false,
				    "db", "pw", 1, 8),
			 0);
	/* and a service cannot reference what is gone */
	assert_int_equal(put_service(s, CS__STORE_ACTION__KIND__KIND_UPDATE, 0x99,
				     secrets, NULL, 7, 9),
			 CS_ENOENT);
	store_free(s);
}

static void test_secret_data_never_in_a_stored_task(void **state)
{
	struct store *s = store_new();
	Cs__Task t = CS__TASK__INIT;
	Cs__Secret x = CS__SECRET__INIT, *xs[1] = {&x};
	struct store_batch b;
	(void)state;
	x.id = 1;
	x.name = "db";
	t.id = 7;
	t.service_id = 1;
	t.n_secret_data = 1;
	t.secret_data = xs;
	store_batch_init(&b);
	assert_int_equal(store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t),
			 0);
	assert_int_equal(apply(s, &b, 1), CS_ECORRUPT);
	assert_null(store_task_get(s, 7));
	store_free(s);
}

static void test_secret_survives_a_snapshot(void **state)
{
	struct store *s = store_new(), *r = store_new();
	uint8_t *buf;
	size_t len;
	(void)state;
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x11, false,
				    "db", "hunter2", 0, 1),
			 0);
	assert_int_equal(store_snapshot(s, &buf, &len), 0);
	assert_int_equal(store_restore(r, buf, len, 0), 0);
	free(buf);
	assert_non_null(store_secret_get(r, 0x11));
	assert_int_equal(store_secret_get(r, 0x11)->data.len, 7);
	assert_memory_equal(store_secret_get(r, 0x11)->data.data, "hunter2", 7);
	store_free(s);
	store_free(r);
}

static void test_secret_shown_without_its_data(void **state)
{
	Cs__Secret x = CS__SECRET__INIT, shown;
	(void)state;
	x.name = "db";
	x.data.data = (uint8_t *)"pw";
	x.data.len = 2;
	secret_shown(&x, &shown);
	assert_int_equal(shown.data.len, 0);
	assert_null(shown.data.data);
	/* a config's data is shown (docker config inspect) */
	x.config = true;
	secret_shown(&x, &shown);
	assert_int_equal(shown.data.len, 2);
}

/* A spec referencing secrets named by n names and configs by m, with
 * targets (NULL: none). */
struct spec_refs {
	Cs__ServiceSpec spec;
	Cs__TaskSpec task;
	Cs__ContainerSpec c;
	Cs__SecretReference refs[2][LIMIT_SERVICE_SECRETS_MAX + 1];
	Cs__SecretReference *ptrs[2][LIMIT_SERVICE_SECRETS_MAX + 1];
};

static void spec_refs(struct spec_refs *r, const char *const *secrets, size_t n,
		      const char *const *targets, const char *const *configs, size_t m)
{
	cs__service_spec__init(&r->spec);
	cs__task_spec__init(&r->task);
	cs__container_spec__init(&r->c);
	r->spec.name = "web";
	r->spec.task = &r->task;
	r->task.container = &r->c;
	for (size_t i = 0; i < n; i++) {
		cs__secret_reference__init(&r->refs[0][i]);
		r->refs[0][i].secret_name = (char *)secrets[i];
		if (targets && targets[i])
			r->refs[0][i].target = (char *)targets[i];
		r->ptrs[0][i] = &r->refs[0][i];
	}
	for (size_t i = 0; i < m; i++) {
		cs__secret_reference__init(&r->refs[1][i]);
		r->refs[1][i].secret_name = (char *)configs[i];
		r->ptrs[1][i] = &r->refs[1][i];
	}
	r->c.n_secrets = n;
	r->c.secrets = r->ptrs[0];
	r->c.n_configs = m;
	r->c.configs = r->ptrs[1];
}

static void test_secret_resolve_names_targets_and_limits(void **state)
{
	struct store *s = store_new();
	struct spec_refs *r = calloc(1, sizeof *r);
	Cs__ServiceSpec *out;
	const char *names[] = {"db", "db"}, *targets[] = {NULL, "/run/secrets/db"};
	const char *missing[] = {"nope"}, *conf[] = {"conf"};
	char err[256], path[256];
	char *big;
	(void)state;

	assert_non_null(r);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x11, false,
				    "db", "pw", 0, 1),
			 0);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x21, true,
				    "conf", "c", 0, 2),
			 0);
	/* by name, to id; mode 0444; a config at /NAME */
	spec_refs(r, names, 1, NULL, conf, 1);
	assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err), 0);
	assert_non_null(out);
	assert_int_equal(out->task->container->secrets[0]->secret_id, 0x11);
	assert_int_equal(out->task->container->secrets[0]->mode, 0444);
	assert_int_equal(out->task->container->configs[0]->secret_id, 0x21);
	assert_true(secret_target(out->task->container->secrets[0], false, path,
				  sizeof path));
	assert_string_equal(path, "/run/secrets/db");
	assert_true(
		secret_target(out->task->container->configs[0], true, path, sizeof path));
	assert_string_equal(path, "/conf");
	cs__service_spec__free_unpacked(out, NULL);

	/* two references at one path */
	spec_refs(r, names, 2, targets, NULL, 0);
	assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err),
			 CS_EINVAL);
	assert_null(out);
	assert_string_equal(err, "secret db: target /run/secrets/db is used by another "
				 "reference");
	/* a name that is no secret (the config's kind is another) */
	spec_refs(r, missing, 1, NULL, NULL, 0);
	assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err),
			 CS_ENOENT);
	assert_string_equal(err, "no secret named 'nope'");
	spec_refs(r, conf, 1, NULL, NULL, 0);
	assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err),
			 CS_ENOENT);
	/* a target climbing out */
	{
		const char *t[] = {"../etc/passwd"};
		spec_refs(r, names, 1, t, NULL, 0);
		assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err),
				 CS_EINVAL);
	}
	/* over the data a service may reference: refused loudly */
	big = malloc(LIMIT_SECRET_BYTES_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', LIMIT_SECRET_BYTES_MAX);
	big[LIMIT_SECRET_BYTES_MAX] = 0;
	{
		const char *many[5] = {"b0", "b1", "b2", "b3", "b4"};
		for (uint64_t i = 0; i < 5; i++)
			assert_int_equal(
				put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE,
					   0x100 + i, false, many[i], big, 0, 10 + i),
				0);
		spec_refs(r, many, 5, NULL, NULL, 0);
		assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err),
				 CS_ELIMIT);
		assert_non_null(strstr(err, "over the limit"));
		spec_refs(r, many, 4, NULL, NULL, 0);
		assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err),
				 0);
		cs__service_spec__free_unpacked(out, NULL);
	}
	/* a secret over 500 KiB cannot be stored even past the control API */
	big = realloc(big, LIMIT_SECRET_BYTES_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', LIMIT_SECRET_BYTES_MAX + 1);
	big[LIMIT_SECRET_BYTES_MAX + 1] = 0;
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x200, false,
				    "huge", big, 0, 20),
			 CS_ECORRUPT);
	free(big);
	free(r);
	store_free(s);
}

static void test_secret_wire_data_is_what_the_spec_references(void **state)
{
	struct store *s = store_new();
	struct spec_refs *r = calloc(1, sizeof *r);
	const char *names[] = {"db"}, *conf[] = {"conf"};
	Cs__ServiceSpec *out;
	Cs__Secret **v;
	size_t n;
	char err[256];
	(void)state;

	assert_non_null(r);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x11, false,
				    "db", "pw", 0, 1),
			 0);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x12, false,
				    "other", "x", 0, 2),
			 0);
	assert_int_equal(put_secret(s, CS__STORE_ACTION__KIND__KIND_CREATE, 0x21, true,
				    "conf", "c", 0, 3),
			 0);
	spec_refs(r, names, 1, NULL, conf, 1);
	assert_int_equal(secret_resolve_spec(s, &r->spec, &out, err, sizeof err), 0);
	assert_int_equal(secret_wire_data(s, out->task, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0]->id, 0x11);
	assert_int_equal(v[1]->id, 0x21);
	free(v);
	cs__service_spec__free_unpacked(out, NULL);
	/* no references: nothing */
	spec_refs(r, NULL, 0, NULL, NULL, 0);
	assert_int_equal(secret_wire_data(s, r->spec.task, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	free(r);
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_names_unique_per_kind_at_apply),
		cmocka_unit_test(test_secret_update_changes_labels_only),
		cmocka_unit_test(test_secret_in_use_cannot_be_deleted),
		cmocka_unit_test(test_secret_data_never_in_a_stored_task),
		cmocka_unit_test(test_secret_survives_a_snapshot),
		cmocka_unit_test(test_secret_shown_without_its_data),
		cmocka_unit_test(test_secret_resolve_names_targets_and_limits),
		cmocka_unit_test(test_secret_wire_data_is_what_the_spec_references),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
