/*
 * config.h — the configuration of the `ringkeeper` binary: ZooKeeper's zoo.cfg keys plus
 * RingKeeper's own, from a file and from `--key=value` flags.
 *
 * Lifecycle (main, once, before any thread starts):
 *
 *     config_defaults ──► config_parse_args ──► config_finalize ──► config_read_myid
 *                         (loads --config FILE,   (derived defaults,   (dataDir/myid,
 *                          then applies flags      cross-key checks)    checked against
 *                          in order)                                    the server list)
 *
 *   config_load_file and config_set_flag are the pieces config_parse_args is made of;
 *   tests and tools may call them directly.
 *
 * Invariants
 *   1. Every value is checked when it is set; a bad key or value fails the whole call and
 *      the error names where it came from, exactly:
 *          config: <file>:<line>: <key>: <reason>
 *          config: --<key>: <reason>
 *      The caller prints the message and exits non-zero: the server never starts
 *      half-configured.
 *   2. Precedence: defaults < file < flags; among flags, a later one wins. Within a file a
 *      later line wins (as in java.util.Properties). server.N lines replace by id.
 *   3. After config_finalize every field holds its effective value: no "unset" markers
 *      remain (session timeouts, dataLogDir and threads are derived), servers are sorted
 *      by id.
 *   4. The struct owns no heap memory; it may be copied by value and read from any
 *      thread once finalized. Strings are NUL-terminated within their arrays.
 *   5. Known ZooKeeper keys RingKeeper does not use are accepted; each adds a line to
 *      warnings[] (the caller logs them). Keys whose silent omission would change the
 *      cluster's behaviour (dynamicConfigFile, group.N, weight.N) are errors.
 *
 * File format: zoo.cfg. One `key=value` per line; the key and the value are trimmed of
 * blanks; lines that are empty or whose first non-blank character is '#' are skipped.
 * A '#' after a value is part of the value (as in ZooKeeper). A key may be written with
 * the `zookeeper.` prefix of ZooKeeper's system properties (zookeeper.snapCount).
 *
 * Thread: main only until finalized; read-only afterwards.
 */
#ifndef RK_CONFIG_H
#define RK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config_keys.h"

#define CONFIG_SERVERS_MAX 16
#define CONFIG_SERVER_ID_MAX 255
#define CONFIG_PATH_BYTES_MAX 4096     /* array size of path fields, NUL included */
#define CONFIG_DIR_LENGTH_MAX 3839     /* leaves room under PATH_MAX for file names */
#define CONFIG_HOST_BYTES_MAX 256      /* array size of host fields, NUL included */
#define CONFIG_DIGEST_BYTES_MAX 256
#define CONFIG_4LW_WORDS_MAX 32
#define CONFIG_WARNINGS_MAX 32
#define CONFIG_WARNING_BYTES_MAX 256
#define CONFIG_THREADS_MAX 256
#define CONFIG_LINE_BYTES_MAX 8192     /* longest line accepted in a config file */
#define CONFIG_ERR_BYTES 512           /* a good size for the err buffers below */

/* Positive return codes of config_parse_args: not errors, the caller prints and exits 0. */
enum config_args_result {
	CONFIG_ARGS_RUN = 0,
	CONFIG_ARGS_HELP = 1,
	CONFIG_ARGS_VERSION = 2,
};

enum config_log_level {
	CONFIG_LOG_ERROR,
	CONFIG_LOG_WARN,
	CONFIG_LOG_INFO,
	CONFIG_LOG_DEBUG,
};

/* raft.logSyncMethod: how the raft thread makes a group-commit batch durable. */
enum config_sync_method {
	CONFIG_SYNC_AUTO,    /* syscall for one server, dsync in a cluster (README) */
	CONFIG_SYNC_SYSCALL, /* pwrite(2) + fdatasync(2) on the raft thread */
	CONFIG_SYNC_LINKED,  /* io_uring write + linked fdatasync */
	CONFIG_SYNC_DSYNC,   /* io_uring write with RWF_DSYNC */
};

/* metricsProvider.className: ZooKeeper's metrics providers, by their class names. */
enum config_metrics_provider {
	CONFIG_METRICS_DEFAULT,    /* DefaultMetricsProvider: mntr only, no HTTP (ZooKeeper's default) */
	CONFIG_METRICS_NULL,       /* NullMetricsProvider: the same here */
	CONFIG_METRICS_PROMETHEUS, /* PrometheusMetricsProvider: /metrics on httpHost:httpPort */
};

enum config_server_role {
	CONFIG_ROLE_PARTICIPANT, /* ZooKeeper's LearnerType ordinal 0 */
	CONFIG_ROLE_OBSERVER,    /* ordinal 1 */
};

enum config_origin_kind {
	CONFIG_ORIGIN_DEFAULT,   /* never set, or derived by config_finalize */
	CONFIG_ORIGIN_FILE,      /* line `line` of config_path */
	CONFIG_ORIGIN_FLAG,      /* a --key=value flag */
};

struct config_origin {
	enum config_origin_kind kind;
	uint32_t line; /* 1-based; CONFIG_ORIGIN_FILE only */
};

/* One server.N line: server.N=host:peerPort:electionPort[:role][;[clientHost:]clientPort] */
struct config_server {
	uint32_t id;                          /* N, 1..CONFIG_SERVER_ID_MAX */
	char host[CONFIG_HOST_BYTES_MAX];     /* IPv6 without the brackets */
	uint16_t peer_port;                   /* Raft traffic (ZooKeeper's quorum port) */
	uint16_t election_port;
	enum config_server_role role;
	char client_host[CONFIG_HOST_BYTES_MAX]; /* "" when not given */
	uint16_t client_port;                 /* 0 when not given */
	struct config_origin origin;
};

/* 4lw.commands.whitelist. srvr is always allowed (ZooKeeper's zkServer.sh needs it). */
struct config_4lw_whitelist {
	bool all;                             /* `*` was listed */
	uint32_t word_count;
	char words[CONFIG_4LW_WORDS_MAX][5];  /* four lowercase letters + NUL, no duplicates */
};

struct rk_config {
	/* ZooKeeper keys */
	int32_t tick_time_ms;                    /* tickTime */
	int32_t init_limit_ticks;                /* initLimit */
	int32_t sync_limit_ticks;                /* syncLimit */
	char data_dir[CONFIG_PATH_BYTES_MAX];    /* dataDir */
	char data_log_dir[CONFIG_PATH_BYTES_MAX];/* dataLogDir; "" until finalized = data_dir */
	uint16_t client_port;                    /* clientPort */
	char client_port_address[CONFIG_HOST_BYTES_MAX]; /* clientPortAddress */
	int32_t client_connections_per_ip_max;   /* maxClientCnxns; 0 = no limit */
	int32_t session_timeout_ms_min;          /* minSessionTimeout; 0 until finalized */
	int32_t session_timeout_ms_max;          /* maxSessionTimeout; 0 until finalized */
	int32_t snap_count;                      /* snapCount: log entries between snapshots */
	int32_t autopurge_snap_retain_count;     /* autopurge.snapRetainCount, >= 3 */
	int32_t autopurge_interval_hours;        /* autopurge.purgeInterval; 0 = off */
	struct config_4lw_whitelist four_letter_words; /* 4lw.commands.whitelist */
	int32_t global_outstanding_max;          /* globalOutstandingLimit */
	int32_t packet_bytes_max;                /* jute.maxbuffer */
	bool force_sync;                         /* forceSync */
	int32_t log_prealloc_kb;                 /* preAllocSize: log segment size in KiB */
	bool extended_types_enabled;             /* extendedTypesEnabled (TTL nodes) */
	int32_t container_check_interval_ms;     /* znode.container.checkIntervalMs */
	char super_digest[CONFIG_DIGEST_BYTES_MAX]; /* superDigest "user:base64"; "" = off */
	bool enforce_quota;                      /* enforceQuota */
	bool reconfig_enabled;                   /* reconfigEnabled (conn_reconfig.c) */
	enum config_metrics_provider metrics_provider; /* metricsProvider.className */
	char metrics_http_host[CONFIG_HOST_BYTES_MAX]; /* metricsProvider.httpHost: /metrics listens here */
	uint16_t metrics_http_port;              /* metricsProvider.httpPort */
	bool metrics_export_process;             /* metricsProvider.exportJvmInfo: process_* metrics */

	/* RingKeeper keys */
	int32_t outstanding_per_connection_max;  /* maxOutstandingPerConnection */
	int32_t worker_count;                    /* threads; 0 until finalized = online CPUs */
	bool worker_count_auto;                  /* threads was 0: finalized to the usable CPUs,
						  * then shared among the ensemble's servers on
						  * this host (config_read_myid) */
	int32_t worker_cpu_first;                /* worker i is pinned to usable CPU
						  * (first + i) mod count: servers sharing a host
						  * start apart (config_read_myid) */
	uint32_t servers_on_host;                /* server.N lines on this server's host
						  * (config_read_myid; 1 standalone) */
	uint16_t metrics_port;                   /* metricsPort; 0 = no /metrics. Finalized: the
						  * port /metrics is served on (metricsPort, else
						  * httpPort with the Prometheus provider), 0 = off */
	enum config_log_level log_level;         /* logLevel */
	int32_t raft_batch_bytes_max;            /* raft.batchBytesMax */
	int32_t raft_batch_entries_max;          /* raft.batchEntriesMax */
	bool keeper_api_nodes;                   /* keeperApiNodes */
	int32_t raft_log_inflight_max;           /* raft.logInflightMax */
	int32_t raft_tick_ms;                    /* raft.tickMs */
	int32_t raft_election_timeout_ms;        /* raft.electionTimeoutMs */
	int32_t raft_heartbeat_interval_ms;      /* raft.heartbeatIntervalMs */
	int32_t raft_preferred_leader;           /* raft.preferredLeader: a server id, 0 none */
	int32_t raft_log_entries_max;            /* raft.logEntriesMax */
	enum config_sync_method raft_log_sync_method; /* raft.logSyncMethod */

	/* server.N lines; none = standalone */
	uint32_t server_count;
	struct config_server servers[CONFIG_SERVERS_MAX];

	/* this server's id from dataDir/myid (config_read_myid); 0 = standalone, no myid */
	uint32_t server_id;

	/* bookkeeping */
	char config_path[CONFIG_PATH_BYTES_MAX]; /* the file loaded, "" if none */
	struct config_origin origins[CONFIG_KEY_COUNT];
	uint32_t warning_count;
	uint32_t warnings_dropped;               /* warnings past CONFIG_WARNINGS_MAX */
	char warnings[CONFIG_WARNINGS_MAX][CONFIG_WARNING_BYTES_MAX];
};

/* Sizes the conf four-letter word reports that the config does not know. */
struct config_conf_sizes {
	int64_t data_dir_bytes;     /* dataDirSize */
	int64_t data_log_dir_bytes; /* dataLogSize */
};

/* Fills every field with its default; derived fields stay unset until config_finalize. */
void config_defaults(struct rk_config *cfg);

/*
 * Reads argv[1..argc-1]:
 *   --help | -h             returns CONFIG_ARGS_HELP (nothing else is read)
 *   --version | -V          returns CONFIG_ARGS_VERSION
 *   --config FILE | --config=FILE | FILE
 *                           the zoo.cfg to load (the bare form is what ZooKeeper's
 *                           QuorumPeerMain takes); at most one
 *   --key=value             any key; a boolean key alone (--forceSync) means yes
 * The file is loaded first, then the flags are applied in order, wherever --config was.
 * Returns CONFIG_ARGS_RUN (0), a positive code above, or -EINVAL / -errno of the file
 * with a message in err. Does not finalize.
 */
int config_parse_args(struct rk_config *cfg, int argc, char **argv, char *err, size_t err_len);

/* Loads a zoo.cfg file over cfg. 0, -EINVAL (bad line) or -errno (cannot read). */
int config_load_file(struct rk_config *cfg, const char *path, char *err, size_t err_len);

/* Applies one --key=value; key without "--", value NULL for a bare flag. 0 or -EINVAL. */
int config_set_flag(struct rk_config *cfg, const char *key, const char *value, char *err,
		    size_t err_len);

/*
 * Derived defaults (minSessionTimeout = 2*tickTime, maxSessionTimeout = 20*tickTime,
 * dataLogDir = dataDir, threads = online CPUs, metricsPort = metricsProvider.httpPort
 * when metricsProvider.className names the Prometheus provider and metricsPort is 0)
 * and cross-key checks (min <= max session timeout, the metrics port != clientPort, no
 * two servers on one peer address). Sorts the
 * servers by id. Call once, after the last set. 0 or -EINVAL with err naming where the
 * offending key was set.
 */
int config_finalize(struct rk_config *cfg, char *err, size_t err_len);

/*
 * Reads this server's id from dataDir/myid (first line, blanks trimmed, 1..255) into
 * cfg->server_id. With no server.N lines a missing file is fine (server_id = 0,
 * standalone); with server.N lines the file is required and the id must be listed.
 * Call after config_finalize. 0, -EINVAL or -errno.
 */
int config_read_myid(struct rk_config *cfg, char *err, size_t err_len);

/*
 * The data of /zookeeper/config in a cluster, as ZooKeeper 3.8 writes it: one
 * "server.N=host:peerPort:electionPort:participant|observer[;clientHost:clientPort]"
 * line per server, then "version=0" (no newline). "" with no server.N lines.
 * Returns the length, or -1 when it does not fit in buf.
 */
int config_dynamic_text(const struct rk_config *cfg, char *buf, size_t len);

/* The server.N entry of cfg->server_id, or NULL (standalone, or not read yet). */
const struct config_server *config_server_self(const struct rk_config *cfg);

/* `--help`: usage, then every key with its type, default and a one-line description. */
void config_print_help(FILE *out);

/*
 * The `conf` four-letter word: ZooKeeper's lines in ZooKeeper's order (clientPort,
 * secureClientPort, dataDir, dataDirSize, dataLogDir, dataLogSize, tickTime,
 * maxClientCnxns, minSessionTimeout, maxSessionTimeout, clientPortListenBacklog,
 * serverId; with server.N lines also initLimit ... membership), then RingKeeper's keys
 * as key=value. sizes may be NULL: the two size lines are then left out. superDigest is
 * never printed, only whether it is set. Expects a finalized cfg.
 */
void config_write_conf(const struct rk_config *cfg, const struct config_conf_sizes *sizes,
		       FILE *out);

/* Whether the four-letter word may run: srvr always, everything with `*`. */
bool config_4lw_allowed(const struct rk_config *cfg, const char word[4]);

/* The canonical name of a key ("tickTime"). */
const char *config_key_name(enum config_key_id id);

/* Releases what cfg holds (nothing on the heap today) and clears it. */
void config_free(struct rk_config *cfg);

#endif
