/* benchutil: what the benchmarks that touch the real world share (the
 * wall clock, a free loopback port, a temporary tree to remove). Test code
 * only. */
#ifndef TESTS_BENCHUTIL_H
#define TESTS_BENCHUTIL_H

/* bench_now returns the monotonic clock in seconds. */
double bench_now(void);

/* bench_free_port returns a TCP port free on 127.0.0.1 now, or -1. */
int bench_free_port(void);

/* bench_rm_tree removes path and everything below it (best effort). */
void bench_rm_tree(const char *path);

#endif
