/*
 * migrate_verify.c — the converted snapshot against the ZooKeeper tree, node by node
 * (see migrate.h). The RingKeeper side is read the way clients read it: the snapshot
 * loaded by the server's loader into a fresh store, then getData, getACL and
 * getChildren through store_read, and the session table through its dump. So the
 * comparison exercises the same code as a client of the started server, not the
 * writer's own view of what it wrote.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/zk_proto.h"
#include "migrate/migrate.h"
#include "migrate/zk_read.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

struct verify {
	const struct zk_tree *t;
	struct store *s;
	FILE *diffs;
	uint64_t print_max;
	struct migrate_verify_report *rep;
	struct jute_writer req, reply;
};

static void diff(struct verify *V, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diff(struct verify *V, const char *fmt, ...)
{
	if (V->rep->differences++ >= V->print_max) {
		if (V->rep->differences == V->print_max + 1)
			fprintf(V->diffs, "verify: ... (more differences are counted, not printed)\n");
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	fputs("verify: ", V->diffs);
	vfprintf(V->diffs, fmt, ap);
	fputc('\n', V->diffs);
	va_end(ap);
}

/* One read as the super user; the reply in V->reply. */
static int32_t read_op(struct verify *V, int32_t op, const char *path, size_t len)
{
	jute_writer_reset(&V->req);
	jute_write_string(&V->req, path, (int32_t)len);
	if (op != ZK_OP_GET_ACL)
		jute_write_bool(&V->req, false);
	struct store_auth super = { NULL, 0, true };
	jute_writer_reset(&V->reply);
	return store_read(V->s, 0, 0, &super, op, V->req.buf, V->req.len, &V->reply, NULL);
}

#define CMP_FIELD(field, fmt)                                                                                   \
	do {                                                                                                    \
		if (zk.field != rk.field)                                                                       \
			diff(V, "%s: " #field ": ZooKeeper " fmt ", RingKeeper " fmt, n->path, zk.field, rk.field); \
	} while (0)

static void compare_stat(struct verify *V, const struct zk_node *n, const struct zk_stat *rkp)
{
	struct zk_stat zk, rk = *rkp;
	zk_node_stat(n, &zk);
	if (n->path_len == 10 && memcmp(n->path, "/zookeeper", 10) == 0 &&
	    !zk_tree_find(V->t, "/zookeeper/config", 17)) {
		/* A tree written before ZooKeeper 3.5 has no /zookeeper/config; RingKeeper's
		 * own is one more child of /zookeeper (and one less in the client's cversion). */
		fprintf(V->diffs, "verify: note: ZooKeeper's tree has no /zookeeper/config (written before 3.5); "
				  "RingKeeper's own adds a child to /zookeeper\n");
		zk.num_children++;
		zk.cversion--;
	}
	CMP_FIELD(czxid, "0x%" PRIx64);
	CMP_FIELD(mzxid, "0x%" PRIx64);
	CMP_FIELD(pzxid, "0x%" PRIx64);
	CMP_FIELD(ctime, "%" PRId64);
	CMP_FIELD(mtime, "%" PRId64);
	CMP_FIELD(version, "%d");
	CMP_FIELD(cversion, "%d");
	CMP_FIELD(aversion, "%d");
	CMP_FIELD(ephemeral_owner, "0x%" PRIx64);
	CMP_FIELD(data_length, "%d");
	CMP_FIELD(num_children, "%d");
}

static void acl_text(const uint8_t *p, size_t len, char *out, size_t size)
{
	struct jute_reader r;
	jute_reader_init(&r, p, len);
	int32_t count = jute_read_int(&r);
	size_t o = 0;
	out[0] = '\0';
	for (int32_t i = 0; i < count && jute_reader_ok(&r) && o + 1 < size; i++) {
		struct zk_acl a;
		jute_read_acl(&r, &a);
		int w = snprintf(out + o, size - o, "%s%d:%.*s:%.*s", i ? "," : "", a.perms, a.id.scheme.len,
				 (const char *)a.id.scheme.data, a.id.id.len, (const char *)a.id.id.data);
		o = w < 0 ? size : o + (size_t)w;
	}
}

static void compare_node(struct verify *V, const struct zk_node *n)
{
	V->rep->nodes_compared++;
	int32_t rc = read_op(V, ZK_OP_GET_DATA, n->path, n->path_len);
	if (rc != ZK_OK) {
		diff(V, "%s: missing in RingKeeper (getData answers %d)", n->path, rc);
		return;
	}
	struct jute_reader r;
	jute_reader_init(&r, V->reply.buf, V->reply.len);
	struct jute_bytes data = jute_read_buffer(&r);
	struct zk_stat st;
	jute_read_stat(&r, &st);
	if (data.len != n->data_len || (data.len > 0 && memcmp(data.data, n->data, (size_t)data.len) != 0))
		diff(V, "%s: data differs (ZooKeeper %d bytes%s, RingKeeper %d bytes%s)", n->path, n->data_len,
		     n->data_len < 0 ? " (null)" : "", data.len, data.len < 0 ? " (null)" : "");
	compare_stat(V, n, &st);
	if (read_op(V, ZK_OP_GET_ACL, n->path, n->path_len) != ZK_OK) {
		diff(V, "%s: getACL fails in RingKeeper", n->path);
		return;
	}
	/* The reply starts with the vector<ACL>, in ZooKeeper's encoding: its bytes up to
	 * the Stat (the last ZK_STAT_BYTES) must be the interned list's. */
	size_t acl_len = V->reply.len >= ZK_STAT_BYTES ? V->reply.len - ZK_STAT_BYTES : 0;
	if (acl_len != n->acl->len || memcmp(V->reply.buf, n->acl->bytes, acl_len) != 0) {
		char a[512], b[512];
		acl_text(n->acl->bytes, n->acl->len, a, sizeof a);
		acl_text(V->reply.buf, acl_len, b, sizeof b);
		diff(V, "%s: ACL: ZooKeeper [%s], RingKeeper [%s]", n->path, a, b);
	}
	if (read_op(V, ZK_OP_GET_CHILDREN, n->path, n->path_len) != ZK_OK) {
		diff(V, "%s: getChildren fails in RingKeeper", n->path);
		return;
	}
	/* Children RingKeeper has that ZooKeeper has not (missing ones are reported when
	 * the walk gets to them). /zookeeper/config is RingKeeper's own. */
	jute_reader_init(&r, V->reply.buf, V->reply.len);
	int32_t count = jute_read_vector_count(&r, 4);
	bool in_zookeeper = n->path_len == 10 && memcmp(n->path, "/zookeeper", 10) == 0;
	for (int32_t i = 0; i < count && jute_reader_ok(&r); i++) {
		struct jute_bytes name = jute_read_string(&r);
		char child[4096];
		int len = snprintf(child, sizeof child, "%s/%.*s", n->parent ? n->path : "", name.len,
				   (const char *)name.data);
		if (len <= 0 || (size_t)len >= sizeof child)
			continue;
		if (in_zookeeper && strcmp(child, "/zookeeper/config") == 0)
			continue;
		const struct zk_node *c = zk_tree_find(V->t, child, (size_t)len);
		if (!c || c->parent != n)
			diff(V, "%s: in RingKeeper only", child);
	}
}

struct session_list {
	int64_t *ids;
	int32_t *timeouts;
	size_t count, cap;
	bool failed;
};

static void session_add(struct session_list *l, int64_t id, int32_t timeout_ms)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int64_t *ids = realloc(l->ids, cap * sizeof *ids);
		if (ids)
			l->ids = ids;
		int32_t *tos = realloc(l->timeouts, cap * sizeof *tos);
		if (tos)
			l->timeouts = tos;
		if (!ids || !tos) {
			l->failed = true;
			return;
		}
		l->cap = cap;
	}
	l->ids[l->count] = id;
	l->timeouts[l->count++] = timeout_ms;
}

static void rk_session(void *ctx, int64_t id, int32_t timeout_ms) { session_add(ctx, id, timeout_ms); }

static void zk_session(void *ctx, const struct zk_owner *o) { session_add(ctx, o->id, o->timeout_ms); }

static struct session_list *sort_list;
static int cmp_index(const void *a, const void *b)
{
	int64_t x = sort_list->ids[*(const size_t *)a], y = sort_list->ids[*(const size_t *)b];
	return (x > y) - (x < y);
}

/* Indexes of l's entries in ascending id order (malloc'ed). */
static size_t *sorted(struct session_list *l)
{
	size_t *idx = malloc((l->count ? l->count : 1) * sizeof *idx);
	if (!idx)
		return NULL;
	for (size_t i = 0; i < l->count; i++)
		idx[i] = i;
	sort_list = l;
	qsort(idx, l->count, sizeof *idx, cmp_index);
	return idx;
}

static int compare_sessions(struct verify *V)
{
	struct session_list zk = { 0 }, rk = { 0 };
	zk_tree_sessions(V->t, zk_session, &zk);
	store_sessions_dump(V->s, rk_session, NULL, &rk);
	size_t *zi = sorted(&zk), *ri = sorted(&rk);
	int rc = zk.failed || rk.failed || !zi || !ri ? -ENOMEM : 0;
	size_t a = 0, b = 0;
	while (rc == 0 && (a < zk.count || b < rk.count)) {
		int64_t zid = a < zk.count ? zk.ids[zi[a]] : INT64_MAX;
		int64_t rid = b < rk.count ? rk.ids[ri[b]] : INT64_MAX;
		if (a < zk.count && (b == rk.count || zid < rid)) {
			diff(V, "session 0x%" PRIx64 ": missing in RingKeeper", zid);
			a++;
			continue;
		}
		if (b < rk.count && (a == zk.count || rid < zid)) {
			diff(V, "session 0x%" PRIx64 ": in RingKeeper only", rid);
			b++;
			continue;
		}
		V->rep->sessions_compared++;
		if (zk.timeouts[zi[a]] != rk.timeouts[ri[b]])
			diff(V, "session 0x%" PRIx64 ": timeout: ZooKeeper %d ms, RingKeeper %d ms", zid, zk.timeouts[zi[a]],
			     rk.timeouts[ri[b]]);
		int32_t timeout;
		uint8_t have[16], want[16];
		zk_session_passwd(zid, want);
		if (!store_session_get(V->s, rid, &timeout, have) || memcmp(have, want, sizeof want) != 0)
			diff(V, "session 0x%" PRIx64 ": the password is not the one ZooKeeper gave its client", zid);
		a++;
		b++;
	}
	free(zi);
	free(ri);
	free(zk.ids);
	free(zk.timeouts);
	free(rk.ids);
	free(rk.timeouts);
	return rc;
}

int migrate_verify(const struct zk_tree *t, const char *out_dir, FILE *diffs, uint64_t print_max,
		   struct migrate_verify_report *rep, char *why, size_t why_size)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(rep, 0, sizeof *rep);
	struct store_config cfg = { .config_text = "", .keeper_api = false };
	struct verify V = { .t = t, .diffs = diffs, .print_max = print_max, .rep = rep };
	V.s = store_create(&cfg);
	if (!V.s) {
		snprintf(why, why_size, "cannot create a store");
		return -ENOMEM;
	}
	char snap_dir[PATH_MAX];
	snprintf(snap_dir, sizeof snap_dir, "%s/snapshot", out_dir);
	struct snap_loaded ld;
	int rc = snap_load_newest(snap_dir, V.s, (int64_t)time(NULL) * 1000, 1, &ld);
	if (rc < 0)
		snprintf(why, why_size, "cannot load the snapshot in %s: %s", snap_dir, strerror(-rc));
	else if (!ld.found) {
		snprintf(why, why_size, "no valid snapshot in %s", snap_dir);
		rc = -ENOENT;
	}
	if (rc == 0) {
		rep->index = ld.index;
		if ((int64_t)ld.index != zk_tree_last_zxid(t))
			diff(&V, "the snapshot is at index 0x%" PRIx64 ", ZooKeeper's last zxid is 0x%" PRIx64, ld.index,
			     zk_tree_last_zxid(t));
		jute_writer_init(&V.req, 1u << 20);
		jute_writer_init(&V.reply, 512u << 20);
		for (const struct zk_node *n = zk_tree_root(t); n; n = zk_tree_next(n))
			if (!(n->path_len == 17 && memcmp(n->path, "/zookeeper/config", 17) == 0))
				compare_node(&V, n);
		rc = compare_sessions(&V);
		if (rc < 0)
			snprintf(why, why_size, "out of memory comparing the sessions");
		jute_writer_free(&V.req);
		jute_writer_free(&V.reply);
	}
	store_destroy(V.s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rep->ms = (uint64_t)((int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	return rc;
}
