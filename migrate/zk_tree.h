/*
 * zk_tree.h — a model of ZooKeeper 3.8's DataTree, rebuilt the way ZooKeeper rebuilds
 * it at start: a snapshot is loaded (nodes, sessions, the ACL cache), the quota paths
 * are set up from /zookeeper/quota (DataTree.setupQuota), then every logged txn after
 * the snapshot is applied as DataTree.processTxn applies it, ignoring the errors
 * ZooKeeper ignores (a fuzzy snapshot may hold some of those txns already).
 *
 * What is modelled exactly, because it shows in what clients see
 *   - StatPersisted as stored: cversion counts child creates (clients see
 *     2 * cversion - numChildren), a create takes the parent's cversion from the txn
 *     (parentCVersion; -1 = the parent's + 1) and moves it and pzxid only forward; a
 *     delete moves the parent's pzxid forward even when the child is gone already.
 *   - The NODEEXISTS fix-up of a plain create (setCversionPzxid), also inside a multi.
 *   - multi: when any sub-txn is an error none is applied; a sub-txn ZooKeeper cannot
 *     decode stops the rest of the multi.
 *   - closeSession deletes the txn's paths2Delete, then the session's other ephemerals.
 *   - Quotas: the set of quota paths (PathTrie: components, addPath on a
 *     zookeeper_limits create, deletePath, which drops the paths below too, on its
 *     delete) and the zookeeper_stats text (StatsTrack) kept current on every create,
 *     delete and setData under the nearest quota path, without a version change.
 *   - Ephemeral kinds from ephemeralOwner (EphemeralType with extendedTypesEnabled):
 *     0x8000000000000000 a container, 0xFF0000xxxxxxxxxx a TTL node (ttl = the low 40
 *     bits), any other non-zero value a session's ephemeral.
 *   - The tree digest (DigestCalculator, version 2): the sum of CRC-32(path, data,
 *     StatPersisted) over every node outside /zookeeper/ (the root as ""), so the
 *     model can be checked against the digests ZooKeeper wrote.
 * After the log, the ephemerals of owners that are no session are deleted at the last
 * zxid, as ZooKeeperServer.loadData does at its next start (zk_tree_close_dead_owners).
 *
 * What ZooKeeper would die on (a RuntimeException in processTxn) is refused with a
 * reason instead: an invalid TTL or ephemeralOwner, a quota path of "" or "/", a
 * StatsTrack text it cannot parse, a delete of a node that still has children (a
 * ZooKeeper log never holds one; it means the files do not belong together).
 *
 * Memory: one allocation per node (header and path) plus its data; ACL lists are
 * interned (one copy per distinct list). No recursion anywhere: walks follow parent
 * and sibling pointers.
 *
 * Thread: none; a tree belongs to its creator.
 */
#ifndef RK_ZK_TREE_H
#define RK_ZK_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"
#include "migrate/zk_format.h"

/* An interned vector<ACL>, kept as its jute encoding (count, then the entries). */
struct zk_acl_list {
	struct zk_acl_list *next;
	uint64_t hash;
	uint32_t count;
	uint32_t len;
	uint8_t bytes[];
};

struct zk_owner;

struct zk_node {
	struct zk_node *hash_next;
	uint64_t hash;
	struct zk_node *parent; /* NULL for the root */
	struct zk_node *child_first, *sib_prev, *sib_next;
	uint32_t child_count;
	struct zk_owner *owner; /* a session's ephemeral: the owner it is listed under */
	struct zk_node *owner_prev, *owner_next;
	const struct zk_acl_list *acl;
	uint8_t *data; /* NULL when data_len <= 0 */
	int32_t data_len; /* -1: null */
	/* StatPersisted */
	int64_t czxid, mzxid, ctime, mtime, pzxid, ephemeral_owner;
	int32_t version, cversion, aversion;
	uint32_t path_len;
	char path[]; /* NUL-terminated; the root is "/" */
};

/* ZooKeeper's session table entry and its ephemerals map entry, by id. */
struct zk_owner {
	struct zk_owner *next;
	int64_t id;
	bool session; /* in the session table */
	int32_t timeout_ms;
	struct zk_node *eph_first;
	uint32_t eph_count;
};

enum zk_ephemeral_kind {
	ZK_EPHEMERAL_VOID,
	ZK_EPHEMERAL_NORMAL,
	ZK_EPHEMERAL_CONTAINER,
	ZK_EPHEMERAL_TTL,
	ZK_EPHEMERAL_INVALID, /* extended bits ZooKeeper does not know */
};

enum zk_ephemeral_kind zk_ephemeral_kind(int64_t owner);

#define ZK_TXN_TYPES_COUNTED 34 /* the logged types run from -11 to 21; one more for others */

struct zk_tree_stats {
	uint64_t txns;                 /* top-level txns applied */
	uint64_t by_type[ZK_TXN_TYPES_COUNTED]; /* index: zk_tree_type_slot() */
	uint64_t errors_ignored;       /* NONODE / NODEEXISTS met while replaying */
	uint64_t cversion_fixups;      /* setCversionPzxid after a NODEEXISTS create */
	uint64_t multi_stopped;        /* multis stopped at a sub-txn ZooKeeper cannot read */
	uint64_t dead_owner_nodes;     /* ephemerals deleted by zk_tree_close_dead_owners */
};

struct zk_tree;

struct zk_tree *zk_tree_new(void);
void zk_tree_free(struct zk_tree *t);

/* ------------------------------------------------------------ loading a snapshot */

/* Snapshot session {id, timeout}. 0 or -ENOMEM. */
int zk_tree_load_session(struct zk_tree *t, int64_t id, int32_t timeout_ms);
/* One ACL cache entry {id, vector<ACL> encoding}. 0, -ENOMEM, -EINVAL (an id twice). */
int zk_tree_load_acl(struct zk_tree *t, int64_t acl_id, struct jute_bytes acl, char *why, size_t why_size);

struct zk_stat_persisted {
	int64_t czxid, mzxid, ctime, mtime;
	int32_t version, cversion, aversion;
	int64_t ephemeral_owner;
	int64_t pzxid;
};

/*
 * One snapshot node, parents first ("" is the root). 0, -ENOMEM, or -EINVAL (no
 * parent, an unknown ACL id, a path twice, an invalid ephemeralOwner; why says which).
 */
int zk_tree_load_node(struct zk_tree *t, struct jute_bytes path, struct jute_bytes data, int64_t acl_id,
		      const struct zk_stat_persisted *st, char *why, size_t why_size);
/* The snapshot is in: set up the quotas, forget the ACL ids. 0, -EINVAL, -ENOMEM. */
int zk_tree_load_finish(struct zk_tree *t, int64_t snapshot_zxid, char *why, size_t why_size);

/* ------------------------------------------------------------ replaying txns */

/*
 * Applies one logged txn as ZooKeeper does when it replays its log (FileTxnSnapLog
 * .processTransaction). 0 (applied; errors ZooKeeper ignores are counted), -EBADMSG
 * (ZooKeeper would have died on it; why says why), -ENOMEM.
 */
int zk_tree_apply(struct zk_tree *t, const struct zk_txn *txn, char *why, size_t why_size);

/* Deletes the ephemerals whose owner is no session, at zxid (ZooKeeperServer.loadData). */
int zk_tree_close_dead_owners(struct zk_tree *t, int64_t zxid, char *why, size_t why_size);

/* ------------------------------------------------------------ reading */

uint64_t zk_tree_digest(const struct zk_tree *t);
int64_t zk_tree_last_zxid(const struct zk_tree *t);
uint64_t zk_tree_node_count(const struct zk_tree *t);
const struct zk_tree_stats *zk_tree_stats(const struct zk_tree *t);
const struct zk_node *zk_tree_root(const struct zk_tree *t);
/* The node at path (exact bytes; "" and "/" are the root), or NULL. */
const struct zk_node *zk_tree_find(const struct zk_tree *t, const char *path, size_t len);
/* Pre-order successor of n in the tree (children in no particular order), or NULL. */
const struct zk_node *zk_tree_next(const struct zk_node *n);
/* The Stat a client sees (DataNode.copyStat). */
void zk_node_stat(const struct zk_node *n, struct zk_stat *st);
/* Calls fn for each session in the session table. */
void zk_tree_sessions(const struct zk_tree *t, void (*fn)(void *ctx, const struct zk_owner *o), void *ctx);
uint64_t zk_tree_session_count(const struct zk_tree *t);
/* The quota paths (normalized: "/a/b"), sorted; valid until the tree changes. */
size_t zk_tree_quota_roots(const struct zk_tree *t, const char *const **roots);
/* Slot of a txn type in zk_tree_stats.by_type (the last slot: any other type). */
unsigned zk_tree_type_slot(int32_t type);

#endif
