/*
 * transport_hello.c — the handshake of a peer connection (rule 3 and the hello's wire
 * format in transport.c): encoding and decoding a hello, the cluster identity it
 * carries, sending ours, checking the peer's (the acceptor answers first, even when it
 * refuses, so the dialer can log what differs) and bringing the link up.
 *
 * Thread: the owner's.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/crc32c.h"
#include "core/log.h"
#include "raft/transport_impl.h"

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

void transport_hello_send(struct transport *t, struct tconn *c, uint32_t receiver_id)
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

static void conn_up(struct transport *t, struct tconn *c)
{
	struct tpeer *p = &t->peers[c->peer];
	struct tlink *l = &p->links[c->kind];
	c->state = TCONN_UP;
	l->backoff_ms = 0;
	/* The peer is back: its other link redials now, not when its backoff (up to
	 * backoff_ms_max after a long outage) runs out. Until both are up a follower
	 * knows its leader through the control link but cannot forward to it. */
	for (int k = 0; p->we_dial && k < TRANSPORT_LINKS; k++)
		if (p->links[k].conn < 0) {
			p->links[k].dial_at_ms = t->now_ms;
			p->links[k].backoff_ms = 0;
		}
	p->stats.links_established++;
	if (l->ever_up)
		p->stats.reconnects++;
	l->ever_up = true;
	if (tpeer_connected(t, p) && !p->logged_up) {
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
	transport_addr_text(&c->remote, from, sizeof from);
	if (peer >= 0) {
		t->peers[peer].stats.handshakes_refused++;
		char refused[TRANSPORT_PROBLEM_BYTES + 32];
		snprintf(refused, sizeof refused, "handshake refused: %s", why);
		tpeer_problem(&t->peers[peer], c->kind, c->dialed ? "its answer" : from, refused);
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
	tconn_close(t, c, NULL); /* an accepted one was never attached: c->peer is -1 */
}

/* Checks the peer's hello (rule 3). The acceptor answers and attaches the connection. */
void tconn_on_hello(struct transport *t, struct tconn *c)
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
	claimed = c->dialed ? c->peer : transport_peer_index(t, h.sender_id);
	if (!c->dialed) {
		/* Answer first, even when refusing, so the dialer can log what differs. */
		c->kind = h.link_kind == 2 ? TRANSPORT_LINK_DATA : TRANSPORT_LINK_CONTROL;
		transport_hello_send(t, c, h.sender_id);
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
		tconn_close(t, &t->conns[l->conn], "replaced by a new connection (peer restarted?)");
	if (tconn_tx_init(t, c) < 0) {
		hello_refuse(t, c, claimed, "out of memory");
		return;
	}
	c->peer = claimed;
	l->conn = tconn_slot(t, c);
	conn_up(t, c);
}
