/*
 * test_store.c — the store's basic ops: reply bytes, error order, Stat maintenance,
 * sequential names, ephemerals, path validation.
 */
#include "store_test_util.h"
#include "store/store_impl.h" /* STORE_SHARD_BUCKETS_MIN, struct znode */

TestSuite(store, .init = t_setup, .fini = t_teardown);

Test(store, system_nodes_exist_with_zero_zxids)
{
	struct zk_stat st = t_stat("/");
	cr_assert_eq(st.czxid, 0);
	cr_assert_eq(st.num_children, 1);
	/* ZooKeeper links system nodes without counting creates: 2 * 0 - numChildren */
	cr_assert_eq(st.cversion, -1);
	st = t_stat("/zookeeper");
	cr_assert_eq(st.num_children, 2);
	cr_assert_eq(st.cversion, -2);
	cr_assert(t_exists("/zookeeper/quota"));
	cr_assert(t_exists("/zookeeper/config"));
	for (int i = 0; i < 4; i++) {
		const char *p[] = { "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config" };
		cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body(p[i], -1)), ZK_BADARGUMENTS, "%s", p[i]);
	}
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.node_count, 4);
	cr_assert_eq(ss.session_count, 1);
}

Test(store, create_reply_and_stat)
{
	cr_assert_eq(t_create("/a", "hello", 0), ZK_OK);
	t_assert_reply_string("/a");
	int64_t z = T.zxid;
	struct zk_stat st = t_stat("/a");
	cr_assert_eq(st.czxid, z);
	cr_assert_eq(st.mzxid, z);
	cr_assert_eq(st.pzxid, z);
	cr_assert_eq(st.ctime, T.time_ms);
	cr_assert_eq(st.mtime, T.time_ms);
	cr_assert_eq(st.version, 0);
	cr_assert_eq(st.cversion, 0);
	cr_assert_eq(st.aversion, 0);
	cr_assert_eq(st.ephemeral_owner, 0);
	cr_assert_eq(st.data_length, 5);
	cr_assert_eq(st.num_children, 0);
	struct zk_stat root = t_stat("/");
	cr_assert_eq(root.cversion, 0); /* 2 * 1 create - 2 children (/zookeeper is not a create) */
	cr_assert_eq(root.pzxid, z);
	cr_assert_eq(root.num_children, 2);
	cr_assert_eq(root.mzxid, 0);
}

Test(store, create2_reply_has_path_and_stat)
{
	cr_assert_eq(t_apply(ZK_OP_CREATE2, t_create_body("/b", "", 0)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes p = jute_read_string(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(jute_reader_remaining(&r), 0);
	cr_assert(jute_bytes_eq(p, "/b", 2));
	cr_assert_eq(st.czxid, T.zxid);
	cr_assert_eq(st.data_length, 0);
	cr_assert_eq(T.out.len, 4 + 2 + 68);
}

Test(store, null_and_empty_data_stay_distinct)
{
	cr_assert_eq(t_create("/null", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/empty", "", 0), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/null", false)), ZK_OK);
	cr_assert_eq(T.out.len, 4 + 68);
	cr_assert_eq(jute_get_be32(T.out.buf), 0xffffffffu);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/empty", false)), ZK_OK);
	cr_assert_eq(T.out.len, 4 + 68);
	cr_assert_eq(jute_get_be32(T.out.buf), 0u);
}

Test(store, create_error_order)
{
	/* bad flags first */
	cr_assert_eq(t_create("/x", "", 7), ZK_BADARGUMENTS);
	cr_assert_eq(t_create("/x", "", -1), ZK_BADARGUMENTS);
	/* TTL mode through plain create */
	cr_assert_eq(t_create("/x", "", ZK_CREATE_PERSISTENT_WITH_TTL), ZK_BADARGUMENTS);
	/* no slash / NUL */
	cr_assert_eq(t_create("x", "", 0), ZK_BADARGUMENTS);
	struct jute_writer *w = t_body();
	jute_write_string(w, "/a\0b", 4);
	jute_write_buffer(w, NULL, -1);
	t_acl_open(w);
	jute_write_int(w, 0);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_BADARGUMENTS);
	/* INVALIDACL before the parent lookup */
	w = t_body();
	t_str(w, "/missing/child");
	jute_write_buffer(w, NULL, -1);
	jute_write_int(w, 0); /* empty ACL list */
	jute_write_int(w, 0);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_INVALIDACL);
	/* parent missing beats an invalid final path */
	cr_assert_eq(t_create("/missing/child", "", 0), ZK_NONODE);
	cr_assert_eq(t_create("/a//b", "", 0), ZK_NONODE);
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	cr_assert_eq(t_create("/a/.", "", 0), ZK_BADARGUMENTS);
	cr_assert_eq(t_create("/a/", "", 0), ZK_BADARGUMENTS);
	cr_assert_eq(t_create("/a", "", 0), ZK_NODEEXISTS);
	cr_assert_eq(t_create("/", "", 0), ZK_NODEEXISTS);
	/* ephemeral parent */
	cr_assert_eq(t_create("/e", "", ZK_CREATE_EPHEMERAL), ZK_OK);
	cr_assert_eq(t_create("/e/c", "", 0), ZK_NOCHILDRENFOREPHEMERALS);
	/* but an existing child of an ephemeral parent is NODEEXISTS first: can't exist. */
	/* malformed */
	w = t_body();
	t_str(w, "/short");
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_MARSHALLINGERROR);
	/* trailing bytes are ignored */
	w = t_create_body("/trail", "", 0);
	jute_write_int(w, 12345);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_OK);
	t_assert_reply_string("/trail");
}

Test(store, sequential_names_use_parent_cversion)
{
	cr_assert_eq(t_create("/folder", "", 0), ZK_OK);
	cr_assert_eq(t_create("/folder/a", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/folder/a0000000000");
	cr_assert_eq(t_create("/folder/a", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/folder/a0000000001");
	cr_assert_eq(t_create("/folder/", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/folder/0000000002");
	/* a delete bumps the visible cversion but not the sequence */
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/folder/a0000000000", -1)), ZK_OK);
	struct zk_stat st = t_stat("/folder");
	cr_assert_eq(st.cversion, 4); /* 2 * 3 creates - 2 children */
	cr_assert_eq(st.num_children, 2);
	cr_assert_eq(st.pzxid, T.zxid);
	cr_assert_eq(t_create("/folder/x-", "", ZK_CREATE_EPHEMERAL_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/folder/x-0000000003");
	cr_assert_eq(t_stat("/folder").cversion, 5);
}

/* FINDINGS.md 1 (kazoo test_parent_stat_follows_children, c_client.c "after delete"). */
Test(store, visible_cversion_counts_deletes)
{
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	cr_assert_eq(t_create("/p/a", "", 0), ZK_OK);
	cr_assert_eq(t_stat("/p").cversion, 1);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p/a", -1)), ZK_OK);
	struct zk_stat st = t_stat("/p");
	cr_assert_eq(st.cversion, 2);
	cr_assert_eq(st.num_children, 0);
	cr_assert_eq(t_create("/p/s", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/p/s0000000001");
	cr_assert_eq(t_create("/p/b", "", 0), ZK_OK);
	cr_assert_eq(t_create("/p/c", "", 0), ZK_OK);
	cr_assert_eq(t_stat("/p").cversion, 2 * 4 - 3);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p/b", -1)), ZK_OK);
	st = t_stat("/p");
	cr_assert_eq(st.cversion, 2 * 4 - 2);
	cr_assert_eq(st.num_children, 2);
	/* the same Stat through getData, getChildren2 and setData */
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN2, t_path_watch_body("/p", false)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 4), 2);
	jute_read_string(&r);
	jute_read_string(&r);
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(st.cversion, 6);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/p", "x", -1)), ZK_OK);
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_stat(&r, &st);
	cr_assert_eq(st.cversion, 6);
	cr_assert_eq(t_create("/p/t", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/p/t0000000004");
}

Test(store, close_session_deletes_bump_visible_cversion)
{
	t_session_create(0x77);
	cr_assert_eq(t_create("/q", "", 0), ZK_OK);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE, t_create_body("/q/e", "", ZK_CREATE_EPHEMERAL_SEQUENTIAL)),
		     ZK_OK);
	t_assert_reply_string("/q/e0000000000");
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CREATE, t_create_body("/q/f", "", ZK_CREATE_EPHEMERAL)), ZK_OK);
	cr_assert_eq(t_stat("/q").cversion, 2);
	cr_assert_eq(t_apply_as(0x77, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	int64_t z = T.zxid;
	struct zk_stat st = t_stat("/q");
	cr_assert_eq(st.num_children, 0);
	cr_assert_eq(st.cversion, 4);
	cr_assert_eq(st.pzxid, z);
	cr_assert_eq(t_create("/q/e", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/q/e0000000002");
}

/* ZooKeeper's getClientEphemeralOwner: containers and TTL nodes show owner 0. */
Test(store, container_and_ttl_owner_hidden_from_clients)
{
	cr_assert_eq(t_apply(ZK_OP_CREATE_CONTAINER, t_create_body("/cont", "", ZK_CREATE_CONTAINER)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_string(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(st.ephemeral_owner, 0);
	cr_assert_eq(t_stat("/cont").ephemeral_owner, 0);
	struct jute_writer *w = t_create_body("/ttl", "", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, 5000);
	cr_assert_eq(t_apply(ZK_OP_CREATE_TTL, w), ZK_OK);
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_string(&r);
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(st.ephemeral_owner, 0);
	cr_assert_eq(t_stat("/ttl").ephemeral_owner, 0);
	/* both may still have children (the marker is kept internally) */
	cr_assert_eq(t_create("/cont/c", "", 0), ZK_OK);
	cr_assert_eq(t_create("/ttl/c", "", 0), ZK_OK);
	/* a normal ephemeral still shows its session and refuses children */
	cr_assert_eq(t_create("/eph", "", ZK_CREATE_EPHEMERAL), ZK_OK);
	cr_assert_eq(t_stat("/eph").ephemeral_owner, T_SESSION);
	cr_assert_eq(t_create("/eph/c", "", 0), ZK_NOCHILDRENFOREPHEMERALS);
	/* getChildren2 shows the parent's Stat with owner 0 too */
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN2, t_path_watch_body("/cont", false)), ZK_OK);
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 4), 1);
	jute_read_string(&r);
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(st.ephemeral_owner, 0);
}

Test(store, delete_error_order)
{
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("nope", -1)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p/q", -1)), ZK_NONODE);
	cr_assert_eq(t_create("/p", "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p/q", -1)), ZK_NONODE);
	cr_assert_eq(t_create("/p/q", "", 0), ZK_OK);
	/* BADVERSION wins over NOTEMPTY */
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p", 5)), ZK_BADVERSION);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p", 0)), ZK_NOTEMPTY);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p/q", 0)), ZK_OK);
	cr_assert_eq(T.out.len, 0);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/p", -1)), ZK_OK);
	cr_assert(!t_exists("/p"));
}

Test(store, set_data_and_versions)
{
	cr_assert_eq(t_create("/s", "a", 0), ZK_OK);
	int64_t cz = T.zxid;
	T.time_ms += 1000;
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/s", "bcd", 0)), ZK_OK);
	cr_assert_eq(T.out.len, 68);
	struct jute_reader r;
	struct zk_stat st;
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_stat(&r, &st);
	cr_assert_eq(st.czxid, cz);
	cr_assert_eq(st.mzxid, T.zxid);
	cr_assert_eq(st.pzxid, cz);
	cr_assert_eq(st.version, 1);
	cr_assert_eq(st.data_length, 3);
	cr_assert_eq(st.mtime, T.time_ms);
	cr_assert_eq(st.ctime, T.time_ms - 1000);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/s", "x", 0)), ZK_BADVERSION);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/s", "x", -1)), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/nope", "x", -1)), ZK_NONODE);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/s/", "x", -1)), ZK_BADARGUMENTS);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/s", false)), ZK_OK);
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes d = jute_read_buffer(&r);
	jute_read_stat(&r, &st);
	cr_assert(jute_bytes_eq(d, "x", 1));
	cr_assert_eq(st.version, 2);
	cr_assert_eq(jute_reader_remaining(&r), 0);
}

Test(store, check_and_sync)
{
	cr_assert_eq(t_create("/c", "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_CHECK, t_path_int_body("/c", 0)), ZK_OK);
	cr_assert_eq(T.out.len, 0);
	cr_assert_eq(t_apply(ZK_OP_CHECK, t_path_int_body("/c", 1)), ZK_BADVERSION);
	cr_assert_eq(t_apply(ZK_OP_CHECK, t_path_int_body("/nope", -1)), ZK_NONODE);
	cr_assert_eq(t_apply(ZK_OP_CHECK, t_path_int_body("bad", -1)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_SYNC, t_path_body("/c")), ZK_OK);
	t_assert_reply_string("/c");
}

Test(store, unknown_session_is_expired)
{
	cr_assert_eq(t_apply_as(999, NULL, ZK_OP_CREATE, t_create_body("/z", "", 0)), ZK_SESSIONEXPIRED);
	cr_assert(!t_exists("/z"));
	cr_assert_eq(store_last_zxid(T.s), T.zxid);
}

Test(store, unknown_opcodes)
{
	cr_assert_eq(t_apply(77, t_path_body("/")), ZK_UNIMPLEMENTED);
	cr_assert_eq(t_read(0, 77, t_path_body("/")), ZK_UNIMPLEMENTED);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_body("/")), ZK_MARSHALLINGERROR);
}

Test(store, ephemerals_and_close_session)
{
	t_session_create(0x55);
	cr_assert_eq(t_create("/app", "", 0), ZK_OK);
	cr_assert_eq(t_apply_as(0x55, NULL, ZK_OP_CREATE, t_create_body("/app/e1", "", ZK_CREATE_EPHEMERAL)), ZK_OK);
	cr_assert_eq(t_apply_as(0x55, NULL, ZK_OP_CREATE, t_create_body("/e2", "", ZK_CREATE_EPHEMERAL)), ZK_OK);
	struct zk_stat st = t_stat("/app/e1");
	cr_assert_eq(st.ephemeral_owner, 0x55);
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.ephemerals_count, 2);

	/* getEphemerals for the owner */
	struct jute_writer out;
	jute_writer_init(&out, 4096);
	struct jute_writer *b = t_path_body("/app");
	cr_assert_eq(store_read(T.s, 0x55, 0, NULL, ZK_OP_GET_EPHEMERALS, b->buf, b->len, &out, NULL), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, out.buf, out.len);
	cr_assert_eq(jute_read_vector_count(&r, 4), 1);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "/app/e1", 7));
	jute_writer_reset(&out);
	b = t_path_body("/");
	cr_assert_eq(store_read(T.s, 0x55, 0, NULL, ZK_OP_GET_EPHEMERALS, b->buf, b->len, &out, NULL), ZK_OK);
	cr_assert_eq(jute_get_be32(out.buf), 2u);
	jute_writer_free(&out);

	/* watches on both, then the session closes */
	cr_assert_eq(t_read(7, ZK_OP_GET_DATA, t_path_watch_body("/app/e1", true)), ZK_OK);
	cr_assert_eq(t_read(7, ZK_OP_GET_CHILDREN, t_path_watch_body("/app", true)), ZK_OK);
	T.events_count = 0;
	cr_assert_eq(t_apply_as(0x55, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	cr_assert_eq(T.out.len, 0);
	cr_assert(!t_exists("/app/e1"));
	cr_assert(!t_exists("/e2"));
	cr_assert_eq(T.events_count, 2);
	bool saw_deleted = false, saw_children = false;
	for (int i = 0; i < 2; i++) {
		if (T.events[i].type == ZK_EVENT_NODE_DELETED && !strcmp(T.events[i].path, "/app/e1"))
			saw_deleted = true;
		if (T.events[i].type == ZK_EVENT_NODE_CHILDREN_CHANGED && !strcmp(T.events[i].path, "/app"))
			saw_children = true;
		cr_assert_eq(T.events[i].zxid, T.zxid);
	}
	cr_assert(saw_deleted && saw_children);
	cr_assert_eq(t_stat("/app").pzxid, T.zxid);
	store_stats(T.s, &ss);
	cr_assert_eq(ss.ephemerals_count, 0);
	cr_assert_eq(ss.session_count, 1);
	cr_assert(!store_session_get(T.s, 0x55, NULL, NULL));
	cr_assert_eq(t_apply_as(0x55, NULL, ZK_OP_CREATE, t_create_body("/z", "", 0)), ZK_SESSIONEXPIRED);
}

struct expired_acc {
	int n;
	int64_t id;
};

static void expired_cb(void *ctx, int64_t id)
{
	struct expired_acc *a = ctx;
	a->n++;
	a->id = id;
}

Test(store, sessions_get_touch_expire)
{
	int32_t to;
	uint8_t pw[16];
	cr_assert(store_session_get(T.s, T_SESSION, &to, pw));
	cr_assert_eq(to, 30000);
	cr_assert_eq(pw[0], 7);
	cr_assert_eq(pw[15], 7);
	cr_assert(!store_session_get(T.s, 4242, &to, pw));
	store_session_touch(T.s, T_SESSION, 1000, 500);
	struct expired_acc acc = { 0, 0 };
	store_sessions_expired(T.s, 1500, 0, expired_cb, &acc);
	cr_assert_eq(acc.n, 0); /* 1000 + 500 is not < 1500 */
	store_sessions_expired(T.s, 1501, 0, expired_cb, &acc);
	cr_assert_eq(acc.n, 1);
	cr_assert_eq(acc.id, T_SESSION);
	/* a leader since 1200 gives it until 1700, whatever its last touch */
	acc.n = 0;
	store_sessions_expired(T.s, 1700, 1200, expired_cb, &acc);
	cr_assert_eq(acc.n, 0);
	store_sessions_expired(T.s, 1701, 1200, expired_cb, &acc);
	cr_assert_eq(acc.n, 1);
	store_session_touch(T.s, T_SESSION, 2000, 500);
	acc.n = 0;
	store_sessions_expired(T.s, 1501, 0, expired_cb, &acc);
	cr_assert_eq(acc.n, 0);
}

/* getData of path must answer exactly data[0..len) (len -1: null) with dataLength. */
static void assert_value(const char *path, const char *data, int32_t len)
{
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body(path, false)), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes d = jute_read_buffer(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(d.len, len, "%s: length %d, want %d", path, d.len, len);
	if (len > 0)
		cr_assert_eq(memcmp(d.data, data, (size_t)len), 0, "%s: other bytes", path);
	cr_assert_eq(st.data_length, len > 0 ? len : 0);
}

/*
 * A value lives in its node's block while it fits there and in a block of its own
 * once a setData makes it larger, until a later one fits again (store_impl.h): every
 * size reads back, and the data size counter follows.
 */
Test(store, values_move_in_and_out_of_the_node)
{
	static char big[5000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 23);
	static const int32_t sizes[] = { 4, 0, 1, 16, 4999, 2, -1, 300, 301, 5000, 0, 7, 8, 9, 100, 4000, 3 };
	struct store_stats ss;
	store_stats(T.s, &ss);
	uint64_t base = ss.approximate_data_size;
	cr_assert_eq(t_apply(ZK_OP_CREATE, t_create_body("/v", "abcd", 0)), ZK_OK);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		int32_t len = sizes[i];
		struct jute_writer *w = t_body();
		t_str(w, "/v");
		jute_write_buffer(w, len < 0 ? NULL : big, len);
		jute_write_int(w, -1);
		cr_assert_eq(t_apply(ZK_OP_SET_DATA, w), ZK_OK);
		assert_value("/v", big, len);
		store_stats(T.s, &ss);
		cr_assert_eq(ss.approximate_data_size, base + 2 + (uint64_t)(len > 0 ? len : 0));
	}
	/* a node whose value lives elsewhere frees it with itself */
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/v", -1)), ZK_OK);
	store_stats(T.s, &ss);
	cr_assert_eq(ss.approximate_data_size, base);
}

/* Frees the request bodies made so far (the pool holds T_BODIES_MAX). */
static void bodies_reset(void)
{
	for (int i = 0; i < t_bodies_count; i++)
		jute_writer_free(&t_bodies[i]);
	t_bodies_count = 0;
}

/* Creates (or deletes) prefix + i for i in [from, to), bodies freed as they go. */
static void create_numbered(const char *prefix, int from, int to)
{
	char path[64];
	for (int i = from; i < to; i++) {
		snprintf(path, sizeof path, "%s%d", prefix, i);
		cr_assert_eq(t_create(path, NULL, 0), ZK_OK, "%s", path);
		if (i % 500 == 0)
			bodies_reset();
	}
}

static void delete_numbered(const char *prefix, int from, int to)
{
	char path[64];
	for (int i = from; i < to; i++) {
		snprintf(path, sizeof path, "%s%d", prefix, i);
		cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body(path, -1)), ZK_OK, "%s", path);
		if (i % 500 == 0)
			bodies_reset();
	}
}

/* A parent that lost most of its children gives the array's memory back. */
Test(store, children_array_shrinks_after_deletes)
{
	cr_assert_eq(t_create("/p", NULL, 0), ZK_OK);
	struct store_memory before, full, after;
	store_memory_get(T.s, &before);
	create_numbered("/p/c", 0, 4000);
	store_memory_get(T.s, &full);
	cr_assert_geq(full.dirs, before.dirs + 4000 * sizeof(uint32_t));
	delete_numbered("/p/c", 10, 4000);
	store_memory_get(T.s, &after);
	cr_assert_lt(after.dirs, before.dirs + 4096, "dirs: %llu before, %llu after",
		     (unsigned long long)before.dirs, (unsigned long long)after.dirs);
	cr_assert_eq(t_stat("/p").num_children, 10);
	cr_assert_eq(t_create("/p/again", NULL, 0), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN, t_path_watch_body("/p", false)), ZK_OK);
	cr_assert_eq(jute_get_be32(T.out.buf), 11u);
}

/* A subtree's delete gives the path hash's buckets back; lookups still find the rest,
 * and the table grows again with the next fill. */
Test(store, hash_buckets_shrink_after_deletes)
{
	char path[32];
	cr_assert_eq(t_create("/p", NULL, 0), ZK_OK);
	struct store_memory before, full, after, refilled;
	store_memory_get(T.s, &before);
	cr_assert_eq(before.buckets, STORE_SHARDS * STORE_SHARD_BUCKETS_MIN * sizeof(uint32_t));
	create_numbered("/p/c", 0, 20000);
	store_memory_get(T.s, &full);
	cr_assert_geq(full.buckets, 20000 * sizeof(uint32_t));
	delete_numbered("/p/c", 10, 20000);
	store_memory_get(T.s, &after);
	cr_assert_eq(after.buckets, before.buckets, "buckets: %llu before, %llu full, %llu after",
		     (unsigned long long)before.buckets, (unsigned long long)full.buckets,
		     (unsigned long long)after.buckets);
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof path, "/p/c%d", i);
		cr_assert(t_exists(path), "%s", path);
	}
	cr_assert(!t_exists("/p/c10"));
	cr_assert(t_exists("/zookeeper/quota"));
	create_numbered("/p/d", 0, 20000);
	store_memory_get(T.s, &refilled);
	cr_assert_eq(refilled.buckets, full.buckets);
	cr_assert_eq(t_stat("/p").num_children, 20010);
}
