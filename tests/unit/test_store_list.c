/*
 * test_store_list.c — ClickHouse Keeper's FilteredListWithStatsAndData (506) and
 * ListRecursive (507) (store/store_list.c), through store_read().
 *
 * Layouts (ClickHouse src/Common/ZooKeeper/ZooKeeperConstants.h OpNum; serving logic in
 * src/Coordination/KeeperStorage.cpp, processLocal(ZooKeeperListRequest) and
 * processLocal(ZooKeeperListRecursiveRequest)):
 *   506 request  ustring path, bool watch, byte list_type, bool with_stat, bool with_data
 *   506 response vector<ustring> names, Stat (of path), vector<Stat>, vector<buffer>
 *   507 request  ustring path, int limit (unsigned)
 *   507 response vector<ustring> full paths, breadth first
 * Every reply is compared byte for byte with one built here.
 */
#include "store_test_util.h"

TestSuite(store_list, .init = t_setup, .fini = t_teardown);

static const struct zk_id bob_id = { { (const uint8_t *)"digest", 6 }, { (const uint8_t *)"bob:x", 5 } };
static const struct store_auth bob = { .ids = &bob_id, .ids_count = 1 };

static struct jute_writer *l506_body(const char *path, bool watch, uint8_t list_type, bool with_stat, bool with_data)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_bool(w, watch);
	jute_write_byte(w, list_type);
	jute_write_bool(w, with_stat);
	jute_write_bool(w, with_data);
	return w;
}

static struct jute_writer *l507_body(const char *path, uint32_t limit)
{
	return t_path_int_body(path, (int32_t)limit);
}

/* Creates path with ACL [ALL for digest:bob:x] only (world has nothing). */
static void create_bob_only(const char *path, const char *data, int32_t flags)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_buffer(w, data, (int32_t)strlen(data));
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_ALL);
	t_str(w, "digest");
	t_str(w, "bob:x");
	jute_write_int(w, flags);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_OK);
}

static void assert_reply(const struct jute_writer *want)
{
	cr_assert_eq(T.out.len, want->len, "reply %zu bytes, expected %zu", T.out.len, want->len);
	cr_assert(memcmp(T.out.buf, want->buf, want->len) == 0, "reply bytes differ");
}

struct child {
	const char *name;
	const char *data; /* NULL: jute null */
	bool ephemeral;
};

/* /p (data "P") with, in creation order: a (persistent), e (ephemeral), n (null data). */
static const struct child kids[] = {
	{ "a", "A", false },
	{ "e", "EE", true },
	{ "n", NULL, false },
};
#define KIDS 3

static void make_p(void)
{
	cr_assert_eq(t_create("/p", "P", 0), ZK_OK);
	for (int i = 0; i < KIDS; i++) {
		char path[16];
		snprintf(path, sizeof path, "/p/%s", kids[i].name);
		cr_assert_eq(t_create(path, kids[i].data, kids[i].ephemeral ? ZK_CREATE_EPHEMERAL : 0), ZK_OK);
	}
}

static bool passes(const struct child *c, uint8_t list_type)
{
	return !((list_type == 1 && c->ephemeral) || (list_type == 2 && !c->ephemeral));
}

/* The expected 506 reply for /p, built field by field. */
static struct jute_writer *expect_p(uint8_t list_type, bool with_stat, bool with_data)
{
	struct zk_stat parent = t_stat("/p"), st[KIDS];
	for (int i = 0; i < KIDS; i++) {
		char path[16];
		snprintf(path, sizeof path, "/p/%s", kids[i].name);
		st[i] = t_stat(path);
	}
	struct jute_writer *w = t_body();
	int32_t n = 0;
	for (int i = 0; i < KIDS; i++)
		n += passes(&kids[i], list_type);
	jute_write_int(w, n);
	for (int i = 0; i < KIDS; i++)
		if (passes(&kids[i], list_type))
			t_str(w, kids[i].name);
	jute_write_stat(w, &parent);
	jute_write_int(w, with_stat ? n : 0);
	for (int i = 0; with_stat && i < KIDS; i++)
		if (passes(&kids[i], list_type))
			jute_write_stat(w, &st[i]);
	jute_write_int(w, with_data ? n : 0);
	for (int i = 0; with_data && i < KIDS; i++)
		if (passes(&kids[i], list_type))
			jute_write_buffer(w, kids[i].data, kids[i].data ? (int32_t)strlen(kids[i].data) : -1);
	return w;
}

Test(store_list, every_switch_and_list_type_exact_bytes)
{
	make_p();
	for (uint8_t lt = 0; lt <= 2; lt++)
		for (int sw = 0; sw < 4; sw++) {
			bool ws = sw & 1, wd = sw & 2;
			struct jute_writer *want = expect_p(lt, ws, wd);
			cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, lt, ws, wd)),
				     ZK_OK, "list_type %u stat %d data %d", lt, ws, wd);
			assert_reply(want);
		}
}

Test(store_list, literal_bytes_of_a_small_reply)
{
	/* /q has one child "c" with data "hi": the reply, every byte spelled out. */
	cr_assert_eq(t_create("/q", "", 0), ZK_OK);
	cr_assert_eq(t_create("/q/c", "hi", 0), ZK_OK);
	struct zk_stat q = t_stat("/q"), c = t_stat("/q/c");
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/q", false, 0, false, true)), ZK_OK);
	uint8_t want[4 + 4 + 1 + 68 + 4 + 4 + 4 + 2];
	uint8_t *p = want;
	memcpy(p, "\0\0\0\1" "\0\0\0\1" "c", 9);
	p += 9;
	struct jute_writer sw;
	jute_writer_init(&sw, 1024);
	jute_write_stat(&sw, &q);
	cr_assert_eq(sw.len, 68);
	memcpy(p, sw.buf, 68);
	p += 68;
	memcpy(p, "\0\0\0\0" /* no stats */ "\0\0\0\1" "\0\0\0\2" "hi", 14);
	p += 14;
	jute_writer_free(&sw);
	cr_assert_eq((size_t)(p - want), sizeof want);
	cr_assert_eq(T.out.len, sizeof want);
	cr_assert(memcmp(T.out.buf, want, sizeof want) == 0);
	cr_assert_eq(c.data_length, 2);
	cr_assert_eq(q.num_children, 1);
}

Test(store_list, no_children_and_empty_vectors)
{
	cr_assert_eq(t_create("/leaf", "x", 0), ZK_OK);
	struct zk_stat st = t_stat("/leaf");
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/leaf", false, 2, true, true)), ZK_OK);
	struct jute_writer *want = t_body();
	jute_write_int(want, 0);
	jute_write_stat(want, &st);
	jute_write_int(want, 0);
	jute_write_int(want, 0);
	assert_reply(want);
}

Test(store_list, unknown_list_type_filters_nothing)
{
	/* ClickHouse reads the byte unchecked; only 1 and 2 leave children out. */
	make_p();
	struct jute_writer *want = expect_p(0, true, false);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 7, true, false)), ZK_OK);
	assert_reply(want);
}

Test(store_list, errors)
{
	make_p();
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/nope", false, 0, true, true)),
		     ZK_NONODE);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("", false, 0, true, true)), ZK_NONODE);
	/* short body (no with_data byte) and a null path */
	struct jute_writer *w = t_body();
	t_str(w, "/p");
	jute_write_bool(w, false);
	jute_write_byte(w, 0);
	jute_write_bool(w, true);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, w), ZK_MARSHALLINGERROR);
	w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_raw(w, "\0\0\0\0", 4);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, w), ZK_MARSHALLINGERROR);
	/* trailing bytes are ignored */
	w = l506_body("/p", false, 0, false, false);
	jute_write_int(w, 99);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, w), ZK_OK);
}

Test(store_list, noauth_on_parent)
{
	create_bob_only("/s", "", 0);
	cr_assert_eq(t_apply_as(T_SESSION, &bob, ZK_OP_CREATE, t_create_body("/s/c", "", 0)), ZK_OK);
	for (int sw = 0; sw < 4; sw++)
		cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/s", false, 0, sw & 1, sw & 2)),
			     ZK_NOAUTH);
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/s", false, 0, true, true)),
		     ZK_OK);
}

Test(store_list, unreadable_child)
{
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	cr_assert_eq(t_create("/p/open", "o", 0), ZK_OK);
	create_bob_only("/p/secret", "s", ZK_CREATE_EPHEMERAL);
	/* names only, all: children's ACLs are not looked at */
	struct zk_stat st = t_stat("/p");
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 0, false, false)), ZK_OK);
	struct jute_writer *want = t_body();
	jute_write_int(want, 2);
	t_str(want, "open");
	t_str(want, "secret");
	jute_write_stat(want, &st);
	jute_write_int(want, 0);
	jute_write_int(want, 0);
	assert_reply(want);
	/* stat, data or a filter: the whole request is NOAUTH, even when the unreadable
	 * child would be filtered out (ClickHouse checks READ before the filter) */
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 0, true, false)), ZK_NOAUTH);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 0, false, true)), ZK_NOAUTH);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 2, false, false)), ZK_NOAUTH);
	cr_assert_eq(t_read(0, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 1, false, false)), ZK_NOAUTH);
	/* bob has READ on both (world:anyone on /p/open) */
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 1, true, true)),
		     ZK_OK);
	struct store_auth super = { .super = true };
	cr_assert_eq(t_read_as(0, &super, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 0, true, true)),
		     ZK_OK);
}

Test(store_list, watch_is_a_child_watch_set_only_on_ok)
{
	make_p();
	cr_assert_eq(t_read(7, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", true, 1, true, true)), ZK_OK);
	/* a child's data change does not fire it (an ordinary child watch) */
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/p/a", "new", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 0);
	cr_assert_eq(t_create("/p/z", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 7, ZK_EVENT_NODE_CHILDREN_CHANGED, "/p", T.zxid);
	/* one-shot */
	cr_assert_eq(t_create("/p/y", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	/* no flag, no watch */
	cr_assert_eq(t_read(8, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", false, 0, false, false)), ZK_OK);
	cr_assert_eq(t_create("/p/x", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	/* NONODE and NOAUTH register nothing */
	cr_assert_eq(t_read(9, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/gone", true, 0, false, false)),
		     ZK_NONODE);
	cr_assert_eq(t_create("/gone", "", 0), ZK_OK);
	cr_assert_eq(t_create("/gone/c", "", 0), ZK_OK);
	create_bob_only("/p/secret", "", 0);
	cr_assert_eq(t_read(10, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", true, 0, true, false)), ZK_NOAUTH);
	cr_assert_eq(t_create("/p/w", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	struct store_stats stats;
	store_stats(T.s, &stats);
	cr_assert_eq(stats.watch_count, 0);
}

Test(store_list, watch_limit_answers_systemerror)
{
	store_destroy(T.s);
	struct store_config cfg = { .config_text = "", .watches_per_watcher_max = 1 };
	T.s = store_create(&cfg);
	t_session_create(T_SESSION);
	make_p();
	cr_assert_eq(t_read(5, ZK_OP_GET_DATA, t_path_watch_body("/p/a", true)), ZK_OK);
	cr_assert_eq(t_read(5, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA, l506_body("/p", true, 0, true, true)),
		     ZK_SYSTEMERROR);
}

/* ---------------------------------------------------------------- 507 */

static struct jute_writer *paths_reply(const char *const *paths, int n)
{
	struct jute_writer *w = t_body();
	jute_write_int(w, n);
	for (int i = 0; i < n; i++)
		t_str(w, paths[i]);
	return w;
}

/* /t: a, b; a: a1, a2; b: b1; a1: x. Children in creation order. */
static void make_t(void)
{
	static const char *const nodes[] = { "/t", "/t/a", "/t/b", "/t/a/a1", "/t/a/a2", "/t/b/b1", "/t/a/a1/x" };
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
		cr_assert_eq(t_create(nodes[i], "", 0), ZK_OK);
}

static const char *const t_bfs[] = { "/t/a", "/t/b", "/t/a/a1", "/t/a/a2", "/t/b/b1", "/t/a/a1/x" };

Test(store_list, recursive_breadth_first_full_paths)
{
	make_t();
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t", 100)), ZK_OK);
	assert_reply(paths_reply(t_bfs, 6));
	/* 0xFFFFFFFF is unsigned: no limit (ClickHouse's client sends UINT32_MAX) */
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t", UINT32_MAX)), ZK_OK);
	assert_reply(paths_reply(t_bfs, 6));
	/* a leaf: empty */
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t/b/b1", 5)), ZK_OK);
	assert_reply(paths_reply(NULL, 0));
	/* literal bytes of a one-entry reply */
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t/b", 5)), ZK_OK);
	cr_assert_eq(T.out.len, 4 + 4 + 7);
	cr_assert(memcmp(T.out.buf, "\0\0\0\1\0\0\0\7/t/b/b1", 15) == 0);
}

Test(store_list, recursive_from_root_joins_with_one_slash)
{
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/", 1000)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	int32_t n = jute_read_vector_count(&r, 4);
	bool found = false;
	for (int32_t i = 0; i < n; i++) {
		struct jute_bytes b = jute_read_string(&r);
		cr_assert(b.len > 1 && b.data[0] == '/' && b.data[1] != '/');
		found |= jute_bytes_eq(b, "/r", 2);
	}
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0 && found);
}

Test(store_list, recursive_limit_truncates_with_ok)
{
	make_t();
	for (uint32_t limit = 0; limit <= 7; limit++) {
		cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t", limit)), ZK_OK, "limit %u", limit);
		assert_reply(paths_reply(t_bfs, limit < 6 ? (int)limit : 6));
	}
}

Test(store_list, recursive_skips_unreadable_subtrees)
{
	cr_assert_eq(t_create("/t", "", 0), ZK_OK);
	create_bob_only("/t/a", "", 0);
	cr_assert_eq(t_apply_as(T_SESSION, &bob, ZK_OP_CREATE, t_create_body("/t/a/in", "", 0)), ZK_OK); /* readable, but under an unreadable node */
	cr_assert_eq(t_create("/t/b", "", 0), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t", 100)), ZK_OK);
	static const char *const anon[] = { "/t/b" };
	assert_reply(paths_reply(anon, 1));
	/* skipped nodes do not count against the limit */
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/t", 1)), ZK_OK);
	assert_reply(paths_reply(anon, 1));
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_LIST_RECURSIVE, l507_body("/t", 100)), ZK_OK);
	static const char *const all[] = { "/t/a", "/t/b", "/t/a/in" };
	assert_reply(paths_reply(all, 3));
}

Test(store_list, recursive_errors)
{
	make_t();
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/none", 10)), ZK_NONODE);
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("", 10)), ZK_NONODE);
	create_bob_only("/locked", "", 0);
	cr_assert_eq(t_apply_as(T_SESSION, &bob, ZK_OP_CREATE, t_create_body("/locked/c", "", 0)), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, l507_body("/locked", 10)), ZK_NOAUTH);
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, t_path_body("/t")), ZK_MARSHALLINGERROR); /* no limit */
	struct jute_writer *w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_int(w, 5);
	cr_assert_eq(t_read(0, ZK_OP_LIST_RECURSIVE, w), ZK_MARSHALLINGERROR);
}

/* ---------------------------------------------------------------- multiRead */

Test(store_list, inside_multi_read_without_watch)
{
	make_p();
	make_t();
	struct jute_writer *want506 = expect_p(2, true, true);
	struct jute_writer *body = t_body();
	mh(body, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA);
	t_str(body, "/p");
	jute_write_bool(body, true); /* ignored inside multiRead */
	jute_write_byte(body, 2);
	jute_write_bool(body, true);
	jute_write_bool(body, true);
	mh(body, ZK_OP_LIST_RECURSIVE);
	t_str(body, "/t");
	jute_write_int(body, 2);
	mh(body, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA);
	t_str(body, "/missing");
	jute_write_raw(body, "\0\0\0\0", 4);
	mh_end(body);
	cr_assert_eq(t_read(3, ZK_OP_MULTI_READ, body), ZK_OK);

	struct jute_writer *want = t_body();
	jute_write_int(want, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA);
	jute_write_bool(want, false);
	jute_write_int(want, 0);
	jute_write_raw(want, want506->buf, want506->len);
	jute_write_int(want, ZK_OP_LIST_RECURSIVE);
	jute_write_bool(want, false);
	jute_write_int(want, 0);
	struct jute_writer *r507 = paths_reply(t_bfs, 2);
	jute_write_raw(want, r507->buf, r507->len);
	jute_write_int(want, ZK_OP_ERROR);
	jute_write_bool(want, false);
	jute_write_int(want, ZK_NONODE);
	jute_write_int(want, ZK_NONODE);
	mh_end(want);
	assert_reply(want);

	cr_assert_eq(t_create("/p/new", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 0);

	/* a malformed 506 sub-op fails the whole multiRead */
	body = t_body();
	mh(body, ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA);
	t_str(body, "/p");
	jute_write_bool(body, false);
	mh_end(body);
	cr_assert_eq(t_read(0, ZK_OP_MULTI_READ, body), ZK_MARSHALLINGERROR);
}
