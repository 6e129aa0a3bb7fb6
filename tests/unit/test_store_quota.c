/*
 * test_store_quota.c — ZooKeeper 3.8.0 quotas: the zookeeper_stats text the store
 * keeps, nearest-root selection, multi rollback, soft and hard limits.
 * The expected texts were checked against ZooKeeper 3.8.0 (tests/integration/test_quota.py).
 */
#include "store_test_util.h"

TestSuite(store_quota, .init = t_setup, .fini = t_teardown);

/* zkCli's setquota limits text for (count soft, bytes soft, count hard, bytes hard). */
static const char *limits_text(char *buf, size_t cap, long n, long b, long N, long B)
{
	snprintf(buf, cap, "count=%ld,bytes=%ld=;byteHardLimit=%ld;countHardLimit=%ld", n, b, B, N);
	return buf;
}

/* Creates /zookeeper/quota<path> and its parents, then the limits and stats nodes, as zkCli. */
static void set_quota(const char *path, const char *limits)
{
	char q[512];
	snprintf(q, sizeof q, "/zookeeper/quota");
	const char *p = path;
	while (*p) {
		const char *next = strchr(p + 1, '/');
		size_t n = next ? (size_t)(next - p) : strlen(p);
		strncat(q, p, n);
		if (!t_exists(q))
			cr_assert_eq(t_create(q, NULL, 0), ZK_OK, "%s", q);
		p += n;
	}
	char node[600];
	snprintf(node, sizeof node, "%s/zookeeper_limits", q);
	cr_assert_eq(t_create(node, limits, 0), ZK_OK);
	snprintf(node, sizeof node, "%s/zookeeper_stats", q);
	cr_assert_eq(t_create(node, "count=0,bytes=0", 0), ZK_OK);
}

static const char *data_of(const char *path)
{
	static char buf[1024];
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body(path, false)), ZK_OK, "no node %s", path);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	struct jute_bytes b = jute_read_buffer(&r);
	cr_assert(jute_reader_ok(&r));
	cr_assert_lt(b.len, (int32_t)sizeof buf);
	if (b.len > 0)
		memcpy(buf, b.data, (size_t)b.len);
	buf[b.len > 0 ? b.len : 0] = '\0';
	return buf;
}

static void assert_stats(const char *path, const char *want)
{
	char node[600];
	snprintf(node, sizeof node, "/zookeeper/quota%s/zookeeper_stats", path);
	cr_assert_str_eq(data_of(node), want, "stats of %s", path);
}

static int32_t set_data(const char *path, const char *data, int32_t version)
{
	return t_apply(ZK_OP_SET_DATA, t_set_body(path, data, version));
}

static int32_t delete_node(const char *path)
{
	return t_apply(ZK_OP_DELETE, t_path_int_body(path, -1));
}

static uint64_t exceeded_count(void)
{
	struct store_stats st;
	store_stats(T.s, &st);
	return st.quota_exceeded_count;
}

static uint64_t data_size(void)
{
	struct store_stats st;
	store_stats(T.s, &st);
	return st.approximate_data_size;
}

/* Recreates the store with enforce_quota on. */
static void enforce_on(void)
{
	store_destroy(T.s);
	struct store_config cfg = { .config_text = "", .enforce_quota = true };
	T.s = store_create(&cfg);
	cr_assert_not_null(T.s);
	T.zxid = 0;
	t_session_create(T_SESSION);
}


/* Error of multi sub-op i (reply: header, then ErrorResponse for failures). */
static int32_t multi_err(int i)
{
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	for (int k = 0;; k++) {
		int32_t type = jute_read_int(&r);
		bool done = jute_read_bool(&r);
		int32_t err = jute_read_int(&r);
		cr_assert(jute_reader_ok(&r) && !done, "no sub-op %d", i);
		if (k == i)
			return type == ZK_OP_ERROR ? err : ZK_OK;
		if (type == ZK_OP_ERROR)
			jute_read_int(&r);
		else if (type == ZK_OP_CREATE)
			jute_read_string(&r);
		else if (type == ZK_OP_SET_DATA) {
			struct zk_stat st;
			jute_read_stat(&r, &st);
		}
	}
}

Test(store_quota, stats_init_counts_the_subtree)
{
	char lim[128];
	cr_assert_eq(t_create("/q", "ab", 0), ZK_OK);
	cr_assert_eq(t_create("/q/a", "xyz", 0), ZK_OK);
	cr_assert_eq(t_create("/q/a/b", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, 10, -1, -1, -1));
	assert_stats("/q", "count=3,bytes=5");
	/* The limits text stays as the client wrote it. */
	cr_assert_str_eq(data_of("/zookeeper/quota/q/zookeeper_limits"),
			 "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
	/* A quota on a missing path starts at 0, 0 (zkCli refuses; the server does not). */
	set_quota("/missing", limits_text(lim, sizeof lim, 1, -1, -1, -1));
	assert_stats("/missing", "count=0,bytes=0");
}

Test(store_quota, stats_follow_create_delete_set_data)
{
	char lim[128];
	cr_assert_eq(t_create("/q", "ab", 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, -1, -1, -1, -1));
	assert_stats("/q", "count=1,bytes=2");
	uint64_t size_before = data_size();
	cr_assert_eq(t_create("/q/a", "12345", 0), ZK_OK);
	assert_stats("/q", "count=2,bytes=7");
	cr_assert_eq(t_create("/q/a/s-", "x", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	assert_stats("/q", "count=3,bytes=8");
	cr_assert_eq(set_data("/q/a", "1", -1), ZK_OK);
	assert_stats("/q", "count=3,bytes=4");
	cr_assert_eq(set_data("/q/a", NULL, -1), ZK_OK); /* null data counts 0 bytes */
	assert_stats("/q", "count=3,bytes=3");
	cr_assert_eq(delete_node("/q/a/s-0000000000"), ZK_OK);
	assert_stats("/q", "count=2,bytes=2");
	cr_assert_eq(delete_node("/q/a"), ZK_OK);
	assert_stats("/q", "count=1,bytes=2");
	/* The root itself counts too. */
	cr_assert_eq(delete_node("/q"), ZK_OK);
	assert_stats("/q", "count=0,bytes=0");
	/* Changes elsewhere do not touch it; "/qq" is not under "/q". */
	cr_assert_eq(t_create("/qq", "zz", 0), ZK_OK);
	assert_stats("/q", "count=0,bytes=0");
	/* Server rewrites keep the stats node's version (ZooKeeper assigns the data directly). */
	struct zk_stat st = t_stat("/zookeeper/quota/q/zookeeper_stats");
	cr_assert_eq(st.version, 0);
	cr_assert_eq(st.data_length, (int32_t)strlen("count=0,bytes=0"));
	/* approximate_data_size: +"/qq" "zz", -"/q" "ab"; the stats text kept its length. */
	cr_assert_eq(data_size(), size_before + (3 + 2) - (2 + 2));
}

Test(store_quota, ephemerals_closed_with_the_session)
{
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, -1, -1, -1, -1));
	t_session_create(0x99);
	cr_assert_eq(t_apply_as(0x99, NULL, ZK_OP_CREATE, t_create_body("/q/e1", "abc", ZK_CREATE_EPHEMERAL)), ZK_OK);
	cr_assert_eq(t_apply_as(0x99, NULL, ZK_OP_CREATE, t_create_body("/q/e2", "de", ZK_CREATE_EPHEMERAL)), ZK_OK);
	assert_stats("/q", "count=3,bytes=5");
	cr_assert_eq(t_apply_as(0x99, NULL, ZK_OP_CLOSE_SESSION, t_body()), ZK_OK);
	assert_stats("/q", "count=1,bytes=0");
}

Test(store_quota, nearest_root_wins)
{
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/q/r", "r", 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, -1, -1, -1, -1));
	set_quota("/q/r", limits_text(lim, sizeof lim, -1, -1, -1, -1));
	assert_stats("/q", "count=2,bytes=1");
	assert_stats("/q/r", "count=1,bytes=1");
	cr_assert_eq(t_create("/q/r/x", "xx", 0), ZK_OK);
	assert_stats("/q", "count=2,bytes=1"); /* only the nearest root counts it */
	assert_stats("/q/r", "count=2,bytes=3");
	cr_assert_eq(t_create("/q/y", "yyy", 0), ZK_OK);
	assert_stats("/q", "count=3,bytes=4");
	assert_stats("/q/r", "count=2,bytes=3");
	/* Deleting the inner limits node makes /q the nearest root again. */
	cr_assert_eq(delete_node("/zookeeper/quota/q/r/zookeeper_limits"), ZK_OK);
	cr_assert_eq(t_create("/q/r/z", "z", 0), ZK_OK);
	assert_stats("/q", "count=4,bytes=5");
	assert_stats("/q/r", "count=2,bytes=3");
}

Test(store_quota, stats_without_limits_are_left_alone)
{
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/q", NULL, 0), ZK_OK);
	/* Creating the stats node computes it even without a limits node... */
	cr_assert_eq(t_create("/q/a", "aa", 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/q/zookeeper_stats", "whatever", 0), ZK_OK);
	assert_stats("/q", "count=2,bytes=2");
	/* ...but only a limits node makes /q a root that later changes update. */
	cr_assert_eq(t_create("/q/b", "b", 0), ZK_OK);
	assert_stats("/q", "count=2,bytes=2");
	cr_assert_eq(t_create("/zookeeper/quota/q/zookeeper_limits", "count=1", 0), ZK_OK);
	cr_assert_eq(t_create("/q/c", "c", 0), ZK_OK);
	assert_stats("/q", "count=3,bytes=3");
}

Test(store_quota, multi_updates_and_rollback)
{
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, -1, -1, -1, -1));
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/a", "1234", 0);
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/q/a");
	jute_write_buffer(w, "12", 2);
	jute_write_int(w, -1);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/b", "b", 0);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/q/b");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(multi_err(3), ZK_OK);
	assert_stats("/q", "count=2,bytes=2");

	/* A failing multi leaves the stats, the roots and the data size as they were. */
	uint64_t size_before = data_size();
	w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/c", "cc", 0);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/zookeeper/quota/q/zookeeper_limits");
	jute_write_int(w, -1);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/zookeeper/quota/q/a", NULL, 0);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/zookeeper/quota/q/a/zookeeper_limits", "count=1", 0);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/zookeeper/quota/q/a/zookeeper_stats", "", 0);
	mh(w, ZK_OP_DELETE);
	t_str(w, "/nonexistent");
	jute_write_int(w, -1);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(multi_err(5), ZK_NONODE);
	assert_stats("/q", "count=2,bytes=2");
	cr_assert_eq(data_size(), size_before);
	cr_assert_eq(t_create("/q/d", "d", 0), ZK_OK); /* /q is still the root */
	assert_stats("/q", "count=3,bytes=3");
}

Test(store_quota, stats_text_format)
{
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, -1, -1, -1, -1));
	const char *stats = "/zookeeper/quota/q/zookeeper_stats";
	/* Other keys survive, sorted, after an "=" that old parsers skip; later duplicates win. */
	cr_assert_eq(set_data(stats, "count=1,bytes=2;zeta=5,alpha=-1;zeta=6", -1), ZK_OK);
	cr_assert_eq(t_create("/q/a", "abc", 0), ZK_OK);
	cr_assert_str_eq(data_of(stats), "count=2,bytes=5=;alpha=-1;zeta=6");
	/* A value "" between two "=" reads -1; an absent count reads -1. */
	cr_assert_eq(set_data(stats, "bytes==7", -1), ZK_OK);
	cr_assert_eq(t_create("/q/b", "", 0), ZK_OK);
	cr_assert_str_eq(data_of(stats), "count=0,bytes=-1");
	/* setData of the same length still rewrites (normalizes) the text. */
	cr_assert_eq(set_data(stats, "bytes=+4,,count=01;", -1), ZK_OK);
	cr_assert_eq(set_data("/q/b", "", -1), ZK_OK);
	cr_assert_str_eq(data_of(stats), "count=1,bytes=4");
	/* Text ZooKeeper cannot parse is left unchanged. */
	const char *bad[] = { "count=1,bytes", "count=", ",count=1", "count=x", "count=99999999999999999999" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(set_data(stats, bad[i], -1), ZK_OK);
		cr_assert_eq(t_create("/q/x", "x", 0), ZK_OK);
		cr_assert_eq(delete_node("/q/x"), ZK_OK);
		cr_assert_str_eq(data_of(stats), bad[i]);
	}
	/* Separators only: an empty map. */
	cr_assert_eq(set_data(stats, ",;,", -1), ZK_OK);
	cr_assert_eq(t_create("/q/y", "yy", 0), ZK_OK);
	cr_assert_str_eq(data_of(stats), "count=0,bytes=1");
}

Test(store_quota, no_enforcement_by_default)
{
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, 1, 1, 1, 1));
	cr_assert_eq(t_create("/q/a", "too many bytes", 0), ZK_OK);
	cr_assert_eq(set_data("/q/a", "even more bytes here", -1), ZK_OK);
	assert_stats("/q", "count=2,bytes=20");
	cr_assert_eq(exceeded_count(), 0); /* 3.8.0 checks nothing, not even soft limits */
}

Test(store_quota, soft_limits_are_counted)
{
	enforce_on();
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, 2, 4, -1, -1));
	cr_assert_eq(t_create("/q/a", "12", 0), ZK_OK);
	cr_assert_eq(exceeded_count(), 0);
	cr_assert_eq(t_create("/q/b", "345", 0), ZK_OK); /* count 3 > 2 and bytes 5 > 4 */
	cr_assert_eq(exceeded_count(), 2);
	cr_assert_eq(set_data("/q/b", "3", -1), ZK_OK); /* bytes 3: within */
	cr_assert_eq(exceeded_count(), 2);
	cr_assert_eq(set_data("/q/b", "3", -1), ZK_OK); /* no byte change: no check */
	cr_assert_eq(t_create("/q/c", NULL, 0), ZK_OK); /* count only */
	cr_assert_eq(exceeded_count(), 3);
	assert_stats("/q", "count=4,bytes=3");
}

/* The store_set_warn sink: every text, in order, joined by '\n'. */
static char warned[2048];

static void warn_capture(void *ctx, const char *text)
{
	(void)ctx;
	size_t n = strlen(warned);
	snprintf(warned + n, sizeof warned - n, "%s\n", text);
}

Test(store_quota, overruns_are_reported_with_zookeepers_text)
{
	enforce_on();
	warned[0] = '\0';
	store_set_warn(T.s, warn_capture, NULL);
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, 1, 4, -1, -1));
	cr_assert_eq(t_create("/q/a", "12345", 0), ZK_OK);     /* soft count and bytes */
	set_quota("/q/a", limits_text(lim, sizeof lim, -1, -1, 1, 6));
	cr_assert_eq(set_data("/q/a", "1234567", -1), ZK_QUOTAEXCEEDED);
	cr_assert_eq(t_create("/q/a/b", NULL, 0), ZK_QUOTAEXCEEDED);
	cr_assert_str_eq(warned, "Quota exceeded: /q [current count=2, softCountLimit=1]\n"
				 "Quota exceeded: /q [current bytes=5, softByteLimit=4]\n"
				 "Quota exceeded: /q/a [current bytes=7, hardByteLimit=6]\n"
				 "Quota exceeded: /q/a [current count=2, hardCountLimit=1]\n");
	cr_assert_eq(exceeded_count(), 4);
	store_set_warn(T.s, NULL, NULL); /* silent again */
	cr_assert_eq(set_data("/q/a", "1234567", -1), ZK_QUOTAEXCEEDED);
	cr_assert_eq(exceeded_count(), 5);
}

Test(store_quota, hard_limits_refuse)
{
	enforce_on();
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	/* A hard limit replaces the soft one of its kind (soft 1 is ignored). */
	set_quota("/q", limits_text(lim, sizeof lim, 1, -1, 3, 10));
	cr_assert_eq(t_create("/q/a", "12345", 0), ZK_OK);
	cr_assert_eq(t_create("/q/b", "12345", 0), ZK_OK); /* count 3, bytes 10: at the limits */
	cr_assert_eq(exceeded_count(), 0);
	assert_stats("/q", "count=3,bytes=10");
	int64_t zxid = T.zxid;
	cr_assert_eq(t_create("/q/c", NULL, 0), ZK_QUOTAEXCEEDED);
	cr_assert_not(t_exists("/q/c"));
	cr_assert_eq(store_last_zxid(T.s), zxid + 1);
	cr_assert_eq(set_data("/q/a", "123456", -1), ZK_QUOTAEXCEEDED);
	/* The quota check comes before the version check. */
	cr_assert_eq(set_data("/q/a", "123456", 7), ZK_QUOTAEXCEEDED);
	cr_assert_eq(set_data("/q/a", "1234", 7), ZK_BADVERSION);
	cr_assert_str_eq(data_of("/q/a"), "12345");
	assert_stats("/q", "count=3,bytes=10");
	cr_assert_eq(exceeded_count(), 3);
	/* Shrinking and deleting always pass. */
	cr_assert_eq(set_data("/q/a", "1", -1), ZK_OK);
	cr_assert_eq(delete_node("/q/b"), ZK_OK);
	cr_assert_eq(t_create("/q/c", "123", 0), ZK_OK);
	assert_stats("/q", "count=3,bytes=4");
	/* The nearest root decides: an inner quota without limits lets /q/c grow. */
	set_quota("/q/c", "count=-1,bytes=-1");
	cr_assert_eq(t_create("/q/c/d", "123456789", 0), ZK_OK);
	assert_stats("/q/c", "count=2,bytes=12");
}

Test(store_quota, multi_checks_against_the_state_before_it)
{
	enforce_on();
	char lim[128];
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", limits_text(lim, sizeof lim, -1, -1, 2, -1));
	/* Each sub-op sees count 1 + 1 <= 2, as ZooKeeper's prep against its committed tree. */
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/a", NULL, 0);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/b", NULL, 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(multi_err(1), ZK_OK);
	assert_stats("/q", "count=3,bytes=0");
	cr_assert_eq(t_create("/q/c", NULL, 0), ZK_QUOTAEXCEEDED);
	/* Within a multi, a quota created earlier in it is not enforced yet... */
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/r", NULL, 0), ZK_OK);
	w = t_body();
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/zookeeper/quota/r/zookeeper_limits", "countHardLimit=1", 0);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/zookeeper/quota/r/zookeeper_stats", "", 0);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/r/a", NULL, 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(multi_err(2), ZK_OK);
	assert_stats("/r", "count=2,bytes=0");
	/* ...and one removed earlier in it still is; the failure rolls everything back. */
	w = t_body();
	mh(w, ZK_OP_DELETE);
	t_str(w, "/zookeeper/quota/q/zookeeper_limits");
	jute_write_int(w, -1);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/c", NULL, 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(multi_err(0), ZK_OK);
	cr_assert_eq(multi_err(1), ZK_QUOTAEXCEEDED);
	cr_assert(t_exists("/zookeeper/quota/q/zookeeper_limits"));
	cr_assert_eq(t_create("/q/c", NULL, 0), ZK_QUOTAEXCEEDED);
	/* A multi that raises the limit first still checks against the old limit. */
	w = t_body();
	mh(w, ZK_OP_SET_DATA);
	t_str(w, "/zookeeper/quota/q/zookeeper_limits");
	jute_write_buffer(w, "countHardLimit=10", 17);
	jute_write_int(w, -1);
	mh(w, ZK_OP_CREATE);
	t_create_fields(w, "/q/c", NULL, 0);
	mh_end(w);
	cr_assert_eq(t_apply(ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(multi_err(1), ZK_QUOTAEXCEEDED);
	assert_stats("/q", "count=3,bytes=0");
}

Test(store_quota, malformed_limits_fail_when_enforcing)
{
	enforce_on();
	cr_assert_eq(t_create("/q", NULL, 0), ZK_OK);
	set_quota("/q", "count=abc");
	cr_assert_eq(t_create("/q/a", NULL, 0), ZK_MARSHALLINGERROR);
	cr_assert_eq(set_data("/zookeeper/quota/q/zookeeper_limits", "count=5", -1), ZK_OK);
	cr_assert_eq(set_data("/zookeeper/quota/q/zookeeper_stats", "garbage", -1), ZK_OK);
	cr_assert_eq(t_create("/q/a", NULL, 0), ZK_MARSHALLINGERROR);
	/* No limit of the changed kind: the stats are never read. */
	cr_assert_eq(set_data("/q", "abc", -1), ZK_OK);
	cr_assert_str_eq(data_of("/zookeeper/quota/q/zookeeper_stats"), "garbage");
}

Test(store_quota, root_normalization_quirks)
{
	/* "/zookeeper/quotaX" is not "/zookeeper/quota/X", but ZooKeeper cuts 16 bytes. */
	cr_assert_eq(t_create("/X", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/X", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/X/zookeeper_stats", "", 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quotaX", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quotaX/zookeeper_limits", "", 0), ZK_OK);
	cr_assert_eq(t_create("/X/a", "a", 0), ZK_OK);
	assert_stats("/X", "count=2,bytes=1");
	/* Blank components vanish: "/X/ " and "/X/ /b" are "/X" and "/X/b" to the roots. */
	cr_assert_eq(t_create("/X/ ", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/X/ /b", "bb", 0), ZK_OK);
	assert_stats("/X", "count=4,bytes=3");
}
