/*
 * migrate.h — from a ZooKeeper tree (zk_read.h: a data directory read and replayed)
 * to a RingKeeper data directory, and the node-by-node comparison of the two.
 *
 * WHAT IS WRITTEN (RingKeeper's layout; the server starts from it as after a restart)
 *
 *   <out>/snapshot/snapshot.<Z>.rk   the whole tree and session table at log index Z,
 *                                    Z = ZooKeeper's last zxid (RingKeeper's zxid is
 *                                    its log index, so every czxid/mzxid/pzxid and a
 *                                    client's last-seen zxid stay valid, and the next
 *                                    write gets Z + 1, above all of them)
 *   <out>/raft-state                 term = the epoch of Z (zxid >> 32; 1 when it is 0,
 *                                    as on a standalone ZooKeeper), no vote, commit Z
 *   <out>/myid                       when given, or copied from ZooKeeper's dataDir
 *   <out-log>/log/                   an empty write-ahead log: it continues at Z + 1
 *
 * Carried over exactly: every node's path, data (null stays null), ACL, and Stat as
 * persisted (czxid, mzxid, pzxid, ctime, mtime, version, cversion as a create count,
 * aversion, ephemeralOwner with the container and TTL markers); sessions with their
 * timeouts and the password ZooKeeper derives from each id (so a client can resume
 * its session on RingKeeper); the quota paths. Not carried: /zookeeper/config (made
 * by RingKeeper from its own configuration); /keeper and below are carried but the
 * server hides them while keeperApiNodes is on (a warning says so).
 *
 * Refused: an output that already holds a RingKeeper state (raft-state, snapshots or
 * log segments), a myid that differs from one already there, a ZooKeeper that never
 * wrote a txn (Z = 0: start RingKeeper empty instead).
 */
#ifndef RK_MIGRATE_H
#define RK_MIGRATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "migrate/zk_tree.h"

struct migrate_write_options {
	const char *out_dir;     /* RingKeeper's dataDir */
	const char *out_log_dir; /* dataLogDir; NULL: out_dir */
	int64_t myid;            /* > 0: written; 0: copied from zk_data_dir/myid if there */
	const char *zk_data_dir; /* ZooKeeper's dataDir (for myid) */
	FILE *out;               /* warnings (NULL: stderr) */
};

struct migrate_write_report {
	uint64_t index;
	uint64_t term;
	uint64_t nodes;
	uint64_t sessions;
	uint64_t quota_roots;
	uint64_t file_bytes;
	int64_t myid;            /* written or found (0: none) */
	char snapshot_path[PATH_MAX + 64];
	uint64_t ms;
};

/* 0, or -errno with why saying what (the output is left as it was or incomplete). */
int migrate_write(const struct zk_tree *t, const struct migrate_write_options *opt, struct migrate_write_report *rep,
		  char *why, size_t why_size);

struct migrate_verify_report {
	uint64_t index;          /* of the snapshot compared */
	uint64_t nodes_compared;
	uint64_t sessions_compared;
	uint64_t differences;
	uint64_t ms;
};

/*
 * Loads the newest snapshot of <out_dir>/snapshot into a fresh store and compares it
 * with t through the store's read API (as a client would read it): for every node
 * path, data, ACL and every Stat field, the children on both sides, then the sessions
 * (id, timeout, password). Each difference is a line on `diffs` (at most print_max
 * of them; the count goes on). 0 (rep->differences says whether any), or -errno
 * when the snapshot cannot be loaded (why says why).
 */
int migrate_verify(const struct zk_tree *t, const char *out_dir, FILE *diffs, uint64_t print_max,
		   struct migrate_verify_report *rep, char *why, size_t why_size);

#endif
