#!/bin/sh
# ringkeeper-entrypoint: the container image's entrypoint (also used by the Kubernetes
# StatefulSet in deploy/k8s/). It writes the server's zoo.cfg and dataDir/myid, then
# replaces itself with ringkeeper (exec: ringkeeper is PID 1 and gets SIGTERM itself).
#
# The configuration, in this order:
#   1. The base: a mounted $RK_CONFIG (default /conf/zoo.cfg) as it is, or else one made
#      from the environment variables of ZooKeeper's official image: ZOO_TICK_TIME,
#      ZOO_INIT_LIMIT, ZOO_SYNC_LIMIT, ZOO_DATA_DIR (default /data), ZOO_DATA_LOG_DIR,
#      ZOO_CLIENT_PORT, ZOO_MAX_CLIENT_CNXNS, ZOO_4LW_COMMANDS_WHITELIST, and
#      ZOO_CFG_EXTRA ("key=value key=value ...", any key ringkeeper --help lists).
#      A 4lw.commands.whitelist without ruok (or none: the server's default is srvr)
#      gets ruok added, in a line of its own after the base: the probes ask it.
#   2. The servers, unless the base has server.N lines of its own:
#      - Kubernetes (RK_REPLICAS set): this pod's ordinal N comes from its host name
#        (<name>-N, as a StatefulSet names its pods; checked even when the base has
#        server.N lines) and the servers are
#        server.<i+1>=<name>-<i>.<RK_PEER_SERVICE>.<POD_NAMESPACE>.svc.<RK_CLUSTER_DOMAIN>
#        :<RK_PEER_PORT>:<RK_ELECTION_PORT>;<clientPort> for i in 0..RK_REPLICAS-1
#        (none when RK_REPLICAS is 1: a standalone server);
#      - else ZOO_SERVERS, as ZooKeeper's image takes it:
#        "server.1=host1:2888:3888;2181 server.2=host2:2888:3888;2181 ...".
#   3. myid: ZOO_MY_ID, or in Kubernetes the ordinal + 1, or the one already in
#      dataDir/myid. A dataDir/myid that says otherwise stops the start (a volume that
#      belongs to another server).
# Arguments are passed on to ringkeeper (--key=value overrides the file).
#
# Environment for tests: RK_ENTRYPOINT_DRY_RUN=1 writes the files, prints their paths
# and exits; RINGKEEPER_BIN (default /usr/local/bin/ringkeeper); RK_HOSTNAME (default
# the kernel's host name); RK_RUN_DIR (default /tmp/ringkeeper) holds the zoo.cfg.
set -eu

die() {
	echo "ringkeeper-entrypoint: $*" >&2
	exit 2
}

is_number() {
	case "$1" in
	'' | *[!0-9]*) return 1 ;;
	*) return 0 ;;
	esac
}

bin=${RINGKEEPER_BIN:-/usr/local/bin/ringkeeper}
conf_in=${RK_CONFIG:-/conf/zoo.cfg}
run_dir=${RK_RUN_DIR:-/tmp/ringkeeper}
cfg=$run_dir/zoo.cfg
mkdir -p "$run_dir"

# 1. the base
if [ -f "$conf_in" ]; then
	cp "$conf_in" "$cfg.tmp"
else
	{
		echo "tickTime=${ZOO_TICK_TIME:-2000}"
		echo "initLimit=${ZOO_INIT_LIMIT:-10}"
		echo "syncLimit=${ZOO_SYNC_LIMIT:-5}"
		echo "dataDir=${ZOO_DATA_DIR:-/data}"
		[ -z "${ZOO_DATA_LOG_DIR:-}" ] || echo "dataLogDir=$ZOO_DATA_LOG_DIR"
		echo "clientPort=${ZOO_CLIENT_PORT:-2181}"
		echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}"
		echo "4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST:-srvr,ruok,mntr,conf}"
		for kv in ${ZOO_CFG_EXTRA:-}; do
			echo "$kv"
		done
	} >"$cfg.tmp"
fi
# The last value of a key wins, as in ringkeeper's own reading of the file.
cfg_get() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$cfg.tmp" | tail -n 1; }
data_dir=$(cfg_get dataDir)
[ -n "$data_dir" ] || data_dir=./ringkeeper-data
client_port=$(cfg_get clientPort)
[ -n "$client_port" ] || client_port=2181
# The probes (ringkeeper-probe) ask ruok and srvr; srvr is always allowed, ruok must be
# in the whitelist or the liveness probe fails and the pod restarts for ever.
words=$(cfg_get '4lw\.commands\.whitelist' | tr -d '[:space:]')
case ",$words," in
*,\*,* | *,ruok,*) ;;
*)
	echo "4lw.commands.whitelist=${words:+$words,}ruok" >>"$cfg.tmp"
	echo "ringkeeper-entrypoint: added ruok to 4lw.commands.whitelist (the liveness probe asks it)" >&2
	;;
esac

# 2. the servers (and in Kubernetes the ordinal, for myid)
myid=${ZOO_MY_ID:-}
own_servers=no
grep -Eq '^[[:space:]]*server\.[0-9]+[[:space:]]*=' "$cfg.tmp" && own_servers=yes
if [ -n "${RK_REPLICAS:-}" ]; then
	if ! is_number "$RK_REPLICAS" || [ "$RK_REPLICAS" -lt 1 ] || [ "$RK_REPLICAS" -gt 16 ]; then
		die "RK_REPLICAS=$RK_REPLICAS: a number of servers from 1 to 16"
	fi
	host=${RK_HOSTNAME:-$(cat /proc/sys/kernel/hostname)}
	name=${host%-*}
	ordinal=${host##*-}
	if [ "$name" = "$host" ] || ! is_number "$ordinal"; then
		die "host name $host is not <name>-<ordinal>, as a StatefulSet names its pods"
	fi
	[ "$ordinal" -lt "$RK_REPLICAS" ] ||
		die "this pod's ordinal $ordinal is not below RK_REPLICAS=$RK_REPLICAS (scaled down?)"
	[ -n "$myid" ] || myid=$((ordinal + 1))
	if [ "$own_servers" = no ] && [ "$RK_REPLICAS" -gt 1 ]; then
		[ -n "${RK_PEER_SERVICE:-}" ] || die "RK_PEER_SERVICE (the headless Service's name) is not set"
		domain=${POD_NAMESPACE:-default}.svc.${RK_CLUSTER_DOMAIN:-cluster.local}
		i=0
		while [ "$i" -lt "$RK_REPLICAS" ]; do
			echo "server.$((i + 1))=$name-$i.$RK_PEER_SERVICE.$domain:${RK_PEER_PORT:-2888}:${RK_ELECTION_PORT:-3888};$client_port"
			i=$((i + 1))
		done >>"$cfg.tmp"
	fi
elif [ "$own_servers" = no ] && [ -n "${ZOO_SERVERS:-}" ]; then
	for server in $ZOO_SERVERS; do
		case "$server" in
		server.[0-9]*=*) echo "$server" ;;
		*) die "ZOO_SERVERS: \"$server\" is not server.N=host:peerPort:electionPort[;clientPort]" ;;
		esac
	done >>"$cfg.tmp"
fi

# 3. myid
if [ -n "$myid" ]; then
	if ! is_number "$myid" || [ "$myid" -lt 1 ] || [ "$myid" -gt 255 ]; then
		die "myid $myid: a number from 1 to 255"
	fi
	mkdir -p "$data_dir"
	if [ -f "$data_dir/myid" ]; then
		had=$(tr -d '[:space:]' <"$data_dir/myid")
		[ "$had" = "$myid" ] ||
			die "$data_dir/myid says $had but this server is $myid: the volume belongs to another server"
	else
		echo "$myid" >"$data_dir/myid"
	fi
fi
mv "$cfg.tmp" "$cfg"

if [ -n "${RK_ENTRYPOINT_DRY_RUN:-}" ]; then
	echo "config $cfg"
	[ -z "$myid" ] || echo "myid $data_dir/myid"
	exit 0
fi
exec "$bin" --config "$cfg" "$@"
