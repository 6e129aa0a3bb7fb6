/*
 * wal_segment.c — the log's segment files: naming, opening and writing them, the list
 * of live segments (oldest first; the last one is written), where the staging batch
 * starts in the tail segment, the roll to a fresh segment the preparer made, and the
 * two ways the log shrinks: truncating a suffix (Raft conflicts) and dropping whole
 * segments behind a snapshot (compaction, in one step or detached and removed later).
 *
 * Thread: the raft thread, except wal_remove_segments (any thread, no struct wal).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "raft/wal_impl.h"

void wal_segment_name(char *out, size_t cap, uint64_t seq, bool tmp)
{
	snprintf(out, cap, "log.%020" PRIu64 "%s", seq, tmp ? ".tmp" : "");
}

/* ---------------------------------------------------------------- file helpers */

int wal_pwrite_all(int fd, const void *buf, size_t size, uint64_t offset)
{
	const uint8_t *p = buf;
	while (size > 0) {
		ssize_t n = pwrite(fd, p, size, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		size -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

/* Writes zeros over [from, to); both block-aligned when fd is O_DIRECT. */
int wal_zero_range(int fd, const uint8_t *zero_chunk, uint64_t from, uint64_t to)
{
	while (from < to) {
		uint64_t n = to - from;
		if (n > WAL_ZERO_CHUNK_BYTES)
			n = WAL_ZERO_CHUNK_BYTES;
		int rc = wal_pwrite_all(fd, zero_chunk, n, from);
		if (rc)
			return rc;
		from += n;
	}
	return 0;
}

int wal_sync_dir(int dir_fd)
{
	return fsync(dir_fd) ? -errno : 0;
}

int wal_segment_open(struct wal *w, uint64_t seq, bool direct)
{
	char name[64];
	wal_segment_name(name, sizeof(name), seq, false);
	int fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
	return fd < 0 ? -errno : fd;
}

/* ---------------------------------------------------------------- segments list */

int wal_segment_append(struct wal *w, uint64_t seq, uint64_t size_bytes, int fd)
{
	if (w->seg_count == WAL_SEGMENT_COUNT_MAX)
		return -EMFILE;
	if (w->seg_count == w->seg_cap) {
		uint32_t cap = w->seg_cap ? w->seg_cap * 2 : 16;
		struct wal_segment **segs = realloc(w->segs, cap * sizeof(*segs));
		if (!segs)
			return -ENOMEM;
		w->segs = segs;
		w->seg_cap = cap;
	}
	struct wal_segment *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->seq = seq;
	s->size_bytes = size_bytes;
	s->fd = fd;
	w->segs[w->seg_count++] = s;
	return 0;
}

void wal_segment_free(struct wal_segment *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/* Unlinks the file of segment i and removes it from the list (no directory sync). */
int wal_segment_delete(struct wal *w, uint32_t i)
{
	char name[64];
	struct wal_segment *s = w->segs[i];
	wal_segment_name(name, sizeof(name), s->seq, false);
	if (unlinkat(w->dir_fd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	w->stats.log_bytes -= s->data_bytes;
	wal_segment_free(s);
	memmove(&w->segs[i], &w->segs[i + 1], (w->seg_count - i - 1) * sizeof(w->segs[0]));
	w->seg_count--;
	return 0;
}

/* Whether an in-flight batch still writes segment s (its descriptor must stay open). */
bool wal_segment_busy(struct wal *w, const struct wal_segment *s)
{
	for (uint32_t k = 0; k < w->flight_count; k++)
		if (wal_flight_at(w, k)->seg == s)
			return true;
	return false;
}

/* Points the staging batch at the end of the tail segment: with inflight_max 1 it
 * starts with the tail block (rewritten unchanged), otherwise at the next boundary. */
void wal_staging_reset(struct wal *w, const uint8_t *tail_block)
{
	struct wal_batch *b = w->staging;
	memset(b->buf, 0, wal_round_up(b->used));
	struct wal_segment *tail = wal_tail(w);
	b->seg = tail;
	b->entry_count = 0;
	b->first_index = 0;
	b->last_index = 0;
	if (!tail) {
		b->file_offset = 0;
		b->used = b->prefix_size = 0;
		return;
	}
	if (wal_aligned_batches(w)) {
		b->file_offset = wal_round_up(tail->data_bytes);
		b->used = b->prefix_size = 0;
		return;
	}
	b->file_offset = wal_round_down(tail->data_bytes);
	b->used = b->prefix_size = (uint32_t)(tail->data_bytes - b->file_offset);
	if (b->used)
		memcpy(b->buf, tail_block, b->used);
}

/* Starts a fresh segment for the (empty) staging batch. */
int wal_segment_roll(struct wal *w)
{
	struct wal_batch *b = w->staging;
	assert(b->entry_count == 0);
	bool stalled;
	wal_preparer_request(&w->prep, w->next_seq);
	int fd = wal_preparer_take(&w->prep, w->next_seq, &stalled);
	if (stalled)
		w->stats.segment_roll_stall_count++;
	if (fd < 0) {
		w->stats.segment_prepare_fail_count++;
		return fd;
	}
	int rc = wal_segment_append(w, w->next_seq, w->prep.size_bytes, fd);
	if (rc) {
		close(fd);
		return rc;
	}
	w->next_seq++;
	/* The old tail's descriptor stays open while an in-flight batch writes it. */
	if (w->seg_count >= 2) {
		struct wal_segment *old = w->segs[w->seg_count - 2];
		if (old->fd >= 0 && !wal_segment_busy(w, old)) {
			close(old->fd);
			old->fd = -1;
		}
	}
	memset(b->buf, 0, wal_round_up(b->used));
	b->seg = wal_tail(w);
	b->file_offset = 0;
	b->used = b->prefix_size = 0;
	w->stats.segment_roll_count++;
	wal_preparer_request(&w->prep, w->next_seq);
	return 0;
}

/* ---------------------------------------------------------------- truncate / compact */

int wal_truncate_suffix(struct wal *w, uint64_t index)
{
	if (w->failed)
		return w->failed;
	assert(w->flight_count == 0);
	assert(w->staging->entry_count == 0);
	if (index >= w->last_index)
		return 0;
	int rc = 0;
	bool deleted = false;
	/* Whole segments past index go first, newest first: each step is a valid log. */
	while (w->seg_count > 1 && (w->segs[w->seg_count - 1]->first_index == 0 ||
				    w->segs[w->seg_count - 1]->first_index > index)) {
		if ((rc = wal_segment_delete(w, w->seg_count - 1)))
			return rc;
		deleted = true;
	}
	if (deleted && (rc = wal_sync_dir(w->dir_fd)))
		return rc;
	struct wal_segment *tail = wal_tail(w);
	assert(tail);
	if (tail->fd < 0) {
		rc = wal_segment_open(w, tail->seq, w->direct);
		if (rc < 0)
			return rc;
		tail->fd = rc;
	}
	/* Find where record index+1 starts in the tail segment. */
	uint8_t *buf;
	if (posix_memalign((void **)&buf, WAL_BLOCK_SIZE, tail->size_bytes))
		return -ENOMEM;
	rc = wal_read_segment(w, w->seg_count - 1, buf, tail->data_bytes);
	uint64_t pos = 0, scan = 0, keep_last = 0, keep_term = 0;
	while (rc == 0 && scan < tail->data_bytes) {
		struct wal_record_view v;
		long n = wal_record_decode(buf + scan, tail->data_bytes - scan, &v);
		if (n < 0 && scan % WAL_BLOCK_SIZE) {
			scan = wal_round_up(scan);      /* padding between batches */
			continue;
		}
		assert(n > 0);  /* the tail was verified or written by us */
		if (v.index > index)
			break;
		keep_last = v.index;
		keep_term = v.term;
		scan += (uint64_t)n;
		pos = scan;     /* the cut: end of the last kept record */
	}
	if (rc)
		goto out;
	/* One write: the kept prefix of pos's block, then zeros to the old end. */
	uint64_t from = wal_round_down(pos), to = wal_round_up(tail->data_bytes);
	memset(buf + pos, 0, to - pos);
	rc = wal_pwrite_all(tail->fd, buf + from, to - from, from);
	if (rc == 0 && fdatasync(tail->fd) < 0)
		rc = -errno;
	if (rc) {
		w->failed = rc;
		goto out;
	}
	w->stats.log_bytes -= tail->data_bytes - pos;
	tail->data_bytes = pos;
	if (keep_last == 0) {
		tail->first_index = tail->last_index = tail->first_term = 0;
	} else {
		tail->last_index = keep_last;
	}
	w->last_index = keep_last ? keep_last : (w->seg_count > 1 ?
						 w->segs[w->seg_count - 2]->last_index : 0);
	if (keep_last)
		w->last_term = keep_term;
	/* A log truncated to nothing forgets its terms: the next record may start anew. */
	wal_first_refresh(w);
	if (w->last_index == 0)
		w->last_term = 0;
	if (w->durable_index > w->last_index)
		w->durable_index = w->last_index;
	wal_staging_reset(w, buf + from);
out:
	free(buf);
	return rc;
}

int wal_detach_prefix(struct wal *w, uint64_t index, uint64_t *seqs, int max)
{
	int n = 0;
	while (w->seg_count > 1 && n < max) {
		struct wal_segment *s = w->segs[0];
		if ((s->first_index != 0 && s->last_index > index) || wal_segment_busy(w, s))
			break;
		seqs[n++] = s->seq;
		w->stats.log_bytes -= s->data_bytes;
		wal_segment_free(s);
		memmove(&w->segs[0], &w->segs[1], (w->seg_count - 1) * sizeof(w->segs[0]));
		w->seg_count--;
	}
	wal_first_refresh(w);
	return n;
}

int wal_remove_segments(const char *dir, const uint64_t *seqs, int count)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/log", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* Paced (core/file.h): the freed extents of a whole segment at once would stall
	 * the next fdatasync on a disk that discards. Renamed to its .tmp name first,
	 * which wal_open deletes. */
	const struct rk_delete_pace pace = RK_DELETE_PACE_DEFAULT;
	int rc = 0, removed = 0;
	for (int i = 0; i < count && rc == 0; i++) {
		char name[64], doomed[64];
		wal_segment_name(name, sizeof(name), seqs[i], false);
		wal_segment_name(doomed, sizeof(doomed), seqs[i], true);
		int del = rk_delete_paced(dfd, name, doomed, &pace);
		if (del < 0)
			rc = del;
		else
			removed += del; /* 0: gone already (a removal before a crash) */
	}
	close(dfd);
	return rc < 0 ? rc : removed;
}

int wal_compact_prefix(struct wal *w, uint64_t index)
{
	int deleted = 0, rc = 0;
	while (w->seg_count > 1) {
		struct wal_segment *s = w->segs[0];
		if (s->first_index != 0 && s->last_index > index)
			break;
		if (wal_segment_busy(w, s))
			break;
		if ((rc = wal_segment_delete(w, 0)))
			return rc;
		deleted++;
	}
	if (deleted && (rc = wal_sync_dir(w->dir_fd)))
		return rc;
	wal_first_refresh(w);
	return deleted;
}
