/* hub.c — see hub.h. */
#include "core/hub.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/wake.h"

struct hub_overflow {
	struct hub_overflow *next;
	struct rk_msg *m;
};

int hub_init(struct hub *h, int port_count)
{
	memset(h, 0, sizeof *h);
	if (port_count < 1 || port_count > HUB_PORTS_MAX)
		return -EINVAL;
	h->port_count = port_count;
	atomic_init(&h->raft_ring_fd, -1);
	atomic_init(&h->serving, true);
	for (int i = 0; i < port_count; i++) {
		struct hub_port *p = &h->ports[i];
		atomic_init(&p->ring_fd, -1);
		pthread_mutex_init(&p->overflow_lock, NULL);
		if (spsc_init(&p->to_raft, HUB_QUEUE_CAPACITY) < 0 || spsc_init(&p->from_raft, HUB_QUEUE_CAPACITY) < 0) {
			hub_destroy(h);
			return -ENOMEM;
		}
	}
	return 0;
}

void hub_destroy(struct hub *h)
{
	for (int i = 0; i < h->port_count; i++) {
		struct hub_port *p = &h->ports[i];
		void *m;
		if (p->to_raft.slots)
			while ((m = spsc_pop(&p->to_raft)))
				free(m);
		if (p->from_raft.slots)
			while ((m = spsc_pop(&p->from_raft)))
				free(m);
		spsc_destroy(&p->to_raft);
		spsc_destroy(&p->from_raft);
		while (p->overflow_head) {
			struct hub_overflow *o = p->overflow_head;
			p->overflow_head = o->next;
			free(o->m);
			free(o);
		}
		pthread_mutex_destroy(&p->overflow_lock);
	}
	h->port_count = 0;
}

void hub_attach_raft(struct hub *h, int ring_fd, uint64_t wake_user_data)
{
	h->raft_wake_user_data = wake_user_data;
	atomic_store_explicit(&h->raft_ring_fd, ring_fd, memory_order_release);
}

void hub_attach_worker(struct hub *h, int port, int ring_fd, uint64_t wake_user_data)
{
	assert(port >= 0 && port < h->port_count);
	h->ports[port].wake_user_data = wake_user_data;
	atomic_store_explicit(&h->ports[port].ring_fd, ring_fd, memory_order_release);
}

bool hub_to_raft(struct hub *h, int port, struct rk_msg *m, struct io_uring *sender_ring)
{
	int fd = atomic_load_explicit(&h->raft_ring_fd, memory_order_acquire);
	assert(fd >= 0);
	if (!spsc_push(&h->ports[port].to_raft, m))
		return false;
	rk_ring_wake(&h->raft_sleeping, fd, h->raft_wake_user_data, sender_ring);
	return true;
}

void hub_to_worker(struct hub *h, int port, struct rk_msg *m, struct io_uring *sender_ring)
{
	if (port < 0 || port >= h->port_count) {
		free(m);
		return;
	}
	struct hub_port *p = &h->ports[port];
	int fd = atomic_load_explicit(&p->ring_fd, memory_order_acquire);
	if (atomic_load(&p->overflow_count) != 0 || !spsc_push(&p->from_raft, m)) {
		struct hub_overflow *o = malloc(sizeof *o);
		while (!o) { /* no memory: wait for room after all, behind the overflow */
			if (atomic_load(&p->overflow_count) == 0 && spsc_push(&p->from_raft, m))
				goto queued;
			if (fd >= 0)
				rk_ring_wake(&p->sleeping, fd, p->wake_user_data, sender_ring);
			sched_yield();
			o = malloc(sizeof *o);
		}
		*o = (struct hub_overflow){ NULL, m };
		pthread_mutex_lock(&p->overflow_lock);
		if (p->overflow_tail)
			p->overflow_tail->next = o;
		else
			p->overflow_head = o;
		p->overflow_tail = o;
		size_t n = atomic_load(&p->overflow_count) + 1;
		atomic_store(&p->overflow_count, n);
		if (n > p->overflow_peak)
			p->overflow_peak = n;
		pthread_mutex_unlock(&p->overflow_lock);
	}
queued:
	if (fd < 0)
		return; /* not started: its loop looks at the queue before it first sleeps */
	/* Wake it now, not after the batch: its wake-up (an IPI, ~15 us on a VM) overlaps
	 * the rest of the applies, and it starts sending while we apply. Only a worker that
	 * announced sleep costs a MSG_RING; one that is awake costs an atomic load. A worker
	 * that drains and sleeps again mid-batch is woken again by the next message.
	 * Measured: set at 64 sessions +6% against waking once after the batch. */
	rk_ring_wake(&p->sleeping, fd, p->wake_user_data, sender_ring);
}

/* The worker's side of the overflow: its oldest message, taken (pop) or not. */
struct rk_msg *hub_overflow_take(struct hub_port *p, bool pop)
{
	pthread_mutex_lock(&p->overflow_lock);
	struct hub_overflow *o = p->overflow_head;
	struct rk_msg *m = o ? o->m : NULL;
	if (o && pop) {
		p->overflow_head = o->next;
		if (!p->overflow_head)
			p->overflow_tail = NULL;
		atomic_store(&p->overflow_count, atomic_load(&p->overflow_count) - 1);
	}
	pthread_mutex_unlock(&p->overflow_lock);
	if (o && pop)
		free(o);
	return m;
}

bool hub_raft_has_input(struct hub *h)
{
	for (int i = 0; i < h->port_count; i++)
		if (!spsc_empty(&h->ports[i].to_raft))
			return true;
	return false;
}
