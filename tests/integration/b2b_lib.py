"""Back-to-back machinery: run one scripted sequence of raw requests against ZooKeeper
3.8 and against RingKeeper (both servers up at once) and compare the two transcripts.

A transcript is a list of text lines, one per request/reply, watch event or connection
close, in the order the client observed them. Everything that legitimately differs
between two servers is normalised before the comparison:

* zxids: each successful write (a write op with err 0; a multi whose results are all
  successes; closeSession) defines the next symbolic zxid W<k> (its reply header zxid).
  Every Stat zxid field is written as the W<k> it equals, "PRE" (older than the first
  write of the script), or "after-W<k>" (strictly between two of our writes: a txn we
  did not issue). A read or failed write reply header zxid must be >= the last W: it is
  written "ge-last-W" (or "LT-last-W:<n>" if it went backwards). A successful write's own
  header zxid must be greater than every zxid seen before ("new", else "NOT-NEW").
* ctime/mtime: "ctime==mtime" is required while version == 0; afterwards "mtime>=ctime";
  both must lie within the wall-clock window of the run ("t-ok").
* ephemeralOwner: 0, or the name of the script connection whose session id it is, or
  hex for anything else.
* session ids / passwords never appear otherwise.
* watch-event header zxid: -1 (ZooKeeper <= 3.8) and the triggering txn zxid (3.9+)
  are both ZooKeeper behaviour; written "evzxid-ok", anything else "evzxid-BAD:<n>".
* child lists are sorted (ZooKeeper documents no order).

Everything else (error codes, paths, data, ACLs, versions, cversion, aversion,
numChildren, dataLength, body lengths, trailing bytes, event type/state/path and order,
connection closes, replies that never come) is compared exactly.
"""
import base64
import difflib
import hashlib
import os
import socket
import struct
import time

import pytest

import zkwire as w
from zkwire import Dec, Enc

# ---------------------------------------------------------------------------------------
# constants

OPNAMES = {
    1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData", 6: "getACL",
    7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2", 13: "check",
    14: "multi", 15: "create2", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 21: "createTTL", 22: "multiRead", 100: "auth",
    103: "getEphemerals", 104: "getAllChildrenNumber", 106: "addWatch", 107: "whoAmI",
    -11: "closeSession", -1: "error",
}
WRITE_OPS = {1, 2, 5, 7, 13, 14, 15, 19, 21, -11}
EVENT_NAMES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged", -1: "None"}

READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="    # sha1 of "super:test"
SUPER_USER_PASSWORD = "super:test"
REPLY_TIMEOUT = 15.0   # a reply this late is "timeout": generous, the machine is shared and small


def digest_id(user, password):
    h = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return "%s:%s" % (user, base64.b64encode(h).decode())


# ---------------------------------------------------------------------------------------
# request bodies (our own jute encoders, on top of zkwire.Enc)

def b_create(path, data=b"", acls=w.OPEN_ACL, flags=0):
    return w.create_body(path, data, acls=acls, flags=flags)


def b_create_ttl(path, data=b"", acls=w.OPEN_ACL, flags=5, ttl=1000):
    return Enc().ustring(path).buffer(data).acls(acls).int(flags).long(ttl).bytes()


def b_path(path):
    return w.path_body(path)


def b_watch(path, watch=False):
    return w.path_watch_body(path, watch)


def b_delete(path, version=-1):
    return w.delete_body(path, version)


def b_set(path, data, version=-1):
    return w.setdata_body(path, data, version)


def b_setacl(path, acls, version=-1):
    return Enc().ustring(path).acls(acls).int(version).bytes()


def b_check(path, version):
    return Enc().ustring(path).int(version).bytes()


def b_path_int(path, n):
    return Enc().ustring(path).int(n).bytes()


def b_auth(scheme, auth, typ=0):
    return Enc().int(typ).ustring(scheme).buffer(auth).bytes()


def b_multi(ops):
    """ops: list of (opcode, body)."""
    return w.multi_body(ops)


# ---------------------------------------------------------------------------------------
# the recorder

class _Conn:
    def __init__(self, name, port):
        self.name = name
        self.raw = w.RawConn(port, timeout=REPLY_TIMEOUT)
        self.alive = True
        self.session_id = None


class Recorder:
    """Runs a script against one server and writes the normalised transcript."""

    def __init__(self, server):
        self.server = server
        self.lines = []
        self.conns = {}
        self.writes = []          # symbolic zxid table: W<k> -> value
        self.max_zxid = 0
        self.t0 = int(time.time() * 1000) - 120000
        self.step = 0

    # -- connections ------------------------------------------------------------------
    def connect(self, name, timeout_ms=30000):
        c = _Conn(name, self.server.port)
        r = c.raw.handshake(read_only=False, timeout_ms=timeout_ms)
        c.session_id = r["sessionId"]
        self.conns[name] = c
        self.lines.append("%s: connect -> len=%d proto=%d to=%d passwdlen=%d ro=%s" % (
            name, len(r["raw"]), r["protocolVersion"], r["timeOut"],
            len(r["passwd"] or b""), r.get("readOnly")))
        return c

    def close_all(self):
        for c in self.conns.values():
            c.raw.close()

    # -- normalisation ----------------------------------------------------------------
    def zx(self, v):
        for i, z in enumerate(self.writes):
            if v == z:
                return "W%d" % i
        if not self.writes or v < self.writes[0]:
            return "PRE"
        k = max(i for i, z in enumerate(self.writes) if z < v)
        return "after-W%d" % k

    def owner(self, v):
        if v == 0:
            return "0"
        for c in self.conns.values():
            if c.session_id == v:
                return "sess:" + c.name
        return "0x%x" % (v & 0xFFFFFFFFFFFFFFFF)

    def stat(self, s):
        now = int(time.time() * 1000) + 120000
        t_ok = self.t0 <= s["ctime"] <= now and self.t0 <= s["mtime"] <= now
        if s["version"] == 0:
            trel = "ctime==mtime" if s["ctime"] == s["mtime"] else "ctime!=mtime(v0)"
        else:
            trel = "mtime>=ctime" if s["mtime"] >= s["ctime"] else "mtime<ctime"
        return ("{cz=%s mz=%s pz=%s v=%d cv=%d av=%d eo=%s dl=%d nc=%d %s %s}" % (
            self.zx(s["czxid"]), self.zx(s["mzxid"]), self.zx(s["pzxid"]), s["version"],
            s["cversion"], s["aversion"], self.owner(s["ephemeralOwner"]), s["dataLength"],
            s["numChildren"], trel, "t-ok" if t_ok else "t-BAD"))

    # -- body parsers -------------------------------------------------------------------
    def _strings(self, d):
        return "[" + ",".join(sorted(repr(x) for x in d.strings())) + "]"

    def _acls(self, d):
        n = d.int()
        out = []
        for _ in range(max(n, 0)):
            out.append("%d:%s:%s" % (d.int(), d.ustring(), d.ustring()))
        return "[" + ",".join(out) + "]" + ("(null)" if n < 0 else "")

    def _data(self, d):
        b = d.buffer()
        return "null" if b is None else repr(b)

    def parse_ok(self, op, d, sub_ops=None):
        if op in (1,):
            return "path=%r" % d.ustring()
        if op in (15, 19, 21):
            return "path=%r stat=%s" % (d.ustring(), self.stat(d.stat()))
        if op in (3, 5, 7):
            return "stat=" + self.stat(d.stat())
        if op == 4:
            return "data=%s stat=%s" % (self._data(d), self.stat(d.stat()))
        if op == 6:
            return "acl=%s stat=%s" % (self._acls(d), self.stat(d.stat()))
        if op == 8:
            return "children=" + self._strings(d)
        if op == 12:
            return "children=%s stat=%s" % (self._strings(d), self.stat(d.stat()))
        if op == 9:
            return "path=%r" % d.ustring()
        if op == 103:
            return "ephemerals=" + self._strings(d)
        if op in (104, 106):
            return "int=%d" % d.int()
        if op == 107:
            n = d.int()
            return "ids=" + ",".join(sorted("%s:%s" % (d.ustring(), d.ustring())
                                            for _ in range(max(n, 0))))
        if op in (14, 22):
            return self.parse_multi(d)
        return ""

    def parse_multi(self, d):
        out = []
        while True:
            t, done, err = d.int(), d.bool(), d.int()
            if done:
                out.append("end(%d,%d)" % (t, err))
                break
            if t == -1:
                out.append("{-1 err=%d body=%d}" % (err, d.int()))
            elif err != 0:
                out.append("{%s err=%d nobody}" % (OPNAMES.get(t, t), err))
            else:
                body = self.parse_ok(t, d)
                out.append("{%s %s}" % (OPNAMES.get(t, t), body))
        return "results=" + " ".join(out)

    # -- running requests ------------------------------------------------------------
    def _read_until(self, c, xid):
        """Reads frames until the reply with `xid`; records events. Returns the reply
        (xid, zxid, err, Dec) or a string 'closed'/'timeout'."""
        while True:
            try:
                body = c.raw.recv_frame()
            except w.Closed:
                c.alive = False
                return "closed"
            except (socket.timeout, TimeoutError):
                c.alive = False
                c.raw.close()
                return "timeout"
            except OSError as e:
                c.alive = False
                return "closed(%s)" % e.__class__.__name__
            d = Dec(body)
            rxid, zxid, err = d.int(), d.long(), d.int()
            if rxid == -1:
                typ, state, path = d.int(), d.int(), d.ustring()
                ok = zxid == -1 or zxid in self.writes
                self.lines.append("%s:   EVENT %s state=%d path=%r %s%s" % (
                    c.name, EVENT_NAMES.get(typ, typ), state, path,
                    "evzxid-ok" if ok else "evzxid-BAD:%d" % zxid,
                    "" if d.remaining() == 0 else " TRAILING=%d" % d.remaining()))
                continue
            return rxid, zxid, err, d

    def req(self, name, op, body=b"", label="", xid=None):
        """Sends one request on connection `name` and records its reply."""
        self.step += 1
        c = self.conns[name]
        head = "#%d %s: %s %s" % (self.step, name, OPNAMES.get(op, op), label)
        if not c.alive:
            self.lines.append(head + " -> (connection already closed)")
            return None
        try:
            sent = c.raw.send_request(op, body, xid=xid)
        except OSError:
            c.alive = False
            self.lines.append(head + " -> send failed (closed)")
            return None
        r = self._read_until(c, sent)
        if isinstance(r, str):
            self.lines.append(head + " -> " + r)
            return None
        rxid, zxid, err, d = r
        parts = []
        if rxid != sent:
            parts.append("XID-MISMATCH(%d!=%d)" % (rxid, sent))
        ok_write = False
        body_txt = ""
        try:
            if err == 0:
                body_txt = self.parse_ok(op, d)
                if op in WRITE_OPS:
                    ok_write = not (op == 14 and "{-1 " in body_txt)
        except (ValueError, UnicodeDecodeError, struct.error) as e:
            body_txt = "UNPARSABLE(%s)" % e
        if d.remaining():
            body_txt += " TRAILING=%s" % d.d[d.o:d.o + 32].hex()
        if ok_write:
            znote = "new" if zxid > self.max_zxid else "NOT-NEW"
            self.writes.append(zxid)
            znote += ":W%d" % (len(self.writes) - 1)
            # the body was parsed before this W existed: re-normalise its stats
            d2 = Dec(d.d)
            d2.o = 16
            try:
                body_txt = self.parse_ok(op, d2) + (" TRAILING" if d2.remaining() else "")
            except (ValueError, UnicodeDecodeError, struct.error) as e:
                body_txt = "UNPARSABLE(%s)" % e
        else:
            last = self.writes[-1] if self.writes else 0
            if zxid in (0, -1):
                znote = "zxid=%d" % zxid
            else:
                znote = "ge-last-W" if zxid >= last else "LT-last-W"
        self.max_zxid = max(self.max_zxid, zxid)
        line = "%s -> err=%d %s %s" % (head, err, znote, body_txt)
        self.lines.append(line.rstrip() + ("" if not parts else " " + " ".join(parts)))
        if op == -11 and err == 0:
            # server closes the socket after the reply
            self.lines.append("%s:   closed-after-close=%s" % (name, c.raw.is_closed(3.0)))
            c.alive = False
        return err

    def drain(self, name):
        """Flush pending events of a connection: ping and read up to the ping reply."""
        c = self.conns[name]
        if not c.alive:
            return
        try:
            c.raw.send_raw(w.frame(struct.pack(">ii", -2, 11)))
        except OSError:
            c.alive = False
            self.lines.append("%s: ping -> send failed" % name)
            return
        r = self._read_until(c, -2)
        if isinstance(r, str):
            self.lines.append("%s: ping -> %s" % (name, r))

    def drain_unordered(self, name):
        """drain(), then sort the events it collected: for events whose order the
        protocol does not fix (two nodes reaped by one sweep come in the order of the
        server's candidate set, a hash set in ZooKeeper)."""
        start = len(self.lines)
        self.drain(name)
        self.lines[start:] = sorted(self.lines[start:])

    def drain_all(self):
        for n in list(self.conns):
            self.drain(n)

    def note(self, text):
        self.lines.append("   note: " + text)

    def is_closed(self, name, wait=2.0):
        c = self.conns[name]
        if not c.alive:
            self.lines.append("%s: closed=already" % name)
            return
        try:
            closed = c.raw.is_closed(wait)
        except AssertionError as e:
            closed = "data(%s)" % e
        self.lines.append("%s: closed=%s" % (name, closed))
        if closed is True:
            c.alive = False


# ---------------------------------------------------------------------------------------
# the server pair

ZK_B2B_JVM = ["-Dzookeeper.extendedTypesEnabled=true",
              "-Dznode.container.checkIntervalMs=1000",
              "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST]
RK_B2B_ARGS = ["--extendedTypesEnabled=true",
               "--znode.container.checkIntervalMs=1000",
               "--superDigest=" + SUPER_DIGEST,
               "--metricsPort=0",
               # ClickHouse's /keeper nodes are RingKeeper's own (on by default);
               # off here so the tree matches ZooKeeper's node for node
               "--keeperApiNodes=no"]


def make_pair(tmpdir, clustered=False):
    """ZooKeeper 3.8 and RingKeeper with extended types, super digest and a 1 s
    container/TTL sweep, not started: {"zookeeper": srv, "ringkeeper": srv}. With
    `clustered`, a 3-server ZooKeeper ensemble and a 3-server RingKeeper cluster
    (cluster.Cluster; conftest.pick() chooses the member a test talks to)."""
    import conftest
    if clustered:
        out = {}
        for target in ("zookeeper3", "ringkeeper3"):
            reason = conftest._skip_reason(target)
            if reason:
                pytest.skip(reason)
            out[conftest.impl_of(target)] = conftest.make_cluster(
                target, os.path.join(tmpdir, target), rk_args=RK_B2B_ARGS, jvm_args=ZK_B2B_JVM)
        return out

    out = {}
    for target in ("zookeeper", "ringkeeper"):
        reason = conftest._skip_reason(target)
        if reason:
            pytest.skip(reason)
        out[target] = conftest.Server(target, os.path.join(tmpdir, target),
                                      rk_args=RK_B2B_ARGS, jvm_args=ZK_B2B_JVM)
    return out


def compare(name, transcripts, known, pending=None):
    """Fails with a unified diff when the transcripts differ. `known` maps a step label
    substring to a reason; lines containing it are replaced on both sides. `pending`
    (same form) names steps of a feature RingKeeper does not have yet: if they are the
    only difference the test is an expected failure; if they no longer differ it fails,
    so the entry is removed."""
    zk, rk = transcripts["zookeeper"], transcripts["ringkeeper"]
    if pending:
        masked = {"zookeeper": zk, "ringkeeper": rk}
        for key in pending:
            if [ln for ln in zk if key in ln] == [ln for ln in rk if key in ln]:
                pytest.fail("%s: the pending difference %r is gone (%s): remove it from the "
                            "pending list" % (name, key, pending[key]), pytrace=False)
        compare(name, {t: [ln for ln in lines if not any(k in ln for k in pending)]
                       for t, lines in masked.items()}, known)
        pytest.xfail("differs only where RingKeeper is not done yet: %s" % "; ".join(pending.values()))

    def mask(lines):
        out = []
        for ln in lines:
            for key, reason in known.items():
                if key in ln:
                    ln = "<known difference %r: %s>" % (key, reason)
                    break
            out.append(ln)
        return out

    zk_m, rk_m = mask(zk), mask(rk)
    if zk_m != rk_m:
        diff = "\n".join(difflib.unified_diff(zk_m, rk_m, "zookeeper", "ringkeeper",
                                              n=2, lineterm=""))
        pytest.fail("%s: RingKeeper differs from ZooKeeper 3.8:\n%s" % (name, diff),
                    pytrace=False)
