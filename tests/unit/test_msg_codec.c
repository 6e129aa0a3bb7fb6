/*
 * test_msg_codec.c — raft/msg_codec.c: every message type round-trips field for field
 * (entries included, pointing into the frame), and damaged input — every truncation,
 * every single-bit flip, random garbage, lengths past the limits — is refused with
 * -EPROTO or -EMSGSIZE without reading outside the frame (the frame is copied into an
 * exact-size heap block so ASan would see an overread).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "raft/msg_codec.h"

#define ENTRIES_CAP 64

static const struct msg_codec_limits limits = { 1 << 20, ENTRIES_CAP };
static struct raft_entry decoded[ENTRIES_CAP];

static struct raft_msg sample(enum raft_msg_type type, uint64_t salt)
{
	return (struct raft_msg){
		.type = type,
		.reject = salt & 1,
		.transfer = salt & 2,
		.from = 1 + salt,
		.to = 0xF000000000000002ULL + salt,
		.term = 0x0102030405060708ULL ^ salt,
		.log_index = 11 + salt,
		.log_term = 12 + salt,
		.commit = 13 + salt,
		.index = 14 + salt,
		.reject_term = 15 + salt,
		.ctx = 0xFFFFFFFFFFFFFFFFULL - salt,
	};
}

static void assert_same(const struct raft_msg *a, const struct raft_msg *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(a->reject, b->reject);
	cr_assert_eq(a->transfer, b->transfer);
	cr_assert_eq(a->entry_count, b->entry_count);
	cr_assert_eq(a->from, b->from);
	cr_assert_eq(a->to, b->to);
	cr_assert_eq(a->term, b->term);
	cr_assert_eq(a->log_index, b->log_index);
	cr_assert_eq(a->log_term, b->log_term);
	cr_assert_eq(a->commit, b->commit);
	cr_assert_eq(a->index, b->index);
	cr_assert_eq(a->reject_term, b->reject_term);
	cr_assert_eq(a->ctx, b->ctx);
	for (int i = 0; i < a->entry_count; i++) {
		const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
		cr_assert_eq(x->index, y->index);
		cr_assert_eq(x->term, y->term);
		cr_assert_eq(x->type, y->type);
		cr_assert_eq(x->len, y->len);
		if (x->len)
			cr_assert_eq(memcmp(x->data, y->data, x->len), 0);
	}
}

/* Encodes m into an exact-size heap block (so ASan catches any overread). */
static uint8_t *encode_exact(const struct raft_msg *m, size_t *len)
{
	size_t need = msg_codec_frame_bytes(m);
	uint8_t *buf = malloc(need);
	cr_assert_not_null(buf);
	cr_assert_eq(msg_codec_encode(m, buf, need, len), 0);
	cr_assert_eq(*len, need);
	return buf;
}

static uint8_t payload[3][300];
static struct raft_entry three[3];

static void fill_entries(void)
{
	for (int i = 0; i < 3; i++) {
		for (size_t j = 0; j < sizeof payload[i]; j++)
			payload[i][j] = (uint8_t)(i * 31 + j);
		three[i] = (struct raft_entry){ .index = 100 + (uint64_t)i, .term = 7,
			.type = RAFT_ENTRY_NORMAL, .len = (uint32_t)(100 * i + 1), .data = payload[i] };
	}
	three[1] = (struct raft_entry){ .index = 101, .term = 7, .type = RAFT_ENTRY_NOOP };
}

Test(msg_codec, every_type_round_trips)
{
	fill_entries();
	for (int type = RAFT_MSG_APPEND; type <= RAFT_MSG_READ_INDEX_RESP; type++) {
		for (uint64_t salt = 0; salt < 4; salt++) {
			struct raft_msg m = sample((enum raft_msg_type)type, salt);
			if (type == RAFT_MSG_APPEND || type == RAFT_MSG_PROP) {
				m.entries = three;
				m.entry_count = (int)(salt % 4);
				if (m.entry_count > 3)
					m.entry_count = 3;
			}
			size_t len;
			uint8_t *buf = encode_exact(&m, &len);
			struct raft_msg out;
			cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), 0, "type %d", type);
			assert_same(&m, &out);
			/* zero copy: entry data points into the frame */
			for (int i = 0; i < out.entry_count; i++)
				if (out.entries[i].len)
					cr_assert(out.entries[i].data > buf && out.entries[i].data < buf + len);
			/* re-encoding gives the same bytes */
			uint8_t *again = encode_exact(&out, &len);
			cr_assert_eq(memcmp(buf, again, len), 0);
			free(again);
			free(buf);
		}
	}
}

Test(msg_codec, header_is_big_endian_with_version_and_crc)
{
	struct raft_msg m = sample(RAFT_MSG_HEARTBEAT, 0);
	uint8_t buf[MSG_CODEC_HEADER_BYTES];
	size_t len;
	cr_assert_eq(msg_codec_encode(&m, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, MSG_CODEC_HEADER_BYTES);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(buf[3], MSG_CODEC_HEADER_BYTES);
	cr_assert_eq(buf[4], MSG_CODEC_VERSION);
	cr_assert_eq(buf[5], RAFT_MSG_HEARTBEAT);
	cr_assert_eq(buf[16 + 7], 1); /* from = 1, last byte of a big-endian u64 */
	uint32_t crc = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
	memset(buf + 8, 0, 4);
	cr_assert_eq(crc32c(buf, len), crc);
}

Test(msg_codec, encode_refuses_what_cannot_be_decoded)
{
	fill_entries();
	uint8_t buf[4096];
	size_t len;
	struct raft_msg m = sample(RAFT_MSG_VOTE, 0);
	m.entries = three;
	m.entry_count = 1;
	cr_assert_eq(msg_codec_encode(&m, buf, sizeof buf, &len), -EINVAL); /* entries on a vote */
	m = sample((enum raft_msg_type)0, 0);
	cr_assert_eq(msg_codec_encode(&m, buf, sizeof buf, &len), -EINVAL);
	m = sample((enum raft_msg_type)(RAFT_MSG_READ_INDEX_RESP + 1), 0);
	cr_assert_eq(msg_codec_encode(&m, buf, sizeof buf, &len), -EINVAL);
	m = sample(RAFT_MSG_APPEND, 0);
	m.entries = three;
	m.entry_count = 3;
	cr_assert_eq(msg_codec_encode(&m, buf, 100, &len), -EMSGSIZE);
	struct raft_entry bad = { .index = 1, .term = 1, .type = (enum raft_entry_type)9 };
	m.entries = &bad;
	m.entry_count = 1;
	cr_assert_eq(msg_codec_encode(&m, buf, sizeof buf, &len), -EINVAL);
}

Test(msg_codec, every_truncation_is_refused)
{
	fill_entries();
	struct raft_msg m = sample(RAFT_MSG_APPEND, 1);
	m.entries = three;
	m.entry_count = 3;
	size_t len;
	uint8_t *buf = encode_exact(&m, &len);
	struct raft_msg out;
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *part = malloc(cut ? cut : 1);
		memcpy(part, buf, cut);
		int rc = msg_codec_decode(part, cut, &limits, &out, decoded);
		cr_assert(rc == -EPROTO, "cut %zu: %d", cut, rc);
		/* a stream that has only `cut` bytes so far: peek says wait or gives the length */
		size_t need;
		rc = msg_codec_peek(part, cut, &limits, &need);
		cr_assert(cut < 4 ? rc == -EAGAIN : (rc == 0 && need == len));
		free(part);
	}
	free(buf);
}

Test(msg_codec, every_bit_flip_is_refused)
{
	fill_entries();
	struct raft_msg m = sample(RAFT_MSG_PROP, 2);
	m.entries = three;
	m.entry_count = 3;
	size_t len;
	uint8_t *buf = encode_exact(&m, &len);
	struct raft_msg out;
	for (size_t byte = 0; byte < len; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[byte] ^= (uint8_t)(1u << bit);
			int rc = msg_codec_decode(buf, len, &limits, &out, decoded);
			cr_assert(rc == -EPROTO || rc == -EMSGSIZE, "byte %zu bit %d: %d", byte, bit, rc);
			buf[byte] ^= (uint8_t)(1u << bit);
		}
	}
	cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), 0);
	free(buf);
}

/* Rewrites the checksum so a deliberately inconsistent frame reaches the length checks. */
static void reseal(uint8_t *buf, size_t len)
{
	memset(buf + 8, 0, 4);
	uint32_t crc = crc32c(buf, len);
	buf[8] = (uint8_t)(crc >> 24);
	buf[9] = (uint8_t)(crc >> 16);
	buf[10] = (uint8_t)(crc >> 8);
	buf[11] = (uint8_t)crc;
}

Test(msg_codec, lying_lengths_with_a_good_checksum_are_refused)
{
	fill_entries();
	struct raft_msg m = sample(RAFT_MSG_APPEND, 0);
	m.entries = three;
	m.entry_count = 3;
	size_t len;
	uint8_t *buf = encode_exact(&m, &len);
	struct raft_msg out;
	/* entry_count one more than there is */
	buf[15] = 4;
	reseal(buf, len);
	cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), -EPROTO);
	/* one fewer: bytes left over */
	buf[15] = 2;
	reseal(buf, len);
	cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), -EPROTO);
	/* more entries than the caller's limit */
	buf[12] = 0x7F;
	reseal(buf, len);
	cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), -EMSGSIZE);
	buf[12] = 0;
	buf[15] = 3;
	/* the first entry's length past the frame's end */
	size_t e0 = MSG_CODEC_HEADER_BYTES;
	buf[e0 + 20] = 0xFF;
	reseal(buf, len);
	cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), -EPROTO);
	buf[e0 + 20] = 0;
	reseal(buf, len);
	cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), 0);
	/* a frame longer than the limit is refused from its first 4 bytes */
	struct msg_codec_limits small = { len - 1, ENTRIES_CAP };
	size_t need;
	cr_assert_eq(msg_codec_peek(buf, 4, &small, &need), -EMSGSIZE);
	cr_assert_eq(msg_codec_decode(buf, len, &small, &out, decoded), -EMSGSIZE);
	free(buf);
}

Test(msg_codec, random_garbage_never_decodes_out_of_bounds)
{
	srand(12345);
	struct raft_msg out;
	for (int round = 0; round < 200000; round++) {
		size_t len = (size_t)(rand() % 400);
		uint8_t *buf = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		if (len >= 4 && (round & 1)) { /* a plausible length prefix */
			buf[0] = buf[1] = 0;
			buf[2] = (uint8_t)(len >> 8);
			buf[3] = (uint8_t)len;
			if (len >= 5)
				buf[4] = MSG_CODEC_VERSION;
		}
		if (len >= 12 && (round & 2))
			reseal(buf, len);
		int rc = msg_codec_decode(buf, len, &limits, &out, decoded);
		cr_assert(rc == 0 || rc == -EPROTO || rc == -EMSGSIZE);
		if (rc == 0)
			for (int i = 0; i < out.entry_count; i++)
				cr_assert(out.entries[i].len == 0 ||
					  (out.entries[i].data >= buf && out.entries[i].data + out.entries[i].len <= buf + len));
		free(buf);
	}
}

Test(msg_codec, the_hosts_snapshot_transfer_messages_round_trip)
{
	fill_entries();
	struct raft_msg chunk = sample((enum raft_msg_type)MSG_HOST_SNAPSHOT_CHUNK, 0);
	chunk.entries = &three[2];
	chunk.entry_count = 1;
	struct raft_msg ack = sample((enum raft_msg_type)MSG_HOST_SNAPSHOT_ACK, 1);
	const struct raft_msg *both[] = { &chunk, &ack };
	for (int k = 0; k < 2; k++) {
		size_t len;
		uint8_t *buf = encode_exact(both[k], &len);
		struct raft_msg out;
		cr_assert_eq(msg_codec_decode(buf, len, &limits, &out, decoded), 0);
		assert_same(both[k], &out);
		free(buf);
	}
	cr_assert(msg_codec_carries_entries(MSG_HOST_SNAPSHOT_CHUNK), "chunks: the data link");
	cr_assert(!msg_codec_carries_entries(MSG_HOST_SNAPSHOT_ACK), "acks: the control link");
	cr_assert(msg_codec_carries_entries(RAFT_MSG_APPEND) && !msg_codec_carries_entries(RAFT_MSG_HEARTBEAT));
	/* an ack carries no data; a type next to the host's is nobody's */
	uint8_t buf[4096];
	size_t len;
	ack.entries = three;
	ack.entry_count = 1;
	cr_assert_eq(msg_codec_encode(&ack, buf, sizeof buf, &len), -EINVAL);
	struct raft_msg other = sample((enum raft_msg_type)(MSG_HOST_SNAPSHOT_ACK + 1), 0);
	cr_assert_eq(msg_codec_encode(&other, buf, sizeof buf, &len), -EINVAL);
}
