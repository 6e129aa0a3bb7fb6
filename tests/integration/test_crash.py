"""kill -9 under load: every acknowledged write survives, nothing goes backwards.

The server runs with forceSync=yes on a private dataDir. Per cycle, WRITERS threads each
open a raw session and pipeline (16 deep) a seeded mix of
  * create2 of unique persistent paths under <root>/c<cycle>,
  * create2 PERSISTENT_SEQUENTIAL under <root>/s (shared by all writers and all cycles),
  * setData (version -1) on nodes only that writer ever touches (<root>/n/t<tid>-<j>);
after a random 0.2-1.5 s the server gets SIGKILL and is restarted on the same dataDir.
After each restart it checks, exactly:
  * the srvr Zxid is >= every acknowledged reply zxid, >= the srvr Zxid read just before
    the kill and >= the one read after the previous restart (never goes backwards);
  * every acknowledged create exists with its data and czxid (= reply zxid = reply Stat
    czxid); every node seen once stays, every unacknowledged create found absent stays
    absent, nothing that was never sent exists, an unacknowledged create that survived has
    the data that was sent;
  * for each setData node with m sets sent in the cycle from base version B: the version V
    satisfies B + (last acked set) <= V <= B + m and the data is the data of the V-th set
    (or the base data), and mzxid equals the reply zxid when that set was acknowledged;
  * sequential names: every acknowledged name exists with its data, no acknowledged name
    is ever handed out twice (across restarts), names handed out after a restart are
    greater than every name present at the restart, per writer acknowledged names grow;
    an unacknowledged sequential child that survived carries the data of one sent request;
  * what survived of each session is a prefix of what it sent (no holes);
  * no request got an error reply; per writer, acknowledged zxids strictly increase.
Plus a deterministic case: 200 sync creates + 100 sync sets + 300 pipelined creates
acknowledged, SIGKILL right after the last reply, restart, all present.

Environment: RK_CRASH_SEED (int) replays a run's kill delays and request mix (timing itself
is not replayable); RK_CRASH_CYCLES (default 15), RK_CRASH_CYCLES_ZK (default 4: JVM start
is slow; ZooKeeper 3.8 is the reference that shows the checks themselves are right),
RK_CRASH_CYCLES_VARIANT (default 5) for RingKeeper's non-default log method
(ringkeeper-linked), RK_CRASH_BUDGET seconds for the cycle loop (default 100).
"""
import os
import random
import signal
import tempfile
import shutil
import time

import pytest

import conftest
import crashload as cl
import zkwire as w

WRITERS = 4
NODES_PER_WRITER = 2


# RingKeeper's default log method (pwrite + fdatasync on the raft thread) runs as
# "ringkeeper"; "ringkeeper-linked" is the io_uring write + linked fdatasync method.
VARIANTS = {"ringkeeper-linked": ("ringkeeper", ["--raft.logSyncMethod=linked"])}
# kill -9 of the one server: standalone targets only (test_cluster*.py kill cluster members)
PARAMS = list(conftest.STANDALONE_TARGETS) + [v for v, (t, _) in VARIANTS.items()
                                              if t in conftest.STANDALONE_TARGETS]


@pytest.fixture(params=PARAMS)
def durable(request):
    target, extra = VARIANTS.get(request.param, (request.param, []))
    reason = conftest._skip_reason(target)
    if reason:
        pytest.skip(reason)
    workdir = tempfile.mkdtemp(prefix="rk-crash-%s-" % request.param)
    srv = cl.DurableServer(target, workdir, extra_args=extra)
    srv.variant = request.param
    request.node._rk_servers = [srv]
    try:
        srv.start()
        yield srv
    finally:
        srv.stop(signal.SIGKILL)
        if os.environ.get("RK_KEEP_TMP"):
            print("kept", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _seed():
    s = os.environ.get("RK_CRASH_SEED")
    return int(s) if s else random.SystemRandom().randrange(1 << 31)


def _must(conn, op, body, what):
    err, d = conn.call(op, body)
    assert err == 0, "%s: error %d" % (what, err)
    return d


def _get(conn, path):
    err, d = conn.call(w.OP_GETDATA, w.path_watch_body(path))
    if err != 0:
        return err, None, None
    data = d.buffer()
    return 0, data, d.stat()


def _children(conn, path):
    err, d = conn.call(w.OP_GETCHILDREN, w.path_watch_body(path))
    assert err == 0, "getChildren %s: error %d" % (path, err)
    return d.strings()


def _seqno(name):
    return int(name[-10:])


# ------------------------------------------------------------------ deterministic case

def test_acked_writes_survive_immediate_kill(durable):
    srv = durable
    root = "/det-%d" % random.randrange(1 << 30)
    c = cl.open_session(srv.port)
    try:
        _must(c, w.OP_CREATE, w.create_body(root), "create root")
        _must(c, w.OP_CREATE, w.create_body(root + "/n", b"v0"), "create node")
        created = {}
        for i in range(200):
            p = "%s/a%d" % (root, i)
            d = _must(c, w.OP_CREATE2, w.create_body(p, b"a-%d" % i), "create " + p)
            assert d.ustring() == p
            st = d.stat()
            assert st["czxid"] == c.last_zxid
            created[p] = (b"a-%d" % i, st["czxid"])
        last_set = None
        for i in range(1, 101):
            d = _must(c, w.OP_SETDATA, w.setdata_body(root + "/n", b"set-%d" % i), "set")
            st = d.stat()
            assert st["version"] == i
            last_set = (b"set-%d" % i, st["mzxid"])
        reqs = [(w.OP_CREATE2, w.create_body("%s/b%d" % (root, i), b"b-%d" % i))
                for i in range(300)]
        for i, (err, zxid, d) in enumerate(cl.pipelined(c, reqs, window=32)):
            assert err == 0, ("pipelined create", i, err)
            p = "%s/b%d" % (root, i)
            assert d.ustring() == p
            created[p] = (b"b-%d" % i, d.stat()["czxid"])
        last_zxid = c.last_zxid
    finally:
        c.close()
    srv.kill9()                      # right after the last acknowledgement
    srv.start_again()
    z = cl.srvr_zxid(srv.port)
    assert z >= last_zxid, "srvr Zxid 0x%x < last acknowledged zxid 0x%x" % (z, last_zxid)
    c = cl.open_session(srv.port)
    try:
        names = set(_children(c, root))
        assert len(names) == 501, "expected 501 children of %s, found %d" % (root, len(names))
        paths = sorted(created)
        res = cl.pipelined(c, [(w.OP_GETDATA, w.path_watch_body(p)) for p in paths])
        bad = []
        for p, (err, _, d) in zip(paths, res):
            if err != 0:
                bad.append("%s: error %d" % (p, err))
                continue
            data, st = d.buffer(), d.stat()
            if (data, st["czxid"]) != created[p]:
                bad.append("%s: got %r czxid 0x%x, acked %r czxid 0x%x"
                           % (p, data, st["czxid"], created[p][0], created[p][1]))
        assert not bad, "%d acknowledged creates lost or wrong: %s" % (len(bad), bad[:10])
        err, data, st = _get(c, root + "/n")
        assert err == 0
        assert (st["version"], data, st["mzxid"]) == (100, last_set[0], last_set[1])
    finally:
        cl.close_session(c)


# ------------------------------------------------------------------ kill -9 under load

class Model:
    """What the server must hold, kept across cycles."""

    def __init__(self, root, seed):
        self.root = root
        self.seed = seed
        self.present = {}        # create path -> (data, czxid): must exist forever
        self.absent = set()      # unacked create paths found missing: must never appear
        self.seq = {}            # seq full path -> (data, czxid): must exist forever
        self.seq_acked = set()   # every acknowledged sequential name, all cycles
        self.nodes = {}          # setData node -> (version, data, mzxid) baseline
        self.max_acked_zxid = 0
        self.last_srvr_zxid = 0
        self.parents = []        # create parents <root>/c<k>
        self.stats = {"acked": 0, "sent": 0, "survived_unacked": 0, "lost_unacked": 0}

    def fail(self, problems, cycle):
        self.last_problems = problems
        if problems:
            raise AssertionError(
                "seed %d cycle %d: %d violations:\n  %s"
                % (self.seed, cycle, len(problems), "\n  ".join(problems[:25])))


def _setup(srv, m):
    c = cl.open_session(srv.port)
    try:
        _must(c, w.OP_CREATE, w.create_body(m.root), "create root")
        _must(c, w.OP_CREATE, w.create_body(m.root + "/s"), "create seq parent")
        _must(c, w.OP_CREATE, w.create_body(m.root + "/n"), "create node parent")
        for t in range(WRITERS):
            for j in range(NODES_PER_WRITER):
                p = "%s/n/t%d-%d" % (m.root, t, j)
                d = _must(c, w.OP_CREATE2, w.create_body(p, b"init"), "create " + p)
                d.ustring()
                st = d.stat()
                m.nodes[p] = (0, b"init", st["mzxid"])
        m.max_acked_zxid = max(m.max_acked_zxid, c.last_zxid)
    finally:
        cl.close_session(c)


def _verify(srv, m, cycle, writers, prekill_zxid):
    problems = []
    z = cl.srvr_zxid(srv.port)
    for what, v in (("max acknowledged reply zxid", m.max_acked_zxid),
                    ("srvr Zxid just before the kill", prekill_zxid),
                    ("srvr Zxid after the previous restart", m.last_srvr_zxid)):
        if z < v:
            problems.append("srvr Zxid after restart 0x%x < %s 0x%x" % (z, what, v))
    m.last_srvr_zxid = max(m.last_srvr_zxid, z)

    ops = [o for wr in writers for o in wr.ops]
    for wr in writers:
        for o in wr.errors():
            problems.append("writer %d: %s %s got error %d" % (wr.tid, o.kind, o.path, o.err))
        for e in wr.protocol_errors:
            problems.append("writer %d: %s" % (wr.tid, e))
        zx = [o.zxid for o in wr.acked()]
        if any(b <= a for a, b in zip(zx, zx[1:])):
            problems.append("writer %d: acknowledged zxids not strictly increasing" % wr.tid)
        seqn = [_seqno(o.name) for o in wr.acked(cl.SEQ)]
        if any(b <= a for a, b in zip(seqn, seqn[1:])):
            problems.append("writer %d: acknowledged sequential names not increasing: %s"
                            % (wr.tid, seqn[:20]))
    survived = {}                                   # id(op) -> bool

    c = cl.open_session(srv.port)
    try:
        # ---- unique creates: listing of every parent so far
        sent_now = {o.path: o for o in ops if o.kind == cl.CREATE}
        listed = set()
        for parent in m.parents:
            for name in _children(c, parent):
                listed.add(parent + "/" + name)
        for p in m.present:
            if p not in listed:
                problems.append("create %s (acknowledged or seen before) is gone" % p)
        for p in m.absent & listed:
            problems.append("create %s was absent after an earlier restart, now present" % p)
        for p in listed:
            if p not in m.present and p not in sent_now:
                problems.append("node %s exists but was never sent" % p)
        for p, o in sent_now.items():
            survived[id(o)] = p in listed
            if o.acked and p not in listed:
                problems.append("acknowledged create %s (zxid 0x%x) lost" % (p, o.zxid))
        to_read = sorted(p for p in listed if p in sent_now)
        old = sorted(p for p in listed if p in m.present and p not in sent_now)
        rng = random.Random(m.seed * 1000 + cycle)
        if len(old) > 3000:
            old = sorted(rng.sample(old, 3000))
        res = cl.pipelined(c, [(w.OP_GETDATA, w.path_watch_body(p)) for p in to_read + old])
        for p, (err, _, d) in zip(to_read + old, res):
            if err != 0:
                problems.append("getData %s: error %d" % (p, err))
                continue
            data, st = d.buffer(), d.stat()
            if p in sent_now:
                o = sent_now[p]
                if data != o.data:
                    problems.append("create %s: data %r, sent %r" % (p, data, o.data))
                if o.acked and not (st["czxid"] == o.zxid == o.stat["czxid"]):
                    problems.append("create %s: czxid 0x%x, acknowledged with zxid 0x%x "
                                    "(Stat czxid 0x%x)" % (p, st["czxid"], o.zxid,
                                                           o.stat["czxid"]))
                m.present[p] = (data, st["czxid"])
            elif (data, st["czxid"]) != m.present[p]:
                problems.append("create %s: now %r czxid 0x%x, was %r czxid 0x%x"
                                % (p, data, st["czxid"], m.present[p][0], m.present[p][1]))
        for p, o in sent_now.items():
            if p not in listed:
                m.absent.add(p)

        # ---- sequential children
        sparent = m.root + "/s"
        names = {sparent + "/" + n for n in _children(c, sparent)}
        floor = max([_seqno(p) for p in m.seq] or [-1])   # highest name present at cycle start
        for p in m.seq:
            if p not in names:
                problems.append("sequential %s (acknowledged or seen before) is gone" % p)
        by_data = {}
        for o in ops:
            if o.kind != cl.SEQ:
                continue
            if o.acked:
                if o.name in m.seq_acked:
                    problems.append("sequential name %s acknowledged twice (across restarts)"
                                    % o.name)
                m.seq_acked.add(o.name)
                if _seqno(o.name) <= floor:
                    problems.append("sequential name %s handed out after a restart is not "
                                    "above the highest present name %010d" % (o.name, floor))
                survived[id(o)] = o.name in names
                if o.name not in names:
                    problems.append("acknowledged sequential %s (zxid 0x%x) lost"
                                    % (o.name, o.zxid))
            else:
                by_data[o.data] = o
                survived[id(o)] = False
        acked_names = {o.name: o for o in ops if o.kind == cl.SEQ and o.acked}
        fresh = sorted(p for p in names if p not in m.seq)
        res = cl.pipelined(c, [(w.OP_GETDATA, w.path_watch_body(p)) for p in fresh])
        for p, (err, _, d) in zip(fresh, res):
            if err != 0:
                problems.append("getData %s: error %d" % (p, err))
                continue
            data, st = d.buffer(), d.stat()
            if p in acked_names:
                o = acked_names[p]
                if data != o.data or st["czxid"] != o.zxid:
                    problems.append("sequential %s: %r czxid 0x%x, acknowledged %r zxid 0x%x"
                                    % (p, data, st["czxid"], o.data, o.zxid))
            elif data in by_data:
                survived[id(by_data[data])] = True
            else:
                problems.append("sequential %s with data %r was never sent" % (p, data))
            m.seq[p] = (data, st["czxid"])
        if len(m.seq) > 0:
            sample = sorted(p for p in m.seq if p not in fresh)
            if len(sample) > 1000:
                sample = sorted(rng.sample(sample, 1000))
            res = cl.pipelined(c, [(w.OP_GETDATA, w.path_watch_body(p)) for p in sample])
            for p, (err, _, d) in zip(sample, res):
                if err == 0 and (d.buffer(), d.stat()["czxid"]) != m.seq[p]:
                    problems.append("sequential %s changed" % p)

        # ---- setData nodes (one writer per node)
        for node, (bver, bdata, bmzxid) in sorted(m.nodes.items()):
            sets = [o for o in ops if o.kind == cl.SET and o.path == node]
            err, data, st = _get(c, node)
            if err != 0:
                problems.append("setData node %s: getData error %d" % (node, err))
                continue
            k = st["version"] - bver
            last_acked = max([o.idx for o in sets if o.acked] or [0])
            for o in sets:
                survived[id(o)] = o.idx <= k
            if k < last_acked:
                o = sets[last_acked - 1]
                problems.append("node %s: version %d < acknowledged version %d (set of %r, "
                                "zxid 0x%x)" % (node, st["version"], o.stat["version"],
                                                o.data, o.zxid))
            elif k > len(sets):
                problems.append("node %s: version %d > base %d + %d sets sent"
                                % (node, st["version"], bver, len(sets)))
            else:
                want = sets[k - 1] if k > 0 else None
                want_data = want.data if want else bdata
                if data != want_data:
                    problems.append("node %s version %d: data %r, expected %r"
                                    % (node, st["version"], data, want_data))
                if want is not None and want.acked:
                    if st["mzxid"] != want.zxid or want.stat["version"] != st["version"]:
                        problems.append("node %s: mzxid 0x%x version %d, acknowledged zxid "
                                        "0x%x version %d" % (node, st["mzxid"], st["version"],
                                                            want.zxid, want.stat["version"]))
                elif want is None and st["mzxid"] != bmzxid:
                    problems.append("node %s: unchanged version but mzxid 0x%x != 0x%x"
                                    % (node, st["mzxid"], bmzxid))
            m.nodes[node] = (st["version"], data, st["mzxid"])
    finally:
        cl.close_session(c)

    # ---- what survived of each session is a prefix of what it sent
    for wr in writers:
        flags = [survived.get(id(o), False) for o in wr.ops]
        if False in flags:
            first_lost = flags.index(False)
            if True in flags[first_lost:]:
                j = first_lost + flags[first_lost:].index(True)
                a, b = wr.ops[first_lost], wr.ops[j]
                problems.append("writer %d: request #%d (%s %s) lost but later #%d (%s %s) "
                                "survived" % (wr.tid, first_lost, a.kind, a.path, j, b.kind,
                                              b.path))
        for o, f in zip(wr.ops, flags):
            m.stats["sent"] += 1
            if o.acked:
                m.stats["acked"] += 1
            elif f:
                m.stats["survived_unacked"] += 1
            else:
                m.stats["lost_unacked"] += 1
    m.fail(problems, cycle)


def _load_and_kill(srv, m, cycle, delay, rng):
    """One cycle: WRITERS pipelined writers, SIGKILL after `delay` s of load."""
    parent = "%s/c%d" % (m.root, cycle)
    c = cl.open_session(srv.port)
    try:
        _must(c, w.OP_CREATE, w.create_body(parent), "create " + parent)
        m.max_acked_zxid = max(m.max_acked_zxid, c.last_zxid)
    finally:
        cl.close_session(c)
    m.parents.append(parent)
    writers = []
    for t in range(WRITERS):
        nodes = ["%s/n/t%d-%d" % (m.root, t, j) for j in range(NODES_PER_WRITER)]
        writers.append(cl.Writer(srv.port, t, cycle, rng.randrange(1 << 30), parent,
                                 m.root + "/s/s-", nodes))
    for wr in writers:
        wr.start()
    for wr in writers:
        assert wr.started.wait(15), "writer did not start"
    for wr in writers:
        assert wr.end_reason is None or not wr.end_reason.startswith("connect failed"), \
            wr.end_reason
    time.sleep(delay)
    prekill = cl.srvr_zxid(srv.port)
    srv.kill9()
    for wr in writers:
        wr.stop_flag.set()
    for wr in writers:
        wr.join(20)
        assert not wr.is_alive(), "writer %d still running 20 s after the kill" % wr.tid
    for wr in writers:
        for o in wr.acked():
            m.max_acked_zxid = max(m.max_acked_zxid, o.zxid)
    return writers, prekill


def test_kill9_under_load(durable, capsys):
    srv = durable
    seed = _seed()
    rng = random.Random(seed)
    if srv.target == "zookeeper":
        cycles = int(os.environ.get("RK_CRASH_CYCLES_ZK", "4"))
    elif srv.variant != srv.target:  # a non-default log method: fewer cycles
        cycles = int(os.environ.get("RK_CRASH_CYCLES_VARIANT", "5"))
    else:
        cycles = int(os.environ.get("RK_CRASH_CYCLES", "15"))
    budget = float(os.environ.get("RK_CRASH_BUDGET", "100"))
    with capsys.disabled():
        print("\n[test_kill9_under_load] %s RK_CRASH_SEED=%d cycles=%d"
              % (srv.variant, seed, cycles))
    m = Model("/crash-%d" % seed, seed)
    _setup(srv, m)
    t0 = time.monotonic()
    done = 0
    log = []
    for cycle in range(cycles):
        if time.monotonic() - t0 > budget:
            break
        delay = rng.uniform(0.2, 1.5)
        writers, prekill = _load_and_kill(srv, m, cycle, delay, rng)
        srv.start_again()
        _verify(srv, m, cycle, writers, prekill)
        done += 1
        log.append("cycle %d delay %.2fs: sent %d acked %d (%s)"
                   % (cycle, delay, sum(len(wr.ops) for wr in writers),
                      sum(len(wr.acked()) for wr in writers),
                      ", ".join(sorted({wr.end_reason.split(":")[0] for wr in writers}))))
    with capsys.disabled():
        print("\n".join("  " + l for l in log))
        print("  totals: %s; %d creates, %d sequential present; %.1fs"
              % (m.stats, len(m.present), len(m.seq), time.monotonic() - t0))
    assert done >= min(cycles, 5), "only %d cycles fit in the %.0fs budget" % (done, budget)
    assert m.stats["acked"] > 0, "no write was ever acknowledged: the load did not run"


def test_checks_catch_lost_writes(durable):
    """The checks can fail: one load cycle, SIGKILL, the dataDir wiped before the restart
    (the server comes back empty): _verify must report the lost acknowledged writes."""
    srv = durable
    seed = _seed()
    m = Model("/sanity-%d" % seed, seed)
    _setup(srv, m)
    writers, prekill = _load_and_kill(srv, m, 0, 0.4, random.Random(seed))
    assert sum(len(wr.acked()) for wr in writers) > 0, "no write acknowledged"
    shutil.rmtree(srv.data_dir)
    os.makedirs(srv.data_dir)
    srv.start_again()
    c = cl.open_session(srv.port)     # recreate the parents so the listing checks run
    try:
        for p in (m.root, m.root + "/s", m.root + "/n", m.parents[0]):
            _must(c, w.OP_CREATE, w.create_body(p), "create " + p)
        for node in m.nodes:
            _must(c, w.OP_CREATE, w.create_body(node, b"init"), "create " + node)
    finally:
        cl.close_session(c)
    with pytest.raises(AssertionError) as ei:
        _verify(srv, m, 0, writers, prekill)
    kinds = {
        "zxid": "srvr Zxid after restart",
        "create": "acknowledged create",
        "sequential": "acknowledged sequential",
        "setData": "< acknowledged version",
    }
    for kind, needle in kinds.items():
        assert any(needle in p for p in m.last_problems), \
            "wiped dataDir: no %r violation reported:\n%s" % (kind, ei.value)
