/*
 * jute.h — the ZooKeeper "jute" record encoding: big-endian primitives, strings,
 * buffers, vectors, and the few records every module shares (Stat, Id, ACL).
 *
 * Invariants
 *   1. A reader never reads outside [buf, buf+len). Every length read from the wire is
 *      checked against the bytes that remain before it is used; a failed read sets
 *      r->err = -EPROTO (sticky) and returns zero/empty values, so callers may decode a
 *      whole record and check jute_reader_ok() once at the end.
 *   2. Strings and buffers read are views into the input (no copy); they live as long
 *      as the input does. len == -1 is jute's null and is preserved.
 *   3. A writer grows its buffer up to cap_max; past it, w->err = -E2BIG (sticky) and
 *      nothing more is written. Callers check jute_writer_ok() before using the bytes.
 *
 * Thread: none; a reader or writer belongs to whoever declared it.
 */
#ifndef RK_JUTE_H
#define RK_JUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jute_reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	int err; /* 0 or -EPROTO */
};

/* A view of a jute ustring or buffer. len == -1 means null (data == NULL). */
struct jute_bytes {
	const uint8_t *data;
	int32_t len;
};

struct jute_writer {
	uint8_t *buf; /* owned: malloc'ed, freed by jute_writer_free */
	size_t len;
	size_t cap;
	size_t cap_max; /* hard limit on len */
	int err;        /* 0 or -E2BIG / -ENOMEM */
};

struct zk_stat {
	int64_t czxid;
	int64_t mzxid;
	int64_t ctime;
	int64_t mtime;
	int32_t version;
	int32_t cversion;
	int32_t aversion;
	int64_t ephemeral_owner;
	int32_t data_length;
	int32_t num_children;
	int64_t pzxid;
};

struct zk_id {
	struct jute_bytes scheme;
	struct jute_bytes id;
};

struct zk_acl {
	int32_t perms;
	struct zk_id id;
};

void jute_reader_init(struct jute_reader *r, const void *buf, size_t len);
static inline bool jute_reader_ok(const struct jute_reader *r) { return r->err == 0; }
static inline size_t jute_reader_remaining(const struct jute_reader *r) { return r->len - r->pos; }

int32_t jute_read_int(struct jute_reader *r);
int64_t jute_read_long(struct jute_reader *r);
bool jute_read_bool(struct jute_reader *r);
uint8_t jute_read_byte(struct jute_reader *r);
struct jute_bytes jute_read_buffer(struct jute_reader *r);
struct jute_bytes jute_read_string(struct jute_reader *r);
/*
 * Reads a vector's element count. -1 (null) is returned as 0. A count that could not
 * fit in the remaining bytes at elem_bytes_min per element fails the reader.
 */
int32_t jute_read_vector_count(struct jute_reader *r, size_t elem_bytes_min);
void jute_read_stat(struct jute_reader *r, struct zk_stat *st);
void jute_read_id(struct jute_reader *r, struct zk_id *id);
void jute_read_acl(struct jute_reader *r, struct zk_acl *acl);

/* cap_max: the most bytes this writer may ever hold. */
void jute_writer_init(struct jute_writer *w, size_t cap_max);
void jute_writer_free(struct jute_writer *w);
static inline bool jute_writer_ok(const struct jute_writer *w) { return w->err == 0; }
static inline void jute_writer_reset(struct jute_writer *w) { w->len = 0; w->err = 0; }
/* Makes room for n more bytes; returns a pointer to them or NULL (err set). */
uint8_t *jute_writer_reserve(struct jute_writer *w, size_t n);

void jute_write_int(struct jute_writer *w, int32_t v);
void jute_write_long(struct jute_writer *w, int64_t v);
void jute_write_bool(struct jute_writer *w, bool v);
void jute_write_byte(struct jute_writer *w, uint8_t v);
void jute_write_raw(struct jute_writer *w, const void *data, size_t len);
/* len == -1 writes jute null. */
void jute_write_buffer(struct jute_writer *w, const void *data, int32_t len);
void jute_write_string(struct jute_writer *w, const char *s, int32_t len);
static inline void jute_write_bytes(struct jute_writer *w, struct jute_bytes b) { jute_write_buffer(w, b.data, b.len); }
void jute_write_stat(struct jute_writer *w, const struct zk_stat *st);
void jute_write_id(struct jute_writer *w, const struct zk_id *id);
void jute_write_acl(struct jute_writer *w, const struct zk_acl *acl);
/* Overwrites 4 bytes at offset (e.g. a frame length reserved earlier). */
void jute_patch_int(struct jute_writer *w, size_t offset, int32_t v);

static inline void jute_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t jute_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline bool jute_bytes_eq(struct jute_bytes b, const char *s, size_t len)
{
	return b.len >= 0 && (size_t)b.len == len && (len == 0 || __builtin_memcmp(b.data, s, len) == 0);
}

#endif
