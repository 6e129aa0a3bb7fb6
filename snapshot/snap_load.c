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
#include <pthread.h>
#include <stdatomic.h>
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

/* Invariant 2 of snap_format.h, with r open; offsets (if given, room for the
 * trailer's block count) get where each block starts. */
static int reader_verify(struct reader *r, uint64_t *offsets)
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
		if (offsets && blocks == r->trailer.block_count)
			return damaged(r, off, "more blocks than the trailer says");
		if (offsets)
			offsets[blocks] = off;
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
		rc = reader_verify(&r, NULL);
	reader_close(&r);
	return rc;
}

/* ---------------------------------------------------------------- loading */

/*
 * The load pass runs on `threads` threads (the caller's among them): each takes the
 * next block (their offsets come from the check pass), reads, checks and decompresses
 * it into its own buffers and hands its records to the store, which takes the node's
 * shard lock (store_load_node may run on several threads). Quota roots go through
 * `lock` (their table has no lock of its own). Linking the nodes at the end
 * (store_load_finish) runs on the caller's thread.
 */
struct load_job {
	struct reader *r;
	struct store *s;
	int64_t now_ms;
	const uint64_t *offsets;
	uint32_t block_count;
	atomic_uint next;
	atomic_int err;
	pthread_mutex_t lock; /* quota roots, the sums below, the first error's text */
	uint64_t nodes, sessions, roots;
	uint64_t read_us;
};

struct load_worker {
	struct load_job *job;
	uint8_t *stored, *raw;
	size_t stored_cap;
	void *acl;
	size_t acl_cap;
	uint64_t nodes, sessions, roots, read_us;
	char why[256];
};

static int worker_fail(struct load_worker *w, int rc)
{
	struct load_job *j = w->job;
	int expected = 0;
	if (atomic_compare_exchange_strong(&j->err, &expected, rc)) {
		pthread_mutex_lock(&j->lock);
		if (j->r->why && j->r->why_size)
			snprintf(j->r->why, j->r->why_size, "%s", w->why);
		pthread_mutex_unlock(&j->lock);
	}
	return rc;
}

static int worker_records(struct load_worker *w, size_t len, uint32_t records)
{
	struct load_job *j = w->job;
	size_t pos = 0;
	for (uint32_t i = 0; i < records; i++) {
		struct snap_record rec;
		struct store_snap_node node;
		int rc = snap_record_decode(w->raw, len, &pos, &rec, &node, &w->acl, &w->acl_cap);
		if (rc < 0) {
			snprintf(w->why, sizeof w->why, "malformed record in a block");
			return rc == -EBADMSG ? -EBADMSG : rc;
		}
		switch (rec.kind) {
		case SNAP_REC_SESSION: {
			struct store_snap_session se = { .id = rec.session_id, .timeout_ms = rec.timeout_ms };
			memcpy(se.passwd, rec.passwd, sizeof se.passwd);
			rc = store_load_session(j->s, &se, j->now_ms);
			w->sessions++;
			break;
		}
		case SNAP_REC_QUOTA_ROOT:
			pthread_mutex_lock(&j->lock);
			rc = store_load_quota_root(j->s, (const char *)rec.bytes, rec.len);
			pthread_mutex_unlock(&j->lock);
			w->roots++;
			break;
		case SNAP_REC_NODE:
			rc = store_load_node(j->s, &node, w->why, sizeof w->why);
			w->nodes++;
			break;
		}
		if (rc < 0)
			return rc;
	}
	if (pos != len) {
		snprintf(w->why, sizeof w->why, "a block holds more than its records");
		return -EBADMSG;
	}
	return 0;
}

static int worker_block(struct load_worker *w, uint64_t off)
{
	struct load_job *j = w->job;
	struct reader *r = j->r;
	uint64_t t0 = now_us();
	uint8_t hdr[SNAP_BLOCK_HEADER_SIZE];
	struct snap_block_header bh;
	int rc = read_at(r->fd, hdr, sizeof hdr, off);
	if (rc < 0)
		return rc;
	if (snap_block_header_decode(hdr, &bh) < 0 || bh.raw_size > r->trailer.block_raw_max ||
	    bh.stored_size > r->size - SNAP_TRAILER_SIZE - off - SNAP_BLOCK_HEADER_SIZE) {
		snprintf(w->why, sizeof w->why, "bad block header at byte %llu (the file changed?)", (unsigned long long)off);
		return -EBADMSG;
	}
	if (bh.stored_size > w->stored_cap) {
		uint8_t *p = realloc(w->stored, bh.stored_size);
		if (!p)
			return -ENOMEM;
		w->stored = p;
		w->stored_cap = bh.stored_size;
	}
	rc = read_at(r->fd, w->stored, bh.stored_size, off + SNAP_BLOCK_HEADER_SIZE);
	if (rc < 0)
		return rc;
	int n = -1;
	if (crc32c(w->stored, bh.stored_size) == bh.stored_crc)
		n = LZ4_decompress_safe((const char *)w->stored, (char *)w->raw, (int)bh.stored_size, (int)bh.raw_size);
	w->read_us += now_us() - t0;
	if (n < 0 || (uint32_t)n != bh.raw_size) {
		snprintf(w->why, sizeof w->why, "block at byte %llu does not check or decompress", (unsigned long long)off);
		return -EBADMSG;
	}
	return worker_records(w, bh.raw_size, bh.record_count);
}

static void *worker_main(void *arg)
{
	struct load_worker *w = arg;
	struct load_job *j = w->job;
	w->raw = malloc(j->r->trailer.block_raw_max ? j->r->trailer.block_raw_max : 1);
	if (!w->raw) {
		snprintf(w->why, sizeof w->why, "out of memory");
		worker_fail(w, -ENOMEM);
	}
	while (w->raw && atomic_load(&j->err) == 0) {
		unsigned i = atomic_fetch_add(&j->next, 1);
		if (i >= j->block_count)
			break;
		int rc = worker_block(w, j->offsets[i]);
		if (rc < 0)
			worker_fail(w, rc);
	}
	pthread_mutex_lock(&j->lock);
	j->nodes += w->nodes;
	j->sessions += w->sessions;
	j->roots += w->roots;
	if (w->read_us > j->read_us)
		j->read_us = w->read_us; /* the slowest thread's: what the wall clock waited */
	pthread_mutex_unlock(&j->lock);
	free(w->stored);
	free(w->raw);
	free(w->acl);
	return NULL;
}

static int reader_load(struct reader *r, struct store *s, int64_t now_ms, const uint64_t *offsets, int threads,
		       struct snap_loaded *out)
{
	struct load_job job = { .r = r, .s = s, .now_ms = now_ms, .offsets = offsets,
				.block_count = r->trailer.block_count };
	pthread_mutex_init(&job.lock, NULL);
	if (threads > SNAP_LOAD_THREADS_MAX)
		threads = SNAP_LOAD_THREADS_MAX;
	if (threads < 1 || (uint32_t)threads > job.block_count)
		threads = job.block_count ? (int)job.block_count : 1;
	struct load_worker workers[SNAP_LOAD_THREADS_MAX];
	pthread_t tids[SNAP_LOAD_THREADS_MAX];
	int started = 0;
	for (int i = 0; i < threads; i++)
		workers[i] = (struct load_worker){ .job = &job };
	for (int i = 1; i < threads; i++) {
		if (pthread_create(&tids[i], NULL, worker_main, &workers[i]) != 0)
			break; /* fewer threads: the others take the blocks */
		started++;
	}
	worker_main(&workers[0]);
	for (int i = 1; i <= started; i++)
		pthread_join(tids[i], NULL);
	int rc = atomic_load(&job.err);
	out->read_us = job.read_us;
	out->load_threads = (uint32_t)started + 1;
	const struct snap_trailer *t = &r->trailer;
	if (rc == 0 && (job.nodes != t->node_count || job.sessions != t->session_count || job.roots != t->quota_root_count))
		rc = damaged(r, r->size - SNAP_TRAILER_SIZE, "record counts differ from the trailer's");
	pthread_mutex_destroy(&job.lock);
	uint64_t t0 = now_us();
	if (rc == 0)
		rc = store_load_finish(s, r->header.store_zxid, r->why, r->why_size);
	out->finish_us = now_us() - t0;
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

/*
 * Checks and loads one file (its header must say `index`). 0; -EBADMSG when it fails
 * a check (nothing loaded: *damaged set); another -errno when a file that passed its
 * checks cannot be loaded (the store is half filled) or cannot be read.
 */
static int load_one(const char *path, uint64_t index, struct store *s, int64_t now_ms, int threads,
		    struct snap_loaded *out, char *why, size_t why_size, bool *was_damaged)
{
	struct reader r = { .fd = -1, .why = why, .why_size = why_size };
	uint64_t t0 = now_us();
	uint64_t *offsets = NULL;
	*was_damaged = false;
	int rc = reader_open(&r, path);
	if (rc == 0 && r.header.index != index)
		rc = damaged(&r, 16, "the header's index is not the file name's");
	/* The trailer checked: the count is bounded by the file's size. */
	if (rc == 0 && r.trailer.block_count > r.size / SNAP_BLOCK_HEADER_SIZE)
		rc = damaged(&r, r.size - SNAP_TRAILER_SIZE, "more blocks than the file can hold");
	if (rc == 0 && !(offsets = malloc(((size_t)r.trailer.block_count + 1) * sizeof *offsets)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = reader_verify(&r, offsets);
	if (rc < 0) {
		*was_damaged = true;
		free(offsets);
		reader_close(&r);
		return rc;
	}
	uint64_t t1 = now_us();
	rc = reader_load(&r, s, now_ms, offsets, threads, out);
	free(offsets);
	reader_close(&r);
	if (rc < 0)
		return rc;
	out->found = true;
	out->index = r.header.index;
	out->term = r.header.term;
	out->node_count = r.trailer.node_count;
	out->session_count = r.trailer.session_count;
	out->file_bytes = r.size;
	out->verify_us = t1 - t0;
	out->load_us = now_us() - t1;
	return 0;
}

int snap_load_file(const char *path, uint64_t index, struct store *s, int64_t now_ms, int threads,
		   struct snap_loaded *out, char *why, size_t why_size)
{
	memset(out, 0, sizeof *out);
	bool was_damaged;
	return load_one(path, index, s, now_ms, threads, out, why, why_size, &was_damaged);
}

int snap_load_newest(const char *snap_dir, struct store *s, int64_t now_ms, int threads, struct snap_loaded *out)
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
		bool was_damaged;
		uint32_t damaged_so_far = out->damaged_count;
		rc = load_one(path, idx[i], s, now_ms, threads, out, why, sizeof why, &was_damaged);
		out->damaged_count = damaged_so_far;
		if (rc < 0 && was_damaged) {
			log_error("snapshot: %s IS DAMAGED (%s%s%s): set aside as %s.damaged; %s", path,
				  rc == -EBADMSG ? "" : strerror(-rc), rc == -EBADMSG ? "" : ": ", why, name,
				  i + 1 < count ? "starting from the snapshot before it" : "no older snapshot is left");
			set_aside(snap_dir, idx[i]);
			out->damaged_count++;
			rc = 0;
			continue;
		}
		if (rc < 0)
			log_error("snapshot: %s passed its checks but cannot be loaded (%s%s%s): refusing to start", path,
				  strerror(-rc), why[0] ? ": " : "", why);
		break;
	}
	free(idx);
	return rc;
}

int snap_adopt(const char *snap_dir, const char *tmp_path, uint64_t index, char *why, size_t why_size)
{
	int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0)
		rc = snap_verify(tmp_path, why, why_size);
	struct snap_header h;
	uint8_t buf[SNAP_HEADER_SIZE];
	if (rc == 0) {
		fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : read_at(fd, buf, sizeof buf, 0);
		if (fd >= 0)
			close(fd);
		if (rc == 0 && (snap_header_decode(buf, &h) < 0 || h.index != index)) {
			snprintf(why, why_size, "the header's index is not %llu", (unsigned long long)index);
			rc = -EBADMSG;
		}
	}
	char name[SNAP_NAME_MAX], path[4096];
	snap_file_name(name, index, false);
	snprintf(path, sizeof path, "%s/%s", snap_dir, name);
	if (rc == 0 && rename(tmp_path, path) < 0)
		rc = -errno;
	if (rc == 0) {
		int dfd = open(snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = dfd < 0 || fsync(dfd) < 0 ? -errno : 0;
		if (dfd >= 0)
			close(dfd);
	}
	if (rc < 0)
		unlink(tmp_path);
	return rc;
}
