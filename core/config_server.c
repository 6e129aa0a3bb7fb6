/*
 * config_server.c — the cluster's members: server.N lines
 * (host:peerPort:electionPort[:role][;[clientHost:]clientPort], an IPv6 host in
 * brackets; a later line replaces by id) and this server's id from dataDir/myid,
 * checked against them.
 *
 * Thread: main, before any other thread starts.
 */
#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/config_impl.h"

/* A port 1..65535 written in s; false otherwise. */
static bool config_parse_port(const char *s, uint16_t *out)
{
	int64_t v;
	if (config_parse_int64(s, &v) != 0 || v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
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

/* "peerPort:electionPort[:role]" (rest, cut in place) into s. */
static int config_server_ports(struct config_server *s, char *rest, const struct config_where *where,
			       const char *key, const char *value, char *err, size_t err_len)
{
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
	if (!config_parse_port(fields[0], &s->peer_port))
		return config_fail(err, err_len, where, key,
				   "peer port must be between 1 and 65535, got '%s'", fields[0]);
	if (!config_parse_port(fields[1], &s->election_port))
		return config_fail(err, err_len, where, key,
				   "election port must be between 1 and 65535, got '%s'", fields[1]);
	s->role = CONFIG_ROLE_PARTICIPANT;
	if (field_count == 3) {
		if (strcasecmp(fields[2], "observer") == 0)
			s->role = CONFIG_ROLE_OBSERVER;
		else if (strcasecmp(fields[2], "participant") != 0)
			return config_fail(err, err_len, where, key,
					   "role must be participant or observer, got '%s'", fields[2]);
	}
	return 0;
}

/* The part after ';': "[clientHost:]clientPort" (cut in place) into s. */
static int config_server_client(struct config_server *s, char *client, const struct config_where *where,
				const char *key, const char *value, char *err, size_t err_len)
{
	if (strchr(client, ';'))
		return config_server_form_fail(err, err_len, where, key, value);
	char *port_text = config_trim(client);
	if (strchr(port_text, ':')) {
		char *client_host = config_split_host(port_text, &port_text);
		if (client_host == NULL || strchr(port_text, ':'))
			return config_server_form_fail(err, err_len, where, key, value);
		if (strlen(client_host) >= sizeof s->client_host)
			return config_fail(err, err_len, where, key,
					   "client host longer than %zu bytes", sizeof s->client_host - 1);
		strcpy(s->client_host, client_host);
		port_text = config_trim(port_text);
	}
	if (!config_parse_port(port_text, &s->client_port))
		return config_fail(err, err_len, where, key,
				   "client port must be between 1 and 65535, got '%s'", port_text);
	return 0;
}

int config_set_server(struct rk_config *cfg, const struct config_where *where,
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

	int rc = config_server_ports(&s, rest, where, key, value, err, err_len);
	if (rc)
		return rc;
	if (client) {
		rc = config_server_client(&s, client, where, key, value, err, err_len);
		if (rc)
			return rc;
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

static bool host_is_loopback(const char *h)
{
	return strncmp(h, "127.", 4) == 0 || strcasecmp(h, "localhost") == 0 || strcmp(h, "::1") == 0;
}

/* Two server.N hosts name one machine: the same name, or both loopback. */
static bool same_host(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0 || (host_is_loopback(a) && host_is_loopback(b));
}

/*
 * Servers of one ensemble on one host (deploy/cluster.sh, a benchmark, a test) share
 * its CPUs: with threads=0 each takes its share (at least one worker), and each pins
 * its workers from its own offset, so that three servers on 2 CPUs do not all put
 * worker 0 on CPU 0. Measured on a 2-CPU VM, 3 servers, mixed load: one worker each
 * does 1.5-1.6x the requests of two each (bench/RESULTS.md, session 14). One server
 * per host (production) is unchanged.
 */
static void config_share_host(struct rk_config *cfg)
{
	const struct config_server *self = config_server_self(cfg);
	uint32_t here = 0, rank = 0;
	for (uint32_t i = 0; self && i < cfg->server_count; i++) {
		if (!same_host(cfg->servers[i].host, self->host))
			continue;
		if (cfg->servers[i].id < self->id)
			rank++;
		here++;
	}
	cfg->servers_on_host = here ? here : 1;
	if (cfg->worker_count_auto && here > 1)
		cfg->worker_count = cfg->worker_count / (int32_t)here > 0 ? cfg->worker_count / (int32_t)here : 1;
	cfg->worker_cpu_first = (int32_t)rank * cfg->worker_count;
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
		const struct config_server *self = NULL;
		for (uint32_t i = 0; i < cfg->server_count && !self; i++)
			if (cfg->servers[i].id == (uint32_t)id)
				self = &cfg->servers[i];
		if (!self) {
			snprintf(err, err_len, "config: %s: server id %lld has no server.%lld line",
				 path, (long long)id, (long long)id);
			return -EINVAL;
		}
		if (self->role == CONFIG_ROLE_OBSERVER) {
			/* The participants ignore observer lines; this server cannot be one. */
			snprintf(err, err_len,
				 "config: server.%lld is an observer, and RingKeeper does not run observers yet: "
				 "make it a participant (drop ':observer') or do not start this server",
				 (long long)id);
			return -ENOTSUP;
		}
	}
	cfg->server_id = (uint32_t)id;
	config_share_host(cfg);
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
