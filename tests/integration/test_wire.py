"""Raw-socket protocol tests (our own jute codec in zkwire.py).

Pins, byte for byte, what a ZooKeeper server answers on the wire:
- handshake: reply body 37 bytes with the readOnly byte iff the request had it (45-byte
  request body), 36 bytes for a 44-byte request; timeout clamped to [2, 20] * tickTime;
- ping (xid -2) reply header (-2, zxid, 0) with no body;
- unknown opcode 999: reply header (xid, zxid, -6 UNIMPLEMENTED), no body, then close;
- frame length > 1048575 or negative: close without a reply (before and after the
  handshake); other sessions unaffected; a 4-byte frame (header cut short) closes too;
- a request body cut short (truncated ustring / missing fields) gets MARSHALLINGERROR -5
  with no body and the connection stays usable; trailing junk after a record is ignored;
- invalid paths sent raw to create => -8 BADARGUMENTS (parent exists); note "/a//b" gives
  NONODE because the parent "/a/" is looked up first; empty/null ACL => -114 INVALIDACL
  even when the parent is missing;
- reconnect with lastZxidSeen ahead of the server: closed without reply; reconnect with a
  wrong password / unknown session: reply with timeOut 0, sessionId 0, 16 zero bytes
  (36 or 37 bytes), then close; the correct password gives the same session back;
- multi: success (create(1)/create2(15) sub-results both typed 1 with a path only in 3.8,
  check 13, setData 5 + Stat, delete 2) and failure (header err 0; -1/0 before, -1/code at,
  -1/-2 after the failing op), empty multi;
- replies strictly in request order for a pipelined burst of 100 mixed requests;
- closeSession: reply (xid, zxid, 0), no body, then close; ephemerals gone;
- watch notification frame layout (xid -1, state 3 SyncConnected) delivered before the
  reply of the write that triggered it on the same connection;
- four-letter words: ruok/srvr/stat/mntr/conf/envi/cons/isro/wchs/dirs shapes; a word not
  in the whitelist answers "<cmd> is not executed because it is not in the whitelist.".

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import re
import struct
import time

import pytest

import conftest
import zkwire as w
from zkwire import Dec


def _mk(conn, path, data=b"", flags=0):
    err, d = conn.call(w.OP_CREATE, w.create_body(path, data, flags=flags))
    assert err == 0, (path, err)
    return d.ustring()


# ---------------------------------------------------------------- handshake / framing

def test_handshake_with_readonly_byte_37(server):
    c = w.RawConn(server.port)
    try:
        body = w.connect_body(timeout_ms=10000, read_only=False)
        assert len(body) == 45
        c.send_raw(w.frame(body))
        hdr = c.recv_exact(4)
        assert struct.unpack(">i", hdr)[0] == 37
        reply = c.recv_exact(37)
        d = Dec(reply)
        assert d.int() == 0             # protocolVersion
        assert d.int() == 10000         # negotiated timeout
        assert d.long() != 0            # session id
        pw = d.buffer()
        assert len(pw) == 16
        assert d.bool() is False        # readOnly
        assert d.remaining() == 0
    finally:
        c.close()


def test_handshake_without_readonly_byte_36(server):
    c = w.RawConn(server.port)
    try:
        body = w.connect_body(timeout_ms=10000, read_only=None)
        assert len(body) == 44
        c.send_raw(w.frame(body))
        assert struct.unpack(">i", c.recv_exact(4))[0] == 36
        d = Dec(c.recv_exact(36))
        assert (d.int(), d.int()) == (0, 10000)
        assert d.long() != 0
        assert len(d.buffer()) == 16
        # still a working session
        c.events = []
        err, _ = c.call(w.OP_EXISTS, w.path_watch_body("/"))
        assert err == 0
    finally:
        c.close()


@pytest.mark.parametrize("req,expected", [(100, 4000), (4000, 4000), (40000, 40000),
                                          (10_000_000, 40000)])
def test_timeout_negotiation_clamped(server, req, expected):
    c = w.RawConn(server.port)
    try:
        r = c.handshake(timeout_ms=req)
        assert r["timeOut"] == expected
    finally:
        c.close()


def test_ping_reply(server):
    with w.session(server.port) as c:
        c.send_request(w.OP_PING, xid=-2)
        frame = c.recv_frame()
        assert len(frame) == 16
        xid, zxid, err = struct.unpack(">iqi", frame)
        assert (xid, err) == (-2, 0)
        assert zxid >= 0
        # a second ping on the same connection
        c.send_request(w.OP_PING, xid=-2)
        xid2, zxid2, err2 = struct.unpack(">iqi", c.recv_frame())
        assert (xid2, err2) == (-2, 0) and zxid2 >= zxid


def test_unknown_opcode_unimplemented_then_close(server):
    with w.session(server.port) as c:
        xid = c.send_request(999)
        frame = c.recv_frame()
        assert len(frame) == 16               # header only, no body
        rxid, _zxid, err = struct.unpack(">iqi", frame)
        assert rxid == xid
        assert err == w.UNIMPLEMENTED
        assert c.is_closed(5)


@pytest.mark.parametrize("length", [1048576, 2 * 1024 * 1024, 0x7fffffff, -1, -5])
def test_bad_frame_length_after_handshake_closes(server, length):
    other = w.session(server.port)
    try:
        _mk(other, "/bad-frame-probe-%d-%d" % (abs(length), time.monotonic_ns()), flags=1)
        with w.session(server.port) as c:
            c.send_raw(struct.pack(">i", length) + b"\0" * 64)
            assert c.is_closed(5)
        # the other session keeps working
        err, _ = other.call(w.OP_EXISTS, w.path_watch_body("/"))
        assert err == 0
    finally:
        other.close()


@pytest.mark.parametrize("length", [1048576, -1])
def test_bad_frame_length_before_handshake_closes(server, length):
    with w.RawConn(server.port) as c:
        c.send_raw(struct.pack(">i", length) + b"\0" * 64)
        assert c.is_closed(5)


def test_max_frame_length_is_accepted(server, root):
    # 1048575 is the largest legal frame: no close while the server waits for the bytes
    with w.session(server.port) as c:
        _mk(c, root)
        data = b"z" * (1048575 - 8 - (4 + len(root)) - 4 - 4)  # fill the frame exactly
        body = struct.pack(">ii", 1, w.OP_SETDATA) + w.setdata_body(root, data)
        assert len(body) == 1048575
        c.send_raw(w.frame(body))
        xid, _zxid, err, d = c.recv_reply()
        assert (xid, err) == (1, 0)
        assert d.stat()["dataLength"] == len(data)


def test_short_connect_request_closes(server):
    with w.RawConn(server.port) as c:
        c.send_raw(w.frame(b"\0" * 10))
        assert c.is_closed(5)


def test_frame_shorter_than_request_header_closes(server):
    with w.session(server.port) as c:
        c.send_raw(w.frame(struct.pack(">i", 1)))
        assert c.is_closed(5)


def test_truncated_body_marshalling_error_connection_survives(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        # create whose path claims 100 bytes but only 3 follow
        c.send_raw(w.frame(struct.pack(">ii", 7, w.OP_CREATE) + struct.pack(">i", 100) + b"/ab"))
        frame = c.recv_frame()
        assert len(frame) == 16
        xid, _z, err = struct.unpack(">iqi", frame)
        assert (xid, err) == (7, w.MARSHALLINGERROR)
        # getData with an empty body
        c.send_raw(w.frame(struct.pack(">ii", 8, w.OP_GETDATA)))
        xid, _z, err = struct.unpack(">iqi", c.recv_frame())
        assert (xid, err) == (8, w.MARSHALLINGERROR)
        # still usable, nothing was created
        c.xid = 8
        err, _ = c.call(w.OP_EXISTS, w.path_watch_body("/ab"))
        assert err == w.NONODE
        err, d = c.call(w.OP_EXISTS, w.path_watch_body(root))
        assert err == 0


def test_trailing_bytes_after_record_are_ignored(server, root):
    with w.session(server.port) as c:
        _mk(c, root, b"v")
        c.send_raw(w.frame(struct.pack(">ii", 1, w.OP_GETDATA) + w.path_watch_body(root)
                           + b"junkjunk"))
        xid, _z, err, d = c.recv_reply()
        assert (xid, err) == (1, 0)
        assert d.buffer() == b"v"


# ---------------------------------------------------------------- path / ACL validation

BAD_NAMES = ["", ".", "..", "a\x01", "a\x00b", "a\x7f", "a\x9f", "\U0001F600", "\ud800",
             "\uf8ff", "\ufff0", "\uffff"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_create_invalid_path_badarguments(server, root, name):
    # "" => the path ends with "/": "<root>/"
    with w.session(server.port) as c:
        _mk(c, root)
        err, d = c.call(w.OP_CREATE, w.create_body(root + "/" + name))
        assert err == w.BADARGUMENTS
        assert d.remaining() == 0
        err, d = c.call(w.OP_GETCHILDREN, w.path_watch_body(root))
        assert err == 0 and d.strings() == []


@pytest.mark.parametrize("path", ["noslash", "", "//", "/.", "/.."])
def test_create_invalid_path_top_level(server, path):
    with w.session(server.port) as c:
        err, d = c.call(w.OP_CREATE, w.create_body(path))
        assert err == w.BADARGUMENTS
        assert d.remaining() == 0


def test_double_slash_with_missing_parent_is_nonode(server, root):
    # ZooKeeper looks up the parent ("<root>/") before validating the full path
    with w.session(server.port) as c:
        _mk(c, root)
        err, _ = c.call(w.OP_CREATE, w.create_body(root + "//b"))
        assert err == w.NONODE


def test_sequential_with_trailing_slash_is_valid(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        assert _mk(c, root + "/", flags=2) == root + "/0000000000"
        assert _mk(c, root + "/x", flags=2) == root + "/x0000000001"


def test_valid_unusual_names(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        for name in ["ok b:c", "...", ".a", "\u00e9t\u00e9", "a-b_c=d"]:
            assert _mk(c, root + "/" + name) == root + "/" + name


@pytest.mark.parametrize("acls", [[], None], ids=["empty", "null"])
def test_create_invalid_acl(server, root, acls):
    with w.session(server.port) as c:
        # checked before the parent lookup: missing parent still gives INVALIDACL
        err, d = c.call(w.OP_CREATE, w.create_body(root + "/missing/x", acls=acls))
        assert err == w.INVALIDACL and d.remaining() == 0
        err, _ = c.call(w.OP_CREATE, w.create_body(root, acls=acls))
        assert err == w.INVALIDACL
        err, _ = c.call(w.OP_EXISTS, w.path_watch_body(root))
        assert err == w.NONODE


def test_create_bad_flags(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        for flags in (7, 8, -1):
            err, _ = c.call(w.OP_CREATE, w.create_body(root + "/f", flags=flags))
            assert err == w.BADARGUMENTS, flags


def test_delete_protected_nodes(server):
    with w.session(server.port) as c:
        for p in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
            err, _ = c.call(w.OP_DELETE, w.delete_body(p))
            assert err == w.BADARGUMENTS, p
        err, _ = c.call(w.OP_CREATE, w.create_body("/"))
        assert err == w.NODEEXISTS


# ---------------------------------------------------------------- sessions on the wire

def test_reconnect_lastzxid_ahead_is_closed(server):
    with w.RawConn(server.port) as c:
        c.send_raw(w.frame(w.connect_body(last_zxid=1 << 40, read_only=False)))
        assert c.is_closed(5)


@pytest.mark.parametrize("read_only,size", [(False, 37), (None, 36)])
def test_reconnect_wrong_password(server, root, read_only, size):
    a = w.session(server.port)
    try:
        eph = _mk(a, root, flags=1)
        b = w.RawConn(server.port)
        b.send_raw(w.frame(w.connect_body(session_id=a.session_id, passwd=b"x" * 16,
                                          read_only=read_only)))
        body = b.recv_frame()
        assert len(body) == size
        d = Dec(body)
        assert d.int() == 0 and d.int() == 0 and d.long() == 0
        assert d.buffer() == b"\0" * 16
        assert b.is_closed(5)
        b.close()
        # the session itself is still alive: the right password resumes it
        c = w.RawConn(server.port)
        r = c.handshake(session_id=a.session_id, passwd=a.passwd, read_only=False)
        assert r["sessionId"] == a.session_id and r["passwd"] == a.passwd
        assert r["timeOut"] == 10000
        c.events = []
        err, d = c.call(w.OP_EXISTS, w.path_watch_body(eph))
        assert err == 0 and d.stat()["ephemeralOwner"] == a.session_id
        c.call(w.OP_CLOSE)
        c.close()
    finally:
        a.close()


def test_reconnect_unknown_session(server):
    with w.RawConn(server.port) as c:
        r = c.handshake(session_id=0x1234, passwd=b"\0" * 16, read_only=False)
        assert (r["protocolVersion"], r["timeOut"], r["sessionId"]) == (0, 0, 0)
        assert r["passwd"] == b"\0" * 16 and r["readOnly"] is False
        assert c.is_closed(5)


def test_reconnect_moves_session_closes_old_connection(server, root):
    a = w.session(server.port)
    b = w.RawConn(server.port)
    try:
        eph = _mk(a, root, flags=1)
        r = b.handshake(session_id=a.session_id, passwd=a.passwd, read_only=False)
        assert r["sessionId"] == a.session_id
        assert a.is_closed(5)
        b.events = []
        err, d = b.call(w.OP_GETDATA, w.path_watch_body(eph))
        assert err == 0
        assert d.buffer() == b""
    finally:
        a.close()
        b.close()


def test_close_session_reply_then_close(server, root):
    with w.session(server.port) as keep:
        _mk(keep, root)
        c = w.session(server.port)
        eph = _mk(c, root + "/e", flags=1)
        xid = c.send_request(w.OP_CLOSE)
        frame = c.recv_frame()
        assert len(frame) == 16
        rxid, zxid, err = struct.unpack(">iqi", frame)
        assert (rxid, err) == (xid, 0) and zxid > 0
        assert c.is_closed(5)
        c.close()
        err, _ = keep.call(w.OP_EXISTS, w.path_watch_body(eph))
        assert err == w.NONODE
        # the closed session cannot be resumed
        with w.RawConn(server.port) as r:
            resp = r.handshake(session_id=c.session_id, passwd=c.passwd, read_only=False)
            assert (resp["timeOut"], resp["sessionId"]) == (0, 0)


# ---------------------------------------------------------------- multi encoding

def test_multi_failure_encoding(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        body = w.multi_body([
            (w.OP_CREATE, w.create_body(root + "/a")),
            (w.OP_SETDATA, w.setdata_body(root, b"x")),
            (w.OP_DELETE, w.delete_body(root + "/missing")),
            (w.OP_CREATE, w.create_body(root + "/b")),
            (w.OP_CHECK, w.delete_body(root, 0)),
        ])
        xid = c.send_request(w.OP_MULTI, body)
        rxid, _zxid, err, d = c.recv_reply()
        assert (rxid, err) == (xid, 0)
        raw = d.d[d.o:]
        res = w.parse_multi_response(raw)
        assert res == [(-1, 0, 0), (-1, 0, 0), (-1, w.NONODE, w.NONODE),
                       (-1, w.RUNTIMEINCONSISTENCY, w.RUNTIMEINCONSISTENCY),
                       (-1, w.RUNTIMEINCONSISTENCY, w.RUNTIMEINCONSISTENCY)]
        # exact bytes of one entry: type -1, done false, err -101, ErrorResponse -101
        assert raw[2 * 13:3 * 13] == struct.pack(">ibii", -1, 0, -101, -101)
        assert raw[-9:] == struct.pack(">ibi", -1, 1, -1)
        # nothing applied
        err, _ = c.call(w.OP_EXISTS, w.path_watch_body(root + "/a"))
        assert err == w.NONODE
        err, d = c.call(w.OP_EXISTS, w.path_watch_body(root))
        assert d.stat()["version"] == 0


def test_multi_failure_first_and_last(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        body = w.multi_body([(w.OP_CHECK, w.delete_body(root, 3)),
                             (w.OP_CREATE, w.create_body(root + "/a"))])
        c.send_request(w.OP_MULTI, body)
        _x, _z, err, d = c.recv_reply()
        assert err == 0
        assert w.parse_multi_response(d.d[d.o:]) == [
            (-1, w.BADVERSION, w.BADVERSION), (-1, w.RUNTIMEINCONSISTENCY, w.RUNTIMEINCONSISTENCY)]
        body = w.multi_body([(w.OP_CREATE, w.create_body(root + "/a")),
                             (w.OP_CREATE, w.create_body(root + "/a"))])
        c.send_request(w.OP_MULTI, body)
        _x, _z, err, d = c.recv_reply()
        assert err == 0
        assert w.parse_multi_response(d.d[d.o:]) == [(-1, 0, 0), (-1, w.NODEEXISTS, w.NODEEXISTS)]


def test_multi_success_encoding(server, root):
    with w.session(server.port) as c:
        body = w.multi_body([
            (w.OP_CREATE, w.create_body(root, b"r")),
            (w.OP_CREATE2, w.create_body(root + "/a")),
            (w.OP_CHECK, w.delete_body(root, 0)),
            (w.OP_SETDATA, w.setdata_body(root, b"xy")),
            (w.OP_CREATE, w.create_body(root + "/s-", flags=2)),
            (w.OP_DELETE, w.delete_body(root + "/a")),
        ])
        c.send_request(w.OP_MULTI, body)
        _x, zxid, err, d = c.recv_reply()
        assert err == 0
        res = w.parse_multi_response(d.d[d.o:])
        assert [r[:2] for r in res] == [(1, 0), (1, 0), (13, 0), (5, 0), (1, 0), (2, 0)]
        assert res[0][2] == root and res[1][2] == root + "/a"
        assert res[4][2] == root + "/s-0000000001"
        st = res[3][2]
        # every sub-op shares the multi's zxid
        assert st["czxid"] == st["mzxid"] == zxid
        assert st["version"] == 1 and st["dataLength"] == 2
        assert st["numChildren"] == 1 and st["cversion"] == 1
        err, d = c.call(w.OP_GETCHILDREN2, w.path_watch_body(root))
        assert err == 0
        assert d.strings() == ["s-0000000001"]
        st2 = d.stat()
        # visible cversion = 2*creates - numChildren (deletes count too): 2*2-1
        assert st2["pzxid"] == zxid and st2["cversion"] == 3 and st2["numChildren"] == 1


def test_empty_multi(server):
    with w.session(server.port) as c:
        c.send_request(w.OP_MULTI, w.multi_body([]))
        _x, _z, err, d = c.recv_reply()
        assert err == 0
        assert d.d[d.o:] == struct.pack(">ibi", -1, 1, -1)


# ---------------------------------------------------------------- ordering / watches

def test_pipelined_burst_replies_in_order(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        reqs = []
        expect = []
        for i in range(25):
            p = "%s/n%02d" % (root, i)
            reqs.append((w.OP_CREATE, w.create_body(p, b"d%d" % i)))
            expect.append(0)
            reqs.append((w.OP_GETDATA, w.path_watch_body(p)))
            expect.append(0)
            reqs.append((w.OP_EXISTS, w.path_watch_body(p + "/nope")))
            expect.append(w.NONODE)
            reqs.append((w.OP_SETDATA, w.setdata_body(p, b"x", version=5 if i % 2 else 0)))
            expect.append(w.BADVERSION if i % 2 else 0)
        assert len(reqs) == 100
        payload = b"".join(w.frame(struct.pack(">ii", 1000 + i, op) + body)
                           for i, (op, body) in enumerate(reqs))
        c.send_raw(payload)
        last = 0
        for i in range(100):
            xid, zxid, err, d = c.recv_reply()
            assert xid == 1000 + i
            assert err == expect[i], (i, err)
            assert zxid >= last
            last = zxid
            if reqs[i][0] == w.OP_GETDATA:
                assert d.buffer() == b"d%d" % (i // 4)
            if err != 0:
                assert d.remaining() == 0
        c.xid = 2000
        err, d = c.call(w.OP_GETCHILDREN, w.path_watch_body(root))
        assert sorted(d.strings()) == ["n%02d" % i for i in range(25)]


def test_watch_notification_layout_and_order(server, root):
    with w.session(server.port) as c:
        _mk(c, root, b"a")
        err, _ = c.call(w.OP_GETDATA, w.path_watch_body(root, True))
        assert err == 0
        xid = c.send_request(w.OP_SETDATA, w.setdata_body(root, b"b"))
        ev = c.recv_frame()      # the notification comes before the setData reply
        d = Dec(ev)
        assert d.int() == -1
        ev_zxid = d.long()
        assert d.int() == 0
        assert (d.int(), d.int(), d.ustring()) == (3, 3, root)  # NodeDataChanged, SyncConnected
        assert d.remaining() == 0
        rxid, zxid, err, d = c.recv_reply()
        assert (rxid, err) == (xid, 0)
        assert ev_zxid in (-1, zxid)   # 3.8 sends -1; 3.9 sends the txn zxid
        # exists watch on a missing node -> NodeCreated
        err, _ = c.call(w.OP_EXISTS, w.path_watch_body(root + "/c", True))
        assert err == w.NONODE
        c.events = []
        _mk(c, root + "/c")
        assert c.events == [(1, 3, root + "/c")]


def test_event_before_ping_after_another_sessions_write(server, root):
    """A write acknowledged to session a fired a watch of session p: p's next ping must
    be answered after that event, whichever worker p and a live on (CI once caught a
    ping overtaking the event when they were on different workers)."""
    with w.session(server.port) as a:
        _mk(a, root, b"0")
        watchers = [w.session(server.port) for _ in range(4)]
        try:
            for i in range(60):
                for p in watchers:
                    err, _ = p.call(w.OP_GETDATA, w.path_watch_body(root, True))
                    assert err == 0
                err, _ = a.call(w.OP_SETDATA, w.setdata_body(root, b"%d" % i))
                assert err == 0
                for n, p in enumerate(watchers):
                    p.send_request(w.OP_PING, xid=-2)
                    frames = []
                    while True:
                        d = Dec(p.recv_frame())
                        xid = d.int()
                        frames.append(xid)
                        if xid == -2:
                            break
                    assert frames == [-1, -2], (i, n, frames)
        finally:
            for p in watchers:
                p.close()


# ---------------------------------------------------------------- four-letter words

def test_4lw_ruok(server):
    assert server.four_letter("ruok") == "imok"


def test_4lw_srvr(server):
    out = server.four_letter("srvr")
    lines = out.split("\n")
    assert lines[-1] == ""
    assert re.fullmatch(r"Zookeeper version: [A-Za-z0-9.${}-]+, built on \S+ \S+ \S+", lines[0])
    assert re.fullmatch(r"Latency min/avg/max: \d+/\d+\.\d+(E-\d+)?/\d+", lines[1])
    assert re.fullmatch(r"Received: \d+", lines[2])
    assert re.fullmatch(r"Sent: \d+", lines[3])
    assert re.fullmatch(r"Connections: \d+", lines[4])
    assert re.fullmatch(r"Outstanding: \d+", lines[5])
    assert re.fullmatch(r"Zxid: 0x[0-9a-f]+", lines[6])
    assert lines[7] == "Mode: " + server.expected_mode
    assert re.fullmatch(r"Node count: \d+", lines[8])
    assert int(lines[8].split()[-1]) >= 4   # /, /zookeeper, /zookeeper/quota, /zookeeper/config


def test_4lw_every_cluster_role(server, request):
    """In an ensemble srvr, stat and mntr tell each server's role; the leader adds its
    proposal sizes (srvr, stat) and its learners (mntr), as ZooKeeper 3.8 does."""
    if server.expected_mode == "standalone":
        pytest.skip("one server: test_4lw_srvr, test_4lw_mntr")
    lead = server.cluster.wait_leader()
    deadline = time.monotonic() + 10
    while True:  # the leader counts a follower synced once it replicates to it
        mntr = dict(ln.split("\t", 1) for ln in lead.four_letter("mntr").splitlines())
        if mntr.get("zk_synced_followers") == "2" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for n in server.nodes:
        role = "leader" if n is lead else "follower"
        srvr = n.four_letter("srvr").split("\n")
        stat = n.four_letter("stat").split("\n")
        assert srvr[7] == "Mode: " + role and "Mode: " + role in stat, (n, srvr)
        assert srvr[8].startswith("Node count: ")
        i = stat.index(srvr[8])
        if role == "leader":
            for text in (srvr, stat[i:]):
                assert re.fullmatch(r"Proposal sizes last/min/max: -?\d+/-?\d+/-?\d+", text[1 + text.index(srvr[8])]), text
                assert text[2 + text.index(srvr[8])] == "" == text[-1], text
        else:
            assert srvr[9:] == [""] and stat[i + 1:] == [""], (srvr, stat)
        kv = dict(ln.split("\t", 1) for ln in n.four_letter("mntr").splitlines())
        assert kv["zk_server_state"] == role
        if role == "leader":
            assert (kv["zk_learners"], kv["zk_synced_followers"], kv["zk_pending_syncs"]) == ("2", "2", "0")
        else:
            assert not {"zk_learners", "zk_synced_followers", "zk_pending_syncs"} & set(kv), n


def test_4lw_stat_lists_clients(server):
    with w.session(server.port):
        out = server.four_letter("stat")
    lines = out.split("\n")
    assert lines[0].startswith("Zookeeper version: ")
    assert lines[1] == "Clients:"
    i = 2
    while lines[i]:
        assert re.fullmatch(r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+\)", lines[i])
        i += 1
    assert i >= 4   # our session + the stat connection itself
    assert re.fullmatch(r"Latency min/avg/max: \d+/\d+\.\d+(E-\d+)?/\d+", lines[i + 1])
    assert "Mode: " + server.expected_mode in lines
    assert any(re.fullmatch(r"Node count: \d+", l) for l in lines)


def test_4lw_mntr(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        _mk(c, root + "/e", flags=1)
        out = server.four_letter("mntr")
    kv = {}
    for line in out.rstrip("\n").split("\n"):
        k, v = line.split("\t", 1)
        kv[k] = v
    for key in ("zk_version", "zk_server_state", "zk_avg_latency", "zk_max_latency",
                "zk_min_latency", "zk_packets_received", "zk_packets_sent",
                "zk_num_alive_connections", "zk_outstanding_requests", "zk_znode_count",
                "zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size",
                "zk_open_file_descriptor_count", "zk_max_file_descriptor_count"):
        assert key in kv, key
    assert kv["zk_server_state"] == server.expected_mode
    assert re.match(r"\d+\.\d+", kv["zk_version"])
    assert int(kv["zk_znode_count"]) >= 6
    assert int(kv["zk_ephemerals_count"]) >= 1
    assert int(kv["zk_num_alive_connections"]) >= 1
    float(kv["zk_avg_latency"])


def test_4lw_conf(server):
    out = server.four_letter("conf")
    lines = out.rstrip("\n").split("\n")
    kv = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("server."))
    assert kv["clientPort"] == str(server.port)
    assert kv["tickTime"] == "2000"
    assert kv["minSessionTimeout"] == "4000"
    assert kv["maxSessionTimeout"] == "40000"
    assert "dataDir" in kv
    if server.expected_mode != "standalone":
        # a quorum server adds its id, ports and the membership, then the config version
        me = server.node
        assert (kv["serverId"], kv["quorumPort"], kv["electionPort"], kv["peerType"]) == \
            (str(me.sid), str(me.peer_port), str(me.election_port), "0")
        i = lines.index("membership: ")
        assert lines[i + 1:i + 1 + len(server.nodes)] == [
            "server.%d=%s:%d:%d:participant;%s:%d" % (n.sid, n.host, n.peer_port, n.election_port,
                                                      n.host, n.client_port) for n in server.nodes]
        assert lines[i + 1 + len(server.nodes)] == "version=0"


def test_4lw_envi(server):
    out = server.four_letter("envi")
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "Environment:"
    kv = dict(line.split("=", 1) for line in lines[1:])
    assert re.match(r"\d+\.\d+\.\d+", kv["zookeeper.version"])   # kazoo server_version()
    for k in ("host.name", "os.name", "os.arch", "os.version", "user.name"):
        assert k in kv


def test_4lw_cons(server):
    with w.session(server.port) as c:
        out = server.four_letter("cons")
        sid = "0x%x" % c.session_id
    assert out.endswith("\n\n")
    lines = out.rstrip("\n").split("\n")
    pat = (r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+,sid=(0x[0-9a-f]+),lop=\w+,"
           r"est=\d+,to=\d+,lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,minlat=\d+,"
           r"avglat=\d+,maxlat=\d+\)")
    sids = [m.group(1) for m in (re.fullmatch(pat, l) for l in lines) if m]
    assert sid in sids


def test_4lw_isro_wchs_dirs(server):
    assert server.four_letter("isro") == "rw"
    assert re.fullmatch(r"\d+ connections watching \d+ paths\nTotal watches:\d+\n",
                        server.four_letter("wchs"))
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", server.four_letter("dirs"))


def test_4lw_unknown_word_closes(server):
    assert server.four_letter("xyzw") == ""


def test_4lw_not_whitelisted(server, server_pool, request):
    srv = server_pool.new_like(server, request, whitelist="ruok,srvr")
    try:
        assert srv.four_letter("ruok") == "imok"
        assert srv.four_letter("srvr").startswith("Zookeeper version: ")
        for cmd in ("mntr", "stat", "envi", "gtmk"):
            assert srv.four_letter(cmd) == \
                "%s is not executed because it is not in the whitelist.\n" % cmd
    finally:
        srv.stop()


def test_a_children_listing_larger_than_a_request_comes_whole(server):
    """A getChildren reply may be far larger than jute.maxbuffer (the server's request
    limit): ZooKeeper sends it whole, and so must we (never a truncated record)."""
    from kazoo.client import KazooClient
    k = KazooClient(hosts=server.hosts)
    k.start()
    try:
        k.create("/big-listing")
        name = "c" * 200
        n = 0
        for batch in range(24):
            t = k.transaction()
            for i in range(500):
                t.create("/big-listing/%s-%05d" % (name, n))
                n += 1
            results = t.commit()
            assert all(isinstance(r, str) for r in results), results[:3]
        kids = k.get_children("/big-listing")  # 12,000 x 210 bytes: about 2.5 MB
        assert len(kids) == n and sorted(kids)[0] == "%s-%05d" % (name, 0)
    finally:
        k.stop()
        k.close()
