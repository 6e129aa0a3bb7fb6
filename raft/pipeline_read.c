/*
 * pipeline_read.c — sync through Raft's read index, never through the log.
 *
 * A client's sync asks that this server apply at least everything committed when the
 * sync arrived. The core's read index gives that: the leader names its commit index
 * only after a heartbeat round acknowledged by a majority shows it still leads, so a
 * leader that was paused or cut off never names a stale one (ZOOKEEPER-1675 is the
 * bug this avoids). A follower asks its leader; the leader asks itself.
 *
 * Thread: the raft thread only.
 *
 * Invariants
 *   1. A sync waits in the local FIFO with the proposals (pipeline_apply.c, invariant
 *      3): it is answered after every request of this server made before it, and what
 *      comes after it waits for it, so one session's replies keep its request order.
 *   2. It is answered when this server has applied at least its confirmed read index,
 *      or when a later proposal of ours has been applied: that proposal was appended
 *      by a leader after the sync arrived, so its index is above every entry
 *      committed before then (Leader Completeness). "Ours" means this run's: an
 *      entry proposed before a restart may sit anywhere below (pipe_local_for).
 *   3. A sync with no read index is asked for again every PIPE_SYNC_RETRY_MS (no leader,
 *      a refusal, a leader change, a lost message); after PIPE_SYNC_GIVE_UP_MS its
 *      client gets CONNECTIONLOSS and its connection closes, as a ZooKeeper follower
 *      that lost its leader closes its clients.
 */
#include <assert.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/zk_proto.h"
#include "raft/pipeline_impl.h"
#include "store/store.h"

static void pipe_sync_ask(struct raft_pipeline *p, struct pipe_local *l, int64_t now)
{
	int rc = raft_read_index(p->core, l->read_ctx);
	/* -EAGAIN (no leader yet, or it has not committed in its term) and -ENOBUFS
	 * (too many pending reads) are asked again on a later tick. */
	l->read_asked_ms = rc == 0 ? now : now - PIPE_SYNC_RETRY_MS + p->cfg->raft_tick_ms;
}

void pipe_sync_push(struct raft_pipeline *p, struct rk_msg *m)
{
	assert(p->local_count < PIPE_LOCAL_MAX);
	struct pipe_local *l = &p->local[(p->local_head + p->local_count) % PIPE_LOCAL_MAX];
	*l = (struct pipe_local){
		.conn_id = m->conn_id,
		.session_id = m->session_id,
		.start_us = m->start_us,
		.xid = m->xid,
		.opcode = ZK_OP_SYNC,
		.sync = m,
		.read_ctx = ++p->read_ctx_next,
		.sync_since_ms = rk_now_ms(),
	};
	p->local_count++;
	p->syncs_pending++;
	pipe_sync_ask(p, l, rk_now_ms());
}

static struct pipe_local *pipe_sync_find(struct raft_pipeline *p, uint64_t ctx)
{
	for (size_t i = 0; i < p->local_count; i++) {
		struct pipe_local *l = &p->local[(p->local_head + i) % PIPE_LOCAL_MAX];
		if (l->sync && l->read_ctx == ctx)
			return l;
	}
	return NULL;
}

void pipe_sync_reads(struct raft_pipeline *p, const struct raft_read_state *reads, int n)
{
	if (p->syncs_pending == 0)
		return;
	for (int i = 0; i < n; i++) {
		struct pipe_local *l = pipe_sync_find(p, reads[i].ctx);
		if (!l || l->read_known)
			continue; /* answered already, or a duplicate from a retry */
		if (reads[i].refused) {
			l->read_asked_ms = 0; /* the leader could not serve it: ask again */
			continue;
		}
		l->read_index = reads[i].index;
		l->read_known = true;
	}
	pipe_answer_refused(p);
}

/* Frees the sync's request; the slot is popped by the caller. */
static void pipe_sync_done(struct raft_pipeline *p, struct pipe_local *l)
{
	free(l->sync);
	l->sync = NULL;
	assert(p->syncs_pending > 0);
	p->syncs_pending--;
}

bool pipe_sync_try_answer(struct raft_pipeline *p, struct pipe_local *l, bool overtaken)
{
	assert(l->sync);
	if (!l->answered && !overtaken && !(l->read_known && p->applied_index >= l->read_index))
		return false;
	if (!l->answered) {
		/* SyncResponse{path} echoes SyncRequest{path}; a short record is
		 * MARSHALLINGERROR and trailing bytes are ignored (store_apply.c, rule 1). */
		struct rk_entry e;
		int rc = entry_decode(&e, l->sync->data, l->sync->len);
		assert(rc == 0);
		struct jute_reader r;
		jute_reader_init(&r, e.body, e.body_len);
		struct jute_bytes path = jute_read_string(&r);
		int32_t err = jute_reader_ok(&r) ? ZK_OK : ZK_MARSHALLINGERROR;
		pipe_reply_start(p);
		if (err == ZK_OK)
			jute_write_string(&p->reply, (const char *)path.data, path.len);
		pipe_route_reply(p, l, err, store_last_zxid(p->store), false);
	}
	pipe_sync_done(p, l);
	pipe_local_pop(p);
	return true;
}

void pipe_sync_tick(struct raft_pipeline *p, int64_t now)
{
	if (p->syncs_pending == 0)
		return;
	for (size_t i = 0; i < p->local_count; i++) {
		struct pipe_local *l = &p->local[(p->local_head + i) % PIPE_LOCAL_MAX];
		if (!l->sync || l->read_known || l->answered)
			continue;
		if (now - l->sync_since_ms > PIPE_SYNC_GIVE_UP_MS) {
			log_warn("sync of session 0x%llx: no leader confirmed a read index in %d ms: closing its connection",
				 (unsigned long long)l->session_id, PIPE_SYNC_GIVE_UP_MS);
			pipe_answer_lost(p, l);
		} else if (now - l->read_asked_ms >= PIPE_SYNC_RETRY_MS) {
			pipe_sync_ask(p, l, now);
		}
	}
	pipe_answer_refused(p);
}
