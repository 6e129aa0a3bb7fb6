/*
 * snapshot.h — snapshots of the store on disk: writing one from an image
 * (store/store_snap.h) in the background, keeping the newest few, and loading the
 * newest valid one at start. The file format is snap_format.h.
 *
 * Threads
 *   snap_write, snap_purge, snap_list and snap_load_newest run on the caller's thread.
 *   struct snap_worker owns one thread ("rk-snap") that writes the images handed to
 *   it and runs small chores after them (deleting log segments the raft thread
 *   detached); the raft thread submits and polls. One image at a time.
 *
 * Lifecycle of one snapshot (raft thread R, worker W)
 *
 *   R: store_snap_begin ──► snap_worker_submit ──► W: snap_write (walk, compress,
 *   write .tmp, fsync, rename, fsync dir) ──► snap_purge ──► result posted
 *   R: snap_worker_poll ──► store_snap_end, log compaction (snap_worker_chore)
 *
 * Errors: 0 / -errno; what went wrong in words goes to `why` when given. A failed
 * write leaves no file behind but the .tmp, which the next start deletes; the
 * snapshots before it stay as they were.
 */
#ifndef RK_SNAPSHOT_H
#define RK_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store_snap.h"

struct store;

/* What one snapshot write produced and cost. */
struct snap_result {
	int err;            /* 0, or -errno: nothing was made */
	char why[256];      /* err's reason in words */
	uint64_t index;
	uint64_t term;
	uint64_t file_bytes;
	uint64_t raw_bytes;
	uint64_t node_count;
	uint64_t session_count;
	uint64_t duration_us;   /* from submit to the directory fsync */
	uint64_t walk_us;       /* of which walking the image (the store's locks) */
	uint32_t walk_rests;    /* pauses of a paced walk (struct snap_write_ctl) */
	uint64_t oldest_kept;   /* after the purge: the oldest snapshot's index kept */
	uint32_t kept_count;    /* snapshots on disk after the purge */
	struct store_snap_stats image; /* copies, lock holds, the begin pause */
};

/* How a write runs beside a serving store (NULL: as fast as it can, no cancel). */
struct snap_write_ctl {
	const atomic_bool *cancel; /* turns true: the walk stops between two steps */
	/* 0: walk without a pause. Else the walk rests as long as it walked each time it
	 * has walked this long: about half a CPU at most (snap_write.c, "Pacing"). */
	uint32_t walk_burst_us;
};

/*
 * Writes <snap_dir>/snapshot.<index>.rk from the image (walked to its end here) of
 * the store at log index `index` (term `term`). The directory is created if needed.
 * 0 or -errno (-ECANCELED once ctl->cancel turns true: the .tmp is removed); out gets
 * the sizes and durations (err and why).
 */
int snap_write(const char *snap_dir, struct store_snap *sn, uint64_t index, uint64_t term,
	       const struct snap_write_ctl *ctl, struct snap_result *out);

/*
 * Deletes the oldest complete snapshots of snap_dir until `retain` remain (oldest
 * first, the directory fsynced after each). *oldest_kept and *kept get what is left
 * (0, 0 when there is none). 0 or -errno.
 */
int snap_purge(const char *snap_dir, uint32_t retain, uint64_t *oldest_kept, uint32_t *kept);

/* The indexes of the complete snapshots in snap_dir, newest first (malloc'ed; free
 * it); deletes leftover .tmp files when delete_tmp. 0 or -errno. */
int snap_list(const char *snap_dir, bool delete_tmp, uint64_t **indexes, size_t *count);

struct snap_loaded {
	bool found;        /* a valid snapshot was loaded */
	uint64_t index;
	uint64_t term;
	uint64_t node_count;
	uint64_t session_count;
	uint64_t file_bytes;
	uint32_t damaged_count; /* newer ones found damaged and set aside */
	uint64_t verify_us;
	uint64_t load_us;     /* of which: */
	uint64_t read_us;     /* pread + CRC + lz4 of the blocks (the slowest thread's) */
	uint64_t finish_us;   /* linking nodes to parents, sessions, counters */
	uint32_t load_threads;
};

#define SNAP_LOAD_THREADS_MAX 8

/*
 * Loads the newest valid snapshot of snap_dir into s (a fresh store, nothing applied,
 * no other thread using it), its blocks on `threads` threads (the caller's included;
 * at most SNAP_LOAD_THREADS_MAX). A snapshot that fails a check is logged loudly,
 * renamed to .damaged, and the one before it is tried. No snapshot at all is not an
 * error (out->found false). Sessions get now_ms as their last touch. -errno when the
 * directory cannot be read, or when a valid file cannot be loaded (the store is then
 * half filled and must not be used).
 */
int snap_load_newest(const char *snap_dir, struct store *s, int64_t now_ms, int threads, struct snap_loaded *out);

/*
 * Loads one snapshot file (its index must be `index`) into s, as snap_load_newest
 * loads the one it picks; nothing is renamed or logged. 0, -EBADMSG (damaged: nothing
 * was loaded; why says where), or -errno (the store may then be half filled).
 */
int snap_load_file(const char *path, uint64_t index, struct store *s, int64_t now_ms, int threads,
		   struct snap_loaded *out, char *why, size_t why_size);

/*
 * A snapshot received from the leader, complete in tmp_path (any name in snap_dir):
 * fsyncs it, checks it completely, renames it to snapshot.<index>.rk and fsyncs the
 * directory. 0, or -EBADMSG / -errno (tmp_path is deleted).
 */
int snap_adopt(const char *snap_dir, const char *tmp_path, uint64_t index, char *why, size_t why_size);

/*
 * Checks one file completely (invariant 2 of snap_format.h) without loading it.
 * 0, -EBADMSG (damaged, why says where), or -errno.
 */
int snap_verify(const char *path, char *why, size_t why_size);

/* ---------------------------------------------------------------- worker */

struct snap_worker;

struct snap_worker_config {
	const char *snap_dir;
	uint32_t retain;   /* snapshots kept (autopurge.snapRetainCount) */
	int nice;          /* the thread's nice value (0: as the process) */
};

int snap_worker_start(struct snap_worker **out, const struct snap_worker_config *cfg);
/* Cancels a write in progress (its .tmp is removed), runs the chores in hand, stops
 * the thread and frees the worker. Returns the image it was handed and not returned
 * by a poll yet (the caller ends it), or NULL. */
struct store_snap *snap_worker_stop(struct snap_worker *w);
/* The worker's walks are paced (struct snap_write_ctl): a serving store shares the CPUs. */
#define SNAP_WORKER_WALK_BURST_US 150
/* Hands an image over (the worker walks it); false while one is in hand. */
bool snap_worker_submit(struct snap_worker *w, struct store_snap *sn, uint64_t index, uint64_t term);
bool snap_worker_busy(struct snap_worker *w);
/*
 * A finished write: true once per submit, with *sn the image handed over (the caller
 * ends it: store_snap_end) and *out its result.
 */
bool snap_worker_poll(struct snap_worker *w, struct store_snap **sn, struct snap_result *out);
/* Runs fn(arg) on the worker's thread after what it has in hand (free arg in fn).
 * false when SNAP_WORKER_CHORES_MAX wait already (nothing queued). */
#define SNAP_WORKER_CHORES_MAX 8
bool snap_worker_chore(struct snap_worker *w, void (*fn)(void *arg), void *arg);

#endif
