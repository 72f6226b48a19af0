#include "core/errors.h"

struct errors_entry {
	int code;
	const char *name;
	const char *text;
};

static const struct errors_entry errors_table[] = {
#define CS_ERR_ROW(name, value, text) {(value), #name, (text)},
	CS_ERRORS(CS_ERR_ROW)
#undef CS_ERR_ROW
};

_Static_assert(sizeof errors_table / sizeof errors_table[0] == 1 - CS_ERR_LAST,
	       "errors_table covers every code from 0 to CS_ERR_LAST");

static const struct errors_entry *errors_find(int err)
{
	if (err > 0 || err < CS_ERR_LAST)
		return 0;
	return &errors_table[-err];
}

const char *cs_strerror(int err)
{
	const struct errors_entry *e = errors_find(err);
	return e ? e->text : "unknown error";
}

const char *cs_errname(int err)
{
	const struct errors_entry *e = errors_find(err);
	return e ? e->name : "CS_E?";
}
