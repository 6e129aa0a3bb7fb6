/*
 * server.c — process-wide helpers of the client side: the per-address
 * connection count (maxClientCnxns), session id allocation, the listening sockets.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/listen.h"
#include "core/log.h"

struct ip_count {
	uint8_t addr[16];
	int addr_len;
	int count;
};

static struct ip_count *ip_find(struct server *srv, const uint8_t *addr, int addr_len, bool create)
{
	struct ip_count *empty = NULL;
	for (uint32_t i = 0; i < srv->ip_counts_cap; i++) {
		struct ip_count *e = &srv->ip_counts[i];
		if (e->count == 0) {
			if (!empty)
				empty = e;
			continue;
		}
		if (e->addr_len == addr_len && memcmp(e->addr, addr, (size_t)addr_len) == 0)
			return e;
	}
	if (!create)
		return NULL;
	if (!empty) {
		uint32_t cap = srv->ip_counts_cap ? srv->ip_counts_cap * 2 : 64;
		struct ip_count *grown = realloc(srv->ip_counts, cap * sizeof *grown);
		if (!grown)
			return NULL;
		memset(grown + srv->ip_counts_cap, 0, (cap - srv->ip_counts_cap) * sizeof *grown);
		empty = grown + srv->ip_counts_cap;
		srv->ip_counts = grown;
		srv->ip_counts_cap = cap;
	}
	memcpy(empty->addr, addr, (size_t)addr_len);
	empty->addr_len = addr_len;
	return empty;
}

bool server_ip_acquire(struct server *srv, const uint8_t *addr, int addr_len)
{
	int max = srv->cfg.client_connections_per_ip_max;
	pthread_mutex_lock(&srv->ip_lock);
	struct ip_count *e = ip_find(srv, addr, addr_len, true);
	bool ok = e && (max == 0 || e->count < max);
	if (ok)
		e->count++;
	pthread_mutex_unlock(&srv->ip_lock);
	return ok;
}

void server_ip_release(struct server *srv, const uint8_t *addr, int addr_len)
{
	pthread_mutex_lock(&srv->ip_lock);
	struct ip_count *e = ip_find(srv, addr, addr_len, false);
	if (e && e->count > 0)
		e->count--;
	pthread_mutex_unlock(&srv->ip_lock);
}

int64_t server_session_id_next(struct server *srv)
{
	int64_t id = atomic_fetch_add_explicit(&srv->next_session_id, 1, memory_order_relaxed);
	if (id == INT64_MIN || id == 0) /* never 0x8000000000000000 (ZooKeeper), never 0 */
		id = atomic_fetch_add_explicit(&srv->next_session_id, 1, memory_order_relaxed);
	return id;
}

int server_listen_tcp(const char *host, uint16_t port, enum server_listen_mode mode, const char *what, int *fd_out)
{
	struct sockaddr_in6 sa6;
	struct sockaddr_in sa4;
	struct sockaddr *sa;
	socklen_t sa_len;
	int family;
	memset(&sa4, 0, sizeof sa4);
	memset(&sa6, 0, sizeof sa6);
	if (inet_pton(AF_INET, host, &sa4.sin_addr) == 1) {
		family = AF_INET;
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons(port);
		sa = (struct sockaddr *)&sa4;
		sa_len = sizeof sa4;
	} else if (inet_pton(AF_INET6, host, &sa6.sin6_addr) == 1) {
		family = AF_INET6;
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons(port);
		sa = (struct sockaddr *)&sa6;
		sa_len = sizeof sa6;
	} else {
		log_error("%s address %s is not an IPv4 or IPv6 address", what, host);
		return -EINVAL;
	}
	char name[96];
	snprintf(name, sizeof name, "%s %s:%u", what, host, (unsigned)port);
	int rc = mode == SERVER_LISTEN_GROUP_FIRST ? rk_port_claim(sa, sa_len, name) : 0;
	int fd = rc < 0 ? -1 : socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (mode != SERVER_LISTEN_ALONE)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
		rc = rk_bind_listen(fd, sa, sa_len, 1024, name);
	}
	if (rc < 0) {
		log_error("%s: listen: %s", name, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}
