"""clusterload.Register's history checker on made-up histories (no server): it must
find each kind of violation the chaos tests rely on it to find, and pass a clean one."""
import clusterload as L


def history(cas=(), reads=()):
    r = L.Register.__new__(L.Register)
    r.path, r.errors = "/reg", []
    r.cas = [list(c) for c in cas]
    r.reads = list(reads)
    return r


# (start, end, expected version, outcome, token, new version)
W1 = (0.0, 1.0, 0, "ok", b"a", 1)
W2 = (2.0, 3.0, 1, "ok", b"b", 2)


def test_a_clean_history_passes():
    r = history([W1, W2, (2.5, None, 2, "unknown", b"c", None), (4.0, 4.5, 0, "refused", b"d", None)],
                [(1.5, 1.8, 1, b"a"), (3.5, 3.9, 2, b"b"), (3.6, 5.0, 3, b"c")])
    assert r.violations(final=(3, b"c")) == []


def test_a_stale_read_after_an_acknowledged_write():
    r = history([W1, W2], [(3.5, 3.9, 1, b"a")])
    assert r.violations() == ["a read began after version 2 was seen and read version 1"]


def test_a_stale_read_after_another_read():
    r = history([W1, W2], [(2.5, 3.2, 2, b"b"), (3.3, 3.4, 1, b"a")])
    assert r.violations() == ["a read began after version 2 was seen and read version 1"]


def test_overlapping_operations_may_see_either():
    r = history([W1, W2], [(2.5, 3.5, 1, b"a"), (2.6, 3.6, 2, b"b")])
    assert r.violations() == []


def test_a_refused_write_seen():
    r = history([W1, (2.0, 2.1, 0, "refused", b"x", None)], [(3.0, 3.1, 1, b"x")])
    assert r.violations() == ["a read saw b'x', a write answered BADVERSION",
                              "version 1 read as b'x', written as b'a' / read before as None"]


def test_two_writes_from_one_version():
    r = history([W1, (2.0, 3.0, 0, "ok", b"z", 1)])
    assert r.violations() == ["two acknowledged writes made version 1: b'a' and b'z'"]


def test_diverging_reads_of_one_version():
    r = history([W1, (2.0, None, 1, "unknown", b"u", None), (2.0, None, 1, "unknown", b"v", None)],
                [(3.0, 3.1, 2, b"u"), (3.2, 3.3, 2, b"v")])
    assert r.violations() == ["version 2 read as b'v', written as None / read before as b'u'"]


def test_a_lost_acknowledged_write_at_the_end():
    r = history([W1, W2])
    assert r.violations(final=(1, b"a")) == [
        "the servers end at version 1, an acknowledged write made 2"]
