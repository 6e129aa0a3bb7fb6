/*
 * test_store_snap.c — store images taken while the applier goes on (store_snap.h):
 * the image equals the store as it was at the image's zxid, whatever was applied
 * while the walk ran, and loading it gives back that store; load refuses images that
 * cannot be right.
 */
#include <errno.h>
#include <stdatomic.h>

#include "store_test_util.h"
#include "snap_test_util.h"

TestSuite(store_snap, .init = t_setup, .fini = t_teardown);

/* Walks the image to its end, applying `writes` random writes spread over the walk. */
static void walk_with_writes(struct store_snap *sn, struct t_image *im, uint64_t *rng, int writes)
{
	int steps = 0;
	while (store_snap_walk(sn, t_image_add, im)) {
		if (writes > 0 && t_rand(rng) % 2 == 0) {
			int burst = 1 + (int)(t_rand(rng) % 4);
			for (int i = 0; i < burst && writes > 0; i++, writes--)
				t_random_write(rng);
		}
		steps++;
	}
	/* Whatever is left goes after the walk: it must not change the image either. */
	while (writes-- > 0)
		t_random_write(rng);
	cr_assert_geq(steps, STORE_SHARDS, "a walk takes a step per shard at least");
}

static void assert_image_is(const struct t_image *im, const char *want)
{
	struct store *loaded = t_image_load(im);
	char *got = t_store_dump(loaded);
	/* Only the first difference is reported: criterion hangs sending a message of
	 * megabytes (a dump of a large tree). */
	size_t at = 0;
	while (got[at] && got[at] == want[at])
		at++;
	size_t line = at;
	while (line > 0 && want[line - 1] != '\n')
		line--;
	cr_assert(got[at] == want[at], "the image differs at byte %zu:\n  got:  %.160s\n  want: %.160s", at,
		  got + line, want + line);
	free(got);
	store_destroy(loaded);
}

/* Begins an image of the live store, its metadata in im. */
static struct store_snap *begin_image(struct t_image *im)
{
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	t_image_meta(im, sn);
	return sn;
}

/* An image of the live store, walked with nothing applied meanwhile. */
static void take_image(struct t_image *im)
{
	struct store_snap *sn = begin_image(im);
	while (store_snap_walk(sn, t_image_add, im))
		;
	store_snap_end(T.s, sn);
}

Test(store_snap, image_of_a_quiet_store_loads_back_identical)
{
	t_build_every_kind();
	char *want = t_store_dump(T.s);
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	cr_assert_eq(store_snap_zxid(sn), T.zxid);
	struct t_image im = { 0 };
	while (store_snap_walk(sn, t_image_add, &im))
		;
	t_image_meta(&im, sn);
	struct store_snap_stats st;
	store_snap_stats_get(sn, &st);
	store_snap_end(T.s, sn);
	cr_assert_eq(st.nodes_copied, 0);
	cr_assert_eq(st.nodes_emitted, im.count);
	/* every node but /zookeeper/config (the configuration's) */
	struct store_stats ss;
	store_stats(T.s, &ss);
	cr_assert_eq(im.count, ss.node_count - 1);
	cr_assert_eq(im.session_count, 3);
	cr_assert_eq(im.root_count, 1);
	cr_assert_str_eq(im.roots[0], "/app");
	assert_image_is(&im, want);
	t_image_free(&im);
	free(want);
}

Test(store_snap, writes_during_the_walk_do_not_change_the_image)
{
	t_build_every_kind();
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	uint64_t copied = 0, seeds_with_copies = 0;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		t_bodies_reset();
		uint64_t rng = seed * 0x9E3779B97F4A7C15ULL;
		for (int i = 0; i < 60; i++)
			t_random_write(&rng);
		char *want = t_store_dump(T.s);
		struct t_image im = { 0 };
		struct store_snap *sn = begin_image(&im);
		walk_with_writes(sn, &im, &rng, 200);
		struct store_snap_stats st;
		store_snap_stats_get(sn, &st);
		store_snap_end(T.s, sn);
		copied += st.nodes_copied;
		seeds_with_copies += st.nodes_copied > 0;
		cr_assert_eq(st.nodes_emitted, im.count);
		assert_image_is(&im, want);
		t_image_free(&im);
		free(want);
	}
	/* The writes did reach nodes before the walk did (what this test is about). */
	cr_assert_gt(seeds_with_copies, 20, "%llu seeds of 40 made copies", (unsigned long long)seeds_with_copies);
	cr_assert_gt(copied, 40, "%llu copies", (unsigned long long)copied);
}

Test(store_snap, a_session_closed_during_the_walk_keeps_its_ephemerals_in_the_image)
{
	t_build_every_kind();
	char *want = t_store_dump(T.s);
	struct t_image im = { 0 };
	struct store_snap *sn = begin_image(&im);
	cr_assert_eq(t_apply_as(T_SESSION_B, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body("/app/null", -1)), ZK_OK);
	cr_assert_eq(t_create("/app/new", "after", 0), ZK_OK);
	while (store_snap_walk(sn, t_image_add, &im))
		;
	store_snap_end(T.s, sn);
	cr_assert(!t_exists("/app/eph-b"));
	assert_image_is(&im, want);
	t_image_free(&im);
	free(want);
}

Test(store_snap, an_abandoned_walk_leaves_the_next_image_whole)
{
	t_build_every_kind();
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	uint64_t rng = 42;
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	struct store_snap *again;
	cr_assert_eq(store_snap_begin(T.s, &again), -EBUSY);
	struct t_image partial = { 0 };
	for (int i = 0; i < 20; i++)
		store_snap_walk(sn, t_image_add, &partial);
	for (int i = 0; i < 50; i++)
		t_random_write(&rng);
	store_snap_end(T.s, sn);
	t_image_free(&partial);
	for (int i = 0; i < 50; i++)
		t_random_write(&rng);
	char *want = t_store_dump(T.s);
	struct t_image im = { 0 };
	sn = begin_image(&im);
	walk_with_writes(sn, &im, &rng, 100);
	store_snap_end(T.s, sn);
	assert_image_is(&im, want);
	t_image_free(&im);
	free(want);
}

/* A whole image of the live store, walked with writes in between, checked. */
static void assert_next_image_whole(uint64_t *rng)
{
	char *want = t_store_dump(T.s);
	struct t_image im = { 0 };
	struct store_snap *sn = begin_image(&im);
	walk_with_writes(sn, &im, rng, 40);
	store_snap_end(T.s, sn);
	assert_image_is(&im, want);
	t_image_free(&im);
	free(want);
}

/* Begins an image, walks `steps` steps of it (writes in between), and gives it up:
 * with finish, the walker marks the rest itself (fn NULL), as the writer does on an
 * error; else store_snap_end does. */
static void abandon_image(uint64_t *rng, int steps, bool finish)
{
	struct store_snap *sn;
	cr_assert_eq(store_snap_begin(T.s, &sn), 0);
	struct t_image partial = { 0 };
	for (int i = 0; i < steps && store_snap_walk(sn, t_image_add, &partial); i++)
		t_random_write(rng);
	if (finish) {
		while (store_snap_walk(sn, NULL, NULL))
			;
	}
	store_snap_end(T.s, sn);
	t_image_free(&partial);
}

/*
 * A node keeps one bit of the image that met it (the parity of the image's count):
 * images in a row, whole or abandoned at any point (two and three in a row), each
 * leave the next image whole.
 */
Test(store_snap, images_in_a_row_whole_or_abandoned_each_leave_the_next_whole)
{
	t_build_every_kind();
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	uint64_t rng = 7;
	for (int i = 0; i < 60; i++)
		t_random_write(&rng);
	for (int round = 0; round < 12; round++) {
		int abandoned = round % 4; /* 0, 1, 2, 3 images given up before a whole one */
		for (int k = 0; k < abandoned; k++)
			abandon_image(&rng, (int)(t_rand(&rng) % 40), (round + k) % 2 == 0);
		assert_next_image_whole(&rng);
	}
}

Test(store_snap, a_node_keeps_48_bit_zxids_and_times_and_load_refuses_wider)
{
	/* Times before 1970 and up to the year 6429 are kept; beyond, clamped. */
	T.time_ms = -1234567;
	cr_assert_eq(t_create("/old", "x", 0), ZK_OK);
	T.time_ms = ((int64_t)1 << 47) - 1;
	cr_assert_eq(t_create("/late", "x", 0), ZK_OK);
	T.time_ms = INT64_MAX;
	cr_assert_eq(t_create("/clamped", "x", 0), ZK_OK);
	struct zk_stat st = t_stat("/old");
	cr_assert_eq(st.ctime, -1234567);
	cr_assert_eq(st.mtime, -1234567);
	cr_assert_eq(t_stat("/late").ctime, ((int64_t)1 << 47) - 1);
	cr_assert_eq(t_stat("/clamped").mtime, ((int64_t)1 << 47) - 1);
	/* A zxid past 2^32 (a migrated ZooKeeper's epoch 5) round-trips through an image. */
	T.zxid = ((int64_t)5 << 32) + 17;
	cr_assert_eq(t_create("/epoch5", "y", 0), ZK_OK);
	st = t_stat("/epoch5");
	cr_assert_eq(st.czxid, T.zxid);
	cr_assert_eq(st.mzxid, T.zxid);
	struct t_image im = { 0 };
	take_image(&im);
	char *want = t_store_dump(T.s);
	assert_image_is(&im, want);
	free(want);
	/* An image node whose zxid or time does not fit is refused, with the reason. */
	struct store *fresh = store_create_like(T.s);
	char why[256] = "";
	size_t bad = 0;
	for (size_t i = 0; i < im.count; i++)
		if (im.nodes[i].path_len == 7 && memcmp(im.nodes[i].path, "/epoch5", 7) == 0)
			bad = i;
	cr_assert_gt(bad, 0);
	im.nodes[bad].mzxid = (int64_t)1 << 47;
	cr_assert_eq(store_load_node(fresh, &im.nodes[bad], why, sizeof why), -EINVAL);
	cr_assert(strstr(why, "48 bits") && strstr(why, "/epoch5"), "%s", why);
	im.nodes[bad].mzxid = im.nodes[bad].czxid;
	im.nodes[bad].ctime = -((int64_t)1 << 47) - 1;
	cr_assert_eq(store_load_node(fresh, &im.nodes[bad], why, sizeof why), -EINVAL);
	im.nodes[bad].ctime = 0;
	cr_assert_eq(store_load_node(fresh, &im.nodes[bad], why, sizeof why), 0, "%s", why);
	store_destroy(fresh);
	t_image_free(&im);
}

Test(store_snap, loaded_quota_root_keeps_counting)
{
	t_build_every_kind();
	struct t_image im = { 0 };
	take_image(&im);
	struct store *orig = T.s;
	T.s = t_image_load(&im);
	/* The same write on both stores moves the same stats node the same way. */
	int64_t zxid = T.zxid;
	cr_assert_eq(t_create("/app/one-more", "abc", 0), ZK_OK);
	char *loaded = t_store_dump(T.s);
	store_destroy(T.s);
	T.s = orig;
	T.zxid = zxid;
	cr_assert_eq(t_create("/app/one-more", "abc", 0), ZK_OK);
	char *live = t_store_dump(T.s);
	cr_assert_str_eq(loaded, live);
	cr_assert(strstr(live, "/zookeeper/quota/app/zookeeper_stats data=") != NULL);
	free(loaded);
	free(live);
	t_image_free(&im);
}

struct walker_arg {
	struct store_snap *sn;
	struct t_image *im;
	_Atomic int done;
};

static void *walker_main(void *arg)
{
	struct walker_arg *w = arg;
	while (store_snap_walk(w->sn, t_image_add, w->im))
		;
	atomic_store(&w->done, 1);
	return NULL;
}

Test(store_snap, a_walker_thread_and_the_applier_at_once)
{
	t_build_every_kind();
	cr_assert_eq(t_create("/r", NULL, 0), ZK_OK);
	uint64_t rng = 7;
	/* A tree of a few thousand nodes, so the walk takes a while. */
	char path[64];
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof path, "/bulk%d", i);
		cr_assert_eq(t_create(path, "bulk data", 0), ZK_OK);
		if (i % 500 == 0)
			t_bodies_reset();
	}
	for (int round = 0; round < 5; round++) {
		t_bodies_reset();
		char *want = t_store_dump(T.s);
		struct t_image im = { 0 };
		struct store_snap *sn = begin_image(&im);
		struct walker_arg w = { sn, &im, 0 };
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, walker_main, &w), 0);
		int writes = 0;
		while (!atomic_load(&w.done) && writes < 900) {
			t_random_write(&rng);
			snprintf(path, sizeof path, "/bulk%d", (int)(t_rand(&rng) % 3000));
			t_apply(ZK_OP_SET_DATA, t_set_body(path, "changed while walking", -1));
			if (++writes % 200 == 0)
				t_bodies_reset();
		}
		pthread_join(th, NULL);
		store_snap_end(T.s, sn);
		assert_image_is(&im, want);
		t_image_free(&im);
		free(want);
	}
}

static struct store_snap_node node_at(const char *path)
{
	static const struct acl_entry open = { ZK_PERM_ALL, 5, 6, "world", "anyone" };
	return (struct store_snap_node){ .path = path, .path_len = (uint32_t)strlen(path), .data_len = -1,
					 .acl_count = 1, .acl = &open };
}

Test(store_snap, load_refuses_an_orphan_a_duplicate_and_a_lost_ephemeral)
{
	char why[256];
	struct store_config cfg = { .config_text = "" };
	struct store *s = store_create(&cfg);
	struct store_snap_node n = node_at("/a/b");
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), 0);
	cr_assert_eq(store_load_finish(s, 5, why, sizeof why), -EINVAL);
	cr_assert_str_eq(why, "a node has no parent in the image: /a/b");
	store_destroy(s);

	s = store_create(&cfg);
	n = node_at("/a");
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), 0);
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), -EINVAL);
	cr_assert_str_eq(why, "a node is in the image twice: /a");
	n = node_at("/");
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), 0);
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), -EINVAL);
	store_destroy(s);

	s = store_create(&cfg);
	n = node_at("/e");
	n.ephemeral_owner = 0x42;
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), 0);
	cr_assert_eq(store_load_finish(s, 5, why, sizeof why), -EINVAL);
	cr_assert_str_eq(why, "an ephemeral node belongs to no session of the image: /e");
	store_destroy(s);

	s = store_create(&cfg);
	n = node_at("bad");
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), -EINVAL);
	n = node_at("/trailing/");
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), -EINVAL);
	n = node_at("/noacl");
	n.acl_count = 0;
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), -EINVAL);
	/* the configuration's node is skipped, not loaded over the configured one */
	n = node_at("/zookeeper/config");
	n.data_len = 3;
	n.data = (const uint8_t *)"old";
	cr_assert_eq(store_load_node(s, &n, why, sizeof why), 0);
	cr_assert_eq(store_load_finish(s, 9, why, sizeof why), 0);
	cr_assert_eq(store_last_zxid(s), 9);
	store_destroy(s);
}

Test(store_snap, swap_exchanges_everything_replicated)
{
	t_build_every_kind();
	char *before = t_store_dump(T.s);
	struct t_image im = { 0 };
	take_image(&im);
	/* The live store moves on; the image stays as it was. */
	cr_assert_eq(t_create("/later", "x", 0), ZK_OK);
	cr_assert_eq(t_apply_as(T_SESSION_B, NULL, ZK_OP_CLOSE_SESSION, NULL), ZK_OK);
	char *later = t_store_dump(T.s);
	struct store *fresh = store_create_like(T.s);
	char why[256];
	for (size_t i = 0; i < im.session_count; i++)
		cr_assert_eq(store_load_session(fresh, &im.sessions[i], 1), 0);
	for (size_t i = 0; i < im.root_count; i++)
		cr_assert_eq(store_load_quota_root(fresh, im.roots[i], im.root_lens[i]), 0);
	for (size_t i = 0; i < im.count; i++)
		cr_assert_eq(store_load_node(fresh, &im.nodes[i], why, sizeof why), 0, "%s", why);
	cr_assert_eq(store_load_finish(fresh, im.zxid, why, sizeof why), 0, "%s", why);
	store_swap(T.s, fresh);
	char *now = t_store_dump(T.s);
	char *old = t_store_dump(fresh);
	cr_assert_str_eq(now, before);
	cr_assert_str_eq(old, later);
	store_destroy(fresh);
	/* and the live store applies on top of what it got */
	T.zxid = im.zxid;
	cr_assert_eq(t_create("/after-swap", "y", 0), ZK_OK);
	cr_assert(t_exists("/app/eph-b"), "the session closed after the image is back");
	/* The nodes came with their store's image count (the parity they carry): the
	 * live store's next images are whole. */
	uint64_t rng = 3;
	assert_next_image_whole(&rng);
	assert_next_image_whole(&rng);
	free(before);
	free(later);
	free(now);
	free(old);
	t_image_free(&im);
}

/*
 * Deletes during a walk shrink the shards' hash tables (store_tree.c's shard_trim),
 * the one being walked among them: the nodes it had not met yet may land behind the
 * cursor, and the image must still hold every node of its zxid.
 */
Test(store_snap, a_shard_shrunk_under_the_walk_is_walked_again)
{
	char path[32];
	cr_assert_eq(t_create("/p", NULL, 0), ZK_OK);
	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof path, "/p/c%d", i);
		cr_assert_eq(t_create(path, "v", 0), ZK_OK);
		if (i % 500 == 0)
			t_bodies_reset();
	}
	t_bodies_reset();
	char *want = t_store_dump(T.s);
	struct t_image im = { 0 };
	struct store_snap *sn = begin_image(&im);
	/* Part way through the first shard (about 512 buckets, 64 a step). */
	for (int step = 0; step < 3; step++)
		cr_assert(store_snap_walk(sn, t_image_add, &im));
	struct store_memory full, thinned;
	store_memory_get(T.s, &full);
	for (int i = 0; i < 20000; i++) {
		if (i % 10 == 0)
			continue;
		snprintf(path, sizeof path, "/p/c%d", i);
		cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body(path, -1)), ZK_OK);
		if (i % 500 == 1)
			t_bodies_reset();
	}
	store_memory_get(T.s, &thinned);
	cr_assert_lt(thinned.buckets, full.buckets / 2, "the deletes shrank the tables");
	while (store_snap_walk(sn, t_image_add, &im))
		;
	store_snap_end(T.s, sn);
	assert_image_is(&im, want);
	t_image_free(&im);
	free(want);
}
