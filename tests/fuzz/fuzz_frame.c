/* fuzz_frame: an incoming connection's byte stream (after TLS) through
 * net/uvenv's frame and hello parsing (uvenv_frame_next, uvenv_hello_parse:
 * what uvenv_in_parse runs on every read). Properties:
 * - the stream read whole and read in pieces (as reads arrive: cut at
 *   places the input itself chooses) gives the same frames and the same
 *   verdict: a frame's parse never depends on how its bytes arrived;
 * - a whole frame re-encodes (length, then payload) to the bytes it came
 *   from, and a hello's address encodes back to its payload;
 * - a refusal says why, a hello's address is printable and NUL-terminated.
 * The first input byte picks the frame limit (small limits reach the limit
 * checks), the rest is the stream. */
#include <stdbool.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "net/uvenv.h"
#include "tests/fuzz/fuzz.h"

#define FRAMES_MAX 256

struct verdict {
	size_t frames;		 /* whole frames, hello included */
	size_t ends[FRAMES_MAX]; /* where each ended in the stream */
	int rc; /* 0: the stream ended cleanly or mid-frame; <0 refused */
	char from[LIMIT_ADDR_BYTES_MAX + 1];
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses what buf holds from *off (the connection's buffer), as
 * uvenv_in_parse does; returns false once refused. */
static bool drain(const uint8_t *buf, size_t len, size_t *off, size_t base,
		  size_t frame_max, struct verdict *v)
{
	for (;;) {
		size_t n = 0;
		char why[160] = "";
		int rc = uvenv_frame_next(buf + *off, len - *off, v->frames > 0,
					  frame_max, &n, why, sizeof why);
		if (rc < 0) {
			FUZZ_CHECK(rc == CS_ECORRUPT);
			FUZZ_CHECK(why[0] != '\0');
			v->rc = rc;
			return false;
		}
		if (rc == 0) {
			FUZZ_CHECK(n == 0);
			return true;
		}
		FUZZ_CHECK(rc == 1);
		FUZZ_CHECK(n > 0 && n <= frame_max);
		FUZZ_CHECK(len - *off >= 4 + n);
		FUZZ_CHECK(be32(buf + *off) == n); /* re-encodes to its bytes */
		if (v->frames == 0) {
			char from[LIMIT_ADDR_BYTES_MAX + 1];
			memset(from, 'x', sizeof from);
			if (!uvenv_hello_parse(buf + *off + 4, n, from, why,
					       sizeof why)) {
				FUZZ_CHECK(why[0] != '\0');
				v->rc = CS_ECORRUPT;
				return false;
			}
			FUZZ_CHECK(strlen(from) == n - 4);
			FUZZ_CHECK(memcmp(buf + *off + 4, "CSW1", 4) == 0);
			FUZZ_CHECK(memcmp(buf + *off + 8, from, n - 4) == 0);
			for (size_t i = 0; from[i]; i++)
				FUZZ_CHECK(from[i] > 0x20 && from[i] < 0x7f &&
					   from[i] != '"' && from[i] != '\\');
			memcpy(v->from, from, sizeof from);
		}
		*off += 4 + n;
		if (v->frames < FRAMES_MAX)
			v->ends[v->frames] = base + *off;
		v->frames++;
	}
}

/* The stream read at once. */
static void whole(const uint8_t *s, size_t len, size_t frame_max, struct verdict *v)
{
	size_t off = 0;
	memset(v, 0, sizeof *v);
	drain(s, len, &off, 0, frame_max, v);
}

/* The stream read in pieces of 1..16 bytes (sizes drawn from the stream's
 * bytes), into a buffer that keeps what is not a whole frame yet. */
static void pieces(const uint8_t *s, size_t len, size_t frame_max, struct verdict *v)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t have = 0, taken = 0, consumed = 0, k = 0;

	FUZZ_CHECK(buf);
	memset(v, 0, sizeof *v);
	while (taken < len) {
		size_t off = 0, piece = 1 + (s[k++ % len] & 15);
		if (piece > len - taken)
			piece = len - taken;
		memcpy(buf + have, s + taken, piece);
		have += piece;
		taken += piece;
		if (!drain(buf, have, &off, consumed, frame_max, v))
			break;
		memmove(buf, buf + off, have - off);
		have -= off;
		consumed += off;
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[4] = {16, 300, 4096, LIMIT_FRAME_BYTES_MAX};
	struct verdict *a, *b;
	size_t frame_max;

	if (size < 1)
		return 0;
	frame_max = limits[data[0] & 3];
	a = malloc(sizeof *a);
	b = malloc(sizeof *b);
	FUZZ_CHECK(a && b);
	whole(data + 1, size - 1, frame_max, a);
	pieces(data + 1, size - 1, frame_max, b);
	FUZZ_CHECK(a->frames == b->frames);
	FUZZ_CHECK(a->rc == b->rc);
	FUZZ_CHECK(strcmp(a->from, b->from) == 0);
	for (size_t i = 0; i < a->frames && i < FRAMES_MAX; i++)
		FUZZ_CHECK(a->ends[i] == b->ends[i]);
	free(a);
	free(b);
	return 0;
}
