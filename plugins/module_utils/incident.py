# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Incident records: the SOP's quick reference, the record file, and its Markdown rendering.

A record is one JSON file per incident, rewritten atomically after every step, so a run that
dies half-way still leaves everything up to the last completed step on disk. The Markdown file
is rendered from it at close and is the start of the post-incident review (SOP: "Required
Documentation").
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from typing import Any, Optional

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import redact

# The SOP's quick reference. Types the SOP does not list take the severity and response time of
# the incident that triggers them (kill switch: loss breach / compromise) or, for routine work,
# P4. Response targets in seconds; the SOP's "Immediate" is measured against 60 s.
INCIDENT_TYPES = {
    "key_compromise": {"title": "Key Compromise", "severity": "P1", "target_s": 300, "target": "< 5 min"},
    "auth_failure": {"title": "Auth Failure", "severity": "P2", "target_s": 900, "target": "< 15 min"},
    "ws_disconnect": {"title": "WS Disconnect", "severity": "P3", "target_s": 1800, "target": "< 30 min"},
    "high_latency": {"title": "High Latency", "severity": "P3", "target_s": 3600, "target": "< 1 hour"},
    "loss_breach": {"title": "Loss Breach", "severity": "P1", "target_s": 60, "target": "Immediate"},
    "kill_switch": {"title": "Kill Switch Activation", "severity": "P1", "target_s": 60, "target": "Immediate"},
    "staleness": {"title": "Staleness Event", "severity": "P2", "target_s": 900, "target": "< 15 min"},
    "funding_spike": {"title": "Funding Rate Spike", "severity": "P3", "target_s": 3600, "target": "< 1 hour"},
    "key_failover": {"title": "Key Failover", "severity": "P2", "target_s": 900, "target": "< 15 min"},
    "loss_breach_recovery": {"title": "Loss Breach Recovery", "severity": "P2", "target_s": None, "target": "after review"},
    "dr_drill": {"title": "Disaster Recovery Drill", "severity": "P4", "target_s": None, "target": "per step"},
    "checklist": {"title": "Prevention Checklist", "severity": "P4", "target_s": None, "target": "n/a"},
}
SEVERITIES = ("P1", "P2", "P3", "P4")
ROUTINE_TYPES = ("checklist", "dr_drill")
STATUSES = ("Investigating", "Mitigating", "Resolved", "Failed")

_SECRET_KEY_RE = re.compile(r"(private_?key|secret|token|jwt|password|passphrase|routing_key|webhook|authorization)", re.I)
_SAFE_KEYS = {"token_expiry", "tokens_minted"}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A UTC ISO 8601 time (Z or an offset); ValueError names the value otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValueError("occurred_at must be an ISO 8601 time such as 2026-11-27T03:12:00.120Z, got %r." % (text,)) from None
    if moment.tzinfo is None:
        raise ValueError("occurred_at %r has no time zone; add Z for UTC." % text)
    return moment.astimezone(timezone.utc)


def scrub(value: Any) -> Any:
    """Drop anything secret-looking before it is written: by key name, and by content (``errors.redact``:
    PEM, JWT, bearer tokens, webhook URLs, credentials and secret-named parameters in URLs)."""
    if isinstance(value, dict):
        clean = {}
        for key, item in value.items():
            if _SECRET_KEY_RE.search(str(key)) and str(key) not in _SAFE_KEYS and not str(key).endswith(("_name", "_path", "_slot", "_id")):
                clean[key] = "[REDACTED]"
            else:
                clean[key] = scrub(item)
        return clean
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return redact(value) if isinstance(value, str) else value


def safe_incident_id(incident_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", incident_id or ""):
        raise ValueError(
            "incident_id %r is not usable as a file name: use letters, digits, '.', '_' and '-' (up to 128)." % incident_id
        )
    return incident_id


class RecordStore:
    """The files of one incident under ``records_dir``: ``<id>.json`` (the record) and ``<id>.md``."""

    def __init__(self, records_dir: str, incident_id: str) -> None:
        self.records_dir = records_dir
        self.incident_id = safe_incident_id(incident_id)
        self.json_path = os.path.join(records_dir, self.incident_id + ".json")
        self.markdown_path = os.path.join(records_dir, self.incident_id + ".md")
        self._lock_path = os.path.join(records_dir, "." + self.incident_id + ".lock")
        self.changed = False  # whether the last update() wrote the record

    def ensure_dir(self) -> None:
        os.makedirs(self.records_dir, mode=0o750, exist_ok=True)

    def _read_text(self) -> Optional[str]:
        try:
            with open(self.json_path, "r", encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def _parse(self, text: Optional[str]) -> Optional[dict]:
        """The record in ``text``; ValueError naming the file when it is not a JSON object."""
        if text is None:
            return None
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise ValueError("The incident record %s is not valid JSON (%s): move it aside or repair it." % (self.json_path, exc)) from None
        if not isinstance(record, dict):
            raise ValueError("The incident record %s is not a JSON object: move it aside or repair it." % self.json_path)
        return record

    def load(self) -> Optional[dict]:
        """The record, None when there is none; ValueError naming the file when it is corrupt."""
        try:
            return self._parse(self._read_text())
        except UnicodeDecodeError as exc:
            raise ValueError("The incident record %s is not UTF-8 text (%s): move it aside or repair it." % (self.json_path, exc.reason)) from None

    def _write(self, path: str, text: str) -> None:
        handle, temp = tempfile.mkstemp(dir=self.records_dir, prefix=".tmp-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temp, 0o640)
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    def update(self, change) -> dict:
        """Load, apply ``change(record) -> record``, write back, under a lock (forks may call at once).

        The file is not rewritten when the change leaves it as it was; ``self.changed`` says whether it was written.
        """
        self.ensure_dir()
        self.changed = False
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            before = self.load()
            old_text = None if before is None else json.dumps(before, indent=2, sort_keys=False, default=str) + "\n"
            record = scrub(change(before))
            text = json.dumps(record, indent=2, sort_keys=False, default=str) + "\n"
            if text != old_text:
                self._write(self.json_path, text)
                self.changed = True
            return record

    def write_markdown(self, text: str) -> None:
        self._write(self.markdown_path, scrub(text))


def elapsed_since(record: dict, moment: datetime) -> float:
    opened = datetime.fromisoformat(record["opened_at"].replace("Z", "+00:00"))
    return round((moment - opened).total_seconds(), 3)


def render_alert(fields: dict) -> str:
    """The SOP's internal-alert template, filled in."""
    order = ("INCIDENT", "SEVERITY", "TIME", "IMPACT", "STATUS", "ACTIONS", "ETA")
    lines = []
    for name in order:
        value = fields.get(name.lower())
        if isinstance(value, (list, tuple)):
            value = "; ".join(str(v) for v in value)
        lines.append("%s: %s" % (name, value if value not in (None, "") else "n/a"))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(record: dict) -> str:
    """The human record: alert text, timeline, milestones against targets, final state, review skeleton."""
    out = []
    title = "%s %s" % (record.get("title") or record.get("type"), record["incident_id"])
    out.append("# %s%s" % (title, " (REHEARSAL: check mode, nothing was changed)" if record.get("rehearsal") else ""))
    out.append("")
    out.append("| | |\n|---|---|")
    for label, key in (("Type", "type"), ("Severity", "severity"), ("Environment", "environment"), ("Operator", "operator"),
                       ("Opened (UTC)", "opened_at"), ("Closed (UTC)", "closed_at"), ("Status", "status"),
                       ("Response target", "response_target"), ("Duration (s)", "duration_s")):
        out.append("| %s | %s |" % (label, _cell(record.get(key, ""))))
    out.append("")
    if record.get("alert_text"):
        out.append("## Internal alert\n\n```\n%s\n```\n" % record["alert_text"])
    if record.get("error"):
        out.append("## Failure\n\n%s\n" % record["error"])
    out.append("## Timeline\n\n| UTC | +s | step | status | details |\n|---|---|---|---|---|")
    for entry in record.get("timeline", []):
        cells = (entry["time"], entry["elapsed_s"], _cell(entry["step"]), entry["status"], _cell(entry.get("details") or ""))
        out.append("| %s | %s | %s | %s | %s |" % cells)
    out.append("")
    milestones = record.get("milestones") or {}
    if milestones:
        out.append("## Milestones\n\n| milestone | +s | target | met |\n|---|---|---|---|")
        for name, data in milestones.items():
            out.append("| %s | %s | %s | %s |" % (name, data["elapsed_s"], data.get("target") or "", data.get("met", "")))
        out.append("")
    if record.get("final_state"):
        out.append("## Final state\n\n```json\n%s\n```\n" % json.dumps(record["final_state"], indent=2, sort_keys=True, default=str))
    # Checklists and drills are routine runs: a to-do list, no post-incident review.
    routine = record.get("type") in ROUTINE_TYPES
    if record.get("checklist"):
        out.append("## %s\n" % ("To do" if routine else "Post-incident checklist"))
        out.extend("- [ ] %s" % item for item in record["checklist"])
        out.append("")
    if not routine:
        out.append("## Post-incident review (SOP: within 48 hours)\n")
        for heading in ("Root cause analysis", "Impact assessment (PnL, positions)", "Lessons learned", "Prevention measures"):
            out.append("### %s\n\n_to be written by the incident commander_\n" % heading)
    return "\n".join(out) + "\n"
