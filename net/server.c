/*
 * server.c — process-wide helpers of the client side: the per-address
 * connection count (maxClientCnxns), session id allocation.
 */
#include "net/server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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
