/*
 * sim.c — one simulated cluster for one seed: nodes driven through the real core, a
 * network, disks, and a fault schedule.
 *
 * TIME AND EVENTS
 *   Virtual time in units; one event queue (a binary heap on (time, seq)), so equal
 *   times pop in scheduling order and a seed replays exactly. Every node ticks with its
 *   own period (7..13 units, drawn again at each restart).
 *
 * A NODE'S HOST (sim_node_ready, after every input to a core)
 *   1. truncate the written log, append the ready's entries (written, not synced)
 *   2. persist the hard state at once when it changed (the host rule: it is durable
 *      before any message of the same ready leaves)
 *   3. send the messages, apply the committed entries, check the read states
 *   A SYNC event later makes a prefix of the written log durable (usually all of it)
 *   and reports raft_durable(). A crash keeps the durable prefix plus a random prefix of
 *   the rest (a torn write) and the persisted hard state; the restart syncs what it found
 *   (the core's restore contract: restored entries are durable), hands exactly that to
 *   raft_new, and the node's state machine replays from index 1.
 *
 * NETWORK
 *   Per message: loss, duplication, a delay of 1..delay_max (sometimes 10x: reordering),
 *   and partitions as a blocked[from][to] matrix (symmetric splits, isolation, one-way
 *   links) decided when a message is sent.
 *
 * SCHEDULE
 *   Until heal_time, CHAOS events propose (on any node, so followers forward), read,
 *   transfer leadership, crash, restart, partition, heal and change loss rates. At
 *   heal_time everything heals and every node restarts; from then on LIVENESS events
 *   propose a marker on the leader until every node has applied it, which must happen
 *   before the deadline.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

#define SIM_LIVENESS_UNITS 6000 /* about 3x the slowest recovery seen in 100,000 seeds */
#define SIM_LIVENESS_PERIOD 50

uint64_t sim_random(struct sim_world *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t sim_below(struct sim_world *w, uint64_t n) { return n ? sim_random(w) % n : 0; }

static bool sim_permille(struct sim_world *w, int permille) { return (int)sim_below(w, 1000) < permille; }

void sim_fail(struct sim_world *w, const char *invariant, const char *fmt, ...)
{
	if (w->failed)
		return;
	w->failed = true;
	w->fail_step = w->step;
	int k = snprintf(w->failure, sizeof w->failure, "%s: ", invariant);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->failure + k, sizeof w->failure - (size_t)k, fmt, ap);
	va_end(ap);
	if (w->trace)
		printf("!! FAIL %s\n", w->failure);
}

void sim_trace(struct sim_world *w, const char *fmt, ...)
{
	if (!w->trace)
		return;
	printf("t=%-6llu #%-6llu ", (unsigned long long)w->now, (unsigned long long)w->step);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ---- event queue ---- */

static bool sim_event_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void sim_schedule(struct sim_world *w, uint64_t delay, enum sim_event_type type, int node, struct raft_msg *m)
{
	if (w->heap_count == w->heap_cap) {
		w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
		w->heap = realloc(w->heap, w->heap_cap * sizeof *w->heap);
		if (!w->heap)
			abort();
	}
	struct sim_event ev = {.time = w->now + delay, .seq = w->seq++, .type = type, .node = node, .msg = m,
			       .incarnation = node >= 0 ? w->nodes[node].incarnation : 0};
	size_t i = w->heap_count++;
	while (i > 0 && sim_event_before(&ev, &w->heap[(i - 1) / 2])) {
		w->heap[i] = w->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->heap[i] = ev;
}

static struct sim_event sim_pop(struct sim_world *w)
{
	struct sim_event top = w->heap[0];
	struct sim_event last = w->heap[--w->heap_count];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= w->heap_count)
			break;
		if (c + 1 < w->heap_count && sim_event_before(&w->heap[c + 1], &w->heap[c]))
			c++;
		if (!sim_event_before(&w->heap[c], &last))
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (w->heap_count)
		w->heap[i] = last;
	return top;
}

/* ---- network ---- */

static struct raft_msg *sim_msg_copy(const struct raft_msg *m)
{
	size_t bytes = sizeof *m + (size_t)m->entry_count * sizeof(struct raft_entry);
	for (int i = 0; i < m->entry_count; i++)
		bytes += m->entries[i].len;
	struct raft_msg *c = malloc(bytes);
	if (!c)
		abort();
	*c = *m;
	struct raft_entry *e = (struct raft_entry *)(c + 1);
	uint8_t *data = (uint8_t *)(e + m->entry_count);
	for (int i = 0; i < m->entry_count; i++) {
		e[i] = m->entries[i];
		e[i].owner = NULL;
		if (m->entries[i].len)
			memcpy(data, m->entries[i].data, m->entries[i].len);
		e[i].data = data;
		data += m->entries[i].len;
	}
	c->entries = m->entry_count ? e : NULL;
	return c;
}

static int sim_node_of(const struct sim_world *w, uint64_t id)
{
	for (int i = 0; i < w->node_count; i++)
		if (w->nodes[i].id == id)
			return i;
	return -1;
}

static void sim_send(struct sim_world *w, int from, const struct raft_msg *m)
{
	int to = sim_node_of(w, m->to);
	if (to < 0) {
		sim_fail(w, "message-address", "n%d sent to unknown id %llu", from + 1, (unsigned long long)m->to);
		return;
	}
	bool lost = w->blocked[from][to] || sim_permille(w, w->loss_permille);
	sim_trace(w, "send n%d->n%d %s term=%llu li=%llu lt=%llu n=%d commit=%llu idx=%llu rej=%d ctx=%llu%s",
		  from + 1, to + 1, raft_msg_type_name(m->type), (unsigned long long)m->term,
		  (unsigned long long)m->log_index, (unsigned long long)m->log_term, m->entry_count,
		  (unsigned long long)m->commit, (unsigned long long)m->index, m->reject, (unsigned long long)m->ctx,
		  lost ? " LOST" : "");
	if (lost)
		return;
	int copies = sim_permille(w, w->dup_permille) ? 2 : 1;
	for (int k = 0; k < copies; k++) {
		uint64_t delay = 1 + sim_below(w, (uint64_t)w->delay_max);
		if (sim_permille(w, w->slow_permille))
			delay *= 10;
		sim_schedule(w, delay, SIM_EV_DELIVER, to, sim_msg_copy(m));
	}
}

/* ---- nodes ---- */

static void sim_log_push(struct sim_node *n, const struct raft_entry *e)
{
	if (n->len == n->cap) {
		n->cap = n->cap ? n->cap * 2 : 256;
		n->log = realloc(n->log, n->cap * sizeof *n->log);
		if (!n->log)
			abort();
	}
	struct sim_entry *s = &n->log[n->len];
	uint64_t prev = n->len ? n->log[n->len - 1].chain : 0;
	s->term = e->term;
	s->len = e->len;
	if (e->len)
		memcpy(s->data, e->data, e->len);
	s->chain = sim_chain_next(prev, e->index, e->term, e->data, e->len);
	n->len++;
}

static void sim_node_log_changes(struct sim_world *w, int i, const struct raft_ready *rd)
{
	struct sim_node *n = &w->nodes[i];
	if (rd->truncate) {
		if (rd->truncate_after > n->len)
			sim_fail(w, "truncate-past-log", "n%d truncate after %llu, log %llu", i + 1,
				 (unsigned long long)rd->truncate_after, (unsigned long long)n->len);
		sim_trace(w, "n%d truncate after %llu (log %llu)", i + 1, (unsigned long long)rd->truncate_after,
			  (unsigned long long)n->len);
		n->len = rd->truncate_after < n->len ? rd->truncate_after : n->len;
		if (n->synced > n->len)
			n->synced = n->len;
	}
	for (int k = 0; k < rd->entry_count && !w->failed; k++) {
		const struct raft_entry *e = &rd->entries[k];
		if (e->index != n->len + 1 || e->len > SIM_PAYLOAD_MAX) {
			sim_fail(w, "append-contiguous", "n%d appends %llu on log %llu", i + 1,
				 (unsigned long long)e->index, (unsigned long long)n->len);
			return;
		}
		sim_log_push(n, e);
		sim_check_log_entry(w, i, e->index);
	}
	if (rd->entry_count)
		sim_trace(w, "n%d append %llu..%llu", i + 1, (unsigned long long)rd->entries[0].index,
			  (unsigned long long)rd->entries[rd->entry_count - 1].index);
}

static void sim_node_soft_state(struct sim_world *w, int i, const struct raft_ready *rd, const struct raft_status *st)
{
	struct sim_node *n = &w->nodes[i];
	uint64_t last_term = n->len ? n->log[n->len - 1].term : 0;
	if (st->last_index != n->len || st->last_term != last_term)
		sim_fail(w, "host-mirror", "n%d core log %llu/%llu, written %llu/%llu", i + 1,
			 (unsigned long long)st->last_index, (unsigned long long)st->last_term,
			 (unsigned long long)n->len, (unsigned long long)last_term);
	bool new_role = rd->role != n->role_seen || rd->term != n->term_seen;
	if (new_role)
		sim_trace(w, "n%d is %s term %llu leader %llu", i + 1, raft_role_name(rd->role),
			  (unsigned long long)rd->term, (unsigned long long)rd->leader);
	n->role_seen = rd->role;
	n->term_seen = rd->term;
	if (new_role && rd->role == RAFT_LEADER)
		sim_check_leader(w, i, rd->term);
}

static void sim_schedule_sync(struct sim_world *w, int i)
{
	struct sim_node *n = &w->nodes[i];
	if (n->synced < n->len && !n->sync_pending) {
		n->sync_pending = true;
		sim_schedule(w, 1 + sim_below(w, 15), SIM_EV_SYNC, i, NULL);
	}
}

static void sim_node_ready(struct sim_world *w, int i)
{
	struct sim_node *n = &w->nodes[i];
	const struct raft_ready *rd = raft_ready(n->r);
	struct raft_status st;
	sim_node_log_changes(w, i, rd);
	raft_status(n->r, &st);
	sim_node_soft_state(w, i, rd, &st);
	if (rd->hard_state_changed) {
		sim_check_hard_state(w, i, &rd->hard_state);
		sim_trace(w, "n%d persist term=%llu vote=%llu commit=%llu%s", i + 1,
			  (unsigned long long)rd->hard_state.term, (unsigned long long)rd->hard_state.vote,
			  (unsigned long long)rd->hard_state.commit, rd->must_sync ? " sync" : "");
	}
	if (st.commit != n->commit_seen)
		sim_trace(w, "n%d commit %llu", i + 1, (unsigned long long)st.commit);
	sim_check_commit(w, i, st.commit);
	for (int k = 0; k < rd->msg_count; k++)
		sim_send(w, i, &rd->msgs[k]);
	for (int k = 0; k < rd->committed_count && !w->failed; k++)
		sim_check_apply(w, i, &rd->committed[k]);
	for (int k = 0; k < rd->read_count; k++)
		sim_check_read(w, i, &rd->reads[k]);
	if (rd->needs_snapshot_count)
		sim_fail(w, "needs-snapshot", "n%d: the simulator never compacts", i + 1);
	raft_advance(n->r);
	raft_applied(n->r, n->applied);
	sim_schedule_sync(w, i);
}

static void sim_node_start(struct sim_world *w, int i)
{
	struct sim_node *n = &w->nodes[i];
	struct raft_config cfg;
	raft_config_default(&cfg, n->id, w->voters, w->node_count);
	cfg.election_ticks = SIM_ELECTION_TICKS;
	cfg.heartbeat_ticks = SIM_HEARTBEAT_TICKS;
	cfg.seed = w->seed * 1000003 + (uint64_t)i * 101 + n->incarnation;
	cfg.pre_vote = w->pre_vote;
	cfg.check_quorum = w->check_quorum;
	cfg.max_inflight_msgs = 1 + (int)sim_below(w, 4);
	cfg.max_msg_entries = sim_below(w, 2) ? 1 : 1 + (int)sim_below(w, 8);
	cfg.max_msg_bytes = 64;
	cfg.apply_entries_max = 8;
	cfg.reads_max = 16;
	cfg.mutations = w->mutations;
	struct raft_entry *entries = calloc(n->len + 1, sizeof *entries);
	if (!entries)
		abort();
	for (uint64_t k = 0; k < n->len; k++) {
		uint8_t *copy = malloc(SIM_PAYLOAD_MAX);
		if (!copy)
			abort();
		if (n->log[k].len)
			memcpy(copy, n->log[k].data, n->log[k].len);
		entries[k] = (struct raft_entry){.index = k + 1, .term = n->log[k].term, .len = n->log[k].len,
						 .owner = copy, .data = copy,
						 .type = n->log[k].len ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_NOOP};
	}
	struct raft_restore rs = {.hard_state = n->hs, .entries = entries, .entry_count = (int)n->len};
	int rc = raft_new(&n->r, &cfg, &rs);
	free(entries);
	if (rc != 0) {
		sim_fail(w, "restart", "n%d raft_new: %d (log %llu, commit %llu)", i + 1, rc,
			 (unsigned long long)n->len, (unsigned long long)n->hs.commit);
		return;
	}
	n->synced = n->len; /* recovery syncs what it found: raft_restore entries are durable */
	n->up = true;
	n->tick_period = 7 + (int)sim_below(w, 7);
	n->applied = 0;
	n->applied_chain = 0;
	n->commit_seen = n->hs.commit;
	n->role_seen = RAFT_FOLLOWER;
	n->term_seen = n->hs.term;
	n->marker_applied = false;
	sim_trace(w, "n%d start log=%llu synced=%llu term=%llu vote=%llu commit=%llu", i + 1,
		  (unsigned long long)n->len, (unsigned long long)n->synced, (unsigned long long)n->hs.term,
		  (unsigned long long)n->hs.vote, (unsigned long long)n->hs.commit);
	sim_schedule(w, 1 + sim_below(w, (uint64_t)n->tick_period), SIM_EV_TICK, i, NULL);
	sim_node_ready(w, i);
}

static void sim_node_crash(struct sim_world *w, int i)
{
	struct sim_node *n = &w->nodes[i];
	raft_free(n->r);
	n->r = NULL;
	n->up = false;
	n->incarnation++;
	n->sync_pending = false;
	uint64_t keep = n->synced + sim_below(w, n->len - n->synced + 1);
	sim_trace(w, "n%d CRASH log %llu synced %llu keeps %llu", i + 1, (unsigned long long)n->len,
		  (unsigned long long)n->synced, (unsigned long long)keep);
	n->len = keep;
	/* the kernel closes a dead process's sockets: its peers see the links break */
	for (int k = 0; k < w->node_count; k++) {
		if (k == i || !w->nodes[k].up || sim_below(w, 4) == 0)
			continue;
		raft_peer_unreachable(w->nodes[k].r, n->id);
		sim_node_ready(w, k);
	}
}

/* ---- events ---- */

static void sim_on_sync(struct sim_world *w, int i)
{
	struct sim_node *n = &w->nodes[i];
	n->sync_pending = false;
	if (n->synced >= n->len)
		return;
	uint64_t to = n->len;
	if (sim_below(w, 4) == 0)
		to = n->synced + 1 + sim_below(w, n->len - n->synced);
	n->synced = to;
	sim_trace(w, "n%d durable %llu", i + 1, (unsigned long long)to);
	raft_durable(n->r, to, n->log[to - 1].term);
	sim_node_ready(w, i);
}

static void sim_on_deliver(struct sim_world *w, int i, struct raft_msg *m)
{
	struct sim_node *n = &w->nodes[i];
	if (!n->up)
		return;
	sim_trace(w, "recv n%llu->n%d %s term=%llu", (unsigned long long)m->from, i + 1, raft_msg_type_name(m->type),
		  (unsigned long long)m->term);
	int rc = raft_step(n->r, m);
	if (rc != 0)
		sim_fail(w, "step", "n%d refused a %s: %d", i + 1, raft_msg_type_name(m->type), rc);
	sim_node_ready(w, i);
}

static int sim_pick_up(struct sim_world *w)
{
	int start = (int)sim_below(w, (uint64_t)w->node_count);
	for (int k = 0; k < w->node_count; k++) {
		int i = (start + k) % w->node_count;
		if (w->nodes[i].up)
			return i;
	}
	return -1;
}

static int sim_find_leader(struct sim_world *w)
{
	int best = -1;
	for (int i = 0; i < w->node_count; i++)
		if (w->nodes[i].up && w->nodes[i].role_seen == RAFT_LEADER &&
		    (best < 0 || w->nodes[i].term_seen > w->nodes[best].term_seen))
			best = i;
	return best;
}

static int sim_propose(struct sim_world *w, int i, const char *payload)
{
	struct raft_proposal p[3];
	int count = payload ? 1 : 1 + (int)sim_below(w, 3);
	for (int k = 0; k < count; k++) {
		char *buf = malloc(SIM_PAYLOAD_MAX);
		if (!buf)
			abort();
		int len = payload ? snprintf(buf, SIM_PAYLOAD_MAX, "%s", payload)
				  : snprintf(buf, SIM_PAYLOAD_MAX, "p%llu", (unsigned long long)++w->proposal_seq);
		p[k] = (struct raft_proposal){.owner = buf, .data = (const uint8_t *)buf, .len = (uint32_t)len};
	}
	int rc = raft_propose(w->nodes[i].r, p, count);
	sim_trace(w, "n%d propose %d entries: %d", i + 1, count, rc);
	if (rc != 0)
		for (int k = 0; k < count; k++)
			free(p[k].owner);
	sim_node_ready(w, i);
	return rc;
}

static void sim_read(struct sim_world *w, int i)
{
	uint64_t ctx = ++w->read_seq;
	if (ctx >= w->read_cap) {
		size_t cap = w->read_cap ? w->read_cap * 2 : 256;
		w->read_required = realloc(w->read_required, cap * sizeof *w->read_required);
		if (!w->read_required)
			abort();
		w->read_cap = cap;
	}
	w->read_required[ctx] = w->committed;
	int rc = raft_read_index(w->nodes[i].r, ctx);
	sim_trace(w, "n%d read_index ctx=%llu needs>=%llu: %d", i + 1, (unsigned long long)ctx,
		  (unsigned long long)w->committed, rc);
	sim_node_ready(w, i);
}

static void sim_partition(struct sim_world *w)
{
	memset(w->blocked, 0, sizeof w->blocked);
	int kind = (int)sim_below(w, 3);
	int a = (int)sim_below(w, (uint64_t)w->node_count);
	int b = (a + 1 + (int)sim_below(w, (uint64_t)w->node_count - 1)) % w->node_count;
	uint32_t side = (uint32_t)sim_random(w);
	for (int i = 0; i < w->node_count; i++)
		for (int j = 0; j < w->node_count; j++) {
			switch (kind) {
			case 0: /* isolate a */
				w->blocked[i][j] = i != j && (i == a || j == a);
				break;
			case 1: /* two random sides */
				w->blocked[i][j] = ((side >> i) & 1) != ((side >> j) & 1);
				break;
			default: /* one way: a no longer hears b */
				w->blocked[i][j] = i == b && j == a;
				break;
			}
		}
	sim_trace(w, "PARTITION kind %d a=n%d b=n%d side=%x", kind, a + 1, b + 1, side & 0x1f);
}

static void sim_chaos(struct sim_world *w)
{
	if (w->healed)
		return;
	int roll = (int)sim_below(w, 100);
	int i = sim_pick_up(w);
	int down = -1;
	for (int k = 0; k < w->node_count; k++)
		if (!w->nodes[k].up && (down < 0 || sim_below(w, 2)))
			down = k;
	if (roll < 45 && i >= 0) {
		sim_propose(w, i, NULL);
	} else if (roll < 55 && i >= 0) {
		sim_read(w, i);
	} else if (roll < 60) {
		int l = sim_find_leader(w);
		if (l >= 0) {
			uint64_t target = w->nodes[(l + 1 + (int)sim_below(w, (uint64_t)w->node_count - 1)) % w->node_count].id;
			int rc = raft_transfer(w->nodes[l].r, target);
			sim_trace(w, "n%d transfer to n%llu: %d", l + 1, (unsigned long long)target, rc);
			sim_node_ready(w, l);
		}
	} else if (roll < 66 && i >= 0) {
		int l = sim_find_leader(w);
		sim_node_crash(w, l >= 0 && sim_below(w, 2) ? l : i); /* leaders' crashes matter most */
	} else if (roll < 74 && down >= 0) {
		sim_node_start(w, down);
	} else if (roll < 79) {
		sim_partition(w);
	} else if (roll < 85) {
		memset(w->blocked, 0, sizeof w->blocked);
		sim_trace(w, "HEAL partitions");
	} else if (roll < 88) {
		w->loss_permille = (int)sim_below(w, 150);
		w->dup_permille = (int)sim_below(w, 60);
		sim_trace(w, "NET loss %d dup %d", w->loss_permille, w->dup_permille);
	} else if (roll < 91 && i >= 0) {
		/* a link reset while both ends live (a blip, a restarted router) */
		uint64_t peer = w->nodes[(i + 1 + (int)sim_below(w, (uint64_t)w->node_count - 1)) % w->node_count].id;
		sim_trace(w, "n%d LINK RESET to n%llu", i + 1, (unsigned long long)peer);
		raft_peer_unreachable(w->nodes[i].r, peer);
		sim_node_ready(w, i);
	}
	if (w->now < w->heal_time)
		sim_schedule(w, 1 + sim_below(w, (uint64_t)w->chaos_gap_max), SIM_EV_CHAOS, -1, NULL);
}

static bool sim_all_have_marker(const struct sim_world *w)
{
	for (int i = 0; i < w->node_count; i++)
		if (!w->nodes[i].marker_applied)
			return false;
	return true;
}

static void sim_liveness(struct sim_world *w)
{
	if (!w->healed) {
		w->healed = true;
		memset(w->blocked, 0, sizeof w->blocked);
		w->loss_permille = w->dup_permille = w->slow_permille = 0;
		sim_trace(w, "HEAL ALL: faults stop, crashed nodes restart");
		for (int i = 0; i < w->node_count; i++)
			if (!w->nodes[i].up)
				sim_node_start(w, i);
	}
	bool any = false;
	for (int i = 0; i < w->node_count; i++)
		any |= w->nodes[i].marker_applied;
	int l = sim_find_leader(w);
	/* once per leader and term: it may have to catch a lagging node up first */
	if (!any && l >= 0 && (w->marker_leader != l || w->marker_term != w->nodes[l].term_seen) &&
	    sim_propose(w, l, "MARKER") == 0) {
		w->marker_leader = l;
		w->marker_term = w->nodes[l].term_seen;
	}
	sim_schedule(w, SIM_LIVENESS_PERIOD, SIM_EV_LIVENESS, -1, NULL);
}

static void sim_dispatch(struct sim_world *w, struct sim_event *ev)
{
	struct sim_node *n = ev->node >= 0 ? &w->nodes[ev->node] : NULL;
	bool current = n && n->up && ev->incarnation == n->incarnation;
	switch (ev->type) {
	case SIM_EV_DELIVER:
		sim_on_deliver(w, ev->node, ev->msg);
		free(ev->msg);
		return;
	case SIM_EV_TICK:
		if (!current)
			return;
		raft_tick(n->r);
		sim_node_ready(w, ev->node);
		sim_schedule(w, (uint64_t)n->tick_period, SIM_EV_TICK, ev->node, NULL);
		return;
	case SIM_EV_SYNC:
		if (current)
			sim_on_sync(w, ev->node);
		return;
	case SIM_EV_CHAOS:
		sim_chaos(w);
		return;
	case SIM_EV_LIVENESS:
		sim_liveness(w);
		return;
	}
}

static void sim_world_init(struct sim_world *w, uint64_t seed, uint32_t mutations, bool trace)
{
	memset(w, 0, sizeof *w);
	w->seed = seed;
	w->rng = seed * 0x2545f4914f6cdd1dull + 1;
	w->mutations = mutations;
	w->trace = trace;
	w->node_count = sim_below(w, 5) < 3 ? 3 : 5;
	w->quorum = w->node_count / 2 + 1;
	w->pre_vote = sim_below(w, 4) != 0;
	w->check_quorum = sim_below(w, 4) != 0;
	w->delay_max = 2 + (int)sim_below(w, 20);
	w->loss_permille = (int)sim_below(w, 100);
	w->dup_permille = (int)sim_below(w, 50);
	w->slow_permille = (int)sim_below(w, 50);
	w->heal_time = 1500 + sim_below(w, 1500);
	w->chaos_gap_max = 5 + (int)sim_below(w, 40);
	w->deadline = w->heal_time + SIM_LIVENESS_UNITS;
	for (int i = 0; i < w->node_count; i++) {
		w->voters[i] = (uint64_t)i + 1;
		w->nodes[i].id = (uint64_t)i + 1;
	}
	sim_trace(w, "seed %llu: %d nodes pre_vote=%d check_quorum=%d delay<=%d loss=%d dup=%d slow=%d heal at %llu chaos gap <=%d",
		  (unsigned long long)seed, w->node_count, w->pre_vote, w->check_quorum, w->delay_max,
		  w->loss_permille, w->dup_permille, w->slow_permille, (unsigned long long)w->heal_time, w->chaos_gap_max);
}

void sim_world_free(struct sim_world *w)
{
	for (int i = 0; i < w->node_count; i++) {
		raft_free(w->nodes[i].r);
		free(w->nodes[i].log);
	}
	for (size_t k = 0; k < w->heap_count; k++)
		free(w->heap[k].msg);
	free(w->heap);
	free(w->read_required);
	free(w->committed_chain);
	free(w->commit_term);
	free(w->leader_of_term);
	sim_chain_table_free(&w->chains);
	memset(w->nodes, 0, sizeof w->nodes);
	w->heap = NULL;
	w->heap_count = 0;
}

/* Runs one seed. Returns 0, or -1 with w->failure and w->fail_step set. The caller
 * frees the world with sim_world_free. */
int sim_run_seed(uint64_t seed, uint32_t mutations, bool trace, struct sim_world *w)
{
	sim_world_init(w, seed, mutations, trace);
	for (int i = 0; i < w->node_count && !w->failed; i++)
		sim_node_start(w, i);
	sim_schedule(w, 1, SIM_EV_CHAOS, -1, NULL);
	sim_schedule(w, w->heal_time, SIM_EV_LIVENESS, -1, NULL);
	while (!w->failed && w->heap_count > 0) {
		struct sim_event ev = sim_pop(w);
		w->now = ev.time;
		w->step++;
		sim_dispatch(w, &ev);
		if (!w->failed)
			sim_check_durable_majority(w);
		if (w->healed && sim_all_have_marker(w)) {
			w->recovery_units = w->now - w->heal_time;
			break;
		}
		if (w->now > w->deadline)
			sim_fail(w, "liveness", "no proposal committed on all nodes %d units after the heal",
				 SIM_LIVENESS_UNITS);
	}
	w->events_total = w->step;
	return w->failed ? -1 : 0;
}
