#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_record_info
short_description: Summarize the incident records on the controller (the weekly review, the last drill)
version_added: 0.1.0
description:
  - Reads the JSON records that M(tradeops.incident_response.incident_record) writes and
    summarizes those opened in the last O(days), for the SOP's weekly "review incidents" and the
    monthly check that a disaster-recovery drill was done.
  - "Counts records by type, severity and status; lists records that were never closed (the
    run died before its C(always) section), incidents still open (closed as Investigating or
    Mitigating: a person still has work to do), failed runs, and milestones that missed the
    SOP's response target."
  - Check-mode rehearsals (C(rehearsal=true)) and routine records (the checklists) are counted
    apart from real incidents.
  - Read-only.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Changes nothing.
options:
  records_dir:
    description: The records directory on the controller.
    type: path
    required: true
  days:
    description: Only records opened in the last this many days.
    type: float
    default: 7
  types:
    description: Only records of these incident types; empty for every type.
    type: list
    elements: str
    default: []
  exclude_ids:
    description: Records to leave out (the run's own, still open, record).
    type: list
    elements: str
    default: []
  routine_types:
    description: Types that are routine work, not incidents.
    type: list
    elements: str
    default: [checklist, dr_drill]
"""

EXAMPLES = r"""
- name: The week's records
  tradeops.incident_response.incident_record_info:
    records_dir: "{{ hostvars['localhost'].incident_record_dir }}"
    days: 7
    exclude_ids: ["{{ incident_id }}"]
  register: week

- name: The last month's disaster-recovery drills
  tradeops.incident_response.incident_record_info:
    records_dir: /var/lib/tradeops/records
    days: 31
    types: [dr_drill]
  register: drills
"""

RETURN = r"""
window:
  description: The window, UTC ISO 8601.
  returned: always
  type: dict
  sample: {"start": "2026-11-20T03:00:00Z", "end": "2026-11-27T03:00:00Z", "days": 7.0}
records:
  description: One summary per record in the window, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    incident_id:
      description: The record's id.
      type: str
    type:
      description: Incident type.
      type: str
    severity:
      description: P1 to P4.
      type: str
    status:
      description: Resolved, Mitigating, Investigating, Failed.
      type: str
    opened_at:
      description: UTC ISO 8601.
      type: str
    closed_at:
      description: UTC ISO 8601, or null when never closed.
      type: str
    age_days:
      description: Days since it was opened.
      type: float
    rehearsal:
      description: A check-mode rehearsal.
      type: bool
    environment:
      description: production, drill, ...
      type: str
    summary:
      description: The record's one-line summary.
      type: str
    error:
      description: Why the run failed, if it did.
      type: str
    missed_milestones:
      description: Milestones over the SOP's response target.
      type: list
      elements: str
counts:
  description: Numbers over the window.
  returned: always
  type: dict
  contains:
    total:
      description: Records in the window.
      type: int
    incidents:
      description: Real incidents (not rehearsals, not routine types).
      type: int
    rehearsals:
      description: Check-mode rehearsals.
      type: int
    routine:
      description: Routine records (checklists, drills), not rehearsals.
      type: int
    by_type:
      description: Records per type (rehearsals included).
      type: dict
    by_severity:
      description: Real incidents per severity.
      type: dict
    by_status:
      description: Records per status (C(unclosed) for records never closed).
      type: dict
unclosed:
  description: Ids of records never closed.
  returned: always
  type: list
  elements: str
still_open:
  description: Ids of incidents closed as Investigating or Mitigating (work left for a person).
  returned: always
  type: list
  elements: str
failed_runs:
  description: Ids of records closed as Failed.
  returned: always
  type: list
  elements: str
missed_milestones:
  description: Every milestone that missed its target.
  returned: always
  type: list
  elements: dict
  sample: [{"incident_id": "kill_switch-20261125T031200Z", "milestone": "flat", "elapsed_s": 94.2, "target": "Immediate"}]
newest:
  description: The newest record's summary per type.
  returned: always
  type: dict
unreadable:
  description: JSON files in the directory that are not records or could not be read.
  returned: always
  type: list
  elements: str
"""

import json
import os
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

OPEN_STATUSES = ("Investigating", "Mitigating")


def parse_iso(text):
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError):
        return None


def iso(epoch):
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summarize(record, now):
    opened = parse_iso(record.get("opened_at"))
    missed = [name for name, data in (record.get("milestones") or {}).items()
              if isinstance(data, dict) and data.get("met") is False]
    return dict(
        incident_id=record.get("incident_id"),
        type=record.get("type"),
        severity=record.get("severity"),
        status=record.get("status") if record.get("closed_at") else "unclosed",
        opened_at=record.get("opened_at"),
        closed_at=record.get("closed_at"),
        age_days=round((now - opened) / 86400.0, 3) if opened is not None else None,
        rehearsal=bool(record.get("rehearsal")),
        environment=record.get("environment"),
        summary=record.get("summary"),
        error=record.get("error") or "",
        missed_milestones=missed,
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            records_dir=dict(type="path", required=True),
            days=dict(type="float", default=7.0),
            types=dict(type="list", elements="str", default=[]),
            exclude_ids=dict(type="list", elements="str", default=[]),
            routine_types=dict(type="list", elements="str", default=["checklist", "dr_drill"]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    now = time.time()
    start = now - params["days"] * 86400
    records, unreadable = [], []
    directory = params["records_dir"]
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "r", encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            unreadable.append(path)
            continue
        if not isinstance(record, dict) or "timeline" not in record or "opened_at" not in record:
            continue  # another JSON file that lives here (an audit's fills, ...)
        opened = parse_iso(record.get("opened_at"))
        if opened is None:
            unreadable.append(path)
            continue
        if opened < start or record.get("incident_id") in params["exclude_ids"]:
            continue
        if params["types"] and record.get("type") not in params["types"]:
            continue
        summary = summarize(record, now)
        summary["_record"] = record
        records.append(summary)
    records.sort(key=lambda r: r["opened_at"] or "", reverse=True)

    counts = dict(total=len(records), incidents=0, rehearsals=0, routine=0, by_type={}, by_severity={}, by_status={})
    unclosed, still_open, failed, missed, newest = [], [], [], [], {}
    for summary in records:
        record = summary.pop("_record")
        counts["by_type"][summary["type"]] = counts["by_type"].get(summary["type"], 0) + 1
        counts["by_status"][summary["status"]] = counts["by_status"].get(summary["status"], 0) + 1
        newest.setdefault(summary["type"], summary)
        if summary["rehearsal"]:
            counts["rehearsals"] += 1
        elif summary["type"] in params["routine_types"]:
            counts["routine"] += 1
        else:
            counts["incidents"] += 1
            counts["by_severity"][summary["severity"]] = counts["by_severity"].get(summary["severity"], 0) + 1
            if summary["status"] in OPEN_STATUSES:
                still_open.append(summary["incident_id"])
        if summary["status"] == "unclosed":
            unclosed.append(summary["incident_id"])
        elif summary["status"] == "Failed":
            failed.append(summary["incident_id"])
        for name in summary["missed_milestones"]:
            data = record["milestones"][name]
            missed.append(dict(incident_id=summary["incident_id"], type=summary["type"], milestone=name,
                               elapsed_s=data.get("elapsed_s"), target=data.get("target"), rehearsal=summary["rehearsal"]))
    module.exit_json(changed=False, window=dict(start=iso(start), end=iso(now), days=params["days"]), records=records,
                     counts=counts, unclosed=unclosed, still_open=still_open, failed_runs=failed, missed_milestones=missed,
                     newest=newest, unreadable=unreadable)


if __name__ == "__main__":
    main()
