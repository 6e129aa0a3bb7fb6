/*
 * conn_impl.h — what conn.c and conn_session.c share; private to net/.
 * Every function runs on the connection's worker thread.
 */
#ifndef RK_CONN_IMPL_H
#define RK_CONN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct rk_msg;
struct worker;

/* conn.c */
/* A frame was appended to c->out: count it and schedule the send (closes the
 * connection when its output passed the hard limit). */
void conn_frame_done(struct worker *w, struct conn *c);
void conn_record_latency(struct worker *w, struct conn *c, int32_t opcode, uint64_t start_us);
/* Sends a request of this connection to the raft thread (a sync goes as a read-index
 * request, never logged). false: queue full or no memory (nothing was sent). */
bool conn_propose(struct worker *w, struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body, size_t len,
		  uint64_t start_us);

/* conn_reconfig.c: the error a reconfig request gets (ZooKeeper's checks, in its
 * order; membership itself never changes here). */
struct server;
int32_t conn_reconfig_answer(const struct server *srv, const struct conn *c, const uint8_t *body, size_t len);

/* conn_session.c */
/* More than one voter: another server may have created a session we have not seen. */
bool conn_in_cluster(const struct server *srv);
/* The ConnectRequest: a new session, a reattach, or a refusal. */
void conn_handshake(struct worker *w, struct conn *c, const uint8_t *body, size_t len);
/* The raft thread's answer to our createSession. */
void conn_on_session_created(struct worker *w, struct conn *c, const struct rk_msg *m);
/* The answer to the read-index sync a revalidation asked for (err ZK_OK: this server
 * has applied what was committed when it was asked). */
void conn_on_revalidated(struct worker *w, struct conn *c, int32_t err);

#endif
