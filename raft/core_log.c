/*
 * core_log.c — the core's in-memory log: the entries after the compaction point, in one
 * contiguous array so a ready record can hand out a slice without copying.
 *
 *   compacted_index  first = compacted_index + 1            last
 *        │            │                                      │
 *   ─────┴────────────┴──────── buf[head .. head+count) ─────┘
 *
 * INVARIANTS
 *   1. buf[head + k].index == compacted_index + 1 + k (indexes are contiguous).
 *   2. Terms never go down along the log; compacted_term is the term at compacted_index.
 *   3. Every owner in buf[head .. head+count) belongs to the log and is freed exactly
 *      once: on truncation, on compaction or by raft_log_free.
 *   4. Appending is amortised O(1): when the tail hits cap, the live part is moved to
 *      the front if the dead head is at least half the array, else the array doubles.
 *      Either moves pointers handed out before, which is why ready records are built
 *      only in raft_ready() and messages hold indexes until then.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core_internal.h"

#define RAFT_LOG_CAP_MIN 64

void raft_log_init(struct raft_log *log, uint64_t prev_index, uint64_t prev_term)
{
	memset(log, 0, sizeof *log);
	log->compacted_index = prev_index;
	log->compacted_term = prev_term;
}

void raft_log_free(struct raft_log *log)
{
	for (size_t k = 0; k < log->count; k++)
		free(log->buf[log->head + k].owner);
	free(log->buf);
	memset(log, 0, sizeof *log);
}

uint64_t raft_log_first(const struct raft_log *log) { return log->compacted_index + 1; }

uint64_t raft_log_last(const struct raft_log *log) { return log->compacted_index + log->count; }

uint64_t raft_log_last_term(const struct raft_log *log)
{
	if (log->count == 0)
		return log->compacted_term;
	return log->buf[log->head + log->count - 1].term;
}

/* 0 when index is past the end or before the compaction point. */
uint64_t raft_log_term(const struct raft_log *log, uint64_t index)
{
	if (index == log->compacted_index)
		return log->compacted_term;
	if (index < log->compacted_index || index > raft_log_last(log))
		return 0;
	return log->buf[log->head + (index - log->compacted_index - 1)].term;
}

struct raft_entry *raft_log_at(const struct raft_log *log, uint64_t index)
{
	if (index <= log->compacted_index || index > raft_log_last(log))
		return NULL;
	struct raft_entry *e = &log->buf[log->head + (index - log->compacted_index - 1)];
	assert(e->index == index);
	return e;
}

/* Makes room for `more` pushes without moving anything during them. 0 or -ENOMEM. */
int raft_log_reserve(struct raft_log *log, size_t more)
{
	if (log->head + log->count + more <= log->cap)
		return 0;
	if (log->head > 0 && log->count + more <= log->cap && log->head >= log->cap / 2) {
		memmove(log->buf, log->buf + log->head, log->count * sizeof *log->buf);
		log->head = 0;
		return 0;
	}
	size_t cap = log->cap ? log->cap : RAFT_LOG_CAP_MIN;
	while (cap < log->count + more)
		cap *= 2;
	if (cap == log->cap && log->head > 0) {
		memmove(log->buf, log->buf + log->head, log->count * sizeof *log->buf);
		log->head = 0;
		return 0;
	}
	struct raft_entry *buf = malloc(cap * sizeof *buf);
	if (!buf)
		return -ENOMEM;
	if (log->count)
		memcpy(buf, log->buf + log->head, log->count * sizeof *buf);
	free(log->buf);
	log->buf = buf;
	log->cap = cap;
	log->head = 0;
	return 0;
}

/* Caller reserved room. Takes e->owner. */
void raft_log_push(struct raft_log *log, const struct raft_entry *e)
{
	assert(log->head + log->count < log->cap);
	assert(e->index == raft_log_last(log) + 1);
	assert(e->term >= raft_log_last_term(log));
	log->buf[log->head + log->count] = *e;
	log->count++;
}

void raft_log_truncate_after(struct raft_log *log, uint64_t index)
{
	assert(index >= log->compacted_index);
	while (raft_log_last(log) > index) {
		log->count--;
		free(log->buf[log->head + log->count].owner);
	}
}

void raft_log_compact(struct raft_log *log, uint64_t index)
{
	if (index <= log->compacted_index)
		return;
	assert(index <= raft_log_last(log));
	uint64_t term = raft_log_term(log, index);
	size_t n = (size_t)(index - log->compacted_index);
	for (size_t k = 0; k < n; k++)
		free(log->buf[log->head + k].owner);
	log->head += n;
	log->count -= n;
	log->compacted_index = index;
	log->compacted_term = term;
	if (log->count == 0)
		log->head = 0;
}

/* The largest index <= `index` whose term is <= `term` (etcd's findConflictByTerm);
 * an index at or below the compaction point comes back as is (terms unknown there). Terms never go
 * down along the log (invariant 2), so this is a binary search. */
uint64_t raft_log_find_conflict_by_term(const struct raft_log *log, uint64_t index, uint64_t term)
{
	if (index > raft_log_last(log))
		index = raft_log_last(log);
	if (index <= log->compacted_index || raft_log_term(log, index) <= term)
		return index;
	uint64_t lo = log->compacted_index; /* answer >= lo */
	uint64_t hi = index - 1;            /* answer <= hi */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		if (raft_log_term(log, mid) <= term)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}
