"""Four-letter words answered in full whatever the client does after the word, then the
connection closed by the server; gtmk/stmk (issue 10).

Pins:
- ruok, srvr, mntr answered completely and followed by EOF (never a reset, never a
  timeout), 50 rounds each, for a client that
    nc     sends the word and a newline, then half-closes (`echo ruok | nc -q1`);
    exact  sends exactly the word, then half-closes;
    open   sends the word and nothing else, keeping its side open;
    more   sends the word, a newline and 4 KiB more, keeping its side open;
    late   sends the word, and a newline 20 ms later (after the answer went out);
  the same while four kazoo sessions write in threads; and with the real
  `echo ruok | nc -q1` (OpenBSD netcat) when it is installed;
- large answers (wchc ~700 KB, dump, cons with 40 sessions, mntr) read slowly through
  a 4 KiB receive buffer arrive whole in every mode (ZooKeeper: exact and open only);
- a client that keeps its socket open after reading the answer does not keep the
  server's connection: the server's open descriptors drop back within 4 s;
- a session connection the server closes after a reply (closeSession, a failed auth)
  gets the whole reply, then EOF, with or without a ping sent behind the request;
- gtmk prints ZooTrace's text trace mask in decimal without a newline (default 306);
  stmk reads the 8-byte big-endian long after the word, sets the mask, answers it in
  decimal; a later gtmk sees it. Bytes after the 8 are ignored; fewer than 8 then EOF:
  no answer and the mask unchanged. A stmk outside the whitelist answers the usual
  refusal and leaves the mask alone.

Checked against Apache ZooKeeper 3.8.0 (Debian package), with these differences, each
skipped or tolerated for ZooKeeper where it applies:
- ZooKeeper closes with the client's newline unread, so the kernel resets the
  connection; `nc -q1` then fails its shutdown(SHUT_WR) with ENOTCONN and drops the
  answer (about 1 run in 50, up to 1 in 7 with 50 at once). RingKeeper drains input
  until the client's FIN.
- a large answer to a slow reader who sends anything after the word (nc's newline) is
  cut off by that reset in ZooKeeper (RingKeeper-only test);
- ZooKeeper drops a stmk whose 8 bytes come in a later segment; RingKeeper waits for
  them (RingKeeper-only test).
"""
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import zkwire as w

ROUNDS = 50
MODES = ("nc", "exact", "open", "more", "late")
TRACE_MASK_DEFAULT = 306  # ZooTrace: CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING


def _shutdown_wr(s):
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # ZooKeeper may have reset already; the answer may still be readable


def exchange(port, payload, mode, rcvbuf=None, read_after=0.0, timeout=10.0):
    """Sends payload as a client in `mode` would and reads until the server closes.
    Returns (bytes, end) where end is "EOF", "RST" or "TIMEOUT"."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "nc":
            s.sendall(payload + b"\n")
            _shutdown_wr(s)
        elif mode == "exact":
            s.sendall(payload)
            _shutdown_wr(s)
        elif mode == "open":
            s.sendall(payload)
        elif mode == "more":
            s.sendall(payload + b"\n" + b"x" * 4096)
        elif mode == "late":
            s.sendall(payload)
            time.sleep(0.02)
            try:
                s.sendall(b"\n")
            except OSError:
                pass
        else:
            raise ValueError(mode)
        if read_after:
            time.sleep(read_after)
        out = bytearray()
        while True:
            try:
                chunk = s.recv(rcvbuf or 65536)
            except ConnectionResetError:
                return bytes(out), "RST"
            except socket.timeout:
                return bytes(out), "TIMEOUT"
            if not chunk:
                return bytes(out), "EOF"
            out += chunk
    finally:
        s.close()


MNTR_KEYS = ("zk_version", "zk_server_state", "zk_num_alive_connections", "zk_znode_count",
             "zk_open_file_descriptor_count")


def answer_problem(word, text, reference_len=0):
    """None if text is a complete answer to word, else what is wrong with it."""
    if word == "ruok":
        return None if text == "imok" else "not imok"
    if word == "srvr":  # a quorum leader adds its proposal sizes after the node count
        ok = text.startswith("Zookeeper version: ") and re.search(
            r"\nNode count: \d+\n(Proposal sizes last/min/max: -?\d+/-?\d+/-?\d+\n)?\Z", text)
        return None if ok else "not a whole srvr answer"
    if word == "mntr":
        if not text.endswith("\n"):
            return "does not end with a newline"
        lines = text[:-1].split("\n")
        bad = [ln for ln in lines if not re.fullmatch(r"[A-Za-z0-9_.-]+\t.*", ln)]
        if bad:
            return "malformed line %r" % bad[0]
        keys = {ln.split("\t", 1)[0] for ln in lines}
        missing = [k for k in MNTR_KEYS if k not in keys]
        if missing:
            return "missing %s" % missing
        if len(text) < reference_len * 0.9:
            return "%d bytes, a whole one has %d" % (len(text), reference_len)
        return None
    raise ValueError(word)


def run_rounds(port, word, mode, rounds, reference_len=0):
    """Returns the failed rounds as (round, end, length, problem)."""
    failed = []
    for i in range(rounds):
        out, end = exchange(port, word.encode(), mode)
        text = out.decode("utf-8", "replace")
        problem = answer_problem(word, text, reference_len)
        if end != "EOF" or problem:
            failed.append((i, end, len(out), problem))
    return failed


@pytest.mark.parametrize("mode", MODES)
def test_answered_in_full_then_closed(server, mode):
    ref = len(server.four_letter("mntr"))
    report = {}
    for word in ("ruok", "srvr", "mntr"):
        failed = run_rounds(server.port, word, mode, ROUNDS, ref)
        if failed:
            report[word] = "%d/%d failed, e.g. %s" % (len(failed), ROUNDS, failed[:3])
    assert not report, report


class Writers:
    """Kazoo sessions writing (create, set, delete) in threads until stopped."""

    def __init__(self, kazoo_factory, root, count=4):
        self.clients = [kazoo_factory() for _ in range(count)]
        self.clients[0].create(root, b"")
        self.root = root
        self.stop_flag = threading.Event()
        self.ops = [0] * count
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(count)]

    def _run(self, i):
        zk = self.clients[i]
        path = "%s/w%d" % (self.root, i)
        try:
            while not self.stop_flag.is_set():
                zk.create(path, b"x" * 100)
                zk.set(path, b"y" * 200)
                zk.delete(path)
                self.ops[i] += 3
        except Exception as e:  # reported by stop()
            self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)


def test_answered_in_full_under_client_load(server, kazoo_factory, root):
    ref = len(server.four_letter("mntr"))
    report = {}
    with Writers(kazoo_factory, root) as writers:
        time.sleep(0.2)
        for mode in ("nc", "exact", "open"):
            for word in ("ruok", "srvr", "mntr"):
                failed = run_rounds(server.port, word, mode, 30, ref)
                if failed:
                    report[(word, mode)] = "%d/30 failed, e.g. %s" % (len(failed), failed[:3])
    assert not writers.errors, writers.errors
    assert all(n > 0 for n in writers.ops), writers.ops
    assert not report, report


def _openbsd_nc():
    nc = shutil.which("nc")
    if not nc:
        return None
    r = subprocess.run([nc, "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=5)
    return nc if b"OpenBSD netcat" in r.stdout else None


def test_real_nc(server):
    """`echo ruok | nc -q1 host port`, 50 at once per word (nc waits 1 s after stdin ends)."""
    nc = _openbsd_nc()
    if not nc:
        pytest.skip("OpenBSD netcat (Debian package netcat-openbsd) is not installed")
    ref = len(server.four_letter("mntr"))

    def one(word):
        r = subprocess.run([nc, "-q1", "127.0.0.1", str(server.port)], input=word + b"\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        return answer_problem(word.decode(), r.stdout.decode("utf-8", "replace"), ref)

    report = {}
    with ThreadPoolExecutor(ROUNDS) as pool:
        for word in (b"ruok", b"srvr", b"mntr"):
            problems = [p for p in pool.map(one, [word] * ROUNDS) if p]
            if problems:
                report[word] = "%d/%d failed: %s" % (len(problems), ROUNDS, problems[:3])
    if server.target == "zookeeper":
        # ZooKeeper resets (the newline is unread when it closes) and nc drops the
        # answer when its shutdown(SHUT_WR) then fails: about 1 run in 50 one at a time,
        # up to 1 in 7 with 50 at once. Only check that the harness itself works.
        assert all(int(v.split("/")[0]) < ROUNDS // 2 for v in report.values()), report
    else:
        assert not report, report


# ---- large answers ---------------------------------------------------------------------

SESSIONS = 40
WATCHES_PER_SESSION = 100
EPHEMERALS_PER_SESSION = 20
LONG = "p" * 120


@pytest.fixture
def crowd(server, root):
    """40 raw sessions, each watching 100 long paths and owning 20 long ephemerals."""
    conns = []
    with w.session(server.port) as c:
        assert c.call(w.OP_CREATE, w.create_body(root))[0] == w.OK
    try:
        for i in range(SESSIONS):
            c = w.session(server.port)
            conns.append(c)
            reqs = [w.frame(struct.pack(">ii", n + 1, w.OP_EXISTS)
                            + w.path_watch_body("%s/nowhere/%s/s%d-%d" % (root, LONG, i, n), True))
                    for n in range(WATCHES_PER_SESSION)]
            reqs += [w.frame(struct.pack(">ii", WATCHES_PER_SESSION + n + 1, w.OP_CREATE)
                             + w.create_body("%s/e%s-%d-%d" % (root, LONG, i, n), flags=1))
                     for n in range(EPHEMERALS_PER_SESSION)]
            c.send_raw(b"".join(reqs))
            for n in range(len(reqs)):
                xid, _, err, _ = c.recv_reply()
                assert xid == n + 1 and err == (w.NONODE if n < WATCHES_PER_SESSION else w.OK)
        yield conns
    finally:
        for c in conns:
            c.close()


def large_problem(word, text, root, sids, mntr_len):
    if word == "wchc":
        n = text.count("\t%s/nowhere/%s/s" % (root, LONG))
        want = SESSIONS * WATCHES_PER_SESSION
        return None if n == want and text.endswith("\n") else "%d of %d watches" % (n, want)
    if word == "dump":
        n = text.count("\t%s/e%s-" % (root, LONG))
        want = SESSIONS * EPHEMERALS_PER_SESSION
        return None if n == want and text.endswith("\n") else "%d of %d ephemerals" % (n, want)
    if word == "cons":
        n = sum(("sid=%s," % sid) in text for sid in sids)
        return None if n == len(sids) and text.endswith("\n\n") else "%d of %d sessions" % (
            n, len(sids))
    return answer_problem(word, text, mntr_len)


def check_large(server, root, crowd, modes, rounds):
    sids = ["0x%x" % c.session_id for c in crowd]
    mntr_len = len(server.four_letter("mntr"))
    report = {}
    for mode in modes:
        for word in ("wchc", "dump", "cons", "mntr"):
            for i in range(rounds):
                out, end = exchange(server.port, word.encode(), mode, rcvbuf=4096, read_after=0.05)
                problem = large_problem(word, out.decode("utf-8", "replace"), root, sids, mntr_len)
                if end != "EOF" or problem:
                    report.setdefault((word, mode), []).append((i, end, len(out), problem))
    return report


def test_large_answers_to_a_slow_reader(server, root, crowd):
    report = check_large(server, root, crowd, ("exact", "open"), 4)
    assert not report, report


def test_large_answers_with_bytes_after_the_word(server, root, crowd):
    if server.target == "zookeeper":
        pytest.skip("ZooKeeper 3.8 closes with those bytes unread: the kernel resets and "
                    "the rest of the answer is lost")
    report = check_large(server, root, crowd, ("nc", "more", "late"), 4)
    assert not report, report


# ---- the server's side of the connection goes too --------------------------------------

def _server_fds(server):
    mntr = server.four_letter("mntr")
    return int(re.search(r"^zk_open_file_descriptor_count\t(\d+)$", mntr, re.M).group(1))


def test_client_holding_its_socket_open(server):
    """The client reads the answer and EOF, then neither closes nor sends: the server
    closes its side anyway (RingKeeper after a linger of 2 s)."""
    base = _server_fds(server)
    held = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            held.append(s)
            s.sendall(b"ruok")
            assert w.read_to_eof(s, 64) == b"imok"
        deadline = time.monotonic() + 4
        fds = _server_fds(server)
        while fds > base + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            fds = _server_fds(server)
        assert fds <= base + 5, (base, fds)
    finally:
        for s in held:
            s.close()


# ---- session connections the server closes after a reply -------------------------------

def _read_to_close(sock):
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(out), "RST"
        if not chunk:
            return bytes(out), "EOF"
        out += chunk


@pytest.mark.parametrize("after", ("nothing", "ping", "late_ping"))
def test_session_closed_after_its_reply(server, after):
    """closeSession and a failed auth: the reply arrives whole, then EOF, whether or not
    the client sends more behind the request."""
    ping = w.frame(struct.pack(">ii", -2, w.OP_PING))
    auth = w.frame(struct.pack(">iii", -4, 100, 0) + w.Enc().ustring("nosuch").buffer(b"x").bytes())
    for request, want_err in ((w.frame(struct.pack(">ii", 7, w.OP_CLOSE)), 0), (auth, -115)):
        for _ in range(10):
            c = w.session(server.port)
            try:
                c.send_raw(request + (ping if after == "ping" else b""))
                if after == "late_ping":
                    time.sleep(0.01)
                    try:
                        c.send_raw(ping)
                    except OSError:
                        pass
                out, end = _read_to_close(c.sock)
            finally:
                c.close()
            # (ZooKeeper sometimes answers the ping behind closeSession: SESSIONEXPIRED)
            assert end == "EOF" and len(out) >= 20, (end, out)
            length, xid, _zxid, err = struct.unpack(">iiqi", out[:20])
            assert (length, err) == (16, want_err) and xid in (7, -4), out


# ---- gtmk / stmk ----------------------------------------------------------------------

def stmk(port, mask, mode="exact", tail=b""):
    out, end = exchange(port, b"stmk" + struct.pack(">q", mask) + tail, mode)
    assert end == "EOF"
    return out.decode()


def gtmk(port, mode="exact"):
    out, end = exchange(port, b"gtmk", mode)
    assert end == "EOF"
    return out.decode()


def test_gtmk_stmk(server):
    port = server.port
    assert gtmk(port) == str(TRACE_MASK_DEFAULT)  # decimal, no newline
    try:
        for mask in (5, -1, 1 << 40, 0):
            assert stmk(port, mask) == str(mask)
            assert gtmk(port) == str(mask)
        # bytes after the 8 are ignored (here a newline, as from nc)
        assert stmk(port, 77, tail=b"\n") == "77"
        assert gtmk(port, "nc") == "77"
        for i in range(20):
            for mode in ("nc", "exact", "open"):
                assert stmk(port, 1000 + i, mode) == str(1000 + i)
                assert gtmk(port, mode) == str(1000 + i)
        # fewer than 8 bytes, then EOF: no answer, mask unchanged
        out, end = exchange(port, b"stmk" + b"\0" * 7, "exact")
        assert (out, end) == (b"", "EOF")
        assert gtmk(port) == "1019"
    finally:
        assert stmk(port, TRACE_MASK_DEFAULT) == str(TRACE_MASK_DEFAULT)


def test_stmk_argument_in_pieces(server):
    if server.target == "zookeeper":
        pytest.skip("ZooKeeper reads the mask once, with the word, and drops the connection "
                    "when it came later")
    arg = struct.pack(">q", 4242)
    try:
        for pieces in ([b"st", b"mk" + arg[:3], arg[3:] + b"\n"],
                       [b"stmk"] + [arg[i:i + 1] for i in range(8)]):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for p in pieces:
                s.sendall(p)
                time.sleep(0.02)
            out = b""
            while True:
                chunk = s.recv(64)
                if not chunk:
                    break
                out += chunk
            s.close()
            assert out == b"4242"
            assert gtmk(server.port) == "4242"
    finally:
        assert stmk(server.port, TRACE_MASK_DEFAULT) == str(TRACE_MASK_DEFAULT)


def test_stmk_not_whitelisted(server, server_pool, request):
    srv = server_pool.new_like(server, request, whitelist="ruok,srvr,gtmk")
    try:
        for mode in ("nc", "exact", "open"):
            out, end = exchange(srv.port, b"stmk" + struct.pack(">q", 9), mode)
            assert out == b"stmk is not executed because it is not in the whitelist.\n"
        assert gtmk(srv.port) == str(TRACE_MASK_DEFAULT)
    finally:
        srv.stop()
