/*
 * snap_bench.c — microbenchmark of snapshots on a store of N znodes (not a test):
 *
 *   snap-bench [--nodes N] [--value-size B] [--dir D] [--writes-during] [--load-only] [--threads T]
 *
 * Builds N persistent znodes under /b (B-byte values, as ringkeeper-bench --preset
 * create does) through store_apply, then measures:
 *   - RSS per znode, and where the tree's bytes go (store_memory_get);
 *   - getData and setData (same size) of random nodes, one thread, no snapshot: the
 *     store's own read and write costs in CPU time (the build's too), for A/B runs
 *     of the store's layout;
 *   - the applier's pause to begin an image (store_snap_begin), and, for comparison,
 *     what fork() of this process costs (the other way to take a consistent image);
 *   - writing the file (snap_write): time, walk time, size, longest shard lock hold;
 *     with --writes-during, the applier keeps applying setData to random nodes while
 *     the file is written, and the longest single apply is reported (the pause a
 *     client would see);
 *   - loading it into a fresh store: check pass, load pass.
 * --load-only loads the snapshot a previous run left in D (for profiling the load);
 * --threads: the load's threads (default 1).
 * Prints one line per figure. Timings on a shared machine drift: run it alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/jute.h"
#include "core/zk_proto.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "store/store_snap.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* This thread's CPU time: the store's own costs, less the shared machine's noise. */
static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

struct bench {
	struct store *s;
	int64_t zxid;
	struct jute_writer body, out;
};

static int32_t apply(struct bench *b, int32_t op)
{
	struct store_txn txn = { .zxid = ++b->zxid, .time_ms = 1700000000000LL + b->zxid, .session_id = 1,
				 .opcode = op, .body = b->body.buf, .body_len = b->body.len };
	jute_writer_reset(&b->out);
	return store_apply(b->s, &txn, &b->out, NULL, NULL);
}

static void create(struct bench *b, const char *path, const char *data, int32_t len)
{
	jute_writer_reset(&b->body);
	jute_write_string(&b->body, path, (int32_t)strlen(path));
	jute_write_buffer(&b->body, data, len);
	jute_write_int(&b->body, 1);
	jute_write_int(&b->body, ZK_PERM_ALL);
	jute_write_string(&b->body, "world", 5);
	jute_write_string(&b->body, "anyone", 6);
	jute_write_int(&b->body, 0);
	if (apply(b, ZK_OP_CREATE) != ZK_OK) {
		fprintf(stderr, "create %s failed\n", path);
		exit(1);
	}
}

/* Apply latencies (ms) of setData to random nodes: longest and 99.9th percentile. */
struct lat {
	double *v;
	long n, cap;
};

static void lat_add(struct lat *l, double ms)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 16;
		l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
	}
	l->v[l->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void lat_print(const char *what, struct lat *l)
{
	if (l->n == 0)
		return;
	qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_double);
	long over = 0;
	for (long i = 0; i < l->n; i++)
		over += l->v[i] > 1.0;
	printf("%s: %ld applies, p50 %.1f us, p99 %.1f us, p99.9 %.1f us, longest %.3f ms, %ld over 1 ms\n", what, l->n,
	       l->v[l->n / 2] * 1e3, l->v[l->n * 99 / 100] * 1e3, l->v[l->n * 999 / 1000] * 1e3, l->v[l->n - 1], over);
}

/* The mean CPU cost of `count` getData of random nodes (store_read, one thread), in ns. */
static double get_random(struct bench *b, long nodes, long count, unsigned *seed)
{
	char path[64];
	struct jute_writer req;
	jute_writer_init(&req, 256);
	long found = 0;
	double t0 = cpu_ms();
	for (long i = 0; i < count; i++) {
		int len = snprintf(path, sizeof path, "/b/n%010ld", (long)(rand_r(seed) % nodes));
		jute_writer_reset(&req);
		jute_write_string(&req, path, len);
		jute_write_bool(&req, false);
		jute_writer_reset(&b->out);
		found += store_read(b->s, 1, 1, NULL, ZK_OP_GET_DATA, req.buf, req.len, &b->out, NULL) == ZK_OK;
	}
	double ns = (cpu_ms() - t0) * 1e6 / (double)count;
	jute_writer_free(&req);
	if (found != count)
		fprintf(stderr, "get: %ld of %ld not found\n", count - found, count);
	return ns;
}

static void set_random(struct bench *b, long nodes, const char *data, long value, unsigned *seed, struct lat *l)
{
	char path[64];
	snprintf(path, sizeof path, "/b/n%010ld", (long)(rand_r(seed) % nodes));
	jute_writer_reset(&b->body);
	jute_write_string(&b->body, path, (int32_t)strlen(path));
	jute_write_buffer(&b->body, data, (int32_t)value);
	jute_write_int(&b->body, -1);
	double a0 = now_ms();
	apply(b, ZK_OP_SET_DATA);
	lat_add(l, now_ms() - a0);
}

static void memory_print(struct store *s)
{
	struct store_memory m;
	store_memory_get(s, &m);
	double n = (double)m.nodes;
	double sum = (double)m.node_blocks + (double)m.values_external + (double)m.dirs + (double)m.buckets +
		     (double)m.acls;
	double rounding = (double)m.node_blocks - (double)(m.node_headers + m.owner_blocks + m.paths + m.values_inline);
	printf("bytes per znode: node block %.1f (header %.1f, owner block %.1f, path %.1f, value %.1f inline, "
	       "room and rounding %.1f), values elsewhere %.1f, dirs %.1f (child slots in use %.1f), hash buckets "
	       "%.1f, ACLs %.1f; sum %.1f\n",
	       (double)m.node_blocks / n, (double)m.node_headers / n, (double)m.owner_blocks / n, (double)m.paths / n,
	       (double)m.values_inline / n, rounding / n, (double)m.values_external / n, (double)m.dirs / n,
	       (double)m.child_slots / n, (double)m.buckets / n, (double)m.acls / n, sum / n);
}

struct writer_arg {
	const char *dir;
	struct store_snap *sn;
	uint64_t index;
	struct snap_result res;
	atomic_int done;
};

static void *writer_main(void *arg)
{
	struct writer_arg *w = arg;
	snap_write(w->dir, w->sn, w->index, 1, NULL, &w->res);
	atomic_store(&w->done, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	long nodes = 1000000, value = 100;
	const char *dir = "/tmp/rk-snap-bench";
	bool writes_during = false, load_only = false;
	int threads = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			nodes = atol(argv[++i]);
		else if (!strcmp(argv[i], "--value-size") && i + 1 < argc)
			value = atol(argv[++i]);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--writes-during"))
			writes_during = true;
		else if (!strcmp(argv[i], "--load-only"))
			load_only = true;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--nodes N] [--value-size B] [--dir D] [--writes-during]\n", argv[0]);
			return 2;
		}
	}
	struct store_config cfg = { .config_text = "" };
	if (load_only)
		goto load;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	long rss0 = rss_kb();
	struct bench b = { .s = store_create(&cfg) };
	jute_writer_init(&b.body, 1 << 20);
	jute_writer_init(&b.out, 1 << 20);
	jute_writer_reset(&b.body);
	jute_write_int(&b.body, 30000);
	uint8_t pw[16] = { 0 };
	jute_write_buffer(&b.body, pw, 16);
	apply(&b, ZK_OP_CREATE_SESSION);
	char *data = malloc((size_t)value);
	for (long i = 0; i < value; i++)
		data[i] = (char)('a' + i % 26);
	create(&b, "/b", NULL, -1);
	double t0 = now_ms(), c0 = cpu_ms();
	char path[64];
	for (long i = 0; i < nodes; i++) {
		snprintf(path, sizeof path, "/b/n%010ld", i);
		create(&b, path, data, (int32_t)value);
	}
	printf("build: %ld znodes in %.0f ms (%.0f ms CPU)\n", nodes, now_ms() - t0, cpu_ms() - c0);
	long rss1 = rss_kb();
	printf("rss: %.1f MB for %ld znodes: %.0f bytes per znode\n", (double)(rss1 - rss0) / 1024, nodes,
	       (double)(rss1 - rss0) * 1024 / (double)nodes);
	memory_print(b.s);
	unsigned rw_seed = 7;
	long rw_count = nodes < 1000000 ? nodes : 1000000;
	double get_ns = get_random(&b, nodes, rw_count, &rw_seed);
	printf("get: %.0f ns per getData of a random node (%ld)\n", get_ns, rw_count);
	struct lat sets = { 0 };
	double s0 = cpu_ms();
	for (long i = 0; i < rw_count; i++)
		set_random(&b, nodes, data, value, &rw_seed, &sets);
	printf("set: %.0f ns per setData of a random node (%ld)\n", (cpu_ms() - s0) * 1e6 / (double)sets.n, sets.n);
	free(sets.v);

	/* fork(), for comparison: the parent's pause (page tables copied) */
	double worst = 0;
	for (int k = 0; k < 3; k++) {
		double f0 = now_ms();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		double f1 = now_ms() - f0;
		waitpid(pid, NULL, 0);
		if (f1 > worst)
			worst = f1;
	}
	printf("fork: %.2f ms worst of 3 (the pause a fork-based snapshot would cause)\n", worst);

	unsigned seed = 1;
	struct lat quiet = { 0 }, during = { 0 };
	if (writes_during) {
		double q0 = now_ms();
		while (now_ms() - q0 < 500)
			set_random(&b, nodes, data, value, &seed, &quiet);
		lat_print("applies without a snapshot (500 ms)", &quiet);
	}
	struct writer_arg w = { .dir = dir, .index = (uint64_t)b.zxid };
	double p0 = now_ms();
	if (store_snap_begin(b.s, &w.sn) != 0)
		return 1;
	double pause = now_ms() - p0;
	pthread_t th;
	pthread_create(&th, NULL, writer_main, &w);
	while (writes_during && !atomic_load(&w.done))
		set_random(&b, nodes, data, value, &seed, &during);
	pthread_join(th, NULL);
	struct snap_result *r = &w.res;
	if (r->err) {
		fprintf(stderr, "snapshot failed: %s\n", r->why);
		return 1;
	}
	printf("begin: %.3f ms applier pause (sessions and quota roots copied)\n", pause);
	printf("write: %.0f ms (walk %.0f ms), %.1f MB file, %.1f MB raw (%.1fx), longest lock hold %.3f ms\n",
	       (double)r->duration_us / 1e3, (double)r->walk_us / 1e3, (double)r->file_bytes / 1e6,
	       (double)r->raw_bytes / 1e6, (double)r->raw_bytes / (double)r->file_bytes,
	       (double)r->image.lock_hold_max_ns / 1e6);
	if (writes_during) {
		lat_print("applies while the snapshot is written", &during);
		printf("copied before a change: %llu nodes (%.1f MB)\n", (unsigned long long)r->image.nodes_copied,
		       (double)r->image.copied_bytes / 1e6);
	}
	free(quiet.v);
	free(during.v);
	store_snap_end(b.s, w.sn);
	store_destroy(b.s);
	free(data);
	jute_writer_free(&b.body);
	jute_writer_free(&b.out);
load:;
	struct store *s2 = store_create(&cfg);
	struct snap_loaded ld;
	double l0 = now_ms();
	if (snap_load_newest(dir, s2, 1, threads, &ld) != 0 || !ld.found)
		return 1;
	printf("load on %u threads: %.0f ms (check %.0f ms, blocks %.0f ms of which read+lz4 %.0f ms, link %.0f ms), %llu "
	       "nodes\n",
	       ld.load_threads, now_ms() - l0, (double)ld.verify_us / 1e3, (double)(ld.load_us - ld.finish_us) / 1e3,
	       (double)ld.read_us / 1e3, (double)ld.finish_us / 1e3, (unsigned long long)ld.node_count);
	store_destroy(s2);
	return 0;
}
