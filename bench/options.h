/*
 * options.h — ringkeeper-bench's command line: defaults, presets, validation. Kept
 * apart from main.c so the tests can parse argument vectors without running anything.
 */
#ifndef RK_BENCH_OPTIONS_H
#define RK_BENCH_OPTIONS_H

#include <stddef.h>

#include "bench/bench.h"

enum {
	BENCH_OPTIONS_RUN = 0,
	BENCH_OPTIONS_HELP = 1,
};

void bench_options_defaults(struct bench_config *cfg);
/* Applies a named preset (create, mixed, clickhouse); -EINVAL for an unknown name. */
int bench_preset_apply(struct bench_config *cfg, const char *name);
/*
 * Parses argv over the defaults: the preset first (wherever --preset appears), then
 * every other option in order. Returns BENCH_OPTIONS_RUN, BENCH_OPTIONS_HELP, or
 * -EINVAL with a message in err.
 */
int bench_options_parse(struct bench_config *cfg, int argc, char **argv, char *err, size_t err_cap);
void bench_options_usage(void);
/* Parses "a,b,c" of unsigned decimals in [min, max] into out (at most cap). */
int bench_u32_list_parse(const char *text, uint32_t *out, uint32_t cap, uint32_t min, uint32_t max, uint32_t *count);

#endif
