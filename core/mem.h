/*
 * mem.h — a thread hands its freed memory back to the kernel once its work goes quiet.
 *
 * mimalloc keeps the pages a thread frees (deleted znodes, a closed connection's
 * buffers, an old hash table) for that thread's next allocations, and decommits them
 * only while the thread keeps calling into it. A thread that goes quiet after a burst
 * (the applier after a mass delete, a worker after its clients left) would hold them
 * until its next burst: RSS would stay at the peak. So each long-lived thread keeps an
 * rk_mem_quiet and counts its work in it: a second of at least RK_MEM_QUIET_WORK units
 * marks it busy, and the first second below that afterwards releases the thread's free
 * pages once (mi_collect). Under load nothing happens; a trickle (pings, a write a
 * second) stays under the bar and releases nothing twice.
 *
 * One rk_mem_quiet per thread, touched only by that thread.
 */
#ifndef RK_MEM_H
#define RK_MEM_H

#include <stdbool.h>
#include <stdint.h>

#define RK_MEM_QUIET_WINDOW_US 1000000
#define RK_MEM_QUIET_WORK 100 /* units of work in a window that make it busy */

struct rk_mem_quiet {
	int64_t window_start_us;
	uint64_t work;     /* units in this window */
	bool busy_since;   /* a busy window since the last release */
	uint64_t releases; /* how many times this thread released (tests, logs) */
};

/* Counts `units` of work done now (0: just looks at the clock); may release. */
void rk_mem_quiet_tick(struct rk_mem_quiet *q, uint64_t units, int64_t now_us);

/* Returns the calling thread's free pages to the kernel now (mi_collect(true)). */
void rk_mem_release(void);

#endif
