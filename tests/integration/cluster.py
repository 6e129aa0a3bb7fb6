"""Clusters of real server processes for the integration tests: RingKeeper, or Apache
ZooKeeper 3.8 (QuorumPeerMain) as the reference.

Each server gets its own data dir with `myid`, a zoo.cfg listing every server.N with
free peer and election ports, and its own client port. `Cluster.start()` waits until
one server leads (and, with `serving=True`, until every server opens a session).
Servers are stopped by pid (only our own children). A server may live in a network
namespace (`netns`), bound to its own address there (`host`): the zoo.cfg then says
`server.N=host:peer:election;host:clientPort` and `clientPortAddress=host`, and the process
is started through `ip netns exec`.

`Member` is one server of a cluster seen as the suite's single `server` fixture sees a
standalone server (conftest.py): its port and four-letter words are the node's, and
alive()/start()/stop() are the whole cluster's.
With metrics=True each server also serves ZooKeeper's Prometheus provider on a metrics
port of its own (node.metrics_port).
"""
import os
import signal
import socket
import subprocess
import time
import zlib

import zkwire

ZK_CLASSPATH = ":".join([
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",        # its manifest Class-Path pulls in the rest
    "/usr/share/java/slf4j-simple.jar",      # logs to stderr instead of the NOP logger
])
JAVA = os.environ.get("JAVA", "/usr/bin/java")


from ports import free_port  # noqa: E402  (below the ephemeral range: see ports.py)


def session_ok(port, host="127.0.0.1"):
    """A real session handshake succeeds (a ZooKeeper server answers ruok long before it
    serves; a follower's createSession needs a leader)."""
    try:
        with zkwire.RawConn(port, host=host, timeout=2.0) as c:
            r = c.handshake(timeout_ms=4000, read_only=False)
            if r["sessionId"] == 0:
                return False
            c.send_request(zkwire.OP_CLOSE)
            c.recv_frame()
            return True
    except (OSError, zkwire.Closed, ValueError, AssertionError):
        return False


class Node:
    def __init__(self, cluster, sid, host="127.0.0.1", netns=None):
        self.cluster, self.sid = cluster, sid
        self.target = cluster.impl           # "ringkeeper" or "zookeeper"
        self.kind = cluster.kind             # e.g. "ringkeeper3"
        self.host, self.netns = host, netns
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
        self.paused = False

    # -- the interface of conftest.Server -----------------------------------------
    @property
    def port(self):
        return self.client_port

    @property
    def hosts(self):
        return "%s:%d" % (self.host, self.client_port)

    @property
    def stderr_path(self):
        return self.log_path

    @property
    def data_dir(self):
        return self.data

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- configuration --------------------------------------------------------------
    def write_cfg(self):
        cl = self.cluster
        path = os.path.join(self.dir, "zoo.cfg")
        lines = ["tickTime=2000", "dataDir=%s" % self.data, "clientPort=%d" % self.client_port,
                 "clientPortAddress=%s" % self.host,
                 "4lw.commands.whitelist=%s" % cl.whitelist, "maxClientCnxns=0",
                 "forceSync=%s" % ("yes" if cl.force_sync else "no")]
        if self.target == "zookeeper":
            lines += ["initLimit=10", "syncLimit=5", "admin.enableServer=false"]
        for n in cl.nodes:
            lines.append("server.%d=%s:%d:%d;%s:%d" % (n.sid, n.host, n.peer_port,
                                                      n.election_port, n.host, n.client_port))
        if cl.metrics:
            lines += ["metricsProvider.className=org.apache.zookeeper.metrics.prometheus."
                      "PrometheusMetricsProvider",
                      "metricsProvider.httpHost=%s" % self.host,
                      "metricsProvider.httpPort=%d" % self.metrics_port]
        lines += cl.cfg_lines
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def command(self):
        cfg = self.write_cfg()
        if self.target == "zookeeper":
            cmd = [JAVA, "-Xmx512m", "-XX:+UseSerialGC",
                   "-Dorg.slf4j.simpleLogger.defaultLogLevel=info"] + self.cluster.jvm_args + [
                   "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        else:
            cmd = [os.environ["RINGKEEPER_BIN"], "--config", cfg] + self.cluster.rk_args
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return cmd

    # -- lifecycle --------------------------------------------------------------------
    def start(self, wait=False, timeout=60.0):
        assert not self.alive()
        with open(self.log_path, "ab") as log:
            log.write(("\n==== start %s n%d at %s ====\n" % (self.target, self.sid, time.ctime())).encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, cwd=self.dir, start_new_session=True)
        self.paused = False
        if wait:
            self.wait_serving(timeout)
        return self

    def serving(self):
        try:
            if self.four_letter("ruok", timeout=1.0) != "imok":
                return False
        except OSError:
            return False
        return session_ok(self.client_port, self.host)

    def wait_serving(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("n%d (%s) exited with %s during startup:\n%s"
                                   % (self.sid, self.target, self.proc.returncode, self.log_tail()))
            if self.serving():
                return self
            time.sleep(0.1)
        raise RuntimeError("n%d (%s) does not serve sessions after %.0fs:\n%s"
                           % (self.sid, self.target, timeout, self.cluster.logs()))

    def kill(self, sig=signal.SIGKILL):
        """Send `sig` (our own child, by pid); SIGKILL and SIGTERM also reap it."""
        if not self.alive():
            return
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.paused = True
        elif sig == signal.SIGCONT:
            self.paused = False
        elif sig in (signal.SIGKILL, signal.SIGTERM):
            if sig == signal.SIGTERM and self.paused:
                os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process keeps SIGTERM pending
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            self.paused = False

    def pause(self):
        self.kill(signal.SIGSTOP)

    def resume(self):
        self.kill(signal.SIGCONT)

    def stop(self, sig=signal.SIGTERM):
        self.kill(sig)
        if self.proc is not None and not self.alive():
            self.proc.wait()

    def restart(self, sig=signal.SIGTERM, timeout=60.0):
        """Stop (SIGTERM, or e.g. SIGKILL) and start again on the same ports and data,
        then wait until this server serves sessions."""
        self.stop(sig)
        if self.netns is None:  # the client port must be free again before the new bind
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((self.host, self.client_port))
                    s.close()
                    break
                except OSError:
                    time.sleep(0.1)
        return self.start(wait=True, timeout=timeout)

    # -- inspection -------------------------------------------------------------------
    def four_letter(self, word, timeout=5.0):
        return zkwire.four_letter(self.client_port, word, timeout, host=self.host)

    def mode(self, timeout=2.0):
        try:
            for line in self.four_letter("srvr", timeout=timeout).splitlines():
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

    def __repr__(self):
        return "<%s n%d %s>" % (self.target, self.sid, self.hosts)


class Cluster:
    """`impl`: "ringkeeper" or "zookeeper"; `kind`: the suite's target name.
    `rk_args`: extra RingKeeper command-line flags; `jvm_args`: extra ZooKeeper JVM
    options (-Dzookeeper.x=y); `cfg_lines`: extra zoo.cfg lines (both).
    `addresses` / `netns`: per server, its address and network namespace."""

    def __init__(self, workdir, size=3, force_sync=False, impl="ringkeeper", kind=None,
                 whitelist="*", rk_args=(), jvm_args=(), cfg_lines=(), addresses=None,
                 netns=None, extra_cfg="", metrics=False):
        self.workdir = workdir
        self.impl = impl
        self.kind = kind or "%s%d" % (impl, size)
        self.force_sync = force_sync
        self.whitelist = whitelist
        self.rk_args, self.jvm_args, self.cfg_lines = list(rk_args), list(jvm_args), list(cfg_lines)
        self.cfg_lines += [ln for ln in extra_cfg.splitlines() if ln.strip()]
        self.metrics = metrics
        self.nodes = []
        for i, sid in enumerate(range(1, size + 1)):
            self.nodes.append(Node(self, sid, host=addresses[i] if addresses else "127.0.0.1",
                                   netns=netns[i] if netns else None))

    @property
    def hosts(self):
        return ",".join(n.hosts for n in self.nodes)

    def start(self, timeout=None, serving=True):
        """Starts every server and waits for a leader and, with `serving`, until every
        server takes sessions (a server that has had no leader for a while refuses them,
        as ZooKeeper LOOKING does)."""
        timeout = timeout or (60.0 if self.impl == "zookeeper" else 20.0)
        for n in self.nodes:
            if not n.alive():
                n.start()
        lead = self.wait_leader(timeout)
        if serving:
            for n in self.nodes:
                n.wait_serving(timeout)
        return lead

    def alive(self):
        return all(n.alive() for n in self.nodes)

    def leader(self):
        for n in self.nodes:
            if n.alive() and not n.paused and n.mode() == "leader":
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
        """SIGTERM to every server at once (a JVM takes a while to stop), then reap."""
        for n in self.nodes:
            if n.alive():
                if n.paused:
                    n.resume()
                os.kill(n.proc.pid, signal.SIGTERM)
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                n.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(n.proc.pid, signal.SIGKILL)
                n.proc.wait(10)
            n.paused = False

    def member(self, role):
        """A Member for `role`: "leader", or "follower" / "follower2" (first or second
        follower by id)."""
        lead = self.wait_leader(60.0 if self.impl == "zookeeper" else 20.0)
        if role == "leader":
            return Member(self, lead, "leader")
        followers = [n for n in self.nodes if n is not lead]
        return Member(self, followers[1 if role.endswith("2") else 0], "follower")


def role_for(key):
    """The role a test's clients get on a cluster target: RK_CLUSTER_ROLE (leader,
    follower) if set, else chosen by a hash of the test's id (so the same test, on any
    cluster target, in any selection, meets the same role), about half on the leader."""
    forced = os.environ.get("RK_CLUSTER_ROLE")
    if forced:
        return forced
    h = zlib.crc32(key.encode())
    return "leader" if h % 2 == 0 else ("follower" if (h >> 1) % 2 == 0 else "follower2")


class Member:
    """One server of a cluster in the place of the suite's single server. `role` is the
    role it had when chosen; `expected_mode` is what srvr should say."""

    def __init__(self, cluster, node, role):
        self.cluster, self.node, self.role = cluster, node, role
        self.target, self.kind = node.target, cluster.kind
        self.expected_mode = role
        self.nodes = cluster.nodes

    # node-level
    port = property(lambda self: self.node.port)
    host = property(lambda self: self.node.host)
    hosts = property(lambda self: self.node.hosts)
    proc = property(lambda self: self.node.proc)
    pid = property(lambda self: self.node.pid)
    data_dir = property(lambda self: self.node.data_dir)
    stderr_path = property(lambda self: self.node.stderr_path)

    def four_letter(self, word, timeout=5.0):
        return self.node.four_letter(word, timeout)

    def log_tail(self, n=60):
        return self.node.log_tail(n)

    def restart(self, sig=signal.SIGTERM):
        return self.node.restart(sig)

    # cluster-level
    def alive(self):
        return self.cluster.alive()

    def start(self, timeout=None):
        self.cluster.start(timeout, serving=True)
        return self

    def stop(self, sig=signal.SIGTERM):
        for n in self.cluster.nodes:
            n.stop(sig)

    def __repr__(self):
        return "<%s %s n%d %s>" % (self.kind, self.role, self.node.sid, self.node.hosts)
