"""Network partitions of a 3-server cluster, each server in its own network namespace
on its own address (netlab.py), clients in the root namespace (issue 12).

- The leader cut off from both other servers (clients still reach all three), with
  writers on every server: within a few election timeouts the majority elects a new
  leader and keeps acknowledging writes, and the old leader says `Mode: follower`;
- the old leader acknowledges nothing while cut off: 20 creates sent to it right after
  the cut, while it still led, get no success answer during the partition;
- after healing, the old leader's unacknowledged entries are gone (none of those 20
  creates that was not acknowledged exists anywhere), every acknowledged write is on
  every server and the three trees (every Stat field) are identical;
- a follower cut off from the others for a while catches up once healed;
- random partitions (one server isolated, or a single link cut so that two servers
  each still reach the third), heals and SIGKILLs for RK_CHAOS_SECONDS (default 20,
  seed RK_CHAOS_SEED) under a write load from every server, with snapCount=300 and a
  core that keeps 1024 entries: snapshots, compaction and InstallSnapshot happen
  while links come and go; at the end every acknowledged write is on every server,
  the trees are identical and each connection's writes applied in order.

Skipped where namespaces cannot be made (not root, no iproute2, no veth/bridge).
RingKeeper only by default (RK_PARTITION_ZK=1 adds a ZooKeeper 3.8 ensemble).
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
import netlab
import zkwire as w
from cluster import Cluster

IMPLS = ["ringkeeper"] + (["zookeeper"] if os.environ.get("RK_PARTITION_ZK") else [])
# how long the cut lasts, and the bound on the new leader's election: RingKeeper's
# election timeout is 500 ms (randomised up to 1 s); ZooKeeper's followers give up on a
# leader after syncLimit x tickTime = 10 s
CUT_S = {"ringkeeper": 4.0, "zookeeper": 16.0}
ELECTED_S = {"ringkeeper": 3.0, "zookeeper": 13.0}
# what srvr says of a leader that stepped down: RingKeeper a follower (with no leader
# known); ZooKeeper goes LOOKING, where srvr answers that it does not serve (None)
STEPPED = {"ringkeeper": ("follower",), "zookeeper": ("follower", None)}
pytestmark = pytest.mark.skipif(not {"ringkeeper", "ringkeeper3"} & set(conftest.TARGETS),
                                reason="RingKeeper cluster tests run with a ringkeeper target")


@pytest.fixture(scope="module")
def lab_ok():
    reason = netlab.available()
    if reason:
        pytest.skip("partition tests need network namespaces: " + reason)


CHAOS_SECONDS = float(os.environ.get("RK_CHAOS_SECONDS", "20"))


@pytest.fixture(params=IMPLS)
def lab_cluster(request, lab_ok):
    yield from _lab_cluster(request, ())


@pytest.fixture
def lab_cluster_snapshots(request, lab_ok):
    yield from _lab_cluster(request, ("snapCount=300", "raft.logEntriesMax=1024"), "ringkeeper")


def _lab_cluster(request, cfg_lines, impl=None):
    impl = impl or request.param
    reason = conftest._skip_reason(impl)
    if reason:
        pytest.skip(reason)
    lab = netlab.NetLab(3)
    cl = None
    try:
        cl = Cluster(tempfile.mkdtemp(prefix="rk-part-"), size=3, force_sync=True,
                     impl=impl, addresses=lab.addresses, netns=lab.names,
                     cfg_lines=cfg_lines)
        request.node._rk_servers = cl.nodes
        cl.start(serving=True)
        yield lab, cl
    finally:
        if cl is not None:
            cl.stop()
        lab.close()
        if cl is not None and not os.environ.get("RK_KEEP_TMP"):
            shutil.rmtree(cl.workdir, ignore_errors=True)


def leaders(cl):
    return [n for n in cl.nodes if n.alive() and n.mode(timeout=1.0) == "leader"]


def wait_for(what, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = what()
        if v:
            return v
        time.sleep(step)
    return what()


def call_on(node, op, body):
    with L._Session(node, 10.0) as c:
        return c.call(op, body)


def test_the_leader_cut_off_steps_down_acknowledges_nothing_and_its_entries_are_gone(lab_cluster):
    lab, cl = lab_cluster
    old = cl.wait_leader()
    i_old = cl.nodes.index(old)
    assert call_on(old, w.OP_CREATE, w.create_body("/load"))[0] == 0
    assert call_on(old, w.OP_CREATE, w.create_body("/cut"))[0] == 0
    with L.Writers(cl, "/load") as load:
        time.sleep(1.0)
        writer = L.connect(old, timeout=10.0, session_timeout_ms=30000)
        lab.isolate(i_old)
        cut_at = time.monotonic()
        names = ["/cut/c%d" % j for j in range(20)]
        xids = [writer.send_request(w.OP_CREATE, w.create_body(p, b"cut")) for p in names]
        still_led = old.mode(timeout=1.0)
        new = wait_for(lambda: [n for n in leaders(cl) if n is not old], ELECTED_S[cl.impl] + 10)
        elected_s = time.monotonic() - cut_at
        assert new, "no new leader among the majority:\n%s" % cl.logs()
        new = new[0]
        stepped = wait_for(lambda: old.mode(timeout=1.0) in STEPPED[cl.impl], ELECTED_S[cl.impl] + 2)
        stepped_s = time.monotonic() - cut_at
        during_cut, how = L.replies(writer, xids, max(0.1, cut_at + CUT_S[cl.impl] - time.monotonic()))
        acked_in_cut = [p for p, x in zip(names, xids) if during_cut.get(x, (None,))[0] == 0]
        direct = call_on(new, w.OP_CREATE, w.create_body("/cut/majority", b"m"))[0]
        time.sleep(max(0.0, cut_at + CUT_S[cl.impl] - time.monotonic()))  # the cut lasts CUT_S
        in_cut = len(load.acked_since(cut_at))
        lab.heal()
        healed_at = time.monotonic()
        rest, _ = L.replies(writer, [x for x in xids if x not in during_cut], 10.0)
        acked_after = [p for p, x in zip(names, xids) if rest.get(x, (None,))[0] == 0]
        writer.close()
        assert wait_for(lambda: len(leaders(cl)) == 1, 10.0), "not exactly one leader after healing"
        time.sleep(1.0)
    after_heal = len(load.acked_since(healed_at))
    report = ("old leader n%d (still '%s' right after the cut), new leader n%d after %.2fs, old one a "
              "follower after %.2fs; %d writes acknowledged during the cut, %d after healing"
              % (old.sid, still_led, new.sid, elected_s, stepped_s, in_cut, after_heal))
    assert stepped, "the cut-off leader does not step down: Mode %s (%s)" % (old.mode(), report)
    assert not acked_in_cut, "acknowledged by the cut-off leader: %s (%s)" % (acked_in_cut, report)
    assert direct == 0, report
    assert elected_s < ELECTED_S[cl.impl], report
    assert in_cut > 20, report
    tree = L.converged(cl.nodes, timeout=30)
    ghosts = [p for p in names if p in tree and p not in acked_after]
    assert not ghosts, "the old leader's unacknowledged creates were committed: %s (%s)" % (ghosts, report)
    lost = [p for p in acked_after if p not in tree] + [p for p in load.acked if p not in tree]
    assert not lost, "acknowledged, then lost: %s (%s)" % (lost[:10], report)
    assert "/cut/majority" in tree
    assert not load.order_violations(tree), load.order_violations(tree)[:5]
    assert not load.refused and not load.protocol_errors, (load.refused, load.protocol_errors)
    print(report)


def test_a_follower_cut_off_catches_up_after_healing(lab_cluster):
    lab, cl = lab_cluster
    lead = cl.wait_leader()
    fol = next(n for n in cl.nodes if n is not lead)
    assert call_on(lead, w.OP_CREATE, w.create_body("/f"))[0] == 0
    lab.isolate(cl.nodes.index(fol))
    with L._Session(lead, 10.0) as c:
        res = L._pipelined(c, [(w.OP_CREATE, w.create_body("/f/n%d" % i, b"x")) for i in range(500)])
    assert all(err == 0 for err, _ in res)
    time.sleep(2.0)  # the follower campaigns alone meanwhile (its term grows)
    lab.heal()
    assert wait_for(lambda: len(leaders(cl)) == 1, 10.0)
    tree = L.converged(cl.nodes, timeout=20)
    assert all("/f/n%d" % i in tree for i in range(500))


def test_a_follower_behind_does_not_call_a_new_session_expired(lab_cluster):
    """A session created through the leader while a follower is cut off: the follower
    has not seen it, and a client that reattaches there (its first server just died,
    so it has seen no zxid) must not be told 'expired'. ZooKeeper's follower asks its
    leader (REVALIDATE); RingKeeper's asks for a read index. Cut off, neither can
    answer, so the connection closes without a verdict; once healed, the follower
    knows the session and takes it."""
    lab, cl = lab_cluster
    lead = cl.wait_leader()
    fol = next(n for n in cl.nodes if n is not lead)
    lab.isolate(cl.nodes.index(fol))
    try:
        c = L.connect(lead, timeout=10.0, session_timeout_ms=30000)
        sid, pw = c.session_id, c.passwd
        err, _ = c.call(w.OP_CREATE, w.create_body("/reval", b"", flags=1))  # an ephemeral
        assert err == 0
        c.close()  # no closeSession: the session lives on
        r = w.RawConn(fol.client_port, host=fol.host, timeout=15.0)
        try:
            r.send_raw(w.frame(w.connect_body(timeout_ms=30000, session_id=sid, passwd=pw, last_zxid=0)))
            try:
                body = r.recv_frame()
            except (w.Closed, OSError):
                body = None  # closed without an answer: no verdict, try another server
        finally:
            r.close()
        if body is not None:
            d = w.Dec(body)
            d.int()
            timeout, got = d.int(), d.long()
            assert (timeout, got) != (0, 0), "a follower behind called session 0x%x expired" % sid
    finally:
        lab.heal()
    assert wait_for(lambda: len(leaders(cl)) == 1, 10.0)

    def reattached():
        try:
            r = w.RawConn(fol.client_port, host=fol.host, timeout=5.0)
        except OSError:
            return None
        try:
            resp = r.handshake(read_only=False, timeout_ms=30000, session_id=sid, passwd=pw, last_zxid=0)
            if resp["sessionId"] != sid:
                return resp
            err, d = r.call(w.OP_EXISTS, w.path_watch_body("/reval"))
            if err != 0:
                return resp, err, None
            for _ in range(4):
                d.long()  # czxid, mzxid, ctime, mtime
            for _ in range(3):
                d.int()  # version, cversion, aversion
            return resp, err, d.long()
        except (w.Closed, OSError):
            return None  # not serving yet: still catching up or electing
        finally:
            r.close()
    got = wait_for(reattached, 15.0, step=0.2)
    assert isinstance(got, tuple), "the healed follower did not take session 0x%x: %r" % (sid, got)
    resp, err, owner = got
    assert resp["timeOut"] > 0 and err == 0, got
    assert owner == sid, "its ephemeral belongs to 0x%x, not 0x%x" % (owner or 0, sid)


def test_random_partitions_and_kills_with_snapshots_lose_no_acknowledged_write(lab_cluster_snapshots):
    """Partitions, heals and SIGKILLs at random with snapshots every 300 entries: a
    server cut off for a few seconds falls more than 1024 entries behind and comes
    back by InstallSnapshot, which a later cut may interrupt."""
    lab, cl = lab_cluster_snapshots
    seed = int(os.environ.get("RK_CHAOS_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/pchaos"))[0] == 0
    assert call_on(cl.leader(), w.OP_CREATE, w.create_body("/pchaosreg"))[0] == 0
    actions = []
    t0 = time.monotonic()
    with L.Writers(cl, "/pchaos", window=2) as load, L.Register(cl, "/pchaosreg") as reg:
        while time.monotonic() - t0 < CHAOS_SECONDS:
            dead = [i for i, n in enumerate(cl.nodes) if not n.alive()]
            r = rng.random()
            if dead and (r < 0.5 or len(dead) > 1):
                i = rng.choice(dead)
                cl.nodes[i].start()
                actions.append("restart n%d" % cl.nodes[i].sid)
            elif lab.cuts and r < 0.6:
                lab.heal()
                actions.append("heal")
            elif r < 0.75:
                i = rng.randrange(len(cl.nodes))
                if not dead and cl.nodes[i].alive():
                    cl.nodes[i].kill(signal.SIGKILL)
                    actions.append("kill n%d" % cl.nodes[i].sid)
            elif r < 0.9:
                lead = next((j for j, n in enumerate(cl.nodes)
                             if n.alive() and n.mode(timeout=0.5) == "leader"), None)
                i = lead if lead is not None and rng.random() < 0.6 else rng.randrange(len(cl.nodes))
                lab.isolate(i)
                actions.append("isolate n%d%s" % (cl.nodes[i].sid, " (leader)" if i == lead else ""))
            else:
                a, b = rng.sample(range(len(cl.nodes)), 2)
                lab.cut(a, b)
                actions.append("cut n%d-n%d" % (cl.nodes[a].sid, cl.nodes[b].sid))
            time.sleep(rng.uniform(0.5, 2.5))
        lab.heal()
        what = L.chaos_over(cl, seed, actions)
    tree = L.assert_chaos_survived(cl, load, what)
    L.assert_register_linearizable(reg, tree, what)
    mntr = [dict(ln.split("\t", 1) for ln in n.four_letter("mntr").splitlines() if "\t" in ln)
            for n in cl.nodes]
    installed = sum(int(m.get("rk_snapshot_installed_count", 0)) for m in mntr)
    print("partition chaos: %s; %d acknowledged, %d unknown, %d reconnects; %d snapshots installed "
          "(since each server's last start); %s" % (what, len(load.acked), len(load.unknown),
                                                    load.reconnects, installed, reg.summary()))
