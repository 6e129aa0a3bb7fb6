/*
 * store_impl.h — the store's private structures, shared by the store/ files only.
 *
 * Layout
 *   struct store
 *     shards[STORE_SHARDS]   each: mutex, znode hash (path -> znode), watch-path hash
 *                            (path -> watch_path), registration hash ((watch_path,
 *                            watcher, kind) -> watch_reg, for O(1) de-duplication)
 *     recursive              a shard-shaped watch table for every PERSISTENT_RECURSIVE
 *                            registration (its znode hash is unused)
 *     watchers               watcher id -> struct watcher (per-watcher index: one list
 *                            of registrations per watch table, so a drop costs O(its
 *                            watches))
 *     sessions               rwlock + hash id -> session (timeout, passwd, ephemerals)
 *
 * Locking (see store.h for the thread model)
 *   1. A shard's mutex guards its znode hash, the mutable fields of the znodes in it
 *      (their values included, rewritten in place, and their dirs, which a child's
 *      create or delete may move), its watch tables and every watch_reg in it
 *      (including the reg's links in watcher->regs[shard]).
 *   2. Several shards are always locked in ascending index order. Readers hold one
 *      shard at a time, except getAllChildrenNumber, which locks all in order.
 *   3. Lock order: shards -> recursive.lock -> watchers.lock -> sessions.lock ->
 *      acls.lock (the ACL table's, taken last and alone by the applier and loaders).
 *      Nothing is locked while the event callback runs except the shards of the txn
 *      and recursive.lock (the callback must not call back into the store).
 *   4. The applier is the only writer of znodes and sessions, so it reads both without
 *      locks; it takes the locks only to mutate and to touch watch tables.
 *   5. A znode's address, path, kind, ephemeralOwner and czxid/ctime never change
 *      after it is linked. A child is unlinked from its parent's array under the
 *      parent's shard lock before it is freed, so a reader holding the parent's lock
 *      may read its children's immutable fields. (A node does not point to its
 *      parent: the applier finds it by the path, or knows it.)
 */
#ifndef RK_STORE_IMPL_H
#define RK_STORE_IMPL_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/jute.h"
#include "core/zk_proto.h"
#include "store/store.h"
#include "store/store_nodemem.h"
#include "store/store_snap.h"

/* Limits. */
#define STORE_ACL_ENTRIES_MAX 1024        /* per node; dedup is quadratic in it */
#define STORE_CHILDREN_MAX (INT32_MAX - 1) /* numChildren is a jute int */
#define STORE_EPHEMERALS_MAX (1u << 24)   /* per session */
#define STORE_MULTI_OPS_MAX 100000        /* sub-ops in one multi / multiRead */

/* ---------------------------------------------------------------- ACLs */

/* struct acl_entry (one entry) is in store/store_snap.h: images carry it as is. */

/* Immutable once built; one allocation (header, entries, string bytes). */
struct acl_list {
	uint32_t count;
	struct acl_entry *entries;
};

/* The shared [31, world:anyone] list; never freed. */
extern const struct acl_list store_acl_open;

/*
 * The store's lists, each kept once (store_acl_table.c has the invariants): a node
 * holds an id. STORE_ACL_OPEN_ID is store_acl_open's, always valid.
 */
#define STORE_ACL_OPEN_ID 0u
#define STORE_ACL_NONE UINT32_MAX /* store_acl_intern: out of memory */
#define STORE_ACL_CHUNK_SHIFT 8
#define STORE_ACL_CHUNK (1u << STORE_ACL_CHUNK_SHIFT)
#define STORE_ACL_CHUNKS_MAX (1u << 22) /* 2^30 distinct lists */
static_assert((uint64_t)STORE_ACL_CHUNKS_MAX * STORE_ACL_CHUNK <= (1u << 30), "ids fit znode.acl_id's 30 bits");

struct acl_slot {
	const struct acl_list *list; /* NULL while the slot is free */
	uint64_t hash;               /* of the entries and the aversion */
	uint64_t refs;               /* nodes and pending undo entries holding the id */
	uint32_t chain;              /* next id in its index bucket or on the free list */
	int32_t aversion;            /* the nodes' ACL version (see store_acl_intern) */
};

/*
 * Validates and fixes up a requested ACL (dedup, `auth` expansion) per ZooKeeper's
 * fixupACL. Returns ZK_OK with *out set (free with store_acl_free) or ZK_INVALIDACL.
 */
int32_t store_acl_fixup(const struct zk_acl *acls, int32_t count, const struct store_auth *auth,
			struct acl_list **out);
void store_acl_free(struct acl_list *acl);
/* A list holding copies of entries[0..count) (the shared open list when that is what
 * they say); NULL when out of memory. */
struct acl_list *store_acl_copy(const struct acl_entry *entries, uint32_t count);
/* True when auth may do `perm` (a mask; any bit suffices) on a node with this ACL. */
bool store_acl_permits(const struct acl_list *acl, int32_t perm, const struct store_auth *auth);
/* Writes vector<ACL>; mask_digest replaces digest ids' hash with "x". */
void store_acl_write(struct jute_writer *w, const struct acl_list *acl, bool mask_digest);

/* ---------------------------------------------------------------- tree */

/*
 * A znode is one block of the node region (store_node_new; store_nodemem.h), its
 * address fixed while it is linked. The hash chains, children arrays, the reaper's
 * list hold its 4-byte ref (store_node_ref / store_node_at); sessions and undo
 * entries its address. Blocks come in 4-byte steps and are 4-byte aligned:
 *
 *   [ owner block ][ struct znode ][ path bytes ][ data bytes, then slack ]
 *                  ^ the pointer    ^ n->path     ^ n->path + path_len
 *
 *   owner block  ephemeral nodes (struct znode_ephemeral) and containers / TTL nodes
 *                (struct znode_reapable) only: their ephemeralOwner and what only
 *                they need. Persistent nodes, most of a tree, have none (owner 0).
 *                Which one follows from n->kind, set at creation, never changed.
 *   data         inline: the value's bytes in the room after the path (at least 8
 *                bytes, plus whatever the allocator rounded the block up to); a
 *                setData that fits rewrites them in place, under the shard lock. A
 *                value that does not fit gets its own block, whose address is kept
 *                (unaligned) in the first 8 bytes of that room (n->data_external),
 *                until a later value fits again. store_node_data() finds the bytes.
 *   dir          (separate, n->dir: a handle, as it moves when it grows) children,
 *                numChildren, cversion and pzxid, for nodes that have or had
 *                children; 0 for the rest (most), which
 *                read pzxid = czxid and cversion = numChildren = 0, as ZooKeeper's
 *                createStat gives a new node. Made before the first child is linked,
 *                or on load for an image whose pzxid or cversion say otherwise.
 *
 * What a node does not keep, to stay small (bench/RESULTS.md, issue 13): its path's
 * hash (store_node_hash() recomputes it for unlink, a shard's growth and the
 * applier's lock masks; a 5-bit tag of it filters lookups), a parent pointer (the
 * applier finds the parent by the path, or knows it), its ACL list and aversion (the
 * id of an interned (list, aversion) pair), any field only some nodes need (owner
 * block, dir), more than 48 bits of a zxid or a time, more than 2 bits of snapshot
 * mark, and 8-byte pointers (4-byte refs instead).
 */
#define STORE_PATH_BYTES_MAX ((1u << 24) - 1) /* znode.path_len's width; jute.maxbuffer <= 16 MiB */
#define STORE_NODE_DATA_ROOM_MIN 8           /* room for the external block's address */

struct znode_dir {
	int64_t pzxid;
	/*
	 * ZooKeeper's persisted cversion (StatPersisted): +1 per child create, never
	 * changed by a delete. It names sequential children (the suffix) and tells the
	 * container reaper a node once had children. Clients see
	 * 2 * cversion_stored - numChildren (DataNode.copyStat), which counts deletes too;
	 * store_node_stat() does that translation.
	 */
	int32_t cversion_stored;
	uint32_t child_count;
	uint32_t child_cap;
	uint32_t children[]; /* refs, unordered; child i's parent_slot is i */
};

enum znode_kind {
	ZNODE_PERSISTENT = 0, /* ephemeralOwner 0: no owner block */
	ZNODE_EPHEMERAL = 1,  /* owned by a session: struct znode_ephemeral */
	ZNODE_REAPABLE = 2,   /* container or TTL node: struct znode_reapable */
};

/*
 * The owner blocks end at the znode, their ephemeralOwner last: it is at n - 8 in both
 * (read with memcpy: a node is 4-byte aligned, store_nodemem.h).
 */
struct znode_ephemeral {
	uint32_t session_slot; /* index in its session's ephemeral array */
	uint8_t owner[8];      /* the session id */
};

struct znode_reapable {
	/*
	 * Link in store->reapable while the node is linked (the reaper's candidate set).
	 * Mutated by the applier with the node's shard locked, read with every shard
	 * locked.
	 */
	uint32_t reap_prev, reap_next; /* refs */
	uint8_t owner[8];              /* ZK_EPHEMERAL_OWNER_CONTAINER or a TTL marker */
};

/*
 * czxid, mzxid, ctime and mtime are kept in 48 bits each, signed, little-endian
 * (store_node_czxid() ... read them): a zxid is a log index (below 2^47 for as long as
 * anything can write; ringkeeper-migrate refuses a ZooKeeper whose zxids are not), and
 * a time in ms reaches 2^47 in the year 6429. Setters take any int64: a zxid outside
 * the range is fatal (store_node_set_czxid), a time is clamped (the leader's clock is
 * the input, and every replica clamps alike); loading checks (store_stamp_fits).
 */
#define STORE_STAMP_MAX STORE_ZXID_LIMIT
#define STORE_STAMP_BYTES 6

/*
 * The snapshot mark (snap_mark; store_snap.h): 0 or 1 in service, the parity of the
 * image that has met the node. Between images every node carries the parity of the
 * last one begun (s->snap_epoch & 1): the walk marks everything it meets, copies
 * carry the mark, new nodes get it at creation, and a walk that stops early is
 * finished mark-only (store_snap_walk with no callback, or store_snap_end). A new
 * image flips the parity, so every node is due once. 2 and 3 are loading's marks.
 */
enum {
	SNAP_MARK_LOADED = 2,        /* from the image, not linked yet */
	SNAP_MARK_LOADED_LINKED = 3, /* a system node the image overwrote */
};

struct znode {
	uint32_t dir; /* a handle (store_nodemem.h); 0: never had a child (see above) */
	uint8_t czxid48[STORE_STAMP_BYTES];
	uint8_t mzxid48[STORE_STAMP_BYTES];
	uint8_t ctime48[STORE_STAMP_BYTES];
	uint8_t mtime48[STORE_STAMP_BYTES];
	int32_t version;
	int32_t data_len;     /* -1 = jute null */
	uint32_t parent_slot; /* index in parent->dir->children */
	/* Chain in its shard's bucket; next to the path, which a lookup compares, so a
	 * step along a chain usually reads one cache line. */
	uint32_t hash_next; /* a ref (store_nodemem.h) */
	uint32_t acl_id : 30; /* in store->acls (store_acl_at); ids stay below 2^30 */
	/*
	 * The snapshot mark (above): set, with the shard locked, by the walker that
	 * emitted the node or by the applier that copied it before a change.
	 */
	uint32_t snap_mark : 2;
	uint32_t path_len : 24;
	uint32_t kind : 2;          /* enum znode_kind */
	uint32_t data_external : 1; /* the value is in its own block (see above) */
	/* store_node_hash_tag(hash of path): a lookup compares paths only when it matches
	 * (many paths have the same length: sequential names, generated keys). */
	uint32_t hash_tag : 5;
	char path[]; /* not NUL-terminated; the value follows */
};

static_assert(sizeof(struct znode_ephemeral) % 4 == 0 && sizeof(struct znode_reapable) % 4 == 0 &&
		      _Alignof(struct znode) == 4,
	      "owner blocks keep the znode 4-byte aligned, all it needs");
/* Every byte here is paid by every node (1M nodes: 1 MB per byte): a new field needs
 * a reason to be in the header. */
static_assert(offsetof(struct znode, path) == 52, "the znode header grew");

static inline bool store_stamp_fits(int64_t v) { return v >= -STORE_STAMP_MAX && v < STORE_STAMP_MAX; }

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "stamps are the low 6 bytes of an int64");

/* Two loads and two stores, not 6 bytes through an 8-byte temporary (a store-to-load
 * forwarding stall on x86 when read back whole). */
static inline int64_t store_stamp_get(const uint8_t *p)
{
	uint32_t lo;
	uint16_t hi;
	memcpy(&lo, p, sizeof lo);
	memcpy(&hi, p + sizeof lo, sizeof hi);
	return (int64_t)(((uint64_t)hi << 48) | ((uint64_t)lo << 16)) >> 16; /* sign-extends bit 47 */
}

static inline void store_stamp_put(uint8_t *p, int64_t v)
{
	uint32_t lo = (uint32_t)v;
	uint16_t hi = (uint16_t)((uint64_t)v >> 32);
	memcpy(p, &lo, sizeof lo);
	memcpy(p + sizeof lo, &hi, sizeof hi);
}

/* A zxid the header cannot hold: never a log index (see above); fatal. */
void store_stamp_zxid_overflow(int64_t zxid) __attribute__((noreturn));

static inline int64_t store_stamp_time(int64_t ms)
{
	return ms < -STORE_STAMP_MAX ? -STORE_STAMP_MAX : ms >= STORE_STAMP_MAX ? STORE_STAMP_MAX - 1 : ms;
}

static inline int64_t store_node_czxid(const struct znode *n) { return store_stamp_get(n->czxid48); }
static inline int64_t store_node_mzxid(const struct znode *n) { return store_stamp_get(n->mzxid48); }
static inline int64_t store_node_ctime(const struct znode *n) { return store_stamp_get(n->ctime48); }
static inline int64_t store_node_mtime(const struct znode *n) { return store_stamp_get(n->mtime48); }

static inline void store_node_set_czxid(struct znode *n, int64_t zxid)
{
	if (!store_stamp_fits(zxid))
		store_stamp_zxid_overflow(zxid);
	store_stamp_put(n->czxid48, zxid);
}

static inline void store_node_set_mzxid(struct znode *n, int64_t zxid)
{
	if (!store_stamp_fits(zxid))
		store_stamp_zxid_overflow(zxid);
	store_stamp_put(n->mzxid48, zxid);
}

static inline void store_node_set_ctime(struct znode *n, int64_t ms) { store_stamp_put(n->ctime48, store_stamp_time(ms)); }
static inline void store_node_set_mtime(struct znode *n, int64_t ms) { store_stamp_put(n->mtime48, store_stamp_time(ms)); }

static inline size_t store_node_owner_block_size(unsigned kind)
{
	return kind == ZNODE_EPHEMERAL ? sizeof(struct znode_ephemeral)
	       : kind == ZNODE_REAPABLE ? sizeof(struct znode_reapable)
					: 0;
}

/* ephemeralOwner as stored: a session id, the container or TTL marker, or 0. */
static inline int64_t store_node_owner(const struct znode *n)
{
	if (n->kind == ZNODE_PERSISTENT)
		return 0;
	int64_t owner;
	memcpy(&owner, (const char *)n - sizeof owner, sizeof owner);
	return owner;
}

/* The node a ref names; NULL for 0. */
static inline struct znode *store_node_at(uint32_t ref)
{
	return ref ? (struct znode *)store_nodemem_at(ref) : NULL;
}

static inline uint32_t store_node_ref(const struct znode *n)
{
	return store_nodemem_ref_of(n, store_node_owner_block_size(n->kind));
}

/* n's dir, NULL if it has none. */
static inline struct znode_dir *store_dir_of(const struct znode *n)
{
	return n->dir ? (struct znode_dir *)store_nodemem_at(n->dir) : NULL;
}

static inline struct znode_ephemeral *store_node_ephemeral(struct znode *n)
{
	assert(n->kind == ZNODE_EPHEMERAL);
	return (struct znode_ephemeral *)n - 1;
}

static inline struct znode_reapable *store_node_reapable(struct znode *n)
{
	assert(n->kind == ZNODE_REAPABLE);
	return (struct znode_reapable *)n - 1;
}

/* The value's bytes (data_len of them when data_len > 0). Shard locked or the applier. */
static inline const uint8_t *store_node_data(const struct znode *n)
{
	const uint8_t *room = (const uint8_t *)n->path + n->path_len;
	if (!n->data_external)
		return room;
	const uint8_t *block;
	memcpy(&block, room, sizeof block);
	return block;
}

static inline uint32_t store_node_child_count(const struct znode *n)
{
	return n->dir ? store_dir_of(n)->child_count : 0;
}

/* Child i of a dir (i < child_count). */
static inline struct znode *store_dir_child(const struct znode_dir *d, uint32_t i)
{
	return (struct znode *)store_nodemem_at(d->children[i]);
}

static inline int64_t store_node_pzxid(const struct znode *n)
{
	return n->dir ? store_dir_of(n)->pzxid : store_node_czxid(n);
}

static inline int32_t store_node_cversion_stored(const struct znode *n)
{
	return n->dir ? store_dir_of(n)->cversion_stored : 0;
}

/* Where n's name starts in its path ("/" has an empty name: 1). */
static inline size_t store_node_name_off(const struct znode *n)
{
	if (n->path_len == 1)
		return 1;
	const char *slash = memrchr(n->path, '/', n->path_len);
	return (size_t)(slash - n->path) + 1;
}

/* The name offset of every child of p: its path and a '/' ("/"'s children: 1). */
static inline size_t store_node_child_name_off(const struct znode *p)
{
	return p->path_len == 1 ? 1 : (size_t)p->path_len + 1;
}

struct watch_path;
struct watch_reg;

#define STORE_SHARD_BUCKETS_MIN 16 /* a new shard's node buckets, and the least it shrinks to */

struct shard {
	pthread_mutex_t lock;
	uint32_t *buckets; /* node refs */
	size_t bucket_mask; /* bucket count - 1, power of two, >= STORE_SHARD_BUCKETS_MIN - 1 */
	size_t node_count;
	/* Rehashes to fewer buckets (store_tree.c's shard_trim): a snapshot walk that was
	 * part way through this shard starts it over (store_snap_walk). */
	uint32_t shrinks;
	struct watch_path **wp_buckets;
	size_t wp_mask;
	size_t wp_count;
	struct watch_reg **reg_buckets;
	size_t reg_mask;
	size_t reg_count;
} __attribute__((aligned(64)));

/*
 * Watch registration kinds, modelled on ZooKeeper 3.8.0's WatchManager: two tables,
 * data (exist/getData watches) and child (getChildren watches), each holding at most
 * one entry per (path, watcher) with a mode: standard (one-shot), persistent or
 * persistent-recursive. addWatch(PERSISTENT) and addWatch(PERSISTENT_RECURSIVE) put
 * an entry in both tables (DataTree.addWatch); a later registration on the same
 * (path, watcher, table) replaces the mode (a standard watch turns a persistent one
 * into a one-shot one, as 3.8.0 does: ZOOKEEPER-4466 changed that only in 3.9).
 * Kind = mode * 2 + table (data even, child odd). The recursive kinds live in
 * store->recursive, not in the shard of their path, because a change must find them
 * on every ancestor of its path.
 */
enum watch_kind {
	WATCH_DATA = 0,                 /* standard, data table */
	WATCH_CHILD = 1,                /* standard, child table */
	WATCH_PERSISTENT = 2,           /* persistent, data table */
	WATCH_PERSISTENT_CHILD = 3,     /* persistent, child table */
	WATCH_PERSISTENT_RECURSIVE = 4, /* persistent-recursive, data table */
	WATCH_RECURSIVE_CHILD = 5,      /* persistent-recursive, child table */
	WATCH_KINDS = 6,
};

static inline bool watch_kind_is_child(unsigned kind) { return kind & 1u; }
static inline bool watch_kind_is_recursive(unsigned kind) { return kind >= WATCH_PERSISTENT_RECURSIVE; }

/* Index of the recursive-watch table among the watch tables (after the shards). */
#define STORE_WATCH_RECURSIVE STORE_SHARDS
#define STORE_WATCH_TABLES (STORE_SHARDS + 1)

struct watch_list {
	struct watch_reg *head;
};

struct watcher {
	struct watcher *next; /* in the watcher table */
	uint64_t id;
	/*
	 * The identities the watcher's connection held at its latest registration (events
	 * are delivered only if they grant READ on the changed node, as ZooKeeper's
	 * CVE-2024-23944 fix does). One allocation: ids then their string bytes. Guarded
	 * by auth_lock (registrations on worker threads, checks on the applier).
	 */
	pthread_mutex_t auth_lock;
	struct zk_id *auth_ids;
	int auth_count;
	bool auth_super;
	uint64_t fired_seq; /* last trigger that notified it; applier only (one event per change) */
	_Atomic uint32_t reg_count; /* its registrations, all tables; <= watches_per_watcher_max */
	struct watch_list regs[STORE_WATCH_TABLES]; /* regs[i] guarded by table i's mutex */
};

struct session {
	struct session *next;
	int64_t id;
	int32_t timeout_ms;
	uint8_t passwd[16];
	_Atomic int64_t touch_ms;
	_Atomic int32_t touch_timeout_ms;
	_Atomic int64_t local_touch_ms; /* last packet on a connection of this server */
	/* The server whose clients own the session (replicated: set by the applier from
	 * createSession and session-move entries; 0 unknown). Written by the applier only;
	 * atomic so a reader on another thread (a snapshot) may load it. */
	_Atomic uint32_t owner;
	struct znode **ephemerals;
	uint32_t ephemeral_count;
	uint32_t ephemeral_cap;
};

struct store {
	struct shard shards[STORE_SHARDS];
	/*
	 * PERSISTENT_RECURSIVE registrations (only its watch tables are used). Locked
	 * after any shards (lock order: shards -> recursive -> watchers -> sessions).
	 */
	struct shard recursive;
	_Atomic uint64_t recursive_watch_count; /* 0: writes skip the ancestor walk */
	uint64_t trigger_seq;                   /* applier only */
	struct {
		pthread_mutex_t lock;
		struct watcher **buckets;
		size_t mask;
		size_t count;
	} watchers;
	struct {
		pthread_rwlock_t lock;
		struct session **buckets;
		size_t mask;
		size_t count;
	} sessions;
	struct znode *root;
	bool keeper_api;        /* store_config.keeper_api: /keeper system nodes exist */
	uint32_t watches_per_watcher_max; /* store_config's, or STORE_WATCHES_PER_WATCHER_MAX */
	/* The interned ACL lists (store_acl_table.c); its lock is the last in the order. */
	struct {
		pthread_mutex_t lock;
		_Atomic(struct acl_slot **) dir; /* chunk pointers */
		uint32_t dir_cap;                /* entries in dir */
		uint32_t used;                   /* ids handed out so far (high-water mark) */
		uint32_t free;                   /* first free id, UINT32_MAX: none */
		uint32_t count;                  /* live lists, id 0 not counted */
		uint32_t *buckets;               /* index: hash -> first id of its chain */
		size_t mask;
		struct acl_slot ***old_dirs;     /* replaced directories, freed with the store */
		size_t old_count;
	} acls;
	struct znode *reapable; /* containers and TTL nodes; see znode_reapable */
	size_t reapable_count;
	_Atomic int64_t last_zxid;
	_Atomic uint64_t node_count;
	_Atomic uint64_t watch_count;
	_Atomic uint64_t watch_paths;
	_Atomic uint64_t ephemerals_count;
	_Atomic uint64_t data_bytes;
	_Atomic uint64_t watch_refused_count; /* registrations refused by the per-watcher limit */
	/*
	 * Quotas (store_quota.c, applied in store_apply.c). Applier only, no lock: the
	 * normalized quota roots; count == 0 makes every write skip quota work.
	 */
	struct {
		struct quota_root **buckets;
		size_t mask;
		size_t count;
	} quota;
	bool enforce_quota; /* store_config.enforce_quota (ZooKeeper's zookeeper.enforceQuota) */
	_Atomic uint64_t quota_exceeded_count;
	store_warn_fn warn; /* store_set_warn */
	void *warn_ctx;
	struct store_config cfg; /* as created: store_create_like makes another */
	/* The image being taken (store_snap.h), NULL when none; set and cleared by the
	 * applier, which alone reads it. snap_epoch counts images begun: its parity is
	 * the mark every node carries between images (struct znode's snap_mark). */
	struct store_snap *snap;
	uint32_t snap_epoch;
};

uint64_t store_hash_bytes(const void *p, size_t n);
static inline unsigned store_shard_of(uint64_t hash) { return (unsigned)(hash >> 58); }

/* Before the applier first changes or deletes n in a txn (n's shard locked). */
static inline void store_snap_preserve(struct store *s, struct znode *n)
{
	if (s->snap)
		store_snap_preserve_slow(s, n);
}

/* ACL lists (store_acl_table.c). */
void store_acls_init(struct store *s);
void store_acls_destroy(struct store *s);
/*
 * The id of a list equal to acl, one more reference to it; takes acl (frees it when
 * an equal list is kept already). STORE_ACL_NONE when out of memory (acl freed).
 */
uint32_t store_acl_intern(struct store *s, struct acl_list *acl, int32_t aversion);
/* Drops one reference; the list goes with the last. */
void store_acl_release(struct store *s, uint32_t id);
/* Bytes of the table and its lists, as the allocator counts them (locks the table). */
size_t store_acl_table_bytes(struct store *s);

/* The list of a live id: any thread that found the id in a node under its shard lock. */
/* The slot of a live id other than STORE_ACL_OPEN_ID (same threads as store_acl_at). */
static inline const struct acl_slot *store_acl_slot_at(struct store *s, uint32_t id)
{
	struct acl_slot **dir = atomic_load_explicit(&s->acls.dir, memory_order_acquire);
	return &dir[id >> STORE_ACL_CHUNK_SHIFT][id & (STORE_ACL_CHUNK - 1)];
}

static inline const struct acl_list *store_acl_at(struct store *s, uint32_t id)
{
	return id == STORE_ACL_OPEN_ID ? &store_acl_open : store_acl_slot_at(s, id)->list;
}

static inline const struct acl_list *store_node_acl(struct store *s, const struct znode *n)
{
	return store_acl_at(s, n->acl_id);
}

/* A node's aversion: kept with its ACL list in the id (store_acl_intern), not in the
 * node, as almost every node has 0 (setACL is rare). Same threads as store_acl_at. */
static inline int32_t store_node_aversion(struct store *s, const struct znode *n)
{
	return n->acl_id == STORE_ACL_OPEN_ID ? 0 : store_acl_slot_at(s, n->acl_id)->aversion;
}

/* Tree primitives (store_tree.c). Lookups: caller holds the shard lock or is the applier. */
struct znode *store_node_find(struct store *s, const char *path, size_t len, uint64_t hash);
static inline uint64_t store_node_hash(const struct znode *n)
{
	return store_hash_bytes(n->path, n->path_len);
}
/* Bits 32..36 of the path hash: used neither by the shard (the top 6) nor by the
 * bucket (the low ones, while a shard has fewer than 2^32 buckets). */
static inline unsigned store_node_hash_tag(uint64_t hash)
{
	return (unsigned)(hash >> 32) & 31u;
}
/*
 * A node with this path (hash: store_hash_bytes of it), owner (ephemeralOwner: its
 * kind follows) and value (data_len -1: null), the rest zero and the open ACL; NULL
 * when out of memory. len must be in 1..STORE_PATH_BYTES_MAX.
 */
struct znode *store_node_new(const char *path, size_t len, uint64_t hash, int64_t owner, const uint8_t *data,
			     int32_t data_len);
/* Frees n, its value, dir and its reference to its ACL list. */
void store_node_free(struct store *s, struct znode *n);
/*
 * Replaces n's value (applier with n's shard locked, or a loader): in place when it
 * fits, else in a block of its own. *displaced gets the block of the old value when it
 * had one (the caller frees it; readers cannot reach it once the lock is released),
 * else NULL. 0, or -ENOMEM with n unchanged.
 */
int store_node_data_set(struct znode *n, const uint8_t *data, int32_t data_len, uint8_t **displaced);
/* Puts n (its path hashing to hash) in its shard's hash (growing the buckets when
 * full); store_node_link does it. */
void store_node_hash_insert(struct store *s, struct znode *n, uint64_t hash);
/* Applier, with the node's and the parent's shards locked. */
void store_node_link(struct store *s, struct znode *parent, struct znode *n, uint64_t hash);
void store_node_unlink(struct store *s, struct znode *parent, struct znode *n);
/*
 * The Stat as clients see it: cversion = 2 * cversion_stored - numChildren, and
 * ephemeralOwner 0 for containers and TTL nodes (ZooKeeper's getClientEphemeralOwner;
 * the znode keeps its marker for the reaper and NOCHILDRENFOREPHEMERALS).
 */
void store_node_stat(struct store *s, const struct znode *n, struct zk_stat *st);
/* A normal ephemeral: owned by a session (not 0, not a container or TTL marker). */
static inline bool store_owner_is_session(int64_t owner)
{
	return owner != 0 && owner != ZK_EPHEMERAL_OWNER_CONTAINER &&
	       (owner & ZK_EPHEMERAL_OWNER_TTL_MASK) != ZK_EPHEMERAL_OWNER_TTL_MASK;
}
/* A container or TTL node: what the reaper (ZooKeeper's ContainerManager) looks at. */
static inline bool store_owner_is_reapable(int64_t owner)
{
	return owner == ZK_EPHEMERAL_OWNER_CONTAINER ||
	       (owner != 0 && (owner & ZK_EPHEMERAL_OWNER_TTL_MASK) == ZK_EPHEMERAL_OWNER_TTL_MASK);
}
/* The TTL in ms of a TTL node's owner marker (low 40 bits as created; 48 as ZooKeeper reads). */
static inline int64_t store_owner_ttl_ms(int64_t owner)
{
	return owner & 0x0000FFFFFFFFFFFFLL;
}
/* Reaper condition (container empty after having had a child / TTL expired). Shard locked. */
bool store_node_reapable_at(const struct znode *n, int64_t now_ms);
/* Puts a container or TTL node on store->reapable (any other node: nothing). */
void store_reapable_link(struct store *s, struct znode *n);
/*
 * Makes room for one more child, making p's dir if it has none (before any
 * mutation; p's shard locked: the dir may move). 0, -ENOMEM or -E2BIG.
 */
int store_node_children_reserve(struct znode *p);
/* Gives back memory of a mostly empty children array (shard locked). */
void store_node_children_trim(struct znode *p);
/* p's dir, made if it has none (p's shard locked); NULL when out of memory. */
struct znode_dir *store_node_dir(struct znode *p);
/* Parent path of path[0..len): length of the prefix, with "/x" -> "/" (1). len must be > 1. */
size_t store_parent_len(const char *path, size_t len);

/* Sessions (store_tree.c). */
struct session *store_session_find(struct store *s, int64_t id); /* applier or rdlock held */
int store_session_ephemeral_add(struct store *s, struct session *se, struct znode *n);
void store_session_ephemeral_remove(struct store *s, struct session *se, struct znode *n);
void store_sessions_init(struct store *s);
void store_sessions_destroy(struct store *s);
int store_session_insert(struct store *s, int64_t id, int32_t timeout_ms, const uint8_t *passwd, size_t passwd_len,
			 int64_t now_ms);
void store_session_remove(struct store *s, int64_t id);

/* Watches (store_watch.c). */
void store_watches_init(struct store *s);
void store_watches_destroy(struct store *s);
/*
 * Registers watcher on path with this kind, replacing the watcher's entry of another
 * mode in the same table (data or child) for that path. The caller holds the path's
 * shard lock; the recursive table's lock is taken inside when needed. auth (may be
 * NULL: unchanged) becomes the watcher's identities for the READ filter of its
 * events. Returns 0 (also when already registered), -ENOMEM, or -E2BIG when the
 * watcher already holds s->watches_per_watcher_max registrations (nothing
 * registered, counted in watch_refused_count).
 */
int store_watch_add(struct store *s, const char *path, size_t len, uint64_t hash, uint64_t watcher,
		    enum watch_kind kind, const struct store_auth *auth, int64_t *seen_zxid);
/*
 * Fires the watches for one change (shard of path locked by the caller; takes the
 * recursive table's lock itself), removing the one-shot ones, as ZooKeeper 3.8's
 * triggerWatch on the data table (created, changed, deleted) and on the child table
 * (children changed, deleted). Each watcher gets at most one event per call:
 *   NODE_CREATED / NODE_DATA_CHANGED: data-table entries of path (standard and
 *     persistent), recursive data entries of path and of every ancestor;
 *   NODE_DELETED: the same plus the child-table entries of path and the recursive
 *     child entries of path and its ancestors;
 *   NODE_CHILDREN_CHANGED: child-table standard and persistent entries of path.
 * acl is the ACL of the node the event is about (for NODE_CHILDREN_CHANGED: of path,
 * the parent): a watcher whose identities lack READ on it gets no event (the
 * one-shot watch is consumed all the same). NULL: no filter.
 * Applier only.
 */
void store_watch_trigger(struct store *s, const char *path, size_t len, uint64_t hash, int32_t type, int64_t zxid,
			 const struct acl_list *acl, store_event_fn fn, void *ctx);

/* Quotas (store_quota.c), applier only. */
#define STORE_QUOTA_PREFIX "/zookeeper/quota"
#define STORE_QUOTA_PREFIX_LEN 16
#define STORE_QUOTA_LIMITS_NAME "zookeeper_limits"
#define STORE_QUOTA_STATS_NAME "zookeeper_stats"

struct quota_root;

/* StatsTrack's four known fields; an absent one reads -1. */
struct store_quota_text {
	int64_t count;
	int64_t bytes;
	int64_t count_hard_limit;
	int64_t byte_hard_limit;
};

void store_quota_init(struct store *s);
void store_quota_destroy(struct store *s);
/* PathTrie's normalized form of raw[0..len) into out (room for len + 1); its length. */
size_t store_quota_normalize(const char *raw, size_t len, char *out);
bool store_quota_root_has(struct store *s, const char *root, size_t len);
/* The k-th root of bucket `bucket` (0..quota.mask) of the root table; false past its end. */
bool store_quota_root_at(const struct store *s, size_t bucket, size_t k, const char **path, size_t *len);
/* Adds or removes a normalized root (len > 1); no-op when already so. */
void store_quota_root_set(struct store *s, const char *root, size_t len, bool member);
/* StatsTrack(byte[]): false where Java throws (null data, malformed text). */
bool store_quota_text_parse(const uint8_t *data, int32_t data_len, struct store_quota_text *out);
/*
 * DataTree.updateQuotaStat's rewrite: parse, add the diffs to count and bytes, format.
 * Returns the new text (malloc'd, *out_len bytes) or NULL where Java throws.
 */
uint8_t *store_quota_stats_update(const uint8_t *data, int32_t data_len, int64_t count_diff, int64_t bytes_diff,
				  int32_t *out_len);
/* DataTree.getCounts: nodes (top included) and data bytes of the subtree; 0, 0 for NULL. */
void store_quota_subtree_counts(const struct znode *top, uint64_t *count, int64_t *bytes);

/*
 * A read's view: called with the lock that orders the read against the applier held
 * (the read's shard, or every shard), after any watch registration. The applier
 * publishes last_zxid under the changed nodes' locks after firing their watches, so
 * the value seen here covers every change the read reflects and no change to what it
 * locked that it does not (conn.h, invariant 2). Keeps the largest value seen.
 */
static inline void store_seen_note(struct store *s, int64_t *seen_zxid)
{
	int64_t z = atomic_load_explicit(&s->last_zxid, memory_order_acquire);
	if (z > *seen_zxid)
		*seen_zxid = z;
}

/* Reads (store_read.c) used by multiRead. */
int32_t store_read_one(struct store *s, int64_t session_id, uint64_t watcher, const struct store_auth *auth,
		       int32_t opcode, struct jute_reader *r, struct jute_writer *out, int64_t *seen_zxid);

/*
 * ClickHouse's FilteredListWithStatsAndData (506) and ListRecursive (507), store_list.c.
 * store_list_read decodes the request from r and appends the reply (nothing on error);
 * watch_allowed false ignores 506's watch flag (multiRead). store_list_decode only
 * checks that r holds a well-formed request (non-null path) and consumes it.
 */
bool store_list_op(int32_t opcode);
bool store_list_decode(struct jute_reader *r, int32_t opcode);
int32_t store_list_read(struct store *s, uint64_t watcher, const struct store_auth *auth, int32_t opcode,
			struct jute_reader *r, bool watch_allowed, struct jute_writer *out, int64_t *seen_zxid);

void store_lock_all(struct store *s);
void store_unlock_all(struct store *s);

#endif
