/* swarmctl_cli: value parsing, service flags, tables, JSON and listings of
 * swarmctl. See swarmctl_cli.h.
 * Sections: values, service flags, tables, JSON, listings. */
#include "net/swarmctl_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/errors.h"
#include "core/pki.h"
#include "core/limits.h"
#include "core/scheduler.h"

__attribute__((format(printf, 3, 4))) static int cli_fail(char *err, size_t n,
							  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && n)
		vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return CS_EINVAL;
}

/* ---------------------------------------------------------------- values */

/* A decimal number at *p: whole part and up to 9 fraction digits (as
 * frac / 10^frac_digits). Returns false when there is no digit or it is too
 * large. */
static bool cli_decimal(const char **p, uint64_t *whole, uint64_t *frac,
			unsigned *frac_digits)
{
	const char *s = *p;
	bool any = false;

	*whole = 0;
	*frac = 0;
	*frac_digits = 0;
	while (*s >= '0' && *s <= '9') {
		if (*whole > 1000000000000000ull)
			return false;
		*whole = *whole * 10 + (uint64_t)(*s++ - '0');
		any = true;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			if (*frac_digits >= 9)
				return false;
			*frac = *frac * 10 + (uint64_t)(*s++ - '0');
			(*frac_digits)++;
			any = true;
		}
	}
	*p = s;
	return any;
}

static uint64_t cli_pow10(unsigned e)
{
	uint64_t v = 1;
	while (e--)
		v *= 10;
	return v;
}

/* whole.frac * unit, or false on overflow. */
static bool cli_scale(uint64_t whole, uint64_t frac, unsigned digits, uint64_t unit,
		      uint64_t *out)
{
	if (unit && whole > UINT64_MAX / unit)
		return false;
	*out = whole * unit;
	/* frac < 10^9 and unit < 2^50: fits when split */
	*out += frac * (unit / cli_pow10(digits)) +
		frac * (unit % cli_pow10(digits)) / cli_pow10(digits);
	return true;
}

int swarmctl_cli_duration_ms(const char *flag, const char *s, uint64_t *ms, char *err,
			     size_t n)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
	const char *p = s;
	uint64_t total = 0;

	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	while (*p) {
		uint64_t whole, frac, part;
		unsigned digits;
		size_t u;

		if (!cli_decimal(&p, &whole, &frac, &digits))
			goto bad;
		for (u = 0; u < sizeof units / sizeof units[0]; u++)
			if (strncmp(p, units[u].unit, strlen(units[u].unit)) == 0)
				break;
		if (u == sizeof units / sizeof units[0])
			goto bad;
		p += strlen(units[u].unit);
		if (!cli_scale(whole, frac, digits, units[u].ms, &part) ||
		    total + part < total)
			goto bad;
		total += part;
	}
	if (p == s)
		goto bad;
	*ms = total;
	return 0;
bad:
	return cli_fail(err, n,
			"%s: '%s' is not a duration (expected a number and a unit: "
			"500ms, 10s, 1m30s, 2h)",
			flag, s);
}

int swarmctl_cli_bytes(const char *flag, const char *s, uint64_t *bytes, char *err,
		       size_t n)
{
	static const struct {
		const char *unit;
		unsigned shift;
	} units[] = {
		{"", 0},     {"b", 0},	 {"k", 10},   {"kb", 10},  {"kib", 10},
		{"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},   {"gb", 30},
		{"gib", 30}, {"t", 40},	 {"tb", 40},  {"tib", 40},
	};
	const char *p = s;
	uint64_t whole, frac;
	unsigned digits;

	if (!cli_decimal(&p, &whole, &frac, &digits))
		goto bad;
	for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
		if (strcasecmp(p, units[u].unit) != 0)
			continue;
		if (!cli_scale(whole, frac, digits, 1ull << units[u].shift, bytes))
			goto bad;
		return 0;
	}
bad:
	return cli_fail(err, n,
			"%s: '%s' is not a size (expected bytes, or a number and a "
			"unit of 1024s: 64k, 64MiB, 1.5G)",
			flag, s);
}

int swarmctl_cli_millicpus(const char *flag, const char *s, uint64_t *mcpu, char *err,
			   size_t n)
{
	const char *p = s;
	uint64_t whole, frac;
	unsigned digits;

	if (!cli_decimal(&p, &whole, &frac, &digits) || *p || digits > 3 ||
	    whole > 1000000)
		return cli_fail(err, n,
				"%s: '%s' is not a number of cores (expected 0.5, 2 or "
				"0.125: up to a thousandth)",
				flag, s);
	*mcpu = whole * 1000 + frac * cli_pow10(3 - digits);
	return 0;
}

int swarmctl_cli_ratio_ppm(const char *flag, const char *s, uint32_t *ppm, char *err,
			   size_t n)
{
	const char *p = s;
	uint64_t whole, frac;
	unsigned digits;

	if (!cli_decimal(&p, &whole, &frac, &digits) || *p || digits > 6 || whole > 1 ||
	    (whole == 1 && frac))
		return cli_fail(err, n,
				"%s: '%s' is not a ratio (expected 0 to 1, e.g. 0.2)",
				flag, s);
	*ppm = (uint32_t)(whole * 1000000 + frac * cli_pow10(6 - digits));
	return 0;
}

int swarmctl_cli_u64(const char *flag, const char *s, uint64_t max, uint64_t *v,
		     char *err, size_t n)
{
	const char *p = s;
	uint64_t whole, frac;
	unsigned digits;

	if (!cli_decimal(&p, &whole, &frac, &digits) || *p || digits || strchr(s, '.') ||
	    whole > max)
		return cli_fail(err, n, "%s: '%s' is not a whole number from 0 to %llu",
				flag, s, (unsigned long long)max);
	*v = whole;
	return 0;
}

/* ---------------------------------------------------------------- service flags */

/* Copies a list into dst (up to the max) and returns its count. */
static size_t cli_copy_list(char **dst, char *const *src, size_t count)
{
	if (count > SWARMCTL_CLI_LIST_MAX)
		count = SWARMCTL_CLI_LIST_MAX;
	for (size_t i = 0; i < count; i++)
		dst[i] = src[i];
	return count;
}

/* ---------------------------------------------------------------- networks and ports (issue 15) */

/* Copies from's networks and endpoint into b (what b's arrays hold). */
static void cli_spec_init_net(struct swarmctl_cli_spec *b, const Cs__ServiceSpec *from)
{
	size_t n = from->n_networks < SWARMCTL_CLI_NETS_MAX ? from->n_networks
							    : SWARMCTL_CLI_NETS_MAX;
	for (size_t i = 0; i < n; i++) {
		b->nets[i] = *from->networks[i];
		b->nets[i].n_aliases =
			cli_copy_list(b->aliases[i], from->networks[i]->aliases,
				      from->networks[i]->n_aliases < SWARMCTL_CLI_NETS_MAX
					      ? from->networks[i]->n_aliases
					      : SWARMCTL_CLI_NETS_MAX);
	}
	b->spec.n_networks = n;
	if ((b->has_endpoint = from->endpoint != NULL)) {
		b->endpoint = *from->endpoint;
		n = from->endpoint->n_ports < SWARMCTL_CLI_PORTS_MAX
			    ? from->endpoint->n_ports
			    : SWARMCTL_CLI_PORTS_MAX;
		for (size_t i = 0; i < n; i++)
			b->ports[i] = *from->endpoint->ports[i];
		b->endpoint.n_ports = n;
	}
}

static void cli_spec_link_net(struct swarmctl_cli_spec *b)
{
	for (size_t i = 0; i < SWARMCTL_CLI_NETS_MAX; i++) {
		b->nets[i].aliases = b->aliases[i];
		b->net_ptrs[i] = &b->nets[i];
	}
	for (size_t i = 0; i < SWARMCTL_CLI_PORTS_MAX; i++)
		b->port_ptrs[i] = &b->ports[i];
	b->spec.networks = b->spec.n_networks ? b->net_ptrs : NULL;
	b->endpoint.ports = b->endpoint.n_ports ? b->port_ptrs : NULL;
	b->spec.endpoint = b->has_endpoint ? &b->endpoint : NULL;
}

/* Reads a port number (1..65535) from s[0..len). */
static bool cli_port(const char *s, size_t len, uint32_t *port)
{
	uint32_t v = 0;
	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	*port = v;
	return v >= 1 && v <= 65535;
}

static bool cli_proto(const char *s, size_t len, Cs__PortProtocol *p)
{
	if (len == 3 && strncmp(s, "tcp", 3) == 0)
		*p = CS__PORT_PROTOCOL__PORT_PROTOCOL_TCP;
	else if (len == 3 && strncmp(s, "udp", 3) == 0)
		*p = CS__PORT_PROTOCOL__PORT_PROTOCOL_UDP;
	else if (len == 4 && strncmp(s, "sctp", 4) == 0)
		*p = CS__PORT_PROTOCOL__PORT_PROTOCOL_SCTP;
	else
		return false;
	return true;
}

int swarmctl_cli_publish(const char *v, Cs__PortConfig *p, char *err, size_t n)
{
	const char *colon = strchr(v, ':');

	cs__port_config__init(p);
	if (!strchr(v, '=')) {
		/* P:T[/PROTO] (docker's -p; ingress mode) */
		const char *slash = strchr(v, '/');
		size_t tlen;
		if (!colon || !cli_port(v, (size_t)(colon - v), &p->published))
			goto bad;
		tlen = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
		if (!cli_port(colon + 1, tlen, &p->target))
			goto bad;
		if (slash && !cli_proto(slash + 1, strlen(slash + 1), &p->protocol))
			goto bad;
		return 0;
	}
	while (*v) {
		const char *end = strchr(v, ','), *eq = strchr(v, '=');
		size_t len = end ? (size_t)(end - v) : strlen(v), klen, vlen;
		if (!eq || eq > v + len)
			goto bad;
		klen = (size_t)(eq - v);
		vlen = len - klen - 1;
		if (klen == 9 && strncmp(v, "published", 9) == 0) {
			if (!cli_port(eq + 1, vlen, &p->published))
				goto bad;
		} else if (klen == 6 && strncmp(v, "target", 6) == 0) {
			if (!cli_port(eq + 1, vlen, &p->target))
				goto bad;
		} else if (klen == 8 && strncmp(v, "protocol", 8) == 0) {
			if (!cli_proto(eq + 1, vlen, &p->protocol))
				goto bad;
		} else if (klen == 4 && strncmp(v, "mode", 4) == 0) {
			if (vlen == 7 && strncmp(eq + 1, "ingress", 7) == 0)
				p->mode =
					CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_INGRESS;
			else if (vlen == 4 && strncmp(eq + 1, "host", 4) == 0)
				p->mode = CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST;
			else
				goto bad;
		} else {
			goto bad;
		}
		v += len + (end ? 1 : 0);
	}
	if (p->target == 0)
		goto bad;
	return 0;
bad:
	return cli_fail(err, n,
			"--publish: expected published=P,target=T[,protocol=tcp|udp|sctp]"
			"[,mode=ingress|host] or P:T[/PROTO]");
}

/* --network NAME or name=NAME[,alias=A]..., --publish, -p, --endpoint-mode;
 * a list given on update replaces the whole list. */
static int cli_spec_net_flag(struct swarmctl_cli_spec *b, const char *f, char *v,
			     char *err, size_t n)
{
	if (strcmp(f, "--endpoint-mode") == 0) {
		b->has_endpoint = true;
		if (strcmp(v, "vip") == 0)
			b->endpoint.mode = CS__ENDPOINT_SPEC__MODE__MODE_VIP;
		else if (strcmp(v, "dnsrr") == 0)
			b->endpoint.mode = CS__ENDPOINT_SPEC__MODE__MODE_DNSRR;
		else
			return cli_fail(err, n, "--endpoint-mode: expected vip or dnsrr");
		return 0;
	}
	if (strcmp(f, "--network") == 0) {
		Cs__NetworkAttachmentConfig *c;
		if (!b->nets_given)
			b->spec.n_networks = 0;
		b->nets_given = true;
		if (b->spec.n_networks >= SWARMCTL_CLI_NETS_MAX)
			return cli_fail(err, n, "--network: more than %u given",
					SWARMCTL_CLI_NETS_MAX);
		c = &b->nets[b->spec.n_networks];
		cs__network_attachment_config__init(c);
		if (strncmp(v, "name=", 5) != 0) {
			c->target = v;
		} else {
			/* name=NAME[,alias=A]...: cut at the commas (v is ours) */
			char *tok = v;
			while (tok) {
				char *next = strchr(tok, ',');
				if (next)
					*next++ = 0;
				if (strncmp(tok, "name=", 5) == 0)
					c->target = tok + 5;
				else if (strncmp(tok, "alias=", 6) == 0 &&
					 c->n_aliases < SWARMCTL_CLI_NETS_MAX)
					b->aliases[b->spec.n_networks][c->n_aliases++] =
						tok + 6;
				else
					return cli_fail(err, n,
							"--network: expected NAME or "
							"name=NAME[,alias=A]...");
				tok = next;
			}
		}
		if (!c->target || !*c->target)
			return cli_fail(err, n, "--network: empty name");
		b->spec.n_networks++;
		return 0;
	}
	/* --publish, -p */
	if (!b->ports_given)
		b->endpoint.n_ports = 0;
	b->ports_given = true;
	b->has_endpoint = true;
	if (b->endpoint.n_ports >= SWARMCTL_CLI_PORTS_MAX)
		return cli_fail(err, n, "--publish: more than %u given",
				SWARMCTL_CLI_PORTS_MAX);
	if (swarmctl_cli_publish(v, &b->ports[b->endpoint.n_ports], err, n))
		return CS_EINVAL;
	b->endpoint.n_ports++;
	return 0;
}

void swarmctl_cli_spec_init(struct swarmctl_cli_spec *b, const Cs__ServiceSpec *from)
{
	memset(b, 0, sizeof *b);
	cs__service_spec__init(&b->spec);
	cs__task_spec__init(&b->task);
	cs__container_spec__init(&b->container);
	cs__resources__init(&b->reserve);
	cs__resources__init(&b->limit);
	cs__restart_policy__init(&b->restart);
	cs__placement__init(&b->placement);
	cs__update_config__init(&b->update);
	cs__endpoint_spec__init(&b->endpoint);
	if (!from)
		return;
	b->spec = *from;
	if (from->task) {
		const Cs__TaskSpec *t = from->task;
		b->has_task = true;
		b->task = *t;
		if ((b->has_container = t->container != NULL)) {
			b->container = *t->container;
			b->container.n_env = cli_copy_list(b->env, t->container->env,
							   t->container->n_env);
			b->container.n_command =
				cli_copy_list(b->command, t->container->command,
					      t->container->n_command);
		}
		if ((b->has_reserve = t->reservations != NULL))
			b->reserve = *t->reservations;
		if ((b->has_limit = t->limits != NULL))
			b->limit = *t->limits;
		if ((b->has_restart = t->restart != NULL))
			b->restart = *t->restart;
		if ((b->has_placement = t->placement != NULL)) {
			b->placement = *t->placement;
			b->placement.n_constraints =
				cli_copy_list(b->constraints, t->placement->constraints,
					      t->placement->n_constraints);
			b->placement.n_spread_labels =
				cli_copy_list(b->spreads, t->placement->spread_labels,
					      t->placement->n_spread_labels);
		}
	}
	if ((b->has_update = from->update != NULL))
		b->update = *from->update;
	if ((b->has_rollback_cfg = from->rollback != NULL))
		b->rollback_cfg = *from->rollback;
	cli_spec_init_net(b, from);
	/* issue 20: the spec's secrets and configs, kept unless removed */
	if (from->task && from->task->container) {
		const Cs__ContainerSpec *c = from->task->container;
		for (int k = 0; k < 2; k++) {
			size_t n = k ? c->n_configs : c->n_secrets;
			Cs__SecretReference **v = k ? c->configs : c->secrets;
			for (size_t i = 0; i < n && i < SWARMCTL_CLI_FILES_MAX; i++)
				b->file_refs[k][b->file_count[k]++] = *v[i];
		}
	}
}

/* Points the spec at the parts that exist. */
static void cli_spec_link(struct swarmctl_cli_spec *b)
{
	b->container.env = b->env;
	b->container.command = b->command;
	b->placement.constraints = b->constraints;
	b->placement.spread_labels = b->spreads;
	b->task.container = b->has_container ? &b->container : NULL;
	b->task.reservations = b->has_reserve ? &b->reserve : NULL;
	b->task.limits = b->has_limit ? &b->limit : NULL;
	b->task.restart = b->has_restart ? &b->restart : NULL;
	b->task.placement = b->has_placement ? &b->placement : NULL;
	b->has_task = b->has_task || b->has_container || b->has_reserve || b->has_limit ||
		      b->has_restart || b->has_placement;
	b->spec.task = b->has_task ? &b->task : NULL;
	b->spec.update = b->has_update ? &b->update : NULL;
	if (b->health_given) {
		b->container.healthcheck = &b->health;
		if (b->health.n_test)
			b->health.test = b->health_test;
	}
	b->spec.rollback = b->has_rollback_cfg ? &b->rollback_cfg : NULL;
	if (b->force) {
		b->has_task = true;
		b->task.force_update++;
		b->spec.task = &b->task;
	}
	cli_spec_link_net(b);
	/* issue 20 */
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < b->file_count[k]; i++)
			b->file_ptrs[k][i] = &b->file_refs[k][i];
	if (b->files_given) {
		b->has_container = b->has_task = true;
		b->task.container = &b->container;
		b->spec.task = &b->task;
	}
	b->container.n_secrets = b->file_count[0];
	b->container.secrets = b->file_count[0] ? b->file_ptrs[0] : NULL;
	b->container.n_configs = b->file_count[1];
	b->container.configs = b->file_count[1] ? b->file_ptrs[1] : NULL;
}

/* Adds s to a list of the spec; a list given on update starts empty. */
static int cli_list_add(char **list, size_t *count, bool *given, const char *flag,
			char *s, char *err, size_t n)
{
	if (!*given)
		*count = 0;
	*given = true;
	if (*count >= SWARMCTL_CLI_LIST_MAX)
		return cli_fail(err, n, "%s: more than %u given", flag,
				SWARMCTL_CLI_LIST_MAX);
	list[(*count)++] = s;
	return 0;
}

enum cli_kw_kind { CLI_KW_COND, CLI_KW_ACTION, CLI_KW_ORDER, CLI_KW_MODE };

/* Looks value up among the words of a keyword flag. */
static int cli_keyword(enum cli_kw_kind kind, const char *flag, const char *value,
		       int *out, char *err, size_t n)
{
	static const char *const words[][4] = {
		[CLI_KW_COND] = {"any", "on-failure", "none", NULL},
		[CLI_KW_ACTION] = {"pause", "continue", "rollback", NULL},
		[CLI_KW_ORDER] = {"stop-first", "start-first", NULL, NULL},
		[CLI_KW_MODE] = {"replicated", "global", "replicated-job", "global-job"},
	};
	static const char *const expected[] = {
		[CLI_KW_COND] = "any, on-failure or none",
		[CLI_KW_ACTION] = "pause, continue or rollback",
		[CLI_KW_ORDER] = "stop-first or start-first",
		[CLI_KW_MODE] = "replicated, global, replicated-job or global-job",
	};
	for (int i = 0; i < 4 && words[kind][i]; i++) {
		if (strcmp(words[kind][i], value) == 0) {
			*out = i;
			return 0;
		}
	}
	return cli_fail(err, n, "%s: unknown value '%s' (expected %s)", flag, value,
			expected[kind]);
}

/* The flags that take a value. */
static const char *const cli_value_flags[] = {
	"--name",
	"--replicas",
	"--mode",
	"--image",
	"--env",
	"--constraint",
	"--reserve-cpu",
	"--reserve-memory",
	"--limit-cpu",
	"--limit-memory",
	"--restart-condition",
	"--restart-delay",
	"--restart-max-attempts",
	"--restart-window",
	"--update-parallelism",
	"--update-delay",
	"--update-failure-action",
	"--update-monitor",
	"--update-max-failure-ratio",
	"--update-order",
	"--placement-pref",
	"--max-concurrent",
	"--health-cmd",
	"--health-interval",
	"--health-timeout",
	"--health-retries",
	"--health-start-period",
	"--stop-grace-period",
	"--rollback-parallelism",
	"--rollback-delay",
	"--rollback-failure-action",
	"--rollback-monitor",
	"--rollback-max-failure-ratio",
	"--rollback-order",
	"--label",
	"--network",
	"--publish",
	"-p",
	"--endpoint-mode",
	"--rebalance-parallelism",
	"--secret",
	"--config",
	"--secret-rm",
	"--config-rm",
};

/* Applies a --health-* flag (issue 14, docker service's): the health
 * check starts from the spec's, --health-cmd CMD is ["CMD-SHELL", CMD]
 * (an empty CMD: the image's). */
static int cli_health_flag(struct swarmctl_cli_spec *b, const char *f, char *v, char *err,
			   size_t n)
{
	if (!b->health_given) {
		const Cs__HealthConfig *cur = b->container.healthcheck;
		cs__health_config__init(&b->health);
		if (cur) {
			b->health = *cur;
			b->health.n_test = cur->n_test > 2 ? 2 : cur->n_test;
			for (size_t i = 0; i < b->health.n_test; i++)
				b->health_test[i] = cur->test[i];
		}
		b->health_given = true;
	}
	b->has_container = true;
	b->health_flag = true;
	if (strcmp(f, "--health-cmd") == 0) {
		b->health_test[0] = "CMD-SHELL";
		b->health_test[1] = v;
		b->health.n_test = *v ? 2 : 0;
		return 0;
	}
	if (strcmp(f, "--health-retries") == 0)
		return swarmctl_cli_u64(f, v, INT32_MAX, &b->health.retries, err, n);
	if (strcmp(f, "--health-interval") == 0)
		return swarmctl_cli_duration_ms(f, v, &b->health.interval_ms, err, n);
	if (strcmp(f, "--health-timeout") == 0)
		return swarmctl_cli_duration_ms(f, v, &b->health.timeout_ms, err, n);
	return swarmctl_cli_duration_ms(f, v, &b->health.start_period_ms, err, n);
}

/* Applies one --rollback-* flag (SwarmKit's rollback config: as the update
 * flags; a spec without one starts from SwarmKit's defaults). */
static int cli_rollback_flag(struct swarmctl_cli_spec *b, const char *f, char *v,
			     char *err, size_t n)
{
	Cs__UpdateConfig *r = &b->rollback_cfg;
	int k, rv;

	if (!b->has_rollback_cfg) {
		cs__update_config__init(r);
		r->parallelism = 1;
		r->monitor_ms = 5000;
		r->failure_action =
			CS__UPDATE_CONFIG__FAILURE_ACTION__FAILURE_ACTION_PAUSE;
		r->order = CS__UPDATE_CONFIG__ORDER__ORDER_STOP_FIRST;
		b->has_rollback_cfg = true;
	}
	if (strcmp(f, "--rollback-parallelism") == 0)
		return swarmctl_cli_u64(f, v, LIMIT_SCN_REPLICAS_MAX, &r->parallelism,
					err, n);
	if (strcmp(f, "--rollback-delay") == 0)
		return swarmctl_cli_duration_ms(f, v, &r->delay_ms, err, n);
	if (strcmp(f, "--rollback-monitor") == 0)
		return swarmctl_cli_duration_ms(f, v, &r->monitor_ms, err, n);
	if (strcmp(f, "--rollback-max-failure-ratio") == 0)
		return swarmctl_cli_ratio_ppm(f, v, &r->max_failure_ratio_ppm, err, n);
	if (strcmp(f, "--rollback-order") == 0) {
		if ((rv = cli_keyword(CLI_KW_ORDER, f, v, &k, err, n)))
			return rv;
		r->order = (Cs__UpdateConfig__Order)k;
		return 0;
	}
	if ((rv = cli_keyword(CLI_KW_ACTION, f, v, &k, err, n)))
		return rv;
	r->failure_action = (Cs__UpdateConfig__FailureAction)k;
	return 0;
}

/* Issue 20: --secret / --config (Docker's: NAME, or comma-separated
 * source=NAME (src=), target=T, uid=U, gid=G, mode=OCTAL), and on update
 * --secret-rm / --config-rm NAME. A reference to a name already in the
 * list replaces it. */
static int cli_file_flag(struct swarmctl_cli_spec *b, const char *f, char *v, bool update,
			 char *err, size_t n)
{
	int k = strncmp(f, "--config", 8) == 0;
	bool rm = strstr(f, "-rm") != NULL;
	Cs__SecretReference r = CS__SECRET_REFERENCE__INIT;
	size_t i;

	b->files_given = true;
	if (rm) {
		if (!update)
			return cli_fail(err, n, "%s: only on update", f);
		for (i = 0; i < b->file_count[k]; i++)
			if (strcmp(b->file_refs[k][i].secret_name, v) == 0)
				break;
		if (i == b->file_count[k])
			return cli_fail(err, n, "%s: the service has no %s named '%s'", f,
					k ? "config" : "secret", v);
		memmove(&b->file_refs[k][i], &b->file_refs[k][i + 1],
			(b->file_count[k] - i - 1) * sizeof b->file_refs[k][0]);
		b->file_count[k]--;
		return 0;
	}
	if (b->file_count[k] == SWARMCTL_CLI_FILES_MAX)
		return cli_fail(err, n, "%s: more than %u given", f,
				SWARMCTL_CLI_FILES_MAX);
	if (strlen(v) >= sizeof b->file_args[k][0])
		return cli_fail(err, n, "%s: '%.40s...' is too long", f, v);
	v = strcpy(b->file_args[k][b->file_count[k]], v);
	for (char *field = v, *next; field; field = next) {
		char *eq;
		next = strchr(field, ',');
		if (next)
			*next++ = 0;
		eq = strchr(field, '=');
		if (!eq && field == v) {
			r.secret_name = field;
			continue;
		}
		if (!eq)
			return cli_fail(err, n,
					"%s: '%s' is not KEY=VALUE (source, target, "
					"uid, gid or mode)",
					f, field);
		*eq = 0;
		if (strcmp(field, "source") == 0 || strcmp(field, "src") == 0) {
			r.secret_name = eq + 1;
		} else if (strcmp(field, "target") == 0) {
			r.target = eq + 1;
		} else if (strcmp(field, "uid") == 0) {
			r.uid = eq + 1;
		} else if (strcmp(field, "gid") == 0) {
			r.gid = eq + 1;
		} else if (strcmp(field, "mode") == 0) {
			char *end;
			unsigned long m = strtoul(eq + 1, &end, 8);
			if (!eq[1] || *end || m > 07777)
				return cli_fail(err, n,
						"%s: mode '%s' is not an octal file "
						"mode (0444)",
						f, eq + 1);
			r.mode = (uint32_t)m;
		} else {
			return cli_fail(err, n,
					"%s: unknown option '%s' (source, target, "
					"uid, gid or mode)",
					f, field);
		}
	}
	if (!r.secret_name || !*r.secret_name)
		return cli_fail(err, n, "%s: say which %s (NAME or source=NAME)", f,
				k ? "config" : "secret");
	for (i = 0; i < b->file_count[k]; i++)
		if (strcmp(b->file_refs[k][i].secret_name, r.secret_name) == 0)
			break;
	if (i == SWARMCTL_CLI_FILES_MAX)
		return cli_fail(err, n, "%s: more than %u given", f,
				SWARMCTL_CLI_FILES_MAX);
	b->file_refs[k][i] = r;
	if (i == b->file_count[k])
		b->file_count[k]++;
	return 0;
}

/* Applies one flag with its value to b. */
static int cli_spec_flag(struct swarmctl_cli_spec *b, const char *f, char *v, bool update,
			 char *err, size_t n)
{
	uint64_t u;
	int k, rv;

	if (strncmp(f, "--rollback-", 11) == 0)
		return cli_rollback_flag(b, f, v, err, n);
	if (strcmp(f, "--rebalance-parallelism") == 0) /* issue 20 */
		return swarmctl_cli_u64(f, v, LIMIT_SCN_REPLICAS_MAX,
					&b->spec.rebalance_parallelism, err, n);
	if (strncmp(f, "--secret", 8) == 0 || strncmp(f, "--config", 8) == 0)
		return cli_file_flag(b, f, v, update, err, n);
	if (strcmp(f, "--network") == 0 || strcmp(f, "--publish") == 0 ||
	    strcmp(f, "-p") == 0 || strcmp(f, "--endpoint-mode") == 0)
		return cli_spec_net_flag(b, f, v, err, n);
	if (strcmp(f, "--name") == 0) {
		if (update)
			return cli_fail(err, n,
					"--name: a service cannot be renamed (give the "
					"name as the argument of update)");
		b->spec.name = v;
	} else if (strcmp(f, "--replicas") == 0) {
		if ((rv = swarmctl_cli_u64(f, v, LIMIT_SCN_REPLICAS_MAX, &u, err, n)))
			return rv;
		b->spec.replicas = u;
		b->replicas_given = true;
	} else if (strcmp(f, "--mode") == 0) {
		if ((rv = cli_keyword(CLI_KW_MODE, f, v, &k, err, n)))
			return rv;
		b->spec.global = k == 1 || k == 3;
		b->spec.job = k >= 2; /* replicated-job, global-job (issue 14) */
		b->mode_given = true;
	} else if (strcmp(f, "--max-concurrent") == 0) {
		/* a replicated job's tasks at once (0, the default: as many as
		 * --replicas, the docker CLI's default) */
		if ((rv = swarmctl_cli_u64(f, v, LIMIT_SCN_REPLICAS_MAX, &u, err, n)))
			return rv;
		b->spec.max_concurrent = u;
	} else if (strcmp(f, "--image") == 0) {
		if (!*v)
			return cli_fail(err, n,
					"--image: empty (expected an image name)");
		b->has_container = true;
		b->container.image = v;
	} else if (strcmp(f, "--env") == 0) {
		char *eq = strchr(v, '=');
		if (!eq || eq == v)
			return cli_fail(err, n,
					"--env: '%s' is not KEY=VALUE (a non-empty key, "
					"then =)",
					v);
		b->has_container = true;
		return cli_list_add(b->env, &b->container.n_env, &b->env_given, f, v, err,
				    n);
	} else if (strcmp(f, "--constraint") == 0) {
		if (!sched_constraint_is_valid(v))
			return cli_fail(
				err, n,
				"--constraint: '%s' is not a constraint (expected "
				"node.id, node.hostname, node.role, "
				"node.labels.KEY, node.platform.os, "
				"node.platform.arch, engine.labels.KEY or node.ip, "
				"then == or !=, then a value)",
				v);
		b->has_placement = true;
		return cli_list_add(b->constraints, &b->placement.n_constraints,
				    &b->constraints_given, f, v, err, n);
	} else if (strcmp(f, "--placement-pref") == 0) {
		static const char prefix[] = "spread=node.labels.";
		if (strncmp(v, prefix, sizeof prefix - 1) != 0 || !v[sizeof prefix - 1])
			return cli_fail(err, n,
					"--placement-pref: '%s' is not a preference "
					"(expected spread=node.labels.KEY)",
					v);
		b->has_placement = true;
		if (!b->spreads_given)
			b->placement.n_spread_labels = 0;
		if (b->placement.n_spread_labels >= LIMIT_SCN_SPREADS_MAX)
			return cli_fail(err, n, "--placement-pref: more than %u given",
					LIMIT_SCN_SPREADS_MAX);
		return cli_list_add(b->spreads, &b->placement.n_spread_labels,
				    &b->spreads_given, f, v + strlen("spread="), err, n);
	} else if (strcmp(f, "--reserve-cpu") == 0 || strcmp(f, "--limit-cpu") == 0) {
		bool lim = f[2] == 'l';
		if ((rv = swarmctl_cli_millicpus(f, v, &u, err, n)))
			return rv;
		*(lim ? &b->has_limit : &b->has_reserve) = true;
		(lim ? &b->limit : &b->reserve)->millicpus = u;
	} else if (strcmp(f, "--reserve-memory") == 0 ||
		   strcmp(f, "--limit-memory") == 0) {
		bool lim = f[2] == 'l';
		if ((rv = swarmctl_cli_bytes(f, v, &u, err, n)))
			return rv;
		*(lim ? &b->has_limit : &b->has_reserve) = true;
		(lim ? &b->limit : &b->reserve)->memory_bytes = u;
	} else if (strcmp(f, "--label") == 0) {
		_Static_assert(sizeof b->label_keys[0] == LIMIT_NAME_BYTES_MAX + 1,
			       "a label key and its NUL");
		const char *eq = strchr(v, '=');
		Cs__Label *l;
		if (!*v || v[0] == '=' ||
		    (eq ? (size_t)(eq - v) : strlen(v)) > LIMIT_NAME_BYTES_MAX)
			return cli_fail(err, n,
					"--label: '%s' is not KEY=VALUE (a key of 1 to "
					"%u bytes, then = and a value, or the key alone)",
					v, LIMIT_NAME_BYTES_MAX);
		if (!b->labels_given)
			b->spec.n_labels = 0;
		b->labels_given = true;
		if (b->spec.n_labels >= SWARMCTL_CLI_LIST_MAX)
			return cli_fail(err, n, "%s: more than %u given", f,
					SWARMCTL_CLI_LIST_MAX);
		l = &b->label_store[b->spec.n_labels];
		cs__label__init(l);
		/* the key copied: argv is parsed twice on update, never cut */
		snprintf(b->label_keys[b->spec.n_labels], sizeof b->label_keys[0], "%.*s",
			 (int)(eq ? (size_t)(eq - v) : strlen(v)), v);
		l->key = b->label_keys[b->spec.n_labels];
		l->value = eq ? (char *)eq + 1 : "";
		b->labels[b->spec.n_labels++] = l;
	} else if (strncmp(f, "--restart-", 10) == 0) {
		b->has_restart = true;
		if (strcmp(f, "--restart-condition") == 0) {
			if ((rv = cli_keyword(CLI_KW_COND, f, v, &k, err, n)))
				return rv;
			b->restart.condition = (Cs__RestartPolicy__Condition)k;
		} else if (strcmp(f, "--restart-delay") == 0) {
			return swarmctl_cli_duration_ms(f, v, &b->restart.delay_ms, err,
							n);
		} else if (strcmp(f, "--restart-window") == 0) {
			return swarmctl_cli_duration_ms(f, v, &b->restart.window_ms, err,
							n);
		} else {
			return swarmctl_cli_u64(f, v, 1000000, &b->restart.max_attempts,
						err, n);
		}
	} else if (strncmp(f, "--health-", 9) == 0) {
		return cli_health_flag(b, f, v, err, n);
	} else if (strcmp(f, "--stop-grace-period") == 0) {
		b->has_container = true;
		return swarmctl_cli_duration_ms(f, v, &b->container.stop_grace_period_ms,
						err, n);
	} else if (strncmp(f, "--update-", 9) == 0) {
		b->has_update = true;
		if (strcmp(f, "--update-parallelism") == 0)
			return swarmctl_cli_u64(f, v, LIMIT_SCN_REPLICAS_MAX,
						&b->update.parallelism, err, n);
		if (strcmp(f, "--update-delay") == 0)
			return swarmctl_cli_duration_ms(f, v, &b->update.delay_ms, err,
							n);
		if (strcmp(f, "--update-monitor") == 0)
			return swarmctl_cli_duration_ms(f, v, &b->update.monitor_ms, err,
							n);
		if (strcmp(f, "--update-max-failure-ratio") == 0)
			return swarmctl_cli_ratio_ppm(
				f, v, &b->update.max_failure_ratio_ppm, err, n);
		if (strcmp(f, "--update-order") == 0) {
			if ((rv = cli_keyword(CLI_KW_ORDER, f, v, &k, err, n)))
				return rv;
			b->update.order = (Cs__UpdateConfig__Order)k;
		} else {
			if ((rv = cli_keyword(CLI_KW_ACTION, f, v, &k, err, n)))
				return rv;
			b->update.failure_action = (Cs__UpdateConfig__FailureAction)k;
		}
	}
	return 0;
}

int swarmctl_cli_spec(struct swarmctl_cli_spec *b, int argc, char **argv, bool update,
		      char *err, size_t n)
{
	int rv;

	for (int i = 0; i < argc; i++) {
		char *a = argv[i], *value = NULL, flag[64];
		const char *eq;
		bool known = false;

		if (strcmp(a, "--") == 0) {
			b->has_container = true;
			b->command_given = true;
			b->container.n_command = 0;
			for (i++; i < argc; i++) {
				if (b->container.n_command >= SWARMCTL_CLI_LIST_MAX)
					return cli_fail(err, n,
							"--: more than %u arguments",
							SWARMCTL_CLI_LIST_MAX);
				b->command[b->container.n_command++] = argv[i];
			}
			break;
		}
		if (update && strcmp(a, "--rollback") == 0) {
			b->rollback = true;
			continue;
		}
		if (strcmp(a, "--no-healthcheck") == 0) {
			/* docker's: ["NONE"], the image's check disabled too */
			b->has_container = true;
			b->no_healthcheck = true;
			continue;
		}
		if (update && strcmp(a, "--force") == 0) {
			b->force = true;
			continue;
		}
		/* issue 20: rebalancing, opted into per service (a boolean flag,
		 * as docker's: --rebalance, --rebalance=true|false) */
		if (strcmp(a, "--rebalance") == 0 || strcmp(a, "--rebalance=true") == 0) {
			b->spec.rebalance = true;
			continue;
		}
		if (strcmp(a, "--no-rebalance") == 0 ||
		    strcmp(a, "--rebalance=false") == 0) {
			b->spec.rebalance = false;
			b->spec.rebalance_parallelism = 0;
			continue;
		}
		if (a[0] != '-') {
			if (update && !b->target) {
				b->target = a;
				continue;
			}
			return cli_fail(err, n,
					"unexpected argument '%s' (a command to run goes "
					"after --)",
					a);
		}
		eq = strchr(a, '=');
		snprintf(flag, sizeof flag, "%.*s", eq ? (int)(eq - a) : (int)strlen(a),
			 a);
		for (size_t f = 0; f < sizeof cli_value_flags / sizeof cli_value_flags[0];
		     f++)
			known = known || strcmp(flag, cli_value_flags[f]) == 0;
		if (!known)
			return cli_fail(err, n, "unknown flag '%s' (see --help)", flag);
		if (eq)
			value = (char *)eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return cli_fail(err, n, "%s: needs a value", flag);
		if ((rv = cli_spec_flag(b, flag, value, update, err, n)))
			return rv;
	}
	if (b->spec.global && b->replicas_given && b->spec.replicas)
		return cli_fail(err, n,
				"--replicas: a global service has no replica count");
	if (b->no_healthcheck) {
		if (b->health_flag)
			return cli_fail(err, n,
					"--no-healthcheck conflicts with --health-* "
					"options");
		cs__health_config__init(&b->health);
		b->health_test[0] = "NONE";
		b->health.n_test = 1;
		b->health_given = true;
	}
	if (!update) {
		if (!b->spec.name || !*b->spec.name)
			return cli_fail(err, n, "--name: required");
		if (!b->container.image || !*b->container.image)
			return cli_fail(err, n, "--image: required");
		if (!b->spec.global && !b->replicas_given)
			b->spec.replicas = 1;
	} else {
		if (!b->target)
			return cli_fail(err, n, "NAME: say which service to update");
		if (b->mode_given)
			return cli_fail(
				err, n,
				"--mode: a service cannot change between replicated "
				"and global");
		if (b->spec.global && b->replicas_given)
			return cli_fail(
				err, n,
				"--replicas: a global service has no replica count");
	}
	cli_spec_link(b);
	if (b->labels_given)
		b->spec.labels = b->labels;
	return 0;
}

/* ---------------------------------------------------------------- task filters */

int swarmctl_cli_task_filter(struct swarmctl_cli_task_filter *f, char *arg, char *err,
			     size_t n)
{
	char *eq = strchr(arg, '=');
	char *v = eq ? eq + 1 : NULL;
	size_t key_len = eq ? (size_t)(eq - arg) : strlen(arg);

	if (!v || !*v)
		return cli_fail(err, n,
				"--filter: '%s' is not KEY=VALUE (node=, desired-state=, "
				"label= or service=)",
				arg);
	if (key_len == 7 && strncmp(arg, "service", 7) == 0) {
		f->service = v;
		return 0;
	}
	if (key_len == 4 && strncmp(arg, "node", 4) == 0) {
		if (f->node_count >= sizeof f->nodes / sizeof f->nodes[0])
			return cli_fail(err, n, "--filter: more than 32 nodes");
		f->nodes[f->node_count++] = v;
		return 0;
	}
	if (key_len == 5 && strncmp(arg, "label", 5) == 0) {
		if (v[0] == '=')
			return cli_fail(err, n,
					"--filter: label '%s' has no key (expected "
					"label=KEY or label=KEY=VALUE)",
					v);
		if (f->label_count >= sizeof f->labels / sizeof f->labels[0])
			return cli_fail(err, n, "--filter: more than 32 labels");
		f->labels[f->label_count++] = v;
		return 0;
	}
	if (key_len == 13 && strncmp(arg, "desired-state", 13) == 0) {
		for (int s = 0; s <= CS__TASK_STATE__TASK_STATE_ORPHANED; s++) {
			if (strcmp(swarmctl_cli_task_state((Cs__TaskState)s), v) != 0)
				continue;
			if (f->desired_count >= sizeof f->desired / sizeof f->desired[0])
				return cli_fail(err, n,
						"--filter: more than 32 desired states");
			f->desired[f->desired_count++] = (Cs__TaskState)s;
			return 0;
		}
		return cli_fail(
			err, n,
			"--filter: desired-state '%s' is not a task state "
			"(expected running, shutdown, accepted, complete, remove, "
			"...)",
			v);
	}
	return cli_fail(err, n,
			"--filter: unknown filter '%.*s' (expected node, desired-state, "
			"label or service)",
			(int)key_len, arg);
}

void swarmctl_cli_time(char *buf, size_t size, uint64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0 || !gmtime_r(&secs, &tm)) {
		snprintf(buf, size, "%s", "");
		return;
	}
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ms % 1000));
}

/* ---------------------------------------------------------------- tables */

static int cli_table_grow(struct swarmctl_cli_table *t)
{
	size_t need = (t->rows + 1) * t->cols;
	char **p;

	if (need <= t->cap)
		return 0;
	p = realloc(t->cells, 2 * need * sizeof *p);
	if (!p)
		return CS_ENOMEM;
	t->cells = p;
	t->cap = 2 * need;
	return 0;
}

int swarmctl_cli_table_init(struct swarmctl_cli_table *t, size_t cols,
			    const char *const *headers)
{
	memset(t, 0, sizeof *t);
	t->cols = cols;
	return swarmctl_cli_table_add(t, headers);
}

int swarmctl_cli_table_add(struct swarmctl_cli_table *t, const char *const *cells)
{
	char **row;

	if (cli_table_grow(t))
		return CS_ENOMEM;
	row = t->cells + t->rows * t->cols;
	for (size_t c = 0; c < t->cols; c++) {
		row[c] = strdup(cells[c] ? cells[c] : "");
		if (!row[c]) {
			while (c--)
				free(row[c]);
			return CS_ENOMEM;
		}
	}
	t->rows++;
	return 0;
}

/* Display width of a UTF-8 string: its code points. */
static size_t cli_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void swarmctl_cli_table_print(const struct swarmctl_cli_table *t, FILE *out)
{
	size_t width[32] = {0};
	size_t cols = t->cols < 32 ? t->cols : 32;

	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < cols; c++) {
			size_t w = cli_width(t->cells[r * t->cols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->rows; r++) {
		size_t last = cols;
		/* empty cells at the end would leave trailing spaces */
		while (last > 1 && !*t->cells[r * t->cols + last - 1])
			last--;
		for (size_t c = 0; c < last; c++) {
			const char *cell = t->cells[r * t->cols + c];
			fputs(cell, out);
			if (c + 1 < last)
				fprintf(out, "%*s", (int)(width[c] - cli_width(cell) + 3),
					"");
		}
		fputc('\n', out);
	}
}

void swarmctl_cli_table_free(struct swarmctl_cli_table *t)
{
	for (size_t i = 0; i < t->rows * t->cols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- JSON */

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t cli_utf8_len(const unsigned char *s)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, or a surrogate */
	return len;
}

void swarmctl_cli_json_escape(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");

	fputc('"', out);
	while (*s) {
		size_t len;
		switch (*s) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\b': fputs("\\b", out); break;
		case '\f': fputs("\\f", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*s < 0x20) {
				fprintf(out, "\\u%04x", *s);
				break;
			}
			len = cli_utf8_len(s);
			if (len == 0) {
				fputs("\\ufffd", out);
				break;
			}
			fwrite(s, 1, len, out);
			s += len - 1;
			break;
		}
		s++;
	}
	fputc('"', out);
}

void swarmctl_cli_json_init(struct swarmctl_cli_json *j, FILE *out)
{
	memset(j, 0, sizeof *j);
	j->out = out;
	j->first[0] = true;
}

/* Before a value: the comma and the indent, unless it follows its key. */
static void cli_json_value(struct swarmctl_cli_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[j->depth])
		fputc(',', j->out);
	j->first[j->depth] = false;
	fprintf(j->out, "\n%*s", (int)(2 * j->depth), "");
}

void swarmctl_cli_json_open(struct swarmctl_cli_json *j, char bracket)
{
	cli_json_value(j);
	fputc(bracket, j->out);
	if (j->depth + 1 < SWARMCTL_CLI_JSON_DEPTH_MAX)
		j->depth++;
	j->first[j->depth] = true;
}

void swarmctl_cli_json_close(struct swarmctl_cli_json *j, char bracket)
{
	bool empty = j->first[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (!empty)
		fprintf(j->out, "\n%*s", (int)(2 * j->depth), "");
	fputc(bracket, j->out);
	if (j->depth == 0)
		fputc('\n', j->out);
}

void swarmctl_cli_json_key(struct swarmctl_cli_json *j, const char *key)
{
	cli_json_value(j);
	swarmctl_cli_json_escape(j->out, key);
	fputs(": ", j->out);
	j->after_key = true;
}

void swarmctl_cli_json_str(struct swarmctl_cli_json *j, const char *s)
{
	cli_json_value(j);
	swarmctl_cli_json_escape(j->out, s);
}

void swarmctl_cli_json_u64(struct swarmctl_cli_json *j, uint64_t v)
{
	cli_json_value(j);
	fprintf(j->out, "%llu", (unsigned long long)v);
}

void swarmctl_cli_json_i64(struct swarmctl_cli_json *j, int64_t v)
{
	cli_json_value(j);
	fprintf(j->out, "%lld", (long long)v);
}

void swarmctl_cli_json_bool(struct swarmctl_cli_json *j, bool v)
{
	cli_json_value(j);
	fputs(v ? "true" : "false", j->out);
}

/* ---------------------------------------------------------------- listings */

const char *swarmctl_cli_task_state(Cs__TaskState s)
{
	static const char *const names[] = {
		"new",	  "pending",  "assigned", "accepted", "preparing",
		"ready",  "starting", "running",  "complete", "shutdown",
		"failed", "rejected", "remove",	  "orphaned",
	};
	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *swarmctl_cli_node_state(Cs__NodeState s)
{
	static const char *const names[] = {"unknown", "down", "ready", "disconnected"};
	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *swarmctl_cli_availability(Cs__NodeAvailability a)
{
	static const char *const names[] = {"active", "pause", "drain"};
	return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "unknown";
}

const char *swarmctl_cli_role(Cs__NodeRole r)
{
	return r == CS__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker";
}

static const char *cli_update_state(const Cs__Service *s)
{
	static const char *const names[] = {
		"",
		"updating",
		"paused",
		"completed",
		"rollback_started",
		"rollback_completed",
		"rollback_paused",
	};
	unsigned st = s->update_status ? (unsigned)s->update_status->state : 0;
	return st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

static void cli_hex(char *buf, size_t n, uint64_t id)
{
	snprintf(buf, n, "%016llx", (unsigned long long)id);
}

static void cli_json_hex(struct swarmctl_cli_json *j, const char *key, uint64_t id)
{
	char hex[17];
	cli_hex(hex, sizeof hex, id);
	swarmctl_cli_json_key(j, key);
	swarmctl_cli_json_str(j, hex);
}

static void cli_json_kv_str(struct swarmctl_cli_json *j, const char *key, const char *v)
{
	swarmctl_cli_json_key(j, key);
	swarmctl_cli_json_str(j, v);
}

static void cli_json_kv_u64(struct swarmctl_cli_json *j, const char *key, uint64_t v)
{
	swarmctl_cli_json_key(j, key);
	swarmctl_cli_json_u64(j, v);
}

/* created_at and updated_at (RFC 3339, UTC), as docker inspect's CreatedAt
 * and UpdatedAt; "" for a record written without a time. */
static void cli_json_times(struct swarmctl_cli_json *j, uint64_t created_ms,
			   uint64_t updated_ms)
{
	char buf[40];

	swarmctl_cli_time(buf, sizeof buf, created_ms);
	cli_json_kv_str(j, "created_at", buf);
	swarmctl_cli_time(buf, sizeof buf, updated_ms);
	cli_json_kv_str(j, "updated_at", buf);
}

/* Issue 20: a spec's "secrets" and "configs": name, id, target, uid, gid,
 * mode (octal text, as Docker's --secret mode=). */
static void cli_json_file_refs(struct swarmctl_cli_json *j, const Cs__ContainerSpec *c)
{
	for (int k = 0; k < 2; k++) {
		size_t n = k ? c->n_configs : c->n_secrets;
		Cs__SecretReference **v = k ? c->configs : c->secrets;
		if (!n)
			continue;
		swarmctl_cli_json_key(j, k ? "configs" : "secrets");
		swarmctl_cli_json_open(j, '[');
		for (size_t i = 0; i < n; i++) {
			char mode[16];
			swarmctl_cli_json_open(j, '{');
			cli_json_kv_str(j, "name", v[i]->secret_name);
			cli_json_hex(j, "id", v[i]->secret_id);
			cli_json_kv_str(j, "target", v[i]->target);
			cli_json_kv_str(j, "uid", v[i]->uid);
			cli_json_kv_str(j, "gid", v[i]->gid);
			snprintf(mode, sizeof mode, "0%o", (unsigned)v[i]->mode);
			cli_json_kv_str(j, "mode", mode);
			swarmctl_cli_json_close(j, '}');
		}
		swarmctl_cli_json_close(j, ']');
	}
}

/* A task counts as running when it runs and is meant to. */
static bool cli_task_running(const Cs__Task *t)
{
	return t->status && t->status->state == CS__TASK_STATE__TASK_STATE_RUNNING &&
	       t->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING;
}

static void cli_service_counts(const Cs__Service *s, Cs__Task *const *tasks,
			       size_t n_tasks, uint64_t *running, uint64_t *desired)
{
	uint64_t wanted = 0;

	*running = 0;
	for (size_t i = 0; i < n_tasks; i++) {
		if (tasks[i]->service_id != s->id)
			continue;
		if (cli_task_running(tasks[i]))
			(*running)++;
		if (tasks[i]->desired_state == CS__TASK_STATE__TASK_STATE_RUNNING)
			wanted++;
	}
	/* a global service wants one task per eligible node: those it has */
	*desired = s->spec && !s->spec->global ? s->spec->replicas : wanted;
	/* a replicated job wants its max concurrent running (docker's
	 * DesiredTasks) */
	if (s->spec && s->spec->job && !s->spec->global)
		*desired = s->spec->max_concurrent &&
					   s->spec->max_concurrent < s->spec->replicas
				   ? s->spec->max_concurrent
				   : s->spec->replicas;
}

/* ---------------------------------------------------------------- jobs (issue 14) */

/* A service's mode as swarmctl's --mode says it. sp may be NULL. */
static const char *cli_mode(const Cs__ServiceSpec *sp)
{
	if (!sp)
		return "";
	if (sp->job)
		return sp->global ? "global-job" : "replicated-job";
	return sp->global ? "global" : "replicated";
}

/* A job's current run in tasks[0..n): its COMPLETE tasks, and the
 * completions it wants (replicas; a global job: one per node it has a task
 * of the run on). */
static void cli_job_counts(const Cs__Service *s, Cs__Task *const *tasks, size_t n,
			   uint64_t *completed, uint64_t *completions)
{
	uint64_t iteration = s->job_status ? s->job_status->job_iteration : 0;
	uint64_t on_nodes = 0;

	*completed = 0;
	for (size_t i = 0; i < n; i++) {
		const Cs__Task *t = tasks[i];
		if (t->service_id != s->id || t->job_iteration != iteration)
			continue;
		*completed += t->status &&
			      t->status->state == CS__TASK_STATE__TASK_STATE_COMPLETE;
		on_nodes += t->desired_state <= CS__TASK_STATE__TASK_STATE_COMPLETE;
	}
	*completions = s->spec->global ? on_nodes : s->spec->replicas;
}

/* A job's fields of service ls and inspect (nothing for a service). */
static void cli_job_fields(struct swarmctl_cli_json *j, const Cs__Service *s,
			   Cs__Task *const *tasks, size_t n)
{
	uint64_t completed, completions;

	if (!s->spec || !s->spec->job)
		return;
	cli_job_counts(s, tasks, n, &completed, &completions);
	cli_json_kv_u64(j, "job_iteration",
			s->job_status ? s->job_status->job_iteration : 0);
	cli_json_kv_u64(j, "completed", completed);
	cli_json_kv_u64(j, "completions", completions);
}

/* A job's REPLICAS column, as docker service ls: "1/2 (3/10 completed)".
 * buf holds running/desired already; unchanged for a service. */
static void cli_job_replicas(const Cs__Service *s, Cs__Task *const *tasks, size_t n,
			     char *buf, size_t size)
{
	uint64_t completed, completions;
	size_t len = strlen(buf);

	if (!s->spec || !s->spec->job || len >= size)
		return;
	cli_job_counts(s, tasks, n, &completed, &completions);
	snprintf(buf + len, size - len, " (%llu/%llu completed)",
		 (unsigned long long)completed, (unsigned long long)completions);
}

static const char *cli_service_image(const Cs__Service *s)
{
	if (s->spec && s->spec->task && s->spec->task->container)
		return s->spec->task->container->image;
	return "";
}

/* A service's running/desired: the manager's counts when they hold it, else
 * counted from tasks. */
static void cli_service_replicas(const Cs__Service *s, Cs__ServiceCounts *const *counts,
				 size_t n_counts, Cs__Task *const *tasks, size_t n_tasks,
				 uint64_t *running, uint64_t *desired)
{
	for (size_t i = 0; i < n_counts; i++)
		if (counts[i]->service_id == s->id) {
			*running = counts[i]->running;
			*desired = counts[i]->desired;
			return;
		}
	cli_service_counts(s, tasks, n_tasks, running, desired);
}

static void cli_service_fields(struct swarmctl_cli_json *j, const Cs__Service *s,
			       Cs__ServiceCounts *const *counts, size_t n_counts,
			       Cs__Task *const *tasks, size_t n_tasks)
{
	uint64_t running, desired;

	cli_service_replicas(s, counts, n_counts, tasks, n_tasks, &running, &desired);
	cli_json_hex(j, "id", s->id);
	cli_json_kv_str(j, "name", s->spec ? s->spec->name : "");
	cli_json_kv_str(j, "mode", cli_mode(s->spec));
	cli_json_kv_u64(j, "replicas", desired);
	cli_json_kv_u64(j, "running", running);
	cli_job_fields(j, s, tasks, n_tasks);
	cli_json_kv_str(j, "image", cli_service_image(s));
	cli_json_kv_u64(j, "version", s->version);
	cli_json_kv_str(j, "update_state", cli_update_state(s));
}

void swarmctl_cli_print_services(FILE *out, enum swarmctl_cli_format fmt,
				 Cs__Service *const *services, size_t n_services,
				 Cs__ServiceCounts *const *counts, size_t n_counts,
				 Cs__Task *const *tasks, size_t n_tasks)
{
	static const char *const heads[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE"};
	struct swarmctl_cli_table t;
	struct swarmctl_cli_json j;

	if (fmt == SWARMCTL_CLI_JSON) {
		swarmctl_cli_json_init(&j, out);
		swarmctl_cli_json_open(&j, '[');
		for (size_t i = 0; i < n_services; i++) {
			swarmctl_cli_json_open(&j, '{');
			cli_service_fields(&j, services[i], counts, n_counts, tasks,
					   n_tasks);
			swarmctl_cli_json_close(&j, '}');
		}
		swarmctl_cli_json_close(&j, ']');
		return;
	}
	if (swarmctl_cli_table_init(&t, 5, heads))
		return;
	for (size_t i = 0; i < n_services; i++) {
		const Cs__Service *s = services[i];
		char id[17], replicas[48];
		uint64_t running, desired;
		const char *row[5];

		cli_hex(id, sizeof id, s->id);
		cli_service_replicas(s, counts, n_counts, tasks, n_tasks, &running,
				     &desired);
		snprintf(replicas, sizeof replicas, "%llu/%llu",
			 (unsigned long long)running, (unsigned long long)desired);
		cli_job_replicas(s, tasks, n_tasks, replicas, sizeof replicas);
		row[0] = id;
		row[1] = s->spec ? s->spec->name : "";
		row[2] = cli_mode(s->spec);
		row[3] = replicas;
		row[4] = cli_service_image(s);
		swarmctl_cli_table_add(&t, row);
	}
	swarmctl_cli_table_print(&t, out);
	swarmctl_cli_table_free(&t);
}

static const char *cli_service_name(uint64_t id, Cs__Service *const *services, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (services[i]->id == id && services[i]->spec)
			return services[i]->spec->name;
	return "";
}

static const char *cli_node_name(uint64_t id, Cs__Node *const *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i]->id == id)
			return nodes[i]->hostname;
	return "";
}

static void cli_task_fields(struct swarmctl_cli_json *j, const Cs__Task *t,
			    const char *service, const char *node)
{
	const Cs__TaskStatus *st = t->status;

	cli_json_hex(j, "id", t->id);
	cli_json_kv_str(j, "service", service);
	cli_json_hex(j, "service_id", t->service_id);
	cli_json_kv_u64(j, "slot", t->slot);
	cli_json_kv_str(j, "node", node);
	cli_json_hex(j, "node_id", t->node_id);
	cli_json_kv_str(j, "desired", swarmctl_cli_task_state(t->desired_state));
	cli_json_kv_str(
		j, "state",
		swarmctl_cli_task_state(st ? st->state : CS__TASK_STATE__TASK_STATE_NEW));
	cli_json_kv_str(j, "message", st ? st->message : "");
	cli_json_kv_str(j, "container_id", st ? st->container_id : "");
	swarmctl_cli_json_key(j, "exit_code");
	swarmctl_cli_json_i64(j, st ? st->exit_code : 0);
	cli_json_kv_u64(j, "timestamp_ms", st ? st->timestamp_ms : 0);
}

void swarmctl_cli_print_tasks(FILE *out, enum swarmctl_cli_format fmt,
			      Cs__Task *const *tasks, size_t n_tasks,
			      Cs__Service *const *services, size_t n_services,
			      Cs__Node *const *nodes, size_t n_nodes)
{
	static const char *const heads[] = {"ID",      "SERVICE", "SLOT",   "NODE",
					    "DESIRED", "STATE",	  "MESSAGE"};
	struct swarmctl_cli_table t;
	struct swarmctl_cli_json j;

	if (fmt == SWARMCTL_CLI_JSON) {
		swarmctl_cli_json_init(&j, out);
		swarmctl_cli_json_open(&j, '[');
		for (size_t i = 0; i < n_tasks; i++) {
			swarmctl_cli_json_open(&j, '{');
			cli_task_fields(&j, tasks[i],
					cli_service_name(tasks[i]->service_id, services,
							 n_services),
					cli_node_name(tasks[i]->node_id, nodes, n_nodes));
			swarmctl_cli_json_close(&j, '}');
		}
		swarmctl_cli_json_close(&j, ']');
		return;
	}
	if (swarmctl_cli_table_init(&t, 7, heads))
		return;
	for (size_t i = 0; i < n_tasks; i++) {
		const Cs__Task *tk = tasks[i];
		char id[17], slot[24];
		const char *row[7];

		cli_hex(id, sizeof id, tk->id);
		snprintf(slot, sizeof slot, "%llu", (unsigned long long)tk->slot);
		row[0] = id;
		row[1] = cli_service_name(tk->service_id, services, n_services);
		row[2] = tk->slot ? slot : "-";
		row[3] = tk->node_id ? cli_node_name(tk->node_id, nodes, n_nodes) : "-";
		row[4] = swarmctl_cli_task_state(tk->desired_state);
		row[5] = swarmctl_cli_task_state(
			tk->status ? tk->status->state : CS__TASK_STATE__TASK_STATE_NEW);
		row[6] = tk->status ? tk->status->message : "";
		swarmctl_cli_table_add(&t, row);
	}
	swarmctl_cli_table_print(&t, out);
	swarmctl_cli_table_free(&t);
}

/* Whether nd leads: its manager status says so, or the cluster record
 * names its raft id (leader_raft_id; 0 when unknown). */
static bool cli_node_leads(const Cs__Node *nd, uint64_t leader_raft_id)
{
	const Cs__ManagerStatus *ms = nd->manager_status;
	return ms && (ms->leader || (leader_raft_id && ms->raft_id == leader_raft_id));
}

static void cli_node_fields(struct swarmctl_cli_json *j, const Cs__Node *nd,
			    uint64_t leader_raft_id)
{
	cli_json_hex(j, "id", nd->id);
	cli_json_kv_str(j, "hostname", nd->hostname);
	cli_json_kv_str(j, "status", swarmctl_cli_node_state(nd->state));
	cli_json_kv_str(j, "availability", swarmctl_cli_availability(nd->availability));
	cli_json_kv_str(j, "role", swarmctl_cli_role(nd->role));
	cli_json_kv_str(j, "desired_role", swarmctl_cli_role(nd->desired_role));
	swarmctl_cli_json_key(j, "leader");
	swarmctl_cli_json_bool(j, cli_node_leads(nd, leader_raft_id));
	cli_json_kv_str(j, "manager_addr",
			nd->manager_status ? nd->manager_status->addr : "");
	swarmctl_cli_json_key(j, "labels");
	swarmctl_cli_json_open(j, '{');
	for (size_t i = 0; i < nd->n_labels; i++)
		cli_json_kv_str(j, nd->labels[i]->key, nd->labels[i]->value);
	swarmctl_cli_json_close(j, '}');
}

void swarmctl_cli_print_nodes(FILE *out, enum swarmctl_cli_format fmt,
			      Cs__Node *const *nodes, size_t n_nodes,
			      uint64_t leader_raft_id)
{
	static const char *const heads[] = {"ID", "HOSTNAME", "STATUS", "AVAILABILITY",
					    "ROLE"};
	struct swarmctl_cli_table t;
	struct swarmctl_cli_json j;

	if (fmt == SWARMCTL_CLI_JSON) {
		swarmctl_cli_json_init(&j, out);
		swarmctl_cli_json_open(&j, '[');
		for (size_t i = 0; i < n_nodes; i++) {
			swarmctl_cli_json_open(&j, '{');
			cli_node_fields(&j, nodes[i], leader_raft_id);
			swarmctl_cli_json_close(&j, '}');
		}
		swarmctl_cli_json_close(&j, ']');
		return;
	}
	if (swarmctl_cli_table_init(&t, 5, heads))
		return;
	for (size_t i = 0; i < n_nodes; i++) {
		const Cs__Node *nd = nodes[i];
		char id[17];
		const char *row[5];

		cli_hex(id, sizeof id, nd->id);
		row[0] = id;
		row[1] = nd->hostname;
		row[2] = swarmctl_cli_node_state(nd->state);
		row[3] = swarmctl_cli_availability(nd->availability);
		row[4] = cli_node_leads(nd, leader_raft_id) ? "manager (leader)"
							    : swarmctl_cli_role(nd->role);
		swarmctl_cli_table_add(&t, row);
	}
	swarmctl_cli_table_print(&t, out);
	swarmctl_cli_table_free(&t);
}

static void cli_json_strings(struct swarmctl_cli_json *j, const char *key, char **v,
			     size_t n)
{
	swarmctl_cli_json_key(j, key);
	swarmctl_cli_json_open(j, '[');
	for (size_t i = 0; i < n; i++)
		swarmctl_cli_json_str(j, v[i]);
	swarmctl_cli_json_close(j, ']');
}

/* The health check and stop grace period of a container (issue 14), when
 * set. */
static void cli_json_health(struct swarmctl_cli_json *j, const Cs__ContainerSpec *c)
{
	const Cs__HealthConfig *h = c->healthcheck;

	if (c->stop_grace_period_ms)
		cli_json_kv_u64(j, "stop_grace_period_ms", c->stop_grace_period_ms);
	if (!h)
		return;
	cli_json_strings(j, "health_test", h->test, h->n_test);
	cli_json_kv_u64(j, "health_interval_ms", h->interval_ms);
	cli_json_kv_u64(j, "health_timeout_ms", h->timeout_ms);
	cli_json_kv_u64(j, "health_retries", h->retries);
	cli_json_kv_u64(j, "health_start_period_ms", h->start_period_ms);
}

static void cli_json_spec(struct swarmctl_cli_json *j, const char *key,
			  const Cs__ServiceSpec *sp)
{
	static const char *const conds[] = {"any", "on-failure", "none"};
	static const char *const actions[] = {"pause", "continue", "rollback"};
	const Cs__TaskSpec *t = sp->task;

	swarmctl_cli_json_key(j, key);
	swarmctl_cli_json_open(j, '{');
	cli_json_kv_str(j, "name", sp->name);
	cli_json_kv_str(j, "mode", cli_mode(sp));
	cli_json_kv_u64(j, "replicas", sp->replicas);
	if (sp->job && !sp->global)
		cli_json_kv_u64(j, "max_concurrent", sp->max_concurrent);
	if (sp->rebalance) { /* issue 20 */
		swarmctl_cli_json_key(j, "rebalance");
		swarmctl_cli_json_bool(j, true);
		cli_json_kv_u64(j, "rebalance_parallelism", sp->rebalance_parallelism);
	}
	if (sp->n_labels) {
		swarmctl_cli_json_key(j, "labels");
		swarmctl_cli_json_open(j, '{');
		for (size_t i = 0; i < sp->n_labels; i++)
			cli_json_kv_str(j, sp->labels[i]->key, sp->labels[i]->value);
		swarmctl_cli_json_close(j, '}');
	}
	if (t && t->container) {
		cli_json_kv_str(j, "image", t->container->image);
		cli_json_strings(j, "command", t->container->command,
				 t->container->n_command);
		cli_json_strings(j, "env", t->container->env, t->container->n_env);
		cli_json_health(j, t->container);
		cli_json_file_refs(j, t->container);
	}
	if (t && t->reservations) {
		cli_json_kv_u64(j, "reserve_millicpus", t->reservations->millicpus);
		cli_json_kv_u64(j, "reserve_memory_bytes", t->reservations->memory_bytes);
	}
	if (t && t->limits) {
		cli_json_kv_u64(j, "limit_millicpus", t->limits->millicpus);
		cli_json_kv_u64(j, "limit_memory_bytes", t->limits->memory_bytes);
	}
	if (t && t->restart) {
		unsigned c = (unsigned)t->restart->condition;
		cli_json_kv_str(j, "restart_condition", c < 3 ? conds[c] : "unknown");
		cli_json_kv_u64(j, "restart_delay_ms", t->restart->delay_ms);
		cli_json_kv_u64(j, "restart_max_attempts", t->restart->max_attempts);
		cli_json_kv_u64(j, "restart_window_ms", t->restart->window_ms);
	}
	if (t && t->placement) {
		cli_json_strings(j, "constraints", t->placement->constraints,
				 t->placement->n_constraints);
		cli_json_strings(j, "spread_labels", t->placement->spread_labels,
				 t->placement->n_spread_labels);
	}
	if (sp->update) {
		unsigned a = (unsigned)sp->update->failure_action;
		cli_json_kv_u64(j, "update_parallelism", sp->update->parallelism);
		cli_json_kv_u64(j, "update_delay_ms", sp->update->delay_ms);
		cli_json_kv_str(j, "update_failure_action",
				a < 3 ? actions[a] : "unknown");
		cli_json_kv_u64(j, "update_monitor_ms", sp->update->monitor_ms);
		cli_json_kv_u64(j, "update_max_failure_ratio_ppm",
				sp->update->max_failure_ratio_ppm);
		cli_json_kv_str(
			j, "update_order",
			sp->update->order == CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST
				? "start-first"
				: "stop-first");
	}
	if (sp->rollback) {
		unsigned a = (unsigned)sp->rollback->failure_action;
		cli_json_kv_u64(j, "rollback_parallelism", sp->rollback->parallelism);
		cli_json_kv_u64(j, "rollback_delay_ms", sp->rollback->delay_ms);
		cli_json_kv_str(j, "rollback_failure_action",
				a < 3 ? actions[a] : "unknown");
		cli_json_kv_u64(j, "rollback_monitor_ms", sp->rollback->monitor_ms);
		cli_json_kv_u64(j, "rollback_max_failure_ratio_ppm",
				sp->rollback->max_failure_ratio_ppm);
		cli_json_kv_str(
			j, "rollback_order",
			sp->rollback->order == CS__UPDATE_CONFIG__ORDER__ORDER_START_FIRST
				? "start-first"
				: "stop-first");
	}
	if (t && t->force_update)
		cli_json_kv_u64(j, "force_update", t->force_update);
	swarmctl_cli_json_close(j, '}');
}

static void cli_json_service_net(struct swarmctl_cli_json *j, const Cs__Service *s);

void swarmctl_cli_print_service(FILE *out, const Cs__Service *s, Cs__Task *const *tasks,
				size_t n_tasks)
{
	struct swarmctl_cli_json j;

	swarmctl_cli_json_init(&j, out);
	swarmctl_cli_json_open(&j, '{');
	cli_service_fields(&j, s, NULL, 0, tasks, n_tasks);
	cli_json_kv_u64(&j, "spec_version", s->spec_version);
	cli_json_kv_str(&j, "update_message",
			s->update_status ? s->update_status->message : "");
	cli_json_times(&j, s->created_ms, s->updated_ms);
	if (s->spec)
		cli_json_spec(&j, "spec", s->spec);
	if (s->previous_spec)
		cli_json_spec(&j, "previous_spec", s->previous_spec);
	cli_json_service_net(&j, s);
	swarmctl_cli_json_close(&j, '}');
}

static void cli_json_ports(struct swarmctl_cli_json *j, const char *key,
			   Cs__PortConfig *const *ports, size_t n)
{
	swarmctl_cli_json_key(j, key);
	swarmctl_cli_json_open(j, '[');
	for (size_t i = 0; i < n; i++) {
		static const char *const protos[] = {"tcp", "udp", "sctp"};
		swarmctl_cli_json_open(j, '{');
		cli_json_kv_u64(j, "target", ports[i]->target);
		cli_json_kv_u64(j, "published", ports[i]->published);
		cli_json_kv_str(j, "protocol",
				(unsigned)ports[i]->protocol < 3
					? protos[ports[i]->protocol]
					: "?");
		cli_json_kv_str(
			j, "mode",
			ports[i]->mode == CS__PORT_PUBLISH_MODE__PORT_PUBLISH_MODE_HOST
				? "host"
				: "ingress");
		swarmctl_cli_json_close(j, '}');
	}
	swarmctl_cli_json_close(j, ']');
}

/* A service's allocation (issue 15): its VIPs and ports as published. */
static void cli_json_service_net(struct swarmctl_cli_json *j, const Cs__Service *s)
{
	swarmctl_cli_json_key(j, "virtual_ips");
	swarmctl_cli_json_open(j, '[');
	for (size_t i = 0; i < s->n_vips; i++) {
		swarmctl_cli_json_open(j, '{');
		cli_json_hex(j, "network_id", s->vips[i]->network_id);
		cli_json_kv_str(j, "addr", s->vips[i]->addr);
		swarmctl_cli_json_close(j, '}');
	}
	swarmctl_cli_json_close(j, ']');
	cli_json_ports(j, "ports", s->ports, s->n_ports);
}

static void cli_json_task_net(struct swarmctl_cli_json *j, const Cs__Task *t)
{
	swarmctl_cli_json_key(j, "networks");
	swarmctl_cli_json_open(j, '[');
	for (size_t i = 0; i < t->n_networks; i++) {
		swarmctl_cli_json_open(j, '{');
		cli_json_hex(j, "network_id", t->networks[i]->network_id);
		cli_json_kv_str(j, "addr", t->networks[i]->addr);
		swarmctl_cli_json_close(j, '}');
	}
	swarmctl_cli_json_close(j, ']');
	/* the ports its agent binds (host mode) or the mesh routes (issue 15) */
	cli_json_ports(j, "ports", t->ports, t->n_ports);
}

static void cli_network_fields(struct swarmctl_cli_json *j, const Cs__Network *n)
{
	cli_json_hex(j, "id", n->id);
	cli_json_kv_str(j, "name", n->spec ? n->spec->name : "");
	cli_json_kv_str(j, "driver",
			n->spec && n->spec->driver[0] ? n->spec->driver : "overlay");
	cli_json_kv_str(j, "subnet", n->subnet);
	cli_json_kv_str(j, "gateway", n->gateway);
	cli_json_kv_u64(j, "vni", n->vni);
	swarmctl_cli_json_key(j, "ingress");
	swarmctl_cli_json_bool(j, n->spec && n->spec->ingress);
	swarmctl_cli_json_key(j, "attachable");
	swarmctl_cli_json_bool(j, n->spec && n->spec->attachable);
	swarmctl_cli_json_key(j, "internal");
	swarmctl_cli_json_bool(j, n->spec && n->spec->internal);
	/* issue 17: that it is encrypted, never a key */
	swarmctl_cli_json_key(j, "encrypted");
	swarmctl_cli_json_bool(j, n->spec && n->spec->encrypted);
}

void swarmctl_cli_print_networks(FILE *out, enum swarmctl_cli_format fmt,
				 Cs__Network *const *nets, size_t n)
{
	static const char *const heads[] = {"ID", "NAME", "DRIVER", "SUBNET"};
	struct swarmctl_cli_table t;
	struct swarmctl_cli_json j;

	if (fmt == SWARMCTL_CLI_JSON) {
		swarmctl_cli_json_init(&j, out);
		swarmctl_cli_json_open(&j, '[');
		for (size_t i = 0; i < n; i++) {
			swarmctl_cli_json_open(&j, '{');
			cli_network_fields(&j, nets[i]);
			swarmctl_cli_json_close(&j, '}');
		}
		swarmctl_cli_json_close(&j, ']');
		return;
	}
	if (swarmctl_cli_table_init(&t, 4, heads))
		return;
	for (size_t i = 0; i < n; i++) {
		char id[17];
		const char *row[4];
		cli_hex(id, sizeof id, nets[i]->id);
		row[0] = id;
		row[1] = nets[i]->spec ? nets[i]->spec->name : "";
		row[2] = nets[i]->spec && nets[i]->spec->driver[0] ? nets[i]->spec->driver
								   : "overlay";
		row[3] = nets[i]->subnet;
		swarmctl_cli_table_add(&t, row);
	}
	swarmctl_cli_table_print(&t, out);
	swarmctl_cli_table_free(&t);
}

void swarmctl_cli_print_network(FILE *out, const Cs__Network *n)
{
	struct swarmctl_cli_json j;
	swarmctl_cli_json_init(&j, out);
	swarmctl_cli_json_open(&j, '{');
	cli_network_fields(&j, n);
	swarmctl_cli_json_close(&j, '}');
}

void swarmctl_cli_print_task(FILE *out, const Cs__Task *t, const char *service,
			     const char *node)
{
	struct swarmctl_cli_json j;

	swarmctl_cli_json_init(&j, out);
	swarmctl_cli_json_open(&j, '{');
	cli_task_fields(&j, t, service, node);
	cli_json_kv_u64(&j, "spec_version", t->spec_version);
	cli_json_kv_u64(&j, "version", t->version);
	cli_json_kv_u64(&j, "job_iteration", t->job_iteration); /* a job's run */
	cli_json_task_net(&j, t);
	cli_json_times(&j, t->created_ms, t->updated_ms);
	swarmctl_cli_json_close(&j, '}');
}

void swarmctl_cli_print_node(FILE *out, const Cs__Node *nd, uint64_t leader_raft_id)
{
	struct swarmctl_cli_json j;

	swarmctl_cli_json_init(&j, out);
	swarmctl_cli_json_open(&j, '{');
	cli_node_fields(&j, nd, leader_raft_id);
	cli_json_kv_str(&j, "state_message", nd->state_message);
	/* what the node says of itself (issue 14): what node.ip,
	 * node.platform.* and engine.labels.* constraints read */
	cli_json_kv_str(&j, "addr", nd->addr ? nd->addr : "");
	cli_json_kv_str(&j, "platform_os", nd->platform_os ? nd->platform_os : "");
	cli_json_kv_str(&j, "platform_arch", nd->platform_arch ? nd->platform_arch : "");
	swarmctl_cli_json_key(&j, "engine_labels");
	swarmctl_cli_json_open(&j, '{');
	for (size_t i = 0; i < nd->n_engine_labels; i++)
		cli_json_kv_str(&j, nd->engine_labels[i]->key,
				nd->engine_labels[i]->value);
	swarmctl_cli_json_close(&j, '}');
	if (nd->resources) {
		cli_json_kv_u64(&j, "millicpus", nd->resources->millicpus);
		cli_json_kv_u64(&j, "memory_bytes", nd->resources->memory_bytes);
	}
	if (nd->manager_status)
		cli_json_kv_u64(&j, "raft_id", nd->manager_status->raft_id);
	cli_json_kv_u64(&j, "version", nd->version);
	cli_json_times(&j, nd->created_ms, nd->updated_ms);
	swarmctl_cli_json_close(&j, '}');
}

/* key: the SHA-256 of der, in hex. */
static void cli_json_digest(struct swarmctl_cli_json *j, const char *key,
			    const ProtobufCBinaryData *der)
{
	uint8_t d[ENV_DIGEST_BYTES];
	char hex[2 * ENV_DIGEST_BYTES + 1];
	pki_digest(der->data, der->len, d);
	for (size_t i = 0; i < sizeof d; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	cli_json_kv_str(j, key, hex);
}

void swarmctl_cli_print_cluster(FILE *out, const Cs__Cluster *c, uint64_t ca_nodes_done,
				uint64_t ca_nodes_total)
{
	static const char *const phases[] = {"none", "trust-both", "sign-new",
					     "drop-old"};
	struct swarmctl_cli_json j;

	swarmctl_cli_json_init(&j, out);
	swarmctl_cli_json_open(&j, '{');
	cli_json_hex(&j, "id", c->id);
	cli_json_kv_u64(&j, "version", c->version);
	cli_json_kv_u64(&j, "leader_raft_id", c->leader_raft_id);
	cli_json_kv_u64(&j, "leader_term", c->leader_term);
	if (c->settings) {
		cli_json_kv_u64(&j, "tick_ms", c->settings->tick_ms);
		cli_json_kv_u64(&j, "election_ticks", c->settings->election_ticks);
		cli_json_kv_u64(&j, "heartbeat_ticks", c->settings->heartbeat_ticks);
		cli_json_kv_u64(&j, "dispatcher_heartbeat_ms",
				c->settings->dispatcher_heartbeat_ms);
		cli_json_kv_u64(&j, "task_history", c->settings->task_history);
		cli_json_kv_u64(&j, "snapshot_every", c->settings->snapshot_every);
	}
	if (c->settings)
		cli_json_kv_u64(&j, "cert_expiry_ms", c->settings->cert_expiry_ms);
	if (c->settings && c->settings->orphan_delay_ms)
		cli_json_kv_u64(&j, "orphan_delay_ms", c->settings->orphan_delay_ms);
	/* issue 17: the network keys' period and how many were made (the
	 * keys themselves never leave the store) */
	if (c->settings && c->settings->network_key_rotation_ms)
		cli_json_kv_u64(&j, "network_key_rotation_ms",
				c->settings->network_key_rotation_ms);
	if (c->network_key_clock)
		cli_json_kv_u64(&j, "network_key_clock", c->network_key_clock);
	if (c->ca_cert.len)
		/* the root a join token's digest names (its key never leaves
		 * the store) */
		cli_json_digest(&j, "root_ca_sha256", &c->ca_cert);
	/* a root CA rotation (swarmctl ca rotate): how far it went */
	cli_json_kv_str(&j, "ca_rotation",
			(size_t)c->ca_rotation < sizeof phases / sizeof phases[0]
				? phases[c->ca_rotation]
				: "unknown");
	if (c->ca_next_cert.len)
		cli_json_digest(&j, "next_root_ca_sha256", &c->ca_next_cert);
	if (c->ca_rotation) {
		cli_json_kv_u64(&j, "ca_rotation_nodes_done", ca_nodes_done);
		cli_json_kv_u64(&j, "ca_rotation_nodes", ca_nodes_total);
	}
	cli_json_kv_u64(&j, "ca_rotations", c->ca_rotations);
	/* the join tokens are secrets: `cluster join-token` prints them */
	swarmctl_cli_json_close(&j, '}');
}

/* ---------------------------------------------------------------- files */

int swarmctl_cli_write_private(const char *path, const uint8_t *data, size_t len,
			       char *err, size_t n)
{
	char tmp[4096], dir[4096];
	size_t off = 0;
	int fd, dfd, e;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >=
	    sizeof tmp) {
		snprintf(err, n, "%s: path too long", path);
		return CS_ESTORAGE;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, n, "%s: %s", tmp, strerror(errno));
		return CS_ESTORAGE;
	}
	if (fchmod(fd, 0600) != 0)
		goto fail;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	snprintf(dir, sizeof dir, "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) != 0) {
			e = errno;
			close(dfd);
			snprintf(err, n, "%s: fsync of its directory: %s", path,
				 strerror(e));
			return CS_ESTORAGE;
		}
		close(dfd);
	}
	return 0;
fail:
	e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	snprintf(err, n, "%s: %s", path, strerror(e));
	return CS_ESTORAGE;
}

/* ---------------------------------------------------------------- events */

void swarmctl_cli_print_event(FILE *out, const Cs__Event *ev, bool json)
{
	char when[40];
	bool task = ev->kind && strcmp(ev->kind, "task") == 0;

	swarmctl_cli_time(when, sizeof when, ev->time_ms);
	if (json) { /* one object a line, for a stream */
		fprintf(out, "{\"index\":%llu,\"ord\":%u,\"time\":\"%s\",\"type\":",
			(unsigned long long)ev->index, (unsigned)ev->ord, when);
		swarmctl_cli_json_escape(out, ev->kind);
		fputs(",\"action\":", out);
		swarmctl_cli_json_escape(out, ev->action);
		fprintf(out, ",\"id\":\"%016llx\",\"name\":",
			(unsigned long long)ev->object_id);
		swarmctl_cli_json_escape(out, ev->name);
		if (task) {
			fprintf(out,
				",\"service\":\"%016llx\",\"node\":\"%016llx\",\"slot\":%llu,"
				"\"state\":",
				(unsigned long long)ev->service_id,
				(unsigned long long)ev->node_id,
				(unsigned long long)ev->slot);
			swarmctl_cli_json_escape(out, ev->state);
		}
		fputs(",\"attributes\":{", out);
		for (size_t i = 0; i < ev->n_attrs; i++) {
			if (i)
				fputc(',', out);
			swarmctl_cli_json_escape(out, ev->attrs[i]->key);
			fputc(':', out);
			swarmctl_cli_json_escape(out, ev->attrs[i]->value);
		}
		fputs("}}\n", out);
		return;
	}
	fprintf(out, "%s %s %s %016llx (name=%s, index=%llu", when,
		ev->kind ? ev->kind : "", ev->action ? ev->action : "",
		(unsigned long long)ev->object_id, ev->name ? ev->name : "",
		(unsigned long long)ev->index);
	if (task)
		fprintf(out, ", service=%016llx, node=%016llx, slot=%llu, state=%s",
			(unsigned long long)ev->service_id,
			(unsigned long long)ev->node_id, (unsigned long long)ev->slot,
			ev->state ? ev->state : "");
	for (size_t i = 0; i < ev->n_attrs; i++)
		fprintf(out, ", %s=%s", ev->attrs[i]->key, ev->attrs[i]->value);
	fputs(")\n", out);
}

/* ---------------------------------------------------------------- secrets and configs (issue 20) */

/* Writes data's standard base64 (padded) as a JSON string. */
static void cli_json_base64(struct swarmctl_cli_json *j, const uint8_t *data, size_t len)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;

	if (!out) {
		swarmctl_cli_json_str(j, "");
		return;
	}
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < len ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? a[v & 63] : '=';
	}
	out[o] = 0;
	swarmctl_cli_json_str(j, out);
	free(out);
}

static void cli_secret_fields(struct swarmctl_cli_json *j, const Cs__Secret *x)
{
	cli_json_hex(j, "id", x->id);
	cli_json_kv_str(j, "name", x->name);
	swarmctl_cli_json_key(j, "labels");
	swarmctl_cli_json_open(j, '{');
	for (size_t i = 0; i < x->n_labels; i++)
		cli_json_kv_str(j, x->labels[i]->key, x->labels[i]->value);
	swarmctl_cli_json_close(j, '}');
	if (x->config) { /* a secret's data is never in an answer */
		swarmctl_cli_json_key(j, "data");
		cli_json_base64(j, x->data.data, x->data.len);
	}
	cli_json_kv_u64(j, "version", x->version);
	cli_json_times(j, x->created_ms, x->updated_ms);
}

void swarmctl_cli_print_secrets(FILE *out, enum swarmctl_cli_format fmt,
				Cs__Secret *const *v, size_t n)
{
	static const char *const heads[] = {"ID", "NAME", "CREATED", "UPDATED"};
	struct swarmctl_cli_table t;
	struct swarmctl_cli_json j;

	if (fmt == SWARMCTL_CLI_JSON) {
		swarmctl_cli_json_init(&j, out);
		swarmctl_cli_json_open(&j, '[');
		for (size_t i = 0; i < n; i++) {
			swarmctl_cli_json_open(&j, '{');
			cli_secret_fields(&j, v[i]);
			swarmctl_cli_json_close(&j, '}');
		}
		swarmctl_cli_json_close(&j, ']');
		return;
	}
	if (swarmctl_cli_table_init(&t, 4, heads))
		return;
	for (size_t i = 0; i < n; i++) {
		char id[17], created[40], updated[40];
		const char *row[4];
		cli_hex(id, sizeof id, v[i]->id);
		swarmctl_cli_time(created, sizeof created, v[i]->created_ms);
		swarmctl_cli_time(updated, sizeof updated, v[i]->updated_ms);
		row[0] = id;
		row[1] = v[i]->name;
		row[2] = created;
		row[3] = updated;
		swarmctl_cli_table_add(&t, row);
	}
	swarmctl_cli_table_print(&t, out);
	swarmctl_cli_table_free(&t);
}

void swarmctl_cli_print_secret(FILE *out, const Cs__Secret *x)
{
	struct swarmctl_cli_json j;
	swarmctl_cli_json_init(&j, out);
	swarmctl_cli_json_open(&j, '{');
	cli_secret_fields(&j, x);
	swarmctl_cli_json_close(&j, '}');
}

uint64_t swarmctl_cli_logs_until(bool follow, bool tail_first_read, uint64_t asked_ms)
{
	return follow || tail_first_read ? 0 : asked_ms;
}
