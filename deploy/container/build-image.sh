#!/bin/sh
# Builds the RingKeeper container image with podman, from a Debian 12 base image made
# here (no registry is needed):
#   1. the base image localhost/ringkeeper-base:bookworm, unless podman has it: a
#      `debootstrap --variant=minbase bookworm` tree, packed as a tarball that is kept
#      in the cache directory (so a later run, or CI on the same machine, imports the
#      tarball instead of bootstrapping again), then `podman import`;
#   2. deploy/Containerfile (a build stage with the build packages, a runtime stage
#      with only the runtime libraries) as ringkeeper:latest (or $RK_IMAGE).
#
#   deploy/container/build-image.sh            as root: needs podman and debootstrap
#
# Environment:
#   RK_IMAGE          the image's name (default localhost/ringkeeper:latest)
#   RK_IMAGE_CACHE    where the base tarball is kept (default ./build-container)
#   RK_DEBIAN_MIRROR  the Debian mirror for debootstrap (default: debootstrap's own)
#   CONTAINERS_CONF   podman's settings (default: deploy/container/containers.conf)
# Prints the seconds each step took.
set -eu
cd "$(dirname "$0")/../.."
repo=$PWD
image=${RK_IMAGE:-localhost/ringkeeper:latest}
base=localhost/ringkeeper-base:bookworm
cache=${RK_IMAGE_CACHE:-$repo/build-container}
CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/deploy/container/containers.conf}
export CONTAINERS_CONF

for tool in podman debootstrap; do
	command -v "$tool" >/dev/null || {
		echo "build-image: $tool is missing (apt-get install podman debootstrap)" >&2
		exit 1
	}
done

now() { date +%s; }

if ! podman image exists "$base"; then
	mkdir -p "$cache"
	tarball=$cache/bookworm-minbase.tar.gz
	if [ ! -s "$tarball" ]; then
		t0=$(now)
		root=$(mktemp -d "$cache/rootfs.XXXXXX")
		trap 'rm -rf "$root"' EXIT
		echo "build-image: debootstrap bookworm (minbase) into $root" >&2
		# shellcheck disable=SC2086 # the mirror is one word or none
		debootstrap --variant=minbase bookworm "$root" ${RK_DEBIAN_MIRROR:-} >"$cache/debootstrap.log" 2>&1 || {
			tail -n 20 "$cache/debootstrap.log" >&2
			exit 1
		}
		# A smaller image: no apt lists or package cache, no documentation.
		rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
			"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
		tar -C "$root" --numeric-owner -czf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$root"
		trap - EXIT
		echo "build-image: base tarball $tarball made in $(($(now) - t0)) s" >&2
	fi
	t0=$(now)
	podman import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$base" >/dev/null
	echo "build-image: base image $base imported in $(($(now) - t0)) s" >&2
fi

t0=$(now)
podman build --quiet --pull=never --layers --build-arg "BASE=$base" -f deploy/Containerfile -t "$image" . >/dev/null
echo "build-image: $image built in $(($(now) - t0)) s" >&2
