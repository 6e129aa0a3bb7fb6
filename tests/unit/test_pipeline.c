/*
 * test_pipeline.c — the raft thread's loop (raft/pipeline*.c) driven through the hub
 * alone, as a worker would: no sockets, no net/. A real store, a real log in a
 * temporary directory, the real consensus core as one voter.
 *
 *   - a createSession and a create come back as SESSION_CREATED and a REPLY whose
 *     record is the created path, with xid, consecutive zxids after the term's no-op,
 *     and err as the store decided;
 *   - a failing write (NODEEXISTS) is answered with its error and no record;
 *   - a watch fired by a write arrives before the write's reply, with the write's zxid;
 *   - a restart on the same directory replays the log, starts a new term, and the
 *     zxids go on after the old ones.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/hub.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "raft/hardstate.h"
#include "raft/pipeline.h"
#include "store/store.h"
#include "tests/unit/pipeline_test_util.h"

#define SESSION 0x77
#define CONN_ID 5 /* worker 0, slot 5 */

static char dir[256];
static struct rk_config cfg;
static struct pipe_rig rig;
#define pipe_ rig.pipe

static void start(void)
{
	char err[256];
	config_defaults(&cfg);
	snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
	cfg.log_prealloc_kb = 4096;
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	pipe_rig_start(&rig, &cfg);
}

static void stop(void)
{
	pipe_rig_stop(&rig);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rk-pipe-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	start();
}

static void teardown(void)
{
	stop();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void propose_flags(int32_t xid, int32_t opcode, const struct jute_writer *body, uint16_t flags)
{
	pipe_rig_propose(&rig, CONN_ID, SESSION, xid, opcode, body, flags);
}

static void propose(int32_t xid, int32_t opcode, const struct jute_writer *body)
{
	propose_flags(xid, opcode, body, 0);
}

/* The next message for worker 0, waiting up to 5 s. The caller frees it. */
static struct rk_msg *next_msg(void)
{
	struct rk_msg *m = pipe_rig_next(&rig, 5000);
	cr_assert_not_null(m, "no message from the raft thread within 5 s");
	return m;
}

static struct jute_writer *create_body(const char *path)
{
	static struct jute_writer w;
	jute_writer_free(&w);
	jute_writer_init(&w, 4096);
	jute_write_string(&w, path, (int32_t)strlen(path));
	jute_write_buffer(&w, "d", 1);
	jute_write_int(&w, 1); /* one ACL: world:anyone, all perms */
	jute_write_int(&w, ZK_PERM_ALL);
	jute_write_string(&w, "world", 5);
	jute_write_string(&w, "anyone", 6);
	jute_write_int(&w, 0); /* persistent */
	return &w;
}

static int64_t open_session(int32_t timeout_ms)
{
	struct jute_writer b;
	jute_writer_init(&b, 64);
	uint8_t passwd[16] = { 1 };
	jute_write_int(&b, timeout_ms);
	jute_write_buffer(&b, passwd, 16);
	propose(0, ZK_OP_CREATE_SESSION, &b);
	jute_writer_free(&b);
	struct rk_msg *m = next_msg();
	cr_assert_eq(m->kind, RK_MSG_SESSION_CREATED);
	cr_assert_eq(m->err, ZK_OK);
	int64_t zxid = m->zxid;
	free(m);
	return zxid;
}

static void expect_reply(int32_t xid, int64_t zxid, int32_t err, const char *created_path)
{
	struct rk_msg *m = next_msg();
	cr_assert_eq(m->kind, RK_MSG_REPLY);
	cr_assert_eq(m->conn_id, CONN_ID);
	cr_assert_eq(m->xid, xid);
	cr_assert_eq(m->zxid, zxid, "zxid %lld, expected %lld", (long long)m->zxid, (long long)zxid);
	cr_assert_eq(m->err, err);
	if (created_path) {
		struct jute_reader r;
		jute_reader_init(&r, m->data, m->len);
		struct jute_bytes p = jute_read_string(&r);
		cr_assert(jute_reader_ok(&r) && jute_bytes_eq(p, created_path, strlen(created_path)));
	} else {
		cr_assert_eq(m->len, 0, "an error reply has no record");
	}
	free(m);
}

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 30);

Test(pipeline, writes_come_back_as_replies_in_order_after_the_terms_noop)
{
	int64_t z = open_session(10000);
	cr_assert_eq(z, 2, "index 1 is the leader's no-op, the session is 2");
	propose(11, ZK_OP_CREATE, create_body("/a"));
	propose(12, ZK_OP_CREATE, create_body("/a"));
	propose(13, ZK_OP_CREATE, create_body("/b"));
	expect_reply(11, 3, ZK_OK, "/a");
	expect_reply(12, 4, ZK_NODEEXISTS, NULL);
	expect_reply(13, 5, ZK_OK, "/b");
	cr_assert_eq(store_last_zxid(rig.store), 5);
	struct raft_stats rs;
	raft_pipeline_stats(pipe_, &rs);
	cr_assert_eq(rs.last_index, 5);
	cr_assert_eq(rs.last_term, 1);
	cr_assert_eq(rs.writes_committed, 4);
}

Test(pipeline, a_watch_event_comes_before_the_reply_of_the_write_that_fired_it)
{
	open_session(10000);
	propose(1, ZK_OP_CREATE, create_body("/w"));
	expect_reply(1, 3, ZK_OK, "/w");
	struct jute_writer rq;
	jute_writer_init(&rq, 64);
	jute_write_string(&rq, "/w", 2);
	jute_write_bool(&rq, true);
	struct jute_writer out;
	jute_writer_init(&out, 4096);
	int64_t seen = 0;
	uint64_t watcher = 9; /* worker 0 */
	cr_assert_eq(store_read(rig.store, SESSION, watcher, NULL, ZK_OP_GET_DATA, rq.buf, rq.len, &out, &seen), ZK_OK);
	cr_assert_eq(seen, 3);
	struct jute_writer sb;
	jute_writer_init(&sb, 64);
	jute_write_string(&sb, "/w", 2);
	jute_write_buffer(&sb, "x", 1);
	jute_write_int(&sb, -1);
	propose(2, ZK_OP_SET_DATA, &sb);
	struct rk_msg *ev = next_msg();
	cr_assert_eq(ev->kind, RK_MSG_EVENT);
	cr_assert_eq(ev->conn_id, watcher);
	cr_assert_eq(ev->event_type, ZK_EVENT_NODE_DATA_CHANGED);
	cr_assert_eq(ev->zxid, 4);
	cr_assert(ev->len == 2 && memcmp(ev->data, "/w", 2) == 0);
	free(ev);
	struct rk_msg *m = next_msg();
	cr_assert_eq(m->kind, RK_MSG_REPLY);
	cr_assert_eq(m->zxid, 4);
	free(m);
	jute_writer_free(&rq);
	jute_writer_free(&out);
	jute_writer_free(&sb);
}

Test(pipeline, a_restart_replays_the_log_and_starts_a_new_term)
{
	open_session(60000);
	propose(1, ZK_OP_CREATE, create_body("/kept"));
	expect_reply(1, 3, ZK_OK, "/kept");
	stop();
	struct hardstate hs;
	char why[256];
	cr_assert_eq(hardstate_load(dir, &hs, why, sizeof why), 0, "%s", why);
	cr_assert_eq(hs.term, 1);
	cr_assert_eq(hs.vote, 1);
	start();
	cr_assert_eq(store_last_zxid(rig.store), 3, "the log was replayed into the new store");
	/* index 4 is the new term's no-op */
	propose(2, ZK_OP_CREATE, create_body("/after"));
	expect_reply(2, 5, ZK_OK, "/after");
	cr_assert_eq(hardstate_load(dir, &hs, why, sizeof why), 0, "%s", why);
	cr_assert_eq(hs.term, 2);
	struct raft_stats rs;
	raft_pipeline_stats(pipe_, &rs);
	cr_assert_eq(rs.last_term, 2);
}

Test(pipeline, a_sync_is_answered_in_request_order_and_takes_no_log_entry)
{
	open_session(10000);
	struct jute_writer sb;
	jute_writer_init(&sb, 64);
	jute_write_string(&sb, "/s", 2);
	propose(1, ZK_OP_CREATE, create_body("/a"));
	propose_flags(2, ZK_OP_SYNC, &sb, RK_MSG_SYNC);
	propose(3, ZK_OP_CREATE, create_body("/b"));
	propose_flags(4, ZK_OP_SYNC, &sb, RK_MSG_SYNC);
	expect_reply(1, 3, ZK_OK, "/a");
	/* The sync's reply carries its path and the zxid applied when it was answered:
	 * at least the create before it, never an index of its own. */
	struct rk_msg *m = next_msg();
	cr_assert_eq(m->kind, RK_MSG_REPLY);
	cr_assert_eq(m->xid, 2);
	cr_assert_eq(m->err, ZK_OK);
	cr_assert(m->zxid >= 3 && m->zxid <= 4, "zxid %lld", (long long)m->zxid);
	struct jute_reader r;
	jute_reader_init(&r, m->data, m->len);
	struct jute_bytes path = jute_read_string(&r);
	cr_assert(jute_reader_ok(&r) && jute_bytes_eq(path, "/s", 2) && jute_reader_remaining(&r) == 0);
	free(m);
	expect_reply(3, 4, ZK_OK, "/b");
	m = next_msg();
	cr_assert_eq(m->xid, 4);
	cr_assert_eq(m->zxid, 4);
	free(m);
	struct raft_stats rs;
	raft_pipeline_stats(pipe_, &rs);
	cr_assert_eq(rs.last_index, 4, "no log entry for either sync");
	jute_writer_free(&sb);
}
