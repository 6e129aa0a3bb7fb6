/*
 * store_watch.c — watch tables: registration, one-shot firing, per-watcher drop,
 * and setWatches / setWatches2 catch-up.
 *
 * Structures (all in the shard of the watched path, guarded by its mutex)
 *   watch_path   one per watched path (the node need not exist); one list of
 *                registrations per kind (data/exist, child).
 *   watch_reg    one per (path, watcher, kind): linked in its watch_path's list, in
 *                its watcher's list for this shard, and in the shard's reg hash, so
 *                de-duplication, firing and dropping are all O(1) per registration.
 *   watcher      per connection (id chosen by the caller), in a global table under
 *                watchers.lock, with regs[STORE_SHARDS] list heads; regs[i] is guarded
 *                by shard i's mutex.
 *
 * Invariants
 *   1. A watch_path exists iff at least one of its lists is non-empty.
 *   2. At most one watch_reg per (watch_path, watcher, kind).
 *   3. store_watcher_drop() does not race with registrations by the same watcher
 *      (one connection = one owner thread); it may race with firing (the applier).
 *
 * Persistent / persistent-recursive watches (addWatch) are not implemented yet; they
 * would be two more kinds in the same lists, skipped by the one-shot removal.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/zk_proto.h"
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

static uint64_t reg_key(const struct watch_path *wp, uint64_t watcher, unsigned kind)
{
	uint64_t h = (uint64_t)(uintptr_t)wp * 0x9e3779b97f4a7c15ULL;
	h ^= (watcher + kind) * 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 31;
	return h * 0x94d049bb133111ebULL;
}

void store_watches_init(struct store *s)
{
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		sh->wp_mask = 15;
		sh->wp_buckets = calloc(16, sizeof *sh->wp_buckets);
		sh->reg_mask = 15;
		sh->reg_buckets = calloc(16, sizeof *sh->reg_buckets);
		assert(sh->wp_buckets && sh->reg_buckets);
	}
	pthread_mutex_init(&s->watchers.lock, NULL);
	s->watchers.mask = 63;
	s->watchers.buckets = calloc(64, sizeof *s->watchers.buckets);
	assert(s->watchers.buckets);
}

void store_watches_destroy(struct store *s)
{
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		for (size_t b = 0; b <= sh->reg_mask; b++) {
			struct watch_reg *r = sh->reg_buckets[b];
			while (r) {
				struct watch_reg *next = r->hash_next;
				free(r);
				r = next;
			}
		}
		for (size_t b = 0; b <= sh->wp_mask; b++) {
			struct watch_path *wp = sh->wp_buckets[b];
			while (wp) {
				struct watch_path *next = wp->next;
				free(wp);
				wp = next;
			}
		}
		free(sh->reg_buckets);
		free(sh->wp_buckets);
	}
	for (size_t b = 0; b <= s->watchers.mask; b++) {
		struct watcher *w = s->watchers.buckets[b];
		while (w) {
			struct watcher *next = w->next;
			free(w);
			w = next;
		}
	}
	free(s->watchers.buckets);
	pthread_mutex_destroy(&s->watchers.lock);
}

static struct watch_path *wp_find(struct shard *sh, const char *path, size_t len, uint64_t hash)
{
	for (struct watch_path *wp = sh->wp_buckets[hash & sh->wp_mask]; wp; wp = wp->next)
		if (wp->hash == hash && wp->path_len == len && memcmp(wp->path, path, len) == 0)
			return wp;
	return NULL;
}

static void wp_grow(struct shard *sh)
{
	size_t count = (sh->wp_mask + 1) * 2;
	struct watch_path **b = calloc(count, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i <= sh->wp_mask; i++) {
		struct watch_path *wp = sh->wp_buckets[i];
		while (wp) {
			struct watch_path *next = wp->next;
			wp->next = b[wp->hash & (count - 1)];
			b[wp->hash & (count - 1)] = wp;
			wp = next;
		}
	}
	free(sh->wp_buckets);
	sh->wp_buckets = b;
	sh->wp_mask = count - 1;
}

static void reg_grow(struct shard *sh)
{
	size_t count = (sh->reg_mask + 1) * 2;
	struct watch_reg **b = calloc(count, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i <= sh->reg_mask; i++) {
		struct watch_reg *r = sh->reg_buckets[i];
		while (r) {
			struct watch_reg *next = r->hash_next;
			r->hash_next = b[r->key & (count - 1)];
			b[r->key & (count - 1)] = r;
			r = next;
		}
	}
	free(sh->reg_buckets);
	sh->reg_buckets = b;
	sh->reg_mask = count - 1;
}

static struct watch_reg *reg_find(struct shard *sh, const struct watch_path *wp, uint64_t watcher, unsigned kind)
{
	uint64_t key = reg_key(wp, watcher, kind);
	for (struct watch_reg *r = sh->reg_buckets[key & sh->reg_mask]; r; r = r->hash_next)
		if (r->key == key && r->wp == wp && r->w->id == watcher && r->kind == kind)
			return r;
	return NULL;
}

static bool wp_empty(const struct watch_path *wp)
{
	for (unsigned k = 0; k < WATCH_KINDS; k++)
		if (wp->regs[k])
			return false;
	return true;
}

static void wp_release_if_empty(struct store *s, struct shard *sh, struct watch_path *wp)
{
	if (!wp_empty(wp))
		return;
	struct watch_path **pp = &sh->wp_buckets[wp->hash & sh->wp_mask];
	while (*pp != wp)
		pp = &(*pp)->next;
	*pp = wp->next;
	sh->wp_count--;
	atomic_fetch_sub_explicit(&s->watch_paths, 1, memory_order_relaxed);
	free(wp);
}

/* Unlinks and frees one registration; leaves an empty watch_path for the caller. */
static void reg_remove(struct store *s, struct shard *sh, struct watch_reg *r)
{
	struct watch_reg **pp = &sh->reg_buckets[r->key & sh->reg_mask];
	while (*pp != r)
		pp = &(*pp)->hash_next;
	*pp = r->hash_next;
	sh->reg_count--;
	if (r->p_prev)
		r->p_prev->p_next = r->p_next;
	else
		r->wp->regs[r->kind] = r->p_next;
	if (r->p_next)
		r->p_next->p_prev = r->p_prev;
	if (r->w_prev)
		r->w_prev->w_next = r->w_next;
	else
		r->w->regs[r->shard].head = r->w_next;
	if (r->w_next)
		r->w_next->w_prev = r->w_prev;
	atomic_fetch_sub_explicit(&s->watch_count, 1, memory_order_relaxed);
	free(r);
}

static struct watcher *watcher_get(struct store *s, uint64_t id, bool create)
{
	pthread_mutex_lock(&s->watchers.lock);
	size_t b = (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 24) & s->watchers.mask;
	struct watcher *w = s->watchers.buckets[b];
	while (w && w->id != id)
		w = w->next;
	if (!w && create) {
		w = calloc(1, sizeof *w);
		if (w) {
			w->id = id;
			if (s->watchers.count >= s->watchers.mask + 1) {
				size_t count = (s->watchers.mask + 1) * 2;
				struct watcher **nb = calloc(count, sizeof *nb);
				if (nb) {
					for (size_t i = 0; i <= s->watchers.mask; i++) {
						struct watcher *x = s->watchers.buckets[i];
						while (x) {
							struct watcher *next = x->next;
							size_t k = (size_t)((x->id * 0x9e3779b97f4a7c15ULL) >> 24) & (count - 1);
							x->next = nb[k];
							nb[k] = x;
							x = next;
						}
					}
					free(s->watchers.buckets);
					s->watchers.buckets = nb;
					s->watchers.mask = count - 1;
					b = (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 24) & s->watchers.mask;
				}
			}
			w->next = s->watchers.buckets[b];
			s->watchers.buckets[b] = w;
			s->watchers.count++;
		}
	}
	pthread_mutex_unlock(&s->watchers.lock);
	return w;
}

int store_watch_add(struct store *s, unsigned shard, const char *path, size_t len, uint64_t hash, uint64_t watcher,
		    enum watch_kind kind)
{
	assert(shard == store_shard_of(hash) && kind < WATCH_KINDS);
	struct shard *sh = &s->shards[shard];
	struct watch_path *wp = wp_find(sh, path, len, hash);
	if (wp && reg_find(sh, wp, watcher, kind))
		return 0;
	struct watcher *w = watcher_get(s, watcher, true);
	if (!w)
		return -ENOMEM;
	if (!wp) {
		wp = calloc(1, sizeof *wp + len);
		if (!wp)
			return -ENOMEM;
		memcpy(wp->path, path, len);
		wp->path_len = (uint32_t)len;
		wp->hash = hash;
		if (sh->wp_count >= sh->wp_mask + 1)
			wp_grow(sh);
		wp->next = sh->wp_buckets[hash & sh->wp_mask];
		sh->wp_buckets[hash & sh->wp_mask] = wp;
		sh->wp_count++;
		atomic_fetch_add_explicit(&s->watch_paths, 1, memory_order_relaxed);
	}
	struct watch_reg *r = calloc(1, sizeof *r);
	if (!r) {
		wp_release_if_empty(s, sh, wp);
		return -ENOMEM;
	}
	r->key = reg_key(wp, watcher, kind);
	r->wp = wp;
	r->w = w;
	r->kind = (uint8_t)kind;
	r->shard = (uint8_t)shard;
	if (sh->reg_count >= sh->reg_mask + 1)
		reg_grow(sh);
	r->hash_next = sh->reg_buckets[r->key & sh->reg_mask];
	sh->reg_buckets[r->key & sh->reg_mask] = r;
	sh->reg_count++;
	r->p_next = wp->regs[kind];
	if (r->p_next)
		r->p_next->p_prev = r;
	wp->regs[kind] = r;
	r->w_next = w->regs[shard].head;
	if (r->w_next)
		r->w_next->w_prev = r;
	w->regs[shard].head = r;
	atomic_fetch_add_explicit(&s->watch_count, 1, memory_order_relaxed);
	return 0;
}

/* Fires and removes every registration of one kind; skip_if_kind: de-duplication. */
static void fire_kind(struct store *s, struct shard *sh, struct watch_path *wp, unsigned kind, int skip_if_kind,
		      const char *path, size_t len, int32_t type, int64_t zxid, store_event_fn fn, void *ctx)
{
	while (wp->regs[kind]) {
		struct watch_reg *r = wp->regs[kind];
		bool skip = skip_if_kind >= 0 && reg_find(sh, wp, r->w->id, (unsigned)skip_if_kind);
		if (!skip && fn)
			fn(ctx, r->w->id, type, path, len, zxid);
		reg_remove(s, sh, r);
	}
}

void store_watch_trigger(struct store *s, const char *path, size_t len, uint64_t hash, int32_t type, int64_t zxid,
			 store_event_fn fn, void *ctx)
{
	struct shard *sh = &s->shards[store_shard_of(hash)];
	struct watch_path *wp = wp_find(sh, path, len, hash);
	if (!wp)
		return;
	switch (type) {
	case ZK_EVENT_NODE_CREATED:
	case ZK_EVENT_NODE_DATA_CHANGED:
		fire_kind(s, sh, wp, WATCH_DATA, -1, path, len, type, zxid, fn, ctx);
		break;
	case ZK_EVENT_NODE_CHILDREN_CHANGED:
		fire_kind(s, sh, wp, WATCH_CHILD, -1, path, len, type, zxid, fn, ctx);
		break;
	case ZK_EVENT_NODE_DELETED:
		/* A watcher holding both a data and a child watch gets one NodeDeleted. */
		fire_kind(s, sh, wp, WATCH_CHILD, WATCH_DATA, path, len, type, zxid, fn, ctx);
		fire_kind(s, sh, wp, WATCH_DATA, -1, path, len, type, zxid, fn, ctx);
		break;
	default:
		assert(!"unexpected event type");
	}
	wp_release_if_empty(s, sh, wp);
}

void store_watcher_drop(struct store *s, uint64_t watcher)
{
	pthread_mutex_lock(&s->watchers.lock);
	size_t b = (size_t)((watcher * 0x9e3779b97f4a7c15ULL) >> 24) & s->watchers.mask;
	struct watcher **pp = &s->watchers.buckets[b];
	while (*pp && (*pp)->id != watcher)
		pp = &(*pp)->next;
	struct watcher *w = *pp;
	if (w) {
		*pp = w->next;
		s->watchers.count--;
	}
	pthread_mutex_unlock(&s->watchers.lock);
	if (!w)
		return;
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		pthread_mutex_lock(&sh->lock);
		while (w->regs[i].head) {
			struct watch_reg *r = w->regs[i].head;
			struct watch_path *wp = r->wp;
			reg_remove(s, sh, r);
			wp_release_if_empty(s, sh, wp);
		}
		pthread_mutex_unlock(&sh->lock);
	}
	free(w);
}

/* ---------------------------------------------------------------- setWatches */

enum { SW_DATA, SW_EXIST, SW_CHILD, SW_LISTS_MAX = 5 };

static void set_watches_no_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
				 int64_t zxid)
{
}

static void set_watches_one(struct store *s, uint64_t watcher, int list, struct jute_bytes p, int64_t rel_zxid,
			    store_event_fn fn, void *ctx)
{
	const char *path = (const char *)p.data;
	size_t len = (size_t)p.len;
	if (p.len <= 0)
		return; /* ZooKeeper would look up "" / null: nothing to watch */
	uint64_t hash = store_hash_bytes(path, len);
	unsigned si = store_shard_of(hash);
	struct shard *sh = &s->shards[si];
	pthread_mutex_lock(&sh->lock);
	struct znode *n = store_node_find(s, path, len, hash);
	if (!fn)
		fn = set_watches_no_event;
	switch (list) {
	case SW_DATA:
		if (!n)
			fn(ctx, watcher, ZK_EVENT_NODE_DELETED, path, len, -1);
		else if (n->mzxid > rel_zxid)
			fn(ctx, watcher, ZK_EVENT_NODE_DATA_CHANGED, path, len, -1);
		else
			store_watch_add(s, si, path, len, hash, watcher, WATCH_DATA);
		break;
	case SW_EXIST:
		if (n)
			fn(ctx, watcher, ZK_EVENT_NODE_CREATED, path, len, -1);
		else
			store_watch_add(s, si, path, len, hash, watcher, WATCH_DATA);
		break;
	case SW_CHILD:
		if (!n)
			fn(ctx, watcher, ZK_EVENT_NODE_DELETED, path, len, -1);
		else if (n->pzxid > rel_zxid)
			fn(ctx, watcher, ZK_EVENT_NODE_CHILDREN_CHANGED, path, len, -1);
		else
			store_watch_add(s, si, path, len, hash, watcher, WATCH_CHILD);
		break;
	default:
		break; /* persistent kinds: not implemented, see the file header */
	}
	pthread_mutex_unlock(&sh->lock);
}

int32_t store_set_watches(struct store *s, uint64_t watcher, int32_t opcode, const uint8_t *body, size_t body_len,
			  store_event_fn on_event, void *ctx)
{
	int lists = opcode == ZK_OP_SET_WATCHES2 ? 5 : opcode == ZK_OP_SET_WATCHES ? 3 : 0;
	if (!lists)
		return ZK_UNIMPLEMENTED;
	/* Decode the whole record first: a malformed one must not half-register. */
	struct jute_reader r;
	jute_reader_init(&r, body, body_len);
	int64_t rel_zxid = jute_read_long(&r);
	for (int l = 0; l < lists && jute_reader_ok(&r); l++) {
		int32_t count = jute_read_vector_count(&r, 4);
		for (int32_t i = 0; i < count && jute_reader_ok(&r); i++)
			jute_read_string(&r);
	}
	if (!jute_reader_ok(&r))
		return ZK_MARSHALLINGERROR;
	jute_reader_init(&r, body, body_len);
	jute_read_long(&r);
	for (int l = 0; l < lists; l++) {
		int32_t count = jute_read_vector_count(&r, 4);
		for (int32_t i = 0; i < count; i++) {
			struct jute_bytes p = jute_read_string(&r);
			set_watches_one(s, watcher, l, p, rel_zxid, on_event, ctx);
		}
	}
	assert(jute_reader_ok(&r));
	return ZK_OK;
}
