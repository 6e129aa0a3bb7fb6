#!/usr/bin/env bash
# compare.sh — RingKeeper vs Apache ZooKeeper 3.8 on this machine, in one run.
#
# Starts a standalone ZooKeeper (forceSync=yes, data on disk, 4lw *) and a RingKeeper
# (fsyncs every commit by design), each on a free loopback port with its own temp data
# dir; warms ZooKeeper's JVM with ~25 s of load; then for every preset x session count
# runs ringkeeper-bench against ZooKeeper and RingKeeper alternately (Z R Z R ...) for
# --rounds rounds and prints medians: ops/s, the ratio RingKeeper/ZooKeeper, p99 and
# server CPU us/op. Everything it starts is stopped by pid on exit; temp dirs removed.
# Before the first round and after the last it measures this disk's durability cost in
# the same directory (wal-bench probe: one 4 KiB O_DIRECT pwrite + fdatasync, 400
# times) and prints each one-session run's p50 as a multiple of it.
#
# Usage: bench/compare.sh [--quick] [--rounds N] [--presets a,b] [--sessions 64,256]
#                         [--duration S] [--warmup S] [--threads N] [--out DIR]
#        bench/compare.sh --cluster [ensemble.py compare options]   (also --nodes 3)
#          a 3-node RingKeeper cluster against a 3-node ZooKeeper ensemble: every
#          option after --cluster goes to bench/ensemble.py compare (see its --help);
#          bench/ensemble.py failover measures leader failover the same way.
# Env:   RINGKEEPER_BIN (default: newest build*/ringkeeper)
#        BENCH_BIN      (default: newest build*/bench/ringkeeper-bench)
#        WAL_BENCH_BIN  (default: newest build*/raft/wal-bench; no probe without it)
#        COMPARE_TMP    (default /var/tmp; must not be tmpfs: durability is measured)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --cluster ] || { [ "${1:-}" = --nodes ] && [ "${2:-}" = 3 ]; }; then
	if [ "$1" = --cluster ]; then shift; else shift 2; fi
	exec /usr/bin/python3 "$here/bench/ensemble.py" compare "$@"
fi
rounds=3
presets=create,mixed,clickhouse
sessions_list=64,256
duration=20
warmup=5
jvm_warm_s=25
threads=2
nodes=1
out_dir=""
quick=0

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--rounds) rounds=$2; shift ;;
	--presets) presets=$2; shift ;;
	--sessions) sessions_list=$2; shift ;;
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--threads) threads=$2; shift ;;
	--out) out_dir=$2; shift ;;
	--nodes) nodes=$2; shift ;;
	--cluster) echo "compare.sh: --cluster goes first (the rest goes to ensemble.py compare)" >&2; exit 2 ;;
	-h|--help) sed -n '2,23p' "$0"; exit 0 ;;
	*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	rounds=1; duration=5; warmup=2; jvm_warm_s=10
fi

newest() { # newest existing file among the globbed candidates, sanitizer builds left out
	local best="" f
	for f in "$@"; do
		[ -x "$f" ] || continue
		grep -q __asan_init "$f" && continue # build-asan/ (tests/run.sh): it measures ASan
		if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best=$f; fi
	done
	printf '%s' "$best"
}
bench_bin=${BENCH_BIN:-$(newest "$here"/build*/bench/ringkeeper-bench)}
rk_bin=${RINGKEEPER_BIN:-$(newest "$here"/build*/ringkeeper)}
wal_bench_bin=${WAL_BENCH_BIN:-$(newest "$here"/build*/raft/wal-bench)}
[ -x "$bench_bin" ] || { echo "compare.sh: ringkeeper-bench not built (set BENCH_BIN)" >&2; exit 1; }

tmp_base=${COMPARE_TMP:-/var/tmp}
if [ "$(stat -f -c %T "$tmp_base")" = tmpfs ]; then
	echo "compare.sh: $tmp_base is tmpfs; set COMPARE_TMP to a disk directory" >&2; exit 1
fi
work=$(mktemp -d "$tmp_base/rk-compare.XXXXXX")
[ -n "$out_dir" ] || out_dir=$work/out
mkdir -p "$out_dir"
results=$out_dir/results.jsonl
: > "$results"

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	# keep results if --out pointed outside the temp dir
	case "$out_dir" in "$work"/*) cp "$results" "$tmp_base/rk-compare-last.jsonl" 2>/dev/null || true ;; esac
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

four_letter() { # four_letter PORT WORD -> text (empty on failure)
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf '$2' >&3 && cat <&3" 2>/dev/null || true
}

wait_ruok() { # wait_ruok PORT SECONDS
	local _
	for _ in $(seq $(( $2 * 5 ))); do
		[ "$(four_letter "$1" ruok)" = imok ] && return 0
		sleep 0.2
	done
	return 1
}

if [ "$nodes" != 1 ]; then
	echo "compare.sh: --nodes takes 1, or 3 as the first option (= --cluster, bench/ensemble.py)" >&2
	exit 2
fi

# ---- ZooKeeper 3.8 -------------------------------------------------------------
zk_port=$(free_port)
mkdir -p "$work/zk/data" "$work/zk/conf"
cat > "$work/zk/conf/zoo.cfg" <<EOF
tickTime=2000
dataDir=$work/zk/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=yes
4lw.commands.whitelist=*
admin.enableServer=false
EOF
cat > "$work/zk/conf/log4j.properties" <<EOF
log4j.rootLogger=WARN, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d %p %c{1} %m%n
EOF
# zookeeper.jar's manifest names its dependencies; log4j + the slf4j binding for logs.
zk_cp="$work/zk/conf:/usr/share/java/zookeeper.jar:/usr/share/java/log4j-1.2.jar:/usr/share/java/slf4j-log4j12.jar"
java -Xms1g -Xmx2g -cp "$zk_cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zk/conf/zoo.cfg" \
	> "$work/zk/zk.log" 2>&1 &
zk_pid=$!
pids+=("$zk_pid")
if ! wait_ruok "$zk_port" 30; then
	echo "compare.sh: ZooKeeper did not answer ruok; log:" >&2; tail -20 "$work/zk/zk.log" >&2; exit 1
fi
echo "ZooKeeper 3.8 pid $zk_pid on 127.0.0.1:$zk_port, data $work/zk/data"

# ---- RingKeeper ----------------------------------------------------------------
rk_port=""
rk_pid=""
if [ -z "$rk_bin" ] || [ ! -x "$rk_bin" ]; then
	echo "RingKeeper: SKIPPED — no binary (set RINGKEEPER_BIN or build ringkeeper)"
else
	rk_port=$(free_port)
	mkdir -p "$work/rk/data"
	# maxClientCnxns=0 and forceSync=yes as for ZooKeeper (every bench session comes from 127.0.0.1).
	"$rk_bin" --clientPort="$rk_port" --dataDir="$work/rk/data" --4lw.commands.whitelist='*' --maxClientCnxns=0 --forceSync=yes \
		> "$work/rk/rk.log" 2>&1 &
	rk_pid=$!
	pids+=("$rk_pid")
	if ! wait_ruok "$rk_port" 15; then
		echo "RingKeeper: SKIPPED — $rk_bin did not answer ruok on $rk_port; log tail:"
		tail -5 "$work/rk/rk.log" | sed 's/^/  /'
		kill "$rk_pid" 2>/dev/null || true
		rk_port=""
	else
		echo "RingKeeper pid $rk_pid on 127.0.0.1:$rk_port ($rk_bin), data $work/rk/data"
	fi
fi

run_bench() { # run_bench SERVER_NAME PORT PID PRESET SESSIONS WARMUP DURATION [record]
	local line
	if ! line=$("$bench_bin" --servers "127.0.0.1:$2" --server-pid "$3" --preset "$4" --sessions "$5" \
		--threads "$threads" --warmup "$6" --duration "$7" --json --quiet 2> "$work/bench.err"); then
		echo "  $1 $4 $5: ringkeeper-bench failed:" >&2; tail -5 "$work/bench.err" >&2
		return 0
	fi
	if [ "${8:-}" = record ]; then
		printf '{"server":"%s","round":%s,"result":%s}\n' "$1" "$round" "$line" >> "$results"
		python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-10s %-10s %5d sessions: %9.0f ops/s  p99 %7.2f ms  errors %d  server %6.1f us/op" % (sys.argv[2], r["preset"], r["sessions"], r["ops_per_s"], r["latency_us"]["p99"]/1e3, r["errors"], r["cpu_us_per_op"]["server"]))' "$line" "$1"
	fi
}

echo "Warming ZooKeeper's JVM for ${jvm_warm_s}s (mixed, 64 sessions; not recorded)"
round=0
run_bench zookeeper "$zk_port" "$zk_pid" mixed 64 0 "$jvm_warm_s"

probe_disk() { # probe_disk LABEL -> appends "LABEL p50 p99" to $work/probe.txt
	[ -x "$wal_bench_bin" ] || return 0
	local line
	line=$("$wal_bench_bin" "$work/probe" probe 2>/dev/null | grep '^fdatasync_probe') || return 0
	local p50 p99
	p50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<< "$line")
	p99=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<< "$line")
	echo "$1 $p50 $p99" >> "$work/probe.txt"
	echo "Disk ($1): one 4 KiB O_DIRECT pwrite + fdatasync: p50 $p50 us, p99 $p99 us"
}
: > "$work/probe.txt"
probe_disk before

IFS=, read -r -a preset_arr <<< "$presets"
IFS=, read -r -a sessions_arr <<< "$sessions_list"
for round in $(seq "$rounds"); do
	echo "Round $round/$rounds"
	for preset in "${preset_arr[@]}"; do
		for s in "${sessions_arr[@]}"; do
			run_bench zookeeper "$zk_port" "$zk_pid" "$preset" "$s" "$warmup" "$duration" record
			if [ -n "$rk_port" ]; then
				run_bench ringkeeper "$rk_port" "$rk_pid" "$preset" "$s" "$warmup" "$duration" record
			fi
		done
	done
done

probe_disk after

python3 - "$results" "$work/probe.txt" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rec = json.loads(line)
    r = rec["result"]
    rows.setdefault((r["preset"], r["sessions"]), {}).setdefault(rec["server"], []).append(r)
def med(runs, f):
    v = [f(r) for r in runs]
    return statistics.median(v) if v else float("nan")
print()
print("%-10s %8s %12s %12s %7s %9s %9s %10s %10s %7s" % ("preset", "sessions", "zk ops/s", "rk ops/s", "rk/zk",
      "zk p99ms", "rk p99ms", "zk us/op", "rk us/op", "errors"))
for (preset, sessions), by in sorted(rows.items()):
    zk, rk = by.get("zookeeper", []), by.get("ringkeeper", [])
    zo, ro = med(zk, lambda r: r["ops_per_s"]), med(rk, lambda r: r["ops_per_s"])
    ratio = ro / zo if zk and rk and zo > 0 else float("nan")
    errs = sum(r["errors"] for r in zk + rk)
    fmt = lambda x, p: ("%.*f" % (p, x)) if x == x else "-"
    print("%-10s %8d %12s %12s %7s %9s %9s %10s %10s %7d" % (preset, sessions, fmt(zo, 0), fmt(ro, 0), fmt(ratio, 2),
          fmt(med(zk, lambda r: r["latency_us"]["p99"] / 1e3), 2), fmt(med(rk, lambda r: r["latency_us"]["p99"] / 1e3), 2),
          fmt(med(zk, lambda r: r["cpu_us_per_op"]["server"]), 1), fmt(med(rk, lambda r: r["cpu_us_per_op"]["server"]), 1),
          errs))
print("\n(medians over rounds; us/op = server process CPU per completed request in the timed window)")
cpu = [(p, s, med(by["ringkeeper"], lambda r: r["cpu_us_per_op"]["server"]) /
        med(by["zookeeper"], lambda r: r["cpu_us_per_op"]["server"]))
       for (p, s), by in sorted(rows.items()) if by.get("ringkeeper") and by.get("zookeeper")]
if cpu:
    print("server CPU per op, rk/zk: " + ", ".join("%s@%d %.2f" % c for c in cpu))
probes = [l.split() for l in open(sys.argv[2]) if l.strip()]
if probes:
    p50 = statistics.mean(float(p[1]) for p in probes)
    print("disk: one 4 KiB O_DIRECT pwrite + fdatasync p50 %s us (mean %.1f)" %
          (" / ".join("%s %s" % (p[0], p[1]) for p in probes), p50))
    for (preset, sessions), by in sorted(rows.items()):
        if sessions != 1:
            continue
        for server in ("zookeeper", "ringkeeper"):
            if by.get(server):
                l50 = med(by[server], lambda r: r["latency_us"]["p50"])
                print("one session, %-10s %-10s p50 %6.1f us = %.2fx one fdatasync" % (preset, server, l50, l50 / p50))
EOF
echo "raw results: $results"
