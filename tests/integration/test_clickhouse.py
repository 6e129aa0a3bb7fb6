"""ClickHouse-shaped client against RingKeeper only: raw frames laid out exactly as
ClickHouse's ZooKeeper client sends them, replies parsed with ClickHouse's rules.

Facts taken from ClickHouse's public source (read for facts only, no code copied):
* src/Common/ZooKeeper/ZooKeeperImpl.cpp, ZooKeeper::sendHandshake: 45-byte body
  (int 45 length, protocolVersion 0, lastZxidSeen 0, timeout, sessionId 0, the password
  resized to 16 bytes and written WITHOUT a length prefix... see note below, readOnly true).
  ZooKeeper::receiveHandshake: the frame length must be 36 or 37
  (SERVER_HANDSHAKE_LENGTH / _WITH_READONLY), protocolVersion must be 0 (42 = "rejected").
* ZooKeeperImpl.cpp, ZooKeeper::receiveEvent: after parsing a reply the number of bytes
  consumed must equal the frame length ("Response length doesn't match") -> no trailing
  bytes; when err != 0 nothing is read (ZooKeeperResponse::write in ZooKeeperCommon.cpp
  writes a body only when error == ZOK).
* ZooKeeperImpl.cpp, ZooKeeper::sendAuth: reply must be xid -4, err 0, exact length.
* ZooKeeperImpl.cpp, initFeatureFlags / tryGetSystemZnode: getData("/keeper/feature_flags")
  then getData("/keeper/api_version"), no watch, no chroot; NONODE = absent, any other
  error aborts the connection. KeeperFeatureFlags.cpp: flag n = bit (7 - n % 8) of byte
  n / 8; KeeperFeatureFlags.h: FILTERED_LIST 0, MULTI_READ 1, CHECK_NOT_EXISTS 2,
  CREATE_IF_NOT_EXISTS 3, REMOVE_RECURSIVE 4.
* ZooKeeperCommon.cpp, ZooKeeperFilteredListRequest::writeImpl: path, bool watch,
  uint8 list_request_type (0 ALL, 1 PERSISTENT_ONLY, 2 EPHEMERAL_ONLY);
  ZooKeeperListResponse::readImpl: vector<string> names, Stat.
* ZooKeeperCommon.cpp, ZooKeeperMultiResponse::readImpl: per sub-result
  {int op, bool done, int err}; the body is read iff err == 0 or op == -1; an op -1 body
  is ErrorResponse{int} that must equal the header err; the footer must be {-1, true, -1};
  the body of a successful sub-result is parsed by the *request's* type (Get: data+Stat,
  Exists: Stat, SimpleList: names, FilteredList: names+Stat, Create: path, Set: Stat,
  Remove/Check/CheckNotExists/RemoveRecursive: nothing).
* ZooKeeperCommon.cpp, ZooKeeperRemoveRecursiveRequest::writeImpl: path, int32 limit;
  ClickHouse Keeper's storage (KeeperStorage.cpp, ToDeleteTreeCollector) counts the root
  as a node (nodes_observed starts at 1): a subtree of N nodes needs limit >= N, else
  ZNOTEMPTY and nothing removed. ClickHouse's own Keeper unit tests (CoordinationTest,
  "Recursive Remove Tree Small Limit" / "... For Subtree With Updated Node") pin it: a
  4-node tree is not removed with limit 2 or 3 and is removed with limit 4.
* ZooKeeperCommon.cpp, ZooKeeperCreateRequest (op 502 when not_exists) / CheckRequest (op
  501 when not_exists) have the same layouts as create / check; ZooKeeperCreateIfNotExists-
  Response is a CreateResponse{path}. KeeperStorage.cpp: an existing node gives ZOK with
  path_created = the requested path; CreateIfNotExists + sequential = ZBADARGUMENTS.
* ZooKeeperConstants.h: CLOSE_XID = 0x7FFFFFFF; ZooKeeper::close sends Close (-11) with
  it and does not wait for the answer.

Note on the handshake password: ClickHouse writes `password` (a std::string resized to
16) with Coordination::write(std::string), i.e. int32 length 16 + 16 bytes, the same
bytes as a jute buffer; total body = 4+8+4+8+4+16+1 = 45.
"""
import socket
import struct
import time
import uuid

import pytest

import conftest
import zkwire as w
from zkwire import Dec, Enc

CLOSE_XID = 0x7FFFFFFF
NONODE, NODEEXISTS, NOTEMPTY, BADVERSION, BADARGUMENTS = -101, -110, -111, -103, -8
OP_FILTERED_LIST, OP_CHECK_NOT_EXISTS, OP_CREATE_IF_NOT_EXISTS = 500, 501, 502
OP_REMOVE_RECURSIVE = 503
OP_MULTI_READ = 22
FEATURES = ("FILTERED_LIST", "MULTI_READ", "CHECK_NOT_EXISTS", "CREATE_IF_NOT_EXISTS",
            "REMOVE_RECURSIVE")


class ChClient:
    """A raw connection that behaves like ClickHouse's client on the wire."""

    def __init__(self, port, password=b"chpass", timeout_ms=30000):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.xid = 0
        self.events = []
        pw = password[:16].ljust(16, b"\0")
        body = (struct.pack(">iqiq", 0, 0, timeout_ms, 0) + struct.pack(">i", 16) + pw
                + b"\x01")
        assert len(body) == 45
        self.sock.sendall(struct.pack(">i", 45) + body)
        self.handshake_len, self.handshake = self._frame()

    def close(self):
        self.sock.close()

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise w.Closed("closed after %d of %d" % (len(buf), n))
            buf += chunk
        return buf

    def _frame(self):
        n = struct.unpack(">i", self._exact(4))[0]
        return n, self._exact(n)

    def send(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.sock.sendall(struct.pack(">iii", 8 + len(body), xid, op) + body)
        return xid

    def reply(self, xid):
        """(err, Dec) of the reply to `xid`; watch events are collected. Enforces
        ClickHouse's rule that an error reply carries no body."""
        while True:
            n, frame = self._frame()
            d = Dec(frame)
            rxid, _zxid, err = d.int(), d.long(), d.int()
            if rxid == -1:
                self.events.append((d.int(), d.int(), d.ustring()))
                assert d.remaining() == 0, "trailing bytes in watch event"
                continue
            assert rxid == xid, "reply xid %d, expected %d" % (rxid, xid)
            if err != 0:
                assert n == 16, "error reply %d carries %d body bytes" % (err, n - 16)
            return err, d

    def call(self, op, body=b""):
        return self.reply(self.send(op, body))


def done(d):
    """ClickHouse: 'Response length doesn't match' unless every byte was consumed."""
    assert d.remaining() == 0, "%d trailing bytes: %s" % (d.remaining(), d.d[d.o:].hex())


def parse_multi_ch(d, req_ops):
    """ClickHouse's ZooKeeperMultiResponse::readImpl, strictly. Returns [(err, value)]."""
    out = []
    for op in req_ops:
        t, is_done, err = d.int(), d.bool(), d.int()
        assert not is_done, "Not enough results received for multi transaction"
        val = None
        if t == -1:
            body = d.int()
            assert body == err, "ErrorResponse %d != header err %d" % (body, err)
        elif err == 0:
            if op == 4:
                val = (d.buffer(), d.stat())
            elif op == 3:
                val = d.stat()
            elif op == 8:
                val = d.strings()
            elif op in (12, OP_FILTERED_LIST):
                val = (d.strings(), d.stat())
            elif op in (1, OP_CREATE_IF_NOT_EXISTS):
                val = d.ustring()
            elif op == 5:
                val = d.stat()
        out.append((err, val))
    t, is_done, err = d.int(), d.bool(), d.int()
    assert is_done, "Too many results received for multi transaction"
    assert (t, err) == (-1, -1), "bad multi footer (%d, %d)" % (t, err)
    done(d)
    return out


# RingKeeper's targets of the run (standalone and/or cluster); ringkeeper when none
RK_TARGETS = [t for t in conftest.TARGETS if conftest.impl_of(t) == "ringkeeper"] or ["ringkeeper"]


@pytest.fixture(params=RK_TARGETS)
def rk(server_pool, request):
    return server_pool.member(request.param, request)


@pytest.fixture
def ch(rk):
    c = ChClient(rk.port)
    yield c
    c.close()


@pytest.fixture
def base(ch):
    path = "/ch-" + uuid.uuid4().hex[:10]
    err, d = ch.call(1, w.create_body(path))
    assert err == 0
    return path


def mk(c, path, data=b"", flags=0, op=1):
    err, d = c.call(op, w.create_body(path, data, flags=flags))
    assert err == 0, (path, err)
    return d.ustring()


def filtered_list_body(path, list_type, watch=False):
    return Enc().ustring(path).bool(watch).bytes() + struct.pack(">B", list_type)


def check_body(path, version):
    return Enc().ustring(path).int(version).bytes()


def rr_body(path, limit):
    return Enc().ustring(path).int(limit).bytes()


# ---------------------------------------------------------------------------------------

def test_ch_handshake_45_bytes_readonly_true(rk):
    c = ChClient(rk.port)
    try:
        assert c.handshake_len in (36, 37), c.handshake_len
        d = Dec(c.handshake)
        proto, timeout, sid = d.int(), d.int(), d.long()
        assert proto == 0, "ClickHouse requires protocolVersion 0 (got %d)" % proto
        assert timeout > 0 and sid != 0
        assert d.int() == 16 and len(d._take(16)) == 16
        if c.handshake_len == 37:
            assert d.bool() is False, "a read-write server must answer readOnly=false"
        done(d)
        # nothing else follows the handshake reply
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.sock.recv(1)
        c.sock.settimeout(5)
        # and the session works: ClickHouse's ping
        c.sock.sendall(struct.pack(">iii", 8, -2, 11))
        n, frame = c._frame()
        assert n == 16 and struct.unpack(">iqi", frame)[0::2] == (-2, 0)
    finally:
        c.close()


def test_ch_auth_digest_exact_reply(rk):
    c = ChClient(rk.port)
    try:
        c.send(100, Enc().int(0).ustring("digest").buffer(b"chuser:chpass").bytes(), xid=-4)
        n, frame = c._frame()
        assert n == 16
        xid, _zxid, err = struct.unpack(">iqi", frame)
        assert (xid, err) == (-4, 0)
    finally:
        c.close()


def _probe(c):
    """initFeatureFlags: returns (flags bytes or None, api version text or None)."""
    err, d = c.call(4, w.path_watch_body("/keeper/feature_flags", False))
    assert err in (0, NONODE), "feature_flags probe got %d: ClickHouse aborts" % err
    if err == 0:
        data = d.buffer()
        d.stat()
        done(d)
        return data, None
    err, d = c.call(4, w.path_watch_body("/keeper/api_version", False))
    assert err in (0, NONODE), "api_version probe got %d: ClickHouse aborts" % err
    if err == 0:
        data = d.buffer()
        d.stat()
        done(d)
        assert data is not None and data.decode().strip().isdigit(), data
        return None, data
    return None, None


def test_ch_feature_probe(rk):
    c = ChClient(rk.port)
    try:
        flags, api = _probe(c)
    finally:
        c.close()
    # also after digest auth (a configured keeper user) the answer must not be NOAUTH
    c = ChClient(rk.port)
    try:
        c.send(100, Enc().int(0).ustring("digest").buffer(b"u:p").bytes(), xid=-4)
        assert struct.unpack(">iqi", c._frame()[1])[2] == 0
        assert _probe(c) == (flags, api)
    finally:
        c.close()


def test_ch_advertised_features_work(rk, ch, base):
    """Whatever /keeper/feature_flags (or api_version) advertises must work: ClickHouse
    switches every list to op 500, read-only multis to op 22, etc."""
    flags, api = _probe(ch)
    enabled = set()
    if flags is not None:
        for n, name in enumerate(FEATURES):
            if n // 8 < len(flags) and flags[n // 8] & (1 << (7 - n % 8)):
                enabled.add(name)
    elif api is not None:
        v = int(api)
        enabled = set(FEATURES[:min(v, 3)])
    mk(ch, base + "/x")
    if "FILTERED_LIST" in enabled:
        err, d = ch.call(OP_FILTERED_LIST, filtered_list_body(base, 0))
        assert err == 0 and d.strings() == ["x"]
        d.stat()
        done(d)
    if "MULTI_READ" in enabled:
        err, d = ch.call(OP_MULTI_READ, w.multi_body([(4, w.path_watch_body(base + "/x"))]))
        assert err == 0 and parse_multi_ch(d, [4])[0][0] == 0
    if "CHECK_NOT_EXISTS" in enabled:
        err, d = ch.call(14, w.multi_body([(OP_CHECK_NOT_EXISTS, check_body(base + "/n", -1))]))
        assert err == 0 and parse_multi_ch(d, [OP_CHECK_NOT_EXISTS]) == [(0, None)]
    if "CREATE_IF_NOT_EXISTS" in enabled:
        err, d = ch.call(OP_CREATE_IF_NOT_EXISTS, w.create_body(base + "/x"))
        assert err == 0 and d.ustring() == base + "/x"
        done(d)
    if "REMOVE_RECURSIVE" in enabled:
        err, d = ch.call(OP_REMOVE_RECURSIVE, rr_body(base + "/x", 10))
        assert err == 0
        done(d)


@pytest.mark.parametrize("list_type,expected", [(0, ["e1", "e2", "p1", "p2"]),
                                                (1, ["p1", "p2"]),
                                                (2, ["e1", "e2"])])
def test_ch_filtered_list(ch, base, list_type, expected):
    mk(ch, base + "/p1")
    mk(ch, base + "/p2")
    mk(ch, base + "/e1", flags=1)
    mk(ch, base + "/e2", flags=1)
    err, d = ch.call(OP_FILTERED_LIST, filtered_list_body(base, list_type))
    assert err == 0, "FilteredList (500) failed with %d" % err
    assert sorted(d.strings()) == expected
    st = d.stat()
    done(d)
    assert st["numChildren"] == 4     # Stat of the parent, unfiltered
    # NONODE: header only
    err, d = ch.call(OP_FILTERED_LIST, filtered_list_body(base + "/missing", list_type))
    assert err == NONODE
    done(d)


def test_ch_filtered_list_watch(rk, ch, base):
    err, d = ch.call(OP_FILTERED_LIST, filtered_list_body(base, 2, watch=True))
    assert err == 0 and d.strings() == []
    d.stat()
    done(d)
    other = ChClient(rk.port)
    try:
        mk(other, base + "/p")
    finally:
        other.close()
    err, d = ch.call(3, w.path_watch_body(base))   # any later reply flushes the event
    assert err == 0
    assert ch.events == [(4, 3, base)]


def test_ch_multi_read_with_failing_sub_ops(ch, base):
    mk(ch, base + "/a", b"A")
    mk(ch, base + "/e", flags=1)
    ops = [
        (4, w.path_watch_body(base + "/a")),          # Get ok
        (4, w.path_watch_body(base + "/missing")),    # Get NONODE
        (3, w.path_watch_body(base + "/a")),          # Exists ok (ClickHouse sub-op)
        (3, w.path_watch_body(base + "/missing")),    # Exists NONODE
        (8, w.path_watch_body(base)),                 # SimpleList ok
        (8, w.path_watch_body(base + "/missing")),    # SimpleList NONODE
        (OP_FILTERED_LIST, filtered_list_body(base, 2)),   # FilteredList ephemeral only
    ]
    err, d = ch.call(OP_MULTI_READ, w.multi_body(ops))
    assert err == 0, "MultiRead (22) failed with %d" % err
    res = parse_multi_ch(d, [op for op, _ in ops])
    assert [e for e, _ in res] == [0, NONODE, 0, NONODE, 0, NONODE, 0]
    assert res[0][1][0] == b"A"
    assert res[2][1]["dataLength"] == 1
    assert sorted(res[4][1]) == ["a", "e"]
    assert res[6][1][0] == ["e"]


def test_ch_create_if_not_exists(ch, base):
    # missing -> created
    err, d = ch.call(OP_CREATE_IF_NOT_EXISTS, w.create_body(base + "/n", b"first"))
    assert err == 0, "CreateIfNotExists (502) failed with %d" % err
    assert d.ustring() == base + "/n"
    done(d)
    # existing -> OK, same path, node untouched
    err, d = ch.call(OP_CREATE_IF_NOT_EXISTS, w.create_body(base + "/n", b"second"))
    assert err == 0
    assert d.ustring() == base + "/n"
    done(d)
    err, d = ch.call(4, w.path_watch_body(base + "/n"))
    assert err == 0 and d.buffer() == b"first" and d.stat()["version"] == 0
    # sequential -> BADARGUMENTS; missing parent -> NONODE
    err, d = ch.call(OP_CREATE_IF_NOT_EXISTS, w.create_body(base + "/s-", flags=2))
    assert err == BADARGUMENTS
    err, d = ch.call(OP_CREATE_IF_NOT_EXISTS, w.create_body(base + "/no/x"))
    assert err == NONODE


def _tree(ch, base):
    for p in ("/t", "/t/a", "/t/a/b", "/t/c"):
        mk(ch, base + p)


def _count(ch, path):
    err, d = ch.call(104, w.path_body(path))
    return err, (d.int() if err == 0 else None)


def test_ch_remove_recursive_limit(ch, base):
    _tree(ch, base)   # 4 nodes including the root /t
    err, d = ch.call(OP_REMOVE_RECURSIVE, rr_body(base + "/t", 3))
    assert err == NOTEMPTY, "RemoveRecursive (503) over the limit: %d" % err
    assert _count(ch, base + "/t") == (0, 3)
    err, d = ch.call(OP_REMOVE_RECURSIVE, rr_body(base + "/t", 4))
    assert err == 0
    done(d)
    err, _ = ch.call(3, w.path_watch_body(base + "/t"))
    assert err == NONODE
    err, d = ch.call(12, w.path_watch_body(base))
    assert err == 0 and d.strings() == [] and d.stat()["numChildren"] == 0
    # a single node; the root of the subtree counts: limit 0 is too small, 1 suffices
    mk(ch, base + "/single")
    err, d = ch.call(OP_REMOVE_RECURSIVE, rr_body(base + "/single", 0))
    assert err == NOTEMPTY, "RemoveRecursive of 1 node with limit 0: %d" % err
    err, d = ch.call(OP_REMOVE_RECURSIVE, rr_body(base + "/single", 1))
    assert err == 0
    done(d)
    # missing node: ClickHouse versions answer NONODE (KeeperStorage.cpp, older
    # preprocess) or OK (newer visitUncommittedRecursive); any other code is wrong
    err, d = ch.call(OP_REMOVE_RECURSIVE, rr_body(base + "/gone", 10))
    assert err in (0, NONODE)


def test_ch_remove_recursive_in_multi(ch, base):
    _tree(ch, base)
    ops = [(OP_REMOVE_RECURSIVE, rr_body(base + "/t", 2)), (1, w.create_body(base + "/z"))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0
    res = parse_multi_ch(d, [OP_REMOVE_RECURSIVE, 1])
    assert [e for e, _ in res] == [NOTEMPTY, w.RUNTIMEINCONSISTENCY]
    ops = [(OP_REMOVE_RECURSIVE, rr_body(base + "/t", 100)), (1, w.create_body(base + "/t"))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0
    assert parse_multi_ch(d, [OP_REMOVE_RECURSIVE, 1]) == [(0, None), (0, base + "/t")]
    assert _count(ch, base + "/t") == (0, 0)


def test_ch_check_not_exists_in_multi(ch, base):
    mk(ch, base + "/exists")
    # passes on a missing node: the create goes through
    ops = [(OP_CHECK_NOT_EXISTS, check_body(base + "/nothere", -1)),
           (1, w.create_body(base + "/made"))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0
    assert parse_multi_ch(d, [OP_CHECK_NOT_EXISTS, 1]) == [(0, None), (0, base + "/made")]
    # fails on an existing node (version -1): nothing applied
    ops = [(1, w.create_body(base + "/never")),
           (OP_CHECK_NOT_EXISTS, check_body(base + "/exists", -1))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0
    res = parse_multi_ch(d, [1, OP_CHECK_NOT_EXISTS])
    assert [e for e, _ in res] == [0, NODEEXISTS]
    err, _ = ch.call(3, w.path_watch_body(base + "/never"))
    assert err == NONODE
    # existing node but another version: passes
    ops = [(OP_CHECK_NOT_EXISTS, check_body(base + "/exists", 5))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0 and parse_multi_ch(d, [OP_CHECK_NOT_EXISTS]) == [(0, None)]
    # existing node, matching version: fails
    ops = [(OP_CHECK_NOT_EXISTS, check_body(base + "/exists", 0))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0 and parse_multi_ch(d, [OP_CHECK_NOT_EXISTS]) == [(NODEEXISTS, None)]


def test_ch_top_level_check(ch, base):
    mk(ch, base + "/v")
    err, d = ch.call(13, check_body(base + "/v", 0))
    assert err == 0, "top-level check (13) failed with %d" % err
    done(d)
    err, d = ch.call(13, check_body(base + "/v", -1))
    assert err == 0
    done(d)
    err, d = ch.call(13, check_body(base + "/v", 3))
    assert err == BADVERSION
    err, d = ch.call(13, check_body(base + "/missing", -1))
    assert err == NONODE
    # the connection is still usable afterwards
    err, d = ch.call(3, w.path_watch_body(base + "/v"))
    assert err == 0


def test_ch_multi_failure_strict_layout(ch, base):
    mk(ch, base + "/a")
    ops = [(1, w.create_body(base + "/new")), (5, w.setdata_body(base + "/a", b"x", 9)),
           (2, w.delete_body(base + "/a"))]
    err, d = ch.call(14, w.multi_body(ops))
    assert err == 0
    res = parse_multi_ch(d, [1, 5, 2])
    assert [e for e, _ in res] == [0, BADVERSION, w.RUNTIMEINCONSISTENCY]


def test_ch_close_session_xid_int32_max(rk, base, ch):
    c = ChClient(rk.port)
    mk(c, base + "/eph", flags=1)
    c.send(-11, b"", xid=CLOSE_XID)    # ClickHouse does not wait for an answer
    # if the server answers, the frame is exactly a 16-byte header echoing the xid
    c.sock.settimeout(5)
    try:
        n, frame = c._frame()
        assert n == 16
        xid, _zxid, err = struct.unpack(">iqi", frame)
        assert (xid, err) == (CLOSE_XID, 0)
        assert c.sock.recv(1) == b""
    except w.Closed:
        pass
    c.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        err, _ = ch.call(3, w.path_watch_body(base + "/eph"))
        if err == NONODE:
            break
        time.sleep(0.1)
    assert err == NONODE, "closeSession with xid INT32_MAX did not end the session"


# ---------------------------------------------------------------------------------------
# FilteredListWithStatsAndData (506) and ListRecursive (507).
#
# Facts from ClickHouse's public source (read for facts only, no code copied):
# * src/Common/ZooKeeper/ZooKeeperConstants.h, enum OpNum: FilteredListWithStatsAndData =
#   506, ListRecursive = 507.
# * src/Common/ZooKeeper/KeeperFeatureFlags.h, enum KeeperFeatureFlag: ... TRY_REMOVE = 9,
#   LIST_WITH_STAT_AND_DATA = 10 (the last flag: ListRecursive has none). Flag 10 is bit
#   0x20 of byte 1.
# * Request 506 (ZooKeeperListRequest with list_request_type, with_stat, with_data):
#   ustring path, bool has_watch, uint8 list_request_type, bool with_stat, bool with_data.
#   Response 506 (ZooKeeperFilteredListWithStatsAndDataResponse): vector<string> names,
#   Stat of the listed node, vector<Stat> stats, vector<buffer> data -- both vectors always
#   present, empty when their switch is off. (ClickHouse's C++ serializer was not in the
#   searchable index; the order is the one RaftKeeper's ClickHouse-compatible kazoo
#   extension decodes -- names, stat, stats, data -- and matches the fields the storage
#   fills in KeeperStorage.cpp, processLocal(ZooKeeperListRequest).)
# * src/Coordination/KeeperStorage.cpp, processLocal(const ZooKeeperListRequest &):
#   NONODE; NOAUTH without READ on the node; without stat, data and filter the names are
#   listed with no look at the children; otherwise every child is checked for READ
#   *before* the filter and one unreadable child makes the reply NOAUTH; the filter drops
#   ephemerals for PERSISTENT_ONLY (1) and persistents for EPHEMERAL_ONLY (2), nothing
#   for other values. The watch is a list (child) watch, set only when the reply is OK
#   (KeeperStorage::processRequest registers list watches for 506 like List/FilteredList).
# * KeeperStorage.cpp, processLocal(const ZooKeeperListRecursiveRequest &): request
#   ustring path + uint32 children_nodes_limit; response vector<string> of full paths
#   (parent path / child name), breadth first from the node (excluded); children without
#   READ are skipped with their subtree; when `limit` paths are held and another readable
#   child comes, the walk stops and answers OK with what it has (0 -> empty list).
# ---------------------------------------------------------------------------------------

OP_LIST_WITH_STATS_AND_DATA, OP_LIST_RECURSIVE = 506, 507
NOAUTH = -102


def lwsd_body(path, list_type, with_stat, with_data, watch=False):
    return (Enc().ustring(path).bool(watch).bytes() + struct.pack(">B", list_type)
            + Enc().bool(with_stat).bool(with_data).bytes())


def lr_body(path, limit):
    return Enc().ustring(path).bytes() + struct.pack(">I", limit)


def _raw_stat(c, path):
    err, d = c.call(3, w.path_watch_body(path))
    assert err == 0, (path, err)
    raw = bytes(d._take(w.STAT_LEN))
    done(d)
    return raw


def _names(c, path):
    err, d = c.call(8, w.path_watch_body(path))
    assert err == 0
    names = d.strings()
    done(d)
    return names


def _expected_lwsd(c, path, kids, list_type, with_stat, with_data):
    """kids: {name: (data, ephemeral)}; children in the server's getChildren order."""
    keep = [n for n in _names(c, path)
            if not ((list_type == 1 and kids[n][1]) or (list_type == 2 and not kids[n][1]))]
    e = Enc().int(len(keep))
    for n in keep:
        e.ustring(n)
    out = e.bytes() + _raw_stat(c, path)
    out += struct.pack(">i", len(keep) if with_stat else 0)
    if with_stat:
        out += b"".join(_raw_stat(c, path + "/" + n) for n in keep)
    e = Enc().int(len(keep) if with_data else 0)
    if with_data:
        for n in keep:
            e.buffer(kids[n][0])
    return out + e.bytes()


LWSD_KIDS = {"p1": (b"one", False), "p2": (b"", False), "e1": (b"eph", True)}


def _lwsd_tree(ch, base):
    for name, (data, eph) in LWSD_KIDS.items():
        mk(ch, base + "/" + name, data, flags=1 if eph else 0)


@pytest.mark.parametrize("list_type", [0, 1, 2])
@pytest.mark.parametrize("with_stat,with_data", [(False, False), (True, False),
                                                 (False, True), (True, True)])
def test_ch_list_with_stats_and_data_exact_bytes(ch, base, list_type, with_stat, with_data):
    _lwsd_tree(ch, base)
    want = _expected_lwsd(ch, base, LWSD_KIDS, list_type, with_stat, with_data)
    err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base, list_type, with_stat, with_data))
    assert err == 0, "FilteredListWithStatsAndData (506) failed with %d" % err
    assert bytes(d.d[d.o:]) == want
    # and it parses the way ClickHouse reads it, with nothing left over
    names = d.strings()
    d.stat()
    stats = [d.stat() for _ in range(d.int())]
    data = [d.buffer() for _ in range(d.int())]
    done(d)
    assert len(stats) == (len(names) if with_stat else 0)
    assert len(data) == (len(names) if with_data else 0)


def test_ch_list_with_stats_and_data_literal_bytes(ch, base):
    mk(ch, base + "/c", b"hi")
    parent = _raw_stat(ch, base)
    err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base, 0, False, True))
    assert err == 0
    assert bytes(d.d[d.o:]) == (b"\0\0\0\x01" b"\0\0\0\x01c" + parent
                                + b"\0\0\0\0" b"\0\0\0\x01" b"\0\0\0\x02hi")


def test_ch_list_with_stats_and_data_feature_flag(rk):
    c = ChClient(rk.port)
    try:
        flags, _api = _probe(c)
    finally:
        c.close()
    assert flags is not None and len(flags) >= 2
    assert flags[1] & 0x20, "LIST_WITH_STAT_AND_DATA (flag 10) not advertised: %s" % flags.hex()


def test_ch_list_with_stats_and_data_errors(ch, base):
    err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base + "/missing", 0, True, True))
    assert err == NONODE
    done(d)
    locked = [(31, "digest", "someone:c2VjcmV0c2VjcmV0c2VjcmV0")]
    mk(ch, base + "/open", b"o")
    err, d = ch.call(1, w.create_body(base + "/secret", b"s", acls=locked))
    assert err == 0
    # names only: children's ACLs are not looked at
    err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base, 0, False, False))
    assert err == 0 and sorted(d.strings()) == ["open", "secret"]
    d.stat()
    assert d.int() == 0 and d.int() == 0
    done(d)
    # stat, data or a filter: NOAUTH for the whole request, header only
    for lt, ws, wd in ((0, True, False), (0, False, True), (1, False, False), (2, False, False)):
        err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base, lt, ws, wd))
        assert err == NOAUTH, (lt, ws, wd, err)
        done(d)
    # no READ on the listed node itself
    err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base + "/secret", 0, False, False))
    assert err == NOAUTH
    done(d)


def test_ch_list_with_stats_and_data_watch(rk, ch, base):
    mk(ch, base + "/a", b"x")
    err, d = ch.call(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base, 0, True, True, watch=True))
    assert err == 0
    other = ChClient(rk.port)
    try:
        err, _ = other.call(5, w.setdata_body(base + "/a", b"y"))   # a child's data: no event
        assert err == 0
        err, _ = ch.call(3, w.path_watch_body(base))
        assert err == 0 and ch.events == []
        mk(other, base + "/b")                                      # a new child: NodeChildrenChanged
    finally:
        other.close()
    err, _ = ch.call(3, w.path_watch_body(base))
    assert err == 0
    assert ch.events == [(4, 3, base)]


def test_ch_list_with_stats_and_data_in_multi_read(ch, base):
    _lwsd_tree(ch, base)
    want = _expected_lwsd(ch, base, LWSD_KIDS, 2, True, True)
    ops = [(OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base, 2, True, True)),
           (OP_LIST_WITH_STATS_AND_DATA, lwsd_body(base + "/missing", 0, False, True)),
           (4, w.path_watch_body(base + "/p1"))]
    err, d = ch.call(OP_MULTI_READ, w.multi_body(ops))
    assert err == 0
    hdr = struct.pack(">i?i", OP_LIST_WITH_STATS_AND_DATA, False, 0)
    assert bytes(d._take(len(hdr))) == hdr
    assert bytes(d._take(len(want))) == want
    assert (d.int(), d.bool(), d.int(), d.int()) == (-1, False, NONODE, NONODE)
    assert (d.int(), d.bool(), d.int()) == (4, False, 0)
    assert d.buffer() == b"one"
    d.stat()
    assert (d.int(), d.bool(), d.int()) == (-1, True, -1)
    done(d)


def _lr_tree(ch, base):
    # base/t: a, b; a: a1, a2; b: b1; a1: x (created in this order)
    for p in ("/t", "/t/a", "/t/b", "/t/a/a1", "/t/a/a2", "/t/b/b1", "/t/a/a1/x"):
        mk(ch, base + p)


def _bfs(ch, root):
    """Breadth first over getChildren, in the server's child order."""
    out, queue = [], [root]
    while queue:
        p = queue.pop(0)
        for n in _names(ch, p):
            out.append(p + "/" + n)
            queue.append(p + "/" + n)
    return out


def _paths_bytes(paths):
    e = Enc().int(len(paths))
    for p in paths:
        e.ustring(p)
    return e.bytes()


def test_ch_list_recursive_exact_bytes(ch, base):
    _lr_tree(ch, base)
    every = _bfs(ch, base + "/t")
    assert len(every) == 6
    for limit in (0xFFFFFFFF, 100, 6):
        err, d = ch.call(OP_LIST_RECURSIVE, lr_body(base + "/t", limit))
        assert err == 0, "ListRecursive (507) failed with %d" % err
        assert bytes(d.d[d.o:]) == _paths_bytes(every), limit
    # over the limit: OK with the first `limit` paths (ClickHouse's truncation)
    for limit in range(0, 6):
        err, d = ch.call(OP_LIST_RECURSIVE, lr_body(base + "/t", limit))
        assert err == 0, (limit, err)
        assert bytes(d.d[d.o:]) == _paths_bytes(every[:limit]), limit
    # a leaf: an empty vector
    err, d = ch.call(OP_LIST_RECURSIVE, lr_body(base + "/t/b/b1", 10))
    assert err == 0 and bytes(d.d[d.o:]) == b"\0\0\0\0"


def test_ch_list_recursive_errors_and_acl(ch, base):
    err, d = ch.call(OP_LIST_RECURSIVE, lr_body(base + "/missing", 10))
    assert err == NONODE
    done(d)
    locked = [(31, "digest", "someone:c2VjcmV0c2VjcmV0c2VjcmV0")]
    mk(ch, base + "/t")
    err, _ = ch.call(1, w.create_body(base + "/t/hidden", acls=locked))
    assert err == 0
    mk(ch, base + "/t/seen")
    err, d = ch.call(OP_LIST_RECURSIVE, lr_body(base + "/t", 10))
    assert err == 0
    assert bytes(d.d[d.o:]) == _paths_bytes([base + "/t/seen"])
    err, d = ch.call(OP_LIST_RECURSIVE, lr_body(base + "/t/hidden", 10))
    assert err == NOAUTH
    done(d)
