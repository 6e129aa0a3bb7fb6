/*
 * engine.c — the load generator's event loops: one io_uring per thread, each owning a
 * share of the sessions (session s belongs to thread s % threads and talks to server
 * s % servers).
 *
 * Per connection
 *   - one recv in flight, into one receive buffer (grown only for a frame larger than
 *     it, never per request); complete frames are parsed in place;
 *   - at most one send in flight: requests made while it flies go into the other of
 *     two jute writers, and are sent as one batch when it completes (or at the end of
 *     the current completion batch); no per-request allocation anywhere;
 *   - a ring of request slots (capacity inflight + 2) remembering, per xid, what was
 *     asked and what the reply must look like.
 *
 * Connections (connect, handshake, loss, reconnect) are conn.c's; the lifecycle is in
 * engine_int.h.
 *
 * Invariants
 *   1. Replies match slots strictly in order (ZooKeeper answers a session in order);
 *      a mismatch is an error and kills the connection, since the stream can no
 *      longer be trusted.
 *   2. Every reply is checked (ops.c, reply_check): err, body layout, no trailing bytes,
 *      create paths, get values (workload.h format), list sizes.
 *   3. A slot's intended_ns decides whether it is measured: only requests intended in
 *      [measure_start, measure_end) are counted, whatever moment they complete.
 *   4. Every wait is bounded: handshakes by BENCH_HANDSHAKE_MS, the drain after the
 *      window by BENCH_DRAIN_MS, closeSession by BENCH_CLOSE_MS.
 *
 * Thread: each engine_thread is touched only by its own thread, except the progress
 * counters (relaxed atomics read by the main thread) and the shared timeline, written
 * by the main thread before the `go` barrier and read-only after it (abort_run aside).
 */
#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/engine_int.h"
#include "bench/request.h"
#include "core/jute.h"
#include "core/zk_proto.h"

size_t bench_key_path(const struct bench_config *cfg, char *out, uint32_t key)
{
	int n = snprintf(out, BENCH_PATH_BYTES_MAX, "%s/k%u/%u", cfg->root, cfg->value_size, key);
	assert(n > 0 && n < BENCH_PATH_BYTES_MAX);
	return (size_t)n;
}

size_t bench_list_path(const struct bench_config *cfg, char *out)
{
	int n = snprintf(out, BENCH_PATH_BYTES_MAX, "%s/list%u", cfg->root, cfg->list_children);
	assert(n > 0 && n < BENCH_PATH_BYTES_MAX);
	return (size_t)n;
}

size_t bench_create_prefix(const struct bench_config *cfg, char *out, uint32_t run_id, uint32_t session)
{
	int n = snprintf(out, BENCH_PATH_BYTES_MAX, cfg->create_sequential ? "%s/c/%08x-%u/n" : "%s/c/%08x-%u-",
			 cfg->root, run_id, session);
	assert(n > 0 && n < BENCH_PATH_BYTES_MAX);
	return (size_t)n;
}

/* ---- small helpers ---------------------------------------------------------------- */

static struct io_uring_sqe *sqe_get(struct engine_thread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
	if (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	assert(sqe && "submission queue sized for two ops per connection");
	return sqe;
}

void conn_mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->t->dirty[c->t->dirty_count++] = c;
		assert(c->t->dirty_count <= c->t->conn_count);
	}
}

static bool in_window(const struct engine_thread *t, uint64_t intended_ns)
{
	return intended_ns >= t->shared->measure_start_ns && intended_ns < t->shared->measure_end_ns;
}

/* Counts one acknowledgement (or error) at now_ns in the run's per-ms timeline. */
static void timeline_add(struct engine_thread *t, uint32_t *row, uint64_t now_ns)
{
	if (!row || now_ns < t->shared->t0_ns)
		return;
	uint64_t ms = (now_ns - t->shared->t0_ns) / 1000000u;
	if (ms < t->timeline.buckets)
		row[ms]++;
}

static bool conn_gone(const struct conn *c)
{
	return c->state == CONN_DEAD || c->state == CONN_RECONNECT;
}

void stats_error(struct engine_thread *t, const struct req_slot *s, unsigned slot_err)
{
	assert(slot_err < BENCH_ERR_SLOTS);
	if (s->kind != SLOT_OP)
		return;
	if (t->timeline.errors)
		timeline_add(t, t->timeline.errors, bench_now_ns());
	if (in_window(t, s->intended_ns))
		t->stats[s->op].errors[slot_err]++;
	atomic_store_explicit(&t->progress_errors,
			      atomic_load_explicit(&t->progress_errors, memory_order_relaxed) + 1, memory_order_relaxed);
}


void conn_post_recv(struct conn *c)
{
	assert(!c->recv_posted && c->rlen < c->rcap);
	struct io_uring_sqe *sqe = sqe_get(c->t);
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | CQE_RECV);
	c->recv_posted = true;
}

static void conn_post_send(struct conn *c)
{
	assert(c->send_posted && c->out_sent < c->out[1].len);
	struct io_uring_sqe *sqe = sqe_get(c->t);
	io_uring_prep_send(sqe, c->fd, c->out[1].buf + c->out_sent, c->out[1].len - c->out_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | CQE_SEND);
}

static void conn_flush(struct conn *c)
{
	c->dirty = false;
	if (c->send_posted || c->out[0].len == 0 || conn_gone(c))
		return;
	if (!jute_writer_ok(&c->out[0])) {
		conn_fail(c); /* a batch past its cap: sizing bug, counted, not sent */
		return;
	}
	struct jute_writer tmp = c->out[0];
	c->out[0] = c->out[1];
	c->out[1] = tmp;
	jute_writer_reset(&c->out[0]);
	c->out_sent = 0;
	c->send_posted = true;
	conn_post_send(c);
}

struct req_slot *slot_push(struct conn *c, uint64_t intended_ns, enum slot_kind kind)
{
	assert(c->slot_count < c->slot_cap);
	struct req_slot *s = &c->slots[(c->slot_head + c->slot_count) % c->slot_cap];
	c->slot_count++;
	c->t->outstanding++;
	memset(s, 0, sizeof(*s));
	s->intended_ns = intended_ns;
	s->xid = c->next_xid++;
	if (c->next_xid == INT32_MAX)
		c->next_xid = 1;
	s->kind = (uint8_t)kind;
	return s;
}

/* ---- receiving ----------------------------------------------------------------- */


static int conn_on_frame(struct conn *c, const uint8_t *body, size_t len, uint64_t now_ns)
{
	struct engine_thread *t = c->t;
	if (c->state == CONN_HANDSHAKE)
		return conn_on_handshake(c, body, len);
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	int32_t xid = jute_read_int(&r);
	int64_t zxid = jute_read_long(&r);
	int32_t err = jute_read_int(&r);
	if (!jute_reader_ok(&r))
		return -EPROTO;
	if (zxid > c->last_zxid)
		c->last_zxid = zxid; /* sent when the session reconnects, as a client does */
	if (xid == ZK_XID_PING) {
		if (c->pings_outstanding == 0)
			return -EPROTO;
		c->pings_outstanding--;
		return 0;
	}
	if (xid == ZK_XID_NOTIFICATION)
		return 0; /* the bench sets no watches; tolerate, do not count */
	if (c->slot_count == 0)
		return -EPROTO;
	struct req_slot *s = &c->slots[c->slot_head];
	if (xid != s->xid) {
		stats_error(t, s, BENCH_ERR_XID);
		c->slot_head = (c->slot_head + 1) % c->slot_cap;
		c->slot_count--;
		t->outstanding--;
		return -EPROTO;
	}
	c->slot_head = (c->slot_head + 1) % c->slot_cap;
	c->slot_count--;
	t->outstanding--;
	if (s->kind == SLOT_CLOSE) {
		c->state = CONN_CLOSED;
		return 0;
	}
	unsigned result = reply_check(c, s, err, &r);
	if (result) {
		stats_error(t, s, result);
	} else {
		if (in_window(t, s->intended_ns)) {
			struct bench_op_stats *st = &t->stats[s->op];
			st->ok++;
			hist_record(&st->latency, now_ns > s->intended_ns ? now_ns - s->intended_ns : 0);
		}
		if (t->timeline.writes) {
			bool write = s->op == BENCH_OP_CREATE || s->op == BENCH_OP_SET || s->op == BENCH_OP_DELETE ||
				     s->op == BENCH_OP_MULTI;
			timeline_add(t, write ? t->timeline.writes : t->timeline.reads, now_ns);
		}
	}
	atomic_store_explicit(&t->progress_done, atomic_load_explicit(&t->progress_done, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (t->issuing && t->cfg->rate == 0.0 && c->state == CONN_READY)
		conn_issue(c, now_ns);
	return 0;
}

static int conn_grow_rbuf(struct conn *c, size_t need)
{
	if (need > BENCH_RECV_BYTES_MAX)
		return -EMSGSIZE;
	size_t cap = c->rcap;
	while (cap < need)
		cap *= 2;
	uint8_t *grown = realloc(c->rbuf, cap);
	if (!grown)
		return -ENOMEM;
	c->rbuf = grown;
	c->rcap = cap;
	return 0;
}

static void conn_on_recv(struct conn *c, int res)
{
	c->recv_posted = false;
	if (conn_gone(c))
		return;
	if (res <= 0) {
		if (res == -EINTR || res == -EAGAIN) {
			conn_post_recv(c);
			return;
		}
		conn_fail(c);
		return;
	}
	c->rlen += (size_t)res;
	uint64_t now_ns = bench_now_ns();
	c->last_recv_ns = now_ns;
	size_t off = 0;
	while (c->rlen - off >= 4) {
		int32_t flen = (int32_t)jute_get_be32(c->rbuf + off);
		if (flen < 0 || (size_t)flen + 4 > BENCH_RECV_BYTES_MAX) {
			conn_fail(c);
			return;
		}
		if (c->rlen - off < (size_t)flen + 4) {
			if ((size_t)flen + 4 > c->rcap && conn_grow_rbuf(c, (size_t)flen + 4)) {
				conn_fail(c);
				return;
			}
			break;
		}
		if (conn_on_frame(c, c->rbuf + off + 4, (size_t)flen, now_ns)) {
			conn_fail(c);
			return;
		}
		off += (size_t)flen + 4;
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	if (c->state != CONN_CLOSED && !conn_gone(c))
		conn_post_recv(c);
}

static void conn_on_send(struct conn *c, int res)
{
	if (conn_gone(c)) {
		c->send_posted = false;
		return;
	}
	if (res < 0) {
		c->send_posted = false;
		conn_fail(c);
		return;
	}
	c->out_sent += (size_t)res;
	if (c->out_sent < c->out[1].len) {
		conn_post_send(c); /* short send: the rest of the same batch */
		return;
	}
	c->send_posted = false;
	jute_writer_reset(&c->out[1]);
	if (c->out[0].len)
		conn_mark_dirty(c);
}

static void thread_reap(struct engine_thread *t)
{
	struct io_uring_cqe *cqe;
	unsigned head;
	unsigned seen = 0;
	io_uring_for_each_cqe(&t->ring, head, cqe)
	{
		uint64_t data = io_uring_cqe_get_data64(cqe);
		struct conn *c = (struct conn *)(uintptr_t)(data & ~(uint64_t)7);
		switch ((enum cqe_kind)(data & 7)) {
		case CQE_RECV:
			conn_on_recv(c, cqe->res);
			break;
		case CQE_SEND:
			conn_on_send(c, cqe->res);
			break;
		}
		seen++;
	}
	io_uring_cq_advance(&t->ring, seen);
}

void thread_flush(struct engine_thread *t)
{
	/* conn_flush may fail a connection but never marks another dirty. */
	for (uint32_t i = 0; i < t->dirty_count; i++)
		conn_flush(t->dirty[i]);
	t->dirty_count = 0;
}

void thread_wait(struct engine_thread *t, uint64_t wait_ns)
{
	if (wait_ns > BENCH_WAIT_NS_MAX)
		wait_ns = BENCH_WAIT_NS_MAX;
	struct __kernel_timespec ts = { .tv_sec = (long long)(wait_ns / 1000000000u),
					.tv_nsec = (long long)(wait_ns % 1000000000u) };
	struct io_uring_cqe *cqe = NULL;
	if (wait_ns == 0)
		io_uring_submit(&t->ring);
	else
		(void)io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
	thread_reap(t);
}

/* ---- setup and the run --------------------------------------------------------- */


/* Open loop: sends every request whose scheduled time has come, on any free session. */
static void thread_issue_open(struct engine_thread *t, uint64_t now_ns)
{
	uint64_t t0 = t->shared->t0_ns;
	/* Bounded by the connections' free slots: each pass issues one or stops. */
	while (t0 + t->open_issued * t->open_period_ns <= now_ns) {
		struct conn *c = NULL;
		for (uint32_t n = 0; n < t->conn_count; n++) {
			struct conn *cand = &t->conns[t->open_rr];
			t->open_rr = (t->open_rr + 1) % t->conn_count;
			if (cand->state == CONN_READY && cand->slot_count < t->cfg->inflight) {
				c = cand;
				break;
			}
		}
		if (!c)
			return; /* all busy: the backlog keeps its scheduled times */
		conn_issue(c, t0 + t->open_issued * t->open_period_ns);
		t->open_issued++;
	}
}

static void thread_ping(struct engine_thread *t)
{
	for (uint32_t i = 0; i < t->conn_count; i++) {
		struct conn *c = &t->conns[i];
		if (c->state != CONN_READY || c->pings_outstanding > 2)
			continue;
		request_write_ping(&c->out[0]);
		c->pings_outstanding++;
		t->pings_sent++;
		conn_mark_dirty(c);
	}
}

static void thread_close_sessions(struct engine_thread *t)
{
	for (uint32_t i = 0; i < t->conn_count; i++) {
		struct conn *c = &t->conns[i];
		if (c->state != CONN_READY)
			continue;
		struct req_slot *s = slot_push(c, 0, SLOT_CLOSE);
		request_write_close(&c->out[0], s->xid);
		c->state = CONN_CLOSING;
		conn_mark_dirty(c);
	}
	uint64_t deadline = bench_now_ns() + (uint64_t)BENCH_CLOSE_MS * 1000000u;
	while (t->outstanding > 0 && bench_now_ns() < deadline) {
		thread_flush(t);
		thread_wait(t, BENCH_WAIT_NS_MAX);
	}
}

void engine_sleep_until(uint64_t when_ns)
{
	uint64_t now = bench_now_ns();
	if (when_ns <= now)
		return;
	uint64_t d = when_ns - now;
	struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u) };
	nanosleep(&ts, NULL);
}

static void thread_run(struct engine_thread *t)
{
	const struct bench_config *cfg = t->cfg;
	const struct engine_shared *sh = t->shared;
	uint64_t ping_interval_ns = (uint64_t)cfg->session_timeout_ms * 1000000u / 3;
	uint64_t next_ping_ns = sh->t0_ns + ping_interval_ns;
	/* Nothing is sent before t0: every request's intended time is >= t0. */
	engine_sleep_until(sh->t0_ns);
	t->issuing = true;
	if (cfg->rate > 0.0) {
		double per_thread = cfg->rate / cfg->threads;
		t->open_period_ns = (uint64_t)(1e9 / per_thread);
		if (t->open_period_ns == 0)
			t->open_period_ns = 1;
	} else {
		for (uint32_t i = 0; i < t->conn_count; i++) {
			struct conn *c = &t->conns[i];
			for (uint32_t k = 0; k < cfg->inflight && c->state == CONN_READY; k++)
				conn_issue(c, sh->t0_ns);
		}
	}
	uint64_t drain_deadline = 0;
	t->next_watchdog_ns = sh->t0_ns + BENCH_WATCHDOG_NS;
	for (;;) {
		uint64_t now = bench_now_ns();
		uint64_t end_ns = 0;
		if (atomic_load_explicit(&t->shared->abort_run, memory_order_relaxed) && t->issuing) {
			end_ns = atomic_load_explicit(&t->shared->stop_ns, memory_order_relaxed);
			if (end_ns == 0 || end_ns > now)
				end_ns = now;
		} else if (t->issuing && now >= sh->measure_end_ns) {
			end_ns = sh->measure_end_ns;
		}
		if (end_ns) {
			if (cfg->rate > 0.0 && end_ns > sh->measure_start_ns) {
				/* Send what was due before the end, then count what could not be sent. */
				thread_issue_open(t, end_ns - 1);
				uint64_t period = t->open_period_ns;
				uint64_t scheduled = (end_ns - sh->t0_ns + period - 1) / period;
				uint64_t first_measured = (sh->measure_start_ns - sh->t0_ns + period - 1) / period;
				uint64_t issued = t->open_issued > first_measured ? t->open_issued : first_measured;
				t->open_unsent = scheduled > issued ? scheduled - issued : 0;
			}
			t->issuing = false;
			drain_deadline = now + (uint64_t)BENCH_DRAIN_MS * 1000000u;
		}
		if (t->issuing && cfg->rate > 0.0)
			thread_issue_open(t, now);
		if (!t->issuing && (t->outstanding == 0 || now >= drain_deadline))
			break;
		if (now >= next_ping_ns) {
			thread_ping(t);
			next_ping_ns += ping_interval_ns;
		}
		uint64_t upkeep_ns = thread_conn_upkeep(t, now);
		thread_flush(t);
		uint64_t wake = next_ping_ns;
		if (upkeep_ns < wake)
			wake = upkeep_ns;
		if (t->issuing && sh->measure_end_ns < wake)
			wake = sh->measure_end_ns;
		if (t->issuing && cfg->rate > 0.0) {
			uint64_t next_open = sh->t0_ns + t->open_issued * t->open_period_ns;
			if (next_open < wake)
				wake = next_open;
		}
		uint64_t wait_ns = wake > now ? wake - now : 0;
		/* Backlogged with every session busy: wait for a reply, not the overdue schedule. */
		if (wait_ns == 0 && t->issuing && cfg->rate > 0.0)
			wait_ns = 1000000u;
		if (wait_ns == 0)
			wait_ns = 1;
		thread_wait(t, wait_ns);
	}
	thread_close_sessions(t);
}

void *engine_thread_main(void *arg)
{
	struct engine_thread *t = arg;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	unsigned entries = 64;
	while (entries < 2 * t->conn_count + 16 && entries < 32768)
		entries *= 2;
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = entries * 2;
	int err = io_uring_queue_init_params(entries, &t->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 2;
		err = io_uring_queue_init_params(entries, &t->ring, &p);
	}
	if (err) {
		fprintf(stderr, "ringkeeper-bench: io_uring_queue_init: %s\n", strerror(-err));
		atomic_store(&t->shared->abort_run, true);
		pthread_barrier_wait(&t->shared->ready);
		pthread_barrier_wait(&t->shared->go);
		return NULL;
	}
	t->ring_ok = true;
	thread_handshakes(t);
	pthread_barrier_wait(&t->shared->ready);
	pthread_barrier_wait(&t->shared->go);
	thread_run(t);
	for (uint32_t i = 0; i < t->conn_count; i++) {
		struct conn *c = &t->conns[i];
		if (c->fd >= 0) {
			shutdown(c->fd, SHUT_RDWR);
			close(c->fd);
			c->fd = -1;
		}
	}
	io_uring_queue_exit(&t->ring);
	return NULL;
}

