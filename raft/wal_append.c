/*
 * wal_append.c — the log's append path (lifecycle of a batch: wal.h; durability modes
 * and invariants 2-4: wal.c): records are staged into the staging batch, a batch is
 * submitted as whole 4 KiB blocks (pwrite + fdatasync on this thread, or write and
 * sync SQEs on the caller's ring), completions are matched to in-flight batches, and
 * durability is reported in index order. Also the log's statistics.
 *
 * Thread: the raft thread only.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "raft/wal_impl.h"

static uint64_t wal_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- append path */

int wal_stage(struct wal *w, uint64_t term, uint64_t index, const void *data, size_t size)
{
	if (w->failed)
		return w->failed;
	assert(index >= 1);
	assert(w->last_index == 0 || index == w->last_index + 1);
	assert(term >= w->last_term);
	if (size > UINT32_MAX || WAL_RECORD_HEADER_SIZE + size > w->cfg.batch_bytes_max)
		return -EMSGSIZE;
	uint32_t record_size = (uint32_t)(WAL_RECORD_HEADER_SIZE + size);
	struct wal_batch *b = w->staging;
	if (b->entry_count >= w->cfg.batch_entries_max ||
	    b->used - b->prefix_size + record_size > w->cfg.batch_bytes_max)
		return -EAGAIN;
	if (!b->seg || b->file_offset + b->used + record_size > b->seg->size_bytes) {
		if (b->entry_count > 0)
			return -EAGAIN;
		int rc = wal_segment_roll(w);
		if (rc)
			return rc;
	}
	if (b->entry_count == 0)
		b->first_index = index;
	size_t n = wal_record_encode_window(b->buf + b->used, w->batch_buf_size - b->used, term,
					    index, b->first_index, data, (uint32_t)size,
					    w->cfg.inflight_max);
	assert(n == record_size);
	b->used += record_size;
	b->entry_count++;
	b->last_index = index;

	struct wal_segment *s = b->seg;
	if (s->first_index == 0) {
		s->first_index = index;
		s->first_term = term;
	}
	s->last_index = index;
	uint64_t old_end = s->data_bytes;
	s->data_bytes = b->file_offset + b->used;
	w->stats.log_bytes += s->data_bytes - old_end;  /* padding before the batch too */
	if (w->first_index == 0) {
		w->first_index = index;
		w->first_term = term;
	}
	w->last_index = index;
	w->last_term = term;
	w->stats.entry_count++;
	w->stats.record_bytes += record_size;
	return 0;
}

int wal_stage_room(struct wal *w, size_t first_size, uint32_t *entries_left, uint64_t *bytes_left)
{
	*entries_left = 0;
	*bytes_left = 0;
	if (w->failed)
		return w->failed;
	struct wal_batch *b = w->staging;
	uint64_t first_record = WAL_RECORD_HEADER_SIZE + (uint64_t)first_size;
	if (b->entry_count == 0 && (!b->seg || b->file_offset + b->used + first_record > b->seg->size_bytes)) {
		int rc = wal_segment_roll(w);
		if (rc)
			return rc;
	}
	if (b->entry_count >= w->cfg.batch_entries_max)
		return 0;
	uint64_t in_batch = w->cfg.batch_bytes_max - (b->used - b->prefix_size);
	uint64_t in_segment = b->seg->size_bytes - (b->file_offset + b->used);
	*entries_left = w->cfg.batch_entries_max - b->entry_count;
	*bytes_left = in_batch < in_segment ? in_batch : in_segment;
	return 0;
}

bool wal_in_flight(const struct wal *w)
{
	return w->flight_count > 0;
}

uint32_t wal_in_flight_count(const struct wal *w)
{
	return w->flight_count;
}

uint32_t wal_inflight_max(const struct wal *w)
{
	return w->cfg.inflight_max;
}

bool wal_can_submit(const struct wal *w)
{
	return w->flight_count < w->cfg.inflight_max && w->staging->entry_count > 0;
}

uint32_t wal_staged_count(const struct wal *w)
{
	return w->staging->entry_count;
}

static int wal_batch_done(struct wal *w, struct wal_batch *b, uint64_t *durable_index);

/* WAL_SYNC_SYSCALL: write the batch and make it durable on this thread. */
static int wal_write_sync(struct wal *w, const struct wal_batch *b)
{
	size_t off = 0;
	while (off < b->write_size) {
		ssize_t n = pwrite(b->seg->fd, b->buf + off, b->write_size - off, (off_t)(b->file_offset + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 || (w->direct && (size_t)n != b->write_size - off))
			return -EIO;    /* O_DIRECT writes whole blocks or fails */
		off += (size_t)n;
	}
	while (fdatasync(b->seg->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

unsigned wal_cqes_per_batch(const struct wal *w, const struct io_uring *ring)
{
	if (w->sync_mode == WAL_SYNC_SYSCALL)
		return 0;
	if (w->sync_mode != WAL_SYNC_WRITE_LINKED_FDATASYNC)
		return 1;
	return (ring->features & IORING_FEAT_CQE_SKIP) ? 1 : 2;
}

/* Puts batch b's write SQE (and, linked, its fdatasync SQE) on the ring and submits.
 * 0, or -errno: the ring had no room (nothing queued, not sticky) or the submit
 * failed (sticky: the log's state is unknown). */
static int wal_submit_ring(struct wal *w, struct io_uring *ring, struct wal_batch *b,
			   uint64_t user_data, uint64_t tag)
{
	unsigned sqe_count = w->sync_mode == WAL_SYNC_WRITE_LINKED_FDATASYNC ? 2 : 1;
	/* With CQE_SKIP_SUCCESS on the linked write, a batch posts one CQE: the fdatasync's
	 * on success, or the write's own on failure (the kernel then also skips the
	 * cancelled fdatasync's). One completion, so one wake-up of the raft thread. */
	bool skip_write_cqe = sqe_count == 2 && wal_cqes_per_batch(w, ring) == 1;
	if (io_uring_sq_space_left(ring) < sqe_count) {
		int rc = io_uring_submit(ring);
		if (rc < 0)
			return rc;
		if (io_uring_sq_space_left(ring) < sqe_count)
			return -EBUSY;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	io_uring_prep_write(sqe, b->seg->fd, b->buf, b->write_size, b->file_offset);
	io_uring_sqe_set_data64(sqe, user_data);
	switch (w->sync_mode) {
	case WAL_SYNC_WRITE_LINKED_FDATASYNC:
		sqe->flags |= IOSQE_IO_LINK | (skip_write_cqe ? IOSQE_CQE_SKIP_SUCCESS : 0);
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_fsync(sqe, b->seg->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, user_data);
		break;
	case WAL_SYNC_WRITE_DSYNC:
		sqe->rw_flags = RWF_DSYNC;
		break;
	case WAL_SYNC_NONE:
		break;
	case WAL_SYNC_SYSCALL:
	case WAL_SYNC_DEFAULT:
		assert(!"wal: sync mode not resolved");
		break;
	}
	b->pending = skip_write_cqe ? 1 : (int)sqe_count;
	b->write_skipped = skip_write_cqe;
	b->write_done = false;
	b->done = false;
	b->tag = tag;
	b->submit_ns = wal_now_ns();
	int rc = io_uring_submit(ring);
	if (rc < 0) {
		/* The SQEs may or may not have reached the kernel: the log state is unknown. */
		w->failed = rc;
		return rc;
	}
	return 0;
}

/* Counts the batch just submitted in the statistics and histograms. */
static void wal_batch_account(struct wal *w, const struct wal_batch *b)
{
	rk_hist_record(&w->hists.batch_entries, b->entry_count);
	rk_hist_record(&w->hists.batch_bytes, b->used - b->prefix_size);
	w->stats.batch_count++;
	w->stats.write_bytes += b->write_size;
	w->stats.pad_bytes += b->write_size - b->used;
	if (b->entry_count > w->stats.batch_entries_max_seen)
		w->stats.batch_entries_max_seen = b->entry_count;
	if (b->used - b->prefix_size > w->stats.batch_bytes_max_seen)
		w->stats.batch_bytes_max_seen = b->used - b->prefix_size;
}

int wal_submit(struct wal *w, struct io_uring *ring, uint64_t user_data)
{
	if (w->failed)
		return w->failed;
	assert(w->flight_count < w->cfg.inflight_max);
	struct wal_batch *b = w->staging;
	if (b->entry_count == 0)
		return 0;
	uint64_t tag = 0;
	if (w->cfg.inflight_max > 1) {
		if (user_data & WAL_USER_DATA_TAG_MASK)
			return -EINVAL;
		tag = w->submit_seq % WAL_INFLIGHT_CAP;
		user_data |= tag;
	}
	b->write_size = (uint32_t)wal_round_up(b->used);
	assert(b->write_size <= w->batch_buf_size);
	assert(b->file_offset + b->write_size <= b->seg->size_bytes);
	assert(b->seg->fd >= 0);

	bool syscall = w->sync_mode == WAL_SYNC_SYSCALL;
	if (syscall) {
		b->submit_ns = wal_now_ns();
		int err = wal_write_sync(w, b);
		if (err) {
			w->failed = err;
			return err;
		}
		b->pending = 0;
	} else {
		int rc = wal_submit_ring(w, ring, b, user_data, tag);
		if (rc < 0)
			return rc;
	}
	wal_batch_account(w, b);

	/* The next buffer of the ring becomes the staging batch. It starts at the block
	 * holding this batch's end (inflight_max 1) or at the next boundary (invariant 2). */
	w->submit_seq++;
	w->flight_count++;
	if (w->flight_count > w->stats.inflight_peak)
		w->stats.inflight_peak = w->flight_count;
	struct wal_batch *next = &w->batches[(w->flight_head + w->flight_count) % w->batch_slots];
	w->staging = next;
	assert(next->used == 0 && next != b);
	uint64_t end = b->file_offset + b->used;
	next->seg = b->seg;
	next->entry_count = 0;
	next->first_index = next->last_index = 0;
	if (wal_aligned_batches(w)) {
		next->file_offset = wal_round_up(end);
		next->used = next->prefix_size = 0;
		return 0;
	}
	next->file_offset = wal_round_down(end);
	next->used = next->prefix_size = (uint32_t)(end - next->file_offset);
	memcpy(next->buf, b->buf + (next->file_offset - b->file_offset), next->used);
	if (syscall) {
		uint64_t durable;
		return wal_batch_done(w, b, &durable);
	}
	return 0;
}

static void wal_latency_record(struct wal *w, uint64_t ns)
{
	w->latency_ns[w->latency_pos] = ns;
	w->latency_pos = (w->latency_pos + 1) % WAL_LATENCY_SAMPLE_COUNT;
	if (w->latency_count < WAL_LATENCY_SAMPLE_COUNT)
		w->latency_count++;
	if (ns > w->stats.commit_latency_max_ns)
		w->stats.commit_latency_max_ns = ns;
	if (w->cfg.sync_mode != WAL_SYNC_NONE)
		rk_hist_record(&w->hists.sync_us, ns / 1000);
}

const struct wal_hists *wal_hists(const struct wal *w)
{
	return &w->hists;
}

int wal_complete(struct wal *w, const struct io_uring_cqe *cqe, uint64_t *durable_index)
{
	assert(w->flight_count > 0);
	struct wal_batch *b = NULL;
	if (w->cfg.inflight_max == 1) {
		b = wal_flight_at(w, 0);
	} else {
		uint64_t tag = cqe->user_data & WAL_USER_DATA_TAG_MASK;
		for (uint32_t k = 0; k < w->flight_count && !b; k++) {
			struct wal_batch *c = wal_flight_at(w, k);
			if (!c->done && c->tag == tag)
				b = c;
		}
	}
	if (!b || b->pending <= 0) {
		assert(!"wal: CQE of no in-flight batch");
		return -EINVAL;
	}
	int res = cqe->res;
	int err = 0;
	if (res < 0)
		err = res;
	else if (b->write_skipped)
		err = res == 0 ? 0 : -EIO; /* the fdatasync's 0, or the short write's own CQE */
	else if (!b->write_done && (uint32_t)res == b->write_size)
		b->write_done = true;
	else if (b->write_done && res == 0)
		;       /* the linked fdatasync */
	else
		err = -EIO;     /* short write */
	if (err && !w->failed)
		w->failed = err;
	b->pending--;
	if (b->pending > 0)
		return w->failed ? w->failed : 0;
	return wal_batch_done(w, b, durable_index);
}

/* Marks b (all its completions in) done and pops done batches off the head of the
 * flight FIFO. Returns as wal_complete() does. */
static int wal_batch_done(struct wal *w, struct wal_batch *b, uint64_t *durable_index)
{
	b->done = true;
	if (!w->failed) {
		wal_latency_record(w, wal_now_ns() - b->submit_ns);
		if (b != wal_flight_at(w, 0))
			w->stats.held_count++;   /* durable, but an earlier batch is not yet */
	}

	/* Pop done batches from the head only: durability is reported in index order. */
	bool advanced = false;
	while (w->flight_count > 0 && wal_flight_at(w, 0)->done) {
		struct wal_batch *h = wal_flight_at(w, 0);
		if (!w->failed) {
			w->durable_index = h->last_index;
			advanced = true;
		}
		w->flight_head = (w->flight_head + 1) % w->batch_slots;
		w->flight_count--;
		struct wal_segment *seg = h->seg;
		if (seg != w->staging->seg && seg->fd >= 0 && !wal_segment_busy(w, seg)) {
			close(seg->fd);
			seg->fd = -1;
		}
		memset(h->buf, 0, h->write_size);
		h->used = h->prefix_size = 0;
		h->entry_count = 0;
		h->seg = NULL;
		h->done = false;
	}
	if (w->failed)
		return w->failed;
	if (!advanced)
		return 0;
	*durable_index = w->durable_index;
	return 1;
}

int wal_flush_sync(struct wal *w)
{
	if (w->failed)
		return w->failed;
	assert(w->flight_count == 0);
	if (w->staging->entry_count == 0)
		return 0;
	int rc = wal_submit(w, &w->sync_ring, WAL_SYNC_USER_DATA);
	if (rc)
		return rc < 0 ? rc : 0; /* 1: WAL_SYNC_SYSCALL made it durable already */
	while (w->flight_count > 0) {
		struct io_uring_cqe *cqe;
		int wait = io_uring_wait_cqe(&w->sync_ring, &cqe);
		if (wait == -EINTR)
			continue;
		if (wait < 0) {
			w->failed = wait;
			return wait;
		}
		assert(wal_user_data_match(WAL_SYNC_USER_DATA, cqe->user_data));
		uint64_t durable;
		rc = wal_complete(w, cqe, &durable);
		io_uring_cqe_seen(&w->sync_ring, cqe);
	}
	return rc < 0 ? rc : 0;
}

uint64_t wal_first_index(const struct wal *w) { return w->first_index; }
uint64_t wal_first_term(const struct wal *w) { return w->first_term; }
uint64_t wal_last_index(const struct wal *w) { return w->last_index; }
uint64_t wal_durable_index(const struct wal *w) { return w->durable_index; }
uint64_t wal_last_term(const struct wal *w) { return w->last_term; }
bool wal_direct_io(const struct wal *w) { return w->direct; }
enum wal_sync_mode wal_sync_mode_get(const struct wal *w) { return w->sync_mode; }

static int wal_latency_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

void wal_stats_get(const struct wal *w, struct wal_stats *out)
{
	*out = w->stats;
	out->segment_count = w->seg_count;
	out->inflight_max = w->cfg.inflight_max;
	out->commit_latency_sample_count = w->latency_count;
	out->commit_latency_p50_ns = out->commit_latency_p99_ns = 0;
	if (w->latency_count == 0)
		return;
	uint64_t sorted[WAL_LATENCY_SAMPLE_COUNT];
	memcpy(sorted, w->latency_ns, w->latency_count * sizeof(sorted[0]));
	qsort(sorted, w->latency_count, sizeof(sorted[0]), wal_latency_cmp);
	out->commit_latency_p50_ns = sorted[(w->latency_count - 1) / 2];
	out->commit_latency_p99_ns = sorted[(w->latency_count - 1) * 99 / 100];
}
