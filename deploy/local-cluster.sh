#!/bin/sh
# Builds RingKeeper and starts a 3-server cluster on this machine for trying it out:
# client ports 2181, 2182, 2183; peer ports 2888-2890; data under ./ringkeeper-cluster/nN
# (kept between runs). Logs go to ./ringkeeper-cluster/nN.log. Ctrl-C stops all three.
#   deploy/local-cluster.sh
#   /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183
#   echo srvr | nc 127.0.0.1 2182          # Mode: leader or follower
set -eu
cd "$(dirname "$0")/.."
deploy/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Db_ndebug=false -Dtests=false >/dev/null
ninja -C build ringkeeper >/dev/null
base="$PWD/ringkeeper-cluster"
pids=""
# shellcheck disable=SC2086 # $pids is a list of numbers
stop() { [ -n "$pids" ] && kill $pids 2>/dev/null; wait; exit 0; }
trap stop INT TERM
for n in 1 2 3; do
	mkdir -p "$base/n$n"
	echo "$n" >"$base/n$n/myid"
	cat >"$base/n$n/zoo.cfg" <<CFG
tickTime=2000
dataDir=$base/n$n
clientPort=$((2180 + n))
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
server.1=127.0.0.1:2888:3888
server.2=127.0.0.1:2889:3889
server.3=127.0.0.1:2890:3890
CFG
	build/ringkeeper --config "$base/n$n/zoo.cfg" >>"$base/n$n.log" 2>&1 &
	pids="$pids $!"
done
sleep 1
for n in 1 2 3; do
	printf 'n%s (127.0.0.1:%s): ' "$n" "$((2180 + n))"
	(echo srvr | nc -q1 127.0.0.1 $((2180 + n)) 2>/dev/null || true) | grep Mode || echo "not answering yet (see $base/n$n.log)"
done
echo "cluster running; Ctrl-C stops it"
wait
