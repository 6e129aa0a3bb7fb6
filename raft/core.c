/*
 * core.c — construction, the public inputs and the ready record of the Raft core (see
 * core.h for the host's loop and the ownership and durability contracts; core_elect.c
 * and core_replicate.c for the protocol).
 *
 * LIFECYCLE OF A ROLE
 *
 *                 timeout (pre_vote)            majority of pre-votes
 *     FOLLOWER ─────────────────────► PRE_CANDIDATE ───────────────► CANDIDATE
 *        ▲  │  timeout (no pre_vote) or TIMEOUT_NOW                    │   │
 *        │  └──────────────────────────────────────────────────────────┘   │ majority
 *        │  higher term, a leader of this term, majority rejected,        ▼
 *        └──────────── check-quorum failure ◄──────────────────────── LEADER
 *   A node that is the only voter goes FOLLOWER → CANDIDATE → LEADER inside raft_new.
 *
 * INVARIANTS
 *   1. commit never goes down and is <= the last index; hard_state.commit handed out
 *      is min(commit, durable) so it is never past the durable log.
 *   2. durable <= last index; a truncation lowers it to the truncation point.
 *   3. unstable_from - 1 entries have been handed out for appending; a truncation of
 *      handed-out entries is reported once in ready->truncate_after (the lowest).
 *   4. Messages queued since the last advance hold indexes, not pointers (entries of an
 *      APPEND are log_index+1.., of a PROP the next ones of the forward pool); pointers
 *      are resolved in raft_ready, after which no input may run until raft_advance.
 *   5. Entries are dropped (compaction) only in raft_advance, and only up to applied,
 *      so no pointer handed out or pending is freed under the host.
 *   6. term and vote reach the host (must_sync) before any message of the same ready,
 *      which is what a vote or a term bump needs; no message is ever sent earlier.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core_internal.h"

#define RAFT_MSGS_MAX (1 << 20) /* messages queued within one ready */
#define RAFT_MSGS_CAP_MIN 16

void raft_config_default(struct raft_config *cfg, uint64_t id, const uint64_t *voters, int voter_count)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->id = id;
	cfg->voters = voters;
	cfg->voter_count = voter_count;
	cfg->election_ticks = 10;
	cfg->heartbeat_ticks = 1;
	cfg->seed = id;
	cfg->pre_vote = true;
	cfg->check_quorum = true;
	cfg->max_inflight_msgs = 64;
	cfg->max_msg_entries = 1024;
	cfg->max_msg_bytes = 1 << 20;
	cfg->log_entries_max = 1 << 20;
	cfg->reads_max = 1024;
	cfg->apply_entries_max = 4096;
}

static bool raft_config_valid(const struct raft_config *cfg)
{
	if (cfg->id == 0 || !cfg->voters || cfg->voter_count < 1 || cfg->voter_count > RAFT_VOTERS_MAX)
		return false;
	if (cfg->election_ticks < 2 || cfg->election_ticks > RAFT_ELECTION_TICKS_MAX)
		return false;
	if (cfg->heartbeat_ticks < 1 || cfg->heartbeat_ticks >= cfg->election_ticks)
		return false;
	if (cfg->max_inflight_msgs < 1 || cfg->max_inflight_msgs > RAFT_INFLIGHT_MAX)
		return false;
	if (cfg->max_msg_entries < 1 || cfg->max_msg_entries > RAFT_MSG_ENTRIES_MAX || cfg->max_msg_bytes < 1)
		return false;
	if (cfg->log_entries_max < 1 || cfg->log_entries_max > RAFT_LOG_ENTRIES_MAX)
		return false;
	if (cfg->reads_max < 1 || cfg->reads_max > RAFT_READS_MAX)
		return false;
	if (cfg->apply_entries_max < 1 || cfg->apply_entries_max > RAFT_APPLY_ENTRIES_MAX)
		return false;
	bool self_found = false;
	for (int i = 0; i < cfg->voter_count; i++) {
		if (cfg->voters[i] == 0)
			return false;
		for (int j = 0; j < i; j++)
			if (cfg->voters[j] == cfg->voters[i])
				return false;
		self_found |= cfg->voters[i] == cfg->id;
	}
	return self_found;
}

static bool raft_restore_valid(const struct raft_restore *rs, uint64_t log_entries_max)
{
	const struct raft_hard_state *hs = &rs->hard_state;
	uint64_t last = rs->prev_index + (uint64_t)rs->entry_count;
	if (rs->entry_count < 0 || (uint64_t)rs->entry_count > log_entries_max || (rs->entry_count && !rs->entries))
		return false;
	if (rs->prev_index > hs->commit || hs->commit > last || rs->applied_index < rs->prev_index ||
	    rs->applied_index > hs->commit || rs->prev_term > hs->term || (rs->prev_index == 0 && rs->prev_term))
		return false;
	uint64_t term = rs->prev_term;
	for (int i = 0; i < rs->entry_count; i++) {
		const struct raft_entry *e = &rs->entries[i];
		if (e->index != rs->prev_index + 1 + (uint64_t)i || e->term < term || e->term > hs->term ||
		    (e->len && !e->data))
			return false;
		term = e->term;
	}
	return true;
}

/* splitmix64: the core's only source of randomness, seeded from the config. */
uint64_t raft_random(struct raft *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int raft_alloc_arrays(struct raft *r)
{
	r->reads_pending = calloc((size_t)r->cfg.reads_max, sizeof *r->reads_pending);
	r->read_states = calloc((size_t)r->cfg.reads_max, sizeof *r->read_states);
	r->msg_cap = RAFT_MSGS_CAP_MIN;
	r->msgs = calloc((size_t)r->msg_cap, sizeof *r->msgs);
	if (!r->reads_pending || !r->read_states || !r->msgs)
		return -ENOMEM;
	return 0;
}

/* Takes the restored entries (validated, room reserved) and the durable hard state. */
static void raft_restore_log(struct raft *r, const struct raft_restore *rs)
{
	for (int i = 0; i < rs->entry_count; i++)
		raft_log_push(&r->log, &rs->entries[i]);
	r->term = rs->hard_state.term;
	r->vote = rs->hard_state.vote;
	r->commit = rs->hard_state.commit;
	r->applied = r->apply_handed = rs->applied_index;
	r->hs_persisted = rs->hard_state;
}

int raft_new(struct raft **out, const struct raft_config *cfg, const struct raft_restore *restore)
{
	*out = NULL;
	if (!raft_config_valid(cfg) || (restore && !raft_restore_valid(restore, (uint64_t)cfg->log_entries_max)))
		return -EINVAL;
	struct raft *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	memcpy(r->voters, cfg->voters, (size_t)cfg->voter_count * sizeof r->voters[0]);
	r->cfg.voters = r->voters;
	r->quorum = cfg->voter_count / 2 + 1;
	r->rng = cfg->seed;
	for (int i = 0; i < cfg->voter_count; i++) {
		r->prs[i].id = r->voters[i];
		if (r->voters[i] == cfg->id)
			r->self_slot = i;
	}
	raft_log_init(&r->log, restore ? restore->prev_index : 0, restore ? restore->prev_term : 0);
	size_t entries = restore ? (size_t)restore->entry_count : 0;
	if (raft_alloc_arrays(r) < 0 || raft_log_reserve(&r->log, entries + 1) < 0) {
		raft_free(r);
		return -ENOMEM;
	}
	if (restore)
		raft_restore_log(r, restore);
	r->durable = raft_log_last(&r->log);
	r->unstable_from = r->durable + 1;
	r->role = RAFT_FOLLOWER;
	raft_become_follower(r, r->term, 0);
	if (cfg->voter_count == 1)
		raft_campaign(r, false, false);
	*out = r;
	return 0;
}

static void raft_forward_clear(struct raft *r)
{
	for (int i = 0; i < r->forward_count; i++)
		free(r->forward[i].owner);
	r->forward_count = 0;
}

void raft_free(struct raft *r)
{
	if (!r)
		return;
	raft_forward_clear(r);
	free(r->forward);
	raft_log_free(&r->log);
	free(r->msgs);
	free(r->reads_pending);
	free(r->read_states);
	free(r);
}

/* A zeroed message from us at our term, or NULL when it cannot be queued (no memory:
 * counted, and harmless, since Raft tolerates a lost message). */
struct raft_msg *raft_msg_push(struct raft *r, enum raft_msg_type type, uint64_t to)
{
	if (r->msg_count == r->msg_cap) {
		if (r->msg_cap >= RAFT_MSGS_MAX) {
			r->dropped_msgs++;
			return NULL;
		}
		struct raft_msg *msgs = realloc(r->msgs, (size_t)r->msg_cap * 2 * sizeof *msgs);
		if (!msgs) {
			r->dropped_msgs++;
			return NULL;
		}
		r->msgs = msgs;
		r->msg_cap *= 2;
	}
	struct raft_msg *m = &r->msgs[r->msg_count++];
	memset(m, 0, sizeof *m);
	m->type = type;
	m->from = r->cfg.id;
	m->to = to;
	m->term = r->term;
	return m;
}

/* RAFT_MUT_VOTE_NOT_PERSISTED: the vote just granted never reaches the host's hard
 * state in this term (the bug: answering before the vote is on the disk). */
void raft_hide_vote(struct raft *r)
{
	if (RAFT_MUTATED(r, RAFT_MUT_VOTE_NOT_PERSISTED))
		r->vote_hidden = r->vote;
}

/* Entries after `after` left the log. Handed-out ones must be dropped by the host;
 * queued appends that carried any of them are withdrawn (they were sent as leader of
 * an older term, and their entries are gone). */
void raft_note_truncate(struct raft *r, uint64_t after)
{
	if (after + 1 < r->unstable_from) {
		if (!r->truncated || after < r->truncate_after)
			r->truncate_after = after;
		r->truncated = true;
		r->unstable_from = after + 1;
	}
	if (r->durable > after)
		r->durable = after;
	int kept = 0;
	for (int i = 0; i < r->msg_count; i++) {
		const struct raft_msg *m = &r->msgs[i];
		if (m->type == RAFT_MSG_APPEND && m->log_index + (uint64_t)m->entry_count > after)
			continue;
		r->msgs[kept++] = *m;
	}
	r->msg_count = kept;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
	return raft_step_dispatch(r, m);
}

void raft_tick(struct raft *r)
{
	switch (r->role) {
	case RAFT_LEADER:
		raft_tick_leader(r);
		return;
	case RAFT_FOLLOWER:
	case RAFT_PRE_CANDIDATE:
	case RAFT_CANDIDATE:
		raft_tick_election(r);
		return;
	}
	assert(!"bad role");
}

static int raft_forward_reserve(struct raft *r, int n)
{
	if (r->forward_count + n > RAFT_FORWARD_ENTRIES_MAX)
		return -ENOBUFS;
	if (r->forward_count + n <= r->forward_cap)
		return 0;
	int cap = r->forward_cap ? r->forward_cap : 64;
	while (cap < r->forward_count + n)
		cap *= 2;
	struct raft_entry *f = realloc(r->forward, (size_t)cap * sizeof *f);
	if (!f)
		return -ENOMEM;
	r->forward = f;
	r->forward_cap = cap;
	return 0;
}

static int raft_propose_forward(struct raft *r, const struct raft_proposal *p, int n)
{
	int rc = raft_forward_reserve(r, n);
	if (rc < 0)
		return rc;
	struct raft_msg *m = raft_msg_push(r, RAFT_MSG_PROP, r->leader);
	if (!m)
		return -ENOMEM;
	m->term = 0;
	m->entry_count = n;
	for (int i = 0; i < n; i++) {
		struct raft_entry *e = &r->forward[r->forward_count++];
		*e = (struct raft_entry){.type = RAFT_ENTRY_NORMAL, .len = p[i].len, .owner = p[i].owner, .data = p[i].data};
	}
	return 0;
}

int raft_propose(struct raft *r, const struct raft_proposal *p, int n)
{
	if (n < 1 || n > RAFT_PROPOSE_ENTRIES_MAX || !p)
		return -EINVAL;
	switch (r->role) {
	case RAFT_LEADER:
		if (r->transferee)
			return -EBUSY;
		if (r->log.count + (size_t)n > (size_t)r->cfg.log_entries_max)
			return -ENOBUFS;
		if (raft_log_reserve(&r->log, (size_t)n) < 0)
			return -ENOMEM;
		for (int i = 0; i < n; i++)
			raft_leader_append_one(r, p[i].owner, p[i].data, p[i].len, RAFT_ENTRY_NORMAL);
		raft_leader_appended(r);
		return 0;
	case RAFT_FOLLOWER:
		if (!r->leader)
			return -EAGAIN;
		return raft_propose_forward(r, p, n);
	case RAFT_PRE_CANDIDATE:
	case RAFT_CANDIDATE:
		return -EAGAIN;
	}
	assert(!"bad role");
	return -EINVAL;
}

void raft_durable(struct raft *r, uint64_t index, uint64_t term)
{
	if (index <= r->durable || index > raft_log_last(&r->log) || raft_log_term(&r->log, index) != term)
		return;
	r->durable = index;
	switch (r->role) {
	case RAFT_LEADER:
		if (!RAFT_MUTATED(r, RAFT_MUT_ACK_BEFORE_DURABLE))
			r->prs[r->self_slot].match = index;
		if (raft_maybe_commit(r))
			raft_bcast_append(r, true);
		return;
	case RAFT_FOLLOWER:
		raft_follower_ack(r, false);
		return;
	case RAFT_PRE_CANDIDATE:
	case RAFT_CANDIDATE:
		return;
	}
}

void raft_applied(struct raft *r, uint64_t index)
{
	assert(index <= r->apply_handed);
	if (index > r->applied)
		r->applied = index;
}

int raft_compact(struct raft *r, uint64_t index)
{
	if (index > r->applied)
		return -EINVAL;
	if (index > r->compact_to)
		r->compact_to = index;
	return 0;
}

int raft_transfer(struct raft *r, uint64_t target)
{
	int slot = raft_slot_of(r, target);
	if (slot < 0 || slot == r->self_slot)
		return -EINVAL;
	if (r->role != RAFT_LEADER)
		return -EAGAIN;
	if (r->transferee == target)
		return 0;
	r->transferee = target;
	r->transfer_elapsed = 0;
	raft_transfer_check(r, slot);
	return 0;
}

/*
 * Only liveness changes here, never safety: forgetting the leader drops the lease that
 * makes this node ignore (pre-)votes, and the timer is brought forward to a point drawn
 * from [1, E] ticks ahead (sooner only), so the followers that lost the same leader
 * (a killed leader resets every peer's connection at once) campaign one after another,
 * not together. The vote and log rules are untouched; a leader that is in fact alive
 * is taken back by its next heartbeat, and the pre-vote keeps this node's term.
 */
void raft_peer_unreachable(struct raft *r, uint64_t id)
{
	if (r->role != RAFT_FOLLOWER || id == 0 || r->leader != id)
		return;
	r->leader = 0;
	int e = r->cfg.election_ticks;
	int ahead = 1 + (int)(raft_random(r) % (uint64_t)e);
	if (r->timeout_randomized - r->election_elapsed > ahead)
		r->election_elapsed = r->timeout_randomized - ahead;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
	if (r->role == RAFT_LEADER)
		return raft_leader_read(r, r->cfg.id, ctx);
	if (r->role != RAFT_FOLLOWER || !r->leader)
		return -EAGAIN;
	struct raft_msg *m = raft_msg_push(r, RAFT_MSG_READ_INDEX, r->leader);
	if (!m)
		return -ENOMEM;
	m->term = 0;
	m->ctx = ctx;
	return 0;
}

static void raft_ready_resolve_msgs(struct raft *r)
{
	int forward_used = 0;
	for (int i = 0; i < r->msg_count; i++) {
		struct raft_msg *m = &r->msgs[i];
		if (m->entry_count == 0)
			continue;
		if (m->type == RAFT_MSG_PROP) {
			m->entries = &r->forward[forward_used];
			forward_used += m->entry_count;
		} else {
			assert(m->type == RAFT_MSG_APPEND);
			m->entries = raft_log_at(&r->log, m->log_index + 1);
			assert(m->entries && m->log_index + (uint64_t)m->entry_count <= raft_log_last(&r->log));
		}
	}
	assert(forward_used == r->forward_count);
}

static void raft_ready_hard_state(struct raft *r, struct raft_ready *rd)
{
	rd->hard_state.term = r->term;
	rd->hard_state.vote = r->vote;
	rd->hard_state.commit = r->commit < r->durable ? r->commit : r->durable;
	if (r->vote_hidden && r->vote_hidden == r->vote)
		rd->hard_state.vote = r->hs_persisted.term == r->term ? r->hs_persisted.vote : 0;
	const struct raft_hard_state *old = &r->hs_persisted;
	rd->must_sync = rd->hard_state.term != old->term || rd->hard_state.vote != old->vote;
	rd->hard_state_changed = rd->must_sync || rd->hard_state.commit != old->commit;
}

const struct raft_ready *raft_ready(struct raft *r)
{
	struct raft_ready *rd = &r->ready;
	memset(rd, 0, sizeof *rd);
	rd->role = r->role;
	rd->leader = r->leader;
	rd->term = r->term;
	raft_ready_resolve_msgs(r);
	rd->msgs = r->msgs;
	rd->msg_count = r->msg_count;
	rd->truncate = r->truncated;
	rd->truncate_after = r->truncate_after;
	uint64_t last = raft_log_last(&r->log);
	if (r->unstable_from <= last) {
		rd->entries = raft_log_at(&r->log, r->unstable_from);
		rd->entry_count = (int)(last - r->unstable_from + 1);
	}
	raft_ready_hard_state(r, rd);
	uint64_t apply_to = r->commit;
	if (apply_to - r->apply_handed > (uint64_t)r->cfg.apply_entries_max)
		apply_to = r->apply_handed + (uint64_t)r->cfg.apply_entries_max;
	if (apply_to > r->apply_handed) {
		rd->committed = raft_log_at(&r->log, r->apply_handed + 1);
		rd->committed_count = (int)(apply_to - r->apply_handed);
		assert(rd->committed);
	}
	rd->reads = r->read_states;
	rd->read_count = r->read_state_count;
	rd->needs_snapshot = r->needs_snapshot;
	rd->needs_snapshot_count = r->needs_snapshot_count;
	return rd;
}

/* Drops what the host allowed (raft_compact), and by itself applied entries beyond
 * half of log_entries_max, so the other half stays free for new entries. */
static void raft_compact_auto(struct raft *r)
{
	uint64_t target = r->compact_to;
	size_t keep = (size_t)r->cfg.log_entries_max / 2;
	if (r->log.count > keep) {
		uint64_t excess = (uint64_t)(r->log.count - keep);
		if (r->log.compacted_index + excess > target)
			target = r->log.compacted_index + excess;
	}
	if (target > r->applied)
		target = r->applied;
	raft_log_compact(&r->log, target);
}

void raft_advance(struct raft *r)
{
	struct raft_ready *rd = &r->ready;
	if (rd->entry_count)
		r->unstable_from = rd->entries[rd->entry_count - 1].index + 1;
	r->apply_handed += (uint64_t)rd->committed_count;
	if (rd->hard_state_changed)
		r->hs_persisted = rd->hard_state;
	r->truncated = false;
	r->truncate_after = 0;
	r->msg_count = 0;
	raft_forward_clear(r);
	r->read_state_count = 0;
	r->needs_snapshot_count = 0;
	memset(rd, 0, sizeof *rd);
	raft_compact_auto(r);
}

void raft_status(const struct raft *r, struct raft_status *out)
{
	memset(out, 0, sizeof *out);
	out->id = r->cfg.id;
	out->role = r->role;
	out->leader = r->leader;
	out->term = r->term;
	out->vote = r->vote;
	out->commit = r->commit;
	out->durable = r->durable;
	out->applied = r->applied;
	out->first_index = raft_log_first(&r->log);
	out->last_index = raft_log_last(&r->log);
	out->last_term = raft_log_last_term(&r->log);
	out->transferee = r->transferee;
	out->dropped_msgs = r->dropped_msgs;
	out->reads_pending = r->reads_count;
	out->voter_count = r->cfg.voter_count;
	for (int i = 0; i < r->cfg.voter_count; i++)
		out->peers[i] = (struct raft_peer_status){
			.id = r->prs[i].id, .match = r->prs[i].match, .next = r->prs[i].next, .state = r->prs[i].state};
}

uint64_t raft_term_at(const struct raft *r, uint64_t index) { return raft_log_term(&r->log, index); }

const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index) { return raft_log_at(&r->log, index); }

const char *raft_msg_type_name(enum raft_msg_type type)
{
	switch (type) {
	case RAFT_MSG_APPEND: return "APPEND";
	case RAFT_MSG_APPEND_RESP: return "APPEND_RESP";
	case RAFT_MSG_VOTE: return "VOTE";
	case RAFT_MSG_VOTE_RESP: return "VOTE_RESP";
	case RAFT_MSG_PRE_VOTE: return "PRE_VOTE";
	case RAFT_MSG_PRE_VOTE_RESP: return "PRE_VOTE_RESP";
	case RAFT_MSG_HEARTBEAT: return "HEARTBEAT";
	case RAFT_MSG_HEARTBEAT_RESP: return "HEARTBEAT_RESP";
	case RAFT_MSG_TIMEOUT_NOW: return "TIMEOUT_NOW";
	case RAFT_MSG_PROP: return "PROP";
	case RAFT_MSG_READ_INDEX: return "READ_INDEX";
	case RAFT_MSG_READ_INDEX_RESP: return "READ_INDEX_RESP";
	}
	return "?";
}

const char *raft_role_name(enum raft_role role)
{
	switch (role) {
	case RAFT_FOLLOWER: return "follower";
	case RAFT_PRE_CANDIDATE: return "pre-candidate";
	case RAFT_CANDIDATE: return "candidate";
	case RAFT_LEADER: return "leader";
	}
	return "?";
}
