"""kazoo: sessions, ephemerals, expiry, resume, restart.

Pins:
- closing a session (client.stop()) deletes its ephemerals at once; a data watcher in
  another session gets DELETED, a child watcher on the parent gets CHILD;
- a session whose client dies without closing (helper process killed with SIGKILL) keeps
  its ephemerals while the session is alive (still there 1 s after the kill) and loses
  them by expiry: gone within timeout (4 s) + 2 s of the kill, watcher gets DELETED;
- reconnecting with (session id, password) resumes the session: same client_id, sees its
  ephemerals (ephemeralOwner == session id) and can delete them;
- reconnecting with a wrong password yields SESSION_EXPIRED: kazoo's connection reports EXPIRED_SESSION, and its
  automatic new session has a different id; the original session is unharmed;
- after an expiry, reconnecting with the expired id gives LOST as well;
- the server keeps persistent data and live sessions across a restart (same data dir):
  node data/Stat identical, a resumed client still owns its ephemeral.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, KazooState, KeeperState

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def record_keeper_states(client):
    """Record the raw KeeperState values kazoo's connection reports (kazoo starts in
    state LOST, so an expiry during start() does not show up as a listener transition)."""
    seen = []
    orig = client._session_callback

    def cb(state):
        seen.append(state)
        return orig(state)

    client._session_callback = cb
    return seen


def without_connecting(states):
    return [s for s in states if s != KeeperState.CONNECTING]


class Holder:
    """A helper process owning a session with some ephemerals."""

    def __init__(self, server, timeout_s, *paths):
        self.proc = subprocess.Popen(
            [PY, os.path.join(HERE, "session_holder.py"), server.hosts, str(timeout_s)] + list(paths),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._readline(20)
        sid, pw = line.split()
        self.session_id = int(sid)
        self.passwd = bytes.fromhex(pw)

    def _readline(self, timeout):
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not out or not out[0]:
            self.kill()
            raise RuntimeError("session holder failed: %s" % self.proc.stderr.read()[-2000:])
        return out[0]

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def test_ephemeral_deleted_on_close(kazoo_factory, root):
    a = kazoo_factory()
    b = kazoo_factory()
    b.create(root)
    a.create(root + "/e", b"x", ephemeral=True)
    q = queue.Queue()
    assert b.exists(root + "/e", watch=q.put) is not None
    b.get_children(root, watch=q.put)
    a.stop()
    evs = sorted([q.get(timeout=5), q.get(timeout=5)], key=lambda e: e.path)
    assert [(e.type, e.path) for e in evs] == [(EventType.CHILD, root),
                                               (EventType.DELETED, root + "/e")]
    assert b.exists(root + "/e") is None
    assert b.get_children(root) == []


def test_ephemeral_deleted_on_expiry(server, kazoo_factory, root):
    b = kazoo_factory()
    b.create(root)
    h = Holder(server, 4, root + "/e1", root + "/e2")
    try:
        st = b.exists(root + "/e1")
        assert st.ephemeralOwner == h.session_id
        q = queue.Queue()
        b.exists(root + "/e1", watch=q.put)
        h.kill()
        t_kill = time.monotonic()
        time.sleep(1.0)
        # disconnect alone does not delete anything
        assert b.exists(root + "/e2") is not None
        ev = q.get(timeout=4 + 2 + 1)
        elapsed = time.monotonic() - t_kill
        assert (ev.type, ev.path) == (EventType.DELETED, root + "/e1")
        assert elapsed <= 4 + 2 + 0.5, elapsed
        assert b.exists(root + "/e2") is None
        assert b.get_children(root) == []
        # the expired session cannot be resumed
        c = KazooClient(hosts=server.hosts, timeout=4, client_id=(h.session_id, h.passwd))
        states = record_keeper_states(c)
        try:
            c.start(timeout=15)
            assert without_connecting(states) == [KeeperState.EXPIRED_SESSION,
                                                  KeeperState.CONNECTED]
            assert c.client_id[0] != h.session_id
        finally:
            c.stop()
            c.close()
    finally:
        h.kill()


def test_resume_session_with_id_and_password(server, kazoo_factory, root):
    b = kazoo_factory()
    b.create(root)
    h = Holder(server, 10, root + "/e")
    try:
        h.kill()     # orphan the session (no close), then take it over
        c = kazoo_factory(start=False, client_id=(h.session_id, h.passwd))
        states = record_keeper_states(c)
        c.start(timeout=15)
        assert c.client_id[0] == h.session_id
        assert without_connecting(states) == [KeeperState.CONNECTED]
        st = c.exists(root + "/e")
        assert st is not None and st.ephemeralOwner == h.session_id
        assert c.get(root + "/e")[0] == b"held"
        c.create(root + "/e2", ephemeral=True)
        assert c.exists(root + "/e2").ephemeralOwner == h.session_id
        c.stop()
        assert b.get_children(root) == []
    finally:
        h.kill()


def test_wrong_password_session_expired(server, kazoo_factory, root):
    a = kazoo_factory()
    a.create(root, ephemeral=True)
    sid, pw = a.client_id
    bad = bytes(x ^ 0xFF for x in pw)
    c = kazoo_factory(start=False, client_id=(sid, bad))
    states = record_keeper_states(c)
    c.start(timeout=15)
    assert without_connecting(states) == [KeeperState.EXPIRED_SESSION, KeeperState.CONNECTED]
    assert c.client_id[0] != sid       # kazoo created a new session after the expiry
    # the original session is untouched (its connection may have been bounced once)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not a.connected:
        time.sleep(0.1)
    assert a.client_id[0] == sid
    assert a.exists(root).ephemeralOwner == sid


def test_restart_keeps_data_and_sessions(server, kazoo_factory, root):
    a = kazoo_factory(timeout=20)
    a.create(root, b"persist")
    a.create(root + "/child", b"c")
    a.create(root + "/eph", ephemeral=True)
    _, st = a.get(root)
    sid = a.client_id[0]
    lost = []
    a.add_listener(lambda s: lost.append(s) if s == KazooState.LOST else None)
    server.restart()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not a.connected:
        time.sleep(0.1)
    assert a.connected
    assert not lost
    assert a.client_id[0] == sid
    data, st2 = a.get(root)
    assert data == b"persist" and st2 == st
    assert a.get(root + "/child")[0] == b"c"
    assert a.exists(root + "/eph").ephemeralOwner == sid
    # and new writes get higher zxids than anything before the restart
    st3 = a.set(root, b"after")
    assert st3.mzxid > st2.pzxid and st3.version == 1
