/*
 * pipeline_lead.c — leadership transfer: the rqld and ydld four-letter words (named as
 * ClickHouse Keeper and RaftKeeper name them) and raft.preferredLeader.
 *
 * Thread: the raft thread only.
 *
 *   ydld on the leader: hand over to the follower with the highest match index (ties:
 *        the lowest id), through the core's transfer (it catches the follower up,
 *        then sends TimeoutNow). Proposals wait meanwhile (the core refuses them with
 *        -EBUSY); the core gives up after one election timeout.
 *   rqld on a follower: a RK_OP_LEADER_REQUEST entry names this server; the leader
 *        that applies it transfers to it. Through the log, so the request reaches the
 *        leader whoever it is, and over the same path as every forward.
 *   raft.preferredLeader: a leader that is not the preferred server transfers to it
 *        once it is replicating and has every entry the leader has, checked every
 *        PIPE_PREFERRED_CHECK_MS.
 * Transfers are inputs to the core: they run from the timers, between ready records.
 */
#include <errno.h>

#include "core/log.h"
#include "raft/pipeline_impl.h"

/* The follower to hand over to: the highest match, the lowest id on a tie; 0 none. */
static uint64_t pipe_lead_best_follower(const struct raft_status *st)
{
	uint64_t best = 0, best_match = 0;
	for (int i = 0; i < st->voter_count; i++) {
		const struct raft_peer_status *pr = &st->peers[i];
		if (pr->id == st->id || pr->state != RAFT_PROGRESS_REPLICATE)
			continue;
		if (!best || pr->match > best_match || (pr->match == best_match && pr->id < best)) {
			best = pr->id;
			best_match = pr->match;
		}
	}
	return best;
}

static void pipe_lead_transfer(struct raft_pipeline *p, uint64_t target, const char *why)
{
	int rc = raft_transfer(p->core, target);
	if (rc == 0)
		log_info("raft: handing leadership to server %llu (%s)", (unsigned long long)target, why);
	else
		log_warn("raft: cannot hand leadership to server %llu (%s): %s", (unsigned long long)target, why,
			 rc == -EAGAIN ? "not leading" : "not a voter");
}

void pipe_lead_on_msg(struct raft_pipeline *p, const struct rk_msg *m)
{
	if (p->voter_count == 1)
		return;
	if (m->err == RK_LEAD_YIELD) {
		p->lead_yield = true; /* carried out by pipe_lead_tick */
	} else if (m->err == RK_LEAD_REQUEST && p->role != RAFT_LEADER &&
		   p->batch_count < PIPE_BATCH_ENTRIES_MAX) {
		struct rk_msg *e = pipe_own_entry(0, RK_OP_LEADER_REQUEST, NULL, 0);
		if (e)
			p->batch[p->batch_count++] = e;
	}
}

void pipe_lead_on_request_entry(struct raft_pipeline *p, uint32_t server)
{
	if (p->role == RAFT_LEADER && server != p->server_id)
		p->lead_to = server;
}

void pipe_lead_tick(struct raft_pipeline *p, int64_t now)
{
	if (p->voter_count == 1)
		return;
	if (p->lead_to) {
		pipe_lead_transfer(p, p->lead_to, "rqld: it asked to lead");
		p->lead_to = 0;
	}
	if (p->lead_yield) {
		p->lead_yield = false;
		struct raft_status st;
		raft_status(p->core, &st);
		uint64_t to = st.role == RAFT_LEADER ? pipe_lead_best_follower(&st) : 0;
		if (to)
			pipe_lead_transfer(p, to, "ydld");
		else
			log_warn("raft: ydld: %s", st.role == RAFT_LEADER ? "no follower is replicating" : "not leading");
	}
	uint32_t preferred = (uint32_t)p->cfg->raft_preferred_leader;
	if (!preferred || preferred == p->server_id || p->role != RAFT_LEADER || now < p->next_preferred_ms)
		return;
	p->next_preferred_ms = now + PIPE_PREFERRED_CHECK_MS;
	struct raft_status st;
	raft_status(p->core, &st);
	if (st.transferee)
		return;
	for (int i = 0; i < st.voter_count; i++) {
		const struct raft_peer_status *pr = &st.peers[i];
		if (pr->id == preferred && pr->state == RAFT_PROGRESS_REPLICATE && pr->match >= st.last_index)
			pipe_lead_transfer(p, preferred, "raft.preferredLeader");
	}
}
