/*
 * metrics.h — the Prometheus text exposition (format 0.0.4) of /metrics: ZooKeeper
 * 3.8's metric names, types and labels, as its PrometheusMetricsProvider exports them
 * (so dashboards and alerts written for ZooKeeper work unchanged), the process_*
 * metrics its exportJvmInfo adds (without the JVM's), and RingKeeper's own
 * ringkeeper_* metrics. docs/compatibility.md lists every one.
 *
 * Two steps, so the text can be tested without a server:
 *   metrics_sample_read  reads the server: stats_gather (the numbers mntr prints too),
 *                        the workers' and the raft thread's histograms, queue depths,
 *                        the process's CPU and memory
 *   metrics_write        prints a sample
 *
 * ZooKeeper's summaries (readlatency, updatelatency, fsynctime, election_time, ...)
 * have _count and _sum since the start and quantiles over a sliding window, as the
 * Prometheus Java client computes them (10 minutes, in 5 steps of 2): struct metrics
 * keeps a snapshot of each summary's histogram every 2 minutes (taken when a scrape
 * comes) and the quantiles are those of the observations since the oldest of the last
 * five; with scrapes further apart than 10 minutes, since the previous scrape. No
 * observation in the window: NaN, as ZooKeeper prints.
 *
 * Thread: a struct metrics belongs to the thread that serves /metrics (worker 0); it
 * reads the others' counters without locks (net/stats.h, core/hist.h) and takes only
 * the raft thread's stats_lock for a copy, as mntr does.
 */
#ifndef RK_METRICS_H
#define RK_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/hist.h"
#include "net/stats.h"

struct server;

#define METRICS_WORKERS_MAX 64
#define METRICS_WINDOW_MARKS 5        /* the Java client's ageBuckets */
#define METRICS_WINDOW_STEP_MS 120000 /* its maxAgeSeconds (600) / ageBuckets */

/* ZooKeeper's summaries, each fed by one histogram. */
enum metrics_summary {
	METRICS_SUMMARY_READ_LATENCY,   /* readlatency: ms, requests without a txn */
	METRICS_SUMMARY_UPDATE_LATENCY, /* updatelatency: ms, requests logged as a txn */
	METRICS_SUMMARY_FSYNC_TIME,     /* fsynctime: ms per log batch made durable */
	METRICS_SUMMARY_ELECTION_TIME,  /* election_time: ms without a leader */
	METRICS_SUMMARY_DB_INIT_TIME,   /* dbinittime: ms of start-up recovery */
	METRICS_SUMMARY_STARTUP_TXNS,   /* startup_txns_loaded: entries replayed */
	METRICS_SUMMARY_STARTUP_TXNS_TIME, /* startup_txns_load_time: ms reading the log */
	METRICS_SUMMARY_STARTUP_SNAP_TIME, /* startup_snap_load_time: ms loading the snapshot */
	METRICS_SUMMARY_SNAPSHOT_TIME,     /* snapshottime: ms per snapshot written */
	METRICS_SUMMARY_COUNT
};

/* Everything one scrape prints, read at one moment. */
struct metrics_sample {
	struct stats_snapshot stats;
	bool export_process;  /* metricsProvider.exportJvmInfo */
	/* the histograms, cumulative since the start */
	struct rk_hist_snap op_latency_us[STATS_OP_COUNT];
	struct rk_hist_snap log_sync_us;
	struct rk_hist_snap log_batch_entries;
	struct rk_hist_snap log_batch_bytes;
	struct rk_hist_snap election_ms;
	struct rk_hist_snap db_init_ms;
	struct rk_hist_snap startup_txns;
	struct rk_hist_snap startup_txns_load_ms;
	struct rk_hist_snap startup_snap_load_ms;
	struct rk_hist_snap snapshot_ms;
	/* the hub's queues, per worker */
	int queue_count;
	uint64_t queue_to_raft[METRICS_WORKERS_MAX];
	uint64_t queue_from_raft[METRICS_WORKERS_MAX];
	/* the process */
	int64_t now_mono_us;  /* for leader_uptime (raft_stats.leading_since_us) */
	double cpu_seconds;
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
};

/* The sliding windows of the summaries' quantiles (see the file header). */
struct metrics_window {
	struct rk_hist_snap marks[METRICS_WINDOW_MARKS];
	int64_t mark_ms[METRICS_WINDOW_MARKS];
	int mark_count;
	int mark_head; /* the oldest */
};

struct metrics {
	struct server *srv;
	int64_t created_ms; /* monotonic: the windows' start */
	struct metrics_sample sample;
	struct metrics_window windows[METRICS_SUMMARY_COUNT];
	struct rk_hist_snap scratch; /* a summary's histogram, then its window */
};

/* NULL on no memory. srv may be NULL for tests that only call metrics_write. */
struct metrics *metrics_create(struct server *srv);
void metrics_destroy(struct metrics *m);

/* Fills m->sample from the server. */
void metrics_sample_read(struct metrics *m);

/* Prints s as the exposition text; advances m's windows to now_ms (monotonic ms, the
 * clock of created_ms). */
void metrics_write(struct metrics *m, const struct metrics_sample *s, int64_t now_ms, FILE *f);

/* /metrics' body: a sample read now, printed. malloc'ed (the caller frees), *len its
 * length; NULL on no memory. Matches http.h's render callback. */
char *metrics_render(void *m, size_t *len);

#endif
