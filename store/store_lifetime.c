/*
 * store_lifetime.c — making and destroying a store: the system nodes ZooKeeper's
 * DataTree starts with (and ClickHouse Keeper's /keeper ones), the counters for
 * mntr, and locking every shard.
 *
 * Thread: store_create / store_destroy on a thread that has the store to itself;
 * store_stats and store_last_zxid on any thread.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_apply_impl.h"

void store_lock_all(struct store *s)
{
	for (unsigned i = 0; i < STORE_SHARDS; i++)
		pthread_mutex_lock(&s->shards[i].lock);
}

void store_unlock_all(struct store *s)
{
	for (unsigned i = STORE_SHARDS; i-- > 0;)
		pthread_mutex_unlock(&s->shards[i].lock);
}

/* data[0..len): ZooKeeper's system nodes hold byte[0] (len 0), not null. */
static struct znode *system_node(struct store *s, struct znode *parent, const char *path, const void *data,
				 size_t len)
{
	uint64_t hash = store_hash_bytes(path, strlen(path));
	struct znode *n = store_node_new(path, strlen(path), hash, 0, data, (int32_t)len);
	assert(n);
	if (parent) {
		int rc = store_node_children_reserve(parent);
		assert(rc == 0);
		(void)rc;
	}
	store_node_link(s, parent, n, hash);
	return n;
}

struct store *store_create(const struct store_config *cfg)
{
	struct store *s = aligned_alloc(64, (sizeof(struct store) + 63) & ~(size_t)63);
	if (!s)
		return NULL;
	memset(s, 0, sizeof *s);
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		pthread_mutex_init(&sh->lock, NULL);
		sh->bucket_mask = STORE_SHARD_BUCKETS_MIN - 1;
		sh->buckets = calloc(STORE_SHARD_BUCKETS_MIN, sizeof *sh->buckets);
		assert(sh->buckets);
	}
	store_watches_init(s);
	store_sessions_init(s);
	store_quota_init(s);
	store_acls_init(s);
	s->enforce_quota = cfg && cfg->enforce_quota;
	if (cfg)
		s->cfg = *cfg;
	/* As ZooKeeper's DataTree: system nodes with zxid 0, linked without stat changes. */
	s->root = system_node(s, NULL, "/", NULL, 0);
	struct znode *zk = system_node(s, s->root, "/zookeeper", NULL, 0);
	system_node(s, zk, "/zookeeper/quota", NULL, 0);
	const char *config_text = cfg && cfg->config_text ? cfg->config_text : "";
	struct znode *config = system_node(s, zk, "/zookeeper/config", config_text, strlen(config_text));
	/* ZooKeeper protects the config node: READ_ACL_UNSAFE, set with aversion -1. */
	static const struct zk_acl read_unsafe = { ZK_PERM_READ, { { (const uint8_t *)"world", 5 },
								   { (const uint8_t *)"anyone", 6 } } };
	struct acl_list *acl;
	int32_t rc = store_acl_fixup(&read_unsafe, 1, NULL, &acl);
	assert(rc == ZK_OK);
	(void)rc;
	uint32_t acl_id = store_acl_intern(s, acl, -1);
	assert(acl_id != STORE_ACL_NONE);
	config->acl_id = acl_id;
	if (config->data_len > 0)
		config->version = -1; /* as a quorum peer's; its mtime stays 0 (ZooKeeper's is
				       * each server's start, which would make replicas differ) */
	s->keeper_api = cfg && cfg->keeper_api;
	s->watches_per_watcher_max = cfg && cfg->watches_per_watcher_max ? cfg->watches_per_watcher_max
									  : STORE_WATCHES_PER_WATCHER_MAX;
	if (s->keeper_api) {
		struct znode *keeper = system_node(s, s->root, "/keeper", NULL, 0);
		const char *version = STORE_KEEPER_API_VERSION;
		system_node(s, keeper, "/keeper/api_version", version, strlen(version));
		static const uint8_t bits[] = STORE_KEEPER_FEATURE_FLAGS;
		system_node(s, keeper, "/keeper/feature_flags", bits, sizeof bits);
	}
	return s;
}

void store_destroy(struct store *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		struct shard *sh = &s->shards[i];
		for (size_t b = 0; b <= sh->bucket_mask; b++) {
			struct znode *n = store_node_at(sh->buckets[b]);
			while (n) {
				struct znode *next = store_node_at(n->hash_next);
				store_node_free(s, n);
				n = next;
			}
		}
		free(sh->buckets);
	}
	store_watches_destroy(s);
	store_sessions_destroy(s);
	store_quota_destroy(s);
	store_acls_destroy(s); /* after the nodes, which release their lists */
	for (unsigned i = 0; i < STORE_SHARDS; i++)
		pthread_mutex_destroy(&s->shards[i].lock);
	free(s);
}

void store_stats(struct store *s, struct store_stats *out)
{
	out->node_count = atomic_load(&s->node_count);
	out->watch_count = atomic_load(&s->watch_count);
	out->watch_paths = atomic_load(&s->watch_paths);
	out->ephemerals_count = atomic_load(&s->ephemerals_count);
	out->approximate_data_size = atomic_load(&s->data_bytes);
	pthread_rwlock_rdlock(&s->sessions.lock);
	out->session_count = s->sessions.count;
	pthread_rwlock_unlock(&s->sessions.lock);
	out->last_zxid = atomic_load(&s->last_zxid);
	out->watch_refused_count = atomic_load(&s->watch_refused_count);
	out->quota_exceeded_count = atomic_load(&s->quota_exceeded_count);
}

int64_t store_last_zxid(const struct store *s)
{
	return atomic_load(&((struct store *)s)->last_zxid);
}
