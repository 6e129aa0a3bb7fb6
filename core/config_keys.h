/*
 * config_keys.h — the identifiers of the zoo.cfg keys RingKeeper understands.
 *
 * The key table in config.c is indexed by these ids (name, type, default, limits, help
 * text, field). struct rk_config records where each key was last set, indexed the same
 * way, so a cross-key error can name the line that set the key.
 *
 * Adding a key: add an id here, a row in config.c's table (config_defaults asserts that
 * every id has a row), a field in struct rk_config, a test.
 */
#ifndef RK_CONFIG_KEYS_H
#define RK_CONFIG_KEYS_H

enum config_key_id {
	/* ZooKeeper's own keys */
	CONFIG_KEY_TICK_TIME,               /* tickTime */
	CONFIG_KEY_INIT_LIMIT,              /* initLimit */
	CONFIG_KEY_SYNC_LIMIT,              /* syncLimit */
	CONFIG_KEY_DATA_DIR,                /* dataDir */
	CONFIG_KEY_DATA_LOG_DIR,            /* dataLogDir */
	CONFIG_KEY_CLIENT_PORT,             /* clientPort */
	CONFIG_KEY_CLIENT_PORT_ADDRESS,     /* clientPortAddress */
	CONFIG_KEY_MAX_CLIENT_CNXNS,        /* maxClientCnxns */
	CONFIG_KEY_MIN_SESSION_TIMEOUT,     /* minSessionTimeout */
	CONFIG_KEY_MAX_SESSION_TIMEOUT,     /* maxSessionTimeout */
	CONFIG_KEY_SNAP_COUNT,              /* snapCount */
	CONFIG_KEY_AUTOPURGE_SNAP_RETAIN,   /* autopurge.snapRetainCount */
	CONFIG_KEY_AUTOPURGE_INTERVAL,      /* autopurge.purgeInterval */
	CONFIG_KEY_4LW_WHITELIST,           /* 4lw.commands.whitelist */
	CONFIG_KEY_GLOBAL_OUTSTANDING,      /* globalOutstandingLimit */
	CONFIG_KEY_JUTE_MAXBUFFER,          /* jute.maxbuffer */
	CONFIG_KEY_FORCE_SYNC,              /* forceSync */
	CONFIG_KEY_PREALLOC_SIZE,           /* preAllocSize */
	CONFIG_KEY_EXTENDED_TYPES,          /* extendedTypesEnabled */
	CONFIG_KEY_CONTAINER_CHECK,         /* znode.container.checkIntervalMs */
	CONFIG_KEY_SUPER_DIGEST,            /* superDigest */
	CONFIG_KEY_ENFORCE_QUOTA,           /* enforceQuota */
	CONFIG_KEY_RECONFIG_ENABLED,        /* reconfigEnabled */
	CONFIG_KEY_METRICS_PROVIDER,        /* metricsProvider.className */
	CONFIG_KEY_METRICS_HTTP_HOST,       /* metricsProvider.httpHost */
	CONFIG_KEY_METRICS_HTTP_PORT,       /* metricsProvider.httpPort */
	CONFIG_KEY_METRICS_EXPORT_JVM,      /* metricsProvider.exportJvmInfo */
	/* RingKeeper's own keys */
	CONFIG_KEY_OUTSTANDING_PER_CONN,    /* maxOutstandingPerConnection */
	CONFIG_KEY_THREADS,                 /* threads */
	CONFIG_KEY_METRICS_PORT,            /* metricsPort */
	CONFIG_KEY_LOG_LEVEL,               /* logLevel */
	CONFIG_KEY_RAFT_BATCH_BYTES,        /* raft.batchBytesMax */
	CONFIG_KEY_RAFT_BATCH_ENTRIES,      /* raft.batchEntriesMax */
	CONFIG_KEY_KEEPER_API_NODES,        /* keeperApiNodes */
	CONFIG_KEY_RAFT_LOG_INFLIGHT,       /* raft.logInflightMax */
	CONFIG_KEY_RAFT_LOG_SYNC,           /* raft.logSyncMethod */
	CONFIG_KEY_RAFT_TICK,               /* raft.tickMs */
	CONFIG_KEY_RAFT_ELECTION_TIMEOUT,   /* raft.electionTimeoutMs */
	CONFIG_KEY_RAFT_HEARTBEAT,          /* raft.heartbeatIntervalMs */
	CONFIG_KEY_RAFT_PREFERRED_LEADER,   /* raft.preferredLeader */
	CONFIG_KEY_RAFT_LOG_ENTRIES,        /* raft.logEntriesMax */
	CONFIG_KEY_COUNT
};

#endif
