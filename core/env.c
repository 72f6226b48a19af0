#include "core/env.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

enum { ENV_LOG_LINE_BYTES = 1024 };

void env_logf(struct env *env, enum env_log_level level, const char *fmt, ...)
{
	char line[ENV_LOG_LINE_BYTES];
	va_list ap;
	int n;

	assert(env != NULL);
	assert(env->ops != NULL);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		memcpy(line + sizeof line - 4, "...", 4);
	env->ops->log(env, level, line);
}
