/*
 * worker.h — one pinned thread per CPU, each owning an io_uring, a listener, its
 * connections and the sessions attached to them. See worker.c for the loop.
 */
#ifndef RK_WORKER_H
#define RK_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"
#include "net/http.h"
#include "net/stats.h"

struct server;
struct conn;
struct conn_reap;
struct rk_msg;

#define WORKER_CONNS_MAX 16384
#define WORKER_RECV_BUF_BYTES 16384
#define WORKER_RECV_BUF_COUNT 512
/* Buffers the ring starts with, and adds each time a recv finds it empty (ENOBUFS):
 * the kernel takes them in ring order, so every buffer ever in the ring gets touched;
 * a worker with few busy connections touches 1 MB, not 8. */
#define WORKER_RECV_BUF_STEP 64
#define WORKER_RING_ENTRIES 4096
/* The worker's scratch writer (proposals, read replies): a read reply up to this size
 * is sent whole, as ZooKeeper does; a larger one is answered SYSTEMERROR. */
#define WORKER_SCRATCH_BYTES_MAX (32u << 20)

struct worker {
	int index;
	struct server *srv;
	pthread_t thread;
	struct io_uring ring;
	int ring_fd;
	int listen_fd;
	bool accept_armed;
	/* provided-buffer ring for multishot recv */
	struct io_uring_buf_ring *buf_ring;
	uint8_t *buf_base;
	int buf_group;
	/* Buffers 0 .. buf_provided - 1 have been put in the ring. Written by the worker,
	 * read by mntr and /metrics on other threads. */
	_Atomic unsigned buf_provided;
	bool buf_short;        /* a recv found the ring empty this turn */
	/* its queues to and from the raft thread: port `index` of srv->hub (core/hub.h) */
	/* connections: slot table, generation per slot */
	struct conn **conns;
	uint32_t *conn_gen;
	uint32_t *free_slots;
	uint32_t free_count;
	uint32_t conn_count;
	/* lists the loop works through after each batch of completions */
	struct conn *send_list;  /* conns with bytes to send and no send in flight */
	struct conn *ready_list; /* conns whose deferred requests may run now */
	struct conn *stalled;    /* conns with unparsed input held back by a limit */
	struct conn_reap *reap_list; /* closed conns waiting for their in-flight ops */
	struct jute_writer scratch;
	int64_t now_ms; /* cached per loop turn */
	/* 4lw enumeration of this worker's conns from other threads */
	pthread_mutex_t registry_lock;
	_Atomic uint64_t sqe_full_count;
	struct http_server *http; /* /metrics, on worker 0 when it is served (net/http.h) */
	/* this worker's request counters and latency histograms (net/stats.h) */
	_Alignas(64) struct worker_stats stats;
};

int worker_create(struct server *srv, int index, struct worker **out);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);
/* Before worker_start: this worker also serves HTTP on listen_fd (taken over) with
 * `render` as the body of GET /metrics. 0 or -errno. */
int worker_serve_http(struct worker *w, int listen_fd, http_render_fn render, void *render_ctx);

/* Used by net/conn.c on the worker thread. */
struct io_uring_sqe *worker_get_sqe(struct worker *w);
void worker_conn_mark_send(struct worker *w, struct conn *c);
void worker_conn_mark_ready(struct worker *w, struct conn *c);
void worker_conn_mark_stalled(struct worker *w, struct conn *c);
/* Handles every message waiting from the raft thread (never frees a conn). */
void worker_drain_inbound(struct worker *w);
/*
 * Handles the waiting messages in queue order up to the first one for a zxid above
 * `zxid` (net/conn.h, invariant 2). The applier queues in zxid order, and queues a
 * change's notifications before it publishes the change's zxid, so every message for
 * a zxid <= `zxid` is already queued when the caller saw `zxid` in the store.
 */
void worker_drain_inbound_upto(struct worker *w, int64_t zxid);
void worker_conn_close(struct worker *w, struct conn *c);
struct conn *worker_conn_lookup(struct worker *w, uint64_t conn_id);
/* Pushes a message to the raft thread; false if the queue is full. */
bool worker_send_to_raft(struct worker *w, struct rk_msg *msg);

#endif
