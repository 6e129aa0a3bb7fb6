"""Pauses (SIGSTOP/SIGCONT) of cluster servers under write load (issue 12).

- The leader stopped for longer than the election timeout, with writers on every
  server: the others elect a new leader within a few election timeouts and writes go
  on; once resumed the old leader says `Mode: follower`;
- it acknowledges nothing it cannot commit: writes that reached its socket while it
  was stopped and were acknowledged are then on every server; of those not
  acknowledged (CONNECTIONLOSS or no answer: the outcome is unknown to the client)
  what was applied is a prefix of what the connection sent (a session's writes apply
  in order), and so for every connection of the load;
- it answers no stale sync+read: a session on the stopped leader sends sync + getData
  while it is stopped, after a setData was acknowledged by the new leader; the getData
  sees the new value, or the sync/getData fail or the connection closes; it never
  answers the old value (ZooKeeper 3.8 does: ZOOKEEPER-1675);
- pauses and SIGKILLs combined (random actions for RK_CHAOS_SECONDS, default 20, seed
  RK_CHAOS_SEED): every acknowledged write is on every server at the end and the trees
  (every Stat field) are identical; and once more with snapCount=300, so snapshots,
  log compaction and InstallSnapshot to a server back from a pause or a kill happen
  under the same chaos;
- repeated short pauses of the leader (RK_CHAOS_SECONDS) with 8 writes in flight per
  connection: no acknowledged write lost, and each connection's applied writes are a
  prefix of what it sent (a session's writes apply in order).

RingKeeper only by default (RK_PAUSE_ZK=1 adds a ZooKeeper 3.8 ensemble, which fails
the stale-read check).
"""
import os
import random
import shutil
import signal
import tempfile
import time

import pytest

import clusterload as L
import conftest
import zkwire as w
from cluster import Cluster

IMPLS = ["ringkeeper"] + (["zookeeper"] if os.environ.get("RK_PAUSE_ZK") else [])
# stopped for longer than 2 x the election timeout: RingKeeper 500 ms (randomised up to
# 1 s); ZooKeeper's followers give up on a leader after syncLimit x tickTime = 10 s
PAUSE_S = {"ringkeeper": 3.0, "zookeeper": 14.0}
ELECTED_S = {"ringkeeper": 3.0, "zookeeper": 13.0}
ROUNDS = 3
CHAOS_SECONDS = float(os.environ.get("RK_CHAOS_SECONDS", "20"))
pytestmark = pytest.mark.skipif(not {"ringkeeper", "ringkeeper3"} & set(conftest.TARGETS),
                                reason="RingKeeper cluster tests run with a ringkeeper target")


@pytest.fixture(params=IMPLS)
def make_cluster(request):
    reason = conftest._skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    made = []

    def make(size=3, force_sync=True, cfg_lines=()):
        c = Cluster(tempfile.mkdtemp(prefix="rk-pause-"), size=size, force_sync=force_sync,
                    impl=request.param, cfg_lines=cfg_lines)
        made.append(c)
        request.node._rk_servers = c.nodes
        c.start(serving=True)
        return c

    yield make
    for c in made:
        for n in c.nodes:
            if n.paused:
                n.resume()
        c.stop()
        if not os.environ.get("RK_KEEP_TMP"):
            shutil.rmtree(c.workdir, ignore_errors=True)


def call_on(node, op, body):
    with L._Session(node, 10.0) as c:
        return c.call(op, body)


def wait_mode(node, mode, timeout):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = node.mode()
        if seen == mode:
            return seen
        time.sleep(0.05)
    return seen


def test_a_paused_leader_steps_down_acknowledges_nothing_it_cannot_commit_and_reads_nothing_stale(make_cluster):
    cl = make_cluster()
    key = "/k"
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body(key, b"v0"))[0] == 0
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/paused"))[0] == 0
    sent_paused, acked_paused = [], []
    problems = []
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/load"))[0] == 0
    with L.Writers(cl, "/load") as load:
        for rnd in range(ROUNDS):
            old = cl.wait_leader()
            value = b"v%d" % rnd
            # opened before the pause: a reader and a writer on the leader
            reader = L.connect(old, timeout=10.0, session_timeout_ms=30000)
            writer = L.connect(old, timeout=10.0, session_timeout_ms=30000)
            err, d = reader.call(w.OP_GETDATA, w.path_watch_body(key))
            assert (err, d.buffer()) == (0, value)
            time.sleep(0.5)
            old.pause()
            paused_at = time.monotonic()
            names = ["/paused/r%d-%d" % (rnd, j) for j in range(20)]
            wxids = [writer.send_request(w.OP_CREATE, w.create_body(p, b"p")) for p in names]
            sent_paused.append(names)
            new = cl.wait_leader(timeout=ELECTED_S[cl.impl] + 10, exclude=old)
            elected_s = time.monotonic() - paused_at
            newer = b"v%d" % (rnd + 1)
            err, _ = call_on(new, w.OP_SETDATA, w.setdata_body(key, newer, -1))
            assert err == 0, "setData on the new leader: %d" % err
            # sync + read on the stopped leader's session, waiting in its socket
            sx = reader.send_request(w.OP_SYNC, w.path_body(key))
            gx = reader.send_request(w.OP_GETDATA, w.path_watch_body(key))
            time.sleep(max(0.0, paused_at + PAUSE_S[cl.impl] - time.monotonic()))
            during = len(load.acked_since(paused_at))
            old.resume()
            got, how = L.replies(reader, [sx, gx], 10.0)
            if got.get(sx, (None,))[0] == 0 and gx in got:
                err, d = got[gx]
                if err == 0:
                    data = d.buffer()
                    if data != newer:
                        problems.append("round %d: sync+getData on the resumed old leader n%d answered "
                                        "%r, the new leader had acknowledged %r" % (rnd, old.sid, data, newer))
            wgot, _ = L.replies(writer, wxids, 10.0)
            acked_paused += [p for p, x in zip(names, wxids) if wgot.get(x, (None,))[0] == 0]
            reader.close()
            writer.close()
            mode = wait_mode(old, "follower", 5.0)
            assert mode == "follower", "round %d: the resumed old leader n%d says Mode: %s" % (rnd, old.sid, mode)
            assert cl.leader() is new
            assert elected_s < ELECTED_S[cl.impl], "round %d: new leader after %.2fs" % (rnd, elected_s)
            assert during > 20, "round %d: %d writes acknowledged during the pause" % (rnd, during)
            time.sleep(0.5)
    assert not problems, problems
    tree = L.converged(cl.nodes, timeout=30)
    present = {p for p in tree if p.startswith("/paused/")}
    missing = set(acked_paused) - present
    assert not missing, "acknowledged by the paused leader, then lost: %s" % sorted(missing)[:10]
    out_of_order = [v for v in (L.not_a_prefix(s, present) for s in sent_paused) if v]
    assert not out_of_order, "to the paused leader: (lost, a later write of the same connection applied): %s" % out_of_order
    lost = {p for p in load.acked if p not in tree}
    assert len(load.acked) > 200 and not lost, "%d acknowledged, lost %s" % (len(load.acked), sorted(lost)[:10])
    assert not load.order_violations(tree), load.order_violations(tree)[:5]
    assert not load.refused and not load.protocol_errors, (load.refused, load.protocol_errors)


def test_pauses_and_kills_lose_no_acknowledged_write(make_cluster):
    chaos(make_cluster())


def test_pauses_and_kills_with_snapshots_every_few_hundred_entries(make_cluster):
    """The same with snapCount=300 and a core that keeps 1024 entries in memory:
    snapshots, log compaction and InstallSnapshot (2-5 a run) to a server that comes
    back behind the leader's window, all under the chaos.
    It found a transfer that stopped for good (2026-12-03, twice in 26 runs): a burst
    of acknowledgements read together left the leader's sent offset behind its
    acknowledged one (raft/pipeline_install.c, leader_on_ack)."""
    cl = make_cluster(cfg_lines=["snapCount=300", "raft.logEntriesMax=1024"])
    chaos(cl)
    if cl.impl != "ringkeeper":
        return
    mntr = [dict(ln.split("\t", 1) for ln in n.four_letter("mntr").splitlines() if "\t" in ln)
            for n in cl.nodes]
    taken = sum(int(m.get("rk_snapshot_count", 0)) for m in mntr)
    installed = sum(int(m.get("rk_snapshot_installed_count", 0))
                    for m in mntr)
    print("snapshots: %d taken (since each server's last start), %d installed" % (taken, installed))
    assert taken > 0


def chaos(cl):
    """Random pauses, resumes, SIGKILLs and restarts for CHAOS_SECONDS under a write
    load from every server; then every acknowledged write is on every server."""
    seed = int(os.environ.get("RK_CHAOS_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/chaos"))[0] == 0
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/chaosreg"))[0] == 0
    actions = []
    t0 = time.monotonic()
    # fewer nodes to compare at the end: two writes in flight
    with L.Writers(cl, "/chaos", window=2) as load, L.Register(cl, "/chaosreg") as reg:
        while time.monotonic() - t0 < CHAOS_SECONDS:
            down = [n for n in cl.nodes if n.paused or not n.alive()]
            up = [n for n in cl.nodes if n not in down]
            r = rng.random()
            if down and (len(down) >= 2 or r < 0.5):
                n = rng.choice(down)
                if n.paused:
                    n.resume()
                    actions.append("resume n%d" % n.sid)
                else:
                    n.start()
                    actions.append("restart n%d" % n.sid)
            else:
                lead = next((n for n in up if n.mode(timeout=0.5) == "leader"), None)
                n = lead if lead is not None and rng.random() < 0.7 else rng.choice(up)
                if rng.random() < 0.5:
                    n.pause()
                    actions.append("pause n%d%s" % (n.sid, " (leader)" if n is lead else ""))
                else:
                    n.kill(signal.SIGKILL)
                    actions.append("kill n%d%s" % (n.sid, " (leader)" if n is lead else ""))
            time.sleep(rng.uniform(0.3, 1.5))
        what = L.chaos_over(cl, seed, actions)
    tree = L.assert_chaos_survived(cl, load, what)
    L.assert_register_linearizable(reg, tree, what)
    print("chaos: %s; %d acknowledged, %d unknown, %d refused, %d reconnects; %s"
          % (what, len(load.acked), len(load.unknown), len(load.refused), load.reconnects,
             reg.summary()))


def test_a_connections_writes_apply_in_order_across_leader_pauses(make_cluster):
    """Pauses only, shorter than the writers' reply timeout: the clients of the stopped
    leader keep their connections and their pipelined writes (8 in flight) reach it
    when it resumes, as it steps down."""
    cl = make_cluster()
    rng = random.Random()
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/order"))[0] == 0
    pauses = 0
    with L.Writers(cl, "/order", per_server=2, window=8) as load:
        t0 = time.monotonic()
        while time.monotonic() - t0 < CHAOS_SECONDS:
            lead = cl.wait_leader(timeout=ELECTED_S[cl.impl] + 10)
            lead.pause()
            time.sleep(rng.uniform(1.2, 2.0))  # > the election timeout, < the reply timeout
            lead.resume()
            pauses += 1
            time.sleep(rng.uniform(0.5, 1.5))
    present = L.converged_children(cl.nodes, "/order", timeout=30)
    lost = sorted(p for p in load.acked if p not in present)
    assert not lost, "%d acknowledged writes lost, e.g. %s" % (len(lost), lost[:10])
    # (CI's sanitizer pass gives it 10 s: 3-4 pauses)
    assert len(load.acked) > 100 and pauses >= 3, (len(load.acked), pauses)
    assert not load.refused and not load.protocol_errors, (load.refused, load.protocol_errors)
    if load.order_violations(present):
        raise L.OrderViolation("after %d pauses: %s" % (pauses, load.order_violations(present)[:5]))
