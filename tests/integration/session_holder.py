"""Helper process for the session tests: opens a kazoo session, creates the ephemeral
nodes named on the command line, prints "<session id> <password hex>" and then sleeps
(at most 120 s) until the test kills it with SIGKILL, leaving the session orphaned.

usage: session_holder.py HOST:PORT TIMEOUT_S PATH...
"""
import sys
import time

from kazoo.client import KazooClient


def main():
    hosts, timeout = sys.argv[1], float(sys.argv[2])
    zk = KazooClient(hosts=hosts, timeout=timeout)
    zk.start(timeout=15)
    for p in sys.argv[3:]:
        zk.create(p, b"held", ephemeral=True)
    sid, passwd = zk.client_id
    print("%d %s" % (sid, passwd.hex()), flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
