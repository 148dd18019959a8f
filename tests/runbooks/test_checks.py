"""The SOP's Prevention Checklist (checks_daily/weekly/monthly.yml) on the drill fleet: each item on
both sides of its threshold, judged by what the hosts and the double show and by the printed and
stored results (one line per item, final_state.items in a checklist record)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from support.drill import log_lines_since, run, sh, wait_for
from support.runbook import assert_no_secrets

pytestmark = pytest.mark.timeout(900)

LOGS = "/opt/trading-bot/logs"
KEYS = "/etc/trading-bot/keys"
CONTROLLER_WRITES = ("/api/v3/brokerage/orders/batch_cancel", "/api/v3/brokerage/orders/close_position", "/api/v3/brokerage/orders")


# ---------------------------------------------------------------------- helpers
def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".000Z"


def append_log(host: str, log: str, lines: list) -> None:
    run(["podman", "exec", "-i", host, "bash", "-c", "cat >> %s/%s" % (LOGS, log)], input="".join(line + "\n" for line in lines))


def records(drill, kind: str) -> list:
    found = []
    for path in sorted(drill.records_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("type") == kind and "timeline" in data:
            found.append(data)
    return found


def checklist(drill, output: str) -> tuple:
    """The run's checklist record (closed) and its items by id."""
    found = records(drill, "checklist")
    assert found, "no checklist record in %s:\n%s" % (drill.records_dir, output[-4000:])
    record = found[-1]
    assert record.get("closed_at"), "the checklist record was not closed:\n%s" % output[-4000:]
    return record, {item["id"]: item for item in record["final_state"]["items"]}


def printed(output: str, status: str, sop: str) -> str:
    """The result line for an item, as printed: '<STATUS> <SOP item> <evidence>'."""
    match = re.search(r"^\s*%s\s+%s\s+(.*)$" % (status, re.escape(sop)), output, re.M)
    assert match, "no line '%s %s' in the output:\n%s" % (status, sop, output[-5000:])
    return match.group(1)


def write_record(drill, incident_id: str, kind: str, days_ago: float, status: str = "Resolved", closed: bool = True,
                 rehearsal: bool = False, missed: tuple = (), severity: str = "P1") -> None:
    """A record as incident_record leaves it (only the fields the checklists read)."""
    opened = time.time() - days_ago * 86400
    record = {"incident_id": incident_id, "type": kind, "title": kind, "severity": severity, "status": "Investigating",
              "opened_at": stamp(opened), "rehearsal": rehearsal, "environment": "drill", "summary": "written by the test",
              "timeline": [{"time": stamp(opened), "elapsed_s": 0.0, "step": "record opened", "status": "info", "details": None}],
              "milestones": {name: {"elapsed_s": 900.0, "target_s": 60, "target": "Immediate", "met": False} for name in missed}}
    if closed:
        record.update(status=status, closed_at=stamp(opened + 120))
    drill.records_dir.mkdir(parents=True, exist_ok=True)
    (drill.records_dir / ("%s.json" % incident_id)).write_text(json.dumps(record))


def new_key(drill, permissions=("view", "trade")) -> dict:
    """A key 'created in the CDP portal': generated, registered with the double, written 0600 on the controller."""
    from exchange_double.keys import generate_key

    key = generate_key("ec")
    drill.control.register_key(key.name, key.public_pem, permissions=list(permissions))
    directory = drill.tmp_path / "new-keys"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / ("%s.pem" % key.name.split("/")[-1])
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.private_pem)
    return {"new_key_name": key.name, "new_key_file": str(path)}


def public_pem(private_key_file: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(private_key_file).read_bytes(), None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_dir_state(drill) -> dict:
    """Every key file's mode, owner and checksum on every host (a change anywhere shows)."""
    script = "cd %s && for f in *; do printf '%%s %%s ' \"$f\" \"$(stat -c '%%a %%U' \"$f\")\"; sha256sum < \"$f\" | cut -c1-16; done" % KEYS
    return {host: sh(host, script).stdout for host in drill.hosts}


def log_files(host: str) -> dict:
    """name -> (inode, size) of the files in the bot's log directory."""
    out = sh(host, "stat -c '%%n %%i %%s' %s/*" % LOGS).stdout.split("\n")
    return {line.split()[0].rsplit("/", 1)[1]: (int(line.split()[1]), int(line.split()[2])) for line in out if line.strip()}


def restore_standby(drill) -> None:
    """Put the session's standby key back in every host's standby slot (a rotation replaced it)."""
    standby = drill.keys["standby"]
    for host in drill.hosts:
        run(["podman", "cp", standby["private_key_file"], "%s:%s/standby.pem" % (host, KEYS)])
        sh(host, "printf '%%s\\n' '%s' > %s/standby.name && chown tradingbot:tradingbot %s/standby.* && chmod 0400 %s/standby.*"
           % (standby["name"], KEYS, KEYS, KEYS))


# ---------------------------------------------------------------------- daily
def test_daily_warns_passes_and_the_kill_switch_rehearsal_changes_nothing(drill):
    drill.seed_book(orders_per_host=20)
    now = time.time()
    noisy = drill.hosts[1]
    # Two days old: outside the 24 h window. Five disconnects in the last minutes: over the SOP's 3 an hour.
    append_log(noisy, "orders.log", ["%s ERROR error cycle %d failed: ServerError status=503: old" % (stamp(now - 2 * 86400), i)
                                     for i in range(200)])
    append_log(noisy, "websocket.log", ["%s WARNING disconnect code=1011 reason=test" % stamp(now - 300 + i) for i in range(5)])
    before_orders = len(drill.working_orders())
    since = time.time()

    result = drill.playbook("checks_daily.yml", {
        "checks_errors_warn": 10, "checks_latency_samples": 20,
        "position_limits": {"BTC-PERP": {"max_contracts": 1000, "max_notional": 50000000}, "ETP-20DEC30-CDE": {"max_contracts": 1000}}})

    assert result.returncode == 0, result.output[-5000:]
    # The rehearsal changed nothing: no cancel or close from the controller, the book and the hosts as they were.
    # (The bots go on trading and may move the seeded positions themselves: judge the controller.)
    writes = [e for e in drill.control.requests(method="POST", since=since)
              if e["path"] in CONTROLLER_WRITES and e["client_ip"] not in drill.ips.values()]
    assert writes == []
    assert len(drill.working_orders()) >= before_orders
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL" and drill.unit(host, "trading-bot-orders") == "active"
    record, items = checklist(drill, result.output)
    assert [i["id"] for i in record["final_state"]["items"]] == ["error_logs", "latency", "position_limits", "kill_switch"]
    # Errors: the old lines do not count; the disconnects make a warning (which does not fail the run).
    logs = {v["host"]: v for v in items["error_logs"]["details"]["hosts"]}
    assert items["error_logs"]["status"] == "WARN" and logs[noisy]["status"] == "WARN", items["error_logs"]
    assert logs[noisy]["errors"] < 10 and logs[noisy]["disconnects_worst_hour"] >= 5
    assert items["latency"]["status"] == "PASS" and items["latency"]["details"]["latency_ms"]["p95"] < 500, items["latency"]["evidence"]
    assert items["position_limits"]["status"] == "PASS"
    assert {row["status"] for row in items["position_limits"]["details"]["positions"]} == {"PASS"}
    rehearsal = items["kill_switch"]
    assert rehearsal["status"] == "PASS", rehearsal
    assert sorted(rehearsal["details"]["contained_hosts"]) == sorted(drill.hosts) and int(rehearsal["details"]["would_cancel"]) > 0
    ks = records(drill, "kill_switch")[-1]
    assert ks["rehearsal"] is True and ks["incident_id"] == record["incident_id"] + "-kill-switch-rehearsal"
    # Printed: one line per item, then the summary.
    assert "would be contained" in printed(result.output, "PASS", "Test kill switch")
    assert "disconnect" in printed(result.output, "WARN", "Review error logs")
    assert "Daily checklist on drill: 3 PASS, 1 WARN, 0 FAIL, 0 MANUAL" in result.output
    assert_no_secrets(result.output + (drill.records_dir / ("%s.json" % record["incident_id"])).read_text(), drill)


def test_daily_fails_on_errors_latency_limits_and_an_unreachable_host_through_ansible_runner(drill):
    noisy, hung = drill.hosts[0], drill.hosts[-1]
    now = time.time()
    append_log(noisy, "orders.log", ["%s ERROR error cycle %d failed: ServerError status=503: test" % (stamp(now - 60 + i * 0.1), i)
                                     for i in range(60)])
    append_log(noisy, "websocket.log", ["%s WARNING disconnect code=1006 reason=test" % stamp(now - 600 + i * 10) for i in range(12)])
    drill.control.set_position("BIP-20DEC30-CDE", "LONG", "20", "95000", key=drill.keys["primary"]["name"])
    drill.control.set_position("ETP-20DEC30-CDE", "SHORT", "3", "3500", key=drill.keys["primary"]["name"])
    drill.control.add_latency(800, path="/api/v3/brokerage/time")
    run(["podman", "pause", hung])  # a hung host: the kill switch could not contain it

    runner = drill.runner("checks_daily.yml", {"checks_latency_samples": 5,
                                               "position_limits": {"BTC-PERP": {"max_contracts": 5, "max_notional": 1000000}}})

    output = runner.stdout.read()
    assert runner.status == "failed", output[-4000:]
    record, items = checklist(drill, output)
    assert record["status"] == "Failed" and "Test kill switch" in record["error"]
    logs = {v["host"]: v for v in items["error_logs"]["details"]["hosts"]}
    assert logs[noisy]["status"] == "FAIL" and logs[noisy]["errors"] >= 60 and logs[noisy]["disconnects_worst_hour"] >= 12
    assert logs[hung]["status"] == "FAIL" and "unreachable" in logs[hung]["text"]
    assert items["latency"]["status"] == "FAIL" and items["latency"]["details"]["latency_ms"]["p95"] >= 800, items["latency"]["evidence"]
    rows = {row["product"].split("(")[1].rstrip(")"): row for row in items["position_limits"]["details"]["positions"]}
    assert items["position_limits"]["status"] == "FAIL" and rows["BIP-20DEC30-CDE"]["status"] == "FAIL", rows
    assert rows["ETP-20DEC30-CDE"]["status"] == "MANUAL"  # no limit given: the numbers for a person
    details = items["kill_switch"]["details"]
    assert items["kill_switch"]["status"] == "FAIL", items["kill_switch"]
    assert hung in details["not_contained_hosts"] + details["unreachable_hosts"], details
    # A failing rehearsal is still a rehearsal: the reachable hosts were not touched.
    for host in drill.hosts[:-1]:
        assert drill.mode(host) == "NORMAL" and drill.unit(host, "trading-bot-orders") == "active"
    assert hung in printed(output, "FAIL", "Test kill switch")
    assert "CHECKLIST FAILED" in output and "Daily checklist on drill: 0 PASS, 0 WARN, 4 FAIL, 0 MANUAL" in output
    assert_no_secrets(output, drill)


# ---------------------------------------------------------------------- weekly
def test_weekly_check_mode_rotates_nothing_and_reviews_the_incidents(drill):
    write_record(drill, "key_compromise-test-unclosed", "key_compromise", 2, closed=False)
    write_record(drill, "kill_switch-test-slow", "kill_switch", 1, status="Mitigating", missed=("flat",))
    write_record(drill, "kill_switch-test-rehearsal", "kill_switch", 1, rehearsal=True)
    write_record(drill, "kill_switch-test-old", "kill_switch", 10, closed=False)  # before the week: not counted
    before = {host: log_files(host) for host in drill.hosts}
    keys_before = key_dir_state(drill)

    result = drill.playbook("checks_weekly.yml", {"checks_log_rotate_max_size": "1K"}, check=True)

    assert result.returncode == 0, result.output[-5000:]
    # Check mode: every log would be rotated, none was (same files, same inodes, nothing shrank).
    for host in drill.hosts:
        after = log_files(host)
        assert set(after) == set(before[host]), (host, before[host], after)
        assert all(after[n][0] == before[host][n][0] and after[n][1] >= before[host][n][1] for n in after)
        assert drill.key_slot(host) == "primary"
    assert key_dir_state(drill) == keys_before
    record, items = checklist(drill, result.output)
    assert record["rehearsal"] is True
    rotation = items["log_rotation"]
    assert rotation["status"] == "PASS" and "%s: would rotate websocket.log, orders.log" % drill.hosts[0] in rotation["evidence"], rotation
    review = items["incidents"]
    assert review["status"] == "WARN"
    assert review["details"]["counts"]["incidents"] == 2 and review["details"]["counts"]["rehearsals"] == 1
    assert review["details"]["unclosed"] == ["key_compromise-test-unclosed"] and review["details"]["still_open"] == ["kill_switch-test-slow"]
    assert [m["milestone"] for m in review["details"]["missed_milestones"]] == ["flat"]
    assert "kill_switch-test-old" not in review["details"]["records"]
    assert items["runbooks"]["status"] == "MANUAL" and "last changed" in items["runbooks"]["evidence"], items["runbooks"]
    slots = {s["slot"]: s for s in items["backup_systems"]["details"]["slots"]}
    assert items["backup_systems"]["status"] == "PASS", items["backup_systems"]
    assert slots["backup"]["authenticates"] and slots["standby"]["authenticates"]
    assert "key_compromise-test-unclosed" in printed(result.output, "WARN", "Review incidents")
    assert "nothing was switched" in printed(result.output, "PASS", "Test backup systems")
    assert "Weekly checklist (check mode: nothing was changed) on drill: 2 PASS, 1 WARN, 0 FAIL, 1 MANUAL" in result.output


WRITER = """
import os, sys, time
f = open(sys.argv[1], "a", buffering=1)
i, end = 0, time.time() + 600
while time.time() < end and not os.path.exists("/tmp/stop-seq-writer"):
    i += 1
    f.write("%s INFO seqtest %d\\n" % (time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), i))
    time.sleep(0.002)
"""


def test_weekly_rotates_without_losing_a_line_and_fails_a_broken_standby_key_through_ansible_runner(drill):
    writer_host = drill.hosts[0]
    sh(writer_host, "rm -f /tmp/stop-seq-writer %s/*.log.[0-9]*" % LOGS)
    # Another writer besides the bot, appending numbered lines the whole time the run rotates the log.
    run(["podman", "exec", "-d", writer_host, "python3", "-c", WRITER, "%s/orders.log" % LOGS])
    wait_for(lambda: "seqtest" in sh(writer_host, "tail -n 3 %s/orders.log" % LOGS).stdout, 20, what="the writer")
    drill.control.revoke_key(drill.keys["standby"]["name"])
    try:
        runner = drill.runner("checks_weekly.yml", {"checks_log_rotate_max_size": "1K"})
    finally:
        sh(writer_host, "touch /tmp/stop-seq-writer")
    output = runner.stdout.read()
    wait_for(lambda: sh(writer_host, "pgrep -f '[s]eqtest'", check=False).returncode != 0, 20, what="the writer to stop")

    assert runner.status == "failed", output[-4000:]  # the standby key is broken
    # Every host's logs were rotated; on the writer's host not a line was lost or doubled.
    for host in drill.hosts:
        assert {"orders.log.1", "websocket.log.1"} <= set(log_files(host)), host
        assert drill.key_slot(host) == "primary"  # a broken standby key is reported, nothing is switched
    seqs = sh(writer_host, "cat %s/orders.log.[0-9] %s/orders.log | sed -n 's/.* seqtest \\([0-9]*\\)$/\\1/p' | sort -n" % (LOGS, LOGS)).stdout.split()
    numbers = [int(n) for n in seqs]
    assert len(numbers) > 100 and numbers == list(range(1, len(numbers) + 1)), "lines lost or doubled"
    # The bot writes on into the emptied log.
    done = time.time()
    wait_for(lambda: [line for _t, line in log_lines_since(writer_host, "orders.log", done) if "seqtest" not in line], 30,
             what="the bot writing into the emptied log")
    record, items = checklist(drill, output)
    rotated = {v["host"]: v for v in items["log_rotation"]["details"]["hosts"]}
    entry = [log for log in rotated[writer_host]["logs"] if log["path"].endswith("orders.log")][0]
    assert items["log_rotation"]["status"] == "PASS" and entry["rotate"] and entry["writers"], items["log_rotation"]
    slots = {s["slot"]: s for s in items["backup_systems"]["details"]["slots"]}
    assert items["backup_systems"]["status"] == "FAIL", items["backup_systems"]
    assert slots["backup"]["authenticates"] and not slots["standby"]["authenticates"]
    assert items["incidents"]["status"] == "PASS" and items["incidents"]["details"]["counts"]["incidents"] == 0
    assert "does NOT work" in printed(output, "FAIL", "Test backup systems")
    assert record["status"] == "Failed"


# ---------------------------------------------------------------------- monthly
def test_monthly_check_mode_audits_without_fixing_and_wants_a_drill(drill):
    drifted, stray_host = drill.hosts[0], drill.hosts[1]
    backup = drill.keys["backup"]
    sh(drifted, "chmod 0644 %s/standby.pem" % KEYS)
    sh(stray_host, "cp %s/primary.pem %s/old-primary.pem.bak && chmod 0400 %s/old-primary.pem.bak" % (KEYS, KEYS, KEYS))
    drill.control.register_key(backup["name"], public_pem(backup["private_key_file"]), permissions=["view", "trade", "transfer"])
    write_record(drill, "dr_drill-test-40-days", "dr_drill", 40, severity="P4")  # too old to count
    keys_before = key_dir_state(drill)
    try:
        result = drill.playbook("checks_monthly.yml", check=True)
        keys_after = key_dir_state(drill)
    finally:
        sh(drifted, "chmod 0400 %s/standby.pem" % KEYS)
        sh(stray_host, "rm -f %s/old-primary.pem.bak" % KEYS)
        drill.control.register_key(backup["name"], public_pem(backup["private_key_file"]), permissions=["view", "trade"])

    assert result.returncode != 0, result.output[-5000:]
    assert keys_after == keys_before  # read-only: the drifted mode and the stray file are still there
    assert "644" in keys_before[drifted] and "old-primary.pem.bak" in keys_before[stray_host]
    record, items = checklist(drill, result.output)
    assert items["key_rotation"]["status"] == "MANUAL" and "no new key given" in items["key_rotation"]["evidence"]
    findings = " | ".join(f["text"] for f in items["security_audit"]["details"]["findings"])
    assert items["security_audit"]["status"] == "FAIL", items["security_audit"]
    assert "%s: %s/standby.pem is file 0644" % (drifted, KEYS) in findings
    assert "%s: %s/old-primary.pem.bak belongs to no slot" % (stray_host, KEYS) in findings
    assert "backup key %s CAN TRANSFER FUNDS" % backup["name"].split("/")[-1] in findings
    assert len(items["security_audit"]["details"]["findings"]) == 3, findings
    assert items["dr_drill"]["status"] == "FAIL", items["dr_drill"]
    assert "NO drill record in the last 31 days" in items["dr_drill"]["evidence"]
    assert "-e run_dr_drill=true" in items["dr_drill"]["evidence"]
    assert items["contacts"]["status"] == "MANUAL", items["contacts"]
    assert "CAN TRANSFER FUNDS" in printed(result.output, "FAIL", "Security audit")
    assert "Monthly checklist (check mode: nothing was changed) on drill: 0 PASS, 0 WARN, 2 FAIL, 2 MANUAL" in result.output
    assert record["status"] == "Failed" and record["rehearsal"] is True


def test_monthly_key_rotation_refuses_a_bad_key_and_check_mode_changes_nothing(drill):
    keys_before = key_dir_state(drill)
    good, transfer = new_key(drill), new_key(drill, ("view", "trade", "transfer"))

    rehearsal = drill.playbook("checks_monthly.yml", dict(good, checks_only=["key_rotation"]), check=True)

    assert rehearsal.returncode == 0, rehearsal.output[-5000:]
    _record, items = checklist(drill, rehearsal.output)
    assert items["key_rotation"]["status"] == "PASS", items["key_rotation"]
    assert "would be installed as standby on 3/3" in items["key_rotation"]["evidence"]

    refused = drill.playbook("checks_monthly.yml", dict(transfer, checks_only=["key_rotation"]))

    assert refused.returncode != 0, refused.output[-5000:]
    _record, items = checklist(drill, refused.output)
    assert items["key_rotation"]["status"] == "FAIL" and "can TRANSFER funds" in items["key_rotation"]["evidence"], items["key_rotation"]["evidence"]
    assert "REFUSED, no host was touched" in printed(refused.output, "FAIL", "Key rotation")
    # Neither run touched a host: same key files, bots still on the primary key.
    assert key_dir_state(drill) == keys_before
    since = time.time()
    time.sleep(4)
    for host in drill.hosts:
        assert drill.key_slot(host) == "primary" and drill.keys_used_by(host, since) == {drill.keys["primary"]["name"]}


def test_monthly_rotates_the_key_and_the_bots_sign_with_it_through_ansible_runner(drill):
    key = new_key(drill)
    write_record(drill, "dr_drill-test-5-days", "dr_drill", 5, severity="P4")
    primary, standby = drill.keys["primary"]["name"], drill.keys["standby"]["name"]
    try:
        runner = drill.runner("checks_monthly.yml", key)
        output = runner.stdout.read()
        assert runner.status == "successful", output[-5000:]
        # Every host on the new key in the standby slot, and the bots sign with it (the double's request log).
        since = time.time()
        time.sleep(4)
        for host in drill.hosts:
            assert drill.key_slot(host) == "standby"
            assert drill.keys_used_by(host, since) == {key["new_key_name"]}, host
            assert sh(host, "cat %s/standby.name" % KEYS).stdout.strip() == key["new_key_name"]
    finally:
        restore_standby(drill)
    record, items = checklist(drill, output)
    rotation = items["key_rotation"]
    assert rotation["status"] == "PASS" and sorted(rotation["details"]["rotated_hosts"]) == sorted(drill.hosts)
    # The record names the keys to delete in the portal: the one the fleet used, and the standby key it replaced.
    assert sorted(rotation["details"]["retired_keys"]) == sorted([primary, standby])
    assert any(todo.startswith("PASS Key rotation: Delete the RETIRED key(s) in the CDP portal") and primary in todo
               for todo in record["checklist"])
    assert items["security_audit"]["status"] == "PASS", items["security_audit"]
    assert items["dr_drill"]["status"] == "PASS" and "dr_drill-test-5-days" in items["dr_drill"]["evidence"]
    assert items["contacts"]["status"] == "MANUAL", items["contacts"]
    assert "RETIRED" in printed(output, "PASS", "Key rotation")
    assert "Monthly checklist on drill: 3 PASS, 0 WARN, 0 FAIL, 1 MANUAL" in output
    text = output + (drill.records_dir / ("%s.json" % record["incident_id"])).read_text()
    assert_no_secrets(text, drill)
    assert Path(key["new_key_file"]).read_text().splitlines()[1][:24] not in text, "the new key's material in the output"
