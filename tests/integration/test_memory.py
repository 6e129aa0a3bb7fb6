"""What a RingKeeper server gives back and what it touches (RingKeeper only).

Pins:
- a mass delete's memory goes back to the kernel once the writes go quiet: the
  applier's free pages are released after a second of little work (core/mem.h), so a
  server that held a few hundred thousand znodes and deleted them is not left at its
  peak RSS (before, it stayed there until its next burst of writes);
- the workers' receive buffers are put in their rings 64 at a time, one step more
  whenever a recv finds the ring empty (net/worker.c): a fresh server has 64 per
  worker (mntr rk_recv_buffers), more connections than buffers sending at once all get
  every reply in order, and the ring grows but never past 512 per worker.
"""
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import conftest
import zkwire as w
from test_bench import _bench_bin

pytestmark = pytest.mark.skipif(
    "ringkeeper" not in conftest.TARGETS or conftest._skip_reason("ringkeeper") is not None,
    reason="memory tests need RINGKEEPER_BIN and the ringkeeper target")

RECV_BUF_STEP = 64
RECV_BUF_COUNT = 512


def _sanitized(binary):
    """ASan's allocator, not mimalloc, serves a sanitized build: nothing to hand back."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.fixture
def fresh_server():
    workdir = tempfile.mkdtemp(prefix="rk-mem-")
    srv = conftest.Server("ringkeeper", workdir, rk_args=["--maxClientCnxns=0"])
    srv.start()
    yield srv
    srv.stop()
    if not os.environ.get("RK_KEEP_TMP"):
        shutil.rmtree(workdir, ignore_errors=True)


def _mntr(srv, key):
    m = re.search(r"^%s\t(\d+)$" % key, srv.four_letter("mntr"), re.M)
    assert m, key
    return int(m.group(1))


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def _bench(srv, *args):
    cmd = [_bench_bin(), "--servers", srv.hosts, "--json", "--quiet", "--warmup", "0"] + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_mass_delete_hands_its_memory_back(fresh_server):
    srv = fresh_server
    exe = _bench_bin()
    if not exe or not os.access(exe, os.X_OK):
        pytest.skip("ringkeeper-bench not built (set RK_BENCH_BIN or RINGKEEPER_BIN)")
    if _sanitized(os.environ["RINGKEEPER_BIN"]):
        pytest.skip("a sanitized build allocates through ASan, not mimalloc")
    rss_empty = _rss_kb(srv.pid)
    peak = [rss_empty, 0]  # the most RSS and znodes seen

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kb(srv.pid))
            peak[1] = max(peak[1], _mntr(srv, "zk_znode_count"))
            time.sleep(0.05)
    done = threading.Event()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # Creates of 100-byte values for 5 s (several hundred thousand znodes), then the
        # generator deletes every one it made, in multis of 100.
        _bench(srv, "--root", "/mem", "--preset", "create", "--sessions", "64", "--duration", "5")
    finally:
        done.set()
        sampler.join()
    assert _mntr(srv, "zk_znode_count") < 20
    grown = peak[0] - rss_empty
    assert peak[1] > 100000 and grown > peak[1] * 150 // 1024, (rss_empty, peak)
    # One quiet second releases; a loaded machine may take a few.
    deadline = time.monotonic() + 10
    while True:
        kept = _rss_kb(srv.pid) - rss_empty
        if kept < grown // 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # What stays: the receive buffers the load touched, a few MB (bench/RESULTS.md,
    # "The path hash shrinks after deletes"). The path hash's buckets shrink with the
    # tree (ZooKeeper's table does not). Before the release, all of it stayed.
    assert kept < grown // 2, (rss_empty, peak, kept)


def _getdata_burst(n, xid0):
    body = w.path_watch_body("/")
    return b"".join(w.frame(struct.pack(">ii", xid0 + i, w.OP_GETDATA) + body) for i in range(n))


def test_more_connections_than_receive_buffers_all_answered(fresh_server):
    srv = fresh_server
    workers = _mntr(srv, "rk_workers")
    assert _mntr(srv, "rk_recv_buffers") == RECV_BUF_STEP * workers
    conns = []
    try:
        for _ in range(400):
            c = w.RawConn(srv.port, timeout=30.0)
            c.events = []
            c.handshake()
            conns.append(c)
        burst = _getdata_burst(1000, 1)  # about 20 KB: two buffers or more per connection
        for rnd in range(3):
            for c in conns:
                c.send_raw(burst)
            for c in conns:
                for i in range(1000):
                    xid, _, err, _ = c.recv_reply()
                    assert (xid, err) == (1 + i, 0), (rnd, i, xid, err)
    finally:
        for c in conns:
            c.close()
    grown = _mntr(srv, "rk_recv_buffers")
    assert RECV_BUF_STEP * workers < grown <= RECV_BUF_COUNT * workers, grown
    assert grown % RECV_BUF_STEP == 0, grown
