/*
 * pipeline_impl.h — the raft thread's state, shared by the files of its loop:
 *
 *   pipeline.c          the loop: collect proposals from the hub, hand them to the
 *                       consensus core, carry out its ready records (hard state, log
 *                       writes and syncs), report durability back
 *   pipeline_apply.c    committed entries → the store → replies and notifications
 *                       to the workers, through the hub; this server's pending
 *                       proposals (the local FIFO)
 *   pipeline_timers.c   timed work: ticks, expiry, sweeps, sessions-alive reports,
 *                       the serving check; the entries the server proposes itself
 *   pipeline_lead.c     leadership transfer: rqld, ydld, raft.preferredLeader
 *   pipeline_read.c     sync: read index from the leader, answered in the local FIFO
 *   pipeline_recover.c  start-up: load the newest snapshot, open the log and replay
 *                       what follows it, load the hard state, rebuild the consensus
 *                       core from what is durable
 *   pipeline_snapshot.c snapshots every snapCount entries and on csnp, written by
 *                       the snapshot worker; log compaction after each
 *   pipeline_metrics.c  elections, leadership, followers and recovery for /metrics
 *   pipeline_install.c  InstallSnapshot: the leader streams its newest snapshot to a
 *                       follower the core cannot catch up from memory; the follower
 *                       loads it and swaps it in for its store and log
 *
 * Everything here is owned by the raft thread (after raft_pipeline_create), except
 * `stats` (under stats_lock) and `writes_committed` (atomic), read by 4lw, and the
 * histograms (`metrics`, the log's), read by /metrics without a lock (core/hist.h).
 */
#ifndef RK_PIPELINE_IMPL_H
#define RK_PIPELINE_IMPL_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/hist.h"
#include "core/jute.h"
#include "core/msg.h"
#include "raft/core.h"
#include "raft/entry.h"
#include "raft/pipeline.h"
#include "raft/transport.h"
#include "raft/wal.h"

#define PIPE_BATCH_ENTRIES_MAX 4096
#define PIPE_EXPIRY_CHECK_MS 100
#define PIPE_EXPIRING_MAX 4096
/* deleteContainer entries one sweep may propose (ZooKeeper caps its sweep too). */
#define PIPE_REAP_PER_SWEEP_MAX 1000
/* A repeated store warning is logged at most this often. */
#define PIPE_WARN_REPEAT_MS 1000
/* Batches on the disk at once: raft.logInflightMax's upper bound. */
#define PIPE_SUBMITTED_MAX 8
/* With more than one voter the hard state's commit is saved at most this often, so a
 * restart applies the log up to it and hands the core only a short tail. */
#define PIPE_COMMIT_SAVE_MS 1000
/* Sessions in one RK_OP_SESSIONS_ALIVE entry (8 bytes each). */
#define PIPE_ALIVE_IDS_MAX 8192
/* A sync with no read index is asked for again this often, and its client given up
 * on after PIPE_SYNC_GIVE_UP_MS (pipeline_read.c). */
#define PIPE_SYNC_RETRY_MS 250
#define PIPE_SYNC_GIVE_UP_MS 4000
/* A follower's proposal unanswered this long is probed for loss (pipeline.c). */
#define PIPE_LOST_PROBE_US (2 * 1000 * 1000)
/* Connections whose client was told CONNECTIONLOSS for a lost proposal: what they
 * sent after it (still in the hub's queues or the batch) is refused, never proposed,
 * so a later write of a connection is never applied after an earlier one was lost.
 * Remembered this long (the worker closes the connection on the reply, well before). */
#define PIPE_FAILED_CONNS 4096
#define PIPE_FAILED_CONN_MS 30000
/* Applied log records a restarted server hands its core with followers
 * (pipeline_recover.c, rule 4), for a follower a little behind. */
#define PIPE_RESTORE_HISTORY 65536
/* Applied entries a server that is not leading keeps in its core (pipe_retain_after):
 * about 4 MB, a fraction of a second of writes at full load. */
#define PIPE_FOLLOWER_HISTORY 16384
/* How often a leader checks whether raft.preferredLeader is ready to take over. */
#define PIPE_PREFERRED_CHECK_MS 1000
/* This server's proposals not yet answered: bounds what one collect may take. */
#define PIPE_LOCAL_MAX (2 * PIPE_BATCH_ENTRIES_MAX)

/* The log's CQEs carry UD_PIPE_WAL | batch tag (low WAL_USER_DATA_TAG_BITS bits); the
 * peer transport's carry UD_PIPE_PEER | its low 32 bits. */
#define UD_PIPE_WAKE UINT64_C(1)
#define UD_PIPE_WAL (UINT64_C(1) << 8)
#define UD_PIPE_PEER (UINT64_C(1) << 40)

/*
 * A proposal of this server's, from the moment it is handed to the core (or refused)
 * until its client is answered: what the reply needs once the entry is applied. The
 * entry itself belongs to the core from raft_propose on.
 */
struct pipe_local {
	uint64_t origin;   /* the entry's origin (raft/entry.h); 0: refused before the log */
	uint64_t conn_id;  /* RK_CONN_ID_NONE: the server's own (expiry, container sweep) */
	int64_t session_id;
	uint64_t start_us;
	int32_t xid;
	int32_t opcode;
	int32_t err;       /* refused: the answer */
	bool answered;     /* its client was told CONNECTIONLOSS (the leader changed) */
	bool close_after;  /* refused: the connection closes once it is answered */
	/* A sync (origin 0, pipeline_read.c): answered once this server has applied the
	 * read index a leader confirmed, or once a later proposal of ours is applied. */
	struct rk_msg *sync; /* the request (its body is the reply's); NULL: not a sync */
	uint64_t read_ctx;   /* the core's read-index context */
	uint64_t read_index; /* valid when read_known */
	bool read_known;
	int64_t read_asked_ms; /* last raft_read_index call; 0: to ask (again) */
	int64_t sync_since_ms; /* when the sync arrived */
};

/* An entry the core handed out that the log could not stage yet (batch full, disk
 * full): copied, because the core's ready record is valid only until its next call. */
struct pipe_unstaged {
	struct pipe_unstaged *next;
	uint64_t index;
	uint64_t term;
	uint32_t len;
	uint8_t data[];
};

/* Snapshots (pipeline_snapshot.c); the raft thread's, but `requested` (any thread). */
struct pipe_snap {
	struct snap_worker *worker; /* NULL: not started */
	char *dir;                  /* <dataDir>/snapshot */
	bool in_progress;           /* an image is with the worker */
	uint64_t last_index;        /* newest snapshot on disk */
	uint64_t last_term;
	uint64_t oldest_kept;       /* the oldest kept: the log is kept after it */
	uint64_t next_at;           /* take one once applied reaches this */
	uint64_t rng;
	atomic_bool requested;      /* csnp */
};

/* The raft thread's own histograms and the state behind them (pipeline_metrics.c).
 * Written by the raft thread (by main during recovery, before the thread starts). */
struct pipe_metrics {
	struct rk_hist election_ms;
	struct rk_hist db_init_ms;
	struct rk_hist startup_txns;
	struct rk_hist startup_txns_load_ms;
	struct rk_hist startup_snap_load_ms; /* start-up: finding and loading the snapshot */
	struct rk_hist snapshot_ms;          /* a snapshot written, begin to directory fsync */
	int64_t leaderless_since_us; /* monotonic; 0: a leader is known (also the serving
				      rule's clock, pipeline_timers.c) */
};

/* InstallSnapshot (pipeline_install.c). */
#define PIPE_INSTALL_CHUNK_BYTES (256u << 10)
#define PIPE_INSTALL_WINDOW_CHUNKS 4    /* chunks sent and not acknowledged, per follower */
#define PIPE_INSTALL_STALL_MS 3000      /* no acknowledgement for this long: resend */
#define PIPE_INSTALL_RETRY_MS 10000     /* a follower still behind this long after: again */
#define PIPE_INSTALL_CHECK_MS 100
#define PIPE_INSTALL_ABANDON_MS 30000   /* follower: no chunk this long: drop what came */
#define PIPE_INSTALL_ACK_GAP 1          /* SNAPSHOT_ACK log_index: a chunk was missing */

/* Leader: a snapshot file on its way to one follower. */
struct pipe_install_send {
	uint64_t peer;        /* 0: this slot is free */
	int fd;
	uint64_t index, term, size;
	uint64_t sent, acked; /* bytes handed to the transport, acknowledged in order */
	int64_t progress_ms;  /* when acked last moved (or the transfer began) */
	int64_t done_ms;      /* everything acknowledged: the follower installs it */
	int send_err;         /* the transport's last refusal (-errno), for the log */
	uint64_t bytes_out;   /* chunk bytes handed to the transport, resends included */
};

/* Follower: a snapshot coming from the leader, then installed. */
enum pipe_install_recv_state {
	PIPE_RECV_IDLE = 0,
	PIPE_RECV_RECEIVING,  /* chunks go to tmp_path */
	PIPE_RECV_LOADING,    /* the worker adopts and loads it into `fresh` */
	PIPE_RECV_LOADED,     /* swapped in at the next turn the log is idle */
};

struct pipe_install_recv {
	enum pipe_install_recv_state state; /* LOADING..LOADED: under `lock` */
	uint64_t from, index, term, size, got;
	int64_t last_ms;      /* the last chunk */
	int fd;
	char tmp_path[4200];
	pthread_mutex_t lock;
	int err;              /* the worker's, with LOADED */
	char why[256];
	struct store *fresh;  /* the loaded store, with LOADED and err 0 */
	uint64_t nodes;
	uint64_t load_ms;
};

struct pipe_install {
	struct pipe_install_send send[RAFT_VOTERS_MAX];
	struct pipe_install_recv recv;
	uint8_t *chunk; /* PIPE_INSTALL_CHUNK_BYTES: one read buffer for the sends */
	int64_t next_check_ms;
	uint64_t sent_count, installed_count;
	bool initialized; /* pipe_install_init ran: fds and the lock are valid */
};

struct raft_pipeline {
	const struct rk_config *cfg;
	struct store *store;
	struct hub *hub;
	pthread_t thread;
	struct io_uring ring;
	bool ring_ready;
	struct raft *core;
	uint64_t voters[RAFT_VOTERS_MAX];
	int voter_count;
	/* proposals drained from the hub, not yet handed to the core */
	struct rk_msg *batch[PIPE_BATCH_ENTRIES_MAX];
	size_t batch_count;
	/* this server's proposals in log order (a FIFO ring) */
	struct pipe_local local[PIPE_LOCAL_MAX];
	size_t local_head;
	size_t local_count;
	/* entries handed out by the core and not yet staged in the log, in index order */
	struct pipe_unstaged *unstaged_head, *unstaged_tail;
	/* A conflicting suffix to drop from the log after this index (UINT64_MAX: none),
	 * once nothing is staged or in flight; entries wait in `unstaged` until then. */
	uint64_t truncate_after;
	enum raft_role role; /* as of the last ready record */
	uint64_t leader;     /* as of the last ready record; 0: none known */
	bool forward_failed;     /* pipeline_peers.c: a PROP was dropped in this ready */
	uint64_t watched_leader; /* pipeline_peers.c: whose links watched_links are */
	unsigned watched_links;  /* bit k: link k to watched_leader was up */
	int64_t next_alive_ms;  /* next report of the sessions our clients kept alive */
	int64_t next_commit_save_ms; /* with followers: the commit index is saved this often */
	int64_t lead_since_ms;       /* rk_now_ms() when this leadership began (session expiry) */
	uint64_t commit_saved;       /* the commit in the hard state file */
	int64_t alive_since_ms; /* what the last report covered */
	int64_t alive_ids[PIPE_ALIVE_IDS_MAX]; /* the report being built */
	/* Messages for peers go here (the transport, the cluster issue); NULL: one voter,
	 * there is never any. */
	void (*send_msg)(void *ctx, const struct raft_msg *m);
	void *send_ctx;
	struct transport *transport; /* NULL with one voter */
	bool disk_full; /* the log could not prepare a segment: refuse new proposals */
	bool core_refused; /* this turn the core took no proposal (no leader, transfer, full) */
	uint32_t entry_bytes_max; /* the largest entry one log batch holds */
	int64_t durable_index; /* last index known on disk */
	/* The last (index, term) of each batch on the disk, oldest first: a durability
	 * report names the term that was written, which the core's log may no longer
	 * hold at that index once a conflicting suffix was replaced (raft_durable then
	 * ignores it, as it must). */
	struct { uint64_t index, term; } submitted[PIPE_SUBMITTED_MAX];
	unsigned submitted_head, submitted_count;
	uint32_t server_id;
	uint64_t origin_seq; /* the last proposal's sequence number (entry origins) */
	/* origin_seq when this run began: an entry of ours whose sequence number is not
	 * after it (entry_origin_seq_before) was proposed by an earlier run
	 * (pipe_local_for ignores it) */
	uint64_t origin_seq_start;
	uint64_t applied_index;
	uint64_t read_ctx_next;  /* pipeline_read.c: the next sync's read context */
	size_t syncs_pending;    /* syncs in the local FIFO not answered yet */
	uint32_t lead_to;        /* pipeline_lead.c: rqld from this server: transfer to it */
	bool lead_yield;         /* ydld: transfer to the best follower */
	int64_t next_preferred_ms;
	struct { uint64_t conn_id; int64_t until_ms; } failed_conns[PIPE_FAILED_CONNS];
	int64_t failed_conns_until_ms; /* the table's latest expiry: past it, all expired */
	bool failed_conns_used;        /* some slot was written since the table was cleared */
	struct jute_writer reply;
	int64_t next_expiry_ms;
	int64_t next_reap_ms;
	int64_t next_tick_ms;
	int64_t expiring[PIPE_EXPIRING_MAX];
	size_t expiring_count;
	struct raft_stats stats;
	pthread_mutex_t stats_lock;
	_Atomic uint64_t writes_committed; /* entries applied (mntr's rk_writes_committed) */
	struct wal *wal;
	struct pipe_snap snap;
	struct pipe_metrics metrics;
	struct pipe_install install;
	char warn_last[512]; /* pipe_store_warn's rate limit */
	int64_t warn_last_ms;
	uint64_t warn_repeats;
};

/* pipeline_apply.c */
void pipe_send(struct raft_pipeline *p, uint32_t worker_index, struct rk_msg *m);
void pipe_broadcast_session_gone(struct raft_pipeline *p, int64_t session_id, uint64_t except_conn,
				 int32_t expired);
/* Our move of the session was lost: its connection here, if any, announces itself again. */
void pipe_broadcast_session_reclaim(struct raft_pipeline *p, int64_t session_id);
/* Applies one committed entry and answers its client if it is ours. */
void pipe_apply_committed(struct raft_pipeline *p, const struct raft_entry *e);
/*
 * The leader changed (or this server stopped leading): a proposal not applied yet may
 * have been lost with the old leader's log or in a forward it dropped, or may still
 * commit. Its client is told CONNECTIONLOSS and its connection closes, as a ZooKeeper
 * follower does when it loses its leader; if it commits after all, it is applied and
 * answers no one.
 */
void pipe_fail_pending(struct raft_pipeline *p);
/* Answers the refused proposals at the head of the local FIFO (their turn has come). */
void pipe_answer_refused(struct raft_pipeline *p);
/* Records a proposal handed to the core (origin > 0) or refused (origin 0, err). */
void pipe_local_push(struct raft_pipeline *p, const struct rk_msg *m, uint64_t origin, int32_t err);
void pipe_store_warn(void *ctx, const char *text);
/* Session ownership, replicated (the live applier and the replay both use these): a
 * client's request proposed through a server that does not own its session is not
 * applied (SESSIONMOVED); createSession and RK_OP_SESSION_MOVE set the owner. */
bool pipe_session_moved(struct store *s, const struct rk_entry *e);
void pipe_session_owner_update(struct store *s, const struct rk_entry *e, int32_t err);
/* What a committed entry does to the replicated state (one rule, live and replayed). */
enum pipe_effect {
	PIPE_EFFECT_ALIVE,          /* sessions kept alive elsewhere: liveness, no state */
	PIPE_EFFECT_LEADER_REQUEST, /* rqld: a leadership request, no state */
	PIPE_EFFECT_SESSION_MOVE,   /* the session's owner becomes the entry's server */
	PIPE_EFFECT_SESSION_MOVED,  /* through a server that no longer owns the session:
				       SESSIONMOVED, nothing applied */
	PIPE_EFFECT_STORE,          /* a ZooKeeper transaction: store_apply, then the owner
				       rule (pipe_session_owner_update) with its result */
};
enum pipe_effect pipe_entry_effect(struct store *s, const struct rk_entry *e);
/* The store's view of a decoded entry at index zxid (views into the entry's bytes). */
void pipe_txn_from_entry(const struct rk_entry *e, int64_t zxid, struct store_auth *auth,
			 struct store_txn *txn);

/* pipeline_read.c */
/* Records a sync in the local FIFO (it takes m) and asks the core for a read index. */
void pipe_sync_push(struct raft_pipeline *p, struct rk_msg *m);
/* The core's answers to read-index requests (a ready record's reads). */
void pipe_sync_reads(struct raft_pipeline *p, const struct raft_read_state *reads, int n);
/* Asks again for syncs that have no read index (no leader, a refusal, a lost
 * request) and gives up on those pending too long. Each tick. */
void pipe_sync_tick(struct raft_pipeline *p, int64_t now);
/* The sync at the FIFO's head may be answered: true when it was (and popped). With
 * `overtaken` a later proposal of ours was applied, which satisfies it. */
bool pipe_sync_try_answer(struct raft_pipeline *p, struct pipe_local *l, bool overtaken);
/* Sends p->reply (started with pipe_reply_start) for a local proposal. */
void pipe_reply_start(struct raft_pipeline *p);
void pipe_route_reply(struct raft_pipeline *p, const struct pipe_local *l, int32_t err, int64_t zxid,
		      bool close_after);
void pipe_answer_lost(struct raft_pipeline *p, struct pipe_local *l);
/* true when conn_id's client was told CONNECTIONLOSS for a lost proposal lately */
bool pipe_conn_failed(struct raft_pipeline *p, uint64_t conn_id);
void pipe_local_pop(struct raft_pipeline *p);

/* pipeline.c */
void pipe_save_commit(struct raft_pipeline *p);
/* pipeline_timers.c: ticks, expiry, sweeps, reports, the serving check; each turn */
void pipe_timers(struct raft_pipeline *p);

/* pipeline_lead.c */
void pipe_lead_on_msg(struct raft_pipeline *p, const struct rk_msg *m);
void pipe_lead_on_request_entry(struct raft_pipeline *p, uint32_t server);
void pipe_lead_tick(struct raft_pipeline *p, int64_t now);
/* pipeline_timers.c: an entry of the server's own (conn_id none), ready for the batch */
struct rk_msg *pipe_own_entry(int64_t session_id, int32_t opcode, const void *body, size_t body_len);

/* pipeline_peers.c: with more than one voter (nothing otherwise) */
int pipe_peers_start(struct raft_pipeline *p);
void pipe_peers_stop(struct raft_pipeline *p);
bool pipe_peers_on_cqe(struct raft_pipeline *p, const struct io_uring_cqe *cqe);
void pipe_peers_tick(struct raft_pipeline *p);
void pipe_peers_flush(struct raft_pipeline *p);
/* After a ready record: a dropped forward makes the core forget its leader (see
 * pipe_peer_send). */
void pipe_peers_after_ready(struct raft_pipeline *p);

/* Where the log starts now, index and term, into p->stats (stats_lock held): after an
 * append, a compaction, a recovery, an installed snapshot. */
static inline void pipe_stats_log_start(struct raft_pipeline *p)
{
	p->stats.first_index = wal_first_index(p->wal);
	p->stats.first_term = wal_first_term(p->wal);
}

/* pipeline_metrics.c: for /metrics, on the raft thread */
/* Before p->stats takes the ready record's leader and role (stats_lock held): counts
 * the times without a leader, times the elections, notes when leading began. */
void pipe_metrics_on_leader(struct raft_pipeline *p, uint64_t leader, bool leading);
/* The followers as the leader sees them, into p->stats (stats_lock held). */
void pipe_metrics_peers(struct raft_pipeline *p, const struct raft_status *st);
/* Recovery took total_ms, of which log_ms reading and replaying `entries` entries. */
void pipe_metrics_recovered(struct raft_pipeline *p, int64_t total_ms, int64_t snap_ms, int64_t log_ms,
			    uint64_t entries);

/* pipeline_recover.c */
/* Loads the newest snapshot, opens the log, replays what follows the snapshot into
 * the store, loads the hard state, creates the core and starts the snapshot worker.
 * 0 or -errno (logged). */
int pipe_recover(struct raft_pipeline *p);

/* pipeline_snapshot.c */
/* Start-up (main thread): loads the newest valid snapshot into the (fresh) store;
 * *index and *term are 0 when there is none. 0 or -errno (logged). */
int pipe_snap_recover(struct raft_pipeline *p, uint64_t *index, uint64_t *term);
/* Starts the worker once recovery is done. 0 or -errno (logged). */
int pipe_snap_start(struct raft_pipeline *p);
/* Every turn of the raft thread: collects a finished snapshot (then compacts the
 * log), and begins one when due or asked for. */
void pipe_snap_tick(struct raft_pipeline *p);
/* Stops the worker (abandoning a snapshot in progress); after the raft thread. */
void pipe_snap_stop(struct raft_pipeline *p);

/* pipeline_install.c */
int pipe_install_init(struct raft_pipeline *p);
void pipe_install_free(struct raft_pipeline *p);
/* A peer's SNAPSHOT_CHUNK or SNAPSHOT_ACK (msg_codec.h); the core never sees them. */
void pipe_install_on_msg(struct raft_pipeline *p, const struct raft_msg *m);
/* Every turn (from pipe_snap_tick): the leader's sends, the follower's install. */
void pipe_install_tick(struct raft_pipeline *p);
/* A follower receiving or installing a snapshot takes none of its own meanwhile. */
bool pipe_install_busy(struct raft_pipeline *p);

#endif
