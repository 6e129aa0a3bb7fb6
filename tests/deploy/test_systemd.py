"""deploy/systemd/ringkeeper.service and the sd_notify messages of core/main.c.

- `systemd-analyze verify` accepts the unit (its ExecStart pointed at the binary under
  test).
- Type=notify: with $NOTIFY_SOCKET set (a path, or an abstract '@name'), the server
  sends READY=1 once its client port answers, and STOPPING=1 on SIGTERM.
- The unit's hardening keeps io_uring working: the server runs under the same
  seccomp allow-list (the unit's SystemCallFilter= lines expanded by
  `systemd-analyze syscall-filter`, SystemCallErrorNumber=EPERM, and its
  RestrictAddressFamilies=), no_new_privs, MemoryDenyWriteExecute (the kernel's
  PR_SET_MDWE, which systemd uses where it can) and an unprivileged user, and serves
  kazoo; the same filter without the io_uring calls makes it exit 1 at once with
  the reason (so the filter really applies). The mount protections (ProtectSystem=
  and the like) are not reproduced: they do not touch io_uring.
No systemd runs as PID 1 here, so the unit itself is not started.
"""
import ctypes
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from deploy_util import REPO, free_port, need_tools, ringkeeper_bin

UNIT = os.path.join(REPO, "deploy", "systemd", "ringkeeper.service")


def four_letter(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            b = s.recv(4096)
            if not b:
                return out.decode()
            out += b


def unit_values(key):
    with open(UNIT) as f:
        return [line.split("=", 1)[1].strip() for line in f if line.startswith(key + "=")]


def test_systemd_analyze_verify(tmp_path):
    need_tools("systemd-analyze")
    binary = ringkeeper_bin()
    with open(UNIT) as f:
        text = f.read()
    assert "ExecStart=/usr/local/bin/ringkeeper " in text
    unit = tmp_path / "ringkeeper.service"
    unit.write_text(text.replace("ExecStart=/usr/local/bin/ringkeeper ", "ExecStart=%s " % binary))
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    assert unit_values("Type") == ["notify"]
    assert unit_values("Restart") == ["on-failure"]
    assert unit_values("LimitNOFILE") == ["262144"]


def config(tmp_path, port):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n"
                   "forceSync=no\nthreads=1\nmetricsPort=0\n" % (data, port))
    return cfg


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_once_the_client_port_answers_and_stopping_on_sigterm(tmp_path, kind):
    binary = ringkeeper_bin()
    port = free_port()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "path":
        name = str(tmp_path / "notify")
        sock.bind(name)
    else:
        name = "@rk-notify-%d" % os.getpid()
        sock.bind("\0" + name[1:])
    sock.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=name)
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([binary, "--config", str(config(tmp_path, port))], env=env, stdout=log, stderr=log)
    try:
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving\n"
        assert four_letter(port, "ruok") == "imok"  # at READY the port already answers
        os.kill(proc.pid, signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1\n"
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        sock.close()


def test_no_notify_socket_sends_nothing_and_a_bad_one_is_logged(tmp_path):
    binary = ringkeeper_bin()
    port = free_port()
    env = dict(os.environ, NOTIFY_SOCKET="relative/path")
    proc = subprocess.Popen([binary, "--config", str(config(tmp_path, port))], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 15
    while True:
        try:
            if four_letter(port, "ruok") == "imok":
                break
        except OSError:
            pass
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert out.count("NOTIFY_SOCKET=relative/path is not a socket path: systemd is not told") == 2


# ---- the unit's syscall filter, for real ----------------------------------------------------------

def expand(group, seen):
    """The syscalls of a systemd group (@name), recursively, as systemd-analyze lists them."""
    if group in seen:
        return set()
    seen.add(group)
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", group], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        names |= expand(line, seen) if line.startswith("@") else {line}
    return names


def unit_syscalls():
    """The allow-list the unit's SystemCallFilter= lines make."""
    allowed = set()
    for value in unit_values("SystemCallFilter"):
        deny = value.startswith("~")
        names = set()
        for word in value.lstrip("~").split():
            names |= expand(word, set()) if word.startswith("@") else {word}
        allowed = allowed - names if deny else allowed | names
    return allowed


def confine(allowed, families, uid):
    """A preexec_fn: the unit's confinement of the child, then exec."""
    import seccomp

    def apply():
        libc = ctypes.CDLL(None, use_errno=True)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS: NoNewPrivileges=yes
        assert libc.prctl(65, 1, 0, 0, 0) == 0  # PR_SET_MDWE, REFUSE_EXEC_GAIN: MemoryDenyWriteExecute=yes
        f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(1))  # SystemCallErrorNumber=EPERM
        for name in sorted(allowed - {"socket"}):
            try:
                f.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError):
                pass  # not a syscall of this architecture or this libseccomp
        for family in families:  # RestrictAddressFamilies=
            f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
        f.add_rule(seccomp.ERRNO(97), "socket", seccomp.Arg(0, seccomp.GT, 0))  # EAFNOSUPPORT otherwise
        f.load()
    return apply


@pytest.fixture
def confined():
    need_tools("systemd-analyze")
    pytest.importorskip("seccomp", reason="python3-seccomp missing (deploy/install-deps.sh --test installs it)")
    if os.geteuid() != 0:
        pytest.skip("changing to an unprivileged user needs root")
    if ctypes.CDLL(None).prctl(66, 0, 0, 0, 0) < 0:  # PR_GET_MDWE
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    allowed = unit_syscalls()
    families = {"AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6, "AF_UNIX": socket.AF_UNIX}
    fams = [families[f] for f in " ".join(unit_values("RestrictAddressFamilies")).split()]
    assert fams == [socket.AF_INET, socket.AF_INET6, socket.AF_UNIX]
    # pytest's own directories are root's alone: the unprivileged server gets one in /tmp.
    work = pathlib.Path(tempfile.mkdtemp(prefix="rk-systemd-"))
    os.chmod(work, 0o755)

    def start(allowed_set):
        port = free_port()
        cfg = config(work, port)
        os.chown(work / "data", 65534, 65534)
        log = open(work / "server.log", "wb")
        proc = subprocess.Popen([ringkeeper_bin(), "--config", str(cfg)], stdout=log, stderr=log,
                                preexec_fn=confine(allowed_set, fams, 65534))
        log.close()
        return proc, port
    yield allowed, start, work
    shutil.rmtree(work, ignore_errors=True)


def test_the_units_hardening_keeps_io_uring_working(confined):
    from kazoo.client import KazooClient

    allowed, start, tmp_path = confined
    assert {"io_uring_setup", "io_uring_enter", "io_uring_register", "sched_setaffinity"} <= allowed
    assert "mount" not in allowed and "reboot" not in allowed
    proc, port = start(allowed)
    try:
        deadline = time.time() + 15
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if four_letter(port, "ruok") == "imok":
                    break
            except OSError:
                pass
            assert time.time() < deadline
            time.sleep(0.05)
        zk = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10)
        zk.start(timeout=15)
        zk.create("/confined", b"io_uring under the unit's seccomp filter")
        assert zk.get("/confined")[0] == b"io_uring under the unit's seccomp filter"
        zk.stop()
        assert re.search(r"^Uid:\s+65534\s", open("/proc/%d/status" % proc.pid).read(), re.M)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "server.log").read_text()


def test_without_the_io_uring_calls_the_server_exits_at_once_with_the_reason(confined):
    allowed, start, tmp_path = confined
    proc, _ = start(allowed - {"io_uring_setup", "io_uring_enter", "io_uring_register"})
    assert proc.wait(15) == 1
    assert "io_uring is not available (io_uring_setup: Operation not permitted)" in \
        (tmp_path / "server.log").read_text()
