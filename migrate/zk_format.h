/*
 * zk_format.h — ZooKeeper 3.x's on-disk records (zookeeper.jute and the persistence
 * classes FileSnap, FileTxnLog, SnapStream, SerializeUtils), decoded into views.
 *
 * FILES (in <dataDir>/version-2 and <dataLogDir>/version-2; jute is big-endian)
 *
 *   snapshot.<zxid hex>[.gz|.snappy]    the tree at (at least) zxid, fuzzy: taken while
 *                                       later txns were applied, so some of them may be
 *                                       in it already (replaying them is idempotent)
 *     FileHeader {int magic "ZKSN"; int version 2; long dbid}
 *     int count; count x {long session id; int timeout ms}
 *     int count; count x {long acl id; vector<ACL> acls}      the ACL cache
 *     nodes, each {ustring path; buffer data; long acl id; StatPersisted}, parents first,
 *       the root's path ""; acl id -1 is OPEN_ACL_UNSAFE; ended by the path "/"
 *     seal {long Adler-32 of every byte before it; ustring "/"}
 *     3.6+: ZxidDigest {long zxid; int version; version >= 2 ? long digest : ustring hex}
 *           and a second seal over everything before it
 *
 *   log.<zxid hex>   txns from zxid on (the file is named by its first txn)
 *     FileHeader {int magic "ZKLG"; int version 2; long dbid}
 *     records {long Adler-32 of the entry; int length; entry bytes; byte 'B'}
 *     entry = TxnHeader {long clientId; int cxid; long zxid; long time; int type},
 *             the txn record of that type, and (3.6+) TxnDigest {int version; long digest}
 *     A length of 0 ends the file (the rest is preallocated zeros); a record cut short
 *     or without its 'B' also ends it (ZooKeeper's "last transaction was partial").
 *
 * TXN RECORDS by type (TxnHeader.type, ZooDefs.OpCode)
 *   create(1) create2(15)   CreateTxn {path; data; vector<ACL>; bool ephemeral;
 *                            int parentCVersion}; create alone may be CreateTxnV0
 *                            (no parentCVersion: -1)
 *   createContainer(19)     CreateContainerTxn {path; data; acl; int parentCVersion}
 *   createTTL(21)           CreateTTLTxn {path; data; acl; int parentCVersion; long ttl}
 *   delete(2) deleteContainer(20)   DeleteTxn {path}
 *   setData(5) reconfig(16) SetDataTxn {path; data; int version}
 *   setACL(7)               SetACLTxn {path; acl; int version}
 *   check(13, in multi)     CheckVersionTxn {path; int version}
 *   createSession(-10)      CreateSessionTxn {int timeOut}
 *   closeSession(-11)       CloseSessionTxn {vector<ustring> paths2Delete}, or nothing
 *   error(-1)               ErrorTxn {int err}
 *   multi(14)               MultiTxn {vector<Txn {int type; buffer data}>}
 *
 * Views point into the bytes decoded; nothing here allocates.
 */
#ifndef RK_ZK_FORMAT_H
#define RK_ZK_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"

#define ZK_SNAP_MAGIC 0x5A4B534Eu /* "ZKSN" */
#define ZK_LOG_MAGIC 0x5A4B4C47u  /* "ZKLG" */
#define ZK_FILE_VERSION 2
#define ZK_FILE_HEADER_BYTES 16u
#define ZK_DIGEST_VERSION 2 /* DigestCalculator.DIGEST_VERSION */
#define ZK_ACL_OPEN_ID (-1LL) /* ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID */
/* Bounds on what a record may claim before anything is taken from it. */
#define ZK_PATH_BYTES_MAX (1u << 20)
#define ZK_DATA_BYTES_MAX (256u << 20)
#define ZK_TXN_BYTES_MAX (ZK_DATA_BYTES_MAX + (1u << 20))
#define ZK_ACL_ENTRIES_MAX 65536
#define ZK_MULTI_OPS_MAX 1000000

static inline uint32_t zk_zxid_epoch(int64_t zxid) { return (uint32_t)((uint64_t)zxid >> 32); }
static inline uint32_t zk_zxid_counter(int64_t zxid) { return (uint32_t)zxid; }

/* "<prefix>.<hex>[.ext]" (Util.getZxidFromName): true and *zxid for such a name. */
bool zk_file_zxid(const char *name, const char *prefix, int64_t *zxid);

struct zk_file_header {
	uint32_t magic;
	int32_t version;
	int64_t dbid;
};

void zk_read_file_header(struct jute_reader *r, struct zk_file_header *h);

/*
 * Reads a jute buffer/string whose length is first checked against max: a length
 * below -1 or past max sets *bad (a malformed record, not a short read).
 */
struct jute_bytes zk_read_bytes(struct jute_reader *r, uint32_t max, bool *bad);
/* A vector<ACL> as its raw encoding (count and entries), checked entry by entry. */
struct jute_bytes zk_read_acl_vector(struct jute_reader *r, bool *bad);

struct zk_txn_header {
	int64_t client_id;
	int32_t cxid;
	int64_t zxid;
	int64_t time;
	int32_t type;
};

/* One txn record (a top-level one or a multi's sub-txn), decoded by type. */
struct zk_txn_body {
	int32_t type;
	struct jute_bytes path;
	struct jute_bytes data;
	struct jute_bytes acl;     /* raw vector<ACL> */
	bool ephemeral;
	int32_t parent_cversion;   /* -1: CreateTxnV0 (the parent's + 1) */
	int64_t ttl;
	int32_t version;
	int32_t timeout_ms;        /* createSession */
	int32_t err;               /* error */
	bool has_paths;            /* closeSession with CloseSessionTxn */
	struct jute_bytes paths;   /* its vector<ustring>, raw (count and strings) */
	struct jute_bytes ops;     /* multi: raw vector<Txn> (count and entries) */
};

struct zk_txn {
	struct zk_txn_header hdr;
	struct zk_txn_body body;
	bool has_digest;
	int32_t digest_version;
	int64_t digest;
};

/*
 * Decodes one log entry (TxnHeader, txn, optional TxnDigest) as ZooKeeper's
 * SerializeUtils.deserializeTxn does. 0, or -EBADMSG with why set (an unknown type,
 * a malformed record).
 */
int zk_txn_decode(const uint8_t *p, size_t len, struct zk_txn *t, char *why, size_t why_size);
/*
 * Decodes a multi's sub-txn {type, data} (the types DataTree.processTxn accepts in a
 * multi: create, createTTL, createContainer, delete, deleteContainer, setData, check,
 * error). 0, -ENOTSUP (another type: ZooKeeper stops the multi there), -EBADMSG.
 */
int zk_txn_sub_decode(int32_t type, struct jute_bytes data, struct zk_txn_body *b, char *why, size_t why_size);
/* The name of a txn type ("create", "closeSession", ...) or "type <n>". */
const char *zk_txn_type_name(int32_t type);

#endif
