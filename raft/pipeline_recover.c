/*
 * pipeline_recover.c — start-up: the newest valid snapshot is loaded, the write-ahead
 * log is opened and what follows the snapshot is replayed into the store, the hard
 * state is loaded, and the consensus core is rebuilt from what is durable.
 *
 * Thread: the main thread, before the raft thread starts.
 *
 * Restart rules
 *   0. The store starts from the newest valid snapshot (pipeline_snapshot.c; a damaged
 *      one is set aside, loudly, for the one before it), at index S and term T. Log
 *      records up to S are in it already and skipped. The log must go on from S: its
 *      first record at most S + 1 (with no snapshot: 1), or the server refuses to
 *      start (the entries in between are gone; nothing would tell they ever existed).
 *      A log that ends before S (only records the snapshot holds) is emptied, so it
 *      continues at S + 1.
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
 *   4. With followers the core also gets the last PIPE_RESTORE_HISTORY applied records
 *      (held, not applied again), so a restarted leader can still send a follower
 *      that is a little behind the entries it misses, instead of waiting for a
 *      snapshot to be sent; at most as many as leave half the core's window free.
 *   5. A tail longer than half the core's window (raft.logEntriesMax) widens the
 *      window for this run to twice the tail (pipe_core_create says why).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	uint64_t skipped;       /* records at or before the snapshot (rule 0) */
	uint64_t skip_upto;     /* the snapshot's index: records up to it are in the store */
	uint64_t apply_upto;    /* apply records up to this index; the rest go to the tail */
	uint64_t applied_index; /* and the term of that record */
	uint64_t applied_term;
	struct raft_entry *tail; /* owners malloc'ed; handed to the core */
	int tail_count, tail_cap;
	/* With followers, the last applied records too (rule 4), a ring of hist_cap; the
	 * record before its oldest is (hist_prev_index, hist_prev_term). */
	struct raft_entry *hist;
	int hist_head, hist_count, hist_cap;
	uint64_t hist_prev_index, hist_prev_term;
	/* sessions alive at the end of the log, to give them a fresh timeout */
	int64_t *sessions;
	int32_t *timeouts;
	size_t sessions_count, sessions_cap;
	/* the latest sequence number of this server's own proposals in the log */
	uint64_t own_seq_last;
	bool own_seen;
};

/* Notes the sequence number of one of this server's proposals (pipe_core_create);
 * reads the origin alone, every record passes here (applied ones are decoded later). */
static void replay_note_origin(struct replay_ctx *rc, const void *data, size_t size)
{
	uint64_t origin = entry_origin(data, size);
	if (origin == 0 || entry_origin_server(origin) != (rc->p->server_id & 0xffff))
		return;
	uint64_t seq = entry_origin_seq(origin);
	if (!rc->own_seen || entry_origin_seq_before(rc->own_seq_last, seq))
		rc->own_seq_last = seq;
	rc->own_seen = true;
}

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

/* Takes the oldest record out of the history ring; returns its buffer (the caller's
 * to free or reuse). */
static void *hist_drop_oldest(struct replay_ctx *rc)
{
	struct raft_entry *old = &rc->hist[rc->hist_head];
	rc->hist_prev_index = old->index;
	rc->hist_prev_term = old->term;
	void *owner = old->owner;
	old->owner = NULL;
	rc->hist_head = (rc->hist_head + 1) % rc->hist_cap;
	rc->hist_count--;
	return owner;
}

/* Rule 4: a copy of an applied record in the history ring (the oldest falls out). */
static int replay_remember(struct replay_ctx *rc, uint64_t term, uint64_t index, const void *data, size_t size)
{
	if (rc->hist_cap == 0)
		return 0;
	/* Once the ring is full, the record falling out lends its buffer (realloc keeps
	 * it in place when the size class fits: most records are alike). */
	void *reuse = NULL;
	int slot = (rc->hist_head + rc->hist_count) % rc->hist_cap;
	if (rc->hist_count == rc->hist_cap)
		reuse = hist_drop_oldest(rc);
	void *copy = NULL;
	if (size) {
		copy = realloc(reuse, size);
		if (!copy) {
			free(reuse);
			return -ENOMEM;
		}
	} else {
		free(reuse);
	}
	if (size)
		memcpy(copy, data, size);
	rc->hist[slot] = (struct raft_entry){
		.index = index,
		.term = term,
		.type = size ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_NOOP,
		.len = (uint32_t)size,
		.owner = copy,
		.data = copy,
	};
	rc->hist_count++;
	return 0;
}

static int replay_one(void *ctx, uint64_t term, uint64_t index, const void *data, size_t size)
{
	struct replay_ctx *rc = ctx;
	rc->count++;
	replay_note_origin(rc, data, size);
	if (index <= rc->skip_upto) {
		rc->skipped++;
		return 0; /* in the snapshot (rule 0) */
	}
	if (index > rc->apply_upto)
		return replay_keep(rc, term, index, data, size);
	rc->applied_index = index;
	rc->applied_term = term;
	int err = replay_remember(rc, term, index, data, size);
	if (err < 0)
		return err;
	if (size == 0)
		return 0; /* a no-op entry */
	struct rk_entry e;
	if (entry_decode(&e, data, size) != 0) {
		log_error("log: entry %llu does not decode (version or layout): refusing to start",
			  (unsigned long long)index);
		return -EPROTO;
	}
	switch (pipe_entry_effect(rc->p->store, &e)) {
	case PIPE_EFFECT_ALIVE:          /* liveness only: a restart touches every session */
	case PIPE_EFFECT_LEADER_REQUEST: /* a past request: nothing to replay */
	case PIPE_EFFECT_SESSION_MOVED:  /* refused when it was live: nothing applied */
		return 0;
	case PIPE_EFFECT_SESSION_MOVE:
		pipe_session_owner_update(rc->p->store, &e, ZK_OK);
		return 0;
	case PIPE_EFFECT_STORE:
		break;
	}
	struct store_auth auth;
	struct store_txn txn;
	pipe_txn_from_entry(&e, (int64_t)index, &auth, &txn);
	jute_writer_reset(&rc->out);
	int32_t aerr = store_apply(rc->p->store, &txn, &rc->out, NULL, NULL);
	pipe_session_owner_update(rc->p->store, &e, aerr);
	replay_session_track(rc, &e);
	return 0;
}

/*
 * raft.logSyncMethod=auto: one server flushes with pwrite + fdatasync on the raft
 * thread, the fastest and cheapest there (bench/RESULTS.md, "Machine"). In a cluster
 * that thread also carries the appends, acknowledgements, commits and forwarded
 * writes, which wait while it sits in fdatasync; an RWF_DSYNC write through io_uring
 * leaves it free and measured 1.13-1.15x the writes at 64 sessions on 3 servers
 * (bench/RESULTS.md, "Session 13").
 */
static enum wal_sync_mode pipe_sync_mode(const struct rk_config *cfg, bool cluster)
{
	if (!cfg->force_sync)
		return WAL_SYNC_NONE;
	switch (cfg->raft_log_sync_method) {
	case CONFIG_SYNC_AUTO: return cluster ? WAL_SYNC_WRITE_DSYNC : WAL_SYNC_SYSCALL;
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

static void pipe_wal_config(const struct rk_config *cfg, bool cluster, struct wal_config *wc, char *why,
			    size_t why_size)
{
	*wc = (struct wal_config){
		.dir = cfg->data_log_dir,
		.segment_size_bytes = (uint64_t)cfg->log_prealloc_kb * 1024,
		.batch_bytes_max = (uint32_t)cfg->raft_batch_bytes_max,
		.batch_entries_max = (uint32_t)cfg->raft_batch_entries_max,
		.sync_mode = pipe_sync_mode(cfg, cluster),
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
	pipe_wal_config(cfg, p->voter_count > 1, &wc, why, sizeof why);
	wc.skip_upto = rc->skip_upto; /* whole segments the snapshot holds are not read */
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
	/* Proposal sequence numbers start from the wall clock (the monotonic one restarts
	 * with the machine), so they keep growing across restarts: an old proposal of
	 * ours committed late never matches a new one, and is told apart from this run's
	 * (pipe_local_for). 48 bits of microseconds wrap every 8.9 years (next on
	 * 2032-06-08): they compare as serial numbers (entry_origin_seq_before), so a
	 * run alive across the wrap, or a restart across it, still orders them. A clock
	 * set back across a restart (a VM's clock before NTP corrects it) would make a
	 * late-committed entry of the earlier run look like this run's, and answer this
	 * run's proposals and syncs before it as overtaken: the run starts after every
	 * proposal of ours in the log. One forwarded to the leader and not yet back in
	 * our log is not seen; it needs the clock set back by more than the restart
	 * took, at a moment when such a forward was in flight. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t wall_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
	p->origin_seq = entry_origin_seq_start(wall_us, rc->own_seen, rc->own_seq_last);
	if (p->origin_seq != (wall_us & RK_ENTRY_ORIGIN_SEQ_MASK))
		log_warn("the clock is behind this server's last proposal in its log (by %llu us): "
			 "numbering proposals on from there",
			 (unsigned long long)((p->origin_seq - wall_us) & RK_ENTRY_ORIGIN_SEQ_MASK));
	p->origin_seq_start = p->origin_seq;
	struct raft_config rcfg;
	raft_config_default(&rcfg, id, p->voters, p->voter_count);
	const struct rk_config *cfg = p->cfg;
	rcfg.heartbeat_ticks = cfg->raft_heartbeat_interval_ms / cfg->raft_tick_ms;
	rcfg.election_ticks = cfg->raft_election_timeout_ms / cfg->raft_tick_ms; /* > heartbeat: config.c */
	rcfg.seed = (uint64_t)rk_now_us() ^ (id << 48);
	rcfg.log_entries_max = cfg->raft_log_entries_max;
	/*
	 * Rule 5: the tail (durable records after the commit index last saved) can be
	 * longer than the core's window when the server stopped before it saved a commit
	 * index for a while (PIPE_COMMIT_SAVE_MS) under load, or with a small
	 * raft.logEntriesMax. A core cannot take it, nor, full, any new entry, not even a
	 * new leader's first (every server of a cluster stopped at once would then elect
	 * a leader that commits nothing). So the window of this run grows to twice the
	 * tail; the entries are in memory already, and they are dropped once applied.
	 */
	if (rc->tail_count > rcfg.log_entries_max / 2) {
		if (rc->tail_count > RAFT_LOG_ENTRIES_MAX / 2) {
			log_error("raft: %d log entries after the last commit index saved: more than the core can "
				  "hold (%d)", rc->tail_count, RAFT_LOG_ENTRIES_MAX / 2);
			return -E2BIG;
		}
		log_warn("raft: %d log entries after the last commit index saved, more than half of "
			 "raft.logEntriesMax (%d): the core keeps up to %d until the next start",
			 rc->tail_count, rcfg.log_entries_max, 2 * rc->tail_count);
		rcfg.log_entries_max = 2 * rc->tail_count;
	}
	/* Rule 4: the history ring, oldest first, then the tail. The history is a
	 * courtesy: only as much of it as leaves half the window free. */
	while (rc->hist_count > 0 && rc->hist_count + rc->tail_count > rcfg.log_entries_max / 2)
		free(hist_drop_oldest(rc));
	int n = rc->hist_count + rc->tail_count;
	struct raft_entry *entries = n ? malloc((size_t)n * sizeof *entries) : NULL;
	if (n && !entries)
		return -ENOMEM;
	for (int i = 0; i < rc->hist_count; i++)
		entries[i] = rc->hist[(rc->hist_head + i) % rc->hist_cap];
	if (rc->tail_count)
		memcpy(entries + rc->hist_count, rc->tail, (size_t)rc->tail_count * sizeof *entries);
	bool hist = rc->hist_count > 0;
	struct raft_restore restore = {
		.hard_state = { .term = hs->term, .vote = hs->vote, .commit = rc->applied_index },
		.prev_index = hist ? rc->hist_prev_index : rc->applied_index,
		.prev_term = hist ? rc->hist_prev_term : rc->applied_term,
		.applied_index = rc->applied_index,
		.entries = entries,
		.entry_count = n,
	};
	if (hs->commit > restore.hard_state.commit)
		restore.hard_state.commit = hs->commit; /* some of the tail: the core knows */
	int err = raft_new(&p->core, &rcfg, &restore);
	free(entries);
	if (err < 0) {
		log_error("raft: cannot rebuild the consensus core (term %llu, applied %llu, %d more entries): %s",
			  (unsigned long long)hs->term, (unsigned long long)rc->applied_index, rc->tail_count,
			  strerror(-err));
		return err;
	}
	rc->tail_count = 0; /* the owners are the core's now */
	rc->hist_count = 0;
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

/* Rule 0's check, once the log is open: it goes on from the snapshot. */
static int pipe_check_log_follows(struct raft_pipeline *p, uint64_t snap_index)
{
	uint64_t first = wal_first_index(p->wal), last = wal_last_index(p->wal);
	if (first > snap_index + 1) {
		if (snap_index)
			log_error("log in %s/log starts at index %llu but the newest usable snapshot is at %llu: entries "
				  "%llu..%llu are missing; refusing to start (restore the missing log segments or the "
				  "snapshot that goes with this log)",
				  p->cfg->data_log_dir, (unsigned long long)first, (unsigned long long)snap_index,
				  (unsigned long long)snap_index + 1, (unsigned long long)first - 1);
		else
			log_error("log in %s/log starts at index %llu and no usable snapshot is in %s/snapshot: entries "
				  "1..%llu are missing; refusing to start",
				  p->cfg->data_log_dir, (unsigned long long)first, p->cfg->data_dir,
				  (unsigned long long)first - 1);
		return -EUCLEAN;
	}
	if (last != 0 && last < snap_index) {
		/* Every record is in the snapshot: the log restarts after it. */
		int rc = wal_truncate_suffix(p->wal, 0);
		if (rc < 0) {
			log_error("log in %s/log cannot be emptied: %s", p->cfg->data_log_dir, strerror(-rc));
			return rc;
		}
		log_info("log: its records (up to %llu) are all in the snapshot at %llu: it continues after the snapshot",
			 (unsigned long long)last, (unsigned long long)snap_index);
	}
	return 0;
}

/* Rule 2's check, once the log is open: a term never goes back. */
static int pipe_check_hard_state(struct raft_pipeline *p, struct hardstate *hs, bool found, uint64_t snap_term)
{
	uint64_t log_term = wal_last_term(p->wal);
	if (log_term < snap_term)
		log_term = snap_term;
	if (!found) {
		hs->term = log_term;
		return 0;
	}
	if (hs->term < log_term) {
		log_error("raft: hard state term %llu is below the log's (or snapshot's) last term %llu (%s/%s): "
			  "refusing to start",
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
	for (int i = 0; i < rc->hist_count; i++)
		free(rc->hist[(rc->hist_head + i) % rc->hist_cap].owner);
	free(rc->hist);
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
	uint64_t snap_index = 0, snap_term = 0;
	int err = pipe_load_hard_state(p, &hs, &found);
	int64_t snap_t0 = rk_now_ms();
	if (!err)
		err = pipe_snap_recover(p, &snap_index, &snap_term);
	int64_t snap_ms = rk_now_ms() - snap_t0;
	rc.skip_upto = rc.applied_index = snap_index;
	rc.applied_term = snap_term;
	rc.hist_prev_index = snap_index;
	rc.hist_prev_term = snap_term;
	if (!err && p->voter_count > 1) {
		rc.hist = calloc(PIPE_RESTORE_HISTORY, sizeof *rc.hist);
		rc.hist_cap = rc.hist ? PIPE_RESTORE_HISTORY : 0;
	}
	int64_t t1 = rk_now_ms();
	if (!err && p->voter_count > 1)
		rc.apply_upto = hs.commit;
	p->commit_saved = hs.commit;
	int64_t log_t0 = rk_now_ms();
	if (!err)
		err = pipe_open_log(p, &rc);
	int64_t log_ms = rk_now_ms() - log_t0;
	if (!err)
		err = pipe_check_log_follows(p, snap_index);
	if (!err)
		err = pipe_check_hard_state(p, &hs, found, snap_term);
	if (!err)
		err = pipe_core_create(p, &hs, &rc);
	if (!err)
		err = pipe_snap_start(p);
	if (err < 0) {
		replay_ctx_free(&rc);
		return err;
	}
	p->stats.voter_count = p->voter_count;
	p->stats.proposal_size_last = p->stats.proposal_size_min = p->stats.proposal_size_max = -1;
	p->stats.applied_index = p->stats.commit_index = p->applied_index;
	p->stats.last_index = wal_last_index(p->wal);
	pipe_stats_log_start(p);
	p->stats.last_term = wal_last_term(p->wal);
	wal_stats_get(p->wal, &p->stats.wal);
	int64_t now = rk_now_ms();
	for (size_t i = 0; i < rc.sessions_count; i++)
		store_session_touch(p->store, rc.sessions[i], now, rc.timeouts[i]);
	log_info("log: recovered %llu entries (%llu in the snapshot at %llu, applied to %llu, last index %llu, term %llu, "
		 "%zu sessions created in the log) in %lld ms (snapshot %lld ms, log %lld ms), %s, %s",
		 (unsigned long long)rc.count, (unsigned long long)rc.skipped, (unsigned long long)snap_index,
		 (unsigned long long)p->applied_index, (unsigned long long)wal_last_index(p->wal),
		 (unsigned long long)hs.term, rc.sessions_count, (long long)(now - t0), (long long)(t1 - t0),
		 (long long)(now - t1), wal_direct_io(p->wal) ? "O_DIRECT" : "buffered (O_DIRECT refused by the filesystem)",
		 pipe_sync_mode_name(wal_sync_mode_get(p->wal)));
	pipe_metrics_recovered(p, now - t0, snap_ms, log_ms, rc.count);
	replay_ctx_free(&rc);
	return 0;
}
