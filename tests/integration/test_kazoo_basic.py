"""kazoo: CRUD, Stat relations, sequential nodes, error classes, value size limits.

Pins:
- create/get/set/delete/exists with exact Stat relations: czxid == mzxid == pzxid on create,
  versions 0, ctime == mtime; setData bumps version by 1 and mzxid (czxid/pzxid unchanged);
  parent cversion/pzxid/numChildren follow child create AND delete (the visible cversion
  in ZooKeeper 3.8 is 2 * creates - numChildren, so a delete bumps it too); dataLength;
  ephemeralOwner == client_id[0] for ephemerals, 0 for persistent nodes;
- sequence suffix = number of creates under the parent (%010d): /p/a0000000000,
  /p/a0000000001, create("/p/", sequence=True) => /p/0000000002; deletes do not advance it;
- errors: NoNodeError, NodeExistsError, BadVersionError, NotEmptyError,
  NoChildrenForEphemeralsError, BadArgumentsError (control char / emoji path names,
  deleting /zookeeper), RolledBack in transactions (see test_kazoo_multi.py);
- a 512 KiB value round-trips; a 2 MiB value gives ConnectionLoss, the client reconnects
  with the same session and another session is unaffected;
- get_children(include_data=True) returns the parent Stat; sync echoes the path;
- data null vs empty.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import time

import pytest
from kazoo.exceptions import (BadArgumentsError, BadVersionError, ConnectionLoss,
                              NoChildrenForEphemeralsError, NodeExistsError, NoNodeError,
                              NotEmptyError)


def test_create_get_stat_relations(zk, root):
    assert zk.create(root, b"hello") == root
    data, st = zk.get(root)
    assert data == b"hello"
    assert st.czxid == st.mzxid == st.pzxid
    assert st.czxid > 0
    assert st.ctime == st.mtime
    assert abs(st.ctime / 1000.0 - time.time()) < 60
    assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
    assert st.ephemeralOwner == 0
    assert st.dataLength == 5
    assert st.numChildren == 0
    assert zk.exists(root) == st


def test_set_data_stat_relations(zk, root):
    zk.create(root, b"a")
    _, st0 = zk.get(root)
    st1 = zk.set(root, b"bcd")
    assert st1.version == 1
    assert st1.mzxid > st0.mzxid
    assert st1.czxid == st0.czxid
    assert st1.pzxid == st0.pzxid
    assert st1.ctime == st0.ctime
    assert st1.mtime >= st0.mtime
    assert st1.dataLength == 3
    st2 = zk.set(root, b"", version=1)
    assert st2.version == 2 and st2.dataLength == 0 and st2.mzxid > st1.mzxid
    data, st3 = zk.get(root)
    assert data == b"" and st3 == st2


def test_parent_stat_follows_children(zk, root):
    zk.create(root)
    _, p0 = zk.get(root)
    zk.create(root + "/a")
    zk.create(root + "/b", b"xyz")
    _, pb = zk.get(root + "/b")
    _, p1 = zk.get(root)
    assert p1.numChildren == 2
    assert p1.cversion == 2
    assert p1.pzxid == pb.czxid
    assert p1.mzxid == p0.mzxid and p1.version == 0      # data untouched
    zk.delete(root + "/a")
    _, p2 = zk.get(root)
    assert p2.numChildren == 1
    assert p2.pzxid > p1.pzxid
    assert p2.cversion == 3      # ZooKeeper 3.8: 2 * creates(2) - numChildren(1)
    zk.set(root + "/b", b"changed")         # child data change: parent untouched
    _, p3 = zk.get(root)
    assert (p3.pzxid, p3.cversion, p3.mzxid) == (p2.pzxid, p2.cversion, p2.mzxid)


def test_exists_and_delete(zk, root):
    assert zk.exists(root) is None
    zk.create(root)
    assert zk.exists(root) is not None
    zk.delete(root)
    assert zk.exists(root) is None
    with pytest.raises(NoNodeError):
        zk.get(root)
    with pytest.raises(NoNodeError):
        zk.delete(root)
    with pytest.raises(NoNodeError):
        zk.set(root, b"x")
    with pytest.raises(NoNodeError):
        zk.get_children(root)
    with pytest.raises(NoNodeError):
        zk.create(root + "/a/b")


def test_ephemeral_owner(zk, root):
    zk.create(root)
    zk.create(root + "/e", ephemeral=True)
    st = zk.exists(root + "/e")
    assert st.ephemeralOwner == zk.client_id[0]
    assert zk.exists(root).ephemeralOwner == 0


def test_sequence_nodes(zk, root):
    zk.create(root)
    assert zk.create(root + "/a", b"", sequence=True) == root + "/a0000000000"
    assert zk.create(root + "/a", b"", sequence=True) == root + "/a0000000001"
    assert zk.create(root + "/", b"", sequence=True) == root + "/0000000002"
    assert sorted(zk.get_children(root)) == ["0000000002", "a0000000000", "a0000000001"]
    # deletes do not advance the counter
    zk.delete(root + "/a0000000000")
    zk.delete(root + "/0000000002")
    assert zk.create(root + "/b-", ephemeral=True, sequence=True) == root + "/b-0000000003"
    _, st = zk.get(root)
    assert st.numChildren == 2
    assert st.cversion == 2 * 4 - 2


def test_node_exists_error(zk, root):
    zk.create(root, b"one")
    with pytest.raises(NodeExistsError):
        zk.create(root, b"two")
    assert zk.get(root)[0] == b"one"
    with pytest.raises(NodeExistsError):
        zk.create("/")


def test_bad_version(zk, root):
    zk.create(root)
    with pytest.raises(BadVersionError):
        zk.set(root, b"x", version=1)
    with pytest.raises(BadVersionError):
        zk.delete(root, version=3)
    zk.set(root, b"x", version=0)
    zk.delete(root, version=1)
    assert zk.exists(root) is None


def test_not_empty(zk, root):
    zk.create(root + "/child", makepath=True)
    with pytest.raises(NotEmptyError):
        zk.delete(root)
    # BadVersion wins over NotEmpty
    with pytest.raises(BadVersionError):
        zk.delete(root, version=7)
    zk.delete(root, recursive=True)
    assert zk.exists(root) is None


def test_no_children_for_ephemerals(zk, root):
    zk.create(root)
    zk.create(root + "/e", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(root + "/e/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(root + "/e/child", ephemeral=True)


@pytest.mark.parametrize("name", ["bad\x01name", "\U0001F600", "a\x7f"])
def test_bad_arguments_path(zk, root, name):
    zk.create(root)
    with pytest.raises(BadArgumentsError):
        zk.create(root + "/" + name)
    assert zk.get_children(root) == []


def test_bad_arguments_delete_system_nodes(zk):
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper/quota")
    assert zk.exists("/zookeeper/config") is not None


def test_root_and_system_nodes(zk):
    st = zk.exists("/")
    assert st.czxid == 0 and st.ephemeralOwner == 0
    assert "zookeeper" in zk.get_children("/")
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]


def test_get_children_with_stat(zk, root):
    zk.create(root, b"abc")
    for n in ("x", "y", "z"):
        zk.create(root + "/" + n)
    children, st = zk.get_children(root, include_data=True)
    assert sorted(children) == ["x", "y", "z"]
    assert st == zk.exists(root)
    assert st.numChildren == 3 and st.cversion == 3 and st.dataLength == 3
    assert st.pzxid == zk.exists(root + "/z").czxid


def test_sync(zk, root):
    zk.create(root)
    assert zk.sync(root) == root
    assert zk.exists(root) is not None


def test_null_and_empty_data(zk, root):
    zk.create(root, None)
    zk.create(root + "/e", b"")
    data, st = zk.get(root)
    assert data in (b"", None) and st.dataLength == 0
    data, st = zk.get(root + "/e")
    assert data == b"" and st.dataLength == 0


def test_binary_data_roundtrip(zk, root):
    blob = bytes(range(256)) * 4
    zk.create(root, blob)
    assert zk.get(root)[0] == blob


def test_large_value_512k(zk, root):
    value = b"x" * (512 * 1024)
    zk.create(root, value)
    data, st = zk.get(root)
    assert data == value and st.dataLength == len(value)


def test_too_large_value_connection_loss(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    a.create(root)
    sid = a.client_id[0]
    with pytest.raises(ConnectionLoss):
        a.create(root + "/big", b"x" * (2 * 1024 * 1024))
    # the other session never noticed
    assert b.exists(root) is not None
    b.create(root + "/b")
    # the client reconnects on its own, with the same session
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if a.exists(root + "/b") is not None:
                break
        except ConnectionLoss:
            time.sleep(0.2)
    assert a.exists(root + "/big") is None
    assert a.client_id[0] == sid
    assert a.connected
