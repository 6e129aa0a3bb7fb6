"""ZooKeeper C client (libzookeeper-mt, synchronous API) scenario: c_client.c.

Compiled here with `cc ... -lzookeeper_mt` into a temp dir (not through meson), then run
against each target. The program checks create/get/set/delete/exists/get_children2/multi,
exists/data/child watches (CREATED, CHANGED once, CHILD), sequential and ephemeral nodes,
exact error codes (ZNODEEXISTS, ZBADVERSION, ZNOTEMPTY, ZNONODE, ZNOCHILDRENFOREPHEMERALS),
multi success/failure results, a 512 KiB value, and that ephemeralOwner equals the session
id. The C client needs the 37-byte handshake reply (readOnly byte). It also checks, after
the scenario, that the ephemeral of the closed C session is gone.

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def c_client_bin(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    if not os.path.exists("/usr/include/zookeeper/zookeeper.h"):
        pytest.skip("libzookeeper-mt-dev is not installed")
    out = str(tmp_path_factory.mktemp("cbin") / "c_client")
    r = subprocess.run([cc, "-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror",
                        "-o", out, os.path.join(HERE, "c_client.c"),
                        "-lzookeeper_mt", "-lpthread"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def test_c_client_scenario(server, root, c_client_bin, zk):
    r = subprocess.run([c_client_bin, server.hosts, root], capture_output=True, text=True,
                       timeout=60)
    print(r.stdout)
    print(r.stderr[-3000:])
    assert "FAIL" not in r.stdout
    assert r.returncode == 0
    assert r.stdout.rstrip().endswith(" 0 failures")
    # the C session was closed: its ephemeral is gone, the persistent nodes remain
    assert sorted(zk.get_children(root)) == ["big", "child", "m1", "s-0000000001"]
