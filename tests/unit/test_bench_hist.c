/*
 * test_bench_hist.c — bench/hist.c against a sorted reference array: for several
 * distributions every reported percentile must lie in [true, true + true/128] (the
 * precision hist.h states), where "true" is the nearest-rank value of the sorted data.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "bench/hist.h"
#include "bench/workload.h"

#define SAMPLES 200000

static uint64_t values[SAMPLES];
static struct hist h;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t reference_percentile(const uint64_t *sorted, size_t n, double pct)
{
	double rank_real = ceil(pct * (double)n / 100.0 - 1e-9);
	size_t rank = rank_real < 1.0 ? 1 : (size_t)rank_real;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static void check_against_reference(size_t n)
{
	hist_init(&h);
	for (size_t i = 0; i < n; i++)
		hist_record(&h, values[i]);
	qsort(values, n, sizeof(values[0]), cmp_u64);
	cr_assert_eq(h.total, n);
	cr_assert_eq(h.min, values[0]);
	cr_assert_eq(h.max, values[n - 1]);
	static const double pcts[] = { 0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100 };
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		uint64_t want = reference_percentile(values, n, pcts[i]);
		uint64_t got = hist_percentile(&h, pcts[i]);
		cr_assert(got >= want && got <= want + want / HIST_SUB_COUNT,
			  "p%g: got %llu, true %llu (n=%zu)", pcts[i], (unsigned long long)got, (unsigned long long)want, n);
	}
}

Test(bench_hist, uniform_wide)
{
	uint64_t rng = 1;
	for (size_t i = 0; i < SAMPLES; i++)
		values[i] = bench_rng_next(&rng) % 10000000u;
	check_against_reference(SAMPLES);
}

Test(bench_hist, exponential_like_latency)
{
	uint64_t rng = 2;
	for (size_t i = 0; i < SAMPLES; i++) {
		double u = ((double)(bench_rng_next(&rng) >> 11) + 1.0) / 9007199254740993.0;
		values[i] = 20000u + (uint64_t)(-log(u) * 150000.0);
	}
	check_against_reference(SAMPLES);
}

Test(bench_hist, bimodal_with_far_tail)
{
	uint64_t rng = 3;
	for (size_t i = 0; i < SAMPLES; i++) {
		uint64_t r = bench_rng_next(&rng);
		if (r % 1000 == 0)
			values[i] = 5000000000ull + r % 1000000000ull; /* 5-6 s stalls */
		else if (r % 2)
			values[i] = 100000u + r % 5000u;
		else
			values[i] = 900000u + r % 50000u;
	}
	check_against_reference(SAMPLES);
}

Test(bench_hist, small_values_are_exact)
{
	for (size_t i = 0; i < 1000; i++)
		values[i] = i % HIST_SUB_COUNT;
	check_against_reference(1000);
	cr_assert_eq(hist_percentile(&h, 50), 62); /* 0..103 occur 8 times: rank 500 is 62 */
}

Test(bench_hist, single_value_and_empty)
{
	hist_init(&h);
	cr_assert_eq(hist_percentile(&h, 99), 0);
	hist_record(&h, 123456789);
	for (double p = 0; p <= 100; p += 12.5)
		cr_assert_eq(hist_percentile(&h, p), 123456789); /* clamped to max, so exact */
}

Test(bench_hist, buckets_tile_the_range)
{
	/* Consecutive buckets are adjacent and each value maps into the bucket that holds it. */
	for (size_t i = 0; i + 1 < HIST_BUCKET_COUNT; i++) {
		cr_assert_eq(hist_bucket_high(i) + 1, hist_bucket_low(i + 1), "bucket %zu", i);
		uint64_t w = hist_bucket_high(i) - hist_bucket_low(i);
		cr_assert(w <= hist_bucket_low(i) / HIST_SUB_COUNT, "bucket %zu too wide", i);
		cr_assert_eq(hist_bucket_index(hist_bucket_low(i)), i);
		cr_assert_eq(hist_bucket_index(hist_bucket_high(i)), i);
	}
	cr_assert_eq(hist_bucket_high(HIST_BUCKET_COUNT - 1), HIST_VALUE_MAX);
}

Test(bench_hist, clamps_huge_values)
{
	hist_init(&h);
	hist_record(&h, UINT64_MAX);
	cr_assert_eq(h.clamped, 1);
	cr_assert_eq(h.max, HIST_VALUE_MAX);
	cr_assert_eq(hist_percentile(&h, 50), HIST_VALUE_MAX);
}

Test(bench_hist, merge_equals_recording_everything)
{
	static struct hist a, b, all;
	hist_init(&a);
	hist_init(&b);
	hist_init(&all);
	uint64_t rng = 4;
	for (int i = 0; i < 100000; i++) {
		uint64_t v = bench_rng_next(&rng) % 50000000u;
		hist_record(i % 3 ? &a : &b, v);
		hist_record(&all, v);
	}
	hist_merge(&a, &b);
	cr_assert_eq(a.total, all.total);
	cr_assert_eq(a.min, all.min);
	cr_assert_eq(a.max, all.max);
	cr_assert_eq(a.sum, all.sum);
	for (size_t i = 0; i < HIST_BUCKET_COUNT; i++)
		cr_assert_eq(a.counts[i], all.counts[i]);
}
