/* hash: the few non-cryptographic hashes cswarm uses (tree priorities,
 * trace hashes, disk and entry fingerprints), in one place. Pure functions
 * of their input: same bytes, same hash, on every run. */
#ifndef CS_HASH_H
#define CS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 0xcbf29ce484222325ull
#define HASH_FNV_PRIME	0x100000001b3ull

/* hash_mix64 is splitmix64's finaliser: a bijective 64-bit mix. */
uint64_t hash_mix64(uint64_t x);

/* hash_fnv continues an FNV-1a hash h (start with HASH_FNV_OFFSET) over
 * size bytes of data (borrowed). */
uint64_t hash_fnv(uint64_t h, const void *data, size_t size);

/* hash_str is hash_mix64 of the FNV-1a hash of a NUL-terminated string. */
uint64_t hash_str(const char *s);

#endif
