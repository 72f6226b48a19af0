/* netlog: see netlog.h. */
#include "net/netlog.h"

#include <stdarg.h>
#include <stdio.h>

void netlog_errf(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!err || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

void netlog_logf(netlog_fn log, void *data, enum env_log_level lvl, const char *fmt, ...)
{
	char msg[NETLOG_LINE_BYTES];
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log(data, lvl, msg);
}
