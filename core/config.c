/*
 * config.c — zoo.cfg and --key=value parsing, validation, derived defaults, `conf`.
 *
 * Everything about a key lives in one row of config_keys[] (indexed by enum
 * config_key_id): its name, type, limits, help text and the field it fills. Setting a
 * key is: strip a "zookeeper." prefix, find the row (or the server.N, rejected and
 * accepted-but-unused tables), parse and check the value into a local, then store it
 * and remember where it came from (struct config_origin) so a later cross-key error can
 * name that line.
 *
 * Messages are built in one place (config_fail / config_warn) so the format
 * "config: <file>:<line>: <key>: <reason>" / "config: --<key>: <reason>" stays exact.
 *
 * This file holds the table and what is decided from it as a whole: defaults, derived
 * values and cross-key checks (config_finalize), key lookup and --help. Parsing,
 * server.N and myid, and the `conf` output are in config_parse.c, config_server.c and
 * config_conf.c (file map in config_impl.h).
 *
 * Thread: main, before any other thread starts. No allocation survives a call.
 */
#include "core/config.h"

#include <assert.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config_impl.h"

#define MIB (1024 * 1024)

#define FIELD(f) .offset = offsetof(struct rk_config, f), .size = sizeof(((struct rk_config *)0)->f)

const struct config_key config_keys[CONFIG_KEY_COUNT] = {
	[CONFIG_KEY_TICK_TIME] = { "tickTime", CONFIG_TYPE_INT, "ms", "2000",
		"the basic time unit: heartbeats, limits and default timeouts count ticks",
		1, 600000, FIELD(tick_time_ms) },
	[CONFIG_KEY_INIT_LIMIT] = { "initLimit", CONFIG_TYPE_INT, "ticks", "10",
		"ticks a joining follower may take to catch up with the leader",
		1, 100000, FIELD(init_limit_ticks) },
	[CONFIG_KEY_SYNC_LIMIT] = { "syncLimit", CONFIG_TYPE_INT, "ticks", "5",
		"ticks a follower may lag behind the leader before it is dropped",
		1, 100000, FIELD(sync_limit_ticks) },
	[CONFIG_KEY_DATA_DIR] = { "dataDir", CONFIG_TYPE_DIR, NULL, "./ringkeeper-data",
		"directory of the snapshots and of the myid file",
		0, 0, FIELD(data_dir) },
	[CONFIG_KEY_DATA_LOG_DIR] = { "dataLogDir", CONFIG_TYPE_DIR, NULL, "dataDir",
		"directory of the write-ahead log (best on a disk of its own)",
		0, 0, FIELD(data_log_dir) },
	[CONFIG_KEY_CLIENT_PORT] = { "clientPort", CONFIG_TYPE_PORT, NULL, "2181",
		"TCP port clients connect to",
		1, 65535, FIELD(client_port) },
	[CONFIG_KEY_CLIENT_PORT_ADDRESS] = { "clientPortAddress", CONFIG_TYPE_HOST, NULL, "0.0.0.0",
		"address the client port listens on",
		0, 0, FIELD(client_port_address) },
	[CONFIG_KEY_MAX_CLIENT_CNXNS] = { "maxClientCnxns", CONFIG_TYPE_INT, NULL, "60",
		"concurrent connections from one IP address; 0 = no limit",
		0, INT32_MAX, FIELD(client_connections_per_ip_max) },
	[CONFIG_KEY_MIN_SESSION_TIMEOUT] = { "minSessionTimeout", CONFIG_TYPE_INT, "ms", "2*tickTime",
		"smallest session timeout granted to a client",
		1, INT32_MAX, FIELD(session_timeout_ms_min) },
	[CONFIG_KEY_MAX_SESSION_TIMEOUT] = { "maxSessionTimeout", CONFIG_TYPE_INT, "ms", "20*tickTime",
		"largest session timeout granted to a client",
		1, INT32_MAX, FIELD(session_timeout_ms_max) },
	[CONFIG_KEY_SNAP_COUNT] = { "snapCount", CONFIG_TYPE_INT, NULL, "100000",
		"log entries between two snapshots",
		1, INT32_MAX, FIELD(snap_count) },
	[CONFIG_KEY_AUTOPURGE_SNAP_RETAIN] = { "autopurge.snapRetainCount", CONFIG_TYPE_INT, NULL, "3",
		"snapshots (and the log after them) autopurge keeps; below 3 counts as 3",
		1, INT32_MAX, FIELD(autopurge_snap_retain_count) },
	[CONFIG_KEY_AUTOPURGE_INTERVAL] = { "autopurge.purgeInterval", CONFIG_TYPE_INT, "hours", "0",
		"hours between autopurge runs; 0 = never",
		0, INT32_MAX, FIELD(autopurge_interval_hours) },
	[CONFIG_KEY_4LW_WHITELIST] = { "4lw.commands.whitelist", CONFIG_TYPE_4LW, NULL, "srvr",
		"four-letter words clients may send (comma list, or *); srvr always works",
		0, 0, FIELD(four_letter_words) },
	[CONFIG_KEY_GLOBAL_OUTSTANDING] = { "globalOutstandingLimit", CONFIG_TYPE_INT, NULL, "1000",
		"requests in flight in the whole server before clients are throttled",
		1, INT32_MAX, FIELD(global_outstanding_max) },
	[CONFIG_KEY_JUTE_MAXBUFFER] = { "jute.maxbuffer", CONFIG_TYPE_INT, "bytes", "1048575",
		"largest packet a client may send or receive, and largest znode",
		1, 16 * MIB, FIELD(packet_bytes_max) },
	[CONFIG_KEY_FORCE_SYNC] = { "forceSync", CONFIG_TYPE_BOOL, NULL, "yes",
		"fdatasync the log before a write is acknowledged",
		0, 0, FIELD(force_sync) },
	[CONFIG_KEY_PREALLOC_SIZE] = { "preAllocSize", CONFIG_TYPE_INT, "KiB", "65536",
		"size of one preallocated log segment",
		4, MIB, FIELD(log_prealloc_kb) },
	[CONFIG_KEY_EXTENDED_TYPES] = { "extendedTypesEnabled", CONFIG_TYPE_BOOL, NULL, "false",
		"allow TTL nodes",
		0, 0, FIELD(extended_types_enabled) },
	[CONFIG_KEY_CONTAINER_CHECK] = { "znode.container.checkIntervalMs", CONFIG_TYPE_INT, "ms", "60000",
		"interval of the sweep deleting empty containers and expired TTL nodes",
		1, INT32_MAX, FIELD(container_check_interval_ms) },
	[CONFIG_KEY_SUPER_DIGEST] = { "superDigest", CONFIG_TYPE_DIGEST, NULL, "(off)",
		"user:base64(sha1(user:password)) of the digest superuser",
		0, 0, FIELD(super_digest) },
	[CONFIG_KEY_RECONFIG_ENABLED] = { "reconfigEnabled", CONFIG_TYPE_BOOL, NULL, "false",
		"check reconfig requests as ZooKeeper does (membership stays as configured)",
		0, 0, FIELD(reconfig_enabled) },
	[CONFIG_KEY_ENFORCE_QUOTA] = { "enforceQuota", CONFIG_TYPE_BOOL, NULL, "false",
		"reject writes past a quota instead of only logging them",
		0, 0, FIELD(enforce_quota) },
	[CONFIG_KEY_METRICS_PROVIDER] = { "metricsProvider.className", CONFIG_TYPE_METRICS_PROVIDER, NULL,
		"DefaultMetricsProvider",
		"metrics provider class; PrometheusMetricsProvider serves /metrics",
		0, 0, FIELD(metrics_provider) },
	[CONFIG_KEY_METRICS_HTTP_HOST] = { "metricsProvider.httpHost", CONFIG_TYPE_HOST, NULL, "0.0.0.0",
		"address /metrics listens on",
		0, 0, FIELD(metrics_http_host) },
	[CONFIG_KEY_METRICS_HTTP_PORT] = { "metricsProvider.httpPort", CONFIG_TYPE_PORT, NULL, "7000",
		"port of /metrics with the Prometheus provider (metricsPort overrides it)",
		1, 65535, FIELD(metrics_http_port) },
	[CONFIG_KEY_METRICS_EXPORT_JVM] = { "metricsProvider.exportJvmInfo", CONFIG_TYPE_BOOL, NULL, "true",
		"also export process_* metrics (CPU, memory, fds); there is no JVM",
		0, 0, FIELD(metrics_export_process) },
	[CONFIG_KEY_OUTSTANDING_PER_CONN] = { "maxOutstandingPerConnection", CONFIG_TYPE_INT, NULL, "1000",
		"requests in flight on one connection before reading from it pauses",
		1, INT32_MAX, FIELD(outstanding_per_connection_max) },
	[CONFIG_KEY_THREADS] = { "threads", CONFIG_TYPE_INT, NULL, "0",
		"workers pinned to CPUs; 0: one per usable CPU, shared by servers of a host",
		0, CONFIG_THREADS_MAX, FIELD(worker_count) },
	[CONFIG_KEY_METRICS_PORT] = { "metricsPort", CONFIG_TYPE_PORT, NULL, "0",
		"serve /metrics on this port; 0: only with the Prometheus metricsProvider",
		0, 65535, FIELD(metrics_port) },
	[CONFIG_KEY_LOG_LEVEL] = { "logLevel", CONFIG_TYPE_LOG_LEVEL, NULL, "info",
		"error, warn, info or debug",
		0, 0, FIELD(log_level) },
	[CONFIG_KEY_RAFT_BATCH_BYTES] = { "raft.batchBytesMax", CONFIG_TYPE_INT, "bytes", "1048576",
		"largest group-commit batch, in bytes",
		4096, 64 * MIB, FIELD(raft_batch_bytes_max) },
	[CONFIG_KEY_RAFT_BATCH_ENTRIES] = { "raft.batchEntriesMax", CONFIG_TYPE_INT, NULL, "4096",
		"largest group-commit batch, in entries",
		1, 65536, FIELD(raft_batch_entries_max) },
	[CONFIG_KEY_KEEPER_API_NODES] = { "keeperApiNodes", CONFIG_TYPE_BOOL, NULL, "yes",
		"serve ClickHouse Keeper's /keeper/api_version and /keeper/feature_flags",
		0, 0, FIELD(keeper_api_nodes) },
	[CONFIG_KEY_RAFT_LOG_INFLIGHT] = { "raft.logInflightMax", CONFIG_TYPE_INT, NULL, "1",
		"group-commit batches on the disk at once (linked and dsync only)",
		1, 8, FIELD(raft_log_inflight_max) },
	[CONFIG_KEY_RAFT_LOG_SYNC] = { "raft.logSyncMethod", CONFIG_TYPE_SYNC_METHOD, NULL, "auto",
		"log durability: auto (alone syscall, else dsync), syscall, linked, dsync",
		0, 0, FIELD(raft_log_sync_method) },
	[CONFIG_KEY_RAFT_TICK] = { "raft.tickMs", CONFIG_TYPE_INT, NULL, "50",
		"the consensus core's tick (ms): elections and heartbeats count ticks",
		5, 1000, FIELD(raft_tick_ms) },
	[CONFIG_KEY_RAFT_ELECTION_TIMEOUT] = { "raft.electionTimeoutMs", CONFIG_TYPE_INT, NULL, "500",
		"no leader heard this long (randomised up to 2x): elect one (ms)",
		20, 600000, FIELD(raft_election_timeout_ms) },
	[CONFIG_KEY_RAFT_HEARTBEAT] = { "raft.heartbeatIntervalMs", CONFIG_TYPE_INT, NULL, "100",
		"an idle leader shows it is alive this often (ms)",
		5, 600000, FIELD(raft_heartbeat_interval_ms) },
	[CONFIG_KEY_RAFT_PREFERRED_LEADER] = { "raft.preferredLeader", CONFIG_TYPE_INT, NULL, "0",
		"server id that should lead when it is up and caught up (0: none)",
		0, 65535, FIELD(raft_preferred_leader) },
	[CONFIG_KEY_RAFT_LOG_ENTRIES] = { "raft.logEntriesMax", CONFIG_TYPE_INT, NULL, "1048576",
		"log entries kept in memory for followers behind (beyond: a snapshot)",
		64, 16777216, FIELD(raft_log_entries_max) },
};

/*
 * ZooKeeper keys RingKeeper accepts and ignores with a warning, so an operator's zoo.cfg
 * works unchanged. Exact names, then prefixes (a prefix ends with '.').
 */
static const char *const config_unused_keys[] = {
	"standaloneEnabled", "quorumListenOnAllIPs", "cnxTimeout",
	"electionAlg", "electionPortBindRetry", "peerType", "syncEnabled",
	"secureClientPort", "secureClientPortAddress", "sslQuorum", "sslQuorumReloadCertFiles",
	"client.portUnification", "serverCnxnFactory", "audit.enable",
	"localSessionsEnabled", "localSessionsUpgradingEnabled", "clientPortListenBacklog",
	"maxCnxns", "snapSizeLimitInKb", "txnLogSizeLimitInKb", "commitLogCount",
	"fsync.warningthresholdms", "maxResponseCacheSize", "maxGetChildrenResponseCacheSize",
	"skipACL", "digest.enabled", "snapshot.trust.empty", "snapshot.compression.method",
	"sessionRequireClientSASLAuth", "enforce.auth.enabled", "enforce.auth.schemes",
	"quorum.cnxn.threads.size", "connectToLearnerMasterLimit", "observerMasterPort",
	"leaderServes", "learner.asyncSending", "learner.closeSocketAsync",
	"leader.closeSocketAsync", "flushDelay", "maxWriteQueuePollTime", "maxBatchSize",
	"znode.container.maxPerMinute", "znode.container.maxNeverUsedIntervalMs",
	"emulate353TTLNodes", "watchManagerName", "closeSessionTxn.enabled",
	"readonlymode.enabled", "jute.maxbuffer.extrasize", "requestThrottleLimit",
	"requestThrottleStallTime", "requestThrottleDropStale", "throttledOpWaitTime",
};

static const char *const config_unused_prefixes[] = {
	"admin.", "metricsProvider.", "ssl.", "authProvider.", "quorum.auth.", "kerberos.",
	"netty.", "multiAddress.", "fastleader.", "java.", "javax.", "jdk.", "sun.", "jmx.",
	"log4j.",
};

static const char *const config_log_level_names[] = {
	[CONFIG_LOG_ERROR] = "error",
	[CONFIG_LOG_WARN] = "warn",
	[CONFIG_LOG_INFO] = "info",
	[CONFIG_LOG_DEBUG] = "debug",
	NULL,
};

static const char *const config_metrics_provider_names[] = {
	[CONFIG_METRICS_DEFAULT] = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
	[CONFIG_METRICS_NULL] = "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
	[CONFIG_METRICS_PROMETHEUS] = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
	NULL,
};

static const char *const config_sync_method_names[] = {
	[CONFIG_SYNC_AUTO] = "auto",
	[CONFIG_SYNC_SYSCALL] = "syscall",
	[CONFIG_SYNC_LINKED] = "linked",
	[CONFIG_SYNC_DSYNC] = "dsync",
	NULL,
};

/* The value names of an enum-typed key (a NULL-terminated table), or NULL. The field
 * of such a key is an int-sized enum whose values index the table. */
const char *const *config_enum_names(enum config_type type)
{
	switch (type) {
	case CONFIG_TYPE_LOG_LEVEL: return config_log_level_names;
	case CONFIG_TYPE_SYNC_METHOD: return config_sync_method_names;
	case CONFIG_TYPE_METRICS_PROVIDER: return config_metrics_provider_names;
	default: return NULL;
	}
}

/* ---- dispatch --------------------------------------------------------------------- */

int config_key_find(const char *name)
{
	for (int i = 0; i < CONFIG_KEY_COUNT; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return i;
	return -1;
}

bool config_key_unused(const char *name)
{
	for (size_t i = 0; i < sizeof config_unused_keys / sizeof config_unused_keys[0]; i++)
		if (strcmp(config_unused_keys[i], name) == 0)
			return true;
	for (size_t i = 0; i < sizeof config_unused_prefixes / sizeof config_unused_prefixes[0]; i++) {
		size_t n = strlen(config_unused_prefixes[i]);
		if (strncmp(config_unused_prefixes[i], name, n) == 0 && name[n] != '\0')
			return true;
	}
	return false;
}

/* ---- public ----------------------------------------------------------------------- */

void config_defaults(struct rk_config *cfg)
{
	for (int i = 0; i < CONFIG_KEY_COUNT; i++)
		assert(config_keys[i].name != NULL); /* a row per id */

	memset(cfg, 0, sizeof *cfg);
	cfg->tick_time_ms = 2000;
	cfg->init_limit_ticks = 10;
	cfg->sync_limit_ticks = 5;
	strcpy(cfg->data_dir, "./ringkeeper-data");
	cfg->client_port = 2181;
	strcpy(cfg->client_port_address, "0.0.0.0");
	cfg->client_connections_per_ip_max = 60;
	cfg->snap_count = 100000;
	cfg->autopurge_snap_retain_count = 3;
	cfg->autopurge_interval_hours = 0;
	cfg->four_letter_words.word_count = 1;
	strcpy(cfg->four_letter_words.words[0], "srvr");
	cfg->global_outstanding_max = 1000;
	cfg->packet_bytes_max = 1048575;
	cfg->force_sync = true;
	cfg->log_prealloc_kb = 65536;
	cfg->extended_types_enabled = false;
	cfg->container_check_interval_ms = 60000;
	cfg->enforce_quota = false;
	cfg->reconfig_enabled = false;
	cfg->metrics_provider = CONFIG_METRICS_DEFAULT;
	strcpy(cfg->metrics_http_host, "0.0.0.0");
	cfg->metrics_http_port = 7000;
	cfg->metrics_export_process = true;
	cfg->outstanding_per_connection_max = 1000;
	cfg->worker_count = 0;
	cfg->servers_on_host = 1;
	cfg->worker_cpu_first = 0;
	cfg->metrics_port = 0;
	cfg->log_level = CONFIG_LOG_INFO;
	cfg->raft_batch_bytes_max = MIB;
	cfg->raft_batch_entries_max = 4096;
	cfg->keeper_api_nodes = true;
	cfg->raft_log_inflight_max = 1;
	cfg->raft_log_sync_method = CONFIG_SYNC_AUTO;
	cfg->raft_tick_ms = 50;
	cfg->raft_election_timeout_ms = 500;
	cfg->raft_heartbeat_interval_ms = 100;
	cfg->raft_log_entries_max = 1048576;
}


/*
 * CPUs this process may run on: its affinity mask (taskset, a container's cpuset),
 * not every CPU of the machine. A pod limited to 2 CPUs of 64 gets 2 workers.
 */
static int config_usable_cpus(void)
{
	cpu_set_t set;
	long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : (int)n;
}

/* The values derived from others when they were not set (session timeouts from tickTime,
 * dataLogDir, the worker count), and the autopurge minimum. */
static void config_derive(struct rk_config *cfg)
{
	struct config_origin *origins = cfg->origins;

	if (origins[CONFIG_KEY_MIN_SESSION_TIMEOUT].kind == CONFIG_ORIGIN_DEFAULT)
		cfg->session_timeout_ms_min = 2 * cfg->tick_time_ms;
	if (origins[CONFIG_KEY_MAX_SESSION_TIMEOUT].kind == CONFIG_ORIGIN_DEFAULT)
		cfg->session_timeout_ms_max = 20 * cfg->tick_time_ms;
	if (origins[CONFIG_KEY_DATA_LOG_DIR].kind == CONFIG_ORIGIN_DEFAULT)
		strcpy(cfg->data_log_dir, cfg->data_dir);
	cfg->worker_count_auto = cfg->worker_count == 0;
	if (cfg->worker_count == 0)
		cfg->worker_count = config_usable_cpus();

	if (cfg->autopurge_snap_retain_count < 3) {
		struct config_where where =
			config_where_of(cfg, origins[CONFIG_KEY_AUTOPURGE_SNAP_RETAIN]);
		config_warn(cfg, &where, config_keys[CONFIG_KEY_AUTOPURGE_SNAP_RETAIN].name,
			    "%d is below ZooKeeper's minimum; using 3", cfg->autopurge_snap_retain_count);
		cfg->autopurge_snap_retain_count = 3;
	}
}

/* Session timeout bounds, and the raft timers' order (tick <= heartbeat, 2 heartbeats <=
 * election timeout). */
static int config_check_timeouts(const struct rk_config *cfg, char *err, size_t err_len)
{
	const struct config_origin *origins = cfg->origins;

	if (cfg->session_timeout_ms_min > cfg->session_timeout_ms_max) {
		bool min_set = origins[CONFIG_KEY_MIN_SESSION_TIMEOUT].kind != CONFIG_ORIGIN_DEFAULT;
		enum config_key_id id = min_set ? CONFIG_KEY_MIN_SESSION_TIMEOUT : CONFIG_KEY_MAX_SESSION_TIMEOUT;
		struct config_where where = config_where_of(cfg, origins[id]);
		if (min_set)
			return config_fail(err, err_len, &where, config_keys[id].name,
					   "%d is greater than maxSessionTimeout %d",
					   cfg->session_timeout_ms_min, cfg->session_timeout_ms_max);
		return config_fail(err, err_len, &where, config_keys[id].name,
				   "%d is less than minSessionTimeout %d (2*tickTime)",
				   cfg->session_timeout_ms_max, cfg->session_timeout_ms_min);
	}

	/* The core counts in ticks: a heartbeat at least one tick, the election timeout
	 * at least two heartbeats (a follower must miss one before it campaigns). */
	if (cfg->raft_heartbeat_interval_ms < cfg->raft_tick_ms ||
	    cfg->raft_election_timeout_ms < 2 * cfg->raft_heartbeat_interval_ms) {
		bool hb_set = origins[CONFIG_KEY_RAFT_HEARTBEAT].kind != CONFIG_ORIGIN_DEFAULT;
		enum config_key_id id = hb_set ? CONFIG_KEY_RAFT_HEARTBEAT : CONFIG_KEY_RAFT_ELECTION_TIMEOUT;
		if (cfg->raft_heartbeat_interval_ms < cfg->raft_tick_ms)
			id = origins[CONFIG_KEY_RAFT_TICK].kind != CONFIG_ORIGIN_DEFAULT ? CONFIG_KEY_RAFT_TICK
											  : CONFIG_KEY_RAFT_HEARTBEAT;
		struct config_where where = config_where_of(cfg, origins[id]);
		return config_fail(err, err_len, &where, config_keys[id].name,
				   "raft.tickMs %d <= raft.heartbeatIntervalMs %d and 2 * heartbeat <= "
				   "raft.electionTimeoutMs %d do not hold",
				   cfg->raft_tick_ms, cfg->raft_heartbeat_interval_ms, cfg->raft_election_timeout_ms);
	}
	return 0;
}

/* Sorts the servers by id and refuses two with one peer address. */
static int config_servers_sort_check(struct rk_config *cfg, char *err, size_t err_len)
{
	/* Sort by id: insertion sort, at most CONFIG_SERVERS_MAX entries. */
	for (uint32_t i = 1; i < cfg->server_count; i++) {
		struct config_server s = cfg->servers[i];
		uint32_t j = i;
		for (; j > 0 && cfg->servers[j - 1].id > s.id; j--)
			cfg->servers[j] = cfg->servers[j - 1];
		cfg->servers[j] = s;
	}
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		const struct config_server *a = &cfg->servers[i];
		for (uint32_t j = i + 1; j < cfg->server_count; j++) {
			const struct config_server *b = &cfg->servers[j];
			if (strcmp(a->host, b->host) != 0 || a->peer_port != b->peer_port)
				continue;
			char key[32];
			snprintf(key, sizeof key, "server.%u", b->id);
			struct config_where where = config_where_of(cfg, b->origin);
			return config_fail(err, err_len, &where, key,
					   "peer address %s:%u is also server.%u's",
					   b->host, b->peer_port, a->id);
		}
	}
	return 0;
}

int config_finalize(struct rk_config *cfg, char *err, size_t err_len)
{
	struct config_origin *origins = cfg->origins;

	config_derive(cfg);
	int rc = config_check_timeouts(cfg, err, err_len);
	if (rc)
		return rc;

	if (cfg->raft_preferred_leader != 0 && cfg->server_count > 0) {
		bool known = false;
		for (uint32_t i = 0; i < cfg->server_count; i++)
			known |= cfg->servers[i].id == (uint32_t)cfg->raft_preferred_leader;
		if (!known) {
			struct config_where where = config_where_of(cfg, origins[CONFIG_KEY_RAFT_PREFERRED_LEADER]);
			return config_fail(err, err_len, &where, config_keys[CONFIG_KEY_RAFT_PREFERRED_LEADER].name,
					   "%d is not the id of any server.N line", cfg->raft_preferred_leader);
		}
	}

	/* /metrics: RingKeeper's metricsPort, else ZooKeeper's Prometheus provider's port. */
	enum config_key_id metrics_key = CONFIG_KEY_METRICS_PORT;
	if (cfg->metrics_port == 0 && cfg->metrics_provider == CONFIG_METRICS_PROMETHEUS) {
		cfg->metrics_port = cfg->metrics_http_port;
		metrics_key = CONFIG_KEY_METRICS_HTTP_PORT;
	}
	if (cfg->metrics_port != 0 && cfg->metrics_port == cfg->client_port) {
		bool metrics_set = origins[metrics_key].kind != CONFIG_ORIGIN_DEFAULT;
		enum config_key_id id = metrics_set ? metrics_key : CONFIG_KEY_CLIENT_PORT;
		struct config_where where = config_where_of(cfg, origins[id]);
		return config_fail(err, err_len, &where, config_keys[id].name,
				   "%u is also the %s", cfg->client_port,
				   metrics_set ? "clientPort" : config_keys[metrics_key].name);
	}

	return config_servers_sort_check(cfg, err, err_len);
}

const char *config_key_name(enum config_key_id id)
{
	assert(id < CONFIG_KEY_COUNT);
	return config_keys[id].name;
}

bool config_4lw_allowed(const struct rk_config *cfg, const char word[4])
{
	if (memcmp(word, "srvr", 4) == 0 || cfg->four_letter_words.all)
		return true;
	for (uint32_t i = 0; i < cfg->four_letter_words.word_count; i++)
		if (memcmp(cfg->four_letter_words.words[i], word, 4) == 0)
			return true;
	return false;
}

static const char *config_type_name(enum config_type type)
{
	switch (type) {
	case CONFIG_TYPE_INT: return "int";
	case CONFIG_TYPE_PORT: return "port";
	case CONFIG_TYPE_BOOL: return "bool";
	case CONFIG_TYPE_DIR: return "path";
	case CONFIG_TYPE_HOST: return "host";
	case CONFIG_TYPE_DIGEST: return "string";
	case CONFIG_TYPE_LOG_LEVEL: return "level";
	case CONFIG_TYPE_SYNC_METHOD: return "method";
	case CONFIG_TYPE_METRICS_PROVIDER: return "class";
	case CONFIG_TYPE_4LW: return "list";
	}
	return "?";
}

/*
 * Prints words separated by ", " (none before the first: *column == 2), wrapping before
 * column 80 with a two-blank indent.
 */
static void config_print_wrapped(FILE *out, const char *const *words, size_t count,
				 const char *suffix, size_t *column)
{
	for (size_t i = 0; i < count; i++) {
		size_t n = strlen(words[i]) + strlen(suffix);
		if (*column > 2) {
			fputc(',', out);
			(*column)++;
			if (*column + 1 + n > 79) { /* 79: room for the next comma */
				fputs("\n  ", out);
				*column = 2;
			} else {
				fputc(' ', out);
				(*column)++;
			}
		}
		fprintf(out, "%s%s", words[i], suffix);
		*column += n;
	}
}

void config_print_help(FILE *out)
{
	fputs("Usage: ringkeeper [--config FILE | FILE] [--key=value ...]\n"
	      "       ringkeeper --help | --version\n"
	      "\n"
	      "Runs a RingKeeper server. FILE is a ZooKeeper zoo.cfg (key=value lines, '#'\n"
	      "comments). Every key may also be given as --key=value, which overrides the file;\n"
	      "a later flag overrides an earlier one. A key may carry the \"zookeeper.\" prefix.\n"
	      "With no arguments: a single node on port 2181, data under ./ringkeeper-data.\n"
	      "\n"
	      "Keys:\n", out);
	for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *k = &config_keys[i];
		char type[32];
		snprintf(type, sizeof type, "%s%s%s", config_type_name(k->type), k->unit ? " " : "",
			 k->unit ? k->unit : "");
		fprintf(out, "  %-32s %-9s default %s\n      %s\n", k->name, type, k->default_text,
			k->help);
	}
	fputs("  server.N                         server    default (none: standalone)\n"
	      "      host:peerPort:electionPort[:role][;[clientHost:]clientPort]\n"
	      "      an ensemble member; N in 1..255, at most 16 servers, role participant\n"
	      "      (default) or observer; this server's N is read from dataDir/myid\n", out);
	fputs("\nAccepted but not used (a warning is logged):\n  ", out);
	size_t column = 2;
	config_print_wrapped(out, config_unused_keys,
			     sizeof config_unused_keys / sizeof config_unused_keys[0], "", &column);
	config_print_wrapped(out, config_unused_prefixes,
			     sizeof config_unused_prefixes / sizeof config_unused_prefixes[0], "*", &column);
	fputs("\n\nRejected: dynamicConfigFile, group.N, weight.N (not supported).\n", out);
}

void config_free(struct rk_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
}
