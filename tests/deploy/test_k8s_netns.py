"""Three Kubernetes "pods" in network namespaces form a cluster through the entrypoint.

Each pod is a network namespace with its own address on a bridge (198.18.0.0/24, the
benchmarking range, inside namespaces this test makes) and its own UTS and mount
namespaces: host name ringkeeper-N as a StatefulSet names its pods, and a hosts file
bind-mounted on /etc/hosts standing in for the cluster DNS
(ringkeeper-N.ringkeeper-headless.default.svc.cluster.local). Every pod runs
deploy/container/entrypoint.sh as the StatefulSet does (RK_REPLICAS=3, the ConfigMap's
zoo.cfg), which turns the host name into myid and the server.N lines.

Pod 2 starts late and its name resolves only from then on, as in Kubernetes: pods 0
and 1 must start anyway, form a quorum, keep looking the name up, and take pod 2 in
when it appears. Then: one leader, two followers, every readiness probe passes, and a
write through one pod is read through another (kazoo, from a client namespace).

Skipped (with the reason) where network or mount namespaces cannot be made.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from deploy_util import REPO, need_tools, ringkeeper_bin

ENTRYPOINT = os.path.join(REPO, "deploy", "container", "entrypoint.sh")
PROBE = os.path.join(REPO, "deploy", "container", "probe.sh")
SUBNET = "198.18.0"
DOMAIN = "ringkeeper-headless.default.svc.cluster.local"


def pod_ip(i):
    return "%s.%d" % (SUBNET, 10 + i)


def ip(*args):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))


class Pods:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.prefix = "rkd%d" % os.getpid()
        self.namespaces = []
        self.procs = {}
        self.hosts = tmp_path / "hosts"
        self.resolv = tmp_path / "resolv.conf"
        self.bin = ringkeeper_bin()

    def ns(self, name):
        return "%s%s" % (self.prefix, name)

    def net_up(self):
        bridge = self.ns("br")
        ip("netns", "add", bridge)
        self.namespaces.append(bridge)
        ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", bridge, "link", "set", "br0", "up")
        for name, addr in [("p0", pod_ip(0)), ("p1", pod_ip(1)), ("p2", pod_ip(2)), ("c", SUBNET + ".100")]:
            ns = self.ns(name)
            ip("netns", "add", ns)
            self.namespaces.append(ns)
            ip("-n", bridge, "link", "add", "v" + name, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", bridge, "link", "set", "v" + name, "master", "br0", "up")
            ip("-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        # No DNS server in there: a name not in the hosts file fails at once.
        self.resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def publish(self, pods):
        """The cluster DNS: the names of these pods resolve (written in place, so
        every pod's bind mount sees it)."""
        lines = "127.0.0.1 localhost\n" + "".join(
            "%s ringkeeper-%d.%s ringkeeper-%d\n" % (pod_ip(i), i, DOMAIN, i) for i in pods)
        with open(self.hosts, "r+" if self.hosts.exists() else "w") as f:
            f.truncate(0)
            f.write(lines)

    def start(self, i):
        d = self.tmp / ("pod%d" % i)
        d.mkdir()
        (d / "zoo.cfg").write_text(
            "tickTime=2000\ndataDir=%s\nclientPort=2181\n4lw.commands.whitelist=*\nthreads=1\nforceSync=no\n"
            "raft.tickMs=50\nraft.heartbeatIntervalMs=100\nraft.electionTimeoutMs=500\n" % (d / "data"))
        env = {"PATH": os.environ["PATH"], "RK_REPLICAS": "3", "RK_PEER_SERVICE": "ringkeeper-headless",
               "POD_NAMESPACE": "default", "RK_CONFIG": str(d / "zoo.cfg"), "RK_RUN_DIR": str(d / "run"),
               "RINGKEEPER_BIN": self.bin}
        script = 'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && hostname "$2" && exec "$3"'
        log = open(d / "server.log", "wb")
        # ip netns exec, unshare, sh and the entrypoint all exec: the pid is the server's.
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns("p%d" % i), "unshare", "--mount", "--uts", "--propagation",
             "private", "sh", "-c", script, str(self.hosts), str(self.resolv), "ringkeeper-%d" % i, ENTRYPOINT],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def log(self, i):
        return (self.tmp / ("pod%d" % i) / "server.log").read_text(errors="replace")

    def in_pod(self, i, *cmd, env=None):
        return subprocess.run(["ip", "netns", "exec", self.ns("p%d" % i), *cmd], capture_output=True, text=True,
                              timeout=20, env=env)

    def mode(self, i):
        p = self.in_pod(i, "bash", "-c", 'exec 3<>/dev/tcp/127.0.0.1/2181 && printf srvr >&3 && cat <&3')
        for line in p.stdout.splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return None

    def probe(self, i, what):
        env = {"PATH": os.environ["PATH"], "RK_REPLICAS": "3"}
        return self.in_pod(i, "bash", PROBE, what, env=env).returncode

    def client(self, script):
        """Runs a kazoo script in the client namespace; returns its JSON output."""
        p = subprocess.run(["ip", "netns", "exec", self.ns("c"), "/usr/bin/python3", "-c", script],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def wait_modes(self, pods, want, timeout=20):
        deadline = time.time() + timeout
        while True:
            modes = sorted(str(self.mode(i)) for i in pods)
            if modes == want:
                return
            for i in pods:
                assert self.procs[i].poll() is None, "pod %d exited:\n%s" % (i, self.log(i))
            assert time.time() < deadline, "modes %s, want %s; logs:\n%s" % (
                modes, want, "\n".join(self.log(i)[-2000:] for i in pods))
            time.sleep(0.2)

    def wait_log(self, pods, text, timeout=10):
        deadline = time.time() + timeout
        while not all(text in self.log(i) for i in pods):
            assert time.time() < deadline, "no %r in the logs of pods %s:\n%s" % (
                text, pods, "\n".join(self.log(i)[-2000:] for i in pods))
            time.sleep(0.1)

    def stop(self):
        codes = {}
        for i, p in self.procs.items():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
            try:
                codes[i] = p.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                codes[i] = p.wait(5)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        return codes


@pytest.fixture
def pods(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    need_tools("ip", "unshare", "hostname", "bash")
    p = Pods(tmp_path)
    try:
        p.net_up()
    except RuntimeError as e:
        p.stop()
        pytest.skip("network namespaces are not allowed here: %s" % e)
    yield p
    p.stop()


KAZOO = """
import json
from kazoo.client import KazooClient
def client(host):
    zk = KazooClient(hosts=host + ":2181", timeout=10)
    zk.start(timeout=15)
    return zk
out = {}
%s
print(json.dumps(out))
"""


def test_three_pods_form_a_cluster_and_a_late_pod_is_found_when_its_name_appears(pods):
    pods.publish([0, 1])
    pods.start(0)
    pods.start(1)
    # Pod 2's name does not resolve: 0 and 1 start anyway and form a quorum of 2 of 3.
    pods.wait_modes([0, 1], ["follower", "leader"])
    assert pods.probe(0, "ready") == 0 and pods.probe(1, "ready") == 0
    # Servers 1 and 2 dial 3 (the lower id dials) and cannot find it.
    pods.wait_log([0, 1], "peer 3@ringkeeper-2.%s:2888: cannot resolve ringkeeper-2.%s" % (DOMAIN, DOMAIN))
    pods.client(KAZOO % ("zk = client('%s'); zk.create('/before', b'two of three'); zk.stop()" % pod_ip(0)))

    # Pod 2 appears: its name resolves from now on, and the others dial it.
    pods.publish([0, 1, 2])
    pods.start(2)
    pods.wait_modes([0, 1, 2], ["follower", "follower", "leader"])
    for i in range(3):
        assert pods.probe(i, "ready") == 0, pods.log(i)
        assert pods.probe(i, "live") == 0
    # Both lower ids dial pod 2; the one that does not lead may get there a little later.
    pods.wait_log([0, 1], "peer 3@ringkeeper-2.%s:2888 is at %s:2888" % (DOMAIN, pod_ip(2)))
    for i in range(3):
        assert (pods.tmp / ("pod%d" % i) / "data" / "myid").read_text() == "%d\n" % (i + 1)

    # A write through pod 1 is read through pod 2, and so is the one from before it came.
    out = pods.client(KAZOO % (
        "a = client('%s'); a.create('/k8s', b'through pod 1'); a.stop()\n"
        "b = client('%s'); b.sync('/'); out['k8s'] = b.get('/k8s')[0].decode()\n"
        "out['before'] = b.get('/before')[0].decode(); b.stop()" % (pod_ip(1), pod_ip(2))))
    assert out == {"k8s": "through pod 1", "before": "two of three"}

    codes = pods.stop()
    assert codes == {0: 0, 1: 0, 2: 0}, "\n".join(pods.log(i)[-1500:] for i in range(3))
