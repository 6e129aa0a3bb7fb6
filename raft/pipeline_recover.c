/*
 * pipeline_recover.c — start-up: the write-ahead log is opened and replayed into the
 * store, the hard state is loaded, and the consensus core is rebuilt from what is
 * durable.
 *
 * Thread: the main thread, before the raft thread starts.
 *
 * Restart rules
 *   1. Records are applied to the store in index order up to what is known committed:
 *      with one voter an entry is committed the moment it is durable, so the whole
 *      durable log; with more voters, up to the hard state's commit index. The records
 *      after that are handed to the core (struct raft_restore), which commits them
 *      when a leader says so. A no-op record (length 0, a leader's first entry of its
 *      term) changes nothing.
 *   2. The hard state (raft/hardstate.h) gives the term and vote; a log written before
 *      the file existed (or a new server) starts from the log's last term, vote none.
 *      A hard state whose term is below the log's last term cannot come from a crash
 *      (the term is made durable before any entry of it is written) and is refused.
 *   3. Sessions alive at the end of the log get a fresh timeout (ZooKeeper does the
 *      same after a restart).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/zk_proto.h"
#include "raft/hardstate.h"
#include "raft/pipeline_impl.h"
#include "store/store.h"

struct replay_ctx {
	struct raft_pipeline *p;
	struct jute_writer out;
	uint64_t count;
	uint64_t apply_upto;    /* apply records up to this index; the rest go to the tail */
	uint64_t applied_index; /* and the term of that record */
	uint64_t applied_term;
	struct raft_entry *tail; /* owners malloc'ed; handed to the core */
	int tail_count, tail_cap;
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

/* A record past the commit: kept for the core (rule 1). */
static int replay_keep(struct replay_ctx *rc, uint64_t term, uint64_t index, const void *data, size_t size)
{
	if (rc->tail_count == RAFT_LOG_ENTRIES_MAX)
		return -E2BIG;
	if (rc->tail_count == rc->tail_cap) {
		int cap = rc->tail_cap ? rc->tail_cap * 2 : 64;
		struct raft_entry *t = realloc(rc->tail, (size_t)cap * sizeof *t);
		if (!t)
			return -ENOMEM;
		rc->tail = t;
		rc->tail_cap = cap;
	}
	void *copy = size ? malloc(size) : NULL;
	if (size && !copy)
		return -ENOMEM;
	if (size)
		memcpy(copy, data, size);
	rc->tail[rc->tail_count++] = (struct raft_entry){
		.index = index,
		.term = term,
		.type = size ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_NOOP,
		.len = (uint32_t)size,
		.owner = copy,
		.data = copy,
	};
	return 0;
}

static int replay_one(void *ctx, uint64_t term, uint64_t index, const void *data, size_t size)
{
	struct replay_ctx *rc = ctx;
	rc->count++;
	if (index > rc->apply_upto)
		return replay_keep(rc, term, index, data, size);
	rc->applied_index = index;
	rc->applied_term = term;
	if (size == 0)
		return 0; /* a no-op entry */
	struct rk_entry e;
	if (entry_decode(&e, data, size) != 0) {
		log_error("log: entry %llu does not decode (version or layout): refusing to start",
			  (unsigned long long)index);
		return -EPROTO;
	}
	struct store_auth auth = { e.ids, e.ids_count, e.super };
	struct store_txn txn = {
		.zxid = (int64_t)index,
		.time_ms = e.time_ms,
		.session_id = e.session_id,
		.opcode = e.opcode,
		.body = e.body,
		.body_len = e.body_len,
		.auth = &auth,
	};
	jute_writer_reset(&rc->out);
	store_apply(rc->p->store, &txn, &rc->out, NULL, NULL);
	replay_session_track(rc, &e);
	return 0;
}

static enum wal_sync_mode pipe_sync_mode(const struct rk_config *cfg)
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

static const char *pipe_sync_mode_name(enum wal_sync_mode mode)
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

static void pipe_wal_config(const struct rk_config *cfg, struct wal_config *wc, char *why, size_t why_size)
{
	*wc = (struct wal_config){
		.dir = cfg->data_log_dir,
		.segment_size_bytes = (uint64_t)cfg->log_prealloc_kb * 1024,
		.batch_bytes_max = (uint32_t)cfg->raft_batch_bytes_max,
		.batch_entries_max = (uint32_t)cfg->raft_batch_entries_max,
		.sync_mode = pipe_sync_mode(cfg),
		.inflight_max = (uint32_t)cfg->raft_log_inflight_max,
		.error_text = why,
		.error_text_size = why_size,
	};
	/* One entry is a whole client packet plus headers: a batch must hold the largest. */
	uint32_t entry_bytes_max = (uint32_t)cfg->packet_bytes_max + RK_ENTRY_HEADER_BYTES + 64 * RK_ENTRY_IDS_MAX + 4096;
	if (wc->batch_bytes_max < entry_bytes_max)
		wc->batch_bytes_max = entry_bytes_max;
	/* A batch never spans segments, so a segment must hold the largest batch. */
	uint64_t segment_min = ((uint64_t)wc->batch_bytes_max * 2 + 4095) & ~4095ULL;
	if (wc->segment_size_bytes < segment_min) {
		log_warn("preAllocSize %d KiB is below the %llu KiB a log segment needs for the largest batch: using %llu KiB",
			 cfg->log_prealloc_kb, (unsigned long long)(segment_min >> 10),
			 (unsigned long long)(segment_min >> 10));
		wc->segment_size_bytes = segment_min;
	}
	if (wc->batch_entries_max > PIPE_BATCH_ENTRIES_MAX)
		wc->batch_entries_max = PIPE_BATCH_ENTRIES_MAX;
}

static int pipe_open_log(struct raft_pipeline *p, struct replay_ctx *rc)
{
	const struct rk_config *cfg = p->cfg;
	char why[512] = "";
	struct wal_config wc;
	pipe_wal_config(cfg, &wc, why, sizeof why);
	p->entry_bytes_max = wc.batch_bytes_max - WAL_RECORD_HEADER_SIZE;
	if (!cfg->force_sync)
		log_warn("forceSync=no: acknowledged writes can be LOST on a crash or power loss (tests only)");
	jute_writer_init(&rc->out, (size_t)cfg->packet_bytes_max + 1024);
	int err = wal_open(&p->wal, &wc, replay_one, rc);
	jute_writer_free(&rc->out);
	if (err < 0)
		log_error("log in %s/log cannot be opened: %s%s%s", wc.dir, strerror(-err), why[0] ? ": " : "", why);
	return err;
}

/*
 * The voters: the participants of the server.N lines (observers do not vote and are
 * not served yet), or this server alone when there are none (standalone).
 */
static void pipe_voters(struct raft_pipeline *p)
{
	const struct rk_config *cfg = p->cfg;
	uint64_t id = cfg->server_id > 0 ? (uint64_t)cfg->server_id : 1;
	p->server_id = (uint32_t)id;
	p->voter_count = 0;
	for (uint32_t i = 0; i < cfg->server_count && p->voter_count < RAFT_VOTERS_MAX; i++)
		if (cfg->servers[i].role == CONFIG_ROLE_PARTICIPANT)
			p->voters[p->voter_count++] = cfg->servers[i].id;
	if (p->voter_count == 0)
		p->voters[p->voter_count++] = id;
}

/* The core, rebuilt from the hard state, what was applied, and the tail (rule 1). */
static int pipe_core_create(struct raft_pipeline *p, const struct hardstate *hs, struct replay_ctx *rc)
{
	uint64_t id = p->server_id;
	/* Proposal sequence numbers start from the clock, so they keep growing across
	 * restarts: an old proposal of ours committed late never matches a new one. */
	p->origin_seq = (uint64_t)rk_now_us() & ((1ULL << RK_ENTRY_ORIGIN_SEQ_BITS) - 1);
	struct raft_config rcfg;
	raft_config_default(&rcfg, id, p->voters, p->voter_count);
	const struct rk_config *cfg = p->cfg;
	rcfg.heartbeat_ticks = cfg->raft_heartbeat_interval_ms / cfg->raft_tick_ms;
	rcfg.election_ticks = cfg->raft_election_timeout_ms / cfg->raft_tick_ms; /* > heartbeat: config.c */
	rcfg.seed = (uint64_t)rk_now_us() ^ (id << 48);
	struct raft_restore restore = {
		.hard_state = { .term = hs->term, .vote = hs->vote, .commit = rc->applied_index },
		.prev_index = rc->applied_index,
		.prev_term = rc->applied_term,
		.applied_index = rc->applied_index,
		.entries = rc->tail,
		.entry_count = rc->tail_count,
	};
	if (hs->commit > restore.hard_state.commit)
		restore.hard_state.commit = hs->commit; /* some of the tail: the core knows */
	int err = raft_new(&p->core, &rcfg, &restore);
	if (err < 0) {
		log_error("raft: cannot rebuild the consensus core (term %llu, applied %llu, %d more entries): %s",
			  (unsigned long long)hs->term, (unsigned long long)rc->applied_index, rc->tail_count,
			  strerror(-err));
		return err;
	}
	rc->tail_count = 0; /* the owners are the core's now */
	p->applied_index = rc->applied_index;
	p->durable_index = (int64_t)wal_last_index(p->wal);
	return 0;
}

/* The hard state (rule 2); -ENOENT is a new server or a log from before the file. */
static int pipe_load_hard_state(struct raft_pipeline *p, struct hardstate *hs, bool *found)
{
	char why[512] = "";
	int rc = hardstate_load(p->cfg->data_dir, hs, why, sizeof why);
	*found = rc == 0;
	if (rc == -ENOENT) {
		*hs = (struct hardstate){ 0 };
		return 0;
	}
	if (rc < 0)
		log_error("raft: hard state in %s cannot be read: %s%s%s", p->cfg->data_dir, strerror(-rc),
			  why[0] ? ": " : "", why);
	return rc;
}

/* Rule 2's check, once the log is open: a term never goes back. */
static int pipe_check_hard_state(struct raft_pipeline *p, struct hardstate *hs, bool found)
{
	uint64_t log_term = wal_last_term(p->wal);
	if (!found) {
		hs->term = log_term;
		return 0;
	}
	if (hs->term < log_term) {
		log_error("raft: hard state term %llu is below the log's last term %llu (%s/%s): refusing to start",
			  (unsigned long long)hs->term, (unsigned long long)log_term, p->cfg->data_dir, HARDSTATE_FILE);
		return -EUCLEAN;
	}
	return 0;
}

static void replay_ctx_free(struct replay_ctx *rc)
{
	for (int i = 0; i < rc->tail_count; i++)
		free(rc->tail[i].owner);
	free(rc->tail);
	free(rc->sessions);
	free(rc->timeouts);
}

int pipe_recover(struct raft_pipeline *p)
{
	pipe_voters(p);
	struct replay_ctx rc = { .p = p, .apply_upto = UINT64_MAX };
	int64_t t0 = rk_now_ms();
	struct hardstate hs;
	bool found;
	int err = pipe_load_hard_state(p, &hs, &found);
	if (!err && p->voter_count > 1)
		rc.apply_upto = hs.commit;
	p->commit_saved = hs.commit;
	int64_t log_t0 = rk_now_ms();
	if (!err)
		err = pipe_open_log(p, &rc);
	int64_t log_ms = rk_now_ms() - log_t0;
	if (!err)
		err = pipe_check_hard_state(p, &hs, found);
	if (!err)
		err = pipe_core_create(p, &hs, &rc);
	if (err < 0) {
		replay_ctx_free(&rc);
		return err;
	}
	p->stats.voter_count = p->voter_count;
	p->stats.applied_index = p->stats.commit_index = p->applied_index;
	p->stats.last_index = wal_last_index(p->wal);
	p->stats.first_index = wal_first_index(p->wal);
	p->stats.last_term = wal_last_term(p->wal);
	wal_stats_get(p->wal, &p->stats.wal);
	int64_t now = rk_now_ms();
	for (size_t i = 0; i < rc.sessions_count; i++)
		store_session_touch(p->store, rc.sessions[i], now, rc.timeouts[i]);
	log_info("log: recovered %llu entries (applied to %llu, last index %llu, term %llu, %zu live sessions) in "
		 "%lld ms, %s, %s",
		 (unsigned long long)rc.count, (unsigned long long)p->applied_index,
		 (unsigned long long)wal_last_index(p->wal), (unsigned long long)hs.term, rc.sessions_count,
		 (long long)(now - t0), wal_direct_io(p->wal) ? "O_DIRECT" : "buffered (O_DIRECT refused by the filesystem)",
		 pipe_sync_mode_name(wal_sync_mode_get(p->wal)));
	pipe_metrics_recovered(p, now - t0, log_ms, rc.count);
	replay_ctx_free(&rc);
	return 0;
}
