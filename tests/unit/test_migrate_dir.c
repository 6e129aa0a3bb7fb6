/*
 * test_migrate_dir.c — ringkeeper-migrate on whole directories: which snapshot and
 * logs are read, continuity (a gap, a late log, an epoch change), the digest check,
 * and the RingKeeper directory written from the tree (snapshot at the last zxid, hard
 * state, empty log, myid), loaded back and compared node by node (--verify), which
 * must also see a difference when there is one.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "migrate/zk_read.h"
#include "raft/hardstate.h"
#include "zk_files_util.h"

static char dir[256], v2[300], out[300];
static FILE *quiet;

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rk-migrate-dir-%d", (int)getpid());
	snprintf(v2, sizeof v2, "%s/zk/version-2", dir);
	snprintf(out, sizeof out, "%s/rk", dir);
	zf_rm_rf(dir);
	zf_mkdirs(v2);
	quiet = fopen("/dev/null", "w");
}

static void teardown(void)
{
	zf_rm_rf(dir);
	fclose(quiet);
}

TestSuite(migrate_dir, .init = setup, .fini = teardown);

static void write_at(const char *name, const struct jute_writer *w)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", v2, name);
	zf_write_file(path, w->buf, w->len);
}

static void snapshot_at(const char *name)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_snapshot(&w, false, 0);
	write_at(name, &w);
	jute_writer_free(&w);
}

/* A log named after `first`: txns first.. of createSession, creates of /k<zxid>,
 * setData of /a, a delete of /k<first+1>, closeSession of ZF_SESSION. zxids[] lets a
 * test write any sequence (count of them). digest_last: a TxnDigest on the last one. */
static void log_with(const char *name, const int64_t *zxids, int count, bool digest_last, int64_t digest)
{
	struct jute_writer log, e;
	jute_writer_init(&log, 1 << 20);
	jute_writer_init(&e, 1 << 16);
	zf_header(&log, "ZKLG");
	for (int i = 0; i < count; i++) {
		jute_writer_reset(&e);
		int64_t z = zxids[i];
		char path[32];
		snprintf(path, sizeof path, "/k%llx", (unsigned long long)z);
		switch (i % 4) {
		case 0:
			zf_txn_header(&e, 0x55, z, ZK_OP_CREATE_SESSION);
			jute_write_int(&e, 6000);
			break;
		case 1:
		case 2:
			zf_txn_header(&e, 0x55, z, ZK_OP_CREATE);
			zf_create_body(&e, path, "v", i % 4 == 2, -1);
			break;
		case 3:
			zf_txn_header(&e, 0x55, z, ZK_OP_SET_DATA);
			zf_str(&e, "/a");
			zf_buf(&e, "again");
			jute_write_int(&e, (int32_t)i);
			break;
		}
		if (digest_last && i == count - 1) {
			jute_write_int(&e, 2);
			jute_write_long(&e, digest);
		}
		zf_record(&log, &e);
	}
	write_at(name, &log);
	jute_writer_free(&log);
	jute_writer_free(&e);
}

static int read_dir(struct zk_tree **t, struct zk_read_report *rep, char *why, bool ignore_digest)
{
	char data[300];
	snprintf(data, sizeof data, "%s/zk", dir);
	struct zk_read_options opt = { .data_dir = data, .ignore_digest = ignore_digest, .out = quiet };
	return zk_read_dir(&opt, t, rep, why, 1024);
}

Test(migrate_dir, snapshot_then_logs)
{
	snapshot_at("snapshot.5");
	int64_t a[] = { 1, 2, 3, 4, 5, 6, 7 }, b[] = { 8, 9, 10, 11 };
	log_with("log.1", a, 7, false, 0);
	log_with("log.8", b, 4, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	cr_assert_eq(rep.snapshot_zxid, 5);
	cr_assert_eq(rep.log_files, 2);
	cr_assert_eq(rep.txns_before, 5);
	cr_assert_eq(rep.txns_applied, 6);
	cr_assert_eq(rep.last_zxid, 11);
	cr_assert_eq(zk_tree_last_zxid(t), 11);
	cr_assert(!rep.final_digest_checked);
	/* zxid 6 was a create (i % 4 == 1 at index 5), 7 an ephemeral create of 0x55,
	 * 8 createSession 0x55, 9 a create, 10 an ephemeral, 11 setData of /a */
	cr_assert_not_null(zk_tree_find(t, "/k6", 3));
	cr_assert_not_null(zk_tree_find(t, "/k9", 3));
	const struct zk_node *e = zk_tree_find(t, "/ka", 3);
	cr_assert_not_null(e);
	cr_assert_eq(e->ephemeral_owner, 0x55);
	const struct zk_node *a_node = zk_tree_find(t, "/a", 2);
	cr_assert_eq(a_node->mzxid, 11);
	cr_assert_eq(a_node->version, 3);
	zk_tree_free(t);
}

Test(migrate_dir, newest_incomplete_snapshot_falls_back)
{
	snapshot_at("snapshot.5");
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_snapshot(&w, false, 0);
	w.len /= 2;
	write_at("snapshot.9", &w);
	jute_writer_free(&w);
	int64_t a[] = { 6, 7, 8, 9, 10 };
	log_with("log.6", a, 5, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	cr_assert_eq(rep.snapshot_zxid, 5);
	cr_assert_eq(rep.snapshots_skipped, 1);
	cr_assert_eq(rep.last_zxid, 10);
	zk_tree_free(t);
}

Test(migrate_dir, gap_and_late_log_refused)
{
	snapshot_at("snapshot.5");
	int64_t a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 9, 10 };
	log_with("log.1", a, 6, false, 0);
	log_with("log.9", b, 2, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), -EBADMSG);
	cr_assert(strstr(why, "txn 0x9 does not continue 0x6") && strstr(why, "gap"), "%s", why);
	/* a log that starts after the snapshot's next zxid */
	char path[512];
	snprintf(path, sizeof path, "%s/log.1", v2);
	unlink(path);
	cr_assert_eq(read_dir(&t, &rep, why, false), -EBADMSG);
	cr_assert(strstr(why, "does not continue 0x5 (the snapshot's zxid)"), "%s", why);
	/* a zxid that goes back */
	int64_t c[] = { 6, 7, 7 };
	unlink(path);
	snprintf(path, sizeof path, "%s/log.9", v2);
	unlink(path);
	log_with("log.6", c, 3, false, 0);
	cr_assert_eq(read_dir(&t, &rep, why, false), -EBADMSG);
	cr_assert(strstr(why, "txn 0x7 does not continue 0x7"), "%s", why);
}

Test(migrate_dir, epoch_change_continues)
{
	snapshot_at("snapshot.5");
	int64_t a[] = { 6, 7, 0x300000001LL, 0x300000002LL, 0x500000001LL };
	log_with("log.6", a, 5, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	cr_assert_eq(rep.last_zxid, 0x500000001LL);
	zk_tree_free(t);
	/* a new epoch that does not start at counter 1 is a gap */
	int64_t b[] = { 6, 7, 0x300000002LL };
	log_with("log.6", b, 3, false, 0);
	cr_assert_eq(read_dir(&t, &rep, why, false), -EBADMSG);
	cr_assert(strstr(why, "does not continue"), "%s", why);
}

Test(migrate_dir, no_snapshot_refused)
{
	int64_t a[] = { 1, 2 };
	log_with("log.1", a, 2, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), -ENOENT);
	cr_assert(strstr(why, "no snapshot"), "%s", why);
}

Test(migrate_dir, final_digest_checked)
{
	snapshot_at("snapshot.5");
	int64_t a[] = { 6, 7, 8 };
	/* first learn the right digest: the model's after the same txns */
	log_with("log.6", a, 3, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	int64_t good = (int64_t)zk_tree_digest(t);
	zk_tree_free(t);
	log_with("log.6", a, 3, true, good);
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	cr_assert(rep.final_digest_checked && rep.final_digest_ok);
	zk_tree_free(t);
	log_with("log.6", a, 3, true, good + 1);
	cr_assert_eq(read_dir(&t, &rep, why, false), -EBADMSG);
	cr_assert(strstr(why, "digest"), "%s", why);
	cr_assert_eq(read_dir(&t, &rep, why, true), 0, "%s", why);
	cr_assert(rep.final_digest_checked && !rep.final_digest_ok);
	zk_tree_free(t);
}

Test(migrate_dir, digest_of_known_nodes)
{
	/* DigestCalculator: CRC-32 of path, data and the 60-byte StatPersisted; the root
	 * as "", nothing under /zookeeper/; the tree's is the sum. */
	snapshot_at("snapshot.5");
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	uint64_t sum = 0;
	for (const struct zk_node *n = zk_tree_root(t); n; n = zk_tree_next(n)) {
		if (strncmp(n->path, "/zookeeper/", 11) == 0)
			continue;
		uint8_t st[60];
		struct jute_writer w;
		jute_writer_init(&w, 128);
		jute_write_long(&w, n->czxid);
		jute_write_long(&w, n->mzxid);
		jute_write_long(&w, n->pzxid);
		jute_write_long(&w, n->ctime);
		jute_write_long(&w, n->mtime);
		jute_write_int(&w, n->version);
		jute_write_int(&w, n->cversion);
		jute_write_int(&w, n->aversion);
		jute_write_long(&w, n->ephemeral_owner);
		memcpy(st, w.buf, 60);
		jute_writer_free(&w);
		uLong c = crc32(0L, Z_NULL, 0);
		if (strcmp(n->path, "/") != 0)
			c = crc32(c, (const Bytef *)n->path, n->path_len);
		if (n->data_len > 0)
			c = crc32(c, n->data, (uInt)n->data_len);
		sum += crc32(c, st, 60);
	}
	cr_assert_eq(zk_tree_digest(t), sum);
	zk_tree_free(t);
}

/* ---------------------------------------------------------------- writing */

static struct zk_tree *converted_tree(void)
{
	snapshot_at("snapshot.5");
	int64_t a[] = { 0x100000001LL, 0x100000002LL, 0x100000003LL, 0x100000004LL };
	log_with("log.100000001", a, 4, false, 0);
	struct zk_tree *t;
	struct zk_read_report rep;
	char why[1024];
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	return t;
}

Test(migrate_dir, write_then_verify)
{
	struct zk_tree *t = converted_tree();
	char zkdata[300], why[1024];
	snprintf(zkdata, sizeof zkdata, "%s/zk", dir);
	zf_write_file(strcat(strcpy((char[400]){ 0 }, zkdata), "/myid"), "3\n", 2);
	struct migrate_write_options wo = { .out_dir = out, .zk_data_dir = zkdata, .out = quiet };
	struct migrate_write_report wr;
	cr_assert_eq(migrate_write(t, &wo, &wr, why, sizeof why), 0, "%s", why);
	cr_assert_eq(wr.index, 0x100000004ULL);
	cr_assert_eq(wr.term, 1);
	cr_assert_eq(wr.myid, 3);
	cr_assert_eq(wr.sessions, 2); /* ZF_SESSION and 0x55 */
	cr_assert_eq(wr.nodes, zk_tree_node_count(t) - 1); /* not /zookeeper/config: RingKeeper's own */
	struct hardstate hs;
	cr_assert_eq(hardstate_load(out, &hs, why, sizeof why), 0, "%s", why);
	cr_assert_eq(hs.term, 1);
	cr_assert_eq(hs.commit, 0x100000004ULL);
	cr_assert_eq(hs.vote, 0);
	char path[512];
	snprintf(path, sizeof path, "%s/snapshot/snapshot.%020llu.rk", out, 0x100000004ULL);
	cr_assert_eq(access(path, R_OK), 0, "%s", path);
	snprintf(path, sizeof path, "%s/log", out);
	DIR *d = opendir(path);
	cr_assert_not_null(d);
	int entries = 0;
	for (struct dirent *e; (e = readdir(d));)
		entries += e->d_name[0] != '.';
	closedir(d);
	cr_assert_eq(entries, 0, "the log starts empty");
	snprintf(path, sizeof path, "%s/myid", out);
	FILE *f = fopen(path, "r");
	int id = 0;
	cr_assert_eq(fscanf(f, "%d", &id), 1);
	fclose(f);
	cr_assert_eq(id, 3);

	struct migrate_verify_report vr;
	char *text = NULL;
	size_t text_len = 0;
	FILE *diffs = open_memstream(&text, &text_len);
	cr_assert_eq(migrate_verify(t, out, diffs, 100, &vr, why, sizeof why), 0, "%s", why);
	fflush(diffs);
	cr_assert_eq(vr.differences, 0, "%s", text);
	cr_assert_eq(vr.nodes_compared, zk_tree_node_count(t) - 1);
	cr_assert_eq(vr.sessions_compared, 2);
	cr_assert_eq(vr.index, 0x100000004ULL);

	/* the same snapshot against a tree one txn further: verify sees it */
	struct jute_writer e;
	jute_writer_init(&e, 1 << 16);
	zf_txn_header(&e, 0x55, 0x100000005LL, ZK_OP_SET_DATA);
	zf_str(&e, "/a");
	zf_buf(&e, "later!");
	jute_write_int(&e, 9);
	struct zk_txn txn;
	cr_assert_eq(zk_txn_decode(e.buf, e.len, &txn, why, sizeof why), 0);
	cr_assert_eq(zk_tree_apply(t, &txn, why, sizeof why), 0);
	cr_assert_eq(migrate_verify(t, out, diffs, 100, &vr, why, sizeof why), 0, "%s", why);
	fflush(diffs);
	/* index, and /a's data, dataLength, version, mzxid and mtime */
	cr_assert_eq(vr.differences, 6, "%s", text);
	cr_assert(strstr(text, "/a: data differs") && strstr(text, "/a: mzxid"), "%s", text);
	fclose(diffs);
	free(text);
	jute_writer_free(&e);

	/* a second conversion into the same directory is refused */
	cr_assert_eq(migrate_write(t, &wo, &wr, why, sizeof why), -EEXIST);
	cr_assert(strstr(why, "holds a RingKeeper state already"), "%s", why);
	zk_tree_free(t);
}

Test(migrate_dir, write_refuses_myid_conflict_and_empty_history)
{
	struct zk_tree *t = converted_tree();
	char why[1024];
	zf_mkdirs(out);
	char path[512];
	snprintf(path, sizeof path, "%s/myid", out);
	zf_write_file(path, "2\n", 2);
	struct migrate_write_options wo = { .out_dir = out, .myid = 4, .out = quiet };
	struct migrate_write_report wr;
	cr_assert_eq(migrate_write(t, &wo, &wr, why, sizeof why), -EEXIST);
	cr_assert(strstr(why, "myid says 2, not 4"), "%s", why);
	wo.myid = 2;
	cr_assert_eq(migrate_write(t, &wo, &wr, why, sizeof why), 0, "%s", why);
	zk_tree_free(t);
	/* zxid 0: nothing ever committed */
	zf_rm_rf(dir);
	zf_mkdirs(v2);
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	zf_header(&w, "ZKSN");
	jute_write_int(&w, 0);
	jute_write_int(&w, 0);
	zf_node(&w, "", "", -1, 0, 0, 0);
	zf_str(&w, "/");
	zf_seal(&w);
	write_at("snapshot.0", &w);
	jute_writer_free(&w);
	struct zk_read_report rep;
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	wo.myid = 0;
	cr_assert_eq(migrate_write(t, &wo, &wr, why, sizeof why), -EINVAL);
	cr_assert(strstr(why, "never committed"), "%s", why);
	zk_tree_free(t);
	/* epoch 0x8000: past the 48-bit zxids a RingKeeper node keeps */
	zf_rm_rf(dir);
	zf_mkdirs(v2);
	snapshot_at("snapshot.800000000001");
	cr_assert_eq(read_dir(&t, &rep, why, false), 0, "%s", why);
	cr_assert_eq(zk_tree_last_zxid(t), 0x800000000001LL);
	cr_assert_eq(migrate_write(t, &wo, &wr, why, sizeof why), -ERANGE);
	cr_assert(strstr(why, "0x800000000001") && strstr(why, "epoch 32768"), "%s", why);
	zk_tree_free(t);
}
