#include "core/hash.h"

#include <string.h>

uint64_t hash_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t hash_fnv(uint64_t h, const void *data, size_t size)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < size; i++)
		h = (h ^ p[i]) * HASH_FNV_PRIME;
	return h;
}

uint64_t hash_str(const char *s)
{
	return hash_mix64(hash_fnv(HASH_FNV_OFFSET, s, strlen(s)));
}
