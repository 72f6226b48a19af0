/* test_backup: the backup file's format (issue 20): what backup_encode
 * writes reads back whole; a file that is not a backup, one truncated, one
 * with a byte changed, one of another format, and one whose store lacks
 * the cluster or its CA are refused with a message that says which. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/backup.h"
#include "core/errors.h"
#include "core/pki.h"
#include "core/store.h"

static const uint8_t ca_cert[] = "cert-bytes", ca_key[] = "key-bytes";

static void apply(struct store *s, struct store_batch *b, uint64_t index)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(store_batch_encode(b, 0, 0, &buf, &len), 0);
	assert_int_equal(store_apply(s, buf, len, index, NULL, NULL), 0);
	free(buf);
	store_batch_free(b);
	store_batch_init(b);
}

/* A store with a cluster record (with a CA unless without_ca) and a
 * service "web", at index 7. */
static struct store *make_store(bool without_ca)
{
	struct store *s = store_new();
	struct store_batch b;
	Cs__Cluster c = CS__CLUSTER__INIT;
	Cs__Service svc = CS__SERVICE__INIT;
	Cs__ServiceSpec spec = CS__SERVICE_SPEC__INIT;

	assert_non_null(s);
	store_batch_init(&b);
	c.id = 0xc1u;
	if (!without_ca) {
		c.ca_cert.data = (uint8_t *)ca_cert;
		c.ca_cert.len = sizeof ca_cert;
		c.ca_key.data = (uint8_t *)ca_key;
		c.ca_key.len = sizeof ca_key;
	}
	assert_int_equal(store_batch_cluster(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &c),
			 0);
	apply(s, &b, 6);
	svc.id = 0x5e;
	spec.name = "web";
	svc.spec = &spec;
	assert_int_equal(
		store_batch_service(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &svc), 0);
	apply(s, &b, 7);
	store_batch_free(&b);
	return s;
}

static void encode(bool without_ca, uint8_t **buf, size_t *len)
{
	struct store *s = make_store(without_ca);
	assert_int_equal(backup_encode(s, 3, buf, len), 0);
	store_free(s);
}

/* Whether needle (n bytes) occurs in hay (len bytes). */
static bool holds(const uint8_t *hay, size_t len, const uint8_t *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

/* A counter for the sealing's salt and nonce. */
static uint64_t fake_random(struct env *env)
{
	uint64_t *n = env->impl;
	return ++*n * 0x9e3779b97f4a7c15ull;
}

/* Under autolock a backup is sealed with the unlock key: opened with it,
 * refused without it (the message names --unlock-key-file), with another
 * key, or with a byte changed; it holds nothing of the plain backup in
 * the clear. */
static void test_backup_sealed_with_the_unlock_key(void **state)
{
	static const char key[] = "SWMKEY-1-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
	static const char other[] =
		"SWMKEY-1-Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA";
	struct env_ops ops;
	uint64_t n = 0;
	struct env env = {&ops, &n};
	uint8_t *plain, *sealed, *opened;
	size_t plain_len, sealed_len, opened_len;
	struct backup b;
	char why[BACKUP_WHY_BYTES];

	(void)state;
	memset(&ops, 0, sizeof ops);
	ops.random_u64 = fake_random;
	encode(false, &plain, &plain_len);
	assert_int_equal(backup_seal(&env, key, plain, plain_len, &sealed, &sealed_len),
			 0);
	assert_true(backup_is_sealed(sealed, sealed_len));
	assert_false(backup_is_sealed(plain, plain_len));
	/* the plain backup's bytes do not show (its store's first 32) */
	assert_false(holds(sealed, sealed_len, plain + sizeof BACKUP_MAGIC - 1, 32));
	assert_int_equal(backup_decode(sealed, sealed_len, &b, why, sizeof why),
			 CS_EAUTH);
	assert_non_null(strstr(why, "--unlock-key-file"));
	assert_int_equal(backup_open(other, sealed, sealed_len, &opened, &opened_len, why,
				     sizeof why),
			 CS_EAUTH);
	assert_int_equal(backup_open("nope", sealed, sealed_len, &opened, &opened_len,
				     why, sizeof why),
			 CS_EINVAL);
	sealed[sealed_len / 2] ^= 1;
	assert_int_equal(backup_open(key, sealed, sealed_len, &opened, &opened_len, why,
				     sizeof why),
			 CS_EAUTH);
	sealed[sealed_len / 2] ^= 1;
	assert_int_equal(backup_open(key, sealed, sealed_len, &opened, &opened_len, why,
				     sizeof why),
			 0);
	assert_int_equal(opened_len, plain_len);
	assert_memory_equal(opened, plain, plain_len);
	assert_int_equal(backup_decode(opened, opened_len, &b, why, sizeof why), 0);
	backup_free(&b);
	free(opened);
	free(sealed);
	free(plain);
}

static void test_backup_round_trip_keeps_the_store_and_the_ca(void **state)
{
	struct backup b;
	char why[BACKUP_WHY_BYTES];
	struct store *s;
	uint8_t *buf;
	size_t len;

	(void)state;
	encode(false, &buf, &len);
	assert_memory_equal(buf, BACKUP_MAGIC, strlen(BACKUP_MAGIC));
	assert_int_equal(backup_decode(buf, len, &b, why, sizeof why), 0);
	assert_string_equal(why, "");
	assert_int_equal(b.index, 7);
	assert_int_equal(b.term, 3);
	assert_int_equal(b.cluster_id, 0xc1u);
	assert_int_equal(b.ca_cert_len, sizeof ca_cert);
	assert_memory_equal(b.ca_key, ca_key, sizeof ca_key);
	s = store_new();
	assert_int_equal(store_restore(s, b.store, b.store_len, 0), 0);
	assert_non_null(store_service_get(s, 0x5e));
	assert_string_equal(store_service_get(s, 0x5e)->spec->name, "web");
	assert_int_equal(store_applied(s), 7);
	store_free(s);
	backup_free(&b);
	assert_null(b.store);
	free(buf);
}

static void test_backup_of_a_store_without_a_cluster_is_refused(void **state)
{
	struct store *s = store_new();
	uint8_t *buf = (uint8_t *)"x";
	size_t len = 1;

	(void)state;
	assert_int_equal(backup_encode(s, 1, &buf, &len), CS_ENOENT);
	assert_null(buf);
	assert_int_equal(len, 0);
	store_free(s);
}

static void test_backup_foreign_files_are_not_backups(void **state)
{
	static const char *const files[] = {"", "hello\n", "CSWARM-BACKU",
					    "SQLite format 3"};
	struct backup b;
	char why[BACKUP_WHY_BYTES];

	(void)state;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		assert_int_equal(backup_decode((const uint8_t *)files[i],
					       strlen(files[i]), &b, why, sizeof why),
				 CS_EINVAL);
		assert_non_null(strstr(why, "not a cswarm backup"));
		assert_null(b.store);
	}
}

/* Every cut of the file is refused, none read as a backup. */
static void test_backup_truncated_files_are_refused(void **state)
{
	struct backup b;
	char why[BACKUP_WHY_BYTES];
	uint8_t *buf;
	size_t len;

	(void)state;
	encode(false, &buf, &len);
	for (size_t cut = 0; cut < len; cut++) {
		int rv = backup_decode(buf, cut, &b, why, sizeof why);
		assert_true(rv == CS_EINVAL || rv == CS_ECORRUPT);
		assert_true(strlen(why) > 0);
		assert_null(b.store);
	}
	free(buf);
}

/* A byte changed anywhere is found (the SHA-256 the file ends with covers
 * all of it), and said. */
static void test_backup_a_changed_byte_is_found(void **state)
{
	struct backup b;
	char why[BACKUP_WHY_BYTES];
	uint8_t *buf;
	size_t len;

	(void)state;
	encode(false, &buf, &len);
	for (size_t at = 0; at < len; at++) {
		int rv;
		buf[at] ^= 0x40;
		rv = backup_decode(buf, len, &b, why, sizeof why);
		assert_true(rv == CS_EINVAL || rv == CS_ECORRUPT);
		if (rv == CS_ECORRUPT)
			assert_non_null(strstr(why, "SHA-256"));
		assert_null(b.store);
		buf[at] ^= 0x40;
	}
	assert_int_equal(backup_decode(buf, len, &b, why, sizeof why), 0);
	backup_free(&b);
	free(buf);
}

static void test_backup_another_format_is_named(void **state)
{
	Cs__Backup *msg;
	struct backup b;
	char why[BACKUP_WHY_BYTES];
	uint8_t *buf, *out;
	size_t len, m = strlen(BACKUP_MAGIC), n;

	(void)state;
	encode(false, &buf, &len);
	msg = cs__backup__unpack(NULL, len - m - 32, buf + m);
	assert_non_null(msg);
	msg->format = 2;
	n = cs__backup__get_packed_size(msg);
	out = malloc(m + n + 32);
	memcpy(out, BACKUP_MAGIC, m);
	cs__backup__pack(msg, out + m);
	pki_digest(out, m + n, out + m + n);
	assert_int_equal(backup_decode(out, m + n + 32, &b, why, sizeof why),
			 CS_EVERSION);
	assert_string_equal(why, "backup format 2: this build reads format 1");
	cs__backup__free_unpacked(msg, NULL);
	free(out);
	free(buf);
}

static void test_backup_a_store_without_its_ca_is_refused(void **state)
{
	struct backup b;
	char why[BACKUP_WHY_BYTES];
	uint8_t *buf;
	size_t len;

	(void)state;
	encode(true, &buf, &len);
	assert_int_equal(backup_decode(buf, len, &b, why, sizeof why), CS_ECORRUPT);
	assert_string_equal(why, "its cluster record holds no root CA");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backup_round_trip_keeps_the_store_and_the_ca),
		cmocka_unit_test(test_backup_sealed_with_the_unlock_key),
		cmocka_unit_test(test_backup_of_a_store_without_a_cluster_is_refused),
		cmocka_unit_test(test_backup_foreign_files_are_not_backups),
		cmocka_unit_test(test_backup_truncated_files_are_refused),
		cmocka_unit_test(test_backup_a_changed_byte_is_found),
		cmocka_unit_test(test_backup_another_format_is_named),
		cmocka_unit_test(test_backup_a_store_without_its_ca_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
