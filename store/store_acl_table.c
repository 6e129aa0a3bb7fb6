/*
 * store_acl_table.c — the store's ACL lists, each distinct list kept once and shared
 * by every node that has it (as ZooKeeper's ReferenceCountedACLCache): a node holds
 * a 32-bit id (znode.acl_id), not a list of its own. An id names a list together
 * with an aversion (the nodes' ACL version): nearly every node has aversion 0, so
 * keeping it here instead of in each node saves 4 bytes a node, and a setACL moves
 * its node to the id of (new list, aversion + 1).
 *
 * Layout
 *   slots   id -> {list, aversion, references, hash, chain}, in chunks of STORE_ACL_CHUNK
 *           slots that never move, reached through a directory of chunk pointers.
 *           The directory doubles when full; the old one is kept until the store is
 *           destroyed (a reader may still be indexing it).
 *   index   hash of a list's entries and aversion -> the ids with that hash (chained through the
 *           slots), to find an equal list when one is interned.
 *   id 0    the open list [31, world:anyone] (store_acl_open) with aversion 0: never
 *           counted, never freed, not in the index. The open list with another
 *           aversion has a slot like any other (its list is store_acl_open, which
 *           store_acl_free leaves alone).
 *
 * Threads and invariants
 *   1. store_acl_intern and store_acl_release (the applier; the loaders, several at
 *      once) hold acls.lock. Readers do not: store_acl_at() loads the directory
 *      (published with release after the chunk it names was made) and reads the slot
 *      of an id found in a node under that node's shard lock.
 *   2. A slot's list lives while its references are > 0: each linked node holds one,
 *      and so does each undo entry holding a replaced id until its txn ends. So the
 *      id a reader finds in a node names a live list for as long as it holds the lock.
 *   3. Lists are immutable; two live slots never hold equal lists with the same
 *      aversion.
 *   4. Freed slots are reused (a free list through `chain`).
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

#define ACL_NONE UINT32_MAX

static struct acl_slot *slot_of(struct store *s, uint32_t id)
{
	struct acl_slot **dir = atomic_load_explicit(&s->acls.dir, memory_order_relaxed);
	return &dir[id >> STORE_ACL_CHUNK_SHIFT][id & (STORE_ACL_CHUNK - 1)];
}

static uint64_t list_hash(const struct acl_list *l)
{
	uint64_t h = store_hash_bytes(&l->count, sizeof l->count);
	for (uint32_t i = 0; i < l->count; i++) {
		const struct acl_entry *e = &l->entries[i];
		h = (h ^ (uint64_t)(uint32_t)e->perms) * 0x9e3779b97f4a7c15ULL;
		h ^= store_hash_bytes(e->scheme, e->scheme_len);
		h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
		h ^= store_hash_bytes(e->id, e->id_len);
	}
	return h;
}

static bool list_equal(const struct acl_list *a, const struct acl_list *b)
{
	if (a->count != b->count)
		return false;
	for (uint32_t i = 0; i < a->count; i++) {
		const struct acl_entry *x = &a->entries[i], *y = &b->entries[i];
		if (x->perms != y->perms || x->scheme_len != y->scheme_len || x->id_len != y->id_len ||
		    memcmp(x->scheme, y->scheme, x->scheme_len) != 0 || memcmp(x->id, y->id, x->id_len) != 0)
			return false;
	}
	return true;
}

void store_acls_init(struct store *s)
{
	pthread_mutex_init(&s->acls.lock, NULL);
	s->acls.dir_cap = 16;
	struct acl_slot **dir = calloc(s->acls.dir_cap, sizeof *dir);
	s->acls.mask = 63;
	s->acls.buckets = malloc((s->acls.mask + 1) * sizeof *s->acls.buckets);
	assert(dir && s->acls.buckets);
	memset(s->acls.buckets, 0xff, (s->acls.mask + 1) * sizeof *s->acls.buckets);
	dir[0] = calloc(STORE_ACL_CHUNK, sizeof **dir);
	assert(dir[0]);
	atomic_store_explicit(&s->acls.dir, dir, memory_order_relaxed);
	s->acls.used = 1; /* id 0 is the open list (its slot stays empty) */
	s->acls.free = ACL_NONE;
}

void store_acls_destroy(struct store *s)
{
	struct acl_slot **dir = atomic_load_explicit(&s->acls.dir, memory_order_relaxed);
	for (uint32_t id = 1; id < s->acls.used; id++)
		store_acl_free((struct acl_list *)slot_of(s, id)->list);
	for (uint32_t k = 0; k < s->acls.dir_cap && dir[k]; k++)
		free(dir[k]);
	free(dir);
	for (size_t i = 0; i < s->acls.old_count; i++)
		free(s->acls.old_dirs[i]);
	free(s->acls.old_dirs);
	free(s->acls.buckets);
	pthread_mutex_destroy(&s->acls.lock);
}

/* Room for one more id: a new chunk, and first a larger directory when full. Locked. */
static int grow(struct store *s)
{
	uint32_t chunk = s->acls.used >> STORE_ACL_CHUNK_SHIFT;
	if (chunk >= STORE_ACL_CHUNKS_MAX)
		return -E2BIG;
	struct acl_slot **dir = atomic_load_explicit(&s->acls.dir, memory_order_relaxed);
	if (chunk == s->acls.dir_cap) {
		struct acl_slot ***olds = realloc(s->acls.old_dirs, (s->acls.old_count + 1) * sizeof *olds);
		if (!olds)
			return -ENOMEM;
		s->acls.old_dirs = olds;
		struct acl_slot **bigger = calloc(s->acls.dir_cap * 2, sizeof *bigger);
		if (!bigger)
			return -ENOMEM;
		memcpy(bigger, dir, s->acls.dir_cap * sizeof *dir);
		olds[s->acls.old_count++] = dir;
		s->acls.dir_cap *= 2;
		atomic_store_explicit(&s->acls.dir, bigger, memory_order_release);
		dir = bigger;
	}
	dir[chunk] = calloc(STORE_ACL_CHUNK, sizeof **dir);
	return dir[chunk] ? 0 : -ENOMEM;
}

/* The index gets twice the buckets when it holds as many lists. Locked. */
static void index_grow(struct store *s)
{
	size_t count = (s->acls.mask + 1) * 2;
	uint32_t *b = malloc(count * sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	memset(b, 0xff, count * sizeof *b);
	for (uint32_t id = 1; id < s->acls.used; id++) {
		struct acl_slot *sl = slot_of(s, id);
		if (!sl->list)
			continue;
		sl->chain = b[sl->hash & (count - 1)];
		b[sl->hash & (count - 1)] = id;
	}
	free(s->acls.buckets);
	s->acls.buckets = b;
	s->acls.mask = count - 1;
}

/* A free slot's id, or ACL_NONE when out of memory (or of ids). Locked. */
static uint32_t slot_take(struct store *s)
{
	uint32_t id = s->acls.free;
	if (id != ACL_NONE) {
		s->acls.free = slot_of(s, id)->chain;
		return id;
	}
	if ((s->acls.used & (STORE_ACL_CHUNK - 1)) == 0 && grow(s) != 0)
		return ACL_NONE;
	return s->acls.used++;
}

uint32_t store_acl_intern(struct store *s, struct acl_list *acl, int32_t aversion)
{
	if (acl != &store_acl_open && list_equal(acl, &store_acl_open)) {
		store_acl_free(acl);
		acl = (struct acl_list *)&store_acl_open; /* never freed (store_acl_free) */
	}
	if (acl == &store_acl_open && aversion == 0)
		return STORE_ACL_OPEN_ID;
	uint64_t h = (list_hash(acl) ^ (uint32_t)aversion) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 31;
	pthread_mutex_lock(&s->acls.lock);
	for (uint32_t id = s->acls.buckets[h & s->acls.mask]; id != ACL_NONE; id = slot_of(s, id)->chain) {
		struct acl_slot *sl = slot_of(s, id);
		if (sl->hash == h && sl->aversion == aversion && list_equal(sl->list, acl)) {
			sl->refs++;
			pthread_mutex_unlock(&s->acls.lock);
			store_acl_free(acl);
			return id;
		}
	}
	uint32_t id = slot_take(s);
	if (id == ACL_NONE) {
		pthread_mutex_unlock(&s->acls.lock);
		store_acl_free(acl);
		return STORE_ACL_NONE;
	}
	if (s->acls.count >= s->acls.mask + 1)
		index_grow(s);
	struct acl_slot *sl = slot_of(s, id);
	sl->list = acl;
	sl->hash = h;
	sl->aversion = aversion;
	sl->refs = 1;
	sl->chain = s->acls.buckets[h & s->acls.mask];
	s->acls.buckets[h & s->acls.mask] = id;
	s->acls.count++;
	pthread_mutex_unlock(&s->acls.lock);
	return id;
}

void store_acl_release(struct store *s, uint32_t id)
{
	if (id == STORE_ACL_OPEN_ID)
		return;
	pthread_mutex_lock(&s->acls.lock);
	struct acl_slot *sl = slot_of(s, id);
	assert(sl->list && sl->refs > 0);
	const struct acl_list *gone = NULL;
	if (--sl->refs == 0) {
		uint32_t *pp = &s->acls.buckets[sl->hash & s->acls.mask];
		while (*pp != id) {
			assert(*pp != ACL_NONE);
			pp = &slot_of(s, *pp)->chain;
		}
		*pp = sl->chain;
		gone = sl->list;
		sl->list = NULL;
		sl->chain = s->acls.free;
		s->acls.free = id;
		s->acls.count--;
	}
	pthread_mutex_unlock(&s->acls.lock);
	store_acl_free((struct acl_list *)gone);
}

size_t store_acl_table_bytes(struct store *s)
{
	pthread_mutex_lock(&s->acls.lock);
	size_t bytes = (s->acls.mask + 1) * sizeof *s->acls.buckets;
	struct acl_slot **dir = atomic_load_explicit(&s->acls.dir, memory_order_relaxed);
	bytes += s->acls.dir_cap * sizeof *dir;
	for (uint32_t k = 0; k < s->acls.dir_cap && dir[k]; k++)
		bytes += STORE_ACL_CHUNK * sizeof **dir;
	for (uint32_t id = 1; id < s->acls.used; id++)
		if (slot_of(s, id)->list && slot_of(s, id)->list != &store_acl_open)
			bytes += malloc_usable_size((void *)slot_of(s, id)->list);
	pthread_mutex_unlock(&s->acls.lock);
	return bytes;
}
