#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_record
short_description: Open, extend and close an incident record on the controller
version_added: 0.1.0
description:
  - Keeps the record every runbook leaves behind; the C(tradeops.incident_response.incident_record)
    role drives it.
  - O(action=open) starts a record (incident id, type, severity from the SOP's quick reference,
    who ran it, UTC time). O(action=event) appends a timeline entry and, with O(milestone),
    the time to that milestone against the SOP's response target. O(action=close) adds the
    final state, fills in the SOP's internal-alert template and renders the Markdown record.
  - The JSON record is rewritten atomically after every call that changes it, so a run that dies
    half-way leaves everything up to its last step. O(action=open) on a record that exists (a
    retried run) returns it as it is, with C(changed=false), and keeps its clock. Anything
    secret-looking (keys, tokens, webhook URLs) is removed before writing.
  - A record file that is not valid JSON fails the task with a message naming the file.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: none
    description:
      - The record is the audit trail of a run, rehearsals included, so it is written in
        check mode too when the task says C(check_mode=false), which the role does; O(rehearsal)
        marks such records. Without that the task is skipped in check mode.
  diff_mode:
    support: none
    description: Records only grow; there is nothing useful to diff.
options:
  records_dir:
    description: Directory for the records (created with mode 0750).
    type: path
    required: true
  incident_id:
    description: The incident's id; also the file name (letters, digits, C(.), C(_), C(-)).
    type: str
    required: true
  action:
    description: What to do with the record.
    type: str
    choices: [open, event, close]
    required: true
  incident_type:
    description:
      - The SOP incident type (O(action=open)); sets the title, default severity and response target.
    type: str
    choices: [key_compromise, auth_failure, ws_disconnect, high_latency, loss_breach, kill_switch, staleness,
              funding_spike, key_failover, loss_breach_recovery, dr_drill, checklist]
  severity:
    description: Overrides the SOP's severity for the type.
    type: str
    choices: [P1, P2, P3, P4]
  operator:
    description: Who ran it (the AWX user, or the login on a laptop).
    type: str
  environment:
    description: C(production), C(drill), ...
    type: str
  rehearsal:
    description: Mark the record as a check-mode rehearsal in which nothing was changed.
    type: bool
    default: false
  summary:
    description: One line on what happened (the alert's IMPACT if O(impact) is not given).
    type: str
  step:
    description: Name of the step (O(action=event)).
    type: str
  status:
    description:
      - For O(action=event), the step's outcome.
      - For O(action=close), the incident's status for the alert (the SOP's Investigating, Mitigating, Resolved), or C(Failed).
    type: str
    choices: [ok, failed, warning, info, skipped, Investigating, Mitigating, Resolved, Failed]
  details:
    description: Anything that explains the step or the close (dict, list or text).
    type: raw
  milestone:
    description: Name of a milestone this event reaches (for example C(orders_cancelled)); its time is measured from the open.
    type: str
  occurred_at:
    description:
      - When the step really happened (UTC ISO 8601), when that is earlier than this call, for
        example the moment an asynchronous cancel emptied the book. Default now.
    type: str
  final_state:
    description: The state of the exchange side and of each host at the end (O(action=close)).
    type: dict
  impact:
    description: The alert's IMPACT (positions / PnL affected).
    type: str
  actions:
    description: The alert's ACTIONS (steps taken).
    type: list
    elements: str
  eta:
    description: The alert's ETA.
    type: str
  checklist:
    description: Post-incident checklist items stored in the record.
    type: list
    elements: str
  error:
    description: Why the run failed, when it did.
    type: str
"""

EXAMPLES = r"""
- name: Open the record
  tradeops.incident_response.incident_record:
    records_dir: "{{ tradeops_records_dir }}"
    incident_id: "{{ incident_id }}"
    action: open
    incident_type: kill_switch
    operator: "{{ awx_user_name | default(lookup('env', 'USER')) }}"
  delegate_to: localhost
  run_once: true
  check_mode: false

- name: Note a milestone
  tradeops.incident_response.incident_record:
    records_dir: "{{ tradeops_records_dir }}"
    incident_id: "{{ incident_id }}"
    action: event
    step: Cancel every open order
    status: ok
    milestone: orders_cancelled
    details: {cancelled: 412, remaining: 0}
  delegate_to: localhost
  run_once: true
  check_mode: false
"""

RETURN = r"""
json_path:
  description: The JSON record.
  returned: always
  type: str
  sample: /srv/tradeops/records/KS-20261127T031200Z.json
markdown_path:
  description: The Markdown record (written at close).
  returned: always
  type: str
  sample: /srv/tradeops/records/KS-20261127T031200Z.md
record:
  description: The record as written (secrets removed).
  returned: always
  type: dict
alert_text:
  description: The SOP's internal alert, filled in (O(action=close)).
  returned: when O(action=close)
  type: str
  sample: "INCIDENT: Kill Switch Activation\nSEVERITY: P1\n..."
elapsed_s:
  description: Seconds since the record was opened.
  returned: always
  type: float
  sample: 42.5
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils.incident import (
    INCIDENT_TYPES,
    RecordStore,
    elapsed_since,
    iso,
    parse_time,
    render_alert,
    render_markdown,
    utc_now,
)


class Recorder:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.store = RecordStore(self.p["records_dir"], self.p["incident_id"])
        self.now = utc_now()
        self.occurred_at = parse_time(self.p["occurred_at"]) if self.p["occurred_at"] else None

    def open(self, record):
        if record is not None:
            return record  # opening twice (a retried run) keeps the first record and its clock
        kind = INCIDENT_TYPES[self.p["incident_type"]]
        return {
            "incident_id": self.store.incident_id,
            "type": self.p["incident_type"],
            "title": kind["title"],
            "severity": self.p["severity"] or kind["severity"],
            "response_target": kind["target"],
            "response_target_s": kind["target_s"],
            "environment": self.p["environment"],
            "operator": self.p["operator"],
            "rehearsal": self.p["rehearsal"],
            "summary": self.p["summary"],
            "opened_at": iso(self.now),
            "status": "Investigating",
            "timeline": [{"time": iso(self.now), "elapsed_s": 0.0, "step": "record opened", "status": "info", "details": None}],
            "milestones": {},
        }

    def event(self, record):
        moment = self.occurred_at or self.now
        elapsed = elapsed_since(record, moment)
        record["timeline"].append({
            "time": iso(moment), "elapsed_s": elapsed, "step": self.p["step"] or "record %sd" % self.p["action"],
            "status": self.p["status"] if self.p["action"] == "event" and self.p["status"] else ("info" if self.p["action"] == "close" else "ok"),
            "details": self.p["details"],
        })
        # An event may have happened before this call (occurred_at): keep the timeline in time order.
        record["timeline"].sort(key=lambda entry: entry["time"])
        if self.p["milestone"]:
            target = record.get("response_target_s")
            record["milestones"][self.p["milestone"]] = {
                "elapsed_s": elapsed, "target_s": target, "target": record.get("response_target"),
                "met": None if target is None else elapsed <= target,
            }
        return record

    def close(self, record):
        record = self.event(dict(record, timeline=list(record["timeline"])))
        status = self.p["status"] or ("Failed" if self.p["error"] else "Resolved")
        record.update(
            closed_at=iso(self.now),
            duration_s=elapsed_since(record, self.now),
            status=status,
            final_state=self.p["final_state"] or record.get("final_state"),
            checklist=self.p["checklist"] or record.get("checklist"),
            error=self.p["error"],
        )
        record["alert_text"] = render_alert({
            "incident": record["title"], "severity": record["severity"], "time": record["opened_at"],
            "impact": self.p["impact"] or record.get("summary"), "status": status,
            "actions": self.p["actions"], "eta": self.p["eta"] or ("n/a" if status == "Resolved" else "unknown"),
        })
        return record

    def run(self):
        action = self.p["action"]

        def change(record):
            if action == "open":
                return self.open(record)
            if record is None:
                self.module.fail_json(msg="No record %s in %s: open it first (action=open)." % (self.store.incident_id, self.store.records_dir))
            return self.event(record) if action == "event" else self.close(record)

        try:
            record = self.store.update(change)
            if action == "close":
                self.store.write_markdown(render_markdown(record))
            elapsed = elapsed_since(record, self.now)
        except OSError as exc:
            self.module.fail_json(msg="Cannot write the incident record in %s: %s." % (self.store.records_dir, exc.strerror or exc))
        except ValueError as exc:  # a corrupt record file (RecordStore's messages name it)
            text = str(exc)
            if self.store.json_path not in text:
                text = "The incident record %s is damaged (%s): move it aside or repair it." % (self.store.json_path, text)
            self.module.fail_json(msg=text, json_path=self.store.json_path)
        except (KeyError, TypeError, AttributeError) as exc:
            self.module.fail_json(msg="The incident record %s is damaged (%s: %s): move it aside or repair it."
                                      % (self.store.json_path, type(exc).__name__, exc), json_path=self.store.json_path)
        return {
            # Opening a record that exists (a retried run) returns it unchanged and does not rewrite it.
            "changed": self.store.changed or action == "close",
            "json_path": self.store.json_path,
            "markdown_path": self.store.markdown_path,
            "record": record,
            "alert_text": record.get("alert_text"),
            "elapsed_s": elapsed,
        }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            records_dir=dict(type="path", required=True),
            incident_id=dict(type="str", required=True),
            action=dict(type="str", required=True, choices=["open", "event", "close"]),
            incident_type=dict(type="str", choices=sorted(INCIDENT_TYPES)),
            severity=dict(type="str", choices=["P1", "P2", "P3", "P4"]),
            operator=dict(type="str"),
            environment=dict(type="str"),
            rehearsal=dict(type="bool", default=False),
            summary=dict(type="str"),
            step=dict(type="str"),
            status=dict(type="str", choices=["ok", "failed", "warning", "info", "skipped", "Investigating", "Mitigating", "Resolved", "Failed"]),
            details=dict(type="raw"),
            milestone=dict(type="str"),
            occurred_at=dict(type="str"),
            final_state=dict(type="dict"),
            impact=dict(type="str"),
            actions=dict(type="list", elements="str"),
            eta=dict(type="str"),
            checklist=dict(type="list", elements="str"),
            error=dict(type="str"),
        ),
        required_if=[("action", "open", ["incident_type"]), ("action", "event", ["step"])],
        supports_check_mode=False,
    )
    try:
        recorder = Recorder(module)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**recorder.run())


if __name__ == "__main__":
    main()
