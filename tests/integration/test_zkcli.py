"""zkCli.sh (the Java ZooKeeper client shell) in non-interactive mode, one command per JVM.

Pins (exit status, and the exact lines on stdout/stderr once the connection banner
"Connecting to", "WATCHER::", "WatchedEvent state:SyncConnected type:None path:null" and
SLF4J noise are stripped):
- create => stderr "Created <path>", rc 0; creating it again => "Node already exists: <path>", rc 1;
- ls => "[]" / "[a, b]"; get => the data; set => rc 0, nothing printed;
- stat => the 11 "key = value" lines with cZxid/mZxid/pZxid hex, dataVersion 1 after one set,
  dataLength, numChildren, ephemeralOwner = 0x0;
- delete => rc 0; get afterwards => "Node does not exist: <path>", rc 1.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import os
import re
import subprocess

import pytest

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
NOISE = re.compile(r"^(Connecting to |WATCHER::$|WatchedEvent state:SyncConnected type:None path:null$"
                   r"|SLF4J: |\s*$)")


def zkcli(server, tmp_path, *args):
    env = dict(os.environ, ZOO_LOG_DIR=str(tmp_path))
    r = subprocess.run([ZKCLI, "-server", server.hosts] + list(args), env=env,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    out = [l for l in r.stdout.splitlines() if not NOISE.match(l)]
    err = [l for l in r.stderr.splitlines() if not NOISE.match(l)]
    return r.returncode, out, err


@pytest.fixture
def cli(server, tmp_path):
    if not os.path.exists(ZKCLI):
        pytest.skip("zkCli.sh not installed")
    return lambda *a: zkcli(server, tmp_path, *a)


def test_zkcli_roundtrip(cli, zk, root):
    zk.create(root)
    x = root + "/x"

    rc, out, err = cli("create", x, "data")
    assert (rc, out, err) == (0, [], ["Created " + x])
    rc, out, err = cli("create", x, "again")
    assert (rc, out, err) == (1, [], ["Node already exists: " + x])

    zk.create(x + "/b")
    zk.create(x + "/a")
    rc, out, err = cli("ls", x)
    assert rc == 0 and err == []
    assert out == ["[a, b]"]

    rc, out, err = cli("get", x)
    assert (rc, out, err) == (0, ["data"], [])

    rc, out, err = cli("set", x, "v2")
    assert (rc, out, err) == (0, [], [])
    assert zk.get(x)[0] == b"v2"

    rc, out, err = cli("stat", x)
    assert rc == 0 and err == []
    kv = dict(l.split(" = ", 1) for l in out)
    assert list(kv) == ["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion",
                        "dataVersion", "aclVersion", "ephemeralOwner", "dataLength",
                        "numChildren"]
    st = zk.exists(x)
    assert kv["cZxid"] == hex(st.czxid)
    assert kv["mZxid"] == hex(st.mzxid)
    assert kv["pZxid"] == hex(st.pzxid)
    assert (kv["cversion"], kv["dataVersion"], kv["aclVersion"]) == ("2", "1", "0")
    assert kv["ephemeralOwner"] == "0x0"
    assert (kv["dataLength"], kv["numChildren"]) == ("2", "2")
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}", kv["ctime"])

    zk.delete(x, recursive=True)
    zk.create(x, b"gone soon")
    rc, out, err = cli("delete", x)
    assert (rc, out, err) == (0, [], [])
    assert zk.exists(x) is None

    rc, out, err = cli("get", x)
    assert (rc, out, err) == (1, [], ["Node does not exist: " + x])
