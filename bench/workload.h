/*
 * workload.h — what the bench asks for: the op kinds, the weighted mix they are drawn
 * from, the generator's random numbers, and the self-describing values it writes so a
 * get can be checked without a shared record of who wrote what.
 *
 * Value format (value_size bytes, deterministic per key and stamp)
 *   value_size >= 8:  [u32 BE key][u32 BE stamp][filler(key, stamp, i) for i >= 8]
 *   value_size <  8:  filler(key, 0, i) for every i
 * A get of key K must return exactly value_size bytes whose header names K and whose
 * filler matches the stamp in the header. Any writer of K (any session, any version)
 * produces a value that passes, a value of another key or a torn value does not.
 *
 * Thread: none; an rng and a mix are owned by whoever holds them (the mix is read-only
 * once parsed, so the bench threads share it).
 */
#ifndef RK_BENCH_WORKLOAD_H
#define RK_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bench_op {
	BENCH_OP_CREATE,
	BENCH_OP_SET,
	BENCH_OP_GET,
	BENCH_OP_EXISTS,
	BENCH_OP_LIST,     /* getChildren2 (12) of the list node */
	BENCH_OP_CHILDREN, /* getChildren (8) of the list node */
	BENCH_OP_DELETE,
	BENCH_OP_MULTI,
	BENCH_OP_COUNT,
};

/* Names used by --mix and in reports, indexed by enum bench_op. */
extern const char *const bench_op_names[BENCH_OP_COUNT];

/* Weights are kept in thousandths so "--mix get=0.5,set=99.5" works. */
#define BENCH_MIX_WEIGHT_SCALE 1000u
#define BENCH_MIX_WEIGHT_MAX (1000000u * BENCH_MIX_WEIGHT_SCALE)

struct bench_mix {
	uint64_t weight[BENCH_OP_COUNT];
	uint64_t cumulative[BENCH_OP_COUNT]; /* cumulative[i] = sum of weight[0..i] */
	uint64_t total;
};

#define BENCH_VALUE_HEADER_BYTES 8
/* A get checks at most this many bytes of a value (its length always). */
#define BENCH_VALUE_VERIFY_BYTES_MAX 4096

/* Returns the op for a name of len bytes, or -EINVAL. */
int bench_op_from_name(const char *name, size_t len);
/*
 * Parses "name=weight[,name=weight...]" (weights non-negative decimals, at most 3
 * fractional digits, at most 1e6 each; names from bench_op_names; a name at most
 * once; total > 0). Returns 0 or -EINVAL; *mix is untouched on error.
 */
int bench_mix_parse(struct bench_mix *mix, const char *text);
/* Recomputes cumulative/total from weight[]; returns -EINVAL when total is 0. */
int bench_mix_finish(struct bench_mix *mix);
/* Writes "create=1,set=8,..." (non-zero weights only). Returns 0 or -ENOSPC. */
int bench_mix_format(const struct bench_mix *mix, char *out, size_t cap);
enum bench_op bench_mix_draw(const struct bench_mix *mix, uint64_t *rng);
/* The fraction of draws op should get: weight / total. */
double bench_mix_fraction(const struct bench_mix *mix, enum bench_op op);

/* splitmix64: fast, full-period, good enough for picking keys and ops. */
uint64_t bench_rng_next(uint64_t *state);
/* Uniform in [0, n); n > 0. */
uint32_t bench_rng_below(uint64_t *state, uint32_t n);

void bench_value_fill(uint8_t *buf, size_t len, uint32_t key, uint32_t stamp);
/* 0 if data (len bytes) is a value of key with expect_len bytes, else -EBADMSG. */
int bench_value_check(const uint8_t *data, int32_t len, size_t expect_len, uint32_t key);

/* Writes the decimal digits of v at out (no NUL); returns how many (1..10). */
size_t bench_u32_format(char *out, uint32_t v);

#endif
