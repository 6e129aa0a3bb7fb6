/*
 * store_nodemem.h — where znodes live, and their 4-byte references (store/ only).
 *
 * A znode is referred to by a 32-bit ref, not a pointer, wherever the store keeps
 * one per node (hash chains and buckets, children arrays, the reaper's list, a node's
 * dir): 4 bytes instead of 8 in three places a node pays for. Two kinds of ref:
 *
 *   region  (bit 31 clear) the block is in one region of address space reserved at
 *           start (NODEMEM_REGION_BYTES, mapped as it is used): ref = offset / 4.
 *           Blocks up to NODEMEM_SMALL_MAX bytes come from 64 KiB slabs of one size
 *           class each, in 4-byte steps (a 183-byte node takes 184 bytes, where
 *           mimalloc's classes would give it 192, a 193-byte one 196 instead of 224).
 *           A slab whose last block is freed gives its pages back (MADV_DONTNEED),
 *           unless it is its class's only slab with room.
 *   handle  (bit 31 set) an index into a table of pointers: blocks above
 *           NODEMEM_SMALL_MAX, anything once the region is full, and blocks that
 *           move (realloc'd dirs). The block is the C allocator's; the table holds
 *           the object's address.
 *
 * RINGKEEPER_NODE_REGION=off in the environment puts every block behind a handle, as
 * happens when the region cannot be reserved (8 bytes more a node; for tests).
 *
 * Ref 0 is no object. An object may start inside its block (a znode after its owner
 * block): calls take that offset. Every object is 4-byte aligned, no more.
 *
 * Thread: any. Each thread keeps a few free blocks of each class; allocation and
 * freeing take one mutex only to refill or drain that cache (32 blocks at a time);
 * store_nodemem_at() takes none: a reader that got a ref under a shard lock
 * sees the object, whose publication went through that lock.
 */
#ifndef RK_STORE_NODEMEM_H
#define RK_STORE_NODEMEM_H

#include <stddef.h>
#include <stdint.h>

#define NODEMEM_HANDLE 0x80000000u
#define NODEMEM_REGION_BYTES ((size_t)8 << 30)  /* refs below 2^31, 4 bytes each */
#define NODEMEM_SMALL_MAX 1024                 /* larger blocks go behind a handle */
#define NODEMEM_HANDLE_CHUNK_SHIFT 12
#define NODEMEM_HANDLE_CHUNKS (1u << (31 - NODEMEM_HANDLE_CHUNK_SHIFT))

extern char *store_nodemem_base;
extern void **store_nodemem_handles[NODEMEM_HANDLE_CHUNKS];

/* The object a ref names (ref != 0). */
static inline void *store_nodemem_at(uint32_t ref)
{
	if (ref & NODEMEM_HANDLE) {
		uint32_t h = ref & ~NODEMEM_HANDLE;
		return store_nodemem_handles[h >> NODEMEM_HANDLE_CHUNK_SHIFT][h & ((1u << NODEMEM_HANDLE_CHUNK_SHIFT) - 1)];
	}
	return store_nodemem_base + (size_t)ref * 4;
}

/*
 * A zeroed block of `size` bytes whose object starts `obj_off` bytes in (a multiple
 * of 4); returns its ref and sets *obj, or 0 when out of memory. A handle's block
 * has 4 bytes in front of obj_off holding the handle (store_nodemem_ref_of).
 */
uint32_t store_nodemem_alloc(size_t size, size_t obj_off, void **obj);
void store_nodemem_free(uint32_t ref, size_t obj_off);
/* Gives this thread's cached free blocks back to their slabs (a thread's exit does it
 * too), so that emptied slabs can give their pages back. */
void store_nodemem_flush(void);
/* Bytes the block has from its start (obj_off before the object). */
size_t store_nodemem_usable(uint32_t ref, size_t obj_off);
/* The ref of an object store_nodemem_alloc returned. */
uint32_t store_nodemem_ref_of(const void *obj, size_t obj_off);

/* A handle for a block of the C allocator (a dir): 0 when out of memory. */
uint32_t store_nodemem_handle_new(void *p);
void store_nodemem_handle_set(uint32_t ref, void *p);
void store_nodemem_handle_free(uint32_t ref);

struct store_nodemem_stats {
	uint64_t slabs;          /* slabs holding blocks */
	uint64_t slab_bytes_used; /* blocks in the threads' caches included */
	uint64_t handles;        /* handles in use */
	uint64_t region_bytes;   /* the region's slabs handed out so far (free ones included) */
};
void store_nodemem_stats_get(struct store_nodemem_stats *out);

#endif
