/*
 * store_watch.c — watch tables: registration, firing (one-shot and persistent),
 * per-watcher drop, setWatches / setWatches2 catch-up, addWatch, checkWatches and
 * removeWatches.
 *
 * Structures (all in one watch table, guarded by its mutex). The watch tables are
 * the STORE_SHARDS shards (a path's standard and PERSISTENT registrations live in
 * the shard of the path) plus store->recursive, which holds every
 * PERSISTENT_RECURSIVE registration: a change to /a/b/c must look up /a/b/c, /a/b,
 * /a and /, which live in different shards that the applier has not locked.
 *   watch_path   one per watched path (the node need not exist); one list of
 *                registrations per kind (data/exist, child, persistent, recursive).
 *   watch_reg    one per (path, watcher, kind): linked in its watch_path's list, in
 *                its watcher's list for this shard, and in the shard's reg hash, so
 *                de-duplication, firing and dropping are all O(1) per registration.
 *   watcher      per connection (id chosen by the caller), in a global table under
 *                watchers.lock, with regs[STORE_WATCH_TABLES] list heads; regs[i] is
 *                guarded by table i's mutex.
 *
 * Invariants
 *   1. A watch_path exists iff at least one of its lists is non-empty.
 *   2. At most one watch_reg per (watch_path, watcher, kind).
 *   3. store_watcher_drop() does not race with registrations by the same watcher
 *      (one connection = one owner thread); it may race with firing (the applier).
 *   4. recursive_watch_count == number of PERSISTENT_RECURSIVE registrations, so a
 *      write pays for the ancestor walk only while such a watch exists.
 *   5. One change notifies a watcher at most once, however many of its registrations
 *      match (standard, persistent, recursive on several ancestors): firing stamps
 *      watcher->fired_seq with the trigger's sequence number (applier only).
 *
 * Semantics: ZooKeeper 3.8.0's WatchManager (see enum watch_kind): a data and a
 * child table, one mode per (path, watcher, table), replaced by a later registration;
 * firing removes standard entries and keeps the persistent ones, which survive the
 * deletion of their node. Events are filtered by READ on the changed node with the
 * identities the watcher registered with (CVE-2024-23944 fix, in the Debian 3.8.0
 * build the back-to-back tests run against).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
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

static struct shard *table_at(struct store *s, unsigned table)
{
	assert(table < STORE_WATCH_TABLES);
	return table == STORE_WATCH_RECURSIVE ? &s->recursive : &s->shards[table];
}

static unsigned table_of(unsigned kind, uint64_t hash)
{
	return watch_kind_is_recursive(kind) ? STORE_WATCH_RECURSIVE : store_shard_of(hash);
}

static uint64_t reg_key(const struct watch_path *wp, uint64_t watcher, unsigned kind)
{
	uint64_t h = (uint64_t)(uintptr_t)wp * 0x9e3779b97f4a7c15ULL;
	h ^= (watcher + kind) * 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 31;
	return h * 0x94d049bb133111ebULL;
}

void store_watches_init(struct store *s)
{
	pthread_mutex_init(&s->recursive.lock, NULL);
	for (unsigned i = 0; i < STORE_WATCH_TABLES; i++) {
		struct shard *sh = table_at(s, i);
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

static void watcher_free(struct watcher *w)
{
	pthread_mutex_destroy(&w->auth_lock);
	free(w->auth_ids);
	free(w);
}

void store_watches_destroy(struct store *s)
{
	for (unsigned i = 0; i < STORE_WATCH_TABLES; i++) {
		struct shard *sh = table_at(s, i);
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
			watcher_free(w);
			w = next;
		}
	}
	free(s->watchers.buckets);
	pthread_mutex_destroy(&s->watchers.lock);
	pthread_mutex_destroy(&s->recursive.lock);
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
	atomic_fetch_sub_explicit(&r->w->reg_count, 1, memory_order_relaxed);
	if (watch_kind_is_recursive(r->kind))
		atomic_fetch_sub_explicit(&s->recursive_watch_count, 1, memory_order_relaxed);
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
			pthread_mutex_init(&w->auth_lock, NULL);
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

/* True when the watcher's stored identities equal auth. Caller holds w->auth_lock. */
static bool watcher_auth_same(const struct watcher *w, const struct store_auth *auth)
{
	if (w->auth_count != auth->ids_count || w->auth_super != auth->super)
		return false;
	for (int i = 0; i < auth->ids_count; i++) {
		const struct zk_id *a = &w->auth_ids[i], *b = &auth->ids[i];
		if (a->scheme.len != b->scheme.len || a->id.len != b->id.len ||
		    (a->scheme.len > 0 && memcmp(a->scheme.data, b->scheme.data, (size_t)a->scheme.len) != 0) ||
		    (a->id.len > 0 && memcmp(a->id.data, b->id.data, (size_t)a->id.len) != 0))
			return false;
	}
	return true;
}

/* Replaces the watcher's identities with a copy of auth (unchanged on NULL or OOM). */
static void watcher_auth_set(struct watcher *w, const struct store_auth *auth)
{
	if (!auth)
		return;
	pthread_mutex_lock(&w->auth_lock);
	bool same = watcher_auth_same(w, auth);
	pthread_mutex_unlock(&w->auth_lock);
	if (same)
		return; /* the common case: a connection's identities rarely change */
	int count = auth->ids_count > 0 ? auth->ids_count : 0;
	size_t bytes = (size_t)count * sizeof(struct zk_id);
	for (int i = 0; i < count; i++)
		bytes += (size_t)(auth->ids[i].scheme.len > 0 ? auth->ids[i].scheme.len : 0) +
			 (size_t)(auth->ids[i].id.len > 0 ? auth->ids[i].id.len : 0);
	struct zk_id *ids = count ? malloc(bytes) : NULL;
	if (count && !ids)
		return;
	uint8_t *p = (uint8_t *)(ids + count);
	for (int i = 0; i < count; i++) {
		const struct zk_id *src = &auth->ids[i];
		struct jute_bytes parts[2] = { src->scheme, src->id };
		for (int k = 0; k < 2; k++) {
			if (parts[k].len > 0) {
				memcpy(p, parts[k].data, (size_t)parts[k].len);
				parts[k].data = p;
				p += parts[k].len;
			} else {
				parts[k].data = NULL;
			}
		}
		ids[i].scheme = parts[0];
		ids[i].id = parts[1];
	}
	pthread_mutex_lock(&w->auth_lock);
	struct zk_id *old = w->auth_ids;
	w->auth_ids = ids;
	w->auth_count = count;
	w->auth_super = auth->super;
	pthread_mutex_unlock(&w->auth_lock);
	free(old);
}

/* True when the watcher's identities grant READ under acl (NULL: no filter). */
static bool watcher_may_read(struct watcher *w, const struct acl_list *acl)
{
	if (!acl || store_acl_permits(acl, ZK_PERM_READ, NULL))
		return true; /* open to world:anyone: no need to look at the identities */
	pthread_mutex_lock(&w->auth_lock);
	struct store_auth a = { w->auth_ids, w->auth_count, w->auth_super };
	bool ok = store_acl_permits(acl, ZK_PERM_READ, &a);
	pthread_mutex_unlock(&w->auth_lock);
	return ok;
}

/* Links a new registration (none of this kind yet). Caller holds table `table`. */
static int reg_add(struct store *s, unsigned table, const char *path, size_t len, uint64_t hash, struct watcher *w,
		   unsigned kind)
{
	struct shard *sh = table_at(s, table);
	if (atomic_load_explicit(&w->reg_count, memory_order_relaxed) >= s->watches_per_watcher_max) {
		atomic_fetch_add_explicit(&s->watch_refused_count, 1, memory_order_relaxed);
		return -E2BIG;
	}
	struct watch_path *wp = wp_find(sh, path, len, hash);
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
	r->key = reg_key(wp, w->id, kind);
	r->wp = wp;
	r->w = w;
	r->kind = (uint8_t)kind;
	r->shard = (uint8_t)table;
	if (sh->reg_count >= sh->reg_mask + 1)
		reg_grow(sh);
	r->hash_next = sh->reg_buckets[r->key & sh->reg_mask];
	sh->reg_buckets[r->key & sh->reg_mask] = r;
	sh->reg_count++;
	r->p_next = wp->regs[kind];
	if (r->p_next)
		r->p_next->p_prev = r;
	wp->regs[kind] = r;
	r->w_next = w->regs[table].head;
	if (r->w_next)
		r->w_next->w_prev = r;
	w->regs[table].head = r;
	atomic_fetch_add_explicit(&s->watch_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->reg_count, 1, memory_order_relaxed);
	if (watch_kind_is_recursive(kind))
		atomic_fetch_add_explicit(&s->recursive_watch_count, 1, memory_order_relaxed);
	return 0;
}

/* This watcher's registration of exactly this kind on path, or NULL. Table locked. */
static struct watch_reg *reg_lookup(struct store *s, unsigned kind, const char *path, size_t len, uint64_t hash,
				    uint64_t watcher)
{
	struct shard *sh = table_at(s, table_of(kind, hash));
	struct watch_path *wp = wp_find(sh, path, len, hash);
	return wp ? reg_find(sh, wp, watcher, kind) : NULL;
}

int store_watch_add(struct store *s, const char *path, size_t len, uint64_t hash, uint64_t watcher,
		    enum watch_kind kind, const struct store_auth *auth, int64_t *seen_zxid)
{
	assert(kind < WATCH_KINDS);
	struct watcher *w = watcher_get(s, watcher, true);
	if (!w)
		return -ENOMEM;
	watcher_auth_set(w, auth);
	/*
	 * The watcher's own recursive registrations are visible here (it registers on one
	 * thread), so a zero count means there is none to replace.
	 */
	bool rec = watch_kind_is_recursive(kind) ||
		   atomic_load_explicit(&s->recursive_watch_count, memory_order_relaxed) > 0;
	if (rec)
		pthread_mutex_lock(&s->recursive.lock);
	int rc = 0;
	bool held = false;
	/* The watcher's entry in the same table (data or child), whatever its mode. */
	for (unsigned k = kind & 1u; k < WATCH_KINDS; k += 2) {
		if (watch_kind_is_recursive(k) && !rec)
			continue;
		struct watch_reg *r = reg_lookup(s, k, path, len, hash, watcher);
		if (!r)
			continue;
		if (k == (unsigned)kind) {
			held = true;
		} else {
			struct shard *sh = table_at(s, r->shard);
			struct watch_path *wp = r->wp;
			reg_remove(s, sh, r);
			wp_release_if_empty(s, sh, wp);
		}
	}
	if (!held)
		rc = reg_add(s, table_of(kind, hash), path, len, hash, w, kind);
	/* Under the lock the applier fires this kind under: the shard's (held by the
	 * caller) and, for a recursive kind, the recursive table's. */
	if (seen_zxid)
		store_seen_note(s, seen_zxid);
	if (rec)
		pthread_mutex_unlock(&s->recursive.lock);
	return rc;
}

/* Notifies the registration's watcher unless this trigger (seq) already did. */
static void notify(struct watch_reg *r, uint64_t seq, const char *path, size_t len, int32_t type, int64_t zxid,
		   const struct acl_list *acl, store_event_fn fn, void *ctx)
{
	if (r->w->fired_seq == seq)
		return;
	r->w->fired_seq = seq;
	if (fn && watcher_may_read(r->w, acl))
		fn(ctx, r->w->id, type, path, len, zxid);
}

/* One-shot kinds: notify and remove every registration. */
static void fire_once(struct store *s, struct shard *sh, struct watch_path *wp, unsigned kind, uint64_t seq,
		      const char *path, size_t len, int32_t type, int64_t zxid, const struct acl_list *acl,
		      store_event_fn fn, void *ctx)
{
	while (wp->regs[kind]) {
		struct watch_reg *r = wp->regs[kind];
		notify(r, seq, path, len, type, zxid, acl, fn, ctx);
		reg_remove(s, sh, r);
	}
}

/* Persistent kinds: notify and keep (the callback cannot touch the store). */
static void fire_keep(struct watch_path *wp, unsigned kind, uint64_t seq, const char *path, size_t len, int32_t type,
		      int64_t zxid, const struct acl_list *acl, store_event_fn fn, void *ctx)
{
	for (struct watch_reg *r = wp->regs[kind]; r; r = r->p_next)
		notify(r, seq, path, len, type, zxid, acl, fn, ctx);
}

/* Recursive watches (data entries; child entries too with `child`) on path and each ancestor. */
static void fire_recursive(struct store *s, uint64_t seq, const char *path, size_t len, int32_t type, int64_t zxid,
			   bool child, const struct acl_list *acl, store_event_fn fn, void *ctx)
{
	struct shard *rt = &s->recursive;
	pthread_mutex_lock(&rt->lock);
	size_t prefix_len = len;
	for (;;) {
		uint64_t hash = store_hash_bytes(path, prefix_len);
		struct watch_path *wp = wp_find(rt, path, prefix_len, hash);
		if (wp) {
			fire_keep(wp, WATCH_PERSISTENT_RECURSIVE, seq, path, len, type, zxid, acl, fn, ctx);
			if (child)
				fire_keep(wp, WATCH_RECURSIVE_CHILD, seq, path, len, type, zxid, acl, fn, ctx);
		}
		if (prefix_len <= 1 || !memchr(path, '/', prefix_len))
			break;
		prefix_len = store_parent_len(path, prefix_len);
	}
	pthread_mutex_unlock(&rt->lock);
}

void store_watch_trigger(struct store *s, const char *path, size_t len, uint64_t hash, int32_t type, int64_t zxid,
			 const struct acl_list *acl, store_event_fn fn, void *ctx)
{
	uint64_t seq = ++s->trigger_seq;
	struct shard *sh = &s->shards[store_shard_of(hash)];
	struct watch_path *wp = wp_find(sh, path, len, hash);
	bool data_table = false, child_table = false;
	switch (type) {
	case ZK_EVENT_NODE_CREATED:
	case ZK_EVENT_NODE_DATA_CHANGED:
		data_table = true;
		break;
	case ZK_EVENT_NODE_CHILDREN_CHANGED:
		child_table = true;
		break;
	case ZK_EVENT_NODE_DELETED:
		/* Both tables; a watcher in both gets one NodeDeleted. */
		data_table = child_table = true;
		break;
	default:
		assert(!"unexpected event type");
	}
	if (wp) {
		if (data_table) {
			fire_once(s, sh, wp, WATCH_DATA, seq, path, len, type, zxid, acl, fn, ctx);
			fire_keep(wp, WATCH_PERSISTENT, seq, path, len, type, zxid, acl, fn, ctx);
		}
		if (child_table) {
			fire_once(s, sh, wp, WATCH_CHILD, seq, path, len, type, zxid, acl, fn, ctx);
			fire_keep(wp, WATCH_PERSISTENT_CHILD, seq, path, len, type, zxid, acl, fn, ctx);
		}
		wp_release_if_empty(s, sh, wp);
	}
	/* Recursive entries never see NodeChildrenChanged. */
	if (data_table && atomic_load_explicit(&s->recursive_watch_count, memory_order_relaxed) > 0)
		fire_recursive(s, seq, path, len, type, zxid, child_table, acl, fn, ctx);
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
	for (unsigned i = 0; i < STORE_WATCH_TABLES; i++) {
		struct shard *sh = table_at(s, i);
		pthread_mutex_lock(&sh->lock);
		while (w->regs[i].head) {
			struct watch_reg *r = w->regs[i].head;
			struct watch_path *wp = r->wp;
			reg_remove(s, sh, r);
			wp_release_if_empty(s, sh, wp);
		}
		pthread_mutex_unlock(&sh->lock);
	}
	watcher_free(w);
}

/* ---------------------------------------------------------------- setWatches */

/* The path lists of SetWatches (the first three) and SetWatches2 (all five). */
enum { SW_DATA, SW_EXIST, SW_CHILD, SW_PERSISTENT, SW_PERSISTENT_RECURSIVE, SW_LISTS_MAX };

static void set_watches_no_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
				 int64_t zxid)
{
}

/* Registers one persistent or recursive watch: an entry in the data and the child table. */
static int add_both_tables(struct store *s, const char *path, size_t len, uint64_t hash, uint64_t watcher,
			   bool recursive, const struct store_auth *auth, int64_t *seen_zxid)
{
	enum watch_kind data = recursive ? WATCH_PERSISTENT_RECURSIVE : WATCH_PERSISTENT;
	enum watch_kind child = recursive ? WATCH_RECURSIVE_CHILD : WATCH_PERSISTENT_CHILD;
	int rc = store_watch_add(s, path, len, hash, watcher, data, auth, seen_zxid);
	if (rc == 0)
		rc = store_watch_add(s, path, len, hash, watcher, child, NULL, seen_zxid);
	return rc;
}

static void set_watches_one(struct store *s, uint64_t watcher, int list, struct jute_bytes p, int64_t rel_zxid,
			    const struct store_auth *auth, store_event_fn fn, void *ctx)
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
	/* Catch-up events are not filtered by ACL (ZooKeeper sends them with no ACL). */
	switch (list) {
	case SW_DATA:
		if (!n)
			fn(ctx, watcher, ZK_EVENT_NODE_DELETED, path, len, -1);
		else if (n->mzxid > rel_zxid)
			fn(ctx, watcher, ZK_EVENT_NODE_DATA_CHANGED, path, len, -1);
		else
			store_watch_add(s, path, len, hash, watcher, WATCH_DATA, auth, NULL);
		break;
	case SW_EXIST:
		if (n)
			fn(ctx, watcher, ZK_EVENT_NODE_CREATED, path, len, -1);
		else
			store_watch_add(s, path, len, hash, watcher, WATCH_DATA, auth, NULL);
		break;
	case SW_CHILD:
		if (!n)
			fn(ctx, watcher, ZK_EVENT_NODE_DELETED, path, len, -1);
		else if (n->pzxid > rel_zxid)
			fn(ctx, watcher, ZK_EVENT_NODE_CHILDREN_CHANGED, path, len, -1);
		else
			store_watch_add(s, path, len, hash, watcher, WATCH_CHILD, auth, NULL);
		break;
	case SW_PERSISTENT:
	case SW_PERSISTENT_RECURSIVE:
		/* Registered unconditionally, no catch-up event (DataTree.setWatches). */
		add_both_tables(s, path, len, hash, watcher, list == SW_PERSISTENT_RECURSIVE, auth, NULL);
		break;
	default:
		assert(!"unexpected setWatches list");
	}
	pthread_mutex_unlock(&sh->lock);
}

int32_t store_set_watches_auth(struct store *s, uint64_t watcher, const struct store_auth *auth, int32_t opcode,
			       const uint8_t *body, size_t body_len, store_event_fn on_event, void *ctx)
{
	int lists = opcode == ZK_OP_SET_WATCHES2 ? SW_LISTS_MAX : opcode == ZK_OP_SET_WATCHES ? SW_CHILD + 1 : 0;
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
			set_watches_one(s, watcher, l, p, rel_zxid, auth, on_event, ctx);
		}
	}
	assert(jute_reader_ok(&r));
	return ZK_OK;
}

int32_t store_set_watches(struct store *s, uint64_t watcher, int32_t opcode, const uint8_t *body, size_t body_len,
			  store_event_fn on_event, void *ctx)
{
	return store_set_watches_auth(s, watcher, NULL, opcode, body, body_len, on_event, ctx);
}

/* ---------------------------------------------------------------- addWatch, check/removeWatches */

int32_t store_add_watch_auth(struct store *s, uint64_t watcher, const struct store_auth *auth, const uint8_t *body,
			     size_t body_len, int64_t *seen_zxid)
{
	struct jute_reader r;
	jute_reader_init(&r, body, body_len);
	struct jute_bytes p = jute_read_string(&r);
	int32_t mode = jute_read_int(&r);
	if (!jute_reader_ok(&r))
		return ZK_MARSHALLINGERROR;
	if (mode != STORE_ADD_WATCH_PERSISTENT && mode != STORE_ADD_WATCH_PERSISTENT_RECURSIVE)
		return ZK_MARSHALLINGERROR; /* WatcherMode.fromZooDef throws */
	/* No path check and no node needed, as ZooKeeper (null reads as ""). */
	const char *path = p.len > 0 ? (const char *)p.data : "";
	size_t len = p.len > 0 ? (size_t)p.len : 0;
	uint64_t hash = store_hash_bytes(path, len);
	struct shard *sh = &s->shards[store_shard_of(hash)];
	pthread_mutex_lock(&sh->lock);
	int64_t seen = INT64_MIN;
	int rc = add_both_tables(s, path, len, hash, watcher, mode == STORE_ADD_WATCH_PERSISTENT_RECURSIVE, auth,
				 &seen);
	if (seen == INT64_MIN)
		store_seen_note(s, &seen);
	pthread_mutex_unlock(&sh->lock);
	if (seen_zxid)
		*seen_zxid = seen;
	return rc == 0 ? ZK_OK : ZK_SYSTEMERROR;
}

int32_t store_add_watch(struct store *s, uint64_t watcher, const uint8_t *body, size_t body_len)
{
	return store_add_watch_auth(s, watcher, NULL, body, body_len, NULL);
}

/*
 * One table (child: 1, data: 0) of ZooKeeper 3.8.0's WatchManager for
 * checkWatches / removeWatches. Caller holds the path's shard and the recursive table.
 *   check:  containsWatcher answers true when the table has an entry for the path,
 *           of any watcher (3.8.0 looks the path up in watchTable only);
 *   remove: removes this watcher's entry for the path, whatever its mode.
 */
static bool table_match(struct store *s, unsigned child, const char *path, size_t len, uint64_t hash,
			uint64_t watcher, bool remove)
{
	bool found = false;
	for (unsigned k = child; k < WATCH_KINDS; k += 2) {
		struct shard *sh = table_at(s, table_of(k, hash));
		struct watch_path *wp = wp_find(sh, path, len, hash);
		if (!wp)
			continue;
		if (!remove) {
			if (wp->regs[k])
				return true;
			continue;
		}
		struct watch_reg *r = reg_find(sh, wp, watcher, k);
		if (r) {
			reg_remove(s, sh, r);
			wp_release_if_empty(s, sh, wp);
			found = true;
		}
	}
	return found;
}

int32_t store_remove_watches(struct store *s, uint64_t watcher, int32_t opcode, const uint8_t *body, size_t body_len)
{
	if (opcode != ZK_OP_CHECK_WATCHES && opcode != ZK_OP_REMOVE_WATCHES)
		return ZK_UNIMPLEMENTED;
	struct jute_reader r;
	jute_reader_init(&r, body, body_len);
	struct jute_bytes p = jute_read_string(&r);
	int32_t type = jute_read_int(&r);
	if (!jute_reader_ok(&r))
		return ZK_MARSHALLINGERROR;
	/*
	 * ZooKeeper 3.8.0's WatcherType knows Children, Data and Any only: Persistent (4)
	 * and PersistentRecursive (5) make WatcherType.fromInt throw, answered
	 * MARSHALLINGERROR. A persistent watch is removed through its table entries.
	 */
	if (type != STORE_WATCHER_TYPE_CHILDREN && type != STORE_WATCHER_TYPE_DATA && type != STORE_WATCHER_TYPE_ANY)
		return ZK_MARSHALLINGERROR;
	const char *path = p.len > 0 ? (const char *)p.data : "";
	size_t len = p.len > 0 ? (size_t)p.len : 0;
	uint64_t hash = store_hash_bytes(path, len);
	bool remove = opcode == ZK_OP_REMOVE_WATCHES;
	struct shard *sh = &s->shards[store_shard_of(hash)];
	pthread_mutex_lock(&sh->lock);
	pthread_mutex_lock(&s->recursive.lock);
	bool found = false;
	if (type != STORE_WATCHER_TYPE_DATA)
		found |= table_match(s, 1, path, len, hash, watcher, remove);
	if (type != STORE_WATCHER_TYPE_CHILDREN)
		found |= table_match(s, 0, path, len, hash, watcher, remove);
	pthread_mutex_unlock(&s->recursive.lock);
	pthread_mutex_unlock(&sh->lock);
	return found ? ZK_OK : ZK_NOWATCHER;
}

/* ---------------------------------------------------------------- dumps (wchc, wchp) */

/*
 * Both dumps lock every watch table (shards, then recursive) and the watcher table, in
 * the store's lock order, so they see one consistent state; the callbacks run under
 * those locks and must not call the store. Each (watcher, path) pair is reported once,
 * whatever kinds of watch it holds (data, child, persistent, recursive).
 */
static void dump_lock(struct store *s)
{
	store_lock_all(s);
	pthread_mutex_lock(&s->recursive.lock);
	pthread_mutex_lock(&s->watchers.lock);
}

static void dump_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->watchers.lock);
	pthread_mutex_unlock(&s->recursive.lock);
	store_unlock_all(s);
}

/* True when watcher holds a registration on wp of a kind below `kind` (same table). */
static bool reg_earlier_kind(struct shard *sh, const struct watch_path *wp, uint64_t watcher, unsigned kind)
{
	for (unsigned k = 0; k < kind; k++)
		if (wp->regs[k] && reg_find(sh, wp, watcher, k))
			return true;
	return false;
}

/* True when watcher holds any shard-table registration on path (reported there). */
static bool reg_in_shard(struct store *s, const char *path, size_t len, uint64_t hash, uint64_t watcher)
{
	struct shard *sh = &s->shards[store_shard_of(hash)];
	struct watch_path *wp = wp_find(sh, path, len, hash);
	return wp && reg_earlier_kind(sh, wp, watcher, WATCH_PERSISTENT_RECURSIVE); /* all shard kinds */
}

void store_watches_by_watcher(struct store *s, void (*fn)(void *ctx, uint64_t watcher, const char *path, size_t len),
			      void *ctx)
{
	dump_lock(s);
	for (size_t b = 0; b <= s->watchers.mask; b++) {
		for (struct watcher *w = s->watchers.buckets[b]; w; w = w->next) {
			for (unsigned t = 0; t < STORE_WATCH_TABLES; t++) {
				struct shard *sh = table_at(s, t);
				for (struct watch_reg *r = w->regs[t].head; r; r = r->w_next) {
					const struct watch_path *wp = r->wp;
					bool dup = reg_earlier_kind(sh, wp, w->id, r->kind) ||
						   (t == STORE_WATCH_RECURSIVE &&
						    reg_in_shard(s, wp->path, wp->path_len, wp->hash, w->id));
					if (!dup)
						fn(ctx, w->id, wp->path, wp->path_len);
				}
			}
		}
	}
	dump_unlock(s);
}

/* Reports every watcher of wp (kinds deduplicated) that is not in `skip`'s table too. */
static void dump_path_watchers(struct store *s, struct shard *sh, const struct watch_path *wp, bool skip_shard_dups,
			       void (*fn)(void *ctx, const char *path, size_t len, uint64_t watcher), void *ctx)
{
	for (unsigned k = 0; k < WATCH_KINDS; k++) {
		for (const struct watch_reg *r = wp->regs[k]; r; r = r->p_next) {
			uint64_t id = r->w->id;
			if (reg_earlier_kind(sh, wp, id, k))
				continue;
			if (skip_shard_dups && reg_in_shard(s, wp->path, wp->path_len, wp->hash, id))
				continue;
			fn(ctx, wp->path, wp->path_len, id);
		}
	}
}

void store_watches_by_path(struct store *s, void (*fn)(void *ctx, const char *path, size_t len, uint64_t watcher),
			   void *ctx)
{
	dump_lock(s);
	struct shard *rt = &s->recursive;
	/* A path's watchers are reported together: shard-table kinds, then its recursive ones. */
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		for (size_t b = 0; b <= sh->wp_mask; b++) {
			for (const struct watch_path *wp = sh->wp_buckets[b]; wp; wp = wp->next) {
				dump_path_watchers(s, sh, wp, false, fn, ctx);
				const struct watch_path *rwp = wp_find(rt, wp->path, wp->path_len, wp->hash);
				if (rwp)
					dump_path_watchers(s, rt, rwp, true, fn, ctx);
			}
		}
	}
	for (size_t b = 0; b <= rt->wp_mask; b++) {
		for (const struct watch_path *wp = rt->wp_buckets[b]; wp; wp = wp->next) {
			struct shard *sh = &s->shards[store_shard_of(wp->hash)];
			if (wp_find(sh, wp->path, wp->path_len, wp->hash))
				continue; /* reported with the shard table's entry */
			dump_path_watchers(s, rt, wp, false, fn, ctx);
		}
	}
	dump_unlock(s);
}
