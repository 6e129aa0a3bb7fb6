/*
 * hist.c — see hist.h: reading, summing and the quantiles of the log-linear histogram.
 */
#include "core/hist.h"

#include <assert.h>
#include <string.h>

static_assert(RK_HIST_BUCKETS == RK_HIST_SUB_COUNT + (RK_HIST_EXP_MAX - 2) * RK_HIST_SUB_COUNT, "bucket layout");

uint64_t rk_hist_bucket_lower(unsigned i)
{
	assert(i < RK_HIST_BUCKETS);
	if (i < RK_HIST_SUB_COUNT)
		return i;
	unsigned e = i / RK_HIST_SUB_COUNT + 2;
	uint64_t sub = i % RK_HIST_SUB_COUNT;
	return (RK_HIST_SUB_COUNT + sub) << (e - RK_HIST_SUB_BITS);
}

uint64_t rk_hist_bucket_width(unsigned i)
{
	assert(i < RK_HIST_BUCKETS);
	if (i < RK_HIST_SUB_COUNT)
		return 1;
	return UINT64_C(1) << (i / RK_HIST_SUB_COUNT + 2 - RK_HIST_SUB_BITS);
}

void rk_hist_read(const struct rk_hist *h, struct rk_hist_snap *out)
{
	memset(out, 0, sizeof *out);
	rk_hist_read_add(h, out);
}

void rk_hist_read_add(const struct rk_hist *h, struct rk_hist_snap *acc)
{
	acc->count += atomic_load_explicit(&h->count, memory_order_relaxed);
	acc->sum += atomic_load_explicit(&h->sum, memory_order_relaxed);
	for (unsigned i = 0; i < RK_HIST_BUCKETS; i++)
		acc->buckets[i] += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
}

void rk_hist_snap_add(struct rk_hist_snap *acc, const struct rk_hist_snap *s)
{
	acc->count += s->count;
	acc->sum += s->sum;
	for (unsigned i = 0; i < RK_HIST_BUCKETS; i++)
		acc->buckets[i] += s->buckets[i];
}

void rk_hist_snap_sub(struct rk_hist_snap *a, const struct rk_hist_snap *b)
{
	/* Counters only grow, so b <= a; a torn read could break that by one: clamp. */
	a->count = a->count > b->count ? a->count - b->count : 0;
	a->sum = a->sum > b->sum ? a->sum - b->sum : 0;
	for (unsigned i = 0; i < RK_HIST_BUCKETS; i++)
		a->buckets[i] = a->buckets[i] > b->buckets[i] ? a->buckets[i] - b->buckets[i] : 0;
}

uint64_t rk_hist_snap_count_below(const struct rk_hist_snap *s, uint64_t bound)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < RK_HIST_BUCKETS && rk_hist_bucket_lower(i) < bound; i++)
		n += s->buckets[i];
	return n;
}

double rk_hist_snap_quantile(const struct rk_hist_snap *s, double q)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < RK_HIST_BUCKETS; i++)
		total += s->buckets[i];
	if (total == 0)
		return -1;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	/* The rank of the wanted observation, 1-based: the smallest r with r >= q * total. */
	double rank = q * (double)total;
	if (rank < 1)
		rank = 1;
	uint64_t below = 0;
	for (unsigned i = 0; i < RK_HIST_BUCKETS; i++) {
		uint64_t n = s->buckets[i];
		if (n == 0 || (double)(below + n) < rank) {
			below += n;
			continue;
		}
		if (rk_hist_bucket_width(i) == 1)
			return (double)rk_hist_bucket_lower(i); /* an exact value */
		/* The bucket's n observations spread evenly over [lower, lower + width): the
		 * k-th sits at (k - 1/2) / n of the width. */
		double frac = (rank - (double)below - 0.5) / (double)n;
		frac = frac < 0 ? 0 : frac;
		return (double)rk_hist_bucket_lower(i) + frac * (double)rk_hist_bucket_width(i);
	}
	return (double)rk_hist_bucket_lower(RK_HIST_BUCKETS - 1);
}
