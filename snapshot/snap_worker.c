/*
 * snap_worker.c — the snapshot thread ("rk-snap"): writes the image it is handed,
 * purges old snapshots, then runs the chores queued behind it (see snapshot.h).
 *
 * Ownership: between snap_worker_submit and the snap_worker_poll that returns it, the
 * image (struct store_snap) is the worker's to walk; the submitter must not end it.
 * Everything in struct snap_worker below `lock` is guarded by it.
 *
 *   IDLE ──submit──► QUEUED ──thread takes it──► WRITING ──done──► DONE ──poll──► IDLE
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "snapshot/snapshot.h"

enum snap_job_state { JOB_IDLE, JOB_QUEUED, JOB_WRITING, JOB_DONE };

struct snap_chore {
	void (*fn)(void *arg);
	void *arg;
};

struct snap_worker {
	char *snap_dir;
	uint32_t retain;
	int nice;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	atomic_bool cancel; /* set by stop: a write in progress gives up */
	enum snap_job_state state;
	struct store_snap *sn;
	uint64_t index, term;
	struct snap_result result;
	struct snap_chore chores[SNAP_WORKER_CHORES_MAX];
	unsigned chore_head, chore_count;
};

static void worker_write(struct snap_worker *w, struct store_snap *sn, uint64_t index, uint64_t term)
{
	struct snap_result res;
	struct snap_write_ctl ctl = { .cancel = &w->cancel, .walk_burst_us = SNAP_WORKER_WALK_BURST_US };
	snap_write(w->snap_dir, sn, index, term, &ctl, &res);
	if (res.err == 0) {
		int rc = snap_purge(w->snap_dir, w->retain, &res.oldest_kept, &res.kept_count);
		if (rc < 0)
			log_error("snapshot: purging old snapshots in %s failed: %s", w->snap_dir, strerror(-rc));
	}
	pthread_mutex_lock(&w->lock);
	w->result = res;
	w->state = JOB_DONE;
	pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
	struct snap_worker *w = arg;
	rk_log_thread_name("snap");
	if (w->nice)
		setpriority(PRIO_PROCESS, (id_t)gettid(), w->nice); /* best effort */
	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (w->state == JOB_QUEUED) {
			w->state = JOB_WRITING;
			struct store_snap *sn = w->sn;
			uint64_t index = w->index, term = w->term;
			pthread_mutex_unlock(&w->lock);
			worker_write(w, sn, index, term);
			/* The image's blocks and buffers: back to the kernel until the next one
			 * (core/mem.h), not kept at the size of the last image. */
			rk_mem_release();
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (w->chore_count) {
			struct snap_chore c = w->chores[w->chore_head];
			w->chore_head = (w->chore_head + 1) % SNAP_WORKER_CHORES_MAX;
			w->chore_count--;
			pthread_mutex_unlock(&w->lock);
			c.fn(c.arg);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (w->stop)
			break;
		pthread_cond_wait(&w->cond, &w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int snap_worker_start(struct snap_worker **out, const struct snap_worker_config *cfg)
{
	*out = NULL;
	struct snap_worker *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->snap_dir = strdup(cfg->snap_dir);
	if (!w->snap_dir) {
		free(w);
		return -ENOMEM;
	}
	w->retain = cfg->retain ? cfg->retain : 1;
	w->nice = cfg->nice;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w->snap_dir);
		free(w);
		return -rc;
	}
	pthread_setname_np(w->thread, "rk-snap");
	*out = w;
	return 0;
}

struct store_snap *snap_worker_stop(struct snap_worker *w)
{
	if (!w)
		return NULL;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	atomic_store(&w->cancel, true);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	struct store_snap *left = w->sn; /* QUEUED was written (cancelled), DONE not polled */
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->snap_dir);
	free(w);
	return left;
}

bool snap_worker_submit(struct snap_worker *w, struct store_snap *sn, uint64_t index, uint64_t term)
{
	pthread_mutex_lock(&w->lock);
	bool ok = w->state == JOB_IDLE && !w->stop;
	if (ok) {
		w->state = JOB_QUEUED;
		w->sn = sn;
		w->index = index;
		w->term = term;
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return ok;
}

bool snap_worker_busy(struct snap_worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool busy = w->state != JOB_IDLE;
	pthread_mutex_unlock(&w->lock);
	return busy;
}

bool snap_worker_poll(struct snap_worker *w, struct store_snap **sn, struct snap_result *out)
{
	pthread_mutex_lock(&w->lock);
	bool done = w->state == JOB_DONE;
	if (done) {
		*sn = w->sn;
		*out = w->result;
		w->sn = NULL;
		w->state = JOB_IDLE;
	}
	pthread_mutex_unlock(&w->lock);
	return done;
}

bool snap_worker_chore(struct snap_worker *w, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&w->lock);
	bool ok = w->chore_count < SNAP_WORKER_CHORES_MAX && !w->stop;
	if (ok) {
		w->chores[(w->chore_head + w->chore_count) % SNAP_WORKER_CHORES_MAX] = (struct snap_chore){ fn, arg };
		w->chore_count++;
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return ok;
}
