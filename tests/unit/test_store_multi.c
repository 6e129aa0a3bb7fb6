/*
 * test_store_multi.c — multi (14) atomicity and exact result bytes, multiRead (22),
 * ClickHouse extension ops.
 */
#include "store_test_util.h"

TestSuite(store_multi, .init = t_setup, .fini = t_teardown);


struct res {
	int32_t type;
	bool done;
	int32_t err;
};

static struct res read_res(struct jute_reader *r)
{
	struct res x;
	x.type = jute_read_int(r);
	x.done = jute_read_bool(r);
	x.err = jute_read_int(r);
	return x;
}

Test(store_multi, success_results_and_one_zxid)
{
	cr_assert_eq(t_create("/m", "", 0), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/m", true)), ZK_OK);
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/m/a", "1", 0);
	mh(w, ZK_OP_CREATE2);
	t_create_fields(w, "/m/s", "", ZK_CREATE_PERSISTENT_SEQUENTIAL);
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/m/a");
	jute_write_buffer(w, "22", 2);
	jute_write_int(w, 0);
	mh(w, ZK_OP_CHECK);
	t_str(w, "/m/a");
	jute_write_int(w, 1); /* sees the setData before it */
	mh(w, ZK_OP_DELETE);
	t_str(w, "/m/a");
	jute_write_int(w, 1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	int64_t z = T.zxid;
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct res x = read_res(&r);
	cr_assert(x.type == 1 && !x.done && x.err == 0);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "/m/a", 4));
	/* FINDINGS.md 2: a create2 sub-op answers as create (type 1, path only) */
	x = read_res(&r);
	cr_assert(x.type == 1 && x.err == 0, "create2 sub-result type %d", x.type);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "/m/s0000000001", 14));
	struct zk_stat st;
	x = read_res(&r);
	cr_assert(x.type == 5 && x.err == 0);
	jute_read_stat(&r, &st);
	cr_assert_eq(st.version, 1);
	cr_assert_eq(st.mzxid, z);
	x = read_res(&r);
	cr_assert(x.type == 13 && x.err == 0);
	x = read_res(&r);
	cr_assert(x.type == 2 && x.err == 0);
	x = read_res(&r);
	cr_assert(x.type == -1 && x.done && x.err == -1);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(jute_reader_remaining(&r), 0);
	cr_assert(!t_exists("/m/a"));
	cr_assert(t_exists("/m/s0000000001"));
	/* the one-shot child watch fired once, with the multi's zxid */
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 1, ZK_EVENT_NODE_CHILDREN_CHANGED, "/m", z);
	st = t_stat("/m");
	cr_assert_eq(st.cversion, 3); /* 2 creates + 1 delete */
	cr_assert_eq(st.num_children, 1);
	cr_assert_eq(st.pzxid, z);
	cr_assert_eq(t_create("/m/s", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/m/s0000000002");
}

/*
 * Container and TTL creates answer type 15 with path + Stat inside a multi (the
 * Stat hides the owner marker); create2 answers type 1 with the path only.
 */
Test(store_multi, create_result_types)
{
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE2);
	t_create_fields(w, "/c2", "ab", 0);
	mh(w, ZK_OP_CREATE_CONTAINER);
	t_create_fields(w, "/cont", "", ZK_CREATE_CONTAINER);
	mh(w, ZK_OP_CREATE_TTL);
	t_create_fields(w, "/ttl", "", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, 1000);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/plain", "", 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	int64_t z = T.zxid;
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct res x = read_res(&r);
	cr_assert(x.type == 1 && !x.done && x.err == 0, "create2 type %d", x.type);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "/c2", 3));
	const char *stat_paths[] = { "/cont", "/ttl" };
	for (int i = 0; i < 2; i++) {
		x = read_res(&r);
		cr_assert(x.type == 15 && !x.done && x.err == 0, "%s type %d", stat_paths[i], x.type);
		cr_assert(jute_bytes_eq(jute_read_string(&r), stat_paths[i], strlen(stat_paths[i])));
		struct zk_stat st;
		jute_read_stat(&r, &st);
		cr_assert_eq(st.czxid, z);
		cr_assert_eq(st.ephemeral_owner, 0);
	}
	x = read_res(&r);
	cr_assert(x.type == 1 && x.err == 0);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "/plain", 6));
	x = read_res(&r);
	cr_assert(x.type == -1 && x.done && x.err == -1);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(jute_reader_remaining(&r), 0);
	/* a top-level create2 still answers with the Stat */
	cr_assert_eq(t_apply(ZK_OP_CREATE2, t_create_body("/top", "", 0)), ZK_OK);
	cr_assert_eq(T.out.len, 4 + 4 + 68);
}

Test(store_multi, create_then_delete_in_one_multi_bumps_cversion_twice)
{
	cr_assert_eq(t_create("/cd", "", 0), ZK_OK);
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/cd/x", "", 0);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/cd/x");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	struct zk_stat st = t_stat("/cd");
	cr_assert_eq(st.cversion, 2);
	cr_assert_eq(st.num_children, 0);
	cr_assert_eq(t_create("/cd/s", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/cd/s0000000001");
	/* a rolled-back multi leaves both counters alone */
	w = t_body();
	mh(w, ZK_OP_DELETE);
	t_str(w, "/cd/s0000000001");
	jute_write_int(w, -1);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/cd/s", "", ZK_CREATE_PERSISTENT_SEQUENTIAL);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/nope");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	st = t_stat("/cd");
	cr_assert_eq(st.cversion, 3);
	cr_assert_eq(st.num_children, 1);
	cr_assert_eq(t_create("/cd/s", "", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	t_assert_reply_string("/cd/s0000000002");
}

Test(store_multi, failure_rolls_back_with_exact_bytes)
{
	cr_assert_eq(t_create("/f", "orig", 0), ZK_OK);
	cr_assert_eq(t_create("/f/x", "", 0), ZK_OK);
	struct zk_stat before = t_stat("/f");
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/f", true)), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_CHILDREN, t_path_watch_body("/f", true)), ZK_OK);
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/f/new", "", ZK_CREATE_PERSISTENT_SEQUENTIAL);
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/f");
	jute_write_buffer(w, "changed", 7);
	jute_write_int(w, -1);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/f/x");
	jute_write_int(w, -1);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/f/x"); /* already deleted by the op before: NONODE */
	jute_write_int(w, -1);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/g", "", 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	uint8_t expect[5 * 13 + 9];
	struct jute_writer e;
	jute_writer_init(&e, sizeof expect);
	int32_t errs[5] = { 0, 0, 0, ZK_NONODE, ZK_RUNTIMEINCONSISTENCY };
	for (int i = 0; i < 5; i++) {
		jute_write_int(&e, -1);
		jute_write_bool(&e, false);
		jute_write_int(&e, errs[i]);
		jute_write_int(&e, errs[i]);
	}
	mh_end(&e);
	cr_assert_eq(T.out.len, e.len);
	cr_assert_arr_eq(T.out.buf, e.buf, e.len);
	jute_writer_free(&e);
	/* nothing applied, nothing fired */
	cr_assert_eq(T.events_count, 0);
	cr_assert(t_exists("/f/x"));
	cr_assert(!t_exists("/g"));
	cr_assert(!t_exists("/f/new0000000001"));
	struct zk_stat after = t_stat("/f");
	cr_assert_eq(after.cversion, before.cversion);
	cr_assert_eq(after.pzxid, before.pzxid);
	cr_assert_eq(after.version, before.version);
	cr_assert_eq(after.mzxid, before.mzxid);
	cr_assert_eq(after.num_children, 1);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/f", false)), ZK_OK);
	cr_assert_eq(jute_get_be32(T.out.buf), 4u);
	cr_assert_eq(memcmp(T.out.buf + 4, "orig", 4), 0);
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.node_count, 6);
	cr_assert_eq(ss.watch_count, 2);
	/* the watches still work afterwards */
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/f", "z", -1)), ZK_OK);
	cr_assert_eq(T.events_count, 1);
}

Test(store_multi, empty_and_malformed)
{
	struct jute_writer *w = t_body();
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(T.out.len, 9);
	/* a read op inside a write multi */
	w = t_body();
	mh(w, ZK_OP_GET_DATA);
	t_str(w, "/");
	jute_write_bool(w, false);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_MARSHALLINGERROR);
	/* a good create followed by a truncated op: nothing applied */
	w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/mm", "", 0);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/mm");
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_MARSHALLINGERROR);
	cr_assert(!t_exists("/mm"));
	/* missing terminator */
	w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/mm", "", 0);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_MARSHALLINGERROR);
	cr_assert(!t_exists("/mm"));
}

Test(store_multi, create_delete_same_node_and_ephemeral_rollback)
{
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/eph", "", ZK_CREATE_EPHEMERAL);
	mh(w, ZK_OP_CHECK);
	t_str(w, "/nonexistent");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.ephemerals_count, 0);
	cr_assert(!t_exists("/eph"));
	w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/tmp", "", 0);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/tmp");
	jute_write_int(w, 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert(!t_exists("/tmp"));
	store_stats(T.s, &ss);
	cr_assert_eq(ss.node_count, 4);
}

Test(store_multi, multi_read_per_op_errors)
{
	cr_assert_eq(t_create("/r", "v", 0), ZK_OK);
	cr_assert_eq(t_create("/r/k", "", 0), ZK_OK);
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_GET_DATA);
	t_str(w, "/r");
	jute_write_bool(w, false);
	mh(w, ZK_OP_GET_CHILDREN);
	t_str(w, "/missing");
	jute_write_bool(w, true);
	mh(w, ZK_OP_GET_CHILDREN);
	t_str(w, "/r");
	jute_write_bool(w, true);
	mh_end(w);
	cr_assert_eq(t_read(4, ZK_OP_MULTI_READ, w), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct res x = read_res(&r);
	cr_assert(x.type == 4 && x.err == 0);
	cr_assert(jute_bytes_eq(jute_read_buffer(&r), "v", 1));
	struct zk_stat st;
	jute_read_stat(&r, &st);
	x = read_res(&r);
	cr_assert(x.type == -1 && x.err == ZK_NONODE);
	cr_assert_eq(jute_read_int(&r), ZK_NONODE);
	x = read_res(&r);
	cr_assert(x.type == 8 && x.err == 0);
	cr_assert_eq(jute_read_vector_count(&r, 4), 1);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "k", 1));
	x = read_res(&r);
	cr_assert(x.type == -1 && x.done && x.err == -1);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.watch_count, 0, "multiRead sub-ops register no watch (ZooKeeper 3.8)");
	/* a write op inside multiRead is malformed and registers nothing */
	w = t_body();
	mh(w, ZK_OP_GET_CHILDREN);
	t_str(w, "/");
	jute_write_bool(w, true);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/r");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_read(5, ZK_OP_MULTI_READ, w), ZK_MARSHALLINGERROR);
	store_stats(T.s, &ss);
	cr_assert_eq(ss.watch_count, 0);
}

Test(store_multi, clickhouse_extensions)
{
	cr_assert_eq(t_create("/ch", "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_CHECK_NOT_EXISTS, t_path_int_body("/ch", -1)), ZK_NODEEXISTS);
	cr_assert_eq(t_apply(ZK_OP_CHECK_NOT_EXISTS, t_path_int_body("/ch", 3)), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_CHECK_NOT_EXISTS, t_path_int_body("/none", -1)), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_CREATE_IF_NOT_EXISTS, t_create_body("/ch", "", 0)), ZK_OK);
	t_assert_reply_string("/ch");
	cr_assert_eq(t_apply(ZK_OP_CREATE_IF_NOT_EXISTS, t_create_body("/ch/n", "", 0)), ZK_OK);
	t_assert_reply_string("/ch/n");
	cr_assert_eq(t_apply(ZK_OP_CREATE_IF_NOT_EXISTS, t_create_body("/ch/s", "", 2)), ZK_BADARGUMENTS);
	cr_assert_eq(t_create("/ch/n/deep", "", 0), ZK_OK);
	cr_assert_eq(t_create("/ch/m", "", 0), ZK_OK);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/ch/n/deep", true)), ZK_OK);
	/* the limit counts the subtree's root too (ClickHouse Keeper): 4 nodes need 4 */
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/ch", 3)), ZK_NOTEMPTY);
	cr_assert(t_exists("/ch/n/deep"));
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/ch", 4)), ZK_OK);
	cr_assert(!t_exists("/ch"));
	cr_assert(!t_exists("/ch/n/deep"));
	cr_assert_eq(T.events_count, 1);
	t_assert_event(0, 1, ZK_EVENT_NODE_DELETED, "/ch/n/deep", T.zxid);
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/ch", 3)), ZK_OK);
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.node_count, 4);
}

Test(store_multi, ttl_and_container_owners)
{
	struct jute_writer *w = t_create_body("/ttl", "", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, 5000);
	cr_assert_eq(t_apply(ZK_OP_CREATE_TTL, w), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert(jute_bytes_eq(jute_read_string(&r), "/ttl", 4));
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(st.ephemeral_owner, 0); /* the TTL marker is hidden from clients */
	/* children of TTL nodes and containers are allowed */
	cr_assert_eq(t_create("/ttl/c", "", 0), ZK_OK);
	w = t_create_body("/ttl0", "", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, 0);
	cr_assert_eq(t_apply(ZK_OP_CREATE_TTL, w), ZK_BADARGUMENTS);
	w = t_create_body("/ttlbig", "", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, 1LL << 40);
	cr_assert_eq(t_apply(ZK_OP_CREATE_TTL, w), ZK_BADARGUMENTS);
	w = t_create_body("/ttlmode", "", 0);
	jute_write_long(w, 100);
	cr_assert_eq(t_apply(ZK_OP_CREATE_TTL, w), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_CREATE_CONTAINER, t_create_body("/cont", "", ZK_CREATE_CONTAINER)), ZK_OK);
	cr_assert_eq(T.out.len, 4 + 5 + 68);
	st = t_stat("/cont");
	cr_assert_eq(st.ephemeral_owner, 0); /* the container marker is hidden from clients */
	cr_assert_eq(t_create("/cont/c", "", 0), ZK_OK);
}

/* A rolled-back multi puts back values that lived in the node and ones that did not. */
Test(store_multi, rollback_restores_values_in_and_out_of_the_node)
{
	static char big[700];
	memset(big, 'B', sizeof big);
	struct jute_writer *c = t_body();
	t_str(c, "/b");
	jute_write_buffer(c, big, (int32_t)sizeof big);
	t_acl_open(c);
	jute_write_int(c, 0);
	cr_assert_eq(t_apply(ZK_OP_CREATE, c), ZK_OK);
	cr_assert_eq(t_create("/a", "small", 0), ZK_OK);
	/* /b's value goes out of its block, and comes back later */
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/b", "s", -1)), ZK_OK);
	struct store_stats before;
	store_stats(T.s, &before);
	for (int round = 0; round < 2; round++) {
		struct jute_writer *w = t_body();
		mh(w, ZK_OP_SET_DATA); /* /a grows out of its block */
		t_str(w, "/a");
		jute_write_buffer(w, big, (int32_t)sizeof big);
		jute_write_int(w, -1);
		mh(w, ZK_OP_SET_DATA); /* /b grows, then shrinks back */
		t_str(w, "/b");
		jute_write_buffer(w, big, round ? 600 : 10);
		jute_write_int(w, -1);
		mh(w, ZK_OP_SET_DATA);
		t_str(w, "/b");
		jute_write_buffer(w, NULL, -1);
		jute_write_int(w, -1);
		mh(w, ZK_OP_SET_DATA);
		t_str(w, "/a");
		jute_write_buffer(w, "tiny", 4);
		jute_write_int(w, -1);
		mh(w, ZK_OP_CHECK);
		t_str(w, "/nope");
		jute_write_int(w, -1);
		mh_end(w);
		cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
		cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/a", false)), ZK_OK);
		cr_assert_eq(jute_get_be32(T.out.buf), 5u);
		cr_assert_eq(memcmp(T.out.buf + 4, "small", 5), 0);
		cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/b", false)), ZK_OK);
		cr_assert_eq(jute_get_be32(T.out.buf), 1u);
		cr_assert_eq(T.out.buf[4], 's');
		cr_assert_eq(t_stat("/a").version, 0);
		cr_assert_eq(t_stat("/b").version, 1);
		struct store_stats after;
		store_stats(T.s, &after);
		cr_assert_eq(after.approximate_data_size, before.approximate_data_size);
	}
}
