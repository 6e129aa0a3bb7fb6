/*
 * test_pipeline_leaderless.c — the raft thread's loop as one of three voters whose two
 * peers never answer, driven through the hub as a worker would: a real store, a real
 * log, the real core and transport (the peers' ports refuse connections).
 *
 *   - a sync that no leader confirms is given up after PIPE_SYNC_GIVE_UP_MS: its
 *     client gets CONNECTIONLOSS and its connection is closed after the answer;
 *   - a write of that connection queued behind the sync is then refused with
 *     CONNECTIONLOSS too, never proposed (it must not apply after a request its client
 *     was told was lost), while another connection's write keeps waiting for a leader.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/hub.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "raft/pipeline.h"
#include "store/store.h"
#include "tests/unit/pipeline_test_util.h"

#define SESSION 0x77
#define CONN_A 5 /* worker 0, slot 5 */
#define CONN_B 6 /* worker 0, slot 6 */

static char dir[256];
static struct rk_config cfg;
static struct pipe_rig rig;

/* A port nothing listens on now (bound to 0, then closed). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void write_file(const char *name, const char *text)
{
	char path[300];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rk-pipe-ll-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	char conf[1024];
	/* An election timeout far beyond the test: the not-serving rule (two timeouts
	 * without a leader) does not close anything first. */
	snprintf(conf, sizeof conf,
		 "dataDir=%s\nclientPort=%d\nraft.electionTimeoutMs=60000\n"
		 "server.1=127.0.0.1:%d:%d\nserver.2=127.0.0.1:%d:%d\nserver.3=127.0.0.1:%d:%d\n",
		 dir, free_port(), free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
	write_file("zoo.cfg", conf);
	write_file("myid", "1\n");
	char path[300], err[256];
	snprintf(path, sizeof path, "%s/zoo.cfg", dir);
	config_defaults(&cfg);
	cfg.log_prealloc_kb = 4096;
	cr_assert_eq(config_load_file(&cfg, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(config_finalize(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(config_read_myid(&cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(cfg.server_id, 1);
	pipe_rig_start(&rig, &cfg);
}

static void teardown(void)
{
	pipe_rig_stop(&rig);
	config_free(&cfg);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void propose(uint64_t conn_id, int32_t xid, int32_t opcode, const struct jute_writer *body, uint16_t flags)
{
	pipe_rig_propose(&rig, conn_id, SESSION, xid, opcode, body, flags);
}

static struct rk_msg *next_msg_within(int ms)
{
	return pipe_rig_next(&rig, ms);
}

static void body_path(struct jute_writer *w, const char *path, bool create)
{
	jute_writer_init(w, 256);
	jute_write_string(w, path, (int32_t)strlen(path));
	if (!create)
		return;
	jute_write_buffer(w, "d", 1);
	jute_write_int(w, 1); /* world:anyone, all perms */
	jute_write_int(w, ZK_PERM_ALL);
	jute_write_string(w, "world", 5);
	jute_write_string(w, "anyone", 6);
	jute_write_int(w, 0);
}

TestSuite(pipeline_leaderless, .init = setup, .fini = teardown, .timeout = 30);

Test(pipeline_leaderless, an_unconfirmed_sync_is_given_up_and_its_connections_later_writes_refused)
{
	struct jute_writer sync_body, create_a, create_b;
	body_path(&sync_body, "/", false);
	body_path(&create_a, "/a", true);
	body_path(&create_b, "/b", true);
	int64_t t0 = rk_now_us();
	propose(CONN_A, 1, ZK_OP_SYNC, &sync_body, RK_MSG_SYNC);
	propose(CONN_A, 2, ZK_OP_CREATE, &create_a, 0);
	propose(CONN_B, 3, ZK_OP_CREATE, &create_b, 0);

	struct rk_msg *m = next_msg_within(10000);
	cr_assert_not_null(m, "the sync was never given up");
	int64_t waited_ms = (rk_now_us() - t0) / 1000;
	cr_assert_eq(m->kind, RK_MSG_REPLY);
	cr_assert_eq(m->conn_id, CONN_A);
	cr_assert_eq(m->xid, 1);
	cr_assert_eq(m->err, ZK_CONNECTIONLOSS);
	cr_assert(m->flags & RK_MSG_CLOSE_AFTER, "its connection closes after the answer");
	cr_assert(waited_ms >= 3900 && waited_ms < 9000, "given up after %lld ms (rule: 4000)", (long long)waited_ms);
	free(m);

	m = next_msg_within(2000);
	cr_assert_not_null(m, "the write behind the lost sync was not answered");
	cr_assert_eq(m->conn_id, CONN_A);
	cr_assert_eq(m->xid, 2);
	cr_assert_eq(m->err, ZK_CONNECTIONLOSS, "refused, not proposed: err %d", m->err);
	cr_assert(m->flags & RK_MSG_CLOSE_AFTER);
	free(m);

	m = next_msg_within(1000);
	cr_assert_null(m, "another connection's write waits for a leader (got xid %d err %d)", m ? m->xid : 0,
		       m ? m->err : 0);
	struct raft_stats rs;
	raft_pipeline_stats(rig.pipe, &rs);
	cr_assert_eq(rs.last_index, 0, "nothing was logged without a leader");
	jute_writer_free(&sync_body);
	jute_writer_free(&create_a);
	jute_writer_free(&create_b);
}
