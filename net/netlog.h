/* netlog: the two small formatting helpers every module of net/ used to
 * copy: an error text into a caller's buffer, and a log line handed to a
 * module's log callback. */
#ifndef CSWARM_NET_NETLOG_H
#define CSWARM_NET_NETLOG_H

#include <stddef.h>

#include "core/env.h"

/* A module's log callback: msg is one line, valid during the call. */
typedef void (*netlog_fn)(void *data, enum env_log_level lvl, const char *msg);

/* netlog_errf formats into err (size bytes, always NUL-terminated, cut at
 * size). err NULL or size 0: nothing. Never fails. */
void netlog_errf(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* netlog_logf formats one line (cut at NETLOG_LINE_BYTES - 1 bytes) and
 * hands it to log with data. log NULL: nothing. Never fails. */
#define NETLOG_LINE_BYTES 512
void netlog_logf(netlog_fn log, void *data, enum env_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
