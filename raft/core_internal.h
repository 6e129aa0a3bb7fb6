/*
 * core_internal.h — struct raft and the functions the core_*.c files share. Not for
 * hosts: they use core.h only.
 *
 *   core.c            construction, the public inputs, the ready record
 *   core_log.c        the in-memory log (one contiguous array, amortised O(1) append)
 *   core_elect.c      roles, elections (pre-vote, lease), message dispatch by term
 *   core_replicate.c  leader: progress, appends, commit, transfer, read index
 *   core_follow.c     follower: accepting appends, durable acknowledgements
 *   core_snapshot.c   follower: a snapshot in place of the log
 */
#ifndef RK_RAFT_CORE_INTERNAL_H
#define RK_RAFT_CORE_INTERNAL_H

#include "raft/core.h"

#ifdef RAFT_MUTATIONS
#define RAFT_MUTATED(r, bit) (((r)->cfg.mutations & (bit)) != 0)
#else
#define RAFT_MUTATED(r, bit) ((void)(r), false)
#endif

/* Entries after compacted_index, held in buf[head .. head+count). */
struct raft_log {
	struct raft_entry *buf;
	size_t cap;
	size_t head;
	size_t count;
	uint64_t compacted_index;
	uint64_t compacted_term;
};

struct raft_progress {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	enum raft_progress_state state;
	bool probe_sent;      /* PROBE: an append is out, wait for its answer */
	bool recent_active;   /* heard from since the last check-quorum */
	uint64_t read_round_acked;
	int inflight_head;
	int inflight_count;
	uint64_t inflight[RAFT_INFLIGHT_MAX]; /* last index of each append in flight */
};

struct raft_read_pending {
	uint64_t ctx;
	uint64_t index;
	uint64_t round;
	uint64_t from; /* self, or the follower that forwarded it */
};

struct raft {
	struct raft_config cfg;
	uint64_t voters[RAFT_VOTERS_MAX];
	int quorum;
	int self_slot;
	uint64_t rng;

	enum raft_role role;
	uint64_t term;
	uint64_t vote;
	uint64_t leader;
	uint64_t commit;
	uint64_t durable;
	uint64_t applied;
	uint64_t apply_handed; /* committed entries handed out up to here */
	struct raft_log log;

	int election_elapsed;
	int heartbeat_elapsed;
	int timeout_randomized;
	int transfer_elapsed;
	uint64_t transferee;
	uint32_t votes_granted; /* bit per slot */
	uint32_t votes_rejected;

	/* follower: verified to match the current leader's log up to here (this term) */
	uint64_t leader_matched;
	uint64_t acked; /* highest index acknowledged to the current leader */

	struct raft_progress prs[RAFT_VOTERS_MAX];

	uint64_t read_round;
	struct raft_read_pending *reads_pending; /* ring of reads_max */
	int reads_head;
	int reads_count;

	/* output of the steps since the last advance */
	uint64_t unstable_from; /* first entry not yet handed out to append */
	bool truncated;
	uint64_t truncate_after;
	struct raft_msg *msgs;
	int msg_count;
	int msg_cap;
	struct raft_entry *forward; /* follower's proposals until the PROP goes out */
	int forward_count;
	int forward_cap;
	struct raft_read_state *read_states; /* reads_max */
	int read_state_count;
	uint64_t needs_snapshot[RAFT_VOTERS_MAX];
	int needs_snapshot_count;
	struct raft_hard_state hs_persisted; /* as last handed out */
	uint64_t vote_hidden; /* RAFT_MUT_VOTE_NOT_PERSISTED: the vote the host never saw */
	uint64_t compact_to;
	uint64_t dropped_msgs;
	struct raft_ready ready;
};

/* core_log.c */
void raft_log_init(struct raft_log *log, uint64_t prev_index, uint64_t prev_term);
void raft_log_free(struct raft_log *log);
uint64_t raft_log_first(const struct raft_log *log);
uint64_t raft_log_last(const struct raft_log *log);
uint64_t raft_log_last_term(const struct raft_log *log);
uint64_t raft_log_term(const struct raft_log *log, uint64_t index);
struct raft_entry *raft_log_at(const struct raft_log *log, uint64_t index);
int raft_log_reserve(struct raft_log *log, size_t more);
void raft_log_push(struct raft_log *log, const struct raft_entry *e);
void raft_log_truncate_after(struct raft_log *log, uint64_t index);
void raft_log_compact(struct raft_log *log, uint64_t index);
uint64_t raft_log_find_conflict_by_term(const struct raft_log *log, uint64_t index, uint64_t term);

/* core.c */
struct raft_msg *raft_msg_push(struct raft *r, enum raft_msg_type type, uint64_t to);
uint64_t raft_random(struct raft *r);
void raft_hide_vote(struct raft *r);
void raft_note_truncate(struct raft *r, uint64_t after);

/* core_elect.c */
void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader);
void raft_campaign(struct raft *r, bool pre_vote, bool transfer);
void raft_tick_election(struct raft *r);
int raft_step_dispatch(struct raft *r, const struct raft_msg *m);
int raft_slot_of(const struct raft *r, uint64_t id);

/* core_replicate.c */
void raft_become_leader(struct raft *r);
void raft_tick_leader(struct raft *r);
void raft_bcast_append(struct raft *r, bool send_empty);
void raft_bcast_heartbeat(struct raft *r, uint64_t ctx);
bool raft_maybe_commit(struct raft *r);
void raft_commit_to(struct raft *r, uint64_t index);
void raft_leader_append_one(struct raft *r, void *owner, const uint8_t *data, uint32_t len,
			    enum raft_entry_type type);
void raft_leader_appended(struct raft *r);
void raft_leader_on_prop(struct raft *r, const struct raft_msg *m);
int raft_leader_read(struct raft *r, uint64_t from, uint64_t ctx);
void raft_reads_drop(struct raft *r);
void raft_transfer_check(struct raft *r, int slot);
void raft_on_append_resp(struct raft *r, const struct raft_msg *m);
void raft_on_heartbeat_resp(struct raft *r, const struct raft_msg *m);

/* core_follow.c */
void raft_on_append(struct raft *r, const struct raft_msg *m);
void raft_on_heartbeat(struct raft *r, const struct raft_msg *m);
void raft_follower_ack(struct raft *r, bool force);

#endif
