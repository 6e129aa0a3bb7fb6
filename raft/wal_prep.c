/*
 * wal_prep.c — the segment preparer: one helper thread ("rk-walprep") per open log
 * that creates, allocates and zero-fills the next segment file off the hot path, so a
 * segment roll on the raft thread normally finds it ready (state diagram: "SEGMENT
 * PREPARATION" in wal.c).
 *
 * Thread: wal_preparer_main runs on the helper; the other functions on the raft
 * thread (or the opener). Everything they share is in struct wal_preparer, under its
 * mutex; dir_fd, size_bytes, direct and zero_chunk are constant after start.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/wal_impl.h"

/* Creates log.<seq> fully allocated and zeroed; on success returns its fd. */
static int wal_preparer_make(struct wal_preparer *p, uint64_t seq)
{
	char tmp[64], name[64];
	wal_segment_name(tmp, sizeof(tmp), seq, true);
	wal_segment_name(name, sizeof(name), seq, false);
	int fd = openat(p->dir_fd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC |
			(p->direct ? O_DIRECT : 0), 0644);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fallocate(fd, 0, 0, (off_t)p->size_bytes) < 0 && errno != EOPNOTSUPP) {
		rc = -errno;
		goto fail;
	}
	/* Writing the zeros turns unwritten extents into written ones: later appends are
	 * pure overwrites and fdatasync has no metadata to journal. */
	rc = wal_zero_range(fd, p->zero_chunk, 0, p->size_bytes);
	if (rc)
		goto fail;
	if (fdatasync(fd) < 0) {
		rc = -errno;
		goto fail;
	}
	if (renameat(p->dir_fd, tmp, p->dir_fd, name) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = wal_sync_dir(p->dir_fd);
	if (rc) {
		unlinkat(p->dir_fd, name, 0);
		close(fd);
		return rc;
	}
	return fd;
fail:
	close(fd);
	unlinkat(p->dir_fd, tmp, 0);
	return rc;
}

static void *wal_preparer_main(void *arg)
{
	struct wal_preparer *p = arg;
	pthread_setname_np(pthread_self(), "rk-walprep");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->state != WAL_PREP_RUNNING)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		uint64_t seq = p->seq;
		pthread_mutex_unlock(&p->lock);
		int rc = wal_preparer_make(p, seq);
		pthread_mutex_lock(&p->lock);
		if (rc < 0) {
			p->err = rc;
			p->state = WAL_PREP_FAILED;
		} else {
			p->fd = rc;
			p->state = WAL_PREP_READY;
		}
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void wal_preparer_request(struct wal_preparer *p, uint64_t seq)
{
	pthread_mutex_lock(&p->lock);
	if (p->state == WAL_PREP_IDLE) {
		p->seq = seq;
		p->state = WAL_PREP_RUNNING;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

/* Waits for the requested segment. Returns its fd, or -errno (state back to IDLE). */
int wal_preparer_take(struct wal_preparer *p, uint64_t seq, bool *stalled)
{
	int rc = -EINVAL;
	*stalled = false;
	pthread_mutex_lock(&p->lock);
	while (p->state == WAL_PREP_RUNNING) {
		*stalled = true;
		pthread_cond_wait(&p->cond, &p->lock);
	}
	switch (p->state) {
	case WAL_PREP_READY:
		assert(p->seq == seq);
		rc = p->fd;
		p->fd = -1;
		break;
	case WAL_PREP_FAILED:
		rc = p->err;
		break;
	case WAL_PREP_IDLE:
	case WAL_PREP_RUNNING:
		assert(!"wal: take without request");
		rc = -EINVAL;
		break;
	}
	p->state = WAL_PREP_IDLE;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int wal_preparer_start(struct wal_preparer *p, int dir_fd, uint64_t size_bytes,
		       bool direct)
{
	p->dir_fd = dir_fd;
	p->size_bytes = size_bytes;
	p->direct = direct;
	p->fd = -1;
	p->state = WAL_PREP_IDLE;
	if (posix_memalign((void **)&p->zero_chunk, WAL_BLOCK_SIZE, WAL_ZERO_CHUNK_BYTES))
		return -ENOMEM;
	memset(p->zero_chunk, 0, WAL_ZERO_CHUNK_BYTES);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	int rc = pthread_create(&p->thread, NULL, wal_preparer_main, p);
	if (rc)
		return -rc;
	p->thread_started = true;
	return 0;
}

/* Stops the helper. A prepared but unused segment stays on disk: it is a valid empty
 * segment, and the next wal_open() deletes it. */
void wal_preparer_stop(struct wal_preparer *p)
{
	if (p->thread_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		p->thread_started = false;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->zero_chunk);
	p->zero_chunk = NULL;
}
