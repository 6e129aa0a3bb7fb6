#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char test_dir[64];
static char zoo_cfg[128];
static char myid_path[128];
static char err[CONFIG_ERR_BYTES];

static void config_test_setup(void)
{
	strcpy(test_dir, "/tmp/rk_config_test.XXXXXX");
	cr_assert_not_null(mkdtemp(test_dir));
	snprintf(zoo_cfg, sizeof zoo_cfg, "%s/zoo.cfg", test_dir);
	snprintf(myid_path, sizeof myid_path, "%s/myid", test_dir);
	err[0] = '\0';
}

static void config_test_teardown(void)
{
	unlink(zoo_cfg);
	unlink(myid_path);
	rmdir(test_dir);
}

TestSuite(config, .init = config_test_setup, .fini = config_test_teardown);

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* Defaults, then zoo.cfg with text loaded. */
static int load(struct rk_config *cfg, const char *text)
{
	config_defaults(cfg);
	write_file(zoo_cfg, text);
	return config_load_file(cfg, zoo_cfg, err, sizeof err);
}

__attribute__((format(printf, 1, 2)))
static void expect_err(const char *fmt, ...)
{
	char want[CONFIG_ERR_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want, sizeof want, fmt, ap);
	va_end(ap);
	cr_assert_str_eq(err, want);
}

/* A file with one bad line 1: the message must be exactly "config: FILE:1: " + tail. */
static void expect_line_error(const char *text, const char *tail)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, text), -EINVAL, "accepted: %s", text);
	expect_err("config: %s:1: %s", zoo_cfg, tail);
}

static void expect_flag_error(const char *flag, const char *want)
{
	struct rk_config cfg;
	config_defaults(&cfg);
	char *argv[] = { "ringkeeper", (char *)flag };
	cr_assert_eq(config_parse_args(&cfg, 2, argv, err, sizeof err), -EINVAL, "accepted: %s", flag);
	cr_assert_str_eq(err, want);
}

static int parse_args(struct rk_config *cfg, int argc, char **argv)
{
	config_defaults(cfg);
	return config_parse_args(cfg, argc, argv, err, sizeof err);
}

static char *conf_text(const struct rk_config *cfg, const struct config_conf_sizes *sizes)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	config_write_conf(cfg, sizes, f);
	fclose(f);
	return buf;
}

/* ---- defaults --------------------------------------------------------------------- */

Test(config, defaults)
{
	struct rk_config cfg;
	config_defaults(&cfg);
	cr_assert_eq(cfg.tick_time_ms, 2000);
	cr_assert_eq(cfg.init_limit_ticks, 10);
	cr_assert_eq(cfg.sync_limit_ticks, 5);
	cr_assert_str_eq(cfg.data_dir, "./ringkeeper-data");
	cr_assert_str_eq(cfg.data_log_dir, "");
	cr_assert_eq(cfg.client_port, 2181);
	cr_assert_str_eq(cfg.client_port_address, "0.0.0.0");
	cr_assert_eq(cfg.client_connections_per_ip_max, 60);
	cr_assert_eq(cfg.session_timeout_ms_min, 0);
	cr_assert_eq(cfg.session_timeout_ms_max, 0);
	cr_assert_eq(cfg.snap_count, 100000);
	cr_assert_eq(cfg.autopurge_snap_retain_count, 3);
	cr_assert_eq(cfg.autopurge_interval_hours, 0);
	cr_assert_not(cfg.four_letter_words.all);
	cr_assert_eq(cfg.four_letter_words.word_count, 1);
	cr_assert_str_eq(cfg.four_letter_words.words[0], "srvr");
	cr_assert_eq(cfg.global_outstanding_max, 1000);
	cr_assert_eq(cfg.outstanding_per_connection_max, 1000);
	cr_assert_eq(cfg.packet_bytes_max, 1048575);
	cr_assert(cfg.force_sync);
	cr_assert_eq(cfg.log_prealloc_kb, 65536);
	cr_assert_eq(cfg.worker_count, 0);
	cr_assert_eq(cfg.metrics_port, 0);
	cr_assert_eq(cfg.metrics_provider, CONFIG_METRICS_DEFAULT);
	cr_assert_str_eq(cfg.metrics_http_host, "0.0.0.0");
	cr_assert_eq(cfg.metrics_http_port, 7000);
	cr_assert(cfg.metrics_export_process);
	cr_assert_eq(cfg.log_level, CONFIG_LOG_INFO);
	cr_assert_not(cfg.extended_types_enabled);
	cr_assert_eq(cfg.container_check_interval_ms, 60000);
	cr_assert_str_eq(cfg.super_digest, "");
	cr_assert_not(cfg.enforce_quota);
	cr_assert_eq(cfg.raft_batch_bytes_max, 1048576);
	cr_assert_eq(cfg.raft_batch_entries_max, 4096);
	cr_assert_eq(cfg.server_count, 0);
	cr_assert_eq(cfg.server_id, 0);
	cr_assert_eq(cfg.warning_count, 0);
	for (int i = 0; i < CONFIG_KEY_COUNT; i++)
		cr_assert_eq(cfg.origins[i].kind, CONFIG_ORIGIN_DEFAULT);
}

Test(config, no_arguments_runs_with_defaults)
{
	struct rk_config cfg;
	char *argv[] = { "ringkeeper" };
	cr_assert_eq(parse_args(&cfg, 1, argv), CONFIG_ARGS_RUN);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.client_port, 2181);
	cr_assert_str_eq(cfg.data_dir, "./ringkeeper-data");
	cr_assert_str_eq(cfg.config_path, "");
}

Test(config, derived_defaults)
{
	struct rk_config cfg;
	config_defaults(&cfg);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.session_timeout_ms_min, 4000);
	cr_assert_eq(cfg.session_timeout_ms_max, 40000);
	cr_assert_str_eq(cfg.data_log_dir, "./ringkeeper-data");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cr_assert_eq(cfg.worker_count, cpus > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : cpus);

	/* finalize is idempotent */
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.session_timeout_ms_min, 4000);
}

Test(config, derived_defaults_follow_the_file)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "tickTime=3000\ndataDir=/var/lib/rk\nthreads=0\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.session_timeout_ms_min, 6000);
	cr_assert_eq(cfg.session_timeout_ms_max, 60000);
	cr_assert_str_eq(cfg.data_log_dir, "/var/lib/rk");
	cr_assert_gt(cfg.worker_count, 0);
}

/* threads=0 counts the CPUs this process may run on (taskset, a cpuset), not the
 * machine's. Criterion runs each test in its own process, so the mask does not leak. */
Test(config, threads_zero_follows_the_affinity_mask)
{
	/* One CPU of those this test may use (CI may not offer CPU 0). */
	cpu_set_t allowed, one;
	cr_assert_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
	int cpu = 0;
	while (!CPU_ISSET(cpu, &allowed))
		cpu++;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "dataDir=/d\nthreads=0\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.worker_count, 1);
	cr_assert_eq(load(&cfg, "dataDir=/d\nthreads=3\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.worker_count, 3);
}

Test(config, explicit_values_are_not_derived)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "tickTime=3000\nminSessionTimeout=1000\nmaxSessionTimeout=90000\n"
			       "dataDir=/d\ndataLogDir=/l\nthreads=3\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.session_timeout_ms_min, 1000);
	cr_assert_eq(cfg.session_timeout_ms_max, 90000);
	cr_assert_str_eq(cfg.data_log_dir, "/l");
	cr_assert_eq(cfg.worker_count, 3);
}

/* ---- file format ------------------------------------------------------------------ */

Test(config, file_comments_blanks_and_whitespace)
{
	struct rk_config cfg;
	const char *text =
		"# The number of milliseconds of each tick\n"
		"tickTime=2500\n"
		"\n"
		"   \t\n"
		"  # indented comment = with an equals sign\n"
		"  initLimit  =  20  \n"
		"\tsyncLimit\t=\t7\t\n"
		"dataDir=/var/lib/zookeeper\r\n"
		"clientPort = 2182\n"
		"clientPortAddress=127.0.0.1\n"
		"maxClientCnxns=0\n"
		"snapCount=5000\n"
		"autopurge.snapRetainCount=5\n"
		"autopurge.purgeInterval=24\n"
		"forceSync=no\n"
		"preAllocSize=131072\n"
		"logLevel=DEBUG\n"
		"extendedTypesEnabled=true\n"
		"znode.container.checkIntervalMs=1000\n"
		"superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n"
		"enforceQuota=yes\n"
		"maxOutstandingPerConnection=10\n"
		"globalOutstandingLimit=5000\n"
		"jute.maxbuffer=4194304\n"
		"metricsPort=0\n"
		"raft.batchBytesMax=2097152\n"
		"raft.batchEntriesMax=100\n"
		"threads=2"; /* no final newline */
	cr_assert_eq(load(&cfg, text), 0, "%s", err);
	cr_assert_eq(cfg.tick_time_ms, 2500);
	cr_assert_eq(cfg.init_limit_ticks, 20);
	cr_assert_eq(cfg.sync_limit_ticks, 7);
	cr_assert_str_eq(cfg.data_dir, "/var/lib/zookeeper");
	cr_assert_eq(cfg.client_port, 2182);
	cr_assert_str_eq(cfg.client_port_address, "127.0.0.1");
	cr_assert_eq(cfg.client_connections_per_ip_max, 0);
	cr_assert_eq(cfg.snap_count, 5000);
	cr_assert_eq(cfg.autopurge_snap_retain_count, 5);
	cr_assert_eq(cfg.autopurge_interval_hours, 24);
	cr_assert_not(cfg.force_sync);
	cr_assert_eq(cfg.log_prealloc_kb, 131072);
	cr_assert_eq(cfg.log_level, CONFIG_LOG_DEBUG);
	cr_assert(cfg.extended_types_enabled);
	cr_assert_eq(cfg.container_check_interval_ms, 1000);
	cr_assert_str_eq(cfg.super_digest, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
	cr_assert(cfg.enforce_quota);
	cr_assert_eq(cfg.outstanding_per_connection_max, 10);
	cr_assert_eq(cfg.global_outstanding_max, 5000);
	cr_assert_eq(cfg.packet_bytes_max, 4194304);
	cr_assert_eq(cfg.metrics_port, 0);
	cr_assert_eq(cfg.raft_batch_bytes_max, 2097152);
	cr_assert_eq(cfg.raft_batch_entries_max, 100);
	cr_assert_eq(cfg.worker_count, 2);
	cr_assert_str_eq(cfg.config_path, zoo_cfg);
	cr_assert_eq(cfg.origins[CONFIG_KEY_TICK_TIME].kind, CONFIG_ORIGIN_FILE);
	cr_assert_eq(cfg.origins[CONFIG_KEY_TICK_TIME].line, 2);
	cr_assert_eq(cfg.origins[CONFIG_KEY_INIT_LIMIT].line, 6);
	cr_assert_eq(cfg.warning_count, 0);
}

Test(config, later_line_wins_in_a_file)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "clientPort=1\nclientPort=2\n"), 0, "%s", err);
	cr_assert_eq(cfg.client_port, 2);
	cr_assert_eq(cfg.origins[CONFIG_KEY_CLIENT_PORT].line, 2);
}

Test(config, value_may_contain_equals_and_hash)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "dataDir=/a=b#c\n"), 0, "%s", err);
	cr_assert_str_eq(cfg.data_dir, "/a=b#c");
	/* as in ZooKeeper, a trailing comment is part of the value */
	expect_line_error("clientPort=2181 # the port", "clientPort: not an integer: '2181 # the port'");
}

Test(config, zookeeper_prefix)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "zookeeper.extendedTypesEnabled=true\n"
			       "zookeeper.4lw.commands.whitelist=ruok\n"
			       "zookeeper.snapCount=7\n"), 0, "%s", err);
	cr_assert(cfg.extended_types_enabled);
	cr_assert_eq(cfg.snap_count, 7);
	cr_assert(config_4lw_allowed(&cfg, "ruok"));
	expect_line_error("zookeeper.snapCount=x", "zookeeper.snapCount: not an integer: 'x'");
	expect_line_error("zookeeper.=1", "zookeeper.: unknown key");
}

Test(config, missing_file)
{
	struct rk_config cfg;
	config_defaults(&cfg);
	cr_assert_eq(config_load_file(&cfg, "/nonexistent/zoo.cfg", err, sizeof err), -ENOENT);
	cr_assert_str_eq(err, "config: /nonexistent/zoo.cfg: No such file or directory");
}

Test(config, line_errors)
{
	expect_line_error("tickTime", "tickTime: expected key=value");
	expect_line_error("  = 5", "no key before '='");
	expect_line_error("noSuchKey=1", "noSuchKey: unknown key");
	expect_line_error("TickTime=1", "TickTime: unknown key");
}

Test(config, error_names_the_right_line)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "# comment\n\ntickTime=2000\ninitLimit=10\nsyncLimit=-1\n"), -EINVAL);
	expect_err("config: %s:5: syncLimit: must be between 1 and 100000, got -1", zoo_cfg);
}

Test(config, long_line)
{
	char *text = malloc(CONFIG_LINE_BYTES_MAX + 16);
	memcpy(text, "dataDir=", 8);
	memset(text + 8, 'a', CONFIG_LINE_BYTES_MAX);
	strcpy(text + 8 + CONFIG_LINE_BYTES_MAX, "\n");
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, text), -EINVAL);
	expect_err("config: %s:1: line longer than 8192 bytes", zoo_cfg);
	free(text);
}

/* ---- value validation ------------------------------------------------------------- */

Test(config, integer_errors)
{
	expect_line_error("tickTime=abc", "tickTime: not an integer: 'abc'");
	expect_line_error("tickTime=12ms", "tickTime: not an integer: '12ms'");
	expect_line_error("tickTime=1.5", "tickTime: not an integer: '1.5'");
	expect_line_error("tickTime=", "tickTime: empty value");
	expect_line_error("tickTime=0", "tickTime: must be between 1 and 600000, got 0");
	expect_line_error("snapCount=0", "snapCount: must be at least 1, got 0");
	expect_line_error("snapCount=2147483648", "snapCount: must be at least 1, got 2147483648");
	expect_line_error("snapCount=99999999999999999999",
			  "snapCount: must be at least 1, got 99999999999999999999");
	expect_line_error("maxClientCnxns=-1", "maxClientCnxns: must be at least 0, got -1");
	expect_line_error("minSessionTimeout=0", "minSessionTimeout: must be at least 1, got 0");
	expect_line_error("globalOutstandingLimit=0", "globalOutstandingLimit: must be at least 1, got 0");
	expect_line_error("maxOutstandingPerConnection=0",
			  "maxOutstandingPerConnection: must be at least 1, got 0");
	expect_line_error("autopurge.purgeInterval=-1",
			  "autopurge.purgeInterval: must be at least 0, got -1");
	expect_line_error("jute.maxbuffer=16777217",
			  "jute.maxbuffer: must be between 1 and 16777216, got 16777217");
	expect_line_error("threads=257", "threads: must be between 0 and 256, got 257");
	expect_line_error("raft.batchEntriesMax=0", "raft.batchEntriesMax: must be between 1 and 65536, got 0");
	expect_line_error("raft.batchBytesMax=100",
			  "raft.batchBytesMax: must be between 4096 and 67108864, got 100");
	expect_line_error("preAllocSize=0", "preAllocSize: must be between 4 and 1048576, got 0");

	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "jute.maxbuffer=16777216\nsnapCount=+5\n"), 0, "%s", err);
	cr_assert_eq(cfg.packet_bytes_max, 16777216);
	cr_assert_eq(cfg.snap_count, 5);
}

Test(config, port_errors)
{
	expect_line_error("clientPort=0", "clientPort: must be between 1 and 65535, got 0");
	expect_line_error("clientPort=65536", "clientPort: must be between 1 and 65535, got 65536");
	expect_line_error("metricsPort=70000", "metricsPort: must be between 0 and 65535, got 70000");

	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "clientPort=65535\nmetricsPort=1\n"), 0, "%s", err);
	cr_assert_eq(cfg.client_port, 65535);
	cr_assert_eq(cfg.metrics_port, 1);
}

Test(config, booleans)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "forceSync=No\nenforceQuota=TRUE\nextendedTypesEnabled=yes\n"), 0, "%s", err);
	cr_assert_not(cfg.force_sync);
	cr_assert(cfg.enforce_quota);
	cr_assert(cfg.extended_types_enabled);
	cr_assert_eq(load(&cfg, "forceSync=false\nforceSync=true\n"), 0, "%s", err);
	cr_assert(cfg.force_sync);
	expect_line_error("forceSync=1", "forceSync: expected yes, no, true or false, got '1'");
	expect_line_error("enforceQuota=maybe", "enforceQuota: expected yes, no, true or false, got 'maybe'");
}

/* Keys whose value is one of a list of names, matched without regard to case. */
Test(config, enum_keys)
{
	static const struct {
		const char *line;
		size_t offset;
		int want;
	} cases[] = {
		{ "", offsetof(struct rk_config, log_level), CONFIG_LOG_INFO },
		{ "logLevel=error\n", offsetof(struct rk_config, log_level), CONFIG_LOG_ERROR },
		{ "logLevel=Warn\n", offsetof(struct rk_config, log_level), CONFIG_LOG_WARN },
		{ "", offsetof(struct rk_config, raft_log_sync_method), CONFIG_SYNC_AUTO },
		{ "raft.logSyncMethod=syscall\n", offsetof(struct rk_config, raft_log_sync_method), CONFIG_SYNC_SYSCALL },
		{ "raft.logSyncMethod=auto\n", offsetof(struct rk_config, raft_log_sync_method), CONFIG_SYNC_AUTO },
		{ "raft.logSyncMethod=linked\n", offsetof(struct rk_config, raft_log_sync_method), CONFIG_SYNC_LINKED },
		{ "raft.logSyncMethod=DSYNC\n", offsetof(struct rk_config, raft_log_sync_method), CONFIG_SYNC_DSYNC },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rk_config cfg;
		cr_assert_eq(load(&cfg, cases[i].line), 0, "%s: %s", cases[i].line, err);
		cr_assert_eq(*(const int *)((const char *)&cfg + cases[i].offset), cases[i].want, "%s", cases[i].line);
	}
	expect_line_error("logLevel=trace", "logLevel: expected error, warn, info or debug, got 'trace'");
	expect_line_error("raft.logSyncMethod=fsync",
			  "raft.logSyncMethod: expected auto, syscall, linked or dsync, got 'fsync'");
}

Test(config, strings)
{
	expect_line_error("dataDir=", "dataDir: empty value");
	expect_line_error("clientPortAddress=a b", "clientPortAddress: not a host name or address: 'a b'");
	expect_line_error("superDigest=super", "superDigest: expected user:base64digest (as DigestAuthenticationProvider prints it)");
	expect_line_error("superDigest=super:not base64", "superDigest: expected user:base64digest (as DigestAuthenticationProvider prints it)");
	expect_line_error("superDigest=:abcd", "superDigest: expected user:base64digest (as DigestAuthenticationProvider prints it)");
	expect_line_error("superDigest=super:abc", "superDigest: expected user:base64digest (as DigestAuthenticationProvider prints it)");

	char text[CONFIG_PATH_BYTES_MAX + 16];
	strcpy(text, "dataDir=");
	memset(text + 8, 'd', CONFIG_DIR_LENGTH_MAX + 1);
	text[8 + CONFIG_DIR_LENGTH_MAX + 1] = '\0';
	expect_line_error(text, "dataDir: longer than 3839 bytes");

	struct rk_config cfg;
	text[8 + CONFIG_DIR_LENGTH_MAX] = '\0';
	cr_assert_eq(load(&cfg, text), 0, "%s", err);
	cr_assert_eq(strlen(cfg.data_dir), CONFIG_DIR_LENGTH_MAX);

	cr_assert_eq(load(&cfg, "superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\nsuperDigest=\n"), 0, "%s", err);
	cr_assert_str_eq(cfg.super_digest, "");
}

/* ---- cross-key checks ------------------------------------------------------------- */

Test(config, min_session_timeout_above_max)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "tickTime=2000\nminSessionTimeout=50000\nmaxSessionTimeout=40000\n"), 0);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:2: minSessionTimeout: 50000 is greater than maxSessionTimeout 40000", zoo_cfg);

	/* against the derived maximum (20 * tickTime) */
	cr_assert_eq(load(&cfg, "minSessionTimeout=50000\n"), 0);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:1: minSessionTimeout: 50000 is greater than maxSessionTimeout 40000", zoo_cfg);

	/* against the derived minimum (2 * tickTime) */
	cr_assert_eq(load(&cfg, "\nmaxSessionTimeout=3000\n"), 0);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:2: maxSessionTimeout: 3000 is less than minSessionTimeout 4000 (2*tickTime)", zoo_cfg);

	/* equal is fine */
	cr_assert_eq(load(&cfg, "minSessionTimeout=5000\nmaxSessionTimeout=5000\n"), 0);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
}

Test(config, cross_key_error_from_a_flag)
{
	struct rk_config cfg;
	char *argv[] = { "ringkeeper", "--minSessionTimeout=60000" };
	cr_assert_eq(parse_args(&cfg, 2, argv), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	cr_assert_str_eq(err, "config: --minSessionTimeout: 60000 is greater than maxSessionTimeout 40000");
}

Test(config, metrics_port_same_as_client_port)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "metricsPort=2181\n"), 0);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:1: metricsPort: 2181 is also the clientPort", zoo_cfg);

	/* /metrics is off by default: port 7000 is free for clients */
	cr_assert_eq(load(&cfg, "clientPort=7000\n"), 0);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.metrics_port, 0);

	/* ZooKeeper's Prometheus provider takes 7000 unless told otherwise */
	cr_assert_eq(load(&cfg, "clientPort=7000\nmetricsProvider.className="
			       "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:1: clientPort: 7000 is also the metricsProvider.httpPort", zoo_cfg);

	cr_assert_eq(load(&cfg, "metricsProvider.className="
			       "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
			       "metricsProvider.httpPort=2181\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:2: metricsProvider.httpPort: 2181 is also the clientPort", zoo_cfg);
}

Test(config, metrics_provider_turns_metrics_on)
{
	struct rk_config cfg;
	/* An operator's zoo.cfg, unchanged: the provider with its port and address. */
	cr_assert_eq(load(&cfg, "metricsProvider.className="
			       "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
			       "metricsProvider.httpPort=7001\n"
			       "metricsProvider.httpHost=127.0.0.1\n"
			       "metricsProvider.exportJvmInfo=false\n"
			       "metricsProvider.numWorkerThreads=2\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.metrics_provider, CONFIG_METRICS_PROMETHEUS);
	cr_assert_eq(cfg.metrics_port, 7001);
	cr_assert_str_eq(cfg.metrics_http_host, "127.0.0.1");
	cr_assert_not(cfg.metrics_export_process);
	cr_assert_eq(cfg.warning_count, 1); /* numWorkerThreads: accepted, not used */

	/* The provider's default port */
	cr_assert_eq(load(&cfg, "metricsProvider.className="
			       "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.metrics_port, 7000);

	/* RingKeeper's own key turns it on without the provider, and wins over httpPort */
	cr_assert_eq(load(&cfg, "metricsPort=9100\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.metrics_port, 9100);
	cr_assert_eq(load(&cfg, "metricsProvider.className="
			       "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
			       "metricsProvider.httpPort=7001\nmetricsPort=9100\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.metrics_port, 9100);

	/* ZooKeeper's other providers serve no HTTP, as in ZooKeeper */
	cr_assert_eq(load(&cfg, "metricsProvider.className=org.apache.zookeeper.metrics.impl.NullMetricsProvider\n"),
		     0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.metrics_port, 0);

	/* A class we cannot load stops the server, as ZooKeeper's ClassNotFoundException does */
	expect_line_error("metricsProvider.className=com.example.MyProvider",
			  "metricsProvider.className: expected org.apache.zookeeper.metrics.impl.DefaultMetricsProvider, "
			  "org.apache.zookeeper.metrics.impl.NullMetricsProvider or "
			  "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider, got 'com.example.MyProvider'");
	expect_line_error("metricsProvider.httpPort=0", "metricsProvider.httpPort: must be between 1 and 65535, got 0");
}

Test(config, autopurge_retain_below_three_is_raised)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "autopurge.snapRetainCount=1\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.autopurge_snap_retain_count, 3);
	cr_assert_eq(cfg.warning_count, 1);
	char want[CONFIG_WARNING_BYTES_MAX];
	snprintf(want, sizeof want,
		 "config: %s:1: autopurge.snapRetainCount: 1 is below ZooKeeper's minimum; using 3", zoo_cfg);
	cr_assert_str_eq(cfg.warnings[0], want);
	expect_line_error("autopurge.snapRetainCount=0", "autopurge.snapRetainCount: must be at least 1, got 0");
}

/* ---- flags ------------------------------------------------------------------------ */

Test(config, flags_override_the_file)
{
	write_file(zoo_cfg, "clientPort=2000\ntickTime=1000\ndataDir=/from/file\n");
	struct rk_config cfg;
	/* the flag before --config still wins over the file */
	char *argv[] = { "ringkeeper", "--clientPort=3000", "--config", zoo_cfg, "--tickTime=1500",
			 "--clientPort=4000" };
	cr_assert_eq(parse_args(&cfg, 6, argv), CONFIG_ARGS_RUN, "%s", err);
	cr_assert_eq(cfg.client_port, 4000);
	cr_assert_eq(cfg.tick_time_ms, 1500);
	cr_assert_str_eq(cfg.data_dir, "/from/file");
	cr_assert_eq(cfg.origins[CONFIG_KEY_CLIENT_PORT].kind, CONFIG_ORIGIN_FLAG);
	cr_assert_eq(cfg.origins[CONFIG_KEY_DATA_DIR].kind, CONFIG_ORIGIN_FILE);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.session_timeout_ms_min, 3000);
}

Test(config, config_file_spellings)
{
	write_file(zoo_cfg, "clientPort=2001\n");
	struct rk_config cfg;
	char opt[160];
	snprintf(opt, sizeof opt, "--config=%s", zoo_cfg);
	char *argv1[] = { "ringkeeper", opt };
	cr_assert_eq(parse_args(&cfg, 2, argv1), 0, "%s", err);
	cr_assert_eq(cfg.client_port, 2001);

	char *argv2[] = { "ringkeeper", zoo_cfg }; /* QuorumPeerMain style */
	cr_assert_eq(parse_args(&cfg, 2, argv2), 0, "%s", err);
	cr_assert_eq(cfg.client_port, 2001);

	char *argv3[] = { "ringkeeper", zoo_cfg, "--config", "/other.cfg" };
	cr_assert_eq(parse_args(&cfg, 4, argv3), -EINVAL);
	char want[256];
	snprintf(want, sizeof want, "config: /other.cfg: a second config file (the first is %s)", zoo_cfg);
	cr_assert_str_eq(err, want);

	char *argv4[] = { "ringkeeper", "--config" };
	cr_assert_eq(parse_args(&cfg, 2, argv4), -EINVAL);
	cr_assert_str_eq(err, "config: --config: needs a file name");

	char *argv5[] = { "ringkeeper", "--config", "/nonexistent.cfg" };
	cr_assert_eq(parse_args(&cfg, 3, argv5), -ENOENT);
	cr_assert_str_eq(err, "config: /nonexistent.cfg: No such file or directory");
}

Test(config, help_and_version)
{
	struct rk_config cfg;
	char *argv1[] = { "ringkeeper", "--clientPort=bad", "--help" };
	cr_assert_eq(parse_args(&cfg, 3, argv1), CONFIG_ARGS_HELP);
	char *argv2[] = { "ringkeeper", "-h" };
	cr_assert_eq(parse_args(&cfg, 2, argv2), CONFIG_ARGS_HELP);
	char *argv3[] = { "ringkeeper", "--version" };
	cr_assert_eq(parse_args(&cfg, 2, argv3), CONFIG_ARGS_VERSION);
	char *argv4[] = { "ringkeeper", "-V" };
	cr_assert_eq(parse_args(&cfg, 2, argv4), CONFIG_ARGS_VERSION);
}

Test(config, flag_errors)
{
	expect_flag_error("--tickTime=abc", "config: --tickTime: not an integer: 'abc'");
	expect_flag_error("--clientPort=0", "config: --clientPort: must be between 1 and 65535, got 0");
	expect_flag_error("--clientPort", "config: --clientPort: needs a value (--clientPort=VALUE)");
	expect_flag_error("--nope=1", "config: --nope: unknown key");
	expect_flag_error("--zookeeper.nope=1", "config: --zookeeper.nope: unknown key");
	expect_flag_error("-x", "config: -x: unknown option (keys are given as --key=value)");
	expect_flag_error("--", "config: --: unknown option (keys are given as --key=value)");
	expect_flag_error("--=1", "config: --=1: unknown option (keys are given as --key=value)");
	expect_flag_error("--server.1=h", "config: --server.1: expected host:peerPort:electionPort[:role][;[clientHost:]clientPort], got 'h'");
}

Test(config, bare_boolean_flag_means_yes)
{
	struct rk_config cfg;
	char *argv[] = { "ringkeeper", "--extendedTypesEnabled", "--forceSync=no" };
	cr_assert_eq(parse_args(&cfg, 3, argv), 0, "%s", err);
	cr_assert(cfg.extended_types_enabled);
	cr_assert_not(cfg.force_sync);
}

Test(config, flag_error_does_not_name_the_file)
{
	write_file(zoo_cfg, "tickTime=2000\n");
	struct rk_config cfg;
	char *argv[] = { "ringkeeper", zoo_cfg, "--logLevel=loud" };
	cr_assert_eq(parse_args(&cfg, 3, argv), -EINVAL);
	cr_assert_str_eq(err, "config: --logLevel: expected error, warn, info or debug, got 'loud'");
}

/* ---- accepted-but-unused and rejected keys ----------------------------------------- */

Test(config, unused_zookeeper_keys_warn)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "admin.serverPort=8080\n"
			       "admin.enableServer=false\n"
			       "metricsProvider.numWorkerThreads=1\n"
			       "audit.enable=true\n"
			       "standaloneEnabled=false\n"
			       "quorumListenOnAllIPs=true\n"
			       "cnxTimeout=5000\n"
			       "electionAlg=3\n"
			       "peerType=participant\n"
			       "syncEnabled=true\n"
			       "secureClientPort=2281\n"
			       "ssl.keyStore.location=/k.jks\n"
			       "ssl.quorum.trustStore.password=x\n"
			       "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
			       "zookeeper.jmx.log4j.disable=true\n"
			       "zookeeper.admin.enableServer=false\n"), 0, "%s", err);
	cr_assert_eq(cfg.warning_count, 16);
	char want[CONFIG_WARNING_BYTES_MAX];
	snprintf(want, sizeof want, "config: %s:1: admin.serverPort: accepted but not used by RingKeeper", zoo_cfg);
	cr_assert_str_eq(cfg.warnings[0], want);
	snprintf(want, sizeof want, "config: %s:16: zookeeper.admin.enableServer: accepted but not used by RingKeeper", zoo_cfg);
	cr_assert_str_eq(cfg.warnings[15], want);

	char *argv[] = { "ringkeeper", "--admin.serverPort=9090" };
	cr_assert_eq(parse_args(&cfg, 2, argv), 0, "%s", err);
	cr_assert_eq(cfg.warning_count, 1);
	cr_assert_str_eq(cfg.warnings[0], "config: --admin.serverPort: accepted but not used by RingKeeper");

	/* a bare prefix is not a key */
	expect_line_error("ssl.=1", "ssl.: unknown key");
}

Test(config, warnings_are_capped)
{
	struct rk_config cfg;
	char text[64 * 40] = "";
	for (int i = 0; i < CONFIG_WARNINGS_MAX + 5; i++)
		strcat(text, "cnxTimeout=1\n");
	cr_assert_eq(load(&cfg, text), 0, "%s", err);
	cr_assert_eq(cfg.warning_count, CONFIG_WARNINGS_MAX);
	cr_assert_eq(cfg.warnings_dropped, 5);
}

Test(config, rejected_keys)
{
	expect_line_error("dynamicConfigFile=/etc/zoo.cfg.dynamic",
			  "dynamicConfigFile: not supported: list the server.N lines in this file");
	expect_line_error("group.1=1:2:3", "group.1: hierarchical quorums (group.N, weight.N) are not supported");
	expect_line_error("weight.1=1", "weight.1: hierarchical quorums (group.N, weight.N) are not supported");
}

/* ---- server.N --------------------------------------------------------------------- */

Test(config, servers)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "server.3=zk3.example.com:2888:3888\n"
			       "server.1=10.0.0.1:2889:3889:participant\n"
			       "server.2 = 10.0.0.2 : 2888 : 3888 : observer ; 2181\n"
			       "server.4=[2001:db8::4]:2888:3888;[::1]:2182\n"
			       "server.5=zk5:2888:3888:PARTICIPANT;0.0.0.0:2183\n"
			       "server.255=zk255:1:65535\n"), 0, "%s", err);
	cr_assert_eq(cfg.server_count, 6);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);

	const struct config_server *s = cfg.servers;
	cr_assert_eq(s[0].id, 1);
	cr_assert_str_eq(s[0].host, "10.0.0.1");
	cr_assert_eq(s[0].peer_port, 2889);
	cr_assert_eq(s[0].election_port, 3889);
	cr_assert_eq(s[0].role, CONFIG_ROLE_PARTICIPANT);
	cr_assert_eq(s[0].client_port, 0);
	cr_assert_str_eq(s[0].client_host, "");
	cr_assert_eq(s[0].origin.line, 2);

	cr_assert_eq(s[1].id, 2);
	cr_assert_str_eq(s[1].host, "10.0.0.2");
	cr_assert_eq(s[1].peer_port, 2888);
	cr_assert_eq(s[1].election_port, 3888);
	cr_assert_eq(s[1].role, CONFIG_ROLE_OBSERVER);
	cr_assert_eq(s[1].client_port, 2181);
	cr_assert_str_eq(s[1].client_host, "");

	cr_assert_eq(s[2].id, 3);
	cr_assert_str_eq(s[2].host, "zk3.example.com");
	cr_assert_eq(s[2].role, CONFIG_ROLE_PARTICIPANT);

	cr_assert_eq(s[3].id, 4);
	cr_assert_str_eq(s[3].host, "2001:db8::4");
	cr_assert_str_eq(s[3].client_host, "::1");
	cr_assert_eq(s[3].client_port, 2182);

	cr_assert_eq(s[4].id, 5);
	cr_assert_str_eq(s[4].client_host, "0.0.0.0");
	cr_assert_eq(s[4].client_port, 2183);

	cr_assert_eq(s[5].id, 255);
	cr_assert_eq(s[5].peer_port, 1);
	cr_assert_eq(s[5].election_port, 65535);
}

Test(config, server_replaced_by_id_and_by_flag)
{
	write_file(zoo_cfg, "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.1=c:2888:3888\n");
	struct rk_config cfg;
	char *argv[] = { "ringkeeper", zoo_cfg, "--server.2=d:2890:3890", "--zookeeper.server.3=e:2888:3888" };
	cr_assert_eq(parse_args(&cfg, 4, argv), 0, "%s", err);
	cr_assert_eq(cfg.server_count, 3);
	cr_assert_str_eq(cfg.servers[0].host, "c");
	cr_assert_eq(cfg.servers[0].origin.line, 3);
	cr_assert_str_eq(cfg.servers[1].host, "d");
	cr_assert_eq(cfg.servers[1].peer_port, 2890);
	cr_assert_eq(cfg.servers[1].origin.kind, CONFIG_ORIGIN_FLAG);
	cr_assert_str_eq(cfg.servers[2].host, "e");
}

Test(config, server_errors)
{
	const char *form = "expected host:peerPort:electionPort[:role][;[clientHost:]clientPort]";
	char want[512];

	expect_line_error("server.0=a:1:2", "server.0: server id must be between 1 and 255, got '0'");
	expect_line_error("server.256=a:1:2", "server.256: server id must be between 1 and 255, got '256'");
	expect_line_error("server.x=a:1:2", "server.x: server id must be between 1 and 255, got 'x'");
	expect_line_error("server.=a:1:2", "server.: server id must be between 1 and 255, got ''");

	snprintf(want, sizeof want, "server.1: %s, got 'a:2888'", form);
	expect_line_error("server.1=a:2888", want);
	snprintf(want, sizeof want, "server.1: %s, got 'a'", form);
	expect_line_error("server.1=a", want);
	snprintf(want, sizeof want, "server.1: %s, got ':1:2'", form);
	expect_line_error("server.1=:1:2", want);
	snprintf(want, sizeof want, "server.1: %s, got 'a:1:2:observer:x'", form);
	expect_line_error("server.1=a:1:2:observer:x", want);
	snprintf(want, sizeof want, "server.1: %s, got '[::1:1:2'", form);
	expect_line_error("server.1=[::1:1:2", want);
	snprintf(want, sizeof want, "server.1: %s, got 'a:1:2;2181;2182'", form);
	expect_line_error("server.1=a:1:2;2181;2182", want);
	snprintf(want, sizeof want, "server.1: %s, got 'a b:1:2'", form);
	expect_line_error("server.1=a b:1:2", want);

	expect_line_error("server.1=a:0:2", "server.1: peer port must be between 1 and 65535, got '0'");
	expect_line_error("server.1=a:x:2", "server.1: peer port must be between 1 and 65535, got 'x'");
	expect_line_error("server.1=a:1:65536", "server.1: election port must be between 1 and 65535, got '65536'");
	expect_line_error("server.1=a:1:", "server.1: election port must be between 1 and 65535, got ''");
	expect_line_error("server.1=a:1:2:leader", "server.1: role must be participant or observer, got 'leader'");
	expect_line_error("server.1=a:1:2;", "server.1: client port must be between 1 and 65535, got ''");
	expect_line_error("server.1=a:1:2;h:0", "server.1: client port must be between 1 and 65535, got '0'");
	expect_line_error("server.1=a:1:2|b:1:2", "server.1: several addresses for one server ('|') are not supported");
	expect_line_error("server.1=", "server.1: expected host:peerPort:electionPort[:role][;[clientHost:]clientPort], got ''");
}

Test(config, at_most_sixteen_servers)
{
	char text[2048] = "";
	for (int i = 1; i <= CONFIG_SERVERS_MAX + 1; i++) {
		char line[64];
		snprintf(line, sizeof line, "server.%d=h%d:2888:3888\n", i, i);
		strcat(text, line);
	}
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, text), -EINVAL);
	expect_err("config: %s:17: server.17: more than 16 servers", zoo_cfg);
}

Test(config, duplicate_peer_address)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "server.2=h:2888:3888\nserver.1=h:2888:3889\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s:1: server.2: peer address h:2888 is also server.1's", zoo_cfg);

	/* same host, other ports: fine (several servers on one machine) */
	cr_assert_eq(load(&cfg, "server.1=h:2888:3888\nserver.2=h:2889:3889\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
}

/* ---- myid ------------------------------------------------------------------------- */

static void myid_config(struct rk_config *cfg, const char *servers)
{
	char text[1024];
	snprintf(text, sizeof text, "dataDir=%s\n%s", test_dir, servers);
	cr_assert_eq(load(cfg, text), 0, "%s", err);
	cr_assert_eq(config_finalize(cfg, err, sizeof err), 0, "%s", err);
}

Test(config, myid_standalone_without_file)
{
	struct rk_config cfg;
	myid_config(&cfg, "");
	cfg.server_id = 99;
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.server_id, 0);
	cr_assert_null(config_server_self(&cfg));
}

Test(config, myid_required_with_servers)
{
	struct rk_config cfg;
	myid_config(&cfg, "server.1=a:2888:3888\n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), -ENOENT);
	expect_err("config: %s: No such file or directory (needed with server.N lines)", myid_path);
}

Test(config, myid_read_and_checked)
{
	struct rk_config cfg;
	myid_config(&cfg, "server.1=a:2888:3888\nserver.2=b:2889:3889\nserver.3=c:2890:3890:observer\n");

	write_file(myid_path, " 2 \n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.server_id, 2);
	const struct config_server *self = config_server_self(&cfg);
	cr_assert_not_null(self);
	cr_assert_str_eq(self->host, "b");

	write_file(myid_path, "3");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), -ENOTSUP);
	expect_err("config: server.3 is an observer, and RingKeeper does not run observers yet: "
		   "make it a participant (drop ':observer') or do not start this server");

	write_file(myid_path, "4");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s: server id 4 has no server.4 line", myid_path);

	write_file(myid_path, "two\n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s: expected a server id between 1 and 255, got 'two'", myid_path);

	write_file(myid_path, "256\n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s: expected a server id between 1 and 255, got '256'", myid_path);

	write_file(myid_path, "");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), -EINVAL);
	expect_err("config: %s: expected a server id between 1 and 255, got ''", myid_path);
}

/* Servers of one ensemble on one host share its CPUs (threads=0) and pin apart. */
Test(config, servers_on_one_host_share_its_cpus_and_pin_apart)
{
	cpu_set_t allowed;
	cr_assert_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
	int32_t usable = CPU_COUNT(&allowed) > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : CPU_COUNT(&allowed);
	int32_t share = usable / 4 > 0 ? usable / 4 : 1;
	/* 1, 2, 3 and the observer 5 are on this host (loopback, by any name); 4 is not */
	const char *servers = "server.1=127.0.0.1:2888:3888\nserver.2=localhost:2889:3889\n"
			      "server.3=127.0.0.2:2890:3890\nserver.4=other:2891:3891\n"
			      "server.5=127.0.0.1:2892:3892:observer\n";
	struct rk_config cfg;
	myid_config(&cfg, servers);
	write_file(myid_path, "2\n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.servers_on_host, 4);
	cr_assert_eq(cfg.worker_count, share);
	cr_assert_eq(cfg.worker_cpu_first, share, "one server (1) before it on the host");
	write_file(myid_path, "3\n");
	myid_config(&cfg, servers);
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.worker_cpu_first, 2 * share);
	/* alone on its host: every usable CPU, from the first */
	write_file(myid_path, "4\n");
	myid_config(&cfg, servers);
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.servers_on_host, 1);
	cr_assert_eq(cfg.worker_count, usable);
	cr_assert_eq(cfg.worker_cpu_first, 0);
	/* threads set: kept, still pinned apart */
	char text[1024];
	snprintf(text, sizeof text, "threads=3\n%s", servers);
	write_file(myid_path, "3\n");
	myid_config(&cfg, text);
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.worker_count, 3);
	cr_assert_eq(cfg.worker_cpu_first, 6);
	/* standalone */
	myid_config(&cfg, "");
	unlink(myid_path);
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.servers_on_host, 1);
	cr_assert_eq(cfg.worker_count, usable);
	cr_assert_eq(cfg.worker_cpu_first, 0);
}

Test(config, myid_standalone_with_file)
{
	struct rk_config cfg;
	myid_config(&cfg, "");
	write_file(myid_path, "7\n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.server_id, 7);
}

/* ---- four-letter words ------------------------------------------------------------ */

Test(config, whitelist_default_is_srvr_only)
{
	struct rk_config cfg;
	config_defaults(&cfg);
	cr_assert(config_4lw_allowed(&cfg, "srvr"));
	cr_assert_not(config_4lw_allowed(&cfg, "ruok"));
	cr_assert_not(config_4lw_allowed(&cfg, "stat"));
}

Test(config, whitelist_list)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "4lw.commands.whitelist=stat, ruok ,conf,,stat\n"), 0, "%s", err);
	cr_assert_not(cfg.four_letter_words.all);
	cr_assert_eq(cfg.four_letter_words.word_count, 3);
	cr_assert_str_eq(cfg.four_letter_words.words[0], "stat");
	cr_assert_str_eq(cfg.four_letter_words.words[1], "ruok");
	cr_assert_str_eq(cfg.four_letter_words.words[2], "conf");
	cr_assert(config_4lw_allowed(&cfg, "stat"));
	cr_assert(config_4lw_allowed(&cfg, "ruok"));
	cr_assert(config_4lw_allowed(&cfg, "srvr")); /* always */
	cr_assert_not(config_4lw_allowed(&cfg, "mntr"));
	cr_assert_not(config_4lw_allowed(&cfg, "dump"));
}

Test(config, whitelist_star_and_empty)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "4lw.commands.whitelist=*\n"), 0, "%s", err);
	cr_assert(cfg.four_letter_words.all);
	cr_assert(config_4lw_allowed(&cfg, "mntr"));
	cr_assert(config_4lw_allowed(&cfg, "zzzz"));

	cr_assert_eq(load(&cfg, "4lw.commands.whitelist=ruok, *\n"), 0, "%s", err);
	cr_assert(config_4lw_allowed(&cfg, "dump"));

	cr_assert_eq(load(&cfg, "4lw.commands.whitelist=\n"), 0, "%s", err);
	cr_assert_eq(cfg.four_letter_words.word_count, 0);
	cr_assert(config_4lw_allowed(&cfg, "srvr"));
	cr_assert_not(config_4lw_allowed(&cfg, "ruok"));
}

Test(config, whitelist_errors)
{
	expect_line_error("4lw.commands.whitelist=stat,STAT",
			  "4lw.commands.whitelist: 'STAT' is not a four-letter word (four lowercase letters) or *");
	expect_line_error("4lw.commands.whitelist=stats",
			  "4lw.commands.whitelist: 'stats' is not a four-letter word (four lowercase letters) or *");
	expect_line_error("4lw.commands.whitelist=ruok,st4t",
			  "4lw.commands.whitelist: 'st4t' is not a four-letter word (four lowercase letters) or *");
	expect_line_error("4lw.commands.whitelist=ru ok",
			  "4lw.commands.whitelist: 'ru ok' is not a four-letter word (four lowercase letters) or *");
	expect_line_error("4lw.commands.whitelist=**",
			  "4lw.commands.whitelist: '**' is not a four-letter word (four lowercase letters) or *");

	/* a failed list leaves the previous one in place */
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "4lw.commands.whitelist=ruok\n4lw.commands.whitelist=ruok,bad\n"), -EINVAL);
	cr_assert_eq(cfg.four_letter_words.word_count, 1);
	cr_assert_str_eq(cfg.four_letter_words.words[0], "ruok");
}

/* ---- output ----------------------------------------------------------------------- */

Test(config, conf_standalone)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "dataDir=/data\nthreads=4\n4lw.commands.whitelist=ruok,conf\n"
			       "superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	struct config_conf_sizes sizes = { 1234, 5678 };
	char *text = conf_text(&cfg, &sizes);
	cr_assert_str_eq(text,
		"clientPort=2181\n"
		"secureClientPort=-1\n"
		"dataDir=/data\n"
		"dataDirSize=1234\n"
		"dataLogDir=/data\n"
		"dataLogSize=5678\n"
		"tickTime=2000\n"
		"maxClientCnxns=60\n"
		"minSessionTimeout=4000\n"
		"maxSessionTimeout=40000\n"
		"clientPortListenBacklog=-1\n"
		"serverId=0\n"
		"initLimit=10\n"
		"syncLimit=5\n"
		"clientPortAddress=0.0.0.0\n"
		"snapCount=100000\n"
		"autopurge.snapRetainCount=3\n"
		"autopurge.purgeInterval=0\n"
		"4lw.commands.whitelist=ruok,conf\n"
		"globalOutstandingLimit=1000\n"
		"jute.maxbuffer=1048575\n"
		"forceSync=true\n"
		"preAllocSize=65536\n"
		"extendedTypesEnabled=false\n"
		"znode.container.checkIntervalMs=60000\n"
		"superDigest=(set)\n"
		"enforceQuota=false\n"
		"reconfigEnabled=false\n"
		"metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n"
		"metricsProvider.httpHost=0.0.0.0\n"
		"metricsProvider.httpPort=7000\n"
		"metricsProvider.exportJvmInfo=true\n"
		"maxOutstandingPerConnection=1000\n"
		"threads=4\n"
		"metricsPort=0\n"
		"logLevel=info\n"
		"raft.batchBytesMax=1048576\n"
		"raft.batchEntriesMax=4096\n"
		"keeperApiNodes=true\n"
		"raft.logInflightMax=1\n" "raft.logSyncMethod=auto\n"
		"raft.tickMs=50\n" "raft.electionTimeoutMs=500\n" "raft.heartbeatIntervalMs=100\n"
		"raft.preferredLeader=0\n"
		"raft.logEntriesMax=1048576\n");
	free(text);
}

Test(config, conf_quorum)
{
	struct rk_config cfg;
	char text_in[512];
	snprintf(text_in, sizeof text_in,
		 "dataDir=%s\ndataLogDir=/log\n4lw.commands.whitelist=*\n"
		 "server.2=b:2888:3888:observer;2181\nserver.1=a:2888:3888\n"
		 "server.3=[fe80::1]:2890:3890;[::1]:2182\nthreads=1\n", test_dir);
	cr_assert_eq(load(&cfg, text_in), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	write_file(myid_path, "3\n");
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);

	char *text = conf_text(&cfg, NULL);
	char want[4096];
	snprintf(want, sizeof want,
		"clientPort=2181\n"
		"secureClientPort=-1\n"
		"dataDir=%s\n"
		"dataLogDir=/log\n"
		"tickTime=2000\n"
		"maxClientCnxns=60\n"
		"minSessionTimeout=4000\n"
		"maxSessionTimeout=40000\n"
		"clientPortListenBacklog=-1\n"
		"serverId=3\n"
		"initLimit=10\n"
		"syncLimit=5\n"
		"electionAlg=3\n"
		"electionPort=3890\n"
		"quorumPort=2890\n"
		"peerType=0\n"
		"membership: \n"
		"server.1=a:2888:3888:participant\n"
		"server.2=b:2888:3888:observer;0.0.0.0:2181\n"
		"server.3=[fe80::1]:2890:3890:participant;[::1]:2182\n"
		"version=0\n"
		"clientPortAddress=0.0.0.0\n"
		"snapCount=100000\n"
		"autopurge.snapRetainCount=3\n"
		"autopurge.purgeInterval=0\n"
		"4lw.commands.whitelist=*\n"
		"globalOutstandingLimit=1000\n"
		"jute.maxbuffer=1048575\n"
		"forceSync=true\n"
		"preAllocSize=65536\n"
		"extendedTypesEnabled=false\n"
		"znode.container.checkIntervalMs=60000\n"
		"superDigest=\n"
		"enforceQuota=false\n"
		"reconfigEnabled=false\n"
		"metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n"
		"metricsProvider.httpHost=0.0.0.0\n"
		"metricsProvider.httpPort=7000\n"
		"metricsProvider.exportJvmInfo=true\n"
		"maxOutstandingPerConnection=1000\n"
		"threads=1\n"
		"metricsPort=0\n"
		"logLevel=info\n"
		"raft.batchBytesMax=1048576\n"
		"raft.batchEntriesMax=4096\n"
		"keeperApiNodes=true\n"
		"raft.logInflightMax=1\n" "raft.logSyncMethod=auto\n"
		"raft.tickMs=50\n" "raft.electionTimeoutMs=500\n" "raft.heartbeatIntervalMs=100\n"
		"raft.preferredLeader=0\n"
		"raft.logEntriesMax=1048576\n", test_dir);
	cr_assert_str_eq(text, want);
	free(text);
}

Test(config, help_lists_every_key)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_print_help(f);
	fclose(f);
	for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
		const char *name = config_key_name((enum config_key_id)i);
		cr_assert_not_null(strstr(text, name), "missing %s", name);
	}
	cr_assert_not_null(strstr(text,
		"  tickTime                         int ms    default 2000\n"
		"      the basic time unit: heartbeats, limits and default timeouts count ticks\n"));
	cr_assert_not_null(strstr(text,
		"  forceSync                        bool      default yes\n"
		"      fdatasync the log before a write is acknowledged\n"));
	cr_assert_not_null(strstr(text, "server.N"));
	cr_assert_not_null(strstr(text, "admin.*"));
	cr_assert_not_null(strstr(text, "secureClientPort"));
	/* every line fits a terminal */
	for (char *line = text; *line;) {
		char *end = strchrnul(line, '\n');
		cr_assert_leq(end - line, 80, "long line: %.*s", (int)(end - line), line);
		line = *end ? end + 1 : end;
	}
	free(text);
}

Test(config, key_names)
{
	cr_assert_str_eq(config_key_name(CONFIG_KEY_TICK_TIME), "tickTime");
	cr_assert_str_eq(config_key_name(CONFIG_KEY_4LW_WHITELIST), "4lw.commands.whitelist");
	cr_assert_str_eq(config_key_name(CONFIG_KEY_RAFT_BATCH_ENTRIES), "raft.batchEntriesMax");
}

Test(config, free_clears)
{
	struct rk_config cfg;
	config_defaults(&cfg);
	config_free(&cfg);
	cr_assert_eq(cfg.client_port, 0);
	cr_assert_eq(cfg.warning_count, 0);
}

Test(config, raft_timing_keys_and_their_rule)
{
	struct rk_config cfg;
	char *ok[] = { "ringkeeper", "--raft.tickMs=10", "--raft.electionTimeoutMs=300", "--raft.heartbeatIntervalMs=50" };
	cr_assert_eq(parse_args(&cfg, 4, ok), CONFIG_ARGS_RUN);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.raft_tick_ms, 10);
	cr_assert_eq(cfg.raft_election_timeout_ms, 300);
	cr_assert_eq(cfg.raft_heartbeat_interval_ms, 50);
	char *slow_hb[] = { "ringkeeper", "--raft.heartbeatIntervalMs=400" };
	cr_assert_eq(parse_args(&cfg, 2, slow_hb), CONFIG_ARGS_RUN);
	cr_assert_lt(config_finalize(&cfg, err, sizeof err), 0);
	cr_assert_not_null(strstr(err, "raft.heartbeatIntervalMs"), "%s", err);
	char *coarse_tick[] = { "ringkeeper", "--raft.tickMs=200" };
	cr_assert_eq(parse_args(&cfg, 2, coarse_tick), CONFIG_ARGS_RUN);
	cr_assert_lt(config_finalize(&cfg, err, sizeof err), 0);
	cr_assert_not_null(strstr(err, "raft.tickMs"), "%s", err);
}

Test(config, dynamic_config_text_is_zookeepers)
{
	struct rk_config cfg;
	char buf[1024];
	cr_assert_eq(load(&cfg, "clientPort=2181\n"), 0, "%s", err);
	cr_assert_eq(config_dynamic_text(&cfg, buf, sizeof buf), 0, "standalone: empty");
	cr_assert_str_eq(buf, "");
	cr_assert_eq(load(&cfg, "server.1=10.0.0.1:2888:3888\n"
				"server.2=[fe80::1]:2888:3888;2182\n"
				"server.3=h3:2888:3888:observer;127.0.0.1:2183\n"), 0, "%s", err);
	const char *want = "server.1=10.0.0.1:2888:3888:participant\n"
			   "server.2=[fe80::1]:2888:3888:participant;0.0.0.0:2182\n"
			   "server.3=h3:2888:3888:observer;127.0.0.1:2183\n"
			   "version=0";
	cr_assert_eq(config_dynamic_text(&cfg, buf, sizeof buf), (int)strlen(want));
	cr_assert_str_eq(buf, want);
	cr_assert_eq(config_dynamic_text(&cfg, buf, strlen(want)), -1, "one byte short");
}

Test(config, the_preferred_leader_must_be_one_of_the_servers)
{
	struct rk_config cfg;
	cr_assert_eq(load(&cfg, "server.1=a:2888:3888\nserver.2=b:2888:3888\nraft.preferredLeader=2\n"), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.raft_preferred_leader, 2);
	cr_assert_eq(load(&cfg, "server.1=a:2888:3888\nserver.2=b:2888:3888\nraft.preferredLeader=3\n"), 0, "%s", err);
	cr_assert_neq(config_finalize(&cfg, err, sizeof err), 0);
	cr_assert(strstr(err, "raft.preferredLeader") && strstr(err, "3 is not the id of any server.N line"), "%s", err);
}
