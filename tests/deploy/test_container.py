"""The container image (deploy/Containerfile), built and run with podman.

Builds the image with deploy/container/build-image.sh (a base image made here by
debootstrap, cached under build-container/; no registry), then:
  - under podman's default seccomp profile, which forbids io_uring, the server exits
    at once with status 1 and says why;
  - with the profile from deploy/container/seccomp-io_uring.sh, three containers on a
    podman network (198.19.x.0/24, made by the test) configured with ZooKeeper's image
    variables form a cluster: one leader, two followers, ready by the image's probe,
    running as uid 2181; kazoo writes through one and reads through another;
  - `podman stop` (SIGTERM to PID 1) stops the leader cleanly (exit 0, "stopped"), the
    two others go on writing, and started again on its volume it still has its myid
    and catches up.

Skipped, with the reason, where podman or debootstrap is missing or not root.
"""
import json
import os
import socket
import subprocess
import time

import pytest

from deploy_util import REPO, need_tools

IMAGE = "localhost/ringkeeper:test"
CONF = os.path.join(REPO, "deploy", "container", "containers.conf")
TAG = "rkt%d" % os.getpid()
SUBNET = "198.19.%d" % (os.getpid() % 250)


def podman(*args, check=True, timeout=120):
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", CONF))
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("podman %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return p


def four_letter(host, word, timeout=2.0):
    try:
        with socket.create_connection((host, 2181), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                b = s.recv(4096)
                if not b:
                    return b"".join(chunks).decode()
                chunks.append(b)
    except OSError:
        return ""


def mode(host):
    for line in four_letter(host, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[6:]
    return None


@pytest.fixture(scope="module")
def image():
    if os.geteuid() != 0:
        pytest.skip("the container tests run podman as root")
    need_tools("podman", "debootstrap")
    start = time.time()
    env = dict(os.environ, RK_IMAGE=IMAGE, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", CONF))
    p = subprocess.run([os.path.join(REPO, "deploy", "container", "build-image.sh")], capture_output=True,
                       text=True, env=env, timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr
    print("image built in %.0f s:\n%s" % (time.time() - start, p.stderr))
    return IMAGE


@pytest.fixture(scope="module")
def seccomp(tmp_path_factory):
    path = tmp_path_factory.mktemp("seccomp") / "ringkeeper-seccomp.json"
    with open(path, "w") as f:
        subprocess.run([os.path.join(REPO, "deploy", "container", "seccomp-io_uring.sh")], stdout=f, check=True)
    return str(path)


def test_io_uring_forbidden_by_seccomp_stops_the_server_at_once_with_the_reason(image):
    start = time.time()
    p = podman("run", "--rm", "--name", TAG + "-noring", image, check=False, timeout=60)
    took = time.time() - start
    assert p.returncode == 1, p.stdout + p.stderr
    assert "io_uring is not available (io_uring_setup: Function not implemented). RingKeeper needs it: " \
           "in a container, allow io_uring_setup, io_uring_enter and io_uring_register in the seccomp " \
           "profile" in p.stderr
    assert took < 20


@pytest.fixture
def cluster(image, seccomp):
    net = TAG + "-net"
    names = [TAG + "-rk%d" % i for i in (1, 2, 3)]
    ips = ["%s.%d" % (SUBNET, 10 + i) for i in (1, 2, 3)]
    podman("network", "create", "--subnet", SUBNET + ".0/24", net)
    servers = " ".join("server.%d=rk%d:2888:3888;2181" % (i, i) for i in (1, 2, 3))
    hosts = [a for i in (1, 2, 3) for a in ("--add-host", "rk%d:%s" % (i, ips[i - 1]))]
    runs = []
    for i in (1, 2, 3):
        args = ["run", "-d", "--name", names[i - 1], "--network", net, "--ip", ips[i - 1], *hosts,
                "--security-opt", "seccomp=" + seccomp, "-v", "%s-data%d:/data" % (TAG, i),
                "-e", "ZOO_MY_ID=%d" % i, "-e", "ZOO_SERVERS=" + servers,
                "-e", "ZOO_4LW_COMMANDS_WHITELIST=*", "-e", "ZOO_CFG_EXTRA=threads=1 raft.electionTimeoutMs=500",
                image]
        runs.append(args)
    try:
        for args in runs:
            podman(*args)
        yield names, ips, runs
    finally:
        for n in names:
            podman("rm", "-f", "-t", "2", n, check=False)
        podman("network", "rm", "-f", net, check=False)
        for i in (1, 2, 3):
            podman("volume", "rm", "-f", "%s-data%d" % (TAG, i), check=False)


def wait_modes(names, ips, want, timeout=30):
    deadline = time.time() + timeout
    while True:
        modes = sorted(str(mode(h)) for h in ips)
        if modes == want:
            return
        if time.time() > deadline:
            logs = "\n".join(podman("logs", n, check=False).stderr[-1500:] for n in names)
            raise AssertionError("modes %s, want %s; logs:\n%s" % (modes, want, logs))
        time.sleep(0.3)


def test_three_containers_form_a_cluster_and_stop_cleanly_on_sigterm(cluster):
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry

    names, ips, _ = cluster
    wait_modes(names, ips, ["follower", "follower", "leader"])
    for n in names:
        assert podman("exec", n, "ringkeeper-probe", "ready").returncode == 0
        assert podman("exec", n, "ringkeeper-probe", "live").returncode == 0
        assert podman("exec", n, "id", "-u").stdout.strip() == "2181"
        assert podman("top", n, "user", "pid", "args").stdout.split("\n")[1].split()[:3] == \
            ["ringkeeper", "1", "/usr/local/bin/ringkeeper"]

    # The leader is the one stopped: its SIGTERM, then the two others elect a leader.
    lead = next(i for i, h in enumerate(ips) if mode(h) == "leader")
    other = (lead + 1) % 3
    a = KazooClient(hosts=ips[lead] + ":2181", timeout=10)
    a.start(timeout=15)
    a.create("/container", b"through the leader")
    a.stop()
    b = KazooClient(hosts=ips[other] + ":2181", timeout=10)
    b.start(timeout=15)
    b.sync("/")
    assert b.get("/container")[0] == b"through the leader"

    # SIGTERM to PID 1 (podman stop): a clean stop, long before podman's SIGKILL.
    start = time.time()
    podman("stop", "-t", "20", names[lead])
    took = time.time() - start
    state = json.loads(podman("inspect", names[lead]).stdout)[0]["State"]
    assert state["ExitCode"] == 0
    assert took < 10
    assert podman("logs", names[lead]).stderr.rstrip().endswith("stopped")
    # The two others keep a quorum. b's connection drops while its server has no
    # leader (as a ZooKeeper follower's does): the write is retried across that.
    KazooRetry(max_tries=-1, delay=0.2, max_delay=1, deadline=30)(b.set, "/container", b"while the leader was down")
    b.stop()

    # Started again on its volume: same myid, and it catches up.
    podman("start", names[lead])
    assert podman("exec", names[lead], "cat", "/data/myid").stdout == "%d\n" % (lead + 1)
    wait_modes(names, ips, ["follower", "follower", "leader"])
    c = KazooClient(hosts=ips[lead] + ":2181", timeout=10)
    c.start(timeout=15)
    c.sync("/")
    assert c.get("/container")[0] == b"while the leader was down"
    c.stop()
