/*
 * test_store_persistent.c — addWatch (persistent and persistent-recursive watches),
 * checkWatches / removeWatches, setWatches2's persistent lists, one event per change.
 * The first three tests mirror tests/integration/test_wire_ext.py (verified against
 * ZooKeeper 3.8.0): test_check_and_remove_watches, test_add_watch_persistent_recursive,
 * test_add_watch_persistent. The watch model is 3.8.0's (test_b2b_persistent_watches):
 * a data and a child table with one mode per (path, watcher); addWatch fills both;
 * checkWatches/removeWatches know types 1-3 only; a check matches any watcher's entry.
 */
#include "store_test_util.h"
#include "store/store_impl.h"

TestSuite(store_persistent, .init = t_setup, .fini = t_teardown);

static int32_t add_watch(uint64_t watcher, const char *path, int32_t mode)
{
	struct jute_writer *w = t_path_int_body(path, mode);
	return store_add_watch(T.s, watcher, w->buf, w->len);
}

static int32_t watches_op(uint64_t watcher, int32_t opcode, const char *path, int32_t type)
{
	struct jute_writer *w = t_path_int_body(path, type);
	return store_remove_watches(T.s, watcher, opcode, w->buf, w->len);
}

static int32_t check_watches(uint64_t watcher, const char *path, int32_t type)
{
	return watches_op(watcher, ZK_OP_CHECK_WATCHES, path, type);
}

static int32_t remove_watches(uint64_t watcher, const char *path, int32_t type)
{
	return watches_op(watcher, ZK_OP_REMOVE_WATCHES, path, type);
}

static struct store_stats stats(void)
{
	struct store_stats st;
	store_stats(T.s, &st);
	return st;
}

static int32_t set_data(const char *path, const char *data)
{
	return t_apply(ZK_OP_SET_DATA, t_set_body(path, data, -1));
}

static int32_t delete_node(const char *path)
{
	return t_apply(ZK_OP_DELETE, t_path_int_body(path, -1));
}

static int events_for(uint64_t watcher)
{
	int n = 0;
	for (int i = 0; i < T.events_count; i++)
		n += T.events[i].watcher == watcher;
	return n;
}

Test(store_persistent, check_and_remove_watches)
{
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_ANY), ZK_NOWATCHER);
	cr_assert_eq(remove_watches(1, "/r", STORE_WATCHER_TYPE_ANY), ZK_NOWATCHER);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/r", true)), ZK_OK);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_CHILDREN), ZK_NOWATCHER);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_ANY), ZK_OK);
	/* 3.8.0's containsWatcher looks the path up only: another connection's entry counts */
	cr_assert_eq(check_watches(2, "/r", STORE_WATCHER_TYPE_DATA), ZK_OK, "another connection's watch");
	cr_assert_eq(remove_watches(2, "/r", STORE_WATCHER_TYPE_DATA), ZK_NOWATCHER, "removal is per connection");
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_PERSISTENT), ZK_MARSHALLINGERROR);
	cr_assert_eq(stats().watch_count, 1, "checkWatches must not remove");
	cr_assert_eq(remove_watches(1, "/r", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_DATA), ZK_NOWATCHER);
	cr_assert_eq(stats().watch_count, 0);
	cr_assert_eq(stats().watch_paths, 0);
	cr_assert_eq(set_data("/r", "x"), ZK_OK);
	cr_assert_eq(T.events_count, 0, "a removed watch fired");
	/* an exist watch on a missing node is a data watch too */
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body("/none", true)), ZK_NONODE);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/r", true)), ZK_OK);
	cr_assert_eq(check_watches(1, "/none", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_CHILDREN), ZK_OK);
	cr_assert_eq(remove_watches(1, "/r", STORE_WATCHER_TYPE_ANY), ZK_OK);
	cr_assert_eq(remove_watches(1, "/none", STORE_WATCHER_TYPE_ANY), ZK_OK);
	cr_assert_eq(stats().watch_count, 0);
	cr_assert_eq(t_create("/none", "", 0), ZK_OK);
	cr_assert_eq(t_create("/r/c", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 0);
}

Test(store_persistent, add_watch_persistent_recursive)
{
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	cr_assert_eq(t_create("/r/a", "", 0), ZK_OK);
	cr_assert_eq(add_watch(1, "/r", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(t_create("/r/a/x", "", 0), ZK_OK);
	int64_t z1 = T.zxid;
	cr_assert_eq(set_data("/r/a/x", "q"), ZK_OK);
	int64_t z2 = T.zxid;
	cr_assert_eq(delete_node("/r/a/x"), ZK_OK);
	int64_t z3 = T.zxid;
	cr_assert_eq(set_data("/r", "r"), ZK_OK);
	int64_t z4 = T.zxid;
	cr_assert_eq(T.events_count, 4, "got %d events (no NodeChildrenChanged expected)", T.events_count);
	t_assert_event(0, 1, ZK_EVENT_NODE_CREATED, "/r/a/x", z1);
	t_assert_event(1, 1, ZK_EVENT_NODE_DATA_CHANGED, "/r/a/x", z2);
	t_assert_event(2, 1, ZK_EVENT_NODE_DELETED, "/r/a/x", z3);
	t_assert_event(3, 1, ZK_EVENT_NODE_DATA_CHANGED, "/r", z4);
	/* still armed; siblings of the watched path do not match */
	cr_assert_eq(t_create("/r2", "", 0), ZK_OK);
	cr_assert_eq(t_create("/r/b", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 5);
	t_assert_event(4, 1, ZK_EVENT_NODE_CREATED, "/r/b", T.zxid);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_PERSISTENT_RECURSIVE), ZK_MARSHALLINGERROR);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_PERSISTENT), ZK_MARSHALLINGERROR);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_CHILDREN), ZK_OK);
	/* the watched node itself may go and come back */
	cr_assert_eq(delete_node("/r/b"), ZK_OK);
	cr_assert_eq(delete_node("/r/a"), ZK_OK);
	cr_assert_eq(delete_node("/r"), ZK_OK);
	t_assert_event(7, 1, ZK_EVENT_NODE_DELETED, "/r", T.zxid);
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	t_assert_event(8, 1, ZK_EVENT_NODE_CREATED, "/r", T.zxid);
	cr_assert_eq(T.events_count, 9);
}

Test(store_persistent, add_watch_persistent)
{
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	cr_assert_eq(add_watch(1, "/r", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(t_create("/r/y", "", 0), ZK_OK);
	t_assert_event(0, 1, ZK_EVENT_NODE_CHILDREN_CHANGED, "/r", T.zxid);
	cr_assert_eq(set_data("/r/y", "q"), ZK_OK); /* not P itself */
	cr_assert_eq(T.events_count, 1);
	cr_assert_eq(set_data("/r", "1"), ZK_OK);
	t_assert_event(1, 1, ZK_EVENT_NODE_DATA_CHANGED, "/r", T.zxid);
	cr_assert_eq(set_data("/r", "2"), ZK_OK); /* still armed */
	t_assert_event(2, 1, ZK_EVENT_NODE_DATA_CHANGED, "/r", T.zxid);
	cr_assert_eq(T.events_count, 3);
	/*
	 * A standard data watch on the same path replaces the persistent data entry (3.8.0
	 * keeps one mode per path and watcher): one event, then the data part is gone.
	 */
	cr_assert_eq(stats().watch_count, 2); /* data and child entries */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/r", true)), ZK_OK);
	cr_assert_eq(stats().watch_count, 2);
	cr_assert_eq(set_data("/r", "3"), ZK_OK);
	cr_assert_eq(T.events_count, 4);
	t_assert_event(3, 1, ZK_EVENT_NODE_DATA_CHANGED, "/r", T.zxid);
	cr_assert_eq(stats().watch_count, 1);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_DATA), ZK_NOWATCHER);
	cr_assert_eq(check_watches(1, "/r", STORE_WATCHER_TYPE_CHILDREN), ZK_OK);
	cr_assert_eq(set_data("/r", "4"), ZK_OK);
	cr_assert_eq(T.events_count, 4, "the persistent data part was made one-shot");
	/* on a missing path: OK, and it survives the node's deletion */
	cr_assert_eq(add_watch(1, "/r/missing", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	T.events_count = 0;
	cr_assert_eq(t_create("/r/missing", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	t_assert_event(0, 1, ZK_EVENT_NODE_CREATED, "/r/missing", T.zxid);
	t_assert_event(1, 1, ZK_EVENT_NODE_CHILDREN_CHANGED, "/r", T.zxid);
	cr_assert_eq(t_create("/r/missing/k", "", 0), ZK_OK);
	t_assert_event(2, 1, ZK_EVENT_NODE_CHILDREN_CHANGED, "/r/missing", T.zxid);
	cr_assert_eq(T.events_count, 3, "a PERSISTENT watch on /r must not see grandchildren");
	cr_assert_eq(delete_node("/r/missing/k"), ZK_OK);
	cr_assert_eq(delete_node("/r/missing"), ZK_OK);
	cr_assert_eq(T.events_count, 6);
	t_assert_event(4, 1, ZK_EVENT_NODE_DELETED, "/r/missing", T.zxid);
	t_assert_event(5, 1, ZK_EVENT_NODE_CHILDREN_CHANGED, "/r", T.zxid);
	cr_assert_eq(t_create("/r/missing", "", 0), ZK_OK);
	t_assert_event(6, 1, ZK_EVENT_NODE_CREATED, "/r/missing", T.zxid);
}

Test(store_persistent, one_event_per_change_per_watcher)
{
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	cr_assert_eq(t_create("/r/a", "", 0), ZK_OK);
	/* watcher 1: every kind that can match /r/a */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/r/a", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/r/a", true)), ZK_OK);
	cr_assert_eq(add_watch(1, "/r/a", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch(1, "/r/a", STORE_ADD_WATCH_PERSISTENT), ZK_OK); /* de-duplicated */
	cr_assert_eq(add_watch(1, "/r/a", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(add_watch(1, "/r", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(add_watch(1, "/", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	/* watcher 2: recursive on the root only */
	cr_assert_eq(add_watch(2, "/", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	/* the recursive mode replaced the others on /r/a: 4 paths x (data + child) entries */
	cr_assert_eq(stats().watch_count, 8);
	cr_assert_eq(set_data("/r/a", "x"), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	cr_assert_eq(events_for(1), 1);
	cr_assert_eq(events_for(2), 1);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(T.events[i].type, ZK_EVENT_NODE_DATA_CHANGED);
		cr_assert_str_eq(T.events[i].path, "/r/a");
		cr_assert_eq(T.events[i].zxid, T.zxid);
	}
	cr_assert_eq(stats().watch_count, 8, "persistent entries stay");
	/* delete: one NodeDeleted each */
	T.events_count = 0;
	cr_assert_eq(delete_node("/r/a"), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	cr_assert_eq(events_for(1), 1);
	cr_assert_eq(events_for(2), 1);
	cr_assert_eq(T.events[0].type, ZK_EVENT_NODE_DELETED);
	cr_assert_eq(T.events[1].type, ZK_EVENT_NODE_DELETED);
	cr_assert_eq(stats().watch_count, 8);
	/* NodeChildrenChanged of /r reaches no one: recursive watches never get it */
	T.events_count = 0;
	cr_assert_eq(t_create("/r/b", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	cr_assert_eq(T.events[0].type, ZK_EVENT_NODE_CREATED);
	cr_assert_eq(T.events[1].type, ZK_EVENT_NODE_CREATED);
}

Test(store_persistent, remove_by_type)
{
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	cr_assert_eq(add_watch(1, "/p", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch(1, "/p", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK); /* replaces the mode */
	cr_assert_eq(T.s->recursive_watch_count, 2);
	cr_assert_eq(stats().watch_count, 2);
	/* the recursive watch has an entry in both tables */
	cr_assert_eq(check_watches(1, "/p", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(check_watches(1, "/p", STORE_WATCHER_TYPE_CHILDREN), ZK_OK);
	cr_assert_eq(check_watches(1, "/p", STORE_WATCHER_TYPE_ANY), ZK_OK);
	cr_assert_eq(check_watches(1, "/p/x", STORE_WATCHER_TYPE_DATA), ZK_NOWATCHER, "exact path only");
	/* 3.8.0 does not know the persistent types */
	cr_assert_eq(check_watches(1, "/p", STORE_WATCHER_TYPE_PERSISTENT_RECURSIVE), ZK_MARSHALLINGERROR);
	cr_assert_eq(remove_watches(1, "/p", STORE_WATCHER_TYPE_PERSISTENT_RECURSIVE), ZK_MARSHALLINGERROR);
	cr_assert_eq(remove_watches(1, "/p", STORE_WATCHER_TYPE_PERSISTENT), ZK_MARSHALLINGERROR);
	cr_assert_eq(stats().watch_count, 2);
	/* removing the data part leaves the child part */
	cr_assert_eq(remove_watches(1, "/p", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(stats().watch_count, 1);
	cr_assert_eq(T.s->recursive_watch_count, 1);
	cr_assert_eq(t_create("/p/c", "", 0), ZK_OK); /* no NodeCreated: that was the data part */
	cr_assert_eq(T.events_count, 0);
	cr_assert_eq(delete_node("/p/c"), ZK_OK); /* the child table's recursive entry sees deletes */
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 1, ZK_EVENT_NODE_DELETED, "/p/c", T.zxid);
	cr_assert_eq(remove_watches(1, "/p", STORE_WATCHER_TYPE_CHILDREN), ZK_OK);
	cr_assert_eq(stats().watch_count, 0);
	cr_assert_eq(stats().watch_paths, 0);
	cr_assert_eq(T.s->recursive_watch_count, 0);
	/* Any removes this watcher's entries in both tables, whatever their mode */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/p", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/p", true)), ZK_OK);
	cr_assert_eq(add_watch(2, "/p", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(stats().watch_count, 4);
	cr_assert_eq(remove_watches(1, "/p", STORE_WATCHER_TYPE_ANY), ZK_OK);
	cr_assert_eq(stats().watch_count, 2);
	cr_assert_eq(remove_watches(1, "/p", STORE_WATCHER_TYPE_ANY), ZK_NOWATCHER);
	cr_assert_eq(check_watches(1, "/p", STORE_WATCHER_TYPE_ANY), ZK_OK, "watcher 2's entries count");
	cr_assert_eq(set_data("/p", "y"), ZK_OK);
	cr_assert_eq(T.events_count, 2);
	t_assert_event(1, 2, ZK_EVENT_NODE_DATA_CHANGED, "/p", T.zxid);
}

Test(store_persistent, bad_requests)
{
	cr_assert_eq(add_watch(1, "/p", 2), ZK_MARSHALLINGERROR);
	cr_assert_eq(add_watch(1, "/p", -1), ZK_MARSHALLINGERROR);
	struct jute_writer *w = t_path_int_body("/p", 0);
	cr_assert_eq(store_add_watch(T.s, 1, w->buf, w->len - 1), ZK_MARSHALLINGERROR);
	cr_assert_eq(store_add_watch(T.s, 1, w->buf, 0), ZK_MARSHALLINGERROR);
	cr_assert_eq(check_watches(1, "/p", 0), ZK_MARSHALLINGERROR);
	cr_assert_eq(remove_watches(1, "/p", 6), ZK_MARSHALLINGERROR);
	w = t_path_int_body("/p", STORE_WATCHER_TYPE_ANY);
	cr_assert_eq(store_remove_watches(T.s, 1, ZK_OP_REMOVE_WATCHES, w->buf, w->len - 2), ZK_MARSHALLINGERROR);
	cr_assert_eq(store_remove_watches(T.s, 1, ZK_OP_ADD_WATCH, w->buf, w->len), ZK_UNIMPLEMENTED);
	cr_assert_eq(stats().watch_count, 0);
}

Test(store_persistent, watcher_drop_and_stats)
{
	cr_assert_eq(t_create("/d", "", 0), ZK_OK);
	cr_assert_eq(add_watch(5, "/d", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch(5, "/d", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(add_watch(5, "/elsewhere", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(t_read(5, ZK_OP_GET_DATA, t_path_watch_body("/d", true)), ZK_OK);
	cr_assert_eq(add_watch(6, "/", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	struct store_stats st = stats();
	/* watcher 5: /d standard data + recursive child, /elsewhere recursive x2; watcher 6: / x2 */
	cr_assert_eq(st.watch_count, 6);
	cr_assert_eq(st.watch_paths, 4); /* /d (shard), /d, /elsewhere, / (recursive table) */
	store_watcher_drop(T.s, 5);
	st = stats();
	cr_assert_eq(st.watch_count, 2);
	cr_assert_eq(st.watch_paths, 1);
	cr_assert_eq(T.s->recursive_watch_count, 2);
	cr_assert_eq(set_data("/d", "x"), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 6, ZK_EVENT_NODE_DATA_CHANGED, "/d", T.zxid);
	store_watcher_drop(T.s, 6);
	cr_assert_eq(stats().watch_count, 0);
	cr_assert_eq(stats().watch_paths, 0);
	cr_assert_eq(T.s->recursive_watch_count, 0);
}

static struct jute_writer *set_watches2_body(int64_t rel, const char *data, const char *persistent,
					     const char *recursive)
{
	struct jute_writer *w = t_body();
	jute_write_long(w, rel);
	jute_write_int(w, 1);
	t_str(w, data);
	jute_write_int(w, 0);
	jute_write_int(w, 0);
	jute_write_int(w, 1);
	t_str(w, persistent);
	jute_write_int(w, 1);
	t_str(w, recursive);
	return w;
}

Test(store_persistent, set_watches2_registers_persistent_lists)
{
	cr_assert_eq(t_create("/s", "", 0), ZK_OK);
	cr_assert_eq(set_data("/s", "changed"), ZK_OK);
	/* relativeZxid 0: /s changed since, /gone is missing; persistent lists get no catch-up */
	struct jute_writer *w = set_watches2_body(0, "/gone", "/s", "/gone");
	cr_assert_eq(store_set_watches(T.s, 7, ZK_OP_SET_WATCHES2, w->buf, w->len, t_on_event, &T), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 7, ZK_EVENT_NODE_DELETED, "/gone", -1);
	cr_assert_eq(stats().watch_count, 4); /* a data and a child entry each */
	cr_assert_eq(check_watches(7, "/s", STORE_WATCHER_TYPE_CHILDREN), ZK_OK);
	cr_assert_eq(check_watches(7, "/gone", STORE_WATCHER_TYPE_DATA), ZK_OK);
	cr_assert_eq(t_create("/s/k", "", 0), ZK_OK);
	t_assert_event(1, 7, ZK_EVENT_NODE_CHILDREN_CHANGED, "/s", T.zxid);
	cr_assert_eq(t_create("/gone", "", 0), ZK_OK);
	t_assert_event(2, 7, ZK_EVENT_NODE_CREATED, "/gone", T.zxid);
	cr_assert_eq(t_create("/gone/deep", "", 0), ZK_OK);
	t_assert_event(3, 7, ZK_EVENT_NODE_CREATED, "/gone/deep", T.zxid);
	cr_assert_eq(T.events_count, 4);
	/* SetWatches (101) has no persistent lists: the same first three vectors only */
	cr_assert_eq(store_set_watches(T.s, 8, ZK_OP_SET_WATCHES, w->buf, w->len, t_on_event, &T), ZK_OK);
	cr_assert_eq(remove_watches(8, "/s", STORE_WATCHER_TYPE_ANY), ZK_NOWATCHER);
}

Test(store_persistent, multi_and_close_session_fire_recursive)
{
	t_session_create(0x99);
	cr_assert_eq(t_create("/m", "", 0), ZK_OK);
	cr_assert_eq(add_watch(1, "/m", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(add_watch(2, "/m", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	struct jute_writer *w = t_body();
	jute_write_int(w, ZK_OP_CREATE);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_create_fields(w, "/m/e", "", ZK_CREATE_EPHEMERAL);
	jute_write_int(w, ZK_OP_SET_DATA);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_str(w, "/m/e");
	jute_write_buffer(w, "v", 1);
	jute_write_int(w, -1);
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply_as(0x99, NULL, ZK_OP_MULTI, w), ZK_OK);
	int64_t z = T.zxid;
	cr_assert_eq(T.events_count, 3);
	t_assert_event(0, 1, ZK_EVENT_NODE_CREATED, "/m/e", z);
	t_assert_event(1, 2, ZK_EVENT_NODE_CHILDREN_CHANGED, "/m", z);
	t_assert_event(2, 1, ZK_EVENT_NODE_DATA_CHANGED, "/m/e", z);
	/* a failed multi fires nothing */
	w = t_body();
	jute_write_int(w, ZK_OP_CREATE);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_create_fields(w, "/m/f", "", 0);
	jute_write_int(w, ZK_OP_DELETE);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_str(w, "/m/nope");
	jute_write_int(w, -1);
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(T.events_count, 3);
	/* ephemeral cleanup is a delete like any other */
	cr_assert_eq(t_apply_as(0x99, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	cr_assert_eq(T.events_count, 5);
	t_assert_event(3, 1, ZK_EVENT_NODE_DELETED, "/m/e", T.zxid);
	t_assert_event(4, 2, ZK_EVENT_NODE_CHILDREN_CHANGED, "/m", T.zxid);
}

/* Registration and removal race the applier's firing without losing counts. */
struct race_arg {
	uint64_t watcher;
	int rounds;
};

static void *race_worker(void *p)
{
	struct race_arg *a = p;
	struct jute_writer w;
	jute_writer_init(&w, 64);
	const char *failed = NULL;
	for (int i = 0; i < a->rounds && !failed; i++) {
		jute_writer_reset(&w);
		jute_write_string(&w, "/race", 5);
		jute_write_int(&w, i & 1);
		if (store_add_watch(T.s, a->watcher, w.buf, w.len) != ZK_OK)
			failed = "add";
		jute_writer_reset(&w);
		jute_write_string(&w, "/race", 5);
		jute_write_int(&w, STORE_WATCHER_TYPE_ANY); /* both table entries */
		if (!failed && store_remove_watches(T.s, a->watcher, ZK_OP_REMOVE_WATCHES, w.buf, w.len) != ZK_OK)
			failed = "remove";
	}
	jute_writer_free(&w);
	return (void *)failed;
}

static void count_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len, int64_t zxid)
{
	(void)watcher, (void)type, (void)path, (void)path_len, (void)zxid;
	__atomic_fetch_add((int *)ctx, 1, __ATOMIC_RELAXED);
}

Test(store_persistent, concurrent_add_remove_while_applying)
{
	cr_assert_eq(t_create("/race", "", 0), ZK_OK);
	pthread_t th[4];
	struct race_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct race_arg){ 100 + (uint64_t)i, 2000 };
		cr_assert_eq(pthread_create(&th[i], NULL, race_worker, &args[i]), 0);
	}
	int fired = 0;
	struct jute_writer *body = t_set_body("/race", "x", -1);
	for (int i = 0; i < 2000; i++) {
		struct store_txn txn = { .zxid = ++T.zxid, .time_ms = T.time_ms, .session_id = T_SESSION,
					 .opcode = ZK_OP_SET_DATA, .body = body->buf, .body_len = body->len };
		jute_writer_reset(&T.out);
		cr_assert_eq(store_apply(T.s, &txn, &T.out, count_event, &fired), ZK_OK);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		cr_assert_null(ret, "worker %d failed at %s", i, (const char *)ret);
	}
	cr_assert_eq(stats().watch_count, 0);
	cr_assert_eq(stats().watch_paths, 0);
	cr_assert_eq(T.s->recursive_watch_count, 0);
}
