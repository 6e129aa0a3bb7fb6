"""Helpers for the crash (kill -9 under load) and full-disk tests.

* ``DurableServer``: the conftest ``Server`` started with ``forceSync=yes`` (the conftest
  default is ``no``), metrics off and optional extra command-line options (ringkeeper) or
  zoo.cfg lines (zookeeper).
* ``Writer``: one thread, one raw session (zkwire), requests pipelined ``window`` deep.
  It sends a seeded mix of create2 (unique persistent paths), create2 sequential and
  setData (on nodes only this writer touches) and records, in sending order, every request
  and whether and how it was acknowledged (reply zxid, Stat, created name).
* ``pipelined``: many read requests on one connection, ``window`` in flight.
* ``srvr_zxid``: the ``Zxid:`` line of the ``srvr`` four-letter word.
"""
import collections
import os
import random
import re
import signal
import socket
import threading
import time

import conftest
import zkwire as w

CREATE, SEQ, SET = "create", "seq", "set"
FLAG_SEQUENTIAL = 2


class DurableServer(conftest.Server):
    def __init__(self, target, workdir, extra_args=(), zoo_cfg_lines=(), **kw):
        super().__init__(target, workdir, **kw)
        self.extra_args = list(extra_args)
        self.zoo_cfg_lines = list(zoo_cfg_lines)

    def _command(self):
        cmd = super()._command()
        if self.target == "ringkeeper":
            cmd = [a for a in cmd if not a.startswith("--forceSync=")]
            cmd += ["--forceSync=yes", "--metricsPort=0"] + self.extra_args
        elif self.target == "zookeeper":
            cfg = os.path.join(self.workdir, "zoo.cfg")
            with open(cfg) as f:
                text = f.read().replace("forceSync=no", "forceSync=yes")
            with open(cfg, "w") as f:
                f.write(text + "".join(l + "\n" for l in self.zoo_cfg_lines))
        return cmd

    def kill9(self):
        """SIGKILL the server (our own child, by pid) and reap it."""
        self.stop(signal.SIGKILL)

    def start_again(self, timeout=30.0):
        """Start on the same port/dataDir once the port can be bound again."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        return self.start(timeout)


def srvr_zxid(port, timeout=3.0):
    out = w.four_letter(port, "srvr", timeout)
    m = re.search(r"^Zxid: (0x[0-9a-fA-F]+)\s*$", out, re.M)
    if not m:
        raise AssertionError("no Zxid line in srvr output: %r" % out)
    return int(m.group(1), 16)


def open_session(port, timeout_ms=30000, sock_timeout=10.0):
    c = w.RawConn(port, timeout=sock_timeout)
    c.events = []
    c.handshake(read_only=False, timeout_ms=timeout_ms)
    return c


def close_session(c):
    try:
        c.send_request(w.OP_CLOSE)
        c.recv_frame()
    except (OSError, w.Closed):
        pass
    c.close()


def pipelined(conn, reqs, window=64):
    """reqs: list of (op, body). Returns list of (err, zxid, Dec) in request order."""
    out = []
    pending = collections.deque()
    i = 0
    while i < len(reqs) or pending:
        while i < len(reqs) and len(pending) < window:
            op, body = reqs[i]
            pending.append(conn.send_request(op, body))
            i += 1
        xid, zxid, err, d = conn.recv_reply()
        want = pending.popleft()
        if xid != want:
            raise AssertionError("reply xid %d, expected %d (replies out of order)" % (xid, want))
        out.append((err, zxid, d))
    return out


class Op:
    __slots__ = ("kind", "path", "data", "xid", "acked", "err", "zxid", "stat", "name", "idx")

    def __init__(self, kind, path, data):
        self.kind = kind
        self.path = path          # create: the full path; seq: the prefix; set: the node
        self.data = data
        self.xid = None
        self.acked = False
        self.err = None
        self.zxid = None
        self.stat = None
        self.name = None          # the created path (create / seq) from the reply
        self.idx = None           # set: 1-based position among this cycle's sets on the node


class Writer(threading.Thread):
    """Pipelined writer. ``ops`` lists every request it tried to send, in sending order."""

    def __init__(self, port, tid, cycle, seed, create_parent, seq_prefix, set_nodes,
                 window=16, max_creates=800, max_seqs=150, max_ops=200000, duration=10.0):
        super().__init__(name="writer-%d" % tid, daemon=True)
        self.port = port
        self.tid = tid
        self.cycle = cycle
        self.rng = random.Random(seed)
        self.create_parent = create_parent
        self.seq_prefix = seq_prefix
        self.set_nodes = list(set_nodes)
        self.window = window
        self.max_creates = max_creates
        self.max_seqs = max_seqs
        self.max_ops = max_ops
        self.duration = duration
        self.ops = []
        self.sets_per_node = collections.Counter()
        self.started = threading.Event()
        self.stop_flag = threading.Event()
        self.end_reason = None
        self.protocol_errors = []

    def _next(self, n):
        r = self.rng.random()
        if r < 0.35 and self._ncreate < self.max_creates:
            self._ncreate += 1
            path = "%s/t%d-%d" % (self.create_parent, self.tid, n)
            data = b"c:%d:%d:%d:" % (self.cycle, self.tid, n) + b"x" * self.rng.randrange(0, 64)
            return Op(CREATE, path, data)
        if r < 0.5 and self._nseq < self.max_seqs:
            self._nseq += 1
            data = b"s:%d:%d:%d" % (self.cycle, self.tid, n)
            return Op(SEQ, self.seq_prefix, data)
        node = self.set_nodes[n % len(self.set_nodes)]
        self.sets_per_node[node] += 1
        op = Op(SET, node, b"v:%d:%d:%d:" % (self.cycle, self.tid, n)
                + b"y" * self.rng.randrange(0, 32))
        op.idx = self.sets_per_node[node]
        return op

    @staticmethod
    def _body(op):
        if op.kind == CREATE:
            return w.OP_CREATE2, w.create_body(op.path, op.data)
        if op.kind == SEQ:
            return w.OP_CREATE2, w.create_body(op.path, op.data, flags=FLAG_SEQUENTIAL)
        return w.OP_SETDATA, w.setdata_body(op.path, op.data, -1)

    def run(self):
        self._ncreate = 0
        self._nseq = 0
        try:
            conn = open_session(self.port, sock_timeout=5.0)
        except (OSError, w.Closed, ValueError, AssertionError) as e:
            self.end_reason = "connect failed: %r" % e
            self.started.set()
            return
        self.started.set()
        pending = collections.deque()
        deadline = time.monotonic() + self.duration
        n = 0
        try:
            while True:
                if (not self.stop_flag.is_set() and n < self.max_ops
                        and len(pending) < self.window and time.monotonic() < deadline):
                    op = self._next(n)
                    n += 1
                    self.ops.append(op)      # recorded before sending: may have been applied
                    opcode, body = self._body(op)
                    op.xid = conn.send_request(opcode, body)
                    pending.append(op)
                    continue
                if not pending:
                    self.end_reason = "done"
                    break
                xid, zxid, err, d = conn.recv_reply()
                op = pending.popleft()
                if xid != op.xid:
                    self.protocol_errors.append("reply xid %d for request xid %d" % (xid, op.xid))
                    self.end_reason = "protocol error"
                    break
                op.err = err
                op.zxid = zxid
                if err == 0:
                    if op.kind in (CREATE, SEQ):
                        op.name = d.ustring()
                    op.stat = d.stat()
                    op.acked = True
        except (OSError, w.Closed, ValueError) as e:
            self.end_reason = "connection ended: %r" % e
        finally:
            conn.close()

    # -- views --------------------------------------------------------------
    def acked(self, kind=None):
        return [o for o in self.ops if o.acked and (kind is None or o.kind == kind)]

    def errors(self):
        return [o for o in self.ops if o.err not in (None, 0)]
