/*
 * wal.c — the write-ahead log (see wal.h for the API and the batch lifecycle).
 *
 * What this file owns: the segment files under <dir>/log/, inflight_max + 1 4 KiB-
 * aligned batch buffers (one staging, up to inflight_max in flight, used round-robin),
 * the list of live segments, and one helper thread (the "preparer") that creates the
 * next segment file off the hot path.
 *
 * ON-DISK LAYOUT
 *
 *   <dir>/log/log.<seq, 20 digits>      a segment; seq counts up from 1
 *   <dir>/log/log.<seq>.tmp             a segment being prepared; deleted on open
 *
 *   A segment is segment_size_bytes long (64 MiB by default), fully allocated and
 *   zero-filled before its first record is written, so an append never changes the
 *   file size or its extents (fdatasync then flushes data only). Records are packed
 *   back to back within a batch from offset 0; with inflight_max > 1 every batch starts on a
 *   4 KiB boundary and the rest of the previous batch's last block is zero padding
 *   (written by that batch); unwritten space is zero. A batch never spans two
 *   segments: when a batch's first record does not fit the rest of the segment, the
 *   batch goes to the next segment and the rest of the old one stays zero. Segments are
 *   named by sequence number, not first index, because the helper creates them before
 *   the first index is known and renaming on the hot path would cost a directory sync.
 *
 *   Record (little-endian):
 *     0   u32  magic "RKWL"            zero magic = unwritten space
 *     4   u16  version (1)
 *     6   u16  flags: bits 0..2 = the writer's inflight_max - 1 (0 with
 *                  inflight_max 1, byte-identical to the old format); others 0
 *     8   u32  payload size
 *     12  u32  CRC32C of bytes 0..40 (this field taken as 0) and the payload
 *     16  u64  term
 *     24  u64  index
 *     32  u64  batch_first_index       index of the first record of the same batch
 *     40  ...  payload
 *
 * INVARIANTS
 *
 *   1. Indexes are contiguous across the whole log and terms never go down (asserted
 *      on staging, verified on recovery).
 *   2. At most inflight_max batches are in flight; they form a FIFO in index order.
 *      inflight_max == 1: a batch is written as whole 4 KiB blocks from a 4 KiB-aligned
 *      offset: it starts at the block holding the end of the previous batch and
 *      rewrites that block's bytes unchanged (the partial tail block is kept in
 *      memory), so a torn rewrite can only damage the new batch. inflight_max > 1:
 *      every batch starts at a 4 KiB boundary (nothing is rewritten), so two writes in
 *      flight never touch the same block and neither can damage the other.
 *   3. Bytes of a batch buffer at or past `used` are zero, so the padding of the last
 *      block writes zeros over zeros.
 *   4. A batch is durable when its own write and its own sync (on its own segment's
 *      file) completed. durable_index only moves over a prefix of batches that are all
 *      durable, so nothing is acknowledged past a batch that is not on the disk. Hence
 *      after a crash, damage can only lie in the last W = inflight_max batches, and
 *      everything after the first damage is unacknowledged. Recovery truncates at the
 *      first damage when the intact records after it belong to the damaged batch or to
 *      at most W-1 later batches (W = max(configured, recorded in their flags)); the
 *      damaged batch is the batch of the last intact record or one starting exactly at
 *      the damage. A batch never spans segments, so records in a later segment always
 *      belong to later batches (a later segment with non-zero bytes but no intact
 *      record counts as one later batch). An index that jumps forward at the start of
 *      a segment is damage at that point (the whole batch before it was lost); W-1
 *      later batches after it are allowed likewise. Anything else is corruption of
 *      acknowledged data and wal_open fails with -EUCLEAN naming the file and offset.
 *      Damage confined to the last W batches looks exactly like a torn write of them
 *      and is truncated: it can never have been reported durable unless the disk lied.
 *      Zero padding before a 4 KiB boundary where a batch with the expected index
 *      starts is skipped; zeros running to the end of a segment end it.
 *   5. Only the raft thread touches struct wal, except the `preparer` sub-struct,
 *      which is shared with the helper under its mutex (taken only when rolling).
 *
 * SEGMENT PREPARATION (helper thread)
 *
 *     IDLE ──request(seq)──► RUNNING ──ok──► READY ──take──► IDLE
 *                               └──error──► FAILED ──take (returns -errno)──► IDLE
 *
 *   The raft thread requests segment seq+1 as soon as it starts writing segment seq,
 *   so a 64 MiB segment is normally ready long before it is needed. A roll that finds
 *   the helper still RUNNING waits for it (counted in segment_roll_stall_count). A
 *   failed preparation (ENOSPC) makes wal_stage() return the error without staging;
 *   the next wal_stage() requests a new attempt, so writes resume when space returns.
 *
 * DURABILITY
 *
 *   WAL_SYNC_SYSCALL (the default, see wal_sync_mode_default below): wal_submit()
 *   itself calls pwrite(2) and fdatasync(2) on the caller's thread and returns 1 when
 *   the batch is durable; no CQE, one batch at a time.
 *   WAL_SYNC_WRITE_LINKED_FDATASYNC: write SQE with IOSQE_IO_LINK, then an fdatasync
 *   SQE: two CQEs, or one where the kernel has CQE_SKIP_SUCCESS (the write's is skipped
 *   unless it fails). WAL_SYNC_WRITE_DSYNC: one write SQE with RWF_DSYNC: one CQE.
 *   Registered buffers are not used: the ring belongs to the caller and its
 *   fixed-buffer table is the caller's to manage.
 *
 *   With several batches in flight each has its own write and sync SQEs tagged
 *   user_data | tag (see wal.h). CQEs may arrive in any order; a batch whose CQEs are
 *   all in is "done", and done batches are popped from the head of the FIFO only, which
 *   is what makes durability reports come in index order. On a segment roll the old
 *   segment's last batch and the new segment's first batch may both be in flight: each
 *   syncs its own file, and the old file's descriptor is closed only when no in-flight
 *   batch targets it any more.
 *
 * FILESYSTEMS
 *
 *   wal_open() probes O_DIRECT by creating a file in log/. EINVAL (some overlayfs,
 *   tmpfs before Linux 6.6) selects buffered writes + fdatasync with a warning on
 *   stderr. tmpfs is warned about in any case: it does not survive a reboot.
 */
#include "raft/wal.h"

#include <assert.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/crc32c.h"

#define WAL_RECORD_MAGIC 0x4c574b52u    /* bytes "RKWL" read little-endian */
#define WAL_RECORD_VERSION 1u
#define WAL_ZERO_CHUNK_BYTES (1u << 20)
#define WAL_LATENCY_SAMPLE_COUNT 1024u
#define WAL_SYNC_RING_ENTRIES 4u
#define WAL_SYNC_USER_DATA 0x57414c53594e4300ull  /* low tag bits zero */
#define WAL_RECORD_FLAG_WINDOW_MASK 0x7u
#define WAL_SEGMENT_NAME_LEN 24         /* "log." + 20 digits */
#define WAL_TMPFS_MAGIC 0x01021994
#define WAL_OVERLAYFS_MAGIC 0x794c7630

struct wal_record_header {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t payload_size;
	uint32_t crc32c;
	uint64_t term;
	uint64_t index;
	uint64_t batch_first_index;
};

static_assert(sizeof(struct wal_record_header) == WAL_RECORD_HEADER_SIZE, "record header");
static_assert(offsetof(struct wal_record_header, crc32c) == 12, "crc offset");
static_assert(offsetof(struct wal_record_header, term) == 16, "term offset");
static_assert(offsetof(struct wal_record_header, batch_first_index) == 32, "batch offset");

struct wal_segment {
	uint64_t seq;
	uint64_t size_bytes;    /* capacity; a multiple of WAL_BLOCK_SIZE */
	uint64_t first_index;   /* 0: holds no record */
	uint64_t last_index;
	uint64_t data_bytes;    /* end offset of the last record (staged included) */
	int fd;                 /* open only while batches target this segment */
};

struct wal_batch {
	uint8_t *buf;           /* aligned; bytes >= used are zero (invariant 3) */
	struct wal_segment *seg;
	uint64_t file_offset;   /* block-aligned file offset of buf[0] */
	uint32_t used;          /* prefix + records */
	uint32_t prefix_size;   /* tail bytes of the previous batch, rewritten unchanged */
	uint32_t entry_count;
	uint64_t first_index;
	uint64_t last_index;
	uint32_t write_size;    /* set by submit: used rounded up to a block */
	int pending;            /* CQEs still expected */
	bool write_done;
	bool write_skipped;     /* the write SQE had CQE_SKIP_SUCCESS: one CQE in all */
	bool done;              /* all CQEs in (durable unless w->failed) */
	uint64_t tag;           /* low user_data bits of its SQEs */
	uint64_t submit_ns;
};

enum wal_prep_state {
	WAL_PREP_IDLE,
	WAL_PREP_RUNNING,
	WAL_PREP_READY,
	WAL_PREP_FAILED,
};

struct wal_preparer {
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum wal_prep_state state;
	bool stop;
	uint64_t seq;
	int fd;
	int err;
	/* constant after start */
	int dir_fd;
	uint64_t size_bytes;
	bool direct;
	uint8_t *zero_chunk;
};

struct wal {
	struct wal_config cfg;
	char *dir_path;
	int dir_fd;
	bool direct;
	enum wal_sync_mode sync_mode;

	struct wal_segment **segs;      /* oldest first; the last one is being written */
	uint32_t seg_count;
	uint32_t seg_cap;
	uint64_t next_seq;

	/* Ring of inflight_max + 1 buffers: flight_count in flight from flight_head, in
	 * index order, then the staging one. */
	struct wal_batch batches[WAL_INFLIGHT_CAP + 1];
	uint32_t batch_slots;
	uint32_t flight_head;
	uint32_t flight_count;
	struct wal_batch *staging;
	uint64_t submit_seq;            /* batches submitted since open */
	uint32_t batch_buf_size;

	uint64_t first_index;
	uint64_t last_index;
	uint64_t last_term;
	uint64_t durable_index;
	int failed;                     /* sticky fatal error */

	struct wal_preparer prep;
	struct io_uring sync_ring;
	bool sync_ring_ready;

	struct wal_stats stats;
	uint64_t latency_ns[WAL_LATENCY_SAMPLE_COUNT];
	uint32_t latency_pos;
	uint32_t latency_count;
	struct wal_hists hists;
};

/*
 * Measured with wal-bench on the reference VM (virtio disk /dev/vda, ext4, volatile
 * write cache, no FUA, kernel 6.18), one 4 KiB O_DIRECT append + durability, p50 over
 * 400 runs on an idle machine: linked write+fdatasync 112-150 us, RWF_DSYNC 125-168 us,
 * pwrite+fdatasync syscalls 122-175 us: the same within noise. Without FUA every mode
 * ends in a cache flush.
 *
 * Inside the server under load the syscalls win clearly (2026-11-27, set and create at
 * 64 sessions, A/B runs: +25-37% throughput, -15% server CPU per write, in-server
 * commit p50 150-190 us against 220-290 us). io_uring cannot flush without blocking,
 * so a linked or RWF_DSYNC batch is finished by a kernel worker thread (io-wq or the
 * dio workqueue) that must be woken after the write and again after the flush before
 * the raft thread is woken; on a busy 2-vCPU VM each of those wake-ups waits ~50 us
 * for a CPU. pwrite + fdatasync on the raft thread wakes only the raft thread itself.
 * Re-measure on bare metal with NVMe, where wake-ups are cheap and the linked mode's
 * overlap (collect the next batch while this one is on the disk) may pay again.
 */
static const enum wal_sync_mode wal_sync_mode_default = WAL_SYNC_SYSCALL;

static uint64_t wal_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wal_round_up(uint64_t x)
{
	return (x + WAL_BLOCK_SIZE - 1) & ~(uint64_t)(WAL_BLOCK_SIZE - 1);
}

static uint64_t wal_round_down(uint64_t x)
{
	return x & ~(uint64_t)(WAL_BLOCK_SIZE - 1);
}

__attribute__((format(printf, 2, 3)))
static void wal_report(const struct wal_config *cfg, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wal: %s\n", text);
	if (cfg->error_text && cfg->error_text_size > 0)
		snprintf(cfg->error_text, cfg->error_text_size, "%s", text);
}

static void wal_segment_name(char *out, size_t cap, uint64_t seq, bool tmp)
{
	snprintf(out, cap, "log.%020" PRIu64 "%s", seq, tmp ? ".tmp" : "");
}

/* ---------------------------------------------------------------- record format */

static void wal_put_le16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void wal_put_le32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void wal_put_le64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t wal_get_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t wal_get_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t wal_get_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

size_t wal_record_encode(void *dst, size_t cap, uint64_t term, uint64_t index,
			 uint64_t batch_first_index, const void *data, uint32_t size)
{
	return wal_record_encode_window(dst, cap, term, index, batch_first_index, data, size, 1);
}

size_t wal_record_encode_window(void *dst, size_t cap, uint64_t term, uint64_t index,
				uint64_t batch_first_index, const void *data, uint32_t size,
				uint32_t inflight_max)
{
	assert(inflight_max >= 1 && inflight_max <= WAL_INFLIGHT_CAP);
	size_t total = WAL_RECORD_HEADER_SIZE + (size_t)size;
	if (total > cap)
		return 0;
	uint8_t *p = dst;
	wal_put_le32(p + 0, WAL_RECORD_MAGIC);
	wal_put_le16(p + 4, WAL_RECORD_VERSION);
	wal_put_le16(p + 6, (uint16_t)((inflight_max - 1) & WAL_RECORD_FLAG_WINDOW_MASK));
	wal_put_le32(p + 8, size);
	wal_put_le32(p + 12, 0);
	wal_put_le64(p + 16, term);
	wal_put_le64(p + 24, index);
	wal_put_le64(p + 32, batch_first_index);
	if (size > 0)
		memcpy(p + WAL_RECORD_HEADER_SIZE, data, size);
	uint32_t crc = crc32c(p, total);
	wal_put_le32(p + 12, crc);
	return total;
}

long wal_record_decode(const void *src, size_t avail, struct wal_record_view *out)
{
	const uint8_t *p = src;
	if (avail < WAL_RECORD_HEADER_SIZE) {
		for (size_t k = 0; k < avail; k++)
			if (p[k])
				return -EBADMSG;
		return -ENODATA;
	}
	uint32_t magic = wal_get_le32(p);
	if (magic == 0)
		return -ENODATA;
	if (magic != WAL_RECORD_MAGIC || wal_get_le16(p + 4) != WAL_RECORD_VERSION ||
	    (wal_get_le16(p + 6) & ~WAL_RECORD_FLAG_WINDOW_MASK) != 0)
		return -EBADMSG;
	uint32_t size = wal_get_le32(p + 8);
	if (size > avail - WAL_RECORD_HEADER_SIZE)
		return -EBADMSG;
	uint8_t header[WAL_RECORD_HEADER_SIZE];
	memcpy(header, p, sizeof(header));
	wal_put_le32(header + 12, 0);
	uint32_t crc = crc32c_extend(crc32c(header, sizeof(header)), p + WAL_RECORD_HEADER_SIZE,
				     size);
	if (crc != wal_get_le32(p + 12))
		return -EBADMSG;
	out->term = wal_get_le64(p + 16);
	out->index = wal_get_le64(p + 24);
	out->batch_first_index = wal_get_le64(p + 32);
	out->data = p + WAL_RECORD_HEADER_SIZE;
	out->size = size;
	out->inflight_max = (wal_get_le16(p + 6) & WAL_RECORD_FLAG_WINDOW_MASK) + 1u;
	return (long)(WAL_RECORD_HEADER_SIZE + size);
}

/* ---------------------------------------------------------------- file helpers */

static int wal_pwrite_all(int fd, const void *buf, size_t size, uint64_t offset)
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
static int wal_zero_range(int fd, const uint8_t *zero_chunk, uint64_t from, uint64_t to)
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

static int wal_sync_dir(int dir_fd)
{
	return fsync(dir_fd) ? -errno : 0;
}

static int wal_segment_open(struct wal *w, uint64_t seq, bool direct)
{
	char name[64];
	wal_segment_name(name, sizeof(name), seq, false);
	int fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
	return fd < 0 ? -errno : fd;
}

/* ---------------------------------------------------------------- preparer */

/* Creates log.<seq> fully allocated and zeroed; on success returns its fd. */
static int wal_preparer_make(struct wal_preparer *p, uint64_t seq)
{
	char tmp[64], name[64];
	wal_segment_name(tmp, sizeof(tmp), seq, true);
	wal_segment_name(name, sizeof(name), seq, false);
	int fd = openat(p->dir_fd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC |
			(p->direct ? O_DIRECT : 0), 0644);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fallocate(fd, 0, 0, (off_t)p->size_bytes) < 0 && errno != EOPNOTSUPP) {
		rc = -errno;
		goto fail;
	}
	/* Writing the zeros turns unwritten extents into written ones: later appends are
	 * pure overwrites and fdatasync has no metadata to journal. */
	rc = wal_zero_range(fd, p->zero_chunk, 0, p->size_bytes);
	if (rc)
		goto fail;
	if (fdatasync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	if (renameat(p->dir_fd, tmp, p->dir_fd, name) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = wal_sync_dir(p->dir_fd);
	if (rc) {
		unlinkat(p->dir_fd, name, 0);
		close(fd);
		return rc;
	}
	return fd;
fail:
	close(fd);
	unlinkat(p->dir_fd, tmp, 0);
	return rc;
}

static void *wal_preparer_main(void *arg)
{
	struct wal_preparer *p = arg;
	pthread_setname_np(pthread_self(), "rk-walprep");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->state != WAL_PREP_RUNNING)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		uint64_t seq = p->seq;
		pthread_mutex_unlock(&p->lock);
		int rc = wal_preparer_make(p, seq);
		pthread_mutex_lock(&p->lock);
		if (rc < 0) {
			p->err = rc;
			p->state = WAL_PREP_FAILED;
		} else {
			p->fd = rc;
			p->state = WAL_PREP_READY;
		}
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void wal_preparer_request(struct wal_preparer *p, uint64_t seq)
{
	pthread_mutex_lock(&p->lock);
	if (p->state == WAL_PREP_IDLE) {
		p->seq = seq;
		p->state = WAL_PREP_RUNNING;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

/* Waits for the requested segment. Returns its fd, or -errno (state back to IDLE). */
static int wal_preparer_take(struct wal_preparer *p, uint64_t seq, bool *stalled)
{
	int rc = -EINVAL;
	*stalled = false;
	pthread_mutex_lock(&p->lock);
	while (p->state == WAL_PREP_RUNNING) {
		*stalled = true;
		pthread_cond_wait(&p->cond, &p->lock);
	}
	switch (p->state) {
	case WAL_PREP_READY:
		assert(p->seq == seq);
		rc = p->fd;
		p->fd = -1;
		break;
	case WAL_PREP_FAILED:
		rc = p->err;
		break;
	case WAL_PREP_IDLE:
	case WAL_PREP_RUNNING:
		assert(!"wal: take without request");
		rc = -EINVAL;
		break;
	}
	p->state = WAL_PREP_IDLE;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int wal_preparer_start(struct wal_preparer *p, int dir_fd, uint64_t size_bytes,
			      bool direct)
{
	p->dir_fd = dir_fd;
	p->size_bytes = size_bytes;
	p->direct = direct;
	p->fd = -1;
	p->state = WAL_PREP_IDLE;
	if (posix_memalign((void **)&p->zero_chunk, WAL_BLOCK_SIZE, WAL_ZERO_CHUNK_BYTES))
		return -ENOMEM;
	memset(p->zero_chunk, 0, WAL_ZERO_CHUNK_BYTES);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	int rc = pthread_create(&p->thread, NULL, wal_preparer_main, p);
	if (rc)
		return -rc;
	p->thread_started = true;
	return 0;
}

/* Stops the helper. A prepared but unused segment stays on disk: it is a valid empty
 * segment, and the next wal_open() deletes it. */
static void wal_preparer_stop(struct wal_preparer *p)
{
	if (p->thread_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		p->thread_started = false;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->zero_chunk);
	p->zero_chunk = NULL;
}

/* ---------------------------------------------------------------- segments list */

static struct wal_segment *wal_tail(const struct wal *w)
{
	return w->seg_count ? w->segs[w->seg_count - 1] : NULL;
}

static int wal_segment_append(struct wal *w, uint64_t seq, uint64_t size_bytes, int fd)
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

static void wal_segment_free(struct wal_segment *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

/* Unlinks the file of segment i and removes it from the list (no directory sync). */
static int wal_segment_delete(struct wal *w, uint32_t i)
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

static bool wal_aligned_batches(const struct wal *w)
{
	return w->cfg.inflight_max > 1;
}

/* The k-th in-flight batch, oldest first. */
static struct wal_batch *wal_flight_at(struct wal *w, uint32_t k)
{
	assert(k < w->flight_count);
	return &w->batches[(w->flight_head + k) % w->batch_slots];
}

/* Whether an in-flight batch still writes segment s (its descriptor must stay open). */
static bool wal_segment_busy(struct wal *w, const struct wal_segment *s)
{
	for (uint32_t k = 0; k < w->flight_count; k++)
		if (wal_flight_at(w, k)->seg == s)
			return true;
	return false;
}

/* Points the staging batch at the end of the tail segment: with inflight_max 1 it
 * starts with the tail block (rewritten unchanged), otherwise at the next boundary. */
static void wal_staging_reset(struct wal *w, const uint8_t *tail_block)
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
static int wal_segment_roll(struct wal *w)
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
	if (s->first_index == 0)
		s->first_index = index;
	s->last_index = index;
	uint64_t old_end = s->data_bytes;
	s->data_bytes = b->file_offset + b->used;
	w->stats.log_bytes += s->data_bytes - old_end;  /* padding before the batch too */
	if (w->first_index == 0)
		w->first_index = index;
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
	unsigned sqe_count = syscall ? 0 : w->sync_mode == WAL_SYNC_WRITE_LINKED_FDATASYNC ? 2 : 1;
	/* With CQE_SKIP_SUCCESS on the linked write, a batch posts one CQE: the fdatasync's
	 * on success, or the write's own on failure (the kernel then also skips the
	 * cancelled fdatasync's). One completion, so one wake-up of the raft thread. */
	bool skip_write_cqe = sqe_count == 2 && wal_cqes_per_batch(w, ring) == 1;
	if (syscall) {
		b->submit_ns = wal_now_ns();
		int err = wal_write_sync(w, b);
		if (err) {
			w->failed = err;
			return err;
		}
		b->pending = 0;
		goto accounted;
	}
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

accounted:
	rk_hist_record(&w->hists.batch_entries, b->entry_count);
	rk_hist_record(&w->hists.batch_bytes, b->used - b->prefix_size);
	w->stats.batch_count++;
	w->stats.write_bytes += b->write_size;
	w->stats.pad_bytes += b->write_size - b->used;
	if (b->entry_count > w->stats.batch_entries_max_seen)
		w->stats.batch_entries_max_seen = b->entry_count;
	if (b->used - b->prefix_size > w->stats.batch_bytes_max_seen)
		w->stats.batch_bytes_max_seen = b->used - b->prefix_size;

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

static int wal_read_segment(struct wal *w, uint32_t i, uint8_t *buf, uint64_t file_size)
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
			/* Zero padding up to a boundary where the next batch starts? (Padding
			 * shorter than a magic makes the decode at pos see the next record's
			 * bytes, so any failure is checked, not only a zero magic.) */
			uint64_t q = wal_round_up(pos);
			struct wal_record_view u;
			if (q > pos && q < s->size_bytes && wal_all_zero(buf + pos, q - pos) &&
			    wal_record_decode(buf + q, s->size_bytes - q, &u) > 0 &&
			    u.index == sc->expected_index && u.batch_first_index == u.index) {
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
		if (s->first_index == 0)
			s->first_index = v.index;
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

static int wal_recover(struct wal *w, wal_replay_fn replay, void *ctx)
{
	int rc = wal_list_segments(w);
	if (rc)
		return rc;
	struct wal_scan *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	uint8_t *buf = NULL;
	uint64_t buf_size = 0;
	for (uint32_t i = 0; i < w->seg_count && rc == 0; i++) {
		struct wal_segment *s = w->segs[i];
		struct wal_record_view first, next;
		if (wal_segment_skippable(w, i, sc, &first, &next)) {
			s->first_index = first.index;
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
	if (rc)
		goto out;

	/* Everything verified: now repair. Drop segments after the tail, newest first, so a
	 * crash in between leaves a valid log. */
	uint32_t keep = sc->have_tail ? sc->tail_seg + 1 : 0;
	bool deleted = false;
	while (w->seg_count > keep) {
		rc = wal_segment_delete(w, w->seg_count - 1);
		if (rc)
			goto out;
		deleted = true;
	}
	if (deleted && (rc = wal_sync_dir(w->dir_fd)))
		goto out;
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
			goto out;
		rc = wal_segment_open(w, tail->seq, w->direct);
		if (rc < 0)
			goto out;
		tail->fd = rc;
		rc = 0;
		w->next_seq = tail->seq + 1;
	} else {
		w->next_seq = 1;
	}
	for (uint32_t i = 0; i < w->seg_count; i++) {
		w->stats.log_bytes += w->segs[i]->data_bytes;
		if (w->first_index == 0)
			w->first_index = w->segs[i]->first_index;
	}
	if (w->stats.recovery_skipped_segments)
		fprintf(stderr, "wal: %" PRIu64 " segments before index %" PRIu64 " not read (in the snapshot)\n",
			w->stats.recovery_skipped_segments, w->cfg.skip_upto + 1);
	w->last_index = sc->expected_index ? sc->expected_index - 1 : 0;
	w->durable_index = w->last_index;
	w->last_term = sc->last_term;
	wal_staging_reset(w, sc->tail_block);
out:
	free(sc);
	return rc;
}

/* ---------------------------------------------------------------- open / close */

static int wal_mkdir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Decides O_DIRECT by trying it, and warns about filesystems that cannot keep a log. */
static int wal_probe_direct(struct wal *w)
{
	static const char probe[] = "probe.direct.tmp";
	struct statfs fs;
	if (fstatfs(w->dir_fd, &fs) == 0 && fs.f_type == WAL_TMPFS_MAGIC)
		fprintf(stderr, "wal: WARNING: %s is on tmpfs: the log will not survive a "
			"reboot\n", w->dir_path);
	int fd = openat(w->dir_fd, probe, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC,
			0644);
	if (fd >= 0) {
		close(fd);
		unlinkat(w->dir_fd, probe, 0);
		w->direct = true;
		return 0;
	}
	if (errno != EINVAL)
		return -errno;
	w->direct = false;
	fprintf(stderr, "wal: WARNING: %s does not support O_DIRECT (filesystem type 0x%lx%s); "
		"falling back to buffered writes + fdatasync: slower, page cache pressure\n",
		w->dir_path, (unsigned long)fs.f_type,
		fs.f_type == WAL_OVERLAYFS_MAGIC ? ", overlayfs" : "");
	return 0;
}

int wal_open(struct wal **out, const struct wal_config *cfg, wal_replay_fn replay, void *ctx)
{
	*out = NULL;
	if (!cfg->dir)
		return -EINVAL;
	struct wal *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	int rc = 0;
	w->cfg = *cfg;
	w->dir_fd = -1;
	w->prep.fd = -1;
	if (!w->cfg.segment_size_bytes)
		w->cfg.segment_size_bytes = WAL_SEGMENT_SIZE_DEFAULT;
	if (!w->cfg.batch_bytes_max)
		w->cfg.batch_bytes_max = WAL_BATCH_BYTES_MAX_DEFAULT;
	if (!w->cfg.batch_entries_max)
		w->cfg.batch_entries_max = WAL_BATCH_ENTRIES_MAX_DEFAULT;
	if (!w->cfg.inflight_max)
		w->cfg.inflight_max = WAL_INFLIGHT_MAX_DEFAULT;
	if (w->cfg.inflight_max > WAL_INFLIGHT_CAP) {
		wal_report(&w->cfg, "bad config: inflight_max %u exceeds %u", w->cfg.inflight_max,
			   WAL_INFLIGHT_CAP);
		free(w);
		return -EINVAL;
	}
	w->sync_mode = cfg->sync_mode == WAL_SYNC_DEFAULT ? wal_sync_mode_default
							  : cfg->sync_mode;
	if (w->sync_mode == WAL_SYNC_SYSCALL)
		w->cfg.inflight_max = 1; /* the writing thread waits: one batch at a time */
	if (w->cfg.segment_size_bytes % WAL_BLOCK_SIZE ||
	    w->cfg.batch_bytes_max < WAL_RECORD_HEADER_SIZE ||
	    w->cfg.batch_bytes_max > (1u << 30) ||
	    w->cfg.segment_size_bytes < (uint64_t)w->cfg.batch_bytes_max + 2 * WAL_BLOCK_SIZE) {
		wal_report(&w->cfg, "bad config: segment_size_bytes %" PRIu64
			   " must be a multiple of %u and hold batch_bytes_max %u + 8 KiB",
			   w->cfg.segment_size_bytes, WAL_BLOCK_SIZE, w->cfg.batch_bytes_max);
		free(w);
		return -EINVAL;
	}

	char log_path[4096];
	if ((size_t)snprintf(log_path, sizeof(log_path), "%s/log", cfg->dir) >= sizeof(log_path)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	w->dir_path = strdup(cfg->dir);   /* names the data dir in messages */
	if (!w->dir_path) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = wal_mkdir(cfg->dir)) || (rc = wal_mkdir(log_path)))
		goto fail;
	w->dir_fd = open(log_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = wal_probe_direct(w)))
		goto fail;

	w->batch_buf_size = w->cfg.batch_bytes_max + 2 * WAL_BLOCK_SIZE;
	w->batch_slots = w->cfg.inflight_max + 1;
	for (uint32_t k = 0; k < w->batch_slots; k++) {
		if (posix_memalign((void **)&w->batches[k].buf, WAL_BLOCK_SIZE, w->batch_buf_size)) {
			rc = -ENOMEM;
			goto fail;
		}
		memset(w->batches[k].buf, 0, w->batch_buf_size);
	}
	w->staging = &w->batches[0];

	rc = wal_preparer_start(&w->prep, w->dir_fd, w->cfg.segment_size_bytes, w->direct);
	if (rc)
		goto fail;
	rc = wal_recover(w, replay, ctx);
	if (rc)
		goto fail;
	rc = io_uring_queue_init(WAL_SYNC_RING_ENTRIES, &w->sync_ring, 0);
	if (rc)
		goto fail;
	w->sync_ring_ready = true;
	wal_preparer_request(&w->prep, w->next_seq);
	*out = w;
	return 0;
fail:
	wal_close(w);
	return rc;
}

void wal_close(struct wal *w)
{
	if (!w)
		return;
	assert(w->flight_count == 0);
	wal_preparer_stop(&w->prep);
	for (uint32_t i = 0; i < w->seg_count; i++)
		wal_segment_free(w->segs[i]);
	free(w->segs);
	if (w->sync_ring_ready)
		io_uring_queue_exit(&w->sync_ring);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	for (uint32_t k = 0; k < WAL_INFLIGHT_CAP + 1; k++)
		free(w->batches[k].buf);
	free(w->dir_path);
	free(w);
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
		tail->first_index = tail->last_index = 0;
	} else {
		tail->last_index = keep_last;
	}
	w->last_index = keep_last ? keep_last : (w->seg_count > 1 ?
						 w->segs[w->seg_count - 2]->last_index : 0);
	if (keep_last)
		w->last_term = keep_term;
	/* A log truncated to nothing forgets its terms: the next record may start anew. */
	if (w->last_index == 0) {
		w->first_index = 0;
		w->last_term = 0;
	}
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
	w->first_index = 0;
	for (uint32_t i = 0; i < w->seg_count && w->first_index == 0; i++)
		w->first_index = w->segs[i]->first_index;
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
	int rc = 0, removed = 0;
	for (int i = 0; i < count && rc == 0; i++) {
		char name[64];
		wal_segment_name(name, sizeof(name), seqs[i], false);
		if (unlinkat(dfd, name, 0) < 0) {
			if (errno != ENOENT)
				rc = -errno; /* ENOENT: gone already (a removal before a crash) */
		} else if ((rc = wal_sync_dir(dfd)) == 0) {
			removed++;
		}
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
	w->first_index = 0;
	for (uint32_t i = 0; i < w->seg_count && w->first_index == 0; i++)
		w->first_index = w->segs[i]->first_index;
	return deleted;
}
