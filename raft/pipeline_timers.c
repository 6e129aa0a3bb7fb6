/*
 * pipeline_timers.c — the raft thread's timed work and the entries it proposes of its
 * own: the core's tick, session expiry (leader), the container and TTL sweep (leader),
 * the sessions-alive reports (followers), the periodic commit save, the serving check,
 * and the statistics 4lw reads.
 *
 * Thread: the raft thread only (pipe_timers runs once per loop turn, before the turn).
 */
#include <assert.h>
#include <string.h>

#include "core/clock.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/zk_proto.h"
#include "raft/pipeline_impl.h"
#include "store/store.h"

/* ---- proposals of the server's own ---------------------------------------------- */

struct rk_msg *pipe_own_entry(int64_t session_id, int32_t opcode, const void *body, size_t body_len)
{
	struct jute_writer w;
	jute_writer_init(&w, sizeof(struct rk_msg) + RK_ENTRY_HEADER_BYTES + body_len + 64);
	uint8_t *hdr = jute_writer_reserve(&w, sizeof(struct rk_msg));
	if (!hdr) {
		jute_writer_free(&w);
		return NULL;
	}
	memset(hdr, 0, sizeof(struct rk_msg));
	size_t entry_start = w.len;
	entry_encode(&w, session_id, opcode, false, NULL, 0, body, body_len);
	if (!jute_writer_ok(&w)) {
		jute_writer_free(&w);
		return NULL;
	}
	entry_set_server_own(w.buf + entry_start);
	struct rk_msg *m = (struct rk_msg *)w.buf;
	m->kind = RK_MSG_PROPOSAL;
	m->conn_id = RK_CONN_ID_NONE;
	m->session_id = session_id;
	m->len = (uint32_t)(w.len - sizeof *m);
	return m;
}

/*
 * True when this server's oldest pending proposal has waited longer than
 * PIPE_LOST_PROBE_US: a forward the leader or the transport dropped (a full window, a
 * full link queue) is never retried, and only a later own entry being applied shows it
 * lost (pipe_local_for). The next sessions-alive report goes out even when empty, as
 * that later entry, so its client gets CONNECTIONLOSS instead of waiting for ever.
 */
static bool pipe_oldest_proposal_stale(struct raft_pipeline *p)
{
	if (!p->local_count)
		return false;
	const struct pipe_local *l = &p->local[p->local_head];
	return l->origin != 0 && !l->answered && l->start_us &&
	       rk_now_us() - (int64_t)l->start_us > PIPE_LOST_PROBE_US;
}

/*
 * A follower reports the sessions its clients kept alive since its last report, as
 * a log entry (RK_OP_SESSIONS_ALIVE), about three times per minimum session timeout,
 * so the leader never expires a session that is alive on another server.
 */
static void pipe_report_sessions_alive(struct raft_pipeline *p, int64_t now)
{
	int64_t *ids = p->alive_ids;
	int64_t since = p->alive_since_ms;
	p->alive_since_ms = now;
	size_t n = store_sessions_local_since(p->store, since, ids, PIPE_ALIVE_IDS_MAX);
	if ((n == 0 && !pipe_oldest_proposal_stale(p)) || p->batch_count == PIPE_BATCH_ENTRIES_MAX)
		return;
	struct jute_writer body;
	jute_writer_init(&body, 4 + n * 8);
	jute_write_int(&body, (int32_t)n);
	for (size_t i = 0; i < n; i++)
		jute_write_long(&body, ids[i]);
	struct rk_msg *m = jute_writer_ok(&body) ? pipe_own_entry(0, RK_OP_SESSIONS_ALIVE, body.buf, body.len) : NULL;
	jute_writer_free(&body);
	if (m)
		p->batch[p->batch_count++] = m;
}

static void pipe_expire_one(void *ctx, int64_t session_id)
{
	struct raft_pipeline *p = ctx;
	for (size_t i = 0; i < p->expiring_count; i++)
		if (p->expiring[i] == session_id)
			return;
	if (p->expiring_count == PIPE_EXPIRING_MAX || p->batch_count == PIPE_BATCH_ENTRIES_MAX)
		return; /* next check picks it up */
	struct rk_msg *m = pipe_own_entry(session_id, ZK_OP_CLOSE_SESSION, NULL, 0);
	assert(m);
	p->expiring[p->expiring_count++] = session_id;
	p->batch[p->batch_count++] = m;
}

/*
 * The container and TTL sweep (ZooKeeper's ContainerManager): each candidate the store
 * lists becomes a deleteContainer entry; the store re-checks it when it applies, so a
 * node that gained a child meanwhile survives.
 */
static void pipe_reap_one(void *ctx, const char *path, size_t path_len)
{
	struct raft_pipeline *p = ctx;
	if (p->batch_count == PIPE_BATCH_ENTRIES_MAX)
		return; /* the next sweep finds it again */
	struct jute_writer body;
	jute_writer_init(&body, path_len + 8);
	jute_write_string(&body, path, (int32_t)path_len);
	struct rk_msg *m = jute_writer_ok(&body) ? pipe_own_entry(0, ZK_OP_DELETE_CONTAINER, body.buf, body.len) : NULL;
	jute_writer_free(&body);
	if (m)
		p->batch[p->batch_count++] = m;
}

/*
 * A cluster member with no leader for two election timeouts stops serving clients, as
 * a ZooKeeper server that goes LOOKING does: every client connection closes and new
 * ones are refused (their clients go to a server in the majority), and the status
 * words answer "not currently serving". A normal election takes less than that.
 */
static void pipe_serving_check(struct raft_pipeline *p)
{
	if (p->voter_count == 1)
		return;
	int64_t leaderless_ms = p->metrics.leaderless_since_us ?
		(rk_now_us() - p->metrics.leaderless_since_us) / 1000 : 0;
	bool serving = leaderless_ms < 2 * (int64_t)p->cfg->raft_election_timeout_ms;
	if (serving == atomic_load_explicit(&p->hub->serving, memory_order_relaxed))
		return;
	atomic_store_explicit(&p->hub->serving, serving, memory_order_relaxed);
	if (serving) {
		log_info("raft: a leader is known again: serving clients");
		return;
	}
	log_warn("raft: no leader for %lld ms: closing every client connection, serving none until one is elected",
		 (long long)leaderless_ms);
	pipe_broadcast_session_gone(p, 0, RK_CONN_ID_NONE, 0);
}

void pipe_timers(struct raft_pipeline *p)
{
	int64_t now = rk_now_ms();
	if (now >= p->next_tick_ms) {
		p->next_tick_ms = now + p->cfg->raft_tick_ms;
		raft_tick(p->core);
		pipe_peers_tick(p);
		pipe_sync_tick(p, now);
	}
	pipe_lead_tick(p, now);
	pipe_serving_check(p);
	if (now >= p->next_expiry_ms) {
		p->next_expiry_ms = now + PIPE_EXPIRY_CHECK_MS;
		if (p->role == RAFT_LEADER) /* only the leader expires sessions */
			store_sessions_expired(p->store, now, p->lead_since_ms, pipe_expire_one, p);
		struct wal_stats ws;
		wal_stats_get(p->wal, &ws); /* sorts its samples: on the tick, not per batch */
		struct raft_status st;
		raft_status(p->core, &st);
		int synced = 0;
		for (int i = 0; i < st.voter_count; i++)
			synced += st.peers[i].id != st.id && st.peers[i].state == RAFT_PROGRESS_REPLICATE;
		pthread_mutex_lock(&p->stats_lock);
		p->stats.followers = st.role == RAFT_LEADER ? st.voter_count - 1 : 0;
		p->stats.synced_followers = st.role == RAFT_LEADER ? synced : 0;
		p->stats.pending_syncs = st.role == RAFT_LEADER ? st.reads_pending : 0;
		p->stats.core_entries = st.last_index - st.first_index + 1;
		pipe_metrics_peers(p, &st);
		p->stats.wal = ws;
		pthread_mutex_unlock(&p->stats_lock);
	}
	if (p->voter_count > 1 && now >= p->next_commit_save_ms) {
		p->next_commit_save_ms = now + PIPE_COMMIT_SAVE_MS;
		pipe_save_commit(p);
	}
	if (p->voter_count > 1 && now >= p->next_alive_ms) {
		int32_t every = p->cfg->session_timeout_ms_min / 3;
		p->next_alive_ms = now + (every > 100 ? every : 100);
		if (p->role != RAFT_LEADER) /* the leader's own are touched where they live */
			pipe_report_sessions_alive(p, now);
	}
	if (now >= p->next_reap_ms) {
		p->next_reap_ms = now + p->cfg->container_check_interval_ms;
		if (p->role == RAFT_LEADER)
			store_reap_candidates(p->store, now, pipe_reap_one, p, PIPE_REAP_PER_SWEEP_MAX);
	}
}
