/* procstat: a process's CPU and memory from /proc. See procstat.h. */
#include "net/procstat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procstat_parse_stat(const char *line, uint64_t *utime_ticks, uint64_t *stime_ticks)
{
	unsigned long long ut, st;
	const char *p = line ? strrchr(line, ')') : NULL;

	/* fields 14 and 15 (utime, stime) follow the name's last ')' and
	 * fields 3..13 */
	if (!p || p[1] != ' ' ||
	    sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut,
		   &st) != 2)
		return -1;
	*utime_ticks = ut;
	*stime_ticks = st;
	return 0;
}

int procstat_parse_rss(const char *status, uint64_t *bytes)
{
	const char *p = status;
	unsigned long long kb;

	while (p && *p) {
		if (strncmp(p, "VmRSS:", 6) == 0) {
			if (sscanf(p + 6, " %llu kB", &kb) != 1)
				return -1;
			*bytes = (uint64_t)kb * 1024;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* Reads a small /proc file into buf (NUL-terminated). */
static int procstat_slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

int procstat_read(pid_t pid, struct procstat *out)
{
	char path[64], buf[4096];
	uint64_t ut, st;
	long hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (hz <= 0 || procstat_slurp(path, buf, sizeof buf) ||
	    procstat_parse_stat(buf, &ut, &st))
		return -1;
	out->cpu_s = (double)(ut + st) / (double)hz;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (procstat_slurp(path, buf, sizeof buf) ||
	    procstat_parse_rss(buf, &out->rss_bytes))
		return -1;
	return 0;
}
