"""ringkeeper-migrate against a real ZooKeeper 3.8 data directory.

A ZooKeeper (Debian package) with snapCount=50 (so it writes several snapshots and
rolls its log) and extended types builds a tree of every kind: persistent, ephemeral,
sequential (both), containers (one emptied), TTL nodes (plain and sequential), ACLs
with digest ids, setACL, quotas set the way zkCli's setquota sets them (nested, and
one removed), multis (one failing), deletes, setData, null data, sessions that close
and sessions left open. Then ZooKeeper is stopped (SIGTERM, or kill -9 while a writer
is busy), ringkeeper-migrate converts its data directory (--verify must find nothing),
RingKeeper starts from the result, and:
  - an independent dump through kazoo (every node: data, ACL, all Stat fields; the
    sessions with their ephemerals through the `dump` word) is identical on both;
  - a kazoo client that was connected to ZooKeeper resumes its session on RingKeeper
    (same port, same session id and password) and still owns its ephemerals;
  - new writes get zxids above ZooKeeper's last, and sequential names go on from
    ZooKeeper's counters.
Damaged or inconsistent directories are refused with a clear message and exit 2.

Needs RINGKEEPER_BIN (ringkeeper-migrate is found next to it, in <build>/migrate/,
or through RINGKEEPER_MIGRATE) and the zookeeper package.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import conftest
import zkwire as w

ALICE = ("alice", "secret")
TIMEOUT_S = 30.0
QUOTA = "/zookeeper/quota"
# zkCli setquota -n N: StatsTrack with the hard limits unset
LIMITS_TEXT = b"count=%d,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"


def _migrate_bin():
    env = os.environ.get("RINGKEEPER_MIGRATE")
    if env:
        return env
    rk = os.environ.get("RINGKEEPER_BIN", "")
    return os.path.join(os.path.dirname(rk), "migrate", "ringkeeper-migrate")


@pytest.fixture
def tools():
    for target in ("zookeeper", "ringkeeper"):
        reason = conftest._skip_reason(target)
        if reason:
            pytest.skip(reason)
    mig = _migrate_bin()
    if not os.access(mig, os.X_OK):
        pytest.skip("ringkeeper-migrate not found at %s (set RINGKEEPER_MIGRATE)" % mig)
    return mig


class ZK(conftest.Server):
    """ZooKeeper with the test's system properties."""

    def __init__(self, workdir, compression="", port=None, snap_count=50):
        super().__init__("zookeeper", workdir, port=port)
        self.props = {
            "zookeeper.snapCount": str(snap_count),
            "zookeeper.extendedTypesEnabled": "true",
            # the container/TTL reaper runs often: its deleteContainer txns are logged
            "znode.container.checkIntervalMs": "300",
            "zookeeper.snapshot.compression.method": compression,
        }

    def _command(self):
        cmd = conftest.Server._command(self)
        i = cmd.index("-cp")
        return cmd[:i] + ["-D%s=%s" % kv for kv in self.props.items()] + cmd[i:]


class RK(conftest.Server):
    def __init__(self, workdir, port=None):
        super().__init__("ringkeeper", workdir, port=port)

    def _command(self):
        return conftest.Server._command(self) + [
            "--extendedTypesEnabled=true",
            "--znode.container.checkIntervalMs=3600000",
            "--keeperApiNodes=no",
            "--metricsPort=0",
        ]


def _kazoo(port, auth=True, timeout=TIMEOUT_S):
    from kazoo.client import KazooClient
    # retry the connection for ever, at most a second apart: a client of ZooKeeper
    # reconnects to RingKeeper on the same port
    c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=timeout,
                    connection_retry={"max_tries": -1, "max_delay": 1.0})
    c.start(timeout=15)
    if auth:
        c.add_auth("digest", "%s:%s" % ALICE)
    return c


def _raw(port, timeout_ms=int(TIMEOUT_S * 1000)):
    c = w.RawConn(port)
    c.events = []
    c.handshake(read_only=False, timeout_ms=timeout_ms)
    return c


def _raw_ok(c, op, body):
    err, d = c.call(op, body)
    assert err == w.OK, (op, err)
    return d


def _create_body(path, data=b"", flags=0, ttl=None):
    body = w.create_body(path, data, flags=flags)
    return body + w.Enc().long(ttl).bytes() if ttl is not None else body


def _stop_kazoo(c):
    try:
        c.stop()
        c.close()
    except Exception:
        pass


ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def build_tree(port, cli_dir=None):
    """Every node kind, several hundred txns. Returns the clients left open (their
    sessions and ephemerals must survive the migration). cli_dir: also set a quota
    with the real zkCli setquota (its logs go there)."""
    from kazoo.security import make_acl, make_digest_acl
    a = _kazoo(port)
    digest_all = make_digest_acl(ALICE[0], ALICE[1], all=True)
    a.create("/app", b"root data")
    for i in range(150):
        a.create("/app/n%03d" % i, b"x" * (i % 40))
    for i in range(0, 150, 3):
        a.delete("/app/n%03d" % i)
    for i in range(1, 150, 3):
        a.set("/app/n%03d" % i, b"changed %d" % i)
        a.set("/app/n%03d" % i, b"changed again %d" % i)
    for _ in range(5):
        a.create("/app/seq-", b"s", sequence=True)
    a.create("/app/seq-last", b"")
    a.delete("/app/seq-0000000153")
    a.create("/app/eph", b"ephemeral of a", ephemeral=True)
    a.create("/app/ephseq-", b"e", ephemeral=True, sequence=True)
    a.create("/secret", b"alice only", acl=[digest_all])
    a.create("/secret/inner", b"", acl=[make_acl("world", "anyone", read=True), digest_all])
    a.set_acls("/app/n001", [make_acl("world", "anyone", read=True), digest_all])
    a.set_acls("/app/n001", [make_acl("world", "anyone", read=True, write=True), digest_all])
    a.create("/nulldata", None)
    a.create("/empty", b"")
    a.create("/deep/a/b/c/d", b"deep", makepath=True)
    # multis: one that commits (create, setData, delete, check), one that fails (error txn)
    t = a.transaction()
    t.create("/multi1", b"m")
    t.create("/multi1/a", b"ma")
    t.set_data("/app", b"set in a multi")
    t.delete("/app/n004")
    t.check("/app/n001", 2)
    res = t.commit()
    assert not any(isinstance(r, Exception) for r in res), res
    t = a.transaction()
    t.create("/multi-never")
    t.check("/app", 999)
    t.commit()
    assert a.exists("/multi-never") is None

    raw = _raw(port)
    # containers: one with a child, one whose first child went (cversion 3), one that
    # never had a child (the reaper leaves it), one the reaper deletes (below)
    _raw_ok(raw, 19, _create_body("/cont", b"c", flags=4))
    _raw_ok(raw, w.OP_CREATE, _create_body("/cont/child", b"cc"))
    _raw_ok(raw, 19, _create_body("/cont-churn", b"", flags=4))
    _raw_ok(raw, w.OP_CREATE, _create_body("/cont-churn/gone", b""))
    _raw_ok(raw, w.OP_CREATE, _create_body("/cont-churn/kept", b""))
    _raw_ok(raw, w.OP_DELETE, w.delete_body("/cont-churn/gone"))
    # TTL nodes: plain and sequential (createTTL), and both inside a multi
    _raw_ok(raw, 21, _create_body("/ttl", b"t", flags=5, ttl=3600000))
    _raw_ok(raw, 21, _create_body("/app/ttlseq-", b"ts", flags=6, ttl=7200000))
    err, _ = raw.call(w.OP_MULTI, w.multi_body([
        (21, _create_body("/ttl-multi", b"tm", flags=5, ttl=1234567)),
        (19, _create_body("/cont-multi", b"cm", flags=4)),
        (w.OP_CREATE, _create_body("/cont-multi/x", b"")),
        (w.OP_SETDATA, w.setdata_body("/ttl", b"t2")),
    ]))
    assert err == w.OK
    # create2, and a create that fails (logged as an error txn)
    _raw_ok(raw, w.OP_CREATE2, _create_body("/c2", b"create2"))
    err, _ = raw.call(w.OP_CREATE, _create_body("/c2", b"again"))
    assert err == w.NODEEXISTS
    # the reaper's deleteContainer: an emptied container and an expired TTL node go
    _raw_ok(raw, 21, _create_body("/ttl-short", b"", flags=5, ttl=200))
    _raw_ok(raw, 19, _create_body("/cont-reaped", b"", flags=4))
    _raw_ok(raw, w.OP_CREATE, _create_body("/cont-reaped/x", b""))
    _raw_ok(raw, w.OP_DELETE, w.delete_body("/cont-reaped/x"))
    _raw_ok(raw, 19, _create_body("/cont-never", b"never had a child", flags=4))
    deadline = time.monotonic() + 10
    while (a.exists("/cont-reaped") or a.exists("/ttl-short")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert a.exists("/cont-reaped") is None and a.exists("/ttl-short") is None
    # an ephemeral of this raw session, which stays open
    _raw_ok(raw, w.OP_CREATE, _create_body("/app/eph-raw", b"r", flags=1))
    # quotas as zkCli setquota makes them: /app (count), /app/sub nested, /gone removed
    a.create("/app/sub/x", b"12345", makepath=True)
    for root, n in (("/app", 10000), ("/app/sub", 100), ("/gone", 5)):
        if not a.exists(root):
            a.create(root)
        a.ensure_path(QUOTA + root)
        a.create(QUOTA + root + "/zookeeper_limits", LIMITS_TEXT % n)
        a.create(QUOTA + root + "/zookeeper_stats", b"count=0,bytes=0")
    a.create("/app/sub/y", b"yy")
    a.set("/app/sub/x", b"1")
    a.delete(QUOTA + "/gone/zookeeper_limits")
    a.create("/gone/after", b"not counted")
    # a session that closes: its ephemerals go in closeSession
    b = _kazoo(port)
    b.create("/app/eph-b", b"b", ephemeral=True)
    b.create("/app/eph-b2", b"b", ephemeral=True)
    b.stop()
    b.close()
    # enough setData to roll the log and snapshot a few more times
    for i in range(120):
        a.set("/app/n002", b"round %d" % i)
    a.delete("/deep/a/b/c/d")
    if cli_dir and os.path.exists(ZKCLI):
        env = dict(os.environ, ZOO_LOG_DIR=cli_dir)
        r = subprocess.run([ZKCLI, "-server", "127.0.0.1:%d" % port, "setquota", "-n", "7", "/deep"],
                           env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr
        assert a.exists(QUOTA + "/deep/zookeeper_stats"), r.stdout + r.stderr
        a.create("/deep/after-quota", b"counted")
    return a, raw


def dump_tree(port):
    """Every node (sorted): path, data, ACL, all Stat fields, through kazoo. The reads
    of a level of the tree are sent together (async) and their replies then taken in
    turn: a ZooKeeper fresh from a start took 12 s for the 1,000 nodes of
    test_migrate_after_kill9 one read after another."""
    c = _kazoo(port)
    try:
        out = {}
        level = ["/"]
        while level:
            nxt = []
            for i in range(0, len(level), 256):
                reads = [(path, c.get_async(path), c.get_acls_async(path), c.get_children_async(path))
                         for path in level[i:i + 256] if path != "/zookeeper/config"]
                for path, got, acl, kids in reads:
                    data, st = got.get(timeout=30)
                    acls, st2 = acl.get(timeout=30)
                    out[path] = (data, tuple(st), tuple((x.perms, x.id.scheme, x.id.id) for x in acls),
                                 st2.aversion)
                    nxt += [("" if path == "/" else path) + "/" + name for name in kids.get(timeout=30)]
            level = nxt
        return out
    finally:
        _stop_kazoo(c)


def dump_sessions(srv):
    """{session id: sorted ephemeral paths} from the `dump` four-letter word."""
    text = srv.four_letter("dump")
    sessions, cur, on = {}, None, False
    for line in text.splitlines():
        if line.startswith("Sessions with Ephemerals"):
            on = True
            continue
        if not on:
            continue
        m = re.match(r"^(0x[0-9a-f]+):$", line.strip())
        if m and not line.startswith("\t"):
            cur = int(m.group(1), 16)
            sessions[cur] = []
        elif line.startswith("\t/") and cur is not None:
            sessions[cur].append(line.strip())
        else:
            break
    return {k: sorted(v) for k, v in sessions.items()}


def log_records(path):
    """[(zxid, record bytes)] of a ZooKeeper log file (header skipped)."""
    import struct
    with open(path, "rb") as f:
        raw = f.read()
    out, off = [], 16
    while off + 12 <= len(raw):
        length = struct.unpack(">i", raw[off + 8:off + 12])[0]
        if length <= 0:
            break
        rec = raw[off:off + 12 + length + 1]
        out.append((struct.unpack(">q", rec[12 + 12:12 + 20])[0], rec))
        off += 12 + length + 1
    return raw[:16], out


def rewrite_log(path, drop_upto):
    """Rewrites a ZooKeeper log without its records up to zxid drop_upto (each record
    keeps its own checksum, so the file stays valid: it just starts later)."""
    header, recs = log_records(path)
    with open(path, "wb") as f:
        f.write(header + b"".join(r for z, r in recs if z > drop_upto))


def last_zxid(srv):
    m = re.search(r"Zxid: (0x[0-9a-f]+)", srv.four_letter("srvr"))
    return int(m.group(1), 16)


def wait_port_free(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise AssertionError("port %d stays busy" % port)


def run_migrate(mig, *args):
    p = subprocess.run([mig] + list(args), capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def diff_dumps(zk, rk):
    lines = []
    for path in sorted(set(zk) | set(rk)):
        if zk.get(path) != rk.get(path):
            lines.append("%s\n  zookeeper:  %r\n  ringkeeper: %r" % (path, zk.get(path), rk.get(path)))
    return "\n".join(lines[:40])


def zk_restart_dump(zk, copy, compression):
    """Starts ZooKeeper on a copy of zk's directory (another port) and dumps it. Returns
    (dump, its last zxid before the dump's own session)."""
    shutil.copytree(zk.workdir, copy, ignore=shutil.ignore_patterns("zoo.cfg", "server.stderr"))
    zk2 = ZK(copy, compression=compression)
    try:
        zk2.start()
        # its start opened and closed one session (conftest's check): two txns
        last = last_zxid(zk2) - 2
        return dump_tree(zk2.port), last
    finally:
        zk2.stop(signal.SIGKILL)


def stats_only_differ(a, b):
    """True when a and b differ at most in zookeeper_stats data."""
    if set(a) != set(b):
        return False
    for path in a:
        if a[path] != b[path] and not (path.endswith("/zookeeper_stats") and a[path][1:] == b[path][1:]):
            return False
    return True


# ---------------------------------------------------------------------------------------

TXN_TYPES = ("createSession", "closeSession", "create", "create2", "createContainer", "createTTL",
             "delete", "deleteContainer", "setData", "setACL", "multi", "error")


# snapCount=50: several snapshots and log files (gz and snappy snapshots); 1000000:
# only ZooKeeper's first snapshot, so every txn type goes through the replay
@pytest.mark.parametrize("compression,snap_count", [("", 1000000), ("gz", 50), ("snappy", 50)])
def test_migrate_stop_convert_start(tools, tmp_path, compression, snap_count):
    zk = ZK(str(tmp_path / "zk"), compression=compression, snap_count=snap_count)
    rk = None
    a = raw = None
    try:
        zk.start()
        a, raw = build_tree(zk.port, cli_dir=str(tmp_path))
        zk_dump = dump_tree(zk.port)
        zk_sessions = dump_sessions(zk)
        zk_last = last_zxid(zk)
        a_session = a.client_id[0]
        zk.stop()
        # What ZooKeeper itself serves after a restart from these files: a copy on
        # another port (the clients must not reconnect to it)
        zk_restart, _ = zk_restart_dump(zk, str(tmp_path / "zk-copy"), compression)
        # ZooKeeper recounts quota stats when it starts (DataTree.setupQuota); with a
        # nested quota its live counts differ from the recount. The conversion gives
        # what ZooKeeper gives after its own restart.
        assert stats_only_differ(zk_dump, zk_restart), diff_dumps(zk_dump, zk_restart)
        files = os.listdir(os.path.join(zk.data_dir, "version-2"))
        snaps = [f for f in files if f.startswith("snapshot.")]
        logs = [f for f in files if f.startswith("log.")]
        if snap_count == 50:
            assert len(snaps) >= 4 and len(logs) >= 4, files
        if compression:
            assert all(f.endswith("." + compression) for f in snaps if f != "snapshot.0"), snaps

        # the same port: kazoo client a reconnects to RingKeeper by itself
        rk = RK(str(tmp_path / "rk"), port=zk.port)
        code, out = run_migrate(tools, "--zk-data", zk.data_dir, "--out", rk.data_dir, "--verify")
        assert code == 0, out
        assert "0 difference(s)" in out, out
        assert "digest matches ZooKeeper's" in out, out
        assert "compression %s" % (compression or "none") in out, out
        assert "last zxid 0x%x" % zk_last in out, out
        if snap_count > 1000:
            by_type = re.search(r"txns by type:(.*)", out).group(1).split()
            assert sorted(t.split("=")[0] for t in by_type) == sorted(TXN_TYPES), out
        wait_port_free(zk.port)
        rk.start()

        rk_dump = dump_tree(rk.port)
        assert rk_dump == zk_restart, diff_dumps(zk_restart, rk_dump)
        assert len(rk_dump) > 130
        # kinds carried over: container, TTL (owner 0 to clients), ephemerals, null data
        assert rk_dump["/nulldata"][0] is None
        assert rk_dump["/app/eph"][1][7] == a_session
        assert rk_dump["/cont-churn"][1][5] == 3 and rk_dump["/cont-churn"][1][9] == 1
        assert rk_dump["/cont-never"][1][5] == 0 and rk_dump["/cont-never"][1][9] == 0
        assert rk_dump["/ttl"][1][7] == 0
        assert rk_dump[QUOTA + "/app/zookeeper_stats"][0].startswith(b"count=")
        if os.path.exists(ZKCLI):
            assert rk_dump[QUOTA + "/deep/zookeeper_stats"][0] == b"count=5,bytes=7"
        rk_sessions = dump_sessions(rk)
        assert {k: v for k, v in rk_sessions.items() if v} == {k: v for k, v in zk_sessions.items() if v}
        assert rk_sessions[a_session] == zk_sessions[a_session]
        assert "/app/eph" in rk_sessions[a_session] and len(rk_sessions[a_session]) == 2

        # client a resumes its session on RingKeeper (ZooKeeper's password carried over)
        deadline = time.monotonic() + 20
        while a.state != "CONNECTED" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert a.state == "CONNECTED"
        assert a.client_id[0] == a_session
        assert a.get("/app/eph")[0] == b"ephemeral of a"

        # writes go on above ZooKeeper's last zxid; sequence numbers go on too
        st = a.create("/after-migration", b"new", include_data=True)[1]
        assert st.czxid > zk_last
        # ZooKeeper names a sequential child by its parent's create count
        app = zk_dump["/app"][1]
        seq = a.create("/app/seq-", b"s", sequence=True)
        assert seq == "/app/seq-%010d" % ((app[5] + app[9]) // 2), (seq, app)
        a.set("/app/n002", b"on ringkeeper")
        assert a.get("/app/n002")[1].version == 121
        assert a.get("/app/n002")[1].mzxid > zk_last
    finally:
        if a:
            _stop_kazoo(a)
        if raw:
            raw.close()
        if rk:
            rk.stop()
        zk.stop()


def test_migrate_after_kill9(tools, tmp_path):
    """kill -9 while a writer is busy and sessions are open; the converted tree equals
    the one ZooKeeper itself recovers from the same files."""
    zk = ZK(str(tmp_path / "zk"), compression="gz")
    a = raw = None
    servers = []
    stop = threading.Event()
    try:
        zk.start()
        a, raw = build_tree(zk.port)
        writer = _kazoo(zk.port)

        def write_loop():
            i = 0
            while not stop.is_set():
                try:
                    writer.create("/busy/n", b"%d" % i, sequence=True, makepath=True)
                    i += 1
                except Exception:
                    return

        th = threading.Thread(target=write_loop, daemon=True)
        th.start()
        time.sleep(1.5)
        os.kill(zk.pid, signal.SIGKILL)
        zk.proc.wait(10)
        stop.set()
        th.join(10)
        _stop_kazoo(writer)
        zk.stop()
        # ZooKeeper's own recovery of a copy, on another port
        zk_dump, zk_last = zk_restart_dump(zk, str(tmp_path / "zk-copy"), "gz")

        rk = RK(str(tmp_path / "rk"))
        servers.append(rk)
        code, out = run_migrate(tools, "--zk-data", zk.data_dir, "--out", rk.data_dir, "--verify", "--myid", "1")
        assert code == 0, out
        assert "0 difference(s)" in out, out
        assert len(zk_dump["/busy"]) and zk_dump["/busy"][1][9] > 10, zk_dump.get("/busy")
        assert "last zxid 0x%x" % zk_last in out, out
        rk.start()
        rk_dump = dump_tree(rk.port)
        assert rk_dump == zk_dump, diff_dumps(zk_dump, rk_dump)
        with open(os.path.join(rk.data_dir, "myid")) as f:
            assert f.read().strip() == "1"
    finally:
        stop.set()
        if a:
            _stop_kazoo(a)
        if raw:
            raw.close()
        for s in servers:
            s.stop()
        zk.stop()


def test_migrate_refuses_damage_and_gaps(tools, tmp_path):
    zk = ZK(str(tmp_path / "zk"))
    a = raw = None
    try:
        zk.start()
        a, raw = build_tree(zk.port)
        _stop_kazoo(a)
        a = None
        raw.close()
        raw = None
        zk.stop()
    finally:
        if a:
            _stop_kazoo(a)
        zk.stop()
    v2 = os.path.join(zk.data_dir, "version-2")

    def zxid_of(name):
        return int(name.split(".")[1], 16)

    snaps = sorted((f for f in os.listdir(v2) if f.startswith("snapshot.")), key=zxid_of)
    logs = sorted((f for f in os.listdir(v2) if f.startswith("log.")), key=zxid_of)
    newest, before = snaps[-1], snaps[-2]
    zxids = {f: [z for z, _ in log_records(os.path.join(v2, f))[1]] for f in logs}

    def variant(name):
        d = str(tmp_path / name)
        shutil.copytree(zk.data_dir, d)
        return d, os.path.join(d, "version-2")

    # the untouched directory converts
    code, out = run_migrate(tools, "--zk-data", zk.data_dir, "--out", str(tmp_path / "ok"), "--verify")
    assert code == 0, out

    # the newest snapshot cut short (a crash while it was written): the one before it
    d, v = variant("cut")
    with open(os.path.join(v, newest), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(v, newest)) // 2)
    code, out = run_migrate(tools, "--zk-data", d, "--out", str(tmp_path / "cut-out"), "--verify")
    assert code == 0, out
    assert "is incomplete" in out and "using the snapshot before it" in out, out
    assert "snapshot.%s" % before.split(".")[1] in out, out
    assert "0 difference(s)" in out, out

    # An older snapshot B (the newer ones cut short) whose next txn is in a log that
    # another log follows: without that log the txns go on after a gap.
    base = holder = None
    for snap in reversed(snaps[:-1]):
        held = [f for f in logs if zxid_of(snap) + 1 in zxids[f]]
        if held and held[0] != logs[-1]:
            base, holder = snap, held[0]
            break
    assert base, (snaps, zxids)

    def from_base(name):
        d, v = variant(name)
        for snap in snaps:
            if zxid_of(snap) > zxid_of(base):
                with open(os.path.join(v, snap), "r+b") as f:
                    f.truncate(100)
        return d, v

    d, v = from_base("gap")
    os.unlink(os.path.join(v, holder))
    code, out = run_migrate(tools, "--zk-data", d, "--out", str(tmp_path / "gap-out"))
    assert code == 2, out
    assert "does not continue" in out and "gap" in out, out
    assert not os.path.exists(str(tmp_path / "gap-out")), "nothing is written when refused"

    # the log after B starting later than B's next txn: refused
    d, v = from_base("late")
    rewrite_log(os.path.join(v, holder), zxid_of(base) + 1)
    code, out = run_migrate(tools, "--zk-data", d, "--out", str(tmp_path / "late-out"))
    assert code == 2, out
    assert "does not continue 0x%x (the snapshot's zxid)" % zxid_of(base) in out, out

    # a flipped byte inside the newest snapshot: its checksum, refused
    d, v = variant("flip-snap")
    p = os.path.join(v, newest)
    with open(p, "r+b") as f:
        f.seek(os.path.getsize(p) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x20]))
    code, out = run_migrate(tools, "--zk-data", d, "--out", str(tmp_path / "flip-snap-out"))
    assert code == 2, out
    assert "does not match" in out and "damaged" in out, out

    # a flipped byte in a txn of the log after the newest snapshot: refused
    d, v = variant("flip-log")
    p = os.path.join(v, logs[-1])
    with open(p, "r+b") as f:
        f.seek(16 + 12 + 10)  # inside the first record's txn header
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x01]))
    code, out = run_migrate(tools, "--zk-data", d, "--out", str(tmp_path / "flip-log-out"))
    assert code == 2, out
    assert "fails its checksum" in out, out

    # converting twice into the same directory is refused
    code, out = run_migrate(tools, "--zk-data", zk.data_dir, "--out", str(tmp_path / "ok"))
    assert code == 1 and "holds a RingKeeper state already" in out, out


def test_migrate_to_cluster(tools, tmp_path):
    """One conversion, copied to the three servers of a RingKeeper ensemble (each with
    its own myid): every server serves ZooKeeper's tree, and writes go on above
    ZooKeeper's zxids through any of them."""
    import cluster as cl
    zk = ZK(str(tmp_path / "zk"))
    a = raw = None
    c = None
    try:
        zk.start()
        a, raw = build_tree(zk.port)
        _stop_kazoo(a)
        a = None
        raw.close()
        raw = None
        zk.stop()
        zk_dump, zk_last = zk_restart_dump(zk, str(tmp_path / "zk-copy"), "")
        out = str(tmp_path / "converted")
        code, text = run_migrate(tools, "--zk-data", zk.data_dir, "--out", out, "--verify")
        assert code == 0 and "0 difference(s)" in text, text
        c = cl.Cluster(str(tmp_path / "rk"), size=3, extra_cfg="extendedTypesEnabled=true\nkeeperApiNodes=no\n"
                       "znode.container.checkIntervalMs=3600000\n")
        for n in c.nodes:
            shutil.copytree(os.path.join(out, "snapshot"), os.path.join(n.data, "snapshot"))
            shutil.copytree(os.path.join(out, "log"), os.path.join(n.data, "log"))
            shutil.copy(os.path.join(out, "raft-state"), n.data)
        c.start()
        for n in c.nodes:
            dump = dump_tree(n.client_port)
            # the raw session is still within its timeout: its ephemeral is there too
            assert dump == zk_dump, "server %d:\n%s" % (n.sid, diff_dumps(zk_dump, dump))
        k = _kazoo(c.nodes[1].client_port)
        try:
            st = k.create("/after", b"x", include_data=True)[1]
            assert st.czxid > zk_last
        finally:
            _stop_kazoo(k)
        for n in c.nodes:
            k = _kazoo(n.client_port)
            try:
                deadline = time.monotonic() + 10
                while k.exists("/after") is None and time.monotonic() < deadline:
                    time.sleep(0.05)  # a follower applies the commit a moment later
                assert k.get("/after")[1].czxid == st.czxid
            finally:
                _stop_kazoo(k)
    finally:
        if a:
            _stop_kazoo(a)
        if raw:
            raw.close()
        if c:
            c.stop()
        zk.stop()
