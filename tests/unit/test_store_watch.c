/*
 * test_store_watch.c — watch registration, one-shot firing with the txn zxid,
 * de-duplication, setWatches catch-up, watcher_drop.
 */
#include "store_test_util.h"

TestSuite(store_watch, .init = t_setup, .fini = t_teardown);

static void watch_data(uint64_t w, const char *path)
{
	cr_assert_eq(t_read(w, ZK_OP_GET_DATA, t_path_watch_body(path, true)), ZK_OK);
}

static void watch_children(uint64_t w, const char *path)
{
	cr_assert_eq(t_read(w, ZK_OP_GET_CHILDREN, t_path_watch_body(path, true)), ZK_OK);
}

static uint64_t watch_count(void)
{
	struct store_stats st;
	store_stats(T.s, &st);
	return st.watch_count;
}

Test(store_watch, data_watch_fires_once_with_zxid)
{
	cr_assert_eq(t_create("/w", "", 0), ZK_OK);
	watch_data(1, "/w");
	watch_data(1, "/w"); /* de-duplicated */
	watch_data(2, "/w");
	cr_assert_eq(watch_count(), 2);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/w", "x", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	int64_t z = T.zxid;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(T.events[i].type, ZK_EVENT_NODE_DATA_CHANGED);
		cr_assert_str_eq(T.events[i].path, "/w");
		cr_assert_eq(T.events[i].zxid, z);
	}
	cr_assert_neq(T.events[0].watcher, T.events[1].watcher);
	cr_assert_eq(watch_count(), 0);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/w", "y", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 2, "one-shot watch fired twice");
	struct store_stats st;
	store_stats(T.s, &st);
	cr_assert_eq(st.watch_paths, 0);
}

Test(store_watch, exist_watch_on_missing_node_then_create)
{
	cr_assert_eq(t_read(3, ZK_OP_EXISTS, t_path_watch_body("/later", true)), ZK_NONODE);
	cr_assert_eq(watch_count(), 1);
	cr_assert_eq(t_read(3, ZK_OP_GET_DATA, t_path_watch_body("/later", true)), ZK_NONODE);
	cr_assert_eq(t_read(4, ZK_OP_GET_DATA, t_path_watch_body("/later", true)), ZK_NONODE);
	cr_assert_eq(watch_count(), 1, "getData on a missing node must not register");
	cr_assert_eq(t_create("/later", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 3, ZK_EVENT_NODE_CREATED, "/later", T.zxid);
}

Test(store_watch, child_watch_on_create_and_delete)
{
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	watch_children(5, "/p");
	cr_assert_eq(t_create("/p/c", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 5, ZK_EVENT_NODE_CHILDREN_CHANGED, "/p", T.zxid);
	watch_children(5, "/p");
	watch_data(6, "/p/c");
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p/c", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 3);
	t_assert_event(1, 6, ZK_EVENT_NODE_DELETED, "/p/c", T.zxid);
	t_assert_event(2, 5, ZK_EVENT_NODE_CHILDREN_CHANGED, "/p", T.zxid);
}

Test(store_watch, delete_fires_one_event_per_watcher_for_data_and_child)
{
	cr_assert_eq(t_create("/d", "", 0), ZK_OK);
	watch_data(9, "/d");
	watch_children(9, "/d");
	watch_children(10, "/d");
	cr_assert_eq(watch_count(), 3);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/d", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	int seen9 = 0, seen10 = 0;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(T.events[i].type, ZK_EVENT_NODE_DELETED);
		seen9 += T.events[i].watcher == 9;
		seen10 += T.events[i].watcher == 10;
	}
	cr_assert_eq(seen9, 1);
	cr_assert_eq(seen10, 1);
	cr_assert_eq(watch_count(), 0);
}

Test(store_watch, set_acl_and_failed_ops_fire_nothing)
{
	cr_assert_eq(t_create("/n", "", 0), ZK_OK);
	watch_data(1, "/n");
	watch_children(1, "/n");
	struct jute_writer *w = t_body();
	t_str(w, "/n");
	t_acl_open(w);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_SET_ACL, w), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/n", "x", 9)), ZK_BADVERSION);
	cr_assert_eq(T.events_count, 0);
	cr_assert_eq(watch_count(), 2);
}

Test(store_watch, watcher_drop_removes_only_that_watcher)
{
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	cr_assert_eq(t_create("/b", "", 0), ZK_OK);
	for (int i = 0; i < 50; i++) {
		char p[32];
		snprintf(p, sizeof p, "/missing%d", i);
		cr_assert_eq(t_read(11, ZK_OP_EXISTS, t_path_watch_body(p, true)), ZK_NONODE);
	}
	watch_data(11, "/a");
	watch_children(11, "/b");
	watch_data(12, "/a");
	cr_assert_eq(watch_count(), 53);
	store_watcher_drop(T.s, 11);
	cr_assert_eq(watch_count(), 1);
	store_watcher_drop(T.s, 11); /* idempotent */
	store_watcher_drop(T.s, 999);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/a", "x", -1)), ZK_OK);
	cr_assert_eq(t_create("/b/c", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 12, ZK_EVENT_NODE_DATA_CHANGED, "/a", T.zxid - 1);
	struct store_stats st;
	store_stats(T.s, &st);
	cr_assert_eq(st.watch_paths, 0);
}

static struct jute_writer *set_watches_body(int64_t rel, const char *const *data, int nd, const char *const *exist,
					    int ne, const char *const *child, int nc)
{
	struct jute_writer *w = t_body();
	jute_write_long(w, rel);
	jute_write_int(w, nd);
	for (int i = 0; i < nd; i++)
		t_str(w, data[i]);
	jute_write_int(w, ne);
	for (int i = 0; i < ne; i++)
		t_str(w, exist[i]);
	jute_write_int(w, nc);
	for (int i = 0; i < nc; i++)
		t_str(w, child[i]);
	return w;
}

Test(store_watch, set_watches_catch_up)
{
	cr_assert_eq(t_create("/old", "", 0), ZK_OK);     /* zxid 2 */
	cr_assert_eq(t_create("/changed", "", 0), ZK_OK); /* zxid 3 */
	int64_t rel = T.zxid;
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/changed", "x", -1)), ZK_OK);
	cr_assert_eq(t_create("/old/kid", "", 0), ZK_OK);
	cr_assert_eq(t_create("/there", "", 0), ZK_OK);
	T.events_count = 0;
	const char *data[] = { "/old", "/changed", "/gone" };
	const char *exist[] = { "/there", "/notyet" };
	const char *child[] = { "/old", "/changed", "/gone" };
	struct jute_writer *w = set_watches_body(rel, data, 3, exist, 2, child, 3);
	cr_assert_eq(store_set_watches(T.s, 21, ZK_OP_SET_WATCHES, w->buf, w->len, t_on_event, &T), ZK_OK);
	cr_assert_eq(T.events_count, 5);
	t_assert_event(0, 21, ZK_EVENT_NODE_DATA_CHANGED, "/changed", -1);
	t_assert_event(1, 21, ZK_EVENT_NODE_DELETED, "/gone", -1);
	t_assert_event(2, 21, ZK_EVENT_NODE_CREATED, "/there", -1);
	t_assert_event(3, 21, ZK_EVENT_NODE_CHILDREN_CHANGED, "/old", -1);
	t_assert_event(4, 21, ZK_EVENT_NODE_DELETED, "/gone", -1);
	/* registered: data /old, exist /notyet, child /changed */
	cr_assert_eq(watch_count(), 3);
	cr_assert_eq(t_create("/notyet", "", 0), ZK_OK);
	t_assert_event(5, 21, ZK_EVENT_NODE_CREATED, "/notyet", T.zxid);
	cr_assert_eq(t_create("/changed/k", "", 0), ZK_OK);
	t_assert_event(6, 21, ZK_EVENT_NODE_CHILDREN_CHANGED, "/changed", T.zxid);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/old", "y", -1)), ZK_OK);
	t_assert_event(7, 21, ZK_EVENT_NODE_DATA_CHANGED, "/old", T.zxid);
	cr_assert_eq(T.events_count, 8);
}

Test(store_watch, set_watches_malformed_registers_nothing)
{
	const char *data[] = { "/a", "/b" };
	struct jute_writer *w = set_watches_body(0, data, 2, NULL, 0, NULL, 0);
	w->len -= 3; /* cut into the child vector count */
	cr_assert_eq(store_set_watches(T.s, 1, ZK_OP_SET_WATCHES, w->buf, w->len, t_on_event, &T),
		     ZK_MARSHALLINGERROR);
	cr_assert_eq(watch_count(), 0);
	cr_assert_eq(T.events_count, 0);
	/* setWatches2 has two more vectors */
	w = set_watches_body(0, data, 2, NULL, 0, NULL, 0);
	cr_assert_eq(store_set_watches(T.s, 1, ZK_OP_SET_WATCHES2, w->buf, w->len, t_on_event, &T),
		     ZK_MARSHALLINGERROR);
	jute_write_int(w, 0);
	jute_write_int(w, 0);
	cr_assert_eq(store_set_watches(T.s, 1, ZK_OP_SET_WATCHES2, w->buf, w->len, t_on_event, &T), ZK_OK);
	cr_assert_eq(T.events_count, 2); /* both missing: NodeDeleted */
}

Test(store_watch, get_children2_and_filtered_list)
{
	cr_assert_eq(t_create("/l", "", 0), ZK_OK);
	cr_assert_eq(t_create("/l/p1", "", 0), ZK_OK);
	cr_assert_eq(t_create("/l/e1", "", ZK_CREATE_EPHEMERAL), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN2, t_path_watch_body("/l", false)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 4), 2);
	jute_read_string(&r);
	jute_read_string(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(st.num_children, 2);
	cr_assert_eq(st.cversion, 2);
	for (uint8_t type = 0; type < 4; type++) {
		struct jute_writer *w = t_path_watch_body("/l", false);
		jute_write_byte(w, type);
		int32_t rc = t_read(0, ZK_OP_FILTERED_LIST, w);
		if (type == 3) {
			cr_assert_eq(rc, ZK_BADARGUMENTS);
			continue;
		}
		cr_assert_eq(rc, ZK_OK);
		jute_reader_init(&r, T.out.buf, T.out.len);
		int32_t n = jute_read_vector_count(&r, 4);
		cr_assert_eq(n, type == 0 ? 2 : 1);
		struct jute_bytes name = jute_read_string(&r);
		if (type == 1)
			cr_assert(jute_bytes_eq(name, "p1", 2));
		if (type == 2)
			cr_assert(jute_bytes_eq(name, "e1", 2));
	}
}

Test(store_watch, get_all_children_number)
{
	cr_assert_eq(t_create("/t", "", 0), ZK_OK);
	cr_assert_eq(t_create("/t/a", "", 0), ZK_OK);
	cr_assert_eq(t_create("/t/a/b", "", 0), ZK_OK);
	cr_assert_eq(t_create("/t/c", "", 0), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_GET_ALL_CHILDREN_NUMBER, t_path_body("/t")), ZK_OK);
	cr_assert_eq(T.out.len, 4);
	cr_assert_eq(jute_get_be32(T.out.buf), 3u);
	cr_assert_eq(t_read(0, ZK_OP_GET_ALL_CHILDREN_NUMBER, t_path_body("/")), ZK_OK);
	cr_assert_eq(jute_get_be32(T.out.buf), 7u); /* 3 system + 4 */
	cr_assert_eq(t_read(0, ZK_OP_GET_ALL_CHILDREN_NUMBER, t_path_body("/nope")), ZK_NONODE);
}

Test(store_watch, many_children_list_is_complete)
{
	cr_assert_eq(t_create("/big", "", 0), ZK_OK);
	for (int i = 0; i < 300; i++) {
		char p[32];
		snprintf(p, sizeof p, "/big/n%03d", i);
		cr_assert_eq(t_create(p, "", 0), ZK_OK);
	}
	for (int i = 0; i < 300; i += 3) {
		char p[32];
		snprintf(p, sizeof p, "/big/n%03d", i);
		cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body(p, -1)), ZK_OK);
	}
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN, t_path_watch_body("/big", false)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	int32_t n = jute_read_vector_count(&r, 4);
	cr_assert_eq(n, 200);
	bool seen[300] = { false };
	for (int i = 0; i < n; i++) {
		struct jute_bytes b = jute_read_string(&r);
		cr_assert_eq(b.len, 4);
		int k = (b.data[1] - '0') * 100 + (b.data[2] - '0') * 10 + (b.data[3] - '0');
		cr_assert(!seen[k] && k % 3 != 0);
		seen[k] = true;
	}
	cr_assert_eq(jute_reader_remaining(&r), 0);
}
