/*
 * store_watch_impl.h — the watch tables' structures, shared by store_watch.c
 * (registration, firing, dropping a watcher) and store_watch_ops.c (setWatches,
 * addWatch, checkWatches / removeWatches, the wchc / wchp dumps). See store_watch.c
 * for the invariants and the locking.
 */
#ifndef RK_STORE_WATCH_IMPL_H
#define RK_STORE_WATCH_IMPL_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "store/store_impl.h"

struct watch_reg {
	struct watch_reg *hash_next;
	uint64_t key;
	struct watch_path *wp;
	struct watcher *w;
	struct watch_reg *p_prev, *p_next; /* in wp->regs[kind] */
	struct watch_reg *w_prev, *w_next; /* in w->regs[shard] */
	uint8_t kind;
	uint8_t shard;
};

struct watch_path {
	struct watch_path *next;
	uint64_t hash;
	struct watch_reg *regs[WATCH_KINDS];
	uint32_t path_len;
	char path[];
};

static_assert(STORE_WATCH_TABLES <= UINT8_MAX + 1, "watch_reg.shard is a uint8_t");

static inline struct shard *table_at(struct store *s, unsigned table)
{
	assert(table < STORE_WATCH_TABLES);
	return table == STORE_WATCH_RECURSIVE ? &s->recursive : &s->shards[table];
}

static inline unsigned table_of(unsigned kind, uint64_t hash)
{
	return watch_kind_is_recursive(kind) ? STORE_WATCH_RECURSIVE : store_shard_of(hash);
}

static inline uint64_t reg_key(const struct watch_path *wp, uint64_t watcher, unsigned kind)
{
	uint64_t h = (uint64_t)(uintptr_t)wp * 0x9e3779b97f4a7c15ULL;
	h ^= (watcher + kind) * 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 31;
	return h * 0x94d049bb133111ebULL;
}

static inline struct watch_path *wp_find(struct shard *sh, const char *path, size_t len, uint64_t hash)
{
	for (struct watch_path *wp = sh->wp_buckets[hash & sh->wp_mask]; wp; wp = wp->next)
		if (wp->hash == hash && wp->path_len == len && memcmp(wp->path, path, len) == 0)
			return wp;
	return NULL;
}

static inline struct watch_reg *reg_find(struct shard *sh, const struct watch_path *wp, uint64_t watcher,
					 unsigned kind)
{
	uint64_t key = reg_key(wp, watcher, kind);
	for (struct watch_reg *r = sh->reg_buckets[key & sh->reg_mask]; r; r = r->hash_next)
		if (r->key == key && r->wp == wp && r->w->id == watcher && r->kind == kind)
			return r;
	return NULL;
}

/* Unlinks and frees one registration; leaves an empty watch_path for the caller. */
void watch_reg_remove(struct store *s, struct shard *sh, struct watch_reg *r);
/* Frees wp if it holds no registration any more (invariant 1). */
void watch_path_release_if_empty(struct store *s, struct shard *sh, struct watch_path *wp);

#endif
