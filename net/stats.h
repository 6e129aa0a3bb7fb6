/*
 * stats.h — the server's statistics, gathered once for every reader: the `mntr`,
 * `srvr` and `stat` four-letter words (net/fourlw.c) and the Prometheus /metrics
 * endpoint (net/metrics.c) print the same struct stats_snapshot.
 *
 * Where the numbers live
 *   - per worker (struct worker_stats, in struct worker): packets, request latencies
 *     (ZooKeeper's min/avg/max and a histogram per opcode), bytes received,
 *     handshakes, reads. Written by that worker only, on its request path, with plain
 *     relaxed stores (no lock, no locked instruction, no cache line shared with another
 *     writer); summed by the reader.
 *   - process-wide atomics in struct server_stats (net/server.h): rare events (auth
 *     failures, refused connections, rejected frames) and the srst generation.
 *   - the store's counters (store_stats) and the raft thread's (raft_pipeline_stats).
 *
 * srst (ZooKeeper's "reset server statistics") resets the packet counts and min/avg/max
 * latency without touching any worker's memory: it bumps server_stats.reset_gen. A
 * worker notices the new generation the next time it records and zeroes its
 * resettable counters itself; until then a reader counts that worker's resettable
 * counters as zero (their generation is older). The histograms are never reset: they
 * feed Prometheus, whose counters only grow.
 *
 * Thread: stats_record_* and worker_stats_* on the owning worker; everything else on
 * any thread.
 */
#ifndef RK_NET_STATS_H
#define RK_NET_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/hist.h"
#include "raft/pipeline.h"
#include "store/store.h"

struct server;

/* The opcodes with a latency histogram of their own (one row each in stats.c). */
enum stats_op {
	STATS_OP_CREATE, STATS_OP_DELETE, STATS_OP_EXISTS, STATS_OP_GET_DATA, STATS_OP_SET_DATA,
	STATS_OP_GET_ACL, STATS_OP_SET_ACL, STATS_OP_GET_CHILDREN, STATS_OP_SYNC, STATS_OP_PING,
	STATS_OP_GET_CHILDREN2, STATS_OP_CHECK, STATS_OP_MULTI, STATS_OP_CREATE2, STATS_OP_RECONFIG,
	STATS_OP_CHECK_WATCHES, STATS_OP_REMOVE_WATCHES, STATS_OP_CREATE_CONTAINER,
	STATS_OP_DELETE_CONTAINER, STATS_OP_CREATE_TTL, STATS_OP_MULTI_READ, STATS_OP_AUTH,
	STATS_OP_SET_WATCHES, STATS_OP_SASL, STATS_OP_GET_EPHEMERALS, STATS_OP_GET_ALL_CHILDREN_NUMBER,
	STATS_OP_SET_WATCHES2, STATS_OP_ADD_WATCH, STATS_OP_WHO_AM_I, STATS_OP_CREATE_SESSION,
	STATS_OP_CLOSE_SESSION, STATS_OP_FILTERED_LIST, STATS_OP_CHECK_NOT_EXISTS,
	STATS_OP_CREATE_IF_NOT_EXISTS, STATS_OP_REMOVE_RECURSIVE, STATS_OP_CHECK_STAT,
	STATS_OP_TRY_REMOVE, STATS_OP_FILTERED_LIST_WITH_STATS_AND_DATA, STATS_OP_LIST_RECURSIVE,
	STATS_OP_COUNT
};

/* The row of an opcode, or -1 (unknown opcodes are answered and closed, not timed). */
int stats_op_of(int32_t opcode);
/* ZooKeeper's name of the opcode (OpCode's constant: "getData"). */
const char *stats_op_name(enum stats_op op);
/* Whether ZooKeeper logs the request as a transaction (it has a txn header): its
 * latency goes to `updatelatency`, any other request's to `readlatency`. */
bool stats_op_is_update(enum stats_op op);

struct worker_stats {
	/* Reset by srst: valid only while reset_gen equals server_stats.reset_gen. */
	_Atomic uint64_t reset_gen;
	_Atomic uint64_t packets_received;
	_Atomic uint64_t packets_sent;
	_Atomic uint64_t latency_count;
	_Atomic uint64_t latency_sum_us;
	_Atomic uint64_t latency_min_us; /* UINT64_MAX: none yet */
	_Atomic uint64_t latency_max_us;
	/* Never reset. */
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t connection_requests; /* ConnectRequests (ZooKeeper's connection_request_count) */
	_Atomic uint64_t reads_served;
	struct rk_hist op_latency_us[STATS_OP_COUNT]; /* answered requests, parse to reply */
};

void worker_stats_init(struct worker_stats *ws);

/* The owner adds n to one of its counters (a plain add: it is the only writer). */
static inline void stats_add(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n, memory_order_relaxed);
}

void worker_stats_reset_to(struct worker_stats *ws, uint64_t gen);

/* The owner, before it touches a resettable counter: catch up with srst. */
static inline void worker_stats_sync(struct worker_stats *ws, const _Atomic uint64_t *reset_gen)
{
	uint64_t gen = atomic_load_explicit(reset_gen, memory_order_relaxed);
	if (gen != atomic_load_explicit(&ws->reset_gen, memory_order_relaxed))
		worker_stats_reset_to(ws, gen);
}

/* The owner: adds n to a counter srst resets. */
static inline void stats_add_resettable(struct worker_stats *ws, const _Atomic uint64_t *reset_gen,
					_Atomic uint64_t *counter, uint64_t n)
{
	worker_stats_sync(ws, reset_gen);
	stats_add(counter, n);
}

/* The owner: a request of `opcode` answered `us` after it was parsed. */
void stats_record_latency(struct worker_stats *ws, const _Atomic uint64_t *reset_gen, int32_t opcode, uint64_t us);

/* Everything the four-letter words and /metrics print, read at one moment. */
struct stats_snapshot {
	struct store_stats store;
	struct raft_stats raft;
	/* client side, since the last srst */
	uint64_t packets_received;
	uint64_t packets_sent;
	uint64_t latency_min_ms; /* ZooKeeper's integer milliseconds */
	uint64_t latency_max_ms;
	double latency_avg_ms;
	/* client side, since the start */
	uint64_t bytes_received;
	uint64_t connection_requests;
	uint64_t reads_served;
	uint64_t auth_failed;
	uint64_t connections_refused;
	uint64_t frames_rejected;
	int connections;         /* established client connections (num_alive_connections) */
	uint64_t recv_buffers;   /* receive buffers the workers' rings have taken in (16 KiB each) */
	int64_t outstanding;     /* writes proposed, not answered */
	/* process */
	int64_t uptime_ms;
	int64_t start_ms;        /* wall clock */
	int open_fds;
	uint64_t max_fds;
	int worker_count;
};

void stats_gather(struct server *srv, struct stats_snapshot *out);
/* ZooKeeper's server state: standalone, leader or follower. */
const char *stats_mode(const struct stats_snapshot *s);
/* srst: the packet counts and min/avg/max latency start again from zero. */
void stats_reset(struct server *srv);
/* Adds every worker's latency histogram of `op` into acc. */
void stats_op_latency_read_add(struct server *srv, enum stats_op op, struct rk_hist_snap *acc);

#endif
