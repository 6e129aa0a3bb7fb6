"""kazoo: standard (one-shot) watches.

Pins:
- a data watch (get) fires once with EventType CHANGED, the node path and state
  CONNECTED; a second change delivers nothing;
- a child watch (get_children) fires CHILD on a child create and on a child delete, and not
  on a child's data change;
- an exists watch on a missing node fires CREATED;
- deleting a node fires DELETED to its data watchers and its child watchers (one event
  each), and CHILD to the parent's child watchers;
- exists() on a missing node still registers the watch; get() on a missing node does not;
- watches set by one session fire for changes made by another session; watches are
  deduplicated per connection (two watcher functions on one path both get one event);
- setting the same data does still fire CHANGED (any setData is a change).

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import queue

import pytest
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import EventType, KazooState

WAIT = 5.0


def collector():
    q = queue.Queue()
    return q, q.put


def expect_event(q, type_, path, timeout=WAIT):
    ev = q.get(timeout=timeout)
    assert ev.type == type_, ev
    assert ev.path == path, ev
    assert ev.state == KazooState.CONNECTED, ev
    return ev


def expect_nothing(q, timeout=1.0):
    try:
        ev = q.get(timeout=timeout)
    except queue.Empty:
        return
    raise AssertionError("unexpected event %r" % (ev,))


def test_data_watch_fires_once(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root, b"v0")
    q, cb = collector()
    assert a.get(root, watch=cb)[0] == b"v0"
    b.set(root, b"v1")
    expect_event(q, EventType.CHANGED, root)
    b.set(root, b"v2")
    expect_nothing(q)


def test_data_watch_same_session(zk, root):
    zk.create(root, b"a")
    q, cb = collector()
    zk.get(root, watch=cb)
    zk.set(root, b"a")                 # same bytes: still a change
    expect_event(q, EventType.CHANGED, root)
    expect_nothing(q, 0.5)


def test_child_watch_create_and_delete(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root)
    q, cb = collector()
    assert a.get_children(root, watch=cb) == []
    b.create(root + "/c1")
    expect_event(q, EventType.CHILD, root)
    expect_nothing(q, 0.5)
    assert a.get_children(root, watch=cb) == ["c1"]
    b.set(root + "/c1", b"data")        # child data change: no child event
    expect_nothing(q, 0.5)
    b.delete(root + "/c1")
    expect_event(q, EventType.CHILD, root)
    expect_nothing(q, 0.5)


def test_exists_watch_on_missing_node_fires_created(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    q, cb = collector()
    assert a.exists(root, watch=cb) is None
    b.create(root, b"x")
    expect_event(q, EventType.CREATED, root)
    b.delete(root)
    expect_nothing(q)


def test_exists_watch_on_existing_node(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root)
    q, cb = collector()
    assert a.exists(root, watch=cb) is not None
    b.set(root, b"1")
    expect_event(q, EventType.CHANGED, root)


def test_get_on_missing_node_sets_no_watch(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    q, cb = collector()
    with pytest.raises(NoNodeError):
        a.get(root, watch=cb)
    with pytest.raises(NoNodeError):
        a.get_children(root, watch=cb)
    b.create(root)
    expect_nothing(q)


def test_delete_fires_deleted_to_data_and_child_watchers(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root + "/n", makepath=True)
    qd, cbd = collector()
    qc, cbc = collector()
    qp, cbp = collector()
    a.get(root + "/n", watch=cbd)
    a.get_children(root + "/n", watch=cbc)
    a.get_children(root, watch=cbp)
    b.delete(root + "/n")
    expect_event(qd, EventType.DELETED, root + "/n")
    expect_event(qc, EventType.DELETED, root + "/n")
    expect_event(qp, EventType.CHILD, root)
    expect_nothing(qd, 0.3)
    expect_nothing(qc, 0.3)
    expect_nothing(qp, 0.3)


def test_two_watchers_same_path_each_fire_once(zk, kazoo_factory, root):
    other = kazoo_factory()
    zk.create(root)
    q1, cb1 = collector()
    q2, cb2 = collector()
    zk.get(root, watch=cb1)
    zk.exists(root, watch=cb2)
    other.set(root, b"z")
    expect_event(q1, EventType.CHANGED, root)
    expect_event(q2, EventType.CHANGED, root)
    expect_nothing(q1, 0.3)
    expect_nothing(q2, 0.3)


def test_watches_on_many_paths(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root)
    q, cb = collector()
    paths = ["%s/n%d" % (root, i) for i in range(20)]
    for p in paths:
        assert a.exists(p, watch=cb) is None
    for p in paths:
        b.create(p)
    got = sorted(q.get(timeout=WAIT).path for _ in paths)
    assert got == sorted(paths)
    expect_nothing(q, 0.3)
