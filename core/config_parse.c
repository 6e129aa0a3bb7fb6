/*
 * config_parse.c — setting keys: a zoo.cfg file line by line, --key=value flags (the
 * file first, wherever it is named, so every flag overrides it), the dispatch from a
 * key's name to its row of config_keys[] (or server.N, or the rejected and the
 * accepted-but-unused keys), the typed value parsers, and the messages, built in one
 * place (config_fail / config_warn) so their format stays exact:
 * "config: <file>:<line>: <key>: <reason>" / "config: --<key>: <reason>".
 *
 * Thread: main, before any other thread starts.
 */
#include "core/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_impl.h"

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
int config_fail(char *err, size_t err_len, const struct config_where *where,
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
void config_warn(struct rk_config *cfg, const struct config_where *where,
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

struct config_where config_where_of(const struct rk_config *cfg, struct config_origin origin)
{
	return (struct config_where){ origin.kind, cfg->config_path, origin.line };
}

struct config_origin config_origin_of(const struct config_where *where)
{
	return (struct config_origin){ where->kind, where->line };
}

/* ---- small parsers ---------------------------------------------------------------- */

char *config_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

bool config_has_blank(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s))
			return true;
	return false;
}

/* A whole decimal integer, optional sign. -ERANGE when it does not fit int64_t. */
int config_parse_int64(const char *s, int64_t *out)
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

/* An INT or PORT key: a whole number within the row's [min, max]. */
static int config_set_int(const struct config_key *k, void *field, const struct config_where *where,
			  const char *key, const char *value, char *err, size_t err_len)
{
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

/* An enum-typed key: one of its value names, any case (config_enum_names). */
static int config_set_enum(const struct config_key *k, void *field, const struct config_where *where,
			   const char *key, const char *value, char *err, size_t err_len)
{
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
	case CONFIG_TYPE_PORT:
		return config_set_int(k, field, where, key, value, err, err_len);
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
	case CONFIG_TYPE_METRICS_PROVIDER:
		return config_set_enum(k, field, where, key, value, err, err_len);
	case CONFIG_TYPE_4LW:
		return config_set_4lw(field, where, key, value, err, err_len);
	}
	assert(!"unreachable");
	return -EINVAL;
}

/* ---- dispatch --------------------------------------------------------------------- */

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
