"""SOP 1, auth failures, and the key failover, on the drill fleet: judged by the double and the hosts."""

from __future__ import annotations

import time

import pytest

from support.drill import run, sh
from support.runbook import assert_no_secrets

pytestmark = pytest.mark.timeout(900)


def signed_with(drill, key_slot, since, wait=4.0):
    time.sleep(wait)
    return {host: drill.keys_used_by(host, since) for host in drill.hosts}


def test_revoked_key_fails_over_to_backup(drill):
    drill.control.revoke_key(drill.keys["primary"]["name"])
    result = drill.playbook("auth_failure.yml", verbosity=2)
    assert result.returncode == 0, result.output[-5000:]
    record = result.record("auth_failure")
    assert record["final_state"]["cause"] == "revoked_or_wrong_key" and record["final_state"]["failed_over"] is True
    since = time.time()
    backup = drill.keys["backup"]["name"]
    for host, keys in signed_with(drill, "backup", since).items():
        assert drill.key_slot(host) == "backup"
        assert keys == {backup}, (host, keys)
    # Ops were alerted (the double's alert sink stands in for the pager).
    assert any("Auth Failure" in str(a["payload"]) for a in drill.control.alerts())
    assert_no_secrets(result.output, drill)


def test_clock_drift_is_named_and_the_key_is_left_alone(drill):
    drill.control.set_clock_offset(-45)  # Coinbase's clock 45 s behind ours: every host is 45 s ahead
    try:
        result = drill.playbook("auth_failure.yml")
    finally:
        drill.control.set_clock_offset(0)
    assert result.returncode == 0, result.output[-5000:]
    record = result.record("auth_failure")
    assert record["final_state"]["cause"] == "clock" and record["final_state"]["failed_over"] is False
    host_steps = [e for e in record["timeline"] if "OVER THE LIMIT" in e["step"]]
    assert len(host_steps) == len(drill.hosts)
    assert all(abs(e["details"]["clock_drift_s"] - 45) < 3 for e in host_steps)
    for host in drill.hosts:
        assert drill.key_slot(host) == "primary"


def test_healthy_key_changes_nothing_but_fixes_drifted_permissions(drill):
    host = drill.hosts[0]
    sh(host, "chmod 0644 /etc/trading-bot/keys/backup.pem")
    result = drill.playbook("auth_failure.yml")
    assert result.returncode == 0, result.output[-5000:]
    record = result.record("auth_failure")
    assert record["final_state"]["cause"] == "ok" and record["final_state"]["failed_over"] is False
    assert sh(host, "stat -c %a /etc/trading-bot/keys/backup.pem").stdout.strip() == "400"
    assert all(drill.key_slot(h) == "primary" for h in drill.hosts)


def test_three_failures_alert_ops_and_auth_recovers(drill):
    drill.control.fail_next(503, count=3, path="/api/v3/brokerage/key_permissions")
    result = drill.playbook("auth_failure.yml")
    assert result.returncode == 0, result.output[-5000:]
    step = [e for e in result.record("auth_failure")["timeline"] if e["step"].startswith("Authentication:")][0]
    assert step["details"]["requests"]["failures"] == 3 and step["details"]["requests"]["alert_ops"] is True
    assert step["details"]["requests"]["waits_s"] == [1.0, 2.0, 4.0]  # the SOP's schedule, for real
    assert any("Auth Failure" in str(a["payload"]) for a in drill.control.alerts())


def test_auth_failure_check_mode_changes_nothing(drill):
    drill.control.revoke_key(drill.keys["primary"]["name"])
    sh(drill.hosts[0], "chmod 0644 /etc/trading-bot/keys/backup.pem")
    result = drill.playbook("auth_failure.yml", check=True)
    assert result.returncode == 0, result.output[-5000:]
    assert sh(drill.hosts[0], "stat -c %a /etc/trading-bot/keys/backup.pem").stdout.strip() == "644"
    assert all(drill.key_slot(h) == "primary" for h in drill.hosts)


def test_unreadable_key_malformed_token_and_unreachable_host_close_the_record_and_fail(drill, tmp_path):
    """The controller's key file is gone (maybe the very cause of the 401s), CURRENT_JWT is malformed and
    one host is hung: every finding is recorded, ops are alerted, the record is closed, the run fails."""
    hung = drill.hosts[-1]
    keys = {slot: dict(spec) for slot, spec in drill.keys.items()}
    keys["primary"]["private_key_file"] = str(tmp_path / "gone" / "primary.pem")
    run(["podman", "pause", hung])
    result = drill.playbook("auth_failure.yml", {"fleet_api_keys": keys, "current_jwt": "not-a-jwt"})
    assert result.returncode != 0, result.output[-5000:]
    assert "AUTH FAILURE RUNBOOK INCOMPLETE" in result.output, result.output[-5000:]
    record = result.record("auth_failure")
    assert record["status"] == "Failed" and record.get("closed_at"), record
    problems = record["final_state"]["problems"]
    assert any("CURRENT_JWT" in p for p in problems), problems
    assert any("Step 2" in p for p in problems), problems  # the fresh token could not be minted
    assert any(hung in p for p in problems), problems
    # A host whose clock could not be read is not "fine"; the reachable hosts were checked.
    assert record["final_state"]["unchecked_hosts"] == [hung], record["final_state"]
    assert record["final_state"]["failed_over"] is False
    assert any("Auth Failure" in str(a["payload"]) for a in drill.control.alerts())
    assert all(drill.key_slot(h) == "primary" for h in drill.hosts if h != hung)
    assert_no_secrets(result.output, drill)


def test_key_failover_to_standby_alone(drill):
    result = drill.playbook("key_failover.yml", {"key_failover_to": "standby"})
    assert result.returncode == 0, result.output[-5000:]
    since = time.time()
    for host, keys in signed_with(drill, "standby", since).items():
        assert drill.key_slot(host) == "standby" and keys == {drill.keys["standby"]["name"]}


def test_key_failover_refuses_a_broken_key_and_touches_no_host(drill):
    drill.control.revoke_key(drill.keys["backup"]["name"])
    result = drill.playbook("key_failover.yml", {"key_failover_to": "backup"})
    assert result.returncode != 0 and "FAILOVER REFUSED" in result.output, result.output[-4000:]
    assert all(drill.key_slot(h) == "primary" for h in drill.hosts)
    assert result.record("key_failover")["status"] == "Failed"


def test_key_failover_through_ansible_runner(drill):
    runner = drill.runner("key_failover.yml", {"key_failover_to": "backup"})
    assert runner.status == "successful", runner.stdout.read()[-3000:]
    assert all(drill.key_slot(h) == "backup" for h in drill.hosts)
