/*
 * transport.c — the peer transport (API in transport.h): TCP connections between the
 * servers of a cluster, carrying struct raft_msg frames (raft/msg_codec.h), on the
 * owner's io_uring. Everything here belongs to the owner's thread.
 *
 * LINK RULES
 *
 *   1. Two links per pair of servers, CONTROL and DATA, each its own TCP connection.
 *      CONTROL carries votes, pre-votes, heartbeats, TIMEOUT_NOW, read-index and
 *      APPEND_RESP; DATA carries APPEND and PROP. Why two connections rather than one
 *      with a priority queue: a priority queue only reorders what is still in user
 *      space, but a slow follower fills the kernel's socket buffer (megabytes with
 *      autotuning) with appends, and a heartbeat behind those bytes waits for all of
 *      them. With its own connection a control message waits only for other control
 *      messages. The cost: no order between the two links (Raft does not need it: a
 *      heartbeat's commit is capped by the follower's match, stale responses are
 *      ignored by term and index).
 *   2. The server with the LOWER id dials; the higher one accepts. So each pair has
 *      exactly one connection per link, with no duplicate to resolve. A dialer redials
 *      only when it has no connection for that link, so an accepted connection for a
 *      link that already has one means the old one is dead (the peer restarted):
 *      the newer replaces the older.
 *   3. The dialer sends its hello, the acceptor checks it and answers with its own
 *      (also when refusing, so the dialer can log what differs, then it closes); the
 *      dialer checks the answer. Frames flow only after both hellos were accepted.
 *      Refused: bad magic (not answered), bad checksum, another protocol version,
 *      another cluster identity (the server lists differ), a receiver id that is not
 *      ours, a sender id that is ours or not in our list, a sender that should have
 *      been dialed rather than dial (rule 2), an unknown link kind, or an answer from
 *      another server or link than the one dialed.
 *   4. Bind address: our own server.N host, resolved at start. When that address is
 *      not local (EADDRNOTAVAIL: a NAT or container address in server.N), or the name
 *      does not resolve yet (a Kubernetes pod's DNS name right after it was created),
 *      we bind the wildcard instead and log it once: the peers can still reach us,
 *      and the operator sees why we listen everywhere.
 *   5. Peer addresses: only the dialer needs one (an acceptor knows a peer by its
 *      hello). A numeric host is parsed once at start. A name is looked up before the
 *      first dial and again before every redial that follows a failed or lost dialed
 *      connection, since the name may not exist yet or may now point elsewhere (a pod
 *      that restarted on a new address). getaddrinfo blocks for as long as DNS takes,
 *      so a lookup runs on a short-lived detached thread (at most one per peer) and
 *      transport_tick takes its result; the links wait for it, except that after
 *      handshake_timeout_ms they redial the address known before. A failed lookup
 *      with no address known waits out the links' backoff before the next one. A
 *      name that does not resolve never stops the start: it is logged (once per
 *      change) and looked up again.
 *
 * WIRE FORMAT (big-endian)
 *
 *   hello, TRANSPORT_HELLO_BYTES, first on every connection, each way:
 *     0  u32 magic "RKPT"        4  u16 protocol version   6  u8 link (1 control, 2 data)
 *     7  u8  0                   8  u32 sender id          12 u32 receiver id
 *     16 u64 cluster identity    24 u32 0                  28 u32 CRC-32C of bytes 0..28
 *   then frames back to back, one per raft_msg (layout in msg_codec.h): length
 *   prefix, version, type, flags, CRC-32C, header fields, entries.
 *
 *   Cluster identity: FNV-1a 64 of "id:host:peerport\n" per server, sorted by id.
 *
 * STATE OF A CONNECTION (struct tconn; a link of a peer points at one, or at none)
 *
 *      FREE ──dial (tick, backoff due)──► CONNECTING ──connect ok, hello sent──► HELLO
 *      FREE ──accept──────────────────────────────────────────────────────────► HELLO
 *      HELLO ──hello checked (acceptor: answered)──► UP
 *      CONNECTING, HELLO ──timeout / refused / error──► CLOSING
 *      UP ──EOF / error / bad frame / replaced by a newer accept──► CLOSING
 *      CLOSING ──last in-flight op completed; close(fd)──► FREE
 *
 *   CLOSING shuts the socket down and cancels its operations; the slot, its fd and
 *   its buffers are kept until every operation of it has completed, so the kernel
 *   never writes into freed memory and a cancel never hits a reused fd.
 *
 *   A peer (both links together) is logged once per change: "connected" when both
 *   links are up, "lost" when one goes down from up, and a refusal, dial or lookup
 *   error, or a new address, when it differs from the last one logged for that peer;
 *   never per attempt.
 *   Backoff per link: first redial after [min/2, min] ms, doubling per failure up to
 *   max; reset when the link comes up.
 *
 * INVARIANTS
 *
 *   1. At most one recv, one send, one connect/cancel in flight per connection; the
 *      receive buffer is only resized with no recv in flight; queued chunks are only
 *      appended to beyond what a send in flight covers, and freed once sent.
 *   2. Every queue is bounded: queued bytes <= queue_bytes_max and queued messages <=
 *      queue_msgs_max per link; a message that does not fit is dropped and counted,
 *      never waited for, so a slow or dead peer never blocks the owner or another peer.
 *   3. A frame larger than frame_bytes_max is neither sent nor accepted; a bad frame
 *      closes its connection (counted in protocol_errors).
 *   4. A received message is delivered only from an UP connection, only with from ==
 *      the peer's id and to == ours (others are protocol errors).
 *   5. user_data = prefix | op << 24 | slot << 16 | generation; a slot's generation
 *      changes when it is freed, and it is freed only after its last CQE, so every
 *      CQE matches its slot's current generation (asserted).
 *
 * LIMITS: one lookup thread per dialed peer at a time; TRANSPORT_CONNS_MAX slots (two
 *   per peer and TRANSPORT_PENDING_MAX accepted connections still in their handshake;
 *   more are closed at once), chunk and iovec sizes below, the config's queue, frame
 *   and entry limits. The receive buffer of a connection grows to the largest frame
 *   seen (at most frame_bytes_max) and stays.
 */
#include "raft/transport.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/crc32c.h"
#include "raft/msg_codec.h"

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

/* ---- small helpers ------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void transport_hello_encode(const struct transport_hello *h, uint8_t out[TRANSPORT_HELLO_BYTES])
{
	memset(out, 0, TRANSPORT_HELLO_BYTES);
	put_u32(out, h->magic);
	out[4] = (uint8_t)(h->version >> 8);
	out[5] = (uint8_t)h->version;
	out[6] = h->link_kind;
	put_u32(out + 8, h->sender_id);
	put_u32(out + 12, h->receiver_id);
	put_u32(out + 16, (uint32_t)(h->cluster_id >> 32));
	put_u32(out + 20, (uint32_t)h->cluster_id);
	put_u32(out + 28, crc32c(out, 28));
}

int transport_hello_decode(const uint8_t in[TRANSPORT_HELLO_BYTES], struct transport_hello *h)
{
	if (get_u32(in + 28) != crc32c(in, 28) || in[7] != 0 || get_u32(in + 24) != 0)
		return -EPROTO;
	h->magic = get_u32(in);
	h->version = (uint16_t)(in[4] << 8 | in[5]);
	h->link_kind = in[6];
	h->sender_id = get_u32(in + 8);
	h->receiver_id = get_u32(in + 12);
	h->cluster_id = (uint64_t)get_u32(in + 16) << 32 | get_u32(in + 20);
	return 0;
}

static int server_cmp(const void *a, const void *b)
{
	const struct config_server *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

uint64_t transport_cluster_id(const struct config_server *servers, uint32_t server_count)
{
	assert(server_count <= TRANSPORT_PEERS_MAX);
	struct config_server sorted[TRANSPORT_PEERS_MAX];
	memcpy(sorted, servers, server_count * sizeof *servers);
	qsort(sorted, server_count, sizeof *sorted, server_cmp);
	uint64_t hash = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
	for (uint32_t i = 0; i < server_count; i++) {
		char line[CONFIG_HOST_BYTES_MAX + 32];
		int n = snprintf(line, sizeof line, "%u:%s:%u\n", sorted[i].id, sorted[i].host,
				 sorted[i].peer_port);
		assert(n > 0 && (size_t)n < sizeof line);
		for (int j = 0; j < n; j++) {
			hash ^= (uint8_t)line[j];
			hash *= 0x100000001b3ULL;
		}
	}
	return hash;
}

static uint64_t rng_next(struct transport *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

static uint64_t user_data(const struct transport *t, enum top op, unsigned slot, uint16_t generation)
{
	return t->ud_prefix | (uint64_t)op << 24 | (uint64_t)slot << 16 | generation;
}

static struct io_uring_sqe *sqe_get(struct transport *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(t->ring);
	if (!sqe) {
		io_uring_submit(t->ring);
		sqe = io_uring_get_sqe(t->ring);
	}
	assert(sqe); /* a submit always frees the whole SQ */
	return sqe;
}

static int conn_slot(const struct transport *t, const struct tconn *c)
{
	return (int)(c - t->conns);
}

static const char *link_name(enum transport_link_kind kind)
{
	switch (kind) {
	case TRANSPORT_LINK_CONTROL:
		return "control";
	case TRANSPORT_LINK_DATA:
		return "data";
	}
	return "?";
}

static void addr_text(const struct sockaddr_storage *a, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)a;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)a;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, len, "%s:%u", host, port);
}

/* Logs a peer's problem unless `why` is the one logged last for it (once per state
 * change, not per attempt: the link and the source address are not compared). */
static bool peer_problem_is_new(struct tpeer *p, const char *why)
{
	/* Kept truncated to the field: a long reason compares by its first bytes. */
	size_t n = strnlen(why, sizeof p->problem - 1);
	if (strncmp(why, p->problem, n) == 0 && p->problem[n] == '\0')
		return false;
	memcpy(p->problem, why, n);
	p->problem[n] = '\0';
	return true;
}

static void peer_problem(struct tpeer *p, enum transport_link_kind kind, const char *where, const char *why)
{
	if (peer_problem_is_new(p, why))
		log_warn("transport: peer %s (%s link%s%s): %s", p->name, link_name(kind), where ? ", " : "",
			 where ? where : "", why);
}

static bool peer_connected(const struct transport *t, const struct tpeer *p)
{
	for (int k = 0; k < TRANSPORT_LINKS; k++)
		if (p->links[k].conn < 0 || t->conns[p->links[k].conn].state != TCONN_UP)
			return false;
	return true;
}

/* ---- closing ------------------------------------------------------------------------- */

static void tx_free(struct tconn *c)
{
	while (c->tx_head) {
		struct tchunk *k = c->tx_head;
		c->tx_head = k->next;
		free(k);
	}
	c->tx_tail = NULL;
	c->tx_bytes = 0;
	c->tx_frames_head = c->tx_frames_count = 0;
	c->tx_front_sent = 0;
}

static bool conn_ops_in_flight(const struct tconn *c)
{
	return c->recv_in_flight || c->send_in_flight || c->connect_in_flight || c->cancel_in_flight;
}

/* CLOSING → FREE once nothing is in flight (invariant 1, 5). */
static void conn_reap(struct transport *t, struct tconn *c)
{
	assert(c->state == TCONN_CLOSING);
	if (conn_ops_in_flight(c))
		return;
	close(c->fd);
	free(c->rx);
	free(c->tx_frames);
	tx_free(c);
	uint16_t generation = (uint16_t)(c->generation + 1);
	memset(c, 0, sizeof *c);
	c->state = TCONN_FREE;
	c->generation = generation;
	c->fd = -1;
	c->peer = -1;
	(void)t;
}

/* Schedules the link's next dial after a failure or a loss (dialer side only). */
static void link_backoff(struct transport *t, struct tlink *l)
{
	uint32_t d = l->backoff_ms ? l->backoff_ms : t->cfg.backoff_ms_min;
	l->dial_at_ms = t->now_ms + d / 2 + (int64_t)(rng_next(t) % (d / 2 + 1));
	uint32_t next = d * 2;
	l->backoff_ms = next > t->cfg.backoff_ms_max ? t->cfg.backoff_ms_max : next;
}

/* Any state → CLOSING: detaches it from its link, counts what it drops, shuts the
 * socket and cancels its operations. `why` is logged (once per change) for a peer. */
static void conn_close(struct transport *t, struct tconn *c, const char *why)
{
	if (c->state == TCONN_CLOSING || c->state == TCONN_FREE)
		return;
	bool was_up = c->state == TCONN_UP;
	if (c->peer >= 0) {
		struct tpeer *p = &t->peers[c->peer];
		struct tlink *l = &p->links[c->kind];
		bool peer_was_connected = peer_connected(t, p);
		if (l->conn == conn_slot(t, c)) {
			l->conn = -1;
			if (p->we_dial)
				link_backoff(t, l);
		}
		if (c->dialed && !p->addr_numeric)
			p->addr_stale = true; /* rule 5: look the name up before the redial */
		p->stats.msgs_dropped += c->tx_frames_count;
		if (peer_was_connected && !t->destroying) {
			log_warn("transport: peer %s lost (%s link: %s)", p->name, link_name(c->kind), why);
			snprintf(p->problem, sizeof p->problem, "%s", "lost");
			p->logged_up = false;
		} else if (!was_up && why) {
			peer_problem(p, c->kind, NULL, why);
		}
	}
	c->state = TCONN_CLOSING;
	shutdown(c->fd, SHUT_RDWR);
	if (c->recv_in_flight || c->send_in_flight || c->connect_in_flight) {
		struct io_uring_sqe *sqe = sqe_get(t);
		io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, user_data(t, TOP_CANCEL, (unsigned)conn_slot(t, c), c->generation));
		c->cancel_in_flight = true;
	}
	conn_reap(t, c);
}

/* ---- receiving ----------------------------------------------------------------------- */

static void conn_arm_recv(struct transport *t, struct tconn *c)
{
	assert(!c->recv_in_flight && c->rx_len < c->rx_cap);
	struct io_uring_sqe *sqe = sqe_get(t);
	io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
	io_uring_sqe_set_data64(sqe, user_data(t, TOP_RECV, (unsigned)conn_slot(t, c), c->generation));
	c->recv_in_flight = true;
}

static int conn_rx_reserve(struct tconn *c, size_t need)
{
	if (need <= c->rx_cap)
		return 0;
	size_t cap = c->rx_cap ? c->rx_cap : TRANSPORT_RX_BYTES_MIN;
	while (cap < need)
		cap *= 2;
	uint8_t *rx = realloc(c->rx, cap);
	if (!rx)
		return -ENOMEM;
	c->rx = rx;
	c->rx_cap = cap;
	return 0;
}

static int conn_tx_init(struct transport *t, struct tconn *c)
{
	c->tx_frames = calloc(t->cfg.queue_msgs_max[c->kind], sizeof *c->tx_frames);
	return c->tx_frames ? 0 : -ENOMEM;
}

static void hello_send(struct transport *t, struct tconn *c, uint32_t receiver_id)
{
	struct transport_hello h = {
		.magic = TRANSPORT_HELLO_MAGIC,
		.version = TRANSPORT_PROTOCOL_VERSION,
		.link_kind = (uint8_t)(c->kind + 1),
		.sender_id = t->self_id,
		.receiver_id = receiver_id,
		.cluster_id = t->cluster_id,
	};
	uint8_t buf[TRANSPORT_HELLO_BYTES];
	transport_hello_encode(&h, buf);
	/* 32 bytes into an empty socket buffer: never partial, never blocks. */
	ssize_t n = send(c->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n; /* a failure shows up as an error on the recv */
}

static int peer_index(const struct transport *t, uint32_t id)
{
	for (int i = 0; i < t->peer_count; i++)
		if (t->peers[i].id == id)
			return i;
	return -1;
}

static void conn_up(struct transport *t, struct tconn *c)
{
	struct tpeer *p = &t->peers[c->peer];
	struct tlink *l = &p->links[c->kind];
	c->state = TCONN_UP;
	l->backoff_ms = 0;
	p->stats.links_established++;
	if (l->ever_up)
		p->stats.reconnects++;
	l->ever_up = true;
	if (peer_connected(t, p) && !p->logged_up) {
		log_info("transport: peer %s connected (%s)", p->name, p->we_dial ? "dialed" : "accepted");
		p->logged_up = true;
		p->problem[0] = 0;
	}
}

/* A refusal: logged once per change (for the peer it claims to be, if any), counted. */
static void hello_refuse(struct transport *t, struct tconn *c, int peer, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void hello_refuse(struct transport *t, struct tconn *c, int peer, const char *fmt, ...)
{
	char why[TRANSPORT_PROBLEM_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	char from[INET6_ADDRSTRLEN + 8];
	addr_text(&c->remote, from, sizeof from);
	if (peer >= 0) {
		t->peers[peer].stats.handshakes_refused++;
		char refused[TRANSPORT_PROBLEM_BYTES + 32];
		snprintf(refused, sizeof refused, "handshake refused: %s", why);
		peer_problem(&t->peers[peer], c->kind, c->dialed ? "its answer" : from, refused);
	} else {
		t->refused_unknown++;
		char text[TRANSPORT_PROBLEM_BYTES + 64];
		snprintf(text, sizeof text, "%s: %s", from, why);
		/* the source port changes per attempt: compare the reason only */
		if (strcmp(why, t->problem_unknown) != 0) {
			snprintf(t->problem_unknown, sizeof t->problem_unknown, "%s", why);
			log_warn("transport: refused connection from %s", text);
		}
	}
	conn_close(t, c, NULL); /* an accepted one was never attached: c->peer is -1 */
}

/* Checks the peer's hello (rule 3). The acceptor answers and attaches the connection. */
static void conn_on_hello(struct transport *t, struct tconn *c)
{
	struct transport_hello h;
	if (get_u32(c->rx) != TRANSPORT_HELLO_MAGIC) {
		hello_refuse(t, c, c->dialed ? c->peer : -1, "bad magic 0x%08x: not a RingKeeper peer",
			     get_u32(c->rx));
		return;
	}
	int claimed = -1;
	if (transport_hello_decode(c->rx, &h) < 0) {
		hello_refuse(t, c, c->dialed ? c->peer : -1, "bad hello checksum");
		return;
	}
	claimed = c->dialed ? c->peer : peer_index(t, h.sender_id);
	if (!c->dialed) {
		/* Answer first, even when refusing, so the dialer can log what differs. */
		c->kind = h.link_kind == 2 ? TRANSPORT_LINK_DATA : TRANSPORT_LINK_CONTROL;
		hello_send(t, c, h.sender_id);
	}
	if (h.version != TRANSPORT_PROTOCOL_VERSION) {
		hello_refuse(t, c, claimed, "protocol version %u, ours is %u", h.version, TRANSPORT_PROTOCOL_VERSION);
		return;
	}
	if (h.cluster_id != t->cluster_id) {
		hello_refuse(t, c, claimed,
			     "cluster identity %016llx, ours is %016llx: the server.N lists differ",
			     (unsigned long long)h.cluster_id, (unsigned long long)t->cluster_id);
		return;
	}
	if (h.receiver_id != t->self_id) {
		hello_refuse(t, c, claimed, "it takes us for server %u, we are %u", h.receiver_id, t->self_id);
		return;
	}
	if (h.sender_id == t->self_id) {
		hello_refuse(t, c, -1, "sender id %u is our own", h.sender_id);
		return;
	}
	if (claimed < 0) {
		hello_refuse(t, c, -1, "sender id %u is not in our server list", h.sender_id);
		return;
	}
	if (h.link_kind != 1 && h.link_kind != 2) {
		hello_refuse(t, c, claimed, "unknown link kind %u", h.link_kind);
		return;
	}
	struct tpeer *p = &t->peers[claimed];
	if (c->dialed) {
		if (h.sender_id != p->id || h.link_kind != c->kind + 1) {
			hello_refuse(t, c, claimed, "answered as server %u link %u, dialed server %u link %u",
				     h.sender_id, h.link_kind, p->id, c->kind + 1);
			return;
		}
		conn_up(t, c);
		return;
	}
	if (p->we_dial) {
		hello_refuse(t, c, claimed, "server %u dialed us, but the lower id dials (we are %u)",
			     h.sender_id, t->self_id);
		return;
	}
	/* Rule 2: a newer accepted connection replaces the older one of the link. */
	struct tlink *l = &p->links[c->kind];
	if (l->conn >= 0)
		conn_close(t, &t->conns[l->conn], "replaced by a new connection (peer restarted?)");
	if (conn_tx_init(t, c) < 0) {
		hello_refuse(t, c, claimed, "out of memory");
		return;
	}
	c->peer = claimed;
	l->conn = conn_slot(t, c);
	conn_up(t, c);
}

static bool conn_deliver(struct transport *t, struct tconn *c, const uint8_t *frame, size_t len)
{
	struct tpeer *p = &t->peers[c->peer];
	struct raft_msg m;
	int rc = msg_codec_decode(frame, len, &t->limits, &m, t->entries);
	if (rc < 0) {
		p->stats.protocol_errors++;
		conn_close(t, c, rc == -EMSGSIZE ? "frame over the limits" : "malformed frame");
		return false;
	}
	if (m.from != p->id || m.to != t->self_id) {
		p->stats.protocol_errors++;
		conn_close(t, c, "message with wrong from/to");
		return false;
	}
	p->stats.msgs_received++;
	if (!t->destroying)
		t->cfg.on_msg(t->cfg.ctx, &m);
	return c->state == TCONN_UP;
}

/* Parses what rx holds: the hello, then whole frames. false: the connection closed. */
static bool conn_parse(struct transport *t, struct tconn *c)
{
	size_t off = 0;
	if (c->state == TCONN_HELLO) {
		if (c->rx_len < TRANSPORT_HELLO_BYTES)
			return true;
		conn_on_hello(t, c);
		if (c->state != TCONN_UP)
			return false;
		off = TRANSPORT_HELLO_BYTES;
	}
	while (c->state == TCONN_UP) {
		size_t frame_bytes;
		int rc = msg_codec_peek(c->rx + off, c->rx_len - off, &t->limits, &frame_bytes);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			t->peers[c->peer].stats.protocol_errors++;
			conn_close(t, c, rc == -EMSGSIZE ? "frame over frame_bytes_max" : "malformed frame length");
			return false;
		}
		if (c->rx_len - off < frame_bytes) {
			if (conn_rx_reserve(c, frame_bytes) < 0) {
				conn_close(t, c, "out of memory for a frame");
				return false;
			}
			break;
		}
		if (!conn_deliver(t, c, c->rx + off, frame_bytes))
			return false;
		off += frame_bytes;
	}
	if (c->state != TCONN_UP)
		return false;
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
	return true;
}

static void conn_on_recv(struct transport *t, struct tconn *c, int res)
{
	c->recv_in_flight = false;
	if (c->state == TCONN_CLOSING) {
		conn_reap(t, c);
		return;
	}
	if (res <= 0) {
		conn_close(t, c, res == 0 ? "closed by the peer" : strerror(-res));
		return;
	}
	c->rx_len += (size_t)res;
	if (c->peer >= 0 && c->state == TCONN_UP)
		t->peers[c->peer].stats.bytes_received += (uint64_t)res;
	if (!conn_parse(t, c))
		return;
	if (c->rx_len == c->rx_cap && conn_rx_reserve(c, c->rx_cap * 2) < 0) {
		conn_close(t, c, "out of memory for a frame");
		return;
	}
	conn_arm_recv(t, c);
}

/* ---- sending ------------------------------------------------------------------------- */

/* Bulk (appends, forwarded proposals, snapshot chunks) on the data link; everything
 * else, small and urgent, on the control link. */
static enum transport_link_kind link_of(enum raft_msg_type type)
{
	return msg_codec_carries_entries((uint32_t)type) ? TRANSPORT_LINK_DATA : TRANSPORT_LINK_CONTROL;
}

int transport_send(struct transport *t, const struct raft_msg *m)
{
	if (((m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_READ_INDEX_RESP) &&
	     !msg_codec_is_host_type((uint32_t)m->type)) || m->to > UINT32_MAX)
		return -EINVAL;
	int pi = peer_index(t, (uint32_t)m->to);
	if (pi < 0)
		return -EINVAL;
	struct tpeer *p = &t->peers[pi];
	enum transport_link_kind kind = link_of(m->type);
	struct tlink *l = &p->links[kind];
	if (l->conn < 0 || t->conns[l->conn].state != TCONN_UP) {
		p->stats.msgs_dropped++;
		return -ENOTCONN;
	}
	struct tconn *c = &t->conns[l->conn];
	size_t bytes = msg_codec_frame_bytes(m);
	if (bytes > t->cfg.frame_bytes_max) {
		p->stats.msgs_dropped++;
		return -EMSGSIZE;
	}
	if (c->tx_bytes + bytes > t->cfg.queue_bytes_max[kind] ||
	    c->tx_frames_count >= t->cfg.queue_msgs_max[kind]) {
		p->stats.msgs_dropped++;
		return -ENOBUFS;
	}
	struct tchunk *k = c->tx_tail;
	if (!k || k->cap - k->used < bytes) {
		size_t cap = bytes > TRANSPORT_CHUNK_BYTES ? bytes : TRANSPORT_CHUNK_BYTES;
		k = malloc(sizeof *k + cap);
		if (!k) {
			p->stats.msgs_dropped++;
			return -ENOBUFS;
		}
		k->next = NULL;
		k->cap = cap;
		k->used = k->sent = 0;
		if (c->tx_tail)
			c->tx_tail->next = k;
		else
			c->tx_head = k;
		c->tx_tail = k;
	}
	size_t written;
	int rc = msg_codec_encode(m, k->data + k->used, k->cap - k->used, &written);
	if (rc < 0)
		return rc; /* malformed (-EINVAL); the chunk stays for the next message */
	assert(written == bytes);
	k->used += written;
	c->tx_bytes += written;
	uint32_t msgs_max = t->cfg.queue_msgs_max[kind];
	c->tx_frames[(c->tx_frames_head + c->tx_frames_count) % msgs_max] = (uint32_t)written;
	c->tx_frames_count++;
	return 0;
}

/* One sendmsg over the queued chunks (up to TRANSPORT_IOV_MAX). */
static bool conn_issue_send(struct transport *t, struct tconn *c)
{
	if (c->state != TCONN_UP || c->send_in_flight || c->tx_bytes == 0)
		return false;
	int n = 0;
	for (struct tchunk *k = c->tx_head; k && n < TRANSPORT_IOV_MAX; k = k->next) {
		if (k->used == k->sent)
			continue;
		c->iov[n].iov_base = k->data + k->sent;
		c->iov[n].iov_len = k->used - k->sent;
		n++;
	}
	assert(n > 0);
	memset(&c->msg, 0, sizeof c->msg);
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	struct io_uring_sqe *sqe = sqe_get(t);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, user_data(t, TOP_SEND, (unsigned)conn_slot(t, c), c->generation));
	c->send_in_flight = true;
	return true;
}

static void conn_on_send(struct transport *t, struct tconn *c, int res)
{
	c->send_in_flight = false;
	if (c->state == TCONN_CLOSING) {
		conn_reap(t, c);
		return;
	}
	if (res <= 0) {
		conn_close(t, c, res == 0 ? "send made no progress" : strerror(-res));
		return;
	}
	struct tpeer *p = &t->peers[c->peer];
	size_t done = (size_t)res;
	assert(done <= c->tx_bytes);
	c->tx_bytes -= done;
	p->stats.bytes_sent += done;
	/* chunks */
	size_t left = done;
	while (left > 0) {
		struct tchunk *k = c->tx_head;
		assert(k);
		size_t take = k->used - k->sent < left ? k->used - k->sent : left;
		k->sent += take;
		left -= take;
		if (k->sent == k->used) {
			if (k == c->tx_tail) {
				k->used = k->sent = 0; /* keep the last chunk for the next frames */
			} else {
				c->tx_head = k->next;
				free(k);
			}
		}
	}
	/* frames */
	uint32_t msgs_max = t->cfg.queue_msgs_max[c->kind];
	left = done + c->tx_front_sent;
	while (c->tx_frames_count > 0 && left >= c->tx_frames[c->tx_frames_head]) {
		left -= c->tx_frames[c->tx_frames_head];
		c->tx_frames_head = (c->tx_frames_head + 1) % msgs_max;
		c->tx_frames_count--;
		p->stats.msgs_sent++;
	}
	c->tx_front_sent = left;
	assert(c->tx_frames_count > 0 || (left == 0 && c->tx_bytes == 0));
	conn_issue_send(t, c); /* keep the pipe full: the rest goes at once */
}

int transport_flush(struct transport *t)
{
	int issued = 0;
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++)
		issued += conn_issue_send(t, &t->conns[i]);
	return issued;
}

/* Resolves host:port; blocks for as long as DNS takes, so the owner calls it only at
 * start (our own address, numeric peers) and lookup threads for the rest. 0 or -EINVAL
 * with the reason in err. */
static int resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *out,
		   socklen_t *out_len, char *err, size_t err_len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	char service[8];
	snprintf(service, sizeof service, "%u", port);
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, err_len, "%s", gai_strerror(rc));
		return -EINVAL;
	}
	/* The first IPv4 answer if there is one (localhost: 127.0.0.1 before ::1). */
	struct addrinfo *pick = res;
	for (struct addrinfo *a = res; a; a = a->ai_next)
		if (a->ai_family == AF_INET) {
			pick = a;
			break;
		}
	memcpy(out, pick->ai_addr, pick->ai_addrlen);
	*out_len = pick->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ---- looking peers up (rule 5) --------------------------------------------------------- */

/*
 * One lookup, shared by the owner and its thread: the thread fills the result and sets
 * done; whichever of the two lets go last frees it, so transport_destroy never waits
 * for a lookup that DNS holds up.
 */
struct tresolve {
	atomic_int refs;
	atomic_bool done;         /* the result below is written (release/acquire) */
	char host[CONFIG_HOST_BYTES_MAX];
	uint16_t port;
	int rc;                   /* 0, or -EINVAL with err */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char err[96];
};

static void tresolve_release(struct tresolve *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		free(r);
}

static void *tresolve_main(void *arg)
{
	struct tresolve *r = arg;
	pthread_setname_np(pthread_self(), "rk-resolve");
	r->rc = resolve(r->host, r->port, false, &r->addr, &r->addr_len, r->err, sizeof r->err);
	atomic_store_explicit(&r->done, true, memory_order_release);
	tresolve_release(r);
	return NULL;
}

/* Starts a lookup of p's host on its own thread; a thread that cannot start is a
 * failed lookup, taken at the next tick like any other. */
static void peer_resolve_start(struct transport *t, struct tpeer *p)
{
	assert(!p->resolving && !p->addr_numeric);
	struct tresolve *r = calloc(1, sizeof *r);
	if (!r)
		return; /* tried again at the next tick */
	snprintf(r->host, sizeof r->host, "%s", p->host);
	r->port = p->port;
	atomic_init(&r->refs, 2);
	atomic_init(&r->done, false);
	p->resolving = r;
	p->resolve_started_ms = t->now_ms;
	p->stats.lookups++;
	pthread_attr_t attr;
	pthread_t thread;
	int rc = pthread_attr_init(&attr);
	if (rc == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&thread, &attr, tresolve_main, r);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0) {
		r->rc = -EINVAL;
		snprintf(r->err, sizeof r->err, "no thread for the lookup: %s", strerror(rc));
		atomic_store_explicit(&r->done, true, memory_order_release);
		tresolve_release(r);
	}
}

static bool sockaddr_same(const struct sockaddr_storage *a, socklen_t a_len, const struct sockaddr_storage *b,
			  socklen_t b_len)
{
	return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* Takes a finished lookup's result (rule 5). */
static void peer_resolve_poll(struct transport *t, struct tpeer *p)
{
	struct tresolve *r = p->resolving;
	if (!r || !atomic_load_explicit(&r->done, memory_order_acquire))
		return;
	p->resolving = NULL;
	p->addr_stale = false;
	if (r->rc == 0) {
		if (!p->addr_known || !sockaddr_same(&p->addr, p->addr_len, &r->addr, r->addr_len)) {
			char text[INET6_ADDRSTRLEN + 8];
			addr_text(&r->addr, text, sizeof text);
			log_info("transport: peer %s is at %s", p->name, text);
		}
		p->addr = r->addr;
		p->addr_len = r->addr_len;
		p->addr_known = true;
	} else {
		p->stats.lookup_failures++;
		char why[TRANSPORT_PROBLEM_BYTES];
		snprintf(why, sizeof why, "cannot resolve %s: %s%s", p->host, r->err,
			 p->addr_known ? " (dialing the address it had)" : " (retrying)");
		if (peer_problem_is_new(p, why))
			log_warn("transport: peer %s: %s", p->name, why);
		if (!p->addr_known)
			for (int k = 0; k < TRANSPORT_LINKS; k++)
				link_backoff(t, &p->links[k]);
	}
	tresolve_release(r);
}

/* Whether a link of p that is due may dial now; starts a lookup when the address is
 * unknown or stale. A slow lookup holds the redial back for at most
 * handshake_timeout_ms when an older address is known. */
static bool peer_addr_ready(struct transport *t, struct tpeer *p)
{
	if (p->addr_known && !p->addr_stale)
		return true;
	if (!p->resolving) {
		peer_resolve_start(t, p);
		return false;
	}
	return p->addr_known && t->now_ms - p->resolve_started_ms >= t->cfg.handshake_timeout_ms;
}

/* ---- dialing and accepting ----------------------------------------------------------- */

static struct tconn *conn_alloc(struct transport *t)
{
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++)
		if (t->conns[i].state == TCONN_FREE)
			return &t->conns[i];
	return NULL;
}

static int socket_tune(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ? -errno : 0;
}

static void link_dial(struct transport *t, struct tpeer *p, enum transport_link_kind kind)
{
	struct tlink *l = &p->links[kind];
	struct tconn *c = conn_alloc(t);
	if (!c) { /* slots still closing, or taken by accepted connections in handshake */
		link_backoff(t, l);
		return;
	}
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		char why[96];
		snprintf(why, sizeof why, "socket: %s", strerror(errno));
		peer_problem(p, kind, NULL, why);
		link_backoff(t, l);
		return;
	}
	socket_tune(fd);
	c->state = TCONN_CONNECTING;
	c->fd = fd;
	c->peer = (int)(p - t->peers);
	c->kind = kind;
	c->dialed = true;
	c->deadline_ms = t->now_ms + t->cfg.handshake_timeout_ms;
	c->remote = p->addr;
	c->remote_len = p->addr_len;
	if (conn_rx_reserve(c, TRANSPORT_RX_BYTES_MIN) < 0 || conn_tx_init(t, c) < 0) {
		conn_close(t, c, "out of memory");
		return;
	}
	l->conn = conn_slot(t, c);
	p->stats.dial_attempts++;
	struct io_uring_sqe *sqe = sqe_get(t);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&c->remote, c->remote_len);
	io_uring_sqe_set_data64(sqe, user_data(t, TOP_CONNECT, (unsigned)conn_slot(t, c), c->generation));
	c->connect_in_flight = true;
}

static void conn_on_connect(struct transport *t, struct tconn *c, int res)
{
	c->connect_in_flight = false;
	if (c->state == TCONN_CLOSING) {
		conn_reap(t, c);
		return;
	}
	if (res < 0) {
		char why[96];
		snprintf(why, sizeof why, "connect: %s", strerror(-res));
		conn_close(t, c, why);
		return;
	}
	c->state = TCONN_HELLO;
	hello_send(t, c, t->peers[c->peer].id);
	conn_arm_recv(t, c);
}

static void listener_arm(struct transport *t)
{
	struct io_uring_sqe *sqe = sqe_get(t);
	io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, user_data(t, TOP_ACCEPT, SLOT_LISTENER, t->listen_generation));
	t->accept_in_flight = true;
}

static void listener_on_accept(struct transport *t, const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		t->accept_in_flight = false;
	if (cqe->res >= 0) {
		int fd = cqe->res;
		struct tconn *c = NULL;
		int pending = 0;
		for (int i = 0; i < TRANSPORT_CONNS_MAX; i++)
			pending += t->conns[i].state == TCONN_HELLO && !t->conns[i].dialed;
		if (!t->destroying && pending < TRANSPORT_PENDING_MAX)
			c = conn_alloc(t);
		if (!c) {
			close(fd);
			t->refused_unknown++;
		} else {
			socket_tune(fd);
			c->state = TCONN_HELLO;
			c->fd = fd;
			c->peer = -1;
			c->dialed = false;
			c->deadline_ms = t->now_ms + t->cfg.handshake_timeout_ms;
			c->remote_len = sizeof c->remote;
			getpeername(fd, (struct sockaddr *)&c->remote, &c->remote_len);
			if (conn_rx_reserve(c, TRANSPORT_RX_BYTES_MIN) < 0)
				conn_close(t, c, "out of memory");
			else
				conn_arm_recv(t, c);
		}
	} else if (cqe->res != -ECANCELED && !t->destroying) {
		log_warn("transport: accept: %s", strerror(-cqe->res));
	}
	if (!t->accept_in_flight && !t->destroying)
		listener_arm(t);
}

void transport_on_cqe(struct transport *t, const struct io_uring_cqe *cqe)
{
	assert(transport_user_data_match(t->ud_prefix, cqe->user_data));
	enum top op = (enum top)((cqe->user_data >> 24) & 0xFF);
	unsigned slot = (cqe->user_data >> 16) & 0xFF;
	uint16_t generation = (uint16_t)cqe->user_data;
	if (slot == SLOT_LISTENER) {
		assert(generation == t->listen_generation);
		switch (op) {
		case TOP_ACCEPT:
			listener_on_accept(t, cqe);
			return;
		case TOP_CANCEL:
			t->listen_cancel_in_flight = false;
			return;
		case TOP_CONNECT:
		case TOP_RECV:
		case TOP_SEND:
			break;
		}
		assert(!"bad listener op");
		return;
	}
	assert(slot < TRANSPORT_CONNS_MAX);
	struct tconn *c = &t->conns[slot];
	assert(c->state != TCONN_FREE && c->generation == generation); /* invariant 5 */
	switch (op) {
	case TOP_CONNECT:
		conn_on_connect(t, c, cqe->res);
		return;
	case TOP_RECV:
		conn_on_recv(t, c, cqe->res);
		return;
	case TOP_SEND:
		conn_on_send(t, c, cqe->res);
		return;
	case TOP_CANCEL:
		c->cancel_in_flight = false;
		if (c->state == TCONN_CLOSING)
			conn_reap(t, c);
		return;
	case TOP_ACCEPT:
		break;
	}
	assert(!"bad connection op");
}

void transport_tick(struct transport *t, int64_t now_ms)
{
	t->now_ms = now_ms;
	if (!t->started) {
		t->started = true;
		for (int i = 0; i < t->peer_count; i++)
			for (int k = 0; k < TRANSPORT_LINKS; k++)
				t->peers[i].links[k].dial_at_ms = now_ms;
	}
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++) {
		struct tconn *c = &t->conns[i];
		if ((c->state == TCONN_CONNECTING || c->state == TCONN_HELLO) && now_ms >= c->deadline_ms)
			conn_close(t, c, c->state == TCONN_CONNECTING ? "connect timed out" : "handshake timed out");
	}
	for (int i = 0; i < t->peer_count; i++) {
		struct tpeer *p = &t->peers[i];
		if (!p->we_dial)
			continue;
		peer_resolve_poll(t, p);
		for (int k = 0; k < TRANSPORT_LINKS; k++)
			if (p->links[k].conn < 0 && now_ms >= p->links[k].dial_at_ms && peer_addr_ready(t, p))
				link_dial(t, p, (enum transport_link_kind)k);
	}
}

int transport_peer_status(const struct transport *t, uint32_t id, struct transport_peer_status *out)
{
	int pi = peer_index(t, id);
	if (pi < 0)
		return -ENOENT;
	const struct tpeer *p = &t->peers[pi];
	*out = p->stats;
	out->id = id;
	out->connected = peer_connected(t, p);
	for (int k = 0; k < TRANSPORT_LINKS; k++) {
		const struct tconn *c = p->links[k].conn >= 0 ? &t->conns[p->links[k].conn] : NULL;
		out->link_up[k] = c && c->state == TCONN_UP;
		out->queued_bytes[k] = c ? c->tx_bytes : 0;
		out->queued_msgs[k] = c ? c->tx_frames_count : 0;
	}
	return 0;
}

/* ---- lifetime ------------------------------------------------------------------------ */

void transport_config_default(struct transport_config *cfg, uint32_t self_id,
			      const struct config_server *servers, uint32_t server_count)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->self_id = self_id;
	cfg->servers = servers;
	cfg->server_count = server_count;
	cfg->queue_bytes_max[TRANSPORT_LINK_CONTROL] = TRANSPORT_CONTROL_QUEUE_BYTES_MAX;
	cfg->queue_msgs_max[TRANSPORT_LINK_CONTROL] = TRANSPORT_CONTROL_QUEUE_MSGS_MAX;
	cfg->queue_bytes_max[TRANSPORT_LINK_DATA] = TRANSPORT_DATA_QUEUE_BYTES_MAX;
	cfg->queue_msgs_max[TRANSPORT_LINK_DATA] = TRANSPORT_DATA_QUEUE_MSGS_MAX;
	cfg->frame_bytes_max = TRANSPORT_FRAME_BYTES_MAX;
	cfg->entries_max = RAFT_MSG_ENTRIES_MAX;
	cfg->backoff_ms_min = TRANSPORT_BACKOFF_MS_MIN;
	cfg->backoff_ms_max = TRANSPORT_BACKOFF_MS_MAX;
	cfg->handshake_timeout_ms = TRANSPORT_HANDSHAKE_TIMEOUT_MS;
	cfg->seed = self_id * 0x9E3779B97F4A7C15ULL + 1;
}

static int config_check(const struct transport_config *cfg)
{
	if (cfg->server_count < 2 || cfg->server_count > TRANSPORT_PEERS_MAX || !cfg->on_msg)
		return -EINVAL;
	if (cfg->frame_bytes_max < MSG_CODEC_HEADER_BYTES || cfg->frame_bytes_max > MSG_CODEC_FRAME_BYTES_MAX)
		return -EINVAL;
	if (cfg->entries_max < 1 || cfg->entries_max > RAFT_MSG_ENTRIES_MAX)
		return -EINVAL;
	/* Only the data link carries entries: its queue must hold the largest frame. */
	if (cfg->queue_bytes_max[TRANSPORT_LINK_DATA] < cfg->frame_bytes_max)
		return -EINVAL;
	for (int k = 0; k < TRANSPORT_LINKS; k++)
		if (cfg->queue_bytes_max[k] < MSG_CODEC_HEADER_BYTES || cfg->queue_msgs_max[k] < 1 ||
		    cfg->queue_msgs_max[k] > (1u << 20))
			return -EINVAL;
	if (cfg->backoff_ms_min < 1 || cfg->backoff_ms_max < cfg->backoff_ms_min || cfg->handshake_timeout_ms < 1)
		return -EINVAL;
	bool self_found = false;
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		self_found |= cfg->servers[i].id == cfg->self_id;
		for (uint32_t j = 0; j < i; j++)
			if (cfg->servers[i].id == cfg->servers[j].id)
				return -EINVAL;
	}
	return self_found ? 0 : -EINVAL;
}

static int listener_open(struct transport *t, const struct config_server *self)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char err[128];
	int fd = -1, rc;
	if (resolve(self->host, self->peer_port, true, &addr, &addr_len, err, sizeof err) < 0) {
		/* Rule 4: our own name does not resolve (yet): listen everywhere, IPv6 and
		 * IPv4 on one socket where the kernel has IPv6. */
		log_warn("transport: server.%u host %s does not resolve (%s); listening on all addresses, port %u",
			 self->id, self->host, err, self->peer_port);
		struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_port = htons(self->peer_port),
					     .sin6_addr = in6addr_any };
		struct sockaddr_in any4 = { .sin_family = AF_INET, .sin_port = htons(self->peer_port),
					    .sin_addr.s_addr = htonl(INADDR_ANY) };
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			int zero = 0;
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
			memcpy(&addr, &any6, sizeof any6);
			addr_len = sizeof any6;
		} else {
			memcpy(&addr, &any4, sizeof any4);
			addr_len = sizeof any4;
		}
	}
	if (fd < 0)
		fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	rc = bind(fd, (struct sockaddr *)&addr, addr_len);
	if (rc < 0 && errno == EADDRNOTAVAIL) {
		/* Rule 4: our server.N address is not local (NAT, container): listen everywhere. */
		char text[INET6_ADDRSTRLEN + 8];
		addr_text(&addr, text, sizeof text);
		log_warn("transport: server.%u address %s is not local; listening on all addresses, port %u",
			 self->id, text, self->peer_port);
		if (addr.ss_family == AF_INET)
			((struct sockaddr_in *)&addr)->sin_addr.s_addr = htonl(INADDR_ANY);
		else
			((struct sockaddr_in6 *)&addr)->sin6_addr = in6addr_any;
		rc = bind(fd, (struct sockaddr *)&addr, addr_len);
	}
	if (rc < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		log_error("transport: listen on peer port %s:%u: %s", self->host, self->peer_port, strerror(-rc));
		close(fd);
		return rc;
	}
	t->listen_fd = fd;
	return 0;
}

int transport_create(const struct transport_config *cfg, struct io_uring *ring, uint64_t ud_prefix,
		     struct transport **out)
{
	if (config_check(cfg) < 0 || (ud_prefix & TRANSPORT_USER_DATA_MASK)) {
		log_error("transport: bad configuration");
		return -EINVAL;
	}
	struct transport *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	memcpy(t->servers, cfg->servers, cfg->server_count * sizeof *cfg->servers);
	t->cfg.servers = t->servers;
	t->ring = ring;
	t->ud_prefix = ud_prefix;
	t->self_id = cfg->self_id;
	t->cluster_id = transport_cluster_id(cfg->servers, cfg->server_count);
	t->listen_fd = -1;
	t->rng = cfg->seed ? cfg->seed : 1;
	t->limits = (struct msg_codec_limits){ cfg->frame_bytes_max, cfg->entries_max };
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++) {
		t->conns[i].fd = -1;
		t->conns[i].peer = -1;
	}
	int rc = -ENOMEM;
	t->entries = calloc((size_t)cfg->entries_max, sizeof *t->entries);
	if (!t->entries)
		goto fail;
	const struct config_server *self = NULL;
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		const struct config_server *s = &cfg->servers[i];
		if (s->id == cfg->self_id) {
			self = s;
			continue;
		}
		struct tpeer *p = &t->peers[t->peer_count++];
		p->id = s->id;
		p->we_dial = cfg->self_id < s->id; /* rule 2 */
		snprintf(p->name, sizeof p->name, "%u@%s:%u", s->id, s->host, s->peer_port);
		p->host = t->servers[i].host;
		p->port = s->peer_port;
		for (int k = 0; k < TRANSPORT_LINKS; k++)
			p->links[k].conn = -1;
		/* Rule 5: an address is parsed now; a name is looked up before the first dial. */
		struct in6_addr probe;
		if (p->we_dial && (inet_pton(AF_INET, s->host, &probe) == 1 || inet_pton(AF_INET6, s->host, &probe) == 1)) {
			char err[128];
			if (resolve(s->host, s->peer_port, false, &p->addr, &p->addr_len, err, sizeof err) < 0) {
				log_error("transport: server.%u host %s: %s", s->id, s->host, err);
				rc = -EINVAL;
				goto fail;
			}
			p->addr_known = p->addr_numeric = true;
		}
	}
	assert(self);
	rc = listener_open(t, self);
	if (rc < 0)
		goto fail;
	listener_arm(t);
	*out = t;
	return 0;
fail:
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	free(t->entries);
	free(t);
	return rc;
}

static bool transport_in_flight(const struct transport *t)
{
	if (t->accept_in_flight || t->listen_cancel_in_flight)
		return true;
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++)
		if (t->conns[i].state != TCONN_FREE)
			return true;
	return false;
}

void transport_destroy(struct transport *t)
{
	if (!t)
		return;
	t->destroying = true;
	for (int i = 0; i < t->peer_count; i++) /* a lookup in flight frees itself when done */
		if (t->peers[i].resolving)
			tresolve_release(t->peers[i].resolving);
	for (int i = 0; i < TRANSPORT_CONNS_MAX; i++)
		conn_close(t, &t->conns[i], "shutting down");
	if (t->accept_in_flight) {
		struct io_uring_sqe *sqe = sqe_get(t);
		io_uring_prep_cancel_fd(sqe, t->listen_fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, user_data(t, TOP_CANCEL, SLOT_LISTENER, t->listen_generation));
		t->listen_cancel_in_flight = true;
	}
	/* Wait for our operations (invariant 1: never free what the kernel may write). */
	int64_t waited_ms = 0;
	while (transport_in_flight(t) && waited_ms < 5000) {
		struct __kernel_timespec ts = { 0, 10 * 1000000LL };
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(t->ring, &cqe, 1, &ts, NULL);
		unsigned head, count = 0;
		io_uring_for_each_cqe(t->ring, head, cqe)
		{
			count++;
			if (transport_user_data_match(t->ud_prefix, cqe->user_data))
				transport_on_cqe(t, cqe);
		}
		io_uring_cq_advance(t->ring, count);
		waited_ms += count ? 0 : 10;
	}
	if (transport_in_flight(t)) {
		/* The kernel still holds buffers of ours: leak them rather than free them. */
		log_error("transport: operations still in flight after 5 s; leaking the transport");
		return;
	}
	close(t->listen_fd);
	free(t->entries);
	free(t);
}
