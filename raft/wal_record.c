/*
 * wal_record.c — the log's record format (layout: "ON-DISK LAYOUT" in wal.c): encode
 * a record with its CRC32C, decode and verify one. Pure functions, any thread, no
 * allocation; used by the append path, recovery, truncation and the tests.
 */
#include "raft/wal.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/crc32c.h"
#include "raft/wal_impl.h"

struct wal_record_header {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t payload_size;
	uint32_t crc32c;
	uint64_t term;
	uint64_t index;
	uint64_t batch_first_index;
};

static_assert(sizeof(struct wal_record_header) == WAL_RECORD_HEADER_SIZE, "record header");
static_assert(offsetof(struct wal_record_header, crc32c) == 12, "crc offset");
static_assert(offsetof(struct wal_record_header, term) == 16, "term offset");
static_assert(offsetof(struct wal_record_header, batch_first_index) == 32, "batch offset");

size_t wal_record_encode(void *dst, size_t cap, uint64_t term, uint64_t index,
			 uint64_t batch_first_index, const void *data, uint32_t size)
{
	return wal_record_encode_window(dst, cap, term, index, batch_first_index, data, size, 1);
}

size_t wal_record_encode_window(void *dst, size_t cap, uint64_t term, uint64_t index,
				uint64_t batch_first_index, const void *data, uint32_t size,
				uint32_t inflight_max)
{
	assert(inflight_max >= 1 && inflight_max <= WAL_INFLIGHT_CAP);
	size_t total = WAL_RECORD_HEADER_SIZE + (size_t)size;
	if (total > cap)
		return 0;
	uint8_t *p = dst;
	wal_put_le32(p + 0, WAL_RECORD_MAGIC);
	wal_put_le16(p + 4, WAL_RECORD_VERSION);
	wal_put_le16(p + 6, (uint16_t)((inflight_max - 1) & WAL_RECORD_FLAG_WINDOW_MASK));
	wal_put_le32(p + 8, size);
	wal_put_le32(p + 12, 0);
	wal_put_le64(p + 16, term);
	wal_put_le64(p + 24, index);
	wal_put_le64(p + 32, batch_first_index);
	if (size > 0)
		memcpy(p + WAL_RECORD_HEADER_SIZE, data, size);
	uint32_t crc = crc32c(p, total);
	wal_put_le32(p + 12, crc);
	return total;
}

long wal_record_decode(const void *src, size_t avail, struct wal_record_view *out)
{
	const uint8_t *p = src;
	if (avail < WAL_RECORD_HEADER_SIZE) {
		for (size_t k = 0; k < avail; k++)
			if (p[k])
				return -EBADMSG;
		return -ENODATA;
	}
	uint32_t magic = wal_get_le32(p);
	if (magic == 0)
		return -ENODATA;
	if (magic != WAL_RECORD_MAGIC || wal_get_le16(p + 4) != WAL_RECORD_VERSION ||
	    (wal_get_le16(p + 6) & ~WAL_RECORD_FLAG_WINDOW_MASK) != 0)
		return -EBADMSG;
	uint32_t size = wal_get_le32(p + 8);
	if (size > avail - WAL_RECORD_HEADER_SIZE)
		return -EBADMSG;
	uint8_t header[WAL_RECORD_HEADER_SIZE];
	memcpy(header, p, sizeof(header));
	wal_put_le32(header + 12, 0);
	uint32_t crc = crc32c_extend(crc32c(header, sizeof(header)), p + WAL_RECORD_HEADER_SIZE,
				     size);
	if (crc != wal_get_le32(p + 12))
		return -EBADMSG;
	out->term = wal_get_le64(p + 16);
	out->index = wal_get_le64(p + 24);
	out->batch_first_index = wal_get_le64(p + 32);
	out->data = p + WAL_RECORD_HEADER_SIZE;
	out->size = size;
	out->inflight_max = (wal_get_le16(p + 6) & WAL_RECORD_FLAG_WINDOW_MASK) + 1u;
	return (long)(WAL_RECORD_HEADER_SIZE + size);
}
