#!/usr/bin/env bash
# mass_delete_rss.sh — what a RingKeeper server keeps after a mass delete: starts BIN
# on an empty data dir under $RSS_TMP (default /var/tmp), runs ringkeeper-bench
# --preset create (100-byte values, 64 sessions) for SECONDS, which then deletes every
# znode it made, waits 4 s (the quiet second that hands memory back, core/mem.h) and
# prints the RSS empty, at its peak (sampled every 0.2 s) and after, and the znodes.
#
# Usage: bench/mass_delete_rss.sh BIN [SECONDS (default 20)]
# Env:   BENCH_BIN (default: newest build*/bench/ringkeeper-bench)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,9p' "$0"; exit 2; }
bin=$1 seconds=${2:-20}
# shellcheck source=bench/rk_server.sh
. "$here/bench/rk_server.sh"
bench_bin=$(rk_bench_bin mass_delete_rss.sh)
work=$(mktemp -d "${RSS_TMP:-/var/tmp}/rk-mdel-XXXXXX")
pid=''
sampler=''
trap rk_cleanup EXIT

rk_start "$bin" "$work"
sleep 1
rss0=$(rss_kb)
(while kill -0 "$pid" 2>/dev/null; do
	printf '%s %s\n' "$(rss_kb)" "$(znodes)"
	sleep 0.2
done) >"$work/samples" 2>/dev/null &
sampler=$!
"$bench_bin" --servers 127.0.0.1:$port --root /mass-delete --preset create --sessions 64 --warmup 0 \
	--duration "$seconds" --quiet --json >/dev/null 2>>"$work/bench.err"
sleep 4
rss1=$(rss_kb) left=$(znodes)
kill "$sampler" 2>/dev/null || true
peak_rss=$(awk '$1 > m {m = $1} END {print m + 0}' "$work/samples")
peak_nodes=$(awk '$2 > m {m = $2} END {print m + 0}' "$work/samples")
echo "empty: RSS $rss0 kB; peak: RSS $peak_rss kB, $peak_nodes znodes; after the deletes: RSS $rss1 kB," \
	"$left znodes; kept over empty: $(((rss1 - rss0) / 1024)) MB"
