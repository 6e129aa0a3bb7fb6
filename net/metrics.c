/*
 * metrics.c — see metrics.h. The exposition text, family by family:
 *
 *   # HELP <name> <help>      ZooKeeper's families: the help text is the name, as its
 *   # TYPE <name> <type>      provider registers them (Counter.build(name, name))
 *   <name>{<labels>} <value>
 *
 * Values print as the Prometheus Java client prints them: integers with ".0", NaN,
 * +Inf. ZooKeeper's counters carry no _total suffix (its Java client, 0.9.0, adds none);
 * RingKeeper's own follow today's conventions (_total, _seconds, _bytes).
 *
 * Units: ZooKeeper's latencies and times are milliseconds (its summaries observe ms);
 * ringkeeper_* histograms are in seconds (or entries, bytes), with power-of-two bounds
 * that are exact bucket bounds of core/hist.h.
 */
#include "net/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hub.h"
#include "net/server.h"
#include "net/worker.h"

/* ---- writing ------------------------------------------------------------------------ */

static void prom_value(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.1f", v);
	else
		fprintf(f, "%.15g", v);
}

static void prom_family(FILE *f, const char *name, const char *help, const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_sample(FILE *f, const char *name, const char *labels, double v)
{
	fputs(name, f);
	if (labels && *labels)
		fprintf(f, "{%s}", labels);
	fputc(' ', f);
	prom_value(f, v);
	fputc('\n', f);
}

/* A ZooKeeper gauge or counter: help = name, no labels. */
static void zk_metric(FILE *f, const char *name, const char *type, double v)
{
	prom_family(f, name, name, type);
	prom_sample(f, name, NULL, v);
}

static void rk_metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	prom_family(f, name, help, type);
	prom_sample(f, name, NULL, v);
}

/* ---- ZooKeeper's summaries -------------------------------------------------------- */

/* The snapshot the window starts from (see metrics.h), or NULL: since the start. */
static const struct rk_hist_snap *window_base(const struct metrics_window *w, int64_t now_ms, int64_t start_ms)
{
	int64_t from = now_ms - (int64_t)METRICS_WINDOW_MARKS * METRICS_WINDOW_STEP_MS;
	if (start_ms >= from)
		return NULL; /* the whole life is within the window */
	for (int i = 0; i < w->mark_count; i++) {
		int k = (w->mark_head + i) % METRICS_WINDOW_MARKS;
		if (w->mark_ms[k] >= from)
			return &w->marks[k];
	}
	if (w->mark_count == 0)
		return NULL; /* the first scrape: since the start */
	/* Scrapes further apart than the window: since the previous one. */
	return &w->marks[(w->mark_head + w->mark_count - 1) % METRICS_WINDOW_MARKS];
}

/* Takes a mark of cur every METRICS_WINDOW_STEP_MS, dropping the oldest past five. */
static void window_advance(struct metrics_window *w, const struct rk_hist_snap *cur, int64_t now_ms, int64_t start_ms)
{
	int64_t newest = w->mark_count ? w->mark_ms[(w->mark_head + w->mark_count - 1) % METRICS_WINDOW_MARKS]
				       : start_ms;
	if (now_ms - newest < METRICS_WINDOW_STEP_MS)
		return;
	int k;
	if (w->mark_count == METRICS_WINDOW_MARKS) {
		k = w->mark_head;
		w->mark_head = (w->mark_head + 1) % METRICS_WINDOW_MARKS;
	} else {
		k = (w->mark_head + w->mark_count++) % METRICS_WINDOW_MARKS;
	}
	w->marks[k] = *cur;
	w->mark_ms[k] = now_ms;
}

/*
 * One of ZooKeeper's summaries from the cumulative histogram cur, whose values are
 * `scale` times the unit ZooKeeper reports (1000 for microseconds shown as ms).
 * advanced: quantiles 0.5, 0.9, 0.99 (DetailLevel.ADVANCED); else 0.5 only (BASIC).
 */
static void zk_summary(struct metrics *m, enum metrics_summary which, const char *name,
		       const struct rk_hist_snap *cur, double scale, bool advanced, int64_t now_ms, FILE *f)
{
	static const double quantiles[] = { 0.5, 0.9, 0.99 };
	struct metrics_window *w = &m->windows[which];
	m->scratch = *cur;
	const struct rk_hist_snap *base = window_base(w, now_ms, m->created_ms);
	if (base)
		rk_hist_snap_sub(&m->scratch, base);
	prom_family(f, name, name, "summary");
	for (size_t i = 0; i < (advanced ? 3u : 1u); i++) {
		double q = rk_hist_snap_quantile(&m->scratch, quantiles[i]);
		char labels[32];
		snprintf(labels, sizeof labels, "quantile=\"%g\"", quantiles[i]);
		prom_sample(f, name, labels, q < 0 ? NAN : q / scale);
	}
	char sample[96];
	snprintf(sample, sizeof sample, "%s_count", name);
	prom_sample(f, sample, NULL, (double)rk_hist_snap_count_below(cur, UINT64_MAX));
	snprintf(sample, sizeof sample, "%s_sum", name);
	prom_sample(f, sample, NULL, (double)cur->sum / scale);
	window_advance(w, cur, now_ms, m->created_ms);
}

/* ---- RingKeeper's histograms ------------------------------------------------------ */

struct rk_hist_shape {
	unsigned exp_first, exp_last; /* bounds 2^exp_first .. 2^exp_last */
	double scale;                 /* seconds: 1e6 (values in us); 0: integer values */
};

static const struct rk_hist_shape shape_seconds = { 4, 24, 1e6 };  /* 16 us .. 16.8 s */
static const struct rk_hist_shape shape_entries = { 0, 13, 0 };    /* 1 .. 8191 */
static const struct rk_hist_shape shape_bytes = { 9, 26, 0 };      /* 511 .. 64 MiB - 1 */

/*
 * The _bucket, _sum and _count lines of one labelled histogram (the family's HELP and
 * TYPE come first, once). A bucket counts the values below 2^k, which for a time
 * measured in whole microseconds is t < 2^k us, so le = 2^k us holds; for integer
 * values it is v <= 2^k - 1, so le = 2^k - 1.
 */
static void rk_histogram(FILE *f, const char *name, const char *labels, const struct rk_hist_snap *s,
			 const struct rk_hist_shape *shape)
{
	char sample[96], lab[160];
	const char *sep = labels && *labels ? "," : "";
	snprintf(sample, sizeof sample, "%s_bucket", name);
	for (unsigned k = shape->exp_first; k <= shape->exp_last; k++) {
		uint64_t bound = UINT64_C(1) << k;
		if (shape->scale > 0)
			snprintf(lab, sizeof lab, "%s%sle=\"%.9g\"", labels ? labels : "", sep, (double)bound / shape->scale);
		else
			snprintf(lab, sizeof lab, "%s%sle=\"%llu\"", labels ? labels : "", sep,
				 (unsigned long long)(bound - 1));
		prom_sample(f, sample, lab, (double)rk_hist_snap_count_below(s, bound));
	}
	uint64_t total = rk_hist_snap_count_below(s, UINT64_MAX);
	snprintf(lab, sizeof lab, "%s%sle=\"+Inf\"", labels ? labels : "", sep);
	prom_sample(f, sample, lab, (double)total);
	snprintf(sample, sizeof sample, "%s_sum", name);
	prom_sample(f, sample, labels, shape->scale > 0 ? (double)s->sum / shape->scale : (double)s->sum);
	snprintf(sample, sizeof sample, "%s_count", name);
	prom_sample(f, sample, labels, (double)total);
}

/* ---- the families ------------------------------------------------------------------ */

static void write_zookeeper(struct metrics *m, const struct metrics_sample *s, int64_t now_ms, FILE *f)
{
	const struct stats_snapshot *st = &s->stats;
	const struct raft_stats *rs = &st->raft;
	/* ZooKeeperServer.registerMetrics: gauges */
	zk_metric(f, "znode_count", "gauge", (double)st->store.node_count);
	zk_metric(f, "watch_count", "gauge", (double)st->store.watch_count);
	zk_metric(f, "ephemerals_count", "gauge", (double)st->store.ephemerals_count);
	zk_metric(f, "approximate_data_size", "gauge", (double)st->store.approximate_data_size);
	zk_metric(f, "global_sessions", "gauge", (double)st->store.session_count);
	zk_metric(f, "local_sessions", "gauge", 0); /* RingKeeper has no local sessions */
	zk_metric(f, "num_alive_connections", "gauge", st->connections);
	zk_metric(f, "outstanding_requests", "gauge", (double)st->outstanding);
	zk_metric(f, "avg_latency", "gauge", st->latency_avg_ms);
	zk_metric(f, "min_latency", "gauge", (double)st->latency_min_ms);
	zk_metric(f, "max_latency", "gauge", (double)st->latency_max_ms);
	zk_metric(f, "packets_received", "gauge", (double)st->packets_received);
	zk_metric(f, "packets_sent", "gauge", (double)st->packets_sent);
	zk_metric(f, "uptime", "gauge", (double)st->uptime_ms);
	zk_metric(f, "open_file_descriptor_count", "gauge", st->open_fds);
	zk_metric(f, "max_file_descriptor_count", "gauge", (double)st->max_fds);
	zk_metric(f, "auth_failed_count", "gauge", (double)st->auth_failed);
	/* QuorumZooKeeperServer / LeaderZooKeeperServer: registered only there */
	if (rs->voter_count > 1)
		zk_metric(f, "quorum_size", "gauge", rs->voter_count);
	if (rs->voter_count > 1 && rs->leading) {
		zk_metric(f, "learners", "gauge", rs->learners);
		zk_metric(f, "synced_followers", "gauge", rs->synced_followers);
		zk_metric(f, "pending_syncs", "gauge", rs->pending_syncs);
		double up_ms = rs->leading_since_us ? (double)((s->now_mono_us - rs->leading_since_us) / 1000) : 0;
		zk_metric(f, "leader_uptime", "gauge", up_ms);
		/* ZooKeeper's BufferStats: -1 until the first proposal, as here */
		zk_metric(f, "last_proposal_size", "gauge", (double)rs->proposal_size_last);
		zk_metric(f, "max_proposal_size", "gauge", (double)rs->proposal_size_max);
		zk_metric(f, "min_proposal_size", "gauge", (double)rs->proposal_size_min);
	}
	/* ServerMetrics: counters */
	zk_metric(f, "connection_rejected", "counter", (double)st->connections_refused);
	zk_metric(f, "connection_request_count", "counter", (double)st->connection_requests);
	zk_metric(f, "bytes_received_count", "counter", (double)st->bytes_received);
	zk_metric(f, "looking_count", "counter", (double)rs->looking_count);
	/* ZooKeeper: a learner synced with a whole snapshot (SNAP, not DIFF); here a
	 * snapshot the leader sent a follower whole (InstallSnapshot) */
	zk_metric(f, "snap_count", "counter", (double)rs->snap_sent_count);
	/* ServerMetrics: summaries */
	struct rk_hist_snap *acc = calloc(2, sizeof *acc);
	if (acc) {
		for (unsigned op = 0; op < STATS_OP_COUNT; op++)
			rk_hist_snap_add(&acc[stats_op_is_update(op) ? 1 : 0], &s->op_latency_us[op]);
		zk_summary(m, METRICS_SUMMARY_READ_LATENCY, "readlatency", &acc[0], 1000, true, now_ms, f);
		zk_summary(m, METRICS_SUMMARY_UPDATE_LATENCY, "updatelatency", &acc[1], 1000, true, now_ms, f);
		free(acc);
	}
	zk_summary(m, METRICS_SUMMARY_FSYNC_TIME, "fsynctime", &s->log_sync_us, 1000, false, now_ms, f);
	zk_summary(m, METRICS_SUMMARY_ELECTION_TIME, "election_time", &s->election_ms, 1, false, now_ms, f);
	zk_summary(m, METRICS_SUMMARY_DB_INIT_TIME, "dbinittime", &s->db_init_ms, 1, false, now_ms, f);
	zk_summary(m, METRICS_SUMMARY_STARTUP_TXNS, "startup_txns_loaded", &s->startup_txns, 1, false, now_ms, f);
	zk_summary(m, METRICS_SUMMARY_STARTUP_TXNS_TIME, "startup_txns_load_time", &s->startup_txns_load_ms, 1, false,
		   now_ms, f);
	zk_summary(m, METRICS_SUMMARY_STARTUP_SNAP_TIME, "startup_snap_load_time", &s->startup_snap_load_ms, 1, false,
		   now_ms, f);
	zk_summary(m, METRICS_SUMMARY_SNAPSHOT_TIME, "snapshottime", &s->snapshot_ms, 1, false, now_ms, f);
}

/* The Prometheus client's StandardExports (ZooKeeper's exportJvmInfo adds them). */
static void write_process(const struct metrics_sample *s, FILE *f)
{
	rk_metric(f, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
		  s->cpu_seconds);
	rk_metric(f, "process_start_time_seconds", "gauge",
		  "Start time of the process since unix epoch in seconds.", (double)s->stats.start_ms / 1000.0);
	rk_metric(f, "process_open_fds", "gauge", "Number of open file descriptors.", s->stats.open_fds);
	rk_metric(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.", (double)s->stats.max_fds);
	rk_metric(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
		  (double)s->virtual_bytes);
	rk_metric(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
		  (double)s->resident_bytes);
}

/* Snapshots (raft/pipeline_snapshot.c): the newest one's figures, and counts. */
static void write_snapshots(const struct raft_stats *rs, FILE *f)
{
	rk_metric(f, "ringkeeper_snapshots_total", "counter", "Snapshots this server wrote since start.",
		  (double)rs->snap_count);
	rk_metric(f, "ringkeeper_snapshot_failures_total", "counter", "Snapshots this server began and did not finish.",
		  (double)rs->snap_failed_count);
	rk_metric(f, "ringkeeper_snapshots_skipped_total", "counter",
		  "snapCount ends that found a snapshot still being written (ZooKeeper's \"Too busy to snap\").",
		  (double)rs->snap_skipped_count);
	rk_metric(f, "ringkeeper_snapshot_in_progress", "gauge", "1 while a snapshot is being written.",
		  rs->snap_in_progress ? 1 : 0);
	rk_metric(f, "ringkeeper_snapshot_last_index", "gauge", "The log index of the newest snapshot on disk; 0: none.",
		  (double)rs->snap_last_index);
	rk_metric(f, "ringkeeper_snapshot_last_bytes", "gauge",
		  "File size of the last snapshot this server wrote since start; 0: none yet.", (double)rs->snap_last_bytes);
	rk_metric(f, "ringkeeper_snapshot_last_nodes", "gauge", "Znodes in the last snapshot this server wrote since start.",
		  (double)rs->snap_last_nodes);
	rk_metric(f, "ringkeeper_snapshot_last_duration_seconds", "gauge",
		  "The last snapshot written, from the applier's begin to the directory fsync.",
		  (double)rs->snap_last_duration_us / 1e6);
	rk_metric(f, "ringkeeper_snapshot_last_pause_seconds", "gauge",
		  "The last snapshot: how long the applier stopped to begin it.", (double)rs->snap_last_pause_us / 1e6);
	rk_metric(f, "ringkeeper_snapshots_sent_total", "counter",
		  "Leader: snapshots a follower received whole (InstallSnapshot).", (double)rs->snap_sent_count);
	rk_metric(f, "ringkeeper_snapshots_installed_total", "counter",
		  "Follower: the leader's snapshots installed (InstallSnapshot).", (double)rs->snap_installed_count);
}

static void write_ringkeeper(const struct metrics_sample *s, FILE *f)
{
	const struct stats_snapshot *st = &s->stats;
	const struct raft_stats *rs = &st->raft;
	char labels[96];

	prom_family(f, "ringkeeper_request_duration_seconds",
		    "Requests answered by this server, from parsed to answered, by ZooKeeper opcode.", "histogram");
	for (unsigned op = 0; op < STATS_OP_COUNT; op++) {
		if (s->op_latency_us[op].count == 0)
			continue; /* a label set appears with its first request */
		snprintf(labels, sizeof labels, "op=\"%s\"", stats_op_name(op));
		rk_histogram(f, "ringkeeper_request_duration_seconds", labels, &s->op_latency_us[op], &shape_seconds);
	}
	prom_family(f, "ringkeeper_log_sync_duration_seconds",
		    "A group-commit batch of the log, from submitted to durable (O_DIRECT write and fdatasync).",
		    "histogram");
	rk_histogram(f, "ringkeeper_log_sync_duration_seconds", NULL, &s->log_sync_us, &shape_seconds);
	prom_family(f, "ringkeeper_log_batch_entries", "Entries per group-commit batch of the log.", "histogram");
	rk_histogram(f, "ringkeeper_log_batch_entries", NULL, &s->log_batch_entries, &shape_entries);
	prom_family(f, "ringkeeper_log_batch_bytes", "Record bytes per group-commit batch of the log.", "histogram");
	rk_histogram(f, "ringkeeper_log_batch_bytes", NULL, &s->log_batch_bytes, &shape_bytes);

	prom_family(f, "ringkeeper_queue_depth",
		    "Messages waiting in a worker's queue to the raft thread (to_raft) or from it (from_raft).", "gauge");
	for (int i = 0; i < s->queue_count; i++) {
		snprintf(labels, sizeof labels, "worker=\"%d\",queue=\"to_raft\"", i);
		prom_sample(f, "ringkeeper_queue_depth", labels, (double)s->queue_to_raft[i]);
		snprintf(labels, sizeof labels, "worker=\"%d\",queue=\"from_raft\"", i);
		prom_sample(f, "ringkeeper_queue_depth", labels, (double)s->queue_from_raft[i]);
	}

	rk_metric(f, "ringkeeper_raft_term", "gauge", "The current Raft term.", (double)rs->term);
	rk_metric(f, "ringkeeper_raft_commit_index", "gauge", "The highest log index known committed.",
		  (double)rs->commit_index);
	rk_metric(f, "ringkeeper_raft_applied_index", "gauge", "The highest log index applied to the store.",
		  (double)rs->applied_index);
	rk_metric(f, "ringkeeper_raft_last_log_index", "gauge", "The last index durable in this server's log.",
		  (double)rs->last_index);
	rk_metric(f, "ringkeeper_raft_voters", "gauge", "Raft voters (the server.N participants; 1 standalone).",
		  rs->voter_count);
	rk_metric(f, "ringkeeper_raft_leader", "gauge", "1 while this server leads, else 0.", rs->leading ? 1 : 0);
	rk_metric(f, "ringkeeper_raft_leader_id", "gauge", "The id of the leader this server knows; 0: none.",
		  (double)rs->leader_id);
	if (rs->peer_count > 0) {
		prom_family(f, "ringkeeper_raft_follower_lag_entries",
			    "Leader only: entries of the leader's log a follower is not known to hold.", "gauge");
		for (int i = 0; i < rs->peer_count; i++) {
			snprintf(labels, sizeof labels, "follower=\"%u\"", rs->peers[i].id);
			prom_sample(f, "ringkeeper_raft_follower_lag_entries", labels, (double)rs->peers[i].lag_entries);
		}
		prom_family(f, "ringkeeper_raft_follower_match_index",
			    "Leader only: the last log index known in a follower's log.", "gauge");
		for (int i = 0; i < rs->peer_count; i++) {
			snprintf(labels, sizeof labels, "follower=\"%u\"", rs->peers[i].id);
			prom_sample(f, "ringkeeper_raft_follower_match_index", labels, (double)rs->peers[i].match_index);
		}
		prom_family(f, "ringkeeper_raft_follower_connected",
			    "Leader only: 1 while both peer links to a follower are up.", "gauge");
		for (int i = 0; i < rs->peer_count; i++) {
			snprintf(labels, sizeof labels, "follower=\"%u\"", rs->peers[i].id);
			prom_sample(f, "ringkeeper_raft_follower_connected", labels, rs->peers[i].connected ? 1 : 0);
		}
	}
	rk_metric(f, "ringkeeper_writes_committed_total", "counter", "Log entries applied to the store since start.",
		  (double)rs->writes_committed);
	rk_metric(f, "ringkeeper_reads_served_total", "counter", "Reads answered from the store since start.",
		  (double)st->reads_served);
	rk_metric(f, "ringkeeper_proposals_lost_total", "counter",
		  "Clusters: this server's proposals found lost (a later one committed first); their clients got "
		  "CONNECTIONLOSS.",
		  (double)rs->proposals_lost_count);
	rk_metric(f, "ringkeeper_session_moves_reclaimed_total", "counter",
		  "Clusters: lost moves of a session to this server, proposed again for its open connection.",
		  (double)rs->session_moves_reclaimed_count);
	rk_metric(f, "ringkeeper_frames_rejected_total", "counter",
		  "Client frames refused for their length (the connection was closed).", (double)st->frames_rejected);
	rk_metric(f, "ringkeeper_log_bytes", "gauge", "Bytes of the live log segments.", (double)rs->wal.log_bytes);
	rk_metric(f, "ringkeeper_log_segments", "gauge", "Live log segments.", rs->wal.segment_count);
	rk_metric(f, "ringkeeper_log_entries_in_memory", "gauge",
		  "Log entries the consensus core holds in memory (for followers behind).", (double)rs->core_entries);
	rk_metric(f, "ringkeeper_log_segment_roll_stalls_total", "counter",
		  "Segment rolls that waited for the segment preparer.", (double)rs->wal.segment_roll_stall_count);
	rk_metric(f, "ringkeeper_workers", "gauge", "Client worker threads.", st->worker_count);
	rk_metric(f, "ringkeeper_recv_buffers", "gauge",
		  "16 KiB receive buffers the workers have put to use (64 each at start, more under load).",
		  (double)st->recv_buffers);
	write_snapshots(rs, f);
}

void metrics_write(struct metrics *m, const struct metrics_sample *s, int64_t now_ms, FILE *f)
{
	write_zookeeper(m, s, now_ms, f);
	if (s->export_process)
		write_process(s, f);
	write_ringkeeper(s, f);
}

/* ---- reading the server -------------------------------------------------------------- */

static void process_read(struct metrics_sample *s)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		s->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
				 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		unsigned long long size = 0, resident = 0;
		if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
			long page = sysconf(_SC_PAGESIZE);
			s->virtual_bytes = size * (unsigned long long)page;
			s->resident_bytes = resident * (unsigned long long)page;
		}
		fclose(f);
	}
}

void metrics_sample_read(struct metrics *m)
{
	struct server *srv = m->srv;
	struct metrics_sample *s = &m->sample;
	memset(s, 0, sizeof *s);
	stats_gather(srv, &s->stats);
	s->export_process = srv->cfg.metrics_export_process;
	for (unsigned op = 0; op < STATS_OP_COUNT; op++)
		stats_op_latency_read_add(srv, op, &s->op_latency_us[op]);
	struct raft_hists h;
	raft_pipeline_hists(srv->raft, &h);
	rk_hist_read(h.log_sync_us, &s->log_sync_us);
	rk_hist_read(h.log_batch_entries, &s->log_batch_entries);
	rk_hist_read(h.log_batch_bytes, &s->log_batch_bytes);
	rk_hist_read(h.election_ms, &s->election_ms);
	rk_hist_read(h.db_init_ms, &s->db_init_ms);
	rk_hist_read(h.startup_txns, &s->startup_txns);
	rk_hist_read(h.startup_txns_load_ms, &s->startup_txns_load_ms);
	rk_hist_read(h.startup_snap_load_ms, &s->startup_snap_load_ms);
	rk_hist_read(h.snapshot_ms, &s->snapshot_ms);
	s->queue_count = srv->hub->port_count < METRICS_WORKERS_MAX ? srv->hub->port_count : METRICS_WORKERS_MAX;
	for (int i = 0; i < s->queue_count; i++) {
		s->queue_to_raft[i] = spsc_size(&srv->hub->ports[i].to_raft);
		s->queue_from_raft[i] = spsc_size(&srv->hub->ports[i].from_raft);
	}
	s->now_mono_us = rk_now_us();
	if (s->export_process)
		process_read(s);
}

struct metrics *metrics_create(struct server *srv)
{
	struct metrics *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->srv = srv;
	m->created_ms = rk_now_us() / 1000;
	return m;
}

void metrics_destroy(struct metrics *m)
{
	free(m);
}

char *metrics_render(void *ctx, size_t *len)
{
	struct metrics *m = ctx;
	metrics_sample_read(m);
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f)
		return NULL;
	metrics_write(m, &m->sample, rk_now_us() / 1000, f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
