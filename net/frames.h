/*
 * frames.h — building outgoing frames: int32 length, ReplyHeader{xid, zxid, err},
 * record. A frame is started with frame_begin() (which reserves the length and
 * writes the header) and closed with frame_end() (which patches the length).
 */
#ifndef RK_FRAMES_H
#define RK_FRAMES_H

#include "core/jute.h"
#include "core/zk_proto.h"

static inline size_t frame_begin(struct jute_writer *w, int32_t xid, int64_t zxid, int32_t err)
{
	size_t start = w->len;
	jute_write_int(w, 0);
	jute_write_int(w, xid);
	jute_write_long(w, zxid);
	jute_write_int(w, err);
	return start;
}

static inline void frame_end(struct jute_writer *w, size_t start)
{
	jute_patch_int(w, start, (int32_t)(w->len - start - 4));
}

/* A watch notification (xid -1, zxid -1 as ZooKeeper 3.8 sends, state SyncConnected). */
static inline void frame_notification(struct jute_writer *w, int32_t type, const char *path, size_t path_len)
{
	size_t start = frame_begin(w, ZK_XID_NOTIFICATION, -1, ZK_OK);
	jute_write_int(w, type);
	jute_write_int(w, ZK_STATE_SYNC_CONNECTED);
	jute_write_string(w, path, (int32_t)path_len);
	frame_end(w, start);
}

#endif
