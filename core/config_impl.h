/*
 * config_impl.h — the configuration's private declarations, shared by the core/config*.c
 * files only (the API is config.h):
 *
 *   config.c         the key table (one row per key: name, type, limits, help, field),
 *                    the value names, defaults, derived values and cross-key checks
 *                    (config_finalize), key lookup, --help
 *   config_parse.c   setting keys: from a zoo.cfg file, from --key=value flags; the
 *                    typed value parsers and the messages that name file, line and key
 *   config_server.c  server.N lines and dataDir/myid
 *   config_conf.c    the `conf` four-letter word's output and the dynamic config text
 *
 * Thread: main, before any other thread starts (config.h).
 */
#ifndef RK_CONFIG_IMPL_H
#define RK_CONFIG_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

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

/* Every key's row, indexed by enum config_key_id (config.c). */
extern const struct config_key config_keys[CONFIG_KEY_COUNT];

/* Where a value came from, for messages. */
struct config_where {
	enum config_origin_kind kind;
	const char *path; /* CONFIG_ORIGIN_FILE */
	uint32_t line;    /* CONFIG_ORIGIN_FILE */
};

/* config_parse.c: messages ("config: <file>:<line>: <key>: <reason>"). */
__attribute__((format(printf, 5, 6)))
int config_fail(char *err, size_t err_len, const struct config_where *where,
		const char *key, const char *fmt, ...);
__attribute__((format(printf, 4, 5)))
void config_warn(struct rk_config *cfg, const struct config_where *where,
		 const char *key, const char *fmt, ...);
struct config_where config_where_of(const struct rk_config *cfg, struct config_origin origin);
struct config_origin config_origin_of(const struct config_where *where);

/* config_parse.c: small parsers. */
char *config_trim(char *s);
bool config_has_blank(const char *s);
int config_parse_int64(const char *s, int64_t *out);

/* config.c */
const char *const *config_enum_names(enum config_type type);
int config_key_find(const char *name);
bool config_key_unused(const char *name);

/* config_server.c */
int config_set_server(struct rk_config *cfg, const struct config_where *where,
		      const char *key, const char *id_text, const char *value,
		      char *err, size_t err_len);

#endif
