/*
 * zk_files_util.h — for the migration tests: writes ZooKeeper 3.8 snapshot and log
 * files with known contents, byte by byte from the jute layouts (not through the code
 * under test): a snapshot (header, sessions, ACL cache, nodes, seal, digest, seal),
 * gzip and snappy-java framed variants, and transaction logs of any txns.
 * Header-only.
 */
#ifndef RK_ZK_FILES_UTIL_H
#define RK_ZK_FILES_UTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifdef RK_HAVE_SNAPPY
#include <snappy-c.h>
#endif

#include "core/jute.h"
#include "core/zk_proto.h"

#define ZF_DIGEST_ACL ((const char *)"alice:Y29kZWQ=")

static __attribute__((unused)) void zf_str(struct jute_writer *w, const char *s)
{
	jute_write_string(w, s, (int32_t)strlen(s));
}

static __attribute__((unused)) void zf_buf(struct jute_writer *w, const char *s)
{
	jute_write_buffer(w, s, s ? (int32_t)strlen(s) : -1);
}

/* vector<ACL>: open ([31 world anyone]) or digest ([31 digest alice], [1 world anyone]). */
static __attribute__((unused)) void zf_acl(struct jute_writer *w, bool digest)
{
	if (!digest) {
		jute_write_int(w, 1);
		jute_write_int(w, 31);
		zf_str(w, "world");
		zf_str(w, "anyone");
		return;
	}
	jute_write_int(w, 2);
	jute_write_int(w, 31);
	zf_str(w, "digest");
	zf_str(w, ZF_DIGEST_ACL);
	jute_write_int(w, 1);
	zf_str(w, "world");
	zf_str(w, "anyone");
}

static __attribute__((unused)) void zf_header(struct jute_writer *w, const char *magic)
{
	jute_write_int(w, (int32_t)jute_get_be32((const uint8_t *)magic));
	jute_write_int(w, 2);
	jute_write_long(w, 7);
}

/* StatPersisted with czxid = mzxid = pzxid = z, times t. */
static __attribute__((unused)) void zf_stat(struct jute_writer *w, int64_t z, int32_t version, int32_t cversion,
					    int64_t owner)
{
	jute_write_long(w, z);
	jute_write_long(w, z);
	jute_write_long(w, 1000 + z);
	jute_write_long(w, 1000 + z);
	jute_write_int(w, version);
	jute_write_int(w, cversion);
	jute_write_int(w, 0);
	jute_write_long(w, owner);
	jute_write_long(w, z);
}

static __attribute__((unused)) void zf_node(struct jute_writer *w, const char *path, const char *data, int64_t acl,
					    int64_t z, int32_t cversion, int64_t owner)
{
	zf_str(w, path);
	zf_buf(w, data);
	jute_write_long(w, acl);
	zf_stat(w, z, 0, cversion, owner);
}

static __attribute__((unused)) void zf_seal(struct jute_writer *w)
{
	jute_write_long(w, (int64_t)adler32(adler32(0L, Z_NULL, 0), w->buf, (uInt)w->len));
	zf_str(w, "/");
}

#define ZF_SESSION 0x1000000abcdLL
#define ZF_TTL_OWNER ((int64_t)0xFF00000000000000ULL | 60000)

/*
 * The standard test snapshot at zxid 5: "/" (cversion 5), /zookeeper, /zookeeper/quota,
 * /zookeeper/config,
 * /a "hello" with the digest ACL (id 1), /a/e an ephemeral of ZF_SESSION, /c a
 * container with cversion 1 and no child, /t a TTL node, /n with null data. Session
 * ZF_SESSION (timeout 5000). with_digest: the 3.6+ digest section (zxid 5, value
 * `digest`), else the file ends after the first seal.
 */
static __attribute__((unused)) void zf_snapshot(struct jute_writer *w, bool with_digest, int64_t digest)
{
	zf_header(w, "ZKSN");
	jute_write_int(w, 1);
	jute_write_long(w, ZF_SESSION);
	jute_write_int(w, 5000);
	jute_write_int(w, 1);
	jute_write_long(w, 1);
	zf_acl(w, true);
	zf_node(w, "", "", -1, 0, 5, 0);
	zf_node(w, "/zookeeper", "", -1, 0, 2, 0);
	zf_node(w, "/zookeeper/quota", "", -1, 0, 0, 0);
	zf_node(w, "/zookeeper/config", "", -1, 0, 0, 0);
	zf_node(w, "/a", "hello", 1, 1, 1, 0);
	zf_node(w, "/a/e", "eph", -1, 2, 0, ZF_SESSION);
	zf_node(w, "/c", "", -1, 3, 1, ZK_EPHEMERAL_OWNER_CONTAINER);
	zf_node(w, "/t", "ttl", -1, 4, 0, ZF_TTL_OWNER);
	zf_node(w, "/n", NULL, -1, 5, 0, 0);
	zf_str(w, "/");
	zf_seal(w);
	if (with_digest) {
		jute_write_long(w, 5);
		jute_write_int(w, 2);
		jute_write_long(w, digest);
		zf_seal(w);
	}
}

static __attribute__((unused)) void zf_write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len)
		abort();
	fclose(f);
}

static __attribute__((unused)) void zf_gzip(const uint8_t *in, size_t len, struct jute_writer *out)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	uint8_t *buf = jute_writer_reserve(out, deflateBound(&z, len));
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)deflateBound(&z, len);
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	out->len = (size_t)(z.next_out - out->buf);
	deflateEnd(&z);
}

#ifdef RK_HAVE_SNAPPY
/* snappy-java's framing: header, then chunks of `chunk` raw bytes. */
static __attribute__((unused)) void zf_snappy(const uint8_t *in, size_t len, size_t chunk, struct jute_writer *out)
{
	jute_write_raw(out, "\x82SNAPPY\0", 8);
	jute_write_int(out, 1);
	jute_write_int(out, 1);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		size_t cap = snappy_max_compressed_length(n);
		char *c = malloc(cap);
		if (!c || snappy_compress((const char *)in + off, n, c, &cap) != SNAPPY_OK)
			abort();
		jute_write_int(out, (int32_t)cap);
		jute_write_raw(out, c, cap);
		free(c);
	}
}
#endif

/* ---------------------------------------------------------------- logs */

/* A TxnHeader. */
static __attribute__((unused)) void zf_txn_header(struct jute_writer *w, int64_t session, int64_t zxid, int32_t type)
{
	jute_write_long(w, session);
	jute_write_int(w, 1);
	jute_write_long(w, zxid);
	jute_write_long(w, 2000 + zxid);
	jute_write_int(w, type);
}

/* One log record around the entry bytes in e: {crc, len, bytes, 'B'}. */
static __attribute__((unused)) void zf_record(struct jute_writer *log, const struct jute_writer *e)
{
	jute_write_long(log, (int64_t)adler32(adler32(0L, Z_NULL, 0), e->buf, (uInt)e->len));
	jute_write_buffer(log, e->buf, (int32_t)e->len);
	jute_write_byte(log, 'B');
}

static __attribute__((unused)) void zf_create_body(struct jute_writer *e, const char *path, const char *data,
						   bool ephemeral, int32_t pcv)
{
	zf_str(e, path);
	zf_buf(e, data);
	zf_acl(e, false);
	jute_write_bool(e, ephemeral);
	jute_write_int(e, pcv);
}

static __attribute__((unused)) void zf_mkdirs(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	mkdir(tmp, 0755);
}

static __attribute__((unused)) void zf_rm_rf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
}

#endif
