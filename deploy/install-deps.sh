#!/bin/sh
# Installs the Debian 12 packages RingKeeper needs to build, test and benchmark,
# only those missing (so a second run is quick and needs no network).
#   deploy/install-deps.sh          build + run
#   deploy/install-deps.sh --test   also the test and benchmark tools
set -eu
pkgs="gcc meson ninja-build pkg-config cmake liburing-dev libmimalloc-dev liblz4-dev libssl-dev libcriterion-dev zlib1g-dev libsnappy-dev"
if [ "${1:-}" = "--test" ]; then
	pkgs="$pkgs clang python3-kazoo python3-pytest libzookeeper-mt-dev zookeeper procps netcat-openbsd prometheus"
	# kazoo's own test suite (tests/clients/kazoo) imports these
	pkgs="$pkgs python3-mock python3-objgraph"
	# Apache Curator's recipes against every target (tests/integration/test_curator.py)
	pkgs="$pkgs libcurator-recipes-java openjdk-17-jdk-headless"
	# tests/deploy: lint, the container image (podman with runc, a debootstrap base,
	# iptables for its networks), network namespaces, the systemd unit's seccomp filter
	pkgs="$pkgs shellcheck yamllint podman runc debootstrap iptables iproute2 python3-seccomp"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086 # $SUDO is empty or one word; $missing is a list of names
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
