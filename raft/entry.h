/*
 * entry.h — the payload of one log entry: a client write exactly as the client sent
 * it, plus what the leader decided for it. Replicas apply entries; they never see
 * connections.
 *
 * Layout (big-endian, version 3):
 *   0  int64  time_ms      wall clock chosen by the proposing server when it proposed
 *   8  int64  session_id
 *   16 int32  opcode       enum zk_op (incl. createSession -10, closeSession -11)
 *   20 uint8  version      RK_ENTRY_VERSION
 *   21 uint8  flags        bit 0: caller is super; bit 1: the server's own entry
 *                          (expiry, sweeps, reports), not a client's request
 *   22 uint8  ids_count    <= RK_ENTRY_IDS_MAX
 *   23 uint64 origin       the proposal's id: proposing server id << 48 | a sequence
 *                          number of that server's (see entry_origin_make); 0: none
 *   31 ids    ids_count × (ustring scheme, ustring id): the caller's auth identities
 *   .. body   the request record (after the RequestHeader), to the end
 * Version 1 (written before origins existed) has no origin field: ids start at 23,
 * and it decodes with origin 0. Version 2 has version 3's layout without flag bit 1:
 * its entries are not checked for the session's owner (they were applied without
 * that check). Every version replays.
 *
 * The origin lets the server that proposed an entry recognise it when it applies,
 * whoever led when it was appended (a follower forwards its clients' writes): the
 * reply goes to the client that sent it, and an own proposal that never shows up
 * (lost with a deposed leader) is detected when a later one of the same server does.
 */
#ifndef RK_ENTRY_H
#define RK_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"
#include "store/store.h"

#define RK_ENTRY_VERSION 3
/*
 * RingKeeper's own entry (no client sends it: a client's unknown opcode closes its
 * connection): the sessions whose clients a server kept alive since its last report.
 * Body: int count, count × long session id. Applied on every server as a remote touch
 * (store_session_touch_remote); only the leader acts on deadlines.
 */
#define RK_OP_SESSIONS_ALIVE (-20)
/*
 * RingKeeper's own entry: the session's client reconnected to the proposing server,
 * which now owns it (body empty). Writes that other servers propose for the session
 * after it get SESSIONMOVED, and their connections close (ZooKeeper's ZOOKEEPER-710
 * rule: a moved session's old connection is torn down).
 */
#define RK_OP_SESSION_MOVE (-21)
/*
 * RingKeeper's own entry: the proposing server asks to lead (rqld on a follower; body
 * empty). The leader that applies it hands leadership over to that server.
 */
#define RK_OP_LEADER_REQUEST (-22)
#define RK_ENTRY_FLAG_SUPER 1
#define RK_ENTRY_FLAG_SERVER 2
#define RK_ENTRY_VERSION_OFFSET 20
#define RK_ENTRY_VERSION_ORIGIN 2 /* the first version with an origin */
#define RK_ENTRY_FLAGS_OFFSET 21
#define RK_ENTRY_IDS_MAX 8
#define RK_ENTRY_HEADER_BYTES 31
#define RK_ENTRY_TIME_OFFSET 0
#define RK_ENTRY_ORIGIN_OFFSET 23
#define RK_ENTRY_ORIGIN_SEQ_BITS 48

struct rk_entry {
	int64_t time_ms;
	int64_t session_id;
	int32_t opcode;
	bool super;
	int ids_count;
	struct zk_id ids[RK_ENTRY_IDS_MAX];
	uint64_t origin; /* 0: none (version 1, or the server's own sweeps before proposing) */
	bool server_own; /* flag bit 1: not a client's request */
	bool owner_checked; /* version 3 client request: its session's owner is checked */
	const uint8_t *body;
	size_t body_len;
};

/* Appends an encoded entry (time 0, patched by the leader) to w. */
void entry_encode(struct jute_writer *w, int64_t session_id, int32_t opcode, bool super, const struct zk_id *ids,
		  int ids_count, const void *body, size_t body_len);
/* Decodes in place (views into buf). Returns 0 or -EPROTO. */
int entry_decode(struct rk_entry *e, const uint8_t *buf, size_t len);
void entry_set_time(uint8_t *buf, int64_t time_ms);
/* Stamps the origin of an encoded (current version) entry; the proposing server does it. */
void entry_set_origin(uint8_t *buf, uint64_t origin);
/* The origin of an encoded entry without decoding the rest: 0 when it has none
 * (version 1) or is not an entry (too short, an unknown version). */
uint64_t entry_origin(const uint8_t *buf, size_t len);
/* Marks an encoded entry as the server's own (RK_ENTRY_FLAG_SERVER). */
void entry_set_server_own(uint8_t *buf);

#define RK_ENTRY_ORIGIN_SEQ_MASK ((1ULL << RK_ENTRY_ORIGIN_SEQ_BITS) - 1)

static inline uint64_t entry_origin_make(uint32_t server_id, uint64_t seq)
{
	return (uint64_t)(server_id & 0xffff) << RK_ENTRY_ORIGIN_SEQ_BITS | (seq & RK_ENTRY_ORIGIN_SEQ_MASK);
}

/* The server that proposed it (its id's low 16 bits); 0 for no origin. */
static inline uint32_t entry_origin_server(uint64_t origin)
{
	return (uint32_t)(origin >> RK_ENTRY_ORIGIN_SEQ_BITS);
}

static inline uint64_t entry_origin_seq(uint64_t origin)
{
	return origin & RK_ENTRY_ORIGIN_SEQ_MASK;
}

/*
 * Sequence number a comes before b. The numbers are 48 bits of wall-clock
 * microseconds (raft/pipeline_recover.c), which wrap every 8.9 years, so they compare
 * as serial numbers (RFC 1982): a before b when b is less than half the space
 * (2^47 us, 4.46 years) ahead of a, counting across the wrap. Only numbers of one
 * server are compared, those of one run with each other or with the start of the
 * run; an entry of an earlier run is compared only when it commits after the restart,
 * and one 4.46 years old would need a cluster stopped for that long.
 */
static inline bool entry_origin_seq_before(uint64_t a, uint64_t b)
{
	uint64_t ahead = (b - a) & RK_ENTRY_ORIGIN_SEQ_MASK;
	return ahead != 0 && ahead < (1ULL << (RK_ENTRY_ORIGIN_SEQ_BITS - 1));
}

/* Where a run's numbering starts: the clock's number (microseconds), or the last
 * number of this server's proposals in its log (own_seen) when the clock is not after
 * it (set back across the restart), so every number of the run is after both. */
static inline uint64_t entry_origin_seq_start(uint64_t clock_us, bool own_seen, uint64_t own_last)
{
	uint64_t seq = clock_us & RK_ENTRY_ORIGIN_SEQ_MASK;
	return own_seen && !entry_origin_seq_before(own_last, seq) ? own_last : seq;
}

#endif
