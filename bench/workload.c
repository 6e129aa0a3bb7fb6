/*
 * workload.c — see workload.h.
 */
#include "workload.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/jute.h"

const char *const bench_op_names[BENCH_OP_COUNT] = {
	[BENCH_OP_CREATE] = "create",
	[BENCH_OP_SET] = "set",
	[BENCH_OP_GET] = "get",
	[BENCH_OP_EXISTS] = "exists",
	[BENCH_OP_LIST] = "list",
	[BENCH_OP_CHILDREN] = "children",
	[BENCH_OP_DELETE] = "delete",
	[BENCH_OP_MULTI] = "multi",
};

int bench_op_from_name(const char *name, size_t len)
{
	for (int i = 0; i < BENCH_OP_COUNT; i++) {
		if (strlen(bench_op_names[i]) == len && memcmp(bench_op_names[i], name, len) == 0)
			return i;
	}
	return -EINVAL;
}

/* Parses a decimal weight of [start, end) into thousandths. */
static int mix_weight_parse(const char *start, const char *end, uint64_t *out)
{
	uint64_t whole = 0;
	uint64_t frac = 0;
	unsigned frac_digits = 0;
	bool in_frac = false;
	bool any_digit = false;
	for (const char *p = start; p < end; p++) {
		if (*p == '.' && !in_frac) {
			in_frac = true;
			continue;
		}
		if (*p < '0' || *p > '9')
			return -EINVAL;
		any_digit = true;
		if (in_frac) {
			if (++frac_digits > 3)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
		} else {
			whole = whole * 10 + (uint64_t)(*p - '0');
			if (whole > BENCH_MIX_WEIGHT_MAX / BENCH_MIX_WEIGHT_SCALE)
				return -EINVAL;
		}
	}
	if (!any_digit)
		return -EINVAL;
	for (unsigned i = frac_digits; i < 3; i++)
		frac *= 10;
	*out = whole * BENCH_MIX_WEIGHT_SCALE + frac;
	return 0;
}

int bench_mix_finish(struct bench_mix *mix)
{
	uint64_t sum = 0;
	for (int i = 0; i < BENCH_OP_COUNT; i++) {
		sum += mix->weight[i];
		mix->cumulative[i] = sum;
	}
	mix->total = sum;
	return sum ? 0 : -EINVAL;
}

int bench_mix_parse(struct bench_mix *mix, const char *text)
{
	struct bench_mix parsed;
	memset(&parsed, 0, sizeof(parsed));
	bool seen[BENCH_OP_COUNT] = { false };
	const char *p = text;
	/* Bounded: every pass consumes at least one character of text. */
	while (*p) {
		const char *item_end = strchr(p, ',');
		if (!item_end)
			item_end = p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(item_end - p));
		if (!eq)
			return -EINVAL;
		int op = bench_op_from_name(p, (size_t)(eq - p));
		if (op < 0 || seen[op])
			return -EINVAL;
		seen[op] = true;
		if (mix_weight_parse(eq + 1, item_end, &parsed.weight[op]))
			return -EINVAL;
		if (*item_end == ',' && item_end[1] == '\0')
			return -EINVAL;
		p = *item_end ? item_end + 1 : item_end;
	}
	if (bench_mix_finish(&parsed))
		return -EINVAL;
	*mix = parsed;
	return 0;
}

int bench_mix_format(const struct bench_mix *mix, char *out, size_t cap)
{
	size_t used = 0;
	assert(cap > 0);
	out[0] = '\0';
	for (int i = 0; i < BENCH_OP_COUNT; i++) {
		if (!mix->weight[i])
			continue;
		uint64_t w = mix->weight[i];
		int n;
		if (w % BENCH_MIX_WEIGHT_SCALE == 0)
			n = snprintf(out + used, cap - used, "%s%s=%llu", used ? "," : "", bench_op_names[i],
				     (unsigned long long)(w / BENCH_MIX_WEIGHT_SCALE));
		else
			n = snprintf(out + used, cap - used, "%s%s=%llu.%03llu", used ? "," : "", bench_op_names[i],
				     (unsigned long long)(w / BENCH_MIX_WEIGHT_SCALE),
				     (unsigned long long)(w % BENCH_MIX_WEIGHT_SCALE));
		if (n < 0 || (size_t)n >= cap - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return 0;
}

uint64_t bench_rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint32_t bench_rng_below(uint64_t *state, uint32_t n)
{
	assert(n > 0);
	/* Lemire's multiply-shift: bias below 2^-32, no division. */
	return (uint32_t)(((bench_rng_next(state) >> 32) * (uint64_t)n) >> 32);
}

enum bench_op bench_mix_draw(const struct bench_mix *mix, uint64_t *rng)
{
	assert(mix->total > 0);
	uint64_t r = bench_rng_next(rng) % mix->total;
	for (int i = 0; i < BENCH_OP_COUNT; i++) {
		if (r < mix->cumulative[i])
			return (enum bench_op)i;
	}
	assert(0 && "cumulative weights do not reach total");
	return BENCH_OP_GET;
}

double bench_mix_fraction(const struct bench_mix *mix, enum bench_op op)
{
	return mix->total ? (double)mix->weight[op] / (double)mix->total : 0.0;
}

static inline uint8_t value_filler(uint32_t key, uint32_t stamp, size_t i)
{
	return (uint8_t)(key * 131u + stamp * 31u + (uint32_t)i * 7u + 1u);
}

void bench_value_fill(uint8_t *buf, size_t len, uint32_t key, uint32_t stamp)
{
	size_t i = 0;
	if (len >= BENCH_VALUE_HEADER_BYTES) {
		jute_put_be32(buf, key);
		jute_put_be32(buf + 4, stamp);
		i = BENCH_VALUE_HEADER_BYTES;
	} else {
		stamp = 0;
	}
	for (; i < len; i++)
		buf[i] = value_filler(key, stamp, i);
}

int bench_value_check(const uint8_t *data, int32_t len, size_t expect_len, uint32_t key)
{
	if (len < 0 || (size_t)len != expect_len)
		return -EBADMSG;
	uint32_t stamp = 0;
	size_t i = 0;
	if (expect_len >= BENCH_VALUE_HEADER_BYTES) {
		if (jute_get_be32(data) != key)
			return -EBADMSG;
		stamp = jute_get_be32(data + 4);
		i = BENCH_VALUE_HEADER_BYTES;
	}
	size_t end = expect_len < BENCH_VALUE_VERIFY_BYTES_MAX ? expect_len : BENCH_VALUE_VERIFY_BYTES_MAX;
	for (; i < end; i++) {
		if (data[i] != value_filler(key, stamp, i))
			return -EBADMSG;
	}
	return 0;
}

size_t bench_u32_format(char *out, uint32_t v)
{
	char tmp[10];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}
