/*
 * options.c — see options.h.
 */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_options_defaults(struct bench_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server_count = 1;
	snprintf(cfg->servers[0].text, sizeof(cfg->servers[0].text), "127.0.0.1:2181");
	cfg->servers[0].addr.sin_family = AF_INET;
	cfg->servers[0].addr.sin_port = htons(2181);
	cfg->servers[0].addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg->threads = 2;
	cfg->sessions = 64;
	cfg->inflight = 1;
	cfg->warmup_s = 5;
	cfg->duration_s = 30;
	cfg->value_size = 100;
	cfg->keys = 10000;
	cfg->list_children = 100;
	cfg->multi_min = 2;
	cfg->multi_max = 4;
	cfg->session_timeout_ms = 30000;
	cfg->setup = true;
	cfg->cleanup = true;
	cfg->seed = 0x5eed;
	snprintf(cfg->root, sizeof(cfg->root), "/rkbench");
	(void)bench_preset_apply(cfg, "mixed");
}

int bench_preset_apply(struct bench_config *cfg, const char *name)
{
	const char *mix;
	if (strcmp(name, "create") == 0)
		mix = "create=100";
	else if (strcmp(name, "set") == 0)
		mix = "set=100"; /* the write-path counterpart of create: no tree growth */
	else if (strcmp(name, "mixed") == 0)
		mix = "create=1,set=8,get=45,list=45,delete=1";
	else if (strcmp(name, "clickhouse") == 0)
		mix = "multi=10,get=45,list=45";
	else
		return -EINVAL;
	int err = bench_mix_parse(&cfg->mix, mix);
	if (err)
		return err;
	snprintf(cfg->preset, sizeof(cfg->preset), "%s", name);
	cfg->value_size = 100;
	cfg->list_children = 100;
	cfg->multi_min = 2;
	cfg->multi_max = 4;
	return 0;
}

void bench_options_usage(void)
{
	fputs("usage: ringkeeper-bench [options]\n"
	      "  --servers H:P[,H:P]   servers (IPv4 literal or localhost; default 127.0.0.1:2181);\n"
	      "                        session s connects to server s mod count (round robin)\n"
	      "  --preset NAME         create | set | mixed | clickhouse (default mixed)\n"
	      "  --mix OP=W[,OP=W]     ops: create set get exists list children delete multi\n"
	      "                        (list = getChildren2 of the list node, children = getChildren)\n"
	      "  --threads N           event-loop threads (default 2)\n"
	      "  --sessions N          sessions in total (default 64)\n"
	      "  --inflight N          pipelined requests per session (default 1)\n"
	      "  --rate R              open loop at R ops/s in total (default 0 = closed loop)\n"
	      "  --warmup S            seconds before the timed window (default 5)\n"
	      "  --duration S          seconds timed (default 30)\n"
	      "  --sweep N,N,...       run once per session count\n"
	      "  --value-size B        bytes per value (default 100)\n"
	      "  --keys N              key space for set/get/exists (default 10000)\n"
	      "  --list-children N     children of the list node (default 100)\n"
	      "  --multi-size K|K1-K2  ops per multi (default 2-4)\n"
	      "  --sequential          creates are PERSISTENT_SEQUENTIAL\n"
	      "  --ephemeral           creates are ephemeral\n"
	      "  --session-timeout MS  requested session timeout (default 30000; pings at 1/3)\n"
	      "  --server-pid P[,P]    report these processes' CPU per op\n"
	      "  --root PATH           parent of every bench node (default /rkbench)\n"
	      "  --seed N              random seed\n"
	      "  --json                one JSON object per run on stdout\n"
	      "  --quiet               no per-second progress on stderr\n"
	      "  --no-setup            assume the key space and list node exist\n"
	      "  --no-cleanup          keep the nodes created by the run\n"
	      "  --reconnect           a session whose connection is lost moves to the next server\n"
	      "                        with its session id, as a ZooKeeper client does (off: lost)\n"
	      "  --timeline FILE       write acknowledged writes/reads and errors per ms of the run\n"
	      "                        (warmup + duration <= 3600 s; not with --sweep)\n"
	      "SIGINT or SIGTERM ends the window early; the run drains, reports and cleans up.\n",
	      stderr);
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int u32_parse(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int double_parse(const char *text, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || !(v >= min && v <= max))
		return -EINVAL;
	*out = v;
	return 0;
}

int bench_u32_list_parse(const char *text, uint32_t *out, uint32_t cap, uint32_t min, uint32_t max, uint32_t *count)
{
	char buf[512];
	size_t text_len = strlen(text);
	if (text_len == 0 || text_len >= sizeof(buf) || text[0] == ',' || text[text_len - 1] == ',' || strstr(text, ",,"))
		return -EINVAL; /* strtok would silently skip empty items */
	snprintf(buf, sizeof(buf), "%s", text);
	uint32_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n >= cap || u32_parse(tok, min, max, &out[n]))
			return -EINVAL;
		n++;
	}
	if (n == 0)
		return -EINVAL;
	*count = n;
	return 0;
}

static int servers_parse(struct bench_config *cfg, const char *text)
{
	char buf[1024];
	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", text);
	uint32_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n >= BENCH_SERVERS_MAX)
			return -EINVAL;
		char *colon = strrchr(tok, ':');
		uint32_t port;
		if (!colon || u32_parse(colon + 1, 1, 65535, &port))
			return -EINVAL;
		*colon = '\0';
		struct bench_server *s = &cfg->servers[n];
		memset(s, 0, sizeof(*s));
		s->addr.sin_family = AF_INET;
		s->addr.sin_port = htons((uint16_t)port);
		if (strcmp(tok, "localhost") == 0)
			s->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, tok, &s->addr.sin_addr) != 1)
			return -EINVAL;
		snprintf(s->text, sizeof(s->text), "%s:%u", tok, port);
		n++;
	}
	if (n == 0)
		return -EINVAL;
	cfg->server_count = n;
	return 0;
}

enum {
	OPT_SERVERS = 256,
	OPT_PRESET,
	OPT_MIX,
	OPT_THREADS,
	OPT_SESSIONS,
	OPT_INFLIGHT,
	OPT_RATE,
	OPT_WARMUP,
	OPT_DURATION,
	OPT_SWEEP,
	OPT_VALUE_SIZE,
	OPT_KEYS,
	OPT_LIST_CHILDREN,
	OPT_MULTI_SIZE,
	OPT_SEQUENTIAL,
	OPT_EPHEMERAL,
	OPT_SESSION_TIMEOUT,
	OPT_SERVER_PID,
	OPT_ROOT,
	OPT_SEED,
	OPT_JSON,
	OPT_QUIET,
	OPT_NO_SETUP,
	OPT_NO_CLEANUP,
	OPT_RECONNECT,
	OPT_TIMELINE,
	OPT_HELP,
};

static const struct option long_options[] = {
	{ "servers", required_argument, NULL, OPT_SERVERS },
	{ "preset", required_argument, NULL, OPT_PRESET },
	{ "mix", required_argument, NULL, OPT_MIX },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "sessions", required_argument, NULL, OPT_SESSIONS },
	{ "inflight", required_argument, NULL, OPT_INFLIGHT },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "sweep", required_argument, NULL, OPT_SWEEP },
	{ "value-size", required_argument, NULL, OPT_VALUE_SIZE },
	{ "keys", required_argument, NULL, OPT_KEYS },
	{ "list-children", required_argument, NULL, OPT_LIST_CHILDREN },
	{ "multi-size", required_argument, NULL, OPT_MULTI_SIZE },
	{ "sequential", no_argument, NULL, OPT_SEQUENTIAL },
	{ "ephemeral", no_argument, NULL, OPT_EPHEMERAL },
	{ "session-timeout", required_argument, NULL, OPT_SESSION_TIMEOUT },
	{ "server-pid", required_argument, NULL, OPT_SERVER_PID },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "no-setup", no_argument, NULL, OPT_NO_SETUP },
	{ "no-cleanup", no_argument, NULL, OPT_NO_CLEANUP },
	{ "reconnect", no_argument, NULL, OPT_RECONNECT },
	{ "timeline", required_argument, NULL, OPT_TIMELINE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int multi_size_parse(struct bench_config *cfg, const char *text)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%s", text);
	char *dash = strchr(buf, '-');
	uint32_t lo, hi;
	if (dash) {
		*dash = '\0';
		if (u32_parse(buf, 1, BENCH_MULTI_OPS_MAX, &lo) || u32_parse(dash + 1, 1, BENCH_MULTI_OPS_MAX, &hi) || lo > hi)
			return -EINVAL;
	} else {
		if (u32_parse(buf, 1, BENCH_MULTI_OPS_MAX, &lo))
			return -EINVAL;
		hi = lo;
	}
	cfg->multi_min = lo;
	cfg->multi_max = hi;
	return 0;
}

int bench_options_parse(struct bench_config *cfg, int argc, char **argv, char *err, size_t err_cap)
{
	bench_options_defaults(cfg);
	/* The preset goes first so any explicit option overrides it. */
	for (int i = 1; i < argc; i++) {
		const char *name = NULL;
		if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
			name = argv[i + 1];
		else if (strncmp(argv[i], "--preset=", 9) == 0)
			name = argv[i] + 9;
		if (name && bench_preset_apply(cfg, name))
			return fail(err, err_cap, "unknown preset '%s' (create, set, mixed, clickhouse)", name);
	}
	optind = 0; /* glibc: full re-initialisation, so repeated parses (tests) work */
	opterr = 0;
	for (;;) {
		int opt = getopt_long(argc, argv, "h", long_options, NULL);
		if (opt == -1)
			break;
		const char *a = optarg;
		uint32_t list_count = 0;
		switch (opt) {
		case OPT_SERVERS:
			if (servers_parse(cfg, a))
				return fail(err, err_cap, "--servers: want ipv4:port[,ipv4:port] (at most %d)", BENCH_SERVERS_MAX);
			break;
		case OPT_PRESET:
			break;
		case OPT_MIX:
			if (bench_mix_parse(&cfg->mix, a))
				return fail(err, err_cap, "--mix '%s': want op=weight[,op=weight] with ops from create set get exists list children delete multi", a);
			break;
		case OPT_THREADS:
			if (u32_parse(a, 1, BENCH_THREADS_MAX, &cfg->threads))
				return fail(err, err_cap, "--threads: 1..%d", BENCH_THREADS_MAX);
			break;
		case OPT_SESSIONS:
			if (u32_parse(a, 1, BENCH_SESSIONS_MAX, &cfg->sessions))
				return fail(err, err_cap, "--sessions: 1..%d", BENCH_SESSIONS_MAX);
			break;
		case OPT_INFLIGHT:
			if (u32_parse(a, 1, BENCH_INFLIGHT_MAX, &cfg->inflight))
				return fail(err, err_cap, "--inflight: 1..%d", BENCH_INFLIGHT_MAX);
			break;
		case OPT_RATE:
			if (double_parse(a, 0.0, 1e8, &cfg->rate))
				return fail(err, err_cap, "--rate: 0..1e8 ops/s");
			break;
		case OPT_WARMUP:
			if (double_parse(a, 0.0, BENCH_DURATION_S_MAX, &cfg->warmup_s))
				return fail(err, err_cap, "--warmup: 0..%g s", BENCH_DURATION_S_MAX);
			break;
		case OPT_DURATION:
			if (double_parse(a, 0.1, BENCH_DURATION_S_MAX, &cfg->duration_s))
				return fail(err, err_cap, "--duration: 0.1..%g s", BENCH_DURATION_S_MAX);
			break;
		case OPT_SWEEP:
			if (bench_u32_list_parse(a, cfg->sweep, BENCH_SWEEP_MAX, 1, BENCH_SESSIONS_MAX, &list_count))
				return fail(err, err_cap, "--sweep: up to %d session counts", BENCH_SWEEP_MAX);
			cfg->sweep_count = list_count;
			break;
		case OPT_VALUE_SIZE:
			if (u32_parse(a, 0, BENCH_VALUE_BYTES_MAX, &cfg->value_size))
				return fail(err, err_cap, "--value-size: 0..%u", BENCH_VALUE_BYTES_MAX);
			break;
		case OPT_KEYS:
			if (u32_parse(a, 1, BENCH_KEYS_MAX, &cfg->keys))
				return fail(err, err_cap, "--keys: 1..%u", BENCH_KEYS_MAX);
			break;
		case OPT_LIST_CHILDREN:
			if (u32_parse(a, 0, BENCH_LIST_CHILDREN_MAX, &cfg->list_children))
				return fail(err, err_cap, "--list-children: 0..%u", BENCH_LIST_CHILDREN_MAX);
			break;
		case OPT_MULTI_SIZE:
			if (multi_size_parse(cfg, a))
				return fail(err, err_cap, "--multi-size: K or K1-K2 within 1..%d", BENCH_MULTI_OPS_MAX);
			break;
		case OPT_SEQUENTIAL:
			cfg->create_sequential = true;
			break;
		case OPT_EPHEMERAL:
			cfg->create_ephemeral = true;
			break;
		case OPT_SESSION_TIMEOUT: {
			uint32_t ms;
			if (u32_parse(a, 1000, 600000, &ms))
				return fail(err, err_cap, "--session-timeout: 1000..600000 ms");
			cfg->session_timeout_ms = (int32_t)ms;
			break;
		}
		case OPT_SERVER_PID: {
			uint32_t pids[BENCH_PIDS_MAX];
			if (bench_u32_list_parse(a, pids, BENCH_PIDS_MAX, 1, 0x7fffffff, &list_count))
				return fail(err, err_cap, "--server-pid: up to %d pids", BENCH_PIDS_MAX);
			for (uint32_t i = 0; i < list_count; i++)
				cfg->server_pids[i] = (pid_t)pids[i];
			cfg->server_pid_count = list_count;
			break;
		}
		case OPT_ROOT:
			if (a[0] != '/' || strlen(a) < 2 || strlen(a) >= 40 || a[strlen(a) - 1] == '/')
				return fail(err, err_cap, "--root: an absolute path, not '/', under 40 bytes");
			snprintf(cfg->root, sizeof(cfg->root), "%s", a);
			break;
		case OPT_SEED: {
			uint32_t seed;
			if (u32_parse(a, 0, UINT32_MAX, &seed))
				return fail(err, err_cap, "--seed: 0..%u", UINT32_MAX);
			cfg->seed = seed;
			break;
		}
		case OPT_JSON:
			cfg->json = true;
			break;
		case OPT_QUIET:
			cfg->quiet = true;
			break;
		case OPT_NO_SETUP:
			cfg->setup = false;
			break;
		case OPT_NO_CLEANUP:
			cfg->cleanup = false;
			break;
		case OPT_RECONNECT:
			cfg->reconnect = true;
			break;
		case OPT_TIMELINE:
			if (!a[0] || strlen(a) >= sizeof(cfg->timeline_path))
				return fail(err, err_cap, "--timeline: a file name under %zu bytes", sizeof(cfg->timeline_path));
			snprintf(cfg->timeline_path, sizeof(cfg->timeline_path), "%s", a);
			break;
		case OPT_HELP:
		case 'h':
			return BENCH_OPTIONS_HELP;
		default:
			return fail(err, err_cap, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, err_cap, "unexpected argument '%s'", argv[optind]);
	if (cfg->mix.weight[BENCH_OP_MULTI] && cfg->multi_max > BENCH_MULTI_OPS_MAX)
		return fail(err, err_cap, "--multi-size too large");
	if ((uint64_t)(cfg->inflight + 4) * cfg->multi_max * (cfg->value_size + 512) > (256u << 20))
		return fail(err, err_cap, "--inflight x --value-size: a session's batch would pass 256 MiB");
	if (cfg->timeline_path[0] && cfg->warmup_s + cfg->duration_s > BENCH_TIMELINE_S_MAX)
		return fail(err, err_cap, "--timeline: warmup + duration at most %g s", BENCH_TIMELINE_S_MAX);
	if (cfg->timeline_path[0] && cfg->sweep_count)
		return fail(err, err_cap, "--timeline is for one run, not with --sweep");
	if (cfg->create_sequential && cfg->mix.weight[BENCH_OP_MULTI])
		return fail(err, err_cap, "--sequential is not supported with multi in the mix");
	return BENCH_OPTIONS_RUN;
}
