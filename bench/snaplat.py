#!/usr/bin/python3
"""snaplat.py - what a snapshot costs the clients of a big tree (issue 13).

One RingKeeper server with forceSync on and automatic snapshots off (snapCount set
past the run), filled with N znodes of 100-byte values by ringkeeper-bench's create
preset. Then:

  1. RSS: the server's VmRSS after the fill, per znode (and the empty server's);
  2. one snapshot on `csnp`: its duration, file size and the applier's pause (mntr);
  3. latency: the `mixed` preset in open loop at a fixed rate, rounds alternating
     "quiet" (no snapshot) and "snapshot" (a new csnp as soon as the previous
     snapshot ends, so one is being written for the whole window); p50/p99/p99.9/max
     of every request, from ringkeeper-bench's own histograms;
  4. restart: kill -9, start again on the same data dir, time until `ruok` answers
     `imok` and until mntr shows every znode.

Prints one table (markdown) and writes every raw figure as JSON to --out. A benchmark
measures; it asserts nothing.

    /usr/bin/python3 bench/snaplat.py --nodes 1000000 --rate 20000 --rounds 3
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from ensemble import four_letter, free_port  # noqa: E402  (bench/ensemble.py)


def four(port, word, timeout=10.0):
    return four_letter(port, word, timeout=timeout)


def mntr(port):
    kv = {}
    for line in four(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        kv[k] = v
    return kv


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, binary, data, port, log):
        self.binary, self.data, self.port, self.log = binary, data, port, log
        self.proc = None

    def start(self, wait_znodes=0, timeout=600):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.binary, "--dataDir=" + self.data, "--clientPort=%d" % self.port,
             "--4lw.commands.whitelist=*", "--snapCount=2000000000", "--forceSync=yes",
             "--maxClientCnxns=0"],
            stdout=self.log, stderr=self.log)
        imok = None
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("ringkeeper exited with %d" % self.proc.returncode)
            if four(self.port, "ruok", timeout=1.0) == "imok":
                imok = time.monotonic() - t0
                break
            time.sleep(0.01)
        if imok is None:
            raise RuntimeError("no imok within %d s" % timeout)
        full = imok
        while wait_znodes and int(mntr(self.port).get("zk_znode_count", "0")) < wait_znodes:
            time.sleep(0.05)
            full = time.monotonic() - t0
        return imok, full

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()


def bench(args, port, preset, extra, duration, warmup=1):
    cmd = [args.bench, "--servers", "127.0.0.1:%d" % port, "--preset", preset, "--json", "--quiet",
           "--warmup", str(warmup), "--duration", str(duration)] + extra
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + 600)
    if out.returncode != 0:
        raise RuntimeError("bench failed: %s" % out.stderr[-2000:])
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def fill(args, srv):
    t0 = time.monotonic()
    while True:
        have = int(mntr(srv.port).get("zk_znode_count", "0"))
        if have >= args.nodes:
            return have, time.monotonic() - t0
        left = args.nodes - have
        # the create preset runs at ~100-200k/s here: windows sized so that the last
        # one overshoots by at most about one second of creates
        bench(args, srv.port, "create", ["--sessions", "256", "--no-cleanup", "--root", "/fill",
                                         "--seed", str(int(time.time() * 1000) % 1000000)],
              duration=max(1, min(10, left // 250000)), warmup=0)


def snapshot_once(port, timeout=600, stop=None):
    """csnp, then wait for it to finish. A server with nothing logged since its last
    snapshot takes none: with stop given, the wait ends when it is set (None)."""
    before = int(mntr(port)["rk_snapshot_count"])
    four(port, "csnp")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and not (stop and stop.is_set()):
        kv = mntr(port)
        if int(kv["rk_snapshot_count"]) > before and kv["rk_snapshot_in_progress"] == "0":
            return kv, time.monotonic() - t0
        time.sleep(0.02)
    if stop and stop.is_set():
        return None, None
    raise RuntimeError("csnp did not finish within %d s" % timeout)


def snapshot_loop(port, stop, record):
    while not stop.is_set():
        kv, wall = snapshot_once(port, stop=stop)
        if kv:
            record.append({k: kv[k] for k in kv if k.startswith("rk_snapshot_last")})


def latency_round(args, port, with_snapshots):
    stop, snaps = threading.Event(), []
    t = None
    if with_snapshots:
        t = threading.Thread(target=snapshot_loop, args=(port, stop, snaps), daemon=True)
        t.start()
    mix = ["--mix", args.mix] if args.mix else []
    res = bench(args, port, "mixed", mix + ["--rate", str(args.rate), "--sessions", str(args.sessions),
                                            "--inflight", "4", "--no-setup", "--no-cleanup"],
                duration=args.window, warmup=2)
    stop.set()
    if t:
        t.join()
    return res[-1], snaps


def pick(r):
    """The all-requests figures of one ringkeeper-bench JSON result."""
    lat = r.get("latency_us") or r.get("all") or {}
    return {"done_per_s": r.get("ops_per_s"), "p50": lat.get("p50"), "p99": lat.get("p99"),
            "p999": lat.get("p999"), "max": lat.get("max"), "errors": r.get("errors"),
            "unsent": r.get("open_loop_unsent")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "ringkeeper"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "ringkeeper-bench"))
    ap.add_argument("--nodes", type=int, default=1000000)
    ap.add_argument("--rate", type=int, default=20000, help="mixed, open loop, ops/s")
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--mix", default=None, help="ringkeeper-bench --mix for the rounds (default: the mixed preset)")
    ap.add_argument("--window", type=int, default=20, help="seconds per latency round")
    ap.add_argument("--rounds", type=int, default=3, help="pairs of quiet + snapshot rounds")
    ap.add_argument("--dir", default="/var/tmp", help="where the data dir goes")
    ap.add_argument("--out", default=None, help="JSON results file")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="rk-snaplat.", dir=args.dir)
    data = os.path.join(work, "data")
    os.makedirs(data)
    log = open(os.path.join(work, "server.log"), "w")
    srv = Server(args.binary, data, free_port(), log)
    res = {"nodes_target": args.nodes, "rate": args.rate, "sessions": args.sessions, "window_s": args.window,
           "load": os.getloadavg()}
    try:
        srv.start()
        res["rss_empty"] = rss_bytes(srv.proc.pid)
        znodes, res["fill_s"] = fill(args, srv)
        bench(args, srv.port, "mixed", ["--sessions", "4", "--rate", "100", "--no-cleanup"], duration=1,
              warmup=0)  # makes the key space the rounds use
        time.sleep(1.0)
        res["znodes"] = int(mntr(srv.port)["zk_znode_count"])
        res["rss_full"] = rss_bytes(srv.proc.pid)
        res["rss_per_znode"] = res["rss_full"] / res["znodes"]
        res["rss_delta_per_znode"] = (res["rss_full"] - res["rss_empty"]) / res["znodes"]
        kv, wall = snapshot_once(srv.port)
        res["snapshot"] = {k: int(kv[k]) for k in kv if k.startswith("rk_snapshot_last")}
        res["snapshot"]["wall_s"] = wall
        res["rounds"] = []
        for r in range(args.rounds):
            for mode in (False, True):
                b, snaps = latency_round(args, srv.port, mode)
                row = {"round": r + 1, "snapshots": mode, "result": b, "snaps": snaps,
                       "load": os.getloadavg()}
                res["rounds"].append(row)
                print("round %d %-8s %s  snapshots %d" % (r + 1, "snapshot" if mode else "quiet",
                                                         json.dumps(pick(b)), len(snaps)), file=sys.stderr)
        res["rss_after_rounds"] = rss_bytes(srv.proc.pid)
        srv.kill9()
        imok, full = srv.start(wait_znodes=res["znodes"])
        res["restart_imok_s"], res["restart_full_s"] = imok, full
    finally:
        srv.stop()
        log.close()
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(res)


def report(res):
    s = res["snapshot"]
    print("| figure | value |\n|---|---|")
    print("| znodes | %d (fill %.0f s) |" % (res["znodes"], res["fill_s"]))
    print("| RSS | %.0f MB: %.0f B per znode (%.0f B above the empty server's %.0f MB) |" % (
        res["rss_full"] / 1e6, res["rss_per_znode"], res["rss_delta_per_znode"], res["rss_empty"] / 1e6))
    print("| snapshot (csnp) | %.2f s, %.1f MB, applier pause %d us, longest shard-lock hold %d us, %d nodes copied |" % (
        s.get("rk_snapshot_last_duration_ms", 0) / 1e3, s.get("rk_snapshot_last_bytes", 0) / 1e6,
        s.get("rk_snapshot_last_pause_us", 0), s.get("rk_snapshot_last_lock_hold_max_us", 0),
        s.get("rk_snapshot_last_copied_nodes", 0)))
    print("| restart after kill -9 | imok %.2f s, every znode %.2f s |" % (res["restart_imok_s"], res["restart_full_s"]))
    print()
    print("| round | snapshots | done/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | snapshots taken |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in res["rounds"]:
        p = pick(row["result"])
        print("| %d | %s | %s | %s | %s | %s | %s | %s | %d |" % (
            row["round"], "yes" if row["snapshots"] else "no", fmt(p["done_per_s"], 1),
            fmt(p["p50"]), fmt(p["p99"]), fmt(p["p999"]), fmt(p["max"]), p["errors"], len(row["snaps"])))


def fmt(v, scale=1000.0):
    if v is None:
        return "-"
    return "%.0f" % v if scale == 1 else "%.2f" % (v / scale)


if __name__ == "__main__":
    main()
