/*
 * conn.h — one client connection and the session front end it carries.
 *
 * Owner: the worker thread that accepted it; nothing else touches a conn, except
 * 4lw enumeration (cons/stat) which reads its counters under the worker's
 * registry_lock.
 *
 * Lifecycle
 *
 *   accept ──► NEW ──4lw word──► (answer, CLOSING)   stmk: after its 8-byte argument
 *               │ ConnectRequest
 *               ├─ sessionId 0 ──► HANDSHAKE (createSession proposed; input held)
 *               │                    │ committed
 *               └─ reconnect ok ─────┴──► ESTABLISHED ──close/error──► CLOSING ─► freed
 *
 *   CLOSING with close_after_flush (an answer, then close) ends gracefully: FIN after the
 *   last byte, input dropped until the peer's FIN (lingering), then freed; any other
 *   CLOSING is an abort (shutdown both ways). core/worker.c explains why.
 *
 * Request order (invariants)
 *   1. Replies leave in request order. Writes go to the raft thread in arrival order and
 *      come back in that order; a read (or ping, auth, setWatches) that arrives while a
 *      write of this conn is unanswered waits in the deferred FIFO, and so does every
 *      request behind it.
 *   2. Replies and notifications leave in the order a single-threaded server would
 *      produce them, in both directions:
 *      a. a notification for a change at zxid z goes before any reply that reflects z
 *         (a client never sees new data before the event of a watch it held on it),
 *         and before the reply to a ping or any worker-answered request made after
 *         another session's write at z was acknowledged;
 *      b. a notification for a change the read did not reflect goes after that read's
 *         reply (clients register a watcher when the reply arrives and drop an
 *         earlier event, so the watch set by the read would be lost for good).
 *      How: a read takes the zxid its state is at (store_read's seen_zxid, loaded under
 *      the lock that also orders its watch registration against the applier), sends
 *      ahead of its reply only the queued messages up to that zxid
 *      (worker_drain_inbound_upto), and puts that zxid in the reply header. The
 *      applier queues a change's notifications before it publishes the change's zxid,
 *      and the queue is in zxid order, so (a) holds; a change after the read has a
 *      larger zxid and stays queued, so (b) holds. addWatch does the same; other
 *      worker-answered requests use the store's current zxid. Nothing here depends on
 *      who proposed the change, so it holds on a follower too.
 *   3. outstanding_writes + deferred_count <= maxOutstandingPerConnection; past that
 *      the conn stops parsing input (it keeps the bytes; the socket backs up).
 */
#ifndef RK_CONN_H
#define RK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/jute.h"

struct worker;
struct rk_msg;

enum conn_state {
	CONN_NEW,
	CONN_HANDSHAKE,
	CONN_ESTABLISHED,
	CONN_CLOSING,
};

#define CONN_AUTH_IDS_MAX 8

struct deferred_req {
	struct deferred_req *next;
	int32_t xid;
	int32_t opcode;
	uint32_t len;
	uint64_t start_us;
	uint8_t body[];
};

struct conn_auth_id {
	char *scheme;
	char *id;
};

struct conn {
	uint64_t id;
	int fd;
	enum conn_state state;
	bool recv_armed;
	bool recv_paused;
	bool send_inflight;
	bool close_after_flush;
	bool shut;          /* shutdown(2) done: waiting for in-flight ops before free */
	bool peer_eof;      /* the peer's FIN came while close_after_flush output was pending */
	bool fin_sent;      /* closed gracefully: FIN after the answer; out of worker conn_count */
	bool lingering;     /* fin_sent and input dropped until the peer's FIN or the deadline */
	bool fourlw_arg_wanted; /* stmk: the 8-byte mask after the word is still coming */
	uint8_t fourlw_arg_len;
	uint8_t fourlw_arg[8];
	bool handshake_readonly_byte;
	bool in_send_list;
	bool in_ready_list;
	bool in_stalled;
	bool super;
	struct jute_writer in;          /* unparsed input */
	struct jute_writer out;         /* being filled */
	struct jute_writer out_sending; /* owned by the in-flight send */
	size_t sending_off;
	struct conn *send_next;
	struct conn *ready_next;
	struct conn *stalled_next;
	/* session */
	int64_t session_id;
	int32_t timeout_ms;
	uint8_t passwd[16];
	/* a reattach to a session not known here, waiting for a read index (conn_session.c) */
	bool revalidating;
	int32_t reval_timeout_ms;
	int64_t reval_session_id;
	uint8_t reval_passwd[16];
	int outstanding_writes;
	struct deferred_req *deferred_head;
	struct deferred_req *deferred_tail;
	int deferred_count;
	int auth_count;
	struct conn_auth_id auth[CONN_AUTH_IDS_MAX];
	/* for cons/stat */
	char peer[64];
	uint8_t addr[16];
	int addr_len;
	uint64_t packets_received;
	uint64_t packets_sent;
	int64_t established_ms;
	int64_t last_response_ms;
	int32_t last_cxid;
	int64_t last_zxid;
	int32_t last_op;
	uint64_t lat_min_us, lat_max_us, lat_sum_us, lat_count;
};

struct conn *conn_new(struct worker *w, uint64_t id, int fd);
void conn_free(struct worker *w, struct conn *c);
/* Bytes arrived from the socket. Parses and dispatches what it can. */
void conn_on_input(struct worker *w, struct conn *c, const uint8_t *data, size_t len);
/* Re-parses held input after a limit cleared. */
void conn_resume(struct worker *w, struct conn *c);
/* Runs deferred requests that may run now (after a write reply). */
void conn_run_deferred(struct worker *w, struct conn *c);
/* A message from the raft thread addressed to this conn. */
void conn_on_msg(struct worker *w, struct conn *c, struct rk_msg *m);
/* The raft thread is told that c serves its session now (conn_session.c); when that
 * cannot be queued, c is set to close once its output is sent (state CONN_CLOSING). */
void conn_announce_attach(struct worker *w, struct conn *c);
/* Appends raw bytes to the output and schedules a send. */
void conn_send_bytes(struct worker *w, struct conn *c, const void *data, size_t len);
bool conn_is_stalled(struct worker *w, struct conn *c);

#endif
