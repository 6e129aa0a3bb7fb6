/*
 * pipeline_snapshot.c — the raft thread's side of snapshots: when one is taken, what
 * happens once it is on disk (log compaction), and loading the newest one at start.
 * The image is the store's (store/store_snap.h), the file and the thread that writes
 * it are snapshot/'s.
 *
 * Thread: the raft thread (pipe_snap_tick), the main thread before it starts
 * (pipe_snap_recover, pipe_snap_start) and after it stopped (pipe_snap_stop);
 * raft_pipeline_request_snapshot from any thread (an atomic flag).
 *
 * When: as ZooKeeper's SyncRequestProcessor, once more than snapCount / 2 + r entries
 * were applied since the last snapshot, r drawn again after each from
 * [0, snapCount / 2), so the servers of a cluster do not all write theirs at once;
 * snapCount below 2 counts as 2, as in ZooKeeper. Or at once on csnp. One at a time,
 * and as ZooKeeper ("Too busy to snap, skipping"): the count starts again when one
 * begins, and a count that ends while one is still being written is dropped and
 * starts again from there. Under a write load faster than a snapshot (a large tree)
 * this leaves the machine between 0 and snapCount / 2 + r entries' time free after
 * each, where starting the next one at once would snapshot back to back, a core's
 * worth of CPU and disk bandwidth per server (bench/RESULTS.md, session 9). A csnp
 * asked meanwhile is kept and taken as soon as the one in progress ends.
 *
 *   applied ≥ next_at or csnp ──► store_snap_begin (the applier's only pause: the
 *   session table and quota roots are copied) ──► worker: walk, compress, write,
 *   fsync, rename, purge to snapRetainCount ──► tick: store_snap_end, log compaction
 *
 * Log compaction: the log is kept after the OLDEST snapshot kept, so any snapshot on
 * disk plus the log is a whole state (the newest may be found damaged at a start).
 * The leader keeps more for a follower whose match index is behind that but within
 * snapCount entries of the log's end; one further behind will need a snapshot. Whole
 * segments only (raft/wal.h): detached here, deleted by the worker, oldest first.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "raft/pipeline_impl.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

/*
 * The worker's nice value. Not lowered: it holds a shard lock for a few microseconds
 * at a time, and a holder that the scheduler preempts makes every reader and the
 * applier that need that shard wait with it; at a lower priority that wait grows on
 * a busy machine (measured: lock holds of 10-100 ms at nice 5 on the loaded 2-CPU VM).
 */
#define PIPE_SNAP_NICE 0
/* Segments one compaction detaches at most (the rest go the next time). */
#define PIPE_SNAP_COMPACT_SEGMENTS_MAX 256

struct pipe_compaction {
	char *log_dir;
	struct raft_pipeline *p;
	int count;
	uint64_t seqs[PIPE_SNAP_COMPACT_SEGMENTS_MAX];
};

static uint64_t snap_half(const struct raft_pipeline *p)
{
	int32_t count = p->cfg->snap_count < 2 ? 2 : p->cfg->snap_count;
	return (uint64_t)count / 2;
}

/* ZooKeeper's randRoll: the next snapshot after snapCount / 2 + [0, snapCount / 2). */
static void snap_schedule(struct raft_pipeline *p, uint64_t from)
{
	struct pipe_snap *ps = &p->snap;
	ps->rng ^= ps->rng << 13;
	ps->rng ^= ps->rng >> 7;
	ps->rng ^= ps->rng << 17;
	uint64_t half = snap_half(p);
	ps->next_at = from + half + 1 + ps->rng % half;
}

int pipe_snap_recover(struct raft_pipeline *p, uint64_t *index, uint64_t *term)
{
	*index = *term = 0;
	struct pipe_snap *ps = &p->snap;
	size_t len = strlen(p->cfg->data_dir) + sizeof "/snapshot";
	ps->dir = malloc(len);
	if (!ps->dir)
		return -ENOMEM;
	snprintf(ps->dir, len, "%s/snapshot", p->cfg->data_dir);
	struct snap_loaded ld;
	int rc = snap_load_newest(ps->dir, p->store, rk_now_ms(), p->cfg->worker_count, &ld);
	if (rc < 0)
		return rc; /* logged */
	if (ld.damaged_count)
		log_error("snapshot: %u damaged snapshot%s set aside in %s (see above)", ld.damaged_count,
			  ld.damaged_count == 1 ? "" : "s", ps->dir);
	if (!ld.found)
		return 0;
	log_info("snapshot: loaded %s/snapshot.%020llu.rk: index %llu term %llu, %llu nodes, %llu sessions, %.1f MB, "
		 "checked in %llu ms, loaded in %llu ms on %u threads (linking %llu ms)",
		 ps->dir, (unsigned long long)ld.index, (unsigned long long)ld.index, (unsigned long long)ld.term,
		 (unsigned long long)ld.node_count, (unsigned long long)ld.session_count, (double)ld.file_bytes / 1e6,
		 (unsigned long long)ld.verify_us / 1000, (unsigned long long)ld.load_us / 1000, ld.load_threads,
		 (unsigned long long)ld.finish_us / 1000);
	*index = ps->last_index = ps->oldest_kept = ld.index;
	*term = ps->last_term = ld.term;
	return 0;
}

/*
 * The snapshots on disk at start: the oldest kept bounds the log (compaction keeps
 * what follows it). A kill between a snapshot's rename and the purge after it leaves
 * one snapshot more than snapRetainCount, until the next one is written (which may be
 * long: a quiet server takes none): purged here, unless the one just loaded is not
 * among the newest kept (newer ones were damaged: keep everything for the operator).
 */
static void pipe_snap_survey(struct raft_pipeline *p)
{
	struct pipe_snap *ps = &p->snap;
	uint32_t retain = (uint32_t)p->cfg->autopurge_snap_retain_count;
	uint64_t *idx;
	size_t count;
	if (snap_list(ps->dir, false, &idx, &count) < 0)
		return;
	bool purge = ps->last_index != 0 && retain != 0 && count > retain && ps->last_index >= idx[retain - 1];
	if (count)
		ps->oldest_kept = idx[count - 1];
	free(idx);
	if (!purge)
		return;
	uint64_t oldest;
	uint32_t kept;
	int rc = snap_purge(ps->dir, retain, &oldest, &kept);
	if (oldest) /* what is left, also after a failure part way */
		ps->oldest_kept = oldest;
	if (rc < 0) {
		log_error("snapshot: purging old snapshots in %s failed: %s", ps->dir, strerror(-rc));
		return;
	}
	log_info("snapshot: %zu snapshots on disk at start, %u kept (snapRetainCount)", count, kept);
}

int pipe_snap_start(struct raft_pipeline *p)
{
	struct pipe_snap *ps = &p->snap;
	if (pipe_install_init(p) < 0)
		return -ENOMEM;
	struct snap_worker_config wc = {
		.snap_dir = ps->dir,
		.retain = (uint32_t)p->cfg->autopurge_snap_retain_count,
		.nice = PIPE_SNAP_NICE,
	};
	int rc = snap_worker_start(&ps->worker, &wc);
	if (rc < 0) {
		log_error("snapshot: cannot start the snapshot thread: %s", strerror(-rc));
		return rc;
	}
	pipe_snap_survey(p);
	ps->rng = (uint64_t)rk_now_us() * 0x9E3779B97F4A7C15ULL | 1;
	snap_schedule(p, ps->last_index > p->applied_index ? ps->last_index : p->applied_index);
	pthread_mutex_lock(&p->stats_lock);
	p->stats.snap_last_index = ps->last_index;
	p->stats.snap_last_term = ps->last_term;
	p->stats.snap_oldest_kept = ps->oldest_kept;
	pthread_mutex_unlock(&p->stats_lock);
	return 0;
}

/* ---- log compaction --------------------------------------------------------------- */

static void compaction_run(void *arg)
{
	struct pipe_compaction *c = arg;
	int rc = wal_remove_segments(c->log_dir, c->seqs, c->count);
	if (rc < 0) {
		log_error("log: deleting compacted segments in %s/log failed: %s (they are read again at the next "
			  "start and deleted later)",
			  c->log_dir, strerror(-rc));
	} else {
		struct raft_pipeline *p = c->p;
		pthread_mutex_lock(&p->stats_lock);
		p->stats.log_segments_compacted += (uint64_t)rc;
		pthread_mutex_unlock(&p->stats_lock);
	}
	free(c->log_dir);
	free(c);
}

/* The index the log may be compacted to: the oldest snapshot kept, or less for a
 * follower the leader still replicates from its log (see the top of this file). */
static uint64_t compaction_point(struct raft_pipeline *p)
{
	uint64_t keep = p->snap.oldest_kept;
	if (p->role != RAFT_LEADER || p->voter_count == 1)
		return keep;
	struct raft_status st;
	raft_status(p->core, &st);
	for (int i = 0; i < st.voter_count; i++) {
		const struct raft_peer_status *peer = &st.peers[i];
		if (peer->id == st.id || peer->match >= keep)
			continue;
		if (st.last_index - peer->match <= (uint64_t)p->cfg->snap_count)
			keep = peer->match;
	}
	return keep;
}

static void pipe_snap_compact(struct raft_pipeline *p)
{
	struct pipe_compaction *c = calloc(1, sizeof *c);
	if (!c)
		return; /* the next snapshot compacts */
	uint64_t keep = compaction_point(p);
	c->count = wal_detach_prefix(p->wal, keep, c->seqs, PIPE_SNAP_COMPACT_SEGMENTS_MAX);
	c->p = p;
	c->log_dir = strdup(p->cfg->data_log_dir);
	if (c->count == 0 || !c->log_dir || !snap_worker_chore(p->snap.worker, compaction_run, c)) {
		/* Detached but not deleted: harmless, the next start reads and detaches them. */
		free(c->log_dir);
		free(c);
		return;
	}
	log_info("log: %d segment%s before index %llu compacted (the log now starts at %llu)", c->count,
		 c->count == 1 ? "" : "s", (unsigned long long)keep, (unsigned long long)wal_first_index(p->wal));
	pthread_mutex_lock(&p->stats_lock);
	pipe_stats_log_start(p);
	pthread_mutex_unlock(&p->stats_lock);
}

/* ---- taking one ------------------------------------------------------------------- */

static void pipe_snap_done(struct raft_pipeline *p, struct store_snap *sn, const struct snap_result *res)
{
	struct pipe_snap *ps = &p->snap;
	store_snap_end(p->store, sn);
	ps->in_progress = false;
	if (res->err < 0) {
		snap_schedule(p, p->applied_index);
		log_error("snapshot at index %llu failed: %s; the log is kept, the next one is tried after %llu",
			  (unsigned long long)res->index, res->why, (unsigned long long)ps->next_at);
		pthread_mutex_lock(&p->stats_lock);
		p->stats.snap_in_progress = false;
		p->stats.snap_failed_count++;
		pthread_mutex_unlock(&p->stats_lock);
		return;
	}
	ps->last_index = res->index;
	ps->last_term = res->term;
	if (res->kept_count)
		ps->oldest_kept = res->oldest_kept;
	log_info("snapshot at index %llu (term %llu): %llu nodes, %llu sessions, %.1f MB (%.1f MB before lz4) in %llu ms "
		 "(walk %llu ms, %u rests); applier paused %llu us, %llu nodes copied before a change, longest lock hold %llu us; "
		 "%u kept, the oldest at %llu",
		 (unsigned long long)res->index, (unsigned long long)res->term, (unsigned long long)res->node_count,
		 (unsigned long long)res->session_count, (double)res->file_bytes / 1e6, (double)res->raw_bytes / 1e6,
		 (unsigned long long)res->duration_us / 1000, (unsigned long long)res->walk_us / 1000, res->walk_rests,
		 (unsigned long long)res->image.begin_ns / 1000, (unsigned long long)res->image.nodes_copied,
		 (unsigned long long)res->image.lock_hold_max_ns / 1000, res->kept_count,
		 (unsigned long long)ps->oldest_kept);
	pthread_mutex_lock(&p->stats_lock);
	p->stats.snap_in_progress = false;
	p->stats.snap_count++;
	p->stats.snap_last_index = res->index;
	p->stats.snap_last_term = res->term;
	p->stats.snap_last_bytes = res->file_bytes;
	p->stats.snap_last_nodes = res->node_count;
	p->stats.snap_last_duration_us = res->duration_us;
	rk_hist_record(&p->metrics.snapshot_ms, res->duration_us / 1000);
	p->stats.snap_last_pause_us = res->image.begin_ns / 1000;
	p->stats.snap_last_lock_hold_max_us = res->image.lock_hold_max_ns / 1000;
	p->stats.snap_last_copied_nodes = res->image.nodes_copied;
	p->stats.snap_oldest_kept = ps->oldest_kept;
	pthread_mutex_unlock(&p->stats_lock);
	pipe_snap_compact(p);
}

static void pipe_snap_begin(struct raft_pipeline *p)
{
	struct pipe_snap *ps = &p->snap;
	uint64_t index = p->applied_index;
	uint64_t term = raft_term_at(p->core, index);
	assert(term > 0 || index == 0);
	struct store_snap *sn;
	int rc = store_snap_begin(p->store, &sn);
	if (rc < 0) {
		log_error("snapshot at index %llu cannot begin: %s", (unsigned long long)index, strerror(-rc));
		snap_schedule(p, index);
		return;
	}
	snap_schedule(p, index);
	bool ok = snap_worker_submit(ps->worker, sn, index, term);
	assert(ok); /* not in progress: the worker is idle */
	(void)ok;
	ps->in_progress = true;
	pthread_mutex_lock(&p->stats_lock);
	p->stats.snap_in_progress = true;
	pthread_mutex_unlock(&p->stats_lock);
}

void pipe_snap_tick(struct raft_pipeline *p)
{
	struct pipe_snap *ps = &p->snap;
	if (!ps->worker)
		return;
	struct store_snap *sn;
	struct snap_result res;
	if (ps->in_progress && snap_worker_poll(ps->worker, &sn, &res))
		pipe_snap_done(p, sn, &res);
	pipe_install_tick(p);
	if (ps->in_progress || pipe_install_busy(p)) {
		if (p->applied_index >= ps->next_at) {
			snap_schedule(p, p->applied_index);
			pthread_mutex_lock(&p->stats_lock);
			p->stats.snap_skipped_count++;
			pthread_mutex_unlock(&p->stats_lock);
		}
		return;
	}
	bool asked = atomic_exchange_explicit(&ps->requested, false, memory_order_relaxed);
	if (p->applied_index <= ps->last_index || (!asked && p->applied_index < ps->next_at))
		return;
	pipe_snap_begin(p);
}

void pipe_snap_stop(struct raft_pipeline *p)
{
	struct pipe_snap *ps = &p->snap;
	struct store_snap *left = snap_worker_stop(ps->worker);
	if (left)
		store_snap_end(p->store, left);
	ps->worker = NULL;
	pipe_install_free(p);
	free(ps->dir);
	ps->dir = NULL;
}

int64_t raft_pipeline_request_snapshot(struct raft_pipeline *p)
{
	if (!p->snap.worker)
		return -EAGAIN;
	atomic_store_explicit(&p->snap.requested, true, memory_order_relaxed);
	pthread_mutex_lock(&p->stats_lock);
	int64_t applied = (int64_t)p->stats.applied_index;
	pthread_mutex_unlock(&p->stats_lock);
	return applied;
}
