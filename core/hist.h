/*
 * hist.h — a fixed log-linear histogram of non-negative integers (microseconds, entries,
 * bytes) with ONE writer thread and any number of readers, and plain snapshots of it
 * that the readers sum, subtract and ask quantiles of.
 *
 * Used by /metrics (net/metrics.c): each worker records its requests' latencies in
 * histograms of its own, the raft thread its log batches' sizes and sync times; the
 * scraper reads them all and sums. No lock and no read-modify-write instruction on the
 * writer's side: the writer is the only one to store, so a relaxed load + store is a
 * plain add; a reader's relaxed loads see every bucket whole (64-bit, aligned).
 *
 * Buckets (RK_HIST_SUB_BITS = 3, so 8 per power of two, relative width <= 1/8):
 *
 *   value v          bucket index                     bucket = [lower, lower + width)
 *   0 .. 7           v                                width 1
 *   2^e .. 2^(e+1)-1 (e - 2) * 8 + ((v >> (e - 3)) & 7)   width 2^(e - 3), e >= 3
 *   >= 2^(RK_HIST_EXP_MAX+1)  clamped into the last bucket (2^41 us is 25 days)
 *
 * Invariants
 *   1. Every power of two 2^k (k <= RK_HIST_EXP_MAX) is the lower bound of a bucket, so
 *      the number of observations below 2^k is exact (rk_hist_snap_count_below): what a
 *      Prometheus histogram with power-of-two bounds needs.
 *   2. count == the sum of the buckets once the writer is quiet; while it records, a
 *      reader may see the bucket before the count (or the other way): statistics.
 *   3. A snapshot is plain memory owned by its reader.
 */
#ifndef RK_HIST_H
#define RK_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define RK_HIST_SUB_BITS 3
#define RK_HIST_SUB_COUNT (1u << RK_HIST_SUB_BITS)
#define RK_HIST_EXP_MAX 40
#define RK_HIST_BUCKETS ((RK_HIST_EXP_MAX - 1) * RK_HIST_SUB_COUNT) /* 8 exact + 8 per exponent 3..40 */

struct rk_hist {
	_Atomic uint64_t count;
	_Atomic uint64_t sum;
	_Atomic uint64_t buckets[RK_HIST_BUCKETS];
};

struct rk_hist_snap {
	uint64_t count;
	uint64_t sum;
	uint64_t buckets[RK_HIST_BUCKETS];
};

/* The bucket of v (invariant 1's layout). */
static inline unsigned rk_hist_index(uint64_t v)
{
	if (v < RK_HIST_SUB_COUNT)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	if (e > RK_HIST_EXP_MAX)
		return RK_HIST_BUCKETS - 1; /* clamped */
	return (e - 2) * RK_HIST_SUB_COUNT + (unsigned)((v >> (e - RK_HIST_SUB_BITS)) & (RK_HIST_SUB_COUNT - 1));
}

/* The writer thread only. */
static inline void rk_hist_record(struct rk_hist *h, uint64_t v)
{
	unsigned i = rk_hist_index(v);
	atomic_store_explicit(&h->buckets[i], atomic_load_explicit(&h->buckets[i], memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + v, memory_order_relaxed);
	atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Lower bound and width of bucket i. */
uint64_t rk_hist_bucket_lower(unsigned i);
uint64_t rk_hist_bucket_width(unsigned i);

/* Any thread: copies h into out. */
void rk_hist_read(const struct rk_hist *h, struct rk_hist_snap *out);
/* Any thread: adds h into acc (summing the histograms of several writers). */
void rk_hist_read_add(const struct rk_hist *h, struct rk_hist_snap *acc);
void rk_hist_snap_add(struct rk_hist_snap *acc, const struct rk_hist_snap *s);
/* a -= b, bucket by bucket (b an earlier snapshot of the same histograms: a window). */
void rk_hist_snap_sub(struct rk_hist_snap *a, const struct rk_hist_snap *b);
/* Observations below bound, exact when bound is a bucket's lower bound (invariant 1). */
uint64_t rk_hist_snap_count_below(const struct rk_hist_snap *s, uint64_t bound);
/*
 * The q-quantile (0 <= q <= 1) of the observations, interpolated linearly inside its
 * bucket (error below one bucket width, 1/8 of the value). -1 when there are none.
 */
double rk_hist_snap_quantile(const struct rk_hist_snap *s, double q);

#endif
