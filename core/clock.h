/*
 * clock.h — the two clocks every thread reads.
 *
 *   rk_now_ms  wall clock (CLOCK_REALTIME), ms since the epoch: what ZooKeeper puts in
 *              ctime/mtime and uptime reports. It may jump; never time a duration
 *              with it.
 *   rk_now_us  monotonic (CLOCK_MONOTONIC), µs since an arbitrary start: latencies,
 *              deadlines inside the process.
 */
#ifndef RK_CLOCK_H
#define RK_CLOCK_H

#include <stdint.h>

int64_t rk_now_ms(void);
int64_t rk_now_us(void);

#endif
