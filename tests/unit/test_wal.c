/*
 * test_wal.c — the write-ahead log: CRC32C, the record codec, group commit through a
 * real io_uring with O_DIRECT, recovery (torn tails at every byte offset, zeroed tails,
 * mid-log corruption), truncate/compact, ENOSPC on a size-limited tmpfs, and write
 * errors (faked CQEs for the io_uring methods; real failing pwrite/fdatasync calls for
 * the syscall method). Most tests run once per inflight_max (suffix _k1, _k2, some _k4): the packed
 * one-batch-in-flight layout and the 4 KiB-aligned pipelined one. The wal_pipeline
 * suite covers several batches in flight: tags, out-of-order completions reported in
 * order, torn earlier batches with intact later ones, padding. Logs live under the
 * test's working directory (the meson build dir, on the real disk), never /tmp.
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

#include "core/crc32c.h"
#include "raft/wal.h"

/* ------------------------------------------------------------------ helpers */

/* inflight_max of the test being run (set by the _k<N> wrapper; 0: the default). */
static uint32_t g_inflight;

#define UD_BASE 0xab0u  /* low WAL_USER_DATA_TAG_BITS zero */

/* Defines Test(suite, name_k1) and Test(suite, name_k2) running name(). */
#define TEST_K12(suite, name)                                                      \
	static void name(void);                                                    \
	Test(suite, name##_k1) { g_inflight = 1; name(); }                         \
	Test(suite, name##_k2) { g_inflight = 2; name(); }                         \
	static void name(void)

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
	snprintf(out, cap, "%s/wal-test/%s-k%u", cwd, name, g_inflight);
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
	cfg->inflight_max = g_inflight;
	/* k1 tests run the default mode (pwrite + fdatasync on this thread); k > 1 tests
	 * need batches in flight together, which only the io_uring modes have. */
	cfg->sync_mode = g_inflight > 1 ? WAL_SYNC_WRITE_LINKED_FDATASYNC : WAL_SYNC_DEFAULT;
}

static int stage_one(struct wal *w, uint64_t index)
{
	uint8_t data[512];
	uint32_t size = payload_size(index);
	payload_fill(index, data, size);
	return wal_stage(w, term_of(index), index, data, size);
}

/* Pipelined writer: stages the next batch while up to inflight_max are in flight. */
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
		if (wal_can_submit(w)) {
			int rc = wal_submit(w, ring, UD_BASE);
			if (wal_sync_mode_get(w) == WAL_SYNC_SYSCALL) {
				cr_assert_eq(rc, 1, "submit: %d", rc);  /* durable on return */
				cr_assert_not(wal_in_flight(w));
				cr_assert_gt(wal_durable_index(w), durable_seen);
				durable_seen = wal_durable_index(w);
			} else {
				cr_assert_eq(rc, 0, "submit: %d", rc);
			}
			cr_assert_leq(wal_in_flight_count(w), wal_inflight_max(w));
			continue;
		}
		if (!wal_in_flight(w))
			continue;
		struct io_uring_cqe *cqe;
		cr_assert_eq(io_uring_wait_cqe(ring, &cqe), 0);
		if (wal_inflight_max(w) == 1)
			cr_assert_eq(cqe->user_data, UD_BASE);
		else
			cr_assert(wal_user_data_match(UD_BASE, cqe->user_data), "ud %llx",
				  (unsigned long long)cqe->user_data);
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

/* A fresh directory `name` and a config for it in `mode`; dir must outlive cfg. */
static void fresh_config(struct wal_config *cfg, char *dir, size_t dir_cap, const char *name,
			 uint64_t segment_size, uint32_t batch_bytes_max, enum wal_sync_mode mode)
{
	test_dir(dir, dir_cap, name);
	config_init(cfg, dir, segment_size, batch_bytes_max);
	cfg->sync_mode = mode;
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

/* Offsets of every record in a segment image (skipping padding between batches);
 * offsets[n] is the end of the last one. */
static size_t record_offsets(const uint8_t *img, size_t size, uint64_t *offsets, size_t cap)
{
	size_t n = 0, pos = 0;
	while (pos < size && n < cap) {
		struct wal_record_view v;
		long len = wal_record_decode(img + pos, size - pos, &v);
		if (len < 0 && pos % WAL_BLOCK_SIZE) {
			size_t q = (pos + WAL_BLOCK_SIZE - 1) / WAL_BLOCK_SIZE * WAL_BLOCK_SIZE;
			if (q < size && wal_record_decode(img + q, size - q, &v) > 0) {
				pos = q;
				continue;
			}
		}
		if (len < 0)
			break;
		offsets[n++] = pos;
		pos += (size_t)len;
	}
	offsets[n] = pos;
	return n;
}

/* End offset of record `index` (1-based) given its start offset. */
static uint64_t record_end(const uint64_t *off, uint64_t index)
{
	return off[index - 1] + WAL_RECORD_HEADER_SIZE + payload_size(index);
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
	struct wal_config cfg;
	fresh_config(&cfg, dir, sizeof(dir), name, 1 << 20, 64 << 10, mode);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	cr_assert_eq(r.count, 0);
	cr_assert_eq(wal_last_index(w), 0);
	cr_assert_eq(wal_first_index(w), 0);
	cr_assert(wal_direct_io(w), "the build dir is expected on a filesystem with O_DIRECT");
	if (mode == WAL_SYNC_SYSCALL)
		cr_assert_eq(wal_inflight_max(w), 1);

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

TEST_K12(wal, roundtrip_dsync) { roundtrip("roundtrip_dsync", WAL_SYNC_WRITE_DSYNC); }
TEST_K12(wal, roundtrip_linked_fdatasync)
{
	roundtrip("roundtrip_linked", WAL_SYNC_WRITE_LINKED_FDATASYNC);
}
TEST_K12(wal, roundtrip_nosync) { roundtrip("roundtrip_nosync", WAL_SYNC_NONE); }
/* pwrite + fdatasync on the caller's thread: one batch at a time whatever is asked */
TEST_K12(wal, roundtrip_syscall)
{
	roundtrip("roundtrip_syscall", WAL_SYNC_SYSCALL);
}
Test(wal, roundtrip_linked_k4)
{
	g_inflight = 4;
	roundtrip("roundtrip_linked", WAL_SYNC_WRITE_LINKED_FDATASYNC);
}
Test(wal, roundtrip_dsync_k8)
{
	g_inflight = 8;
	roundtrip("roundtrip_dsync", WAL_SYNC_WRITE_DSYNC);
}

TEST_K12(wal, limits)
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
	config_init(&cfg, dir, 64 << 10, 4096);
	cfg.inflight_max = WAL_INFLIGHT_CAP + 1;
	cr_assert_eq(wal_open(&bad, &cfg, NULL, NULL), -EINVAL);
	cr_assert_null(bad);
	replayed_free(&r);
}

static void segment_rollover(void);
Test(wal, segment_rollover_k1) { g_inflight = 1; segment_rollover(); }
Test(wal, segment_rollover_k2) { g_inflight = 2; segment_rollover(); }
Test(wal, segment_rollover_k4) { g_inflight = 4; segment_rollover(); }
static void segment_rollover(void)
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
	cr_assert_leq(st.inflight_peak, g_inflight);
	cr_log_info("rollover k%u: %" PRIu64 " rolls, in-flight peak %u, held %" PRIu64,
		    g_inflight, st.segment_roll_count, st.inflight_peak, st.held_count);
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
	cr_assert_eq(wal_first_term(w), term_of(1));
	int deleted = wal_compact_prefix(w, 1000);
	cr_assert_gt(deleted, 0);
	cr_assert_gt(wal_first_index(w), 1);
	cr_assert_leq(wal_first_index(w), 1001);
	uint64_t first = wal_first_index(w);
	cr_assert_eq(wal_first_term(w), term_of(first), "lgif's first_log_term follows compaction");
	cr_assert_eq(wal_compact_prefix(w, 1000), 0);
	wal_close(w);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, first, 3500);
	cr_assert_eq(wal_first_index(w), first);
	cr_assert_eq(wal_first_term(w), term_of(first), "and recovery");
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

/*
 * Compaction in two steps (wal_detach_prefix on the raft thread, wal_remove_segments
 * elsewhere), with a crash simulated after each file removed: every intermediate
 * directory reopens as a contiguous log that still holds everything after the index,
 * and a log that lost segments out of order (a removal done newest first) is refused.
 */
Test(wal, compaction_in_two_steps_survives_a_crash_between_any_two_removals)
{
	g_inflight = 1;
	char dir[1100];
	test_dir(dir, sizeof(dir), "detach");
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 16 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	write_pipelined(w, &ring, 1, 3000, 64);
	uint64_t seqs[64];
	int n = wal_detach_prefix(w, 2000, seqs, 64);
	cr_assert_geq(n, 3);
	for (int i = 1; i < n; i++)
		cr_assert_eq(seqs[i], seqs[i - 1] + 1, "oldest first");
	uint64_t first = wal_first_index(w);
	cr_assert_gt(first, 1);
	cr_assert_leq(first, 2001);
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_eq(wal_detach_prefix(w, 2000, seqs + n, 64 - n), 0, "detached once");
	wal_close(w);
	/* Nothing removed yet (a crash right after the detach): the whole log is there. */
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 3000);
	replayed_free(&r);
	wal_close(w);
	for (int k = 1; k <= n; k++) {
		cr_assert_eq(wal_remove_segments(dir, seqs + k - 1, 1), 1);
		w = open_ok(&cfg, &r);
		cr_assert_gt(r.count, 0);
		uint64_t from = r.recs[0].index;
		cr_assert_leq(from, first);
		assert_replayed(&r, from, 3000);
		replayed_free(&r);
		wal_close(w);
	}
	w = open_ok(&cfg, &r);
	assert_replayed(&r, first, 3000);
	replayed_free(&r);
	cr_assert_eq(wal_remove_segments(dir, seqs, n), 0, "already gone: nothing removed, no error");
	/* Out of order (a middle segment gone, an older one left): a gap, refused. */
	n = wal_detach_prefix(w, 2900, seqs, 64);
	cr_assert_geq(n, 2);
	wal_close(w);
	cr_assert_eq(wal_remove_segments(dir, seqs + 1, 1), 1);
	struct wal *bad = NULL;
	cr_assert_eq(wal_open(&bad, &cfg, collect, &r), -EUCLEAN);
	replayed_free(&r);
	io_uring_queue_exit(&ring);
}

/* skip_upto: whole segments holding only records up to it are not read at open. */
Test(wal, segments_before_skip_upto_are_not_read)
{
	g_inflight = 1;
	char dir[1100];
	test_dir(dir, sizeof(dir), "skip");
	struct wal_config cfg;
	config_init(&cfg, dir, 64 << 10, 16 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	write_pipelined(w, &ring, 1, 3000, 64);
	wal_close(w);
	cfg.skip_upto = 2000;
	w = open_ok(&cfg, &r);
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_geq(st.recovery_skipped_segments, 3);
	cr_assert_gt(r.count, 0);
	uint64_t from = r.recs[0].index;
	cr_assert_gt(from, 1, "skipped segments are not replayed");
	cr_assert_leq(from, 2001, "everything after skip_upto is");
	assert_replayed(&r, from, 3000);
	replayed_free(&r);
	cr_assert_eq(wal_first_index(w), 1, "the skipped segments are still the log's");
	cr_assert_eq(wal_first_term(w), term_of(1), "read from a skipped segment's first record");
	cr_assert_eq(wal_last_index(w), 3000);
	/* appending and compacting go on as usual */
	write_pipelined(w, &ring, 3001, 3100, 50);
	uint64_t seqs[64];
	int n = wal_detach_prefix(w, 2000, seqs, 64);
	cr_assert_geq(n, (int)st.recovery_skipped_segments);
	cr_assert_eq(wal_remove_segments(dir, seqs, n), n);
	wal_close(w);
	/* skip_upto past the end: the last segment is read all the same */
	cfg.skip_upto = 1000000;
	w = open_ok(&cfg, &r);
	cr_assert_gt(r.count, 0);
	cr_assert_eq(r.recs[r.count - 1].index, 3100);
	replayed_free(&r);
	wal_close(w);
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
	/* 128 KiB: 19 batches fit one segment even 4 KiB-aligned. */
	config_init(cfg, dir, 128 << 10, 16 << 10);
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
	cr_assert_eq(*size, 128 << 10);
	cr_assert_eq(record_offsets(img, *size, offsets, 32), 20);
	if (g_inflight > 1)     /* every batch starts on a block */
		for (int i = 0; i < 19; i++)
			cr_assert_eq(offsets[i] % WAL_BLOCK_SIZE, 0, "record %d", i + 1);
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

TEST_K12(wal_recovery, torn_tail_every_offset)
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

TEST_K12(wal_recovery, zeroed_tail)
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

/* Writes records first.. (each its own batch, bfi = index, flags of inflight_max k)
 * packed from offset 0 into segment `seq` (64 KiB). */
static void write_segment_batches(const char *dir, uint64_t seq, uint64_t first,
				  uint32_t count, uint32_t k)
{
	char path[1200];
	segment_path(path, sizeof(path), dir, seq);
	uint8_t *seg = calloc(1, 64 << 10);
	size_t pos = 0;
	for (uint32_t j = 0; j < count; j++) {
		uint8_t data[512];
		uint64_t index = first + j;
		payload_fill(index, data, payload_size(index));
		pos += wal_record_encode_window(seg + pos, (64 << 10) - pos, term_of(index), index,
						index, data, payload_size(index), k);
	}
	file_write(path, seg, 64 << 10);
	free(seg);
}

/*
 * Batches are {1} .. {18}, {19, 20}. With inflight_max k, damage in batch r followed by
 * k later batches is corruption; followed by k-1 it is a torn tail. In the aligned
 * layout the damage is reported (and cut) at the end of the last intact record, which
 * is where the packed layout's damaged record starts.
 */
static void mid_log_corruption(void)
{
	uint32_t k = g_inflight;
	char dir[1100], path[1200], path2[1200];
	test_dir(dir, sizeof(dir), "midlog");
	struct wal_config cfg;
	size_t size;
	uint64_t off[33];
	uint8_t *img = build_torn_base(dir, &cfg, &size, off);
	segment_path(path, sizeof(path), dir, 1);
	segment_path(path2, sizeof(path2), dir, 2);
	uint8_t *copy = malloc(size);
	const char *seg1 = "log.00000000000000000001";

	/* Record 10 (its own batch) is damaged but batches 11..20 are intact. */
	for (size_t x = off[9]; x < record_end(off, 10); x += 7) {
		memcpy(copy, img, size);
		copy[x] ^= 0x01;
		file_write(path, copy, size);
		expect_open_error(&cfg, seg1, record_end(off, 9));
	}
	/* Record r damaged, k later batches intact after it. */
	uint64_t r = 19 - k;
	memcpy(copy, img, size);
	copy[off[r - 1] + 3] ^= 0x80;
	file_write(path, copy, size);
	expect_open_error(&cfg, seg1, record_end(off, r - 1));
	/* The damaged file was left untouched by the failed open. */
	size_t now_size;
	uint8_t *now = file_read(path, &now_size);
	cr_assert_eq(memcmp(now, copy, size), 0);
	free(now);
	/* Zeroed record r: k later batches follow a hole. */
	memcpy(copy, img, size);
	memset(copy + off[r - 1], 0, record_end(off, r) - off[r - 1]);
	file_write(path, copy, size);
	expect_open_error(&cfg, seg1, record_end(off, r - 1));
	/* One batch later (k-1 later batches intact): a torn tail, cut at the damage. */
	memcpy(copy, img, size);
	copy[off[r] + 5] ^= 0x10;
	file_write(path, copy, size);
	expect_log_then_append(&cfg, r, "torn with later batches", off[r]);
	memcpy(copy, img, size);
	memset(copy + off[r], 0, record_end(off, r + 1) - off[r]);
	file_write(path, copy, size);
	expect_log_then_append(&cfg, r, "lost with later batches", off[r]);

	/* Damage at the end of segment 1 while segment 2 holds k batches: corruption. */
	memcpy(copy, img, size);
	memset(copy + off[18], 0, size - off[18]);
	copy[off[18]] = 0x77;
	file_write(path, copy, size);
	write_segment_batches(dir, 2, 19, k, 1);
	expect_open_error(&cfg, seg1, record_end(off, 18));
	/* ... k-1 batches there (the new segment's first batches were in flight too): torn. */
	if (k > 1) {
		write_segment_batches(dir, 2, 19, k - 1, k);
		file_write(path, copy, size);
		expect_log_then_append(&cfg, 18, "torn across segments", off[18]);
	}

	/* An index gap at the start of segment 2 followed by k batches: corruption. */
	file_write(path, img, size);
	write_segment_batches(dir, 2, 22, k, 1);
	expect_open_error(&cfg, "log.00000000000000000002", 0);
	/* ... by k-1 batches: batch 21 was lost in flight, a torn tail. */
	if (k > 1) {
		write_segment_batches(dir, 2, 22, k - 1, 1);
		expect_log_then_append(&cfg, 20, "gap at segment start", 0);
	}
	unlink(path2);

	/* Restored: opens again. */
	file_write(path, img, size);
	struct replayed r2 = { 0 };
	struct wal *w = open_ok(&cfg, &r2);
	assert_replayed(&r2, 1, 20);
	wal_close(w);
	replayed_free(&r2);
	free(copy);
	free(img);
}

Test(wal_recovery, mid_log_corruption_k1) { g_inflight = 1; mid_log_corruption(); }
Test(wal_recovery, mid_log_corruption_k2) { g_inflight = 2; mid_log_corruption(); }
Test(wal_recovery, mid_log_corruption_k4) { g_inflight = 4; mid_log_corruption(); }

TEST_K12(wal, truncate_suffix)
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
	cr_assert_eq(wal_first_term(w), 0);
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

/* Linked write + fdatasync with the write's CQE skipped on success: one CQE a batch;
 * 0 is the fdatasync's success, an error or a byte count is the failed write's. */
Test(wal, linked_single_cqe)
{
	g_inflight = 1;
	char dir[1100];
	struct wal_config cfg;
	fresh_config(&cfg, dir, sizeof(dir), "linked_single", 64 << 10, 16 << 10,
		     WAL_SYNC_WRITE_LINKED_FDATASYNC);
	struct replayed r = { 0 };
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	if (!(ring.features & IORING_FEAT_CQE_SKIP)) {
		io_uring_queue_exit(&ring);
		cr_skip_test("kernel without IORING_FEAT_CQE_SKIP");
	}
	struct wal *w = open_ok(&cfg, &r);
	cr_assert_eq(wal_cqes_per_batch(w, &ring), 1);
	uint64_t durable = 0;
	struct io_uring_cqe *cqe;
	for (uint64_t i = 1; i <= 3; i++) {     /* real completions: exactly one each */
		cr_assert_eq(stage_one(w, i), 0);
		cr_assert_eq(wal_submit(w, &ring, 7), 0);
		cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
		cr_assert_eq(cqe->res, 0);
		cr_assert_eq(wal_complete(w, cqe, &durable), 1);
		io_uring_cqe_seen(&ring, cqe);
		cr_assert_eq(durable, i);
		cr_assert_eq(io_uring_peek_cqe(&ring, &cqe), -EAGAIN, "a second CQE for batch %" PRIu64, i);
	}
	int32_t failures[] = { 512, -EIO };
	for (unsigned k = 0; k < 2; k++) {
		wal_close(w);
		replayed_free(&r);
		memset(&r, 0, sizeof r);
		w = open_ok(&cfg, &r);
		cr_assert_eq(stage_one(w, 4 + k), 0);
		cr_assert_eq(wal_submit(w, &ring, 7), 0);
		cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
		struct io_uring_cqe fake = *cqe;
		io_uring_cqe_seen(&ring, cqe);
		fake.res = failures[k];         /* the short or failed write's own CQE */
		durable = 99;
		cr_assert_eq(wal_complete(w, &fake, &durable), -EIO);
		cr_assert_eq(durable, 99);
		cr_assert_not(wal_in_flight(w));
		cr_assert_eq(wal_durable_index(w), 3 + k);
	}
	wal_close(w);
	replayed_free(&r);
	io_uring_queue_exit(&ring);
}

TEST_K12(wal, write_error_is_sticky)
{
	uint64_t ud = g_inflight == 1 ? 5 : 8;  /* any value with inflight_max 1 */
	char dir[1100];
	struct wal_config cfg;
	fresh_config(&cfg, dir, sizeof(dir), "write_error", 64 << 10, 16 << 10, WAL_SYNC_WRITE_DSYNC);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	cr_assert_eq(stage_one(w, 1), 0);
	cr_assert_eq(wal_submit(w, &ring, ud), 0);
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
	cr_assert_eq(wal_submit(w, &ring, ud), -EIO);
	cr_assert_eq(wal_flush_sync(w), -EIO);
	wal_close(w);

	/* A short write is an error too. */
	w = open_ok(&cfg, &r);
	cr_assert_eq(stage_one(w, 2), 0);
	cr_assert_eq(wal_submit(w, &ring, ud), 0);
	cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
	fake = *cqe;
	io_uring_cqe_seen(&ring, cqe);
	fake.res = 512;
	cr_assert_eq(wal_complete(w, &fake, &durable), -EIO);
	wal_close(w);
	io_uring_queue_exit(&ring);
	replayed_free(&r);
}

/*
 * The descriptor of the segment file `path` in this process, found through
 * /proc/self/fd (the log keeps it private); -1 if none.
 */
static int fd_of_path(const char *path)
{
	for (int fd = 0; fd < 1024; fd++) {
		char link[64], target[1200];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0)
			return fd;
	}
	return -1;
}

/*
 * raft.logSyncMethod=syscall, failures injected at the syscalls themselves: the
 * segment's descriptor is replaced (dup2) by one on which pwrite(2) fails (EBADF:
 * opened read-only) or on which pwrite succeeds and fdatasync(2) fails (EINVAL:
 * /dev/null). Either error is returned by wal_submit, nothing later is made durable,
 * the error sticks, and reopening finds exactly the records made durable before.
 */
static void syscall_failure(const char *name, int (*open_bad)(const char *segment), int expect_err)
{
	char dir[1100];
	struct wal_config cfg;
	g_inflight = 1;
	fresh_config(&cfg, dir, sizeof(dir), name, 64 << 10, 16 << 10, WAL_SYNC_SYSCALL);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	cr_assert_eq(stage_one(w, 1), 0);
	cr_assert_eq(wal_submit(w, &ring, 0), 1);
	cr_assert_eq(wal_durable_index(w), 1);

	char seg[1200];
	segment_path(seg, sizeof(seg), dir, 1);
	int seg_fd = fd_of_path(seg);
	cr_assert_geq(seg_fd, 0, "no descriptor of %s", seg);
	int bad = open_bad(seg);
	cr_assert_geq(bad, 0);
	cr_assert_eq(dup2(bad, seg_fd), seg_fd);
	close(bad);

	cr_assert_eq(stage_one(w, 2), 0);
	cr_assert_eq(wal_submit(w, &ring, 0), expect_err);
	cr_assert_eq(wal_durable_index(w), 1);
	cr_assert_not(wal_in_flight(w));
	cr_assert_eq(stage_one(w, 3), expect_err);     /* sticky */
	cr_assert_eq(wal_flush_sync(w), expect_err);
	wal_close(w);
	io_uring_queue_exit(&ring);

	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 1);
	cr_assert_eq(wal_last_index(w), 1);
	wal_close(w);
	replayed_free(&r);
}

static int open_read_only(const char *segment) { return open(segment, O_RDONLY); }
static int open_dev_null(const char *segment) { (void)segment; return open("/dev/null", O_WRONLY); }

Test(wal, syscall_pwrite_error_is_sticky)
{
	syscall_failure("syscall_pwrite_error", open_read_only, -EBADF);
}

Test(wal, syscall_fdatasync_error_is_sticky)
{
	syscall_failure("syscall_fdatasync_error", open_dev_null, -EINVAL);
}

TEST_K12(wal, enospc_then_resume)
{
	char dir[1200], mnt[1100];
	char stale[64];
	snprintf(stale, sizeof(stale), "wal-test/enospc-mnt-k%u", g_inflight);
	umount2(stale, MNT_DETACH);     /* left over by a failed run */
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

/* ------------------------------------------------------------------ pipeline */

struct cqe_copy {
	uint64_t user_data;
	int32_t res;
};

/* Waits for `count` CQEs of the ring and copies them (consumed). */
static void reap_all(struct io_uring *ring, struct cqe_copy *out, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		struct io_uring_cqe *cqe;
		cr_assert_eq(io_uring_wait_cqe(ring, &cqe), 0);
		out[i].user_data = cqe->user_data;
		out[i].res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
}

/* Feeds every copied CQE of the batch tagged `tag` (the write first); returns the last
 * wal_complete() result. */
static int feed_batch(struct wal *w, const struct cqe_copy *c, unsigned count, uint64_t tag,
		      uint64_t *durable)
{
	int rc = -1000;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < count; i++) {
			if (c[i].user_data != (UD_BASE | tag))
				continue;
			if ((pass == 0) != (c[i].res != 0))
				continue;       /* write (res = bytes) before the fdatasync (0) */
			struct io_uring_cqe fake = { .user_data = c[i].user_data, .res = c[i].res };
			int prev = rc;
			rc = wal_complete(w, &fake, durable);
			if (prev != -1000 && prev >= 0)
				cr_assert_eq(prev, 0, "a non-final CQE of a batch reported %d", prev);
		}
	}
	cr_assert_neq(rc, -1000, "no CQE tagged %" PRIu64, tag);
	return rc;
}

static void stage_range(struct wal *w, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i <= last; i++)
		cr_assert_eq(stage_one(w, i), 0);
}

/* skip_cqe false: the ring is told it lacks CQE_SKIP_SUCCESS, so a linked batch posts
 * two CQEs (the path kernels before 5.17 take). */
static void out_of_order(const char *name, enum wal_sync_mode mode, bool skip_cqe)
{
	g_inflight = 3;
	char dir[1100];
	struct wal_config cfg;
	fresh_config(&cfg, dir, sizeof(dir), name, 1 << 20, 64 << 10, mode);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	cr_assert(wal_direct_io(w));
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(32, &ring, 0), 0);
	if (!skip_cqe)
		ring.features &= ~IORING_FEAT_CQE_SKIP;
	unsigned per = wal_cqes_per_batch(w, &ring);
	bool kernel_skips = (ring.features & IORING_FEAT_CQE_SKIP) != 0;
	cr_assert_eq(per, mode == WAL_SYNC_WRITE_LINKED_FDATASYNC && !kernel_skips ? 2u : 1u);

	/* Three batches in flight at once: {1,2} {3,4,5} {6}, tags 0 1 2. */
	cr_assert_not(wal_can_submit(w));
	stage_range(w, 1, 2);
	cr_assert(wal_can_submit(w));
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	stage_range(w, 3, 5);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	stage_range(w, 6, 6);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	cr_assert_eq(wal_in_flight_count(w), 3);
	stage_range(w, 7, 7);                   /* staging goes on ... */
	cr_assert_not(wal_can_submit(w));       /* ... but the window is full */
	struct cqe_copy c[16];
	reap_all(&ring, c, 3 * per);
	for (unsigned i = 0; i < 3 * per; i++) {
		cr_assert(wal_user_data_match(UD_BASE, c[i].user_data));
		cr_assert_lt(c[i].user_data & WAL_USER_DATA_TAG_MASK, 3);
		cr_assert_geq(c[i].res, 0);
	}
	uint64_t durable = 0;
	/* Reverse order: the later batches are held until the first one is durable. */
	cr_assert_eq(feed_batch(w, c, 3 * per, 2, &durable), 0);
	cr_assert_eq(wal_durable_index(w), 0);
	cr_assert_eq(feed_batch(w, c, 3 * per, 1, &durable), 0);
	cr_assert_eq(wal_durable_index(w), 0);
	cr_assert_eq(wal_in_flight_count(w), 3);
	cr_assert_eq(feed_batch(w, c, 3 * per, 0, &durable), 1);
	cr_assert_eq(durable, 6);
	cr_assert_eq(wal_durable_index(w), 6);
	cr_assert_not(wal_in_flight(w));

	/* Middle first: {7} {8,9} {10}, tags 3 4 5. */
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	stage_range(w, 8, 9);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	stage_range(w, 10, 10);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	reap_all(&ring, c, 3 * per);
	cr_assert_eq(feed_batch(w, c, 3 * per, 4, &durable), 0);
	cr_assert_eq(wal_durable_index(w), 6);
	cr_assert_eq(feed_batch(w, c, 3 * per, 3, &durable), 1);
	cr_assert_eq(durable, 9, "both the first and the held batch are reported");
	cr_assert_eq(feed_batch(w, c, 3 * per, 5, &durable), 1);
	cr_assert_eq(durable, 10);

	/* Tags wrap modulo WAL_INFLIGHT_CAP: tags 6 7 0 1 ... stay distinct in flight. */
	uint64_t next = 11;
	for (int round = 0; round < 4; round++) {
		uint64_t tags[3];
		for (int b = 0; b < 3; b++) {
			stage_range(w, next, next);
			next++;
			cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
		}
		reap_all(&ring, c, 3 * per);
		for (int b = 0; b < 3; b++)
			tags[b] = (6 + (uint64_t)round * 3 + (uint64_t)b) % WAL_INFLIGHT_CAP;
		cr_assert_eq(feed_batch(w, c, 3 * per, tags[2], &durable), 0);
		cr_assert_eq(feed_batch(w, c, 3 * per, tags[0], &durable), 1);
		cr_assert_eq(durable, next - 3);
		cr_assert_eq(feed_batch(w, c, 3 * per, tags[1], &durable), 1);
		cr_assert_eq(durable, next - 1);
	}
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_eq(st.inflight_peak, 3);
	cr_assert_eq(st.inflight_max, 3);
	cr_assert_eq(st.held_count, 2 + 1 + 4);
	cr_assert_eq(st.write_bytes, st.batch_count * WAL_BLOCK_SIZE);
	cr_assert_eq(st.write_bytes, st.record_bytes + st.pad_bytes);
	wal_close(w);
	io_uring_queue_exit(&ring);

	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, next - 1);
	wal_close(w);
	replayed_free(&r);
}

Test(wal_pipeline, out_of_order_linked)
{
	out_of_order("ooo_linked", WAL_SYNC_WRITE_LINKED_FDATASYNC, true);
}
Test(wal_pipeline, out_of_order_linked_two_cqes)
{
	out_of_order("ooo_linked2", WAL_SYNC_WRITE_LINKED_FDATASYNC, false);
}
Test(wal_pipeline, out_of_order_dsync) { out_of_order("ooo_dsync", WAL_SYNC_WRITE_DSYNC, true); }

Test(wal_pipeline, error_in_later_batch_is_sticky)
{
	g_inflight = 2;
	char dir[1100];
	struct wal_config cfg;
	fresh_config(&cfg, dir, sizeof(dir), "pipe_error", 1 << 20, 64 << 10,
		     WAL_SYNC_WRITE_LINKED_FDATASYNC);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(16, &ring, 0), 0);
	stage_range(w, 1, 1);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	stage_range(w, 2, 3);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
	struct cqe_copy c[4];
	unsigned n = 2 * wal_cqes_per_batch(w, &ring);
	reap_all(&ring, c, n);
	for (unsigned i = 0; i < n; i++)        /* the second batch's fdatasync failed */
		if (c[i].user_data == (UD_BASE | 1) && c[i].res == 0)
			c[i].res = -EIO;
	uint64_t durable = 0;
	cr_assert_eq(feed_batch(w, c, n, 1, &durable), -EIO);
	cr_assert_eq(feed_batch(w, c, n, 0, &durable), -EIO);  /* sticky */
	cr_assert_eq(wal_durable_index(w), 0);
	cr_assert_not(wal_in_flight(w));
	cr_assert_eq(stage_one(w, 4), -EIO);
	cr_assert_eq(wal_submit(w, &ring, UD_BASE), -EIO);
	wal_close(w);
	io_uring_queue_exit(&ring);
	replayed_free(&r);
}

Test(wal_pipeline, user_data_scheme)
{
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(16, &ring, 0), 0);
	for (uint32_t k = 1; k <= 2; k++) {
		g_inflight = k;
		char dir[1100];
		test_dir(dir, sizeof(dir), "user_data");
		struct wal_config cfg;
		config_init(&cfg, dir, 1 << 20, 64 << 10);
		cfg.sync_mode = WAL_SYNC_WRITE_DSYNC;
		struct replayed r = { 0 };
		struct wal *w = open_ok(&cfg, &r);
		cr_assert_eq(wal_inflight_max(w), k);
		stage_range(w, 1, 1);
		struct io_uring_cqe *cqe;
		uint64_t durable = 0;
		if (k == 1) {
			/* Passed unchanged, any value. */
			cr_assert_eq(wal_submit(w, &ring, 0xab3), 0);
			cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
			cr_assert_eq(cqe->user_data, 0xab3);
		} else {
			/* Low tag bits must be free: refused, not sticky. */
			cr_assert_eq(wal_submit(w, &ring, 0xab3), -EINVAL);
			cr_assert_not(wal_in_flight(w));
			cr_assert_eq(wal_submit(w, &ring, UD_BASE), 0);
			cr_assert_eq(io_uring_wait_cqe(&ring, &cqe), 0);
			cr_assert_eq(cqe->user_data, UD_BASE | 0);
		}
		cr_assert_eq(wal_complete(w, cqe, &durable), 1);
		io_uring_cqe_seen(&ring, cqe);
		cr_assert_eq(durable, 1);
		wal_close(w);
		replayed_free(&r);
	}
	cr_assert(wal_user_data_match(0x100, 0x107));
	cr_assert_not(wal_user_data_match(0x100, 0x108));
	io_uring_queue_exit(&ring);
}

/* Padding between batches is zeros, accounted, and skipped; layouts mix across opens. */
Test(wal_pipeline, padding_and_mixed_layouts)
{
	g_inflight = 2;
	char dir[1100], path[1200];
	test_dir(dir, sizeof(dir), "padding");
	struct wal_config cfg;
	config_init(&cfg, dir, 1 << 20, 64 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(16, &ring, 0), 0);
	write_pipelined(w, &ring, 1, 30, 3);
	struct wal_stats st;
	wal_stats_get(w, &st);
	cr_assert_eq(st.batch_count, 10);
	cr_assert_gt(st.pad_bytes, 0);
	cr_assert_eq(st.write_bytes, st.record_bytes + st.pad_bytes);
	cr_assert_eq(st.write_bytes, 10 * WAL_BLOCK_SIZE);
	wal_close(w);

	segment_path(path, sizeof(path), dir, 1);
	size_t size;
	uint8_t *img = file_read(path, &size);
	uint64_t off[64];
	cr_assert_eq(record_offsets(img, size, off, 63), 30);
	for (int b = 0; b < 10; b++) {
		cr_assert_eq(off[b * 3], (uint64_t)b * WAL_BLOCK_SIZE, "batch %d", b);
		uint64_t end = record_end(off, (uint64_t)b * 3 + 3);
		for (uint64_t x = end; x < (uint64_t)(b + 1) * WAL_BLOCK_SIZE; x++)
			cr_assert_eq(img[x], 0);
		struct wal_record_view v;
		cr_assert_gt(wal_record_decode(img + off[b * 3], size - off[b * 3], &v), 0);
		cr_assert_eq(v.inflight_max, 2);
		cr_assert_eq(v.batch_first_index, (uint64_t)b * 3 + 1);
	}
	free(img);

	/* inflight 1 continues packed after the padded tail; 4 pads again. */
	g_inflight = 1;
	config_init(&cfg, dir, 1 << 20, 64 << 10);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 30);
	replayed_free(&r);
	write_pipelined(w, &ring, 31, 50, 4);
	wal_stats_get(w, &st);
	cr_assert_leq(st.pad_bytes + st.record_bytes, st.write_bytes);  /* + tail rewrites */
	wal_close(w);
	g_inflight = 4;
	config_init(&cfg, dir, 1 << 20, 64 << 10);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 50);
	replayed_free(&r);
	write_pipelined(w, &ring, 51, 80, 5);
	wal_close(w);
	g_inflight = 1;
	config_init(&cfg, dir, 1 << 20, 64 << 10);
	w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 80);
	wal_close(w);
	replayed_free(&r);
	io_uring_queue_exit(&ring);
}

/*
 * Written with inflight 2, crashed with batch 18 torn and batch {19,20} intact, reopened
 * with inflight 1: the records' flags say two batches were in flight, so it is a torn
 * tail, not corruption.
 */
Test(wal_pipeline, recorded_window_beats_smaller_config)
{
	g_inflight = 2;
	char dir[1100], path[1200];
	test_dir(dir, sizeof(dir), "window");
	struct wal_config cfg;
	size_t size;
	uint64_t off[33];
	uint8_t *img = build_torn_base(dir, &cfg, &size, off);
	segment_path(path, sizeof(path), dir, 1);
	img[off[17] + 2] ^= 0x04;
	file_write(path, img, size);
	cfg.inflight_max = 1;
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	assert_replayed(&r, 1, 17);
	wal_close(w);
	replayed_free(&r);
	/* The torn tail was zeroed: the old batch {19,20} is gone from the file. */
	size_t now_size;
	uint8_t *now = file_read(path, &now_size);
	for (size_t x = record_end(off, 17); x < now_size; x++)
		cr_assert_eq(now[x], 0, "byte %zu", x);
	free(now);
	free(img);
}

/* Batches ending 0..5 bytes before a block boundary: padding shorter than a magic. */
Test(wal_pipeline, short_padding)
{
	g_inflight = 2;
	char dir[1100];
	test_dir(dir, sizeof(dir), "short_pad");
	struct wal_config cfg;
	config_init(&cfg, dir, 1 << 20, 64 << 10);
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	static uint8_t data[8192];
	uint64_t index = 1;
	for (uint32_t d = 0; d <= 5; d++) {
		memset(data, (int)(0x40 + d), sizeof(data));
		cr_assert_eq(wal_stage(w, 1, index++, data, 4096 - WAL_RECORD_HEADER_SIZE - d), 0);
		cr_assert_eq(wal_flush_sync(w), 0);
	}
	cr_assert_eq(wal_stage(w, 1, index++, data, 10), 0);
	cr_assert_eq(wal_flush_sync(w), 0);
	wal_close(w);
	for (int round = 0; round < 2; round++) {
		w = open_ok(&cfg, &r);
		cr_assert_eq(r.count, index - 1);
		for (size_t i = 0; i < r.count; i++)
			cr_assert_eq(r.recs[i].index, i + 1);
		cr_assert_eq(r.recs[3].size, 4096 - WAL_RECORD_HEADER_SIZE - 3);
		replayed_free(&r);
		/* A tail batch ending 1 byte before a boundary, then more after reopen. */
		cr_assert_eq(wal_stage(w, 1, index++, data, 4096 - WAL_RECORD_HEADER_SIZE - 1), 0);
		cr_assert_eq(wal_flush_sync(w), 0);
		wal_close(w);
	}
	w = open_ok(&cfg, &r);
	cr_assert_eq(r.count, index - 1);
	cr_assert_eq(wal_truncate_suffix(w, 5), 0);     /* walks the padded tail segment */
	cr_assert_eq(wal_last_index(w), 5);
	wal_close(w);
	replayed_free(&r);
	w = open_ok(&cfg, &r);
	cr_assert_eq(r.count, 5);
	wal_close(w);
	replayed_free(&r);
}

/*
 * wal_stage_room tells exactly what the staging batch still takes: staging that many
 * records (of the announced sizes) succeeds and one more gets -EAGAIN; on an empty
 * batch at the end of a segment it rolls to a new one first.
 */
Test(wal, stage_room_is_exact)
{
	g_inflight = 1;
	char dir[1200];
	struct wal_config cfg;
	fresh_config(&cfg, dir, sizeof dir, "stage-room", 1 << 20, 64 * 1024, WAL_SYNC_SYSCALL);
	cfg.batch_entries_max = 100;
	struct replayed r = { 0 };
	struct wal *w = open_ok(&cfg, &r);
	uint32_t entries_left;
	uint64_t bytes_left;
	uint8_t data[1000];
	memset(data, 7, sizeof data);
	uint64_t index = 1;
	for (int round = 0; round < 40; round++) { /* ~40 batches of 64 KiB: segments roll */
		cr_assert_eq(wal_stage_room(w, sizeof data, &entries_left, &bytes_left), 0);
		cr_assert_gt(entries_left, 0);
		cr_assert_geq(bytes_left, WAL_RECORD_HEADER_SIZE + sizeof data, "round %d: %llu", round,
			      (unsigned long long)bytes_left);
		uint32_t n = 0;
		while (n < entries_left && bytes_left >= WAL_RECORD_HEADER_SIZE + sizeof data) {
			cr_assert_eq(wal_stage(w, 1, index++, data, sizeof data), 0, "round %d record %u", round, n);
			bytes_left -= WAL_RECORD_HEADER_SIZE + sizeof data;
			n++;
		}
		cr_assert_eq(wal_stage(w, 1, index, data, sizeof data), -EAGAIN, "round %d: one more fits", round);
		cr_assert_eq(wal_submit(w, NULL, UD_BASE), 1);
	}
	struct wal_stats ws;
	wal_stats_get(w, &ws);
	cr_assert_gt(ws.segment_count, 1);
	wal_close(w);
	replayed_free(&r);
}
