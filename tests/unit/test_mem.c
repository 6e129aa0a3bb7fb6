/* core/mem.h: when a thread's quiet tracker releases its free memory, and how often. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

#define SEC RK_MEM_QUIET_WINDOW_US

/* One window: `units` of work spread over it, then the tick that closes it. */
static void window(struct rk_mem_quiet *q, int64_t *now, uint64_t units)
{
	for (int i = 0; i < 10; i++)
		rk_mem_quiet_tick(q, units / 10 + (i == 0 ? units % 10 : 0), *now + i * (SEC / 10));
	*now += SEC;
	rk_mem_quiet_tick(q, 0, *now);
}

Test(mem, a_busy_second_then_a_quiet_one_releases_once)
{
	struct rk_mem_quiet q = { .window_start_us = 0 };
	int64_t now = 0;
	window(&q, &now, 5000);
	cr_assert_eq(q.releases, 0, "nothing while busy");
	window(&q, &now, 3);
	cr_assert_eq(q.releases, 1);
	for (int i = 0; i < 5; i++)
		window(&q, &now, 0);
	cr_assert_eq(q.releases, 1, "quiet after quiet releases nothing more");
	window(&q, &now, RK_MEM_QUIET_WORK);
	window(&q, &now, 0);
	cr_assert_eq(q.releases, 2, "the next burst, the next release");
}

Test(mem, a_trickle_below_the_bar_never_releases)
{
	struct rk_mem_quiet q = { .window_start_us = 0 };
	int64_t now = 0;
	for (int i = 0; i < 20; i++)
		window(&q, &now, RK_MEM_QUIET_WORK - 1);
	cr_assert_eq(q.releases, 0);
}

Test(mem, a_long_load_releases_only_when_it_ends)
{
	struct rk_mem_quiet q = { .window_start_us = 0 };
	int64_t now = 0;
	for (int i = 0; i < 30; i++)
		window(&q, &now, 100000);
	cr_assert_eq(q.releases, 0);
	/* A thread that slept through several windows (no tick) judges on its first one. */
	now += 5 * SEC;
	rk_mem_quiet_tick(&q, 0, now);
	cr_assert_eq(q.releases, 1);
}

Test(mem, release_with_nothing_to_free_is_harmless)
{
	rk_mem_release();
	void *p = malloc(1 << 20);
	cr_assert(p);
	memset(p, 1, 1 << 20);
	free(p);
	rk_mem_release();
}
