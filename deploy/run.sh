#!/bin/sh
# Builds RingKeeper and runs a single node in the foreground: clientPort 2181, data
# under ./ringkeeper-data. Extra arguments are passed on (e.g. --config zoo.cfg,
# --clientPort=2182, --4lw.commands.whitelist=*). Stop it with Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
deploy/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Db_ndebug=false -Dtests=false >/dev/null
ninja -C build ringkeeper >/dev/null
exec build/ringkeeper "$@"
