/*
 * test_pipeline_snapshot.c — snapshots in the raft thread's loop (raft/
 * pipeline_snapshot.c, pipeline_recover.c), driven through the hub as in
 * test_pipeline.c, with a real store, log and snapshot directory:
 *
 *   - restart equivalence: the store a restart builds from the newest snapshot and
 *     the log after it, and the one it builds from the whole log alone, both equal
 *     the store as it was before the stop (whole-store dumps, every node kind);
 *   - a damaged newest snapshot: the restart starts from the one before it (and a
 *     longer tail of the log) and builds the same store;
 *   - a log that does not follow the snapshot (segments missing): the server refuses
 *     to start; compaction keeps the log after the oldest kept snapshot;
 *   - csnp (raft_pipeline_request_snapshot) takes one at once.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/hub.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "raft/pipeline.h"
#include "snapshot/snap_format.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "store_dump_util.h"

#define CONN_ID 5 /* worker 0, slot 5 */

static char dir[256];
static struct rk_config cfg;
static struct hub hub;
static struct store *store;
static struct raft_pipeline *pipe_;
static int32_t next_xid = 1;
static int pending; /* proposals not answered yet */

static void config_for(int snap_count, int prealloc_kb)
{
	char err[256];
	config_defaults(&cfg);
	snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
	cfg.log_prealloc_kb = prealloc_kb;
	cfg.snap_count = snap_count;
	cfg.force_sync = false; /* the test is about what is on disk at a clean stop */
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
}

static int try_start(void)
{
	struct store_config sc = { .config_text = "" };
	store = store_create(&sc);
	cr_assert_not_null(store);
	cr_assert_eq(hub_init(&hub, 1), 0);
	int rc = raft_pipeline_create(&cfg, store, &hub, &pipe_);
	if (rc < 0) {
		hub_destroy(&hub);
		store_destroy(store);
		store = NULL;
		return rc;
	}
	cr_assert_eq(raft_pipeline_start(pipe_), 0);
	return 0;
}

static void start(void)
{
	cr_assert_eq(try_start(), 0);
}

static void stop(void)
{
	atomic_store(&hub.stopping, true);
	raft_pipeline_join(pipe_);
	raft_pipeline_destroy(pipe_);
	hub_destroy(&hub);
	store_destroy(store);
	store = NULL;
	atomic_store(&hub.stopping, false);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rk-pipesnap-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	next_xid = 1;
	pending = 0;
}

static void teardown(void)
{
	if (store)
		stop();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(pipeline_snapshot, .init = setup, .fini = teardown, .timeout = 60);

static void propose_as(int64_t session, int32_t opcode, const void *body, size_t len)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	jute_writer_reserve(&w, sizeof(struct rk_msg));
	entry_encode(&w, session, opcode, false, NULL, 0, body, len);
	cr_assert(jute_writer_ok(&w));
	struct rk_msg *m = (struct rk_msg *)w.buf;
	memset(m, 0, sizeof *m);
	m->kind = RK_MSG_PROPOSAL;
	m->xid = next_xid++;
	m->conn_id = CONN_ID;
	m->session_id = session;
	m->len = (uint32_t)(w.len - sizeof *m);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	cr_assert(hub_to_raft(&hub, 0, m, &ring));
	io_uring_queue_exit(&ring);
	pending++;
}

/* Waits for the answer of every proposal made so far (events and the rest skipped). */
static void drain(void)
{
	for (int waited = 0; pending > 0; ) {
		struct rk_msg *m = hub_from_raft(&hub, 0);
		if (!m) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			cr_assert_lt(++waited, 20000, "%d proposals unanswered", pending);
			continue;
		}
		if (m->kind == RK_MSG_REPLY || m->kind == RK_MSG_SESSION_CREATED)
			pending--;
		free(m);
	}
}

static void session_open(int64_t id, int32_t timeout_ms)
{
	struct jute_writer b;
	jute_writer_init(&b, 64);
	uint8_t passwd[16];
	memset(passwd, (int)(id & 0xff), sizeof passwd);
	jute_write_int(&b, timeout_ms);
	jute_write_buffer(&b, passwd, 16);
	propose_as(id, ZK_OP_CREATE_SESSION, b.buf, b.len);
	jute_writer_free(&b);
}

static void create_as(int64_t session, const char *path, const char *data, int32_t flags)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 16);
	jute_write_string(&w, path, (int32_t)strlen(path));
	jute_write_buffer(&w, data, data ? (int32_t)strlen(data) : -1);
	jute_write_int(&w, 1);
	jute_write_int(&w, ZK_PERM_ALL);
	jute_write_string(&w, "world", 5);
	jute_write_string(&w, "anyone", 6);
	jute_write_int(&w, flags);
	propose_as(session, flags == ZK_CREATE_CONTAINER ? ZK_OP_CREATE_CONTAINER : ZK_OP_CREATE, w.buf, w.len);
	jute_writer_free(&w);
}

static void path_op(int64_t session, int32_t opcode, const char *path, const char *data)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 16);
	jute_write_string(&w, path, (int32_t)strlen(path));
	if (opcode == ZK_OP_SET_DATA)
		jute_write_buffer(&w, data, data ? (int32_t)strlen(data) : -1);
	jute_write_int(&w, -1);
	propose_as(session, opcode, w.buf, w.len);
	jute_writer_free(&w);
}

/* Writes of every kind over three sessions, `rounds` times; `tag` varies the data. */
static void workload(int rounds, int tag)
{
	char path[64], data[64];
	for (int r = 0; r < rounds; r++) {
		int k = tag * 1000 + r;
		snprintf(path, sizeof path, "/w/n%d", k);
		snprintf(data, sizeof data, "value %d", k);
		create_as(0x101, path, data, 0);
		snprintf(path, sizeof path, "/w/n%d", k - 3);
		path_op(0x101, ZK_OP_SET_DATA, path, data);
		if (r % 4 == 0)
			path_op(0x101, ZK_OP_DELETE, path, NULL);
		create_as(0x102, "/w/seq-", data, ZK_CREATE_PERSISTENT_SEQUENTIAL);
		snprintf(path, sizeof path, "/w/eph%d", k);
		create_as(r % 2 ? 0x102 : 0x103, path, NULL, ZK_CREATE_EPHEMERAL);
		if (r % 10 == 0) {
			snprintf(path, sizeof path, "/box%d", k);
			create_as(0x101, path, NULL, ZK_CREATE_CONTAINER);
			snprintf(path, sizeof path, "/box%d/in", k);
			create_as(0x101, path, "x", 0);
		}
	}
}

static void base_tree(void)
{
	session_open(0x101, 60000);
	session_open(0x102, 60000);
	session_open(0x103, 45000);
	create_as(0x101, "/w", "root", 0);
	create_as(0x101, "/zookeeper/quota/w", NULL, 0);
	create_as(0x101, "/zookeeper/quota/w/zookeeper_limits", "count=1000000,bytes=-1=;byteHardLimit=-1;countHardLimit=-1", 0);
	create_as(0x101, "/zookeeper/quota/w/zookeeper_stats", "count=0,bytes=0", 0);
	drain();
}

static struct raft_stats stats(void)
{
	struct raft_stats rs;
	raft_pipeline_stats(pipe_, &rs);
	return rs;
}

static void wait_snapshots(uint64_t count)
{
	for (int i = 0; i < 5000 && (stats().snap_count < count || stats().snap_in_progress); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_geq(stats().snap_count, count);
}

/* mv <dir>/<from> <dir>/<to>, or rm -rf <dir>/<from> when to is NULL. */
static void move_in_dir(const char *from, const char *to)
{
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/%s", dir, from);
	if (!to) {
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf %s", a);
		cr_assert_eq(system(cmd), 0);
		return;
	}
	snprintf(b, sizeof b, "%s/%s", dir, to);
	cr_assert_eq(rename(a, b), 0);
}

/* csnp, and waits until the snapshot it asked for is on disk. */
static void snapshot_now(void)
{
	uint64_t count = stats().snap_count;
	cr_assert_gt(raft_pipeline_request_snapshot(pipe_), 0);
	wait_snapshots(count + 1);
}

static int count_files(const char *sub, const char *prefix)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, sub);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

Test(pipeline_snapshot, snapshot_plus_tail_and_the_whole_log_build_the_same_store)
{
	/* Snapshots on csnp only, so the tail after the last one is known; one segment
	 * holds the whole log: it is never compacted here. */
	config_for(1000000, 4096);
	start();
	base_tree();
	workload(30, 1);
	drain();
	snapshot_now();
	workload(30, 3);
	drain();
	snapshot_now();
	workload(7, 2); /* a tail after the last snapshot */
	path_op(0x103, ZK_OP_CLOSE_SESSION, "", NULL);
	drain();
	struct raft_stats rs = stats();
	cr_assert_gt(rs.snap_last_index, 100);
	cr_assert_lt(rs.snap_last_index, rs.applied_index, "a tail remains after the snapshot");
	char *live = t_store_dump(store);
	stop();
	cr_assert_geq(count_files("snapshot", "snapshot."), 2);

	start(); /* newest snapshot + the log after it */
	char *from_snapshot = t_store_dump(store);
	cr_assert_str_eq(from_snapshot, live);
	stop();

	move_in_dir("snapshot", NULL); /* the whole log alone */
	start();
	cr_assert_eq(stats().snap_last_index, 0);
	char *from_log = t_store_dump(store);
	cr_assert_str_eq(from_log, live);
	free(live);
	free(from_snapshot);
	free(from_log);
}

/* The index of the newest complete snapshot in the directory. */
static uint64_t newest_on_disk(void)
{
	char path[512];
	snprintf(path, sizeof path, "%s/snapshot", dir);
	DIR *d = opendir(path);
	cr_assert_not_null(d);
	uint64_t newest = 0, index;
	struct dirent *e;
	while ((e = readdir(d)))
		if (snap_file_name_parse(e->d_name, &index) && index > newest)
			newest = index;
	closedir(d);
	cr_assert_gt(newest, 0);
	return newest;
}

static void flip_middle(const char *path)
{
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, st.st_size / 2), 1);
	b ^= 0xff;
	cr_assert_eq(pwrite(fd, &b, 1, st.st_size / 2), 1);
	close(fd);
}

Test(pipeline_snapshot, a_damaged_newest_snapshot_restarts_from_the_one_before)
{
	config_for(1000000, 4096);
	start();
	base_tree();
	workload(25, 1);
	drain();
	snapshot_now();
	workload(25, 3);
	drain();
	snapshot_now();
	workload(5, 2);
	drain();
	char *live = t_store_dump(store);
	stop();
	uint64_t newest = newest_on_disk();
	char name[SNAP_NAME_MAX], path[512];
	snap_file_name(name, newest, false);
	snprintf(path, sizeof path, "%s/snapshot/%s", dir, name);
	flip_middle(path);
	start();
	uint64_t used = stats().snap_last_index;
	cr_assert_lt(used, newest, "started from an older snapshot");
	cr_assert_gt(used, 0);
	char *got = t_store_dump(store);
	cr_assert_str_eq(got, live);
	free(got);
	free(live);
	snprintf(path, sizeof path, "%s/snapshot/%s.damaged", dir, name);
	cr_assert_eq(access(path, F_OK), 0, "set aside for the operator");
}

/* A started server with a tree and three snapshots of it (the retain count). */
static void three_snapshots(void)
{
	config_for(1000000, 4096);
	start();
	base_tree();
	for (int i = 0; i < 3; i++) {
		workload(5, i);
		drain();
		snapshot_now();
	}
}

/* A kill between a snapshot's rename and its purge leaves one too many: the start
 * purges it (snapRetainCount, 3 by default). */
Test(pipeline_snapshot, a_start_purges_to_the_retain_count)
{
	three_snapshots();
	stop();
	cr_assert_eq(count_files("snapshot", "snapshot."), 3);
	char oldest[SNAP_NAME_MAX], extra[SNAP_NAME_MAX], cmd[1400];
	uint64_t *idx;
	size_t count;
	char sdir[512];
	snprintf(sdir, sizeof sdir, "%s/snapshot", dir);
	cr_assert_eq(snap_list(sdir, false, &idx, &count), 0);
	cr_assert_eq(count, 3);
	snap_file_name(oldest, idx[2], false);
	snap_file_name(extra, 1, false);
	uint64_t oldest_index = idx[2];
	free(idx);
	snprintf(cmd, sizeof cmd, "cp %s/%s %s/%s", sdir, oldest, sdir, extra);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(count_files("snapshot", "snapshot."), 4);
	start();
	cr_assert_eq(count_files("snapshot", "snapshot."), 3);
	snprintf(cmd, sizeof cmd, "%s/%s", sdir, extra);
	cr_assert_neq(access(cmd, F_OK), 0, "the oldest went");
	struct raft_stats rs;
	raft_pipeline_stats(pipe_, &rs);
	cr_assert_eq(rs.snap_oldest_kept, oldest_index, "the log is kept from the oldest left, not the one purged");
}

/* A purge at start that fails (here a directory squats on the name the oldest is
 * renamed to before its unlink; root ignores permissions) leaves the server serving,
 * every snapshot in place and the log kept from the oldest of them. */
Test(pipeline_snapshot, a_start_purge_that_fails_keeps_the_log_for_every_snapshot_left)
{
	three_snapshots();
	char *live = t_store_dump(store);
	stop();
	char sdir[512], extra[SNAP_NAME_MAX], squat[SNAP_NAME_MAX], cmd[4096];
	snprintf(sdir, sizeof sdir, "%s/snapshot", dir);
	uint64_t *idx;
	size_t count;
	cr_assert_eq(snap_list(sdir, false, &idx, &count), 0);
	cr_assert_eq(count, 3);
	char oldest[SNAP_NAME_MAX];
	snap_file_name(oldest, idx[2], false);
	free(idx);
	snap_file_name(extra, 1, false);
	snap_file_name(squat, 1, true);
	snprintf(cmd, sizeof cmd, "cp %s/%s %s/%s && mkdir -p %s/%s/in", sdir, oldest, sdir, extra, sdir, squat);
	cr_assert_eq(system(cmd), 0);
	start();
	cr_assert_eq(count_files("snapshot", "snapshot."), 4 + 1, "4 snapshots and the squatter");
	struct raft_stats rs;
	raft_pipeline_stats(pipe_, &rs);
	cr_assert_eq(rs.snap_oldest_kept, 1, "the log is kept from the oldest still on disk");
	char *got = t_store_dump(store);
	cr_assert_str_eq(got, live);
	free(got);
	free(live);
	create_as(0x101, "/after-the-failed-purge", "x", 0);
	drain();
	got = t_store_dump(store);
	cr_assert(strstr(got, "/after-the-failed-purge data=78 "), "it serves writes: %.300s", got);
	free(got);
	snprintf(cmd, sizeof cmd, "rm -rf %s/%s", sdir, squat);
	cr_assert_eq(system(cmd), 0);
}

Test(pipeline_snapshot, compaction_keeps_the_log_after_the_oldest_snapshot_and_a_gap_refuses_to_start)
{
	/* Small segments (the least preAllocSize allows: two largest batches) and a
	 * snapshot every ~200 entries: the log rolls and is compacted. */
	config_for(400, 4);
	start();
	base_tree();
	char big[2048];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = 0;
	char path[64];
	for (int i = 0; i < 6000; i++) {
		snprintf(path, sizeof path, "/w/big%d", i % 50);
		if (i < 50)
			create_as(0x101, path, big, 0);
		else
			path_op(0x101, ZK_OP_SET_DATA, path, big);
		if (i % 500 == 499)
			drain();
	}
	drain();
	wait_snapshots(5);
	for (int i = 0; i < 2000 && stats().log_segments_compacted == 0; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	struct raft_stats rs = stats();
	cr_assert_gt(rs.log_segments_compacted, 0);
	cr_assert_gt(rs.first_index, 1, "the log starts after its compacted prefix");
	cr_assert_leq(rs.first_index, rs.snap_oldest_kept + 1, "the log covers every kept snapshot");
	char *live = t_store_dump(store);
	stop();
	cr_assert_leq(count_files("snapshot", "snapshot."), 3, "autopurge.snapRetainCount");

	start();
	char *got = t_store_dump(store);
	cr_assert_str_eq(got, live);
	free(got);
	stop();

	/* without the snapshots the log does not reach back to 1: refuse */
	move_in_dir("snapshot", "snapshot.away");
	cr_assert_eq(try_start(), -EUCLEAN);
	move_in_dir("snapshot.away", "snapshot");
	start();
	got = t_store_dump(store);
	cr_assert_str_eq(got, live);
	free(got);
	free(live);
}

Test(pipeline_snapshot, csnp_takes_one_at_once)
{
	config_for(100000, 4096);
	start();
	base_tree();
	workload(5, 1);
	drain();
	cr_assert_eq(stats().snap_count, 0);
	int64_t at = raft_pipeline_request_snapshot(pipe_);
	cr_assert_gt(at, 0);
	wait_snapshots(1);
	struct raft_stats rs = stats();
	cr_assert_geq(rs.snap_last_index, (uint64_t)at);
	cr_assert_gt(rs.snap_last_bytes, 0);
	cr_assert_gt(rs.snap_last_nodes, 20);
	/* nothing new: a second request leaves the snapshot as it is */
	raft_pipeline_request_snapshot(pipe_);
	struct timespec ts = { 0, 200000000 };
	nanosleep(&ts, NULL);
	cr_assert_eq(stats().snap_count, 1);
}

/*
 * ZooKeeper's "Too busy to snap, skipping": a snapCount that ends while a snapshot is
 * being written is dropped and counted, not queued behind it. A 20,000-node tree
 * keeps each snapshot busy for milliseconds (walk, compression, two fsyncs) while
 * 10-entry windows end under it; the store is still whole after a restart.
 */
Test(pipeline_snapshot, a_count_that_ends_during_a_snapshot_is_skipped)
{
	config_for(10, 65536);
	start();
	base_tree();
	char path[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof path, "/w/bulk%d", i);
		create_as(0x101, path, "0123456789abcdef0123456789abcdef", 0);
		if (i % 500 == 499)
			drain();
	}
	drain();
	for (int r = 0; r < 300 && stats().snap_skipped_count == 0; r++) {
		workload(1, 100 + r);
		drain();
	}
	wait_snapshots(1);
	struct raft_stats rs = stats();
	cr_assert_geq(rs.snap_skipped_count, 1, "%llu snapshots, none skipped", (unsigned long long)rs.snap_count);
	char *live = t_store_dump(store);
	stop();
	start();
	char *again = t_store_dump(store);
	cr_assert_str_eq(again, live);
	free(again);
	free(live);
}
