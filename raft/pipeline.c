/*
 * pipeline.c — the raft thread's loop: it drives the consensus core (raft/core.h)
 * and carries out what the core asks for.
 *
 *   workers' to_raft ──collect──► batch ──raft_propose──► core ──ready──► hard state,
 *   log (stage, write, sync) ──raft_durable──► core ──ready: committed──► apply
 *   (pipeline_apply.c) ──► replies and notifications to the workers' from_raft
 *
 * Owner: the raft thread owns the core, the batch, the log and (as the applier) is
 * the only writer of the store. Workers only push proposals and read the store.
 *
 * Invariants
 *   1. Proposals are handed to the core in the order they were drained; one worker's
 *      queue is FIFO, so one connection's writes are applied and answered in the
 *      order it sent them. zxid = log index.
 *   2. A ready record is carried out in the core's order: a changed term or vote is
 *      durable (raft/hardstate.c) before any entry of it is written and before any
 *      message is sent; entries are staged in index order; committed entries are
 *      applied in order, only once durable (the core commits nothing that is not).
 *   3. A reply leaves only after its entry is applied, and every notification an
 *      entry fires is queued before that entry's reply (same queue, earlier slot).
 *   4. The batch is bounded (PIPE_BATCH_ENTRIES_MAX) and so is the local FIFO
 *      (PIPE_LOCAL_MAX); what does not fit waits in the workers' queues, whose
 *      producers stop reading clients when they fill.
 *
 * Durability (group commit): the entries of a ready record are staged into the
 * write-ahead log (raft/wal.c) as one batch, written with O_DIRECT and made durable,
 * then reported to the core, which commits them (one voter: at once). Batches grow
 * with the load by themselves, with no timer:
 *   - raft.logSyncMethod=syscall (default): wal_submit() writes and fdatasyncs the
 *     batch on this thread and returns 1; the batch is applied at once, and the next
 *     pass drains everything the workers queued meanwhile into the next batch.
 *   - linked / dsync: the batch goes out on this thread's ring; while it is on the
 *     disk the next one is drained and staged, and submitted the moment the first
 *     completes (before the finished one is applied).
 * wal.c (wal_sync_mode_default) has the measurements behind the default.
 *
 * Proposals go to the core only as far as the log's next batch takes them
 * (wal_stage_room), so a full disk (no new segment can be prepared) is seen before an
 * entry enters the core: proposals are then refused with SYSTEMERROR, in their turn,
 * until space returns, and reads go on. Entries the core hands out that the log cannot
 * stage at once (a no-op at a new term on top of a full batch) wait, copied, in
 * `unstaged`, and are staged first.
 *
 * Session expiry: every PIPE_EXPIRY_CHECK_MS the thread asks the store for sessions
 * whose deadline passed and proposes a closeSession entry for each (the leader's job).
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
#include "core/mem.h"
#include "core/zk_proto.h"
#include "raft/hardstate.h"
#include "raft/pipeline_impl.h"
#include "store/store.h"

/* ---- proposals in ---------------------------------------------------------------- */

/* Drains every worker's queue into the batch. Returns the messages taken. */
static size_t pipe_collect(struct raft_pipeline *p)
{
	size_t taken = 0;
	for (int i = 0; i < p->hub->port_count; i++) {
		while (p->batch_count < PIPE_BATCH_ENTRIES_MAX) {
			struct rk_msg *m = hub_from_worker(p->hub, i);
			if (!m)
				break;
			taken++;
			if (m->kind == RK_MSG_SESSION_ATTACH) {
				int64_t session_id = m->session_id;
				pipe_broadcast_session_gone(p, session_id, m->conn_id, 0);
				free(m);
				/* In a cluster the other servers learn it through the log: their
				 * connections of the session close, its writes from them get
				 * SESSIONMOVED (pipeline_apply.c). */
				struct rk_msg *move = p->voter_count > 1 ?
					pipe_own_entry(session_id, RK_OP_SESSION_MOVE, NULL, 0) : NULL;
				if (move)
					p->batch[p->batch_count++] = move;
				continue;
			}
			if (m->kind == RK_MSG_LEADERSHIP) {
				pipe_lead_on_msg(p, m);
				free(m);
				continue;
			}
			assert(m->kind == RK_MSG_PROPOSAL);
			p->batch[p->batch_count++] = m;
		}
	}
	return taken;
}

/* Hands msgs[0..n) to the core and records them as ours. false: the core has no
 * room now (they stay the caller's). */
static bool pipe_propose_run(struct raft_pipeline *p, struct rk_msg **msgs, size_t n)
{
	if (n == 0)
		return true;
	struct raft_proposal props[PIPE_BATCH_ENTRIES_MAX];
	int64_t now = rk_now_ms();
	uint64_t seq = p->origin_seq;
	for (size_t i = 0; i < n; i++) {
		entry_set_time(msgs[i]->data, now);
		uint64_t origin = entry_origin_make(p->server_id, ++seq);
		entry_set_origin(msgs[i]->data, origin);
		/* Recorded first: from a successful raft_propose on, the messages are the core's. */
		pipe_local_push(p, msgs[i], origin, 0);
		props[i] = (struct raft_proposal){ .owner = msgs[i], .data = msgs[i]->data, .len = msgs[i]->len };
	}
	int rc = raft_propose(p->core, props, (int)n);
	if (rc == 0) {
		p->origin_seq = seq;
		return true;
	}
	p->local_count -= n; /* not taken: forget them again */
	/* No room in the core's window, no leader known, a leadership transfer: they
	 * wait in the batch (and the workers' queues behind it) and are tried again. */
	if (rc == -ENOBUFS || rc == -EAGAIN || rc == -EBUSY) {
		p->core_refused = true; /* wait for the core to change (a tick, a message) */
		return false;
	}
	log_error("raft: proposal refused by the core: %s; stopping", strerror(-rc));
	abort();
}

/* How much of the batch the log can stage now (see wal_stage_room); a full disk shows
 * here, before anything is handed to the core. */
static void pipe_log_room(struct raft_pipeline *p, uint32_t *entries_left, uint64_t *bytes_left)
{
	*entries_left = 0;
	*bytes_left = 0;
	if (p->unstaged_head || !p->batch_count)
		return; /* the log is behind the core: it catches up first */
	int rc = wal_stage_room(p->wal, p->batch[0]->len, entries_left, bytes_left);
	if (rc == -ENOSPC) {
		if (!p->disk_full)
			log_error("log: no space for a new segment in %s: refusing writes until space returns",
				  p->cfg->data_log_dir);
		p->disk_full = true;
	} else if (rc < 0) {
		log_error("log: append failed: %s; stopping (the log is the truth, restart recovers it)",
			  strerror(-rc));
		abort();
	} else if (p->disk_full) {
		log_info("log: space is back, writes accepted again");
		p->disk_full = false;
	}
}

/*
 * Hands the batch to the core in runs, as much as the log stages in its next batch
 * (so the core never holds an entry the log cannot take), refusing in its turn what
 * the log cannot take at all (a full disk, an entry over the log's batch size): it is
 * answered after the proposals before it (conn.h invariant 1). The rest stays in the
 * batch for the next turn.
 */
static void pipe_propose_batch(struct raft_pipeline *p)
{
	uint32_t entries_left;
	uint64_t bytes_left;
	pipe_log_room(p, &entries_left, &bytes_left);
	size_t start = 0, i = 0;
	bool stalled = false;
	while (i < p->batch_count && p->local_count + (i - start) < PIPE_LOCAL_MAX) {
		struct rk_msg *m = p->batch[i];
		if (pipe_conn_failed(p, m->conn_id)) {
			/* Its connection lost an earlier proposal: this one must not apply
			 * after it. Answered CONNECTIONLOSS in its turn, never proposed. */
			if (!pipe_propose_run(p, p->batch + start, i - start)) {
				stalled = true;
				break;
			}
			pipe_local_push(p, m, 0, ZK_CONNECTIONLOSS);
			p->local[(p->local_head + p->local_count - 1) % PIPE_LOCAL_MAX].close_after = true;
			free(m);
			start = ++i;
			continue;
		}
		if (m->flags & RK_MSG_SYNC) {
			/* Not logged: what comes before it goes to the core first (its order). */
			if (!pipe_propose_run(p, p->batch + start, i - start)) {
				stalled = true;
				break;
			}
			pipe_sync_push(p, m);
			start = ++i;
			continue;
		}
		if (!p->disk_full && m->len <= p->entry_bytes_max) {
			uint64_t record = WAL_RECORD_HEADER_SIZE + (uint64_t)m->len;
			if (entries_left == 0 || record > bytes_left)
				break; /* the log's next batch */
			entries_left--;
			bytes_left -= record;
			i++;
			continue;
		}
		if (!pipe_propose_run(p, p->batch + start, i - start)) {
			stalled = true;
			break;
		}
		pipe_local_push(p, m, 0, ZK_SYSTEMERROR);
		free(m);
		start = ++i;
	}
	if (!stalled && pipe_propose_run(p, p->batch + start, i - start))
		start = i;
	memmove(p->batch, p->batch + start, (p->batch_count - start) * sizeof p->batch[0]);
	p->batch_count -= start;
}

/* ---- the log ----------------------------------------------------------------------- */

static void pipe_unstaged_push(struct raft_pipeline *p, const struct raft_entry *e)
{
	struct pipe_unstaged *u = malloc(sizeof *u + e->len);
	assert(u); /* the core already holds the entry: it must reach the log */
	u->next = NULL;
	u->index = e->index;
	u->term = e->term;
	u->len = e->len;
	if (e->len) /* a no-op has no data (NULL) */
		memcpy(u->data, e->data, e->len);
	if (p->unstaged_tail)
		p->unstaged_tail->next = u;
	else
		p->unstaged_head = u;
	p->unstaged_tail = u;
}

/* wal_stage with the pipeline's answer to each result: true when staged. */
static bool pipe_stage_one(struct raft_pipeline *p, uint64_t term, uint64_t index, const void *data, uint32_t len)
{
	int rc = wal_stage(p->wal, term, index, data, len);
	if (rc == 0) {
		if (p->disk_full) {
			log_info("log: space is back, writes accepted again");
			p->disk_full = false;
		}
		return true;
	}
	if (rc == -EAGAIN)
		return false; /* staging batch full: the rest waits for the next submit */
	if (rc == -ENOSPC) {
		if (!p->disk_full)
			log_error("log: no space for a new segment in %s: refusing writes until space returns",
				  p->cfg->data_log_dir);
		p->disk_full = true;
		return false;
	}
	log_error("log: append failed: %s; stopping (the log is the truth, restart recovers it)", strerror(-rc));
	abort();
}

/*
 * Drops the conflicting suffix the core asked for, once the log is idle (nothing
 * staged, nothing in flight: wal_truncate_suffix's precondition). A batch that was on
 * its way finishes first; its durability report names the old entries' term, which
 * the core ignores. true when no truncation is pending.
 */
static bool pipe_truncate_when_idle(struct raft_pipeline *p)
{
	if (p->truncate_after == UINT64_MAX)
		return true;
	if (wal_in_flight(p->wal) || wal_staged_count(p->wal) > 0)
		return false;
	int rc = wal_truncate_suffix(p->wal, p->truncate_after);
	if (rc < 0) {
		log_error("log: dropping the entries after %llu failed: %s; stopping",
			  (unsigned long long)p->truncate_after, strerror(-rc));
		abort();
	}
	log_info("log: dropped the entries after %llu (a new leader's log differs)",
		 (unsigned long long)p->truncate_after);
	if (p->durable_index > (int64_t)p->truncate_after)
		p->durable_index = (int64_t)p->truncate_after;
	p->truncate_after = UINT64_MAX;
	return true;
}

/* A ready record's truncation: the entries after `after` that wait unstaged go now. */
static void pipe_truncate(struct raft_pipeline *p, uint64_t after)
{
	if (after < p->truncate_after)
		p->truncate_after = after;
	struct pipe_unstaged **pp = &p->unstaged_head;
	p->unstaged_tail = NULL;
	while (*pp) {
		if ((*pp)->index > after) {
			struct pipe_unstaged *u = *pp;
			*pp = u->next;
			free(u);
			continue;
		}
		p->unstaged_tail = *pp;
		pp = &(*pp)->next;
	}
	pipe_truncate_when_idle(p);
}

/* Stages what waits in `unstaged`, oldest first. true when nothing waits any more. */
static bool pipe_stage_unstaged(struct raft_pipeline *p)
{
	if (!pipe_truncate_when_idle(p))
		return false;
	while (p->unstaged_head) {
		struct pipe_unstaged *u = p->unstaged_head;
		if (!pipe_stage_one(p, u->term, u->index, u->data, u->len))
			return false;
		p->unstaged_head = u->next;
		if (!p->unstaged_head)
			p->unstaged_tail = NULL;
		free(u);
	}
	return true;
}

static void pipe_stage_entries(struct raft_pipeline *p, const struct raft_entry *entries, int count)
{
	bool clear = pipe_stage_unstaged(p);
	for (int i = 0; i < count; i++) {
		const struct raft_entry *e = &entries[i];
		if (clear && pipe_stage_one(p, e->term, e->index, e->data, e->len))
			continue;
		clear = false;
		pipe_unstaged_push(p, e);
	}
}

/* Writes the hard state; the file's commit never moves back (the periodic save may
 * have gone further than a ready record's). Fatal on error, like a log write. */
static void pipe_write_hard_state(struct raft_pipeline *p, uint64_t term, uint64_t vote, uint64_t commit)
{
	if (commit < p->commit_saved)
		commit = p->commit_saved;
	struct hardstate h = { .term = term, .vote = vote, .commit = commit };
	int rc = hardstate_save(p->cfg->data_dir, &h);
	if (rc < 0) {
		/* The disk's state is unknown: crash, and let the restart read it. */
		log_error("raft: hard state cannot be saved in %s: %s; stopping", p->cfg->data_dir, strerror(-rc));
		abort();
	}
	p->commit_saved = commit;
}

static void pipe_save_hard_state(struct raft_pipeline *p, const struct raft_hard_state *hs)
{
	pipe_write_hard_state(p, hs->term, hs->vote, hs->commit);
	log_info("raft: term %llu, vote %llu", (unsigned long long)hs->term, (unsigned long long)hs->vote);
}

/*
 * With followers, restart recovery applies the log only up to the saved commit
 * (pipeline_recover.c, rule 1): save it now and then (two syncs, about once a second
 * while it moves), not only when the term or vote changes.
 */
void pipe_save_commit(struct raft_pipeline *p)
{
	struct raft_status st;
	raft_status(p->core, &st);
	uint64_t commit = st.commit < st.durable ? st.commit : st.durable;
	if (commit > p->commit_saved)
		pipe_write_hard_state(p, st.term, st.vote, commit);
}

/* The leader's proposal sizes for srvr/stat (entries it appended this ready). */
static void pipe_note_proposal_sizes(struct raft_pipeline *p, const struct raft_entry *e, int n)
{
	int64_t lo = INT64_MAX, hi = -1;
	for (int i = 0; i < n; i++) {
		lo = (int64_t)e[i].len < lo ? (int64_t)e[i].len : lo;
		hi = (int64_t)e[i].len > hi ? (int64_t)e[i].len : hi;
	}
	pthread_mutex_lock(&p->stats_lock);
	p->stats.proposal_size_last = (int64_t)e[n - 1].len;
	if (p->stats.proposal_size_min < 0 || lo < p->stats.proposal_size_min)
		p->stats.proposal_size_min = lo;
	if (hi > p->stats.proposal_size_max)
		p->stats.proposal_size_max = hi;
	pthread_mutex_unlock(&p->stats_lock);
}

/*
 * The applied entries the core may drop (raft_compact; their messages are freed now,
 * on this thread, while warm). It keeps the rest, up to its window (raft.logEntriesMax,
 * whose upper half it drops by itself):
 *   - one voter: none (no follower will ask for one);
 *   - a leader: those some follower has not acknowledged yet, so a follower that is
 *     behind (down, cut off, slow) catches up from memory while it is within the
 *     window, and one that is installing a snapshot finds the entries after it;
 *   - a follower or candidate: the last PIPE_FOLLOWER_HISTORY, for the peers a little
 *     behind it should it be elected (one further behind gets a snapshot).
 * Before, every server kept the whole window even with every follower up to date:
 * half a million entries no one would ask for (about 280 B each: the request and its
 * slot), 150 MB, more than half of what a tree of a million znodes takes.
 */
static uint64_t pipe_retain_after(struct raft_pipeline *p)
{
	uint64_t applied = p->applied_index;
	if (p->voter_count == 1)
		return applied;
	if (p->role != RAFT_LEADER)
		return applied > PIPE_FOLLOWER_HISTORY ? applied - PIPE_FOLLOWER_HISTORY : 0;
	struct raft_status st;
	raft_status(p->core, &st);
	uint64_t keep = applied;
	for (int i = 0; i < st.voter_count; i++)
		if (st.peers[i].id != st.id && st.peers[i].match < keep)
			keep = st.peers[i].match;
	return keep;
}

/*
 * Carries out the core's ready record (core.h's loop, steps 1-5). Called after every
 * input to the core; applies what became committed.
 */
static void pipe_handle_ready(struct raft_pipeline *p)
{
	const struct raft_ready *rd = raft_ready(p->core);
	if (rd->role == RAFT_LEADER && p->role != RAFT_LEADER) {
		/* A new leader gives every session a full timeout before it expires any
		 * (store_sessions_expired counts no deadline from before this): it has not
		 * heard the other servers' reports, and a session whose createSession of an
		 * earlier term it commits only now has a deadline from that entry's time. */
		p->lead_since_ms = rk_now_ms();
		log_info("raft: leading term %llu", (unsigned long long)rd->term);
	}
	if (p->leader != 0 && rd->leader != p->leader)
		pipe_fail_pending(p);
	p->leader = rd->leader;
	p->role = rd->role;
	if (rd->leader != p->stats.leader_id || rd->term != p->stats.term ||
	    (rd->role == RAFT_LEADER) != p->stats.leading) {
		pthread_mutex_lock(&p->stats_lock);
		pipe_metrics_on_leader(p, rd->leader, rd->role == RAFT_LEADER);
		p->stats.leader_id = rd->leader;
		p->stats.term = rd->term;
		p->stats.leading = rd->role == RAFT_LEADER;
		pthread_mutex_unlock(&p->stats_lock);
	}
	if (rd->hard_state_changed && rd->must_sync)
		pipe_save_hard_state(p, &rd->hard_state);
	if (rd->truncate)
		pipe_truncate(p, rd->truncate_after);
	pipe_stage_entries(p, rd->entries, rd->entry_count);
	if (rd->role == RAFT_LEADER && rd->entry_count > 0)
		pipe_note_proposal_sizes(p, rd->entries, rd->entry_count);
	/* The leader sends its appends before its own write is durable (it counts itself
	 * once it is); a follower's acknowledgements come only after (the core's rule). */
	assert(p->send_msg || rd->msg_count == 0);
	for (int i = 0; i < rd->msg_count; i++)
		p->send_msg(p->send_ctx, &rd->msgs[i]);
	size_t n = 0;
	if (rd->committed_count) {
		/* Published before any reply goes out: a client that saw its write
		 * acknowledged finds lgif's committed index at or past its zxid. */
		pthread_mutex_lock(&p->stats_lock);
		p->stats.commit_index = rd->committed[rd->committed_count - 1].index;
		pthread_mutex_unlock(&p->stats_lock);
	}
	for (int i = 0; i < rd->committed_count; i++) {
		pipe_apply_committed(p, &rd->committed[i]);
		n++;
	}
	pipe_sync_reads(p, rd->reads, rd->read_count);
	raft_advance(p->core);
	pipe_peers_after_ready(p); /* input for the core, now that the ready is done */
	if (n) {
		raft_applied(p->core, p->applied_index);
		int rc = raft_compact(p->core, pipe_retain_after(p));
		assert(rc == 0);
		(void)rc;
		pthread_mutex_lock(&p->stats_lock);
		p->stats.applied_index = p->applied_index;
		p->stats.batches++;
		p->stats.entries += n;
		if (n > p->stats.batch_entries_max)
			p->stats.batch_entries_max = n;
		pthread_mutex_unlock(&p->stats_lock);
	}
}

/* The log is durable up to `durable`: tell the core, which commits and hands out
 * the entries to apply. */
static void pipe_on_durable(struct raft_pipeline *p, int64_t durable)
{
	if (durable <= p->durable_index)
		return;
	p->durable_index = durable;
	uint64_t term = 0;
	while (p->submitted_count && p->submitted[p->submitted_head].index <= (uint64_t)durable) {
		term = p->submitted[p->submitted_head].term;
		p->submitted_head = (p->submitted_head + 1) % PIPE_SUBMITTED_MAX;
		p->submitted_count--;
	}
	assert(term > 0); /* durability is reported at a batch's end */
	/* Published before any reply goes out (pipe_send wakes workers at once): a client
	 * that saw its write acknowledged finds lgif's committed index at or past its zxid. */
	pthread_mutex_lock(&p->stats_lock);
	p->stats.last_index = (uint64_t)durable;
	pipe_stats_log_start(p);
	p->stats.last_term = term;
	pthread_mutex_unlock(&p->stats_lock);
	raft_durable(p->core, (uint64_t)durable, term);
	pipe_handle_ready(p);
	pipe_peers_flush(p); /* a follower's acknowledgement of what just became durable */
}

/* Submits the staged batch when the log can take one. */
static void pipe_submit(struct raft_pipeline *p)
{
	pipe_answer_refused(p); /* their turn may have come without any entry applied */
	if (!wal_can_submit(p->wal))
		return; /* nothing staged, or inflight_max batches already on the disk */
	assert(p->submitted_count < PIPE_SUBMITTED_MAX);
	unsigned slot = (p->submitted_head + p->submitted_count++) % PIPE_SUBMITTED_MAX;
	p->submitted[slot].index = wal_last_index(p->wal);
	p->submitted[slot].term = wal_last_term(p->wal);
	int rc = wal_submit(p->wal, &p->ring, UD_PIPE_WAL);
	if (rc < 0) {
		log_error("log: write, fdatasync or submit failed: %s; stopping", strerror(-rc));
		abort();
	}
	if (rc == 1) /* raft.logSyncMethod=syscall: durable on return, no CQE comes */
		pipe_on_durable(p, (int64_t)wal_durable_index(p->wal));
}

/* Everything drained so far, through the core and into the log. */
static void pipe_turn(struct raft_pipeline *p)
{
	if (p->batch_count < PIPE_BATCH_ENTRIES_MAX)
		pipe_collect(p);
	pipe_handle_ready(p); /* what the core holds goes to the log before new proposals */
	pipe_propose_batch(p);
	pipe_handle_ready(p);
	pipe_peers_flush(p); /* the appends go out while the leader writes its own log */
	pipe_submit(p);
	pipe_peers_flush(p); /* a follower's acknowledgements, once durable */
}

static void pipe_on_wal_cqe(struct raft_pipeline *p, const struct io_uring_cqe *cqe)
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
		pipe_turn(p);
		pipe_on_durable(p, (int64_t)durable);
	}
}

/* ---- the loop ---------------------------------------------------------------------- */

/* Announces sleep unless there is work; true when the thread may block. */
static bool pipe_may_sleep(struct raft_pipeline *p)
{
	bool in_flight = wal_in_flight(p->wal);
	bool stuck = p->batch_count > 0 || p->unstaged_head; /* only a completion frees room */
	if (p->core_refused)
		return true; /* no leader, a transfer, a full window: only time or a peer helps */
	if (stuck && !in_flight && !p->disk_full)
		return false; /* the submit made room: stage the rest now */
	/* With inflight_max batches on the disk nothing can go out before a completion, so
	 * proposals need not wake us: they wait in the queues and are drained when the
	 * completion arrives (fewer wake-ups per batch). */
	if (stuck || wal_in_flight_count(p->wal) >= wal_inflight_max(p->wal))
		return true;
	/* Announce sleep so a worker's next proposal wakes us: with fewer than inflight_max
	 * batches on the disk it goes out at once, in a batch of its own (group commit
	 * needs no timer: batches grow with the load). */
	atomic_store_explicit(&p->hub->raft_sleeping, 1, memory_order_seq_cst);
	if (hub_raft_has_input(p->hub)) {
		atomic_store_explicit(&p->hub->raft_sleeping, 0, memory_order_relaxed);
		return false;
	}
	return true;
}

/*
 * Handles the ring's completions: the log's, the peers'. With `sleep`, first blocks
 * until one comes or a tick passes; without, only takes what is there (a busy loop
 * must still hear its peers: an election needs their votes).
 */
static void pipe_wait(struct raft_pipeline *p, bool sleep)
{
	struct __kernel_timespec ts = { 0, p->cfg->raft_tick_ms * 1000000LL };
	struct io_uring_cqe *cqe;
	if (sleep)
		io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);
	else
		io_uring_submit(&p->ring);
	atomic_store_explicit(&p->hub->raft_sleeping, 0, memory_order_relaxed);
	unsigned head, count = 0;
	io_uring_for_each_cqe(&p->ring, head, cqe)
	{
		count++;
		if (wal_user_data_match(UD_PIPE_WAL, cqe->user_data))
			pipe_on_wal_cqe(p, cqe);
		else
			pipe_peers_on_cqe(p, cqe);
	}
	io_uring_cq_advance(&p->ring, count);
}

static void *pipe_main(void *arg)
{
	struct raft_pipeline *p = arg;
	rk_log_thread_name("raft");
	/* The applier frees what deletes and closed sessions leave: handed back once the
	 * writes go quiet (core/mem.h), or a mass delete would leave RSS at its peak. */
	struct rk_mem_quiet quiet = { .window_start_us = rk_now_us() };
	uint64_t applied_seen = p->applied_index;
	while (!atomic_load_explicit(&p->hub->stopping, memory_order_relaxed)) {
		pipe_timers(p);
		p->core_refused = false;
		pipe_turn(p);
		pipe_snap_tick(p);
		pipe_wait(p, pipe_may_sleep(p));
		rk_mem_quiet_tick(&quiet, p->applied_index - applied_seen, rk_now_us());
		applied_seen = p->applied_index;
	}
	/* Let the batches on the disk finish so the log is closed cleanly. */
	while (wal_in_flight(p->wal)) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&p->ring, &cqe) < 0)
			break;
		if (wal_user_data_match(UD_PIPE_WAL, cqe->user_data))
			pipe_on_wal_cqe(p, cqe);
		io_uring_cqe_seen(&p->ring, cqe);
	}
	pipe_peers_stop(p); /* consumes its own CQEs: after the log's */
	return NULL;
}

/* ---- lifetime ------------------------------------------------------------------------ */

int raft_pipeline_create(const struct rk_config *cfg, struct store *store, struct hub *hub,
			 struct raft_pipeline **out)
{
	struct raft_pipeline *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->cfg = cfg;
	p->store = store;
	p->hub = hub;
	p->truncate_after = UINT64_MAX;
	pthread_mutex_init(&p->stats_lock, NULL);
	jute_writer_init(&p->reply, (size_t)cfg->packet_bytes_max + sizeof(struct rk_msg) + 64);
	int rc = pipe_recover(p);
	if (rc < 0) {
		raft_pipeline_destroy(p);
		return rc;
	}
	/* Workers submit MSG_RING to this ring from their threads; this thread is its only
	 * submitter, so no SINGLE_ISSUER is needed for them. */
	struct io_uring_params params;
	memset(&params, 0, sizeof params);
	rc = io_uring_queue_init_params(1024, &p->ring, &params);
	if (rc < 0) {
		log_error("raft io_uring: %s", strerror(-rc));
		raft_pipeline_destroy(p);
		return rc;
	}
	p->ring_ready = true;
	if ((rc = pipe_peers_start(p)) < 0) {
		raft_pipeline_destroy(p);
		return rc;
	}
	hub_attach_raft(hub, p->ring.ring_fd, UD_PIPE_WAKE);
	/* Set after recovery: replaying the log re-runs quota checks, but their warnings
	 * were logged when the entries were first applied. */
	store_set_warn(store, pipe_store_warn, p);
	*out = p;
	return 0;
}

int raft_pipeline_start(struct raft_pipeline *p)
{
	int rc = pthread_create(&p->thread, NULL, pipe_main, p);
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
	for (size_t i = 0; i < p->local_count; i++)
		free(p->local[(p->local_head + i) % PIPE_LOCAL_MAX].sync);
	while (p->unstaged_head) {
		struct pipe_unstaged *u = p->unstaged_head;
		p->unstaged_head = u->next;
		free(u);
	}
	pipe_peers_stop(p);
	pipe_snap_stop(p);
	raft_free(p->core);
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
