/*
 * raft_core_bench.c — cost per entry of the Raft core (raft/core.h) on a 3-voter
 * leader, at batches of 1, 100 and 1000 proposals: propose, take the ready record
 * (two appends out), report the batch durable, feed both followers' acks back, take the
 * ready record with the committed entries, report them applied. Payloads are 64 bytes
 * owned by the caller (owner NULL), so the numbers are the core's own cost, not
 * malloc's. Prints results; asserts only correctness, never timings.
 *
 *   raft-core-bench [entries per batch size, default 2000000]
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/core.h"

#define BENCH_BATCH_MAX 1000

static const uint64_t bench_voters[] = {1, 2, 3};
static uint8_t bench_payload[64];

static double bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Consumes a ready record; returns how many messages and committed entries it held. */
static void bench_drain(struct raft *r, uint64_t *msgs, uint64_t *committed)
{
	const struct raft_ready *rd = raft_ready(r);
	*msgs += (uint64_t)rd->msg_count;
	uint64_t last = 0;
	for (int i = 0; i < rd->committed_count; i++)
		last = rd->committed[i].index;
	*committed += (uint64_t)rd->committed_count;
	raft_advance(r);
	if (last)
		raft_applied(r, last);
}

static void bench_ack(struct raft *r, uint64_t term, uint64_t index)
{
	for (uint64_t f = 2; f <= 3; f++) {
		struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP, .from = f, .to = 1, .term = term, .index = index};
		int rc = raft_step(r, &m);
		assert(rc == 0);
		(void)rc;
	}
}

static struct raft *bench_leader(void)
{
	struct raft_config cfg;
	raft_config_default(&cfg, 1, bench_voters, 3);
	cfg.log_entries_max = 1 << 16; /* applied entries beyond it are dropped at advance */
	cfg.max_msg_entries = BENCH_BATCH_MAX;
	cfg.apply_entries_max = 2 * BENCH_BATCH_MAX;
	struct raft *r;
	int rc = raft_new(&r, &cfg, NULL);
	assert(rc == 0);
	uint64_t msgs = 0, committed = 0;
	struct raft_status st;
	for (raft_status(r, &st); st.role == RAFT_FOLLOWER; raft_status(r, &st))
		raft_tick(r);
	bench_drain(r, &msgs, &committed);
	struct raft_msg pre = {.type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = st.term + 1};
	raft_step(r, &pre);
	bench_drain(r, &msgs, &committed);
	raft_status(r, &st);
	struct raft_msg vote = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = st.term};
	raft_step(r, &vote);
	bench_drain(r, &msgs, &committed);
	raft_status(r, &st);
	assert(st.role == RAFT_LEADER);
	raft_durable(r, st.last_index, st.term);
	bench_ack(r, st.term, st.last_index);
	bench_drain(r, &msgs, &committed);
	(void)rc;
	return r;
}

static void bench_run(int batch, uint64_t entries)
{
	struct raft *r = bench_leader();
	struct raft_status st;
	raft_status(r, &st);
	uint64_t term = st.term, last = st.last_index, commit0 = st.commit;
	struct raft_proposal props[BENCH_BATCH_MAX];
	for (int i = 0; i < batch; i++)
		props[i] = (struct raft_proposal){.owner = NULL, .data = bench_payload, .len = sizeof bench_payload};
	uint64_t rounds = entries / (uint64_t)batch, msgs = 0, committed = 0;
	double t0 = bench_now_ns();
	for (uint64_t k = 0; k < rounds; k++) {
		int rc = raft_propose(r, props, batch);
		if (rc != 0) {
			fprintf(stderr, "propose: %d at round %llu\n", rc, (unsigned long long)k);
			exit(1);
		}
		bench_drain(r, &msgs, &committed);
		last += (uint64_t)batch;
		raft_durable(r, last, term);
		bench_ack(r, term, last);
		bench_drain(r, &msgs, &committed);
	}
	double dt = bench_now_ns() - t0;
	raft_status(r, &st);
	assert(st.commit == last && st.commit - commit0 == rounds * (uint64_t)batch);
	printf("batch %4d: %8.1f ns/entry  %7.2f M entries/s  (%llu entries, %.2f msgs/batch, memory from index %llu)\n",
	       batch, dt / (double)(rounds * (uint64_t)batch), (double)(rounds * (uint64_t)batch) / dt * 1e3,
	       (unsigned long long)(rounds * (uint64_t)batch), (double)msgs / (double)rounds,
	       (unsigned long long)st.first_index);
	raft_free(r);
}

int main(int argc, char **argv)
{
	uint64_t entries = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	memset(bench_payload, 'x', sizeof bench_payload);
	const int batches[] = {1, 100, 1000};
	for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++)
		bench_run(batches[i], entries);
	return 0;
}
