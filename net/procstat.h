/* procstat: what a process has used, from /proc/PID/stat (CPU time) and
 * /proc/PID/status (resident memory), for the load generator's reports on
 * the managers it loads. Linux only; no state. */
#ifndef NET_PROCSTAT_H
#define NET_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct procstat {
	double cpu_s;	    /* user + system, seconds since the process began */
	uint64_t rss_bytes; /* resident now (VmRSS) */
};

/* procstat_parse_stat reads the user and system times (clock ticks) from
 * one /proc/PID/stat line (the command name may hold spaces and ')').
 * Returns 0, or -1 when the line is not one. */
int procstat_parse_stat(const char *line, uint64_t *utime_ticks, uint64_t *stime_ticks);

/* procstat_parse_rss finds "VmRSS: N kB" in a /proc/PID/status text and
 * returns N * 1024 in *bytes: 0, or -1 when it has none. */
int procstat_parse_rss(const char *status, uint64_t *bytes);

/* procstat_read fills *out for pid. Returns 0, or -1 (no such process, or
 * /proc unreadable). */
int procstat_read(pid_t pid, struct procstat *out);

#endif
