/*
 * wal_impl.h — the write-ahead log's private structures, shared by the raft/wal*.c
 * files only (the API is wal.h; the design notes, on-disk layout and invariants are
 * at the top of wal.c):
 *
 *   wal.c          open and close, the config it resolves, the O_DIRECT probe
 *   wal_record.c   the record format: encode and decode (pure, any thread)
 *   wal_append.c   the append path: stage, submit (ring or syscalls), complete,
 *                  flush, statistics
 *   wal_segment.c  segment files and the list of live segments, file helpers, the
 *                  staging batch's place in the tail segment, segment roll, truncate
 *                  and compaction
 *   wal_prep.c     the preparer: the helper thread that creates the next segment
 *   wal_recover.c  recovery at open: list, verify and replay the segments, find and
 *                  truncate a torn tail
 *
 * Thread: struct wal belongs to the raft thread (wal.c invariant 5); only the
 * `preparer` sub-struct is shared with the helper thread, under its mutex.
 */
#ifndef RINGKEEPER_RAFT_WAL_IMPL_H
#define RINGKEEPER_RAFT_WAL_IMPL_H

#include <assert.h>
#include <endian.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "raft/wal.h"

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

struct wal_segment {
	uint64_t seq;
	uint64_t size_bytes;    /* capacity; a multiple of WAL_BLOCK_SIZE */
	uint64_t first_index;   /* 0: holds no record */
	uint64_t first_term;    /* the term of first_index's record */
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
	uint64_t first_term;
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

static inline uint64_t wal_round_up(uint64_t x)
{
	return (x + WAL_BLOCK_SIZE - 1) & ~(uint64_t)(WAL_BLOCK_SIZE - 1);
}

static inline uint64_t wal_round_down(uint64_t x)
{
	return x & ~(uint64_t)(WAL_BLOCK_SIZE - 1);
}

static inline void wal_put_le16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void wal_put_le32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void wal_put_le64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static inline uint16_t wal_get_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t wal_get_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t wal_get_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

static inline struct wal_segment *wal_tail(const struct wal *w)
{
	return w->seg_count ? w->segs[w->seg_count - 1] : NULL;
}

/* The log's first index and its term: the first segment holding a record. */
static inline void wal_first_refresh(struct wal *w)
{
	w->first_index = w->first_term = 0;
	for (uint32_t i = 0; i < w->seg_count && w->first_index == 0; i++) {
		w->first_index = w->segs[i]->first_index;
		w->first_term = w->segs[i]->first_term;
	}
}

static inline bool wal_aligned_batches(const struct wal *w)
{
	return w->cfg.inflight_max > 1;
}

/* The k-th in-flight batch, oldest first. */
static inline struct wal_batch *wal_flight_at(struct wal *w, uint32_t k)
{
	assert(k < w->flight_count);
	return &w->batches[(w->flight_head + k) % w->batch_slots];
}

/* wal.c: a message on stderr and in cfg->error_text. */
__attribute__((format(printf, 2, 3)))
void wal_report(const struct wal_config *cfg, const char *fmt, ...);

/* wal_segment.c: file helpers (0 or -errno). */
void wal_segment_name(char *out, size_t cap, uint64_t seq, bool tmp);
int wal_pwrite_all(int fd, const void *buf, size_t size, uint64_t offset);
int wal_zero_range(int fd, const uint8_t *zero_chunk, uint64_t from, uint64_t to);
int wal_sync_dir(int dir_fd);
int wal_segment_open(struct wal *w, uint64_t seq, bool direct);

/* wal_segment.c: the list of live segments and the staging batch's place in it. */
int wal_segment_append(struct wal *w, uint64_t seq, uint64_t size_bytes, int fd);
void wal_segment_free(struct wal_segment *s);
int wal_segment_delete(struct wal *w, uint32_t i);
bool wal_segment_busy(struct wal *w, const struct wal_segment *s);
void wal_staging_reset(struct wal *w, const uint8_t *tail_block);
int wal_segment_roll(struct wal *w);

/* wal_prep.c: the segment preparer (state diagram in wal.c). */
int wal_preparer_start(struct wal_preparer *p, int dir_fd, uint64_t size_bytes, bool direct);
void wal_preparer_stop(struct wal_preparer *p);
void wal_preparer_request(struct wal_preparer *p, uint64_t seq);
int wal_preparer_take(struct wal_preparer *p, uint64_t seq, bool *stalled);

/* wal_recover.c */
int wal_read_segment(struct wal *w, uint32_t i, uint8_t *buf, uint64_t file_size);
int wal_recover(struct wal *w, wal_replay_fn replay, void *ctx);

#endif
