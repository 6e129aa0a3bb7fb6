"""deploy/k8s/: yamllint, the Kubernetes API schemas (offline, npm kubernetes-models),
that the pieces agree with each other, and that the ConfigMap's zoo.cfg, through the
entrypoint, starts the real server and passes the probes.

The schema check runs tests/deploy/validate-k8s.mjs with node; its packages are
installed from tests/deploy/package-lock.json (npm ci) when missing.
"""
import os
import signal
import subprocess
import time

import pytest
import yaml

from deploy_util import REPO, free_port, need_tools, ringkeeper_bin

K8S = os.path.join(REPO, "deploy", "k8s")
HERE = os.path.join(REPO, "tests", "deploy")
MANIFESTS = sorted(os.path.join(K8S, f) for f in os.listdir(K8S) if f.endswith(".yaml"))


def load():
    """{kind: object} of every API object in deploy/k8s (one of each kind here)."""
    objects = {}
    for path in MANIFESTS:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") != "Kustomization":
                    objects.setdefault(doc["kind"], []).append(doc)
    return objects


def test_yamllint_strict():
    need_tools("yamllint")
    p = subprocess.run(["yamllint", "-s", "-f", "parsable", "-c", os.path.join(K8S, ".yamllint"), *MANIFESTS,
                        os.path.join(K8S, ".yamllint")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture(scope="module")
def validator():
    need_tools("node", "npm")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "kubernetes-models")):
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr

    def run(*files):
        return subprocess.run(["node", os.path.join(HERE, "validate-k8s.mjs"), "--skip", "kustomization.yaml",
                               *files], capture_output=True, text=True, timeout=120)
    return run


def test_every_manifest_passes_the_api_schemas(validator):
    p = validator(*MANIFESTS)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1] == "5 passed, 0 failed"
    for kind in ["ConfigMap", "Service ringkeeper-headless", "Service ringkeeper-client", "PodDisruptionBudget",
                 "StatefulSet"]:
        assert any(line.startswith("ok ") and kind in line for line in p.stdout.splitlines()), kind


@pytest.mark.parametrize("old,new,message", [
    ("replicas: 3", "replicas: three", "data/spec/replicas must be integer"),
    ("podManagementPolicy: Parallel", "podManagementPolicy: AllAtOnce",
     "data/spec/podManagementPolicy must be equal to one of the allowed values"),
    ("containerPort: 2181", "containerPort: client", "containerPort must be integer"),
    ("apiVersion: apps/v1", "apiVersion: apps/v9", "unknown apiVersion/kind apps/v9 StatefulSet"),
])
def test_a_broken_statefulset_is_caught(validator, tmp_path, old, new, message):
    with open(os.path.join(K8S, "statefulset.yaml")) as f:
        text = f.read()
    assert old in text
    path = tmp_path / "statefulset.yaml"
    path.write_text(text.replace(old, new, 1))
    p = validator(str(path))
    assert p.returncode == 1
    assert message in p.stdout, p.stdout
    assert p.stdout.splitlines()[-1] == "0 passed, 1 failed"


def test_the_pieces_agree():
    objects = load()
    sts = objects["StatefulSet"][0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    services = {s["metadata"]["name"]: s for s in objects["Service"]}
    labels = spec["template"]["metadata"]["labels"]

    assert spec["replicas"] == 3 and env["RK_REPLICAS"] == "3"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == env["RK_PEER_SERVICE"] == "ringkeeper-headless"
    headless = services["ringkeeper-headless"]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert services["ringkeeper-client"]["spec"].get("publishNotReadyAddresses") in (None, False)
    for s in services.values():
        assert s["spec"]["selector"] == labels
    assert spec["selector"]["matchLabels"] == labels
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname" and anti["labelSelector"]["matchLabels"] == labels
    pdb = objects["PodDisruptionBudget"][0]["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"] == labels

    assert container["readinessProbe"]["exec"]["command"] == ["/usr/local/bin/ringkeeper-probe", "ready"]
    assert container["livenessProbe"]["exec"]["command"] == ["/usr/local/bin/ringkeeper-probe", "live"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"data": "/data", "config": "/conf", "run": "/tmp"}
    assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["data"]
    assert pod["securityContext"]["runAsUser"] == 2181 and pod["securityContext"]["fsGroup"] == 2181

    cfg = objects["ConfigMap"][0]["data"]["zoo.cfg"]
    keys = dict(line.split("=", 1) for line in cfg.splitlines() if line and not line.startswith("#"))
    assert keys["dataDir"] == "/data"
    assert not any(k.startswith("server.") for k in keys)  # the entrypoint writes them
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(keys["clientPort"]) == ports["client"] == 2181
    assert int(keys["metricsProvider.httpPort"]) == ports["metrics"]
    assert {"srvr", "ruok"} <= set(keys["4lw.commands.whitelist"].split(","))
    assert {p["port"] for p in services["ringkeeper-headless"]["spec"]["ports"]} >= {2888}


def test_the_configmap_starts_the_server_and_the_probes_pass(tmp_path):
    """One replica (standalone): the ConfigMap's zoo.cfg through the entrypoint, on the
    real binary; every key must be accepted, and the probes answer as Kubernetes asks."""
    binary = ringkeeper_bin()
    need_tools("bash", "timeout")
    cfg = load()["ConfigMap"][0]["data"]["zoo.cfg"].replace("dataDir=/data", "dataDir=%s" % (tmp_path / "data"))
    port = free_port()
    cfg = cfg.replace("clientPort=2181", "clientPort=%d" % port)
    cfg = cfg.replace("metricsProvider.httpPort=7000", "metricsProvider.httpPort=%d" % free_port())
    (tmp_path / "zoo.cfg").write_text(cfg + "clientPortAddress=127.0.0.1\nforceSync=no\n")
    env = {"PATH": os.environ["PATH"], "RK_REPLICAS": "1", "RK_HOSTNAME": "ringkeeper-0",
           "RK_PEER_SERVICE": "ringkeeper-headless", "RK_CONFIG": str(tmp_path / "zoo.cfg"),
           "RK_RUN_DIR": str(tmp_path / "run"), "RINGKEEPER_BIN": binary}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(["sh", os.path.join(REPO, "deploy", "container", "entrypoint.sh")], env=env,
                            stdout=log, stderr=log, start_new_session=True)
    probe_env = {"PATH": os.environ["PATH"], "RK_CLIENT_PORT": str(port), "RK_REPLICAS": "1"}
    probe = os.path.join(REPO, "deploy", "container", "probe.sh")
    try:
        deadline = time.time() + 15
        while subprocess.run(["bash", probe, "live"], env=probe_env, capture_output=True).returncode != 0:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.time() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        assert subprocess.run(["bash", probe, "ready"], env=probe_env).returncode == 0
        # Standalone is not ready when the StatefulSet wants 3.
        p = subprocess.run(["bash", probe, "ready"], env=dict(probe_env, RK_REPLICAS="3"), capture_output=True,
                           text=True)
        assert p.returncode == 1 and p.stderr == "ringkeeper-probe: standalone, but RK_REPLICAS=3\n"
        assert (tmp_path / "data" / "myid").read_text() == "1\n"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0
        log.close()
    # Nothing answers: not alive, and the reason says so.
    p = subprocess.run(["bash", probe, "live"], env=probe_env, capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr == "ringkeeper-probe: ruok on port %d answered 'nothing'\n" % port
