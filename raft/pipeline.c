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
 * Durability (group commit): drained proposals are staged into the write-ahead log
 * (raft/wal.c) as one batch, written with O_DIRECT and made durable. An entry is
 * applied, and its client answered, only after its batch is durable (forceSync=no
 * skips the sync). Batches grow with the load by themselves, with no timer:
 *   - raft.logSyncMethod=syscall (default): wal_submit() writes and fdatasyncs the
 *     batch on this thread and returns 1; the batch is applied at once, and the next
 *     pass drains everything the workers queued meanwhile into the next batch.
 *   - linked / dsync: the batch goes out on this thread's ring; while it is on the
 *     disk the next one is drained and staged, and submitted the moment the first
 *     completes (before the finished one is applied).
 * wal.c (wal_sync_mode_default) has the measurements behind the default.
 *
 *   queues ─► batch ─stage─► staged ─submit─► on the disk ─durable─► apply ─► replies
 *
 * Session expiry: every RAFT_EXPIRY_CHECK_MS the thread asks the store for sessions
 * whose deadline passed and appends a closeSession entry for each (the leader's job).
 */
#include "raft/pipeline.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "raft/wal.h"
#include "store/store.h"

#define RAFT_BATCH_ENTRIES_MAX 4096
#define RAFT_EXPIRY_CHECK_MS 100
#define RAFT_EXPIRING_MAX 4096
/* deleteContainer entries one sweep may propose (ZooKeeper caps its sweep too). */
#define RAFT_REAP_PER_SWEEP_MAX 1000
/* A repeated store warning is logged at most this often. */
#define RAFT_WARN_REPEAT_MS 1000

/* The log's CQEs carry UD_RAFT_WAL | batch tag (low WAL_USER_DATA_TAG_BITS bits). */
enum { UD_RAFT_WAKE = 1, UD_RAFT_WAL = 1 << 8 };

/* Entries staged or in flight, waiting for durability: a FIFO ring. */
#define RAFT_PENDING_MAX (2 * RAFT_BATCH_ENTRIES_MAX)

struct raft_pipeline {
	const struct rk_config *cfg;
	struct store *store;
	struct hub *hub;
	pthread_t thread;
	struct io_uring ring;
	bool ring_ready;
	int64_t last_index;
	struct rk_msg *batch[RAFT_BATCH_ENTRIES_MAX];
	size_t batch_count;
	struct jute_writer reply;
	int64_t next_expiry_ms;
	int64_t expiring[RAFT_EXPIRING_MAX];
	size_t expiring_count;
	struct raft_stats stats;
	pthread_mutex_t stats_lock;
	struct wal *wal;
	char warn_last[512]; /* raft_store_warn's rate limit */
	int64_t warn_last_ms;
	uint64_t warn_repeats;
	struct rk_msg *pending[RAFT_PENDING_MAX];
	size_t pending_head; /* oldest not yet durable */
	size_t pending_count;
	bool disk_full_logged;
	int64_t durable_index; /* last index known on disk */
	_Atomic uint64_t writes_committed; /* entries applied (mntr's rk_writes_committed) */
	int64_t next_reap_ms;
};

/* Hands a message to its worker (core/hub.h: waits for room, never drops). */
static void raft_send(struct raft_pipeline *p, uint32_t worker_index, struct rk_msg *m)
{
	hub_to_worker(p->hub, (int)worker_index, m, &p->ring);
}

/* Moves the reply writer's buffer into a message (one allocation per reply). */
static struct rk_msg *raft_take_reply(struct raft_pipeline *p)
{
	assert(jute_writer_ok(&p->reply));
	struct rk_msg *m = (struct rk_msg *)p->reply.buf;
	memset(m, 0, sizeof *m); /* every field the caller does not set reads as 0 */
	m->len = (uint32_t)(p->reply.len - sizeof *m);
	jute_writer_init(&p->reply, p->reply.cap_max);
	return m;
}

static void raft_on_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
			  int64_t zxid)
{
	struct raft_pipeline *p = ctx;
	struct rk_msg *m = malloc(sizeof *m + path_len);
	assert(m); /* a replica that drops an event diverges from its clients' view */
	memset(m, 0, sizeof *m);
	memcpy(m->data, path, path_len);
	m->kind = RK_MSG_EVENT;
	m->event_type = type;
	m->conn_id = watcher;
	m->zxid = zxid;
	m->len = (uint32_t)path_len;
	raft_send(p, rk_conn_id_worker(watcher), m);
}

static void raft_broadcast_session_gone(struct raft_pipeline *p, int64_t session_id, uint64_t except_conn,
					int32_t expired)
{
	for (int i = 0; i < p->hub->port_count; i++) {
		struct rk_msg *m = calloc(1, sizeof *m);
		assert(m);
		m->kind = RK_MSG_SESSION_GONE;
		m->session_id = session_id;
		m->conn_id = except_conn;
		m->err = expired;
		raft_send(p, (uint32_t)i, m);
	}
}

/*
 * Sends the reply record built in p->reply to the worker that owns the proposal's
 * connection (the worker frames it with xid, zxid and err). createSession answers
 * become RK_MSG_SESSION_CREATED (the worker builds the
 * ConnectResponse); a closeSession reply closes the connection once it is sent.
 */
static void raft_route_reply(struct raft_pipeline *p, const struct rk_msg *m, const struct rk_entry *e,
			     int32_t err, int64_t zxid)
{
	struct rk_msg *r = raft_take_reply(p);
	r->conn_id = m->conn_id;
	r->xid = m->xid;
	r->err = err;
	r->zxid = zxid;
	r->session_id = e->session_id;
	r->start_us = m->start_us;
	r->kind = e->opcode == ZK_OP_CREATE_SESSION ? RK_MSG_SESSION_CREATED : RK_MSG_REPLY;
	r->flags = e->opcode == ZK_OP_CLOSE_SESSION ? RK_MSG_CLOSE_AFTER : 0;
	raft_send(p, rk_conn_id_worker(m->conn_id), r);
}

/* The store's view of a decoded entry at index zxid (views into the entry's bytes). */
static void raft_txn_from_entry(const struct rk_entry *e, int64_t zxid, struct store_auth *auth,
				struct store_txn *txn)
{
	*auth = (struct store_auth){ e->ids, e->ids_count, e->super };
	*txn = (struct store_txn){
		.zxid = zxid,
		.time_ms = e->time_ms,
		.session_id = e->session_id,
		.opcode = e->opcode,
		.body = e->body,
		.body_len = e->body_len,
		.auth = auth,
	};
}

/* Applies one ordered entry and routes its reply. Consumes m. */
static void raft_apply(struct raft_pipeline *p, struct rk_msg *m)
{
	struct rk_entry e;
	int rc = entry_decode(&e, m->data, m->len);
	assert(rc == 0); /* workers encode entries; a bad one is a programming error */
	struct store_auth auth;
	struct store_txn txn;
	raft_txn_from_entry(&e, m->zxid, &auth, &txn);
	jute_writer_reset(&p->reply);
	uint8_t *hdr = jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
	assert(hdr);
	size_t body_start = p->reply.len;
	int32_t err = store_apply(p->store, &txn, &p->reply, raft_on_event, p);
	log_debug("applied zxid 0x%llx op %d session 0x%llx ids %d: err %d", (unsigned long long)m->zxid, e.opcode,
		  (unsigned long long)e.session_id, e.ids_count, err);
	if (!jute_writer_ok(&p->reply)) {
		/* A reply larger than the client's jute.maxbuffer: ZooKeeper's client would
		 * drop the connection on it; answer with an error instead. */
		jute_writer_reset(&p->reply);
		jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
		err = ZK_SYSTEMERROR;
	}
	if (err != ZK_OK)
		p->reply.len = body_start; /* no body on an error reply */
	atomic_fetch_add_explicit(&p->writes_committed, 1, memory_order_relaxed);

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
	raft_route_reply(p, m, &e, err, m->zxid);
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

/*
 * The container and TTL sweep (ZooKeeper's ContainerManager): each candidate the store
 * lists becomes a deleteContainer entry; the store re-checks it when it applies, so a
 * node that gained a child meanwhile survives.
 */
static void raft_reap_one(void *ctx, const char *path, size_t path_len)
{
	struct raft_pipeline *p = ctx;
	if (p->batch_count == RAFT_BATCH_ENTRIES_MAX)
		return; /* the next sweep finds it again */
	struct jute_writer body;
	jute_writer_init(&body, path_len + 8);
	jute_write_string(&body, path, (int32_t)path_len);
	struct jute_writer w;
	jute_writer_init(&w, sizeof(struct rk_msg) + RK_ENTRY_HEADER_BYTES + path_len + 64);
	uint8_t *hdr = jute_writer_reserve(&w, sizeof(struct rk_msg));
	if (!hdr || !jute_writer_ok(&body)) {
		jute_writer_free(&body);
		jute_writer_free(&w);
		return;
	}
	memset(hdr, 0, sizeof(struct rk_msg));
	entry_encode(&w, 0, ZK_OP_DELETE_CONTAINER, false, NULL, 0, body.buf, body.len);
	jute_writer_free(&body);
	if (!jute_writer_ok(&w)) {
		jute_writer_free(&w);
		return;
	}
	struct rk_msg *m = (struct rk_msg *)w.buf;
	m->kind = RK_MSG_PROPOSAL;
	m->conn_id = RK_CONN_ID_NONE;
	m->len = (uint32_t)(w.len - sizeof *m);
	p->batch[p->batch_count++] = m;
}

/* Drains every worker's queue into the batch. Returns the messages taken. */
static size_t raft_collect(struct raft_pipeline *p)
{
	size_t taken = 0;
	for (int i = 0; i < p->hub->port_count; i++) {
		while (p->batch_count < RAFT_BATCH_ENTRIES_MAX) {
			struct rk_msg *m = hub_from_worker(p->hub, i);
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

/* Answers a proposal that never reached the log (full disk, oversized entry). */
static void raft_refuse(struct raft_pipeline *p, struct rk_msg *m, int32_t err)
{
	if (m->conn_id == RK_CONN_ID_NONE) {
		/* an expiry we could not log: forget it so the next check proposes it again */
		for (size_t i = 0; i < p->expiring_count; i++) {
			if (p->expiring[i] == m->session_id) {
				p->expiring[i] = p->expiring[--p->expiring_count];
				break;
			}
		}
		free(m);
		return;
	}
	struct rk_entry e;
	int rc = entry_decode(&e, m->data, m->len);
	assert(rc == 0);
	jute_writer_reset(&p->reply);
	uint8_t *hdr = jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
	assert(hdr);
	/* The last applied zxid, not the last staged: messages to a worker go in zxid
	 * order (net/conn.h, invariant 2). */
	raft_route_reply(p, m, &e, err, store_last_zxid(p->store));
	free(m);
}

/*
 * Gives the drained batch its indexes and stages it in the log, oldest first. What
 * does not fit the staging batch stays in p->batch for the next turn.
 */
static void raft_stage_batch(struct raft_pipeline *p)
{
	int64_t now = rk_now_ms();
	size_t done = 0;
	while (done < p->batch_count && p->pending_count < RAFT_PENDING_MAX) {
		struct rk_msg *m = p->batch[done];
		entry_set_time(m->data, now);
		int64_t index = p->last_index + 1;
		int rc = p->wal ? wal_stage(p->wal, 1, (uint64_t)index, m->data, m->len) : 0;
		if (rc == -EAGAIN)
			break; /* staging batch full: the rest waits for the next submit */
		if (rc == -ENOSPC || rc == -EMSGSIZE) {
			if (rc == -ENOSPC && !p->disk_full_logged) {
				log_error("log: no space for a new segment in %s: refusing writes until space returns",
					  p->cfg->data_log_dir);
				p->disk_full_logged = true;
			}
			/* Answered in its turn, after the writes drained before it (order per
			 * session, conn.h invariant 1): it waits in the pending FIFO, unindexed. */
			m->flags |= RK_MSG_REFUSED;
			m->err = ZK_SYSTEMERROR;
			m->zxid = 0;
			p->pending[(p->pending_head + p->pending_count) % RAFT_PENDING_MAX] = m;
			p->pending_count++;
			done++;
			continue;
		}
		if (rc < 0) {
			log_error("log: append failed: %s; stopping (the log is the truth, restart recovers it)",
				  strerror(-rc));
			abort();
		}
		if (p->disk_full_logged) {
			log_info("log: space is back, writes accepted again");
			p->disk_full_logged = false;
		}
		m->zxid = index;
		p->last_index = index;
		p->pending[(p->pending_head + p->pending_count) % RAFT_PENDING_MAX] = m;
		p->pending_count++;
		done++;
	}
	memmove(p->batch, p->batch + done, (p->batch_count - done) * sizeof p->batch[0]);
	p->batch_count -= done;
}

/* Applies every pending entry with index <= durable, in order. */
static void raft_apply_durable(struct raft_pipeline *p, int64_t durable)
{
	size_t n = 0;
	if (durable > p->durable_index) {
		p->durable_index = durable;
		/* Published before any reply goes out (raft_send wakes workers at once): a
		 * client that saw its write acknowledged finds lgif's committed index at or
		 * past its zxid. */
		uint64_t first = p->wal ? wal_first_index(p->wal) : 0;
		pthread_mutex_lock(&p->stats_lock);
		p->stats.last_index = (uint64_t)durable;
		p->stats.first_index = first; /* a new log's first index, at once */
		pthread_mutex_unlock(&p->stats_lock);
	}
	while (p->pending_count) {
		struct rk_msg *m = p->pending[p->pending_head];
		if (m->flags & RK_MSG_REFUSED) {
			p->pending_head = (p->pending_head + 1) % RAFT_PENDING_MAX;
			p->pending_count--;
			raft_refuse(p, m, m->err);
			continue;
		}
		if (m->zxid > p->durable_index)
			break;
		p->pending_head = (p->pending_head + 1) % RAFT_PENDING_MAX;
		p->pending_count--;
		raft_apply(p, m);
		n++;
	}
	if (!n)
		return;
	pthread_mutex_lock(&p->stats_lock);
	p->stats.batches++;
	p->stats.entries += n;
	if (n > p->stats.batch_entries_max)
		p->stats.batch_entries_max = n;
	pthread_mutex_unlock(&p->stats_lock);
}

/*
 * The log's statistics for mntr/lgif. wal_stats_get sorts its latency samples, so it
 * runs on the expiry tick (every RAFT_EXPIRY_CHECK_MS), not per batch.
 */
static void raft_publish_log_stats(struct raft_pipeline *p)
{
	if (!p->wal)
		return;
	struct wal_stats ws;
	wal_stats_get(p->wal, &ws);
	uint64_t first = wal_first_index(p->wal);
	uint64_t term = wal_last_term(p->wal);
	pthread_mutex_lock(&p->stats_lock);
	p->stats.wal = ws;
	p->stats.first_index = first;
	p->stats.last_term = term;
	pthread_mutex_unlock(&p->stats_lock);
}

/* Submits the staged batch when the previous one is done. */
static void raft_submit(struct raft_pipeline *p)
{
	if (!p->wal) {
		raft_apply_durable(p, p->last_index); /* in-memory log: durable once ordered */
		return;
	}
	/* Refusals at the head of the FIFO wait for nothing: answer them now. */
	raft_apply_durable(p, p->durable_index);
	if (!wal_can_submit(p->wal))
		return; /* nothing staged, or inflight_max batches already on the disk */
	int rc = wal_submit(p->wal, &p->ring, UD_RAFT_WAL);
	if (rc < 0) {
		log_error("log: write, fdatasync or submit failed: %s; stopping", strerror(-rc));
		abort();
	}
	if (rc == 1) /* raft.logSyncMethod=syscall: durable on return, no CQE comes */
		raft_apply_durable(p, (int64_t)wal_durable_index(p->wal));
}

static void raft_on_wal_cqe(struct raft_pipeline *p, const struct io_uring_cqe *cqe)
{
	uint64_t durable = 0;
	int rc = wal_complete(p->wal, cqe, &durable);
	if (rc < 0) {
		/* A failed write or fdatasync leaves the page cache and the disk in an
		 * unknown state: crash, and let recovery read what is really on disk. */
		log_error("log: write or fdatasync failed: %s; stopping", strerror(-rc));
		abort();
	}
	if (rc == 1) {
		/* Keep the disk busy: the next batch (staged while this one was on the disk,
		 * plus whatever arrived since) goes out before this one is applied, so the
		 * applies and replies overlap its write instead of delaying it. */
		if (p->batch_count < RAFT_BATCH_ENTRIES_MAX)
			raft_collect(p);
		raft_stage_batch(p);
		raft_submit(p);
		raft_apply_durable(p, (int64_t)durable);
	}
}

static void *raft_main(void *arg)
{
	struct raft_pipeline *p = arg;
	rk_log_thread_name("raft");
	while (!atomic_load_explicit(&p->hub->stopping, memory_order_relaxed)) {
		if (p->batch_count < RAFT_BATCH_ENTRIES_MAX)
			raft_collect(p);
		int64_t now = rk_now_ms();
		if (now >= p->next_expiry_ms) {
			p->next_expiry_ms = now + RAFT_EXPIRY_CHECK_MS;
			store_sessions_expired(p->store, now, raft_expire_one, p);
			raft_publish_log_stats(p);
		}
		if (now >= p->next_reap_ms) {
			p->next_reap_ms = now + p->cfg->container_check_interval_ms;
			store_reap_candidates(p->store, now, raft_reap_one, p, RAFT_REAP_PER_SWEEP_MAX);
		}
		raft_stage_batch(p);
		raft_submit(p);
		bool in_flight = p->wal && wal_in_flight(p->wal);
		bool stuck = p->batch_count > 0; /* staging full: only a completion frees it */
		if (stuck && !in_flight)
			continue; /* the submit above made room: stage the rest now */
		/* With inflight_max batches on the disk nothing can go out before a
		 * completion, so proposals need not wake us: they wait in the queues and are
		 * drained when the completion arrives (fewer wake-ups per batch). */
		bool disk_full_up = p->wal && wal_in_flight_count(p->wal) >= wal_inflight_max(p->wal);
		if (!stuck && !disk_full_up) {
			/* Announce sleep so a worker's next proposal wakes us: with fewer than
			 * inflight_max batches on the disk it goes out at once, in a batch of
			 * its own (group commit needs no timer: batches grow with the load). */
			atomic_store_explicit(&p->hub->raft_sleeping, 1, memory_order_seq_cst);
			if (hub_raft_has_input(p->hub)) {
				atomic_store_explicit(&p->hub->raft_sleeping, 0, memory_order_relaxed);
				continue;
			}
		}
		struct __kernel_timespec ts = { 0, RAFT_EXPIRY_CHECK_MS * 1000000LL };
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);
		atomic_store_explicit(&p->hub->raft_sleeping, 0, memory_order_relaxed);
		unsigned head, count = 0;
		io_uring_for_each_cqe(&p->ring, head, cqe)
		{
			count++;
			if (wal_user_data_match(UD_RAFT_WAL, cqe->user_data))
				raft_on_wal_cqe(p, cqe);
		}
		io_uring_cq_advance(&p->ring, count);
	}
	/* Let the batches on the disk finish so the log is closed cleanly. */
	while (p->wal && wal_in_flight(p->wal)) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&p->ring, &cqe) < 0)
			break;
		if (wal_user_data_match(UD_RAFT_WAL, cqe->user_data))
			raft_on_wal_cqe(p, cqe);
		io_uring_cqe_seen(&p->ring, cqe);
	}
	return NULL;
}

/* Recovery: every record in the log is applied to the store, in order. */
struct replay_ctx {
	struct raft_pipeline *p;
	struct jute_writer out;
	uint64_t count;
	/* sessions alive at the end of the log, to give them a fresh timeout */
	int64_t *sessions;
	int32_t *timeouts;
	size_t sessions_count, sessions_cap;
};

static void replay_session_track(struct replay_ctx *rc, const struct rk_entry *e)
{
	if (e->opcode == ZK_OP_CREATE_SESSION && e->body_len >= 4) {
		if (rc->sessions_count == rc->sessions_cap) {
			size_t cap = rc->sessions_cap ? rc->sessions_cap * 2 : 256;
			int64_t *s = realloc(rc->sessions, cap * sizeof *s);
			int32_t *t = realloc(rc->timeouts, cap * sizeof *t);
			assert(s && t);
			rc->sessions = s;
			rc->timeouts = t;
			rc->sessions_cap = cap;
		}
		rc->sessions[rc->sessions_count] = e->session_id;
		rc->timeouts[rc->sessions_count] = (int32_t)jute_get_be32(e->body);
		rc->sessions_count++;
	} else if (e->opcode == ZK_OP_CLOSE_SESSION) {
		for (size_t i = 0; i < rc->sessions_count; i++) {
			if (rc->sessions[i] == e->session_id) {
				rc->sessions_count--;
				rc->sessions[i] = rc->sessions[rc->sessions_count];
				rc->timeouts[i] = rc->timeouts[rc->sessions_count];
				break;
			}
		}
	}
}

static int raft_replay_one(void *ctx, uint64_t term, uint64_t index, const void *data, size_t size)
{
	(void)term;
	struct replay_ctx *rc = ctx;
	struct rk_entry e;
	if (entry_decode(&e, data, size) != 0) {
		log_error("log: entry %llu does not decode (version or layout): refusing to start",
			  (unsigned long long)index);
		return -EPROTO;
	}
	struct store_auth auth;
	struct store_txn txn;
	raft_txn_from_entry(&e, (int64_t)index, &auth, &txn);
	jute_writer_reset(&rc->out);
	store_apply(rc->p->store, &txn, &rc->out, NULL, NULL);
	replay_session_track(rc, &e);
	rc->p->last_index = (int64_t)index;
	rc->count++;
	return 0;
}

static enum wal_sync_mode raft_sync_mode(const struct rk_config *cfg)
{
	if (!cfg->force_sync)
		return WAL_SYNC_NONE;
	switch (cfg->raft_log_sync_method) {
	case CONFIG_SYNC_LINKED: return WAL_SYNC_WRITE_LINKED_FDATASYNC;
	case CONFIG_SYNC_DSYNC: return WAL_SYNC_WRITE_DSYNC;
	case CONFIG_SYNC_SYSCALL: break;
	}
	return WAL_SYNC_SYSCALL;
}

static const char *raft_sync_mode_name(enum wal_sync_mode mode)
{
	switch (mode) {
	case WAL_SYNC_SYSCALL: return "pwrite+fdatasync per batch on the raft thread";
	case WAL_SYNC_WRITE_LINKED_FDATASYNC: return "io_uring write+linked fdatasync per batch";
	case WAL_SYNC_WRITE_DSYNC: return "io_uring RWF_DSYNC write per batch";
	case WAL_SYNC_NONE: return "NO SYNC";
	case WAL_SYNC_DEFAULT: break;
	}
	return "?";
}

static int raft_open_log(struct raft_pipeline *p)
{
	const struct rk_config *cfg = p->cfg;
	char why[512] = "";
	struct wal_config wc = {
		.dir = cfg->data_log_dir,
		.segment_size_bytes = (uint64_t)cfg->log_prealloc_kb * 1024,
		.batch_bytes_max = (uint32_t)cfg->raft_batch_bytes_max,
		.batch_entries_max = (uint32_t)cfg->raft_batch_entries_max,
		.sync_mode = raft_sync_mode(cfg),
		.inflight_max = (uint32_t)cfg->raft_log_inflight_max,
		.error_text = why,
		.error_text_size = sizeof why,
	};
	/* One entry is a whole client packet plus headers: a batch must hold the largest. */
	uint32_t entry_bytes_max = (uint32_t)cfg->packet_bytes_max + RK_ENTRY_HEADER_BYTES + 64 * RK_ENTRY_IDS_MAX + 4096;
	if (wc.batch_bytes_max < entry_bytes_max)
		wc.batch_bytes_max = entry_bytes_max;
	/* A batch never spans segments, so a segment must hold the largest batch. */
	uint64_t segment_min = ((uint64_t)wc.batch_bytes_max * 2 + 4095) & ~4095ULL;
	if (wc.segment_size_bytes < segment_min) {
		log_warn("preAllocSize %d KiB is below the %llu KiB a log segment needs for the largest batch: using %llu KiB",
			 cfg->log_prealloc_kb, (unsigned long long)(segment_min >> 10),
			 (unsigned long long)(segment_min >> 10));
		wc.segment_size_bytes = segment_min;
	}
	if (wc.batch_entries_max > RAFT_BATCH_ENTRIES_MAX)
		wc.batch_entries_max = RAFT_BATCH_ENTRIES_MAX;
	if (!cfg->force_sync)
		log_warn("forceSync=no: acknowledged writes can be LOST on a crash or power loss (tests only)");
	struct replay_ctx rc = { .p = p };
	jute_writer_init(&rc.out, (size_t)cfg->packet_bytes_max + 1024);
	int64_t t0 = rk_now_ms();
	int err = wal_open(&p->wal, &wc, raft_replay_one, &rc);
	jute_writer_free(&rc.out);
	if (err < 0) {
		log_error("log in %s/log cannot be opened: %s%s%s", wc.dir, strerror(-err), why[0] ? ": " : "", why);
		free(rc.sessions);
		free(rc.timeouts);
		return err;
	}
	p->durable_index = p->last_index;
	p->stats.last_index = (uint64_t)p->last_index;
	p->stats.first_index = wal_first_index(p->wal);
	p->stats.last_term = wal_last_term(p->wal);
	wal_stats_get(p->wal, &p->stats.wal);
	int64_t now = rk_now_ms();
	for (size_t i = 0; i < rc.sessions_count; i++)
		store_session_touch(p->store, rc.sessions[i], now, rc.timeouts[i]);
	log_info("log: recovered %llu entries (last index %lld, %zu live sessions) in %lld ms, %s, %s",
		 (unsigned long long)rc.count, (long long)p->last_index, rc.sessions_count, (long long)(now - t0),
		 wal_direct_io(p->wal) ? "O_DIRECT" : "buffered (O_DIRECT refused by the filesystem)",
		 raft_sync_mode_name(wal_sync_mode_get(p->wal)));
	free(rc.sessions);
	free(rc.timeouts);
	return 0;
}

/*
 * The store's warnings (quota overruns), logged as ZooKeeper's RateLogger does: a new
 * text at once; the same text again within RAFT_WARN_REPEAT_MS only counted, and the
 * count logged with the next text that is logged. Raft thread only.
 */
static void raft_store_warn(void *ctx, const char *text)
{
	struct raft_pipeline *p = ctx;
	int64_t now = rk_now_ms();
	if (strcmp(text, p->warn_last) == 0 && now - p->warn_last_ms < RAFT_WARN_REPEAT_MS) {
		p->warn_repeats++;
		return;
	}
	if (p->warn_repeats)
		log_warn("%s (%llu more times)", p->warn_last, (unsigned long long)p->warn_repeats);
	log_warn("%s", text);
	snprintf(p->warn_last, sizeof p->warn_last, "%s", text);
	p->warn_last_ms = now;
	p->warn_repeats = 0;
}

int raft_pipeline_create(const struct rk_config *cfg, struct store *store, struct hub *hub,
			 struct raft_pipeline **out)
{
	struct raft_pipeline *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->cfg = cfg;
	p->store = store;
	p->hub = hub;
	pthread_mutex_init(&p->stats_lock, NULL);
	jute_writer_init(&p->reply, (size_t)cfg->packet_bytes_max + sizeof(struct rk_msg) + 64);
	p->last_index = store_last_zxid(store);
	int orc = raft_open_log(p);
	if (orc < 0) {
		raft_pipeline_destroy(p);
		return orc;
	}
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
	hub_attach_raft(hub, p->ring.ring_fd, UD_RAFT_WAKE);
	/* Set after recovery: replaying the log re-runs quota checks, but their warnings
	 * were logged when the entries were first applied. */
	store_set_warn(store, raft_store_warn, p);
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
	for (size_t i = 0; i < p->pending_count; i++)
		free(p->pending[(p->pending_head + i) % RAFT_PENDING_MAX]);
	if (p->wal) {
		if (!wal_in_flight(p->wal))
			wal_close(p->wal);
		p->wal = NULL;
	}
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
	out->writes_committed = atomic_load_explicit(&p->writes_committed, memory_order_relaxed);
}
