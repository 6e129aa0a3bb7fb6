/* Raft core (raft/core.h): textbook scenarios driven by hand through a tiny in-test
 * cluster: messages go through one FIFO queue, links can be cut, and the hosts make
 * appends durable at once unless a test says otherwise. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"

#define TC_NODES_MAX 5
#define TC_QUEUE_MAX 8192
#define TC_E 10

struct tc {
	int n;
	uint64_t ids[TC_NODES_MAX];
	struct raft *r[TC_NODES_MAX];
	bool cut[TC_NODES_MAX + 1][TC_NODES_MAX + 1]; /* by id: from, to */
	bool manual_durable;
	struct raft_msg *q[TC_QUEUE_MAX];
	int qh, qn;
	uint64_t applied[TC_NODES_MAX];
	int truncations[TC_NODES_MAX];
	uint64_t truncate_after[TC_NODES_MAX];
	int rejects_from[TC_NODES_MAX];
	struct raft_read_state reads[TC_NODES_MAX][16];
	int read_count[TC_NODES_MAX];
	uint64_t last_applied_payload[TC_NODES_MAX]; /* first 8 bytes of the last normal entry */
	int needs_snapshot[TC_NODES_MAX];
	uint64_t needs_snapshot_id[TC_NODES_MAX];
};

static struct raft_msg *tc_copy(const struct raft_msg *m)
{
	size_t bytes = sizeof *m + (size_t)m->entry_count * sizeof(struct raft_entry);
	for (int i = 0; i < m->entry_count; i++)
		bytes += m->entries[i].len;
	struct raft_msg *c = malloc(bytes);
	*c = *m;
	struct raft_entry *e = (struct raft_entry *)(c + 1);
	uint8_t *d = (uint8_t *)(e + m->entry_count);
	for (int i = 0; i < m->entry_count; i++) {
		e[i] = m->entries[i];
		if (m->entries[i].len)
			memcpy(d, m->entries[i].data, m->entries[i].len);
		e[i].data = d;
		e[i].owner = NULL;
		d += m->entries[i].len;
	}
	c->entries = e;
	return c;
}

static struct raft_status tc_status(struct tc *c, int i)
{
	struct raft_status st;
	raft_status(c->r[i], &st);
	return st;
}

static void tc_ready(struct tc *c, int i)
{
	for (;;) {
		const struct raft_ready *rd = raft_ready(c->r[i]);
		if (rd->truncate) {
			c->truncations[i]++;
			c->truncate_after[i] = rd->truncate_after;
		}
		for (int k = 0; k < rd->msg_count; k++) {
			const struct raft_msg *m = &rd->msgs[k];
			if (m->type == RAFT_MSG_APPEND_RESP && m->reject)
				c->rejects_from[i]++;
			if (c->cut[m->from][m->to])
				continue;
			cr_assert(c->qn < TC_QUEUE_MAX);
			c->q[(c->qh + c->qn++) % TC_QUEUE_MAX] = tc_copy(m);
		}
		for (int k = 0; k < rd->committed_count; k++) {
			const struct raft_entry *e = &rd->committed[k];
			cr_assert_eq(e->index, c->applied[i] + 1);
			c->applied[i] = e->index;
			if (e->type == RAFT_ENTRY_NORMAL && e->len >= 8)
				memcpy(&c->last_applied_payload[i], e->data, 8);
		}
		for (int k = 0; k < rd->needs_snapshot_count; k++) {
			c->needs_snapshot[i]++;
			c->needs_snapshot_id[i] = rd->needs_snapshot[k];
		}
		for (int k = 0; k < rd->read_count && c->read_count[i] < 16; k++)
			c->reads[i][c->read_count[i]++] = rd->reads[k];
		uint64_t last = 0, last_term = 0;
		if (rd->entry_count) {
			last = rd->entries[rd->entry_count - 1].index;
			last_term = rd->entries[rd->entry_count - 1].term;
		}
		bool more = rd->entry_count && !c->manual_durable;
		raft_advance(c->r[i]);
		raft_applied(c->r[i], c->applied[i]);
		if (!more)
			return;
		raft_durable(c->r[i], last, last_term);
	}
}

static int tc_slot(struct tc *c, uint64_t id)
{
	for (int i = 0; i < c->n; i++)
		if (c->ids[i] == id)
			return i;
	cr_assert_fail("no node %llu", (unsigned long long)id);
	return -1;
}

static void tc_start(struct tc *c, int i, const struct raft_restore *rs, int max_msg_entries)
{
	struct raft_config cfg;
	raft_config_default(&cfg, c->ids[i], c->ids, c->n);
	cfg.election_ticks = TC_E;
	cfg.heartbeat_ticks = 1;
	if (max_msg_entries)
		cfg.max_msg_entries = max_msg_entries;
#ifdef TC_MUTATIONS /* check a test against a mutated core: see the commit adding this */
	cfg.mutations = TC_MUTATIONS;
#endif
	cr_assert_eq(raft_new(&c->r[i], &cfg, rs), 0);
	tc_ready(c, i);
}

static void tc_init(struct tc *c, int n)
{
	memset(c, 0, sizeof *c);
	c->n = n;
	for (int i = 0; i < n; i++)
		c->ids[i] = (uint64_t)i + 1;
}

static void tc_init_started(struct tc *c, int n)
{
	tc_init(c, n);
	for (int i = 0; i < n; i++)
		tc_start(c, i, NULL, 0);
}

static void tc_free(struct tc *c)
{
	for (int i = 0; i < c->n; i++)
		raft_free(c->r[i]);
	while (c->qn) {
		free(c->q[c->qh]);
		c->qh = (c->qh + 1) % TC_QUEUE_MAX;
		c->qn--;
	}
}

/* Delivers the oldest queued message (dropped if its link is cut now). */
static bool tc_deliver_one(struct tc *c)
{
	if (!c->qn)
		return false;
	struct raft_msg *m = c->q[c->qh];
	c->qh = (c->qh + 1) % TC_QUEUE_MAX;
	c->qn--;
	if (!c->cut[m->from][m->to]) {
		int i = tc_slot(c, m->to);
		cr_assert_eq(raft_step(c->r[i], m), 0);
		tc_ready(c, i);
	}
	free(m);
	return true;
}

static void tc_pump(struct tc *c)
{
	for (int k = 0; k < 100000 && tc_deliver_one(c); k++)
		;
	cr_assert_eq(c->qn, 0, "the cluster keeps talking");
}

static void tc_tick(struct tc *c, int i, int ticks)
{
	for (int k = 0; k < ticks; k++) {
		raft_tick(c->r[i]);
		tc_ready(c, i);
	}
}

static void tc_isolate(struct tc *c, uint64_t id, bool cut)
{
	for (int j = 1; j <= c->n; j++) {
		c->cut[id][j] = cut && (uint64_t)j != id;
		c->cut[j][id] = cut && (uint64_t)j != id;
	}
}

/* Ticks node i until it campaigns, then lets the election run. */
static void tc_elect(struct tc *c, int i)
{
	for (int k = 0; k < 2 * TC_E && tc_status(c, i).role == RAFT_FOLLOWER; k++)
		tc_tick(c, i, 1);
	tc_pump(c);
	cr_assert_eq(tc_status(c, i).role, RAFT_LEADER);
}

static int tc_propose_u64(struct tc *c, int i, uint64_t value)
{
	uint8_t *buf = malloc(8);
	memcpy(buf, &value, 8);
	struct raft_proposal p = {.owner = buf, .data = buf, .len = 8};
	int rc = raft_propose(c->r[i], &p, 1);
	if (rc != 0)
		free(buf);
	tc_ready(c, i);
	return rc;
}

/* A restore from terms[0..count) (index 1..count), payload-free. */
static struct raft_restore tc_log(struct raft_entry *e, const uint64_t *terms, int count, uint64_t term,
				  uint64_t vote, uint64_t commit)
{
	for (int k = 0; k < count; k++)
		e[k] = (struct raft_entry){.index = (uint64_t)k + 1, .term = terms[k], .type = RAFT_ENTRY_NOOP};
	return (struct raft_restore){.hard_state = {.term = term, .vote = vote, .commit = commit},
				     .entries = e, .entry_count = count};
}

Test(raft_core, single_voter_elects_at_once_and_commits_only_after_durable)
{
	uint64_t voters[] = {7};
	struct raft_config cfg;
	raft_config_default(&cfg, 7, voters, 1);
	struct raft *r;
	cr_assert_eq(raft_new(&r, &cfg, NULL), 0);
	const struct raft_ready *rd = raft_ready(r);
	cr_assert_eq(rd->role, RAFT_LEADER);
	cr_assert_eq(rd->term, 1);
	cr_assert(rd->must_sync);
	cr_assert_eq(rd->hard_state.vote, 7);
	cr_assert_eq(rd->entry_count, 1);
	cr_assert_eq(rd->entries[0].type, RAFT_ENTRY_NOOP);
	cr_assert_eq(rd->msg_count, 0);
	cr_assert_eq(rd->committed_count, 0, "nothing commits before it is durable");
	raft_advance(r);

	uint8_t *buf = malloc(3);
	memcpy(buf, "abc", 3);
	struct raft_proposal p = {.owner = buf, .data = buf, .len = 3};
	cr_assert_eq(raft_propose(r, &p, 1), 0);
	rd = raft_ready(r);
	cr_assert_eq(rd->entry_count, 1);
	cr_assert_eq(rd->entries[0].index, 2);
	cr_assert_eq(rd->committed_count, 0);
	raft_advance(r);

	raft_durable(r, 2, 2); /* wrong term: a stale report, ignored */
	rd = raft_ready(r);
	cr_assert_eq(rd->committed_count, 0);
	raft_advance(r);
	raft_durable(r, 1, 1);
	rd = raft_ready(r);
	cr_assert_eq(rd->committed_count, 1, "only the durable no-op commits");
	cr_assert_eq(rd->hard_state.commit, 1);
	raft_advance(r);
	raft_durable(r, 2, 1);
	rd = raft_ready(r);
	cr_assert_eq(rd->committed_count, 1);
	cr_assert_eq(rd->committed[0].index, 2);
	cr_assert_eq(rd->committed[0].len, 3);
	cr_assert_eq(memcmp(rd->committed[0].data, "abc", 3), 0);
	cr_assert_eq(rd->hard_state.commit, 2);
	raft_advance(r);
	raft_free(r);
}

/* Raft paper, Figure 8: S1 leads term 4 and replicates its term-2 entry at index 2 to a
 * majority (S1, S2, S3); it must not commit it by counting, only with its term-4 entry. */
Test(raft_core, figure8_no_commit_of_an_old_term_by_counting)
{
	struct tc c;
	tc_init(&c, 5);
	struct raft_entry e[TC_NODES_MAX][3];
	uint64_t s1[] = {1, 2}, s3[] = {1}, s5[] = {1, 3};
	struct raft_restore rs[5] = {
		tc_log(e[0], s1, 2, 3, 0, 1), tc_log(e[1], s1, 2, 3, 5, 1), tc_log(e[2], s3, 1, 3, 5, 1),
		tc_log(e[3], s3, 1, 3, 5, 1), tc_log(e[4], s5, 2, 3, 5, 1),
	};
	for (int i = 0; i < 5; i++)
		tc_start(&c, i, &rs[i], i == 0 ? 1 : 0); /* S1 sends one entry per append */
	tc_isolate(&c, 5, true);
	tc_isolate(&c, 4, true);
	for (int k = 0; k < 2 * TC_E && tc_status(&c, 0).role == RAFT_FOLLOWER; k++)
		tc_tick(&c, 0, 1);
	bool saw_index2_majority = false;
	while (tc_deliver_one(&c)) {
		struct raft_status st = tc_status(&c, 0);
		cr_assert_neq(st.commit, 2, "index 2 (term 2) committed by counting");
		if (st.role == RAFT_LEADER && st.peers[2].match == 2)
			saw_index2_majority = true; /* S1, S2, S3 hold index 2 */
	}
	struct raft_status st = tc_status(&c, 0);
	cr_assert_eq(st.role, RAFT_LEADER);
	cr_assert_eq(st.term, 4);
	cr_assert(saw_index2_majority, "the scenario must put index 2 on a majority first");
	cr_assert_eq(st.commit, 3, "it commits with the term-4 no-op at index 3");
	cr_assert_eq(raft_term_at(c.r[2], 2), 2);
	tc_free(&c);
}

Test(raft_core, pre_vote_keeps_a_rejoining_node_from_disrupting)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	uint64_t term = tc_status(&c, 0).term;
	tc_isolate(&c, 3, true);
	tc_tick(&c, 2, 5 * TC_E); /* campaigns in vain, many times */
	cr_assert_eq(tc_status(&c, 2).term, term, "pre-votes never raise the term");
	cr_assert_eq(tc_status(&c, 2).role, RAFT_PRE_CANDIDATE);
	tc_isolate(&c, 3, false);
	tc_tick(&c, 2, 2 * TC_E); /* its pre-votes now arrive at nodes inside the lease */
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 0).role, RAFT_LEADER);
	cr_assert_eq(tc_status(&c, 0).term, term);
	tc_tick(&c, 0, 1); /* a heartbeat brings it back */
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 2).role, RAFT_FOLLOWER);
	cr_assert_eq(tc_status(&c, 2).term, term);
	cr_assert_eq(tc_status(&c, 2).leader, 1);
	tc_free(&c);
}

Test(raft_core, a_lost_leader_link_elects_within_one_election_timeout)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	uint64_t term = tc_status(&c, 0).term;
	tc_isolate(&c, 1, true); /* the leader dies: both followers' links to it reset */
	raft_peer_unreachable(c.r[1], 1);
	raft_peer_unreachable(c.r[2], 1);
	cr_assert_eq(tc_status(&c, 1).leader, 0);
	cr_assert_eq(tc_status(&c, 2).leader, 0);
	int ticks = 0;
	while (tc_status(&c, 1).role == RAFT_FOLLOWER && tc_status(&c, 2).role == RAFT_FOLLOWER) {
		cr_assert_lt(ticks, TC_E, "a campaign within E ticks, not the lease's 2E");
		tc_tick(&c, 1, 1);
		tc_tick(&c, 2, 1);
		ticks++;
	}
	tc_pump(&c);
	bool one = tc_status(&c, 1).role == RAFT_LEADER, two = tc_status(&c, 2).role == RAFT_LEADER;
	cr_assert(one != two, "one new leader");
	cr_assert_eq(tc_status(&c, one ? 1 : 2).term, term + 1);
	tc_free(&c);
}

Test(raft_core, a_link_reset_to_a_live_leader_changes_nothing_lasting)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	uint64_t term = tc_status(&c, 0).term;
	raft_peer_unreachable(c.r[1], 3); /* not its leader: no effect */
	cr_assert_eq(tc_status(&c, 1).leader, 1);
	raft_peer_unreachable(c.r[0], 2); /* the leader itself: no effect */
	cr_assert_eq(tc_status(&c, 0).role, RAFT_LEADER);
	raft_peer_unreachable(c.r[1], 1); /* a blip: the leader lives on */
	cr_assert_eq(tc_status(&c, 1).leader, 0);
	tc_tick(&c, 1, TC_E); /* campaigns: node 3 is inside the leader's lease */
	tc_pump(&c);
	tc_tick(&c, 0, 1); /* the leader's heartbeat brings it back */
	tc_pump(&c);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tc_status(&c, i).term, term, "node %d: the pre-vote kept the term", i + 1);
		cr_assert_eq(tc_status(&c, i).leader, 1);
	}
	cr_assert_eq(tc_status(&c, 1).role, RAFT_FOLLOWER);
	tc_free(&c);
}

Test(raft_core, check_quorum_leader_steps_down)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	uint64_t term = tc_status(&c, 0).term;
	tc_isolate(&c, 1, true);
	tc_tick(&c, 0, TC_E); /* first check: followers were active before the cut */
	cr_assert_eq(tc_status(&c, 0).role, RAFT_LEADER);
	tc_tick(&c, 0, TC_E - 1);
	cr_assert_eq(tc_status(&c, 0).role, RAFT_LEADER);
	tc_tick(&c, 0, 1);
	cr_assert_eq(tc_status(&c, 0).role, RAFT_FOLLOWER, "no majority heard within an election timeout");
	cr_assert_eq(tc_status(&c, 0).term, term);
	cr_assert_eq(tc_status(&c, 0).leader, 0);
	tc_free(&c);
}

Test(raft_core, transfer_to_a_lagging_follower_catches_it_up_first)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	uint64_t term = tc_status(&c, 0).term;
	tc_isolate(&c, 3, true);
	for (uint64_t v = 1; v <= 5; v++)
		cr_assert_eq(tc_propose_u64(&c, 0, v), 0);
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 0).commit, 6);
	cr_assert_lt(tc_status(&c, 2).last_index, 6);
	tc_isolate(&c, 3, false);
	cr_assert_eq(raft_transfer(c.r[0], 3), 0);
	tc_ready(&c, 0);
	cr_assert_eq(tc_propose_u64(&c, 0, 99), -EBUSY, "proposals wait during a transfer");
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 2).role, RAFT_LEADER);
	cr_assert_eq(tc_status(&c, 2).term, term + 1, "TIMEOUT_NOW skips pre-vote and the lease");
	cr_assert_eq(tc_status(&c, 0).role, RAFT_FOLLOWER);
	cr_assert_eq(tc_status(&c, 0).leader, 3);
	tc_free(&c);
}

Test(raft_core, transfer_gives_up_after_an_election_timeout)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	tc_isolate(&c, 3, true);
	cr_assert_eq(raft_transfer(c.r[0], 3), 0);
	tc_ready(&c, 0);
	cr_assert_eq(tc_status(&c, 0).transferee, 3);
	tc_tick(&c, 0, TC_E - 1);
	tc_pump(&c);
	cr_assert_eq(tc_propose_u64(&c, 0, 1), -EBUSY);
	tc_tick(&c, 0, 1);
	cr_assert_eq(tc_status(&c, 0).transferee, 0);
	cr_assert_eq(tc_status(&c, 0).role, RAFT_LEADER);
	cr_assert_eq(tc_propose_u64(&c, 0, 1), 0);
	tc_free(&c);
}

/* n2 holds a divergent term-2 suffix; the leader of term 4 has term 3 there. One
 * reject with a conflict hint takes the leader straight to the common prefix. */
Test(raft_core, log_conflict_resolved_with_hint_back_off)
{
	struct tc c;
	tc_init(&c, 3);
	struct raft_entry e[3][6];
	uint64_t leader_log[] = {1, 1, 3, 3}, divergent[] = {1, 1, 2, 2, 2, 2};
	struct raft_restore rs[3] = {tc_log(e[0], leader_log, 4, 3, 0, 2), tc_log(e[1], divergent, 6, 3, 0, 2),
				     tc_log(e[2], leader_log, 4, 3, 0, 2)};
	for (int i = 0; i < 3; i++)
		tc_start(&c, i, &rs[i], 0);
	tc_elect(&c, 0);
	cr_assert_eq(tc_status(&c, 0).term, 4);
	cr_assert_eq(c.rejects_from[1], 1, "one round trip finds the common prefix");
	cr_assert_eq(c.truncations[1], 1);
	cr_assert_eq(c.truncate_after[1], 2);
	struct raft_status st = tc_status(&c, 1);
	cr_assert_eq(st.last_index, 5);
	for (uint64_t i = 1; i <= 5; i++)
		cr_assert_eq(raft_term_at(c.r[1], i), raft_term_at(c.r[0], i), "index %llu", (unsigned long long)i);
	cr_assert_eq(tc_status(&c, 0).commit, 5);
	tc_free(&c);
}

Test(raft_core, forwarded_proposal_is_committed_by_the_leader)
{
	struct tc c;
	tc_init_started(&c, 3);
	cr_assert_eq(tc_propose_u64(&c, 1, 5), -EAGAIN, "no leader known yet");
	tc_elect(&c, 0);
	cr_assert_eq(tc_propose_u64(&c, 1, 0x1234), 0);
	const struct raft_msg *prop = c.q[c.qh];
	cr_assert_eq(c.qn, 1);
	cr_assert_eq(prop->type, RAFT_MSG_PROP);
	cr_assert_eq(prop->to, 1);
	tc_pump(&c);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(c.applied[i], 2);
		cr_assert_eq(c.last_applied_payload[i], 0x1234);
	}
	cr_assert_eq(raft_entry_at(c.r[0], 2)->term, tc_status(&c, 0).term, "the leader appends it as its own");
	tc_free(&c);
}

Test(raft_core, read_index_confirmed_only_after_a_heartbeat_round)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	uint64_t commit = tc_status(&c, 0).commit;
	cr_assert_eq(raft_read_index(c.r[0], 42), 0);
	tc_ready(&c, 0);
	cr_assert_eq(c.read_count[0], 0);
	cr_assert_eq(c.qn, 2, "a heartbeat to each follower");
	tc_deliver_one(&c); /* heartbeat to n2 */
	cr_assert_eq(c.read_count[0], 0, "not before an answer");
	tc_deliver_one(&c); /* heartbeat to n3 */
	tc_deliver_one(&c); /* n2's answer: the leader and n2 are a majority */
	cr_assert_eq(c.read_count[0], 1);
	cr_assert_eq(c.reads[0][0].ctx, 42);
	cr_assert_eq(c.reads[0][0].index, commit);
	cr_assert(!c.reads[0][0].refused);
	tc_pump(&c);
	cr_assert_eq(c.read_count[0], 1);

	cr_assert_eq(raft_read_index(c.r[2], 7), 0); /* a follower asks the leader */
	tc_ready(&c, 2);
	tc_pump(&c);
	cr_assert_eq(c.read_count[2], 1);
	cr_assert_eq(c.reads[2][0].ctx, 7);
	cr_assert_eq(c.reads[2][0].index, commit);
	tc_free(&c);
}

Test(raft_core, followers_ack_only_durable_entries)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	c.manual_durable = true;
	uint64_t commit = tc_status(&c, 0).commit;
	uint64_t term = tc_status(&c, 0).term;
	cr_assert_eq(tc_propose_u64(&c, 0, 1), 0);
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 0).peers[1].match, commit, "n2 holds it but has not made it durable");
	cr_assert_eq(tc_status(&c, 0).commit, commit);
	raft_durable(c.r[1], commit + 1, term);
	tc_ready(&c, 1);
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 0).peers[1].match, commit + 1);
	cr_assert_eq(tc_status(&c, 0).peers[2].match, commit);
	cr_assert_eq(tc_status(&c, 0).commit, commit, "the leader's own append is not durable yet");
	raft_durable(c.r[0], commit + 1, term);
	tc_ready(&c, 0);
	cr_assert_eq(tc_status(&c, 0).commit, commit + 1, "leader and n2 durable: a majority");
	tc_free(&c);
}

Test(raft_core, a_dropped_entry_puts_the_follower_in_needs_snapshot)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	tc_isolate(&c, 3, true);
	for (uint64_t v = 1; v <= 4; v++)
		cr_assert_eq(tc_propose_u64(&c, 0, v), 0);
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 0).commit, 5);
	cr_assert_eq(raft_compact(c.r[0], 99), -EINVAL, "beyond applied");
	cr_assert_eq(raft_compact(c.r[0], 4), 0);
	tc_tick(&c, 0, 1); /* the compaction happens at the next advance */
	cr_assert_eq(tc_status(&c, 0).first_index, 5);
	tc_isolate(&c, 3, false);
	tc_tick(&c, 0, 1);
	tc_pump(&c);
	cr_assert_eq(c.needs_snapshot[0], 1, "named once in a ready record");
	cr_assert_eq(c.needs_snapshot_id[0], 3);
	cr_assert_eq(tc_status(&c, 0).peers[2].state, RAFT_PROGRESS_NEEDS_SNAPSHOT);
	tc_free(&c);
}

Test(raft_core, a_follower_that_installs_a_snapshot_is_replicated_to_again)
{
	struct tc c;
	tc_init_started(&c, 3);
	tc_elect(&c, 0);
	tc_isolate(&c, 3, true);
	for (uint64_t v = 1; v <= 4; v++)
		cr_assert_eq(tc_propose_u64(&c, 0, v), 0);
	tc_pump(&c);
	cr_assert_eq(raft_compact(c.r[0], 4), 0);
	tc_tick(&c, 0, 1);
	tc_isolate(&c, 3, false);
	tc_tick(&c, 0, 1);
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 0).peers[2].state, RAFT_PROGRESS_NEEDS_SNAPSHOT);
	struct raft_status f = tc_status(&c, 2);
	cr_assert_eq(f.leader, 1, "the follower hears the leader's heartbeats meanwhile");
	cr_assert_lt(f.commit, 4);
	uint64_t term = tc_status(&c, 0).term;
	cr_assert_eq(raft_snapshot_install(c.r[0], 4, term), -EAGAIN, "a leader installs nothing");
	cr_assert_eq(raft_snapshot_install(c.r[2], 4, term + 1), -EAGAIN, "a term newer than ours");
	/* the host installed the leader's snapshot at 4 and emptied its log */
	cr_assert_eq(raft_snapshot_install(c.r[2], 4, term), 0);
	c.applied[2] = 4;
	tc_ready(&c, 2);
	f = tc_status(&c, 2);
	cr_assert_eq(f.commit, 4);
	cr_assert_eq(f.applied, 4);
	cr_assert_eq(f.first_index, 5);
	cr_assert_eq(f.last_index, 4);
	cr_assert_eq(f.last_term, term);
	cr_assert_eq(raft_snapshot_install(c.r[2], 3, term), -EALREADY);
	tc_pump(&c);
	struct raft_status l = tc_status(&c, 0);
	cr_assert_eq(l.peers[2].state, RAFT_PROGRESS_REPLICATE, "the acknowledgement ended NEEDS_SNAPSHOT");
	cr_assert_eq(l.peers[2].match, 5);
	cr_assert_eq(tc_propose_u64(&c, 0, 42), 0);
	tc_pump(&c);
	cr_assert_eq(tc_status(&c, 2).commit, 6);
	cr_assert_eq(c.applied[2], 6);
	cr_assert_eq(c.last_applied_payload[2], 42);
	tc_free(&c);
}
