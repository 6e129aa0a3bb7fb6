/*
 * test_conn.c — the connection front end (net/conn.c) without a worker loop: a worker
 * struct with only what conn.c touches, a real store, a hub whose raft end is this
 * test, and a socketpair as the connection's socket. Bytes go in with conn_on_input;
 * what the connection would send is read from its output buffer; what it hands the
 * raft thread is popped from the hub.
 *
 *   - a four-letter word is answered and the connection is marked to close after it;
 *   - a ConnectRequest for a new session becomes a createSession proposal, and the
 *     session's commit (RK_MSG_SESSION_CREATED) sends the ConnectResponse;
 *   - a read on the session is answered from the store at once, with the zxid it saw;
 *   - a read behind the session's unanswered write waits for the write's reply
 *     (invariant 1 of conn.h), then runs;
 *   - a frame over jute.maxbuffer and an unknown opcode close the connection
 *     (the latter after an UNIMPLEMENTED reply), as ZooKeeper does;
 *   - a reconnect with an unknown session gets ZooKeeper's expired ConnectResponse;
 *   - a session whose move here was lost is announced again (a new SESSION_ATTACH),
 *     and its connection closes when the raft queue cannot take the announce.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hub.h"
#include "core/zk_proto.h"
#include "net/conn.h"
#include "net/server.h"
#include "net/worker.h"
#include "raft/entry.h"
#include "store/store.h"

static struct server srv;
static struct hub hub;
static struct worker *w;
static struct io_uring raft_ring; /* stands for the raft thread's ring */
static int fds[2];
static struct conn *c;

static void setup(void)
{
	memset(&srv, 0, sizeof srv);
	config_defaults(&srv.cfg);
	char err[256];
	char *argv[] = { "ringkeeper", "--4lw.commands.whitelist=*", NULL };
	cr_assert_eq(config_parse_args(&srv.cfg, 2, argv, err, sizeof err), 0, "%s", err);
	cr_assert_eq(config_finalize(&srv.cfg, err, sizeof err), 0, "%s", err);
	srv.min_session_timeout_ms = 4000;
	srv.max_session_timeout_ms = 40000;
	struct store_config sc = { .config_text = "" };
	srv.store = store_create(&sc);
	cr_assert_eq(hub_init(&hub, 1), 0);
	cr_assert_eq(io_uring_queue_init(8, &raft_ring, 0), 0);
	hub_attach_raft(&hub, raft_ring.ring_fd, 1);
	srv.hub = &hub;
	srv.worker_count = 1;
	w = calloc(1, sizeof *w);
	w->srv = &srv;
	w->now_ms = 1000;
	w->listen_fd = -1;
	jute_writer_init(&w->scratch, (size_t)srv.cfg.packet_bytes_max * 2 + 65536);
	srv.workers[0] = w;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	c = conn_new(w, 7, fds[0]);
	cr_assert_not_null(c);
	snprintf(c->peer, sizeof c->peer, "test");
}

static void teardown(void)
{
	conn_free(w, c);
	worker_destroy(w); /* its reap list and scratch; it owns no ring or listener here */
	close(fds[0]);
	close(fds[1]);
	hub_destroy(&hub);
	io_uring_queue_exit(&raft_ring);
	store_destroy(srv.store);
}

TestSuite(conn, .init = setup, .fini = teardown);

static void input(const struct jute_writer *frame_body)
{
	uint8_t len[4];
	jute_put_be32(len, (uint32_t)frame_body->len);
	struct jute_writer all;
	jute_writer_init(&all, frame_body->len + 4);
	jute_write_raw(&all, len, 4);
	jute_write_raw(&all, frame_body->buf, frame_body->len);
	conn_on_input(w, c, all.buf, all.len);
	jute_writer_free(&all);
}

/* Takes the first frame of the connection's output; its body in *r. */
static void output_frame(struct jute_reader *r, uint8_t *copy, size_t cap)
{
	cr_assert_geq(c->out.len, 4, "no frame was sent");
	uint32_t n = jute_get_be32(c->out.buf);
	cr_assert_leq(4 + n, c->out.len);
	cr_assert_leq(n, cap);
	memcpy(copy, c->out.buf + 4, n);
	memmove(c->out.buf, c->out.buf + 4 + n, c->out.len - 4 - n);
	c->out.len -= 4 + n;
	jute_reader_init(r, copy, n);
}

static struct rk_msg *proposal(void)
{
	struct rk_msg *m = hub_from_worker(&hub, 0);
	cr_assert_not_null(m, "nothing was proposed");
	cr_assert_eq(m->kind, RK_MSG_PROPOSAL);
	return m;
}

static void connect_request(int64_t session_id)
{
	struct jute_writer b;
	jute_writer_init(&b, 128);
	jute_write_int(&b, 0);        /* protocolVersion */
	jute_write_long(&b, 0);       /* lastZxidSeen */
	jute_write_int(&b, 10000);    /* timeOut */
	jute_write_long(&b, session_id);
	uint8_t pw[16] = { 0 };
	jute_write_buffer(&b, pw, 16);
	input(&b);
	jute_writer_free(&b);
}

/* New session, committed as the raft thread would: applied, then SESSION_CREATED. */
static void establish(void)
{
	connect_request(0);
	cr_assert_eq(c->state, CONN_HANDSHAKE);
	struct rk_msg *m = proposal();
	struct rk_entry e;
	cr_assert_eq(entry_decode(&e, m->data, m->len), 0);
	cr_assert_eq(e.opcode, ZK_OP_CREATE_SESSION);
	struct store_txn txn = { .zxid = 1, .time_ms = 1, .session_id = e.session_id, .opcode = e.opcode,
				 .body = e.body, .body_len = e.body_len };
	struct jute_writer out;
	jute_writer_init(&out, 1024);
	cr_assert_eq(store_apply(srv.store, &txn, &out, NULL, NULL), ZK_OK);
	jute_writer_free(&out);
	struct rk_msg created = { .kind = RK_MSG_SESSION_CREATED, .conn_id = c->id, .zxid = 1,
				  .session_id = e.session_id };
	atomic_fetch_sub(&srv.global_outstanding, 1);
	conn_on_msg(w, c, &created);
	free(m);
	cr_assert_eq(c->state, CONN_ESTABLISHED);
	uint8_t buf[256];
	struct jute_reader r;
	output_frame(&r, buf, sizeof buf);
	cr_assert_eq(jute_read_int(&r), 0);
	cr_assert_eq(jute_read_int(&r), 10000, "the negotiated timeout");
	cr_assert_eq(jute_read_long(&r), e.session_id);
}

static void request(int32_t xid, int32_t opcode, const char *path, bool watch)
{
	struct jute_writer b;
	jute_writer_init(&b, 256);
	jute_write_int(&b, xid);
	jute_write_int(&b, opcode);
	if (path) {
		jute_write_string(&b, path, (int32_t)strlen(path));
		if (opcode != ZK_OP_SYNC)
			jute_write_bool(&b, watch);
	}
	input(&b);
	jute_writer_free(&b);
}

Test(conn, a_four_letter_word_is_answered_then_the_connection_closes)
{
	conn_on_input(w, c, (const uint8_t *)"ruok\n", 5);
	cr_assert_eq(c->out.len, 4);
	cr_assert(memcmp(c->out.buf, "imok", 4) == 0);
	cr_assert(c->close_after_flush);
	cr_assert_eq(c->state, CONN_CLOSING);
	cr_assert_null(hub_from_worker(&hub, 0), "a word proposes nothing");
}

Test(conn, a_new_session_is_proposed_and_answered_when_it_commits)
{
	establish();
}

Test(conn, a_read_is_answered_at_once_with_the_zxid_it_saw)
{
	establish();
	request(5, ZK_OP_EXISTS, "/", false);
	uint8_t buf[512];
	struct jute_reader r;
	output_frame(&r, buf, sizeof buf);
	cr_assert_eq(jute_read_int(&r), 5);
	cr_assert_eq(jute_read_long(&r), 1, "the store's zxid when the read ran");
	cr_assert_eq(jute_read_int(&r), ZK_OK);
}

Test(conn, a_read_behind_an_unanswered_write_waits_for_it)
{
	establish();
	request(6, ZK_OP_SYNC, "/", false); /* a write: goes to the raft thread */
	struct rk_msg *m = proposal();
	request(7, ZK_OP_EXISTS, "/", false);
	cr_assert_eq(c->out.len, 0, "the read must not overtake the write");
	cr_assert_eq(c->deferred_count, 1);
	/* The write's reply arrives (record: the path), then the worker runs the deferred. */
	size_t rlen = 4 + 1;
	struct rk_msg *reply = calloc(1, sizeof *reply + rlen);
	reply->kind = RK_MSG_REPLY;
	reply->conn_id = c->id;
	reply->xid = 6;
	reply->zxid = 2;
	reply->len = (uint32_t)rlen;
	jute_put_be32(reply->data, 1);
	reply->data[4] = '/';
	atomic_fetch_sub(&srv.global_outstanding, 1);
	conn_on_msg(w, c, reply);
	free(reply);
	free(m);
	conn_run_deferred(w, c);
	uint8_t buf[512];
	struct jute_reader r;
	output_frame(&r, buf, sizeof buf);
	cr_assert_eq(jute_read_int(&r), 6);
	cr_assert_eq(jute_read_long(&r), 2);
	cr_assert_eq(jute_read_int(&r), ZK_OK);
	output_frame(&r, buf, sizeof buf);
	cr_assert_eq(jute_read_int(&r), 7, "then the read");
}

Test(conn, a_frame_over_the_limit_closes_the_connection)
{
	establish();
	uint8_t len[4];
	jute_put_be32(len, (uint32_t)srv.cfg.packet_bytes_max + 1);
	conn_on_input(w, c, len, 4);
	cr_assert(c->shut);
	cr_assert_eq(c->state, CONN_CLOSING);
}

Test(conn, an_unknown_opcode_gets_unimplemented_then_a_close)
{
	establish();
	request(9, 9999, NULL, false);
	uint8_t buf[64];
	struct jute_reader r;
	output_frame(&r, buf, sizeof buf);
	cr_assert_eq(jute_read_int(&r), 9);
	jute_read_long(&r);
	cr_assert_eq(jute_read_int(&r), ZK_UNIMPLEMENTED);
	cr_assert(c->close_after_flush);
}

Test(conn, a_reconnect_to_an_unknown_session_is_told_it_expired)
{
	connect_request(0x1234);
	uint8_t buf[128];
	struct jute_reader r;
	output_frame(&r, buf, sizeof buf);
	cr_assert_eq(jute_read_int(&r), 0);
	cr_assert_eq(jute_read_int(&r), 0, "timeout 0: expired");
	cr_assert_eq(jute_read_long(&r), 0, "session id 0");
	cr_assert(c->close_after_flush);
	cr_assert_null(hub_from_worker(&hub, 0));
}

/*
 * A session whose move to this server was lost (RK_MSG_SESSION_RECLAIM, net/worker.c)
 * is announced again by its connection: a new SESSION_ATTACH for the raft thread,
 * the connection untouched. When the announce cannot be queued (the raft queue full),
 * the connection closes after what it has to send: its client reconnects, as after
 * any disconnect, rather than staying on a server that does not own its session.
 */
Test(conn, a_lost_move_is_announced_again_and_the_connection_stays)
{
	establish();
	conn_announce_attach(w, c);
	struct rk_msg *m = hub_from_worker(&hub, 0);
	cr_assert_not_null(m, "nothing was announced");
	cr_assert_eq(m->kind, RK_MSG_SESSION_ATTACH);
	cr_assert_eq(m->conn_id, c->id);
	cr_assert_eq(m->session_id, c->session_id);
	free(m);
	cr_assert_eq(c->state, CONN_ESTABLISHED);
	cr_assert_not(c->close_after_flush);
}

Test(conn, a_lost_move_that_cannot_be_announced_closes_the_connection)
{
	establish();
	static struct rk_msg filler = { .kind = RK_MSG_PROPOSAL };
	size_t queued = 0;
	while (hub_to_raft(&hub, 0, &filler, &w->ring))
		queued++;
	cr_assert_eq(queued, HUB_QUEUE_CAPACITY, "the raft queue holds %zu", queued);
	conn_announce_attach(w, c);
	cr_assert_eq(c->state, CONN_CLOSING);
	cr_assert(c->close_after_flush, "what was queued for the client still goes out");
	size_t drained = 0;
	struct rk_msg *m;
	while ((m = hub_from_worker(&hub, 0))) {
		cr_assert_eq(m, &filler, "only the filler was queued");
		drained++;
	}
	cr_assert_eq(drained, queued);
}
