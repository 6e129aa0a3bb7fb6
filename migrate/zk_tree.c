/*
 * zk_tree.c — the model's tables (nodes, interned ACL lists, owners), its digest, and
 * loading a snapshot into it. Applying txns is zk_tree_apply.c; see zk_tree.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/zk_proto.h"
#include "migrate/zk_tree_impl.h"

#define TABLE_BUCKETS_INITIAL 1024u

uint64_t zk_hash_bytes(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

enum zk_ephemeral_kind zk_ephemeral_kind(int64_t owner)
{
	if ((owner & ZK_EPHEMERAL_OWNER_TTL_MASK) == ZK_EPHEMERAL_OWNER_TTL_MASK) {
		/* The extended feature bits (40..55) name the kind; only 0 (TTL) exists. */
		if (((uint64_t)owner & 0x00FFFF0000000000ULL) != 0)
			return ZK_EPHEMERAL_INVALID;
		return ZK_EPHEMERAL_TTL;
	}
	if (owner == ZK_EPHEMERAL_OWNER_CONTAINER)
		return ZK_EPHEMERAL_CONTAINER;
	return owner == 0 ? ZK_EPHEMERAL_VOID : ZK_EPHEMERAL_NORMAL;
}

unsigned zk_tree_type_slot(int32_t type)
{
	return type >= -11 && type <= 21 ? (unsigned)(type + 11) : ZK_TXN_TYPES_COUNTED - 1;
}

/* ---------------------------------------------------------------- growable tables */

/* Doubles a chained table of `mask + 1` buckets; next_of gives an entry's chain link
 * and hash_of its hash. Out of memory: the table stays as it was (only slower). */
#define TABLE_GROW(type, buckets, mask, link, hashf)                                     \
	do {                                                                              \
		size_t new_mask_ = (mask) * 2 + 1;                                        \
		type **nb_ = calloc(new_mask_ + 1, sizeof *nb_);                          \
		if (!nb_)                                                                 \
			break;                                                            \
		for (size_t i_ = 0; i_ <= (mask); i_++) {                                 \
			type *e_ = (buckets)[i_];                                         \
			while (e_) {                                                      \
				type *next_ = e_->link;                                   \
				size_t b_ = (size_t)(hashf(e_)) & new_mask_;              \
				e_->link = nb_[b_];                                       \
				nb_[b_] = e_;                                             \
				e_ = next_;                                               \
			}                                                                 \
		}                                                                         \
		free(buckets);                                                            \
		(buckets) = nb_;                                                          \
		(mask) = new_mask_;                                                       \
	} while (0)

#define NODE_HASH(n) ((n)->hash)
#define ACL_HASH(a) ((a)->hash)
#define OWNER_HASH(o) ((uint64_t)(o)->id * 0x9E3779B97F4A7C15ULL)

struct zk_tree *zk_tree_new(void)
{
	struct zk_tree *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->mask = TABLE_BUCKETS_INITIAL - 1;
	t->acl_mask = 63;
	t->owner_mask = 255;
	t->acl_ids_mask = 63;
	t->buckets = calloc(t->mask + 1, sizeof *t->buckets);
	t->acl_buckets = calloc(t->acl_mask + 1, sizeof *t->acl_buckets);
	t->owner_buckets = calloc(t->owner_mask + 1, sizeof *t->owner_buckets);
	t->acl_ids = calloc(t->acl_ids_mask + 1, sizeof *t->acl_ids);
	/* OPEN_ACL_UNSAFE: [31, world:anyone] */
	static const uint8_t open[] = { 0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd',
					0, 0, 0, 6, 'a', 'n', 'y', 'o', 'n', 'e' };
	if (t->buckets && t->acl_buckets && t->owner_buckets && t->acl_ids)
		t->acl_open = zk_acl_intern(t, (struct jute_bytes){ open, (int32_t)sizeof open });
	if (!t->acl_open) {
		zk_tree_free(t);
		return NULL;
	}
	return t;
}

void zk_tree_free(struct zk_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->buckets && i <= t->mask; i++) {
		struct zk_node *n = t->buckets[i];
		while (n) {
			struct zk_node *next = n->hash_next;
			free(n->data);
			free(n);
			n = next;
		}
	}
	for (size_t i = 0; t->acl_buckets && i <= t->acl_mask; i++) {
		struct zk_acl_list *a = t->acl_buckets[i];
		while (a) {
			struct zk_acl_list *next = a->next;
			free(a);
			a = next;
		}
	}
	for (size_t i = 0; t->owner_buckets && i <= t->owner_mask; i++) {
		struct zk_owner *o = t->owner_buckets[i];
		while (o) {
			struct zk_owner *next = o->next;
			free(o);
			o = next;
		}
	}
	zk_quota_free(&t->quota);
	free(t->buckets);
	free(t->acl_buckets);
	free(t->owner_buckets);
	free(t->acl_ids);
	free(t);
}

/* ---------------------------------------------------------------- nodes */

static uint64_t path_hash(const char *path, size_t len)
{
	/* "" is the root's name in ZooKeeper's snapshots and parent paths */
	if (len == 0) {
		path = "/";
		len = 1;
	}
	return zk_hash_bytes(path, len);
}

struct zk_node *zk_node_find(const struct zk_tree *t, const char *path, size_t len)
{
	if (len == 0) {
		path = "/";
		len = 1;
	}
	uint64_t h = path_hash(path, len);
	for (struct zk_node *n = t->buckets[h & t->mask]; n; n = n->hash_next)
		if (n->hash == h && n->path_len == len && memcmp(n->path, path, len) == 0)
			return n;
	return NULL;
}

struct zk_node *zk_node_add(struct zk_tree *t, struct zk_node *parent, const char *path, size_t len)
{
	if (len == 0) {
		path = "/";
		len = 1;
	}
	struct zk_node *n = calloc(1, sizeof *n + len + 1);
	if (!n)
		return NULL;
	memcpy(n->path, path, len);
	n->path_len = (uint32_t)len;
	n->hash = path_hash(path, len);
	n->data_len = -1;
	n->acl = t->acl_open;
	if (t->node_count > t->mask)
		TABLE_GROW(struct zk_node, t->buckets, t->mask, hash_next, NODE_HASH);
	struct zk_node **b = &t->buckets[n->hash & t->mask];
	n->hash_next = *b;
	*b = n;
	t->node_count++;
	n->parent = parent;
	if (parent) {
		n->sib_next = parent->child_first;
		if (parent->child_first)
			parent->child_first->sib_prev = n;
		parent->child_first = n;
		parent->child_count++;
	} else if (!t->root) {
		t->root = n;
	}
	return n;
}

void zk_node_remove(struct zk_tree *t, struct zk_node *n)
{
	struct zk_node *p = n->parent;
	if (p) {
		if (n->sib_prev)
			n->sib_prev->sib_next = n->sib_next;
		else
			p->child_first = n->sib_next;
		if (n->sib_next)
			n->sib_next->sib_prev = n->sib_prev;
		p->child_count--;
	}
	zk_owner_unlist(n);
	struct zk_node **pp = &t->buckets[n->hash & t->mask];
	while (*pp != n)
		pp = &(*pp)->hash_next;
	*pp = n->hash_next;
	t->node_count--;
	if (t->root == n)
		t->root = NULL;
	free(n->data);
	free(n);
}

int zk_node_set_data(struct zk_node *n, struct jute_bytes data)
{
	uint8_t *copy = NULL;
	if (data.len > 0) {
		copy = malloc((size_t)data.len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data.data, (size_t)data.len);
	}
	free(n->data);
	n->data = copy;
	n->data_len = data.len < 0 ? -1 : data.len;
	return 0;
}

uint32_t zk_node_digest(const struct zk_node *n)
{
	static const char sub[] = "/zookeeper/";
	if (n->path_len >= sizeof sub - 1 && memcmp(n->path, sub, sizeof sub - 1) == 0)
		return 0;
	uint8_t st[60];
	int64_t longs[5] = { n->czxid, n->mzxid, n->pzxid, n->ctime, n->mtime };
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 8; k++)
			st[i * 8 + k] = (uint8_t)((uint64_t)longs[i] >> (56 - 8 * k));
	jute_put_be32(st + 40, (uint32_t)n->version);
	jute_put_be32(st + 44, (uint32_t)n->cversion);
	jute_put_be32(st + 48, (uint32_t)n->aversion);
	for (int k = 0; k < 8; k++)
		st[52 + k] = (uint8_t)((uint64_t)n->ephemeral_owner >> (56 - 8 * k));
	uLong crc = crc32(0L, Z_NULL, 0);
	if (!(n->path_len == 1 && n->path[0] == '/')) /* the root is "" */
		crc = crc32(crc, (const Bytef *)n->path, n->path_len);
	if (n->data_len > 0)
		crc = crc32(crc, n->data, (uInt)n->data_len);
	crc = crc32(crc, st, sizeof st);
	return (uint32_t)crc;
}

/* ---------------------------------------------------------------- ACL lists */

const struct zk_acl_list *zk_acl_intern(struct zk_tree *t, struct jute_bytes acl)
{
	size_t len = acl.len > 0 ? (size_t)acl.len : 0;
	uint64_t h = zk_hash_bytes(acl.data, len);
	for (struct zk_acl_list *a = t->acl_buckets[h & t->acl_mask]; a; a = a->next)
		if (a->hash == h && a->len == len && memcmp(a->bytes, acl.data, len) == 0)
			return a;
	struct zk_acl_list *a = malloc(sizeof *a + len);
	if (!a)
		return NULL;
	a->hash = h;
	a->len = (uint32_t)len;
	a->count = len >= 4 ? jute_get_be32(acl.data) : 0;
	if (a->count == UINT32_MAX) /* a null vector: no entries */
		a->count = 0;
	memcpy(a->bytes, acl.data, len);
	if (t->acl_count > t->acl_mask)
		TABLE_GROW(struct zk_acl_list, t->acl_buckets, t->acl_mask, next, ACL_HASH);
	struct zk_acl_list **b = &t->acl_buckets[h & t->acl_mask];
	a->next = *b;
	*b = a;
	t->acl_count++;
	return a;
}

/* ---------------------------------------------------------------- owners */

struct zk_owner *zk_owner_get(struct zk_tree *t, int64_t id, bool create)
{
	struct zk_owner key = { .id = id };
	size_t b = (size_t)OWNER_HASH(&key) & t->owner_mask;
	for (struct zk_owner *o = t->owner_buckets[b]; o; o = o->next)
		if (o->id == id)
			return o;
	if (!create)
		return NULL;
	struct zk_owner *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->id = id;
	if (t->owner_count > t->owner_mask) {
		TABLE_GROW(struct zk_owner, t->owner_buckets, t->owner_mask, next, OWNER_HASH);
		b = (size_t)OWNER_HASH(&key) & t->owner_mask;
	}
	o->next = t->owner_buckets[b];
	t->owner_buckets[b] = o;
	t->owner_count++;
	return o;
}

void zk_owner_list(struct zk_tree *t, struct zk_node *n)
{
	struct zk_owner *o = zk_owner_get(t, n->ephemeral_owner, true);
	if (!o)
		return; /* out of memory: the caller checks n->owner */
	n->owner = o;
	n->owner_prev = NULL;
	n->owner_next = o->eph_first;
	if (o->eph_first)
		o->eph_first->owner_prev = n;
	o->eph_first = n;
	o->eph_count++;
}

void zk_owner_unlist(struct zk_node *n)
{
	struct zk_owner *o = n->owner;
	if (!o)
		return;
	if (n->owner_prev)
		n->owner_prev->owner_next = n->owner_next;
	else
		o->eph_first = n->owner_next;
	if (n->owner_next)
		n->owner_next->owner_prev = n->owner_prev;
	o->eph_count--;
	n->owner = NULL;
	n->owner_prev = n->owner_next = NULL;
}

/* ---------------------------------------------------------------- loading */

int zk_tree_load_session(struct zk_tree *t, int64_t id, int32_t timeout_ms)
{
	struct zk_owner *o = zk_owner_get(t, id, true);
	if (!o)
		return -ENOMEM;
	if (!o->session)
		t->session_count++;
	o->session = true;
	o->timeout_ms = timeout_ms;
	return 0;
}

static struct zk_acl_id *acl_id_slot(struct zk_tree *t, int64_t id)
{
	size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ULL) & t->acl_ids_mask;
	while (t->acl_ids[i].used && t->acl_ids[i].id != id)
		i = (i + 1) & t->acl_ids_mask;
	return &t->acl_ids[i];
}

int zk_tree_load_acl(struct zk_tree *t, int64_t acl_id, struct jute_bytes acl, char *why, size_t why_size)
{
	if (t->acl_ids_count * 2 >= t->acl_ids_mask) {
		size_t old_mask = t->acl_ids_mask;
		struct zk_acl_id *old = t->acl_ids;
		t->acl_ids_mask = old_mask * 2 + 1;
		t->acl_ids = calloc(t->acl_ids_mask + 1, sizeof *t->acl_ids);
		if (!t->acl_ids) {
			t->acl_ids = old;
			t->acl_ids_mask = old_mask;
			return -ENOMEM;
		}
		for (size_t i = 0; i <= old_mask; i++)
			if (old[i].used)
				*acl_id_slot(t, old[i].id) = old[i];
		free(old);
	}
	struct zk_acl_id *slot = acl_id_slot(t, acl_id);
	if (slot->used) {
		snprintf(why, why_size, "the snapshot's ACL cache has id %lld twice", (long long)acl_id);
		return -EINVAL;
	}
	const struct zk_acl_list *a = zk_acl_intern(t, acl);
	if (!a)
		return -ENOMEM;
	*slot = (struct zk_acl_id){ .id = acl_id, .acl = a, .used = true };
	t->acl_ids_count++;
	return 0;
}

int zk_tree_load_node(struct zk_tree *t, struct jute_bytes path, struct jute_bytes data, int64_t acl_id,
		      const struct zk_stat_persisted *st, char *why, size_t why_size)
{
	const char *p = (const char *)path.data;
	size_t len = path.len > 0 ? (size_t)path.len : 0;
	const struct zk_acl_list *acl = t->acl_open;
	if (acl_id != ZK_ACL_OPEN_ID) {
		struct zk_acl_id *slot = acl_id_slot(t, acl_id);
		if (!slot->used) {
			snprintf(why, why_size, "node %.*s refers to ACL id %lld, which the snapshot's ACL cache does not have",
				 (int)(len > 200 ? 200 : len), p, (long long)acl_id);
			return -EINVAL;
		}
		acl = slot->acl;
	}
	if (zk_ephemeral_kind(st->ephemeral_owner) == ZK_EPHEMERAL_INVALID) {
		snprintf(why, why_size, "node %.*s has ephemeralOwner 0x%llx, which ZooKeeper cannot read",
			 (int)(len > 200 ? 200 : len), p, (unsigned long long)st->ephemeral_owner);
		return -EINVAL;
	}
	struct zk_node *parent = NULL;
	if (len > 0) {
		const char *slash = memrchr(p, '/', len);
		if (!slash || !t->root) {
			snprintf(why, why_size, "node %.*s comes before the root or has no '/'", (int)(len > 200 ? 200 : len), p);
			return -EINVAL;
		}
		parent = zk_node_find(t, p, (size_t)(slash - p));
		if (!parent) {
			snprintf(why, why_size, "node %.*s comes without its parent", (int)(len > 200 ? 200 : len), p);
			return -EINVAL;
		}
	} else if (t->root) {
		snprintf(why, why_size, "the snapshot has the root twice");
		return -EINVAL;
	}
	if (len > 0 && zk_node_find(t, p, len)) {
		snprintf(why, why_size, "node %.*s is in the snapshot twice", (int)(len > 200 ? 200 : len), p);
		return -EINVAL;
	}
	struct zk_node *n = zk_node_add(t, parent, p, len);
	if (!n || zk_node_set_data(n, data) < 0)
		return -ENOMEM;
	n->acl = acl;
	n->czxid = st->czxid;
	n->mzxid = st->mzxid;
	n->ctime = st->ctime;
	n->mtime = st->mtime;
	n->version = st->version;
	n->cversion = st->cversion;
	n->aversion = st->aversion;
	n->ephemeral_owner = st->ephemeral_owner;
	n->pzxid = st->pzxid;
	if (zk_ephemeral_kind(n->ephemeral_owner) == ZK_EPHEMERAL_NORMAL && parent) {
		zk_owner_list(t, n);
		if (!n->owner)
			return -ENOMEM;
	}
	zk_digest_post(t, n);
	return 0;
}

/* The next node of the subtree under top, in pre-order, or NULL when it is done. */
static const struct zk_node *next_within(const struct zk_node *n, const struct zk_node *top)
{
	if (n->child_first)
		return n->child_first;
	while (n != top) {
		if (n->sib_next)
			return n->sib_next;
		n = n->parent;
	}
	return NULL;
}

int zk_tree_load_finish(struct zk_tree *t, int64_t snapshot_zxid, char *why, size_t why_size)
{
	free(t->acl_ids);
	t->acl_ids = NULL;
	t->acl_ids_count = 0;
	t->acl_ids_mask = 0;
	if (!t->root) {
		snprintf(why, why_size, "the snapshot has no root node");
		return -EINVAL;
	}
	t->last_zxid = snapshot_zxid;
	/* DataTree.setupQuota: every leaf under /zookeeper/quota named zookeeper_limits
	 * makes the path between a quota path, with its stats node recounted. */
	static const char quota[] = "/zookeeper/quota";
	static const char limits[] = "/zookeeper_limits";
	const struct zk_node *top = zk_node_find(t, quota, sizeof quota - 1);
	for (const struct zk_node *n = top; n; n = next_within(n, top)) {
		size_t ll = sizeof limits - 1;
		if (n->child_count || n->path_len < ll || memcmp(n->path + n->path_len - ll, limits, ll) != 0)
			continue;
		const char *first = strstr(n->path, limits);
		size_t off = sizeof quota - 1;
		size_t real_len = (size_t)(first - n->path) - off;
		if (first < n->path + off || real_len == 0) {
			snprintf(why, why_size, "quota node %s names no path (ZooKeeper cannot load it)", n->path);
			return -EINVAL;
		}
		int rc = zk_tree_quota_recount(t, n->path + off, real_len);
		if (rc == 0)
			rc = zk_quota_add(&t->quota, n->path + off, real_len);
		if (rc < 0) {
			snprintf(why, why_size, "quota node %s: %s", n->path, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- reading */

uint64_t zk_tree_digest(const struct zk_tree *t) { return t->digest; }
int64_t zk_tree_last_zxid(const struct zk_tree *t) { return t->last_zxid; }
uint64_t zk_tree_node_count(const struct zk_tree *t) { return t->node_count; }
const struct zk_tree_stats *zk_tree_stats(const struct zk_tree *t) { return &t->stats; }
const struct zk_node *zk_tree_root(const struct zk_tree *t) { return t->root; }
uint64_t zk_tree_session_count(const struct zk_tree *t) { return t->session_count; }

const struct zk_node *zk_tree_find(const struct zk_tree *t, const char *path, size_t len)
{
	return zk_node_find(t, path, len);
}

const struct zk_node *zk_tree_next(const struct zk_node *n)
{
	if (n->child_first)
		return n->child_first;
	for (; n; n = n->parent)
		if (n->sib_next)
			return n->sib_next;
	return NULL;
}

void zk_node_stat(const struct zk_node *n, struct zk_stat *st)
{
	*st = (struct zk_stat){
		.czxid = n->czxid,
		.mzxid = n->mzxid,
		.ctime = n->ctime,
		.mtime = n->mtime,
		.version = n->version,
		.cversion = (int32_t)((uint32_t)n->cversion * 2 - n->child_count),
		.aversion = n->aversion,
		.ephemeral_owner = zk_ephemeral_kind(n->ephemeral_owner) == ZK_EPHEMERAL_NORMAL ? n->ephemeral_owner : 0,
		.data_length = n->data_len > 0 ? n->data_len : 0,
		.num_children = (int32_t)n->child_count,
		.pzxid = n->pzxid,
	};
}

void zk_tree_sessions(const struct zk_tree *t, void (*fn)(void *ctx, const struct zk_owner *o), void *ctx)
{
	for (size_t i = 0; i <= t->owner_mask; i++)
		for (const struct zk_owner *o = t->owner_buckets[i]; o; o = o->next)
			if (o->session)
				fn(ctx, o);
}

size_t zk_tree_quota_roots(const struct zk_tree *t, const char *const **roots)
{
	*roots = (const char *const *)t->quota.paths;
	return t->quota.count;
}
