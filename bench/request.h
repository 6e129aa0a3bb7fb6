/*
 * request.h — encoders for the ZooKeeper requests the bench sends. Each call appends
 * one whole frame (int32 length + RequestHeader + body) to a jute writer, so a batch
 * of requests for one connection is one contiguous buffer and one send.
 *
 * Invariants
 *   1. The frame length is patched after the body: it always equals the bytes that
 *      follow it. A writer past its cap_max fails sticky (jute.h) and the caller drops
 *      the whole batch.
 *   2. Creates carry OPEN_ACL_UNSAFE ([31, world:anyone]), like a default client.
 *
 * Thread: none.
 */
#ifndef RK_BENCH_REQUEST_H
#define RK_BENCH_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"

/* ConnectRequest with the readOnly byte: a 45-byte body. */
#define BENCH_CONNECT_BODY_BYTES 45
/* ConnectResponse with the readOnly byte. */
#define BENCH_CONNECT_REPLY_BYTES 37

/* session_id 0 (passwd NULL) asks for a new session; otherwise it resumes that one. */
void request_write_connect(struct jute_writer *w, int32_t timeout_ms, int64_t last_zxid, int64_t session_id,
			   const uint8_t *passwd);
/* sync (9) of a path. */
void request_write_sync(struct jute_writer *w, int32_t xid, const char *path, size_t path_len);
void request_write_create(struct jute_writer *w, int32_t xid, const char *path, size_t path_len, const uint8_t *data,
			  size_t data_len, int32_t flags);
void request_write_delete(struct jute_writer *w, int32_t xid, const char *path, size_t path_len, int32_t version);
void request_write_set(struct jute_writer *w, int32_t xid, const char *path, size_t path_len, const uint8_t *data,
		       size_t data_len, int32_t version);
/* getData (4), exists (3), getChildren (8), getChildren2 (12): path + watch=false. */
void request_write_path_watch(struct jute_writer *w, int32_t xid, int32_t op, const char *path, size_t path_len);
void request_write_ping(struct jute_writer *w);
void request_write_close(struct jute_writer *w, int32_t xid);

/* A multi is begin, then sub-ops, then end. */
size_t request_multi_begin(struct jute_writer *w, int32_t xid);
void request_multi_create(struct jute_writer *w, const char *path, size_t path_len, const uint8_t *data,
			  size_t data_len, int32_t flags);
void request_multi_set(struct jute_writer *w, const char *path, size_t path_len, const uint8_t *data,
		       size_t data_len, int32_t version);
void request_multi_check(struct jute_writer *w, const char *path, size_t path_len, int32_t version);
void request_multi_delete(struct jute_writer *w, const char *path, size_t path_len, int32_t version);
void request_multi_end(struct jute_writer *w, size_t frame_start);

#endif
