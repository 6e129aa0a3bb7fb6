/*
 * snap_load.c — checking a snapshot file and loading the newest valid one into a
 * fresh store (see snapshot.h; the layout is snap_format.h).
 *
 * Thread: the caller's (start-up, before the store has any other user).
 *
 * Two passes over the file, both streamed block by block with pread (memory is one
 * block, not the file): snap_verify checks everything a file must satisfy
 * (snap_format.h invariant 2) before a single node is loaded, so a damaged file is
 * set aside and the one before it tried while the store is still empty. The load
 * pass then decompresses each block (checking its CRC again: the file might have
 * changed in between) and hands the records to the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/log.h"
#include "snapshot/snap_format.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

struct reader {
	int fd;
	uint64_t size;
	struct snap_header header;
	struct snap_trailer trailer;
	uint8_t *stored;
	size_t stored_cap;
	char *why;
	size_t why_size;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int read_at(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EBADMSG; /* short: the file shrank */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int damaged(struct reader *r, uint64_t offset, const char *what)
{
	if (r->why && r->why_size)
		snprintf(r->why, r->why_size, "%s at byte %" PRIu64, what, offset);
	return -EBADMSG;
}

static int reader_open(struct reader *r, const char *path)
{
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(r->fd, &st) < 0)
		return -errno;
	r->size = (uint64_t)st.st_size;
	posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (r->size < SNAP_HEADER_SIZE + SNAP_TRAILER_SIZE)
		return damaged(r, 0, "file too short for a header and a trailer");
	uint8_t buf[SNAP_TRAILER_SIZE > SNAP_HEADER_SIZE ? SNAP_TRAILER_SIZE : SNAP_HEADER_SIZE];
	int rc = read_at(r->fd, buf, SNAP_HEADER_SIZE, 0);
	if (rc < 0)
		return rc;
	if (snap_header_decode(buf, &r->header) < 0)
		return damaged(r, 0, "bad header");
	rc = read_at(r->fd, buf, SNAP_TRAILER_SIZE, r->size - SNAP_TRAILER_SIZE);
	if (rc < 0)
		return rc;
	if (snap_trailer_decode(buf, &r->trailer) < 0 || r->trailer.file_bytes != r->size)
		return damaged(r, r->size - SNAP_TRAILER_SIZE, "bad trailer (the file is cut short or damaged)");
	return 0;
}

/* Reads the block at *off: its header, and its stored bytes into r->stored. */
static int reader_block(struct reader *r, uint64_t *off, struct snap_block_header *bh, uint32_t *crc)
{
	uint8_t hdr[SNAP_BLOCK_HEADER_SIZE];
	uint64_t end = r->size - SNAP_TRAILER_SIZE;
	if (end - *off < SNAP_BLOCK_HEADER_SIZE)
		return damaged(r, *off, "truncated block header");
	int rc = read_at(r->fd, hdr, sizeof hdr, *off);
	if (rc < 0)
		return rc;
	if (snap_block_header_decode(hdr, bh) < 0)
		return damaged(r, *off, "bad block header");
	if (bh->stored_size > end - *off - SNAP_BLOCK_HEADER_SIZE || bh->raw_size > r->trailer.block_raw_max)
		return damaged(r, *off, "block larger than the file or the trailer says");
	if (bh->stored_size > r->stored_cap) {
		uint8_t *p = realloc(r->stored, bh->stored_size);
		if (!p)
			return -ENOMEM;
		r->stored = p;
		r->stored_cap = bh->stored_size;
	}
	rc = read_at(r->fd, r->stored, bh->stored_size, *off + SNAP_BLOCK_HEADER_SIZE);
	if (rc < 0)
		return rc;
	if (crc32c(r->stored, bh->stored_size) != bh->stored_crc)
		return damaged(r, *off, "block checksum mismatch");
	if (crc) {
		*crc = crc32c_extend(*crc, hdr, sizeof hdr);
		*crc = crc32c_extend(*crc, r->stored, bh->stored_size);
	}
	*off += SNAP_BLOCK_HEADER_SIZE + bh->stored_size;
	return 0;
}

static void reader_close(struct reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->stored);
	r->fd = -1;
	r->stored = NULL;
}

/* Invariant 2 of snap_format.h, with r open. */
static int reader_verify(struct reader *r)
{
	uint8_t header[SNAP_HEADER_SIZE];
	int rc = read_at(r->fd, header, sizeof header, 0);
	if (rc < 0)
		return rc;
	uint32_t crc = crc32c(header, sizeof header);
	uint64_t off = SNAP_HEADER_SIZE, end = r->size - SNAP_TRAILER_SIZE, raw = 0, records = 0;
	uint32_t blocks = 0, raw_max = 0;
	while (off < end) {
		struct snap_block_header bh;
		rc = reader_block(r, &off, &bh, &crc);
		if (rc < 0)
			return rc;
		blocks++;
		raw += bh.raw_size;
		records += bh.record_count;
		if (bh.raw_size > raw_max)
			raw_max = bh.raw_size;
	}
	const struct snap_trailer *t = &r->trailer;
	if (crc != t->file_crc)
		return damaged(r, end, "file checksum mismatch");
	if (blocks != t->block_count || raw != t->raw_bytes || raw_max != t->block_raw_max ||
	    records != t->node_count + t->session_count + t->quota_root_count)
		return damaged(r, end, "the trailer's counts do not match the blocks");
	return 0;
}

int snap_verify(const char *path, char *why, size_t why_size)
{
	struct reader r = { .fd = -1, .why = why, .why_size = why_size };
	int rc = reader_open(&r, path);
	if (rc == 0)
		rc = reader_verify(&r);
	reader_close(&r);
	return rc;
}

/* ---------------------------------------------------------------- loading */

struct load_counts {
	uint64_t nodes, sessions, roots;
};

static int load_block(struct reader *r, struct store *s, const uint8_t *raw, size_t len, uint32_t records,
		      int64_t now_ms, struct load_counts *c, void **acl, size_t *acl_cap)
{
	size_t pos = 0;
	for (uint32_t i = 0; i < records; i++) {
		struct snap_record rec;
		struct store_snap_node node;
		int rc = snap_record_decode(raw, len, &pos, &rec, &node, acl, acl_cap);
		if (rc < 0)
			return rc == -EBADMSG ? damaged(r, 0, "malformed record in a block") : rc;
		switch (rec.kind) {
		case SNAP_REC_SESSION: {
			struct store_snap_session se = { .id = rec.session_id, .timeout_ms = rec.timeout_ms };
			memcpy(se.passwd, rec.passwd, sizeof se.passwd);
			rc = store_load_session(s, &se, now_ms);
			c->sessions++;
			break;
		}
		case SNAP_REC_QUOTA_ROOT:
			rc = store_load_quota_root(s, (const char *)rec.bytes, rec.len);
			c->roots++;
			break;
		case SNAP_REC_NODE:
			rc = store_load_node(s, &node, r->why, r->why_size);
			c->nodes++;
			break;
		}
		if (rc < 0)
			return rc;
	}
	if (pos != len)
		return damaged(r, 0, "a block holds more than its records");
	return 0;
}

static int reader_load(struct reader *r, struct store *s, int64_t now_ms)
{
	uint8_t *raw = malloc(r->trailer.block_raw_max ? r->trailer.block_raw_max : 1);
	if (!raw)
		return -ENOMEM;
	void *acl = NULL;
	size_t acl_cap = 0;
	struct load_counts c = { 0 };
	uint64_t off = SNAP_HEADER_SIZE, end = r->size - SNAP_TRAILER_SIZE;
	int rc = 0;
	while (rc == 0 && off < end) {
		struct snap_block_header bh;
		rc = reader_block(r, &off, &bh, NULL);
		if (rc < 0)
			break;
		int n = LZ4_decompress_safe((const char *)r->stored, (char *)raw, (int)bh.stored_size, (int)bh.raw_size);
		if (n < 0 || (uint32_t)n != bh.raw_size) {
			rc = damaged(r, off, "block does not decompress to its size");
			break;
		}
		rc = load_block(r, s, raw, bh.raw_size, bh.record_count, now_ms, &c, &acl, &acl_cap);
	}
	free(raw);
	free(acl);
	const struct snap_trailer *t = &r->trailer;
	if (rc == 0 && (c.nodes != t->node_count || c.sessions != t->session_count || c.roots != t->quota_root_count))
		rc = damaged(r, end, "record counts differ from the trailer's");
	if (rc == 0)
		rc = store_load_finish(s, r->header.store_zxid, r->why, r->why_size);
	return rc;
}

static void set_aside(const char *snap_dir, uint64_t index)
{
	char name[SNAP_NAME_MAX], from[4096], to[4096];
	snap_file_name(name, index, false);
	snprintf(from, sizeof from, "%s/%s", snap_dir, name);
	snprintf(to, sizeof to, "%s/%s.damaged", snap_dir, name);
	if (rename(from, to) < 0)
		log_error("snapshot: cannot set %s aside: %s", from, strerror(errno));
}

int snap_load_newest(const char *snap_dir, struct store *s, int64_t now_ms, struct snap_loaded *out)
{
	memset(out, 0, sizeof *out);
	uint64_t *idx;
	size_t count;
	int rc = snap_list(snap_dir, true, &idx, &count);
	if (rc < 0) {
		log_error("snapshot: cannot list %s: %s", snap_dir, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < count; i++) {
		char name[SNAP_NAME_MAX], path[4096], why[512] = "";
		snap_file_name(name, idx[i], false);
		snprintf(path, sizeof path, "%s/%s", snap_dir, name);
		struct reader r = { .fd = -1, .why = why, .why_size = sizeof why };
		uint64_t t0 = now_us();
		rc = reader_open(&r, path);
		if (rc == 0 && r.header.index != idx[i])
			rc = damaged(&r, 16, "the header's index is not the file name's");
		if (rc == 0)
			rc = reader_verify(&r);
		if (rc < 0) {
			reader_close(&r);
			log_error("snapshot: %s IS DAMAGED (%s%s%s): set aside as %s.damaged; %s", path,
				  rc == -EBADMSG ? "" : strerror(-rc), rc == -EBADMSG ? "" : ": ", why, name,
				  i + 1 < count ? "starting from the snapshot before it" : "no older snapshot is left");
			set_aside(snap_dir, idx[i]);
			out->damaged_count++;
			rc = 0;
			continue;
		}
		uint64_t t1 = now_us();
		rc = reader_load(&r, s, now_ms);
		reader_close(&r);
		if (rc < 0) {
			log_error("snapshot: %s passed its checks but cannot be loaded (%s%s%s): refusing to start", path,
				  strerror(-rc), why[0] ? ": " : "", why);
			break;
		}
		out->found = true;
		out->index = r.header.index;
		out->term = r.header.term;
		out->node_count = r.trailer.node_count;
		out->session_count = r.trailer.session_count;
		out->file_bytes = r.size;
		out->verify_us = t1 - t0;
		out->load_us = now_us() - t1;
		break;
	}
	free(idx);
	return rc;
}
