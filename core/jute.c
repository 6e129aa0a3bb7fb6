/*
 * jute.c — see jute.h. Every read checks its bytes against what remains; every write
 * checks against the writer's cap_max.
 */
#include "jute.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void jute_reader_init(struct jute_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->err = 0;
}

static const uint8_t *reader_take(struct jute_reader *r, size_t n)
{
	if (r->err || n > r->len - r->pos) {
		r->err = -EPROTO;
		return NULL;
	}
	const uint8_t *p = r->buf + r->pos;
	r->pos += n;
	return p;
}

int32_t jute_read_int(struct jute_reader *r)
{
	const uint8_t *p = reader_take(r, 4);
	return p ? (int32_t)jute_get_be32(p) : 0;
}

int64_t jute_read_long(struct jute_reader *r)
{
	const uint8_t *p = reader_take(r, 8);
	if (!p)
		return 0;
	return (int64_t)(((uint64_t)jute_get_be32(p) << 32) | jute_get_be32(p + 4));
}

bool jute_read_bool(struct jute_reader *r)
{
	const uint8_t *p = reader_take(r, 1);
	return p ? *p != 0 : false;
}

uint8_t jute_read_byte(struct jute_reader *r)
{
	const uint8_t *p = reader_take(r, 1);
	return p ? *p : 0;
}

struct jute_bytes jute_read_buffer(struct jute_reader *r)
{
	struct jute_bytes b = { NULL, -1 };
	int32_t len = jute_read_int(r);
	if (r->err)
		return b;
	if (len < -1) {
		r->err = -EPROTO;
		return b;
	}
	if (len == -1)
		return b;
	const uint8_t *p = reader_take(r, (size_t)len);
	if (!p)
		return b;
	b.data = p;
	b.len = len;
	return b;
}

struct jute_bytes jute_read_string(struct jute_reader *r)
{
	return jute_read_buffer(r);
}

int32_t jute_read_vector_count(struct jute_reader *r, size_t elem_bytes_min)
{
	int32_t count = jute_read_int(r);
	if (r->err)
		return 0;
	if (count == -1)
		return 0;
	if (count < 0 || (elem_bytes_min && (size_t)count > jute_reader_remaining(r) / elem_bytes_min)) {
		r->err = -EPROTO;
		return 0;
	}
	return count;
}

void jute_read_stat(struct jute_reader *r, struct zk_stat *st)
{
	st->czxid = jute_read_long(r);
	st->mzxid = jute_read_long(r);
	st->ctime = jute_read_long(r);
	st->mtime = jute_read_long(r);
	st->version = jute_read_int(r);
	st->cversion = jute_read_int(r);
	st->aversion = jute_read_int(r);
	st->ephemeral_owner = jute_read_long(r);
	st->data_length = jute_read_int(r);
	st->num_children = jute_read_int(r);
	st->pzxid = jute_read_long(r);
}

void jute_read_id(struct jute_reader *r, struct zk_id *id)
{
	id->scheme = jute_read_string(r);
	id->id = jute_read_string(r);
}

void jute_read_acl(struct jute_reader *r, struct zk_acl *acl)
{
	acl->perms = jute_read_int(r);
	jute_read_id(r, &acl->id);
}

void jute_writer_init(struct jute_writer *w, size_t cap_max)
{
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	w->cap_max = cap_max;
	w->err = 0;
}

void jute_writer_free(struct jute_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

uint8_t *jute_writer_reserve(struct jute_writer *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > w->cap_max - w->len) {
		w->err = -E2BIG;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *buf = realloc(w->buf, cap);
		if (!buf) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = buf;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

void jute_write_int(struct jute_writer *w, int32_t v)
{
	uint8_t *p = jute_writer_reserve(w, 4);
	if (p)
		jute_put_be32(p, (uint32_t)v);
}

void jute_write_long(struct jute_writer *w, int64_t v)
{
	uint8_t *p = jute_writer_reserve(w, 8);
	if (p) {
		jute_put_be32(p, (uint32_t)((uint64_t)v >> 32));
		jute_put_be32(p + 4, (uint32_t)v);
	}
}

void jute_write_bool(struct jute_writer *w, bool v)
{
	jute_write_byte(w, v ? 1 : 0);
}

void jute_write_byte(struct jute_writer *w, uint8_t v)
{
	uint8_t *p = jute_writer_reserve(w, 1);
	if (p)
		*p = v;
}

void jute_write_raw(struct jute_writer *w, const void *data, size_t len)
{
	uint8_t *p = jute_writer_reserve(w, len);
	if (p && len)
		memcpy(p, data, len);
}

void jute_write_buffer(struct jute_writer *w, const void *data, int32_t len)
{
	if (len < 0) {
		jute_write_int(w, -1);
		return;
	}
	jute_write_int(w, len);
	jute_write_raw(w, data, (size_t)len);
}

void jute_write_string(struct jute_writer *w, const char *s, int32_t len)
{
	jute_write_buffer(w, s, len);
}

void jute_write_stat(struct jute_writer *w, const struct zk_stat *st)
{
	jute_write_long(w, st->czxid);
	jute_write_long(w, st->mzxid);
	jute_write_long(w, st->ctime);
	jute_write_long(w, st->mtime);
	jute_write_int(w, st->version);
	jute_write_int(w, st->cversion);
	jute_write_int(w, st->aversion);
	jute_write_long(w, st->ephemeral_owner);
	jute_write_int(w, st->data_length);
	jute_write_int(w, st->num_children);
	jute_write_long(w, st->pzxid);
}

void jute_write_id(struct jute_writer *w, const struct zk_id *id)
{
	jute_write_bytes(w, id->scheme);
	jute_write_bytes(w, id->id);
}

void jute_write_acl(struct jute_writer *w, const struct zk_acl *acl)
{
	jute_write_int(w, acl->perms);
	jute_write_id(w, &acl->id);
}

void jute_patch_int(struct jute_writer *w, size_t offset, int32_t v)
{
	if (w->err || offset + 4 > w->len)
		return;
	jute_put_be32(w->buf + offset, (uint32_t)v);
}
