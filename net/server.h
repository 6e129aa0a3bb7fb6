/*
 * server.h — the process: configuration, the store, the workers, the raft thread,
 * and the counters every thread updates.
 *
 * Threads
 *   main      parses config, builds everything, waits for SIGTERM/SIGINT, stops all.
 *   w0..wN-1  net/worker.c: one per CPU, pinned, each owning an io_uring, a listener
 *             (SO_REUSEPORT), its connections and the sessions attached to them.
 *   raft      raft/pipeline.c: orders all writes, makes them durable, applies them.
 *
 * Everything here is either immutable after server_start() or atomic.
 */
#ifndef RK_SERVER_H
#define RK_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/config.h"

struct hub;
struct store;
struct worker;
struct raft_pipeline;

#define RK_WORKERS_MAX 64

/* Rare events, counted by any worker. The per-request counters are each worker's own
 * (struct worker_stats, net/stats.h). */
struct server_stats {
	_Atomic uint64_t auth_failed;
	_Atomic uint64_t connections_refused;
	_Atomic uint64_t frames_rejected;
	_Atomic uint64_t reset_gen; /* srst's generation (net/stats.h) */
};

struct server {
	struct rk_config cfg;
	struct store *store;
	struct hub *hub;            /* the workers' queues to the raft thread; hub->stopping */
	struct raft_pipeline *raft; /* for its statistics only (4lw) */
	int worker_count;
	struct worker *workers[RK_WORKERS_MAX];
	_Atomic int64_t global_outstanding; /* writes proposed and not yet answered */
	_Atomic int64_t next_session_id;
	int64_t start_ms;
	int32_t min_session_timeout_ms;
	int32_t max_session_timeout_ms;
	uint8_t session_secret[16];
	struct server_stats stats;
	/* Connections per client address (maxClientCnxns), shared by all workers. */
	pthread_mutex_t ip_lock;
	struct ip_count *ip_counts;
	uint32_t ip_counts_cap;
};


/* maxClientCnxns: takes one slot for addr (IPv4/IPv6 bytes), or returns false. */
bool server_ip_acquire(struct server *srv, const uint8_t *addr, int addr_len);
void server_ip_release(struct server *srv, const uint8_t *addr, int addr_len);
int64_t server_session_id_next(struct server *srv);
enum server_listen_mode {
	SERVER_LISTEN_ALONE,       /* the port's one listener */
	SERVER_LISTEN_GROUP_FIRST, /* the first of a SO_REUSEPORT group: no one else may listen there */
	SERVER_LISTEN_GROUP,       /* another of the group */
};

/* A TCP listener on host (IPv4 or IPv6 literal):port; `what` names it in the log. A
 * port still held by a server killed just before is waited for (core/listen.h).
 * 0 or -errno (logged). */
int server_listen_tcp(const char *host, uint16_t port, enum server_listen_mode mode, const char *what, int *fd_out);

#endif
