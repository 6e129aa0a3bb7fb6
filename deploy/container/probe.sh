#!/bin/bash
# ringkeeper-probe: health checks for containers and Kubernetes, through the client
# port's four-letter words (bash's /dev/tcp: no netcat needed in the image).
#   ringkeeper-probe live     ruok answers imok (the process serves its port)
#   ringkeeper-probe ready    srvr says Mode: leader or follower; standalone counts
#                             only when RK_REPLICAS is unset or 1
# The words must be in 4lw.commands.whitelist. Port: RK_CLIENT_PORT (default 2181).
# Exit 0 healthy, 1 not, 2 usage; the reason goes to stderr.
set -u
port=${RK_CLIENT_PORT:-2181}

ask() {
	local reply
	# The server answers and closes; timeout bounds a server that hangs.
	# shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
	reply=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf %s "$2" >&3 && cat <&3' _ "$port" "$1" 2>/dev/null) ||
		true
	printf '%s' "$reply"
}

case "${1:-}" in
live)
	reply=$(ask ruok)
	[ "$reply" = imok ] && exit 0
	echo "ringkeeper-probe: ruok on port $port answered '${reply:-nothing}'" >&2
	exit 1
	;;
ready)
	reply=$(ask srvr)
	mode=$(printf '%s\n' "$reply" | sed -n 's/^Mode: //p')
	case "$mode" in
	leader | follower) exit 0 ;;
	standalone)
		[ "${RK_REPLICAS:-1}" = 1 ] && exit 0
		echo "ringkeeper-probe: standalone, but RK_REPLICAS=$RK_REPLICAS" >&2
		exit 1
		;;
	esac
	echo "ringkeeper-probe: srvr on port $port answered no mode: '$(printf '%s' "$reply" | head -n 1)'" >&2
	exit 1
	;;
*)
	echo "usage: ringkeeper-probe live|ready" >&2
	exit 2
	;;
esac
