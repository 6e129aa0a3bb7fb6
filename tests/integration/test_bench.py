"""ringkeeper-bench against both servers: a short run completes with zero errors and
the requests it reports match the server's own count (mntr zk_packets_received).

Pins: the load generator speaks the protocol correctly to RingKeeper and to ZooKeeper
3.8 (every reply is checked by the generator itself), and counts what it sends. The
count check: with --warmup 0 the timed window is the whole run, so the server receives
ok + errors requests, plus one ConnectRequest and one closeSession per session, plus a
handful of its own (the mntr that reads the counter, which ZooKeeper counts).
"""
import json
import os
import re
import subprocess

import pytest


def _bench_bin():
    explicit = os.environ.get("RK_BENCH_BIN")
    if explicit:
        return explicit
    rk = os.environ.get("RINGKEEPER_BIN")
    if rk:
        # build/ringkeeper -> build/bench/ringkeeper-bench (and the older build/core/ layout)
        for build in (os.path.dirname(rk), os.path.dirname(os.path.dirname(rk))):
            exe = os.path.join(build, "bench", "ringkeeper-bench")
            if os.access(exe, os.X_OK):
                return exe
    return None


def _packets_received(server):
    text = server.four_letter("mntr")
    m = re.search(r"^zk_packets_received\t(\d+)$", text, re.M)
    assert m, text
    return int(m.group(1))


def _bench(server, *args):
    cmd = [_bench_bin(), "--servers", "127.0.0.1:%d" % server.port, "--json", "--quiet",
           "--threads", "1"] + list(args)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(runs) == 1, out.stdout
    return runs[0]


def test_bench_counts_match_server(server):
    exe = _bench_bin()
    if not exe or not os.access(exe, os.X_OK):
        pytest.skip("ringkeeper-bench not built (set RK_BENCH_BIN or RINGKEEPER_BIN)")
    base = "/bench-%d" % os.getpid()  # the generator takes a short root
    sessions = 8
    # 1. the mixed preset with its own setup and cleanup: zero errors of any kind
    r = _bench(server, "--root", base, "--preset", "mixed", "--sessions", str(sessions),
               "--warmup", "1", "--duration", "2", "--list-children", "20", "--keys", "200")
    assert r["errors"] == 0 and r["errors_by_code"] == {}, r
    assert r["sessions_connected"] == sessions and r["connections_lost"] == 0, r
    assert r["ok"] > 0
    # 2. reads over a key space left in place: the server's count matches exactly
    _bench(server, "--root", base, "--mix", "set=100", "--sessions", "1", "--warmup", "0",
           "--duration", "1", "--keys", "50", "--no-cleanup")
    before = _packets_received(server)
    r = _bench(server, "--root", base, "--mix", "get=50,list=40,exists=10", "--sessions",
               str(sessions), "--warmup", "0", "--duration", "2", "--keys", "50",
               "--list-children", "20", "--no-setup", "--no-cleanup")
    after = _packets_received(server)
    assert r["errors"] == 0, r
    sent = r["ok"] + r["errors"]
    # Every request the generator reports reached the server, and it reported every
    # one (its connects and closes and the mntr itself come on top; the few requests
    # of its own bookkeeping are allowed for).
    extra = after - before - sent
    assert 2 * sessions <= extra <= 3 * sessions + 4, (after - before, sent, r)
