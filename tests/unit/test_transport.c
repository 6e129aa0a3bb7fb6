/*
 * test_transport.c — raft/transport.c over real sockets on 127.0.0.1: two or three
 * transports in this process, each with its own io_uring, driven by pump() below as
 * the raft thread's loop would drive one. Some tests put a hand-written peer (raw
 * sockets speaking the hello and frames) on the other side, to refuse, or to never
 * read its data link.
 *
 * What they prove: the handshake connects every pair and messages with entries
 * arrive intact and in order per link; a foreign cluster, a wrong protocol version or
 * a stranger is refused; a peer that restarts (either side) is reconnected and
 * traffic resumes; a heartbeat queued behind 64 MiB of appends to a peer that does not
 * read its data link still arrives at once; queues are bounded and drops counted; a
 * peer whose name resolves only later, or moves to another address, is looked up
 * again and reached (in a private mount namespace with its own /etc/hosts).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "raft/msg_codec.h"
#include "raft/transport.h"

#define UD_PREFIX (UINT64_C(7) << 40)
#define NODES_MAX 3
#define RECV_MAX 4096

struct received {
	enum raft_msg_type type;
	uint64_t from, term, log_index, ctx;
	int entry_count;
};

struct node {
	uint32_t id;
	struct io_uring ring;
	struct transport *t;
	struct transport_config cfg;
	struct config_server servers[NODES_MAX + 1];
	uint32_t server_count;
	struct received got[RECV_MAX];
	int got_count;
	int bad_entries; /* entries whose bytes were not what the sender wrote */
};

static int64_t now_ms(void)
{
	return rk_now_us() / 1000;
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static struct config_server server(uint32_t id, const char *host, uint16_t port)
{
	struct config_server s = { .id = id, .peer_port = port, .election_port = (uint16_t)(port + 1) };
	snprintf(s.host, sizeof s.host, "%s", host);
	return s;
}

/* Entry bytes are a function of (index, position): the receiver can check them. */
static uint8_t entry_byte(uint64_t index, uint32_t i)
{
	return (uint8_t)(index * 131 + i * 7 + 3);
}

static void on_msg(void *ctx, const struct raft_msg *m)
{
	struct node *n = ctx;
	for (int i = 0; i < m->entry_count; i++) {
		const struct raft_entry *e = &m->entries[i];
		for (uint32_t j = 0; j < e->len; j++)
			if (e->data[j] != entry_byte(e->index, j)) {
				n->bad_entries++;
				break;
			}
	}
	if (n->got_count < RECV_MAX)
		n->got[n->got_count++] = (struct received){ m->type, m->from, m->term, m->log_index, m->ctx,
							    m->entry_count };
}

static void node_start(struct node *n)
{
	cr_assert_eq(io_uring_queue_init(256, &n->ring, 0), 0);
	n->cfg.servers = n->servers; /* the node may have moved since it was configured */
	n->cfg.on_msg = on_msg;
	n->cfg.ctx = n;
	cr_assert_eq(transport_create(&n->cfg, &n->ring, UD_PREFIX, &n->t), 0);
}

static void node_init(struct node *n, uint32_t id, const struct config_server *servers, uint32_t count)
{
	memset(n, 0, sizeof *n);
	n->id = id;
	memcpy(n->servers, servers, count * sizeof *servers);
	n->server_count = count;
	transport_config_default(&n->cfg, id, n->servers, count);
	n->cfg.backoff_ms_min = 20;
	n->cfg.backoff_ms_max = 500;
}

static void node_stop(struct node *n)
{
	transport_destroy(n->t);
	n->t = NULL;
	io_uring_queue_exit(&n->ring);
}

/* One turn of an owner's loop for every running node, plus an optional hook. */
static void (*pump_hook)(void);

static void pump_once(struct node **nodes, int count)
{
	int64_t now = now_ms();
	for (int i = 0; i < count; i++) {
		struct node *n = nodes[i];
		if (!n->t)
			continue;
		transport_tick(n->t, now);
		transport_flush(n->t);
		struct __kernel_timespec ts = { 0, 200 * 1000 };
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&n->ring, &cqe, 1, &ts, NULL);
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&n->ring, head, cqe)
		{
			seen++;
			cr_assert(transport_user_data_match(UD_PREFIX, cqe->user_data));
			transport_on_cqe(n->t, cqe);
		}
		io_uring_cq_advance(&n->ring, seen);
	}
	if (pump_hook)
		pump_hook();
}

static void pump_ms(struct node **nodes, int count, int ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end)
		pump_once(nodes, count);
}

static bool connected(struct node *n, uint32_t peer)
{
	struct transport_peer_status st;
	cr_assert_eq(transport_peer_status(n->t, peer, &st), 0);
	return st.connected;
}

/* Pumps until every node is connected to every other; returns the ms it took. */
static int64_t pump_until_mesh(struct node **nodes, int count, int timeout_ms)
{
	int64_t start = now_ms();
	for (;;) {
		bool all = true;
		for (int i = 0; i < count; i++)
			for (int j = 0; j < count; j++)
				if (i != j && (!nodes[i]->t || !connected(nodes[i], nodes[j]->id)))
					all = false;
		if (all)
			return now_ms() - start;
		cr_assert_lt(now_ms() - start, timeout_ms, "no mesh after %d ms", timeout_ms);
		pump_once(nodes, count);
	}
}

static struct transport_peer_status status(struct node *n, uint32_t peer)
{
	struct transport_peer_status st;
	cr_assert_eq(transport_peer_status(n->t, peer, &st), 0);
	return st;
}

static uint8_t entry_buf[3][2 << 20];

/* An APPEND from->to carrying `count` entries of `len` bytes from index first. */
static struct raft_msg append(uint32_t from, uint32_t to, uint64_t first, int count, uint32_t len,
			      struct raft_entry *entries)
{
	for (int i = 0; i < count; i++) {
		uint64_t index = first + (uint64_t)i;
		for (uint32_t j = 0; j < len; j++)
			entry_buf[i][j] = entry_byte(index, j);
		entries[i] = (struct raft_entry){ .index = index, .term = 3, .type = RAFT_ENTRY_NORMAL,
						  .len = len, .data = entry_buf[i] };
	}
	return (struct raft_msg){ .type = RAFT_MSG_APPEND, .from = from, .to = to, .term = 3,
				  .log_index = first - 1, .log_term = 3, .commit = first - 1,
				  .entry_count = count, .entries = entries };
}

static struct raft_msg control(enum raft_msg_type type, uint32_t from, uint32_t to, uint64_t ctx)
{
	return (struct raft_msg){ .type = type, .from = from, .to = to, .term = 3, .ctx = ctx };
}

/* ---- a mesh of three ------------------------------------------------------------------ */

Test(transport, three_servers_connect_and_messages_arrive_intact_in_order)
{
	struct config_server servers[3] = {
		server(1, "127.0.0.1", free_port()),
		server(2, "localhost", free_port()),
		server(3, "127.0.0.1", free_port()),
	};
	static struct node a, b, c;
	struct node *nodes[] = { &a, &b, &c };
	node_init(&a, 1, servers, 3);
	node_init(&b, 2, servers, 3);
	node_init(&c, 3, servers, 3);
	for (int i = 0; i < 3; i++)
		node_start(nodes[i]);
	int64_t ms = pump_until_mesh(nodes, 3, 3000);
	printf("transport: mesh of 3 up in %lld ms\n", (long long)ms);

	/* 1 → 2 and 1 → 3: 300 appends (1..3 entries of up to 2000 bytes), heartbeats between */
	struct raft_entry entries[3];
	uint64_t next_index[4] = { 0, 0, 1, 1 };
	for (int i = 0; i < 300; i++) {
		for (uint32_t to = 2; to <= 3; to++) {
			int count = 1 + i % 3;
			struct raft_msg m = append(1, to, next_index[to], count, (uint32_t)(i * 7 % 2000), entries);
			cr_assert_eq(transport_send(a.t, &m), 0);
			next_index[to] += (uint64_t)count;
			struct raft_msg h = control(RAFT_MSG_HEARTBEAT, 1, to, (uint64_t)i);
			cr_assert_eq(transport_send(a.t, &h), 0);
		}
		struct raft_msg v = control(RAFT_MSG_VOTE_RESP, 3, 2, (uint64_t)i);
		cr_assert_eq(transport_send(c.t, &v), 0);
		if (i % 50 == 0)
			pump_once(nodes, 3);
	}
	int64_t start = now_ms();
	while ((b.got_count < 900 || c.got_count < 600) && now_ms() - start < 5000)
		pump_once(nodes, 3);
	cr_assert_eq(b.got_count, 900);
	cr_assert_eq(c.got_count, 600);
	for (int k = 0; k < 2; k++) {
		struct node *n = k ? &c : &b;
		cr_assert_eq(n->bad_entries, 0);
		uint64_t expect_index = 1, expect_hb = 0, expect_vote = 0;
		for (int i = 0; i < n->got_count; i++) {
			const struct received *r = &n->got[i];
			switch (r->type) {
			case RAFT_MSG_APPEND:
				cr_assert_eq(r->from, 1);
				cr_assert_eq(r->log_index + 1, expect_index, "appends in order");
				expect_index += (uint64_t)r->entry_count;
				break;
			case RAFT_MSG_HEARTBEAT:
				cr_assert_eq(r->ctx, expect_hb++, "heartbeats in order");
				break;
			case RAFT_MSG_VOTE_RESP:
				cr_assert_eq(r->from, 3);
				cr_assert_eq(r->ctx, expect_vote++, "votes in order");
				break;
			default:
				cr_assert_fail("unexpected type %d", r->type);
			}
		}
		cr_assert_eq(expect_hb, 300);
	}
	struct transport_peer_status st = status(&a, 2);
	cr_assert_eq(st.lookups, 1, "a name (localhost) is looked up before the first dial");
	cr_assert_eq(status(&a, 3).lookups, 0, "an address never is");
	cr_assert_eq(st.msgs_sent, 600);
	cr_assert_eq(st.msgs_dropped, 0);
	cr_assert_eq(st.queued_bytes[TRANSPORT_LINK_DATA], 0);
	cr_assert_eq(status(&b, 1).msgs_received, 600);
	for (int i = 0; i < 3; i++)
		node_stop(nodes[i]);
}

/* ---- refusals ------------------------------------------------------------------------- */

Test(transport, a_foreign_cluster_is_refused_on_both_sides)
{
	uint16_t p1 = free_port(), p2 = free_port(), p3 = free_port();
	struct config_server ours[2] = { server(1, "127.0.0.1", p1), server(2, "127.0.0.1", p2) };
	struct config_server theirs[3] = { server(1, "127.0.0.1", p1), server(2, "127.0.0.1", p2),
					   server(3, "127.0.0.1", p3) };
	static struct node a, b;
	struct node *nodes[] = { &a, &b };
	node_init(&a, 1, ours, 2);
	node_init(&b, 2, theirs, 3);
	node_start(&a);
	node_start(&b);
	pump_ms(nodes, 2, 600);
	cr_assert(!connected(&a, 2));
	cr_assert(!connected(&b, 1));
	cr_assert_geq(status(&a, 2).handshakes_refused, 2, "the dialer refuses the answer");
	cr_assert_geq(status(&b, 1).handshakes_refused, 2, "the acceptor refuses the hello");
	cr_assert_eq(status(&a, 2).links_established, 0);
	struct raft_msg h = control(RAFT_MSG_HEARTBEAT, 1, 2, 0);
	cr_assert_eq(transport_send(a.t, &h), -ENOTCONN);
	cr_assert_eq(status(&a, 2).msgs_dropped, 1);
	node_stop(&a);
	node_stop(&b);
}

static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* Reads what the transport answers on fd until EOF (pumping it meanwhile). */
static ssize_t raw_read_to_eof(int fd, struct node **nodes, int count, uint8_t *buf, size_t cap)
{
	fcntl(fd, F_SETFL, O_NONBLOCK);
	size_t got = 0;
	int64_t end = now_ms() + 2000;
	while (now_ms() < end) {
		pump_once(nodes, count);
		ssize_t n = read(fd, buf + got, cap - got);
		if (n == 0)
			return (ssize_t)got;
		if (n > 0)
			got += (size_t)n;
		else if (errno != EAGAIN)
			return (ssize_t)got;
	}
	return -1; /* never closed */
}

Test(transport, a_wrong_version_or_a_stranger_is_answered_and_closed)
{
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "127.0.0.1", free_port()) };
	static struct node b;
	struct node *nodes[] = { &b };
	node_init(&b, 2, servers, 2); /* server 1 is never started: we play it by hand */
	node_start(&b);
	uint64_t cluster = transport_cluster_id(servers, 2);
	struct {
		uint16_t version;
		uint32_t sender, receiver;
		uint64_t cluster;
		bool answered;
	} cases[] = {
		{ 99, 1, 2, cluster, true },          /* another protocol version */
		{ 1, 1, 2, cluster ^ 1, true },       /* another cluster */
		{ 1, 7, 2, cluster, true },           /* not in the list */
		{ 1, 2, 2, cluster, true },           /* our own id */
		{ 1, 1, 3, cluster, true },           /* takes us for someone else */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct transport_hello h = { TRANSPORT_HELLO_MAGIC, cases[i].version, 1, cases[i].sender,
					     cases[i].receiver, cases[i].cluster };
		uint8_t hello[TRANSPORT_HELLO_BYTES], answer[256];
		transport_hello_encode(&h, hello);
		int fd = raw_connect(servers[1].peer_port);
		cr_assert_eq(write(fd, hello, sizeof hello), (ssize_t)sizeof hello);
		ssize_t n = raw_read_to_eof(fd, nodes, 1, answer, sizeof answer);
		cr_assert_eq(n, TRANSPORT_HELLO_BYTES, "case %zu: the answer, then EOF (got %zd)", i, n);
		struct transport_hello back;
		cr_assert_eq(transport_hello_decode(answer, &back), 0);
		cr_assert_eq(back.sender_id, 2);
		cr_assert_eq(back.version, TRANSPORT_PROTOCOL_VERSION);
		cr_assert_eq(back.cluster_id, cluster);
		close(fd);
	}
	cr_assert_eq(status(&b, 1).handshakes_refused, 3, "the cases claiming server 1");
	cr_assert_eq(status(&b, 1).links_established, 0);
	/* not our protocol at all: closed without an answer */
	int fd = raw_connect(servers[1].peer_port);
	cr_assert_eq(write(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n", 32), 32);
	uint8_t buf[64];
	cr_assert_eq(raw_read_to_eof(fd, nodes, 1, buf, sizeof buf), 0);
	close(fd);
	node_stop(&b);
}

Test(transport, the_higher_id_dialing_is_refused)
{
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "127.0.0.1", free_port()) };
	static struct node a;
	struct node *nodes[] = { &a };
	node_init(&a, 1, servers, 2); /* 1 dials 2; 2 must never dial 1 */
	node_start(&a);
	struct transport_hello h = { TRANSPORT_HELLO_MAGIC, TRANSPORT_PROTOCOL_VERSION, 1, 2, 1,
				     transport_cluster_id(servers, 2) };
	uint8_t hello[TRANSPORT_HELLO_BYTES], answer[64];
	transport_hello_encode(&h, hello);
	int fd = raw_connect(servers[0].peer_port);
	cr_assert_eq(write(fd, hello, sizeof hello), (ssize_t)sizeof hello);
	cr_assert_eq(raw_read_to_eof(fd, nodes, 1, answer, sizeof answer), TRANSPORT_HELLO_BYTES);
	close(fd);
	cr_assert_geq(status(&a, 2).handshakes_refused, 1);
	node_stop(&a);
}

/* ---- restarts ------------------------------------------------------------------------- */

static void exchange(struct node **nodes, struct node *x, struct node *y, uint64_t ctx)
{
	int before_x = x->got_count, before_y = y->got_count;
	struct raft_entry entries[1];
	struct raft_msg m = append(x->id, y->id, 10, 1, 100, entries);
	cr_assert_eq(transport_send(x->t, &m), 0);
	struct raft_msg r = control(RAFT_MSG_APPEND_RESP, y->id, x->id, ctx);
	cr_assert_eq(transport_send(y->t, &r), 0);
	int64_t end = now_ms() + 2000;
	while ((x->got_count == before_x || y->got_count == before_y) && now_ms() < end)
		pump_once(nodes, 2);
	cr_assert_eq(y->got_count, before_y + 1);
	cr_assert_eq(x->got_count, before_x + 1);
	cr_assert_eq(x->got[before_x].ctx, ctx);
}

Test(transport, a_restarted_peer_is_reconnected_with_backoff_and_traffic_resumes)
{
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "127.0.0.1", free_port()) };
	static struct node a, b;
	struct node *nodes[] = { &a, &b };
	node_init(&a, 1, servers, 2);
	node_init(&b, 2, servers, 2);
	node_start(&a);
	node_start(&b);
	pump_until_mesh(nodes, 2, 3000);
	exchange(nodes, &a, &b, 1);

	/* the accepting side restarts: the dialer notices and redials */
	node_stop(&b);
	int64_t start = now_ms();
	while (connected(&a, 2) && now_ms() - start < 2000)
		pump_once(nodes, 2);
	cr_assert(!connected(&a, 2));
	/* 1.5 s down: with backoff from 20 ms doubling to 500 ms, about 7 dials per link,
	 * not one per turn */
	uint64_t dials_before = status(&a, 2).dial_attempts;
	pump_ms(nodes, 2, 1500);
	uint64_t dials = status(&a, 2).dial_attempts - dials_before;
	printf("transport: %llu dials in 1.5 s while the peer was down (both links)\n", (unsigned long long)dials);
	cr_assert_geq(dials, 2 * 4);
	cr_assert_leq(dials, 2 * 10);
	node_init(&b, 2, servers, 2);
	node_start(&b);
	int64_t ms = pump_until_mesh(nodes, 2, 3000);
	printf("transport: acceptor restarted, reconnected in %lld ms\n", (long long)ms);
	cr_assert_geq(status(&a, 2).reconnects, 2, "both links redialed");
	exchange(nodes, &a, &b, 2);

	/* the dialing side restarts: the acceptor takes the new connections */
	node_stop(&a);
	node_init(&a, 1, servers, 2);
	node_start(&a);
	ms = pump_until_mesh(nodes, 2, 3000);
	printf("transport: dialer restarted, reconnected in %lld ms\n", (long long)ms);
	exchange(nodes, &a, &b, 3);
	cr_assert_geq(status(&b, 1).reconnects, 2);
	node_stop(&a);
	node_stop(&b);
}

/*
 * After a long outage both links' redials are up to backoff_ms_max apart. Once one of
 * them is up again the peer is back, and the other must not wait out its own delay: a
 * follower that knows its leader through the control link drops every forward on a
 * data link that is still down (found by go-zookeeper's TestNoQuorum: 0.9 s of
 * dropped forwards after a leader restarted).
 */
Test(transport, once_a_peer_is_back_on_one_link_the_other_is_dialed_at_once)
{
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "127.0.0.1", free_port()) };
	static struct node a, b;
	struct node *nodes[] = { &a, &b };
	node_init(&a, 1, servers, 2);
	node_init(&b, 2, servers, 2);
	a.cfg.backoff_ms_max = 4000;
	node_start(&a);
	node_start(&b);
	pump_until_mesh(nodes, 2, 3000);
	node_stop(&b);
	pump_ms(nodes, 2, 5000); /* 20, 40, ... ms: the delays reach 2-4 s */
	cr_assert(!connected(&a, 2));
	node_init(&b, 2, servers, 2);
	node_start(&b);
	int64_t start = now_ms(), first = -1, both = -1;
	while (both < 0 && now_ms() - start < 10000) {
		pump_once(nodes, 2);
		struct transport_peer_status st = status(&a, 2);
		if (first < 0 && (st.link_up[0] || st.link_up[1]))
			first = now_ms();
		if (st.connected)
			both = now_ms();
	}
	cr_assert_geq(both, 0, "both links up within 10 s");
	printf("transport: first link up %lld ms after the restart, the second %lld ms after it\n",
	       (long long)(first - start), (long long)(both - first));
	cr_assert_lt(both - first, 300, "the second link waited %lld ms", (long long)(both - first));
	node_stop(&a);
	node_stop(&b);
}

/* ---- peer names that resolve late or move ----------------------------------------------- */

static char hosts_path[64];

/* Rewrites this process's private /etc/hosts (the bind mount's source, in place). */
static void hosts_write(const char *lines)
{
	FILE *f = fopen(hosts_path, "w");
	cr_assert(f);
	fprintf(f, "127.0.0.1 localhost\n%s", lines);
	fclose(f);
}

/* Gives this test's process (criterion forks one per test) its own /etc/hosts, and a
 * resolv.conf whose server refuses at once so that no lookup leaves the machine.
 * false: mount namespaces are not allowed here. */
static bool hosts_private(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return false;
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
	snprintf(hosts_path, sizeof hosts_path, "/tmp/rk-transport-hosts.%d", (int)getpid());
	char resolv_path[64];
	snprintf(resolv_path, sizeof resolv_path, "/tmp/rk-transport-resolv.%d", (int)getpid());
	hosts_write("");
	FILE *f = fopen(resolv_path, "w");
	cr_assert(f);
	fprintf(f, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
	fclose(f);
	cr_assert_eq(mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(mount(resolv_path, "/etc/resolv.conf", NULL, MS_BIND, NULL), 0, "%s", strerror(errno));
	unlink(resolv_path); /* the mount keeps it */
	return true;
}

Test(transport, a_peer_name_that_resolves_only_later_or_moves_is_looked_up_again)
{
	if (!hosts_private())
		cr_skip_test("mount namespaces are not allowed here (unshare: %s)", strerror(errno));
	uint16_t port2 = free_port();
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "rk-late-peer.test", port2) };
	static struct node a, b;
	struct node *nodes[] = { &a, &b };

	/* The name does not resolve: server 1 starts anyway and keeps looking it up. */
	node_init(&a, 1, servers, 2);
	node_start(&a);
	pump_ms(nodes, 1, 600);
	struct transport_peer_status st = status(&a, 2);
	printf("transport: %llu lookups, %llu failed, in 0.6 s before the name existed\n",
	       (unsigned long long)st.lookups, (unsigned long long)st.lookup_failures);
	cr_assert_geq(st.lookup_failures, 2, "looked up again after a failure");
	cr_assert_leq(st.lookups, 12, "with backoff, not every turn");
	cr_assert_eq(st.dial_attempts, 0, "nothing to dial without an address");
	cr_assert(!st.connected);

	/* The pod appears: its name resolves and server 1 connects. */
	hosts_write("127.0.0.1 rk-late-peer.test\n");
	node_init(&b, 2, servers, 2);
	node_start(&b);
	int64_t ms = pump_until_mesh(nodes, 2, 3000);
	printf("transport: connected %lld ms after the name appeared\n", (long long)ms);
	exchange(nodes, &a, &b, 1);

	/* It restarts at another address under the same name: the redial looks it up again
	 * (the old address refuses, so nothing else could connect). */
	node_stop(&b);
	hosts_write("127.0.0.2 rk-late-peer.test\n");
	uint64_t lookups_before = status(&a, 2).lookups;
	node_init(&b, 2, servers, 2);
	node_start(&b);
	ms = pump_until_mesh(nodes, 2, 3000);
	printf("transport: reconnected to the new address in %lld ms\n", (long long)ms);
	cr_assert_gt(status(&a, 2).lookups, lookups_before);
	exchange(nodes, &a, &b, 2);
	node_stop(&a);
	node_stop(&b);
	unlink(hosts_path);
}

/* ---- a peer that does not read its data link ------------------------------------------- */

/* Server 2 by hand: accepts both links, answers the hellos, reads only control. */
static struct {
	int listen_fd;
	int fds[TRANSPORT_LINKS];
	uint64_t cluster_id;
	uint8_t ctl[1 << 16];
	size_t ctl_len;
	int heartbeats;
	int64_t heartbeat_at_us;
} fake;

static void fake_step(void)
{
	int fd = accept4(fake.listen_fd, NULL, NULL, SOCK_NONBLOCK);
	if (fd >= 0) {
		uint8_t hello[TRANSPORT_HELLO_BYTES];
		int64_t end = now_ms() + 1000;
		size_t got = 0;
		while (got < sizeof hello && now_ms() < end) {
			ssize_t n = read(fd, hello + got, sizeof hello - got);
			if (n > 0)
				got += (size_t)n;
		}
		struct transport_hello h;
		cr_assert_eq(transport_hello_decode(hello, &h), 0);
		int kind = h.link_kind - 1;
		cr_assert(kind == TRANSPORT_LINK_CONTROL || kind == TRANSPORT_LINK_DATA);
		struct transport_hello back = { TRANSPORT_HELLO_MAGIC, TRANSPORT_PROTOCOL_VERSION, h.link_kind, 2, 1,
						fake.cluster_id };
		transport_hello_encode(&back, hello);
		cr_assert_eq(write(fd, hello, sizeof hello), (ssize_t)sizeof hello);
		fake.fds[kind] = fd;
	}
	int c = fake.fds[TRANSPORT_LINK_CONTROL];
	if (c < 0)
		return;
	ssize_t n = read(c, fake.ctl + fake.ctl_len, sizeof fake.ctl - fake.ctl_len);
	if (n > 0)
		fake.ctl_len += (size_t)n;
	struct msg_codec_limits limits = { 1 << 16, 16 };
	size_t frame;
	while (msg_codec_peek(fake.ctl, fake.ctl_len, &limits, &frame) == 0 && fake.ctl_len >= frame) {
		struct raft_msg m;
		struct raft_entry e[16];
		cr_assert_eq(msg_codec_decode(fake.ctl, frame, &limits, &m, e), 0);
		if (m.type == RAFT_MSG_HEARTBEAT) {
			fake.heartbeats++;
			fake.heartbeat_at_us = rk_now_us();
		}
		memmove(fake.ctl, fake.ctl + frame, fake.ctl_len - frame);
		fake.ctl_len -= frame;
	}
}

static void fake_start(struct config_server *servers)
{
	memset(&fake, 0, sizeof fake);
	fake.fds[0] = fake.fds[1] = -1;
	fake.cluster_id = transport_cluster_id(servers, 2);
	fake.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(fake.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(servers[1].peer_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fake.listen_fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fake.listen_fd, 8), 0);
	pump_hook = fake_step;
}

static void fake_stop(void)
{
	pump_hook = NULL;
	for (int k = 0; k < TRANSPORT_LINKS; k++)
		if (fake.fds[k] >= 0)
			close(fake.fds[k]);
	close(fake.listen_fd);
}

Test(transport, a_heartbeat_is_not_delayed_behind_64MiB_of_appends_to_a_peer_that_does_not_read)
{
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "127.0.0.1", free_port()) };
	static struct node a;
	struct node *nodes[] = { &a };
	node_init(&a, 1, servers, 2);
	a.cfg.queue_bytes_max[TRANSPORT_LINK_DATA] = 80u << 20;
	a.cfg.frame_bytes_max = 2u << 20;
	node_start(&a);
	fake_start(servers);
	int64_t start = now_ms();
	while (!connected(&a, 2)) {
		cr_assert_lt(now_ms() - start, 3000);
		pump_once(nodes, 1);
	}
	/* 64 appends of one 1 MiB entry: 64 MiB on the data link */
	struct raft_entry entries[1];
	for (int i = 0; i < 64; i++) {
		struct raft_msg m = append(1, 2, 1 + (uint64_t)i, 1, 1u << 20, entries);
		cr_assert_eq(transport_send(a.t, &m), 0, "append %d", i);
	}
	pump_ms(nodes, 1, 100); /* the kernel's buffers fill up; the rest waits in the queue */
	struct transport_peer_status st = status(&a, 2);
	printf("transport: behind the heartbeat: %zu bytes queued on the data link, %llu bytes in the kernel\n",
	       st.queued_bytes[TRANSPORT_LINK_DATA], (unsigned long long)st.bytes_sent);
	cr_assert_gt(st.queued_bytes[TRANSPORT_LINK_DATA], 32u << 20, "the data link is really stuck");
	int64_t worst_us = 0;
	for (int round = 0; round < 20; round++) {
		int before = fake.heartbeats;
		int64_t sent_us = rk_now_us();
		struct raft_msg h = control(RAFT_MSG_HEARTBEAT, 1, 2, (uint64_t)round);
		cr_assert_eq(transport_send(a.t, &h), 0);
		while (fake.heartbeats == before) {
			cr_assert_lt(rk_now_us() - sent_us, 1000000, "heartbeat stuck");
			pump_once(nodes, 1);
		}
		int64_t us = fake.heartbeat_at_us - sent_us;
		worst_us = us > worst_us ? us : worst_us;
	}
	printf("transport: heartbeat latency behind 64 MiB of appends: worst of 20 %lld us\n", (long long)worst_us);
	cr_assert_lt(worst_us, 50000);
	cr_assert_gt(status(&a, 2).queued_bytes[TRANSPORT_LINK_DATA], 32u << 20, "still stuck");
	node_stop(&a);
	fake_stop();
}

Test(transport, queues_are_bounded_and_drops_counted)
{
	struct config_server servers[2] = { server(1, "127.0.0.1", free_port()), server(2, "127.0.0.1", free_port()) };
	static struct node a;
	struct node *nodes[] = { &a };
	node_init(&a, 1, servers, 2);
	a.cfg.queue_bytes_max[TRANSPORT_LINK_DATA] = 4u << 20;
	a.cfg.queue_msgs_max[TRANSPORT_LINK_DATA] = 64;
	a.cfg.frame_bytes_max = 1u << 20;
	node_start(&a);

	/* nobody listens yet: every send is dropped and counted */
	pump_ms(nodes, 1, 50);
	struct raft_msg h = control(RAFT_MSG_HEARTBEAT, 1, 2, 0);
	cr_assert_eq(transport_send(a.t, &h), -ENOTCONN);
	cr_assert_eq(status(&a, 2).msgs_dropped, 1);

	fake_start(servers);
	int64_t start = now_ms();
	while (!connected(&a, 2)) {
		cr_assert_lt(now_ms() - start, 3000);
		pump_once(nodes, 1);
	}
	/* the message limit: 100 empty appends, 64 fit */
	int ok = 0, full = 0;
	for (int i = 0; i < 100; i++) {
		struct raft_msg m = append(1, 2, 1, 0, 0, NULL);
		int rc = transport_send(a.t, &m);
		ok += rc == 0;
		full += rc == -ENOBUFS;
	}
	cr_assert_eq(ok, 64);
	cr_assert_eq(full, 36);
	cr_assert_eq(status(&a, 2).queued_msgs[TRANSPORT_LINK_DATA], 64);
	/* the byte limit, with the peer never reading: 2000 appends of 64 KiB */
	struct raft_entry entries[1];
	int64_t send_us = 0;
	for (int i = 0; i < 2000; i++) {
		struct raft_msg m = append(1, 2, 1, 1, 64u << 10, entries);
		int64_t t0 = rk_now_us();
		int rc = transport_send(a.t, &m);
		send_us += rk_now_us() - t0;
		cr_assert(rc == 0 || rc == -ENOBUFS);
		ok += rc == 0;
		full += rc == -ENOBUFS;
		struct transport_peer_status st = status(&a, 2);
		cr_assert_leq(st.queued_bytes[TRANSPORT_LINK_DATA], 4u << 20);
		cr_assert_leq(st.queued_msgs[TRANSPORT_LINK_DATA], 64);
		if (i % 10 == 0)
			pump_once(nodes, 1);
	}
	pump_ms(nodes, 1, 100);
	struct transport_peer_status st = status(&a, 2);
	printf("transport: bounded queue: %d queued, %d dropped, %llu sent into the kernel, mean send %lld ns\n",
	       ok, full, (unsigned long long)st.msgs_sent, (long long)(send_us * 1000 / 2000));
	cr_assert_eq(st.msgs_dropped, 1 + (uint64_t)full);
	cr_assert_gt(full, 1000, "most of 125 MiB cannot fit 4 MiB plus the kernel's buffers");
	/* the control link is unaffected */
	cr_assert_eq(transport_send(a.t, &h), 0);
	int before = fake.heartbeats;
	start = now_ms();
	while (fake.heartbeats == before) {
		cr_assert_lt(now_ms() - start, 1000);
		pump_once(nodes, 1);
	}
	node_stop(&a);
	fake_stop();
}
