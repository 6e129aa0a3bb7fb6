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

import zkwire

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")
           if t.strip()]
ZK_CLASSPATH = ":".join([
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",        # its manifest Class-Path pulls in the rest
    "/usr/share/java/slf4j-simple.jar",      # logs to stderr instead of the NOP logger
])
JAVA = os.environ.get("JAVA", "/usr/bin/java")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """One server process (ZooKeeper or RingKeeper) on 127.0.0.1:port."""

    def __init__(self, target, workdir, whitelist="*", port=None, force_sync=False):
        self.target = target
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
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                    "-cp", ZK_CLASSPATH,
                    "org.apache.zookeeper.server.ZooKeeperServerMain", cfg]
        if self.target == "ringkeeper":
            return [os.environ["RINGKEEPER_BIN"],
                    "--clientPort=%d" % self.port,
                    "--dataDir=%s" % self.data_dir,
                    "--4lw.commands.whitelist=%s" % self.whitelist,
                    "--tickTime=2000", "--logLevel=info",
                    "--forceSync=%s" % ("yes" if self.force_sync else "no")]
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
    if target == "ringkeeper":
        b = os.environ.get("RINGKEEPER_BIN")
        if not b:
            return "RINGKEEPER_BIN is not set (path to <builddir>/ringkeeper)"
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            return "RINGKEEPER_BIN=%s is not an executable file" % b
    elif target == "zookeeper":
        if not os.path.exists("/usr/share/java/zookeeper.jar"):
            return "ZooKeeper (Debian package zookeeper) is not installed"
    else:
        return "unknown target %r in RK_TARGETS" % target
    return None


class ServerPool:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rk-it-")
        self.servers = {}
        self.extra = []

    def get(self, target):
        reason = _skip_reason(target)
        if reason:
            pytest.skip(reason)
        srv = self.servers.get(target)
        if srv is None:
            srv = Server(target, os.path.join(self.tmp, target))
            self.servers[target] = srv
            srv.start()
        elif not srv.alive():
            srv.start()
        return srv

    def new(self, target, **kw):
        """An extra, private server (e.g. with another whitelist)."""
        reason = _skip_reason(target)
        if reason:
            pytest.skip(reason)
        srv = Server(target, tempfile.mkdtemp(prefix=target + "-", dir=self.tmp), **kw)
        self.extra.append(srv)
        return srv.start()

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
    srv = server_pool.get(request.param)
    request.node._rk_servers = [srv]
    yield srv
    if not srv.alive():
        code = srv.proc.returncode if srv.proc else None
        tail = srv.log_tail()
        srv.stop()
        pytest.fail("%s died during the test (exit %s):\n%s" % (srv.target, code, tail))


@pytest.fixture
def root(request):
    """A unique root path for this test, e.g. /t-test_create-1a2b3c4d (not created)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:60]
    return "/t-%s-%s" % (name, uuid.uuid4().hex[:8])


@pytest.fixture
def kazoo_factory(server):
    from kazoo.client import KazooClient
    clients = []

    def make(start=True, timeout=10.0, **kw):
        c = KazooClient(hosts=server.hosts, timeout=timeout, **kw)
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
def zk(kazoo_factory):
    return kazoo_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_rk_servers", []):
            rep.sections.append(("%s stderr tail (%s)" % (srv.target, srv.stderr_path),
                                 srv.log_tail()))
