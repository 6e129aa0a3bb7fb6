/*
 * wal_recover.c — recovery at wal_open: list the segment files, read and verify every
 * record in order (replaying each through the caller), decide whether damage is a torn
 * tail (invariant 4 in wal.c: at most W-1 later batches after it) or corruption of
 * acknowledged data (-EUCLEAN, naming file and offset), then repair: drop what follows
 * the tail, zero the torn bytes, and point the staging batch at the end of the log.
 * Segments wholly before cfg.skip_upto (in a snapshot) are not read.
 *
 * Thread: the caller of wal_open (main, before the raft thread starts:
 * raft/pipeline_recover.c).
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/wal_impl.h"

/* ---------------------------------------------------------------- recovery */

/* An intact record (or a non-zero later segment without one) found after the damage. */
struct wal_later {
	uint64_t batch;                 /* batch_first_index; UINT64_MAX - seg: anonymous */
	uint64_t index;                 /* 0 for an anonymous entry */
	uint32_t seg;
	uint64_t offset;
};

struct wal_scan {
	uint64_t expected_index;        /* 0: any (nothing seen yet) */
	uint64_t last_term;
	uint32_t last_window;           /* inflight_max recorded by the last intact record */
	bool damaged;                   /* a torn tail was found in an earlier segment */
	bool damage_is_gap;             /* an index jump at a segment start */
	uint64_t gap_index;
	uint32_t damage_seg;
	uint64_t damage_offset;
	uint64_t damage_end;            /* end of non-zero bytes to clear */
	/* Batches the damaged one may be (their records after the damage are not "later"),
	 * in the damage segment only. */
	bool excl_a_set, excl_b_set;
	uint64_t excl_a, excl_b;
	uint32_t window_max;            /* max inflight_max recorded around the damage */
	uint32_t later_count;           /* distinct later batches, at most WAL_INFLIGHT_CAP */
	struct wal_later later[WAL_INFLIGHT_CAP];
	uint32_t tail_seg;              /* last segment holding a record */
	bool have_tail;
	uint8_t tail_block[WAL_BLOCK_SIZE];
};

int wal_read_segment(struct wal *w, uint32_t i, uint8_t *buf, uint64_t file_size)
{
	char name[64];
	wal_segment_name(name, sizeof(name), w->segs[i]->seq, false);
	int fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t pos = 0;
	int rc = 0;
	while (pos < file_size) {
		ssize_t n = pread(fd, buf + pos, file_size - pos, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		pos += (uint64_t)n;
	}
	close(fd);
	memset(buf + file_size, 0, w->segs[i]->size_bytes - file_size);
	return rc;
}

static uint64_t wal_nonzero_end(const uint8_t *buf, uint64_t from, uint64_t to)
{
	while (to > from && buf[to - 1] == 0)
		to--;
	return to;
}

static bool wal_all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t k = 0; k < n; k++)
		if (p[k])
			return false;
	return true;
}

static void wal_later_add(struct wal_scan *sc, uint64_t batch, uint64_t index, uint32_t seg,
			  uint64_t offset)
{
	for (uint32_t k = 0; k < sc->later_count; k++)
		if (sc->later[k].batch == batch)
			return;
	if (sc->later_count < WAL_INFLIGHT_CAP)
		sc->later[sc->later_count++] = (struct wal_later){ batch, index, seg, offset };
}

/*
 * Collects the intact records in the non-zero bytes [from, end) of segment i, which lie
 * after the damage (invariant 4): their batches, unless they may be the damaged batch
 * itself (same segment only), count as later batches. Stops once WAL_INFLIGHT_CAP
 * later batches were seen: more than any allowance. Intact records are skipped whole,
 * so a record-like payload inside one is never mistaken for a record.
 */
static void wal_collect_after_damage(struct wal *w, uint32_t i, const uint8_t *buf,
				     uint64_t from, uint64_t end, struct wal_scan *sc)
{
	bool same = i == sc->damage_seg;
	uint32_t before = sc->later_count;
	bool any = false;
	for (uint64_t off = from; off + 4 <= end && sc->later_count < WAL_INFLIGHT_CAP;) {
		if (wal_get_le32(buf + off) != WAL_RECORD_MAGIC) {
			off++;
			continue;
		}
		struct wal_record_view q;
		long n = wal_record_decode(buf + off, w->segs[i]->size_bytes - off, &q);
		if (n < 0) {
			off++;
			continue;
		}
		any = true;
		if (q.inflight_max > sc->window_max)
			sc->window_max = q.inflight_max;
		bool excluded = same && ((sc->excl_a_set && q.batch_first_index == sc->excl_a) ||
					 (sc->excl_b_set && q.batch_first_index == sc->excl_b));
		if (same && !sc->excl_b_set && !sc->damage_is_gap) {
			/* Nothing seen before the damage: the first intact record's batch may be
			 * the damaged one. */
			sc->excl_b_set = true;
			sc->excl_b = q.batch_first_index;
			excluded = true;
		}
		if (!excluded)
			wal_later_add(sc, q.batch_first_index, q.index, i, off);
		off += (uint64_t)n;
	}
	if (!same && !any && sc->later_count == before)
		wal_later_add(sc, UINT64_MAX - i, 0, i, from);
}

/* After the scan: is the damage a torn tail (at most W-1 later batches)? */
static int wal_check_torn(struct wal *w, const struct wal_scan *sc)
{
	uint32_t window = sc->window_max;
	if (sc->last_window > window)
		window = sc->last_window;
	if (w->cfg.inflight_max > window)
		window = w->cfg.inflight_max;
	uint32_t allowed = window - 1;
	if (sc->later_count <= allowed)
		return 0;
	const struct wal_later *x = &sc->later[allowed];
	char name[64], later_name[64];
	wal_segment_name(name, sizeof(name), w->segs[sc->damage_seg]->seq, false);
	wal_segment_name(later_name, sizeof(later_name), w->segs[x->seg]->seq, false);
	if (sc->damage_is_gap) {
		wal_report(&w->cfg, "index gap in the log: %s/log/%s offset %" PRIu64
			   " holds index %" PRIu64 ", expected %" PRIu64 " (%u later batches "
			   "follow, at most %u can be a torn tail)", w->dir_path, name,
			   sc->damage_offset, sc->gap_index, sc->expected_index,
			   sc->later_count, allowed);
	} else if (x->seg == sc->damage_seg) {
		wal_report(&w->cfg, "corrupt record in the middle of the log: %s/log/%s offset %"
			   PRIu64 " is damaged but an intact record of a later batch (index %"
			   PRIu64 ") follows at offset %" PRIu64 " (more than %u later batches)",
			   w->dir_path, name, sc->damage_offset, x->index, x->offset, allowed);
	} else {
		wal_report(&w->cfg, "corrupt record in the middle of the log: %s/log/%s offset %"
			   PRIu64 " is damaged but later segment %s holds data (at its offset %"
			   PRIu64 "; more than %u later batches)", w->dir_path, name,
			   sc->damage_offset, later_name, x->offset, allowed);
	}
	return -EUCLEAN;
}

static void wal_mark_damage(struct wal_scan *sc, uint32_t i, uint64_t pos, uint64_t end)
{
	sc->damaged = true;
	sc->damage_seg = i;
	sc->damage_offset = pos;
	sc->damage_end = end;
}

/*
 * Zero padding from pos up to a boundary where the next batch starts (its first record,
 * index expected_index)? Returns that boundary, or 0. (Padding shorter than a magic
 * makes the decode at pos see the next record's bytes, so any failure is checked, not
 * only a zero magic.)
 */
static uint64_t wal_padding_end(const uint8_t *buf, uint64_t pos, uint64_t size,
				uint64_t expected_index)
{
	uint64_t q = wal_round_up(pos);
	struct wal_record_view u;
	if (q > pos && q < size && wal_all_zero(buf + pos, q - pos) &&
	    wal_record_decode(buf + q, size - q, &u) > 0 &&
	    u.index == expected_index && u.batch_first_index == u.index)
		return q;
	return 0;
}

static int wal_scan_segment(struct wal *w, uint32_t i, uint8_t *buf, struct wal_scan *sc,
			    wal_replay_fn replay, void *ctx)
{
	struct wal_segment *s = w->segs[i];
	char name[64];
	wal_segment_name(name, sizeof(name), s->seq, false);
	if (sc->damaged) {
		uint64_t end = wal_nonzero_end(buf, 0, s->size_bytes);
		if (end > 0)
			wal_collect_after_damage(w, i, buf, 0, end, sc);
		return 0;
	}
	uint64_t pos = 0;
	uint64_t batch_a = 0;
	bool have_a = false;
	while (pos < s->size_bytes) {
		struct wal_record_view v;
		long n = wal_record_decode(buf + pos, s->size_bytes - pos, &v);
		if (n < 0 && sc->expected_index) {
			uint64_t q = wal_padding_end(buf, pos, s->size_bytes, sc->expected_index);
			if (q) {
				pos = q;
				continue;
			}
		}
		if (n < 0)
			break;
		if (pos == 0 && sc->expected_index && v.index > sc->expected_index &&
		    v.term >= sc->last_term) {
			/* A jump at a segment start: the batch(es) before it may have been lost
			 * in flight. A torn tail if few enough batches follow (checked later). */
			sc->damage_is_gap = true;
			sc->gap_index = v.index;
			wal_mark_damage(sc, i, 0, wal_nonzero_end(buf, 0, s->size_bytes));
			wal_collect_after_damage(w, i, buf, 0, sc->damage_end, sc);
			return 0;
		}
		if ((sc->expected_index && v.index != sc->expected_index) || v.index == 0) {
			wal_report(&w->cfg, "index gap in the log: %s/log/%s offset %" PRIu64
				   " holds index %" PRIu64 ", expected %" PRIu64, w->dir_path,
				   name, pos, v.index, sc->expected_index);
			return -EUCLEAN;
		}
		if (v.term < sc->last_term) {
			wal_report(&w->cfg, "term goes down in the log: %s/log/%s offset %" PRIu64
				   " index %" PRIu64 " term %" PRIu64 " < %" PRIu64, w->dir_path,
				   name, pos, v.index, v.term, sc->last_term);
			return -EUCLEAN;
		}
		if (replay) {
			int rc = replay(ctx, v.term, v.index, v.data, v.size);
			if (rc)
				return rc;
		}
		if (s->first_index == 0) {
			s->first_index = v.index;
			s->first_term = v.term;
		}
		s->last_index = v.index;
		sc->expected_index = v.index + 1;
		sc->last_term = v.term;
		sc->last_window = v.inflight_max;
		batch_a = v.batch_first_index;
		have_a = true;
		pos += (uint64_t)n;
	}
	s->data_bytes = pos;
	if (pos > 0) {
		sc->tail_seg = i;
		sc->have_tail = true;
		uint64_t block = wal_round_down(pos);
		memset(sc->tail_block, 0, sizeof(sc->tail_block));
		memcpy(sc->tail_block, buf + block, pos - block);
	}
	uint64_t end = wal_nonzero_end(buf, pos, s->size_bytes);
	if (end == pos)
		return 0;
	wal_mark_damage(sc, i, pos, end);
	sc->excl_a_set = have_a;
	sc->excl_a = batch_a;
	sc->excl_b_set = sc->expected_index != 0;
	sc->excl_b = sc->expected_index;
	wal_collect_after_damage(w, i, buf, pos + 1, end, sc);
	return 0;
}

static int wal_seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Lists log.<seq> files (deleting *.tmp leftovers) into w->segs, oldest first. */
static int wal_list_segments(struct wal *w)
{
	int dfd = dup(w->dir_fd);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	uint64_t *seqs = NULL;
	uint32_t count = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "log.", 4) != 0)
			continue;
		if (len == WAL_SEGMENT_NAME_LEN + 4 && strcmp(e->d_name + WAL_SEGMENT_NAME_LEN,
							      ".tmp") == 0) {
			unlinkat(w->dir_fd, e->d_name, 0);
			continue;
		}
		if (len != WAL_SEGMENT_NAME_LEN ||
		    strspn(e->d_name + 4, "0123456789") != WAL_SEGMENT_NAME_LEN - 4)
			continue;
		if (count == WAL_SEGMENT_COUNT_MAX) {
			rc = -EMFILE;
			break;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *grown = realloc(seqs, cap * sizeof(*seqs));
			if (!grown) {
				rc = -ENOMEM;
				break;
			}
			seqs = grown;
		}
		seqs[count++] = strtoull(e->d_name + 4, NULL, 10);
	}
	closedir(d);
	if (rc == 0 && count > 0) {
		qsort(seqs, count, sizeof(*seqs), wal_seq_cmp);
		for (uint32_t k = 0; k < count && rc == 0; k++) {
			char name[64];
			struct stat st;
			wal_segment_name(name, sizeof(name), seqs[k], false);
			if (fstatat(w->dir_fd, name, &st, 0) < 0) {
				rc = -errno;
				break;
			}
			uint64_t size = wal_round_up((uint64_t)st.st_size);
			if (size < w->cfg.segment_size_bytes)
				size = w->cfg.segment_size_bytes;
			rc = wal_segment_append(w, seqs[k], size, -1);
		}
	}
	free(seqs);
	return rc;
}

/* Zeroes [from, to) of a segment and brings the file to its full size, then syncs. */
static int wal_segment_repair(struct wal *w, struct wal_segment *s, uint64_t from,
			      uint64_t to)
{
	char name[64];
	wal_segment_name(name, sizeof(name), s->seq, false);
	int fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	bool changed = false;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (to > (uint64_t)st.st_size)
		to = (uint64_t)st.st_size;
	if (from < to) {
		rc = wal_zero_range(fd, w->prep.zero_chunk, from, to);
		changed = true;
	}
	if (rc == 0 && (uint64_t)st.st_size < s->size_bytes) {
		changed = true;
		if (fallocate(fd, 0, 0, (off_t)s->size_bytes) < 0 && errno != EOPNOTSUPP)
			rc = -errno;
		if (rc == 0)
			rc = wal_zero_range(fd, w->prep.zero_chunk, (uint64_t)st.st_size,
					    s->size_bytes);
	}
	if (rc == 0 && changed && fdatasync(fd) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

/* The first record of segment i (read from its first block): false when it has none
 * there (empty, damaged, or a first record larger than a block). */
static bool wal_segment_first(struct wal *w, uint32_t i, struct wal_record_view *v)
{
	char name[64];
	uint8_t block[WAL_BLOCK_SIZE];
	wal_segment_name(name, sizeof(name), w->segs[i]->seq, false);
	int fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = pread(fd, block, sizeof(block), 0);
	close(fd);
	return n > 0 && wal_record_decode(block, (size_t)n, v) > 0;
}

/*
 * cfg.skip_upto: segment i holds only records <= skip_upto when the next segment's
 * first record (which also shows that segment i's records run on to it) is <=
 * skip_upto + 1. Such a segment is not read: its records are not replayed, its
 * bounds come from the first records of it and of the next, and its byte count is
 * taken as 0. Never the last segment; never once damage was seen.
 */
static bool wal_segment_skippable(struct wal *w, uint32_t i, const struct wal_scan *sc,
				  struct wal_record_view *first, struct wal_record_view *next)
{
	if (w->cfg.skip_upto == 0 || i + 1 >= w->seg_count || sc->damaged)
		return false;
	if (!wal_segment_first(w, i, first) || !wal_segment_first(w, i + 1, next))
		return false;
	if ((sc->expected_index && first->index != sc->expected_index) || first->term < sc->last_term)
		return false;
	return next->index > first->index && next->index <= w->cfg.skip_upto + 1 && next->term >= first->term;
}

/* Reads and verifies every segment in order, replaying each record; on damage decides
 * whether it is a torn tail (0) or not (-EUCLEAN, reported). Changes nothing on disk. */
static int wal_recover_scan(struct wal *w, struct wal_scan *sc, wal_replay_fn replay, void *ctx)
{
	int rc = 0;
	uint8_t *buf = NULL;
	uint64_t buf_size = 0;
	for (uint32_t i = 0; i < w->seg_count && rc == 0; i++) {
		struct wal_segment *s = w->segs[i];
		struct wal_record_view first, next;
		if (wal_segment_skippable(w, i, sc, &first, &next)) {
			s->first_index = first.index;
			s->first_term = first.term;
			s->last_index = next.index - 1;
			s->data_bytes = 0;
			sc->expected_index = next.index;
			sc->last_term = first.term;
			w->stats.recovery_skipped_segments++;
			continue;
		}
		if (s->size_bytes > buf_size) {
			free(buf);
			buf_size = s->size_bytes;
			buf = malloc(buf_size);
			if (!buf) {
				rc = -ENOMEM;
				break;
			}
		}
		char name[64];
		struct stat st;
		wal_segment_name(name, sizeof(name), s->seq, false);
		if (fstatat(w->dir_fd, name, &st, 0) < 0) {
			rc = -errno;
			break;
		}
		rc = wal_read_segment(w, i, buf, (uint64_t)st.st_size);
		if (rc == 0)
			rc = wal_scan_segment(w, i, buf, sc, replay, ctx);
	}
	free(buf);
	if (rc == 0 && sc->damaged)
		rc = wal_check_torn(w, sc);
	return rc;
}

/* After a successful scan: drops what follows the tail, zeroes a torn tail, reopens the
 * tail segment for writing and sets the log's bounds and staging batch. */
static int wal_recover_repair(struct wal *w, const struct wal_scan *sc)
{
	int rc = 0;
	/* Everything verified: now repair. Drop segments after the tail, newest first, so a
	 * crash in between leaves a valid log. */
	uint32_t keep = sc->have_tail ? sc->tail_seg + 1 : 0;
	bool deleted = false;
	while (w->seg_count > keep) {
		rc = wal_segment_delete(w, w->seg_count - 1);
		if (rc)
			return rc;
		deleted = true;
	}
	if (deleted && (rc = wal_sync_dir(w->dir_fd)))
		return rc;
	if (sc->damaged && sc->have_tail && sc->damage_seg == sc->tail_seg) {
		w->stats.recovery_truncated_bytes = sc->damage_end - sc->damage_offset;
		fprintf(stderr, "wal: truncated a torn tail of %" PRIu64 " bytes at offset %"
			PRIu64 " of segment %" PRIu64 "\n", w->stats.recovery_truncated_bytes,
			sc->damage_offset, w->segs[sc->damage_seg]->seq);
	}
	struct wal_segment *tail = wal_tail(w);
	if (tail) {
		uint64_t from = tail->size_bytes, to = tail->size_bytes;
		if (sc->damaged && sc->damage_seg == sc->tail_seg) {
			from = sc->damage_offset;
			to = wal_round_up(sc->damage_end);
		}
		rc = wal_segment_repair(w, tail, from, to);
		if (rc)
			return rc;
		rc = wal_segment_open(w, tail->seq, w->direct);
		if (rc < 0)
			return rc;
		tail->fd = rc;
		w->next_seq = tail->seq + 1;
	} else {
		w->next_seq = 1;
	}
	for (uint32_t i = 0; i < w->seg_count; i++)
		w->stats.log_bytes += w->segs[i]->data_bytes;
	wal_first_refresh(w);
	if (w->stats.recovery_skipped_segments)
		fprintf(stderr, "wal: %" PRIu64 " segments before index %" PRIu64 " not read (in the snapshot)\n",
			w->stats.recovery_skipped_segments, w->cfg.skip_upto + 1);
	w->last_index = sc->expected_index ? sc->expected_index - 1 : 0;
	w->durable_index = w->last_index;
	w->last_term = sc->last_term;
	wal_staging_reset(w, sc->tail_block);
	return 0;
}

int wal_recover(struct wal *w, wal_replay_fn replay, void *ctx)
{
	int rc = wal_list_segments(w);
	if (rc)
		return rc;
	struct wal_scan *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	rc = wal_recover_scan(w, sc, replay, ctx);
	if (rc == 0)
		rc = wal_recover_repair(w, sc);
	free(sc);
	return rc;
}
