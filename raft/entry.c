/* entry.c — see entry.h. */
#include "raft/entry.h"

#include <assert.h>
#include <errno.h>

void entry_encode(struct jute_writer *w, int64_t session_id, int32_t opcode, bool super, const struct zk_id *ids,
		  int ids_count, const void *body, size_t body_len)
{
	if (ids_count > RK_ENTRY_IDS_MAX)
		ids_count = RK_ENTRY_IDS_MAX;
	jute_write_long(w, 0);
	jute_write_long(w, session_id);
	jute_write_int(w, opcode);
	jute_write_byte(w, RK_ENTRY_VERSION);
	jute_write_byte(w, super ? RK_ENTRY_FLAG_SUPER : 0);
	jute_write_byte(w, (uint8_t)ids_count);
	jute_write_long(w, 0); /* origin: stamped by the proposing server */
	for (int i = 0; i < ids_count; i++)
		jute_write_id(w, &ids[i]);
	jute_write_raw(w, body, body_len);
}

int entry_decode(struct rk_entry *e, const uint8_t *buf, size_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, buf, len);
	e->time_ms = jute_read_long(&r);
	e->session_id = jute_read_long(&r);
	e->opcode = jute_read_int(&r);
	uint8_t version = jute_read_byte(&r);
	uint8_t flags = jute_read_byte(&r);
	uint8_t count = jute_read_byte(&r);
	if (!jute_reader_ok(&r) || version < 1 || version > RK_ENTRY_VERSION || count > RK_ENTRY_IDS_MAX)
		return -EPROTO;
	e->origin = version >= RK_ENTRY_VERSION_ORIGIN ? (uint64_t)jute_read_long(&r) : 0;
	e->super = flags & RK_ENTRY_FLAG_SUPER;
	e->server_own = version >= 3 && (flags & RK_ENTRY_FLAG_SERVER);
	e->owner_checked = version >= 3 && !e->server_own && e->origin != 0;
	e->ids_count = count;
	for (int i = 0; i < count; i++)
		jute_read_id(&r, &e->ids[i]);
	if (!jute_reader_ok(&r))
		return -EPROTO;
	e->body = buf + r.pos;
	e->body_len = len - r.pos;
	return 0;
}

uint64_t entry_origin(const uint8_t *buf, size_t len)
{
	if (len < RK_ENTRY_HEADER_BYTES)
		return 0;
	uint8_t version = buf[RK_ENTRY_VERSION_OFFSET];
	if (version < RK_ENTRY_VERSION_ORIGIN || version > RK_ENTRY_VERSION)
		return 0;
	return (uint64_t)jute_get_be32(buf + RK_ENTRY_ORIGIN_OFFSET) << 32 |
	       jute_get_be32(buf + RK_ENTRY_ORIGIN_OFFSET + 4);
}

void entry_set_origin(uint8_t *buf, uint64_t origin)
{
	assert(buf[RK_ENTRY_VERSION_OFFSET] == RK_ENTRY_VERSION);
	jute_put_be32(buf + RK_ENTRY_ORIGIN_OFFSET, (uint32_t)(origin >> 32));
	jute_put_be32(buf + RK_ENTRY_ORIGIN_OFFSET + 4, (uint32_t)origin);
}

void entry_set_server_own(uint8_t *buf)
{
	assert(buf[RK_ENTRY_VERSION_OFFSET] == RK_ENTRY_VERSION);
	buf[RK_ENTRY_FLAGS_OFFSET] |= RK_ENTRY_FLAG_SERVER;
}

void entry_set_time(uint8_t *buf, int64_t time_ms)
{
	jute_put_be32(buf + RK_ENTRY_TIME_OFFSET, (uint32_t)((uint64_t)time_ms >> 32));
	jute_put_be32(buf + RK_ENTRY_TIME_OFFSET + 4, (uint32_t)time_ms);
}
