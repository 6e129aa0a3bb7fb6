/*
 * pipeline_apply.c — the applier: committed entries, in log order, into the store;
 * their replies and the notifications they fire out to the workers through the hub.
 *
 * Thread: the raft thread only (it is the store's only writer).
 *
 * Invariants
 *   1. Entries are applied in index order, each once; zxid = index. A no-op entry (the
 *      leader's first of its term) changes nothing and answers no one.
 *   2. Every notification an entry fires is queued before the entry's zxid is
 *      published (the store fires under its locks, then publishes) and before the
 *      entry's reply: messages to one worker go in zxid order (net/conn.h, invariant 2).
 *   3. This server's proposals are answered in the order they were made (the local
 *      FIFO): a refused one (never logged) waits for the ones before it, so one
 *      session's replies keep its request order.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/zk_proto.h"
#include "raft/pipeline_impl.h"
#include "store/store.h"

/* Hands a message to its worker (core/hub.h: waits for room, never drops). */
void pipe_send(struct raft_pipeline *p, uint32_t worker_index, struct rk_msg *m)
{
	hub_to_worker(p->hub, (int)worker_index, m, &p->ring);
}

/* Moves the reply writer's buffer into a message (one allocation per reply). */
static struct rk_msg *pipe_take_reply(struct raft_pipeline *p)
{
	assert(jute_writer_ok(&p->reply));
	struct rk_msg *m = (struct rk_msg *)p->reply.buf;
	memset(m, 0, sizeof *m); /* every field the caller does not set reads as 0 */
	m->len = (uint32_t)(p->reply.len - sizeof *m);
	jute_writer_init(&p->reply, p->reply.cap_max);
	return m;
}

static void pipe_on_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
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
	pipe_send(p, rk_conn_id_worker(watcher), m);
}

static void pipe_broadcast_session(struct raft_pipeline *p, enum rk_msg_kind kind, int64_t session_id,
				   uint64_t conn_id, int32_t err)
{
	for (int i = 0; i < p->hub->port_count; i++) {
		struct rk_msg *m = calloc(1, sizeof *m);
		assert(m);
		m->kind = kind;
		m->session_id = session_id;
		m->conn_id = conn_id;
		m->err = err;
		pipe_send(p, (uint32_t)i, m);
	}
}

void pipe_broadcast_session_gone(struct raft_pipeline *p, int64_t session_id, uint64_t except_conn,
				 int32_t expired)
{
	pipe_broadcast_session(p, RK_MSG_SESSION_GONE, session_id, except_conn, expired);
}

void pipe_broadcast_session_reclaim(struct raft_pipeline *p, int64_t session_id)
{
	pipe_broadcast_session(p, RK_MSG_SESSION_RECLAIM, session_id, RK_CONN_ID_NONE, 0);
}

/* ---- the local FIFO ------------------------------------------------------------- */

void pipe_local_push(struct raft_pipeline *p, const struct rk_msg *m, uint64_t origin, int32_t err)
{
	assert(p->local_count < PIPE_LOCAL_MAX);
	struct rk_entry e;
	int rc = entry_decode(&e, m->data, m->len);
	assert(rc == 0); /* workers and the sweeps encode entries; a bad one is a bug */
	struct pipe_local *l = &p->local[(p->local_head + p->local_count) % PIPE_LOCAL_MAX];
	*l = (struct pipe_local){
		.origin = origin,
		.conn_id = m->conn_id,
		.session_id = e.session_id,
		/* The server's own entries (moves, reports, expiries) have no client's
		 * time: they count from now, so one that is lost is probed for like a
		 * client's (pipe_oldest_proposal_stale) instead of holding the FIFO. */
		.start_us = m->start_us ? m->start_us : (uint64_t)rk_now_us(),
		.xid = m->xid,
		.opcode = e.opcode,
		.err = err,
	};
	p->local_count++;
}

static struct pipe_local *pipe_local_head(struct raft_pipeline *p)
{
	return p->local_count ? &p->local[p->local_head] : NULL;
}

void pipe_local_pop(struct raft_pipeline *p)
{
	assert(p->local_count > 0);
	p->local_head = (p->local_head + 1) % PIPE_LOCAL_MAX;
	p->local_count--;
}

static void pipe_expiring_forget(struct raft_pipeline *p, int64_t session_id)
{
	for (size_t i = 0; i < p->expiring_count; i++) {
		if (p->expiring[i] == session_id) {
			p->expiring[i] = p->expiring[--p->expiring_count];
			return;
		}
	}
}

/*
 * Sends the reply record in p->reply to the worker that owns the proposal's
 * connection (the worker frames it with xid, zxid and err). createSession answers
 * become RK_MSG_SESSION_CREATED (the worker builds the ConnectResponse); a
 * closeSession reply closes the connection once it is sent.
 */
void pipe_reply_start(struct raft_pipeline *p)
{
	jute_writer_reset(&p->reply);
	uint8_t *hdr = jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
	assert(hdr);
}

void pipe_route_reply(struct raft_pipeline *p, const struct pipe_local *l, int32_t err, int64_t zxid,
		      bool close_after)
{
	struct rk_msg *r = pipe_take_reply(p);
	r->conn_id = l->conn_id;
	r->xid = l->xid;
	r->err = err;
	r->zxid = zxid;
	r->session_id = l->session_id;
	r->start_us = l->start_us;
	r->opcode = l->opcode;
	r->kind = l->opcode == ZK_OP_CREATE_SESSION ? RK_MSG_SESSION_CREATED : RK_MSG_REPLY;
	r->flags = l->opcode == ZK_OP_CLOSE_SESSION || close_after ? RK_MSG_CLOSE_AFTER : 0;
	pipe_send(p, rk_conn_id_worker(l->conn_id), r);
}

/* The proposal's fate is unknown to its client: CONNECTIONLOSS, then its connection
 * closes (the client reconnects, and learns what happened by reading). */
/* ---- connections that lost a proposal --------------------------------------------- */

static size_t pipe_failed_slot(uint64_t conn_id)
{
	return (size_t)((conn_id * 0x9e3779b97f4a7c15ULL) >> 52) % PIPE_FAILED_CONNS;
}

/* Open addressing; an expired or empty slot is reused. The table is cleared once
 * every entry has expired, so probe chains hold only the last PIPE_FAILED_CONN_MS's
 * failures; a table full of live entries evicts the slot probed last, and says so. */
static void pipe_conn_failed_add(struct raft_pipeline *p, uint64_t conn_id)
{
	int64_t now = rk_now_ms();
	size_t i = pipe_failed_slot(conn_id);
	size_t n = 0;
	while (n < PIPE_FAILED_CONNS - 1 && p->failed_conns[i].conn_id != conn_id && p->failed_conns[i].until_ms > now) {
		i = (i + 1) % PIPE_FAILED_CONNS;
		n++;
	}
	if (n == PIPE_FAILED_CONNS - 1)
		log_warn("more than %d connections lost proposals within %d ms: one is forgotten early",
			 PIPE_FAILED_CONNS, PIPE_FAILED_CONN_MS);
	p->failed_conns[i].conn_id = conn_id;
	p->failed_conns[i].until_ms = now + PIPE_FAILED_CONN_MS;
	p->failed_conns_until_ms = now + PIPE_FAILED_CONN_MS;
	p->failed_conns_used = true;
}

bool pipe_conn_failed(struct raft_pipeline *p, uint64_t conn_id)
{
	if (!p->failed_conns_used || conn_id == RK_CONN_ID_NONE)
		return false;
	int64_t now = rk_now_ms();
	if (now >= p->failed_conns_until_ms) {
		memset(p->failed_conns, 0, sizeof p->failed_conns);
		p->failed_conns_used = false;
		return false;
	}
	size_t i = pipe_failed_slot(conn_id);
	for (size_t n = 0; n < PIPE_FAILED_CONNS && p->failed_conns[i].until_ms != 0; n++) {
		if (p->failed_conns[i].conn_id == conn_id && p->failed_conns[i].until_ms > now)
			return true;
		i = (i + 1) % PIPE_FAILED_CONNS;
	}
	return false;
}

void pipe_answer_lost(struct raft_pipeline *p, struct pipe_local *l)
{
	pipe_conn_failed_add(p, l->conn_id);
	pipe_reply_start(p);
	pipe_route_reply(p, l, ZK_CONNECTIONLOSS, store_last_zxid(p->store), true);
	l->answered = true;
}

void pipe_fail_pending(struct raft_pipeline *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->local_count; i++) {
		struct pipe_local *l = &p->local[(p->local_head + i) % PIPE_LOCAL_MAX];
		if (l->origin != 0 && l->conn_id != RK_CONN_ID_NONE && !l->answered) {
			pipe_answer_lost(p, l);
			n++;
		} else if (l->sync && !l->read_known) {
			l->read_asked_ms = 0; /* the old leader dropped its pending reads: ask the new one */
		}
	}
	if (n)
		log_info("raft: the leader changed: %zu pending writes answered CONNECTIONLOSS, their connections closed", n);
}

void pipe_answer_refused(struct raft_pipeline *p)
{
	struct pipe_local *l;
	while ((l = pipe_local_head(p)) && l->origin == 0) {
		if (l->sync) {
			if (!pipe_sync_try_answer(p, l, false))
				return; /* what comes after it waits for it */
			continue;
		}
		if (l->conn_id == RK_CONN_ID_NONE) {
			/* an expiry we could not log: the next check proposes it again */
			if (l->opcode == ZK_OP_CLOSE_SESSION)
				pipe_expiring_forget(p, l->session_id);
		} else {
			pipe_reply_start(p);
			/* The last applied zxid: messages to a worker go in zxid order. */
			pipe_route_reply(p, l, l->err, store_last_zxid(p->store), l->close_after);
		}
		pipe_local_pop(p);
	}
}

/* The store's view of a decoded entry at index zxid (views into the entry's bytes). */
void pipe_txn_from_entry(const struct rk_entry *e, int64_t zxid, struct store_auth *auth,
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

/* Runs the entry through the store; the reply record is left in p->reply. */
static int32_t pipe_store_apply(struct raft_pipeline *p, const struct rk_entry *e, int64_t zxid)
{
	struct store_auth auth;
	struct store_txn txn;
	pipe_txn_from_entry(e, zxid, &auth, &txn);
	jute_writer_reset(&p->reply);
	uint8_t *hdr = jute_writer_reserve(&p->reply, sizeof(struct rk_msg));
	assert(hdr);
	size_t body_start = p->reply.len;
	int32_t err = store_apply(p->store, &txn, &p->reply, pipe_on_event, p);
	log_debug("applied zxid 0x%llx op %d session 0x%llx ids %d: err %d", (unsigned long long)zxid, e->opcode,
		  (unsigned long long)e->session_id, e->ids_count, err);
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
	return err;
}

/*
 * A move of this session that this server proposed (local FIFO from index `from` on)
 * or is about to propose (the batch) and that is not applied yet: it comes after the
 * entries being applied now, or is lost.
 */
static bool pipe_own_move_pending(const struct raft_pipeline *p, int64_t session_id, size_t from)
{
	for (size_t i = from; i < p->local_count; i++) {
		const struct pipe_local *l = &p->local[(p->local_head + i) % PIPE_LOCAL_MAX];
		if (l->opcode == RK_OP_SESSION_MOVE && l->session_id == session_id)
			return true;
	}
	for (size_t i = 0; i < p->batch_count; i++) {
		const struct rk_msg *m = p->batch[i];
		struct rk_entry e;
		if (m->conn_id == RK_CONN_ID_NONE && m->session_id == session_id &&
		    entry_decode(&e, m->data, m->len) == 0 && e.opcode == RK_OP_SESSION_MOVE)
			return true;
	}
	return false;
}

/*
 * The local proposal an applied entry with this origin answers, or NULL when it is
 * not ours. Our proposals are appended in the order we made them, so one of ours with
 * a later sequence number means the ones before it at the head of the FIFO were lost
 * (a deposed leader's uncommitted suffix, a forward dropped during a transfer): their
 * clients get CONNECTIONLOSS and their connections close, as a ZooKeeper client sees
 * when its server loses its leader; it reconnects and retries. Never with one voter.
 */
static struct pipe_local *pipe_local_for(struct raft_pipeline *p, uint64_t origin)
{
	if (origin == 0 || entry_origin_server(origin) != (p->server_id & 0xffff))
		return NULL;
	/* Proposed by an earlier run of this server (committed only now, or replayed past
	 * the saved commit index): it is in no FIFO of this run and tells nothing about
	 * it. Above all it must not answer a sync waiting here as overtaken: its index
	 * need not be above what was committed when the sync arrived (a reattach that
	 * revalidated that way found its session missing and called it expired; seen in
	 * go-zookeeper's TestNoQuorum). */
	uint64_t seq = entry_origin_seq(origin);
	if (!entry_origin_seq_before(p->origin_seq_start, seq))
		return NULL;
	struct pipe_local *l;
	while ((l = pipe_local_head(p)) && l->origin != origin &&
	       entry_origin_seq_before(entry_origin_seq(l->origin), seq)) {
		if (l->sync) {
			pipe_sync_try_answer(p, l, true);
			pipe_answer_refused(p);
			continue;
		}
		log_warn("proposal 0x%llx of session 0x%llx was lost (a later one committed)",
			 (unsigned long long)l->origin, (unsigned long long)l->session_id);
		bool reclaim = false;
		if (l->conn_id != RK_CONN_ID_NONE && !l->answered) {
			pipe_answer_lost(p, l);
		} else if (l->conn_id == RK_CONN_ID_NONE && l->opcode == ZK_OP_CLOSE_SESSION) {
			pipe_expiring_forget(p, l->session_id);
		} else if (l->opcode == RK_OP_SESSION_MOVE && !pipe_own_move_pending(p, l->session_id, 1) &&
			   store_session_owner(p->store, l->session_id) != (p->server_id & 0xffff)) {
			/* The session's owner is still another server, so its requests here
			 * would get SESSIONMOVED and its liveness reports from here would not
			 * count: its connection here, if it is still open, asks for the move
			 * again (a connection closed for it would be a disconnect its client
			 * never caused; ZooKeeper keeps it). */
			pipe_broadcast_session_reclaim(p, l->session_id);
			reclaim = true;
		}
		pthread_mutex_lock(&p->stats_lock);
		p->stats.proposals_lost_count++;
		p->stats.session_moves_reclaimed_count += reclaim;
		pthread_mutex_unlock(&p->stats_lock);
		pipe_local_pop(p);
		pipe_answer_refused(p);
	}
	return l && l->origin == origin ? l : NULL;
}

/* Another server's clients kept these sessions alive: their deadlines move on here
 * too (it matters on the leader, and on whoever leads next). */
static void pipe_apply_sessions_alive(struct raft_pipeline *p, const struct rk_entry *e)
{
	struct jute_reader r;
	jute_reader_init(&r, e->body, e->body_len);
	int32_t n = jute_read_int(&r);
	int64_t now = rk_now_ms();
	for (int32_t i = 0; i < n && jute_reader_ok(&r); i++) {
		int64_t id = jute_read_long(&r);
		if (jute_reader_ok(&r))
			store_session_touch_remote(p->store, id, now);
	}
}

/* ---- session ownership (replicated: the same on every server, live or replayed) -- */

static uint32_t origin_server(const struct rk_entry *e)
{
	return entry_origin_server(e->origin);
}

bool pipe_session_moved(struct store *s, const struct rk_entry *e)
{
	if (!e->owner_checked || e->opcode == ZK_OP_CREATE_SESSION)
		return false;
	uint32_t owner = store_session_owner(s, e->session_id);
	return owner != 0 && owner != origin_server(e);
}

void pipe_session_owner_update(struct store *s, const struct rk_entry *e, int32_t err)
{
	if ((e->opcode == ZK_OP_CREATE_SESSION && err == ZK_OK) || e->opcode == RK_OP_SESSION_MOVE)
		store_session_set_owner(s, e->session_id, origin_server(e));
}

/*
 * A client's session moved to another server: the other servers' connections of it
 * close (its client is on the new one), and a request that arrived on one of them
 * before gets SESSIONMOVED, answered as ZooKeeper does (ZOOKEEPER-710): the
 * connection is torn down (net/conn.c closes it on that error).
 */
/*
 * The session's client attached to the entry's server. Its connections here close,
 * unless it has attached here again since: a move of ours is pending, later in the log
 * (a move proposed before a leader was lost can be committed in the next term, after
 * the client went on to us), and ours will close the connection over there.
 */
static void pipe_apply_session_move(struct raft_pipeline *p, const struct rk_entry *e)
{
	pipe_session_owner_update(p->store, e, ZK_OK);
	if (origin_server(e) == (p->server_id & 0xffff))
		return;
	if (pipe_own_move_pending(p, e->session_id, 0)) {
		log_info("session 0x%llx moved to server %u, and back here since: its connection here stays",
			 (unsigned long long)e->session_id, origin_server(e));
		return;
	}
	log_info("session 0x%llx moved to server %u", (unsigned long long)e->session_id, origin_server(e));
	pipe_broadcast_session_gone(p, e->session_id, RK_CONN_ID_NONE, 0);
}

/*
 * What a committed entry does to the replicated state: the one rule that the live
 * applier below and the replay at start (pipeline_recover.c) both follow, so a
 * restarted server rebuilds exactly the state its peers hold.
 */
enum pipe_effect pipe_entry_effect(struct store *s, const struct rk_entry *e)
{
	switch (e->opcode) {
	case RK_OP_SESSIONS_ALIVE: return PIPE_EFFECT_ALIVE;
	case RK_OP_LEADER_REQUEST: return PIPE_EFFECT_LEADER_REQUEST;
	case RK_OP_SESSION_MOVE: return PIPE_EFFECT_SESSION_MOVE;
	default: break;
	}
	return pipe_session_moved(s, e) ? PIPE_EFFECT_SESSION_MOVED : PIPE_EFFECT_STORE;
}

/* A transaction for the store: applied, and answered when it is ours. */
static void pipe_apply_txn(struct raft_pipeline *p, const struct rk_entry *e, struct pipe_local *l, int64_t zxid)
{
	int32_t err = pipe_store_apply(p, e, zxid);
	pipe_session_owner_update(p->store, e, err);
	if (e->opcode == ZK_OP_CLOSE_SESSION) {
		pipe_expiring_forget(p, e->session_id);
		/* Not closed by a client of ours: every connection of it here must go. */
		if (!l || l->conn_id == RK_CONN_ID_NONE || l->answered) {
			log_info("session 0x%llx %s", (unsigned long long)e->session_id, l ? "expired" : "closed");
			pipe_broadcast_session_gone(p, e->session_id, RK_CONN_ID_NONE, 1);
		}
	}
	if (!l)
		return;
	if (l->conn_id != RK_CONN_ID_NONE && !l->answered)
		pipe_route_reply(p, l, err, zxid, false);
	pipe_local_pop(p);
}

void pipe_apply_committed(struct raft_pipeline *p, const struct raft_entry *ce)
{
	assert(ce->index == p->applied_index + 1);
	p->applied_index = ce->index;
	pipe_answer_refused(p);
	if (ce->type == RAFT_ENTRY_NOOP)
		return;
	struct rk_entry e;
	int rc = entry_decode(&e, ce->data, ce->len);
	assert(rc == 0); /* entries are checked when proposed; a bad one here is a bug */
	struct pipe_local *l = pipe_local_for(p, e.origin);
	switch (pipe_entry_effect(p->store, &e)) {
	case PIPE_EFFECT_ALIVE:
		pipe_apply_sessions_alive(p, &e);
		break;
	case PIPE_EFFECT_LEADER_REQUEST:
		pipe_lead_on_request_entry(p, origin_server(&e));
		break;
	case PIPE_EFFECT_SESSION_MOVE:
		pipe_apply_session_move(p, &e);
		break;
	case PIPE_EFFECT_SESSION_MOVED:
		log_info("session 0x%llx is owned by another server: a request through server %u gets SESSIONMOVED",
			 (unsigned long long)e.session_id, origin_server(&e));
		if (l && l->conn_id != RK_CONN_ID_NONE && !l->answered) {
			pipe_reply_start(p);
			pipe_route_reply(p, l, ZK_SESSIONMOVED, store_last_zxid(p->store), true);
		}
		break;
	case PIPE_EFFECT_STORE:
		pipe_apply_txn(p, &e, l, (int64_t)ce->index);
		return;
	}
	if (l)
		pipe_local_pop(p);
}

/*
 * The store's warnings (quota overruns), logged as ZooKeeper's RateLogger does: a new
 * text at once; the same text again within PIPE_WARN_REPEAT_MS only counted, and the
 * count logged with the next text that is logged. Raft thread only.
 */
void pipe_store_warn(void *ctx, const char *text)
{
	struct raft_pipeline *p = ctx;
	int64_t now = rk_now_ms();
	if (strcmp(text, p->warn_last) == 0 && now - p->warn_last_ms < PIPE_WARN_REPEAT_MS) {
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
