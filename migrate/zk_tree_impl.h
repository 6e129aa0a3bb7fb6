/*
 * zk_tree_impl.h — the parts of zk_tree shared by zk_tree.c, zk_tree_apply.c and
 * zk_quota.c. Not for other modules.
 */
#ifndef RK_ZK_TREE_IMPL_H
#define RK_ZK_TREE_IMPL_H

#include "migrate/zk_tree.h"

/* The quota paths (PathTrie nodes with the property set), normalized, sorted. */
struct zk_quota_roots {
	char **paths;
	size_t count, cap;
};

struct zk_acl_id {
	int64_t id;
	const struct zk_acl_list *acl;
	bool used;
};

struct zk_tree {
	struct zk_node **buckets;
	size_t mask;
	uint64_t node_count;
	struct zk_node *root;
	/* interned ACL lists */
	struct zk_acl_list **acl_buckets;
	size_t acl_mask, acl_count;
	const struct zk_acl_list *acl_open; /* [31, world:anyone] */
	/* the snapshot's ACL cache ids (while loading) */
	struct zk_acl_id *acl_ids;
	size_t acl_ids_mask, acl_ids_count;
	/* sessions and ephemeral owners */
	struct zk_owner **owner_buckets;
	size_t owner_mask, owner_count;
	uint64_t session_count;
	struct zk_quota_roots quota;
	uint64_t digest;
	int64_t last_zxid;
	struct zk_tree_stats stats;
};

uint64_t zk_hash_bytes(const void *p, size_t len);

/* zk_tree.c: the node table, ACLs, owners, digests */
struct zk_node *zk_node_find(const struct zk_tree *t, const char *path, size_t len);
struct zk_node *zk_node_add(struct zk_tree *t, struct zk_node *parent, const char *path, size_t len);
/* Unlinks n from its parent, its owner and the table, and frees it (no children). */
void zk_node_remove(struct zk_tree *t, struct zk_node *n);
const struct zk_acl_list *zk_acl_intern(struct zk_tree *t, struct jute_bytes acl);
struct zk_owner *zk_owner_get(struct zk_tree *t, int64_t id, bool create);
void zk_owner_list(struct zk_tree *t, struct zk_node *n);
void zk_owner_unlist(struct zk_node *n);
int zk_node_set_data(struct zk_node *n, struct jute_bytes data);
uint32_t zk_node_digest(const struct zk_node *n);
/* ZooKeeper's NodeHashMap preChange / postChange on the digest. */
static inline void zk_digest_pre(struct zk_tree *t, const struct zk_node *n) { t->digest -= zk_node_digest(n); }
static inline void zk_digest_post(struct zk_tree *t, const struct zk_node *n) { t->digest += zk_node_digest(n); }

/* zk_tree_apply.c: DataTree.updateQuotaForPath (the stats node of raw path P gets
 * P's subtree counts). 0 or -ENOMEM. */
int zk_tree_quota_recount(struct zk_tree *t, const char *path, size_t len);

/* zk_quota.c */
void zk_quota_free(struct zk_quota_roots *q);
/* PathTrie.addPath / deletePath of a raw path. 0, -ENOMEM, -EINVAL (ZooKeeper throws:
 * "" for addPath, no components for deletePath). */
int zk_quota_add(struct zk_quota_roots *q, const char *raw, size_t len);
int zk_quota_delete(struct zk_quota_roots *q, const char *raw, size_t len);
/* getMaxPrefixWithQuota: the deepest quota path that is a prefix of path, or NULL. */
const char *zk_quota_max_prefix(const struct zk_quota_roots *q, const char *path, size_t len);
/*
 * StatsTrack(text) with count and bytes moved by the diffs, formatted again. *out is
 * malloc'ed. 0, -EINVAL (ZooKeeper's parser throws on the text), -ENOMEM.
 */
int zk_stats_track_update(const uint8_t *data, int32_t len, int64_t count_diff, int64_t bytes_diff, uint8_t **out,
			  int32_t *out_len);
/* A fresh StatsTrack's text: "count=<count>,bytes=<bytes>" (malloc'ed). */
int zk_stats_track_counts(int64_t count, int64_t bytes, uint8_t **out, int32_t *out_len);

#endif
