"""kazoo: transactions (multi) including check.

Pins:
- a successful transaction returns per-op results in order (create => path, set_data =>
  Stat, delete => True, check => True), all effects applied atomically with one zxid;
- a failing transaction applies nothing and returns RolledBackError for the ops before the
  failing one, the exact error class at the failing op, RuntimeInconsistency after it;
- check with the right / wrong version;
- sub-ops see the effects of earlier sub-ops (create then create child then set it);
- one watch event per affected watch for a committed multi, none for a failed one.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import queue

from kazoo.exceptions import (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError,
                              RolledBackError, RuntimeInconsistency)
from kazoo.protocol.states import EventType


def test_transaction_success(zk, root):
    zk.create(root, b"r")
    zk.create(root + "/old")
    t = zk.transaction()
    t.create(root + "/a", b"1")
    t.create(root + "/a/b", b"2")
    t.set_data(root + "/a/b", b"3")
    t.check(root, 0)
    t.delete(root + "/old")
    t.create(root + "/s", b"", sequence=True)
    res = t.commit()
    assert res[0] == root + "/a"
    assert res[1] == root + "/a/b"
    st = res[2]
    assert st.version == 1 and st.dataLength == 1
    assert st.czxid == st.mzxid      # created and set in the same txn
    assert res[3] is True
    assert res[4] is True
    assert res[5] == root + "/s0000000002"
    assert zk.get(root + "/a/b")[0] == b"3"
    assert zk.exists(root + "/old") is None
    assert zk.exists(root + "/a").czxid == st.czxid == zk.exists(root).pzxid


def test_transaction_failure_rolls_back(zk, root):
    zk.create(root, b"r")
    t = zk.transaction()
    t.create(root + "/a")
    t.set_data(root, b"changed")
    t.delete(root + "/missing")
    t.create(root + "/b")
    res = t.commit()
    assert len(res) == 4
    assert isinstance(res[0], RolledBackError)
    assert isinstance(res[1], RolledBackError)
    assert isinstance(res[2], NoNodeError)
    assert isinstance(res[3], RuntimeInconsistency)
    assert zk.exists(root + "/a") is None
    data, st = zk.get(root)
    assert data == b"r" and st.version == 0 and st.cversion == 0


def test_transaction_check(zk, root):
    zk.create(root)
    zk.set(root, b"x")
    t = zk.transaction()
    t.check(root, 0)
    t.create(root + "/c")
    res = t.commit()
    assert isinstance(res[0], BadVersionError)
    assert isinstance(res[1], RuntimeInconsistency)
    assert zk.exists(root + "/c") is None
    t = zk.transaction()
    t.check(root, 1)
    t.create(root + "/c")
    assert t.commit() == [True, root + "/c"]
    t = zk.transaction()
    t.check(root + "/nope", -1)
    res = t.commit()
    assert isinstance(res[0], NoNodeError)


def test_transaction_error_classes(zk, root):
    zk.create(root + "/x/y", makepath=True)
    t = zk.transaction()
    t.create(root + "/x")
    res = t.commit()
    assert isinstance(res[0], NodeExistsError)
    t = zk.transaction()
    t.set_data(root + "/x", b"", version=0)
    t.delete(root + "/x")
    res = t.commit()
    assert isinstance(res[0], RolledBackError)
    assert isinstance(res[1], NotEmptyError)
    assert zk.get(root + "/x")[1].version == 0


def test_transaction_watches(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root)
    q = queue.Queue()
    a.get_children(root, watch=q.put)
    a.exists(root + "/n", watch=q.put)
    # failing multi: no events
    t = b.transaction()
    t.create(root + "/n")
    t.check(root, 5)
    assert isinstance(t.commit()[1], BadVersionError)
    try:
        ev = q.get(timeout=0.7)
        raise AssertionError("unexpected event %r" % (ev,))
    except queue.Empty:
        pass
    t = b.transaction()
    t.create(root + "/n")
    t.set_data(root + "/n", b"x")
    t.commit()
    evs = sorted([q.get(timeout=5), q.get(timeout=5)], key=lambda e: e.path)
    assert [(e.type, e.path) for e in evs] == [(EventType.CHILD, root),
                                               (EventType.CREATED, root + "/n")]
    try:
        ev = q.get(timeout=0.5)
        raise AssertionError("unexpected event %r" % (ev,))
    except queue.Empty:
        pass
