/*
 * worker_impl.h — what the two files of a worker share: the loop (net/worker.c) and
 * its life outside the loop (net/worker_life.c). Not for other modules.
 *
 * user_data of the worker's SQEs = kind << 56 | low 48 bits of the conn id; UD_HTTP's
 * low bits belong to the /metrics server (net/http.c).
 */
#ifndef RK_WORKER_IMPL_H
#define RK_WORKER_IMPL_H

#include <semaphore.h>
#include <stdint.h>

struct worker;
struct conn;

enum ud_kind {
	UD_ACCEPT = 1,
	UD_RECV = 2,
	UD_SEND = 3,
	UD_WAKE = 4,
	UD_CANCEL = 5,
	UD_HTTP = 6,
};

#define UD_ID_MASK ((1ULL << 48) - 1)

static inline uint64_t ud_make(enum ud_kind kind, uint64_t id)
{
	return ((uint64_t)kind << 56) | (id & UD_ID_MASK);
}

/* A closed conn waiting for its in-flight operations (and its linger) before it is freed. */
struct conn_reap {
	struct conn *c;
	int64_t linger_deadline_us; /* while c->lingering; monotonic (rk_now_us) */
	struct conn_reap *next;
};

/* worker_start hands this to the new thread; gone once `done` is posted. */
struct worker_boot {
	struct worker *w;
	sem_t done;
	int rc;
};

/* The worker's thread: sets up its ring (worker_setup_ring), posts boot->done, loops. */
void *worker_main(void *arg);
/* On the worker's thread: its io_uring and provided-buffer ring. 0 or -errno (logged). */
int worker_setup_ring(struct worker *w);
/* Puts the next WORKER_RECV_BUF_STEP unused receive buffers in the ring (worker.c). */
void worker_provide_buffers(struct worker *w);

#endif
