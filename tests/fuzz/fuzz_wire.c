/* fuzz_wire: every protobuf message a node reads from a peer or from its own
 * disk, through protobuf-c's generated decoder (the first input byte picks
 * the message: Wire, the envelope of everything on the wire, and the ones
 * read from storage or nested as bytes: StoreBatch, StoreSnapshot,
 * RaftConfig, RaftEntry, Task, ControlRequest/Response, NetworkSpec...).
 * Properties: what decodes packs to get_packed_size bytes; those bytes
 * decode again and pack to the same bytes (protobuf's encoding is not
 * unique, so the first pack is the canonical form, and it is a fixed point);
 * what does not decode leaves nothing allocated (ASan's leak check). The
 * handlers behind Wire run on a live cluster in fuzz_node. */
#include <stdbool.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/store.h"
#include "tests/fuzz/fuzz.h"

static const ProtobufCMessageDescriptor *const descs[] = {
	&cs__wire__descriptor,
	&cs__store_batch__descriptor,
	&cs__store_snapshot__descriptor,
	&cs__raft_config__descriptor,
	&cs__raft_entry__descriptor,
	&cs__raft_message__descriptor,
	&cs__task__descriptor,
	&cs__control_request__descriptor,
	&cs__control_response__descriptor,
	&cs__network_spec__descriptor,
	&cs__service_spec__descriptor,
	&cs__assignments__descriptor,
	&cs__proposal__descriptor,
	&cs__cluster__descriptor,
	&cs__node__descriptor,
	&cs__service__descriptor,
};
#define NDESCS (sizeof descs / sizeof descs[0])

/* Whether m or a message inside it kept an unknown field numbered 0.
 * libprotobuf-c (1.4.1, Debian 12) takes a tag of field 0 when its varint
 * is overlong (0x80 0x00), keeps it as an unknown field, packs it back as
 * 0x00 0x00, and then refuses those bytes (field 0 is invalid): such a
 * message decodes once but not after a re-pack. Found by this target; the
 * property holds for every other message. store_has_field0 (core/store.h)
 * tells that case apart. */

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	FUZZ_CHECK(buf);
	FUZZ_CHECK(protobuf_c_message_pack(m, buf) == n);
	*len = n;
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m, *m2;
	uint8_t *b1, *b2;
	size_t l1, l2;

	if (size < 1)
		return 0;
	d = descs[data[0] % NDESCS];
	m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	if (!m)
		return 0;
	FUZZ_CHECK(protobuf_c_message_check(m));
	b1 = pack(m, &l1);
	FUZZ_CHECK(l1 <= size - 1 + 16 * (size + 1)); /* no blow-up from nothing */
	m2 = protobuf_c_message_unpack(d, NULL, l1, b1);
	if (!m2) {
		FUZZ_CHECK(store_has_field0(m)); /* our own bytes decode, but for that */
		free(b1);
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	b2 = pack(m2, &l2);
	FUZZ_CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
	free(b1);
	free(b2);
	protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(m2, NULL);
	return 0;
}
