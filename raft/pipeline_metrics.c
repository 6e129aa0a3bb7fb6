/*
 * pipeline_metrics.c — what the raft thread records for /metrics beyond its counters:
 * elections (ZooKeeper's looking_count and election_time), the start of a leadership
 * (leader_uptime), the followers as the leader sees them (learners, per-follower lag)
 * and the start-up recovery (dbinittime, startup_snap_load_time, startup_txns_loaded, startup_txns_load_time).
 *
 * Thread: the raft thread (main during recovery, before the thread starts). Histograms
 * are single-writer (core/hist.h); struct raft_stats fields are written under
 * stats_lock, which the callers hold where the header says so.
 *
 * An "election" here is the time this server knows no leader: from start-up, or from
 * the moment its leader is lost (a new term, a leader that went silent), until it
 * learns of one (it wins, or hears the new leader). That is the span ZooKeeper's
 * election_time measures on a QuorumPeer (LOOKING until it leads or follows). A
 * standalone server never looks for a leader: nothing is recorded, as in ZooKeeper.
 */
#include <assert.h>

#include "core/clock.h"
#include "raft/pipeline_impl.h"

static_assert(RAFT_STATS_PEERS_MAX == RAFT_VOTERS_MAX, "raft_stats.peers holds every voter");

void pipe_metrics_on_leader(struct raft_pipeline *p, uint64_t leader, bool leading)
{
	int64_t now_us = rk_now_us();
	if (leading && !p->stats.leading)
		p->stats.leading_since_us = now_us;
	else if (!leading)
		p->stats.leading_since_us = 0;
	if (p->voter_count == 1 || leader == p->stats.leader_id)
		return;
	struct pipe_metrics *m = &p->metrics;
	if (leader == 0) {
		/* The leader is lost: looking from now on. */
		p->stats.looking_count++;
		m->leaderless_since_us = now_us;
		return;
	}
	if (m->leaderless_since_us != 0) {
		rk_hist_record(&m->election_ms, (uint64_t)(now_us - m->leaderless_since_us) / 1000);
		m->leaderless_since_us = 0;
	} else if (p->stats.leader_id != 0) {
		/* One leader straight to another: it looked, but when it began is unknown. */
		p->stats.looking_count++;
	}
}

void pipe_metrics_peers(struct raft_pipeline *p, const struct raft_status *st)
{
	p->stats.peer_count = 0;
	p->stats.learners = 0;
	if (st->role != RAFT_LEADER)
		return;
	for (int i = 0; i < st->voter_count; i++) {
		const struct raft_peer_status *ps = &st->peers[i];
		if (ps->id == st->id)
			continue;
		struct raft_peer_stats *out = &p->stats.peers[p->stats.peer_count++];
		out->id = (uint32_t)ps->id;
		out->match_index = ps->match;
		out->lag_entries = st->last_index > ps->match ? st->last_index - ps->match : 0;
		struct transport_peer_status ts;
		out->connected = p->transport && transport_peer_status(p->transport, (uint32_t)ps->id, &ts) == 0 &&
				 ts.connected;
		p->stats.learners += out->connected;
	}
}

void pipe_metrics_recovered(struct raft_pipeline *p, int64_t total_ms, int64_t snap_ms, int64_t log_ms,
			    uint64_t entries)
{
	struct pipe_metrics *m = &p->metrics;
	rk_hist_record(&m->db_init_ms, (uint64_t)(total_ms > 0 ? total_ms : 0));
	/* ZooKeeper records this at every start, a snapshot found or not */
	rk_hist_record(&m->startup_snap_load_ms, (uint64_t)(snap_ms > 0 ? snap_ms : 0));
	if (entries > 0) { /* ZooKeeper records these only when a txn log was read */
		rk_hist_record(&m->startup_txns_load_ms, (uint64_t)(log_ms > 0 ? log_ms : 0));
		rk_hist_record(&m->startup_txns, entries);
	}
	if (p->voter_count > 1) {
		/* A cluster member starts out looking for its leader. */
		p->stats.looking_count = 1;
		m->leaderless_since_us = rk_now_us();
	}
}

void raft_pipeline_hists(struct raft_pipeline *p, struct raft_hists *out)
{
	const struct wal_hists *wh = wal_hists(p->wal);
	out->log_sync_us = &wh->sync_us;
	out->log_batch_entries = &wh->batch_entries;
	out->log_batch_bytes = &wh->batch_bytes;
	out->election_ms = &p->metrics.election_ms;
	out->db_init_ms = &p->metrics.db_init_ms;
	out->startup_txns = &p->metrics.startup_txns;
	out->startup_txns_load_ms = &p->metrics.startup_txns_load_ms;
	out->startup_snap_load_ms = &p->metrics.startup_snap_load_ms;
	out->snapshot_ms = &p->metrics.snapshot_ms;
}
