/*
 * pipeline.h — the raft thread: the single place where writes are ordered, made
 * durable and applied. Today it is the commit path of a one-node cluster; the Raft
 * core (a pure state machine) slots in between "ordered" and "durable".
 */
#ifndef RK_PIPELINE_H
#define RK_PIPELINE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "raft/wal.h"

struct hub;
struct rk_config;
struct store;
struct raft_pipeline;

struct raft_stats {
	uint64_t batches;
	uint64_t entries;
	uint64_t batch_entries_max;
	uint64_t last_index;
	uint64_t first_index; /* first entry still in the log (0 = empty) */
	uint64_t last_term;
	uint64_t writes_committed; /* entries applied since start */
	/* consensus */
	int voter_count;     /* 1: standalone */
	bool leading;
	uint64_t leader_id;  /* 0: none known */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	int followers;        /* leader: the other voters */
	int synced_followers; /* leader: those being replicated to (not probing, not lost) */
	struct wal_stats wal;
};

/* cfg, store and hub outlive the pipeline; the thread stops when hub->stopping is set. */
int raft_pipeline_create(const struct rk_config *cfg, struct store *store, struct hub *hub,
			 struct raft_pipeline **out);
int raft_pipeline_start(struct raft_pipeline *p);
void raft_pipeline_join(struct raft_pipeline *p);
void raft_pipeline_destroy(struct raft_pipeline *p);
void raft_pipeline_stats(struct raft_pipeline *p, struct raft_stats *out);

#endif
