"""incident_notify against a local receiver: the exact payloads of Slack, PagerDuty Events v2 and a webhook; retries; secrets."""

from __future__ import annotations

import json
import socket

import pytest
from notify_receiver import Receiver

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
SLACK_PATH = "/services/T0000/B0000/s3cr3tT0k3n"
TEMPLATE = {
    "incident_type": "Key Compromise",
    "severity": "P1",
    "timestamp": "2026-11-27T03:12:00Z",
    "impact": "Positions flat; 3 unexpected fills on BIP-20DEC30-CDE",
    "status": "Mitigating",
    "actions": ["Bots stopped", "Egress blocked", "Standby key active"],
    "eta": "30 min",
}
RENDERED = (
    "INCIDENT: Key Compromise\n"
    "SEVERITY: P1\n"
    "TIME: 2026-11-27T03:12:00Z\n"
    "IMPACT: Positions flat; 3 unexpected fills on BIP-20DEC30-CDE\n"
    "STATUS: Mitigating\n"
    "ACTIONS: Bots stopped; Egress blocked; Standby key active\n"
    "ETA: 30 min"
)


@pytest.fixture
def receiver():
    with Receiver() as rx:
        yield rx


def notify(run_module, check_mode=False, **args):
    return run_module("incident_notify", dict({"retry_delay": 0.01}, **args), check_mode=check_mode)


def assert_no_secret(result):
    blob = json.dumps(result)
    assert ROUTING_KEY not in blob and "s3cr3tT0k3n" not in blob


def test_slack_gets_the_rendered_template(run_module, receiver):
    result = notify(run_module, kind="slack", url=receiver.url + SLACK_PATH, **TEMPLATE)
    assert result["failed"] is False and result["changed"] is True and result["sent"] is True and result["status"] == 200
    assert result["rendered"] == RENDERED and result["response"] == "ok"
    [request] = receiver.requests
    assert request["path"] == SLACK_PATH and request["headers"]["content-type"] == "application/json"
    assert request["json"] == {"text": RENDERED}
    assert_no_secret(result)


@pytest.mark.parametrize("severity, pagerduty", [("P1", "critical"), ("P2", "error"), ("P3", "warning"), ("P4", "info")])
def test_pagerduty_trigger_follows_the_events_v2_schema(run_module, receiver, severity, pagerduty):
    receiver.script([(202, {"status": "success", "message": "Event processed", "dedup_key": "inc-42"}, {})])
    args = dict(TEMPLATE)
    args.update(severity=severity, kind="pagerduty", url=receiver.url + "/v2/enqueue", routing_key=ROUTING_KEY, dedup_key="inc-42",
                source="controller-1", component="trading-bot-perpetuals", group="drill", details={"fleet": "drill"})
    result = notify(run_module, **args)
    assert result["sent"] is True and result["status"] == 202 and result["dedup_key"] == "inc-42" and result["event_action"] == "trigger"
    [request] = receiver.requests
    rendered = RENDERED.replace("SEVERITY: P1", "SEVERITY: %s" % severity)
    assert request["path"] == "/v2/enqueue"
    assert request["json"] == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "inc-42",
        "client": "tradeops.incident_response",
        "payload": {
            "summary": "[%s] Key Compromise: Mitigating - Positions flat; 3 unexpected fills on BIP-20DEC30-CDE" % severity,
            "source": "controller-1",
            "severity": pagerduty,
            "timestamp": "2026-11-27T03:12:00Z",
            "component": "trading-bot-perpetuals",
            "group": "drill",
            "custom_details": {
                "incident": "Key Compromise", "sop_severity": severity,
                "impact": "Positions flat; 3 unexpected fills on BIP-20DEC30-CDE", "status": "Mitigating",
                "actions": ["Bots stopped", "Egress blocked", "Standby key active"], "eta": "30 min",
                "alert_text": rendered, "fleet": "drill",
            },
        },
    }
    assert result["payload"]["routing_key"] == "********"
    assert_no_secret(result)


def test_pagerduty_makes_the_dedup_key_when_none_is_given(run_module, receiver):
    receiver.script([(202, {"status": "success", "message": "Event processed", "dedup_key": "pd-made-this"}, {})])
    result = notify(run_module, kind="pagerduty", url=receiver.url, routing_key=ROUTING_KEY, **TEMPLATE)
    assert "dedup_key" not in receiver.requests[0]["json"] and result["dedup_key"] == "pd-made-this"
    assert receiver.requests[0]["json"]["payload"]["source"] == socket.gethostname()


@pytest.mark.parametrize("args, action", [
    ({"event_action": "acknowledge"}, "acknowledge"),
    ({"status": "Resolved"}, "resolve"),  # Resolved resolves by default
])
def test_pagerduty_acknowledge_and_resolve_carry_only_the_keys(run_module, receiver, args, action):
    receiver.script([(202, {"status": "success", "message": "Event processed", "dedup_key": "inc-42"}, {})])
    result = notify(run_module, kind="pagerduty", url=receiver.url, routing_key=ROUTING_KEY, dedup_key="inc-42", **args)
    assert result["sent"] and result["event_action"] == action and "rendered" not in result
    assert receiver.requests[0]["json"] == {"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": "inc-42"}


def test_generic_webhook_payload(run_module, receiver):
    result = notify(run_module, kind="webhook", url=receiver.url + "/hooks/incident", source="awx-node-2", details={"incident_id": "inc-42"},
                    **TEMPLATE)
    assert result["sent"] and result["rendered"] == RENDERED
    assert receiver.requests[0]["json"] == {
        "text": RENDERED,
        "incident": {
            "type": "Key Compromise", "severity": "P1", "time": "2026-11-27T03:12:00Z",
            "impact": "Positions flat; 3 unexpected fills on BIP-20DEC30-CDE", "status": "Mitigating",
            "actions": ["Bots stopped", "Egress blocked", "Standby key active"], "eta": "30 min",
        },
        "source": "awx-node-2",
        "details": {"incident_id": "inc-42"},
    }


@pytest.mark.parametrize("kind", ["slack", "pagerduty", "webhook"])
def test_check_mode_sends_nothing_and_returns_what_would_be_sent(run_module, receiver, kind):
    result = notify(run_module, check_mode=True, kind=kind, url=receiver.url, routing_key=ROUTING_KEY, **TEMPLATE)
    assert result["failed"] is False and result["sent"] is False and result["changed"] is True
    assert result["rendered"] == RENDERED and receiver.requests == []
    if kind == "slack":
        assert result["payload"] == {"text": RENDERED}
    if kind == "pagerduty":
        assert result["payload"]["routing_key"] == "********" and result["payload"]["payload"]["severity"] == "critical"
    assert_no_secret(result)


def test_429_and_5xx_are_retried_with_backoff_and_retry_after(run_module, receiver):
    receiver.script([(503, "busy", {}), (429, "slow down", {"Retry-After": "0"}), (502, "", {}), (200, "ok", {})])
    result = notify(run_module, kind="slack", url=receiver.url + SLACK_PATH, retry_delay=0.05, **TEMPLATE)
    assert result["sent"] and len(receiver.requests) == 4
    assert [a["status"] for a in result["attempts"]] == [503, 429, 502, 200]
    assert [a["wait_before_s"] for a in result["attempts"]] == [0.0, 0.05, 0.0, 0.2]  # 0.05, Retry-After 0, 0.05 * 4
    assert all(r["json"] == {"text": RENDERED} for r in receiver.requests)


def test_a_4xx_fails_at_once_with_the_destination_message(run_module, receiver):
    receiver.script([(400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["Length of 'routing_key' is incorrect"]}, {})])
    result = notify(run_module, kind="pagerduty", url=receiver.url, routing_key=ROUTING_KEY, **TEMPLATE)
    assert result["failed"] and result["status"] == 400 and len(receiver.requests) == 1
    assert result["msg"].startswith("PagerDuty refused the alert with HTTP 400") and "Event object is invalid" in result["msg"]
    assert_no_secret(result)


def test_retries_run_out_clearly(run_module, receiver):
    receiver.script([(500, "oops", {})])
    result = notify(run_module, kind="webhook", url=receiver.url, max_retries=2, **TEMPLATE)
    assert result["failed"] and result["msg"] == "The webhook failed after 3 attempt(s): HTTP 500." and len(receiver.requests) == 3


def test_unreachable_destination_is_retried_then_fails_without_the_url(run_module):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    url = "http://127.0.0.1:%d%s" % (port, SLACK_PATH)
    result = notify(run_module, kind="slack", url=url, max_retries=1, **TEMPLATE)
    assert result["failed"] and "failed after 2 attempt(s): no answer" in result["msg"]
    assert [a["status"] for a in result["attempts"]] == [None, None]
    assert_no_secret(result)


@pytest.mark.parametrize("args, expected", [
    ({"kind": "pagerduty"}, "routing_key is required"),
    ({"kind": "pagerduty", "routing_key": ROUTING_KEY, "event_action": "resolve"}, "dedup_key is required to resolve"),
    ({"kind": "slack", "url": None}, "url is required for kind=slack"),
    ({"kind": "slack", "url": "hooks.slack.com/x"}, "url must be an https://"),
    ({"kind": "slack", "timestamp": "03:12"}, "timestamp must be an RFC 3339 time"),
    ({"kind": "webhook", "incident_type": None}, "missing: incident_type"),
    ({"kind": "slack", "timeout": 0}, "timeout must be a positive number"),
])
def test_bad_arguments_name_the_argument(run_module, receiver, args, expected):
    full = dict(TEMPLATE, url=receiver.url)
    full.update(args)
    result = notify(run_module, **{k: v for k, v in full.items() if v is not None})
    assert result["failed"] and expected in result["msg"], result["msg"]
    assert receiver.requests == []


def test_slack_takes_its_url_from_the_environment(run_module, receiver, monkeypatch):
    monkeypatch.setenv("INCIDENT_NOTIFY_URL", receiver.url + SLACK_PATH)
    result = notify(run_module, kind="slack", **TEMPLATE)
    assert result["sent"] is True and [r["path"] for r in receiver.requests] == [SLACK_PATH]
    assert_no_secret(result)


def test_pagerduty_never_posts_the_routing_key_to_the_environment_url(run_module, receiver, monkeypatch):
    from ansible_collections.tradeops.incident_response.plugins.module_utils import notify as notify_utils

    monkeypatch.setenv("INCIDENT_NOTIFY_URL", receiver.url + SLACK_PATH)  # the chat webhook, for kind=slack
    monkeypatch.setattr(notify_utils, "PAGERDUTY_EVENTS_URL", receiver.url + "/v2/enqueue")  # stands in for PagerDuty
    receiver.script([(202, {"status": "success", "dedup_key": "inc-7"}, {})])
    result = notify(run_module, kind="pagerduty", routing_key=ROUTING_KEY, dedup_key="inc-7", **TEMPLATE)
    assert result["sent"] is True
    assert [r["path"] for r in receiver.requests] == ["/v2/enqueue"]


@pytest.mark.parametrize("suffix", [" x", "\tx", "\r\nX-Injected: 1"])
def test_a_url_with_whitespace_fails_before_sending_and_without_the_url(run_module, receiver, suffix):
    result = notify(run_module, kind="slack", url=receiver.url + SLACK_PATH + suffix, **TEMPLATE)
    assert result["failed"] and "whitespace or control characters" in result["msg"]
    assert receiver.requests == []
    assert_no_secret(result)
