/*
 * store_read.c — store_read(): the read ops, run on worker threads concurrently with
 * the applier and with each other.
 *
 * Each read locks the shard of the path it reads (getAllChildrenNumber locks all
 * shards, in order), so it sees a node and its children array either before or after
 * a txn, never in between. Watch registration happens under the same lock, so a watch
 * set by a read cannot miss a change that the read did not see.
 *
 * Requests are decoded completely before anything is looked up or registered (a
 * malformed multiRead registers nothing); trailing bytes are ignored as ZooKeeper does.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "store/store_impl.h"

struct read_req {
	int32_t type;
	struct jute_bytes path;
	bool watch;
	uint8_t list_type; /* FilteredList: 0 all, 1 persistent only, 2 ephemeral only */
};

static bool read_req_decode(struct jute_reader *r, int32_t type, struct read_req *rq)
{
	memset(rq, 0, sizeof *rq);
	rq->type = type;
	switch (type) {
	case ZK_OP_EXISTS:
	case ZK_OP_GET_DATA:
	case ZK_OP_GET_CHILDREN:
	case ZK_OP_GET_CHILDREN2:
		rq->path = jute_read_string(r);
		rq->watch = jute_read_bool(r);
		return true;
	case ZK_OP_FILTERED_LIST:
		rq->path = jute_read_string(r);
		rq->watch = jute_read_bool(r);
		rq->list_type = jute_read_byte(r);
		return true;
	case ZK_OP_GET_ACL:
	case ZK_OP_GET_ALL_CHILDREN_NUMBER:
	case ZK_OP_GET_EPHEMERALS:
		rq->path = jute_read_string(r);
		return true;
	default:
		return false;
	}
}

static void write_stat(struct store *s, struct jute_writer *out, const struct znode *n)
{
	struct zk_stat st;
	store_node_stat(s, n, &st);
	jute_write_stat(out, &st);
}

static bool child_listed(const struct znode *child, uint8_t list_type)
{
	/* ClickHouse's filter: "ephemeral" means owned by a session. */
	bool eph = child->kind == ZNODE_EPHEMERAL;
	return list_type == 0 || (list_type == 1 && !eph) || (list_type == 2 && eph);
}

static int32_t read_children(struct store *s, uint64_t watcher, const struct store_auth *auth,
			     const struct read_req *rq, const char *path, size_t len, uint64_t hash,
			     struct jute_writer *out, int64_t *seen_zxid)
{
	if (rq->type == ZK_OP_FILTERED_LIST && rq->list_type > 2)
		return ZK_BADARGUMENTS;
	unsigned si = store_shard_of(hash);
	struct shard *sh = &s->shards[si];
	int32_t rc = ZK_OK;
	pthread_mutex_lock(&sh->lock);
	struct znode *n = store_node_find(s, path, len, hash);
	if (!n) {
		rc = ZK_NONODE;
	} else if (!store_acl_permits(store_node_acl(s, n), ZK_PERM_READ, auth)) {
		rc = ZK_NOAUTH;
	} else if (rq->watch && store_watch_add(s, path, len, hash, watcher, WATCH_CHILD, auth, NULL) != 0) {
		rc = ZK_SYSTEMERROR; /* per-watcher watch limit (or out of memory) */
	} else {
		uint8_t list_type = rq->type == ZK_OP_FILTERED_LIST ? rq->list_type : 0;
		size_t count_at = out->len;
		uint32_t child_count = store_node_child_count(n);
		const struct znode_dir *d = store_dir_of(n);
		size_t name_off = store_node_child_name_off(n);
		jute_write_int(out, (int32_t)child_count);
		int32_t listed = 0;
		for (uint32_t i = 0; i < child_count; i++) {
			const struct znode *c = store_dir_child(d, i);
			if (!child_listed(c, list_type))
				continue;
			jute_write_string(out, c->path + name_off, (int32_t)(c->path_len - name_off));
			listed++;
		}
		jute_patch_int(out, count_at, listed);
		if (rq->type != ZK_OP_GET_CHILDREN)
			write_stat(s, out, n);
	}
	store_seen_note(s, seen_zxid);
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

/* Counts all descendants of n with an explicit stack (no recursion on client input). */
static int64_t count_descendants(const struct znode *n)
{
	size_t cap = 64, top = 0;
	const struct znode **stack = malloc(cap * sizeof *stack);
	if (!stack)
		return -1;
	int64_t count = 0;
	stack[top++] = n;
	while (top) {
		const struct znode *x = stack[--top];
		uint32_t children = store_node_child_count(x);
		count += children;
		if (top + children > cap) {
			while (top + children > cap)
				cap *= 2;
			const struct znode **grown = realloc(stack, cap * sizeof *stack);
			if (!grown) {
				free(stack);
				return -1;
			}
			stack = grown;
		}
		for (uint32_t i = 0; i < children; i++)
			if (store_node_child_count(store_dir_child(store_dir_of(x), i)))
				stack[top++] = store_dir_child(store_dir_of(x), i);
	}
	free(stack);
	return count;
}

static int32_t read_ephemerals(struct store *s, int64_t session_id, const struct read_req *rq,
			       struct jute_writer *out)
{
	const char *prefix = (const char *)rq->path.data;
	size_t plen = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	/* Java: prefix null, blank after trim(), or "/" after trim() means everything. */
	size_t b = 0, e = plen;
	while (b < e && (uint8_t)prefix[b] <= ' ')
		b++;
	while (e > b && (uint8_t)prefix[e - 1] <= ' ')
		e--;
	bool all = e == b || (e - b == 1 && prefix[b] == '/');
	pthread_rwlock_rdlock(&s->sessions.lock);
	struct session *se = store_session_find(s, session_id);
	size_t count_at = out->len;
	int32_t listed = 0;
	jute_write_int(out, 0);
	for (uint32_t i = 0; se && i < se->ephemeral_count; i++) {
		const struct znode *n = se->ephemerals[i];
		if (!all && (n->path_len < plen || memcmp(n->path, prefix, plen) != 0))
			continue;
		jute_write_string(out, n->path, (int32_t)n->path_len);
		listed++;
	}
	jute_patch_int(out, count_at, listed);
	pthread_rwlock_unlock(&s->sessions.lock);
	return ZK_OK;
}

static int32_t read_exec(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
			 const struct read_req *rq, struct jute_writer *out, int64_t *seen_zxid)
{
	if (rq->type == ZK_OP_GET_EPHEMERALS)
		return read_ephemerals(s, session_id, rq, out); /* a null prefix lists all */
	/* A null path: ZooKeeper's lookup throws NPE, answered MARSHALLINGERROR. */
	if (rq->path.len < 0)
		return ZK_MARSHALLINGERROR;
	const char *path = (const char *)rq->path.data;
	size_t len = rq->path.len > 0 ? (size_t)rq->path.len : 0;
	if (rq->type == ZK_OP_EXISTS && len && memchr(path, '\0', len))
		return ZK_BADARGUMENTS;
	if (len == 0)
		return ZK_NONODE; /* no node has an empty (or null) path; nothing to watch */
	uint64_t hash = store_hash_bytes(path, len);
	unsigned si = store_shard_of(hash);
	struct shard *sh = &s->shards[si];
	int32_t rc = ZK_OK;
	switch (rq->type) {
	case ZK_OP_GET_CHILDREN:
	case ZK_OP_GET_CHILDREN2:
	case ZK_OP_FILTERED_LIST:
		return read_children(s, watcher, auth, rq, path, len, hash, out, seen_zxid);
	case ZK_OP_GET_ALL_CHILDREN_NUMBER: {
		store_lock_all(s);
		struct znode *n = store_node_find(s, path, len, hash);
		int64_t count = 0;
		if (!n)
			rc = ZK_NONODE;
		else if (!store_acl_permits(store_node_acl(s, n), ZK_PERM_READ, auth))
			rc = ZK_NOAUTH;
		else if ((count = count_descendants(n)) < 0)
			rc = ZK_SYSTEMERROR;
		else
			jute_write_int(out, count > INT32_MAX ? INT32_MAX : (int32_t)count);
		store_seen_note(s, seen_zxid);
		store_unlock_all(s);
		return rc;
	}
	default:
		break;
	}
	pthread_mutex_lock(&sh->lock);
	struct znode *n = store_node_find(s, path, len, hash);
	switch (rq->type) {
	case ZK_OP_EXISTS:
		/*
		 * ZooKeeper 3.8.0 checks no permission for exists: a caller without READ
		 * still gets the Stat (and the watch). The watch is set whether or not the
		 * node exists.
		 */
		if (rq->watch && store_watch_add(s, path, len, hash, watcher, WATCH_DATA, auth, NULL) != 0)
			rc = ZK_SYSTEMERROR; /* per-watcher watch limit (or out of memory) */
		else if (!n)
			rc = ZK_NONODE;
		else
			write_stat(s, out, n);
		break;
	case ZK_OP_GET_DATA:
		if (!n) {
			rc = ZK_NONODE;
		} else if (!store_acl_permits(store_node_acl(s, n), ZK_PERM_READ, auth)) {
			rc = ZK_NOAUTH;
		} else if (rq->watch && store_watch_add(s, path, len, hash, watcher, WATCH_DATA, auth, NULL) != 0) {
			rc = ZK_SYSTEMERROR; /* per-watcher watch limit (or out of memory) */
		} else {
			jute_write_buffer(out, store_node_data(n), n->data_len);
			write_stat(s, out, n);
		}
		break;
	case ZK_OP_GET_ACL:
		if (!n) {
			rc = ZK_NONODE;
		} else if (!store_acl_permits(store_node_acl(s, n), ZK_PERM_READ | ZK_PERM_ADMIN, auth)) {
			rc = ZK_NOAUTH;
		} else {
			const struct acl_list *acl = store_node_acl(s, n);
			store_acl_write(out, acl, !store_acl_permits(acl, ZK_PERM_ADMIN, auth));
			write_stat(s, out, n);
		}
		break;
	default:
		assert(!"unhandled read op");
		rc = ZK_UNIMPLEMENTED;
	}
	store_seen_note(s, seen_zxid);
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

int32_t store_read_one(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
		       int32_t opcode, struct jute_reader *r, struct jute_writer *out, int64_t *seen_zxid)
{
	struct read_req rq;
	if (store_list_op(opcode)) /* 506, 507: store_list.c */
		return store_list_read(s, watcher, auth, opcode, r, true, out, seen_zxid);
	if (!read_req_decode(r, opcode, &rq))
		return ZK_UNIMPLEMENTED;
	if (!jute_reader_ok(r))
		return ZK_MARSHALLINGERROR;
	return read_exec(s, session_id, watcher, auth, &rq, out, seen_zxid);
}

static bool multi_read_op_allowed(int32_t type)
{
	/* ZooKeeper allows getChildren and getData; ClickHouse also sends exists and list. */
	return type == ZK_OP_GET_DATA || type == ZK_OP_GET_CHILDREN || type == ZK_OP_EXISTS ||
	       type == ZK_OP_FILTERED_LIST;
}

static int32_t read_multi(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
			  const uint8_t *body, size_t body_len, struct jute_writer *out, int64_t *seen_zxid)
{
	struct jute_reader r;
	jute_reader_init(&r, body, body_len);
	/* Pass 1: decode everything; pass 2: run each op on its own (not atomic). */
	size_t ops = 0;
	for (;;) {
		int32_t type = jute_read_int(&r);
		bool done = jute_read_bool(&r);
		jute_read_int(&r);
		if (!jute_reader_ok(&r))
			return ZK_MARSHALLINGERROR;
		if (done)
			break;
		if (store_list_op(type) && ++ops <= STORE_MULTI_OPS_MAX && store_list_decode(&r, type))
			continue;
		struct read_req rq;
		if (!multi_read_op_allowed(type) || ++ops > STORE_MULTI_OPS_MAX || !read_req_decode(&r, type, &rq) ||
		    !jute_reader_ok(&r) || rq.path.len < 0)
			return ZK_MARSHALLINGERROR; /* a null path's NPE fails the whole request */
	}
	jute_reader_init(&r, body, body_len);
	for (size_t i = 0; i < ops; i++) {
		int32_t type = jute_read_int(&r);
		jute_read_bool(&r);
		jute_read_int(&r);
		struct read_req rq = { .type = type };
		bool list = store_list_op(type);
		if (!list)
			read_req_decode(&r, type, &rq);
		/* ZooKeeper 3.8 registers no watch from a multiRead sub-op (and we do not
		 * advertise ClickHouse's MULTI_WATCHES, which would ask for them). */
		rq.watch = false;
		size_t mark = out->len;
		jute_write_int(out, type);
		jute_write_bool(out, false);
		jute_write_int(out, 0);
		int32_t rc = list ? store_list_read(s, watcher, auth, type, &r, false, out, seen_zxid)
				  : read_exec(s, session_id, watcher, auth, &rq, out, seen_zxid);
		if (rc != ZK_OK) {
			out->len = mark;
			jute_write_int(out, ZK_OP_ERROR);
			jute_write_bool(out, false);
			jute_write_int(out, rc);
			jute_write_int(out, rc);
		}
	}
	assert(jute_reader_ok(&r));
	jute_write_int(out, -1);
	jute_write_bool(out, true);
	jute_write_int(out, -1);
	return ZK_OK;
}

int32_t store_read(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
		   int32_t opcode, const uint8_t *body, size_t body_len, struct jute_writer *out, int64_t *seen_zxid)
{
	size_t mark = out->len;
	int32_t rc;
	int64_t seen = INT64_MIN;
	if (opcode == ZK_OP_MULTI_READ) {
		rc = read_multi(s, session_id, watcher, auth, body, body_len, out, &seen);
	} else {
		struct jute_reader r;
		jute_reader_init(&r, body, body_len);
		rc = store_read_one(s, session_id, watcher, auth, opcode, &r, out, &seen);
	}
	if (rc != ZK_OK)
		out->len = mark;
	/* A read that locked nothing (bad request, empty path, getEphemerals) set no
	 * watch and reflects no node: the store's current zxid describes it. */
	if (seen == INT64_MIN)
		store_seen_note(s, &seen);
	if (seen_zxid)
		*seen_zxid = seen;
	return rc;
}
