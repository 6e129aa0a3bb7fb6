/*
 * test_store_dump.c — the four-letter-word dumps (wchc: store_watches_by_watcher,
 * wchp: store_watches_by_path, dump: store_sessions_dump) and the per-watcher watch
 * limit (store_config.watches_per_watcher_max).
 */
#include "store_test_util.h"

TestSuite(store_dump, .init = t_setup, .fini = t_teardown);

#define PAIRS_MAX 64

struct pair {
	uint64_t watcher;
	char path[64];
};

struct pairs {
	int count;
	struct pair p[PAIRS_MAX];
};

static void pair_add(struct pairs *l, uint64_t watcher, const char *path, size_t len)
{
	cr_assert_lt(l->count, PAIRS_MAX);
	cr_assert_lt(len, sizeof l->p[0].path);
	l->p[l->count].watcher = watcher;
	memcpy(l->p[l->count].path, path, len);
	l->p[l->count].path[len] = '\0';
	l->count++;
}

static void by_watcher_fn(void *ctx, uint64_t watcher, const char *path, size_t len)
{
	pair_add(ctx, watcher, path, len);
}

static void by_path_fn(void *ctx, const char *path, size_t len, uint64_t watcher)
{
	pair_add(ctx, watcher, path, len);
}

static int pair_count(const struct pairs *l, uint64_t watcher, const char *path)
{
	int n = 0;
	for (int i = 0; i < l->count; i++)
		n += l->p[i].watcher == watcher && strcmp(l->p[i].path, path) == 0;
	return n;
}

/* Every group (same watcher, or same path) appears as one consecutive run. */
static void assert_grouped(const struct pairs *l, bool by_watcher)
{
	for (int i = 0; i < l->count; i++)
		for (int j = i + 2; j < l->count; j++) {
			bool same_ij = by_watcher ? l->p[i].watcher == l->p[j].watcher
						  : strcmp(l->p[i].path, l->p[j].path) == 0;
			if (!same_ij)
				continue;
			for (int k = i + 1; k < j; k++) {
				bool same_ik = by_watcher ? l->p[i].watcher == l->p[k].watcher
							  : strcmp(l->p[i].path, l->p[k].path) == 0;
				cr_assert(same_ik, "group of entry %d is split at %d", i, k);
			}
		}
}

static int32_t add_watch(uint64_t watcher, const char *path, int32_t mode)
{
	struct jute_writer *w = t_path_int_body(path, mode);
	return store_add_watch(T.s, watcher, w->buf, w->len);
}

static void make_watches(void)
{
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	cr_assert_eq(t_create("/b", "", 0), ZK_OK);
	/* watcher 1: data + child + recursive on /a, an exist watch on /missing */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/a", true)), ZK_OK);
	cr_assert_eq(add_watch(1, "/a", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body("/missing", true)), ZK_NONODE);
	/* watcher 2: persistent on /b, recursive only on /a and /c */
	cr_assert_eq(add_watch(2, "/b", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch(2, "/a", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(add_watch(2, "/c", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	/* watcher 3: child watch on /b */
	cr_assert_eq(t_read(3, ZK_OP_GET_CHILDREN2, t_path_watch_body("/b", true)), ZK_OK);
}

static void assert_expected_pairs(const struct pairs *l)
{
	cr_assert_eq(l->count, 6, "%d pairs", l->count);
	cr_assert_eq(pair_count(l, 1, "/a"), 1);
	cr_assert_eq(pair_count(l, 1, "/missing"), 1);
	cr_assert_eq(pair_count(l, 2, "/b"), 1);
	cr_assert_eq(pair_count(l, 2, "/a"), 1);
	cr_assert_eq(pair_count(l, 2, "/c"), 1);
	cr_assert_eq(pair_count(l, 3, "/b"), 1);
}

Test(store_dump, empty_store_dumps_nothing)
{
	struct pairs l = { 0 };
	store_watches_by_watcher(T.s, by_watcher_fn, &l);
	store_watches_by_path(T.s, by_path_fn, &l);
	cr_assert_eq(l.count, 0);
}

Test(store_dump, by_watcher_lists_each_path_once_grouped)
{
	make_watches();
	struct pairs l = { 0 };
	store_watches_by_watcher(T.s, by_watcher_fn, &l);
	assert_expected_pairs(&l);
	cr_assert_eq(pair_count(&l, 1, "/missing") + pair_count(&l, 1, "/a"), 2);
	assert_grouped(&l, true);
}

Test(store_dump, by_path_lists_each_watcher_once_grouped)
{
	make_watches();
	struct pairs l = { 0 };
	store_watches_by_path(T.s, by_path_fn, &l);
	assert_expected_pairs(&l);
	assert_grouped(&l, false);
}

Test(store_dump, dumps_follow_firing_and_drop)
{
	make_watches();
	/* setData /a fires (and removes) watcher 1's data watch; its child and recursive stay. */
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/a", "x", -1)), ZK_OK);
	struct pairs l = { 0 };
	store_watches_by_path(T.s, by_path_fn, &l);
	cr_assert_eq(pair_count(&l, 1, "/a"), 1);
	store_watcher_drop(T.s, 2);
	l.count = 0;
	store_watches_by_watcher(T.s, by_watcher_fn, &l);
	cr_assert_eq(l.count, 3);
	cr_assert_eq(pair_count(&l, 2, "/a") + pair_count(&l, 2, "/b") + pair_count(&l, 2, "/c"), 0);
	/* The one-shot ones on /missing and /b fire on create and on a child create. */
	cr_assert_eq(t_create("/missing", "", 0), ZK_OK);
	cr_assert_eq(t_create("/b/k", "", 0), ZK_OK);
	l.count = 0;
	store_watches_by_path(T.s, by_path_fn, &l);
	cr_assert_eq(l.count, 1);
	cr_assert_eq(pair_count(&l, 1, "/a"), 1);
}

/* ---------------------------------------------------------------- sessions dump */

struct sess_dump {
	int sessions;
	int64_t ids[8];
	int32_t timeouts[8];
	struct pairs ephemerals;
};

static void session_fn(void *ctx, int64_t id, int32_t timeout_ms)
{
	struct sess_dump *d = ctx;
	cr_assert_lt(d->sessions, 8);
	cr_assert_eq(d->ephemerals.count, 0, "sessions come first");
	d->ids[d->sessions] = id;
	d->timeouts[d->sessions++] = timeout_ms;
}

static void ephemeral_fn(void *ctx, int64_t id, const char *path, size_t len)
{
	struct sess_dump *d = ctx;
	pair_add(&d->ephemerals, (uint64_t)id, path, len);
}

Test(store_dump, sessions_with_their_ephemerals)
{
	t_session_create(77);
	t_session_create(78);
	cr_assert_eq(t_create("/e1", "", ZK_CREATE_EPHEMERAL), ZK_OK);
	cr_assert_eq(t_apply_as(77, NULL, ZK_OP_CREATE, t_create_body("/e2", "", ZK_CREATE_EPHEMERAL)), ZK_OK);
	cr_assert_eq(t_apply_as(77, NULL, ZK_OP_CREATE, t_create_body("/e3", "", ZK_CREATE_EPHEMERAL_SEQUENTIAL)),
		     ZK_OK);
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	struct sess_dump d = { 0 };
	store_sessions_dump(T.s, session_fn, ephemeral_fn, &d);
	cr_assert_eq(d.sessions, 3);
	bool seen[3] = { false };
	for (int i = 0; i < d.sessions; i++) {
		cr_assert_eq(d.timeouts[i], 30000);
		seen[0] |= d.ids[i] == T_SESSION;
		seen[1] |= d.ids[i] == 77;
		seen[2] |= d.ids[i] == 78;
	}
	cr_assert(seen[0] && seen[1] && seen[2]);
	cr_assert_eq(d.ephemerals.count, 3);
	cr_assert_eq(pair_count(&d.ephemerals, T_SESSION, "/e1"), 1);
	cr_assert_eq(pair_count(&d.ephemerals, 77, "/e2"), 1);
	cr_assert_eq(pair_count(&d.ephemerals, 77, "/e30000000002"), 1);
	assert_grouped(&d.ephemerals, true);
	/* Closing 77 removes it and its nodes; NULL callbacks are allowed. */
	cr_assert_eq(t_apply_as(77, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	memset(&d, 0, sizeof d);
	store_sessions_dump(T.s, NULL, ephemeral_fn, &d);
	cr_assert_eq(d.sessions, 0);
	cr_assert_eq(d.ephemerals.count, 1);
	memset(&d, 0, sizeof d);
	store_sessions_dump(T.s, session_fn, NULL, &d);
	cr_assert_eq(d.sessions, 2);
}

/* ---------------------------------------------------------------- watch limit */

static void limit_setup(void)
{
	t_setup();
	store_destroy(T.s);
	struct store_config cfg = { .config_text = "", .watches_per_watcher_max = 3 };
	T.s = store_create(&cfg);
	cr_assert_not_null(T.s);
	t_session_create(T_SESSION);
	T.events_count = 0;
}

TestSuite(store_watch_limit, .init = limit_setup, .fini = t_teardown);

static uint64_t refused(void)
{
	struct store_stats st;
	store_stats(T.s, &st);
	return st.watch_refused_count;
}

Test(store_watch_limit, refuses_past_the_limit_with_systemerror)
{
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	cr_assert_eq(t_create("/b", "", 0), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/a", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body("/x", true)), ZK_NONODE);
	cr_assert_eq(refused(), 0);
	/* At the limit: every new registration is refused, with no reply body. */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/b", true)), ZK_SYSTEMERROR);
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body("/b", true)), ZK_SYSTEMERROR);
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body("/y", true)), ZK_SYSTEMERROR);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN2, t_path_watch_body("/b", true)), ZK_SYSTEMERROR);
	cr_assert_eq(add_watch(1, "/b", STORE_ADD_WATCH_PERSISTENT), ZK_SYSTEMERROR);
	cr_assert_eq(add_watch(1, "/b", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_SYSTEMERROR);
	cr_assert_eq(refused(), 6);
	/* Reads without a watch, re-registrations and other watchers are unaffected. */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/b", false)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a", true)), ZK_OK);
	cr_assert_eq(t_read(2, ZK_OP_GET_DATA, t_path_watch_body("/b", true)), ZK_OK);
	cr_assert_eq(refused(), 6);
	struct store_stats st;
	store_stats(T.s, &st);
	cr_assert_eq(st.watch_count, 4);
	/* Firing frees room. */
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/a", "x", -1)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/b", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a", true)), ZK_SYSTEMERROR);
	/* A drop frees all of it. */
	store_watcher_drop(T.s, 1);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a", true)), ZK_OK);
	/* addWatch registers a data and a child entry (ZooKeeper 3.8.0): 1 + 2 = the limit */
	cr_assert_eq(add_watch(1, "/b", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch(1, "/c", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_SYSTEMERROR);
}

Test(store_watch_limit, multi_read_sub_op_ignores_the_watch_flag)
{
	/* A watcher at its limit still reads through multiRead: sub-ops register no
	 * watch (ZooKeeper 3.8), so nothing is refused. */
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	for (int i = 0; i < 3; i++) {
		char p[8];
		snprintf(p, sizeof p, "/w%d", i);
		cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body(p, true)), ZK_NONODE);
	}
	struct jute_writer *w = t_body();
	jute_write_int(w, ZK_OP_GET_DATA);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_str(w, "/a");
	jute_write_bool(w, true);
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
	cr_assert_eq(t_read(1, ZK_OP_MULTI_READ, w), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_int(&r), ZK_OP_GET_DATA);
	jute_read_bool(&r);
	cr_assert_eq(jute_read_int(&r), ZK_OK);
}
