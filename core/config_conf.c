/*
 * config_conf.c — the configuration as text: the `conf` four-letter word (ZooKeeper's
 * dumpConf order first, then every other key in table order) and the dynamic config
 * text of the server list (server.N=...; version=0).
 *
 * Thread: any, once the configuration is finalized (it is read-only then).
 */
#include "core/config.h"

#include <stdio.h>
#include <string.h>

#include "core/config_impl.h"

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
