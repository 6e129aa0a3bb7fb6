/*
 * transport_dial.c — reaching peers: resolving names (rule 5: a name is looked up on a
 * short-lived detached thread, at most one per peer, and the tick takes the result),
 * dialing a link with backoff (rule 2: the lower id dials), the listener on our own
 * server.N address (rule 4: the wildcard when that is not local or does not resolve)
 * and accepting connections into their handshake.
 *
 * Thread: the owner's, except tresolve_main (a lookup thread, which shares only its
 * struct tresolve).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/listen.h"
#include "core/log.h"
#include "raft/transport_impl.h"

/* Resolves host:port; blocks for as long as DNS takes, so the owner calls it only at
 * start (our own address, numeric peers) and lookup threads for the rest. 0 or -EINVAL
 * with the reason in err. */
int transport_resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *out,
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

void tresolve_release(struct tresolve *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		free(r);
}

static void *tresolve_main(void *arg)
{
	struct tresolve *r = arg;
	pthread_setname_np(pthread_self(), "rk-resolve");
	r->rc = transport_resolve(r->host, r->port, false, &r->addr, &r->addr_len, r->err, sizeof r->err);
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
void tpeer_resolve_poll(struct transport *t, struct tpeer *p)
{
	struct tresolve *r = p->resolving;
	if (!r || !atomic_load_explicit(&r->done, memory_order_acquire))
		return;
	p->resolving = NULL;
	p->addr_stale = false;
	if (r->rc == 0) {
		if (!p->addr_known || !sockaddr_same(&p->addr, p->addr_len, &r->addr, r->addr_len)) {
			char text[INET6_ADDRSTRLEN + 8];
			transport_addr_text(&r->addr, text, sizeof text);
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
		if (tpeer_problem_is_new(p, why))
			log_warn("transport: peer %s: %s", p->name, why);
		if (!p->addr_known)
			for (int k = 0; k < TRANSPORT_LINKS; k++)
				tlink_backoff(t, &p->links[k]);
	}
	tresolve_release(r);
}

/* Whether a link of p that is due may dial now; starts a lookup when the address is
 * unknown or stale. A slow lookup holds the redial back for at most
 * handshake_timeout_ms when an older address is known. */
bool tpeer_addr_ready(struct transport *t, struct tpeer *p)
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

void tlink_dial(struct transport *t, struct tpeer *p, enum transport_link_kind kind)
{
	struct tlink *l = &p->links[kind];
	struct tconn *c = conn_alloc(t);
	if (!c) { /* slots still closing, or taken by accepted connections in handshake */
		tlink_backoff(t, l);
		return;
	}
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		char why[96];
		snprintf(why, sizeof why, "socket: %s", strerror(errno));
		tpeer_problem(p, kind, NULL, why);
		tlink_backoff(t, l);
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
	if (tconn_rx_reserve(c, TRANSPORT_RX_BYTES_MIN) < 0 || tconn_tx_init(t, c) < 0) {
		tconn_close(t, c, "out of memory");
		return;
	}
	l->conn = tconn_slot(t, c);
	p->stats.dial_attempts++;
	struct io_uring_sqe *sqe = transport_sqe_get(t);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&c->remote, c->remote_len);
	io_uring_sqe_set_data64(sqe, transport_user_data(t, TOP_CONNECT, (unsigned)tconn_slot(t, c), c->generation));
	c->connect_in_flight = true;
}

void tconn_on_connect(struct transport *t, struct tconn *c, int res)
{
	c->connect_in_flight = false;
	if (c->state == TCONN_CLOSING) {
		tconn_reap(t, c);
		return;
	}
	if (res < 0) {
		char why[96];
		snprintf(why, sizeof why, "connect: %s", strerror(-res));
		tconn_close(t, c, why);
		return;
	}
	c->state = TCONN_HELLO;
	transport_hello_send(t, c, t->peers[c->peer].id);
	tconn_arm_recv(t, c);
}

void transport_listener_arm(struct transport *t)
{
	struct io_uring_sqe *sqe = transport_sqe_get(t);
	io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, transport_user_data(t, TOP_ACCEPT, SLOT_LISTENER, t->listen_generation));
	t->accept_in_flight = true;
}

void transport_listener_on_accept(struct transport *t, const struct io_uring_cqe *cqe)
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
			if (tconn_rx_reserve(c, TRANSPORT_RX_BYTES_MIN) < 0)
				tconn_close(t, c, "out of memory");
			else
				tconn_arm_recv(t, c);
		}
	} else if (cqe->res != -ECANCELED && !t->destroying) {
		log_warn("transport: accept: %s", strerror(-cqe->res));
	}
	if (!t->accept_in_flight && !t->destroying)
		transport_listener_arm(t);
}

int transport_listener_open(struct transport *t, const struct config_server *self)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char err[128];
	int fd = -1, rc;
	if (transport_resolve(self->host, self->peer_port, true, &addr, &addr_len, err, sizeof err) < 0) {
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
	char what[64];
	snprintf(what, sizeof what, "transport: peer port %u", self->peer_port);
	rc = rk_bind_listen(fd, (struct sockaddr *)&addr, addr_len, -1, what);
	if (rc == -EADDRNOTAVAIL) {
		/* Rule 4: our server.N address is not local (NAT, container): listen everywhere. */
		char text[INET6_ADDRSTRLEN + 8];
		transport_addr_text(&addr, text, sizeof text);
		log_warn("transport: server.%u address %s is not local; listening on all addresses, port %u",
			 self->id, text, self->peer_port);
		if (addr.ss_family == AF_INET)
			((struct sockaddr_in *)&addr)->sin_addr.s_addr = htonl(INADDR_ANY);
		else
			((struct sockaddr_in6 *)&addr)->sin6_addr = in6addr_any;
		rc = rk_bind_listen(fd, (struct sockaddr *)&addr, addr_len, -1, what);
	}
	if (rc == 0 && listen(fd, 64) < 0)
		rc = -errno;
	if (rc < 0) {
		log_error("transport: listen on peer port %s:%u: %s", self->host, self->peer_port, strerror(-rc));
		close(fd);
		return rc;
	}
	t->listen_fd = fd;
	return 0;
}
