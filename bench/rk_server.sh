# rk_server.sh — sourced by bench/tree_rss.sh and bench/mass_delete_rss.sh: a RingKeeper
# server of their own on an empty data dir, and what they read from it.
#
#   rk_bench_bin NAME   $BENCH_BIN, or the newest build*/bench/ringkeeper-bench; NAME
#                       (the calling script) says it is missing and exits otherwise
#   rk_start BIN WORK   starts BIN on WORK/data, a random port, every four-letter word
#                       allowed, no connection limit; sets $pid and $port and waits
#                       (up to 10 s) until it answers ruok. Its log: WORK/server.log.
#   four WORD           the server's answer to a four-letter word
#   rk_cleanup          (the EXIT trap) stops $sampler and $pid if set, removes $work
#   rss_kb              its VmRSS in kB
#   znodes              its zk_znode_count (mntr)
# shellcheck shell=bash

rk_bench_bin() {
	local here b
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	# shellcheck disable=SC2012 # the newest of our own build dirs: plain names, ls -t is the tool
	b=${BENCH_BIN:-$(ls -t "$here"/build*/bench/ringkeeper-bench 2>/dev/null | head -1)}
	[ -x "$b" ] || { echo "$1: ringkeeper-bench not built (set BENCH_BIN)" >&2; exit 1; }
	echo "$b"
}

rk_start() {
	local bin=$1 work=$2
	port=$((20000 + RANDOM % 20000))
	mkdir -p "$work/data"
	"$bin" --dataDir="$work/data" --clientPort=$port --4lw.commands.whitelist='*' --maxClientCnxns=0 \
		>"$work/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do four ruok 2>/dev/null | grep -q imok && break; sleep 0.1; done
}
four() { exec 3<>/dev/tcp/127.0.0.1/"$port" && printf '%s' "$1" >&3 && cat <&3; exec 3<&-; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
znodes() { four mntr | awk '$1 == "zk_znode_count" {print $2}'; }
# set -e: a kill of a process already gone must not end the trap before the server's
rk_cleanup() {
	if [ -n "${sampler:-}" ]; then kill "$sampler" 2>/dev/null || true; fi
	if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	rm -rf "$work"
}
