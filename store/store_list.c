/*
 * store_list.c — ClickHouse Keeper's list extensions, served through store_read():
 *
 *   FilteredListWithStatsAndData (506)
 *     request  {ustring path; bool watch; byte list_type; bool with_stat; bool with_data}
 *     response {vector<ustring> names; Stat stat (of path);
 *               vector<Stat> stats; vector<buffer> data}
 *     stats holds one Stat per listed child when with_stat, else it is empty (count 0);
 *     data likewise with with_data. list_type: 1 persistent only, 2 ephemeral only,
 *     any other value lists every child (ClickHouse reads the byte unchecked and only
 *     1 and 2 leave children out).
 *   ListRecursive (507)
 *     request  {ustring path; int children_nodes_limit (read as unsigned)}
 *     response {vector<ustring> paths}: full paths of the descendants of path (path
 *     itself excluded), breadth first, each node's children in getChildren order.
 *
 * Semantics are ClickHouse Keeper's (src/Coordination/KeeperStorage.cpp, processLocal
 * for ZooKeeperListRequest and ZooKeeperListRecursiveRequest):
 *   - no node: NONODE; no READ on path: NOAUTH.
 *   - 506 with neither with_stat nor with_data and list_type 0 (all) lists the names
 *     without looking at the children (existence is not secret). Otherwise every child
 *     is checked for READ before the filter is applied: one unreadable child makes the
 *     whole request NOAUTH (stats, data and the ephemeral flag are secret).
 *   - 506's watch flag registers a child watch on path (as getChildren / FilteredList),
 *     only when the answer is OK.
 *   - 507 skips unreadable children, and with them their subtrees; it stops with OK
 *     and the paths gathered so far once it holds children_nodes_limit of them (a
 *     limit of 0 answers an empty list). No watch.
 * Both lock every shard (in order) for the walk, so the answer is one consistent
 * snapshot; 506 takes the mutable fields (data, Stat, ACL) of children in other shards.
 */
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "store/store_impl.h"

struct list_req {
	int32_t type;
	struct jute_bytes path;
	bool watch;
	uint8_t list_type;
	bool with_stat;
	bool with_data;
	uint32_t limit;
};

bool store_list_op(int32_t opcode)
{
	return opcode == ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA || opcode == ZK_OP_LIST_RECURSIVE;
}

static bool list_decode(struct jute_reader *r, int32_t opcode, struct list_req *rq)
{
	memset(rq, 0, sizeof *rq);
	rq->type = opcode;
	rq->path = jute_read_string(r);
	if (opcode == ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA) {
		rq->watch = jute_read_bool(r);
		rq->list_type = jute_read_byte(r);
		rq->with_stat = jute_read_bool(r);
		rq->with_data = jute_read_bool(r);
	} else {
		rq->limit = (uint32_t)jute_read_int(r);
	}
	return jute_reader_ok(r);
}

bool store_list_decode(struct jute_reader *r, int32_t opcode)
{
	struct list_req rq;
	return store_list_op(opcode) && list_decode(r, opcode, &rq) && rq.path.len >= 0;
}

/* ClickHouse's filter (isEphemeral: owned by a session); unknown types filter nothing. */
static bool list_type_passes(const struct znode *c, uint8_t list_type)
{
	bool eph = c->kind == ZNODE_EPHEMERAL;
	return !((list_type == 1 && eph) || (list_type == 2 && !eph));
}

static void write_node_stat(struct store *s, struct jute_writer *out, const struct znode *n)
{
	struct zk_stat st;
	store_node_stat(s, n, &st);
	jute_write_stat(out, &st);
}

/* All shards locked. */
static int32_t list_with_stats(struct store *s, uint64_t watcher, const struct store_auth *auth,
			       const struct list_req *rq, const char *path, size_t len, uint64_t hash,
			       struct jute_writer *out)
{
	const struct znode *n = store_node_find(s, path, len, hash);
	if (!n)
		return ZK_NONODE;
	if (!store_acl_permits(store_node_acl(s, n), ZK_PERM_READ, auth))
		return ZK_NOAUTH;
	bool plain = !rq->with_stat && !rq->with_data && rq->list_type == 0;
	uint32_t listed = 0, child_count = store_node_child_count(n);
	const struct znode_dir *d = store_dir_of(n);
	for (uint32_t i = 0; i < child_count; i++) {
		const struct znode *c = store_dir_child(d, i);
		if (plain) {
			listed++;
			continue;
		}
		if (!store_acl_permits(store_node_acl(s, c), ZK_PERM_READ, auth))
			return ZK_NOAUTH;
		listed += list_type_passes(c, rq->list_type);
	}
	if (rq->watch && store_watch_add(s, path, len, hash, watcher, WATCH_CHILD, auth, NULL) != 0)
		return ZK_SYSTEMERROR; /* per-watcher watch limit (or out of memory) */
	jute_write_int(out, (int32_t)listed);
	size_t name_off = store_node_child_name_off(n);
	for (uint32_t i = 0; i < child_count; i++) {
		const struct znode *c = store_dir_child(d, i);
		if (plain || list_type_passes(c, rq->list_type))
			jute_write_string(out, c->path + name_off, (int32_t)(c->path_len - name_off));
	}
	write_node_stat(s, out, n);
	jute_write_int(out, rq->with_stat ? (int32_t)listed : 0);
	for (uint32_t i = 0; rq->with_stat && i < child_count; i++)
		if (list_type_passes(store_dir_child(d, i), rq->list_type))
			write_node_stat(s, out, store_dir_child(d, i));
	jute_write_int(out, rq->with_data ? (int32_t)listed : 0);
	for (uint32_t i = 0; rq->with_data && i < child_count; i++) {
		const struct znode *c = store_dir_child(d, i);
		if (list_type_passes(c, rq->list_type))
			jute_write_buffer(out, store_node_data(c), c->data_len);
	}
	return ZK_OK;
}

/* All shards locked. Breadth first over a queue of nodes; the paths are the nodes'. */
static int32_t list_recursive(struct store *s, const struct store_auth *auth, const struct list_req *rq,
			      const char *path, size_t len, uint64_t hash, struct jute_writer *out)
{
	const struct znode *n = store_node_find(s, path, len, hash);
	if (!n)
		return ZK_NONODE;
	if (!store_acl_permits(store_node_acl(s, n), ZK_PERM_READ, auth))
		return ZK_NOAUTH;
	size_t cap = 64, count = 0;
	const struct znode **queue = malloc(cap * sizeof *queue);
	if (!queue)
		return ZK_SYSTEMERROR;
	size_t count_at = out->len;
	jute_write_int(out, 0);
	bool full = rq->limit == 0;
	/* queue[-1] is n: walk n's children, then each queued node's in turn. */
	for (size_t next = 0; !full; next++) {
		const struct znode *x = next == 0 ? n : queue[next - 1];
		for (uint32_t i = 0; i < store_node_child_count(x); i++) {
			const struct znode *c = store_dir_child(store_dir_of(x), i);
			if (!store_acl_permits(store_node_acl(s, c), ZK_PERM_READ, auth))
				continue;
			if (count >= rq->limit) {
				full = true;
				break;
			}
			if (count == cap) {
				const struct znode **grown = realloc(queue, 2 * cap * sizeof *queue);
				if (!grown) {
					free(queue);
					return ZK_SYSTEMERROR;
				}
				queue = grown;
				cap *= 2;
			}
			queue[count++] = c;
			jute_write_string(out, c->path, (int32_t)c->path_len);
		}
		if (next == count)
			break;
	}
	free(queue);
	jute_patch_int(out, count_at, count > INT32_MAX ? INT32_MAX : (int32_t)count);
	return ZK_OK;
}

int32_t store_list_read(struct store *s, uint64_t watcher, const struct store_auth *auth, int32_t opcode,
			struct jute_reader *r, bool watch_allowed, struct jute_writer *out, int64_t *seen_zxid)
{
	struct list_req rq;
	if (!store_list_op(opcode))
		return ZK_UNIMPLEMENTED;
	if (!list_decode(r, opcode, &rq))
		return ZK_MARSHALLINGERROR;
	if (rq.path.len < 0)
		return ZK_MARSHALLINGERROR; /* null path, as store_read's other ops */
	if (rq.path.len == 0)
		return ZK_NONODE; /* no node has an empty path; nothing to watch */
	rq.watch = rq.watch && watch_allowed;
	const char *path = (const char *)rq.path.data;
	size_t len = (size_t)rq.path.len;
	uint64_t hash = store_hash_bytes(path, len);
	size_t mark = out->len;
	store_lock_all(s);
	int32_t rc = opcode == ZK_OP_LIST_RECURSIVE ? list_recursive(s, auth, &rq, path, len, hash, out)
						    : list_with_stats(s, watcher, auth, &rq, path, len, hash, out);
	store_seen_note(s, seen_zxid);
	store_unlock_all(s);
	if (rc != ZK_OK)
		out->len = mark;
	return rc;
}
