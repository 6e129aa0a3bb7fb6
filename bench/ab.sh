#!/usr/bin/env bash
# ab.sh — two RingKeeper builds side by side on this machine, in one run (A B A B ...).
#
# For each preset x session count, runs ringkeeper-bench against build A and build B
# alternately for --rounds rounds, each on a fresh data dir under $AB_TMP (default
# /var/tmp: on disk, since durability is what is measured), and prints the medians
# (ops/s, p99 µs, server CPU µs per op) and B/A. Use it to show that a change does not
# slow the server (the machine is shared and noisy: compare ratios, not absolutes).
#
# Usage: bench/ab.sh A_BIN B_BIN [--presets create,set] [--sessions 1,64,256]
#                    [--rounds 3] [--duration 10] [--warmup 3]
# Env:   BENCH_BIN (default: newest build*/bench/ringkeeper-bench that is not a sanitizer build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
a_bin=$1 b_bin=$2
shift 2
presets=create,set sessions=1,64,256 rounds=3 duration=10 warmup=3
while [ $# -gt 0 ]; do
	case $1 in
	--presets) presets=$2; shift 2 ;;
	--sessions) sessions=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	*) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
# the newest of our own build dirs, sanitizer builds (build-asan/, made by tests/run.sh) left out
bench_bin=${BENCH_BIN:-}
if [ -z "$bench_bin" ]; then
	for f in "$here"/build*/bench/ringkeeper-bench; do
		[ -x "$f" ] || continue
		grep -q __asan_init "$f" && continue
		if [ -z "$bench_bin" ] || [ "$f" -nt "$bench_bin" ]; then bench_bin=$f; fi
	done
fi
[ -x "$bench_bin" ] || { echo "ab.sh: ringkeeper-bench not built (set BENCH_BIN)" >&2; exit 1; }
work=$(mktemp -d "${AB_TMP:-/var/tmp}/rk-ab-XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
one_run() { # one_run BIN PRESET SESSIONS -> "ops p99 cpu"
	rm -rf "$work/data" && mkdir -p "$work/data"
	"$1" --clientPort=$port --dataDir="$work/data" --maxClientCnxns=0 >"$work/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
	local line
	line=$("$bench_bin" --servers 127.0.0.1:$port --server-pid $pid --preset "$2" --sessions "$3" \
		--warmup "$warmup" --duration "$duration" --json --quiet 2>>"$work/bench.err") || true
	kill "$pid"; wait "$pid" 2>/dev/null || true
	pid=
	/usr/bin/python3 -c 'import json,sys
try:
    d = json.loads(sys.argv[1]); print(d["ops_per_s"], d["latency_us"]["p99"], d["cpu_us_per_op"]["server"], d["errors"])
except Exception:
    print("0 0 0 -1")' "$line"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

printf '%-8s %8s | %10s %10s %6s | %9s %9s | %8s %8s\n' preset sessions A_ops/s B_ops/s B/A A_p99us B_p99us A_cpu B_cpu
for preset in ${presets//,/ }; do
	for s in ${sessions//,/ }; do
		: >"$work/a" && : >"$work/b"
		for _ in $(seq "$rounds"); do
			one_run "$a_bin" "$preset" "$s" >>"$work/a"
			one_run "$b_bin" "$preset" "$s" >>"$work/b"
		done
		ao=$(cut -d' ' -f1 "$work/a" | median) bo=$(cut -d' ' -f1 "$work/b" | median)
		ap=$(cut -d' ' -f2 "$work/a" | median) bp=$(cut -d' ' -f2 "$work/b" | median)
		ac=$(cut -d' ' -f3 "$work/a" | median) bc=$(cut -d' ' -f3 "$work/b" | median)
		printf '%-8s %8s | %10.0f %10.0f %6.3f | %9.0f %9.0f | %8.2f %8.2f\n' "$preset" "$s" "$ao" "$bo" \
			"$(awk -v a="$ao" -v b="$bo" 'BEGIN {print (a > 0 ? b / a : 0)}')" "$ap" "$bp" "$ac" "$bc"
		echo "  rounds A: $(cut -d' ' -f1 "$work/a" | tr '\n' ' ')| B: $(cut -d' ' -f1 "$work/b" | tr '\n' ' ')"
	done
done
