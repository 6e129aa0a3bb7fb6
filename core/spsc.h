/*
 * spsc.h — a bounded lock-free single-producer single-consumer queue of pointers.
 *
 * Invariants
 *   1. Exactly one thread pushes and exactly one thread pops, for the queue's life.
 *   2. head is written only by the consumer, tail only by the producer; each sits on
 *      its own cache line. A push publishes the slot with a release store of tail; a
 *      pop reads tail with acquire, so the pointed-to message is fully visible.
 *   3. Capacity is a power of two fixed at init; a push to a full queue fails (returns
 *      false) and the producer decides: back off, defer, or stop reading clients.
 *   4. Ownership of the pointed-to message moves with it: the consumer frees it.
 */
#ifndef RK_SPSC_H
#define RK_SPSC_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct spsc {
	_Alignas(64) _Atomic size_t head; /* next slot to pop */
	size_t tail_cached;               /* consumer's view of tail */
	_Alignas(64) _Atomic size_t tail; /* next slot to push */
	size_t head_cached;               /* producer's view of head */
	_Alignas(64) size_t mask;
	void **slots;
};

static inline int spsc_init(struct spsc *q, size_t capacity)
{
	assert(capacity >= 2 && (capacity & (capacity - 1)) == 0);
	q->slots = calloc(capacity, sizeof *q->slots);
	if (!q->slots)
		return -1;
	q->mask = capacity - 1;
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	q->tail_cached = 0;
	q->head_cached = 0;
	return 0;
}

static inline void spsc_destroy(struct spsc *q)
{
	free(q->slots);
	q->slots = NULL;
}

/* Producer only. */
static inline bool spsc_push(struct spsc *q, void *item)
{
	size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	if (tail - q->head_cached > q->mask) {
		q->head_cached = atomic_load_explicit(&q->head, memory_order_acquire);
		if (tail - q->head_cached > q->mask)
			return false;
	}
	q->slots[tail & q->mask] = item;
	atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
	return true;
}

/* Consumer only: the item spsc_pop would return next, left in place; NULL when empty. */
static inline void *spsc_peek(struct spsc *q)
{
	size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	if (head == q->tail_cached) {
		q->tail_cached = atomic_load_explicit(&q->tail, memory_order_acquire);
		if (head == q->tail_cached)
			return NULL;
	}
	return q->slots[head & q->mask];
}

/* Consumer only. Returns NULL when empty. */
static inline void *spsc_pop(struct spsc *q)
{
	void *item = spsc_peek(q);
	if (item) {
		size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
		atomic_store_explicit(&q->head, head + 1, memory_order_release);
	}
	return item;
}

/* Either side; a hint only. */
static inline bool spsc_empty(struct spsc *q)
{
	return atomic_load_explicit(&q->head, memory_order_acquire) ==
	       atomic_load_explicit(&q->tail, memory_order_acquire);
}

static inline size_t spsc_size(struct spsc *q)
{
	return atomic_load_explicit(&q->tail, memory_order_acquire) -
	       atomic_load_explicit(&q->head, memory_order_acquire);
}

#endif
