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


ENSEMBLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "bench", "ensemble.py")
TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")]


def _ensemble(tmp_path, *args):
    exe = _bench_bin()
    if not exe or not os.access(exe, os.X_OK) or not os.environ.get("RINGKEEPER_BIN"):
        pytest.skip("ringkeeper-bench or RINGKEEPER_BIN missing")
    env = dict(os.environ, BENCH_BIN=exe, COMPARE_TMP=str(tmp_path), WAL_BENCH_BIN="")
    out_dir = tmp_path / "out"
    run = subprocess.run(["/usr/bin/python3", ENSEMBLE] + list(args) + ["--out", str(out_dir)],
                         capture_output=True, text=True, timeout=240, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out_dir, run.stdout


@pytest.mark.skipif("zookeeper" not in TARGETS or "ringkeeper" not in TARGETS,
                    reason="the cluster comparison needs both targets")
def test_ensemble_compare_smoke(tmp_path):
    """bench/ensemble.py compare (compare.sh --cluster) on a tiny run: both 3-node clusters
    start, every run has its three servers and zero errors, and the report has its rows.
    Tooling only: the numbers are not checked."""
    out_dir, stdout = _ensemble(
        tmp_path, "compare", "--rounds", "1", "--duration", "1", "--warmup", "0", "--jvm-warm", "0",
        "--presets", "set", "--sessions", "6", "--open-presets", "set", "--open-sessions", "6",
        "--rate", "300", "--bench-args", "--keys 50")
    recs = [json.loads(l) for l in open(out_dir / "results.jsonl")]
    assert [(r["server"], r["kind"]) for r in recs] == [
        ("zookeeper", "closed"), ("ringkeeper", "closed"), ("zookeeper", "open"), ("ringkeeper", "open")]
    for rec in recs:
        r = rec["result"]
        assert len(r["servers"].split(",")) == 3, r
        assert r["sessions_connected"] == 6 and r["errors"] == 0 and r["ok"] > 0, r
        assert r["cpu_us_per_op"]["server"] > 0, r  # summed over the three pids
    assert recs[2]["result"]["rate"] == 300 and recs[3]["result"]["rate"] == 300
    report = (out_dir / "report.md").read_text()
    assert re.search(r"^\| set \| 6 \| [\d ]+ \| [\d ]+ \| \*\*[\d.]+\*\* \|", report, re.M), report
    assert re.search(r"^\| set \| 6 \| 300 \| ", report, re.M), report
    assert "Targets: set@6 " in report, report


@pytest.mark.skipif("ringkeeper" not in TARGETS, reason="RingKeeper cluster failover")
def test_ensemble_failover_smoke(tmp_path):
    """bench/ensemble.py failover on one RingKeeper kill: the leader is killed under load, a
    new one is elected, the old one rejoins as a follower, sessions reconnected, and the
    gap is measured from the timeline (not judged)."""
    out_dir, stdout = _ensemble(
        tmp_path, "failover", "--systems", "ringkeeper", "--kills", "1", "--rate", "300",
        "--sessions", "6", "--pre", "1", "--post", "0.5", "--settle", "0.5", "--bench-args", "--keys 50")
    recs = [json.loads(l) for l in open(out_dir / "failover.jsonl")]
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["system"] == "ringkeeper" and r["new_leader"] not in (None, r["leader_killed"]), r
    assert r["rejoined_as"] == "follower", r
    assert r["gap_ms"] > 0 and r["first_ack_after_ms"] is not None, r
    assert r["reconnects"] >= 1 and r["sessions_expired"] == 0, r
    assert r["writes_in_second_before"] > 0, r
    assert "| ringkeeper | 1 |" in (out_dir / "failover.md").read_text()
