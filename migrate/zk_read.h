/*
 * zk_read.h — reading a ZooKeeper 3.x data directory into a zk_tree: the newest
 * complete snapshot, then the transaction logs after it, checked for continuity and
 * checksums (file layouts in zk_format.h).
 *
 * Which files (as ZooKeeper's FileTxnSnapLog.restore, stricter where it only warns)
 *   1. Snapshots, newest first. One that is INCOMPLETE (cut short: a crash while it
 *      was written; a plain one without its closing "/" seal, a compressed one whose
 *      stream ends early or has no magic) is skipped with a warning, as ZooKeeper
 *      skips it. One that is DAMAGED (its Adler-32 seal does not match, gzip or
 *      snappy data errors, a malformed record) is refused: ZooKeeper would quietly
 *      fall back to an older one, a migration should not.
 *   2. The logs ZooKeeper would read after snapshot zxid S: every log.<z> with z > S,
 *      and the newest with z <= S. Txns with zxid <= S are in the snapshot already.
 *   3. The txns after S must CONTINUE it: each next zxid is the previous + 1, or the
 *      first of a later epoch (counter 1). Anything else is a gap (a missing or
 *      foreign log) and is refused, naming the file and both zxids.
 *   4. A record whose Adler-32 does not match, a bad magic, an unreasonable length or
 *      a txn ZooKeeper cannot decode are refused. A record cut short at the end of a
 *      file (ZooKeeper's "last transaction was partial": a crash while appending)
 *      ends that file, with a warning; what follows must still continue (rule 3).
 *   5. Digests (3.6+): the tree digest the model computes is compared with each
 *      txn's TxnDigest once past the snapshot's fuzzy range (and with the
 *      snapshot's own digest). The final one must match (else refused unless
 *      ignore_digest); earlier mismatches inside a fuzzy range are reported only.
 *   6. After the log, the ephemerals of owners without a session are deleted at the
 *      last zxid, as ZooKeeper's next start would.
 */
#ifndef RK_ZK_READ_H
#define RK_ZK_READ_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "migrate/zk_format.h"
#include "migrate/zk_stream.h"
#include "migrate/zk_tree.h"

/* ------------------------------------------------------------ one snapshot file */

struct zk_snap_info {
	int64_t dbid;
	uint64_t sessions;
	uint64_t acls;
	uint64_t nodes;
	uint64_t bytes; /* uncompressed */
	bool has_digest;
	int64_t digest_zxid;
	int32_t digest_version;
	int64_t digest;
};

/*
 * Loads snapshot file `path` (its zxid from the name) into a new tree (*out; the
 * caller frees it). 0, -ENODATA (incomplete), -EBADMSG (damaged), -ENOTSUP (a
 * compression this build cannot read) or -errno; why says what.
 */
int zk_snap_load(const char *path, int64_t zxid, struct zk_tree **out, struct zk_snap_info *info, char *why,
		 size_t why_size);

/* ------------------------------------------------------------ one log file */

struct zk_log_file;

enum zk_log_next {
	ZK_LOG_TXN = 0,     /* *txn holds one (views valid until the next call) */
	ZK_LOG_END = 1,     /* the end: end of file or preallocated zeros */
	ZK_LOG_PARTIAL = 2, /* a record cut short ends the file */
};

/* Opens and checks the header. 0, -EBADMSG (not a log), -errno. */
int zk_log_open(const char *path, struct zk_log_file **out, struct zk_file_header *hdr, char *why, size_t why_size);
/* One record: an enum zk_log_next, or -EBADMSG (damaged), -errno. */
int zk_log_next(struct zk_log_file *f, struct zk_txn *txn, char *why, size_t why_size);
/* Byte offset of the record last returned (for messages). */
uint64_t zk_log_offset(const struct zk_log_file *f);
void zk_log_close(struct zk_log_file *f);

/* ------------------------------------------------------------ a whole directory */

struct zk_read_options {
	const char *data_dir; /* ZooKeeper's dataDir (or its version-2) */
	const char *log_dir;  /* dataLogDir; NULL: data_dir */
	bool ignore_digest;   /* a final digest mismatch is a warning, not a refusal */
	FILE *out;            /* progress and warnings (NULL: stderr) */
};

struct zk_read_report {
	char snapshot_path[PATH_MAX + 320];
	int64_t snapshot_zxid;
	enum zk_compression compression;
	struct zk_snap_info snap;
	uint32_t snapshots_skipped; /* incomplete newer ones */
	uint32_t log_files;         /* logs read */
	uint32_t partial_records;   /* files ended by a record cut short */
	uint64_t txns_before;       /* read and skipped: in the snapshot already */
	uint64_t txns_applied;
	int64_t last_zxid;
	uint64_t digests_checked;
	uint64_t digest_mismatches; /* before the final check */
	bool final_digest_checked;
	bool final_digest_ok;
	uint64_t ms;
};

/*
 * Reads the directory into *out (the caller frees it). 0, or a negative errno with
 * why saying what is wrong and where: -ENOENT (no snapshot at all), -EBADMSG
 * (damaged, a gap, a digest mismatch), -ENOTSUP, -ENOMEM.
 */
int zk_read_dir(const struct zk_read_options *opt, struct zk_tree **out, struct zk_read_report *rep, char *why,
		size_t why_size);

/* ZooKeeperServer.generatePasswd: the password ZooKeeper expects from a session. */
void zk_session_passwd(int64_t session_id, uint8_t out[16]);

#endif
