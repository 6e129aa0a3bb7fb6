/*
 * run.c — one run of the load generator, as the main thread sees it: the engine
 * threads started with their share of the sessions (engine.c runs them), the clock
 * of the warmup and the measured window with a progress line a second, then the
 * threads joined and what they counted merged into one bench_result.
 *
 * Thread: the main thread (bench_stop from a signal handler: an atomic flag).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/engine_int.h"
#include "bench/hist.h"
#include "core/jute.h"

static atomic_bool stop_requested;

void bench_stop(void)
{
	atomic_store(&stop_requested, true);
}

/* Sleeps until when_ns in slices of at most 50 ms; false early if bench_stop() was called. */
static bool sleep_until_unless_stopped(uint64_t when_ns)
{
	/* Bounded: each slice moves the clock forward by up to 50 ms. */
	for (;;) {
		if (atomic_load(&stop_requested))
			return false;
		uint64_t now = bench_now_ns();
		if (now >= when_ns)
			return true;
		uint64_t slice = when_ns - now < 50000000u ? when_ns - now : 50000000u;
		engine_sleep_until(now + slice);
	}
}

static void print_progress(struct engine_thread *threads, uint32_t count, const struct engine_shared *sh,
			   uint64_t *last_done, uint64_t *last_ns)
{
	uint64_t done = 0, errors = 0;
	for (uint32_t i = 0; i < count; i++) {
		done += atomic_load_explicit(&threads[i].progress_done, memory_order_relaxed);
		errors += atomic_load_explicit(&threads[i].progress_errors, memory_order_relaxed);
	}
	uint64_t now = bench_now_ns();
	double dt = (double)(now - *last_ns) / 1e9;
	const char *phase = now < sh->measure_start_ns ? "warmup" : now < sh->measure_end_ns ? "measure" : "drain";
	fprintf(stderr, "[bench] t=%5.1fs %-7s %10.0f ops/s  done=%llu errors=%llu\n", (double)(now - sh->t0_ns) / 1e9,
		phase, dt > 0 ? (double)(done - *last_done) / dt : 0.0, (unsigned long long)done,
		(unsigned long long)errors);
	*last_done = done;
	*last_ns = now;
}

void bench_result_free(struct bench_result *res)
{
	free(res->create_counts);
	free(res->seq_max);
	free(res->timeline.writes);
	free(res->timeline.reads);
	free(res->timeline.errors);
	res->create_counts = NULL;
	res->seq_max = NULL;
	memset(&res->timeline, 0, sizeof(res->timeline));
}

/* The result's arrays: per-session counters, and the timeline when one is asked for. */
static int result_init(const struct bench_config *cfg, uint32_t sessions, uint32_t run_id,
		       struct bench_result *res)
{
	memset(res, 0, sizeof(*res));
	res->sessions = sessions;
	res->run_id = run_id;
	res->create_counts = calloc(sessions, sizeof(*res->create_counts));
	res->seq_max = calloc(sessions, sizeof(*res->seq_max));
	if (!res->create_counts || !res->seq_max) {
		bench_result_free(res);
		return -ENOMEM;
	}
	if (cfg->timeline_path[0]) {
		/* Warmup, window and the drain after it, one bucket per ms. */
		double span_s = cfg->warmup_s + cfg->duration_s + BENCH_DRAIN_MS / 1000.0 + 1.0;
		res->timeline.buckets = (uint32_t)(span_s * 1000.0);
		res->timeline.writes = calloc(res->timeline.buckets, sizeof(uint32_t));
		res->timeline.reads = calloc(res->timeline.buckets, sizeof(uint32_t));
		res->timeline.errors = calloc(res->timeline.buckets, sizeof(uint32_t));
		if (!res->timeline.writes || !res->timeline.reads || !res->timeline.errors) {
			bench_result_free(res);
			return -ENOMEM;
		}
	}
	return 0;
}

static void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count, size);
	if (!p) {
		fprintf(stderr, "ringkeeper-bench: out of memory\n");
		abort();
	}
	return p;
}

/* Thread i of thread_count, with its share of the sessions; started. */
static void thread_start(struct engine_thread *t, uint32_t i, uint32_t thread_count, uint32_t sessions,
			 const struct bench_config *run_cfg, struct engine_shared *sh, uint32_t timeline_buckets)
{
	t->index = i;
	t->cfg = run_cfg;
	t->shared = sh;
	t->conn_count = sessions / thread_count + (i < sessions % thread_count ? 1 : 0);
	t->conns = xcalloc(t->conn_count, sizeof(*t->conns));
	t->dirty = xcalloc(t->conn_count, sizeof(*t->dirty));
	t->value = xcalloc(1, run_cfg->value_size + 1);
	t->stats = xcalloc(BENCH_OP_COUNT, sizeof(*t->stats));
	for (int op = 0; op < BENCH_OP_COUNT; op++)
		hist_init(&t->stats[op].latency);
	char buf[BENCH_PATH_BYTES_MAX];
	size_t n = bench_key_path(run_cfg, buf, 0);
	t->key_prefix_len = n - 1; /* drop the "0" */
	memcpy(t->key_prefix, buf, t->key_prefix_len);
	t->list_path_len = bench_list_path(run_cfg, t->list_path);
	if (timeline_buckets) {
		t->timeline.buckets = timeline_buckets;
		t->timeline.writes = xcalloc(timeline_buckets, sizeof(uint32_t));
		t->timeline.reads = xcalloc(timeline_buckets, sizeof(uint32_t));
		t->timeline.errors = xcalloc(timeline_buckets, sizeof(uint32_t));
	}
	if (pthread_create(&t->tid, NULL, engine_thread_main, t)) {
		fprintf(stderr, "ringkeeper-bench: pthread_create failed\n");
		abort();
	}
}

/*
 * The main thread's clock: the warmup, then the window, a progress line a second;
 * CPU samples at the window's two ends. Stopped early (SIGINT/SIGTERM), the window
 * ends then and the threads drain. Returns the window's end.
 */
static uint64_t run_clock(const struct bench_config *cfg, struct engine_shared *sh, struct engine_thread *threads,
			  uint32_t thread_count, struct bench_result *res)
{
	uint64_t last_done = 0, last_ns = sh->t0_ns;
	bool started = false;
	/* Bounded: one pass per second until the window ends. */
	for (uint64_t tick = sh->t0_ns + 1000000000u;; tick += 1000000000u) {
		uint64_t next = tick;
		if (!started && sh->measure_start_ns <= next)
			next = sh->measure_start_ns;
		if (sh->measure_end_ns <= next)
			next = sh->measure_end_ns;
		if (!sleep_until_unless_stopped(next)) {
			uint64_t stop = bench_now_ns();
			atomic_store(&sh->stop_ns, stop);
			atomic_store(&sh->abort_run, true);
			if (!started)
				bench_cpu_sample_take(cfg, &res->cpu_start);
			bench_cpu_sample_take(cfg, &res->cpu_end);
			res->stopped_early = true;
			return stop > sh->measure_start_ns ? stop : sh->measure_start_ns;
		}
		if (!started && next == sh->measure_start_ns) {
			bench_cpu_sample_take(cfg, &res->cpu_start);
			started = true;
		}
		if (next == sh->measure_end_ns) {
			if (!started)
				bench_cpu_sample_take(cfg, &res->cpu_start);
			bench_cpu_sample_take(cfg, &res->cpu_end);
			return sh->measure_end_ns;
		}
		if (next != tick)
			tick -= 1000000000u; /* that pass was the window start; redo this second */
		else if (!cfg->quiet)
			print_progress(threads, thread_count, sh, &last_done, &last_ns);
	}
}

/* Joins thread t, adds what it counted to res and frees what it held. 0 or -EIO. */
static int thread_collect(struct engine_thread *t, bool first, uint32_t sessions, struct bench_result *res)
{
	pthread_join(t->tid, NULL);
	for (int op = 0; op < BENCH_OP_COUNT; op++) {
		res->ops[op].ok += t->stats[op].ok;
		for (int e = 0; e < BENCH_ERR_SLOTS; e++)
			res->ops[op].errors[e] += t->stats[op].errors[e];
		if (first)
			res->ops[op].latency = t->stats[op].latency;
		else
			hist_merge(&res->ops[op].latency, &t->stats[op].latency);
	}
	res->open_loop_unsent += t->open_unsent;
	res->connections_lost += t->conns_lost;
	res->pings_sent += t->pings_sent;
	res->reconnects += t->reconnects;
	res->sessions_expired += t->sessions_expired;
	for (uint32_t b = 0; b < res->timeline.buckets; b++) {
		res->timeline.writes[b] += t->timeline.writes[b];
		res->timeline.reads[b] += t->timeline.reads[b];
		res->timeline.errors[b] += t->timeline.errors[b];
	}
	free(t->timeline.writes);
	free(t->timeline.reads);
	free(t->timeline.errors);
	for (uint32_t k = 0; k < t->conn_count; k++) {
		struct conn *c = &t->conns[k];
		if (c->session < sessions) {
			res->create_counts[c->session] = c->create_counter;
			res->seq_max[c->session] = c->seq_max;
		}
		if (c->handshaken)
			res->sessions_connected++;
		jute_writer_free(&c->out[0]);
		jute_writer_free(&c->out[1]);
		free(c->slots);
		free(c->rbuf);
	}
	free(t->conns);
	free(t->dirty);
	free(t->value);
	free(t->stats);
	return t->ring_ok ? 0 : -EIO;
}

int bench_run(const struct bench_config *cfg, uint32_t sessions, uint32_t run_id, struct bench_result *res)
{
	assert(cfg->threads >= 1 && cfg->threads <= BENCH_THREADS_MAX);
	assert(sessions >= 1 && sessions <= BENCH_SESSIONS_MAX);
	int err = result_init(cfg, sessions, run_id, res);
	if (err)
		return err;
	uint32_t thread_count = cfg->threads < sessions ? cfg->threads : sessions;
	struct bench_config run_cfg = *cfg;
	run_cfg.threads = thread_count;
	struct engine_shared *sh = calloc(1, sizeof(*sh));
	struct engine_thread *threads = calloc(thread_count, sizeof(*threads));
	if (!sh || !threads) {
		free(sh);
		free(threads);
		bench_result_free(res);
		return -ENOMEM;
	}
	sh->run_id = run_id;
	pthread_barrier_init(&sh->ready, NULL, thread_count + 1);
	pthread_barrier_init(&sh->go, NULL, thread_count + 1);
	for (uint32_t i = 0; i < thread_count; i++)
		thread_start(&threads[i], i, thread_count, sessions, &run_cfg, sh, res->timeline.buckets);
	pthread_barrier_wait(&sh->ready);
	uint64_t now = bench_now_ns();
	sh->t0_ns = now + 1000000u;
	sh->measure_start_ns = sh->t0_ns + (uint64_t)(cfg->warmup_s * 1e9);
	sh->measure_end_ns = sh->measure_start_ns + (uint64_t)(cfg->duration_s * 1e9);
	pthread_barrier_wait(&sh->go);

	uint64_t window_end_ns = run_clock(cfg, sh, threads, thread_count, res);
	res->window_s = (double)(window_end_ns - sh->measure_start_ns) / 1e9;
	res->t0_ns = sh->t0_ns;
	res->measure_start_ns = sh->measure_start_ns;
	res->measure_end_ns = window_end_ns;

	for (uint32_t i = 0; i < thread_count; i++)
		if (thread_collect(&threads[i], i == 0, sessions, res) != 0)
			err = -EIO;
	pthread_barrier_destroy(&sh->ready);
	pthread_barrier_destroy(&sh->go);
	free(sh);
	free(threads);
	return err;
}
