/*
 * store_apply_quota.c — ZooKeeper 3.8.0's quotas as store_apply() applies them (the
 * rules below); the quota roots' table and the StatsTrack text are store_quota.c's.
 *
 * Thread: the applier only.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_apply_impl.h"

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
	size_t off = store_node_name_off(n);
	return n->path_len - off == len && memcmp(n->path + off, name, len) == 0;
}

/* Length of ZooKeeper's parentName of n: "" (0) for a child of "/". */
static size_t parent_name_len(const struct znode *n)
{
	return store_node_name_off(n) - 1;
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
		c->quota_log = apply_xrealloc(NULL, sizeof *c->quota_log);
		memset(c->quota_log, 0, sizeof *c->quota_log);
	}
	return c->quota_log;
}

void apply_quota_note_node_slow(struct apply_ctx *c, const struct znode *n, bool existed)
{
	if (!quota_node_tracked(n))
		return;
	struct quota_txn_log *q = quota_log(c);
	for (size_t i = 0; i < q->node_count; i++)
		if (q->nodes[i].len == n->path_len && memcmp(q->nodes[i].path, n->path, n->path_len) == 0)
			return;
	if (q->node_count == q->node_cap) {
		q->node_cap = q->node_cap ? q->node_cap * 2 : 4;
		q->nodes = apply_xrealloc(q->nodes, q->node_cap * sizeof *q->nodes);
	}
	/* A copy: a later change of n in this txn rewrites its value in place. */
	uint8_t *data = NULL;
	if (n->data_len > 0) {
		data = apply_xrealloc(NULL, (size_t)n->data_len);
		memcpy(data, store_node_data(n), (size_t)n->data_len);
	}
	q->nodes[q->node_count++] = (struct quota_node_before){ n->path, n->path_len, existed, data, n->data_len };
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
		q->roots = apply_xrealloc(q->roots, q->root_cap * sizeof *q->roots);
	}
	char *copy = apply_xrealloc(NULL, len);
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
	char *p = apply_xrealloc(NULL, len);
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
	struct znode *n = apply_find(c->s, path, len);
	if (!n)
		return false;
	*data = store_node_data(n);
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
int32_t apply_quota_check_slow(struct apply_ctx *c, const char *path, size_t len, int64_t bytes_diff,
				int64_t count_diff)
{
	struct store *s = c->s;
	char *buf = apply_xrealloc(NULL, len + 1);
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

/*
 * The stats node rule 3 will update for a change of path, by the current roots (so
 * after rule 1's change): NULL when none. pending is a node about to be linked that
 * may be it.
 */
struct znode *apply_quota_stats_target_slow(struct apply_ctx *c, const char *path, size_t len,
					     struct znode *pending)
{
	struct store *s = c->s;
	char *buf = apply_xrealloc(NULL, len + 1);
	size_t root_len = quota_nearest_root(c, path, len, false, buf);
	struct znode *t = NULL;
	if (root_len > 0) {
		size_t stats_len;
		char *stats_path = quota_node_path(buf, root_len, STORE_QUOTA_STATS_NAME, &stats_len);
		t = apply_find(s, stats_path, stats_len);
		if (!t && pending && pending->path_len == stats_len && memcmp(pending->path, stats_path, stats_len) == 0)
			t = pending;
		free(stats_path);
	}
	free(buf);
	return t;
}

/* Replaces a stats node's data (its shard locked), recording the undo. Frees text. */
static void quota_replace_data(struct apply_ctx *c, struct znode *t, uint8_t *text, int32_t len)
{
	assert(c->all_locked || (c->locked_mask & apply_shard_bit(store_node_hash(t))));
	store_snap_preserve(c->s, t);
	apply_quota_note_node(c, t, true);
	apply_data_replace(c, t, UNDO_QUOTA_STATS, text, len);
	free(text);
}

void apply_quota_stats_add(struct apply_ctx *c, struct znode *t, int64_t count_diff, int64_t bytes_diff)
{
	int32_t len;
	uint8_t *text = store_quota_stats_update(store_node_data(t), t->data_len, count_diff, bytes_diff, &len);
	if (text)
		quota_replace_data(c, t, text, len);
}

/* Rule 2 for n, a just linked zookeeper_stats node under "/zookeeper/quota". */
static void quota_stats_init(struct apply_ctx *c, struct znode *n)
{
	struct store *s = c->s;
	const char *real = n->path + STORE_QUOTA_PREFIX_LEN;
	size_t real_len = parent_name_len(n) - STORE_QUOTA_PREFIX_LEN;
	const struct znode *top = real_len == 0 ? s->root : apply_find(s, real, real_len);
	uint64_t count;
	int64_t bytes;
	store_quota_subtree_counts(top, &count, &bytes);
	char *text = apply_xrealloc(NULL, 64);
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
struct znode *apply_quota_create_prepare(struct apply_ctx *c, struct znode *n)
{
	size_t parent_len = quota_maybe_special(n) ? parent_name_len(n) : 0;
	if (parent_len > STORE_QUOTA_PREFIX_LEN && name_is(n, STORE_QUOTA_LIMITS_NAME) &&
	    parent_starts_with(n, STORE_QUOTA_PREFIX)) {
		size_t rest = parent_len - STORE_QUOTA_PREFIX_LEN;
		char *root = apply_xrealloc(NULL, rest + 1);
		size_t root_len = store_quota_normalize(n->path + STORE_QUOTA_PREFIX_LEN, rest, root);
		if (root_len > 1)
			quota_root_change(c, root, root_len, true);
		free(root);
	}
	return apply_quota_stats_target(c, n->path, n->path_len, n);
}

/* Rules 2 and 3 for n, just linked (all of it under the locks taken for target). */
void apply_quota_create_apply(struct apply_ctx *c, struct znode *n, struct znode *target, int64_t data_bytes)
{
	apply_quota_note_node(c, n, false);
	if (quota_maybe_special(n) && name_is(n, STORE_QUOTA_STATS_NAME) && parent_starts_with(n, STORE_QUOTA_PREFIX))
		quota_stats_init(c, n);
	if (target)
		apply_quota_stats_add(c, target, 1, data_bytes);
}

/* Rule 1 for a delete of n; returns the stats node rule 3 updates (never n itself). */
struct znode *apply_quota_delete_prepare(struct apply_ctx *c, struct znode *n)
{
	size_t parent_len = quota_maybe_special(n) ? parent_name_len(n) : 0;
	if (parent_len > STORE_QUOTA_PREFIX_LEN && name_is(n, STORE_QUOTA_LIMITS_NAME) &&
	    parent_starts_with(n, "/zookeeper")) {
		size_t rest = parent_len - STORE_QUOTA_PREFIX_LEN;
		char *root = apply_xrealloc(NULL, rest + 1);
		size_t root_len = store_quota_normalize(n->path + STORE_QUOTA_PREFIX_LEN, rest, root);
		if (root_len > 1)
			quota_root_change(c, root, root_len, false);
		free(root);
	}
	struct znode *t = apply_quota_stats_target(c, n->path, n->path_len, NULL);
	return t == n ? NULL : t;
}
