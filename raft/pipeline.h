/*
 * pipeline.h — the raft thread: the single place where writes are ordered, made
 * durable and applied. Today it is the commit path of a one-node cluster; the Raft
 * core (a pure state machine) slots in between "ordered" and "durable".
 */
#ifndef RK_PIPELINE_H
#define RK_PIPELINE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "raft/wal.h"

struct hub;
struct rk_config;
struct store;
struct raft_pipeline;

#define RAFT_STATS_PEERS_MAX 16 /* = RAFT_VOTERS_MAX (raft/core.h) */

/* A follower as the leader sees it (raft_stats.peers). */
struct raft_peer_stats {
	uint32_t id;
	bool connected;        /* both transport links up */
	uint64_t match_index;  /* the last entry known to be in its log */
	uint64_t lag_entries;  /* the leader's last index - match_index */
};

struct raft_stats {
	uint64_t batches;
	uint64_t entries;
	uint64_t batch_entries_max;
	uint64_t last_index;
	uint64_t first_index; /* first entry still in the log (0 = empty) */
	uint64_t first_term;  /* its term (0 = empty) */
	uint64_t core_entries; /* entries the consensus core holds in memory (pipe_retain_after) */
	uint64_t last_term;
	uint64_t writes_committed; /* entries applied since start */
	/* Leader: the size in bytes of the last, smallest and largest entry it appended
	 * (ZooKeeper's "Proposal sizes last/min/max"); -1 before the first. */
	int64_t proposal_size_last, proposal_size_min, proposal_size_max;
	/* consensus */
	int voter_count;     /* 1: standalone */
	bool leading;
	uint64_t leader_id;  /* 0: none known */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	int followers;        /* leader: the other voters */
	int synced_followers; /* leader: those being replicated to (not probing, not lost) */
	int learners;         /* leader: followers connected (ZooKeeper's learners) */
	int pending_syncs;    /* leader: read-index requests (syncs, ours and the
				 followers') waiting for a heartbeat round; per tick */
	uint64_t looking_count; /* clusters: times this server found itself with no leader */
	/* clusters: this server's proposals found lost (a later one of its own committed
	 * first: a deposed leader's tail, a forward dropped in an election); and of those,
	 * moves of a session to this server proposed again for its open connection */
	uint64_t proposals_lost_count;
	uint64_t session_moves_reclaimed_count;
	int64_t leading_since_us; /* monotonic (rk_now_us) start of this leadership; 0: not leading */
	int peer_count;       /* leader: the followers in peers[] */
	struct raft_peer_stats peers[RAFT_STATS_PEERS_MAX];
	struct wal_stats wal;
	/* snapshots (pipeline_snapshot.c) */
	bool snap_in_progress;
	uint64_t snap_count;            /* written since start */
	uint64_t snap_failed_count;
	uint64_t snap_skipped_count;    /* counts that ended while one was written */
	uint64_t snap_last_index;       /* newest snapshot on disk (0: none) */
	uint64_t snap_last_term;
	uint64_t snap_last_bytes;       /* its file size */
	uint64_t snap_last_nodes;
	uint64_t snap_last_duration_us; /* from the applier's begin to the directory fsync */
	uint64_t snap_last_pause_us;    /* the applier's stop to begin it */
	uint64_t snap_last_lock_hold_max_us; /* longest shard lock hold of its walk */
	uint64_t snap_last_copied_nodes;     /* nodes the applier copied before changing them */
	uint64_t snap_oldest_kept;      /* the log is kept from after this index */
	uint64_t log_segments_compacted; /* segment files deleted by log compaction */
	uint64_t snap_installed_count;  /* follower: leader's snapshots installed (InstallSnapshot) */
	uint64_t snap_sent_count;       /* leader: snapshots a follower received whole */
};

/* Histograms the raft thread records and any thread may read at any time (core/hist.h);
 * valid while the pipeline exists. For /metrics. */
struct raft_hists {
	const struct rk_hist *log_sync_us;       /* a log batch made durable (write + fdatasync) */
	const struct rk_hist *log_batch_entries; /* group commit: entries per batch */
	const struct rk_hist *log_batch_bytes;
	const struct rk_hist *election_ms;       /* clusters: no leader known -> a leader known */
	const struct rk_hist *db_init_ms;        /* start-up: recovery (hard state, log, core) */
	const struct rk_hist *startup_txns;      /* start-up: log entries replayed */
	const struct rk_hist *startup_txns_load_ms; /* start-up: reading and replaying the log */
	const struct rk_hist *startup_snap_load_ms; /* start-up: finding and loading the snapshot */
	const struct rk_hist *snapshot_ms;       /* snapshots written (ms each) */
};

/* cfg, store and hub outlive the pipeline; the thread stops when hub->stopping is set. */
int raft_pipeline_create(const struct rk_config *cfg, struct store *store, struct hub *hub,
			 struct raft_pipeline **out);
int raft_pipeline_start(struct raft_pipeline *p);
void raft_pipeline_join(struct raft_pipeline *p);
void raft_pipeline_destroy(struct raft_pipeline *p);
void raft_pipeline_stats(struct raft_pipeline *p, struct raft_stats *out);
/*
 * csnp: asks the raft thread for a snapshot at its next turn (any thread). Returns the
 * applied index now (the snapshot's index will be at least that), or -EAGAIN when
 * snapshots are off (the pipeline has no worker).
 */
int64_t raft_pipeline_request_snapshot(struct raft_pipeline *p);
void raft_pipeline_hists(struct raft_pipeline *p, struct raft_hists *out);

#endif
