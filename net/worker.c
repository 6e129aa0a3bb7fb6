/*
 * worker.c — the per-core event loop. One worker per CPU, pinned, owning:
 *   - an io_uring created on its own thread (SINGLE_ISSUER | DEFER_TASKRUN when the
 *     kernel has them: only this thread submits, completions run when it asks);
 *   - a listening socket on clientPort with SO_REUSEPORT (the kernel spreads new
 *     connections over the workers), served by one multishot accept;
 *   - a provided-buffer ring (set up by hand: liburing 2.3 has no setup helper) that
 *     feeds one multishot recv per connection;
 *   - its connections (slot table + generation) and their sessions' front ends.
 *
 * One turn of the loop
 *   1. drain the inbound SPSC queue from the raft thread (replies, notifications);
 *   2. run the requests that were waiting behind a write (ready list);
 *   3. retry input held back by a limit (stalled list);
 *   4. issue one send per connection with bytes waiting (batched: everything a turn
 *      produced for a connection goes out in one send);
 *   5. free connections whose in-flight operations are done and whose linger ended
 *      (reap list);
 *   6. announce sleep, re-check the queue, then submit and wait for completions.
 *
 * Closing a connection: two ways
 *   abort     worker_conn_close: shutdown(SHUT_RDWR) now, free once its in-flight
 *             operations complete. Errors, limits, a session that moved or expired.
 *   graceful  a conn marked close_after_flush (a four-letter word's answer, the
 *             closeSession reply, an auth failure): once its last byte is in the kernel,
 *             shutdown(SHUT_WR) puts the FIN behind the answer and the multishot recv stays
 *             armed, dropping input, until the peer's FIN or WORKER_LINGER_MS; then
 *             close(2). Closing at once loses answers: a byte that arrives after
 *             shutdown(SHUT_RD) or close (the newline of `echo ruok | nc`, anything sent
 *             late) makes the kernel answer with RST (TcpExtTCPAbortOnData) and throw away
 *             the answer bytes still queued for a slow reader (a large mntr, cons, dump,
 *             wchc); even a small answer can be lost to the RST (nc stops reading when
 *             its shutdown(SHUT_WR) then fails with ENOTCONN). The linger deadline is
 *             on the monotonic clock: a wall-clock step cannot stretch it.
 *   A peer FIN (recv 0) while such an answer is still to be sent does not close either:
 *   a client that sends the word and FIN together has both completions in one batch,
 *   before the answer's send is issued; the conn remembers peer_eof, sends, then closes
 *   without lingering (the peer has nothing more to send).
 *
 *     close_after_flush ──last byte sent──► FIN, lingering ──peer FIN, recv error──► freed
 *                                              │ WORKER_LINGER_MS
 *                                              └──► shutdown(SHUT_RDWR) ──recv ends──► freed
 *
 * Invariants of the reap list
 *   1. A conn is on it at most once (c->shut is set when it goes on), so the list is
 *      bounded by WORKER_CONNS_MAX.
 *   2. Every conn on it is freed: in-flight operations complete (shutdown ends the
 *      recv), and a lingering conn is shut down for reading at its deadline, which the
 *      loop notices within one wait timeout (500 ms).
 *
 * /metrics (net/http.c): worker 0 may also own the metrics listener; its completions
 * (UD_HTTP) go to the HTTP server, which is ticked once per turn for its deadlines.
 *
 * Wake-ups: the raft thread pushes to this worker's port of the hub (core/hub.h) and,
 * only if this worker announced sleep, sends IORING_OP_MSG_RING to this ring. No
 * eventfd, no lock.
 *
 * user_data = kind << 56 | low 48 bits of the conn id (net/worker_impl.h).
 * Creation, ring setup, pinning and destruction: net/worker_life.c.
 */
#include "net/worker.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/msg.h"
#include "net/conn.h"
#include "net/fourlw.h"
#include "net/http.h"
#include "net/server.h"
#include "net/worker_impl.h"
#include "store/store.h"

#define CONN_PAUSE_IN_BYTES (64u << 10)
/* How long a gracefully closed conn waits for the peer's FIN before close(2). */
#define WORKER_LINGER_MS 2000

struct io_uring_sqe *worker_get_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	if (!sqe) {
		/* SQ full: hand what we have to the kernel and take a fresh slot. */
		atomic_fetch_add_explicit(&w->sqe_full_count, 1, memory_order_relaxed);
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	assert(sqe);
	return sqe;
}

bool worker_send_to_raft(struct worker *w, struct rk_msg *msg)
{
	return hub_to_raft(w->srv->hub, w->index, msg, &w->ring);
}

/* ---- connection table ---------------------------------------------------------- */

struct conn *worker_conn_lookup(struct worker *w, uint64_t conn_id)
{
	uint32_t slot = (uint32_t)(conn_id & 0xffffff);
	uint32_t gen = (uint32_t)((conn_id >> 24) & 0xffffff);
	if (rk_conn_id_worker(conn_id) != (uint32_t)w->index || slot >= WORKER_CONNS_MAX)
		return NULL;
	struct conn *c = w->conns[slot];
	if (!c || w->conn_gen[slot] != gen)
		return NULL;
	return c;
}

void worker_conn_mark_send(struct worker *w, struct conn *c)
{
	if (c->in_send_list || c->send_inflight)
		return;
	c->in_send_list = true;
	c->send_next = w->send_list;
	w->send_list = c;
}

void worker_conn_mark_ready(struct worker *w, struct conn *c)
{
	if (c->in_ready_list)
		return;
	c->in_ready_list = true;
	c->ready_next = w->ready_list;
	w->ready_list = c;
}

void worker_conn_mark_stalled(struct worker *w, struct conn *c)
{
	if (c->in_stalled)
		return;
	c->in_stalled = true;
	c->stalled_next = w->stalled;
	w->stalled = c;
}


static void worker_reap_push(struct worker *w, struct conn *c, int64_t linger_deadline_us)
{
	struct conn_reap *r = malloc(sizeof *r);
	assert(r);
	r->c = c;
	r->linger_deadline_us = linger_deadline_us;
	r->next = w->reap_list;
	w->reap_list = r;
}

void worker_conn_close(struct worker *w, struct conn *c)
{
	if (c->shut)
		return;
	c->shut = true;
	c->state = CONN_CLOSING;
	shutdown(c->fd, SHUT_RDWR);
	worker_reap_push(w, c, 0);
}

static void worker_conn_finalize(struct worker *w, struct conn *c)
{
	uint32_t slot = (uint32_t)(c->id & 0xffffff);
	log_debug("conn %s: closed (session 0x%llx)", c->peer, (unsigned long long)c->session_id);
	store_watcher_drop(w->srv->store, c->id);
	server_ip_release(w->srv, c->addr, c->addr_len);
	close(c->fd);
	pthread_mutex_lock(&w->registry_lock);
	w->conns[slot] = NULL;
	w->conn_gen[slot] = (w->conn_gen[slot] + 1) & 0xffffff;
	w->free_slots[w->free_count++] = slot;
	if (!c->fin_sent)
		w->conn_count--;
	pthread_mutex_unlock(&w->registry_lock);
	conn_free(w, c);
}

static void worker_reap_closed(struct worker *w)
{
	struct conn_reap **pp = &w->reap_list;
	int64_t now_us = *pp ? rk_now_us() : 0;
	while (*pp) {
		struct conn_reap *r = *pp;
		struct conn *c = r->c;
		if (c->lingering && now_us >= r->linger_deadline_us) {
			/* No FIN from the peer in time: stop reading; the recv ends with 0. */
			c->lingering = false;
			shutdown(c->fd, SHUT_RDWR);
		}
		if (c->recv_armed || c->send_inflight || c->in_send_list || c->in_ready_list || c->in_stalled) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		worker_conn_finalize(w, c);
		free(r);
	}
}

/* ---- submissions ------------------------------------------------------------------ */

static void worker_arm_accept(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_multishot_accept(sqe, w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_make(UD_ACCEPT, 0));
	w->accept_armed = true;
}

static void worker_arm_recv(struct worker *w, struct conn *c)
{
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = (__u16)w->buf_group;
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, c->id));
	c->recv_armed = true;
}

static void worker_pause_recv(struct worker *w, struct conn *c)
{
	if (!c->recv_armed || c->recv_paused)
		return;
	c->recv_paused = true;
	struct io_uring_sqe *sqe = worker_get_sqe(w);
	io_uring_prep_cancel64(sqe, ud_make(UD_RECV, c->id), 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_CANCEL, c->id));
}

static void worker_maybe_unpause(struct worker *w, struct conn *c)
{
	if (!c->recv_paused || c->shut || c->peer_eof || c->in.len >= CONN_PAUSE_IN_BYTES / 2)
		return;
	c->recv_paused = false;
	if (!c->recv_armed)
		worker_arm_recv(w, c);
}

/*
 * The last byte of a close_after_flush conn is in the kernel: FIN now, close(2) after
 * the peer's FIN or the linger deadline (see "Closing a connection" above).
 */
static void worker_conn_close_graceful(struct worker *w, struct conn *c)
{
	assert(!c->shut && !c->send_inflight && c->out.len == 0 && c->close_after_flush);
	c->shut = true;
	c->fin_sent = true;
	c->close_after_flush = false; /* nothing more is sent */
	c->state = CONN_CLOSING;
	shutdown(c->fd, SHUT_WR);
	/* Closed as far as the client and the 4lw counts go: its watches go now and it
	 * leaves srvr/mntr's connection count, as when the close was immediate. It still
	 * holds its slot and its place in maxClientCnxns until freed, so one address
	 * cannot pile up lingering connections. */
	store_watcher_drop(w->srv->store, c->id);
	pthread_mutex_lock(&w->registry_lock);
	w->conn_count--;
	pthread_mutex_unlock(&w->registry_lock);
	if (c->peer_eof) {
		/* The peer sent its FIN and the recv drained everything before it. */
		assert(!c->recv_armed);
		worker_reap_push(w, c, 0);
		return;
	}
	c->lingering = true;
	c->recv_paused = false; /* a pause's cancel completes in worker_linger_on_recv, which re-arms */
	if (!c->recv_armed)
		worker_arm_recv(w, c);
	worker_reap_push(w, c, rk_now_us() + (int64_t)WORKER_LINGER_MS * 1000);
}

static void worker_flush_sends(struct worker *w)
{
	struct conn *c = w->send_list;
	w->send_list = NULL;
	while (c) {
		struct conn *next = c->send_next;
		c->in_send_list = false;
		if (!c->send_inflight && c->out.len && !(c->shut && !c->close_after_flush)) {
			struct jute_writer tmp = c->out_sending;
			c->out_sending = c->out;
			c->out = tmp;
			jute_writer_reset(&c->out);
			c->sending_off = 0;
			struct io_uring_sqe *sqe = worker_get_sqe(w);
			io_uring_prep_send(sqe, c->fd, c->out_sending.buf, c->out_sending.len, MSG_NOSIGNAL);
			io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, c->id));
			c->send_inflight = true;
		} else if (!c->send_inflight && c->close_after_flush && !c->shut) {
			worker_conn_close_graceful(w, c);
		}
		c = next;
	}
}

/* ---- completions ------------------------------------------------------------------ */

static void worker_on_accept(struct worker *w, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		w->accept_armed = false;
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED)
			log_warn("accept: %s", strerror(-cqe->res));
		return;
	}
	int fd = cqe->res;
	struct sockaddr_storage ss;
	socklen_t ss_len = sizeof ss;
	uint8_t addr[16] = { 0 };
	int addr_len = 0;
	char peer[64] = "?";
	if (getpeername(fd, (struct sockaddr *)&ss, &ss_len) == 0) {
		char host[INET6_ADDRSTRLEN] = "?";
		int port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			memcpy(addr, &sin->sin_addr, 4);
			addr_len = 4;
			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
			port = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			memcpy(addr, &sin6->sin6_addr, 16);
			addr_len = 16;
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
			port = ntohs(sin6->sin6_port);
		}
		snprintf(peer, sizeof peer, "%s:%d", host, port);
	}
	if (!server_ip_acquire(w->srv, addr, addr_len)) {
		atomic_fetch_add_explicit(&w->srv->stats.connections_refused, 1, memory_order_relaxed);
		log_warn("too many connections from %s (maxClientCnxns %d), refusing", peer,
			 w->srv->cfg.client_connections_per_ip_max);
		close(fd);
		return;
	}
	if (w->free_count == 0) {
		log_warn("worker %d: %d connections, refusing %s", w->index, WORKER_CONNS_MAX, peer);
		server_ip_release(w->srv, addr, addr_len);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	uint32_t slot = w->free_slots[--w->free_count];
	uint64_t id = ((uint64_t)w->index << 48) | ((uint64_t)w->conn_gen[slot] << 24) | slot;
	struct conn *c = conn_new(w, id, fd);
	if (!c) {
		w->free_slots[w->free_count++] = slot;
		server_ip_release(w->srv, addr, addr_len);
		close(fd);
		return;
	}
	memcpy(c->addr, addr, sizeof addr);
	c->addr_len = addr_len;
	memcpy(c->peer, peer, sizeof peer);
	/* Every connection holds the implicit ip:<address> identity (ACLs, whoAmI). */
	char *colon = strrchr(peer, ':');
	if (colon)
		*colon = 0;
	c->auth[0].scheme = strdup("ip");
	c->auth[0].id = strdup(peer);
	if (!c->auth[0].scheme || !c->auth[0].id) {
		free(c->auth[0].scheme);
		free(c->auth[0].id);
		c->auth[0].scheme = c->auth[0].id = NULL;
	} else {
		c->auth_count = 1;
	}
	pthread_mutex_lock(&w->registry_lock);
	w->conns[slot] = c;
	w->conn_count++;
	pthread_mutex_unlock(&w->registry_lock);
	worker_arm_recv(w, c);
	log_debug("conn %s: accepted on worker %d", peer, w->index);
}

/* Buffer `bid` into the ring, `offset` entries past its tail (advanced by the caller). */
static void worker_buffer_add(struct worker *w, unsigned bid, int offset)
{
	io_uring_buf_ring_add(w->buf_ring, w->buf_base + (size_t)bid * WORKER_RECV_BUF_BYTES, WORKER_RECV_BUF_BYTES,
			      (unsigned short)bid, io_uring_buf_ring_mask(WORKER_RECV_BUF_COUNT), offset);
}

/* Puts the next WORKER_RECV_BUF_STEP buffers never used yet in the ring (none left: no-op). */
void worker_provide_buffers(struct worker *w)
{
	unsigned first = atomic_load_explicit(&w->buf_provided, memory_order_relaxed);
	unsigned n = WORKER_RECV_BUF_COUNT - first;
	if (n > WORKER_RECV_BUF_STEP)
		n = WORKER_RECV_BUF_STEP;
	for (unsigned i = 0; i < n; i++)
		worker_buffer_add(w, first + i, (int)i);
	io_uring_buf_ring_advance(w->buf_ring, (int)n);
	atomic_store_explicit(&w->buf_provided, first + n, memory_order_relaxed);
	if (n && first)
		log_debug("worker %d: %u receive buffers in the ring", w->index, first + n);
}

static void worker_recycle_buffer(struct worker *w, unsigned bid)
{
	worker_buffer_add(w, bid, 0);
	io_uring_buf_ring_advance(w->buf_ring, 1);
}

/*
 * Bytes for a conn that is not closing. stmk's 8-byte argument follows the word on the
 * stream and goes to net/fourlw.c, not to the framing: the bytes of this chunk after the
 * word (a word is only the first 4 bytes of a fresh conn's stream, of which `held` were
 * kept from earlier chunks), then whole later chunks.
 */
static void worker_conn_input(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	if (c->fourlw_arg_wanted) {
		fourlw_on_arg(w, c, data, len);
		return;
	}
	bool fresh = c->state == CONN_NEW;
	size_t held = c->in.len;
	conn_on_input(w, c, data, len);
	if (c->fourlw_arg_wanted && !c->shut) {
		assert(fresh && held < 4);
		size_t word_end = 4 - held;
		if (len > word_end)
			fourlw_on_arg(w, c, data + word_end, len - word_end);
	}
}

/* A lingering conn: its input is dropped; its FIN or an error ends the linger. */
static void worker_linger_on_recv(struct worker *w, struct conn *c, int res)
{
	if (res == -ENOBUFS)
		w->buf_short = true;
	if (res > 0 || res == -ENOBUFS || res == -ECANCELED) {
		if (!c->recv_armed)
			worker_arm_recv(w, c);
		return;
	}
	c->lingering = false;
}

static void worker_on_recv(struct worker *w, struct io_uring_cqe *cqe)
{
	struct conn *c = worker_conn_lookup(w, ((uint64_t)w->index << 48) | (cqe->user_data & UD_ID_MASK));
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	bool more = cqe->flags & IORING_CQE_F_MORE;
	if (c && !more)
		c->recv_armed = false;
	if (c && c->lingering) {
		worker_linger_on_recv(w, c, cqe->res);
	} else if (c && !c->shut) {
		if (cqe->res > 0 && has_buf) {
			stats_add(&w->stats.bytes_received, (uint64_t)cqe->res);
			worker_conn_input(w, c, w->buf_base + (size_t)bid * WORKER_RECV_BUF_BYTES, (size_t)cqe->res);
			if (!c->shut && c->in.len > CONN_PAUSE_IN_BYTES &&
			    (c->state == CONN_HANDSHAKE || c->in_stalled || conn_is_stalled(w, c)))
				worker_pause_recv(w, c);
		} else if (cqe->res == 0 && c->close_after_flush) {
			/* An answer is still to be sent: a client that sends a four-letter word
			 * and its FIN together (`echo ruok | nc -q1`) has both completions in
			 * one batch, before the answer's send is issued. Send it, then close. */
			c->peer_eof = true;
			worker_conn_mark_send(w, c);
		} else if (cqe->res == 0) {
			worker_conn_close(w, c);
		} else if (cqe->res == -ENOBUFS) {
			/* Every buffer is out: they come back this turn, and the ring gets one
			 * step more after it (worker_main) while it has fewer than all; re-arm
			 * below. */
			w->buf_short = true;
		} else if (cqe->res == -ECANCELED) {
			/* paused by us */
		} else if (cqe->res < 0) {
			log_debug("conn %s: recv: %s", c->peer, strerror(-cqe->res));
			worker_conn_close(w, c);
		}
		if (!c->shut && !c->recv_armed && !c->recv_paused && !c->peer_eof)
			worker_arm_recv(w, c);
	}
	if (has_buf)
		worker_recycle_buffer(w, bid);
}

static void worker_on_send(struct worker *w, struct io_uring_cqe *cqe)
{
	struct conn *c = worker_conn_lookup(w, ((uint64_t)w->index << 48) | (cqe->user_data & UD_ID_MASK));
	if (!c)
		return;
	c->send_inflight = false;
	if (cqe->res < 0) {
		if (!c->shut)
			log_debug("conn %s: send: %s", c->peer, strerror(-cqe->res));
		c->close_after_flush = false;
		worker_conn_close(w, c);
		return;
	}
	c->sending_off += (size_t)cqe->res;
	if (c->sending_off < c->out_sending.len) {
		struct io_uring_sqe *sqe = worker_get_sqe(w);
		io_uring_prep_send(sqe, c->fd, c->out_sending.buf + c->sending_off,
				   c->out_sending.len - c->sending_off, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, c->id));
		c->send_inflight = true;
		return;
	}
	jute_writer_reset(&c->out_sending);
	if (c->out.len || c->close_after_flush)
		worker_conn_mark_send(w, c);
	if (c->in.len && c->state == CONN_ESTABLISHED)
		worker_conn_mark_ready(w, c); /* output backpressure may have held input */
}

/* The server stopped serving (no leader): every client connection goes, as a
 * ZooKeeper server going LOOKING closes them; four-letter-word ones finish. */
static void worker_close_all_clients(struct worker *w)
{
	uint32_t n = 0;
	for (uint32_t slot = 0; slot < WORKER_CONNS_MAX; slot++) {
		struct conn *c = w->conns[slot];
		if (c && !c->shut && c->state != CONN_CLOSING) {
			c->close_after_flush = false;
			worker_conn_close(w, c);
			n++;
		}
	}
	if (n)
		log_info("closed %u client connections: not serving (no leader)", n);
}

static void worker_on_msg(struct worker *w, struct rk_msg *m)
{
	switch ((enum rk_msg_kind)m->kind) {
	case RK_MSG_REPLY:
	case RK_MSG_SESSION_CREATED:
		atomic_fetch_sub_explicit(&w->srv->global_outstanding, 1, memory_order_relaxed);
		/* fallthrough */
	case RK_MSG_EVENT: {
		struct conn *c = worker_conn_lookup(w, m->conn_id);
		if (c && !c->shut)
			conn_on_msg(w, c, m);
		break;
	}
	case RK_MSG_SESSION_GONE:
		if (m->session_id == 0) {
			worker_close_all_clients(w);
			break;
		}
		for (uint32_t slot = 0; slot < WORKER_CONNS_MAX; slot++) {
			struct conn *c = w->conns[slot];
			if (c && c->session_id == m->session_id && c->id != m->conn_id && !c->shut &&
			    c->state != CONN_NEW) {
				log_info("conn %s: session 0x%llx %s", c->peer, (unsigned long long)m->session_id,
					 m->err ? "expired" : "moved to another connection");
				c->close_after_flush = false;
				worker_conn_close(w, c);
			}
		}
		break;
	case RK_MSG_SESSION_RECLAIM:
		/* Our move of the session was lost: its connection here (at most one is
		 * established) names this server again, or goes if it cannot. */
		for (uint32_t slot = 0; slot < WORKER_CONNS_MAX; slot++) {
			struct conn *c = w->conns[slot];
			if (c && c->session_id == m->session_id && !c->shut && c->state == CONN_ESTABLISHED) {
				log_info("conn %s: session 0x%llx: its move here was lost: announcing it again", c->peer,
					 (unsigned long long)m->session_id);
				conn_announce_attach(w, c);
				if (c->state != CONN_ESTABLISHED)
					worker_conn_close(w, c);
			}
		}
		break;
	case RK_MSG_PROPOSAL:
	case RK_MSG_SESSION_ATTACH:
	case RK_MSG_LEADERSHIP:
		assert(!"raft-bound message on a worker queue");
		break;
	}
	free(m);
}

void worker_drain_inbound(struct worker *w)
{
	struct rk_msg *m;
	while ((m = hub_from_raft(w->srv->hub, w->index)))
		worker_on_msg(w, m);
}

void worker_drain_inbound_upto(struct worker *w, int64_t zxid)
{
	struct rk_msg *m;
	while ((m = hub_peek_from_raft(w->srv->hub, w->index)) && m->zxid <= zxid) {
		hub_from_raft(w->srv->hub, w->index);
		worker_on_msg(w, m);
	}
}

static void worker_run_lists(struct worker *w)
{
	while (w->ready_list) {
		struct conn *c = w->ready_list;
		w->ready_list = c->ready_next;
		c->in_ready_list = false;
		if (c->shut)
			continue;
		conn_run_deferred(w, c);
		if (!c->shut)
			conn_resume(w, c);
		if (!c->shut)
			worker_maybe_unpause(w, c);
	}
	struct conn *c = w->stalled;
	w->stalled = NULL;
	while (c) {
		struct conn *next = c->stalled_next;
		c->in_stalled = false;
		if (!c->shut) {
			conn_resume(w, c);
			if (!c->shut)
				worker_maybe_unpause(w, c);
		}
		c = next;
	}
}
void *worker_main(void *arg)
{
	struct worker_boot *boot = arg;
	struct worker *w = boot->w;
	char name[16];
	snprintf(name, sizeof name, "w%d", w->index);
	rk_log_thread_name(name);
	boot->rc = worker_setup_ring(w);
	sem_post(&boot->done); /* boot is gone after this */
	if (w->ring_fd <= 0)
		return NULL;
	w->now_ms = rk_now_ms();
	if (w->http)
		http_server_start(w->http);
	_Atomic int *sleeping = &w->srv->hub->ports[w->index].sleeping;
	/* Closed connections' buffers, a long reply's scratch: handed back once the
	 * worker's completions go quiet (core/mem.h). */
	struct rk_mem_quiet quiet = { .window_start_us = rk_now_us() };
	while (!atomic_load_explicit(&w->srv->hub->stopping, memory_order_relaxed)) {
		worker_drain_inbound(w);
		worker_run_lists(w);
		worker_flush_sends(w);
		worker_reap_closed(w);
		if (!w->accept_armed)
			worker_arm_accept(w);
		if (w->http)
			http_tick(w->http, rk_now_us()); /* /metrics: deadlines, freeing */

		atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
		bool busy = hub_peek_from_raft(w->srv->hub, w->index) || w->ready_list || w->send_list;
		struct __kernel_timespec ts = { 0, w->stalled ? 1000000 : 500000000 };
		struct io_uring_cqe *cqe;
		if (busy) {
			atomic_store_explicit(sleeping, 0, memory_order_relaxed);
			io_uring_submit_and_get_events(&w->ring);
		} else {
			io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
			atomic_store_explicit(sleeping, 0, memory_order_relaxed);
		}
		w->now_ms = rk_now_ms();
		unsigned head, count = 0;
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			count++;
			switch ((enum ud_kind)(cqe->user_data >> 56)) {
			case UD_ACCEPT:
				worker_on_accept(w, cqe);
				break;
			case UD_RECV:
				worker_on_recv(w, cqe);
				break;
			case UD_SEND:
				worker_on_send(w, cqe);
				break;
			case UD_HTTP:
				http_on_cqe(w->http, cqe);
				break;
			case UD_WAKE:
			case UD_CANCEL:
				break;
			}
		}
		io_uring_cq_advance(&w->ring, count);
		if (w->buf_short) {
			w->buf_short = false;
			worker_provide_buffers(w);
		}
		rk_mem_quiet_tick(&quiet, count, rk_now_us());
	}
	return NULL;
}
