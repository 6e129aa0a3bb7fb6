/*
 * test_migrate_zk.c — ringkeeper-migrate's ZooKeeper side: the snapshot parser (plain,
 * gzip, snappy; incomplete and damaged files), the log parser (every txn type, a torn
 * tail, zero padding, a bad checksum, an unknown type), and the DataTree model's
 * replay rules (parent cversion/pzxid, the NODEEXISTS fix-up, multi, closeSession,
 * quotas and StatsTrack text, TTL limits), plus ZooKeeper's session passwords.
 * Files are built byte by byte in zk_files_util.h.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate/zk_read.h"
#include "migrate/zk_tree.h"
#include "zk_files_util.h"

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rk-migrate-zk-%d", (int)getpid());
	zf_rm_rf(dir);
	zf_mkdirs(dir);
}

static void teardown(void) { zf_rm_rf(dir); }

TestSuite(migrate_zk, .init = setup, .fini = teardown);

static const char *file_at(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

static int load(const char *name, const struct jute_writer *w, struct zk_tree **t, struct zk_snap_info *info,
		char *why)
{
	zf_write_file(file_at(name), w->buf, w->len);
	return zk_snap_load(file_at(name), 5, t, info, why, 512);
}

static const struct zk_node *node(const struct zk_tree *t, const char *path)
{
	const struct zk_node *n = zk_tree_find(t, path, strlen(path));
	cr_assert(n, "no node %s", path);
	return n;
}

/* ---------------------------------------------------------------- snapshots */

static void check_standard_tree(const struct zk_tree *t)
{
	cr_assert_eq(zk_tree_node_count(t), 9);
	cr_assert_eq(zk_tree_session_count(t), 1);
	const struct zk_node *a = node(t, "/a");
	cr_assert_eq(a->data_len, 5);
	cr_assert_eq(memcmp(a->data, "hello", 5), 0);
	cr_assert_eq(a->acl->count, 2);
	cr_assert_eq(a->czxid, 1);
	cr_assert_eq(a->ctime, 1001);
	struct zk_stat st;
	zk_node_stat(a, &st);
	cr_assert_eq(st.cversion, 1); /* 2 * 1 create - 1 child */
	cr_assert_eq(st.num_children, 1);
	cr_assert_eq(st.data_length, 5);
	zk_node_stat(node(t, "/a/e"), &st);
	cr_assert_eq(st.ephemeral_owner, ZF_SESSION);
	const struct zk_node *c = node(t, "/c");
	cr_assert_eq(c->ephemeral_owner, ZK_EPHEMERAL_OWNER_CONTAINER);
	zk_node_stat(c, &st);
	cr_assert_eq(st.ephemeral_owner, 0);
	cr_assert_eq(st.cversion, 2);
	cr_assert_eq(zk_ephemeral_kind(node(t, "/t")->ephemeral_owner), ZK_EPHEMERAL_TTL);
	zk_node_stat(node(t, "/t"), &st);
	cr_assert_eq(st.ephemeral_owner, 0);
	cr_assert_eq(node(t, "/n")->data_len, -1);
	zk_node_stat(node(t, "/n"), &st);
	cr_assert_eq(st.data_length, 0);
	cr_assert_eq(zk_tree_root(t), zk_tree_find(t, "", 0));
	cr_assert_eq(zk_tree_last_zxid(t), 5);
}

Test(migrate_zk, snapshot_plain_with_digest)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_snapshot(&w, true, 0x1234);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), 0, "%s", why);
	check_standard_tree(t);
	cr_assert(info.has_digest);
	cr_assert_eq(info.digest_zxid, 5);
	cr_assert_eq(info.digest_version, 2);
	cr_assert_eq(info.digest, 0x1234);
	cr_assert_eq(info.sessions, 1);
	cr_assert_eq(info.acls, 1);
	cr_assert_eq(info.nodes, 9);
	cr_assert_eq(info.dbid, 7);
	cr_assert_eq(info.bytes, w.len);
	zk_tree_free(t);
	jute_writer_free(&w);
}

Test(migrate_zk, snapshot_without_digest_is_read)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_snapshot(&w, false, 0);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), 0, "%s", why);
	check_standard_tree(t);
	cr_assert(!info.has_digest);
	zk_tree_free(t);
	jute_writer_free(&w);
}

Test(migrate_zk, snapshot_gzip)
{
	struct jute_writer w, gz;
	jute_writer_init(&w, 1 << 20);
	jute_writer_init(&gz, 1 << 20);
	zf_snapshot(&w, true, 9);
	zf_gzip(w.buf, w.len, &gz);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5.gz", &gz, &t, &info, why), 0, "%s", why);
	check_standard_tree(t);
	cr_assert_eq(info.digest, 9);
	zk_tree_free(t);
	/* cut short: incomplete (a crash while it was written) */
	gz.len -= 20;
	cr_assert_eq(load("snapshot.5.gz", &gz, &t, &info, why), -ENODATA);
	cr_assert(strstr(why, "incomplete"), "%s", why);
	/* a flipped bit inside: gzip's own CRC or the stream itself says damaged */
	gz.len += 20;
	gz.buf[gz.len / 2] ^= 0x10;
	cr_assert_eq(load("snapshot.5.gz", &gz, &t, &info, why), -EBADMSG, "%s", why);
	jute_writer_free(&w);
	jute_writer_free(&gz);
}

Test(migrate_zk, snapshot_snappy)
{
#ifdef RK_HAVE_SNAPPY
	struct jute_writer w, sn;
	jute_writer_init(&w, 1 << 20);
	jute_writer_init(&sn, 1 << 20);
	zf_snapshot(&w, true, 9);
	zf_snappy(w.buf, w.len, 100, &sn); /* several chunks: records cross chunks */
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5.snappy", &sn, &t, &info, why), 0, "%s", why);
	check_standard_tree(t);
	zk_tree_free(t);
	/* cut inside a chunk: incomplete */
	size_t full = sn.len;
	sn.len -= 7;
	cr_assert_eq(load("snapshot.5.snappy", &sn, &t, &info, why), -ENODATA, "%s", why);
	/* a chunk length past the limit: damaged */
	sn.len = full;
	jute_put_be32(sn.buf + 16, 0x7fffffff);
	cr_assert_eq(load("snapshot.5.snappy", &sn, &t, &info, why), -EBADMSG, "%s", why);
	/* no snappy-java header: ZooKeeper would not take it for a snapshot */
	sn.buf[1] = 'X';
	cr_assert_eq(load("snapshot.5.snappy", &sn, &t, &info, why), -ENODATA, "%s", why);
	jute_writer_free(&w);
	jute_writer_free(&sn);
#else
	cr_skip_test("built without libsnappy");
#endif
}

Test(migrate_zk, snapshot_incomplete_and_damaged)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_snapshot(&w, true, 1);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	/* every cut is incomplete (the file does not end with its seal), but two: right
	 * after the tree's "/" it looks whole and is damaged; right after the first seal
	 * it is a whole snapshot without the digest section (ZooKeeper reads both so) */
	size_t full = w.len, tree_end = full - 46, seal1_end = full - 33;
	for (size_t cut = 0; cut < full; cut++) {
		w.len = cut;
		int rc = load("snapshot.5", &w, &t, &info, why);
		if (cut == tree_end) {
			cr_assert_eq(rc, -EBADMSG, "%s", why);
		} else if (cut == seal1_end) {
			cr_assert_eq(rc, 0, "%s", why);
			cr_assert(!info.has_digest);
			zk_tree_free(t);
		} else {
			cr_assert_eq(rc, -ENODATA, "cut at %zu: %s", cut, why);
		}
	}
	w.len = full;
	/* every flipped byte before the first seal's string is caught */
	for (size_t i = 0; i < seal1_end - 5; i++) {
		w.buf[i] ^= 0x01;
		int rc = load("snapshot.5", &w, &t, &info, why);
		cr_assert_eq(rc, -EBADMSG, "flip at %zu: %d %s", i, rc, why);
		cr_assert(strstr(why, "does not match") && strstr(why, "damaged"), "flip at %zu: %s", i, why);
		w.buf[i] ^= 0x01;
	}
	/* the digest damaged: the second seal */
	w.buf[full - 20] ^= 0x01;
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), -EBADMSG);
	cr_assert(strstr(why, "after the digest") && strstr(why, "damaged"), "%s", why);
	w.buf[full - 20] ^= 0x01;
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), 0, "%s", why);
	zk_tree_free(t);
	jute_writer_free(&w);
}

Test(migrate_zk, snapshot_unknown_acl_and_orphan)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_header(&w, "ZKSN");
	jute_write_int(&w, 0);
	jute_write_int(&w, 0);
	zf_node(&w, "", "", -1, 0, 0, 0);
	zf_node(&w, "/x", "", 42, 1, 0, 0);
	zf_str(&w, "/");
	zf_seal(&w);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), -EBADMSG);
	cr_assert(strstr(why, "ACL id 42"), "%s", why);
	jute_writer_reset(&w);
	zf_header(&w, "ZKSN");
	jute_write_int(&w, 0);
	jute_write_int(&w, 0);
	zf_node(&w, "", "", -1, 0, 0, 0);
	zf_node(&w, "/x/y", "", -1, 1, 0, 0);
	zf_str(&w, "/");
	zf_seal(&w);
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), -EBADMSG);
	cr_assert(strstr(why, "without its parent"), "%s", why);
	jute_writer_free(&w);
}

/* ---------------------------------------------------------------- logs */

Test(migrate_zk, log_every_txn_type)
{
	struct jute_writer log, e;
	jute_writer_init(&log, 1 << 20);
	jute_writer_init(&e, 1 << 20);
	zf_header(&log, "ZKLG");
	int32_t types[] = { ZK_OP_CREATE_SESSION, ZK_OP_CREATE, ZK_OP_CREATE2, ZK_OP_CREATE_CONTAINER, ZK_OP_CREATE_TTL,
			    ZK_OP_SET_DATA, ZK_OP_SET_ACL, ZK_OP_DELETE, ZK_OP_DELETE_CONTAINER, ZK_OP_ERROR, ZK_OP_MULTI,
			    ZK_OP_CLOSE_SESSION, ZK_OP_RECONFIG };
	int n = (int)(sizeof types / sizeof *types);
	for (int i = 0; i < n; i++) {
		jute_writer_reset(&e);
		zf_txn_header(&e, 77, i + 1, types[i]);
		switch (types[i]) {
		case ZK_OP_CREATE_SESSION: jute_write_int(&e, 4000); break;
		case ZK_OP_CREATE:
		case ZK_OP_CREATE2: zf_create_body(&e, "/p", "d", true, 3); break;
		case ZK_OP_CREATE_CONTAINER:
		case ZK_OP_CREATE_TTL:
			zf_str(&e, "/q");
			zf_buf(&e, "dd");
			zf_acl(&e, true);
			jute_write_int(&e, 4);
			if (types[i] == ZK_OP_CREATE_TTL)
				jute_write_long(&e, 9999);
			break;
		case ZK_OP_SET_DATA:
		case ZK_OP_RECONFIG:
			zf_str(&e, "/p");
			zf_buf(&e, "new");
			jute_write_int(&e, 6);
			break;
		case ZK_OP_SET_ACL:
			zf_str(&e, "/p");
			zf_acl(&e, false);
			jute_write_int(&e, 2);
			break;
		case ZK_OP_DELETE:
		case ZK_OP_DELETE_CONTAINER: zf_str(&e, "/q"); break;
		case ZK_OP_ERROR: jute_write_int(&e, ZK_NONODE); break;
		case ZK_OP_MULTI:
			jute_write_int(&e, 2);
			jute_write_int(&e, ZK_OP_CHECK);
			jute_write_int(&e, 10);
			zf_str(&e, "/p");
			jute_write_int(&e, 1);
			jute_write_int(&e, ZK_OP_DELETE);
			jute_write_int(&e, 6);
			zf_str(&e, "/p");
			break;
		case ZK_OP_CLOSE_SESSION:
			jute_write_int(&e, 1);
			zf_str(&e, "/p");
			break;
		}
		if (i % 2) { /* a TxnDigest after odd ones */
			jute_write_int(&e, 2);
			jute_write_long(&e, 1000 + i);
		}
		zf_record(&log, &e);
	}
	jute_writer_reserve(&log, 4096); /* preallocated zeros */
	memset(log.buf + log.len - 4096, 0, 4096);
	zf_write_file(file_at("log.1"), log.buf, log.len);
	struct zk_log_file *f;
	struct zk_file_header hdr;
	char why[512];
	cr_assert_eq(zk_log_open(file_at("log.1"), &f, &hdr, why, sizeof why), 0, "%s", why);
	cr_assert_eq(hdr.magic, ZK_LOG_MAGIC);
	for (int i = 0; i < n; i++) {
		struct zk_txn t;
		cr_assert_eq(zk_log_next(f, &t, why, sizeof why), ZK_LOG_TXN, "txn %d: %s", i, why);
		cr_assert_eq(t.hdr.zxid, i + 1);
		cr_assert_eq(t.hdr.type, types[i]);
		cr_assert_eq(t.hdr.client_id, 77);
		cr_assert_eq(t.hdr.time, 2001 + i);
		cr_assert_eq(t.has_digest, i % 2 == 1);
		if (i % 2)
			cr_assert_eq(t.digest, 1000 + i);
		const struct zk_txn_body *b = &t.body;
		switch (types[i]) {
		case ZK_OP_CREATE_SESSION: cr_assert_eq(b->timeout_ms, 4000); break;
		case ZK_OP_CREATE:
		case ZK_OP_CREATE2:
			cr_assert(jute_bytes_eq(b->path, "/p", 2));
			cr_assert(b->ephemeral);
			cr_assert_eq(b->parent_cversion, 3);
			break;
		case ZK_OP_CREATE_TTL: cr_assert_eq(b->ttl, 9999); /* fall through */
		case ZK_OP_CREATE_CONTAINER:
			cr_assert(jute_bytes_eq(b->data, "dd", 2));
			cr_assert_eq(b->parent_cversion, 4);
			cr_assert_eq(jute_get_be32(b->acl.data), 2);
			break;
		case ZK_OP_SET_DATA:
		case ZK_OP_RECONFIG: cr_assert_eq(b->version, 6); break;
		case ZK_OP_SET_ACL: cr_assert_eq(b->version, 2); break;
		case ZK_OP_ERROR: cr_assert_eq(b->err, ZK_NONODE); break;
		case ZK_OP_MULTI: cr_assert_eq(jute_get_be32(b->ops.data), 2); break;
		case ZK_OP_CLOSE_SESSION: cr_assert(b->has_paths); break;
		}
	}
	struct zk_txn t;
	cr_assert_eq(zk_log_next(f, &t, why, sizeof why), ZK_LOG_END);
	zk_log_close(f);
	jute_writer_free(&log);
	jute_writer_free(&e);
}

/* A log of `count` setData txns of /x from zxid `first`. */
static void setdata_log(struct jute_writer *log, int64_t first, int count)
{
	struct jute_writer e;
	jute_writer_init(&e, 1 << 16);
	zf_header(log, "ZKLG");
	for (int i = 0; i < count; i++) {
		jute_writer_reset(&e);
		zf_txn_header(&e, 1, first + i, ZK_OP_SET_DATA);
		zf_str(&e, "/x");
		zf_buf(&e, "v");
		jute_write_int(&e, i + 1);
		zf_record(log, &e);
	}
	jute_writer_free(&e);
}

static int log_count(const struct jute_writer *log, int *partial, char *why)
{
	zf_write_file(file_at("log.9"), log->buf, log->len);
	struct zk_log_file *f;
	struct zk_file_header hdr;
	int rc = zk_log_open(file_at("log.9"), &f, &hdr, why, 512);
	if (rc < 0)
		return rc;
	int n = 0;
	*partial = 0;
	for (;;) {
		struct zk_txn t;
		rc = zk_log_next(f, &t, why, 512);
		if (rc == ZK_LOG_TXN) {
			n++;
			continue;
		}
		if (rc == ZK_LOG_PARTIAL)
			*partial = 1;
		break;
	}
	zk_log_close(f);
	return rc < 0 ? rc : n;
}

Test(migrate_zk, log_torn_tail_checksum_and_magic)
{
	struct jute_writer log;
	jute_writer_init(&log, 1 << 20);
	setdata_log(&log, 9, 4);
	int partial;
	char why[512];
	cr_assert_eq(log_count(&log, &partial, why), 4);
	cr_assert_eq(partial, 0);
	/* every cut inside the last record: the file ends after three, as a partial */
	size_t full = log.len, rec = (full - 16) / 4;
	for (size_t cut = full - rec + 1; cut < full; cut++) {
		log.len = cut;
		cr_assert_eq(log_count(&log, &partial, why), 3, "cut %zu", cut);
		cr_assert_eq(partial, 1);
	}
	log.len = full;
	/* the end-of-record byte wrong: ZooKeeper's "partial" too */
	log.buf[full - 1] = 'X';
	cr_assert_eq(log_count(&log, &partial, why), 3);
	cr_assert_eq(partial, 1);
	log.buf[full - 1] = 'B';
	/* a flipped byte inside a record's entry: damaged */
	log.buf[16 + rec + 12 + 3] ^= 0x40;
	cr_assert_eq(log_count(&log, &partial, why), -EBADMSG);
	cr_assert(strstr(why, "fails its checksum"), "%s", why);
	log.buf[16 + rec + 12 + 3] ^= 0x40;
	/* a length that cannot be */
	jute_put_be32(log.buf + 16 + 8, 0xfffffff0);
	cr_assert_eq(log_count(&log, &partial, why), -EBADMSG);
	jute_put_be32(log.buf + 16 + 8, (uint32_t)(rec - 13));
	/* not a log */
	log.buf[0] = 'X';
	cr_assert_eq(log_count(&log, &partial, why), -EBADMSG);
	cr_assert(strstr(why, "not a ZooKeeper transaction log"), "%s", why);
	jute_writer_free(&log);
}

Test(migrate_zk, log_unknown_txn_type_refused)
{
	struct jute_writer log, e;
	jute_writer_init(&log, 1 << 16);
	jute_writer_init(&e, 1 << 16);
	zf_header(&log, "ZKLG");
	zf_txn_header(&e, 1, 9, 99);
	zf_str(&e, "/x");
	zf_record(&log, &e);
	int partial;
	char why[512];
	cr_assert_eq(log_count(&log, &partial, why), -EBADMSG);
	cr_assert(strstr(why, "type 99"), "%s", why);
	jute_writer_free(&log);
	jute_writer_free(&e);
}

/* ---------------------------------------------------------------- the model */

/* A tree from the standard snapshot, for replay tests. */
static struct zk_tree *standard_tree(void)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_snapshot(&w, false, 0);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), 0, "%s", why);
	jute_writer_free(&w);
	return t;
}

static struct jute_writer txn_buf;

/* Applies the txn whose record the test wrote into txn_buf after zf_txn_header. */
static int apply(struct zk_tree *t, char *why)
{
	struct zk_txn txn;
	int rc = zk_txn_decode(txn_buf.buf, txn_buf.len, &txn, why, 512);
	cr_assert_eq(rc, 0, "%s", why);
	rc = zk_tree_apply(t, &txn, why, 512);
	jute_writer_reset(&txn_buf);
	return rc;
}

static void begin(int64_t zxid, int32_t type, int64_t session)
{
	if (!txn_buf.buf)
		jute_writer_init(&txn_buf, 1 << 20);
	jute_writer_reset(&txn_buf);
	zf_txn_header(&txn_buf, session, zxid, type);
}

Test(migrate_zk, create_moves_parent_forward_only)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	const struct zk_node *a = node(t, "/a");
	begin(6, ZK_OP_CREATE, 0);
	zf_create_body(&txn_buf, "/a/b", "x", false, 7);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(a->cversion, 7);
	cr_assert_eq(a->pzxid, 6);
	/* an older parentCVersion (a fuzzy snapshot replay): the parent stays */
	begin(7, ZK_OP_CREATE2, 0);
	zf_create_body(&txn_buf, "/a/c", "x", false, 5);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(a->cversion, 7);
	cr_assert_eq(a->pzxid, 6);
	const struct zk_node *c = node(t, "/a/c");
	cr_assert_eq(c->czxid, 7);
	cr_assert_eq(c->mzxid, 7);
	cr_assert_eq(c->pzxid, 7);
	cr_assert_eq(c->ctime, 2007);
	/* -1 (CreateTxnV0): the parent's + 1 */
	begin(8, ZK_OP_CREATE, 0);
	zf_create_body(&txn_buf, "/a/d", "x", false, -1);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(a->cversion, 8);
	cr_assert_eq(a->pzxid, 8);
	/* a create under a missing parent is ignored (NONODE) */
	begin(9, ZK_OP_CREATE, 0);
	zf_create_body(&txn_buf, "/none/x", "x", false, 1);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(zk_tree_stats(t)->errors_ignored, 1);
	cr_assert_eq(zk_tree_last_zxid(t), 9);
	zk_tree_free(t);
}

Test(migrate_zk, create_nodeexists_fixup_plain_create_only)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	const struct zk_node *a = node(t, "/a");
	/* /a/e exists: a plain create sets the parent's cversion and pzxid (setCversionPzxid) */
	begin(6, ZK_OP_CREATE, 0);
	zf_create_body(&txn_buf, "/a/e", "x", false, 9);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(a->cversion, 9);
	cr_assert_eq(a->pzxid, 6);
	cr_assert_eq(zk_tree_stats(t)->cversion_fixups, 1);
	cr_assert_eq(node(t, "/a/e")->czxid, 2, "the node itself is untouched");
	/* create2 has no fix-up */
	begin(7, ZK_OP_CREATE2, 0);
	zf_create_body(&txn_buf, "/a/e", "x", false, 12);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(a->cversion, 9);
	zk_tree_free(t);
}

Test(migrate_zk, delete_moves_pzxid_even_when_gone)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	const struct zk_node *a = node(t, "/a");
	begin(6, ZK_OP_DELETE, 0);
	zf_str(&txn_buf, "/a/gone");
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(a->pzxid, 6);
	cr_assert_eq(a->cversion, 1, "a delete never moves the stored cversion");
	begin(7, ZK_OP_DELETE, 0);
	zf_str(&txn_buf, "/a/e");
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_null(zk_tree_find(t, "/a/e", 4));
	cr_assert_eq(a->child_count, 0);
	struct zk_stat st;
	zk_node_stat(a, &st);
	cr_assert_eq(st.cversion, 2);
	/* a delete of a node with children cannot come from ZooKeeper: refused */
	begin(8, ZK_OP_DELETE, 0);
	zf_str(&txn_buf, "/zookeeper");
	cr_assert_eq(apply(t, why), -EBADMSG);
	cr_assert(strstr(why, "still has children"), "%s", why);
	zk_tree_free(t);
}

Test(migrate_zk, multi_with_an_error_applies_nothing)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	struct jute_writer sub;
	jute_writer_init(&sub, 1 << 16);
	begin(6, ZK_OP_MULTI, 0);
	jute_write_int(&txn_buf, 2);
	zf_create_body(&sub, "/m", "x", false, 6);
	jute_write_int(&txn_buf, ZK_OP_CREATE);
	jute_write_buffer(&txn_buf, sub.buf, (int32_t)sub.len);
	jute_writer_reset(&sub);
	jute_write_int(&sub, ZK_BADVERSION);
	jute_write_int(&txn_buf, ZK_OP_ERROR);
	jute_write_buffer(&txn_buf, sub.buf, (int32_t)sub.len);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_null(zk_tree_find(t, "/m", 2));
	/* the same without the error: applied, sub-txns in order */
	begin(7, ZK_OP_MULTI, 0);
	jute_write_int(&txn_buf, 2);
	jute_writer_reset(&sub);
	zf_create_body(&sub, "/m", "x", false, 6);
	jute_write_int(&txn_buf, ZK_OP_CREATE);
	jute_write_buffer(&txn_buf, sub.buf, (int32_t)sub.len);
	jute_writer_reset(&sub);
	zf_str(&sub, "/m");
	zf_buf(&sub, "y");
	jute_write_int(&sub, 1);
	jute_write_int(&txn_buf, ZK_OP_SET_DATA);
	jute_write_buffer(&txn_buf, sub.buf, (int32_t)sub.len);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	const struct zk_node *m = node(t, "/m");
	cr_assert_eq(m->data_len, 1);
	cr_assert_eq(m->data[0], 'y');
	cr_assert_eq(m->version, 1);
	cr_assert_eq(m->czxid, 7);
	cr_assert_eq(m->mzxid, 7);
	cr_assert_eq(zk_tree_last_zxid(t), 7);
	jute_writer_free(&sub);
	zk_tree_free(t);
}

Test(migrate_zk, close_session_deletes_named_and_owned)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	begin(6, ZK_OP_CREATE, ZF_SESSION);
	zf_create_body(&txn_buf, "/e2", "", true, 6);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(node(t, "/e2")->ephemeral_owner, ZF_SESSION);
	/* paths2Delete names only /a/e; /e2 goes as the session's other ephemeral */
	begin(7, ZK_OP_CLOSE_SESSION, ZF_SESSION);
	jute_write_int(&txn_buf, 1);
	zf_str(&txn_buf, "/a/e");
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_null(zk_tree_find(t, "/a/e", 4));
	cr_assert_null(zk_tree_find(t, "/e2", 3));
	cr_assert_eq(zk_tree_session_count(t), 0);
	cr_assert_eq(node(t, "/a")->pzxid, 7);
	cr_assert_eq(zk_tree_root(t)->pzxid, 7);
	zk_tree_free(t);
}

Test(migrate_zk, sessions_and_dead_owners)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	begin(6, ZK_OP_CREATE_SESSION, 0x42);
	jute_write_int(&txn_buf, 9000);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(zk_tree_session_count(t), 2);
	/* an ephemeral of an id that is no session: gone at the next start, as ZooKeeper */
	begin(7, ZK_OP_CREATE, 0x77);
	zf_create_body(&txn_buf, "/orphan", "", true, 6);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(zk_tree_close_dead_owners(t, 7, why, sizeof why), 0, "%s", why);
	cr_assert_null(zk_tree_find(t, "/orphan", 7));
	cr_assert_not_null(zk_tree_find(t, "/a/e", 4));
	cr_assert_eq(zk_tree_stats(t)->dead_owner_nodes, 1);
	zk_tree_free(t);
}

Test(migrate_zk, ttl_limits_refused)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	int64_t bad[] = { 0, -5, 0x10000000000LL };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		begin(6, ZK_OP_CREATE_TTL, 0);
		zf_str(&txn_buf, "/tt");
		zf_buf(&txn_buf, "");
		zf_acl(&txn_buf, false);
		jute_write_int(&txn_buf, 6);
		jute_write_long(&txn_buf, bad[i]);
		cr_assert_eq(apply(t, why), -EBADMSG, "ttl %lld", (long long)bad[i]);
	}
	begin(6, ZK_OP_CREATE_TTL, 0);
	zf_str(&txn_buf, "/tt");
	zf_buf(&txn_buf, "");
	zf_acl(&txn_buf, false);
	jute_write_int(&txn_buf, 6);
	jute_write_long(&txn_buf, 0xFFFFFFFFFFLL);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(node(t, "/tt")->ephemeral_owner, (int64_t)0xFF0000FFFFFFFFFFULL);
	zk_tree_free(t);
}

static void create(struct zk_tree *t, int64_t zxid, const char *path, const char *data)
{
	char why[512];
	begin(zxid, ZK_OP_CREATE, 0);
	zf_create_body(&txn_buf, path, data, false, -1);
	cr_assert_eq(apply(t, why), 0, "%s", why);
}

static void expect_data(const struct zk_tree *t, const char *path, const char *want)
{
	const struct zk_node *n = node(t, path);
	cr_assert_eq(n->data_len, (int32_t)strlen(want), "%s: %.*s", path, n->data_len, n->data);
	cr_assert_eq(memcmp(n->data, want, strlen(want)), 0, "%s: %.*s", path, n->data_len, n->data);
}

Test(migrate_zk, quotas_as_zookeeper)
{
	struct zk_tree *t = standard_tree();
	char why[512];
	/* /a holds "hello" and /a/e "eph": the stats node counts them when created */
	create(t, 6, "/zookeeper/quota/a", NULL);
	create(t, 7, "/zookeeper/quota/a/zookeeper_limits", "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
	create(t, 8, "/zookeeper/quota/a/zookeeper_stats", "count=0,bytes=0");
	expect_data(t, "/zookeeper/quota/a/zookeeper_stats", "count=2,bytes=8");
	const char *const *roots;
	cr_assert_eq(zk_tree_quota_roots(t, &roots), 1);
	cr_assert_str_eq(roots[0], "/a");
	create(t, 9, "/a/b", "1234");
	expect_data(t, "/zookeeper/quota/a/zookeeper_stats", "count=3,bytes=12");
	begin(10, ZK_OP_SET_DATA, 0);
	zf_str(&txn_buf, "/a/b");
	zf_buf(&txn_buf, "1");
	jute_write_int(&txn_buf, 1);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	expect_data(t, "/zookeeper/quota/a/zookeeper_stats", "count=3,bytes=9");
	cr_assert_eq(node(t, "/zookeeper/quota/a/zookeeper_stats")->version, 0);
	/* nested: /a/b's own quota takes what happens under it */
	create(t, 11, "/zookeeper/quota/a/b", NULL);
	create(t, 12, "/zookeeper/quota/a/b/zookeeper_limits", "count=5,bytes=-1");
	create(t, 13, "/zookeeper/quota/a/b/zookeeper_stats", "count=0,bytes=0;extra=4");
	expect_data(t, "/zookeeper/quota/a/b/zookeeper_stats", "count=1,bytes=1");
	create(t, 14, "/a/b/c", "xy");
	expect_data(t, "/zookeeper/quota/a/b/zookeeper_stats", "count=2,bytes=3");
	expect_data(t, "/zookeeper/quota/a/zookeeper_stats", "count=3,bytes=9");
	/* deleting /a's limits node drops /a and every quota path below it (PathTrie) */
	begin(15, ZK_OP_DELETE, 0);
	zf_str(&txn_buf, "/zookeeper/quota/a/zookeeper_limits");
	cr_assert_eq(apply(t, why), 0, "%s", why);
	cr_assert_eq(zk_tree_quota_roots(t, &roots), 0);
	create(t, 16, "/a/b/d", "z");
	expect_data(t, "/zookeeper/quota/a/b/zookeeper_stats", "count=2,bytes=3");
	/* "/zookeeper/quotaX/zookeeper_limits" makes "/X" a quota path (16 bytes cut) */
	create(t, 17, "/zookeeper/quotaX", NULL);
	create(t, 18, "/zookeeper/quotaX/zookeeper_limits", "count=1");
	cr_assert_eq(zk_tree_quota_roots(t, &roots), 1);
	cr_assert_str_eq(roots[0], "/X");
	/* a stats text ZooKeeper cannot parse: refused (ZooKeeper throws on it) */
	create(t, 19, "/q2", "");
	create(t, 20, "/zookeeper/quota/q2", NULL);
	create(t, 21, "/zookeeper/quota/q2/zookeeper_limits", "count=1");
	create(t, 22, "/zookeeper/quota/q2/zookeeper_stats", "count=0,bytes=0");
	expect_data(t, "/zookeeper/quota/q2/zookeeper_stats", "count=1,bytes=0");
	begin(23, ZK_OP_SET_DATA, 0);
	zf_str(&txn_buf, "/zookeeper/quota/q2/zookeeper_stats");
	zf_buf(&txn_buf, ",count=1");
	jute_write_int(&txn_buf, 1);
	cr_assert_eq(apply(t, why), 0, "%s", why);
	begin(24, ZK_OP_CREATE, 0);
	zf_create_body(&txn_buf, "/q2/y", "", false, -1);
	cr_assert_eq(apply(t, why), -EBADMSG);
	cr_assert(strstr(why, "cannot be parsed"), "%s", why);
	zk_tree_free(t);
}

Test(migrate_zk, quotas_set_up_from_a_snapshot)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_header(&w, "ZKSN");
	jute_write_int(&w, 0);
	jute_write_int(&w, 0);
	zf_node(&w, "", "", -1, 0, 2, 0);
	zf_node(&w, "/zookeeper", "", -1, 0, 1, 0);
	zf_node(&w, "/zookeeper/quota", "", -1, 0, 1, 0);
	zf_node(&w, "/zookeeper/quota/q", NULL, -1, 1, 2, 0);
	zf_node(&w, "/zookeeper/quota/q/zookeeper_limits", "count=9,bytes=-1", -1, 2, 0, 0);
	zf_node(&w, "/zookeeper/quota/q/zookeeper_stats", "count=1,bytes=1", -1, 3, 0, 0);
	zf_node(&w, "/q", "abc", -1, 4, 1, 0);
	zf_node(&w, "/q/r", "de", -1, 5, 0, 0);
	zf_str(&w, "/");
	zf_seal(&w);
	struct zk_tree *t;
	struct zk_snap_info info;
	char why[512];
	cr_assert_eq(load("snapshot.5", &w, &t, &info, why), 0, "%s", why);
	/* recounted at load (DataTree.setupQuota), whatever the file said */
	expect_data(t, "/zookeeper/quota/q/zookeeper_stats", "count=2,bytes=5");
	const char *const *roots;
	cr_assert_eq(zk_tree_quota_roots(t, &roots), 1);
	cr_assert_str_eq(roots[0], "/q");
	zk_tree_free(t);
	jute_writer_free(&w);
}

Test(migrate_zk, session_passwords_as_zookeeper)
{
	/* java.util.Random(id ^ 0xB3415C00).nextBytes(16), computed with Java 17 */
	struct {
		int64_t id;
		const char *hex;
	} v[] = {
		{ 0x1000012345LL, "f7a45e0ff4dcbcb829885747f0b3eb9e" },
		{ 0x100000ab01230000LL, "bfd62b7de03a4315351d06a329565660" },
		{ 1, "054cc74a37327db215e702e20c73f005" },
		{ -5, "d47144b5e45e45c49c3b7fdcd66257ba" },
	};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		uint8_t pw[16];
		char hex[33];
		zk_session_passwd(v[i].id, pw);
		for (int k = 0; k < 16; k++)
			snprintf(hex + 2 * k, 3, "%02x", pw[k]);
		cr_assert_str_eq(hex, v[i].hex);
	}
}
