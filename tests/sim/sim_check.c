/*
 * sim_check.c — the simulator's invariants, checked as the hosts see the cores' ready
 * records (after every event). The global history is built from what nodes report:
 *
 *   chains          (index, term) -> chain hash of the whole prefix: log matching
 *   committed_chain [i] for every index some node reported committed: the one history
 *   commit_term     [i]: the term of the node that first reported i committed
 *   leader_of_term  [t]: the only node that may lead term t
 *
 * A chain hash covers index, term and payload of an entry and of everything before it,
 * so comparing one chain compares a whole prefix, payloads included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static uint64_t sim_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_chain_next(uint64_t prev, uint64_t index, uint64_t term, const uint8_t *data, uint32_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < len; i++)
		h = (h ^ data[i]) * 0x100000001b3ull;
	return sim_mix(prev ^ sim_mix(index * 31 + term) ^ sim_mix(h + len));
}

static size_t sim_chain_slot(const struct sim_chain_table *t, uint64_t index, uint64_t term)
{
	size_t mask = t->cap - 1;
	size_t k = (size_t)sim_mix(index * 0x9e3779b97f4a7c15ull + term) & mask;
	while (t->keys_index[k] && (t->keys_index[k] != index || t->keys_term[k] != term))
		k = (k + 1) & mask;
	return k;
}

static void sim_chain_grow(struct sim_chain_table *t)
{
	struct sim_chain_table n = {.cap = t->cap ? t->cap * 2 : 1024};
	n.keys_index = calloc(n.cap, sizeof(uint64_t));
	n.keys_term = calloc(n.cap, sizeof(uint64_t));
	n.chains = calloc(n.cap, sizeof(uint64_t));
	if (!n.keys_index || !n.keys_term || !n.chains)
		abort();
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->keys_index[i])
			continue;
		size_t k = sim_chain_slot(&n, t->keys_index[i], t->keys_term[i]);
		n.keys_index[k] = t->keys_index[i];
		n.keys_term[k] = t->keys_term[i];
		n.chains[k] = t->chains[i];
		n.count++;
	}
	sim_chain_table_free(t);
	*t = n;
}

void sim_chain_table_free(struct sim_chain_table *t)
{
	free(t->keys_index);
	free(t->keys_term);
	free(t->chains);
	memset(t, 0, sizeof *t);
}

/* Log matching: two logs with an entry of the same index and term hold the same
 * entries up to it. */
void sim_check_log_entry(struct sim_world *w, int node, uint64_t index)
{
	const struct sim_entry *e = &w->nodes[node].log[index - 1];
	struct sim_chain_table *t = &w->chains;
	if (2 * (t->count + 1) > t->cap)
		sim_chain_grow(t);
	size_t k = sim_chain_slot(t, index, e->term);
	if (!t->keys_index[k]) {
		t->keys_index[k] = index;
		t->keys_term[k] = e->term;
		t->chains[k] = e->chain;
		t->count++;
		return;
	}
	if (t->chains[k] != e->chain)
		sim_fail(w, "log-matching", "n%d index %llu term %llu: prefix differs from another node's",
			 node + 1, (unsigned long long)index, (unsigned long long)e->term);
}

static void sim_grow_u64(uint64_t **a, size_t *cap, size_t need)
{
	if (need < *cap)
		return;
	size_t n = *cap ? *cap : 256;
	while (n <= need)
		n *= 2;
	uint64_t *p = realloc(*a, n * sizeof *p);
	if (!p)
		abort();
	memset(p + *cap, 0, (n - *cap) * sizeof *p);
	*a = p;
	*cap = n;
}

/* One leader per term, and leader completeness: a new leader of `term` holds every
 * entry committed in an earlier term. */
void sim_check_leader(struct sim_world *w, int node, uint64_t term)
{
	sim_grow_u64(&w->leader_of_term, &w->terms_cap, term);
	uint64_t id = w->nodes[node].id;
	if (w->leader_of_term[term] && w->leader_of_term[term] != id)
		sim_fail(w, "one-leader-per-term", "n%llu and n%d both lead term %llu",
			 (unsigned long long)w->leader_of_term[term], node + 1, (unsigned long long)term);
	w->leader_of_term[term] = id;
	uint64_t i = w->committed;
	while (i > 0 && w->commit_term[i] >= term)
		i--;
	if (i == 0)
		return;
	const struct sim_node *n = &w->nodes[node];
	if (n->len < i || n->log[i - 1].chain != w->committed_chain[i])
		sim_fail(w, "leader-completeness", "n%d leads term %llu without committed index %llu",
			 node + 1, (unsigned long long)term, (unsigned long long)i);
}

/* State machine safety at the commit point: the node's committed prefix is the history. */
void sim_check_commit(struct sim_world *w, int node, uint64_t commit)
{
	struct sim_node *n = &w->nodes[node];
	if (commit < n->commit_seen)
		sim_fail(w, "commit-monotonic", "n%d commit %llu -> %llu", node + 1,
			 (unsigned long long)n->commit_seen, (unsigned long long)commit);
	n->commit_seen = commit;
	if (commit > n->len) {
		sim_fail(w, "commit-past-log", "n%d commit %llu, log %llu", node + 1, (unsigned long long)commit,
			 (unsigned long long)n->len);
		return;
	}
	uint64_t common = commit < w->committed ? commit : w->committed;
	if (common > 0 && n->log[common - 1].chain != w->committed_chain[common]) {
		sim_fail(w, "state-machine-safety", "n%d committed index %llu differs from the history", node + 1,
			 (unsigned long long)common);
		return;
	}
	if (commit <= w->committed)
		return;
	size_t cap = w->committed_cap; /* both arrays always have the same capacity */
	sim_grow_u64(&w->committed_chain, &w->committed_cap, commit);
	sim_grow_u64(&w->commit_term, &cap, commit);
	for (uint64_t i = w->committed + 1; i <= commit; i++) {
		w->committed_chain[i] = n->log[i - 1].chain;
		w->commit_term[i] = n->term_seen;
	}
	w->committed = commit;
}

/* Every node applies a prefix of the one history, in order, payloads included. */
void sim_check_apply(struct sim_world *w, int node, const struct raft_entry *e)
{
	struct sim_node *n = &w->nodes[node];
	if (e->index != n->applied + 1) {
		sim_fail(w, "apply-order", "n%d applies %llu after %llu", node + 1, (unsigned long long)e->index,
			 (unsigned long long)n->applied);
		return;
	}
	if (e->index > w->committed) {
		sim_fail(w, "apply-uncommitted", "n%d applies %llu, committed %llu", node + 1,
			 (unsigned long long)e->index, (unsigned long long)w->committed);
		return;
	}
	uint64_t chain = sim_chain_next(n->applied_chain, e->index, e->term, e->data, e->len);
	if (chain != w->committed_chain[e->index])
		sim_fail(w, "applied-history", "n%d applied index %llu differs from the history", node + 1,
			 (unsigned long long)e->index);
	n->applied = e->index;
	n->applied_chain = chain;
	if (e->len == 6 && memcmp(e->data, "MARKER", 6) == 0)
		n->marker_applied = true;
}

/* What a node persists: term and commit never go back, a vote never changes within a
 * term, and the persisted commit is on the disk. */
void sim_check_hard_state(struct sim_world *w, int node, const struct raft_hard_state *hs)
{
	struct sim_node *n = &w->nodes[node];
	if (hs->term < n->hs.term)
		sim_fail(w, "term-monotonic", "n%d persisted term %llu after %llu", node + 1,
			 (unsigned long long)hs->term, (unsigned long long)n->hs.term);
	if (hs->term == n->hs.term && n->hs.vote && hs->vote != n->hs.vote)
		sim_fail(w, "one-vote-per-term", "n%d changed its vote in term %llu", node + 1,
			 (unsigned long long)hs->term);
	if (hs->commit < n->hs.commit)
		sim_fail(w, "durable-commit-monotonic", "n%d persisted commit %llu after %llu", node + 1,
			 (unsigned long long)hs->commit, (unsigned long long)n->hs.commit);
	if (hs->commit > n->synced)
		sim_fail(w, "commit-not-durable", "n%d persisted commit %llu, durable log %llu", node + 1,
			 (unsigned long long)hs->commit, (unsigned long long)n->synced);
	n->hs = *hs;
}

/* No committed entry is ever lost: a majority holds the committed prefix durably. */
void sim_check_durable_majority(struct sim_world *w)
{
	uint64_t c = w->committed;
	if (c == 0)
		return;
	int holders = 0;
	for (int i = 0; i < w->node_count; i++) {
		const struct sim_node *n = &w->nodes[i];
		holders += n->synced >= c && n->log[c - 1].chain == w->committed_chain[c];
	}
	if (holders < w->quorum)
		sim_fail(w, "committed-durable-on-majority", "committed index %llu durable on %d of %d nodes",
			 (unsigned long long)c, holders, w->node_count);
}

/* ReadIndex is linearizable: the index covers every commit observed before the ask. */
void sim_check_read(struct sim_world *w, int node, const struct raft_read_state *rs)
{
	if (rs->refused)
		return;
	if (rs->ctx >= w->read_cap) {
		sim_fail(w, "read-index", "n%d unknown read ctx %llu", node + 1, (unsigned long long)rs->ctx);
		return;
	}
	if (rs->index < w->read_required[rs->ctx] || rs->index > w->committed)
		sim_fail(w, "read-index-linearizable", "n%d read %llu at index %llu, needed >= %llu (committed %llu)",
			 node + 1, (unsigned long long)rs->ctx, (unsigned long long)rs->index,
			 (unsigned long long)w->read_required[rs->ctx], (unsigned long long)w->committed);
}
