/*
 * zk_format.c — see zk_format.h.
 */
#include "migrate/zk_format.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"

bool zk_file_zxid(const char *name, const char *prefix, int64_t *zxid)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) != 0 || name[n] != '.')
		return false;
	const char *hex = name + n + 1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(hex, &end, 16);
	if (end == hex || errno || (*end != '\0' && *end != '.') || v > (unsigned long long)INT64_MAX)
		return false;
	for (const char *c = hex; c < end; c++)
		if (*c == '-' || *c == '+' || *c == ' ')
			return false;
	*zxid = (int64_t)v;
	return true;
}

void zk_read_file_header(struct jute_reader *r, struct zk_file_header *h)
{
	h->magic = (uint32_t)jute_read_int(r);
	h->version = jute_read_int(r);
	h->dbid = jute_read_long(r);
}

struct jute_bytes zk_read_bytes(struct jute_reader *r, uint32_t max, bool *bad)
{
	struct jute_bytes b = { NULL, -1 };
	if (jute_reader_remaining(r) < 4 || r->err) {
		r->err = -EPROTO;
		return b;
	}
	int32_t len = (int32_t)jute_get_be32(r->buf + r->pos);
	if (len < -1 || (len > 0 && (uint32_t)len > max)) {
		*bad = true;
		return b;
	}
	return jute_read_buffer(r);
}

struct jute_bytes zk_read_acl_vector(struct jute_reader *r, bool *bad)
{
	size_t start = r->pos;
	int32_t count = jute_read_int(r);
	if (r->err)
		return (struct jute_bytes){ NULL, -1 };
	if (count < -1 || count > ZK_ACL_ENTRIES_MAX) {
		*bad = true;
		return (struct jute_bytes){ NULL, -1 };
	}
	for (int32_t i = 0; i < count && !r->err && !*bad; i++) {
		(void)jute_read_int(r); /* perms */
		zk_read_bytes(r, ZK_PATH_BYTES_MAX, bad);
		zk_read_bytes(r, ZK_PATH_BYTES_MAX, bad);
	}
	if (r->err || *bad)
		return (struct jute_bytes){ NULL, -1 };
	return (struct jute_bytes){ r->buf + start, (int32_t)(r->pos - start) };
}

const char *zk_txn_type_name(int32_t type)
{
	switch (type) {
	case ZK_OP_CREATE: return "create";
	case ZK_OP_CREATE2: return "create2";
	case ZK_OP_CREATE_CONTAINER: return "createContainer";
	case ZK_OP_CREATE_TTL: return "createTTL";
	case ZK_OP_DELETE: return "delete";
	case ZK_OP_DELETE_CONTAINER: return "deleteContainer";
	case ZK_OP_SET_DATA: return "setData";
	case ZK_OP_RECONFIG: return "reconfig";
	case ZK_OP_SET_ACL: return "setACL";
	case ZK_OP_CHECK: return "check";
	case ZK_OP_MULTI: return "multi";
	case ZK_OP_CREATE_SESSION: return "createSession";
	case ZK_OP_CLOSE_SESSION: return "closeSession";
	case ZK_OP_ERROR: return "error";
	default: return "unknown";
	}
}

/* ---------------------------------------------------------------- txn bodies */

static void read_create_common(struct jute_reader *r, struct zk_txn_body *b, bool *bad)
{
	b->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, bad);
	b->data = zk_read_bytes(r, ZK_DATA_BYTES_MAX, bad);
	b->acl = zk_read_acl_vector(r, bad);
}

/*
 * The record of `type` from r. top: a top-level txn (CreateTxnV0 and a missing
 * CloseSessionTxn are possible there). 0, -ENOTSUP (a type not allowed), -EBADMSG.
 */
/* CloseSessionTxn's paths (3.6+, zookeeper.closeSessionTxn.enabled), or nothing:
 * what does not read as a path list is left unread. */
static void read_close_session_paths(struct jute_reader *r, struct zk_txn_body *b)
{
	struct jute_reader save = *r;
	size_t start = r->pos;
	bool bad = false;
	int32_t count = jute_read_int(r);
	bool ok = !r->err && count >= -1 && count <= ZK_MULTI_OPS_MAX;
	for (int32_t i = 0; ok && i < count; i++) {
		zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
		ok = !r->err && !bad;
	}
	if (!ok) {
		*r = save;
		return;
	}
	b->has_paths = true;
	b->paths = (struct jute_bytes){ r->buf + start, (int32_t)(r->pos - start) };
}

/* A MultiTxn's ops (type and txn bytes each), kept whole: zk_tree_apply.c reads them. */
static void read_multi_ops(struct jute_reader *r, struct zk_txn_body *b, bool *bad)
{
	size_t start = r->pos;
	int32_t count = jute_read_int(r);
	if (!r->err && (count < -1 || count > ZK_MULTI_OPS_MAX))
		*bad = true;
	for (int32_t i = 0; !*bad && !r->err && i < count; i++) {
		(void)jute_read_int(r);
		zk_read_bytes(r, ZK_TXN_BYTES_MAX, bad);
	}
	b->ops = (struct jute_bytes){ r->buf + start, (int32_t)(r->pos - start) };
}

static int body_read(struct jute_reader *r, int32_t type, bool top, struct zk_txn_body *b)
{
	bool bad = false;
	memset(b, 0, sizeof *b);
	b->type = type;
	b->parent_cversion = -1;
	switch (type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
		if (!top && type == ZK_OP_CREATE2)
			return -ENOTSUP;
		read_create_common(r, b, &bad);
		b->ephemeral = jute_read_bool(r);
		if (!r->err && !bad && type == ZK_OP_CREATE && top && jute_reader_remaining(r) < 4) {
			b->parent_cversion = -1; /* CreateTxnV0 */
			break;
		}
		b->parent_cversion = jute_read_int(r);
		break;
	case ZK_OP_CREATE_CONTAINER:
		read_create_common(r, b, &bad);
		b->parent_cversion = jute_read_int(r);
		break;
	case ZK_OP_CREATE_TTL:
		read_create_common(r, b, &bad);
		b->parent_cversion = jute_read_int(r);
		b->ttl = jute_read_long(r);
		break;
	case ZK_OP_DELETE:
	case ZK_OP_DELETE_CONTAINER:
		b->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
		break;
	case ZK_OP_SET_DATA:
	case ZK_OP_RECONFIG:
		if (!top && type == ZK_OP_RECONFIG)
			return -ENOTSUP;
		b->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
		b->data = zk_read_bytes(r, ZK_DATA_BYTES_MAX, &bad);
		b->version = jute_read_int(r);
		break;
	case ZK_OP_SET_ACL:
		if (!top)
			return -ENOTSUP;
		b->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
		b->acl = zk_read_acl_vector(r, &bad);
		b->version = jute_read_int(r);
		break;
	case ZK_OP_CHECK:
		if (top)
			return -ENOTSUP;
		b->path = zk_read_bytes(r, ZK_PATH_BYTES_MAX, &bad);
		b->version = jute_read_int(r);
		break;
	case ZK_OP_CREATE_SESSION:
		if (!top)
			return -ENOTSUP;
		b->timeout_ms = jute_read_int(r);
		break;
	case ZK_OP_CLOSE_SESSION:
		if (!top)
			return -ENOTSUP;
		read_close_session_paths(r, b);
		break;
	case ZK_OP_ERROR:
		b->err = jute_read_int(r);
		break;
	case ZK_OP_MULTI:
		if (!top)
			return -ENOTSUP;
		read_multi_ops(r, b, &bad);
		break;
	default:
		return -ENOTSUP;
	}
	if (bad || r->err)
		return -EBADMSG;
	return 0;
}

int zk_txn_decode(const uint8_t *p, size_t len, struct zk_txn *t, char *why, size_t why_size)
{
	struct jute_reader r;
	jute_reader_init(&r, p, len);
	memset(t, 0, sizeof *t);
	t->hdr.client_id = jute_read_long(&r);
	t->hdr.cxid = jute_read_int(&r);
	t->hdr.zxid = jute_read_long(&r);
	t->hdr.time = jute_read_long(&r);
	t->hdr.type = jute_read_int(&r);
	if (r.err) {
		snprintf(why, why_size, "a txn entry of %zu bytes is shorter than its header", len);
		return -EBADMSG;
	}
	int rc = body_read(&r, t->hdr.type, true, &t->body);
	if (rc == -ENOTSUP) {
		snprintf(why, why_size, "txn 0x%llx has type %d, which ZooKeeper does not write to its log",
			 (unsigned long long)t->hdr.zxid, t->hdr.type);
		return -EBADMSG;
	}
	if (rc < 0) {
		snprintf(why, why_size, "txn 0x%llx (%s) is malformed", (unsigned long long)t->hdr.zxid,
			 zk_txn_type_name(t->hdr.type));
		return -EBADMSG;
	}
	/* TxnDigest after the txn when the writer had digests on (3.6+); ZooKeeper reads
	 * it when bytes for it remain. */
	if (jute_reader_remaining(&r) >= 12) {
		t->has_digest = true;
		t->digest_version = jute_read_int(&r);
		t->digest = jute_read_long(&r);
	}
	return 0;
}

int zk_txn_sub_decode(int32_t type, struct jute_bytes data, struct zk_txn_body *b, char *why, size_t why_size)
{
	struct jute_reader r;
	jute_reader_init(&r, data.data, data.len > 0 ? (size_t)data.len : 0);
	int rc = body_read(&r, type, false, b);
	if (rc == -ENOTSUP)
		snprintf(why, why_size, "a multi holds a sub-txn of type %d (%s)", type, zk_txn_type_name(type));
	else if (rc < 0)
		snprintf(why, why_size, "a multi's %s sub-txn is malformed", zk_txn_type_name(type));
	return rc;
}
