/*
 * migrate_main.c — ringkeeper-migrate: converts a stopped ZooKeeper 3.x data directory
 * into a RingKeeper data directory (migrate.h says what is written, zk_read.h what is
 * read and refused), and optionally compares the two trees node by node.
 *
 *   ringkeeper-migrate --zk-data DIR [--zk-log DIR] --out DIR [--out-log DIR]
 *                      [--myid N] [--verify] [--ignore-digest]
 *   ringkeeper-migrate --config zoo.cfg [--verify]     dataDir/dataLogDir from the file,
 *                                                      both for reading and writing
 *   ringkeeper-migrate ... --verify-only               compare with a converted directory
 *
 * Exit status: 0 done (and no difference); 1 a usage or I/O error; 2 the ZooKeeper
 * directory is refused (inconsistent, damaged, or a gap); 3 --verify found differences.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/migrate.h"
#include "migrate/zk_read.h"

#define EXIT_USAGE 1
#define EXIT_REFUSED 2
#define EXIT_DIFFERENT 3
#define VERIFY_PRINT_MAX 1000

static void usage(FILE *f)
{
	fputs("usage: ringkeeper-migrate --zk-data DIR [--zk-log DIR] --out DIR [--out-log DIR]\n"
	      "                          [--myid N] [--verify | --verify-only] [--ignore-digest]\n"
	      "       ringkeeper-migrate --config zoo.cfg [--verify | --verify-only] [--ignore-digest]\n"
	      "\n"
	      "Converts a stopped ZooKeeper 3.x data directory (version-2/snapshot.* and the log.*\n"
	      "after it) into a RingKeeper data directory whose log continues at ZooKeeper's last\n"
	      "zxid. Stop ZooKeeper first.\n"
	      "\n"
	      "  --zk-data DIR     ZooKeeper's dataDir (or its version-2 directory)\n"
	      "  --zk-log DIR      ZooKeeper's dataLogDir, when it is not dataDir\n"
	      "  --out DIR         RingKeeper's dataDir to write (may be ZooKeeper's dataDir: the\n"
	      "                    files do not collide); it must not hold a RingKeeper state yet\n"
	      "  --out-log DIR     RingKeeper's dataLogDir, when it is not dataDir\n"
	      "  --config FILE     a zoo.cfg: its dataDir and dataLogDir are read and written\n"
	      "  --myid N          write N to <out>/myid (default: ZooKeeper's dataDir/myid, if any)\n"
	      "  --verify          after converting, load the result and compare every node (path,\n"
	      "                    data, ACL, every Stat field) and session; print the differences\n"
	      "  --verify-only     only compare ZooKeeper's directory with an existing conversion\n"
	      "                    (before RingKeeper has taken writes on it)\n"
	      "  --ignore-digest   convert even when the rebuilt tree's digest differs from the one\n"
	      "                    ZooKeeper recorded\n"
	      "\n"
	      "Exit status: 0 done, 1 usage or I/O error, 2 ZooKeeper directory refused,\n"
	      "3 differences found by --verify.\n",
	      f);
}

/* dataDir and dataLogDir of a zoo.cfg (key=value lines, '#' comments). */
static int read_config(const char *path, char **data_dir, char **log_dir)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "ringkeeper-migrate: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (!eq)
			continue;
		char *k_end = eq;
		while (k_end > p && (k_end[-1] == ' ' || k_end[-1] == '\t'))
			k_end--;
		*k_end = '\0';
		char *v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strlen(v);
		while (n && (v[n - 1] == '\n' || v[n - 1] == '\r' || v[n - 1] == ' ' || v[n - 1] == '\t'))
			v[--n] = '\0';
		char **dst = strcmp(p, "dataDir") == 0 ? data_dir : strcmp(p, "dataLogDir") == 0 ? log_dir : NULL;
		if (dst) {
			free(*dst);
			*dst = strdup(v);
		}
	}
	fclose(f);
	if (!*data_dir) {
		fprintf(stderr, "ringkeeper-migrate: %s has no dataDir\n", path);
		return -EINVAL;
	}
	return 0;
}

static void print_read(const struct zk_read_report *r, const struct zk_tree *t)
{
	const struct zk_tree_stats *st = zk_tree_stats(t);
	printf("zookeeper: snapshot %s (zxid 0x%" PRIx64 ", compression %s, %" PRIu64 " nodes, %" PRIu64 " sessions%s)\n",
	       r->snapshot_path, r->snapshot_zxid, zk_compression_name(r->compression), r->snap.nodes, r->snap.sessions,
	       r->snap.has_digest ? ", with digest" : "");
	if (r->snapshots_skipped)
		printf("zookeeper: %u newer snapshot(s) skipped as incomplete\n", r->snapshots_skipped);
	printf("zookeeper: %u log file(s), %" PRIu64 " txns replayed after the snapshot (%" PRIu64
	       " before it skipped), last zxid 0x%" PRIx64 " (epoch %u)\n",
	       r->log_files, r->txns_applied, r->txns_before, r->last_zxid, zk_zxid_epoch(r->last_zxid));
	printf("zookeeper: txns by type:");
	static const int32_t types[] = { -10, -11, 1, 15, 19, 21, 2, 20, 5, 16, 7, 14, -1 };
	for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
		uint64_t n = st->by_type[zk_tree_type_slot(types[i])];
		if (n)
			printf(" %s=%" PRIu64, zk_txn_type_name(types[i]), n);
	}
	printf("\n");
	printf("zookeeper: %" PRIu64 " replay errors ignored as ZooKeeper ignores them (fuzzy snapshot), %" PRIu64
	       " cversion fix-ups, %" PRIu64 " ephemerals of closed sessions removed\n",
	       st->errors_ignored, st->cversion_fixups, st->dead_owner_nodes);
	if (r->final_digest_checked)
		printf("zookeeper: digest %s (%" PRIu64 " checked, %" PRIu64 " earlier mismatches in the fuzzy range)\n",
		       r->final_digest_ok ? "matches ZooKeeper's" : "DIFFERS from ZooKeeper's", r->digests_checked,
		       r->digest_mismatches);
	else
		printf("zookeeper: no digest to check (written by a ZooKeeper before 3.6, or digests off)\n");
	printf("zookeeper: tree of %" PRIu64 " nodes, %" PRIu64 " sessions, read in %" PRIu64 " ms\n",
	       zk_tree_node_count(t), zk_tree_session_count(t), r->ms);
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "zk-data", required_argument, NULL, 'z' },
		{ "zk-log", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "out-log", required_argument, NULL, 'L' },
		{ "config", required_argument, NULL, 'c' },
		{ "myid", required_argument, NULL, 'm' },
		{ "verify", no_argument, NULL, 'v' },
		{ "verify-only", no_argument, NULL, 'V' },
		{ "ignore-digest", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *zk_data = NULL, *zk_log = NULL, *out = NULL, *out_log = NULL, *config = NULL;
	int64_t myid = 0;
	bool verify = false, verify_only = false, ignore_digest = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'z': zk_data = strdup(optarg); break;
		case 'l': zk_log = strdup(optarg); break;
		case 'o': out = strdup(optarg); break;
		case 'L': out_log = strdup(optarg); break;
		case 'c': config = optarg; break;
		case 'm': {
			char *end;
			long long v = strtoll(optarg, &end, 10);
			if (*end || v <= 0 || v > 255) {
				fprintf(stderr, "ringkeeper-migrate: --myid takes a server number 1..255\n");
				return EXIT_USAGE;
			}
			myid = v;
			break;
		}
		case 'v': verify = true; break;
		case 'V': verify_only = true; break;
		case 'i': ignore_digest = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (config) {
		if (zk_data || out) {
			fprintf(stderr, "ringkeeper-migrate: --config names both directories: no --zk-data or --out with it\n");
			return EXIT_USAGE;
		}
		if (read_config(config, &zk_data, &zk_log) < 0)
			return EXIT_USAGE;
		out = strdup(zk_data);
		out_log = zk_log ? strdup(zk_log) : NULL;
	}
	if (optind != argc || !zk_data || !out) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char why[2048] = "";
	struct zk_read_options ro = { .data_dir = zk_data, .log_dir = zk_log, .ignore_digest = ignore_digest };
	struct zk_read_report rr;
	struct zk_tree *t;
	int rc = zk_read_dir(&ro, &t, &rr, why, sizeof why);
	if (rc < 0) {
		fprintf(stderr, "ringkeeper-migrate: refusing %s: %s\n", zk_data, why);
		return rc == -ENOMEM || rc == -EACCES ? EXIT_USAGE : EXIT_REFUSED;
	}
	print_read(&rr, t);
	fflush(stdout);
	int status = 0;
	if (!verify_only) {
		struct migrate_write_options wo = { .out_dir = out, .out_log_dir = out_log, .myid = myid, .zk_data_dir = zk_data };
		struct migrate_write_report wr;
		rc = migrate_write(t, &wo, &wr, why, sizeof why);
		if (rc < 0) {
			fprintf(stderr, "ringkeeper-migrate: cannot write %s: %s\n", out, why);
			zk_tree_free(t);
			return EXIT_USAGE;
		}
		printf("ringkeeper: wrote %s (index %" PRIu64 " = zxid 0x%" PRIx64 ", term %" PRIu64 ", %" PRIu64
		       " nodes, %" PRIu64 " sessions, %" PRIu64 " quota paths, %" PRIu64 " bytes) in %" PRIu64 " ms\n",
		       wr.snapshot_path, wr.index, wr.index, wr.term, wr.nodes, wr.sessions, wr.quota_roots, wr.file_bytes,
		       wr.ms);
		printf("ringkeeper: hard state term %" PRIu64 " commit %" PRIu64 ", empty log in %s/log%s", wr.term, wr.index,
		       out_log ? out_log : out, wr.myid > 0 ? "" : "\n");
		if (wr.myid > 0)
			printf(", myid %" PRId64 "\n", wr.myid);
	}
	if (verify || verify_only) {
		struct migrate_verify_report vr;
		rc = migrate_verify(t, out, stdout, VERIFY_PRINT_MAX, &vr, why, sizeof why);
		if (rc < 0) {
			fprintf(stderr, "ringkeeper-migrate: cannot verify %s: %s\n", out, why);
			status = EXIT_USAGE;
		} else {
			printf("verify: %" PRIu64 " nodes and %" PRIu64 " sessions compared at index %" PRIu64 " in %" PRIu64
			       " ms: %" PRIu64 " difference(s)\n",
			       vr.nodes_compared, vr.sessions_compared, vr.index, vr.ms, vr.differences);
			if (vr.differences)
				status = EXIT_DIFFERENT;
		}
	}
	zk_tree_free(t);
	free(zk_data);
	free(zk_log);
	free(out);
	free(out_log);
	return status;
}
