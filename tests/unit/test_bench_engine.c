/*
 * test_bench_engine.c — the engine's reply checking, against a scripted fake server on
 * 127.0.0.1: a get answered with another key's value must count as BADREPLY, a reply
 * out of xid order as BADXID (and the connection is dropped), a correct one as ok; with
 * --reconnect a session whose server closes moves to the next server with its session
 * id, password and last zxid, and the timeline counts every acknowledgement.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/options.h"
#include "core/jute.h"
#include "core/zk_proto.h"

enum fake_mode {
	FAKE_WRONG_VALUE_ON_EVEN_XID,
	FAKE_SWAP_SECOND_PAIR,
};

struct fake_server {
	int listen_fd;
	uint16_t port;
	enum fake_mode mode;
	uint32_t value_size;
	pthread_t tid;
};

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + done, len - done, 0);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int read_frame(int fd, uint8_t *buf, size_t cap)
{
	uint8_t len_bytes[4];
	if (read_full(fd, len_bytes, 4))
		return -1;
	uint32_t len = jute_get_be32(len_bytes);
	if (len > cap || read_full(fd, buf, len))
		return -1;
	return (int)len;
}

static void send_frame(int fd, struct jute_writer *w)
{
	jute_patch_int(w, 0, (int32_t)(w->len - 4));
	/* No assertion here: this runs on the fake server's thread, and the bench may
	 * already have dropped the connection (that is what one test checks). */
	(void)send(fd, w->buf, w->len, MSG_NOSIGNAL);
}

static void *fake_main(void *arg)
{
	struct fake_server *fs = arg;
	int fd = accept(fs->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	static uint8_t buf[1 << 16];
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	uint8_t passwd[16] = { 0 };
	if (read_frame(fd, buf, sizeof(buf)) != 45)
		goto out;
	jute_write_int(&w, 0);
	jute_write_int(&w, 0);
	jute_write_int(&w, 30000);
	jute_write_long(&w, 0x1234);
	jute_write_buffer(&w, passwd, 16);
	jute_write_bool(&w, false);
	send_frame(fd, &w);
	uint8_t *value = calloc(1, fs->value_size);
	struct jute_writer held; /* FAKE_SWAP_SECOND_PAIR: the reply held back */
	jute_writer_init(&held, 1 << 20);
	uint32_t gets = 0;
	for (;;) {
		int len = read_frame(fd, buf, sizeof(buf));
		if (len < 8)
			break;
		struct jute_reader r;
		jute_reader_init(&r, buf, (size_t)len);
		int32_t xid = jute_read_int(&r);
		int32_t op = jute_read_int(&r);
		jute_writer_reset(&w);
		jute_write_int(&w, 0);
		jute_write_int(&w, xid);
		jute_write_long(&w, 1);
		jute_write_int(&w, 0);
		if (op == ZK_OP_GET_DATA) {
			struct jute_bytes path = jute_read_string(&r);
			uint32_t key = 0;
			const uint8_t *slash = memrchr(path.data, '/', (size_t)path.len);
			for (const uint8_t *p = slash + 1; p < path.data + path.len; p++)
				key = key * 10 + (uint32_t)(*p - '0');
			bool wrong = fs->mode == FAKE_WRONG_VALUE_ON_EVEN_XID && xid % 2 == 0;
			bench_value_fill(value, fs->value_size, wrong ? key + 1 : key, 5);
			jute_write_buffer(&w, value, (int32_t)fs->value_size);
			struct zk_stat st = { .data_length = (int32_t)fs->value_size };
			jute_write_stat(&w, &st);
			gets++;
			if (fs->mode == FAKE_SWAP_SECOND_PAIR && gets == 3) {
				jute_writer_reset(&held);
				jute_write_raw(&held, w.buf, w.len);
				continue; /* answer it after the next one */
			}
		} else if (op == ZK_OP_PING) {
			/* header already says xid -2 */
		} else if (op == ZK_OP_CLOSE_SESSION) {
			send_frame(fd, &w);
			break;
		}
		send_frame(fd, &w);
		if (held.len) {
			send_frame(fd, &held);
			jute_writer_reset(&held);
		}
	}
	free(value);
	jute_writer_free(&held);
out:
	jute_writer_free(&w);
	close(fd);
	return NULL;
}

static void fake_start(struct fake_server *fs, enum fake_mode mode, uint32_t value_size)
{
	fs->mode = mode;
	fs->value_size = value_size;
	fs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fs->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fs->listen_fd, 4), 0);
	socklen_t alen = sizeof(a);
	getsockname(fs->listen_fd, (struct sockaddr *)&a, &alen);
	fs->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&fs->tid, NULL, fake_main, fs), 0);
}

static void config_for(struct bench_config *cfg, const struct fake_server *fs)
{
	bench_options_defaults(cfg);
	cfg->servers[0].addr.sin_port = htons(fs->port);
	cfg->threads = 1;
	cfg->sessions = 1;
	cfg->inflight = 4;
	cfg->warmup_s = 0;
	cfg->duration_s = 0.3;
	cfg->keys = 50;
	cfg->quiet = true;
	cr_assert_eq(bench_mix_parse(&cfg->mix, "get=1"), 0);
}

static uint64_t total_errors(const struct bench_op_stats *s)
{
	uint64_t n = 0;
	for (int e = 0; e < BENCH_ERR_SLOTS; e++)
		n += s->errors[e];
	return n;
}

Test(bench_engine, wrong_value_counts_as_bad_reply)
{
	struct fake_server fs;
	fake_start(&fs, FAKE_WRONG_VALUE_ON_EVEN_XID, 100);
	struct bench_config cfg;
	config_for(&cfg, &fs);
	struct bench_result res;
	cr_assert_eq(bench_run(&cfg, 1, 7, &res), 0);
	pthread_join(fs.tid, NULL);
	close(fs.listen_fd);
	const struct bench_op_stats *get = &res.ops[BENCH_OP_GET];
	cr_assert_eq(res.sessions_connected, 1);
	cr_assert_eq(res.connections_lost, 0);
	cr_assert_gt(get->ok, 100);
	/* xids alternate odd (right) and even (wrong), so the two counts differ by at most one. */
	cr_assert_leq(get->ok > get->errors[BENCH_ERR_VERIFY] ? get->ok - get->errors[BENCH_ERR_VERIFY]
							   : get->errors[BENCH_ERR_VERIFY] - get->ok,
		      1);
	cr_assert_eq(total_errors(get), get->errors[BENCH_ERR_VERIFY]);
	cr_assert_eq(get->latency.total, get->ok);
	bench_result_free(&res);
}

Test(bench_engine, out_of_order_reply_is_bad_xid_and_drops_the_connection)
{
	struct fake_server fs;
	fake_start(&fs, FAKE_SWAP_SECOND_PAIR, 100);
	struct bench_config cfg;
	config_for(&cfg, &fs);
	struct bench_result res;
	cr_assert_eq(bench_run(&cfg, 1, 8, &res), 0);
	pthread_join(fs.tid, NULL);
	close(fs.listen_fd);
	const struct bench_op_stats *get = &res.ops[BENCH_OP_GET];
	cr_assert_eq(res.connections_lost, 1);
	cr_assert_eq(get->ok, 2); /* the first two replies were in order */
	cr_assert_eq(get->errors[BENCH_ERR_XID], 1);
	/* The rest of the window (3 still in flight) died with the connection. */
	cr_assert_eq(get->errors[BENCH_ERR_CONNLOSS], 3, "connloss %llu", (unsigned long long)get->errors[BENCH_ERR_CONNLOSS]);
	bench_result_free(&res);
}

/*
 * Two scripted servers for --reconnect: the first (index 0) grants session 0x1234 with
 * password 1..16, answers 5 gets with zxid 77 and closes; the second records the
 * ConnectRequest it gets and serves gets (zxid 78) until closeSession.
 */
struct reconnect_server {
	int listen_fd;
	uint16_t port;
	bool first;
	pthread_t tid;
	/* what the second server saw */
	int connect_len;
	int64_t last_zxid;
	int64_t session_id;
	uint8_t passwd[16];
	uint32_t gets;
};

static void *reconnect_main(void *arg)
{
	struct reconnect_server *rs = arg;
	int fd = accept(rs->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	static __thread uint8_t buf[1 << 16];
	struct jute_writer w;
	jute_writer_init(&w, 1 << 20);
	uint8_t passwd[16];
	for (int i = 0; i < 16; i++)
		passwd[i] = (uint8_t)(i + 1);
	int len = read_frame(fd, buf, sizeof(buf));
	if (!rs->first) {
		struct jute_reader r;
		jute_reader_init(&r, buf, len > 0 ? (size_t)len : 0);
		rs->connect_len = len;
		(void)jute_read_int(&r); /* protocolVersion */
		rs->last_zxid = jute_read_long(&r);
		(void)jute_read_int(&r); /* timeout */
		rs->session_id = jute_read_long(&r);
		struct jute_bytes pw = jute_read_buffer(&r);
		if (jute_reader_ok(&r) && pw.len == 16)
			memcpy(rs->passwd, pw.data, 16);
	}
	jute_write_int(&w, 0);
	jute_write_int(&w, 0);
	jute_write_int(&w, 30000);
	jute_write_long(&w, 0x1234);
	jute_write_buffer(&w, passwd, 16);
	jute_write_bool(&w, false);
	send_frame(fd, &w);
	uint8_t value[100];
	/* Bounded: the first server stops after 5 gets; the second when the bench closes. */
	for (;;) {
		len = read_frame(fd, buf, sizeof(buf));
		if (len < 8)
			break;
		struct jute_reader r;
		jute_reader_init(&r, buf, (size_t)len);
		int32_t xid = jute_read_int(&r);
		int32_t op = jute_read_int(&r);
		jute_writer_reset(&w);
		jute_write_int(&w, 0);
		jute_write_int(&w, xid);
		jute_write_long(&w, rs->first ? 77 : 78);
		jute_write_int(&w, 0);
		if (op == ZK_OP_GET_DATA) {
			struct jute_bytes path = jute_read_string(&r);
			uint32_t key = 0;
			const uint8_t *slash = memrchr(path.data, '/', (size_t)path.len);
			for (const uint8_t *p = slash + 1; p < path.data + path.len; p++)
				key = key * 10 + (uint32_t)(*p - '0');
			bench_value_fill(value, sizeof(value), key, 5);
			jute_write_buffer(&w, value, (int32_t)sizeof(value));
			struct zk_stat st = { .data_length = (int32_t)sizeof(value) };
			jute_write_stat(&w, &st);
			rs->gets++;
		}
		send_frame(fd, &w);
		if (op == ZK_OP_CLOSE_SESSION || (rs->first && rs->gets == 5))
			break;
	}
	/* Close gracefully: a close() with unread requests would send RST, and the bench
	 * could lose the last reply with it. Our FIN first; the bench's EOF (it drops the
	 * connection) ends the drain; bounded by the receive timeout. */
	shutdown(fd, SHUT_WR);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	jute_writer_free(&w);
	close(fd);
	return NULL;
}

static void reconnect_start(struct reconnect_server *rs, bool first)
{
	memset(rs, 0, sizeof(*rs));
	rs->first = first;
	rs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(rs->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(rs->listen_fd, 4), 0);
	socklen_t alen = sizeof(a);
	getsockname(rs->listen_fd, (struct sockaddr *)&a, &alen);
	rs->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&rs->tid, NULL, reconnect_main, rs), 0);
}

Test(bench_engine, reconnect_resumes_the_session_on_the_next_server)
{
	struct reconnect_server a, b;
	reconnect_start(&a, true);
	reconnect_start(&b, false);
	struct bench_config cfg;
	bench_options_defaults(&cfg);
	const char *servers[] = { "bench", "--servers", NULL, NULL };
	char list[64];
	snprintf(list, sizeof(list), "127.0.0.1:%u,127.0.0.1:%u", a.port, b.port);
	servers[2] = list;
	char err[128];
	cr_assert_eq(bench_options_parse(&cfg, 3, (char **)servers, err, sizeof(err)), 0, "%s", err);
	cfg.threads = 1;
	cfg.inflight = 4;
	cfg.warmup_s = 0;
	cfg.duration_s = 0.3;
	cfg.keys = 50;
	cfg.quiet = true;
	cfg.reconnect = true;
	snprintf(cfg.timeline_path, sizeof(cfg.timeline_path), "unused: bench_run only fills res.timeline");
	cr_assert_eq(bench_mix_parse(&cfg.mix, "get=1"), 0);
	struct bench_result res;
	cr_assert_eq(bench_run(&cfg, 1, 9, &res), 0);
	pthread_join(a.tid, NULL);
	pthread_join(b.tid, NULL);
	close(a.listen_fd);
	close(b.listen_fd);
	const struct bench_op_stats *get = &res.ops[BENCH_OP_GET];
	cr_assert_eq(res.sessions_connected, 1);
	cr_assert_eq(res.connections_lost, 1);
	cr_assert_eq(res.reconnects, 1);
	cr_assert_eq(res.sessions_expired, 0);
	/* The 4 requests in flight when the first server closed are lost, none other. */
	cr_assert_eq(get->errors[BENCH_ERR_CONNLOSS], 4);
	cr_assert_eq(total_errors(get), 4);
	/* Every get answered counts, except the few issued as the window closed (in flight: 4). */
	cr_assert_leq(get->ok, 5 + b.gets, "ok %llu, second server %u", (unsigned long long)get->ok, b.gets);
	cr_assert_geq(get->ok + 4, 5 + b.gets, "ok %llu, second server %u", (unsigned long long)get->ok, b.gets);
	cr_assert_gt(b.gets, 10);
	/* The second server was asked to resume the session the first one granted. */
	cr_assert_eq(b.connect_len, 45);
	cr_assert_eq(b.last_zxid, 77);
	cr_assert_eq(b.session_id, 0x1234);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(b.passwd[i], i + 1);
	/* The timeline saw every reply (window or not) and every loss. */
	uint64_t reads = 0, writes = 0, errors = 0;
	for (uint32_t i = 0; i < res.timeline.buckets; i++) {
		reads += res.timeline.reads[i];
		writes += res.timeline.writes[i];
		errors += res.timeline.errors[i];
	}
	cr_assert_eq(reads, 5 + b.gets, "reads %llu, ok %llu, second server %u", (unsigned long long)reads, (unsigned long long)get->ok, b.gets);
	cr_assert_eq(writes, 0);
	cr_assert_eq(errors, 4);
	bench_result_free(&res);
}
