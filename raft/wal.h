/*
 * wal.h — the write-ahead log of the raft thread: segment files under <dir>/log/,
 * group commit through the caller's io_uring, recovery on open.
 *
 * Thread: every function here runs on the raft thread (the only writer of the log),
 * except that wal.c owns one private helper thread that prepares the next segment file.
 * A struct wal is never shared.
 *
 * Lifecycle of one batch (one batch in flight at a time, the next one is staged while
 * the previous one is on the disk):
 *
 *     wal_stage() x N ──► wal_submit(ring) ──► CQEs ──► wal_complete() == 1
 *       (staging)            (in flight)                  (durable; durable_index set)
 *
 *     while a batch is in flight, wal_stage() fills the next one; wal_submit() of the
 *     next one is legal only after wal_complete() returned 1 for the previous one.
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

struct io_uring;
struct io_uring_cqe;
struct wal;

#define WAL_BLOCK_SIZE 4096u
#define WAL_SEGMENT_SIZE_DEFAULT (64ull << 20)
#define WAL_BATCH_BYTES_MAX_DEFAULT (1u << 20)
#define WAL_BATCH_ENTRIES_MAX_DEFAULT 4096u
#define WAL_SEGMENT_COUNT_MAX 65536u

/*
 * How a batch is made durable. WAL_SYNC_DEFAULT picks the mode measured fastest on the
 * reference disk (see wal.c). WAL_SYNC_NONE is ZooKeeper's forceSync=no: tests only.
 */
enum wal_sync_mode {
	WAL_SYNC_DEFAULT = 0,
	WAL_SYNC_WRITE_LINKED_FDATASYNC,        /* write SQE + IOSQE_IO_LINK + fdatasync SQE */
	WAL_SYNC_WRITE_DSYNC,                   /* one write SQE with RWF_DSYNC */
	WAL_SYNC_NONE,
};

struct wal_config {
	const char *dir;                        /* dataLogDir; segments live in <dir>/log/ */
	uint64_t segment_size_bytes;            /* 0: 64 MiB; a multiple of 4 KiB */
	uint32_t batch_bytes_max;               /* 0: 1 MiB; record bytes per batch */
	uint32_t batch_entries_max;             /* 0: 4096 */
	enum wal_sync_mode sync_mode;
	char *error_text;                       /* optional: why wal_open failed */
	size_t error_text_size;
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
 * segment helper thread. Damage that is not a torn tail (a bad record followed by
 * records of a later batch, data in a later segment, an index gap) fails with
 * -EUCLEAN and a message naming the file and byte offset (stderr and cfg->error_text).
 */
int wal_open(struct wal **out, const struct wal_config *cfg, wal_replay_fn replay, void *ctx);

/* Precondition: no batch in flight (call wal_flush_sync() or reap it first). */
void wal_close(struct wal *w);

/*
 * Copies one record into the staging batch. `index` must be wal_last_index() + 1 (any
 * index >= 1 on an empty log) and `term` must not go down: both asserted.
 * Returns 0, -EAGAIN (batch full: submit first), -EMSGSIZE (the record can never fit a
 * batch), -ENOSPC (no new segment could be prepared; retry later), or a sticky fatal
 * error from an earlier failed write.
 */
int wal_stage(struct wal *w, uint64_t term, uint64_t index, const void *data, size_t size);

bool wal_in_flight(const struct wal *w);
uint32_t wal_staged_count(const struct wal *w);

/*
 * Issues the staged batch on `ring` (1 or 2 SQEs, all tagged `user_data`) and calls
 * io_uring_submit(). Precondition: !wal_in_flight(w). With nothing staged it does
 * nothing and returns 0.
 */
int wal_submit(struct wal *w, struct io_uring *ring, uint64_t user_data);

/*
 * Feed every CQE whose user_data is the one given to wal_submit(). Returns 1 when the
 * batch is durable (*durable_index set to its last index), 0 while completions are
 * pending, -errno on a write or sync error (fatal).
 */
int wal_complete(struct wal *w, const struct io_uring_cqe *cqe, uint64_t *durable_index);

/* Submits whatever is staged on a private ring and waits. Precondition: !in_flight. */
int wal_flush_sync(struct wal *w);

uint64_t wal_first_index(const struct wal *w);      /* 0 when the log is empty */
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

struct wal_stats {
	uint64_t batch_count;
	uint64_t entry_count;
	uint64_t record_bytes;          /* headers + payloads appended */
	uint64_t write_bytes;           /* bytes handed to the disk (tail rewrites, padding) */
	uint32_t batch_entries_max_seen;
	uint64_t batch_bytes_max_seen;
	uint64_t commit_latency_p50_ns; /* submit -> durable, over the last samples */
	uint64_t commit_latency_p99_ns;
	uint64_t commit_latency_max_ns;
	uint32_t commit_latency_sample_count;
	uint64_t log_bytes;             /* record bytes held in live segments */
	uint32_t segment_count;
	uint64_t segment_roll_count;
	uint64_t segment_roll_stall_count;  /* rolls that had to wait for the helper */
	uint64_t segment_prepare_fail_count;
	uint64_t recovery_truncated_bytes;  /* torn-tail bytes zeroed by wal_open */
};

void wal_stats_get(const struct wal *w, struct wal_stats *out);

/*
 * Record format, exposed for tests and tools. Little-endian, records packed back to
 * back; see wal.c for the full layout.
 */
#define WAL_RECORD_HEADER_SIZE 40u

struct wal_record_view {
	uint64_t term;
	uint64_t index;
	uint64_t batch_first_index;
	const void *data;
	uint32_t size;
};

/* Encodes into dst (capacity cap). Returns the record size, or 0 if it does not fit. */
size_t wal_record_encode(void *dst, size_t cap, uint64_t term, uint64_t index,
			 uint64_t batch_first_index, const void *data, uint32_t size);

/*
 * Decodes the record at src (avail bytes readable). Returns the record size (> 0),
 * -ENODATA when the magic is zero (unwritten space), -EBADMSG when the bytes are not a
 * valid record (bad magic, version, length or checksum).
 */
long wal_record_decode(const void *src, size_t avail, struct wal_record_view *out);

#endif
