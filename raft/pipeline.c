/*
 * pipeline.c — the raft thread's loop.
 *
 *   workers' to_raft queues ──drain──► batch ──(index, time)──► [durable] ──► apply
 *        ──► replies and notifications to the owning workers' from_raft queues
 *
 * Owner: the raft thread owns the batch, the log position and (as the applier) is
 * the only writer of the store. Workers only push proposals and read the store.
 *
 * Invariants
 *   1. Entries get consecutive indexes in the order they were drained; zxid = index.
 *   2. Proposals from one worker keep their order (its queue is FIFO), so one
 *      connection's writes are applied and answered in the order it sent them.
 *   3. A reply leaves only after its entry is applied, and every notification an
 *      entry fires is queued before that entry's reply (same queue, earlier slot).
 *   4. The batch is bounded (RAFT_BATCH_ENTRIES_MAX); what does not fit waits in the
 *      workers' queues, whose producers stop reading clients when they fill.
 *
 * Session expiry: every RAFT_EXPIRY_CHECK_MS the thread asks the store for sessions
 * whose deadline passed and appends a closeSession entry for each (the leader's job).
 */
#include "raft/pipeline.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/msg.h"
#include "core/server.h"
#include "core/worker.h"
#include "net/frames.h"
#include "net/zk_proto.h"
#include "raft/entry.h"
#include "store/store.h"

#define RAFT_BATCH_ENTRIES_MAX 4096
#define RAFT_EXPIRY_CHECK_MS 100
#define RAFT_EXPIRING_MAX 4096

enum { UD_RAFT_WAKE = 1 };

struct raft_pipeline {
	struct server *srv;
	pthread_t thread;
	struct io_uring ring;
	bool ring_ready;
	_Atomic int sleeping;
	int64_t last_index;
	struct rk_msg *batch[RAFT_BATCH_ENTRIES_MAX];
	size_t batch_count;
	bool wake[RK_WORKERS_MAX];
	struct jute_writer reply;
	int64_t next_expiry_ms;
	int64_t expiring[RAFT_EXPIRING_MAX];
	size_t expiring_count;
	struct raft_stats stats;
	pthread_mutex_t stats_lock;
};

void raft_pipeline_wake(struct raft_pipeline *p, struct io_uring *sender_ring)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&p->sleeping, memory_order_seq_cst))
		return;
	if (!atomic_exchange_explicit(&p->sleeping, 0, memory_order_seq_cst))
		return;
	struct io_uring_sqe *sqe = io_uring_get_sqe(sender_ring);
	if (!sqe) {
		io_uring_submit(sender_ring);
		sqe = io_uring_get_sqe(sender_ring);
	}
	assert(sqe);
	io_uring_prep_msg_ring(sqe, p->ring.ring_fd, 0, UD_RAFT_WAKE, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, UD_RAFT_WAKE);
	io_uring_submit(sender_ring);
}

/* Hands a message to its worker; waits (never drops) if that worker's queue is full. */
static void raft_send(struct raft_pipeline *p, uint32_t worker_index, struct rk_msg *m)
{
	struct server *srv = p->srv;
	if (worker_index >= (uint32_t)srv->worker_count) {
		free(m);
		return;
	}
	struct worker *w = srv->workers[worker_index];
	while (!spsc_push(&w->from_raft, m)) {
		worker_wake_from(w, &p->ring);
		sched_yield();
	}
	p->wake[worker_index] = true;
}

static void raft_wake_workers(struct raft_pipeline *p)
{
	for (int i = 0; i < p->srv->worker_count; i++) {
		if (p->wake[i]) {
			p->wake[i] = false;
			worker_wake_from(p->srv->workers[i], &p->ring);
		}
	}
}

/* Moves the reply writer's buffer into a message (one allocation per reply). */
static struct rk_msg *raft_take_reply(struct raft_pipeline *p)
{
	assert(jute_writer_ok(&p->reply));
	struct rk_msg *m = (struct rk_msg *)p->reply.buf;
	m->len = (uint32_t)(p->reply.len - sizeof *m);
	jute_writer_init(&p->reply, p->reply.cap_max);
	return m;
}

static void raft_on_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
			  int64_t zxid)
{
	struct raft_pipeline *p = ctx;
	struct jute_writer w;
	jute_writer_init(&w, sizeof(struct rk_msg) + 64 + path_len);
	uint8_t *hdr = jute_writer_reserve(&w, sizeof(struct rk_msg));
	if (!hdr) {
		jute_writer_free(&w);
		return;
	}
	memset(hdr, 0, sizeof(struct rk_msg));
	frame_notification(&w, type, path, path_len);
	if (!jute_writer_ok(&w)) {
		jute_writer_free(&w);
		return;
	}
	struct rk_msg *m = (struct rk_msg *)w.buf;
	m->kind = RK_MSG_EVENT;
	m->conn_id = watcher;
	m->zxid = zxid;
	m->len = (uint32_t)(w.len - sizeof *m);
	raft_send(p, rk_conn_id_worker(watcher), m);
}

static void raft_broadcast_session_gone(struct raft_pipeline *p, int64_t session_id, uint64_t except_conn,
					int32_t expired)
{
	for (int i = 0; i < p->srv->worker_count; i++) {
		struct rk_msg *m = calloc(1, sizeof *m);
		assert(m);
		m->kind = RK_MSG_SESSION_GONE;
		m->session_id = session_id;
		m->conn_id = except_conn;
		m->err = expired;
		raft_send(p, (uint32_t)i, m);
	}
}

/* Applies one ordered entry and routes its reply. Consumes m. */
static void raft_apply(struct raft_pipeline *p, struct rk_msg *m)
{
	struct server *srv = p->srv;
	struct rk_entry e;
	int rc = entry_decode(&e, m->data, m->len);
	assert(rc == 0); /* workers encode entries; a bad one is a programming error */
	struct store_auth auth = { e.ids, e.ids_count, e.super };
	struct store_txn txn = {
		.zxid = m->zxid,
		.time_ms = e.time_ms,
		.session_id = e.session_id,
		.opcode = e.opcode,
		.body = e.body,
		.body_len = e.body_len,
		.auth = &auth,
	};
	jute_writer_reset(&p->reply);
	uint8_t *hdr = jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
	assert(hdr);
	size_t start = frame_begin(&p->reply, m->xid, m->zxid, 0);
	size_t body_start = p->reply.len;
	int32_t err = store_apply(srv->store, &txn, &p->reply, raft_on_event, p);
	log_debug("applied zxid 0x%llx op %d session 0x%llx ids %d: err %d", (unsigned long long)m->zxid, e.opcode,
		  (unsigned long long)e.session_id, e.ids_count, err);
	if (!jute_writer_ok(&p->reply)) {
		/* A reply larger than the client's jute.maxbuffer: ZooKeeper's client would
		 * drop the connection on it; answer with an error instead. */
		jute_writer_reset(&p->reply);
		jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
		start = frame_begin(&p->reply, m->xid, m->zxid, 0);
		body_start = p->reply.len;
		err = ZK_SYSTEMERROR;
	}
	if (err != ZK_OK)
		p->reply.len = body_start; /* no body on an error reply */
	jute_put_be32(p->reply.buf + start + 16, (uint32_t)err);
	frame_end(&p->reply, start);
	atomic_fetch_add_explicit(&srv->stats.writes_committed, 1, memory_order_relaxed);

	if (e.opcode == ZK_OP_CLOSE_SESSION) {
		for (size_t i = 0; i < p->expiring_count; i++) {
			if (p->expiring[i] == e.session_id) {
				p->expiring[i] = p->expiring[--p->expiring_count];
				break;
			}
		}
	}
	if (m->conn_id == RK_CONN_ID_NONE) {
		if (e.opcode == ZK_OP_CLOSE_SESSION) {
			log_info("session 0x%llx expired", (unsigned long long)e.session_id);
			raft_broadcast_session_gone(p, e.session_id, RK_CONN_ID_NONE, 1);
		}
		free(m);
		return;
	}
	struct rk_msg *r = raft_take_reply(p);
	r->conn_id = m->conn_id;
	r->xid = m->xid;
	r->err = err;
	r->zxid = m->zxid;
	r->session_id = e.session_id;
	r->start_us = m->start_us;
	r->kind = e.opcode == ZK_OP_CREATE_SESSION ? RK_MSG_SESSION_CREATED : RK_MSG_REPLY;
	r->flags = e.opcode == ZK_OP_CLOSE_SESSION ? RK_MSG_CLOSE_AFTER : 0;
	raft_send(p, rk_conn_id_worker(m->conn_id), r);
	free(m);
}

static void raft_expire_one(void *ctx, int64_t session_id)
{
	struct raft_pipeline *p = ctx;
	for (size_t i = 0; i < p->expiring_count; i++)
		if (p->expiring[i] == session_id)
			return;
	if (p->expiring_count == RAFT_EXPIRING_MAX || p->batch_count == RAFT_BATCH_ENTRIES_MAX)
		return; /* next check picks it up */
	struct jute_writer w;
	jute_writer_init(&w, 256);
	uint8_t *hdr = jute_writer_reserve(&w, sizeof(struct rk_msg));
	assert(hdr);
	memset(hdr, 0, sizeof(struct rk_msg));
	entry_encode(&w, session_id, ZK_OP_CLOSE_SESSION, false, NULL, 0, NULL, 0);
	assert(jute_writer_ok(&w));
	struct rk_msg *m = (struct rk_msg *)w.buf;
	m->kind = RK_MSG_PROPOSAL;
	m->conn_id = RK_CONN_ID_NONE;
	m->session_id = session_id;
	m->len = (uint32_t)(w.len - sizeof *m);
	p->expiring[p->expiring_count++] = session_id;
	p->batch[p->batch_count++] = m;
}

/* Drains every worker's queue into the batch. Returns the messages taken. */
static size_t raft_collect(struct raft_pipeline *p)
{
	size_t taken = 0;
	for (int i = 0; i < p->srv->worker_count; i++) {
		struct worker *w = p->srv->workers[i];
		while (p->batch_count < RAFT_BATCH_ENTRIES_MAX) {
			struct rk_msg *m = spsc_pop(&w->to_raft);
			if (!m)
				break;
			taken++;
			if (m->kind == RK_MSG_SESSION_ATTACH) {
				raft_broadcast_session_gone(p, m->session_id, m->conn_id, 0);
				free(m);
				continue;
			}
			assert(m->kind == RK_MSG_PROPOSAL);
			p->batch[p->batch_count++] = m;
		}
	}
	return taken;
}

/* Orders and commits the batch. In-memory log: durable as soon as ordered. */
static void raft_commit_batch(struct raft_pipeline *p)
{
	if (!p->batch_count)
		return;
	int64_t now = rk_now_ms();
	for (size_t i = 0; i < p->batch_count; i++) {
		struct rk_msg *m = p->batch[i];
		m->zxid = ++p->last_index;
		entry_set_time(m->data, now);
	}
	size_t n = p->batch_count;
	p->batch_count = 0;
	for (size_t i = 0; i < n; i++)
		raft_apply(p, p->batch[i]);
	pthread_mutex_lock(&p->stats_lock);
	p->stats.batches++;
	p->stats.entries += n;
	if (n > p->stats.batch_entries_max)
		p->stats.batch_entries_max = n;
	p->stats.last_index = (uint64_t)p->last_index;
	pthread_mutex_unlock(&p->stats_lock);
}

static bool raft_queues_empty(struct raft_pipeline *p)
{
	for (int i = 0; i < p->srv->worker_count; i++)
		if (!spsc_empty(&p->srv->workers[i]->to_raft))
			return false;
	return true;
}

static void *raft_main(void *arg)
{
	struct raft_pipeline *p = arg;
	struct server *srv = p->srv;
	rk_log_thread_name("raft");
	while (!atomic_load_explicit(&srv->stopping, memory_order_relaxed)) {
		raft_collect(p);
		int64_t now = rk_now_ms();
		if (now >= p->next_expiry_ms) {
			p->next_expiry_ms = now + RAFT_EXPIRY_CHECK_MS;
			store_sessions_expired(srv->store, now, raft_expire_one, p);
		}
		raft_commit_batch(p);
		raft_wake_workers(p);
		if (!raft_queues_empty(p))
			continue;
		atomic_store_explicit(&p->sleeping, 1, memory_order_seq_cst);
		if (!raft_queues_empty(p)) {
			atomic_store_explicit(&p->sleeping, 0, memory_order_relaxed);
			continue;
		}
		struct __kernel_timespec ts = { 0, RAFT_EXPIRY_CHECK_MS * 1000000LL };
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);
		atomic_store_explicit(&p->sleeping, 0, memory_order_relaxed);
		unsigned head, count = 0;
		io_uring_for_each_cqe(&p->ring, head, cqe)
		{
			count++;
		}
		io_uring_cq_advance(&p->ring, count);
	}
	return NULL;
}

int raft_pipeline_create(struct server *srv, struct raft_pipeline **out)
{
	struct raft_pipeline *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->srv = srv;
	pthread_mutex_init(&p->stats_lock, NULL);
	jute_writer_init(&p->reply, (size_t)srv->cfg.packet_bytes_max + sizeof(struct rk_msg) + 64);
	p->last_index = store_last_zxid(srv->store);
	/* Workers submit MSG_RING to this ring from their threads, so no SINGLE_ISSUER here
	 * is needed for them; this thread is its only submitter. */
	struct io_uring_params params;
	memset(&params, 0, sizeof params);
	int rc = io_uring_queue_init_params(256, &p->ring, &params);
	if (rc < 0) {
		log_error("raft io_uring: %s", strerror(-rc));
		raft_pipeline_destroy(p);
		return rc;
	}
	p->ring_ready = true;
	*out = p;
	return 0;
}

int raft_pipeline_start(struct raft_pipeline *p)
{
	int rc = pthread_create(&p->thread, NULL, raft_main, p);
	return rc ? -rc : 0;
}

void raft_pipeline_join(struct raft_pipeline *p)
{
	if (p->thread) {
		pthread_join(p->thread, NULL);
		p->thread = 0;
	}
}

void raft_pipeline_destroy(struct raft_pipeline *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->batch_count; i++)
		free(p->batch[i]);
	if (p->ring_ready)
		io_uring_queue_exit(&p->ring);
	jute_writer_free(&p->reply);
	pthread_mutex_destroy(&p->stats_lock);
	free(p);
}

void raft_pipeline_stats(struct raft_pipeline *p, struct raft_stats *out)
{
	pthread_mutex_lock(&p->stats_lock);
	*out = p->stats;
	pthread_mutex_unlock(&p->stats_lock);
}
