/*
 * engine_int.h — the load generator's internals shared by engine.c (issuing requests,
 * checking replies, the event loop), run.c (bench_run: the threads started, the clock,
 * the results merged) and conn.c (a connection's lifecycle: connect, handshake, loss,
 * reconnect, timeouts). Not part of the bench's interface.
 *
 * Connection lifecycle
 *
 *     CONNECTING --connect()+ConnectRequest--> HANDSHAKE --ConnectResponse--> READY
 *     READY --closeSession sent--> CLOSING --its reply--> CLOSED
 *     any state --error / EOF / wrong reply--> DEAD (outstanding requests = CONNLOSS)
 *     with --reconnect, while the run issues: --loss--> RECONNECT --backoff, next
 *         server, same session id and password, last zxid seen--> HANDSHAKE
 *
 * Thread: a struct conn and its engine_thread are touched only by that engine thread,
 * except the progress counters (relaxed atomics read by the main thread), abort_run,
 * and the timeline, which the main thread reads after the threads have joined.
 */
#ifndef RK_BENCH_ENGINE_INT_H
#define RK_BENCH_ENGINE_INT_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/bench.h"
#include "core/jute.h"
#include "core/zk_proto.h"

#define BENCH_HANDSHAKE_MS 15000
#define BENCH_DRAIN_MS 10000
#define BENCH_CLOSE_MS 3000
#define BENCH_RECV_BYTES_INITIAL (32u << 10)
#define BENCH_RECV_BYTES_MAX ((size_t)ZK_PACKET_BYTES_MAX * 16 + 4)
#define BENCH_DELETABLE_MAX 64
#define BENCH_WAIT_NS_MAX 20000000ull /* 20 ms: the loop re-checks its clock at least this often */
/* Reconnect backoff: once every server has been tried, 5 ms doubling to this, +-25%. */
#define BENCH_RECONNECT_BACKOFF_MS_MAX 100u
/* How often the watchdog looks for handshakes and reads that took too long. */
#define BENCH_WATCHDOG_NS 50000000ull

enum conn_state {
	CONN_CONNECTING,
	CONN_HANDSHAKE,
	CONN_READY,
	CONN_CLOSING,
	CONN_CLOSED,
	CONN_DEAD,
	CONN_RECONNECT, /* lost; the old socket's ops drain, then the next server is tried */
};

enum slot_kind {
	SLOT_OP,    /* a workload op: slot.op says which */
	SLOT_CLOSE, /* closeSession */
};

enum cqe_kind {
	CQE_RECV = 0,
	CQE_SEND = 1,
};

struct req_slot {
	uint64_t intended_ns;
	int32_t xid;
	uint32_t key;     /* set/get/exists/check key, or the create/delete counter */
	uint32_t counter; /* a multi's create counter */
	uint8_t kind;     /* enum slot_kind */
	uint8_t op;       /* enum bench_op */
	uint8_t expect_nonode;
	uint8_t multi_count;
	int8_t multi_types[BENCH_MULTI_OPS_MAX];
};

struct engine_thread;

struct conn {
	struct engine_thread *t;
	int fd;
	uint32_t session;
	enum conn_state state;
	bool recv_posted;
	bool send_posted;
	bool dirty;
	bool handshaken; /* the first handshake succeeded */
	uint8_t *rbuf;
	size_t rlen;
	size_t rcap;
	struct jute_writer out[2]; /* out[0] fills, out[1] is in flight */
	size_t out_sent;
	struct req_slot *slots;
	uint32_t slot_head;
	uint32_t slot_count;
	uint32_t slot_cap;
	int32_t next_xid;
	uint32_t pings_outstanding;
	uint32_t create_counter;
	int64_t seq_max;
	uint32_t stamp;
	uint32_t deletable[BENCH_DELETABLE_MAX];
	uint32_t deletable_count;
	uint64_t rng;
	char prefix[BENCH_PATH_BYTES_MAX]; /* created nodes' path prefix */
	size_t prefix_len;
	/* The session, kept across reconnects like a ZooKeeper client keeps it. */
	uint32_t server_index; /* into cfg->servers */
	int64_t session_id;    /* 0 until the first handshake, or after an expiry */
	uint8_t passwd[ZK_PASSWD_BYTES];
	int64_t last_zxid; /* highest zxid seen in a reply header */
	uint32_t attempts; /* reconnect attempts since the last READY */
	uint64_t reconnect_at_ns;
	uint64_t handshake_deadline_ns;
	uint64_t last_recv_ns;
};

struct engine_shared {
	pthread_barrier_t ready;
	pthread_barrier_t go;
	uint64_t t0_ns;
	uint64_t measure_start_ns;
	uint64_t measure_end_ns;
	uint32_t run_id;
	atomic_bool abort_run;
	_Atomic uint64_t stop_ns; /* when abort_run came from bench_stop(); 0 otherwise */
};

struct engine_thread {
	pthread_t tid;
	uint32_t index;
	const struct bench_config *cfg;
	struct engine_shared *shared;
	struct io_uring ring;
	bool ring_ok;
	struct conn *conns;
	uint32_t conn_count;
	struct conn **dirty;
	uint32_t dirty_count;
	uint8_t *value;
	uint32_t outstanding; /* slots over all conns */
	bool issuing;
	bool reconnecting_allowed; /* --reconnect and the run is issuing or draining */
	uint64_t open_issued;
	uint64_t open_period_ns;
	uint32_t open_rr;
	uint64_t open_unsent;
	uint64_t conns_lost;
	uint64_t pings_sent;
	uint64_t reconnects;       /* handshakes completed again after a loss */
	uint64_t sessions_expired; /* reconnects the server answered "expired" */
	uint32_t reconnecting;     /* conns in CONN_RECONNECT */
	uint64_t next_watchdog_ns;
	uint32_t connected;
	char key_prefix[BENCH_PATH_BYTES_MAX];
	size_t key_prefix_len;
	char list_path[BENCH_PATH_BYTES_MAX];
	size_t list_path_len;
	struct bench_op_stats *stats; /* [BENCH_OP_COUNT] */
	struct bench_timeline timeline; /* this thread's counts; buckets 0 = off */
	_Atomic uint64_t progress_done;
	_Atomic uint64_t progress_errors;
};

/* engine.c */
void conn_mark_dirty(struct conn *c);
void conn_post_recv(struct conn *c);
/* Takes the next request slot (and xid) of c. */
struct req_slot *slot_push(struct conn *c, uint64_t intended_ns, enum slot_kind kind);
void stats_error(struct engine_thread *t, const struct req_slot *s, unsigned slot_err);
void thread_flush(struct engine_thread *t);
void thread_wait(struct engine_thread *t, uint64_t wait_ns);

/* ops.c */
/* Sends one workload request on c, intended at intended_ns. */
void conn_issue(struct conn *c, uint64_t intended_ns);
/* 0 when the reply is what the request in s must get, else an error slot. */
unsigned reply_check(struct conn *c, const struct req_slot *s, int32_t err, struct jute_reader *r);

/* conn.c */
/* Allocates c's buffers and connects it to its first server (session % servers). */
int conn_open(struct engine_thread *t, struct conn *c, uint32_t session);
/* Connects every session of t and waits (bounded) for their handshakes. */
void thread_handshakes(struct engine_thread *t);
/* engine.c: an engine thread's body (its ring, handshakes, the run, the close), and
 * a sleep until a bench_now_ns() time. */
void *engine_thread_main(void *arg);
void engine_sleep_until(uint64_t when_ns);
int conn_on_handshake(struct conn *c, const uint8_t *body, size_t len);
/* The connection is lost: its requests count as CONNLOSS; DEAD, or RECONNECT. */
void conn_fail(struct conn *c);
/*
 * Reconnects what is due and fails handshakes and silent connections that took too
 * long. Returns the earliest time it needs to run again (UINT64_MAX: nothing pending).
 */
uint64_t thread_conn_upkeep(struct engine_thread *t, uint64_t now_ns);

#endif
