/*
 * store_tree.c — znode allocation (the layout is store_impl.h's), the per-shard path
 * hash, parent/child links, and the session table.
 *
 * Invariants
 *   1. Every linked znode is in exactly one shard's hash (shard = top 6 bits of the
 *      path hash) and, except "/", in exactly one parent's children array at
 *      parent->dir->children[parent_slot].
 *   2. children arrays are unordered; removal swaps the last child into the hole and
 *      fixes its parent_slot, so unlink is O(1).
 *   3. A session's ephemerals array holds exactly the linked znodes whose
 *      ephemeralOwner is that session id (kind ZNODE_EPHEMERAL), each at
 *      ephemerals[session_slot].
 *   4. store->reapable lists exactly the linked containers and TTL nodes (kind
 *      ZNODE_REAPABLE, doubly linked through their owner blocks), so the reaper's scan
 *      costs O(those nodes), not O(tree). Only the applier changes it, always with
 *      the node's shard locked; store_reap_candidates() reads it with every shard
 *      locked.
 *   5. A node's kind matches its ephemeralOwner (ZNODE_PERSISTENT iff 0), and a node
 *      without a dir has no children, pzxid = czxid and cversion 0.
 *   6. A shard has between STORE_SHARD_BUCKETS_MIN and 8x its nodes' count of buckets
 *      (below its nodes' count only when a growth found no memory): it doubles at
 *      one node a bucket and shrinks at one node for eight buckets (shard_trim).
 * Thread: mutations on the applier with the relevant shard locks (and the sessions
 * write lock for session changes) held; see store_impl.h.
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "store/store_impl.h"

uint64_t store_hash_bytes(const void *data, size_t n)
{
	/* A small multiply-xorshift hash; the process-local layout needs no stability. */
	const uint8_t *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	uint64_t v = 0;
	memcpy(&v, p, n);
	h = (h ^ v) * 0x94d049bb133111ebULL;
	h ^= h >> 32;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return h;
}

size_t store_parent_len(const char *path, size_t len)
{
	assert(len > 1);
	const char *slash = memrchr(path, '/', len);
	assert(slash);
	size_t plen = (size_t)(slash - path);
	return plen == 0 ? 1 : plen;
}

struct znode *store_node_find(struct store *s, const char *path, size_t len, uint64_t hash)
{
	struct shard *sh = &s->shards[store_shard_of(hash)];
	unsigned tag = store_node_hash_tag(hash);
	for (uint32_t r = sh->buckets[hash & sh->bucket_mask]; r;) {
		struct znode *n = store_nodemem_at(r);
		if (n->hash_tag == tag && n->path_len == len && memcmp(n->path, path, len) == 0)
			return n;
		r = n->hash_next;
	}
	return NULL;
}

static unsigned node_kind_of(int64_t owner)
{
	if (owner == 0)
		return ZNODE_PERSISTENT;
	return store_owner_is_session(owner) ? ZNODE_EPHEMERAL : ZNODE_REAPABLE;
}

/* Bytes after the path that the node's block has for its value (the allocator's
 * rounding included: it is room all the same). */
static size_t node_data_room(struct znode *n)
{
	size_t owner = store_node_owner_block_size(n->kind);
	size_t used = owner + offsetof(struct znode, path) + n->path_len;
	size_t size = store_nodemem_usable(store_node_ref(n), owner);
	assert(size >= used + STORE_NODE_DATA_ROOM_MIN);
	return size - used;
}

struct znode *store_node_new(const char *path, size_t len, uint64_t hash, int64_t owner, const uint8_t *data,
			     int32_t data_len)
{
	assert(len > 0 && len <= STORE_PATH_BYTES_MAX);
	unsigned kind = node_kind_of(owner);
	size_t head = store_node_owner_block_size(kind);
	size_t room = data_len > STORE_NODE_DATA_ROOM_MIN ? (size_t)data_len : STORE_NODE_DATA_ROOM_MIN;
	/* offsetof, not sizeof: the path starts inside the struct's tail padding. */
	void *obj;
	if (!store_nodemem_alloc(head + offsetof(struct znode, path) + len + room, head, &obj))
		return NULL;
	struct znode *n = obj;
	n->kind = kind;
	if (kind != ZNODE_PERSISTENT)
		memcpy((char *)n - sizeof owner, &owner, sizeof owner);
	memcpy(n->path, path, len);
	n->path_len = (uint32_t)len;
	n->hash_tag = store_node_hash_tag(hash);
	if (data_len > 0)
		memcpy(n->path + len, data, (size_t)data_len);
	n->data_len = data_len < 0 ? -1 : data_len;
	n->acl_id = STORE_ACL_OPEN_ID;
	return n;
}

void store_node_free(struct store *s, struct znode *n)
{
	if (!n)
		return;
	if (n->data_external)
		free((void *)store_node_data(n));
	if (n->dir) {
		free(store_dir_of(n));
		store_nodemem_handle_free(n->dir);
	}
	store_acl_release(s, n->acl_id);
	store_nodemem_free(store_node_ref(n), store_node_owner_block_size(n->kind));
}

int store_node_data_set(struct znode *n, const uint8_t *data, int32_t data_len, uint8_t **displaced)
{
	uint8_t *room = (uint8_t *)n->path + n->path_len;
	uint8_t *old = n->data_external ? (uint8_t *)store_node_data(n) : NULL;
	size_t len = data_len > 0 ? (size_t)data_len : 0;
	/* What fits the old value fits; only a larger one asks the allocator for the room. */
	bool fits = (!old && data_len <= n->data_len) || len <= STORE_NODE_DATA_ROOM_MIN || len <= node_data_room(n);
	if (!fits) {
		uint8_t *block = malloc(len);
		if (!block)
			return -ENOMEM;
		memcpy(block, data, len);
		memcpy(room, &block, sizeof block);
		n->data_external = 1;
	} else {
		if (len)
			memcpy(room, data, len);
		/* Written only when it changes: a byte store into the word that the
		 * watch trigger reads right after (path_len) would stall that load
		 * behind the value's stores (no store-to-load forwarding). */
		if (n->data_external)
			n->data_external = 0;
	}
	n->data_len = data_len < 0 ? -1 : data_len;
	*displaced = old;
	return 0;
}

/* Puts the shard's nodes in a table of `count` buckets (a power of two); out of memory
 * keeps the old one (longer or emptier chains, still correct). */
static void shard_rehash(struct shard *sh, size_t count)
{
	uint32_t *b = calloc(count, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i <= sh->bucket_mask; i++) {
		uint32_t r = sh->buckets[i];
		while (r) {
			struct znode *n = store_nodemem_at(r);
			uint32_t next = n->hash_next;
			size_t k = store_node_hash(n) & (count - 1);
			n->hash_next = b[k];
			b[k] = r;
			r = next;
		}
	}
	free(sh->buckets);
	sh->buckets = b;
	sh->bucket_mask = count - 1;
}

/*
 * A shard left with fewer nodes than an eighth of its buckets (a subtree deleted) goes
 * to the least power of two holding twice its nodes: it grows again only when they
 * have doubled, so a load that hovers does not rehash back and forth. A growth keeps
 * every node at or past the bucket it was in (or that plus the old count); a shrink
 * does not, so it tells a snapshot walk in this shard to start it over (sh->shrinks).
 */
static void shard_trim(struct shard *sh)
{
	size_t buckets = sh->bucket_mask + 1;
	if (buckets <= STORE_SHARD_BUCKETS_MIN || sh->node_count >= buckets / 8)
		return;
	size_t count = STORE_SHARD_BUCKETS_MIN;
	while (count < sh->node_count * 2)
		count *= 2;
	shard_rehash(sh, count);
	if (sh->bucket_mask + 1 == count)
		sh->shrinks++;
}

struct znode_dir *store_node_dir(struct znode *p)
{
	if (p->dir)
		return store_dir_of(p);
	struct znode_dir *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	uint32_t h = store_nodemem_handle_new(d);
	if (!h) {
		free(d);
		return NULL;
	}
	d->pzxid = store_node_czxid(p); /* what a node without a dir reads */
	p->dir = h;
	return d;
}

/* Bytes of a dir with room for cap children. */
static size_t dir_bytes(uint32_t cap)
{
	return sizeof(struct znode_dir) + (size_t)cap * sizeof(uint32_t);
}

/*
 * Resizes p's dir to a block of `bytes` (a power of two: the allocator's classes are
 * exact there, so a large array does not spill into the next one) and takes all the
 * room the allocator gave as capacity. 0 or -ENOMEM (p unchanged).
 */
static int dir_resize(struct znode *p, size_t bytes)
{
	struct znode_dir *d = realloc(store_dir_of(p), bytes);
	if (!d)
		return -ENOMEM;
	size_t cap = (malloc_usable_size(d) - sizeof *d) / sizeof d->children[0];
	d->child_cap = cap < UINT32_MAX ? (uint32_t)cap : UINT32_MAX;
	store_nodemem_handle_set(p->dir, d);
	return 0;
}

static int children_reserve(struct znode *p)
{
	struct znode_dir *d = store_node_dir(p);
	if (!d)
		return -ENOMEM;
	if (d->child_count < d->child_cap)
		return 0;
	size_t bytes = 64;
	while (bytes < dir_bytes(d->child_cap) * 2)
		bytes *= 2;
	return dir_resize(p, bytes);
}

void store_node_hash_insert(struct store *s, struct znode *n, uint64_t hash)
{
	struct shard *sh = &s->shards[store_shard_of(hash)];
	if (sh->node_count >= sh->bucket_mask + 1)
		shard_rehash(sh, (sh->bucket_mask + 1) * 2);
	n->hash_next = sh->buckets[hash & sh->bucket_mask];
	sh->buckets[hash & sh->bucket_mask] = store_node_ref(n);
	sh->node_count++;
}

void store_reapable_link(struct store *s, struct znode *n)
{
	if (n->kind != ZNODE_REAPABLE)
		return;
	struct znode_reapable *r = store_node_reapable(n);
	r->reap_prev = 0;
	r->reap_next = s->reapable ? store_node_ref(s->reapable) : 0;
	if (s->reapable)
		store_node_reapable(s->reapable)->reap_prev = store_node_ref(n);
	s->reapable = n;
	s->reapable_count++;
}

static void reapable_unlink(struct store *s, struct znode *n)
{
	struct znode_reapable *r = store_node_reapable(n);
	if (r->reap_prev)
		store_node_reapable(store_node_at(r->reap_prev))->reap_next = r->reap_next;
	else
		s->reapable = store_node_at(r->reap_next);
	if (r->reap_next)
		store_node_reapable(store_node_at(r->reap_next))->reap_prev = r->reap_prev;
	r->reap_prev = r->reap_next = 0;
	s->reapable_count--;
}

void store_node_link(struct store *s, struct znode *parent, struct znode *n, uint64_t hash)
{
	store_node_hash_insert(s, n, hash);
	if (parent) {
		/* Reserved by the caller before any mutation; see op_create. */
		struct znode_dir *d = store_dir_of(parent);
		assert(d && d->child_count < d->child_cap);
		n->parent_slot = d->child_count;
		d->children[d->child_count++] = store_node_ref(n);
	}
	store_reapable_link(s, n);
	atomic_fetch_add_explicit(&s->node_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->data_bytes, n->path_len + (uint64_t)(n->data_len > 0 ? n->data_len : 0),
				  memory_order_relaxed);
}

void store_node_unlink(struct store *s, struct znode *p, struct znode *n)
{
	uint64_t hash = store_node_hash(n);
	struct shard *sh = &s->shards[store_shard_of(hash)];
	uint32_t ref = store_node_ref(n);
	uint32_t *pp = &sh->buckets[hash & sh->bucket_mask];
	while (*pp != ref) {
		assert(*pp);
		pp = &((struct znode *)store_nodemem_at(*pp))->hash_next;
	}
	*pp = n->hash_next;
	n->hash_next = 0;
	sh->node_count--;
	/* A rolled-back multi re-inserts what it deleted, growing the table if it must. */
	shard_trim(sh);
	struct znode_dir *d = store_dir_of(p);
	assert(d && d->child_count > 0 && d->children[n->parent_slot] == ref);
	uint32_t last = d->children[--d->child_count];
	d->children[n->parent_slot] = last;
	((struct znode *)store_nodemem_at(last))->parent_slot = n->parent_slot;
	/*
	 * No shrinking here: a rolled-back multi re-links deleted children and must find
	 * the room it left. store_node_children_trim() shrinks after commit.
	 */
	if (n->kind == ZNODE_REAPABLE)
		reapable_unlink(s, n);
	atomic_fetch_sub_explicit(&s->node_count, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&s->data_bytes, n->path_len + (uint64_t)(n->data_len > 0 ? n->data_len : 0),
				  memory_order_relaxed);
}

int store_node_children_reserve(struct znode *p)
{
	if (store_node_child_count(p) >= STORE_CHILDREN_MAX)
		return -E2BIG;
	return children_reserve(p);
}

void store_node_children_trim(struct znode *p)
{
	struct znode_dir *d = store_dir_of(p);
	if (!d || d->child_cap <= 64 || d->child_count >= d->child_cap / 8)
		return;
	/* Room for twice the children left, at most a quarter of the block: an allocator
	 * may keep a block in place for a realloc to half its size (mimalloc does). */
	size_t bytes = 64;
	while (bytes < dir_bytes(d->child_count * 2))
		bytes *= 2;
	if (bytes <= dir_bytes(d->child_cap) / 4)
		(void)dir_resize(p, bytes); /* out of memory: keep the larger array */
}

void store_node_stat(struct store *s, const struct znode *n, struct zk_stat *st)
{
	uint32_t children = store_node_child_count(n);
	int64_t owner = store_node_owner(n);
	st->czxid = store_node_czxid(n);
	st->mzxid = store_node_mzxid(n);
	st->ctime = store_node_ctime(n);
	st->mtime = store_node_mtime(n);
	st->version = n->version;
	/* DataNode.copyStat: creates counted twice minus the children still present. */
	st->cversion = (int32_t)((uint32_t)store_node_cversion_stored(n) * 2u - children);
	st->aversion = store_node_aversion(s, n);
	st->ephemeral_owner = store_owner_is_session(owner) ? owner : 0;
	st->data_length = n->data_len > 0 ? n->data_len : 0;
	st->num_children = (int32_t)children;
	st->pzxid = store_node_pzxid(n);
}

/* ---------------------------------------------------------------- reaper */

/* ZooKeeper's ContainerManager test, evaluated at now_ms. Caller holds n's shard lock. */
bool store_node_reapable_at(const struct znode *n, int64_t now_ms)
{
	if (n->kind != ZNODE_REAPABLE || store_node_child_count(n) != 0)
		return false;
	int64_t owner = store_node_owner(n);
	if (owner == ZK_EPHEMERAL_OWNER_CONTAINER)
		return store_node_cversion_stored(n) > 0; /* had a child once */
	int64_t ttl = store_owner_ttl_ms(owner);
	/* now - mtime > ttl, written so that it cannot overflow */
	int64_t mtime = store_node_mtime(n);
	return ttl > 0 && now_ms > mtime && now_ms - mtime > ttl;
}

void store_reap_candidates(struct store *s, int64_t now_ms, void (*fn)(void *ctx, const char *path, size_t path_len),
			   void *ctx, size_t max)
{
	/*
	 * Copy the paths under the locks, call fn after unlocking (fn typically proposes a
	 * deleteContainer txn). Every shard is locked because the candidates live in all
	 * of them; the walk costs O(containers + TTL nodes). Out of memory: no candidates
	 * this round (the reaper runs again later).
	 */
	store_lock_all(s);
	size_t count = 0, bytes = 0;
	for (struct znode *n = s->reapable; n && count < max; n = store_node_at(store_node_reapable(n)->reap_next))
		if (store_node_reapable_at(n, now_ms)) {
			count++;
			bytes += n->path_len;
		}
	size_t *lens = count ? malloc(count * sizeof *lens) : NULL;
	char *paths = bytes ? malloc(bytes) : NULL;
	size_t listed = 0, off = 0;
	if (lens && paths) {
		for (struct znode *n = s->reapable; n && listed < count;
		     n = store_node_at(store_node_reapable(n)->reap_next)) {
			if (!store_node_reapable_at(n, now_ms))
				continue;
			memcpy(paths + off, n->path, n->path_len);
			lens[listed++] = n->path_len;
			off += n->path_len;
		}
	}
	store_unlock_all(s);
	off = 0;
	for (size_t i = 0; i < listed; i++) {
		fn(ctx, paths + off, lens[i]);
		off += lens[i];
	}
	free(lens);
	free(paths);
}

/* ---------------------------------------------------------------- sessions */

static size_t session_bucket(const struct store *s, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & s->sessions.mask;
}

void store_sessions_init(struct store *s)
{
	pthread_rwlock_init(&s->sessions.lock, NULL);
	s->sessions.mask = 255;
	s->sessions.buckets = calloc(256, sizeof *s->sessions.buckets);
	assert(s->sessions.buckets);
}

void store_sessions_destroy(struct store *s)
{
	for (size_t i = 0; i <= s->sessions.mask; i++) {
		struct session *se = s->sessions.buckets[i];
		while (se) {
			struct session *next = se->next;
			free(se->ephemerals);
			free(se);
			se = next;
		}
	}
	free(s->sessions.buckets);
	pthread_rwlock_destroy(&s->sessions.lock);
}

struct session *store_session_find(struct store *s, int64_t id)
{
	for (struct session *se = s->sessions.buckets[session_bucket(s, id)]; se; se = se->next)
		if (se->id == id)
			return se;
	return NULL;
}

static void sessions_grow(struct store *s)
{
	size_t count = (s->sessions.mask + 1) * 2;
	struct session **b = calloc(count, sizeof *b);
	if (!b)
		return;
	size_t old_mask = s->sessions.mask;
	struct session **old = s->sessions.buckets;
	s->sessions.mask = count - 1;
	for (size_t i = 0; i <= old_mask; i++) {
		struct session *se = old[i];
		while (se) {
			struct session *next = se->next;
			size_t k = session_bucket(s, se->id);
			se->next = b[k];
			b[k] = se;
			se = next;
		}
	}
	s->sessions.buckets = b;
	free(old);
}

int store_session_insert(struct store *s, int64_t id, int32_t timeout_ms, const uint8_t *passwd, size_t passwd_len,
			 int64_t now_ms)
{
	pthread_rwlock_wrlock(&s->sessions.lock);
	struct session *se = store_session_find(s, id);
	if (!se) {
		se = calloc(1, sizeof *se);
		if (!se) {
			pthread_rwlock_unlock(&s->sessions.lock);
			return -ENOMEM;
		}
		se->id = id;
		if (s->sessions.count >= s->sessions.mask + 1)
			sessions_grow(s);
		size_t k = session_bucket(s, id);
		se->next = s->sessions.buckets[k];
		s->sessions.buckets[k] = se;
		s->sessions.count++;
	}
	se->timeout_ms = timeout_ms;
	memset(se->passwd, 0, sizeof se->passwd);
	memcpy(se->passwd, passwd, passwd_len < 16 ? passwd_len : 16);
	atomic_store(&se->touch_ms, now_ms);
	atomic_store(&se->touch_timeout_ms, timeout_ms);
	pthread_rwlock_unlock(&s->sessions.lock);
	return 0;
}

void store_session_remove(struct store *s, int64_t id)
{
	pthread_rwlock_wrlock(&s->sessions.lock);
	struct session **pp = &s->sessions.buckets[session_bucket(s, id)];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	struct session *se = *pp;
	if (se) {
		assert(se->ephemeral_count == 0);
		*pp = se->next;
		s->sessions.count--;
	}
	pthread_rwlock_unlock(&s->sessions.lock);
	if (se) {
		free(se->ephemerals);
		free(se);
	}
}

int store_session_ephemeral_add(struct store *s, struct session *se, struct znode *n)
{
	int rc = 0;
	pthread_rwlock_wrlock(&s->sessions.lock);
	if (se->ephemeral_count == se->ephemeral_cap) {
		uint32_t cap = se->ephemeral_cap ? se->ephemeral_cap * 2 : 4;
		struct znode **e = cap <= STORE_EPHEMERALS_MAX ? realloc(se->ephemerals, cap * sizeof *e) : NULL;
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
		se->ephemerals = e;
		se->ephemeral_cap = cap;
	}
	store_node_ephemeral(n)->session_slot = se->ephemeral_count;
	se->ephemerals[se->ephemeral_count++] = n;
	atomic_fetch_add_explicit(&s->ephemerals_count, 1, memory_order_relaxed);
out:
	pthread_rwlock_unlock(&s->sessions.lock);
	return rc;
}

void store_session_ephemeral_remove(struct store *s, struct session *se, struct znode *n)
{
	pthread_rwlock_wrlock(&s->sessions.lock);
	uint32_t slot = store_node_ephemeral(n)->session_slot;
	assert(se->ephemeral_count > 0 && se->ephemerals[slot] == n);
	struct znode *last = se->ephemerals[--se->ephemeral_count];
	se->ephemerals[slot] = last;
	store_node_ephemeral(last)->session_slot = slot;
	atomic_fetch_sub_explicit(&s->ephemerals_count, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&s->sessions.lock);
}

bool store_session_get(struct store *s, int64_t session_id, int32_t *timeout_ms, uint8_t passwd[16])
{
	pthread_rwlock_rdlock(&s->sessions.lock);
	struct session *se = store_session_find(s, session_id);
	if (se) {
		if (timeout_ms)
			*timeout_ms = se->timeout_ms;
		if (passwd)
			memcpy(passwd, se->passwd, 16);
	}
	pthread_rwlock_unlock(&s->sessions.lock);
	return se != NULL;
}

void store_session_touch(struct store *s, int64_t session_id, int64_t now_ms, int32_t timeout_ms)
{
	pthread_rwlock_rdlock(&s->sessions.lock);
	struct session *se = store_session_find(s, session_id);
	if (se) {
		atomic_store_explicit(&se->touch_ms, now_ms, memory_order_relaxed);
		atomic_store_explicit(&se->touch_timeout_ms, timeout_ms, memory_order_relaxed);
		atomic_store_explicit(&se->local_touch_ms, now_ms, memory_order_relaxed);
	}
	pthread_rwlock_unlock(&s->sessions.lock);
}

uint32_t store_session_owner(struct store *s, int64_t session_id)
{
	/* The applier is the table's only writer: it finds sessions without the lock. */
	struct session *se = store_session_find(s, session_id);
	return se ? atomic_load_explicit(&se->owner, memory_order_relaxed) : 0;
}

bool store_session_set_owner(struct store *s, int64_t session_id, uint32_t owner)
{
	struct session *se = store_session_find(s, session_id);
	if (se)
		atomic_store_explicit(&se->owner, owner, memory_order_relaxed);
	return se != NULL;
}

void store_session_touch_remote(struct store *s, int64_t session_id, int64_t now_ms)
{
	pthread_rwlock_rdlock(&s->sessions.lock);
	struct session *se = store_session_find(s, session_id);
	if (se && atomic_load_explicit(&se->touch_ms, memory_order_relaxed) < now_ms)
		atomic_store_explicit(&se->touch_ms, now_ms, memory_order_relaxed);
	pthread_rwlock_unlock(&s->sessions.lock);
}

size_t store_sessions_local_since(struct store *s, int64_t since_ms, int64_t *ids, size_t cap)
{
	size_t n = 0;
	pthread_rwlock_rdlock(&s->sessions.lock);
	for (size_t i = 0; i <= s->sessions.mask && n < cap; i++)
		for (struct session *se = s->sessions.buckets[i]; se && n < cap; se = se->next)
			if (atomic_load_explicit(&se->local_touch_ms, memory_order_relaxed) >= since_ms)
				ids[n++] = se->id;
	pthread_rwlock_unlock(&s->sessions.lock);
	return n;
}

void store_sessions_expired(struct store *s, int64_t now_ms, int64_t since_ms,
			    void (*fn)(void *ctx, int64_t session_id), void *ctx)
{
	/*
	 * Collect first, call after unlocking: fn may well propose a closeSession, and it
	 * must not run under our lock. The snapshot is bounded by the session count.
	 */
	pthread_rwlock_rdlock(&s->sessions.lock);
	size_t cap = s->sessions.count, n = 0;
	int64_t *ids = cap ? malloc(cap * sizeof *ids) : NULL;
	for (size_t i = 0; ids && i <= s->sessions.mask; i++) {
		for (struct session *se = s->sessions.buckets[i]; se; se = se->next) {
			int64_t touch = atomic_load_explicit(&se->touch_ms, memory_order_relaxed);
			int32_t to = atomic_load_explicit(&se->touch_timeout_ms, memory_order_relaxed);
			if (touch < since_ms)
				touch = since_ms;
			if (touch + to < now_ms && n < cap)
				ids[n++] = se->id;
		}
	}
	pthread_rwlock_unlock(&s->sessions.lock);
	for (size_t i = 0; i < n; i++)
		fn(ctx, ids[i]);
	free(ids);
}

void store_sessions_dump(struct store *s, void (*session_fn)(void *ctx, int64_t session_id, int32_t timeout_ms),
			 void (*ephemeral_fn)(void *ctx, int64_t session_id, const char *path, size_t len), void *ctx)
{
	/*
	 * The read lock keeps every listed ephemeral alive: the applier takes the write
	 * lock to drop a node from its session's array, and frees it only after that.
	 */
	pthread_rwlock_rdlock(&s->sessions.lock);
	for (size_t i = 0; session_fn && i <= s->sessions.mask; i++)
		for (const struct session *se = s->sessions.buckets[i]; se; se = se->next)
			session_fn(ctx, se->id, se->timeout_ms);
	for (size_t i = 0; ephemeral_fn && i <= s->sessions.mask; i++)
		for (const struct session *se = s->sessions.buckets[i]; se; se = se->next)
			for (uint32_t k = 0; k < se->ephemeral_count; k++)
				ephemeral_fn(ctx, se->id, se->ephemerals[k]->path, se->ephemerals[k]->path_len);
	pthread_rwlock_unlock(&s->sessions.lock);
}

void store_stamp_zxid_overflow(int64_t zxid)
{
	fprintf(stderr, "store: zxid 0x%llx does not fit a node's 48 bits\n", (unsigned long long)zxid);
	abort();
}
