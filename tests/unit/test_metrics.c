/* net/metrics.h: the exposition text printed from a hand-made sample (names, types,
 * labels, values, the role-dependent families, the summaries' sliding windows). The
 * endpoint itself is tested in tests/integration/test_metrics.py. */
#include <criterion/criterion.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "net/fourlw.h"
#include "net/metrics.h"

static struct metrics *m;

static void setup(void)
{
	m = metrics_create(NULL);
	cr_assert(m);
	m->created_ms = 1000000;
}

static void teardown(void)
{
	metrics_destroy(m);
}

static char *render(const struct metrics_sample *s, int64_t now_ms)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert(f);
	metrics_write(m, s, now_ms, f);
	fclose(f);
	return text;
}

static void record_n(struct rk_hist_snap *s, uint64_t v, unsigned n)
{
	struct rk_hist *h = calloc(1, sizeof *h);
	for (unsigned i = 0; i < n; i++)
		rk_hist_record(h, v);
	rk_hist_read_add(h, s);
	free(h);
}

/* The value of the sample line that starts with `prefix ` (-1e300 when absent). */
static double value_of(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *line = text; *line;) {
		const char *end = strchrnul(line, '\n');
		if ((size_t)(end - line) > n && strncmp(line, prefix, n) == 0 && line[n] == ' ')
			return strcmp(line + n + 1, "NaN") == 0 || strncmp(line + n + 1, "NaN\n", 4) == 0
				       ? NAN
				       : strtod(line + n + 1, NULL);
		line = *end ? end + 1 : end;
	}
	return -1e300;
}

static bool has_family(const char *text, const char *name, const char *type)
{
	char want[256];
	snprintf(want, sizeof want, "# TYPE %s %s\n", name, type);
	return strstr(text, want) != NULL;
}

static struct metrics_sample *sample_standalone(void)
{
	struct metrics_sample *s = calloc(1, sizeof *s);
	s->stats.store.node_count = 5;
	s->stats.store.watch_count = 3;
	s->stats.store.ephemerals_count = 2;
	s->stats.store.approximate_data_size = 1234;
	s->stats.store.session_count = 4;
	s->stats.packets_received = 100;
	s->stats.packets_sent = 99;
	s->stats.latency_avg_ms = 1.5;
	s->stats.latency_max_ms = 7;
	s->stats.connections = 4;
	s->stats.uptime_ms = 60000;
	s->stats.connections_refused = 1;
	s->stats.connection_requests = 6;
	s->stats.bytes_received = 4096;
	s->stats.raft.voter_count = 1;
	s->stats.raft.leading = true;
	s->stats.raft.term = 3;
	s->stats.raft.commit_index = 42;
	s->stats.raft.applied_index = 41;
	s->stats.worker_count = 2;
	s->queue_count = 2;
	s->queue_to_raft[1] = 7;
	return s;
}

TestSuite(metrics, .init = setup, .fini = teardown);

Test(metrics, zookeeper_gauges_and_counters_as_its_provider_prints_them)
{
	struct metrics_sample *s = sample_standalone();
	char *text = render(s, m->created_ms);
	/* help text = the name, no _total on ZooKeeper's counters, Java's "N.0" values */
	cr_assert_not_null(strstr(text, "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n"));
	cr_assert_not_null(strstr(text, "# HELP connection_rejected connection_rejected\n"
					"# TYPE connection_rejected counter\nconnection_rejected 1.0\n"));
	struct {
		const char *name;
		const char *type;
		double value;
	} want[] = {
		{ "watch_count", "gauge", 3 }, { "ephemerals_count", "gauge", 2 },
		{ "approximate_data_size", "gauge", 1234 }, { "global_sessions", "gauge", 4 },
		{ "local_sessions", "gauge", 0 }, { "num_alive_connections", "gauge", 4 },
		{ "outstanding_requests", "gauge", 0 }, { "avg_latency", "gauge", 1.5 },
		{ "max_latency", "gauge", 7 }, { "min_latency", "gauge", 0 },
		{ "packets_received", "gauge", 100 }, { "packets_sent", "gauge", 99 },
		{ "uptime", "gauge", 60000 }, { "connection_request_count", "counter", 6 },
		{ "bytes_received_count", "counter", 4096 }, { "looking_count", "counter", 0 },
		{ "ringkeeper_raft_term", "gauge", 3 }, { "ringkeeper_raft_commit_index", "gauge", 42 },
		{ "ringkeeper_raft_applied_index", "gauge", 41 }, { "ringkeeper_raft_leader", "gauge", 1 },
		{ "ringkeeper_workers", "gauge", 2 },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		cr_assert(has_family(text, want[i].name, want[i].type), "%s %s", want[i].name, want[i].type);
		cr_assert_eq(value_of(text, want[i].name), want[i].value, "%s", want[i].name);
	}
	cr_assert_eq(value_of(text, "ringkeeper_queue_depth{worker=\"1\",queue=\"to_raft\"}"), 7);
	cr_assert_eq(value_of(text, "ringkeeper_queue_depth{worker=\"0\",queue=\"from_raft\"}"), 0);
	/* standalone: no quorum families, as ZooKeeperServerMain registers none */
	cr_assert_null(strstr(text, "quorum_size"));
	cr_assert_null(strstr(text, "learners"));
	cr_assert_null(strstr(text, "leader_uptime"));
	cr_assert_null(strstr(text, "ringkeeper_raft_follower_lag_entries"));
	/* exportJvmInfo=false: no process_* */
	cr_assert_null(strstr(text, "process_"));
	free(text);
	free(s);
}

Test(metrics, quorum_families_follow_the_role)
{
	struct metrics_sample *s = sample_standalone();
	s->stats.raft.voter_count = 3;
	s->stats.raft.leading = true;
	s->stats.raft.learners = 1;
	s->stats.raft.synced_followers = 1;
	s->now_mono_us = 50000000;
	s->stats.raft.leading_since_us = 20000000; /* leading for 30 s */
	s->stats.raft.peer_count = 2;
	s->stats.raft.peers[0] = (struct raft_peer_stats){ .id = 2, .connected = true, .match_index = 40, .lag_entries = 2 };
	s->stats.raft.peers[1] = (struct raft_peer_stats){ .id = 3, .connected = false, .match_index = 10, .lag_entries = 32 };
	char *text = render(s, m->created_ms);
	cr_assert_eq(value_of(text, "quorum_size"), 3);
	cr_assert_eq(value_of(text, "learners"), 1);
	cr_assert_eq(value_of(text, "synced_followers"), 1);
	cr_assert_eq(value_of(text, "leader_uptime"), 30000);
	cr_assert_eq(value_of(text, "ringkeeper_raft_follower_lag_entries{follower=\"3\"}"), 32);
	cr_assert_eq(value_of(text, "ringkeeper_raft_follower_match_index{follower=\"2\"}"), 40);
	cr_assert_eq(value_of(text, "ringkeeper_raft_follower_connected{follower=\"3\"}"), 0);
	cr_assert(has_family(text, "ringkeeper_raft_follower_lag_entries", "gauge"));
	free(text);

	/* a follower: quorum_size only */
	s->stats.raft.leading = false;
	s->stats.raft.peer_count = 0;
	text = render(s, m->created_ms);
	cr_assert_eq(value_of(text, "quorum_size"), 3);
	cr_assert_null(strstr(text, "learners"));
	cr_assert_null(strstr(text, "leader_uptime"));
	cr_assert_null(strstr(text, "follower_lag"));
	cr_assert_eq(value_of(text, "ringkeeper_raft_leader"), 0);
	free(text);
	free(s);
}

Test(metrics, summaries_split_reads_and_updates_in_milliseconds)
{
	struct metrics_sample *s = sample_standalone();
	record_n(&s->op_latency_us[stats_op_of(ZK_OP_GET_DATA)], 2000, 8);   /* 2 ms reads */
	record_n(&s->op_latency_us[stats_op_of(ZK_OP_PING)], 2000, 2);
	record_n(&s->op_latency_us[stats_op_of(ZK_OP_CREATE)], 10000, 5);    /* 10 ms writes */
	record_n(&s->op_latency_us[stats_op_of(ZK_OP_CREATE_SESSION)], 10000, 1);
	record_n(&s->log_sync_us, 4000, 3);
	char *text = render(s, m->created_ms);
	cr_assert(has_family(text, "readlatency", "summary"));
	cr_assert_eq(value_of(text, "readlatency_count"), 10);
	cr_assert_eq(value_of(text, "readlatency_sum"), 20); /* ms */
	cr_assert_eq(value_of(text, "updatelatency_count"), 6);
	cr_assert_eq(value_of(text, "updatelatency_sum"), 60);
	/* a quantile lies in the bucket of the true value: within 1/8 of it (core/hist.h) */
	double q = value_of(text, "readlatency{quantile=\"0.99\"}");
	cr_assert(q >= 2 * 0.875 && q <= 2 * 1.125, "%f", q);
	q = value_of(text, "updatelatency{quantile=\"0.5\"}");
	cr_assert(q >= 10 * 0.875 && q <= 10 * 1.125, "%f", q);
	/* ADVANCED summaries have three quantiles, BASIC ones only the median */
	cr_assert(!isnan(value_of(text, "updatelatency{quantile=\"0.9\"}")));
	cr_assert_eq(value_of(text, "fsynctime{quantile=\"0.9\"}"), -1e300);
	cr_assert_eq(value_of(text, "fsynctime_count"), 3);
	cr_assert_eq(value_of(text, "fsynctime_sum"), 12);
	/* nothing observed: NaN quantiles, zero count */
	cr_assert(isnan(value_of(text, "election_time{quantile=\"0.5\"}")));
	cr_assert_eq(value_of(text, "election_time_count"), 0);
	free(text);
	free(s);
}

Test(metrics, histograms_are_cumulative_and_labelled_by_opcode)
{
	struct metrics_sample *s = sample_standalone();
	record_n(&s->op_latency_us[stats_op_of(ZK_OP_GET_DATA)], 20, 3);   /* 20 us */
	record_n(&s->op_latency_us[stats_op_of(ZK_OP_GET_DATA)], 1000, 1); /* 1 ms */
	record_n(&s->log_batch_entries, 1, 4);
	record_n(&s->log_batch_entries, 100, 1);
	char *text = render(s, m->created_ms);
	cr_assert(has_family(text, "ringkeeper_request_duration_seconds", "histogram"));
	const char *b = "ringkeeper_request_duration_seconds_bucket{op=\"getData\",le=";
	char key[160];
	snprintf(key, sizeof key, "%s\"1.6e-05\"}", b);
	cr_assert_eq(value_of(text, key), 0);
	snprintf(key, sizeof key, "%s\"3.2e-05\"}", b);
	cr_assert_eq(value_of(text, key), 3);
	snprintf(key, sizeof key, "%s\"0.001024\"}", b);
	cr_assert_eq(value_of(text, key), 4);
	snprintf(key, sizeof key, "%s\"+Inf\"}", b);
	cr_assert_eq(value_of(text, key), 4);
	cr_assert_eq(value_of(text, "ringkeeper_request_duration_seconds_count{op=\"getData\"}"), 4);
	cr_assert(fabs(value_of(text, "ringkeeper_request_duration_seconds_sum{op=\"getData\"}") - 0.00106) < 1e-12);
	/* an opcode never seen has no label set */
	cr_assert_null(strstr(text, "op=\"setData\""));
	/* integer histograms: le = 2^k - 1 */
	cr_assert_eq(value_of(text, "ringkeeper_log_batch_entries_bucket{le=\"1\"}"), 4);
	cr_assert_eq(value_of(text, "ringkeeper_log_batch_entries_bucket{le=\"63\"}"), 4);
	cr_assert_eq(value_of(text, "ringkeeper_log_batch_entries_bucket{le=\"127\"}"), 5);
	cr_assert_eq(value_of(text, "ringkeeper_log_batch_entries_count"), 5);
	free(text);
	free(s);
}

Test(metrics, summary_quantiles_slide_over_ten_minutes)
{
	struct metrics_sample *s = sample_standalone();
	int op = stats_op_of(ZK_OP_GET_DATA);
	record_n(&s->op_latency_us[op], 1000, 100); /* 1 ms, before the first scrape */
	int64_t t0 = m->created_ms;
	char *text = render(s, t0);
	double q = value_of(text, "readlatency{quantile=\"0.5\"}");
	cr_assert(q >= 0.875 && q <= 1.125, "%f", q);
	free(text);
	/* Scrapes every 2 minutes with nothing new: the old observations age out. */
	for (int k = 1; k <= 5; k++)
		free(render(s, t0 + k * METRICS_WINDOW_STEP_MS));
	record_n(&s->op_latency_us[op], 100000, 100); /* 100 ms, recent */
	text = render(s, t0 + 6 * METRICS_WINDOW_STEP_MS);
	q = value_of(text, "readlatency{quantile=\"0.5\"}");
	cr_assert(q >= 87.5 && q <= 112.5, "only the last 10 minutes: %f", q);
	cr_assert_eq(value_of(text, "readlatency_count"), 200); /* count and sum stay cumulative */
	free(text);
	/* Ten more quiet minutes: nothing in the window. */
	for (int k = 7; k <= 12; k++)
		free(render(s, t0 + k * METRICS_WINDOW_STEP_MS));
	text = render(s, t0 + 13 * METRICS_WINDOW_STEP_MS);
	cr_assert(isnan(value_of(text, "readlatency{quantile=\"0.5\"}")));
	free(text);
	free(s);
}

Test(metrics, process_metrics_with_export_jvm_info)
{
	struct metrics_sample *s = sample_standalone();
	s->export_process = true;
	s->cpu_seconds = 1.25;
	s->resident_bytes = 4096;
	s->stats.start_ms = 1700000000500;
	s->stats.open_fds = 17;
	char *text = render(s, m->created_ms);
	cr_assert(has_family(text, "process_cpu_seconds_total", "counter"));
	cr_assert_eq(value_of(text, "process_cpu_seconds_total"), 1.25);
	cr_assert_eq(value_of(text, "process_resident_memory_bytes"), 4096);
	cr_assert_eq(value_of(text, "process_start_time_seconds"), 1700000000.5);
	cr_assert_eq(value_of(text, "process_open_fds"), 17);
	cr_assert_null(strstr(text, "jvm_")); /* no JVM, none invented */
	free(text);
	free(s);
}

/* Every line is a comment or a well-formed sample; every family is declared once,
 * before its samples, and its samples are contiguous. */
Test(metrics, the_text_is_well_formed)
{
	struct metrics_sample *s = sample_standalone();
	s->export_process = true;
	s->stats.raft.voter_count = 3;
	s->stats.raft.peer_count = 1;
	s->stats.raft.peers[0].id = 2;
	record_n(&s->op_latency_us[0], 5, 1);
	record_n(&s->op_latency_us[3], 5, 1);
	char *text = render(s, m->created_ms);
	regex_t sample_re;
	cr_assert_eq(regcomp(&sample_re,
			     "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\"(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\")*\\})? "
			     "(NaN|[+-]Inf|-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?)$",
			     REG_EXTENDED),
		     0);
	char family[128] = "";
	char seen[256][128];
	int seen_count = 0;
	for (char *line = text; *line;) {
		char *end = strchr(line, '\n');
		cr_assert_not_null(end, "the text ends with a newline");
		*end = 0;
		if (strncmp(line, "# HELP ", 7) == 0) {
			char name[128];
			cr_assert_eq(sscanf(line + 7, "%127s", name), 1);
			for (int i = 0; i < seen_count; i++)
				cr_assert_str_neq(seen[i], name, "family %s declared twice", name);
			strcpy(seen[seen_count++], name);
			strcpy(family, name);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			cr_assert_eq(strncmp(line + 7, family, strlen(family)), 0, "%s", line);
		} else {
			regmatch_t g[2];
			cr_assert_eq(regexec(&sample_re, line, 2, g, 0), 0, "malformed: %s", line);
			cr_assert_eq(strncmp(line, family, strlen(family)), 0, "%s outside its family %s", line, family);
		}
		line = end + 1;
	}
	regfree(&sample_re);
	free(text);
	free(s);
}

Test(metrics, averages_print_as_zookeeper_prints_its_doubles)
{
	/* AvgMinMaxCounter.getAvg() rounds to 4 decimals; Double.toString writes it */
	static const struct { double v; const char *text; } cases[] = {
		{ 0.0, "0.0" },      { 1.5, "1.5" },     { 12.0, "12.0" },      { 2.0 / 7.0, "0.2857" },
		{ 10.1, "10.1" },    { 0.001, "0.001" }, { 0.0005, "5.0E-4" },  { 0.00004, "0.0" },
		{ 123.45678, "123.4568" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[32];
		cr_assert_str_eq(fourlw_avg_text(cases[i].v, buf, sizeof buf), cases[i].text, "%g", cases[i].v);
	}
}
