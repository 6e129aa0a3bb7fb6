/*
 * zk_snap.c — one ZooKeeper snapshot file into a zk_tree (layout in zk_format.h,
 * what counts as incomplete or damaged in zk_read.h). Every record goes through
 * zk_stream_parse, so the file is read once, in a bounded window, whatever its size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/zk_read.h"

struct snap_parse {
	struct zk_file_header hdr;
	int64_t l;
	int32_t i;
	struct jute_bytes path, data, acl;
	int64_t acl_id;
	struct zk_stat_persisted st;
	bool end; /* the node list's "/" */
	int32_t digest_version;
	int64_t digest;
};

static int p_header(void *c, struct jute_reader *r)
{
	zk_read_file_header(r, &((struct snap_parse *)c)->hdr);
	return 0;
}

static int p_int(void *c, struct jute_reader *r)
{
	((struct snap_parse *)c)->i = jute_read_int(r);
	return 0;
}

static int p_session(void *c, struct jute_reader *r)
{
	struct snap_parse *p = c;
	p->l = jute_read_long(r);
	p->i = jute_read_int(r);
	return 0;
}

static int p_acl(void *c, struct jute_reader *r)
{
	struct snap_parse *p = c;
	bool bad = false;
	p->l = jute_read_long(r);
	p->acl = zk_read_acl_vector(r, &bad);
	return bad ? -EBADMSG : 0;
}

static int p_node(void *c, struct jute_reader *r)
{
	struct snap_parse *p = c;
	bool bad = false;
	p->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
	if (bad)
		return -EBADMSG;
	p->end = p->path.len == 1 && p->path.data[0] == '/';
	if (p->end || r->err)
		return 0;
	p->data = zk_read_bytes(r, ZK_DATA_BYTES_MAX, &bad);
	if (bad)
		return -EBADMSG;
	p->acl_id = jute_read_long(r);
	p->st.czxid = jute_read_long(r);
	p->st.mzxid = jute_read_long(r);
	p->st.ctime = jute_read_long(r);
	p->st.mtime = jute_read_long(r);
	p->st.version = jute_read_int(r);
	p->st.cversion = jute_read_int(r);
	p->st.aversion = jute_read_int(r);
	p->st.ephemeral_owner = jute_read_long(r);
	p->st.pzxid = jute_read_long(r);
	return 0;
}

/* A seal: the Adler-32 as a long, and the string "/" (read, not checked, as ZooKeeper). */
static int p_seal(void *c, struct jute_reader *r)
{
	struct snap_parse *p = c;
	bool bad = false;
	p->l = jute_read_long(r);
	p->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
	return bad ? -EBADMSG : 0;
}

/* ZxidDigest: {long zxid; int version; version < 2 ? ustring hex : long}. */
static int p_digest(void *c, struct jute_reader *r)
{
	struct snap_parse *p = c;
	bool bad = false;
	p->l = jute_read_long(r);
	p->digest_version = jute_read_int(r);
	if (r->err)
		return 0;
	if (p->digest_version >= 2) {
		p->digest = jute_read_long(r);
		return 0;
	}
	struct jute_bytes hex = zk_read_bytes(r, 64, &bad);
	if (bad)
		return -EBADMSG;
	p->digest = 0;
	for (int32_t k = 0; k < hex.len; k++) {
		char ch = (char)hex.data[k];
		int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (v < 0)
			return -EBADMSG;
		p->digest = (int64_t)(((uint64_t)p->digest << 4) | (uint64_t)v);
	}
	return 0;
}

struct snap_load {
	const char *path;
	struct zk_stream *s;
	struct snap_parse p;
	char *why;
	size_t why_size;
};

/* One record through parse; consumed on success. Errors get a reason naming the file. */
static int step(struct snap_load *L, zk_stream_parse_fn fn, const char *what)
{
	size_t used;
	int rc = zk_stream_parse(L->s, fn, &L->p, &used);
	if (rc == 0) {
		zk_stream_consume(L->s, used);
		return 0;
	}
	unsigned long long off = (unsigned long long)zk_stream_offset(L->s);
	if (rc == -ENODATA)
		snprintf(L->why, L->why_size, "%s ends inside %s at byte %llu", L->path, what, off);
	else if (rc == -EBADMSG && zk_stream_why(L->s)[0])
		snprintf(L->why, L->why_size, "%s: %s at byte %llu", L->path, zk_stream_why(L->s), off);
	else if (rc == -EBADMSG)
		snprintf(L->why, L->why_size, "%s: malformed %s at byte %llu", L->path, what, off);
	else
		snprintf(L->why, L->why_size, "%s: %s at byte %llu: %s", L->path, what, off,
			 zk_stream_why(L->s)[0] ? zk_stream_why(L->s) : strerror(-rc));
	return rc;
}

static int seal(struct snap_load *L, const char *what)
{
	uint32_t adler = zk_stream_adler(L->s);
	int rc = step(L, p_seal, what);
	if (rc < 0)
		return rc;
	if ((uint64_t)L->p.l != adler) {
		snprintf(L->why, L->why_size, "%s: %s does not match: the file says 0x%llx, its bytes give 0x%x (damaged)",
			 L->path, what, (unsigned long long)L->p.l, adler);
		return -EBADMSG;
	}
	return 0;
}

/*
 * ZooKeeper's first look at a file (SnapStream.isValidSnapshot): a plain one must end
 * with the seal's string "/" (int 1, '/'), a compressed one start with its magic.
 * false: incomplete.
 */
static bool looks_complete(const char *path, enum zk_compression comp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* the open below reports it */
	struct stat st;
	bool ok = false;
	if (fstat(fd, &st) == 0) {
		uint8_t b[8];
		if (comp == ZK_COMPRESSION_NONE)
			ok = st.st_size >= 10 && pread(fd, b, 5, st.st_size - 5) == 5 && memcmp(b, "\0\0\0\1/", 5) == 0;
		else if (comp == ZK_COMPRESSION_GZIP)
			ok = pread(fd, b, 2, 0) == 2 && b[0] == 0x1f && b[1] == 0x8b;
		else
			ok = pread(fd, b, 8, 0) == 8 && memcmp(b, "\x82SNAPPY\0", 8) == 0;
	}
	close(fd);
	return ok;
}

static int load_body(struct snap_load *L, struct zk_tree *t, int64_t zxid, struct zk_snap_info *info)
{
	int rc = step(L, p_header, "the file header");
	if (rc < 0)
		return rc;
	if (L->p.hdr.magic != ZK_SNAP_MAGIC) {
		snprintf(L->why, L->why_size, "%s is not a ZooKeeper snapshot (magic 0x%08x)", L->path, L->p.hdr.magic);
		return -EBADMSG;
	}
	info->dbid = L->p.hdr.dbid;
	if ((rc = step(L, p_int, "the session count")) < 0)
		return rc;
	int32_t count = L->p.i;
	if (count < 0) {
		snprintf(L->why, L->why_size, "%s: a session count of %d", L->path, count);
		return -EBADMSG;
	}
	for (int32_t k = 0; k < count; k++) {
		if ((rc = step(L, p_session, "a session")) < 0)
			return rc;
		if ((rc = zk_tree_load_session(t, L->p.l, L->p.i)) < 0)
			return rc;
		info->sessions++;
	}
	if ((rc = step(L, p_int, "the ACL cache count")) < 0)
		return rc;
	count = L->p.i;
	if (count < 0) {
		snprintf(L->why, L->why_size, "%s: an ACL cache count of %d", L->path, count);
		return -EBADMSG;
	}
	for (int32_t k = 0; k < count; k++) {
		if ((rc = step(L, p_acl, "an ACL cache entry")) < 0)
			return rc;
		char why[256];
		rc = zk_tree_load_acl(t, L->p.l, L->p.acl, why, sizeof why);
		if (rc < 0) {
			snprintf(L->why, L->why_size, "%s: %s", L->path, rc == -EINVAL ? why : strerror(-rc));
			return rc == -EINVAL ? -EBADMSG : rc;
		}
		info->acls++;
	}
	for (;;) {
		if ((rc = step(L, p_node, "a node")) < 0)
			return rc;
		if (L->p.end)
			break;
		char why[512];
		rc = zk_tree_load_node(t, L->p.path, L->p.data, L->p.acl_id, &L->p.st, why, sizeof why);
		if (rc < 0) {
			snprintf(L->why, L->why_size, "%s: %s", L->path, rc == -EINVAL ? why : strerror(-rc));
			return rc == -EINVAL ? -EBADMSG : rc;
		}
		info->nodes++;
	}
	if ((rc = seal(L, "the checksum after the tree")) < 0)
		return rc;
	/* 3.6+: the digest and a second seal. ZooKeeper reads a file that ends here (an
	 * older writer) and treats a digest cut short the same way. */
	if (!zk_stream_at_end(L->s)) {
		size_t used;
		rc = zk_stream_parse(L->s, p_digest, &L->p, &used);
		if (rc == 0) {
			zk_stream_consume(L->s, used);
			info->digest_zxid = L->p.l;
			info->digest_version = L->p.digest_version;
			info->digest = L->p.digest;
			if ((rc = seal(L, "the checksum after the digest")) < 0)
				return rc;
			info->has_digest = true;
		} else if (rc != -ENODATA) {
			return step(L, p_digest, "the digest");
		}
	}
	info->bytes = zk_stream_offset(L->s);
	char why[256];
	rc = zk_tree_load_finish(t, zxid, why, sizeof why);
	if (rc < 0) {
		snprintf(L->why, L->why_size, "%s: %s", L->path, rc == -EINVAL ? why : strerror(-rc));
		return rc == -EINVAL ? -EBADMSG : rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- whole-file seal */

#define SEAL_BYTES 13u /* long checksum, ustring "/" */

static int p_all_but_seal(void *c, struct jute_reader *r)
{
	(void)c;
	size_t rem = jute_reader_remaining(r);
	if (rem <= SEAL_BYTES) {
		r->err = -EPROTO; /* more, or the end: what is left is the seal */
		return 0;
	}
	r->pos += rem - SEAL_BYTES;
	return 0;
}

struct tail {
	uint8_t b[SEAL_BYTES];
	size_t len;
};

static int p_tail(void *c, struct jute_reader *r)
{
	struct tail *t = c;
	t->len = jute_reader_remaining(r);
	if (t->len > SEAL_BYTES)
		t->len = SEAL_BYTES;
	memcpy(t->b, r->buf + r->pos, t->len);
	r->pos += t->len;
	return 0;
}

/*
 * True when the file's last seal (the second one of a 3.6+ snapshot) matches every
 * byte before it: the file is whole, so a record that did not parse is not damage
 * the checksum would show. Used only to word a refusal.
 */
static bool whole_file_seal_matches(const char *path, enum zk_compression comp)
{
	struct zk_stream *s;
	char why[256];
	if (zk_stream_open(&s, path, comp, why, sizeof why) < 0)
		return false;
	size_t used;
	int rc;
	while ((rc = zk_stream_parse(s, p_all_but_seal, NULL, &used)) == 0)
		zk_stream_consume(s, used);
	struct tail t = { .len = 0 };
	bool ok = false;
	if (rc == -ENODATA && zk_stream_parse(s, p_tail, &t, &used) == 0 && t.len == SEAL_BYTES) {
		uint64_t v = (uint64_t)jute_get_be32(t.b) << 32 | jute_get_be32(t.b + 4);
		ok = v == zk_stream_adler(s) && jute_get_be32(t.b + 8) == 1 && t.b[12] == '/';
	}
	zk_stream_close(s);
	return ok;
}

int zk_snap_load(const char *path, int64_t zxid, struct zk_tree **out, struct zk_snap_info *info, char *why,
		 size_t why_size)
{
	*out = NULL;
	memset(info, 0, sizeof *info);
	const char *base = strrchr(path, '/');
	enum zk_compression comp = zk_compression_of_name(base ? base + 1 : path);
	if (!looks_complete(path, comp)) {
		snprintf(why, why_size, "%s is incomplete (%s)", path,
			 comp == ZK_COMPRESSION_NONE ? "it does not end with its checksum seal" : "no compression header");
		return -ENODATA;
	}
	struct snap_load L = { .path = path, .why = why, .why_size = why_size };
	int rc = zk_stream_open(&L.s, path, comp, why, why_size);
	if (rc < 0)
		return rc;
	struct zk_tree *t = zk_tree_new();
	if (!t) {
		zk_stream_close(L.s);
		return -ENOMEM;
	}
	rc = load_body(&L, t, zxid, info);
	bool cut = comp != ZK_COMPRESSION_NONE && zk_stream_truncated(L.s);
	if (cut && (rc == 0 || rc == -ENODATA)) {
		/* A compressed stream cut short is incomplete even when its records ended. */
		snprintf(why, why_size, "%s: its %s stream is cut short (incomplete)", path, zk_compression_name(comp));
		rc = -ENODATA;
	} else if (rc == -ENODATA) {
		/* The file looked whole (its seal at the end, or a whole compressed stream):
		 * records running past its end mean it is damaged, not cut short. */
		size_t n = strlen(why);
		snprintf(why + n, why_size - n, "; yet the file looked complete: damaged");
		rc = -EBADMSG;
	}
	zk_stream_close(L.s);
	if (rc == -EBADMSG && !strstr(why, "does not match") && !whole_file_seal_matches(path, comp)) {
		/* A record that made no sense is the first sign; the checksum is the cause. */
		char first[512];
		snprintf(first, sizeof first, "%s", why);
		snprintf(why, why_size, "%s: its checksum does not match its bytes: damaged (first sign: %s)", path, first);
	}
	if (rc < 0) {
		zk_tree_free(t);
		return rc;
	}
	*out = t;
	return 0;
}
