/*
 * main.c — ringkeeper-bench: parse options, set up the key space and the list node
 * (untimed), run once or once per --sweep point, report (human table or JSON lines),
 * delete what the run created (untimed).
 *
 * Nodes (ROOT defaults to /rkbench)
 *   ROOT/k<value_size>/<key>    the key space for set/get/exists; reused across runs
 *   ROOT/list<N>/c<i>           the node whose N children list/children read
 *   ROOT/c/<run>-<session>-<n>  created by create and multi (deleted afterwards)
 *   ROOT/c/<run>-<session>/n<seq> the same with --sequential
 *
 * Thread: main thread only; bench_run owns the engine threads.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/client.h"
#include "bench/options.h"
#include "bench/request.h"
#include "core/zk_proto.h"

/* Multi deletes per cleanup transaction. */
#define BENCH_CLEANUP_MULTI_OPS 100

struct batch_result {
	uint32_t count;
	int32_t errs[BENCH_CLIENT_BATCH_MAX];
	int32_t num_children; /* from an exists reply */
};

static void on_reply_err(void *arg, uint32_t index, int32_t err, struct jute_reader *body)
{
	struct batch_result *b = arg;
	b->errs[index] = err;
	b->count = index + 1;
	(void)body;
}

static void on_exists(void *arg, uint32_t index, int32_t err, struct jute_reader *body)
{
	struct batch_result *b = arg;
	b->errs[index] = err;
	if (err == ZK_OK) {
		struct zk_stat st;
		jute_read_stat(body, &st);
		b->num_children = jute_reader_ok(body) ? st.num_children : -1;
	}
}

/* errs[index] = 1 when the multi failed (a failed multi answers err 0 with type -1 entries). */
static void on_multi(void *arg, uint32_t index, int32_t err, struct jute_reader *body)
{
	struct batch_result *b = arg;
	int32_t type = jute_read_int(body);
	b->errs[index] = err != ZK_OK || type == ZK_OP_ERROR || !jute_reader_ok(body);
}

static int create_one_level(struct bench_client *c, const char *path)
{
	struct batch_result b = { 0 };
	request_write_create(&c->w, bench_client_next(c), path, strlen(path), NULL, 0, 0);
	int err = bench_client_exchange(c, on_reply_err, &b);
	if (err)
		return err;
	return b.errs[0] == ZK_OK || b.errs[0] == ZK_NODEEXISTS ? 0 : -EIO;
}

static int32_t node_children(struct bench_client *c, const char *path)
{
	struct batch_result b = { .num_children = -1 };
	request_write_path_watch(&c->w, bench_client_next(c), ZK_OP_EXISTS, path, strlen(path));
	if (bench_client_exchange(c, on_exists, &b))
		return -1;
	return b.errs[0] == ZK_OK ? b.num_children : -1;
}

/* Opens a session on the first server of the list that accepts one. */
static int open_any(const struct bench_config *cfg, struct bench_client *c, const char *what)
{
	int err = -EINVAL;
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		err = bench_client_open(c, &cfg->servers[i].addr, cfg->session_timeout_ms);
		if (!err)
			return 0;
		fprintf(stderr, "ringkeeper-bench: %s: cannot connect to %s: %s\n", what, cfg->servers[i].text,
			strerror(-err));
	}
	return err;
}

static bool need_keys(const struct bench_config *cfg)
{
	return cfg->mix.weight[BENCH_OP_SET] || cfg->mix.weight[BENCH_OP_GET] || cfg->mix.weight[BENCH_OP_EXISTS] ||
	       cfg->mix.weight[BENCH_OP_MULTI];
}

static bool need_list(const struct bench_config *cfg)
{
	return cfg->mix.weight[BENCH_OP_LIST] || cfg->mix.weight[BENCH_OP_CHILDREN];
}

/*
 * With several servers: waits (at most 15 s per server) until each one shows the set-up
 * tree after a sync, so no session starts on a server that has not applied it yet.
 */
static int setup_visible_everywhere(const struct bench_config *cfg)
{
	char keys_parent[BENCH_PATH_BYTES_MAX];
	char list_parent[BENCH_PATH_BYTES_MAX];
	char created_parent[BENCH_PATH_BYTES_MAX];
	size_t n = bench_key_path(cfg, keys_parent, 0);
	keys_parent[n - 2] = '\0';
	bench_list_path(cfg, list_parent);
	snprintf(created_parent, sizeof(created_parent), "%s/c", cfg->root);
	for (uint32_t i = 0; cfg->server_count > 1 && i < cfg->server_count; i++) {
		struct bench_client c;
		int err = bench_client_open(&c, &cfg->servers[i].addr, cfg->session_timeout_ms);
		if (err) {
			fprintf(stderr, "ringkeeper-bench: setup: cannot connect to %s: %s\n", cfg->servers[i].text,
				strerror(-err));
			return err;
		}
		bool seen = false;
		/* Bounded: 300 tries 50 ms apart. */
		for (int tries = 0; !seen && tries < 300; tries++) {
			struct batch_result b = { 0 };
			request_write_sync(&c.w, bench_client_next(&c), cfg->root, strlen(cfg->root));
			err = bench_client_exchange(&c, on_reply_err, &b);
			seen = !err && b.errs[0] == ZK_OK && node_children(&c, created_parent) >= 0 &&
			       (!need_keys(cfg) || node_children(&c, keys_parent) >= (int32_t)cfg->keys) &&
			       (!need_list(cfg) || node_children(&c, list_parent) == (int32_t)cfg->list_children);
			if (!seen)
				usleep(50000);
		}
		bench_client_close(&c);
		if (!seen) {
			fprintf(stderr, "ringkeeper-bench: setup: %s does not show the set-up tree after 15 s\n",
				cfg->servers[i].text);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* Creates the key space (values with stamp 0) and the list node's children. */
static int bench_setup(const struct bench_config *cfg)
{
	struct bench_client c;
	int err = open_any(cfg, &c, "setup");
	if (err)
		return err;
	char path[BENCH_PATH_BYTES_MAX];
	char keys_parent[BENCH_PATH_BYTES_MAX];
	char list_parent[BENCH_PATH_BYTES_MAX];
	size_t n = bench_key_path(cfg, keys_parent, 0);
	keys_parent[n - 2] = '\0'; /* strip "/0" */
	bench_list_path(cfg, list_parent);
	snprintf(path, sizeof(path), "%s/c", cfg->root);
	err = create_one_level(&c, cfg->root);
	if (!err)
		err = create_one_level(&c, path);
	if (!err)
		err = create_one_level(&c, keys_parent);
	if (!err)
		err = create_one_level(&c, list_parent);
	uint8_t *value = calloc(1, cfg->value_size + 1);
	uint64_t t0 = bench_now_ns();
	if (!err && need_keys(cfg) && node_children(&c, keys_parent) < (int32_t)cfg->keys) {
		/* Existing keys keep whatever a previous run wrote: a valid value of that key. */
		for (uint32_t base = 0; !err && base < cfg->keys; base += BENCH_CLIENT_BATCH_MAX) {
			struct batch_result b = { 0 };
			uint32_t end = base + BENCH_CLIENT_BATCH_MAX < cfg->keys ? base + BENCH_CLIENT_BATCH_MAX : cfg->keys;
			for (uint32_t k = base; k < end; k++) {
				bench_value_fill(value, cfg->value_size, k, 0);
				request_write_create(&c.w, bench_client_next(&c), path, bench_key_path(cfg, path, k), value,
						     cfg->value_size, 0);
			}
			err = bench_client_exchange(&c, on_reply_err, &b);
			for (uint32_t i = 0; !err && i < end - base; i++)
				if (b.errs[i] != ZK_OK && b.errs[i] != ZK_NODEEXISTS)
					err = -EIO;
		}
	}
	if (!err && need_list(cfg) &&
	    node_children(&c, list_parent) != (int32_t)cfg->list_children) {
		for (uint32_t base = 0; !err && base < cfg->list_children; base += BENCH_CLIENT_BATCH_MAX) {
			struct batch_result b = { 0 };
			uint32_t end = base + BENCH_CLIENT_BATCH_MAX < cfg->list_children ? base + BENCH_CLIENT_BATCH_MAX
											  : cfg->list_children;
			for (uint32_t k = base; k < end; k++) {
				int len = snprintf(path, sizeof(path), "%s/c%u", list_parent, k);
				request_write_create(&c.w, bench_client_next(&c), path, (size_t)len, NULL, 0, 0);
			}
			err = bench_client_exchange(&c, on_reply_err, &b);
			for (uint32_t i = 0; !err && i < end - base; i++)
				if (b.errs[i] != ZK_OK && b.errs[i] != ZK_NODEEXISTS)
					err = -EIO;
		}
		if (!err && node_children(&c, list_parent) != (int32_t)cfg->list_children) {
			fprintf(stderr, "ringkeeper-bench: setup: %s has unexpected children; delete it\n", list_parent);
			err = -EEXIST;
		}
	}
	free(value);
	bench_client_close(&c);
	if (!err)
		err = setup_visible_everywhere(cfg);
	if (err)
		fprintf(stderr, "ringkeeper-bench: setup failed: %s\n", strerror(-err));
	else if (!cfg->quiet)
		fprintf(stderr, "[bench] setup done in %.1fs\n", (double)(bench_now_ns() - t0) / 1e9);
	return err;
}

/* Creates the per-session parents that sequential creates need. */
static int bench_setup_sequential(const struct bench_config *cfg, uint32_t run_id, uint32_t sessions)
{
	struct bench_client c;
	int err = open_any(cfg, &c, "setup");
	if (err)
		return err;
	char path[BENCH_PATH_BYTES_MAX];
	for (uint32_t base = 0; !err && base < sessions; base += BENCH_CLIENT_BATCH_MAX) {
		struct batch_result b = { 0 };
		uint32_t end = base + BENCH_CLIENT_BATCH_MAX < sessions ? base + BENCH_CLIENT_BATCH_MAX : sessions;
		for (uint32_t s = base; s < end; s++) {
			size_t len = bench_create_prefix(cfg, path, run_id, s) - 2; /* strip "/n" */
			request_write_create(&c.w, bench_client_next(&c), path, len, NULL, 0, 0);
		}
		err = bench_client_exchange(&c, on_reply_err, &b);
		for (uint32_t i = 0; !err && i < end - base; i++)
			if (b.errs[i] != ZK_OK && b.errs[i] != ZK_NODEEXISTS)
				err = -EIO;
	}
	bench_client_close(&c);
	return err ? err : setup_visible_everywhere(cfg);
}

/* Names of created nodes, in cleanup order: session by session, then the parents. */
struct cleanup_cursor {
	const struct bench_config *cfg;
	const struct bench_result *res;
	uint32_t session;
	int64_t next;
	bool parent_done;
};

/* Writes the next path to delete; false when there are none left. */
static bool cleanup_next(struct cleanup_cursor *cur, char *path, size_t *len)
{
	const struct bench_config *cfg = cur->cfg;
	/* Bounded by sessions x created nodes. */
	while (cur->session < cur->res->sessions) {
		int64_t last = cfg->create_sequential ? cur->res->seq_max[cur->session]
						      : (int64_t)cur->res->create_counts[cur->session] - 1;
		if (cur->next <= last) {
			size_t n = bench_create_prefix(cfg, path, cur->res->run_id, cur->session);
			int w = snprintf(path + n, BENCH_PATH_BYTES_MAX - n, cfg->create_sequential ? "%010lld" : "%lld",
					 (long long)cur->next);
			*len = n + (size_t)w;
			cur->next++;
			return true;
		}
		if (cfg->create_sequential && !cur->parent_done) {
			*len = bench_create_prefix(cfg, path, cur->res->run_id, cur->session) - 2;
			cur->parent_done = true;
			return true;
		}
		cur->session++;
		cur->next = 0;
		cur->parent_done = false;
	}
	return false;
}

/* Deletes what the run created: multis of 100 deletes, one by one where a multi fails. */
static int bench_cleanup(const struct bench_config *cfg, const struct bench_result *res)
{
	if (cfg->create_ephemeral && !cfg->create_sequential)
		return 0; /* closeSession already removed them */
	struct bench_client c;
	int err = open_any(cfg, &c, "cleanup");
	if (err)
		return err;
	enum { MULTIS_PER_EXCHANGE = 64 };
	uint64_t t0 = bench_now_ns();
	uint64_t deleted = 0;
	struct cleanup_cursor cur = { .cfg = cfg, .res = res };
	char (*paths)[BENCH_PATH_BYTES_MAX] = malloc((size_t)BENCH_CLEANUP_MULTI_OPS * MULTIS_PER_EXCHANGE * BENCH_PATH_BYTES_MAX);
	size_t *lens = malloc((size_t)BENCH_CLEANUP_MULTI_OPS * MULTIS_PER_EXCHANGE * sizeof(*lens));
	if (!paths || !lens)
		err = -ENOMEM;
	bool more = true;
	/* Bounded: every pass consumes up to 6400 names from the finite cursor. */
	while (!err && more) {
		uint32_t total = 0;
		uint32_t multi_count = 0;
		uint32_t starts[MULTIS_PER_EXCHANGE + 1];
		while (multi_count < MULTIS_PER_EXCHANGE && more) {
			uint32_t first = total;
			size_t mark = c.w.len;
			while (total - first < BENCH_CLEANUP_MULTI_OPS) {
				if (!cleanup_next(&cur, paths[total], &lens[total])) {
					more = false;
					break;
				}
				total++;
				if (cfg->create_sequential && cur.parent_done)
					break; /* a sequential parent ends its multi: it goes after its children */
			}
			if (total == first) {
				c.w.len = mark;
				break;
			}
			size_t start = request_multi_begin(&c.w, bench_client_next(&c));
			for (uint32_t k = first; k < total; k++)
				request_multi_delete(&c.w, paths[k], lens[k], -1);
			request_multi_end(&c.w, start);
			starts[multi_count++] = first;
		}
		starts[multi_count] = total;
		if (multi_count == 0)
			break;
		struct batch_result b = { 0 };
		err = bench_client_exchange(&c, on_multi, &b);
		/* A failed multi (a node the mix deleted, NONODE) is redone one delete at a time, in order. */
		for (uint32_t m = 0; !err && m < multi_count; m++) {
			if (!b.errs[m])
				continue;
			for (uint32_t k = starts[m]; k < starts[m + 1]; k++)
				request_write_delete(&c.w, bench_client_next(&c), paths[k], lens[k], -1);
			err = bench_client_exchange(&c, NULL, NULL);
		}
		deleted += total;
	}
	free(paths);
	free(lens);
	bench_client_close(&c);
	if (err)
		fprintf(stderr, "ringkeeper-bench: cleanup failed: %s\n", strerror(-err));
	else if (!cfg->quiet)
		fprintf(stderr, "[bench] cleanup of %llu names done in %.1fs\n", (unsigned long long)deleted,
			(double)(bench_now_ns() - t0) / 1e9);
	return err;
}

static const char *err_name(unsigned slot)
{
	switch (slot) {
	case BENCH_ERR_VERIFY:
		return "BADREPLY";
	case BENCH_ERR_XID:
		return "BADXID";
	case BENCH_ERR_CONNLOSS:
		return "CONNLOSS";
	}
	switch (-(int)slot) {
	case ZK_SYSTEMERROR: return "SYSTEMERROR";
	case ZK_CONNECTIONLOSS: return "CONNECTIONLOSS";
	case ZK_DATAINCONSISTENCY: return "DATAINCONSISTENCY";
	case ZK_UNKNOWNSESSION: return "UNKNOWNSESSION";
	case ZK_RUNTIMEINCONSISTENCY: return "RUNTIMEINCONSISTENCY";
	case ZK_MARSHALLINGERROR: return "MARSHALLINGERROR";
	case ZK_UNIMPLEMENTED: return "UNIMPLEMENTED";
	case ZK_OPERATIONTIMEOUT: return "OPERATIONTIMEOUT";
	case ZK_BADARGUMENTS: return "BADARGUMENTS";
	case ZK_NONODE: return "NONODE";
	case ZK_NOAUTH: return "NOAUTH";
	case ZK_BADVERSION: return "BADVERSION";
	case ZK_NODEEXISTS: return "NODEEXISTS";
	case ZK_NOTEMPTY: return "NOTEMPTY";
	case ZK_SESSIONEXPIRED: return "SESSIONEXPIRED";
	case ZK_SESSIONMOVED: return "SESSIONMOVED";
	case ZK_NOTREADONLY: return "NOTREADONLY";
	case ZK_REQUESTTIMEOUT: return "REQUESTTIMEOUT";
	case ZK_THROTTLEDOP: return "THROTTLEDOP";
	}
	return "ERROR";
}

static uint64_t op_errors(const struct bench_op_stats *s)
{
	uint64_t n = 0;
	for (int e = 0; e < BENCH_ERR_SLOTS; e++)
		n += s->errors[e];
	return n;
}

struct cpu_report {
	double generator_us;
	double server_us; /* summed over pids; < 0 when unknown */
	double machine_us;
	double other_us;
	double server_cores; /* average cores used by the servers in the window */
	double generator_cores;
};

static struct cpu_report cpu_report(const struct bench_config *cfg, const struct bench_result *r, uint64_t ops)
{
	struct cpu_report c = { .server_us = -1.0 };
	double per = ops ? 1e6 / (double)ops : 0.0;
	double gen = r->cpu_end.generator_s - r->cpu_start.generator_s;
	double machine = r->cpu_end.machine_busy_s - r->cpu_start.machine_busy_s;
	c.generator_us = gen * per;
	c.machine_us = machine * per;
	c.generator_cores = gen / r->window_s;
	double server = 0.0;
	bool all_ok = cfg->server_pid_count > 0;
	for (uint32_t i = 0; i < cfg->server_pid_count; i++) {
		if (!r->cpu_start.server_ok[i] || !r->cpu_end.server_ok[i])
			all_ok = false;
		else
			server += r->cpu_end.server_s[i] - r->cpu_start.server_s[i];
	}
	if (all_ok) {
		c.server_us = server * per;
		c.server_cores = server / r->window_s;
	}
	c.other_us = (machine - gen - (all_ok ? server : 0.0)) * per;
	return c;
}

/* Every op type's counts and latencies merged into one. */
static void result_totals(const struct bench_result *r, struct bench_op_stats *all)
{
	memset(all, 0, sizeof(*all));
	hist_init(&all->latency);
	for (int op = 0; op < BENCH_OP_COUNT; op++) {
		all->ok += r->ops[op].ok;
		for (int e = 0; e < BENCH_ERR_SLOTS; e++)
			all->errors[e] += r->ops[op].errors[e];
		hist_merge(&all->latency, &r->ops[op].latency);
	}
}

static void print_human(const struct bench_config *cfg, const struct bench_result *r)
{
	char mix[256];
	bench_mix_format(&cfg->mix, mix, sizeof(mix));
	struct bench_op_stats all;
	result_totals(r, &all);
	uint64_t errors = op_errors(&all);
	printf("\npreset=%s mix=%s sessions=%u (connected %u) inflight=%u threads=%u %s", cfg->preset, mix, r->sessions,
	       r->sessions_connected, cfg->inflight, cfg->threads, cfg->rate > 0 ? "open-loop" : "closed-loop");
	if (cfg->rate > 0)
		printf(" rate=%.0f", cfg->rate);
	printf(" value=%uB window=%.1fs\n", cfg->value_size, r->window_s);
	printf("%-9s %12s %10s %8s %9s %9s %9s %9s %9s\n", "op", "ok", "ops/s", "errors", "p50us", "p90us", "p99us",
	       "p99.9us", "maxus");
	for (int op = 0; op <= BENCH_OP_COUNT; op++) {
		const struct bench_op_stats *s = op < BENCH_OP_COUNT ? &r->ops[op] : &all;
		if (op < BENCH_OP_COUNT && s->ok == 0 && op_errors(s) == 0)
			continue;
		const struct hist *h = &s->latency;
		printf("%-9s %12llu %10.0f %8llu %9.1f %9.1f %9.1f %9.1f %9.1f\n",
		       op < BENCH_OP_COUNT ? bench_op_names[op] : "TOTAL", (unsigned long long)s->ok,
		       (double)s->ok / r->window_s, (unsigned long long)op_errors(s), hist_percentile(h, 50) / 1e3,
		       hist_percentile(h, 90) / 1e3, hist_percentile(h, 99) / 1e3, hist_percentile(h, 99.9) / 1e3,
		       (double)(h->total ? h->max : 0) / 1e3);
	}
	if (errors) {
		printf("errors:");
		for (int op = 0; op < BENCH_OP_COUNT; op++)
			for (unsigned e = 0; e < BENCH_ERR_SLOTS; e++)
				if (r->ops[op].errors[e])
					printf(" %s:%s(%d)=%llu", bench_op_names[op], err_name(e),
					       e < BENCH_ERR_SERVER_SLOTS ? -(int)e : 0, (unsigned long long)r->ops[op].errors[e]);
		printf("\n");
	}
	if (r->open_loop_unsent)
		printf("open loop: %llu scheduled requests never sent (generator saturated)\n",
		       (unsigned long long)r->open_loop_unsent);
	if (r->connections_lost)
		printf("connections lost: %llu\n", (unsigned long long)r->connections_lost);
	if (r->reconnects || r->sessions_expired)
		printf("reconnected: %llu, sessions expired: %llu\n", (unsigned long long)r->reconnects,
		       (unsigned long long)r->sessions_expired);
	if (r->stopped_early)
		printf("stopped early: the window is %.1fs\n", r->window_s);
	uint64_t ops = all.ok + errors;
	struct cpu_report c = cpu_report(cfg, r, ops);
	printf("cpu us/op: generator %.2f (%.2f cores)", c.generator_us, c.generator_cores);
	if (c.server_us >= 0)
		printf(", server %.2f (%.2f cores)", c.server_us, c.server_cores);
	printf(", machine %.2f, other %.2f\n", c.machine_us, c.other_us);
	fflush(stdout);
}

static void json_hist(const struct hist *h)
{
	printf("{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
	       hist_percentile(h, 50) / 1e3, hist_percentile(h, 90) / 1e3, hist_percentile(h, 99) / 1e3,
	       hist_percentile(h, 99.9) / 1e3, (double)(h->total ? h->max : 0) / 1e3, hist_mean(h) / 1e3);
}

static void print_json(const struct bench_config *cfg, const struct bench_result *r)
{
	char mix[256];
	bench_mix_format(&cfg->mix, mix, sizeof(mix));
	struct bench_op_stats all;
	result_totals(r, &all);
	uint64_t errors = op_errors(&all);
	struct cpu_report c = cpu_report(cfg, r, all.ok + errors);
	char servers[BENCH_SERVERS_MAX * 64] = "";
	size_t used = 0;
	for (uint32_t i = 0; i < cfg->server_count; i++)
		used += (size_t)snprintf(servers + used, sizeof(servers) - used, "%s%s", i ? "," : "", cfg->servers[i].text);
	printf("{\"preset\":\"%s\",\"mix\":\"%s\",\"servers\":\"%s\",\"sessions\":%u,\"sessions_connected\":%u,"
	       "\"inflight\":%u,\"threads\":%u,\"rate\":%.0f,\"value_size\":%u,\"window_s\":%.3f,"
	       "\"ok\":%llu,\"errors\":%llu,\"ops_per_s\":%.1f,\"latency_us\":",
	       cfg->preset, mix, servers, r->sessions, r->sessions_connected, cfg->inflight, cfg->threads,
	       cfg->rate, cfg->value_size, r->window_s, (unsigned long long)all.ok, (unsigned long long)errors,
	       (double)all.ok / r->window_s);
	json_hist(&all.latency);
	printf(",\"per_op\":{");
	bool first = true;
	for (int op = 0; op < BENCH_OP_COUNT; op++) {
		const struct bench_op_stats *s = &r->ops[op];
		if (s->ok == 0 && op_errors(s) == 0)
			continue;
		printf("%s\"%s\":{\"ok\":%llu,\"errors\":%llu,\"ops_per_s\":%.1f,\"latency_us\":", first ? "" : ",",
		       bench_op_names[op], (unsigned long long)s->ok, (unsigned long long)op_errors(s),
		       (double)s->ok / r->window_s);
		json_hist(&s->latency);
		printf("}");
		first = false;
	}
	printf("},\"errors_by_code\":{");
	first = true;
	for (int op = 0; op < BENCH_OP_COUNT; op++)
		for (unsigned e = 0; e < BENCH_ERR_SLOTS; e++)
			if (r->ops[op].errors[e]) {
				printf("%s\"%s:%s\":%llu", first ? "" : ",", bench_op_names[op], err_name(e),
				       (unsigned long long)r->ops[op].errors[e]);
				first = false;
			}
	printf("},\"open_loop_unsent\":%llu,\"connections_lost\":%llu,\"reconnects\":%llu,\"sessions_expired\":%llu,"
	       "\"stopped_early\":%s,\"cpu_us_per_op\":{\"generator\":%.3f,"
	       "\"server\":%.3f,\"machine\":%.3f,\"other\":%.3f},\"server_cores\":%.3f,\"generator_cores\":%.3f}\n",
	       (unsigned long long)r->open_loop_unsent, (unsigned long long)r->connections_lost,
	       (unsigned long long)r->reconnects, (unsigned long long)r->sessions_expired,
	       r->stopped_early ? "true" : "false", c.generator_us, c.server_us, c.machine_us, c.other_us,
	       c.server_cores, c.generator_cores);
	fflush(stdout);
}

/*
 * The timeline file: a header line of "# key=value" pairs (CLOCK_MONOTONIC ns of t0 and
 * of the window), then "ms writes reads errors" for every ms from t0 with any count.
 */
static int write_timeline(const struct bench_config *cfg, const struct bench_result *r)
{
	FILE *f = fopen(cfg->timeline_path, "we");
	if (!f)
		return -errno;
	fprintf(f, "# t0_mono_ns=%llu measure_start_mono_ns=%llu measure_end_mono_ns=%llu bucket_ms=1 servers=%u\n",
		(unsigned long long)r->t0_ns, (unsigned long long)r->measure_start_ns,
		(unsigned long long)r->measure_end_ns, cfg->server_count);
	for (uint32_t b = 0; b < r->timeline.buckets; b++)
		if (r->timeline.writes[b] || r->timeline.reads[b] || r->timeline.errors[b])
			fprintf(f, "%u %u %u %u\n", b, r->timeline.writes[b], r->timeline.reads[b], r->timeline.errors[b]);
	return fclose(f) ? -errno : 0;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	bench_stop();
}

int main(int argc, char **argv)
{
	struct bench_config cfg;
	char err_text[256] = "";
	int rc = bench_options_parse(&cfg, argc, argv, err_text, sizeof(err_text));
	if (rc == BENCH_OPTIONS_HELP) {
		bench_options_usage();
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "ringkeeper-bench: %s\n", err_text);
		bench_options_usage();
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = (int)SA_RESETHAND; /* a second signal ends the process */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (cfg.setup && bench_setup(&cfg))
		return 1;
	uint32_t points[BENCH_SWEEP_MAX];
	uint32_t point_count = cfg.sweep_count ? cfg.sweep_count : 1;
	if (cfg.sweep_count)
		memcpy(points, cfg.sweep, sizeof(points));
	else
		points[0] = cfg.sessions;
	int exit_code = 0;
	uint32_t run_base = (uint32_t)((uint64_t)time(NULL) * 2654435761u) ^ (uint32_t)getpid() << 8;
	for (uint32_t p = 0; p < point_count; p++) {
		uint32_t run_id = run_base + p;
		if (cfg.create_sequential && bench_setup_sequential(&cfg, run_id, points[p])) {
			fprintf(stderr, "ringkeeper-bench: setup of sequential parents failed\n");
			return 1;
		}
		struct bench_result res;
		int err = bench_run(&cfg, points[p], run_id, &res);
		if (err) {
			fprintf(stderr, "ringkeeper-bench: run failed: %s\n", strerror(-err));
			exit_code = 1;
		} else if (cfg.json) {
			print_json(&cfg, &res);
		} else {
			print_human(&cfg, &res);
		}
		if (!err && cfg.timeline_path[0] && write_timeline(&cfg, &res)) {
			fprintf(stderr, "ringkeeper-bench: cannot write %s: %s\n", cfg.timeline_path, strerror(errno));
			exit_code = 1;
		}
		if (res.sessions_connected < res.sessions)
			exit_code = 1;
		if (cfg.cleanup && bench_cleanup(&cfg, &res))
			exit_code = 1;
		bench_result_free(&res);
	}
	return exit_code;
}
