/*
 * snap_format.h — the snapshot file: an image of the store (store/store_snap.h) at one
 * log index, lz4-compressed in blocks, checksummed per block and as a whole.
 *
 * ON-DISK LAYOUT (little-endian)
 *
 *   <dataDir>/snapshot/snapshot.<index, 20 digits>.rk       a complete snapshot
 *   <dataDir>/snapshot/snapshot.<index>.rk.tmp              being written; deleted at start
 *   <dataDir>/snapshot/snapshot.<index>.rk.damaged          found damaged at a start; kept
 *                                                           for the operator, never read
 *
 *   header, SNAP_HEADER_SIZE (64) bytes
 *     0   u8[8] magic "RKSNAP\r\n"
 *     8   u32   version (1)
 *     12  u32   header size (64)
 *     16  u64   index: the image is the store after applying every entry up to it
 *     24  u64   term of the entry at index (0 when index is 0)
 *     32  i64   created, ms since the epoch (information only)
 *     40  i64   the store's last zxid: the last entry that reached the store (<= index:
 *               entries that change nothing, such as a leader's no-op, do not move it)
 *     48  u8[12] zero
 *     60  u32   CRC32C of bytes 0..60
 *
 *   blocks, one after the other; each:
 *     0   u32   magic "RKSB"
 *     4   u32   raw size: bytes of records once decompressed (>= 1)
 *     8   u32   stored size: bytes of lz4 block data that follow
 *     12  u32   CRC32C of the stored bytes
 *     16  u32   records in the block
 *     20  u32   CRC32C of bytes 0..20
 *     24  ...   stored bytes (LZ4 block format)
 *
 *   trailer, SNAP_TRAILER_SIZE (64) bytes, at the very end of the file
 *     0   u32   magic "RKSE"
 *     4   u32   blocks
 *     8   u64   node records
 *     16  u64   session records
 *     24  u64   quota root records
 *     32  u64   raw bytes (sum of the blocks' raw sizes)
 *     40  u32   largest raw size of a block
 *     44  u32   zero
 *     48  u64   file size
 *     56  u32   CRC32C of every byte of the file before the trailer
 *     60  u32   CRC32C of bytes 0..60 of the trailer
 *
 *   records, packed in a block's raw bytes; a record never spans two blocks:
 *     u8 kind
 *     SNAP_REC_SESSION (1): i64 id, i32 timeout_ms, u8[16] password
 *     SNAP_REC_QUOTA_ROOT (2): u32 length, the normalized root path
 *     SNAP_REC_NODE (3):
 *       u32 path length, i32 data length (-1: null),
 *       i64 czxid, mzxid, pzxid, ctime, mtime, ephemeral owner (as the store keeps it:
 *           session id, container or TTL marker, 0),
 *       i32 version, stored cversion (creates of children), aversion,
 *       u32 ACL entries (SNAP_ACL_OPEN: the single entry [31, world:anyone]),
 *       path bytes, data bytes,
 *       per ACL entry: i32 perms, u32 scheme length, u32 id length, scheme, id
 *
 * INVARIANTS
 *   1. A file named snapshot.<i>.rk is complete: it is written under .tmp, fsynced,
 *      renamed, and its directory fsynced. Its index is i and its header says i.
 *   2. A file is valid only when the header, the trailer, every block and the file
 *      CRC check, the blocks fill the space between them exactly, and the counts
 *      match the records. Validity is decided before anything is loaded.
 *   3. The records are the image's sessions, quota roots and nodes, each once. A
 *      node's parent may come after it (loading links at the end).
 *   4. Every length is checked against what remains before it is used; nothing in a
 *      file can make the reader go out of bounds or allocate without a bound
 *      (SNAP_BLOCK_RAW_LIMIT).
 */
#ifndef RK_SNAP_FORMAT_H
#define RK_SNAP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_snap_node;
struct store_snap_session;

#define SNAP_VERSION 1u
#define SNAP_HEADER_SIZE 64u
#define SNAP_BLOCK_HEADER_SIZE 24u
#define SNAP_TRAILER_SIZE 64u
#define SNAP_BLOCK_TARGET (1u << 20)     /* a block is cut once its records pass this */
#define SNAP_BLOCK_RAW_LIMIT (256u << 20) /* the reader refuses larger blocks */
#define SNAP_ACL_OPEN UINT32_MAX

enum snap_record_kind {
	SNAP_REC_SESSION = 1,
	SNAP_REC_QUOTA_ROOT = 2,
	SNAP_REC_NODE = 3,
};

struct snap_header {
	uint64_t index;
	uint64_t term;
	int64_t created_ms;
	int64_t store_zxid;
};

struct snap_trailer {
	uint32_t block_count;
	uint64_t node_count;
	uint64_t session_count;
	uint64_t quota_root_count;
	uint64_t raw_bytes;
	uint32_t block_raw_max;
	uint64_t file_bytes;
	uint32_t file_crc;
};

struct snap_block_header {
	uint32_t raw_size;
	uint32_t stored_size;
	uint32_t stored_crc;
	uint32_t record_count;
};

void snap_header_encode(uint8_t out[SNAP_HEADER_SIZE], const struct snap_header *h);
/* 0, or -EBADMSG (magic, version, size or CRC). */
int snap_header_decode(const uint8_t in[SNAP_HEADER_SIZE], struct snap_header *h);
void snap_trailer_encode(uint8_t out[SNAP_TRAILER_SIZE], const struct snap_trailer *t);
int snap_trailer_decode(const uint8_t in[SNAP_TRAILER_SIZE], struct snap_trailer *t);
void snap_block_header_encode(uint8_t out[SNAP_BLOCK_HEADER_SIZE], const struct snap_block_header *b);
/* 0, or -EBADMSG (magic, CRC, a size of 0 or past SNAP_BLOCK_RAW_LIMIT). */
int snap_block_header_decode(const uint8_t in[SNAP_BLOCK_HEADER_SIZE], struct snap_block_header *b);

/* A growable byte buffer for a block's records. */
struct snap_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: the contents are incomplete */
};

void snap_buf_free(struct snap_buf *b);
/* Appends one record; returns its size (0 when out of memory: b->failed is set). */
size_t snap_record_node(struct snap_buf *b, const struct store_snap_node *n);
size_t snap_record_session(struct snap_buf *b, const struct store_snap_session *se);
size_t snap_record_quota_root(struct snap_buf *b, const char *root, size_t len);

/* One decoded record; pointers into the block's raw bytes (and acl_scratch). */
struct snap_record {
	enum snap_record_kind kind;
	const uint8_t *bytes; /* SNAP_REC_QUOTA_ROOT: the root */
	size_t len;
	int64_t session_id;
	int32_t timeout_ms;
	const uint8_t *passwd; /* 16 bytes */
};

/*
 * Decodes the record at raw[*pos..len) and advances *pos. For a node, *node is
 * filled, its ACL entries decoded into *acl_scratch (grown with realloc as needed;
 * the caller frees it). 0, -EBADMSG (malformed: truncated, unknown kind, a bad
 * length), -ENOMEM.
 */
int snap_record_decode(const uint8_t *raw, size_t len, size_t *pos, struct snap_record *rec,
		       struct store_snap_node *node, void **acl_scratch, size_t *acl_scratch_cap);

/* snapshot.<index, 20 digits>.rk (and the .tmp name); out needs SNAP_NAME_MAX bytes. */
#define SNAP_NAME_MAX 48
void snap_file_name(char *out, uint64_t index, bool tmp);
/* The index of a complete snapshot's file name; false for any other name. */
bool snap_file_name_parse(const char *name, uint64_t *index);

#endif
