"""Four-letter words beyond the basic set: crst, srst, wchc, wchp, dump (ZooKeeper's
words, checked against ZooKeeper 3.8.0 too) and RingKeeper's admin words lgif, rqld,
ydld, csnp, uptm (RingKeeper only; csnp's effect is test_snapshot.py's).

Pins: wchc lists a watching session with its paths, wchp a path with its sessions,
dump a session with its ephemeral nodes; the reset words answer ZooKeeper's text and
reset the counters srvr shows.
"""
import re
import time

import pytest


def _sid(zk):
    return "0x%x" % zk.client_id[0]


def test_watch_and_session_dumps(server, zk, root):
    zk.create(root, b"")
    zk.create(root + "/w", b"")
    zk.create(root + "/e", b"", ephemeral=True)
    zk.get(root + "/w", watch=lambda ev: None)
    sid = _sid(zk)
    deadline = time.time() + 5
    while True:  # ZooKeeper registers the watch right after the reply
        wchc = server.four_letter("wchc")
        if root + "/w" in wchc or time.time() > deadline:
            break
        time.sleep(0.1)
    assert re.search(r"^%s\n(\t/.*\n)*\t%s/w\n" % (sid, re.escape(root)), wchc, re.M), wchc
    wchp = server.four_letter("wchp")
    assert re.search(r"^%s/w\n(\t0x[0-9a-f]+\n)*\t%s\n" % (re.escape(root), sid), wchp, re.M), wchp
    dump = server.four_letter("dump")
    assert re.search(r"^%s:\n(\t/.*\n)*\t%s/e\n" % (sid, re.escape(root)), dump, re.M), dump


def test_reset_words(server, zk, root):
    zk.create(root, b"")
    assert server.four_letter("srst") == "Server stats reset.\n"
    srvr = server.four_letter("srvr")
    received = int(re.search(r"^Received: (\d+)$", srvr, re.M).group(1))
    assert received < 50, srvr  # counted from the reset, not from the start
    assert server.four_letter("crst") == "Connection stats reset.\n"
    cons = server.four_letter("cons")
    line = [ln for ln in cons.splitlines() if "sid=%s" % _sid(zk) in ln]
    assert len(line) == 1, cons
    assert re.search(r"recved=0,sent=0", line[0]), line[0]


def test_ringkeeper_admin_words(server, zk, root):
    if server.target != "ringkeeper":
        pytest.skip("RingKeeper's own admin words")
    zk.create(root, b"x")
    czxid = zk.exists(root).czxid
    # the log's statistics are published every 100 ms, the applied index after each
    # batch of applies: the create may not be in them yet
    deadline = time.monotonic() + 2.0
    while True:
        lgif = dict(ln.split("\t") for ln in server.four_letter("lgif").splitlines())
        if (int(lgif.get("last_log_idx", 0)) >= czxid and int(lgif.get("last_committed_log_idx", 0)) >= czxid) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert set(lgif) == {"first_log_idx", "first_log_term", "last_log_idx", "last_log_term",
                         "last_committed_log_idx", "leader_committed_log_idx",
                         "target_committed_log_idx", "last_snapshot_idx",
                         "log_batch_entries_avg", "log_batch_entries_max", "log_fsync_p50_us",
                         "log_fsync_p99_us", "log_bytes", "log_segments"}
    last = int(lgif["last_log_idx"])
    assert last >= czxid and int(lgif["first_log_idx"]) == 1
    # the first entry's own term (a fresh server's first term), not a constant
    assert 1 <= int(lgif["first_log_term"]) <= int(lgif["last_log_term"])
    assert int(lgif["last_committed_log_idx"]) == last
    time.sleep(0.3)  # the log's statistics are published every 100 ms
    lgif = dict(ln.split("\t") for ln in server.four_letter("lgif").splitlines())
    assert int(lgif["log_bytes"]) > 0 and int(lgif["log_segments"]) >= 1
    assert float(lgif["log_batch_entries_avg"]) >= 1 and int(lgif["log_batch_entries_max"]) >= 1
    # ClickHouse Keeper's answer: the index the snapshot will be taken at (at least)
    assert int(server.four_letter("csnp")) >= zk.exists(root).czxid
    up = dict(ln.split("\t") for ln in server.four_letter("uptm").splitlines())
    assert int(up["uptime_ms"]) > 0 and int(up["started_ms"]) > 1_600_000_000_000


def test_ringkeeper_leadership_words_standalone(server):
    if server.target != "ringkeeper":
        pytest.skip("RingKeeper's own admin words")
    if server.expected_mode != "standalone":
        pytest.skip("in a cluster rqld/ydld move the leadership: the cluster tests cover them")
    # standalone: it leads already (ClickHouse Keeper answers so too); no one to yield to
    assert server.four_letter("rqld") == "Sent leadership request to leader.\n"
    assert server.four_letter("ydld") == \
        "Failed to send yield leadership request to leader: this server is standalone.\n"
