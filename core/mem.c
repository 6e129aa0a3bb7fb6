/* mem.c — see mem.h. */
#include "core/mem.h"

#include <mimalloc.h>

#include "core/clock.h"
#include "core/log.h"

void rk_mem_release(void) { mi_collect(true); }

void rk_mem_quiet_tick(struct rk_mem_quiet *q, uint64_t units, int64_t now_us)
{
	q->work += units;
	if (now_us - q->window_start_us < RK_MEM_QUIET_WINDOW_US)
		return;
	if (q->work >= RK_MEM_QUIET_WORK) {
		q->busy_since = true;
	} else if (q->busy_since) {
		rk_mem_release();
		log_debug("free memory handed back in %lld us", (long long)(rk_now_us() - now_us));
		q->busy_since = false;
		q->releases++;
	}
	q->work = 0;
	q->window_start_us = now_us;
}
