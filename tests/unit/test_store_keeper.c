/*
 * test_store_keeper.c — ClickHouse Keeper compatibility: the /keeper system nodes
 * (store_config.keeper_api), CheckStat (504) and TryRemove (505), at top level and
 * inside multi.
 */
#include "store_test_util.h"

static void keeper_setup(void)
{
	t_setup();
	store_destroy(T.s);
	struct store_config cfg = { .config_text = "", .keeper_api = true };
	T.s = store_create(&cfg);
	cr_assert_not_null(T.s);
	t_session_create(T_SESSION);
	T.events_count = 0;
}

TestSuite(store_keeper, .init = keeper_setup, .fini = t_teardown);
TestSuite(store_keeper_off, .init = t_setup, .fini = t_teardown);


/* Reads the reply of a getData: the data bytes (asserting the Stat follows). */
static struct jute_bytes reply_data(void)
{
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes b = jute_read_buffer(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	return b;
}

static bool children_contain(const char *name)
{
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	int32_t count = jute_read_vector_count(&r, 4);
	bool found = false;
	for (int32_t i = 0; i < count; i++) {
		struct jute_bytes b = jute_read_string(&r);
		found |= jute_bytes_eq(b, name, strlen(name));
	}
	cr_assert(jute_reader_ok(&r));
	return found;
}

static const struct zk_id digest_id = { { (const uint8_t *)"digest", 6 }, { (const uint8_t *)"bob:x", 5 } };

Test(store_keeper, system_nodes_readable_by_anyone)
{
	struct store_auth bob = { .ids = &digest_id, .ids_count = 1 };
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_GET_DATA, t_path_watch_body("/keeper/api_version", false)), ZK_OK);
	struct jute_bytes v = reply_data();
	cr_assert(jute_bytes_eq(v, "3", 1), "api_version '%.*s'", v.len, v.data);
	cr_assert_eq(t_read_as(0, NULL, ZK_OP_GET_DATA, t_path_watch_body("/keeper/feature_flags", false)), ZK_OK);
	struct jute_bytes f = reply_data();
	cr_assert_eq(f.len, 2);
	/* flag n is bit 7 - n % 8 of byte n / 8; 5 MULTI_WATCHES and 8 CREATE_WITH_STATS clear */
	cr_assert_eq(f.data[0], 0xFB); /* flags 0-4, 6, 7; not 5 MULTI_WATCHES */
	cr_assert_eq(f.data[1], 0x60); /* 9 TRY_REMOVE, 10 LIST_WITH_STAT_AND_DATA */
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_GET_DATA, t_path_watch_body("/keeper", false)), ZK_OK);
	cr_assert_eq(reply_data().len, 0);
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_GET_ACL, t_path_body("/keeper/feature_flags")), ZK_OK);
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN, t_path_watch_body("/", false)), ZK_OK);
	cr_assert(children_contain("keeper") && children_contain("zookeeper"));
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN2, t_path_watch_body("/keeper", false)), ZK_OK);
	cr_assert(children_contain("api_version") && children_contain("feature_flags"));
	struct store_stats st;
	store_stats(T.s, &st);
	cr_assert_eq(st.node_count, 7);
}

Test(store_keeper, writes_to_system_subtree_are_badarguments)
{
	cr_assert_eq(t_create("/keeper/x", "", 0), ZK_BADARGUMENTS);
	cr_assert_eq(t_create("/keeper", "", 0), ZK_BADARGUMENTS); /* not NODEEXISTS */
	cr_assert_eq(t_create("/keeper/x", "", ZK_CREATE_EPHEMERAL_SEQUENTIAL), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_CREATE_IF_NOT_EXISTS, t_create_body("/keeper/api_version", "", 0)),
		     ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/keeper/api_version", -1)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/keeper/api_version", -1)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_REMOVE_RECURSIVE, t_path_int_body("/keeper", 100)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/keeper/feature_flags", "x", -1)), ZK_BADARGUMENTS);
	struct jute_writer *w = t_body();
	t_str(w, "/keeper");
	t_acl_open(w);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_SET_ACL, w), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply_as(0, NULL, ZK_OP_DELETE_CONTAINER, t_path_body("/keeper")), ZK_BADARGUMENTS);
	/* Inside a multi: the sub-op fails, the rest rolls back. */
	w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/ok", "", 0);
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/keeper/api_version");
	jute_write_buffer(w, "9", 1);
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_int(&r);
	jute_read_bool(&r);
	cr_assert_eq(jute_read_int(&r), ZK_OK);
	jute_read_int(&r);
	jute_read_int(&r);
	jute_read_bool(&r);
	cr_assert_eq(jute_read_int(&r), ZK_BADARGUMENTS);
	cr_assert(!t_exists("/ok"));
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/keeper/api_version", false)), ZK_OK);
	cr_assert(jute_bytes_eq(reply_data(), "3", 1));
	/* Only the subtree is reserved. */
	cr_assert_eq(t_create("/keeperx", "", 0), ZK_OK);
	cr_assert_eq(t_create("/keeperx/keeper", "", 0), ZK_OK);
	cr_assert_eq(T.events_count, 0);
}

Test(store_keeper_off, system_nodes_absent_when_disabled)
{
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/keeper/feature_flags", false)), ZK_NONODE);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/keeper/api_version", false)), ZK_NONODE);
	cr_assert_eq(t_read(0, ZK_OP_GET_CHILDREN, t_path_watch_body("/", false)), ZK_OK);
	cr_assert(!children_contain("keeper"));
	/* An ordinary path then. */
	cr_assert_eq(t_create("/keeper", "", 0), ZK_OK);
	cr_assert_eq(t_create("/keeper/x", "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/keeper/x", -1)), ZK_OK);
}

/* ---------------------------------------------------------------- CheckStat */

static struct jute_writer *check_stat_body(const char *path, int32_t version, const struct zk_stat *st)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_int(w, version);
	jute_write_stat(w, st);
	return w;
}

static const struct zk_stat any_stat = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };

Test(store_keeper, check_stat_fields_and_wildcards)
{
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/a", "new-data!", 0)), ZK_OK);
	struct zk_stat node = t_stat("/a");
	struct zk_stat want = any_stat;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", 1, &want)), ZK_OK);
	cr_assert_eq(T.out.len, 0);
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", -1, &want)), ZK_OK);
	want.version = 1;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", 1, &want)), ZK_OK);
	want.mzxid = node.mzxid;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", 1, &want)), ZK_OK);
	want.mzxid = node.mzxid + 1;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", 1, &want)), ZK_BADVERSION);
	want.mzxid = node.mzxid;
	want.version = 2;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", 1, &want)), ZK_BADVERSION);
	/* The request's own version field is checked like check (13). */
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", 0, &any_stat)), ZK_BADVERSION);
	/* Every field takes part. */
	want = node;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", -1, &want)), ZK_OK);
	want.data_length++;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", -1, &want)), ZK_BADVERSION);
	want = node;
	want.pzxid++;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", -1, &want)), ZK_BADVERSION);
	want = node;
	want.num_children = 1;
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/a", -1, &want)), ZK_BADVERSION);
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, check_stat_body("/missing", -1, &any_stat)), ZK_NONODE);
	/* A short body (no Stat). */
	cr_assert_eq(t_apply(STORE_OP_CHECK_STAT, t_path_int_body("/a", -1)), ZK_MARSHALLINGERROR);
}

Test(store_keeper, check_stat_in_multi_guards_the_write)
{
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	struct zk_stat want = any_stat;
	want.version = 5; /* wrong */
	struct jute_writer *w = t_body();
	mh(w, STORE_OP_CHECK_STAT);
	t_str(w, "/a");
	jute_write_int(w, -1);
	jute_write_stat(w, &want);
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/a");
	jute_write_buffer(w, "x", 1);
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_int(&r), ZK_OP_ERROR);
	jute_read_bool(&r);
	cr_assert_eq(jute_read_int(&r), ZK_BADVERSION);
	cr_assert_eq(t_stat("/a").version, 0);

	want.version = 0;
	w = t_body();
	mh(w, STORE_OP_CHECK_STAT);
	t_str(w, "/a");
	jute_write_int(w, -1);
	jute_write_stat(w, &want);
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/a");
	jute_write_buffer(w, "x", 1);
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_int(&r), STORE_OP_CHECK_STAT);
	jute_read_bool(&r);
	cr_assert_eq(jute_read_int(&r), ZK_OK);
	cr_assert_eq(jute_read_int(&r), ZK_OP_SET_DATA); /* no body for the check */
	cr_assert_eq(t_stat("/a").version, 1);
}

/* ---------------------------------------------------------------- TryRemove */

Test(store_keeper, try_remove_outcomes)
{
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/missing", -1)), ZK_OK);
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/no/parent", -1)), ZK_OK);
	cr_assert_eq(T.out.len, 0);
	cr_assert_eq(t_create("/a", "", 0), ZK_OK);
	cr_assert_eq(t_create("/a/b", "", 0), ZK_OK);
	int64_t pzxid = t_stat("/").pzxid;
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/a", -1)), ZK_OK); /* not empty */
	cr_assert(t_exists("/a"));
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/a/b", 7)), ZK_OK); /* bad version */
	cr_assert(t_exists("/a/b"));
	cr_assert_eq(t_stat("/").pzxid, pzxid);
	cr_assert_eq(T.events_count, 0);
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a/b", true)), ZK_OK);
	cr_assert_eq(t_read(2, ZK_OP_GET_CHILDREN, t_path_watch_body("/a", true)), ZK_OK);
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/a/b", 0)), ZK_OK);
	cr_assert(!t_exists("/a/b"));
	cr_assert_eq(T.events_count, 2);
	t_assert_event(0, 1, ZK_EVENT_NODE_DELETED, "/a/b", T.zxid);
	t_assert_event(1, 2, ZK_EVENT_NODE_CHILDREN_CHANGED, "/a", T.zxid);
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/zookeeper", -1)), ZK_BADARGUMENTS);
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_body()), ZK_MARSHALLINGERROR);
}

Test(store_keeper, try_remove_keeps_noauth)
{
	/* Parent grants world READ|CREATE only: no DELETE of its children. */
	struct jute_writer *w = t_body();
	t_str(w, "/locked");
	jute_write_buffer(w, NULL, -1);
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_READ | ZK_PERM_CREATE);
	t_str(w, "world");
	t_str(w, "anyone");
	jute_write_int(w, 0);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_OK);
	cr_assert_eq(t_create("/locked/c", "", 0), ZK_OK);
	cr_assert_eq(t_apply(STORE_OP_TRY_REMOVE, t_path_int_body("/locked/c", -1)), ZK_NOAUTH);
	cr_assert(t_exists("/locked/c"));
}

Test(store_keeper, try_remove_in_multi_as_clickhouse)
{
	/* ClickHouse's TestTryRemove: tryRemove(A) with a child is OK, then B and A go. */
	cr_assert_eq(t_create("/s2", "", 0), ZK_OK);
	cr_assert_eq(t_create("/s2/A", "", 0), ZK_OK);
	cr_assert_eq(t_create("/s2/A/B", "", 0), ZK_OK);
	struct jute_writer *w = t_body();
	mh(w, STORE_OP_TRY_REMOVE);
	t_str(w, "/s2/A");
	jute_write_int(w, -1);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/s2/A/B");
	jute_write_int(w, -1);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/s2/A");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	int32_t types[3] = { STORE_OP_TRY_REMOVE, ZK_OP_DELETE, ZK_OP_DELETE };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(jute_read_int(&r), types[i]);
		cr_assert_eq(jute_read_bool(&r), false);
		cr_assert_eq(jute_read_int(&r), ZK_OK);
	}
	cr_assert_eq(jute_read_int(&r), -1);
	cr_assert(!t_exists("/s2/A") && !t_exists("/s2/A/B"));
}
