"""deploy/container/entrypoint.sh: the zoo.cfg and myid it writes, exactly.

Runs the script as the image and the StatefulSet run it, with RK_ENTRYPOINT_DRY_RUN=1
(it writes the files and exits instead of exec'ing ringkeeper): Kubernetes pods of
ordinals 0..4 with 3 and 5 replicas, ZooKeeper's image variables, a mounted zoo.cfg,
and the refusals (a volume of another server, a host name that is not a pod's, an
ordinal past the replicas). One test then execs a stand-in binary to check the
arguments it passes on.
"""
import os
import signal
import subprocess
import time

import pytest

from deploy_util import REPO, free_port, need_tools, ringkeeper_bin

ENTRYPOINT = os.path.join(REPO, "deploy", "container", "entrypoint.sh")

# The StatefulSet's ConfigMap, cut down: the entrypoint copies it and adds server lines.
BASE_CFG = "tickTime=2000\ndataDir={data}\nclientPort=2181\n4lw.commands.whitelist=srvr,ruok\n"

SERVERS_3 = (
    "server.1=ringkeeper-0.ringkeeper-headless.prod.svc.cluster.local:2888:3888;2181\n"
    "server.2=ringkeeper-1.ringkeeper-headless.prod.svc.cluster.local:2888:3888;2181\n"
    "server.3=ringkeeper-2.ringkeeper-headless.prod.svc.cluster.local:2888:3888;2181\n"
)
SERVERS_5 = SERVERS_3 + (
    "server.4=ringkeeper-3.ringkeeper-headless.prod.svc.cluster.local:2888:3888;2181\n"
    "server.5=ringkeeper-4.ringkeeper-headless.prod.svc.cluster.local:2888:3888;2181\n"
)


def run(tmp_path, env, args=(), base=None):
    """Runs the entrypoint; returns (exit status, stdout+stderr, zoo.cfg or None,
    myid or None)."""
    data = tmp_path / "data"
    conf = tmp_path / "conf" / "zoo.cfg"
    if base is not None:
        conf.parent.mkdir(exist_ok=True)
        conf.write_text(base.format(data=data))
    full = {"PATH": os.environ["PATH"], "RK_ENTRYPOINT_DRY_RUN": "1", "RK_CONFIG": str(conf),
            "RK_RUN_DIR": str(tmp_path / "run")}
    full.update(env)
    p = subprocess.run(["sh", ENTRYPOINT, *args], env=full, capture_output=True, text=True, timeout=30)
    cfg = tmp_path / "run" / "zoo.cfg"
    myid = data / "myid"
    return (p.returncode, p.stdout + p.stderr, cfg.read_text() if cfg.exists() else None,
            myid.read_text() if myid.exists() else None)


def k8s_env(ordinal, replicas):
    return {"RK_REPLICAS": str(replicas), "RK_HOSTNAME": "ringkeeper-%d" % ordinal,
            "RK_PEER_SERVICE": "ringkeeper-headless", "POD_NAMESPACE": "prod"}


@pytest.mark.parametrize("replicas,servers", [(3, SERVERS_3), (5, SERVERS_5)])
@pytest.mark.parametrize("ordinal", [0, 1, 2, 3, 4])
def test_kubernetes_pod_ordinal_becomes_myid_and_replicas_the_server_lines(tmp_path, ordinal, replicas, servers):
    rc, out, cfg, myid = run(tmp_path, k8s_env(ordinal, replicas), base=BASE_CFG)
    if ordinal >= replicas:
        assert rc == 2, out
        assert "this pod's ordinal %d is not below RK_REPLICAS=%d" % (ordinal, replicas) in out
        assert cfg is None and myid is None
        return
    assert rc == 0, out
    assert cfg == BASE_CFG.format(data=tmp_path / "data") + servers
    assert myid == "%d\n" % (ordinal + 1)


def test_kubernetes_one_replica_is_standalone(tmp_path):
    rc, out, cfg, myid = run(tmp_path, k8s_env(0, 1), base=BASE_CFG)
    assert rc == 0, out
    assert cfg == BASE_CFG.format(data=tmp_path / "data")
    assert myid == "1\n"


def test_kubernetes_domain_ports_and_a_restart_on_the_same_volume(tmp_path):
    env = dict(k8s_env(1, 3), RK_CLUSTER_DOMAIN="k8s.example", RK_PEER_PORT="2890", RK_ELECTION_PORT="3890")
    base = BASE_CFG.replace("clientPort=2181", "clientPort=2182")
    rc, out, cfg, myid = run(tmp_path, env, base=base)
    assert rc == 0, out
    assert cfg.endswith("server.1=ringkeeper-0.ringkeeper-headless.prod.svc.k8s.example:2890:3890;2182\n"
                        "server.2=ringkeeper-1.ringkeeper-headless.prod.svc.k8s.example:2890:3890;2182\n"
                        "server.3=ringkeeper-2.ringkeeper-headless.prod.svc.k8s.example:2890:3890;2182\n")
    assert myid == "2\n"
    rc, out, cfg2, myid = run(tmp_path, env, base=base)  # the pod restarts: same files
    assert rc == 0, out
    assert (cfg2, myid) == (cfg, "2\n")


def test_a_volume_of_another_server_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("3\n")
    rc, out, cfg, myid = run(tmp_path, k8s_env(0, 3), base=BASE_CFG)
    assert rc == 2
    assert "myid says 3 but this server is 1: the volume belongs to another server" in out
    assert myid == "3\n"


@pytest.mark.parametrize("host", ["ringkeeper", "ringkeeper-x", "ringkeeper-"])
def test_a_host_name_without_an_ordinal_is_refused(tmp_path, host):
    rc, out, _, _ = run(tmp_path, dict(k8s_env(0, 3), RK_HOSTNAME=host), base=BASE_CFG)
    assert rc == 2
    assert "host name %s is not <name>-<ordinal>" % host in out


def test_kubernetes_needs_the_peer_service(tmp_path):
    env = k8s_env(0, 3)
    del env["RK_PEER_SERVICE"]
    rc, out, _, _ = run(tmp_path, env, base=BASE_CFG)
    assert rc == 2
    assert "RK_PEER_SERVICE (the headless Service's name) is not set" in out


def test_server_lines_in_the_mounted_file_are_kept(tmp_path):
    base = BASE_CFG + "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n"
    rc, out, cfg, myid = run(tmp_path, dict(k8s_env(2, 5)), base=base)
    assert rc == 0, out
    assert cfg == base.format(data=tmp_path / "data")
    assert myid == "3\n"


def test_zookeeper_image_variables(tmp_path):
    env = {"ZOO_MY_ID": "2", "ZOO_DATA_DIR": str(tmp_path / "data"), "ZOO_DATA_LOG_DIR": str(tmp_path / "log"),
           "ZOO_TICK_TIME": "1000", "ZOO_MAX_CLIENT_CNXNS": "0", "ZOO_4LW_COMMANDS_WHITELIST": "*",
           "ZOO_CFG_EXTRA": "raft.electionTimeoutMs=800 metricsProvider.httpPort=7001",
           "ZOO_SERVERS": "server.1=rk1:2888:3888;2181 server.2=rk2:2888:3888;2181 server.3=rk3:2888:3888;2181"}
    rc, out, cfg, myid = run(tmp_path, env)
    assert rc == 0, out
    assert cfg == ("tickTime=1000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\ndataLogDir=%s\nclientPort=2181\n"
                   "maxClientCnxns=0\n4lw.commands.whitelist=*\nraft.electionTimeoutMs=800\n"
                   "metricsProvider.httpPort=7001\n"
                   "server.1=rk1:2888:3888;2181\nserver.2=rk2:2888:3888;2181\nserver.3=rk3:2888:3888;2181\n"
                   % (tmp_path / "data", tmp_path / "log"))
    assert myid == "2\n"


def test_no_variables_is_a_standalone_server_on_data(tmp_path):
    rc, out, cfg, myid = run(tmp_path, {"ZOO_DATA_DIR": str(tmp_path / "data")})
    assert rc == 0, out
    assert cfg == ("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=2181\nmaxClientCnxns=60\n"
                   "4lw.commands.whitelist=srvr,ruok,mntr,conf\n" % (tmp_path / "data"))
    assert myid is None


def test_a_malformed_zoo_servers_word_is_refused(tmp_path):
    rc, out, _, _ = run(tmp_path, {"ZOO_MY_ID": "1", "ZOO_SERVERS": "rk1:2888:3888"})
    assert rc == 2
    assert 'ZOO_SERVERS: "rk1:2888:3888" is not server.N=host:peerPort:electionPort[;clientPort]' in out


def test_it_execs_ringkeeper_with_the_config_and_the_arguments(tmp_path):
    stand_in = tmp_path / "ringkeeper"
    stand_in.write_text('#!/bin/sh\necho "pid $$"\nfor a in "$@"; do echo "arg $a"; done\n')
    stand_in.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "RINGKEEPER_BIN": str(stand_in), "RK_CONFIG": str(tmp_path / "none"),
           "RK_RUN_DIR": str(tmp_path / "run"), "ZOO_DATA_DIR": str(tmp_path / "data")}
    p = subprocess.Popen(["sh", ENTRYPOINT, "--clientPort=2182", "--logLevel=debug"], env=env,
                         stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    # exec: the stand-in runs as the entrypoint's own process (PID 1 in a container)
    assert out == "pid %d\narg --config\narg %s\narg --clientPort=2182\narg --logLevel=debug\n" % (
        p.pid, tmp_path / "run" / "zoo.cfg")


@pytest.mark.parametrize("line,added", [
    ("", "4lw.commands.whitelist=ruok\n"),                       # the server's default: srvr only
    ("4lw.commands.whitelist=mntr,conf\n", "4lw.commands.whitelist=mntr,conf,ruok\n"),
    ("4lw.commands.whitelist = srvr, mntr\n", "4lw.commands.whitelist=srvr,mntr,ruok\n"),
    ("4lw.commands.whitelist=ruokx\n", "4lw.commands.whitelist=ruokx,ruok\n"),
    ("4lw.commands.whitelist=ruok\n4lw.commands.whitelist=srvr\n", "4lw.commands.whitelist=srvr,ruok\n"),
    ("4lw.commands.whitelist=*\n", ""),
    ("4lw.commands.whitelist=mntr, ruok\n", ""),
])
def test_ruok_is_added_to_a_whitelist_without_it(tmp_path, line, added):
    """The liveness probe asks ruok: a mounted zoo.cfg (or ZOO_4LW_COMMANDS_WHITELIST)
    that leaves it out would have the pod restarted for ever."""
    base = "dataDir={data}\nclientPort=2181\n" + line
    rc, out, cfg, _ = run(tmp_path, {}, base=base)
    assert rc == 0, out
    assert cfg == base.format(data=tmp_path / "data") + added
    assert ("added ruok" in out) == bool(added), out


def test_zookeeper_image_whitelist_without_ruok(tmp_path):
    rc, out, cfg, _ = run(tmp_path, {"ZOO_DATA_DIR": str(tmp_path / "data"), "ZOO_4LW_COMMANDS_WHITELIST": "mntr"})
    assert rc == 0, out
    assert cfg.endswith("4lw.commands.whitelist=mntr\n4lw.commands.whitelist=mntr,ruok\n"), cfg


def test_the_server_answers_ruok_with_a_whitelist_that_left_it_out(tmp_path):
    """End to end on the real binary: the line added last wins, and the probe passes."""
    binary = ringkeeper_bin()
    need_tools("bash", "timeout")
    port = free_port()
    conf = tmp_path / "zoo.cfg"
    conf.write_text("dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nforceSync=no\n"
                    "4lw.commands.whitelist=mntr\n" % (tmp_path / "data", port))
    env = {"PATH": os.environ["PATH"], "RK_CONFIG": str(conf), "RK_RUN_DIR": str(tmp_path / "run"),
           "RINGKEEPER_BIN": binary}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(["sh", ENTRYPOINT], env=env, stdout=log, stderr=log, start_new_session=True)
    probe_env = {"PATH": os.environ["PATH"], "RK_CLIENT_PORT": str(port)}
    probe = os.path.join(REPO, "deploy", "container", "probe.sh")
    try:
        deadline = time.time() + 15
        while True:
            p = subprocess.run(["bash", probe, "live"], env=probe_env, capture_output=True, text=True)
            if p.returncode == 0:
                break
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.time() < deadline, p.stderr + (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        assert subprocess.run(["bash", probe, "ready"], env=probe_env).returncode == 0
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
        log.close()
