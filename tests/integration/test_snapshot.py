"""Snapshots and log compaction (issue 13), on real RingKeeper processes.

- csnp schedules a snapshot and answers its index (ClickHouse Keeper's word); lgif's
  last_snapshot_idx and mntr's rk_snapshot_* report it; a restart loads it and the
  tree is the same;
- kill -9 at random points while snapshots of a 90 MB tree are written back to back
  and the log is compacted after each (snapCount 200, the smallest log segments):
  every acknowledged write survives (test_crash.py's model and checks), the server
  always restarts (never a gap between snapshot and log), no .tmp is left, and the
  full tree after the restart is the one a second, clean restart builds;
- disk use stays bounded under an endless write load with a small snapCount and
  preAllocSize, while far more than that is written;
- a whole-cluster kill -9 and restart with snapshots on every server gives identical
  trees, equal to the tree before;
- a follower killed and wiped (a new, empty server as far as it knows) and started
  again under write load, with the leader keeping only 2048 entries in memory, comes
  back through InstallSnapshot, and every server ends with the same tree.

RingKeeper only (ZooKeeper has no csnp and compacts its log differently).
"""
import hashlib
import os
import random
import re
import shutil
import signal
import tempfile
import threading
import time

import pytest

import conftest
import crashload as cl
import zkwire as w
from cluster import Cluster
from test_crash import Model, _load_and_kill, _setup, _verify

pytestmark = pytest.mark.skipif(
    "ringkeeper" not in conftest.TARGETS or conftest._skip_reason("ringkeeper") is not None,
    reason="snapshot tests need RINGKEEPER_BIN and the ringkeeper target")


def stat_of(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def client(hosts, timeout=15.0):
    """A kazoo client holding digest u:p (the identity of the ACLs the tests set)."""
    from kazoo.client import KazooClient
    c = KazooClient(hosts=hosts, timeout=timeout, auth_data=[("digest", "u:p")])
    c.start(timeout=20)
    return c


def tree(c, path="/"):
    """Every node under path (ZooKeeper's own /zookeeper subtree left out): path ->
    (sha1 of data, every Stat field, ACL)."""
    out = {}
    for name in sorted(c.get_children(path)):
        p = (path.rstrip("/") + "/" + name)
        if p == "/zookeeper":
            continue
        data, st = c.get(p)
        acl, _ = c.get_acls(p)
        out[p] = (hashlib.sha1(data or b"").hexdigest(), data is None, st.czxid, st.mzxid, st.ctime, st.mtime,
                  st.version, st.cversion, st.aversion, st.ephemeralOwner, st.dataLength, st.numChildren,
                  st.pzxid, tuple((a.perms, a.id.scheme, a.id.id) for a in acl))
        out.update(tree(c, p))
    return out


def mntr_of(node):
    """A cluster node's mntr as a dict; {} while it does not answer yet."""
    try:
        return stat_of(node.four_letter("mntr"))
    except OSError:
        return {}


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("%s within %.0fs" % (what, timeout))


def disk_use(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


@pytest.fixture
def private_server():
    made = []

    def make(*extra):
        workdir = tempfile.mkdtemp(prefix="rk-snap-")
        srv = cl.DurableServer("ringkeeper", workdir, extra_args=list(extra))
        made.append((srv, workdir))
        srv.start()
        return srv

    yield make
    for srv, workdir in made:
        srv.stop(signal.SIGKILL)
        if not os.environ.get("RK_KEEP_TMP"):
            shutil.rmtree(workdir, ignore_errors=True)


def test_csnp_lgif_mntr_and_a_restart_from_the_snapshot(private_server):
    srv = private_server()
    c = client(srv.hosts)
    try:
        for i in range(50):
            c.create("/s/n%02d" % i, b"v%d" % i, makepath=True)
        from kazoo.security import make_digest_acl
        c.set_acls("/s/n07", [make_digest_acl("u", "p", all=True)])
        before = tree(c)
    finally:
        c.stop()
        c.close()
    assert stat_of(srv.four_letter("lgif"))["last_snapshot_idx"] == "0"
    answer = srv.four_letter("csnp").strip()
    index = int(answer)
    assert index > 50
    wait_for(lambda: int(stat_of(srv.four_letter("lgif"))["last_snapshot_idx"]) >= index, 10,
             "lgif reports the snapshot")
    m = stat_of(srv.four_letter("mntr"))
    assert int(m["rk_snapshot_count"]) == 1
    assert int(m["rk_snapshot_last_index"]) >= index
    assert int(m["rk_snapshot_last_nodes"]) >= 52
    assert int(m["rk_snapshot_last_bytes"]) > 0
    assert m["rk_snapshot_in_progress"] == "0"
    snaps = os.listdir(os.path.join(srv.data_dir, "snapshot"))
    assert snaps == ["snapshot.%020d.rk" % int(m["rk_snapshot_last_index"])]
    srv.kill9()
    srv.start_again()
    assert "snapshot: loaded" in srv.log_tail(200)
    assert int(stat_of(srv.four_letter("lgif"))["last_snapshot_idx"]) == int(m["rk_snapshot_last_index"])
    c = client(srv.hosts)
    try:
        assert tree(c) == before
    finally:
        c.stop()
        c.close()


BIG_NODES = 100
BIG_BYTES = 900 * 1024


def _big_tree(srv):
    """~90 MB of incompressible data: writing one snapshot takes a good while."""
    conn = cl.open_session(srv.port)
    digests = {}
    try:
        rng = random.Random(7)
        reqs = [(w.OP_CREATE, w.create_body("/big"))]
        for i in range(BIG_NODES):
            data = rng.randbytes(BIG_BYTES)
            digests["/big/b%03d" % i] = hashlib.sha1(data).hexdigest()
            reqs.append((w.OP_CREATE, w.create_body("/big/b%03d" % i, data)))
        for err, _, _ in cl.pipelined(conn, reqs, window=8):
            assert err == 0
    finally:
        cl.close_session(conn)
    return digests


def test_kill9_while_snapshotting_and_compacting_loses_nothing(private_server, capsys):
    srv = private_server("--snapCount=200", "--preAllocSize=4")
    digests = _big_tree(srv)
    seed = int(os.environ.get("RK_CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
    rng = random.Random(seed)
    m = Model("/snapcrash-%d" % seed, seed)
    _setup(srv, m)
    cycles = int(os.environ.get("RK_SNAP_CRASH_CYCLES", "8"))
    during_write, log = 0, []
    snap_dir = os.path.join(srv.data_dir, "snapshot")
    for cycle in range(cycles):
        delay = rng.uniform(0.3, 2.0)
        writers, prekill = _load_and_kill(srv, m, cycle, delay, rng)
        tmp = [f for f in os.listdir(snap_dir) if f.endswith(".tmp")] if os.path.isdir(snap_dir) else []
        during_write += bool(tmp)
        srv.start_again()
        mntr = stat_of(srv.four_letter("mntr"))
        _verify(srv, m, cycle, writers, prekill)
        assert not [f for f in os.listdir(snap_dir) if f.endswith(".tmp")], "a .tmp survived the restart"
        assert len([f for f in os.listdir(snap_dir) if f.endswith(".rk")]) <= 3
        log.append("cycle %d: kill after %.2fs, %s, snapshot at %s" % (
            cycle, delay, "during a snapshot write" if tmp else "between snapshots",
            mntr.get("rk_snapshot_last_index")))
    with capsys.disabled():
        print("\n[snapshot crash] RK_CRASH_SEED=%d\n  %s" % (seed, "\n  ".join(log)))
    with open(srv.stderr_path, errors="replace") as f:
        text = f.read()
    compactions = text.count("compacted (the log now starts at")
    assert during_write >= 1, "no kill landed during a snapshot write: the test did not test it"
    assert compactions >= 1, "the log was never compacted"
    c = client(srv.hosts)
    try:
        after_kill = tree(c)
    finally:
        c.stop()
        c.close()
    for p, digest in digests.items():
        assert after_kill[p][0] == digest, "big node %s changed" % p
    srv.stop(signal.SIGTERM)
    srv.start_again()
    c = client(srv.hosts)
    try:
        assert tree(c) == after_kill, "a second, clean restart builds another tree"
    finally:
        c.stop()
        c.close()


def test_disk_stays_bounded_under_endless_writes(private_server, capsys):
    srv = private_server("--snapCount=500", "--preAllocSize=4")
    value = b"x" * 2000
    stop = threading.Event()
    written = [0]

    def writer(tid):
        conn = cl.open_session(srv.port)
        try:
            for err, _, _ in cl.pipelined(conn, [(w.OP_CREATE, w.create_body("/d%d" % tid))]):
                assert err == 0
            i = 0
            while not stop.is_set():
                reqs = [(w.OP_SETDATA, w.setdata_body("/d%d" % tid, value)) for _ in range(64)]
                for err, _, _ in cl.pipelined(conn, reqs, window=16):
                    assert err == 0
                written[0] += 64 * len(value)
                i += 1
        finally:
            cl.close_session(conn)

    threads = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(4)]
    for t in threads:
        t.start()
    samples = []
    t0 = time.monotonic()
    duration = float(os.environ.get("RK_SNAP_DISK_SECONDS", "15"))
    while time.monotonic() - t0 < duration:
        time.sleep(0.25)
        samples.append((time.monotonic() - t0, disk_use(srv.data_dir), written[0]))
    stop.set()
    for t in threads:
        t.join(30)
    mntr = stat_of(srv.four_letter("mntr"))
    peak = max(s[1] for s in samples)
    late_peak = max(s[1] for s in samples if s[0] > duration / 2)
    total = written[0]
    with capsys.disabled():
        print("\n[disk bound] written %.1f MB in %.0fs; data dir peak %.1f MB (second half %.1f MB), "
              "%s snapshots, %s segments compacted" % (total / 1e6, duration, peak / 1e6, late_peak / 1e6,
                                                      mntr["rk_snapshot_count"], mntr["rk_log_segments_compacted"]))
    assert int(mntr["rk_snapshot_count"]) >= 5
    assert int(mntr["rk_log_segments_compacted"]) >= 3
    assert total > 4 * peak, "not enough written to show the bound (%d written, peak %d)" % (total, peak)
    # The log after the oldest of 3 snapshots (~1500 entries of 2 KB) spans at most a few
    # 2 MiB segments, plus the one prepared ahead; the snapshots are small.
    assert peak < 20e6, "the data dir grew to %.1f MB" % (peak / 1e6)


def test_cluster_kill9_restart_with_snapshots_gives_identical_trees(capsys):
    cluster = Cluster(tempfile.mkdtemp(prefix="rk-snapcluster-"), size=3, force_sync=True,
                      extra_cfg="snapCount=100\n")
    try:
        cluster.start()
        hosts = [n.hosts for n in cluster.nodes]
        c = client(",".join(hosts))
        try:
            alive = []
            for i in range(400):
                c.create("/cs/n%03d" % i, b"%d" % i, makepath=True)
                alive.append(i)
                if i % 7 == 0:
                    c.set("/cs/n%03d" % alive[len(alive) // 2], b"changed %d" % i)
                if i % 11 == 10:
                    c.delete("/cs/n%03d" % alive.pop(len(alive) // 3))
            c.sync("/")
            before = tree(c)
        finally:
            c.stop()
            c.close()
        wait_for(lambda: all(int(stat_of(n.four_letter("lgif"))["last_snapshot_idx"]) > 0 for n in cluster.nodes),
                 20, "every server wrote a snapshot")
        for n in cluster.nodes:
            n.kill(signal.SIGKILL)
        for n in cluster.nodes:
            n.start()
        cluster.wait_leader(30)
        trees = []
        for n in cluster.nodes:
            k = client(n.hosts)
            try:
                k.sync("/")
                trees.append(tree(k))
            finally:
                k.stop()
                k.close()
            with open(n.log_path) as f:
                assert "snapshot: loaded" in f.read(), "server %d did not start from its snapshot" % n.sid
        assert trees[0] == before
        assert trees[0] == trees[1] == trees[2]
    finally:
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)


def test_a_wiped_follower_catches_up_by_install_snapshot_under_load(capsys):
    """A follower killed, its data dir emptied (a new server, as far as it knows) and
    started again while writes go on: the leader's core keeps only 2048 entries in
    memory, so the follower can only come back through the leader's snapshot
    (InstallSnapshot), then the appends after it. Every server ends with the same tree."""
    cluster = Cluster(tempfile.mkdtemp(prefix="rk-install-"), size=3, force_sync=False,
                      extra_cfg="snapCount=1000\nraft.logEntriesMax=2048\n")
    try:
        lead = cluster.start()
        follower = next(n for n in cluster.nodes if n is not lead)
        others = [n for n in cluster.nodes if n is not follower]
        stop, acked, errors = threading.Event(), [0], []

        def writer(hosts, tid):
            c = client(hosts)
            try:
                c.ensure_path("/w%d" % tid)
                i = 0
                while not stop.is_set():
                    try:
                        # incompressible: the snapshot takes many chunks (several MB)
                        c.create("/w%d/n%06d" % (tid, i), os.urandom(200))
                        if i % 3 == 0:
                            c.set("/w%d" % tid, b"%d" % i)
                        acked[0] += 1
                    except Exception as e:  # connection loss while the cluster moves
                        errors.append(repr(e))
                        time.sleep(0.05)
                    i += 1
            finally:
                c.stop()
                c.close()

        threads = [threading.Thread(target=writer, args=(n.hosts, k), daemon=True) for k, n in enumerate(others)]
        for t in threads:
            t.start()
        wait_for(lambda: acked[0] > 1000, 30, "writes before the kill")
        follower.kill(signal.SIGKILL)
        for name in os.listdir(follower.data):
            if name != "myid":
                path = os.path.join(follower.data, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        base = acked[0]
        wait_for(lambda: acked[0] > base + 6000, 60, "writes while the follower is away")
        follower.start()
        wait_for(lambda: int(mntr_of(follower).get("rk_snapshot_installed_count", "0")) >= 1,
                 60, "the follower installed the leader's snapshot")
        time.sleep(1.0)  # more writes after the install, replicated by appends
        stop.set()
        for t in threads:
            t.join(30)
        lead = cluster.wait_leader()
        m_lead = stat_of(lead.four_letter("mntr"))
        m_follower = stat_of(follower.four_letter("mntr"))
        with capsys.disabled():
            print("\n[install] %d writes acknowledged; leader sent %s snapshots; follower installed %s, "
                  "at index %s" % (acked[0], m_lead.get("rk_snapshot_sent_count"),
                                   m_follower["rk_snapshot_installed_count"], m_follower["rk_snapshot_last_index"]))
        with open(follower.log_path) as f:
            assert "installed the leader's snapshot" in f.read()
        # the transfer's bytes: each chunk once, plus at most a resent window (1 MiB)
        # after a stall; an acknowledgement in order must not make the leader send
        # again what is already on the way
        sent, stalls = [], []
        for n in others:
            with open(n.log_path) as f:
                text = f.read()
            sent += [(int(a), int(b)) for a, b in re.findall(
                r"has the whole snapshot at \d+ \((\d+) bytes sent for (\d+)\)", text)]
            stalls += [ln for ln in text.splitlines() if "acknowledged nothing of the snapshot" in ln]
        # a burst of acknowledgements once stopped a transfer for good (sent < acked);
        # now it would only wait out PIPE_INSTALL_STALL_MS, which it must not need
        assert not stalls, stalls
        assert sent, "no leader logged a whole transfer"
        with capsys.disabled():
            print("[install] transfers (bytes sent, snapshot bytes): %s" % sent)
        for out, size in sent:
            assert out <= size + (1 << 20), "%d bytes sent for a snapshot of %d" % (out, size)
        trees = []
        for n in cluster.nodes:
            k = client(n.hosts)
            try:
                k.sync("/")
                trees.append(tree(k))
            finally:
                k.stop()
                k.close()
        assert len(trees[0]) > 7000
        assert trees[0] == trees[1] == trees[2]
    finally:
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)
