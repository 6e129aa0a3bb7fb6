"""A follower's forwarded writes when the leader dies under them (issue 12).

A follower forwards its clients' writes to the leader and answers them once applied.
When the leader dies with some of them in flight, the follower fails what is pending
(CONNECTIONLOSS, the connection closed) and takes nothing more from those connections
until they reconnect, so a client's writes apply in the order it sent them or not at
all (raft/pipeline_peers.c, pipe_fail_pending). Checked on one raw connection that
keeps many creates in flight: the nodes that exist afterwards are a prefix of the
ones sent, and hold every one acknowledged.

RingKeeper only (3 real processes on 127.0.0.1).
"""
import os
import shutil
import signal
import tempfile
import threading
import time

import pytest

import zkwire as w
from cluster import Cluster

TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")]
pytestmark = pytest.mark.skipif(not {"ringkeeper", "ringkeeper3"} & set(TARGETS)
                                or not os.environ.get("RINGKEEPER_BIN"),
                                reason="RingKeeper cluster tests need RINGKEEPER_BIN and a ringkeeper target")

ROOT = "/prefix"
WINDOW = 64        # creates in flight on the connection
SENT_MAX = 20000
ERR_OK = 0


@pytest.fixture
def cluster():
    c = Cluster(tempfile.mkdtemp(prefix="rk-forward-"), size=3, force_sync=True)
    c.start()
    yield c
    c.stop()
    shutil.rmtree(c.workdir, ignore_errors=True)


class Pipeline:
    """Creates ROOT/n<i> on one connection, i = 0, 1, ..., at most WINDOW unanswered;
    records each reply's error code by index until the server closes the connection."""

    def __init__(self, port):
        self.conn = w.RawConn(port, timeout=20.0)
        self.conn.handshake(read_only=False, timeout_ms=30000)
        self.conn.events = []
        self.sent = 0
        self.replies = {}          # index -> error code
        self.cond = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _read(self):
        try:
            while True:
                xid, _zxid, err, _d = self.conn.recv_reply()
                with self.cond:
                    self.replies[xid - 1] = err
                    self.cond.notify_all()
        except (w.Closed, OSError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def run(self, stop):
        self.reader.start()
        while not stop.is_set() and self.sent < SENT_MAX:
            with self.cond:
                while not self.closed and self.sent - len(self.replies) >= WINDOW:
                    self.cond.wait(0.5)
                if self.closed:
                    return
            try:
                self.conn.send_request(1, w.create_body("%s/n%06d" % (ROOT, self.sent)), xid=self.sent + 1)
            except OSError:
                return
            self.sent += 1

    def wait_closed(self, timeout):
        with self.cond:
            self.cond.wait_for(lambda: self.closed, timeout)
            return self.closed


def test_a_followers_pipelined_writes_apply_as_a_prefix_when_the_leader_dies(cluster):
    from kazoo.client import KazooClient
    lead = cluster.leader()
    fol = next(n for n in cluster.nodes if n is not lead)
    zk = KazooClient(hosts=lead.hosts, timeout=10.0)
    zk.start(timeout=15)
    zk.create(ROOT)
    zk.stop()
    zk.close()

    pipe = Pipeline(fol.port)
    stop = threading.Event()
    writer = threading.Thread(target=pipe.run, args=(stop,), daemon=True)
    writer.start()
    deadline = time.monotonic() + 20
    while len(pipe.replies) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(pipe.replies) >= 300, "the load ran before the kill (%d replies)" % len(pipe.replies)
    in_flight = pipe.sent - len(pipe.replies)
    lead.kill(signal.SIGKILL)
    closed = pipe.wait_closed(15.0)
    stop.set()
    writer.join(10)
    pipe.conn.close()
    new = cluster.wait_leader(timeout=10, exclude=lead)

    acked = {i for i, err in pipe.replies.items() if err == ERR_OK}
    failed = {i: err for i, err in pipe.replies.items() if err != ERR_OK}
    zk = KazooClient(hosts=new.hosts, timeout=10.0)
    zk.start(timeout=15)
    try:
        zk.retry(zk.sync, ROOT)
        present = sorted(int(name[1:]) for name in zk.retry(zk.get_children, ROOT))
    finally:
        zk.stop()
        zk.close()

    assert in_flight > 0, "creates were in flight when the leader died"
    # (the connection is closed only if forwards were pending when the follower saw
    # the leader go; either way the prefix holds)
    print("sent %d, acknowledged %d, failed %d, present %d, closed %s"
          % (pipe.sent, len(acked), len(failed), len(present), closed))
    assert set(failed.values()) <= {-4}, "failures are CONNECTIONLOSS only: %r" % sorted(set(failed.values()))
    assert acked <= set(present), "acknowledged creates lost: %r" % sorted(acked - set(present))[:10]
    assert present == list(range(len(present))), (
        "the applied creates are not a prefix of those sent: first gap at %d of %d present, %d sent"
        % (next(i for i, v in enumerate(present) if v != i), len(present), pipe.sent))
    assert len(present) <= pipe.sent
    # every create acknowledged came before every one that failed, on this connection
    if failed and acked:
        assert max(acked) < min(failed), (max(acked), min(failed))
