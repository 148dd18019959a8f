"""bot_units: parallel stop/start/restart with a deadline and a failure that names the unit, a mask
that works for units in /etc/systemd/system (a /dev/null link in system.control), honest check mode.
systemctl is a small in-memory fake; time is fake too."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from ansible.module_utils import basic

from support.modules import run_module

MODULE = "ansible_collections.tradeops.incident_response.plugins.modules.bot_units"
ORDERS = "trading-bot-orders.service"
PERPS = "trading-bot-perpetuals.service"


class FakeSystemd:
    """Units that reach a new state after `settle` polls (never, for a stubborn one)."""

    def __init__(self, mask_dir, **units):
        self.mask_dir = mask_dir
        self.units = {name: dict(ActiveState=state, SubState="running" if state == "active" else "dead",
                                 LoadState="loaded", UnitFileState="enabled", MainPID="100", InvocationID="inv-1",
                                 Result="success", TimeoutStopUSec="1min 30s")
                      for name, state in units.items()}
        self.pending = {}  # unit -> [polls left, target]
        self.stubborn = set()
        self.on_reload = None  # a hook: something that happens at a daemon-reload
        self.calls = []

    def __call__(self, module, cmd, **_kwargs):
        args = cmd[1:]
        self.calls.append(args)
        verb = args[0]
        if verb == "show":
            unit = args[-1]
            if unit not in self.units:
                return 0, "Id=%s\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n" % unit, ""
            self.tick(unit)
            props = dict(self.units[unit])
            if os.path.islink(os.path.join(self.mask_dir, unit)):
                props.update(LoadState="masked", UnitFileState="masked")
            return 0, "".join("%s=%s\n" % kv for kv in props.items()), ""
        if verb == "daemon-reload":
            if self.on_reload:
                self.on_reload()
            return 0, "", ""
        if verb in ("stop", "start", "restart"):
            for unit in args[2:]:
                if verb != "stop" and os.path.islink(os.path.join(self.mask_dir, unit)):
                    return 1, "", "Failed to %s %s: Unit %s is masked." % (verb, unit, unit)
                if verb == "stop":
                    self.units[unit].update(ActiveState="deactivating", SubState="stop-sigterm")
                    self.pending[unit] = [2, "stop"]
                else:
                    self.pending[unit] = [1, "start"]
            return 0, "", ""
        if verb == "unmask":
            return 0, "", ""
        raise AssertionError("unexpected systemctl call %r" % (args,))

    def tick(self, unit):
        if unit not in self.pending or unit in self.stubborn:
            return
        self.pending[unit][0] -= 1
        if self.pending[unit][0] <= 0:
            target = self.pending.pop(unit)[1]
            state = self.units[unit]
            if target == "stop":
                state.update(ActiveState="inactive", SubState="dead", MainPID="0")
            else:
                number = int(state["InvocationID"].split("-")[1]) + 1
                state.update(ActiveState="active", SubState="running", MainPID=str(100 + number),
                             InvocationID="inv-%d" % number)

    def changes(self):
        return [c for c in self.calls if c[0] != "show"]


@pytest.fixture
def systemd(tmp_path):
    return FakeSystemd(str(tmp_path / "system.control"), **{ORDERS: "active", PERPS: "active"})


def run(systemd, args, check_mode=False):
    clock = [0.0]

    def monotonic():
        return clock[0]

    def sleep(seconds):
        clock[0] += seconds

    def run_command(self, cmd, **kwargs):
        return systemd(self, cmd, **kwargs)

    with mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: "/bin/" + name), \
            mock.patch(MODULE + ".MASK_DIR", systemd.mask_dir), \
            mock.patch(MODULE + ".time.monotonic", monotonic), \
            mock.patch(MODULE + ".time.sleep", sleep):
        return run_module("bot_units", dict(args, _ansible_diff=True), check_mode=check_mode)


def test_kill_switch_stops_only_orders(systemd):
    result = run(systemd, {"units": ["trading-bot-orders"], "state": "stopped"})
    assert result["changed"] and list(result["units"]) == [ORDERS]
    assert result["units"][ORDERS]["before"]["ActiveState"] == "active"
    assert result["units"][ORDERS]["after"]["ActiveState"] == "inactive"
    assert systemd.units[PERPS]["ActiveState"] == "active"
    assert systemd.changes() == [["stop", "--no-block", ORDERS]]
    assert "trading-bot-orders.service: inactive/dead" in result["diff"]["after"]


def test_both_units_are_stopped_in_one_call_and_a_stopped_unit_is_left_alone(systemd):
    result = run(systemd, {"units": ["trading-bot-perpetuals", "trading-bot-orders"], "state": "stopped"})
    assert systemd.changes() == [["stop", "--no-block", PERPS, ORDERS]]
    again = run(systemd, {"units": ["trading-bot-perpetuals", "trading-bot-orders"], "state": "stopped"})
    assert result["changed"] and not again["changed"] and len(systemd.changes()) == 1


def test_a_unit_that_does_not_stop_in_time_is_named(systemd):
    systemd.stubborn.add(ORDERS)
    result = run(systemd, {"units": ["trading-bot-perpetuals", "trading-bot-orders"], "state": "stopped", "timeout": 5})
    assert result["failed"]
    assert result["msg"].startswith("unit trading-bot-orders.service did not stop within 5 s: "
                                    "ActiveState=deactivating SubState=stop-sigterm (was active/running)")
    assert "TimeoutStopSec (1min 30s)" in result["msg"]
    assert PERPS not in result["msg"] and result["units_now"][PERPS]["ActiveState"] == "inactive"


def test_mask_stops_then_links_dev_null_and_start_is_refused(systemd):
    result = run(systemd, {"units": [PERPS, ORDERS], "state": "masked"})
    link = os.path.join(systemd.mask_dir, ORDERS)
    assert os.readlink(link) == "/dev/null" and result["changed"]
    assert result["units"][ORDERS]["action"] == "stopped+masked" and result["units"][ORDERS]["after"]["masked_by"] == "tradeops"
    # stopped with the unit's own stop settings, then masked
    assert systemd.changes() == [["stop", "--no-block", PERPS, ORDERS], ["daemon-reload"]]
    assert not run(systemd, {"units": [PERPS, ORDERS], "state": "masked"})["changed"]
    refused = run(systemd, {"units": [ORDERS], "state": "started"})
    assert refused["failed"] and "masked (by tradeops)" in refused["msg"] and "unmask them first" in refused["msg"]


def test_unmask_removes_only_its_own_link_and_does_not_start(systemd):
    run(systemd, {"units": [ORDERS], "state": "masked"})
    other = os.path.join(systemd.mask_dir, "something-else.service")
    os.symlink("/dev/null", other)
    result = run(systemd, {"units": [ORDERS], "state": "unmasked"})
    assert result["changed"] and not os.path.lexists(os.path.join(systemd.mask_dir, ORDERS)) and os.path.islink(other)
    assert systemd.units[ORDERS]["ActiveState"] == "inactive"
    started = run(systemd, {"units": [ORDERS], "state": "started"})
    assert started["changed"] and started["units"][ORDERS]["after"]["ActiveState"] == "active"


def test_a_unit_started_again_before_the_mask_is_stopped_again(systemd):
    def timer_starts_it():
        systemd.on_reload = None
        systemd.units[ORDERS].update(ActiveState="active", SubState="running", MainPID="300")

    systemd.on_reload = timer_starts_it
    result = run(systemd, {"units": [ORDERS], "state": "masked"})
    assert [c[0] for c in systemd.changes()] == ["stop", "daemon-reload", "stop"]
    assert result["units"][ORDERS]["after"]["ActiveState"] == "inactive"


def test_restart_waits_for_a_new_invocation(systemd):
    result = run(systemd, {"units": [ORDERS], "state": "restarted"})
    assert result["units"][ORDERS]["before"]["MainPID"] == "100"
    assert result["units"][ORDERS]["after"]["MainPID"] == "102" and systemd.units[ORDERS]["InvocationID"] == "inv-2"


def test_check_mode_only_reads(systemd):
    result = run(systemd, {"units": [PERPS, ORDERS], "state": "masked"}, check_mode=True)
    assert result["changed"] and result["check_mode"] and systemd.changes() == []
    assert not os.path.exists(systemd.mask_dir)
    assert result["actions"] == ["would have stopped %s" % PERPS, "would have stopped %s" % ORDERS,
                                 "would have masked %s" % PERPS, "would have masked %s" % ORDERS]
    assert result["units"][ORDERS]["after"]["ActiveState"] == "inactive"


def test_status_changes_nothing(systemd):
    result = run(systemd, {"units": [PERPS, ORDERS], "state": "status"})
    assert not result["changed"] and systemd.changes() == []
    assert result["units"][PERPS]["after"]["SubState"] == "running"


def test_an_unknown_unit_is_named(systemd):
    result = run(systemd, {"units": [ORDERS, "trading-bot-typo"], "state": "stopped"})
    assert result["failed"] and "trading-bot-typo.service" in result["msg"] and systemd.changes() == []


@pytest.mark.parametrize("units", [[""], ["../etc/passwd"]])
def test_bad_unit_names_are_refused(systemd, units):
    assert run(systemd, {"units": units, "state": "stopped"})["failed"]
