/* SPSC queue: FIFO order, capacity limit, and a two-thread transfer with no loss. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

#include "core/spsc.h"

Test(spsc, fifo_and_capacity)
{
	struct spsc q;
	cr_assert_eq(spsc_init(&q, 8), 0);
	cr_assert_null(spsc_pop(&q));
	cr_assert(spsc_empty(&q));
	for (uintptr_t i = 1; i <= 8; i++)
		cr_assert(spsc_push(&q, (void *)i));
	cr_assert(!spsc_push(&q, (void *)9), "a full queue refuses a push");
	cr_assert_eq(spsc_size(&q), 8);
	for (uintptr_t i = 1; i <= 8; i++)
		cr_assert_eq((uintptr_t)spsc_pop(&q), i);
	cr_assert_null(spsc_pop(&q));
	/* wrap around many times */
	for (uintptr_t i = 1; i <= 1000; i++) {
		cr_assert(spsc_push(&q, (void *)i));
		cr_assert_eq((uintptr_t)spsc_pop(&q), i);
	}
	spsc_destroy(&q);
}

#define TRANSFER_COUNT 2000000u

static void *producer(void *arg)
{
	struct spsc *q = arg;
	for (uintptr_t i = 1; i <= TRANSFER_COUNT; i++)
		while (!spsc_push(q, (void *)i))
			;
	return NULL;
}

Test(spsc, two_threads_keep_order_and_lose_nothing, .timeout = 60)
{
	struct spsc q;
	cr_assert_eq(spsc_init(&q, 1024), 0);
	pthread_t t;
	pthread_create(&t, NULL, producer, &q);
	uintptr_t expect = 1;
	while (expect <= TRANSFER_COUNT) {
		void *p = spsc_pop(&q);
		if (!p)
			continue;
		cr_assert_eq((uintptr_t)p, expect, "got %lu, expected %lu", (unsigned long)(uintptr_t)p,
			     (unsigned long)expect);
		expect++;
	}
	pthread_join(t, NULL);
	cr_assert_null(spsc_pop(&q));
	spsc_destroy(&q);
}
