"""pytest fixtures for the RingKeeper integration suite.

Targets come from the environment variable RK_TARGETS (comma list, default
"ringkeeper,zookeeper"):

* ``zookeeper``  - Apache ZooKeeper 3.8 (Debian package) started standalone in the
  foreground with ``java ... ZooKeeperServerMain zoo.cfg``;
* ``ringkeeper`` - the binary named by $RINGKEEPER_BIN (skipped with a reason when unset
  or missing).

Servers are session scoped (one per target, JVM start is slow); every test gets its own
unique root path through the ``root`` fixture so tests never interfere. Server stderr is
captured to a file whose tail is attached to the report of every failing test.
``server.restart()`` restarts a server on the same port with the same data dir.

Cluster targets (cluster.py) run the same tests against an ensemble:

* ``ringkeeper3`` - three RingKeeper processes (zoo.cfg server.N lines, myid);
* ``zookeeper3``  - a three-server ZooKeeper 3.8 ensemble (QuorumPeerMain).

One ensemble per target serves the whole run. For each test the ``server`` fixture
hands out one member (cluster.Member): its port and four-letter words are that
server's, so every client of the test connects to it. Whether it is the leader or a
follower is chosen by a hash of the test id (about half each, the same for both
cluster targets; RK_CLUSTER_ROLE=leader|follower forces one). ``server.expected_mode``
is what its srvr says ("standalone", "leader", "follower"); ``server.kind`` is the
target name, ``server.target`` the implementation ("ringkeeper"/"zookeeper").
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

import cluster as rkcluster
import zkwire

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")
           if t.strip()]
ZK_CLASSPATH = rkcluster.ZK_CLASSPATH
JAVA = rkcluster.JAVA
# cluster target -> (implementation, servers)
CLUSTER_TARGETS = {"ringkeeper3": ("ringkeeper", 3), "zookeeper3": ("zookeeper", 3)}
STANDALONE_TARGETS = [t for t in TARGETS if t not in CLUSTER_TARGETS]


def impl_of(target):
    """"ringkeeper" or "zookeeper" for a target name."""
    return CLUSTER_TARGETS.get(target, (target, 1))[0]


# Features RingKeeper's cluster mode does not have yet (issue 12, in progress). A test
# that needs one calls pending(request, server, feature) where it starts to depend on
# it: on ringkeeper3 the test becomes an expected failure, strict, so it fails loudly
# once the feature works and the call must go.
CLUSTER_PENDING = {
}


def pending(request, server, feature):
    if getattr(server, "kind", None) == "ringkeeper3":
        request.node.add_marker(pytest.mark.xfail(reason="ringkeeper3: " + CLUSTER_PENDING[feature],
                                                  strict=True))


free_port = rkcluster.free_port  # below the ephemeral range (ports.py)


class Server:
    """One server process (ZooKeeper or RingKeeper) on 127.0.0.1:port."""

    expected_mode = "standalone"
    host = "127.0.0.1"

    def __init__(self, target, workdir, whitelist="*", port=None, force_sync=False,
                 rk_args=(), jvm_args=()):
        self.target = target
        self.kind = target
        self.rk_args, self.jvm_args = list(rk_args), list(jvm_args)
        self.force_sync = force_sync  # the suite's servers skip fsync unless asked
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = port or free_port()
        self.whitelist = whitelist
        self.stderr_path = os.path.join(workdir, "server.stderr")
        self.proc = None
        self._errf = None

    # -- info -------------------------------------------------------------
    def __repr__(self):
        return "<%s %s>" % (self.kind, self.hosts)

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=60):
        try:
            with open(self.stderr_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError as e:
            return "(no log: %s)" % e

    def four_letter(self, word, timeout=5.0):
        return zkwire.four_letter(self.port, word, timeout)

    # -- lifecycle ----------------------------------------------------------
    def _command(self):
        if self.target == "zookeeper":
            cfg = os.path.join(self.workdir, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=2000\n"
                        "dataDir=%s\n"
                        "clientPort=%d\n"
                        "clientPortAddress=127.0.0.1\n"
                        "4lw.commands.whitelist=%s\n"
                        "admin.enableServer=false\n"
                        "forceSync=%s\n"
                        "maxClientCnxns=0\n" % (self.data_dir, self.port, self.whitelist,
                                                 "yes" if self.force_sync else "no"))
            return [JAVA, "-Xmx512m", "-XX:+UseSerialGC",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info"] + self.jvm_args + [
                    "-cp", ZK_CLASSPATH,
                    "org.apache.zookeeper.server.ZooKeeperServerMain", cfg]
        if self.target == "ringkeeper":
            return [os.environ["RINGKEEPER_BIN"],
                    "--clientPort=%d" % self.port,
                    "--dataDir=%s" % self.data_dir,
                    "--4lw.commands.whitelist=%s" % self.whitelist,
                    "--tickTime=2000", "--logLevel=info",
                    "--forceSync=%s" % ("yes" if self.force_sync else "no")] + self.rk_args
        raise ValueError("unknown target %r" % self.target)

    def start(self, timeout=30.0):
        assert not self.alive()
        self._errf = open(self.stderr_path, "ab")
        self._errf.write(("\n==== start %s port %d at %s ====\n"
                          % (self.target, self.port, time.ctime())).encode())
        self._errf.flush()
        self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                     stdout=self._errf, stderr=self._errf,
                                     cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s during startup:\n%s"
                                   % (self.target, self.proc.returncode, self.log_tail()))
            try:
                last = self.four_letter("ruok", timeout=1.0)
                # ZooKeeper answers ruok before its ZooKeeperServer runs: also require a
                # real session handshake to succeed
                if last == "imok" and self._session_ok():
                    return self
            except OSError as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("%s did not answer ruok within %.0fs (last: %r):\n%s"
                           % (self.target, timeout, last, self.log_tail()))

    def _session_ok(self):
        try:
            with zkwire.RawConn(self.port, timeout=2.0) as c:
                r = c.handshake(timeout_ms=4000, read_only=False)
                if r["sessionId"] == 0:
                    return False
                c.send_request(zkwire.OP_CLOSE)
                c.recv_frame()
                return True
        except (OSError, zkwire.Closed, ValueError, AssertionError):
            return False

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)   # by pid, only our own child
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        if self._errf:
            self._errf.close()
            self._errf = None

    def restart(self, sig=signal.SIGTERM):
        """Stop (SIGTERM, or e.g. SIGKILL) and start again: same port, same dataDir."""
        self.stop(sig)
        # the port must be free again before the new process binds it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", self.port))
                s.close()
                break
            except OSError:
                time.sleep(0.1)
        return self.start()


def _skip_reason(target):
    impl = impl_of(target)
    if impl == "ringkeeper":
        b = os.environ.get("RINGKEEPER_BIN")
        if not b:
            return "RINGKEEPER_BIN is not set (path to <builddir>/ringkeeper)"
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            return "RINGKEEPER_BIN=%s is not an executable file" % b
    elif impl == "zookeeper":
        if not os.path.exists("/usr/share/java/zookeeper.jar"):
            return "ZooKeeper (Debian package zookeeper) is not installed"
    else:
        return "unknown target %r in RK_TARGETS" % target
    return None


def role_key(nodeid):
    """A test's id without the cluster target in it: the key of its cluster role."""
    for t in CLUSTER_TARGETS:
        nodeid = nodeid.replace(t, "")
    return nodeid


def pick(srv, nodeid):
    """The server a test talks to: a standalone server itself, or the member of a
    cluster whose role the test's id chooses (cluster.role_for)."""
    if isinstance(srv, rkcluster.Cluster):
        return srv.member(rkcluster.role_for(role_key(nodeid)))
    return srv


def make_cluster(target, workdir, whitelist="*", force_sync=False, rk_args=(), jvm_args=()):
    impl, size = CLUSTER_TARGETS[target]
    return rkcluster.Cluster(workdir, size=size, force_sync=force_sync, impl=impl, kind=target,
                             whitelist=whitelist, rk_args=rk_args, jvm_args=jvm_args)


class ServerPool:
    """The run's servers: one per target (a standalone Server, or a Cluster), started on
    first use and restarted when found dead; plus private ones made by new()."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rk-it-")
        self.servers = {}
        self.extra = []
        self.shared = {}

    def _make(self, target, workdir, **kw):
        if target in CLUSTER_TARGETS:
            return make_cluster(target, workdir, **kw)
        return Server(target, workdir, **kw)

    @staticmethod
    def _start(srv):
        if isinstance(srv, rkcluster.Cluster):
            srv.start(serving=True)
        else:
            srv.start()
        return srv

    def get(self, target):
        """The shared server of a target: a Server, or a Cluster (see pick())."""
        reason = _skip_reason(target)
        if reason:
            pytest.skip(reason)
        srv = self.servers.get(target)
        if srv is None:
            srv = self._make(target, os.path.join(self.tmp, target))
            self.servers[target] = srv
            self._start(srv)
        elif not srv.alive():
            self._start(srv)   # a cluster: starts only its dead servers
        return srv

    def member(self, target, request):
        """What a test of `target` talks to (pick()); its logs go into failure reports."""
        srv = pick(self.get(target), request.node.nodeid)
        request.node._rk_servers = getattr(srv, "nodes", [srv])
        return srv

    def new(self, target, **kw):
        """An extra, private server (e.g. with another whitelist), a Server or a Cluster."""
        reason = _skip_reason(target)
        if reason:
            pytest.skip(reason)
        srv = self._make(target, tempfile.mkdtemp(prefix=target + "-", dir=self.tmp), **kw)
        self.extra.append(srv)
        return self._start(srv)

    def new_like(self, server, request, shared=None, **kw):
        """A private server of the same target as `server` with other settings (kw:
        whitelist, force_sync, rk_args, jvm_args); for a cluster target, the member of
        the same role. With `shared`, one such server per (target, name) is kept for the
        run (started again if it died)."""
        key = (server.kind, shared)
        srv = self.shared.get(key) if shared else None
        if srv is None:
            srv = self.new(server.kind, **kw)
            if shared:
                self.shared[key] = srv
        elif not srv.alive():
            self._start(srv)
        out = pick(srv, request.node.nodeid)
        request.node._rk_servers = getattr(out, "nodes", [out])
        return out

    def close(self):
        for srv in list(self.servers.values()) + self.extra:
            srv.stop()
        if os.environ.get("RK_KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def server_pool():
    pool = ServerPool()
    yield pool
    pool.close()


@pytest.fixture(params=TARGETS)
def server(request, server_pool):
    srv = server_pool.member(request.param, request)
    yield srv
    dead = [n for n in getattr(srv, "nodes", [srv]) if not n.alive()]
    if dead:
        report = "\n".join("%s (exit %s):\n%s" % (n, n.proc.returncode if n.proc else None, n.log_tail())
                           for n in dead)
        for n in dead:
            n.stop()
        pytest.fail("%s died during the test: %s" % (srv.kind, report))


@pytest.fixture
def root(request):
    """A unique root path for this test, e.g. /t-test_create-1a2b3c4d (not created)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:60]
    return "/t-%s-%s" % (name, uuid.uuid4().hex[:8])


@pytest.fixture
def kazoo_factory_for():
    """make(srv): a kazoo client of that server (started); all stopped at the end."""
    from kazoo.client import KazooClient
    clients = []

    def make(srv, start=True, timeout=10.0, **kw):
        c = KazooClient(hosts=srv.hosts, timeout=timeout, **kw)
        clients.append(c)
        if start:
            c.start(timeout=15)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def kazoo_factory(server, kazoo_factory_for):
    """make(): a kazoo client of the test's server."""
    return lambda start=True, timeout=10.0, **kw: kazoo_factory_for(server, start, timeout, **kw)


@pytest.fixture
def zk(kazoo_factory):
    return kazoo_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_rk_servers", []):
            rep.sections.append(("%s stderr tail (%s)" % (srv, srv.stderr_path),
                                 srv.log_tail()))
