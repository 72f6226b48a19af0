/* explore: random fault schedules and their shrinking. See explore.h.
 *
 * What an explored run checks (the choice, as SCENARIOS.md would state it):
 *
 *  - The scenario's commands run as written, in order, except `expect`
 *    lines and `seed` lines: a timed expectation may legitimately fail
 *    while faults are active (a partitioned worker's tasks are not running),
 *    so `expect COND within D` becomes `await COND within D` (it waits as
 *    long, so that the story keeps its pace: a leader before `kill leader`,
 *    and never fails); an immediate `expect` is dropped; the seed is the
 *    explored one. `always`
 *    conditions stay, and the five invariants are checked after every event
 *    (the runner does that), so an `always` that a fault breaks is found.
 *  - The fault window is the scenario's span (the sum of its `run`
 *    durations), or EXPLORE_WINDOW_MS when that is shorter. Faults start
 *    and end at drawn offsets in it: a `run D` of the scenario is split
 *    into pieces with the fault commands between them; offsets past the
 *    scenario's last `run` get `run` pieces of their own after its last
 *    command. Offsets are nominal: they count only `run` time, so commands
 *    that wait (service create waiting for a leader) shift the faults after
 *    them a little; the text is what runs, so a replay is exact anyway.
 *  - The liveness phase follows the window: `heal`, `restart` of every node
 *    ever named (a no-op for running ones; not for removed ones), every
 *    faulted image reset, then `expect converged within 120s` and
 *    `expect managers in sync within 60s`.
 *  - Faults stay survivable: at any time at most a minority of the initial
 *    managers is down or cut off by generated faults, never every worker,
 *    no node is faulted twice at once and at most one generated partition
 *    is in place. (Link faults degrade a link without cutting it, and do not
 *    count; the scenario's own faults are not counted: explore is meant for
 *    scenarios without faults of their own, as in scenarios/explore/.)
 *    Counting is per fault interval, which overestimates; that is safe.
 *  - Nodes that the scenario removes, promotes or demotes are never faulted,
 *    nor are nodes added after `cluster` or workers past w64. A scenario
 *    that rotates the CA itself gets no generated `ca rotate` or `cert`
 *    fault (explore_rotates says why), and no node fault that lasts across
 *    its wait for a rotation to finish (explore_spans_rotation_wait).
 *
 * Shrinking keeps a step when the run still fails in any way (not only with
 * the same message): simpler to state, and a different failure found on the
 * way is still a failure worth the smaller schedule. */
#include "sim/explore.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "sim/rng.h"

static const char *const explore_kind_names[EXPLORE_KIND_COUNT] = {
	"crash",   "restart", "partition", "link", "process",
	"runtime", "disk",    "cert",	   "ca",
};

enum {
	EXPLORE_NODES_MASKED = 64,	 /* nodes past m64/w64 are never faulted */
	EXPLORE_TRIES = 8,		 /* draws for one fault before giving up */
	EXPLORE_CA_AFTER_MS = 60 * 1000, /* a rotation starts this far in */
};

/* The image of services with no image= (clusterops' default). */
#define EXPLORE_DEFAULT_IMAGE "cswarm/default"

/* ---------------------------------------------------------------- kinds */

int explore_kinds_parse(const char *list, uint32_t *kinds, char *err, size_t err_size)
{
	const char *p = list;

	*kinds = 0;
	if (strcmp(list, "all") == 0) {
		*kinds = EXPLORE_FAULTS_ALL;
		return 0;
	}
	while (*p) {
		size_t n = strcspn(p, ",");
		bool found = false;
		for (int k = 0; k < EXPLORE_KIND_COUNT; k++) {
			if (strlen(explore_kind_names[k]) == n &&
			    strncmp(p, explore_kind_names[k], n) == 0) {
				*kinds |= 1u << k;
				found = true;
			}
		}
		if (!found) {
			snprintf(err, err_size,
				 "unknown fault '%.*s' (want crash, restart, partition, "
				 "link, process, runtime, disk or all)",
				 (int)n, p);
			return CS_EINVAL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!*kinds) {
		snprintf(err, err_size, "--faults wants at least one fault kind");
		return CS_EINVAL;
	}
	return 0;
}

const char *explore_kinds_text(uint32_t kinds, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int k = 0; k < EXPLORE_KIND_COUNT; k++) {
		int n;
		if (!(kinds & (1u << k)))
			continue;
		n = snprintf(buf + used, size - used, "%s%s", used ? "," : "",
			     explore_kind_names[k]);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	return buf;
}

size_t explore_enabled_count(const struct explore_plan *plan)
{
	size_t n = 0;
	for (size_t i = 0; i < plan->fault_count; i++)
		n += plan->faults[i].enabled;
	return n;
}

/* ---------------------------------------------------------------- drawing */

static const struct scn_cmd *explore_cluster_cmd(const struct scn_script *s)
{
	return scn_first(s, SCN_CLUSTER);
}

/* Whether the scenario removes, promotes or demotes node (kind, number). */
/* Whether node n is (kind, number), or may be: `leader` may be any manager. */
static bool explore_names(const struct scn_node *n, enum scn_node_kind kind,
			  uint32_t number)
{
	if (n->kind == SCN_NODE_LEADER)
		return kind == SCN_NODE_MANAGER;
	return n->kind == kind && n->number == number;
}

/* Whether the scenario itself manages or faults node (kind, number): node
 * rm, promote, demote, drain, pause, kill, restart, partition, isolate,
 * link, runtime, disk. The
 * generated faults leave such a node alone, so that they never clash with
 * the scenario's own ("kill w1: w1 is already down") and its story stays
 * what its author wrote. */
static bool explore_node_managed(const struct scn_script *s, enum scn_node_kind kind,
				 uint32_t number)
{
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		switch (c->kind) {
		case SCN_NODE_RM:
		case SCN_NODE_PROMOTE:
		case SCN_NODE_DEMOTE:
		case SCN_NODE_DRAIN:
		case SCN_NODE_PAUSE:
		case SCN_KILL:
		case SCN_RESTART:
			if (explore_names(&c->u.node.node, kind, number))
				return true;
			break;
		case SCN_PARTITION:
		case SCN_ISOLATE:
			for (size_t g = 0; g < c->u.partition.group_count; g++)
				for (size_t k = 0;
				     k < c->u.partition.groups[g].node_count; k++)
					if (explore_names(
						    &c->u.partition.groups[g].nodes[k],
						    kind, number))
						return true;
			break;
		case SCN_LINK:
			if (explore_names(&c->u.link.a, kind, number) ||
			    explore_names(&c->u.link.b, kind, number))
				return true;
			break;
		case SCN_RUNTIME:
			if (explore_names(&c->u.runtime.node, kind, number))
				return true;
			break;
		case SCN_DISK:
			if (explore_names(&c->u.disk.node, kind, number))
				return true;
			break;
		default: break;
		}
	}
	return false;
}

/* Whether the scenario removes node (kind, number) with `node rm`. */
static bool explore_node_removed(const struct scn_script *s, enum scn_node_kind kind,
				 uint32_t number)
{
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		if (c->kind == SCN_NODE_RM && c->u.node.node.kind == kind &&
		    c->u.node.node.number == number)
			return true;
	}
	return false;
}

/* Adds name to the plan's images (once). */
static void explore_add_image(struct explore_plan *plan, const char *name)
{
	for (size_t i = 0; i < plan->image_count; i++)
		if (strcmp(plan->images[i], name) == 0)
			return;
	if (plan->image_count >= EXPLORE_IMAGES_MAX ||
	    strlen(name) >= sizeof plan->images[0])
		return;
	snprintf(plan->images[plan->image_count], sizeof plan->images[0], "%s", name);
	snprintf(plan->image_reset[plan->image_count], sizeof plan->image_reset[0],
		 "image %s", name);
	plan->image_count++;
}

/* Whether the rolling update that command k of s starts (`service update
 * NAME image=...`) pauses on a failure of its new tasks: the service's
 * update failure action, as its create and updates up to k last set it
 * (SwarmKit's default: pause). */
static bool explore_update_pauses(const struct scn_script *s, size_t k)
{
	const char *name = s->cmds[k].u.service.name;
	enum scn_failure_action fa = SCN_FA_PAUSE;

	for (size_t i = 0; i <= k; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		if ((c->kind != SCN_SERVICE_CREATE && c->kind != SCN_SERVICE_UPDATE) ||
		    !c->u.service.name || strcmp(c->u.service.name, name) != 0)
			continue;
		if (c->kind == SCN_SERVICE_CREATE)
			fa = SCN_FA_PAUSE;
		if (c->u.service.set & SCN_SVC_UPDATE_FAILURE_ACTION)
			fa = c->u.service.update_failure_action;
	}
	return fa == SCN_FA_PAUSE;
}

/* Collects the images a process fault may break: those of services that
 * restart on any exit, with no restart limit; an image whose service says
 * otherwise anywhere is left alone. So is the new image of a rolling
 * update that pauses on failure: its tasks failing for a while would
 * pause that update for good, by design (SwarmKit's updater; only an
 * operator's update resumes it), and the liveness phase could never see
 * the service converged (update-delay-between-batches.scn seed 2 --swarm:
 * `image v2 pull=fail` during its update). The reset of an image is the
 * scenario's first `image` line for it, or `image NAME` (the runtime's
 * defaults). */
static void explore_collect_images(const struct scn_script *s, struct explore_plan *plan)
{
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		const struct scn_service *svc = &c->u.service;
		if (c->kind != SCN_SERVICE_CREATE)
			continue;
		if (svc->restart != SCN_RESTART_ANY || (svc->set & SCN_SVC_RESTART_MAX))
			continue;
		explore_add_image(plan, svc->image ? svc->image : EXPLORE_DEFAULT_IMAGE);
	}
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		if (c->kind != SCN_SERVICE_UPDATE || !(c->u.service.set & SCN_SVC_IMAGE))
			continue;
		if (explore_update_pauses(s, i))
			continue;
		explore_add_image(plan, c->u.service.image);
	}
	for (size_t k = 0; k < plan->image_count; k++) {
		for (size_t i = 0; i < s->cmd_count; i++) {
			const struct scn_cmd *c = &s->cmds[i];
			if (c->kind == SCN_IMAGE &&
			    strcmp(c->u.image.name, plan->images[k]) == 0) {
				if (c->u.image.has_exit || c->u.image.pull_fail)
					plan->images[k][0] = '\0'; /* faulty by design */
				else
					snprintf(plan->image_reset[k],
						 sizeof plan->image_reset[0], "%s",
						 c->text);
				break;
			}
		}
	}
}

static int explore_popcount(uint64_t x)
{
	int n = 0;
	for (; x; x &= x - 1)
		n++;
	return n;
}

/* Whether fault f can join the plan: with every enabled fault whose
 * interval meets f's, a minority of managers at most is down or cut off,
 * never every worker; no node twice; one partition and one fault per image
 * at a time. */
static bool explore_fits(const struct explore_plan *plan, const struct explore_fault *f)
{
	uint64_t mgr = f->mgr_mask, wrk = f->wrk_mask;
	uint64_t f_end = f->at_ms + f->dur_ms;

	for (size_t i = 0; i < plan->fault_count; i++) {
		const struct explore_fault *g = &plan->faults[i];
		if (!g->enabled || g->at_ms >= f_end || f->at_ms >= g->at_ms + g->dur_ms)
			continue;
		if ((g->mgr_mask & mgr) || (g->wrk_mask & wrk))
			return false;
		if (g->kind == EXPLORE_PARTITION && f->kind == EXPLORE_PARTITION)
			return false;
		if (g->image >= 0 && g->image == f->image)
			return false;
		mgr |= g->mgr_mask;
		wrk |= g->wrk_mask;
	}
	if (explore_popcount(mgr) > (int)plan->mgr_budget)
		return false;
	if ((uint64_t)explore_popcount(wrk) > plan->wrk_budget)
		return false;
	return true;
}

/* What the scenario's own faults take: the managers and workers it kills,
 * cuts off (any node named in a partition or isolate: the side it is on is
 * not worked out, which overcounts, safely), fails the disk of, removes or
 * demotes (one voter fewer), and workers it drains or pauses (no task goes
 * there); each such command naming `leader` counts one more manager, as it
 * may be another each time. Counted over the whole run, not per interval:
 * overcounting, safe. */
static void explore_scenario_faults(const struct scn_script *s, uint64_t *mgrs,
				    uint64_t *wrks, uint32_t *leader_faults)
{
	*mgrs = *wrks = 0;
	*leader_faults = 0;
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		const struct scn_node *list[1];
		size_t n = 0;
		switch (c->kind) {
		case SCN_KILL:
		case SCN_NODE_RM:
		case SCN_NODE_DEMOTE:
		case SCN_NODE_DRAIN:
		case SCN_NODE_PAUSE: list[n++] = &c->u.node.node; break;
		case SCN_DISK:
			if (c->u.disk.fault != SCN_DISK_OK)
				list[n++] = &c->u.disk.node;
			break;
		case SCN_PARTITION:
		case SCN_ISOLATE:
			for (size_t g = 0; g < c->u.partition.group_count; g++)
				for (size_t k = 0;
				     k < c->u.partition.groups[g].node_count; k++) {
					const struct scn_node *nd =
						&c->u.partition.groups[g].nodes[k];
					if (nd->kind == SCN_NODE_LEADER)
						(*leader_faults)++;
					else if (nd->kind == SCN_NODE_MANAGER &&
						 nd->number <= EXPLORE_NODES_MASKED)
						*mgrs |= 1ull << (nd->number - 1);
					else if (nd->kind == SCN_NODE_WORKER &&
						 nd->number <= EXPLORE_NODES_MASKED)
						*wrks |= 1ull << (nd->number - 1);
				}
			break;
		default: break;
		}
		for (size_t k = 0; k < n; k++) {
			const struct scn_node *nd = list[k];
			if (nd->kind == SCN_NODE_LEADER)
				(*leader_faults)++;
			else if (nd->kind == SCN_NODE_MANAGER &&
				 nd->number <= EXPLORE_NODES_MASKED)
				*mgrs |= 1ull << (nd->number - 1);
			else if (nd->kind == SCN_NODE_WORKER &&
				 nd->number <= EXPLORE_NODES_MASKED)
				*wrks |= 1ull << (nd->number - 1);
		}
	}
}

/* Sets the plan's budgets: a minority of the managers less what the
 * scenario itself takes, and every worker but one less what it takes. */
static void explore_budget(const struct scn_script *s, struct explore_plan *plan)
{
	uint64_t mgrs, wrks;
	uint32_t leader_faults, tolerable = plan->managers ? (plan->managers - 1) / 2 : 0;
	uint32_t used_m, used_w;

	explore_scenario_faults(s, &mgrs, &wrks, &leader_faults);
	used_m = (uint32_t)explore_popcount(mgrs) + leader_faults;
	used_w = (uint32_t)explore_popcount(wrks);
	plan->mgr_budget = tolerable > used_m ? tolerable - used_m : 0;
	plan->wrk_budget = plan->workers > used_w + 1 ? plan->workers - used_w - 1 : 0;
	/* and never so many workers that the services no longer fit on the
	 * others (with --swarm, where the shape was drawn to fit them):
	 * tasks moved off a faulted node stay where they went */
	if (plan->swarm) {
		uint32_t spare_w = plan->workers > plan->need_workers + used_w
					   ? plan->workers - plan->need_workers - used_w
					   : 0;
		uint32_t all = plan->workers + plan->managers;
		uint32_t spare =
			all > plan->need_nodes + used_w + used_m + plan->mgr_budget
				? all - plan->need_nodes - used_w - used_m -
					  plan->mgr_budget
				: 0;
		if (plan->wrk_budget > spare_w)
			plan->wrk_budget = spare_w;
		if (plan->wrk_budget > spare)
			plan->wrk_budget = spare;
	}
}

/* The nodes faults may touch: the initial cluster's, minus those the
 * scenario manages, minus those past the masks. */
struct explore_nodes {
	uint32_t mgrs[EXPLORE_NODES_MASKED];
	uint32_t wrks[EXPLORE_NODES_MASKED];
	size_t mgr_count, wrk_count;
};

static void explore_nodes_init(const struct scn_script *s,
			       const struct explore_plan *plan, struct explore_nodes *n)
{
	memset(n, 0, sizeof *n);
	for (uint32_t i = 1; i <= plan->managers && i <= EXPLORE_NODES_MASKED; i++)
		if (!explore_node_managed(s, SCN_NODE_MANAGER, i))
			n->mgrs[n->mgr_count++] = i;
	for (uint32_t i = 1; i <= plan->workers && i <= EXPLORE_NODES_MASKED; i++)
		if (!explore_node_managed(s, SCN_NODE_WORKER, i))
			n->wrks[n->wrk_count++] = i;
}

/* Picks one faultable node: *manager says which kind, *number which one.
 * Returns false when there is none. */
static bool explore_pick_node(struct rng *r, const struct explore_nodes *n, bool *manager,
			      uint32_t *number)
{
	size_t total = n->mgr_count + n->wrk_count;
	size_t i;

	if (!total)
		return false;
	i = (size_t)rng_below(r, total);
	*manager = i < n->mgr_count;
	*number = *manager ? n->mgrs[i] : n->wrks[i - n->mgr_count];
	return true;
}

static void explore_node_mask(struct explore_fault *f, bool manager, uint32_t number)
{
	if (manager)
		f->mgr_mask |= 1ull << (number - 1);
	else
		f->wrk_mask |= 1ull << (number - 1);
}

/* Appends to a fixed buffer; silently truncates (callers size for it). */
__attribute__((format(printf, 2, 3))) static void explore_cat(char *buf, const char *fmt,
							      ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used >= EXPLORE_CMD_MAX - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, EXPLORE_CMD_MAX - used, fmt, ap);
	va_end(ap);
}

/* Shuffles the first k of list (a partial Fisher-Yates) so that list[0..k)
 * is a uniform choice of k. */
static void explore_choose(struct rng *r, uint32_t *list, size_t count, size_t k)
{
	for (size_t i = 0; i < k && i < count; i++) {
		size_t j = i + (size_t)rng_below(r, count - i);
		uint32_t t = list[i];
		list[i] = list[j];
		list[j] = t;
	}
}

/* Draws one fault of kind into *f (start, duration and commands). Returns
 * false when the kind has nothing to act on here. */
static bool explore_draw(struct rng *r, const struct explore_plan *plan,
			 const struct explore_nodes *nodes, enum explore_kind kind,
			 uint64_t max_dur_ms, struct explore_fault *f)
{
	bool manager;
	uint32_t number;

	memset(f, 0, sizeof *f);
	f->kind = kind;
	f->enabled = true;
	f->image = -1;
	f->at_ms = rng_below(r, plan->window_ms - EXPLORE_FAULT_MIN_MS);
	f->dur_ms = rng_range(r, EXPLORE_FAULT_MIN_MS, max_dur_ms);
	if (f->at_ms + f->dur_ms > plan->window_ms)
		f->dur_ms = plan->window_ms - f->at_ms;

	switch (kind) {
	case EXPLORE_CRASH:
		if (!explore_pick_node(r, nodes, &manager, &number))
			return false;
		explore_node_mask(f, manager, number);
		explore_cat(f->start, "kill %c%" PRIu32, manager ? 'm' : 'w', number);
		if (rng_chance_ppm(r, 600000))
			explore_cat(f->end, "restart %c%" PRIu32, manager ? 'm' : 'w',
				    number);
		else
			f->dur_ms = plan->window_ms - f->at_ms; /* down till the end */
		return true;
	case EXPLORE_RESTART:
		if (!explore_pick_node(r, nodes, &manager, &number))
			return false;
		explore_node_mask(f, manager, number);
		explore_cat(f->start, "kill %c%" PRIu32 " process", manager ? 'm' : 'w',
			    number);
		explore_cat(f->end, "restart %c%" PRIu32, manager ? 'm' : 'w', number);
		return true;
	case EXPLORE_PARTITION: {
		struct explore_nodes pick = *nodes;
		size_t mgr_max = plan->mgr_budget;
		size_t k_m, k_w;
		if (mgr_max > pick.mgr_count)
			mgr_max = pick.mgr_count;
		k_m = (size_t)rng_range(r, 0, mgr_max);
		k_w = pick.wrk_count && plan->wrk_budget
			      ? (size_t)rng_range(r, 0,
						  pick.wrk_count < plan->wrk_budget
							  ? pick.wrk_count
							  : plan->wrk_budget)
			      : 0;
		if (k_m + k_w == 0)
			return false;
		explore_choose(r, pick.mgrs, pick.mgr_count, k_m);
		explore_choose(r, pick.wrks, pick.wrk_count, k_w);
		explore_cat(f->start, "partition");
		for (size_t i = 0; i < k_m; i++) {
			explore_cat(f->start, " m%" PRIu32, pick.mgrs[i]);
			explore_node_mask(f, true, pick.mgrs[i]);
		}
		for (size_t i = 0; i < k_w; i++) {
			explore_cat(f->start, " w%" PRIu32, pick.wrks[i]);
			explore_node_mask(f, false, pick.wrks[i]);
		}
		explore_cat(f->start, " | *");
		explore_cat(f->end, "heal");
		return true;
	}
	case EXPLORE_LINK: {
		bool m2;
		uint32_t n2;
		uint64_t lo, hi;
		if (!explore_pick_node(r, nodes, &manager, &number) ||
		    !explore_pick_node(r, nodes, &m2, &n2))
			return false;
		if (manager == m2 && number == n2)
			return false;
		explore_cat(f->start, "link %c%" PRIu32 " %c%" PRIu32,
			    manager ? 'm' : 'w', number, m2 ? 'm' : 'w', n2);
		explore_cat(f->end, "%s", f->start);
		explore_cat(f->start, " loss=%" PRIu64 "%%", rng_range(r, 1, 30));
		lo = rng_range(r, 0, 200);
		hi = lo + rng_range(r, 0, 800);
		if (rng_chance_ppm(r, 500000))
			explore_cat(f->start, " delay=%" PRIu64 "ms..%" PRIu64 "ms", lo,
				    hi);
		if (rng_chance_ppm(r, 300000))
			explore_cat(f->start, " dup=%" PRIu64 "%%", rng_range(r, 1, 10));
		return true;
	}
	case EXPLORE_PROCESS: {
		size_t i;
		uint64_t lo;
		if (!plan->image_count)
			goto process_kill;
		i = (size_t)rng_below(r, plan->image_count);
		if (!plan->images[i][0])
			goto process_kill;
		f->image = (int32_t)i;
		lo = rng_range(r, 500, 20000);
		if (rng_chance_ppm(r, 700000))
			explore_cat(f->start,
				    "image %s exit=1 after=%" PRIu64 "ms..%" PRIu64 "ms",
				    plan->images[i], lo, lo + rng_range(r, 0, 30000));
		else
			explore_cat(f->start, "image %s pull=fail", plan->images[i]);
		explore_cat(f->end, "%s", plan->image_reset[i]);
		return true;
	process_kill:
		/* no image to break: the closest fault is the daemon's death */
		return explore_draw(r, plan, nodes, EXPLORE_RESTART, max_dur_ms, f);
	}
	case EXPLORE_RUNTIME: {
		/* the node's dockerd stops answering some calls, or restarts
		 * (keeping or losing its containers), for a bounded time */
		static const char *const ops[] = {"prepare", "start",  "wait",
						  "stop",    "remove", "list"};
		char c = 'w';
		uint64_t pick;
		if (!explore_pick_node(r, nodes, &manager, &number))
			return false;
		c = manager ? 'm' : 'w';
		explore_node_mask(f, manager, number);
		if (f->dur_ms > EXPLORE_RUNTIME_MAX_MS)
			f->dur_ms = EXPLORE_RUNTIME_MAX_MS;
		pick = rng_below(r, 4);
		if (pick == 0) {
			explore_cat(f->start,
				    "runtime %c%" PRIu32
				    " restart containers=%s down=%" PRIu64 "ms",
				    c, number,
				    rng_chance_ppm(r, 500000) ? "keep" : "lose",
				    f->dur_ms);
		} else if (pick == 1) {
			explore_cat(f->start, "runtime %c%" PRIu32 " fail=all", c,
				    number);
		} else {
			uint64_t mask = 0;
			const char *sep = "=";
			while (!mask)
				mask = rng_below(r, 1u << 6);
			explore_cat(f->start, "runtime %c%" PRIu32 " fail", c, number);
			for (size_t k = 0; k < 6; k++)
				if (mask & (1u << k)) {
					explore_cat(f->start, "%s%s", sep, ops[k]);
					sep = ",";
				}
		}
		explore_cat(f->end, "runtime %c%" PRIu32 " ok", c, number);
		return true;
	}
	case EXPLORE_DISK: {
		/* the node's disk fails writes or syncs, or fills: its daemon
		 * exits at its first failed durable write; at the end the disk
		 * works again and the node is started again */
		char c;
		uint64_t pick;
		if (!explore_pick_node(r, nodes, &manager, &number))
			return false;
		c = manager ? 'm' : 'w';
		explore_node_mask(f, manager, number);
		pick = rng_below(r, 6);
		if (pick == 0)
			explore_cat(f->start, "disk %c%" PRIu32 " fault=full", c, number);
		else if (pick == 4)
			/* issue 19: the machine dies while its pages are
			 * being written: unsynced pages are torn */
			explore_cat(f->start,
				    "disk %c%" PRIu32 " fault=torn\nkill %c%" PRIu32, c,
				    number, c, number);
		else if (pick == 5)
			/* issue 19: the agent's task database rots while its
			 * daemon is down: it starts clean. (A manager's Raft
			 * log is left to scenarios: damage beyond the log,
			 * 15% of drawn flips, refuses the start for good, by
			 * design: see disk-corrupt-raft-log.scn.) */
			explore_cat(f->start,
				    "kill %c%" PRIu32 " process\ndisk %c%" PRIu32
				    " fault=corrupt file=agent pages=%" PRIu64,
				    c, number, c, number, 1 + rng_below(r, 8));
		else
			explore_cat(f->start, "disk %c%" PRIu32 " fault=eio on=%s", c,
				    number,
				    pick == 1	? "write"
				    : pick == 2 ? "sync"
						: "both");
		explore_cat(f->end, "disk %c%" PRIu32 " ok\nrestart %c%" PRIu32, c,
			    number, c, number);
		return true;
	}
	case EXPLORE_CERT:
	case EXPLORE_CA: {
		/* one of the two per plan: a worker whose certificate expired
		 * joins again with the token it was started with, which a
		 * rotation replaces (an operator would hand it the new one) */
		for (size_t i = 0; i < plan->fault_count; i++)
			if (plan->faults[i].kind == EXPLORE_CA ||
			    (kind == EXPLORE_CA && plan->faults[i].kind == EXPLORE_CERT))
				return false;
		if (kind == EXPLORE_CA) {
			/* once the cluster has formed: a node that joins after
			 * a rotation needs the new token (node add takes it; the
			 * scenario's first nodes were given the first one) */
			if (plan->window_ms < 2 * EXPLORE_CA_AFTER_MS)
				return false;
			f->at_ms =
				EXPLORE_CA_AFTER_MS +
				rng_below(r, plan->window_ms - 2 * EXPLORE_CA_AFTER_MS);
			f->dur_ms = EXPLORE_FAULT_MIN_MS;
			explore_cat(f->start, "ca rotate");
			/* every other one (by its drawn second: no draw of its
			 * own, so the plan's other faults stay as they were)
			 * is replaced by a second rotation 1 to 30 s later, in
			 * whatever phase the first one is then (SwarmKit
			 * replaces a rotation in progress) */
			if ((f->at_ms / 1000) % 2) {
				f->dur_ms = 1000 + f->at_ms % 29000;
				explore_cat(f->end, "ca rotate");
			}
			return true;
		}
		if (!nodes->wrk_count)
			return false;
		number = nodes->wrks[rng_below(r, nodes->wrk_count)];
		explore_node_mask(f, false, number);
		/* its old identity is gone; the new one takes a moment */
		explore_cat(f->start, "cert w%" PRIu32 " expire", number);
		return true;
	}
	case EXPLORE_KIND_COUNT: break;
	}
	return false;
}

/* What placement needs of one service, as far as the shape can help: its
 * replicas, how many fit on one node (max-per-node, reservations against
 * the node's size less the global services' reservations), and which nodes
 * may take it (role constraints; others are the scenario's own business:
 * labels and hostnames name nodes the shape does not draw). */
struct explore_svc_need {
	const char *name;
	uint64_t replicas, max_per_node, cpu, mem;
	bool global, removed;
	int role; /* 0 any, 1 workers only, 2 managers only */
};

enum { EXPLORE_SVCS_MAX = 64 };

static void explore_need_apply(struct explore_svc_need *n, const struct scn_service *svc,
			       bool create)
{
	if (create || (svc->set & SCN_SVC_REPLICAS))
		n->replicas = svc->replicas;
	if (create || (svc->set & SCN_SVC_MODE))
		n->global =
			svc->mode == SCN_MODE_GLOBAL || svc->mode == SCN_MODE_GLOBAL_JOB;
	if (create || (svc->set & SCN_SVC_MAX_PER_NODE))
		n->max_per_node = svc->max_per_node;
	if (create || (svc->set & SCN_SVC_RESERVE_CPU))
		n->cpu = svc->reserve_millicpu;
	if (create || (svc->set & SCN_SVC_RESERVE_MEM))
		n->mem = svc->reserve_mem_bytes;
	if (create || (svc->set & SCN_SVC_CONSTRAINT)) {
		n->role = 0;
		for (size_t k = 0; k < svc->constraint_count; k++) {
			const struct scn_constraint *c = &svc->constraints[k];
			if (strcmp(c->key, "node.role") != 0)
				continue;
			if ((strcmp(c->value, "worker") == 0) == c->equal)
				n->role = 1;
			else
				n->role = 2;
		}
	}
}

/* How many tasks of n fit on one node of the given size (UINT64_MAX: no
 * limit), the global services' reservations taken first. */
static uint64_t explore_per_node(const struct explore_svc_need *n, uint64_t cpu,
				 uint64_t mem)
{
	uint64_t k = n->max_per_node ? n->max_per_node : UINT64_MAX;
	if (n->cpu && cpu / n->cpu < k)
		k = cpu / n->cpu;
	if (n->mem && mem / n->mem < k)
		k = mem / n->mem;
	return k;
}

/* The fewest nodes (of any role, workers only, managers only) on which the
 * scenario's replicated services fit at every step: each service alone on
 * its own nodes, ceil(replicas / per node), summed over the services with
 * a per-node limit (an overestimate: packing them together needs no
 * more), at least one node for one without. A service that fits on no
 * node whatever the shape adds nothing (the shape cannot help it). */
static void explore_shape_need(const struct scn_script *s, const struct scn_cmd *cluster,
			       bool reserved_only, uint32_t *need_any, uint32_t *need_w,
			       uint32_t *need_m)
{
	struct explore_svc_need svcs[EXPLORE_SVCS_MAX];
	size_t count = 0;
	uint64_t global_cpu = 0, global_mem = 0;

	*need_any = *need_w = *need_m = 0;
	memset(svcs, 0, sizeof svcs);
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_service *svc = &s->cmds[i].u.service;
		if (s->cmds[i].kind == SCN_SERVICE_CREATE &&
		    (svc->mode == SCN_MODE_GLOBAL || svc->mode == SCN_MODE_GLOBAL_JOB)) {
			global_cpu += svc->reserve_millicpu;
			global_mem += svc->reserve_mem_bytes;
		}
	}
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		struct explore_svc_need *n = NULL;
		uint64_t cpu = cluster->u.cluster.millicpus,
			 mem = cluster->u.cluster.memory_bytes;
		uint64_t need[3] = {0, 0, 0};

		if (c->kind != SCN_SERVICE_CREATE && c->kind != SCN_SERVICE_UPDATE &&
		    c->kind != SCN_SERVICE_RM)
			continue;
		for (size_t k = 0; k < count; k++) {
			const char *name = c->kind == SCN_SERVICE_RM ? c->u.service_name
								     : c->u.service.name;
			if (strcmp(svcs[k].name, name) == 0)
				n = &svcs[k];
		}
		if (c->kind == SCN_SERVICE_RM) {
			if (n)
				n->removed = true;
			continue;
		}
		if (c->kind == SCN_SERVICE_CREATE) {
			if (!n && count < EXPLORE_SVCS_MAX)
				n = &svcs[count++];
			if (!n)
				continue;
			memset(n, 0, sizeof *n);
			n->name = c->u.service.name;
		}
		if (!n || c->refuse)
			continue;
		explore_need_apply(n, &c->u.service, c->kind == SCN_SERVICE_CREATE);
		/* every global service's reservations come off every node, the
		 * ones the scenario creates later too (their tasks find no room
		 * on a node the others filled: nothing moves tasks to make
		 * room) */
		cpu = cpu > global_cpu ? cpu - global_cpu : 0;
		mem = mem > global_mem ? mem - global_mem : 0;
		for (size_t k = 0; k < count; k++) {
			uint64_t per;
			if (svcs[k].global || svcs[k].removed || !svcs[k].replicas)
				continue;
			if (reserved_only && !svcs[k].cpu && !svcs[k].mem)
				continue;
			per = explore_per_node(&svcs[k], cpu, mem);
			if (per == 0)
				continue;
			need[svcs[k].role] +=
				per == UINT64_MAX ? 1
						  : (svcs[k].replicas + per - 1) / per;
		}
		if (need[0] > *need_any)
			*need_any = (uint32_t)(need[0] < 64 ? need[0] : 64);
		if (need[1] > *need_w)
			*need_w = (uint32_t)(need[1] < 64 ? need[1] : 64);
		if (need[2] > *need_m)
			*need_m = (uint32_t)(need[2] < 64 ? need[2] : 64);
	}
}

/* With swarm testing, draws the shape keys the `cluster` line leaves out
 * and the timings no `set` line gives. */
static void explore_draw_swarm(struct rng *r, const struct scn_script *s,
			       const struct scn_cmd *cluster, struct explore_plan *plan)
{
	uint32_t set = 0, min_m = s->managers_total, min_w = s->workers_total;
	uint64_t hb_ms = 5000, ticks = 10, tick_ms = 1000;

	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		if (c->kind == SCN_SET)
			set |= c->u.settings.set;
		if (c->kind == SCN_NODE_ADD && c->u.node.added.kind == SCN_NODE_MANAGER)
			min_m--;
		if (c->kind == SCN_NODE_ADD && c->u.node.added.kind == SCN_NODE_WORKER)
			min_w--;
	}
	if (!strstr(cluster->text, "managers=")) {
		plan->managers = (uint32_t)rng_range(r, min_m > 1 ? min_m : 1, 7);
		if (plan->managers < min_m)
			plan->managers = min_m;
		plan->managers_drawn = true;
	}
	if (!strstr(cluster->text, "workers=")) {
		plan->workers = (uint32_t)rng_range(r, min_w > 1 ? min_w : 1, 9);
		if (plan->workers < min_w)
			plan->workers = min_w;
		plan->workers_drawn = true;
	}
	/* never a shape the scenario's services cannot fit: more nodes
	 * than drawn where they need them (decided after the draws, so that
	 * every other draw of the seed stays what it was) */
	{
		uint32_t need_any, need_w, need_m;
		/* what faults must leave: room for the services that reserve
		 * resources (a task moved off a faulted node stays where it
		 * went and may fill the room another needs; without
		 * reservations, a pending task waits for the node instead) */
		explore_shape_need(s, cluster, true, &need_any, &need_w, &need_m);
		plan->need_workers = need_w ? need_w + need_any : 0;
		plan->need_nodes = need_any + need_w + need_m;
		explore_shape_need(s, cluster, false, &need_any, &need_w, &need_m);
		/* a service with no role constraint may take nodes of either
		 * side (its tasks then leave room for nothing else there), so
		 * a side that a role-bound service needs gets room for those
		 * too */
		if (need_m && plan->managers_drawn && plan->managers < need_m + need_any)
			plan->managers = need_m + need_any;
		if (need_w && plan->workers_drawn && plan->workers < need_w + need_any)
			plan->workers = need_w + need_any;
		if (plan->workers_drawn &&
		    plan->managers + plan->workers < need_any + need_w + need_m)
			plan->workers = need_any + need_w + need_m - plan->managers;
	}
	explore_cat(plan->settings, "set");
	if (!(set & SCN_SET_HEARTBEAT)) {
		hb_ms = 1000 * rng_range(r, 1, 10);
		explore_cat(plan->settings, " heartbeat=%" PRIu64 "s", hb_ms / 1000);
	}
	if (!(set & SCN_SET_ELECTION_TICKS)) {
		ticks = rng_range(r, 5, 20);
		explore_cat(plan->settings, " election-ticks=%" PRIu64, ticks);
	}
	if (!(set & SCN_SET_TICK)) {
		tick_ms = 100 * rng_range(r, 2, 10);
		explore_cat(plan->settings, " tick=%" PRIu64 "ms", tick_ms);
	}
	if (strcmp(plan->settings, "set") == 0)
		plan->settings[0] = '\0';
	/* the waits stretch as the drawn timings slow elections and the
	 * detection of a down node, against the scenario's own (the defaults
	 * where it sets none: the scenario's set lines are kept as they are
	 * and win over nothing drawn) */
	{
		uint64_t was_hb = 5000, was_ticks = 10, was_tick = 1000;
		uint64_t pct = 100, e;
		for (size_t i = 0; i < s->cmd_count; i++) {
			const struct scn_settings *st = &s->cmds[i].u.settings;
			if (s->cmds[i].kind != SCN_SET)
				continue;
			if (st->set & SCN_SET_HEARTBEAT)
				was_hb = hb_ms = st->heartbeat_ms;
			if (st->set & SCN_SET_ELECTION_TICKS)
				was_ticks = ticks = st->election_ticks;
			if (st->set & SCN_SET_TICK)
				was_tick = tick_ms = st->tick_ms;
		}
		e = was_ticks * was_tick;
		e = ticks * tick_ms * 100 / (e ? e : 1);
		if (e > pct)
			pct = e;
		e = hb_ms * 100 / (was_hb ? was_hb : 1);
		if (e > pct)
			pct = e;
		plan->wait_scale_pct = (uint32_t)pct;
	}
}

/* Whether f and a fault of the plan are a CA rotation and a node fault
 * that starts before the cluster formed: a node down before it ever
 * joined comes back, after the rotation, with the token it was started
 * with, which the rotation replaced; its transport rightly refuses every
 * manager, and it never joins (an operator would hand it the new token).
 * Such a pair is never drawn (explore/alloc.scn seed 209). */
static bool explore_ca_clash(const struct explore_plan *plan,
			     const struct explore_fault *f)
{
	for (size_t i = 0; i < plan->fault_count; i++) {
		const struct explore_fault *g = &plan->faults[i];
		const struct explore_fault *ca = f->kind == EXPLORE_CA	 ? f
						 : g->kind == EXPLORE_CA ? g
									 : NULL;
		const struct explore_fault *node = ca == f ? g : f;
		if (ca && node != ca && (node->mgr_mask || node->wrk_mask) &&
		    node->at_ms < EXPLORE_CA_AFTER_MS)
			return true;
	}
	return false;
}

/* Whether the scenario rotates the root CA itself (`ca rotate`). Its
 * rotations are then its own CA faults, which generated ones leave alone,
 * as they leave alone the nodes it faults: no generated `ca rotate` (it
 * would replace the scenario's own rotation, or be replaced by its next
 * one, and the scenario's `ca rotated` waits would wait for the other),
 * and no generated `cert wN expire`, whose worker joins
 * again as a new node: its old record, down for good, holds any rotation at
 * its phase until an operator removes it (the rotation waits for every
 * node of the store, as SwarmKit's reconciler does), and, once a rotation
 * finished, its first token names a root no manager presents any more. */
static bool explore_rotates(const struct scn_script *s)
{
	return scn_first(s, SCN_CA_ROTATE) != NULL;
}

/* Whether the scenario replaces a node's certificate itself (`cert NODE
 * ...`): such a node joins again as a new node, and its old record, down
 * for good, holds a rotation at its phase until someone removes it (a
 * rotation waits for every node of the store, as SwarmKit's does). So
 * explore draws no rotation into it, as it draws none beside a generated
 * cert fault (secrets-rejoined-node.scn's own `cert w1 expire`). */
static bool explore_certs(const struct scn_script *s)
{
	return scn_first(s, SCN_CERT) != NULL;
}

/* Whether the scenario creates a network of its own size (`network create
 * NAME subnet=CIDR`). A generated cert fault makes its worker join again
 * as a new node; the old record stays down with its tasks, and those keep
 * their addresses until they are ORPHANED 24 h later (SwarmKit's allocator
 * frees a task's addresses only once the task is past RUNNING, and its
 * dispatcher orphans a down node's tasks only after that delay). In a pool
 * the scenario sized to its tasks (alloc-subnet-exhausted.scn: a /29 for 4
 * tasks) the replacement tasks then find no address and stay pending for
 * good: not survivable, so explore draws no cert fault there. */
static bool explore_sized_network(const struct scn_script *s)
{
	for (size_t i = 0; i < s->cmd_count; i++)
		if (s->cmds[i].kind == SCN_NETWORK_CREATE && s->cmds[i].u.network.subnet)
			return true;
	return false;
}

/* Whether fault f, while it takes a node down or cuts it off, spans the
 * instant (in the window's `run` time) at which the scenario waits for its
 * rotation to finish (`expect`/`await ca rotated`). A rotation waits for
 * every node, by design (SwarmKit's reconciler too), so such a fault holds
 * the scenario's wait until it ends, and the fault's end comes after the
 * wait in the text (offsets count only `run` time): the wait times out
 * (an await, under explore), and the scenario's next `ca rotate` then
 * replaces a rotation still in progress (it was refused before), through
 * no bug (security-ca-rotation-leader-change.scn seed 7016: `kill w2
 * process` across the
 * first `expect ca rotated`). Such a fault is never drawn; one that ends
 * before the wait is, and the rotation must then finish. A fault with no
 * end (a machine that stays dead) spans every later wait. */
static bool explore_spans_rotation_wait(const struct scn_script *s,
					const struct explore_fault *f)
{
	uint64_t t_ms = 0;

	if (!f->mgr_mask && !f->wrk_mask)
		return false;
	for (size_t i = 0; i < s->cmd_count; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		if (c->kind == SCN_RUN)
			t_ms += c->u.run_ms;
		if ((c->kind != SCN_EXPECT && c->kind != SCN_AWAIT) ||
		    c->u.expect.cond.kind != SCN_COND_CA_ROTATED)
			continue;
		/* an event at the wait's instant is written after it */
		if (f->at_ms < t_ms && (!f->end[0] || f->at_ms + f->dur_ms >= t_ms))
			return true;
	}
	return false;
}

int explore_plan_make(const struct scn_script *script, uint64_t seed, uint32_t kinds,
		      bool swarm, struct explore_plan *plan)
{
	const struct scn_cmd *cluster = explore_cluster_cmd(script);
	uint64_t span_ms = 0, max_dur_ms = 60 * 1000;
	size_t fault_target;
	uint32_t drawn_kinds = kinds;
	struct explore_nodes nodes;
	struct rng r;
	bool rotates = explore_rotates(script);
	bool certs = explore_certs(script);
	bool sized_net = explore_sized_network(script);

	memset(plan, 0, sizeof *plan);
	if (!cluster)
		return CS_EINVAL;
	plan->seed = seed;
	plan->kinds = kinds;
	plan->swarm = swarm;
	plan->managers = cluster->u.cluster.managers;
	plan->workers = cluster->u.cluster.workers;
	plan->liveness_ms = EXPLORE_LIVENESS_MS;
	plan->wait_scale_pct = 100;
	for (size_t i = 0; i < script->cmd_count; i++)
		if (script->cmds[i].kind == SCN_RUN)
			span_ms += script->cmds[i].u.run_ms;
	plan->window_ms = span_ms > EXPLORE_WINDOW_MS ? span_ms : EXPLORE_WINDOW_MS;
	explore_collect_images(script, plan);

	rng_init(&r, seed, RNG_FAULTS, 0);
	fault_target = (size_t)rng_range(&r, 1, 6);
	if (swarm) {
		struct rng sr;
		rng_init(&sr, seed, RNG_FAULTS, 1);
		explore_draw_swarm(&sr, script, cluster, plan);
		/* swarm testing: some kinds off, a drawn rate and length */
		do {
			drawn_kinds = kinds & (uint32_t)rng_next(&sr);
		} while (!drawn_kinds);
		fault_target = (size_t)rng_range(&sr, 0, 12);
		max_dur_ms = rng_range(&sr, 5, 120) * 1000;
		plan->liveness_ms = EXPLORE_LIVENESS_MS * plan->wait_scale_pct / 100;
	}
	explore_budget(script, plan);
	explore_nodes_init(script, plan, &nodes);

	for (size_t n = 0; n < fault_target && plan->fault_count < EXPLORE_FAULTS_MAX;
	     n++) {
		for (int t = 0; t < EXPLORE_TRIES; t++) {
			struct explore_fault f;
			enum explore_kind kind;
			uint32_t pick = (uint32_t)rng_below(
				&r, (uint64_t)explore_popcount(drawn_kinds));
			for (kind = 0; kind < EXPLORE_KIND_COUNT; kind++)
				if ((drawn_kinds & (1u << kind)) && pick-- == 0)
					break;
			/* the scenario rotates the CA itself: the CA is its
			 * own to fault (see explore_rotates) */
			if (rotates && (kind == EXPLORE_CA || kind == EXPLORE_CERT))
				continue;
			if (certs && kind == EXPLORE_CA)
				continue; /* see explore_certs */
			if (sized_net && kind == EXPLORE_CERT)
				continue; /* see explore_sized_network */
			if (!explore_draw(&r, plan, &nodes, kind, max_dur_ms, &f))
				continue;
			if (!explore_fits(plan, &f) || explore_ca_clash(plan, &f) ||
			    explore_spans_rotation_wait(script, &f))
				continue;
			plan->faults[plan->fault_count++] = f;
			break;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- text */

struct explore_buf {
	char *p;
	size_t len, cap;
	bool oom;
	uint32_t lines; /* complete lines written */
	/* where each line written comes from (explore_lines_apply): src[k]
	 * for line k+1; src_now for the lines being written */
	uint32_t *src;
	size_t src_cap;
	uint32_t src_now;
};

/* Records that line b->lines (just completed) comes from b->src_now. */
static void explore_put_src(struct explore_buf *b)
{
	if (b->lines > b->src_cap) {
		size_t cap = b->src_cap ? b->src_cap * 2 : 256;
		uint32_t *src;
		while (cap < b->lines)
			cap *= 2;
		src = realloc(b->src, cap * sizeof *src);
		if (!src) {
			b->oom = true;
			return;
		}
		b->src = src;
		b->src_cap = cap;
	}
	b->src[b->lines - 1] = b->src_now;
}

__attribute__((format(printf, 2, 3))) static void explore_put(struct explore_buf *b,
							      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
			      fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			for (size_t i = b->len; i < b->len + (size_t)n; i++)
				if (b->p[i] == '\n') {
					b->lines++;
					explore_put_src(b);
				}
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* One point of the schedule: a fault's start or end. */
struct explore_event {
	uint64_t at_ms;
	size_t fault;
	bool end;
};

static int explore_event_cmp(const void *x, const void *y)
{
	const struct explore_event *a = x, *b = y;
	if (a->at_ms != b->at_ms)
		return a->at_ms < b->at_ms ? -1 : 1;
	if (a->end != b->end)
		return a->end ? -1 : 1; /* ends first: a node back before the next */
	return a->fault < b->fault ? -1 : a->fault > b->fault;
}

/* Where the text puts what explore_judge needs: the line of each fault's
 * start command, and the first line of the liveness phase; and where each
 * line comes from (src, line_count entries, owned: free it): the user's
 * file line of the scenario command it writes, EXPLORE_LINE_FAULT + i for
 * a line of fault i, 0 for the others explore adds (waits for a leader,
 * the liveness phase). */
struct explore_map {
	uint32_t start_line[EXPLORE_FAULTS_MAX];
	uint32_t liveness_line;
	uint32_t *src;
	uint32_t line_count;
};

static void explore_put_event(struct explore_buf *b, const struct explore_plan *plan,
			      const struct explore_event *e, struct explore_map *map)
{
	const struct explore_fault *f = &plan->faults[e->fault];
	uint32_t was = b->src_now;
	if (!e->end)
		map->start_line[e->fault] = b->lines + 1;
	b->src_now = EXPLORE_LINE_FAULT + (uint32_t)e->fault;
	explore_put(b, "%s  # fault %zu (%s) %s at +%" PRIu64 ".%03" PRIu64 "s\n",
		    e->end ? f->end : f->start, e->fault + 1, explore_kind_names[f->kind],
		    e->end ? "ends" : "starts", e->at_ms / 1000, e->at_ms % 1000);
	b->src_now = was;
}

/* Whether the run may hold runtime or disk faults at the liveness phase:
 * the plan draws some, or the scenario sets some itself. */
static bool explore_has_fault_cmds(const struct scn_script *script,
				   const struct explore_plan *plan)
{
	for (size_t i = 0; i < plan->fault_count; i++)
		if (plan->faults[i].enabled && (plan->faults[i].kind == EXPLORE_RUNTIME ||
						plan->faults[i].kind == EXPLORE_DISK))
			return true;
	for (size_t i = 0; i < script->cmd_count; i++)
		if (script->cmds[i].kind == SCN_RUNTIME ||
		    script->cmds[i].kind == SCN_DISK)
			return true;
	return false;
}

/* Whether c needs a leader to name a node: it names `leader`. */
static bool explore_needs_leader(const struct scn_cmd *c)
{
	switch (c->kind) {
	case SCN_NODE_RM:
	case SCN_NODE_DRAIN:
	case SCN_NODE_PAUSE:
	case SCN_NODE_ACTIVATE:
	case SCN_NODE_LABEL:
	case SCN_NODE_PROMOTE:
	case SCN_NODE_DEMOTE:
	case SCN_KILL:
	case SCN_RESTART: return c->u.node.node.kind == SCN_NODE_LEADER;
	case SCN_PARTITION:
	case SCN_ISOLATE:
		for (size_t g = 0; g < c->u.partition.group_count; g++)
			for (size_t k = 0; k < c->u.partition.groups[g].node_count; k++)
				if (c->u.partition.groups[g].nodes[k].kind ==
				    SCN_NODE_LEADER)
					return true;
		return false;
	case SCN_LINK:
		return c->u.link.a.kind == SCN_NODE_LEADER ||
		       c->u.link.b.kind == SCN_NODE_LEADER;
	case SCN_RUNTIME: return c->u.runtime.node.kind == SCN_NODE_LEADER;
	case SCN_DISK: return c->u.disk.node.kind == SCN_NODE_LEADER;
	default: return false;
	}
}

/* Writes a wait of the scenario (`expect COND within D` or `await COND
 * within D`) as `await COND within D'`, D stretched to the drawn timings. */
static void explore_put_wait(struct explore_buf *b, const struct explore_plan *plan,
			     const struct scn_cmd *c)
{
	const char *word = c->kind == SCN_EXPECT ? "expect" : "await";
	const char *cond = c->text + strlen(word), *within = NULL;
	uint64_t ms = c->u.expect.within_ms * plan->wait_scale_pct / 100;

	for (const char *p = strstr(cond, " within "); p; p = strstr(p + 1, " within "))
		within = p;
	if (!within || strncmp(c->text, word, strlen(word)) != 0) {
		explore_put(b, "await%s\n", c->text + 6); /* not reached */
		return;
	}
	explore_put(b, "await%.*s within %" PRIu64 "ms\n", (int)(within - cond), cond,
		    ms);
}

static int explore_text_map(const struct scn_script *script,
			    const struct explore_plan *plan, char **text, size_t *len,
			    struct explore_map *map);

static bool explore_plan_rotates(const struct explore_plan *plan)
{
	for (size_t i = 0; i < plan->fault_count; i++)
		if (plan->faults[i].enabled && plan->faults[i].kind == EXPLORE_CA)
			return true;
	return false;
}

int explore_text(const struct scn_script *script, const struct explore_plan *plan,
		 char **text, size_t *len)
{
	struct explore_map map;
	int rv = explore_text_map(script, plan, text, len, &map);
	free(map.src);
	return rv;
}

int explore_text_lines(const struct scn_script *script, const struct explore_plan *plan,
		       char **text, size_t *len, struct explore_lines *lines)
{
	struct explore_map map;
	int rv = explore_text_map(script, plan, text, len, &map);
	lines->src = map.src;
	lines->count = map.line_count;
	lines->liveness_line = map.liveness_line;
	return rv;
}

void explore_lines_free(struct explore_lines *lines)
{
	free(lines->src);
	lines->src = NULL;
	lines->count = 0;
}

/* Sets res's message; one cut at its size ends in "..." (said, not
 * silent). */
__attribute__((format(printf, 2, 3))) static void explore_set_message(
	struct runner_result *res, const char *fmt, ...)
{
	size_t size = sizeof res->message;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(res->message, size, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= size)
		memcpy(res->message + size - 4, "...", 4);
}

void explore_lines_apply(const struct explore_lines *lines,
			 const struct explore_plan *plan, struct runner_result *res)
{
	char rest[sizeof res->message];
	const char *p = res->message;
	uint32_t line = 0, src;

	if (res->passed || strncmp(p, "line ", 5) != 0)
		return;
	for (p += 5; *p >= '0' && *p <= '9' && line < UINT32_MAX / 10; p++)
		line = line * 10 + (uint32_t)(*p - '0');
	if (*p != ':' || line == 0 || line > lines->count || line != res->fail_line)
		return;
	memcpy(rest, p, strlen(p) + 1);
	src = lines->src[line - 1];
	if (src > 0 && src < EXPLORE_LINE_FAULT) {
		res->fail_line = src;
		explore_set_message(res, "line %" PRIu32 "%s", src, rest);
	} else if (src >= EXPLORE_LINE_FAULT &&
		   src - EXPLORE_LINE_FAULT < plan->fault_count) {
		size_t i = src - EXPLORE_LINE_FAULT;
		explore_set_message(
			res,
			"line %" PRIu32 " of explore's plan (generated fault %zu, %s)%s",
			line, i + 1, explore_kind_names[plan->faults[i].kind], rest);
	} else {
		explore_set_message(
			res, "line %" PRIu32 " of explore's plan (generated: %s)%s", line,
			line >= lines->liveness_line ? "the liveness phase"
						     : "a wait for a leader",
			rest);
	}
}

static int explore_text_map(const struct scn_script *script,
			    const struct explore_plan *plan, char **text, size_t *len,
			    struct explore_map *map)
{
	struct explore_event ev[2 * EXPLORE_FAULTS_MAX] = {{0}};
	struct explore_buf b = {0};
	size_t ev_count = 0, next = 0;
	uint64_t t_ms = 0;
	char kinds[64];

	memset(map, 0, sizeof *map);
	for (size_t i = 0; i < plan->fault_count; i++) {
		const struct explore_fault *f = &plan->faults[i];
		if (!f->enabled)
			continue;
		ev[ev_count++] = (struct explore_event){f->at_ms, i, false};
		if (f->end[0])
			ev[ev_count++] =
				(struct explore_event){f->at_ms + f->dur_ms, i, true};
	}
	qsort(ev, ev_count, sizeof ev[0], explore_event_cmp);

	explore_put(&b,
		    "# explore: %s seed=%" PRIu64 " faults=%s%s: %zu of %zu faults\n"
		    "# The scenario's commands (timed expects as awaits), the\n"
		    "# faults at their offsets in the %" PRIu64
		    "s window, then the liveness phase.\n"
		    "seed %" PRIu64 "\n",
		    script->path ? script->path : "-", plan->seed,
		    explore_kinds_text(plan->kinds, kinds, sizeof kinds),
		    plan->swarm ? " swarm" : "", explore_enabled_count(plan),
		    plan->fault_count, plan->window_ms / 1000, plan->seed);
	if (plan->settings[0])
		explore_put(&b, "%s\n", plan->settings);

	for (size_t i = 0; i < script->cmd_count; i++) {
		const struct scn_cmd *c = &script->cmds[i];
		b.src_now = c->line;
		switch (c->kind) {
		case SCN_EXPECT:
			/* a timed expectation may fail under faults without a bug,
			 * but the story may need its wait (a leader before `kill
			 * leader`): it becomes an await, which waits and never
			 * fails */
			if (c->u.expect.has_within && strncmp(c->text, "expect", 6) == 0)
				explore_put_wait(&b, plan, c);
			continue;
		case SCN_AWAIT: explore_put_wait(&b, plan, c); continue;
		case SCN_SEED: continue;
		case SCN_CLUSTER:
			explore_put(&b, "%s", c->text);
			if (plan->managers_drawn)
				explore_put(&b, " managers=%" PRIu32, plan->managers);
			if (plan->workers_drawn)
				explore_put(&b, " workers=%" PRIu32, plan->workers);
			explore_put(&b, "\n");
			continue;
		case SCN_RUN: {
			uint64_t until = t_ms + c->u.run_ms;
			for (; next < ev_count && ev[next].at_ms < until; next++) {
				if (ev[next].at_ms > t_ms)
					explore_put(&b, "run %" PRIu64 "ms\n",
						    ev[next].at_ms - t_ms);
				t_ms = ev[next].at_ms > t_ms ? ev[next].at_ms : t_ms;
				explore_put_event(&b, plan, &ev[next], map);
			}
			if (until > t_ms)
				explore_put(&b, "run %" PRIu64 "ms\n", until - t_ms);
			t_ms = until;
			continue;
		}
		default:
			/* a command that names `leader` waits for one, as a
			 * client would (a generated fault may have just cost
			 * the cluster its leader) */
			if (explore_needs_leader(c)) {
				b.src_now = 0;
				explore_put(&b, "await leader within %" PRIu64 "s\n",
					    (uint64_t)60 * plan->wait_scale_pct / 100);
				b.src_now = c->line;
			}
			explore_put(&b, "%s\n", c->text);
			continue;
		}
	}
	b.src_now = 0;
	for (; next < ev_count; next++) {
		if (ev[next].at_ms > t_ms)
			explore_put(&b, "run %" PRIu64 "ms\n", ev[next].at_ms - t_ms);
		t_ms = ev[next].at_ms > t_ms ? ev[next].at_ms : t_ms;
		explore_put_event(&b, plan, &ev[next], map);
	}
	if (plan->window_ms > t_ms)
		explore_put(&b, "run %" PRIu64 "ms\n", plan->window_ms - t_ms);

	explore_put(&b, "# liveness: every fault healed, every node back, converged\n");
	map->liveness_line = b.lines + 1;
	explore_put(&b, "heal\n");
	if (explore_has_fault_cmds(script, plan)) {
		/* runtime and disk faults end before the nodes start again (a
		 * node on a faulty disk would die again) */
		for (uint32_t i = 1; i <= script->managers_total || i <= plan->managers;
		     i++)
			if (!explore_node_removed(script, SCN_NODE_MANAGER, i))
				explore_put(&b,
					    "runtime m%" PRIu32 " ok\ndisk m%" PRIu32
					    " ok\n",
					    i, i);
		for (uint32_t i = 1; i <= script->workers_total || i <= plan->workers;
		     i++)
			if (!explore_node_removed(script, SCN_NODE_WORKER, i))
				explore_put(&b,
					    "runtime w%" PRIu32 " ok\ndisk w%" PRIu32
					    " ok\n",
					    i, i);
	}
	for (uint32_t i = 1; i <= script->managers_total || i <= plan->managers; i++)
		if (!explore_node_removed(script, SCN_NODE_MANAGER, i))
			explore_put(&b, "restart m%" PRIu32 "\n", i);
	for (uint32_t i = 1; i <= script->workers_total || i <= plan->workers; i++)
		if (!explore_node_removed(script, SCN_NODE_WORKER, i))
			explore_put(&b, "restart w%" PRIu32 "\n", i);
	for (size_t i = 0; i < plan->fault_count; i++) {
		const struct explore_fault *f = &plan->faults[i];
		bool first = true;
		if (!f->enabled || f->image < 0)
			continue;
		for (size_t k = 0; k < i; k++)
			if (plan->faults[k].enabled && plan->faults[k].image == f->image)
				first = false;
		if (first)
			explore_put(&b, "%s\n", plan->image_reset[f->image]);
	}
	/* a rotation, the scenario's or a generated one, finishes once
	 * every node is back (it waits for every node, and no other) */
	if (explore_rotates(script) || explore_plan_rotates(plan))
		explore_put(&b, "expect ca rotated within %" PRIu64 "s\n",
			    plan->liveness_ms / 1000);
	explore_put(&b,
		    "expect converged within %" PRIu64 "s\n"
		    "expect managers in sync within 60s\n",
		    plan->liveness_ms / 1000);
	if (b.oom) {
		free(b.p);
		free(b.src);
		return CS_ENOMEM;
	}
	*text = b.p;
	*len = b.len;
	map->src = b.src;
	map->line_count = b.lines;
	return 0;
}

/* ---------------------------------------------------------------- running */

static const char *const explore_class_names[EXPLORE_CLASS_COUNT] = {
	"passed", "invariant", "liveness", "claim", "claim-unfaulted", "story",
};

const char *explore_class_name(enum explore_class cls)
{
	return cls < EXPLORE_CLASS_COUNT ? explore_class_names[cls] : "?";
}

int explore_class_parse(const char *name, enum explore_class *cls)
{
	for (int k = 0; k < EXPLORE_CLASS_COUNT; k++)
		if (strcmp(name, explore_class_names[k]) == 0) {
			*cls = (enum explore_class)k;
			return 0;
		}
	return -1;
}

bool explore_class_fails(enum explore_class cls, bool strict_claims)
{
	switch (cls) {
	case EXPLORE_PASSED: return false;
	case EXPLORE_CLAIM: return strict_claims;
	case EXPLORE_STORY: return false;
	default: return true;
	}
}

/* What the observer of a judged run keeps: when each generated fault
 * started, in virtual time (its command's first observation). */
struct explore_watch {
	const struct explore_map *map;
	const struct explore_plan *plan;
	us_t started_us[EXPLORE_FAULTS_MAX];
	bool started[EXPLORE_FAULTS_MAX];
};

static void explore_observe(void *ctx, const struct runner_view *v)
{
	struct explore_watch *w = ctx;
	if (!v->cmd)
		return;
	for (size_t i = 0; i < w->plan->fault_count; i++)
		if (!w->started[i] && w->map->start_line[i] &&
		    w->map->start_line[i] == v->cmd->line) {
			w->started[i] = true;
			w->started_us[i] = world_now_us(v->w);
		}
}

/* Judges a finished run: an invariant's words (the runner's and the
 * simulated cluster's checks all begin "invariant N"), a broken `always`
 * of the scenario's (the generated text has no `always` of its own), or
 * anything else: a wait of the liveness phase, or a command that could
 * not be done (no leader to ask, no answer). */
static void explore_judge(const struct scn_script *gen, const struct runner_result *res,
			  const struct explore_watch *w, struct explore_verdict *v)
{
	const struct scn_cmd *failed = NULL;
	size_t last = SIZE_MAX;

	memset(v, 0, sizeof *v);
	if (res->passed) {
		v->cls = EXPLORE_PASSED;
		return;
	}
	if (strstr(res->message, ": invariant ")) {
		v->cls = EXPLORE_INVARIANT;
		return;
	}
	for (size_t i = 0; i < gen->cmd_count; i++)
		if (gen->cmds[i].line == res->fail_line)
			failed = &gen->cmds[i];
	if (!failed || failed->kind != SCN_ALWAYS) {
		v->cls = EXPLORE_LIVENESS;
		return;
	}
	for (size_t i = 0; i < w->plan->fault_count; i++)
		if (w->started[i] && w->started_us[i] <= res->sim_us &&
		    (last == SIZE_MAX || w->started_us[i] >= w->started_us[last]))
			last = i;
	if (last == SIZE_MAX) {
		v->cls = EXPLORE_CLAIM_UNFAULTED;
		return;
	}
	v->cls = EXPLORE_CLAIM;
	{
		const char *cmd = w->plan->faults[last].start;
		size_t n = strcspn(cmd, "\n");
		us_t at = w->started_us[last];
		snprintf(v->fault, sizeof v->fault, "%.*s at %" PRIu64 ".%" PRIu64 "s",
			 (int)n, cmd, (uint64_t)(at / 1000000),
			 (uint64_t)(at % 1000000 / 100000));
	}
}

/* The words of a failure, less its "line N: " (the faults' lines move the
 * liveness phase's). */
static const char *explore_words(const char *message)
{
	const char *p = message;
	if (strncmp(p, "line ", 5) != 0)
		return message;
	p += 5;
	while (*p >= '0' && *p <= '9')
		p++;
	return strncmp(p, ": ", 2) == 0 ? p + 2 : message;
}

/* Whether p starts a count: a digit not following a letter, digit, '_'
 * or '.' (so not the 3 of `m3` or `web.3`). */
static bool explore_count_at(const char *start, const char *p)
{
	char prev = p > start ? p[-1] : ' ';
	return *p >= '0' && *p <= '9' &&
	       !((prev >= 'a' && prev <= 'z') || (prev >= 'A' && prev <= 'Z') ||
		 (prev >= '0' && prev <= '9') || prev == '_' || prev == '.');
}

/* Whether two failures say the same up to their counts: the words of each
 * (explore_words), with every count (a number, its decimals included)
 * taken as equal to any other. What a story that never converges leaves
 * undone is counted, and the faults move those counts while the story
 * stays (update-pause.scn: a paused update's broken slot, and each slot a
 * fault stops, comes back on the broken image, as SwarmKit's restart
 * supervisor does: "web: 4 wanted, 3 containers running" without faults,
 * 2 or 0 with them); names (`m3`, `web.3`) and every other word must
 * agree. */
static bool explore_same_words(const char *a, const char *b)
{
	const char *wa = explore_words(a), *wb = explore_words(b);
	const char *pa = wa, *pb = wb;

	while (*pa && *pb) {
		if (explore_count_at(wa, pa) && explore_count_at(wb, pb)) {
			while ((*pa >= '0' && *pa <= '9') ||
			       (*pa == '.' && pa[1] >= '0' && pa[1] <= '9'))
				pa++;
			while ((*pb >= '0' && *pb <= '9') ||
			       (*pb == '.' && pb[1] >= '0' && pb[1] <= '9'))
				pb++;
			continue;
		}
		if (*pa != *pb)
			return false;
		pa++;
		pb++;
	}
	return *pa == *pb;
}

static int explore_run_lines(const struct scn_script *script,
			     const struct explore_plan *plan, struct runner_result *res,
			     struct explore_verdict *verdict, bool user_lines,
			     char **text_out, char *err, size_t err_size);

/* Runs the plan with every generated fault off into *bres (same seed
 * and shape); with own_timings, also with the scenario's own timings and
 * waits instead of those --swarm drew. Returns 0 or the run's error. */
static int explore_run_unfaulted(const struct scn_script *script,
				 const struct explore_plan *plan, bool own_timings,
				 struct runner_result *bres)
{
	struct explore_plan *base = malloc(sizeof *base);
	char err[256];
	int rv;

	if (!base)
		return CS_ENOMEM;
	*base = *plan;
	if (own_timings) {
		base->settings[0] = '\0';
		base->wait_scale_pct = 100;
		base->liveness_ms = EXPLORE_LIVENESS_MS;
	}
	for (size_t i = 0; i < base->fault_count; i++)
		base->faults[i].enabled = false;
	rv = explore_run_lines(script, base, bres, NULL, false, NULL, err, sizeof err);
	free(base);
	return rv;
}

/* A liveness verdict on a failure of the liveness phase (from its line on)
 * becomes EXPLORE_STORY when the same plan with every fault off fails with
 * the same words up to their counts (explore_same_words): what the
 * liveness phase asks, the scenario's own story
 * does not reach (security-ca-rotation-node-down.scn removes w3, leaving
 * two workers to web's three replicas at max-per-node=1: `converged` never
 * holds, faults or not); a plan with no fault is that run already. Any
 * other outcome of that run leaves the verdict alone. Returns 0 or the
 * run's error. */
static int explore_judge_story(const struct scn_script *script,
			       const struct explore_plan *plan,
			       const struct runner_result *res, uint32_t liveness_line,
			       struct explore_verdict *v)
{
	struct runner_result bres;
	int rv;

	if (v->cls != EXPLORE_LIVENESS || res->fail_line < liveness_line)
		return 0;
	if (!explore_enabled_count(plan)) {
		v->cls = EXPLORE_STORY; /* the run was that run */
		return 0;
	}
	rv = explore_run_unfaulted(script, plan, false, &bres);
	if (rv)
		return rv;
	if (!bres.passed && explore_same_words(bres.message, res->message))
		v->cls = EXPLORE_STORY;
	runner_result_free(&bres);
	return 0;
}

/* Whether two failures are the same `always` broken (at any time, in any
 * way): their words up to the first ": " (the command's own text). */
static bool explore_same_claim(const char *a, const char *b)
{
	const char *wa = explore_words(a), *wb = explore_words(b);
	const char *ea = strstr(wa, ": "), *eb = strstr(wb, ": ");
	return ea && eb && ea - wa == eb - wb && strncmp(wa, wb, (size_t)(ea - wa)) == 0;
}

/* A claim broken before any generated fault, in a plan that drew the
 * timings the scenario leaves open (--swarm), becomes a claim after those
 * timings (EXPLORE_CLAIM, the drawn `set` line named) when the scenario,
 * run with its own timings and no fault, keeps that claim: the drawn
 * timings made it false, as a fault would (security-ca-rotation.scn seed
 * 9005: heartbeat=1s makes its own 3 s `kill m3 process` a node down, whose
 * task moves, and `always running web == 6` breaks; SwarmKit's dispatcher
 * would declare that node down as well). Otherwise the verdict stays.
 * Returns 0 or that run's error. */
static int explore_judge_timings(const struct scn_script *script,
				 const struct explore_plan *plan,
				 const struct runner_result *res,
				 struct explore_verdict *v)
{
	struct runner_result bres;
	int rv;

	if (v->cls != EXPLORE_CLAIM_UNFAULTED || !plan->settings[0])
		return 0;
	rv = explore_run_unfaulted(script, plan, true, &bres);
	if (rv)
		return rv;
	if (bres.passed || !explore_same_claim(res->message, bres.message)) {
		v->cls = EXPLORE_CLAIM;
		snprintf(v->fault, sizeof v->fault, "%s (drawn timings)", plan->settings);
	}
	runner_result_free(&bres);
	return 0;
}

/* explore_run_judged, and with user_lines false a failure left on the
 * plan's lines (what the judges compare). */
static int explore_run_lines(const struct scn_script *script,
			     const struct explore_plan *plan, struct runner_result *res,
			     struct explore_verdict *verdict, bool user_lines,
			     char **text_out, char *err, size_t err_size)
{
	struct runner_opts opts = {0};
	struct explore_map map;
	struct explore_watch watch;
	struct scn_script gen;
	char *text;
	size_t len;
	int rv;

	rv = explore_text_map(script, plan, &text, &len, &map);
	if (rv) {
		snprintf(err, err_size, "out of memory");
		return rv;
	}
	rv = scn_parse(script->path ? script->path : "-", text, len, &gen, err, err_size);
	if (rv) {
		free(map.src);
		free(text);
		return rv;
	}
	memset(&watch, 0, sizeof watch);
	watch.map = &map;
	watch.plan = plan;
	if (verdict) {
		/* the observer reads and changes nothing: same run, same hash */
		opts.observe = explore_observe;
		opts.observe_ctx = &watch;
	}
	rv = runner_run(&gen, plan->seed, &opts, res);
	if (rv)
		snprintf(err, err_size, "%s", cs_strerror(rv));
	else if (verdict) {
		explore_judge(&gen, res, &watch, verdict);
		rv = explore_judge_story(script, plan, res, map.liveness_line, verdict);
		if (!rv)
			rv = explore_judge_timings(script, plan, res, verdict);
		if (rv) {
			snprintf(err, err_size, "%s", cs_strerror(rv));
			runner_result_free(res);
		}
	}
	if (!rv && user_lines) {
		/* judged on the plan's lines; reported on the user's */
		struct explore_lines lines = {map.src, map.line_count, map.liveness_line};
		explore_lines_apply(&lines, plan, res);
	}
	free(map.src);
	scn_free(&gen);
	if (text_out && !rv)
		*text_out = text;
	else
		free(text);
	return rv;
}

int explore_run_judged(const struct scn_script *script, const struct explore_plan *plan,
		       struct runner_result *res, struct explore_verdict *verdict,
		       char **text_out, char *err, size_t err_size)
{
	return explore_run_lines(script, plan, res, verdict, true, text_out, err,
				 err_size);
}

int explore_run(const struct scn_script *script, const struct explore_plan *plan,
		struct runner_result *res, char **text_out, char *err, size_t err_size)
{
	return explore_run_judged(script, plan, res, NULL, text_out, err, err_size);
}

/* ---------------------------------------------------------------- shrinking */

/* Runs plan; returns 1 when it fails, 0 when it passes, <0 on error. */
static int explore_trial(const struct scn_script *script, const struct explore_plan *plan,
			 struct runner_result *res, explore_progress_fn progress,
			 void *ctx, const char *what, char *err, size_t err_size)
{
	int rv = explore_run(script, plan, res, NULL, err, err_size);
	if (rv)
		return rv;
	if (progress)
		progress(ctx, what, res);
	return !res->passed;
}

int explore_shrink(const struct scn_script *script, struct explore_plan *plan,
		   struct runner_result *res, explore_progress_fn progress, void *ctx,
		   char *err, size_t err_size)
{
	struct runner_result trial;
	char what[96];
	int rv;

	rv = explore_trial(script, plan, res, progress, ctx, "the drawn schedule", err,
			   err_size);
	if (rv < 0)
		return rv;
	if (rv == 0)
		return 1;

	/* drop faults one at a time, last first (later faults depend on
	 * earlier ones less often than the other way round) */
	for (size_t i = plan->fault_count; i-- > 0;) {
		if (!plan->faults[i].enabled)
			continue;
		plan->faults[i].enabled = false;
		snprintf(what, sizeof what, "without fault %zu", i + 1);
		rv = explore_trial(script, plan, &trial, progress, ctx, what, err,
				   err_size);
		if (rv < 0)
			return rv;
		if (rv == 1)
			*res = trial;
		else
			plan->faults[i].enabled = true;
	}
	/* then halve what remains while it still fails */
	for (size_t i = 0; i < plan->fault_count; i++) {
		struct explore_fault *f = &plan->faults[i];
		if (!f->enabled || !f->end[0])
			continue;
		while (f->dur_ms / 2 >= EXPLORE_FAULT_MIN_MS) {
			uint64_t was = f->dur_ms;
			f->dur_ms /= 2;
			snprintf(what, sizeof what, "fault %zu for %" PRIu64 "ms", i + 1,
				 f->dur_ms);
			rv = explore_trial(script, plan, &trial, progress, ctx, what, err,
					   err_size);
			if (rv < 0)
				return rv;
			if (rv == 0) {
				f->dur_ms = was;
				break;
			}
			*res = trial;
		}
	}
	return 0;
}
