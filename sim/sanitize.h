/* sanitize.h: whether this build runs under a sanitizer, decided at
 * compile time, for the few places that must know (swarmsim's malloc
 * tuning and the world it leaves to the exit, the runner's test of that,
 * bench_dispatcher's heap tags): a sanitizer's allocator is not glibc's,
 * and its leak check reports memory left to the process's end.
 *
 *   CS_ASAN       AddressSanitizer, whose LeakSanitizer a test may pause
 *                 (<sanitizer/lsan_interface.h>)
 *   CS_SANITIZED  Address, Memory or Thread sanitizer: an allocator of its
 *                 own */
#ifndef CS_SIM_SANITIZE_H
#define CS_SIM_SANITIZE_H

#if defined(__SANITIZE_ADDRESS__)
#define CS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CS_ASAN 1
#endif
#endif

#if defined(CS_ASAN) || defined(__SANITIZE_THREAD__)
#define CS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define CS_SANITIZED 1
#endif
#endif

#endif
