#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_notify
short_description: Send an incident alert in the SOP's template to Slack, PagerDuty or a webhook
version_added: 0.1.0
description:
  - Fills in the SOP's internal-alert template (INCIDENT, SEVERITY, TIME, IMPACT, STATUS,
    ACTIONS, ETA) with the same renderer the incident record uses, returns the text in
    RV(rendered), and sends it.
  - "O(kind=slack): a Slack incoming webhook, payload C({\"text\": <rendered>})."
  - "O(kind=pagerduty): PagerDuty Events API v2. O(event_action=trigger) sends C(routing_key),
    C(event_action), C(dedup_key) (when given), C(client) and C(payload) with C(summary)
    (C([P1] <type>: <status> - <impact>)), C(source), C(severity) (P1 C(critical), P2 C(error),
    P3 C(warning), P4 C(info)), C(timestamp), optional C(component) and C(group), and
    C(custom_details) (the template's fields, the rendered text as C(alert_text), and
    O(details)). V(acknowledge) and V(resolve) send only C(routing_key), C(event_action) and
    C(dedup_key), as the Events API defines them; RV(dedup_key) of a trigger is what to pass
    to them."
  - "O(kind=webhook): any JSON endpoint, payload C({\"text\": <rendered>, \"incident\": {type,
    severity, time, impact, status, actions, eta}, \"source\": ..., \"details\": {...}})."
  - A 429, 5xx, timeout or connection error is retried O(max_retries) times, waiting
    O(retry_delay) seconds and twice as long each time (at most 10 s, or the server's
    C(Retry-After) up to 30 s); any other answer fails the task at once with the HTTP status
    and the destination's message. The webhook URL and the routing key are secrets; they are
    never returned or shown, and RV(payload) has the routing key masked.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Sends nothing; returns the rendered text and the payload that would be sent.
  diff_mode:
    support: none
    description: A notification is an event, not a state.
options:
  kind:
    description: Where to send.
    type: str
    choices: [slack, pagerduty, webhook]
    required: true
  url:
    description:
      - The Slack incoming-webhook URL or the generic webhook URL; a secret, since whoever has it
        can post.
      - For O(kind=pagerduty), the Events API endpoint, by default
        C(https://events.pagerduty.com/v2/enqueue).
      - If not set, for O(kind=slack) and O(kind=webhook) the environment variable E(INCIDENT_NOTIFY_URL) is used (an AWX
        credential can inject it). For O(kind=pagerduty) E(INCIDENT_NOTIFY_URL) is ignored, so that the routing key is never
        posted to a chat webhook; set O(url) on the task to use another Events API endpoint.
      - Checked before anything is sent (an C(https://) or C(http://) URL with a host, no spaces or control characters);
        the message never shows the value.
    type: str
  routing_key:
    description:
      - The PagerDuty integration (routing) key, a secret. Required for O(kind=pagerduty).
      - If not set, the environment variable E(PAGERDUTY_ROUTING_KEY) is used.
    type: str
  incident_type:
    description:
      - The template's INCIDENT, for example C(Key Compromise) (the SOP's quick-reference names).
      - Required, except for a PagerDuty acknowledge or resolve.
    type: str
  severity:
    description:
      - The template's SEVERITY.
      - Required, except for a PagerDuty acknowledge or resolve.
    type: str
    choices: [P1, P2, P3, P4]
  timestamp:
    description: The template's TIME, RFC 3339 with a time zone. Now (UTC) when not set.
    type: str
  impact:
    description: The template's IMPACT (positions and PnL affected).
    type: str
  status:
    description: The template's STATUS.
    type: str
    choices: [Investigating, Mitigating, Resolved]
    default: Investigating
  actions:
    description:
      - The template's ACTIONS, the steps being taken; joined with C(; ).
      - Give a list; Ansible splits a plain string at commas.
    type: list
    elements: str
    default: []
  eta:
    description: The template's ETA.
    type: str
    default: unknown
  event_action:
    description:
      - PagerDuty's event action. By default V(resolve) when O(status=Resolved), else V(trigger).
    type: str
    choices: [trigger, acknowledge, resolve]
  dedup_key:
    description:
      - PagerDuty's deduplication key, for example the incident id. Required for V(acknowledge)
        and V(resolve); for V(trigger) PagerDuty makes one when it is missing (see RV(dedup_key)).
    type: str
  source:
    description: PagerDuty's C(source) and the webhook's C(source). The controller's host name when not set.
    type: str
  component:
    description: PagerDuty's C(component), for example C(trading-bot-perpetuals).
    type: str
  group:
    description: PagerDuty's C(group), for example C(production).
    type: str
  details:
    description: More fields for PagerDuty's C(custom_details) and the webhook's C(details).
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for each attempt.
    type: float
    default: 10
  max_retries:
    description: Retries after a 429, 5xx, timeout or connection error.
    type: int
    default: 3
  retry_delay:
    description: Seconds before the first retry; doubled for each further one, at most 10.
    type: float
    default: 1
  validate_certs:
    description: Verify the destination's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: A PEM bundle of CA certificates to trust (a corporate TLS proxy, a local receiver).
    type: path
  use_proxy:
    description: Use the proxy from E(HTTPS_PROXY) / E(https_proxy) and E(NO_PROXY).
    type: bool
    default: true
notes:
  - Runs on the controller (C(delegate_to=localhost), C(run_once)). Not part of the
    C(tradeops.incident_response.coinbase) action group.
"""

EXAMPLES = r"""
- name: Page on-call about a key compromise
  tradeops.incident_response.incident_notify:
    kind: pagerduty
    routing_key: "{{ pagerduty_routing_key }}"
    dedup_key: "{{ incident_id }}"
    incident_type: Key Compromise
    severity: P1
    impact: "Positions flat; 3 unexpected fills on BIP-20DEC30-CDE"
    status: Mitigating
    actions: [Bots stopped, Egress blocked, Switched to standby key]
    eta: 30 min
    component: trading-bot-perpetuals
  delegate_to: localhost
  run_once: true
  register: page

- name: Tell the channel, with the text the record stores
  tradeops.incident_response.incident_notify:
    kind: slack
    incident_type: Key Compromise
    severity: P1
    impact: "{{ audit.summary.unexpected }} unexpected fills"
    actions: "{{ actions_taken }}"
  environment:
    INCIDENT_NOTIFY_URL: "{{ slack_webhook_url }}"
  delegate_to: localhost
  run_once: true

- name: Resolve the page
  tradeops.incident_response.incident_notify:
    kind: pagerduty
    routing_key: "{{ pagerduty_routing_key }}"
    dedup_key: "{{ page.dedup_key }}"
    event_action: resolve
"""

RETURN = r"""
rendered:
  description: The filled-in internal-alert template (what the incident record stores).
  returned: when the template's fields were given
  type: str
  sample: |-
    INCIDENT: Key Compromise
    SEVERITY: P1
    TIME: 2026-11-27T03:12:00Z
    IMPACT: Positions flat
    STATUS: Mitigating
    ACTIONS: Bots stopped; Egress blocked
    ETA: 30 min
kind:
  description: O(kind).
  returned: always
  type: str
  sample: pagerduty
payload:
  description: The JSON body sent (or that would be sent), the routing key masked.
  returned: always
  type: dict
sent:
  description: Whether the alert was delivered (false in check mode).
  returned: always
  type: bool
  sample: true
status:
  description: The destination's HTTP status.
  returned: when sent
  type: int
  sample: 202
response:
  description: The destination's answer (parsed JSON, or text; at most 300 characters of it).
  returned: when sent
  type: raw
  sample: {"status": "success", "message": "Event processed", "dedup_key": "inc-20261127-0312"}
dedup_key:
  description: PagerDuty's deduplication key (the one given, or the one PagerDuty made).
  returned: when O(kind=pagerduty)
  type: str
  sample: inc-20261127-0312
event_action:
  description: The PagerDuty event action used.
  returned: when O(kind=pagerduty)
  type: str
  sample: trigger
attempts:
  description: Each attempt's C(status) (None for no answer), C(wait_before_s) and C(elapsed_ms).
  returned: when sent or failed
  type: list
  elements: dict
"""

import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.tradeops.incident_response.plugins.module_utils import notify
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import iso_utc, parse_rfc3339

DESTINATIONS = {"slack": "The Slack webhook", "pagerduty": "PagerDuty", "webhook": "The webhook"}
URL_ENV = "INCIDENT_NOTIFY_URL"  # read in run(), not as an argument_spec fallback: kind=pagerduty ignores it


class Notifier:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.kind = self.p["kind"]

    def fail(self, msg, **result):
        self.module.fail_json(msg=msg, **result)

    def event_action(self):
        if self.kind != "pagerduty":
            return None
        return self.p["event_action"] or ("resolve" if self.p["status"] == "Resolved" else "trigger")

    def fields(self, needed):
        p = self.p
        missing = [name for name in ("incident_type", "severity") if not p[name]]
        if missing:
            if needed:
                self.fail("incident_type and severity are required to fill in the alert template; missing: %s." % ", ".join(missing))
            return None
        timestamp = p["timestamp"]
        if timestamp:
            try:
                parse_rfc3339(timestamp)
            except ValueError as exc:
                self.fail("timestamp must be an RFC 3339 time with a time zone, such as 2026-11-27T03:12:00Z: %s." % exc)
        else:
            timestamp = iso_utc(time.time())
        return notify.alert_fields(p["incident_type"], p["severity"], timestamp, p["impact"], p["status"], p["actions"], p["eta"])

    def build(self):
        p = self.p
        action = self.event_action()
        needed = action in (None, "trigger")
        fields = self.fields(needed)
        text = notify.render(fields) if fields else None
        source = p["source"] or socket.gethostname()
        if self.kind == "slack":
            payload = notify.slack_payload(text)
        elif self.kind == "webhook":
            payload = notify.webhook_payload(fields, text, source, p["details"])
        else:
            if not p["routing_key"]:
                self.fail("routing_key is required for kind=pagerduty (or set PAGERDUTY_ROUTING_KEY).")
            if action != "trigger" and not p["dedup_key"]:
                self.fail("dedup_key is required to %s a PagerDuty incident: pass the dedup_key its trigger returned." % action)
            payload = notify.pagerduty_payload(p["routing_key"], action, p["dedup_key"], fields, text, source,
                                               p["component"], p["group"], p["details"])
        return action, text, payload

    def run(self):
        p = self.p
        if self.kind == "pagerduty":
            # INCIDENT_NOTIFY_URL is the chat webhook: a page (and its routing key) goes there only when the task says so.
            url = p["url"] or notify.PAGERDUTY_EVENTS_URL
        else:
            url = p["url"] or os.environ.get(URL_ENV) or None
            if url:
                self.module.no_log_values.add(url)  # as no_log does for the option
        if not url:
            self.fail("url is required for kind=%s: the incoming-webhook URL (or set %s)." % (self.kind, URL_ENV))
        try:
            notify.check_url(url)
        except ValueError as exc:
            self.fail(str(exc))
        for name in ("timeout", "retry_delay"):
            if p[name] is None or p[name] < 0 or (name == "timeout" and p[name] == 0):
                self.fail("%s must be a positive number of seconds, got %s." % (name, p[name]))
        if p["max_retries"] < 0:
            self.fail("max_retries must be 0 or more, got %s." % p["max_retries"])
        action, text, payload = self.build()
        result = {"changed": True, "kind": self.kind, "payload": notify.masked(payload), "sent": False}
        if text is not None:
            result["rendered"] = text
        if action:
            result.update(event_action=action, dedup_key=p["dedup_key"])
        if self.module.check_mode:
            return result
        try:
            answer = notify.post_json(url, payload, timeout=p["timeout"], validate_certs=p["validate_certs"], use_proxy=p["use_proxy"],
                                      ca_path=p["ca_path"], max_retries=p["max_retries"], retry_delay=p["retry_delay"],
                                      what=DESTINATIONS[self.kind])
        except notify.NotifyError as exc:
            result.update(changed=False, status=exc.status, attempts=exc.attempts, response=exc.body)
            self.fail(exc.message, **result)
        response = answer["body"]
        try:
            response = json.loads(response) if response.strip().startswith(("{", "[")) else response
        except ValueError:
            pass
        result.update(sent=True, status=answer["status"], attempts=answer["attempts"], response=response)
        if action and isinstance(response, dict) and response.get("dedup_key"):
            result["dedup_key"] = response["dedup_key"]
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=["slack", "pagerduty", "webhook"]),
            url=dict(type="str", no_log=True),
            routing_key=dict(type="str", no_log=True, fallback=(env_fallback, ["PAGERDUTY_ROUTING_KEY"])),
            incident_type=dict(type="str"),
            severity=dict(type="str", choices=list(notify.PAGERDUTY_SEVERITY)),
            timestamp=dict(type="str"),
            impact=dict(type="str"),
            status=dict(type="str", choices=list(notify.STATUSES), default="Investigating"),
            actions=dict(type="list", elements="str", default=[]),
            eta=dict(type="str", default="unknown"),
            event_action=dict(type="str", choices=["trigger", "acknowledge", "resolve"]),
            dedup_key=dict(type="str", no_log=False),
            source=dict(type="str"),
            component=dict(type="str"),
            group=dict(type="str"),
            details=dict(type="dict", default={}),
            timeout=dict(type="float", default=10.0),
            max_retries=dict(type="int", default=3),
            retry_delay=dict(type="float", default=1.0),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            use_proxy=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**Notifier(module).run())


if __name__ == "__main__":
    main()
