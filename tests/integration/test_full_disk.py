"""A full disk under the log: writes fail with an error reply, nothing else breaks.

RingKeeper only (ZooKeeper has no defined behaviour here). Needs root and a loop device:
a 64 MiB ext4 image (mkfs.ext4 -m 0) is loop-mounted and used as the dataDir, the server
runs with forceSync=yes and --preAllocSize=2048 (2 MiB segments, the smallest the log
takes is about 1 MiB, so new segments are needed often). The test is skipped with the
reason when the image cannot be mounted.

1. 200 creates (1 KiB each) acknowledged on the empty disk;
2. a filler file takes every free block;
3. creates go on (one session, synchronous, 10 s reply timeout: a hang fails the test)
   until 20 in a row fail: every failure is an error reply with a non-zero code (the code
   is printed; RingKeeper answers SYSTEMERROR -1), the connection stays usable, the server
   process is alive and answers ruok, setData fails the same way, reads work, every
   acknowledged write is readable with its data and no refused create exists;
   a pipelined burst of 50 small creates gets 50 replies in request order, ok or error
   (no hang; small records may still fit the end of the current segment);
4. the filler is deleted: within 15 s writes succeed again, then 100 more all succeed;
5. SIGKILL + restart on the same dataDir: every acknowledged write is present with its
   data, every refused one absent, and the srvr Zxid >= the last acknowledged zxid.
The image is unmounted and removed in a finally block.
"""
import errno
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import conftest
import crashload as cl
import zkwire as w

IMAGE_MB = 64
DATA = 1024
# The smallest segment the log accepts must hold one full batch (batch_bytes_max, about
# 1 MiB, + 8 KiB): --preAllocSize=64 is refused at startup ("segment_size_bytes 65536 must
# ... hold batch_bytes_max 1053206 + 8 KiB"). 2 MiB segments: a new one every ~1800 writes.
PREALLOC_KB = 2048


def _run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def small_fs():
    if os.geteuid() != 0:
        pytest.skip("needs root to loop-mount an ext4 image")
    if not shutil.which("mkfs.ext4") and not os.path.exists("/sbin/mkfs.ext4"):
        pytest.skip("mkfs.ext4 not installed (e2fsprogs)")
    base = tempfile.mkdtemp(prefix="rk-fulldisk-")
    img = os.path.join(base, "disk.img")
    mnt = os.path.join(base, "mnt")
    os.mkdir(mnt)
    mounted = False
    try:
        with open(img, "wb") as f:
            f.truncate(IMAGE_MB << 20)
        r = _run(["mkfs.ext4", "-q", "-F", "-m", "0", img])
        if r.returncode != 0:
            pytest.skip("mkfs.ext4 failed: %s" % r.stdout.decode(errors="replace"))
        r = _run(["mount", "-o", "loop", img, mnt])
        if r.returncode != 0:
            pytest.skip("cannot loop-mount an ext4 image here: %s"
                        % r.stdout.decode(errors="replace").strip())
        mounted = True
        yield mnt
    finally:
        if mounted:
            for _ in range(20):               # bounded: the server may still be exiting
                if _run(["umount", mnt]).returncode == 0:
                    break
                time.sleep(0.5)
            else:
                _run(["umount", "-l", mnt])
        shutil.rmtree(base, ignore_errors=True)


def _fill(path):
    """Writes `path` until ENOSPC (1 MiB then 4 KiB chunks); returns bytes written."""
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (1 << 20, 4096, 512):
            buf = b"\xa5" * chunk
            for _ in range((IMAGE_MB << 20) // chunk + 1):
                try:
                    k = os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                n += k
                if k < chunk:
                    break
        try:
            os.fsync(fd)
        except OSError:
            pass
    finally:
        os.close(fd)
    return n


def _ruok(srv):
    try:
        return srv.four_letter("ruok", timeout=3)
    except OSError as e:
        return repr(e)


def _create(conn, path, data):
    """(err, zxid) of one synchronous create; raises on a dead/hung connection."""
    err, d = conn.call(w.OP_CREATE, w.create_body(path, data))
    if err == 0:
        assert d.ustring() == path
    return err, conn.last_zxid


def _data(i, tag):
    head = b"%s-%d:" % (tag, i)
    return head + bytes((i * 7 + j) & 0xFF for j in range(DATA - len(head)))


def _check_all(conn, acked, refused, what):
    paths = sorted(acked)
    res = cl.pipelined(conn, [(w.OP_GETDATA, w.path_watch_body(p)) for p in paths])
    bad = []
    for p, (err, _, d) in zip(paths, res):
        if err != 0:
            bad.append("%s: error %d" % (p, err))
        elif d.buffer() != acked[p]:
            bad.append("%s: wrong data" % p)
    refused = sorted(refused)
    res = cl.pipelined(conn, [(w.OP_EXISTS, w.path_watch_body(p)) for p in refused])
    for p, (err, _, d) in zip(refused, res):
        if err != w.NONODE:
            bad.append("refused create %s: exists answers %d, expected NONODE" % (p, err))
    assert not bad, "%s: %d problems: %s" % (what, len(bad), bad[:10])


@pytest.mark.parametrize("target", ["ringkeeper"])
def test_full_disk(target, small_fs, request, capsys):
    reason = conftest._skip_reason(target)
    if reason:
        pytest.skip(reason)
    workdir = tempfile.mkdtemp(prefix="rk-fulldisk-srv-")
    request.addfinalizer(lambda: shutil.rmtree(workdir, ignore_errors=True))
    srv = cl.DurableServer(target, workdir, extra_args=["--preAllocSize=%d" % PREALLOC_KB])
    srv.data_dir = os.path.join(small_fs, "data")
    os.makedirs(srv.data_dir)
    request.node._rk_servers = [srv]
    filler = os.path.join(small_fs, "filler")
    root = "/full"
    acked, refused = {}, set()
    conn = None
    try:
        srv.start()
        conn = cl.open_session(srv.port)
        # Opened now: on a full disk a new session cannot be logged (createSession is a
        # write, in ZooKeeper too), but an existing one keeps reading.
        other = cl.open_session(srv.port)
        assert _create(conn, root, b"")[0] == 0
        last_zxid = conn.last_zxid
        for i in range(200):
            p = "%s/pre%d" % (root, i)
            err, z = _create(conn, p, _data(i, b"pre"))
            assert err == 0, "create %s on an empty disk: error %d" % (p, err)
            acked[p] = _data(i, b"pre")
            last_zxid = z

        filled = _fill(filler)
        st = os.statvfs(small_fs)
        free = st.f_bavail * st.f_frsize

        # ---- writes until 20 in a row fail
        codes = {}
        first_err_at = None
        consecutive = 0
        t0 = time.monotonic()
        i = 0
        while consecutive < 20 and i < 20000 and time.monotonic() - t0 < 60:
            p = "%s/fill%d" % (root, i)
            t = time.monotonic()
            try:
                err, z = _create(conn, p, _data(i, b"fill"))  # 10 s socket timeout: no hang
            except (OSError, w.Closed) as e:
                alive = srv.alive()
                pytest.fail("create %s on a full disk (after %d acked, %d refused): no reply, "
                            "connection ended (%r); server alive: %s, ruok: %r; error codes so far %r"
                            % (p, len(acked), len(refused), e, alive,
                               _ruok(srv) if alive else None, codes))
            assert time.monotonic() - t < 10
            if err == 0:
                acked[p] = _data(i, b"fill")
                last_zxid = z
                consecutive = 0
            else:
                codes[err] = codes.get(err, 0) + 1
                refused.add(p)
                consecutive += 1
                if first_err_at is None:
                    first_err_at = i
            i += 1
        with capsys.disabled():
            print("\n[test_full_disk] filler %d bytes (free after: %d); %d creates before the "
                  "first error; error codes %s; %.1fs"
                  % (filled, free, first_err_at if first_err_at is not None else -1, codes,
                     time.monotonic() - t0))
        assert consecutive >= 20, ("writes never failed on a full disk (%d tried, %d acked)"
                                   % (i, len(acked)))
        assert all(c != 0 for c in codes), codes
        assert srv.alive(), "server died on a full disk:\n" + srv.log_tail()
        assert srv.four_letter("ruok") == "imok"

        # setData refused the same way (2 KiB: a tiny record may still fit the last bytes
        # of the current segment, where a 1 KiB create did not), the connection still works
        err, d = conn.call(w.OP_SETDATA, w.setdata_body(root + "/pre0", b"c" * 2048, -1))
        assert err != 0, "a 2 KiB setData succeeded where 20 1 KiB creates in a row failed"
        refused_set_code = err
        err, d = conn.call(w.OP_GETDATA, w.path_watch_body(root + "/pre0"))
        assert err == 0 and d.buffer() == acked[root + "/pre0"]

        # a pipelined burst gets one reply per request
        burst = ["%s/burst%d" % (root, j) for j in range(50)]
        res = cl.pipelined(conn, [(w.OP_CREATE, w.create_body(p, b"b")) for p in burst],
                           window=50)
        assert len(res) == 50
        for p, (err, _, d) in zip(burst, res):
            if err == 0:
                acked[p] = b"b"
            else:
                assert err != 0
                refused.add(p)
        assert srv.alive() and srv.four_letter("ruok") == "imok"

        # a second session reads everything acknowledged; refused creates do not exist
        try:
            _check_all(other, acked, refused, "disk full, before freeing space")
        finally:
            other.close()
        _check_all(conn, acked, refused, "disk full, same session")

        # ---- space comes back
        os.unlink(filler)
        deadline = time.monotonic() + 15
        ok_at = None
        j = 0
        while time.monotonic() < deadline and j < 5000:
            p = "%s/after%d" % (root, j)
            err, z = _create(conn, p, _data(j, b"after"))
            j += 1
            if err == 0:
                acked[p] = _data(j - 1, b"after")
                last_zxid = z
                ok_at = j
                break
            refused.add(p)
            time.sleep(0.05)
        assert ok_at is not None, "writes still fail 15 s after the filler was deleted"
        for k in range(100):
            p = "%s/again%d" % (root, k)
            err, z = _create(conn, p, _data(k, b"again"))
            assert err == 0, "create %s after space came back: error %d" % (p, err)
            acked[p] = _data(k, b"again")
            last_zxid = z
        err, d = conn.call(w.OP_SETDATA, w.setdata_body(root + "/pre0", b"changed", -1))
        assert err == 0 and d.stat()["version"] == 1
        acked[root + "/pre0"] = b"changed"
        last_zxid = conn.last_zxid
        conn.close()
        conn = None

        # ---- crash and recover
        srv.kill9()
        srv.start_again()
        z = cl.srvr_zxid(srv.port)
        assert z >= last_zxid, "srvr Zxid 0x%x < last acknowledged zxid 0x%x" % (z, last_zxid)
        conn = cl.open_session(srv.port)
        _check_all(conn, acked, refused, "after SIGKILL + restart")
        with capsys.disabled():
            print("  refused setData code %d; %d acknowledged, %d refused, all checked after "
                  "restart" % (refused_set_code, len(acked), len(refused)))
    finally:
        if conn is not None:
            conn.close()
        srv.stop(signal.SIGKILL)
