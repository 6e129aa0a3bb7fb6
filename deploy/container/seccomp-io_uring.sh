#!/bin/sh
# Writes a seccomp profile for the RingKeeper container: the container runtime's
# default profile plus io_uring_setup, io_uring_enter and io_uring_register, which
# recent defaults leave out (Docker >= 25, containerd >= 2.0, podman's
# containers-common). Nothing else is allowed beyond the default.
#   deploy/container/seccomp-io_uring.sh [DEFAULT_PROFILE] > ringkeeper-seccomp.json
#   podman run --security-opt seccomp=ringkeeper-seccomp.json ...
#   docker run --security-opt seccomp=ringkeeper-seccomp.json ...
#   Kubernetes: copy it to each node's <kubelet root>/seccomp/profiles/ and use
#   seccompProfile {type: Localhost, localhostProfile: profiles/ringkeeper-seccomp.json}
# DEFAULT_PROFILE: the runtime's own (default /usr/share/containers/seccomp.json, as
# podman and CRI-O ship it; for Docker or containerd take their default.json).
set -eu
in=${1:-/usr/share/containers/seccomp.json}
[ -r "$in" ] || {
	echo "seccomp-io_uring: cannot read $in" >&2
	exit 1
}
python3 - "$in" <<'PY'
import json, sys
profile = json.load(open(sys.argv[1]))
wanted = ["io_uring_setup", "io_uring_enter", "io_uring_register"]
for rule in profile.get("syscalls", []):
    if rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args") and not rule.get("includes") \
            and not rule.get("excludes"):
        rule["names"] = [n for n in rule["names"] if n not in wanted]
# Drop rules that deny them explicitly (an errno rule for the names) before adding ours.
for rule in profile.get("syscalls", []):
    if rule.get("action") != "SCMP_ACT_ALLOW":
        rule["names"] = [n for n in rule["names"] if n not in wanted]
profile["syscalls"] = [r for r in profile.get("syscalls", []) if r.get("names")]
profile["syscalls"].append({"names": wanted, "action": "SCMP_ACT_ALLOW"})
json.dump(profile, sys.stdout, indent=1)
sys.stdout.write("\n")
PY
