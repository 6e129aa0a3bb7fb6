#!/bin/sh
# Run the RingKeeper integration suite (kazoo, C client, zkCli.sh, raw wire).
#   RK_TARGETS=zookeeper tests/integration/run.sh            # against ZooKeeper 3.8 only
#   RINGKEEPER_BIN=build/ringkeeper tests/integration/run.sh   # both targets (default)
#   RK_TARGETS=ringkeeper3,zookeeper3 ...                     # 3-server cluster / ensemble
#     (each test's clients on the leader or a follower; RK_CLUSTER_ROLE=leader|follower
#     puts them all on one role)
# Extra arguments go to pytest (e.g. -k wire, -x, -v).
# Exit status is pytest's; "no tests collected" (5) counts as a failure.
cd "$(dirname "$0")" || exit 2
export RK_TARGETS="${RK_TARGETS:-ringkeeper,zookeeper}"
export PYTHONDONTWRITEBYTECODE=1
case ",$RK_TARGETS," in
    *,ringkeeper,*) [ -n "$RINGKEEPER_BIN" ] || echo "run.sh: RINGKEEPER_BIN is unset: the ringkeeper target will be skipped" >&2 ;;
esac
/usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=8 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run.sh: no tests were collected/run" >&2
    exit 1
fi
exit "$rc"
