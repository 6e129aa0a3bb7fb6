/*
 * snap_pack.h — a snapshot's blocks compressed and written on a low-priority thread
 * while the walker (which holds store locks and keeps the server's priority) goes on.
 * See snap_pack.c for why.
 *
 *     start ──► put(raw block) x N ──► finish      (all on the walker's thread)
 *                  │
 *                  └──► write_block(ctx, raw, records) on the packer thread, in order
 */
#ifndef RK_SNAP_PACK_H
#define RK_SNAP_PACK_H

#include <stdint.h>

#include "snapshot/snap_format.h"

struct snap_packer;

/* Compresses and writes one raw block (it may not keep raw's buffer). 0 or -errno;
 * after an error no further block is written. */
typedef int (*snap_pack_write_fn)(void *ctx, struct snap_buf *raw, uint32_t records);

/* 0, or -errno when the thread cannot start (the caller writes inline instead). */
int snap_packer_start(struct snap_packer **out, snap_pack_write_fn write_block, void *ctx);
/* Hands *raw over (waits while the queue is full) and leaves an empty buffer in its
 * place. Returns the packer's first error so far (nothing is queued then), or 0. */
int snap_packer_put(struct snap_packer *pk, struct snap_buf *raw, uint32_t records);
/* Waits until every block handed over is written, stops the thread, frees pk.
 * Returns the first error of write_block, or 0. */
int snap_packer_finish(struct snap_packer *pk);

#endif
