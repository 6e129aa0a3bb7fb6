"""Load and checks for the cluster failure tests (pauses, kills, partitions).

* ``Writers``: one thread per server (more with ``per_server``), each a raw session
  (zkwire) creating uniquely named persistent nodes ``<root>/w<i>-<n>``, ``window``
  requests in flight. A writer starts on its own server; when its connection fails or
  a reply takes longer than ``reply_timeout`` it drops the connection and goes on with
  a new session on the next server. It records every name it sent as acknowledged
  (err 0), unknown (no answer: the connection ended; or CONNECTIONLOSS, RingKeeper's
  answer to writes pending when the leader changed) or refused (another error).
* ``Register``: one thread per server, each a raw session doing, one at a time,
  compare-and-set writes (setData at the version it last saw) and linearizable reads
  (sync, then getData) of one znode; ``register_violations()`` checks the history.
* ``children(node, path)``, ``dump(node)``: what one server holds (a full tree dump with
  every Stat field, through pipelined reads), without sync: exactly that server's view.
* ``converged(nodes)``: waits until every given server holds the same tree, returns it.
"""
import bisect
import collections
import socket
import threading
import time

import zkwire as w

CONNECTIONLOSS = -4
BADVERSION = -103
STAT = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
        "ephemeralOwner", "dataLength", "numChildren", "pzxid")


class _Session:
    """A raw session on one server, closed with closeSession on exit."""

    def __init__(self, node, timeout, session_timeout_ms=10000):
        self.c = connect(node, timeout, session_timeout_ms)

    def __enter__(self):
        return self.c

    def __exit__(self, *a):
        try:
            self.c.send_request(w.OP_CLOSE)
            self.c.recv_frame()
        except (OSError, w.Closed):
            pass
        self.c.close()


def connect(node, timeout=2.0, session_timeout_ms=4000):
    c = w.RawConn(node.client_port, host=node.host, timeout=timeout)
    c.events = []
    try:
        r = c.handshake(read_only=False, timeout_ms=session_timeout_ms)
    except BaseException:
        c.close()
        raise
    if r["sessionId"] == 0:
        c.close()
        raise w.Closed("session refused")
    return c


class _LoadThreads:
    """A load's threads (self.threads, stopped by self.stop_ev) as a context manager."""

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def __exit__(self, *a):
        self.stop()


class Writers(_LoadThreads):
    def __init__(self, cluster, root, per_server=1, window=4, reply_timeout=2.0,
                 connect_timeout=0.5, nodes=None):
        self.cluster, self.root, self.window = cluster, root, window
        self.reply_timeout, self.connect_timeout = reply_timeout, connect_timeout
        self.lock = threading.Lock()
        self.acked, self.refused, self.unknown = set(), {}, set()
        self.acked_at = []            # (monotonic time, name)
        self.stop_ev = threading.Event()
        self.reconnects = 0
        self.protocol_errors = []
        self.sent_per_conn = []      # [(server, [names in sending order])]
        self.events = []             # (monotonic time, writer, what): connections, for reports
        self.nodes = nodes or cluster.nodes
        n = len(self.nodes)
        self.threads = [threading.Thread(target=self._run, args=(i, i % n), daemon=True,
                                         name="writer-%d" % i) for i in range(n * per_server)]

    def _run(self, i, first):
        seq = 0
        k = first
        while not self.stop_ev.is_set():
            node = self.nodes[k % len(self.nodes)]
            k += 1
            try:  # a stopped server accepts the connection (backlog) but never answers
                c = connect(node, timeout=self.connect_timeout)
                c.sock.settimeout(self.reply_timeout)
            except (OSError, w.Closed, ValueError, AssertionError) as e:
                self.events.append((time.monotonic(), i, "n%d: no session: %r" % (node.sid, e)))
                time.sleep(0.05)
                continue
            self.events.append((time.monotonic(), i, "n%d: session" % node.sid))
            inflight = collections.deque()
            sent = []
            with self.lock:
                self.sent_per_conn.append((node, sent))
            try:
                while True:
                    while not self.stop_ev.is_set() and len(inflight) < self.window:
                        name = "%s/w%d-%d" % (self.root, i, seq)
                        seq += 1
                        sent.append(name)
                        xid = c.send_request(w.OP_CREATE, w.create_body(name, b"%d" % seq))
                        inflight.append((xid, name))
                    if not inflight:
                        break
                    xid, zxid, err, d = c.recv_reply()
                    want, name = inflight[0]
                    if xid != want:
                        self.protocol_errors.append("%s: reply xid %d for request %d" % (node, xid, want))
                        break
                    inflight.popleft()
                    with self.lock:
                        if err == 0:
                            self.acked.add(name)
                            self.acked_at.append((time.monotonic(), name))
                        elif err == CONNECTIONLOSS:  # RingKeeper's answer when the leader changed
                            self.unknown.add(name)
                        else:
                            self.refused[name] = err
            except (OSError, w.Closed, ValueError) as e:
                self.events.append((time.monotonic(), i, "n%d: ended: %r" % (node.sid, e)))
            finally:
                c.close()
                with self.lock:
                    self.unknown.update(name for _, name in inflight)
                    self.reconnects += 1

    def order_violations(self, tree):
        """Connections where a write was lost but a later one (same connection, so same
        session) was applied: ZooKeeper applies a client's writes in the order sent.
        `tree`: a dump() (the czxid of what was applied is shown) or a set of paths."""
        def zxid(p):
            return tree[p][1][0] if isinstance(tree, dict) and p in tree else "?"
        out = []
        for node, sent in self.sent_per_conn:
            v = not_a_prefix(sent, tree)
            if v:
                i = sent.index(v[0])
                before = sent[i - 1] if i else None
                out.append("%s: %s lost (the one before it, %s, at zxid %s), %s applied at zxid %s; "
                           "acknowledged: %s" % (node, v[0], before, zxid(before), v[1], zxid(v[1]),
                                                 v[1] in self.acked))
        return out

    def acked_since(self, t):
        with self.lock:
            return [name for at, name in self.acked_at if at > t]


class Register(_LoadThreads):
    """A compare-and-set register under the chaos: `path`'s data and version. Every
    operation's start and end (monotonic time, this process) and answer are kept:

    * ``cas``: (start, end, expected version, outcome, token, new version), outcome
      "ok", "refused" (BADVERSION: certainly not applied) or "unknown" (no answer,
      CONNECTIONLOSS, or another error);
    * ``reads``: (start, end, version, data), from a sync and a getData pipelined on
      one session, counted only when both answered OK.

    Each token written is unique, so a read names the write it sees."""

    def __init__(self, cluster, path, per_server=1, reply_timeout=2.0, nodes=None):
        self.cluster, self.path, self.reply_timeout = cluster, path, reply_timeout
        self.nodes = nodes or cluster.nodes
        self.lock = threading.Lock()
        self.cas, self.reads, self.errors = [], [], []
        self.stop_ev = threading.Event()
        n = len(self.nodes)
        self.threads = [threading.Thread(target=self._run, args=(i, i % n), daemon=True,
                                         name="register-%d" % i) for i in range(n * per_server)]

    def _one(self, c, i, seq, known):
        """One operation on connection c; returns the version now known."""
        t0 = time.monotonic()
        if seq % 2:
            xs = c.send_request(w.OP_SYNC, w.path_body(self.path))
            xg = c.send_request(w.OP_GETDATA, w.path_watch_body(self.path))
            rs = c.recv_reply()
            gs = c.recv_reply()
            t1 = time.monotonic()
            if (rs[0], gs[0]) != (xs, xg):
                raise ValueError("reply xids %d, %d for %d, %d" % (rs[0], gs[0], xs, xg))
            if rs[2] == 0 and gs[2] == 0:
                data = gs[3].buffer()
                st = gs[3].stat()
                with self.lock:
                    self.reads.append((t0, t1, st["version"], data))
                return st["version"]
            if rs[2] != CONNECTIONLOSS or gs[2] != CONNECTIONLOSS:
                with self.lock:
                    self.errors.append("read: sync %d, getData %d" % (rs[2], gs[2]))
            return known
        token = b"r%d-%d" % (i, seq)
        outcome, new = "unknown", None
        with self.lock:
            self.cas.append([t0, None, known, outcome, token, new])
            rec = self.cas[-1]
        x = c.send_request(w.OP_SETDATA, w.setdata_body(self.path, token, known))
        xid, _, err, d = c.recv_reply()
        rec[1] = time.monotonic()
        if xid != x:
            raise ValueError("reply xid %d for %d" % (xid, x))
        if err == 0:
            rec[3], rec[5] = "ok", d.stat()["version"]
            return rec[5]
        if err == BADVERSION:
            rec[3] = "refused"
            return known
        if err != CONNECTIONLOSS:
            with self.lock:
                self.errors.append("setData: %d" % err)
        return known

    def _run(self, i, first):
        k, seq, known = first, 0, 0
        while not self.stop_ev.is_set():
            node = self.nodes[k % len(self.nodes)]
            k += 1
            try:
                c = connect(node, timeout=0.5)
                c.sock.settimeout(self.reply_timeout)
            except (OSError, w.Closed, ValueError, AssertionError):
                time.sleep(0.05)
                continue
            try:
                while not self.stop_ev.is_set():
                    seq += 1
                    known = self._one(c, i, seq, known)
            except (OSError, w.Closed, ValueError):
                pass
            finally:
                c.close()


    def violations(self, final=None):
        """What breaks linearizability in the history (empty when nothing does).
        `final`: (version, data) the converged servers hold at the end."""
        out = list(self.errors[:5])
        ok = [r for r in self.cas if r[3] == "ok"]
        refused = {r[4] for r in self.cas if r[3] == "refused"}
        issued = {r[4] for r in self.cas if r[3] != "refused"}
        by_version = {}
        for r in ok:
            if r[5] != r[2] + 1:
                out.append("a write at version %d made version %d" % (r[2], r[5]))
            if r[5] in by_version:
                out.append("two acknowledged writes made version %d: %s and %s"
                           % (r[5], by_version[r[5]], r[4]))
            by_version[r[5]] = r[4]
        seen = {}
        for t0, t1, v, data in self.reads:
            if data in refused:
                out.append("a read saw %s, a write answered BADVERSION" % data)
            elif data != b"" and data not in issued:
                out.append("a read saw %s, never written" % data)
            if by_version.get(v, data) != data or seen.get(v, data) != data:
                out.append("version %d read as %s, written as %s / read before as %s"
                           % (v, data, by_version.get(v), seen.get(v)))
            seen[v] = data
        # Real time: an operation that began after another ended sees its version or a
        # later one (reads after a sync; acknowledged writes name their version).
        done = sorted([(r[1], r[5]) for r in ok] + [(t1, v) for t0, t1, v, _ in self.reads])
        ends = [e for e, _ in done]
        best, m = [], -1
        for _, v in done:
            m = max(m, v)
            best.append(m)
        for t0, t1, v, data in self.reads:
            j = bisect.bisect_left(ends, t0)
            if j and best[j - 1] > v:
                out.append("a read began after version %d was seen and read version %d"
                           % (best[j - 1], v))
        if final is not None and ok:
            top = max(r[5] for r in ok)
            if final[0] < top:
                out.append("the servers end at version %d, an acknowledged write made %d"
                           % (final[0], top))
            elif final[0] in by_version and by_version[final[0]] != final[1]:
                out.append("the servers end with %s at version %d, written as %s"
                           % (final[1], final[0], by_version[final[0]]))
        return out[:10]

    def summary(self):
        n = collections.Counter(r[3] for r in self.cas)
        return "register: %d reads, %d writes (%d ok, %d refused, %d unknown)" % (
            len(self.reads), len(self.cas), n["ok"], n["refused"], n["unknown"])


def not_a_prefix(sent, present):
    """(first lost, a later applied) if the applied names of `sent` (in sending order)
    are not a prefix of it, else None."""
    lost = None
    for name in sent:
        if name not in present:
            lost = lost or name
        elif lost:
            return lost, name
    return None


def replies(conn, xids, timeout):
    """Reads replies to `xids` (in order) until all came, the connection ended or
    `timeout` passed. Returns ({xid: (err, Dec)}, how it ended)."""
    got = {}
    conn.sock.settimeout(timeout)
    try:
        while len(got) < len(xids):
            xid, zxid, err, d = conn.recv_reply()
            got[xid] = (err, d)
    except (w.Closed, ConnectionError):
        return got, "closed"
    except socket.timeout:
        return got, "timeout"
    return got, "all answered"


def children(node, path, timeout=5.0):
    with _Session(node, timeout) as c:
        err, d = c.call(w.OP_GETCHILDREN, w.path_watch_body(path))
        if err == w.NONODE:
            return set()
        assert err == 0, (node, path, err)
        return set(d.strings())


def _pipelined(c, reqs, window=64):
    out, pending, i = [], collections.deque(), 0
    while i < len(reqs) or pending:
        while i < len(reqs) and len(pending) < window:
            pending.append(c.send_request(*reqs[i]))
            i += 1
        xid, zxid, err, d = c.recv_reply()
        assert xid == pending.popleft(), "replies out of order"
        out.append((err, d))
    return out


def dump(node, timeout=10.0):
    """{path: (data, Stat tuple)} of every node but /zookeeper's subtree, as this server
    holds it now."""
    out = {}
    with _Session(node, timeout) as c:
        level = ["/"]
        while level:
            res = _pipelined(c, [(w.OP_GETDATA, w.path_watch_body(p)) for p in level])
            kids = _pipelined(c, [(w.OP_GETCHILDREN, w.path_watch_body(p)) for p in level])
            nxt = []
            for p, (err, d), (err2, d2) in zip(level, res, kids):
                if err == w.NONODE:
                    continue  # deleted between the two reads
                assert err == 0 and err2 == 0, (node, p, err, err2)
                data = d.buffer()
                st = d.stat()
                out[p] = (data, tuple(st[k] for k in STAT))
                for name in d2.strings():
                    child = (p.rstrip("/") + "/" + name)
                    if child != "/zookeeper":
                        nxt.append(child)
            level = nxt
    return out


class NotConverged(AssertionError):
    pass


class OrderViolation(AssertionError):
    pass


def converged(nodes, timeout=20.0):
    """Every server's dump, once they are all equal; AssertionError naming the first
    differences if they are not within `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        trees = []
        try:
            trees = [dump(n) for n in nodes]
        except (OSError, w.Closed, AssertionError) as e:
            last_error = e
        if trees and all(t == trees[0] for t in trees[1:]):
            return trees[0]
        if time.monotonic() > deadline:
            raise NotConverged("servers did not converge within %.0fs: %s%s"
                               % (timeout, describe_differences(nodes, trees),
                                  "; last error: %r" % last_error if last_error else ""))
        time.sleep(0.3)


def chaos_over(cl, seed, actions):
    """The end of a chaos run: every server running again (resumed or restarted), a
    leader, a second more of writes; returns the run's description for messages."""
    for n in cl.nodes:
        if n.paused:
            n.resume()
        elif not n.alive():
            n.start()
    cl.wait_leader(timeout=20)
    time.sleep(1.0)
    return "seed %d, actions: %s" % (seed, ", ".join(actions))


def assert_chaos_survived(cl, load, what, timeout=30.0):
    """After a chaos run (`what` says which, for the messages): the servers converge,
    every write `load` saw acknowledged is on them, each connection's writes applied
    in order, more than 100 went through and none was refused. Returns the tree."""
    try:
        tree = converged(cl.nodes, timeout=timeout)
    except NotConverged as e:
        raise NotConverged("%s (%s)" % (e, what)) from None
    lost = sorted(p for p in load.acked if p not in tree)
    assert not lost, "%d of %d acknowledged writes lost, e.g. %s (%s)" % (len(lost), len(load.acked), lost[:10], what)
    if load.order_violations(tree):
        raise OrderViolation("%s (%s)" % (load.order_violations(tree)[:5], what))
    assert len(load.acked) > 100, "only %d writes acknowledged (%s)" % (len(load.acked), what)
    assert not load.refused and not load.protocol_errors, (load.refused, load.protocol_errors)
    return tree


def assert_register_linearizable(reg, tree, what):
    """After a chaos run: the register's history (Register) breaks no rule, and the
    converged `tree` ends at or past its last acknowledged write."""
    data, st = tree[reg.path]
    bad = reg.violations(final=(st[STAT.index("version")], data))
    assert not bad, "%s (%s; %s)" % (bad, reg.summary(), what)
    ok = sum(1 for r in reg.cas if r[3] == "ok")
    assert ok > 10 and len(reg.reads) > 10, "%s (%s)" % (reg.summary(), what)


def converged_children(nodes, path, timeout=20.0):
    """The full paths of `path`'s children once every server lists the same."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            sets = [children(n, path) for n in nodes]
            if all(s == sets[0] for s in sets[1:]):
                return {path.rstrip("/") + "/" + c for c in sets[0]}
            last = [len(s) for s in sets]
        except (OSError, w.Closed, AssertionError) as e:
            last = e
        if time.monotonic() > deadline:
            raise NotConverged("children of %s differ after %.0fs: %r" % (path, timeout, last))
        time.sleep(0.3)


def describe_differences(nodes, trees):
    if not trees:
        return "(could not dump every server)"
    lines = []
    base = trees[0]
    for n, t in zip(nodes[1:], trees[1:]):
        only_a = sorted(set(base) - set(t))[:5]
        only_b = sorted(set(t) - set(base))[:5]
        differ = sorted(p for p in set(base) & set(t) if base[p] != t[p])[:5]
        if only_a or only_b or differ:
            lines.append("%s vs %s: only on the first %s, only on the second %s, different %s"
                         % (nodes[0], n, only_a, only_b,
                            [(p, base[p], t[p]) for p in differ[:2]]))
    return "; ".join(lines) or "(equal now)"
