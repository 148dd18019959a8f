#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bot_units
short_description: Stop, start, restart, mask, unmask or report a trading host's systemd units, with a deadline
version_added: 0.1.0
description:
  - The SOP's C(systemctl stop trading-bot-perpetuals) (section 3) and
    C(systemctl stop trading-bot-orders) (section 7), for a list of units at once.
  - Every unit is acted on in parallel (C(systemctl --no-block)), then the module waits until
    each one reaches the state asked for, and fails naming the unit, its state and how to go on
    when one does not within O(timeout) seconds.
  - V(masked) stops a unit (with its own stop settings) and keeps it from being started by
    anything (a dependency, a timer, an operator) while a host is contained; a unit started again
    in between is stopped again once masked. C(systemctl mask) refuses units
    whose file lives in C(/etc/systemd/system), and a C(--runtime) mask does not override
    them, so the mask is a C(/dev/null) link in C(/etc/systemd/system.control), the unit
    directory systemd reads first. It survives a reboot, and V(unmasked) removes exactly it.
  - Reports each unit's C(ActiveState), C(SubState), C(LoadState) and C(UnitFileState) before
    and after.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Reads the units and reports what it would do; starts, stops and masks nothing.
  diff_mode:
    support: full
    description: Shows each unit's state before and after.
options:
  units:
    description:
      - The units. A name without a suffix gets C(.service).
    type: list
    elements: str
    required: true
  state:
    description:
      - V(started), V(stopped), V(restarted) as in C(systemctl); V(restarted) always restarts.
      - V(masked) stops, then masks. V(unmasked) removes the mask (and a C(systemctl mask)
        made by someone else) but does not start the unit.
      - V(status) changes nothing and only reports.
      - A masked unit cannot be V(started) or V(restarted); unmask it first.
    type: str
    required: true
    choices: [started, stopped, restarted, masked, unmasked, status]
  timeout:
    description:
      - Seconds to wait, for all units together, for the state asked for.
      - When a unit is still stopping after that, systemd goes on stopping it (and kills it
        after the unit's own C(TimeoutStopSec)); the module fails and says so.
    type: int
    default: 30
notes:
  - Needs root (C(become=true)) for anything but V(status).
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Kill switch - stop order placement (SOP 7, step 3)
  tradeops.incident_response.bot_units:
    units: [trading-bot-orders]
    state: stopped
    timeout: 20
  become: true

- name: Key compromise - contain both services so nothing restarts them (SOP 3, step 1)
  tradeops.incident_response.bot_units:
    units: [trading-bot-perpetuals, trading-bot-orders]
    state: masked
  become: true

- name: Resume - unmask, then start
  tradeops.incident_response.bot_units:
    units: [trading-bot-perpetuals, trading-bot-orders]
    state: "{{ item }}"
  loop: [unmasked, started]
  become: true

- name: Report
  tradeops.incident_response.bot_units:
    units: [trading-bot-perpetuals, trading-bot-orders]
    state: status
  register: units

- name: Orders service state
  ansible.builtin.debug:
    msg: "{{ units.units['trading-bot-orders.service'].after.ActiveState }}"
"""

RETURN = r"""
check_mode:
  description: Whether the module ran in check mode (so nothing was started, stopped or masked).
  returned: always
  type: bool
  sample: false
units:
  description:
    - Per unit (full name as key), what was done and its state before and after (in check mode,
      the state it would reach).
    - Each state holds C(LoadState), C(ActiveState), C(SubState), C(UnitFileState), C(MainPID)
      and C(masked_by) (V(tradeops), V(systemctl) or V(null)).
  returned: always
  type: dict
  sample:
    trading-bot-orders.service:
      action: stopped
      changed: true
      elapsed_s: 0.6
      before: {LoadState: loaded, ActiveState: active, SubState: running, UnitFileState: enabled, MainPID: 512, masked_by: null}
      after: {LoadState: loaded, ActiveState: inactive, SubState: dead, UnitFileState: enabled, MainPID: 0, masked_by: null}
actions:
  description:
    - What was done (or in check mode, would be done), one line per step.
    - When the task fails while waiting, a stop, start or restart already queued with
      C(systemctl --no-block) shows as C(issued systemctl <verb> --no-block <unit>), and the
      result is changed.
  returned: always
  type: list
  elements: str
  sample: ["stopped trading-bot-orders.service (active/running -> inactive/dead) in 0.6 s"]
mask_dir:
  description: Where the module's masks live.
  returned: always
  type: str
  sample: /etc/systemd/system.control
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tradeops.incident_response.plugins.module_utils.systemd_paths import MASK_DIR
PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "MainPID", "Result",
              "InvocationID", "TimeoutStopUSec", "FragmentPath")
REPORTED = ("LoadState", "ActiveState", "SubState", "UnitFileState", "MainPID")
STOPPED = ("inactive", "failed")
POLL_S = 0.2


def full_name(unit):
    return unit if "." in unit else unit + ".service"


class Units:
    def __init__(self, module):
        self.module = module
        self.systemctl = module.get_bin_path("systemctl", required=True)
        self.actions = []
        self.reached_at = {}  # unit -> seconds after the module started acting
        self.t0 = time.monotonic()

    def show(self, unit):
        rc, out, err = self.module.run_command([self.systemctl, "show", "--property=" + ",".join(PROPERTIES), unit])
        if rc != 0:
            self.fail("systemctl show %s failed (rc=%s): %s" % (unit, rc, (err or out).strip()))
        props = {}
        for line in out.splitlines():
            key, _sep, value = line.partition("=")
            props[key] = value
        props["masked_by"] = self.masked_by(unit, props)
        return props

    def masked_by(self, unit, props):
        if os.path.islink(self.mask_path(unit)) and os.path.realpath(self.mask_path(unit)) == "/dev/null":
            return "tradeops"
        if props.get("LoadState") == "masked" or props.get("UnitFileState", "").startswith("masked"):
            return "systemctl"
        return None

    @staticmethod
    def mask_path(unit):
        return os.path.join(MASK_DIR, unit)

    @staticmethod
    def brief(props):
        return "%s/%s" % (props.get("ActiveState"), props.get("SubState"))

    def fail(self, msg, current=None):
        """Fail with what was done so far and every unit's state now: half-done is worth knowing."""
        states = {}
        for unit, props in (current or {}).items():
            states[unit] = dict((k, props.get(k)) for k in REPORTED + ("masked_by",))
        self.module.fail_json(msg=msg, changed=bool(self.actions), actions=self.actions, units_now=states)

    def systemctl_run(self, args, what):
        rc, out, err = self.module.run_command([self.systemctl] + args)
        if rc != 0:
            self.fail("%s failed (rc=%s): %s" % (what, rc, (err or out).strip()))

    def wait(self, units, reached, verb, before, timeout):
        """Poll until reached(props, props_before) for every unit; fail naming those that did not."""
        deadline = time.monotonic() + timeout
        pending = list(units)
        current = {}
        while True:
            for unit in list(pending):
                props = self.show(unit)
                current[unit] = props
                if reached(props, before[unit]):
                    pending.remove(unit)
                    self.reached_at[unit] = time.monotonic() - self.t0
                elif (verb in ("start", "restart") and props.get("ActiveState") == "failed"
                      and props.get("InvocationID") != before[unit].get("InvocationID")):
                    self.fail("unit %s failed to %s (Result=%s); see journalctl -u %s"
                              % (unit, verb, props.get("Result"), unit), current)
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        if pending:
            details = []
            for unit in pending:
                props = current[unit]
                detail = "unit %s did not %s within %s s: ActiveState=%s SubState=%s (was %s)" % (
                    unit, verb, timeout, props.get("ActiveState"), props.get("SubState"), self.brief(before[unit]))
                if verb == "stop":
                    # the unit's own setting; a masked unit shows systemd's default instead
                    detail += ("; systemd goes on stopping it and sends SIGKILL after the unit's TimeoutStopSec (%s)"
                               % (before[unit].get("TimeoutStopUSec") or "default"))
                details.append(detail)
            self.fail("; ".join(details) + ". See journalctl -u <unit>.", current)
        return current

    def act(self, step, units, before, timeout):
        """All units at once, then wait for each: a slow unit does not delay the others."""
        self.systemctl_run([step, "--no-block"] + units, "systemctl %s %s" % (step, " ".join(units)))
        # The job is queued now: should the wait fail, the failure must still say what was issued.
        first = len(self.actions)
        self.actions.extend("issued systemctl %s --no-block %s (was %s)" % (step, u, self.brief(before[u])) for u in units)
        reached = self.wait(units, CHECKS[step], step, before, timeout)
        self.actions[first:first + len(units)] = ["%s %s (%s -> %s) in %.1f s" % (
            PAST[step], u, self.brief(before[u]), self.brief(reached[u]), self.reached_at[u]) for u in units]

    def daemon_reload(self):
        self.systemctl_run(["daemon-reload"], "systemctl daemon-reload")

    def mask(self, units):
        # Mask before stopping: Restart= or a dependency cannot bring the unit back meanwhile.
        try:
            if not os.path.isdir(MASK_DIR):
                os.makedirs(MASK_DIR, 0o755)
            for unit in units:
                path = self.mask_path(unit)
                if os.path.lexists(path):
                    os.unlink(path)  # a stale entry of the unit's name: the mask replaces it
                os.symlink("/dev/null", path)
                self.actions.append("masked %s (%s -> /dev/null)" % (unit, path))
        except OSError as exc:
            self.fail("cannot mask in %s: %s (run the task as root: become: true)" % (MASK_DIR, exc.strerror))
        self.daemon_reload()

    def unmask(self, units, before):
        try:
            for unit in units:
                if before[unit]["masked_by"] == "tradeops":
                    os.unlink(self.mask_path(unit))
                    self.actions.append("unmasked %s (removed %s)" % (unit, self.mask_path(unit)))
        except OSError as exc:
            self.fail("cannot unmask in %s: %s (run the task as root: become: true)" % (MASK_DIR, exc.strerror))
        self.daemon_reload()
        still = [u for u in units if self.show(u)["masked_by"]]
        if still:
            # someone else's `systemctl mask`: the operator asked for the unit to be startable
            self.systemctl_run(["unmask"] + still, "systemctl unmask %s" % " ".join(still))
            self.actions.extend("unmasked %s (systemctl unmask)" % u for u in still)
            self.daemon_reload()


def is_stopped(props, _before):
    return props.get("ActiveState") in STOPPED


def is_active(props, _before):
    return props.get("ActiveState") == "active"


def is_restarted(props, before):
    # a new invocation that is active, not the old one still running
    return props.get("ActiveState") == "active" and props.get("InvocationID") != before.get("InvocationID")


CHECKS = dict(stop=is_stopped, start=is_active, restart=is_restarted)
PAST = dict(mask="masked", unmask="unmasked", stop="stopped", start="started", restart="restarted")


def plan(state, names, before):
    """[(unit, step)] in the order they run."""
    todo = []
    if state in ("stopped", "masked"):
        todo.extend((u, "stop") for u in names if before[u]["ActiveState"] not in STOPPED)
    if state == "masked":
        todo.extend((u, "mask") for u in names if before[u]["masked_by"] != "tradeops")
    elif state == "started":
        todo.extend((u, "start") for u in names if before[u]["ActiveState"] != "active")
    elif state == "restarted":
        todo.extend((u, "restart") for u in names)
    elif state == "unmasked":
        todo.extend((u, "unmask") for u in names if before[u]["masked_by"])
    return todo


def predict(props, step):
    after = dict(props)
    after.update(dict(
        mask=dict(LoadState="masked", UnitFileState="masked", masked_by="tradeops"),
        unmask=dict(LoadState="loaded", UnitFileState=None, masked_by=None),
        stop=dict(ActiveState="inactive", SubState="dead", MainPID="0"),
        start=dict(ActiveState="active", SubState="running"),
        restart=dict(ActiveState="active", SubState="running"),
    )[step])
    return after


def main():
    module = AnsibleModule(
        argument_spec=dict(
            units=dict(type="list", elements="str", required=True),
            state=dict(type="str", required=True,
                       choices=["started", "stopped", "restarted", "masked", "unmasked", "status"]),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    state = module.params["state"]
    timeout = module.params["timeout"]
    names = [full_name(u.strip()) for u in module.params["units"] if u and u.strip()]
    if not names or len(names) != len(module.params["units"]):
        module.fail_json(msg="units must be a non-empty list of unit names (empty names are not allowed)")
    if any("/" in n or n.startswith(".") for n in names):
        module.fail_json(msg="units must be unit names, not paths: %s" % ", ".join(names))
    names = list(dict.fromkeys(names))  # keep order, drop repeats
    if timeout < 1:
        module.fail_json(msg="timeout must be at least 1 second")

    ctl = Units(module)
    before = dict((unit, ctl.show(unit)) for unit in names)
    missing = [u for u in names if before[u].get("LoadState") == "not-found" and not before[u]["masked_by"]]
    if missing:
        module.fail_json(msg="unit(s) not found on this host: %s; check the unit names (LoadState=not-found)"
                             % ", ".join(missing))
    masked = [u for u in names if before[u]["masked_by"]]
    if state in ("started", "restarted") and masked:
        module.fail_json(msg="unit(s) %s are masked (by %s) while the host is contained; unmask them first"
                             " (state: unmasked) - starting a contained bot must be a decision"
                             % (", ".join(masked), ", ".join(sorted(set(before[u]["masked_by"] for u in masked)))))

    todo = plan(state, names, before)
    ctl.t0 = time.monotonic()
    after = dict(before)
    if module.check_mode:
        for unit, step in todo:
            after[unit] = predict(after[unit], step)
            ctl.actions.append("would have %s %s" % (PAST[step], unit))
    else:
        steps = dict((step, [u for u, s in todo if s == step]) for step in PAST)
        if steps["unmask"]:
            ctl.unmask(steps["unmask"], before)
        for step in ("stop", "start", "restart"):
            if steps[step]:
                ctl.act(step, steps[step], before, timeout)
        if steps["mask"]:
            # Stopped first, with the unit's own ExecStop=/KillSignal=/TimeoutStopSec= (a masked
            # unit loses them); then masked. Anything that started it in between is stopped again.
            ctl.mask(steps["mask"])
            back = [u for u in names if ctl.show(u).get("ActiveState") not in STOPPED]
            if back:
                ctl.act("stop", back, dict((u, ctl.show(u)) for u in back), timeout)
        for unit in names:
            after[unit] = ctl.show(unit)

    report = {}
    for unit in names:
        unit_steps = [s for u, s in todo if u == unit]
        report[unit] = dict(
            action="+".join(PAST[s] for s in unit_steps) or "none",
            changed=bool(unit_steps),
            elapsed_s=round(ctl.reached_at.get(unit, 0.0), 2),
            before=dict((k, before[unit].get(k)) for k in REPORTED + ("masked_by",)),
            after=dict((k, after[unit].get(k)) for k in REPORTED + ("masked_by",)),
        )
    result = dict(changed=bool(todo), check_mode=module.check_mode, units=report, actions=ctl.actions,
                  mask_dir=MASK_DIR)
    if module._diff:
        def text(states):
            return "".join("%s: %s (LoadState=%s, UnitFileState=%s)\n" % (
                unit, ctl.brief(states[unit]), states[unit].get("LoadState"), states[unit].get("UnitFileState"))
                for unit in names)
        result["diff"] = dict(before=text(before), after=text(after), before_header="units", after_header="units")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
