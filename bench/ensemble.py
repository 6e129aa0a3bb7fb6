#!/usr/bin/python3
"""ensemble.py - a 3-node RingKeeper cluster against a 3-node ZooKeeper 3.8 ensemble on
this machine, in one run (issue 12's performance section).

Both clusters run on 127.0.0.1 at the same time, each server with its own data dir
under $COMPARE_TMP (default /var/tmp: on disk, since durability is measured), its own
zoo.cfg (server.N lines, myid in dataDir, forceSync=yes) and free ports. Every
ringkeeper-bench run spreads its sessions over the three servers of one cluster (session
s talks to server s mod 3) and sums the three server processes' CPU.

  compare   closed loop: every preset x session count, ZooKeeper and RingKeeper
            alternating (Z R Z R ...) for --rounds rounds; medians, RK/ZK ratios of
            throughput, p50/p99 of both, server CPU per op summed over the three
            servers. Then open loop: each --open-presets preset at the same fixed rate
            for both (default: half of ZooKeeper's closed-loop median for it), p99 ratio.
  failover  under a steady open-loop write load from sessions spread over all servers
            (ringkeeper-bench --reconnect: a session moves to the next server with its
            session id when its connection is lost), SIGKILL the leader (srvr: Mode:
            leader), wait for a new leader, restart the killed server, wait until it is a
            follower again, repeat; --kills per system, alternating ZK RK ZK RK. The
            gap: the longest time without any acknowledged write around the kill (last
            ack before it to first ack after it, 1 ms buckets from the bench's
            --timeline). Median and max per system.
  profile   per server, over a few seconds of closed-loop load: CPU, context switches,
            fdatasync/fsync and send calls per request (perf stat), leader vs followers;
            --record adds perf record -g of the RingKeeper servers.
  up        start both clusters, print their servers and pids, wait for Ctrl-C (for
            profiling by hand).

Everything it starts is stopped by pid on exit and its directories removed (--keep
keeps them). Timings are measured, never asserted.

Usage: bench/ensemble.py compare [--quick] [--rounds N] [--presets a,b] [--sessions 64,256]
                                 [--duration S] [--warmup S] [--open-presets set,mixed]
                                 [--open-sessions 64] [--open-inflight 4] [--rate R]
                                 [--out DIR]
       bench/ensemble.py failover [--kills 5] [--rate 2000] [--sessions 64] [--preset set]
                                  [--systems zookeeper,ringkeeper] [--out DIR]
       bench/ensemble.py profile [--preset set] [--sessions 64] [--seconds 8] [--record]
       bench/ensemble.py up [--systems ringkeeper]
Env:   RINGKEEPER_BIN, BENCH_BIN, WAL_BENCH_BIN (default: newest build*/...),
       COMPARE_TMP (default /var/tmp), ZK_HEAP (default 1g: -Xms and -Xmx per server)
"""
import argparse
import glob
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ZK_JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/log4j-1.2.jar",
           "/usr/share/java/slf4j-log4j12.jar"]


def sanitized(path):
    """True for a binary built with ASan/UBSan (tests/run.sh makes build-asan/): it
    measures the sanitizer, and a sanitized generator starves what it measures."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def newest(pattern):
    found = [p for p in glob.glob(os.path.join(ROOT, pattern)) if os.access(p, os.X_OK) and not sanitized(p)]
    return max(found, key=os.path.getmtime) if found else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def four_letter(port, word, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out.decode("utf-8", "replace")
    except OSError:
        return ""


def session_ok(port, timeout=2.0):
    """A real session handshake (then closeSession) succeeds on 127.0.0.1:port: ZooKeeper
    answers srvr with a mode a little before its followers serve sessions."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            body = struct.pack(">iqiqi16s?", 0, 0, 30000, 0, 16, b"\0" * 16, False)
            s.sendall(struct.pack(">i", len(body)) + body)

            def frame():
                data = b""
                while len(data) < 4:
                    chunk = s.recv(4 - len(data))
                    if not chunk:
                        return None
                    data += chunk
                n = struct.unpack(">i", data)[0]
                data = b""
                while len(data) < n:
                    chunk = s.recv(n - len(data))
                    if not chunk:
                        return None
                    data += chunk
                return data
            reply = frame()
            if not reply or len(reply) < 16 or struct.unpack(">q", reply[8:16])[0] == 0:
                return False
            s.sendall(struct.pack(">iii", 8, 1, -11))
            return frame() is not None
    except OSError:
        return False


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pressure():
    """Share of the last 10 s some task waited for a CPU / for I/O (Linux PSI), in %."""
    out = {}
    for what in ("cpu", "io"):
        try:
            with open("/proc/pressure/" + what) as f:
                out[what] = float(f.readline().split()[1].split("=")[1])
        except (OSError, IndexError, ValueError):
            out[what] = None
    return out


class Node:
    """One server of a cluster: its dir, ports and process."""

    def __init__(self, ens, sid):
        self.ens, self.sid = ens, sid
        self.dir = os.path.join(ens.workdir, "n%d" % sid)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        with open(os.path.join(self.data, "myid"), "w") as f:
            f.write("%d\n" % sid)
        self.pick_ports()
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    def pick_ports(self):
        self.client_port = free_port()
        self.peer_port = free_port()
        self.election_port = free_port()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def config(self):
        lines = ["tickTime=2000", "initLimit=10", "syncLimit=5",
                 "dataDir=%s" % self.data, "clientPort=%d" % self.client_port,
                 "clientPortAddress=127.0.0.1", "maxClientCnxns=0", "forceSync=yes",
                 "4lw.commands.whitelist=*"]
        if self.ens.kind == "zookeeper":
            lines += ["admin.enableServer=false"]
        else:
            lines += ["metricsPort=0"]
        lines += self.ens.extra_cfg
        for n in self.ens.nodes:
            lines.append("server.%d=127.0.0.1:%d:%d" % (n.sid, n.peer_port, n.election_port))
        path = os.path.join(self.dir, "zoo.cfg")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def command(self):
        cfg = self.config()
        if self.ens.kind == "ringkeeper":
            return [self.ens.binary, "--config", cfg]
        conf = os.path.join(self.dir, "conf")
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, "log4j.properties"), "w") as f:
            f.write("log4j.rootLogger=%s, CONSOLE\n" % os.environ.get("ZK_LOG_LEVEL", "WARN") +
                    "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                    "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.CONSOLE.layout.ConversionPattern=%d %p %c{1} %m%n\n")
        heap = os.environ.get("ZK_HEAP", "1g")
        return ["java", "-Xms" + heap, "-Xmx" + heap, "-cp", ":".join([conf] + ZK_JARS),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]

    def start(self):
        assert not self.alive()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, cwd=self.dir, start_new_session=True)

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)

    def mode(self):
        for line in four_letter(self.client_port, "srvr", 1.0).splitlines():
            if line.startswith("Mode: "):
                return line[6:].strip()
        return None

    def log_tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


class Ensemble:
    def __init__(self, kind, workdir, binary=None, size=3, extra_cfg=(), label=None):
        self.kind, self.binary = kind, binary
        self.extra_cfg = [c for c in extra_cfg if c]
        self.label = label or kind
        self.workdir = workdir
        self.nodes = []
        for sid in range(1, size + 1):
            self.nodes.append(Node(self, sid))

    @property
    def short(self):
        return "ZK" if self.kind == "zookeeper" else "RK" if self.label == self.kind else self.label

    @property
    def servers(self):
        return ",".join("127.0.0.1:%d" % n.client_port for n in self.nodes)

    @property
    def pids(self):
        return ",".join(str(n.pid) for n in self.nodes)

    def start(self, timeout=90.0, tries=3):
        """Starts every server; ports are picked now, and picked again if one was taken
        meanwhile (the machine is shared: other processes take ports too)."""
        for attempt in range(tries):
            for n in self.nodes:
                n.pick_ports()
            for n in self.nodes:
                n.start()
            try:
                self.wait_serving(timeout)
                return
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt + 1 == tries:
                    raise
                print("%s: a port was taken, starting again on new ports" % self.kind, flush=True)
                self.stop()

    def leader(self):
        for n in self.nodes:
            if n.alive() and n.mode() == "leader":
                return n
        return None

    def wait_serving(self, timeout=60.0):
        """Until every live server serves (srvr names a mode) and one of them leads."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            modes = [n.mode() for n in self.nodes if n.alive()]
            if modes.count("leader") == 1 and all(m in ("leader", "follower") for m in modes) and \
                    all(session_ok(n.client_port) for n in self.nodes if n.alive()):
                return
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    raise RuntimeError("%s n%d exited (%s):\n%s" % (self.kind, n.sid, n.proc.returncode,
                                                                   n.log_tail()))
            time.sleep(0.05)
        raise RuntimeError("%s: no serving ensemble within %.0fs:\n%s" % (
            self.kind, timeout, "\n".join("--- n%d\n%s" % (n.sid, n.log_tail()) for n in self.nodes)))

    def stop(self):
        for n in self.nodes:
            n.kill(signal.SIGTERM)


class Bench:
    def __init__(self, binary, threads, extra_args=()):
        self.binary, self.threads, self.extra_args = binary, threads, list(extra_args)

    def command(self, ens, preset, sessions, warmup, duration, extra=()):
        return [self.binary, "--servers", ens.servers, "--server-pid", ens.pids, "--preset", preset,
                "--sessions", str(sessions), "--threads", str(self.threads), "--warmup", str(warmup),
                "--duration", str(duration), "--json"] + self.extra_args + list(extra)

    def run(self, ens, preset, sessions, warmup, duration, extra=()):
        cmd = self.command(ens, preset, sessions, warmup, duration, list(extra) + ["--quiet"])
        load_before = loadavg()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=warmup + duration + 600)
        runs = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        if out.returncode != 0 or len(runs) != 1:
            raise RuntimeError("ringkeeper-bench failed (%d): %s\n%s" % (out.returncode, " ".join(cmd),
                                                                       out.stderr[-2000:]))
        r = runs[0]
        r["loadavg_before"], r["loadavg_after"] = load_before, loadavg()
        r["pressure_after"] = pressure()
        ops = r["ok"] + r["errors"]
        r["other_cores"] = r["cpu_us_per_op"]["other"] * ops / 1e6 / r["window_s"] if r["window_s"] else 0
        return r


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")


def fmt(x, digits=0):
    return "-" if x != x else "{:,.{}f}".format(x, digits).replace(",", " ")


def probe_disk(label, workdir, wal_bench):
    if not wal_bench:
        return None
    out = subprocess.run([wal_bench, os.path.join(workdir, "probe"), "probe"], capture_output=True,
                         text=True)
    for line in out.stdout.splitlines():
        if line.startswith("fdatasync_probe"):
            kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
            print("Disk (%s): one 4 KiB O_DIRECT pwrite + fdatasync: p50 %s us, p99 %s us" %
                  (label, kv.get("p50_us"), kv.get("p99_us")), flush=True)
            return kv
    return None


# ---- compare ----------------------------------------------------------------------

def run_line(r, name):
    return ("  %-10s %-10s %4d sessions%s: %9.0f ops/s  p50 %6.2f ms  p99 %7.2f ms  errors %d  "
            "server %6.1f us/op (3 servers)  other load %.2f cores  load %s  psi cpu/io %s/%s%%" % (
                name, r["preset"], r["sessions"],
                (" rate %6.0f" % r["rate"]) if r["rate"] else "", r["ops_per_s"],
                r["latency_us"]["p50"] / 1e3, r["latency_us"]["p99"] / 1e3, r["errors"],
                r["cpu_us_per_op"]["server"], r["other_cores"], r["loadavg_after"],
                r["pressure_after"]["cpu"], r["pressure_after"]["io"]))


def report_closed(records):
    rows = {}
    for rec in records:
        r = rec["result"]
        rows.setdefault((r["preset"], r["sessions"]), {}).setdefault(rec["server"], []).append(r)
    order = {"create": 0, "set": 1, "mixed": 2, "clickhouse": 3}
    lines = ["| preset | sessions | ZK ops/s | RK ops/s | RK/ZK | ZK p50 ms | RK p50 ms | ZK p99 ms | "
             "RK p99 ms | RK/ZK p99 | ZK µs/op | RK µs/op | RK/ZK CPU | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for (preset, sessions), by in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        zk, rk = by.get("zookeeper", []), by.get("ringkeeper", [])
        g = lambda runs, f: med([f(r) for r in runs])
        zo, ro = g(zk, lambda r: r["ops_per_s"]), g(rk, lambda r: r["ops_per_s"])
        z50, r50 = g(zk, lambda r: r["latency_us"]["p50"] / 1e3), g(rk, lambda r: r["latency_us"]["p50"] / 1e3)
        z99, r99 = g(zk, lambda r: r["latency_us"]["p99"] / 1e3), g(rk, lambda r: r["latency_us"]["p99"] / 1e3)
        zc, rc = g(zk, lambda r: r["cpu_us_per_op"]["server"]), g(rk, lambda r: r["cpu_us_per_op"]["server"])
        errs = sum(r["errors"] for r in zk + rk)
        ratio = ro / zo if zo and zo == zo else float("nan")
        summary[(preset, sessions)] = {"ratio": ratio, "p99_ratio": r99 / z99 if z99 else float("nan"),
                                       "cpu_ratio": rc / zc if zc else float("nan")}
        lines.append("| %s | %d | %s | %s | **%.2f** | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %.2f | %d |" % (
            preset, sessions, fmt(zo), fmt(ro), ratio, z50, r50, z99, r99, r99 / z99 if z99 else float("nan"),
            zc, rc, rc / zc if zc else float("nan"), errs))
    return "\n".join(lines), summary


def report_open(records):
    rows = {}
    for rec in records:
        r = rec["result"]
        rows.setdefault((r["preset"], r["sessions"], r["rate"]), {}).setdefault(rec["server"], []).append(r)
    lines = ["| preset | sessions | rate/s | ZK done/s | RK done/s | ZK p50 ms | RK p50 ms | ZK p99 ms | "
             "RK p99 ms | RK/ZK p99 | ZK µs/op | RK µs/op | unsent ZK/RK | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (preset, sessions, rate), by in sorted(rows.items()):
        zk, rk = by.get("zookeeper", []), by.get("ringkeeper", [])
        g = lambda runs, f: med([f(r) for r in runs])
        z99, r99 = g(zk, lambda r: r["latency_us"]["p99"] / 1e3), g(rk, lambda r: r["latency_us"]["p99"] / 1e3)
        lines.append("| %s | %d | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | **%.2f** | %.1f | %.1f | %d/%d | %d |" % (
            preset, sessions, fmt(rate), fmt(g(zk, lambda r: r["ops_per_s"])), fmt(g(rk, lambda r: r["ops_per_s"])),
            g(zk, lambda r: r["latency_us"]["p50"] / 1e3), g(rk, lambda r: r["latency_us"]["p50"] / 1e3),
            z99, r99, r99 / z99 if z99 else float("nan"),
            g(zk, lambda r: r["cpu_us_per_op"]["server"]), g(rk, lambda r: r["cpu_us_per_op"]["server"]),
            sum(r["open_loop_unsent"] for r in zk), sum(r["open_loop_unsent"] for r in rk),
            sum(r["errors"] for r in zk + rk)))
    return "\n".join(lines)


def conditions(runs):
    """The machine during the runs: what else was using it."""
    if not runs:
        return ""
    load1 = [float(r["loadavg_after"].split()[0]) for r in runs]
    other = [r["other_cores"] for r in runs]
    io = [r["pressure_after"]["io"] for r in runs if r["pressure_after"]["io"] is not None]
    cpu = [r["pressure_after"]["cpu"] for r in runs if r["pressure_after"]["cpu"] is not None]
    text = ("Conditions over %d runs: 1-min load average %.1f-%.1f (median %.1f); CPU used by other "
            "processes (machine busy - bench - servers) median %.2f, max %.2f of 2 cores" % (
                len(runs), min(load1), max(load1), med(load1), med(other), max(other)))
    if io and cpu:
        text += "; PSI avg10 some-waiting: cpu median %.0f%%, io median %.0f%% (max %.0f%%)" % (
            med(cpu), med(io), max(io))
    return text


def cmd_compare(args, zk, rk, bench, out_dir, workdir, wal_bench):
    results = os.path.join(out_dir, "results.jsonl")
    records = []

    def record(server, kind, rnd, r):
        rec = {"server": server, "kind": kind, "round": rnd, "result": r}
        records.append(rec)
        with open(results, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(run_line(r, server), flush=True)

    if args.jvm_warm > 0:
        print("Warming ZooKeeper's JVMs for %gs (mixed, 64 sessions; not recorded)" % args.jvm_warm, flush=True)
        bench.run(zk, "mixed", 64, 0, args.jvm_warm)
    probes = [probe_disk("before", workdir, wal_bench)]
    presets, sessions = args.presets.split(","), [int(s) for s in args.sessions.split(",")]
    for rnd in range(1, args.rounds + 1):
        print("Round %d/%d (closed loop)" % (rnd, args.rounds), flush=True)
        for p in presets:
            for s in sessions:
                for ens in (zk, rk):
                    record(ens.kind, "closed", rnd, bench.run(ens, p, s, args.warmup, args.duration))
    open_records = []
    if args.open_presets:
        for p in args.open_presets.split(","):
            if args.rate:
                rate = args.rate
            else:
                zk_runs = [r["result"]["ops_per_s"] for r in records if r["server"] == "zookeeper"
                           and r["result"]["preset"] == p and r["result"]["sessions"] == args.open_sessions]
                if not zk_runs:
                    zk_runs = [bench.run(zk, p, args.open_sessions, args.warmup, args.duration)["ops_per_s"]]
                rate = round(args.open_fraction * med(zk_runs), -2)
            for rnd in range(1, args.rounds + 1):
                print("Round %d/%d (open loop, %s at %.0f/s)" % (rnd, args.rounds, p, rate), flush=True)
                for ens in (zk, rk):
                    r = bench.run(ens, p, args.open_sessions, args.warmup, args.duration,
                                  ["--rate", str(rate), "--inflight", str(args.open_inflight)])
                    record(ens.kind, "open", rnd, r)
                    open_records.append(records[-1])
    probes.append(probe_disk("after", workdir, wal_bench))
    closed_table, summary = report_closed([r for r in records if r["kind"] == "closed"])
    report = ["## Closed loop (medians of %d rounds; µs/op = CPU of the three server processes per "
              "completed request)" % args.rounds, "", closed_table, ""]
    if open_records:
        report += ["## Open loop (same rate for both, inflight %d per session)" % args.open_inflight, "",
                   report_open(open_records), ""]
    targets = []
    for (p, s), v in sorted(summary.items()):
        want = 3.0 if p in ("create", "set") else 3.5
        targets.append("%s@%d %.2fx (target %.1fx: %s; p99 %.2fx of ZK)" % (
            p, s, v["ratio"], want, "met" if v["ratio"] >= want else "missed", v["p99_ratio"]))
    report += ["Targets: " + "; ".join(targets), ""]
    report += ["Disk probe p50/p99 µs: " + ", ".join("%s/%s" % (p.get("p50_us"), p.get("p99_us"))
                                                       for p in probes if p)]
    report += [conditions([r["result"] for r in records])]
    text = "\n".join(report)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)
    print("raw results: %s" % results)


# ---- failover ---------------------------------------------------------------------

def read_timeline(path):
    header, writes = {}, {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                header = dict(p.split("=", 1) for p in line[1:].split() if "=" in p)
                continue
            ms, w, _r, _e = (int(x) for x in line.split())
            if w:
                writes[ms] = w
    return header, writes


def longest_gap(ack_ms, lo, hi, end_by=None):
    """The longest interval between consecutive acked-write ms whose start lies in [lo, hi]
    (and, with end_by, that ended by then): (gap ms, last ack before it, first ack after
    it). ack_ms is sorted."""
    best = (0, None, None)
    for prev, ms in zip(ack_ms, ack_ms[1:]):
        if lo <= prev <= hi and (end_by is None or ms <= end_by) and ms - prev > best[0]:
            best = (ms - prev, prev, ms)
    return best


def one_failover(ens, bench, args, out_dir, index):
    tl = os.path.join(out_dir, "timeline-%s-%d.txt" % (ens.short, index))
    extra = ["--rate", str(args.rate), "--inflight", str(args.inflight), "--reconnect", "--timeline", tl,
             "--no-cleanup"]
    cmd = bench.command(ens, args.preset, args.sessions, 0, args.max_run, extra)
    started = threading.Event()
    err_lines = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def pump():
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("[bench] t="):
                started.set()
    th = threading.Thread(target=pump, daemon=True)
    th.start()
    if not started.wait(120):
        proc.kill()
        raise RuntimeError("bench did not start: %s" % "".join(err_lines[-20:]))
    time.sleep(args.pre)
    ev = {"load_before": loadavg(), "psi_before": pressure()}
    leader = ens.leader()
    if leader is None:
        raise RuntimeError("%s: no leader before the kill" % ens.kind)
    ev["leader"] = leader.sid
    ev["kill"] = time.monotonic_ns()
    os.kill(leader.pid, signal.SIGKILL)
    leader.proc.wait(10)
    ev["killed_reaped"] = time.monotonic_ns()
    deadline = time.monotonic() + 60
    new = None
    while time.monotonic() < deadline and new is None:
        for n in ens.nodes:
            if n is not leader and n.mode() == "leader":
                new = n
                break
        else:
            time.sleep(0.01)
    ev["elected"] = time.monotonic_ns() if new else None
    ev["new_leader"] = new.sid if new else None
    time.sleep(args.post)
    leader.start()
    ev["restart"] = time.monotonic_ns()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and leader.mode() not in ("follower", "leader"):
        time.sleep(0.05)
    ev["rejoined"] = time.monotonic_ns()
    ev["rejoined_as"] = leader.mode()
    time.sleep(args.settle)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    th.join(5)
    runs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    if len(runs) != 1:
        raise RuntimeError("bench gave no result (rc %s): %s" % (proc.returncode, "".join(err_lines[-20:])))
    r = runs[0]
    header, writes = read_timeline(tl)
    t0 = int(header["t0_mono_ns"])
    to_ms = lambda ns: (ns - t0) / 1e6
    acks = sorted(writes)
    kill_ms = to_ms(ev["kill"])
    restart_ms = to_ms(ev["restart"])
    gap, before, after = longest_gap(acks, kill_ms - 1000, restart_ms)
    base_gap, _, _ = longest_gap(acks, kill_ms - 1000, kill_ms, end_by=kill_ms)
    restart_gap, _, _ = longest_gap(acks, restart_ms, to_ms(ev["rejoined"]) + args.settle * 1000)
    rate_before = sum(w for ms, w in writes.items() if kill_ms - 1000 <= ms < kill_ms)
    res = {
        "system": ens.kind, "index": index, "leader_killed": ev["leader"], "new_leader": ev["new_leader"],
        "gap_ms": gap, "last_ack_before_ms": before - kill_ms if before is not None else None,
        "first_ack_after_ms": after - kill_ms if after is not None else None,
        "elected_seen_ms": to_ms(ev["elected"]) - kill_ms if ev["elected"] else None,
        "rejoin_ms": (ev["rejoined"] - ev["restart"]) / 1e6, "rejoined_as": ev["rejoined_as"],
        "restart_gap_ms": restart_gap, "steady_gap_ms": base_gap, "writes_in_second_before": rate_before,
        "errors": r["errors"], "errors_by_code": r["errors_by_code"], "reconnects": r["reconnects"],
        "sessions_expired": r["sessions_expired"], "connections_lost": r["connections_lost"],
        "ops_per_s": r["ops_per_s"], "load_before": ev["load_before"], "load_after": loadavg(),
        "psi_before": ev["psi_before"],
    }
    print("  %s kill %d: leader n%d -> n%s  gap %5d ms (last ack %+d ms, first after %+s ms)  new leader "
          "seen %s ms  restart gap %d ms  rejoin %.0f ms  writes/s before %d  reconnects %d  expired %d  "
          "errors %d  load %s  psi io %s%%" % (
              ens.short, index, res["leader_killed"], res["new_leader"], gap, res["last_ack_before_ms"] or 0,
              "%.0f" % res["first_ack_after_ms"] if res["first_ack_after_ms"] is not None else "none",
              "%.0f" % res["elected_seen_ms"] if res["elected_seen_ms"] is not None else "never",
              restart_gap, res["rejoin_ms"], rate_before, res["reconnects"], res["sessions_expired"],
              res["errors"], res["load_before"], ev["psi_before"]["io"]), flush=True)
    ens.wait_serving(60)
    return res


# ---- rkab: two RingKeeper configurations ------------------------------------------

def cmd_rkab(args, rk_a, rk_b, bench, out_dir):
    """Two 3-node RingKeeper clusters that differ only in --a-config / --b-config
    (and --a-bin / --b-bin: two builds), alternating A B A B per preset x session count, medians and B/A."""
    results = os.path.join(out_dir, "rkab.jsonl")
    runs = {}
    for rnd in range(1, args.rounds + 1):
        for p in args.presets.split(","):
            for n in [int(x) for x in args.sessions.split(",")]:
                for ens in (rk_a, rk_b):
                    r = bench.run(ens, p, n, args.warmup, args.duration)
                    runs.setdefault((p, n), {}).setdefault(ens.label, []).append(r)
                    with open(results, "a") as f:
                        f.write(json.dumps({"config": ens.label, "round": rnd, "result": r}) + "\n")
                    print(run_line(r, ens.label), flush=True)
    lines = ["A = %s %s; B = %s %s" % (rk_a.binary, " ".join(rk_a.extra_cfg) or "defaults",
                                       rk_b.binary, " ".join(rk_b.extra_cfg) or "defaults"), "",
             "| preset | sessions | A ops/s | B ops/s | B/A | A p50 ms | B p50 ms | A p99 ms | B p99 ms | "
             "A µs/op | B µs/op |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (p, n), by in runs.items():
        a, b = by["A"], by["B"]
        g = lambda rs, f: med([f(r) for r in rs])
        ao, bo = g(a, lambda r: r["ops_per_s"]), g(b, lambda r: r["ops_per_s"])
        lines.append("| %s | %d | %s | %s | **%.2f** | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f |" % (
            p, n, fmt(ao), fmt(bo), bo / ao if ao else float("nan"),
            g(a, lambda r: r["latency_us"]["p50"] / 1e3), g(b, lambda r: r["latency_us"]["p50"] / 1e3),
            g(a, lambda r: r["latency_us"]["p99"] / 1e3), g(b, lambda r: r["latency_us"]["p99"] / 1e3),
            g(a, lambda r: r["cpu_us_per_op"]["server"]), g(b, lambda r: r["cpu_us_per_op"]["server"])))
    lines.append("")
    lines.append(conditions([r for by in runs.values() for rs in by.values() for r in rs]))
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "rkab.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)


# ---- profile ----------------------------------------------------------------------

PERF_EVENTS = ["task-clock", "context-switches", "syscalls:sys_enter_fdatasync", "syscalls:sys_enter_fsync",
               "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_sendto", "syscalls:sys_enter_write",
               "syscalls:sys_enter_pwrite64", "syscalls:sys_enter_io_uring_enter"]


def perf_stat(pid, seconds, out_path):
    return subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(PERF_EVENTS), "-p", str(pid), "-o", out_path,
                             "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_perf_stat(path):
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or line.startswith("#"):
                continue
            try:
                counts[parts[2]] = float(parts[0])
            except ValueError:
                counts[parts[2]] = float("nan")  # <not counted>
    return counts


def cmd_profile(args, systems, bench, out_dir):
    """Per server, over --seconds of a closed-loop run: CPU (task-clock), context switches,
    fdatasync/fsync and send/write/io_uring_enter calls, each per completed request; with
    --record, a perf record -g of the RingKeeper servers too."""
    rows = []
    for ens in systems:
        leader = ens.leader()
        span = args.warmup + args.seconds + 2
        cmd = bench.command(ens, args.preset, args.sessions, args.warmup, span, ["--quiet"])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(args.warmup + 1 + 3)  # setup, then the warmup
        stats = {n.sid: perf_stat(n.pid, args.seconds, os.path.join(out_dir, "perf-stat-%s-n%d.txt" % (ens.short, n.sid)))
                 for n in ens.nodes}
        rec = None
        if args.record and ens.kind == "ringkeeper":
            rec = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", ens.pids, "-o",
                                    os.path.join(out_dir, "perf-%s.data" % ens.short), "--", "sleep",
                                    str(args.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in stats.values():
            p.wait()
        if rec:
            rec.wait()
        out, err = proc.communicate(timeout=span + 120)
        runs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        if len(runs) != 1:
            raise RuntimeError("bench failed: %s" % err[-2000:])
        r = runs[0]
        ops = r["ops_per_s"] * args.seconds
        print("%s %s %d sessions: %.0f ops/s (p99 %.2f ms)" % (ens.kind, args.preset, args.sessions, r["ops_per_s"],
                                                              r["latency_us"]["p99"] / 1e3), flush=True)
        for n in ens.nodes:
            c = read_perf_stat(os.path.join(out_dir, "perf-stat-%s-n%d.txt" % (ens.short, n.sid)))
            row = {"system": ens.kind, "server": "n%d" % n.sid, "role": "leader" if n is leader else "follower",
                   "ops_per_s": r["ops_per_s"]}
            row["cpu_us"] = c.get("task-clock", 0) * 1e3 / ops  # task-clock is in ms
            row["ctxsw"] = c.get("context-switches", 0) / ops
            row["syncs"] = (c.get("syscalls:sys_enter_fdatasync", 0) + c.get("syscalls:sys_enter_fsync", 0)) / ops
            row["sends"] = sum(c.get("syscalls:sys_enter_" + k, 0) for k in ("sendmsg", "sendto", "write")) / ops
            row["uring_enter"] = c.get("syscalls:sys_enter_io_uring_enter", 0) / ops
            row["ops_per_sync"] = 1 / row["syncs"] if row["syncs"] else float("nan")
            rows.append(row)
    lines = ["| system | server | role | ops/s | CPU µs/op | ctx switches/op | fsyncs/op | ops per fsync | "
             "send/write calls/op | io_uring_enter/op |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append("| %s | %s | %s | %s | %.1f | %.2f | %.4f | %.1f | %.2f | %.2f |" % (
            row["system"], row["server"], row["role"], fmt(row["ops_per_s"]), row["cpu_us"], row["ctxsw"],
            row["syncs"], row["ops_per_sync"], row["sends"], row["uring_enter"]))
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "profile.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "profile.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print("\n" + text)


def cmd_failover(args, systems, bench, out_dir):
    results = os.path.join(out_dir, "failover.jsonl")
    all_res = []
    for i in range(1, args.kills + 1):
        for ens in systems:
            res = one_failover(ens, bench, args, out_dir, i)
            all_res.append(res)
            with open(results, "a") as f:
                f.write(json.dumps(res) + "\n")
    lines = ["| system | kills | gap median ms | gap max ms | gaps ms | new leader seen median ms | "
             "restart gap max ms | steady gap max ms | reconnects | sessions expired |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind in ("zookeeper", "ringkeeper"):
        rs = [r for r in all_res if r["system"] == kind]
        if not rs:
            continue
        gaps = [r["gap_ms"] for r in rs]
        lines.append("| %s | %d | **%.0f** | %.0f | %s | %s | %d | %d | %d | %d |" % (
            kind, len(rs), med(gaps), max(gaps), " ".join(str(g) for g in gaps),
            fmt(med([r["elected_seen_ms"] for r in rs])), max(r["restart_gap_ms"] for r in rs),
            max(r["steady_gap_ms"] for r in rs), sum(r["reconnects"] for r in rs),
            sum(r["sessions_expired"] for r in rs)))
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "failover.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)
    print("raw results: %s" % results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--quick", action="store_true", help="1 round of 5 s runs, 10 s JVM warmup")
    c.add_argument("--rounds", type=int, default=2)
    c.add_argument("--presets", default="create,set,mixed,clickhouse")
    c.add_argument("--sessions", default="64,256")
    c.add_argument("--duration", type=float, default=15)
    c.add_argument("--warmup", type=float, default=5)
    c.add_argument("--jvm-warm", type=float, default=25)
    c.add_argument("--open-presets", default="set,mixed", help="'' for none")
    c.add_argument("--open-sessions", type=int, default=64)
    c.add_argument("--open-inflight", type=int, default=4)
    c.add_argument("--open-fraction", type=float, default=0.5,
                   help="open-loop rate = this x ZooKeeper's closed-loop median (unless --rate)")
    c.add_argument("--rate", type=float, default=0)
    f = sub.add_parser("failover")
    f.add_argument("--kills", type=int, default=5)
    f.add_argument("--rate", type=float, default=2000)
    f.add_argument("--sessions", type=int, default=64)
    f.add_argument("--inflight", type=int, default=4)
    f.add_argument("--preset", default="set")
    f.add_argument("--pre", type=float, default=3, help="seconds of load before each kill")
    f.add_argument("--post", type=float, default=3, help="seconds after the new leader before the restart")
    f.add_argument("--settle", type=float, default=2, help="seconds after the rejoin before the run ends")
    f.add_argument("--max-run", type=float, default=600)
    f.add_argument("--systems", default="zookeeper,ringkeeper", help="which clusters, in this order")
    pr = sub.add_parser("profile")
    pr.add_argument("--preset", default="set")
    pr.add_argument("--sessions", type=int, default=64)
    pr.add_argument("--warmup", type=float, default=3)
    pr.add_argument("--seconds", type=float, default=8)
    pr.add_argument("--record", action="store_true", help="perf record -g the RingKeeper servers")
    pr.add_argument("--systems", default="zookeeper,ringkeeper")
    pr.add_argument("--jvm-warm", type=float, default=20)
    ab = sub.add_parser("rkab")
    ab.add_argument("--a-config", default="", help="zoo.cfg lines for cluster A, comma separated")
    ab.add_argument("--b-config", default="", help="zoo.cfg lines for cluster B, comma separated")
    ab.add_argument("--a-bin", help="ringkeeper binary of cluster A (default: RINGKEEPER_BIN or the newest build)")
    ab.add_argument("--b-bin", help="ringkeeper binary of cluster B (default: the same as A's)")
    ab.add_argument("--rounds", type=int, default=2)
    ab.add_argument("--presets", default="set,mixed")
    ab.add_argument("--sessions", default="64,256")
    ab.add_argument("--duration", type=float, default=10)
    ab.add_argument("--warmup", type=float, default=3)
    u = sub.add_parser("up")
    u.add_argument("--systems", default="zookeeper,ringkeeper")
    for p in (c, f, pr, ab):
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--bench-args", default="", help="more ringkeeper-bench options for every run, "
                       "e.g. '--keys 1000'")
    for p in (c, f, pr, u):
        p.add_argument("--rk-config", default="", help="more zoo.cfg lines for RingKeeper, comma separated "
                       "(e.g. raft.electionTimeoutMs=300)")
    for p in (c, f, pr, ab, u):
        p.add_argument("--out", default="")
        p.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = ap.parse_args()
    if getattr(args, "quick", False):
        args.rounds, args.duration, args.warmup, args.jvm_warm = 1, 5, 2, 10

    rk_bin = os.environ.get("RINGKEEPER_BIN") or newest("build*/ringkeeper")
    bench_bin = os.environ.get("BENCH_BIN") or newest("build*/bench/ringkeeper-bench")
    wal_bench = os.environ.get("WAL_BENCH_BIN") or newest("build*/raft/wal-bench")
    if not rk_bin or not bench_bin:
        sys.exit("ensemble.py: build ringkeeper and ringkeeper-bench first (or set RINGKEEPER_BIN, BENCH_BIN)")
    tmp = os.environ.get("COMPARE_TMP", "/var/tmp")
    workdir = tempfile.mkdtemp(prefix="rk-ensemble.", dir=tmp)
    out_dir = args.out or os.path.join(workdir, "out")
    os.makedirs(out_dir, exist_ok=True)
    zk = Ensemble("zookeeper", os.path.join(workdir, "zk"))
    rk = Ensemble("ringkeeper", os.path.join(workdir, "rk"), binary=rk_bin,
                  extra_cfg=getattr(args, "rk_config", "").split(","))
    if args.cmd == "rkab":
        a_bin = args.a_bin or rk_bin
        rk = Ensemble("ringkeeper", os.path.join(workdir, "rk"), binary=a_bin, extra_cfg=args.a_config.split(","),
                      label="A")
        rk_b = Ensemble("ringkeeper", os.path.join(workdir, "rkb"), binary=args.b_bin or a_bin,
                        extra_cfg=args.b_config.split(","), label="B")

    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    wanted = getattr(args, "systems", "zookeeper,ringkeeper").split(",")
    systems = [{"zookeeper": zk, "ringkeeper": rk}[w] for w in wanted]
    if args.cmd == "rkab":
        systems = [rk, rk_b]
    try:
        print("machine: %d CPUs, load average %s; RingKeeper %s; bench %s; data under %s" % (
            os.cpu_count(), loadavg(), rk_bin, bench_bin, workdir), flush=True)
        for ens in systems:
            ens.start()
            print("%-26s %s (pids %s; leader n%d)%s" % (
                "ZooKeeper 3.8 ensemble:" if ens is zk else "RingKeeper cluster%s:" % (
                    "" if ens.label == ens.kind else " " + ens.label), ens.servers,
                ens.pids, ens.leader().sid, (" config " + " ".join(ens.extra_cfg)) if ens.extra_cfg else ""),
                flush=True)
        bench = Bench(bench_bin, getattr(args, "threads", 2), getattr(args, "bench_args", "").split())
        if args.cmd == "compare":
            cmd_compare(args, zk, rk, bench, out_dir, workdir, wal_bench)
        elif args.cmd == "failover":
            cmd_failover(args, systems, bench, out_dir)
        elif args.cmd == "rkab":
            cmd_rkab(args, rk, rk_b, bench, out_dir)
        elif args.cmd == "profile":
            if zk in systems and args.jvm_warm > 0:
                bench.run(zk, "mixed", 64, 0, args.jvm_warm)
            cmd_profile(args, systems, bench, out_dir)
        else:
            print("Ctrl-C stops both clusters", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for ens in systems:
            ens.stop()
        if not args.keep:
            for d in ("zk", "rk", "rkb", "probe"):
                shutil.rmtree(os.path.join(workdir, d), ignore_errors=True)
            inside = os.path.join(workdir, "out")
            if os.path.isdir(inside) and os.listdir(inside):
                print("results kept in %s (data dirs removed)" % inside)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
