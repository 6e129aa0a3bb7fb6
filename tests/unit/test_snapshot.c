/*
 * test_snapshot.c — snapshot files (snapshot/): every node kind through a file and
 * back, with writes applied while the file is written; every damaged byte is caught
 * and the newest damaged snapshot is set aside for the one before it; purge keeps the
 * newest; leftovers of a crashed write are removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_test_util.h"
#include "snap_test_util.h"
#include "snapshot/snap_format.h"
#include "snapshot/snapshot.h"

static char dir[256];
static int load_threads = 2;

static void snap_setup(void)
{
	t_setup();
	snprintf(dir, sizeof dir, "/tmp/rk-snap-test-%d", (int)getpid());
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void snap_teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	t_teardown();
}

TestSuite(snapshot, .init = snap_setup, .fini = snap_teardown);

static void path_of(char *out, size_t cap, uint64_t index, const char *suffix)
{
	char name[SNAP_NAME_MAX];
	snap_file_name(name, index, false);
	snprintf(out, cap, "%s/%s%s", dir, name, suffix);
}

/* A snapshot of T.s as it is now; returns its index. */
static uint64_t write_now(struct snap_result *res)
{
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	uint64_t index = (uint64_t)store_snap_zxid(sn);
	cr_assert_eq(snap_write(dir, sn, index, 3, NULL, res), 0, "%s", res->why);
	store_snap_end(T.s, sn);
	return index;
}

static struct store *load_fresh(struct snap_loaded *out)
{
	struct store_config cfg = { .config_text = "" };
	struct store *s = store_create(&cfg);
	cr_assert_eq(snap_load_newest(dir, s, 1, load_threads, out), 0);
	return s;
}

static void assert_loads_as(const char *want, uint64_t index)
{
	struct snap_loaded ld;
	struct store *s = load_fresh(&ld);
	cr_assert(ld.found);
	cr_assert_eq(ld.index, index);
	cr_assert_eq(ld.term, 3);
	char *got = t_store_dump(s);
	cr_assert_str_eq(got, want);
	free(got);
	store_destroy(s);
}

Test(snapshot, every_node_kind_round_trips_through_a_file)
{
	t_build_every_kind();
	char *want = t_store_dump(T.s);
	struct snap_result res;
	uint64_t index = write_now(&res);
	struct store_stats st;
	store_stats(T.s, &st);
	cr_assert_eq(res.node_count, st.node_count - 1); /* /zookeeper/config is the configuration's */
	cr_assert_eq(res.session_count, 3);
	cr_assert_eq(res.index, index);
	struct stat fst;
	char path[512];
	path_of(path, sizeof path, index, "");
	cr_assert_eq(stat(path, &fst), 0);
	cr_assert_eq((uint64_t)fst.st_size, res.file_bytes);
	cr_assert_eq(snap_verify(path, NULL, 0), 0);
	assert_loads_as(want, index);
	free(want);
}

struct writer_arg {
	struct store_snap *sn;
	uint64_t index;
	struct snap_result res;
	_Atomic int done;
};

static void *writer_main(void *arg)
{
	struct writer_arg *w = arg;
	snap_write(dir, w->sn, w->index, 3, NULL, &w->res);
	atomic_store(&w->done, 1);
	return NULL;
}

Test(snapshot, writes_applied_while_the_file_is_written_are_not_in_it)
{
	t_build_every_kind();
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	char path[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof path, "/bulk%d", i);
		cr_assert_eq(t_create(path, "bulk data, some bytes to compress", 0), ZK_OK);
		if (i % 500 == 0)
			t_bodies_reset();
	}
	uint64_t rng = 99;
	t_bodies_reset();
	char *want = t_store_dump(T.s);
	struct writer_arg w = { .index = (uint64_t)T.zxid };
	cr_assert_eq(store_snap_begin(T.s, &w.sn), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	int writes = 0;
	while (!atomic_load(&w.done)) {
		t_random_write(&rng);
		snprintf(path, sizeof path, "/bulk%d", (int)(t_rand(&rng) % 20000));
		t_apply(ZK_OP_SET_DATA, t_set_body(path, "changed", -1));
		t_apply(ZK_OP_DELETE, t_path_int_body(path, -1));
		if (++writes % 100 == 0)
			t_bodies_reset();
	}
	pthread_join(th, NULL);
	cr_assert_eq(w.res.err, 0, "%s", w.res.why);
	store_snap_end(T.s, w.sn);
	cr_assert_gt(writes, 0);
	cr_assert_gt(w.res.image.nodes_copied, 0, "%d writes, none before the walk", writes);
	assert_loads_as(want, w.index);
	free(want);
}

static size_t count_node(void *ctx, const struct store_snap_node *node)
{
	(void)node;
	(*(size_t *)ctx)++;
	return 0;
}

/*
 * A write that fails part way (not cancelled) finishes the walk mark-only before it
 * returns (snap_write.c, writer_body): the walker has nothing left, so store_snap_end
 * has no marking to do on the applier; the next image is whole.
 */
Test(snapshot, a_failed_write_finishes_the_walk_and_the_next_image_is_whole)
{
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	uint64_t rng = 7;
	char path[64], data[101];
	for (int i = 0; i < 60000; i++) { /* 6 MB of values lz4 cannot shrink: 6 blocks */
		for (size_t k = 0; k < sizeof data - 1; k++)
			data[k] = (char)('!' + t_rand(&rng) % 90);
		data[sizeof data - 1] = 0;
		snprintf(path, sizeof path, "/r/n%d", i);
		cr_assert_eq(t_create(path, data, 0), ZK_OK);
		if (i % 500 == 0)
			t_bodies_reset();
	}
	t_bodies_reset();
	char *want = t_store_dump(T.s);
	/* Files past 256 KiB fail with EFBIG: the first block's write. */
	struct rlimit lim;
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
	struct rlimit small = { 256 << 10, lim.rlim_max }; /* the soft limit: it can go back */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	struct snap_result res;
	int rc = snap_write(dir, sn, (uint64_t)store_snap_zxid(sn), 3, NULL, &res);
	cr_assert_eq(rc, -EFBIG, "%d: %s", rc, res.why);
	size_t left = 0;
	cr_assert_not(store_snap_walk(sn, count_node, &left), "the writer left the walk unfinished");
	cr_assert_eq(left, 0);
	store_snap_end(T.s, sn);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct snap_loaded ld;
	struct store *none = load_fresh(&ld);
	cr_assert_not(ld.found, "no file of the failed write is left to load");
	store_destroy(none);
	/* A change after the failed image, then the next image: every node in it. */
	t_apply(ZK_OP_SET_DATA, t_set_body("/r/n5", "after", -1));
	free(want);
	want = t_store_dump(T.s);
	uint64_t index = write_now(&res);
	assert_loads_as(want, index);
	free(want);
}

Test(snapshot, a_paced_walk_rests_and_writes_the_same_tree)
{
	t_build_every_kind();
	cr_assert_eq(t_create("/p", NULL, 0), ZK_OK);
	char path[64], value[101];
	memset(value, 'v', 100);
	value[100] = '\0';
	struct jute_writer body;
	jute_writer_init(&body, 4096);
	for (int i = 0; i < 50000; i++) {
		snprintf(path, sizeof path, "/p/n%06d", i);
		jute_writer_reset(&body);
		t_create_fields(&body, path, value, 0);
		cr_assert_eq(t_apply(ZK_OP_CREATE, &body), ZK_OK);
	}
	jute_writer_free(&body);
	char *want = t_store_dump(T.s);
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	uint64_t index = (uint64_t)store_snap_zxid(sn);
	/* 50,000 nodes walk for milliseconds: a 100 us burst must rest many times */
	struct snap_write_ctl ctl = { .walk_burst_us = 100 };
	struct snap_result res;
	cr_assert_eq(snap_write(dir, sn, index, 3, &ctl, &res), 0, "%s", res.why);
	store_snap_end(T.s, sn);
	cr_assert_gt(res.walk_rests, 1, "rests %u in a walk of %llu us", res.walk_rests,
		     (unsigned long long)res.walk_us);
	cr_assert_geq(res.walk_us, (uint64_t)res.walk_rests * 100);
	assert_loads_as(want, index);
	free(want);

	/* unpaced (NULL and a zero burst): no rest */
	write_now(&res);
	cr_assert_eq(res.walk_rests, 0);
	atomic_bool cancel = true;
	ctl = (struct snap_write_ctl){ .cancel = &cancel, .walk_burst_us = 100 };
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	cr_assert_eq(snap_write(dir, sn, (uint64_t)store_snap_zxid(sn) + 1, 3, &ctl, &res), -ECANCELED);
	store_snap_end(T.s, sn);
}

Test(snapshot, a_node_larger_than_a_block_round_trips)
{
	size_t big = 3u << 20;
	char *data = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + (i * 7 + i / 4096) % 26);
	data[big] = 0;
	struct jute_writer *w = t_body();
	t_create_fields(w, "/big", data, 0);
	cr_assert_eq(t_apply(ZK_OP_CREATE, w), ZK_OK);
	free(data);
	char *want = t_store_dump(T.s);
	struct snap_result res;
	uint64_t index = write_now(&res);
	cr_assert_gt(res.raw_bytes, big);
	assert_loads_as(want, index);
	free(want);
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x10;
	cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

Test(snapshot, every_damaged_byte_is_caught)
{
	cr_assert_eq(t_create("/a", "x", 0), ZK_OK);
	struct snap_result res;
	uint64_t index = write_now(&res);
	char path[512];
	path_of(path, sizeof path, index, "");
	cr_assert_lt(res.file_bytes, 4096, "a small file, so every byte is tried");
	char why[256];
	for (off_t at = 0; at < (off_t)res.file_bytes; at++) {
		flip_byte(path, at);
		why[0] = 0;
		cr_assert_eq(snap_verify(path, why, sizeof why), -EBADMSG, "byte %lld went unnoticed", (long long)at);
		cr_assert_neq(why[0], 0);
		flip_byte(path, at);
	}
	cr_assert_eq(snap_verify(path, why, sizeof why), 0);
	/* cut short anywhere */
	for (off_t len = 0; len < (off_t)res.file_bytes; len += 7) {
		char cut[600];
		snprintf(cut, sizeof cut, "%s.cut", path);
		char cmd[1400];
		snprintf(cmd, sizeof cmd, "head -c %lld %s > %s", (long long)len, path, cut);
		cr_assert_eq(system(cmd), 0);
		cr_assert_eq(snap_verify(cut, why, sizeof why), -EBADMSG, "cut at %lld", (long long)len);
		unlink(cut);
	}
}

Test(snapshot, a_damaged_newest_snapshot_falls_back_to_the_one_before)
{
	t_build_every_kind();
	struct snap_result res;
	char *older = t_store_dump(T.s);
	uint64_t first = write_now(&res);
	cr_assert_eq(t_create("/after-first", "y", 0), ZK_OK);
	uint64_t second = write_now(&res);
	cr_assert_gt(second, first);
	char path[512], aside[512];
	path_of(path, sizeof path, second, "");
	path_of(aside, sizeof aside, second, ".damaged");
	flip_byte(path, (off_t)(res.file_bytes / 2));
	struct snap_loaded ld;
	struct store *s = load_fresh(&ld);
	cr_assert(ld.found);
	cr_assert_eq(ld.index, first);
	cr_assert_eq(ld.damaged_count, 1);
	char *got = t_store_dump(s);
	cr_assert_str_eq(got, older);
	free(got);
	store_destroy(s);
	cr_assert_neq(access(path, F_OK), 0, "the damaged one is set aside");
	cr_assert_eq(access(aside, F_OK), 0);
	/* the next start goes straight to the good one */
	s = load_fresh(&ld);
	cr_assert_eq(ld.index, first);
	cr_assert_eq(ld.damaged_count, 0);
	store_destroy(s);
	free(older);
}

Test(snapshot, nothing_valid_loads_nothing)
{
	struct snap_loaded ld;
	struct store *s = load_fresh(&ld);
	cr_assert(!ld.found);
	store_destroy(s);
	struct snap_result res;
	uint64_t index = write_now(&res);
	char path[512];
	path_of(path, sizeof path, index, "");
	cr_assert_eq(truncate(path, 10), 0);
	s = load_fresh(&ld);
	cr_assert(!ld.found);
	cr_assert_eq(ld.damaged_count, 1);
	cr_assert_eq(store_last_zxid(s), 0);
	store_destroy(s);
}

Test(snapshot, purge_keeps_the_newest_and_start_removes_leftovers)
{
	struct snap_result res;
	uint64_t idx[5];
	for (int i = 0; i < 5; i++) {
		char p[32];
		snprintf(p, sizeof p, "/n%d", i);
		cr_assert_eq(t_create(p, "x", 0), ZK_OK);
		idx[i] = write_now(&res);
	}
	uint64_t oldest;
	uint32_t kept;
	cr_assert_eq(snap_purge(dir, 3, &oldest, &kept), 0);
	cr_assert_eq(kept, 3);
	cr_assert_eq(oldest, idx[2]);
	char tmp[512], name[SNAP_NAME_MAX];
	snap_file_name(name, idx[4] + 10, true);
	snprintf(tmp, sizeof tmp, "%s/%s", dir, name);
	int fd = open(tmp, O_CREAT | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "partial", 7), 7);
	close(fd);
	uint64_t *list;
	size_t count;
	cr_assert_eq(snap_list(dir, true, &list, &count), 0);
	cr_assert_eq(count, 3);
	cr_assert_eq(list[0], idx[4]);
	cr_assert_eq(list[2], idx[2]);
	free(list);
	cr_assert_neq(access(tmp, F_OK), 0);
}

Test(snapshot, file_names)
{
	char name[SNAP_NAME_MAX];
	snap_file_name(name, 123, false);
	cr_assert_str_eq(name, "snapshot.00000000000000000123.rk");
	uint64_t v;
	cr_assert(snap_file_name_parse(name, &v));
	cr_assert_eq(v, 123);
	cr_assert(!snap_file_name_parse("snapshot.00000000000000000123.rk.tmp", &v));
	cr_assert(!snap_file_name_parse("snapshot.0000000000000000012x.rk", &v));
	cr_assert(!snap_file_name_parse("snapshot.99999999999999999999.rk", &v));
	cr_assert(snap_file_name_parse("snapshot.18446744073709551615.rk", &v));
	cr_assert_eq(v, UINT64_MAX);
}

Test(snapshot, malformed_records_are_refused_not_read_past)
{
	uint8_t raw[256];
	uint64_t rng = 5;
	void *acl = NULL;
	size_t acl_cap = 0;
	for (int round = 0; round < 20000; round++) {
		size_t len = 1 + t_rand(&rng) % sizeof raw;
		for (size_t i = 0; i < len; i++)
			raw[i] = (uint8_t)t_rand(&rng);
		raw[0] = (uint8_t)(1 + t_rand(&rng) % 4);
		/* a heap copy of exactly len bytes, so ASan sees any read past it */
		uint8_t *copy = malloc(len);
		memcpy(copy, raw, len);
		size_t pos = 0;
		struct snap_record rec;
		struct store_snap_node node;
		while (pos < len && snap_record_decode(copy, len, &pos, &rec, &node, &acl, &acl_cap) == 0)
			cr_assert_leq(pos, len);
		free(copy);
	}
	free(acl);
}
