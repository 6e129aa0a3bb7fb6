/*
 * test_bench_workload.c — the workload mix (draw fractions, --mix parsing), the value
 * format a get is checked against, and option parsing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bench/options.h"
#include "bench/workload.h"

static void check_fractions(const char *spec, uint64_t seed)
{
	struct bench_mix mix;
	cr_assert_eq(bench_mix_parse(&mix, spec), 0, "%s", spec);
	uint64_t counts[BENCH_OP_COUNT] = { 0 };
	uint64_t rng = seed;
	const uint32_t draws = 1000000;
	for (uint32_t i = 0; i < draws; i++)
		counts[bench_mix_draw(&mix, &rng)]++;
	for (int op = 0; op < BENCH_OP_COUNT; op++) {
		double got = (double)counts[op] / draws;
		double want = bench_mix_fraction(&mix, (enum bench_op)op);
		cr_assert(fabs(got - want) <= 0.005, "%s: %s got %.4f want %.4f", spec, bench_op_names[op], got, want);
		if (want == 0.0)
			cr_assert_eq(counts[op], 0, "%s drawn with weight 0", bench_op_names[op]);
	}
}

Test(bench_mix, mixed_preset_fractions)
{
	check_fractions("create=1,set=8,get=45,list=45,delete=1", 11);
}

Test(bench_mix, skewed_and_fractional_fractions)
{
	check_fractions("get=99.5,set=0.5", 12);
	check_fractions("multi=10,get=45,list=45", 13);
	check_fractions("create=1,set=1,get=1,exists=1,list=1,children=1,delete=1,multi=1", 14);
	check_fractions("create=100", 15);
}

Test(bench_mix, parse_values)
{
	struct bench_mix mix;
	cr_assert_eq(bench_mix_parse(&mix, "get=2.5,set=7"), 0);
	cr_assert_eq(mix.weight[BENCH_OP_GET], 2500);
	cr_assert_eq(mix.weight[BENCH_OP_SET], 7000);
	cr_assert_eq(mix.total, 9500);
	cr_assert_eq(mix.weight[BENCH_OP_CREATE], 0);
	char text[128];
	cr_assert_eq(bench_mix_format(&mix, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "set=7,get=2.500");
}

Test(bench_mix, parse_rejects)
{
	static const char *const bad[] = {
		"", "get", "get=", "=5", "get=x", "get=-1", "get=1,", ",get=1", "get=1,,set=1", "fetch=1",
		"get=1,get=2", "get=0", "get=0,set=0", "get=1.2345", "get=1e3", "get=2000000", "get =1", "get=1.2.3",
	};
	struct bench_mix mix;
	memset(&mix, 0x5a, sizeof(mix));
	struct bench_mix before = mix;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(bench_mix_parse(&mix, bad[i]), -EINVAL, "accepted '%s'", bad[i]);
		cr_assert(memcmp(&mix, &before, sizeof(mix)) == 0, "'%s' changed the mix", bad[i]);
	}
}

Test(bench_value, round_trip_and_rejections)
{
	uint8_t buf[300], other[300];
	bench_value_fill(buf, sizeof(buf), 42, 7);
	cr_assert_eq(bench_value_check(buf, sizeof(buf), sizeof(buf), 42), 0);
	cr_assert_eq(bench_value_check(buf, sizeof(buf), sizeof(buf), 43), -EBADMSG);       /* another key */
	cr_assert_eq(bench_value_check(buf, sizeof(buf) - 1, sizeof(buf), 42), -EBADMSG);   /* short */
	cr_assert_eq(bench_value_check(buf, -1, sizeof(buf), 42), -EBADMSG);                /* null */
	memcpy(other, buf, sizeof(buf));
	other[200] ^= 1;
	cr_assert_eq(bench_value_check(other, sizeof(other), sizeof(other), 42), -EBADMSG); /* torn */
	bench_value_fill(other, sizeof(other), 42, 8);
	cr_assert_eq(bench_value_check(other, sizeof(other), sizeof(other), 42), 0);        /* any version */
	uint8_t tiny[5];
	bench_value_fill(tiny, sizeof(tiny), 9, 3);
	cr_assert_eq(bench_value_check(tiny, sizeof(tiny), sizeof(tiny), 9), 0);
	cr_assert_eq(bench_value_check(tiny, 4, sizeof(tiny), 9), -EBADMSG);
	tiny[2] ^= 0x80;
	cr_assert_eq(bench_value_check(tiny, sizeof(tiny), sizeof(tiny), 9), -EBADMSG);
	cr_assert_eq(bench_value_check(NULL, 0, 0, 9), 0);
}

Test(bench_value, u32_format)
{
	char out[16];
	cr_assert_eq(bench_u32_format(out, 0), 1);
	cr_assert_eq(out[0], '0');
	size_t n = bench_u32_format(out, 4294967295u);
	out[n] = '\0';
	cr_assert_str_eq(out, "4294967295");
}

static int parse(struct bench_config *cfg, char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	char err[256];
	return bench_options_parse(cfg, argc, argv, err, sizeof(err));
}

Test(bench_options, mix_and_preset)
{
	struct bench_config cfg;
	char *a1[] = { "bench", "--mix", "get=50,set=50", NULL };
	cr_assert_eq(parse(&cfg, a1), BENCH_OPTIONS_RUN);
	cr_assert_eq(cfg.mix.weight[BENCH_OP_GET], 50000);
	cr_assert_eq(cfg.mix.weight[BENCH_OP_SET], 50000);
	cr_assert_eq(cfg.mix.weight[BENCH_OP_LIST], 0);

	/* --mix after or before --preset: the explicit mix wins either way. */
	char *a2[] = { "bench", "--mix=exists=1", "--preset", "create", NULL };
	cr_assert_eq(parse(&cfg, a2), BENCH_OPTIONS_RUN);
	cr_assert_eq(cfg.mix.total, 1000);
	cr_assert_eq(cfg.mix.weight[BENCH_OP_EXISTS], 1000);
	cr_assert_str_eq(cfg.preset, "create");

	char *a3[] = { "bench", "--preset=create", NULL };
	cr_assert_eq(parse(&cfg, a3), BENCH_OPTIONS_RUN);
	cr_assert_eq(cfg.mix.weight[BENCH_OP_CREATE], cfg.mix.total);
	cr_assert_eq(cfg.value_size, 100);

	char *a4[] = { "bench", "--preset", "clickhouse", NULL };
	cr_assert_eq(parse(&cfg, a4), BENCH_OPTIONS_RUN);
	cr_assert_eq(cfg.mix.weight[BENCH_OP_MULTI], 10000);
	cr_assert_eq(cfg.multi_min, 2);
	cr_assert_eq(cfg.multi_max, 4);

	char *bad1[] = { "bench", "--mix", "get=1,bogus=2", NULL };
	cr_assert_eq(parse(&cfg, bad1), -EINVAL);
	char *bad2[] = { "bench", "--mix", NULL };
	cr_assert_eq(parse(&cfg, bad2), -EINVAL);
	char *bad3[] = { "bench", "--preset", "nope", NULL };
	cr_assert_eq(parse(&cfg, bad3), -EINVAL);
}

Test(bench_options, numbers_lists_servers)
{
	struct bench_config cfg;
	char *a[] = { "bench", "--servers", "127.0.0.1:2281,localhost:2282", "--sweep", "16,64,256,512", "--threads", "3",
		      "--inflight", "8", "--rate", "5000", "--multi-size", "3", "--server-pid", "10,20", NULL };
	cr_assert_eq(parse(&cfg, a), BENCH_OPTIONS_RUN);
	cr_assert_eq(cfg.server_count, 2);
	cr_assert_str_eq(cfg.servers[1].text, "localhost:2282");
	cr_assert_eq(cfg.sweep_count, 4);
	cr_assert_eq(cfg.sweep[3], 512);
	cr_assert_eq(cfg.threads, 3);
	cr_assert_eq(cfg.inflight, 8);
	cr_assert_eq(cfg.rate, 5000.0);
	cr_assert_eq(cfg.multi_min, 3);
	cr_assert_eq(cfg.multi_max, 3);
	cr_assert_eq(cfg.server_pid_count, 2);
	cr_assert_eq(cfg.server_pids[1], 20);

	char *b1[] = { "bench", "--sessions", "0", NULL };
	cr_assert_eq(parse(&cfg, b1), -EINVAL);
	char *b2[] = { "bench", "--servers", "127.0.0.1", NULL };
	cr_assert_eq(parse(&cfg, b2), -EINVAL);
	char *b3[] = { "bench", "--multi-size", "4-2", NULL };
	cr_assert_eq(parse(&cfg, b3), -EINVAL);
	char *b4[] = { "bench", "--sweep", "16,,64", NULL };
	cr_assert_eq(parse(&cfg, b4), -EINVAL);
	char *b5[] = { "bench", "extra", NULL };
	cr_assert_eq(parse(&cfg, b5), -EINVAL);
}

Test(bench_options, reconnect_and_timeline)
{
	struct bench_config cfg;
	char *plain[] = { "bench", NULL };
	cr_assert_eq(parse(&cfg, plain), BENCH_OPTIONS_RUN);
	cr_assert(!cfg.reconnect);
	cr_assert_str_eq(cfg.timeline_path, "");

	char *a[] = { "bench", "--reconnect", "--timeline", "/tmp/t.txt", "--warmup", "0", "--duration", "3600", NULL };
	cr_assert_eq(parse(&cfg, a), BENCH_OPTIONS_RUN);
	cr_assert(cfg.reconnect);
	cr_assert_str_eq(cfg.timeline_path, "/tmp/t.txt");

	/* The timeline keeps 3 counters per ms: an hour at most, and one run only. */
	char *b1[] = { "bench", "--timeline", "/tmp/t.txt", "--warmup", "1", "--duration", "3600", NULL };
	cr_assert_eq(parse(&cfg, b1), -EINVAL);
	char *b2[] = { "bench", "--timeline", "/tmp/t.txt", "--sweep", "1,2", NULL };
	cr_assert_eq(parse(&cfg, b2), -EINVAL);
	char *b3[] = { "bench", "--timeline", "", NULL };
	cr_assert_eq(parse(&cfg, b3), -EINVAL);
}
