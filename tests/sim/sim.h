/*
 * sim.h — the deterministic Raft simulator's world (see sim_main.c for what it checks
 * and how to run it). One thread, one seed: every random choice comes from the world's
 * PRNG in event order, so a seed replays exactly.
 */
#ifndef RK_RAFT_SIM_H
#define RK_RAFT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core.h"

#define SIM_NODES_MAX 5
#define SIM_PAYLOAD_MAX 32
#define SIM_ELECTION_TICKS 10
#define SIM_HEARTBEAT_TICKS 2

enum sim_event_type {
	SIM_EV_DELIVER = 1, /* msg to node */
	SIM_EV_TICK,
	SIM_EV_SYNC,        /* the node's disk finishes flushing what was written */
	SIM_EV_CHAOS,       /* the fault schedule picks its next action */
	SIM_EV_LIVENESS,    /* after the heal: propose the marker until it is applied */
};

struct sim_event {
	uint64_t time;
	uint64_t seq;
	enum sim_event_type type;
	int node;
	uint64_t incarnation; /* TICK/SYNC of an earlier life are dropped */
	struct raft_msg *msg; /* DELIVER: deep copy, one malloc block */
};

/* One entry of a node's written log (its disk, synced or not). */
struct sim_entry {
	uint64_t term;
	uint64_t chain; /* hash of this entry and every entry before it */
	uint32_t len;
	uint8_t data[SIM_PAYLOAD_MAX];
};

struct sim_node {
	uint64_t id;
	struct raft *r;
	bool up;
	uint64_t incarnation;
	int tick_period;
	struct sim_entry *log; /* index i at log[i - 1]; mirrors the core's log */
	uint64_t len;
	uint64_t cap;
	uint64_t synced; /* durable prefix */
	bool sync_pending;
	struct raft_hard_state hs; /* persisted */
	uint64_t applied;
	uint64_t applied_chain;
	uint64_t commit_seen; /* this incarnation */
	enum raft_role role_seen;
	uint64_t term_seen;
	bool marker_applied;
};

/* (index, term) -> chain, for log matching. Open addressing. */
struct sim_chain_table {
	uint64_t *keys_index;
	uint64_t *keys_term;
	uint64_t *chains;
	size_t cap;
	size_t count;
};

struct sim_world {
	uint64_t seed;
	uint64_t rng;
	uint32_t mutations;
	bool trace;
	int node_count;
	int quorum;
	struct sim_node nodes[SIM_NODES_MAX];
	uint64_t voters[SIM_NODES_MAX];
	bool pre_vote;
	bool check_quorum;

	uint64_t now;
	uint64_t step; /* events processed */
	uint64_t seq;
	struct sim_event *heap;
	size_t heap_count;
	size_t heap_cap;

	/* network */
	bool blocked[SIM_NODES_MAX][SIM_NODES_MAX]; /* from, to */
	int loss_permille;
	int dup_permille;
	int delay_max;
	int slow_permille; /* a message takes up to 10x delay_max: reordering */

	/* schedule */
	int chaos_gap_max; /* units between fault-schedule actions: the seed's intensity */
	uint64_t heal_time;
	uint64_t deadline;
	bool healed;
	uint64_t proposal_seq;
	uint64_t read_seq;
	int marker_leader; /* the marker was proposed on this node ... */
	uint64_t marker_term; /* ... in this term */
	uint64_t *read_required; /* by ctx: committed index when the read was asked */
	size_t read_cap;

	/* global history */
	struct sim_chain_table chains;
	uint64_t *committed_chain; /* [i] for committed index i */
	uint64_t *commit_term;     /* [i]: term of the leader that committed i first */
	uint64_t committed;
	size_t committed_cap;
	uint64_t *leader_of_term;
	size_t terms_cap;

	/* result */
	bool failed;
	char failure[256];
	uint64_t fail_step;
	uint64_t events_total;
	uint64_t recovery_units; /* heal to the marker applied everywhere */
};

/* sim.c */
int sim_run_seed(uint64_t seed, uint32_t mutations, bool trace, struct sim_world *w);
void sim_world_free(struct sim_world *w);
uint64_t sim_random(struct sim_world *w);
void sim_fail(struct sim_world *w, const char *invariant, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sim_trace(struct sim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sim_check.c */
uint64_t sim_chain_next(uint64_t prev, uint64_t index, uint64_t term, const uint8_t *data, uint32_t len);
void sim_check_log_entry(struct sim_world *w, int node, uint64_t index);
void sim_check_leader(struct sim_world *w, int node, uint64_t term);
void sim_check_commit(struct sim_world *w, int node, uint64_t commit);
void sim_check_apply(struct sim_world *w, int node, const struct raft_entry *e);
void sim_check_hard_state(struct sim_world *w, int node, const struct raft_hard_state *hs);
void sim_check_durable_majority(struct sim_world *w);
void sim_check_read(struct sim_world *w, int node, const struct raft_read_state *rs);
void sim_chain_table_free(struct sim_chain_table *t);

#endif
