/*
 * store_apply_impl.h — what the files of store_apply() share (store/ only):
 *
 *   store_apply.c        store_apply(): request decoding, the apply context (locks,
 *                        undo log, triggers, commit and rollback), multi, sessions
 *   store_apply_ops.c    the write ops: create, delete, deleteContainer, setData,
 *                        setACL, check, removeRecursive
 *   store_apply_quota.c  ZooKeeper's quota rules as writes apply them
 *   store_lifetime.c     store_create / store_destroy (the system nodes), stats
 *
 * Thread: the applier only (store_lifetime.c: the thread that creates or destroys the
 * store, with no other thread using it).
 */
#ifndef RK_STORE_APPLY_IMPL_H
#define RK_STORE_APPLY_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"
#include "core/zk_proto.h"
#include "store/store_impl.h"

/* ---------------------------------------------------------------- requests */

/* One decoded write request (store_apply.c). */
struct req {
	int32_t type;
	struct jute_bytes path;
	struct jute_bytes data;
	struct zk_acl *acls; /* first min(acl_count, STORE_ACL_ENTRIES_MAX + 1) entries */
	int32_t acl_count;
	int32_t flags;
	int32_t version;
	int64_t ttl;
	struct zk_stat stat; /* CheckStat: fields equal to -1 match anything */
};

/* ---------------------------------------------------------------- apply context */

/* UNDO_QUOTA_STATS: the store rewrote a zookeeper_stats node's data (no version change). */
enum undo_kind { UNDO_CREATE, UNDO_DELETE, UNDO_SET_DATA, UNDO_SET_ACL, UNDO_QUOTA_STATS };

struct undo {
	enum undo_kind kind;
	struct znode *node;
	struct znode *parent;        /* node's, for create / delete */
	int32_t old_cversion_stored; /* parent's, for create / delete */
	int64_t old_pzxid;
	uint8_t *old_data; /* a copy of the old value, inside a multi only (malloc'd) */
	int32_t old_data_len;
	int32_t old_version;
	int64_t old_mzxid;
	int64_t old_mtime;
	uint32_t old_acl_id; /* setACL's: released at commit */
};

struct trigger {
	const char *path; /* points into a znode, which outlives the commit */
	size_t len;
	uint64_t hash;
	int32_t type;
	/*
	 * The ACL of the node at the time of the change, for the READ filter of the
	 * events. Lists replaced or freed by this txn (setACL, delete) are freed only
	 * after the triggers fired.
	 */
	const struct acl_list *acl;
};

/* A quota root's membership before this txn first changed it (also its undo). */
struct quota_root_change {
	char *root; /* normalized, malloc'd */
	size_t len;
	bool was_member;
};

/* A limits or stats node's state before this txn first touched it (enforce_quota only). */
struct quota_node_before {
	const char *path; /* points into a znode alive until commit or rollback */
	size_t len;
	bool existed;
	const uint8_t *data; /* a copy of the node's data then (malloc'd; freed with the log) */
	int32_t data_len;
};

/* The per-txn quota logs, allocated on first use (most txns never touch quotas). */
struct quota_txn_log {
	struct quota_root_change *roots;
	size_t root_count, root_cap;
	struct quota_node_before *nodes;
	size_t node_count, node_cap;
};

struct apply_ctx {
	struct store *s;
	const struct store_txn *txn;
	struct session *session;
	bool in_multi; /* sub-op replies follow the multi rules (multi_result_type) */
	bool all_locked;
	uint64_t locked_mask;
	struct undo *undo;
	size_t undo_count, undo_cap;
	struct trigger *trig;
	size_t trig_count, trig_cap;
	struct quota_txn_log *quota_log; /* NULL until a quota root or node changes */
};

/* Out of memory while applying is fatal (see store_apply.c): says so and aborts. */
__attribute__((noreturn)) void apply_out_of_memory(void);
/* realloc, or apply_out_of_memory(). */
void *apply_xrealloc(void *p, size_t n);

/* store_apply.c */
void apply_ctx_lock(struct apply_ctx *c, uint64_t mask);
struct undo *apply_undo_push(struct apply_ctx *c, enum undo_kind kind, struct znode *n);
/* Records a watch trigger for n, whose path hashes to hash, fired at commit. */
void apply_trigger_push_hashed(struct apply_ctx *c, const struct znode *n, uint64_t hash, int32_t type);
static inline void apply_trigger_push(struct apply_ctx *c, const struct znode *n, int32_t type)
{
	apply_trigger_push_hashed(c, n, store_node_hash(n), type);
}
struct znode *apply_find(struct store *s, const char *path, size_t len);
void apply_write_stat(struct store *s, struct jute_writer *out, const struct znode *n);
/*
 * Replaces n's value (n's shard locked) and records the undo entry of `kind`
 * (UNDO_SET_DATA or UNDO_QUOTA_STATS), which the caller completes. The old bytes are
 * kept only inside a multi, the one place a txn rolls back.
 */
struct undo *apply_data_replace(struct apply_ctx *c, struct znode *n, enum undo_kind kind, const uint8_t *data,
				int32_t len);

static inline uint64_t apply_shard_bit(uint64_t hash)
{
	return 1ULL << store_shard_of(hash);
}

/* store_apply_ops.c */
int32_t apply_op_write(struct apply_ctx *c, const struct req *rq, struct jute_writer *out);
/* Deletes n with every shard locked (multi, closeSession, removeRecursive); parent
 * NULL: looked up. */
void apply_delete_node(struct apply_ctx *c, struct znode *n, struct znode *parent);

/* Inside a multi, a create answers with a Stat only for container and TTL modes. */
static inline bool apply_multi_create_has_stat(int32_t flags)
{
	return flags == ZK_CREATE_CONTAINER || flags == ZK_CREATE_PERSISTENT_WITH_TTL ||
	       flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
}

/* store_apply_quota.c (the rules are numbered there) */
void apply_quota_note_node_slow(struct apply_ctx *c, const struct znode *n, bool existed);
int32_t apply_quota_check_slow(struct apply_ctx *c, const char *path, size_t len, int64_t bytes_diff,
			       int64_t count_diff);
struct znode *apply_quota_stats_target_slow(struct apply_ctx *c, const char *path, size_t len,
					    struct znode *pending);
void apply_quota_stats_add(struct apply_ctx *c, struct znode *t, int64_t count_diff, int64_t bytes_diff);
/* Rule 1 for a create of n (not linked yet); returns the stats node rule 3 updates. */
struct znode *apply_quota_create_prepare(struct apply_ctx *c, struct znode *n);
/* Rules 2 and 3 for n, just linked (all of it under the locks taken for target). */
void apply_quota_create_apply(struct apply_ctx *c, struct znode *n, struct znode *target, int64_t data_bytes);
/* Rule 1 for a delete of n; returns the stats node rule 3 updates (never n itself). */
struct znode *apply_quota_delete_prepare(struct apply_ctx *c, struct znode *n);

/* Before the txn first changes n (existed: false when the txn creates it). */
static inline void apply_quota_note_node(struct apply_ctx *c, const struct znode *n, bool existed)
{
	if (c->s->enforce_quota)
		apply_quota_note_node_slow(c, n, existed);
}

/* Rule 4: ZK_OK, ZK_QUOTAEXCEEDED or ZK_MARSHALLINGERROR. Before any mutation of the op. */
static inline int32_t apply_quota_check(struct apply_ctx *c, const char *path, size_t len, int64_t bytes_diff,
					int64_t count_diff)
{
	struct store *s = c->s;
	if (!s->enforce_quota || (s->quota.count == 0 && (!c->quota_log || c->quota_log->root_count == 0)))
		return ZK_OK;
	return apply_quota_check_slow(c, path, len, bytes_diff, count_diff);
}

/*
 * The stats node rule 3 will update for a change of path, by the current roots (so
 * after rule 1's change): NULL when none. pending is a node about to be linked that
 * may be it.
 */
static inline struct znode *apply_quota_stats_target(struct apply_ctx *c, const char *path, size_t len,
						     struct znode *pending)
{
	return c->s->quota.count == 0 ? NULL : apply_quota_stats_target_slow(c, path, len, pending);
}

static inline uint64_t apply_quota_lock_bit(const struct znode *target)
{
	return target ? apply_shard_bit(store_node_hash(target)) : 0;
}

#endif
