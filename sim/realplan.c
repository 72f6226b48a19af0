/* realplan: see realplan.h.
 * Sections: refusals, time scale, network faults, images. */
#include "sim/realplan.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/errors.h"

/* ---------------------------------------------------------------- refusals */

__attribute__((format(printf, 5, 6))) static int plan_refuse(const struct scn_script *s,
							     const struct scn_cmd *c,
							     char *err, size_t n,
							     const char *fmt, ...)
{
	va_list ap;
	int k = snprintf(err, n, "%s:%" PRIu32 ": --real cannot run `%s`: ", s->path,
			 c->line, c->text);
	if (k >= 0 && (size_t)k < n) {
		va_start(ap, fmt);
		vsnprintf(err + k, n - (size_t)k, fmt, ap);
		va_end(ap);
	}
	return CS_EINVAL;
}

static bool plan_node_ok(struct scn_node n)
{
	return n.kind != SCN_NODE_STRANGER;
}

/* Why cond cannot be read from real daemons, or NULL when it can. */
static const char *plan_cond_why(const struct scn_cond *c)
{
	switch (c->kind) {
	case SCN_COND_LEADER:
	case SCN_COND_NO_LEADER:
	case SCN_COND_LEADER_IS:
	case SCN_COND_RUNNING:
	case SCN_COND_STORE_TASKS:
	case SCN_COND_NODES_READY:
	case SCN_COND_NODE_STATUS:
	case SCN_COND_CONVERGED:
	case SCN_COND_SERVICE: return NULL;
	case SCN_COND_MANAGERS_SYNC:
		return "`managers in sync` compares the managers' stores byte for byte, "
		       "which the control API does not show";
	case SCN_COND_REFUSED: return "`refused` counts simulated log lines";
	case SCN_COND_TERM: return "`term` reads every manager's Raft term";
	case SCN_COND_CA_ROTATED: return "`ca rotated` is not read from real daemons yet";
	case SCN_COND_JOB_COMPLETED:
		return "`completed` is not read from real daemons yet";
	case SCN_COND_ADDRESSES:
	case SCN_COND_VIPS:
	case SCN_COND_PUBLISHES:
	case SCN_COND_PENDING_BECAUSE:
	case SCN_COND_REACH:
	case SCN_COND_MESH_REACH:
	case SCN_COND_MESH_REFUSED:
		return "the allocator's and data plane's conditions are not read from real "
		       "daemons yet";
	case SCN_COND_NET_KEYS: return "`network keys` is not read from real daemons yet";
	case SCN_COND_SPREAD:
	case SCN_COND_EVENT:
	case SCN_COND_FILES:
		return "`spread`, `event` and `files` are not read from real daemons yet";
	}
	return "unknown condition";
}

/* Why a service command's keys cannot be given to swarmctl, or NULL. */
static const char *plan_service_why(const struct scn_service *sv)
{
	if (sv->set & SCN_SVC_MAX_PER_NODE)
		return "max-per-node: swarmctl has no such flag";
	if (sv->set & (SCN_SVC_NETWORK | SCN_SVC_PUBLISH))
		return "network= and publish= need the data plane, which real runs "
		       "leave off";
	if (sv->set & SCN_SVC_ENV_BYTES)
		return "env-bytes= would pass a huge argument to swarmctl";
	if (sv->set & (SCN_SVC_REBALANCE | SCN_SVC_FILES))
		return "rebalance=, secret= and config= are not given to swarmctl yet";
	return NULL;
}

int realplan_check(const struct scn_script *s, bool netem_ok, char *err, size_t n)
{
	assert(s);
	assert(err && n);
	if (s->strangers_total) {
		const struct scn_cmd *at = &s->cmds[0];
		for (size_t i = 0; i < s->cmd_count; i++)
			if (s->cmds[i].kind == SCN_NODE_ADD &&
			    s->cmds[i].u.node.added.kind == SCN_NODE_STRANGER) {
				at = &s->cmds[i];
				break;
			}
		return plan_refuse(
			s, at, err, n,
			"strangers (x1..) send forged messages, which only the "
			"simulator can craft");
	}
	if (s->managers_total + s->workers_total > REALPLAN_NODES_MAX)
		return plan_refuse(s, &s->cmds[0], err, n,
				   "more than %u nodes (a network namespace, a dockerd "
				   "and a swarmd each)",
				   REALPLAN_NODES_MAX);
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		const char *why = NULL;

		switch (c->kind) {
		case SCN_CLUSTER:
		case SCN_SEED:
		case SCN_RUN:
		case SCN_SERVICE_RM:
		case SCN_HEAL: break;
		case SCN_SET: {
			const struct scn_settings *st = &c->u.settings;
			if ((st->set & SCN_SET_HEARTBEAT) &&
			    st->heartbeat_ms != REALPLAN_HEARTBEAT_MS)
				why = "heartbeat=: a real swarmd's is 5s (no flag changes "
				      "it)";
			else if ((st->set & SCN_SET_TICK) &&
				 st->tick_ms != REALPLAN_TICK_MS)
				why = "tick=: a real swarmd's is 1s (no flag changes it)";
			else if ((st->set & SCN_SET_ELECTION_TICKS) &&
				 st->election_ticks != REALPLAN_ELECTION_TICKS)
				why = "election-ticks=: a real swarmd's is 10 (no flag "
				      "changes it)";
			else if (st->set & SCN_SET_NET_KEY_ROTATION)
				why = "network-key-rotation=: networks need the data "
				      "plane, which real runs leave off";
			else if (st->set & (SCN_SET_HISTORY | SCN_SET_SNAPSHOT_EVERY |
					    SCN_SET_CERT_EXPIRY))
				why = "history=, snapshot-every= and cert-expiry= have no "
				      "flag on a real swarmd";
			break;
		}
		case SCN_SERVICE_CREATE:
		case SCN_SERVICE_UPDATE: why = plan_service_why(&c->u.service); break;
		case SCN_NODE_ADD:
			why = "node add: joining a new namespace mid-run is not realised "
			      "yet";
			break;
		case SCN_NODE_RM:
		case SCN_NODE_DRAIN:
		case SCN_NODE_PAUSE:
		case SCN_NODE_ACTIVATE:
		case SCN_NODE_LABEL:
		case SCN_NODE_PROMOTE:
		case SCN_NODE_DEMOTE:
		case SCN_KILL:
		case SCN_RESTART:
			if (!plan_node_ok(c->u.node.node))
				why = "a stranger is not a real node";
			break;
		case SCN_PARTITION:
		case SCN_ISOLATE: break;
		case SCN_LINK: {
			const struct scn_link *l = &c->u.link;
			if (l->has_delay || l->has_dup || l->has_reorder)
				why = netem_ok
					      ? "delay=, dup= and reorder= (netem per "
						"destination) are not realised yet"
					      : "delay=, dup= and reorder= need the netem "
						"qdisc, which this kernel lacks (`tc qdisc "
						"add ... netem`: unknown qdisc); loss= alone "
						"works (nftables drops)";
			break;
		}
		case SCN_IMAGE:
			if (c->u.image.has_healthy_after ||
			    c->u.image.has_unhealthy_after)
				why = "healthy-after= and unhealthy-after= are not realised "
				      "yet";
			break;
		case SCN_EXPECT:
		case SCN_ALWAYS:
		case SCN_AWAIT: why = plan_cond_why(&c->u.expect.cond); break;
		case SCN_SECRET_CREATE:
		case SCN_SECRET_RM:
			why = "secrets and configs are not realised yet";
			break;
		case SCN_RUNTIME:
			why = "runtime faults are the simulated Docker's (the real one "
			      "is not faulted)";
			break;
		case SCN_DISK: why = "disk faults are the simulated disk's"; break;
		case SCN_CERT:
		case SCN_FORGE:
		case SCN_CA_ROTATE:
			why = "certificate and forged-message faults are the simulator's";
			break;
		case SCN_NETWORK_CREATE:
		case SCN_NETWORK_RM:
		case SCN_NETWORK_KEYS_ROTATE:
			why = "networks need the data plane, which real runs leave off";
			break;
		case SCN_BACKUP: why = "backup is not realised yet"; break;
		case SCN_LOGS: why = "logs is not realised yet"; break;
		}
		if (!why && c->refuse && c->kind != SCN_SERVICE_CREATE &&
		    c->kind != SCN_SERVICE_UPDATE && c->kind != SCN_SERVICE_RM)
			why = "`refuse` is realised for service commands only";
		if (why)
			return plan_refuse(s, c, err, n, "%s", why);
	}
	return 0;
}

/* ---------------------------------------------------------------- time scale */

static void plan_ms(uint64_t *ms, uint32_t ppm)
{
	uint64_t v;
	if (*ms == 0)
		return;
	v = *ms / 1000000u * ppm + (*ms % 1000000u) * ppm / 1000000u;
	*ms = v ? v : 1;
}

static void plan_range(struct scn_range *r, uint32_t ppm)
{
	plan_ms(&r->min_ms, ppm);
	plan_ms(&r->max_ms, ppm);
	assert(r->min_ms <= r->max_ms);
}

static void plan_scale_service(struct scn_service *sv, uint32_t ppm)
{
	plan_ms(&sv->restart_delay_ms, ppm);
	plan_ms(&sv->restart_window_ms, ppm);
	plan_ms(&sv->update_delay_ms, ppm);
	plan_ms(&sv->update_monitor_ms, ppm);
	plan_ms(&sv->rollback_delay_ms, ppm);
	plan_ms(&sv->rollback_monitor_ms, ppm);
	plan_ms(&sv->health_interval_ms, ppm);
	plan_ms(&sv->health_timeout_ms, ppm);
	plan_ms(&sv->health_start_period_ms, ppm);
	plan_ms(&sv->stop_grace_period_ms, ppm);
}

void realplan_scale(struct scn_script *s, uint32_t ppm)
{
	assert(ppm > 0);
	if (ppm == 1000000u)
		return;
	for (size_t i = 0; i < s->cmd_count; i++) {
		struct scn_cmd *c = &s->cmds[i];
		switch (c->kind) {
		case SCN_RUN: plan_ms(&c->u.run_ms, ppm); break;
		case SCN_SET:
			plan_ms(&c->u.settings.heartbeat_ms, ppm);
			plan_ms(&c->u.settings.tick_ms, ppm);
			plan_ms(&c->u.settings.cert_expiry_ms, ppm);
			plan_ms(&c->u.settings.orphan_delay_ms, ppm);
			break;
		case SCN_SERVICE_CREATE:
		case SCN_SERVICE_UPDATE: plan_scale_service(&c->u.service, ppm); break;
		case SCN_IMAGE:
			plan_range(&c->u.image.start, ppm);
			plan_range(&c->u.image.exit_after, ppm);
			plan_range(&c->u.image.healthy_after, ppm);
			plan_range(&c->u.image.unhealthy_after, ppm);
			break;
		case SCN_LINK: plan_range(&c->u.link.delay, ppm); break;
		case SCN_RUNTIME:
			plan_ms(&c->u.runtime.for_ms, ppm);
			plan_ms(&c->u.runtime.down_ms, ppm);
			break;
		case SCN_DISK: plan_ms(&c->u.disk.for_ms, ppm); break;
		case SCN_EXPECT:
		case SCN_AWAIT: plan_ms(&c->u.expect.within_ms, ppm); break;
		case SCN_LOGS: plan_ms(&c->u.logs.within_ms, ppm); break;
		default: break;
		}
	}
}

int realplan_node_index(struct scn_node node, uint32_t managers, uint32_t workers)
{
	if (node.kind == SCN_NODE_MANAGER && node.number >= 1 && node.number <= managers)
		return (int)node.number - 1;
	if (node.kind == SCN_NODE_WORKER && node.number >= 1 && node.number <= workers)
		return (int)(managers + node.number - 1);
	return -1;
}

/* ---------------------------------------------------------------- network faults */

int realplan_net_partition(struct realplan_net *net, const uint32_t *group_of_node,
			   uint32_t star_group)
{
	uint8_t *row;
	assert(net->node_count <= REALPLAN_NODES_MAX);
	if (net->part_count >= sizeof net->group_of / sizeof net->group_of[0])
		return CS_ELIMIT;
	row = net->group_of[net->part_count++];
	for (uint32_t k = 0; k < net->node_count; k++) {
		uint32_t g = group_of_node[k] ? group_of_node[k] : star_group;
		assert(g <= LIMIT_SCN_GROUPS_MAX);
		row[k] = (uint8_t)g;
	}
	return 0;
}

bool realplan_net_blocked(const struct realplan_net *net, uint32_t a, uint32_t b)
{
	assert(a < net->node_count);
	assert(b < net->node_count);
	for (uint32_t p = 0; p < net->part_count; p++) {
		uint8_t ga = net->group_of[p][a], gb = net->group_of[p][b];
		if (ga != 0 && gb != 0 && ga != gb)
			return true;
	}
	return false;
}

int realplan_nft(const struct realplan_net *net, uint32_t node, const char *table,
		 const char *const *addrs, char *buf, size_t size)
{
	size_t len = 0;
	int k;

	assert(node < net->node_count);
#define PLAN_PUT(...)                                             \
	do {                                                      \
		k = snprintf(buf + len, size - len, __VA_ARGS__); \
		if (k < 0 || (size_t)k >= size - len)             \
			return -1;                                \
		len += (size_t)k;                                 \
	} while (0)
	/* add then delete: deleting a table that is not there fails */
	PLAN_PUT("table inet %s {}\ndelete table inet %s\n", table, table);
	PLAN_PUT("table inet %s {\n\tchain output {\n\t\ttype filter hook output "
		 "priority 0; policy accept;\n",
		 table);
	for (uint32_t j = 0; j < net->node_count; j++) {
		if (j == node)
			continue;
		if (realplan_net_blocked(net, node, j))
			PLAN_PUT("\t\tip daddr %s drop\n", addrs[j]);
		else if (net->loss_ppm[node][j])
			PLAN_PUT("\t\tip daddr %s numgen random mod 1000000 < %" PRIu32
				 " drop\n",
				 addrs[j], net->loss_ppm[node][j]);
	}
	PLAN_PUT("\t}\n}\n");
#undef PLAN_PUT
	return (int)len;
}

/* ---------------------------------------------------------------- images */

/* Shell lines that sleep a duration drawn in r (busybox ash's $RANDOM). */
static int plan_sleep(const struct scn_range *r, char *buf, size_t size)
{
	if (r->min_ms == r->max_ms)
		return snprintf(buf, size, "ms=%" PRIu64 "\n", r->min_ms);
	return snprintf(buf, size,
			"ms=$((%" PRIu64 " + (RANDOM * 32768 + RANDOM) %% %" PRIu64
			"))\n",
			r->min_ms, r->max_ms - r->min_ms + 1);
}

int realplan_image_script(const struct scn_image *img, char *buf, size_t size)
{
	struct scn_range start = {100, 1000};
	size_t len = 0;
	int k;

#define PLAN_PUT(...)                                             \
	do {                                                      \
		k = snprintf(buf + len, size - len, __VA_ARGS__); \
		if (k < 0 || (size_t)k >= size - len)             \
			return -1;                                \
		len += (size_t)k;                                 \
	} while (0)
#define PLAN_SLEEP "sleep $((ms / 1000)).$(printf %%03d $((ms %% 1000)))\n"
	if (img && img->has_start)
		start = img->start;
	PLAN_PUT("#!/bin/sh\n# %s\n", img ? img->name : "the default image");
	PLAN_PUT("trap %s TERM\n", img && img->stop_ignore ? "''" : "'exit 0'");
	k = plan_sleep(&start, buf + len, size - len);
	if (k < 0 || (size_t)k >= size - len)
		return -1;
	len += (size_t)k;
	PLAN_PUT(PLAN_SLEEP);
	if (img && img->has_exit) {
		k = plan_sleep(&img->exit_after, buf + len, size - len);
		if (k < 0 || (size_t)k >= size - len)
			return -1;
		len += (size_t)k;
		PLAN_PUT(PLAN_SLEEP);
		PLAN_PUT("exit %" PRId32 "\n", img->exit_code);
	} else {
		PLAN_PUT("while :; do sleep 1; done\n");
	}
#undef PLAN_SLEEP
#undef PLAN_PUT
	return (int)len;
}

/* ---------------------------------------------------------------- JSON */

/* The end of the JSON string that opens at s[0] == '"' (its closing quote),
 * or NULL when it does not end before e. */
static const char *plan_json_str_end(const char *s, const char *e)
{
	for (s++; s < e; s++) {
		if (*s == '\\')
			s++;
		else if (*s == '"')
			return s;
	}
	return NULL;
}

/* The end (one past) of the value at s: a string, object, array or
 * literal. NULL when it does not end before e. */
static const char *plan_json_value_end(const char *s, const char *e)
{
	int depth = 0;
	if (s >= e)
		return NULL;
	if (*s == '"') {
		s = plan_json_str_end(s, e);
		return s ? s + 1 : NULL;
	}
	if (*s != '{' && *s != '[') {
		while (s < e && *s != ',' && *s != '}' && *s != ']' && *s != ' ' &&
		       *s != '\n')
			s++;
		return s;
	}
	for (; s < e; s++) {
		if (*s == '"') {
			s = plan_json_str_end(s, e);
			if (!s)
				return NULL;
		} else if (*s == '{' || *s == '[') {
			depth++;
		} else if (*s == '}' || *s == ']') {
			if (--depth == 0)
				return s + 1;
		}
	}
	return NULL;
}

static const char *plan_json_ws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
		s++;
	return s;
}

bool realplan_json_next(const char **p, const char **obj, size_t *len)
{
	const char *s = *p, *e = s + strlen(s), *end;
	s = plan_json_ws(s, e);
	if (s < e && (*s == '[' || *s == ','))
		s = plan_json_ws(s + 1, e);
	if (s >= e || *s != '{')
		return false;
	end = plan_json_value_end(s, e);
	if (!end)
		return false;
	*obj = s;
	*len = (size_t)(end - s);
	*p = end;
	return true;
}

bool realplan_json_get(const char *obj, size_t len, const char *key, char *out,
		       size_t size)
{
	const char *s = obj, *e = obj + len;
	size_t klen = strlen(key);

	assert(size > 0);
	if (len < 2 || *s != '{')
		return false;
	s++;
	for (;;) {
		const char *kend, *v, *vend;
		s = plan_json_ws(s, e);
		if (s >= e || *s != '"')
			return false;
		kend = plan_json_str_end(s, e);
		if (!kend)
			return false;
		v = plan_json_ws(kend + 1, e);
		if (v >= e || *v != ':')
			return false;
		v = plan_json_ws(v + 1, e);
		vend = plan_json_value_end(v, e);
		if (!vend)
			return false;
		if ((size_t)(kend - s - 1) == klen && memcmp(s + 1, key, klen) == 0) {
			size_t n;
			if (*v == '{' || *v == '[')
				return false;
			if (*v == '"') {
				v++;
				vend--;
			}
			n = (size_t)(vend - v);
			if (n >= size)
				return false;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		s = plan_json_ws(vend, e);
		if (s >= e || *s != ',')
			return false;
		s++;
	}
}
