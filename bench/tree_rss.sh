#!/usr/bin/env bash
# tree_rss.sh — RSS per znode of a RingKeeper server filled with the create preset
# (100-byte values, 256 sessions, as bench/RESULTS.md's issue 13 sections use).
#
# Starts BIN on an empty data dir under $RSS_TMP (default /var/tmp), reads its RSS
# (VmRSS) and znode count (mntr) once it answers, runs ringkeeper-bench --preset create
# --no-cleanup until the count reaches NODES (the last stretch open loop, so it ends
# near the target: the hash buckets and the parent's children array double at 2^20
# nodes, and a fill that overshoots reads up to 8 B per znode more; 2 s closed-loop
# steps before that), waits 2 s and
# prints (RSS - RSS empty) / znodes and RSS / znodes.
#
# Usage: bench/tree_rss.sh BIN [NODES (default 1000000)]
# Env:   BENCH_BIN (default: newest build*/bench/ringkeeper-bench)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,13p' "$0"; exit 2; }
bin=$1 nodes=${2:-1000000}
# shellcheck source=bench/rk_server.sh
. "$here/bench/rk_server.sh"
bench_bin=$(rk_bench_bin tree_rss.sh)
work=$(mktemp -d "${RSS_TMP:-/var/tmp}/rk-rss-XXXXXX")
pid=
trap rk_cleanup EXIT

rk_start "$bin" "$work"
sleep 1
rss0=$(rss_kb) count0=$(znodes)
start=$(date +%s)
while :; do
	have=$(znodes)
	[ "$have" -lt "$nodes" ] || break
	left=$((nodes - have)) duration=2 rate=0
	# open loop for the last 400k: one second at `left` per second cannot overshoot
	[ $left -lt 400000 ] && { duration=1; rate=$((left < 1000 ? 1000 : left)); }
	"$bench_bin" --servers 127.0.0.1:$port --preset create --sessions 256 --no-cleanup --warmup 0 \
		--duration $duration --rate $rate --quiet --json >/dev/null 2>>"$work/bench.err"
done
sleep 2
rss1=$(rss_kb) count1=$(znodes)
echo "empty: RSS $rss0 kB, $count0 znodes; full: RSS $rss1 kB, $count1 znodes (fill $(($(date +%s) - start)) s)"
echo "(RSS - RSS empty) / znodes: $(((rss1 - rss0) * 1024 / (count1 - count0))) B;" \
	"RSS / znodes: $((rss1 * 1024 / count1)) B"
