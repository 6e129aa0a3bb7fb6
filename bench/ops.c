/*
 * ops.c — what a bench session sends and what it accepts back: building one workload
 * request from the mix (create, set, get, exists, list, children, delete, multi) and
 * checking its reply exactly (engine.c, invariant 2).
 *
 * Reply checks: err as expected, body layout, no trailing bytes, create paths (the
 * name sent, or prefix + 10 digits when sequential), get values (workload.h format of
 * the key asked for), list sizes (the list node's child count), multi results per op.
 *
 * Thread: the engine thread that owns the connection.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "bench/engine_int.h"
#include "bench/request.h"

static unsigned err_slot_of(int32_t code)
{
	if (code <= 0 && code > -(int32_t)BENCH_ERR_SERVER_SLOTS)
		return (unsigned)-code;
	return BENCH_ERR_VERIFY;
}

/* ---- building requests --------------------------------------------------------- */

static size_t created_path(const struct conn *c, char *out, uint32_t counter)
{
	memcpy(out, c->prefix, c->prefix_len);
	size_t n = c->prefix_len;
	if (c->t->cfg->create_sequential) {
		int w = snprintf(out + n, BENCH_PATH_BYTES_MAX - n, "%010u", counter);
		assert(w == 10);
		return n + 10;
	}
	return n + bench_u32_format(out + n, counter);
}

static size_t key_path(const struct engine_thread *t, char *out, uint32_t key)
{
	memcpy(out, t->key_prefix, t->key_prefix_len);
	return t->key_prefix_len + bench_u32_format(out + t->key_prefix_len, key);
}

static int32_t create_flags(const struct bench_config *cfg)
{
	return (cfg->create_ephemeral ? ZK_CREATE_EPHEMERAL : 0) | (cfg->create_sequential ? ZK_CREATE_PERSISTENT_SEQUENTIAL : 0);
}

/* The path a create is sent with: the prefix alone when the server adds the sequence. */
static size_t create_request_path(struct conn *c, char *out, uint32_t *counter_out)
{
	uint32_t counter = c->create_counter++;
	*counter_out = counter;
	if (c->t->cfg->create_sequential) {
		memcpy(out, c->prefix, c->prefix_len);
		return c->prefix_len;
	}
	if (c->deletable_count < BENCH_DELETABLE_MAX)
		c->deletable[c->deletable_count++] = counter;
	return created_path(c, out, counter);
}

static void issue_multi(struct conn *c, struct req_slot *s)
{
	struct engine_thread *t = c->t;
	const struct bench_config *cfg = t->cfg;
	struct jute_writer *w = &c->out[0];
	char path[BENCH_PATH_BYTES_MAX];
	uint32_t span = cfg->multi_max - cfg->multi_min + 1;
	uint32_t count = cfg->multi_min + bench_rng_below(&c->rng, span);
	assert(count >= 1 && count <= BENCH_MULTI_OPS_MAX);
	bool with_create = bench_rng_next(&c->rng) & 1;
	size_t start = request_multi_begin(w, s->xid);
	s->multi_count = (uint8_t)count;
	uint32_t first_key = bench_rng_below(&c->rng, cfg->keys);
	for (uint32_t i = 0; i < count; i++) {
		if (i == 0 && with_create) {
			size_t len = create_request_path(c, path, &s->counter);
			bench_value_fill(t->value, cfg->value_size, s->counter, 0);
			request_multi_create(w, path, len, t->value, cfg->value_size, create_flags(cfg));
			s->multi_types[i] = ZK_OP_CREATE;
		} else if (i == 0) {
			/* check+set of the same key: ClickHouse's "write if unchanged" shape */
			request_multi_check(w, path, key_path(t, path, first_key), -1);
			s->multi_types[i] = ZK_OP_CHECK;
		} else {
			uint32_t key = (i == 1 && !with_create) ? first_key : bench_rng_below(&c->rng, cfg->keys);
			bench_value_fill(t->value, cfg->value_size, key, ++c->stamp);
			request_multi_set(w, path, key_path(t, path, key), t->value, cfg->value_size, -1);
			s->multi_types[i] = ZK_OP_SET_DATA;
		}
	}
	request_multi_end(w, start);
}

/* Sends one workload request on c, intended at intended_ns. */
void conn_issue(struct conn *c, uint64_t intended_ns)
{
	struct engine_thread *t = c->t;
	const struct bench_config *cfg = t->cfg;
	struct jute_writer *w = &c->out[0];
	char path[BENCH_PATH_BYTES_MAX];
	size_t len;
	enum bench_op op = bench_mix_draw(&cfg->mix, &c->rng);
	struct req_slot *s = slot_push(c, intended_ns, SLOT_OP);
	s->op = (uint8_t)op;
	switch (op) {
	case BENCH_OP_CREATE:
		len = create_request_path(c, path, &s->key);
		bench_value_fill(t->value, cfg->value_size, s->key, 0);
		request_write_create(w, s->xid, path, len, t->value, cfg->value_size, create_flags(cfg));
		break;
	case BENCH_OP_SET:
		s->key = bench_rng_below(&c->rng, cfg->keys);
		bench_value_fill(t->value, cfg->value_size, s->key, ++c->stamp);
		request_write_set(w, s->xid, path, key_path(t, path, s->key), t->value, cfg->value_size, -1);
		break;
	case BENCH_OP_GET:
		s->key = bench_rng_below(&c->rng, cfg->keys);
		request_write_path_watch(w, s->xid, ZK_OP_GET_DATA, path, key_path(t, path, s->key));
		break;
	case BENCH_OP_EXISTS:
		s->key = bench_rng_below(&c->rng, cfg->keys);
		request_write_path_watch(w, s->xid, ZK_OP_EXISTS, path, key_path(t, path, s->key));
		break;
	case BENCH_OP_LIST:
		request_write_path_watch(w, s->xid, ZK_OP_GET_CHILDREN2, t->list_path, t->list_path_len);
		break;
	case BENCH_OP_CHILDREN:
		request_write_path_watch(w, s->xid, ZK_OP_GET_CHILDREN, t->list_path, t->list_path_len);
		break;
	case BENCH_OP_DELETE:
		if (c->deletable_count > 0) {
			s->key = c->deletable[--c->deletable_count];
			len = created_path(c, path, s->key);
		} else {
			/* Nothing of ours to delete yet: delete a name that never exists. */
			s->expect_nonode = 1;
			len = (size_t)snprintf(path, sizeof(path), "%s/c/absent", cfg->root);
		}
		request_write_delete(w, s->xid, path, len, -1);
		break;
	case BENCH_OP_MULTI:
		issue_multi(c, s);
		break;
	case BENCH_OP_COUNT:
		assert(0);
		break;
	}
	conn_mark_dirty(c);
}

/* ---- checking replies ---------------------------------------------------------- */

/* Checks a create's returned path; records the sequence number in sequential mode. */
static bool check_created_path(struct conn *c, struct jute_bytes got, uint32_t counter)
{
	if (got.len < 0)
		return false;
	if (!c->t->cfg->create_sequential) {
		char want[BENCH_PATH_BYTES_MAX];
		size_t len = created_path(c, want, counter);
		return jute_bytes_eq(got, want, len);
	}
	if ((size_t)got.len != c->prefix_len + 10 || memcmp(got.data, c->prefix, c->prefix_len) != 0)
		return false;
	int64_t seq = 0;
	for (size_t i = c->prefix_len; i < (size_t)got.len; i++) {
		if (got.data[i] < '0' || got.data[i] > '9')
			return false;
		seq = seq * 10 + (got.data[i] - '0');
	}
	if (seq > c->seq_max)
		c->seq_max = seq;
	if (c->deletable_count < BENCH_DELETABLE_MAX)
		c->deletable[c->deletable_count++] = (uint32_t)seq;
	return true;
}

static bool check_list(const struct engine_thread *t, struct jute_reader *r, bool with_stat)
{
	int32_t count = jute_read_vector_count(r, 4);
	for (int32_t i = 0; i < count; i++)
		(void)jute_read_string(r);
	if (with_stat) {
		struct zk_stat st;
		jute_read_stat(r, &st);
		if (st.num_children != (int32_t)t->cfg->list_children)
			return false;
	}
	return count == (int32_t)t->cfg->list_children;
}

static unsigned check_multi(struct conn *c, const struct req_slot *s, struct jute_reader *r)
{
	unsigned result = 0;
	for (uint32_t i = 0; i < s->multi_count; i++) {
		int32_t type = jute_read_int(r);
		(void)jute_read_bool(r);
		int32_t err = jute_read_int(r);
		if (type == ZK_OP_ERROR) {
			int32_t code = jute_read_int(r);
			/* The multi's error is the first code that is neither OK nor "rolled back". */
			if (!result && code != ZK_OK && code != ZK_RUNTIMEINCONSISTENCY)
				result = err_slot_of(code);
			continue;
		}
		if (type != s->multi_types[i] || err != 0)
			return BENCH_ERR_VERIFY;
		struct zk_stat st;
		switch (type) {
		case ZK_OP_CREATE:
			if (!check_created_path(c, jute_read_string(r), s->counter))
				return BENCH_ERR_VERIFY;
			break;
		case ZK_OP_SET_DATA:
			jute_read_stat(r, &st);
			if (st.data_length != (int32_t)c->t->cfg->value_size)
				return BENCH_ERR_VERIFY;
			break;
		case ZK_OP_CHECK:
			break;
		default:
			return BENCH_ERR_VERIFY;
		}
	}
	int32_t end_type = jute_read_int(r);
	bool end_done = jute_read_bool(r);
	int32_t end_err = jute_read_int(r);
	if (end_type != -1 || !end_done || end_err != -1)
		return BENCH_ERR_VERIFY;
	if (!result && s->multi_count && jute_reader_ok(r) && r->pos == r->len)
		return 0;
	return result ? result : BENCH_ERR_VERIFY;
}

/* 0 when the reply is what the request must get, else an error slot. */
unsigned reply_check(struct conn *c, const struct req_slot *s, int32_t err, struct jute_reader *r)
{
	const struct bench_config *cfg = c->t->cfg;
	struct zk_stat st;
	if (s->expect_nonode)
		return err == ZK_NONODE && r->pos == r->len ? 0 : err ? err_slot_of(err) : BENCH_ERR_VERIFY;
	if (err != ZK_OK)
		return err_slot_of(err);
	bool good = true;
	switch ((enum bench_op)s->op) {
	case BENCH_OP_CREATE:
		good = check_created_path(c, jute_read_string(r), s->key);
		break;
	case BENCH_OP_SET:
		jute_read_stat(r, &st);
		good = st.data_length == (int32_t)cfg->value_size;
		break;
	case BENCH_OP_GET: {
		struct jute_bytes data = jute_read_buffer(r);
		jute_read_stat(r, &st);
		good = jute_reader_ok(r) && bench_value_check(data.data, data.len, cfg->value_size, s->key) == 0 &&
		       st.data_length == (int32_t)cfg->value_size;
		break;
	}
	case BENCH_OP_EXISTS:
		jute_read_stat(r, &st);
		good = st.data_length == (int32_t)cfg->value_size;
		break;
	case BENCH_OP_LIST:
		good = check_list(c->t, r, true);
		break;
	case BENCH_OP_CHILDREN:
		good = check_list(c->t, r, false);
		break;
	case BENCH_OP_DELETE:
		break;
	case BENCH_OP_MULTI:
		return check_multi(c, s, r);
	case BENCH_OP_COUNT:
		assert(0);
		break;
	}
	return good && jute_reader_ok(r) && r->pos == r->len ? 0 : BENCH_ERR_VERIFY;
}
