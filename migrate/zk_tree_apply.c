/*
 * zk_tree_apply.c — one logged txn applied to the model as ZooKeeper 3.8's
 * DataTree.processTxn applies it during a restart (see zk_tree.h for what is
 * modelled). Each helper returns 0 / -EBADMSG / -ENOMEM and puts the ZooKeeper error
 * code (ZK_OK, ZK_NONODE, ZK_NODEEXISTS) in *zerr: those are what the replay ignores.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "migrate/zk_tree_impl.h"

#define QUOTA_PREFIX "/zookeeper/quota"
#define QUOTA_PREFIX_LEN (sizeof QUOTA_PREFIX - 1)
#define PROC_PREFIX "/zookeeper"
#define LIMITS_NODE "zookeeper_limits"
#define STATS_NODE "zookeeper_stats"
#define TTL_MAX 0x000000FFFFFFFFFFLL /* EphemeralType.TTL.maxValue() */

struct apply {
	struct zk_tree *t;
	int64_t client_id;
	int64_t zxid;
	int64_t time;
	char *why;
	size_t why_size;
};

static int refuse(struct apply *a, const char *what, const char *path, size_t len)
{
	snprintf(a->why, a->why_size, "txn 0x%llx: %s%s%.*s", (unsigned long long)a->zxid, what, path ? ": " : "",
		 (int)(len > 200 ? 200 : len), path ? path : "");
	return -EBADMSG;
}

static bool starts_with(const char *p, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(p, prefix, n) == 0;
}

static bool name_is(const char *p, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(p, name, len) == 0;
}

/* Parent length of path (the bytes before its last '/'); false when it has none. */
static bool split(const char *path, size_t len, size_t *parent_len)
{
	const char *slash = path && len ? memrchr(path, '/', len) : NULL;
	if (!slash)
		return false;
	*parent_len = (size_t)(slash - path);
	return true;
}

/* ---------------------------------------------------------------- quotas */

int zk_tree_quota_recount(struct zk_tree *t, const char *path, size_t len)
{
	uint64_t count = 0;
	int64_t bytes = 0;
	const struct zk_node *top = zk_node_find(t, path, len);
	for (const struct zk_node *n = top; n;) {
		count++;
		bytes += n->data_len > 0 ? n->data_len : 0;
		if (n->child_first) {
			n = n->child_first;
			continue;
		}
		while (n != top && !n->sib_next)
			n = n->parent;
		n = n == top ? NULL : n->sib_next;
	}
	size_t stat_len = QUOTA_PREFIX_LEN + len + 1 + sizeof STATS_NODE - 1;
	char *stat_path = malloc(stat_len + 1);
	if (!stat_path)
		return -ENOMEM;
	snprintf(stat_path, stat_len + 1, "%s%.*s/%s", QUOTA_PREFIX, (int)len, path, STATS_NODE);
	struct zk_node *stat = zk_node_find(t, stat_path, stat_len);
	free(stat_path);
	if (!stat)
		return 0; /* ZooKeeper warns "Missing quota stat node" and goes on */
	uint8_t *text;
	int32_t text_len;
	int rc = zk_stats_track_counts((int64_t)count, bytes, &text, &text_len);
	if (rc < 0)
		return rc;
	zk_digest_pre(t, stat);
	free(stat->data);
	stat->data = text;
	stat->data_len = text_len;
	zk_digest_post(t, stat);
	return 0;
}

/* DataTree.updateQuotaStat: the stats node of quota path `prefix` moves by the diffs. */
static int quota_stat_update(struct apply *a, const char *prefix, int64_t bytes_diff, int64_t count_diff)
{
	size_t plen = strlen(prefix);
	size_t stat_len = QUOTA_PREFIX_LEN + plen + 1 + sizeof STATS_NODE - 1;
	char *stat_path = malloc(stat_len + 1);
	if (!stat_path)
		return -ENOMEM;
	snprintf(stat_path, stat_len + 1, "%s%s/%s", QUOTA_PREFIX, prefix, STATS_NODE);
	struct zk_node *stat = zk_node_find(a->t, stat_path, stat_len);
	free(stat_path);
	if (!stat)
		return 0; /* "Missing node for stat": ZooKeeper logs it and goes on */
	if (stat->data_len < 0)
		return refuse(a, "a quota stats node has no data (ZooKeeper throws on it)", stat->path, stat->path_len);
	uint8_t *text;
	int32_t text_len;
	int rc = zk_stats_track_update(stat->data, stat->data_len, count_diff, bytes_diff, &text, &text_len);
	if (rc == -EINVAL)
		return refuse(a, "a quota stats node's text cannot be parsed (ZooKeeper throws on it)", stat->path,
			      stat->path_len);
	if (rc < 0)
		return rc;
	/* In place, as ZooKeeper: no version, mzxid or digest change (it is under
	 * /zookeeper/, which the digest leaves out). */
	free(stat->data);
	stat->data = text;
	stat->data_len = text_len;
	return 0;
}

static int quota_after_change(struct apply *a, const char *path, size_t len, int64_t bytes_diff, int64_t count_diff)
{
	const char *prefix = zk_quota_max_prefix(&a->t->quota, path, len);
	return prefix ? quota_stat_update(a, prefix, bytes_diff, count_diff) : 0;
}

/* ---------------------------------------------------------------- the node ops */

static int create_node(struct apply *a, const struct zk_txn_body *b, int64_t owner, int32_t *zerr)
{
	struct zk_tree *t = a->t;
	const char *path = (const char *)b->path.data;
	size_t len = b->path.len > 0 ? (size_t)b->path.len : 0, plen;
	if (!split(path, len, &plen))
		return refuse(a, "a create of a path without '/'", path, len);
	struct zk_node *parent = zk_node_find(t, path, plen);
	if (!parent) {
		*zerr = ZK_NONODE;
		return 0;
	}
	const struct zk_acl_list *acl = zk_acl_intern(t, b->acl);
	if (!acl)
		return -ENOMEM;
	if (zk_node_find(t, path, len)) {
		*zerr = ZK_NODEEXISTS;
		return 0;
	}
	enum zk_ephemeral_kind kind = zk_ephemeral_kind(owner);
	if (kind == ZK_EPHEMERAL_INVALID)
		return refuse(a, "a create with an ephemeralOwner ZooKeeper cannot read", path, len);
	zk_digest_pre(t, parent);
	int32_t pcv = b->parent_cversion == -1 ? parent->cversion + 1 : b->parent_cversion;
	/* Replaying a create that a fuzzy snapshot already saw undone must not move the
	 * parent back: only forward. */
	if (pcv > parent->cversion) {
		parent->cversion = pcv;
		parent->pzxid = a->zxid;
	}
	struct zk_node *n = zk_node_add(t, parent, path, len);
	zk_digest_post(t, parent);
	if (!n || zk_node_set_data(n, b->data) < 0)
		return -ENOMEM;
	n->acl = acl;
	n->czxid = n->mzxid = n->pzxid = a->zxid;
	n->ctime = n->mtime = a->time;
	n->ephemeral_owner = owner;
	if (kind == ZK_EPHEMERAL_NORMAL) {
		zk_owner_list(t, n);
		if (!n->owner)
			return -ENOMEM;
	}
	zk_digest_post(t, n);
	const char *child = path + plen + 1;
	size_t child_len = len - plen - 1;
	if (starts_with(path, plen, QUOTA_PREFIX)) {
		const char *real = path + QUOTA_PREFIX_LEN;
		size_t real_len = plen - QUOTA_PREFIX_LEN;
		int rc = 0;
		if (name_is(child, child_len, LIMITS_NODE)) {
			rc = zk_quota_add(&t->quota, real, real_len);
			if (rc == -EINVAL)
				return refuse(a, "a quota limits node that names no path (ZooKeeper throws on it)", path, len);
		}
		if (rc == 0 && name_is(child, child_len, STATS_NODE))
			rc = zk_tree_quota_recount(t, real, real_len);
		if (rc < 0)
			return rc;
	}
	return quota_after_change(a, path, len, b->data.len > 0 ? b->data.len : 0, 1);
}

static int delete_node(struct apply *a, const char *path, size_t len, int32_t *zerr)
{
	struct zk_tree *t = a->t;
	size_t plen;
	if (!split(path, len, &plen))
		return refuse(a, "a delete of a path without '/'", path, len);
	struct zk_node *parent = zk_node_find(t, path, plen);
	if (!parent) {
		*zerr = ZK_NONODE;
		return 0;
	}
	/* The parent's pzxid moves even when the child is gone already (a fuzzy
	 * snapshot), and only forward. */
	zk_digest_pre(t, parent);
	if (a->zxid > parent->pzxid)
		parent->pzxid = a->zxid;
	zk_digest_post(t, parent);
	struct zk_node *n = zk_node_find(t, path, len);
	if (!n || n == t->root) {
		*zerr = ZK_NONODE;
		return 0;
	}
	if (n->child_count)
		return refuse(a, "a delete of a node that still has children in the rebuilt tree (the snapshot and "
				 "the log do not belong together)",
			      path, len);
	int64_t bytes = n->data_len > 0 ? n->data_len : 0;
	zk_digest_pre(t, n);
	zk_node_remove(t, n);
	const char *child = path + plen + 1;
	if (starts_with(path, plen, PROC_PREFIX) && name_is(child, len - plen - 1, LIMITS_NODE)) {
		if (plen < QUOTA_PREFIX_LEN)
			return refuse(a, "a quota limits node outside /zookeeper/quota (ZooKeeper throws on it)", path, len);
		int rc = zk_quota_delete(&t->quota, path + QUOTA_PREFIX_LEN, plen - QUOTA_PREFIX_LEN);
		if (rc == -EINVAL)
			return refuse(a, "a quota limits node that names no path (ZooKeeper throws on it)", path, len);
		if (rc < 0)
			return rc;
	}
	return quota_after_change(a, path, len, -bytes, -1);
}

static int set_data(struct apply *a, const struct zk_txn_body *b, int32_t *zerr)
{
	const char *path = (const char *)b->path.data;
	size_t len = b->path.len > 0 ? (size_t)b->path.len : 0;
	struct zk_node *n = zk_node_find(a->t, path, len);
	if (!n) {
		*zerr = ZK_NONODE;
		return 0;
	}
	int64_t old = n->data_len > 0 ? n->data_len : 0;
	zk_digest_pre(a->t, n);
	if (zk_node_set_data(n, b->data) < 0)
		return -ENOMEM;
	n->mtime = a->time;
	n->mzxid = a->zxid;
	n->version = b->version;
	zk_digest_post(a->t, n);
	return quota_after_change(a, path, len, (b->data.len > 0 ? b->data.len : 0) - old, 0);
}

static int set_acl(struct apply *a, const struct zk_txn_body *b, int32_t *zerr)
{
	const char *path = (const char *)b->path.data;
	size_t len = b->path.len > 0 ? (size_t)b->path.len : 0;
	struct zk_node *n = zk_node_find(a->t, path, len);
	if (!n) {
		*zerr = ZK_NONODE;
		return 0;
	}
	const struct zk_acl_list *acl = zk_acl_intern(a->t, b->acl);
	if (!acl)
		return -ENOMEM;
	zk_digest_pre(a->t, n);
	n->aversion = b->version;
	n->acl = acl;
	zk_digest_post(a->t, n);
	return 0;
}

/* DataTree.killSession: the txn's paths2Delete, then what else the session owned. */
static int close_session(struct apply *a, const struct zk_txn_body *b)
{
	struct zk_tree *t = a->t;
	struct zk_owner *o = zk_owner_get(t, a->client_id, false);
	if (o && o->session) {
		o->session = false;
		t->session_count--;
	}
	/* ephemerals.remove(session): its paths, copied, and the list emptied */
	char *paths = NULL;
	size_t *offs = NULL, count = 0, bytes = 0;
	if (o && o->eph_count) {
		for (const struct zk_node *n = o->eph_first; n; n = n->owner_next)
			bytes += n->path_len + 1;
		paths = malloc(bytes);
		offs = malloc(o->eph_count * sizeof *offs);
		if (!paths || !offs) {
			free(paths);
			free(offs);
			return -ENOMEM;
		}
		size_t at = 0;
		while (o->eph_first) {
			struct zk_node *n = o->eph_first;
			memcpy(paths + at, n->path, n->path_len + 1);
			offs[count++] = at;
			at += n->path_len + 1;
			zk_owner_unlist(n);
		}
	}
	int rc = 0;
	int32_t zerr;
	if (b->has_paths) {
		struct jute_reader r;
		jute_reader_init(&r, b->paths.data, (size_t)b->paths.len);
		int32_t n = jute_read_int(&r);
		for (int32_t i = 0; rc == 0 && i < n; i++) {
			struct jute_bytes p = jute_read_string(&r);
			rc = delete_node(a, (const char *)p.data, p.len > 0 ? (size_t)p.len : 0, &zerr);
		}
	}
	/* The rest of the session's own list; those the txn named are gone already, and
	 * deleting them again changes nothing (the parent's pzxid is this zxid already). */
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = delete_node(a, paths + offs[i], strlen(paths + offs[i]), &zerr);
	free(paths);
	free(offs);
	return rc;
}

/* DataTree.setCversionPzxid, after a plain create met NODEEXISTS. */
static int cversion_fixup(struct apply *a, const struct zk_txn_body *b, int32_t *zerr)
{
	const char *path = (const char *)b->path.data;
	size_t len = (size_t)b->path.len, plen;
	if (!split(path, len, &plen))
		return 0;
	if (plen > 0 && path[plen - 1] == '/')
		plen--;
	struct zk_node *n = zk_node_find(a->t, path, plen);
	if (!n) {
		*zerr = ZK_NONODE;
		return 0;
	}
	int32_t cv = b->parent_cversion == -1 ? n->cversion + 1 : b->parent_cversion;
	if (cv > n->cversion) {
		zk_digest_pre(a->t, n);
		n->cversion = cv;
		n->pzxid = a->zxid;
		zk_digest_post(a->t, n);
	}
	a->t->stats.cversion_fixups++;
	return 0;
}

static int process(struct apply *a, const struct zk_txn_body *b, int32_t *zerr);

static int process_multi(struct apply *a, const struct zk_txn_body *b, int32_t *zerr)
{
	struct jute_reader r;
	jute_reader_init(&r, b->ops.data, (size_t)b->ops.len);
	int32_t count = jute_read_int(&r);
	size_t first = r.pos;
	bool failed = false;
	for (int32_t i = 0; i < count; i++) {
		if (jute_read_int(&r) == ZK_OP_ERROR)
			failed = true;
		(void)jute_read_buffer(&r);
	}
	r.pos = first;
	for (int32_t i = 0; i < count; i++) {
		int32_t type = jute_read_int(&r);
		struct jute_bytes data = jute_read_buffer(&r);
		struct zk_txn_body sub;
		char why[160];
		int rc = zk_txn_sub_decode(type, data, &sub, why, sizeof why);
		if (rc < 0) {
			/* ZooKeeper's IOException: the rest of the multi is not applied. */
			a->t->stats.multi_stopped++;
			fprintf(stderr, "ringkeeper-migrate: warning: txn 0x%llx: %s; ZooKeeper stops this multi there, "
				"and so does the conversion\n",
				(unsigned long long)a->zxid, why);
			return 0;
		}
		if (failed && type != ZK_OP_ERROR)
			continue; /* turned into an error sub-txn: nothing happens */
		int32_t sub_err = ZK_OK;
		rc = process(a, &sub, &sub_err);
		if (rc < 0)
			return rc;
		if (sub_err != ZK_OK && *zerr == ZK_OK)
			*zerr = sub_err;
	}
	return 0;
}

/* DataTree.processTxn for one record (top-level or a multi's sub-txn). */
static int process(struct apply *a, const struct zk_txn_body *b, int32_t *zerr)
{
	int rc = 0;
	*zerr = ZK_OK;
	switch (b->type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
		rc = create_node(a, b, b->ephemeral ? a->client_id : 0, zerr);
		break;
	case ZK_OP_CREATE_TTL:
		if (b->ttl <= 0 || b->ttl > TTL_MAX)
			return refuse(a, "a createTTL with a TTL ZooKeeper refuses", (const char *)b->path.data,
				      (size_t)b->path.len);
		rc = create_node(a, b, (int64_t)((uint64_t)ZK_EPHEMERAL_OWNER_TTL_MASK | (uint64_t)b->ttl), zerr);
		break;
	case ZK_OP_CREATE_CONTAINER:
		rc = create_node(a, b, ZK_EPHEMERAL_OWNER_CONTAINER, zerr);
		break;
	case ZK_OP_DELETE:
	case ZK_OP_DELETE_CONTAINER:
		rc = delete_node(a, (const char *)b->path.data, (size_t)(b->path.len > 0 ? b->path.len : 0), zerr);
		break;
	case ZK_OP_SET_DATA:
	case ZK_OP_RECONFIG:
		rc = set_data(a, b, zerr);
		break;
	case ZK_OP_SET_ACL:
		rc = set_acl(a, b, zerr);
		break;
	case ZK_OP_CLOSE_SESSION:
		rc = close_session(a, b);
		break;
	case ZK_OP_ERROR:
		*zerr = b->err;
		break;
	case ZK_OP_MULTI:
		rc = process_multi(a, b, zerr);
		break;
	case ZK_OP_CREATE_SESSION:
	case ZK_OP_CHECK:
		break;
	default:
		return refuse(a, "a txn type the replay does not know", NULL, 0);
	}
	if (rc < 0)
		return rc;
	if (b->type == ZK_OP_CREATE && *zerr == ZK_NODEEXISTS)
		rc = cversion_fixup(a, b, zerr);
	if (b->type != ZK_OP_MULTI && (*zerr == ZK_NONODE || *zerr == ZK_NODEEXISTS))
		a->t->stats.errors_ignored++;
	return rc;
}

int zk_tree_apply(struct zk_tree *t, const struct zk_txn *txn, char *why, size_t why_size)
{
	struct apply a = {
		.t = t,
		.client_id = txn->hdr.client_id,
		.zxid = txn->hdr.zxid,
		.time = txn->hdr.time,
		.why = why,
		.why_size = why_size,
	};
	if (txn->hdr.type == ZK_OP_CREATE_SESSION) {
		int rc = zk_tree_load_session(t, txn->hdr.client_id, txn->body.timeout_ms);
		if (rc < 0)
			return rc;
	}
	int32_t zerr;
	int rc = process(&a, &txn->body, &zerr);
	if (rc < 0)
		return rc;
	t->stats.txns++;
	t->stats.by_type[zk_tree_type_slot(txn->hdr.type)]++;
	if (txn->hdr.zxid > t->last_zxid)
		t->last_zxid = txn->hdr.zxid;
	return 0;
}

int zk_tree_close_dead_owners(struct zk_tree *t, int64_t zxid, char *why, size_t why_size)
{
	struct apply a = { .t = t, .zxid = zxid, .why = why, .why_size = why_size };
	for (size_t i = 0; i <= t->owner_mask; i++) {
		for (struct zk_owner *o = t->owner_buckets[i]; o; o = o->next) {
			if (o->session || o->eph_count == 0)
				continue;
			a.client_id = o->id;
			t->stats.dead_owner_nodes += o->eph_count;
			struct zk_txn_body none = { .type = ZK_OP_CLOSE_SESSION };
			int rc = close_session(&a, &none);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
