#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bot_log_info
short_description: Count error and disconnect lines in a trading host's bot logs over the last hours
version_added: 0.1.0
description:
  - The SOP's daily "review error logs" (Prevention Checklist) and its WebSocket alert thresholds
    (section 2, more than 3 disconnects an hour a warning, more than 10 critical), on a fleet host.
  - Reads each log and its numbered rotations (C(<log>.1) ... C(<log>.9), oldest first, so a
    window that spans a rotation is counted whole), keeps the lines written in the last
    O(hours) by their leading UTC timestamp (the fleet contract says every bot log line starts
    with one; a line without one, such as a traceback, belongs to the line before it), and counts
    the lines that match each of O(patterns).
  - For each pattern it reports the total in the window, the most in any rolling 60 minutes (the
    SOP's thresholds are per hour), and the last matching lines (cut to 200 characters).
  - Read-only.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Only reads; counts the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
options:
  paths:
    description: The logs.
    type: list
    elements: path
    default: [/opt/trading-bot/logs/websocket.log, /opt/trading-bot/logs/orders.log]
  hours:
    description: The window, ending now (the host's clock).
    type: float
    default: 24
  patterns:
    description:
      - Name to Python regular expression (C(re.search)); a line counts once per pattern it matches.
      - Each pattern applies to the logs named in O(pattern_paths) for it, or to every log.
    type: dict
    default: {errors: '(?i)\berror\b', disconnects: '\bdisconnect\b'}
  pattern_paths:
    description:
      - Name of a pattern to the file names (base names, for example C(websocket.log)) it applies to.
    type: dict
    default: {disconnects: [websocket.log]}
  last_lines:
    description: How many of the last matching lines to return per pattern.
    type: int
    default: 3
notes:
  - Needs read access to the logs (C(become=true) on a fleet host).
"""

EXAMPLES = r"""
- name: Errors and disconnects in the last 24 hours
  tradeops.incident_response.bot_log_info:
    hours: 24
  become: true
  register: logs

- name: Warn above the SOP's 3 disconnects an hour
  ansible.builtin.debug:
    msg: "{{ logs.counts.disconnects.max_per_hour }} disconnects in the worst hour"
  when: logs.counts.disconnects.max_per_hour > 3
"""

RETURN = r"""
window:
  description: The window counted, UTC ISO 8601.
  returned: always
  type: dict
  sample: {"start": "2026-11-26T03:00:00Z", "end": "2026-11-27T03:00:00Z", "hours": 24.0}
counts:
  description: Per pattern, over every log it applies to.
  returned: always
  type: dict
  sample: {"errors": {"total": 2, "max_per_hour": 2, "worst_hour_start": "2026-11-27T01:12:03Z", "last": ["..."]}}
files:
  description: Per log, whether it exists, the rotations read, the lines in the window and the count per pattern.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/opt/trading-bot/logs/orders.log", "exists": true, "read": ["/opt/trading-bot/logs/orders.log"],
            "lines_in_window": 8120, "counts": {"errors": 2}}]
missing:
  description: Logs that do not exist.
  returned: always
  type: list
  elements: str
"""

import os
import re
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(\.\d+)?Z?\s")
MAX_ROTATIONS = 9
LINE_CUT = 200


def iso(epoch):
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(line):
    match = TIMESTAMP.match(line)
    if not match:
        return None
    try:
        moment = datetime.strptime(match.group(1).replace(" ", "T"), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:  # shaped like a timestamp but not a date (2026-13-45T99:00:00)
        return None
    return moment.timestamp() + (float(match.group(2)) if match.group(2) else 0.0)


def rotations(path):
    """The log's numbered rotations that exist, oldest first, then the log itself."""
    found = [path + ".%d" % n for n in range(MAX_ROTATIONS, 0, -1) if os.path.isfile(path + ".%d" % n)]
    return found + ([path] if os.path.isfile(path) else [])


def max_in_hour(times):
    """The most events in any rolling 3600 s, and when that hour started."""
    times = sorted(times)
    best, start, first = 0, None, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 3600:
            first += 1
        if last - first + 1 > best:
            best, start = last - first + 1, times[first]
    return best, start


def scan(path, start, compiled, applies):
    """Lines in the window per pattern: {name: [(time, line)]}, and the number of lines in the window."""
    hits = dict((name, []) for name in compiled)
    read, in_window = [], 0
    for part in rotations(path):
        read.append(part)
        current = None
        with open(part, "r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                moment = parse_time(line)
                if moment is not None:
                    current = moment
                if current is None or current < start:
                    continue
                in_window += 1
                for name, regex in compiled.items():
                    if applies[name](path) and regex.search(line):
                        hits[name].append((current, line.rstrip("\n")[:LINE_CUT]))
    return hits, read, in_window


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path",
                       default=["/opt/trading-bot/logs/websocket.log", "/opt/trading-bot/logs/orders.log"]),
            hours=dict(type="float", default=24.0),
            patterns=dict(type="dict", default={"errors": r"(?i)\berror\b", "disconnects": r"\bdisconnect\b"}),
            pattern_paths=dict(type="dict", default={"disconnects": ["websocket.log"]}),
            last_lines=dict(type="int", default=3),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["hours"] <= 0:
        module.fail_json(msg="hours must be above 0, not %s" % params["hours"])
    compiled = {}
    for name, expression in params["patterns"].items():
        try:
            compiled[name] = re.compile(str(expression))
        except re.error as exc:
            module.fail_json(msg="pattern %s=%r is not a regular expression: %s" % (name, expression, exc))
    applies = {}
    for name in compiled:
        names = params["pattern_paths"].get(name)
        if names is None:
            applies[name] = lambda path: True
        else:
            allowed = set(str(n) for n in (names if isinstance(names, list) else [names]))
            applies[name] = lambda path, allowed=allowed: os.path.basename(path) in allowed

    end = time.time()
    start = end - params["hours"] * 3600
    all_hits = dict((name, []) for name in compiled)
    files, missing = [], []
    for path in params["paths"]:
        if not os.path.isfile(path):
            missing.append(path)
            files.append(dict(path=path, exists=False, read=[], lines_in_window=0, counts={}))
            continue
        try:
            hits, read, in_window = scan(path, start, compiled, applies)
        except OSError as exc:
            module.fail_json(msg="cannot read %s: %s (run the task as root: become: true)" % (path, exc.strerror or exc))
        for name, found in hits.items():
            all_hits[name].extend(found)
        files.append(dict(path=path, exists=True, read=read, lines_in_window=in_window,
                          counts=dict((name, len(found)) for name, found in hits.items() if applies[name](path))))

    counts = {}
    for name, found in all_hits.items():
        found.sort(key=lambda hit: hit[0])
        best, hour_start = max_in_hour([moment for moment, _line in found])
        counts[name] = dict(total=len(found), max_per_hour=best,
                            worst_hour_start=iso(hour_start) if hour_start is not None else None,
                            last=[line for _moment, line in found[-params["last_lines"]:]] if params["last_lines"] > 0 else [])
    module.exit_json(changed=False, window=dict(start=iso(start), end=iso(end), hours=params["hours"]),
                     counts=counts, files=files, missing=missing)


if __name__ == "__main__":
    main()
