"""incident_record: a record that survives a half-finished run, milestones against the SOP's targets, no secrets."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils.incident import render_alert

from support.modules import run_module


def record_args(tmp_path, **extra):
    return dict(records_dir=str(tmp_path / "records"), incident_id="KS-1", **extra)


def test_open_event_close_writes_json_and_markdown(tmp_path):
    opened = run_module("incident_record", record_args(tmp_path, action="open", incident_type="key_compromise", operator="alice", environment="drill"))
    assert opened["record"]["severity"] == "P1" and opened["record"]["response_target"] == "< 5 min"
    run_module("incident_record", record_args(tmp_path, action="event", step="Block egress", status="ok", milestone="egress_blocked",
                                              details={"hosts": ["drill-bot-1"]}))
    closed = run_module("incident_record", record_args(tmp_path, action="close", status="Resolved", impact="3 hosts, 0 positions",
                                                       actions=["hosts halted", "key revoked"], final_state={"open_orders": 0}))
    record = json.loads(open(closed["json_path"]).read())
    assert [e["step"] for e in record["timeline"]] == ["record opened", "Block egress", "record closed"]
    assert record["milestones"]["egress_blocked"]["met"] is True and record["milestones"]["egress_blocked"]["target_s"] == 300
    assert record["alert_text"].splitlines()[:2] == ["INCIDENT: Key Compromise", "SEVERITY: P1"]
    assert "STATUS: Resolved" in record["alert_text"] and "ACTIONS: hosts halted; key revoked" in record["alert_text"]
    markdown = open(closed["markdown_path"]).read()
    assert "| Block egress | ok |" in markdown and "INCIDENT: Key Compromise" in markdown
    assert stat.S_IMODE(os.stat(closed["json_path"]).st_mode) == 0o640


def test_record_survives_without_close(tmp_path):
    run_module("incident_record", record_args(tmp_path, action="open", incident_type="kill_switch"))
    run_module("incident_record", record_args(tmp_path, action="event", step="Cancel orders", status="failed"))
    record = json.loads((tmp_path / "records" / "KS-1.json").read_text())
    assert record["timeline"][-1]["status"] == "failed" and "closed_at" not in record


def test_reopening_keeps_the_first_clock(tmp_path):
    first = run_module("incident_record", record_args(tmp_path, action="open", incident_type="kill_switch"))
    again = run_module("incident_record", record_args(tmp_path, action="open", incident_type="kill_switch"))
    assert first["record"]["opened_at"] == again["record"]["opened_at"]


def test_secrets_never_reach_the_record(tmp_path):
    marker = "EC PRIVATE KEY-----"  # built in pieces so no key-shaped block sits in the repository
    pem = "-----BEGIN " + marker + "\nMHcCAQEEIB7ilHsA9e0eY8aWQ0P\n-----END " + marker
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJrZXkiLCJpc3MiOiJjZHAifQ.c2lnbmF0dXJlX2J5dGVz"
    run_module("incident_record", record_args(tmp_path, action="open", incident_type="auth_failure"))
    details = {"private_key": pem, "note": "Bearer " + token, "webhook_url": "https://hooks.slack.com/services/T/B/X",
               "private_key_path": "/etc/k.pem"}
    closed = run_module("incident_record", record_args(tmp_path, action="close", details=details))
    text = open(closed["json_path"]).read() + open(closed["markdown_path"]).read()
    assert "MHcCAQEE" not in text and "eyJzdWIi" not in text and "hooks.slack.com" not in text
    assert "/etc/k.pem" in text  # paths are not secrets


def test_event_before_open_fails_clearly(tmp_path):
    result = run_module("incident_record", record_args(tmp_path, action="event", step="x"))
    assert result["failed"] and "open it first" in result["msg"]


@pytest.mark.parametrize("bad", ["../etc/passwd", "a b", ""])
def test_bad_incident_id(tmp_path, bad):
    result = run_module("incident_record", dict(records_dir=str(tmp_path), incident_id=bad, action="open", incident_type="kill_switch"))
    assert result["failed"] and "incident_id" in result["msg"]


def test_alert_template_order():
    text = render_alert({"incident": "Loss Breach", "severity": "P1", "time": "t", "impact": "i", "status": "Mitigating", "actions": ["a"], "eta": "e"})
    assert [line.split(":")[0] for line in text.splitlines()] == ["INCIDENT", "SEVERITY", "TIME", "IMPACT", "STATUS", "ACTIONS", "ETA"]
