/*
 * transport_impl.h — the peer transport's private structures, shared by the
 * raft/transport*.c files only (the API is transport.h; the design note, link rules,
 * wire format, connection states and invariants are at the top of transport.c):
 *
 *   transport.c        lifetime (create, destroy), the CQE dispatch and the tick
 *   transport_hello.c  the handshake: hello encoding, cluster identity, checking a
 *                      peer's hello (rule 3) and bringing a link up
 *   transport_conn.c   a connection's I/O: receiving and parsing frames, the send
 *                      queues, closing; the helpers the other files share
 *   transport_dial.c   reaching peers: name lookups on their threads (rule 5),
 *                      dialing, the listener and accepting (rules 2, 4)
 *
 * Thread: everything belongs to the owner's thread, except a struct tresolve, shared
 * with its lookup thread (transport_dial.c).
 */
#ifndef RK_RAFT_TRANSPORT_IMPL_H
#define RK_RAFT_TRANSPORT_IMPL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "raft/msg_codec.h"
#include "raft/transport.h"

#define TRANSPORT_PENDING_MAX 16
#define TRANSPORT_CONNS_MAX (2 * TRANSPORT_PEERS_MAX + TRANSPORT_PENDING_MAX)
#define TRANSPORT_CHUNK_BYTES (64u << 10)
#define TRANSPORT_IOV_MAX 64
#define TRANSPORT_RX_BYTES_MIN (64u << 10)
#define TRANSPORT_PROBLEM_BYTES 160
#define SLOT_LISTENER 0xFF

static_assert(TRANSPORT_CONNS_MAX < SLOT_LISTENER, "slots fit 8 bits");

enum tconn_state {
	TCONN_FREE = 0,
	TCONN_CONNECTING,
	TCONN_HELLO,
	TCONN_UP,
	TCONN_CLOSING,
};

enum top {
	TOP_ACCEPT = 1,
	TOP_CONNECT,
	TOP_RECV,
	TOP_SEND,
	TOP_CANCEL,
};

/* Queued bytes: chunks in a list; a frame never spans two chunks. */
struct tchunk {
	struct tchunk *next;
	size_t cap, used, sent;
	uint8_t data[];
};

struct tconn {
	enum tconn_state state;
	uint16_t generation;
	int fd;
	int peer;                   /* index in peers[], -1 while an accepted one is unknown */
	enum transport_link_kind kind;
	bool dialed;                /* we dialed it (else accepted) */
	bool recv_in_flight, send_in_flight, connect_in_flight, cancel_in_flight;
	int64_t deadline_ms;        /* CONNECTING, HELLO: the handshake's end */
	struct sockaddr_storage remote;
	socklen_t remote_len;
	/* receiving */
	uint8_t *rx;
	size_t rx_cap, rx_len;
	/* sending */
	struct tchunk *tx_head, *tx_tail;
	size_t tx_bytes;            /* queued, not yet confirmed sent (invariant 2) */
	uint32_t *tx_frames;        /* FIFO of queued frames' sizes, queue_msgs_max slots */
	uint32_t tx_frames_head, tx_frames_count;
	size_t tx_front_sent;       /* bytes of the FIFO's first frame already sent */
	struct iovec iov[TRANSPORT_IOV_MAX];
	struct msghdr msg;
};

struct tlink {
	int conn;                   /* slot, -1: none */
	uint32_t backoff_ms;        /* the current delay's upper end */
	int64_t dial_at_ms;         /* dialer: when to dial next */
	bool ever_up;
};

struct tresolve;

struct tpeer {
	uint32_t id;
	const char *host;           /* its server.N host (t->servers) */
	uint16_t port;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	/* Dialer only (rule 5). */
	bool addr_known;            /* addr holds an address to dial */
	bool addr_numeric;          /* the host is an address: never looked up */
	bool addr_stale;            /* a dialed connection failed since: look it up first */
	struct tresolve *resolving; /* a lookup in flight, or NULL */
	int64_t resolve_started_ms;
	char name[CONFIG_HOST_BYTES_MAX + 16]; /* "id@host:port", for logs */
	bool we_dial;
	bool logged_up;
	struct tlink links[TRANSPORT_LINKS];
	char problem[TRANSPORT_PROBLEM_BYTES]; /* the last one logged */
	struct transport_peer_status stats;
};

struct transport {
	struct transport_config cfg;
	struct config_server servers[TRANSPORT_PEERS_MAX];
	struct io_uring *ring;
	uint64_t ud_prefix;
	uint64_t cluster_id;
	uint32_t self_id;
	int listen_fd;
	uint16_t listen_generation;
	bool accept_in_flight, listen_cancel_in_flight;
	int64_t now_ms;
	bool started;
	bool destroying;
	uint64_t rng;
	struct msg_codec_limits limits;
	struct raft_entry *entries; /* decode scratch, entries_max */
	int peer_count;
	struct tpeer peers[TRANSPORT_PEERS_MAX];
	struct tconn conns[TRANSPORT_CONNS_MAX];
	char problem_unknown[TRANSPORT_PROBLEM_BYTES]; /* refusals of unknown senders */
	uint64_t refused_unknown;
};

static inline uint64_t transport_rng_next(struct transport *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

static inline uint64_t transport_user_data(const struct transport *t, enum top op, unsigned slot,
					   uint16_t generation)
{
	return t->ud_prefix | (uint64_t)op << 24 | (uint64_t)slot << 16 | generation;
}

static inline int tconn_slot(const struct transport *t, const struct tconn *c)
{
	return (int)(c - t->conns);
}

/* transport_conn.c: helpers */
struct io_uring_sqe *transport_sqe_get(struct transport *t);
const char *transport_link_name(enum transport_link_kind kind);
void transport_addr_text(const struct sockaddr_storage *a, char *out, size_t len);
bool tpeer_problem_is_new(struct tpeer *p, const char *why);
void tpeer_problem(struct tpeer *p, enum transport_link_kind kind, const char *where, const char *why);
bool tpeer_connected(const struct transport *t, const struct tpeer *p);
int transport_peer_index(const struct transport *t, uint32_t id);

/* transport_conn.c: a connection */
void tconn_reap(struct transport *t, struct tconn *c);
void tlink_backoff(struct transport *t, struct tlink *l);
void tconn_close(struct transport *t, struct tconn *c, const char *why);
void tconn_arm_recv(struct transport *t, struct tconn *c);
int tconn_rx_reserve(struct tconn *c, size_t need);
int tconn_tx_init(struct transport *t, struct tconn *c);
void tconn_on_recv(struct transport *t, struct tconn *c, int res);
void tconn_on_send(struct transport *t, struct tconn *c, int res);

/* transport_hello.c */
void transport_hello_send(struct transport *t, struct tconn *c, uint32_t receiver_id);
void tconn_on_hello(struct transport *t, struct tconn *c);

/* transport_dial.c */
int transport_resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *out,
		      socklen_t *out_len, char *err, size_t err_len);
void tresolve_release(struct tresolve *r);
void tpeer_resolve_poll(struct transport *t, struct tpeer *p);
bool tpeer_addr_ready(struct transport *t, struct tpeer *p);
void tlink_dial(struct transport *t, struct tpeer *p, enum transport_link_kind kind);
void tconn_on_connect(struct transport *t, struct tconn *c, int res);
void transport_listener_arm(struct transport *t);
void transport_listener_on_accept(struct transport *t, const struct io_uring_cqe *cqe);
int transport_listener_open(struct transport *t, const struct config_server *self);

#endif
