/*
 * test_wal.c — the write-ahead log: CRC32C, the record codec, group commit through a
 * real io_uring with O_DIRECT, recovery (torn tails at every byte offset, zeroed tails,
 * mid-log corruption), truncate/compact, ENOSPC on a size-limited tmpfs, and a write
 * error. Logs live under the test's working directory (the meson build dir, on the
 * real disk), never /tmp.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/crc32c.h"
#include "raft/wal.h"

/* ------------------------------------------------------------------ helpers */

struct rec {
	uint64_t term;
	uint64_t index;
	uint32_t size;
	uint8_t *data;
};

struct replayed {
	struct rec *recs;
	size_t count;
	size_t cap;
};

static int collect(void *ctx, uint64_t term, uint64_t index, const void *data, size_t size)
{
	struct replayed *r = ctx;
	if (r->count == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->recs = realloc(r->recs, r->cap * sizeof(*r->recs));
		cr_assert_not_null(r->recs);
	}
	struct rec *x = &r->recs[r->count++];
	x->term = term;
	x->index = index;
	x->size = (uint32_t)size;
	x->data = malloc(size ? size : 1);
	memcpy(x->data, data, size);
	return 0;
}

static void replayed_free(struct replayed *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->recs[i].data);
	free(r->recs);
	memset(r, 0, sizeof(*r));
}

/* Deterministic payload of record `index`: its size and bytes depend on the index. */
static uint32_t payload_size(uint64_t index)
{
	return (uint32_t)((index * 37) % 301);
}

static void payload_fill(uint64_t index, uint8_t *out, uint32_t size)
{
	for (uint32_t k = 0; k < size; k++)
		out[k] = (uint8_t)(index * 131 + k * 7 + 3);
}

static uint64_t term_of(uint64_t index)
{
	return 1 + index / 100;
}

/* Asserts r holds exactly records first..last with the deterministic payloads. */
static void assert_replayed(const struct replayed *r, uint64_t first, uint64_t last)
{
	cr_assert_eq(r->count, last >= first ? last - first + 1 : 0,
		     "replayed %zu records, expected %" PRIu64 "..%" PRIu64, r->count, first, last);
	uint8_t expect[512];
	for (size_t i = 0; i < r->count; i++) {
		uint64_t index = first + i;
		cr_assert_eq(r->recs[i].index, index);
		cr_assert_eq(r->recs[i].term, term_of(index));
		cr_assert_eq(r->recs[i].size, payload_size(index), "index %" PRIu64, index);
		payload_fill(index, expect, payload_size(index));
		cr_assert(memcmp(r->recs[i].data, expect, r->recs[i].size) == 0,
			  "payload of index %" PRIu64, index);
	}
}

static void test_dir(char *out, size_t cap, const char *name)
{
	char cwd[1024];
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	mkdir("wal-test", 0755);
	snprintf(out, cap, "%s/wal-test/%s", cwd, name);
	char cmd[2200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", out);
	cr_assert_eq(system(cmd), 0);
}

static void config_init(struct wal_config *cfg, const char *dir, uint64_t segment_size,
			uint32_t batch_bytes_max)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->dir = dir;
	cfg->segment_size_bytes = segment_size;
	cfg->batch_bytes_max = batch_bytes_max;
}

static int stage_one(struct wal *w, uint64_t index)
{
	uint8_t data[512];
	uint32_t size = payload_size(index);
	payload_fill(index, data, size);
	return wal_stage(w, term_of(index), index, data, size);
}

/* Pipelined writer: stages batch N+1 while batch N is in flight. */
static void write_pipelined(struct wal *w, struct io_uring *ring, uint64_t first,
			    uint64_t last, uint32_t per_batch)
{
	uint64_t next = first;
	uint64_t durable_seen = wal_durable_index(w);
	while (next <= last || wal_in_flight(w) || wal_staged_count(w) > 0) {
		while (next <= last && wal_staged_count(w) < per_batch) {
			int rc = stage_one(w, next);
			if (rc == -EAGAIN)
				break;
			cr_assert_eq(rc, 0, "stage %" PRIu64 ": %d", next, rc);
			next++;
		}
		if (!wal_in_flight(w) && wal_staged_count(w) > 0) {
			cr_assert_eq(wal_submit(w, ring, 0xabc), 0);
			continue;
		}
		if (!wal_in_flight(w))
			continue;
		struct io_uring_cqe *cqe;
		cr_assert_eq(io_uring_wait_cqe(ring, &cqe), 0);
		cr_assert_eq(cqe->user_data, 0xabc);
		uint64_t durable = 0;
		int rc = wal_complete(w, cqe, &durable);
		io_uring_cqe_seen(ring, cqe);
		cr_assert_geq(rc, 0, "complete: %d", rc);
		if (rc == 1) {
			cr_assert_gt(durable, durable_seen);
			durable_seen = durable;
			cr_assert_eq(wal_durable_index(w), durable);
		}
	}
	cr_assert_eq(wal_durable_index(w), last);
}

static struct wal *open_ok(const struct wal_config *cfg, struct replayed *r)
{
	struct wal *w = NULL;
	int rc = wal_open(&w, cfg, collect, r);
	cr_assert_eq(rc, 0, "wal_open: %d", rc);
	cr_assert_not_null(w);
	return w;
}

static void segment_path(char *out, size_t cap, const char *dir, uint64_t seq)
{
	snprintf(out, cap, "%s/log/log.%020" PRIu64, dir, seq);
}

static uint8_t *file_read(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	*size = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(*size);
	cr_assert_eq(fread(buf, 1, *size, f), *size);
	fclose(f);
	return buf;
}

static void file_write(const char *path, const uint8_t *buf, size_t size)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(buf, 1, size, f), size);
	fclose(f);
}

/* Offsets of every record in a segment image. */
static size_t record_offsets(const uint8_t *img, size_t size, uint64_t *offsets, size_t cap)
{
	size_t n = 0, pos = 0;
	while (pos < size && n < cap) {
		struct wal_record_view v;
		long len = wal_record_decode(img + pos, size - pos, &v);
		if (len < 0)
			break;
		offsets[n++] = pos;
		pos += (size_t)len;
	}
	offsets[n] = pos;
	return n;
}

/* ------------------------------------------------------------------ crc32c */

Test(crc32c, vectors)
{
	cr_assert_eq(crc32c("123456789", 9), 0xE3069283u);
	cr_assert_eq(crc32c_extend_table(0, "123456789", 9), 0xE3069283u);
	uint8_t zeros[32] = { 0 }, ones[32];
	memset(ones, 0xff, sizeof(ones));
	cr_assert_eq(crc32c(zeros, 32), 0x8A9136AAu);   /* RFC 3720 B.4 */
	cr_assert_eq(crc32c(ones, 32), 0x62A8AB43u);
	cr_assert_eq(crc32c("", 0), 0u);
	if (crc32c_hardware_available())
		cr_assert_eq(crc32c_extend_hardware(0, "123456789", 9), 0xE3069283u);
	else
		cr_log_warn("crc32c: no SSE4.2 here, hardware path not tested");
}

Test(crc32c, paths_agree_and_extend)
{
	uint8_t buf[1100];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 151 + (i >> 3));
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len + off <= sizeof(buf); len += 1 + len / 7) {
			uint32_t t = crc32c_extend_table(0, buf + off, len);
			if (crc32c_hardware_available())
				cr_assert_eq(crc32c_extend_hardware(0, buf + off, len), t,
					     "off %zu len %zu", off, len);
			cr_assert_eq(crc32c(buf + off, len), t);
			size_t half = len / 3;
			cr_assert_eq(crc32c_extend(crc32c(buf + off, half), buf + off + half,
						   len - half), t);
		}
	}
}

/* ------------------------------------------------------------------ record codec */

Test(wal_record, encode_decode)
{
	uint8_t buf[256];
	const char *payload = "hello, raft";
	size_t n = wal_record_encode(buf, sizeof(buf), 7, 42, 40, payload, 11);
	cr_assert_eq(n, WAL_RECORD_HEADER_SIZE + 11);
	cr_assert_eq(memcmp(buf, "RKWL", 4), 0);
	struct wal_record_view v;
	cr_assert_eq(wal_record_decode(buf, n, &v), (long)n);
	cr_assert_eq(v.term, 7);
	cr_assert_eq(v.index, 42);
	cr_assert_eq(v.batch_first_index, 40);
	cr_assert_eq(v.size, 11);
	cr_assert_eq(memcmp(v.data, payload, 11), 0);

	/* Every single-byte change is caught. */
	for (size_t i = 0; i < n; i++) {
		buf[i] ^= 0x01;
		long rc = wal_record_decode(buf, n, &v);
		cr_assert(rc == -EBADMSG || (i < 4 && rc == -ENODATA), "byte %zu: %ld", i, rc);
		buf[i] ^= 0x01;
	}
	/* Too short to hold the payload. */
	cr_assert_eq(wal_record_decode(buf, n - 1, &v), -EBADMSG);
	cr_assert_eq(wal_record_decode(buf, 20, &v), -EBADMSG);
	/* Unwritten space. */
	uint8_t zeros[64] = { 0 };
	cr_assert_eq(wal_record_decode(zeros, sizeof(zeros), &v), -ENODATA);
	cr_assert_eq(wal_record_decode(zeros, 10, &v), -ENODATA);
	/* Does not fit. */
	cr_assert_eq(wal_record_encode(buf, WAL_RECORD_HEADER_SIZE + 10, 1, 1, 1, payload, 11), 0);
	/* Empty payload. */
	n = wal_record_encode(buf, sizeof(buf), 1, 1, 1, NULL, 0);
	cr_assert_eq(wal_record_decode(buf, sizeof(buf), &v), (long)WAL_RECORD_HEADER_SIZE);
	cr_assert_eq(v.size, 0);
}

/* ------------------------------------------------------------------ append + replay */

static void roundtrip(const char *name, enum wal_sync_mode mode)
{
	char dir[1100];
	test_dir(dir, sizeof(dir), name);
	struct wal_config cfg;
	config_init(&cfg, dir, 1 << 20, 64 << 10);
	cfg.sync_mode = mode;
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(wal_last_index(w), 0);
	cr_assert_eq(wal_first_index(w), 0);
	cr_assert(wal_direct_io(w), "the build dir is expected on a filesystem with O_DIRECT");

	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	/* Batches of 1, 2, 3, ... 40 records. */
	uint64_t next = 1;
	for (uint32_t per = 1; per <= 40; per++) {
		write_pipelined(w, &ring, next, next + per - 1, per);
		next += per;
	}
	uint64_t last = next - 1;
	write_pipelined(w, &ring, last + 1, last + 2000, 97);
	last += 2000;
	cr_assert_eq(wal_last_index(w), last);
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_eq(st.entry_count, last);
	cr_assert_geq(st.batch_count, 40 + 2000 / 97);
	cr_assert_geq(st.commit_latency_sample_count, 1);
	cr_assert_leq(st.batch_entries_max_seen, 97);
	wal_close(w);
	io_uring_queue_exit(&ring);

	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, last);
	cr_assert_eq(wal_first_index(w), 1);
	cr_assert_eq(wal_last_index(w), last);
	cr_assert_eq(wal_durable_index(w), last);
	cr_assert_eq(wal_last_term(w), term_of(last));
	wal_close(w);
	replayed_free(&r);
}

Test(wal, roundtrip_dsync) { roundtrip("roundtrip_dsync", WAL_SYNC_WRITE_DSYNC); }
Test(wal, roundtrip_linked_fdatasync)
{
	roundtrip("roundtrip_linked", WAL_SYNC_WRITE_LINKED_FDATASYNC);
}
Test(wal, roundtrip_nosync) { roundtrip("roundtrip_nosync", WAL_SYNC_NONE); }

Test(wal, limits)
{
	char dir[1100];
	test_dir(dir, sizeof(dir), "limits");
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 4096);
	cfg.batch_entries_max = 4;
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	uint8_t big[8192] = { 0 };
	cr_assert_eq(wal_stage(w, 1, 1, big, 4096 - WAL_RECORD_HEADER_SIZE + 1), -EMSGSIZE);
	for (uint64_t i = 1; i <= 4; i++)
		cr_assert_eq(stage_one(w, i), 0);
	cr_assert_eq(stage_one(w, 5), -EAGAIN);          /* entries */
	cr_assert_eq(wal_flush_sync(w), 0);
	cr_assert_eq(wal_stage(w, 1, 5, big, 3000), 0);
	cr_assert_eq(wal_stage(w, 1, 6, big, 1100), -EAGAIN);  /* bytes */
	cr_assert_eq(wal_flush_sync(w), 0);
	cr_assert_eq(wal_last_index(w), 5);
	cr_assert_eq(wal_flush_sync(w), 0);     /* nothing staged: no-op */
	wal_close(w);
	/* Bad config is refused. */
	config_init(&cfg, dir, 4096, 4096);
	struct wal *bad = NULL;
	cr_assert_eq(wal_open(&bad, &cfg, NULL, NULL), -EINVAL);
	cr_assert_null(bad);
	replayed_free(&r);
}

Test(wal, segment_rollover)
{
	char dir[1100];
	test_dir(dir, sizeof(dir), "rollover");
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 16 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	write_pipelined(w, &ring, 1, 3000, 64);
	struct wal_stats st;
	wal_stats_get(w, &st);
	/* ~3000 * 190 bytes over 64 KiB segments. */
	cr_assert_geq(st.segment_roll_count, 8);
	cr_assert_eq(st.segment_count, st.segment_roll_count);
	wal_close(w);

	/* Every segment file has the full preallocated size. */
	char path[1200];
	struct stat sb;
	for (uint64_t seq = 1; seq <= st.segment_count; seq++) {
		segment_path(path, sizeof(path), dir, seq);
		cr_assert_eq(stat(path, &sb), 0, "%s", path);
		cr_assert_eq(sb.st_size, 64 << 10);
	}
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 3000);
	replayed_free(&r);
	/* Appending after reopen continues in the tail segment and rolls on. */
	write_pipelined(w, &ring, 3001, 3500, 50);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 3500);
	replayed_free(&r);

	/* Compaction drops whole segments below the snapshot index, never the tail. */
	uint64_t before = wal_first_index(w);
	cr_assert_eq(before, 1);
	int deleted = wal_compact_prefix(w, 1000);
	cr_assert_gt(deleted, 0);
	cr_assert_gt(wal_first_index(w), 1);
	cr_assert_leq(wal_first_index(w), 1001);
	uint64_t first = wal_first_index(w);
	cr_assert_eq(wal_compact_prefix(w, 1000), 0);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, first, 3500);
	replayed_free(&r);
	cr_assert_geq(wal_compact_prefix(w, 1000000), 1);
	cr_assert_eq(wal_last_index(w), 3500);
	wal_close(w);
	w = open_ok(&cfg, &r);
	cr_assert_gt(r.count, 0);
	cr_assert_eq(r.recs[r.count - 1].index, 3500);
	wal_close(w);
	replayed_free(&r);
	io_uring_queue_exit(&ring);
}

/* ------------------------------------------------------------------ recovery */

/*
 * Builds a log whose last batch holds records 19 and 20 (earlier batches hold one
 * record each) and returns the image of segment 1 plus the record offsets.
 */
static uint8_t *build_torn_base(const char *dir, struct wal_config *cfg, size_t *size,
				uint64_t *offsets)
{
	config_init(cfg, dir, 64 << 10, 16 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(cfg, &r);
	for (uint64_t i = 1; i <= 18; i++) {
		cr_assert_eq(stage_one(w, i), 0);
		cr_assert_eq(wal_flush_sync(w), 0);
	}
	cr_assert_eq(stage_one(w, 19), 0);
	cr_assert_eq(stage_one(w, 20), 0);
	cr_assert_eq(wal_flush_sync(w), 0);
	wal_close(w);
	char path[1200];
	segment_path(path, sizeof(path), dir, 1);
	uint8_t *img = file_read(path, size);
	cr_assert_eq(*size, 64 << 10);
	cr_assert_eq(record_offsets(img, *size, offsets, 32), 20);
	return img;
}

/* Reopens, expects records 1..last, then appends two more and checks them too. */
static void expect_log_then_append(const struct wal_config *cfg, uint64_t last,
				   const char *what, size_t x)
{
	struct replayed r = { 0 };
	struct wal *w = NULL;
	int rc = wal_open(&w, cfg, collect, &r);
	cr_assert_eq(rc, 0, "%s at %zu: wal_open %d", what, x, rc);
	cr_assert_eq(wal_last_index(w), last, "%s at %zu: last %" PRIu64, what, x,
		     wal_last_index(w));
	assert_replayed(&r, 1, last);
	replayed_free(&r);
	cr_assert_eq(stage_one(w, last + 1), 0);
	cr_assert_eq(stage_one(w, last + 2), 0);
	cr_assert_eq(wal_flush_sync(w), 0);
	wal_close(w);
	w = open_ok(cfg, &r);
	assert_replayed(&r, 1, last + 2);
	wal_close(w);
	replayed_free(&r);
}

Test(wal_recovery, torn_tail_every_offset)
{
	char dir[1100], path[1200];
	test_dir(dir, sizeof(dir), "torn");
	struct wal_config cfg;
	size_t size;
	uint64_t off[33];
	uint8_t *img = build_torn_base(dir, &cfg, &size, off);
	segment_path(path, sizeof(path), dir, 1);
	uint8_t *copy = malloc(size);
	size_t cases = 0;
	for (size_t x = off[18]; x < off[20]; x++) {
		uint64_t last = x < off[19] ? 18 : 19;
		/* A crash that persisted only the bytes before x (file cut short). */
		file_write(path, img, x);
		expect_log_then_append(&cfg, last, "truncate", x);
		/* A torn sector: one byte inside the last batch is wrong. */
		memcpy(copy, img, size);
		copy[x] ^= 0x5a;
		file_write(path, copy, size);
		expect_log_then_append(&cfg, last, "corrupt", x);
		cases += 2;
	}
	cr_log_info("torn tail: %zu cases", cases);
	cr_assert_gt(cases, 2 * 2 * WAL_RECORD_HEADER_SIZE);
	free(copy);
	free(img);
}

Test(wal_recovery, zeroed_tail)
{
	char dir[1100], path[1200];
	test_dir(dir, sizeof(dir), "zeroed");
	struct wal_config cfg;
	size_t size;
	uint64_t off[33];
	uint8_t *img = build_torn_base(dir, &cfg, &size, off);
	segment_path(path, sizeof(path), dir, 1);
	uint8_t *copy = malloc(size);

	/* Records 19..20 never reached the disk. */
	memcpy(copy, img, size);
	memset(copy + off[18], 0, size - off[18]);
	file_write(path, copy, size);
	expect_log_then_append(&cfg, 18, "zero tail", off[18]);

	/* Only the sector holding record 19 was lost; 20 (same batch) survived. */
	memcpy(copy, img, size);
	memset(copy + off[18], 0, off[19] - off[18]);
	file_write(path, copy, size);
	expect_log_then_append(&cfg, 18, "zero hole in last batch", off[18]);

	/* Garbage after the end: the torn-tail region is zeroed on disk by wal_open. */
	memcpy(copy, img, size);
	memset(copy + off[20] + 100, 0xee, 3000);
	file_write(path, copy, size);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 20);
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_eq(st.recovery_truncated_bytes, 100 + 3000);
	wal_close(w);
	replayed_free(&r);
	size_t now_size;
	uint8_t *now = file_read(path, &now_size);
	cr_assert_eq(now_size, size);
	for (size_t k = off[20]; k < size; k++)
		cr_assert_eq(now[k], 0, "byte %zu not cleared", k);
	cr_assert_eq(memcmp(now, img, off[20]), 0);
	free(now);
	free(copy);
	free(img);
}

static void expect_open_error(const struct wal_config *cfg_in, const char *file_part,
			      uint64_t offset)
{
	struct wal_config cfg = *cfg_in;
	char text[512] = "";
	cfg.error_text = text;
	cfg.error_text_size = sizeof(text);
	struct replayed r = { 0 };
	struct wal *w = NULL;
	cr_assert_eq(wal_open(&w, &cfg, collect, &r), -EUCLEAN, "error text: %s", text);
	cr_assert_null(w);
	char needle[64];
	snprintf(needle, sizeof(needle), "offset %" PRIu64 " ", offset);
	cr_assert_not_null(strstr(text, file_part), "%s", text);
	cr_assert_not_null(strstr(text, needle), "want '%s' in: %s", needle, text);
	replayed_free(&r);
}

Test(wal_recovery, mid_log_corruption_is_an_error)
{
	char dir[1100], path[1200];
	test_dir(dir, sizeof(dir), "midlog");
	struct wal_config cfg;
	size_t size;
	uint64_t off[33];
	uint8_t *img = build_torn_base(dir, &cfg, &size, off);
	segment_path(path, sizeof(path), dir, 1);
	uint8_t *copy = malloc(size);

	/* Record 10 (its own batch) is damaged but batches 11..20 are intact. */
	for (size_t x = off[9]; x < off[10]; x += 7) {
		memcpy(copy, img, size);
		copy[x] ^= 0x01;
		file_write(path, copy, size);
		expect_open_error(&cfg, "log.00000000000000000001", off[9]);
	}
	/* Record 18 damaged, batch {19, 20} intact after it. */
	memcpy(copy, img, size);
	copy[off[17] + 3] ^= 0x80;
	file_write(path, copy, size);
	expect_open_error(&cfg, "log.00000000000000000001", off[17]);
	/* The damaged file was left untouched by the failed open. */
	size_t now_size;
	uint8_t *now = file_read(path, &now_size);
	cr_assert_eq(memcmp(now, copy, size), 0);
	free(now);
	/* Zeroed record 18: 19 then follows a hole. */
	memcpy(copy, img, size);
	memset(copy + off[17], 0, off[18] - off[17]);
	file_write(path, copy, size);
	expect_open_error(&cfg, "log.00000000000000000001", off[17]);

	/* Damage at the end of segment 1 while segment 2 holds records. */
	memcpy(copy, img, size);
	memset(copy + off[18], 0, size - off[18]);
	copy[off[18]] = 0x77;
	file_write(path, copy, size);
	char path2[1200];
	segment_path(path2, sizeof(path2), dir, 2);
	uint8_t rec[256];
	size_t n = wal_record_encode(rec, sizeof(rec), 1, 19, 19, "x", 1);
	uint8_t *seg2 = calloc(1, 64 << 10);
	memcpy(seg2, rec, n);
	file_write(path2, seg2, 64 << 10);
	expect_open_error(&cfg, "log.00000000000000000001", off[18]);

	/* An index gap between segments. */
	memcpy(copy, img, size);
	file_write(path, copy, size);
	n = wal_record_encode(rec, sizeof(rec), 1, 22, 22, "x", 1);
	memcpy(seg2, rec, n);
	file_write(path2, seg2, 64 << 10);
	expect_open_error(&cfg, "log.00000000000000000002", 0);
	unlink(path2);

	/* Restored: opens again. */
	file_write(path, img, size);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 20);
	wal_close(w);
	replayed_free(&r);
	free(seg2);
	free(copy);
	free(img);
}

Test(wal, truncate_suffix)
{
	char dir[1100];
	test_dir(dir, sizeof(dir), "truncate");
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 16 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	write_pipelined(w, &ring, 1, 1500, 40);
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_geq(st.segment_count, 3);

	cr_assert_eq(wal_truncate_suffix(w, 1500), 0);  /* no-op */
	cr_assert_eq(wal_truncate_suffix(w, 1234), 0);  /* inside a segment */
	cr_assert_eq(wal_last_index(w), 1234);
	cr_assert_eq(wal_last_term(w), term_of(1234));
	write_pipelined(w, &ring, 1235, 1300, 7);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 1300);
	replayed_free(&r);

	cr_assert_eq(wal_truncate_suffix(w, 100), 0);   /* drops whole segments */
	wal_stats_get(w, &st);
	cr_assert_eq(st.segment_count, 1);
	write_pipelined(w, &ring, 101, 120, 3);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 120);
	replayed_free(&r);

	cr_assert_eq(wal_truncate_suffix(w, 0), 0);     /* everything */
	cr_assert_eq(wal_last_index(w), 0);
	cr_assert_eq(wal_first_index(w), 0);
	wal_close(w);
	w = open_ok(&cfg, &r);
	cr_assert_eq(r.count, 0);
	write_pipelined(w, &ring, 1, 10, 3);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 10);
	wal_close(w);
	replayed_free(&r);
	io_uring_queue_exit(&ring);
}

/* ------------------------------------------------------------------ errors */

Test(wal, write_error_is_sticky)
{
	char dir[1100];
	test_dir(dir, sizeof(dir), "write_error");
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 16 << 10);
	cfg.sync_mode = WAL_SYNC_WRITE_DSYNC;
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	cr_assert_eq(stage_one(w, 1), 0);
	cr_assert_eq(wal_submit(w, &ring, 5), 0);
	cr_assert(wal_in_flight(w));
	struct io_uring_cqe *cqe;
	cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
	struct io_uring_cqe fake = *cqe;
	io_uring_cqe_seen(&ring, cqe);
	fake.res = -EIO;
	uint64_t durable = 99;
	cr_assert_eq(wal_complete(w, &fake, &durable), -EIO);
	cr_assert_eq(durable, 99);
	cr_assert_not(wal_in_flight(w));
	cr_assert_eq(wal_durable_index(w), 0);
	cr_assert_eq(stage_one(w, 2), -EIO);
	cr_assert_eq(wal_submit(w, &ring, 5), -EIO);
	cr_assert_eq(wal_flush_sync(w), -EIO);
	wal_close(w);

	/* A short write is an error too. */
	w = open_ok(&cfg, &r);
	cr_assert_eq(stage_one(w, 2), 0);
	cr_assert_eq(wal_submit(w, &ring, 5), 0);
	cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
	fake = *cqe;
	io_uring_cqe_seen(&ring, cqe);
	fake.res = 512;
	cr_assert_eq(wal_complete(w, &fake, &durable), -EIO);
	wal_close(w);
	io_uring_queue_exit(&ring);
	replayed_free(&r);
}

Test(wal, enospc_then_resume)
{
	char dir[1200], mnt[1100];
	umount2("wal-test/enospc-mnt", MNT_DETACH);     /* left over by a failed run */
	test_dir(mnt, sizeof(mnt), "enospc-mnt");
	cr_assert_eq(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=512k") != 0) {
		cr_skip_test("cannot mount a size-limited tmpfs here (%s): ENOSPC test skipped",
			     strerror(errno));
	}
	snprintf(dir, sizeof(dir), "%s/data", mnt);
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 16 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	/* Segment 1 exists before the disk fills (the helper prepares it asynchronously). */
	cr_assert_eq(stage_one(w, 1), 0);
	cr_assert_eq(wal_flush_sync(w), 0);
	/* Fill the filesystem with a file we can delete later. */
	char filler[1200];
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	static uint8_t chunk[4096];
	memset(chunk, 0xaa, sizeof(chunk));
	while (write(fd, chunk, sizeof(chunk)) == (ssize_t)sizeof(chunk))
		;
	close(fd);

	uint64_t index = 2;
	int rc = 0;
	for (; index < 100000; index++) {
		rc = stage_one(w, index);
		if (rc == -EAGAIN) {
			cr_assert_eq(wal_flush_sync(w), 0);
			rc = stage_one(w, index);
		}
		if (rc != 0)
			break;
	}
	cr_assert_eq(rc, -ENOSPC, "stage: %d", rc);
	uint64_t failed_at = index;
	cr_assert_gt(failed_at, 1);
	cr_assert_eq(wal_last_index(w), failed_at - 1);
	cr_assert_eq(wal_flush_sync(w), 0);    /* what was staged is still written */
	cr_assert_eq(wal_durable_index(w), failed_at - 1);
	cr_assert_eq(stage_one(w, failed_at), -ENOSPC);  /* still full: retried, fails */
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_geq(st.segment_prepare_fail_count, 2);

	cr_assert_eq(unlink(filler), 0);        /* space returns */
	cr_assert_eq(stage_one(w, failed_at), 0);
	cr_assert_eq(stage_one(w, failed_at + 1), 0);
	cr_assert_eq(wal_flush_sync(w), 0);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, failed_at + 1);
	wal_close(w);
	replayed_free(&r);
	cr_assert_eq(umount(mnt), 0);
}
