/*
 * hardstate.h — Raft's hard state (term, vote, commit) in one small file, replaced
 * atomically so that a crash leaves either the old or the new state, never a torn one.
 *
 * File: <dir>/raft-state, 36 bytes, big-endian:
 *    0  "RKHS"     magic
 *    4  u32        version (HARDSTATE_VERSION)
 *    8  u64        term
 *   16  u64        vote (0: none)
 *   24  u64        commit
 *   32  u32        CRC-32C of bytes 0..31
 *
 * Save: write <dir>/raft-state.tmp, fdatasync it, rename it over raft-state, fsync the
 * directory. rename(2) is atomic, so a reader finds the old file or the new one. A
 * file that is there but wrong (size, magic, version, CRC) is damage the rename rule
 * cannot produce: load refuses it (-EUCLEAN, with the reason in `why`) rather than
 * start with a term or vote that may go back.
 *
 * Cost: two syncs (file and directory). It is written only when the term or the vote
 * changes (elections, and each restart of a single node), never per batch: commit is
 * saved with them, and a larger commit is re-learned from the log and the leader.
 */
#ifndef RK_HARDSTATE_H
#define RK_HARDSTATE_H

#include <stddef.h>
#include <stdint.h>

#define HARDSTATE_VERSION 1
#define HARDSTATE_FILE "raft-state"
#define HARDSTATE_BYTES 36

struct hardstate {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

/* 0 (loaded), -ENOENT (no file: a new server), -EUCLEAN (damaged; why says how) or
 * another -errno from the filesystem. */
int hardstate_load(const char *dir, struct hardstate *out, char *why, size_t why_size);
/* 0 once the new state is durable, or -errno (the old file is then still whole). */
int hardstate_save(const char *dir, const struct hardstate *hs);

#endif
