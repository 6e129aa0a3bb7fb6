/*
 * test_store_seen.c — the zxid a read reports it saw (store_read's seen_zxid) splits
 * the changes exactly in two, while an applier thread changes the node read:
 *   - the read reflects every change with zxid <= seen and none after it (the node's
 *     mzxid in the reply is exactly `seen`, since every txn here sets that node);
 *   - the watch the read set is fired by a change with zxid > seen, never by one the
 *     read already reflected.
 * A worker relies on both to send the notifications up to `seen` before the reply
 * and the rest after it (net/conn.h, invariant 2). The same for addWatch.
 */
#include <stdatomic.h>

#include "store_test_util.h"

#define SEEN_ROUNDS 2000 /* reads, each racing the applier's next change */
#define SEEN_WATCHER_BASE 1000

static _Atomic uint64_t watcher_now;  /* this round's watcher: a new one each round */
static _Atomic int64_t fired_zxid;    /* zxid of its last event; 0: none yet */
static atomic_bool reader_done;

static void seen_on_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len, int64_t zxid)
{
	(void)ctx, (void)type, (void)path, (void)path_len;
	if (watcher == atomic_load(&watcher_now))
		atomic_store(&fired_zxid, zxid);
}

static void *seen_applier(void *arg)
{
	struct jute_writer body, out;
	jute_writer_init(&body, 4096);
	jute_writer_init(&out, 4096);
	int64_t zxid = T.zxid;
	for (int i = 0; !atomic_load(&reader_done); i++) {
		jute_writer_reset(&body);
		t_str(&body, "/x");
		jute_write_buffer(&body, "v", 1);
		jute_write_int(&body, -1);
		struct store_txn txn = { .zxid = ++zxid, .time_ms = i, .session_id = T_SESSION,
					 .opcode = ZK_OP_SET_DATA, .body = body.buf, .body_len = body.len };
		jute_writer_reset(&out);
		cr_assert_eq(store_apply(T.s, &txn, &out, seen_on_event, NULL), ZK_OK);
	}
	jute_writer_free(&body);
	jute_writer_free(&out);
	return arg;
}

/* One read (or addWatch) that sets a watch; returns the zxid it saw. */
typedef int64_t (*seen_read_fn)(uint64_t watcher, struct jute_writer *req, struct jute_writer *out);

static int64_t seen_get_data(uint64_t watcher, struct jute_writer *req, struct jute_writer *out)
{
	jute_writer_reset(req);
	t_str(req, "/x");
	jute_write_bool(req, true);
	jute_writer_reset(out);
	int64_t seen = -1;
	cr_assert_eq(store_read(T.s, T_SESSION, watcher, NULL, ZK_OP_GET_DATA, req->buf, req->len, out, &seen),
		     ZK_OK);
	struct jute_reader r;
	jute_reader_init(&r, out->buf, out->len);
	jute_read_buffer(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(st.mzxid, seen, "the read reflects up to %lld exactly, not %lld", (long long)seen,
		     (long long)st.mzxid);
	return seen;
}

static int64_t seen_add_watch(uint64_t watcher, struct jute_writer *req, struct jute_writer *out)
{
	(void)out;
	jute_writer_reset(req);
	t_str(req, "/x");
	jute_write_int(req, STORE_ADD_WATCH_PERSISTENT);
	int64_t seen = -1;
	cr_assert_eq(store_add_watch_auth(T.s, watcher, NULL, req->buf, req->len, &seen), ZK_OK);
	return seen;
}

static void seen_race(seen_read_fn read_fn)
{
	cr_assert_eq(t_create("/x", "", 0), ZK_OK);
	atomic_store(&reader_done, false);
	atomic_store(&fired_zxid, 0);
	struct jute_writer req, out;
	jute_writer_init(&req, 4096);
	jute_writer_init(&out, 4096);
	pthread_t a;
	pthread_create(&a, NULL, seen_applier, NULL);
	long rounds;
	for (rounds = 0; rounds < SEEN_ROUNDS; rounds++) {
		uint64_t watcher = SEEN_WATCHER_BASE + (uint64_t)rounds;
		atomic_store(&fired_zxid, 0);
		atomic_store(&watcher_now, watcher);
		int64_t seen = read_fn(watcher, &req, &out);
		int64_t fired;
		while ((fired = atomic_load(&fired_zxid)) == 0)
			; /* the applier never stops changing /x while we read */
		cr_assert_gt(fired, seen, "round %ld: a change at %lld the read saw (%lld) fired its watch", rounds,
				     (long long)fired, (long long)seen);
		store_watcher_drop(T.s, watcher);
	}
	atomic_store(&reader_done, true);
	pthread_join(a, NULL);
	jute_writer_free(&req);
	jute_writer_free(&out);
}

Test(store_seen, a_read_reflects_exactly_what_it_saw_and_its_watch_fires_after, .init = t_setup, .fini = t_teardown,
     .timeout = 60)
{
	seen_race(seen_get_data);
}

Test(store_seen, add_watch_is_fired_only_by_changes_after_what_it_saw, .init = t_setup, .fini = t_teardown,
     .timeout = 60)
{
	seen_race(seen_add_watch);
}
