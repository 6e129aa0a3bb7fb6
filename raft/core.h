/*
 * core.h — the Raft consensus core: a pure state machine (no I/O, no threads, no clock,
 * no global state). Inputs go in through calls; everything the host must do comes out
 * in one ready record. The host (the raft thread, or the simulator) drives it:
 *
 *     for (;;) {
 *         raft_step / raft_tick / raft_propose / raft_durable / raft_applied /
 *         raft_transfer / raft_read_index            (any number of inputs)
 *         rd = raft_ready(r);
 *         1. if rd->truncate: drop log entries after rd->truncate_after
 *         2. append rd->entries to the log (write now, fsync whenever: report it later
 *            with raft_durable(index, term))
 *         3. if rd->hard_state_changed: store rd->hard_state; if rd->must_sync it must
 *            be durable BEFORE any of rd->msgs is sent (a vote or a term depends on it)
 *         4. send rd->msgs (any order, any loss: the core retries)
 *         5. apply rd->committed in order; answer rd->reads; rd->needs_snapshot: peers
 *            that need entries the core no longer holds: the host sends them a
 *            snapshot, and the follower's host calls raft_snapshot_install
 *         raft_advance(r);
 *     }
 *
 * OWNERSHIP
 *   - Proposals: raft_propose() takes ownership of every proposal's `owner` block when
 *     it returns 0 (on an error the caller keeps them). `data`/`len` point inside it. The
 *     core frees `owner` with free() when the entry leaves its memory (compaction,
 *     truncation of a conflicting suffix, raft_free, or, on a follower, after the
 *     forwarding message went out in raft_advance). owner may be NULL for len 0.
 *   - Restored entries (struct raft_restore): same rule, taken by raft_new on success.
 *   - Entries arriving in messages (APPEND, PROP) are copied: the message and its
 *     entries stay the caller's and need to live only for the raft_step call.
 *   - Everything reachable from a ready record (messages, their entries, entries to
 *     append, committed entries) points into the core's memory and is valid until the
 *     next call into the core other than raft_ready(). Copy what must live longer.
 *
 * DURABILITY CONTRACT
 *   raft_durable(index, term): the host's log holds, durably, every entry up to index
 *   as the core handed them out (truncations applied in order), and the entry at index
 *   has this term. A report for an index no longer in the core's log with that term (a
 *   write that finished after a truncation) is ignored; by log matching an equal
 *   (index, term) means an identical prefix, so such a report is always safe.
 *   Followers acknowledge an index only once it is durable; the leader counts itself
 *   toward the majority only up to its durable index. hard_state.commit is at most
 *   the durable index, so a restart never finds a commit past its log.
 *
 * RESTART CONTRACT (struct raft_restore)
 *   The host gives back its durable hard state and the entries of its durable log
 *   after prev_index (all of them: prev_index <= hard_state.commit, and prev_term is the
 *   term of the entry at prev_index, 0 for an empty log). applied_index (>= prev_index)
 *   is how far the host's state machine already is; committed entries after it come
 *   out again in ready->committed.
 *
 * MEMORY
 *   The core keeps entries after its compaction point in one array. The host lets it
 *   drop entries up to an applied index with raft_compact(); besides, once more than
 *   log_entries_max / 2 entries are held the core drops applied entries by itself (at
 *   raft_advance), and it never holds more than log_entries_max (a proposal then gets
 *   -ENOBUFS, a follower drops the append). A
 *   follower that needs a dropped entry is put in NEEDS_SNAPSHOT and named once in
 *   ready->needs_snapshot. Nothing is allocated per message once arrays have grown.
 */
#ifndef RK_RAFT_CORE_H
#define RK_RAFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_VOTERS_MAX 16
#define RAFT_INFLIGHT_MAX 256           /* max_inflight_msgs upper bound */
#define RAFT_MSG_ENTRIES_MAX 65536      /* max_msg_entries upper bound */
#define RAFT_PROPOSE_ENTRIES_MAX 65536  /* entries in one raft_propose / one PROP message */
#define RAFT_FORWARD_ENTRIES_MAX 262144 /* entries a follower forwards within one ready */
#define RAFT_LOG_ENTRIES_MAX (1 << 24)  /* log_entries_max upper bound */
#define RAFT_READS_MAX 65536            /* reads_max upper bound (pending read-index) */
#define RAFT_ELECTION_TICKS_MAX 100000
#define RAFT_APPLY_ENTRIES_MAX 65536    /* apply_entries_max upper bound */

enum raft_role {
	RAFT_FOLLOWER = 1,
	RAFT_PRE_CANDIDATE,
	RAFT_CANDIDATE,
	RAFT_LEADER,
};

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 1,
	RAFT_ENTRY_NOOP, /* the leader's first entry of its term; len 0 */
};

enum raft_progress_state {
	RAFT_PROGRESS_PROBE = 1,      /* one append at a time until a match is found */
	RAFT_PROGRESS_REPLICATE,      /* pipelined, at most max_inflight_msgs appends */
	RAFT_PROGRESS_NEEDS_SNAPSHOT, /* needs entries the core dropped; nothing is sent */
};

enum raft_msg_type {
	RAFT_MSG_APPEND = 1,     /* log_index/log_term: previous entry; entries; commit */
	RAFT_MSG_APPEND_RESP,    /* ok: index = match; reject: log_index = rejected prev,
				    index/reject_term = conflict hint */
	RAFT_MSG_VOTE,           /* log_index/log_term: candidate's last; transfer flag */
	RAFT_MSG_VOTE_RESP,      /* reject */
	RAFT_MSG_PRE_VOTE,       /* term = the term the candidate would campaign for */
	RAFT_MSG_PRE_VOTE_RESP,  /* reject; term = the request's term when granted */
	RAFT_MSG_HEARTBEAT,      /* commit = min(commit, follower's match); ctx = read round */
	RAFT_MSG_HEARTBEAT_RESP, /* ctx echoed */
	RAFT_MSG_TIMEOUT_NOW,    /* leadership transfer: campaign now */
	RAFT_MSG_PROP,           /* term 0: follower forwards proposals to the leader */
	RAFT_MSG_READ_INDEX,     /* term 0: follower asks the leader for a read index (ctx) */
	RAFT_MSG_READ_INDEX_RESP,/* term 0: ctx, index; reject when the leader cannot serve */
};

/* Classic bugs the simulator must catch. Honoured only in a core built with
 * -DRAFT_MUTATIONS (the raft-sim-mut executable); the normal build ignores the field. */
enum raft_mutation {
	RAFT_MUT_VOTE_NO_LOG_CHECK = 1 << 0,   /* grant votes without the up-to-date check */
	RAFT_MUT_COMMIT_OLD_TERM = 1 << 1,     /* commit a previous term's entry by counting */
	RAFT_MUT_ACK_BEFORE_DURABLE = 1 << 2,  /* ack (and count self) before durable */
	RAFT_MUT_VOTE_NOT_PERSISTED = 1 << 3,  /* answer a vote before the vote is persisted */
	RAFT_MUT_ACCEPT_STALE_APPEND = 1 << 4, /* accept an AppendEntries of a stale term */
};

struct raft_config {
	uint64_t id;             /* non-zero, one of voters */
	const uint64_t *voters;  /* copied by raft_new */
	int voter_count;         /* 1..RAFT_VOTERS_MAX */
	int election_ticks;      /* E: timeouts are drawn from [E, 2E) */
	int heartbeat_ticks;     /* < election_ticks */
	uint64_t seed;           /* the core's PRNG (election timeouts) */
	bool pre_vote;
	bool check_quorum;
	int max_inflight_msgs;   /* 1..RAFT_INFLIGHT_MAX appends in flight per follower */
	int max_msg_entries;     /* 1..RAFT_MSG_ENTRIES_MAX entries per append */
	size_t max_msg_bytes;    /* payload bytes per append (at least one entry is sent) */
	int log_entries_max;     /* entries held at most; applied ones go beyond half of it */
	int reads_max;           /* pending read-index requests on a leader */
	int apply_entries_max;   /* committed entries handed out per ready */
	uint32_t mutations;      /* enum raft_mutation bits; see above */
};

struct raft_hard_state {
	uint64_t term;
	uint64_t vote;   /* 0: none */
	uint64_t commit; /* <= the durable index */
};

struct raft_entry {
	uint64_t index;
	uint64_t term;
	enum raft_entry_type type;
	uint32_t len;
	void *owner;         /* freed with free() by the core (see OWNERSHIP); may be NULL */
	const uint8_t *data; /* len bytes, inside owner */
};

struct raft_proposal {
	void *owner;
	const uint8_t *data;
	uint32_t len;
};

struct raft_msg {
	enum raft_msg_type type;
	bool reject;
	bool transfer; /* VOTE: campaign caused by TIMEOUT_NOW, overrides the lease */
	int entry_count;
	uint64_t from;
	uint64_t to;
	uint64_t term;
	uint64_t log_index;
	uint64_t log_term;
	uint64_t commit;
	uint64_t index;
	uint64_t reject_term;
	uint64_t ctx;
	const struct raft_entry *entries;
};

struct raft_read_state {
	uint64_t ctx;
	uint64_t index; /* read once the local applied index reaches it */
	bool refused;   /* the leader could not serve it (retry) */
};

struct raft_ready {
	/* soft state, for the host's information */
	enum raft_role role;
	uint64_t leader; /* 0: unknown */
	uint64_t term;
	/* 1. log changes */
	bool truncate;
	uint64_t truncate_after;
	const struct raft_entry *entries;
	int entry_count;
	/* 2. hard state */
	struct raft_hard_state hard_state;
	bool hard_state_changed;
	bool must_sync; /* term or vote changed: durable before msgs are sent */
	/* 3. messages */
	const struct raft_msg *msgs;
	int msg_count;
	/* 4. state machine */
	const struct raft_entry *committed;
	int committed_count;
	const struct raft_read_state *reads;
	int read_count;
	const uint64_t *needs_snapshot;
	int needs_snapshot_count;
};

struct raft_restore {
	struct raft_hard_state hard_state;
	uint64_t prev_index;
	uint64_t prev_term;
	uint64_t applied_index;
	struct raft_entry *entries; /* index prev_index+1.. ; owners taken on success */
	int entry_count;
};

struct raft_peer_status {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	enum raft_progress_state state;
};

struct raft_status {
	uint64_t id;
	enum raft_role role;
	uint64_t leader;
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
	uint64_t durable;
	uint64_t applied;
	uint64_t first_index; /* first entry held in memory */
	uint64_t last_index;
	uint64_t last_term;
	uint64_t transferee;
	uint64_t dropped_msgs; /* messages not queued for want of memory */
	int reads_pending;     /* leader: read-index requests waiting for their round */
	int voter_count;
	struct raft_peer_status peers[RAFT_VOTERS_MAX];
};

struct raft;

/* Fills cfg with defaults for a node `id` among `voters` (the array must outlive raft_new). */
void raft_config_default(struct raft_config *cfg, uint64_t id, const uint64_t *voters, int voter_count);

/* 0, -EINVAL (bad config or restore), -ENOMEM. restore may be NULL (empty node). A node
 * that is the only voter becomes leader at once. */
int raft_new(struct raft **out, const struct raft_config *cfg, const struct raft_restore *restore);
void raft_free(struct raft *r);

/* A message from a peer. 0, or -EINVAL for a malformed one (dropped). */
int raft_step(struct raft *r, const struct raft_msg *m);
void raft_tick(struct raft *r);
/* Leader: appends; follower: forwards to the leader. 0; -EAGAIN no leader known;
 * -EBUSY leadership transfer in progress; -ENOBUFS log or forward window full;
 * -EINVAL n out of range; -ENOMEM. */
int raft_propose(struct raft *r, const struct raft_proposal *proposals, int n);
void raft_durable(struct raft *r, uint64_t index, uint64_t term);
/* The host applied every committed entry up to index (<= those handed out). */
void raft_applied(struct raft *r, uint64_t index);
/* Lets the core drop entries up to index (<= applied). 0 or -EINVAL. */
int raft_compact(struct raft *r, uint64_t index);
/* Leader only: 0, -EINVAL (not a voter, self), -EAGAIN (not leader). */
int raft_transfer(struct raft *r, uint64_t target);
/*
 * Follower: the host has installed the leader's snapshot of the state at `index`
 * (entry term `term`) in place of its state machine, and emptied its log (the next
 * entry it stages is index + 1). The core drops its whole log (anything after index
 * here is uncommitted), stands at index for commit, applied and durable, and
 * acknowledges index to the leader in the next ready record. 0; -EALREADY when index
 * is not past the commit index (nothing changes); -EAGAIN when not a follower with a
 * known leader, or term is 0 or newer than ours (the host keeps its state; the leader
 * sends the snapshot again). core_snapshot.c.
 */
int raft_snapshot_install(struct raft *r, uint64_t index, uint64_t term);
/* The host saw its connection to peer `id` break (reset, closed, refused). A follower
 * whose leader that is forgets it and campaigns within one election timeout, instead
 * of waiting out its lease (core.c). Anything else: no effect. */
void raft_peer_unreachable(struct raft *r, uint64_t id);
/* Leader or follower: 0, -EAGAIN (no leader, or the leader has not committed in its
 * term), -ENOBUFS (reads_max pending). The answer comes as a read state. */
int raft_read_index(struct raft *r, uint64_t ctx);

const struct raft_ready *raft_ready(struct raft *r);
void raft_advance(struct raft *r);

void raft_status(const struct raft *r, struct raft_status *out);
/* The term of the entry at index (0 when unknown), and the entry if held in memory. */
uint64_t raft_term_at(const struct raft *r, uint64_t index);
const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index);

const char *raft_msg_type_name(enum raft_msg_type type);

/* APPEND and PROP carry entries (the bulk); every other message type carries none. */
static inline bool raft_msg_carries_entries(enum raft_msg_type type)
{
	switch (type) {
	case RAFT_MSG_APPEND:
	case RAFT_MSG_PROP:
		return true;
	case RAFT_MSG_APPEND_RESP:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE:
	case RAFT_MSG_PRE_VOTE_RESP:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_HEARTBEAT_RESP:
	case RAFT_MSG_TIMEOUT_NOW:
	case RAFT_MSG_READ_INDEX:
	case RAFT_MSG_READ_INDEX_RESP:
		return false;
	}
	return false;
}
const char *raft_role_name(enum raft_role role);

#endif
