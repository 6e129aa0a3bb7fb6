/*
 * store_watch_ops.c — the watch requests of clients beyond a read's watch flag:
 * setWatches / setWatches2 after a reconnect (catch-up events, then registration),
 * addWatch, checkWatches / removeWatches, and the wchc / wchp dumps. The tables and
 * their invariants are store_watch.c's.
 *
 * Thread: any worker (each call locks the tables it touches).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "store/store_watch_impl.h"

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
		else if (store_node_mzxid(n) > rel_zxid)
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
		else if (store_node_pzxid(n) > rel_zxid)
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
			watch_reg_remove(s, sh, r);
			watch_path_release_if_empty(s, sh, wp);
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
