/*
 * transport.h — the peer transport: carries struct raft_msg (raft/core.h) between the
 * servers of a cluster over TCP, driven by its owner's io_uring (the raft thread's).
 * The design note (wire format, link rules, the state of a link, limits) is at the top
 * of transport.c.
 *
 * Thread: everything runs on the owner's thread, the one that submits to `ring`. The
 * transport has no lock of its own, and no thread but a short-lived one per peer name
 * being looked up (getaddrinfo blocks; transport.c rule 5).
 *
 * The owner's loop:
 *
 *     transport_create(&cfg, ring, ud_prefix, &t)
 *     for (;;) {
 *         transport_tick(t, now_ms)          dials, redials after backoff, times out
 *                                            handshakes (every few ms .. 100 ms)
 *         transport_send(t, m) ...           encodes m into its peer's queue now
 *         transport_flush(t)                 one send per connection with queued bytes
 *         io_uring_submit_and_wait(ring)     the owner submits the transport's SQEs
 *         for each CQE with transport_user_data_match(ud_prefix, cqe->user_data):
 *             transport_on_cqe(t, cqe)       may call cfg.on_msg for received messages
 *     }
 *     transport_destroy(t)
 */
#ifndef RK_RAFT_TRANSPORT_H
#define RK_RAFT_TRANSPORT_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "raft/core.h"

#define TRANSPORT_PEERS_MAX CONFIG_SERVERS_MAX
/* The transport owns the low TRANSPORT_USER_DATA_BITS bits of its CQEs' user_data. */
#define TRANSPORT_USER_DATA_BITS 32
#define TRANSPORT_USER_DATA_MASK ((UINT64_C(1) << TRANSPORT_USER_DATA_BITS) - 1)

#define TRANSPORT_HELLO_MAGIC 0x524B5054u /* "RKPT" */
#define TRANSPORT_PROTOCOL_VERSION 1
#define TRANSPORT_HELLO_BYTES 32

/* Defaults of struct transport_config's limits (transport_config_default). */
#define TRANSPORT_CONTROL_QUEUE_BYTES_MAX (1u << 20)
#define TRANSPORT_CONTROL_QUEUE_MSGS_MAX 4096
#define TRANSPORT_DATA_QUEUE_BYTES_MAX (64u << 20)
#define TRANSPORT_DATA_QUEUE_MSGS_MAX 4096
#define TRANSPORT_FRAME_BYTES_MAX (16u << 20)
#define TRANSPORT_BACKOFF_MS_MIN 50
#define TRANSPORT_BACKOFF_MS_MAX 2000
#define TRANSPORT_HANDSHAKE_TIMEOUT_MS 2000

/* Two connections per peer: votes and heartbeats never wait behind bulk appends. */
enum transport_link_kind {
	TRANSPORT_LINK_CONTROL = 0, /* everything but APPEND and PROP */
	TRANSPORT_LINK_DATA = 1,    /* APPEND, PROP */
};
#define TRANSPORT_LINKS 2

struct transport_config {
	uint32_t self_id;                     /* one of servers[] */
	const struct config_server *servers;  /* copied by transport_create */
	uint32_t server_count;                /* 2..TRANSPORT_PEERS_MAX */
	/* per peer and link: encoded bytes and messages queued and not yet sent */
	size_t queue_bytes_max[TRANSPORT_LINKS];
	uint32_t queue_msgs_max[TRANSPORT_LINKS];
	size_t frame_bytes_max;   /* largest frame sent or accepted; <= every queue_bytes_max */
	int entries_max;          /* entries per message accepted, 1..RAFT_MSG_ENTRIES_MAX */
	uint32_t backoff_ms_min;  /* first redial delay; doubles per failure ... */
	uint32_t backoff_ms_max;  /* ... up to this; each delay drawn from [d/2, d] */
	uint32_t handshake_timeout_ms; /* connect + hello exchange */
	uint64_t seed;            /* backoff jitter */
	/* A message from a peer, valid only during the call (its entries point into the
	 * receive buffer). Called from transport_on_cqe; may call transport_send and
	 * transport_flush, not transport_destroy. */
	void (*on_msg)(void *ctx, const struct raft_msg *m);
	void *ctx;
};

struct transport_peer_status {
	uint32_t id;
	bool connected;                        /* both links up */
	bool link_up[TRANSPORT_LINKS];
	size_t queued_bytes[TRANSPORT_LINKS];  /* encoded, not yet sent */
	uint32_t queued_msgs[TRANSPORT_LINKS];
	uint64_t bytes_sent, bytes_received;
	uint64_t msgs_sent, msgs_received;
	uint64_t msgs_dropped;                 /* link down, queue full, closed with them */
	uint64_t dial_attempts;                /* connects started (dialing side), both links */
	uint64_t links_established;            /* handshakes completed, both links */
	uint64_t reconnects;                   /* links established after a loss */
	uint64_t handshakes_refused;           /* refused by us, or the peer's answer was */
	uint64_t protocol_errors;              /* bad frames: the connection was closed */
	uint64_t lookups;                      /* name lookups started (dialing side) */
	uint64_t lookup_failures;              /* ... that did not resolve */
};

struct transport;

/* Defaults for server self_id among servers (the array must outlive transport_create). */
void transport_config_default(struct transport_config *cfg, uint32_t self_id,
			      const struct config_server *servers, uint32_t server_count);

/*
 * Binds and listens on our peer port (our own host resolved here, blocking; all
 * addresses when it does not resolve) and arms the accept on `ring`. Peers' names are
 * looked up later, off the owner's thread, before each dial that needs it, so a peer
 * whose name does not resolve yet does not stop the start. ud_prefix: the high bits of
 * every SQE's user_data (its low TRANSPORT_USER_DATA_BITS bits must be 0). Dialing
 * starts at the first transport_tick. 0; -EINVAL (config; logged), -EADDRINUSE and
 * other -errno of socket/bind/listen (logged), -ENOMEM.
 */
int transport_create(const struct transport_config *cfg, struct io_uring *ring, uint64_t ud_prefix,
		     struct transport **out);

/*
 * Closes every connection and waits for the transport's own operations to finish: it
 * consumes CQEs of `ring` itself and DROPS any CQE that is not the transport's, so
 * call it when the owner expects nothing else from the ring (shutdown), or give the
 * transport a ring of its own. on_msg is not called any more. NULL is fine.
 */
void transport_destroy(struct transport *t);

static inline bool transport_user_data_match(uint64_t ud_prefix, uint64_t user_data)
{
	return (user_data & ~TRANSPORT_USER_DATA_MASK) == ud_prefix;
}

/*
 * Encodes m into the queue of the link to m->to (by type, see enum
 * transport_link_kind); m need live only for the call. 0 queued; a message not queued
 * is counted in msgs_dropped (Raft retries): -ENOTCONN the link is not up, -ENOBUFS
 * its queue is full, -EMSGSIZE larger than frame_bytes_max; -EINVAL unknown peer or a
 * malformed message (not counted). Nothing goes out before transport_flush.
 */
int transport_send(struct transport *t, const struct raft_msg *m);

/* Issues one send for every connection with queued bytes and none in flight; returns
 * the number of SQEs prepared (the owner submits them). */
int transport_flush(struct transport *t);

/* A CQE whose user_data matched (transport_user_data_match). */
void transport_on_cqe(struct transport *t, const struct io_uring_cqe *cqe);

/* Time, from the owner's monotonic clock (ms): dials peers due, times out handshakes. */
void transport_tick(struct transport *t, int64_t now_ms);

/* 0, or -ENOENT when id is not a peer. */
int transport_peer_status(const struct transport *t, uint32_t id, struct transport_peer_status *out);

/* The cluster identity: a hash of the sorted server list (ids, hosts, peer ports). */
uint64_t transport_cluster_id(const struct config_server *servers, uint32_t server_count);

/* The handshake each side sends first on a connection (format in transport.c). */
struct transport_hello {
	uint32_t magic;
	uint16_t version;
	uint8_t link_kind; /* enum transport_link_kind + 1 on the wire */
	uint32_t sender_id;
	uint32_t receiver_id;
	uint64_t cluster_id;
};
void transport_hello_encode(const struct transport_hello *h, uint8_t out[TRANSPORT_HELLO_BYTES]);
/* 0, or -EPROTO (bad checksum or reserved bytes); fields are not checked here. */
int transport_hello_decode(const uint8_t in[TRANSPORT_HELLO_BYTES], struct transport_hello *h);

#endif
