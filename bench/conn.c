/*
 * conn.c — a bench connection's lifecycle (engine_int.h): the first connect and
 * handshake, loss, and with --reconnect what a ZooKeeper client does when its server
 * goes away: the next server in the list, the same session id and password, the
 * highest zxid it has seen, and a short backoff once every server has refused.
 *
 * Reconnect policy (the same for every server under test, so a failover measured with
 * it compares servers, not clients)
 *   - a READY connection lost: the next server at once;
 *   - a connect refused or a handshake closed: the next server at once until every
 *     server has been tried since the last READY, then 5 ms doubling per round to
 *     BENCH_RECONNECT_BACKOFF_MS_MAX, each wait +-25% at random;
 *   - a handshake unanswered for session timeout / servers (the Java client's connect
 *     timeout) or a READY connection silent for 2/3 of the session timeout (its read
 *     timeout; pings go every 1/3) counts as lost;
 *   - a handshake answered "expired" (timeout 0): the next attempt asks for a new
 *     session (counted in sessions_expired).
 * Requests outstanding on a lost connection are counted as CONNLOSS and not resent;
 * the session issues new ones once it is READY again.
 *
 * connect() is blocking: the bench targets servers on loopback or a LAN, where a live
 * server's listener completes it at once and a dead one refuses it.
 *
 * Thread: the engine thread that owns the connection.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/engine_int.h"
#include "bench/request.h"

static bool reconnect_wanted(const struct conn *c)
{
	return c->t->cfg->reconnect && c->t->issuing && c->handshaken;
}

static uint64_t backoff_ns(struct conn *c)
{
	uint32_t rounds = c->attempts / c->t->cfg->server_count;
	if (rounds == 0)
		return 0;
	uint64_t ms = 5u << (rounds - 1 < 5 ? rounds - 1 : 5);
	if (ms > BENCH_RECONNECT_BACKOFF_MS_MAX)
		ms = BENCH_RECONNECT_BACKOFF_MS_MAX;
	uint64_t ns = ms * 1000000u;
	return ns - ns / 4 + bench_rng_next(&c->rng) % (ns / 2 + 1);
}

void conn_fail(struct conn *c)
{
	struct engine_thread *t = c->t;
	if (c->state == CONN_DEAD || c->state == CONN_RECONNECT)
		return;
	enum conn_state was = c->state;
	if (was != CONN_CLOSED && was != CONN_CLOSING && (was == CONN_READY || !c->handshaken))
		t->conns_lost++;
	if (was == CONN_HANDSHAKE && !c->handshaken)
		fprintf(stderr, "ringkeeper-bench: session %u: connection closed during the handshake\n", c->session);
	for (uint32_t i = 0; i < c->slot_count; i++) {
		struct req_slot *s = &c->slots[(c->slot_head + i) % c->slot_cap];
		stats_error(t, s, BENCH_ERR_CONNLOSS);
	}
	assert(t->outstanding >= c->slot_count);
	t->outstanding -= c->slot_count;
	c->slot_count = 0;
	if (!c->handshaken && (was == CONN_HANDSHAKE || was == CONN_CONNECTING))
		t->connected++; /* counted as settled so the handshake wait ends */
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR); /* completes the pending recv; the fd is closed later */
	if (!reconnect_wanted(c) || was == CONN_CLOSING || was == CONN_CLOSED) {
		c->state = CONN_DEAD;
		return;
	}
	c->state = CONN_RECONNECT;
	t->reconnecting++;
	if (was == CONN_READY)
		c->attempts = 0;
	else
		c->attempts++;
	c->reconnect_at_ns = bench_now_ns() + backoff_ns(c);
}

int conn_on_handshake(struct conn *c, const uint8_t *body, size_t len)
{
	if (len != BENCH_CONNECT_REPLY_BYTES && len != BENCH_CONNECT_REPLY_BYTES - 1)
		return -EPROTO;
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	int32_t version = jute_read_int(&r);
	int32_t timeout_ms = jute_read_int(&r);
	int64_t session_id = jute_read_long(&r);
	struct jute_bytes passwd = jute_read_buffer(&r);
	if (!jute_reader_ok(&r) || version != 0)
		return -EPROTO;
	if (timeout_ms <= 0 || session_id == 0) {
		if (c->session_id != 0) {
			/* Our session expired while we were away: ask for a new one next time. */
			c->t->sessions_expired++;
			c->session_id = 0;
			memset(c->passwd, 0, sizeof(c->passwd));
		}
		return -ECONNREFUSED;
	}
	if (passwd.len != ZK_PASSWD_BYTES)
		return -EPROTO;
	c->session_id = session_id;
	memcpy(c->passwd, passwd.data, ZK_PASSWD_BYTES);
	c->state = CONN_READY;
	c->attempts = 0;
	if (c->handshaken) {
		struct engine_thread *t = c->t;
		t->reconnects++;
		/* Closed loop: the session picks up its pipeline again. */
		if (t->issuing && t->cfg->rate == 0.0)
			for (uint32_t k = 0; k < t->cfg->inflight; k++)
				conn_issue(c, bench_now_ns());
		return 0;
	}
	c->handshaken = true;
	c->t->connected++;
	return 0;
}

/* Opens a socket to c's current server and queues the ConnectRequest. */
static int conn_connect(struct conn *c)
{
	const struct bench_config *cfg = c->t->cfg;
	const struct sockaddr_in *addr = &cfg->servers[c->server_index].addr;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr))) {
		int err = -errno;
		close(fd);
		return err;
	}
	c->fd = fd;
	c->state = CONN_HANDSHAKE;
	c->rlen = 0;
	c->last_recv_ns = bench_now_ns();
	c->handshake_deadline_ns = c->last_recv_ns + (uint64_t)cfg->session_timeout_ms * 1000000u / cfg->server_count;
	request_write_connect(&c->out[0], cfg->session_timeout_ms, c->last_zxid, c->session_id, c->passwd);
	conn_mark_dirty(c);
	conn_post_recv(c);
	return 0;
}

int conn_open(struct engine_thread *t, struct conn *c, uint32_t session)
{
	const struct bench_config *cfg = t->cfg;
	c->t = t;
	c->session = session;
	c->fd = -1;
	c->state = CONN_CONNECTING;
	c->next_xid = 1;
	c->seq_max = -1;
	c->server_index = session % cfg->server_count;
	c->rng = cfg->seed ^ ((uint64_t)session * UINT64_C(0x9e3779b97f4a7c15)) ^ t->shared->run_id;
	(void)bench_rng_next(&c->rng);
	c->slot_cap = cfg->inflight + 2;
	c->slots = calloc(c->slot_cap, sizeof(*c->slots));
	c->rcap = BENCH_RECV_BYTES_INITIAL;
	c->rbuf = malloc(c->rcap);
	size_t request_bytes_max = 64 + (size_t)cfg->multi_max * (cfg->value_size + 2 * BENCH_PATH_BYTES_MAX + 64);
	for (int i = 0; i < 2; i++)
		jute_writer_init(&c->out[i], (size_t)(cfg->inflight + 4) * request_bytes_max + 4096);
	c->prefix_len = bench_create_prefix(cfg, c->prefix, t->shared->run_id, session);
	if (!c->slots || !c->rbuf)
		return -ENOMEM;
	return conn_connect(c);
}

void thread_handshakes(struct engine_thread *t)
{
	for (uint32_t i = 0; i < t->conn_count; i++) {
		struct conn *c = &t->conns[i];
		int err = conn_open(t, c, t->index + i * t->cfg->threads);
		if (err) {
			fprintf(stderr, "ringkeeper-bench: session %u: connect to %s: %s\n", c->session,
				t->cfg->servers[c->server_index].text, strerror(-err));
			c->state = CONN_DEAD;
			t->connected++;
			t->conns_lost++;
		}
	}
	thread_flush(t);
	uint64_t deadline = bench_now_ns() + (uint64_t)BENCH_HANDSHAKE_MS * 1000000u;
	while (t->connected < t->conn_count && bench_now_ns() < deadline) {
		thread_flush(t);
		thread_wait(t, BENCH_WAIT_NS_MAX);
	}
	for (uint32_t i = 0; i < t->conn_count; i++) {
		if (t->conns[i].state == CONN_HANDSHAKE) {
			fprintf(stderr, "ringkeeper-bench: session %u: no handshake reply\n", t->conns[i].session);
			conn_fail(&t->conns[i]);
		}
	}
}

/* A lost connection whose old socket has no op in flight: try the next server. */
static void conn_reconnect(struct conn *c, uint64_t now_ns)
{
	struct engine_thread *t = c->t;
	assert(c->state == CONN_RECONNECT && !c->recv_posted && !c->send_posted && c->slot_count == 0);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	jute_writer_reset(&c->out[0]);
	jute_writer_reset(&c->out[1]);
	c->out_sent = 0;
	c->rlen = 0;
	c->pings_outstanding = 0;
	c->server_index = (c->server_index + 1) % t->cfg->server_count;
	t->reconnecting--;
	if (conn_connect(c) == 0)
		return;
	c->state = CONN_RECONNECT;
	t->reconnecting++;
	c->attempts++;
	c->reconnect_at_ns = now_ns + backoff_ns(c);
}

uint64_t thread_conn_upkeep(struct engine_thread *t, uint64_t now_ns)
{
	const struct bench_config *cfg = t->cfg;
	uint64_t next = UINT64_MAX;
	if (!cfg->reconnect)
		return next;
	/* Bounded by conn_count per call; runs only while some connection is lost. */
	for (uint32_t i = 0; t->reconnecting && i < t->conn_count; i++) {
		struct conn *c = &t->conns[i];
		if (c->state != CONN_RECONNECT || c->recv_posted || c->send_posted)
			continue; /* the old socket's completions wake the loop */
		if (now_ns >= c->reconnect_at_ns && t->issuing)
			conn_reconnect(c, now_ns);
		if (c->state == CONN_RECONNECT && c->reconnect_at_ns < next)
			next = c->reconnect_at_ns;
	}
	if (now_ns >= t->next_watchdog_ns) {
		uint64_t silent_ns = (uint64_t)cfg->session_timeout_ms * 2000000u / 3;
		for (uint32_t i = 0; i < t->conn_count; i++) {
			struct conn *c = &t->conns[i];
			if ((c->state == CONN_HANDSHAKE && now_ns >= c->handshake_deadline_ns) ||
			    (c->state == CONN_READY && now_ns - c->last_recv_ns >= silent_ns))
				conn_fail(c);
		}
		t->next_watchdog_ns = now_ns + BENCH_WATCHDOG_NS;
	}
	return next < t->next_watchdog_ns ? next : t->next_watchdog_ns;
}
