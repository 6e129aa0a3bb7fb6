"""Raw-socket tests of the newer / less common opcodes.

Pins:
- getEphemerals (103): own session's ephemerals under a string prefix;
- getAllChildrenNumber (104): count of all descendants, NONODE when missing;
- whoAmI (107): [("ip", "127.0.0.1")] for an unauthenticated connection;
- checkWatches (17) / removeWatches (18): NOWATCHER -121 when the connection holds no such
  watch, OK (no body) when it does; a removed watch never fires;
- addWatch (106): reply body is a 4-byte int 0; PERSISTENT_RECURSIVE on P fires
  NodeCreated/NodeDataChanged/NodeDeleted for descendants (no NodeChildrenChanged) and
  keeps firing; PERSISTENT fires NodeChildrenChanged + data events for P itself; one event
  per connection when several watches match; addWatch on a missing path is OK;
- createTTL (21) with extended types disabled (default): -6 UNIMPLEMENTED, connection stays;
- createContainer (19): Create2Response; the Stat reports ephemeralOwner 0 (the container
  marker is hidden from clients);
- create2 (15): path + Stat with czxid == reply zxid;
- getACL/setACL: aversion bump, INVALIDACL for unknown scheme / digest id without ':' /
  auth ACL without credentials, duplicate ACL entries removed; a READ-only ACL makes
  setData NOAUTH -102;
- SetWatches (101) after reconnect: data watch on a node changed since relativeZxid =>
  NodeDataChanged at once; on a deleted node => NodeDeleted; exist watch on a node that now
  exists => NodeCreated; child watch with pzxid > relativeZxid => NodeChildrenChanged;
  unchanged => registered and fires later; reply (-8, zxid, 0) after the events.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import struct

import zkwire as w
from zkwire import Enc

NOWATCHER = -121
NOAUTH = -102


def _mk(c, path, data=b"", flags=0, acls=w.OPEN_ACL):
    err, d = c.call(w.OP_CREATE, w.create_body(path, data, acls=acls, flags=flags))
    assert err == 0, (path, err)
    return d.ustring()


def test_get_ephemerals(server, root):
    with w.session(server.port) as c, w.session(server.port) as other:
        _mk(c, root)
        _mk(c, root + "/a")
        _mk(c, root + "/a/e1", flags=1)
        _mk(c, root + "/e2", flags=1)
        _mk(other, root + "/o", flags=1)
        err, d = c.call(103, w.path_body(root))
        assert err == 0
        assert sorted(d.strings()) == [root + "/a/e1", root + "/e2"]
        err, d = c.call(103, w.path_body(root + "/a"))
        assert err == 0 and d.strings() == [root + "/a/e1"]
        err, d = other.call(103, w.path_body(root))
        assert err == 0 and d.strings() == [root + "/o"]


def test_get_all_children_number(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        _mk(c, root + "/a")
        _mk(c, root + "/a/b")
        _mk(c, root + "/c")
        err, d = c.call(104, w.path_body(root))
        assert err == 0 and d.int() == 3 and d.remaining() == 0
        err, d = c.call(104, w.path_body(root + "/c"))
        assert err == 0 and d.int() == 0
        err, _ = c.call(104, w.path_body(root + "/missing"))
        assert err == w.NONODE


def test_who_am_i(server):
    with w.session(server.port) as c:
        err, d = c.call(107)
        assert err == 0
        n = d.int()
        assert [(d.ustring(), d.ustring()) for _ in range(n)] == [("ip", "127.0.0.1")]


def test_check_and_remove_watches(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        for op in (17, 18):
            err, d = c.call(op, Enc().ustring(root).int(3).bytes())
            assert err == NOWATCHER and d.remaining() == 0
        err, _ = c.call(w.OP_GETDATA, w.path_watch_body(root, True))
        assert err == 0
        err, d = c.call(17, Enc().ustring(root).int(2).bytes())     # data watch present
        assert err == 0 and d.remaining() == 0
        err, _ = c.call(17, Enc().ustring(root).int(1).bytes())     # no child watch
        assert err == NOWATCHER
        err, d = c.call(18, Enc().ustring(root).int(2).bytes())
        assert err == 0 and d.remaining() == 0
        err, _ = c.call(17, Enc().ustring(root).int(2).bytes())
        assert err == NOWATCHER
        c.events = []
        err, _ = c.call(w.OP_SETDATA, w.setdata_body(root, b"x"))
        assert err == 0
        assert c.events == []


def test_add_watch_persistent_recursive(server, root):
    with w.session(server.port) as c, w.session(server.port) as other:
        _mk(c, root)
        _mk(c, root + "/a")
        err, d = c.call(106, Enc().ustring(root).int(1).bytes())
        assert err == 0 and d.remaining() == 4 and d.int() == 0
        c.events = []
        _mk(other, root + "/a/x")
        other.call(w.OP_SETDATA, w.setdata_body(root + "/a/x", b"q"))
        other.call(w.OP_DELETE, w.delete_body(root + "/a/x"))
        other.call(w.OP_SETDATA, w.setdata_body(root, b"r"))
        # round trip on c so every event has been delivered before we look
        c.call(w.OP_EXISTS, w.path_watch_body("/"))
        assert c.events == [(1, 3, root + "/a/x"), (3, 3, root + "/a/x"),
                            (2, 3, root + "/a/x"), (3, 3, root)]


def test_add_watch_persistent(server, root):
    with w.session(server.port) as c, w.session(server.port) as other:
        _mk(c, root)
        err, d = c.call(106, Enc().ustring(root).int(0).bytes())
        assert err == 0 and d.int() == 0
        c.events = []
        _mk(other, root + "/y")
        other.call(w.OP_SETDATA, w.setdata_body(root + "/y", b"q"))   # not P itself
        other.call(w.OP_SETDATA, w.setdata_body(root, b"1"))
        other.call(w.OP_SETDATA, w.setdata_body(root, b"2"))          # still armed
        c.call(w.OP_EXISTS, w.path_watch_body("/"))
        assert c.events == [(4, 3, root), (3, 3, root), (3, 3, root)]
        # a standard data watch on the same path: still one event per change
        c.call(w.OP_GETDATA, w.path_watch_body(root, True))
        c.events = []
        other.call(w.OP_SETDATA, w.setdata_body(root, b"3"))
        c.call(w.OP_EXISTS, w.path_watch_body("/"))
        assert c.events == [(3, 3, root)]
        err, d = c.call(106, Enc().ustring(root + "/missing").int(0).bytes())
        assert err == 0 and d.int() == 0


def test_create_ttl_unimplemented_by_default(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        err, d = c.call(21, w.create_body(root + "/ttl", flags=5) + struct.pack(">q", 1000))
        assert err == w.UNIMPLEMENTED and d.remaining() == 0
        assert not c.is_closed(0.5)
        err, _ = c.call(w.OP_EXISTS, w.path_watch_body(root + "/ttl"))
        assert err == w.NONODE


def test_create_container_and_create2(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        xid = c.send_request(19, w.create_body(root + "/cont", flags=4))
        rxid, zxid, err, d = c.recv_reply()
        assert (rxid, err) == (xid, 0)
        assert d.ustring() == root + "/cont"
        st = d.stat()
        assert d.remaining() == 0
        assert st["czxid"] == st["mzxid"] == st["pzxid"] == zxid
        assert st["ephemeralOwner"] == 0
        xid = c.send_request(w.OP_CREATE2, w.create_body(root + "/c2", b"abc", flags=1))
        rxid, zxid, err, d = c.recv_reply()
        assert (rxid, err) == (xid, 0)
        assert d.ustring() == root + "/c2"
        st = d.stat()
        assert d.remaining() == 0
        assert st["czxid"] == zxid and st["dataLength"] == 3
        assert st["ephemeralOwner"] == c.session_id


def _get_acl(c, path):
    err, d = c.call(6, w.path_body(path))
    assert err == 0
    n = d.int()
    acls = [(d.int(), d.ustring(), d.ustring()) for _ in range(n)]
    return acls, d.stat()


def test_acl_get_set(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        acls, st = _get_acl(c, root)
        assert acls == [(31, "world", "anyone")] and st["aversion"] == 0
        err, d = c.call(7, Enc().ustring(root).acls([(1 | 2 | 4 | 8, "world", "anyone")]).int(5).bytes())
        assert err == w.BADVERSION
        err, d = c.call(7, Enc().ustring(root).acls([(1 | 2 | 4 | 8, "world", "anyone")]).int(0).bytes())
        assert err == 0
        st = d.stat()
        assert st["aversion"] == 1 and st["version"] == 0
        acls, st2 = _get_acl(c, root)
        assert acls == [(15, "world", "anyone")] and st2 == st
        # no ADMIN any more
        err, _ = c.call(7, Enc().ustring(root).acls(w.OPEN_ACL).int(-1).bytes())
        assert err == NOAUTH
        _mk(c, root + "/ro", acls=[(1, "world", "anyone")])
        err, _ = c.call(w.OP_SETDATA, w.setdata_body(root + "/ro", b"x"))
        assert err == NOAUTH
        err, _ = c.call(w.OP_CREATE, w.create_body(root + "/ro/child"))
        assert err == NOAUTH
        err, d = c.call(w.OP_GETDATA, w.path_watch_body(root + "/ro"))
        assert err == 0


def test_invalid_acls(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        for acl in ([(31, "foo", "bar")], [(31, "digest", "nocolon")], [(31, "auth", "")],
                    [(31, "world", "someone")]):
            err, _ = c.call(w.OP_CREATE, w.create_body(root + "/x", acls=acl))
            assert err == w.INVALIDACL, acl
        err, _ = c.call(7, Enc().ustring(root).acls([(31, "foo", "bar")]).int(-1).bytes())
        assert err == w.INVALIDACL
        _mk(c, root + "/dup", acls=[(31, "world", "anyone"), (31, "world", "anyone")])
        acls, _ = _get_acl(c, root + "/dup")
        assert acls == [(31, "world", "anyone")]


def test_set_watches_on_reconnect(server, root):
    a = w.session(server.port)
    try:
        _mk(a, root)
        _mk(a, root + "/changed", b"0")
        _mk(a, root + "/deleted")
        _mk(a, root + "/same")
        _mk(a, root + "/kids")
        err, d = a.call(w.OP_EXISTS, w.path_watch_body("/"))
        rel = a.last_zxid
        # changes made after `rel` while "disconnected"
        with w.session(server.port) as o:
            o.call(w.OP_SETDATA, w.setdata_body(root + "/changed", b"1"))
            o.call(w.OP_DELETE, w.delete_body(root + "/deleted"))
            _mk(o, root + "/born")
            _mk(o, root + "/kids/k")
        body = (Enc().long(rel)
                .int(3).ustring(root + "/changed").ustring(root + "/deleted").ustring(root + "/same")
                .int(2).ustring(root + "/born").ustring(root + "/unborn")
                .int(2).ustring(root + "/kids").ustring(root + "/same")
                .bytes())
        b = w.session(server.port)
        try:
            b.send_request(101, body, xid=-8)
            events = []
            while True:
                xid, zxid, err, d = b.recv_reply(skip_watches=False)
                if xid == -1:
                    events.append((d.int(), d.int(), d.ustring()))
                    continue
                assert (xid, err) == (-8, 0) and d.remaining() == 0
                break
            assert sorted(events) == sorted([(3, 3, root + "/changed"), (2, 3, root + "/deleted"),
                                             (1, 3, root + "/born"), (4, 3, root + "/kids")])
            # unchanged paths were registered and fire later
            with w.session(server.port) as o:
                o.call(w.OP_SETDATA, w.setdata_body(root + "/same", b"x"))
                _mk(o, root + "/unborn")
                _mk(o, root + "/same/c")
            b.call(w.OP_EXISTS, w.path_watch_body("/"))
            assert sorted(b.events) == sorted([(3, 3, root + "/same"), (1, 3, root + "/unborn"),
                                               (4, 3, root + "/same")])
        finally:
            b.close()
    finally:
        a.close()
