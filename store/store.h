/*
 * store.h — the replicated state machine: data tree, sessions (with their
 * ephemerals), ACLs and watches.
 *
 * Threads
 *   - The applier (the raft thread today) is the only writer of the tree and the
 *     session table: store_apply() runs there, strictly in log order.
 *   - Worker threads call store_read(), store_set_watches(), store_add_watch(),
 *     store_remove_watches(), store_watcher_drop(),
 *     store_session_*() and store_stats() concurrently with the applier and each other;
 *     any thread may call store_reap_candidates() and the dumps
 *     (store_watches_by_watcher/_by_path, store_sessions_dump).
 *   The tree is a hash table of znodes split into STORE_SHARDS shards, each with its own
 *   lock and the watches of its paths. An operation touching several nodes locks their
 *   shards in ascending shard order, so no reader sees half of a create, delete or multi.
 *
 * Determinism
 *   store_apply() depends only on the store's state and the txn (zxid, time, session id,
 *   request bytes). Everything non-deterministic is decided by the leader and carried in
 *   the txn, so every replica computes identical state and identical replies.
 *
 * Watches
 *   A watcher is a connection, named by an opaque 64-bit id chosen by the caller. The
 *   store calls the event sink for every watch fired by an apply, while it still holds
 *   the locks of the changed nodes (so an event is queued before any reader can see the
 *   change). Standard watches are one-shot and deduplicated per (path, watcher, table).
 *   As ZooKeeper 3.8.0: there is a data table (exists/getData watches) and a child
 *   table (getChildren watches) holding one entry per (path, watcher) each, with a
 *   mode (standard, persistent, persistent-recursive); addWatch puts an entry in both
 *   tables, and a later registration replaces the mode of the entry it meets (so a
 *   getData watch on a path with a persistent watch makes the data part one-shot).
 *   Every event is delivered only to a watcher whose identities grant READ on the
 *   node the event is about (the created / changed / deleted node; for
 *   NodeChildrenChanged the parent), as ZooKeeper's CVE-2024-23944 fix does. The
 *   identities are those passed (auth) with the watcher's latest registration
 *   (store_read, store_add_watch_auth, store_set_watches_auth); a watcher that never
 *   passed any holds none (world:anyone only). Catch-up events of setWatches are not
 *   filtered.
 *
 * Quotas (ZooKeeper 3.8.0's, see store_apply.c "Quotas" for the exact rules)
 *   Clients create /zookeeper/quota<P>/zookeeper_limits (StatsTrack text, e.g. zkCli's
 *   "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1") and then
 *   /zookeeper/quota<P>/zookeeper_stats; the store makes P a quota root when the limits
 *   node is created, sets the stats node's data to "count=N,bytes=B" of P's subtree
 *   when the stats node is created, and keeps it current on every create, delete and
 *   setData under the nearest root (no version, mzxid or watch change, as ZooKeeper).
 *   With store_config.enforce_quota, hard limits (countHardLimit, byteHardLimit) fail
 *   creates and setData with ZK_QUOTAEXCEEDED; soft ones are counted only.
 */
#ifndef RK_STORE_H
#define RK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"

#define STORE_SHARDS 64
/* zxids (log indexes) a node can keep: below 2^47 (store_impl.h, a node's 48-bit
 * stamps). Past it the applier stops rather than keep a wrong zxid. */
#define STORE_ZXID_LIMIT ((int64_t)1 << 47)

struct store;

struct store_config {
	/* Data of /zookeeper/config (empty in standalone). A non-empty text is the
	 * ensemble's, as a ZooKeeper quorum peer writes it (version -1). */
	const char *config_text;
	/*
	 * ClickHouse Keeper's system nodes: /keeper, /keeper/api_version and
	 * /keeper/feature_flags exist (world-readable, listed by getChildren("/"), every
	 * write to the /keeper subtree answers BADARGUMENTS). Off (the zero value): they do
	 * not exist, reads give NONODE and /keeper is an ordinary path. The server turns
	 * it on by default.
	 */
	bool keeper_api;
	/*
	 * Watch registrations one watcher (connection) may hold, all kinds and paths
	 * together; 0 means STORE_WATCHES_PER_WATCHER_MAX. Past it a read with the watch
	 * flag answers ZK_SYSTEMERROR with no body and registers nothing, addWatch answers
	 * ZK_SYSTEMERROR, setWatches skips the path; each refusal counts in
	 * store_stats.watch_refused_count. Re-registering a watch already held never fails.
	 */
	uint32_t watches_per_watcher_max;
	/*
	 * ZooKeeper's zookeeper.enforceQuota (the server's enforceQuota key): a create or
	 * setData that would pass a quota's hard limit answers ZK_QUOTAEXCEEDED and changes
	 * nothing. Off (the zero value): no quota is checked (ZooKeeper 3.8.0 then checks
	 * nothing, not even soft limits); the stats nodes are maintained either way.
	 */
	bool enforce_quota;
};

#define STORE_WATCHES_PER_WATCHER_MAX 1000000u

/*
 * ClickHouse Keeper opcodes the store implements beyond net/zk_proto.h's (wire
 * values, ClickHouse's Coordination::OpNum). Both are writes (store_apply), allowed
 * at top level and inside multi:
 *   CheckStat (504): {ustring path; int version; Stat stat}: like check (13), and each
 *     Stat field that is not -1 must equal the node's Stat as clients see it, else
 *     BADVERSION. Reply body empty.
 *   TryRemove (505): {ustring path; int version} (RemoveRequest): delete, but a missing
 *     node (or parent), a version mismatch or children answer OK with no change;
 *     NOAUTH and BADARGUMENTS stay errors. Reply body empty.
 */
enum store_keeper_op {
	STORE_OP_CHECK_STAT = 504,
	STORE_OP_TRY_REMOVE = 505,
};

/*
 * /keeper/api_version: decimal KeeperApiVersion (3 = WITH_CHECK_NOT_EXISTS, the
 * highest value ClickHouse defines that its client maps to features).
 * /keeper/feature_flags: KeeperFeatureFlag bitset, flag n = bit (7 - n % 8) of byte
 * n / 8. Set: 0 FILTERED_LIST, 1 MULTI_READ, 2 CHECK_NOT_EXISTS, 3 CREATE_IF_NOT_EXISTS,
 * 4 REMOVE_RECURSIVE, 6 CHECK_STAT, 7 PERSISTENT_WATCHES (addWatch), 9 TRY_REMOVE,
 * 10 LIST_WITH_STAT_AND_DATA (FilteredListWithStatsAndData, op 506; ListRecursive, op
 * 507, has no flag). Not set: 5 MULTI_WATCHES (multiRead sub-ops register no watch, as
 * in ZooKeeper), 8 CREATE_WITH_STATS (a create2 inside multi answers path-only, as
 * ZooKeeper).
 */
#define STORE_KEEPER_API_VERSION "3"
#define STORE_KEEPER_FEATURE_FLAGS { 0xFB, 0x60 }

/* Called for every fired watch; type is an enum zk_event_type. path is not NUL-terminated. */
typedef void (*store_event_fn)(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
			       int64_t zxid);

/* Identities a caller holds, for ACL checks (scheme "world"/"digest"/"ip"/"super"). */
struct store_auth {
	const struct zk_id *ids;
	int ids_count;
	bool super; /* bypasses every ACL check */
};

/* One committed log entry, as decided by the leader. */
struct store_txn {
	int64_t zxid;     /* = log index; > every zxid applied before */
	int64_t time_ms;  /* wall clock chosen by the leader, ms since epoch */
	int64_t session_id;
	int32_t opcode;   /* enum zk_op */
	const uint8_t *body; /* request record, exactly as the client sent it (after RequestHeader) */
	size_t body_len;
	const struct store_auth *auth; /* may be NULL: world:anyone only */
};

struct store_stats {
	uint64_t node_count;
	uint64_t watch_count;   /* registrations: data, child, persistent, persistent-recursive */
	uint64_t watch_paths;   /* watched paths (a path with standard or persistent and also
				   recursive watches counts twice: they are separate tables) */
	uint64_t ephemerals_count;
	uint64_t approximate_data_size; /* sum of path + data bytes */
	uint64_t session_count;
	int64_t last_zxid;
	uint64_t watch_refused_count; /* registrations refused by the per-watcher limit */
	/*
	 * Quota checks (enforce_quota on) that found a limit passed: ZooKeeper 3.8.0's
	 * "Quota exceeded" warnings. A soft limit only counts; a hard one also fails the op.
	 */
	uint64_t quota_exceeded_count;
};

struct store *store_create(const struct store_config *cfg);

/*
 * Called on the applying thread with ZooKeeper's warning text each time an enforced
 * quota check finds a limit passed ("Quota exceeded: /app [current count=4,
 * hardCountLimit=3]"); the text is valid during the call. NULL (the default): silent.
 */
typedef void (*store_warn_fn)(void *ctx, const char *text);
void store_set_warn(struct store *s, store_warn_fn fn, void *ctx);
void store_destroy(struct store *s);

/*
 * Applies one committed txn. On the applier thread only.
 * Writes ops: create(1) create2(15) createContainer(19) createTTL(21) delete(2)
 * setData(5) setACL(7) check(13) multi(14) sync(9, no state change; echoes the path),
 * deleteContainer(20, see store_reap_candidates), ClickHouse's CheckNotExists(501)
 * CreateIfNotExists(502) RemoveRecursive(503) CheckStat(504) TryRemove(505), and the
 * session ops:
 *   ZK_OP_CREATE_SESSION (-10): body = int timeout_ms, buffer passwd (16 bytes);
 *     creates session txn->session_id. Reply body empty.
 *   ZK_OP_CLOSE_SESSION (-11): body empty; deletes the session's ephemerals (firing
 *     watches) and forgets the session. Reply body empty.
 * A txn whose session does not exist (other than createSession) gets ZK_SESSIONEXPIRED.
 * Appends the reply record (no ReplyHeader) to *out and returns the ReplyHeader err;
 * when the return is not ZK_OK nothing is appended (multi: returns ZK_OK with per-op
 * results, as ZooKeeper does). A malformed body returns ZK_MARSHALLINGERROR.
 * Updates the store's last zxid to txn->zxid in every case.
 */
int32_t store_apply(struct store *s, const struct store_txn *txn, struct jute_writer *out, store_event_fn on_event,
		    void *ctx);

/*
 * Runs a read on any thread: exists(3) getData(4) getACL(6) getChildren(8)
 * getChildren2(12) multiRead(22) getEphemerals(103) getAllChildrenNumber(104)
 * FilteredList(500), FilteredListWithStatsAndData(506) and ListRecursive(507) (store_list.c;
 * 506 also inside multiRead). A watch flag registers `watcher` (exists: even on NONODE;
 * getData/getChildren: only on success). Appends the reply record to *out and
 * returns the err, as store_apply.
 *
 * *seen_zxid (if not NULL) gets the zxid of the state the read saw, taken under the
 * same lock as the lookup and the watch registration: the read reflects every change
 * with zxid <= *seen_zxid to what it read, and a change to it with a larger zxid comes
 * after the read (and fires the watch it set). A caller sends ahead of the reply only
 * the notifications up to *seen_zxid. (multiRead: the largest of its sub-reads'.)
 */
int32_t store_read(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
		   int32_t opcode, const uint8_t *body, size_t body_len, struct jute_writer *out,
		   int64_t *seen_zxid);

/*
 * setWatches(101) / setWatches2(105) after a reconnect, on the caller's thread. Fires
 * the catch-up events (zxid -1) through on_event synchronously and registers the
 * rest, per ZooKeeper's DataTree.setWatches; setWatches2's persistent and
 * persistentRecursive lists are registered unconditionally, without catch-up events.
 * Returns 0 or ZK_MARSHALLINGERROR.
 */
int32_t store_set_watches(struct store *s, uint64_t watcher, int32_t opcode, const uint8_t *body, size_t body_len,
			  store_event_fn on_event, void *ctx);
/*
 * The same, and auth (NULL: unchanged) becomes the watcher's identities for the READ
 * filter of its events (see "Watches" above). store_set_watches() passes NULL.
 */
int32_t store_set_watches_auth(struct store *s, uint64_t watcher, const struct store_auth *auth, int32_t opcode,
			       const uint8_t *body, size_t body_len, store_event_fn on_event, void *ctx);

/*
 * Watch dumps for the four-letter words wchc (per watcher, its paths) and wchp (per
 * path, its watchers), on any thread. Each (watcher, path) pair with any watch (data,
 * child, persistent, persistent-recursive) is reported once; by_watcher reports a
 * watcher's paths consecutively, by_path a path's watchers consecutively. The dump is
 * one consistent snapshot: every shard, the recursive table and the watcher table are
 * locked while the callbacks run, so they must be quick and must not call the store.
 * path is not NUL-terminated.
 */
void store_watches_by_watcher(struct store *s, void (*fn)(void *ctx, uint64_t watcher, const char *path, size_t len),
			      void *ctx);
void store_watches_by_path(struct store *s, void (*fn)(void *ctx, const char *path, size_t len, uint64_t watcher),
			   void *ctx);

/*
 * Session dump for the four-letter word dump, on any thread: session_fn once per
 * session (id, negotiated timeout), then ephemeral_fn once per ephemeral node, grouped
 * by session. One consistent snapshot under the session table's read lock; the
 * callbacks must not call the store. Either callback may be NULL.
 */
void store_sessions_dump(struct store *s, void (*session_fn)(void *ctx, int64_t session_id, int32_t timeout_ms),
			 void (*ephemeral_fn)(void *ctx, int64_t session_id, const char *path, size_t len), void *ctx);

/* Forgets every watch registered by `watcher` (its connection closed). Any thread. */
void store_watcher_drop(struct store *s, uint64_t watcher);

/* AddWatchRequest.mode (ZooDefs.AddWatchModes). */
enum store_add_watch_mode {
	STORE_ADD_WATCH_PERSISTENT = 0,
	STORE_ADD_WATCH_PERSISTENT_RECURSIVE = 1,
};

/* CheckWatchesRequest / RemoveWatchesRequest .type (Watcher.WatcherType). */
enum store_watcher_type {
	STORE_WATCHER_TYPE_CHILDREN = 1,
	STORE_WATCHER_TYPE_DATA = 2,
	STORE_WATCHER_TYPE_ANY = 3,
	STORE_WATCHER_TYPE_PERSISTENT = 4,
	STORE_WATCHER_TYPE_PERSISTENT_RECURSIVE = 5,
};

/*
 * addWatch (106), on the caller's thread. body = AddWatchRequest{ustring path; int mode}.
 *   PERSISTENT on P: NodeCreated / NodeDeleted / NodeDataChanged for P and
 *     NodeChildrenChanged for P's children;
 *   PERSISTENT_RECURSIVE on P: NodeCreated / NodeDeleted / NodeDataChanged for P and
 *     every descendant, never NodeChildrenChanged.
 * Either registers an entry in the data and in the child table (ZooKeeper 3.8.0's
 * DataTree.addWatch), replacing the watcher's entries of another mode on P. Neither
 * is removed by firing nor by the deletion of the node (which need not exist); only
 * by store_remove_watches(), store_watcher_drop(), or a later standard registration
 * on the same path and table (which makes that entry one-shot). One change gives a
 * watcher at most one event.
 * Returns ZK_OK (the caller answers with the 4-byte ErrorResponse{0} body),
 * ZK_MARSHALLINGERROR for a short body or an unknown mode (ZooKeeper's
 * WatcherMode.fromZooDef throws, which its FinalRequestProcessor answers with
 * MARSHALLINGERROR), ZK_SYSTEMERROR when out of memory or past the per-watcher limit
 * (one of the two entries may then be registered).
 * store_add_watch_auth also makes auth (NULL: unchanged) the watcher's identities for
 * the READ filter of its events; store_add_watch passes NULL. *seen_zxid (if not NULL)
 * gets the zxid the registration saw, as store_read's: a change after it fires the
 * new watch, and its zxid is larger.
 */
int32_t store_add_watch(struct store *s, uint64_t watcher, const uint8_t *body, size_t body_len);
int32_t store_add_watch_auth(struct store *s, uint64_t watcher, const struct store_auth *auth, const uint8_t *body,
			     size_t body_len, int64_t *seen_zxid);

/*
 * checkWatches (17: only checks) or removeWatches (18), on the caller's thread, as
 * ZooKeeper 3.8.0. body = {ustring path; int type}, type Children (1: the child
 * table), Data (2: the data table) or Any (3: both). Persistent (4) and
 * PersistentRecursive (5) are unknown to 3.8.0 (WatcherType.fromInt throws):
 * ZK_MARSHALLINGERROR, like any other type. So a persistent or recursive watch is
 * checked and removed through its two table entries (remove type 2 leaves its child
 * part).
 *   17: ZK_OK when the table has an entry for exactly that path, of ANY watcher
 *       (3.8.0's WatchManager.containsWatcher looks the path up only), else
 *       ZK_NOWATCHER;
 *   18: removes `watcher`'s entry (any mode) from the table(s); ZK_OK when one was
 *       removed, else ZK_NOWATCHER.
 * ZK_MARSHALLINGERROR for a short body, ZK_UNIMPLEMENTED for another opcode. A
 * removed watch fires no event.
 */
int32_t store_remove_watches(struct store *s, uint64_t watcher, int32_t opcode, const uint8_t *body, size_t body_len);

/*
 * Session look-up for a reconnect: returns true and fills timeout/passwd if the
 * session exists. Any thread.
 */
bool store_session_get(struct store *s, int64_t session_id, int32_t *timeout_ms, uint8_t passwd[16]);

/*
 * Liveness, kept outside the replicated state: workers touch a session on every
 * packet; the tracker (leader only) lists the sessions whose deadline passed.
 */
void store_session_touch(struct store *s, int64_t session_id, int64_t now_ms, int32_t timeout_ms);
/*
 * In a cluster each server tells the leader which sessions its own clients kept alive
 * (store_sessions_local_since: the sessions touched by store_session_touch since
 * since_ms, at most cap, into ids; returns how many); every server applies such a
 * report with store_session_touch_remote, which moves the deadline on but not the
 * local mark. A new leader gives every session a full timeout (store_sessions_expired's
 * since_ms) before it expires any. Any thread.
 */
void store_session_touch_remote(struct store *s, int64_t session_id, int64_t now_ms);
/*
 * The server that owns a session (its client's connection is there): replicated
 * state, set by the applier from the log (createSession, a reconnect to another
 * server). A write proposed by another server gets SESSIONMOVED (pipeline_apply.c).
 * Applier thread only. _owner returns 0 for an unknown session or owner; _set_owner
 * returns false for an unknown session.
 */
uint32_t store_session_owner(struct store *s, int64_t session_id);
bool store_session_set_owner(struct store *s, int64_t session_id, uint32_t owner);
size_t store_sessions_local_since(struct store *s, int64_t since_ms, int64_t *ids, size_t cap);
/* Calls fn for each session with max(last touch, since_ms) + timeout < now_ms: a new
 * leader passes the start of its leadership, so every session, also one whose
 * createSession it applies later, gets a full timeout from then. Any thread. */
void store_sessions_expired(struct store *s, int64_t now_ms, int64_t since_ms,
			    void (*fn)(void *ctx, int64_t session_id), void *ctx);

/*
 * Container and TTL reaping (ZooKeeper's ContainerManager), on any thread (the
 * leader's reaper, e.g. every znode.container.checkIntervalMs = 60 s). Calls fn for at
 * most `max` nodes that are, at now_ms:
 *   - containers with no children that once had one (stored create counter > 0), or
 *   - TTL nodes with no children and now_ms - mtime > ttl.
 * The candidates are kept in their own list, so the cost is O(containers + TTL
 * nodes), not O(tree); all shards are locked for that walk. fn runs after the locks
 * are released, so it may call into the store. Order is unspecified.
 * For each path the leader proposes a txn {opcode ZK_OP_DELETE_CONTAINER (20), body =
 * ustring path, any session id (not checked)}; store_apply re-checks the condition at
 * txn->time_ms and deletes like a delete (NodeDeleted to the node's watchers,
 * NodeChildrenChanged to the parent's, persistent and recursive watches too), or
 * answers NONODE (gone), NOTEMPTY (has children) or BADVERSION (not a container/TTL
 * node, or no longer due) with no change. Reply body empty. Never accept opcode 20
 * from a client (ZooKeeper does not).
 */
void store_reap_candidates(struct store *s, int64_t now_ms, void (*fn)(void *ctx, const char *path, size_t path_len),
			   void *ctx, size_t max);

void store_stats(struct store *s, struct store_stats *out);
int64_t store_last_zxid(const struct store *s);

/*
 * Where the tree's memory goes, in bytes as the allocator counts them
 * (malloc_usable_size: size-class rounding included), for benchmarks and
 * bench/RESULTS.md. Walks every node with every shard locked: not for a serving
 * server's hot path.
 */
struct store_memory {
	uint64_t nodes;
	uint64_t node_blocks;    /* the znodes' own blocks: owner block, header, path, value room */
	uint64_t node_headers;   /* of which struct znode headers */
	uint64_t owner_blocks;   /* of which owner blocks (ephemerals, containers, TTL nodes) */
	uint64_t paths;          /* of which path bytes */
	uint64_t values_inline;  /* of which value bytes kept in the node's block */
	uint64_t values_external; /* values in blocks of their own (grown by a setData) */
	uint64_t dirs;           /* children arrays with numChildren, cversion, pzxid */
	uint64_t child_slots;    /* of which slots in use (8 bytes per child) */
	uint64_t buckets;        /* the path hash's bucket arrays */
	uint64_t acls;           /* ACL lists other than the shared open one */
};
void store_memory_get(struct store *s, struct store_memory *out);

/*
 * Path validation exactly as ZooKeeper's PathUtils.validatePath (UTF-8 input, checked
 * as the UTF-16 code units Java sees). Returns true when valid.
 */
bool store_path_valid(const char *path, size_t len);

#endif
