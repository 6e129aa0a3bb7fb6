/*
 * wal.h — the write-ahead log of the raft thread: segment files under <dir>/log/,
 * group commit through the caller's io_uring, recovery on open.
 *
 * Thread: every function here runs on the raft thread (the only writer of the log),
 * except that the log owns one private helper thread (wal_prep.c) that prepares the
 * next segment file. A struct wal is never shared.
 *
 * Lifecycle of a batch. Up to inflight_max batches (config, default 2, at most
 * WAL_INFLIGHT_CAP) are on the disk at once while the next one is staged:
 *
 *     wal_stage() x N ──► wal_submit(ring) ──► CQEs ──► wal_complete() == 1
 *       (staging)            (in flight)                  (durable; durable_index set)
 *
 *     wal_submit() is legal when wal_can_submit(): something is staged and fewer than
 *     inflight_max batches are in flight. Each in-flight batch is its own write (+ its
 *     own linked fdatasync, or RWF_DSYNC) on its own 4 KiB-aligned blocks. Batches may
 *     complete in any order; wal_complete() reports durability IN INDEX ORDER: it
 *     returns 1 with the highest index such that it and every earlier batch are durable
 *     (a later batch that finishes first is held until the earlier ones finish).
 *     With inflight_max == 1 this is exactly the old one-batch-in-flight pipeline.
 *
 * user_data (how the caller routes CQEs back to wal_complete()):
 *     inflight_max == 1: every SQE carries the caller's user_data unchanged, and
 *         wal_complete() does not look at cqe->user_data (any value works, as before).
 *     inflight_max  > 1: the caller's base user_data must have its low
 *         WAL_USER_DATA_TAG_BITS (3) bits zero (wal_submit returns -EINVAL otherwise);
 *         every SQE of a batch carries base | tag, tag = (batches submitted so far since
 *         open) mod WAL_INFLIGHT_CAP, so all CQEs of the log match
 *         wal_user_data_match(base, cqe->user_data). A base with zero low bits works for
 *         both settings: use one.
 *
 * Errors: 0 or -errno everywhere. A write or fdatasync error reported by wal_complete()
 * is fatal for the caller (crash and recover; never retry). -EAGAIN from wal_stage()
 * means "the staged batch is full or would not fit the current segment: submit it
 * first". -ENOSPC from wal_stage() means no new segment could be prepared; nothing was
 * staged, nothing is lost, and the next wal_stage() tries to prepare one again.
 *
 * Filesystems: O_DIRECT is used when the filesystem accepts it. If opening with
 * O_DIRECT fails with EINVAL (some overlayfs setups, old tmpfs) the log falls back to
 * buffered writes + fdatasync and prints a loud warning; tmpfs is warned about even
 * when it accepts O_DIRECT, because nothing on it survives a reboot.
 */
#ifndef RINGKEEPER_RAFT_WAL_H
#define RINGKEEPER_RAFT_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hist.h"

struct io_uring;
struct io_uring_cqe;
struct wal;

#define WAL_BLOCK_SIZE 4096u
#define WAL_SEGMENT_SIZE_DEFAULT (64ull << 20)
#define WAL_BATCH_BYTES_MAX_DEFAULT (1u << 20)
#define WAL_BATCH_ENTRIES_MAX_DEFAULT 4096u
#define WAL_SEGMENT_COUNT_MAX 65536u
#define WAL_INFLIGHT_MAX_DEFAULT 2u
#define WAL_INFLIGHT_CAP 8u                     /* batches in flight at most */
#define WAL_USER_DATA_TAG_BITS 3u               /* log2(WAL_INFLIGHT_CAP) */
#define WAL_USER_DATA_TAG_MASK ((uint64_t)WAL_INFLIGHT_CAP - 1)

/* True when a CQE's user_data belongs to the log submitted with `base` (low bits 0). */
static inline bool wal_user_data_match(uint64_t base, uint64_t user_data)
{
	return (user_data & ~WAL_USER_DATA_TAG_MASK) == base;
}

/*
 * How a batch is made durable. WAL_SYNC_DEFAULT picks the mode measured fastest on the
 * reference disk (see wal.c). WAL_SYNC_NONE is ZooKeeper's forceSync=no: tests only.
 */
enum wal_sync_mode {
	WAL_SYNC_DEFAULT = 0,
	WAL_SYNC_WRITE_LINKED_FDATASYNC,        /* write SQE + IOSQE_IO_LINK + fdatasync SQE */
	WAL_SYNC_WRITE_DSYNC,                   /* one write SQE with RWF_DSYNC */
	WAL_SYNC_NONE,
	WAL_SYNC_SYSCALL,                       /* pwrite(2) + fdatasync(2) inside wal_submit:
						 * the batch is durable when it returns 1;
						 * inflight_max is 1 */
};

struct wal_config {
	const char *dir;                        /* dataLogDir; segments live in <dir>/log/ */
	uint64_t segment_size_bytes;            /* 0: 64 MiB; a multiple of 4 KiB */
	uint32_t batch_bytes_max;               /* 0: 1 MiB; record bytes per batch */
	uint32_t batch_entries_max;             /* 0: 4096 */
	enum wal_sync_mode sync_mode;
	uint32_t inflight_max;                  /* 0: 2; batches in flight, 1..WAL_INFLIGHT_CAP;
						 * > 1 starts every batch on a fresh 4 KiB block */
	char *error_text;                       /* optional: why wal_open failed */
	size_t error_text_size;
	/* Records up to this index are not needed (a snapshot holds them): wal_open does
	 * not read a segment that holds only such records, nor replays them. 0: read all. */
	uint64_t skip_upto;
};

/*
 * Called by wal_open() once per valid record, in log order. `data` is valid only during
 * the call. A non-zero return aborts wal_open() with that value.
 */
typedef int (*wal_replay_fn)(void *ctx, uint64_t term, uint64_t index, const void *data,
			     size_t size);

/*
 * Opens (creating if needed) the log under cfg->dir, verifies every record, replays the
 * valid ones through `replay` (may be NULL), truncates a torn tail, and starts the
 * segment helper thread.
 *
 * Torn tail: damage (a bad record, or zeros where records should continue) followed
 * only by intact records of at most W-1 later batches (in the same segment or in later
 * ones), where W = max(cfg->inflight_max, the inflight_max recorded in the flags of the
 * intact records around the damage). Everything from the damage on is dropped (zeroed
 * in its segment, later segments deleted). This never drops an acknowledged record:
 * acks are in index order, so nothing after a batch that was not durable at the crash
 * was ever acknowledged. Zero padding up to a 4 KiB boundary before a record that
 * starts a batch with the expected index is normal (inflight_max > 1), not damage.
 * Anything else (damage followed by more later batches, an index gap that is not at a
 * segment start, a term going down) fails with -EUCLEAN and a message naming the file
 * and byte offset (stderr and cfg->error_text).
 */
int wal_open(struct wal **out, const struct wal_config *cfg, wal_replay_fn replay, void *ctx);

/* Precondition: no batch in flight (reap them all first). */
void wal_close(struct wal *w);

/*
 * Copies one record into the staging batch. `index` must be wal_last_index() + 1 (any
 * index >= 1 on an empty log) and `term` must not go down: both asserted.
 * Returns 0, -EAGAIN (batch full: submit first), -EMSGSIZE (the record can never fit a
 * batch), -ENOSPC (no new segment could be prepared; retry later), or a sticky fatal
 * error from an earlier failed write.
 */
int wal_stage(struct wal *w, uint64_t term, uint64_t index, const void *data, size_t size);

/*
 * What the staging batch still takes before a submit, so a caller can hand out only
 * records that will stage: *entries_left records and *bytes_left bytes of records
 * (each record is WAL_RECORD_HEADER_SIZE + its data). When the batch is empty and the
 * next record (first_size data bytes) does not fit the current segment, the segment
 * is rolled first, which is where a full disk shows: -ENOSPC (nothing staged; the next
 * call tries again). 0, -ENOSPC, or a sticky fatal error.
 */
int wal_stage_room(struct wal *w, size_t first_size, uint32_t *entries_left, uint64_t *bytes_left);

bool wal_in_flight(const struct wal *w);          /* at least one batch in flight */
uint32_t wal_in_flight_count(const struct wal *w);
uint32_t wal_inflight_max(const struct wal *w);   /* the resolved config value */
uint32_t wal_staged_count(const struct wal *w);
/* Something is staged and fewer than inflight_max batches are in flight. */
bool wal_can_submit(const struct wal *w);

/*
 * Issues the staged batch on `ring` (1 or 2 SQEs: the write, then with
 * WAL_SYNC_WRITE_LINKED_FDATASYNC a linked fdatasync of the same file) and calls
 * io_uring_submit(). The SQEs carry user_data as described at the top of this file.
 * Where the ring has IORING_FEAT_CQE_SKIP the linked write is marked
 * IOSQE_CQE_SKIP_SUCCESS, so every batch posts one CQE (wal_cqes_per_batch()).
 * Precondition: fewer than inflight_max batches in flight (asserted). With nothing
 * staged it does nothing and returns 0. -EINVAL: inflight_max > 1 and user_data has
 * low tag bits set (nothing submitted, not sticky).
 * WAL_SYNC_SYSCALL: the calling thread writes and syncs the batch itself (the ring is
 * not used) and 1 is returned once it is durable: wal_durable_index() has grown and
 * no CQE will come. An I/O error returns -errno, sticky as in wal_complete().
 */
int wal_submit(struct wal *w, struct io_uring *ring, uint64_t user_data);

/* CQEs one successful batch posts on `ring`: 2 for a linked write + fdatasync on a
 * kernel without CQE_SKIP_SUCCESS, else 1. */
unsigned wal_cqes_per_batch(const struct wal *w, const struct io_uring *ring);

/*
 * Feed every CQE of the log's SQEs (see user_data above), in any order. Returns 1 when
 * the durable prefix grew (*durable_index set to its new last index: every batch up to
 * it has completed its write and sync), 0 otherwise (completions pending, or a later
 * batch finished first and is held), -errno on a write or sync error of any batch
 * (fatal and sticky; later completions keep returning it).
 */
int wal_complete(struct wal *w, const struct io_uring_cqe *cqe, uint64_t *durable_index);

/* Submits whatever is staged on a private ring and waits. Precondition: nothing in
 * flight. */
int wal_flush_sync(struct wal *w);

uint64_t wal_first_index(const struct wal *w);      /* 0 when the log is empty */
uint64_t wal_first_term(const struct wal *w);       /* its term; 0 when the log is empty */
uint64_t wal_last_index(const struct wal *w);       /* last staged; 0 when empty */
uint64_t wal_durable_index(const struct wal *w);    /* last index known on disk */
uint64_t wal_last_term(const struct wal *w);
bool wal_direct_io(const struct wal *w);
enum wal_sync_mode wal_sync_mode_get(const struct wal *w);

/*
 * Drops every record > index (Raft conflict resolution). Preconditions: nothing in
 * flight, nothing staged. Durable when it returns 0. Later segments are deleted newest
 * first (each step leaves a valid log); the cut inside the last kept segment is one
 * write + fdatasync. A crash that tears that write can leave a log wal_open() refuses
 * with -EUCLEAN (never one that silently loses kept records).
 */
int wal_truncate_suffix(struct wal *w, uint64_t index);

/*
 * Deletes whole segments whose records are all <= index (after a snapshot at index).
 * The segment being written is never deleted. Returns the number of segments deleted.
 */
int wal_compact_prefix(struct wal *w, uint64_t index);

/*
 * Log compaction in two steps, so that no file is deleted on the raft thread:
 * wal_detach_prefix forgets (oldest first, at most max) the whole segments whose
 * records are all <= index, never the segment being written nor one a batch in
 * flight writes, and puts their sequence numbers in seqs; it returns how many.
 * wal_remove_segments (any thread, no struct wal) then deletes those files from
 * <dir>/log in the order given, syncing the directory after each: given oldest
 * first, a crash in between leaves a log that is still contiguous (recovery reads
 * the survivors again and they are detached the next time). Returns the files
 * removed or -errno.
 */
int wal_detach_prefix(struct wal *w, uint64_t index, uint64_t *seqs, int max);
int wal_remove_segments(const char *dir, const uint64_t *seqs, int count);

struct wal_stats {
	uint64_t batch_count;
	uint64_t entry_count;
	uint64_t record_bytes;          /* headers + payloads appended */
	uint64_t write_bytes;           /* bytes handed to the disk (tail rewrites, padding) */
	uint64_t pad_bytes;             /* zeros written after a batch's last record to
					 * fill its last block (part of write_bytes) */
	uint32_t batch_entries_max_seen;
	uint64_t batch_bytes_max_seen;
	uint64_t commit_latency_p50_ns; /* submit -> durable, over the last samples */
	uint64_t commit_latency_p99_ns;
	uint64_t commit_latency_max_ns;
	uint32_t commit_latency_sample_count;
	uint64_t log_bytes;             /* bytes up to the last record of each live
					 * segment (padding between batches included) */
	uint32_t segment_count;
	uint64_t segment_roll_count;
	uint64_t segment_roll_stall_count;  /* rolls that had to wait for the helper */
	uint64_t segment_prepare_fail_count;
	uint64_t recovery_truncated_bytes;  /* torn-tail bytes zeroed by wal_open */
	uint64_t recovery_skipped_segments; /* not read by wal_open (cfg.skip_upto) */
	uint32_t inflight_max;              /* resolved config */
	uint32_t inflight_peak;             /* most batches seen in flight at once */
	uint64_t held_count;                /* batches durable before an earlier one */
};

void wal_stats_get(const struct wal *w, struct wal_stats *out);

/* Histograms the log's thread records and any thread may read at any time (core/hist.h:
 * single writer, no lock); for /metrics. */
struct wal_hists {
	struct rk_hist sync_us;       /* a batch from submit to durable (its writes and
				       * fdatasync), us; not recorded without a sync (forceSync=no) */
	struct rk_hist batch_entries; /* records per batch (group commit) */
	struct rk_hist batch_bytes;   /* record bytes per batch */
};

/* Valid from wal_open to wal_close. */
const struct wal_hists *wal_hists(const struct wal *w);

/*
 * Record format, exposed for tests and tools. Little-endian, records packed back to
 * back within a batch (batches start on a 4 KiB boundary when inflight_max > 1); see
 * wal.c for the full layout.
 */
#define WAL_RECORD_HEADER_SIZE 40u

struct wal_record_view {
	uint64_t term;
	uint64_t index;
	uint64_t batch_first_index;
	const void *data;
	uint32_t size;
	uint32_t inflight_max;  /* of the writer, from the flags (1 for flags 0) */
};

/*
 * Encodes into dst (capacity cap). Returns the record size, or 0 if it does not fit.
 * wal_record_encode() writes flags 0 (inflight_max 1); the _window variant records the
 * writer's inflight_max (1..WAL_INFLIGHT_CAP) in the flags.
 */
size_t wal_record_encode(void *dst, size_t cap, uint64_t term, uint64_t index,
			 uint64_t batch_first_index, const void *data, uint32_t size);
size_t wal_record_encode_window(void *dst, size_t cap, uint64_t term, uint64_t index,
				uint64_t batch_first_index, const void *data, uint32_t size,
				uint32_t inflight_max);

/*
 * Decodes the record at src (avail bytes readable). Returns the record size (> 0),
 * -ENODATA when the magic is zero (unwritten space), -EBADMSG when the bytes are not a
 * valid record (bad magic, version, length or checksum).
 */
long wal_record_decode(const void *src, size_t avail, struct wal_record_view *out);

#endif
