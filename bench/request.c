/*
 * request.c — see request.h. Field orders follow the jute records in the protocol
 * reference (§1 ConnectRequest, §3.1 request records, §3.4 MultiOperationRecord).
 */
#include "request.h"

#include <assert.h>

#include "core/zk_proto.h"

static size_t frame_begin(struct jute_writer *w, int32_t xid, int32_t op)
{
	size_t start = w->len;
	jute_write_int(w, 0); /* length, patched by frame_end */
	jute_write_int(w, xid);
	jute_write_int(w, op);
	return start;
}

static void frame_end(struct jute_writer *w, size_t start)
{
	if (!jute_writer_ok(w))
		return;
	assert(w->len >= start + 4);
	jute_patch_int(w, start, (int32_t)(w->len - start - 4));
}

static void write_open_acl(struct jute_writer *w)
{
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_ALL);
	jute_write_string(w, "world", 5);
	jute_write_string(w, "anyone", 6);
}

void request_write_connect(struct jute_writer *w, int32_t timeout_ms, int64_t last_zxid, int64_t session_id,
			   const uint8_t *passwd)
{
	static const uint8_t no_passwd[ZK_PASSWD_BYTES];
	size_t start = w->len;
	jute_write_int(w, 0);
	jute_write_int(w, 0); /* protocolVersion */
	jute_write_long(w, last_zxid);
	jute_write_int(w, timeout_ms);
	jute_write_long(w, session_id); /* 0: a new session */
	jute_write_buffer(w, passwd ? passwd : no_passwd, ZK_PASSWD_BYTES);
	jute_write_bool(w, false); /* readOnly */
	frame_end(w, start);
	assert(!jute_writer_ok(w) || w->len - start - 4 == BENCH_CONNECT_BODY_BYTES);
}

static void create_body(struct jute_writer *w, const char *path, size_t path_len, const uint8_t *data,
			size_t data_len, int32_t flags)
{
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_buffer(w, data, (int32_t)data_len);
	write_open_acl(w);
	jute_write_int(w, flags);
}

void request_write_create(struct jute_writer *w, int32_t xid, const char *path, size_t path_len, const uint8_t *data,
			  size_t data_len, int32_t flags)
{
	size_t start = frame_begin(w, xid, ZK_OP_CREATE);
	create_body(w, path, path_len, data, data_len, flags);
	frame_end(w, start);
}

void request_write_delete(struct jute_writer *w, int32_t xid, const char *path, size_t path_len, int32_t version)
{
	size_t start = frame_begin(w, xid, ZK_OP_DELETE);
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_int(w, version);
	frame_end(w, start);
}

void request_write_set(struct jute_writer *w, int32_t xid, const char *path, size_t path_len, const uint8_t *data,
		       size_t data_len, int32_t version)
{
	size_t start = frame_begin(w, xid, ZK_OP_SET_DATA);
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_buffer(w, data, (int32_t)data_len);
	jute_write_int(w, version);
	frame_end(w, start);
}

void request_write_path_watch(struct jute_writer *w, int32_t xid, int32_t op, const char *path, size_t path_len)
{
	assert(op == ZK_OP_GET_DATA || op == ZK_OP_EXISTS || op == ZK_OP_GET_CHILDREN || op == ZK_OP_GET_CHILDREN2);
	size_t start = frame_begin(w, xid, op);
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_bool(w, false);
	frame_end(w, start);
}

void request_write_sync(struct jute_writer *w, int32_t xid, const char *path, size_t path_len)
{
	size_t start = frame_begin(w, xid, ZK_OP_SYNC);
	jute_write_string(w, path, (int32_t)path_len);
	frame_end(w, start);
}

void request_write_ping(struct jute_writer *w)
{
	size_t start = frame_begin(w, ZK_XID_PING, ZK_OP_PING);
	frame_end(w, start);
}

void request_write_close(struct jute_writer *w, int32_t xid)
{
	size_t start = frame_begin(w, xid, ZK_OP_CLOSE_SESSION);
	frame_end(w, start);
}

size_t request_multi_begin(struct jute_writer *w, int32_t xid)
{
	return frame_begin(w, xid, ZK_OP_MULTI);
}

static void multi_header(struct jute_writer *w, int32_t type)
{
	jute_write_int(w, type);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
}

void request_multi_create(struct jute_writer *w, const char *path, size_t path_len, const uint8_t *data,
			  size_t data_len, int32_t flags)
{
	multi_header(w, ZK_OP_CREATE);
	create_body(w, path, path_len, data, data_len, flags);
}

void request_multi_set(struct jute_writer *w, const char *path, size_t path_len, const uint8_t *data,
		       size_t data_len, int32_t version)
{
	multi_header(w, ZK_OP_SET_DATA);
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_buffer(w, data, (int32_t)data_len);
	jute_write_int(w, version);
}

void request_multi_check(struct jute_writer *w, const char *path, size_t path_len, int32_t version)
{
	multi_header(w, ZK_OP_CHECK);
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_int(w, version);
}

void request_multi_delete(struct jute_writer *w, const char *path, size_t path_len, int32_t version)
{
	multi_header(w, ZK_OP_DELETE);
	jute_write_string(w, path, (int32_t)path_len);
	jute_write_int(w, version);
}

void request_multi_end(struct jute_writer *w, size_t frame_start)
{
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
	frame_end(w, frame_start);
}
