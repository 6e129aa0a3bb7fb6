/*
 * store.h — the replicated state machine: data tree, sessions (with their
 * ephemerals), ACLs and watches.
 *
 * Threads
 *   - The applier (the raft thread today) is the only writer of the tree and the
 *     session table: store_apply() runs there, strictly in log order.
 *   - Worker threads call store_read(), store_set_watches(), store_add_watch(),
 *     store_remove_watches(), store_watcher_drop(),
 *     store_session_*() and store_stats() concurrently with the applier and each other.
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
 */
#ifndef RK_STORE_H
#define RK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"

#define STORE_SHARDS 64

struct store;

struct store_config {
	/* Data of /zookeeper/config (empty in standalone). */
	const char *config_text;
};

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
};

struct store *store_create(const struct store_config *cfg);
void store_destroy(struct store *s);

/*
 * Applies one committed txn. On the applier thread only.
 * Writes ops: create(1) create2(15) createContainer(19) createTTL(21) delete(2)
 * setData(5) setACL(7) check(13) multi(14) sync(9, no state change; echoes the path)
 * and the session ops:
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
 * FilteredList(500). A watch flag registers `watcher` (exists: even on NONODE;
 * getData/getChildren: only on success). Appends the reply record to *out and
 * returns the err, as store_apply.
 */
int32_t store_read(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
		   int32_t opcode, const uint8_t *body, size_t body_len, struct jute_writer *out);

/*
 * setWatches(101) / setWatches2(105) after a reconnect, on the caller's thread. Fires
 * the catch-up events (zxid -1) through on_event synchronously and registers the
 * rest, per ZooKeeper's DataTree.setWatches; setWatches2's persistent and
 * persistentRecursive lists are registered unconditionally, without catch-up events.
 * Returns 0 or ZK_MARSHALLINGERROR.
 */
int32_t store_set_watches(struct store *s, uint64_t watcher, int32_t opcode, const uint8_t *body, size_t body_len,
			  store_event_fn on_event, void *ctx);

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
 * Neither is removed by firing nor by the deletion of the node (which need not exist);
 * only by store_remove_watches() or store_watcher_drop(). They coexist with standard
 * watches on the same path; one change gives a watcher at most one event.
 * Returns ZK_OK (the caller answers with the 4-byte ErrorResponse{0} body),
 * ZK_MARSHALLINGERROR for a short body or an unknown mode (ZooKeeper's
 * WatcherMode.fromZooDef throws, which its FinalRequestProcessor answers with
 * MARSHALLINGERROR), ZK_SYSTEMERROR when out of memory.
 */
int32_t store_add_watch(struct store *s, uint64_t watcher, const uint8_t *body, size_t body_len);

/*
 * checkWatches (17: only checks) or removeWatches (18), on the caller's thread.
 * body = {ustring path; int type} with type an enum store_watcher_type: Children and
 * Data name the standard (one-shot) child / data-or-exist watch, Persistent and
 * PersistentRecursive the addWatch kinds, Any all four. Returns ZK_OK when `watcher`
 * holds at least one such watch on exactly that path (18: and removes them all),
 * ZK_NOWATCHER otherwise, ZK_MARSHALLINGERROR for a short body or an unknown type,
 * ZK_UNIMPLEMENTED for another opcode. A removed watch fires no event.
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
/* Calls fn for each session with last touch + timeout < now_ms. Any thread. */
void store_sessions_expired(struct store *s, int64_t now_ms, void (*fn)(void *ctx, int64_t session_id), void *ctx);

void store_stats(struct store *s, struct store_stats *out);
int64_t store_last_zxid(const struct store *s);

/*
 * Path validation exactly as ZooKeeper's PathUtils.validatePath (UTF-8 input, checked
 * as the UTF-16 code units Java sees). Returns true when valid.
 */
bool store_path_valid(const char *path, size_t len);

#endif
