/*
 * pipeline_test_util.h — a raft pipeline driven through the hub alone, as a worker
 * would drive it (test_pipeline.c, test_pipeline_leaderless.c): a real store, a real
 * log under cfg->data_dir, the real core.
 */
#ifndef RK_PIPELINE_TEST_UTIL_H
#define RK_PIPELINE_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/hub.h"
#include "core/zk_proto.h"
#include "raft/entry.h"
#include "raft/pipeline.h"
#include "store/store.h"

struct pipe_rig {
	struct hub hub;
	struct store *store;
	struct raft_pipeline *pipe;
};

/* cfg: finalized (and its myid read for a cluster); must outlive the rig. */
static inline void pipe_rig_start(struct pipe_rig *r, const struct rk_config *cfg)
{
	struct store_config sc = { .config_text = "" };
	r->store = store_create(&sc);
	cr_assert_not_null(r->store);
	cr_assert_eq(hub_init(&r->hub, 1), 0);
	cr_assert_eq(raft_pipeline_create(cfg, r->store, &r->hub, &r->pipe), 0);
	cr_assert_eq(raft_pipeline_start(r->pipe), 0);
}

static inline void pipe_rig_stop(struct pipe_rig *r)
{
	atomic_store(&r->hub.stopping, true);
	raft_pipeline_join(r->pipe);
	raft_pipeline_destroy(r->pipe);
	hub_destroy(&r->hub);
	store_destroy(r->store);
	atomic_store(&r->hub.stopping, false);
}

/* A worker's proposal on worker 0's queue (flags: RK_MSG_SYNC for a sync). */
static inline void pipe_rig_propose(struct pipe_rig *r, uint64_t conn_id, int64_t session, int32_t xid,
				    int32_t opcode, const struct jute_writer *body, uint16_t flags)
{
	struct jute_writer w;
	jute_writer_init(&w, 1 << 16);
	jute_writer_reserve(&w, sizeof(struct rk_msg));
	entry_encode(&w, session, opcode, false, NULL, 0, body ? body->buf : NULL, body ? body->len : 0);
	cr_assert(jute_writer_ok(&w));
	struct rk_msg *m = (struct rk_msg *)w.buf;
	memset(m, 0, sizeof *m);
	m->kind = RK_MSG_PROPOSAL;
	m->flags = flags;
	m->xid = xid;
	m->conn_id = conn_id;
	m->session_id = session;
	m->len = (uint32_t)(w.len - sizeof *m);
	/* The raft thread's ring is attached: hub_to_raft wakes it from our own ring. */
	struct io_uring ring;
	cr_assert_eq(io_uring_queue_init(8, &ring, 0), 0);
	cr_assert(hub_to_raft(&r->hub, 0, m, &ring));
	io_uring_queue_exit(&ring);
}

/* The next message for worker 0 within ms, or NULL. The caller frees it. */
static inline struct rk_msg *pipe_rig_next(struct pipe_rig *r, int ms)
{
	for (int i = 0; i < ms; i++) {
		struct rk_msg *m = hub_from_raft(&r->hub, 0);
		if (m)
			return m;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

#endif
