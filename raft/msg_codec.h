/*
 * msg_codec.h — the wire form of a struct raft_msg (raft/core.h) between servers: one
 * self-delimiting, checksummed, big-endian frame per message. Used by the peer
 * transport (raft/transport.c); pure functions, any thread, no allocation.
 *
 * FRAME (all integers big-endian)
 *
 *   off  size  field
 *   0    u32   frame_bytes   the whole frame, this field included
 *   4    u8    version       MSG_CODEC_VERSION
 *   5    u8    type          enum raft_msg_type, or enum msg_codec_host_type
 *   6    u8    flags         bit 0 reject, bit 1 transfer; other bits 0
 *   7    u8    reserved      0
 *   8    u32   crc           CRC-32C of bytes [0, frame_bytes) with this field taken as 0
 *   12   u32   entry_count   0 unless type is APPEND or PROP
 *   16   u64   from
 *   24   u64   to
 *   32   u64   term
 *   40   u64   log_index
 *   48   u64   log_term
 *   56   u64   commit
 *   64   u64   index
 *   72   u64   reject_term
 *   80   u64   ctx
 *   88   entry_count × { u64 index, u64 term, u8 type, u8 reserved[3] (0), u32 len,
 *                        len bytes of data }
 *
 * INVARIANTS
 *   1. frame_bytes == MSG_CODEC_HEADER_BYTES + Σ (MSG_CODEC_ENTRY_HEADER_BYTES + len):
 *      the entries fill the frame exactly; a frame with bytes left over, or one whose
 *      entries run past its end, is -EPROTO.
 *   2. Every length is checked against the caller's limits before it is used:
 *      frame_bytes against frame_bytes_max (-EMSGSIZE), entry_count against
 *      entries_max (-EMSGSIZE); nothing is read outside [frame, frame + frame_bytes).
 *   3. The checksum is verified before any field other than frame_bytes is trusted.
 *   4. Decoded entries point into the frame (zero copy): they are valid while the
 *      frame's buffer is. raft_step copies what it keeps (raft/core.h, OWNERSHIP).
 *      Decoded entries have owner = NULL.
 *   5. encode(decode(f)) == f and decode(encode(m)) == m field for field (round trip).
 */
#ifndef RK_RAFT_MSG_CODEC_H
#define RK_RAFT_MSG_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core.h"

/*
 * Messages between the hosts (the raft threads) that the consensus core never sees:
 * the snapshot transfer (raft/pipeline_install.c). Same frame and struct raft_msg;
 * their type numbers are outside enum raft_msg_type.
 *   SNAPSHOT_CHUNK (leader to follower, data link): index/log_term = the snapshot's,
 *     ctx = byte offset of the chunk, commit = the file's size, one entry (index and
 *     term the snapshot's, type NORMAL) holding the chunk's bytes.
 *   SNAPSHOT_ACK (follower to leader, control link): index = the snapshot's, ctx =
 *     bytes received in order (the next offset wanted); reject: start again from 0;
 *     log_index 1: a chunk came past that offset (one was lost): send again from it.
 */
enum msg_codec_host_type {
	MSG_HOST_SNAPSHOT_CHUNK = 64,
	MSG_HOST_SNAPSHOT_ACK = 65,
};

static inline bool msg_codec_is_host_type(uint32_t type)
{
	return type == MSG_HOST_SNAPSHOT_CHUNK || type == MSG_HOST_SNAPSHOT_ACK;
}

/* Whether a message of this type (the core's or a host's) carries entries: bulk, sent
 * on the data link. */
static inline bool msg_codec_carries_entries(uint32_t type)
{
	if (type == MSG_HOST_SNAPSHOT_CHUNK)
		return true;
	if (msg_codec_is_host_type(type))
		return false;
	return raft_msg_carries_entries((enum raft_msg_type)type);
}

#define MSG_CODEC_VERSION 1
#define MSG_CODEC_HEADER_BYTES 88
#define MSG_CODEC_ENTRY_HEADER_BYTES 24
/* Hard upper bounds; the caller's limits are at most these. */
#define MSG_CODEC_FRAME_BYTES_MAX (256u << 20)
#define MSG_CODEC_ENTRIES_MAX RAFT_MSG_ENTRIES_MAX

struct msg_codec_limits {
	size_t frame_bytes_max; /* MSG_CODEC_HEADER_BYTES..MSG_CODEC_FRAME_BYTES_MAX */
	int entries_max;        /* 0..MSG_CODEC_ENTRIES_MAX; also the entries array's size */
};

/* Bytes the frame of m takes (m well formed: entry_count >= 0, entries if count > 0). */
size_t msg_codec_frame_bytes(const struct raft_msg *m);

/*
 * Writes m's frame into buf[0..cap). 0 with *written = msg_codec_frame_bytes(m);
 * -EMSGSIZE when it does not fit cap or exceeds MSG_CODEC_FRAME_BYTES_MAX or has more
 * than MSG_CODEC_ENTRIES_MAX entries; -EINVAL for a type or entry type out of range, a
 * negative entry_count, or entries on a type that carries none.
 */
int msg_codec_encode(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *written);

/*
 * Looks at the first bytes of a stream: 0 with *frame_bytes when the length prefix is
 * there and plausible (the frame is complete once avail >= *frame_bytes); -EAGAIN when
 * fewer than 4 bytes are available; -EMSGSIZE above limits->frame_bytes_max; -EPROTO
 * below MSG_CODEC_HEADER_BYTES.
 */
int msg_codec_peek(const uint8_t *buf, size_t avail, const struct msg_codec_limits *limits,
		   size_t *frame_bytes);

/*
 * Decodes one whole frame of exactly len bytes into *m; its entries go to
 * entries[0..limits->entries_max) and point into frame (invariant 4). 0, -EMSGSIZE (a
 * limit), -EPROTO (anything else malformed: checksum, version, type, flags, reserved
 * bytes, lengths). On an error *m is unspecified.
 */
int msg_codec_decode(const uint8_t *frame, size_t len, const struct msg_codec_limits *limits,
		     struct raft_msg *m, struct raft_entry *entries);

#endif
