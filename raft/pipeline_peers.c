/*
 * pipeline_peers.c — the raft thread's side of the peer transport (raft/transport.h):
 * with more than one voter, the consensus core's messages leave through it and the
 * peers' messages come back through it into the core.
 *
 * Thread: the raft thread only. The transport's CQEs arrive on the raft thread's ring
 * (UD_PIPE_PEER | the transport's low bits) and are handled between ready records:
 * a peer's message is stepped into the core at once, and the loop's next turn carries
 * out what it changed (raft/core.h: no input between raft_ready and raft_advance).
 */
#include <errno.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "raft/msg_codec.h"
#include "raft/pipeline_impl.h"

/*
 * A refusal (peer down, queue full) is counted by the transport; Raft retries its own
 * messages. Forwarded proposals (PROP) it does not retry, and one that is dropped
 * must not be overtaken by a later one of the same sessions (a client's writes apply
 * in its order, or not at all). So after a dropped forward nothing more is forwarded
 * in this ready record, and once it is handled the leader is forgotten
 * (pipe_peers_after_ready): its loss fails every pending proposal of ours
 * (pipe_fail_pending: CONNECTIONLOSS, and their connections take no more until
 * they reconnect) instead of a probe finding the gap seconds later. The leader's next
 * heartbeat brings it back.
 */
static void pipe_peer_send(void *ctx, const struct raft_msg *m)
{
	struct raft_pipeline *p = ctx;
	if (m->type != RAFT_MSG_PROP) {
		transport_send(p->transport, m);
		return;
	}
	if (p->forward_failed)
		return;
	int rc = transport_send(p->transport, m);
	if (rc < 0) {
		p->forward_failed = true;
		log_warn("raft: a forward of %d proposals to leader %llu was dropped (%s): failing what is pending",
			 m->entry_count, (unsigned long long)m->to, strerror(-rc));
	}
}

void pipe_peers_after_ready(struct raft_pipeline *p)
{
	if (!p->forward_failed)
		return;
	p->forward_failed = false;
	raft_peer_unreachable(p->core, p->leader);
}

static void pipe_on_peer_msg(void *ctx, const struct raft_msg *m)
{
	struct raft_pipeline *p = ctx;
	if (msg_codec_is_host_type((uint32_t)m->type)) {
		pipe_install_on_msg(p, m); /* the snapshot transfer: not the core's */
		return;
	}
	if (raft_step(p->core, m) < 0)
		log_debug("raft: dropped a malformed %s from %llu", raft_msg_type_name(m->type),
			  (unsigned long long)m->from);
}

int pipe_peers_start(struct raft_pipeline *p)
{
	if (p->voter_count == 1)
		return 0;
	const struct rk_config *cfg = p->cfg;
	struct transport_config tc;
	transport_config_default(&tc, p->server_id, cfg->servers, cfg->server_count);
	tc.on_msg = pipe_on_peer_msg;
	tc.ctx = p;
	tc.seed = (uint64_t)rk_now_us() ^ p->server_id;
	int rc = transport_create(&tc, &p->ring, UD_PIPE_PEER, &p->transport);
	if (rc < 0) {
		log_error("raft: the peer transport cannot start: %s", strerror(-rc));
		return rc;
	}
	p->send_msg = pipe_peer_send;
	p->send_ctx = p;
	log_info("raft: %d voters, this server is %u", p->voter_count, p->server_id);
	return 0;
}

void pipe_peers_stop(struct raft_pipeline *p)
{
	if (p->transport)
		transport_destroy(p->transport);
	p->transport = NULL;
}

/*
 * A follower watches the links to its leader: when one that was up goes down (the
 * leader's process died and the kernel closed its sockets, or the path reset), the
 * core is told at once, and campaigns within one election timeout instead of waiting
 * out the lease (raft_peer_unreachable). A link still coming up is not a loss.
 */
static void pipe_watch_leader_links(struct raft_pipeline *p)
{
	struct transport_peer_status ts;
	unsigned up = 0;
	if (p->role == RAFT_FOLLOWER && p->leader &&
	    transport_peer_status(p->transport, (uint32_t)p->leader, &ts) == 0)
		for (unsigned k = 0; k < TRANSPORT_LINKS; k++)
			up |= (unsigned)ts.link_up[k] << k;
	if (p->leader != p->watched_leader) {
		p->watched_leader = p->leader;
		p->watched_links = up;
		return;
	}
	unsigned lost = p->watched_links & ~up;
	p->watched_links = up;
	if (lost && p->leader) {
		log_info("raft: the link to leader %llu broke: campaigning without waiting out the lease",
			 (unsigned long long)p->leader);
		raft_peer_unreachable(p->core, p->leader);
	}
}

bool pipe_peers_on_cqe(struct raft_pipeline *p, const struct io_uring_cqe *cqe)
{
	if (!p->transport || !transport_user_data_match(UD_PIPE_PEER, cqe->user_data))
		return false;
	transport_on_cqe(p->transport, cqe);
	pipe_watch_leader_links(p);
	return true;
}

void pipe_peers_tick(struct raft_pipeline *p)
{
	if (p->transport)
		transport_tick(p->transport, rk_now_us() / 1000);
}

/* Issues what the turn queued for the peers at once (not at the next wait). */
void pipe_peers_flush(struct raft_pipeline *p)
{
	if (p->transport && transport_flush(p->transport) > 0)
		io_uring_submit(&p->ring);
}
