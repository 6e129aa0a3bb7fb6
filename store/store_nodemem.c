/*
 * store_nodemem.c — the znodes' region, slabs and handles (store_nodemem.h has the
 * scheme).
 *
 * Invariants
 *   1. Slab 0 is never handed out, so no region ref is 0.
 *   2. A slab holds blocks of one class (cls * 4 bytes): the first `bump` bytes
 *      have been handed out at least once; of those, `used` blocks are live and the
 *      rest are on its free list (linked through their first 4 bytes, by block ref).
 *   3. A slab is on its class's list (listed) exactly when it has room: a free block
 *      or room past bump. A slab with no live block is released (its touched pages
 *      given back, the slab onto the free-slab stack) unless it is the only slab on
 *      its class's list.
 *   4. A handle's slot holds an object's address while in use, and the next free
 *      handle's index (+1) while free.
 *   5. Each thread that allocates keeps up to CACHE_MAX free blocks per class (struct
 *      tcache), taken from and given back to the slabs CACHE_BATCH at a time, so
 *      the loaders of a snapshot (one per CPU) and the applier rarely take the lock.
 *      A cached block counts as used in its slab. A thread's cache goes back to the
 *      slabs when it exits (the key's destructor) or calls store_nodemem_flush().
 * Thread: all state below is under `lock`, except each thread's cache;
 * store_nodemem_at() reads the handle table without it (store_nodemem.h).
 */
#include <assert.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "store/store_nodemem.h"

#define SLAB_SHIFT 16
#define SLAB_BYTES ((size_t)1 << SLAB_SHIFT)
#define SLABS_MAX (NODEMEM_REGION_BYTES >> SLAB_SHIFT)
#define COMMIT_STEP ((size_t)2 << 20) /* the region is made writable this much at a time */
#define CLASSES (NODEMEM_SMALL_MAX / 4 + 1)
#define PAGE 4096u
#define CACHE_MAX 64
#define CACHE_BATCH 32

struct tcache {
	uint8_t count[CLASSES];
	uint32_t blocks[CLASSES][CACHE_MAX]; /* block offsets / 4 */
};

struct slab {
	uint32_t free; /* first free block's ref, 0: none */
	uint32_t bump; /* bytes handed out from the slab's start */
	uint32_t used; /* live blocks */
	uint16_t cls;
	uint16_t listed;
	uint32_t prev, next; /* on the class's list, or next on the free-slab stack; 0: none */
};

char *store_nodemem_base;
void **store_nodemem_handles[NODEMEM_HANDLE_CHUNKS];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct slab *slabs;          /* SLABS_MAX entries, mapped as the region is */
static uint32_t class_head[CLASSES]; /* slabs with room, per class */
static uint32_t free_slabs;         /* released slabs, a stack */
static uint32_t next_slab = 1;      /* slabs [1, next_slab) have been handed out */
static size_t committed;            /* bytes of the region made writable */
static uint32_t handle_free_head;   /* index + 1 of a free handle, 0: none */
static uint32_t handle_next;        /* handles [0, handle_next) have been made */
static uint64_t handles_live, slabs_live, slab_bytes_live;
static pthread_key_t cache_key;
static __thread struct tcache *cache;

static void cache_release(void *arg);
static size_t small_alloc(unsigned cls);

static void region_init(void)
{
	if (pthread_key_create(&cache_key, cache_release) != 0)
		return; /* no caches: no region either (every block behind a handle) */
	const char *off = getenv("RINGKEEPER_NODE_REGION");
	if (off && strcmp(off, "off") == 0)
		return; /* what a process without the address space gets: the tests use it */
	void *r = mmap(NULL, NODEMEM_REGION_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *t = mmap(NULL, SLABS_MAX * sizeof *slabs, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED || t == MAP_FAILED) {
		/* Every block goes behind a handle: 8 bytes more a node, nothing else. */
		fprintf(stderr, "store: no address space for the node region; nodes use handles\n");
		if (r != MAP_FAILED)
			munmap(r, NODEMEM_REGION_BYTES);
		if (t != MAP_FAILED)
			munmap(t, SLABS_MAX * sizeof *slabs);
		return;
	}
	slabs = t;
	store_nodemem_base = r;
}

static void class_push(unsigned cls, uint32_t idx)
{
	struct slab *sl = &slabs[idx];
	sl->prev = 0;
	sl->next = class_head[cls];
	if (sl->next)
		slabs[sl->next].prev = idx;
	class_head[cls] = idx;
	sl->listed = 1;
}

static void class_remove(unsigned cls, uint32_t idx)
{
	struct slab *sl = &slabs[idx];
	if (sl->prev)
		slabs[sl->prev].next = sl->next;
	else
		class_head[cls] = sl->next;
	if (sl->next)
		slabs[sl->next].prev = sl->prev;
	sl->prev = sl->next = 0;
	sl->listed = 0;
}

/* A slab for class cls, on its list; 0 when the region is used up. */
static uint32_t slab_take(unsigned cls)
{
	uint32_t idx = free_slabs;
	if (idx) {
		free_slabs = slabs[idx].next;
	} else {
		if (next_slab >= SLABS_MAX)
			return 0;
		size_t end = ((size_t)next_slab + 1) << SLAB_SHIFT;
		if (end > committed) {
			size_t grow = end - committed < COMMIT_STEP ? COMMIT_STEP : end - committed;
			if (committed + grow > NODEMEM_REGION_BYTES)
				grow = NODEMEM_REGION_BYTES - committed;
			if (mprotect(store_nodemem_base + committed, grow, PROT_READ | PROT_WRITE) != 0)
				return 0;
			committed += grow;
		}
		idx = next_slab++;
	}
	slabs[idx] = (struct slab){.cls = (uint16_t)cls};
	class_push(cls, idx);
	slabs_live++;
	return idx;
}

static void slab_release(uint32_t idx)
{
	struct slab *sl = &slabs[idx];
	class_remove(sl->cls, idx);
	size_t touched = ((size_t)sl->bump + PAGE - 1) & ~(size_t)(PAGE - 1);
	(void)madvise(store_nodemem_base + ((size_t)idx << SLAB_SHIFT), touched, MADV_DONTNEED);
	*sl = (struct slab){.next = free_slabs};
	free_slabs = idx;
	slabs_live--;
}

/* A block of class cls from the region: its offset there, or 0. Locked. */
static size_t region_block(unsigned cls)
{
	uint32_t idx = class_head[cls];
	if (!idx && !(idx = slab_take(cls)))
		return 0;
	struct slab *sl = &slabs[idx];
	size_t size = (size_t)cls * 4, off;
	if (sl->free) {
		off = (size_t)sl->free * 4;
		memcpy(&sl->free, store_nodemem_base + off, sizeof sl->free);
	} else {
		off = ((size_t)idx << SLAB_SHIFT) + sl->bump;
		sl->bump += (uint32_t)size;
	}
	sl->used++;
	slab_bytes_live += size;
	if (!sl->free && sl->bump + size > SLAB_BYTES)
		class_remove(cls, idx);
	return off;
}

static void handle_slot_set(uint32_t h, void *p)
{
	store_nodemem_handles[h >> NODEMEM_HANDLE_CHUNK_SHIFT][h & ((1u << NODEMEM_HANDLE_CHUNK_SHIFT) - 1)] = p;
}

/* A handle naming p: its ref, or 0. Locked. */
static uint32_t handle_take(void *p)
{
	uint32_t h;
	if (handle_free_head) {
		h = handle_free_head - 1;
		handle_free_head = (uint32_t)(uintptr_t)store_nodemem_at(h | NODEMEM_HANDLE);
	} else {
		h = handle_next;
		if (h >= (NODEMEM_HANDLE & ~0u) - 1)
			return 0;
		void ***chunk = &store_nodemem_handles[h >> NODEMEM_HANDLE_CHUNK_SHIFT];
		if (!*chunk && !(*chunk = calloc((size_t)1 << NODEMEM_HANDLE_CHUNK_SHIFT, sizeof **chunk)))
			return 0;
		handle_next++;
	}
	handle_slot_set(h, p);
	handles_live++;
	return h | NODEMEM_HANDLE;
}

static void handle_put(uint32_t ref)
{
	uint32_t h = ref & ~NODEMEM_HANDLE;
	handle_slot_set(h, (void *)(uintptr_t)handle_free_head);
	handle_free_head = h + 1;
	handles_live--;
}

uint32_t store_nodemem_alloc(size_t size, size_t obj_off, void **obj)
{
	assert(obj_off % 4 == 0 && obj_off < size);
	pthread_once(&once, region_init);
	if (store_nodemem_base && size <= NODEMEM_SMALL_MAX) {
		unsigned cls = (unsigned)((size + 3) / 4);
		size_t off = small_alloc(cls);
		if (off) {
			memset(store_nodemem_base + off, 0, (size_t)cls * 4);
			*obj = store_nodemem_base + off + obj_off;
			return (uint32_t)((off + obj_off) / 4);
		}
	}
	/* Behind a handle: [handle][block]. */
	char *p = calloc(1, 4 + size);
	if (!p)
		return 0;
	pthread_mutex_lock(&lock);
	uint32_t ref = handle_take(p + 4 + obj_off);
	pthread_mutex_unlock(&lock);
	if (!ref) {
		free(p);
		return 0;
	}
	memcpy(p, &ref, sizeof ref);
	*obj = p + 4 + obj_off;
	return ref;
}

/* Puts a block back in its slab. Locked. */
static void region_free(size_t off)
{
	uint32_t idx = (uint32_t)(off >> SLAB_SHIFT);
	struct slab *sl = &slabs[idx];
	assert(sl->used > 0);
	memcpy(store_nodemem_base + off, &sl->free, sizeof sl->free);
	sl->free = (uint32_t)(off / 4);
	sl->used--;
	slab_bytes_live -= (size_t)sl->cls * 4;
	if (!sl->listed)
		class_push(sl->cls, idx);
	else if (sl->used == 0 && (class_head[sl->cls] != idx || sl->next))
		slab_release(idx);
}

/* Gives `n` of the cache's blocks of class cls back to the slabs. */
static void cache_drain(struct tcache *tc, unsigned cls, unsigned n)
{
	pthread_mutex_lock(&lock);
	while (n-- > 0 && tc->count[cls] > 0)
		region_free((size_t)tc->blocks[cls][--tc->count[cls]] * 4);
	pthread_mutex_unlock(&lock);
}

static void cache_drain_all(struct tcache *tc)
{
	for (unsigned c = 0; c < CLASSES; c++)
		if (tc->count[c])
			cache_drain(tc, c, CACHE_MAX);
}

static void cache_release(void *arg)
{
	cache_drain_all(arg);
	free(arg);
}

void store_nodemem_flush(void)
{
	if (cache)
		cache_drain_all(cache);
}

/* This thread's cache; NULL when out of memory (then every block takes the lock). */
static struct tcache *cache_get(void)
{
	if (!cache && (cache = calloc(1, sizeof *cache)) != NULL)
		(void)pthread_setspecific(cache_key, cache);
	return cache;
}

/* A block of class cls: its offset in the region, or 0. */
static size_t small_alloc(unsigned cls)
{
	struct tcache *tc = cache_get();
	if (tc && tc->count[cls])
		return (size_t)tc->blocks[cls][--tc->count[cls]] * 4;
	uint32_t batch[CACHE_BATCH];
	unsigned got = 0;
	pthread_mutex_lock(&lock);
	size_t off = region_block(cls);
	while (off && tc && got < CACHE_BATCH - 1) {
		size_t more = region_block(cls);
		if (!more)
			break;
		batch[got++] = (uint32_t)(more / 4);
	}
	pthread_mutex_unlock(&lock);
	/* Pushed last first, so they come out in the order the slab gave them: nodes made
	 * one after another stay in ascending addresses (a snapshot's load then links
	 * them in about that order, which the prefetchers follow). */
	while (got > 0)
		tc->blocks[cls][tc->count[cls]++] = batch[--got];
	return off;
}

void store_nodemem_free(uint32_t ref, size_t obj_off)
{
	if (!ref)
		return;
	if (ref & NODEMEM_HANDLE) {
		char *p = (char *)store_nodemem_at(ref) - obj_off - 4;
		pthread_mutex_lock(&lock);
		handle_put(ref);
		pthread_mutex_unlock(&lock);
		free(p);
		return;
	}
	size_t off = (size_t)ref * 4 - obj_off;
	unsigned cls = slabs[off >> SLAB_SHIFT].cls;
	struct tcache *tc = cache_get();
	if (tc) {
		if (tc->count[cls] == CACHE_MAX)
			cache_drain(tc, cls, CACHE_BATCH);
		tc->blocks[cls][tc->count[cls]++] = (uint32_t)(off / 4);
		return;
	}
	pthread_mutex_lock(&lock);
	region_free(off);
	pthread_mutex_unlock(&lock);
}

size_t store_nodemem_usable(uint32_t ref, size_t obj_off)
{
	if (ref & NODEMEM_HANDLE)
		return malloc_usable_size((char *)store_nodemem_at(ref) - obj_off - 4) - 4;
	return (size_t)slabs[((size_t)ref * 4 - obj_off) >> SLAB_SHIFT].cls * 4;
}

uint32_t store_nodemem_ref_of(const void *obj, size_t obj_off)
{
	const char *o = obj;
	if (store_nodemem_base && o >= store_nodemem_base && o < store_nodemem_base + NODEMEM_REGION_BYTES)
		return (uint32_t)((size_t)(o - store_nodemem_base) / 4);
	uint32_t ref;
	memcpy(&ref, o - obj_off - 4, sizeof ref);
	return ref;
}

uint32_t store_nodemem_handle_new(void *p)
{
	pthread_mutex_lock(&lock);
	uint32_t ref = handle_take(p);
	pthread_mutex_unlock(&lock);
	return ref;
}

void store_nodemem_handle_set(uint32_t ref, void *p)
{
	assert(ref & NODEMEM_HANDLE);
	handle_slot_set(ref & ~NODEMEM_HANDLE, p);
}

void store_nodemem_handle_free(uint32_t ref)
{
	if (!ref)
		return;
	pthread_mutex_lock(&lock);
	handle_put(ref);
	pthread_mutex_unlock(&lock);
}

void store_nodemem_stats_get(struct store_nodemem_stats *out)
{
	pthread_mutex_lock(&lock);
	*out = (struct store_nodemem_stats){
		.slabs = slabs_live,
		.slab_bytes_used = slab_bytes_live,
		.handles = handles_live,
		.region_bytes = (uint64_t)next_slab << SLAB_SHIFT,
	};
	pthread_mutex_unlock(&lock);
}
