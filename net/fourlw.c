/*
 * fourlw.c — see fourlw.h. Answers are built with a memory FILE* (the text is small
 * and 4lw traffic is rare), then handed to the connection's output.
 *
 * Reading other workers' connections: a word like `cons` walks every worker's slot
 * table under that worker's registry_lock (taken by the owner only when a conn is
 * added or freed), so no conn is freed while it is printed. Counters are read racily;
 * they are statistics.
 *
 * gtmk/stmk: ZooKeeper's text trace mask (ZooTrace), a process-wide long there too,
 * kept only so these words answer as ZooKeeper's do: RingKeeper traces nothing by it.
 * stmk is the one word with an argument, the 8 bytes (big-endian long) after it on the
 * stream; the worker hands them over with fourlw_on_arg as they arrive, and the answer
 * (the new mask in decimal) goes out once all 8 are in. ZooKeeper reads them with one
 * non-blocking read and drops the connection when they came in a later segment; here
 * they may come in any number of pieces. A FIN before the 8th byte: no answer, mask
 * unchanged (ZooKeeper's result too). Not whitelisted: the usual refusal at once, and
 * the argument is ignored, as ZooKeeper does.
 */
#include "net/fourlw.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/hub.h"
#include "core/log.h"
#include "net/server.h"
#include "core/msg.h"
#include "net/worker.h"
#include "net/conn.h"
#include "net/stats.h"
#include "core/zk_proto.h"
#include "raft/pipeline.h"
#include "store/store.h"

#define RK_VERSION_STRING "3.8.0-ringkeeper-0.1.0"

static const char *const words[] = {
	"ruok", "srvr", "stat", "conf", "cons", "crst", "srst", "envi", "mntr", "isro", "wchs", "dirs",
	"gtmk", "stmk", /* ZooKeeper's text trace mask */
	/* RingKeeper's admin words (ClickHouse Keeper's names where it has one) */
	"lgif", "rqld", "ydld", "csnp", "uptm", "wchc", "wchp", "dump",
};

/* ZooTrace's default: CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING (2|16|32|256). */
#define FOURLW_TRACE_MASK_DEFAULT 306
static _Atomic int64_t fourlw_trace_mask = FOURLW_TRACE_MASK_DEFAULT;

bool fourlw_is_word(const uint8_t word[4])
{
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (memcmp(word, words[i], 4) == 0)
			return true;
	return false;
}

static void write_version(FILE *f)
{
	/* "yyyy-MM-dd HH:mm UTC": the form go-zookeeper's srvr parser accepts. */
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4] = { 0 };
	int day = 1, year = 1970, hh = 0, mm = 0;
	sscanf(__DATE__, "%3s %d %d", mon, &day, &year);
	sscanf(__TIME__, "%d:%d", &hh, &mm);
	const char *at = strstr(months, mon);
	int month = at ? (int)(at - months) / 3 + 1 : 1;
	fprintf(f, "%s, built on %04d-%02d-%02d %02d:%02d UTC", RK_VERSION_STRING, year, month, day, hh, mm);
}

static const char *op_name(int32_t op)
{
	switch (op) {
	case ZK_OP_CREATE: case ZK_OP_CREATE2: case ZK_OP_CREATE_CONTAINER: case ZK_OP_CREATE_TTL: return "CREA";
	case ZK_OP_DELETE: return "DELE";
	case ZK_OP_EXISTS: return "EXIS";
	case ZK_OP_GET_DATA: return "GETD";
	case ZK_OP_SET_DATA: return "SETD";
	case ZK_OP_GET_ACL: return "GETA";
	case ZK_OP_SET_ACL: return "SETA";
	case ZK_OP_GET_CHILDREN: case ZK_OP_GET_CHILDREN2: return "GETC";
	case ZK_OP_SYNC: return "SYNC";
	case ZK_OP_PING: return "PING";
	case ZK_OP_CHECK: return "CHEC";
	case ZK_OP_MULTI: case ZK_OP_MULTI_READ: return "MULT";
	case ZK_OP_CLOSE_SESSION: return "CLOS";
	case ZK_OP_AUTH: return "AUTH";
	case ZK_OP_SET_WATCHES: case ZK_OP_SET_WATCHES2: return "SETW";
	default: return "NA";
	}
}


const char *fourlw_avg_text(double v, char *buf, size_t size)
{
	if (!(v > 0)) {
		snprintf(buf, size, "0.0");
		return buf;
	}
	long long units = (long long)(v * 10000.0 + 0.5); /* ten-thousandths, HALF_UP */
	if (units > 0 && units < 10) {
		snprintf(buf, size, "%lld.0E-4", units);
		return buf;
	}
	int n = snprintf(buf, size, "%lld.%04lld", units / 10000, units % 10000);
	if (n <= 0 || (size_t)n >= size)
		return buf;
	while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
		buf[--n] = '\0';
	return buf;
}

static void write_srvr_stats(const struct stats_snapshot *st, FILE *f)
{
	char avg[32];
	fprintf(f, "Latency min/avg/max: %llu/%s/%llu\n", (unsigned long long)st->latency_min_ms,
		fourlw_avg_text(st->latency_avg_ms, avg, sizeof avg), (unsigned long long)st->latency_max_ms);
	fprintf(f, "Received: %llu\n", (unsigned long long)st->packets_received);
	fprintf(f, "Sent: %llu\n", (unsigned long long)st->packets_sent);
	fprintf(f, "Connections: %d\n", st->connections);
	fprintf(f, "Outstanding: %lld\n", (long long)st->outstanding);
	fprintf(f, "Zxid: 0x%llx\n", (unsigned long long)st->store.last_zxid);
	fprintf(f, "Mode: %s\n", stats_mode(st));
	fprintf(f, "Node count: %llu\n", (unsigned long long)st->store.node_count);
	if (st->raft.voter_count > 1 && st->raft.leading) /* ZooKeeper's leader adds it */
		fprintf(f, "Proposal sizes last/min/max: %lld/%lld/%lld\n", (long long)st->raft.proposal_size_last,
			(long long)st->raft.proposal_size_min, (long long)st->raft.proposal_size_max);
}

/* Calls fn for every established conn of every worker, under that worker's lock. */
static void for_each_conn(struct server *srv, void (*fn)(struct conn *c, FILE *f, bool full), FILE *f, bool full)
{
	for (int i = 0; i < srv->worker_count; i++) {
		struct worker *w = srv->workers[i];
		pthread_mutex_lock(&w->registry_lock);
		for (uint32_t slot = 0; slot < WORKER_CONNS_MAX; slot++) {
			struct conn *c = w->conns[slot];
			if (c && !c->shut)
				fn(c, f, full);
		}
		pthread_mutex_unlock(&w->registry_lock);
	}
}

static void write_conn_line(struct conn *c, FILE *f, bool full)
{
	int queued = c->outstanding_writes + c->deferred_count;
	fprintf(f, " /%s[1](queued=%d,recved=%llu,sent=%llu", c->peer, queued,
		(unsigned long long)c->packets_received, (unsigned long long)c->packets_sent);
	if (full) {
		uint64_t count = c->lat_count;
		fprintf(f,
			",sid=0x%llx,lop=%s,est=%lld,to=%d,lcxid=0x%x,lzxid=0x%llx,lresp=%lld,llat=%llu,minlat=%llu,"
			"avglat=%llu,maxlat=%llu",
			(unsigned long long)c->session_id, op_name(c->last_op), (long long)c->established_ms,
			c->timeout_ms, (unsigned)c->last_cxid, (unsigned long long)c->last_zxid,
			(long long)c->last_response_ms, 0ULL,
			(unsigned long long)(count ? c->lat_min_us / 1000 : 0),
			(unsigned long long)(count ? c->lat_sum_us / count / 1000 : 0),
			(unsigned long long)(c->lat_max_us / 1000));
	}
	fprintf(f, ")\n");
}

static void reset_conn_stats(struct conn *c, FILE *f, bool full)
{
	(void)f;
	(void)full;
	c->lat_min_us = UINT64_MAX;
	c->lat_max_us = c->lat_sum_us = c->lat_count = 0;
	c->packets_received = c->packets_sent = 0;
}

static long long dir_bytes(const char *path)
{
	/* One level plus one nested level: dataDir holds log/ and snapshot/. */
	long long total = 0;
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", path, e->d_name);
		struct stat st;
		if (stat(p, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			total += st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			DIR *d2 = opendir(p);
			if (!d2)
				continue;
			struct dirent *e2;
			while ((e2 = readdir(d2))) {
				char p2[4096 + 256];
				snprintf(p2, sizeof p2, "%s/%s", p, e2->d_name);
				if (e2->d_name[0] != '.' && stat(p2, &st) == 0 && S_ISREG(st.st_mode))
					total += st.st_size;
			}
			closedir(d2);
		}
	}
	closedir(d);
	return total;
}

static void write_mntr(const struct stats_snapshot *snap, FILE *f)
{
	const struct store_stats *st = &snap->store;
	const struct raft_stats *rs = &snap->raft;
	fprintf(f, "zk_version\t");
	write_version(f);
	fprintf(f, "\n");
	fprintf(f, "zk_server_state\t%s\n", stats_mode(snap));
	char avg[32];
	fprintf(f, "zk_avg_latency\t%s\n", fourlw_avg_text(snap->latency_avg_ms, avg, sizeof avg));
	fprintf(f, "zk_max_latency\t%llu\n", (unsigned long long)snap->latency_max_ms);
	fprintf(f, "zk_min_latency\t%llu\n", (unsigned long long)snap->latency_min_ms);
	fprintf(f, "zk_packets_received\t%llu\n", (unsigned long long)snap->packets_received);
	fprintf(f, "zk_packets_sent\t%llu\n", (unsigned long long)snap->packets_sent);
	fprintf(f, "zk_num_alive_connections\t%d\n", snap->connections);
	fprintf(f, "zk_outstanding_requests\t%lld\n", (long long)snap->outstanding);
	fprintf(f, "zk_uptime\t%lld\n", (long long)snap->uptime_ms);
	fprintf(f, "zk_znode_count\t%llu\n", (unsigned long long)st->node_count);
	fprintf(f, "zk_watch_count\t%llu\n", (unsigned long long)st->watch_count);
	fprintf(f, "zk_ephemerals_count\t%llu\n", (unsigned long long)st->ephemerals_count);
	fprintf(f, "zk_approximate_data_size\t%llu\n", (unsigned long long)st->approximate_data_size);
	fprintf(f, "zk_global_sessions\t%llu\n", (unsigned long long)st->session_count);
	fprintf(f, "zk_local_sessions\t0\n");
	fprintf(f, "zk_open_file_descriptor_count\t%d\n", snap->open_fds);
	fprintf(f, "zk_max_file_descriptor_count\t%llu\n", (unsigned long long)snap->max_fds);
	fprintf(f, "zk_auth_failed_count\t%llu\n", (unsigned long long)snap->auth_failed);
	fprintf(f, "zk_connection_rejected\t%llu\n", (unsigned long long)snap->connections_refused);
	fprintf(f, "zk_last_zxid\t%lld\n", (long long)st->last_zxid);
	fprintf(f, "zk_quota_exceeded_count\t%llu\n", (unsigned long long)st->quota_exceeded_count);
	if (rs->voter_count > 1 && rs->leading) { /* ZooKeeper prints these on the leader only */
		fprintf(f, "zk_learners\t%d\n", rs->followers);  /* 3.8's name (no observers here) */
		fprintf(f, "zk_followers\t%d\n", rs->followers); /* 3.4's name, kept for old tools */
		fprintf(f, "zk_synced_followers\t%d\n", rs->synced_followers);
		fprintf(f, "zk_pending_syncs\t%d\n", rs->pending_syncs);
	}
	/* RingKeeper's own */
	fprintf(f, "rk_raft_term\t%llu\n", (unsigned long long)rs->term);
	fprintf(f, "rk_raft_commit_index\t%llu\n", (unsigned long long)rs->commit_index);
	fprintf(f, "rk_raft_applied_index\t%llu\n", (unsigned long long)rs->applied_index);
	fprintf(f, "rk_reads_served\t%llu\n", (unsigned long long)snap->reads_served);
	fprintf(f, "rk_writes_committed\t%llu\n", (unsigned long long)rs->writes_committed);
	fprintf(f, "rk_frames_rejected\t%llu\n", (unsigned long long)snap->frames_rejected);
	fprintf(f, "rk_workers\t%d\n", snap->worker_count);
	fprintf(f, "rk_recv_buffers\t%llu\n", (unsigned long long)snap->recv_buffers);
	fprintf(f, "rk_raft_batches\t%llu\n", (unsigned long long)rs->batches);
	fprintf(f, "rk_raft_entries\t%llu\n", (unsigned long long)rs->entries);
	fprintf(f, "rk_raft_batch_entries_avg\t%.2f\n",
		rs->batches ? (double)rs->entries / (double)rs->batches : 0.0);
	fprintf(f, "rk_raft_batch_entries_max\t%llu\n", (unsigned long long)rs->batch_entries_max);
	fprintf(f, "rk_log_last_index\t%llu\n", (unsigned long long)rs->last_index);
	fprintf(f, "rk_log_batches\t%llu\n", (unsigned long long)rs->wal.batch_count);
	fprintf(f, "rk_log_batch_entries_avg\t%.2f\n",
		rs->wal.batch_count ? (double)rs->wal.entry_count / (double)rs->wal.batch_count : 0.0);
	fprintf(f, "rk_log_batch_entries_max\t%u\n", rs->wal.batch_entries_max_seen);
	fprintf(f, "rk_log_batch_bytes_max\t%llu\n", (unsigned long long)rs->wal.batch_bytes_max_seen);
	fprintf(f, "rk_log_fsync_p50_us\t%llu\n", (unsigned long long)(rs->wal.commit_latency_p50_ns / 1000));
	fprintf(f, "rk_log_fsync_p99_us\t%llu\n", (unsigned long long)(rs->wal.commit_latency_p99_ns / 1000));
	fprintf(f, "rk_log_fsync_max_us\t%llu\n", (unsigned long long)(rs->wal.commit_latency_max_ns / 1000));
	fprintf(f, "rk_log_bytes\t%llu\n", (unsigned long long)rs->wal.log_bytes);
	fprintf(f, "rk_log_entries_in_memory\t%llu\n", (unsigned long long)rs->core_entries);
	fprintf(f, "rk_log_segments\t%u\n", rs->wal.segment_count);
	fprintf(f, "rk_log_segment_roll_stalls\t%llu\n", (unsigned long long)rs->wal.segment_roll_stall_count);
	fprintf(f, "rk_log_segments_compacted\t%llu\n", (unsigned long long)rs->log_segments_compacted);
	fprintf(f, "rk_snapshot_in_progress\t%d\n", rs->snap_in_progress ? 1 : 0);
	fprintf(f, "rk_snapshot_count\t%llu\n", (unsigned long long)rs->snap_count);
	fprintf(f, "rk_snapshot_failed_count\t%llu\n", (unsigned long long)rs->snap_failed_count);
	fprintf(f, "rk_snapshot_skipped_count\t%llu\n", (unsigned long long)rs->snap_skipped_count);
	fprintf(f, "rk_proposals_lost_count\t%llu\n", (unsigned long long)rs->proposals_lost_count);
	fprintf(f, "rk_session_moves_reclaimed_count\t%llu\n", (unsigned long long)rs->session_moves_reclaimed_count);
	fprintf(f, "rk_snapshot_last_index\t%llu\n", (unsigned long long)rs->snap_last_index);
	fprintf(f, "rk_snapshot_last_bytes\t%llu\n", (unsigned long long)rs->snap_last_bytes);
	fprintf(f, "rk_snapshot_last_nodes\t%llu\n", (unsigned long long)rs->snap_last_nodes);
	fprintf(f, "rk_snapshot_last_duration_ms\t%llu\n", (unsigned long long)(rs->snap_last_duration_us / 1000));
	fprintf(f, "rk_snapshot_last_pause_us\t%llu\n", (unsigned long long)rs->snap_last_pause_us);
	fprintf(f, "rk_snapshot_last_lock_hold_max_us\t%llu\n", (unsigned long long)rs->snap_last_lock_hold_max_us);
	fprintf(f, "rk_snapshot_last_copied_nodes\t%llu\n", (unsigned long long)rs->snap_last_copied_nodes);
	fprintf(f, "rk_snapshot_sent_count\t%llu\n", (unsigned long long)rs->snap_sent_count);
	fprintf(f, "rk_snapshot_installed_count\t%llu\n", (unsigned long long)rs->snap_installed_count);
}

static void write_envi(struct server *srv, FILE *f)
{
	struct utsname u;
	uname(&u);
	char cwd[4096] = "";
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = 0;
	const char *user = getenv("USER");
	const char *home = getenv("HOME");
	fprintf(f, "Environment:\n");
	fprintf(f, "zookeeper.version=");
	write_version(f);
	fprintf(f, "\n");
	fprintf(f, "host.name=%s\n", u.nodename);
	fprintf(f, "ringkeeper.workers=%d\n", srv->worker_count);
	fprintf(f, "os.name=%s\n", u.sysname);
	fprintf(f, "os.arch=%s\n", u.machine);
	fprintf(f, "os.version=%s\n", u.release);
	fprintf(f, "user.name=%s\n", user ? user : "");
	fprintf(f, "user.home=%s\n", home ? home : "");
	fprintf(f, "user.dir=%s\n", cwd);
	fprintf(f, "os.memory.free=%lldMB\n", (long long)(sysconf(_SC_AVPHYS_PAGES) * sysconf(_SC_PAGESIZE) >> 20));
	fprintf(f, "os.memory.total=%lldMB\n", (long long)(sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) >> 20));
}

/* The session of the connection that holds a watch (0 once it is gone). */
static int64_t watcher_session(struct server *srv, uint64_t watcher)
{
	uint32_t wi = rk_conn_id_worker(watcher);
	if (wi >= (uint32_t)srv->worker_count)
		return 0;
	struct worker *w = srv->workers[wi];
	uint32_t slot = (uint32_t)(watcher & 0xffffff);
	uint32_t gen = (uint32_t)((watcher >> 24) & 0xffffff);
	int64_t sid = 0;
	pthread_mutex_lock(&w->registry_lock);
	if (slot < WORKER_CONNS_MAX && w->conns[slot] && w->conn_gen[slot] == gen)
		sid = w->conns[slot]->session_id;
	pthread_mutex_unlock(&w->registry_lock);
	return sid;
}

struct dump_ctx {
	struct server *srv;
	FILE *f;
	uint64_t last_watcher;
	const char *last_path;
	size_t last_len;
	int64_t last_session;
	bool any;
};

static void wchc_one(void *ctx, uint64_t watcher, const char *path, size_t len)
{
	struct dump_ctx *d = ctx;
	if (!d->any || watcher != d->last_watcher)
		fprintf(d->f, "0x%llx\n", (unsigned long long)watcher_session(d->srv, watcher));
	d->any = true;
	d->last_watcher = watcher;
	fprintf(d->f, "\t%.*s\n", (int)len, path);
}

static void wchp_one(void *ctx, const char *path, size_t len, uint64_t watcher)
{
	struct dump_ctx *d = ctx;
	if (!d->any || len != d->last_len || memcmp(path, d->last_path, len) != 0)
		fprintf(d->f, "%.*s\n", (int)len, path);
	d->any = true;
	d->last_path = path; /* valid while the store's locks are held, i.e. for the next call */
	d->last_len = len;
	fprintf(d->f, "\t0x%llx\n", (unsigned long long)watcher_session(d->srv, watcher));
}

static void dump_session(void *ctx, int64_t session_id, int32_t timeout_ms)
{
	struct dump_ctx *d = ctx;
	fprintf(d->f, "0x%llx\t%dms\n", (unsigned long long)session_id, timeout_ms);
}

static void dump_ephemeral(void *ctx, int64_t session_id, const char *path, size_t len)
{
	struct dump_ctx *d = ctx;
	if (!d->any || session_id != d->last_session)
		fprintf(d->f, "0x%llx:\n", (unsigned long long)session_id);
	d->any = true;
	d->last_session = session_id;
	fprintf(d->f, "\t%.*s\n", (int)len, path);
}

static void write_dump(struct server *srv, FILE *f)
{
	struct store_stats st;
	store_stats(srv->store, &st);
	struct dump_ctx d = { .srv = srv, .f = f };
	fprintf(f, "SessionTracker dump:\nGlobal Sessions(%llu):\n", (unsigned long long)st.session_count);
	store_sessions_dump(srv->store, dump_session, NULL, &d);
	fprintf(f, "ephemeral nodes dump:\n");
	char *eph = NULL;
	size_t eph_len = 0;
	FILE *e = open_memstream(&eph, &eph_len);
	if (e) {
		d.f = e;
		store_sessions_dump(srv->store, NULL, dump_ephemeral, &d);
		fclose(e);
	}
	fprintf(f, "Sessions with Ephemerals (%llu):\n%s", (unsigned long long)st.ephemerals_count, eph ? eph : "");
	free(eph);
}

static void fourlw_send_and_close(struct worker *w, struct conn *c, const char *text, size_t len)
{
	conn_send_bytes(w, c, text, len);
	c->close_after_flush = true;
	c->state = CONN_CLOSING;
}

void fourlw_on_arg(struct worker *w, struct conn *c, const uint8_t *data, size_t len)
{
	assert(c->fourlw_arg_wanted && c->fourlw_arg_len < sizeof c->fourlw_arg);
	size_t take = sizeof c->fourlw_arg - c->fourlw_arg_len;
	if (take > len)
		take = len;
	memcpy(c->fourlw_arg + c->fourlw_arg_len, data, take);
	c->fourlw_arg_len = (uint8_t)(c->fourlw_arg_len + take);
	if (c->fourlw_arg_len < sizeof c->fourlw_arg)
		return;
	c->fourlw_arg_wanted = false; /* bytes after the argument are dropped */
	struct jute_reader r;
	jute_reader_init(&r, c->fourlw_arg, sizeof c->fourlw_arg);
	int64_t mask = jute_read_long(&r);
	assert(jute_reader_ok(&r));
	atomic_store(&fourlw_trace_mask, mask);
	log_info("conn %s: stmk: text trace mask set to 0x%" PRIx64, c->peer, (uint64_t)mask);
	char text[24];
	int n = snprintf(text, sizeof text, "%" PRId64, mask);
	assert(n > 0 && (size_t)n < sizeof text);
	fourlw_send_and_close(w, c, text, (size_t)n);
}

/*
 * rqld / ydld, as ClickHouse Keeper words them: the request goes to the raft thread
 * (raft/pipeline_lead.c), which carries it out; the answer says only whether it went.
 */
static void write_leadership(struct worker *w, const char *word, FILE *f)
{
	bool yield = !strcmp(word, "ydld");
	struct raft_stats rs;
	raft_pipeline_stats(w->srv->raft, &rs);
	bool standalone = rs.voter_count <= 1;
	bool sent = false;
	if (!standalone && (!yield || rs.leading)) {
		struct rk_msg *m = calloc(1, sizeof *m);
		if (m) {
			m->kind = RK_MSG_LEADERSHIP;
			m->err = yield ? RK_LEAD_YIELD : RK_LEAD_REQUEST;
			sent = worker_send_to_raft(w, m);
			if (!sent)
				free(m);
		}
	}
	if (yield && sent)
		fprintf(f, "Sent yield leadership request to leader.\n");
	else if (yield)
		fprintf(f, "Failed to send yield leadership request to leader: this server %s.\n",
			standalone ? "is standalone" : "is not the leader");
	else if (sent || (standalone && rs.leading))
		fprintf(f, "Sent leadership request to leader.\n"); /* the leader's own: already done */
	else
		fprintf(f, "Failed to send leadership request to leader.\n");
}

/* The words ZooKeeper answers "not currently serving" while it has no running
 * server (LOOKING); ruok, envi, gtmk/stmk, isro and RingKeeper's own words answer. */
static bool needs_serving(const char *word)
{
	static const char *const gated[] = { "srvr", "stat", "cons", "crst", "srst", "conf", "mntr",
					     "wchs", "wchc", "wchp", "dump", "dirs" };
	for (size_t i = 0; i < sizeof gated / sizeof gated[0]; i++)
		if (!strcmp(word, gated[i]))
			return true;
	return false;
}

/* lgif: ClickHouse Keeper's log summary, and how the group commit is doing. */
static void write_lgif(struct server *srv, FILE *f)
{
	struct raft_stats rs;
	raft_pipeline_stats(srv->raft, &rs);
	fprintf(f, "first_log_idx\t%llu\n", (unsigned long long)rs.first_index);
	fprintf(f, "first_log_term\t%llu\n", (unsigned long long)rs.first_term);
	fprintf(f, "last_log_idx\t%llu\n", (unsigned long long)rs.last_index);
	fprintf(f, "last_log_term\t%llu\n", (unsigned long long)rs.last_term);
	/* As ClickHouse Keeper (NuRaft) names them: committed here is applied to the
	 * tree; the leader's commit index as this server knows it, and what it is
	 * applying towards, are both that commit index. */
	fprintf(f, "last_committed_log_idx\t%llu\n", (unsigned long long)rs.applied_index);
	fprintf(f, "leader_committed_log_idx\t%llu\n", (unsigned long long)rs.commit_index);
	fprintf(f, "target_committed_log_idx\t%llu\n", (unsigned long long)rs.commit_index);
	fprintf(f, "last_snapshot_idx\t%llu\n", (unsigned long long)rs.snap_last_index);
	/* RingKeeper's own: how the group commit is doing */
	fprintf(f, "log_batch_entries_avg\t%.2f\n",
		rs.wal.batch_count ? (double)rs.wal.entry_count / (double)rs.wal.batch_count : 0.0);
	fprintf(f, "log_batch_entries_max\t%u\n", rs.wal.batch_entries_max_seen);
	fprintf(f, "log_fsync_p50_us\t%llu\n", (unsigned long long)(rs.wal.commit_latency_p50_ns / 1000));
	fprintf(f, "log_fsync_p99_us\t%llu\n", (unsigned long long)(rs.wal.commit_latency_p99_ns / 1000));
	fprintf(f, "log_bytes\t%llu\n", (unsigned long long)rs.wal.log_bytes);
	fprintf(f, "log_segments\t%u\n", rs.wal.segment_count);
}

/* srvr, and stat (srvr with a line per client connection after the version). */
static void write_srvr(struct server *srv, bool with_clients, FILE *f)
{
	fprintf(f, "Zookeeper version: ");
	write_version(f);
	fprintf(f, "\n");
	if (with_clients) {
		fprintf(f, "Clients:\n");
		for_each_conn(srv, write_conn_line, f, false);
		fprintf(f, "\n");
	}
	struct stats_snapshot st;
	stats_gather(srv, &st);
	write_srvr_stats(&st, f);
}

void fourlw_answer(struct worker *w, struct conn *c, const uint8_t word_bytes[4])
{
	struct server *srv = w->srv;
	char word[5];
	memcpy(word, word_bytes, 4);
	word[4] = 0;
	bool allowed = config_4lw_allowed(&srv->cfg, word);
	if (allowed && !strcmp(word, "stmk")) {
		/* No answer until the argument is in; input is no longer framing. */
		c->fourlw_arg_wanted = true;
		c->fourlw_arg_len = 0;
		c->state = CONN_CLOSING;
		return;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		worker_conn_close(w, c);
		return;
	}
	if (!allowed) {
		fprintf(f, "%s is not executed because it is not in the whitelist.\n", word);
	} else if (!atomic_load_explicit(&srv->hub->serving, memory_order_relaxed) && needs_serving(word)) {
		/* no leader (see raft/pipeline.c, pipe_serving_check): as ZooKeeper LOOKING */
		fprintf(f, "This ZooKeeper instance is not currently serving requests\n");
	} else if (!atomic_load_explicit(&srv->hub->serving, memory_order_relaxed) && !strcmp(word, "isro")) {
		fprintf(f, "null"); /* ZooKeeper's answer when it has no server running */
	} else if (!strcmp(word, "gtmk")) {
		fprintf(f, "%" PRId64, atomic_load(&fourlw_trace_mask)); /* no newline, as ZooKeeper */
	} else if (!strcmp(word, "ruok")) {
		fprintf(f, "imok");
	} else if (!strcmp(word, "isro")) {
		fprintf(f, "rw");
	} else if (!strcmp(word, "srvr") || !strcmp(word, "stat")) {
		write_srvr(srv, !strcmp(word, "stat"), f);
	} else if (!strcmp(word, "cons")) {
		for_each_conn(srv, write_conn_line, f, true);
		fprintf(f, "\n");
	} else if (!strcmp(word, "crst")) {
		for_each_conn(srv, reset_conn_stats, f, false);
		fprintf(f, "Connection stats reset.\n");
	} else if (!strcmp(word, "srst")) {
		stats_reset(srv);
		fprintf(f, "Server stats reset.\n");
	} else if (!strcmp(word, "conf")) {
		struct config_conf_sizes sizes = { dir_bytes(srv->cfg.data_dir), dir_bytes(srv->cfg.data_log_dir) };
		config_write_conf(&srv->cfg, &sizes, f);
	} else if (!strcmp(word, "envi")) {
		write_envi(srv, f);
	} else if (!strcmp(word, "mntr")) {
		struct stats_snapshot st;
		stats_gather(srv, &st);
		write_mntr(&st, f);
	} else if (!strcmp(word, "wchs")) {
		struct stats_snapshot st;
		stats_gather(srv, &st);
		fprintf(f, "%d connections watching %llu paths\nTotal watches:%llu\n", st.connections,
			(unsigned long long)st.store.watch_paths, (unsigned long long)st.store.watch_count);
	} else if (!strcmp(word, "wchc")) {
		struct dump_ctx d = { .srv = srv, .f = f };
		store_watches_by_watcher(srv->store, wchc_one, &d);
	} else if (!strcmp(word, "wchp")) {
		struct dump_ctx d = { .srv = srv, .f = f };
		store_watches_by_path(srv->store, wchp_one, &d);
	} else if (!strcmp(word, "dump")) {
		write_dump(srv, f);
	} else if (!strcmp(word, "lgif")) {
		write_lgif(srv, f);
	} else if (!strcmp(word, "rqld") || !strcmp(word, "ydld")) {
		write_leadership(w, word, f);
	} else if (!strcmp(word, "csnp")) {
		/* ClickHouse Keeper's answer: the index the snapshot is taken at, at least. */
		int64_t index = raft_pipeline_request_snapshot(srv->raft);
		if (index < 0)
			fprintf(f, "Failed to schedule snapshot creation task.\n");
		else
			fprintf(f, "%lld\n", (long long)index);
	} else if (!strcmp(word, "uptm")) {
		fprintf(f, "uptime_ms\t%lld\nstarted_ms\t%lld\n", (long long)(rk_now_ms() - srv->start_ms),
			(long long)srv->start_ms);
	} else if (!strcmp(word, "dirs")) {
		fprintf(f, "datadir_size: %lld\nlogdir_size: %lld\n", dir_bytes(srv->cfg.data_dir),
			dir_bytes(srv->cfg.data_log_dir));
	}
	fclose(f);
	fourlw_send_and_close(w, c, text, len);
	free(text);
}
