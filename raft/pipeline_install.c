/*
 * pipeline_install.c — InstallSnapshot. A follower that needs entries the leader's
 * core no longer holds in memory (its progress is NEEDS_SNAPSHOT: far behind, or a
 * new server with an empty data dir) gets the leader's newest snapshot file, streamed
 * in chunks, then the log after it by the ordinary appends.
 *
 * Thread: the raft thread, except the follower's adopt-and-load, which runs on the
 * snapshot worker (a chore) and hands its result back under recv.lock.
 *
 * Leader, per follower (send slots):
 *
 *   core says NEEDS_SNAPSHOT ──► pick the newest snapshot on disk whose index is at
 *   least the core's compaction point (else ask for one now and look again later)
 *   ──► SNAPSHOT_CHUNK × n on the follower's data link, at most
 *   PIPE_INSTALL_WINDOW_CHUNKS unacknowledged ──► every byte acknowledged: done; the
 *   follower's APPEND_RESP at the snapshot's index takes it out of NEEDS_SNAPSHOT in
 *   the core, and appends resume after the snapshot.
 *
 *   Flow control: chunks go out only while fewer than the window are unacknowledged,
 *   so the data link's queue to that follower holds at most one window (1 MiB);
 *   heartbeats and votes use the control link, and the other followers' appends
 *   their own links, so the transfer delays neither. An acknowledgement only moves
 *   the acknowledged offset forward; one that reports a gap (a chunk came past what
 *   the follower holds) makes the rest go again from what it holds; none for
 *   PIPE_INSTALL_STALL_MS does the same. The file stays open for the transfer, so a
 *   purge that deletes it meanwhile changes nothing.
 *
 * Follower:
 *
 *   IDLE ──chunk at 0 from the leader──► RECEIVING (chunks appended to
 *   snapshot.<index>.rk.recv.tmp in order; each acknowledged with the bytes held)
 *   ──last byte──► LOADING (worker: fsync, check, rename into place, load into a fresh
 *   store on all CPUs) ──► LOADED ──log idle──► install: the log is emptied, the
 *   fresh store is swapped in for the live one (store_swap: readers see the old tree
 *   or the new one), every client connection is closed (their watches and pending
 *   writes are gone with the old state: they reconnect and set their watches again,
 *   as when a ZooKeeper follower resyncs), the core takes the snapshot's index
 *   (raft_snapshot_install) and acknowledges it ──► IDLE.
 *
 *   Crash at any point: before the rename, the .recv.tmp is deleted at the next start
 *   and the old state is intact; after it, the snapshot is the newest on disk and
 *   the log (emptied or not: its records up to the snapshot are skipped and a log
 *   ending before the snapshot is emptied at start) goes on from it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "raft/msg_codec.h"
#include "raft/pipeline_impl.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "store/store_snap.h"

int pipe_install_init(struct raft_pipeline *p)
{
	struct pipe_install *in = &p->install;
	for (int i = 0; i < RAFT_VOTERS_MAX; i++)
		in->send[i].fd = -1;
	in->recv.fd = -1;
	pthread_mutex_init(&in->recv.lock, NULL);
	in->initialized = true;
	if (p->voter_count == 1)
		return 0;
	in->chunk = malloc(PIPE_INSTALL_CHUNK_BYTES);
	return in->chunk ? 0 : -ENOMEM;
}

static void send_close(struct pipe_install_send *s)
{
	if (s->fd >= 0)
		close(s->fd);
	*s = (struct pipe_install_send){ .fd = -1 };
}

static void recv_reset(struct pipe_install_recv *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->tmp_path[0])
		unlink(r->tmp_path);
	r->fd = -1;
	r->tmp_path[0] = 0;
	r->state = PIPE_RECV_IDLE;
	r->from = r->index = r->term = r->size = r->got = 0;
}

void pipe_install_free(struct raft_pipeline *p)
{
	struct pipe_install *in = &p->install;
	if (!in->initialized)
		return;
	in->initialized = false;
	for (int i = 0; i < RAFT_VOTERS_MAX; i++)
		send_close(&in->send[i]);
	/* A load in progress belongs to the worker, stopped before this. */
	if (in->recv.fresh)
		store_destroy(in->recv.fresh);
	in->recv.fresh = NULL;
	recv_reset(&in->recv);
	pthread_mutex_destroy(&in->recv.lock);
	free(in->chunk);
	in->chunk = NULL;
}

/* recv.state, which the worker moves from LOADING to LOADED. */
static enum pipe_install_recv_state recv_state(struct pipe_install_recv *r)
{
	pthread_mutex_lock(&r->lock);
	enum pipe_install_recv_state state = r->state;
	pthread_mutex_unlock(&r->lock);
	return state;
}

bool pipe_install_busy(struct raft_pipeline *p)
{
	return recv_state(&p->install.recv) != PIPE_RECV_IDLE;
}

/* ---- leader ------------------------------------------------------------------------ */

static struct pipe_install_send *send_of(struct pipe_install *in, uint64_t peer)
{
	for (int i = 0; i < RAFT_VOTERS_MAX; i++)
		if (in->send[i].peer == peer)
			return &in->send[i];
	return NULL;
}

/* Opens the newest snapshot for peer when it will do (index at or after the core's
 * compaction point); otherwise asks for a fresh one. */
static void send_begin(struct raft_pipeline *p, uint64_t peer, uint64_t compacted)
{
	struct pipe_snap *ps = &p->snap;
	if (ps->last_index == 0 || ps->last_index < compacted) {
		if (!atomic_exchange(&ps->requested, true))
			log_info("raft: follower %llu needs a snapshot at %llu or later: taking one",
				 (unsigned long long)peer, (unsigned long long)compacted);
		return;
	}
	struct pipe_install_send *s = send_of(&p->install, 0);
	if (!s)
		return;
	char path[4200];
	snprintf(path, sizeof path, "%s/snapshot.%020llu.rk", ps->dir, (unsigned long long)ps->last_index);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error("raft: cannot open %s for follower %llu: %s", path, (unsigned long long)peer, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	*s = (struct pipe_install_send){ .peer = peer, .fd = fd, .index = ps->last_index, .term = ps->last_term,
					 .size = (uint64_t)st.st_size, .progress_ms = rk_now_ms() };
	log_info("raft: sending follower %llu the snapshot at index %llu (%.1f MB)", (unsigned long long)peer,
		 (unsigned long long)s->index, (double)s->size / 1e6);
}

/* Chunks while the window has room and the transport takes them. */
static void send_pump(struct raft_pipeline *p, struct pipe_install_send *s, uint64_t term)
{
	uint64_t window = (uint64_t)PIPE_INSTALL_WINDOW_CHUNKS * PIPE_INSTALL_CHUNK_BYTES;
	while (s->sent < s->size && s->sent - s->acked < window) {
		uint64_t len = s->size - s->sent;
		if (len > PIPE_INSTALL_CHUNK_BYTES)
			len = PIPE_INSTALL_CHUNK_BYTES;
		ssize_t n = pread(s->fd, p->install.chunk, len, (off_t)s->sent);
		if (n != (ssize_t)len) {
			log_error("raft: reading the snapshot for follower %llu failed: %s", (unsigned long long)s->peer,
				  n < 0 ? strerror(errno) : "short read");
			send_close(s);
			return;
		}
		struct raft_entry e = { .index = s->index, .term = s->term, .type = RAFT_ENTRY_NORMAL,
					.len = (uint32_t)len, .data = p->install.chunk };
		struct raft_msg m = { .type = (enum raft_msg_type)MSG_HOST_SNAPSHOT_CHUNK, .from = p->server_id,
				      .to = s->peer, .term = term, .index = s->index, .log_term = s->term,
				      .ctx = s->sent, .commit = s->size, .entry_count = 1, .entries = &e };
		int rc = transport_send(p->transport, &m);
		if (rc != 0) {
			s->send_err = rc;
			return; /* link down or queue full: again at the next turn */
		}
		s->sent += len;
		s->bytes_out += len;
	}
}

static void leader_tick(struct raft_pipeline *p, int64_t now)
{
	struct pipe_install *in = &p->install;
	struct raft_status st;
	raft_status(p->core, &st);
	if (now >= in->next_check_ms) {
		in->next_check_ms = now + PIPE_INSTALL_CHECK_MS;
		for (int i = 0; i < st.voter_count; i++) {
			const struct raft_peer_status *peer = &st.peers[i];
			struct pipe_install_send *s = send_of(in, peer->id);
			if (peer->id == st.id || peer->state != RAFT_PROGRESS_NEEDS_SNAPSHOT) {
				if (s) {
					if (!s->done_ms)
						log_info("raft: follower %llu no longer needs the snapshot at %llu "
							 "(%llu of %llu bytes acknowledged; its match index %llu)",
							 (unsigned long long)s->peer, (unsigned long long)s->index,
							 (unsigned long long)s->acked, (unsigned long long)s->size,
							 (unsigned long long)peer->match);
					send_close(s); /* it caught up */
				}
				continue;
			}
			if (s && s->done_ms && now - s->done_ms > PIPE_INSTALL_RETRY_MS) {
				send_close(s); /* still behind long after: it failed there; again */
				s = NULL;
			}
			if (!s)
				send_begin(p, peer->id, st.first_index - 1);
		}
	}
	for (int i = 0; i < RAFT_VOTERS_MAX; i++) {
		struct pipe_install_send *s = &in->send[i];
		if (!s->peer || s->done_ms)
			continue;
		if (now - s->progress_ms > PIPE_INSTALL_STALL_MS) {
			log_warn("raft: follower %llu acknowledged nothing of the snapshot at %llu for %d ms "
				 "(%llu of %llu bytes acknowledged, %llu sent; the last send refused: %s): sending again "
				 "from there",
				 (unsigned long long)s->peer, (unsigned long long)s->index, PIPE_INSTALL_STALL_MS,
				 (unsigned long long)s->acked, (unsigned long long)s->size, (unsigned long long)s->sent,
				 s->send_err ? strerror(-s->send_err) : "none");
			s->send_err = 0;
			s->sent = s->acked; /* lost on the way (a reconnect): again from there */
			s->progress_ms = now;
		}
		send_pump(p, s, st.term);
	}
}

static void leader_on_ack(struct raft_pipeline *p, const struct raft_msg *m)
{
	struct pipe_install_send *s = send_of(&p->install, m->from);
	if (!s || m->index != s->index || s->done_ms)
		return;
	if (m->reject) {
		log_warn("raft: follower %llu refused the snapshot at %llu: sending it again", (unsigned long long)m->from,
			 (unsigned long long)s->index);
		s->sent = s->acked = 0;
		s->progress_ms = rk_now_ms();
		return;
	}
	if (m->ctx > s->size)
		return;
	if (m->ctx > s->acked) {
		s->acked = m->ctx;
		s->progress_ms = rk_now_ms();
	}
	/*
	 * Acknowledgements in order only move `acked` up to what was sent. Only a gap
	 * (the follower got a chunk past what it holds: one before it was lost, a
	 * reconnect) sends the rest again from what it holds. Rewinding `sent` on every
	 * acknowledgement below it, as this once did, sent chunks twice, and a burst of
	 * acknowledgements read together left sent < acked: no chunk went out again
	 * (the window test underflowed) and the transfer stopped for good.
	 */
	if (s->sent < s->acked || m->log_index == PIPE_INSTALL_ACK_GAP)
		s->sent = s->acked;
	if (s->acked == s->size) {
		s->done_ms = rk_now_ms();
		p->install.sent_count++;
		pthread_mutex_lock(&p->stats_lock);
		p->stats.snap_sent_count++;
		pthread_mutex_unlock(&p->stats_lock);
		log_info("raft: follower %llu has the whole snapshot at %llu (%llu bytes sent for %llu)",
			 (unsigned long long)s->peer, (unsigned long long)s->index, (unsigned long long)s->bytes_out,
			 (unsigned long long)s->size);
	}
}

/* ---- follower: receiving ------------------------------------------------------------- */

static void recv_ack(struct raft_pipeline *p, uint64_t to, uint64_t index, uint64_t got, bool reject, bool gap)
{
	struct raft_status st;
	raft_status(p->core, &st);
	struct raft_msg m = { .type = (enum raft_msg_type)MSG_HOST_SNAPSHOT_ACK, .from = p->server_id, .to = to,
			      .term = st.term, .index = index, .ctx = got, .reject = reject,
			      .log_index = gap ? PIPE_INSTALL_ACK_GAP : 0 };
	transport_send(p->transport, &m);
}

static void load_chore(void *arg);

static void recv_complete(struct raft_pipeline *p)
{
	struct pipe_install_recv *r = &p->install.recv;
	int rc = fsync(r->fd) < 0 ? -errno : 0;
	close(r->fd);
	r->fd = -1;
	if (rc < 0) {
		log_error("raft: the snapshot from the leader cannot be synced: %s", strerror(-rc));
		recv_reset(r);
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->state = PIPE_RECV_LOADING;
	pthread_mutex_unlock(&r->lock);
	if (!snap_worker_chore(p->snap.worker, load_chore, p)) {
		/* The worker's queue is full: the leader sends it again after a while. */
		recv_reset(r);
	}
}

static void follower_on_chunk(struct raft_pipeline *p, const struct raft_msg *m)
{
	struct pipe_install_recv *r = &p->install.recv;
	if (p->role != RAFT_FOLLOWER || m->from != p->leader || m->entry_count != 1)
		return;
	enum pipe_install_recv_state state = recv_state(r);
	if (state == PIPE_RECV_LOADING || state == PIPE_RECV_LOADED) {
		if (m->index == r->index)
			recv_ack(p, m->from, r->index, r->size, false, false);
		return;
	}
	if (state == PIPE_RECV_IDLE || m->index != r->index || m->from != r->from) {
		if (m->ctx != 0) {
			recv_ack(p, m->from, m->index, 0, true, false); /* from the start, please */
			return;
		}
		recv_reset(r);
		snprintf(r->tmp_path, sizeof r->tmp_path, "%s/snapshot.%020llu.rk.recv.tmp", p->snap.dir,
			 (unsigned long long)m->index);
		mkdir(p->snap.dir, 0755);
		r->fd = open(r->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (r->fd < 0) {
			log_error("raft: cannot create %s: %s", r->tmp_path, strerror(errno));
			r->tmp_path[0] = 0;
			recv_ack(p, m->from, m->index, 0, true, false);
			return;
		}
		r->state = PIPE_RECV_RECEIVING;
		r->from = m->from;
		r->index = m->index;
		r->term = m->log_term;
		r->size = m->commit;
		r->got = 0;
		log_info("raft: receiving the leader's snapshot at index %llu (%.1f MB)", (unsigned long long)r->index,
			 (double)r->size / 1e6);
	}
	r->last_ms = rk_now_ms();
	const struct raft_entry *e = &m->entries[0];
	if (m->ctx != r->got || r->got + e->len > r->size) {
		/* A chunk past what we hold is a gap (resend from here); one before it, a
		 * copy of what we have (a resend after a stall): only say where we are. */
		recv_ack(p, m->from, r->index, r->got, false, m->ctx > r->got);
		return;
	}
	ssize_t n = pwrite(r->fd, e->data, e->len, (off_t)r->got);
	if (n != (ssize_t)e->len) {
		log_error("raft: writing %s failed: %s", r->tmp_path, n < 0 ? strerror(errno) : "short write");
		recv_reset(r);
		recv_ack(p, m->from, m->index, 0, true, false);
		return;
	}
	r->got += e->len;
	recv_ack(p, m->from, r->index, r->got, false, false);
	if (r->got == r->size)
		recv_complete(p);
}

void pipe_install_on_msg(struct raft_pipeline *p, const struct raft_msg *m)
{
	switch ((uint32_t)m->type) {
	case MSG_HOST_SNAPSHOT_CHUNK:
		follower_on_chunk(p, m);
		return;
	case MSG_HOST_SNAPSHOT_ACK:
		if (p->role == RAFT_LEADER)
			leader_on_ack(p, m);
		return;
	}
}

/* ---- follower: loading (the worker's thread) and installing -------------------------- */

static void load_chore(void *arg)
{
	struct raft_pipeline *p = arg;
	struct pipe_install_recv *r = &p->install.recv;
	/* RECEIVING is over: the raft thread reads these fields no more until LOADED. */
	int64_t t0 = rk_now_ms();
	char why[256] = "";
	struct store *fresh = NULL;
	int rc = snap_adopt(p->snap.dir, r->tmp_path, r->index, why, sizeof why);
	if (rc == 0) {
		fresh = store_create_like(p->store);
		rc = fresh ? 0 : -ENOMEM;
	}
	struct snap_loaded ld = { 0 };
	if (rc == 0) {
		char path[4200];
		snprintf(path, sizeof path, "%s/snapshot.%020llu.rk", p->snap.dir, (unsigned long long)r->index);
		rc = snap_load_file(path, r->index, fresh, rk_now_ms(), p->cfg->worker_count, &ld, why, sizeof why);
	}
	if (rc < 0 && fresh) {
		store_destroy(fresh);
		fresh = NULL;
	}
	pthread_mutex_lock(&r->lock);
	r->tmp_path[0] = 0; /* adopted (renamed) or deleted */
	r->err = rc;
	snprintf(r->why, sizeof r->why, "%s", why);
	r->fresh = fresh;
	r->nodes = ld.node_count;
	r->load_ms = (uint64_t)(rk_now_ms() - t0);
	r->state = PIPE_RECV_LOADED;
	pthread_mutex_unlock(&r->lock);
}

static void destroy_chore(void *arg)
{
	store_destroy(arg);
}

struct sessions_gone {
	int64_t *ids;
	size_t count, cap;
};

static void collect_session(void *ctx, int64_t id, int32_t timeout_ms)
{
	struct sessions_gone *g = ctx;
	(void)timeout_ms;
	if (g->count == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		int64_t *ids = realloc(g->ids, cap * sizeof *ids);
		if (!ids)
			return;
		g->ids = ids;
		g->cap = cap;
	}
	g->ids[g->count++] = id;
}

/* The fresh store becomes the live one (see the top of this file). */
static void install(struct raft_pipeline *p, struct pipe_install_recv *r)
{
	struct raft_status st;
	raft_status(p->core, &st);
	if (st.role != RAFT_FOLLOWER || !st.leader || st.commit >= r->index || r->term > st.term) {
		log_info("raft: the snapshot at %llu is not needed any more (commit %llu, %s): dropped",
			 (unsigned long long)r->index, (unsigned long long)st.commit, raft_role_name(st.role));
		if (!snap_worker_chore(p->snap.worker, destroy_chore, r->fresh))
			store_destroy(r->fresh);
		r->fresh = NULL;
		recv_reset(r);
		return;
	}
	int rc = wal_truncate_suffix(p->wal, 0);
	p->truncate_after = UINT64_MAX; /* whatever was pending went with the rest */
	if (rc < 0) {
		log_error("log: emptying it for the leader's snapshot failed: %s; stopping", strerror(-rc));
		abort();
	}
	struct sessions_gone gone = { 0 };
	store_sessions_dump(p->store, collect_session, NULL, &gone);
	store_swap(p->store, r->fresh);
	if (!snap_worker_chore(p->snap.worker, destroy_chore, r->fresh))
		store_destroy(r->fresh);
	r->fresh = NULL;
	pipe_fail_pending(p);
	for (size_t i = 0; i < gone.count; i++)
		pipe_broadcast_session_gone(p, gone.ids[i], RK_CONN_ID_NONE, 0);
	free(gone.ids);
	rc = raft_snapshot_install(p->core, r->index, r->term);
	assert(rc == 0); /* checked above, nothing in between */
	(void)rc;
	p->applied_index = r->index;
	p->durable_index = (int64_t)r->index;
	p->submitted_count = 0;
	p->snap.last_index = p->snap.oldest_kept = r->index;
	p->snap.last_term = r->term;
	p->install.installed_count++;
	pthread_mutex_lock(&p->stats_lock);
	p->stats.applied_index = p->stats.commit_index = p->stats.last_index = r->index;
	p->stats.last_term = r->term;
	pipe_stats_log_start(p); /* the log was emptied above */
	p->stats.snap_last_index = r->index;
	p->stats.snap_last_term = r->term;
	p->stats.snap_installed_count++;
	pthread_mutex_unlock(&p->stats_lock);
	log_info("raft: installed the leader's snapshot at index %llu (term %llu): %llu nodes, loaded in %llu ms; "
		 "%zu sessions' connections closed, the log starts again after it",
		 (unsigned long long)r->index, (unsigned long long)r->term, (unsigned long long)r->nodes,
		 (unsigned long long)r->load_ms, gone.count);
	recv_reset(r);
}

static void follower_tick(struct raft_pipeline *p)
{
	struct pipe_install_recv *r = &p->install.recv;
	enum pipe_install_recv_state state = recv_state(r);
	if (state == PIPE_RECV_RECEIVING && rk_now_ms() - r->last_ms > PIPE_INSTALL_ABANDON_MS) {
		log_warn("raft: no chunk of the snapshot at %llu for %d s: given up (the leader starts again)",
			 (unsigned long long)r->index, PIPE_INSTALL_ABANDON_MS / 1000);
		recv_reset(r);
		return;
	}
	if (state != PIPE_RECV_LOADED)
		return;
	if (r->err < 0) {
		log_error("raft: the leader's snapshot at %llu cannot be used (%s%s%s): waiting for it again",
			  (unsigned long long)r->index, strerror(-r->err), r->why[0] ? ": " : "", r->why);
		recv_reset(r);
		return;
	}
	/* The log must be idle to be emptied; the image of a snapshot of our own would
	 * point into the store about to be swapped. */
	if (wal_in_flight(p->wal) || wal_staged_count(p->wal) > 0 || p->unstaged_head || p->snap.in_progress)
		return;
	install(p, r);
}

void pipe_install_tick(struct raft_pipeline *p)
{
	if (!p->transport)
		return;
	if (p->role == RAFT_LEADER) {
		leader_tick(p, rk_now_ms());
		return;
	}
	for (int i = 0; i < RAFT_VOTERS_MAX; i++)
		if (p->install.send[i].peer)
			send_close(&p->install.send[i]); /* no longer leading */
	follower_tick(p);
}
