"""A server killed, and started again at once; and a port another server holds.

Pins, on both servers:
- when the server is killed (SIGKILL), its clients see their connections end at once,
  as a JVM's exit closes its sockets. RingKeeper's io_uring requests would hold them
  until the kernel tears its rings down, some ms later (a jiffy's delayed close on
  this kernel): a client that sent a request in between got it reset, where against
  ZooKeeper it reconnects and sends it there (go-zookeeper's
  TestIfAuthdataSurvivesReconnect, TestDNSHostProviderReconnect). core/sentinel.h;
- started again the moment the old process is reaped, with nothing waiting for its
  ports, it serves (core/listen.h: a port the dead process's rings still hold is
  waited for);
- a second server on a client port that a live server listens on does not start, and
  the first goes on serving (RingKeeper's workers share the port with SO_REUSEPORT,
  which let a second server of the same user join them and take half the
  connections).
And on RingKeeper: the sentinel is a child process sharing the server's file table,
and it is gone once the server is.
"""
import os
import select
import signal
import shutil
import statistics
import subprocess
import tempfile
import time

import pytest

import conftest
import zkwire as w
from ports import free_port

# one server of each kind, whatever the run's targets (a cluster run has none here)
TARGETS = [t for t in ("ringkeeper", "zookeeper") if t in conftest.TARGETS and conftest._skip_reason(t) is None]
pytestmark = pytest.mark.skipif(not TARGETS, reason="lone servers only: no ringkeeper or zookeeper target")

ROUNDS = 5
CONNS = 10
# A JVM's sockets close before waitpid returns; the sentinel's within a fraction of a
# millisecond after (measured 0.02-0.5 ms); the io_uring teardown's 4-7 ms after.
ENDED_WITHIN_S = 0.003
METRICS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


@pytest.fixture(params=TARGETS)
def lone(request):
    workdir = tempfile.mkdtemp(prefix="rk-kill-")
    srv = conftest.Server(request.param, workdir)
    yield srv
    srv.stop()
    if not os.environ.get("RK_KEEP_TMP"):
        shutil.rmtree(workdir, ignore_errors=True)


def _connections(srv, n):
    conns = []
    for _ in range(n):
        c = w.RawConn(srv.port, timeout=5.0)
        c.handshake()
        conns.append(c)
    return conns


def _kill(srv):
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(10)


def _ended_after(conns, t0, timeout=2.0):
    """Seconds from t0 until the last of conns saw its end (EOF or reset); None if one
    did not within timeout."""
    pending = {c.sock: c for c in conns}
    last = 0.0
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select(list(pending), [], [], left)
        now = time.monotonic()
        for s in ready:
            try:
                data = s.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if data == b"":
                del pending[s]
                last = now - t0
    return last


def test_a_killed_servers_clients_see_their_connections_end_at_once(lone):
    delays = []
    for rnd in range(ROUNDS):
        lone.start()
        conns = _connections(lone, CONNS)
        try:
            _kill(lone)
            delay = _ended_after(conns, time.monotonic())
        finally:
            for c in conns:
                c.close()
            lone.proc = None
        assert delay is not None, "round %d: a connection did not end within 2 s" % rnd
        delays.append(delay)
    # the median of the rounds: one round on a busy machine may be late
    assert statistics.median(delays) <= ENDED_WITHIN_S, ["%.2f ms" % (d * 1000) for d in delays]


def test_killed_and_started_at_once_it_serves(lone, kazoo_factory_for):
    if lone.target == "ringkeeper":
        # a listener of its own as well (the client port's are a SO_REUSEPORT group)
        lone.rk_args += ["--metricsProvider.className=" + METRICS_PROVIDER,
                         "--metricsProvider.httpHost=127.0.0.1",
                         "--metricsProvider.httpPort=%d" % free_port()]
    lone.start()
    zk = kazoo_factory_for(lone)
    zk.create("/before-the-kill", b"x")
    zk.stop()
    for rnd in range(3):
        conns = _connections(lone, CONNS)  # sockets for the dead process to hold
        _kill(lone)
        lone.proc = None
        for c in conns:
            c.close()
        lone.start()  # no wait for the port: the server's own business
    zk = kazoo_factory_for(lone)
    assert zk.get("/before-the-kill")[0] == b"x"


def test_a_second_server_on_a_client_port_in_use_does_not_start(lone, kazoo_factory_for):
    lone.start()
    other_dir = tempfile.mkdtemp(prefix="rk-kill-other-")
    other = conftest.Server(lone.target, other_dir, port=lone.port)
    try:
        other._errf = open(other.stderr_path, "ab")
        other.proc = subprocess.Popen(other._command(), stdin=subprocess.DEVNULL, stdout=other._errf,
                                      stderr=other._errf, cwd=other_dir, start_new_session=True)
        try:
            rc = other.proc.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        assert rc not in (None, 0), "the second server runs:\n" + other.log_tail()
        assert "Address already in use" in other.log_tail(200)
        zk = kazoo_factory_for(lone)
        zk.create("/the-first-serves", b"")
        assert zk.exists("/the-first-serves")
    finally:
        other.stop(signal.SIGKILL)
        shutil.rmtree(other_dir, ignore_errors=True)


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def _sockets(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


@pytest.mark.skipif("ringkeeper" not in TARGETS, reason="RingKeeper's sentinel")
def test_the_sentinel_shares_the_servers_sockets_and_goes_with_it():
    workdir = tempfile.mkdtemp(prefix="rk-sentinel-")
    srv = conftest.Server("ringkeeper", workdir)
    try:
        srv.start()
        sentinels = [p for p in _children(srv.pid) if _comm(p) == "rk-sentinel"]
        assert len(sentinels) == 1, [(p, _comm(p)) for p in _children(srv.pid)]
        sentinel = sentinels[0]
        conns = _connections(srv, 3)
        server_sockets = _sockets(srv.pid)
        assert len(server_sockets) >= 3 + 1  # the connections and a listener at least
        assert _sockets(sentinel) == server_sockets, "one file table"
        _kill(srv)
        srv.proc = None
        deadline = time.monotonic() + 5
        while _comm(sentinel) not in (None,) and time.monotonic() < deadline:
            # gone, or a zombie until its new parent reaps it
            try:
                with open("/proc/%d/stat" % sentinel) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.01)
        assert time.monotonic() < deadline, "the sentinel outlived the server"
        for c in conns:
            c.close()
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)
