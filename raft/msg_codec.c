/*
 * msg_codec.c — struct raft_msg ⇄ wire frame. The layout and its invariants are in
 * msg_codec.h; this file only reads each field once, checks it, and stays inside the
 * frame.
 */
#include "raft/msg_codec.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/crc32c.h"

#define FLAG_REJECT 0x01u
#define FLAG_TRANSFER 0x02u
#define CRC_OFFSET 8

static_assert(MSG_CODEC_HEADER_BYTES == 16 + 9 * 8, "header layout");
static_assert(MSG_CODEC_ENTRY_HEADER_BYTES == 8 + 8 + 4 + 4, "entry header layout");
static_assert(MSG_CODEC_FRAME_BYTES_MAX <= UINT32_MAX, "frame_bytes is a u32");

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* Whether a message of this type may carry entries; false for a type out of range. */
static bool type_valid(uint32_t type, bool *carries_entries)
{
	*carries_entries = false;
	if ((type < RAFT_MSG_APPEND || type > RAFT_MSG_READ_INDEX_RESP) && !msg_codec_is_host_type(type))
		return false;
	*carries_entries = msg_codec_carries_entries(type);
	return true;
}

static bool entry_type_valid(uint32_t type)
{
	if (type < RAFT_ENTRY_NORMAL || type > RAFT_ENTRY_NOOP)
		return false;
	switch ((enum raft_entry_type)type) {
	case RAFT_ENTRY_NORMAL:
	case RAFT_ENTRY_NOOP:
		return true;
	}
	return false;
}

size_t msg_codec_frame_bytes(const struct raft_msg *m)
{
	size_t bytes = MSG_CODEC_HEADER_BYTES;
	for (int i = 0; i < m->entry_count; i++)
		bytes += MSG_CODEC_ENTRY_HEADER_BYTES + (size_t)m->entries[i].len;
	return bytes;
}

int msg_codec_encode(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *written)
{
	bool carries_entries;
	if (!type_valid((uint32_t)m->type, &carries_entries) || m->entry_count < 0)
		return -EINVAL;
	if (m->entry_count > 0 && (!carries_entries || !m->entries))
		return -EINVAL;
	if (m->entry_count > MSG_CODEC_ENTRIES_MAX)
		return -EMSGSIZE;
	for (int i = 0; i < m->entry_count; i++) {
		if (!entry_type_valid((uint32_t)m->entries[i].type))
			return -EINVAL;
		if (m->entries[i].len > 0 && !m->entries[i].data)
			return -EINVAL;
	}
	size_t bytes = msg_codec_frame_bytes(m);
	if (bytes > MSG_CODEC_FRAME_BYTES_MAX || bytes > cap)
		return -EMSGSIZE;

	put_u32(buf, (uint32_t)bytes);
	buf[4] = MSG_CODEC_VERSION;
	buf[5] = (uint8_t)m->type;
	buf[6] = (uint8_t)((m->reject ? FLAG_REJECT : 0) | (m->transfer ? FLAG_TRANSFER : 0));
	buf[7] = 0;
	put_u32(buf + CRC_OFFSET, 0);
	put_u32(buf + 12, (uint32_t)m->entry_count);
	put_u64(buf + 16, m->from);
	put_u64(buf + 24, m->to);
	put_u64(buf + 32, m->term);
	put_u64(buf + 40, m->log_index);
	put_u64(buf + 48, m->log_term);
	put_u64(buf + 56, m->commit);
	put_u64(buf + 64, m->index);
	put_u64(buf + 72, m->reject_term);
	put_u64(buf + 80, m->ctx);
	size_t off = MSG_CODEC_HEADER_BYTES;
	for (int i = 0; i < m->entry_count; i++) {
		const struct raft_entry *e = &m->entries[i];
		uint8_t *p = buf + off;
		put_u64(p, e->index);
		put_u64(p + 8, e->term);
		p[16] = (uint8_t)e->type;
		p[17] = p[18] = p[19] = 0;
		put_u32(p + 20, e->len);
		if (e->len)
			memcpy(p + MSG_CODEC_ENTRY_HEADER_BYTES, e->data, e->len);
		off += MSG_CODEC_ENTRY_HEADER_BYTES + e->len;
	}
	assert(off == bytes);
	put_u32(buf + CRC_OFFSET, crc32c(buf, bytes));
	*written = bytes;
	return 0;
}

int msg_codec_peek(const uint8_t *buf, size_t avail, const struct msg_codec_limits *limits,
		   size_t *frame_bytes)
{
	assert(limits->frame_bytes_max <= MSG_CODEC_FRAME_BYTES_MAX);
	if (avail < 4)
		return -EAGAIN;
	uint32_t bytes = get_u32(buf);
	if (bytes > limits->frame_bytes_max)
		return -EMSGSIZE;
	if (bytes < MSG_CODEC_HEADER_BYTES)
		return -EPROTO;
	*frame_bytes = bytes;
	return 0;
}

int msg_codec_decode(const uint8_t *frame, size_t len, const struct msg_codec_limits *limits,
		     struct raft_msg *m, struct raft_entry *entries)
{
	assert(limits->entries_max >= 0 && limits->entries_max <= MSG_CODEC_ENTRIES_MAX);
	size_t bytes;
	int rc = msg_codec_peek(frame, len, limits, &bytes);
	if (rc == -EAGAIN)
		return -EPROTO;
	if (rc < 0)
		return rc;
	if (bytes != len)
		return -EPROTO;
	/* Invariant 3: the checksum first. */
	uint32_t crc_stored = get_u32(frame + CRC_OFFSET);
	static const uint8_t zero[4];
	uint32_t crc = crc32c_extend(0, frame, CRC_OFFSET);
	crc = crc32c_extend(crc, zero, sizeof zero);
	crc = crc32c_extend(crc, frame + CRC_OFFSET + 4, len - CRC_OFFSET - 4);
	if (crc != crc_stored)
		return -EPROTO;
	if (frame[4] != MSG_CODEC_VERSION || frame[7] != 0)
		return -EPROTO;
	bool carries_entries;
	if (!type_valid(frame[5], &carries_entries))
		return -EPROTO;
	uint8_t flags = frame[6];
	if (flags & ~(FLAG_REJECT | FLAG_TRANSFER))
		return -EPROTO;
	uint32_t entry_count = get_u32(frame + 12);
	if (entry_count > 0 && !carries_entries)
		return -EPROTO;
	if (entry_count > (uint32_t)limits->entries_max)
		return -EMSGSIZE;

	memset(m, 0, sizeof *m);
	m->type = (enum raft_msg_type)frame[5];
	m->reject = flags & FLAG_REJECT;
	m->transfer = flags & FLAG_TRANSFER;
	m->entry_count = (int)entry_count;
	m->from = get_u64(frame + 16);
	m->to = get_u64(frame + 24);
	m->term = get_u64(frame + 32);
	m->log_index = get_u64(frame + 40);
	m->log_term = get_u64(frame + 48);
	m->commit = get_u64(frame + 56);
	m->index = get_u64(frame + 64);
	m->reject_term = get_u64(frame + 72);
	m->ctx = get_u64(frame + 80);
	m->entries = entry_count ? entries : NULL;

	/* Invariant 1: the entries fill the frame exactly; every step checks the room left. */
	size_t off = MSG_CODEC_HEADER_BYTES;
	for (uint32_t i = 0; i < entry_count; i++) {
		if (len - off < MSG_CODEC_ENTRY_HEADER_BYTES)
			return -EPROTO;
		const uint8_t *p = frame + off;
		if (!entry_type_valid(p[16]) || p[17] || p[18] || p[19])
			return -EPROTO;
		uint32_t data_len = get_u32(p + 20);
		off += MSG_CODEC_ENTRY_HEADER_BYTES;
		if (len - off < data_len)
			return -EPROTO;
		entries[i] = (struct raft_entry){
			.index = get_u64(p),
			.term = get_u64(p + 8),
			.type = (enum raft_entry_type)p[16],
			.len = data_len,
			.owner = NULL,
			.data = data_len ? frame + off : NULL,
		};
		off += data_len;
	}
	if (off != len)
		return -EPROTO;
	return 0;
}
