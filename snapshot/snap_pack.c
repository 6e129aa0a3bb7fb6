/*
 * snap_pack.c — compressing and writing a snapshot's blocks on a thread of their own,
 * at the lowest priority, while the walker goes on (see snap_pack.h).
 *
 * Why: the walk copies records under shard locks, so it must run at the server's
 * priority (a walker preempted while it holds a lock stalls the applier: measured
 * lock holds of 10-100 ms at nice 5 on a loaded 2-CPU VM). Compression and the write
 * hold no lock and are most of a snapshot's CPU; taking snapshots back to back on a
 * 2-CPU machine, they took a whole CPU from the clients' threads. At nice 19 they run
 * on what the server and its clients leave.
 *
 * Threads: the walker (the snapshot worker) calls put and finish; the packer thread
 * calls write_block. A queue of at most SNAP_PACK_QUEUE raw blocks between them (a
 * mutex and two condition variables); the walker waits for room only between walk
 * steps, never under a store lock. Raw buffers go round: the walker hands one over
 * and takes a spare back (or starts a new one).
 */
#include "snapshot/snap_pack.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SNAP_PACK_QUEUE 4
#define SNAP_PACK_NICE 19

struct pack_slot {
	struct snap_buf raw;
	uint32_t records;
};

struct snap_packer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work; /* a block waits, or done */
	pthread_cond_t room; /* a slot freed, or the packer failed */
	struct pack_slot q[SNAP_PACK_QUEUE];
	int head, count;
	struct snap_buf spare[SNAP_PACK_QUEUE + 1];
	int spare_count;
	bool done;
	int err; /* sticky: the first write_block error */
	snap_pack_write_fn write_block;
	void *ctx;
};

static void *packer_main(void *arg)
{
	struct snap_packer *pk = arg;
	setpriority(PRIO_PROCESS, (id_t)gettid(), SNAP_PACK_NICE); /* best effort */
	pthread_mutex_lock(&pk->mu);
	for (;;) {
		while (pk->count == 0 && !pk->done)
			pthread_cond_wait(&pk->work, &pk->mu);
		if (pk->count == 0)
			break;
		struct pack_slot s = pk->q[pk->head];
		pthread_mutex_unlock(&pk->mu);
		int rc = pk->err ? pk->err : pk->write_block(pk->ctx, &s.raw, s.records);
		pthread_mutex_lock(&pk->mu);
		if (rc < 0 && !pk->err)
			pk->err = rc;
		pk->head = (pk->head + 1) % SNAP_PACK_QUEUE;
		pk->count--;
		s.raw.len = 0;
		if (pk->spare_count < SNAP_PACK_QUEUE + 1 && !s.raw.failed)
			pk->spare[pk->spare_count++] = s.raw;
		else
			snap_buf_free(&s.raw);
		pthread_cond_signal(&pk->room);
	}
	pthread_mutex_unlock(&pk->mu);
	return NULL;
}

int snap_packer_start(struct snap_packer **out, snap_pack_write_fn write_block, void *ctx)
{
	struct snap_packer *pk = calloc(1, sizeof *pk);
	if (!pk)
		return -ENOMEM;
	pk->write_block = write_block;
	pk->ctx = ctx;
	pthread_mutex_init(&pk->mu, NULL);
	pthread_cond_init(&pk->work, NULL);
	pthread_cond_init(&pk->room, NULL);
	int rc = pthread_create(&pk->thread, NULL, packer_main, pk);
	if (rc != 0) {
		pthread_cond_destroy(&pk->room);
		pthread_cond_destroy(&pk->work);
		pthread_mutex_destroy(&pk->mu);
		free(pk);
		return -rc;
	}
	pthread_setname_np(pk->thread, "rk-snap-pack");
	*out = pk;
	return 0;
}

int snap_packer_put(struct snap_packer *pk, struct snap_buf *raw, uint32_t records)
{
	pthread_mutex_lock(&pk->mu);
	while (pk->count == SNAP_PACK_QUEUE && !pk->err)
		pthread_cond_wait(&pk->room, &pk->mu);
	int err = pk->err;
	if (!err) {
		pk->q[(pk->head + pk->count) % SNAP_PACK_QUEUE] = (struct pack_slot){ *raw, records };
		pk->count++;
		*raw = pk->spare_count ? pk->spare[--pk->spare_count] : (struct snap_buf){ 0 };
		pthread_cond_signal(&pk->work);
	}
	pthread_mutex_unlock(&pk->mu);
	return err;
}

int snap_packer_finish(struct snap_packer *pk)
{
	pthread_mutex_lock(&pk->mu);
	pk->done = true;
	pthread_cond_signal(&pk->work);
	pthread_mutex_unlock(&pk->mu);
	pthread_join(pk->thread, NULL);
	int err = pk->err;
	for (int i = 0; i < pk->count; i++) /* left by a failure */
		snap_buf_free(&pk->q[(pk->head + i) % SNAP_PACK_QUEUE].raw);
	for (int i = 0; i < pk->spare_count; i++)
		snap_buf_free(&pk->spare[i]);
	pthread_cond_destroy(&pk->room);
	pthread_cond_destroy(&pk->work);
	pthread_mutex_destroy(&pk->mu);
	free(pk);
	return err;
}
