/* str: the one bounded string copy of cswarm. What snprintf(dst, size,
 * "%s", src) does, without parsing a format: copies src, cut to size - 1
 * bytes, and always ends dst with a NUL. The agent's and the dispatcher's
 * copy of every task state's message went through snprintf (issue 18:
 * 2.4% of a 100,000-task simulation's instructions were snprintf). */
#ifndef CS_STR_H
#define CS_STR_H

#include <stddef.h>
#include <string.h>

/* str_copy copies src (NULL: "") into dst of size bytes (size > 0). */
static inline void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;
	memmove(dst, src ? src : "", n);
	dst[n] = '\0';
}

#endif
