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
 * Thread: main, before any other thread starts. No allocation survives a call.
 */
#include "core/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MIB (1024 * 1024)

enum config_type {
	CONFIG_TYPE_INT,       /* int32_t field, value within [min, max] */
	CONFIG_TYPE_PORT,      /* uint16_t field, value within [min, max] */
	CONFIG_TYPE_BOOL,      /* bool field: yes, no, true, false (any case) */
	CONFIG_TYPE_DIR,       /* char[] field, 1..CONFIG_DIR_LENGTH_MAX bytes */
	CONFIG_TYPE_HOST,      /* char[] field, a host name or address without blanks */
	CONFIG_TYPE_DIGEST,    /* char[] field, "user:base64" or empty */
	CONFIG_TYPE_LOG_LEVEL, /* enum config_log_level field */
	CONFIG_TYPE_SYNC_METHOD, /* enum config_sync_method field */
	CONFIG_TYPE_METRICS_PROVIDER, /* enum config_metrics_provider field (a Java class name) */
	CONFIG_TYPE_4LW,       /* struct config_4lw_whitelist field */
};

struct config_key {
	const char *name;
	enum config_type type;
	const char *unit;         /* for --help, may be NULL */
	const char *default_text; /* for --help */
	const char *help;         /* one line for --help */
	int64_t min;              /* INT and PORT */
	int64_t max;
	size_t offset;            /* of the field in struct rk_config */
	size_t size;              /* of the field */
};

#define FIELD(f) .offset = offsetof(struct rk_config, f), .size = sizeof(((struct rk_config *)0)->f)

static const struct config_key config_keys[CONFIG_KEY_COUNT] = {
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
		"worker threads, one pinned per core; 0 = one per CPU this process may use",
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
	[CONFIG_KEY_RAFT_LOG_SYNC] = { "raft.logSyncMethod", CONFIG_TYPE_SYNC_METHOD, NULL, "syscall",
		"log durability: syscall, linked or dsync (see README)",
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
	"standaloneEnabled", "reconfigEnabled", "quorumListenOnAllIPs", "cnxTimeout",
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

/* Where a value came from, for messages. */
struct config_where {
	enum config_origin_kind kind;
	const char *path; /* CONFIG_ORIGIN_FILE */
	uint32_t line;    /* CONFIG_ORIGIN_FILE */
};

static size_t config_where_prefix(char *buf, size_t len, const struct config_where *where,
				  const char *key)
{
	int n = 0;
	switch (where->kind) {
	case CONFIG_ORIGIN_FILE:
		n = snprintf(buf, len, "config: %s:%u: %s: ", where->path, where->line, key);
		break;
	case CONFIG_ORIGIN_FLAG:
		n = snprintf(buf, len, "config: --%s: ", key);
		break;
	case CONFIG_ORIGIN_DEFAULT:
		n = snprintf(buf, len, "config: %s: ", key);
		break;
	}
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : (len ? len - 1 : 0);
}

__attribute__((format(printf, 5, 6)))
static int config_fail(char *err, size_t err_len, const struct config_where *where,
		       const char *key, const char *fmt, ...)
{
	if (err_len == 0)
		return -EINVAL;
	size_t used = config_where_prefix(err, err_len, where, key);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + used, err_len - used, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

__attribute__((format(printf, 4, 5)))
static void config_warn(struct rk_config *cfg, const struct config_where *where,
			const char *key, const char *fmt, ...)
{
	if (cfg->warning_count == CONFIG_WARNINGS_MAX) {
		cfg->warnings_dropped++;
		return;
	}
	char *buf = cfg->warnings[cfg->warning_count++];
	size_t used = config_where_prefix(buf, CONFIG_WARNING_BYTES_MAX, where, key);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, CONFIG_WARNING_BYTES_MAX - used, fmt, ap);
	va_end(ap);
}

static struct config_where config_where_of(const struct rk_config *cfg, struct config_origin origin)
{
	return (struct config_where){ origin.kind, cfg->config_path, origin.line };
}

static struct config_origin config_origin_of(const struct config_where *where)
{
	return (struct config_origin){ where->kind, where->line };
}

int config_dynamic_text(const struct rk_config *cfg, char *buf, size_t len)
{
	size_t used = 0;
	if (len)
		buf[0] = 0;
	for (uint32_t i = 0; i < cfg->server_count; i++) {
		const struct config_server *sv = &cfg->servers[i];
		bool v6 = strchr(sv->host, ':') != NULL;
		int n = snprintf(buf + used, len - used, "server.%u=%s%s%s:%u:%u:%s", sv->id, v6 ? "[" : "", sv->host,
				 v6 ? "]" : "", sv->peer_port, sv->election_port,
				 sv->role == CONFIG_ROLE_OBSERVER ? "observer" : "participant");
		if (n < 0 || (size_t)n >= len - used)
			return -1;
		used += (size_t)n;
		if (sv->client_port) {
			const char *ch = sv->client_host[0] ? sv->client_host : "0.0.0.0";
			bool cv6 = strchr(ch, ':') != NULL;
			n = snprintf(buf + used, len - used, ";%s%s%s:%u", cv6 ? "[" : "", ch, cv6 ? "]" : "",
				     sv->client_port);
			if (n < 0 || (size_t)n >= len - used)
				return -1;
			used += (size_t)n;
		}
		if (used + 1 >= len)
			return -1;
		buf[used++] = '\n';
		buf[used] = 0;
	}
	if (cfg->server_count) {
		int n = snprintf(buf + used, len - used, "version=0");
		if (n < 0 || (size_t)n >= len - used)
			return -1;
		used += (size_t)n;
	}
	return (int)used;
}

/* ---- small parsers ---------------------------------------------------------------- */

static char *config_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static bool config_has_blank(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s))
			return true;
	return false;
}

/* A whole decimal integer, optional sign. -ERANGE when it does not fit int64_t. */
static int config_parse_int64(const char *s, int64_t *out)
{
	if (*s == '\0' || isspace((unsigned char)*s))
		return -EINVAL;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

/* A port 1..65535 written in s; false otherwise. */
static bool config_parse_port(const char *s, uint16_t *out)
{
	int64_t v;
	if (config_parse_int64(s, &v) != 0 || v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static int config_parse_bool(const char *s, bool *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

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
	[CONFIG_SYNC_SYSCALL] = "syscall",
	[CONFIG_SYNC_LINKED] = "linked",
	[CONFIG_SYNC_DSYNC] = "dsync",
	NULL,
};

/* The value names of an enum-typed key (a NULL-terminated table), or NULL. The field
 * of such a key is an int-sized enum whose values index the table. */
static const char *const *config_enum_names(enum config_type type)
{
	switch (type) {
	case CONFIG_TYPE_LOG_LEVEL: return config_log_level_names;
	case CONFIG_TYPE_SYNC_METHOD: return config_sync_method_names;
	case CONFIG_TYPE_METRICS_PROVIDER: return config_metrics_provider_names;
	default: return NULL;
	}
}

static bool config_is_base64(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool pad = c == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '=');
		if (!isalnum(c) && c != '+' && c != '/' && !pad)
			return false;
	}
	return true;
}

/* ---- typed keys ------------------------------------------------------------------- */

static int config_set_4lw(struct config_4lw_whitelist *out, const struct config_where *where,
			  const char *key, const char *value, char *err, size_t err_len)
{
	struct config_4lw_whitelist list = { 0 };
	const char *p = value;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *word = p;
		while (n > 0 && isspace((unsigned char)*word)) {
			word++;
			n--;
		}
		while (n > 0 && isspace((unsigned char)word[n - 1]))
			n--;

		if (n == 1 && word[0] == '*') {
			list.all = true;
		} else if (n > 0) {
			bool ok = n == 4;
			for (size_t i = 0; ok && i < 4; i++)
				ok = word[i] >= 'a' && word[i] <= 'z';
			if (!ok)
				return config_fail(err, err_len, where, key,
						   "'%.*s' is not a four-letter word (four lowercase letters) or *",
						   (int)(n > 64 ? 64 : n), word);
			bool seen = false;
			for (uint32_t i = 0; i < list.word_count && !seen; i++)
				seen = memcmp(list.words[i], word, 4) == 0;
			if (!seen) {
				if (list.word_count == CONFIG_4LW_WORDS_MAX)
					return config_fail(err, err_len, where, key,
							   "more than %d words", CONFIG_4LW_WORDS_MAX);
				memcpy(list.words[list.word_count], word, 4);
				list.words[list.word_count][4] = '\0';
				list.word_count++;
			}
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = list;
	return 0;
}

static int config_set_key(struct rk_config *cfg, enum config_key_id id,
			  const struct config_where *where, const char *key, const char *value,
			  char *err, size_t err_len)
{
	const struct config_key *k = &config_keys[id];
	void *field = (char *)cfg + k->offset;

	if (value == NULL) {
		if (k->type != CONFIG_TYPE_BOOL)
			return config_fail(err, err_len, where, key, "needs a value (--%s=VALUE)", key);
		value = "yes";
	}
	bool may_be_empty = k->type == CONFIG_TYPE_DIGEST || k->type == CONFIG_TYPE_4LW;
	if (*value == '\0' && !may_be_empty)
		return config_fail(err, err_len, where, key, "empty value");

	switch (k->type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_PORT: {
		int64_t v = 0;
		int rc = config_parse_int64(value, &v);
		if (rc == -EINVAL)
			return config_fail(err, err_len, where, key, "not an integer: '%s'", value);
		if (rc == -ERANGE || v < k->min || v > k->max) {
			if (k->max == INT32_MAX)
				return config_fail(err, err_len, where, key, "must be at least %lld, got %s",
						   (long long)k->min, value);
			return config_fail(err, err_len, where, key, "must be between %lld and %lld, got %s",
					   (long long)k->min, (long long)k->max, value);
		}
		if (k->type == CONFIG_TYPE_INT) {
			assert(k->size == sizeof(int32_t));
			*(int32_t *)field = (int32_t)v;
		} else {
			assert(k->size == sizeof(uint16_t));
			*(uint16_t *)field = (uint16_t)v;
		}
		return 0;
	}
	case CONFIG_TYPE_BOOL: {
		bool b;
		if (config_parse_bool(value, &b) != 0)
			return config_fail(err, err_len, where, key,
					   "expected yes, no, true or false, got '%s'", value);
		assert(k->size == sizeof(bool));
		*(bool *)field = b;
		return 0;
	}
	case CONFIG_TYPE_DIR:
		if (strlen(value) > CONFIG_DIR_LENGTH_MAX)
			return config_fail(err, err_len, where, key, "longer than %d bytes",
					   CONFIG_DIR_LENGTH_MAX);
		assert(k->size > CONFIG_DIR_LENGTH_MAX);
		strcpy(field, value);
		return 0;
	case CONFIG_TYPE_HOST:
		if (strlen(value) >= k->size)
			return config_fail(err, err_len, where, key, "longer than %zu bytes", k->size - 1);
		if (config_has_blank(value))
			return config_fail(err, err_len, where, key,
					   "not a host name or address: '%s'", value);
		strcpy(field, value);
		return 0;
	case CONFIG_TYPE_DIGEST: {
		const char *colon = strchr(value, ':');
		if (*value != '\0' &&
		    (strlen(value) >= k->size || colon == NULL || colon == value ||
		     config_has_blank(value) || !config_is_base64(colon + 1)))
			return config_fail(err, err_len, where, key,
					   "expected user:base64digest (as DigestAuthenticationProvider prints it)");
		strcpy(field, value);
		return 0;
	}
	case CONFIG_TYPE_LOG_LEVEL:
	case CONFIG_TYPE_SYNC_METHOD:
	case CONFIG_TYPE_METRICS_PROVIDER: {
		const char *const *names = config_enum_names(k->type);
		char expected[256] = "";
		for (int i = 0; names[i]; i++) {
			if (strcasecmp(value, names[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
			size_t n = strlen(expected);
			snprintf(expected + n, sizeof expected - n, "%s%s", i ? (names[i + 1] ? ", " : " or ") : "",
				 names[i]);
		}
		return config_fail(err, err_len, where, key, "expected %s, got '%s'", expected, value);
	}
	case CONFIG_TYPE_4LW:
		return config_set_4lw(field, where, key, value, err, err_len);
	}
	assert(!"unreachable");
	return -EINVAL;
}

/* ---- server.N --------------------------------------------------------------------- */

static int config_server_form_fail(char *err, size_t err_len, const struct config_where *where,
				   const char *key, const char *value)
{
	return config_fail(err, err_len, where, key,
			   "expected host:peerPort:electionPort[:role][;[clientHost:]clientPort], got '%s'",
			   value);
}

/* Splits "host:rest" or "[v6]:rest"; host is trimmed. NULL host on a malformed input. */
static char *config_split_host(char *s, char **rest)
{
	s = config_trim(s);
	char *sep;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (close == NULL)
			return NULL;
		*close = '\0';
		sep = close + 1;
		s++;
		if (*sep != ':')
			return NULL;
	} else {
		sep = strchr(s, ':');
		if (sep == NULL)
			return NULL;
	}
	*sep = '\0';
	*rest = sep + 1;
	s = config_trim(s);
	return *s && !config_has_blank(s) ? s : NULL;
}

static int config_set_server(struct rk_config *cfg, const struct config_where *where,
			     const char *key, const char *id_text, const char *value,
			     char *err, size_t err_len)
{
	int64_t id;
	if (config_parse_int64(id_text, &id) != 0 || id < 1 || id > CONFIG_SERVER_ID_MAX)
		return config_fail(err, err_len, where, key,
				   "server id must be between 1 and %d, got '%s'", CONFIG_SERVER_ID_MAX,
				   id_text);
	if (value == NULL)
		return config_fail(err, err_len, where, key, "needs a value (--%s=VALUE)", key);

	char buf[CONFIG_LINE_BYTES_MAX];
	if (strlen(value) >= sizeof buf)
		return config_fail(err, err_len, where, key, "longer than %zu bytes", sizeof buf - 1);
	strcpy(buf, value);

	struct config_server s = { .id = (uint32_t)id, .origin = config_origin_of(where) };
	char *client = strchr(buf, ';');
	if (client)
		*client++ = '\0';
	if (strchr(buf, '|'))
		return config_fail(err, err_len, where, key,
				   "several addresses for one server ('|') are not supported");

	char *rest;
	char *host = config_split_host(buf, &rest);
	if (host == NULL)
		return config_server_form_fail(err, err_len, where, key, value);
	if (strlen(host) >= sizeof s.host)
		return config_fail(err, err_len, where, key, "host longer than %zu bytes",
				   sizeof s.host - 1);
	strcpy(s.host, host);

	char *fields[3] = { 0 };
	size_t field_count = 0;
	for (char *p = rest;; ) {
		if (field_count == 3)
			return config_server_form_fail(err, err_len, where, key, value);
		char *colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		fields[field_count++] = config_trim(p);
		if (!colon)
			break;
		p = colon + 1;
	}
	if (field_count < 2)
		return config_server_form_fail(err, err_len, where, key, value);
	if (!config_parse_port(fields[0], &s.peer_port))
		return config_fail(err, err_len, where, key,
				   "peer port must be between 1 and 65535, got '%s'", fields[0]);
	if (!config_parse_port(fields[1], &s.election_port))
		return config_fail(err, err_len, where, key,
				   "election port must be between 1 and 65535, got '%s'", fields[1]);
	s.role = CONFIG_ROLE_PARTICIPANT;
	if (field_count == 3) {
		if (strcasecmp(fields[2], "observer") == 0)
			s.role = CONFIG_ROLE_OBSERVER;
		else if (strcasecmp(fields[2], "participant") != 0)
			return config_fail(err, err_len, where, key,
					   "role must be participant or observer, got '%s'", fields[2]);
	}

	if (client) {
		if (strchr(client, ';'))
			return config_server_form_fail(err, err_len, where, key, value);
		char *port_text = config_trim(client);
		if (strchr(port_text, ':')) {
			char *client_host = config_split_host(port_text, &port_text);
			if (client_host == NULL || strchr(port_text, ':'))
				return config_server_form_fail(err, err_len, where, key, value);
			if (strlen(client_host) >= sizeof s.client_host)
				return config_fail(err, err_len, where, key,
						   "client host longer than %zu bytes", sizeof s.client_host - 1);
			strcpy(s.client_host, client_host);
			port_text = config_trim(port_text);
		}
		if (!config_parse_port(port_text, &s.client_port))
			return config_fail(err, err_len, where, key,
					   "client port must be between 1 and 65535, got '%s'", port_text);
	}

	for (uint32_t i = 0; i < cfg->server_count; i++) {
		if (cfg->servers[i].id == s.id) {
			cfg->servers[i] = s;
			return 0;
		}
	}
	if (cfg->server_count == CONFIG_SERVERS_MAX)
		return config_fail(err, err_len, where, key, "more than %d servers",
				   CONFIG_SERVERS_MAX);
	cfg->servers[cfg->server_count++] = s;
	return 0;
}

/* ---- dispatch --------------------------------------------------------------------- */

static int config_key_find(const char *name)
{
	for (int i = 0; i < CONFIG_KEY_COUNT; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return i;
	return -1;
}

static bool config_key_unused(const char *name)
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

/* key is as the user wrote it (the message repeats it); value NULL for a bare flag. */
static int config_set(struct rk_config *cfg, const struct config_where *where, const char *key,
		      const char *value, char *err, size_t err_len)
{
	const char *name = key;
	if (strncmp(name, "zookeeper.", 10) == 0 && name[10] != '\0')
		name += 10;

	if (strncmp(name, "server.", 7) == 0)
		return config_set_server(cfg, where, key, name + 7, value, err, err_len);

	int id = config_key_find(name);
	if (id >= 0) {
		int rc = config_set_key(cfg, (enum config_key_id)id, where, key, value, err, err_len);
		if (rc == 0)
			cfg->origins[id] = config_origin_of(where);
		return rc;
	}
	if (strcmp(name, "dynamicConfigFile") == 0)
		return config_fail(err, err_len, where, key,
				   "not supported: list the server.N lines in this file");
	if ((strncmp(name, "group.", 6) == 0 && name[6]) || (strncmp(name, "weight.", 7) == 0 && name[7]))
		return config_fail(err, err_len, where, key,
				   "hierarchical quorums (group.N, weight.N) are not supported");
	if (config_key_unused(name)) {
		config_warn(cfg, where, key, "accepted but not used by RingKeeper");
		return 0;
	}
	return config_fail(err, err_len, where, key, "unknown key");
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
	cfg->metrics_provider = CONFIG_METRICS_DEFAULT;
	strcpy(cfg->metrics_http_host, "0.0.0.0");
	cfg->metrics_http_port = 7000;
	cfg->metrics_export_process = true;
	cfg->outstanding_per_connection_max = 1000;
	cfg->worker_count = 0;
	cfg->metrics_port = 0;
	cfg->log_level = CONFIG_LOG_INFO;
	cfg->raft_batch_bytes_max = MIB;
	cfg->raft_batch_entries_max = 4096;
	cfg->keeper_api_nodes = true;
	cfg->raft_log_inflight_max = 1;
	cfg->raft_log_sync_method = CONFIG_SYNC_SYSCALL;
	cfg->raft_tick_ms = 50;
	cfg->raft_election_timeout_ms = 500;
	cfg->raft_heartbeat_interval_ms = 100;
	cfg->raft_log_entries_max = 1048576;
}

int config_set_flag(struct rk_config *cfg, const char *key, const char *value, char *err,
		    size_t err_len)
{
	struct config_where where = { CONFIG_ORIGIN_FLAG, NULL, 0 };
	return config_set(cfg, &where, key, value, err, err_len);
}

static int config_load_line(struct rk_config *cfg, const char *path, uint32_t line_number,
			    char *line, size_t line_len, char *err, size_t err_len)
{
	if (line_len > CONFIG_LINE_BYTES_MAX) {
		snprintf(err, err_len, "config: %s:%u: line longer than %d bytes", path, line_number,
			 CONFIG_LINE_BYTES_MAX);
		return -EINVAL;
	}
	if (strlen(line) != line_len) {
		snprintf(err, err_len, "config: %s:%u: NUL byte in line", path, line_number);
		return -EINVAL;
	}
	char *s = config_trim(line);
	if (*s == '\0' || *s == '#')
		return 0;
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		snprintf(err, err_len, "config: %s:%u: %s: expected key=value", path, line_number, s);
		return -EINVAL;
	}
	*eq = '\0';
	char *key = config_trim(s);
	char *value = config_trim(eq + 1);
	if (*key == '\0') {
		snprintf(err, err_len, "config: %s:%u: no key before '='", path, line_number);
		return -EINVAL;
	}
	struct config_where where = { CONFIG_ORIGIN_FILE, path, line_number };
	return config_set(cfg, &where, key, value, err, err_len);
}

int config_load_file(struct rk_config *cfg, const char *path, char *err, size_t err_len)
{
	if (strlen(path) >= sizeof cfg->config_path) {
		snprintf(err, err_len, "config: file name longer than %zu bytes",
			 sizeof cfg->config_path - 1);
		return -ENAMETOOLONG;
	}
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		int e = errno;
		snprintf(err, err_len, "config: %s: %s", path, strerror(e));
		return -e;
	}
	strcpy(cfg->config_path, path);

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint32_t line_number = 0;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0)
		rc = config_load_line(cfg, cfg->config_path, ++line_number, line, (size_t)n, err, err_len);
	if (rc == 0 && ferror(f)) {
		snprintf(err, err_len, "config: %s: read error", path);
		rc = -EIO;
	}
	free(line);
	fclose(f);
	return rc;
}

int config_parse_args(struct rk_config *cfg, int argc, char **argv, char *err, size_t err_len)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return CONFIG_ARGS_HELP;
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0)
			return CONFIG_ARGS_VERSION;
	}

	/* The file first, wherever it is named, so that every flag overrides it. */
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *path;
		if (strcmp(argv[i], "--config") == 0) {
			path = i + 1 < argc ? argv[++i] : "";
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		} else if (argv[i][0] != '-') {
			path = argv[i];
		} else {
			continue;
		}
		if (*path == '\0') {
			snprintf(err, err_len, "config: --config: needs a file name");
			return -EINVAL;
		}
		if (file) {
			snprintf(err, err_len, "config: %s: a second config file (the first is %s)",
				 path, file);
			return -EINVAL;
		}
		file = path;
	}
	if (file) {
		int rc = config_load_file(cfg, file, err, err_len);
		if (rc)
			return rc;
	}

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(arg, "--config=", 9) == 0 || arg[0] != '-')
			continue;
		if (arg[1] != '-' || arg[2] == '\0' || arg[2] == '=') {
			snprintf(err, err_len, "config: %s: unknown option (keys are given as --key=value)",
				 arg);
			return -EINVAL;
		}
		char key[256];
		const char *eq = strchr(arg + 2, '=');
		size_t key_len = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
		if (key_len >= sizeof key) {
			snprintf(err, err_len, "config: --%.64s...: unknown key", arg + 2);
			return -EINVAL;
		}
		memcpy(key, arg + 2, key_len);
		key[key_len] = '\0';
		int rc = config_set_flag(cfg, key, eq ? eq + 1 : NULL, err, err_len);
		if (rc)
			return rc;
	}
	return CONFIG_ARGS_RUN;
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

int config_finalize(struct rk_config *cfg, char *err, size_t err_len)
{
	struct config_origin *origins = cfg->origins;

	if (origins[CONFIG_KEY_MIN_SESSION_TIMEOUT].kind == CONFIG_ORIGIN_DEFAULT)
		cfg->session_timeout_ms_min = 2 * cfg->tick_time_ms;
	if (origins[CONFIG_KEY_MAX_SESSION_TIMEOUT].kind == CONFIG_ORIGIN_DEFAULT)
		cfg->session_timeout_ms_max = 20 * cfg->tick_time_ms;
	if (origins[CONFIG_KEY_DATA_LOG_DIR].kind == CONFIG_ORIGIN_DEFAULT)
		strcpy(cfg->data_log_dir, cfg->data_dir);
	if (cfg->worker_count == 0)
		cfg->worker_count = config_usable_cpus();

	if (cfg->autopurge_snap_retain_count < 3) {
		struct config_where where =
			config_where_of(cfg, origins[CONFIG_KEY_AUTOPURGE_SNAP_RETAIN]);
		config_warn(cfg, &where, config_keys[CONFIG_KEY_AUTOPURGE_SNAP_RETAIN].name,
			    "%d is below ZooKeeper's minimum; using 3", cfg->autopurge_snap_retain_count);
		cfg->autopurge_snap_retain_count = 3;
	}

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

int config_read_myid(struct rk_config *cfg, char *err, size_t err_len)
{
	char path[CONFIG_PATH_BYTES_MAX + 8];
	snprintf(path, sizeof path, "%s/myid", cfg->data_dir);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		int e = errno;
		if (e == ENOENT && cfg->server_count == 0) {
			cfg->server_id = 0;
			return 0;
		}
		snprintf(err, err_len, "config: %s: %s%s", path, strerror(e),
			 e == ENOENT ? " (needed with server.N lines)" : "");
		return -e;
	}
	char buf[64];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	bool failed = ferror(f) != 0;
	fclose(f);
	if (failed) {
		snprintf(err, err_len, "config: %s: read error", path);
		return -EIO;
	}
	buf[n] = '\0';
	char *newline = strchr(buf, '\n');
	if (newline)
		*newline = '\0';
	char *text = config_trim(buf);
	int64_t id;
	if (config_parse_int64(text, &id) != 0 || id < 1 || id > CONFIG_SERVER_ID_MAX) {
		snprintf(err, err_len, "config: %s: expected a server id between 1 and %d, got '%s'",
			 path, CONFIG_SERVER_ID_MAX, text);
		return -EINVAL;
	}
	if (cfg->server_count > 0) {
		bool listed = false;
		for (uint32_t i = 0; i < cfg->server_count && !listed; i++)
			listed = cfg->servers[i].id == (uint32_t)id;
		if (!listed) {
			snprintf(err, err_len, "config: %s: server id %lld has no server.%lld line",
				 path, (long long)id, (long long)id);
			return -EINVAL;
		}
	}
	cfg->server_id = (uint32_t)id;
	return 0;
}

const struct config_server *config_server_self(const struct rk_config *cfg)
{
	if (cfg->server_id == 0)
		return NULL;
	for (uint32_t i = 0; i < cfg->server_count; i++)
		if (cfg->servers[i].id == cfg->server_id)
			return &cfg->servers[i];
	return NULL;
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

static void config_write_host(FILE *out, const char *host)
{
	if (strchr(host, ':'))
		fprintf(out, "[%s]", host);
	else
		fputs(host, out);
}

static void config_write_value(const struct rk_config *cfg, enum config_key_id id, FILE *out)
{
	const struct config_key *k = &config_keys[id];
	const void *field = (const char *)cfg + k->offset;
	fprintf(out, "%s=", k->name);
	switch (k->type) {
	case CONFIG_TYPE_INT:
		fprintf(out, "%d\n", *(const int32_t *)field);
		return;
	case CONFIG_TYPE_PORT:
		fprintf(out, "%u\n", *(const uint16_t *)field);
		return;
	case CONFIG_TYPE_BOOL:
		fputs(*(const bool *)field ? "true\n" : "false\n", out);
		return;
	case CONFIG_TYPE_DIR:
	case CONFIG_TYPE_HOST:
		fprintf(out, "%s\n", (const char *)field);
		return;
	case CONFIG_TYPE_DIGEST:
		fputs(*(const char *)field ? "(set)\n" : "\n", out);
		return;
	case CONFIG_TYPE_LOG_LEVEL:
	case CONFIG_TYPE_SYNC_METHOD:
	case CONFIG_TYPE_METRICS_PROVIDER:
		fprintf(out, "%s\n", config_enum_names(k->type)[*(const int *)field]);
		return;
	case CONFIG_TYPE_4LW: {
		const struct config_4lw_whitelist *list = field;
		if (list->all) {
			fputs("*\n", out);
			return;
		}
		for (uint32_t i = 0; i < list->word_count; i++)
			fprintf(out, "%s%s", i ? "," : "", list->words[i]);
		fputc('\n', out);
		return;
	}
	}
}

void config_write_conf(const struct rk_config *cfg, const struct config_conf_sizes *sizes,
		       FILE *out)
{
	bool written[CONFIG_KEY_COUNT] = { 0 };

	/* ZooKeeperServer.dumpConf */
	fprintf(out, "clientPort=%u\n", cfg->client_port);
	fputs("secureClientPort=-1\n", out);
	fprintf(out, "dataDir=%s\n", cfg->data_dir);
	if (sizes)
		fprintf(out, "dataDirSize=%lld\n", (long long)sizes->data_dir_bytes);
	fprintf(out, "dataLogDir=%s\n", cfg->data_log_dir);
	if (sizes)
		fprintf(out, "dataLogSize=%lld\n", (long long)sizes->data_log_dir_bytes);
	fprintf(out, "tickTime=%d\n", cfg->tick_time_ms);
	fprintf(out, "maxClientCnxns=%d\n", cfg->client_connections_per_ip_max);
	fprintf(out, "minSessionTimeout=%d\n", cfg->session_timeout_ms_min);
	fprintf(out, "maxSessionTimeout=%d\n", cfg->session_timeout_ms_max);
	fputs("clientPortListenBacklog=-1\n", out);
	fprintf(out, "serverId=%u\n", cfg->server_id);
	written[CONFIG_KEY_CLIENT_PORT] = written[CONFIG_KEY_DATA_DIR] = true;
	written[CONFIG_KEY_DATA_LOG_DIR] = written[CONFIG_KEY_TICK_TIME] = true;
	written[CONFIG_KEY_MAX_CLIENT_CNXNS] = true;
	written[CONFIG_KEY_MIN_SESSION_TIMEOUT] = written[CONFIG_KEY_MAX_SESSION_TIMEOUT] = true;

	/* QuorumZooKeeperServer.dumpConf */
	if (cfg->server_count > 0) {
		const struct config_server *self = config_server_self(cfg);
		fprintf(out, "initLimit=%d\n", cfg->init_limit_ticks);
		fprintf(out, "syncLimit=%d\n", cfg->sync_limit_ticks);
		fputs("electionAlg=3\n", out);
		fprintf(out, "electionPort=%d\n", self ? self->election_port : -1);
		fprintf(out, "quorumPort=%d\n", self ? self->peer_port : -1);
		fprintf(out, "peerType=%d\n", self ? (int)self->role : 0);
		fputs("membership: \n", out);
		for (uint32_t i = 0; i < cfg->server_count; i++) {
			const struct config_server *s = &cfg->servers[i];
			fprintf(out, "server.%u=", s->id);
			config_write_host(out, s->host);
			fprintf(out, ":%u:%u:%s", s->peer_port, s->election_port,
				s->role == CONFIG_ROLE_OBSERVER ? "observer" : "participant");
			if (s->client_port) {
				fputc(';', out);
				config_write_host(out, s->client_host[0] ? s->client_host : "0.0.0.0");
				fprintf(out, ":%u", s->client_port);
			}
			fputc('\n', out);
		}
		fputs("version=0\n", out);
		written[CONFIG_KEY_INIT_LIMIT] = written[CONFIG_KEY_SYNC_LIMIT] = true;
	}

	/* Everything else, in table order. */
	for (int i = 0; i < CONFIG_KEY_COUNT; i++)
		if (!written[i])
			config_write_value(cfg, (enum config_key_id)i, out);
}

void config_free(struct rk_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
}
