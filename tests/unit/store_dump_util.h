/*
 * store_dump_util.h — a whole-store dump for comparing two stores: every node (path,
 * data, ACL, every Stat field) found by walking getChildren from "/", children in
 * sorted order, then every session (id, timeout, password) and its ephemerals, sorted.
 * It reads through the public read API only (store_read as a super user,
 * store_sessions_dump, store_session_get), so it does not share code with what it
 * checks (snapshots, recovery). Header-only; the text is malloc'ed, free it.
 */
#ifndef RK_STORE_DUMP_UTIL_H
#define RK_STORE_DUMP_UTIL_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jute.h"
#include "core/zk_proto.h"
#include "store/store.h"

struct dump_buf {
	char *p;
	size_t len, cap;
};

static __attribute__((format(printf, 2, 3), unused)) void dump_printf(struct dump_buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
}

static __attribute__((unused)) int dump_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static __attribute__((unused)) int dump_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Runs one read as the super user; out holds the reply. */
static __attribute__((unused)) int32_t dump_read(struct store *s, int32_t op, const char *path, bool with_watch,
						 struct jute_writer *out)
{
	struct jute_writer req;
	jute_writer_init(&req, 1 << 20);
	jute_write_string(&req, path, (int32_t)strlen(path));
	if (with_watch)
		jute_write_bool(&req, false);
	struct store_auth super = { NULL, 0, true };
	jute_writer_reset(out);
	int32_t rc = store_read(s, 0, 0, &super, op, req.buf, req.len, out, NULL);
	jute_writer_free(&req);
	return rc;
}

static __attribute__((unused)) void dump_node(struct store *s, const char *path, struct dump_buf *b,
					     struct jute_writer *out)
{
	if (dump_read(s, ZK_OP_GET_DATA, path, true, out) != ZK_OK) {
		dump_printf(b, "%s: getData failed\n", path);
		return;
	}
	struct jute_reader r;
	jute_reader_init(&r, out->buf, out->len);
	struct jute_bytes data = jute_read_buffer(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	dump_printf(b, "%s data=", path);
	if (data.len < 0)
		dump_printf(b, "null");
	for (int32_t i = 0; i < data.len; i++)
		dump_printf(b, "%02x", data.data[i]);
	dump_printf(b,
		    " czxid=%" PRId64 " mzxid=%" PRId64 " ctime=%" PRId64 " mtime=%" PRId64 " version=%d cversion=%d"
		    " aversion=%d owner=%" PRId64 " len=%d children=%d pzxid=%" PRId64 " acl=",
		    st.czxid, st.mzxid, st.ctime, st.mtime, st.version, st.cversion, st.aversion, st.ephemeral_owner,
		    st.data_length, st.num_children, st.pzxid);
	if (dump_read(s, ZK_OP_GET_ACL, path, false, out) != ZK_OK) {
		dump_printf(b, "?\n");
		return;
	}
	jute_reader_init(&r, out->buf, out->len);
	int32_t count = jute_read_vector_count(&r, 12);
	for (int32_t i = 0; i < count; i++) {
		struct zk_acl a;
		jute_read_acl(&r, &a);
		dump_printf(b, "%d:%.*s:%.*s,", a.perms, a.id.scheme.len, a.id.scheme.data, a.id.id.len, a.id.id.data);
	}
	jute_read_stat(&r, &st);
	dump_printf(b, " aversion2=%d\n", st.aversion);
}

struct dump_sessions {
	int64_t *ids;
	size_t count, cap;
	char **eph;
	size_t eph_count, eph_cap;
};

static __attribute__((unused)) void dump_session_fn(void *ctx, int64_t id, int32_t timeout_ms)
{
	struct dump_sessions *d = ctx;
	(void)timeout_ms;
	if (d->count == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->ids = realloc(d->ids, d->cap * sizeof *d->ids);
	}
	d->ids[d->count++] = id;
}

static __attribute__((unused)) void dump_ephemeral_fn(void *ctx, int64_t id, const char *path, size_t len)
{
	struct dump_sessions *d = ctx;
	if (d->eph_count == d->eph_cap) {
		d->eph_cap = d->eph_cap ? d->eph_cap * 2 : 16;
		d->eph = realloc(d->eph, d->eph_cap * sizeof *d->eph);
	}
	char *line = NULL;
	if (asprintf(&line, "ephemeral %" PRId64 " %.*s", id, (int)len, path) < 0)
		abort();
	d->eph[d->eph_count++] = line;
}

/* The whole store as text (see the top of this file). */
static __attribute__((unused)) char *t_store_dump(struct store *s)
{
	struct dump_buf b = { 0 };
	struct jute_writer out;
	jute_writer_init(&out, 1 << 24);
	size_t cap = 1024, head = 0, tail = 0;
	char **queue = malloc(cap * sizeof *queue);
	queue[tail++] = strdup("/");
	while (head < tail) {
		char *path = queue[head++];
		dump_node(s, path, &b, &out);
		if (dump_read(s, ZK_OP_GET_CHILDREN, path, true, &out) == ZK_OK) {
			struct jute_reader r;
			jute_reader_init(&r, out.buf, out.len);
			int32_t n = jute_read_vector_count(&r, 4);
			char **names = calloc((size_t)n + 1, sizeof *names);
			for (int32_t i = 0; i < n; i++) {
				struct jute_bytes name = jute_read_string(&r);
				if (asprintf(&names[i], "%s%s%.*s", path, strcmp(path, "/") ? "/" : "", name.len,
					     name.data) < 0)
					abort();
			}
			if (n > 0)
				qsort(names, (size_t)n, sizeof *names, dump_cmp_str);
			for (int32_t i = 0; i < n; i++) {
				if (tail == cap) {
					cap *= 2;
					queue = realloc(queue, cap * sizeof *queue);
				}
				queue[tail++] = names[i];
			}
			free(names);
		}
	}
	for (size_t i = 0; i < tail; i++)
		free(queue[i]);
	free(queue);
	struct dump_sessions d = { 0 };
	store_sessions_dump(s, dump_session_fn, dump_ephemeral_fn, &d);
	if (d.count)
		qsort(d.ids, d.count, sizeof *d.ids, dump_cmp_i64);
	for (size_t i = 0; i < d.count; i++) {
		int32_t timeout = 0;
		uint8_t pw[16] = { 0 };
		store_session_get(s, d.ids[i], &timeout, pw);
		dump_printf(&b, "session %" PRId64 " timeout=%d passwd=", d.ids[i], timeout);
		for (int k = 0; k < 16; k++)
			dump_printf(&b, "%02x", pw[k]);
		dump_printf(&b, "\n");
	}
	if (d.eph_count)
		qsort(d.eph, d.eph_count, sizeof *d.eph, dump_cmp_str);
	for (size_t i = 0; i < d.eph_count; i++) {
		dump_printf(&b, "%s\n", d.eph[i]);
		free(d.eph[i]);
	}
	struct store_stats st;
	store_stats(s, &st);
	dump_printf(&b, "nodes=%" PRIu64 " ephemerals=%" PRIu64 " data=%" PRIu64 " sessions=%" PRIu64 " zxid=%" PRId64 "\n",
		    st.node_count, st.ephemerals_count, st.approximate_data_size, st.session_count, st.last_zxid);
	free(d.ids);
	free(d.eph);
	jute_writer_free(&out);
	return b.p;
}

#endif
