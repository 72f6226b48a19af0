/* sort: a stable merge sort of uint32 indexes by a comparison that takes a
 * context (C11 has no qsort_r). The scheduler sorts nodes by label values
 * with it, the dispatcher status reports by node. And the one comparison
 * of uint64s every module's qsort and bsearch of ids share. */
#ifndef CS_SORT_H
#define CS_SORT_H

#include <stddef.h>
#include <stdint.h>

/* <0, 0, >0 as a before, equal to, after b. */
typedef int (*sort_u32_cmp_fn)(const void *ctx, uint32_t a, uint32_t b);

/* sort_u32 orders v[0..n) by cmp, equal ones kept in their order; tmp
 * holds n and is scratch. O(n log n), no allocation. */
void sort_u32(uint32_t *v, uint32_t *tmp, size_t n, sort_u32_cmp_fn cmp, const void *ctx);

/* sort_u64_cmp orders uint64s ascending, for qsort and bsearch (also an
 * array of structs whose first member is a uint64 key). */
int sort_u64_cmp(const void *a, const void *b);

#endif
