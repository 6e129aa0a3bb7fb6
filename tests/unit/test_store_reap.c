/*
 * test_store_reap.c — container and TTL reaping: store_reap_candidates() lists what
 * ZooKeeper's ContainerManager would, and the deleteContainer (20) txn re-checks the
 * condition at the txn's time, deletes like a delete (watches fire) or refuses with
 * no change.
 */
#include "store_test_util.h"

TestSuite(store_reap, .init = t_setup, .fini = t_teardown);

#define REAP_MAX 64

struct reap_list {
	int count;
	char paths[REAP_MAX][128];
};

static void reap_collect(void *ctx, const char *path, size_t len)
{
	struct reap_list *l = ctx;
	cr_assert_lt(l->count, REAP_MAX);
	cr_assert_lt(len, sizeof l->paths[0]);
	memcpy(l->paths[l->count], path, len);
	l->paths[l->count][len] = '\0';
	l->count++;
}

static struct reap_list reap(int64_t now_ms, size_t max)
{
	struct reap_list l = { 0 };
	store_reap_candidates(T.s, now_ms, reap_collect, &l, max);
	return l;
}

static bool listed(const struct reap_list *l, const char *path)
{
	for (int i = 0; i < l->count; i++)
		if (strcmp(l->paths[i], path) == 0)
			return true;
	return false;
}

static int32_t create_container(const char *path)
{
	return t_apply(ZK_OP_CREATE_CONTAINER, t_create_body(path, "", ZK_CREATE_CONTAINER));
}

static int32_t create_ttl(const char *path, int64_t ttl)
{
	struct jute_writer *w = t_body();
	t_create_fields(w, path, "", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, ttl);
	return t_apply(ZK_OP_CREATE_TTL, w);
}

/* The leader's deleteContainer txn; session 0 as ZooKeeper proposes it. */
static int32_t delete_container(const char *path)
{
	return t_apply_as(0, NULL, ZK_OP_DELETE_CONTAINER, t_path_body(path));
}

static int32_t delete_node(const char *path)
{
	return t_apply(ZK_OP_DELETE, t_path_int_body(path, -1));
}

Test(store_reap, unused_container_is_not_a_candidate)
{
	cr_assert_eq(create_container("/c"), ZK_OK);
	struct reap_list l = reap(T.time_ms + 1000000, 100);
	cr_assert_eq(l.count, 0);
	/* The txn refuses too: never had a child. */
	cr_assert_eq(delete_container("/c"), ZK_BADVERSION);
	cr_assert(t_exists("/c"));
}

Test(store_reap, emptied_container_is_reaped_with_watches)
{
	cr_assert_eq(create_container("/c"), ZK_OK);
	cr_assert_eq(t_create("/c/x", "", 0), ZK_OK);
	cr_assert_eq(reap(T.time_ms, 100).count, 0); /* has a child */
	cr_assert_eq(delete_container("/c"), ZK_NOTEMPTY);
	cr_assert(t_exists("/c/x"));
	cr_assert_eq(delete_node("/c/x"), ZK_OK);
	struct reap_list l = reap(T.time_ms, 100);
	cr_assert_eq(l.count, 1);
	cr_assert_str_eq(l.paths[0], "/c");

	/* Watches: data watch on /c (watcher 1), child watches on /c (2) and / (3). */
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, t_path_watch_body("/c", true)), ZK_OK);
	cr_assert_eq(t_read(2, ZK_OP_GET_CHILDREN, t_path_watch_body("/c", true)), ZK_OK);
	cr_assert_eq(t_read(3, ZK_OP_GET_CHILDREN, t_path_watch_body("/", true)), ZK_OK);
	struct jute_writer *aw = t_path_int_body("/", 1); /* persistent recursive on / */
	cr_assert_eq(store_add_watch(T.s, 4, aw->buf, aw->len), ZK_OK);
	struct zk_stat root_before = t_stat("/");
	T.events_count = 0;
	cr_assert_eq(delete_container("/c"), ZK_OK);
	cr_assert_eq(T.out.len, 0);
	int64_t z = T.zxid;
	cr_assert(!t_exists("/c"));
	cr_assert_eq(T.events_count, 4);
	bool seen[5] = { false };
	for (int i = 0; i < T.events_count; i++) {
		struct t_event *e = &T.events[i];
		cr_assert_eq(e->zxid, z);
		if (e->watcher == 3) {
			cr_assert_eq(e->type, ZK_EVENT_NODE_CHILDREN_CHANGED);
			cr_assert_str_eq(e->path, "/");
		} else {
			cr_assert_eq(e->type, ZK_EVENT_NODE_DELETED);
			cr_assert_str_eq(e->path, "/c");
		}
		seen[e->watcher] = true;
	}
	cr_assert(seen[1] && seen[2] && seen[3] && seen[4]);
	struct zk_stat root = t_stat("/");
	cr_assert_eq(root.pzxid, z);
	cr_assert_eq(root.num_children, root_before.num_children - 1);
	cr_assert_eq(reap(T.time_ms, 100).count, 0);
	/* Gone now: a second (stale) proposal changes nothing. */
	cr_assert_eq(delete_container("/c"), ZK_NONODE);
}

Test(store_reap, ttl_node_expires_strictly_after_ttl)
{
	int64_t t0 = T.time_ms;
	cr_assert_eq(create_ttl("/t", 5000), ZK_OK);
	cr_assert_eq(reap(t0 + 5000, 100).count, 0); /* now - mtime == ttl: not yet */
	struct reap_list l = reap(t0 + 5001, 100);
	cr_assert_eq(l.count, 1);
	cr_assert_str_eq(l.paths[0], "/t");

	/* The txn decides by its own time: too early -> BADVERSION, no change. */
	T.time_ms = t0 + 5000;
	cr_assert_eq(delete_container("/t"), ZK_BADVERSION);
	cr_assert(t_exists("/t"));
	/* A setData moves mtime: no longer due at t0 + 5001. */
	T.time_ms = t0 + 3000;
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/t", "x", -1)), ZK_OK);
	cr_assert_eq(reap(t0 + 5001, 100).count, 0);
	T.time_ms = t0 + 5001;
	cr_assert_eq(delete_container("/t"), ZK_BADVERSION);
	T.time_ms = t0 + 8001;
	cr_assert_eq(delete_container("/t"), ZK_OK);
	cr_assert(!t_exists("/t"));
}

Test(store_reap, ttl_node_with_children_waits)
{
	int64_t t0 = T.time_ms;
	cr_assert_eq(create_ttl("/t", 10), ZK_OK);
	cr_assert_eq(t_create("/t/k", "", 0), ZK_OK);
	cr_assert_eq(reap(t0 + 100000, 100).count, 0);
	T.time_ms = t0 + 100000;
	cr_assert_eq(delete_container("/t"), ZK_NOTEMPTY);
	cr_assert_eq(delete_node("/t/k"), ZK_OK);
	cr_assert_eq(reap(t0 + 100000, 100).count, 1);
	cr_assert_eq(delete_container("/t"), ZK_OK);
}

Test(store_reap, other_nodes_are_refused)
{
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	cr_assert_eq(t_create("/p/c", "", 0), ZK_OK);
	cr_assert_eq(delete_node("/p/c"), ZK_OK); /* /p had a child, like a used container */
	cr_assert_eq(t_create("/e", "", ZK_CREATE_EPHEMERAL), ZK_OK);
	cr_assert_eq(reap(T.time_ms + 1000000, 100).count, 0);
	T.events_count = 0;
	cr_assert_eq(delete_container("/p"), ZK_BADVERSION);
	cr_assert_eq(delete_container("/e"), ZK_BADVERSION);
	cr_assert_eq(delete_container("/missing"), ZK_NONODE);
	cr_assert_eq(delete_container("/zookeeper"), ZK_BADARGUMENTS);
	cr_assert_eq(delete_container("nopath"), ZK_BADARGUMENTS);
	cr_assert(t_exists("/p") && t_exists("/e"));
	cr_assert_eq(T.events_count, 0);
	/* A short body. */
	struct jute_writer *w = t_body();
	jute_write_int(w, 50);
	cr_assert_eq(t_apply_as(0, NULL, ZK_OP_DELETE_CONTAINER, w), ZK_MARSHALLINGERROR);
}

Test(store_reap, max_bounds_the_listing_and_candidates_follow_deletes)
{
	char path[32];
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof path, "/c%d", i);
		cr_assert_eq(create_container(path), ZK_OK);
		snprintf(path, sizeof path, "/c%d/x", i);
		cr_assert_eq(t_create(path, "", 0), ZK_OK);
		cr_assert_eq(delete_node(path), ZK_OK);
	}
	cr_assert_eq(reap(T.time_ms, 3).count, 3);
	cr_assert_eq(reap(T.time_ms, 0).count, 0);
	struct reap_list l = reap(T.time_ms, 100);
	cr_assert_eq(l.count, 10);
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof path, "/c%d", i);
		cr_assert(listed(&l, path), "%s", path);
	}
	/* A plain delete of a container removes it from the candidate set too. */
	cr_assert_eq(delete_node("/c3"), ZK_OK);
	for (int i = 0; i < l.count; i++)
		if (strcmp(l.paths[i], "/c3") != 0)
			cr_assert_eq(delete_container(l.paths[i]), ZK_OK, "%s", l.paths[i]);
	cr_assert_eq(reap(T.time_ms, 100).count, 0);
	struct store_stats st;
	store_stats(T.s, &st);
	cr_assert_eq(st.node_count, 4);
}

Test(store_reap, failed_multi_keeps_candidate_set_consistent)
{
	/* A container created then rolled back, and one deleted then restored. */
	cr_assert_eq(create_container("/keep"), ZK_OK);
	cr_assert_eq(t_create("/keep/x", "", 0), ZK_OK);
	cr_assert_eq(delete_node("/keep/x"), ZK_OK);
	struct jute_writer *w = t_body();
	jute_write_int(w, ZK_OP_CREATE_CONTAINER);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_create_fields(w, "/gone", "", ZK_CREATE_CONTAINER);
	jute_write_int(w, ZK_OP_DELETE);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_str(w, "/keep");
	jute_write_int(w, -1);
	jute_write_int(w, ZK_OP_DELETE);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
	t_str(w, "/missing");
	jute_write_int(w, -1);
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK); /* per-op errors, rolled back */
	cr_assert(!t_exists("/gone"));
	cr_assert(t_exists("/keep"));
	struct reap_list l = reap(T.time_ms, 100);
	cr_assert_eq(l.count, 1);
	cr_assert_str_eq(l.paths[0], "/keep");
	cr_assert_eq(delete_container("/keep"), ZK_OK);
	cr_assert_eq(reap(T.time_ms, 100).count, 0);
}

Test(store_reap, close_session_leaves_candidates_alone)
{
	t_session_create(77);
	cr_assert_eq(create_container("/c"), ZK_OK);
	cr_assert_eq(t_apply_as(77, NULL, ZK_OP_CREATE, t_create_body("/c/e", "", ZK_CREATE_EPHEMERAL)), ZK_OK);
	cr_assert_eq(reap(T.time_ms, 100).count, 0);
	cr_assert_eq(t_apply_as(77, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	struct reap_list l = reap(T.time_ms, 100);
	cr_assert_eq(l.count, 1);
	cr_assert_str_eq(l.paths[0], "/c");
}
