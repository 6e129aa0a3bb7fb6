/*
 * store_snap.c — images of the store while it runs, and loading one back (see
 * store_snap.h for the copy-on-write scheme and its invariants).
 *
 * Threads: store_snap_begin / store_snap_end / store_snap_preserve_slow on the
 * applier; store_snap_walk on the snapshot writer's thread; loading on the thread
 * that recovers, before any other thread uses the store.
 *
 * A shard's copies (struct snap_copy) are a list in the image, guarded by the shard's
 * mutex: the applier pushes under it, the walker takes the whole list under it once
 * its buckets are done. Each copy is one allocation: header, ACL entries, then path,
 * data and the ACL strings.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_impl.h"

struct snap_copy {
	struct snap_copy *next;
	struct store_snap_node node; /* points into this allocation */
	struct acl_entry acl[];
};

struct store_snap {
	struct store *store;
	int64_t zxid;
	uint32_t epoch;
	/* walker's cursor: shard, next bucket in it, and that shard's shrinks when the
	 * walk in it began or last started over */
	unsigned shard;
	size_t bucket;
	uint32_t shrinks_seen;
	struct snap_copy *copies[STORE_SHARDS]; /* guarded by the shard's lock */
	struct snap_copy *emitting;             /* taken from copies[shard]: the walker's */
	struct store_snap_session *sessions;
	size_t session_count;
	char **quota_paths;
	size_t *quota_lens;
	size_t quota_count;
	struct store_snap_stats stats; /* nodes_copied/copied_bytes: applier; the rest: walker */
};

static uint64_t snap_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- configured nodes */

static bool path_eq(const char *p, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len == n && memcmp(p, lit, n) == 0;
}

bool store_snap_node_is_configured(const struct store *s, const char *path, size_t len)
{
	if (path_eq(path, len, "/zookeeper/config"))
		return true;
	return s->keeper_api && len >= 7 && memcmp(path, "/keeper", 7) == 0 && (len == 7 || path[7] == '/');
}

/* ---------------------------------------------------------------- begin / end */

static int snap_copy_sessions(struct store *s, struct store_snap *sn)
{
	pthread_rwlock_rdlock(&s->sessions.lock);
	size_t cap = s->sessions.count;
	sn->sessions = cap ? malloc(cap * sizeof *sn->sessions) : NULL;
	int rc = cap && !sn->sessions ? -ENOMEM : 0;
	for (size_t i = 0; rc == 0 && i <= s->sessions.mask; i++)
		for (const struct session *se = s->sessions.buckets[i]; se; se = se->next) {
			struct store_snap_session *out = &sn->sessions[sn->session_count++];
			out->id = se->id;
			out->timeout_ms = se->timeout_ms;
			memcpy(out->passwd, se->passwd, sizeof out->passwd);
		}
	pthread_rwlock_unlock(&s->sessions.lock);
	return rc;
}

static int snap_copy_quota_roots(struct store *s, struct store_snap *sn)
{
	if (s->quota.count == 0)
		return 0;
	sn->quota_paths = calloc(s->quota.count, sizeof *sn->quota_paths);
	sn->quota_lens = calloc(s->quota.count, sizeof *sn->quota_lens);
	if (!sn->quota_paths || !sn->quota_lens)
		return -ENOMEM;
	size_t n = 0;
	for (size_t b = 0; b <= s->quota.mask; b++) {
		for (size_t k = 0;; k++) {
			const char *path;
			size_t len;
			if (!store_quota_root_at(s, b, k, &path, &len))
				break;
			char *copy = malloc(len);
			if (!copy)
				return -ENOMEM;
			memcpy(copy, path, len);
			sn->quota_paths[n] = copy;
			sn->quota_lens[n] = len;
			sn->quota_count = ++n;
		}
	}
	return 0;
}

static void snap_free(struct store_snap *sn)
{
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct snap_copy *c = sn->copies[i];
		while (c) {
			struct snap_copy *next = c->next;
			free(c);
			c = next;
		}
	}
	while (sn->emitting) {
		struct snap_copy *next = sn->emitting->next;
		free(sn->emitting);
		sn->emitting = next;
	}
	for (size_t i = 0; i < sn->quota_count; i++)
		free(sn->quota_paths[i]);
	free(sn->quota_paths);
	free(sn->quota_lens);
	free(sn->sessions);
	free(sn);
}

int store_snap_begin(struct store *s, struct store_snap **out)
{
	*out = NULL;
	if (s->snap)
		return -EBUSY;
	uint64_t t0 = snap_now_ns();
	struct store_snap *sn = calloc(1, sizeof *sn);
	if (!sn)
		return -ENOMEM;
	sn->store = s;
	sn->zxid = atomic_load(&s->last_zxid);
	if (snap_copy_sessions(s, sn) < 0 || snap_copy_quota_roots(s, sn) < 0) {
		snap_free(sn);
		return -ENOMEM;
	}
	/* Every node carries the old parity (store_impl.h, snap_mark): all are due. */
	sn->epoch = ++s->snap_epoch;
	s->snap = sn;
	sn->stats.begin_ns = snap_now_ns() - t0;
	*out = sn;
	return 0;
}

int64_t store_snap_zxid(const struct store_snap *sn) { return sn->zxid; }

size_t store_snap_sessions(const struct store_snap *sn, const struct store_snap_session **out)
{
	*out = sn->sessions;
	return sn->session_count;
}

size_t store_snap_quota_roots(const struct store_snap *sn, const char *const **paths, const size_t **lens)
{
	*paths = (const char *const *)sn->quota_paths;
	*lens = sn->quota_lens;
	return sn->quota_count;
}

void store_snap_end(struct store *s, struct store_snap *sn)
{
	assert(s->snap == sn);
	/* A walk that stopped early leaves nodes with the old parity, which the next
	 * image would take for met: mark them (the walker does so itself on an error,
	 * off this thread; this is for a walk abandoned without that). */
	while (store_snap_walk(sn, NULL, NULL))
		;
	s->snap = NULL;
	/* The walker has returned: no lock protects anything from it any more, and the
	 * applier (this thread) is the only one that pushed copies. */
	snap_free(sn);
}

void store_snap_stats_get(const struct store_snap *sn, struct store_snap_stats *out) { *out = sn->stats; }

/* ---------------------------------------------------------------- the applier's copies */

static unsigned snap_mark_of(const struct store_snap *sn) { return sn->epoch & 1u; }

static bool snap_wants(const struct store_snap *sn, const struct znode *n)
{
	return store_node_czxid(n) <= sn->zxid && n->snap_mark != snap_mark_of(sn) &&
	       !store_snap_node_is_configured(sn->store, n->path, n->path_len);
}

static void snap_view(struct store *s, const struct znode *n, struct store_snap_node *v)
{
	const struct acl_list *acl = store_node_acl(s, n);
	*v = (struct store_snap_node){
		.path = n->path,
		.path_len = n->path_len,
		.data_len = n->data_len,
		.data = store_node_data(n),
		.czxid = store_node_czxid(n),
		.mzxid = store_node_mzxid(n),
		.pzxid = store_node_pzxid(n),
		.ctime = store_node_ctime(n),
		.mtime = store_node_mtime(n),
		.ephemeral_owner = store_node_owner(n),
		.version = n->version,
		.cversion_stored = store_node_cversion_stored(n),
		.aversion = store_node_aversion(s, n),
		.acl_count = acl->count,
		.acl = acl->entries,
	};
}

void store_snap_preserve_slow(struct store *s, struct znode *n)
{
	struct store_snap *sn = s->snap;
	if (!snap_wants(sn, n))
		return;
	const struct acl_list *acl = store_node_acl(s, n);
	size_t data = n->data_len > 0 ? (size_t)n->data_len : 0;
	size_t strings = 0;
	for (uint32_t i = 0; i < acl->count; i++)
		strings += acl->entries[i].scheme_len + acl->entries[i].id_len;
	size_t size = sizeof(struct snap_copy) + acl->count * sizeof(struct acl_entry) + n->path_len + data + strings;
	struct snap_copy *c = malloc(size);
	if (!c) {
		/* The image would miss this node's old state: as any allocation failure
		 * while applying, fatal (a replica must not silently diverge). */
		fprintf(stderr, "store: out of memory while keeping a node for a snapshot\n");
		abort();
	}
	char *p = (char *)(c->acl + acl->count);
	snap_view(s, n, &c->node);
	memcpy(p, n->path, n->path_len);
	c->node.path = p;
	p += n->path_len;
	if (data) {
		memcpy(p, store_node_data(n), data);
		c->node.data = (const uint8_t *)p;
		p += data;
	} else {
		c->node.data = NULL;
	}
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		c->acl[i] = *e;
		memcpy(p, e->scheme, e->scheme_len);
		c->acl[i].scheme = p;
		p += e->scheme_len;
		memcpy(p, e->id, e->id_len);
		c->acl[i].id = p;
		p += e->id_len;
	}
	c->node.acl = c->acl;
	unsigned shard = store_shard_of(store_node_hash(n));
	c->next = sn->copies[shard];
	sn->copies[shard] = c;
	n->snap_mark = snap_mark_of(sn);
	sn->stats.nodes_copied++;
	sn->stats.copied_bytes += size;
}

/* ---------------------------------------------------------------- the walker */

/*
 * The walk reads buckets in order but their nodes lie anywhere in memory: each node is
 * a cache miss on its header and another two or three on its path and value (about
 * half of a snapshot's CPU in a server under a create load, where the nodes of one
 * bucket range were allocated far apart). So the head node of the bucket a few ahead
 * is fetched while this one is encoded: its header and the value's first lines,
 * where a node of 100-byte values keeps the rest of its block.
 */
#define SNAP_PREFETCH_AHEAD 6
#define SNAP_PREFETCH_LINES 4

static inline void snap_prefetch_node(const struct znode *n)
{
	if (!n)
		return;
	for (int i = 0; i < SNAP_PREFETCH_LINES; i++)
		__builtin_prefetch((const char *)n + 64 * i, 0, 0);
}

bool store_snap_walk(struct store_snap *sn, store_snap_node_fn fn, void *ctx)
{
	if (sn->emitting) {
		/* The copies of the shard just walked: immutable, the walker's alone. */
		struct snap_copy *c = sn->emitting;
		sn->emitting = c->next;
		if (fn) {
			fn(ctx, &c->node);
			sn->stats.nodes_emitted++;
		}
		free(c);
		return true;
	}
	if (sn->shard == STORE_SHARDS)
		return false;
	struct store *s = sn->store;
	struct shard *sh = &s->shards[sn->shard];
	pthread_mutex_lock(&sh->lock);
	uint64_t t0 = snap_now_ns();
	if (sn->bucket == 0 || sn->shrinks_seen != sh->shrinks) {
		/* A shrink since the last step may have put nodes not met yet behind the
		 * cursor: the shard starts over, and the marks skip the ones met. */
		sn->shrinks_seen = sh->shrinks;
		sn->bucket = 0;
	}
	size_t bytes = 0, buckets = 0;
	while (sn->bucket <= sh->bucket_mask && buckets < STORE_SNAP_HOLD_BUCKETS && bytes < STORE_SNAP_HOLD_BYTES) {
		if (sn->bucket + SNAP_PREFETCH_AHEAD <= sh->bucket_mask)
			snap_prefetch_node(store_node_at(sh->buckets[sn->bucket + SNAP_PREFETCH_AHEAD]));
		for (struct znode *n = store_node_at(sh->buckets[sn->bucket]); n; n = store_node_at(n->hash_next)) {
			if (!snap_wants(sn, n))
				continue;
			n->snap_mark = snap_mark_of(sn);
			if (!fn)
				continue;
			struct store_snap_node v;
			snap_view(s, n, &v);
			bytes += fn(ctx, &v);
			sn->stats.nodes_emitted++;
		}
		sn->bucket++;
		buckets++;
	}
	if (sn->bucket > sh->bucket_mask) {
		/* Every node of this shard alive at the image's zxid is marked now: no copy
		 * is made here any more, and the list is the walker's. */
		sn->emitting = sn->copies[sn->shard];
		sn->copies[sn->shard] = NULL;
		sn->shard++;
		sn->bucket = 0;
	}
	uint64_t held = snap_now_ns() - t0;
	pthread_mutex_unlock(&sh->lock);
	if (held > sn->stats.lock_hold_max_ns)
		sn->stats.lock_hold_max_ns = held;
	return true;
}

/* ---------------------------------------------------------------- loading */

/* Loading marks nodes SNAP_MARK_LOADED(_LINKED) (store_impl.h); store_load_finish
 * gives them the store's parity. */

/* why = what + ": " + the path (at most 200 bytes of it). */
static void why_set(char *why, size_t why_size, const char *what, const char *path, size_t len)
{
	if (why && why_size)
		snprintf(why, why_size, "%s: %.*s", what, (int)(len > 200 ? 200 : len), path);
}

int store_load_session(struct store *s, const struct store_snap_session *se, int64_t now_ms)
{
	return store_session_insert(s, se->id, se->timeout_ms, se->passwd, sizeof se->passwd, now_ms);
}

int store_load_quota_root(struct store *s, const char *root, size_t len)
{
	if (len < 2 || root[0] != '/')
		return -EINVAL;
	store_quota_root_set(s, root, len, true);
	return 0;
}

/* The image's fields of n other than its path, owner and value. */
static int load_fill(struct store *s, struct znode *n, const struct store_snap_node *v)
{
	/* A node without a dir reads pzxid = czxid and cversion 0: others need one. */
	if (n->dir || v->pzxid != v->czxid || v->cversion_stored != 0) {
		struct znode_dir *d = store_node_dir(n);
		if (!d)
			return -ENOMEM;
		d->pzxid = v->pzxid;
		d->cversion_stored = v->cversion_stored;
	}
	struct acl_list *acl = store_acl_copy(v->acl, v->acl_count);
	uint32_t acl_id = acl ? store_acl_intern(s, acl, v->aversion) : STORE_ACL_NONE;
	if (acl_id == STORE_ACL_NONE)
		return -ENOMEM;
	store_acl_release(s, n->acl_id);
	n->acl_id = acl_id;
	store_node_set_czxid(n, v->czxid);
	store_node_set_mzxid(n, v->mzxid);
	store_node_set_ctime(n, v->ctime);
	store_node_set_mtime(n, v->mtime);
	n->version = v->version;
	return 0;
}

/*
 * A system node store_create made, met in the image: its state comes from there. On
 * an error it may be half changed: the caller discards the store (a failed load).
 */
static int load_system_node(struct store *s, struct znode *n, const struct store_snap_node *v, char *why,
			    size_t why_size)
{
	if (v->ephemeral_owner != 0) {
		why_set(why, why_size, "a system node with an owner", v->path, v->path_len);
		return -EINVAL;
	}
	uint64_t old = n->data_len > 0 ? (uint64_t)n->data_len : 0;
	uint8_t *displaced;
	int rc = load_fill(s, n, v);
	if (rc == 0)
		rc = store_node_data_set(n, v->data, v->data_len, &displaced);
	if (rc < 0)
		return rc;
	free(displaced);
	atomic_fetch_sub_explicit(&s->data_bytes, old, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->data_bytes, (uint64_t)(n->data_len > 0 ? n->data_len : 0), memory_order_relaxed);
	n->snap_mark = SNAP_MARK_LOADED_LINKED;
	return 0;
}

int store_load_node(struct store *s, const struct store_snap_node *v, char *why, size_t why_size)
{
	if (v->path_len == 0 || v->path_len > STORE_PATH_BYTES_MAX || v->path[0] != '/' ||
	    (v->path_len > 1 && v->path[v->path_len - 1] == '/') || memchr(v->path, '\0', v->path_len) ||
	    v->acl_count == 0) {
		why_set(why, why_size, "bad node path or ACL", v->path, v->path_len);
		return -EINVAL;
	}
	if (!store_stamp_fits(v->czxid) || !store_stamp_fits(v->mzxid) || !store_stamp_fits(v->ctime) ||
	    !store_stamp_fits(v->mtime) || v->czxid < 0 || v->mzxid < 0) {
		why_set(why, why_size, "a zxid or time outside the 48 bits a node keeps", v->path, v->path_len);
		return -EINVAL;
	}
	if (store_snap_node_is_configured(s, v->path, v->path_len))
		return 0; /* the configuration's, not the image's */
	uint64_t hash = store_hash_bytes(v->path, v->path_len);
	struct shard *sh = &s->shards[store_shard_of(hash)];
	/* Built outside the lock; most nodes are new. */
	struct znode *fresh = store_node_new(v->path, v->path_len, hash, v->ephemeral_owner, v->data, v->data_len);
	if (!fresh)
		return -ENOMEM;
	int rc = load_fill(s, fresh, v);
	if (rc < 0) {
		store_node_free(s, fresh);
		return rc;
	}
	fresh->snap_mark = SNAP_MARK_LOADED;
	pthread_mutex_lock(&sh->lock);
	struct znode *n = store_node_find(s, v->path, v->path_len, hash);
	if (!n) {
		store_node_hash_insert(s, fresh, hash);
		pthread_mutex_unlock(&sh->lock);
		return 0;
	}
	/* A system node store_create made ("/", "/zookeeper", "/zookeeper/quota"),
	 * linked already: its state comes from the image. Met twice: corrupt. */
	if (n->snap_mark == SNAP_MARK_LOADED || n->snap_mark == SNAP_MARK_LOADED_LINKED) {
		pthread_mutex_unlock(&sh->lock);
		store_node_free(s, fresh);
		why_set(why, why_size, "a node is in the image twice", v->path, v->path_len);
		return -EINVAL;
	}
	rc = load_system_node(s, n, v, why, why_size);
	pthread_mutex_unlock(&sh->lock);
	store_node_free(s, fresh);
	return rc;
}

/* Links one loaded node under its parent, and everything derived from it. */
static int load_link(struct store *s, struct znode *n, char *why, size_t why_size)
{
	size_t plen = store_parent_len(n->path, n->path_len);
	struct znode *parent = store_node_find(s, n->path, plen, store_hash_bytes(n->path, plen));
	if (!parent) {
		why_set(why, why_size, "a node has no parent in the image", n->path, n->path_len);
		return -EINVAL;
	}
	if (store_node_children_reserve(parent) != 0)
		return -ENOMEM;
	struct znode_dir *d = store_dir_of(parent);
	n->parent_slot = d->child_count;
	d->children[d->child_count++] = store_node_ref(n);
	store_reapable_link(s, n);
	if (n->kind == ZNODE_EPHEMERAL) {
		struct session *se = store_session_find(s, store_node_owner(n));
		if (!se) {
			why_set(why, why_size, "an ephemeral node belongs to no session of the image", n->path,
				n->path_len);
			return -EINVAL;
		}
		if (store_session_ephemeral_add(s, se, n) != 0)
			return -ENOMEM;
	}
	atomic_fetch_add_explicit(&s->node_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->data_bytes, n->path_len + (uint64_t)(n->data_len > 0 ? n->data_len : 0),
				  memory_order_relaxed);
	return 0;
}

int store_load_finish(struct store *s, int64_t zxid, char *why, size_t why_size)
{
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		for (size_t b = 0; b <= sh->bucket_mask; b++) {
			for (struct znode *n = store_node_at(sh->buckets[b]); n; n = store_node_at(n->hash_next)) {
				unsigned mark = n->snap_mark;
				if (mark != SNAP_MARK_LOADED && mark != SNAP_MARK_LOADED_LINKED)
					continue;
				n->snap_mark = s->snap_epoch & 1u;
				if (mark == SNAP_MARK_LOADED_LINKED)
					continue; /* a system node: linked by store_create */
				int rc = load_link(s, n, why, why_size);
				if (rc < 0)
					return rc;
			}
		}
	}
	atomic_store(&s->last_zxid, zxid);
	return 0;
}

/* ---------------------------------------------------------------- installing */

struct store *store_create_like(const struct store *s)
{
	return store_create(&s->cfg);
}

#define SWAP(a, b)                              \
	do {                                    \
		__typeof__(a) swap_tmp_ = (a);  \
		(a) = (b);                      \
		(b) = swap_tmp_;                \
	} while (0)

static void swap_atomic_u64(_Atomic uint64_t *a, _Atomic uint64_t *b)
{
	uint64_t x = atomic_load(a);
	atomic_store(a, atomic_load(b));
	atomic_store(b, x);
}

void store_swap(struct store *live, struct store *fresh)
{
	assert(!live->snap && !fresh->snap);
	store_lock_all(live);
	pthread_mutex_lock(&live->recursive.lock);
	pthread_mutex_lock(&live->watchers.lock);
	pthread_rwlock_wrlock(&live->sessions.lock);
	pthread_mutex_lock(&live->acls.lock);
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		SWAP(live->shards[i].buckets, fresh->shards[i].buckets);
		SWAP(live->shards[i].bucket_mask, fresh->shards[i].bucket_mask);
		SWAP(live->shards[i].node_count, fresh->shards[i].node_count);
	}
	SWAP(live->root, fresh->root);
	SWAP(live->snap_epoch, fresh->snap_epoch); /* its parity is the nodes' mark */
	SWAP(live->reapable, fresh->reapable);
	SWAP(live->reapable_count, fresh->reapable_count);
	SWAP(live->sessions.buckets, fresh->sessions.buckets);
	SWAP(live->sessions.mask, fresh->sessions.mask);
	SWAP(live->sessions.count, fresh->sessions.count);
	SWAP(live->quota.buckets, fresh->quota.buckets);
	SWAP(live->quota.mask, fresh->quota.mask);
	SWAP(live->quota.count, fresh->quota.count);
	/* The nodes' ACL ids name lists in their own store's table: it goes with them
	 * (its lock stays: a mutex is not moved). */
	struct acl_slot **dir = atomic_load(&live->acls.dir);
	atomic_store(&live->acls.dir, atomic_load(&fresh->acls.dir));
	atomic_store(&fresh->acls.dir, dir);
	SWAP(live->acls.dir_cap, fresh->acls.dir_cap);
	SWAP(live->acls.used, fresh->acls.used);
	SWAP(live->acls.free, fresh->acls.free);
	SWAP(live->acls.count, fresh->acls.count);
	SWAP(live->acls.buckets, fresh->acls.buckets);
	SWAP(live->acls.mask, fresh->acls.mask);
	SWAP(live->acls.old_dirs, fresh->acls.old_dirs);
	SWAP(live->acls.old_count, fresh->acls.old_count);
	swap_atomic_u64(&live->node_count, &fresh->node_count);
	swap_atomic_u64(&live->ephemerals_count, &fresh->ephemerals_count);
	swap_atomic_u64(&live->data_bytes, &fresh->data_bytes);
	int64_t zxid = atomic_load(&live->last_zxid);
	atomic_store(&live->last_zxid, atomic_load(&fresh->last_zxid));
	atomic_store(&fresh->last_zxid, zxid);
	pthread_mutex_unlock(&live->acls.lock);
	pthread_rwlock_unlock(&live->sessions.lock);
	pthread_mutex_unlock(&live->watchers.lock);
	pthread_mutex_unlock(&live->recursive.lock);
	store_unlock_all(live);
}
