"""Apache Curator 5 (Debian's libcurator-recipes-java) against every target.

CuratorCheck.java holds the scenarios: the framework's create/delete/transaction/ACL
paths and its persistent recursive watches, the lock, semaphore, read-write lock, leader
latch, atomic counter, queue and double-barrier recipes (several clients at once, each
checking mutual exclusion or exactly-once delivery), CuratorCache and PathChildrenCache
event streams, and a PersistentNode whose session another connection closes; on a
3-server cluster, a lock holder whose server is killed keeps its session. Each run
prints "ok <scenario>" or what differed; every expectation in it is ZooKeeper 3.8's, and
the same scenarios run against ZooKeeper in the suite.
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import cluster as rkcluster

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPES = "/usr/share/java/curator-recipes.jar"
SCENARIOS = ["framework", "transaction", "acl", "persistent_watch", "mutex", "semaphore",
             "rwlock", "latch", "atomic_long", "queue", "barrier", "curator_cache",
             "children_cache", "persistent_node", "tree_cache", "shared_count", "selector",
             "ttl", "config"]


@pytest.fixture(scope="session")
def curator_classes(tmp_path_factory):
    """CuratorCheck compiled once for the run: the classpath to run it with."""
    if not os.path.exists(RECIPES):
        pytest.skip("Curator is not installed (Debian package libcurator-recipes-java)")
    javac = shutil.which("javac") or os.path.join(os.path.dirname(rkcluster.JAVA), "javac")
    if not os.path.exists(javac):
        pytest.skip("javac is not installed (a JDK)")
    out = str(tmp_path_factory.mktemp("curator"))
    # The jars' manifests name their dependencies (guava, zookeeper, jute, slf4j).
    cp = RECIPES + ":/usr/share/java/zookeeper.jar"
    r = subprocess.run([javac, "-nowarn", "-d", out, "-cp", cp,
                        os.path.join(HERE, "CuratorCheck.java")],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    nop = glob.glob("/usr/share/java/slf4j-nop.jar")
    return ":".join([out, cp] + nop)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_curator(curator_classes, server, zk, root, scenario):
    zk.create(root)
    r = subprocess.run([rkcluster.JAVA, "-Xss512k", "-XX:+UseSerialGC", "-Xshare:auto",
                        "-cp", curator_classes, "CuratorCheck", server.hosts, root, scenario],
                       capture_output=True, text=True, timeout=240,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok " + scenario), \
        "stdout:\n%s\nstderr (tail):\n%s" % (r.stdout[-6000:], r.stderr[-3000:])


TARGETS = [t.strip() for t in os.environ.get("RK_TARGETS", "ringkeeper,zookeeper").split(",")]
CLUSTER_IMPLS = [impl for impl, t in (("ringkeeper", "ringkeeper3"), ("zookeeper", "zookeeper3"))
                 if t in TARGETS]


@pytest.mark.parametrize("impl", CLUSTER_IMPLS)
def test_curator_lock_holder_keeps_its_session_when_its_server_dies(curator_classes, impl):
    """CuratorCheck's failover scenario on a private 3-server cluster: the client holds a
    lock, an ephemeral and a watch; the server it is on gets SIGKILL; its session moves to
    another server (SUSPENDED, RECONNECTED, never LOST) with all three."""
    if impl == "ringkeeper" and not os.environ.get("RINGKEEPER_BIN"):
        pytest.skip("RINGKEEPER_BIN is not set")
    cl = rkcluster.Cluster(tempfile.mkdtemp(prefix="rk-curator-"), size=3, impl=impl)
    try:
        cl.start()
        from kazoo.client import KazooClient
        k = KazooClient(hosts=cl.hosts)
        k.start(timeout=15)
        k.create("/cur")
        k.stop()
        k.close()
        p = subprocess.Popen([rkcluster.JAVA, "-XX:+UseSerialGC", "-cp", curator_classes,
                              "CuratorCheck", cl.hosts, "/cur", "failover"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().strip()
            assert line.startswith("on "), line + p.stdout.read() + p.stderr.read()[-3000:]
            victim = [n for n in cl.nodes if n.port == int(line.split()[1])]
            assert len(victim) == 1, (line, [n.port for n in cl.nodes])
            role = victim[0].mode()
            victim[0].kill(signal.SIGKILL)
            p.stdin.write("killed\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0 and out.strip().endswith("ok failover"), \
            "killed the %s\nstdout:\n%s\nstderr (tail):\n%s\n%s" % (role, out, err[-3000:], cl.logs())
    finally:
        cl.stop()
        if not os.environ.get("RK_KEEP_TMP"):
            shutil.rmtree(cl.workdir, ignore_errors=True)
