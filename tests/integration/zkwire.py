"""Tiny jute encoder/decoder and raw ZooKeeper-protocol client for the wire tests.

Our own minimal implementation: just enough of the jute records (big-endian ints,
longs, booleans, ustrings, buffers, vectors, Stat, ACL) and of the framing to drive a
server byte by byte and to check the exact bytes it answers with.
"""
import socket
import struct
import time

# opcodes
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GETDATA = 4
OP_SETDATA = 5
OP_GETCHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GETCHILDREN2 = 12
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_CLOSE = -11
OP_ERROR = -1

# error codes
OK = 0
RUNTIMEINCONSISTENCY = -2
MARSHALLINGERROR = -5
UNIMPLEMENTED = -6
BADARGUMENTS = -8
NONODE = -101
BADVERSION = -103
NODEEXISTS = -110
NOTEMPTY = -111
INVALIDACL = -114

OPEN_ACL = [(31, "world", "anyone")]

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion",
               "aversion", "ephemeralOwner", "dataLength", "numChildren", "pzxid")
STAT_FMT = ">qqqqiiiqiiq"
STAT_LEN = struct.calcsize(STAT_FMT)  # 68


class Enc:
    def __init__(self):
        self.b = bytearray()

    def int(self, v):
        self.b += struct.pack(">i", v)
        return self

    def long(self, v):
        self.b += struct.pack(">q", v)
        return self

    def bool(self, v):
        self.b += b"\x01" if v else b"\x00"
        return self

    def buffer(self, v):
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.b += v
        return self

    def ustring(self, v):
        if v is None:
            return self.int(-1)
        if isinstance(v, str):
            v = v.encode("utf-8", "surrogatepass")
        return self.buffer(v)

    def acls(self, acls):
        if acls is None:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).ustring(scheme).ustring(ident)
        return self

    def bytes(self):
        return bytes(self.b)


class Dec:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def remaining(self):
        return len(self.d) - self.o

    def _take(self, n):
        if self.o + n > len(self.d):
            raise ValueError("short record: need %d at %d of %d" % (n, self.o, len(self.d)))
        v = self.d[self.o:self.o + n]
        self.o += n
        return v

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1) != b"\x00"

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        return bytes(self._take(n))

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def stat(self):
        return dict(zip(STAT_FIELDS, struct.unpack(STAT_FMT, self._take(STAT_LEN))))

    def strings(self):
        n = self.int()
        return [self.ustring() for _ in range(max(n, 0))]


def frame(body):
    return struct.pack(">i", len(body)) + body


def connect_body(timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
                 last_zxid=0, read_only=None, protocol_version=0):
    e = Enc().int(protocol_version).long(last_zxid).int(timeout_ms).long(session_id).buffer(passwd)
    if read_only is not None:
        e.bool(read_only)
    return e.bytes()


def create_body(path, data=b"", acls=OPEN_ACL, flags=0):
    return Enc().ustring(path).buffer(data).acls(acls).int(flags).bytes()


def path_body(path):
    return Enc().ustring(path).bytes()


def path_watch_body(path, watch=False):
    return Enc().ustring(path).bool(watch).bytes()


def delete_body(path, version=-1):
    return Enc().ustring(path).int(version).bytes()


def setdata_body(path, data, version=-1):
    return Enc().ustring(path).buffer(data).int(version).bytes()


def multi_body(ops):
    """ops: list of (type, body_bytes)."""
    e = Enc()
    for t, body in ops:
        e.int(t).bool(False).int(-1)
        e.b += body
    e.int(-1).bool(True).int(-1)
    return e.bytes()


def parse_multi_response(body):
    """Returns list of (type, err, payload Dec-consumed dict or None)."""
    d = Dec(body)
    out = []
    while True:
        t = d.int()
        done = d.bool()
        err = d.int()
        if done:
            assert t == -1 and err == -1, (t, err)
            break
        if t == OP_ERROR:
            out.append((t, err, d.int()))
        elif t == OP_CREATE:
            out.append((t, err, d.ustring()))
        elif t == OP_CREATE2:
            out.append((t, err, (d.ustring(), d.stat())))
        elif t == OP_SETDATA:
            out.append((t, err, d.stat()))
        elif t in (OP_DELETE, OP_CHECK):
            out.append((t, err, None))
        else:
            raise ValueError("unexpected multi result type %d" % t)
    assert d.remaining() == 0, "trailing bytes in multi response"
    return out


class Closed(Exception):
    pass


class RawConn:
    """A raw TCP connection speaking framed jute."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.xid = 0
        self.session_id = None
        self.passwd = None
        self.timeout_ms = None
        self.last_zxid = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n, deadline=None):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        hdr = self.recv_exact(4)
        n = struct.unpack(">i", hdr)[0]
        return self.recv_exact(n)

    def is_closed(self, wait=3.0):
        """True if the peer closes the connection (EOF/RST) within `wait` s without
        sending any byte; raises AssertionError if data arrives instead."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(5.0)
        if data:
            raise AssertionError("expected close, got %d bytes: %r" % (len(data), data[:64]))
        return True

    def handshake(self, read_only=True, **kw):
        self.send_raw(frame(connect_body(read_only=read_only, **kw)))
        body = self.recv_frame()
        d = Dec(body)
        resp = {"raw": body, "protocolVersion": d.int(), "timeOut": d.int(),
                "sessionId": d.long(), "passwd": d.buffer()}
        if d.remaining():
            resp["readOnly"] = d.bool()
        assert d.remaining() == 0
        self.session_id = resp["sessionId"]
        self.passwd = resp["passwd"]
        self.timeout_ms = resp["timeOut"]
        return resp

    def send_request(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_raw(frame(struct.pack(">ii", xid, op) + body))
        return xid

    def recv_reply(self, skip_watches=True):
        """Returns (xid, zxid, err, Dec of body). Watch events (xid -1) are skipped
        and collected in self.events if skip_watches."""
        while True:
            body = self.recv_frame()
            d = Dec(body)
            xid, zxid, err = d.int(), d.long(), d.int()
            if xid == -1 and skip_watches:
                self.events.append((d.int(), d.int(), d.ustring()))
                continue
            if zxid > self.last_zxid:
                self.last_zxid = zxid
            return xid, zxid, err, d

    events = None

    def call(self, op, body=b""):
        if self.events is None:
            self.events = []
        xid = self.send_request(op, body)
        rxid, zxid, err, d = self.recv_reply()
        assert rxid == xid, (rxid, xid)
        return err, d


def session(port, host="127.0.0.1", **kw):
    c = RawConn(port, host=host)
    c.events = []
    c.handshake(**kw)
    return c


def read_to_eof(s, bufsize=65536):
    """Everything a connected socket receives until the peer's FIN."""
    out = bytearray()
    while True:
        chunk = s.recv(bufsize)
        if not chunk:
            return bytes(out)
        out += chunk


def exchange(port, data, timeout=5.0, host="127.0.0.1"):
    """Sends data on a fresh connection and reads until the server closes it; returns
    (the bytes read, whether the server closed before `timeout`). A recv that waits
    longer than `timeout` raises socket.timeout."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        out = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return bytes(out), True
            if not chunk:
                return bytes(out), True
            out += chunk
        return bytes(out), False
    finally:
        s.close()


def four_letter(port, word, timeout=5.0, host="127.0.0.1"):
    out, _ = exchange(port, word.encode() if isinstance(word, str) else word, timeout, host)
    return out.decode("utf-8", "replace")
