/*
 * core_snapshot.c — a follower takes a snapshot in place of its log (raft_snapshot_install,
 * see core.h). The leader's side needs nothing here: a follower in NEEDS_SNAPSHOT whose
 * acknowledgement reaches the leader's compaction point goes back to PROBE
 * (core_replicate.c), and its host sends the snapshot meanwhile.
 *
 * INVARIANTS
 *   1. A snapshot is only ever of a committed prefix (the leader's host sends one it
 *      took at its applied index), so it never contradicts a committed entry here, and
 *      any entry after its index in this log is uncommitted: dropping the whole log is
 *      safe (Raft paper, section 7; etcd's restore does the same when the terms differ).
 *   2. After the install the log is empty at (index, term): commit, applied, durable
 *      and what was handed out for appending and applying all stand at index.
 */
#include <errno.h>

#include "raft/core_internal.h"

int raft_snapshot_install(struct raft *r, uint64_t index, uint64_t term)
{
	if (r->role != RAFT_FOLLOWER || !r->leader || term == 0 || term > r->term)
		return -EAGAIN;
	if (index <= r->commit)
		return -EALREADY;
	/* Invariant 1: nothing here after the compaction point survives. */
	raft_log_truncate_after(&r->log, r->log.compacted_index);
	r->log.head = 0;
	r->log.compacted_index = index;
	r->log.compacted_term = term;
	r->commit = index;
	r->applied = r->apply_handed = index;
	r->durable = index;
	r->unstable_from = index + 1;
	r->truncated = false;
	r->truncate_after = 0;
	r->leader_matched = index;
	r->acked = 0;
	if (r->compact_to > index)
		r->compact_to = index;
	/* Tell the leader at once: it resumes appends from index + 1. */
	raft_follower_ack(r, true);
	return 0;
}
