/*
 * file.h — deleting a large file without a burst on its disk.
 *
 * Unlinking a 460 MB snapshot at once frees all its extents in one journal commit;
 * on a filesystem mounted with `discard` (these machines' ext4 is) that commit also
 * discards all of them, and every write and flush queued behind it on the device
 * waits: the log's fdatasync, so the clients' writes. rk_delete_paced renames the
 * file to a name its owner deletes on start (the deletion is then as durable as an
 * unlink), shortens it from the end in steps, each made durable (so each step's
 * extents are freed, and discarded, by a commit of their own) and followed by a
 * pause, and unlinks what is left. RocksDB's file deletion does the same for the
 * same reason (its DeleteScheduler truncates in chunks).
 *
 * For a background thread: it sleeps. A step that fails falls back to the unlink.
 */
#ifndef RK_FILE_H
#define RK_FILE_H

#include <stdint.h>

struct rk_delete_pace {
	uint64_t step_bytes; /* shortened by this much a step; 0: unlink at once */
	uint32_t pause_us;   /* after each step */
};

/* 16 MiB steps, 2 ms apart: a 460 MB snapshot in ~30 steps, ~0.1 s. */
#define RK_DELETE_PACE_DEFAULT ((struct rk_delete_pace){.step_bytes = 16u << 20, .pause_us = 2000})

/*
 * Deletes dir_fd/name: renamed to dir_fd/doomed_name (which the caller's recovery
 * deletes when it finds it), the directory fsynced, shortened by pace, unlinked.
 * Only a regular file is shortened; a link (not followed) or a FIFO is just unlinked.
 * Returns 1 when deleted, 0 when name did not exist, or -errno: the rename failed
 * (nothing changed), or the unlink did (a directory: -EISDIR; doomed_name is left).
 */
int rk_delete_paced(int dir_fd, const char *name, const char *doomed_name, const struct rk_delete_pace *pace);

#endif
