/*
 * hub.h — where the client workers and the raft thread meet: one pair of SPSC queues
 * per worker (a "port") and the wake-up of each side. core/ owns it; the worker loop
 * (net/worker.c) holds one end of every port, the raft thread's loop (raft/pipeline.c)
 * the other, and neither knows the other's structures: what crosses is a struct rk_msg
 * (core/msg.h), whose producer mallocs it and whose consumer frees it.
 *
 *   worker i ──hub_to_raft(i)────► port i.to_raft   ──hub_from_worker(i)──► raft
 *   worker i ◄─hub_from_raft(i)─── port i.from_raft ◄─hub_to_worker(i)───── raft
 *
 * Invariants
 *   1. Each queue has exactly one producer thread and one consumer thread.
 *   2. Wake-ups follow core/wake.h: a consumer announces sleep in its `sleeping` flag,
 *      re-checks its queues, then blocks on its ring; a producer that sees the flag
 *      posts IORING_OP_MSG_RING to that ring (from its own ring). No lock, no eventfd.
 *   3. Limits: HUB_QUEUE_CAPACITY slots per queue. A worker that finds to_raft full
 *      stops reading its clients (hub_to_raft returns false). The raft thread never
 *      drops a reply or a notification, and never waits for a worker either: it may
 *      hold store shard locks while it queues a watch event (store.h: the event is
 *      queued before any reader can see the change), and a worker blocked on one of
 *      those locks would never drain its queue. So when from_raft is full, messages go
 *      to the port's overflow list (a mutex the worker never holds while it waits for
 *      anything), and keep going there until the worker has drained it: FIFO holds
 *      because the worker takes from_raft first and the overflow only when from_raft
 *      is empty and the overflow was seen non-empty before it looked (hub_from_raft). The overflow is bounded by what can be queued at all: replies by
 *      the requests in flight (maxOutstanding limits), events by the registered
 *      watches (each fires once).
 *   4. The raft thread's ring attaches before any worker starts. A worker's ring
 *      attaches on its thread when its loop starts; a message queued before that is
 *      found by the worker's first look at its queue, so it needs no wake-up.
 */
#ifndef RK_HUB_H
#define RK_HUB_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/msg.h"
#include "core/spsc.h"

#define HUB_PORTS_MAX 64
#define HUB_QUEUE_CAPACITY 65536

struct hub_overflow;

struct hub_port {
	struct spsc to_raft;   /* the worker produces, the raft thread consumes */
	struct spsc from_raft; /* the raft thread produces, the worker consumes */
	/* from_raft's overflow (invariant 3): a list, under overflow_lock */
	pthread_mutex_t overflow_lock;
	struct hub_overflow *overflow_head, *overflow_tail;
	_Atomic size_t overflow_count; /* written under the lock; read without it */
	uint64_t overflow_peak;        /* most messages it held (raft thread, under the lock) */
	_Atomic int sleeping;  /* the worker announced sleep */
	_Atomic int ring_fd;   /* the worker's ring (-1 until attached) */
	uint64_t wake_user_data;
};

struct hub {
	int port_count;
	struct hub_port ports[HUB_PORTS_MAX];
	_Atomic int raft_sleeping;
	_Atomic int raft_ring_fd; /* -1 until attached */
	uint64_t raft_wake_user_data;
	_Atomic bool stopping; /* every thread that owns a side returns from its loop */
	/* Clients are served (set by the raft thread): false while a cluster member has
	 * had no leader for a while, as a ZooKeeper server that is LOOKING serves no one. */
	_Atomic bool serving;
};

/* 0 or -ENOMEM / -EINVAL (port_count outside 1..HUB_PORTS_MAX). */
int hub_init(struct hub *h, int port_count);
/* Frees the queues and any message still in them. No thread may use h any more. */
void hub_destroy(struct hub *h);

/* The side's own ring, for the other side's MSG_RING wake-ups. */
void hub_attach_raft(struct hub *h, int ring_fd, uint64_t wake_user_data);
void hub_attach_worker(struct hub *h, int port, int ring_fd, uint64_t wake_user_data);

/* Worker `port`'s thread: queue m for the raft thread and wake it. false: queue full
 * (m is still the caller's). */
bool hub_to_raft(struct hub *h, int port, struct rk_msg *m, struct io_uring *sender_ring);
/* Raft thread: queue m for worker `port` and wake it; waits for room, never drops.
 * A port that does not exist frees m. */
void hub_to_worker(struct hub *h, int port, struct rk_msg *m, struct io_uring *sender_ring);
/* Raft thread: the next message from worker `port`, or NULL. */
static inline struct rk_msg *hub_from_worker(struct hub *h, int port)
{
	return spsc_pop(&h->ports[port].to_raft);
}
/* Raft thread: true when some worker queued something (a hint: for the sleep check). */
bool hub_raft_has_input(struct hub *h);

/* Worker thread: its next message, or what it would get next without taking it. */
struct rk_msg *hub_overflow_take(struct hub_port *p, bool pop);
/* The overflow count is read before the queue: while the overflow holds anything the
 * raft thread pushes nothing to from_raft, so a queue found empty after a non-zero
 * count means the overflow's head is the oldest message. Read the other way round, the
 * queue can be empty, then fill and overflow before the count is read, and the
 * overflow's head would overtake a whole queue of older messages. */
static inline struct rk_msg *hub_next_from_raft(struct hub *h, int port, bool pop)
{
	struct hub_port *p = &h->ports[port];
	bool overflowed = atomic_load(&p->overflow_count) != 0;
	struct rk_msg *m = pop ? spsc_pop(&p->from_raft) : spsc_peek(&p->from_raft);
	if (m || !overflowed)
		return m;
	return hub_overflow_take(p, pop);
}
static inline struct rk_msg *hub_from_raft(struct hub *h, int port)
{
	return hub_next_from_raft(h, port, true);
}
static inline struct rk_msg *hub_peek_from_raft(struct hub *h, int port)
{
	return hub_next_from_raft(h, port, false);
}

#endif
