/*
 * snap_test_util.h — for the snapshot tests: a store holding every node kind
 * (t_build_every_kind), random writes of every kind (t_random_write), and an image
 * collector that deep-copies what store_snap_walk emits and loads it into a store.
 * Header-only; needs store_test_util.h's T (include that first).
 */
#ifndef RK_SNAP_TEST_UTIL_H
#define RK_SNAP_TEST_UTIL_H

#include "store/store_snap.h"
#include "store_dump_util.h"

#define T_SESSION_B 0x5555
#define T_SESSION_C 0x7777

static __attribute__((unused)) int32_t t_create_acl(const char *path, const char *data, const char *scheme,
						    const char *id, int32_t perms)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_buffer(w, data, data ? (int32_t)strlen(data) : -1);
	jute_write_int(w, 1);
	jute_write_int(w, perms);
	t_str(w, scheme);
	t_str(w, id);
	jute_write_int(w, 0);
	return t_apply(ZK_OP_CREATE, w);
}

static __attribute__((unused)) int32_t t_create_ttl(const char *path, int64_t ttl_ms)
{
	struct jute_writer *w = t_body();
	t_create_fields(w, path, "ttl", ZK_CREATE_PERSISTENT_WITH_TTL);
	jute_write_long(w, ttl_ms);
	return t_apply(ZK_OP_CREATE_TTL, w);
}

static __attribute__((unused)) int32_t t_set_acl_digest(const char *path, const char *id)
{
	struct jute_writer *w = t_body();
	t_str(w, path);
	jute_write_int(w, 2);
	jute_write_int(w, ZK_PERM_READ);
	t_str(w, "world");
	t_str(w, "anyone");
	jute_write_int(w, ZK_PERM_ALL);
	t_str(w, "digest");
	t_str(w, id);
	jute_write_int(w, -1);
	return t_apply(ZK_OP_SET_ACL, w);
}

static __attribute__((unused)) void t_session_create_as(int64_t id, int32_t timeout_ms, uint8_t pw_byte)
{
	struct jute_writer *w = t_body();
	jute_write_int(w, timeout_ms);
	uint8_t pw[16];
	memset(pw, pw_byte, sizeof pw);
	pw[0] = (uint8_t)id;
	jute_write_buffer(w, pw, 16);
	cr_assert_eq(t_apply_as(id, NULL, ZK_OP_CREATE_SESSION, w), ZK_OK);
}

/*
 * Every node kind: persistent (data, empty data, null data), sequential (the parent's
 * counter moves past deleted children), ephemeral and ephemeral sequential of two
 * sessions, a container that had a child, a TTL node, digest and mixed ACLs, setData
 * and setACL versions, a quota with limits and stats nodes, a multi.
 */
static __attribute__((unused)) void t_build_every_kind(void)
{
	t_session_create_as(T_SESSION_B, 12000, 0xb0);
	t_session_create_as(T_SESSION_C, 40000, 0xc0);
	cr_assert_eq(t_create("/app", "root of the app", 0), ZK_OK);
	cr_assert_eq(t_create("/app/empty", "", 0), ZK_OK);
	cr_assert_eq(t_create("/app/null", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/app/seq", NULL, 0), ZK_OK);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(t_create("/app/seq/n-", "s", ZK_CREATE_PERSISTENT_SEQUENTIAL), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/app/seq/n-0000000001", -1)), ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION_B, NULL, ZK_OP_CREATE, t_create_body("/app/eph-b", "b", ZK_CREATE_EPHEMERAL)),
		     ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION_B, NULL, ZK_OP_CREATE,
				t_create_body("/app/seq/e-", "eb", ZK_CREATE_EPHEMERAL_SEQUENTIAL)),
		     ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION_C, NULL, ZK_OP_CREATE, t_create_body("/app/eph-c", "c", ZK_CREATE_EPHEMERAL)),
		     ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_CREATE_CONTAINER, t_create_body("/box", NULL, ZK_CREATE_CONTAINER)), ZK_OK);
	cr_assert_eq(t_create("/box/item", "i", 0), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/box/item", -1)), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_CREATE_CONTAINER, t_create_body("/box2", "full", ZK_CREATE_CONTAINER)), ZK_OK);
	cr_assert_eq(t_create("/box2/kept", NULL, 0), ZK_OK);
	cr_assert_eq(t_create_ttl("/ttl", 60000), ZK_OK);
	cr_assert_eq(t_create_acl("/secret", "s3cret", "digest", "user:S9w3Uc5uhWmGFCqRqLd0bLrpPlw=", ZK_PERM_ALL),
		     ZK_OK);
	cr_assert_eq(t_create_acl("/readonly", "ro", "world", "anyone", ZK_PERM_READ), ZK_OK);
	cr_assert_eq(t_create_acl("/byip", "ip", "ip", "10.0.0.0/8", ZK_PERM_READ | ZK_PERM_WRITE), ZK_OK);
	cr_assert_eq(t_create("/acl", "a", 0), ZK_OK);
	cr_assert_eq(t_set_acl_digest("/acl", "bob:0000000000000000000000000000="), ZK_OK);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(t_apply(ZK_OP_SET_DATA, t_set_body("/app", "root, changed", -1)), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/app", NULL, 0), ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/app/zookeeper_limits",
			      "count=100,bytes=-1=;byteHardLimit=-1;countHardLimit=-1", 0),
		     ZK_OK);
	cr_assert_eq(t_create("/zookeeper/quota/app/zookeeper_stats", "count=0,bytes=0", 0), ZK_OK);
	cr_assert_eq(t_create("/app/under-quota", "12345", 0), ZK_OK);
	struct jute_writer *m = t_body();
	mh(m, ZK_OP_CREATE);
	t_create_fields(m, "/multi", "m", 0);
	mh(m, ZK_OP_CREATE);
	t_create_fields(m, "/multi/child", NULL, ZK_CREATE_PERSISTENT_SEQUENTIAL);
	mh(m, ZK_OP_SET_DATA);
	t_str(m, "/app/empty");
	jute_write_buffer(m, "filled", 6);
	jute_write_int(m, -1);
	mh_end(m);
	cr_assert_eq(t_apply(ZK_OP_MULTI, m), ZK_OK);
	T.time_ms += 1234;
}

/* Gives the request bodies back to store_test_util.h's pool (it holds T_BODIES_MAX). */
static __attribute__((unused)) void t_bodies_reset(void)
{
	for (int i = 0; i < t_bodies_count; i++)
		jute_writer_free(&t_bodies[i]);
	t_bodies_count = 0;
}

/* xorshift64* */
static __attribute__((unused)) uint64_t t_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/*
 * One random write over a small path space (/r/p0../r/p7 and one level below), of
 * any kind: creates of every mode, deletes, setData, setACL, multis that commit and
 * that fail, session creates and closes. Errors are fine: the point is changes.
 */
static __attribute__((unused)) void t_random_write(uint64_t *rng)
{
	char path[64], path2[64];
	uint64_t r = t_rand(rng);
	int a = (int)(r % 8), b = (int)((r >> 8) % 4);
	if ((r >> 16) % 2)
		snprintf(path, sizeof path, "/r/p%d", a);
	else
		snprintf(path, sizeof path, "/r/p%d/q%d", a, b);
	snprintf(path2, sizeof path2, "/r/p%d", (a + 1) % 8);
	static const int64_t sessions[] = { T_SESSION, T_SESSION_B, T_SESSION_C, 0x9999 };
	int64_t se = sessions[(r >> 24) % 4];
	/* Mostly short values; now and then one too long for its node's block (store_impl.h). */
	char data[320];
	int n = snprintf(data, sizeof data, "v%llu", (unsigned long long)((r >> 32) % 1000));
	if ((r >> 58) % 4 == 0) {
		size_t want = 20 + (size_t)((r >> 32) % 280);
		memset(data + n, 'w', want - (size_t)n);
		data[want] = '\0';
	}
	switch ((r >> 40) % 12) {
	case 0:
	case 1:
		t_apply_as(se, NULL, ZK_OP_CREATE, t_create_body(path, data, (int32_t)((r >> 48) % 4)));
		break;
	case 2:
		t_apply(ZK_OP_CREATE_CONTAINER, t_create_body(path, data, ZK_CREATE_CONTAINER));
		break;
	case 3:
		t_create_ttl(path, 1000 + (int64_t)((r >> 48) % 1000));
		break;
	case 4:
	case 5:
		t_apply(ZK_OP_DELETE, t_path_int_body(path, -1));
		break;
	case 6:
	case 7:
		t_apply(ZK_OP_SET_DATA, t_set_body(path, (r >> 50) % 5 ? data : NULL, -1));
		break;
	case 8:
		t_set_acl_digest(path, "eve:1111111111111111111111111111=");
		break;
	case 9: {
		struct jute_writer *m = t_body();
		mh(m, ZK_OP_SET_DATA);
		t_str(m, path2);
		jute_write_buffer(m, data, (int32_t)strlen(data));
		jute_write_int(m, -1);
		mh(m, ZK_OP_CREATE);
		t_create_fields(m, path, data, 0);
		mh(m, ZK_OP_DELETE);
		t_str(m, (r >> 52) % 2 ? path : "/r/none");
		jute_write_int(m, -1);
		mh_end(m);
		t_apply_as(se, NULL, ZK_OP_MULTI, m);
		break;
	}
	case 10:
		t_apply_as(se, NULL, ZK_OP_CLOSE_SESSION, NULL);
		break;
	case 11:
		if ((r >> 48) % 2) {
			struct jute_writer *w = t_body();
			jute_write_int(w, 5000);
			uint8_t pw[16];
			memset(pw, (int)(r >> 56), sizeof pw);
			jute_write_buffer(w, pw, 16);
			t_apply_as(se, NULL, ZK_OP_CREATE_SESSION, w);
		} else {
			t_apply(ZK_OP_SET_DATA, t_set_body("/zookeeper/quota/app/zookeeper_limits",
							   "count=7,bytes=-1=;byteHardLimit=-1;countHardLimit=-1", -1));
		}
		break;
	}
}

/* ---------------------------------------------------------------- image collector */

struct t_image {
	struct store_snap_node *nodes;
	size_t count, cap;
	struct store_snap_session *sessions;
	size_t session_count;
	char **roots;
	size_t *root_lens;
	size_t root_count;
	int64_t zxid;
};

static __attribute__((unused)) size_t t_image_add(void *ctx, const struct store_snap_node *v)
{
	struct t_image *im = ctx;
	if (im->count == im->cap) {
		im->cap = im->cap ? im->cap * 2 : 64;
		im->nodes = realloc(im->nodes, im->cap * sizeof *im->nodes);
		cr_assert_not_null(im->nodes);
	}
	struct store_snap_node *c = &im->nodes[im->count++];
	*c = *v;
	char *path = malloc(v->path_len);
	memcpy(path, v->path, v->path_len);
	c->path = path;
	uint8_t *data = NULL;
	if (v->data_len > 0) {
		data = malloc((size_t)v->data_len);
		memcpy(data, v->data, (size_t)v->data_len);
	}
	c->data = data;
	struct acl_entry *acl = calloc(v->acl_count, sizeof *acl);
	for (uint32_t i = 0; i < v->acl_count; i++) {
		acl[i] = v->acl[i];
		char *scheme = malloc(v->acl[i].scheme_len + 1), *id = malloc(v->acl[i].id_len + 1);
		memcpy(scheme, v->acl[i].scheme, v->acl[i].scheme_len);
		memcpy(id, v->acl[i].id, v->acl[i].id_len);
		acl[i].scheme = scheme;
		acl[i].id = id;
	}
	c->acl = acl;
	return v->path_len + (size_t)(v->data_len > 0 ? v->data_len : 0) + 64;
}

/* Copies what the image holds besides its nodes (call before store_snap_end). */
static __attribute__((unused)) void t_image_meta(struct t_image *im, const struct store_snap *sn)
{
	const struct store_snap_session *se;
	im->session_count = store_snap_sessions(sn, &se);
	im->sessions = malloc((im->session_count + 1) * sizeof *se);
	if (im->session_count)
		memcpy(im->sessions, se, im->session_count * sizeof *se);
	const char *const *paths;
	const size_t *lens;
	im->root_count = store_snap_quota_roots(sn, &paths, &lens);
	im->roots = calloc(im->root_count + 1, sizeof *im->roots);
	im->root_lens = calloc(im->root_count + 1, sizeof *im->root_lens);
	for (size_t i = 0; i < im->root_count; i++) {
		im->roots[i] = strndup(paths[i], lens[i]);
		im->root_lens[i] = lens[i];
	}
	im->zxid = store_snap_zxid(sn);
}

static __attribute__((unused)) void t_image_free(struct t_image *im)
{
	for (size_t i = 0; i < im->count; i++) {
		struct store_snap_node *c = &im->nodes[i];
		free((void *)c->path);
		free((void *)c->data);
		for (uint32_t k = 0; k < c->acl_count; k++) {
			free((void *)c->acl[k].scheme);
			free((void *)c->acl[k].id);
		}
		free((void *)c->acl);
	}
	free(im->nodes);
	free(im->sessions);
	for (size_t i = 0; i < im->root_count; i++)
		free(im->roots[i]);
	free(im->roots);
	free(im->root_lens);
	memset(im, 0, sizeof *im);
}

/* A fresh store (as t_setup makes one) holding the image. */
static __attribute__((unused)) struct store *t_image_load(const struct t_image *im)
{
	struct store_config cfg = { .config_text = "" };
	struct store *s = store_create(&cfg);
	char why[256] = "";
	for (size_t i = 0; i < im->session_count; i++)
		cr_assert_eq(store_load_session(s, &im->sessions[i], 1), 0);
	for (size_t i = 0; i < im->root_count; i++)
		cr_assert_eq(store_load_quota_root(s, im->roots[i], im->root_lens[i]), 0);
	for (size_t i = 0; i < im->count; i++)
		cr_assert_eq(store_load_node(s, &im->nodes[i], why, sizeof why), 0, "%s", why);
	cr_assert_eq(store_load_finish(s, im->zxid, why, sizeof why), 0, "%s", why);
	return s;
}

#endif
