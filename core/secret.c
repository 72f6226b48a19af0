/* secret: secrets and configs (issue 20). See secret.h.
 * Sections: names and finds, writes, references, delivery. */
#include "core/secret.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"

/* Mode of a reference's file when none is given (Docker's 0444). */
#define SECRET_MODE_DEFAULT 0444u
/* A path in a container: /run/secrets/ and a name, or a config's target. */
#define SECRET_PATH_BYTES_MAX 256u

const char *secret_kind(bool config)
{
	return config ? "config" : "secret";
}

/* ---------------------------------------------------------------- names and finds */

/* Docker's rule for secret and config names: 1 to 64 of letters, digits,
 * '_', '.', '-', starting with a letter or digit. */
static bool secret_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr("_.-", c)))
			return false;
	}
	return true;
}

/* Whether ref is 1 to 16 hex digits: then [*lo, *hi] are the ids it is a
 * prefix of. */
static bool secret_hex_prefix(const char *ref, uint64_t *lo, uint64_t *hi)
{
	size_t n = strlen(ref);
	uint64_t v = 0;
	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = ref[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*lo = v << (4 * (16 - n));
	*hi = n == 16 ? v : *lo | ((UINT64_C(1) << (4 * (16 - n))) - 1);
	return true;
}

/* secret_lookup: secret_find on a store, without the leader check. */
static int secret_lookup(const struct store *st, bool config, const char *ref,
			 const Cs__Secret **out, char *err, size_t err_size)
{
	const Cs__Secret *found = NULL;
	uint64_t lo, hi;
	size_t matches = 0;

	*out = NULL;
	if (!ref || !*ref) {
		snprintf(err, err_size, "name: say which %s (its name or id)",
			 secret_kind(config));
		return CS_EINVAL;
	}
	if ((found = store_secret_by_name(st, config, ref)) != NULL) {
		*out = found;
		return 0;
	}
	if (secret_hex_prefix(ref, &lo, &hi))
		for (const Cs__Secret *x = store_secret_next(st, NULL); x && x->id <= hi;
		     x = store_secret_next(st, x))
			if (x->id >= lo && x->config == config) {
				found = x;
				matches++;
			}
	if (matches > 1) {
		snprintf(err, err_size,
			 "%s id prefix '%s' is ambiguous (%zu match): give more "
			 "of the id",
			 secret_kind(config), ref, matches);
		return CS_EINVAL;
	}
	if (!found) {
		snprintf(err, err_size, "no %s named '%s'", secret_kind(config), ref);
		return CS_ENOENT;
	}
	*out = found;
	return 0;
}

int secret_find(struct manager *m, bool config, const char *ref, const Cs__Secret **out,
		char *err, size_t err_size)
{
	*out = NULL;
	if (!manager_serves(m))
		return CS_ENOTLEADER;
	return secret_lookup(manager_store(m), config, ref, out, err, err_size);
}

void secret_list(const struct store *st, bool config, const Cs__Secret **out, size_t max,
		 size_t *count)
{
	size_t n = 0;
	for (const Cs__Secret *x = store_secret_next(st, NULL); x;
	     x = store_secret_next(st, x)) {
		if (x->config != config)
			continue;
		if (n < max)
			out[n] = x;
		n++;
	}
	*count = n;
}

void secret_shown(const Cs__Secret *x, Cs__Secret *out)
{
	*out = *x;
	if (!x->config) {
		out->data.data = NULL;
		out->data.len = 0;
	}
}

/* ---------------------------------------------------------------- writes */

/* Encodes b and writes it through m; takes b. */
static int secret_write(struct manager *m, struct store_batch *b, manager_write_cb cb,
			void *data)
{
	uint8_t *buf;
	size_t len;
	int rv = store_batch_encode(b, 0, 0, &buf, &len);
	store_batch_free(b);
	if (rv)
		return rv;
	rv = manager_write(m, buf, len, cb, data);
	/* the batch holds a secret's data: not left in freed memory */
	memset(buf, 0, len);
	free(buf);
	return rv;
}

int secret_create(struct manager *m, const Cs__Secret *in, uint64_t *id, char *err,
		  size_t err_size, manager_write_cb cb, void *data)
{
	const char *kind = secret_kind(in->config);
	Cs__Secret x;
	struct store_batch b;
	int rv;

	if (!manager_serves(m))
		return CS_ENOTLEADER;
	if (!secret_name_ok(in->name)) {
		snprintf(
			err, err_size,
			"name: '%s' is not a valid %s name (1 to 64 letters, digits, '_', "
			"'.' or '-', starting with a letter or digit)",
			in->name ? in->name : "", kind);
		return CS_EINVAL;
	}
	if (in->data.len == 0) {
		snprintf(err, err_size, "data: a %s needs some (it is empty)", kind);
		return CS_EINVAL;
	}
	if (in->data.len > LIMIT_SECRET_BYTES_MAX) {
		snprintf(err, err_size, "data: %zu bytes, over the limit of %u for a %s",
			 in->data.len, LIMIT_SECRET_BYTES_MAX, kind);
		return CS_ELIMIT;
	}
	for (size_t i = 0; i < in->n_labels; i++)
		if (!in->labels[i]->key || !in->labels[i]->key[0] ||
		    strlen(in->labels[i]->key) > LIMIT_LABEL_BYTES_MAX ||
		    (in->labels[i]->value &&
		     strlen(in->labels[i]->value) > LIMIT_LABEL_BYTES_MAX)) {
			snprintf(err, err_size,
				 "label: keys of 1 to %u bytes, values up to %u",
				 LIMIT_LABEL_BYTES_MAX, LIMIT_LABEL_BYTES_MAX);
			return CS_EINVAL;
		}
	if (store_secret_by_name(manager_store(m), in->config, in->name)) {
		snprintf(err, err_size, "name: a %s named '%s' exists", kind, in->name);
		return CS_EEXIST;
	}
	x = *in;
	x.id = manager_random(m) | 1;
	x.version = 0;
	x.created_ms = x.updated_ms = 0;
	store_batch_init(&b);
	if ((rv = store_batch_secret(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &x))) {
		store_batch_free(&b);
		return rv;
	}
	*id = x.id;
	return secret_write(m, &b, cb, data);
}

int secret_remove(struct manager *m, bool config, const char *ref, char *err,
		  size_t err_size, manager_write_cb cb, void *data)
{
	const struct store *st = manager_store(m);
	const Cs__Service *users[8];
	const Cs__Secret *x;
	struct store_batch b;
	size_t n;
	int rv;

	if ((rv = secret_find(m, config, ref, &x, err, err_size)))
		return rv;
	n = store_secret_users(st, x, users, sizeof users / sizeof users[0]);
	if (n > 0) {
		size_t off = (size_t)snprintf(
			err, err_size, "%s '%s' is in use by the following service%s:",
			secret_kind(config), x->name, n > 1 ? "s" : "");
		for (size_t i = 0;
		     i < n && i < sizeof users / sizeof users[0] && off < err_size; i++)
			off += (size_t)snprintf(err + off, err_size - off, "%s %s",
						i ? "," : "", users[i]->spec->name);
		if (n > sizeof users / sizeof users[0] && off < err_size)
			snprintf(err + off, err_size - off, " and %zu more",
				 n - sizeof users / sizeof users[0]);
		return CS_EADDRINUSE;
	}
	store_batch_init(&b);
	if ((rv = store_batch_secret(&b, CS__STORE_ACTION__KIND__KIND_DELETE, x))) {
		store_batch_free(&b);
		return rv;
	}
	return secret_write(m, &b, cb, data);
}

int secret_update_labels(struct manager *m, bool config, const char *ref,
			 Cs__Label *const *add, size_t n_add, char *const *rm,
			 size_t n_rm, uint64_t expect_version, char *err, size_t err_size,
			 manager_write_cb cb, void *data)
{
	const Cs__Secret *cur;
	Cs__Secret x;
	Cs__Label **labels = NULL;
	size_t n = 0;
	struct store_batch b;
	int rv;

	if ((rv = secret_find(m, config, ref, &cur, err, err_size)))
		return rv;
	if (expect_version && cur->version != expect_version) {
		snprintf(err, err_size, "%s '%s' is at version %" PRIu64 ", not %" PRIu64,
			 secret_kind(config), cur->name, cur->version, expect_version);
		return CS_EVERSION;
	}
	labels = calloc(cur->n_labels + n_add + 1, sizeof *labels);
	if (!labels)
		return CS_ENOMEM;
	for (size_t i = 0; i < cur->n_labels; i++) {
		bool drop = false;
		for (size_t j = 0; j < n_rm && !drop; j++)
			drop = strcmp(cur->labels[i]->key, rm[j]) == 0;
		for (size_t j = 0; j < n_add && !drop; j++)
			drop = strcmp(cur->labels[i]->key, add[j]->key) == 0;
		if (!drop)
			labels[n++] = cur->labels[i];
	}
	for (size_t j = 0; j < n_add; j++) {
		if (!add[j]->key || !add[j]->key[0]) {
			free(labels);
			snprintf(err, err_size, "label: an empty key");
			return CS_EINVAL;
		}
		labels[n++] = add[j];
	}
	x = *cur;
	x.labels = labels;
	x.n_labels = n;
	store_batch_init(&b);
	rv = store_batch_secret(&b, CS__STORE_ACTION__KIND__KIND_UPDATE, &x);
	free(labels);
	if (rv) {
		store_batch_free(&b);
		return rv;
	}
	return secret_write(m, &b, cb, data);
}

/* ---------------------------------------------------------------- references */

bool secret_target(const Cs__SecretReference *r, bool config, char *buf, size_t size)
{
	const char *t = r->target && r->target[0] ? r->target : r->secret_name;
	int n;
	if (!t)
		t = "";
	if (t[0] == '/')
		n = snprintf(buf, size, "%s", t);
	else
		n = snprintf(buf, size, "%s%s", config ? "/" : SECRET_DIR, t);
	return n > 0 && (size_t)n < size;
}

/* Whether path is absolute and has no "", "." or ".." component. */
static bool secret_path_ok(const char *path)
{
	const char *p = path;
	if (*p != '/')
		return false;
	while (*p == '/') {
		const char *q = ++p;
		size_t len;
		while (*q && *q != '/')
			q++;
		len = (size_t)(q - p);
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = q;
	}
	return *p == 0;
}

/* Fills r's empty target, uid and gid with their defaults. Returns 0 or
 * CS_ENOMEM. */
static int secret_ref_defaults(Cs__SecretReference *r, bool config, const char *name)
{
	if (!r->target || !r->target[0]) {
		size_t len = strlen(name) + 2;
		char *t = malloc(len);
		if (!t)
			return CS_ENOMEM;
		snprintf(t, len, "%s%s", config ? "/" : "", name);
		if (r->target != protobuf_c_empty_string)
			free(r->target);
		r->target = t;
	}
	if (!r->uid || !r->uid[0]) {
		char *u = strdup("0");
		if (!u)
			return CS_ENOMEM;
		if (r->uid != protobuf_c_empty_string)
			free(r->uid);
		r->uid = u;
	}
	if (!r->gid || !r->gid[0]) {
		char *g = strdup("0");
		if (!g)
			return CS_ENOMEM;
		if (r->gid != protobuf_c_empty_string)
			free(r->gid);
		r->gid = g;
	}
	return 0;
}

/* Checks and fills the references refs (n of them, of one kind) of a copy
 * being resolved; paths collects each target, for the duplicate check,
 * and *bytes the data they reference. */
static int secret_resolve_refs(const struct store *st, bool config,
			       Cs__SecretReference **refs, size_t n,
			       char (*paths)[SECRET_PATH_BYTES_MAX], size_t *path_count,
			       size_t *bytes, char *err, size_t err_size)
{
	const char *kind = secret_kind(config);
	for (size_t i = 0; i < n; i++) {
		Cs__SecretReference *r = refs[i];
		const Cs__Secret *x = NULL;
		char *name;
		int rv;

		if (r->secret_id) {
			x = store_secret_get(st, r->secret_id);
			if (!x || x->config != config) {
				snprintf(err, err_size, "%s: no %s of id %016" PRIx64,
					 kind, kind, r->secret_id);
				return CS_ENOENT;
			}
		} else if ((rv = secret_lookup(st, config, r->secret_name, &x, err,
					       err_size))) {
			return rv;
		}
		if (!r->secret_name || strcmp(r->secret_name, x->name) != 0) {
			if (!(name = strdup(x->name)))
				return CS_ENOMEM;
			if (r->secret_name != protobuf_c_empty_string)
				free(r->secret_name);
			r->secret_name = name;
		}
		r->secret_id = x->id;
		if (r->mode == 0)
			r->mode = SECRET_MODE_DEFAULT;
		/* the defaults written out (as Docker's CLI sends them), so
		 * that a spec read back and sent again is the same spec and
		 * replaces no task: a secret's file is its name, a config's
		 * /NAME; uid and gid 0 */
		if ((rv = secret_ref_defaults(r, config, x->name)))
			return rv;
		if (r->mode > 07777) {
			snprintf(err, err_size, "%s %s: mode %o is not a file mode", kind,
				 x->name, r->mode);
			return CS_EINVAL;
		}
		if (!secret_target(r, config, paths[*path_count],
				   SECRET_PATH_BYTES_MAX) ||
		    !secret_path_ok(paths[*path_count])) {
			snprintf(
				err, err_size,
				"%s %s: target '%s' is not a file name or an absolute path "
				"(no '.' or '..')",
				kind, x->name, r->target ? r->target : "");
			return CS_EINVAL;
		}
		for (size_t j = 0; j < *path_count; j++)
			if (strcmp(paths[j], paths[*path_count]) == 0) {
				snprintf(err, err_size,
					 "%s %s: target %s is used by another reference",
					 kind, x->name, paths[j]);
				return CS_EINVAL;
			}
		(*path_count)++;
		*bytes += x->data.len;
	}
	return 0;
}

int secret_resolve_spec(const struct store *st, const Cs__ServiceSpec *spec,
			Cs__ServiceSpec **out, char *err, size_t err_size)
{
	const Cs__ContainerSpec *cs = spec->task ? spec->task->container : NULL;
	Cs__ServiceSpec *copy;
	Cs__ContainerSpec *cc;
	char(*paths)[SECRET_PATH_BYTES_MAX];
	size_t len, path_count = 0, bytes = 0;
	uint8_t *buf;
	int rv;

	*out = NULL;
	if (!cs || cs->n_secrets + cs->n_configs == 0)
		return 0;
	if (cs->n_secrets + cs->n_configs > LIMIT_SERVICE_SECRETS_MAX) {
		snprintf(
			err, err_size,
			"secret: %zu secrets and configs, over the limit of %u a service",
			cs->n_secrets + cs->n_configs, LIMIT_SERVICE_SECRETS_MAX);
		return CS_ELIMIT;
	}
	len = cs__service_spec__get_packed_size(spec);
	buf = malloc(len ? len : 1);
	if (!buf)
		return CS_ENOMEM;
	cs__service_spec__pack(spec, buf);
	copy = cs__service_spec__unpack(NULL, len, buf);
	free(buf);
	paths = calloc(cs->n_secrets + cs->n_configs, sizeof *paths);
	if (!copy || !paths) {
		free(paths);
		if (copy)
			cs__service_spec__free_unpacked(copy, NULL);
		return CS_ENOMEM;
	}
	cc = copy->task->container;
	rv = secret_resolve_refs(st, false, cc->secrets, cc->n_secrets, paths,
				 &path_count, &bytes, err, err_size);
	if (rv == 0)
		rv = secret_resolve_refs(st, true, cc->configs, cc->n_configs, paths,
					 &path_count, &bytes, err, err_size);
	if (rv == 0 && bytes > LIMIT_SERVICE_SECRETS_BYTES_MAX) {
		snprintf(
			err, err_size,
			"secret: the secrets and configs referenced hold %zu bytes, over "
			"the limit of %u a service",
			bytes, LIMIT_SERVICE_SECRETS_BYTES_MAX);
		rv = CS_ELIMIT;
	}
	free(paths);
	if (rv) {
		cs__service_spec__free_unpacked(copy, NULL);
		return rv;
	}
	*out = copy;
	return 0;
}

/* ---------------------------------------------------------------- delivery */

int secret_wire_data(const struct store *st, const Cs__TaskSpec *spec, Cs__Secret ***out,
		     size_t *n)
{
	const Cs__ContainerSpec *cs = spec ? spec->container : NULL;
	size_t refs = cs ? cs->n_secrets + cs->n_configs : 0;
	Cs__Secret **v;

	*out = NULL;
	*n = 0;
	if (refs == 0)
		return 0;
	v = calloc(refs, sizeof *v);
	if (!v)
		return CS_ENOMEM;
	for (size_t i = 0; i < refs; i++) {
		bool config = i >= cs->n_secrets;
		const Cs__SecretReference *r =
			config ? cs->configs[i - cs->n_secrets] : cs->secrets[i];
		const Cs__Secret *x = store_secret_get(st, r->secret_id);
		bool seen = false;
		if (!x || x->config != config)
			continue;
		for (size_t j = 0; j < *n && !seen; j++)
			seen = v[j] == x;
		if (!seen)
			v[(*n)++] = (Cs__Secret *)x;
	}
	assert(*n <= refs);
	*out = v;
	return 0;
}
