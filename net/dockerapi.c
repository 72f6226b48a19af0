/* dockerapi: the Docker Engine API's swarm part on a unix socket. See
 * dockerapi.h. */
#include "net/dockerapi.h"

#include "net/ctlsock.h"
#include "net/dlist.h"

#include <assert.h>
#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/limits.h"

#define NS_PER_MS 1000000ull

/* ================================================================ mapping */

static int dj_fail(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int dj_fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return CS_EINVAL;
}

/* Whether v is a JSON empty value: what Go's omitempty leaves out (null,
 * false, 0, "", [], {}), or an object of only such values. */
static bool dj_empty(const json_t *v)
{
	const char *k;
	json_t *x;

	if (!v)
		return true;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE: return true;
	case JSON_INTEGER: return json_integer_value(v) == 0;
	case JSON_REAL: return json_real_value(v) == 0;
	case JSON_STRING: return json_string_length(v) == 0;
	case JSON_ARRAY: return json_array_size(v) == 0;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, x)
		{
			if (!dj_empty(x))
				return false;
		}
		return true;
	default: return false;
	}
}

/* dj_only: every key of obj not in known (NULL-ended) holds an empty value;
 * else CS_EINVAL naming path.key. obj NULL or null: fine; not an object:
 * CS_EINVAL. */
static int dj_only(const json_t *obj, const char *path, const char *const *known,
		   char *err, size_t n)
{
	const char *k;
	json_t *v;

	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return dj_fail(err, n, "%s: expected an object", path);
	json_object_foreach((json_t *)obj, k, v)
	{
		size_t i;
		for (i = 0; known[i]; i++)
			if (strcmp(known[i], k) == 0)
				break;
		if (!known[i] && !dj_empty(v))
			return dj_fail(err, n, "%s%s%s: not supported by cswarm", path,
				       *path ? "." : "", k);
	}
	return 0;
}

/* The member key of obj when it is there and not null, else NULL. */
static json_t *dj_get(const json_t *obj, const char *key)
{
	json_t *v = obj && json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return v && !json_is_null(v) ? v : NULL;
}

static int dj_str(const json_t *obj, const char *key, const char *path, const char **out,
		  char *err, size_t n)
{
	json_t *v = dj_get(obj, key);
	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return dj_fail(err, n, "%s.%s: expected a string", path, key);
	*out = json_string_value(v);
	return 0;
}

/* A non-negative integer (*set says whether it was there). */
static int dj_u64(const json_t *obj, const char *key, const char *path, uint64_t *out,
		  bool *set, char *err, size_t n)
{
	json_t *v = dj_get(obj, key);
	if (set)
		*set = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return dj_fail(err, n, "%s.%s: expected a non-negative integer", path,
			       key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A Go duration in nanoseconds, as milliseconds (a whole number of them). */
static int dj_ms(const json_t *obj, const char *key, const char *path, uint64_t *out,
		 bool *set, char *err, size_t n)
{
	uint64_t ns = 0;
	int rv = dj_u64(obj, key, path, &ns, set, err, n);
	if (rv)
		return rv;
	if (ns % NS_PER_MS)
		return dj_fail(err, n,
			       "%s.%s: %" PRIu64 "ns is not a whole number of "
			       "milliseconds (cswarm keeps milliseconds)",
			       path, key, ns);
	if (set && !*set)
		return 0;
	*out = ns / NS_PER_MS;
	return 0;
}

/* An array of strings into a malloc'd char** (each strdup'd). */
static int dj_strings(const json_t *obj, const char *key, const char *path, size_t *count,
		      char ***out, char *err, size_t n)
{
	json_t *v = dj_get(obj, key), *x;
	size_t i;

	if (!v)
		return 0;
	if (!json_is_array(v))
		return dj_fail(err, n, "%s.%s: expected an array of strings", path, key);
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x))
			return dj_fail(err, n, "%s.%s[%zu]: expected a string", path, key,
				       i);
	}
	if (json_array_size(v) == 0)
		return 0;
	*out = calloc(json_array_size(v), sizeof **out);
	if (!*out)
		return CS_ENOMEM;
	json_array_foreach(v, i, x)
	{
		if (!((*out)[i] = strdup(json_string_value(x))))
			return CS_ENOMEM;
		*count = i + 1;
	}
	return 0;
}

/* A new message with its INIT value (freed by free_unpacked with it). */
static void *dj_msg(const void *init, size_t size)
{
	void *p = malloc(size);
	if (p)
		memcpy(p, init, size);
	return p;
}
#define DJ_NEW(type, INIT) ((type *)dj_msg(&(type)INIT, sizeof(type)))

static int dj_resources(const json_t *r, const char *path, Cs__Resources **out, char *err,
			size_t n)
{
	static const char *const known[] = {"NanoCPUs", "MemoryBytes", NULL};
	uint64_t nano = 0, mem = 0;
	int rv;

	if (!r)
		return 0;
	if ((rv = dj_only(r, path, known, err, n)) ||
	    (rv = dj_u64(r, "NanoCPUs", path, &nano, NULL, err, n)) ||
	    (rv = dj_u64(r, "MemoryBytes", path, &mem, NULL, err, n)))
		return rv;
	if (nano % NS_PER_MS)
		return dj_fail(err, n,
			       "%s.NanoCPUs: %" PRIu64 " is not a whole number of "
			       "thousandths of a CPU (cswarm keeps millicpus)",
			       path, nano);
	if (!nano && !mem)
		return 0;
	if (!(*out = DJ_NEW(Cs__Resources, CS__RESOURCES__INIT)))
		return CS_ENOMEM;
	(*out)->millicpus = nano / NS_PER_MS;
	(*out)->memory_bytes = mem;
	return 0;
}

/* ContainerSpec.Mounts: bind and volume, with no options (issue 16). */
static int dj_mounts(const json_t *a, Cs__ContainerSpec *cs, char *err, size_t n)
{
	static const char *const known[] = {"Type", "Source", "Target", "ReadOnly", NULL};
	const char *P = "TaskTemplate.ContainerSpec.Mounts";
	json_t *x;
	size_t i;
	int rv;

	if (!a || dj_empty(a))
		return 0;
	if (!json_is_array(a))
		return dj_fail(err, n, "%s: expected an array", P);
	if (json_array_size(a) > LIMIT_CONTAINER_MOUNTS_MAX)
		return dj_fail(err, n, "%s: more than %u mounts", P,
			       LIMIT_CONTAINER_MOUNTS_MAX);
	if (!(cs->mounts = calloc(json_array_size(a), sizeof *cs->mounts)))
		return CS_ENOMEM;
	json_array_foreach(a, i, x)
	{
		char p[64];
		const char *type, *src, *dst;
		json_t *ro;
		Cs__Mount *m;

		snprintf(p, sizeof p, "%s[%zu]", P, i);
		if ((rv = dj_only(x, p, known, err, n)) ||
		    (rv = dj_str(x, "Type", p, &type, err, n)) ||
		    (rv = dj_str(x, "Source", p, &src, err, n)) ||
		    (rv = dj_str(x, "Target", p, &dst, err, n)))
			return rv;
		if (!(m = cs->mounts[i] = DJ_NEW(Cs__Mount, CS__MOUNT__INIT)))
			return CS_ENOMEM;
		cs->n_mounts = i + 1;
		if (type && strcmp(type, "bind") == 0)
			m->type = CS__MOUNT__TYPE__TYPE_BIND;
		else if (type && strcmp(type, "volume") == 0)
			m->type = CS__MOUNT__TYPE__TYPE_VOLUME;
		else
			return dj_fail(
				err, n,
				"%s.Type: '%s' is not supported by cswarm (bind or "
				"volume)",
				p, type ? type : "");
		if (!dst || dst[0] != '/')
			return dj_fail(err, n, "%s.Target: an absolute path is required",
				       p);
		if (m->type == CS__MOUNT__TYPE__TYPE_BIND && (!src || src[0] != '/'))
			return dj_fail(err, n,
				       "%s.Source: a bind mount needs an absolute path",
				       p);
		if (!(m->target = strdup(dst)) ||
		    (src && *src && !(m->source = strdup(src))))
			return CS_ENOMEM;
		ro = dj_get(x, "ReadOnly");
		if (ro && !json_is_boolean(ro))
			return dj_fail(err, n, "%s.ReadOnly: expected a boolean", p);
		m->read_only = ro && json_is_true(ro);
	}
	return 0;
}

/* ContainerSpec.Secrets and .Configs (issue 20; moby's SecretReference
 * and ConfigReference): {File: {Name, UID, GID, Mode}, SecretID|ConfigID,
 * SecretName|ConfigName}. The control API resolves the name (or the id)
 * and checks the file names. */
static int dj_secret_refs(const json_t *a, bool config, Cs__ContainerSpec *cs, char *err,
			  size_t n)
{
	static const char *const sknown[] = {"File", "SecretID", "SecretName", NULL};
	static const char *const cknown[] = {"File", "ConfigID", "ConfigName", NULL};
	static const char *const fknown[] = {"Name", "UID", "GID", "Mode", NULL};
	const char *P = config ? "TaskTemplate.ContainerSpec.Configs"
			       : "TaskTemplate.ContainerSpec.Secrets";
	Cs__SecretReference ***refs = config ? &cs->configs : &cs->secrets;
	size_t *count = config ? &cs->n_configs : &cs->n_secrets;
	json_t *x;
	size_t i;
	int rv;

	if (!a || dj_empty(a))
		return 0;
	if (!json_is_array(a))
		return dj_fail(err, n, "%s: expected an array", P);
	if (json_array_size(a) > LIMIT_SERVICE_SECRETS_MAX)
		return dj_fail(err, n, "%s: more than %u", P, LIMIT_SERVICE_SECRETS_MAX);
	if (!(*refs = calloc(json_array_size(a), sizeof **refs)))
		return CS_ENOMEM;
	json_array_foreach(a, i, x)
	{
		char p[64], fp[80];
		const char *id = NULL, *name = NULL, *fname = NULL, *uid = NULL,
			   *gid = NULL;
		uint64_t mode = 0;
		json_t *f;
		Cs__SecretReference *r;

		snprintf(p, sizeof p, "%s[%zu]", P, i);
		snprintf(fp, sizeof fp, "%s.File", p);
		if ((rv = dj_only(x, p, config ? cknown : sknown, err, n)) ||
		    (rv = dj_str(x, config ? "ConfigID" : "SecretID", p, &id, err, n)) ||
		    (rv = dj_str(x, config ? "ConfigName" : "SecretName", p, &name, err,
				 n)))
			return rv;
		if ((f = dj_get(x, "File")) &&
		    ((rv = dj_only(f, fp, fknown, err, n)) ||
		     (rv = dj_str(f, "Name", fp, &fname, err, n)) ||
		     (rv = dj_str(f, "UID", fp, &uid, err, n)) ||
		     (rv = dj_str(f, "GID", fp, &gid, err, n)) ||
		     (rv = dj_u64(f, "Mode", fp, &mode, NULL, err, n))))
			return rv;
		if (mode > 07777)
			return dj_fail(err, n, "%s.Mode: %" PRIu64 " is not a file mode",
				       fp, mode);
		if (!(r = (*refs)[i] =
			      DJ_NEW(Cs__SecretReference, CS__SECRET_REFERENCE__INIT)))
			return CS_ENOMEM;
		*count = i + 1;
		if (id && *id) {
			char *end;
			r->secret_id = strtoull(id, &end, 16);
			if (*end || strlen(id) > 16)
				return dj_fail(err, n, "%s.%s: '%s' is not an id", p,
					       config ? "ConfigID" : "SecretID", id);
		}
		/* what is not said takes Docker's defaults here, as shown
		 * (dockerapi_spec_json) and used (the agent): the name as the
		 * file, root's uid and gid, mode 0444; so a spec shown reads
		 * back as the same spec */
		if (!(fname && *fname))
			fname = name;
		if ((name && *name && !(r->secret_name = strdup(name))) ||
		    (fname && *fname && !(r->target = strdup(fname))) ||
		    !(r->uid = strdup(uid && *uid ? uid : "0")) ||
		    !(r->gid = strdup(gid && *gid ? gid : "0")))
			return CS_ENOMEM;
		r->mode = mode ? (uint32_t)mode : 0444;
		if (!r->secret_id && (!name || !*name))
			return dj_fail(err, n, "%s: %s or %s is required", p,
				       config ? "ConfigID" : "SecretID",
				       config ? "ConfigName" : "SecretName");
	}
	return 0;
}

/* ContainerSpec.Labels (an object of strings) into cs->labels. */
static int dj_container_labels(const json_t *l, Cs__ContainerSpec *cs, char *err,
			       size_t n)
{
	const char *k;
	json_t *v;
	size_t i = 0;

	if (!l || dj_empty(l))
		return 0;
	if (!json_is_object(l))
		return dj_fail(err, n,
			       "TaskTemplate.ContainerSpec.Labels: expected an "
			       "object");
	if (!(cs->labels = calloc(json_object_size(l), sizeof *cs->labels)))
		return CS_ENOMEM;
	json_object_foreach((json_t *)l, k, v)
	{
		Cs__Label *lb;
		if (!json_is_string(v))
			return dj_fail(err, n,
				       "TaskTemplate.ContainerSpec.Labels.%s: expected a "
				       "string",
				       k);
		if (!(lb = cs->labels[i] = DJ_NEW(Cs__Label, CS__LABEL__INIT)))
			return CS_ENOMEM;
		cs->n_labels = ++i;
		if (!(lb->key = strdup(k)) || !(lb->value = strdup(json_string_value(v))))
			return CS_ENOMEM;
	}
	return 0;
}

static int dj_container(const json_t *c, Cs__ContainerSpec *cs, char *err, size_t n)
{
	static const char *const known[] = {
		"Image",     "Args",	"Env",	   "Healthcheck", "StopGracePeriod",
		"Isolation", "Command", "Labels",  "Dir",	  "User",
		"Mounts",    "Secrets", "Configs", NULL};
	static const char *const hknown[] = {"Test",	"Interval",    "Timeout",
					     "Retries", "StartPeriod", NULL};
	const char *P = "TaskTemplate.ContainerSpec";
	const char *s;
	json_t *h;
	int rv;

	if ((rv = dj_only(c, P, known, err, n)))
		return rv;
	if ((rv = dj_str(c, "Isolation", P, &s, err, n)))
		return rv;
	if (s && *s && strcmp(s, "default") != 0)
		return dj_fail(err, n, "%s.Isolation: '%s' is not supported by cswarm", P,
			       s);
	if ((rv = dj_str(c, "Image", P, &s, err, n)))
		return rv;
	if (!s || !*s)
		return dj_fail(err, n, "%s.Image: required", P);
	free(cs->image != protobuf_c_empty_string ? cs->image : NULL);
	if (!(cs->image = strdup(s)))
		return CS_ENOMEM;
	if ((rv = dj_str(c, "Dir", P, &s, err, n)) ||
	    (s && *s && !(cs->dir = strdup(s))) ||
	    (rv = dj_str(c, "User", P, &s, err, n)) ||
	    (s && *s && !(cs->user = strdup(s))))
		return rv ? rv : CS_ENOMEM;
	if ((rv = dj_container_labels(dj_get(c, "Labels"), cs, err, n)) ||
	    (rv = dj_mounts(dj_get(c, "Mounts"), cs, err, n)) ||
	    (rv = dj_secret_refs(dj_get(c, "Secrets"), false, cs, err, n)) ||
	    (rv = dj_secret_refs(dj_get(c, "Configs"), true, cs, err, n)) ||
	    (rv = dj_strings(c, "Command", P, &cs->n_entrypoint, &cs->entrypoint, err,
			     n)))
		return rv;
	if ((rv = dj_strings(c, "Args", P, &cs->n_command, &cs->command, err, n)) ||
	    (rv = dj_strings(c, "Env", P, &cs->n_env, &cs->env, err, n)) ||
	    (rv = dj_ms(c, "StopGracePeriod", P, &cs->stop_grace_period_ms, NULL, err,
			n)))
		return rv;
	/* Docker's default grace period is the model's 0 (as insertDefaults
	 * shows it): a spec posted back from an insertDefaults inspect (the
	 * CLI's `service update`) is then the same spec, and no task is
	 * replaced for it */
	if (cs->stop_grace_period_ms == DOCKERAPI_STOP_GRACE_DEFAULT_MS)
		cs->stop_grace_period_ms = 0;
	if ((h = dj_get(c, "Healthcheck"))) {
		const char *HP = "TaskTemplate.ContainerSpec.Healthcheck";
		Cs__HealthConfig *hc;
		if ((rv = dj_only(h, HP, hknown, err, n)))
			return rv;
		if (!(hc = cs->healthcheck =
			      DJ_NEW(Cs__HealthConfig, CS__HEALTH_CONFIG__INIT)))
			return CS_ENOMEM;
		if ((rv = dj_strings(h, "Test", HP, &hc->n_test, &hc->test, err, n)) ||
		    (rv = dj_ms(h, "Interval", HP, &hc->interval_ms, NULL, err, n)) ||
		    (rv = dj_ms(h, "Timeout", HP, &hc->timeout_ms, NULL, err, n)) ||
		    (rv = dj_u64(h, "Retries", HP, &hc->retries, NULL, err, n)) ||
		    (rv = dj_ms(h, "StartPeriod", HP, &hc->start_period_ms, NULL, err,
				n)))
			return rv;
	}
	return 0;
}

static int dj_restart(const json_t *r, Cs__TaskSpec *ts, char *err, size_t n)
{
	static const char *const known[] = {"Condition", "Delay", "MaxAttempts", "Window",
					    NULL};
	const char *P = "TaskTemplate.RestartPolicy";
	Cs__RestartPolicy *rp;
	const char *cond;
	bool set;
	int rv;

	if (!(rp = ts->restart = DJ_NEW(Cs__RestartPolicy, CS__RESTART_POLICY__INIT)))
		return CS_ENOMEM;
	rp->delay_ms = 5000; /* Docker's default */
	if (!r)
		return 0;
	if ((rv = dj_only(r, P, known, err, n)) ||
	    (rv = dj_str(r, "Condition", P, &cond, err, n)) ||
	    (rv = dj_ms(r, "Delay", P, &rp->delay_ms, &set, err, n)) ||
	    (rv = dj_u64(r, "MaxAttempts", P, &rp->max_attempts, NULL, err, n)) ||
	    (rv = dj_ms(r, "Window", P, &rp->window_ms, NULL, err, n)))
		return rv;
	if (!cond || !*cond || strcmp(cond, "any") == 0)
		rp->condition = CS__RESTART_POLICY__CONDITION__CONDITION_ANY;
	else if (strcmp(cond, "on-failure") == 0)
		rp->condition = CS__RESTART_POLICY__CONDITION__CONDITION_ON_FAILURE;
	else if (strcmp(cond, "none") == 0)
		rp->condition = CS__RESTART_POLICY__CONDITION__CONDITION_NONE;
	else
		return dj_fail(err, n,
			       "%s.Condition: '%s' (expected any, on-failure or none)", P,
			       cond);
	return 0;
}

static int dj_placement(const json_t *p, Cs__TaskSpec *ts, char *err, size_t n)
{
	static const char *const known[] = {"Constraints", "Preferences", "MaxReplicas",
					    NULL};
	const char *P = "TaskTemplate.Placement";
	Cs__Placement *pl;
	json_t *prefs, *x;
	size_t i;
	int rv;

	if (!p || dj_empty(p))
		return 0;
	if ((rv = dj_only(p, P, known, err, n)))
		return rv;
	if (!(pl = ts->placement = DJ_NEW(Cs__Placement, CS__PLACEMENT__INIT)))
		return CS_ENOMEM;
	if ((rv = dj_strings(p, "Constraints", P, &pl->n_constraints, &pl->constraints,
			     err, n)) ||
	    (rv = dj_u64(p, "MaxReplicas", P, &pl->max_replicas_per_node, NULL, err, n)))
		return rv;
	prefs = dj_get(p, "Preferences");
	if (!prefs)
		return 0;
	if (!json_is_array(prefs))
		return dj_fail(err, n, "%s.Preferences: expected an array", P);
	if (json_array_size(prefs) &&
	    !(pl->spread_labels = calloc(json_array_size(prefs), sizeof(char *))))
		return CS_ENOMEM;
	json_array_foreach(prefs, i, x)
	{
		static const char *const pk[] = {"Spread", NULL};
		static const char *const sk[] = {"SpreadDescriptor", NULL};
		char path[64];
		const char *d;
		json_t *spread;

		snprintf(path, sizeof path, "%s.Preferences[%zu]", P, i);
		if ((rv = dj_only(x, path, pk, err, n)))
			return rv;
		spread = dj_get(x, "Spread");
		snprintf(path, sizeof path, "%s.Preferences[%zu].Spread", P, i);
		if ((rv = dj_only(spread, path, sk, err, n)) ||
		    (rv = dj_str(spread, "SpreadDescriptor", path, &d, err, n)))
			return rv;
		if (!d || !*d)
			return dj_fail(err, n, "%s.SpreadDescriptor: required", path);
		if (!(pl->spread_labels[i] = strdup(d)))
			return CS_ENOMEM;
		pl->n_spread_labels = i + 1;
	}
	return 0;
}

/* UpdateConfig or RollbackConfig (path names which); absent: Docker's
 * defaults, unless the service is a job (a job takes none). */
static int dj_update(const json_t *u, const char *P, bool job, Cs__UpdateConfig **out,
		     char *err, size_t n)
{
	static const char *const known[] = {"Parallelism", "Delay", "FailureAction",
					    "Monitor",	   "Order", "MaxFailureRatio",
					    NULL};
	Cs__UpdateConfig *uc;
	const char *fa, *order;
	json_t *ratio;
	bool set;
	int rv;

	if (job && !u)
		return 0;
	if (!(uc = *out = DJ_NEW(Cs__UpdateConfig, CS__UPDATE_CONFIG__INIT)))
		return CS_ENOMEM;
	uc->parallelism = 1;
	uc->monitor_ms = 5000;
	if (!u)
		return 0;
	uc->parallelism = 0; /* given and 0: all at once, as Docker's */
	if ((rv = dj_only(u, P, known, err, n)) ||
	    (rv = dj_u64(u, "Parallelism", P, &uc->parallelism, NULL, err, n)) ||
	    (rv = dj_ms(u, "Delay", P, &uc->delay_ms, NULL, err, n)) ||
	    (rv = dj_ms(u, "Monitor", P, &uc->monitor_ms, &set, err, n)) ||
	    (rv = dj_str(u, "FailureAction", P, &fa, err, n)) ||
	    (rv = dj_str(u, "Order", P, &order, err, n)))
		return rv;
	if (!uc->monitor_ms)
		uc->monitor_ms = 5000; /* 0: the default, as SwarmKit reads it */
	if (!fa || !*fa || strcmp(fa, "pause") == 0)
		uc->failure_action =
			CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_PAUSE;
	else if (strcmp(fa, "continue") == 0)
		uc->failure_action =
			CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_CONTINUE;
	else if (strcmp(fa, "rollback") == 0)
		uc->failure_action =
			CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_ROLLBACK;
	else
		return dj_fail(err, n,
			       "%s.FailureAction: '%s' (expected pause, continue or "
			       "rollback)",
			       P, fa);
	if (!order || !*order || strcmp(order, "stop-first") == 0)
		uc->order = CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST;
	else if (strcmp(order, "start-first") == 0)
		uc->order = CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST;
	else
		return dj_fail(err, n,
			       "%s.Order: '%s' (expected stop-first or start-first)", P,
			       order);
	if ((ratio = dj_get(u, "MaxFailureRatio"))) {
		double r;
		if (!json_is_number(ratio))
			return dj_fail(err, n, "%s.MaxFailureRatio: expected a number",
				       P);
		r = json_number_value(ratio);
		if (r < 0 || r > 1)
			return dj_fail(err, n, "%s.MaxFailureRatio: %g (expected 0 to 1)",
				       P, r);
		uc->max_failure_ratio_ppm = (uint32_t)(r * 1000000 + 0.5);
	}
	return 0;
}

static int dj_mode(const json_t *m, Cs__ServiceSpec *s, char *err, size_t n)
{
	static const char *const known[] = {"Replicated", "Global", "ReplicatedJob",
					    "GlobalJob", NULL};
	static const char *const rk[] = {"Replicas", NULL};
	static const char *const jk[] = {"MaxConcurrent", "TotalCompletions", NULL};
	static const char *const none[] = {NULL};
	json_t *v;
	bool set;
	int rv, modes = 0;

	s->replicas = 1;
	if (!m)
		return 0;
	if ((rv = dj_only(m, "Mode", known, err, n)))
		return rv;
	modes = !!dj_get(m, "Replicated") + !!dj_get(m, "Global") +
		!!dj_get(m, "ReplicatedJob") + !!dj_get(m, "GlobalJob");
	if (modes > 1)
		return dj_fail(err, n, "Mode: more than one mode");
	if ((v = dj_get(m, "Replicated"))) {
		if ((rv = dj_only(v, "Mode.Replicated", rk, err, n)) ||
		    (rv = dj_u64(v, "Replicas", "Mode.Replicated", &s->replicas, &set,
				 err, n)))
			return rv;
		if (!set)
			s->replicas = 1;
	} else if ((v = dj_get(m, "Global"))) {
		if ((rv = dj_only(v, "Mode.Global", none, err, n)))
			return rv;
		s->global = true;
		s->replicas = 0;
	} else if ((v = dj_get(m, "ReplicatedJob"))) {
		s->job = true;
		if ((rv = dj_only(v, "Mode.ReplicatedJob", jk, err, n)) ||
		    (rv = dj_u64(v, "TotalCompletions", "Mode.ReplicatedJob",
				 &s->replicas, &set, err, n)) ||
		    (rv = dj_u64(v, "MaxConcurrent", "Mode.ReplicatedJob",
				 &s->max_concurrent, NULL, err, n)))
			return rv;
		if (!set)
			s->replicas = 1;
	} else if ((v = dj_get(m, "GlobalJob"))) {
		if ((rv = dj_only(v, "Mode.GlobalJob", none, err, n)))
			return rv;
		s->job = s->global = true;
		s->replicas = 0;
	}
	return 0;
}

/* TaskTemplate.Networks (or the older top-level Networks, path names
 * which): [{"Target": name or id, "Aliases": [...]}] into s->networks.
 * Targets are kept as given; the handlers turn an id into its name. */
static int dj_networks(const json_t *a, const char *path, Cs__ServiceSpec *s, char *err,
		       size_t n)
{
	static const char *const known[] = {"Target", "Aliases", NULL};
	json_t *x;
	size_t i;
	int rv;

	if (!a || dj_empty(a))
		return 0;
	if (!json_is_array(a))
		return dj_fail(err, n, "%s: expected an array", path);
	if (s->n_networks)
		return dj_fail(err, n, "%s: networks given twice", path);
	if (json_array_size(a) > LIMIT_SERVICE_NETWORKS_MAX)
		return dj_fail(err, n, "%s: more than %u networks", path,
			       LIMIT_SERVICE_NETWORKS_MAX);
	if (!(s->networks = calloc(json_array_size(a), sizeof *s->networks)))
		return CS_ENOMEM;
	json_array_foreach(a, i, x)
	{
		Cs__NetworkAttachmentConfig *nc;
		char p[64];
		const char *t;

		snprintf(p, sizeof p, "%s[%zu]", path, i);
		if ((rv = dj_only(x, p, known, err, n)) ||
		    (rv = dj_str(x, "Target", p, &t, err, n)))
			return rv;
		if (!t || !*t)
			return dj_fail(err, n, "%s.Target: required", p);
		if (!(nc = s->networks[i] = DJ_NEW(Cs__NetworkAttachmentConfig,
						   CS__NETWORK_ATTACHMENT_CONFIG__INIT)))
			return CS_ENOMEM;
		s->n_networks = i + 1;
		if (!(nc->target = strdup(t)))
			return CS_ENOMEM;
		if ((rv = dj_strings(x, "Aliases", p, &nc->n_aliases, &nc->aliases, err,
				     n)))
			return rv;
	}
	return 0;
}

/* An object's "Labels" (an object of strings, or null) into *labels and
 * *count (owned by the message they belong to: freed with it, also after
 * an error). */
static int dj_label_list(const json_t *l, Cs__Label ***labels, size_t *count, char *err,
			 size_t n)
{
	const char *k;
	json_t *v;
	size_t i = 0;

	if (!l || json_is_null(l))
		return 0;
	if (!json_is_object(l))
		return dj_fail(err, n, "Labels: expected an object");
	if (json_object_size(l) &&
	    !(*labels = calloc(json_object_size(l), sizeof **labels)))
		return CS_ENOMEM;
	json_object_foreach((json_t *)l, k, v)
	{
		Cs__Label *lb;
		if (!json_is_string(v))
			return dj_fail(err, n, "Labels.%s: expected a string", k);
		if (!(lb = (*labels)[i] = DJ_NEW(Cs__Label, CS__LABEL__INIT)))
			return CS_ENOMEM;
		*count = ++i;
		if (!(lb->key = strdup(k)) || !(lb->value = strdup(json_string_value(v))))
			return CS_ENOMEM;
	}
	return 0;
}

/* The service's labels, into s->labels. */
static int dj_labels(const json_t *l, Cs__ServiceSpec *s, char *err, size_t n)
{
	return dj_label_list(l, &s->labels, &s->n_labels, err, n);
}

/* Issue 20: Docker's ServiceSpec has no field for rebalancing, so it rides
 * on two service labels, kept among the labels as given:
 * com.cswarm.rebalance=true|false and com.cswarm.rebalance.parallelism=N. */
#define DAPI_LABEL_REBALANCE		 "com.cswarm.rebalance"
#define DAPI_LABEL_REBALANCE_PARALLELISM "com.cswarm.rebalance.parallelism"

static int dj_rebalance_labels(Cs__ServiceSpec *s, char *err, size_t n)
{
	for (size_t i = 0; i < s->n_labels; i++) {
		const char *k = s->labels[i]->key, *v = s->labels[i]->value;
		char *end = NULL;
		if (strcmp(k, DAPI_LABEL_REBALANCE) == 0) {
			if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
				return dj_fail(err, n,
					       "Labels.%s: expected true or false", k);
			s->rebalance = strcmp(v, "true") == 0;
		} else if (strcmp(k, DAPI_LABEL_REBALANCE_PARALLELISM) == 0) {
			unsigned long long u;
			if (*v < '0' || *v > '9')
				return dj_fail(err, n, "Labels.%s: expected a number", k);
			u = strtoull(v, &end, 10);
			if (*end || u > LIMIT_SCN_REPLICAS_MAX)
				return dj_fail(err, n,
					       "Labels.%s: expected a number up to %u", k,
					       LIMIT_SCN_REPLICAS_MAX);
			s->rebalance_parallelism = u;
		}
	}
	return 0;
}

static int dj_spec(const json_t *j, Cs__ServiceSpec *s, char *err, size_t n)
{
	static const char *const known[] = {
		"Name",		"TaskTemplate",	  "Mode",
		"UpdateConfig", "RollbackConfig", "EndpointSpec",
		"Labels",	"Networks",	  NULL};
	static const char *const tknown[] = {
		"ContainerSpec", "Resources", "RestartPolicy", "Placement",
		"ForceUpdate",	 "Runtime",   "Networks",      NULL};
	static const char *const rknown[] = {"Limits", "Reservations", NULL};
	static const char *const eknown[] = {"Mode", NULL};
	const char *name, *s_rt, *emode;
	json_t *tt, *res, *ep;
	Cs__TaskSpec *ts;
	int rv;

	if (!json_is_object(j))
		return dj_fail(err, n, "the body is not a JSON object (a ServiceSpec)");
	if ((rv = dj_only(j, "", known, err, n)))
		return rv;
	if ((rv = dj_str(j, "Name", "", &name, err, n)))
		return rv;
	if (!name || !*name)
		return dj_fail(err, n, "Name: required (cswarm does not draw names)");
	if (!(s->name = strdup(name)))
		return CS_ENOMEM;
	if ((rv = dj_labels(dj_get(j, "Labels"), s, err, n)) ||
	    (rv = dj_rebalance_labels(s, err, n)))
		return rv;
	if ((ep = dj_get(j, "EndpointSpec"))) {
		if ((rv = dj_only(ep, "EndpointSpec", eknown, err, n)) ||
		    (rv = dj_str(ep, "Mode", "EndpointSpec", &emode, err, n)))
			return rv;
		if (emode && *emode && strcmp(emode, "vip") != 0)
			return dj_fail(
				err, n,
				"EndpointSpec.Mode: '%s' is not supported by cswarm",
				emode);
	}
	if ((rv = dj_mode(dj_get(j, "Mode"), s, err, n)))
		return rv;
	tt = dj_get(j, "TaskTemplate");
	if (!tt)
		return dj_fail(err, n, "TaskTemplate: required");
	if ((rv = dj_only(tt, "TaskTemplate", tknown, err, n)))
		return rv;
	if ((rv = dj_str(tt, "Runtime", "TaskTemplate", &s_rt, err, n)))
		return rv;
	if (s_rt && *s_rt && strcmp(s_rt, "container") != 0)
		return dj_fail(err, n,
			       "TaskTemplate.Runtime: '%s' is not supported by cswarm",
			       s_rt);
	if (!(ts = s->task = DJ_NEW(Cs__TaskSpec, CS__TASK_SPEC__INIT)) ||
	    !(ts->container = DJ_NEW(Cs__ContainerSpec, CS__CONTAINER_SPEC__INIT)))
		return CS_ENOMEM;
	if (!dj_get(tt, "ContainerSpec"))
		return dj_fail(err, n, "TaskTemplate.ContainerSpec: required");
	if ((rv = dj_container(dj_get(tt, "ContainerSpec"), ts->container, err, n)))
		return rv;
	if ((res = dj_get(tt, "Resources"))) {
		if ((rv = dj_only(res, "TaskTemplate.Resources", rknown, err, n)) ||
		    (rv = dj_resources(dj_get(res, "Limits"),
				       "TaskTemplate.Resources.Limits", &ts->limits, err,
				       n)) ||
		    (rv = dj_resources(dj_get(res, "Reservations"),
				       "TaskTemplate.Resources.Reservations",
				       &ts->reservations, err, n)))
			return rv;
	}
	if ((rv = dj_networks(dj_get(tt, "Networks"), "TaskTemplate.Networks", s, err,
			      n)) ||
	    (rv = dj_networks(dj_get(j, "Networks"), "Networks", s, err, n)))
		return rv;
	if ((rv = dj_restart(dj_get(tt, "RestartPolicy"), ts, err, n)) ||
	    (rv = dj_placement(dj_get(tt, "Placement"), ts, err, n)) ||
	    (rv = dj_u64(tt, "ForceUpdate", "TaskTemplate", &ts->force_update, NULL, err,
			 n)))
		return rv;
	if ((rv = dj_update(dj_get(j, "UpdateConfig"), "UpdateConfig", s->job, &s->update,
			    err, n)) ||
	    (rv = dj_update(dj_get(j, "RollbackConfig"), "RollbackConfig", s->job,
			    &s->rollback, err, n)))
		return rv;
	return 0;
}

int dockerapi_spec_from_json(const char *body, size_t len, Cs__ServiceSpec **out,
			     char *err, size_t n)
{
	static const Cs__ServiceSpec init = CS__SERVICE_SPEC__INIT;
	json_error_t je;
	json_t *j;
	Cs__ServiceSpec *s;
	int rv;

	*out = NULL;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return dj_fail(err, n, "malformed JSON: %s (at byte %d)", je.text,
			       je.position);
	s = dj_msg(&init, sizeof init);
	if (!s) {
		json_decref(j);
		return CS_ENOMEM;
	}
	rv = dj_spec(j, s, err, n);
	json_decref(j);
	if (rv == CS_ENOMEM)
		snprintf(err, n, "out of memory");
	if (rv) {
		cs__service_spec__free_unpacked(s, NULL);
		return rv;
	}
	*out = s;
	return 0;
}

/* ---------------------------------------------------------------- to JSON */

static void dj_id(char *buf, uint64_t id)
{
	snprintf(buf, 17, "%016" PRIx64, id);
}

static json_t *dj_idj(uint64_t id)
{
	char b[17];
	dj_id(b, id);
	return json_string(b);
}

/* RFC 3339 (UTC, milliseconds) of ms since the epoch; 0: Go's zero time. */
static json_t *dj_time(uint64_t ms)
{
	char b[96];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms || !gmtime_r(&t, &tm))
		return json_string("0001-01-01T00:00:00Z");
	snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ms % 1000));
	return json_string(b);
}

static json_t *dj_strs(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *dj_ns(uint64_t ms)
{
	return json_integer((json_int_t)(ms * NS_PER_MS));
}

static json_t *dj_resources_json(const Cs__Resources *r)
{
	json_t *o = json_object();
	if (o && r) {
		if (r->millicpus)
			json_object_set_new(
				o, "NanoCPUs",
				json_integer((json_int_t)(r->millicpus * NS_PER_MS)));
		if (r->memory_bytes)
			json_object_set_new(o, "MemoryBytes",
					    json_integer((json_int_t)r->memory_bytes));
	}
	return o;
}

static json_t *dj_task_spec_json(const Cs__TaskSpec *ts)
{
	static const char *const conds[] = {"any", "on-failure", "none"};
	json_t *o = json_object(), *c = json_object(), *res = json_object();
	const Cs__ContainerSpec *cs = ts ? ts->container : NULL;

	if (!o || !c || !res) {
		json_decref(o);
		json_decref(c);
		json_decref(res);
		return NULL;
	}
	json_object_set_new(o, "ContainerSpec", c);
	if (cs) {
		json_object_set_new(c, "Image", json_string(cs->image ? cs->image : ""));
		if (cs->n_labels) {
			json_t *l = json_object();
			for (size_t i = 0; l && i < cs->n_labels; i++)
				json_object_set_new(
					l, cs->labels[i]->key,
					json_string(cs->labels[i]->value
							    ? cs->labels[i]->value
							    : ""));
			json_object_set_new(c, "Labels", l);
		}
		if (cs->n_entrypoint)
			json_object_set_new(c, "Command",
					    dj_strs(cs->entrypoint, cs->n_entrypoint));
		if (cs->n_command)
			json_object_set_new(c, "Args",
					    dj_strs(cs->command, cs->n_command));
		if (cs->dir && *cs->dir)
			json_object_set_new(c, "Dir", json_string(cs->dir));
		if (cs->user && *cs->user)
			json_object_set_new(c, "User", json_string(cs->user));
		if (cs->n_mounts) {
			json_t *a = json_array();
			for (size_t i = 0; a && i < cs->n_mounts; i++) {
				const Cs__Mount *m = cs->mounts[i];
				json_t *mj = json_pack(
					"{s:s,s:s,s:s}", "Type",
					m->type == CS__MOUNT__TYPE__TYPE_VOLUME ? "volume"
										: "bind",
					"Source", m->source ? m->source : "", "Target",
					m->target ? m->target : "");
				if (mj && m->read_only)
					json_object_set_new(mj, "ReadOnly", json_true());
				json_array_append_new(a, mj);
			}
			json_object_set_new(c, "Mounts", a);
		}
		/* issue 20: SecretReference / ConfigReference, moby's shape */
		for (int k = 0; k < 2; k++) {
			size_t nr = k ? cs->n_configs : cs->n_secrets;
			Cs__SecretReference **v = k ? cs->configs : cs->secrets;
			json_t *a = nr ? json_array() : NULL;
			for (size_t i = 0; a && i < nr; i++) {
				const Cs__SecretReference *r = v[i];
				json_t *rj = json_object();
				json_object_set_new(
					rj, "File",
					json_pack(
						"{s:s,s:s,s:s,s:I}", "Name",
						r->target && *r->target ? r->target
									: r->secret_name,
						"UID", r->uid && *r->uid ? r->uid : "0",
						"GID", r->gid && *r->gid ? r->gid : "0",
						"Mode",
						(json_int_t)(r->mode ? r->mode : 0444)));
				json_object_set_new(rj, k ? "ConfigID" : "SecretID",
						    dj_idj(r->secret_id));
				json_object_set_new(rj, k ? "ConfigName" : "SecretName",
						    json_string(r->secret_name
									? r->secret_name
									: ""));
				json_array_append_new(a, rj);
			}
			if (a)
				json_object_set_new(c, k ? "Configs" : "Secrets", a);
		}
		if (cs->n_env)
			json_object_set_new(c, "Env", dj_strs(cs->env, cs->n_env));
		if (cs->stop_grace_period_ms)
			json_object_set_new(c, "StopGracePeriod",
					    dj_ns(cs->stop_grace_period_ms));
		if (cs->healthcheck) {
			const Cs__HealthConfig *h = cs->healthcheck;
			json_t *hj = json_object();
			json_object_set_new(hj, "Test", dj_strs(h->test, h->n_test));
			if (h->interval_ms)
				json_object_set_new(hj, "Interval",
						    dj_ns(h->interval_ms));
			if (h->timeout_ms)
				json_object_set_new(hj, "Timeout", dj_ns(h->timeout_ms));
			if (h->retries)
				json_object_set_new(hj, "Retries",
						    json_integer((json_int_t)h->retries));
			if (h->start_period_ms)
				json_object_set_new(hj, "StartPeriod",
						    dj_ns(h->start_period_ms));
			json_object_set_new(c, "Healthcheck", hj);
		}
		json_object_set_new(c, "Isolation", json_string("default"));
	}
	json_object_set_new(o, "Resources", res);
	json_object_set_new(res, "Limits", dj_resources_json(ts ? ts->limits : NULL));
	json_object_set_new(res, "Reservations",
			    dj_resources_json(ts ? ts->reservations : NULL));
	if (ts && ts->restart) {
		json_t *r = json_object();
		unsigned cond = (unsigned)ts->restart->condition;
		json_object_set_new(r, "Condition",
				    json_string(cond < 3 ? conds[cond] : "any"));
		json_object_set_new(r, "Delay", dj_ns(ts->restart->delay_ms));
		json_object_set_new(r, "MaxAttempts",
				    json_integer((json_int_t)ts->restart->max_attempts));
		if (ts->restart->window_ms)
			json_object_set_new(r, "Window", dj_ns(ts->restart->window_ms));
		json_object_set_new(o, "RestartPolicy", r);
	}
	{
		json_t *p = json_object();
		const Cs__Placement *pl = ts ? ts->placement : NULL;
		if (pl && pl->n_constraints)
			json_object_set_new(p, "Constraints",
					    dj_strs(pl->constraints, pl->n_constraints));
		if (pl && pl->n_spread_labels) {
			json_t *a = json_array();
			for (size_t i = 0; i < pl->n_spread_labels; i++)
				json_array_append_new(a, json_pack("{s:{s:s}}", "Spread",
								   "SpreadDescriptor",
								   pl->spread_labels[i]));
			json_object_set_new(p, "Preferences", a);
		}
		if (pl && pl->max_replicas_per_node)
			json_object_set_new(
				p, "MaxReplicas",
				json_integer((json_int_t)pl->max_replicas_per_node));
		json_object_set_new(o, "Placement", p);
	}
	json_object_set_new(o, "ForceUpdate",
			    json_integer((json_int_t)(ts ? ts->force_update : 0)));
	json_object_set_new(o, "Runtime", json_string("container"));
	return o;
}

static json_t *dj_update_json(const Cs__UpdateConfig *u)
{
	static const char *const fas[] = {"pause", "continue", "rollback"};
	json_t *o = json_object();
	unsigned fa = (unsigned)u->failure_action;

	json_object_set_new(o, "Parallelism", json_integer((json_int_t)u->parallelism));
	if (u->delay_ms)
		json_object_set_new(o, "Delay", dj_ns(u->delay_ms));
	json_object_set_new(o, "FailureAction", json_string(fa < 3 ? fas[fa] : "pause"));
	json_object_set_new(o, "Monitor", dj_ns(u->monitor_ms));
	json_object_set_new(o, "MaxFailureRatio",
			    json_real((double)u->max_failure_ratio_ppm / 1000000));
	json_object_set_new(
		o, "Order",
		json_string(u->order == CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST
				    ? "start-first"
				    : "stop-first"));
	return o;
}

json_t *dockerapi_spec_json(const Cs__ServiceSpec *s)
{
	json_t *o = json_object(), *mode;

	if (!o)
		return NULL;
	json_object_set_new(o, "Name", json_string(s->name ? s->name : ""));
	{
		json_t *labels = json_object();
		for (size_t i = 0; labels && i < s->n_labels; i++)
			json_object_set_new(labels, s->labels[i]->key,
					    json_string(s->labels[i]->value
								? s->labels[i]->value
								: ""));
		/* rebalancing set otherwise (swarmctl) shows as its labels */
		if (labels && s->rebalance) {
			char num[24];
			json_object_set_new(labels, DAPI_LABEL_REBALANCE,
					    json_string("true"));
			snprintf(num, sizeof num, "%llu",
				 (unsigned long long)s->rebalance_parallelism);
			if (s->rebalance_parallelism)
				json_object_set_new(labels,
						    DAPI_LABEL_REBALANCE_PARALLELISM,
						    json_string(num));
		}
		json_object_set_new(o, "Labels", labels);
	}
	json_object_set_new(o, "TaskTemplate", dj_task_spec_json(s->task));
	if (s->n_networks) {
		json_t *tt = json_object_get(o, "TaskTemplate"), *a = json_array();
		for (size_t i = 0; a && i < s->n_networks; i++) {
			const Cs__NetworkAttachmentConfig *nc = s->networks[i];
			json_t *x = json_pack("{s:s}", "Target",
					      nc->target ? nc->target : "");
			if (x && nc->n_aliases)
				json_object_set_new(x, "Aliases",
						    dj_strs(nc->aliases, nc->n_aliases));
			json_array_append_new(a, x);
		}
		if (tt)
			json_object_set_new(tt, "Networks", a);
		else
			json_decref(a);
	}
	if (s->job && s->global)
		mode = json_pack("{s:{}}", "GlobalJob");
	else if (s->job)
		mode = json_pack("{s:{s:I,s:I}}", "ReplicatedJob", "MaxConcurrent",
				 (json_int_t)s->max_concurrent, "TotalCompletions",
				 (json_int_t)s->replicas);
	else if (s->global)
		mode = json_pack("{s:{}}", "Global");
	else
		mode = json_pack("{s:{s:I}}", "Replicated", "Replicas",
				 (json_int_t)s->replicas);
	json_object_set_new(o, "Mode", mode);
	if (s->update)
		json_object_set_new(o, "UpdateConfig", dj_update_json(s->update));
	if (s->rollback)
		json_object_set_new(o, "RollbackConfig", dj_update_json(s->rollback));
	json_object_set_new(o, "EndpointSpec", json_pack("{s:s}", "Mode", "vip"));
	return o;
}

/* An UpdateConfig with Docker's defaults. */
static json_t *dj_update_defaults(void)
{
	return json_pack("{s:i,s:s,s:I,s:f,s:s}", "Parallelism", 1, "FailureAction",
			 "pause", "Monitor", (json_int_t)(5000 * NS_PER_MS),
			 "MaxFailureRatio", 0.0, "Order", "stop-first");
}

void dockerapi_insert_defaults(json_t *spec)
{
	json_t *tt = json_object_get(spec, "TaskTemplate"), *mode, *cs;
	bool job;

	if (!json_is_object(tt))
		return;
	cs = json_object_get(tt, "ContainerSpec");
	if (json_is_object(cs) && !json_object_get(cs, "StopGracePeriod"))
		json_object_set_new(cs, "StopGracePeriod",
				    dj_ns(DOCKERAPI_STOP_GRACE_DEFAULT_MS));
	if (!json_object_get(tt, "RestartPolicy"))
		json_object_set_new(tt, "RestartPolicy",
				    json_pack("{s:s,s:I,s:i}", "Condition", "any",
					      "Delay", (json_int_t)(5000 * NS_PER_MS),
					      "MaxAttempts", 0));
	mode = json_object_get(spec, "Mode");
	job = json_object_get(mode, "ReplicatedJob") ||
	      json_object_get(mode, "GlobalJob");
	if (!job && !json_object_get(spec, "UpdateConfig"))
		json_object_set_new(spec, "UpdateConfig", dj_update_defaults());
	if (!job && !json_object_get(spec, "RollbackConfig"))
		json_object_set_new(spec, "RollbackConfig", dj_update_defaults());
	if (!json_object_get(spec, "EndpointSpec"))
		json_object_set_new(spec, "EndpointSpec",
				    json_pack("{s:s}", "Mode", "vip"));
}

json_t *dockerapi_service_json(const Cs__Service *svc)
{
	static const char *const states[] = {"",
					     "updating",
					     "paused",
					     "completed",
					     "rollback_started",
					     "rollback_completed",
					     "rollback_paused"};
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "ID", dj_idj(svc->id));
	json_object_set_new(o, "Version",
			    json_pack("{s:I}", "Index", (json_int_t)svc->version));
	json_object_set_new(o, "CreatedAt", dj_time(svc->created_ms));
	json_object_set_new(o, "UpdatedAt", dj_time(svc->updated_ms));
	if (svc->spec)
		json_object_set_new(o, "Spec", dockerapi_spec_json(svc->spec));
	if (svc->previous_spec)
		json_object_set_new(o, "PreviousSpec",
				    dockerapi_spec_json(svc->previous_spec));
	json_object_set_new(o, "Endpoint", json_pack("{s:{s:s}}", "Spec", "Mode", "vip"));
	if (svc->n_vips) {
		json_t *ep = json_object_get(o, "Endpoint"), *a = json_array();
		for (size_t i = 0; a && i < svc->n_vips; i++)
			json_array_append_new(
				a,
				json_pack("{s:o,s:s}", "NetworkID",
					  dj_idj(svc->vips[i]->network_id), "Addr",
					  svc->vips[i]->addr ? svc->vips[i]->addr : ""));
		if (ep)
			json_object_set_new(ep, "VirtualIPs", a);
		else
			json_decref(a);
	}
	if (svc->update_status && svc->update_status->state &&
	    (unsigned)svc->update_status->state < 7)
		json_object_set_new(o, "UpdateStatus",
				    json_pack("{s:s,s:s}", "State",
					      states[svc->update_status->state],
					      "Message",
					      svc->update_status->message
						      ? svc->update_status->message
						      : ""));
	if (svc->job_status)
		json_object_set_new(
			o, "JobStatus",
			json_pack("{s:{s:I}}", "JobIteration", "Index",
				  (json_int_t)svc->job_status->job_iteration));
	return o;
}

static const char *const dj_task_states[] = {
	"new",	   "pending",  "assigned", "accepted", "preparing", "ready",  "starting",
	"running", "complete", "shutdown", "failed",   "rejected",  "remove", "orphaned"};

static const char *dj_task_state(int s)
{
	return s >= 0 && (size_t)s < sizeof dj_task_states / sizeof *dj_task_states
		       ? dj_task_states[s]
		       : "unknown";
}

/* The spec task t runs: its own, else its service's of its version. */
static const Cs__TaskSpec *dj_task_spec_of(const Cs__Task *t, const Cs__Service *svc)
{
	if (t->spec)
		return t->spec;
	if (!svc)
		return NULL;
	if (svc->previous_spec && t->spec_version == svc->previous_spec_version &&
	    t->spec_version != svc->spec_version)
		return svc->previous_spec->task;
	return svc->spec ? svc->spec->task : NULL;
}

/* An env clock reading as wall-clock ms (0 stays 0: never). */
static uint64_t dj_wall(uint64_t env_ms, int64_t offset_ms)
{
	return env_ms ? (uint64_t)((int64_t)env_ms + offset_ms) : 0;
}

json_t *dockerapi_task_json(const Cs__Task *t, const Cs__Service *svc, int64_t offset_ms)
{
	json_t *o = json_object(), *st, *spec;
	const Cs__TaskStatus *ts = t->status;
	uint64_t when = dj_wall(ts ? ts->timestamp_ms : 0, offset_ms);
	bool failed;

	if (!o)
		return NULL;
	json_object_set_new(o, "ID", dj_idj(t->id));
	json_object_set_new(o, "Version",
			    json_pack("{s:I}", "Index", (json_int_t)t->version));
	/* the store's times (the leader's wall clock); a status newer than
	 * the record's last write is the agent's (its clock, offset here) */
	json_object_set_new(o, "CreatedAt", dj_time(t->created_ms));
	json_object_set_new(o, "UpdatedAt",
			    dj_time(when > t->updated_ms ? when : t->updated_ms));
	spec = dj_task_spec_json(dj_task_spec_of(t, svc));
	json_object_set_new(o, "Spec", spec);
	json_object_set_new(o, "ServiceID", dj_idj(t->service_id));
	json_object_set_new(o, "Slot", json_integer((json_int_t)t->slot));
	if (t->node_id)
		json_object_set_new(o, "NodeID", dj_idj(t->node_id));
	st = json_object();
	json_object_set_new(st, "Timestamp", dj_time(when));
	json_object_set_new(st, "State",
			    json_string(dj_task_state(ts ? (int)ts->state : 0)));
	json_object_set_new(st, "Message",
			    json_string(ts && ts->message ? ts->message : ""));
	failed = ts && (ts->state == CS__TASK_STATE__TASK_STATE_FAILED ||
			ts->state == CS__TASK_STATE__TASK_STATE_REJECTED);
	if (failed && ts->message && *ts->message)
		json_object_set_new(st, "Err", json_string(ts->message));
	if (ts && ts->container_id && *ts->container_id)
		json_object_set_new(st, "ContainerStatus",
				    json_pack("{s:s,s:i}", "ContainerID",
					      ts->container_id, "ExitCode",
					      (int)ts->exit_code));
	json_object_set_new(o, "Status", st);
	json_object_set_new(o, "DesiredState",
			    json_string(dj_task_state((int)t->desired_state)));
	if (t->job_iteration)
		json_object_set_new(
			o, "JobIteration",
			json_pack("{s:I}", "Index", (json_int_t)t->job_iteration));
	return o;
}

json_t *dockerapi_node_json(const Cs__Node *nd, uint64_t leader_raft_id)
{
	static const char *const avail[] = {"active", "pause", "drain"};
	static const char *const states[] = {"unknown", "down", "ready", "disconnected"};
	json_t *o = json_object(), *labels = json_object(), *desc;
	unsigned a = (unsigned)nd->availability, s = (unsigned)nd->state;

	if (!o || !labels) {
		json_decref(o);
		json_decref(labels);
		return NULL;
	}
	for (size_t i = 0; i < nd->n_labels; i++)
		json_object_set_new(
			labels, nd->labels[i]->key,
			json_string(nd->labels[i]->value ? nd->labels[i]->value : ""));
	json_object_set_new(o, "ID", dj_idj(nd->id));
	json_object_set_new(o, "Version",
			    json_pack("{s:I}", "Index", (json_int_t)nd->version));
	json_object_set_new(o, "CreatedAt", dj_time(nd->created_ms));
	json_object_set_new(o, "UpdatedAt", dj_time(nd->updated_ms));
	json_object_set_new(o, "Spec",
			    json_pack("{s:o,s:s,s:s}", "Labels", labels, "Role",
				      nd->desired_role == CS__NODE_ROLE__NODE_ROLE_MANAGER
					      ? "manager"
					      : "worker",
				      "Availability", a < 3 ? avail[a] : "active"));
	desc = json_pack(
		"{s:s,s:{s:s,s:s},s:{s:I,s:I},s:{s:s}}", "Hostname",
		nd->hostname ? nd->hostname : "", "Platform", "Architecture", "x86_64",
		"OS", "linux", "Resources", "NanoCPUs",
		(json_int_t)(nd->resources ? nd->resources->millicpus * NS_PER_MS : 0),
		"MemoryBytes",
		(json_int_t)(nd->resources ? nd->resources->memory_bytes : 0), "Engine",
		"EngineVersion", "cswarm");
	json_object_set_new(o, "Description", desc);
	json_object_set_new(o, "Status",
			    json_pack("{s:s,s:s}", "State", s < 4 ? states[s] : "unknown",
				      "Message",
				      nd->state_message ? nd->state_message : ""));
	if (nd->role == CS__NODE_ROLE__NODE_ROLE_MANAGER && nd->manager_status)
		json_object_set_new(
			o, "ManagerStatus",
			json_pack("{s:b,s:s,s:s}", "Leader",
				  nd->manager_status->leader ||
					  (leader_raft_id &&
					   nd->manager_status->raft_id == leader_raft_id),
				  "Reachability",
				  nd->state == CS__NODE_STATE__NODE_STATE_READY
					  ? "reachable"
					  : "unreachable",
				  "Addr",
				  nd->manager_status->addr ? nd->manager_status->addr
							   : ""));
	return o;
}

int dockerapi_status(int e)
{
	switch (e) {
	case 0: return 200;
	case CS_ENOENT: return 404;
	case CS_EEXIST: return 409;
	case CS_EINVAL:
	case CS_ELIMIT: return 400;
	case CS_ENOTLEADER:
	case CS_ENOQUORUM:
	case CS_ETIMEDOUT:
	case CS_EUNREACH:
	case CS_EAGAIN:
	case CS_ENOTSUP: return 503;
	default: return 500; /* CS_EVERSION: "update out of sequence" */
	}
}

/* ================================================================ server */

struct dapi_conn {
	uv_pipe_t pipe;
	uv_timer_t timer;
	struct dockerapi *s; /* NULL once the server closed */
	struct dapi_conn *prev, *next;
	http_parser p;
	size_t refs; /* the pipe's, the timer's, a call in flight, a write */
	bool closing, busy, keep_alive;
	int err_status; /* a request refused while parsing (413, 414, 431) */
	size_t head_bytes;
	/* the request being read or served */
	char *url;
	size_t url_len;
	char *body;
	size_t body_len;
	int method;
	char *pending; /* bytes after the request, read while it was served */
	size_t pending_len;
	/* its control calls' answers, in order */
	int step;
	Cs__ControlResponse *resp[DOCKERAPI_CALLS_MAX];
	size_t nresp;
	uint64_t call_id;
	struct dapi_logs *logs;	    /* a logs request being streamed */
	struct dapi_events *events; /* GET /events being streamed (issue 20) */
	/* a stream's client half-closed (client_done): the stream ends where
	 * it would next wait for new lines (stream_waiting: it waits now) */
	bool client_done, stream_waiting;
};

struct dockerapi {
	uv_loop_t *loop;
	uv_pipe_t listener;
	char *path;
	struct dockerapi_backend be;
	struct dapi_conn *conns;
	size_t conn_count;
};

struct dapi_write {
	uv_write_t req;
	struct dapi_conn *c;
	bool close_after;
	char buf[];
};

static void dapi_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dapi_logf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dockerapi: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void dapi_reset(struct dapi_conn *c)
{
	free(c->url);
	free(c->body);
	c->url = c->body = NULL;
	c->url_len = c->body_len = 0;
	c->head_bytes = 0;
	for (size_t i = 0; i < c->nresp; i++)
		cs__control_response__free_unpacked(c->resp[i], NULL);
	c->nresp = 0;
	c->step = 0;
}

static void dapi_logs_free(struct dapi_logs *l);
static void dapi_events_free(struct dapi_events *e);

static void dapi_unref(struct dapi_conn *c)
{
	assert(c->refs > 0);
	if (--c->refs > 0)
		return;
	assert(c->closing);
	dapi_reset(c);
	dapi_logs_free(c->logs);
	dapi_events_free(c->events);
	free(c->pending);
	free(c);
}

static void dapi_closed(uv_handle_t *h)
{
	struct dapi_conn *c = h->data;
	struct dockerapi *s = c->s;

	if (h == (uv_handle_t *)&c->pipe && s) {
		DLIST_UNLINK(s->conns, c);
		assert(s->conn_count > 0);
		s->conn_count--;
		c->s = NULL;
	}
	dapi_unref(c);
}

static void dapi_close(struct dapi_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->pipe, dapi_closed);
	uv_close((uv_handle_t *)&c->timer, dapi_closed);
}

static const char *dapi_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static void dapi_resume(struct dapi_conn *c);

static void dapi_written(uv_write_t *req, int status)
{
	struct dapi_write *w = (struct dapi_write *)req;
	struct dapi_conn *c = w->c;

	if (status < 0 && !c->closing)
		dapi_close(c);
	else if (w->close_after)
		dapi_close(c);
	else if (!c->closing)
		dapi_resume(c);
	free(w);
	dapi_unref(c);
}

/* dapi_send answers the current request: status, a content type and body
 * (len bytes; none for HEAD), then reads the next one or closes. */
static void dapi_send(struct dapi_conn *c, int status, const char *ctype,
		      const char *body, size_t len)
{
	bool close_after = !c->keep_alive || c->err_status;
	bool head = c->method == HTTP_HEAD;
	struct dapi_write *w;
	char hdr[512];
	int hl;
	uv_buf_t b;

	c->busy = false;
	if (c->closing)
		return;
	hl = snprintf(hdr, sizeof hdr,
		      "HTTP/1.1 %d %s\r\n"
		      "Api-Version: " DOCKERAPI_VERSION "\r\n"
		      "Docker-Experimental: false\r\n"
		      "Ostype: linux\r\n"
		      "Server: cswarm\r\n"
		      "Swarm: active/manager\r\n"
		      "Cache-Control: no-cache, no-store, must-revalidate\r\n"
		      "Content-Type: %s\r\n"
		      "Content-Length: %zu\r\n"
		      "%s\r\n",
		      status, dapi_reason(status), ctype, len,
		      close_after ? "Connection: close\r\n" : "");
	assert(hl > 0 && (size_t)hl < sizeof hdr);
	if (head)
		len = 0;
	w = malloc(sizeof *w + (size_t)hl + len);
	if (!w) {
		dapi_logf("answer lost: out of memory");
		dapi_close(c);
		return;
	}
	w->c = c;
	w->close_after = close_after;
	memcpy(w->buf, hdr, (size_t)hl);
	if (len)
		memcpy(w->buf + hl, body, len);
	b = uv_buf_init(w->buf, (unsigned)((size_t)hl + len));
	c->refs++;
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, dapi_written) < 0) {
		free(w);
		c->refs--;
		dapi_close(c);
	}
}

/* dapi_json answers with j (stolen). */
static void dapi_json(struct dapi_conn *c, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		static const char oom[] = "{\"message\":\"out of memory\"}";
		dapi_send(c, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	dapi_send(c, status, "application/json", s, strlen(s));
	free(s);
}

static void dapi_error(struct dapi_conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void dapi_error(struct dapi_conn *c, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dapi_json(c, status, json_pack("{s:s}", "message", msg));
}

/* An error answer from the control API. */
static void dapi_cs_error(struct dapi_conn *c, int rv, const char *why)
{
	int status = dockerapi_status(rv);
	if (rv == CS_EVERSION)
		dapi_error(c, status, "update out of sequence: %s",
			   why && *why ? why : "");
	else if (status == 503 && rv == CS_ENOTSUP)
		dapi_error(c, status, "this node is not a manager yet: %s",
			   why && *why ? why : cs_strerror(rv));
	else
		dapi_error(c, status, "%s", why && *why ? why : cs_strerror(rv));
}

/* ---------------------------------------------------------------- calls */

static void dapi_run(struct dapi_conn *c);

static void dapi_answered(void *data, const Cs__ControlResponse *resp)
{
	struct dapi_conn *c = data;
	size_t len;
	uint8_t *buf;

	if (c->closing) {
		dapi_unref(c);
		return;
	}
	/* a deep copy: resp is borrowed for this callback only */
	len = cs__control_response__get_packed_size(resp);
	buf = malloc(len ? len : 1);
	if (buf) {
		cs__control_response__pack(resp, buf);
		c->resp[c->nresp] = cs__control_response__unpack(NULL, len, buf);
		free(buf);
	}
	if (!buf || !c->resp[c->nresp]) {
		dapi_error(c, 500, "out of memory");
	} else if (resp->status) {
		c->nresp++;
		dapi_cs_error(c, resp->status, resp->error);
	} else {
		c->nresp++;
		c->step++;
		dapi_run(c);
	}
	dapi_unref(c);
}

/* dapi_call sends req to the control API; its answer goes into
 * c->resp[step] and the handler runs again (a failed answer is the
 * request's answer). The last thing a handler does. */
static void dapi_call(struct dapi_conn *c, Cs__ControlRequest *req)
{
	struct dockerapi *s = c->s;
	int rv;

	assert(c->nresp < DOCKERAPI_CALLS_MAX);
	req->id = ++c->call_id;
	c->refs++;
	rv = s->be.call(s->be.data, req, dapi_answered, c);
	if (rv) {
		c->refs--;
		dapi_cs_error(c, rv, rv == CS_ENOTSUP ? "no control API here" : NULL);
	}
}

static void dapi_call_op(struct dapi_conn *c, Cs__ControlOp op, const char *name)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	req.op = op;
	req.name = (char *)(name ? name : "");
	dapi_call(c, &req);
}

/* ---------------------------------------------------------------- query */

static int dapi_hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* dapi_query copies the url-decoded value of the query parameter key into
 * out (n bytes); false when there is none (or it does not fit). */
static bool dapi_query(const char *query, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		if ((size_t)(end - p) >= kl && strncmp(p, key, kl) == 0 &&
		    (p[kl] == '=' || p + kl == end)) {
			const char *v = p[kl] == '=' ? p + kl + 1 : end;
			size_t o = 0;
			for (; v < end; v++) {
				int ch = (unsigned char)*v;
				if (ch == '+')
					ch = ' ';
				else if (ch == '%' && end - v >= 3 &&
					 dapi_hex(v[1]) >= 0 && dapi_hex(v[2]) >= 0) {
					ch = dapi_hex(v[1]) * 16 + dapi_hex(v[2]);
					v += 2;
				}
				if (o + 1 >= n)
					return false;
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			return true;
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

/* The filters parameter: {"key": {"value": true}} or {"key": ["value"]}.
 * *out NULL when there is none; false when it is not JSON. */
static bool dapi_filters(const char *query, json_t **out)
{
	char *buf = malloc(DOCKERAPI_URL_BYTES_MAX);
	json_t *j = NULL;

	*out = NULL;
	if (!buf)
		return false;
	if (dapi_query(query, "filters", buf, DOCKERAPI_URL_BYTES_MAX) && *buf) {
		j = json_loads(buf, 0, NULL);
		if (!j || !json_is_object(j)) {
			json_decref(j);
			free(buf);
			return false;
		}
	}
	free(buf);
	*out = j;
	return true;
}

/* The values of filter key (an object's keys or an array's strings). */
static size_t dapi_filter_values(const json_t *f, const char *key, const char **vals,
				 size_t max)
{
	json_t *v = f ? json_object_get(f, key) : NULL, *x;
	size_t n = 0, i;
	const char *k;

	if (json_is_object(v)) {
		json_object_foreach(v, k, x)
		{
			if (n < max && json_is_true(x))
				vals[n++] = k;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			if (n < max && json_is_string(x))
				vals[n++] = json_string_value(x);
		}
	}
	return n;
}

/* Whether filters has only keys of known (else err names the first). */
static bool dapi_filters_known(const json_t *f, const char *const *known,
			       const char **bad)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)f, k, v)
	{
		size_t i;
		for (i = 0; known[i]; i++)
			if (strcmp(known[i], k) == 0)
				break;
		if (!known[i]) {
			*bad = k;
			return false;
		}
	}
	return true;
}

/* Whether hex id matches v: the whole id or a prefix of it. */
static bool dapi_id_match(uint64_t id, const char *v, bool prefix)
{
	char b[17];
	size_t n = strlen(v);
	dj_id(b, id);
	return prefix ? n > 0 && n <= 16 && strncmp(b, v, n) == 0 : strcmp(b, v) == 0;
}

/* The service key names in a SERVICE_LIST answer: a whole id, a name, or a
 * unique id prefix. NULL with *ambiguous when several ids start so. */
static const Cs__Service *dapi_find_service(const Cs__ControlResponse *r, const char *key,
					    bool *ambiguous)
{
	const Cs__Service *hit = NULL;
	size_t hits = 0;

	*ambiguous = false;
	for (size_t i = 0; i < r->n_services; i++)
		if (dapi_id_match(r->services[i]->id, key, false))
			return r->services[i];
	for (size_t i = 0; i < r->n_services; i++)
		if (r->services[i]->spec && strcmp(r->services[i]->spec->name, key) == 0)
			return r->services[i];
	for (size_t i = 0; i < r->n_services; i++)
		if (dapi_id_match(r->services[i]->id, key, true)) {
			hit = r->services[i];
			hits++;
		}
	*ambiguous = hits > 1;
	return hits == 1 ? hit : NULL;
}

static const Cs__Node *dapi_find_node(const Cs__ControlResponse *r, const char *key)
{
	const Cs__Node *hit = NULL;
	size_t hits = 0;

	for (size_t i = 0; i < r->n_nodes; i++)
		if (dapi_id_match(r->nodes[i]->id, key, false) ||
		    (r->nodes[i]->hostname && strcmp(r->nodes[i]->hostname, key) == 0))
			return r->nodes[i];
	for (size_t i = 0; i < r->n_nodes; i++)
		if (dapi_id_match(r->nodes[i]->id, key, true)) {
			hit = r->nodes[i];
			hits++;
		}
	return hits == 1 ? hit : NULL;
}

/* Whether labels (n of them) pass a "label" filter: every value, "KEY"
 * (present) or "KEY=VALUE", must match (Docker's MatchKVList). */
static bool dapi_labels_ok(Cs__Label *const *labels, size_t n, const json_t *f)
{
	const char *v[16];
	size_t nv = dapi_filter_values(f, "label", v, 16);

	for (size_t k = 0; k < nv; k++) {
		const char *eq = strchr(v[k], '=');
		size_t kl = eq ? (size_t)(eq - v[k]) : strlen(v[k]);
		bool hit = false;
		for (size_t i = 0; !hit && i < n; i++) {
			const char *key = labels[i]->key ? labels[i]->key : "";
			const char *val = labels[i]->value ? labels[i]->value : "";
			hit = strlen(key) == kl && strncmp(key, v[k], kl) == 0 &&
			      (!eq || strcmp(val, eq + 1) == 0);
		}
		if (!hit)
			return false;
	}
	return true;
}

/* The network key names in a NETWORK_LIST answer: a whole id, a name, or a
 * unique id prefix (NULL with *ambiguous when several ids start so). */
static const Cs__Network *dapi_find_network(const Cs__ControlResponse *r, const char *key,
					    bool *ambiguous)
{
	const Cs__Network *hit = NULL;
	size_t hits = 0;

	*ambiguous = false;
	for (size_t i = 0; i < r->n_networks; i++)
		if (dapi_id_match(r->networks[i]->id, key, false))
			return r->networks[i];
	for (size_t i = 0; i < r->n_networks; i++)
		if (r->networks[i]->spec && r->networks[i]->spec->name &&
		    strcmp(r->networks[i]->spec->name, key) == 0)
			return r->networks[i];
	for (size_t i = 0; i < r->n_networks; i++)
		if (dapi_id_match(r->networks[i]->id, key, true)) {
			hit = r->networks[i];
			hits++;
		}
	*ambiguous = hits > 1;
	return hits == 1 ? hit : NULL;
}

/* The networks of spec named by id (or an id prefix) get the name instead:
 * the store keeps the names the control API resolves (the CLI's `service
 * create --network` sends ids, `stack deploy` names). 0, or CS_ENOMEM. */
static int dapi_network_names(Cs__ServiceSpec *spec, const Cs__ControlResponse *nets)
{
	for (size_t i = 0; i < spec->n_networks; i++) {
		Cs__NetworkAttachmentConfig *nc = spec->networks[i];
		const Cs__Network *nw;
		bool amb;
		char *name;

		nw = dapi_find_network(nets, nc->target, &amb);
		if (!nw || !nw->spec || !nw->spec->name ||
		    strcmp(nw->spec->name, nc->target) == 0)
			continue;
		if (!(name = strdup(nw->spec->name)))
			return CS_ENOMEM;
		free(nc->target);
		nc->target = name;
	}
	return 0;
}

/* ---------------------------------------------------------------- endpoints */

/* The service of task t in a SERVICE_LIST answer, or NULL. */
static const Cs__Service *dapi_service_of(const Cs__ControlResponse *svcs,
					  const Cs__Task *t)
{
	for (size_t i = 0; i < svcs->n_services; i++)
		if (svcs->services[i]->id == t->service_id)
			return svcs->services[i];
	return NULL;
}

/* Wall-clock ms minus the env's clock (libuv's, monotonic) here. Task
 * times are the agents' env clock readings: right as wall-clock times for
 * agents on this machine only (the model has no wall-clock times yet). */
static int64_t dapi_clock_offset(const struct dapi_conn *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
	       (int64_t)uv_now(c->s->loop);
}

/* The leader's raft id in a CLUSTER_INSPECT answer (0: unknown). */
static uint64_t dapi_leader(const Cs__ControlResponse *cl)
{
	return cl && cl->cluster ? cl->cluster->leader_raft_id : 0;
}

struct dapi_route {
	const char *path;  /* after the version prefix, before the query */
	const char *query; /* "" when none */
	const char *arg;   /* the {id} of /services/{id}..., or NULL */
};

static void dapi_ping(struct dapi_conn *c)
{
	dapi_send(c, 200, "text/plain; charset=utf-8", "OK", 2);
}

static void dapi_version(struct dapi_conn *c)
{
	json_t *j =
		json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:{s:s,s:s,s:s,s:s,"
			  "s:s}}]}",
			  "Version", "cswarm", "ApiVersion", DOCKERAPI_VERSION,
			  "MinAPIVersion", DOCKERAPI_MIN_VERSION, "Os", "linux", "Arch",
			  "amd64", "GitCommit", "", "GoVersion", "", "Components", "Name",
			  "Engine", "Version", "cswarm", "Details", "ApiVersion",
			  DOCKERAPI_VERSION, "MinAPIVersion", DOCKERAPI_MIN_VERSION, "Os",
			  "linux", "Arch", "amd64", "Experimental", "false");
	dapi_json(c, 200, j);
}

/* The Docker Swarm object of the cluster (ClusterInfo): what cswarm keeps
 * of it; the spec's other parts are Docker's zero values. */
static json_t *dapi_cluster_json(const Cs__Cluster *cl)
{
	const Cs__ClusterSettings *set = cl->settings;
	uint64_t expiry = set && set->cert_expiry_ms ? set->cert_expiry_ms
						     : 90ull * 24 * 3600 * 1000;

	return json_pack(
		"{s:o,s:{s:I},s:o,s:o,s:{s:s,s:{},s:{s:I},s:{},s:{},s:{s:I},s:{},"
		"s:{s:b}},s:b}",
		"ID", dj_idj(cl->id), "Version", "Index", (json_int_t)cl->version,
		"CreatedAt", dj_time(0), "UpdatedAt", dj_time(0), "Spec", "Name",
		"default", "Labels", "Orchestration", "TaskHistoryRetentionLimit",
		(json_int_t)(set ? set->task_history : 0), "Raft", "Dispatcher",
		"CAConfig", "NodeCertExpiry", (json_int_t)(expiry * NS_PER_MS),
		"TaskDefaults", "EncryptionConfig", "AutoLockManagers", cl->autolock,
		"RootRotationInProgress",
		cl->ca_rotation != CS__CA_ROTATION_PHASE__CA_ROTATION_NONE);
}

/* Whether two JSON values say the same, an absent member being the same
 * as an empty one (Go's omitempty drops what this server sent). */
static bool dj_same(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;

	if (dj_empty(a) && dj_empty(b))
		return true;
	if (!a || !b)
		return false;
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if (json_is_object(a) && json_is_object(b)) {
		json_object_foreach((json_t *)a, k, v)
		{
			if (!dj_same(v, json_object_get(b, k)))
				return false;
		}
		json_object_foreach((json_t *)b, k, v)
		{
			if (!dj_same(json_object_get(a, k), v))
				return false;
		}
		return true;
	}
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!dj_same(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	return json_equal((json_t *)a, (json_t *)b);
}

static void dapi_info(struct dapi_conn *c)
{
	const struct dockerapi_backend *be = &c->s->be;
	const Cs__ControlResponse *nodes, *cl;
	uint64_t self = be->self_id ? be->self_id(be->data) : 0;
	json_t *managers, *sw, *j;
	size_t nmanagers = 0;
	char self_hex[17];

	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL);
	if (c->step == 1)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT, NULL);
	nodes = c->resp[0];
	cl = c->resp[1];
	managers = json_array();
	for (size_t i = 0; i < nodes->n_nodes; i++) {
		const Cs__Node *nd = nodes->nodes[i];
		if (nd->role != CS__NODE_ROLE__NODE_ROLE_MANAGER)
			continue;
		nmanagers++;
		json_array_append_new(
			managers, json_pack("{s:o,s:s}", "NodeID", dj_idj(nd->id), "Addr",
					    nd->manager_status && nd->manager_status->addr
						    ? nd->manager_status->addr
						    : ""));
	}
	dj_id(self_hex, self);
	sw = json_pack("{s:s,s:s,s:s,s:b,s:s,s:o,s:I,s:I}", "NodeID",
		       self ? self_hex : "", "NodeAddr", "", "LocalNodeState", "active",
		       "ControlAvailable", 1, "Error", "", "RemoteManagers", managers,
		       "Nodes", (json_int_t)nodes->n_nodes, "Managers",
		       (json_int_t)nmanagers);
	if (sw && cl->cluster) {
		json_object_set_new(sw, "Cluster", dapi_cluster_json(cl->cluster));
	}
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:[]}", "ID",
		      self ? self_hex : "", "Name", be->hostname ? be->hostname : "",
		      "OSType", "linux", "OperatingSystem", "cswarm", "Architecture",
		      "x86_64", "ServerVersion", "cswarm", "Driver", "cswarm", "Swarm",
		      sw, "Warnings");
	/* the agents' dockerd enforce limits: no "no memory limit support"
	 * warnings from the CLI about cswarm itself */
	if (j) {
		static const char *const feats[] = {
			"MemoryLimit",	    "SwapLimit",      "OomKillDisable",
			"CpuCfsPeriod",	    "CpuCfsQuota",    "CPUShares",
			"CPUSet",	    "IPv4Forwarding", "BridgeNfIptables",
			"BridgeNfIp6tables"};
		uint64_t mcpu = 0, mem = 0;
		for (size_t i = 0; i < sizeof feats / sizeof *feats; i++)
			json_object_set_new(j, feats[i], json_true());
		for (size_t i = 0; i < nodes->n_nodes; i++)
			if (nodes->nodes[i]->resources) {
				mcpu += nodes->nodes[i]->resources->millicpus;
				mem += nodes->nodes[i]->resources->memory_bytes;
			}
		json_object_set_new(j, "NCPU", json_integer((json_int_t)(mcpu / 1000)));
		json_object_set_new(j, "MemTotal", json_integer((json_int_t)mem));
	}
	dapi_json(c, 200, j);
}

static void dapi_node_list(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const known[] = {"id", "name", "role", "membership", NULL};
	const Cs__ControlResponse *nodes;
	const char *ids[16], *names[16], *roles[4], *bad = NULL;
	size_t nid, nname, nrole;
	json_t *f, *a;

	if (!dapi_filters(r->query, &f))
		return dapi_error(c, 400, "filters: malformed JSON");
	if (f && !dapi_filters_known(f, known, &bad)) {
		dapi_error(c, 400, "invalid filter '%s'", bad);
		json_decref(f);
		return;
	}
	if (c->step < 2) {
		json_decref(f);
		return dapi_call_op(c,
				    c->step == 0
					    ? CS__CONTROL_OP__CONTROL_OP_NODE_LIST
					    : CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT,
				    NULL);
	}
	nodes = c->resp[0];
	nid = dapi_filter_values(f, "id", ids, 16);
	nname = dapi_filter_values(f, "name", names, 16);
	nrole = dapi_filter_values(f, "role", roles, 4);
	a = json_array();
	for (size_t i = 0; a && i < nodes->n_nodes; i++) {
		const Cs__Node *nd = nodes->nodes[i];
		bool ok = !nid, okn = !nname, okr = !nrole;
		for (size_t k = 0; k < nid; k++)
			ok |= dapi_id_match(nd->id, ids[k], true);
		for (size_t k = 0; k < nname; k++)
			okn |= nd->hostname &&
			       strncmp(nd->hostname, names[k], strlen(names[k])) == 0;
		for (size_t k = 0; k < nrole; k++)
			okr |= strcmp(roles[k],
				      nd->role == CS__NODE_ROLE__NODE_ROLE_MANAGER
					      ? "manager"
					      : "worker") == 0;
		if (ok && okn && okr)
			json_array_append_new(
				a, dockerapi_node_json(nd, dapi_leader(c->resp[1])));
	}
	json_decref(f);
	dapi_json(c, 200, a);
}

static void dapi_node_inspect(struct dapi_conn *c, const struct dapi_route *r)
{
	const Cs__Node *nd;

	if (c->step < 2)
		return dapi_call_op(c,
				    c->step == 0
					    ? CS__CONTROL_OP__CONTROL_OP_NODE_LIST
					    : CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT,
				    NULL);
	nd = dapi_find_node(c->resp[0], r->arg);
	if (!nd)
		return dapi_error(c, 404, "node %s not found", r->arg);
	dapi_json(c, 200, dockerapi_node_json(nd, dapi_leader(c->resp[1])));
}

/* Running and desired tasks of svc (ServiceStatus of ?status=true): the
 * manager's counts in list (SERVICE_LIST with status, issue 18: kept as it
 * applies, Docker's rule) when they hold svc, else counted from tasks (a
 * manager that answers none). */
static json_t *dapi_service_status(const Cs__Service *svc,
				   const Cs__ControlResponse *list,
				   const Cs__ControlResponse *tasks,
				   const Cs__ControlResponse *nodes)
{
	uint64_t running = 0, desired = 0, completed = 0;

	for (size_t i = 0; i < list->n_counts; i++)
		if (list->counts[i]->service_id == svc->id)
			return json_pack(
				"{s:I,s:I,s:I}", "RunningTasks",
				(json_int_t)list->counts[i]->running, "DesiredTasks",
				(json_int_t)list->counts[i]->desired, "CompletedTasks",
				(json_int_t)list->counts[i]->completed);
	for (size_t i = 0; tasks && i < tasks->n_tasks; i++) {
		const Cs__Task *t = tasks->tasks[i];
		if (t->service_id != svc->id)
			continue;
		if (t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING && t->status &&
		    t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING)
			running++;
		if (t->status && t->status->state == CS__TASK_STATE__TASK_STATE_COMPLETE)
			completed++;
		if (svc->spec && svc->spec->global &&
		    t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING)
			desired++;
	}
	if (svc->spec && !svc->spec->global)
		desired = svc->spec->replicas;
	(void)nodes;
	return json_pack("{s:I,s:I,s:I}", "RunningTasks", (json_int_t)running,
			 "DesiredTasks", (json_int_t)desired, "CompletedTasks",
			 (json_int_t)completed);
}

static void dapi_service_list(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const known[] = {"id", "name", "mode", "label", NULL};
	const char *ids[16], *names[16], *modes[4], *bad = NULL;
	size_t nid, nname, nmode;
	char st[8] = "";
	bool status = dapi_query(r->query, "status", st, sizeof st) &&
		      (strcmp(st, "1") == 0 || strcmp(st, "true") == 0);
	json_t *f, *a;

	if (!dapi_filters(r->query, &f))
		return dapi_error(c, 400, "filters: malformed JSON");
	if (f && !dapi_filters_known(f, known, &bad)) {
		dapi_error(c, 400, "invalid filter '%s'", bad);
		json_decref(f);
		return;
	}
	if (c->step == 0) {
		Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
		json_decref(f);
		req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST;
		req.name = "";
		req.status = status; /* the counts, O(services) */
		return dapi_call(c, &req);
	}
	if (status && c->step == 1 && c->resp[0]->n_counts < c->resp[0]->n_services) {
		json_decref(f); /* no counts: every task, counted here */
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_TASK_LIST, NULL);
	}
	nid = dapi_filter_values(f, "id", ids, 16);
	nname = dapi_filter_values(f, "name", names, 16);
	nmode = dapi_filter_values(f, "mode", modes, 4);
	a = json_array();
	for (size_t i = 0; a && i < c->resp[0]->n_services; i++) {
		const Cs__Service *svc = c->resp[0]->services[i];
		const char *name = svc->spec ? svc->spec->name : "";
		const char *mode =
			svc->spec && svc->spec->global ? "global" : "replicated";
		bool ok = !nid, okn = !nname, okm = !nmode;
		json_t *sj;
		for (size_t k = 0; k < nid; k++)
			ok |= dapi_id_match(svc->id, ids[k], true);
		for (size_t k = 0; k < nname; k++)
			okn |= strncmp(name, names[k], strlen(names[k])) == 0;
		for (size_t k = 0; k < nmode; k++)
			okm |= strcmp(mode, modes[k]) == 0;
		if (!ok || !okn || !okm)
			continue;
		if (!dapi_labels_ok(svc->spec ? svc->spec->labels : NULL,
				    svc->spec ? svc->spec->n_labels : 0, f))
			continue;
		sj = dockerapi_service_json(svc);
		if (sj && status)
			json_object_set_new(
				sj, "ServiceStatus",
				dapi_service_status(svc, c->resp[0],
						    c->step > 1 ? c->resp[1] : NULL,
						    NULL));
		json_array_append_new(a, sj);
	}
	json_decref(f);
	dapi_json(c, 200, a);
}

static bool dapi_flag(const char *query, const char *key);

static void dapi_service_inspect(struct dapi_conn *c, const struct dapi_route *r)
{
	const Cs__Service *svc;
	json_t *sj;
	bool amb;

	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST, NULL);
	svc = dapi_find_service(c->resp[0], r->arg, &amb);
	if (!svc)
		return dapi_error(
			c, amb ? 400 : 404,
			amb ? "service %s is ambiguous" : "service %s not found", r->arg);
	sj = dockerapi_service_json(svc);
	if (sj && dapi_flag(r->query, "insertDefaults"))
		dockerapi_insert_defaults(json_object_get(sj, "Spec"));
	dapi_json(c, 200, sj);
}

static void dapi_service_create(struct dapi_conn *c)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec *spec;
	char err[512];
	int rv;

	if (c->step == 2) {
		char id[17];
		dj_id(id, c->resp[1]->created_id);
		return dapi_json(c, 201, json_pack("{s:s,s:[]}", "ID", id, "Warnings"));
	}
	rv = dockerapi_spec_from_json(c->body ? c->body : "", c->body_len, &spec, err,
				      sizeof err);
	if (rv)
		return dapi_error(c, rv == CS_EINVAL ? 400 : 500, "%s", err);
	if (c->step == 0) { /* the networks, to name those given by id */
		cs__service_spec__free_unpacked(spec, NULL);
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST, NULL);
	}
	if (dapi_network_names(spec, c->resp[0])) {
		cs__service_spec__free_unpacked(spec, NULL);
		return dapi_error(c, 500, "out of memory");
	}
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_CREATE;
	req.spec = spec;
	dapi_call(c, &req);
	cs__service_spec__free_unpacked(spec, NULL);
}

static void dapi_service_update(struct dapi_conn *c, const struct dapi_route *r)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__ServiceSpec *spec = NULL;
	const Cs__Service *svc;
	char vbuf[32], rb[32], err[512], *end;
	unsigned long long version;
	bool amb, rollback;
	int rv;

	if (c->step == 3)
		return dapi_json(c, 200, json_pack("{s:[]}", "Warnings"));
	if (!dapi_query(r->query, "version", vbuf, sizeof vbuf) || !*vbuf)
		return dapi_error(c, 400,
				  "invalid service version: the version parameter "
				  "is required");
	errno = 0;
	version = strtoull(vbuf, &end, 10);
	if (*end || errno || !version)
		return dapi_error(c, 400, "invalid service version '%s'", vbuf);
	rollback = dapi_query(r->query, "rollback", rb, sizeof rb) && *rb;
	if (rollback && strcmp(rb, "previous") != 0)
		return dapi_error(c, 400, "rollback: '%s' (expected previous)", rb);
	if (c->step == 0 || c->step == 1)
		return dapi_call_op(c,
				    c->step == 0
					    ? CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST
					    : CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST,
				    NULL);
	svc = dapi_find_service(c->resp[0], r->arg, &amb);
	if (!svc)
		return dapi_error(
			c, amb ? 400 : 404,
			amb ? "service %s is ambiguous" : "service %s not found", r->arg);
	if (rollback) {
		/* the manager's rollback: its rollback config, ROLLBACK_STARTED
		 * (SwarmKit's rollback=previous) */
		req.rollback = true;
	} else {
		rv = dockerapi_spec_from_json(c->body ? c->body : "", c->body_len, &spec,
					      err, sizeof err);
		if (rv)
			return dapi_error(c, rv == CS_EINVAL ? 400 : 500, "%s", err);
		if (dapi_network_names(spec, c->resp[1])) {
			cs__service_spec__free_unpacked(spec, NULL);
			return dapi_error(c, 500, "out of memory");
		}
		req.spec = spec;
	}
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_UPDATE;
	req.name = svc->spec->name;
	req.version = version;
	/* c->resp[0] (which svc is in) stays until the request ends */
	dapi_call(c, &req);
	if (spec)
		cs__service_spec__free_unpacked(spec, NULL);
}

static void dapi_service_remove(struct dapi_conn *c, const struct dapi_route *r)
{
	const Cs__Service *svc;
	bool amb;

	if (c->step == 2)
		return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST, NULL);
	svc = dapi_find_service(c->resp[0], r->arg, &amb);
	if (!svc)
		return dapi_error(
			c, amb ? 400 : 404,
			amb ? "service %s is ambiguous" : "service %s not found", r->arg);
	dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_SERVICE_REMOVE, svc->spec->name);
}

/* Whether task t passes the filters (services and nodes to resolve
 * names with). */
static bool dapi_task_ok(const Cs__Task *t, const json_t *f,
			 const Cs__ControlResponse *svcs,
			 const Cs__ControlResponse *nodes)
{
	const char *v[16];
	size_t n, k;
	bool ok;

	n = dapi_filter_values(f, "id", v, 16);
	for (k = 0, ok = !n; k < n; k++)
		ok |= dapi_id_match(t->id, v[k], true);
	if (!ok)
		return false;
	n = dapi_filter_values(f, "service", v, 16);
	for (k = 0, ok = !n; k < n; k++) {
		bool amb;
		const Cs__Service *s = dapi_find_service(svcs, v[k], &amb);
		ok |= s && s->id == t->service_id;
	}
	if (!ok)
		return false;
	n = dapi_filter_values(f, "node", v, 16);
	for (k = 0, ok = !n; k < n; k++) {
		const Cs__Node *nd = dapi_find_node(nodes, v[k]);
		ok |= nd && nd->id == t->node_id;
	}
	if (!ok)
		return false;
	n = dapi_filter_values(f, "desired-state", v, 16);
	for (k = 0, ok = !n; k < n; k++)
		ok |= strcmp(v[k], dj_task_state((int)t->desired_state)) == 0;
	if (!ok)
		return false;
	n = dapi_filter_values(f, "_up-to-date", v, 16);
	if (n && strcmp(v[0], "true") == 0) {
		bool amb = false;
		char sid[17];
		const Cs__Service *s;
		dj_id(sid, t->service_id);
		s = dapi_find_service(svcs, sid, &amb);
		if (!s || t->spec_version < s->spec_version)
			return false;
	}
	if (dapi_filter_values(f, "label", v, 1)) {
		/* the labels of the task's service (SwarmKit's ServiceAnnotations) */
		const Cs__Service *s = dapi_service_of(svcs, t);
		if (!s || !s->spec ||
		    !dapi_labels_ok(s->spec->labels, s->spec->n_labels, f))
			return false;
	}
	return true;
}

/* The order of a task list: by slot (node for a global service's), the
 * task meant to run first, then the newest status first. Docker's CLI sorts
 * by slot, then newest CreatedAt first, stably: cswarm has no creation
 * time, so every CreatedAt is the zero time and this order is what it
 * shows (the running task of a slot above its shut down predecessors). */
static int dapi_task_cmp(const void *pa, const void *pb)
{
	const Cs__Task *a = *(const Cs__Task *const *)pa,
		       *b = *(const Cs__Task *const *)pb;
	uint64_t ka = a->slot ? a->slot : a->node_id, kb = b->slot ? b->slot : b->node_id;
	bool ra = a->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
	bool rb = b->desired_state <= CS__TASK_STATE__TASK_STATE_RUNNING;
	uint64_t ta = a->status ? a->status->timestamp_ms : 0;
	uint64_t tb = b->status ? b->status->timestamp_ms : 0;

	if (a->service_id != b->service_id)
		return a->service_id < b->service_id ? -1 : 1;
	if (ka != kb)
		return ka < kb ? -1 : 1;
	if (ra != rb)
		return ra ? -1 : 1;
	if (ta != tb)
		return ta > tb ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static void dapi_task_list(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const known[] = {
		"id",	       "service", "node",  "desired-state",
		"_up-to-date", "name",	  "label", NULL};
	static const Cs__ControlOp ops[] = {CS__CONTROL_OP__CONTROL_OP_TASK_LIST,
					    CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST,
					    CS__CONTROL_OP__CONTROL_OP_NODE_LIST};
	const char *bad = NULL, *names[16];
	size_t nname;
	json_t *f, *a;

	if (!dapi_filters(r->query, &f))
		return dapi_error(c, 400, "filters: malformed JSON");
	if (f && !dapi_filters_known(f, known, &bad)) {
		dapi_error(c, 400, "invalid filter '%s'", bad);
		json_decref(f);
		return;
	}
	if (c->step < 3) {
		json_decref(f);
		return dapi_call_op(c, ops[c->step], NULL);
	}
	nname = dapi_filter_values(f, "name", names, 16);
	qsort(c->resp[0]->tasks, c->resp[0]->n_tasks, sizeof *c->resp[0]->tasks,
	      dapi_task_cmp);
	a = json_array();
	for (size_t i = 0; a && i < c->resp[0]->n_tasks; i++) {
		const Cs__Task *t = c->resp[0]->tasks[i];
		bool okn = !nname;
		for (size_t k = 0; k < nname; k++) {
			char tn[LIMIT_NAME_BYTES_MAX + 32];
			snprintf(tn, sizeof tn, "%s.%" PRIu64,
				 t->service_name ? t->service_name : "", t->slot);
			okn |= strcmp(tn, names[k]) == 0;
		}
		if (okn && dapi_task_ok(t, f, c->resp[1], c->resp[2]))
			json_array_append_new(
				a, dockerapi_task_json(t, dapi_service_of(c->resp[1], t),
						       dapi_clock_offset(c)));
	}
	json_decref(f);
	dapi_json(c, 200, a);
}

static void dapi_task_inspect(struct dapi_conn *c, const struct dapi_route *r)
{
	const Cs__ControlResponse *ts;
	const Cs__Task *hit = NULL;
	size_t hits = 0;

	if (c->step < 2)
		return dapi_call_op(c,
				    c->step == 0
					    ? CS__CONTROL_OP__CONTROL_OP_TASK_LIST
					    : CS__CONTROL_OP__CONTROL_OP_SERVICE_LIST,
				    NULL);
	ts = c->resp[0];
	for (size_t i = 0; i < ts->n_tasks && hits < 2; i++)
		if (dapi_id_match(ts->tasks[i]->id, r->arg, false)) {
			hit = ts->tasks[i];
			hits = 1;
			break;
		} else if (dapi_id_match(ts->tasks[i]->id, r->arg, true)) {
			hit = ts->tasks[i];
			hits++;
		}
	if (hits != 1)
		return dapi_error(c, 404, "task %s not found", r->arg);
	dapi_json(c, 200,
		  dockerapi_task_json(hit, dapi_service_of(c->resp[1], hit),
				      dapi_clock_offset(c)));
}

/* GET /swarm: the cluster, with its join tokens. */
static void dapi_swarm_inspect(struct dapi_conn *c)
{
	const Cs__Cluster *cl;
	json_t *j;

	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT, NULL);
	cl = c->resp[0]->cluster;
	if (!cl)
		return dapi_error(c, 503, "the cluster is not known yet");
	j = dapi_cluster_json(cl);
	if (j)
		json_object_set_new(
			j, "JoinTokens",
			json_pack("{s:s,s:s}", "Worker",
				  cl->worker_token ? cl->worker_token : "", "Manager",
				  cl->manager_token ? cl->manager_token : ""));
	dapi_json(c, 200, j);
}

/* A query flag: true for 1 or true. */
static bool dapi_flag(const char *query, const char *key)
{
	char v[8];
	return dapi_query(query, key, v, sizeof v) &&
	       (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* POST /swarm/update?version=N: token rotation only (rotateWorkerToken,
 * rotateManagerToken); a spec other than what GET /swarm shows is a 400
 * (swarmctl cluster update changes settings), never dropped. */
static void dapi_swarm_update(struct dapi_conn *c, const struct dapi_route *r)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	bool rw = dapi_flag(r->query, "rotateWorkerToken");
	bool rm = dapi_flag(r->query, "rotateManagerToken");
	char vbuf[32], *end;
	unsigned long long version;
	json_t *body, *mine;
	bool same;

	if (c->step == 2)
		return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
	if (dapi_flag(r->query, "rotateManagerUnlockKey"))
		return dapi_error(c, 400,
				  "rotateManagerUnlockKey: not served by cswarm's "
				  "Docker API (swarmctl cluster unlock-key --rotate)");
	if (!dapi_query(r->query, "version", vbuf, sizeof vbuf) || !*vbuf)
		return dapi_error(c, 400,
				  "invalid swarm version: the version parameter is "
				  "required");
	errno = 0;
	version = strtoull(vbuf, &end, 10);
	if (*end || errno)
		return dapi_error(c, 400, "invalid swarm version '%s'", vbuf);
	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_CLUSTER_INSPECT, NULL);
	if (!c->resp[0]->cluster)
		return dapi_error(c, 503, "the cluster is not known yet");
	if (c->resp[0]->cluster->version != version)
		return dapi_error(
			c, 500,
			"update out of sequence: the cluster is at version %llu, "
			"not %llu",
			(unsigned long long)c->resp[0]->cluster->version, version);
	body = json_loadb(c->body ? c->body : "", c->body_len, 0, NULL);
	if (!body)
		return dapi_error(c, 400, "malformed JSON: expected a swarm spec");
	mine = dapi_cluster_json(c->resp[0]->cluster);
	same = mine && dj_same(json_object_get(mine, "Spec"), body);
	json_decref(mine);
	json_decref(body);
	if (!same)
		return dapi_error(c, 400,
				  "Spec: changing the swarm spec is not supported by "
				  "cswarm's Docker API (swarmctl cluster update); only "
				  "token rotation is");
	if (!rw && !rm) /* the same spec, nothing rotated: nothing to do */
		return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
	req.op = CS__CONTROL_OP__CONTROL_OP_CLUSTER_ROTATE_TOKEN;
	req.rotate_worker = rw;
	req.rotate_manager = rm;
	dapi_call(c, &req);
}

/* POST /nodes/{id}/update?version=N: availability, labels and role from a
 * whole NodeSpec. The version is checked against the node as listed just
 * before (the control API's node update takes no version yet: a change
 * between the two can go unnoticed). */
static void dapi_node_update(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const known[] = {"Labels", "Role", "Availability", NULL};
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	const char *role, *avail, *k;
	char vbuf[32], err[256], id[17], *end;
	unsigned long long version;
	const Cs__Node *nd;
	json_t *body, *labels, *v;
	Cs__Label *adds = NULL, **addp = NULL;
	char **rms = NULL;
	bool want_manager;
	int rv;

	if (c->step == 3)
		return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
	if (!dapi_query(r->query, "version", vbuf, sizeof vbuf) || !*vbuf)
		return dapi_error(c, 400,
				  "invalid node version: the version parameter is "
				  "required");
	errno = 0;
	version = strtoull(vbuf, &end, 10);
	if (*end || errno)
		return dapi_error(c, 400, "invalid node version '%s'", vbuf);
	body = json_loadb(c->body ? c->body : "", c->body_len, 0, &(json_error_t){0});
	if (!body || !json_is_object(body)) {
		json_decref(body);
		return dapi_error(c, 400, "malformed JSON: expected a node spec");
	}
	if ((rv = dj_only(body, "", known, err, sizeof err)) ||
	    (rv = dj_str(body, "Role", "", &role, err, sizeof err)) ||
	    (rv = dj_str(body, "Availability", "", &avail, err, sizeof err))) {
		json_decref(body);
		return dapi_error(c, 400, "%s", err);
	}
	labels = dj_get(body, "Labels");
	if (labels && !json_is_object(labels)) {
		json_decref(body);
		return dapi_error(c, 400, "Labels: expected an object");
	}
	if ((role && *role && strcmp(role, "worker") && strcmp(role, "manager")) ||
	    (avail && *avail && strcmp(avail, "active") && strcmp(avail, "pause") &&
	     strcmp(avail, "drain"))) {
		json_decref(body);
		return dapi_error(c, 400,
				  "Role or Availability: unknown value (expected "
				  "worker or manager; active, pause or drain)");
	}
	if (c->step == 0) {
		json_decref(body);
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL);
	}
	nd = dapi_find_node(c->resp[0], r->arg);
	if (!nd) {
		json_decref(body);
		return dapi_error(c, 404, "node %s not found", r->arg);
	}
	dj_id(id, nd->id);
	if (c->step == 1 && nd->version != version) {
		json_decref(body);
		return dapi_error(c, 500,
				  "update out of sequence: node %s is at version %llu, "
				  "not %llu",
				  r->arg, (unsigned long long)nd->version, version);
	}
	want_manager = role && strcmp(role, "manager") == 0;
	if (c->step == 2) {
		bool role_given = role && *role; /* role points into body */
		json_decref(body);
		if (!role_given || want_manager == (nd->desired_role ==
						    CS__NODE_ROLE__NODE_ROLE_MANAGER))
			return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
		req.op = CS__CONTROL_OP__CONTROL_OP_NODE_SET_ROLE;
		req.name = id;
		req.role = want_manager ? CS__NODE_ROLE__NODE_ROLE_MANAGER
					: CS__NODE_ROLE__NODE_ROLE_WORKER;
		return dapi_call(c, &req);
	}
	/* step 1: availability and labels */
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_UPDATE;
	req.name = id;
	if (avail && *avail) {
		req.set_availability = true;
		req.availability =
			strcmp(avail, "drain") == 0
				? CS__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN
			: strcmp(avail, "pause") == 0
				? CS__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE
				: CS__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
	}
	if (json_object_size(labels)) {
		size_t i = 0;
		adds = calloc(json_object_size(labels), sizeof *adds);
		addp = calloc(json_object_size(labels), sizeof *addp);
		if (!adds || !addp)
			goto oom;
		json_object_foreach(labels, k, v)
		{
			cs__label__init(&adds[i]);
			adds[i].key = (char *)k;
			adds[i].value =
				(char *)(json_is_string(v) ? json_string_value(v) : "");
			addp[i] = &adds[i];
			i++;
		}
		req.label_add = addp;
		req.n_label_add = i;
	}
	if (nd->n_labels) {
		rms = calloc(nd->n_labels, sizeof *rms);
		if (!rms)
			goto oom;
		for (size_t i = 0; i < nd->n_labels; i++)
			if (!json_object_get(labels, nd->labels[i]->key))
				rms[req.n_label_rm++] = nd->labels[i]->key;
		req.label_rm = rms;
	}
	dapi_call(c, &req);
	free(adds);
	free(addp);
	free(rms);
	json_decref(body);
	return;
oom:
	free(adds);
	free(addp);
	free(rms);
	json_decref(body);
	dapi_error(c, 500, "out of memory");
}

/* DELETE /nodes/{id}[?force=true] */
static void dapi_node_remove(struct dapi_conn *c, const struct dapi_route *r)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	const Cs__Node *nd;
	char id[17];

	if (c->step == 2)
		return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NODE_LIST, NULL);
	nd = dapi_find_node(c->resp[0], r->arg);
	if (!nd)
		return dapi_error(c, 404, "node %s not found", r->arg);
	dj_id(id, nd->id);
	req.op = CS__CONTROL_OP__CONTROL_OP_NODE_REMOVE;
	req.name = id;
	req.force = dapi_flag(r->query, "force");
	dapi_call(c, &req);
}

/* ---------------------------------------------------------------- networks,
 * secrets, configs (issue 16: what `docker stack deploy/rm` needs) */

json_t *dockerapi_network_json(const Cs__Network *nw)
{
	const Cs__NetworkSpec *sp = nw->spec;
	json_t *o = json_object(), *labels = json_object(), *cfg = json_array();

	if (!o || !labels || !cfg) {
		json_decref(o);
		json_decref(labels);
		json_decref(cfg);
		return NULL;
	}
	for (size_t i = 0; sp && i < sp->n_labels; i++)
		json_object_set_new(
			labels, sp->labels[i]->key,
			json_string(sp->labels[i]->value ? sp->labels[i]->value : ""));
	if (nw->subnet && *nw->subnet)
		json_array_append_new(cfg, json_pack("{s:s,s:s}", "Subnet", nw->subnet,
						     "Gateway",
						     nw->gateway ? nw->gateway : ""));
	json_object_set_new(o, "Name", json_string(sp && sp->name ? sp->name : ""));
	json_object_set_new(o, "Id", dj_idj(nw->id));
	json_object_set_new(o, "Created", dj_time(0));
	json_object_set_new(o, "Scope", json_string("swarm"));
	json_object_set_new(
		o, "Driver",
		json_string(sp && sp->driver && *sp->driver ? sp->driver : "overlay"));
	json_object_set_new(o, "EnableIPv6", json_false());
	json_object_set_new(o, "IPAM",
			    json_pack("{s:s,s:n,s:o}", "Driver", "default", "Options",
				      "Config", cfg));
	json_object_set_new(o, "Internal", json_boolean(sp && sp->internal));
	json_object_set_new(o, "Attachable", json_boolean(sp && sp->attachable));
	json_object_set_new(o, "Ingress", json_boolean(sp && sp->ingress));
	json_object_set_new(o, "ConfigFrom", json_pack("{s:s}", "Network", ""));
	json_object_set_new(o, "ConfigOnly", json_false());
	json_object_set_new(o, "Containers", json_object());
	json_object_set_new(o, "Options", json_object());
	json_object_set_new(o, "Labels", labels);
	if (nw->vni)
		json_object_set_new(json_object_get(o, "Options"),
				    "com.docker.network.driver.overlay.vxlanid_list",
				    json_sprintf("%u", (unsigned)nw->vni));
	if (sp && sp->encrypted) /* issue 17: as Docker shows --opt encrypted */
		json_object_set_new(json_object_get(o, "Options"), "encrypted",
				    json_string(""));
	return o;
}

int dockerapi_network_from_json(const char *body, size_t len, Cs__NetworkSpec **out,
				char *err, size_t n)
{
	static const char *const known[] = {
		"Name",	      "CheckDuplicate", "Driver",  "Scope",   "IPAM", "Internal",
		"Attachable", "Labels",		"Ingress", "Options", NULL};
	static const char *const iknown[] = {"Driver", "Config", NULL};
	static const char *const cknown[] = {"Subnet", "Gateway", NULL};
	static const Cs__NetworkSpec init = CS__NETWORK_SPEC__INIT;
	const char *name, *driver, *scope, *idrv;
	json_error_t je;
	json_t *j, *ipam, *cfg, *opts;
	Cs__NetworkSpec *sp;
	int rv = 0;

	*out = NULL;
	if (!(j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)))
		return dj_fail(err, n, "malformed JSON: %s (at byte %d)", je.text,
			       je.position);
	if (!(sp = dj_msg(&init, sizeof init))) {
		json_decref(j);
		return CS_ENOMEM;
	}
	if (!json_is_object(j)) {
		rv = dj_fail(err, n, "the body is not a JSON object (a NetworkCreate)");
		goto out;
	}
	if ((rv = dj_only(j, "", known, err, n)) ||
	    (rv = dj_str(j, "Name", "", &name, err, n)) ||
	    (rv = dj_str(j, "Driver", "", &driver, err, n)) ||
	    (rv = dj_str(j, "Scope", "", &scope, err, n)))
		goto out;
	if (!name || !*name) {
		rv = dj_fail(err, n, "Name: required");
		goto out;
	}
	if (scope && *scope && strcmp(scope, "swarm") != 0) {
		rv = dj_fail(err, n,
			     "Scope: '%s' is not supported by cswarm (swarm only)",
			     scope);
		goto out;
	}
	if (!(sp->name = strdup(name)) ||
	    !(sp->driver = strdup(driver && *driver ? driver : "overlay"))) {
		rv = CS_ENOMEM;
		goto out;
	}
	sp->internal = json_is_true(dj_get(j, "Internal"));
	sp->attachable = json_is_true(dj_get(j, "Attachable"));
	sp->ingress = json_is_true(dj_get(j, "Ingress"));
	/* issue 17: the driver options (docker network create --opt): only
	 * "encrypted" (any value: Docker's overlay looks for the key) */
	if ((opts = dj_get(j, "Options"))) {
		const char *key;
		json_t *v;
		if (!json_is_object(opts)) {
			rv = dj_fail(err, n, "Options: expected an object");
			goto out;
		}
		json_object_foreach(opts, key, v)
		{
			if (strcmp(key, "encrypted") != 0) {
				rv = dj_fail(err, n,
					     "Options.%s: not supported by cswarm (only "
					     "encrypted)",
					     key);
				goto out;
			}
			if (!json_is_string(v)) {
				rv = dj_fail(err, n, "Options.%s: expected a string",
					     key);
				goto out;
			}
			sp->encrypted = true;
		}
	}
	if ((ipam = dj_get(j, "IPAM"))) {
		if ((rv = dj_only(ipam, "IPAM", iknown, err, n)) ||
		    (rv = dj_str(ipam, "Driver", "IPAM", &idrv, err, n)))
			goto out;
		if (idrv && *idrv && strcmp(idrv, "default") != 0) {
			rv = dj_fail(err, n,
				     "IPAM.Driver: '%s' is not supported by cswarm",
				     idrv);
			goto out;
		}
		cfg = dj_get(ipam, "Config");
		if (cfg && !json_is_array(cfg)) {
			rv = dj_fail(err, n, "IPAM.Config: expected an array");
			goto out;
		}
		if (cfg && json_array_size(cfg) > 1) {
			rv = dj_fail(err, n, "IPAM.Config: cswarm takes one subnet");
			goto out;
		}
		if (cfg && json_array_size(cfg) == 1) {
			json_t *c0 = json_array_get(cfg, 0);
			const char *sub, *gw;
			if ((rv = dj_only(c0, "IPAM.Config[0]", cknown, err, n)) ||
			    (rv = dj_str(c0, "Subnet", "IPAM.Config[0]", &sub, err, n)) ||
			    (rv = dj_str(c0, "Gateway", "IPAM.Config[0]", &gw, err, n)))
				goto out;
			if ((sub && *sub && !(sp->subnet = strdup(sub))) ||
			    (gw && *gw && !(sp->gateway = strdup(gw)))) {
				rv = CS_ENOMEM;
				goto out;
			}
		}
	}
	if ((rv = dj_label_list(dj_get(j, "Labels"), &sp->labels, &sp->n_labels, err, n)))
		goto out;
out:
	json_decref(j);
	if (rv == CS_ENOMEM)
		snprintf(err, n, "out of memory");
	if (rv) {
		cs__network_spec__free_unpacked(sp, NULL);
		return rv;
	}
	*out = sp;
	return 0;
}

static void dapi_network_list(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const known[] = {"driver", "id",   "label", "name",
					    "scope",  "type", NULL};
	const char *v[16], *bad = NULL;
	json_t *f, *a;

	if (!dapi_filters(r->query, &f))
		return dapi_error(c, 400, "filters: malformed JSON");
	if (f && !dapi_filters_known(f, known, &bad)) {
		dapi_error(c, 400, "invalid filter '%s'", bad);
		json_decref(f);
		return;
	}
	if (c->step == 0) {
		json_decref(f);
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST, NULL);
	}
	a = json_array();
	for (size_t i = 0; a && i < c->resp[0]->n_networks; i++) {
		const Cs__Network *nw = c->resp[0]->networks[i];
		const Cs__NetworkSpec *sp = nw->spec;
		const char *name = sp && sp->name ? sp->name : "";
		const char *drv =
			sp && sp->driver && *sp->driver ? sp->driver : "overlay";
		size_t n, k;
		bool ok;

		n = dapi_filter_values(f, "id", v, 16);
		for (k = 0, ok = !n; k < n; k++)
			ok |= dapi_id_match(nw->id, v[k], true);
		if (!ok)
			continue;
		n = dapi_filter_values(f, "name", v, 16);
		for (k = 0, ok = !n; k < n; k++)
			ok |= strstr(name, v[k]) != NULL; /* Docker: a match anywhere */
		if (!ok)
			continue;
		n = dapi_filter_values(f, "driver", v, 16);
		for (k = 0, ok = !n; k < n; k++)
			ok |= strcmp(drv, v[k]) == 0;
		if (!ok)
			continue;
		n = dapi_filter_values(f, "scope", v, 16);
		for (k = 0, ok = !n; k < n; k++)
			ok |= strcmp("swarm", v[k]) == 0;
		if (!ok)
			continue;
		n = dapi_filter_values(f, "type", v, 16);
		for (k = 0, ok = !n; k < n; k++)
			ok |= strcmp("custom", v[k]) == 0;
		if (!ok ||
		    !dapi_labels_ok(sp ? sp->labels : NULL, sp ? sp->n_labels : 0, f))
			continue;
		json_array_append_new(a, dockerapi_network_json(nw));
	}
	json_decref(f);
	dapi_json(c, 200, a);
}

static void dapi_network_inspect(struct dapi_conn *c, const struct dapi_route *r)
{
	const Cs__Network *nw;
	bool amb;

	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST, NULL);
	nw = dapi_find_network(c->resp[0], r->arg, &amb);
	if (!nw)
		return dapi_error(
			c, amb ? 400 : 404,
			amb ? "network %s is ambiguous" : "network %s not found", r->arg);
	dapi_json(c, 200, dockerapi_network_json(nw));
}

static void dapi_network_create(struct dapi_conn *c)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__NetworkSpec *spec;
	char err[512];
	int rv;

	if (c->step == 1) {
		char id[17];
		dj_id(id, c->resp[0]->created_id);
		return dapi_json(c, 201, json_pack("{s:s,s:s}", "Id", id, "Warning", ""));
	}
	rv = dockerapi_network_from_json(c->body ? c->body : "", c->body_len, &spec, err,
					 sizeof err);
	if (rv)
		return dapi_error(c, rv == CS_EINVAL ? 400 : 500, "%s", err);
	req.op = CS__CONTROL_OP__CONTROL_OP_NETWORK_CREATE;
	req.network = spec;
	dapi_call(c, &req);
	cs__network_spec__free_unpacked(spec, NULL);
}

static void dapi_network_remove(struct dapi_conn *c, const struct dapi_route *r)
{
	const Cs__Network *nw;
	bool amb;

	if (c->step == 2)
		return dapi_send(c, 204, "text/plain; charset=utf-8", "", 0);
	if (c->step == 0)
		return dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NETWORK_LIST, NULL);
	nw = dapi_find_network(c->resp[0], r->arg, &amb);
	if (!nw)
		return dapi_error(
			c, amb ? 400 : 404,
			amb ? "network %s is ambiguous" : "network %s not found", r->arg);
	dapi_call_op(c, CS__CONTROL_OP__CONTROL_OP_NETWORK_REMOVE, nw->spec->name);
}

/* ---------------------------------------------------------------- secrets and configs
 * Issue 20 (moby's api/types/swarm/secret.go and config.go): /secrets and
 * /configs, create, list with filters (id, label, name, names), inspect,
 * update (labels only, as SwarmKit allows), delete (refused while a
 * service uses one). A secret's data is never in an answer (the control
 * API never sends it); a config's is, base64 as Docker's. */

static const char dapi_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* data's padded base64, as a JSON string (NULL: out of memory). */
static json_t *dapi_b64_json(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;
	json_t *j;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out[o++] = dapi_b64[v >> 18 & 63];
		out[o++] = dapi_b64[v >> 12 & 63];
		out[o++] = i + 1 < len ? dapi_b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? dapi_b64[v & 63] : '=';
	}
	out[o] = 0;
	j = json_string(out);
	free(out);
	return j;
}

/* Decodes base64 s (padding optional, no whitespace) into a new buffer.
 * Returns 0, CS_EINVAL (not base64) or CS_ENOMEM. */
static int dapi_b64_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s), o = 0;
	uint32_t acc = 0;
	int bits = 0;
	uint8_t *p = malloc(n / 4 * 3 + 3);

	if (!p)
		return CS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *q;
		if (s[i] == '=')
			break;
		q = strchr(dapi_b64, s[i]);
		if (!q || !s[i]) {
			free(p);
			return CS_EINVAL;
		}
		acc = acc << 6 | (uint32_t)(q - dapi_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (uint8_t)(acc >> bits);
		}
	}
	*out = p;
	*len = o;
	return 0;
}

static bool dapi_is_configs(const char *path)
{
	return strncmp(path, "/configs", 8) == 0;
}

/* moby's Secret / Config: ID, Version, CreatedAt, UpdatedAt, Spec {Name,
 * Labels, Data (a config's only)}. */
static json_t *dapi_secret_json(const Cs__Secret *x)
{
	json_t *o = json_object(), *spec = json_object(), *labels = json_object();

	if (!o || !spec || !labels) {
		json_decref(o);
		json_decref(spec);
		json_decref(labels);
		return NULL;
	}
	json_object_set_new(o, "ID", dj_idj(x->id));
	json_object_set_new(o, "Version",
			    json_pack("{s:I}", "Index", (json_int_t)x->version));
	json_object_set_new(o, "CreatedAt", dj_time(x->created_ms));
	json_object_set_new(o, "UpdatedAt", dj_time(x->updated_ms));
	json_object_set_new(spec, "Name", json_string(x->name ? x->name : ""));
	for (size_t i = 0; i < x->n_labels; i++)
		json_object_set_new(
			labels, x->labels[i]->key,
			json_string(x->labels[i]->value ? x->labels[i]->value : ""));
	json_object_set_new(spec, "Labels", labels);
	if (x->config)
		json_object_set_new(spec, "Data",
				    dapi_b64_json(x->data.data, x->data.len));
	json_object_set_new(o, "Spec", spec);
	return o;
}

/* A request about secrets (or configs, as path says). */
static void dapi_secret_call(struct dapi_conn *c, const char *path, Cs__ControlOp op,
			     const char *name)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	req.op = op;
	req.name = (char *)(name ? name : "");
	req.secret_config = dapi_is_configs(path);
	dapi_call(c, &req);
}

static void dapi_secret_list(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const known[] = {"id", "label", "name", "names", NULL};
	const char *v[16], *bad = NULL;
	json_t *f, *a;

	if (!dapi_filters(r->query, &f))
		return dapi_error(c, 400, "filters: malformed JSON");
	if (f && !dapi_filters_known(f, known, &bad)) {
		dapi_error(c, 400, "invalid filter '%s'", bad);
		json_decref(f);
		return;
	}
	if (c->step == 0) {
		json_decref(f);
		return dapi_secret_call(c, r->path,
					CS__CONTROL_OP__CONTROL_OP_SECRET_LIST, NULL);
	}
	a = json_array();
	for (size_t i = 0; a && i < c->resp[0]->n_secrets; i++) {
		const Cs__Secret *x = c->resp[0]->secrets[i];
		const char *name = x->name ? x->name : "";
		size_t n, k;
		bool ok;

		n = dapi_filter_values(f, "id", v, 16);
		for (k = 0, ok = !n; k < n; k++)
			ok |= dapi_id_match(x->id, v[k], true);
		if (!ok)
			continue;
		n = dapi_filter_values(f, "name", v, 16); /* Docker: a prefix */
		for (k = 0, ok = !n; k < n; k++)
			ok |= strncmp(name, v[k], strlen(v[k])) == 0;
		if (!ok)
			continue;
		n = dapi_filter_values(f, "names", v, 16); /* exact names */
		for (k = 0, ok = !n; k < n; k++)
			ok |= strcmp(name, v[k]) == 0;
		if (!ok || !dapi_labels_ok(x->labels, x->n_labels, f))
			continue;
		json_array_append_new(a, dapi_secret_json(x));
	}
	json_decref(f);
	dapi_json(c, 200, a);
}

static void dapi_secret_inspect(struct dapi_conn *c, const struct dapi_route *r)
{
	if (c->step == 0)
		return dapi_secret_call(
			c, r->path, CS__CONTROL_OP__CONTROL_OP_SECRET_INSPECT, r->arg);
	if (c->resp[0]->n_secrets != 1)
		return dapi_error(c, 404, "%s %s not found",
				  dapi_is_configs(r->path) ? "config" : "secret", r->arg);
	dapi_json(c, 200, dapi_secret_json(c->resp[0]->secrets[0]));
}

/* Reads a SecretSpec / ConfigSpec body {Name, Labels, Data (base64)}
 * into x (its strings and data owned by x: free with
 * cs__secret__free_unpacked). Returns 0, or an error with err. */
static int dapi_secret_spec(const char *body, size_t len, Cs__Secret **out, char *err,
			    size_t n)
{
	static const char *const known[] = {"Name",   "Labels",	    "Data",
					    "Driver", "Templating", NULL};
	json_error_t je;
	json_t *j = json_loadb(body, len, 0, &je), *labels;
	Cs__Secret *x = DJ_NEW(Cs__Secret, CS__SECRET__INIT);
	const char *name = NULL, *data = NULL;
	json_t *v;
	int rv = 0;

	if (!x) {
		json_decref(j);
		return CS_ENOMEM;
	}
	if (!j || !json_is_object(j)) {
		rv = dj_fail(err, n, "malformed JSON: %s", j ? "not an object" : je.text);
		goto out;
	}
	if ((rv = dj_only(j, "Spec", known, err, n)) ||
	    (rv = dj_str(j, "Name", "Spec", &name, err, n)) ||
	    (rv = dj_str(j, "Data", "Spec", &data, err, n)))
		goto out;
	if ((v = dj_get(j, "Driver")) && !dj_empty(v)) {
		rv = dj_fail(err, n,
			     "Driver: external secret drivers are not supported "
			     "by cswarm");
		goto out;
	}
	if ((v = dj_get(j, "Templating")) && !dj_empty(v)) {
		rv = dj_fail(err, n, "Templating: not supported by cswarm");
		goto out;
	}
	if (name && !(x->name = strdup(name))) {
		rv = CS_ENOMEM;
		goto out;
	}
	if (data && (rv = dapi_b64_decode(data, &x->data.data, &x->data.len))) {
		if (rv == CS_EINVAL)
			dj_fail(err, n, "Data: not base64");
		goto out;
	}
	if ((labels = dj_get(j, "Labels")) && !dj_empty(labels) &&
	    (rv = dj_label_list(labels, &x->labels, &x->n_labels, err, n)))
		goto out;
out:
	json_decref(j);
	if (rv == CS_ENOMEM)
		snprintf(err, n, "out of memory");
	if (rv) {
		cs__secret__free_unpacked(x, NULL);
		return rv;
	}
	*out = x;
	return 0;
}

static void dapi_secret_create(struct dapi_conn *c, const struct dapi_route *r)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__Secret *x;
	char err[512];
	int rv;

	if (c->step == 1) {
		char id[17];
		dj_id(id, c->resp[0]->created_id);
		return dapi_json(c, 201, json_pack("{s:s}", "ID", id));
	}
	rv = dapi_secret_spec(c->body ? c->body : "", c->body_len, &x, err, sizeof err);
	if (rv)
		return dapi_error(c, rv == CS_EINVAL ? 400 : 500, "%s", err);
	req.op = CS__CONTROL_OP__CONTROL_OP_SECRET_CREATE;
	req.secret = x;
	req.secret_config = dapi_is_configs(r->path);
	dapi_call(c, &req);
	if (x->data.len)
		memset(x->data.data, 0, x->data.len);
	cs__secret__free_unpacked(x, NULL);
}

/* POST /secrets/{id}/update?version=N: the labels become the body's (the
 * rest must stay: SwarmKit's rule). Step 0 reads the current labels. */
static void dapi_secret_update(struct dapi_conn *c, const struct dapi_route *r)
{
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	const Cs__Secret *cur;
	Cs__Secret *x;
	char err[512], ver[32];
	char **rm = NULL;
	size_t n_rm = 0;
	int rv;

	if (c->step == 2)
		return dapi_send(c, 200, "text/plain; charset=utf-8", "", 0);
	if (c->step == 0)
		return dapi_secret_call(
			c, r->path, CS__CONTROL_OP__CONTROL_OP_SECRET_INSPECT, r->arg);
	if (c->resp[0]->n_secrets != 1)
		return dapi_error(c, 404, "%s %s not found",
				  dapi_is_configs(r->path) ? "config" : "secret", r->arg);
	cur = c->resp[0]->secrets[0];
	rv = dapi_secret_spec(c->body ? c->body : "", c->body_len, &x, err, sizeof err);
	if (rv)
		return dapi_error(c, rv == CS_EINVAL ? 400 : 500, "%s", err);
	if (x->name && strcmp(x->name, cur->name) != 0) {
		cs__secret__free_unpacked(x, NULL);
		return dapi_error(c, 400, "only updates to Labels are allowed");
	}
	if (cur->n_labels && !(rm = calloc(cur->n_labels, sizeof *rm))) {
		cs__secret__free_unpacked(x, NULL);
		return dapi_error(c, 500, "out of memory");
	}
	for (size_t i = 0; i < cur->n_labels; i++)
		rm[n_rm++] = cur->labels[i]->key;
	req.op = CS__CONTROL_OP__CONTROL_OP_SECRET_UPDATE;
	req.name = cur->name;
	req.secret_config = dapi_is_configs(r->path);
	req.label_add = x->labels;
	req.n_label_add = x->n_labels;
	req.label_rm = rm;
	req.n_label_rm = n_rm;
	if (dapi_query(r->query, "version", ver, sizeof ver))
		req.version = strtoull(ver, NULL, 10);
	c->step = 1; /* the answer is resp[1] */
	dapi_call(c, &req);
	free(rm);
	cs__secret__free_unpacked(x, NULL);
}

static void dapi_secret_remove(struct dapi_conn *c, const struct dapi_route *r)
{
	if (c->step == 1)
		return dapi_send(c, 204, "text/plain; charset=utf-8", "", 0);
	dapi_secret_call(c, r->path, CS__CONTROL_OP__CONTROL_OP_SECRET_REMOVE, r->arg);
}

/* ---------------------------------------------------------------- logs
 * GET /services/{id}/logs and /tasks/{id}/logs (issue 16): reads through
 * the leader's log broker (SERVICE_LOGS), streamed to the client as
 * Docker's multiplexed frames in a chunked answer, each line with its
 * details (com.docker.swarm.node.id, .service.id, .task.id) and, asked,
 * its time. The next read is asked only once the last lines are written
 * (back-pressure); a read with lines is followed by another at once (the
 * nodes send at most a frame's worth), one with none ends the answer, or
 * with follow=1 waits DOCKERAPI_LOGS_POLL_MS. Nothing is kept but the
 * cursors. */

struct dapi_logs {
	char name[256];
	bool task, follow, timestamps, details, out, err;
	uint64_t since_ms, until_ms, tail;
	bool tail_set, started, headers_sent;
	bool until_now; /* until_ms is when it was asked (no until given) */
	Cs__LogCursor *cursors;
	size_t cursor_count;
};

/* GET /events being streamed: its filters and cursor (see below) */
struct dapi_events {
	char **filters;
	size_t filter_count;
	uint64_t since_ms, until_ms;
	bool since_set, started, headers_sent;
	uint64_t next_index;
	uint32_t next_ord;
};

struct dapi_swrite {
	uv_write_t req;
	struct dapi_conn *c;
	bool last, more;
	char buf[];
};

static void dapi_logs_free(struct dapi_logs *l)
{
	if (!l)
		return;
	free(l->cursors);
	free(l);
}

/* A time query value: unix seconds with decimals ("1700000000.5"), or
 * RFC 3339. 0: none. */
static uint64_t dapi_time_ms(const char *v)
{
	char *end;
	double secs;
	struct tm tm;

	if (!v || !*v)
		return 0;
	secs = strtod(v, &end);
	if (*end == '\0' && secs > 0)
		return (uint64_t)(secs * 1000);
	memset(&tm, 0, sizeof tm);
	if (sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		return (uint64_t)timegm(&tm) * 1000;
	}
	return 0;
}

static void dapi_logs_step(struct dapi_conn *c);

static void dapi_logs_poll(uv_timer_t *t)
{
	struct dapi_conn *c = t->data;
	c->stream_waiting = false;
	if (!c->closing)
		dapi_logs_step(c);
}

static void dapi_stream_write(struct dapi_conn *c, const char *buf, size_t len, bool more,
			      bool last);

/* Ends c's stream as HTTP says (the closing chunk), then closes. */
static void dapi_stream_finish(struct dapi_conn *c)
{
	bool head = (c->logs && c->logs->headers_sent) ||
		    (c->events && c->events->headers_sent);

	if (head)
		dapi_stream_write(c, "0\r\n\r\n", 5, false, true);
	else
		dapi_close(c);
}

/* A follow stream has nothing new: it asks again after poll_ms, or ends
 * when its client has half-closed (what there was is written: a client
 * that sends its end and reads on gets a whole answer, as from Docker). */
static void dapi_stream_wait(struct dapi_conn *c, uint64_t poll_ms)
{
	if (c->client_done) {
		dapi_stream_finish(c);
		return;
	}
	c->stream_waiting = true;
	uv_timer_start(&c->timer, dapi_logs_poll, poll_ms, 0);
}

static void dapi_stream_written(uv_write_t *req, int status)
{
	struct dapi_swrite *w = (struct dapi_swrite *)req;
	struct dapi_conn *c = w->c;

	if (status < 0 || w->last)
		dapi_close(c);
	else if (!c->closing && w->more)
		dapi_logs_step(c);
	else if (!c->closing)
		dapi_stream_wait(c, DOCKERAPI_LOGS_POLL_MS);
	free(w);
	dapi_unref(c);
}

/* Writes len bytes of the stream; then reads on at once (more), later
 * (follow), or closes (last). */
static void dapi_stream_write(struct dapi_conn *c, const char *buf, size_t len, bool more,
			      bool last)
{
	struct dapi_swrite *w = malloc(sizeof *w + len);
	uv_buf_t b;

	if (!w) {
		dapi_close(c);
		return;
	}
	w->c = c;
	w->more = more;
	w->last = last;
	memcpy(w->buf, buf, len);
	b = uv_buf_init(w->buf, (unsigned)len);
	c->refs++;
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, dapi_stream_written) < 0) {
		free(w);
		c->refs--;
		dapi_close(c);
	}
}

/* Reading while streaming: only to see the client go. */
static void dapi_stream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char sink[256];
	(void)h;
	(void)suggested;
	*b = uv_buf_init(sink, sizeof sink);
}

static void dapi_stream_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct dapi_conn *c = st->data;

	(void)b;
	if (nread == UV_EOF && !c->client_done) {
		/* half-closed: the stream ends at its next wait */
		c->client_done = true;
		uv_read_stop(st);
		if (c->stream_waiting) {
			c->stream_waiting = false;
			uv_timer_stop(&c->timer);
			dapi_stream_finish(c);
		}
	} else if (nread < 0) {
		dapi_close(c);
	}
}

/* Appends to *buf (cap, len) n bytes of p; false when out of memory. */
static bool dapi_buf_add(char **buf, size_t *cap, size_t *len, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap : 4096;
		char *g;
		while (nc < *len + n)
			nc *= 2;
		if (!(g = realloc(*buf, nc)))
			return false;
		*buf = g;
		*cap = nc;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	return true;
}

/* Appends to *all what a chunked streaming answer (logs, events) sends
 * next: its head once (*headers_sent), len bytes of data as one chunk when
 * there are any, and the closing chunk when last. Returns false when out of
 * memory. */
static bool dapi_chunk_add(char **all, size_t *acap, size_t *alen, bool *headers_sent,
			   const char *content_type, const char *data, size_t len,
			   bool last)
{
	char head[512], tmp[32];
	int hl;

	if (!*headers_sent) {
		hl = snprintf(head, sizeof head,
			      "HTTP/1.1 200 OK\r\n"
			      "Api-Version: " DOCKERAPI_VERSION "\r\n"
			      "Docker-Experimental: false\r\n"
			      "Ostype: linux\r\n"
			      "Server: cswarm\r\n"
			      "Content-Type: %s\r\n"
			      "Transfer-Encoding: chunked\r\n"
			      "Connection: close\r\n\r\n",
			      content_type);
		if (!dapi_buf_add(all, acap, alen, head, (size_t)hl))
			return false;
		*headers_sent = true;
	}
	if (len) {
		hl = snprintf(tmp, sizeof tmp, "%zx\r\n", len);
		if (!dapi_buf_add(all, acap, alen, tmp, (size_t)hl) ||
		    !dapi_buf_add(all, acap, alen, data, len) ||
		    !dapi_buf_add(all, acap, alen, "\r\n", 2))
			return false;
	}
	return !last || dapi_buf_add(all, acap, alen, "0\r\n\r\n", 5);
}

/* The frames of resp's lines, as one HTTP chunk (with the answer's head
 * first when not sent yet). NULL when out of memory. */
static char *dapi_logs_chunk(struct dapi_conn *c, const Cs__ControlResponse *resp,
			     bool last, size_t *out_len)
{
	struct dapi_logs *l = c->logs;
	char *frames = NULL, *all = NULL;
	size_t fcap = 0, flen = 0, acap = 0, alen = 0;

	for (size_t i = 0; i < resp->n_logs; i++) {
		const Cs__LogLine *ln = resp->logs[i];
		uint32_t stream = ln->stream == 2 ? 2 : 1;
		char pre[256];
		size_t pl = 0, size;
		unsigned char fh[8];

		if ((stream == 1 && !l->out) || (stream == 2 && !l->err))
			continue;
		if (l->timestamps) {
			time_t t = (time_t)(ln->time_ns / 1000000000ull);
			struct tm tm;
			gmtime_r(&t, &tm);
			pl += (size_t)snprintf(
				pre + pl, sizeof pre - pl,
				"%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ ",
				tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				tm.tm_min, tm.tm_sec,
				(unsigned long long)(ln->time_ns % 1000000000ull));
		}
		if (l->details)
			pl += (size_t)snprintf(pre + pl, sizeof pre - pl,
					       "com.docker.swarm.node.id=%016llx,"
					       "com.docker.swarm.service.id=%016llx,"
					       "com.docker.swarm.task.id=%016llx ",
					       (unsigned long long)ln->node_id,
					       (unsigned long long)ln->service_id,
					       (unsigned long long)ln->task_id);
		assert(pl < sizeof pre);
		size = pl + ln->data.len;
		fh[0] = (unsigned char)stream;
		fh[1] = fh[2] = fh[3] = 0;
		fh[4] = (unsigned char)(size >> 24);
		fh[5] = (unsigned char)(size >> 16);
		fh[6] = (unsigned char)(size >> 8);
		fh[7] = (unsigned char)size;
		if (!dapi_buf_add(&frames, &fcap, &flen, fh, 8) ||
		    !dapi_buf_add(&frames, &fcap, &flen, pre, pl) ||
		    !dapi_buf_add(&frames, &fcap, &flen, ln->data.data, ln->data.len))
			goto oom;
	}
	if (!dapi_chunk_add(&all, &acap, &alen, &l->headers_sent,
			    "application/vnd.docker.multiplexed-stream", frames, flen,
			    last))
		goto oom;
	free(frames);
	*out_len = alen;
	return all;
oom:
	free(frames);
	free(all);
	*out_len = 1; /* NULL with a length: out of memory */
	return NULL;
}

static void dapi_logs_answered(void *data, const Cs__ControlResponse *resp)
{
	struct dapi_conn *c = data;
	struct dapi_logs *l = c->logs;
	bool more, last;
	size_t len = 0;
	char *buf;

	if (c->closing || !l) {
		dapi_unref(c);
		return;
	}
	if (resp->status && !l->headers_sent) {
		/* an error answer, and the connection serves requests again */
		uv_read_stop((uv_stream_t *)&c->pipe);
		dapi_logs_free(c->logs);
		c->logs = NULL;
		dapi_cs_error(c, resp->status, resp->error);
		dapi_unref(c);
		return;
	}
	if (!resp->status) {
		/* the cursors to read on with */
		Cs__LogCursor *cur = calloc(resp->n_logs_next + 1, sizeof *cur);
		if (cur) {
			for (size_t i = 0; i < resp->n_logs_next; i++) {
				cs__log_cursor__init(&cur[i]);
				cur[i].task_id = resp->logs_next[i]->task_id;
				cur[i].after_ns = resp->logs_next[i]->after_ns;
				cur[i].after_err_ns = resp->logs_next[i]->after_err_ns;
			}
			free(l->cursors);
			l->cursors = cur;
			l->cursor_count = resp->n_logs_next;
		}
	}
	/* a failed read ends the stream (its head is out); so do no lines
	 * without follow */
	more = !resp->status && resp->n_logs > 0;
	last = resp->status || (!more && !l->follow);
	buf = dapi_logs_chunk(c, resp, last, &len);
	if (!buf && len)
		dapi_close(c);
	else if (len)
		dapi_stream_write(c, buf, len, more, last);
	else if (more) /* nothing shown of it (a stream not asked for) */
		dapi_logs_step(c);
	else /* nothing new: a follow waits */
		dapi_stream_wait(c, DOCKERAPI_LOGS_POLL_MS);
	free(buf);
	dapi_unref(c);
}

static void dapi_events_step(struct dapi_conn *c);

/* Asks the next read of c's logs (or of its events: the streams share
 * their writing and polling). */
static void dapi_logs_step(struct dapi_conn *c)
{
	struct dapi_logs *l = c->logs;
	struct dockerapi *s = c->s;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	Cs__LogCursor **ptrs = NULL;
	int rv;

	if (c->events) {
		dapi_events_step(c);
		return;
	}
	if (!s || c->closing)
		return;
	req.op = CS__CONTROL_OP__CONTROL_OP_SERVICE_LOGS;
	req.name = l->name;
	req.logs_task = l->task;
	req.logs_since_ms = l->since_ms;
	req.logs_until_ms = l->until_ms;
	if (!l->started) {
		req.logs_tail = l->tail;
		req.logs_tail_set = l->tail_set;
		/* the last N lines as the nodes read them: Docker cuts the
		 * tail before until, so a line written after the ask (a
		 * chatty task's every 0.3 s) left a task with no line at all
		 * (dockerapi.sh's `service logs --tail 1 -t` printed nothing
		 * once). The reads after it go on from the tail's cursors, up
		 * to the ask's time. */
		if (l->tail_set && l->until_now)
			req.logs_until_ms = 0;
	}
	if (l->cursor_count && (ptrs = calloc(l->cursor_count, sizeof *ptrs))) {
		for (size_t i = 0; i < l->cursor_count; i++)
			ptrs[i] = &l->cursors[i];
		req.logs_after = ptrs;
		req.n_logs_after = l->cursor_count;
	}
	l->started = true;
	req.id = ++c->call_id;
	c->refs++;
	rv = s->be.call(s->be.data, &req, dapi_logs_answered, c);
	free(ptrs);
	if (rv) {
		c->refs--;
		if (!l->headers_sent) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			dapi_logs_free(c->logs);
			c->logs = NULL;
			dapi_cs_error(c, rv, NULL);
		} else {
			dapi_close(c);
		}
	}
}

static void dapi_logs(struct dapi_conn *c, const struct dapi_route *r, bool task)
{
	struct dapi_logs *l;
	char v[64];

	if (c->logs)
		return; /* a stream already */
	if (!(l = calloc(1, sizeof *l)))
		return dapi_error(c, 500, "out of memory");
	snprintf(l->name, sizeof l->name, "%s", r->arg);
	l->task = task;
	l->follow = dapi_flag(r->query, "follow");
	l->timestamps = dapi_flag(r->query, "timestamps");
	l->details = dapi_flag(r->query, "details");
	l->out = dapi_flag(r->query, "stdout");
	l->err = dapi_flag(r->query, "stderr");
	if (!l->out && !l->err) {
		free(l);
		return dapi_error(c, 400, "you must choose at least one stream");
	}
	if (dapi_query(r->query, "tail", v, sizeof v) && *v && strcmp(v, "all") != 0) {
		char *end;
		l->tail = strtoull(v, &end, 10);
		if (*end) {
			free(l);
			return dapi_error(c, 400, "tail: '%s' (expected a number or all)",
					  v);
		}
		l->tail_set = true;
	}
	if (dapi_query(r->query, "since", v, sizeof v) && *v &&
	    !(l->since_ms = dapi_time_ms(v))) {
		free(l);
		return dapi_error(c, 400, "since: '%s' is not a time", v);
	}
	if (dapi_query(r->query, "until", v, sizeof v) && *v &&
	    !(l->until_ms = dapi_time_ms(v))) {
		free(l);
		return dapi_error(c, 400, "until: '%s' is not a time", v);
	}
	/* without follow, the logs up to now: later lines are not waited for
	 * (a chatty service's read ends) */
	if (!l->follow && !l->until_ms) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		l->until_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		l->until_now = true;
	}
	c->logs = l;
	/* see the client go while streaming (what it sends is not read) */
	uv_read_start((uv_stream_t *)&c->pipe, dapi_stream_alloc, dapi_stream_read);
	dapi_logs_step(c);
}

/* ---------------------------------------------------------------- events
 * GET /events (issue 20): the manager's event stream (CONTROL_OP_EVENTS:
 * this manager's, never forwarded) as Docker's swarm events, one JSON
 * message a line in a chunked answer: {"Type","Action","Actor":{"ID",
 * "Attributes":{"name",...}},"scope":"swarm","time","timeNano"}, as moby's
 * daemon/cluster events (logClusterEvent). Docker has no task events:
 * those are skipped. filters go to the manager (type, event, scope,
 * service, node, network, ...: Docker's rules); since replays from the
 * oldest event the manager keeps (it keeps the last 4096; Docker's daemon
 * 256), from that time on; without since, only new ones; until ends the
 * answer once passed. A reader behind what the manager keeps gets an
 * error message in the stream, and the stream ends. Nothing is kept but
 * the cursor: the next read is asked once the last events are written. */

static void dapi_events_free(struct dapi_events *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->filter_count; i++)
		free(e->filters[i]);
	free(e->filters);
	free(e);
}

static uint64_t dapi_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One event as Docker's JSON message line (NULL: out of memory, or an
 * event not shown, *skip). */
static char *dapi_event_json(const Cs__Event *ev, bool *skip)
{
	json_t *attrs, *msg;
	char id[17], *s;

	*skip = !ev->kind || strcmp(ev->kind, "task") == 0;
	if (*skip)
		return NULL;
	snprintf(id, sizeof id, "%016llx", (unsigned long long)ev->object_id);
	attrs = json_pack("{s:s}", "name", ev->name ? ev->name : "");
	for (size_t i = 0; attrs && i < ev->n_attrs; i++)
		json_object_set_new(attrs, ev->attrs[i]->key,
				    json_string(ev->attrs[i]->value));
	msg = attrs ? json_pack("{s:s, s:s, s:{s:s, s:o}, s:s, s:I, s:I}", "Type",
				ev->kind, "Action", ev->action, "Actor", "ID", id,
				"Attributes", attrs, "scope", "swarm", "time",
				(json_int_t)(ev->time_ms / 1000), "timeNano",
				(json_int_t)(ev->time_ms * 1000000))
		    : NULL;
	if (!msg)
		return NULL;
	s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return s;
}

static void dapi_events_answered(void *data, const Cs__ControlResponse *resp)
{
	struct dapi_conn *c = data;
	struct dapi_events *e = c->events;
	char *body = NULL, *all = NULL;
	size_t bcap = 0, blen = 0, acap = 0, alen = 0;
	bool last = false, more;

	if (c->closing || !e) {
		dapi_unref(c);
		return;
	}
	if (resp->status && !e->headers_sent) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		dapi_events_free(c->events);
		c->events = NULL;
		dapi_cs_error(c, resp->status, resp->error);
		dapi_unref(c);
		return;
	}
	if (resp->status) {
		/* cut off (behind what the manager keeps): said in the stream */
		json_t *m =
			json_pack("{s:s}", "message",
				  resp->error ? resp->error : cs_strerror(resp->status));
		char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
		bool ok = s && dapi_buf_add(&body, &bcap, &blen, s, strlen(s)) &&
			  dapi_buf_add(&body, &bcap, &blen, "\n", 1);
		json_decref(m);
		free(s);
		if (!ok)
			goto oom;
		last = true;
	} else {
		e->next_index = resp->events_next_index;
		e->next_ord = resp->events_next_ord;
	}
	for (size_t i = 0; !resp->status && i < resp->n_events; i++) {
		const Cs__Event *ev = resp->events[i];
		bool skip;
		char *s;
		if (e->since_set && ev->time_ms < e->since_ms)
			continue;
		if (e->until_ms && ev->time_ms > e->until_ms) {
			last = true;
			break;
		}
		s = dapi_event_json(ev, &skip);
		if (skip)
			continue;
		if (!s || !dapi_buf_add(&body, &bcap, &blen, s, strlen(s)) ||
		    !dapi_buf_add(&body, &bcap, &blen, "\n", 1)) {
			free(s);
			goto oom;
		}
		free(s);
	}
	more = !resp->status && !last && resp->n_events > 0;
	if (!more && e->until_ms && dapi_wall_ms() >= e->until_ms)
		last = true;
	if (!dapi_chunk_add(&all, &acap, &alen, &e->headers_sent, "application/json",
			    body, blen, last))
		goto oom;
	if (alen)
		dapi_stream_write(c, all, alen, more, last);
	else if (more) /* nothing shown of it (tasks, or before since) */
		dapi_events_step(c);
	else
		dapi_stream_wait(c, DOCKERAPI_EVENTS_POLL_MS);
	free(body);
	free(all);
	dapi_unref(c);
	return;
oom:
	free(body);
	free(all);
	dapi_close(c);
	dapi_unref(c);
}

/* Asks the next read of c's events. */
static void dapi_events_step(struct dapi_conn *c)
{
	struct dapi_events *e = c->events;
	struct dockerapi *s = c->s;
	Cs__ControlRequest req = CS__CONTROL_REQUEST__INIT;
	int rv;

	if (!s || c->closing)
		return;
	req.op = CS__CONTROL_OP__CONTROL_OP_EVENTS;
	req.events_filter = e->filters;
	req.n_events_filter = e->filter_count;
	if (!e->started)
		req.events_from_oldest = e->since_set;
	else {
		req.events_from_index = e->next_index;
		req.events_from_ord = e->next_ord;
	}
	e->started = true;
	req.id = ++c->call_id;
	c->refs++;
	rv = s->be.call(s->be.data, &req, dapi_events_answered, c);
	if (rv) {
		c->refs--;
		if (!e->headers_sent) {
			uv_read_stop((uv_stream_t *)&c->pipe);
			dapi_events_free(c->events);
			c->events = NULL;
			dapi_cs_error(c, rv, NULL);
		} else {
			dapi_close(c);
		}
	}
}

static void dapi_events(struct dapi_conn *c, const struct dapi_route *r)
{
	static const char *const keys[] = {
		"type",	  "event",   "scope",  "name",	 "id",	      "service",
		"node",	  "network", "secret", "config", "container", "image",
		"volume", "plugin",  "daemon", "label",	 NULL};
	struct dapi_events *e;
	json_t *f = NULL;
	char v[64];

	if (c->logs || c->events)
		return; /* a stream already */
	const char *bad = NULL;

	if (!dapi_filters(r->query, &f))
		return dapi_error(c, 400, "filters: malformed JSON");
	if (f && !dapi_filters_known(f, keys, &bad)) {
		dapi_error(c, 400, "invalid filter '%s'", bad);
		json_decref(f);
		return;
	}
	if (!(e = calloc(1, sizeof *e)) ||
	    !(e->filters = calloc(EVENTS_FILTERS_MAX_DAPI, sizeof *e->filters))) {
		free(e);
		json_decref(f);
		return dapi_error(c, 500, "out of memory");
	}
	for (size_t k = 0; f && keys[k]; k++) {
		const char *vals[EVENTS_FILTERS_MAX_DAPI];
		size_t n = dapi_filter_values(f, keys[k], vals, EVENTS_FILTERS_MAX_DAPI);
		for (size_t i = 0; i < n; i++) {
			char *kv;
			if (e->filter_count >= EVENTS_FILTERS_MAX_DAPI) {
				dapi_events_free(e);
				json_decref(f);
				return dapi_error(c, 400, "filters: at most %u values",
						  EVENTS_FILTERS_MAX_DAPI);
			}
			if (!(kv = malloc(strlen(keys[k]) + strlen(vals[i]) + 2))) {
				dapi_events_free(e);
				json_decref(f);
				return dapi_error(c, 500, "out of memory");
			}
			sprintf(kv, "%s=%s", keys[k], vals[i]);
			e->filters[e->filter_count++] = kv;
		}
	}
	json_decref(f);
	if (dapi_query(r->query, "since", v, sizeof v) && *v) {
		char *end;
		double secs = strtod(v, &end);
		/* "0" (docker events --since 0): everything kept */
		e->since_ms = *end == '\0' && secs >= 0 ? (uint64_t)(secs * 1000)
							: dapi_time_ms(v);
		if (!e->since_ms && !(*end == '\0' && secs >= 0)) {
			dapi_events_free(e);
			return dapi_error(c, 400, "since: '%s' is not a time", v);
		}
		e->since_set = true;
	}
	if (dapi_query(r->query, "until", v, sizeof v) && *v &&
	    !(e->until_ms = dapi_time_ms(v))) {
		dapi_events_free(e);
		return dapi_error(c, 400, "until: '%s' is not a time", v);
	}
	c->events = e;
	uv_read_start((uv_stream_t *)&c->pipe, dapi_stream_alloc, dapi_stream_read);
	dapi_events_step(c);
}

/* dapi_match: whether path is prefix + "/" + one segment (*arg, into buf)
 * + suffix. */
static bool dapi_match(const char *path, const char *prefix, const char *suffix,
		       char *buf, size_t n)
{
	size_t pl = strlen(prefix), sl = strlen(suffix), len = strlen(path), al;

	if (len <= pl + 1 + sl || strncmp(path, prefix, pl) != 0 || path[pl] != '/')
		return false;
	if (strcmp(path + len - sl, suffix) != 0)
		return false;
	al = len - pl - 1 - sl;
	if (al == 0 || al >= n || memchr(path + pl + 1, '/', al))
		return false;
	memcpy(buf, path + pl + 1, al);
	buf[al] = '\0';
	return true;
}

/* dapi_run (re)runs the current request's handler. */
static void dapi_run(struct dapi_conn *c)
{
	char *path = c->url ? c->url : (char *)"", *q, arg[256];
	struct dapi_route r = {.path = path, .query = "", .arg = arg};
	bool get = c->method == HTTP_GET || c->method == HTTP_HEAD;
	bool post = c->method == HTTP_POST, del = c->method == HTTP_DELETE;
	char pbuf[DOCKERAPI_URL_BYTES_MAX + 1];

	snprintf(pbuf, sizeof pbuf, "%s", path);
	path = pbuf;
	if ((q = strchr(path, '?'))) {
		*q = '\0';
		r.query = q + 1;
	}
	/* a /vX.Y prefix */
	if (path[0] == '/' && path[1] == 'v' && path[2] >= '0' && path[2] <= '9') {
		char *p = path + 2;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
			if (*p == '/')
				path = p;
		}
	}
	r.path = path;
	if (strcmp(path, "/_ping") == 0 && get)
		return dapi_ping(c);
	if (strcmp(path, "/version") == 0 && get)
		return dapi_version(c);
	if (strcmp(path, "/info") == 0 && get)
		return dapi_info(c);
	if (strcmp(path, "/nodes") == 0 && get)
		return dapi_node_list(c, &r);
	if (get && dapi_match(path, "/nodes", "", arg, sizeof arg))
		return dapi_node_inspect(c, &r);
	if (post && dapi_match(path, "/nodes", "/update", arg, sizeof arg))
		return dapi_node_update(c, &r);
	if (del && dapi_match(path, "/nodes", "", arg, sizeof arg))
		return dapi_node_remove(c, &r);
	if (strcmp(path, "/swarm") == 0 && get)
		return dapi_swarm_inspect(c);
	if (strcmp(path, "/swarm/update") == 0 && post)
		return dapi_swarm_update(c, &r);
	if (strcmp(path, "/services") == 0 && get)
		return dapi_service_list(c, &r);
	if (strcmp(path, "/services/create") == 0 && post)
		return dapi_service_create(c);
	if (post && dapi_match(path, "/services", "/update", arg, sizeof arg))
		return dapi_service_update(c, &r);
	if (get && dapi_match(path, "/services", "", arg, sizeof arg))
		return dapi_service_inspect(c, &r);
	if (del && dapi_match(path, "/services", "", arg, sizeof arg))
		return dapi_service_remove(c, &r);
	if (get && dapi_match(path, "/services", "/logs", arg, sizeof arg))
		return dapi_logs(c, &r, false);
	if (get && strcmp(path, "/events") == 0)
		return dapi_events(c, &r);
	if (get && dapi_match(path, "/tasks", "/logs", arg, sizeof arg))
		return dapi_logs(c, &r, true);
	if (strcmp(path, "/tasks") == 0 && get)
		return dapi_task_list(c, &r);
	if (get && dapi_match(path, "/tasks", "", arg, sizeof arg))
		return dapi_task_inspect(c, &r);
	if (strcmp(path, "/networks") == 0 && get)
		return dapi_network_list(c, &r);
	if (strcmp(path, "/networks/create") == 0 && post)
		return dapi_network_create(c);
	if (get && dapi_match(path, "/networks", "", arg, sizeof arg))
		return dapi_network_inspect(c, &r);
	if (del && dapi_match(path, "/networks", "", arg, sizeof arg))
		return dapi_network_remove(c, &r);
	/* issue 20 */
	if ((strcmp(path, "/secrets") == 0 || strcmp(path, "/configs") == 0) && get)
		return dapi_secret_list(c, &r);
	if (post && (strcmp(path, "/secrets/create") == 0 ||
		     strcmp(path, "/configs/create") == 0))
		return dapi_secret_create(c, &r);
	if (post && (dapi_match(path, "/secrets", "/update", arg, sizeof arg) ||
		     dapi_match(path, "/configs", "/update", arg, sizeof arg)))
		return dapi_secret_update(c, &r);
	if (get && (dapi_match(path, "/secrets", "", arg, sizeof arg) ||
		    dapi_match(path, "/configs", "", arg, sizeof arg)))
		return dapi_secret_inspect(c, &r);
	if (del && (dapi_match(path, "/secrets", "", arg, sizeof arg) ||
		    dapi_match(path, "/configs", "", arg, sizeof arg)))
		return dapi_secret_remove(c, &r);
	if (get && strncmp(path, "/distribution/", 14) == 0)
		return dapi_error(c, 404,
				  "cswarm does not ask registries: each node's dockerd "
				  "must already have the image");
	dapi_error(c, 404, "page not found: %s %s is not served by cswarm",
		   http_method_str((enum http_method)c->method), path);
}

/* ---------------------------------------------------------------- parsing */

static int dapi_on_begin(http_parser *p)
{
	struct dapi_conn *c = p->data;
	dapi_reset(c);
	return 0;
}

/* Appends len bytes at `at` to *buf (*len long, kept NUL-terminated): 0,
 * or -1 (the parser's error) without memory. */
static int dapi_append(char **buf, size_t *len, const char *at, size_t n)
{
	char *b = realloc(*buf, *len + n + 1);
	if (!b)
		return -1;
	memcpy(b + *len, at, n);
	*buf = b;
	*len += n;
	b[*len] = '\0';
	return 0;
}

static int dapi_on_url(http_parser *p, const char *at, size_t len)
{
	struct dapi_conn *c = p->data;

	if (c->url_len + len > DOCKERAPI_URL_BYTES_MAX) {
		c->err_status = 414;
		return -1;
	}
	return dapi_append(&c->url, &c->url_len, at, len);
}

static int dapi_on_header(http_parser *p, const char *at, size_t len)
{
	struct dapi_conn *c = p->data;
	(void)at;
	c->head_bytes += len;
	if (c->head_bytes > DOCKERAPI_HEAD_BYTES_MAX) {
		c->err_status = 431;
		return -1;
	}
	return 0;
}

static int dapi_on_headers_complete(http_parser *p)
{
	struct dapi_conn *c = p->data;
	if (p->content_length != ULLONG_MAX &&
	    p->content_length > DOCKERAPI_BODY_BYTES_MAX) {
		c->err_status = 413;
		return -1;
	}
	return 0;
}

static int dapi_on_body(http_parser *p, const char *at, size_t len)
{
	struct dapi_conn *c = p->data;

	if (c->body_len + len > DOCKERAPI_BODY_BYTES_MAX) {
		c->err_status = 413;
		return -1;
	}
	return dapi_append(&c->body, &c->body_len, at, len);
}

static int dapi_on_complete(http_parser *p)
{
	struct dapi_conn *c = p->data;
	c->method = (int)p->method;
	c->keep_alive = http_should_keep_alive(p);
	c->busy = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings dapi_settings = {
	.on_message_begin = dapi_on_begin,
	.on_url = dapi_on_url,
	.on_header_field = dapi_on_header,
	.on_header_value = dapi_on_header,
	.on_headers_complete = dapi_on_headers_complete,
	.on_body = dapi_on_body,
	.on_message_complete = dapi_on_complete,
};

/* dapi_feed parses len bytes; a whole request is served (reading stops
 * until it is answered; what follows it is kept). */
static void dapi_feed(struct dapi_conn *c, const char *data, size_t len)
{
	size_t done = http_parser_execute(&c->p, &dapi_settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->p);

	if (c->err_status) {
		c->busy = true;
		uv_read_stop((uv_stream_t *)&c->pipe);
		if (c->err_status == 413)
			dapi_error(c, 413, "request body over the limit of %u bytes",
				   DOCKERAPI_BODY_BYTES_MAX);
		else
			dapi_error(c, c->err_status, "request too large");
		return;
	}
	if (e == HPE_PAUSED) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		if (done < len) {
			char *p = malloc(len - done);
			if (!p) {
				dapi_close(c);
				return;
			}
			memcpy(p, data + done, len - done);
			free(c->pending);
			c->pending = p;
			c->pending_len = len - done;
		}
		dapi_run(c);
		return;
	}
	if (e != HPE_OK) {
		c->busy = true;
		c->err_status = 400;
		c->method = HTTP_GET;
		uv_read_stop((uv_stream_t *)&c->pipe);
		dapi_error(c, 400, "malformed HTTP request: %s",
			   http_errno_description(e));
	}
}

static void dapi_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	b->base = malloc(65536);
	b->len = b->base ? 65536 : 0;
}

static void dapi_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct dapi_conn *c = st->data;

	if (nread < 0) {
		free(b->base);
		if (c->busy) /* half-closed while served: answer, then close */
			uv_read_stop(st);
		else
			dapi_close(c);
		return;
	}
	if (nread > 0 && !c->closing)
		dapi_feed(c, b->base, (size_t)nread);
	free(b->base);
}

static uint64_t dapi_idle_ms(const struct dapi_conn *c)
{
	return c->s && c->s->be.idle_ms ? c->s->be.idle_ms : DOCKERAPI_IDLE_MS;
}

static void dapi_timeout(uv_timer_t *t)
{
	struct dapi_conn *c = t->data;
	if (!c->busy)
		dapi_close(c); /* idle, or a request not whole in time */
}

/* After an answer: the next request (bytes already read first). */
static void dapi_resume(struct dapi_conn *c)
{
	char *p = c->pending;
	size_t n = c->pending_len;

	dapi_reset(c);
	uv_timer_start(&c->timer, dapi_timeout, dapi_idle_ms(c), 0);
	http_parser_pause(&c->p, 0);
	c->pending = NULL;
	c->pending_len = 0;
	if (p) {
		dapi_feed(c, p, n);
		free(p);
	}
	if (!c->busy && !c->closing)
		uv_read_start((uv_stream_t *)&c->pipe, dapi_alloc, dapi_read);
}

static void dapi_connection(uv_stream_t *listener, int status)
{
	struct dockerapi *s = listener->data;
	struct dapi_conn *c;

	if (status < 0) {
		dapi_logf("accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		dapi_logf("connection refused: out of memory");
		return;
	}
	c->refs = 2; /* pipe and timer */
	c->s = s;
	uv_pipe_init(s->loop, &c->pipe, 0);
	uv_timer_init(s->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0 ||
	    s->conn_count > DOCKERAPI_CLIENTS_MAX) {
		dapi_close(c);
		return;
	}
	uv_timer_start(&c->timer, dapi_timeout, dapi_idle_ms(c), 0);
	if (uv_read_start((uv_stream_t *)&c->pipe, dapi_alloc, dapi_read) < 0)
		dapi_close(c);
}

static void dapi_listener_closed(uv_handle_t *h)
{
	struct dockerapi *s = h->data;
	free(s->path);
	free(s);
}

int dockerapi_open(uv_loop_t *loop, const char *path, const struct dockerapi_backend *be,
		   struct dockerapi **out, char *err, size_t n)
{
	struct dockerapi *s;
	int rv;

	if ((rv = ctlsock_path_check(path, "docker API socket", err, n)))
		return rv;
	s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		snprintf(err, n, "out of memory");
		return CS_ENOMEM;
	}
	s->loop = loop;
	s->be = *be;
	uv_pipe_init(loop, &s->listener, 0);
	s->listener.data = s;
	if ((rv = ctlsock_listen_pipe(&s->listener, path, dapi_connection, err, n))) {
		uv_close((uv_handle_t *)&s->listener, dapi_listener_closed);
		return rv;
	}
	*out = s;
	return 0;
}

void dockerapi_close(struct dockerapi *s)
{
	if (!s)
		return;
	while (s->conns) {
		struct dapi_conn *c = s->conns;
		s->conns = c->next;
		c->s = NULL;
		c->prev = c->next = NULL;
		dapi_close(c);
	}
	s->conn_count = 0;
	unlink(s->path);
	uv_close((uv_handle_t *)&s->listener, dapi_listener_closed);
}
