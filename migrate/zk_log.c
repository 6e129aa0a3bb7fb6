/*
 * zk_log.c — one ZooKeeper transaction log file, record by record (layout in
 * zk_format.h; what ends a file and what is damage in zk_read.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "migrate/zk_read.h"

struct zk_log_file {
	char path[PATH_MAX];
	struct zk_stream *s;
	uint64_t record_offset;
};

struct rec_parse {
	struct zk_file_header hdr;
	int64_t crc;
	int32_t len;
	const uint8_t *bytes;
	uint8_t eor;
};

static int p_header(void *c, struct jute_reader *r)
{
	zk_read_file_header(r, &((struct rec_parse *)c)->hdr);
	return 0;
}

/* {long crc; int length; bytes; byte 'B'}: a zero length is the end of the records. */
static int p_record(void *c, struct jute_reader *r)
{
	struct rec_parse *p = c;
	p->crc = jute_read_long(r);
	p->len = jute_read_int(r);
	if (r->err)
		return 0; /* short: the stream refills */
	if (p->len < 0 || (uint32_t)p->len > ZK_TXN_BYTES_MAX)
		return -EBADMSG;
	if (p->len == 0)
		return 0;
	if (jute_reader_remaining(r) < (size_t)p->len + 1) {
		r->err = -EPROTO;
		return 0;
	}
	p->bytes = r->buf + r->pos;
	r->pos += (size_t)p->len;
	p->eor = jute_read_byte(r);
	return 0;
}

int zk_log_open(const char *path, struct zk_log_file **out, struct zk_file_header *hdr, char *why, size_t why_size)
{
	*out = NULL;
	struct zk_log_file *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	snprintf(f->path, sizeof f->path, "%s", path);
	int rc = zk_stream_open(&f->s, path, ZK_COMPRESSION_NONE, why, why_size);
	if (rc < 0) {
		free(f);
		return rc;
	}
	struct rec_parse p;
	size_t used;
	rc = zk_stream_parse(f->s, p_header, &p, &used);
	if (rc == 0 && p.hdr.magic != ZK_LOG_MAGIC) {
		snprintf(why, why_size, "%s is not a ZooKeeper transaction log (magic 0x%08x)", path, p.hdr.magic);
		rc = -EBADMSG;
	} else if (rc == -ENODATA) {
		snprintf(why, why_size, "%s is shorter than a log file header", path);
		rc = -EBADMSG;
	} else if (rc < 0) {
		snprintf(why, why_size, "%s: %s", path, zk_stream_why(f->s));
	}
	if (rc < 0) {
		zk_log_close(f);
		return rc;
	}
	zk_stream_consume(f->s, used);
	*hdr = p.hdr;
	*out = f;
	return 0;
}

int zk_log_next(struct zk_log_file *f, struct zk_txn *txn, char *why, size_t why_size)
{
	f->record_offset = zk_stream_offset(f->s);
	if (zk_stream_at_end(f->s))
		return ZK_LOG_END;
	struct rec_parse p = { 0 };
	size_t used;
	int rc = zk_stream_parse(f->s, p_record, &p, &used);
	unsigned long long off = (unsigned long long)f->record_offset;
	if (rc == -ENODATA)
		return ZK_LOG_PARTIAL;
	if (rc == -EBADMSG) {
		snprintf(why, why_size, "%s: a record at byte %llu claims %d bytes (damaged)", f->path, off, p.len);
		return rc;
	}
	if (rc < 0) {
		snprintf(why, why_size, "%s at byte %llu: %s", f->path, off, zk_stream_why(f->s));
		return rc;
	}
	if (p.len == 0)
		return ZK_LOG_END; /* preallocated zeros, or ZooKeeper's empty-txn end mark */
	if (p.eor != 'B')
		return ZK_LOG_PARTIAL; /* "Last transaction was partial" */
	uint32_t adler = (uint32_t)adler32(adler32(0L, Z_NULL, 0), p.bytes, (uInt)p.len);
	if ((uint64_t)p.crc != adler) {
		snprintf(why, why_size, "%s: the record at byte %llu fails its checksum (file 0x%llx, bytes 0x%x): damaged",
			 f->path, off, (unsigned long long)p.crc, adler);
		return -EBADMSG;
	}
	char reason[256];
	rc = zk_txn_decode(p.bytes, (size_t)p.len, txn, reason, sizeof reason);
	if (rc < 0) {
		snprintf(why, why_size, "%s at byte %llu: %s", f->path, off, reason);
		return rc;
	}
	/* The views point into the window: consumed now, valid until the next call. */
	zk_stream_consume(f->s, used);
	return ZK_LOG_TXN;
}

uint64_t zk_log_offset(const struct zk_log_file *f) { return f->record_offset; }

void zk_log_close(struct zk_log_file *f)
{
	if (!f)
		return;
	zk_stream_close(f->s);
	free(f);
}
