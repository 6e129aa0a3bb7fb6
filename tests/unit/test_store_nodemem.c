/*
 * test_store_nodemem.c — the znodes' region (store/store_nodemem.c): refs name the
 * objects they were made for, blocks come in 4-byte steps, a freed block is reused,
 * an emptied slab gives its pages back, large blocks and dirs go behind handles, and
 * threads allocating at once never get the same block.
 *
 * Criterion runs each test in a process of its own, so each starts with an empty
 * region.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/store_nodemem.h"
#include "store_test_util.h"

static uint32_t alloc_obj(size_t size, size_t off, char **obj)
{
	void *o = NULL;
	uint32_t ref = store_nodemem_alloc(size, off, &o);
	cr_assert_neq(ref, 0u, "alloc %zu", size);
	*obj = o;
	return ref;
}

Test(store_nodemem, refs_name_their_objects_and_blocks_step_by_four)
{
	for (size_t size = 16; size <= NODEMEM_SMALL_MAX + 64; size += 4) {
		for (size_t off = 0; off <= 12; off += 12) {
			char *obj;
			uint32_t ref = alloc_obj(size, off, &obj);
			cr_assert_eq(store_nodemem_at(ref), obj);
			cr_assert_eq(store_nodemem_ref_of(obj, off), ref);
			cr_assert_eq((uintptr_t)obj % 4, 0u);
			size_t usable = store_nodemem_usable(ref, off);
			if (size <= NODEMEM_SMALL_MAX) {
				cr_assert_eq(ref & NODEMEM_HANDLE, 0u, "size %zu in the region", size);
				cr_assert_eq(usable, size, "size %zu: usable %zu", size, usable);
			} else {
				cr_assert_neq(ref & NODEMEM_HANDLE, 0u, "size %zu behind a handle", size);
				cr_assert_geq(usable, size);
			}
			for (size_t i = 0; i < size; i++)
				cr_assert_eq(obj[(ptrdiff_t)i - (ptrdiff_t)off], 0, "zeroed");
			memset(obj - off, 0xab, size);
		}
	}
	/* an odd size takes the next step up */
	char *obj;
	uint32_t ref = alloc_obj(183, 0, &obj);
	cr_assert_eq(store_nodemem_usable(ref, 0), 184u);
}

Test(store_nodemem, a_freed_block_is_reused_zeroed)
{
	char *a, *b;
	uint32_t ra = alloc_obj(180, 0, &a);
	memset(a, 0x5a, 180);
	store_nodemem_free(ra, 0);
	uint32_t rb = alloc_obj(177, 0, &b); /* the same class: 180 */
	cr_assert_eq(rb, ra);
	for (int i = 0; i < 180; i++)
		cr_assert_eq(b[i], 0);
}

static size_t resident_pages(const void *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
	size_t pages = ((uintptr_t)p + len - start + (size_t)page - 1) / (size_t)page;
	unsigned char *vec = malloc(pages);
	cr_assert(vec);
	cr_assert_eq(mincore((void *)start, pages * (size_t)page, vec), 0);
	size_t n = 0;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

Test(store_nodemem, emptied_slabs_give_their_pages_back)
{
	enum { N = 2000, SIZE = 184 }; /* about 5.6 slabs of 64 KiB */
	static uint32_t refs[N];
	static char *objs[N];
	for (int i = 0; i < N; i++) {
		refs[i] = alloc_obj(SIZE, 0, &objs[i]);
		memset(objs[i], 1, SIZE);
	}
	store_nodemem_flush(); /* the blocks this thread took ahead back to the slabs */
	struct store_nodemem_stats st;
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.slabs, 6u);
	cr_assert_eq(st.slab_bytes_used, (uint64_t)N * SIZE);
	char *lo = objs[0], *hi = objs[N - 1] + SIZE;
	cr_assert_geq(resident_pages(lo, (size_t)(hi - lo)), (size_t)(N * SIZE) / 4096);
	/* every other block: no slab empties, nothing is given back */
	for (int i = 0; i < N; i += 2)
		store_nodemem_free(refs[i], 0);
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.slabs, 6u);
	for (int i = 1; i < N; i += 2)
		store_nodemem_free(refs[i], 0);
	store_nodemem_flush(); /* this thread's cached blocks back to their slabs */
	store_nodemem_stats_get(&st);
	/* one slab of the class stays for the next block; the other five went */
	cr_assert_eq(st.slabs, 1u);
	cr_assert_eq(st.slab_bytes_used, 0u);
	cr_assert_leq(resident_pages(lo, (size_t)(hi - lo)), 17u, "at most the kept slab's 16 pages (+1 edge)");
	/* and a released slab serves another class */
	char *obj;
	uint32_t r = alloc_obj(64, 0, &obj);
	cr_assert_eq(r & NODEMEM_HANDLE, 0u);
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.slabs, 2u);
	cr_assert_lt((size_t)(obj - lo), (size_t)(hi - lo) + 65536, "a released slab, not a new one");
}

Test(store_nodemem, handles_follow_a_moved_block_and_are_reused)
{
	int a = 1, b = 2;
	uint32_t h = store_nodemem_handle_new(&a);
	cr_assert_neq(h & NODEMEM_HANDLE, 0u);
	cr_assert_eq(store_nodemem_at(h), &a);
	store_nodemem_handle_set(h, &b);
	cr_assert_eq(store_nodemem_at(h), &b);
	store_nodemem_handle_free(h);
	uint32_t h2 = store_nodemem_handle_new(&a);
	cr_assert_eq(h2, h, "the freed handle is the next one");
	struct store_nodemem_stats st;
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.handles, 1u);
	/* a large block: its handle is in front of the block */
	char *big;
	uint32_t r = alloc_obj(5000, 8, &big);
	cr_assert_eq(store_nodemem_ref_of(big, 8), r);
	store_nodemem_free(r, 8);
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.handles, 1u);
}

#define THREADS 4
#define PER_THREAD 20000

static void *churn(void *arg)
{
	uintptr_t seed = (uintptr_t)arg;
	uint32_t *refs = malloc(PER_THREAD * sizeof *refs);
	char **objs = malloc(PER_THREAD * sizeof *objs);
	size_t *sizes = malloc(PER_THREAD * sizeof *sizes);
	if (!refs || !objs || !sizes)
		return (void *)3;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < PER_THREAD; i++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			sizes[i] = 16 + (seed >> 33) % 1100;
			void *o;
			refs[i] = store_nodemem_alloc(sizes[i], 0, &o);
			if (!refs[i])
				return (void *)1;
			objs[i] = o;
			memset(objs[i], (int)(uintptr_t)arg, sizes[i]);
		}
		for (int i = 0; i < PER_THREAD; i++) {
			for (size_t k = 0; k < sizes[i]; k++)
				if (objs[i][k] != (char)(uintptr_t)arg)
					return (void *)2; /* another thread wrote into this block */
			store_nodemem_free(refs[i], 0);
		}
	}
	free(refs);
	free(objs);
	free(sizes);
	return NULL;
}

Test(store_nodemem, threads_allocating_at_once_never_share_a_block)
{
	pthread_t t[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		cr_assert_null(rc, "thread %d: %p", i, rc);
	}
	struct store_nodemem_stats st;
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.slab_bytes_used, 0u);
	cr_assert_eq(st.handles, 0u);
}

/*
 * Without the region (RINGKEEPER_NODE_REGION=off, as when the address space cannot be
 * reserved) every block is behind a handle, and the store works all the same: nodes,
 * a parent's children, deletes, a parent's dir that grows and shrinks.
 */
Test(store_nodemem, without_the_region_every_node_is_behind_a_handle)
{
	setenv("RINGKEEPER_NODE_REGION", "off", 1);
	char *obj;
	uint32_t ref = alloc_obj(184, 12, &obj);
	cr_assert_neq(ref & NODEMEM_HANDLE, 0u);
	cr_assert_eq(store_nodemem_ref_of(obj, 12), ref);
	cr_assert_eq(store_nodemem_at(ref), obj);
	cr_assert_geq(store_nodemem_usable(ref, 12), 184u);
	store_nodemem_free(ref, 12);

	t_setup(); /* a store with a session (store_test_util.h) */
	char path[64];
	cr_assert_eq(t_create("/p", NULL, 0), ZK_OK);
	for (int i = 1; i < 500; i++) {
		snprintf(path, sizeof path, "/p/c%d", i);
		cr_assert_eq(t_create(path, "value", 0), ZK_OK, "%s", path);
	}
	struct store_nodemem_stats st;
	store_nodemem_stats_get(&st);
	cr_assert_geq(st.handles, 500u + 1u, "the nodes and /p's dir");
	cr_assert_eq(st.slabs, 0u);
	struct store_memory m;
	store_memory_get(T.s, &m);
	cr_assert_geq(m.nodes, 500u);
	uint64_t slots_full = m.child_slots; /* /p's and the system nodes' */
	cr_assert_geq(slots_full, 499u * 4);
	cr_assert_eq(t_stat("/p").num_children, 499);
	cr_assert_eq(t_read(0, ZK_OP_GET_DATA, t_path_watch_body("/p/c77", false)), ZK_OK);
	for (int i = 1; i < 500; i++) {
		snprintf(path, sizeof path, "/p/c%d", i);
		cr_assert_eq(t_apply(ZK_OP_DELETE, t_path_int_body(path, -1)), ZK_OK, "%s", path);
	}
	store_memory_get(T.s, &m);
	cr_assert_eq(m.child_slots, slots_full - 499u * 4);
	cr_assert_eq(t_stat("/p").num_children, 0);
	t_teardown();
	store_nodemem_stats_get(&st);
	cr_assert_eq(st.handles, 0u, "every handle given back");
}
