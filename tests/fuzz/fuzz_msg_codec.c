/*
 * fuzz_msg_codec.c — libFuzzer target for the peer transport's frame decoder
 * (raft/msg_codec.c): any input must decode to an error code or to a message whose
 * entries lie inside the input and that re-encodes to the same bytes. A crash, a
 * sanitizer report or a failed assertion is a bug.
 *
 * Byte 0 of the input, when bit 0 is set, asks for the checksum to be recomputed so
 * the fuzzer reaches the length and field checks behind it.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "raft/msg_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct raft_entry entries[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool reseal = data[0] & 1;
	data++;
	size--;
	uint8_t *frame = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	if (!frame)
		return 0;
	memcpy(frame, data, size);
	if (reseal && size >= 12) {
		memset(frame + 8, 0, 4);
		uint32_t crc = crc32c(frame, size);
		frame[8] = (uint8_t)(crc >> 24);
		frame[9] = (uint8_t)(crc >> 16);
		frame[10] = (uint8_t)(crc >> 8);
		frame[11] = (uint8_t)crc;
	}
	const struct msg_codec_limits limits = { 1 << 20, 256 };
	struct raft_msg m;
	if (msg_codec_decode(frame, size, &limits, &m, entries) == 0) {
		for (int i = 0; i < m.entry_count; i++)
			assert(m.entries[i].len == 0 ||
			       (m.entries[i].data >= frame && m.entries[i].data + m.entries[i].len <= frame + size));
		uint8_t *again = malloc(size);
		size_t len;
		assert(again && msg_codec_encode(&m, again, size, &len) == 0 && len == size);
		assert(memcmp(again, frame, size) == 0);
		free(again);
	}
	free(frame);
	return 0;
}
