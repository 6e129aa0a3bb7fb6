/*
 * hist.h — the benchmark's latency histogram: HDR-style log-linear buckets over
 * unsigned 64-bit values (the bench records nanoseconds).
 *
 * Layout
 *   Values below 2^HIST_SUB_BITS are counted exactly, one bucket each (group 0).
 *   Above that, each power of two [2^m, 2^(m+1)) is split into 2^HIST_SUB_BITS
 *   equal buckets (group m - HIST_SUB_BITS + 1), so a bucket's width is at most
 *   2^-HIST_SUB_BITS of its lower bound.
 *
 * Invariants
 *   1. Precision: a reported percentile v for a true (nearest-rank) value t satisfies
 *      t <= v <= t + t / 2^HIST_SUB_BITS (v is the bucket's highest value, clamped to
 *      the recorded max). Values below 2^HIST_SUB_BITS are exact.
 *   2. Values above HIST_VALUE_MAX are clamped to it (counted in `clamped`).
 *   3. Fixed size, no allocation: a histogram is a plain struct, merged by addition.
 *
 * Thread: none; each bench thread owns its own histograms and the main thread merges
 * them after the threads have joined.
 */
#ifndef RK_BENCH_HIST_H
#define RK_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
/* 2^40 ns ~ 18 minutes: longer than any request the bench waits for. */
#define HIST_VALUE_BITS 40
#define HIST_VALUE_MAX ((UINT64_C(1) << HIST_VALUE_BITS) - 1)
#define HIST_GROUP_COUNT (HIST_VALUE_BITS - HIST_SUB_BITS + 1)
#define HIST_BUCKET_COUNT (HIST_GROUP_COUNT * HIST_SUB_COUNT)

struct hist {
	uint64_t total;
	uint64_t clamped;
	uint64_t min;
	uint64_t max;
	uint64_t sum; /* for the mean; wraps only after ~2^24 s of latency */
	uint64_t counts[HIST_BUCKET_COUNT];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
/* Adds src's counts to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/*
 * Nearest-rank percentile: the value at rank ceil(pct/100 * total) (rank >= 1) of the
 * sorted recorded values, reported as its bucket's highest value clamped to max.
 * pct in [0, 100]; returns 0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double pct);
double hist_mean(const struct hist *h);

/* Bucket arithmetic, exposed for the tests. */
size_t hist_bucket_index(uint64_t value);
uint64_t hist_bucket_low(size_t index);
uint64_t hist_bucket_high(size_t index);

#endif
