/*
 * snap_format.c — encoding and decoding of the snapshot file's parts (see
 * snap_format.h for the layout). Pure: no I/O, any thread.
 */
#include "snapshot/snap_format.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "store/store_snap.h"

static const uint8_t snap_magic[8] = { 'R', 'K', 'S', 'N', 'A', 'P', '\r', '\n' };
#define SNAP_BLOCK_MAGIC 0x42534b52u   /* "RKSB" read little-endian */
#define SNAP_TRAILER_MAGIC 0x45534b52u /* "RKSE" */
#define SNAP_NODE_FIXED_SIZE (1 + 4 + 4 + 6 * 8 + 3 * 4 + 4)
#define SNAP_ACL_ENTRY_FIXED_SIZE 12u

static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

/* ---------------------------------------------------------------- header, trailer, blocks */

void snap_header_encode(uint8_t out[SNAP_HEADER_SIZE], const struct snap_header *h)
{
	memset(out, 0, SNAP_HEADER_SIZE);
	memcpy(out, snap_magic, sizeof snap_magic);
	put32(out + 8, SNAP_VERSION);
	put32(out + 12, SNAP_HEADER_SIZE);
	put64(out + 16, h->index);
	put64(out + 24, h->term);
	put64(out + 32, (uint64_t)h->created_ms);
	put64(out + 40, (uint64_t)h->store_zxid);
	put32(out + 60, crc32c(out, 60));
}

int snap_header_decode(const uint8_t in[SNAP_HEADER_SIZE], struct snap_header *h)
{
	if (memcmp(in, snap_magic, sizeof snap_magic) != 0 || get32(in + 8) != SNAP_VERSION ||
	    get32(in + 12) != SNAP_HEADER_SIZE || get32(in + 60) != crc32c(in, 60))
		return -EBADMSG;
	h->index = get64(in + 16);
	h->term = get64(in + 24);
	h->created_ms = (int64_t)get64(in + 32);
	h->store_zxid = (int64_t)get64(in + 40);
	if (h->store_zxid < 0 || (uint64_t)h->store_zxid > h->index)
		return -EBADMSG;
	return 0;
}

void snap_trailer_encode(uint8_t out[SNAP_TRAILER_SIZE], const struct snap_trailer *t)
{
	memset(out, 0, SNAP_TRAILER_SIZE);
	put32(out, SNAP_TRAILER_MAGIC);
	put32(out + 4, t->block_count);
	put64(out + 8, t->node_count);
	put64(out + 16, t->session_count);
	put64(out + 24, t->quota_root_count);
	put64(out + 32, t->raw_bytes);
	put32(out + 40, t->block_raw_max);
	put64(out + 48, t->file_bytes);
	put32(out + 56, t->file_crc);
	put32(out + 60, crc32c(out, 60));
}

int snap_trailer_decode(const uint8_t in[SNAP_TRAILER_SIZE], struct snap_trailer *t)
{
	if (get32(in) != SNAP_TRAILER_MAGIC || get32(in + 60) != crc32c(in, 60) || get32(in + 44) != 0)
		return -EBADMSG;
	t->block_count = get32(in + 4);
	t->node_count = get64(in + 8);
	t->session_count = get64(in + 16);
	t->quota_root_count = get64(in + 24);
	t->raw_bytes = get64(in + 32);
	t->block_raw_max = get32(in + 40);
	t->file_bytes = get64(in + 48);
	t->file_crc = get32(in + 56);
	if (t->block_raw_max > SNAP_BLOCK_RAW_LIMIT)
		return -EBADMSG;
	return 0;
}

void snap_block_header_encode(uint8_t out[SNAP_BLOCK_HEADER_SIZE], const struct snap_block_header *b)
{
	put32(out, SNAP_BLOCK_MAGIC);
	put32(out + 4, b->raw_size);
	put32(out + 8, b->stored_size);
	put32(out + 12, b->stored_crc);
	put32(out + 16, b->record_count);
	put32(out + 20, crc32c(out, 20));
}

int snap_block_header_decode(const uint8_t in[SNAP_BLOCK_HEADER_SIZE], struct snap_block_header *b)
{
	if (get32(in) != SNAP_BLOCK_MAGIC || get32(in + 20) != crc32c(in, 20))
		return -EBADMSG;
	b->raw_size = get32(in + 4);
	b->stored_size = get32(in + 8);
	b->stored_crc = get32(in + 12);
	b->record_count = get32(in + 16);
	if (b->raw_size == 0 || b->raw_size > SNAP_BLOCK_RAW_LIMIT || b->stored_size == 0 ||
	    b->stored_size > SNAP_BLOCK_RAW_LIMIT + SNAP_BLOCK_RAW_LIMIT / 255 + 16 || b->record_count == 0)
		return -EBADMSG;
	return 0;
}

/* ---------------------------------------------------------------- records: encoding */

void snap_buf_free(struct snap_buf *b)
{
	free(b->p);
	*b = (struct snap_buf){ 0 };
}

/* Room for `more` bytes at b->p + b->len, or NULL (failed set). */
static uint8_t *buf_room(struct snap_buf *b, size_t more)
{
	if (b->failed)
		return NULL;
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 64 << 10;
		while (cap < b->len + more)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

static bool acl_is_open(const struct store_snap_node *n)
{
	return n->acl_count == 1 && n->acl[0].perms == 31 && n->acl[0].scheme_len == 5 &&
	       memcmp(n->acl[0].scheme, "world", 5) == 0 && n->acl[0].id_len == 6 &&
	       memcmp(n->acl[0].id, "anyone", 6) == 0;
}

size_t snap_record_node(struct snap_buf *b, const struct store_snap_node *n)
{
	bool open = acl_is_open(n);
	size_t data = n->data_len > 0 ? (size_t)n->data_len : 0;
	size_t size = SNAP_NODE_FIXED_SIZE + n->path_len + data;
	if (!open)
		for (uint32_t i = 0; i < n->acl_count; i++)
			size += SNAP_ACL_ENTRY_FIXED_SIZE + n->acl[i].scheme_len + n->acl[i].id_len;
	uint8_t *p = buf_room(b, size);
	if (!p)
		return 0;
	uint8_t *start = p;
	*p++ = SNAP_REC_NODE;
	put32(p, n->path_len);
	put32(p + 4, (uint32_t)n->data_len);
	put64(p + 8, (uint64_t)n->czxid);
	put64(p + 16, (uint64_t)n->mzxid);
	put64(p + 24, (uint64_t)n->pzxid);
	put64(p + 32, (uint64_t)n->ctime);
	put64(p + 40, (uint64_t)n->mtime);
	put64(p + 48, (uint64_t)n->ephemeral_owner);
	put32(p + 56, (uint32_t)n->version);
	put32(p + 60, (uint32_t)n->cversion_stored);
	put32(p + 64, (uint32_t)n->aversion);
	put32(p + 68, open ? SNAP_ACL_OPEN : n->acl_count);
	p += 72;
	memcpy(p, n->path, n->path_len);
	p += n->path_len;
	if (data) {
		memcpy(p, n->data, data);
		p += data;
	}
	for (uint32_t i = 0; !open && i < n->acl_count; i++) {
		const struct acl_entry *e = &n->acl[i];
		put32(p, (uint32_t)e->perms);
		put32(p + 4, e->scheme_len);
		put32(p + 8, e->id_len);
		p += SNAP_ACL_ENTRY_FIXED_SIZE;
		memcpy(p, e->scheme, e->scheme_len);
		p += e->scheme_len;
		memcpy(p, e->id, e->id_len);
		p += e->id_len;
	}
	assert((size_t)(p - start) == size);
	b->len += size;
	return size;
}

size_t snap_record_session(struct snap_buf *b, const struct store_snap_session *se)
{
	size_t size = 1 + 8 + 4 + 16;
	uint8_t *p = buf_room(b, size);
	if (!p)
		return 0;
	p[0] = SNAP_REC_SESSION;
	put64(p + 1, (uint64_t)se->id);
	put32(p + 9, (uint32_t)se->timeout_ms);
	memcpy(p + 13, se->passwd, 16);
	b->len += size;
	return size;
}

size_t snap_record_quota_root(struct snap_buf *b, const char *root, size_t len)
{
	size_t size = 1 + 4 + len;
	uint8_t *p = buf_room(b, size);
	if (!p)
		return 0;
	p[0] = SNAP_REC_QUOTA_ROOT;
	put32(p + 1, (uint32_t)len);
	memcpy(p + 5, root, len);
	b->len += size;
	return size;
}

/* ---------------------------------------------------------------- records: decoding */

static const struct acl_entry snap_acl_open_entry = { 31, 5, 6, "world", "anyone" };

static int decode_acl(const uint8_t *raw, size_t len, size_t *pos, uint32_t count, struct store_snap_node *node,
		      void **scratch, size_t *scratch_cap)
{
	if (count == SNAP_ACL_OPEN) {
		node->acl_count = 1;
		node->acl = &snap_acl_open_entry;
		return 0;
	}
	/* Each entry takes at least its fixed part: a count past that is malformed. */
	if (count == 0 || count > (len - *pos) / SNAP_ACL_ENTRY_FIXED_SIZE)
		return -EBADMSG;
	if (count > *scratch_cap) {
		struct acl_entry *e = realloc(*scratch, count * sizeof *e);
		if (!e)
			return -ENOMEM;
		*scratch = e;
		*scratch_cap = count;
	}
	struct acl_entry *acl = *scratch;
	for (uint32_t i = 0; i < count; i++) {
		if (len - *pos < SNAP_ACL_ENTRY_FIXED_SIZE)
			return -EBADMSG;
		const uint8_t *p = raw + *pos;
		acl[i].perms = (int32_t)get32(p);
		acl[i].scheme_len = get32(p + 4);
		acl[i].id_len = get32(p + 8);
		*pos += SNAP_ACL_ENTRY_FIXED_SIZE;
		if ((uint64_t)acl[i].scheme_len + acl[i].id_len > len - *pos)
			return -EBADMSG;
		acl[i].scheme = (const char *)raw + *pos;
		acl[i].id = acl[i].scheme + acl[i].scheme_len;
		*pos += (size_t)acl[i].scheme_len + acl[i].id_len;
	}
	node->acl_count = count;
	node->acl = acl;
	return 0;
}

static int decode_node(const uint8_t *raw, size_t len, size_t *pos, struct store_snap_node *node, void **scratch,
		       size_t *scratch_cap)
{
	if (len - *pos < SNAP_NODE_FIXED_SIZE - 1)
		return -EBADMSG;
	const uint8_t *p = raw + *pos;
	memset(node, 0, sizeof *node);
	node->path_len = get32(p);
	node->data_len = (int32_t)get32(p + 4);
	node->czxid = (int64_t)get64(p + 8);
	node->mzxid = (int64_t)get64(p + 16);
	node->pzxid = (int64_t)get64(p + 24);
	node->ctime = (int64_t)get64(p + 32);
	node->mtime = (int64_t)get64(p + 40);
	node->ephemeral_owner = (int64_t)get64(p + 48);
	node->version = (int32_t)get32(p + 56);
	node->cversion_stored = (int32_t)get32(p + 60);
	node->aversion = (int32_t)get32(p + 64);
	uint32_t acl_count = get32(p + 68);
	*pos += SNAP_NODE_FIXED_SIZE - 1;
	size_t data = node->data_len > 0 ? (size_t)node->data_len : 0;
	if (node->data_len < -1 || node->path_len == 0 || (uint64_t)node->path_len + data > len - *pos)
		return -EBADMSG;
	node->path = (const char *)raw + *pos;
	*pos += node->path_len;
	node->data = data ? raw + *pos : NULL;
	*pos += data;
	return decode_acl(raw, len, pos, acl_count, node, scratch, scratch_cap);
}

int snap_record_decode(const uint8_t *raw, size_t len, size_t *pos, struct snap_record *rec,
		       struct store_snap_node *node, void **acl_scratch, size_t *acl_scratch_cap)
{
	if (*pos >= len)
		return -EBADMSG;
	memset(rec, 0, sizeof *rec);
	rec->kind = raw[(*pos)++];
	const uint8_t *p = raw + *pos;
	switch (rec->kind) {
	case SNAP_REC_SESSION:
		if (len - *pos < 28)
			return -EBADMSG;
		rec->session_id = (int64_t)get64(p);
		rec->timeout_ms = (int32_t)get32(p + 8);
		rec->passwd = p + 12;
		*pos += 28;
		return 0;
	case SNAP_REC_QUOTA_ROOT:
		if (len - *pos < 4 || get32(p) > len - *pos - 4)
			return -EBADMSG;
		rec->len = get32(p);
		rec->bytes = p + 4;
		*pos += 4 + rec->len;
		return 0;
	case SNAP_REC_NODE:
		return decode_node(raw, len, pos, node, acl_scratch, acl_scratch_cap);
	}
	return -EBADMSG;
}

/* ---------------------------------------------------------------- names */

void snap_file_name(char *out, uint64_t index, bool tmp)
{
	snprintf(out, SNAP_NAME_MAX, "snapshot.%020" PRIu64 ".rk%s", index, tmp ? ".tmp" : "");
}

bool snap_file_name_parse(const char *name, uint64_t *index)
{
	/* "snapshot." 20 digits ".rk" */
	if (strlen(name) != 9 + 20 + 3 || strncmp(name, "snapshot.", 9) != 0 || strcmp(name + 29, ".rk") != 0)
		return false;
	uint64_t v = 0;
	for (int i = 9; i < 29; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		uint64_t d = (uint64_t)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*index = v;
	return true;
}
