/* scenario: the parser of the scenario language. See scenario.h; the
 * language itself is ../shared/SCENARIOS.md, a contract.
 *
 * A line is cut at '#', split at blanks into tokens (each keeps its 1-based
 * byte column) and handed to the parser of its command word. Conditions are
 * split again so that operators stand alone (`running web==8` reads as
 * `running web == 8`); partitions are split again at '|' and ','. The first
 * error ends the parse with one message that points at the offending token:
 * "expected WHAT after 'CONTEXT', got 'TOKEN'" for grammar, "bad KIND 'TOKEN'
 * (expected ...)" for values, and the limit's name for anything over one. */
#include "sim/scenario.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/errors.h"
#include "core/scheduler.h"

/* ---------------------------------------------------------------- tokens */

/* A slice of the current line; never NUL-terminated. */
struct scn_tok {
	const char *s;
	uint32_t len;
	uint32_t col; /* 1-based byte column; a tab counts as one */
};

/* For "%.*s": the length and bytes of a token. */
#define SCN_TOK_ARG(t) (int)(t).len, (t).s

/* A token is at least one byte, so a line holds at most this many. */
#define SCN_TOKS_MAX LIMIT_SCN_LINE_BYTES_MAX

static bool scn_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool scn_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool scn_is_alnum(char c)
{
	return scn_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char scn_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool scn_tok_is(struct scn_tok t, const char *word)
{
	size_t n = strlen(word);
	return t.len == n && memcmp(t.s, word, n) == 0;
}

static bool scn_tok_is_nocase(struct scn_tok t, const char *word)
{
	size_t n = strlen(word);

	if (t.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (scn_lower(t.s[i]) != word[i])
			return false;
	return true;
}

static bool scn_tok_has_prefix(struct scn_tok t, const char *prefix)
{
	size_t n = strlen(prefix);
	return t.len >= n && memcmp(t.s, prefix, n) == 0;
}

/* The part of t from byte `from` on, with its own column. */
static struct scn_tok scn_tok_tail(struct scn_tok t, uint32_t from)
{
	assert(from <= t.len);
	return (struct scn_tok){t.s + from, t.len - from, t.col + from};
}

static struct scn_tok scn_tok_head(struct scn_tok t, uint32_t len)
{
	assert(len <= t.len);
	return (struct scn_tok){t.s, len, t.col};
}

static bool scn_tok_all_digits(struct scn_tok t)
{
	if (t.len == 0)
		return false;
	for (uint32_t i = 0; i < t.len; i++)
		if (!scn_is_digit(t.s[i]))
			return false;
	return true;
}

/* Returns a NUL-terminated copy of t (the caller frees it), or NULL. */
static char *scn_tok_dup(struct scn_tok t)
{
	return strndup(t.s, t.len);
}

/* ---------------------------------------------------------------- parser */

struct scn_parser {
	const char *path;
	char *err;
	size_t err_size;
	struct scn_script *script;
	size_t cmd_cap;
	/* the current line: its command part (no comment, no trailing blanks) */
	const char *line;
	uint32_t line_len;
	uint32_t line_no;
	struct scn_tok *toks; /* SCN_TOKS_MAX of them */
	uint32_t tok_count;
	/* what the lines so far made true */
	uint32_t cluster_line; /* 0 until `cluster` */
	uint32_t acted_line;   /* the first command after `cluster` but seed
				* and set (one that runs the cluster): 0 until then */
	uint32_t seed_line;    /* 0 until `seed` */
	uint32_t managers;     /* m1..m<managers> exist */
	uint32_t workers;      /* w1..w<workers> exist */
	uint32_t strangers;    /* x1..x<strangers> exist */
};

/* ---------------------------------------------------------------- lexer */

enum scn_lex_mode {
	SCN_LEX_WORDS,	/* tokens are separated by blanks */
	SCN_LEX_COND,	/* and == != < <= > >= stand alone */
	SCN_LEX_GROUPS, /* and '|' stands alone; ',' separates like a blank */
	SCN_LEX_LINK,	/* and "->" stands alone (link m1->m2, as partition m1|m2) */
};

/* Returns the length of the comparison operator at s (n bytes left), or 0.
 * A lone '=' is no operator: `state=running` stays one token. */
static uint32_t scn_op_len(const char *s, uint32_t n)
{
	assert(n > 0);
	if (n >= 2 && s[1] == '=' &&
	    (s[0] == '=' || s[0] == '!' || s[0] == '<' || s[0] == '>'))
		return 2;
	if (s[0] == '<' || s[0] == '>')
		return 1;
	return 0;
}

/* Returns how many bytes at s form a token of their own in mode (an
 * operator, or '|'), or 0 when s is part of a word. */
static uint32_t scn_punct_len(enum scn_lex_mode mode, const char *s, uint32_t n)
{
	if (mode == SCN_LEX_COND)
		return scn_op_len(s, n);
	if (mode == SCN_LEX_GROUPS && s[0] == '|')
		return 1;
	if (mode == SCN_LEX_LINK && n >= 2 && s[0] == '-' && s[1] == '>')
		return 2;
	return 0;
}

static bool scn_is_sep(enum scn_lex_mode mode, char c)
{
	return scn_is_blank(c) || (mode == SCN_LEX_GROUPS && c == ',');
}

/* Splits the current line into p->toks. Cannot fail: a token is at least
 * one byte and the line at most SCN_TOKS_MAX. */
static void scn_lex(struct scn_parser *p, enum scn_lex_mode mode)
{
	uint32_t j = 0;

	p->tok_count = 0;
	while (j < p->line_len) {
		const char *s = p->line + j;
		uint32_t left = p->line_len - j;
		uint32_t len;

		if (scn_is_sep(mode, *s)) {
			j++;
			continue;
		}
		len = scn_punct_len(mode, s, left);
		if (len == 0)
			while (len < left && !scn_is_sep(mode, s[len]) &&
			       scn_punct_len(mode, s + len, left - len) == 0)
				len++;
		assert(len > 0);
		assert(p->tok_count < SCN_TOKS_MAX);
		p->toks[p->tok_count++] = (struct scn_tok){s, len, j + 1};
		j += len;
	}
	assert(p->tok_count <= p->line_len);
}

/* ---------------------------------------------------------------- errors */

/* Writes "PATH:LINE:COL: message" into p->err. Returns CS_EINVAL. */
static int scn_fail(struct scn_parser *p, uint32_t col, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int scn_fail(struct scn_parser *p, uint32_t col, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->err || p->err_size == 0)
		return CS_EINVAL;
	n = snprintf(p->err, p->err_size, "%s:%" PRIu32 ":%" PRIu32 ": ", p->path,
		     p->line_no, col);
	if (n >= 0 && (size_t)n < p->err_size) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return CS_EINVAL;
}

/* Says that memory ran out at this line. Returns CS_ENOMEM. */
static int scn_nomem(struct scn_parser *p)
{
	scn_fail(p, 1, "out of memory");
	return CS_ENOMEM;
}

/* The column just past the last token of the line. */
static uint32_t scn_eol_col(const struct scn_parser *p)
{
	const struct scn_tok *last;

	assert(p->tok_count > 0);
	last = &p->toks[p->tok_count - 1];
	return last->col + last->len;
}

/* The text of tokens [from, to) as written, for "after '...'". */
static struct scn_tok scn_span(const struct scn_parser *p, uint32_t from, uint32_t to)
{
	const struct scn_tok *a = &p->toks[from], *b = &p->toks[to - 1];

	assert(from < to);
	assert(to <= p->tok_count);
	return (struct scn_tok){a->s, (uint32_t)(b->s + b->len - a->s), a->col};
}

/* Fails with "expected WHAT after 'CONTEXT', got 'TOKEN'" (or "got end of
 * line"): CONTEXT is tokens [from, i), TOKEN is token i. Returns CS_EINVAL. */
static int scn_expected(struct scn_parser *p, uint32_t from, uint32_t i, const char *what)
{
	struct scn_tok ctx = scn_span(p, from, i);

	if (i >= p->tok_count)
		return scn_fail(p, scn_eol_col(p),
				"expected %s after '%.*s', got end of line", what,
				SCN_TOK_ARG(ctx));
	return scn_fail(p, p->toks[i].col, "expected %s after '%.*s', got '%.*s'", what,
			SCN_TOK_ARG(ctx), SCN_TOK_ARG(p->toks[i]));
}

/* Returns 0 when token i is past the end of the line (the command is
 * complete), else fails naming the first extra token. */
static int scn_end(struct scn_parser *p, uint32_t i)
{
	struct scn_tok ctx;

	if (i >= p->tok_count)
		return 0;
	ctx = scn_span(p, 0, i);
	return scn_fail(p, p->toks[i].col,
			"unexpected '%.*s' after complete command '%.*s'",
			SCN_TOK_ARG(p->toks[i]), SCN_TOK_ARG(ctx));
}

/* Writes "a, b or c" (last_sep " or ") or "a, b, c" (last_sep ", "). */
static void scn_join(const char *const *names, size_t count, const char *last_sep,
		     char *buf, size_t size)
{
	size_t used = 0;

	assert(size > 0);
	buf[0] = '\0';
	for (size_t i = 0; i < count && used < size; i++) {
		const char *sep = i == 0 ? "" : i + 1 == count ? last_sep : ", ";
		int n = snprintf(buf + used, size - used, "%s%s", sep, names[i]);
		if (n < 0)
			return;
		used += (size_t)n;
	}
}

/* ---------------------------------------------------------------- names */

static const char *const scn_cmd_names[] = {
	[SCN_CLUSTER] = "cluster",
	[SCN_SEED] = "seed",
	[SCN_SET] = "set",
	[SCN_RUN] = "run",
	[SCN_SERVICE_CREATE] = "service create",
	[SCN_SERVICE_UPDATE] = "service update",
	[SCN_SERVICE_RM] = "service rm",
	[SCN_NODE_ADD] = "node add",
	[SCN_NODE_RM] = "node rm",
	[SCN_NODE_DRAIN] = "node drain",
	[SCN_NODE_PAUSE] = "node pause",
	[SCN_NODE_ACTIVATE] = "node activate",
	[SCN_NODE_LABEL] = "node label",
	[SCN_NODE_PROMOTE] = "node promote",
	[SCN_NODE_DEMOTE] = "node demote",
	[SCN_KILL] = "kill",
	[SCN_RESTART] = "restart",
	[SCN_PARTITION] = "partition",
	[SCN_ISOLATE] = "isolate",
	[SCN_LINK] = "link",
	[SCN_HEAL] = "heal",
	[SCN_IMAGE] = "image",
	[SCN_EXPECT] = "expect",
	[SCN_ALWAYS] = "always",
	[SCN_AWAIT] = "await",
	[SCN_RUNTIME] = "runtime",
	[SCN_DISK] = "disk",
	[SCN_CERT] = "cert",
	[SCN_FORGE] = "forge",
	[SCN_CA_ROTATE] = "ca rotate",
	[SCN_NETWORK_CREATE] = "network create",
	[SCN_NETWORK_RM] = "network rm",
	[SCN_BACKUP] = "backup",
	[SCN_LOGS] = "logs",
	[SCN_SECRET_CREATE] = "secret create",
	[SCN_SECRET_RM] = "secret rm",
	[SCN_NETWORK_KEYS_ROTATE] = "network keys rotate",
};
_Static_assert(sizeof scn_cmd_names / sizeof scn_cmd_names[0] ==
		       SCN_NETWORK_KEYS_ROTATE + 1,
	       "a name for every command");

static const char *const scn_state_names[] = {
	[SCN_TS_NEW] = "new",
	[SCN_TS_PENDING] = "pending",
	[SCN_TS_ASSIGNED] = "assigned",
	[SCN_TS_ACCEPTED] = "accepted",
	[SCN_TS_PREPARING] = "preparing",
	[SCN_TS_READY] = "ready",
	[SCN_TS_STARTING] = "starting",
	[SCN_TS_RUNNING] = "running",
	[SCN_TS_COMPLETE] = "complete",
	[SCN_TS_SHUTDOWN] = "shutdown",
	[SCN_TS_FAILED] = "failed",
	[SCN_TS_REJECTED] = "rejected",
	[SCN_TS_REMOVE] = "remove",
	[SCN_TS_ORPHANED] = "orphaned",
};
_Static_assert(sizeof scn_state_names / sizeof scn_state_names[0] == SCN_TS_ORPHANED + 1,
	       "a name for every task state");

static const char *const scn_op_texts[] = {
	[SCN_OP_EQ] = "==", [SCN_OP_NE] = "!=", [SCN_OP_LT] = "<",
	[SCN_OP_LE] = "<=", [SCN_OP_GT] = ">",	[SCN_OP_GE] = ">=",
};
_Static_assert(sizeof scn_op_texts / sizeof scn_op_texts[0] == SCN_OP_GE + 1,
	       "a text for every operator");

/* The words of each choice key, indexed by their enum. */
static const char *const scn_mode_names[] = {
	[SCN_MODE_REPLICATED] = "replicated",
	[SCN_MODE_GLOBAL] = "global",
	[SCN_MODE_REPLICATED_JOB] = "replicated-job",
	[SCN_MODE_GLOBAL_JOB] = "global-job",
};
static const char *const scn_restart_names[] = {
	[SCN_RESTART_ANY] = "any",
	[SCN_RESTART_ON_FAILURE] = "on-failure",
	[SCN_RESTART_NONE] = "none",
};
static const char *const scn_fa_names[] = {
	[SCN_FA_PAUSE] = "pause",
	[SCN_FA_CONTINUE] = "continue",
	[SCN_FA_ROLLBACK] = "rollback",
};
static const char *const scn_order_names[] = {
	[SCN_ORDER_STOP_FIRST] = "stop-first",
	[SCN_ORDER_START_FIRST] = "start-first",
};

#define SCN_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define SCN_COMMANDS_TEXT                                                                   \
	"cluster, seed, set, run, service, node, kill, restart, partition, isolate, link, " \
	"heal, image, runtime, disk, cert, forge, expect, always, await, network, refuse"
#define SCN_CONDS_TEXT                                                            \
	"leader, no leader, running, store tasks, nodes ready, node, converged, " \
	"managers in sync, refused, term, service, ca rotated, reach or spread"
#define SCN_OPS_TEXT "OP (one of == != < <= > >=)"

/* Bytes a name may hold besides letters and digits (it starts with one). */
#define SCN_NAME_EXTRA	"_.-"
#define SCN_IMAGE_EXTRA "_.-:/@"

/* Returns whether t is a name: a letter or digit, then letters, digits and
 * bytes of extra. Length is checked apart (scn_name_len_ok). */
static bool scn_name_ok(struct scn_tok t, const char *extra)
{
	if (t.len == 0 || !scn_is_alnum(t.s[0]))
		return false;
	for (uint32_t i = 1; i < t.len; i++)
		if (!scn_is_alnum(t.s[i]) && (t.s[i] == '\0' || !strchr(extra, t.s[i])))
			return false;
	return true;
}

/* Fails when t is longer than LIMIT_NAME_BYTES_MAX. */
static int scn_name_len_ok(struct scn_parser *p, struct scn_tok t)
{
	if (t.len <= LIMIT_NAME_BYTES_MAX)
		return 0;
	return scn_fail(p, t.col,
			"name '%.*s' is longer than %u bytes (LIMIT_NAME_BYTES_MAX)",
			SCN_TOK_ARG(t), LIMIT_NAME_BYTES_MAX);
}

/* Reads token i as a name (what says which, for the message) and copies it
 * into *out (owned by the command). */
static int scn_name_at(struct scn_parser *p, uint32_t from, uint32_t i, const char *what,
		       const char *extra, char **out)
{
	int rv;

	if (i >= p->tok_count || !scn_name_ok(p->toks[i], extra))
		return scn_expected(p, from, i, what);
	rv = scn_name_len_ok(p, p->toks[i]);
	if (rv)
		return rv;
	*out = scn_tok_dup(p->toks[i]);
	return *out ? 0 : scn_nomem(p);
}

/* Reads a KEY=VALUE value v as a name (kind names it in the message). */
static int scn_value_name(struct scn_parser *p, struct scn_tok v, const char *kind,
			  const char *extra, char **out)
{
	int rv;

	if (!scn_name_ok(v, extra))
		return scn_fail(
			p, v.col,
			"bad %s '%.*s' (expected letters, digits and %s, starting with a letter or digit)",
			kind, SCN_TOK_ARG(v), extra);
	rv = scn_name_len_ok(p, v);
	if (rv)
		return rv;
	*out = scn_tok_dup(v);
	return *out ? 0 : scn_nomem(p);
}

/* Reads v as one of names[0..count); *index gets its position. */
static int scn_choice(struct scn_parser *p, struct scn_tok v, const char *kind,
		      const char *const *names, size_t count, int *index)
{
	char list[256];

	for (size_t i = 0; i < count; i++) {
		if (scn_tok_is(v, names[i])) {
			*index = (int)i;
			return 0;
		}
	}
	scn_join(names, count, " or ", list, sizeof list);
	return scn_fail(p, v.col, "bad %s '%.*s' (expected %s)", kind, SCN_TOK_ARG(v),
			list);
}

/* ---------------------------------------------------------------- numbers */

enum scn_dec {
	SCN_DEC_OK,
	SCN_DEC_SYNTAX,	   /* no digits first, or a '.' without digits after */
	SCN_DEC_RANGE,	   /* the whole part does not fit in 64 bits */
	SCN_DEC_PRECISION, /* non-zero digits past `scale` decimals */
};

/* Parses the longest prefix of t of the form DIGITS[.DIGITS]: *whole gets the
 * whole part, *frac the fraction scaled to `scale` decimals (0.25 with scale 6
 * is 250000), *used the bytes read, so that callers can read a unit after. */
static enum scn_dec scn_decimal(struct scn_tok t, unsigned scale, uint64_t *whole,
				uint64_t *frac, uint32_t *used)
{
	uint64_t w = 0, f = 0;
	bool range = false, precise = true;
	unsigned k = 0;
	uint32_t j = 0;

	assert(scale <= 9);
	*whole = 0;
	*frac = 0;
	*used = 0;
	if (t.len == 0 || !scn_is_digit(t.s[0]))
		return SCN_DEC_SYNTAX;
	for (; j < t.len && scn_is_digit(t.s[j]); j++) {
		unsigned d = (unsigned)(t.s[j] - '0');
		if (range || w > (UINT64_MAX - d) / 10)
			range = true;
		else
			w = w * 10 + d;
	}
	if (j < t.len && t.s[j] == '.') {
		j++;
		if (j >= t.len || !scn_is_digit(t.s[j]))
			return SCN_DEC_SYNTAX;
		for (; j < t.len && scn_is_digit(t.s[j]); j++) {
			unsigned d = (unsigned)(t.s[j] - '0');
			if (k < scale) {
				f = f * 10 + d;
				k++;
			} else if (d != 0) {
				precise = false;
			}
		}
	}
	for (; k < scale; k++)
		f *= 10;
	*whole = w;
	*frac = f;
	*used = j;
	if (range)
		return SCN_DEC_RANGE;
	return precise ? SCN_DEC_OK : SCN_DEC_PRECISION;
}

/* Reads t as a whole number no larger than max; `limit` names the limit in
 * the message, or is NULL when max is just what the field holds. */
static int scn_uint(struct scn_parser *p, struct scn_tok t, const char *kind,
		    uint64_t max, const char *limit, uint64_t *out)
{
	uint64_t v = 0;
	bool over = false;

	if (!scn_tok_all_digits(t))
		return scn_fail(p, t.col,
				"bad %s '%.*s' (expected a whole number, like 3)", kind,
				SCN_TOK_ARG(t));
	for (uint32_t i = 0; i < t.len; i++) {
		unsigned d = (unsigned)(t.s[i] - '0');
		if (over || v > (UINT64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	if (over || v > max) {
		if (limit)
			return scn_fail(p, t.col,
					"%s %.*s is over the limit of %" PRIu64 " (%s)",
					kind, SCN_TOK_ARG(t), max, limit);
		return scn_fail(p, t.col, "%s %.*s is too large (at most %" PRIu64 ")",
				kind, SCN_TOK_ARG(t), max);
	}
	*out = v;
	return 0;
}

/* Reads t as a duration: a number with ms, s, m or h (decimals allowed, as
 * 1.5s), or several in a row as Go and Docker write them (1m30s, 1h30m,
 * 2s500ms: their sum), a whole number of milliseconds, at most
 * LIMIT_SCN_DURATION_MS_MAX. */
static int scn_duration(struct scn_parser *p, struct scn_tok t, uint64_t *ms)
{
	struct scn_tok rest = t;
	uint64_t total = 0;

	do {
		uint64_t whole, frac, unit_ms, v;
		uint32_t used, ulen = 0;
		enum scn_dec dec = scn_decimal(rest, 6, &whole, &frac, &used);
		struct scn_tok unit = scn_tok_tail(rest, used);

		if (dec == SCN_DEC_SYNTAX)
			goto bad;
		while (ulen < unit.len && !scn_is_digit(unit.s[ulen]))
			ulen++;
		if (ulen == 0)
			return scn_fail(
				p, t.col,
				"bad duration '%.*s' (missing unit: expected ms, s, "
				"m or h, like 5s)",
				SCN_TOK_ARG(t));
		rest = scn_tok_tail(unit, ulen);
		unit = scn_tok_head(unit, ulen);
		if (scn_tok_is(unit, "ms"))
			unit_ms = 1;
		else if (scn_tok_is(unit, "s"))
			unit_ms = 1000;
		else if (scn_tok_is(unit, "m"))
			unit_ms = 60 * 1000;
		else if (scn_tok_is(unit, "h"))
			unit_ms = 3600 * 1000;
		else
			goto bad;
		if (dec == SCN_DEC_RANGE || whole > LIMIT_SCN_DURATION_MS_MAX / unit_ms)
			goto over;
		if (dec == SCN_DEC_PRECISION || (frac * unit_ms) % 1000000 != 0)
			return scn_fail(p, t.col, "bad duration '%.*s' (finer than 1ms)",
					SCN_TOK_ARG(t));
		v = whole * unit_ms + frac * unit_ms / 1000000;
		if (v > LIMIT_SCN_DURATION_MS_MAX - total)
			goto over;
		total += v;
	} while (rest.len > 0);
	*ms = total;
	return 0;
bad:
	return scn_fail(
		p, t.col,
		"bad duration '%.*s' (expected a number with ms, s, m or h, like 250ms or 5s)",
		SCN_TOK_ARG(t));
over:
	return scn_fail(p, t.col,
			"duration '%.*s' is over the limit of %" PRIu64
			"h (LIMIT_SCN_DURATION_MS_MAX)",
			SCN_TOK_ARG(t),
			(uint64_t)LIMIT_SCN_DURATION_MS_MAX / (3600 * 1000));
}

/* Reads t as D or D..D; the minimum may not be more than the maximum. */
static int scn_range(struct scn_parser *p, struct scn_tok t, struct scn_range *r)
{
	uint32_t j;
	int rv;

	for (j = 0; j + 1 < t.len; j++)
		if (t.s[j] == '.' && t.s[j + 1] == '.')
			break;
	if (j + 1 >= t.len) {
		rv = scn_duration(p, t, &r->min_ms);
		r->max_ms = r->min_ms;
		return rv;
	}
	if (j == 0 || j + 2 == t.len)
		return scn_fail(p, t.col,
				"bad range '%.*s' (expected D..D, like 100ms..1s)",
				SCN_TOK_ARG(t));
	rv = scn_duration(p, scn_tok_head(t, j), &r->min_ms);
	if (!rv)
		rv = scn_duration(p, scn_tok_tail(t, j + 2), &r->max_ms);
	if (!rv && r->min_ms > r->max_ms)
		rv = scn_fail(p, t.col,
			      "bad range '%.*s' (the minimum is more than the maximum)",
			      SCN_TOK_ARG(t));
	return rv;
}

/* Reads t as a size in bytes: a number, optionally with K, M, G or T
 * (binary multiples, as Docker's) and B or iB; any case; 1.5G is allowed
 * and rounds down to a whole byte. */
static int scn_size(struct scn_parser *p, struct scn_tok t, uint64_t *bytes)
{
	static const char units[] = "kmgt";
	uint64_t whole, frac, mult = 1, add;
	uint32_t used;
	enum scn_dec dec = scn_decimal(t, 6, &whole, &frac, &used);
	struct scn_tok unit = scn_tok_tail(t, used);
	const char *u;

	if (dec == SCN_DEC_SYNTAX || dec == SCN_DEC_PRECISION)
		goto bad;
	if (unit.len > 0 && (u = memchr(units, scn_lower(unit.s[0]), 4)) != NULL) {
		mult = 1024;
		for (const char *k = units; k < u; k++)
			mult *= 1024;
		unit = scn_tok_tail(unit, 1);
		if (!(unit.len == 0 || scn_tok_is_nocase(unit, "b") ||
		      scn_tok_is_nocase(unit, "ib")))
			goto bad;
	} else if (!(unit.len == 0 || scn_tok_is_nocase(unit, "b"))) {
		goto bad;
	}
	add = frac * mult / 1000000; /* frac < 10^6 and mult <= 2^40: no overflow */
	if (dec == SCN_DEC_RANGE || whole > (UINT64_MAX - add) / mult)
		return scn_fail(p, t.col,
				"size '%.*s' is too large (at most %" PRIu64 " bytes)",
				SCN_TOK_ARG(t), UINT64_MAX);
	*bytes = whole * mult + add;
	return 0;
bad:
	return scn_fail(
		p, t.col,
		"bad size '%.*s' (expected bytes or a number with K, M, G or T, like 512M or 2G)",
		SCN_TOK_ARG(t));
}

/* Reads t as a probability or ratio, 0.2 or 20%, within 0..1, in parts per
 * million (20% -> 200000; a percentage finer than 0.0001% rounds down). */
static int scn_ppm(struct scn_parser *p, struct scn_tok t, const char *kind,
		   uint32_t *ppm)
{
	uint64_t whole, frac, v;
	uint32_t used;
	enum scn_dec dec = scn_decimal(t, 6, &whole, &frac, &used);
	struct scn_tok unit = scn_tok_tail(t, used);
	bool percent = scn_tok_is(unit, "%");

	if (dec == SCN_DEC_SYNTAX || dec == SCN_DEC_PRECISION ||
	    (unit.len > 0 && !percent))
		return scn_fail(
			p, t.col,
			"bad %s '%.*s' (expected a number from 0 to 1 or a percentage, like 0.2 or 20%%)",
			kind, SCN_TOK_ARG(t));
	if (dec == SCN_DEC_RANGE || whole > (percent ? 100 : 1))
		goto over;
	v = whole * 1000000 + frac;
	if (percent)
		v /= 100;
	if (v > 1000000)
		goto over;
	*ppm = (uint32_t)v;
	return 0;
over:
	return scn_fail(p, t.col,
			"%s '%.*s' is out of range (expected 0..1 or 0%%..100%%)", kind,
			SCN_TOK_ARG(t));
}

/* Reads t as a number of cpus with at most 3 decimals, in millicpus. */
static int scn_millicpus(struct scn_parser *p, struct scn_tok t, const char *kind,
			 uint64_t *out)
{
	uint64_t whole, frac;
	uint32_t used;
	enum scn_dec dec = scn_decimal(t, 3, &whole, &frac, &used);

	if (dec == SCN_DEC_SYNTAX || used != t.len)
		return scn_fail(
			p, t.col,
			"bad %s '%.*s' (expected a number of cpus, like 0.5 or 2)", kind,
			SCN_TOK_ARG(t));
	if (dec == SCN_DEC_PRECISION)
		return scn_fail(
			p, t.col,
			"bad %s '%.*s' (finer than a millicpu: at most 3 decimals)", kind,
			SCN_TOK_ARG(t));
	if (dec == SCN_DEC_RANGE || whole > (UINT64_MAX - frac) / 1000)
		return scn_fail(p, t.col, "%s '%.*s' is too large", kind, SCN_TOK_ARG(t));
	*out = whole * 1000 + frac;
	return 0;
}

/* ---------------------------------------------------------------- nodes */

#define SCN_WHAT_NODE "a node (mN, wN or leader)"

/* Parses t as m<N>, w<N>, x<N> (N >= 1, no leading zero) or leader. Returns false
 * when t is none of these. A number past LIMIT_NODES_MAX reads as
 * UINT32_MAX: well formed, but no such node can exist. */
static bool scn_node_parse(struct scn_tok t, struct scn_node *node)
{
	uint32_t n = 0;

	if (scn_tok_is(t, "leader")) {
		*node = (struct scn_node){SCN_NODE_LEADER, 0};
		return true;
	}
	if (t.len < 2 || (t.s[0] != 'm' && t.s[0] != 'w' && t.s[0] != 'x') ||
	    t.s[1] == '0')
		return false;
	for (uint32_t i = 1; i < t.len; i++) {
		if (!scn_is_digit(t.s[i]))
			return false;
		if (n <= LIMIT_NODES_MAX)
			n = n * 10 + (uint32_t)(t.s[i] - '0');
	}
	node->kind = t.s[0] == 'm'   ? SCN_NODE_MANAGER
		     : t.s[0] == 'w' ? SCN_NODE_WORKER
				     : SCN_NODE_STRANGER;
	node->number = n > LIMIT_NODES_MAX ? UINT32_MAX : n;
	assert(node->number >= 1);
	return true;
}

static bool scn_node_same(struct scn_node a, struct scn_node b)
{
	return a.kind == b.kind && a.number == b.number;
}

/* Fails unless node (written as t) exists at this line: named by `cluster`
 * or a `node add` before it. leader always exists. */
static int scn_node_exists(struct scn_parser *p, struct scn_tok t, struct scn_node node)
{
	bool manager = node.kind == SCN_NODE_MANAGER;
	bool stranger = node.kind == SCN_NODE_STRANGER;
	uint32_t count = manager ? p->managers : stranger ? p->strangers : p->workers;
	char letter = manager ? 'm' : stranger ? 'x' : 'w';
	char have[64];

	if (node.kind == SCN_NODE_LEADER)
		return 0;
	if (node.number >= 1 && node.number <= count)
		return 0;
	if (count == 0)
		snprintf(have, sizeof have, "no %s",
			 manager    ? "managers"
			 : stranger ? "strangers"
				    : "workers");
	else if (count == 1)
		snprintf(have, sizeof have, "%c1", letter);
	else
		snprintf(have, sizeof have, "%c1..%c%" PRIu32, letter, letter, count);
	return scn_fail(p, t.col, "node %.*s does not exist (cluster has %s)",
			SCN_TOK_ARG(t), have);
}

/* Reads token i as a node that exists now (leader only if allow_leader);
 * what is the "expected ..." text when it is no node. */
static int scn_node_at(struct scn_parser *p, uint32_t from, uint32_t i, const char *what,
		       bool allow_leader, struct scn_node *node)
{
	/* xN reads as a node only once `node add stranger` made one: before,
	 * it is no node at all (as it was before strangers existed) */
	if (i >= p->tok_count || !scn_node_parse(p->toks[i], node) ||
	    (!allow_leader && node->kind == SCN_NODE_LEADER) ||
	    (node->kind == SCN_NODE_STRANGER && p->strangers == 0))
		return scn_expected(p, from, i, what);
	return scn_node_exists(p, p->toks[i], *node);
}

/* ---------------------------------------------------------------- KEY=VALUE */

/* One key a command accepts; bit is the command's own flag for it. */
struct scn_key {
	const char *name;
	uint64_t bit;
	bool repeat; /* may be given more than once */
};

struct scn_kv {
	const struct scn_key *key;
	struct scn_tok name;  /* as written */
	struct scn_tok value; /* non-empty */
};

/* Which keys of a table one command gave, and where (by table index). */
#define SCN_KEYS_MAX 64
struct scn_seen {
	uint64_t bits; /* by table index */
	uint32_t col[SCN_KEYS_MAX];
};

static void scn_key_list(const struct scn_key *keys, size_t count, char *buf, size_t size)
{
	const char *names[SCN_KEYS_MAX] = {0};

	assert(count <= SCN_KEYS_MAX);
	for (size_t i = 0; i < count; i++)
		names[i] = keys[i].name;
	scn_join(names, count, ", ", buf, size);
}

/* Reads t as KEY=VALUE with KEY one of keys (for command `what`), not given
 * before unless repeatable, and VALUE not empty. */
static int scn_kv_read(struct scn_parser *p, struct scn_tok t, const struct scn_key *keys,
		       size_t count, const char *what, struct scn_seen *seen,
		       struct scn_kv *kv)
{
	const char *eq = memchr(t.s, '=', t.len);
	char list[1024];
	uint32_t name_len;
	size_t k;

	assert(count <= SCN_KEYS_MAX);
	if (!eq || eq == t.s) {
		scn_key_list(keys, count, list, sizeof list);
		return scn_fail(p, t.col,
				"expected KEY=VALUE for %s, got '%.*s' (keys: %s)", what,
				SCN_TOK_ARG(t), list);
	}
	name_len = (uint32_t)(eq - t.s);
	kv->name = scn_tok_head(t, name_len);
	kv->value = scn_tok_tail(t, name_len + 1);
	for (k = 0; k < count; k++)
		if (scn_tok_is(kv->name, keys[k].name))
			break;
	if (k == count) {
		scn_key_list(keys, count, list, sizeof list);
		return scn_fail(p, t.col, "unknown key '%.*s' for %s (expected %s)",
				SCN_TOK_ARG(kv->name), what, list);
	}
	if (seen->bits & (1ull << k)) {
		if (!keys[k].repeat)
			return scn_fail(
				p, t.col,
				"duplicate key '%s' (first given at column %" PRIu32 ")",
				keys[k].name, seen->col[k]);
	} else {
		seen->bits |= 1ull << k;
		seen->col[k] = t.col;
	}
	if (kv->value.len == 0)
		return scn_fail(p, kv->value.col, "missing value after '%s='",
				keys[k].name);
	kv->key = &keys[k];
	return 0;
}

/* ---------------------------------------------------------------- services */

static const struct scn_key scn_service_keys[] = {
	{"replicas", SCN_SVC_REPLICAS, false},
	{"mode", SCN_SVC_MODE, false},
	{"image", SCN_SVC_IMAGE, false},
	{"constraint", SCN_SVC_CONSTRAINT, true},
	{"reserve-cpu", SCN_SVC_RESERVE_CPU, false},
	{"reserve-mem", SCN_SVC_RESERVE_MEM, false},
	{"max-per-node", SCN_SVC_MAX_PER_NODE, false},
	{"spread", SCN_SVC_SPREAD, true},
	{"restart", SCN_SVC_RESTART, false},
	{"restart-delay", SCN_SVC_RESTART_DELAY, false},
	{"restart-max", SCN_SVC_RESTART_MAX, false},
	{"restart-window", SCN_SVC_RESTART_WINDOW, false},
	{"update-parallelism", SCN_SVC_UPDATE_PARALLELISM, false},
	{"update-delay", SCN_SVC_UPDATE_DELAY, false},
	{"update-failure-action", SCN_SVC_UPDATE_FAILURE_ACTION, false},
	{"update-order", SCN_SVC_UPDATE_ORDER, false},
	{"update-monitor", SCN_SVC_UPDATE_MONITOR, false},
	{"update-max-failure-ratio", SCN_SVC_UPDATE_MAX_FAILURE_RATIO, false},
	{"env", SCN_SVC_ENV, true},
	{"env-bytes", SCN_SVC_ENV_BYTES, false},
	{"max-concurrent", SCN_SVC_MAX_CONCURRENT, false},
	{"health-cmd", SCN_SVC_HEALTH, false},
	{"health-interval", SCN_SVC_HEALTH, false},
	{"health-timeout", SCN_SVC_HEALTH, false},
	{"health-retries", SCN_SVC_HEALTH, false},
	{"health-start-period", SCN_SVC_HEALTH, false},
	{"stop-grace-period", SCN_SVC_STOP_GRACE, false},
	{"rollback-parallelism", SCN_SVC_ROLLBACK_PARALLELISM, false},
	{"rollback-delay", SCN_SVC_ROLLBACK_DELAY, false},
	{"rollback-failure-action", SCN_SVC_ROLLBACK_FAILURE_ACTION, false},
	{"rollback-monitor", SCN_SVC_ROLLBACK_MONITOR, false},
	{"rollback-max-failure-ratio", SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO, false},
	{"rollback-order", SCN_SVC_ROLLBACK_ORDER, false},
	{"network", SCN_SVC_NETWORK, true},
	{"publish", SCN_SVC_PUBLISH, true},
	{"rebalance", SCN_SVC_REBALANCE, false},
	{"rebalance-parallelism", SCN_SVC_REBALANCE, false},
	{"secret", SCN_SVC_FILES, true},
	{"config", SCN_SVC_FILES, true},
};

#define SCN_LABELS_PREFIX "node.labels."

static void scn_constraint_free(struct scn_constraint *c)
{
	free(c->key);
	free(c->value);
	free(c->text);
	memset(c, 0, sizeof *c);
}

/* Reads v as a SwarmKit constraint: node.id, node.hostname, node.role,
 * node.labels.KEY, node.platform.os, node.platform.arch, engine.labels.KEY
 * or node.ip, then == or !=, then a non-empty value (node.role's is
 * manager or worker; node.ip's an address or a CIDR block). Fills *c (owned by the command) only on success. */
static int scn_constraint(struct scn_parser *p, struct scn_tok v,
			  struct scn_constraint *c)
{
	struct scn_tok key, value;
	uint32_t j;

	for (j = 0; j + 1 < v.len; j++)
		if ((v.s[j] == '=' || v.s[j] == '!') && v.s[j + 1] == '=')
			break;
	if (j + 1 >= v.len || j == 0 || j + 2 == v.len)
		goto bad;
	key = scn_tok_head(v, j);
	value = scn_tok_tail(v, j + 2);
	if (scn_tok_has_prefix(key, SCN_LABELS_PREFIX)) {
		struct scn_tok label =
			scn_tok_tail(key, (uint32_t)strlen(SCN_LABELS_PREFIX));
		if (!scn_name_ok(label, SCN_NAME_EXTRA) ||
		    label.len > LIMIT_NAME_BYTES_MAX)
			goto bad;
	} else if (scn_tok_has_prefix(key, "engine.labels.")) {
		struct scn_tok label =
			scn_tok_tail(key, (uint32_t)strlen("engine.labels."));
		if (!scn_name_ok(label, SCN_NAME_EXTRA) ||
		    label.len > LIMIT_NAME_BYTES_MAX)
			goto bad;
	} else if (scn_tok_is(key, "node.ip")) {
		char text[LIMIT_ADDR_BYTES_MAX + 16];
		if (v.len >= sizeof text)
			goto bad;
		memcpy(text, v.s, v.len);
		text[v.len] = '\0';
		if (!sched_constraint_is_valid(text)) /* an address or a block */
			goto bad;
	} else if (!scn_tok_is(key, "node.id") && !scn_tok_is(key, "node.hostname") &&
		   !scn_tok_is(key, "node.role") &&
		   !scn_tok_is(key, "node.platform.os") &&
		   !scn_tok_is(key, "node.platform.arch")) {
		goto bad;
	}
	if (scn_tok_is(key, "node.role") && !scn_tok_is(value, "manager") &&
	    !scn_tok_is(value, "worker"))
		return scn_fail(p, value.col,
				"bad constraint '%.*s' (node.role is manager or worker)",
				SCN_TOK_ARG(v));
	if (value.len > LIMIT_LABEL_BYTES_MAX)
		return scn_fail(
			p, value.col,
			"constraint value is longer than %u bytes (LIMIT_LABEL_BYTES_MAX)",
			LIMIT_LABEL_BYTES_MAX);
	c->key = scn_tok_dup(key);
	c->value = scn_tok_dup(value);
	c->text = scn_tok_dup(v);
	c->equal = v.s[j] == '=';
	if (!c->key || !c->value || !c->text) {
		scn_constraint_free(c);
		return scn_nomem(p);
	}
	return 0;
bad:
	return scn_fail(
		p, v.col,
		"bad constraint '%.*s' (expected node.id, node.hostname, node.role, "
		"node.labels.KEY, node.platform.os, node.platform.arch, "
		"engine.labels.KEY or node.ip (an address or CIDR block), then == or "
		"!=, then a value, like node.role==worker)",
		SCN_TOK_ARG(v));
}

/* Reads v as a spread preference over a node label, `zone` or
 * `node.labels.zone`; *out gets the label key ("zone"). */
static int scn_spread(struct scn_parser *p, struct scn_tok v, char **out)
{
	struct scn_tok label = v;

	if (scn_tok_has_prefix(v, SCN_LABELS_PREFIX))
		label = scn_tok_tail(v, (uint32_t)strlen(SCN_LABELS_PREFIX));
	else if (scn_tok_has_prefix(v, "node.") || scn_tok_has_prefix(v, "engine."))
		label.len = 0; /* only node labels spread */
	if (!scn_name_ok(label, SCN_NAME_EXTRA))
		return scn_fail(
			p, v.col,
			"bad spread '%.*s' (expected a node label, like zone or node.labels.zone)",
			SCN_TOK_ARG(v));
	if (scn_name_len_ok(p, label))
		return CS_EINVAL;
	*out = scn_tok_dup(label);
	return *out ? 0 : scn_nomem(p);
}

/* Appends var (taken: freed here on failure) to svc's env list; col is
 * where its key was written. */
static int scn_env_add(struct scn_parser *p, struct scn_service *svc, uint32_t col,
		       char *var)
{
	char **envs;

	if (!var)
		return scn_nomem(p);
	if (svc->env_count == LIMIT_SCN_ENVS_MAX) {
		free(var);
		return scn_fail(p, col,
				"more than %u environment variables (LIMIT_SCN_ENVS_MAX)",
				LIMIT_SCN_ENVS_MAX);
	}
	envs = realloc(svc->envs, (svc->env_count + 1) * sizeof *envs);
	if (!envs) {
		free(var);
		return scn_nomem(p);
	}
	svc->envs = envs;
	svc->envs[svc->env_count++] = var;
	assert(svc->env_count <= LIMIT_SCN_ENVS_MAX);
	return 0;
}

/* Reads v, env='s value, as KEY=VALUE (as swarmctl's --env: a non-empty
 * KEY, then '=', then the rest of the token, maybe empty). */
static int scn_env(struct scn_parser *p, struct scn_service *svc, const struct scn_kv *kv)
{
	struct scn_tok v = kv->value;
	const char *eq = memchr(v.s, '=', v.len);

	if (!eq || eq == v.s)
		return scn_fail(
			p, v.col,
			"bad env '%.*s' (expected KEY=VALUE with a non-empty KEY, "
			"like env=LANG=C)",
			SCN_TOK_ARG(v));
	return scn_env_add(p, svc, kv->name.col, scn_tok_dup(v));
}

/* Reads v, env-bytes='s value, as a size within LIMIT_SCN_ENV_BYTES_MAX
 * and adds the variable PAD with that many 'x's: large specs without a
 * long literal. */
static int scn_env_bytes(struct scn_parser *p, struct scn_service *svc,
			 const struct scn_kv *kv)
{
	static const char name[] = "PAD=";
	uint64_t bytes;
	char *var;
	int rv = scn_size(p, kv->value, &bytes);

	if (rv)
		return rv;
	if (bytes > LIMIT_SCN_ENV_BYTES_MAX)
		return scn_fail(p, kv->value.col,
				"env-bytes '%.*s' is over the limit of %u bytes "
				"(LIMIT_SCN_ENV_BYTES_MAX)",
				SCN_TOK_ARG(kv->value), LIMIT_SCN_ENV_BYTES_MAX);
	var = malloc(sizeof name + (size_t)bytes);
	if (var) {
		memcpy(var, name, sizeof name - 1);
		memset(var + sizeof name - 1, 'x', (size_t)bytes);
		var[sizeof name - 1 + bytes] = '\0';
	}
	return scn_env_add(p, svc, kv->name.col, var);
}

/* Applies one of the health-* keys (issue 14) to svc; the key's name says
 * which (they share SCN_SVC_HEALTH). */
static int scn_health_key(struct scn_parser *p, struct scn_service *svc,
			  const struct scn_kv *kv)
{
	const char *name = kv->key->name;
	struct scn_tok v = kv->value;
	int rv;

	if (strcmp(name, "health-cmd") == 0) {
		free(svc->health_cmd);
		svc->health_cmd = NULL;
		svc->health_none = scn_tok_is(v, "none");
		if (!svc->health_none) {
			svc->health_cmd = scn_tok_dup(v);
			if (!svc->health_cmd)
				return scn_nomem(p);
		}
		svc->health_set |= SCN_HEALTH_CMD;
		return 0;
	}
	if (strcmp(name, "health-retries") == 0) {
		rv = scn_uint(p, v, "health-retries", INT32_MAX, NULL,
			      &svc->health_retries);
		svc->health_set |= rv ? 0 : SCN_HEALTH_RETRIES;
		return rv;
	}
	if (strcmp(name, "health-interval") == 0) {
		rv = scn_duration(p, v, &svc->health_interval_ms);
		svc->health_set |= rv ? 0 : SCN_HEALTH_INTERVAL;
	} else if (strcmp(name, "health-timeout") == 0) {
		rv = scn_duration(p, v, &svc->health_timeout_ms);
		svc->health_set |= rv ? 0 : SCN_HEALTH_TIMEOUT;
	} else {
		assert(strcmp(name, "health-start-period") == 0);
		rv = scn_duration(p, v, &svc->health_start_period_ms);
		svc->health_set |= rv ? 0 : SCN_HEALTH_START_PERIOD;
	}
	return rv;
}

/* secret=NAME[:TARGET] and config=NAME[:TARGET] (issue 20), repeatable;
 * `none` (alone) makes the list empty. */
static int scn_service_file_key(struct scn_parser *p, struct scn_service *svc,
				const struct scn_kv *kv)
{
	int k = strcmp(kv->key->name, "config") == 0;
	struct scn_tok v = kv->value;
	const char *colon = memchr(v.s, ':', v.len);
	size_t n = svc->file_count[k];
	int rv;

	svc->files_set |= 1u << k;
	if (scn_tok_is(v, "none"))
		return 0;
	if (n == LIMIT_SCN_FILES_MAX)
		return scn_fail(p, kv->name.col, "more than %u %s= (LIMIT_SCN_FILES_MAX)",
				LIMIT_SCN_FILES_MAX, kv->key->name);
	rv = scn_value_name(p, colon ? scn_tok_head(v, (uint32_t)(colon - v.s)) : v,
			    kv->key->name, SCN_NAME_EXTRA, &svc->file_names[k][n]);
	if (rv)
		return rv;
	svc->file_count[k]++;
	if (colon) {
		struct scn_tok t = scn_tok_tail(v, (uint32_t)(colon - v.s) + 1);
		if (t.len == 0)
			return scn_fail(p, t.col, "missing target after ':'");
		if (!(svc->file_targets[k][n] = scn_tok_dup(t)))
			return scn_nomem(p);
	}
	return 0;
}

/* Applies one KEY=VALUE of service create or update to svc. */
/* ---------------------------------------------------------------- networks (issue 15) */

/* The bytes [from, to) of t. */
static struct scn_tok scn_span_of(struct scn_tok t, uint32_t from, uint32_t to)
{
	assert(from <= to && to <= t.len);
	return scn_tok_head(scn_tok_tail(t, from), to - from);
}

/* Reads a port (1..65535) from t; 0 when t is empty and may_be_empty. */
static bool scn_port_num(struct scn_tok t, bool may_be_empty, uint32_t *port)
{
	uint64_t v = 0;
	if (t.len == 0) {
		*port = 0;
		return may_be_empty;
	}
	if (t.len > 5 || !scn_tok_all_digits(t))
		return false;
	for (uint32_t i = 0; i < t.len; i++)
		v = v * 10 + (uint64_t)(t.s[i] - '0');
	*port = (uint32_t)v;
	return v >= 1 && v <= 65535;
}

/* network=NAME (repeatable); publish=[host:][P]:T[/tcp|udp|sctp]
 * (repeatable; P left out: drawn from 30000-32767, ingress only). The
 * first of either key in a command starts its list afresh. */
static int scn_service_net_key(struct scn_parser *p, struct scn_service *svc,
			       const struct scn_kv *kv)
{
	struct scn_tok v = kv->value;
	struct scn_port port = {0};
	const char *colon;

	if (kv->key->bit == SCN_SVC_NETWORK) {
		if (svc->network_count == LIMIT_SCN_NETWORKS_MAX)
			return scn_fail(p, kv->name.col,
					"more than %u networks (LIMIT_SCN_NETWORKS_MAX)",
					LIMIT_SCN_NETWORKS_MAX);
		return scn_value_name(p, v, "network", SCN_NAME_EXTRA,
				      &svc->networks[svc->network_count++]);
	}
	if (svc->port_count == LIMIT_SCN_PORTS_MAX)
		return scn_fail(p, kv->name.col,
				"more than %u ports (LIMIT_SCN_PORTS_MAX)",
				LIMIT_SCN_PORTS_MAX);
	if (scn_tok_has_prefix(v, "host:")) {
		port.host = true;
		v = scn_tok_tail(v, 5);
	}
	colon = memchr(v.s, ':', v.len);
	if (colon) {
		const char *slash = memchr(colon, '/', v.len - (uint32_t)(colon - v.s));
		uint32_t at = (uint32_t)(colon - v.s);
		uint32_t tend = slash ? (uint32_t)(slash - v.s) : v.len;
		struct scn_tok proto =
			slash ? scn_tok_tail(v, tend + 1) : scn_tok_head(v, 0);
		bool ok =
			scn_port_num(scn_tok_head(v, at), !port.host, &port.published) &&
			scn_port_num(scn_span_of(v, at + 1, tend), false, &port.target);
		if (ok && slash) {
			if (scn_tok_is(proto, "tcp"))
				port.protocol = 0;
			else if (scn_tok_is(proto, "udp"))
				port.protocol = 1;
			else if (scn_tok_is(proto, "sctp"))
				port.protocol = 2;
			else
				ok = false;
		}
		if (ok) {
			svc->ports[svc->port_count++] = port;
			return 0;
		}
	}
	return scn_fail(
		p, kv->value.col,
		"publish: expected [host:][P]:T[/tcp|udp|sctp] (P 1-65535, left out "
		"to draw one; host mode needs P), got '%.*s'",
		SCN_TOK_ARG(kv->value));
}

static int scn_service_key(struct scn_parser *p, struct scn_service *svc,
			   const struct scn_kv *kv)
{
	struct scn_tok v = kv->value;
	int index = 0;
	int rv;

	switch (kv->key->bit) {
	case SCN_SVC_REPLICAS:
		rv = scn_uint(p, v, "replicas", LIMIT_SCN_REPLICAS_MAX,
			      "LIMIT_SCN_REPLICAS_MAX", &svc->replicas);
		break;
	case SCN_SVC_MODE:
		rv = scn_choice(p, v, "mode", scn_mode_names, SCN_COUNT(scn_mode_names),
				&index);
		svc->mode = (enum scn_mode)index;
		break;
	case SCN_SVC_IMAGE:
		rv = scn_value_name(p, v, "image", SCN_IMAGE_EXTRA, &svc->image);
		break;
	case SCN_SVC_CONSTRAINT:
		if (svc->constraint_count == LIMIT_SCN_CONSTRAINTS_MAX)
			return scn_fail(
				p, kv->name.col,
				"more than %u constraints (LIMIT_SCN_CONSTRAINTS_MAX)",
				LIMIT_SCN_CONSTRAINTS_MAX);
		rv = scn_constraint(p, v, &svc->constraints[svc->constraint_count]);
		if (!rv)
			svc->constraint_count++;
		break;
	case SCN_SVC_RESERVE_CPU:
		rv = scn_millicpus(p, v, "reserve-cpu", &svc->reserve_millicpu);
		break;
	case SCN_SVC_RESERVE_MEM: rv = scn_size(p, v, &svc->reserve_mem_bytes); break;
	case SCN_SVC_MAX_PER_NODE:
		rv = scn_uint(p, v, "max-per-node", LIMIT_SCN_REPLICAS_MAX,
			      "LIMIT_SCN_REPLICAS_MAX", &svc->max_per_node);
		break;
	case SCN_SVC_SPREAD:
		if (svc->spread_count == LIMIT_SCN_SPREADS_MAX)
			return scn_fail(p, kv->name.col,
					"more than %u spreads (LIMIT_SCN_SPREADS_MAX)",
					LIMIT_SCN_SPREADS_MAX);
		rv = scn_spread(p, v, &svc->spreads[svc->spread_count]);
		if (!rv)
			svc->spread_count++;
		break;
	case SCN_SVC_RESTART:
		rv = scn_choice(p, v, "restart", scn_restart_names,
				SCN_COUNT(scn_restart_names), &index);
		svc->restart = (enum scn_restart)index;
		break;
	case SCN_SVC_RESTART_DELAY:
		rv = scn_duration(p, v, &svc->restart_delay_ms);
		break;
	case SCN_SVC_RESTART_MAX:
		rv = scn_uint(p, v, "restart-max", UINT64_MAX, NULL, &svc->restart_max);
		break;
	case SCN_SVC_RESTART_WINDOW:
		rv = scn_duration(p, v, &svc->restart_window_ms);
		break;
	case SCN_SVC_UPDATE_PARALLELISM:
		rv = scn_uint(p, v, "update-parallelism", LIMIT_SCN_REPLICAS_MAX,
			      "LIMIT_SCN_REPLICAS_MAX", &svc->update_parallelism);
		break;
	case SCN_SVC_UPDATE_DELAY: rv = scn_duration(p, v, &svc->update_delay_ms); break;
	case SCN_SVC_UPDATE_FAILURE_ACTION:
		rv = scn_choice(p, v, "update-failure-action", scn_fa_names,
				SCN_COUNT(scn_fa_names), &index);
		svc->update_failure_action = (enum scn_failure_action)index;
		break;
	case SCN_SVC_UPDATE_ORDER:
		rv = scn_choice(p, v, "update-order", scn_order_names,
				SCN_COUNT(scn_order_names), &index);
		svc->update_order = (enum scn_update_order)index;
		break;
	case SCN_SVC_UPDATE_MONITOR:
		rv = scn_duration(p, v, &svc->update_monitor_ms);
		break;
	case SCN_SVC_UPDATE_MAX_FAILURE_RATIO:
		rv = scn_ppm(p, v, "ratio", &svc->update_max_failure_ratio_ppm);
		break;
	case SCN_SVC_ENV: rv = scn_env(p, svc, kv); break;
	case SCN_SVC_ENV_BYTES: rv = scn_env_bytes(p, svc, kv); break;
	case SCN_SVC_MAX_CONCURRENT:
		rv = scn_uint(p, v, "max-concurrent", LIMIT_SCN_REPLICAS_MAX,
			      "LIMIT_SCN_REPLICAS_MAX", &svc->max_concurrent);
		break;
	case SCN_SVC_HEALTH: rv = scn_health_key(p, svc, kv); break;
	case SCN_SVC_STOP_GRACE:
		rv = scn_duration(p, v, &svc->stop_grace_period_ms);
		break;
	case SCN_SVC_ROLLBACK_PARALLELISM:
		rv = scn_uint(p, v, "rollback-parallelism", LIMIT_SCN_REPLICAS_MAX,
			      "LIMIT_SCN_REPLICAS_MAX", &svc->rollback_parallelism);
		break;
	case SCN_SVC_ROLLBACK_DELAY:
		rv = scn_duration(p, v, &svc->rollback_delay_ms);
		break;
	case SCN_SVC_ROLLBACK_FAILURE_ACTION:
		rv = scn_choice(p, v, "rollback-failure-action", scn_fa_names,
				SCN_COUNT(scn_fa_names), &index);
		svc->rollback_failure_action = (enum scn_failure_action)index;
		break;
	case SCN_SVC_ROLLBACK_MONITOR:
		rv = scn_duration(p, v, &svc->rollback_monitor_ms);
		break;
	case SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO:
		rv = scn_ppm(p, v, "ratio", &svc->rollback_max_failure_ratio_ppm);
		break;
	case SCN_SVC_ROLLBACK_ORDER:
		rv = scn_choice(p, v, "rollback-order", scn_order_names,
				SCN_COUNT(scn_order_names), &index);
		svc->rollback_order = (enum scn_update_order)index;
		break;
	case SCN_SVC_NETWORK:
	case SCN_SVC_PUBLISH: rv = scn_service_net_key(p, svc, kv); break;
	case SCN_SVC_REBALANCE:
		if (scn_tok_is(kv->name, "rebalance")) {
			static const char *const names[] = {"false", "true"};
			rv = scn_choice(p, v, "rebalance", names, SCN_COUNT(names),
					&index);
			svc->rebalance = index == 1;
			svc->rebalance_set |= 1;
		} else {
			rv = scn_uint(p, v, "rebalance-parallelism",
				      LIMIT_SCN_REPLICAS_MAX, "LIMIT_SCN_REPLICAS_MAX",
				      &svc->rebalance_parallelism);
			svc->rebalance_set |= 2;
		}
		break;
	case SCN_SVC_FILES: rv = scn_service_file_key(p, svc, kv); break;
	default: assert(!"a service key without a case"); rv = CS_EINVAL;
	}
	if (!rv)
		svc->set |= kv->key->bit;
	return rv;
}

static void scn_service_free(struct scn_service *svc)
{
	free(svc->name);
	free(svc->image);
	for (size_t i = 0; i < svc->constraint_count; i++)
		scn_constraint_free(&svc->constraints[i]);
	for (size_t i = 0; i < svc->spread_count; i++)
		free(svc->spreads[i]);
	for (size_t i = 0; i < svc->env_count; i++)
		free(svc->envs[i]);
	free(svc->envs);
	free(svc->health_cmd);
	for (size_t i = 0; i < svc->network_count; i++)
		free(svc->networks[i]);
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < svc->file_count[k]; i++) {
			free(svc->file_names[k][i]);
			free(svc->file_targets[k][i]);
		}
	memset(svc, 0, sizeof *svc);
}

/* service create NAME KEY=VALUE... | service update NAME KEY=VALUE... |
 * service rm NAME. A create starts from docker service create's defaults
 * (1 replica, restart any after 5s, update 1 at a time, pause on failure,
 * stop-first, monitor 5s); an update changes only the keys it gives. */
static int scn_parse_service(struct scn_parser *p, struct scn_cmd *cmd)
{
	struct scn_service *svc = &cmd->u.service;
	struct scn_seen seen = {0};
	uint32_t replicas_col = 0, mode_col = 0;
	const char *what;
	int rv;

	if (p->tok_count < 2)
		return scn_expected(p, 0, 1, "create, update or rm");
	if (scn_tok_is(p->toks[1], "create"))
		cmd->kind = SCN_SERVICE_CREATE;
	else if (scn_tok_is(p->toks[1], "update"))
		cmd->kind = SCN_SERVICE_UPDATE;
	else if (scn_tok_is(p->toks[1], "rm"))
		cmd->kind = SCN_SERVICE_RM;
	else
		return scn_fail(
			p, p->toks[1].col,
			"unknown service command '%.*s' (expected create, update or rm)",
			SCN_TOK_ARG(p->toks[1]));
	if (cmd->kind == SCN_SERVICE_RM) {
		rv = scn_name_at(p, 0, 2, "a service name", SCN_NAME_EXTRA,
				 &cmd->u.service_name);
		return rv ? rv : scn_end(p, 3);
	}
	rv = scn_name_at(p, 0, 2, "a service name", SCN_NAME_EXTRA, &svc->name);
	if (rv)
		return rv;
	what = scn_cmd_names[cmd->kind];
	if (cmd->kind == SCN_SERVICE_CREATE) {
		svc->replicas = 1;
		svc->mode = SCN_MODE_REPLICATED;
		svc->restart = SCN_RESTART_ANY;
		svc->restart_delay_ms = 5000;
		svc->update_parallelism = 1;
		svc->update_failure_action = SCN_FA_PAUSE;
		svc->update_order = SCN_ORDER_STOP_FIRST;
		svc->update_monitor_ms = 5000;
	} else if (p->tok_count == 3) {
		return scn_expected(p, 0, 3, "KEY=VALUE");
	}
	for (uint32_t i = 3; i < p->tok_count; i++) {
		struct scn_kv kv;

		/* service update NAME rollback: swarmctl's --rollback, alone */
		if (cmd->kind == SCN_SERVICE_UPDATE && i == 3 && p->tok_count == 4 &&
		    scn_tok_is(p->toks[i], "rollback")) {
			svc->rollback = true;
			continue;
		}
		/* service update NAME force: swarmctl's --force (an addition) */
		if (cmd->kind == SCN_SERVICE_UPDATE && scn_tok_is(p->toks[i], "force")) {
			if (svc->force)
				return scn_fail(p, p->toks[i].col, "force given twice");
			svc->force = true;
			continue;
		}
		rv = scn_kv_read(p, p->toks[i], scn_service_keys,
				 SCN_COUNT(scn_service_keys), what, &seen, &kv);
		if (!rv)
			rv = scn_service_key(p, svc, &kv);
		if (rv)
			return rv;
		if (kv.key->bit == SCN_SVC_REPLICAS)
			replicas_col = p->toks[i].col;
		if (kv.key->bit == SCN_SVC_MODE)
			mode_col = p->toks[i].col;
	}
	if ((svc->set & SCN_SVC_REPLICAS) && (svc->set & SCN_SVC_MODE) &&
	    (svc->mode == SCN_MODE_GLOBAL || svc->mode == SCN_MODE_GLOBAL_JOB))
		return scn_fail(
			p, replicas_col > mode_col ? replicas_col : mode_col,
			"replicas= cannot be used with mode=global (a global service runs "
			"one task on every node)");
	if (cmd->kind == SCN_SERVICE_CREATE &&
	    (svc->mode == SCN_MODE_GLOBAL || svc->mode == SCN_MODE_GLOBAL_JOB))
		svc->replicas = 0;
	return 0;
}

/* ---------------------------------------------------------------- conditions */

static bool scn_op_parse(struct scn_tok t, enum scn_op *op)
{
	for (size_t i = 0; i < SCN_COUNT(scn_op_texts); i++) {
		if (scn_tok_is(t, scn_op_texts[i])) {
			*op = (enum scn_op)i;
			return true;
		}
	}
	return false;
}

/* Reads `OP N` at tokens i and i+1 of the condition that starts at from. */
static int scn_op_count(struct scn_parser *p, uint32_t from, uint32_t *i,
			struct scn_cond *c)
{
	int rv;

	if (*i >= p->tok_count || !scn_op_parse(p->toks[*i], &c->op))
		return scn_expected(p, from, *i, SCN_OPS_TEXT);
	(*i)++;
	if (*i >= p->tok_count || !scn_tok_all_digits(p->toks[*i]))
		return scn_expected(p, from, *i, "a count");
	rv = scn_uint(p, p->toks[*i], "count", UINT64_MAX, NULL, &c->count);
	if (rv)
		return rv;
	(*i)++;
	return 0;
}

/* Reads token *i as a keyword, or fails expecting it. */
static int scn_keyword(struct scn_parser *p, uint32_t from, uint32_t *i, const char *word,
		       const char *what)
{
	if (*i >= p->tok_count || !scn_tok_is(p->toks[*i], word))
		return scn_expected(p, from, *i, what);
	(*i)++;
	return 0;
}

/* Reads token *i as state=STATE (STATE in any case). */
static int scn_state(struct scn_parser *p, uint32_t from, uint32_t *i,
		     enum scn_task_state *state)
{
	struct scn_tok v;
	char list[256];

	if (*i >= p->tok_count || !scn_tok_has_prefix(p->toks[*i], "state="))
		return scn_expected(p, from, *i, "state=STATE");
	v = scn_tok_tail(p->toks[*i], (uint32_t)strlen("state="));
	for (size_t k = 0; k < SCN_COUNT(scn_state_names); k++) {
		if (scn_tok_is_nocase(v, scn_state_names[k])) {
			*state = (enum scn_task_state)k;
			(*i)++;
			return 0;
		}
	}
	scn_join(scn_state_names, SCN_COUNT(scn_state_names), " or ", list, sizeof list);
	return scn_fail(p, v.col, "unknown task state '%.*s' (expected %s)",
			SCN_TOK_ARG(v), list);
}

/* Reads an optional `on NODE` at token *i into c (a condition that may be
 * narrowed to one node), leaving *i past it. */
static int scn_on_node(struct scn_parser *p, uint32_t from, uint32_t *i,
		       struct scn_cond *c)
{
	int rv;

	if (*i >= p->tok_count || !scn_tok_is(p->toks[*i], "on"))
		return 0;
	(*i)++;
	rv = scn_node_at(p, from, *i, SCN_WHAT_NODE, true, &c->node);
	if (rv)
		return rv;
	c->has_node = true;
	(*i)++;
	return 0;
}

/* Issue 17, the routing mesh: reads `PORT[/tcp|udp|sctp] on NODE` at *i
 * (after `reach` or `no reach`) into c. */
static int scn_mesh_cond(struct scn_parser *p, uint32_t from, uint32_t *i,
			 struct scn_cond *c)
{
	struct scn_tok t;
	size_t digits = 0;
	uint64_t port = 0;
	int rv;

	if (*i >= p->tok_count)
		return scn_expected(p, from, *i,
				    "a published port (e.g. 8080 or 53/udp)");
	t = p->toks[*i];
	while (digits < t.len && digits < 6 && t.s[digits] >= '0' && t.s[digits] <= '9')
		port = port * 10 + (uint64_t)(t.s[digits++] - '0');
	c->proto = 0; /* tcp (enum env_port_proto) */
	if (digits < t.len && t.s[digits] == '/') {
		const char *pr = t.s + digits + 1;
		size_t len = t.len - digits - 1;
		if (len == 3 && memcmp(pr, "tcp", 3) == 0)
			c->proto = 0; /* tcp (enum env_port_proto) */
		else if (len == 3 && memcmp(pr, "udp", 3) == 0)
			c->proto = 1; /* udp */
		else if (len == 4 && memcmp(pr, "sctp", 4) == 0)
			c->proto = 2; /* sctp */
		else
			digits = 0;
		if (digits)
			digits = t.len;
	}
	if (!digits || digits != t.len || port == 0 || port > 65535)
		return scn_expected(p, from, *i,
				    "a published port 1-65535 (e.g. 8080 or 53/udp)");
	c->count = port;
	(*i)++;
	rv = scn_keyword(p, from, i, "on", "'on'");
	if (rv)
		return rv;
	rv = scn_node_at(p, from, *i, SCN_WHAT_NODE, true, &c->node);
	if (rv)
		return rv;
	c->has_node = true;
	(*i)++;
	return 0;
}

/* Reads the condition at token *i, leaving *i just past it. Tokens come
 * from SCN_LEX_COND, so operators stand alone. Messages quote the condition
 * from its start. */
static int scn_cond(struct scn_parser *p, uint32_t *i, struct scn_cond *c)
{
	uint32_t from = *i;
	struct scn_tok t;
	int rv;

	if (*i >= p->tok_count)
		return scn_expected(p, 0, *i, "a condition (" SCN_CONDS_TEXT ")");
	t = p->toks[(*i)++];
	if (scn_tok_is(t, "leader")) {
		c->kind = SCN_COND_LEADER;
		if (*i < p->tok_count && scn_op_parse(p->toks[*i], &c->op)) {
			if (c->op != SCN_OP_EQ && c->op != SCN_OP_NE)
				return scn_fail(
					p, p->toks[*i].col,
					"leader can only be compared with == or !=, got '%.*s'",
					SCN_TOK_ARG(p->toks[*i]));
			c->kind = SCN_COND_LEADER_IS;
			(*i)++;
			rv = scn_node_at(p, from, *i, "a node (mN or wN)", false,
					 &c->node);
			if (rv)
				return rv;
			(*i)++;
		}
		return 0;
	}
	if (scn_tok_is(t, "no") && *i < p->tok_count &&
	    scn_tok_is(p->toks[*i], "reach")) {
		/* issue 17: no reach PORT[/PROTO] on NODE */
		c->kind = SCN_COND_MESH_REFUSED;
		(*i)++;
		return scn_mesh_cond(p, from, i, c);
	}
	if (scn_tok_is(t, "no")) {
		c->kind = SCN_COND_NO_LEADER;
		return scn_keyword(p, from, i, "leader", "'leader'");
	}
	if (scn_tok_is(t, "running")) {
		c->kind = SCN_COND_RUNNING;
		rv = scn_name_at(p, from, *i, "a service name", SCN_NAME_EXTRA,
				 &c->service);
		if (rv)
			return rv;
		(*i)++;
		rv = scn_on_node(p, from, i, c);
		return rv ? rv : scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "spread")) {
		/* issue 20: spread SVC OP N */
		c->kind = SCN_COND_SPREAD;
		rv = scn_name_at(p, from, *i, "a service name", SCN_NAME_EXTRA,
				 &c->service);
		if (rv)
			return rv;
		(*i)++;
		return scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "files")) {
		/* issue 20: files NAME [on NODE] OP N */
		c->kind = SCN_COND_FILES;
		rv = scn_name_at(p, from, *i, "a secret or config name", SCN_NAME_EXTRA,
				 &c->service);
		if (rv)
			return rv;
		(*i)++;
		rv = scn_on_node(p, from, i, c);
		return rv ? rv : scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "store") && *i < p->tok_count &&
	    (scn_tok_is(p->toks[*i], "addresses") || scn_tok_is(p->toks[*i], "vips"))) {
		/* issue 15: store addresses|vips SVC OP N */
		c->kind = scn_tok_is(p->toks[(*i)++], "vips") ? SCN_COND_VIPS
							      : SCN_COND_ADDRESSES;
		rv = scn_name_at(p, from, *i, "a service name", SCN_NAME_EXTRA,
				 &c->service);
		if (rv)
			return rv;
		(*i)++;
		return scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "pending")) {
		/* issue 15: pending SVC because=WORD[-WORD...] OP N */
		struct scn_tok b;
		c->kind = SCN_COND_PENDING_BECAUSE;
		rv = scn_name_at(p, from, *i, "a service name", SCN_NAME_EXTRA,
				 &c->service);
		if (rv)
			return rv;
		(*i)++;
		if (*i >= p->tok_count || !scn_tok_has_prefix(p->toks[*i], "because=") ||
		    p->toks[*i].len == strlen("because="))
			return scn_expected(p, from, *i, "because=WORD[-WORD...]");
		b = scn_tok_tail(p->toks[(*i)++], (uint32_t)strlen("because="));
		c->reason = scn_tok_dup(b);
		if (!c->reason)
			return scn_nomem(p);
		for (char *q = c->reason; *q; q++)
			if (*q == '-')
				*q = ' ';
		return scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "store")) {
		c->kind = SCN_COND_STORE_TASKS;
		rv = scn_keyword(p, from, i, "tasks", "'tasks'");
		if (!rv)
			rv = scn_name_at(p, from, *i, "a service name", SCN_NAME_EXTRA,
					 &c->service);
		if (rv)
			return rv;
		(*i)++;
		rv = scn_state(p, from, i, &c->state);
		return rv ? rv : scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "nodes")) {
		c->kind = SCN_COND_NODES_READY;
		rv = scn_keyword(p, from, i, "ready", "'ready'");
		return rv ? rv : scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "node")) {
		c->kind = SCN_COND_NODE_STATUS;
		rv = scn_node_at(p, from, *i, SCN_WHAT_NODE, true, &c->node);
		if (rv)
			return rv;
		(*i)++;
		if (*i < p->tok_count && scn_tok_is(p->toks[*i], "ready"))
			c->node_ready = true;
		else if (*i < p->tok_count && scn_tok_is(p->toks[*i], "manager"))
			c->node_role = SCN_ROLE_MANAGER;
		else if (*i < p->tok_count && scn_tok_is(p->toks[*i], "worker"))
			c->node_role = SCN_ROLE_WORKER;
		else if (*i >= p->tok_count || !scn_tok_is(p->toks[*i], "down"))
			return scn_expected(p, from, *i,
					    "ready, down, manager or worker");
		(*i)++;
		return 0;
	}
	if (scn_tok_is(t, "converged")) {
		c->kind = SCN_COND_CONVERGED;
		return 0;
	}
	if (scn_tok_is(t, "reach")) {
		/* issue 17: reach SVC|tasks.SVC|ADDR from SVC.SLOT */
		c->kind = SCN_COND_REACH;
		if (*i + 1 < p->tok_count && scn_tok_is(p->toks[*i + 1], "on")) {
			/* issue 17 (the routing mesh): reach PORT[/PROTO] on NODE */
			c->kind = SCN_COND_MESH_REACH;
			return scn_mesh_cond(p, from, i, c);
		}
		if (*i >= p->tok_count || scn_tok_is(p->toks[*i], "from"))
			return scn_expected(p, from, *i,
					    "a service name, tasks.NAME or an address");
		c->service = scn_tok_dup(p->toks[(*i)++]);
		if (!c->service)
			return scn_nomem(p);
		rv = scn_keyword(p, from, i, "from", "'from'");
		if (rv)
			return rv;
		if (*i >= p->tok_count || !memchr(p->toks[*i].s, '.', p->toks[*i].len))
			return scn_expected(p, from, *i, "a task (SVC.SLOT, e.g. web.1)");
		c->reason = scn_tok_dup(p->toks[(*i)++]);
		return c->reason ? 0 : scn_nomem(p);
	}
	if (scn_tok_is(t, "event")) {
		/* issue 20: event KIND NAME create|update|remove */
		/* the kinds are the event stream's rows (core/events.c) */
		static const char *const actions[] = {"create", "update", "remove"};
		size_t k;
		c->kind = SCN_COND_EVENT;
		for (k = 0; *i < p->tok_count && k < events_kind_count; k++)
			if (scn_tok_is(p->toks[*i], events_kinds[k].name))
				break;
		if (*i >= p->tok_count || k == events_kind_count)
			return scn_expected(
				p, from, *i,
				"a kind of event (service, node, task, network, secret, config)");
		c->reason = strdup(events_kinds[k].name);
		if (!c->reason)
			return scn_nomem(p);
		(*i)++;
		rv = scn_name_at(p, from, *i, "a name (a task's: SVC.SLOT)",
				 SCN_NAME_EXTRA, &c->service);
		if (rv)
			return rv;
		(*i)++;
		for (k = 0; *i < p->tok_count && k < SCN_COUNT(actions); k++)
			if (scn_tok_is(p->toks[*i], actions[k]))
				break;
		if (*i >= p->tok_count || k == SCN_COUNT(actions))
			return scn_expected(p, from, *i, "create, update or remove");
		c->count = k;
		(*i)++;
		return 0;
	}
	if (scn_tok_is(t, "managers")) {
		c->kind = SCN_COND_MANAGERS_SYNC;
		rv = scn_keyword(p, from, i, "in", "'in'");
		return rv ? rv : scn_keyword(p, from, i, "sync", "'sync'");
	}
	if (scn_tok_is(t, "refused")) {
		c->kind = SCN_COND_REFUSED;
		rv = scn_on_node(p, from, i, c);
		return rv ? rv : scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "network")) {
		/* issue 17: network keys newest OP N */
		c->kind = SCN_COND_NET_KEYS;
		rv = scn_keyword(p, from, i, "keys", "'keys'");
		if (!rv)
			rv = scn_keyword(p, from, i, "newest", "'newest'");
		return rv ? rv : scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "term")) {
		c->kind = SCN_COND_TERM;
		return scn_op_count(p, from, i, c);
	}
	if (scn_tok_is(t, "ca")) {
		c->kind = SCN_COND_CA_ROTATED;
		return scn_keyword(p, from, i, "rotated", "'rotated'");
	}
	if (scn_tok_is(t, "service")) {
		c->kind = SCN_COND_SERVICE;
		rv = scn_name_at(p, from, *i, "a service name", SCN_NAME_EXTRA,
				 &c->service);
		if (rv)
			return rv;
		(*i)++;
		if (*i < p->tok_count && scn_tok_is(p->toks[*i], "exists"))
			c->exists = true;
		else if (*i < p->tok_count && scn_tok_is(p->toks[*i], "completed"))
			c->kind = SCN_COND_JOB_COMPLETED; /* a job's run is done */
		else if (*i + 1 < p->tok_count && scn_tok_is(p->toks[*i], "publishes")) {
			/* issue 15: service NAME publishes PORT */
			uint32_t port;
			c->kind = SCN_COND_PUBLISHES;
			if (!scn_port_num(p->toks[*i + 1], false, &port))
				return scn_expected(p, from, *i + 1, "a port (1-65535)");
			c->count = port;
			(*i)++;
		} else if (*i >= p->tok_count || !scn_tok_is(p->toks[*i], "absent"))
			return scn_expected(p, from, *i, "exists, absent or completed");
		(*i)++;
		return 0;
	}
	return scn_fail(p, t.col,
			"unknown condition '%.*s' (expected " SCN_CONDS_TEXT ")",
			SCN_TOK_ARG(t));
}

/* expect COND [within DUR] | always COND | await COND within DUR (an
 * addition: waits until COND holds or DUR passes, and never fails; what
 * `swarmsim explore` turns a scenario's timed expects into) */
static int scn_parse_expect(struct scn_parser *p, struct scn_cmd *cmd)
{
	bool always = scn_tok_is(p->toks[0], "always");
	bool await = scn_tok_is(p->toks[0], "await");
	uint32_t i = 1;
	int rv;

	cmd->kind = always ? SCN_ALWAYS : await ? SCN_AWAIT : SCN_EXPECT;
	scn_lex(p, SCN_LEX_COND);
	rv = scn_cond(p, &i, &cmd->u.expect.cond);
	if (rv)
		return rv;
	if (i < p->tok_count && scn_tok_is(p->toks[i], "within")) {
		if (always)
			return scn_fail(
				p, p->toks[i].col,
				"'within' cannot follow always (always COND must hold after "
				"every event; use expect COND within DUR)");
		if (i + 1 >= p->tok_count)
			return scn_expected(p, 1, i + 1, "a duration");
		rv = scn_duration(p, p->toks[i + 1], &cmd->u.expect.within_ms);
		if (rv)
			return rv;
		cmd->u.expect.has_within = true;
		i += 2;
	}
	if (await && !cmd->u.expect.has_within)
		return scn_expected(p, 0, i,
				    "'within DUR' (await waits at most that long)");
	if (!always && i < p->tok_count)
		return scn_expected(p, 0, i, "'within DUR' or end of line");
	return scn_end(p, i);
}

/* ---------------------------------------------------------------- network */

/* A node named in a partition, where, and in which group. */
struct scn_named {
	struct scn_node node;
	uint32_t col;
	uint32_t group;
};

#define SCN_WHAT_GROUP "a group (node names or *)"

/* Copies the nodes of each group out of named[0..count) into part. */
static int scn_partition_fill(struct scn_parser *p, struct scn_partition *part,
			      const struct scn_named *named, uint32_t count)
{
	for (size_t g = 0; g < part->group_count; g++) {
		struct scn_group *grp = &part->groups[g];
		size_t n = 0;

		for (uint32_t k = 0; k < count; k++)
			n += named[k].group == g;
		assert(grp->star ? n == 0 : n > 0);
		if (n == 0)
			continue;
		grp->nodes = malloc(n * sizeof *grp->nodes);
		if (!grp->nodes)
			return scn_nomem(p);
		for (uint32_t k = 0; k < count; k++)
			if (named[k].group == g)
				grp->nodes[grp->node_count++] = named[k].node;
		assert(grp->node_count == n);
	}
	return 0;
}

/* partition G1 | G2 [| G3 ...]: a group is node names (separated by blanks
 * or commas) or `*`, every node not named elsewhere. */
static int scn_parse_partition(struct scn_parser *p, struct scn_cmd *cmd)
{
	struct scn_partition *part = &cmd->u.partition;
	struct scn_named *named;
	uint32_t named_count = 0, group = 0, group_size = 0, star_col = 0;
	int rv = 0;

	cmd->kind = SCN_PARTITION;
	scn_lex(p, SCN_LEX_GROUPS);
	named = malloc(p->tok_count * sizeof *named);
	if (!named)
		return scn_nomem(p);
	for (uint32_t i = 1; i < p->tok_count; i++) {
		struct scn_tok t = p->toks[i];
		struct scn_node node;
		char name[32];

		if (scn_tok_is(t, "|")) {
			if (group_size == 0) {
				rv = scn_expected(p, 0, i, SCN_WHAT_GROUP);
				break;
			}
			if (group + 1 == LIMIT_SCN_GROUPS_MAX) {
				rv = scn_fail(
					p, t.col,
					"more than %u groups (LIMIT_SCN_GROUPS_MAX)",
					LIMIT_SCN_GROUPS_MAX);
				break;
			}
			group++;
			group_size = 0;
			continue;
		}
		if (scn_tok_is(t, "*") || part->groups[group].star) {
			if (group_size > 0) {
				rv = scn_fail(p, t.col,
					      "'*' must be a group of its own (separate "
					      "groups with '|')");
				break;
			}
			if (star_col) {
				rv = scn_fail(
					p, t.col,
					"second '*' group (the first is at column %" PRIu32
					")",
					star_col);
				break;
			}
			star_col = t.col;
			part->groups[group].star = true;
			group_size++;
			continue;
		}
		rv = scn_node_at(p, 0, i, SCN_WHAT_NODE " or *", true, &node);
		for (uint32_t k = 0; k < named_count && !rv; k++) {
			if (!scn_node_same(named[k].node, node))
				continue;
			scn_node_name(node, name, sizeof name);
			if (named[k].group == group)
				rv = scn_fail(
					p, t.col,
					"node %s is named twice in one group (first at column %" PRIu32
					")",
					name, named[k].col);
			else
				rv = scn_fail(
					p, t.col,
					"node %s is in two groups (first at column %" PRIu32
					")",
					name, named[k].col);
		}
		if (rv)
			break;
		assert(named_count < p->tok_count);
		named[named_count++] = (struct scn_named){node, t.col, group};
		group_size++;
	}
	if (rv)
		goto out_named;
	if (group_size == 0) {
		rv = scn_expected(p, 0, p->tok_count, SCN_WHAT_GROUP);
		goto out_named;
	}
	part->group_count = group + 1;
	if (part->group_count < 2) {
		rv = scn_fail(
			p, p->toks[0].col,
			"partition needs at least two groups separated by '|', got one");
		goto out_named;
	}
	rv = scn_partition_fill(p, part, named, named_count);
out_named:
	free(named);
	return rv;
}

/* isolate NODE: the same as partition NODE | * */
static int scn_parse_isolate(struct scn_parser *p, struct scn_cmd *cmd)
{
	struct scn_partition *part = &cmd->u.partition;
	struct scn_node node;
	int rv;

	cmd->kind = SCN_ISOLATE;
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &node);
	if (!rv)
		rv = scn_end(p, 2);
	if (rv)
		return rv;
	part->groups[0].nodes = malloc(sizeof *part->groups[0].nodes);
	if (!part->groups[0].nodes)
		return scn_nomem(p);
	part->groups[0].nodes[0] = node;
	part->groups[0].node_count = 1;
	part->groups[1].star = true;
	part->group_count = 2;
	return 0;
}

enum scn_link_key {
	SCN_LK_LOSS = 1u << 0,
	SCN_LK_DELAY = 1u << 1,
	SCN_LK_DUP = 1u << 2,
	SCN_LK_REORDER = 1u << 3,
};

/* link A B [KEY=VALUE...] | link A -> B [KEY=VALUE...] */
static int scn_parse_link(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"loss", SCN_LK_LOSS, false},
		{"delay", SCN_LK_DELAY, false},
		{"dup", SCN_LK_DUP, false},
		{"reorder", SCN_LK_REORDER, false},
	};
	struct scn_link *l = &cmd->u.link;
	struct scn_seen seen = {0};
	uint32_t i = 2;
	int rv;

	cmd->kind = SCN_LINK;
	scn_lex(p, SCN_LEX_LINK);
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &l->a);
	if (rv)
		return rv;
	if (i < p->tok_count && scn_tok_is(p->toks[i], "->")) {
		l->one_way = true;
		i++;
	}
	rv = scn_node_at(p, 0, i, l->one_way ? SCN_WHAT_NODE : SCN_WHAT_NODE " or '->'",
			 true, &l->b);
	if (rv)
		return rv;
	if (scn_node_same(l->a, l->b))
		return scn_fail(p, p->toks[i].col,
				"link needs two different nodes, got %.*s twice",
				SCN_TOK_ARG(p->toks[i]));
	for (i++; i < p->tok_count; i++) {
		struct scn_kv kv;

		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "link", &seen,
				 &kv);
		if (rv)
			return rv;
		switch ((enum scn_link_key)kv.key->bit) {
		case SCN_LK_LOSS:
			l->has_loss = true;
			rv = scn_ppm(p, kv.value, "probability", &l->loss_ppm);
			break;
		case SCN_LK_DELAY:
			l->has_delay = true;
			rv = scn_range(p, kv.value, &l->delay);
			break;
		case SCN_LK_DUP:
			l->has_dup = true;
			rv = scn_ppm(p, kv.value, "probability", &l->dup_ppm);
			break;
		case SCN_LK_REORDER:
			l->has_reorder = true;
			rv = scn_ppm(p, kv.value, "probability", &l->reorder_ppm);
			break;
		}
		if (rv)
			return rv;
	}
	return 0;
}

/* ---------------------------------------------------------------- commands */

enum scn_cluster_key {
	SCN_CK_MANAGERS = 1u << 0,
	SCN_CK_WORKERS = 1u << 1,
	SCN_CK_CPUS = 1u << 2,
	SCN_CK_MEMORY = 1u << 3,
};

/* cluster [managers=N] [workers=N] [cpus=C] [memory=M]: once, before every
 * command but seed and set. Defaults: 1 manager, 0 workers, 4 cpus, 8G. */
static int scn_parse_cluster(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"managers", SCN_CK_MANAGERS, false},
		{"workers", SCN_CK_WORKERS, false},
		{"cpus", SCN_CK_CPUS, false},
		{"memory", SCN_CK_MEMORY, false},
	};
	struct scn_cluster *c = &cmd->u.cluster;
	struct scn_seen seen = {0};
	uint64_t managers = 1, workers = 0;
	uint32_t workers_col = 0;
	int rv = 0;

	cmd->kind = SCN_CLUSTER;
	if (p->cluster_line)
		return scn_fail(p, p->toks[0].col,
				"second 'cluster' (the first is at line %" PRIu32 ")",
				p->cluster_line);
	c->millicpus = 4000;
	c->memory_bytes = 8ull << 30;
	for (uint32_t i = 1; i < p->tok_count && !rv; i++) {
		struct scn_kv kv;

		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "cluster", &seen,
				 &kv);
		if (rv)
			return rv;
		switch ((enum scn_cluster_key)kv.key->bit) {
		case SCN_CK_MANAGERS:
			rv = scn_uint(p, kv.value, "managers", LIMIT_MANAGERS_MAX,
				      "LIMIT_MANAGERS_MAX", &managers);
			if (!rv && managers == 0)
				rv = scn_fail(
					p, kv.value.col,
					"managers must be at least 1 (a cluster needs a manager)");
			break;
		case SCN_CK_WORKERS:
			workers_col = kv.value.col;
			rv = scn_uint(p, kv.value, "workers", LIMIT_NODES_MAX,
				      "LIMIT_NODES_MAX", &workers);
			break;
		case SCN_CK_CPUS:
			rv = scn_millicpus(p, kv.value, "cpus", &c->millicpus);
			if (!rv && c->millicpus == 0)
				rv = scn_fail(p, kv.value.col,
					      "cpus must be more than 0");
			break;
		case SCN_CK_MEMORY:
			rv = scn_size(p, kv.value, &c->memory_bytes);
			if (!rv && c->memory_bytes == 0)
				rv = scn_fail(p, kv.value.col,
					      "memory must be more than 0");
			break;
		}
	}
	if (rv)
		return rv;
	if (managers + workers > LIMIT_NODES_MAX)
		return scn_fail(p, workers_col,
				"cluster of %" PRIu64
				" nodes is over the limit of %u (LIMIT_NODES_MAX)",
				managers + workers, LIMIT_NODES_MAX);
	c->managers = (uint32_t)managers;
	c->workers = (uint32_t)workers;
	p->cluster_line = p->line_no;
	p->managers = c->managers;
	p->workers = c->workers;
	p->script->managers_total = p->managers;
	p->script->workers_total = p->workers;
	return 0;
}

/* seed N: once; N is any 64-bit unsigned number. */
static int scn_parse_seed(struct scn_parser *p, struct scn_cmd *cmd)
{
	int rv;

	cmd->kind = SCN_SEED;
	if (p->seed_line)
		return scn_fail(p, p->toks[0].col,
				"second 'seed' (the first is at line %" PRIu32 ")",
				p->seed_line);
	if (p->tok_count < 2)
		return scn_expected(p, 0, 1, "a seed (a whole number)");
	rv = scn_uint(p, p->toks[1], "seed", UINT64_MAX, NULL, &cmd->u.seed);
	if (!rv)
		rv = scn_end(p, 2);
	if (rv)
		return rv;
	p->seed_line = p->line_no;
	p->script->has_seed = true;
	p->script->seed = cmd->u.seed;
	return 0;
}

/* set KEY=VALUE...: at least one. */
static int scn_parse_set(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"heartbeat", SCN_SET_HEARTBEAT, false},
		{"election-ticks", SCN_SET_ELECTION_TICKS, false},
		{"tick", SCN_SET_TICK, false},
		{"history", SCN_SET_HISTORY, false},
		{"snapshot-every", SCN_SET_SNAPSHOT_EVERY, false},
		{"cert-expiry", SCN_SET_CERT_EXPIRY, false},
		{"orphan-delay", SCN_SET_ORPHAN_DELAY, false},
		{"network-key-rotation", SCN_SET_NET_KEY_ROTATION, false},
	};
	struct scn_settings *s = &cmd->u.settings;
	struct scn_seen seen = {0};
	int rv = 0;

	cmd->kind = SCN_SET;
	if (p->tok_count < 2)
		return scn_expected(
			p, 0, 1,
			"KEY=VALUE (heartbeat, election-ticks, tick, history, snapshot-every, "
			"cert-expiry, orphan-delay, network-key-rotation)");
	for (uint32_t i = 1; i < p->tok_count; i++) {
		struct scn_kv kv;

		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "set", &seen, &kv);
		if (rv)
			return rv;
		/* Raft's timing is read when the managers start: right after
		 * `cluster`, before anything runs, it is theirs from the start
		 * (the runner reads it at `cluster`); once they run, a change
		 * would be half applied */
		if (p->acted_line && (kv.key->bit == SCN_SET_ELECTION_TICKS ||
				      kv.key->bit == SCN_SET_TICK))
			return scn_fail(p, p->toks[i].col,
					"%s is the managers' Raft timing: set it before "
					"line %u (the cluster runs from there)",
					kv.key->name, p->acted_line);
		switch ((enum scn_set_key)kv.key->bit) {
		case SCN_SET_HEARTBEAT:
			rv = scn_duration(p, kv.value, &s->heartbeat_ms);
			if (!rv && s->heartbeat_ms < LIMIT_HEARTBEAT_MS_MIN)
				rv = scn_fail(p, kv.value.col,
					      "heartbeat must be at least %llums "
					      "(LIMIT_HEARTBEAT_MS_MIN)",
					      (unsigned long long)LIMIT_HEARTBEAT_MS_MIN);
			break;
		case SCN_SET_ELECTION_TICKS:
			rv = scn_uint(p, kv.value, "election-ticks", UINT32_MAX, NULL,
				      &s->election_ticks);
			if (!rv && s->election_ticks == 0)
				rv = scn_fail(p, kv.value.col,
					      "election-ticks must be at least 1");
			break;
		case SCN_SET_TICK:
			rv = scn_duration(p, kv.value, &s->tick_ms);
			if (!rv && s->tick_ms == 0)
				rv = scn_fail(p, kv.value.col,
					      "tick must be more than 0");
			break;
		case SCN_SET_HISTORY:
			rv = scn_uint(p, kv.value, "history", UINT32_MAX, NULL,
				      &s->history);
			break;
		case SCN_SET_SNAPSHOT_EVERY:
			rv = scn_uint(p, kv.value, "snapshot-every", UINT64_MAX, NULL,
				      &s->snapshot_every);
			break;
		case SCN_SET_CERT_EXPIRY:
			rv = scn_duration(p, kv.value, &s->cert_expiry_ms);
			if (!rv && s->cert_expiry_ms < LIMIT_CERT_LIFE_MS_MIN)
				rv = scn_fail(p, kv.value.col,
					      "cert-expiry must be at least 1m");
			break;
		case SCN_SET_NET_KEY_ROTATION:
			rv = scn_duration(p, kv.value, &s->net_key_rotation_ms);
			if (!rv && s->net_key_rotation_ms < LIMIT_NET_KEY_ROTATION_MS_MIN)
				rv = scn_fail(p, kv.value.col,
					      "network-key-rotation must be at least 1m");
			if (!rv && !p->cluster_line)
				rv = scn_fail(p, kv.name.col,
					      "network-key-rotation is written to the "
					      "running cluster's record: set it after "
					      "'cluster'");
			break;
		case SCN_SET_ORPHAN_DELAY:
			rv = scn_duration(p, kv.value, &s->orphan_delay_ms);
			if (!rv && s->orphan_delay_ms < 1000)
				rv = scn_fail(p, kv.value.col,
					      "orphan-delay must be at least 1s");
			if (!rv && !p->cluster_line)
				rv = scn_fail(p, kv.name.col,
					      "orphan-delay is written to the running "
					      "cluster's record: set it after 'cluster'");
			break;
		}
		if (rv)
			return rv;
		s->set |= kv.key->bit;
		if ((s->set & SCN_SET_NET_KEY_ROTATION) &&
		    (s->set & ~(uint32_t)SCN_SET_NET_KEY_ROTATION))
			return scn_fail(p, kv.name.col,
					"network-key-rotation: a set command of its own "
					"(its own control API call)");
		if ((s->set & SCN_SET_ORPHAN_DELAY) && (s->set & SCN_SET_CERT_EXPIRY))
			return scn_fail(p, kv.name.col,
					"orphan-delay and cert-expiry: one set command "
					"each (each is its own control API call)");
	}
	return 0;
}

/* run DUR */
static int scn_parse_run(struct scn_parser *p, struct scn_cmd *cmd)
{
	int rv;

	cmd->kind = SCN_RUN;
	if (p->tok_count < 2)
		return scn_expected(p, 0, 1, "a duration");
	rv = scn_duration(p, p->toks[1], &cmd->u.run_ms);
	return rv ? rv : scn_end(p, 2);
}

static void scn_node_desc_free(struct scn_node_desc *d)
{
	if (!d)
		return;
	free(d->os);
	free(d->arch);
	free(d->ip);
	for (size_t i = 0; i < d->engine_label_count; i++) {
		free(d->engine_keys[i]);
		free(d->engine_values[i]);
	}
	free(d);
}

/* Reads node add's description, tokens from..end: os=OS, arch=ARCH,
 * ip=ADDR (an IPv4 or IPv6 address), engine-label=KEY=VALUE (repeated).
 * Sets *out (owned by the command) when there is any. */
static int scn_node_desc(struct scn_parser *p, uint32_t from, struct scn_node_desc **out)
{
	struct scn_node_desc *d;
	int rv = 0;

	if (from >= p->tok_count)
		return 0;
	d = calloc(1, sizeof *d);
	if (!d)
		return scn_nomem(p);
	for (uint32_t i = from; i < p->tok_count && rv == 0; i++) {
		struct scn_tok t = p->toks[i];
		if (scn_tok_has_prefix(t, "os=") && !d->os) {
			rv = scn_value_name(p, scn_tok_tail(t, 3), "os", SCN_NAME_EXTRA,
					    &d->os);
		} else if (scn_tok_has_prefix(t, "arch=") && !d->arch) {
			rv = scn_value_name(p, scn_tok_tail(t, 5), "arch", SCN_NAME_EXTRA,
					    &d->arch);
		} else if (scn_tok_has_prefix(t, "ip=") && !d->ip) {
			struct scn_tok v = scn_tok_tail(t, 3);
			if (!sched_ip_is_valid(v.s, v.len))
				rv = scn_fail(p, v.col,
					      "bad ip '%.*s' (expected an IPv4 or IPv6 "
					      "address, like 10.0.1.5)",
					      SCN_TOK_ARG(v));
			else if (!(d->ip = scn_tok_dup(v)))
				rv = scn_nomem(p);
		} else if (scn_tok_has_prefix(t, "engine-label=")) {
			struct scn_tok kv = scn_tok_tail(t, 13);
			const char *eq = memchr(kv.s, '=', kv.len);
			size_t n = d->engine_label_count;
			if (!eq || eq == kv.s)
				rv = scn_fail(p, kv.col,
					      "bad engine-label '%.*s' (expected "
					      "KEY=VALUE)",
					      SCN_TOK_ARG(kv));
			else if (n == LIMIT_ENGINE_LABELS_MAX)
				rv = scn_fail(p, t.col,
					      "more than %u engine labels "
					      "(LIMIT_ENGINE_LABELS_MAX)",
					      LIMIT_ENGINE_LABELS_MAX);
			else if ((size_t)(kv.len - (eq - kv.s) - 1) >
				 LIMIT_LABEL_BYTES_MAX)
				rv = scn_fail(p, t.col,
					      "engine label value is longer than %u "
					      "bytes (LIMIT_LABEL_BYTES_MAX)",
					      LIMIT_LABEL_BYTES_MAX);
			else if ((rv = scn_value_name(
					  p, scn_tok_head(kv, (uint32_t)(eq - kv.s)),
					  "engine label key", SCN_NAME_EXTRA,
					  &d->engine_keys[n])) == 0) {
				d->engine_values[n] = scn_tok_dup(
					scn_tok_tail(kv, (uint32_t)(eq - kv.s) + 1));
				d->engine_label_count++;
				if (!d->engine_values[n])
					rv = scn_nomem(p);
			}
		} else if (scn_tok_has_prefix(t, "os=") ||
			   scn_tok_has_prefix(t, "arch=") ||
			   scn_tok_has_prefix(t, "ip=")) {
			rv = scn_fail(p, t.col, "'%.*s' given twice", SCN_TOK_ARG(t));
		} else {
			rv = scn_end(p, i);
		}
	}
	if (rv) {
		scn_node_desc_free(d);
		return rv;
	}
	*out = d;
	return 0;
}

/* node add worker|manager (named next in sequence) | node rm|drain|pause|
 * activate|promote|demote NODE | node label NODE KEY=VALUE */
static int scn_parse_node(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct {
		const char *name;
		enum scn_cmd_kind kind;
	} subs[] = {
		{"add", SCN_NODE_ADD},		 {"rm", SCN_NODE_RM},
		{"drain", SCN_NODE_DRAIN},	 {"pause", SCN_NODE_PAUSE},
		{"activate", SCN_NODE_ACTIVATE}, {"label", SCN_NODE_LABEL},
		{"promote", SCN_NODE_PROMOTE},	 {"demote", SCN_NODE_DEMOTE},
	};
	const char *subs_text =
		"add, rm, drain, pause, activate, label, promote or demote";
	struct scn_tok t;
	const char *eq;
	size_t k;
	int rv;

	if (p->tok_count < 2)
		return scn_expected(p, 0, 1, subs_text);
	for (k = 0; k < SCN_COUNT(subs); k++)
		if (scn_tok_is(p->toks[1], subs[k].name))
			break;
	if (k == SCN_COUNT(subs))
		return scn_fail(p, p->toks[1].col,
				"unknown node command '%.*s' (expected %s)",
				SCN_TOK_ARG(p->toks[1]), subs_text);
	cmd->kind = subs[k].kind;
	if (cmd->kind == SCN_NODE_ADD) {
		uint32_t tok_end = 3;
		bool manager;

		if (p->tok_count >= 3 && scn_tok_is(p->toks[2], "stranger")) {
			if (p->managers + p->workers + p->strangers >= LIMIT_NODES_MAX)
				return scn_fail(p, p->toks[2].col,
						"node add would make over %u nodes "
						"(LIMIT_NODES_MAX)",
						LIMIT_NODES_MAX);
			rv = scn_end(p, 3);
			if (rv)
				return rv;
			p->strangers++;
			cmd->u.node.added =
				(struct scn_node){SCN_NODE_STRANGER, p->strangers};
			p->script->strangers_total = p->strangers;
			return 0;
		}
		if (p->tok_count < 3 || !(scn_tok_is(p->toks[2], "worker") ||
					  scn_tok_is(p->toks[2], "manager")))
			return scn_expected(p, 0, 2, "worker or manager");
		manager = scn_tok_is(p->toks[2], "manager");
		if (manager && p->tok_count >= 4 &&
		    scn_tok_is(p->toks[3], "from-backup")) {
			/* issue 20: a new machine restores the last backup */
			cmd->u.node.from_backup = true;
			tok_end = 4;
		} else if (p->tok_count >= 4 &&
			   scn_tok_has_prefix(p->toks[3], "token=")) {
			if (scn_tok_is(p->toks[3], "token=initial"))
				cmd->u.node.initial_token = true;
			else if (!scn_tok_is(p->toks[3], "token=current"))
				return scn_fail(
					p, p->toks[3].col + 6,
					"unknown token '%.*s' (expected initial or "
					"current)",
					SCN_TOK_ARG(scn_tok_tail(p->toks[3], 6)));
			tok_end = 4;
		}
		if (manager && p->managers == LIMIT_MANAGERS_MAX)
			return scn_fail(
				p, p->toks[2].col,
				"node add manager would make m%u, over the limit of %u "
				"managers (LIMIT_MANAGERS_MAX)",
				LIMIT_MANAGERS_MAX + 1, LIMIT_MANAGERS_MAX);
		if (p->managers + p->workers == LIMIT_NODES_MAX)
			return scn_fail(
				p, p->toks[2].col,
				"node add would make %u nodes, over the limit of %u "
				"(LIMIT_NODES_MAX)",
				LIMIT_NODES_MAX + 1, LIMIT_NODES_MAX);
		rv = scn_node_desc(p, tok_end, &cmd->u.node.desc);
		if (rv)
			return rv;
		if (manager)
			p->managers++;
		else
			p->workers++;
		cmd->u.add_manager = manager;
		cmd->u.node.added = (struct scn_node){
			manager ? SCN_NODE_MANAGER : SCN_NODE_WORKER,
			manager ? p->managers : p->workers,
		};
		p->script->managers_total = p->managers;
		p->script->workers_total = p->workers;
		return 0;
	}
	rv = scn_node_at(p, 0, 2, SCN_WHAT_NODE, true, &cmd->u.node.node);
	if (rv)
		return rv;
	if (cmd->kind != SCN_NODE_LABEL)
		return scn_end(p, 3);
	if (p->tok_count < 4 || !(eq = memchr(p->toks[3].s, '=', p->toks[3].len)) ||
	    eq == p->toks[3].s)
		return scn_expected(p, 0, 3, "KEY=VALUE");
	t = scn_tok_head(p->toks[3], (uint32_t)(eq - p->toks[3].s));
	rv = scn_value_name(p, t, "label key", SCN_NAME_EXTRA, &cmd->u.node.label_key);
	if (rv)
		return rv;
	t = scn_tok_tail(p->toks[3], t.len + 1);
	if (t.len > LIMIT_LABEL_BYTES_MAX)
		return scn_fail(
			p, t.col,
			"label value is longer than %u bytes (LIMIT_LABEL_BYTES_MAX)",
			LIMIT_LABEL_BYTES_MAX);
	cmd->u.node.label_value = scn_tok_dup(t);
	if (!cmd->u.node.label_value)
		return scn_nomem(p);
	return scn_end(p, 4);
}

/* kill NODE [process|disk] */
static int scn_parse_kill(struct scn_parser *p, struct scn_cmd *cmd)
{
	int rv;

	cmd->kind = SCN_KILL;
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &cmd->u.node.node);
	if (rv)
		return rv;
	if (p->tok_count > 2) {
		if (scn_tok_is(p->toks[2], "process"))
			cmd->u.node.process_only = true;
		else if (scn_tok_is(p->toks[2], "disk"))
			cmd->u.node.disk_lost = true;
		else
			return scn_expected(p, 0, 2, "'process', 'disk' or end of line");
	}
	return scn_end(p, 3);
}

/* restart NODE [force-new-cluster | refused] */
static int scn_parse_restart(struct scn_parser *p, struct scn_cmd *cmd)
{
	int rv;

	cmd->kind = SCN_RESTART;
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &cmd->u.node.node);
	if (rv)
		return rv;
	if (p->tok_count > 2) {
		if (scn_tok_is(p->toks[2], "refused"))
			cmd->u.node.refused = true;
		else if (scn_tok_is(p->toks[2], "force-new-cluster"))
			cmd->u.node.force_new_cluster = true;
		else
			return scn_expected(
				p, 0, 2, "'force-new-cluster', 'refused' or end of line");
	}
	return scn_end(p, 3);
}

/* heal */
static int scn_parse_heal(struct scn_parser *p, struct scn_cmd *cmd)
{
	cmd->kind = SCN_HEAL;
	return scn_end(p, 1);
}

enum scn_image_key {
	SCN_IK_PULL = 1u << 0,
	SCN_IK_START = 1u << 1,
	SCN_IK_EXIT = 1u << 2,
	SCN_IK_AFTER = 1u << 3,
	SCN_IK_STOP = 1u << 4,
	SCN_IK_HEALTHY_AFTER = 1u << 5,
	SCN_IK_UNHEALTHY_AFTER = 1u << 6,
};

/* image NAME [pull=fail] [start=D[..D]|start=fail] [exit=CODE after=D[..D]]
 * [stop=ignore] [healthy-after=D[..D]] [unhealthy-after=D[..D]] */
static int scn_parse_image(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"pull", SCN_IK_PULL, false},
		{"start", SCN_IK_START, false},
		{"exit", SCN_IK_EXIT, false},
		{"after", SCN_IK_AFTER, false},
		{"stop", SCN_IK_STOP, false},
		{"healthy-after", SCN_IK_HEALTHY_AFTER, false},
		{"unhealthy-after", SCN_IK_UNHEALTHY_AFTER, false},
	};
	static const char *const pulls[] = {"fail"};
	static const char *const stops[] = {"ignore"};
	struct scn_image *img = &cmd->u.image;
	struct scn_seen seen = {0};
	uint32_t exit_col = 0, after_col = 0;
	uint64_t code = 0;
	int index = 0, rv;

	cmd->kind = SCN_IMAGE;
	rv = scn_name_at(p, 0, 1, "an image name", SCN_IMAGE_EXTRA, &img->name);
	if (rv)
		return rv;
	for (uint32_t i = 2; i < p->tok_count; i++) {
		struct scn_kv kv;

		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "image", &seen,
				 &kv);
		if (rv)
			return rv;
		switch ((enum scn_image_key)kv.key->bit) {
		case SCN_IK_PULL:
			rv = scn_choice(p, kv.value, "pull", pulls, SCN_COUNT(pulls),
					&index);
			img->pull_fail = true;
			break;
		case SCN_IK_START:
			if (scn_tok_is(kv.value, "fail")) {
				img->start_fail = true;
				break;
			}
			if (scn_is_alnum(kv.value.s[0]) && !scn_is_digit(kv.value.s[0])) {
				rv = scn_fail(
					p, kv.value.col,
					"bad start '%.*s' (expected fail, or a duration "
					"D[..D] like 100ms..1s)",
					SCN_TOK_ARG(kv.value));
				break;
			}
			img->has_start = true;
			rv = scn_range(p, kv.value, &img->start);
			break;
		case SCN_IK_STOP:
			rv = scn_choice(p, kv.value, "stop", stops, SCN_COUNT(stops),
					&index);
			img->stop_ignore = true;
			break;
		case SCN_IK_EXIT:
			exit_col = kv.name.col;
			img->has_exit = true;
			rv = scn_uint(p, kv.value, "exit code", 255, NULL, &code);
			img->exit_code = (int32_t)code;
			break;
		case SCN_IK_AFTER:
			after_col = kv.name.col;
			rv = scn_range(p, kv.value, &img->exit_after);
			break;
		case SCN_IK_HEALTHY_AFTER:
			img->has_healthy_after = true;
			rv = scn_range(p, kv.value, &img->healthy_after);
			break;
		case SCN_IK_UNHEALTHY_AFTER:
			img->has_unhealthy_after = true;
			rv = scn_range(p, kv.value, &img->unhealthy_after);
			break;
		}
		if (rv)
			return rv;
	}
	if (exit_col && !after_col)
		return scn_fail(p, exit_col,
				"exit= needs after=D (when the container exits)");
	if (after_col && !exit_col)
		return scn_fail(p, after_col,
				"after= needs exit=CODE (the code it exits with)");
	return 0;
}

/* ---------------------------------------------------------------- faults */

/* Reads v as a comma list of runtime call kinds, or `all`, into *ops. */
static int scn_runtime_ops(struct scn_parser *p, struct scn_tok v, uint32_t *ops)
{
	static const char *const names[] = {"prepare", "start", "wait", "stop",
					    "remove",  "list",	"all"};
	static const uint32_t bits[] = {
		SCN_RT_OP_PREPARE, SCN_RT_OP_START, SCN_RT_OP_WAIT, SCN_RT_OP_STOP,
		SCN_RT_OP_REMOVE,  SCN_RT_OP_LIST,  SCN_RT_OP_ALL};
	_Static_assert(SCN_COUNT(names) == SCN_COUNT(bits), "a bit per name");
	uint32_t from = 0;

	*ops = 0;
	while (from <= v.len) {
		uint32_t to = from;
		struct scn_tok item;
		size_t k;
		char list[128];

		while (to < v.len && v.s[to] != ',')
			to++;
		item = scn_tok_head(scn_tok_tail(v, from), to - from);
		if (item.len == 0)
			return scn_fail(
				p, v.col + from,
				"missing call kind in fail='%.*s' (expected a comma "
				"list of prepare, start, wait, stop, remove, list, or all)",
				SCN_TOK_ARG(v));
		for (k = 0; k < SCN_COUNT(names); k++)
			if (scn_tok_is(item, names[k]))
				break;
		if (k == SCN_COUNT(names)) {
			scn_join(names, SCN_COUNT(names), " or ", list, sizeof list);
			return scn_fail(p, item.col, "bad call kind '%.*s' (expected %s)",
					SCN_TOK_ARG(item), list);
		}
		if (bits[k] == SCN_RT_OP_ALL && (*ops || to < v.len))
			return scn_fail(p, item.col,
					"'all' stands alone (it names every call kind)");
		if (*ops == SCN_RT_OP_ALL)
			return scn_fail(p, item.col,
					"'all' stands alone (it names every call kind)");
		if (*ops & bits[k])
			return scn_fail(p, item.col, "call kind '%.*s' given twice",
					SCN_TOK_ARG(item));
		*ops |= bits[k];
		from = to + 1;
	}
	assert(*ops != 0);
	return 0;
}

/* Reads a for= value: a duration of at least 1ms. */
static int scn_for(struct scn_parser *p, struct scn_tok v, uint64_t *ms)
{
	int rv = scn_duration(p, v, ms);
	if (!rv && *ms == 0)
		return scn_fail(
			p, v.col,
			"for=0 ends the fault before it begins (expected a duration "
			"of 1ms or more, or no for= to hold it until ok)");
	return rv;
}

enum scn_runtime_key {
	SCN_RK_FAIL = 1u << 0,
	SCN_RK_FOR = 1u << 1,
	SCN_RK_CONTAINERS = 1u << 2,
	SCN_RK_DOWN = 1u << 3,
};

/* runtime NODE fail=OPS [for=DUR] | runtime NODE restart [containers=keep|lose]
 * [down=DUR] | runtime NODE ok */
static int scn_parse_runtime(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key fail_keys[] = {
		{"fail", SCN_RK_FAIL, false},
		{"for", SCN_RK_FOR, false},
	};
	static const struct scn_key restart_keys[] = {
		{"containers", SCN_RK_CONTAINERS, false},
		{"down", SCN_RK_DOWN, false},
	};
	static const char *const keeps[] = {"keep", "lose"};
	struct scn_runtime *rt = &cmd->u.runtime;
	struct scn_seen seen = {0};
	const struct scn_key *keys = fail_keys;
	size_t key_count = SCN_COUNT(fail_keys);
	const char *what = "runtime fail";
	uint32_t i = 2;
	int index = 0, rv;

	cmd->kind = SCN_RUNTIME;
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &rt->node);
	if (rv)
		return rv;
	if (i + 1 == p->tok_count && scn_tok_has_prefix(p->toks[i], "dataplane=")) {
		struct scn_tok v = scn_tok_tail(p->toks[i], 10);
		if (!scn_tok_is(v, "none") && !scn_tok_is(v, "present"))
			return scn_fail(p, p->toks[i].col,
					"runtime dataplane: expected dataplane=none or "
					"dataplane=present, got '%.*s'",
					SCN_TOK_ARG(p->toks[i]));
		rt->action = SCN_RT_DATAPLANE;
		rt->data_plane = scn_tok_is(v, "present");
		return 0;
	}
	if (i + 1 == p->tok_count && scn_tok_is(p->toks[i], "unbind")) {
		rt->action = SCN_RT_UNBIND;
		return 0;
	}
	if (i + 1 == p->tok_count && scn_tok_has_prefix(p->toks[i], "bind=")) {
		/* bind=PORT[/tcp|udp|sctp] */
		struct scn_tok v = scn_tok_tail(p->toks[i], 5);
		const char *slash = memchr(v.s, '/', v.len);
		uint32_t end = slash ? (uint32_t)(slash - v.s) : v.len;
		bool ok = scn_port_num(scn_tok_head(v, end), false, &rt->bind_port);
		if (ok && slash) {
			struct scn_tok proto = scn_tok_tail(v, end + 1);
			if (scn_tok_is(proto, "udp"))
				rt->bind_proto = 1;
			else if (scn_tok_is(proto, "sctp"))
				rt->bind_proto = 2;
			else
				ok = scn_tok_is(proto, "tcp");
		}
		if (!ok)
			return scn_fail(p, p->toks[i].col,
					"runtime bind: expected bind=PORT[/tcp|udp|sctp] "
					"(PORT 1-65535), got '%.*s'",
					SCN_TOK_ARG(p->toks[i]));
		rt->action = SCN_RT_BIND;
		return 0;
	}
	if (i >= p->tok_count ||
	    !(scn_tok_is(p->toks[i], "ok") || scn_tok_is(p->toks[i], "restart") ||
	      scn_tok_has_prefix(p->toks[i], "fail=") ||
	      scn_tok_has_prefix(p->toks[i], "for=")))
		return scn_expected(p, 0, i, "fail=OPS, restart or ok");
	if (scn_tok_is(p->toks[i], "ok")) {
		rt->action = SCN_RT_OK;
		return scn_end(p, i + 1);
	}
	if (scn_tok_is(p->toks[i], "restart")) {
		rt->action = SCN_RT_RESTART;
		rt->down_ms = SCN_RT_DOWN_MS_DEFAULT;
		keys = restart_keys;
		key_count = SCN_COUNT(restart_keys);
		what = "runtime restart";
		i++;
	} else {
		rt->action = SCN_RT_FAIL;
	}
	for (; i < p->tok_count; i++) {
		struct scn_kv kv;

		rv = scn_kv_read(p, p->toks[i], keys, key_count, what, &seen, &kv);
		if (rv)
			return rv;
		switch ((enum scn_runtime_key)kv.key->bit) {
		case SCN_RK_FAIL: rv = scn_runtime_ops(p, kv.value, &rt->ops); break;
		case SCN_RK_FOR:
			rt->has_for = true;
			rv = scn_for(p, kv.value, &rt->for_ms);
			break;
		case SCN_RK_CONTAINERS:
			rv = scn_choice(p, kv.value, "containers", keeps,
					SCN_COUNT(keeps), &index);
			rt->lose = index == 1;
			break;
		case SCN_RK_DOWN: rv = scn_duration(p, kv.value, &rt->down_ms); break;
		}
		if (rv)
			return rv;
	}
	if (rt->action == SCN_RT_FAIL && rt->ops == 0)
		return scn_fail(p, p->toks[2].col,
				"runtime needs fail=OPS with for= (the calls that fail: "
				"prepare, start, wait, stop, remove, list, or all)");
	return 0;
}

enum scn_disk_key {
	SCN_DK_FAULT = 1u << 0,
	SCN_DK_ON = 1u << 1,
	SCN_DK_FOR = 1u << 2,
	SCN_DK_FILE = 1u << 3,
	SCN_DK_PAGES = 1u << 4,
	SCN_DK_TABLE = 1u << 5,
};

/* Copies the name value of disk's file= or table= into buf (of
 * LIMIT_NAME_BYTES_MAX + 1 bytes): a name of one file or table, no '/'.
 * Returns 0, or fails the line at the value with what (what the key
 * takes). */
static int scn_disk_name(struct scn_parser *p, struct scn_tok value, const char *what,
			 char *buf)
{
	if (value.len == 0 || value.len > LIMIT_NAME_BYTES_MAX ||
	    memchr(value.s, '/', value.len))
		return scn_fail(p, value.col, "%s", what);
	memcpy(buf, value.s, value.len);
	buf[value.len] = '\0';
	return 0;
}

/* The first (leftmost) of two columns, 0 standing for none. */
static uint32_t scn_col_first(uint32_t a, uint32_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

/* disk NODE fault=eio [on=write|sync|both] [for=DUR] | disk NODE fault=full
 * [for=DUR] | disk NODE fault=torn | disk NODE fault=corrupt [file=F
 * [table=T]] [pages=N] | disk NODE ok */
static int scn_parse_disk(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"fault", SCN_DK_FAULT, false}, {"on", SCN_DK_ON, false},
		{"for", SCN_DK_FOR, false},	{"file", SCN_DK_FILE, false},
		{"pages", SCN_DK_PAGES, false}, {"table", SCN_DK_TABLE, false},
	};
	static const char *const faults[] = {"eio", "full", "torn", "corrupt"};
	static const enum scn_disk_fault fault_of[] = {SCN_DISK_EIO, SCN_DISK_FULL,
						       SCN_DISK_TORN, SCN_DISK_CORRUPT};
	uint32_t file_col = 0, pages_col = 0, for_col = 0, table_col = 0;
	static const char *const ons[] = {"write", "sync", "both"};
	struct scn_disk *d = &cmd->u.disk;
	struct scn_seen seen = {0};
	uint32_t on_col = 0;
	int index = 0, rv;

	cmd->kind = SCN_DISK;
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &d->node);
	if (rv)
		return rv;
	if (p->tok_count <= 2 ||
	    !(scn_tok_is(p->toks[2], "ok") || memchr(p->toks[2].s, '=', p->toks[2].len)))
		return scn_expected(
			p, 0, 2,
			"fault=eio, fault=full, fault=torn, fault=corrupt or ok");
	if (scn_tok_is(p->toks[2], "ok")) {
		d->fault = SCN_DISK_OK;
		return scn_end(p, 3);
	}
	d->fault = SCN_DISK_EIO;
	d->on_write = d->on_sync = true;
	d->pages = 1;
	for (uint32_t i = 2; i < p->tok_count; i++) {
		struct scn_kv kv;

		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "disk", &seen,
				 &kv);
		if (rv)
			return rv;
		switch ((enum scn_disk_key)kv.key->bit) {
		case SCN_DK_FAULT:
			rv = scn_choice(p, kv.value, "fault", faults, SCN_COUNT(faults),
					&index);
			d->fault = fault_of[index];
			break;
		case SCN_DK_FILE:
			file_col = kv.name.col;
			rv = scn_disk_name(p, kv.value,
					   "file= takes a file name of the node's disk "
					   "(raft, agent, ...)",
					   d->file);
			break;
		case SCN_DK_TABLE:
			table_col = kv.name.col;
			rv = scn_disk_name(p, kv.value,
					   "table= takes an sqlite table or index name "
					   "of the file (raft_log, ...)",
					   d->table);
			break;
		case SCN_DK_PAGES: {
			uint64_t n = 0;
			pages_col = kv.name.col;
			for (uint32_t k = 0; k < kv.value.len; k++) {
				char ch = kv.value.s[k];
				if (ch < '0' || ch > '9' || n > 1000)
					return scn_fail(
						p, kv.value.col,
						"pages= takes a count from 1 to 1000");
				n = n * 10 + (uint64_t)(ch - '0');
			}
			if (n == 0 || n > 1000)
				return scn_fail(p, kv.value.col,
						"pages= takes a count from 1 to 1000");
			d->pages = (uint32_t)n;
			break;
		}
		case SCN_DK_ON:
			on_col = kv.name.col;
			rv = scn_choice(p, kv.value, "on", ons, SCN_COUNT(ons), &index);
			d->on_write = index != 1;
			d->on_sync = index != 0;
			break;
		case SCN_DK_FOR:
			for_col = kv.name.col;
			d->has_for = true;
			rv = scn_for(p, kv.value, &d->for_ms);
			break;
		}
		if (rv)
			return rv;
	}
	if (!(seen.bits & SCN_DK_FAULT))
		return scn_fail(p, p->toks[2].col,
				"disk needs fault=eio, fault=full, fault=torn or "
				"fault=corrupt (or ok)");
	if (on_col && d->fault != SCN_DISK_EIO)
		return scn_fail(
			p, on_col,
			"on= goes with fault=eio (a full disk fails the writes that "
			"grow a file)");
	if ((file_col || pages_col || table_col) && d->fault != SCN_DISK_CORRUPT)
		return scn_fail(
			p, scn_col_first(scn_col_first(file_col, pages_col), table_col),
			"file=, pages= and table= go with fault=corrupt");
	if (table_col && !file_col)
		return scn_fail(p, table_col,
				"table= needs file= (the sqlite file the table is in)");
	if (for_col && d->fault == SCN_DISK_CORRUPT)
		return scn_fail(p, for_col,
				"fault=corrupt flips bits at once: it takes no for=");
	return 0;
}

/* ---------------------------------------------------------------- identity */

static const char *const scn_cert_names[] = {
	[SCN_CERT_EXPIRE] = "expire",
	[SCN_CERT_FOREIGN] = "foreign",
	[SCN_CERT_OTHER_CLUSTER] = "other-cluster",
	[SCN_CERT_NONE] = "none",
};

static const char *const scn_forge_names[] = {
	[SCN_FORGE_RAFT_APPEND] = "raft-append",
	[SCN_FORGE_RAFT_VOTE] = "raft-vote",
	[SCN_FORGE_PROPOSAL] = "proposal",
	[SCN_FORGE_CONTROL] = "control",
	[SCN_FORGE_JOIN] = "join",
	[SCN_FORGE_SESSION] = "session",
	[SCN_FORGE_STATUS] = "status",
	[SCN_FORGE_CERT_REQUEST] = "cert-request",
	[SCN_FORGE_SESSION_RESPONSE] = "session-response",
	[SCN_FORGE_ASSIGNMENTS] = "assignments",
};
_Static_assert(SCN_COUNT(scn_forge_names) == SCN_FORGE_ASSIGNMENTS + 1,
	       "a name for every forged kind");

/* cert NODE expire|foreign|other-cluster|none */
static int scn_parse_cert(struct scn_parser *p, struct scn_cmd *cmd)
{
	char list[128];
	int rv;

	cmd->kind = SCN_CERT;
	rv = scn_node_at(p, 0, 1, SCN_WHAT_NODE, true, &cmd->u.cert.node);
	if (rv)
		return rv;
	scn_join(scn_cert_names, SCN_COUNT(scn_cert_names), " or ", list, sizeof list);
	if (p->tok_count < 3)
		return scn_expected(p, 0, 2, list);
	for (size_t k = 0; k < SCN_COUNT(scn_cert_names); k++) {
		if (scn_tok_is(p->toks[2], scn_cert_names[k])) {
			cmd->u.cert.kind = (enum scn_cert_kind)k;
			return scn_end(p, 3);
		}
	}
	return scn_fail(p, p->toks[2].col, "unknown certificate '%.*s' (expected %s)",
			SCN_TOK_ARG(p->toks[2]), list);
}

/* Reads token i as KEY=NODE (KEY= its prefix) into *node. */
static int scn_node_value(struct scn_parser *p, uint32_t i, const char *key,
			  struct scn_node *node)
{
	struct scn_tok v = scn_tok_tail(p->toks[i], (uint32_t)strlen(key));
	if (!scn_node_parse(v, node) || node->kind == SCN_NODE_LEADER ||
	    (node->kind == SCN_NODE_STRANGER && p->strangers == 0))
		return scn_fail(p, v.col,
				"expected a node (mN, wN or xN) after '%s', got '%.*s'",
				key, SCN_TOK_ARG(v));
	return scn_node_exists(p, v, *node);
}

/* forge SRC KIND to=DST [as=NODE] */
static int scn_parse_forge(struct scn_parser *p, struct scn_cmd *cmd)
{
	struct scn_forge *f = &cmd->u.forge;
	char list[256];
	size_t k;
	uint32_t i = 3;
	int rv;

	cmd->kind = SCN_FORGE;
	rv = scn_node_at(p, 0, 1, "a node (mN, wN, xN or leader)", true, &f->src);
	if (rv)
		return rv;
	scn_join(scn_forge_names, SCN_COUNT(scn_forge_names), " or ", list, sizeof list);
	if (p->tok_count < 3)
		return scn_expected(p, 0, 2, list);
	for (k = 0; k < SCN_COUNT(scn_forge_names); k++)
		if (scn_tok_is(p->toks[2], scn_forge_names[k]))
			break;
	if (k == SCN_COUNT(scn_forge_names))
		return scn_fail(p, p->toks[2].col,
				"unknown message kind '%.*s' (expected %s)",
				SCN_TOK_ARG(p->toks[2]), list);
	f->kind = (enum scn_forge_kind)k;
	if (i >= p->tok_count || !scn_tok_has_prefix(p->toks[i], "to="))
		return scn_expected(p, 0, i, "to=NODE");
	if (scn_tok_is(p->toks[i], "to=leader"))
		f->dst = (struct scn_node){SCN_NODE_LEADER, 0};
	else if ((rv = scn_node_value(p, i, "to=", &f->dst)) != 0)
		return rv;
	i++;
	if (i < p->tok_count && scn_tok_has_prefix(p->toks[i], "as=")) {
		rv = scn_node_value(p, i, "as=", &f->as);
		if (rv)
			return rv;
		f->has_as = true;
		i++;
	}
	if ((f->kind == SCN_FORGE_SESSION || f->kind == SCN_FORGE_STATUS ||
	     f->kind == SCN_FORGE_CERT_REQUEST) &&
	    !f->has_as)
		return scn_expected(p, 0, i, "as=NODE (the node the message names)");
	return scn_end(p, i);
}

/* ca rotate */
static int scn_parse_ca(struct scn_parser *p, struct scn_cmd *cmd)
{
	if (p->tok_count < 2 || !scn_tok_is(p->toks[1], "rotate"))
		return scn_expected(p, 0, 1, "rotate");
	cmd->kind = SCN_CA_ROTATE;
	return scn_end(p, 2);
}

/* ---------------------------------------------------------------- lines */

struct scn_verb {
	const char *name;
	int (*parse)(struct scn_parser *p, struct scn_cmd *cmd);
	bool before_cluster; /* may come before `cluster` */
};

/* network create NAME [subnet=CIDR] [driver=overlay|bridge|host] |
 * network rm NAME (issue 15) */
static int scn_parse_network(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"subnet", 1u << 0, false},
		{"driver", 1u << 1, false},
		{"encrypted", 1u << 2, false}, /* issue 17: yes|no */
	};
	struct scn_seen seen = {0};
	int rv;

	/* issue 17: network keys rotate */
	if (p->tok_count >= 2 && scn_tok_is(p->toks[1], "keys")) {
		cmd->kind = SCN_NETWORK_KEYS_ROTATE;
		if (p->tok_count < 3 || !scn_tok_is(p->toks[2], "rotate"))
			return scn_expected(p, 0, 2, "rotate");
		return scn_end(p, 3);
	}
	if (p->tok_count < 2 ||
	    (!scn_tok_is(p->toks[1], "create") && !scn_tok_is(p->toks[1], "rm")))
		return scn_expected(p, 0, 1, "create, rm or keys rotate");
	cmd->kind = scn_tok_is(p->toks[1], "rm") ? SCN_NETWORK_RM : SCN_NETWORK_CREATE;
	rv = scn_name_at(p, 0, 2, "a network name", SCN_NAME_EXTRA, &cmd->u.network.name);
	if (rv)
		return rv;
	if (cmd->kind == SCN_NETWORK_RM)
		return scn_end(p, 3);
	for (uint32_t i = 3; i < p->tok_count; i++) {
		struct scn_kv kv;
		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "network create",
				 &seen, &kv);
		if (rv)
			return rv;
		if (kv.key->bit == 1u << 2) {
			if (scn_tok_is(kv.value, "yes"))
				cmd->u.network.encrypted = true;
			else if (!scn_tok_is(kv.value, "no"))
				return scn_fail(p, kv.value.col, "encrypted: yes or no");
			continue;
		}
		if (kv.key->bit == 1u << 0)
			cmd->u.network.subnet = scn_tok_dup(kv.value);
		else
			cmd->u.network.driver = scn_tok_dup(kv.value);
		if (!(kv.key->bit == 1u << 0 ? cmd->u.network.subnet
					     : cmd->u.network.driver))
			return scn_nomem(p);
	}
	return 0;
}

/* secret|config create NAME [bytes=SIZE] [data=WORD] | secret|config rm
 * NAME (issue 20): through the leader's control API. Data: the WORD, then
 * SIZE bytes of 's' (neither: the name). */
static int scn_parse_secret(struct scn_parser *p, struct scn_cmd *cmd)
{
	static const struct scn_key keys[] = {
		{"bytes", 1u << 0, false},
		{"data", 1u << 1, false},
	};
	struct scn_seen seen = {0};
	int rv;

	if (p->tok_count < 2 ||
	    (!scn_tok_is(p->toks[1], "create") && !scn_tok_is(p->toks[1], "rm")))
		return scn_expected(p, 0, 1, "create or rm");
	cmd->kind = scn_tok_is(p->toks[1], "rm") ? SCN_SECRET_RM : SCN_SECRET_CREATE;
	cmd->u.secret.config = scn_tok_is(p->toks[0], "config");
	rv = scn_name_at(p, 0, 2, "a name", SCN_NAME_EXTRA, &cmd->u.secret.name);
	if (rv)
		return rv;
	if (cmd->kind == SCN_SECRET_RM)
		return scn_end(p, 3);
	for (uint32_t i = 3; i < p->tok_count; i++) {
		struct scn_kv kv;
		rv = scn_kv_read(p, p->toks[i], keys, SCN_COUNT(keys), "secret create",
				 &seen, &kv);
		if (rv)
			return rv;
		if (kv.key->bit == 1u << 0) {
			rv = scn_size(p, kv.value, &cmd->u.secret.bytes);
			if (rv)
				return rv;
			if (cmd->u.secret.bytes > 2 * LIMIT_SECRET_BYTES_MAX)
				return scn_fail(
					p, kv.value.col,
					"bytes: over twice LIMIT_SECRET_BYTES_MAX");
		} else if (!(cmd->u.secret.data = scn_tok_dup(kv.value))) {
			return scn_nomem(p);
		}
	}
	return 0;
}

/* refuse CMD...: CMD (service create|update|rm, network create|rm) must be
 * refused by the control API (issue 15: a port in use, a network in use);
 * the run fails when it is accepted. */
static int scn_parse_refuse(struct scn_parser *p, struct scn_cmd *cmd)
{
	int rv;

	if (p->tok_count < 2 ||
	    (!scn_tok_is(p->toks[1], "service") && !scn_tok_is(p->toks[1], "network") &&
	     !scn_tok_is(p->toks[1], "secret") && !scn_tok_is(p->toks[1], "config")))
		return scn_expected(
			p, 0, 1,
			"service, network, secret or config (the command to refuse)");
	p->toks++;
	p->tok_count--;
	rv = scn_tok_is(p->toks[0], "service")	 ? scn_parse_service(p, cmd)
	     : scn_tok_is(p->toks[0], "network") ? scn_parse_network(p, cmd)
						 : scn_parse_secret(p, cmd);
	p->toks--;
	p->tok_count++;
	cmd->refuse = true;
	return rv;
}

/* backup (issue 20) */
static int scn_parse_backup(struct scn_parser *p, struct scn_cmd *cmd)
{
	cmd->kind = SCN_BACKUP;
	return scn_end(p, 1);
}

/* logs SVC contain WORD[-WORD...] [within DUR] (issue 16): a read of the
 * service's logs through the leader's log broker has a line containing the
 * words ('-' stands for a space); with within, read again every second
 * until one does, at most DUR. */
static int scn_parse_logs(struct scn_parser *p, struct scn_cmd *cmd)
{
	uint32_t i = 3;
	int rv;

	cmd->kind = SCN_LOGS;
	rv = scn_name_at(p, 0, 1, "a service name", SCN_NAME_EXTRA, &cmd->u.logs.service);
	if (rv)
		return rv;
	if (p->tok_count < 4 || !scn_tok_is(p->toks[2], "contain"))
		return scn_expected(p, 0, 2, "contain WORD[-WORD...]");
	if (!(cmd->u.logs.text = scn_tok_dup(p->toks[3])))
		return scn_nomem(p);
	for (char *q = cmd->u.logs.text; *q; q++)
		if (*q == '-')
			*q = ' ';
	i = 4;
	if (i < p->tok_count && scn_tok_is(p->toks[i], "within")) {
		if (i + 1 >= p->tok_count)
			return scn_expected(p, 0, i + 1, "a duration");
		rv = scn_duration(p, p->toks[i + 1], &cmd->u.logs.within_ms);
		if (rv)
			return rv;
		cmd->u.logs.has_within = true;
		i += 2;
	}
	return scn_end(p, i);
}

static const struct scn_verb scn_verbs[] = {
	{"cluster", scn_parse_cluster, true},
	{"seed", scn_parse_seed, true},
	{"set", scn_parse_set, true},
	{"run", scn_parse_run, false},
	{"service", scn_parse_service, false},
	{"node", scn_parse_node, false},
	{"kill", scn_parse_kill, false},
	{"restart", scn_parse_restart, false},
	{"partition", scn_parse_partition, false},
	{"isolate", scn_parse_isolate, false},
	{"link", scn_parse_link, false},
	{"heal", scn_parse_heal, false},
	{"image", scn_parse_image, false},
	{"expect", scn_parse_expect, false},
	{"always", scn_parse_expect, false},
	{"await", scn_parse_expect, false},
	{"runtime", scn_parse_runtime, false},
	{"disk", scn_parse_disk, false},
	{"cert", scn_parse_cert, false},
	{"forge", scn_parse_forge, false},
	{"ca", scn_parse_ca, false},
	{"network", scn_parse_network, false},
	{"refuse", scn_parse_refuse, false},
	{"backup", scn_parse_backup, false},
	{"logs", scn_parse_logs, false},
	{"secret", scn_parse_secret, false},
	{"config", scn_parse_secret, false},
};

static void scn_cmd_free(struct scn_cmd *cmd)
{
	free(cmd->text);
	switch (cmd->kind) {
	case SCN_SERVICE_CREATE:
	case SCN_SERVICE_UPDATE: scn_service_free(&cmd->u.service); break;
	case SCN_SERVICE_RM: free(cmd->u.service_name); break;
	case SCN_NODE_LABEL:
		free(cmd->u.node.label_key);
		free(cmd->u.node.label_value);
		break;
	case SCN_NODE_ADD: scn_node_desc_free(cmd->u.node.desc); break;
	case SCN_PARTITION:
	case SCN_ISOLATE:
		for (size_t g = 0; g < LIMIT_SCN_GROUPS_MAX; g++)
			free(cmd->u.partition.groups[g].nodes);
		break;
	case SCN_IMAGE: free(cmd->u.image.name); break;
	case SCN_EXPECT:
	case SCN_ALWAYS:
	case SCN_AWAIT:
		free(cmd->u.expect.cond.service);
		free(cmd->u.expect.cond.reason);
		break;
	case SCN_NETWORK_CREATE:
	case SCN_NETWORK_RM:
		free(cmd->u.network.name);
		free(cmd->u.network.subnet);
		free(cmd->u.network.driver);
		break;
	case SCN_LOGS:
		free(cmd->u.logs.service);
		free(cmd->u.logs.text);
		break;
	case SCN_SECRET_CREATE:
	case SCN_SECRET_RM:
		free(cmd->u.secret.name);
		free(cmd->u.secret.data);
		break;
	default: break;
	}
	memset(cmd, 0, sizeof *cmd);
}

/* Moves *cmd to the end of the script (which then owns its strings). */
static int scn_append(struct scn_parser *p, struct scn_cmd *cmd)
{
	struct scn_script *s = p->script;

	assert(s->cmd_count < LIMIT_SCN_COMMANDS_MAX);
	if (s->cmd_count == p->cmd_cap) {
		size_t cap = p->cmd_cap ? p->cmd_cap * 2 : 64;
		struct scn_cmd *cmds;

		if (cap > LIMIT_SCN_COMMANDS_MAX)
			cap = LIMIT_SCN_COMMANDS_MAX;
		cmds = realloc(s->cmds, cap * sizeof *cmds);
		if (!cmds)
			return scn_nomem(p);
		s->cmds = cmds;
		p->cmd_cap = cap;
	}
	s->cmds[s->cmd_count++] = *cmd;
	return 0;
}

/* Parses the command on the current line (already split in words). */
static int scn_command(struct scn_parser *p)
{
	struct scn_tok word = p->toks[0];
	const struct scn_verb *verb = NULL;
	struct scn_cmd cmd;
	int rv;

	for (size_t i = 0; i < SCN_COUNT(scn_verbs); i++)
		if (scn_tok_is(word, scn_verbs[i].name))
			verb = &scn_verbs[i];
	if (!verb)
		return scn_fail(p, word.col,
				"unknown command '%.*s' (expected " SCN_COMMANDS_TEXT ")",
				SCN_TOK_ARG(word));
	if (!p->cluster_line && !verb->before_cluster)
		return scn_fail(
			p, word.col,
			"'%s' before 'cluster' (cluster comes first; only seed and set may "
			"precede it)",
			verb->name);
	if (p->script->cmd_count == LIMIT_SCN_COMMANDS_MAX)
		return scn_fail(p, word.col,
				"more than %u commands (LIMIT_SCN_COMMANDS_MAX)",
				LIMIT_SCN_COMMANDS_MAX);
	memset(&cmd, 0, sizeof cmd);
	cmd.line = p->line_no;
	cmd.col = word.col;
	cmd.text = strndup(word.s, p->line_len - (word.col - 1));
	if (!cmd.text)
		return scn_nomem(p);
	rv = verb->parse(p, &cmd);
	if (!rv && p->cluster_line && !p->acted_line && cmd.kind != SCN_CLUSTER &&
	    cmd.kind != SCN_SEED && cmd.kind != SCN_SET)
		p->acted_line = p->line_no;
	if (!rv)
		rv = scn_append(p, &cmd);
	if (rv)
		scn_cmd_free(&cmd);
	return rv;
}

/* Parses one line (without its newline): cuts the comment, refuses control
 * bytes, and parses the command if there is one. */
static int scn_line(struct scn_parser *p, const char *raw, uint32_t raw_len)
{
	uint32_t n = 0;

	while (n < raw_len && raw[n] != '#') {
		unsigned char c = (unsigned char)raw[n];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return scn_fail(p, n + 1, "unexpected control byte 0x%02x", c);
		n++;
	}
	while (n > 0 && scn_is_blank(raw[n - 1]))
		n--;
	p->line = raw;
	p->line_len = n;
	scn_lex(p, SCN_LEX_WORDS);
	if (p->tok_count == 0)
		return 0;
	return scn_command(p);
}

/* ---------------------------------------------------------------- API */

int scn_parse(const char *path, const char *text, size_t len, struct scn_script *script,
	      char *err, size_t err_size)
{
	struct scn_parser p = {
		.path = path,
		.err = err,
		.err_size = err_size,
		.script = script,
		.line_no = 1,
	};
	size_t off = 0;
	int rv = 0;

	assert(path);
	assert(text || len == 0);
	memset(script, 0, sizeof *script);
	if (err && err_size)
		err[0] = '\0';
	if (len > LIMIT_SCN_FILE_BYTES_MAX)
		return scn_fail(&p, 1,
				"scenario is %zu bytes, over the limit of %u "
				"(LIMIT_SCN_FILE_BYTES_MAX)",
				len, LIMIT_SCN_FILE_BYTES_MAX);
	script->path = strdup(path);
	p.toks = malloc(SCN_TOKS_MAX * sizeof *p.toks);
	if (!script->path || !p.toks) {
		rv = scn_nomem(&p);
		goto fail;
	}
	/* a UTF-8 byte order mark, as some editors write first, is no text */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		off = 3;
	for (; off < len; p.line_no++) {
		const char *line = text + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;

		off += n + (nl ? 1 : 0);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > LIMIT_SCN_LINE_BYTES_MAX) {
			rv = scn_fail(&p, LIMIT_SCN_LINE_BYTES_MAX + 1,
				      "line is %zu bytes long, over the limit of %u "
				      "(LIMIT_SCN_LINE_BYTES_MAX)",
				      n, LIMIT_SCN_LINE_BYTES_MAX);
			goto fail;
		}
		rv = scn_line(&p, line, (uint32_t)n);
		if (rv)
			goto fail;
	}
	if (!p.cluster_line) {
		p.line_no = 1;
		rv = scn_fail(&p, 1,
			      "no 'cluster' command (a scenario needs one, like cluster "
			      "managers=3 workers=2)");
		goto fail;
	}
	assert(script->managers_total >= 1);
	free(p.toks);
	return 0;
fail:
	assert(rv != 0);
	free(p.toks);
	scn_free(script);
	return rv;
}

/* Writes "PATH: cannot read: REASON" into err. Returns CS_EINVAL. */
static int scn_read_fail(const char *path, const char *reason, char *err, size_t err_size)
{
	if (err && err_size)
		snprintf(err, err_size, "%s: cannot read: %s", path, reason);
	return CS_EINVAL;
}

int scn_parse_file(const char *path, struct scn_script *script, char *err,
		   size_t err_size)
{
	char limit_text[96];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f;
	int rv;

	memset(script, 0, sizeof *script);
	f = fopen(path, "rb");
	if (!f)
		return scn_read_fail(path, strerror(errno), err, err_size);
	for (;;) {
		size_t n;

		if (len == cap) {
			char *grown;

			if (cap > LIMIT_SCN_FILE_BYTES_MAX) {
				snprintf(
					limit_text, sizeof limit_text,
					"larger than %u bytes (LIMIT_SCN_FILE_BYTES_MAX)",
					LIMIT_SCN_FILE_BYTES_MAX);
				rv = scn_read_fail(path, limit_text, err, err_size);
				goto out;
			}
			cap = cap ? cap * 2 : 64 * 1024;
			if (cap > LIMIT_SCN_FILE_BYTES_MAX + 1)
				cap = LIMIT_SCN_FILE_BYTES_MAX + 1;
			grown = realloc(buf, cap);
			if (!grown) {
				scn_read_fail(path, "out of memory", err, err_size);
				rv = CS_ENOMEM;
				goto out;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				rv = scn_read_fail(path, strerror(errno), err, err_size);
				goto out;
			}
			break;
		}
	}
	rv = scn_parse(path, buf, len, script, err, err_size);
out:
	free(buf);
	fclose(f);
	return rv;
}

const struct scn_cmd *scn_first(const struct scn_script *script, enum scn_cmd_kind kind)
{
	for (size_t i = 0; i < script->cmd_count; i++)
		if (script->cmds[i].kind == kind)
			return &script->cmds[i];
	return NULL;
}

void scn_free(struct scn_script *script)
{
	if (!script)
		return;
	for (size_t i = 0; i < script->cmd_count; i++)
		scn_cmd_free(&script->cmds[i]);
	free(script->cmds);
	free(script->path);
	memset(script, 0, sizeof *script);
}

const char *scn_node_name(struct scn_node node, char *buf, size_t size)
{
	assert(buf && size > 0);
	switch (node.kind) {
	case SCN_NODE_MANAGER: snprintf(buf, size, "m%" PRIu32, node.number); break;
	case SCN_NODE_WORKER: snprintf(buf, size, "w%" PRIu32, node.number); break;
	case SCN_NODE_STRANGER: snprintf(buf, size, "x%" PRIu32, node.number); break;
	case SCN_NODE_LEADER:
	default: snprintf(buf, size, "leader"); break;
	}
	return buf;
}

const char *scn_cmd_name(enum scn_cmd_kind kind)
{
	if ((unsigned)kind >= SCN_COUNT(scn_cmd_names))
		return "?";
	return scn_cmd_names[kind];
}

const char *scn_task_state_name(enum scn_task_state state)
{
	if ((unsigned)state >= SCN_COUNT(scn_state_names))
		return "?";
	return scn_state_names[state];
}

const char *scn_op_text(enum scn_op op)
{
	if ((unsigned)op >= SCN_COUNT(scn_op_texts))
		return "?";
	return scn_op_texts[op];
}

const char *scn_forge_name(enum scn_forge_kind kind)
{
	if ((unsigned)kind >= SCN_COUNT(scn_forge_names))
		return "?";
	return scn_forge_names[kind];
}

const char *scn_cert_name(enum scn_cert_kind kind)
{
	if ((unsigned)kind >= SCN_COUNT(scn_cert_names))
		return "?";
	return scn_cert_names[kind];
}

bool scn_op_holds(enum scn_op op, uint64_t got, uint64_t want)
{
	switch (op) {
	case SCN_OP_EQ: return got == want;
	case SCN_OP_NE: return got != want;
	case SCN_OP_LT: return got < want;
	case SCN_OP_LE: return got <= want;
	case SCN_OP_GT: return got > want;
	case SCN_OP_GE: return got >= want;
	}
	return false;
}
