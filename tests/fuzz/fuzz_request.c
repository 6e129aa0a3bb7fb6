/*
 * fuzz_request.c — libFuzzer target for everything that decodes client bytes:
 * the store's request decoders (every write through store_apply, every read through
 * store_read, setWatches), the log entry decoder and the jute primitives.
 *
 * Input: byte 0 picks the opcode from the table, byte 1 picks apply/read, the rest is
 * the request body exactly as a client would send it after the RequestHeader. The
 * store persists across inputs (as a server's would), with one live session, so a
 * later input can hit nodes an earlier one created. Any crash, sanitizer report or
 * assertion is a bug: bad input must only ever produce an error code.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/jute.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int32_t ops[] = {
	ZK_OP_CREATE, ZK_OP_DELETE, ZK_OP_EXISTS, ZK_OP_GET_DATA, ZK_OP_SET_DATA, ZK_OP_GET_ACL, ZK_OP_SET_ACL,
	ZK_OP_GET_CHILDREN, ZK_OP_SYNC, ZK_OP_GET_CHILDREN2, ZK_OP_CHECK, ZK_OP_MULTI, ZK_OP_CREATE2,
	ZK_OP_CREATE_CONTAINER, ZK_OP_CREATE_TTL, ZK_OP_MULTI_READ, ZK_OP_GET_EPHEMERALS,
	ZK_OP_GET_ALL_CHILDREN_NUMBER, ZK_OP_FILTERED_LIST, ZK_OP_CHECK_NOT_EXISTS, ZK_OP_CREATE_IF_NOT_EXISTS,
	ZK_OP_REMOVE_RECURSIVE, ZK_OP_SET_WATCHES, ZK_OP_SET_WATCHES2, ZK_OP_CLOSE_SESSION, 999,
	STORE_OP_CHECK_STAT, STORE_OP_TRY_REMOVE, ZK_OP_DELETE_CONTAINER, ZK_OP_ADD_WATCH, ZK_OP_CHECK_WATCHES,
	ZK_OP_REMOVE_WATCHES,
};

static struct store *store;
static int64_t zxid;

static void on_event(void *ctx, uint64_t watcher, int32_t type, const char *path, size_t path_len, int64_t z)
{
	(void)ctx;
	(void)watcher;
	(void)type;
	(void)z;
	if (path_len)
		(void)(volatile char)path[path_len - 1];
}

static void session_open(void)
{
	uint8_t body[24];
	struct jute_writer w = { body, 0, sizeof body, sizeof body, 0 };
	jute_write_int(&w, 10000);
	jute_write_buffer(&w, "0123456789abcdef", 16);
	struct jute_writer out;
	jute_writer_init(&out, 1 << 20);
	struct store_txn txn = { ++zxid, 1000, 7, ZK_OP_CREATE_SESSION, body, w.len, NULL };
	store_apply(store, &txn, &out, on_event, NULL);
	jute_writer_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!store) {
		struct store_config cfg = { .config_text = "", .keeper_api = true };
		store = store_create(&cfg);
		session_open();
	}
	if (size < 2)
		return 0;
	int32_t op = ops[data[0] % (sizeof ops / sizeof ops[0])];
	bool as_read = data[1] & 1;
	const uint8_t *body = data + 2;
	size_t len = size - 2;
	struct jute_writer out;
	jute_writer_init(&out, 1 << 20);
	struct zk_id ids[1] = { { { (const uint8_t *)"digest", 6 }, { (const uint8_t *)"u:p", 3 } } };
	struct store_auth auth = { ids, 1, false };
	if (op == ZK_OP_SET_WATCHES || op == ZK_OP_SET_WATCHES2) {
		store_set_watches(store, 1, op, body, len, on_event, NULL);
		store_watcher_drop(store, 1);
	} else if (op == ZK_OP_ADD_WATCH) {
		store_add_watch(store, 1, body, len);
	} else if (op == ZK_OP_CHECK_WATCHES || op == ZK_OP_REMOVE_WATCHES) {
		store_remove_watches(store, 1, op, body, len);
		if (as_read)
			store_watcher_drop(store, 1);
	} else if (as_read) {
		store_read(store, 7, 1, &auth, op, body, len, &out, NULL);
	} else {
		zxid++;
		struct store_txn txn = { zxid, 1000 + zxid, 7, op, body, len, &auth };
		store_apply(store, &txn, &out, on_event, NULL);
		if (op == ZK_OP_CLOSE_SESSION)
			session_open();
	}
	struct rk_entry e;
	entry_decode(&e, data, size);
	store_path_valid((const char *)data, size);
	jute_writer_free(&out);
	return 0;
}
