/*
 * hist.c — see hist.h. Index arithmetic only; no allocation, no floating point on the
 * record path.
 */
#include "hist.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

size_t hist_bucket_index(uint64_t value)
{
	if (value > HIST_VALUE_MAX)
		value = HIST_VALUE_MAX;
	if (value < HIST_SUB_COUNT)
		return (size_t)value;
	unsigned msb = 63u - (unsigned)__builtin_clzll(value);
	unsigned shift = msb - HIST_SUB_BITS;
	size_t sub = (size_t)(value >> shift) - HIST_SUB_COUNT;
	size_t index = (size_t)(shift + 1) * HIST_SUB_COUNT + sub;
	assert(index < HIST_BUCKET_COUNT);
	return index;
}

uint64_t hist_bucket_low(size_t index)
{
	assert(index < HIST_BUCKET_COUNT);
	size_t group = index / HIST_SUB_COUNT;
	uint64_t sub = index % HIST_SUB_COUNT;
	if (group == 0)
		return sub;
	return (HIST_SUB_COUNT + sub) << (group - 1);
}

uint64_t hist_bucket_high(size_t index)
{
	size_t group = index / HIST_SUB_COUNT;
	if (group == 0)
		return hist_bucket_low(index);
	return hist_bucket_low(index) + (UINT64_C(1) << (group - 1)) - 1;
}

void hist_record(struct hist *h, uint64_t value)
{
	if (value > HIST_VALUE_MAX) {
		value = HIST_VALUE_MAX;
		h->clamped++;
	}
	h->counts[hist_bucket_index(value)]++;
	h->total++;
	h->sum += value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (size_t i = 0; i < HIST_BUCKET_COUNT; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	assert(pct >= 0.0 && pct <= 100.0);
	if (h->total == 0)
		return 0;
	/* pct * total first: 99 * 100 / 100 is exact where 0.99 * 100 is not. */
	double rank_real = ceil(pct * (double)h->total / 100.0 - 1e-9);
	uint64_t rank = rank_real < 1.0 ? 1 : (uint64_t)rank_real;
	if (rank > h->total)
		rank = h->total;
	uint64_t seen = 0;
	for (size_t i = 0; i < HIST_BUCKET_COUNT; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	assert(0 && "counts do not add up to total");
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->total ? (double)h->sum / (double)h->total : 0.0;
}
