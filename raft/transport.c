/*
 * transport.c — the peer transport (API in transport.h): TCP connections between the
 * servers of a cluster, carrying struct raft_msg frames (raft/msg_codec.h), on the
 * owner's io_uring. Everything here belongs to the owner's thread. This file holds the
 * design note, the lifetime, the CQE dispatch and the tick; the rest is split by job
 * (file map in transport_impl.h): the handshake (transport_hello.c), a connection's
 * I/O and queues (transport_conn.c), lookups, dialing and accepting (transport_dial.c).
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
 *   max; reset when the link comes up, and then the peer's other link, if down, is
 *   dialed at once (the peer is back: a follower must not know its leader through
 *   the control link for seconds while its forwards on the data link are dropped).
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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "raft/msg_codec.h"
#include "raft/transport_impl.h"

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
			transport_listener_on_accept(t, cqe);
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
		tconn_on_connect(t, c, cqe->res);
		return;
	case TOP_RECV:
		tconn_on_recv(t, c, cqe->res);
		return;
	case TOP_SEND:
		tconn_on_send(t, c, cqe->res);
		return;
	case TOP_CANCEL:
		c->cancel_in_flight = false;
		if (c->state == TCONN_CLOSING)
			tconn_reap(t, c);
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
			tconn_close(t, c, c->state == TCONN_CONNECTING ? "connect timed out" : "handshake timed out");
	}
	for (int i = 0; i < t->peer_count; i++) {
		struct tpeer *p = &t->peers[i];
		if (!p->we_dial)
			continue;
		tpeer_resolve_poll(t, p);
		for (int k = 0; k < TRANSPORT_LINKS; k++)
			if (p->links[k].conn < 0 && now_ms >= p->links[k].dial_at_ms && tpeer_addr_ready(t, p))
				tlink_dial(t, p, (enum transport_link_kind)k);
	}
}

int transport_peer_status(const struct transport *t, uint32_t id, struct transport_peer_status *out)
{
	int pi = transport_peer_index(t, id);
	if (pi < 0)
		return -ENOENT;
	const struct tpeer *p = &t->peers[pi];
	*out = p->stats;
	out->id = id;
	out->connected = tpeer_connected(t, p);
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
			if (transport_resolve(s->host, s->peer_port, false, &p->addr, &p->addr_len, err,
					      sizeof err) < 0) {
				log_error("transport: server.%u host %s: %s", s->id, s->host, err);
				rc = -EINVAL;
				goto fail;
			}
			p->addr_known = p->addr_numeric = true;
		}
	}
	assert(self);
	rc = transport_listener_open(t, self);
	if (rc < 0)
		goto fail;
	transport_listener_arm(t);
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
		tconn_close(t, &t->conns[i], "shutting down");
	if (t->accept_in_flight) {
		struct io_uring_sqe *sqe = transport_sqe_get(t);
		io_uring_prep_cancel_fd(sqe, t->listen_fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, transport_user_data(t, TOP_CANCEL, SLOT_LISTENER, t->listen_generation));
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
