/*
 * zk_stream.c — see zk_stream.h. Three sources (a plain file, gzip through zlib,
 * snappy-java framing through libsnappy) fill one window; parsers look at the window.
 */
#include "migrate/zk_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#ifdef RK_HAVE_SNAPPY
#include <snappy-c.h>
#endif

#define WINDOW_BYTES_INITIAL (1u << 20)
#define INPUT_BYTES_CHUNK (256u << 10)
#define SNAPPY_HEADER_BYTES 16u

static const uint8_t snappy_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };

struct zk_stream {
	int fd;
	enum zk_compression comp;
	/* the file's bytes not decoded yet (gzip, snappy) */
	uint8_t *in;
	size_t in_cap, in_start, in_end;
	bool file_eof;
	/* gzip */
	z_stream z;
	bool z_ready;
	/* snappy: the decoded chunk being handed out */
	uint8_t *chunk;
	size_t chunk_cap, chunk_len, chunk_pos;
	bool snappy_header_seen;
	/* decoded bytes: the source is exhausted; it ended early */
	bool src_eof;
	bool truncated;
	/* the window: bytes [win_start, win_end) are decoded and not consumed */
	uint8_t *win;
	size_t win_cap, win_start, win_end;
	uint32_t adler;
	uint64_t offset;
	char why[256];
};

enum zk_compression zk_compression_of_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	/* A name with one dot ("snapshot.1f") has no extension: its last part is the zxid. */
	if (!dot || dot == strchr(name, '.'))
		return ZK_COMPRESSION_NONE;
	if (strcasecmp(dot + 1, "gz") == 0)
		return ZK_COMPRESSION_GZIP;
	if (strcasecmp(dot + 1, "snappy") == 0)
		return ZK_COMPRESSION_SNAPPY;
	return ZK_COMPRESSION_NONE;
}

const char *zk_compression_name(enum zk_compression c)
{
	switch (c) {
	case ZK_COMPRESSION_NONE: return "none";
	case ZK_COMPRESSION_GZIP: return "gz";
	case ZK_COMPRESSION_SNAPPY: return "snappy";
	}
	return "?";
}

bool zk_compression_supported(enum zk_compression c)
{
#ifdef RK_HAVE_SNAPPY
	(void)c;
	return true;
#else
	return c != ZK_COMPRESSION_SNAPPY;
#endif
}

static int fail(struct zk_stream *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct zk_stream *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof s->why, fmt, ap);
	va_end(ap);
	return err;
}

/* ---------------------------------------------------------------- the file's bytes */

static int read_some(struct zk_stream *s, uint8_t *dst, size_t cap, size_t *got)
{
	for (;;) {
		ssize_t n = read(s->fd, dst, cap);
		if (n >= 0) {
			*got = (size_t)n;
			return 0;
		}
		if (errno != EINTR)
			return fail(s, -errno, "read: %s", strerror(errno));
	}
}

/*
 * Makes n undecoded bytes available at s->in + s->in_start. 0, -ENODATA (the file
 * ended first; *partial says whether some of them were there), -ENOMEM, -errno.
 */
static int in_need(struct zk_stream *s, size_t n, bool *partial)
{
	*partial = false;
	while (s->in_end - s->in_start < n) {
		if (s->file_eof) {
			*partial = s->in_end > s->in_start;
			return -ENODATA;
		}
		if (s->in_start > 0) {
			memmove(s->in, s->in + s->in_start, s->in_end - s->in_start);
			s->in_end -= s->in_start;
			s->in_start = 0;
		}
		size_t want = n > INPUT_BYTES_CHUNK ? n : INPUT_BYTES_CHUNK;
		if (s->in_cap < want) {
			uint8_t *p = realloc(s->in, want);
			if (!p)
				return fail(s, -ENOMEM, "out of memory");
			s->in = p;
			s->in_cap = want;
		}
		size_t got;
		int rc = read_some(s, s->in + s->in_end, s->in_cap - s->in_end, &got);
		if (rc < 0)
			return rc;
		if (got == 0)
			s->file_eof = true;
		s->in_end += got;
	}
	return 0;
}

/* ---------------------------------------------------------------- sources */

static int src_plain(struct zk_stream *s, uint8_t *dst, size_t cap, size_t *got)
{
	int rc = read_some(s, dst, cap, got);
	if (rc == 0 && *got == 0)
		s->src_eof = true;
	return rc;
}

static int src_gzip(struct zk_stream *s, uint8_t *dst, size_t cap, size_t *got)
{
	*got = 0;
	while (*got == 0) {
		bool partial;
		if (s->in_start == s->in_end) {
			int rc = in_need(s, 1, &partial);
			if (rc == -ENODATA) {
				/* The file ended inside a member (a whole member ends below). */
				s->truncated = true;
				s->src_eof = true;
				return 0;
			}
			if (rc < 0)
				return rc;
		}
		s->z.next_in = s->in + s->in_start;
		s->z.avail_in = (uInt)(s->in_end - s->in_start);
		s->z.next_out = dst;
		s->z.avail_out = (uInt)cap;
		int zr = inflate(&s->z, Z_NO_FLUSH);
		s->in_start = s->in_end - s->z.avail_in;
		*got = cap - s->z.avail_out;
		if (zr == Z_STREAM_END) {
			/* Another gzip member may follow (GZIPInputStream reads them too);
			 * anything else after the end is not ZooKeeper's and is ignored. */
			int rc = in_need(s, 2, &partial);
			if (rc == -ENODATA || (rc == 0 && (s->in[s->in_start] != 0x1f || s->in[s->in_start + 1] != 0x8b))) {
				s->src_eof = true;
				return 0;
			}
			if (rc < 0)
				return rc;
			inflateReset(&s->z);
			continue;
		}
		if (zr == Z_BUF_ERROR && s->z.avail_in == 0)
			continue; /* needs more input */
		if (zr != Z_OK)
			return fail(s, -EBADMSG, "gzip: %s", s->z.msg ? s->z.msg : "data error");
	}
	return 0;
}

#ifdef RK_HAVE_SNAPPY
/* Decodes the next chunk into s->chunk; at the end sets src_eof. */
static int snappy_next_chunk(struct zk_stream *s)
{
	bool partial;
	for (;;) {
		if (!s->snappy_header_seen) {
			int rc = in_need(s, SNAPPY_HEADER_BYTES, &partial);
			if (rc == -ENODATA) {
				s->truncated = true; /* a header cut short, or no stream at all */
				s->src_eof = true;
				return 0;
			}
			if (rc < 0)
				return rc;
			if (memcmp(s->in + s->in_start, snappy_magic, sizeof snappy_magic) != 0)
				return fail(s, -EBADMSG, "snappy: no snappy-java stream header");
			s->in_start += SNAPPY_HEADER_BYTES;
			s->snappy_header_seen = true;
		}
		int rc = in_need(s, 4, &partial);
		if (rc == -ENODATA) {
			s->truncated = partial;
			s->src_eof = true;
			return 0;
		}
		if (rc < 0)
			return rc;
		const uint8_t *p = s->in + s->in_start;
		if (memcmp(p, snappy_magic, 4) == 0) {
			/* a concatenated stream: its header, then its chunks */
			s->snappy_header_seen = false;
			continue;
		}
		uint32_t len = jute_get_be32(p);
		if (len == 0 || len > ZK_SNAPPY_CHUNK_BYTES_MAX)
			return fail(s, -EBADMSG, "snappy: a chunk of %u bytes", len);
		rc = in_need(s, 4 + (size_t)len, &partial);
		if (rc == -ENODATA) {
			s->truncated = true;
			s->src_eof = true;
			return 0;
		}
		if (rc < 0)
			return rc;
		const char *block = (const char *)s->in + s->in_start + 4;
		size_t raw;
		if (snappy_uncompressed_length(block, len, &raw) != SNAPPY_OK || raw > ZK_SNAPPY_CHUNK_BYTES_MAX)
			return fail(s, -EBADMSG, "snappy: a chunk with a bad length");
		if (raw > s->chunk_cap) {
			uint8_t *c = realloc(s->chunk, raw);
			if (!c)
				return fail(s, -ENOMEM, "out of memory");
			s->chunk = c;
			s->chunk_cap = raw;
		}
		size_t out_len = raw;
		if (snappy_uncompress(block, len, (char *)s->chunk, &out_len) != SNAPPY_OK || out_len != raw)
			return fail(s, -EBADMSG, "snappy: a chunk does not decode");
		s->in_start += 4 + (size_t)len;
		s->chunk_len = raw;
		s->chunk_pos = 0;
		return 0;
	}
}
#endif

static int src_snappy(struct zk_stream *s, uint8_t *dst, size_t cap, size_t *got)
{
	*got = 0;
#ifdef RK_HAVE_SNAPPY
	while (s->chunk_pos == s->chunk_len && !s->src_eof) {
		int rc = snappy_next_chunk(s);
		if (rc < 0)
			return rc;
	}
	size_t n = s->chunk_len - s->chunk_pos;
	if (n > cap)
		n = cap;
	memcpy(dst, s->chunk + s->chunk_pos, n);
	s->chunk_pos += n;
	*got = n;
	return 0;
#else
	(void)dst;
	(void)cap;
	return fail(s, -ENOTSUP, "snappy snapshots need libsnappy (Debian libsnappy-dev) when ringkeeper-migrate is built");
#endif
}

static int src_read(struct zk_stream *s, uint8_t *dst, size_t cap, size_t *got)
{
	switch (s->comp) {
	case ZK_COMPRESSION_NONE: return src_plain(s, dst, cap, got);
	case ZK_COMPRESSION_GZIP: return src_gzip(s, dst, cap, got);
	case ZK_COMPRESSION_SNAPPY: return src_snappy(s, dst, cap, got);
	}
	return -EINVAL;
}

/* ---------------------------------------------------------------- the window */

/* Reads until the window holds `want` bytes or the source ends. */
static int win_fill(struct zk_stream *s, size_t want)
{
	if (want > ZK_STREAM_RECORD_BYTES_MAX)
		return fail(s, -E2BIG, "a record larger than %u MiB", ZK_STREAM_RECORD_BYTES_MAX >> 20);
	if (s->win_cap - s->win_start < want) {
		size_t avail = s->win_end - s->win_start;
		if (s->win_cap < want) {
			size_t cap = s->win_cap * 2 > want ? s->win_cap * 2 : want;
			if (cap > ZK_STREAM_RECORD_BYTES_MAX)
				cap = ZK_STREAM_RECORD_BYTES_MAX;
			uint8_t *p = malloc(cap);
			if (!p)
				return fail(s, -ENOMEM, "out of memory");
			memcpy(p, s->win + s->win_start, avail);
			free(s->win);
			s->win = p;
			s->win_cap = cap;
		} else {
			memmove(s->win, s->win + s->win_start, avail);
		}
		s->win_start = 0;
		s->win_end = avail;
	}
	while (s->win_end - s->win_start < want && !s->src_eof) {
		size_t got;
		int rc = src_read(s, s->win + s->win_end, s->win_cap - s->win_end, &got);
		if (rc < 0)
			return rc;
		s->win_end += got;
	}
	return 0;
}

int zk_stream_open(struct zk_stream **out, const char *path, enum zk_compression comp, char *why, size_t why_size)
{
	*out = NULL;
	if (!zk_compression_supported(comp)) {
		snprintf(why, why_size, "%s is %s-compressed: this build has no libsnappy", path, zk_compression_name(comp));
		return -ENOTSUP;
	}
	struct zk_stream *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->comp = comp;
	s->adler = (uint32_t)adler32(0L, Z_NULL, 0);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		int err = -errno;
		snprintf(why, why_size, "%s: %s", path, strerror(errno));
		free(s);
		return err;
	}
	if (comp == ZK_COMPRESSION_GZIP) {
		if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
			snprintf(why, why_size, "%s: zlib cannot start", path);
			close(s->fd);
			free(s);
			return -ENOMEM;
		}
		s->z_ready = true;
	}
	s->win = malloc(WINDOW_BYTES_INITIAL);
	if (!s->win) {
		zk_stream_close(s);
		return -ENOMEM;
	}
	s->win_cap = WINDOW_BYTES_INITIAL;
	*out = s;
	return 0;
}

void zk_stream_close(struct zk_stream *s)
{
	if (!s)
		return;
	if (s->z_ready)
		inflateEnd(&s->z);
	if (s->fd >= 0)
		close(s->fd);
	free(s->in);
	free(s->chunk);
	free(s->win);
	free(s);
}

int zk_stream_parse(struct zk_stream *s, zk_stream_parse_fn parse, void *ctx, size_t *used)
{
	*used = 0;
	for (;;) {
		size_t avail = s->win_end - s->win_start;
		struct jute_reader r;
		jute_reader_init(&r, s->win + s->win_start, avail);
		int rc = parse(ctx, &r);
		if (rc < 0 && rc != -EPROTO)
			return rc;
		if (jute_reader_ok(&r)) {
			if (rc < 0)
				return fail(s, -EBADMSG, "a malformed record");
			*used = r.pos;
			return 0;
		}
		/* The reader ran out of bytes: more of the record is in the file, or not. */
		if (s->src_eof)
			return -ENODATA;
		size_t want = avail < (64u << 10) ? (64u << 10) : avail * 2;
		if (avail == ZK_STREAM_RECORD_BYTES_MAX)
			return fail(s, -E2BIG, "a record larger than %u MiB", ZK_STREAM_RECORD_BYTES_MAX >> 20);
		if (want > ZK_STREAM_RECORD_BYTES_MAX)
			want = ZK_STREAM_RECORD_BYTES_MAX;
		rc = win_fill(s, want);
		if (rc < 0)
			return rc;
	}
}

void zk_stream_consume(struct zk_stream *s, size_t n)
{
	if (n == 0)
		return;
	s->adler = (uint32_t)adler32(s->adler, s->win + s->win_start, (uInt)n);
	s->win_start += n;
	s->offset += n;
}

bool zk_stream_at_end(struct zk_stream *s)
{
	if (s->win_end > s->win_start)
		return false;
	if (!s->src_eof && win_fill(s, 1) < 0)
		return false;
	return s->win_end == s->win_start && s->src_eof;
}

uint32_t zk_stream_adler(const struct zk_stream *s) { return s->adler; }
uint64_t zk_stream_offset(const struct zk_stream *s) { return s->offset; }
bool zk_stream_truncated(const struct zk_stream *s) { return s->truncated; }
const char *zk_stream_why(const struct zk_stream *s) { return s->why; }
