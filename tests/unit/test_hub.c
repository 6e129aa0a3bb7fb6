/*
 * The hub's raft-to-worker direction (core/hub.h, invariant 3): the raft thread never
 * waits for a worker. Past HUB_QUEUE_CAPACITY messages go to the port's overflow and
 * come out in order; and a raft thread that queues while holding a lock the worker
 * needs before it drains (a store shard lock during an apply's watch events) finishes
 * instead of deadlocking.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"

/* Called from the test's own threads too: no criterion assert here (it keeps
 * per-thread state that a thread of ours leaks). */
static struct rk_msg *msg(int32_t xid)
{
	struct rk_msg *m = calloc(1, sizeof *m);
	if (!m)
		abort();
	m->kind = RK_MSG_EVENT;
	m->xid = xid;
	return m;
}

Test(hub, a_full_queue_overflows_in_order)
{
	struct hub h;
	cr_assert_eq(hub_init(&h, 1), 0);
	int n = HUB_QUEUE_CAPACITY + 5000;
	for (int i = 0; i < n; i++)
		hub_to_worker(&h, 0, msg(i), NULL); /* no worker attached: no wake-up */
	cr_assert_eq(atomic_load(&h.ports[0].overflow_count), 5000);
	for (int i = 0; i < n; i++) {
		struct rk_msg *peek = hub_peek_from_raft(&h, 0);
		struct rk_msg *m = hub_from_raft(&h, 0);
		cr_assert_not_null(m, "message %d lost", i);
		cr_assert_eq(peek, m, "peek and pop disagree at %d", i);
		cr_assert_eq(m->xid, i, "out of order: %d at %d", m->xid, i);
		free(m);
		if (i == HUB_QUEUE_CAPACITY + 10)
			hub_to_worker(&h, 0, msg(n), NULL); /* behind the overflow, not in the queue */
	}
	struct rk_msg *last = hub_from_raft(&h, 0);
	cr_assert(last && last->xid == n);
	free(last);
	cr_assert_null(hub_from_raft(&h, 0));
	cr_assert_eq(atomic_load(&h.ports[0].overflow_count), 0);
	hub_to_worker(&h, 0, msg(7), NULL); /* the queue again once the overflow is empty */
	cr_assert_eq(atomic_load(&h.ports[0].overflow_count), 0);
	hub_destroy(&h); /* frees what is left */
}

#define LOCKED_COUNT (HUB_QUEUE_CAPACITY * 2)

static struct hub lh;
static pthread_mutex_t shard = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int raft_holds;

static void *raft_side(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&shard);
	atomic_store(&raft_holds, 1);
	for (int i = 0; i < LOCKED_COUNT; i++)
		hub_to_worker(&lh, 0, msg(i), NULL);
	pthread_mutex_unlock(&shard);
	return NULL;
}

Test(hub, queueing_under_a_lock_the_worker_waits_for_does_not_deadlock, .timeout = 30)
{
	cr_assert_eq(hub_init(&lh, 1), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, raft_side, NULL), 0);
	while (!atomic_load(&raft_holds))
		sched_yield();
	/* the worker serves a read first: it needs the shard the raft thread holds */
	pthread_mutex_lock(&shard);
	pthread_mutex_unlock(&shard);
	int next = 0;
	struct rk_msg *m;
	while ((m = hub_from_raft(&lh, 0))) {
		cr_assert_eq(m->xid, next++);
		free(m);
	}
	cr_assert_eq(next, LOCKED_COUNT);
	pthread_join(t, NULL);
	hub_destroy(&lh);
}

#define RACE_COUNT 1000000

static void *raft_racer(void *arg)
{
	struct hub *h = arg;
	for (int i = 0; i < RACE_COUNT; i++)
		hub_to_worker(h, 0, msg(i), NULL);
	return NULL;
}

Test(hub, a_racing_worker_sees_every_message_once_in_order, .timeout = 60)
{
	static struct hub h;
	cr_assert_eq(hub_init(&h, 1), 0);
	/* Both threads on one CPU: the scheduler then preempts the worker between its
	 * looks at the queue and at the overflow, the window where a wrong order shows
	 * (a worker that read the queue first failed 28 runs in 100 so). */
	cpu_set_t was, one;
	cr_assert_eq(sched_getaffinity(0, sizeof was, &was), 0);
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &was)) {
			CPU_SET(c, &one);
			break;
		}
	cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, raft_racer, &h), 0);
	int next = 0;
	unsigned spin = 0;
	while (next < RACE_COUNT) {
		struct rk_msg *m = hub_from_raft(&h, 0);
		if (!m)
			continue;
		cr_assert_eq(m->xid, next, "got %d, expected %d", m->xid, next);
		next++;
		free(m);
		if ((++spin & 0xffff) == 0) { /* fall behind now and then: the overflow fills */
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	pthread_join(t, NULL);
	sched_setaffinity(0, sizeof was, &was);
	cr_assert_null(hub_from_raft(&h, 0));
	cr_assert_gt(h.ports[0].overflow_peak, 0, "the test never overflowed");
	hub_destroy(&h);
}
