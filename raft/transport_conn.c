/*
 * transport_conn.c — a peer connection's I/O on the owner's ring: receiving (one recv
 * in flight, the buffer grown to the largest frame), parsing and delivering frames
 * (invariants 3, 4), the bounded send queues and one sendmsg per connection in flight
 * (invariants 1, 2), and closing: CLOSING until its last operation completes, then
 * FREE (invariant 5). Also the small helpers the other transport files share.
 *
 * Thread: the owner's.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "raft/msg_codec.h"
#include "raft/transport_impl.h"

/* ---- small helpers ------------------------------------------------------------------- */

struct io_uring_sqe *transport_sqe_get(struct transport *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(t->ring);
	if (!sqe) {
		io_uring_submit(t->ring);
		sqe = io_uring_get_sqe(t->ring);
	}
	assert(sqe); /* a submit always frees the whole SQ */
	return sqe;
}

const char *transport_link_name(enum transport_link_kind kind)
{
	switch (kind) {
	case TRANSPORT_LINK_CONTROL:
		return "control";
	case TRANSPORT_LINK_DATA:
		return "data";
	}
	return "?";
}

void transport_addr_text(const struct sockaddr_storage *a, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)a;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)a;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, len, "%s:%u", host, port);
}

/* Logs a peer's problem unless `why` is the one logged last for it (once per state
 * change, not per attempt: the link and the source address are not compared). */
bool tpeer_problem_is_new(struct tpeer *p, const char *why)
{
	/* Kept truncated to the field: a long reason compares by its first bytes. */
	size_t n = strnlen(why, sizeof p->problem - 1);
	if (strncmp(why, p->problem, n) == 0 && p->problem[n] == '\0')
		return false;
	memcpy(p->problem, why, n);
	p->problem[n] = '\0';
	return true;
}

void tpeer_problem(struct tpeer *p, enum transport_link_kind kind, const char *where, const char *why)
{
	if (tpeer_problem_is_new(p, why))
		log_warn("transport: peer %s (%s link%s%s): %s", p->name, transport_link_name(kind), where ? ", " : "",
			 where ? where : "", why);
}

bool tpeer_connected(const struct transport *t, const struct tpeer *p)
{
	for (int k = 0; k < TRANSPORT_LINKS; k++)
		if (p->links[k].conn < 0 || t->conns[p->links[k].conn].state != TCONN_UP)
			return false;
	return true;
}

int transport_peer_index(const struct transport *t, uint32_t id)
{
	for (int i = 0; i < t->peer_count; i++)
		if (t->peers[i].id == id)
			return i;
	return -1;
}

/* ---- closing ------------------------------------------------------------------------- */

static void tx_free(struct tconn *c)
{
	while (c->tx_head) {
		struct tchunk *k = c->tx_head;
		c->tx_head = k->next;
		free(k);
	}
	c->tx_tail = NULL;
	c->tx_bytes = 0;
	c->tx_frames_head = c->tx_frames_count = 0;
	c->tx_front_sent = 0;
}

static bool conn_ops_in_flight(const struct tconn *c)
{
	return c->recv_in_flight || c->send_in_flight || c->connect_in_flight || c->cancel_in_flight;
}

/* CLOSING → FREE once nothing is in flight (invariant 1, 5). */
void tconn_reap(struct transport *t, struct tconn *c)
{
	assert(c->state == TCONN_CLOSING);
	if (conn_ops_in_flight(c))
		return;
	close(c->fd);
	free(c->rx);
	free(c->tx_frames);
	tx_free(c);
	uint16_t generation = (uint16_t)(c->generation + 1);
	memset(c, 0, sizeof *c);
	c->state = TCONN_FREE;
	c->generation = generation;
	c->fd = -1;
	c->peer = -1;
	(void)t;
}

/* Schedules the link's next dial after a failure or a loss (dialer side only). */
void tlink_backoff(struct transport *t, struct tlink *l)
{
	uint32_t d = l->backoff_ms ? l->backoff_ms : t->cfg.backoff_ms_min;
	l->dial_at_ms = t->now_ms + d / 2 + (int64_t)(transport_rng_next(t) % (d / 2 + 1));
	uint32_t next = d * 2;
	l->backoff_ms = next > t->cfg.backoff_ms_max ? t->cfg.backoff_ms_max : next;
}

/* Any state → CLOSING: detaches it from its link, counts what it drops, shuts the
 * socket and cancels its operations. `why` is logged (once per change) for a peer. */
void tconn_close(struct transport *t, struct tconn *c, const char *why)
{
	if (c->state == TCONN_CLOSING || c->state == TCONN_FREE)
		return;
	bool was_up = c->state == TCONN_UP;
	if (c->peer >= 0) {
		struct tpeer *p = &t->peers[c->peer];
		struct tlink *l = &p->links[c->kind];
		bool peer_was_connected = tpeer_connected(t, p);
		if (l->conn == tconn_slot(t, c)) {
			l->conn = -1;
			if (p->we_dial)
				tlink_backoff(t, l);
		}
		if (c->dialed && !p->addr_numeric)
			p->addr_stale = true; /* rule 5: look the name up before the redial */
		p->stats.msgs_dropped += c->tx_frames_count;
		if (peer_was_connected && !t->destroying) {
			log_warn("transport: peer %s lost (%s link: %s)", p->name, transport_link_name(c->kind), why);
			snprintf(p->problem, sizeof p->problem, "%s", "lost");
			p->logged_up = false;
		} else if (!was_up && why) {
			tpeer_problem(p, c->kind, NULL, why);
		}
	}
	c->state = TCONN_CLOSING;
	shutdown(c->fd, SHUT_RDWR);
	if (c->recv_in_flight || c->send_in_flight || c->connect_in_flight) {
		struct io_uring_sqe *sqe = transport_sqe_get(t);
		io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, transport_user_data(t, TOP_CANCEL, (unsigned)tconn_slot(t, c),
								     c->generation));
		c->cancel_in_flight = true;
	}
	tconn_reap(t, c);
}

/* ---- receiving ----------------------------------------------------------------------- */

void tconn_arm_recv(struct transport *t, struct tconn *c)
{
	assert(!c->recv_in_flight && c->rx_len < c->rx_cap);
	struct io_uring_sqe *sqe = transport_sqe_get(t);
	io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
	io_uring_sqe_set_data64(sqe, transport_user_data(t, TOP_RECV, (unsigned)tconn_slot(t, c), c->generation));
	c->recv_in_flight = true;
}

int tconn_rx_reserve(struct tconn *c, size_t need)
{
	if (need <= c->rx_cap)
		return 0;
	size_t cap = c->rx_cap ? c->rx_cap : TRANSPORT_RX_BYTES_MIN;
	while (cap < need)
		cap *= 2;
	uint8_t *rx = realloc(c->rx, cap);
	if (!rx)
		return -ENOMEM;
	c->rx = rx;
	c->rx_cap = cap;
	return 0;
}

int tconn_tx_init(struct transport *t, struct tconn *c)
{
	c->tx_frames = calloc(t->cfg.queue_msgs_max[c->kind], sizeof *c->tx_frames);
	return c->tx_frames ? 0 : -ENOMEM;
}

static bool conn_deliver(struct transport *t, struct tconn *c, const uint8_t *frame, size_t len)
{
	struct tpeer *p = &t->peers[c->peer];
	struct raft_msg m;
	int rc = msg_codec_decode(frame, len, &t->limits, &m, t->entries);
	if (rc < 0) {
		p->stats.protocol_errors++;
		tconn_close(t, c, rc == -EMSGSIZE ? "frame over the limits" : "malformed frame");
		return false;
	}
	if (m.from != p->id || m.to != t->self_id) {
		p->stats.protocol_errors++;
		tconn_close(t, c, "message with wrong from/to");
		return false;
	}
	p->stats.msgs_received++;
	if (!t->destroying)
		t->cfg.on_msg(t->cfg.ctx, &m);
	return c->state == TCONN_UP;
}

/* Parses what rx holds: the hello, then whole frames. false: the connection closed. */
static bool conn_parse(struct transport *t, struct tconn *c)
{
	size_t off = 0;
	if (c->state == TCONN_HELLO) {
		if (c->rx_len < TRANSPORT_HELLO_BYTES)
			return true;
		tconn_on_hello(t, c);
		if (c->state != TCONN_UP)
			return false;
		off = TRANSPORT_HELLO_BYTES;
	}
	while (c->state == TCONN_UP) {
		size_t frame_bytes;
		int rc = msg_codec_peek(c->rx + off, c->rx_len - off, &t->limits, &frame_bytes);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			t->peers[c->peer].stats.protocol_errors++;
			tconn_close(t, c, rc == -EMSGSIZE ? "frame over frame_bytes_max" : "malformed frame length");
			return false;
		}
		if (c->rx_len - off < frame_bytes) {
			if (tconn_rx_reserve(c, frame_bytes) < 0) {
				tconn_close(t, c, "out of memory for a frame");
				return false;
			}
			break;
		}
		if (!conn_deliver(t, c, c->rx + off, frame_bytes))
			return false;
		off += frame_bytes;
	}
	if (c->state != TCONN_UP)
		return false;
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
	return true;
}

void tconn_on_recv(struct transport *t, struct tconn *c, int res)
{
	c->recv_in_flight = false;
	if (c->state == TCONN_CLOSING) {
		tconn_reap(t, c);
		return;
	}
	if (res <= 0) {
		tconn_close(t, c, res == 0 ? "closed by the peer" : strerror(-res));
		return;
	}
	c->rx_len += (size_t)res;
	if (c->peer >= 0 && c->state == TCONN_UP)
		t->peers[c->peer].stats.bytes_received += (uint64_t)res;
	if (!conn_parse(t, c))
		return;
	if (c->rx_len == c->rx_cap && tconn_rx_reserve(c, c->rx_cap * 2) < 0) {
		tconn_close(t, c, "out of memory for a frame");
		return;
	}
	tconn_arm_recv(t, c);
}

/* ---- sending ------------------------------------------------------------------------- */

/* Bulk (appends, forwarded proposals, snapshot chunks) on the data link; everything
 * else, small and urgent, on the control link. */
static enum transport_link_kind link_of(enum raft_msg_type type)
{
	return msg_codec_carries_entries((uint32_t)type) ? TRANSPORT_LINK_DATA : TRANSPORT_LINK_CONTROL;
}

int transport_send(struct transport *t, const struct raft_msg *m)
{
	if (((m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_READ_INDEX_RESP) &&
	     !msg_codec_is_host_type((uint32_t)m->type)) || m->to > UINT32_MAX)
		return -EINVAL;
	int pi = transport_peer_index(t, (uint32_t)m->to);
	if (pi < 0)
		return -EINVAL;
	struct tpeer *p = &t->peers[pi];
	enum transport_link_kind kind = link_of(m->type);
	struct tlink *l = &p->links[kind];
	if (l->conn < 0 || t->conns[l->conn].state != TCONN_UP) {
		p->stats.msgs_dropped++;
		return -ENOTCONN;
	}
	struct tconn *c = &t->conns[l->conn];
	size_t bytes = msg_codec_frame_bytes(m);
	if (bytes > t->cfg.frame_bytes_max) {
		p->stats.msgs_dropped++;
		return -EMSGSIZE;
	}
	if (c->tx_bytes + bytes > t->cfg.queue_bytes_max[kind] ||
	    c->tx_frames_count >= t->cfg.queue_msgs_max[kind]) {
		p->stats.msgs_dropped++;
		return -ENOBUFS;
	}
	struct tchunk *k = c->tx_tail;
	if (!k || k->cap - k->used < bytes) {
		size_t cap = bytes > TRANSPORT_CHUNK_BYTES ? bytes : TRANSPORT_CHUNK_BYTES;
		k = malloc(sizeof *k + cap);
		if (!k) {
			p->stats.msgs_dropped++;
			return -ENOBUFS;
		}
		k->next = NULL;
		k->cap = cap;
		k->used = k->sent = 0;
		if (c->tx_tail)
			c->tx_tail->next = k;
		else
			c->tx_head = k;
		c->tx_tail = k;
	}
	size_t written;
	int rc = msg_codec_encode(m, k->data + k->used, k->cap - k->used, &written);
	if (rc < 0)
		return rc; /* malformed (-EINVAL); the chunk stays for the next message */
	assert(written == bytes);
	k->used += written;
	c->tx_bytes += written;
	uint32_t msgs_max = t->cfg.queue_msgs_max[kind];
	c->tx_frames[(c->tx_frames_head + c->tx_frames_count) % msgs_max] = (uint32_t)written;
	c->tx_frames_count++;
	return 0;
}

/* One sendmsg over the queued chunks (up to TRANSPORT_IOV_MAX). */
static bool conn_issue_send(struct transport *t, struct tconn *c)
{
	if (c->state != TCONN_UP || c->send_in_flight || c->tx_bytes == 0)
		return false;
	int n = 0;
	for (struct tchunk *k = c->tx_head; k && n < TRANSPORT_IOV_MAX; k = k->next) {
		if (k->used == k->sent)
			continue;
		c->iov[n].iov_base = k->data + k->sent;
		c->iov[n].iov_len = k->used - k->sent;
		n++;
	}
	assert(n > 0);
	memset(&c->msg, 0, sizeof c->msg);
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	struct io_uring_sqe *sqe = transport_sqe_get(t);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, transport_user_data(t, TOP_SEND, (unsigned)tconn_slot(t, c), c->generation));
	c->send_in_flight = true;
	return true;
}

void tconn_on_send(struct transport *t, struct tconn *c, int res)
{
	c->send_in_flight = false;
	if (c->state == TCONN_CLOSING) {
		tconn_reap(t, c);
		return;
	}
	if (res <= 0) {
		tconn_close(t, c, res == 0 ? "send made no progress" : strerror(-res));
		return;
	}
	struct tpeer *p = &t->peers[c->peer];
	size_t done = (size_t)res;
	assert(done <= c->tx_bytes);
	c->tx_bytes -= done;
	p->stats.bytes_sent += done;
	/* chunks */
	size_t left = done;
	while (left > 0) {
		struct tchunk *k = c->tx_head;
		assert(k);
		size_t take = k->used - k->sent < left ? k->used - k->sent : left;
		k->sent += take;
		left -= take;
		if (k->sent == k->used) {
			if (k == c->tx_tail) {
				k->used = k->sent = 0; /* keep the last chunk for the next frames */
			} else {
				c->tx_head = k->next;
				free(k);
			}
		}
	}
	/* frames */
	uint32_t msgs_max = t->cfg.queue_msgs_max[c->kind];
	left = done + c->tx_front_sent;
	while (c->tx_frames_count > 0 && left >= c->tx_frames[c->tx_frames_head]) {
		left -= c->tx_frames[c->tx_frames_head];
		c->tx_frames_head = (c->tx_frames_head + 1) % msgs_max;
		c->tx_frames_count--;
		p->stats.msgs_sent++;
	}
	c->tx_front_sent = left;
	assert(c->tx_frames_count > 0 || (left == 0 && c->tx_bytes == 0));
	conn_issue_send(t, c); /* keep the pipe full: the rest goes at once */
}

int transport_flush(struct transport *t)
{
	int issued = 0;
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++)
		issued += conn_issue_send(t, &t->conns[i]);
	return issued;
}
