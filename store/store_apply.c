/*
 * store_apply.c — store_apply(): every replicated write; the ops are in
 * store_apply_ops.c, the quota rules in store_apply_quota.c (store_apply_impl.h).
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
#include "store/store_apply_impl.h"

/* ---------------------------------------------------------------- helpers */

void apply_out_of_memory(void)
{
	fprintf(stderr, "store: out of memory while applying a txn\n");
	abort();
}

void *apply_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q && n)
		apply_out_of_memory();
	return q;
}

/* ---------------------------------------------------------------- requests */

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
	rq->acls = keep ? apply_xrealloc(NULL, (size_t)keep * sizeof *rq->acls) : NULL;
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

void apply_ctx_lock(struct apply_ctx *c, uint64_t mask)
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

struct undo *apply_undo_push(struct apply_ctx *c, enum undo_kind kind, struct znode *n)
{
	if (c->undo_count == c->undo_cap) {
		c->undo_cap = c->undo_cap ? c->undo_cap * 2 : 8;
		c->undo = apply_xrealloc(c->undo, c->undo_cap * sizeof *c->undo);
	}
	struct undo *u = &c->undo[c->undo_count++];
	memset(u, 0, sizeof *u);
	u->kind = kind;
	u->node = n;
	return u;
}

void apply_trigger_push_hashed(struct apply_ctx *c, const struct znode *n, uint64_t hash, int32_t type)
{
	if (c->trig_count == c->trig_cap) {
		c->trig_cap = c->trig_cap ? c->trig_cap * 2 : 8;
		c->trig = apply_xrealloc(c->trig, c->trig_cap * sizeof *c->trig);
	}
	c->trig[c->trig_count++] = (struct trigger){ n->path, n->path_len, hash, type, store_node_acl(c->s, n) };
}

/* The end of a txn: the copies of the limits and stats nodes' data it noted go. */
static void quota_nodes_forget(struct quota_txn_log *q)
{
	for (size_t i = 0; i < q->node_count; i++)
		free((void *)q->nodes[i].data);
	q->node_count = 0;
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
		if (c->undo[i].kind == UNDO_DELETE)
			store_node_children_trim(c->undo[i].parent);
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
			store_node_free(s, u->node);
			break;
		case UNDO_SET_DATA:
			free(u->old_data);
			break;
		case UNDO_SET_ACL:
			store_acl_release(s, u->old_acl_id);
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
		quota_nodes_forget(q);
	}
}

/* n's value becomes data[0..len) (len -1: null), the store's byte count with it. */
static void data_set(struct store *s, struct znode *n, const uint8_t *data, int32_t len)
{
	int64_t diff = (int64_t)(len > 0 ? len : 0) - (n->data_len > 0 ? n->data_len : 0);
	if (diff) /* a locked add costs; most setData keep the size */
		atomic_fetch_add_explicit(&s->data_bytes, (uint64_t)diff, memory_order_relaxed);
	uint8_t *displaced;
	if (store_node_data_set(n, data, len, &displaced) != 0)
		apply_out_of_memory();
	/* No reader can reach the old block: its shard is locked and n no longer points
	 * to it (a snapshot kept its own copy, store_snap_preserve). */
	free(displaced);
}

struct undo *apply_data_replace(struct apply_ctx *c, struct znode *n, enum undo_kind kind, const uint8_t *data,
				int32_t len)
{
	struct undo *u = apply_undo_push(c, kind, n);
	u->old_data_len = n->data_len;
	if (c->in_multi && n->data_len > 0) {
		u->old_data = apply_xrealloc(NULL, (size_t)n->data_len);
		memcpy(u->old_data, store_node_data(n), (size_t)n->data_len);
	}
	data_set(c->s, n, data, len);
	return u;
}

/* Puts a node's data back as an undo entry saved it (only a multi rolls back). */
static void undo_restore_data(struct store *s, struct znode *n, struct undo *u)
{
	assert(u->old_data || u->old_data_len <= 0);
	data_set(s, n, u->old_data, u->old_data_len);
	free(u->old_data);
	u->old_data = NULL;
}

/* Locks held. Reverts every mutation of this context, newest first. */
static void ctx_rollback(struct apply_ctx *c)
{
	struct store *s = c->s;
	for (size_t i = c->undo_count; i-- > 0;) {
		struct undo *u = &c->undo[i];
		struct znode *n = u->node;
		switch (u->kind) {
		case UNDO_CREATE: {
			struct znode *p = u->parent;
			if (n->kind == ZNODE_EPHEMERAL)
				store_session_ephemeral_remove(s, store_session_find(s, store_node_owner(n)), n);
			store_node_unlink(s, p, n);
			store_dir_of(p)->cversion_stored = u->old_cversion_stored;
			store_dir_of(p)->pzxid = u->old_pzxid;
			store_node_free(s, n);
			break;
		}
		case UNDO_DELETE: {
			struct znode *p = u->parent;
			/* Unlink left the room (no shrink before commit), so these cannot fail. */
			int rc = store_node_children_reserve(p);
			assert(rc == 0);
			(void)rc;
			store_node_link(s, p, n, store_node_hash(n));
			store_dir_of(p)->pzxid = u->old_pzxid;
			store_dir_of(p)->cversion_stored = u->old_cversion_stored;
			if (n->kind == ZNODE_EPHEMERAL) {
				struct session *se = store_session_find(s, store_node_owner(n));
				if (se && store_session_ephemeral_add(s, se, n) != 0)
					abort();
			}
			break;
		}
		case UNDO_SET_DATA:
			undo_restore_data(s, n, u);
			n->version = u->old_version;
			store_node_set_mzxid(n, u->old_mzxid);
			store_node_set_mtime(n, u->old_mtime);
			break;
		case UNDO_SET_ACL:
			store_acl_release(s, n->acl_id);
			n->acl_id = u->old_acl_id;
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
		quota_nodes_forget(q);
	}
}

struct znode *apply_find(struct store *s, const char *path, size_t len)
{
	return store_node_find(s, path, len, store_hash_bytes(path, len));
}

void apply_write_stat(struct store *s, struct jute_writer *out, const struct znode *n)
{
	struct zk_stat st;
	store_node_stat(s, n, &st);
	jute_write_stat(out, &st);
}

/* ---------------------------------------------------------------- multi, sessions, store_apply */

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
		return apply_multi_create_has_stat(rq->flags) ? ZK_OP_CREATE2 : ZK_OP_CREATE;
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
			int32_t rc = apply_op_write(c, &rq, out);
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
		apply_delete_node(c, se->ephemerals[se->ephemeral_count - 1], NULL);
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
	rc = apply_op_write(&c, &rq, out);
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
