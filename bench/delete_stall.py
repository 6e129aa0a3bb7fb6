#!/usr/bin/python3
"""delete_stall.py - what deleting a big file does to a log's fdatasync on the same disk.

A probe thread appends 4 KiB with O_DIRECT and fdatasyncs, in a loop, into a
preallocated file (as the log does); meanwhile a big file (a snapshot's size) is
deleted either at once (unlink) or as core/file.c's rk_delete_paced does it (renamed,
shortened by --step-mb at a time, each step fdatasynced and --pause-ms apart, then
unlinked). Prints the probe's latencies before the delete and from its start until
3 s after its end. A benchmark: it measures, it asserts nothing.

    /usr/bin/python3 bench/delete_stall.py --dir /var/tmp --size-mb 460 --rounds 2
"""
import argparse
import mmap
import os
import tempfile
import threading
import time

PROBE_BYTES = 64 << 20


def write_big(path, size_mb):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    chunk = os.urandom(1 << 20)
    for _ in range(size_mb):
        os.write(fd, chunk)
    os.fsync(fd)
    os.close(fd)


def delete(path, mode, step, pause):
    if mode == "unlink":
        os.unlink(path)
        return
    doomed = path + ".tmp"
    os.rename(path, doomed)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    fd = os.open(doomed, os.O_WRONLY)
    size = os.fstat(fd).st_size
    while size > step:
        size -= step
        os.ftruncate(fd, size)
        os.fdatasync(fd)
        time.sleep(pause)
    os.close(fd)
    os.unlink(doomed)


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else float("nan")


def one(workdir, mode, args):
    big = os.path.join(workdir, "big")
    write_big(big, args.size_mb)
    time.sleep(6)  # past the journal's commit interval: the file's blocks are settled
    pfd = os.open(os.path.join(workdir, "probe"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    os.posix_fallocate(pfd, 0, PROBE_BYTES)
    buf = mmap.mmap(-1, 4096)
    buf.write(b"x" * 4096)
    for off in range(0, PROBE_BYTES, 4096):  # written once: later writes are overwrites
        os.pwrite(pfd, buf, off)
    os.fsync(pfd)
    lat, stop = [], threading.Event()

    def probe():
        off = 0
        while not stop.is_set():
            t = time.perf_counter()
            os.pwrite(pfd, buf, off)
            os.fdatasync(pfd)
            lat.append((t, time.perf_counter() - t))
            off = (off + 4096) % PROBE_BYTES

    th = threading.Thread(target=probe)
    th.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    delete(big, mode, args.step_mb << 20, args.pause_ms / 1e3)
    t1 = time.perf_counter()
    time.sleep(3.0)
    stop.set()
    th.join()
    os.close(pfd)
    before = [l for t, l in lat if t < t0]
    during = [l for t, l in lat if t0 <= t < t1 + 3]
    print("%-6s delete %6.1f ms | before: n=%5d p50 %.2f max %6.2f ms | during and 3 s after: "
          "n=%5d p50 %.2f p99 %.2f max %6.2f ms" % (
              mode, (t1 - t0) * 1e3, len(before), quantile(before, .5), max(before) * 1e3,
              len(during), quantile(during, .5), quantile(during, .99), max(during) * 1e3), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/var/tmp", help="on the disk to measure (not tmpfs)")
    ap.add_argument("--size-mb", type=int, default=460, help="the deleted file (460: a 10M-znode snapshot)")
    ap.add_argument("--step-mb", type=int, default=16)
    ap.add_argument("--pause-ms", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    for _ in range(args.rounds):
        for mode in ("unlink", "paced"):
            with tempfile.TemporaryDirectory(prefix="rk-delete-stall.", dir=args.dir) as d:
                one(d, mode, args)


if __name__ == "__main__":
    main()
