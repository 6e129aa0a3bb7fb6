/*
 * conn.c — the ZooKeeper session front end of one connection: framing, handshake,
 * request classification, per-session ordering, replies. See conn.h for the
 * lifecycle and the ordering invariants. Runs only on the owning worker thread.
 */
#include "net/conn.h"
#include "net/conn_impl.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "core/log.h"
#include "core/msg.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/auth.h"
#include "net/fourlw.h"
#include "net/frames.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "store/store.h"

/* Output beyond this stops input parsing until the client reads (backpressure). */
#define CONN_OUT_SOFT_BYTES (4u << 20)
/* Output beyond this closes the connection: the client stopped reading entirely. */
#define CONN_OUT_HARD_BYTES (64u << 20)
/* Held input beyond this pauses recv. */
#define CONN_IN_EXTRA_BYTES (64u << 10)

enum op_class {
	OP_WRITE,       /* ordered by the raft thread */
	OP_ORDERED,     /* runs on the worker, after this conn's earlier writes */
	OP_UNKNOWN,     /* UNIMPLEMENTED, then close */
};

/* The requests conn_read answers from the store (the rest of OP_ORDERED is conn_run_ordered's). */
static bool op_is_store_read(int32_t opcode)
{
	switch (opcode) {
	case ZK_OP_EXISTS:
	case ZK_OP_GET_DATA:
	case ZK_OP_GET_ACL:
	case ZK_OP_GET_CHILDREN:
	case ZK_OP_GET_CHILDREN2:
	case ZK_OP_MULTI_READ:
	case ZK_OP_GET_EPHEMERALS:
	case ZK_OP_GET_ALL_CHILDREN_NUMBER:
	case ZK_OP_FILTERED_LIST:
	case ZK_OP_FILTERED_LIST_WITH_STATS_AND_DATA:
	case ZK_OP_LIST_RECURSIVE:
		return true;
	default:
		return false;
	}
}

static enum op_class op_classify(const struct server *srv, int32_t opcode)
{
	switch (opcode) {
	case ZK_OP_CREATE:
	case ZK_OP_DELETE:
	case ZK_OP_SET_DATA:
	case ZK_OP_SET_ACL:
	case ZK_OP_SYNC:
	case ZK_OP_CHECK:
	case ZK_OP_MULTI:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CLOSE_SESSION:
	case ZK_OP_CHECK_NOT_EXISTS:
	case ZK_OP_CREATE_IF_NOT_EXISTS:
	case ZK_OP_REMOVE_RECURSIVE:
	case STORE_OP_CHECK_STAT:
	case STORE_OP_TRY_REMOVE:
		return OP_WRITE;
	case ZK_OP_CREATE_TTL:
		return srv->cfg.extended_types_enabled ? OP_WRITE : OP_ORDERED;
	case ZK_OP_PING:
	case ZK_OP_AUTH:
	case ZK_OP_SET_WATCHES:
	case ZK_OP_SET_WATCHES2:
	case ZK_OP_WHO_AM_I:
	case ZK_OP_CHECK_WATCHES:
	case ZK_OP_REMOVE_WATCHES:
	case ZK_OP_ADD_WATCH:
	case ZK_OP_RECONFIG:
	case ZK_OP_SASL:
	case ZK_OP_DELETE_CONTAINER:
		return OP_ORDERED;
	default:
		return op_is_store_read(opcode) ? OP_ORDERED : OP_UNKNOWN;
	}
}

struct conn *conn_new(struct worker *w, uint64_t id, int fd)
{
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	size_t in_max = (size_t)w->srv->cfg.packet_bytes_max + 4 + CONN_IN_EXTRA_BYTES + WORKER_RECV_BUF_BYTES;
	c->id = id;
	c->fd = fd;
	c->state = CONN_NEW;
	jute_writer_init(&c->in, in_max);
	jute_writer_init(&c->out, CONN_OUT_HARD_BYTES);
	jute_writer_init(&c->out_sending, CONN_OUT_HARD_BYTES);
	c->established_ms = w->now_ms;
	c->lat_min_us = UINT64_MAX;
	c->last_op = ZK_OP_NOTIFICATION;
	return c;
}

void conn_free(struct worker *w, struct conn *c)
{
	(void)w;
	struct deferred_req *d = c->deferred_head;
	while (d) {
		struct deferred_req *next = d->next;
		free(d);
		d = next;
	}
	for (int i = 0; i < c->auth_count; i++) {
		free(c->auth[i].scheme);
		free(c->auth[i].id);
	}
	jute_writer_free(&c->in);
	jute_writer_free(&c->out);
	jute_writer_free(&c->out_sending);
	free(c);
}

void conn_send_bytes(struct worker *w, struct conn *c, const void *data, size_t len)
{
	jute_write_raw(&c->out, data, len);
	if (!jute_writer_ok(&c->out)) {
		log_warn("conn %s: output over %u bytes, closing", c->peer, CONN_OUT_HARD_BYTES);
		worker_conn_close(w, c);
		return;
	}
	worker_conn_mark_send(w, c);
}

void conn_frame_done(struct worker *w, struct conn *c)
{
	if (!jute_writer_ok(&c->out)) {
		log_warn("conn %s: output over %u bytes, closing", c->peer, CONN_OUT_HARD_BYTES);
		worker_conn_close(w, c);
		return;
	}
	c->packets_sent++;
	stats_add_resettable(&w->stats, &w->srv->stats.reset_gen, &w->stats.packets_sent, 1);
	worker_conn_mark_send(w, c);
}

static void conn_reply_empty(struct worker *w, struct conn *c, int32_t xid, int64_t zxid, int32_t err)
{
	size_t start = frame_begin(&c->out, xid, zxid, err);
	frame_end(&c->out, start);
	c->last_zxid = zxid;
	c->last_response_ms = w->now_ms;
	conn_frame_done(w, c);
}

void conn_record_latency(struct worker *w, struct conn *c, int32_t opcode, uint64_t start_us)
{
	uint64_t now = (uint64_t)rk_now_us();
	uint64_t us = now > start_us ? now - start_us : 0;
	if (us < c->lat_min_us)
		c->lat_min_us = us;
	if (us > c->lat_max_us)
		c->lat_max_us = us;
	c->lat_sum_us += us;
	c->lat_count++;
	stats_record_latency(&w->stats, &w->srv->stats.reset_gen, opcode, us);
}

bool conn_is_stalled(struct worker *w, struct conn *c)
{
	const struct rk_config *cfg = &w->srv->cfg;
	if (c->outstanding_writes + c->deferred_count >= cfg->outstanding_per_connection_max)
		return true;
	if (atomic_load_explicit(&w->srv->global_outstanding, memory_order_relaxed) >= cfg->global_outstanding_max)
		return true;
	return c->out.len + c->out_sending.len > CONN_OUT_SOFT_BYTES;
}

/* ---- requests ------------------------------------------------------------------- */

bool conn_propose(struct worker *w, struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body, size_t len,
		  uint64_t start_us)
{
	struct zk_id ids[CONN_AUTH_IDS_MAX];
	int n = 0;
	for (int i = 0; i < c->auth_count && n < RK_ENTRY_IDS_MAX; i++, n++) {
		ids[n].scheme = (struct jute_bytes){ (const uint8_t *)c->auth[i].scheme, (int32_t)strlen(c->auth[i].scheme) };
		ids[n].id = (struct jute_bytes){ (const uint8_t *)c->auth[i].id, (int32_t)strlen(c->auth[i].id) };
	}
	struct jute_writer *sw = &w->scratch;
	jute_writer_reset(sw);
	uint8_t *hdr = jute_writer_reserve(sw, sizeof(struct rk_msg));
	if (!hdr)
		return false;
	entry_encode(sw, c->session_id, opcode, c->super, ids, n, body, len);
	if (!jute_writer_ok(sw))
		return false;
	struct rk_msg *m = malloc(sw->len);
	if (!m)
		return false;
	memcpy(m, sw->buf, sw->len);
	memset(m, 0, sizeof *m);
	m->kind = RK_MSG_PROPOSAL;
	m->flags = opcode == ZK_OP_SYNC ? RK_MSG_SYNC : 0;
	m->xid = xid;
	m->len = (uint32_t)(sw->len - sizeof *m);
	m->conn_id = c->id;
	m->session_id = c->session_id;
	m->start_us = start_us;
	if (!worker_send_to_raft(w, m)) {
		free(m);
		return false;
	}
	c->outstanding_writes++;
	atomic_fetch_add_explicit(&w->srv->global_outstanding, 1, memory_order_relaxed);
	return true;
}

struct event_sink {
	struct worker *w;
	struct conn *c;
};

static void conn_event_to_self(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len,
			       int64_t zxid)
{
	(void)watcher;
	(void)zxid;
	struct event_sink *sink = ctx;
	frame_notification(&sink->c->out, type, path, path_len);
	conn_frame_done(sink->w, sink->c);
}

static void conn_auth(struct worker *w, struct conn *c, int32_t xid, const uint8_t *body, size_t len)
{
	struct jute_reader r;
	jute_reader_init(&r, body, len);
	jute_read_int(&r); /* type, always 0 */
	struct jute_bytes scheme = jute_read_string(&r);
	struct jute_bytes auth = jute_read_buffer(&r);
	char id[512];
	bool super = false;
	int rc = -EINVAL;
	if (jute_reader_ok(&r) && jute_bytes_eq(scheme, "ip", 2)) {
		/* ZooKeeper's ip provider: the caller already holds ip:<address>. */
		conn_reply_empty(w, c, xid, 0, ZK_OK);
		return;
	}
	if (jute_reader_ok(&r) && jute_bytes_eq(scheme, "digest", 6))
		rc = auth_digest_id(auth.data, auth.len < 0 ? 0 : (size_t)auth.len, id, sizeof id);
	if (rc == 0 && w->srv->cfg.super_digest[0] && strcmp(id, w->srv->cfg.super_digest) == 0)
		super = true;
	if (rc != 0 || c->auth_count >= CONN_AUTH_IDS_MAX) {
		atomic_fetch_add_explicit(&w->srv->stats.auth_failed, 1, memory_order_relaxed);
		conn_reply_empty(w, c, xid, 0, ZK_AUTHFAILED);
		c->close_after_flush = true;
		c->state = CONN_CLOSING;
		return;
	}
	bool have = false;
	for (int i = 0; i < c->auth_count; i++)
		have |= strcmp(c->auth[i].scheme, "digest") == 0 && strcmp(c->auth[i].id, id) == 0;
	if (!have) {
		c->auth[c->auth_count].scheme = strdup("digest");
		c->auth[c->auth_count].id = strdup(id);
		c->auth_count++;
	}
	c->super |= super;
	log_debug("conn %s: authenticated as digest:%s%s", c->peer, id, super ? " (super)" : "");
	conn_reply_empty(w, c, xid, 0, ZK_OK);
}

static void conn_who_am_i(struct worker *w, struct conn *c, int32_t xid, int64_t zxid)
{
	size_t start = frame_begin(&c->out, xid, zxid, ZK_OK);
	jute_write_int(&c->out, c->auth_count + (c->super ? 1 : 0));
	if (c->super) {
		jute_write_string(&c->out, "super", 5);
		jute_write_string(&c->out, "", 0);
	}
	for (int i = 0; i < c->auth_count; i++) {
		const char *user = c->auth[i].id;
		size_t user_len = strlen(user);
		if (strcmp(c->auth[i].scheme, "digest") == 0) {
			const char *colon = strchr(user, ':');
			if (colon)
				user_len = (size_t)(colon - user);
		}
		jute_write_string(&c->out, c->auth[i].scheme, (int32_t)strlen(c->auth[i].scheme));
		jute_write_string(&c->out, user, (int32_t)user_len);
	}
	frame_end(&c->out, start);
	conn_frame_done(w, c);
}

/* The connection's identities as the store checks them; views into c, valid while it lives. */
static struct store_auth conn_store_auth(const struct conn *c, struct zk_id ids[CONN_AUTH_IDS_MAX])
{
	for (int i = 0; i < c->auth_count; i++) {
		ids[i].scheme = (struct jute_bytes){ (const uint8_t *)c->auth[i].scheme, (int32_t)strlen(c->auth[i].scheme) };
		ids[i].id = (struct jute_bytes){ (const uint8_t *)c->auth[i].id, (int32_t)strlen(c->auth[i].id) };
	}
	return (struct store_auth){ ids, c->auth_count, c->super };
}

static void conn_read(struct worker *w, struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body,
		      size_t len)
{
	struct server *srv = w->srv;
	struct zk_id ids[CONN_AUTH_IDS_MAX];
	struct store_auth auth = conn_store_auth(c, ids);
	struct jute_writer *sw = &w->scratch;
	jute_writer_reset(sw);
	int64_t zxid;
	int32_t err = store_read(srv->store, c->session_id, c->id, &auth, opcode, body, len, sw, &zxid);
	if (!jute_writer_ok(sw)) {
		/* Never a truncated record: past WORKER_SCRATCH_BYTES_MAX, an error (the
		 * applier answers an oversized write reply the same way). */
		log_warn("conn %s: a read reply over %zu bytes: answered SYSTEMERROR", c->peer, sw->cap_max);
		err = ZK_SYSTEMERROR;
		sw->len = 0;
	}
	/* Invariant 2 of conn.h: the notifications of changes this read reflects go
	 * first; those of later changes (which may fire the watch it just set) after. */
	worker_drain_inbound_upto(w, zxid);
	if (c->state != CONN_ESTABLISHED)
		return;
	size_t start = frame_begin(&c->out, xid, zxid, err);
	if (err == ZK_OK || opcode == ZK_OP_MULTI_READ)
		jute_write_raw(&c->out, sw->buf, sw->len);
	frame_end(&c->out, start);
	c->last_zxid = zxid;
	c->last_response_ms = w->now_ms;
	stats_add(&w->stats.reads_served, 1);
	conn_frame_done(w, c);
}

static void conn_add_watch(struct worker *w, struct conn *c, int32_t xid, const uint8_t *body, size_t len)
{
	struct zk_id ids[CONN_AUTH_IDS_MAX];
	struct store_auth auth = conn_store_auth(c, ids);
	int64_t zxid;
	int32_t err = store_add_watch_auth(w->srv->store, c->id, &auth, body, len, &zxid);
	/* As a read (invariant 2): an event of the new watch comes after this reply. */
	worker_drain_inbound_upto(w, zxid);
	if (c->state != CONN_ESTABLISHED)
		return;
	size_t start = frame_begin(&c->out, xid, zxid, err);
	if (err == ZK_OK)
		jute_write_int(&c->out, 0); /* ErrorResponse{0}: Java reads this int */
	frame_end(&c->out, start);
	c->last_zxid = zxid;
	conn_frame_done(w, c);
}

static void conn_run_other(struct worker *w, struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body,
			   size_t len);

static void conn_run_ordered(struct worker *w, struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body,
			     size_t len, uint64_t start_us)
{
	struct server *srv = w->srv;
	c->last_op = opcode;
	switch (op_classify(srv, opcode)) {
	case OP_UNKNOWN:
		log_info("conn %s: unknown opcode %d, closing", c->peer, opcode);
		conn_reply_empty(w, c, xid, -1, ZK_UNIMPLEMENTED);
		c->close_after_flush = true;
		c->state = CONN_CLOSING;
		return;
	case OP_WRITE:
		assert(!"writes are proposed, not run on the worker");
		return;
	case OP_ORDERED:
		break;
	}
	if (op_is_store_read(opcode))
		conn_read(w, c, xid, opcode, body, len);
	else
		conn_run_other(w, c, xid, opcode, body, len);
	/* Every answered request counts, pings too, as in ZooKeeper's latency stats. */
	conn_record_latency(w, c, opcode, start_us);
}

/* The ordered requests that are not store reads: pings, auth, watch management, ... */
static void conn_run_other(struct worker *w, struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body,
			   size_t len)
{
	struct server *srv = w->srv;
	if (opcode == ZK_OP_ADD_WATCH) {
		conn_add_watch(w, c, xid, body, len);
		return;
	}
	/* Invariant 2 of conn.h holds for every reply, not only reads: a ping that follows
	 * another session's write must not overtake the event that write fired for this
	 * session. Nothing below sets a watch a later change could fire before the reply
	 * (setWatches re-arms watches the client already holds). */
	int64_t zxid = store_last_zxid(srv->store);
	worker_drain_inbound_upto(w, zxid);
	if (c->state != CONN_ESTABLISHED)
		return;
	switch (opcode) {
	case ZK_OP_PING:
		conn_reply_empty(w, c, xid, zxid, ZK_OK);
		return;
	case ZK_OP_AUTH:
		conn_auth(w, c, xid, body, len);
		return;
	case ZK_OP_SET_WATCHES:
	case ZK_OP_SET_WATCHES2: {
		struct event_sink sink = { w, c };
		struct zk_id ids[CONN_AUTH_IDS_MAX];
		struct store_auth auth = conn_store_auth(c, ids);
		int32_t err = store_set_watches_auth(srv->store, c->id, &auth, opcode, body, len, conn_event_to_self,
						     &sink);
		if (c->state == CONN_ESTABLISHED)
			conn_reply_empty(w, c, xid, zxid, err);
		return;
	}
	case ZK_OP_WHO_AM_I:
		conn_who_am_i(w, c, xid, zxid);
		return;
	case ZK_OP_CHECK_WATCHES:
	case ZK_OP_REMOVE_WATCHES:
		conn_reply_empty(w, c, xid, zxid,
				 store_remove_watches(srv->store, c->id, opcode, body, len));
		return;
	case ZK_OP_RECONFIG:
		conn_reply_empty(w, c, xid, zxid, conn_reconfig_answer(srv, c, body, len));
		return;
	case ZK_OP_DELETE_CONTAINER:
		/* The leader's container sweep proposes it; a client may not. */
		conn_reply_empty(w, c, xid, zxid, ZK_BADARGUMENTS);
		return;
	case ZK_OP_SASL: {
		/* No SASL provider: ZooKeeper answers with a null token. */
		size_t start = frame_begin(&c->out, xid, 0, ZK_OK);
		jute_write_buffer(&c->out, NULL, -1);
		frame_end(&c->out, start);
		conn_frame_done(w, c);
		return;
	}
	case ZK_OP_CREATE_TTL: /* only here when extendedTypesEnabled is off */
		conn_reply_empty(w, c, xid, zxid, ZK_UNIMPLEMENTED);
		return;
	default:
		assert(!"a store read or an opcode op_classify does not order");
		return;
	}
}

static bool conn_defer(struct conn *c, int32_t xid, int32_t opcode, const uint8_t *body, size_t len,
		       uint64_t start_us)
{
	struct deferred_req *d = malloc(sizeof *d + len);
	if (!d)
		return false;
	d->next = NULL;
	d->xid = xid;
	d->opcode = opcode;
	d->len = (uint32_t)len;
	d->start_us = start_us;
	memcpy(d->body, body, len);
	if (c->deferred_tail)
		c->deferred_tail->next = d;
	else
		c->deferred_head = d;
	c->deferred_tail = d;
	c->deferred_count++;
	return true;
}

/* Returns false when the frame could not be taken now (keep it; retry later). */
static bool conn_request(struct worker *w, struct conn *c, const uint8_t *frame, size_t len)
{
	struct server *srv = w->srv;
	if (len < 8) {
		log_info("conn %s: frame of %zu bytes has no request header, closing", c->peer, len);
		worker_conn_close(w, c);
		return true;
	}
	struct jute_reader r;
	jute_reader_init(&r, frame, len);
	int32_t xid = jute_read_int(&r);
	int32_t opcode = jute_read_int(&r);
	const uint8_t *body = frame + 8;
	size_t body_len = len - 8;
	uint64_t start_us = (uint64_t)rk_now_us();
	enum op_class cls = op_classify(srv, opcode);
	if (cls == OP_WRITE && !c->deferred_head) {
		if (!conn_propose(w, c, xid, opcode, body, body_len, start_us))
			return false;
	} else if (cls != OP_WRITE && !c->deferred_head && c->outstanding_writes == 0) {
		conn_run_ordered(w, c, xid, opcode, body, body_len, start_us);
	} else if (!conn_defer(c, xid, opcode, body, body_len, start_us)) {
		return false;
	}
	c->packets_received++;
	if (xid > 0)
		c->last_cxid = xid;
	stats_add_resettable(&w->stats, &srv->stats.reset_gen, &w->stats.packets_received, 1);
	store_session_touch(srv->store, c->session_id, w->now_ms, c->timeout_ms);
	return true;
}

void conn_run_deferred(struct worker *w, struct conn *c)
{
	while (c->deferred_head && c->state == CONN_ESTABLISHED) {
		struct deferred_req *d = c->deferred_head;
		if (op_classify(w->srv, d->opcode) == OP_WRITE) {
			if (!conn_propose(w, c, d->xid, d->opcode, d->body, d->len, d->start_us))
				return;
		} else {
			if (c->outstanding_writes > 0)
				return;
			conn_run_ordered(w, c, d->xid, d->opcode, d->body, d->len, d->start_us);
		}
		c->deferred_head = d->next;
		if (!c->deferred_head)
			c->deferred_tail = NULL;
		c->deferred_count--;
		free(d);
	}
	if (c->in.len && c->state == CONN_ESTABLISHED)
		conn_resume(w, c);
}

/* ---- framing ---------------------------------------------------------------------- */

/* Parses whole frames from p[0..n). Returns the bytes consumed. */
static size_t conn_parse(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
	size_t off = 0;
	int32_t frame_max = w->srv->cfg.packet_bytes_max;
	while (c->state == CONN_NEW || c->state == CONN_ESTABLISHED) {
		if (n - off < 4)
			break;
		if (c->state == CONN_NEW && fourlw_is_word(p + off)) {
			fourlw_answer(w, c, p + off);
			return n;
		}
		int32_t len = (int32_t)jute_get_be32(p + off);
		if (len < 0 || len > frame_max) {
			atomic_fetch_add_explicit(&w->srv->stats.frames_rejected, 1, memory_order_relaxed);
			log_info("conn %s: frame length %d outside [0, %d], closing", c->peer, len, frame_max);
			worker_conn_close(w, c);
			return n;
		}
		if (n - off - 4 < (size_t)len)
			break;
		if (c->state == CONN_NEW) {
			conn_handshake(w, c, p + off + 4, (size_t)len);
		} else {
			if (conn_is_stalled(w, c)) {
				worker_conn_mark_stalled(w, c);
				break;
			}
			if (!conn_request(w, c, p + off + 4, (size_t)len)) {
				worker_conn_mark_stalled(w, c);
				break;
			}
		}
		off += 4 + (size_t)len;
	}
	return off;
}

static void conn_keep_input(struct worker *w, struct conn *c, const uint8_t *p, size_t n)
{
	jute_write_raw(&c->in, p, n);
	if (!jute_writer_ok(&c->in)) {
		log_warn("conn %s: unparsed input over its limit, closing", c->peer);
		worker_conn_close(w, c);
	}
}

void conn_on_input(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->in.len == 0) {
		size_t used = conn_parse(w, c, data, len);
		if (used < len && c->state != CONN_CLOSING)
			conn_keep_input(w, c, data + used, len - used);
		return;
	}
	conn_keep_input(w, c, data, len);
	if (c->state != CONN_CLOSING)
		conn_resume(w, c);
}

void conn_resume(struct worker *w, struct conn *c)
{
	if (c->in.len == 0 || c->state == CONN_CLOSING)
		return;
	size_t used = conn_parse(w, c, c->in.buf, c->in.len);
	if (c->state == CONN_CLOSING)
		return;
	if (used) {
		memmove(c->in.buf, c->in.buf + used, c->in.len - used);
		c->in.len -= used;
	}
}

/* ---- messages from the raft thread -------------------------------------------------- */

void conn_on_msg(struct worker *w, struct conn *c, struct rk_msg *m)
{
	switch ((enum rk_msg_kind)m->kind) {
	case RK_MSG_REPLY: {
		/* global_outstanding was released by the worker's dispatch */
		assert(c->outstanding_writes > 0);
		c->outstanding_writes--;
		if (c->revalidating) {
			conn_on_revalidated(w, c, m->err);
			return;
		}
		if (m->err == ZK_SESSIONMOVED) {
			/* ZooKeeper tears such a connection down without a reply (ZOOKEEPER-710):
			 * its client is connected elsewhere now, or reconnects and learns. */
			log_info("conn %s: session 0x%llx moved to another server: closing", c->peer,
				 (unsigned long long)c->session_id);
			worker_conn_close(w, c);
			return;
		}
		size_t start = frame_begin(&c->out, m->xid, m->zxid, m->err);
		jute_write_raw(&c->out, m->data, m->len);
		frame_end(&c->out, start);
		conn_frame_done(w, c);
		if (c->shut)
			return;
		c->last_zxid = m->zxid;
		c->last_response_ms = w->now_ms;
		conn_record_latency(w, c, m->opcode, m->start_us);
		if (m->flags & RK_MSG_CLOSE_AFTER) {
			c->close_after_flush = true;
			c->state = CONN_CLOSING;
		} else if (c->deferred_head || c->in.len) {
			worker_conn_mark_ready(w, c);
		}
		return;
	}
	case RK_MSG_EVENT:
		frame_notification(&c->out, m->event_type, (const char *)m->data, m->len);
		conn_frame_done(w, c);
		return;
	case RK_MSG_SESSION_CREATED:
		conn_on_session_created(w, c, m);
		return;
	case RK_MSG_PROPOSAL:
	case RK_MSG_SESSION_ATTACH:
	case RK_MSG_LEADERSHIP:
	case RK_MSG_SESSION_GONE:
	case RK_MSG_SESSION_RECLAIM:
		assert(!"not a conn message");
		return;
	}
}
