/*
 * test_store_acl.c — path validation table, ACL validation/fix-up, NOAUTH checks,
 * getACL masking.
 */
#include "store_test_util.h"

TestSuite(store_acl, .init = t_setup, .fini = t_teardown);

struct path_case {
	const char *path;
	bool valid;
};

Test(store_acl, path_validation_table)
{
	static const struct path_case cases[] = {
		{ "/", true },
		{ "/a", true },
		{ "/a/b/c", true },
		{ "/a b:c", true },
		{ "/a.b", true },
		{ "/..a", true },
		{ "/a..", true },
		{ "/.a/b.", true },
		{ "/...", true },
		{ "/\xc3\xa9t\xc3\xa9", true },  /* é: U+00E9 */
		{ "/\xe4\xb8\xad", true },       /* U+4E2D */
		{ "/\xef\xa4\x80", true },       /* U+F900, just past the banned range */
		{ "/\xef\xbf\xaf", true },       /* U+FFEF */
		{ "", false },
		{ "a", false },
		{ "a/b", false },
		{ "/a/", false },
		{ "//", false },
		{ "/a//b", false },
		{ "/.", false },
		{ "/..", false },
		{ "/a/.", false },
		{ "/a/./b", false },
		{ "/a/../b", false },
		{ "/a/..", false },
		{ "/a\x01", false },
		{ "/a\x1f", false },
		{ "/a\x7f", false },             /* U+007F */
		{ "/a\xc2\x80", false },         /* U+0080 */
		{ "/a\xc2\x9f", false },         /* U+009F */
		{ "/a\xc2\xa0", true },          /* U+00A0 */
		{ "/\xed\x9f\xbf", true },       /* U+D7FF */
		{ "/\xee\x80\x80", false },      /* U+E000 (private use, in D800-F8FF) */
		{ "/\xef\xa3\xbf", false },      /* U+F8FF */
		{ "/\xef\xbf\xb0", false },      /* U+FFF0 */
		{ "/\xef\xbf\xbd", false },      /* U+FFFD */
		{ "/\xf0\x9f\x98\x80", false },  /* emoji U+1F600: surrogates in Java */
		{ "/\xed\xa0\x80", false },      /* encoded surrogate: malformed */
		{ "/\xc0\xaf", false },          /* overlong '/' */
		{ "/\xff", false },              /* invalid byte */
		{ "/\xe4\xb8", false },          /* truncated sequence */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_assert_eq(store_path_valid(cases[i].path, strlen(cases[i].path)), cases[i].valid, "case %zu '%s'", i,
			     cases[i].path);
	cr_assert(!store_path_valid("/a\0b", 4));
	cr_assert(!store_path_valid(NULL, 0));
}

static struct jute_writer *create_with_acl(const char *path, int n, const int32_t *perms, const char *const *schemes,
					   const char *const *ids)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_buffer(w, "", 0);
	jute_write_int(w, n);
	for (int i = 0; i < n; i++) {
		jute_write_int(w, perms[i]);
		t_str(w, schemes[i]);
		t_str(w, ids[i]);
	}
	jute_write_int(w, 0);
	return w;
}

static int32_t create_acl1(const char *path, int32_t perms, const char *scheme, const char *id,
			   const struct store_auth *auth)
{
	return t_apply_as(T_SESSION, auth, ZK_OP_CREATE, create_with_acl(path, 1, &perms, &scheme, &id));
}

static struct zk_id mkid(const char *scheme, const char *id)
{
	struct zk_id x = { { (const uint8_t *)scheme, (int32_t)strlen(scheme) },
			   { (const uint8_t *)id, (int32_t)strlen(id) } };
	return x;
}

Test(store_acl, acl_validation)
{
	cr_assert_eq(create_acl1("/v1", 31, "world", "anyone", NULL), ZK_OK);
	cr_assert_eq(create_acl1("/v2", 31, "world", "someone", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v3", 31, "bogus", "x", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v4", 31, "super", "x", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v5", 31, "digest", "user:hash", NULL), ZK_OK);
	cr_assert_eq(create_acl1("/v6", 31, "digest", "userhash", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v7", 31, "digest", "a:b:c", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v8", 31, "digest", "user:", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v9", 31, "ip", "10.0.0.1", NULL), ZK_OK);
	cr_assert_eq(create_acl1("/v10", 31, "ip", "10.0.0.0/8", NULL), ZK_OK);
	cr_assert_eq(create_acl1("/v11", 31, "ip", "10.0.0.0/33", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v12", 31, "ip", "10.0.0", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v13", 31, "ip", "300.0.0.1", NULL), ZK_INVALIDACL);
	cr_assert_eq(create_acl1("/v14", 31, "ip", "::1", NULL), ZK_OK);
	/* auth with no authenticated id: invalid; ip ids do not count */
	cr_assert_eq(create_acl1("/v15", 31, "auth", "", NULL), ZK_INVALIDACL);
	struct zk_id ip_only[] = { mkid("ip", "127.0.0.1") };
	struct store_auth a_ip = { ip_only, 1, false };
	cr_assert_eq(create_acl1("/v16", 31, "auth", "", &a_ip), ZK_INVALIDACL);
	/* INVALIDACL wins over a missing parent */
	cr_assert_eq(create_acl1("/nope/x", 31, "world", "nobody", NULL), ZK_INVALIDACL);
}

Test(store_acl, duplicates_removed_and_auth_expanded)
{
	int32_t perms[] = { 31, 31, 1 };
	const char *schemes[] = { "world", "world", "auth" };
	const char *ids[] = { "anyone", "anyone", "" };
	struct zk_id mine[] = { mkid("ip", "1.2.3.4"), mkid("digest", "bob:abc=") };
	struct store_auth a = { mine, 2, false };
	cr_assert_eq(t_apply_as(T_SESSION, &a, ZK_OP_CREATE, create_with_acl("/dup", 3, perms, schemes, ids)), ZK_OK);
	cr_assert_eq(t_read_as(0, &a, ZK_OP_GET_ACL, t_path_body("/dup")), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 12), 2);
	struct zk_acl acl;
	jute_read_acl(&r, &acl);
	cr_assert_eq(acl.perms, 31);
	cr_assert(jute_bytes_eq(acl.id.scheme, "world", 5) && jute_bytes_eq(acl.id.id, "anyone", 6));
	jute_read_acl(&r, &acl);
	cr_assert_eq(acl.perms, 1);
	cr_assert(jute_bytes_eq(acl.id.scheme, "digest", 6) && jute_bytes_eq(acl.id.id, "bob:abc=", 8));
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(st.aversion, 0);
}

Test(store_acl, noauth_checks)
{
	struct zk_id bob_ids[] = { mkid("digest", "bob:hash") };
	struct store_auth bob = { bob_ids, 1, false };
	struct zk_id eve_ids[] = { mkid("digest", "eve:hash") };
	struct store_auth eve = { eve_ids, 1, false };
	struct store_auth super = { NULL, 0, true };
	/* /locked: bob may do everything, world may only read */
	int32_t perms[] = { 31, ZK_PERM_READ };
	const char *schemes[] = { "digest", "world" };
	const char *ids[] = { "bob:hash", "anyone" };
	cr_assert_eq(t_apply(ZK_OP_CREATE, create_with_acl("/locked", 2, perms, schemes, ids)), ZK_OK);

	cr_assert_eq(t_apply_as(T_SESSION, &eve, ZK_OP_CREATE, t_create_body("/locked/c", "", 0)), ZK_NOAUTH);
	cr_assert_eq(t_apply_as(T_SESSION, &eve, ZK_OP_SET_DATA, t_set_body("/locked", "x", -1)), ZK_NOAUTH);
	/* NONODE for a missing parent comes before NOAUTH */
	cr_assert_eq(t_apply_as(T_SESSION, &eve, ZK_OP_CREATE, t_create_body("/locked/x/y", "", 0)), ZK_NONODE);
	cr_assert_eq(t_apply_as(T_SESSION, &bob, ZK_OP_CREATE, t_create_body("/locked/c", "", 0)), ZK_OK);
	/* delete checks DELETE on the parent */
	cr_assert_eq(t_apply_as(T_SESSION, &eve, ZK_OP_DELETE, t_path_int_body("/locked/c", -1)), ZK_NOAUTH);
	cr_assert_eq(t_apply_as(T_SESSION, &super, ZK_OP_DELETE, t_path_int_body("/locked/c", -1)), ZK_OK);
	/* reads: world has READ here */
	cr_assert_eq(t_read_as(0, &eve, ZK_OP_GET_DATA, t_path_watch_body("/locked", false)), ZK_OK);

	/* /secret: only bob, nobody else can read */
	int32_t p1 = 31;
	const char *s1 = "digest", *i1 = "bob:hash";
	cr_assert_eq(t_apply(ZK_OP_CREATE, create_with_acl("/secret", 1, &p1, &s1, &i1)), ZK_OK);
	cr_assert_eq(t_read_as(0, &eve, ZK_OP_GET_DATA, t_path_watch_body("/secret", false)), ZK_NOAUTH);
	cr_assert_eq(t_read_as(8, &eve, ZK_OP_GET_DATA, t_path_watch_body("/secret", true)), ZK_NOAUTH);
	cr_assert_eq(t_read_as(8, &eve, ZK_OP_GET_CHILDREN, t_path_watch_body("/secret", true)), ZK_NOAUTH);
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(ss.watch_count, 0, "a refused read must not register a watch");
	/* ZooKeeper 3.8.0: exists checks no permission; the Stat and the watch are given */
	cr_assert_eq(t_read_as(8, &eve, ZK_OP_EXISTS, t_path_watch_body("/secret", true)), ZK_OK);
	cr_assert_eq(T.out.len, 68);
	store_stats(T.s, &ss);
	cr_assert_eq(ss.watch_count, 1);
	cr_assert_eq(t_read_as(0, NULL, ZK_OP_GET_ACL, t_path_body("/secret")), ZK_NOAUTH);
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_GET_DATA, t_path_watch_body("/secret", false)), ZK_OK);
	cr_assert_eq(t_read_as(0, &super, ZK_OP_GET_DATA, t_path_watch_body("/secret", false)), ZK_OK);
	struct zk_id super_id[] = { mkid("super", "") };
	struct store_auth super2 = { super_id, 1, false };
	cr_assert_eq(t_read_as(0, &super2, ZK_OP_GET_DATA, t_path_watch_body("/secret", false)), ZK_OK);
	cr_assert_eq(t_read_as(0, &eve, ZK_OP_GET_ALL_CHILDREN_NUMBER, t_path_body("/secret")), ZK_NOAUTH);

	/* check (13) needs READ */
	cr_assert_eq(t_apply_as(T_SESSION, &eve, ZK_OP_CHECK, t_path_int_body("/secret", -1)), ZK_NOAUTH);
}

Test(store_acl, get_acl_masks_digest_without_admin)
{
	int32_t perms[] = { ZK_PERM_READ, ZK_PERM_ALL };
	const char *schemes[] = { "world", "digest" };
	const char *ids[] = { "anyone", "bob:secrethash" };
	cr_assert_eq(t_apply(ZK_OP_CREATE, create_with_acl("/g", 2, perms, schemes, ids)), ZK_OK);
	cr_assert_eq(t_read_as(0, NULL, ZK_OP_GET_ACL, t_path_body("/g")), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 12), 2);
	struct zk_acl acl;
	jute_read_acl(&r, &acl);
	jute_read_acl(&r, &acl);
	cr_assert(jute_bytes_eq(acl.id.id, "bob:x", 5), "got %.*s", acl.id.id.len, acl.id.id.data);
	struct zk_id bob_ids[] = { mkid("digest", "bob:secrethash") };
	struct store_auth bob = { bob_ids, 1, false };
	cr_assert_eq(t_read_as(0, &bob, ZK_OP_GET_ACL, t_path_body("/g")), ZK_OK);
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_vector_count(&r, 12);
	jute_read_acl(&r, &acl);
	jute_read_acl(&r, &acl);
	cr_assert(jute_bytes_eq(acl.id.id, "bob:secrethash", 14));
}

Test(store_acl, set_acl_order_and_aversion)
{
	cr_assert_eq(t_create("/sa", "", 0), ZK_OK);
	struct jute_writer *w = t_body();
	t_str(w, "/sa");
	jute_write_int(w, 0); /* empty ACL */
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_SET_ACL, w), ZK_INVALIDACL);
	w = t_body();
	t_str(w, "/nope");
	t_acl_open(w);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply(ZK_OP_SET_ACL, w), ZK_NONODE);
	w = t_body();
	t_str(w, "/sa");
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_READ);
	t_str(w, "ip");
	t_str(w, "10.1.0.0/16");
	jute_write_int(w, 3);
	cr_assert_eq(t_apply(ZK_OP_SET_ACL, w), ZK_BADVERSION);
	w->len -= 4;
	jute_write_int(w, 0);
	cr_assert_eq(t_apply(ZK_OP_SET_ACL, w), ZK_OK);
	cr_assert_eq(T.out.len, 68);
	struct zk_stat st;
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_stat(&r, &st);
	cr_assert_eq(st.aversion, 1);
	cr_assert_eq(st.version, 0);
	/* now only 10.1/16 may read */
	struct zk_id in[] = { mkid("ip", "10.1.200.3") };
	struct zk_id out[] = { mkid("ip", "10.2.0.1") };
	struct store_auth a_in = { in, 1, false }, a_out = { out, 1, false };
	cr_assert_eq(t_read_as(0, &a_in, ZK_OP_GET_DATA, t_path_watch_body("/sa", false)), ZK_OK);
	cr_assert_eq(t_read_as(0, &a_out, ZK_OP_GET_DATA, t_path_watch_body("/sa", false)), ZK_NOAUTH);
	/* and nobody has ADMIN: setACL is refused */
	w = t_body();
	t_str(w, "/sa");
	t_acl_open(w);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply_as(T_SESSION, &a_in, ZK_OP_SET_ACL, w), ZK_NOAUTH);
}

Test(store_acl, exists_with_nul_is_badarguments)
{
	struct jute_writer *w = t_body();
	jute_write_string(w, "/a\0", 3);
	jute_write_bool(w, true);
	cr_assert_eq(t_read(1, ZK_OP_EXISTS, w), ZK_BADARGUMENTS);
	/* other reads do not validate: just NONODE */
	cr_assert_eq(t_read(1, ZK_OP_GET_DATA, t_path_watch_body("/a//b", false)), ZK_NONODE);
}

/*
 * tests/integration/test_kazoo_acl.py test_digest_acl, as the store sees it: a node
 * with [31, digest:user:<hash>]; a stranger gets NOAUTH for getData, setData,
 * create-child and getChildren, but exists works; a wrong password (another digest
 * id) matches nothing; the right one allows everything.
 */
Test(store_acl, kazoo_digest_acl_expectations)
{
	static const char user_id[] = "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=";
	struct zk_id owner_ids[] = { mkid("ip", "127.0.0.1"), mkid("digest", user_id) };
	struct store_auth owner = { owner_ids, 2, false };
	struct zk_id stranger_ids[] = { mkid("ip", "127.0.0.1") };
	struct store_auth stranger = { stranger_ids, 1, false };
	struct zk_id wrong_ids[] = { mkid("ip", "127.0.0.1"), mkid("digest", "user:wronghash=") };
	struct store_auth wrong = { wrong_ids, 2, false };
	cr_assert_eq(t_create("/k", "", 0), ZK_OK);
	int32_t perms = ZK_PERM_ALL;
	const char *scheme = "digest", *id = user_id;
	struct jute_writer *w = create_with_acl("/k/sec", 1, &perms, &scheme, &id);
	cr_assert_eq(t_apply_as(T_SESSION, &owner, ZK_OP_CREATE, w), ZK_OK);
	cr_assert_eq(t_read_as(0, &owner, ZK_OP_GET_DATA, t_path_watch_body("/k/sec", false)), ZK_OK);
	const struct store_auth *refused[] = { &stranger, &wrong, NULL };
	for (int i = 0; i < 3; i++) {
		const struct store_auth *a = refused[i];
		cr_assert_eq(t_read_as(0, a, ZK_OP_GET_DATA, t_path_watch_body("/k/sec", false)), ZK_NOAUTH);
		cr_assert_eq(t_apply_as(T_SESSION, a, ZK_OP_SET_DATA, t_set_body("/k/sec", "x", -1)), ZK_NOAUTH);
		cr_assert_eq(t_apply_as(T_SESSION, a, ZK_OP_CREATE, t_create_body("/k/sec/child", "", 0)), ZK_NOAUTH);
		cr_assert_eq(t_read_as(0, a, ZK_OP_GET_CHILDREN, t_path_watch_body("/k/sec", false)), ZK_NOAUTH);
		cr_assert_eq(t_read_as(0, a, ZK_OP_GET_CHILDREN2, t_path_watch_body("/k/sec", false)), ZK_NOAUTH);
		cr_assert_eq(t_read_as(0, a, ZK_OP_EXISTS, t_path_watch_body("/k/sec", false)), ZK_OK);
		struct jute_reader r;
		jute_reader_init(&r, T.out.buf, T.out.len);
		struct zk_stat st;
		jute_read_stat(&r, &st);
		cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
		cr_assert_eq(st.data_length, 0);
		/* getACL wants READ or ADMIN */
		cr_assert_eq(t_read_as(0, a, ZK_OP_GET_ACL, t_path_body("/k/sec")), ZK_NOAUTH);
	}
	cr_assert_eq(t_apply_as(T_SESSION, &owner, ZK_OP_SET_DATA, t_set_body("/k/sec", "x", -1)), ZK_OK);
	cr_assert_eq(t_read_as(0, &owner, ZK_OP_GET_CHILDREN, t_path_watch_body("/k/sec", false)), ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION, &owner, ZK_OP_CREATE, t_create_body("/k/sec/child", "", 0)), ZK_OK);
	cr_assert_eq(t_read_as(0, &owner, ZK_OP_GET_ACL, t_path_body("/k/sec")), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 12), 1);
	struct zk_acl acl;
	jute_read_acl(&r, &acl);
	cr_assert_eq(acl.perms, 31);
	cr_assert(jute_bytes_eq(acl.id.scheme, "digest", 6));
	cr_assert(jute_bytes_eq(acl.id.id, user_id, strlen(user_id)));
}

/* test_kazoo_acl.py test_auth_scheme_acl: auth:"" expands to the caller's digest id. */
Test(store_acl, kazoo_auth_scheme_acl_expectations)
{
	struct zk_id plain_ids[] = { mkid("ip", "127.0.0.1") };
	struct store_auth plain = { plain_ids, 1, false };
	struct zk_id alice_ids[] = { mkid("ip", "127.0.0.1"), mkid("digest", "alice:HASH=") };
	struct store_auth alice = { alice_ids, 2, false };
	int32_t perms = ZK_PERM_ALL;
	const char *scheme = "auth", *id = "";
	cr_assert_eq(t_apply_as(T_SESSION, &plain, ZK_OP_CREATE, create_with_acl("/c", 1, &perms, &scheme, &id)),
		     ZK_INVALIDACL);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_CREATE, create_with_acl("/c", 1, &perms, &scheme, &id)),
		     ZK_OK);
	cr_assert_eq(t_read_as(0, &alice, ZK_OP_GET_ACL, t_path_body("/c")), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 12), 1);
	struct zk_acl acl;
	jute_read_acl(&r, &acl);
	cr_assert_eq(acl.perms, 31);
	cr_assert(jute_bytes_eq(acl.id.scheme, "digest", 6));
	cr_assert(jute_bytes_eq(acl.id.id, "alice:HASH=", 11));
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r) && jute_reader_remaining(&r) == 0);
	cr_assert_eq(st.aversion, 0);
	cr_assert_eq(t_read_as(0, &plain, ZK_OP_GET_DATA, t_path_watch_body("/c", false)), ZK_NOAUTH);
	struct jute_writer *w = t_body();
	t_str(w, "/c");
	t_acl_open(w);
	jute_write_int(w, -1);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_ACL, w), ZK_OK);
	struct zk_stat st2;
	jute_reader_init(&r, T.out.buf, T.out.len);
	jute_read_stat(&r, &st2);
	cr_assert_eq(st2.aversion, 1);
	cr_assert_eq(st2.version, 0);
	cr_assert_eq(st2.mzxid, st.mzxid);
	cr_assert_eq(t_read_as(0, &plain, ZK_OP_GET_DATA, t_path_watch_body("/c", false)), ZK_OK);
}

/* The bytes the store's ACL table holds (store_memory_get). */
static uint64_t acl_bytes(void)
{
	struct store_memory m;
	store_memory_get(T.s, &m);
	return m.acls;
}

/* setACL as alice and bob together (ADMIN on either's nodes). */
static int32_t set_acl1(const char *path, int32_t perms, const char *scheme, const char *id)
{
	static struct zk_id both[2];
	both[0] = mkid("digest", "alice:h1");
	both[1] = mkid("digest", "bob:h2");
	struct store_auth auth = { both, 2, false };
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_int(w, 1);
	jute_write_int(w, perms);
	t_str(w, scheme);
	t_str(w, id);
	jute_write_int(w, -1);
	return t_apply_as(T_SESSION, &auth, ZK_OP_SET_ACL, w);
}

/*
 * Nodes with equal ACLs share one list (store_acl_table.c): the table does not grow
 * with them, a list goes with its last node, a freed slot is reused, and each node
 * still answers its own ACL.
 */
Test(store_acl, equal_lists_are_kept_once)
{
	uint64_t empty = acl_bytes();
	cr_assert_eq(create_acl1("/a0", ZK_PERM_ALL, "digest", "alice:h1", NULL), ZK_OK);
	uint64_t one = acl_bytes();
	cr_assert_gt(one, empty);
	char path[32];
	for (int i = 1; i < 300; i++) {
		snprintf(path, sizeof path, "/a%d", i);
		cr_assert_eq(create_acl1(path, ZK_PERM_ALL, "digest", "alice:h1", NULL), ZK_OK);
	}
	cr_assert_eq(acl_bytes(), one, "300 nodes, one list");
	/* an open ACL is never in the table, even when spelled out */
	cr_assert_eq(create_acl1("/open", ZK_PERM_ALL, "world", "anyone", NULL), ZK_OK);
	cr_assert_eq(acl_bytes(), one);
	/* another list, then back: the second list goes with its last holder */
	cr_assert_eq(set_acl1("/a7", ZK_PERM_ALL, "digest", "bob:h2"), ZK_OK);
	uint64_t two = acl_bytes();
	cr_assert_gt(two, one);
	cr_assert_eq(set_acl1("/a8", ZK_PERM_ALL, "digest", "bob:h2"), ZK_OK);
	cr_assert_eq(acl_bytes(), two);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/a7", -1)), ZK_OK);
	cr_assert_eq(acl_bytes(), two);
	/* An id is a list with an aversion: /a8 back on alice's list has aversion 2, a slot
	 * (and a list) of its own beside the 299 nodes' (alice, 0); bob's is gone. */
	cr_assert_eq(set_acl1("/a8", ZK_PERM_ALL, "digest", "alice:h1"), ZK_OK);
	uint64_t back = acl_bytes();
	cr_assert_eq(back, one + (one - empty), "%llu: empty %llu, one list %llu, two %llu", (unsigned long long)back,
		     (unsigned long long)empty, (unsigned long long)one, (unsigned long long)two);
	/* a multi that creates a node with a new list and fails leaves no list behind */
	struct jute_writer *w = t_body();
	mh(w, ZK_OP_CREATE);
	t_str(w, "/c");
	jute_write_buffer(w, "", 0);
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_READ);
	t_str(w, "digest");
	t_str(w, "carol:h3");
	jute_write_int(w, 0);
	mh(w, ZK_OP_CHECK);
	t_str(w, "/nope");
	jute_write_int(w, -1);
	mh_end(w);
	struct zk_id alice_ids[] = { mkid("digest", "alice:h1") };
	struct store_auth alice = { alice_ids, 1, false };
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_MULTI, w), ZK_OK);
	cr_assert_eq(jute_get_be32(T.out.buf + 8), 0u, "the create sub-op succeeded, then rolled back");
	cr_assert_eq(acl_bytes(), back);
	/* each node still reads as its own ACL says */
	cr_assert_eq(t_read_as(0, NULL, ZK_OP_GET_DATA, t_path_watch_body("/a9", false)), ZK_NOAUTH);
	cr_assert_eq(t_read_as(0, &alice, ZK_OP_GET_DATA, t_path_watch_body("/a9", false)), ZK_OK);
	cr_assert_eq(t_read_as(0, NULL, ZK_OP_GET_DATA, t_path_watch_body("/open", false)), ZK_OK);
	cr_assert_eq(t_read_as(0, &alice, ZK_OP_GET_ACL, t_path_body("/a8")), ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, T.out.buf, T.out.len);
	cr_assert_eq(jute_read_vector_count(&r, 12), 1);
	struct zk_acl acl;
	jute_read_acl(&r, &acl);
	cr_assert_eq(acl.perms, ZK_PERM_ALL);
	cr_assert(jute_bytes_eq(acl.id.id, "alice:h1", 8));
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof path, "/a%d", i);
		if (i != 7)
			cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_DELETE, t_path_int_body(path, -1)), ZK_OK);
	}
	cr_assert_lt(acl_bytes(), back, "the last holder took the list with it");
	/* the freed slot serves the next list */
	cr_assert_eq(create_acl1("/again", ZK_PERM_ALL, "digest", "dave:h44", NULL), ZK_OK);
	cr_assert_eq(acl_bytes(), one);
}

/* A setACL body with an expected aversion. */
static struct jute_writer *set_acl_body(const char *path, const char *id, int32_t version)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_ALL);
	t_str(w, "digest");
	t_str(w, id);
	jute_write_int(w, version);
	return w;
}

/*
 * The aversion is kept with the list in the node's ACL id (store_acl_table.c), not in
 * the node: nodes sharing a list still count their setACLs apart, and an expected
 * version is checked against the node's own.
 */
Test(store_acl, each_node_keeps_its_own_aversion)
{
	struct zk_id ids[] = { mkid("digest", "alice:h1") };
	struct store_auth alice = { ids, 1, false };
	cr_assert_eq(create_acl1("/x", ZK_PERM_ALL, "digest", "alice:h1", NULL), ZK_OK);
	cr_assert_eq(create_acl1("/y", ZK_PERM_ALL, "digest", "alice:h1", NULL), ZK_OK);
	cr_assert_eq(create_acl1("/o", ZK_PERM_ALL, "world", "anyone", NULL), ZK_OK);
	/* the same list again: a new version all the same, as ZooKeeper counts it */
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_ACL, set_acl_body("/x", "alice:h1", 0)), ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_ACL, set_acl_body("/x", "alice:h1", 1)), ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_ACL, set_acl_body("/x", "alice:h1", 1)),
		     ZK_BADVERSION);
	cr_assert_eq(t_stat("/x").aversion, 2);
	cr_assert_eq(t_stat("/y").aversion, 0);
	cr_assert_eq(t_apply_as(T_SESSION, &alice, ZK_OP_SET_ACL, set_acl_body("/y", "alice:h1", 0)), ZK_OK);
	cr_assert_eq(t_stat("/y").aversion, 1);
	cr_assert_eq(t_stat("/x").aversion, 2);
	/* the open list with a version: a slot of its own, still open to everyone */
	struct jute_writer *w = t_body();
	t_str(w, "/o");
	jute_write_int(w, 1);
	jute_write_int(w, ZK_PERM_ALL);
	t_str(w, "world");
	t_str(w, "anyone");
	jute_write_int(w, 0);
	cr_assert_eq(t_apply_as(T_SESSION, NULL, ZK_OP_SET_ACL, w), ZK_OK);
	cr_assert_eq(t_stat("/o").aversion, 1);
	cr_assert_eq(t_read_as(0, NULL, ZK_OP_GET_DATA, t_path_watch_body("/o", false)), ZK_OK);
}
