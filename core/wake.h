/*
 * wake.h — waking a thread that sleeps in io_uring_submit_and_wait on its own ring.
 *
 * Protocol (both sides):
 *   consumer: store sleeping = 1 (seq_cst); re-check its queues; only then block.
 *   producer: push to the queue; then rk_ring_wake(): if the consumer announced sleep,
 *             clear the flag and post an IORING_OP_MSG_RING to the consumer's ring.
 * The seq_cst store/load pair means either the consumer sees the item on its re-check
 * or the producer sees the flag and wakes it; never neither. A wake-up the consumer did
 * not need costs it one extra loop turn.
 */
#ifndef RK_WAKE_H
#define RK_WAKE_H

#include <assert.h>
#include <liburing.h>
#include <stdatomic.h>

/* Call on the producer's thread; sender_ring is the producer's own ring. */
static inline void rk_ring_wake(_Atomic int *sleeping, int target_ring_fd, uint64_t user_data,
				struct io_uring *sender_ring)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(sleeping, memory_order_seq_cst))
		return;
	if (!atomic_exchange_explicit(sleeping, 0, memory_order_seq_cst))
		return;
	struct io_uring_sqe *sqe = io_uring_get_sqe(sender_ring);
	if (!sqe) {
		io_uring_submit(sender_ring);
		sqe = io_uring_get_sqe(sender_ring);
	}
	assert(sqe);
	io_uring_prep_msg_ring(sqe, target_ring_fd, 0, user_data, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, user_data);
	io_uring_submit(sender_ring);
}

#endif
