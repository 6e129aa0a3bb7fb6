/*
 * store_test_util.h — helpers shared by the store unit tests: request builders,
 * an apply/read wrapper with an increasing zxid, and an event recorder.
 * Header-only (static functions) so each test file stays self-contained.
 */
#ifndef RK_STORE_TEST_UTIL_H
#define RK_STORE_TEST_UTIL_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jute.h"
#include "core/zk_proto.h"
#include "store/store.h"

#define T_SESSION 0x1234
#define T_EVENTS_MAX 256

struct t_event {
	uint64_t watcher;
	int32_t type;
	char path[256];
	int64_t zxid;
};

struct t_env {
	struct store *s;
	int64_t zxid;
	int64_t time_ms;
	struct jute_writer out; /* last reply body */
	struct t_event events[T_EVENTS_MAX];
	int events_count;
	pthread_mutex_t events_lock;
};

static struct t_env T;

static __attribute__((unused)) void t_on_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len, int64_t zxid)
{
	struct t_env *e = ctx;
	pthread_mutex_lock(&e->events_lock);
	cr_assert_lt(e->events_count, T_EVENTS_MAX);
	struct t_event *ev = &e->events[e->events_count++];
	ev->watcher = watcher;
	ev->type = type;
	cr_assert_lt(path_len, sizeof ev->path);
	memcpy(ev->path, path, path_len);
	ev->path[path_len] = '\0';
	ev->zxid = zxid;
	pthread_mutex_unlock(&e->events_lock);
}

static __attribute__((unused)) int32_t t_apply_as(int64_t session, const struct store_auth *auth, int32_t op, const struct jute_writer *body)
{
	struct store_txn txn = {
		.zxid = ++T.zxid,
		.time_ms = T.time_ms,
		.session_id = session,
		.opcode = op,
		.body = body ? body->buf : NULL,
		.body_len = body ? body->len : 0,
		.auth = auth,
	};
	jute_writer_reset(&T.out);
	int32_t rc = store_apply(T.s, &txn, &T.out, t_on_event, &T);
	cr_assert(jute_writer_ok(&T.out));
	cr_assert_eq(store_last_zxid(T.s), T.zxid);
	if (rc != ZK_OK)
		cr_assert_eq(T.out.len, 0, "error reply carries %zu body bytes", T.out.len);
	return rc;
}

static __attribute__((unused)) int32_t t_apply(int32_t op, const struct jute_writer *body)
{
	return t_apply_as(T_SESSION, NULL, op, body);
}

static __attribute__((unused)) int32_t t_read_as(uint64_t watcher, const struct store_auth *auth, int32_t op, const struct jute_writer *body)
{
	jute_writer_reset(&T.out);
	int32_t rc = store_read(T.s, T_SESSION, watcher, auth, op, body->buf, body->len, &T.out, NULL);
	cr_assert(jute_writer_ok(&T.out));
	if (rc != ZK_OK)
		cr_assert_eq(T.out.len, 0);
	return rc;
}

static __attribute__((unused)) int32_t t_read(uint64_t watcher, int32_t op, const struct jute_writer *body)
{
	return t_read_as(watcher, NULL, op, body);
}

/* A fresh writer for building a request body; freed by t_teardown via the pool. */
#define T_BODIES_MAX 1024
static struct jute_writer t_bodies[T_BODIES_MAX];
static int t_bodies_count;

static __attribute__((unused)) struct jute_writer *t_body(void)
{
	cr_assert_lt(t_bodies_count, T_BODIES_MAX);
	struct jute_writer *w = &t_bodies[t_bodies_count++];
	jute_writer_init(w, 1 << 22);
	return w;
}

static __attribute__((unused)) void t_str(struct jute_writer *w, const char *s)
{
	jute_write_string(w, s, (int32_t)strlen(s));
}

static __attribute__((unused)) void t_acl_open(struct jute_writer *w)
{
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_ALL);
	t_str(w, "world");
	t_str(w, "anyone");
}

static __attribute__((unused)) void t_create_fields(struct jute_writer *w, const char *path, const char *data, int32_t flags)
{
	t_str(w, path);
	if (data)
		jute_write_buffer(w, data, (int32_t)strlen(data));
	else
		jute_write_buffer(w, NULL, -1);
	t_acl_open(w);
	jute_write_int(w, flags);
}

static __attribute__((unused)) struct jute_writer *t_create_body(const char *path, const char *data, int32_t flags)
{
	struct jute_writer *w = t_body();
	t_create_fields(w, path, data, flags);
	return w;
}

static __attribute__((unused)) struct jute_writer *t_path_int_body(const char *path, int32_t v)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_int(w, v);
	return w;
}

static __attribute__((unused)) struct jute_writer *t_set_body(const char *path, const char *data, int32_t version)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_buffer(w, data, data ? (int32_t)strlen(data) : -1);
	jute_write_int(w, version);
	return w;
}

static __attribute__((unused)) struct jute_writer *t_path_watch_body(const char *path, bool watch)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_bool(w, watch);
	return w;
}

static __attribute__((unused)) struct jute_writer *t_path_body(const char *path)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	return w;
}

static __attribute__((unused)) int32_t t_create(const char *path, const char *data, int32_t flags)
{
	return t_apply(ZK_OP_CREATE, t_create_body(path, data, flags));
}

/* Reads the Stat of path (asserting it exists). */
static __attribute__((unused)) struct zk_stat t_stat(const char *path)
{
	struct zk_stat st;
	cr_assert_eq(t_read(0, ZK_OP_EXISTS, t_path_watch_body(path, false)), ZK_OK, "no node %s", path);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	return st;
}

static __attribute__((unused)) bool t_exists(const char *path)
{
	return t_read(0, ZK_OP_EXISTS, t_path_watch_body(path, false)) == ZK_OK;
}

/* The reply must be exactly one jute string equal to s. */
static __attribute__((unused)) void t_assert_reply_string(const char *s)
{
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes b = jute_read_string(&r);
	cr_assert(jute_reader_ok(&r));
	cr_assert(jute_bytes_eq(b, s, strlen(s)), "reply is '%.*s', expected '%s'", b.len, b.data, s);
	cr_assert_eq(jute_reader_remaining(&r), 0);
}

static __attribute__((unused)) void t_session_create(int64_t id)
{
	struct jute_writer *w = t_body();
	jute_write_int(w, 30000);
	uint8_t pw[16];
	memset(pw, 7, sizeof pw);
	jute_write_buffer(w, pw, 16);
	cr_assert_eq(t_apply_as(id, NULL, ZK_OP_CREATE_SESSION, w), ZK_OK);
}

/* A MultiHeader{type, done=false, err=-1}, and the terminating {-1, true, -1}. */
static __attribute__((unused)) void mh(struct jute_writer *w, int32_t type)
{
	jute_write_int(w, type);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
}

static __attribute__((unused)) void mh_end(struct jute_writer *w)
{
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
}

static __attribute__((unused)) void t_setup(void)
{
	memset(&T, 0, sizeof T);
	pthread_mutex_init(&T.events_lock, NULL);
	struct store_config cfg = { .config_text = "" };
	T.s = store_create(&cfg);
	cr_assert_not_null(T.s);
	T.time_ms = 1700000000000LL;
	jute_writer_init(&T.out, 1 << 22);
	t_bodies_count = 0;
	t_session_create(T_SESSION);
	T.events_count = 0;
}

static __attribute__((unused)) void t_teardown(void)
{
	for (int i = 0; i < t_bodies_count; i++)
		jute_writer_free(&t_bodies[i]);
	jute_writer_free(&T.out);
	store_destroy(T.s);
	pthread_mutex_destroy(&T.events_lock);
}

static __attribute__((unused)) void t_assert_event(int i, uint64_t watcher, int32_t type, const char *path, int64_t zxid)
{
	cr_assert_lt(i, T.events_count, "only %d events", T.events_count);
	cr_assert_eq(T.events[i].watcher, watcher, "event %d watcher", i);
	cr_assert_eq(T.events[i].type, type, "event %d type %d", i, T.events[i].type);
	cr_assert_str_eq(T.events[i].path, path, "event %d path", i);
	cr_assert_eq(T.events[i].zxid, zxid, "event %d zxid", i);
}

#endif
