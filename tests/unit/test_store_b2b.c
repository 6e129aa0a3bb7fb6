/*
 * test_store_b2b.c — behaviours pinned by the back-to-back runs against ZooKeeper
 * 3.8.0 (tests/integration/test_b2b.py, test_clickhouse.py): null paths, the flags
 * of createContainer, the READ filter of watch events (CVE-2024-23944 fix), the
 * 3.8.0 watch tables behind checkWatches / removeWatches, and ClickHouse's
 * RemoveRecursive limit.
 */
#include "store_test_util.h"
#include "store/store_impl.h"

TestSuite(store_b2b, .init = t_setup, .fini = t_teardown);

/* ---------------------------------------------------------------- helpers */

static struct jute_writer *null_path_create_body(void)
{
	struct jute_writer *w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_buffer(w, "", 0);
	t_acl_open(w);
	jute_write_int(w, 0);
	return w;
}

static struct jute_writer *null_path_int_body(int32_t v)
{
	struct jute_writer *w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_int(w, v);
	return w;
}

static struct jute_writer *null_path_watch_body(void)
{
	struct jute_writer *w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_bool(w, true);
	return w;
}

static void multi_header(struct jute_writer *w, int32_t type)
{
	jute_write_int(w, type);
	jute_write_bool(w, false);
	jute_write_int(w, -1);
}

static void multi_end(struct jute_writer *w)
{
	jute_write_int(w, -1);
	jute_write_bool(w, true);
	jute_write_int(w, -1);
}

static struct store_stats stats(void)
{
	struct store_stats st;
	store_stats(T.s, &st);
	return st;
}

static int32_t add_watch_as(uint64_t watcher, const struct store_auth *auth, const char *path, int32_t mode)
{
	struct jute_writer *w = t_path_int_body(path, mode);
	return store_add_watch_auth(T.s, watcher, auth, w->buf, w->len, NULL);
}

static int32_t watches_op(uint64_t watcher, int32_t opcode, const char *path, int32_t type)
{
	struct jute_writer *w = t_path_int_body(path, type);
	return store_remove_watches(T.s, watcher, opcode, w->buf, w->len);
}

static int32_t set_data(const char *path, const char *data)
{
	return t_apply(ZK_OP_SET_DATA, t_set_body(path, data, -1));
}

static int events_for(uint64_t watcher)
{
	int n = 0;
	for (int i = 0; i < T.events_count; i++)
		n += T.events[i].watcher == watcher;
	return n;
}

/* ---------------------------------------------------------------- 1. null paths */

Test(store_b2b, null_path_is_marshalling_error_for_create_delete_and_reads)
{
	/* create* with a null path: ZooKeeper's NPE -> MARSHALLINGERROR, nothing created */
	cr_assert_eq(t_apply(ZK_OP_CREATE, null_path_create_body()), ZK_MARSHALLINGERROR);
	cr_assert_eq(t_apply(ZK_OP_CREATE2, null_path_create_body()), ZK_MARSHALLINGERROR);
	cr_assert_eq(t_apply(ZK_OP_CREATE_CONTAINER, null_path_create_body()), ZK_MARSHALLINGERROR);
	/* bad flags are checked first (CreateMode.fromFlag) */
	struct jute_writer *w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_buffer(w, "", 0);
	t_acl_open(w);
	jute_write_int(w, 99);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_BADARGUMENTS);
	/* delete: NPE too; setData / setACL / check validate the path first: BADARGUMENTS */
	cr_assert_eq(t_apply(ZK_OP_DELETE, null_path_int_body(-1)), ZK_MARSHALLINGERROR);
	w = t_body();
	jute_write_string(w, NULL, -1);
	jute_write_buffer(w, "x", 1);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, w), ZK_BADARGUMENTS);
	/* reads: the node lookup throws NPE */
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, null_path_watch_body()), ZK_MARSHALLINGERROR);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, null_path_watch_body()), ZK_MARSHALLINGERROR);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, null_path_watch_body()), ZK_MARSHALLINGERROR);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN2, null_path_watch_body()), ZK_MARSHALLINGERROR);
	cr_assert_eq(stats().watch_count, 0, "a failed read registers nothing");
	cr_assert_eq(stats().node_count, 4); /* /, /zookeeper, /zookeeper/quota, /zookeeper/config */
}

Test(store_b2b, null_path_fails_the_whole_multi_and_multi_read)
{
	struct jute_writer *w = t_body();
	multi_header(w, ZK_OP_CREATE);
	t_create_fields(w, "/first", "", 0);
	multi_header(w, ZK_OP_CREATE);
	jute_write_string(w, NULL, -1);
	jute_write_buffer(w, "", 0);
	t_acl_open(w);
	jute_write_int(w, 0);
	multi_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_MARSHALLINGERROR);
	cr_assert(!t_exists("/first"), "the multi was applied in part");
	cr_assert_eq(T.events_count, 0);

	cr_assert_eq(t_create("/k", "", 0), ZK_OK);
	w = t_body();
	multi_header(w, ZK_OP_GET_DATA);
	t_str(w, "/k");
	jute_write_bool(w, false);
	multi_header(w, ZK_OP_GET_DATA);
	jute_write_string(w, NULL, -1);
	jute_write_bool(w, false);
	multi_end(w);
	cr_assert_eq(t_read(1, ZK_OP_MULTI_READ, w), ZK_MARSHALLINGERROR);
}

/* ---------------------------------------------------------------- 2. createContainer flags */

static struct reaped {
	char paths[8][64];
	int count;
} reaped;

static void reap_collect(void *ctx, const char *path, size_t len)
{
	struct reaped *r = ctx;
	cr_assert_lt(r->count, 8);
	cr_assert_lt(len, sizeof r->paths[0]);
	memcpy(r->paths[r->count], path, len);
	r->paths[r->count][len] = '\0';
	r->count++;
}

static bool reapable(const char *path)
{
	memset(&reaped, 0, sizeof reaped);
	store_reap_candidates(T.s, T.time_ms, reap_collect, &reaped, 8);
	for (int i = 0; i < reaped.count; i++)
		if (strcmp(reaped.paths[i], path) == 0)
			return true;
	return false;
}

/* A container once it had a child: listed by the reaper after that child is gone. */
static void assert_container(const char *path)
{
	char kid[96];
	snprintf(kid, sizeof kid, "%s/kid", path);
	cr_assert_eq(t_create(kid, "", 0), ZK_OK, "%s", kid);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body(kid, -1)), ZK_OK);
	cr_assert(reapable(path), "%s is not a container", path);
}

Test(store_b2b, create_container_ignores_the_ephemeral_bit_and_keeps_sequential)
{
	t_session_create(0x77);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE_CONTAINER, t_create_body("/c0", "", 0)), ZK_OK);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE_CONTAINER, t_create_body("/c1", "", 1)), ZK_OK);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE_CONTAINER, t_create_body("/c3-", "", 3)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes name = jute_read_string(&r);
	cr_assert(jute_bytes_eq(name, "/c3-0000000002", 14), "sequential name %.*s", name.len, name.data);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE_CONTAINER, t_create_body("/c5", "", 5)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE_CONTAINER, t_create_body("/c6", "", 6)), ZK_BADARGUMENTS);
	cr_assert_eq(t_stat("/c1").ephemeral_owner, 0);
	cr_assert_eq(stats().ephemerals_count, 0, "flags 1 made an ephemeral");
	/* not owned by the session: closing it deletes nothing */
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	cr_assert(t_exists("/c1") && t_exists("/c3-0000000002"));
	assert_container("/c0");
	assert_container("/c1");
	assert_container("/c3-0000000002");
}

Test(store_b2b, create_container_inside_multi_follows_the_flags)
{
	/* ZooKeeper rebuilds multi sub-ops from their flags: flags 1 is an ephemeral */
	struct jute_writer *w = t_body();
	multi_header(w, ZK_OP_CREATE_CONTAINER);
	t_create_fields(w, "/m1", "", 1);
	multi_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(t_stat("/m1").ephemeral_owner, T_SESSION);
}

/* ---------------------------------------------------------------- 3. READ filter */

#define ALICE_ID "alice:ZnGSLALVZFSXqvnfMHHXCuUTz/8=" /* not checked: any digest-shaped id */

static const struct zk_id alice_ids[] = {
	{ { (const uint8_t *)"ip", 2 }, { (const uint8_t *)"127.0.0.1", 9 } },
	{ { (const uint8_t *)"digest", 6 }, { (const uint8_t *)ALICE_ID, (int32_t)sizeof ALICE_ID - 1 } },
};
static const struct zk_id bob_ids[] = {
	{ { (const uint8_t *)"ip", 2 }, { (const uint8_t *)"127.0.0.1", 9 } },
	{ { (const uint8_t *)"digest", 6 }, { (const uint8_t *)"bob:x", 5 } },
};
static const struct store_auth alice = { alice_ids, 2, false };
static const struct store_auth bob = { bob_ids, 2, false };
static const struct store_auth superuser = { bob_ids, 1, true };

/* Creates path with the ACL [perms, digest:alice] as alice. */
static void create_alice_only(const char *path, int32_t perms)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_buffer(w, "", 0);
	jute_write_int(w, 1);
	jute_write_int(w, perms);
	t_str(w, "digest");
	t_str(w, ALICE_ID);
	jute_write_int(w, 0);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_CREATE, w), ZK_OK);
}

Test(store_b2b, events_need_read_on_the_changed_node)
{
	cr_assert_eq(t_create("/n", "", 0), ZK_OK);
	/* 1 alice, 2 bob, 3 super, 4 anonymous: persistent watches on /n */
	cr_assert_eq(add_watch_as(1, &alice, "/n", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch_as(2, &bob, "/n", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch_as(3, &superuser, "/n", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	cr_assert_eq(add_watch_as(4, NULL, "/n", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	/* /n open: everyone hears */
	cr_assert_eq(set_data("/n", "1"), ZK_OK);
	cr_assert_eq(T.events_count, 4);
	/* /n readable by alice only (ACL without READ for anyone else) */
	struct jute_writer *w = t_body();
	t_str(w, "/n");
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_ALL);
	t_str(w, "digest");
	t_str(w, ALICE_ID);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_ACL, w), ZK_OK);
	cr_assert_eq(T.events_count, 4, "setACL fires nothing");
	T.events_count = 0;
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_DATA, t_set_body("/n", "2", -1)), ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_CREATE, t_create_body("/n/kid", "", 0)), ZK_OK);
	cr_assert_eq(events_for(1), 2); /* NodeDataChanged, NodeChildrenChanged */
	cr_assert_eq(events_for(3), 2, "super bypasses the ACL");
	cr_assert_eq(events_for(2), 0, "bob has no READ on /n");
	cr_assert_eq(events_for(4), 0, "anonymous has no READ on /n");
	/* a READ-less entry for alice filters her too */
	create_alice_only("/w", ZK_PERM_WRITE | ZK_PERM_ADMIN | ZK_PERM_DELETE);
	cr_assert_eq(add_watch_as(1, &alice, "/w", STORE_ADD_WATCH_PERSISTENT), ZK_OK);
	T.events_count = 0;
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_DATA, t_set_body("/w", "x", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 0);
}

Test(store_b2b, children_changed_uses_the_parent_acl_and_delete_the_deleted_node)
{
	/* parent open, child alice-only: NodeChildrenChanged (parent's ACL) reaches bob,
	 * NodeCreated / NodeDeleted of the child (child's ACL) do not */
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	cr_assert_eq(add_watch_as(2, &bob, "/p", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	cr_assert_eq(t_read_as(3, &bob, ZK_OP_GET_CHILDREN, t_path_watch_body("/p", true)), ZK_OK);
	cr_assert_eq(t_read_as(3, &bob, ZK_OP_EXISTS, t_path_watch_body("/p/c", true)), ZK_NONODE);
	create_alice_only("/p/c", ZK_PERM_ALL);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 3, ZK_EVENT_NODE_CHILDREN_CHANGED, "/p", T.zxid);
	/* the exist watch was consumed even though its event was filtered */
	cr_assert_eq(watches_op(3, ZK_OP_REMOVE_WATCHES, "/p/c", STORE_WATCHER_TYPE_DATA), ZK_NOWATCHER);
	cr_assert_eq(t_read_as(3, &bob, ZK_OP_GET_CHILDREN, t_path_watch_body("/p", true)), ZK_OK);
	T.events_count = 0;
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_DELETE, t_path_int_body("/p/c", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 1, "the deleted node's ACL filters NodeDeleted");
	t_assert_event(0, 3, ZK_EVENT_NODE_CHILDREN_CHANGED, "/p", T.zxid);
	/* once bob registers as alice too (addAuth), the next registration carries it */
	const struct zk_id both_ids[] = { bob_ids[0], bob_ids[1], alice_ids[1] };
	const struct store_auth both = { both_ids, 3, false };
	create_alice_only("/p/d", ZK_PERM_READ);
	cr_assert_eq(add_watch_as(2, &both, "/p", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK);
	T.events_count = 0;
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_DELETE, t_path_int_body("/p/d", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 2, ZK_EVENT_NODE_DELETED, "/p/d", T.zxid);
}

Test(store_b2b, set_watches_catch_up_events_are_not_filtered)
{
	create_alice_only("/s", ZK_PERM_ALL);
	struct jute_writer *w = t_body();
	jute_write_long(w, 0); /* relativeZxid 0: /s changed since */
	jute_write_int(w, 1);
	t_str(w, "/s");
	jute_write_int(w, 0);
	jute_write_int(w, 0);
	cr_assert_eq(store_set_watches_auth(T.s, 9, &bob, ZK_OP_SET_WATCHES, w->buf, w->len, t_on_event, &T), ZK_OK);
	cr_assert_eq(T.events_count, 1, "bob lacks READ on /s, the catch-up event goes all the same");
	t_assert_event(0, 9, ZK_EVENT_NODE_DATA_CHANGED, "/s", -1);
	T.events_count = 0;
	w = t_body();
	jute_write_long(w, 0);
	jute_write_int(w, 0);
	jute_write_int(w, 1);
	t_str(w, "/s");
	jute_write_int(w, 0);
	cr_assert_eq(store_set_watches_auth(T.s, 9, &bob, ZK_OP_SET_WATCHES, w->buf, w->len, t_on_event, &T), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 9, ZK_EVENT_NODE_CREATED, "/s", -1);
}

/* ---------------------------------------------------------------- 4. check/removeWatches */

Test(store_b2b, persistent_watches_as_zookeeper_3_8_0)
{
	/* test_b2b_persistent_watches, steps #2-#35 */
	cr_assert_eq(t_create("/r", "", 0), ZK_OK);
	cr_assert_eq(add_watch_as(1, NULL, "/r", STORE_ADD_WATCH_PERSISTENT), ZK_OK);           /* p */
	cr_assert_eq(add_watch_as(2, NULL, "/r", STORE_ADD_WATCH_PERSISTENT_RECURSIVE), ZK_OK); /* q */
	/* p adds standard watches: they replace the persistent modes */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/r", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/r", true)), ZK_OK);
	cr_assert_eq(set_data("/r", "3"), ZK_OK);
	cr_assert_eq(t_create("/r/z", "", 0), ZK_OK);
	cr_assert_eq(events_for(1), 2);
	cr_assert_eq(events_for(2), 2);
	/* only q's entries remain on /r, and any connection's entry answers a check */
	for (int type = 1; type <= 3; type++)
		cr_assert_eq(watches_op(1, ZK_OP_CHECK_WATCHES, "/r", type), ZK_OK, "type %d", type);
	for (int type = 4; type <= 5; type++) {
		cr_assert_eq(watches_op(1, ZK_OP_CHECK_WATCHES, "/r", type), ZK_MARSHALLINGERROR);
		cr_assert_eq(watches_op(2, ZK_OP_REMOVE_WATCHES, "/r", type), ZK_MARSHALLINGERROR);
	}
	cr_assert_eq(watches_op(1, ZK_OP_REMOVE_WATCHES, "/r", STORE_WATCHER_TYPE_ANY), ZK_NOWATCHER);
	T.events_count = 0;
	cr_assert_eq(set_data("/r", "4"), ZK_OK);
	cr_assert_eq(t_create("/r/after", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 2, "p heard after its watches were made one-shot");
	t_assert_event(0, 2, ZK_EVENT_NODE_DATA_CHANGED, "/r", T.zxid - 1);
	t_assert_event(1, 2, ZK_EVENT_NODE_CREATED, "/r/after", T.zxid);
	/* remove type 2 takes only q's data entry: creates go unheard, deletes still arrive */
	cr_assert_eq(watches_op(2, ZK_OP_REMOVE_WATCHES, "/r", STORE_WATCHER_TYPE_DATA), ZK_OK);
	T.events_count = 0;
	cr_assert_eq(t_create("/r/more", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 0);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/r/more", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 2, ZK_EVENT_NODE_DELETED, "/r/more", T.zxid);
}

/* ---------------------------------------------------------------- 5. RemoveRecursive limit */

Test(store_b2b, remove_recursive_limit_counts_the_root)
{
	cr_assert_eq(t_create("/single", "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/single", 0)), ZK_NOTEMPTY);
	cr_assert(t_exists("/single"));
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/single", 1)), ZK_OK);
	cr_assert(!t_exists("/single"));
	const char *tree[] = { "/t", "/t/a", "/t/a/b", "/t/c" };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(t_create(tree[i], "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/t", 2)), ZK_NOTEMPTY);
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/t", 3)), ZK_NOTEMPTY);
	cr_assert(t_exists("/t/a/b"));
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/t", 4)), ZK_OK);
	cr_assert(!t_exists("/t"));
}
