"""Ports for the servers a test starts.

A port picked with bind(("127.0.0.1", 0)) lies in the kernel's ephemeral range
(net.ipv4.ip_local_port_range, 32768-60999 by default), the range outgoing connections
take their local ports from: between the pick and the server's own bind, any client
connection of the suite may take it ("Address already in use" on a peer port, seen in
CI). So ports come from below that range, each handed out once per process, and only
when nothing listens there now.
"""
import os
import random
import socket

_handed = set()
_rng = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little"))


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port on 127.0.0.1 outside the ephemeral range that nothing is bound to."""
    high = _ephemeral_low()
    low = 10000 if high > 12000 else 1024
    for _ in range(1000):
        port = _rng.randrange(low, high)
        if port in _handed:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _handed.add(port)
        return port
    raise RuntimeError("no free port below %d" % high)
