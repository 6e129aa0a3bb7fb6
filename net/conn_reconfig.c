/*
 * conn_reconfig.c — the answer to a reconfig request (ZooKeeper's dynamic membership).
 * RingKeeper's membership is the zoo.cfg's server.N lines and does not change while
 * it runs; what it does is answer a reconfig as a ZooKeeper 3.8 server checks one, in
 * the same order (PrepRequestProcessor), so a client gets the same error for the
 * same mistake:
 *
 *   reconfigEnabled off             RECONFIGDISABLED
 *   one server (standalone)         UNIMPLEMENTED
 *   curConfigId not -1 nor ours     BADVERSION (ours is 0: /zookeeper/config's version)
 *   a server string or id it cannot parse
 *                                   BADARGUMENTS
 *   not the superuser               NOAUTH (/zookeeper/config's ACL: world may read)
 *   otherwise                       UNIMPLEMENTED, logged: where ZooKeeper would change
 *                                   the ensemble, RingKeeper's stays as configured
 *
 * Worker thread; reads only the configuration and the connection's auth.
 */
#include <ctype.h>
#include <string.h>

#include "core/config.h"
#include "core/jute.h"
#include "core/log.h"
#include "core/zk_proto.h"
#include "net/conn.h"
#include "net/conn_impl.h"
#include "net/server.h"

static bool all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* "host:port:port[:participant|observer]" then optionally ";[host:]port". */
static bool server_address_ok(const char *s, size_t n)
{
	const char *semi = memchr(s, ';', n);
	size_t quorum_len = semi ? (size_t)(semi - s) : n;
	const char *part[4];
	size_t part_len[4];
	int parts = 0;
	for (size_t start = 0, i = 0; i <= quorum_len; i++) {
		if (i == quorum_len || s[i] == ':') {
			if (parts == 4)
				return false;
			part[parts] = s + start;
			part_len[parts++] = i - start;
			start = i + 1;
		}
	}
	if (parts < 3 || part_len[0] == 0 || !all_digits(part[1], part_len[1]) || !all_digits(part[2], part_len[2]))
		return false;
	if (parts == 4 && !(part_len[3] == 11 && memcmp(part[3], "participant", 11) == 0) &&
	    !(part_len[3] == 8 && memcmp(part[3], "observer", 8) == 0))
		return false;
	if (!semi)
		return true;
	const char *client = semi + 1;
	size_t client_len = n - quorum_len - 1;
	const char *colon = memchr(client, ':', client_len);
	const char *port = colon ? colon + 1 : client;
	return all_digits(port, client_len - (size_t)(port - client));
}

static void trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s))
		++*s, --*n;
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		--*n;
}

/* "server.<id>=<address>" */
static bool server_line_ok(const char *s, size_t n)
{
	trim(&s, &n);
	const char *eq = memchr(s, '=', n);
	if (!eq || eq - s < 8 || memcmp(s, "server.", 7) != 0 || !all_digits(s + 7, (size_t)(eq - s - 7)))
		return false;
	return server_address_ok(eq + 1, n - (size_t)(eq + 1 - s));
}

static bool id_ok(const char *s, size_t n)
{
	trim(&s, &n);
	return all_digits(s, n);
}

/* Every comma-separated item of a (non-null) list passes ok. */
static bool list_ok(struct jute_bytes list, bool (*ok)(const char *, size_t))
{
	if (list.len < 0)
		return true;
	const char *s = (const char *)list.data;
	size_t n = (size_t)list.len;
	for (size_t start = 0, i = 0; i <= n; i++) {
		if (i == n || s[i] == ',') {
			if (!ok(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

int32_t conn_reconfig_answer(const struct server *srv, const struct conn *c, const uint8_t *body, size_t len)
{
	if (!srv->cfg.reconfig_enabled)
		return ZK_RECONFIGDISABLED;
	if (!conn_in_cluster(srv))
		return ZK_UNIMPLEMENTED;
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	struct jute_bytes joining = jute_read_string(&r);
	struct jute_bytes leaving = jute_read_string(&r);
	struct jute_bytes members = jute_read_string(&r);
	int64_t from_config = jute_read_long(&r);
	if (!jute_reader_ok(&r))
		return ZK_MARSHALLINGERROR;
	if (from_config != -1 && from_config != 0)
		return ZK_BADVERSION;
	if (members.len >= 0 ? !list_ok(members, server_line_ok)
			     : !list_ok(joining, server_line_ok) || !list_ok(leaving, id_ok))
		return ZK_BADARGUMENTS;
	if (!c->super)
		return ZK_NOAUTH;
	log_warn("conn %s: reconfig refused: the servers are zoo.cfg's server.N lines and do not change while "
		 "RingKeeper runs (restart every server with the new lines)", c->peer);
	return ZK_UNIMPLEMENTED;
}
