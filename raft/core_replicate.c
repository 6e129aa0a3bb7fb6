/*
 * core_replicate.c — the leader: per-follower progress, appends, commitment,
 * leadership transfer and read index.
 *
 * PROGRESS OF ONE FOLLOWER
 *
 *            success ack                     reject / heartbeat shows a gap
 *   PROBE ─────────────────► REPLICATE ───────────────────────────────► PROBE
 *     │  one append at a time    pipelined: up to max_inflight_msgs
 *     │                          appends, next moves optimistically
 *     └── next-1 compacted away ──► NEEDS_SNAPSHOT (nothing sent; the host is told once)
 *
 * INVARIANTS
 *   1. match <= next - 1; match only grows within a term; every progress is reset when
 *      this node becomes leader (next = last + 1, match = 0, PROBE).
 *   2. Our own match is our durable index: the leader's append counts toward the
 *      majority only once the host reported it durable.
 *   3. commit moves to the quorum-th highest match, and only onto an entry of the
 *      current term (Raft paper, Figure 8); earlier entries commit with it.
 *   4. inflight holds, in order, the last index of each entry-carrying append in
 *      REPLICATE; an ack for index i frees every slot <= i. Empty appends (commit
 *      updates) never take a slot.
 *   5. While transferee is set, proposals are refused (-EBUSY; forwarded ones dropped);
 *      transfer gives up after election_ticks ticks.
 *   6. A read is answered with the commit index at the time of the request, once a
 *      majority answered a heartbeat whose round (ctx) is >= the request's round, and
 *      only when an entry of this term is committed (else the request is refused).
 *
 * Per-entry cost: appending is O(1) amortised (core_log.c); an append message costs
 * O(entries in it) to size by bytes; commitment costs O(voters) per ack, not per entry.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core_internal.h"

static void raft_progress_reset(struct raft_progress *pr, uint64_t next, enum raft_progress_state state)
{
	pr->next = next;
	pr->state = state;
	pr->probe_sent = false;
	pr->inflight_head = 0;
	pr->inflight_count = 0;
}

void raft_become_leader(struct raft *r)
{
	assert(r->role == RAFT_CANDIDATE);
	r->role = RAFT_LEADER;
	r->leader = r->cfg.id;
	r->transferee = 0;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->reads_count = 0;
	uint64_t last = raft_log_last(&r->log);
	for (int i = 0; i < r->cfg.voter_count; i++) {
		struct raft_progress *pr = &r->prs[i];
		pr->match = 0;
		pr->recent_active = false;
		pr->read_round_acked = 0;
		raft_progress_reset(pr, last + 1, RAFT_PROGRESS_PROBE);
	}
	struct raft_progress *self = &r->prs[r->self_slot];
	self->match = r->durable;
	self->recent_active = true;
	raft_progress_reset(self, last + 1, RAFT_PROGRESS_REPLICATE);
	if (raft_log_reserve(&r->log, 1) == 0) /* else no no-op: proposals will carry the term */
		raft_leader_append_one(r, NULL, NULL, 0, RAFT_ENTRY_NOOP);
	raft_leader_appended(r);
}

/* The log has room (raft_log_reserve). Takes owner. */
void raft_leader_append_one(struct raft *r, void *owner, const uint8_t *data, uint32_t len,
			    enum raft_entry_type type)
{
	struct raft_entry e = {.index = raft_log_last(&r->log) + 1, .term = r->term, .type = type,
			       .len = len, .owner = owner, .data = data};
	raft_log_push(&r->log, &e);
}

/* After entries were appended: replicate them (and, mutated, count them at once). */
void raft_leader_appended(struct raft *r)
{
	struct raft_progress *self = &r->prs[r->self_slot];
	self->next = raft_log_last(&r->log) + 1;
	if (RAFT_MUTATED(r, RAFT_MUT_ACK_BEFORE_DURABLE)) {
		self->match = raft_log_last(&r->log);
		if (raft_maybe_commit(r)) {
			raft_bcast_append(r, true);
			return;
		}
	}
	raft_bcast_append(r, false);
}

void raft_leader_on_prop(struct raft *r, const struct raft_msg *m)
{
	if (r->transferee || r->log.count + (size_t)m->entry_count > (size_t)r->cfg.log_entries_max)
		return;
	if (raft_log_reserve(&r->log, (size_t)m->entry_count) < 0)
		return;
	for (int i = 0; i < m->entry_count; i++) {
		const struct raft_entry *in = &m->entries[i];
		uint8_t *copy = NULL;
		if (in->len) {
			copy = malloc(in->len);
			if (!copy)
				break;
			memcpy(copy, in->data, in->len);
		}
		raft_leader_append_one(r, copy, copy, in->len, RAFT_ENTRY_NORMAL);
	}
	raft_leader_appended(r);
}

static void raft_needs_snapshot(struct raft *r, struct raft_progress *pr)
{
	raft_progress_reset(pr, pr->next, RAFT_PROGRESS_NEEDS_SNAPSHOT);
	assert(r->needs_snapshot_count < RAFT_VOTERS_MAX);
	r->needs_snapshot[r->needs_snapshot_count++] = pr->id;
}

static bool raft_progress_paused(const struct raft *r, const struct raft_progress *pr)
{
	switch (pr->state) {
	case RAFT_PROGRESS_PROBE:
		return pr->probe_sent;
	case RAFT_PROGRESS_REPLICATE:
		return pr->inflight_count == r->cfg.max_inflight_msgs;
	case RAFT_PROGRESS_NEEDS_SNAPSHOT:
		return true;
	}
	return true;
}

/* How many entries after prev one append carries: max_msg_entries, max_msg_bytes
 * (but at least one entry). */
static int raft_append_size(const struct raft *r, uint64_t prev)
{
	uint64_t avail = raft_log_last(&r->log) - prev;
	int n = avail < (uint64_t)r->cfg.max_msg_entries ? (int)avail : r->cfg.max_msg_entries;
	if (n == 0)
		return 0;
	const struct raft_entry *e = raft_log_at(&r->log, prev + 1);
	size_t bytes = e[0].len;
	int k = 1;
	while (k < n && bytes + e[k].len <= r->cfg.max_msg_bytes)
		bytes += e[k++].len;
	return k;
}

/* Sends the next append to the follower in `slot` if its progress allows. Returns true
 * when entries went out (the caller may loop to fill the window). */
static bool raft_send_append(struct raft *r, int slot, bool send_empty)
{
	struct raft_progress *pr = &r->prs[slot];
	if (raft_progress_paused(r, pr))
		return false;
	uint64_t prev = pr->next - 1;
	if (prev < r->log.compacted_index) {
		raft_needs_snapshot(r, pr);
		return false;
	}
	int n = raft_append_size(r, prev);
	if (n == 0 && !send_empty)
		return false;
	struct raft_msg *m = raft_msg_push(r, RAFT_MSG_APPEND, pr->id);
	if (!m)
		return false;
	m->log_index = prev;
	m->log_term = raft_log_term(&r->log, prev);
	m->commit = r->commit;
	m->entry_count = n;
	if (pr->state == RAFT_PROGRESS_PROBE) {
		pr->probe_sent = true;
	} else if (n > 0) {
		pr->next = prev + (uint64_t)n + 1;
		int tail = (pr->inflight_head + pr->inflight_count) % RAFT_INFLIGHT_MAX;
		pr->inflight[tail] = prev + (uint64_t)n;
		pr->inflight_count++;
	}
	return n > 0;
}

static void raft_send_append_all(struct raft *r, int slot, bool send_empty)
{
	bool sent = raft_send_append(r, slot, send_empty);
	while (sent && r->prs[slot].state == RAFT_PROGRESS_REPLICATE)
		sent = raft_send_append(r, slot, false);
}

void raft_bcast_append(struct raft *r, bool send_empty)
{
	for (int i = 0; i < r->cfg.voter_count; i++)
		if (i != r->self_slot)
			raft_send_append_all(r, i, send_empty);
}

void raft_bcast_heartbeat(struct raft *r, uint64_t ctx)
{
	for (int i = 0; i < r->cfg.voter_count; i++) {
		if (i == r->self_slot)
			continue;
		struct raft_msg *m = raft_msg_push(r, RAFT_MSG_HEARTBEAT, r->prs[i].id);
		if (!m)
			continue;
		m->commit = r->prs[i].match < r->commit ? r->prs[i].match : r->commit;
		m->ctx = ctx;
	}
}

void raft_commit_to(struct raft *r, uint64_t index)
{
	if (index <= r->commit)
		return;
	assert(index <= raft_log_last(&r->log));
	r->commit = index;
}

/* The quorum-th highest of values[0..n) (n <= RAFT_VOTERS_MAX): insertion sort. */
static uint64_t raft_quorum_value(uint64_t *values, int n, int quorum)
{
	for (int i = 1; i < n; i++) {
		uint64_t v = values[i];
		int j = i - 1;
		while (j >= 0 && values[j] < v) {
			values[j + 1] = values[j];
			j--;
		}
		values[j + 1] = v;
	}
	return values[quorum - 1];
}

bool raft_maybe_commit(struct raft *r)
{
	uint64_t match[RAFT_VOTERS_MAX];
	for (int i = 0; i < r->cfg.voter_count; i++)
		match[i] = r->prs[i].match;
	uint64_t index = raft_quorum_value(match, r->cfg.voter_count, r->quorum);
	if (index <= r->commit)
		return false;
	if (raft_log_term(&r->log, index) != r->term && !RAFT_MUTATED(r, RAFT_MUT_COMMIT_OLD_TERM))
		return false;
	raft_commit_to(r, index);
	return true;
}

void raft_transfer_check(struct raft *r, int slot)
{
	struct raft_progress *pr = &r->prs[slot];
	if (pr->id != r->transferee)
		return;
	if (pr->match == raft_log_last(&r->log)) {
		raft_msg_push(r, RAFT_MSG_TIMEOUT_NOW, pr->id);
		return;
	}
	raft_send_append_all(r, slot, true);
}

static void raft_inflight_free_to(struct raft_progress *pr, uint64_t index)
{
	while (pr->inflight_count > 0 && pr->inflight[pr->inflight_head] <= index) {
		pr->inflight_head = (pr->inflight_head + 1) % RAFT_INFLIGHT_MAX;
		pr->inflight_count--;
	}
}

/* The follower's log does not hold our entry at m->log_index. Jump back using its
 * hint (etcd's maybeDecrTo + findConflictByTerm) and probe from there. */
static void raft_on_append_reject(struct raft *r, int slot, const struct raft_msg *m)
{
	struct raft_progress *pr = &r->prs[slot];
	switch (pr->state) {
	case RAFT_PROGRESS_REPLICATE:
		if (m->log_index <= pr->match)
			return; /* stale */
		break;
	case RAFT_PROGRESS_PROBE:
		if (m->log_index != pr->next - 1)
			return; /* stale */
		break;
	case RAFT_PROGRESS_NEEDS_SNAPSHOT:
		return;
	}
	uint64_t probe = m->index;
	if (m->reject_term > 0)
		probe = raft_log_find_conflict_by_term(&r->log, m->index, m->reject_term);
	uint64_t next = m->log_index < probe + 1 ? m->log_index : probe + 1;
	if (next < pr->match + 1)
		next = pr->match + 1;
	raft_progress_reset(pr, next, RAFT_PROGRESS_PROBE);
	raft_send_append_all(r, slot, true);
}

static void raft_on_append_ok(struct raft *r, int slot, const struct raft_msg *m)
{
	struct raft_progress *pr = &r->prs[slot];
	if (m->index > raft_log_last(&r->log))
		return; /* cannot be ours: only a mutation gets here */
	if (m->index > pr->match)
		pr->match = m->index;
	if (pr->next < pr->match + 1)
		pr->next = pr->match + 1;
	switch (pr->state) {
	case RAFT_PROGRESS_PROBE:
		raft_progress_reset(pr, pr->match + 1, RAFT_PROGRESS_REPLICATE);
		break;
	case RAFT_PROGRESS_REPLICATE:
		raft_inflight_free_to(pr, m->index);
		break;
	case RAFT_PROGRESS_NEEDS_SNAPSHOT:
		if (pr->match < r->log.compacted_index)
			return;
		raft_progress_reset(pr, pr->match + 1, RAFT_PROGRESS_PROBE);
		break;
	}
	if (raft_maybe_commit(r))
		raft_bcast_append(r, true);
	else
		raft_send_append_all(r, slot, false);
	raft_transfer_check(r, slot);
}

void raft_on_append_resp(struct raft *r, const struct raft_msg *m)
{
	int slot = raft_slot_of(r, m->from);
	r->prs[slot].recent_active = true;
	if (m->reject)
		raft_on_append_reject(r, slot, m);
	else
		raft_on_append_ok(r, slot, m);
}

static void raft_read_deliver(struct raft *r, const struct raft_read_pending *p)
{
	if (p->from == r->cfg.id) {
		if (r->read_state_count < r->cfg.reads_max)
			r->read_states[r->read_state_count++] = (struct raft_read_state){.ctx = p->ctx, .index = p->index};
		return;
	}
	struct raft_msg *m = raft_msg_push(r, RAFT_MSG_READ_INDEX_RESP, p->from);
	if (!m)
		return;
	m->term = 0;
	m->ctx = p->ctx;
	m->index = p->index;
}

static void raft_reads_release(struct raft *r)
{
	if (r->reads_count == 0)
		return;
	uint64_t rounds[RAFT_VOTERS_MAX];
	for (int i = 0; i < r->cfg.voter_count; i++)
		rounds[i] = i == r->self_slot ? r->read_round : r->prs[i].read_round_acked;
	uint64_t confirmed = raft_quorum_value(rounds, r->cfg.voter_count, r->quorum);
	while (r->reads_count > 0) {
		const struct raft_read_pending *p = &r->reads_pending[r->reads_head];
		if (p->round > confirmed)
			return;
		raft_read_deliver(r, p);
		r->reads_head = (r->reads_head + 1) % r->cfg.reads_max;
		r->reads_count--;
	}
}

int raft_leader_read(struct raft *r, uint64_t from, uint64_t ctx)
{
	assert(r->role == RAFT_LEADER);
	if (raft_log_term(&r->log, r->commit) != r->term)
		return -EAGAIN;
	if (r->reads_count == r->cfg.reads_max)
		return -ENOBUFS;
	struct raft_read_pending p = {.ctx = ctx, .index = r->commit, .round = ++r->read_round, .from = from};
	r->reads_pending[(r->reads_head + r->reads_count) % r->cfg.reads_max] = p;
	r->reads_count++;
	if (r->quorum == 1)
		raft_reads_release(r);
	else
		raft_bcast_heartbeat(r, r->read_round);
	return 0;
}

void raft_reads_drop(struct raft *r)
{
	r->reads_head = 0;
	r->reads_count = 0;
}

void raft_on_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
	int slot = raft_slot_of(r, m->from);
	struct raft_progress *pr = &r->prs[slot];
	pr->recent_active = true;
	if (m->ctx > pr->read_round_acked && m->ctx <= r->read_round)
		pr->read_round_acked = m->ctx;
	switch (pr->state) {
	case RAFT_PROGRESS_PROBE:
		pr->probe_sent = false;
		break;
	case RAFT_PROGRESS_REPLICATE:
		if (pr->inflight_count == r->cfg.max_inflight_msgs)
			raft_inflight_free_to(pr, pr->inflight[pr->inflight_head]);
		break;
	case RAFT_PROGRESS_NEEDS_SNAPSHOT:
		break;
	}
	/* An empty append where nothing new is left to send: a lost last append, or a
	 * follower that could not take our commit (reject), shows up as its answer. */
	if (pr->match < raft_log_last(&r->log) || m->reject)
		raft_send_append_all(r, slot, true);
	raft_reads_release(r);
}

void raft_tick_leader(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->transferee && ++r->transfer_elapsed >= r->cfg.election_ticks)
		r->transferee = 0;
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum) {
			int active = 0;
			for (int i = 0; i < r->cfg.voter_count; i++) {
				active += r->prs[i].recent_active || i == r->self_slot;
				r->prs[i].recent_active = false;
			}
			if (active < r->quorum) {
				raft_become_follower(r, r->term, 0);
				return;
			}
		}
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(r, r->read_round);
	}
}
