"""A replicated RingKeeper: 3 and 5 real processes on 127.0.0.1 (issue 12).

- writes from clients of every server are applied on every server, and each server
  names itself leader or follower;
- SIGKILL of the leader under writes from clients spread over all servers: a new
  leader within a few election timeouts, writes go on, and every acknowledged write
  is on every server once the old leader is back;
- a killed follower catches up when it returns; 5 servers keep serving writes with
  two of them dead;
- an idle session connected to a follower outlives its timeout (the follower reports
  it alive to the leader);
- a whole-cluster restart gives identical trees on every server.

RingKeeper only: the comparison with a ZooKeeper ensemble is the cluster issue's.
"""
import os
import shutil
import signal
import tempfile
import threading
import time

import pytest

from cluster import Cluster

TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")]
pytestmark = pytest.mark.skipif(not {"ringkeeper", "ringkeeper3"} & set(TARGETS)
                                or not os.environ.get("RINGKEEPER_BIN"),
                                reason="RingKeeper cluster tests need RINGKEEPER_BIN and a ringkeeper target")


@pytest.fixture
def cluster_factory():
    made = []

    def make(size=3, force_sync=False):
        c = Cluster(tempfile.mkdtemp(prefix="rk-cluster-"), size=size, force_sync=force_sync)
        made.append(c)
        c.start()
        return c

    yield make
    for c in made:
        c.stop()
        shutil.rmtree(c.workdir, ignore_errors=True)


def client(hosts, timeout=10.0):
    from kazoo.client import KazooClient
    c = KazooClient(hosts=hosts, timeout=timeout, randomize_hosts=False)
    c.start(timeout=15)
    return c


def rotated(cluster, first):
    """All servers, starting with `first`: a client connects there, then fails over."""
    i = cluster.nodes.index(first)
    order = cluster.nodes[i:] + cluster.nodes[:i]
    return ",".join(n.hosts for n in order)


def present_everywhere(cluster, paths, nodes=None):
    """Every path readable (after sync) through each given server; returns what is missing."""
    missing = {}
    for n in nodes or cluster.nodes:
        c = client(n.hosts)
        try:
            # retried on CONNECTIONLOSS: on a loaded machine an election may bounce the
            # connection (a write pending at a leader change is answered that way)
            c.retry(c.sync, "/")
            gone = [p for p in paths if c.retry(c.exists, p) is None]
            if gone:
                missing[n.sid] = gone[:5] + (["... %d in all" % len(gone)] if len(gone) > 5 else [])
        finally:
            c.stop()
            c.close()
    return missing


class Writers:
    """One writer per server (each client first connected there), creating sequential
    nodes without pause; records every create that was acknowledged."""

    def __init__(self, cluster, root):
        self.acked, self.lock = [], threading.Lock()
        self.stop_ev = threading.Event()
        self.clients = [client(rotated(cluster, n)) for n in cluster.nodes]
        self.clients[0].ensure_path(root)
        self.root = root
        self.threads = [threading.Thread(target=self.run, args=(c, i), daemon=True)
                        for i, c in enumerate(self.clients)]
        self.errors = 0

    def run(self, c, i):
        from kazoo.exceptions import KazooException
        while not self.stop_ev.is_set():
            try:
                path = c.create("%s/w%d-" % (self.root, i), b"v", sequence=True)
                with self.lock:
                    self.acked.append((time.monotonic(), path))
            except (KazooException, Exception):  # connection loss, timeouts: retried
                self.errors += 1
                time.sleep(0.05)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)
        for c in self.clients:
            c.stop()
            c.close()


def test_writes_through_every_server_reach_every_server(cluster_factory):
    cl = cluster_factory(3)
    modes = sorted(n.mode() for n in cl.nodes)
    assert modes == ["follower", "follower", "leader"], modes
    deadline = time.monotonic() + 5
    while True:  # the leader's mntr counts its followers once both are replicated to
        mntr = dict(l.split("\t", 1) for l in cl.leader().four_letter("mntr").splitlines() if "\t" in l)
        if mntr.get("zk_synced_followers") == "2" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (mntr["zk_server_state"], mntr["zk_followers"], mntr["zk_synced_followers"]) == ("leader", "2", "2")
    for n in cl.nodes:
        c = client(n.hosts)
        c.create("/from-%d" % n.sid, b"%d" % n.sid)
        c.stop()
        c.close()
    assert present_everywhere(cl, ["/from-1", "/from-2", "/from-3"]) == {}


def test_leader_killed_under_load_loses_no_acknowledged_write(cluster_factory):
    cl = cluster_factory(3, force_sync=True)
    old = cl.leader()
    with Writers(cl, "/load") as w:
        time.sleep(1.5)
        before = len(w.acked)
        killed_at = time.monotonic()
        old.kill(signal.SIGKILL)
        new = cl.wait_leader(timeout=10, exclude=old)
        elected_s = time.monotonic() - killed_at
        time.sleep(2.0)
        after = [p for t, p in w.acked if t > killed_at]
    assert before > 50, "the load ran before the kill"
    assert new is not old
    assert elected_s < 3.0, "new leader after %.2fs" % elected_s
    assert len(after) > 20, "writes went on after the kill (%d)" % len(after)
    old.start()
    time.sleep(1.0)
    paths = [p for _, p in w.acked]
    assert present_everywhere(cl, paths) == {}


def test_a_killed_follower_catches_up(cluster_factory):
    cl = cluster_factory(3)
    lead = cl.leader()
    fol = next(n for n in cl.nodes if n is not lead)
    fol.kill(signal.SIGKILL)
    c = client(lead.hosts)
    paths = [c.create("/missed-", b"x", sequence=True) for _ in range(200)]
    c.stop()
    c.close()
    fol.start()
    time.sleep(1.0)
    assert present_everywhere(cl, paths, nodes=[fol]) == {}


def test_five_servers_keep_serving_with_two_dead(cluster_factory):
    cl = cluster_factory(5)
    lead = cl.leader()
    dead = [n for n in cl.nodes if n is not lead][:2]
    for n in dead:
        n.kill(signal.SIGKILL)
    live = [n for n in cl.nodes if n not in dead]
    c = client(live[-1].hosts)
    paths = [c.create("/five-", b"x", sequence=True) for _ in range(50)]
    c.stop()
    c.close()
    assert present_everywhere(cl, paths, nodes=live) == {}


def test_an_idle_session_on_a_follower_outlives_its_timeout(cluster_factory):
    cl = cluster_factory(3)
    fol = next(n for n in cl.nodes if n.mode() == "follower")
    c = client(fol.hosts, timeout=4.0)  # the minimum: 2 x tickTime
    c.create("/eph", b"", ephemeral=True)
    time.sleep(10.0)  # 2.5 timeouts: only pings keep it alive, on the follower
    lead = client(cl.leader().hosts)
    lead.sync("/")
    assert lead.exists("/eph") is not None, "the leader expired a session alive on a follower"
    lead.stop()
    c.stop()
    c.close()


def tree(c, path="/"):
    out = {}
    for child in c.get_children(path):
        p = (path.rstrip("/") + "/" + child)
        if p in ("/zookeeper", "/keeper"):
            continue
        data, st = c.get(p)
        out[p] = (data, st.czxid, st.mzxid, st.version, st.cversion, st.numChildren)
        out.update(tree(c, p))
    return out


def test_a_whole_cluster_restart_gives_identical_trees(cluster_factory):
    cl = cluster_factory(3)
    c = client(cl.hosts)
    for i in range(100):
        c.create("/r/n%03d" % i, b"%d" % i, makepath=True)
    c.set("/r/n007", b"changed")
    c.delete("/r/n042")
    c.stop()
    c.close()
    for n in cl.nodes:
        n.kill(signal.SIGTERM)
    for n in cl.nodes:
        n.start()
    cl.wait_leader()
    trees = []
    for n in cl.nodes:
        k = client(n.hosts)
        k.sync("/")
        trees.append(tree(k))
        k.stop()
        k.close()
    assert len(trees[0]) == 100  # /r and 99 children
    assert trees[0] == trees[1] == trees[2]


@pytest.mark.xfail(strict=True, reason="BUG (issue 12): a server restarted as leader keeps in its "
                   "consensus core only the entries after the index it had applied at its start "
                   "(pipeline_recover.c: prev_index = applied_index), so a follower behind that index "
                   "goes to NEEDS_SNAPSHOT and never catches up (nothing is logged)")
def test_a_follower_behind_a_restarted_leader_catches_up(cluster_factory):
    import clusterload as L
    cl = cluster_factory(3)
    lead = cl.leader()
    behind, other = [n for n in cl.nodes if n is not lead]
    behind.kill(signal.SIGKILL)
    c = client(lead.hosts)
    paths = [c.create("/behind-", b"x", sequence=True) for _ in range(300)]
    c.stop()
    c.close()
    for n in (lead, other):  # both restart having applied all 300: their cores start after them
        n.kill(signal.SIGTERM)
    for n in (lead, other):
        n.start()
    cl.wait_leader()
    behind.start()
    tree = L.converged(cl.nodes, timeout=10)
    assert all(p in tree for p in paths)
