/* core/hist.h: bucket layout, exact counts below powers of two, quantiles, windows. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"

static struct rk_hist *hist_new(void)
{
	struct rk_hist *h = calloc(1, sizeof *h);
	cr_assert(h);
	return h;
}

Test(hist, layout_every_value_in_its_bucket)
{
	/* Small values have buckets of their own; every value lies in [lower, lower+width). */
	for (uint64_t v = 0; v < 8; v++)
		cr_assert_eq(rk_hist_index(v), v);
	uint64_t probes[] = { 8, 9, 15, 16, 17, 31, 32, 100, 1000, 4095, 4096, 123456789, UINT64_C(1) << 40,
			      (UINT64_C(1) << 41) - 1 };
	for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
		uint64_t v = probes[k];
		unsigned i = rk_hist_index(v);
		cr_assert_lt(i, RK_HIST_BUCKETS);
		cr_assert(v >= rk_hist_bucket_lower(i) && v < rk_hist_bucket_lower(i) + rk_hist_bucket_width(i),
			  "v=%llu bucket %u [%llu,+%llu)", (unsigned long long)v, i,
			  (unsigned long long)rk_hist_bucket_lower(i), (unsigned long long)rk_hist_bucket_width(i));
		/* relative width at most 1/8 */
		cr_assert_leq(rk_hist_bucket_width(i) * 8, rk_hist_bucket_lower(i) < 8 ? 8 : rk_hist_bucket_lower(i));
	}
	/* Consecutive buckets tile the line. */
	for (unsigned i = 0; i + 1 < RK_HIST_BUCKETS; i++)
		cr_assert_eq(rk_hist_bucket_lower(i) + rk_hist_bucket_width(i), rk_hist_bucket_lower(i + 1), "bucket %u", i);
	/* Too large: clamped into the last bucket. */
	cr_assert_eq(rk_hist_index(UINT64_C(1) << 41), RK_HIST_BUCKETS - 1);
	cr_assert_eq(rk_hist_index(UINT64_MAX), RK_HIST_BUCKETS - 1);
}

Test(hist, powers_of_two_are_bucket_bounds)
{
	for (unsigned k = 0; k <= RK_HIST_EXP_MAX; k++) {
		uint64_t p = UINT64_C(1) << k;
		unsigned i = rk_hist_index(p);
		cr_assert_eq(rk_hist_bucket_lower(i), p, "2^%u", k);
	}
}

Test(hist, count_below_is_exact_at_powers_of_two)
{
	struct rk_hist *h = hist_new();
	for (uint64_t v = 0; v < 5000; v++)
		rk_hist_record(h, v);
	struct rk_hist_snap s;
	rk_hist_read(h, &s);
	cr_assert_eq(s.count, 5000);
	cr_assert_eq(s.sum, 5000ULL * 4999 / 2);
	for (unsigned k = 0; k <= 12; k++)
		cr_assert_eq(rk_hist_snap_count_below(&s, UINT64_C(1) << k), UINT64_C(1) << k, "below 2^%u", k);
	cr_assert_eq(rk_hist_snap_count_below(&s, UINT64_C(1) << 20), 5000);
	free(h);
}

Test(hist, quantiles_within_a_bucket)
{
	struct rk_hist *h = hist_new();
	struct rk_hist_snap s;
	rk_hist_read(h, &s);
	cr_assert_eq(rk_hist_snap_quantile(&s, 0.5), -1); /* no observations */
	/* 1..1000 once each: the true q-quantile is 1000q; a bucket is 1/8 wide at most. */
	for (uint64_t v = 1; v <= 1000; v++)
		rk_hist_record(h, v);
	rk_hist_read(h, &s);
	double qs[] = { 0.5, 0.9, 0.99 };
	for (size_t k = 0; k < 3; k++) {
		double want = 1000 * qs[k];
		double got = rk_hist_snap_quantile(&s, qs[k]);
		cr_assert(got >= want * 7 / 8 && got <= want * 9 / 8, "q%.2f: got %f want %f", qs[k], got, want);
	}
	/* Exact small values come back exactly. */
	struct rk_hist *small = hist_new();
	for (int i = 0; i < 10; i++)
		rk_hist_record(small, 3);
	rk_hist_record(small, 5);
	rk_hist_read(small, &s);
	cr_assert_eq(rk_hist_snap_quantile(&s, 0.5), 3.0);
	cr_assert_eq(rk_hist_snap_quantile(&s, 1.0), 5.0);
	cr_assert_eq(rk_hist_snap_quantile(&s, 0.0), 3.0);
	free(small);
	free(h);
}

Test(hist, sum_of_writers_and_a_window)
{
	struct rk_hist *a = hist_new(), *b = hist_new();
	for (int i = 0; i < 100; i++)
		rk_hist_record(a, 10);
	struct rk_hist_snap then;
	memset(&then, 0, sizeof then);
	rk_hist_read_add(a, &then);
	rk_hist_read_add(b, &then);
	for (int i = 0; i < 100; i++)
		rk_hist_record(b, 1000);
	struct rk_hist_snap now;
	memset(&now, 0, sizeof now);
	rk_hist_read_add(a, &now);
	rk_hist_read_add(b, &now);
	cr_assert_eq(now.count, 200);
	cr_assert_eq(now.sum, 100 * 10 + 100 * 1000);
	/* Over both: the median sits on the boundary; over the window only the 1000s. */
	rk_hist_snap_sub(&now, &then);
	cr_assert_eq(now.count, 100);
	cr_assert_eq(now.sum, 100 * 1000);
	double q = rk_hist_snap_quantile(&now, 0.5);
	cr_assert(q >= 960 && q < 1024, "%f", q);
	struct rk_hist_snap acc;
	memset(&acc, 0, sizeof acc);
	rk_hist_snap_add(&acc, &now);
	rk_hist_snap_add(&acc, &now);
	cr_assert_eq(acc.count, 200);
	free(a);
	free(b);
}
