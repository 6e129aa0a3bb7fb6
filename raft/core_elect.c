/*
 * core_elect.c — roles and elections, and the dispatch of every incoming message by
 * its term (etcd's Step).
 *
 * TERMS
 *   A message of a higher term makes us a follower of that term first, except: a
 *   (pre-)vote request inside our leader lease is ignored outright (check_quorum: we
 *   heard from a live leader within election_ticks, and it is not a transfer); a
 *   pre-vote request and a granted pre-vote answer never move our term (the whole point
 *   of pre-vote: a partitioned node cannot inflate terms). A message of a lower term is
 *   dropped, but an APPEND or HEARTBEAT from a stale leader is answered with our term so
 *   it steps down, and a stale pre-vote is rejected with our term.
 *
 * INVARIANTS
 *   1. At most one vote per term, and the vote reaches the host's hard state (must_sync)
 *      before the answer is sent (core.c invariant 6).
 *   2. A vote is granted only to a log at least as up to date as ours (last term, then
 *      last index), ours counting entries not yet durable.
 *   3. Election timeouts are drawn from [E, 2E) with the core's seeded PRNG.
 *   4. votes_granted / votes_rejected are bitmasks over voter slots, so a duplicated
 *      answer is counted once.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "raft/core_internal.h"

int raft_slot_of(const struct raft *r, uint64_t id)
{
	for (int i = 0; i < r->cfg.voter_count; i++)
		if (r->voters[i] == id)
			return i;
	return -1;
}

static void raft_timers_reset(struct raft *r)
{
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	uint64_t e = (uint64_t)r->cfg.election_ticks;
	r->timeout_randomized = (int)(e + raft_random(r) % e);
}

static void raft_term_set(struct raft *r, uint64_t term)
{
	if (term == r->term)
		return;
	assert(term > r->term);
	r->term = term;
	r->vote = 0;
	r->vote_hidden = 0;
	r->leader_matched = 0;
	r->acked = 0;
}

void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
	if (r->role == RAFT_LEADER)
		raft_reads_drop(r);
	raft_term_set(r, term);
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	r->transferee = 0;
	raft_timers_reset(r);
}

/* A higher term seen from a node that is not (yet) a leader of it. A follower keeps
 * its election timer running (Raft paper, Figure 2: the timer restarts on hearing the
 * leader or granting a vote, not on a term change), so candidates whose logs are too
 * short to win cannot keep the up-to-date nodes from ever timing out. */
static void raft_term_raise(struct raft *r, uint64_t term)
{
	if (r->role != RAFT_FOLLOWER) {
		raft_become_follower(r, term, 0);
		return;
	}
	raft_term_set(r, term);
	r->leader = 0;
}

static int raft_popcount(uint32_t bits) { return __builtin_popcount(bits); }

static void raft_send_vote_requests(struct raft *r, bool pre_vote, bool transfer)
{
	uint64_t term = pre_vote ? r->term + 1 : r->term;
	for (int i = 0; i < r->cfg.voter_count; i++) {
		if (i == r->self_slot)
			continue;
		struct raft_msg *m = raft_msg_push(r, pre_vote ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE, r->voters[i]);
		if (!m)
			continue;
		m->term = term;
		m->log_index = raft_log_last(&r->log);
		m->log_term = raft_log_last_term(&r->log);
		m->transfer = transfer;
	}
}

/* Starts a pre-vote round (term unchanged) or a real election (term + 1, vote self). */
void raft_campaign(struct raft *r, bool pre_vote, bool transfer)
{
	if (r->role == RAFT_LEADER)
		raft_reads_drop(r);
	if (pre_vote) {
		r->role = RAFT_PRE_CANDIDATE;
	} else {
		raft_term_set(r, r->term + 1);
		r->role = RAFT_CANDIDATE;
		r->vote = r->cfg.id;
		raft_hide_vote(r);
	}
	r->leader = 0;
	r->transferee = 0;
	raft_timers_reset(r);
	r->votes_granted = 1u << r->self_slot;
	r->votes_rejected = 0;
	if (raft_popcount(r->votes_granted) >= r->quorum) {
		if (pre_vote)
			raft_campaign(r, false, transfer);
		else
			raft_become_leader(r);
		return;
	}
	raft_send_vote_requests(r, pre_vote, transfer);
}

void raft_tick_election(struct raft *r)
{
	r->election_elapsed++;
	if (r->election_elapsed < r->timeout_randomized)
		return;
	r->election_elapsed = 0;
	raft_campaign(r, r->cfg.pre_vote, false);
}

static bool raft_log_up_to_date(const struct raft *r, uint64_t last_index, uint64_t last_term)
{
	if (RAFT_MUTATED(r, RAFT_MUT_VOTE_NO_LOG_CHECK))
		return true;
	uint64_t our_term = raft_log_last_term(&r->log);
	return last_term > our_term || (last_term == our_term && last_index >= raft_log_last(&r->log));
}

static void raft_on_vote(struct raft *r, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PRE_VOTE;
	bool can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
	bool grant = can_vote && raft_log_up_to_date(r, m->log_index, m->log_term);
	struct raft_msg *resp = raft_msg_push(r, pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
	if (grant && !pre) {
		r->vote = m->from;
		r->election_elapsed = 0;
		raft_hide_vote(r);
	}
	if (!resp)
		return;
	resp->reject = !grant;
	resp->term = grant ? m->term : r->term;
}

static void raft_on_vote_resp(struct raft *r, const struct raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PRE_VOTE_RESP;
	if (r->role != (pre ? RAFT_PRE_CANDIDATE : RAFT_CANDIDATE))
		return;
	if (!pre && m->term != r->term)
		return;
	uint32_t bit = 1u << raft_slot_of(r, m->from);
	if (m->reject)
		r->votes_rejected |= bit;
	else
		r->votes_granted |= bit;
	if (raft_popcount(r->votes_granted & ~r->votes_rejected) >= r->quorum) {
		if (pre)
			raft_campaign(r, false, false);
		else
			raft_become_leader(r);
	} else if (raft_popcount(r->votes_rejected) >= r->quorum) {
		raft_become_follower(r, r->term, 0);
	}
}

static bool raft_in_lease(const struct raft *r)
{
	return r->cfg.check_quorum && r->leader != 0 && r->election_elapsed < r->cfg.election_ticks;
}

/* m->term > r->term. Returns false when the message is to be ignored. */
static bool raft_step_higher_term(struct raft *r, const struct raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_VOTE:
		if (raft_in_lease(r) && !m->transfer)
			return false;
		raft_term_raise(r, m->term);
		return true;
	case RAFT_MSG_PRE_VOTE:
		return !(raft_in_lease(r) && !m->transfer);
	case RAFT_MSG_PRE_VOTE_RESP:
		if (!m->reject)
			return true;
		raft_term_raise(r, m->term);
		return true;
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
		raft_become_follower(r, m->term, m->from);
		return true;
	case RAFT_MSG_APPEND_RESP:
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_HEARTBEAT_RESP:
	case RAFT_MSG_TIMEOUT_NOW:
	case RAFT_MSG_PROP:
	case RAFT_MSG_READ_INDEX:
	case RAFT_MSG_READ_INDEX_RESP:
		raft_term_raise(r, m->term);
		return true;
	}
	return false;
}

/* m->term < r->term. Returns false when the message is to be ignored. */
static bool raft_step_lower_term(struct raft *r, const struct raft_msg *m)
{
	bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
	if (m->type == RAFT_MSG_APPEND && RAFT_MUTATED(r, RAFT_MUT_ACCEPT_STALE_APPEND))
		return true;
	if (from_leader && (r->cfg.check_quorum || r->cfg.pre_vote)) {
		raft_msg_push(r, RAFT_MSG_APPEND_RESP, m->from); /* our term: it steps down */
	} else if (m->type == RAFT_MSG_PRE_VOTE) {
		struct raft_msg *resp = raft_msg_push(r, RAFT_MSG_PRE_VOTE_RESP, m->from);
		if (resp)
			resp->reject = true;
	}
	return false;
}

/* An APPEND or HEARTBEAT of our term: its sender is the leader of this term. */
static bool raft_accept_leader(struct raft *r, const struct raft_msg *m)
{
	if (r->role == RAFT_LEADER)
		return false; /* two leaders in one term cannot happen; only a mutation gets here */
	if (r->role != RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
	return true;
}

static void raft_on_read_index_msg(struct raft *r, const struct raft_msg *m)
{
	if (r->role == RAFT_LEADER && raft_leader_read(r, m->from, m->ctx) == 0)
		return;
	struct raft_msg *resp = raft_msg_push(r, RAFT_MSG_READ_INDEX_RESP, m->from);
	if (!resp)
		return;
	resp->term = 0;
	resp->ctx = m->ctx;
	resp->reject = true;
}

static void raft_on_read_index_resp(struct raft *r, const struct raft_msg *m)
{
	if (r->read_state_count == r->cfg.reads_max)
		return;
	r->read_states[r->read_state_count++] =
		(struct raft_read_state){.ctx = m->ctx, .index = m->index, .refused = m->reject};
}

static void raft_step_by_type(struct raft *r, const struct raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PRE_VOTE:
		raft_on_vote(r, m);
		return;
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE_RESP:
		raft_on_vote_resp(r, m);
		return;
	case RAFT_MSG_APPEND:
		if (raft_accept_leader(r, m))
			raft_on_append(r, m);
		return;
	case RAFT_MSG_HEARTBEAT:
		if (raft_accept_leader(r, m))
			raft_on_heartbeat(r, m);
		return;
	case RAFT_MSG_APPEND_RESP:
		if (r->role == RAFT_LEADER)
			raft_on_append_resp(r, m);
		return;
	case RAFT_MSG_HEARTBEAT_RESP:
		if (r->role == RAFT_LEADER)
			raft_on_heartbeat_resp(r, m);
		return;
	case RAFT_MSG_TIMEOUT_NOW:
		if (r->role != RAFT_LEADER)
			raft_campaign(r, false, true);
		return;
	case RAFT_MSG_PROP:
		if (r->role == RAFT_LEADER)
			raft_leader_on_prop(r, m);
		return;
	case RAFT_MSG_READ_INDEX:
		raft_on_read_index_msg(r, m);
		return;
	case RAFT_MSG_READ_INDEX_RESP:
		raft_on_read_index_resp(r, m);
		return;
	}
}

static bool raft_msg_valid(const struct raft *r, const struct raft_msg *m)
{
	int slot = raft_slot_of(r, m->from);
	if (slot < 0 || slot == r->self_slot || m->to != r->cfg.id)
		return false;
	if (m->entry_count < 0 || (m->entry_count && !m->entries))
		return false;
	switch (m->type) {
	case RAFT_MSG_APPEND:
		return m->term != 0 && m->entry_count <= RAFT_MSG_ENTRIES_MAX;
	case RAFT_MSG_PROP:
		return m->term == 0 && m->entry_count >= 1 && m->entry_count <= RAFT_PROPOSE_ENTRIES_MAX;
	case RAFT_MSG_READ_INDEX:
	case RAFT_MSG_READ_INDEX_RESP:
		return m->term == 0 && m->entry_count == 0;
	case RAFT_MSG_APPEND_RESP:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PRE_VOTE:
	case RAFT_MSG_PRE_VOTE_RESP:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_HEARTBEAT_RESP:
	case RAFT_MSG_TIMEOUT_NOW:
		return m->term != 0 && m->entry_count == 0;
	}
	return false;
}

int raft_step_dispatch(struct raft *r, const struct raft_msg *m)
{
	if (!raft_msg_valid(r, m))
		return -EINVAL;
	if (m->term > r->term && !raft_step_higher_term(r, m))
		return 0;
	if (m->term != 0 && m->term < r->term && !raft_step_lower_term(r, m))
		return 0;
	raft_step_by_type(r, m);
	return 0;
}
