/*
 * store_snap.h — a consistent image of the store at one zxid, taken while the applier
 * keeps applying, and the way back: loading such an image into a fresh store.
 * The file format around it is snapshot/'s; this is what the store offers it.
 *
 * How an image stays consistent without stopping the applier (copy-on-write by node)
 *
 *   store_snap_begin() runs on the applier between two applies: it names the image's
 *   zxid Z (the last applied) and a new epoch E, and copies the session table and the
 *   quota roots (small). From then on, until store_snap_end():
 *
 *     - the walker (the snapshot writer's thread, store_snap_walk) visits every shard's
 *       hash buckets in ascending order, a few at a time under the shard's lock, and
 *       emits each node with czxid <= Z whose mark is not E, then marks it E;
 *     - the applier, before it first changes or deletes such a node (czxid <= Z, mark
 *       not E: the walker has not emitted it), copies the node as it is (its state at
 *       Z), keeps the copy in the snapshot's list for that shard and marks the node E.
 *       It holds the node's shard lock when it does (store_snap_preserve).
 *
 *   Nodes created after Z have czxid > Z and are skipped. So every node alive at Z is
 *   emitted exactly once, as it was at Z: either live by the walker (unchanged since
 *   Z) or from the applier's copy (made before its first change). Marks are compared
 *   with the current epoch only, so an abandoned walk leaves nothing to clean up.
 *   A shard's copies are emitted right after the walker finished its buckets: from
 *   then on every node of the shard that existed at Z is marked, so no copy is made
 *   there any more.
 *
 *   Growing a shard's bucket array while the walk is half way is harmless: a doubling
 *   moves a node from bucket b to b or b + old size, so a node the walker has not
 *   reached stays at or after its cursor, and one it already emitted may be met again
 *   and is skipped by its mark.
 *
 * Costs: begin is O(sessions + quota roots) on the applier; each change during a
 * snapshot pays one compare, the first change of an old node one copy of it; the
 * walker holds a shard lock for at most about STORE_SNAP_HOLD_BUCKETS buckets or
 * STORE_SNAP_HOLD_BYTES encoded bytes at a time.
 *
 * Loading (a fresh store from store_create, before any apply, no reader yet):
 * store_load_session() and store_load_node() in any order, from any number of threads
 * at once (they lock what they touch), store_load_quota_root() from one thread at a
 * time, then store_load_finish() once, after all of them,
 * which links every node to its parent, gives ephemerals to their sessions, rebuilds
 * the reaper's list, the counters and the quota roots, and sets the last zxid. The
 * system nodes store_create made are overwritten from the image ("/", "/zookeeper",
 * "/zookeeper/quota"), except those that come from the configuration
 * (store_snap_node_is_configured), which the image never carries and the loader
 * skips.
 */
#ifndef RK_STORE_SNAP_H
#define RK_STORE_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_snap;

#define STORE_SNAP_HOLD_BUCKETS 64
#define STORE_SNAP_HOLD_BYTES (16u << 10)

/* One ACL entry as the store holds it (scheme and id are not NUL-terminated). */
struct acl_entry {
	int32_t perms;
	uint32_t scheme_len;
	uint32_t id_len;
	const char *scheme;
	const char *id;
};

/* A node as an image holds it: the persisted part of a znode (children and the
 * counters derived from them are rebuilt on load). */
struct store_snap_node {
	const char *path;
	uint32_t path_len;
	int32_t data_len; /* -1: null */
	const uint8_t *data;
	int64_t czxid;
	int64_t mzxid;
	int64_t pzxid;
	int64_t ctime;
	int64_t mtime;
	int64_t ephemeral_owner; /* as stored: session id, container or TTL marker, 0 */
	int32_t version;
	int32_t cversion_stored; /* creates of children so far (see struct znode) */
	int32_t aversion;
	uint32_t acl_count;
	const struct acl_entry *acl;
};

struct store_snap_session {
	int64_t id;
	int32_t timeout_ms;
	uint8_t passwd[16];
};

struct store_snap_stats {
	uint64_t nodes_emitted;
	uint64_t nodes_copied;     /* by the applier, before a change */
	uint64_t copied_bytes;
	uint64_t lock_hold_max_ns; /* longest hold of a shard lock by the walker */
	uint64_t begin_ns;         /* the applier's time in store_snap_begin */
};

/*
 * Applier only, between two applies. Starts an image of the store as of its last
 * zxid. One at a time: -EBUSY while another is not ended; -ENOMEM.
 */
int store_snap_begin(struct store *s, struct store_snap **out);
int64_t store_snap_zxid(const struct store_snap *sn);
/* The sessions and quota roots as of the image's zxid (valid until store_snap_end). */
size_t store_snap_sessions(const struct store_snap *sn, const struct store_snap_session **out);
size_t store_snap_quota_roots(const struct store_snap *sn, const char *const **paths, const size_t **lens);

/*
 * Returns the bytes it added to its output (it bounds one lock hold by them). Runs
 * with a shard lock held: it must not call the store, and should be quick.
 */
typedef size_t (*store_snap_node_fn)(void *ctx, const struct store_snap_node *node);

/*
 * The walker (one thread at a time, any thread): emits the next nodes of the image,
 * about one lock hold's worth. Returns true while nodes remain. Every node of the
 * image is emitted exactly once over the calls, in no particular order except that a
 * node's parent is not necessarily before it. With fn NULL it only marks the nodes
 * as met: a walker that stops early on an error finishes the walk so (the next image
 * relies on every node carrying this one's mark; store_snap_end does it otherwise,
 * on the applier).
 */
bool store_snap_walk(struct store_snap *sn, store_snap_node_fn fn, void *ctx);
void store_snap_stats_get(const struct store_snap *sn, struct store_snap_stats *out);

/*
 * Applier only: the image is no longer needed (walked to the end or abandoned). Marks
 * what the walker left (see store_snap_walk), frees the copies not emitted yet and
 * the handle. The walker must have returned.
 */
void store_snap_end(struct store *s, struct store_snap *sn);

/*
 * Called by store_apply (applier, n's shard locked) before n's persisted fields change
 * or n is deleted. Cheap when no snapshot runs.
 */
struct znode;
void store_snap_preserve_slow(struct store *s, struct znode *n);

/* True for the nodes the configuration makes (/zookeeper/config; /keeper and its
 * children while ClickHouse's system nodes are on): never part of an image. */
bool store_snap_node_is_configured(const struct store *s, const char *path, size_t len);

/*
 * Loading into a fresh store (store_create, nothing applied yet), with no reader yet
 * (threads: see the top of this file). Every string is copied. 0, -ENOMEM, or -EINVAL
 * for an image that cannot be right (a node twice, a bad path); why (may be NULL)
 * says which.
 */
int store_load_session(struct store *s, const struct store_snap_session *se, int64_t now_ms);
int store_load_node(struct store *s, const struct store_snap_node *node, char *why, size_t why_size);
int store_load_quota_root(struct store *s, const char *root, size_t len);
/* Links and rebuilds everything derived; -EINVAL when a node has no parent or an
 * ephemeral no session. */
int store_load_finish(struct store *s, int64_t zxid, char *why, size_t why_size);

/*
 * Installing a snapshot received from the leader while the server runs: the image is
 * loaded into store_create_like(live) (a fresh store with live's configuration) on
 * any thread, then store_swap(live, fresh) on the applier exchanges everything
 * replicated (nodes, sessions, quota roots, counters, the last zxid) under all of
 * live's locks, so a reader sees the old tree or the new one, never a mix. Watches
 * stay in live (their connections are the caller's to close). Afterwards `fresh`
 * holds the old contents: store_destroy it (anywhere: no reader can reach it).
 * No image may be in progress on live (store_snap_begin .. store_snap_end).
 */
struct store *store_create_like(const struct store *s);
void store_swap(struct store *live, struct store *fresh);

#endif
