/*
 * msg.h — the messages that cross threads, always through an SPSC queue.
 *
 * Ownership: a message is malloc'ed by its producer and freed by its consumer.
 *
 *   worker ──RK_MSG_PROPOSAL────────► raft   a write: data[] = log entry payload
 *   worker ──RK_MSG_SESSION_ATTACH──► raft   session now served by conn_id (not logged)
 *   raft   ──RK_MSG_REPLY───────────► worker data[] = the reply record for conn_id, without
 *                                     its ReplyHeader: the worker frames it with xid,
 *                                     zxid and err (nothing on an error)
 *   raft   ──RK_MSG_EVENT───────────► worker data[] = the path of a fired watch of conn_id,
 *                                     event_type its type; the worker frames the
 *                                     WatcherEvent
 *   raft   ──RK_MSG_SESSION_CREATED─► worker createSession committed (err, zxid)
 *   raft   ──RK_MSG_SESSION_GONE────► every worker: close the conns of session_id,
 *                                     except conn_id (expired, closed, or moved);
 *                                     session_id 0: every client connection (the
 *                                     server stopped serving: no leader)
 *   worker ──RK_MSG_LEADERSHIP──────► raft   rqld (err = RK_LEAD_REQUEST) or ydld
 *                                     (err = RK_LEAD_YIELD); no answer
 *   raft   ──RK_MSG_SESSION_RECLAIM─► every worker: the move of session_id to this
 *                                     server was lost; a connection of it here, if
 *                                     any, announces its attach again
 *
 * Messages to one worker are queued in zxid order (the applier's order), and a change's
 * events before its zxid is published (net/conn.h, invariant 2).
 *
 * conn_id = worker index << 48 | generation << 24 | slot: it names the owning worker
 * and survives slot reuse (a stale id finds a different generation and is dropped).
 */
#ifndef RK_MSG_H
#define RK_MSG_H

#include <stdint.h>

enum rk_msg_kind {
	RK_MSG_PROPOSAL = 1,
	RK_MSG_SESSION_ATTACH,
	RK_MSG_REPLY,
	RK_MSG_EVENT,
	RK_MSG_SESSION_CREATED,
	RK_MSG_SESSION_GONE,
	RK_MSG_LEADERSHIP,
	RK_MSG_SESSION_RECLAIM,
};

enum rk_lead_request {
	RK_LEAD_REQUEST = 1, /* rqld: this server asks to lead */
	RK_LEAD_YIELD,       /* ydld: the leader hands over to its most up-to-date follower */
};

enum rk_msg_flag {
	RK_MSG_CLOSE_AFTER = 1, /* reply: close the connection once it is sent */
	RK_MSG_REFUSED = 2,     /* proposal: not logged (err says why); answer in order */
	RK_MSG_SYNC = 4,        /* proposal: a sync, answered through a read index, never logged */
};

struct rk_msg {
	uint16_t kind;  /* enum rk_msg_kind */
	uint16_t flags; /* enum rk_msg_flag */
	int32_t xid;
	int32_t err;
	int32_t event_type; /* RK_MSG_EVENT: enum zk_event_type */
	uint32_t len; /* bytes in data[] */
	int32_t opcode; /* RK_MSG_REPLY, RK_MSG_SESSION_CREATED: the request's (latency stats) */
	uint64_t conn_id;
	int64_t session_id;
	int64_t zxid;
	uint64_t start_us; /* when the worker parsed the request, for latency stats */
	uint8_t data[];
};

#define RK_CONN_ID_NONE UINT64_MAX
static inline uint32_t rk_conn_id_worker(uint64_t conn_id) { return (uint32_t)(conn_id >> 48); }

#endif
