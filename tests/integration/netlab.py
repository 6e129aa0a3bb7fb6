"""A private network of namespaces for partition tests.

    root namespace (pytest, the clients)                 <prefix>-b (bridge br0)
      <veth> 10.213.K.254/24  ──────────────────────────── port
                                         <prefix>-1  eth0 10.213.K.1 ─ port
                                         <prefix>-2  eth0 10.213.K.2 ─ port
                                         <prefix>-3  eth0 10.213.K.3 ─ port

Each server runs in its own namespace on its own address (cluster.Cluster with
`addresses` and `netns`); the clients connect from the root namespace. All of it is
inside this machine: the subnet is routed only to our veth.

cut(a, b) stops all traffic between servers a and b, silently, in both directions, and
leaves both reachable by the clients: each routes the other's address through a
neighbour that does not exist (a permanent entry with an unused MAC), so its frames go
into the bridge and are dropped by every receiver (no error comes back, as when a
cable is pulled). heal() removes those routes.

Needs root and iproute2 with veth and bridge support; `available()` says why not.
close() deletes every namespace (and with them the veths); it runs even when a test
fails (fixture finalizer) and at interpreter exit.
"""
import atexit
import os
import random
import shutil
import subprocess

GHOST_MAC = "02:00:5e:10:00:01"  # locally administered, never assigned here


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def available():
    """None if namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if not shutil.which("ip"):
        return "iproute2's ip is not installed"
    name = "rkprobe%d" % os.getpid()
    r = _ip("netns", "add", name, check=False)
    if r.returncode != 0:
        return "ip netns add is not allowed here: %s" % r.stderr.strip()
    try:
        r = _ip("-n", name, "link", "add", "br0", "type", "bridge", check=False)
        if r.returncode != 0:
            return "no bridge support in this kernel: %s" % r.stderr.strip()
        r = _ip("-n", name, "link", "add", "va", "type", "veth", "peer", "name", "vb", check=False)
        if r.returncode != 0:
            return "no veth support in this kernel: %s" % r.stderr.strip()
    finally:
        _ip("netns", "del", name, check=False)
    return None


class NetLab:
    def __init__(self, size=3):
        tag = "%x" % (os.getpid() & 0xffff)
        self.prefix = "rkp%s" % tag
        used = _ip("-4", "route", "show").stdout  # another lab of a parallel run
        free = [k for k in range(1, 250) if "10.213.%d." % k not in used]
        self.k = random.choice(free)
        self.subnet = "10.213.%d" % self.k
        self.bridge_ns = self.prefix + "-b"
        self.names = ["%s-%d" % (self.prefix, i) for i in range(1, size + 1)]
        self.addresses = ["%s.%d" % (self.subnet, i) for i in range(1, size + 1)]
        self.client_address = "%s.254" % self.subnet
        self.root_veth = "rkr%s" % tag
        self.cuts = set()
        self.closed = False
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self):
        b = self.bridge_ns
        _ip("netns", "add", b)
        _ip("-n", b, "link", "set", "lo", "up")
        _ip("-n", b, "link", "add", "br0", "type", "bridge")
        _ip("-n", b, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.names, self.addresses), start=1):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # both ends made inside the bridge namespace, one moved: no name in the root
            _ip("-n", b, "link", "add", "p%d" % i, "type", "veth", "peer", "name", "e%d" % i)
            _ip("-n", b, "link", "set", "e%d" % i, "netns", ns)
            _ip("-n", ns, "link", "set", "e%d" % i, "name", "eth0")
            _ip("-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "neigh", "add", self.subnet + ".250", "lladdr", GHOST_MAC,
                "dev", "eth0", "nud", "permanent")
            _ip("-n", b, "link", "set", "p%d" % i, "master", "br0")
            _ip("-n", b, "link", "set", "p%d" % i, "up")
        _ip("link", "add", self.root_veth, "type", "veth", "peer", "name", "pr", "netns", b)
        _ip("-n", b, "link", "set", "pr", "master", "br0")
        _ip("-n", b, "link", "set", "pr", "up")
        _ip("addr", "add", self.client_address + "/24", "dev", self.root_veth)
        _ip("link", "set", self.root_veth, "up")

    # -- partitions -----------------------------------------------------------------
    def _route(self, verb, i, j):
        _ip("-n", self.names[i], "route", verb, self.addresses[j] + "/32",
            "via", self.subnet + ".250", "dev", "eth0", check=(verb == "add"))

    def cut(self, a, b):
        """No traffic between server indexes a and b (0-based) until heal()."""
        for i, j in ((a, b), (b, a)):
            if (i, j) not in self.cuts:
                self._route("add", i, j)
                self.cuts.add((i, j))

    def isolate(self, a):
        """Server a cut from every other server (clients still reach it)."""
        for b in range(len(self.names)):
            if b != a:
                self.cut(a, b)

    def heal(self):
        for i, j in sorted(self.cuts):
            self._route("del", i, j)
        self.cuts.clear()

    def close(self):
        if self.closed:
            return
        self.closed = True
        for ns in self.names + [self.bridge_ns]:
            _ip("netns", "del", ns, check=False)  # its veths go with it
        _ip("link", "del", self.root_veth, check=False)
