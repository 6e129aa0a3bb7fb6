/*
 * core_follow.c — the follower's side of replication: accepting appends, resolving a
 * divergent suffix, and acknowledging only what is durable.
 *
 * INVARIANTS
 *   1. leader_matched is the highest index verified to equal the current leader's log
 *      in this term (a successful append check); it is reset on a term change. Entries
 *      after it may be a divergent suffix and are never acknowledged.
 *   2. An acknowledgement (APPEND_RESP ok) names min(durable, leader_matched): the
 *      follower never acks an entry that is not on its disk. raft_durable sends the
 *      acks that appends could not send yet.
 *   3. A suffix is truncated only from the first entry whose term differs from the
 *      leader's; entries up to commit are never truncated (asserted; a mutated core
 *      lowers its commit instead, so the simulator can see the damage).
 *   4. A reject carries a conflict hint: the largest index <= min(prev, last) whose
 *      term is <= the leader's prev term, and that index's term, so the leader skips a
 *      whole divergent term per round trip.
 *   5. commit moves to min(leader's commit, leader_matched) and never down.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core_internal.h"

void raft_follower_ack(struct raft *r, bool force)
{
	if (r->role != RAFT_FOLLOWER || !r->leader)
		return;
	uint64_t ack = r->leader_matched;
	if (r->durable < ack && !RAFT_MUTATED(r, RAFT_MUT_ACK_BEFORE_DURABLE))
		ack = r->durable;
	if (ack <= r->acked && !force)
		return;
	struct raft_msg *m = raft_msg_push(r, RAFT_MSG_APPEND_RESP, r->leader);
	if (!m)
		return;
	m->index = ack;
	if (ack > r->acked)
		r->acked = ack;
}

static void raft_append_reject(struct raft *r, const struct raft_msg *m, uint64_t prev, uint64_t prev_term)
{
	uint64_t last = raft_log_last(&r->log);
	uint64_t hint = raft_log_find_conflict_by_term(&r->log, prev < last ? prev : last, prev_term);
	struct raft_msg *resp = raft_msg_push(r, RAFT_MSG_APPEND_RESP, m->from);
	if (!resp)
		return;
	resp->reject = true;
	resp->log_index = m->log_index;
	resp->index = hint;
	resp->reject_term = raft_log_term(&r->log, hint);
}

static void raft_truncate(struct raft *r, uint64_t after)
{
	if (after < r->commit) {
#ifdef RAFT_MUTATIONS
		assert(r->cfg.mutations != 0);
		r->commit = after; /* a committed entry is overwritten: let the simulator see it */
		if (r->apply_handed > after)
			r->apply_handed = r->applied = after;
#else
		assert(!"truncating a committed entry");
#endif
	}
	raft_note_truncate(r, after);
	raft_log_truncate_after(&r->log, after);
	if (r->leader_matched > after)
		r->leader_matched = after;
	if (r->acked > after)
		r->acked = after;
}

/* Appends entries[k..n) (index prev+1+k..) as copies. Returns how many were taken. */
static int raft_append_copies(struct raft *r, const struct raft_entry *e, int k, int n)
{
	if (raft_log_reserve(&r->log, (size_t)(n - k)) < 0)
		return 0;
	int taken = 0;
	for (int i = k; i < n; i++) {
		uint8_t *copy = NULL;
		if (e[i].len) {
			copy = malloc(e[i].len);
			if (!copy)
				break;
			memcpy(copy, e[i].data, e[i].len);
		}
		struct raft_entry in = {.index = raft_log_last(&r->log) + 1, .term = e[i].term,
					.type = e[i].type == RAFT_ENTRY_NOOP ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL,
					.len = e[i].len, .owner = copy, .data = copy};
		raft_log_push(&r->log, &in);
		taken++;
	}
	return taken;
}

/* entries[0..n) follow prev, which matches. Returns the last index now verified. */
static uint64_t raft_append_matching(struct raft *r, uint64_t prev, const struct raft_entry *e, int n)
{
	uint64_t last = raft_log_last(&r->log);
	int k = 0;
	while (k < n && prev + 1 + (uint64_t)k <= last && raft_log_term(&r->log, prev + 1 + (uint64_t)k) == e[k].term)
		k++;
	if (k == n)
		return prev + (uint64_t)n;
	uint64_t from = prev + 1 + (uint64_t)k; /* first index to write */
	uint64_t keep = from - 1 - r->log.compacted_index;
	if (keep + (uint64_t)(n - k) > (uint64_t)r->cfg.log_entries_max)
		return prev + (uint64_t)k; /* over the window: take nothing new, the leader retries */
	if (from <= last)
		raft_truncate(r, from - 1);
	return from - 1 + (uint64_t)raft_append_copies(r, e, k, n);
}

void raft_on_append(struct raft *r, const struct raft_msg *m)
{
	uint64_t prev = m->log_index;
	uint64_t prev_term = m->log_term;
	const struct raft_entry *e = m->entries;
	int n = m->entry_count;
	if (r->leader_matched < r->commit) /* committed entries are in every later leader's log */
		r->leader_matched = r->commit;
	if (prev < r->commit) { /* entries up to commit are committed: equal everywhere */
		uint64_t skip = r->commit - prev;
		if (skip > (uint64_t)n)
			skip = (uint64_t)n;
		if (skip > 0)
			prev_term = e[skip - 1].term;
		prev += skip;
		e += skip;
		n -= (int)skip;
		if (prev < r->commit) { /* all of it was committed here already */
			raft_follower_ack(r, true);
			return;
		}
	}
	if (prev > raft_log_last(&r->log) || raft_log_term(&r->log, prev) != prev_term) {
		raft_append_reject(r, m, prev, prev_term);
		return;
	}
	uint64_t matched = raft_append_matching(r, prev, e, n);
	if (matched > r->leader_matched)
		r->leader_matched = matched;
	raft_commit_to(r, m->commit < r->leader_matched ? m->commit : r->leader_matched);
	uint64_t ack = r->durable < r->leader_matched ? r->durable : r->leader_matched;
	raft_follower_ack(r, ack >= matched);
}

void raft_on_heartbeat(struct raft *r, const struct raft_msg *m)
{
	raft_commit_to(r, m->commit < r->leader_matched ? m->commit : r->leader_matched);
	struct raft_msg *resp = raft_msg_push(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
	if (!resp)
		return;
	resp->ctx = m->ctx;
	resp->reject = m->commit > r->leader_matched; /* send me an append: I cannot verify */
}
