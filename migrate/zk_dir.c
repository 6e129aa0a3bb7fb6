/*
 * zk_dir.c — a ZooKeeper data directory into a zk_tree: which snapshot, which logs,
 * the continuity, checksum and digest checks (the rules are in zk_read.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "migrate/zk_read.h"

#define DIGEST_WARNINGS_MAX 5

struct zk_file {
	int64_t zxid;
	char name[256];
};

struct reader {
	const struct zk_read_options *opt;
	struct zk_read_report *rep;
	FILE *out;
	char *why;
	size_t why_size;
};

static void warn(struct reader *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct reader *R, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ringkeeper-migrate: warning: ", R->out);
	vfprintf(R->out, fmt, ap);
	fputc('\n', R->out);
	va_end(ap);
}

static int refuse(struct reader *R, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct reader *R, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(R->why, R->why_size, fmt, ap);
	va_end(ap);
	return err;
}

void zk_session_passwd(int64_t session_id, uint8_t out[16])
{
	/* java.util.Random(id ^ superSecret).nextBytes(16) */
	const uint64_t mult = 0x5DEECE66DULL, mask = (1ULL << 48) - 1;
	uint64_t seed = (((uint64_t)session_id ^ 0xB3415C00ULL) ^ mult) & mask;
	for (int i = 0; i < 16;) {
		seed = (seed * mult + 0xBULL) & mask;
		uint32_t rnd = (uint32_t)(seed >> 16);
		for (int n = 0; n < 4 && i < 16; n++, rnd >>= 8)
			out[i++] = (uint8_t)rnd;
	}
}

/* ---------------------------------------------------------------- listing */

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <dir>/version-2 when it exists (a dataDir), else dir itself. */
static void resolve(const char *dir, char *out, size_t size)
{
	snprintf(out, size, "%s/version-2", dir);
	if (!is_dir(out))
		snprintf(out, size, "%s", dir);
}

static int cmp_asc(const void *a, const void *b)
{
	int64_t x = ((const struct zk_file *)a)->zxid, y = ((const struct zk_file *)b)->zxid;
	return (x > y) - (x < y);
}

/* The files "<prefix>.<hex>[.ext]" of dir, ascending by zxid. */
static int list_files(struct reader *R, const char *dir, const char *prefix, bool snapshots, struct zk_file **out,
		      size_t *count)
{
	*out = NULL;
	*count = 0;
	DIR *d = opendir(dir);
	if (!d)
		return refuse(R, -errno, "cannot read %s: %s", dir, strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		int64_t zxid;
		if (!zk_file_zxid(e->d_name, prefix, &zxid))
			continue;
		const char *ext = strchr(e->d_name + strlen(prefix) + 1, '.');
		bool known = !ext || (snapshots && zk_compression_of_name(e->d_name) != ZK_COMPRESSION_NONE &&
				      strchr(ext + 1, '.') == NULL);
		if (!known || strlen(e->d_name) >= sizeof (*out)->name) {
			warn(R, "%s/%s is not a name ZooKeeper writes: left alone", dir, e->d_name);
			continue;
		}
		if (*count == cap) {
			cap = cap ? cap * 2 : 64;
			struct zk_file *p = realloc(*out, cap * sizeof *p);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			*out = p;
		}
		(*out)[*count].zxid = zxid;
		snprintf((*out)[*count].name, sizeof (*out)[*count].name, "%s", e->d_name);
		(*count)++;
	}
	closedir(d);
	if (rc == 0 && *count)
		qsort(*out, *count, sizeof **out, cmp_asc);
	return rc;
}

/* ---------------------------------------------------------------- the snapshot */

static int load_snapshot(struct reader *R, const char *dir, struct zk_tree **tree)
{
	struct zk_file *snaps;
	size_t count;
	int rc = list_files(R, dir, "snapshot", true, &snaps, &count);
	if (rc < 0)
		return rc;
	if (count == 0) {
		free(snaps);
		return refuse(R, -ENOENT,
			      "no snapshot.* in %s: not a ZooKeeper data directory (ZooKeeper writes snapshot.0 when it first "
			      "starts)",
			      dir);
	}
	rc = -ENOENT;
	for (size_t k = count; k-- > 0;) {
		char path[PATH_MAX + 320];
		snprintf(path, sizeof path, "%s/%s", dir, snaps[k].name);
		char why[1024];
		rc = zk_snap_load(path, snaps[k].zxid, tree, &R->rep->snap, why, sizeof why);
		if (rc == -ENODATA) {
			warn(R, "%s; using the snapshot before it, as ZooKeeper would", why);
			R->rep->snapshots_skipped++;
			continue;
		}
		if (rc < 0) {
			refuse(R, rc, "%s", why);
			break;
		}
		snprintf(R->rep->snapshot_path, sizeof R->rep->snapshot_path, "%s", path);
		R->rep->snapshot_zxid = snaps[k].zxid;
		R->rep->compression = zk_compression_of_name(snaps[k].name);
		break;
	}
	if (rc == -ENODATA)
		refuse(R, -ENOENT, "every snapshot in %s is incomplete", dir);
	free(snaps);
	return rc;
}

/* ---------------------------------------------------------------- the logs */

/* A txn zxid that may follow prev: the next in its epoch, or a later epoch's first. */
static bool continues(int64_t prev, int64_t next)
{
	if (next == prev + 1)
		return true;
	return zk_zxid_epoch(next) > zk_zxid_epoch(prev) && zk_zxid_counter(next) == 1;
}

struct replay {
	struct zk_tree *t;
	int64_t snap_zxid;
	int64_t prev;          /* last zxid applied (snap_zxid before any) */
	bool fuzzy;            /* the snapshot's digest zxid is still ahead */
	int64_t fuzzy_zxid;
	int64_t fuzzy_digest;
	bool last_has_digest;  /* the last applied txn carried a usable digest */
	bool last_digest_ok;
};

static void check_digest(struct reader *R, struct replay *P, const struct zk_txn *txn)
{
	int64_t z = txn->hdr.zxid;
	if (P->fuzzy && z == P->fuzzy_zxid) {
		P->fuzzy = false;
		R->rep->digests_checked++;
		if ((int64_t)zk_tree_digest(P->t) != P->fuzzy_digest) {
			R->rep->digest_mismatches++;
			warn(R, "the tree after txn 0x%llx does not have the digest the snapshot recorded for it",
			     (unsigned long long)z);
		}
	}
	P->last_has_digest = false;
	if (P->fuzzy || !txn->has_digest || txn->digest_version != ZK_DIGEST_VERSION)
		return;
	P->last_has_digest = true;
	P->last_digest_ok = (int64_t)zk_tree_digest(P->t) == txn->digest;
	R->rep->digests_checked++;
	if (!P->last_digest_ok && ++R->rep->digest_mismatches <= DIGEST_WARNINGS_MAX)
		warn(R, "the tree after txn 0x%llx (%s) has digest 0x%llx; ZooKeeper logged 0x%llx", (unsigned long long)z,
		     zk_txn_type_name(txn->hdr.type), (unsigned long long)zk_tree_digest(P->t),
		     (unsigned long long)txn->digest);
}

/* Reads one log file's txns into the tree. 0 or a refusal. */
static int replay_file(struct reader *R, struct replay *P, const char *path)
{
	struct zk_log_file *f;
	struct zk_file_header hdr;
	int rc = zk_log_open(path, &f, &hdr, R->why, R->why_size);
	if (rc < 0)
		return rc;
	R->rep->log_files++;
	for (;;) {
		struct zk_txn txn;
		rc = zk_log_next(f, &txn, R->why, R->why_size);
		if (rc < 0)
			break;
		if (rc == ZK_LOG_END) {
			rc = 0;
			break;
		}
		if (rc == ZK_LOG_PARTIAL) {
			R->rep->partial_records++;
			warn(R, "%s ends with a record cut short at byte %llu (a crash while ZooKeeper appended it; "
				"ZooKeeper ignores it too)",
			     path, (unsigned long long)zk_log_offset(f));
			rc = 0;
			break;
		}
		int64_t z = txn.hdr.zxid;
		if (P->prev == P->snap_zxid && z <= P->snap_zxid && R->rep->txns_applied == 0) {
			R->rep->txns_before++; /* in the snapshot already */
			continue;
		}
		if (!continues(P->prev, z)) {
			rc = refuse(R, -EBADMSG,
				    "%s at byte %llu: txn 0x%llx does not continue 0x%llx (%s): the transaction logs have a "
				    "gap or do not belong to this %s",
				    path, (unsigned long long)zk_log_offset(f), (unsigned long long)z,
				    (unsigned long long)P->prev,
				    R->rep->txns_applied ? "the txn before it" : "the snapshot's zxid",
				    R->rep->txns_applied ? "sequence" : "snapshot");
			break;
		}
		char why[512];
		rc = zk_tree_apply(P->t, &txn, why, sizeof why);
		if (rc < 0) {
			refuse(R, rc, "%s at byte %llu: %s", path, (unsigned long long)zk_log_offset(f),
			       rc == -EBADMSG ? why : strerror(-rc));
			break;
		}
		P->prev = z;
		R->rep->txns_applied++;
		check_digest(R, P, &txn);
	}
	zk_log_close(f);
	return rc;
}

static int replay_logs(struct reader *R, const char *dir, struct replay *P)
{
	struct zk_file *logs;
	size_t count;
	int rc = list_files(R, dir, "log", false, &logs, &count);
	if (rc < 0)
		return rc;
	/* The newest log starting at or before the snapshot, and every later one. */
	size_t first = 0;
	for (size_t k = 0; k < count; k++)
		if (logs[k].zxid <= P->snap_zxid)
			first = k;
	for (size_t k = first; rc == 0 && k < count; k++) {
		char path[PATH_MAX + 320];
		snprintf(path, sizeof path, "%s/%s", dir, logs[k].name);
		rc = replay_file(R, P, path);
	}
	free(logs);
	return rc;
}

/* Every zxid a node carries must be at most the last one: the new log continues there. */
static int check_zxids(struct reader *R, const struct zk_tree *t, int64_t last)
{
	for (const struct zk_node *n = zk_tree_root(t); n; n = zk_tree_next(n)) {
		int64_t m = n->czxid > n->mzxid ? n->czxid : n->mzxid;
		if (n->pzxid > m)
			m = n->pzxid;
		if (m > last)
			return refuse(R, -EBADMSG,
				      "node %s carries zxid 0x%llx, past the last txn 0x%llx: the snapshot holds changes the "
				      "logs do not (a log is missing)",
				      n->path, (unsigned long long)m, (unsigned long long)last);
	}
	return 0;
}

static int final_digest(struct reader *R, struct replay *P)
{
	struct zk_read_report *rep = R->rep;
	if (P->fuzzy) {
		return refuse(R, -EBADMSG,
			      "the snapshot %s was still being written at txn 0x%llx (its digest's zxid), but the logs end at "
			      "0x%llx: a log is missing",
			      rep->snapshot_path, (unsigned long long)P->fuzzy_zxid, (unsigned long long)P->prev);
	}
	if (rep->txns_applied) {
		rep->final_digest_checked = P->last_has_digest;
		rep->final_digest_ok = P->last_has_digest && P->last_digest_ok;
	} else if (rep->snap.has_digest && rep->snap.digest_version == ZK_DIGEST_VERSION &&
		   rep->snap.digest_zxid == P->snap_zxid) {
		rep->final_digest_checked = true;
		rep->final_digest_ok = (int64_t)zk_tree_digest(P->t) == rep->snap.digest;
		rep->digests_checked++;
	}
	if (!rep->final_digest_checked || rep->final_digest_ok)
		return 0;
	if (R->opt->ignore_digest) {
		warn(R, "the rebuilt tree's digest differs from ZooKeeper's at 0x%llx (--ignore-digest: going on)",
		     (unsigned long long)P->prev);
		return 0;
	}
	return refuse(R, -EBADMSG,
		      "the rebuilt tree's digest 0x%llx differs from the one ZooKeeper recorded at 0x%llx: the files do not "
		      "describe one consistent tree (--ignore-digest converts anyway)",
		      (unsigned long long)zk_tree_digest(P->t), (unsigned long long)P->prev);
}

int zk_read_dir(const struct zk_read_options *opt, struct zk_tree **out, struct zk_read_report *rep, char *why,
		size_t why_size)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*out = NULL;
	memset(rep, 0, sizeof *rep);
	struct reader R = { .opt = opt, .rep = rep, .out = opt->out ? opt->out : stderr, .why = why, .why_size = why_size };
	char snap_dir[PATH_MAX], log_dir[PATH_MAX];
	resolve(opt->data_dir, snap_dir, sizeof snap_dir);
	resolve(opt->log_dir ? opt->log_dir : opt->data_dir, log_dir, sizeof log_dir);
	struct zk_tree *t = NULL;
	int rc = load_snapshot(&R, snap_dir, &t);
	if (rc < 0)
		return rc;
	struct replay P = { .t = t, .snap_zxid = rep->snapshot_zxid, .prev = rep->snapshot_zxid };
	const struct zk_snap_info *si = &rep->snap;
	/* DataTree.deserializeZxidDigest / compareSnapshotDigests */
	if (si->has_digest && si->digest_zxid > 0 && si->digest_zxid >= P.snap_zxid &&
	    si->digest_version == ZK_DIGEST_VERSION) {
		if (si->digest_zxid == P.snap_zxid) {
			rep->digests_checked++;
			if ((int64_t)zk_tree_digest(t) != si->digest) {
				rep->digest_mismatches++;
				warn(&R, "the snapshot's tree does not have the digest it recorded");
			}
		} else {
			P.fuzzy = true;
			P.fuzzy_zxid = si->digest_zxid;
			P.fuzzy_digest = si->digest;
		}
	}
	rc = replay_logs(&R, log_dir, &P);
	if (rc == 0)
		rc = final_digest(&R, &P);
	if (rc == 0)
		rc = check_zxids(&R, t, P.prev);
	if (rc == 0) {
		rc = zk_tree_close_dead_owners(t, P.prev, why, why_size);
		if (rc < 0 && rc != -EBADMSG)
			refuse(&R, rc, "%s", strerror(-rc));
	}
	if (rc < 0) {
		zk_tree_free(t);
		return rc;
	}
	rep->last_zxid = P.prev;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rep->ms = (uint64_t)((int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	*out = t;
	return 0;
}
