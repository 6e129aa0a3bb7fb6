"""The example Prometheus rules of docs/operations.md: promtool accepts them, and they
fire (or not) on synthetic series as the page says. Skipped where promtool (Debian
package prometheus) is missing."""
import os
import re
import subprocess

from deploy_util import REPO, need_tools


def rules_from_doc():
    with open(os.path.join(REPO, "docs", "operations.md")) as f:
        text = f.read()
    blocks = re.findall(r"Example rules.*?```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    return blocks[0]


TESTS = """
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  # 3 servers: the leader (a) has 2 synced followers, then 1, then 0; b and c follow.
  - interval: 15s
    input_series:
      - series: 'synced_followers{job="ringkeeper",cluster="x",instance="a"}'
        values: '2x8 1x8 0x8'
      - series: 'quorum_size{job="ringkeeper",cluster="x",instance="a"}'
        values: '3x24'
    alert_rule_test:
      - eval_time: 1m
        alertname: RingKeeperQuorumAtRisk
        exp_alerts: []
      - eval_time: 4m
        alertname: RingKeeperQuorumAtRisk
        exp_alerts:
          - exp_labels: {severity: critical, job: ringkeeper, cluster: x, instance: a}
            exp_annotations: {summary: "x: one more server lost stops writes"}
      - eval_time: 4m
        alertname: RingKeeperNoLeader
        exp_alerts: []
  # No server reports synced_followers: no leader.
  - interval: 15s
    input_series:
      - series: 'synced_followers{job="ringkeeper",cluster="x",instance="a"}'
        values: '2x4 stale'
      - series: 'up{job="ringkeeper",cluster="x",instance="a"}'
        values: '1x12'
    alert_rule_test:
      - eval_time: 30s
        alertname: RingKeeperNoLeader
        exp_alerts: []
      - eval_time: 3m
        alertname: RingKeeperNoLeader
        exp_alerts:
          - exp_labels: {severity: critical, cluster: x}
            exp_annotations: {summary: "no RingKeeper server of x leads: writes stop"}
  # fsync averaging 30 ms over 5 minutes.
  - interval: 1m
    input_series:
      - series: 'fsynctime_sum{job="ringkeeper",instance="a"}'
        values: '0+300x15'
      - series: 'fsynctime_count{job="ringkeeper",instance="a"}'
        values: '0+10x15'
    alert_rule_test:
      - eval_time: 12m
        alertname: RingKeeperSlowFsync
        exp_alerts:
          - exp_labels: {severity: warning, job: ringkeeper, instance: a}
            exp_annotations: {summary: "a: log fsync averages over 20 ms"}
  # Four new terms within 15 minutes.
  - interval: 1m
    input_series:
      - series: 'ringkeeper_raft_term{job="ringkeeper",instance="a"}'
        values: '1 1 2 3 4 5 5 5'
    alert_rule_test:
      - eval_time: 7m
        alertname: RingKeeperFrequentElections
        exp_alerts:
          - exp_labels: {severity: warning, job: ringkeeper, instance: a}
            exp_annotations: {summary: "a: more than 3 new terms in 15 min"}
  # A snapshot fails once; an hour later the alert is gone.
  - interval: 5m
    input_series:
      - series: 'ringkeeper_snapshot_failures_total{job="ringkeeper",instance="a"}'
        values: '0 0 0 1x20'
    alert_rule_test:
      - eval_time: 10m
        alertname: RingKeeperSnapshotFailing
        exp_alerts: []
      - eval_time: 20m
        alertname: RingKeeperSnapshotFailing
        exp_alerts:
          - exp_labels: {severity: warning, job: ringkeeper, instance: a}
            exp_annotations: {summary: "a: a snapshot failed in the last hour (the log is not compacted; see its log)"}
      - eval_time: 90m
        alertname: RingKeeperSnapshotFailing
        exp_alerts: []
"""


def test_promtool_checks_and_unit_tests_the_rules(tmp_path):
    need_tools("promtool")
    (tmp_path / "rules.yml").write_text(rules_from_doc())
    p = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 11 rules found" in p.stdout + p.stderr
    (tmp_path / "tests.yml").write_text(TESTS)
    p = subprocess.run(["promtool", "test", "rules", str(tmp_path / "tests.yml")], capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout + p.stderr
