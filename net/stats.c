/*
 * stats.c — see stats.h: the per-opcode table, the workers' counters and the one
 * gathering every reader of statistics shares.
 */
#include "net/stats.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/zk_proto.h"
#include "net/server.h"
#include "net/worker.h"

/* One row per timed opcode: its wire value, ZooKeeper's name, whether it is a txn. */
static const struct {
	int32_t opcode;
	const char *name;
	bool update;
} stats_ops[STATS_OP_COUNT] = {
	[STATS_OP_CREATE] = { ZK_OP_CREATE, "create", true },
	[STATS_OP_DELETE] = { ZK_OP_DELETE, "delete", true },
	[STATS_OP_EXISTS] = { ZK_OP_EXISTS, "exists", false },
	[STATS_OP_GET_DATA] = { ZK_OP_GET_DATA, "getData", false },
	[STATS_OP_SET_DATA] = { ZK_OP_SET_DATA, "setData", true },
	[STATS_OP_GET_ACL] = { ZK_OP_GET_ACL, "getACL", false },
	[STATS_OP_SET_ACL] = { ZK_OP_SET_ACL, "setACL", true },
	[STATS_OP_GET_CHILDREN] = { ZK_OP_GET_CHILDREN, "getChildren", false },
	[STATS_OP_SYNC] = { ZK_OP_SYNC, "sync", false },
	[STATS_OP_PING] = { ZK_OP_PING, "ping", false },
	[STATS_OP_GET_CHILDREN2] = { ZK_OP_GET_CHILDREN2, "getChildren2", false },
	[STATS_OP_CHECK] = { ZK_OP_CHECK, "check", true },
	[STATS_OP_MULTI] = { ZK_OP_MULTI, "multi", true },
	[STATS_OP_CREATE2] = { ZK_OP_CREATE2, "create2", true },
	[STATS_OP_RECONFIG] = { ZK_OP_RECONFIG, "reconfig", true },
	[STATS_OP_CHECK_WATCHES] = { ZK_OP_CHECK_WATCHES, "checkWatches", false },
	[STATS_OP_REMOVE_WATCHES] = { ZK_OP_REMOVE_WATCHES, "removeWatches", false },
	[STATS_OP_CREATE_CONTAINER] = { ZK_OP_CREATE_CONTAINER, "createContainer", true },
	[STATS_OP_DELETE_CONTAINER] = { ZK_OP_DELETE_CONTAINER, "deleteContainer", true },
	[STATS_OP_CREATE_TTL] = { ZK_OP_CREATE_TTL, "createTTL", true },
	[STATS_OP_MULTI_READ] = { ZK_OP_MULTI_READ, "multiRead", false },
	[STATS_OP_AUTH] = { ZK_OP_AUTH, "auth", false },
	[STATS_OP_SET_WATCHES] = { ZK_OP_SET_WATCHES, "setWatches", false },
	[STATS_OP_SASL] = { ZK_OP_SASL, "sasl", false },
	[STATS_OP_GET_EPHEMERALS] = { ZK_OP_GET_EPHEMERALS, "getEphemerals", false },
	[STATS_OP_GET_ALL_CHILDREN_NUMBER] = { ZK_OP_GET_ALL_CHILDREN_NUMBER, "getAllChildrenNumber", false },
	[STATS_OP_SET_WATCHES2] = { ZK_OP_SET_WATCHES2, "setWatches2", false },
	[STATS_OP_ADD_WATCH] = { ZK_OP_ADD_WATCH, "addWatch", false },
	[STATS_OP_WHO_AM_I] = { ZK_OP_WHO_AM_I, "whoAmI", false },
	[STATS_OP_CREATE_SESSION] = { ZK_OP_CREATE_SESSION, "createSession", true },
	[STATS_OP_CLOSE_SESSION] = { ZK_OP_CLOSE_SESSION, "closeSession", true },
	/* ClickHouse Keeper's extensions, by ClickHouse's names */
	[STATS_OP_FILTERED_LIST] = { ZK_OP_FILTERED_LIST, "filteredList", false },
	[STATS_OP_CHECK_NOT_EXISTS] = { ZK_OP_CHECK_NOT_EXISTS, "checkNotExists", true },
	[STATS_OP_CREATE_IF_NOT_EXISTS] = { ZK_OP_CREATE_IF_NOT_EXISTS, "createIfNotExists", true },
	[STATS_OP_REMOVE_RECURSIVE] = { ZK_OP_REMOVE_RECURSIVE, "removeRecursive", true },
	[STATS_OP_CHECK_STAT] = { STORE_OP_CHECK_STAT, "checkStat", true },
	[STATS_OP_TRY_REMOVE] = { STORE_OP_TRY_REMOVE, "tryRemove", true },
	[STATS_OP_FILTERED_LIST_WITH_STATS_AND_DATA] = { ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA,
							  "filteredListWithStatsAndData", false },
	[STATS_OP_LIST_RECURSIVE] = { ZK_OP_LIST_RECURSIVE, "listRecursive", false },
};

/*
 * opcode -> row + 1 (0: not timed), for ZooKeeper's opcodes (-16..111) and ClickHouse's
 * (500..507), built once from stats_ops so the two cannot disagree.
 */
#define STATS_ZK_FIRST (-16)
#define STATS_ZK_SPAN 128
#define STATS_CH_FIRST 500
#define STATS_CH_SPAN 8
static uint8_t stats_zk_rows[STATS_ZK_SPAN];
static uint8_t stats_ch_rows[STATS_CH_SPAN];
static pthread_once_t stats_rows_once = PTHREAD_ONCE_INIT;

static void stats_rows_build(void)
{
	for (unsigned i = 0; i < STATS_OP_COUNT; i++) {
		int32_t op = stats_ops[i].opcode;
		if (op >= STATS_ZK_FIRST && op < STATS_ZK_FIRST + STATS_ZK_SPAN)
			stats_zk_rows[op - STATS_ZK_FIRST] = (uint8_t)(i + 1);
		else if (op >= STATS_CH_FIRST && op < STATS_CH_FIRST + STATS_CH_SPAN)
			stats_ch_rows[op - STATS_CH_FIRST] = (uint8_t)(i + 1);
		else
			abort(); /* a row outside both ranges: widen them */
	}
}

int stats_op_of(int32_t opcode)
{
	pthread_once(&stats_rows_once, stats_rows_build);
	uint8_t row = 0;
	if (opcode >= STATS_ZK_FIRST && opcode < STATS_ZK_FIRST + STATS_ZK_SPAN)
		row = stats_zk_rows[opcode - STATS_ZK_FIRST];
	else if (opcode >= STATS_CH_FIRST && opcode < STATS_CH_FIRST + STATS_CH_SPAN)
		row = stats_ch_rows[opcode - STATS_CH_FIRST];
	return (int)row - 1;
}

const char *stats_op_name(enum stats_op op)
{
	return stats_ops[op].name;
}

bool stats_op_is_update(enum stats_op op)
{
	return stats_ops[op].update;
}

/* ---- the workers' counters (owner side) ------------------------------------------ */

void worker_stats_init(struct worker_stats *ws)
{
	memset(ws, 0, sizeof *ws);
	atomic_store(&ws->latency_min_us, UINT64_MAX);
	pthread_once(&stats_rows_once, stats_rows_build);
}

void worker_stats_reset_to(struct worker_stats *ws, uint64_t gen)
{
	/* Zero first, then publish the generation: a reader that sees the new generation
	 * sees zeroed (or newer) counters. */
	atomic_store_explicit(&ws->packets_received, 0, memory_order_relaxed);
	atomic_store_explicit(&ws->packets_sent, 0, memory_order_relaxed);
	atomic_store_explicit(&ws->latency_count, 0, memory_order_relaxed);
	atomic_store_explicit(&ws->latency_sum_us, 0, memory_order_relaxed);
	atomic_store_explicit(&ws->latency_min_us, UINT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&ws->latency_max_us, 0, memory_order_relaxed);
	atomic_store_explicit(&ws->reset_gen, gen, memory_order_release);
}

void stats_record_latency(struct worker_stats *ws, const _Atomic uint64_t *reset_gen, int32_t opcode, uint64_t us)
{
	worker_stats_sync(ws, reset_gen);
	stats_add(&ws->latency_count, 1);
	stats_add(&ws->latency_sum_us, us);
	if (us < atomic_load_explicit(&ws->latency_min_us, memory_order_relaxed))
		atomic_store_explicit(&ws->latency_min_us, us, memory_order_relaxed);
	if (us > atomic_load_explicit(&ws->latency_max_us, memory_order_relaxed))
		atomic_store_explicit(&ws->latency_max_us, us, memory_order_relaxed);
	int op = stats_op_of(opcode);
	if (op >= 0)
		rk_hist_record(&ws->op_latency_us[op], us);
}

/* ---- readers ------------------------------------------------------------------------- */

void stats_reset(struct server *srv)
{
	atomic_fetch_add(&srv->stats.reset_gen, 1);
}

void stats_op_latency_read_add(struct server *srv, enum stats_op op, struct rk_hist_snap *acc)
{
	for (int i = 0; i < srv->worker_count; i++)
		rk_hist_read_add(&srv->workers[i]->stats.op_latency_us[op], acc);
}

static uint64_t load(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static int open_fd_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

void stats_gather(struct server *srv, struct stats_snapshot *out)
{
	memset(out, 0, sizeof *out);
	store_stats(srv->store, &out->store);
	raft_pipeline_stats(srv->raft, &out->raft);
	uint64_t gen = atomic_load(&srv->stats.reset_gen);
	uint64_t lat_count = 0, lat_sum = 0, lat_min = UINT64_MAX, lat_max = 0;
	for (int i = 0; i < srv->worker_count; i++) {
		const struct worker *w = srv->workers[i];
		const struct worker_stats *ws = &w->stats;
		out->connections += (int)w->conn_count;
		out->recv_buffers += atomic_load_explicit(&w->buf_provided, memory_order_relaxed);
		out->bytes_received += load(&ws->bytes_received);
		out->connection_requests += load(&ws->connection_requests);
		out->reads_served += load(&ws->reads_served);
		if (atomic_load_explicit(&ws->reset_gen, memory_order_acquire) != gen)
			continue; /* counted from before the last srst: zero until the worker catches up */
		out->packets_received += load(&ws->packets_received);
		out->packets_sent += load(&ws->packets_sent);
		lat_count += load(&ws->latency_count);
		lat_sum += load(&ws->latency_sum_us);
		uint64_t mn = load(&ws->latency_min_us), mx = load(&ws->latency_max_us);
		lat_min = mn < lat_min ? mn : lat_min;
		lat_max = mx > lat_max ? mx : lat_max;
	}
	out->latency_min_ms = lat_count && lat_min != UINT64_MAX ? lat_min / 1000 : 0;
	out->latency_max_ms = lat_max / 1000;
	out->latency_avg_ms = lat_count ? (double)lat_sum / (double)lat_count / 1000.0 : 0.0;
	out->auth_failed = load(&srv->stats.auth_failed);
	out->connections_refused = load(&srv->stats.connections_refused);
	out->frames_rejected = load(&srv->stats.frames_rejected);
	out->outstanding = atomic_load(&srv->global_outstanding);
	out->start_ms = srv->start_ms;
	out->uptime_ms = rk_now_ms() - srv->start_ms;
	out->open_fds = open_fd_count();
	struct rlimit rl = { 0, 0 };
	getrlimit(RLIMIT_NOFILE, &rl);
	out->max_fds = (uint64_t)rl.rlim_cur;
	out->worker_count = srv->worker_count;
}

const char *stats_mode(const struct stats_snapshot *s)
{
	/* ZooKeeper's names: standalone, leader, follower (also while no leader is known). */
	if (s->raft.voter_count <= 1)
		return "standalone";
	return s->raft.leading ? "leader" : "follower";
}
