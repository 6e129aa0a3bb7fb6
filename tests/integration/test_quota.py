"""Quotas (/zookeeper/quota<path>/zookeeper_limits and zookeeper_stats), raw wire.

Pins (every expected text below is what ZooKeeper 3.8.0 produces):
- a quota is set the way zkCli's setquota does it: create /zookeeper/quota<path> (and
  its parents) with null data, then zookeeper_limits with StatsTrack text
  "count=n,bytes=b=;byteHardLimit=B;countHardLimit=N", then zookeeper_stats with
  "count=0,bytes=0"; the server replaces the stats data at once with the counts of the
  subtree (nodes including the root, data bytes) and keeps them current on create,
  delete (also of ephemerals at session close), setData and multi; a failed multi
  changes nothing; the stats node's version stays 0;
- the nearest quota root counts a change (nested roots); a root's own node counts;
- the stats text keeps foreign keys, sorted, after "=": "count=..,bytes=..=;k=v";
- "/zookeeper/quotaX/zookeeper_limits" makes "/X" a root (ZooKeeper cuts 16 bytes);
- with enforcement off (the default), no limit refuses anything;
- with zookeeper.enforceQuota=true (RingKeeper: enforceQuota=true): passing
  countHardLimit / byteHardLimit answers QUOTAEXCEEDED (-125) and changes nothing; a
  soft limit alone never refuses; for setData the quota check comes before the version
  check; the sub-ops of a multi are checked against the tree before the multi; an
  unparsable limits text answers MARSHALLINGERROR (-5) to writes it would check.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import os

import pytest

import zkwire as w

QUOTAEXCEEDED = -125
QUOTA = "/zookeeper/quota"


def _create(c, path, data=b"", flags=0):
    err, d = c.call(w.OP_CREATE, w.create_body(path, data, flags=flags))
    return err


def _mk(c, path, data=b"", flags=0):
    err = _create(c, path, data, flags)
    assert err == w.OK, (path, err)


def _get(c, path):
    err, d = c.call(w.OP_GETDATA, w.path_watch_body(path))
    assert err == w.OK, (path, err)
    data = d.buffer()
    return data, d.stat()


def _set(c, path, data, version=-1):
    err, d = c.call(w.OP_SETDATA, w.setdata_body(path, data, version))
    return err


def _delete(c, path):
    err, d = c.call(w.OP_DELETE, w.delete_body(path))
    assert err == w.OK, (path, err)


def _limits_text(n=-1, b=-1, N=-1, B=-1):
    return ("count=%d,bytes=%d=;byteHardLimit=%d;countHardLimit=%d" % (n, b, B, N)).encode()


def _setquota(c, path, limits):
    """zkCli's SetQuotaCommand.createQuota, after its client-side checks."""
    q = QUOTA
    for part in path.split("/")[1:]:
        q += "/" + part
        err = _create(c, q, None)
        assert err in (w.OK, w.NODEEXISTS), (q, err)
    _mk(c, q + "/zookeeper_limits", limits)
    _mk(c, q + "/zookeeper_stats", b"count=0,bytes=0")


def _stats(c, path):
    return _get(c, QUOTA + path + "/zookeeper_stats")[0].decode()


def _rmr(c, path):
    """Deletes path and its subtree, children first (no error if missing)."""
    err, d = c.call(w.OP_GETCHILDREN, w.path_watch_body(path))
    if err == w.NONODE:
        return
    assert err == w.OK, (path, err)
    for child in d.strings():
        _rmr(c, path + "/" + child)
    err, _ = c.call(w.OP_DELETE, w.delete_body(path))
    assert err in (w.OK, w.NONODE), (path, err)


@pytest.fixture(autouse=True)
def _quota_nodes_removed(server, root):
    """Other suites list /zookeeper's children: leave the shared servers as found."""
    yield
    if server.alive():
        with w.session(server.port) as c:
            for p in (QUOTA + root, QUOTA + root + "-r", QUOTA + root[1:]):
                _rmr(c, p)


def _multi(c, ops):
    err, d = c.call(w.OP_MULTI, w.multi_body(ops))
    assert err == w.OK
    return [(t, e) for t, e, _ in w.parse_multi_response(d.d[d.o:])]


def test_quota_stats_follow_changes(server, root):
    with w.session(server.port) as c:
        _mk(c, root, b"ab")
        _mk(c, root + "/a", b"xyz")
        _setquota(c, root, _limits_text(n=10))
        assert _stats(c, root) == "count=2,bytes=5"
        assert _get(c, QUOTA + root + "/zookeeper_limits")[0] == \
            b"count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        _mk(c, root + "/a/b", b"1234")
        assert _stats(c, root) == "count=3,bytes=9"
        _mk(c, root + "/s-", b"q", flags=2)
        assert _stats(c, root) == "count=4,bytes=10"
        assert _set(c, root + "/a", b"1") == w.OK
        assert _stats(c, root) == "count=4,bytes=8"
        assert _set(c, root + "/a", None) == w.OK
        assert _stats(c, root) == "count=4,bytes=7"
        _delete(c, root + "/a/b")
        assert _stats(c, root) == "count=3,bytes=3"
        with w.session(server.port) as other:
            _mk(other, root + "/e", b"eph", flags=1)
            assert _stats(c, root) == "count=4,bytes=6"
            err, _ = other.call(w.OP_CLOSE)
            assert err == w.OK
        assert _stats(c, root) == "count=3,bytes=3"
        res = _multi(c, [(w.OP_CREATE, w.create_body(root + "/m", b"12")),
                         (w.OP_SETDATA, w.setdata_body(root + "/m", b"1234")),
                         (w.OP_DELETE, w.delete_body(root + "/a"))])
        assert [e for _, e in res] == [0, 0, 0]
        assert _stats(c, root) == "count=3,bytes=7"
        res = _multi(c, [(w.OP_CREATE, w.create_body(root + "/n", b"12")),
                         (w.OP_DELETE, w.delete_body(root + "/m")),
                         (w.OP_DELETE, w.delete_body(root + "/missing"))])
        assert [e for _, e in res] == [0, 0, w.NONODE]
        assert _stats(c, root) == "count=3,bytes=7"
        data, st = _get(c, QUOTA + root + "/zookeeper_stats")
        assert st["version"] == 0 and st["dataLength"] == len(data)
        _delete(c, root + "/m")
        _delete(c, root + "/s-0000000001")
        _delete(c, root)
        assert _stats(c, root) == "count=0,bytes=0"
        _mk(c, root + "x", b"zz")  # a sibling with the root's name as prefix
        assert _stats(c, root) == "count=0,bytes=0"


def test_quota_nearest_root_wins(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        _mk(c, root + "/r", b"r")
        _setquota(c, root, _limits_text(n=100))
        _setquota(c, root + "/r", _limits_text(n=100))
        assert (_stats(c, root), _stats(c, root + "/r")) == ("count=2,bytes=1", "count=1,bytes=1")
        _mk(c, root + "/r/x", b"xx")
        _mk(c, root + "/y", b"yyy")
        assert (_stats(c, root), _stats(c, root + "/r")) == ("count=3,bytes=4", "count=2,bytes=3")
        _delete(c, QUOTA + root + "/r/zookeeper_limits")
        _mk(c, root + "/r/z", b"z")
        assert (_stats(c, root), _stats(c, root + "/r")) == ("count=4,bytes=5", "count=2,bytes=3")


def test_quota_stats_text(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        _setquota(c, root, _limits_text())
        stats = QUOTA + root + "/zookeeper_stats"
        assert _set(c, stats, b"count=1,bytes=2;zeta=5,alpha=-1;zeta=6") == w.OK
        _mk(c, root + "/a", b"abc")
        assert _stats(c, root) == "count=2,bytes=5=;alpha=-1;zeta=6"
        assert _set(c, stats, b"bytes==7") == w.OK
        _mk(c, root + "/b")
        assert _stats(c, root) == "count=0,bytes=-1"
        assert _set(c, stats, b"bytes=+4,,count=01;") == w.OK
        assert _set(c, root + "/b", b"") == w.OK  # same length: still rewritten
        assert _stats(c, root) == "count=1,bytes=4"


def test_quota_stats_without_limits_and_prefix_quirk(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        _mk(c, root + "/a", b"aa")
        _mk(c, QUOTA + root)
        _mk(c, QUOTA + root + "/zookeeper_stats", b"whatever")
        assert _stats(c, root) == "count=2,bytes=2"
        _mk(c, root + "/b", b"b")  # no limits node yet: not a root
        assert _stats(c, root) == "count=2,bytes=2"
        # "/zookeeper/quota" + "t-..." (no slash) names the same root.
        _mk(c, QUOTA + root[1:])
        _mk(c, QUOTA + root[1:] + "/zookeeper_limits", b"")
        _mk(c, root + "/c", b"c")
        assert _stats(c, root) == "count=3,bytes=3"
        _mk(c, root + "/ ")  # a blank component vanishes from the root match
        _mk(c, root + "/ /d", b"dd")
        assert _stats(c, root) == "count=5,bytes=5"


def test_quota_not_enforced_by_default(server, root):
    with w.session(server.port) as c:
        _mk(c, root)
        _setquota(c, root, _limits_text(1, 1, 1, 1))
        _mk(c, root + "/a", b"too many bytes")
        assert _set(c, root + "/a", b"even more bytes here") == w.OK
        assert _stats(c, root) == "count=2,bytes=20"


@pytest.fixture
def enforcing(server, server_pool, request):
    """A server (or cluster member) of the same target enforcing quotas, one per target
    for the run (the tests use their own roots)."""
    return server_pool.new_like(server, request, shared="enforceQuota",
                                rk_args=["--enforceQuota=true"],
                                jvm_args=["-Dzookeeper.enforceQuota=true"])


def _server_log(srv):
    """Everything the server logged (a cluster: every server of it)."""
    return "".join(open(n.stderr_path, errors="replace").read()
                   for n in getattr(srv, "nodes", [srv]))


def test_quota_hard_limits_enforced(enforcing, root):
    with w.session(enforcing.port) as c:
        _mk(c, root)
        _setquota(c, root, _limits_text(n=1, N=3, B=10))  # hard count replaces soft 1
        _mk(c, root + "/a", b"12345")
        _mk(c, root + "/b", b"12345")
        assert _stats(c, root) == "count=3,bytes=10"
        assert _create(c, root + "/c") == QUOTAEXCEEDED
        assert _set(c, root + "/a", b"123456") == QUOTAEXCEEDED
        assert _set(c, root + "/a", b"123456", version=7) == QUOTAEXCEEDED
        assert _set(c, root + "/a", b"1234", version=7) == w.BADVERSION
        assert _get(c, root + "/a")[0] == b"12345"
        err, d = c.call(w.OP_EXISTS, w.path_watch_body(root + "/c"))
        assert err == w.NONODE
        assert _stats(c, root) == "count=3,bytes=10"
        res = _multi(c, [(w.OP_SETDATA, w.setdata_body(root + "/a", b"1")),
                         (w.OP_CREATE, w.create_body(root + "/c"))])
        assert [e for _, e in res] == [0, QUOTAEXCEEDED]
        assert _set(c, root + "/a", b"1") == w.OK
        _delete(c, root + "/b")
        _mk(c, root + "/c", b"123")
        assert _stats(c, root) == "count=3,bytes=4"
    log = _server_log(enforcing)
    for text in ("count=4, hardCountLimit=3", "bytes=11, hardByteLimit=10"):
        assert "Quota exceeded: %s [current %s]" % (root, text) in log, text


def test_quota_soft_limits_only_warn(enforcing, root):
    with w.session(enforcing.port) as c:
        _mk(c, root)
        _setquota(c, root, _limits_text(n=1, b=1))
        _mk(c, root + "/a", b"12")
        assert _set(c, root + "/a", b"12345") == w.OK
        assert _stats(c, root) == "count=2,bytes=5"
    # ZooKeeper's warnings, one per limit crossed (rate-limited for repeats)
    log = _server_log(enforcing)
    for text in ("count=2, softCountLimit=1", "bytes=2, softByteLimit=1",
                 "bytes=5, softByteLimit=1"):
        assert "Quota exceeded: %s [current %s]" % (root, text) in log, text


def test_quota_multi_checked_against_prior_tree(enforcing, root):
    with w.session(enforcing.port) as c:
        _mk(c, root)
        _setquota(c, root, _limits_text(N=2))
        res = _multi(c, [(w.OP_CREATE, w.create_body(root + "/a")),
                         (w.OP_CREATE, w.create_body(root + "/b"))])
        assert [e for _, e in res] == [0, 0]
        assert _stats(c, root) == "count=3,bytes=0"
        assert _create(c, root + "/c") == QUOTAEXCEEDED
        # Raising the limit inside the multi does not help the multi itself.
        res = _multi(c, [(w.OP_SETDATA, w.setdata_body(QUOTA + root + "/zookeeper_limits",
                                                       _limits_text(N=10))),
                         (w.OP_CREATE, w.create_body(root + "/c"))])
        assert [e for _, e in res] == [0, QUOTAEXCEEDED]
        # A quota created inside a multi is not enforced in it.
        r = root + "-r"
        _mk(c, r)
        _mk(c, QUOTA + r)
        res = _multi(c, [(w.OP_CREATE, w.create_body(QUOTA + r + "/zookeeper_limits",
                                                     _limits_text(N=1))),
                         (w.OP_CREATE, w.create_body(QUOTA + r + "/zookeeper_stats",
                                                     b"count=0,bytes=0")),
                         (w.OP_CREATE, w.create_body(r + "/x"))])
        assert [e for _, e in res] == [0, 0, 0]
        assert _stats(c, r) == "count=2,bytes=0"
        assert _create(c, r + "/y") == QUOTAEXCEEDED
        # A quota removed inside a multi still counts in it; the failure undoes the removal.
        res = _multi(c, [(w.OP_DELETE, w.delete_body(QUOTA + r + "/zookeeper_limits")),
                         (w.OP_CREATE, w.create_body(r + "/y"))])
        assert [e for _, e in res] == [0, QUOTAEXCEEDED]
        assert _create(c, r + "/y") == QUOTAEXCEEDED


def test_quota_malformed_limits(enforcing, root):
    with w.session(enforcing.port) as c:
        _mk(c, root)
        _setquota(c, root, b"count=abc")
        assert _create(c, root + "/a") == w.MARSHALLINGERROR
        assert _set(c, QUOTA + root + "/zookeeper_limits", b"count=5") == w.OK
        _mk(c, root + "/a")
        assert _stats(c, root) == "count=2,bytes=0"
