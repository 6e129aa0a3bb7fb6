"""Prometheus /metrics (issue 14): ZooKeeper 3.8's metric names and types, served by
RingKeeper when an operator's zoo.cfg names ZooKeeper's Prometheus provider.

- the exact families served, with their types and summary quantiles; the ZooKeeper
  names checked against a running ZooKeeper 3.8's mntr (its DefaultMetricsProvider
  prints every metric of ServerMetrics under the same name);
- znode_count, ephemerals_count, watch_count and the request counters follow
  creates, and agree with mntr (one gathering serves both);
- malformed, oversized, wrong-method and slow HTTP requests get an error status or
  are closed, the 65th connection a 503, and a ZooKeeper client's requests meanwhile
  are unaffected;
- a real Prometheus server (Debian package prometheus) scrapes a 3-node cluster and
  its HTTP API returns znode_count rising after creates, quorum_size 3, one leader.

RingKeeper only (ZooKeeper's Debian package does not ship the Prometheus provider's
jars), except test_zookeeper_names_match_its_mntr, which runs against ZooKeeper.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

import zkwire
from cluster import Cluster, free_port

TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")]
BIN = os.environ.get("RINGKEEPER_BIN")
needs_ringkeeper = pytest.mark.skipif("ringkeeper" not in TARGETS or not BIN,
                                      reason="RingKeeper's /metrics tests need RINGKEEPER_BIN and the ringkeeper target")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# ZooKeeper 3.8's names (ZooKeeperServer.registerMetrics, ServerMetrics) and the types
# its PrometheusMetricsProvider gives them; a summary maps to whether it is ADVANCED
# (quantiles 0.5, 0.9, 0.99) or BASIC (0.5).
ZK_GAUGES = ["znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
             "global_sessions", "local_sessions", "num_alive_connections", "outstanding_requests",
             "avg_latency", "min_latency", "max_latency", "packets_received", "packets_sent",
             "uptime", "open_file_descriptor_count", "max_file_descriptor_count", "auth_failed_count"]
ZK_QUORUM_GAUGES = ["quorum_size"]                                   # server.N lines
ZK_LEADER_GAUGES = ["learners", "synced_followers", "pending_syncs", "leader_uptime",  # on the leader
                    "last_proposal_size", "max_proposal_size", "min_proposal_size"]
ZK_COUNTERS = ["connection_rejected", "connection_request_count", "bytes_received_count", "looking_count",
               "snap_count"]
ZK_SUMMARIES = {"readlatency": True, "updatelatency": True, "fsynctime": False, "election_time": False,
                "dbinittime": False, "startup_txns_loaded": False, "startup_txns_load_time": False,
                "startup_snap_load_time": False, "snapshottime": False}
PROCESS = {"process_cpu_seconds_total": "counter", "process_start_time_seconds": "gauge",
           "process_open_fds": "gauge", "process_max_fds": "gauge",
           "process_virtual_memory_bytes": "gauge", "process_resident_memory_bytes": "gauge"}
RINGKEEPER = {"ringkeeper_request_duration_seconds": "histogram",
              "ringkeeper_log_sync_duration_seconds": "histogram",
              "ringkeeper_log_batch_entries": "histogram", "ringkeeper_log_batch_bytes": "histogram",
              "ringkeeper_queue_depth": "gauge", "ringkeeper_raft_term": "gauge",
              "ringkeeper_raft_commit_index": "gauge", "ringkeeper_raft_applied_index": "gauge",
              "ringkeeper_raft_last_log_index": "gauge", "ringkeeper_raft_voters": "gauge",
              "ringkeeper_raft_leader": "gauge", "ringkeeper_raft_leader_id": "gauge",
              "ringkeeper_writes_committed_total": "counter", "ringkeeper_reads_served_total": "counter",
              "ringkeeper_frames_rejected_total": "counter", "ringkeeper_log_bytes": "gauge",
              "ringkeeper_proposals_lost_total": "counter",
              "ringkeeper_session_moves_reclaimed_total": "counter",
              "ringkeeper_log_entries_in_memory": "gauge",
              "ringkeeper_log_segments": "gauge", "ringkeeper_log_segment_roll_stalls_total": "counter",
              "ringkeeper_workers": "gauge", "ringkeeper_recv_buffers": "gauge",
              "ringkeeper_snapshots_total": "counter", "ringkeeper_snapshot_failures_total": "counter",
              "ringkeeper_snapshots_skipped_total": "counter",
              "ringkeeper_snapshot_in_progress": "gauge", "ringkeeper_snapshot_last_index": "gauge",
              "ringkeeper_snapshot_last_bytes": "gauge", "ringkeeper_snapshot_last_nodes": "gauge",
              "ringkeeper_snapshot_last_duration_seconds": "gauge",
              "ringkeeper_snapshot_last_pause_seconds": "gauge",
              "ringkeeper_snapshots_sent_total": "counter", "ringkeeper_snapshots_installed_total": "counter"}
RINGKEEPER_LEADER = {"ringkeeper_raft_follower_lag_entries": "gauge",
                     "ringkeeper_raft_follower_match_index": "gauge",
                     "ringkeeper_raft_follower_connected": "gauge"}


def expected_families(quorum=False, leader=False):
    want = {n: "gauge" for n in ZK_GAUGES}
    want.update({n: "counter" for n in ZK_COUNTERS})
    want.update({n: "summary" for n in ZK_SUMMARIES})
    want.update(PROCESS)
    want.update(RINGKEEPER)
    if quorum:
        want.update({n: "gauge" for n in ZK_QUORUM_GAUGES})
    if leader:
        want.update({n: "gauge" for n in ZK_LEADER_GAUGES})
        want.update(RINGKEEPER_LEADER)
    return want


# ---- the exposition format ------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{family: type} and [(name, {labels}, value)] of a text-format 0.0.4 body."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert name not in types, "family %s declared twice" % name
            types[name] = typ
        elif line.startswith("#") or not line:
            continue
        else:
            m = SAMPLE_RE.match(line)
            assert m, "malformed sample line: %r" % line
            labels = dict(LABEL_RE.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def value(samples, name, **labels):
    for n, lab, v in samples:
        if n == name and all(lab.get(k) == str(w) for k, w in labels.items()):
            return v
    raise KeyError("%s%r not served" % (name, labels))


def scrape(port, path="/metrics", timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


# ---- one RingKeeper with the provider in its zoo.cfg ----------------------------------

class MetricsServer:
    def __init__(self, workdir, force_sync=True):
        self.workdir = workdir
        self.port = free_port()
        self.metrics_port = free_port()
        self.cfg = os.path.join(workdir, "zoo.cfg")
        self.log = os.path.join(workdir, "server.log")
        with open(self.cfg, "w") as f:
            # An operator's zoo.cfg, as written for ZooKeeper 3.8.
            f.write("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=%s\n"
                    "metricsProvider.className=%s\nmetricsProvider.httpHost=127.0.0.1\n"
                    "metricsProvider.httpPort=%d\nmetricsProvider.exportJvmInfo=true\n"
                    % (os.path.join(workdir, "data"), self.port, "yes" if force_sync else "no",
                       PROVIDER, self.metrics_port))
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([BIN, self.cfg], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ringkeeper exited:\n" + self.log_tail()
            try:
                if zkwire.four_letter(self.port, "ruok", 1.0) == "imok" and scrape(self.metrics_port)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("no /metrics within 20 s:\n" + self.log_tail())

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def log_tail(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


@pytest.fixture
def metrics_server():
    made = []

    def make(**kw):
        srv = MetricsServer(tempfile.mkdtemp(prefix="rk-metrics-"), **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()
        shutil.rmtree(srv.workdir, ignore_errors=True)


def kazoo(hosts):
    from kazoo.client import KazooClient
    c = KazooClient(hosts=hosts, timeout=10.0)
    c.start(timeout=15)
    return c


def families_of(port):
    status, headers, body = scrape(port)
    assert status == 200
    return parse_exposition(body)


# ---- tests ------------------------------------------------------------------------------

@needs_ringkeeper
def test_families_types_and_quantiles(metrics_server):
    srv = metrics_server()
    status, headers, body = scrape(srv.metrics_port)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body.encode())
    types, samples = parse_exposition(body)
    assert types == expected_families(), "served families differ from the documented list"
    for name, advanced in ZK_SUMMARIES.items():
        quantiles = sorted(lab["quantile"] for n, lab, _ in samples if n == name)
        assert quantiles == (["0.5", "0.9", "0.99"] if advanced else ["0.5"]), name
        value(samples, name + "_count")
        value(samples, name + "_sum")
    assert not any(n.startswith("jvm_") for n in types)  # no JVM here, and none invented
    assert value(samples, "dbinittime_count") == 1
    assert value(samples, "election_time_count") == 0  # standalone: no election, as ZooKeeper
    assert value(samples, "ringkeeper_raft_voters") == 1 and value(samples, "ringkeeper_raft_leader") == 1
    assert value(samples, "process_start_time_seconds") > 1.5e9
    assert value(samples, "max_file_descriptor_count") == value(samples, "process_max_fds")


@needs_ringkeeper
def test_counts_follow_creates_and_agree_with_mntr(metrics_server):
    srv = metrics_server()
    _, before = families_of(srv.metrics_port)
    zk = kazoo(srv.hosts)
    try:
        zk.create("/m", b"")
        for i in range(25):
            zk.create("/m/n%02d" % i, b"x" * 10)
        for i in range(3):
            zk.create("/m/e%d" % i, b"", ephemeral=True)
        zk.get("/m/n00", watch=lambda ev: None)
        zk.get_children("/m", watch=lambda ev: None)
        _, after = families_of(srv.metrics_port)
        mntr = dict(ln.split("\t", 1) for ln in zkwire.four_letter(srv.port, "mntr").splitlines())
    finally:
        zk.stop()
        zk.close()
    assert value(after, "znode_count") == value(before, "znode_count") + 29
    assert value(after, "ephemerals_count") == value(before, "ephemerals_count") + 3
    assert value(after, "watch_count") == value(before, "watch_count") + 2
    assert value(after, "global_sessions") == 1
    assert value(after, "num_alive_connections") == 1
    creates = value(after, "ringkeeper_request_duration_seconds_count", op="create")
    assert creates == 29
    assert value(after, "ringkeeper_request_duration_seconds_bucket", op="create", le="+Inf") == 29
    assert value(after, "updatelatency_count") - value(before, "updatelatency_count") >= 30  # + createSession
    assert value(after, "readlatency_count") - value(before, "readlatency_count") >= 2
    assert value(after, "fsynctime_count") >= 30  # forceSync=yes: a sync per batch
    assert value(after, "connection_request_count") >= 1
    assert value(after, "bytes_received_count") > 0
    assert value(after, "ringkeeper_raft_applied_index") == value(after, "ringkeeper_raft_commit_index")
    # one gathering for both: mntr says the same
    for name in ("znode_count", "ephemerals_count", "watch_count", "approximate_data_size",
                 "global_sessions"):
        assert float(mntr["zk_" + name]) == value(after, name), name


@needs_ringkeeper
def test_a_snapshot_shows_its_size_and_duration(metrics_server):
    srv = metrics_server()
    _, before = families_of(srv.metrics_port)
    assert value(before, "ringkeeper_snapshots_total") == 0
    assert value(before, "ringkeeper_snapshot_last_bytes") == 0
    assert value(before, "snapshottime_count") == 0
    assert value(before, "startup_snap_load_time_count") == 1  # every start, as ZooKeeper's restore
    zk = kazoo(srv.hosts)
    try:
        zk.create("/snap", b"")
        for i in range(50):
            zk.create("/snap/n%d" % i, b"v" * 1000)
    finally:
        zk.stop()
        zk.close()
    _, mid = families_of(srv.metrics_port)
    znodes = value(mid, "znode_count")
    applied = value(mid, "ringkeeper_raft_applied_index")
    assert zkwire.four_letter(srv.port, "csnp").strip().isdigit()
    deadline = time.monotonic() + 20
    while True:
        _, after = families_of(srv.metrics_port)
        if value(after, "ringkeeper_snapshots_total") == 1 and value(after, "ringkeeper_snapshot_in_progress") == 0:
            break
        assert time.monotonic() < deadline, "no snapshot within 20 s"
        time.sleep(0.1)
    assert value(after, "ringkeeper_snapshot_failures_total") == 0
    assert value(after, "ringkeeper_snapshot_last_index") >= applied
    # the tree's nodes: / and the 51 made here at least (znode_count also counts the
    # /zookeeper nodes the server makes up, which no snapshot holds)
    assert 52 <= value(after, "ringkeeper_snapshot_last_nodes") <= znodes
    # 50 values of 1000 bytes, lz4 compresses them: more than a few hundred bytes all the same
    assert value(after, "ringkeeper_snapshot_last_bytes") > 500
    assert 0 < value(after, "ringkeeper_snapshot_last_duration_seconds") < 20
    assert value(after, "snapshottime_count") == 1
    # ms, as ZooKeeper's: the summary's sum is the one snapshot's duration
    assert abs(value(after, "snapshottime_sum") - 1000 * value(after, "ringkeeper_snapshot_last_duration_seconds")) <= 1
    assert value(after, "snap_count") == 0  # ZooKeeper's: SNAP syncs of a learner; none standalone


@needs_ringkeeper
def test_cluster_families_on_leader_and_follower():
    """The exact families of a quorum member: the leader adds ZooKeeper's leader gauges
    (LeaderZooKeeperServer.registerMetrics) and the per-follower ones."""
    workdir = tempfile.mkdtemp(prefix="rk-mfam-")
    cluster = Cluster(os.path.join(workdir, "cluster"), size=3, metrics=True)
    try:
        leader = cluster.start()
        zk = kazoo(cluster.hosts)
        try:
            zk.create("/fam", b"x" * 100)
        finally:
            zk.stop()
            zk.close()
        follower = next(n for n in cluster.nodes if n is not leader)
        types, _ = families_of(follower.metrics_port)
        assert types == expected_families(quorum=True), "a follower's families"
        want = expected_families(quorum=True, leader=True)
        deadline = time.monotonic() + 10
        while True:  # the leader's view of its followers follows its next tick
            types, samples = families_of(leader.metrics_port)
            if types == want and value(samples, "learners") == 2:
                break
            if time.monotonic() > deadline:
                assert types == want, "the leader's families"
                raise AssertionError("learners stays %r" % value(samples, "learners"))
            time.sleep(0.1)
        assert value(samples, "quorum_size") == 3 and value(samples, "learners") == 2
        # sizes of the entries the leader appended (its term's first is an empty one);
        # the create carried 100 bytes of data
        assert 0 <= value(samples, "min_proposal_size") <= value(samples, "last_proposal_size") \
            <= value(samples, "max_proposal_size")
        assert value(samples, "max_proposal_size") > 100
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@needs_ringkeeper
def test_bad_requests_get_an_error_and_are_closed(metrics_server):
    srv = metrics_server()
    port = srv.metrics_port
    cases = [
        (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\n\r\n", 400),                       # no Host
        (b"GET /metrics HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        (b"\x00\x00\x00\x2c\x00\x00\x00\x00" + b"\x00" * 40, 400),     # a ZooKeeper frame
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ]
    for request, status in cases:
        out, closed = zkwire.exchange(port, request)
        assert out.startswith(b"HTTP/1.1 %d " % status), (request[:40], out[:80])
        assert closed, "not closed after %d" % status
    # HEAD: the head alone, with the body's length
    out, _ = zkwire.exchange(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and rest == b""
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) > 1000
    # keep-alive: two scrapes on one connection
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(2):
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200 and b"znode_count" in resp.read()
    conn.close()
    # it still serves
    assert scrape(port)[0] == 200


@needs_ringkeeper
def test_many_scrapers_at_once_are_all_answered(metrics_server):
    """12 scrapers (under the 64 connections) scraping together, each on a keep-alive
    connection and on new ones: every scrape is a whole, parseable 200."""
    import threading
    srv = metrics_server(force_sync=False)
    port = srv.metrics_port
    errors, done = [], []

    def scraper(i):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for k in range(15):
                if k % 5 == 0:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                body = resp.read().decode()
                assert resp.status == 200, resp.status
                types, samples = parse_exposition(body)
                assert types["znode_count"] == "gauge" and value(samples, "znode_count") >= 1
            conn.close()
            done.append(i)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append("scraper %d: %r" % (i, e))

    threads = [threading.Thread(target=scraper, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    zk = kazoo(srv.hosts)
    try:
        for i in range(50):
            zk.create("/many%d" % i, b"")
    finally:
        zk.stop()
        zk.close()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(done) == list(range(12))


HTTP_CONNS_MAX = 64  # net/http.h


@needs_ringkeeper
def test_slow_and_many_clients_do_not_disturb_zookeeper_clients(metrics_server):
    srv = metrics_server(force_sync=False)
    port = srv.metrics_port
    zk = kazoo(srv.hosts)
    try:
        zk.create("/slow", b"")
        # HTTP_CONNS_MAX (net/http.h) connections that never finish a request (one
        # dribbles a byte at a time)
        held = []
        for i in range(HTTP_CONNS_MAX):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\n" if i else b"G")
            held.append(s)
        # the next is refused at once, once the server has taken those in (their
        # accepts are asynchronous: on a loaded machine a probe may still find a slot,
        # be served and closed; the probe is then repeated, for at most 5 s)
        give_up = time.monotonic() + 5
        while True:
            out, closed = zkwire.exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            if out.startswith(b"HTTP/1.1 503 ") or time.monotonic() > give_up:
                break
            time.sleep(0.1)
        assert out.startswith(b"HTTP/1.1 503 ") and closed, out[:80]
        # a ZooKeeper client's requests go on at full speed meanwhile
        stop = time.monotonic() + 3
        n, worst, next_drip = 0, 0.0, 0.0
        while time.monotonic() < stop:
            t = time.monotonic()
            zk.create("/slow/n", b"x", sequence=True)
            zk.get("/slow")
            worst = max(worst, time.monotonic() - t)
            n += 1
            # the slow one keeps dribbling, a byte per 20 ms at most: a fast
            # machine runs thousands of iterations in 3 s, and a byte per
            # iteration would fill the 8 KiB head limit (an honest 431)
            if time.monotonic() >= next_drip:
                next_drip = time.monotonic() + 0.02
                try:
                    held[0].send(b"E")
                except OSError:
                    pass
        assert n > 50 and worst < 1.0, (n, worst)
        # the server closes them at its request deadline (10 s from their first byte)
        deadline = time.monotonic() + 15
        for s in held:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                pytest.fail("a slow client was not closed within its deadline")
            assert data == b"", data  # closed without an answer: no request ever completed
        for s in held:
            s.close()
        assert len(zk.get_children("/slow")) == n
        assert scrape(port)[0] == 200  # the slots are free again
    finally:
        zk.stop()
        zk.close()


@needs_ringkeeper
def test_lingering_connections_give_their_slots_to_new_ones(metrics_server):
    """After a closing answer the server lingers (FIN sent, input read and dropped until
    the client's FIN, for up to HTTP_LINGER_MS): a scraper that never closes its side
    holds a slot meanwhile. HTTP_CONNS_MAX of them do not turn the next scrapers away:
    the oldest lingering connection gives its slot up."""
    srv = metrics_server(force_sync=False)
    port = srv.metrics_port
    req = b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    held = []
    try:
        # one after another, each answered and FIN'd before the next; our side stays
        # open, so the server lingers on each (opened all at once, the last ones
        # could find every slot still serving, none lingering: an honest 503)
        for _ in range(HTTP_CONNS_MAX):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            held.append(s)
            out = zkwire.read_to_eof(s)
            assert out.startswith(b"HTTP/1.1 200 "), out[:80]
        for _ in range(3):
            out, closed = zkwire.exchange(port, req)
            assert out.startswith(b"HTTP/1.1 200 ") and closed, out[:80]
    finally:
        for s in held:
            s.close()


@pytest.mark.skipif("zookeeper" not in TARGETS, reason="needs the zookeeper target")
def test_zookeeper_names_match_its_mntr(server):
    """Every ZooKeeper name we serve is one ZooKeeper 3.8 has: its mntr (with the default
    provider) prints gauges and counters as zk_<name>, a summary as zk_cnt_<name> and,
    when it is ADVANCED, with percentiles zk_p50_<name>."""
    if server.target != "zookeeper":
        pytest.skip("checks the names against ZooKeeper itself")
    mntr = set(ln.split("\t", 1)[0] for ln in server.four_letter("mntr").splitlines())
    for name in ZK_GAUGES + ZK_COUNTERS:
        assert "zk_" + name in mntr, name
    for name, advanced in ZK_SUMMARIES.items():
        assert "zk_cnt_" + name in mntr, name
        assert ("zk_p50_" + name in mntr) == advanced, name
    # quorum/leader gauges are registered by QuorumZooKeeperServer/LeaderZooKeeperServer
    # only: a standalone ZooKeeper prints none of them, and neither do we standalone
    for name in ZK_QUORUM_GAUGES + ZK_LEADER_GAUGES:
        assert "zk_" + name not in mntr, name


# ---- a real Prometheus scraping a 3-node cluster ----------------------------------------

def prom_query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def prom_wait(port, expr, ok, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = prom_query(port, expr)
            if ok(last):
                return last
        except OSError as e:
            last = repr(e)
        time.sleep(0.3)
    raise AssertionError("%s: %r" % (expr, last))


@needs_ringkeeper
@pytest.mark.skipif(not os.access(PROMETHEUS, os.X_OK),
                    reason="prometheus is not installed (Debian package prometheus; deploy/install-deps.sh --test)")
def test_prometheus_scrapes_a_cluster():
    workdir = tempfile.mkdtemp(prefix="rk-prom-")
    cluster = Cluster(os.path.join(workdir, "cluster"), size=3, metrics=True)
    prom = None
    try:
        leader = cluster.start()
        targets = ["127.0.0.1:%d" % n.metrics_port for n in cluster.nodes]
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: ringkeeper\n    static_configs:\n"
                    "      - targets: [%s]\n" % ", ".join("'%s'" % t for t in targets))
        prom_port = free_port()
        prom_log = open(os.path.join(workdir, "prometheus.log"), "ab")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + cfg,
                                 "--storage.tsdb.path=" + os.path.join(workdir, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"],
                                stdin=subprocess.DEVNULL, stdout=prom_log, stderr=prom_log,
                                start_new_session=True)
        prom_log.close()
        # every target up: Prometheus parsed our text (a parse error marks it down)
        prom_wait(prom_port, 'up{job="ringkeeper"}',
                  lambda r: len(r) == 3 and all(s["value"][1] == "1" for s in r), timeout=60)
        before = prom_wait(prom_port, "znode_count", lambda r: len(r) == 3)
        base = {s["metric"]["instance"]: float(s["value"][1]) for s in before}
        zk = kazoo(cluster.hosts)
        try:
            zk.create("/prom", b"")
            # a label set appears with the opcode's first request: let Prometheus see
            # it before the rest, so rate() has a first sample to rise from
            prom_wait(prom_port, 'ringkeeper_request_duration_seconds_count{op="create"}', lambda r: len(r) == 1)
            time.sleep(1.5)
            for i in range(20):
                zk.create("/prom/n%d" % i, b"x")
        finally:
            zk.stop()
            zk.close()
        # every server applies the creates: znode_count rises by 21 on each
        prom_wait(prom_port, "znode_count",
                  lambda r: len(r) == 3 and all(float(s["value"][1]) == base[s["metric"]["instance"]] + 21
                                                for s in r))
        # and over time: the range query sees the rise
        rise = prom_wait(prom_port, "max(delta(znode_count[1m]))", lambda r: r and float(r[0]["value"][1]) >= 21)
        assert float(rise[0]["value"][1]) >= 21
        size = prom_wait(prom_port, "quorum_size", lambda r: len(r) == 3)
        assert all(s["value"][1] == "3" for s in size)
        learners = prom_wait(prom_port, "learners", lambda r: len(r) == 1 and r[0]["value"][1] == "2")
        assert learners[0]["metric"]["instance"] == "127.0.0.1:%d" % leader.metrics_port
        prom_wait(prom_port, "sum(ringkeeper_raft_leader)", lambda r: r and r[0]["value"][1] == "1")
        # every server waited for its first leader once; only the leader has leader_uptime
        prom_wait(prom_port, "election_time_count",
                  lambda r: len(r) == 3 and all(float(s["value"][1]) >= 1 for s in r))
        prom_wait(prom_port, "looking_count", lambda r: len(r) == 3 and all(float(s["value"][1]) >= 1 for s in r))
        up = prom_wait(prom_port, "leader_uptime", lambda r: len(r) == 1 and float(r[0]["value"][1]) > 0)
        assert up[0]["metric"]["instance"] == "127.0.0.1:%d" % leader.metrics_port
        prom_wait(prom_port, "max_proposal_size", lambda r: len(r) == 1 and float(r[0]["value"][1]) > 0)
        prom_wait(prom_port, "count(ringkeeper_raft_follower_lag_entries)", lambda r: r and r[0]["value"][1] == "2")
        rate = prom_wait(prom_port, 'sum(rate(ringkeeper_request_duration_seconds_count{op="create"}[1m]))',
                         lambda r: r and float(r[0]["value"][1]) > 0)
        assert float(rate[0]["value"][1]) > 0
        prom_wait(prom_port, 'histogram_quantile(0.99, sum by (le) (rate(ringkeeper_log_sync_duration_seconds_bucket[1m])))',
                  lambda r: len(r) == 1)
    finally:
        if prom and prom.poll() is None:
            os.kill(prom.pid, signal.SIGTERM)
            prom.wait(20)
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
