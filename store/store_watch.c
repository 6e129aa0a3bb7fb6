/*
 * store_watch.c — watch tables: registration, firing (one-shot and persistent),
 * per-watcher drop. The client requests built on them (setWatches / setWatches2
 * catch-up, addWatch, checkWatches and removeWatches, the dumps) are in
 * store_watch_ops.c; the structures in store_watch_impl.h.
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
#include "store/store_watch_impl.h"

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

static bool wp_empty(const struct watch_path *wp)
{
	for (unsigned k = 0; k < WATCH_KINDS; k++)
		if (wp->regs[k])
			return false;
	return true;
}

void watch_path_release_if_empty(struct store *s, struct shard *sh, struct watch_path *wp)
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
void watch_reg_remove(struct store *s, struct shard *sh, struct watch_reg *r)
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
		watch_path_release_if_empty(s, sh, wp);
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
			watch_reg_remove(s, sh, r);
			watch_path_release_if_empty(s, sh, wp);
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
		watch_reg_remove(s, sh, r);
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
		watch_path_release_if_empty(s, sh, wp);
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
			watch_reg_remove(s, sh, r);
			watch_path_release_if_empty(s, sh, wp);
		}
		pthread_mutex_unlock(&sh->lock);
	}
	watcher_free(w);
}
