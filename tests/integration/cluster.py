"""A RingKeeper cluster of real processes on 127.0.0.1 for the integration tests.

Each server gets its own data dir with `myid`, a zoo.cfg listing every server.N with
free peer ports, and its own client port (and, with metrics=True, ZooKeeper's
Prometheus provider on a metrics port of its own: node.metrics_port); `Cluster.start()` waits until every server
answers and one of them leads. Servers are stopped by pid (only our own children).
"""
import os
import signal
import socket
import subprocess
import time

import zkwire


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    def __init__(self, cluster, sid):
        self.cluster, self.sid = cluster, sid
        self.dir = os.path.join(cluster.workdir, "n%d" % sid)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        with open(os.path.join(self.data, "myid"), "w") as f:
            f.write("%d\n" % sid)
        self.client_port = free_port()
        self.peer_port = free_port()
        self.election_port = free_port()
        self.metrics_port = free_port()
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.client_port

    def write_cfg(self):
        path = os.path.join(self.dir, "zoo.cfg")
        with open(path, "w") as f:
            f.write("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=%s\n"
                    % (self.data, self.client_port, "yes" if self.cluster.force_sync else "no"))
            if self.cluster.metrics:
                f.write("metricsProvider.className=org.apache.zookeeper.metrics.prometheus."
                        "PrometheusMetricsProvider\nmetricsProvider.httpHost=127.0.0.1\n"
                        "metricsProvider.httpPort=%d\n" % self.metrics_port)
            for n in self.cluster.nodes:
                f.write("server.%d=127.0.0.1:%d:%d\n" % (n.sid, n.peer_port, n.election_port))
        return path

    def start(self):
        assert not self.alive()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.environ["RINGKEEPER_BIN"], "--config", self.write_cfg()],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(15)

    def four_letter(self, word, timeout=2.0):
        return zkwire.four_letter(self.client_port, word, timeout)

    def mode(self):
        try:
            for line in self.four_letter("srvr").splitlines():
                if line.startswith("Mode: "):
                    return line[6:]
        except OSError:
            pass
        return None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, workdir, size=3, force_sync=False, metrics=False):
        self.workdir = workdir
        self.force_sync = force_sync
        self.metrics = metrics
        self.nodes = []
        for sid in range(1, size + 1):
            self.nodes.append(Node(self, sid))

    @property
    def hosts(self):
        return ",".join(n.hosts for n in self.nodes)

    def start(self, timeout=20.0):
        for n in self.nodes:
            n.start()
        return self.wait_leader(timeout)

    def leader(self):
        for n in self.nodes:
            if n.alive() and n.mode() == "leader":
                return n
        return None

    def wait_leader(self, timeout=20.0, exclude=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lead = self.leader()
            if lead is not None and lead is not exclude:
                return lead
            time.sleep(0.02)
        raise AssertionError("no leader within %.0fs:\n%s" % (timeout, self.logs()))

    def logs(self):
        return "\n".join("--- n%d (alive %s)\n%s" % (n.sid, n.alive(), n.log_tail()) for n in self.nodes)

    def stop(self):
        for n in self.nodes:
            n.kill(signal.SIGTERM) if n.alive() else None
