/*
 * wal_bench.c — `wal-bench [dir]`: how fast can this disk make the log durable?
 *
 * Part 1 (raw probe) appends 4 KiB blocks with O_DIRECT into a preallocated, zeroed
 * file and measures one write + durability step, three ways:
 *   linked   io_uring write SQE (IOSQE_IO_LINK) + fdatasync SQE
 *   dsync    one io_uring write SQE with RWF_DSYNC
 *   syscall  pwrite(2) + fdatasync(2)
 * Part 2 drives the real wal (wal_stage / wal_submit / wal_complete, pipelined: the next
 * batch is staged while up to `inflight` batches are on the disk; the syscall mode
 * writes one batch at a time on this thread) with 128-byte entries and reports
 * entries/s and commit latency per batch size, sync mode and inflight_max.
 * Two producers: "open" always has entries ready (batches are full); "closed C" is C
 * closed-loop clients with one entry outstanding each (an entry becomes ready again when
 * the previous one of its client is durable), like ZooKeeper clients doing creates.
 *
 * `wal-bench [dir] [pipeline]`: with "pipeline" only the inflight sweep runs.
 * The directory defaults to ./wal-bench-data (the build dir: keep it off tmpfs).
 * It is not a test; numbers are recorded in the wal.c header and the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "raft/wal.h"

#define BENCH_PROBE_FILE_BYTES (16u << 20)
#define BENCH_PROBE_ITERATIONS 400u
#define BENCH_ENTRY_BYTES 128u
#define BENCH_RUN_NS 1500000000ull
#define BENCH_USER_DATA 0x100u      /* low WAL_USER_DATA_TAG_BITS zero */

enum bench_probe_mode {
	BENCH_PROBE_LINKED,
	BENCH_PROBE_DSYNC,
	BENCH_PROBE_SYSCALL,
};

static uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bench_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int bench_probe_once(enum bench_probe_mode mode, struct io_uring *ring, int fd,
			    void *block, uint64_t offset)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int expect = 1;
	switch (mode) {
	case BENCH_PROBE_SYSCALL:
		if (pwrite(fd, block, 4096, (off_t)offset) != 4096)
			return -EIO;
		return fdatasync(fd) ? -errno : 0;
	case BENCH_PROBE_LINKED:
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_write(sqe, fd, block, 4096, offset);
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		expect = 2;
		break;
	case BENCH_PROBE_DSYNC:
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_write(sqe, fd, block, 4096, offset);
		sqe->rw_flags = RWF_DSYNC;
		break;
	}
	io_uring_submit(ring);
	int rc = 0;
	for (int k = 0; k < expect; k++) {
		if (io_uring_wait_cqe(ring, &cqe))
			return -EIO;
		if (cqe->res < 0 && rc == 0)
			rc = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
	return rc;
}

/*
 * One 4 KiB O_DIRECT write + durability, BENCH_PROBE_ITERATIONS times per method.
 * syscall_only: just pwrite + fdatasync, one round, one machine-readable line (what
 * bench/compare.sh prints as "one fdatasync on this disk").
 */
static int bench_probe(const char *dir, bool syscall_only)
{
	static const char *names[] = { "linked write+fdatasync", "write RWF_DSYNC",
				       "pwrite+fdatasync syscalls" };
	char path[4200];
	snprintf(path, sizeof(path), "%s/probe.dat", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0) {
		perror("wal-bench: open O_DIRECT");
		return -1;
	}
	void *block;
	if (posix_memalign(&block, 4096, 1 << 20))
		return -1;
	memset(block, 0, 1 << 20);
	if (fallocate(fd, 0, 0, BENCH_PROBE_FILE_BYTES))
		perror("wal-bench: fallocate");
	for (uint64_t off = 0; off < BENCH_PROBE_FILE_BYTES; off += 1 << 20)
		if (pwrite(fd, block, 1 << 20, (off_t)off) != 1 << 20)
			perror("wal-bench: zero fill");
	fdatasync(fd);
	memset(block, 0x5a, 4096);
	struct io_uring ring;
	if (io_uring_queue_init(8, &ring, 0))
		return -1;
	static uint64_t samples[BENCH_PROBE_ITERATIONS];
	if (!syscall_only)
		printf("raw 4 KiB O_DIRECT append + durability, %u iterations each\n",
		       BENCH_PROBE_ITERATIONS);
	/* Two rounds, alternating A B C A B C, so drift shows. */
	for (int round = 0; round < (syscall_only ? 1 : 2); round++) {
		for (int m = syscall_only ? BENCH_PROBE_SYSCALL : 0; m < 3; m++) {
			uint64_t total = 0;
			for (uint32_t i = 0; i < BENCH_PROBE_ITERATIONS; i++) {
				uint64_t off = ((uint64_t)i * 4096) % BENCH_PROBE_FILE_BYTES;
				uint64_t t0 = bench_now_ns();
				int rc = bench_probe_once((enum bench_probe_mode)m, &ring, fd, block,
							  off);
				samples[i] = bench_now_ns() - t0;
				total += samples[i];
				if (rc) {
					fprintf(stderr, "wal-bench: %s: %s\n", names[m], strerror(-rc));
					return -1;
				}
			}
			qsort(samples, BENCH_PROBE_ITERATIONS, sizeof(samples[0]), bench_u64_cmp);
			if (syscall_only) {
				printf("fdatasync_probe p50_us=%.1f p99_us=%.1f mean_us=%.1f n=%u\n",
				       samples[BENCH_PROBE_ITERATIONS / 2] / 1e3,
				       samples[BENCH_PROBE_ITERATIONS * 99 / 100] / 1e3,
				       (double)total / BENCH_PROBE_ITERATIONS / 1e3, BENCH_PROBE_ITERATIONS);
				continue;
			}
			printf("  round %d  %-28s p50 %7.1f us  p99 %7.1f us  mean %7.1f us\n", round,
			       names[m], samples[BENCH_PROBE_ITERATIONS / 2] / 1e3,
			       samples[BENCH_PROBE_ITERATIONS * 99 / 100] / 1e3,
			       (double)total / BENCH_PROBE_ITERATIONS / 1e3);
		}
	}
	io_uring_queue_exit(&ring);
	close(fd);
	unlink(path);
	free(block);
	return 0;
}

/* clients == 0: open loop (always an entry ready); else that many closed-loop clients. */
static int bench_group_commit(const char *dir, enum wal_sync_mode mode, const char *mode_name,
			      uint32_t per_batch, uint32_t inflight, uint32_t clients)
{
	char path[4200], cmd[4300];
	snprintf(path, sizeof(path), "%s/wal-%s-%u-%u-%u", dir, mode_name, per_batch, inflight,
		 clients);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", path);
	if (system(cmd) != 0)
		return -1;
	struct wal_config cfg = {
		.dir = path,
		.segment_size_bytes = 64ull << 20,
		.batch_bytes_max = 1u << 20,
		.batch_entries_max = per_batch,
		.sync_mode = mode,
		.inflight_max = inflight,
	};
	struct wal *w;
	int rc = wal_open(&w, &cfg, NULL, NULL);
	if (rc) {
		fprintf(stderr, "wal-bench: wal_open: %s\n", strerror(-rc));
		return rc;
	}
	struct io_uring ring;
	if (io_uring_queue_init(64, &ring, 0))
		return -1;
	uint8_t entry[BENCH_ENTRY_BYTES];
	memset(entry, 0xab, sizeof(entry));
	uint64_t index = 1;
	uint64_t ready = clients;       /* closed loop: clients with an entry to send */
	uint64_t t0 = bench_now_ns(), t_end = t0 + BENCH_RUN_NS;
	uint64_t durable = 0;
	for (;;) {
		bool running = bench_now_ns() < t_end;
		while (running && wal_staged_count(w) < per_batch && (clients == 0 || ready > 0)) {
			rc = wal_stage(w, 1, index, entry, sizeof(entry));
			if (rc == -EAGAIN)
				break;
			if (rc) {
				fprintf(stderr, "wal-bench: stage: %s\n", strerror(-rc));
				return rc;
			}
			index++;
			if (clients)
				ready--;
		}
		if (wal_can_submit(w)) {
			uint64_t before = durable;
			rc = wal_submit(w, &ring, BENCH_USER_DATA);
			if (rc < 0)
				return rc;
			if (rc == 1) {  /* syscall mode: durable on return */
				durable = wal_durable_index(w);
				if (clients)
					ready += durable - before;
			}
			continue;
		}
		if (!wal_in_flight(w))
			break;
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&ring, &cqe))
			return -1;
		uint64_t before = durable;
		rc = wal_complete(w, cqe, &durable);
		io_uring_cqe_seen(&ring, cqe);
		if (rc < 0) {
			fprintf(stderr, "wal-bench: complete: %s\n", strerror(-rc));
			return rc;
		}
		if (rc == 1 && clients)
			ready += durable - before;      /* those clients send their next entry */
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	struct wal_stats st;
	wal_stats_get(w, &st);
	char producer[32];
	if (clients)
		snprintf(producer, sizeof(producer), "closed %u", clients);
	else
		snprintf(producer, sizeof(producer), "open");
	printf("  %-6s %-9s batch<=%5u inflight %u  %9.0f entries/s  %7.0f batches/s  "
	       "%6.1f MB/s  commit p50 %7.1f us  p99 %7.1f us  (avg %.1f entries/batch, "
	       "peak %u in flight, %" PRIu64 " held)\n",
	       mode_name, producer, per_batch, inflight, (double)durable / secs,
	       (double)st.batch_count / secs, (double)st.write_bytes / secs / 1e6,
	       st.commit_latency_p50_ns / 1e3, st.commit_latency_p99_ns / 1e3,
	       st.batch_count ? (double)st.entry_count / (double)st.batch_count : 0.0,
	       st.inflight_peak, st.held_count);
	wal_close(w);
	io_uring_queue_exit(&ring);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static int bench_inflight_sweep(const char *dir)
{
	static const uint32_t batches[] = { 16, 128 };
	static const uint32_t inflights[] = { 1, 2, 4 };
	static const uint32_t client_counts[] = { 0, 64 };
	printf("pipelined group commit by inflight_max (%u-byte entries, linked "
	       "write+fdatasync, %.1f s each)\n", BENCH_ENTRY_BYTES, BENCH_RUN_NS / 1e9);
	for (size_t c = 0; c < sizeof(client_counts) / sizeof(client_counts[0]); c++)
		for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++)
			for (size_t i = 0; i < sizeof(inflights) / sizeof(inflights[0]); i++)
				if (bench_group_commit(dir, WAL_SYNC_WRITE_LINKED_FDATASYNC, "linked",
						       batches[b], inflights[i], client_counts[c]))
					return -1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 3 || (argc > 1 && argv[1][0] == '-') ||
	    (argc > 2 && strcmp(argv[2], "pipeline") && strcmp(argv[2], "probe"))) {
		fprintf(stderr, "usage: wal-bench [DIR [pipeline|probe]]\n"
			"  measures log appends + durability in DIR (default ./wal-bench-data);\n"
			"  'pipeline' runs only the inflight_max sweep, 'probe' only one\n"
			"  pwrite + fdatasync probe (one line)\n");
		return 2;
	}
	const char *dir = argc > 1 ? argv[1] : "./wal-bench-data";
	const char *only = argc > 2 ? argv[2] : "";
	mkdir(dir, 0755);
	if (strcmp(only, "pipeline") == 0)
		return bench_inflight_sweep(dir) ? 1 : 0;
	if (strcmp(only, "probe") == 0)
		return bench_probe(dir, true) ? 1 : 0;
	if (bench_probe(dir, false))
		return 1;
	static const uint32_t batches[] = { 1, 16, 128, 1024 };
	printf("group commit through wal_* (%u-byte entries, pipelined, inflight 1, %.1f s "
	       "each)\n", BENCH_ENTRY_BYTES, BENCH_RUN_NS / 1e9);
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		if (bench_group_commit(dir, WAL_SYNC_WRITE_LINKED_FDATASYNC, "linked", batches[b],
				       1, 0))
			return 1;
		if (bench_group_commit(dir, WAL_SYNC_WRITE_DSYNC, "dsync", batches[b], 1, 0))
			return 1;
		if (bench_group_commit(dir, WAL_SYNC_SYSCALL, "syscall", batches[b], 1, 0))
			return 1;
	}
	return bench_inflight_sweep(dir) ? 1 : 0;
}
