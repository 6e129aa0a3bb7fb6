/*
 * test_store_concurrency.c — one applier thread creating and deleting while two
 * reader threads list children and check invariants: a listed child exists, a
 * parent's Stat agrees with the list it came with, multi creates are all-or-nothing.
 * Short and bounded so it runs under ASan and TSan.
 */
#include <stdatomic.h>

#include "store_test_util.h"

#define ROUNDS 1500
#define KIDS 8

static atomic_bool stop;
static atomic_int violations;
static atomic_long reads_done;

static void build_create(struct jute_writer *w, const char *path)
{
	jute_writer_reset(w);
	t_create_fields(w, path, "d", 0);
}

static void *applier(void *arg)
{
	struct jute_writer body, out;
	jute_writer_init(&body, 1 << 16);
	jute_writer_init(&out, 1 << 16);
	int64_t zxid = T.zxid;
	/* ROUNDS at least, and on until the readers have read a while alongside: on a
	 * loaded machine the applier could finish before a reader first ran. */
	for (int round = 0; round < ROUNDS || (atomic_load(&reads_done) < 200 && round < 100 * ROUNDS); round++) {
		char p[64];
		int k = round % KIDS;
		snprintf(p, sizeof p, "/c/k%d", k);
		build_create(&body, p);
		struct store_txn txn = { .zxid = ++zxid, .time_ms = round, .session_id = T_SESSION, .opcode = ZK_OP_CREATE,
					 .body = body.buf, .body_len = body.len };
		jute_writer_reset(&out);
		int32_t rc = store_apply(T.s, &txn, &out, NULL, NULL);
		if (rc != ZK_OK && rc != ZK_NODEEXISTS)
			atomic_fetch_add(&violations, 1);
		/* a multi creating two siblings: readers must see both or neither */
		jute_writer_reset(&body);
		for (int j = 0; j < 2; j++) {
			jute_write_int(&body, ZK_OP_CREATE);
			jute_write_bool(&body, false);
			jute_write_int(&body, -1);
			snprintf(p, sizeof p, "/pair/x%d", j);
			t_create_fields(&body, p, "", 0);
		}
		jute_write_int(&body, -1);
		jute_write_bool(&body, true);
		jute_write_int(&body, -1);
		txn.zxid = ++zxid;
		txn.opcode = ZK_OP_MULTI;
		txn.body = body.buf;
		txn.body_len = body.len;
		jute_writer_reset(&out);
		rc = store_apply(T.s, &txn, &out, NULL, NULL);
		if (rc != ZK_OK)
			atomic_fetch_add(&violations, 1);
		/* delete both (again atomically) and one kid */
		jute_writer_reset(&body);
		for (int j = 0; j < 2; j++) {
			jute_write_int(&body, ZK_OP_DELETE);
			jute_write_bool(&body, false);
			jute_write_int(&body, -1);
			snprintf(p, sizeof p, "/pair/x%d", j);
			t_str(&body, p);
			jute_write_int(&body, -1);
		}
		jute_write_int(&body, -1);
		jute_write_bool(&body, true);
		jute_write_int(&body, -1);
		txn.zxid = ++zxid;
		txn.body = body.buf;
		txn.body_len = body.len;
		jute_writer_reset(&out);
		store_apply(T.s, &txn, &out, NULL, NULL);
		if ((round * 7) % 3 == 0) {
			snprintf(p, sizeof p, "/c/k%d", (round * 5) % KIDS);
			jute_writer_reset(&body);
			t_str(&body, p);
			jute_write_int(&body, -1);
			txn.zxid = ++zxid;
			txn.opcode = ZK_OP_DELETE;
			txn.body = body.buf;
			txn.body_len = body.len;
			jute_writer_reset(&out);
			store_apply(T.s, &txn, &out, NULL, NULL);
		}
	}
	atomic_store(&stop, true);
	jute_writer_free(&body);
	jute_writer_free(&out);
	return arg;
}

static void *reader(void *arg)
{
	uint64_t watcher = (uint64_t)(uintptr_t)arg;
	struct jute_writer req, out, out2;
	jute_writer_init(&req, 4096);
	jute_writer_init(&out, 1 << 16);
	jute_writer_init(&out2, 4096);
	while (!atomic_load(&stop)) {
		/* getChildren2 /c: count in the vector == numChildren in the Stat */
		jute_writer_reset(&req);
		t_str(&req, "/c");
		jute_write_bool(&req, (watcher & 1) != 0);
		jute_writer_reset(&out);
		if (store_read(T.s, T_SESSION, watcher, NULL, ZK_OP_GET_CHILDREN2, req.buf, req.len, &out, NULL) != ZK_OK) {
			atomic_fetch_add(&violations, 1);
			continue;
		}
		struct jute_reader r;
		jute_reader_init(&r, out.buf, out.len);
		int32_t n = jute_read_vector_count(&r, 4);
		char names[KIDS][16];
		int got = 0;
		for (int32_t i = 0; i < n; i++) {
			struct jute_bytes b = jute_read_string(&r);
			if (got < KIDS && b.len > 0 && b.len < 16) {
				memcpy(names[got], b.data, (size_t)b.len);
				names[got][b.len] = '\0';
				got++;
			}
		}
		struct zk_stat st;
		jute_read_stat(&r, &st);
		if (!jute_reader_ok(&r) || st.num_children != n || n > KIDS || got != n)
			atomic_fetch_add(&violations, 1);
		/*
		 * Every listed child exists, unless a later txn deleted it: then the
		 * parent's pzxid must have moved past the one read with the list.
		 */
		for (int i = 0; i < got; i++) {
			char path[64];
			snprintf(path, sizeof path, "/c/%.15s", names[i]);
			jute_writer_reset(&req);
			t_str(&req, path);
			jute_write_bool(&req, false);
			jute_writer_reset(&out2);
			int32_t rc = store_read(T.s, T_SESSION, 0, NULL, ZK_OP_EXISTS, req.buf, req.len, &out2, NULL);
			if (rc == ZK_OK)
				continue;
			jute_writer_reset(&req);
			t_str(&req, "/c");
			jute_write_bool(&req, false);
			jute_writer_reset(&out2);
			struct zk_stat now;
			struct jute_reader r2;
			store_read(T.s, T_SESSION, 0, NULL, ZK_OP_EXISTS, req.buf, req.len, &out2, NULL);
			jute_reader_init(&r2, out2.buf, out2.len);
			jute_read_stat(&r2, &now);
			if (rc != ZK_NONODE || now.pzxid <= st.pzxid)
				atomic_fetch_add(&violations, 1);
		}
		/* multi atomicity: /pair has 0 or 2 children, never 1 */
		jute_writer_reset(&req);
		t_str(&req, "/pair");
		jute_write_bool(&req, false);
		jute_writer_reset(&out2);
		if (store_read(T.s, T_SESSION, watcher, NULL, ZK_OP_GET_CHILDREN, req.buf, req.len, &out2, NULL) != ZK_OK ||
		    (jute_get_be32(out2.buf) != 0 && jute_get_be32(out2.buf) != 2))
			atomic_fetch_add(&violations, 1);
		atomic_fetch_add(&reads_done, 1);
	}
	jute_writer_free(&req);
	jute_writer_free(&out);
	jute_writer_free(&out2);
	store_watcher_drop(T.s, watcher);
	return NULL;
}

Test(store_concurrency, readers_never_see_half_applied_txns, .init = t_setup, .fini = t_teardown, .timeout = 60)
{
	cr_assert_eq(t_create("/c", "", 0), ZK_OK);
	cr_assert_eq(t_create("/pair", "", 0), ZK_OK);
	atomic_store(&stop, false);
	atomic_store(&violations, 0);
	atomic_store(&reads_done, 0);
	pthread_t a, r1, r2;
	pthread_create(&r1, NULL, reader, (void *)(uintptr_t)1);
	pthread_create(&r2, NULL, reader, (void *)(uintptr_t)2);
	pthread_create(&a, NULL, applier, NULL);
	pthread_join(a, NULL);
	pthread_join(r1, NULL);
	pthread_join(r2, NULL);
	cr_assert_eq(atomic_load(&violations), 0);
	cr_assert_gt(atomic_load(&reads_done), 0);
}
