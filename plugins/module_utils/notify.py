# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Alerts in the SOP's internal-alert template, as Slack, PagerDuty Events v2 or generic webhook payloads.

The text is rendered by ``incident.render_alert``, the same function the incident record uses,
so what the team is sent and what the record stores are the same words. Sending goes through
Ansible's ``open_url`` (proxies, certificate checks, timeouts) with a short retry on 429, 5xx
and connection errors; errors never carry the webhook URL or the routing key.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from typing import Any, Callable, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import redact
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils.incident import render_alert

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
STATUSES = ("Investigating", "Mitigating", "Resolved")
SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries
MAX_WAIT_S = 10.0
RETRY_AFTER_CAP_S = 30.0
_BODY_MAX = 300
MASK = "********"
# Whitespace and control characters: http.client refuses them with an InvalidURL that quotes the URL.
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")


class NotifyError(Exception):
    def __init__(self, message: str, status: Optional[int] = None, body: Optional[str] = None, attempts: Optional[list] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.attempts = attempts or []


def alert_fields(incident_type: str, severity: str, timestamp: str, impact: Optional[str], status: str,
                 actions: Optional[list], eta: Optional[str]) -> dict:
    """The template's fields, by the names ``incident.render_alert`` reads."""
    return {"incident": incident_type, "severity": severity, "time": timestamp, "impact": impact,
            "status": status, "actions": list(actions or []), "eta": eta}


def render(fields: dict) -> str:
    return render_alert(fields)


def summary(fields: dict) -> str:
    text = "[%s] %s: %s" % (fields["severity"], fields["incident"], fields["status"])
    if fields.get("impact"):
        text += " - %s" % fields["impact"]
    return text if len(text) <= SUMMARY_MAX else text[:SUMMARY_MAX - 3] + "..."


def slack_payload(text: str) -> dict:
    return {"text": text}


def webhook_payload(fields: dict, text: str, source: str, details: Optional[dict]) -> dict:
    return {
        "text": text,
        "incident": {
            "type": fields["incident"], "severity": fields["severity"], "time": fields["time"], "impact": fields["impact"],
            "status": fields["status"], "actions": fields["actions"], "eta": fields["eta"],
        },
        "source": source,
        "details": dict(details or {}),
    }


def pagerduty_payload(routing_key: str, event_action: str, dedup_key: Optional[str], fields: Optional[dict], text: Optional[str],
                      source: str, component: Optional[str] = None, group: Optional[str] = None, details: Optional[dict] = None) -> dict:
    """An Events API v2 event. Acknowledge and resolve carry only the routing and dedup keys."""
    event: dict = {"routing_key": routing_key, "event_action": event_action}
    if dedup_key:
        event["dedup_key"] = dedup_key
    if event_action != "trigger":
        return event
    if fields is None or text is None:
        raise ValueError("a PagerDuty trigger needs the alert's fields and text")
    custom = {
        "incident": fields["incident"], "sop_severity": fields["severity"], "impact": fields["impact"],
        "status": fields["status"], "actions": fields["actions"], "eta": fields["eta"], "alert_text": text,
    }
    custom.update(details or {})
    payload = {
        "summary": summary(fields),
        "source": source,
        "severity": PAGERDUTY_SEVERITY[fields["severity"]],
        "timestamp": fields["time"],
        "custom_details": custom,
    }
    if component:
        payload["component"] = component
    if group:
        payload["group"] = group
    event["payload"] = payload
    event["client"] = "tradeops.incident_response"
    return event


def masked(payload: dict) -> dict:
    """The payload as it may be shown: the routing key replaced."""
    return dict(payload, routing_key=MASK) if "routing_key" in payload else dict(payload)


def check_url(url: Any, option: str = "url") -> None:
    """Refuse a URL that cannot be posted to; the message never contains the URL (it is a secret)."""
    problem = None
    if not isinstance(url, str) or not url:
        problem = "is empty"
    elif _BAD_URL_CHARS.search(url):
        problem = "contains whitespace or control characters"
    else:
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0  # .port raises ValueError on a bad port
        except ValueError:
            parts, port_ok = None, False
        if parts is None or not port_ok:
            problem = "cannot be parsed (check the host and port)"
        elif parts.scheme.lower() not in ("https", "http"):
            problem = "must be an https:// (or http://) URL"
        elif not parts.hostname:
            problem = "has no host"
    if problem:
        raise ValueError("%s %s; the value is not shown because it is a secret." % (option, problem))


def _read(response: Any) -> str:
    try:
        data = response.read()
    except Exception:  # noqa: BLE001 - a body that cannot be read is reported as empty
        return ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    return data or ""


def post_json(url: str, payload: dict, *, timeout: float, validate_certs: bool, use_proxy: bool, ca_path: Optional[str],
              max_retries: int, retry_delay: float, what: str, sleep: Callable[[float], None] = time.sleep) -> dict:
    """POST ``payload``; retry 429, 5xx and connection errors. Returns ``status``, ``body``, ``attempts``.

    ``what`` names the destination in messages ("the Slack webhook"); the URL never appears.
    """
    try:
        check_url(url)
    except ValueError as exc:
        raise NotifyError("%s: %s" % (what, exc)) from None
    data = json.dumps(payload).encode("utf-8")
    # The collection's one backoff policy, with shorter waits: an alert is worth little late.
    policy = RetryPolicy(max_retries=max_retries, initial_delay=retry_delay, max_delay=MAX_WAIT_S, retry_after_cap=RETRY_AFTER_CAP_S)
    attempts: list = []
    wait = 0.0
    while True:
        if wait:
            sleep(wait)
        started = time.monotonic()
        retry_after = None
        try:
            response = open_url(url, data=data, method="POST", headers={"Content-Type": "application/json"},
                                timeout=timeout, validate_certs=validate_certs, use_proxy=use_proxy, ca_path=ca_path,
                                http_agent="tradeops-incident-response")
            status, body = response.getcode(), _read(response)
        except HTTPError as exc:
            status, body = exc.code, _read(exc)
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        except (URLError, OSError) as exc:  # refused, DNS, TLS, timeout
            reason = getattr(exc, "reason", exc)
            status, body = None, "%s: %s" % (type(reason).__name__, reason)
        except (http.client.InvalidURL, ValueError) as exc:
            # Their text quotes the URL (a secret): only the type is reported, and retrying cannot help.
            attempts.append({"status": None, "wait_before_s": wait, "elapsed_ms": round((time.monotonic() - started) * 1000.0, 1)})
            raise NotifyError("%s could not be sent the alert: the URL was refused (%s)." % (what, type(exc).__name__),
                              None, None, attempts) from None
        except http.client.HTTPException as exc:  # a broken answer (BadStatusLine, IncompleteRead, ...): retried
            status, body = None, type(exc).__name__
        body = redact(body[:_BODY_MAX])
        attempts.append({"status": status, "wait_before_s": wait, "elapsed_ms": round((time.monotonic() - started) * 1000.0, 1)})
        if status is not None and 200 <= status < 300:
            return {"status": status, "body": body, "attempts": attempts}
        if status is not None and status not in RETRYABLE_STATUSES:
            raise NotifyError("%s refused the alert with HTTP %d: %s" % (what, status, body or "(no body)"), status, body, attempts)
        if len(attempts) > max_retries:
            problem = "HTTP %d" % status if status is not None else "no answer (%s)" % body
            raise NotifyError("%s failed after %d attempt(s): %s." % (what, len(attempts), problem), status, body, attempts)
        wait = policy.delay(len(attempts), retry_after)
