/*
 * store_apply_ops.c — the write ops store_apply() runs (alone or inside a multi):
 * create (all modes), delete, deleteContainer, setData, setACL, check (and
 * ClickHouse's CheckNotExists, CheckStat, TryRemove), removeRecursive.
 *
 * Each op checks everything in ZooKeeper's order before it changes anything, then
 * locks the shards it changes (apply_ctx_lock), mutates, and records the undo entry
 * and the watch triggers (store_apply.c commits or rolls back).
 * Thread: the applier only.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_apply_impl.h"

#define TTL_MAX_MS ((int64_t)0xFFFFFFFFFFLL) /* 2^40 - 1 */

/* ---------------------------------------------------------------- helpers */

static int32_t version_next(int32_t v)
{
	return (int32_t)((uint32_t)v + 1u);
}

static bool path_has_nul(const char *p, size_t len)
{
	return len && memchr(p, '\0', len) != NULL;
}

static bool path_is_special(const char *p, size_t len)
{
	static const char *const special[] = { "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config" };
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		if (strlen(special[i]) == len && memcmp(special[i], p, len) == 0)
			return true;
	return false;
}

/*
 * ClickHouse Keeper's system subtree (/keeper, /keeper/api_version,
 * /keeper/feature_flags), present when store_config.keeper_api is on: read-only,
 * every write to it answers BADARGUMENTS as ClickHouse Keeper does.
 */
static bool path_is_keeper(const struct store *s, const char *p, size_t len)
{
	static const char keeper[] = "/keeper";
	size_t klen = sizeof keeper - 1;
	return s->keeper_api && len >= klen && memcmp(p, keeper, klen) == 0 && (len == klen || p[klen] == '/');
}

/* ---------------------------------------------------------------- ops */

/* What a create's flags and opcode ask for (ZooKeeper's CreateMode). */
struct create_mode {
	bool ttl;
	bool sequential;
	bool ephemeral;
	bool container;
};

/* The flags and the TTL, checked as ZooKeeper checks them before the path. */
static int32_t create_mode_of(const struct apply_ctx *c, const struct req *rq, struct create_mode *m)
{
	int32_t flags = rq->flags;
	if (flags < ZK_CREATE_PERSISTENT || flags > ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL)
		return ZK_BADARGUMENTS;
	m->ttl = flags == ZK_CREATE_PERSISTENT_WITH_TTL || flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	m->sequential = flags == ZK_CREATE_PERSISTENT_SEQUENTIAL || flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL ||
			flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	m->ephemeral = flags == ZK_CREATE_EPHEMERAL || flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL;
	/*
	 * A top-level createContainer (19) makes a container whatever the (non-TTL) flags:
	 * ZooKeeper proposes a CreateContainerTxn, which ignores the ephemeral bit, while
	 * the sequential bit still names the node. Inside a multi ZooKeeper rebuilds the
	 * op from its flags alone (Op.create), so there only flags 4 makes a container.
	 */
	m->container = flags == ZK_CREATE_CONTAINER || (rq->type == ZK_OP_CREATE_CONTAINER && !c->in_multi);
	if (m->container)
		m->ephemeral = false;
	if (m->ttl ? (rq->ttl <= 0 || rq->ttl > TTL_MAX_MS) : rq->ttl >= 0)
		return ZK_BADARGUMENTS;
	if (rq->type == ZK_OP_CREATE_IF_NOT_EXISTS && m->sequential)
		return ZK_BADARGUMENTS;
	return ZK_OK;
}

/* Where a create goes, once create_find_place has checked it. */
struct create_place {
	struct znode *parent;
	const char *path; /* the request's, or `full` with the sequence number */
	size_t len;
	uint64_t hash;
	int64_t data_bytes; /* the value's, for the quota (0 for a null value) */
	char *full; /* owned; NULL unless sequential */
};

/*
 * The checks that need the tree, in ZooKeeper's order: the parent exists, lets the
 * session create, the (numbered) path is valid and free, the parent is no ephemeral,
 * the quota and the children limit allow it. An existing node is success for
 * ClickHouse's CreateIfNotExists: then *done is set and the answer written.
 */
static int32_t create_find_place(struct apply_ctx *c, const struct req *rq, const struct create_mode *m,
				 struct create_place *pl, bool *done, struct jute_writer *out)
{
	struct store *s = c->s;
	const char *path = (const char *)rq->path.data;
	size_t len = (size_t)rq->path.len;
	/* Parent: everything before the last '/', with "" meaning the root. */
	size_t parent_len = (size_t)((const char *)memrchr(path, '/', len) - path);
	pl->parent = parent_len == 0 ? s->root : apply_find(s, path, parent_len);
	if (!pl->parent)
		return ZK_NONODE;
	if (!store_acl_permits(store_node_acl(s, pl->parent), ZK_PERM_CREATE, c->txn->auth))
		return ZK_NOAUTH;
	if (m->sequential) {
		pl->full = apply_xrealloc(NULL, len + 16);
		memcpy(pl->full, path, len);
		len += (size_t)snprintf(pl->full + len, 16, "%010d", store_node_cversion_stored(pl->parent));
		path = pl->full;
	}
	pl->path = path;
	pl->len = len;
	if (!store_path_valid(path, len) || len > STORE_PATH_BYTES_MAX)
		return ZK_BADARGUMENTS;
	pl->hash = store_hash_bytes(path, len);
	if (store_node_find(s, path, len, pl->hash)) {
		if (rq->type != ZK_OP_CREATE_IF_NOT_EXISTS)
			return ZK_NODEEXISTS;
		/* ClickHouse: an existing node is success, unchanged, named as requested. */
		jute_write_string(out, path, (int32_t)len);
		*done = true;
		return ZK_OK;
	}
	if (pl->parent->kind == ZNODE_EPHEMERAL)
		return ZK_NOCHILDRENFOREPHEMERALS;
	pl->data_bytes = rq->data.len > 0 ? rq->data.len : 0;
	int32_t rc = apply_quota_check(c, path, len, pl->data_bytes, 1);
	if (rc != ZK_OK)
		return rc;
	if (store_node_child_count(pl->parent) >= STORE_CHILDREN_MAX)
		return ZK_SYSTEMERROR;
	return ZK_OK;
}

/* The new node, as ZooKeeper's createStat makes it: pzxid = czxid (no dir yet),
 * versions 0. Takes the ACL list. */
static struct znode *create_node(struct apply_ctx *c, const struct req *rq, const struct create_mode *m,
				 const struct create_place *pl, struct acl_list *acl)
{
	int64_t owner = 0;
	if (m->ephemeral)
		owner = c->txn->session_id;
	else if (m->container)
		owner = ZK_EPHEMERAL_OWNER_CONTAINER;
	else if (m->ttl)
		owner = ZK_EPHEMERAL_OWNER_TTL_MASK | rq->ttl;
	struct znode *n = store_node_new(pl->path, pl->len, pl->hash, owner, rq->data.data, rq->data.len);
	if (!n)
		apply_out_of_memory();
	uint32_t acl_id = store_acl_intern(c->s, acl, 0);
	if (acl_id == STORE_ACL_NONE)
		apply_out_of_memory();
	n->acl_id = acl_id;
	store_node_set_czxid(n, c->txn->zxid);
	store_node_set_mzxid(n, c->txn->zxid);
	store_node_set_ctime(n, c->txn->time_ms);
	store_node_set_mtime(n, c->txn->time_ms);
	/* Due in the next image, not in one under way (its zxid is below this one). */
	n->snap_mark = c->s->snap_epoch & 1u;
	return n;
}

/* Links n under its parent (the shards locked, the undo entry, the parent's cversion
 * and pzxid, the session's ephemerals, the quota, the watch triggers). */
static void create_link(struct apply_ctx *c, const struct create_mode *m, const struct create_place *pl,
			struct znode *n)
{
	struct store *s = c->s;
	struct znode *parent = pl->parent;
	struct znode *quota_target = apply_quota_create_prepare(c, n);
	uint64_t parent_hash = store_node_hash(parent);
	apply_ctx_lock(c, apply_shard_bit(pl->hash) | apply_shard_bit(parent_hash) | apply_quota_lock_bit(quota_target));
	/* Under the parent's lock: readers may be walking the array realloc moves. */
	if (store_node_children_reserve(parent) != 0)
		apply_out_of_memory();
	store_snap_preserve(s, parent);
	struct znode_dir *pd = store_dir_of(parent);
	struct undo *u = apply_undo_push(c, UNDO_CREATE, n);
	u->parent = parent;
	u->old_cversion_stored = pd->cversion_stored;
	u->old_pzxid = pd->pzxid;
	store_node_link(s, parent, n, pl->hash);
	pd->cversion_stored = version_next(pd->cversion_stored);
	pd->pzxid = c->txn->zxid;
	if (m->ephemeral) {
		assert(c->session);
		if (store_session_ephemeral_add(s, c->session, n) != 0)
			apply_out_of_memory();
	}
	apply_quota_create_apply(c, n, quota_target, pl->data_bytes);
	apply_trigger_push_hashed(c, n, pl->hash, ZK_EVENT_NODE_CREATED);
	apply_trigger_push_hashed(c, parent, parent_hash, ZK_EVENT_NODE_CHILDREN_CHANGED);
}

static int32_t op_create(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
{
	struct store *s = c->s;
	struct create_mode m;
	int32_t rc = create_mode_of(c, rq, &m);
	if (rc != ZK_OK)
		return rc;
	/* A null path: ZooKeeper's path.lastIndexOf throws NPE, answered MARSHALLINGERROR. */
	if (rq->path.len < 0)
		return ZK_MARSHALLINGERROR;
	const char *path = (const char *)rq->path.data;
	size_t len = (size_t)rq->path.len;
	if (len == 0 || !memchr(path, '/', len) || path_has_nul(path, len) || path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	struct acl_list *acl = NULL;
	rc = store_acl_fixup(rq->acls, rq->acl_count, c->txn->auth, &acl);
	if (rc != ZK_OK)
		return rc;
	struct create_place pl = {0};
	bool done = false;
	rc = create_find_place(c, rq, &m, &pl, &done, out);
	if (rc != ZK_OK || done) {
		free(pl.full);
		store_acl_free(acl);
		return rc;
	}
	struct znode *n = create_node(c, rq, &m, &pl, acl);
	create_link(c, &m, &pl, n);
	free(pl.full);

	jute_write_string(out, n->path, (int32_t)n->path_len);
	bool with_stat = c->in_multi ? rq->type != ZK_OP_CREATE_IF_NOT_EXISTS && apply_multi_create_has_stat(rq->flags)
				     : rq->type == ZK_OP_CREATE2 || rq->type == ZK_OP_CREATE_CONTAINER ||
					       rq->type == ZK_OP_CREATE_TTL;
	if (with_stat)
		apply_write_stat(c->s, out, n);
	return ZK_OK;
}

/*
 * Unlinks one node (its, its parent's and quota_target's shards locked), recording
 * undo and triggers. quota_target comes from apply_quota_delete_prepare(c, n).
 */
static void delete_node_locked(struct apply_ctx *c, struct znode *n, struct znode *parent,
			       struct znode *quota_target)
{
	struct store *s = c->s;
	assert(parent && parent->dir && store_node_child_count(n) == 0);
	store_snap_preserve(s, n);
	store_snap_preserve(s, parent);
	apply_quota_note_node(c, n, true);
	struct undo *u = apply_undo_push(c, UNDO_DELETE, n);
	u->parent = parent;
	u->old_cversion_stored = store_dir_of(parent)->cversion_stored;
	u->old_pzxid = store_dir_of(parent)->pzxid;
	if (n->kind == ZNODE_EPHEMERAL) {
		struct session *se = store_session_find(s, store_node_owner(n));
		if (se)
			store_session_ephemeral_remove(s, se, n);
	}
	store_node_unlink(s, parent, n);
	/*
	 * The stored cversion is not bumped by a delete (ZOOKEEPER-1046), so sequence
	 * suffixes count creates only; the cversion clients see still grows by one,
	 * because numChildren dropped (see store_node_stat).
	 */
	store_dir_of(parent)->pzxid = c->txn->zxid;
	if (quota_target)
		apply_quota_stats_add(c, quota_target, -1, -(int64_t)(n->data_len > 0 ? n->data_len : 0));
	apply_trigger_push(c, n, ZK_EVENT_NODE_DELETED);
	apply_trigger_push(c, parent, ZK_EVENT_NODE_CHILDREN_CHANGED);
}

/* delete_node_locked with every shard locked (multi, closeSession, removeRecursive). */
void apply_delete_node(struct apply_ctx *c, struct znode *n, struct znode *parent)
{
	assert(c->all_locked);
	if (!parent) {
		size_t parent_len = store_parent_len(n->path, n->path_len);
		parent = apply_find(c->s, n->path, parent_len);
		assert(parent);
	}
	delete_node_locked(c, n, parent, apply_quota_delete_prepare(c, n));
}

static int32_t op_delete(struct apply_ctx *c, const struct req *rq)
{
	struct store *s = c->s;
	if (rq->path.len < 0)
		return ZK_MARSHALLINGERROR; /* NPE in ZooKeeper's getParentPathAndValidate */
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (len == 0 || !memchr(path, '/', len) || path_has_nul(path, len) || path_is_special(path, len) ||
	    path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	size_t parent_len = (size_t)((const char *)memrchr(path, '/', len) - path);
	uint64_t parent_hash = parent_len == 0 ? store_hash_bytes("/", 1) : store_hash_bytes(path, parent_len);
	struct znode *parent = parent_len == 0 ? s->root : store_node_find(s, path, parent_len, parent_hash);
	if (!parent)
		return rq->type == STORE_OP_TRY_REMOVE ? ZK_OK : ZK_NONODE;
	if (!store_acl_permits(store_node_acl(c->s, parent), ZK_PERM_DELETE, c->txn->auth))
		return ZK_NOAUTH;
	uint64_t hash = store_hash_bytes(path, len);
	struct znode *n = store_node_find(s, path, len, hash);
	/* ClickHouse TryRemove: the "nothing to delete" outcomes are success, unchanged. */
	bool try_remove = rq->type == STORE_OP_TRY_REMOVE;
	if (!n)
		return try_remove ? ZK_OK : ZK_NONODE;
	if (rq->version != -1 && rq->version != n->version)
		return try_remove ? ZK_OK : ZK_BADVERSION;
	if (store_node_child_count(n) > 0)
		return try_remove ? ZK_OK : ZK_NOTEMPTY;
	struct znode *quota_target = apply_quota_delete_prepare(c, n);
	apply_ctx_lock(c, apply_shard_bit(hash) | apply_shard_bit(parent_hash) | apply_quota_lock_bit(quota_target));
	delete_node_locked(c, n, parent, quota_target);
	return ZK_OK;
}

/*
 * deleteContainer (20), proposed by the leader's reaper (store_reap_candidates), never
 * by a client. Deletes the container or TTL node only if the reaper's condition still
 * holds at the txn's time: missing -> NONODE, has children -> NOTEMPTY, not a
 * container/TTL node or the condition no longer holds -> BADVERSION (ZooKeeper's
 * PrepRequestProcessor answers the same codes). No ACL check: the server acts.
 */
static int32_t op_delete_container(struct apply_ctx *c, const struct req *rq)
{
	struct store *s = c->s;
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (len == 0 || !memchr(path, '/', len) || path_has_nul(path, len) || path_is_special(path, len) ||
	    path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	uint64_t hash = store_hash_bytes(path, len);
	struct znode *n = store_node_find(s, path, len, hash);
	if (!n)
		return ZK_NONODE;
	if (store_node_child_count(n) > 0)
		return ZK_NOTEMPTY;
	if (n->kind != ZNODE_REAPABLE || !store_node_reapable_at(n, c->txn->time_ms))
		return ZK_BADVERSION;
	/* n is not "/" (a special path), so it has a parent. */
	size_t parent_len = store_parent_len(path, len);
	uint64_t parent_hash = store_hash_bytes(path, parent_len);
	struct znode *parent = store_node_find(s, path, parent_len, parent_hash);
	assert(parent);
	struct znode *quota_target = apply_quota_delete_prepare(c, n);
	apply_ctx_lock(c, apply_shard_bit(hash) | apply_shard_bit(parent_hash) | apply_quota_lock_bit(quota_target));
	delete_node_locked(c, n, parent, quota_target);
	return ZK_OK;
}

static int32_t op_set_data(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
{
	struct store *s = c->s;
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (!store_path_valid(path, len) || path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	uint64_t hash = store_hash_bytes(path, len);
	struct znode *n = store_node_find(s, path, len, hash);
	if (!n)
		return ZK_NONODE;
	if (!store_acl_permits(store_node_acl(c->s, n), ZK_PERM_WRITE, c->txn->auth))
		return ZK_NOAUTH;
	int64_t bytes_diff = (int64_t)(rq->data.len > 0 ? rq->data.len : 0) - (n->data_len > 0 ? n->data_len : 0);
	int32_t rc = apply_quota_check(c, path, len, bytes_diff, 0);
	if (rc != ZK_OK)
		return rc;
	if (rq->version != -1 && rq->version != n->version)
		return ZK_BADVERSION;
	struct znode *quota_target = apply_quota_stats_target(c, n->path, n->path_len, NULL);
	apply_ctx_lock(c, apply_shard_bit(hash) | apply_quota_lock_bit(quota_target));
	store_snap_preserve(s, n);
	apply_quota_note_node(c, n, true);
	struct undo *u = apply_data_replace(c, n, UNDO_SET_DATA, rq->data.data, rq->data.len);
	u->old_version = n->version;
	u->old_mzxid = store_node_mzxid(n);
	u->old_mtime = store_node_mtime(n);
	n->version = version_next(n->version);
	store_node_set_mzxid(n, c->txn->zxid);
	store_node_set_mtime(n, c->txn->time_ms);
	if (quota_target)
		apply_quota_stats_add(c, quota_target, 0, bytes_diff);
	apply_trigger_push_hashed(c, n, hash, ZK_EVENT_NODE_DATA_CHANGED);
	apply_write_stat(c->s, out, n);
	return ZK_OK;
}

static int32_t op_set_acl(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
{
	struct store *s = c->s;
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (!store_path_valid(path, len) || path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	struct acl_list *acl;
	int32_t rc = store_acl_fixup(rq->acls, rq->acl_count, c->txn->auth, &acl);
	if (rc != ZK_OK)
		return rc;
	struct znode *n = apply_find(s, path, len);
	if (!n)
		rc = ZK_NONODE;
	else if (!store_acl_permits(store_node_acl(c->s, n), ZK_PERM_ADMIN, c->txn->auth))
		rc = ZK_NOAUTH;
	else if (rq->version != -1 && rq->version != store_node_aversion(s, n))
		rc = ZK_BADVERSION;
	if (rc != ZK_OK) {
		store_acl_free(acl);
		return rc;
	}
	apply_ctx_lock(c, apply_shard_bit(store_node_hash(n)));
	store_snap_preserve(s, n);
	struct undo *u = apply_undo_push(c, UNDO_SET_ACL, n);
	/* The id names the list and the aversion: the old one (held by the undo entry)
	 * restores both on a rollback. */
	uint32_t acl_id = store_acl_intern(s, acl, version_next(store_node_aversion(s, n)));
	if (acl_id == STORE_ACL_NONE)
		apply_out_of_memory();
	u->old_acl_id = n->acl_id;
	n->acl_id = acl_id;
	apply_write_stat(c->s, out, n);
	return ZK_OK;
}

/* ClickHouse CheckStat: every field of want that is not -1 equals the node's (client) Stat. */
static bool stat_matches(struct store *s, const struct znode *n, const struct zk_stat *want)
{
	struct zk_stat st;
	store_node_stat(s, n, &st);
#define STAT_FIELD_OK(f) (want->f == -1 || want->f == st.f)
	return STAT_FIELD_OK(czxid) && STAT_FIELD_OK(mzxid) && STAT_FIELD_OK(ctime) && STAT_FIELD_OK(mtime) &&
	       STAT_FIELD_OK(version) && STAT_FIELD_OK(cversion) && STAT_FIELD_OK(aversion) &&
	       STAT_FIELD_OK(ephemeral_owner) && STAT_FIELD_OK(data_length) && STAT_FIELD_OK(num_children) &&
	       STAT_FIELD_OK(pzxid);
#undef STAT_FIELD_OK
}

static int32_t op_check(struct apply_ctx *c, const struct req *rq)
{
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (!store_path_valid(path, len))
		return ZK_BADARGUMENTS;
	struct znode *n = apply_find(c->s, path, len);
	if (rq->type == ZK_OP_CHECK_NOT_EXISTS) {
		/* ClickHouse: fails only when the node exists with a matching (or any) version. */
		if (n && (rq->version == -1 || rq->version == n->version))
			return ZK_NODEEXISTS;
		return ZK_OK;
	}
	if (!n)
		return ZK_NONODE;
	if (!store_acl_permits(store_node_acl(c->s, n), ZK_PERM_READ, c->txn->auth))
		return ZK_NOAUTH;
	if (rq->version != -1 && rq->version != n->version)
		return ZK_BADVERSION;
	if (rq->type == STORE_OP_CHECK_STAT && !stat_matches(c->s, n, &rq->stat))
		return ZK_BADVERSION;
	return ZK_OK;
}

/*
 * ClickHouse RemoveRecursive: deletes the node and its whole subtree atomically.
 * Missing node -> OK; more than `limit` nodes in the subtree, the node itself
 * included (ClickHouse Keeper counts the root: a single node needs limit >= 1), ->
 * NOTEMPTY. Requires
 * all shards locked (it runs inside a multi context or sets one up itself).
 */
static int32_t op_remove_recursive(struct apply_ctx *c, const struct req *rq)
{
	struct store *s = c->s;
	if (rq->path.len < 0)
		return ZK_MARSHALLINGERROR; /* as delete */
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (len == 0 || !memchr(path, '/', len) || path_has_nul(path, len) || path_is_special(path, len) ||
	    path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	size_t parent_len = (size_t)((const char *)memrchr(path, '/', len) - path);
	struct znode *parent = parent_len == 0 ? s->root : apply_find(s, path, parent_len);
	struct znode *n = apply_find(s, path, len);
	if (!parent || !n)
		return ZK_OK;
	if (!store_acl_permits(store_node_acl(c->s, parent), ZK_PERM_DELETE, c->txn->auth))
		return ZK_NOAUTH;
	/* Collect the subtree breadth-first, bounded by the limit (the root counts). */
	size_t limit = rq->version > 0 ? (size_t)rq->version : 0;
	if (limit == 0)
		return ZK_NOTEMPTY;
	size_t cap = 16, count = 0;
	/* order[i]'s parent is parents[i] */
	struct znode **order = apply_xrealloc(NULL, cap * sizeof *order);
	struct znode **parents = apply_xrealloc(NULL, cap * sizeof *parents);
	int32_t rc = ZK_OK;
	order[count] = n;
	parents[count++] = parent;
	for (size_t i = 0; i < count; i++) {
		struct znode *x = order[i];
		if (x != n && !store_acl_permits(store_node_acl(s, parents[i]), ZK_PERM_DELETE, c->txn->auth)) {
			rc = ZK_NOAUTH;
			goto out;
		}
		uint32_t children = store_node_child_count(x);
		if (count + children > limit) {
			rc = ZK_NOTEMPTY;
			goto out;
		}
		if (count + children > cap) {
			while (count + children > cap)
				cap *= 2;
			order = apply_xrealloc(order, cap * sizeof *order);
			parents = apply_xrealloc(parents, cap * sizeof *parents);
		}
		for (uint32_t k = 0; k < children; k++) {
			order[count] = store_dir_child(store_dir_of(x), k);
			parents[count++] = x;
		}
	}
	assert(c->all_locked);
	/* Breadth-first order reversed: every node goes after all of its descendants. */
	for (size_t i = count; i-- > 0;)
		apply_delete_node(c, order[i], parents[i]);
out:
	free(order);
	free(parents);
	return rc;
}

int32_t apply_op_write(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
{
	switch (rq->type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
	case ZK_OP_CREATE_IF_NOT_EXISTS:
		return op_create(c, rq, out);
	case ZK_OP_DELETE:
	case STORE_OP_TRY_REMOVE:
		return op_delete(c, rq);
	case ZK_OP_DELETE_CONTAINER:
		return op_delete_container(c, rq);
	case ZK_OP_SET_DATA:
		return op_set_data(c, rq, out);
	case ZK_OP_SET_ACL:
		return op_set_acl(c, rq, out);
	case ZK_OP_CHECK:
	case ZK_OP_CHECK_NOT_EXISTS:
	case STORE_OP_CHECK_STAT:
		return op_check(c, rq);
	case ZK_OP_REMOVE_RECURSIVE:
		return op_remove_recursive(c, rq);
	case ZK_OP_SYNC:
		jute_write_string(out, (const char *)rq->path.data, rq->path.len);
		return ZK_OK;
	default:
		assert(!"not a write op");
		return ZK_UNIMPLEMENTED;
	}
}
