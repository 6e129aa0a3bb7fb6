/*
 * zk_stream.h — reading a ZooKeeper file (a snapshot or a transaction log) as a stream
 * of bytes through a window that a record parser looks at, with the running Adler-32
 * ZooKeeper seals its snapshots with.
 *
 * Compression (ZooKeeper's zookeeper.snapshot.compression.method, chosen by the file
 * name's extension exactly as ZooKeeper's SnapStream.getStreamMode does):
 *   none      snapshot.<zxid>          the bytes as they are
 *   gz        snapshot.<zxid>.gz       gzip (java.util.zip.GZIPOutputStream): zlib
 *   snappy    snapshot.<zxid>.snappy   snappy-java's SnappyOutputStream framing: a
 *             16-byte header (8 magic bytes "\x82SNAPPY\0", int version, int
 *             compatible version), then chunks {int32 BE length, raw snappy block};
 *             a header may appear again where a chunk would start (concatenated
 *             streams). Blocks are decoded with libsnappy.
 * The Adler-32 is computed over the uncompressed bytes, as ZooKeeper's
 * CheckedInputStream sits above the decompressor.
 *
 * How a parser uses it (zk_stream_parse):
 *   the parser decodes one record from the window with a jute reader; if the reader
 *   runs out of bytes and the file has more, the window is refilled (and grown up to
 *   ZK_STREAM_RECORD_BYTES_MAX) and the parser runs again from the record's start. So
 *   a parser must not change anything before it succeeds; the views it made point
 *   into the window and stay valid until the next zk_stream_parse or consume.
 *
 * Invariants
 *   1. Nothing outside the window is ever read; every length is checked by the jute
 *      reader before use.
 *   2. The window never grows past ZK_STREAM_RECORD_BYTES_MAX; a record larger than
 *      that fails with -E2BIG (and a reason), not an unbounded allocation.
 *   3. `adler` covers exactly the bytes consumed so far, in order.
 *   4. A compressed stream that ends early (truncated file) is reported as the end of
 *      the stream with `truncated` set; one whose data is wrong (a bad gzip CRC or
 *      block, a bad snappy block) fails with -EBADMSG and a reason.
 *
 * Thread: none; a stream belongs to whoever opened it.
 */
#ifndef RK_ZK_STREAM_H
#define RK_ZK_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"

#define ZK_STREAM_RECORD_BYTES_MAX (512u << 20)
#define ZK_SNAPPY_CHUNK_BYTES_MAX (64u << 20)

enum zk_compression {
	ZK_COMPRESSION_NONE,
	ZK_COMPRESSION_GZIP,
	ZK_COMPRESSION_SNAPPY,
};

struct zk_stream;

/* The compression a file name says (SnapStream.getStreamMode: the last extension). */
enum zk_compression zk_compression_of_name(const char *name);
const char *zk_compression_name(enum zk_compression c);
/* False when this build cannot read that compression (no libsnappy at build time). */
bool zk_compression_supported(enum zk_compression c);

/* 0 or -errno (why says what). */
int zk_stream_open(struct zk_stream **out, const char *path, enum zk_compression comp, char *why, size_t why_size);
void zk_stream_close(struct zk_stream *s);

/*
 * Parses one record (see the top of this file). parse returns 0 when it decoded a
 * record (or ran out of bytes: that is seen through r->err and needs no code of its
 * own), or a negative errno other than -EPROTO for a record that is wrong in itself
 * (say -EBADMSG; it keeps its own reason).
 * Returns 0 (*used = the record's bytes, still in the window until consumed),
 * -ENODATA when the stream ended inside the record (*used = 0; at a record boundary
 * when zk_stream_at_end() is also true), parse's error, -EBADMSG (decompression),
 * -E2BIG, -ENOMEM or -errno from reading.
 */
typedef int (*zk_stream_parse_fn)(void *ctx, struct jute_reader *r);
int zk_stream_parse(struct zk_stream *s, zk_stream_parse_fn parse, void *ctx, size_t *used);
/* Consumes n bytes of the window (adds them to the Adler-32). */
void zk_stream_consume(struct zk_stream *s, size_t n);
/* True when every byte of the stream has been consumed. */
bool zk_stream_at_end(struct zk_stream *s);
/* The Adler-32 of the bytes consumed so far (java.util.zip.Adler32 value). */
uint32_t zk_stream_adler(const struct zk_stream *s);
/* Bytes consumed so far (uncompressed). */
uint64_t zk_stream_offset(const struct zk_stream *s);
/* True when the compressed data ended before the compression format said it would. */
bool zk_stream_truncated(const struct zk_stream *s);
/* Why the last call failed, in words. */
const char *zk_stream_why(const struct zk_stream *s);

#endif
