/*
 * store_apply.c — store lifetime and store_apply(): every replicated write.
 *
 * Thread: store_apply() on the applier only (the only writer of znodes and sessions).
 *
 * How one txn is applied
 *   1. Decode the request (MARSHALLINGERROR on a short record; trailing bytes ignored,
 *      as ZooKeeper does).
 *   2. Check it in ZooKeeper's order against the tree, reading without locks (the
 *      applier is the only writer, so its own reads need none).
 *   3. Lock the shards the op mutates, in ascending order (multi, closeSession and
 *      removeRecursive lock all of them up front), mutate, and record an undo entry
 *      and the watch triggers. Before a node's persisted fields first change (or it
 *      is deleted) while a snapshot is being taken, store_snap_preserve keeps its
 *      old state for the image (store_snap.h).
 *   4. Commit: fire the triggers with the txn's zxid, publish last_zxid, unlock, then
 *      free what the op replaced. Or, for a failed multi, roll the undo log back in
 *      reverse; nothing fires.
 *
 *   decode ──► check ──► lock ──► mutate+undo ──► (all ok) ──► fire ─► unlock ─► free
 *                                       │
 *                                       └── (multi sub-op fails) ──► undo ─► unlock
 *
 * Determinism: every decision depends on the tree, the session table and the txn
 * only. Out of memory while applying is fatal (abort): a replica that skipped part of
 * a txn would silently diverge from the others.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "store/store_impl.h"

#define TTL_MAX_MS ((int64_t)0xFFFFFFFFFFLL) /* 2^40 - 1 */

/* ---------------------------------------------------------------- helpers */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q && n) {
		fprintf(stderr, "store: out of memory while applying a txn\n");
		abort();
	}
	return q;
}

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

/* ---------------------------------------------------------------- requests */

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

static void req_free(struct req *rq)
{
	free(rq->acls);
	rq->acls = NULL;
}

static void read_acls(struct jute_reader *r, struct req *rq)
{
	int32_t count = jute_read_vector_count(r, 12);
	rq->acl_count = count;
	int32_t keep = count > STORE_ACL_ENTRIES_MAX ? STORE_ACL_ENTRIES_MAX + 1 : count;
	rq->acls = keep ? xrealloc(NULL, (size_t)keep * sizeof *rq->acls) : NULL;
	for (int32_t i = 0; i < count && jute_reader_ok(r); i++) {
		struct zk_acl a;
		jute_read_acl(r, &a);
		if (i < keep)
			rq->acls[i] = a;
	}
}

/* Decodes one write request record; false for an opcode that is not a write. */
static bool req_read(struct jute_reader *r, int32_t type, struct req *rq)
{
	memset(rq, 0, sizeof *rq);
	rq->type = type;
	rq->ttl = -1;
	switch (type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
	case ZK_OP_CREATE_IF_NOT_EXISTS:
		rq->path = jute_read_string(r);
		rq->data = jute_read_buffer(r);
		read_acls(r, rq);
		rq->flags = jute_read_int(r);
		if (type == ZK_OP_CREATE_TTL)
			rq->ttl = jute_read_long(r);
		return true;
	case ZK_OP_DELETE:
	case ZK_OP_CHECK:
	case ZK_OP_CHECK_NOT_EXISTS:
	case STORE_OP_TRY_REMOVE:
		rq->path = jute_read_string(r);
		rq->version = jute_read_int(r);
		return true;
	case STORE_OP_CHECK_STAT:
		rq->path = jute_read_string(r);
		rq->version = jute_read_int(r);
		jute_read_stat(r, &rq->stat);
		return true;
	case ZK_OP_REMOVE_RECURSIVE:
		rq->path = jute_read_string(r);
		rq->version = jute_read_int(r); /* remove_nodes_limit */
		return true;
	case ZK_OP_SET_DATA:
		rq->path = jute_read_string(r);
		rq->data = jute_read_buffer(r);
		rq->version = jute_read_int(r);
		return true;
	case ZK_OP_SET_ACL:
		rq->path = jute_read_string(r);
		read_acls(r, rq);
		rq->version = jute_read_int(r);
		return true;
	case ZK_OP_SYNC:
	case ZK_OP_DELETE_CONTAINER:
		rq->path = jute_read_string(r);
		return true;
	default:
		return false;
	}
}

/* ---------------------------------------------------------------- apply context */

/* UNDO_QUOTA_STATS: the store rewrote a zookeeper_stats node's data (no version change). */
enum undo_kind { UNDO_CREATE, UNDO_DELETE, UNDO_SET_DATA, UNDO_SET_ACL, UNDO_QUOTA_STATS };

struct undo {
	enum undo_kind kind;
	struct znode *node;
	int32_t old_cversion_stored; /* parent's, for create / delete */
	int64_t old_pzxid;
	uint8_t *old_data;
	int32_t old_data_len;
	int32_t old_version;
	int64_t old_mzxid;
	int64_t old_mtime;
	struct acl_list *old_acl;
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
	const uint8_t *data; /* the node's data then: still owned by the node or the undo log */
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

static void ctx_lock(struct apply_ctx *c, uint64_t mask)
{
	if (c->all_locked)
		return;
	assert(c->locked_mask == 0); /* one acquisition per single op keeps the order */
	for (unsigned i = 0; i < STORE_SHARDS; i++)
		if (mask & (1ULL << i))
			pthread_mutex_lock(&c->s->shards[i].lock);
	c->locked_mask = mask;
}

static void ctx_unlock(struct apply_ctx *c)
{
	if (c->all_locked) {
		store_unlock_all(c->s);
		c->all_locked = false;
		return;
	}
	for (unsigned i = STORE_SHARDS; i-- > 0;)
		if (c->locked_mask & (1ULL << i))
			pthread_mutex_unlock(&c->s->shards[i].lock);
	c->locked_mask = 0;
}

static struct undo *undo_push(struct apply_ctx *c, enum undo_kind kind, struct znode *n)
{
	if (c->undo_count == c->undo_cap) {
		c->undo_cap = c->undo_cap ? c->undo_cap * 2 : 8;
		c->undo = xrealloc(c->undo, c->undo_cap * sizeof *c->undo);
	}
	struct undo *u = &c->undo[c->undo_count++];
	memset(u, 0, sizeof *u);
	u->kind = kind;
	u->node = n;
	return u;
}

static void trigger_push(struct apply_ctx *c, const struct znode *n, int32_t type)
{
	if (c->trig_count == c->trig_cap) {
		c->trig_cap = c->trig_cap ? c->trig_cap * 2 : 8;
		c->trig = xrealloc(c->trig, c->trig_cap * sizeof *c->trig);
	}
	c->trig[c->trig_count++] = (struct trigger){ n->path, n->path_len, n->hash, type, n->acl };
}

/* Locks held. Fires triggers, publishes the zxid, unlocks, frees what was replaced. */
static void ctx_commit(struct apply_ctx *c, store_event_fn fn, void *ctx)
{
	struct store *s = c->s;
	for (size_t i = 0; i < c->trig_count; i++)
		store_watch_trigger(s, c->trig[i].path, c->trig[i].len, c->trig[i].hash, c->trig[i].type,
				    c->txn->zxid, c->trig[i].acl, fn, ctx);
	/* Parents that lost children may give memory back (still under their locks). */
	for (size_t i = 0; i < c->undo_count; i++)
		if (c->undo[i].kind == UNDO_DELETE && c->undo[i].node->parent)
			store_node_children_trim(c->undo[i].node->parent);
	atomic_store(&s->last_zxid, c->txn->zxid);
	ctx_unlock(c);
	/*
	 * Deleted nodes are freed after every trigger ran (triggers point into them) and
	 * children first: undo order is apply order, and a parent is deleted after its
	 * children, so freeing in order never touches a freed node.
	 */
	for (size_t i = 0; i < c->undo_count; i++) {
		struct undo *u = &c->undo[i];
		switch (u->kind) {
		case UNDO_CREATE:
			break;
		case UNDO_DELETE:
			store_node_free(u->node);
			break;
		case UNDO_SET_DATA:
			free(u->old_data);
			break;
		case UNDO_SET_ACL:
			store_acl_free(u->old_acl);
			break;
		case UNDO_QUOTA_STATS:
			free(u->old_data);
			break;
		}
	}
	c->undo_count = 0;
	c->trig_count = 0;
	struct quota_txn_log *q = c->quota_log;
	if (q) {
		for (size_t i = 0; i < q->root_count; i++)
			free(q->roots[i].root);
		q->root_count = 0;
		q->node_count = 0;
	}
}

/* Locks held. Reverts every mutation of this context, newest first. */
/* Puts a node's data (and the store's byte count) back as an undo entry saved it. */
static void undo_restore_data(struct store *s, struct znode *n, const struct undo *u)
{
	atomic_fetch_sub_explicit(&s->data_bytes, (uint64_t)(n->data_len > 0 ? n->data_len : 0), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->data_bytes, (uint64_t)(u->old_data_len > 0 ? u->old_data_len : 0),
				  memory_order_relaxed);
	free(n->data);
	n->data = u->old_data;
	n->data_len = u->old_data_len;
}

static void ctx_rollback(struct apply_ctx *c)
{
	struct store *s = c->s;
	for (size_t i = c->undo_count; i-- > 0;) {
		struct undo *u = &c->undo[i];
		struct znode *n = u->node;
		switch (u->kind) {
		case UNDO_CREATE: {
			struct znode *p = n->parent;
			if (store_owner_is_session(n->ephemeral_owner))
				store_session_ephemeral_remove(s, store_session_find(s, n->ephemeral_owner), n);
			store_node_unlink(s, n);
			p->cversion_stored = u->old_cversion_stored;
			p->pzxid = u->old_pzxid;
			store_node_free(n);
			break;
		}
		case UNDO_DELETE: {
			struct znode *p = n->parent;
			/* Unlink left the room (no shrink before commit), so these cannot fail. */
			int rc = store_node_children_reserve(p);
			assert(rc == 0);
			(void)rc;
			store_node_link(s, p, n);
			p->pzxid = u->old_pzxid;
			p->cversion_stored = u->old_cversion_stored;
			if (store_owner_is_session(n->ephemeral_owner)) {
				struct session *se = store_session_find(s, n->ephemeral_owner);
				if (se && store_session_ephemeral_add(s, se, n) != 0)
					abort();
			}
			break;
		}
		case UNDO_SET_DATA:
			undo_restore_data(s, n, u);
			n->version = u->old_version;
			n->mzxid = u->old_mzxid;
			n->mtime = u->old_mtime;
			break;
		case UNDO_SET_ACL:
			store_acl_free(n->acl);
			n->acl = u->old_acl;
			n->aversion = u->old_version;
			break;
		case UNDO_QUOTA_STATS:
			undo_restore_data(s, n, u);
			break;
		}
	}
	c->undo_count = 0;
	c->trig_count = 0;
	struct quota_txn_log *q = c->quota_log;
	if (q) {
		/* Newest first, so each root ends as it was before its first change. */
		for (size_t i = q->root_count; i-- > 0;) {
			store_quota_root_set(s, q->roots[i].root, q->roots[i].len, q->roots[i].was_member);
			free(q->roots[i].root);
		}
		q->root_count = 0;
		q->node_count = 0;
	}
}

static struct znode *find(struct store *s, const char *path, size_t len)
{
	return store_node_find(s, path, len, store_hash_bytes(path, len));
}

static uint64_t shard_bit(uint64_t hash)
{
	return 1ULL << store_shard_of(hash);
}

static void write_stat(struct jute_writer *out, const struct znode *n)
{
	struct zk_stat st;
	store_node_stat(n, &st);
	jute_write_stat(out, &st);
}

/* ---------------------------------------------------------------- quotas */

/*
 * Quotas, as ZooKeeper 3.8.0's DataTree (updateQuotaStat, getMaxPrefixWithQuota) and
 * ZooKeeperServer.checkQuota:
 *   1. Roots. Creating a node named zookeeper_limits whose parent path starts with
 *      "/zookeeper/quota" (as a string) makes normalize(parent minus its first 16
 *      bytes) a quota root; deleting one whose parent starts with "/zookeeper" and is
 *      longer than 16 bytes removes normalize(parent minus 16 bytes). (For shorter
 *      parents ZooKeeper throws in its apply thread; here nothing happens.)
 *   2. Stats init. Creating a node named zookeeper_stats whose parent starts with
 *      "/zookeeper/quota" replaces its data with "count=N,bytes=B": the nodes (itself
 *      included) and data bytes of the subtree at the parent path minus 16 bytes (""
 *      is the whole tree; no such node: 0, 0). The limits node plays no part.
 *   3. Upkeep. After 1 and 2, a create (+1, data bytes), delete (-1, -data bytes) or
 *      setData (0, new - old bytes) rewrites the stats text of the nearest root R of
 *      its path (deepest root that is a prefix of the normalized path): the node
 *      /zookeeper/quota<R>/zookeeper_stats if it exists and parses (else nothing;
 *      ZooKeeper would throw). Always reformatted, even with both diffs 0. No version,
 *      mzxid or watch change.
 *   4. Enforcement (store->enforce_quota), for create (after NOCHILDRENFOREPHEMERALS)
 *      and setData (after NOAUTH, before BADVERSION), against the state before the
 *      txn (inside a multi: before the whole multi, as ZooKeeper preps every sub-op
 *      against its committed tree): nearest root R; its limits node (missing: pass;
 *      null or unparsable: MARSHALLINGERROR); the count is checked when the count diff
 *      is not 0 and count or countHardLimit is > -1, bytes likewise; then the stats
 *      node (missing: pass; null or unparsable: MARSHALLINGERROR); new = stat + diff,
 *      limit = the hard limit if > -1, else the soft one; new > limit counts in
 *      quota_exceeded_count and, for a hard limit, answers QUOTAEXCEEDED. Count first.
 * Cost: with no quota root and enforcement off, a write pays a few inline flag
 * tests and, for creates and deletes, a compare of its path's first bytes with
 * "/zookeeper"; roots are looked up only while store->quota.count > 0.
 * The pre-txn state inside a multi comes from two per-txn logs: the first change of
 * each root (which is also the roots' undo) and the first state of each limits or
 * stats node the txn touched.
 */

static bool name_is(const struct znode *n, const char *name)
{
	size_t len = strlen(name);
	return n->path_len - n->name_off == len && memcmp(n->path + n->name_off, name, len) == 0;
}

/* Length of ZooKeeper's parentName of n: "" (0) for a child of "/". */
static size_t parent_name_len(const struct znode *n)
{
	return n->name_off - 1;
}

static bool parent_starts_with(const struct znode *n, const char *prefix)
{
	size_t len = strlen(prefix);
	return parent_name_len(n) >= len && memcmp(n->path, prefix, len) == 0;
}

/* Whether a check may later need n's pre-txn state: a limits or stats node. */
static bool quota_node_tracked(const struct znode *n)
{
	return n->path_len > STORE_QUOTA_PREFIX_LEN + 1 &&
	       memcmp(n->path, STORE_QUOTA_PREFIX "/", STORE_QUOTA_PREFIX_LEN + 1) == 0 &&
	       (name_is(n, STORE_QUOTA_LIMITS_NAME) || name_is(n, STORE_QUOTA_STATS_NAME));
}

/* Before the txn first changes n (existed: false when the txn creates it). */
static struct quota_txn_log *quota_log(struct apply_ctx *c)
{
	if (!c->quota_log) {
		c->quota_log = xrealloc(NULL, sizeof *c->quota_log);
		memset(c->quota_log, 0, sizeof *c->quota_log);
	}
	return c->quota_log;
}

static void quota_note_node_slow(struct apply_ctx *c, const struct znode *n, bool existed)
{
	if (!quota_node_tracked(n))
		return;
	struct quota_txn_log *q = quota_log(c);
	for (size_t i = 0; i < q->node_count; i++)
		if (q->nodes[i].len == n->path_len && memcmp(q->nodes[i].path, n->path, n->path_len) == 0)
			return;
	if (q->node_count == q->node_cap) {
		q->node_cap = q->node_cap ? q->node_cap * 2 : 4;
		q->nodes = xrealloc(q->nodes, q->node_cap * sizeof *q->nodes);
	}
	q->nodes[q->node_count++] = (struct quota_node_before){ n->path, n->path_len, existed, n->data, n->data_len };
}

static inline void quota_note_node(struct apply_ctx *c, const struct znode *n, bool existed)
{
	if (c->s->enforce_quota)
		quota_note_node_slow(c, n, existed);
}

static void quota_root_change(struct apply_ctx *c, const char *root, size_t len, bool member)
{
	struct store *s = c->s;
	bool was_member = store_quota_root_has(s, root, len);
	if (was_member == member)
		return;
	struct quota_txn_log *q = quota_log(c);
	if (q->root_count == q->root_cap) {
		q->root_cap = q->root_cap ? q->root_cap * 2 : 4;
		q->roots = xrealloc(q->roots, q->root_cap * sizeof *q->roots);
	}
	char *copy = xrealloc(NULL, len);
	memcpy(copy, root, len);
	q->roots[q->root_count++] = (struct quota_root_change){ copy, len, was_member };
	store_quota_root_set(s, root, len, member);
}

static bool quota_root_member(struct apply_ctx *c, const char *root, size_t len, bool before_txn)
{
	const struct quota_txn_log *q = c->quota_log;
	if (before_txn && q)
		for (size_t i = 0; i < q->root_count; i++)
			if (q->roots[i].len == len && memcmp(q->roots[i].root, root, len) == 0)
				return q->roots[i].was_member;
	return store_quota_root_has(c->s, root, len);
}

/*
 * getMaxPrefixWithQuota: normalizes path into buf (room for len + 1) and returns the
 * length of its deepest prefix that is a quota root, 0 when none.
 */
static size_t quota_nearest_root(struct apply_ctx *c, const char *path, size_t len, bool before_txn, char *buf)
{
	size_t end = store_quota_normalize(path, len, buf);
	while (end > 1) {
		if (quota_root_member(c, buf, end, before_txn))
			return end;
		while (buf[--end] != '/')
			;
	}
	return 0;
}

/* "/zookeeper/quota" root "/" name, malloc'd, *out_len bytes. */
static char *quota_node_path(const char *root, size_t root_len, const char *name, size_t *out_len)
{
	size_t name_len = strlen(name);
	size_t len = STORE_QUOTA_PREFIX_LEN + root_len + 1 + name_len;
	char *p = xrealloc(NULL, len);
	memcpy(p, STORE_QUOTA_PREFIX, STORE_QUOTA_PREFIX_LEN);
	memcpy(p + STORE_QUOTA_PREFIX_LEN, root, root_len);
	p[STORE_QUOTA_PREFIX_LEN + root_len] = '/';
	memcpy(p + STORE_QUOTA_PREFIX_LEN + root_len + 1, name, name_len);
	*out_len = len;
	return p;
}

/* The data of the node at path before this txn; false when it did not exist. */
static bool quota_data_before(struct apply_ctx *c, const char *path, size_t len, const uint8_t **data,
			      int32_t *data_len)
{
	const struct quota_txn_log *q = c->quota_log;
	for (size_t i = 0; q && i < q->node_count; i++) {
		const struct quota_node_before *b = &q->nodes[i];
		if (b->len == len && memcmp(b->path, path, len) == 0) {
			*data = b->data;
			*data_len = b->data_len;
			return b->existed;
		}
	}
	struct znode *n = find(c->s, path, len);
	if (!n)
		return false;
	*data = n->data;
	*data_len = n->data_len;
	return true;
}

void store_set_warn(struct store *s, store_warn_fn fn, void *ctx)
{
	s->warn = fn;
	s->warn_ctx = ctx;
}

/* One limit (ZooKeeperServer.checkQuota's count or byte part); `what` is "count" or
 * "bytes", and the warning text is ZooKeeper's. */
static int32_t quota_limit_check(struct store *s, const char *root, size_t root_len, const char *what,
				 int64_t current, int64_t diff, int64_t soft, int64_t hard)
{
	int64_t next = (int64_t)((uint64_t)current + (uint64_t)diff);
	int64_t limit = hard > -1 ? hard : soft;
	if (next <= limit)
		return ZK_OK;
	atomic_fetch_add_explicit(&s->quota_exceeded_count, 1, memory_order_relaxed);
	if (s->warn) {
		char text[512];
		snprintf(text, sizeof text, "Quota exceeded: %.*s [current %s=%" PRId64 ", %s%sLimit=%" PRId64 "]",
			 (int)(root_len > 400 ? 400 : root_len), root, what, next, hard > -1 ? "hard" : "soft",
			 what[0] == 'c' ? "Count" : "Byte", limit);
		s->warn(s->warn_ctx, text);
	}
	return hard > -1 ? ZK_QUOTAEXCEEDED : ZK_OK;
}

/* Rule 4: ZK_OK, ZK_QUOTAEXCEEDED or ZK_MARSHALLINGERROR. Before any mutation of the op. */
static int32_t quota_check_slow(struct apply_ctx *c, const char *path, size_t len, int64_t bytes_diff,
				int64_t count_diff)
{
	struct store *s = c->s;
	char *buf = xrealloc(NULL, len + 1);
	size_t root_len = quota_nearest_root(c, path, len, true, buf);
	int32_t rc = ZK_OK;
	char *node_path = NULL;
	size_t node_len;
	const uint8_t *data;
	int32_t data_len;
	struct store_quota_text limits, stats;
	if (root_len == 0)
		goto out;
	node_path = quota_node_path(buf, root_len, STORE_QUOTA_LIMITS_NAME, &node_len);
	if (!quota_data_before(c, node_path, node_len, &data, &data_len))
		goto out; /* ZooKeeper: "Missing limit node", no check */
	if (!store_quota_text_parse(data, data_len, &limits)) {
		rc = ZK_MARSHALLINGERROR;
		goto out;
	}
	bool check_count = count_diff != 0 && (limits.count > -1 || limits.count_hard_limit > -1);
	bool check_bytes = bytes_diff != 0 && (limits.bytes > -1 || limits.byte_hard_limit > -1);
	if (!check_count && !check_bytes)
		goto out;
	free(node_path);
	node_path = quota_node_path(buf, root_len, STORE_QUOTA_STATS_NAME, &node_len);
	if (!quota_data_before(c, node_path, node_len, &data, &data_len))
		goto out;
	if (!store_quota_text_parse(data, data_len, &stats)) {
		rc = ZK_MARSHALLINGERROR;
		goto out;
	}
	if (check_count)
		rc = quota_limit_check(s, buf, root_len, "count", stats.count, count_diff, limits.count,
				       limits.count_hard_limit);
	if (rc == ZK_OK && check_bytes)
		rc = quota_limit_check(s, buf, root_len, "bytes", stats.bytes, bytes_diff, limits.bytes,
				       limits.byte_hard_limit);
out:
	free(node_path);
	free(buf);
	return rc;
}

static inline int32_t quota_check(struct apply_ctx *c, const char *path, size_t len, int64_t bytes_diff,
				  int64_t count_diff)
{
	struct store *s = c->s;
	if (!s->enforce_quota || (s->quota.count == 0 && (!c->quota_log || c->quota_log->root_count == 0)))
		return ZK_OK;
	return quota_check_slow(c, path, len, bytes_diff, count_diff);
}

/*
 * The stats node rule 3 will update for a change of path, by the current roots (so
 * after rule 1's change): NULL when none. pending is a node about to be linked that
 * may be it.
 */
static struct znode *quota_stats_target_slow(struct apply_ctx *c, const char *path, size_t len,
					     struct znode *pending)
{
	struct store *s = c->s;
	char *buf = xrealloc(NULL, len + 1);
	size_t root_len = quota_nearest_root(c, path, len, false, buf);
	struct znode *t = NULL;
	if (root_len > 0) {
		size_t stats_len;
		char *stats_path = quota_node_path(buf, root_len, STORE_QUOTA_STATS_NAME, &stats_len);
		t = find(s, stats_path, stats_len);
		if (!t && pending && pending->path_len == stats_len && memcmp(pending->path, stats_path, stats_len) == 0)
			t = pending;
		free(stats_path);
	}
	free(buf);
	return t;
}

static inline struct znode *quota_stats_target(struct apply_ctx *c, const char *path, size_t len,
					       struct znode *pending)
{
	return c->s->quota.count == 0 ? NULL : quota_stats_target_slow(c, path, len, pending);
}

/* Replaces a stats node's data (its shard locked), recording the undo. Takes text. */
static void quota_replace_data(struct apply_ctx *c, struct znode *t, uint8_t *text, int32_t len)
{
	struct store *s = c->s;
	assert(c->all_locked || (c->locked_mask & shard_bit(t->hash)));
	store_snap_preserve(s, t);
	quota_note_node(c, t, true);
	struct undo *u = undo_push(c, UNDO_QUOTA_STATS, t);
	u->old_data = t->data;
	u->old_data_len = t->data_len;
	atomic_fetch_sub_explicit(&s->data_bytes, (uint64_t)(t->data_len > 0 ? t->data_len : 0), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->data_bytes, (uint64_t)(len > 0 ? len : 0), memory_order_relaxed);
	t->data = text;
	t->data_len = len;
}

static void quota_stats_add(struct apply_ctx *c, struct znode *t, int64_t count_diff, int64_t bytes_diff)
{
	int32_t len;
	uint8_t *text = store_quota_stats_update(t->data, t->data_len, count_diff, bytes_diff, &len);
	if (text)
		quota_replace_data(c, t, text, len);
}

/* Rule 2 for n, a just linked zookeeper_stats node under "/zookeeper/quota". */
static void quota_stats_init(struct apply_ctx *c, struct znode *n)
{
	struct store *s = c->s;
	const char *real = n->path + STORE_QUOTA_PREFIX_LEN;
	size_t real_len = parent_name_len(n) - STORE_QUOTA_PREFIX_LEN;
	const struct znode *top = real_len == 0 ? s->root : find(s, real, real_len);
	uint64_t count;
	int64_t bytes;
	store_quota_subtree_counts(top, &count, &bytes);
	char *text = xrealloc(NULL, 64);
	int len = snprintf(text, 64, "count=%" PRIu64 ",bytes=%" PRId64, count, bytes);
	assert(len > 0 && len < 64);
	quota_replace_data(c, n, (uint8_t *)text, len);
}

/* Whether n may be a limits or stats node of rules 1 and 2: its path starts "/zookeeper". */
static inline bool quota_maybe_special(const struct znode *n)
{
	return n->path_len > 10 && memcmp(n->path, "/zookeeper", 10) == 0;
}

/* Rule 1 for a create of n (not linked yet); returns the stats node rule 3 updates. */
static inline struct znode *quota_create_prepare(struct apply_ctx *c, struct znode *n)
{
	size_t parent_len = parent_name_len(n);
	if (quota_maybe_special(n) && parent_len > STORE_QUOTA_PREFIX_LEN && name_is(n, STORE_QUOTA_LIMITS_NAME) &&
	    parent_starts_with(n, STORE_QUOTA_PREFIX)) {
		size_t rest = parent_len - STORE_QUOTA_PREFIX_LEN;
		char *root = xrealloc(NULL, rest + 1);
		size_t root_len = store_quota_normalize(n->path + STORE_QUOTA_PREFIX_LEN, rest, root);
		if (root_len > 1)
			quota_root_change(c, root, root_len, true);
		free(root);
	}
	return quota_stats_target(c, n->path, n->path_len, n);
}

/* Rules 2 and 3 for n, just linked (all of it under the locks taken for target). */
static inline void quota_create_apply(struct apply_ctx *c, struct znode *n, struct znode *target, int64_t data_bytes)
{
	quota_note_node(c, n, false);
	if (quota_maybe_special(n) && name_is(n, STORE_QUOTA_STATS_NAME) && parent_starts_with(n, STORE_QUOTA_PREFIX))
		quota_stats_init(c, n);
	if (target)
		quota_stats_add(c, target, 1, data_bytes);
}

/* Rule 1 for a delete of n; returns the stats node rule 3 updates (never n itself). */
static inline struct znode *quota_delete_prepare(struct apply_ctx *c, struct znode *n)
{
	size_t parent_len = parent_name_len(n);
	if (quota_maybe_special(n) && parent_len > STORE_QUOTA_PREFIX_LEN && name_is(n, STORE_QUOTA_LIMITS_NAME) &&
	    parent_starts_with(n, "/zookeeper")) {
		size_t rest = parent_len - STORE_QUOTA_PREFIX_LEN;
		char *root = xrealloc(NULL, rest + 1);
		size_t root_len = store_quota_normalize(n->path + STORE_QUOTA_PREFIX_LEN, rest, root);
		if (root_len > 1)
			quota_root_change(c, root, root_len, false);
		free(root);
	}
	struct znode *t = quota_stats_target(c, n->path, n->path_len, NULL);
	return t == n ? NULL : t;
}

static uint64_t quota_lock_bit(const struct znode *target)
{
	return target ? shard_bit(target->hash) : 0;
}

/* ---------------------------------------------------------------- ops */

/* Inside a multi, a create answers with a Stat only for container and TTL modes. */
static bool multi_create_has_stat(int32_t flags)
{
	return flags == ZK_CREATE_CONTAINER || flags == ZK_CREATE_PERSISTENT_WITH_TTL ||
	       flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
}

static int32_t op_create(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
{
	struct store *s = c->s;
	const struct store_txn *txn = c->txn;
	int32_t flags = rq->flags;
	if (flags < ZK_CREATE_PERSISTENT || flags > ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL)
		return ZK_BADARGUMENTS;
	bool is_ttl = flags == ZK_CREATE_PERSISTENT_WITH_TTL || flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	bool sequential = flags == ZK_CREATE_PERSISTENT_SEQUENTIAL || flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL ||
			  flags == ZK_CREATE_PERSISTENT_SEQUENTIAL_WITH_TTL;
	bool ephemeral = flags == ZK_CREATE_EPHEMERAL || flags == ZK_CREATE_EPHEMERAL_SEQUENTIAL;
	/*
	 * A top-level createContainer (19) makes a container whatever the (non-TTL) flags:
	 * ZooKeeper proposes a CreateContainerTxn, which ignores the ephemeral bit, while
	 * the sequential bit still names the node. Inside a multi ZooKeeper rebuilds the
	 * op from its flags alone (Op.create), so there only flags 4 makes a container.
	 */
	bool container = flags == ZK_CREATE_CONTAINER || (rq->type == ZK_OP_CREATE_CONTAINER && !c->in_multi);
	if (container)
		ephemeral = false;
	if (is_ttl ? (rq->ttl <= 0 || rq->ttl > TTL_MAX_MS) : rq->ttl >= 0)
		return ZK_BADARGUMENTS;
	if (rq->type == ZK_OP_CREATE_IF_NOT_EXISTS && sequential)
		return ZK_BADARGUMENTS;
	/* A null path: ZooKeeper's path.lastIndexOf throws NPE, answered MARSHALLINGERROR. */
	if (rq->path.len < 0)
		return ZK_MARSHALLINGERROR;
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (len == 0 || !memchr(path, '/', len) || path_has_nul(path, len) || path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	struct acl_list *acl = NULL;
	int32_t rc = store_acl_fixup(rq->acls, rq->acl_count, txn->auth, &acl);
	if (rc != ZK_OK)
		return rc;
	/* Parent: everything before the last '/', with "" meaning the root. */
	size_t parent_len = (size_t)((const char *)memrchr(path, '/', len) - path);
	struct znode *parent = parent_len == 0 ? s->root : find(s, path, parent_len);
	char *full = NULL;
	if (!parent) {
		rc = ZK_NONODE;
		goto fail;
	}
	if (!store_acl_permits(parent->acl, ZK_PERM_CREATE, txn->auth)) {
		rc = ZK_NOAUTH;
		goto fail;
	}
	size_t full_len = len;
	if (sequential) {
		full = xrealloc(NULL, len + 16);
		memcpy(full, path, len);
		full_len = len + (size_t)snprintf(full + len, 16, "%010d", parent->cversion_stored);
		path = full;
	}
	if (!store_path_valid(path, full_len)) {
		rc = ZK_BADARGUMENTS;
		goto fail;
	}
	uint64_t hash = store_hash_bytes(path, full_len);
	if (store_node_find(s, path, full_len, hash)) {
		if (rq->type == ZK_OP_CREATE_IF_NOT_EXISTS) {
			/* ClickHouse: an existing node is success, unchanged, named as requested. */
			jute_write_string(out, path, (int32_t)full_len);
			rc = ZK_OK;
		} else {
			rc = ZK_NODEEXISTS;
		}
		goto fail;
	}
	if (store_owner_is_session(parent->ephemeral_owner)) {
		rc = ZK_NOCHILDRENFOREPHEMERALS;
		goto fail;
	}
	int64_t data_bytes = rq->data.len > 0 ? rq->data.len : 0;
	rc = quota_check(c, path, full_len, data_bytes, 1);
	if (rc != ZK_OK)
		goto fail;
	if (parent->child_count >= STORE_CHILDREN_MAX) {
		rc = ZK_SYSTEMERROR;
		goto fail;
	}

	struct znode *n = store_node_new(path, full_len);
	if (!n)
		abort();
	store_acl_free(n->acl);
	n->acl = acl;
	acl = NULL;
	if (rq->data.len > 0) {
		n->data = xrealloc(NULL, (size_t)rq->data.len);
		memcpy(n->data, rq->data.data, (size_t)rq->data.len);
	}
	n->data_len = rq->data.len;
	n->czxid = n->mzxid = n->pzxid = txn->zxid;
	n->ctime = n->mtime = txn->time_ms;
	if (ephemeral)
		n->ephemeral_owner = txn->session_id;
	else if (container)
		n->ephemeral_owner = ZK_EPHEMERAL_OWNER_CONTAINER;
	else if (is_ttl)
		n->ephemeral_owner = ZK_EPHEMERAL_OWNER_TTL_MASK | rq->ttl;

	struct znode *quota_target = quota_create_prepare(c, n);
	ctx_lock(c, shard_bit(hash) | shard_bit(parent->hash) | quota_lock_bit(quota_target));
	/* Under the parent's lock: readers may be walking the array realloc moves. */
	if (store_node_children_reserve(parent) != 0)
		abort();
	store_snap_preserve(s, parent);
	struct undo *u = undo_push(c, UNDO_CREATE, n);
	u->old_cversion_stored = parent->cversion_stored;
	u->old_pzxid = parent->pzxid;
	store_node_link(s, parent, n);
	parent->cversion_stored = version_next(parent->cversion_stored);
	parent->pzxid = txn->zxid;
	if (ephemeral) {
		assert(c->session);
		if (store_session_ephemeral_add(s, c->session, n) != 0)
			abort();
	}
	quota_create_apply(c, n, quota_target, data_bytes);
	trigger_push(c, n, ZK_EVENT_NODE_CREATED);
	trigger_push(c, parent, ZK_EVENT_NODE_CHILDREN_CHANGED);
	free(full);

	jute_write_string(out, n->path, (int32_t)n->path_len);
	bool with_stat = c->in_multi ? rq->type != ZK_OP_CREATE_IF_NOT_EXISTS && multi_create_has_stat(flags)
				     : rq->type == ZK_OP_CREATE2 || rq->type == ZK_OP_CREATE_CONTAINER ||
					       rq->type == ZK_OP_CREATE_TTL;
	if (with_stat)
		write_stat(out, n);
	return ZK_OK;
fail:
	free(full);
	store_acl_free(acl);
	return rc;
}

/*
 * Unlinks one node (its, its parent's and quota_target's shards locked), recording
 * undo and triggers. quota_target comes from quota_delete_prepare(c, n).
 */
static void delete_node_locked(struct apply_ctx *c, struct znode *n, struct znode *quota_target)
{
	struct store *s = c->s;
	struct znode *parent = n->parent;
	assert(parent && n->child_count == 0);
	store_snap_preserve(s, n);
	store_snap_preserve(s, parent);
	quota_note_node(c, n, true);
	struct undo *u = undo_push(c, UNDO_DELETE, n);
	u->old_cversion_stored = parent->cversion_stored;
	u->old_pzxid = parent->pzxid;
	if (store_owner_is_session(n->ephemeral_owner)) {
		struct session *se = store_session_find(s, n->ephemeral_owner);
		if (se)
			store_session_ephemeral_remove(s, se, n);
	}
	store_node_unlink(s, n);
	/*
	 * The stored cversion is not bumped by a delete (ZOOKEEPER-1046), so sequence
	 * suffixes count creates only; the cversion clients see still grows by one,
	 * because numChildren dropped (see store_node_stat).
	 */
	parent->pzxid = c->txn->zxid;
	if (quota_target)
		quota_stats_add(c, quota_target, -1, -(int64_t)(n->data_len > 0 ? n->data_len : 0));
	trigger_push(c, n, ZK_EVENT_NODE_DELETED);
	trigger_push(c, parent, ZK_EVENT_NODE_CHILDREN_CHANGED);
}

/* delete_node_locked with every shard locked (multi, closeSession, removeRecursive). */
static void delete_node(struct apply_ctx *c, struct znode *n)
{
	assert(c->all_locked);
	delete_node_locked(c, n, quota_delete_prepare(c, n));
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
	struct znode *parent = parent_len == 0 ? s->root : find(s, path, parent_len);
	if (!parent)
		return rq->type == STORE_OP_TRY_REMOVE ? ZK_OK : ZK_NONODE;
	if (!store_acl_permits(parent->acl, ZK_PERM_DELETE, c->txn->auth))
		return ZK_NOAUTH;
	struct znode *n = find(s, path, len);
	/* ClickHouse TryRemove: the "nothing to delete" outcomes are success, unchanged. */
	bool try_remove = rq->type == STORE_OP_TRY_REMOVE;
	if (!n)
		return try_remove ? ZK_OK : ZK_NONODE;
	if (rq->version != -1 && rq->version != n->version)
		return try_remove ? ZK_OK : ZK_BADVERSION;
	if (n->child_count > 0)
		return try_remove ? ZK_OK : ZK_NOTEMPTY;
	struct znode *quota_target = quota_delete_prepare(c, n);
	ctx_lock(c, shard_bit(n->hash) | shard_bit(parent->hash) | quota_lock_bit(quota_target));
	delete_node_locked(c, n, quota_target);
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
	struct znode *n = find(s, path, len);
	if (!n || !n->parent)
		return ZK_NONODE;
	if (n->child_count > 0)
		return ZK_NOTEMPTY;
	if (!store_owner_is_reapable(n->ephemeral_owner) || !store_node_reapable_at(n, c->txn->time_ms))
		return ZK_BADVERSION;
	struct znode *quota_target = quota_delete_prepare(c, n);
	ctx_lock(c, shard_bit(n->hash) | shard_bit(n->parent->hash) | quota_lock_bit(quota_target));
	delete_node_locked(c, n, quota_target);
	return ZK_OK;
}

static int32_t op_set_data(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
{
	struct store *s = c->s;
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (!store_path_valid(path, len) || path_is_keeper(s, path, len))
		return ZK_BADARGUMENTS;
	struct znode *n = find(s, path, len);
	if (!n)
		return ZK_NONODE;
	if (!store_acl_permits(n->acl, ZK_PERM_WRITE, c->txn->auth))
		return ZK_NOAUTH;
	int64_t bytes_diff = (int64_t)(rq->data.len > 0 ? rq->data.len : 0) - (n->data_len > 0 ? n->data_len : 0);
	int32_t rc = quota_check(c, path, len, bytes_diff, 0);
	if (rc != ZK_OK)
		return rc;
	if (rq->version != -1 && rq->version != n->version)
		return ZK_BADVERSION;
	uint8_t *data = NULL;
	if (rq->data.len > 0) {
		data = xrealloc(NULL, (size_t)rq->data.len);
		memcpy(data, rq->data.data, (size_t)rq->data.len);
	}
	struct znode *quota_target = quota_stats_target(c, n->path, n->path_len, NULL);
	ctx_lock(c, shard_bit(n->hash) | quota_lock_bit(quota_target));
	store_snap_preserve(s, n);
	quota_note_node(c, n, true);
	struct undo *u = undo_push(c, UNDO_SET_DATA, n);
	u->old_data = n->data;
	u->old_data_len = n->data_len;
	u->old_version = n->version;
	u->old_mzxid = n->mzxid;
	u->old_mtime = n->mtime;
	atomic_fetch_sub_explicit(&s->data_bytes, (uint64_t)(n->data_len > 0 ? n->data_len : 0), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->data_bytes, (uint64_t)(rq->data.len > 0 ? rq->data.len : 0), memory_order_relaxed);
	n->data = data;
	n->data_len = rq->data.len;
	n->version = version_next(n->version);
	n->mzxid = c->txn->zxid;
	n->mtime = c->txn->time_ms;
	if (quota_target)
		quota_stats_add(c, quota_target, 0, bytes_diff);
	trigger_push(c, n, ZK_EVENT_NODE_DATA_CHANGED);
	write_stat(out, n);
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
	struct znode *n = find(s, path, len);
	if (!n)
		rc = ZK_NONODE;
	else if (!store_acl_permits(n->acl, ZK_PERM_ADMIN, c->txn->auth))
		rc = ZK_NOAUTH;
	else if (rq->version != -1 && rq->version != n->aversion)
		rc = ZK_BADVERSION;
	if (rc != ZK_OK) {
		store_acl_free(acl);
		return rc;
	}
	ctx_lock(c, shard_bit(n->hash));
	store_snap_preserve(s, n);
	struct undo *u = undo_push(c, UNDO_SET_ACL, n);
	u->old_acl = n->acl;
	u->old_version = n->aversion;
	n->acl = acl;
	n->aversion = version_next(n->aversion);
	write_stat(out, n);
	return ZK_OK;
}

/* ClickHouse CheckStat: every field of want that is not -1 equals the node's (client) Stat. */
static bool stat_matches(const struct znode *n, const struct zk_stat *want)
{
	struct zk_stat st;
	store_node_stat(n, &st);
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
	struct znode *n = find(c->s, path, len);
	if (rq->type == ZK_OP_CHECK_NOT_EXISTS) {
		/* ClickHouse: fails only when the node exists with a matching (or any) version. */
		if (n && (rq->version == -1 || rq->version == n->version))
			return ZK_NODEEXISTS;
		return ZK_OK;
	}
	if (!n)
		return ZK_NONODE;
	if (!store_acl_permits(n->acl, ZK_PERM_READ, c->txn->auth))
		return ZK_NOAUTH;
	if (rq->version != -1 && rq->version != n->version)
		return ZK_BADVERSION;
	if (rq->type == STORE_OP_CHECK_STAT && !stat_matches(n, &rq->stat))
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
	struct znode *parent = parent_len == 0 ? s->root : find(s, path, parent_len);
	struct znode *n = find(s, path, len);
	if (!parent || !n)
		return ZK_OK;
	if (!store_acl_permits(parent->acl, ZK_PERM_DELETE, c->txn->auth))
		return ZK_NOAUTH;
	/* Collect the subtree breadth-first, bounded by the limit (the root counts). */
	size_t limit = rq->version > 0 ? (size_t)rq->version : 0;
	if (limit == 0)
		return ZK_NOTEMPTY;
	size_t cap = 16, count = 0;
	struct znode **order = xrealloc(NULL, cap * sizeof *order);
	order[count++] = n;
	for (size_t i = 0; i < count; i++) {
		struct znode *x = order[i];
		if (x != n && !store_acl_permits(x->parent->acl, ZK_PERM_DELETE, c->txn->auth)) {
			free(order);
			return ZK_NOAUTH;
		}
		if (count + x->child_count > limit) {
			free(order);
			return ZK_NOTEMPTY;
		}
		if (count + x->child_count > cap) {
			while (count + x->child_count > cap)
				cap *= 2;
			order = xrealloc(order, cap * sizeof *order);
		}
		for (uint32_t k = 0; k < x->child_count; k++)
			order[count++] = x->children[k];
	}
	assert(c->all_locked);
	/* Breadth-first order reversed: every node goes after all of its descendants. */
	for (size_t i = count; i-- > 0;)
		delete_node(c, order[i]);
	free(order);
	return ZK_OK;
}

static int32_t op_write(struct apply_ctx *c, const struct req *rq, struct jute_writer *out)
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

static bool multi_op_allowed(int32_t type)
{
	switch (type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
	case ZK_OP_DELETE:
	case ZK_OP_SET_DATA:
	case ZK_OP_CHECK:
	case ZK_OP_CHECK_NOT_EXISTS:
	case ZK_OP_CREATE_IF_NOT_EXISTS:
	case ZK_OP_REMOVE_RECURSIVE:
	case STORE_OP_CHECK_STAT:
	case STORE_OP_TRY_REMOVE:
		return true;
	default:
		return false;
	}
}

/*
 * Result type of a successful sub-op. ZooKeeper rebuilds every create sub-op from its
 * flags (MultiOperationRecord -> Op.create), whatever opcode the client sent: a
 * container or TTL mode answers as create2 (15, path + Stat), any other mode as
 * create (1, path only) — so a create2 inside a multi answers like a create.
 */
static int32_t multi_result_type(const struct req *rq)
{
	switch (rq->type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
		return multi_create_has_stat(rq->flags) ? ZK_OP_CREATE2 : ZK_OP_CREATE;
	default:
		return rq->type;
	}
}

static void multi_header_write(struct jute_writer *out, int32_t type, bool done, int32_t err)
{
	jute_write_int(out, type);
	jute_write_bool(out, done);
	jute_write_int(out, err);
}

static int32_t apply_multi(struct apply_ctx *c, const uint8_t *body, size_t body_len, struct jute_writer *out,
			   store_event_fn fn, void *ctx)
{
	struct jute_reader r;
	jute_reader_init(&r, body, body_len);
	size_t out_start = out->len;
	size_t ops = 0, failed_at = SIZE_MAX;
	int32_t failed_err = ZK_OK;
	bool bad = false;
	store_lock_all(c->s);
	c->all_locked = true;
	c->in_multi = true;
	for (;;) {
		int32_t type = jute_read_int(&r);
		bool done = jute_read_bool(&r);
		jute_read_int(&r);
		if (!jute_reader_ok(&r) || done)
			break;
		struct req rq;
		if (!multi_op_allowed(type) || ops >= STORE_MULTI_OPS_MAX || !req_read(&r, type, &rq)) {
			bad = true;
			break;
		}
		if (!jute_reader_ok(&r)) {
			req_free(&rq);
			break;
		}
		if (failed_at == SIZE_MAX) {
			size_t mark = out->len;
			multi_header_write(out, multi_result_type(&rq), false, 0);
			int32_t rc = op_write(c, &rq, out);
			if (rc == ZK_MARSHALLINGERROR) {
				/* ZooKeeper: an exception other than a KeeperException (a null
				 * path's NPE) fails the whole request with MARSHALLINGERROR. */
				req_free(&rq);
				bad = true;
				break;
			}
			if (rc != ZK_OK) {
				out->len = mark;
				failed_at = ops;
				failed_err = rc;
			}
		}
		req_free(&rq);
		ops++;
	}
	if (bad || !jute_reader_ok(&r)) {
		ctx_rollback(c);
		out->len = out_start;
		atomic_store(&c->s->last_zxid, c->txn->zxid);
		ctx_unlock(c);
		return ZK_MARSHALLINGERROR;
	}
	if (failed_at != SIZE_MAX) {
		ctx_rollback(c);
		out->len = out_start;
		for (size_t i = 0; i < ops; i++) {
			int32_t err = i < failed_at ? ZK_OK : i == failed_at ? failed_err : ZK_RUNTIMEINCONSISTENCY;
			multi_header_write(out, ZK_OP_ERROR, false, err);
			jute_write_int(out, err);
		}
		multi_header_write(out, -1, true, -1);
		atomic_store(&c->s->last_zxid, c->txn->zxid);
		ctx_unlock(c);
		return ZK_OK;
	}
	multi_header_write(out, -1, true, -1);
	ctx_commit(c, fn, ctx);
	return ZK_OK;
}

static int32_t apply_close_session(struct apply_ctx *c, store_event_fn fn, void *ctx)
{
	struct store *s = c->s;
	store_lock_all(s);
	c->all_locked = true;
	struct session *se = c->session;
	/* Ephemerals never have children, so any order works; newest first is cheapest. */
	while (se->ephemeral_count > 0)
		delete_node(c, se->ephemerals[se->ephemeral_count - 1]);
	ctx_commit(c, fn, ctx);
	store_session_remove(s, se->id);
	c->session = NULL;
	return ZK_OK;
}

static int32_t apply_create_session(struct apply_ctx *c, const uint8_t *body, size_t body_len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, body_len);
	int32_t timeout_ms = jute_read_int(&r);
	struct jute_bytes passwd = jute_read_buffer(&r);
	if (!jute_reader_ok(&r))
		return ZK_MARSHALLINGERROR;
	if (store_session_insert(c->s, c->txn->session_id, timeout_ms, passwd.data,
				 passwd.len > 0 ? (size_t)passwd.len : 0, c->txn->time_ms) != 0)
		abort();
	return ZK_OK;
}

int32_t store_apply(struct store *s, const struct store_txn *txn, struct jute_writer *out, store_event_fn on_event,
		    void *ctx)
{
	assert(txn->zxid > atomic_load(&s->last_zxid) || txn->zxid == 0);
	struct apply_ctx c = { .s = s, .txn = txn };
	int32_t rc;
	if (txn->opcode == ZK_OP_CREATE_SESSION) {
		rc = apply_create_session(&c, txn->body, txn->body_len);
		goto done;
	}
	c.session = store_session_find(s, txn->session_id);
	/* deleteContainer is the server's own txn: no session (ZooKeeper proposes it as 0). */
	if (!c.session && txn->opcode != ZK_OP_DELETE_CONTAINER) {
		rc = ZK_SESSIONEXPIRED;
		goto done;
	}
	switch (txn->opcode) {
	case ZK_OP_CLOSE_SESSION:
		rc = apply_close_session(&c, on_event, ctx);
		goto out;
	case ZK_OP_MULTI:
		rc = apply_multi(&c, txn->body, txn->body_len, out, on_event, ctx);
		goto out;
	default:
		break;
	}
	struct jute_reader r;
	struct req rq;
	jute_reader_init(&r, txn->body, txn->body_len);
	if (!req_read(&r, txn->opcode, &rq)) {
		rc = ZK_UNIMPLEMENTED;
		goto done;
	}
	if (!jute_reader_ok(&r)) {
		req_free(&rq);
		rc = ZK_MARSHALLINGERROR;
		goto done;
	}
	if (txn->opcode == ZK_OP_REMOVE_RECURSIVE) {
		store_lock_all(s);
		c.all_locked = true;
	}
	size_t mark = out->len;
	rc = op_write(&c, &rq, out);
	req_free(&rq);
	if (rc != ZK_OK) {
		/* Single ops check everything before they mutate: nothing to undo. */
		assert(c.undo_count == 0);
		out->len = mark;
		if (c.all_locked || c.locked_mask)
			ctx_unlock(&c);
		goto done;
	}
	if (c.all_locked || c.locked_mask)
		ctx_commit(&c, on_event, ctx);
	else
		atomic_store(&s->last_zxid, txn->zxid);
	goto out;
done:
	atomic_store(&s->last_zxid, txn->zxid);
out:
	free(c.undo);
	free(c.trig);
	if (c.quota_log) {
		assert(c.quota_log->root_count == 0);
		free(c.quota_log->roots);
		free(c.quota_log->nodes);
		free(c.quota_log);
	}
	return rc;
}

/* ---------------------------------------------------------------- lifetime */

static struct znode *system_node(struct store *s, struct znode *parent, const char *path, const char *data)
{
	struct znode *n = store_node_new(path, strlen(path));
	assert(n);
	size_t len = data ? strlen(data) : 0;
	if (len) {
		n->data = xrealloc(NULL, len);
		memcpy(n->data, data, len);
	}
	n->data_len = (int32_t)len; /* ZooKeeper's system nodes hold byte[0], not null */
	if (parent) {
		int rc = store_node_children_reserve(parent);
		assert(rc == 0);
		(void)rc;
	}
	store_node_link(s, parent, n);
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
		sh->bucket_mask = 15;
		sh->buckets = calloc(16, sizeof *sh->buckets);
		assert(sh->buckets);
	}
	store_watches_init(s);
	store_sessions_init(s);
	store_quota_init(s);
	s->enforce_quota = cfg && cfg->enforce_quota;
	if (cfg)
		s->cfg = *cfg;
	/* As ZooKeeper's DataTree: system nodes with zxid 0, linked without stat changes. */
	s->root = system_node(s, NULL, "/", NULL);
	struct znode *zk = system_node(s, s->root, "/zookeeper", NULL);
	system_node(s, zk, "/zookeeper/quota", NULL);
	struct znode *config = system_node(s, zk, "/zookeeper/config", cfg ? cfg->config_text : NULL);
	/* ZooKeeper protects the config node: READ_ACL_UNSAFE, set with aversion -1. */
	static const struct zk_acl read_unsafe = { ZK_PERM_READ, { { (const uint8_t *)"world", 5 },
								   { (const uint8_t *)"anyone", 6 } } };
	struct acl_list *acl;
	int32_t rc = store_acl_fixup(&read_unsafe, 1, NULL, &acl);
	assert(rc == ZK_OK);
	(void)rc;
	config->acl = acl;
	config->aversion = -1;
	if (config->data_len > 0)
		config->version = -1; /* as a quorum peer's; its mtime stays 0 (ZooKeeper's is
				       * each server's start, which would make replicas differ) */
	s->keeper_api = cfg && cfg->keeper_api;
	s->watches_per_watcher_max = cfg && cfg->watches_per_watcher_max ? cfg->watches_per_watcher_max
									  : STORE_WATCHES_PER_WATCHER_MAX;
	if (s->keeper_api) {
		struct znode *keeper = system_node(s, s->root, "/keeper", NULL);
		system_node(s, keeper, "/keeper/api_version", STORE_KEEPER_API_VERSION);
		struct znode *flags = system_node(s, keeper, "/keeper/feature_flags", NULL);
		static const uint8_t bits[] = STORE_KEEPER_FEATURE_FLAGS;
		flags->data = xrealloc(NULL, sizeof bits);
		memcpy(flags->data, bits, sizeof bits);
		flags->data_len = (int32_t)sizeof bits;
		atomic_fetch_add_explicit(&s->data_bytes, sizeof bits, memory_order_relaxed);
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
			struct znode *n = sh->buckets[b];
			while (n) {
				struct znode *next = n->hash_next;
				store_node_free(n);
				n = next;
			}
		}
		free(sh->buckets);
	}
	store_watches_destroy(s);
	store_sessions_destroy(s);
	store_quota_destroy(s);
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
