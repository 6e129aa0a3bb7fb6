/*
 * conn_session.c — a connection's handshake: the ConnectRequest creates a session,
 * reattaches one, or is refused. Runs only on the owning worker thread.
 *
 *   session 0            createSession goes through the log; the ConnectResponse is
 *                        sent when it has been applied here (conn_on_session_created)
 *   a session we know    its password checked; answered at once, and the raft thread
 *                        told (RK_MSG_SESSION_ATTACH) so that its other connections,
 *                        on any worker, close and its later requests name this server
 *   a session we do not  in a cluster this server may simply be behind: the session
 *     know               was created and committed through another server a moment
 *                        ago and its entry has not been applied here yet (a client
 *                        whose first server died at once reconnects with lastZxid 0).
 *                        ZooKeeper's follower asks its leader (REVALIDATE); here the
 *                        connection asks for a read index (the sync path, never
 *                        logged), and once this server has applied everything that
 *                        was committed when it asked, looks again: unknown then means
 *                        expired. No answer (no leader): the connection closes
 *                        without a verdict and the client tries another server.
 *
 * A refusal (not serving, client ahead of us) closes the connection without an
 * answer; an expired session or a wrong password gets ZooKeeper's "expired" answer
 * (timeout 0, session 0) before the close.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/zk_proto.h"
#include "net/conn.h"
#include "net/conn_impl.h"
#include "net/frames.h"
#include "net/server.h"
#include "net/worker.h"
#include "store/store.h"

static void conn_send_connect_response(struct worker *w, struct conn *c, int32_t timeout_ms, int64_t session_id,
				       const uint8_t passwd[16])
{
	size_t start = c->out.len;
	jute_write_int(&c->out, 0);
	jute_write_int(&c->out, 0); /* protocolVersion */
	jute_write_int(&c->out, timeout_ms);
	jute_write_long(&c->out, session_id);
	jute_write_buffer(&c->out, passwd, 16);
	if (c->handshake_readonly_byte)
		jute_write_bool(&c->out, false);
	frame_end(&c->out, start);
	c->last_response_ms = w->now_ms;
	conn_frame_done(w, c);
}

static int32_t negotiate_timeout(const struct server *srv, int32_t requested)
{
	if (requested < srv->min_session_timeout_ms)
		return srv->min_session_timeout_ms;
	if (requested > srv->max_session_timeout_ms)
		return srv->max_session_timeout_ms;
	return requested;
}

bool conn_in_cluster(const struct server *srv)
{
	uint32_t voters = 0;
	for (uint32_t i = 0; i < srv->cfg.server_count; i++)
		voters += srv->cfg.servers[i].role == CONFIG_ROLE_PARTICIPANT;
	return voters > 1;
}

static void conn_new_session(struct worker *w, struct conn *c, int32_t timeout_ms)
{
	c->session_id = server_session_id_next(w->srv);
	c->timeout_ms = timeout_ms;
	if (getrandom(c->passwd, sizeof c->passwd, 0) != (ssize_t)sizeof c->passwd) {
		log_error("getrandom failed: %s", strerror(errno));
		worker_conn_close(w, c);
		return;
	}
	uint8_t session_body[4 + 4 + 16];
	struct jute_writer sw = { session_body, 0, sizeof session_body, sizeof session_body, 0 };
	jute_write_int(&sw, timeout_ms);
	jute_write_buffer(&sw, c->passwd, 16);
	assert(sw.len == sizeof session_body && sw.err == 0);
	c->state = CONN_HANDSHAKE;
	log_debug("conn %s: new session 0x%llx proposed", c->peer, (unsigned long long)c->session_id);
	if (!conn_propose(w, c, 0, ZK_OP_CREATE_SESSION, session_body, sw.len, (uint64_t)rk_now_us())) {
		log_warn("conn %s: raft queue full, refusing connection", c->peer);
		worker_conn_close(w, c);
	}
}

static void conn_session_expired(struct worker *w, struct conn *c, int64_t session_id)
{
	static const uint8_t zeros[16];
	log_info("conn %s: session 0x%llx expired or bad password", c->peer, (unsigned long long)session_id);
	conn_send_connect_response(w, c, 0, 0, zeros);
	c->close_after_flush = true;
	c->state = CONN_CLOSING;
}

/*
 * Tells the raft thread that this connection serves its session now: any other
 * connection of it, on any worker, must go, and in a cluster a move names this server
 * in the log. If that cannot be announced (no memory, raft queue full), this
 * connection goes instead, as a createSession that cannot be queued does: one session
 * is never served by two connections. The client reconnects.
 */
void conn_announce_attach(struct worker *w, struct conn *c)
{
	struct rk_msg *m = calloc(1, sizeof *m);
	bool announced = false;
	if (m) {
		m->kind = RK_MSG_SESSION_ATTACH;
		m->conn_id = c->id;
		m->session_id = c->session_id;
		announced = worker_send_to_raft(w, m);
		if (!announced)
			free(m);
	}
	if (!announced) {
		log_warn("conn %s: cannot announce the attach of session 0x%llx (raft queue full or no memory): "
			 "closing it", c->peer, (unsigned long long)c->session_id);
		c->close_after_flush = true;
		c->state = CONN_CLOSING;
	}
}

/* A session the store holds, with the right password: this connection takes it over. */
static void conn_reattach(struct worker *w, struct conn *c, int64_t session_id, int32_t timeout_ms,
			  const uint8_t passwd[16])
{
	c->session_id = session_id;
	c->timeout_ms = timeout_ms;
	memcpy(c->passwd, passwd, 16);
	c->state = CONN_ESTABLISHED;
	store_session_touch(w->srv->store, session_id, w->now_ms, timeout_ms);
	conn_send_connect_response(w, c, timeout_ms, session_id, passwd);
	conn_announce_attach(w, c);
	if (c->state == CONN_ESTABLISHED)
		log_debug("conn %s: session 0x%llx reattached", c->peer, (unsigned long long)session_id);
}

/* Reattach, expired, or (in a cluster, once) ask for a read index and look again. */
static void conn_resume_session(struct worker *w, struct conn *c, int64_t session_id, int32_t timeout_ms,
				const uint8_t passwd[16], bool may_revalidate)
{
	int32_t stored_timeout;
	uint8_t stored_passwd[16];
	if (store_session_get(w->srv->store, session_id, &stored_timeout, stored_passwd)) {
		if (memcmp(stored_passwd, passwd, 16) == 0)
			conn_reattach(w, c, session_id, timeout_ms, stored_passwd);
		else
			conn_session_expired(w, c, session_id);
		return;
	}
	if (!may_revalidate || !conn_in_cluster(w->srv)) {
		conn_session_expired(w, c, session_id);
		return;
	}
	static const char root[] = "/";
	uint8_t body[4 + sizeof root - 1];
	struct jute_writer bw = { body, 0, sizeof body, sizeof body, 0 };
	jute_write_string(&bw, root, (int32_t)(sizeof root - 1));
	c->reval_session_id = session_id;
	c->reval_timeout_ms = timeout_ms;
	memcpy(c->reval_passwd, passwd, 16);
	c->revalidating = true;
	c->state = CONN_HANDSHAKE;
	log_debug("conn %s: session 0x%llx unknown here: revalidating through a read index", c->peer,
		  (unsigned long long)session_id);
	if (!conn_propose(w, c, 0, ZK_OP_SYNC, body, bw.len, (uint64_t)rk_now_us())) {
		log_warn("conn %s: raft queue full, refusing connection", c->peer);
		worker_conn_close(w, c);
	}
}

void conn_handshake(struct worker *w, struct conn *c, const uint8_t *body, size_t len)
{
	struct server *srv = w->srv;
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	jute_read_int(&r); /* protocolVersion: 0 from every client we serve */
	int64_t last_zxid_seen = jute_read_long(&r);
	int32_t timeout_req = jute_read_int(&r);
	int64_t session_id = jute_read_long(&r);
	struct jute_bytes passwd = jute_read_buffer(&r);
	if (jute_reader_ok(&r) && jute_reader_remaining(&r) >= 1) {
		jute_read_bool(&r);
		c->handshake_readonly_byte = true;
	}
	if (!jute_reader_ok(&r)) {
		log_info("conn %s: malformed ConnectRequest, closing", c->peer);
		worker_conn_close(w, c);
		return;
	}
	c->packets_received++; /* ZooKeeper counts the ConnectRequest as a packet */
	stats_add_resettable(&w->stats, &srv->stats.reset_gen, &w->stats.packets_received, 1);
	stats_add(&w->stats.connection_requests, 1);
	if (!atomic_load_explicit(&srv->hub->serving, memory_order_relaxed)) {
		/* No leader for a while (a minority, or an election that drags): the client
		 * must find a server that has one, as when ZooKeeper is LOOKING. */
		log_info("conn %s: refusing session 0x%llx: not serving (no leader)", c->peer,
			 (unsigned long long)session_id);
		worker_conn_close(w, c);
		return;
	}
	int64_t last_zxid = store_last_zxid(srv->store);
	if (last_zxid_seen > last_zxid) {
		/* The client saw a newer state than ours: it must try another server. */
		log_info("conn %s: refusing session 0x%llx, client zxid 0x%llx is ahead of ours 0x%llx", c->peer,
			 (unsigned long long)session_id, (unsigned long long)last_zxid_seen,
			 (unsigned long long)last_zxid);
		worker_conn_close(w, c);
		return;
	}
	int32_t timeout_ms = negotiate_timeout(srv, timeout_req);
	if (session_id == 0) {
		conn_new_session(w, c, timeout_ms);
		return;
	}
	if (passwd.len != 16) {
		conn_session_expired(w, c, session_id);
		return;
	}
	conn_resume_session(w, c, session_id, timeout_ms, passwd.data, true);
}

void conn_on_revalidated(struct worker *w, struct conn *c, int32_t err)
{
	c->revalidating = false;
	if (c->state != CONN_HANDSHAKE)
		return;
	if (err != ZK_OK) {
		/* No leader confirmed an index: no verdict; another server may have one. */
		log_info("conn %s: session 0x%llx could not be revalidated (%d): closing", c->peer,
			 (unsigned long long)c->reval_session_id, err);
		worker_conn_close(w, c);
		return;
	}
	conn_resume_session(w, c, c->reval_session_id, c->reval_timeout_ms, c->reval_passwd, false);
	if (c->state == CONN_ESTABLISHED && c->in.len)
		worker_conn_mark_ready(w, c);
}

void conn_on_session_created(struct worker *w, struct conn *c, const struct rk_msg *m)
{
	assert(c->outstanding_writes > 0);
	c->outstanding_writes--;
	if (c->state != CONN_HANDSHAKE)
		return;
	if (m->err != ZK_OK) {
		log_warn("conn %s: createSession failed: %d", c->peer, m->err);
		worker_conn_close(w, c);
		return;
	}
	c->state = CONN_ESTABLISHED;
	store_session_touch(w->srv->store, c->session_id, w->now_ms, c->timeout_ms);
	conn_send_connect_response(w, c, c->timeout_ms, c->session_id, c->passwd);
	conn_record_latency(w, c, ZK_OP_CREATE_SESSION, m->start_us);
	log_debug("conn %s: session 0x%llx established, timeout %d ms", c->peer, (unsigned long long)c->session_id,
		  c->timeout_ms);
	if (c->in.len)
		worker_conn_mark_ready(w, c);
}
