/*
 * migrate_out.c — a ZooKeeper tree into a RingKeeper data directory (see migrate.h).
 *
 * The tree goes through RingKeeper's own image loader (store_load_*) into a fresh
 * store, and the snapshot is written from that store by snapshot/'s writer: the file
 * is exactly what the server writes and reads, and the loader's checks (a node twice,
 * a node without parent, an ephemeral without session) apply to the converted tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "migrate/zk_read.h"
#include "raft/hardstate.h"
#include "snapshot/snap_format.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "store/store_snap.h"

struct writer {
	const struct migrate_write_options *opt;
	FILE *out;
	char *why;
	size_t why_size;
};

static int refuse(struct writer *W, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct writer *W, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(W->why, W->why_size, fmt, ap);
	va_end(ap);
	return err;
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* True when dir exists and holds anything but "." and "..". */
static bool dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *e;
	bool any = false;
	while (!any && (e = readdir(d)))
		any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return any;
}

/* The number in <dir>/myid: > 0, 0 when there is none, -EINVAL when it is not one. */
static int64_t myid_read(const char *dir)
{
	char path[PATH_MAX], buf[64];
	snprintf(path, sizeof path, "%s/myid", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *end;
	long long v = strtoll(buf, &end, 10);
	while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
		end++;
	return end == buf || *end || v <= 0 ? -EINVAL : v;
}

static int myid_write(struct writer *W, const char *dir, int64_t id)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], text[32];
	snprintf(path, sizeof path, "%s/myid", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int len = snprintf(text, sizeof text, "%lld\n", (long long)id);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return refuse(W, -errno, "%s: %s", tmp, strerror(errno));
	int rc = write(fd, text, (size_t)len) == len && fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		return refuse(W, rc, "%s: %s", path, strerror(-rc));
	return fsync_path(dir);
}

/* The output must not hold a RingKeeper state already; myid must agree. */
static int check_output(struct writer *W, const char *out_dir, const char *log_dir, int64_t *myid)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", out_dir, HARDSTATE_FILE);
	if (access(path, F_OK) == 0)
		return refuse(W, -EEXIST, "%s exists: %s holds a RingKeeper state already (convert into a new directory)",
			      path, out_dir);
	snprintf(path, sizeof path, "%s/snapshot", out_dir);
	if (dir_has_entries(path))
		return refuse(W, -EEXIST, "%s is not empty: %s holds RingKeeper snapshots already", path, out_dir);
	snprintf(path, sizeof path, "%s/log", log_dir);
	if (dir_has_entries(path))
		return refuse(W, -EEXIST, "%s is not empty: %s holds a RingKeeper log already", path, log_dir);
	int64_t have = myid_read(out_dir);
	if (have < 0)
		return refuse(W, -EINVAL, "%s/myid does not hold a server number", out_dir);
	int64_t from_zk = W->opt->zk_data_dir ? myid_read(W->opt->zk_data_dir) : 0;
	int64_t want = W->opt->myid > 0 ? W->opt->myid : from_zk > 0 ? from_zk : 0;
	if (have > 0 && want > 0 && have != want)
		return refuse(W, -EEXIST, "%s/myid says %lld, not %lld", out_dir, (long long)have, (long long)want);
	*myid = want > 0 ? want : have;
	return 0;
}

/* ---------------------------------------------------------------- the store */

struct acl_scratch {
	struct acl_entry *e;
	size_t cap;
};

/* The interned vector<ACL> as the store's entries (views into the list's bytes). */
static int acl_entries(const struct zk_acl_list *acl, struct acl_scratch *sc, uint32_t *count)
{
	struct jute_reader r;
	jute_reader_init(&r, acl->bytes, acl->len);
	int32_t n = jute_read_int(&r);
	if (n < 0)
		n = 0;
	if ((size_t)n > sc->cap) {
		struct acl_entry *e = realloc(sc->e, (size_t)n * sizeof *e);
		if (!e)
			return -ENOMEM;
		sc->e = e;
		sc->cap = (size_t)n;
	}
	for (int32_t i = 0; i < n; i++) {
		struct zk_acl a;
		jute_read_acl(&r, &a);
		sc->e[i] = (struct acl_entry){
			.perms = a.perms,
			.scheme_len = a.id.scheme.len > 0 ? (uint32_t)a.id.scheme.len : 0,
			.id_len = a.id.id.len > 0 ? (uint32_t)a.id.id.len : 0,
			.scheme = (const char *)a.id.scheme.data,
			.id = (const char *)a.id.id.data,
		};
	}
	*count = (uint32_t)n;
	return jute_reader_ok(&r) ? 0 : -EINVAL;
}

struct session_load {
	struct store *s;
	int64_t now_ms;
	int rc;
	uint64_t count;
};

static void load_session(void *ctx, const struct zk_owner *o)
{
	struct session_load *L = ctx;
	struct store_snap_session se = { .id = o->id, .timeout_ms = o->timeout_ms };
	zk_session_passwd(o->id, se.passwd);
	int rc = store_load_session(L->s, &se, L->now_ms);
	if (rc < 0 && L->rc == 0)
		L->rc = rc;
	L->count++;
}

static bool is_config(const struct zk_node *n)
{
	return n->path_len == sizeof "/zookeeper/config" - 1 && memcmp(n->path, "/zookeeper/config", n->path_len) == 0;
}

/* The tree into a fresh store (keeper_api off, so /keeper nodes are kept as data). */
static int fill_store(struct writer *W, const struct zk_tree *t, struct store *s, struct migrate_write_report *rep)
{
	struct session_load L = { .s = s, .now_ms = (int64_t)time(NULL) * 1000 };
	zk_tree_sessions(t, load_session, &L);
	if (L.rc < 0)
		return refuse(W, L.rc, "loading the sessions: %s", strerror(-L.rc));
	rep->sessions = L.count;
	struct acl_scratch sc = { 0 };
	int rc = 0;
	bool keeper_warned = false;
	for (const struct zk_node *n = zk_tree_root(t); n && rc == 0; n = zk_tree_next(n)) {
		if (is_config(n))
			continue;
		if (!keeper_warned && n->path_len >= 7 && memcmp(n->path, "/keeper", 7) == 0 &&
		    (n->path_len == 7 || n->path[7] == '/')) {
			keeper_warned = true;
			fprintf(W->out,
				"ringkeeper-migrate: warning: ZooKeeper has %s: RingKeeper serves /keeper itself (ClickHouse "
				"Keeper's system nodes) unless keeperApiNodes=no; set that to keep seeing these nodes\n",
				n->path);
		}
		uint32_t acl_count;
		rc = acl_entries(n->acl, &sc, &acl_count);
		if (rc < 0) {
			refuse(W, rc, "node %s: its ACL cannot be decoded", n->path);
			break;
		}
		struct store_snap_node v = {
			.path = n->path,
			.path_len = n->path_len,
			.data_len = n->data_len,
			.data = n->data,
			.czxid = n->czxid,
			.mzxid = n->mzxid,
			.pzxid = n->pzxid,
			.ctime = n->ctime,
			.mtime = n->mtime,
			.ephemeral_owner = n->ephemeral_owner,
			.version = n->version,
			.cversion_stored = n->cversion,
			.aversion = n->aversion,
			.acl_count = acl_count,
			.acl = sc.e,
		};
		char why[512];
		rc = store_load_node(s, &v, why, sizeof why);
		if (rc < 0)
			refuse(W, rc, "RingKeeper's loader refuses node %s: %s", n->path, rc == -EINVAL ? why : strerror(-rc));
		rep->nodes++;
	}
	free(sc.e);
	if (rc < 0)
		return rc;
	const char *const *roots;
	size_t count = zk_tree_quota_roots(t, &roots);
	for (size_t i = 0; i < count; i++) {
		rc = store_load_quota_root(s, roots[i], strlen(roots[i]));
		if (rc < 0)
			return refuse(W, rc, "quota path %s: %s", roots[i], strerror(-rc));
	}
	rep->quota_roots = count;
	char why[512];
	rc = store_load_finish(s, zk_tree_last_zxid(t), why, sizeof why);
	if (rc < 0)
		return refuse(W, rc, "RingKeeper's loader refuses the tree: %s", rc == -EINVAL ? why : strerror(-rc));
	return 0;
}

int migrate_write(const struct zk_tree *t, const struct migrate_write_options *opt, struct migrate_write_report *rep,
		  char *why, size_t why_size)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(rep, 0, sizeof *rep);
	struct writer W = { .opt = opt, .out = opt->out ? opt->out : stderr, .why = why, .why_size = why_size };
	const char *log_dir = opt->out_log_dir ? opt->out_log_dir : opt->out_dir;
	int64_t z = zk_tree_last_zxid(t);
	if (z <= 0)
		return refuse(&W, -EINVAL,
			      "ZooKeeper never committed a txn (last zxid 0): there is nothing to carry over; start "
			      "RingKeeper with an empty data directory");
	if (z >= STORE_ZXID_LIMIT)
		return refuse(&W, -ERANGE,
			      "ZooKeeper's last zxid 0x%llx (epoch %lld) is past what a RingKeeper node keeps (48-bit "
			      "zxids: epochs below 32768)",
			      (unsigned long long)z, (long long)zk_zxid_epoch(z));
	int rc = mkdir_p(opt->out_dir);
	if (rc == 0)
		rc = mkdir_p(log_dir);
	if (rc < 0)
		return refuse(&W, rc, "cannot create %s or %s: %s", opt->out_dir, log_dir, strerror(-rc));
	int64_t myid = 0;
	if ((rc = check_output(&W, opt->out_dir, log_dir, &myid)) < 0)
		return rc;
	rep->index = (uint64_t)z;
	rep->term = zk_zxid_epoch(z) ? zk_zxid_epoch(z) : 1;
	struct store_config cfg = { .config_text = "", .keeper_api = false };
	struct store *s = store_create(&cfg);
	if (!s)
		return refuse(&W, -ENOMEM, "cannot create a store");
	rc = fill_store(&W, t, s, rep);
	struct store_snap *sn = NULL;
	if (rc == 0 && (rc = store_snap_begin(s, &sn)) < 0)
		refuse(&W, rc, "cannot start the image: %s", strerror(-rc));
	char snap_dir[PATH_MAX];
	snprintf(snap_dir, sizeof snap_dir, "%s/snapshot", opt->out_dir);
	if (rc == 0) {
		struct snap_result res;
		rc = snap_write(snap_dir, sn, rep->index, rep->term, NULL, &res);
		if (rc < 0)
			refuse(&W, rc, "writing the snapshot in %s: %s", snap_dir, res.why[0] ? res.why : strerror(-rc));
		rep->file_bytes = res.file_bytes;
		char name[SNAP_NAME_MAX];
		snap_file_name(name, rep->index, false);
		snprintf(rep->snapshot_path, sizeof rep->snapshot_path, "%s/%s", snap_dir, name);
	}
	if (sn)
		store_snap_end(s, sn);
	store_destroy(s);
	if (rc < 0)
		return rc;
	/* The log directory, empty: the log continues at index + 1. */
	char log_path[PATH_MAX];
	snprintf(log_path, sizeof log_path, "%s/log", log_dir);
	if ((rc = mkdir_p(log_path)) < 0 || (rc = fsync_path(log_dir)) < 0)
		return refuse(&W, rc, "cannot create %s: %s", log_path, strerror(-rc));
	if (myid > 0 && myid_read(opt->out_dir) != myid && (rc = myid_write(&W, opt->out_dir, myid)) < 0)
		return rc;
	rep->myid = myid;
	/* Last, so a conversion cut short leaves no hard state: the server would start
	 * from the snapshot anyway, and a second run is refused until it is cleaned. */
	struct hardstate hs = { .term = rep->term, .vote = 0, .commit = rep->index };
	if ((rc = hardstate_save(opt->out_dir, &hs)) < 0)
		return refuse(&W, rc, "cannot write %s/%s: %s", opt->out_dir, HARDSTATE_FILE, strerror(-rc));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rep->ms = (uint64_t)((int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	return 0;
}
