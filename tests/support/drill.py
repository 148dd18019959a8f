"""The drill environment for tests: a real exchange double on 0.0.0.0, the drill fleet, provisioning.

A pytest plugin (registered by the repository's root conftest.py), so that the fleet tests and
the runbook tests share one fleet per session: bringing hosts up and provisioning them is the
expensive part. The fixtures are session-scoped and lazy: suites that do not ask for them never
start a fleet. `FLEET_KEEP=1` leaves the fleet running after the tests (to look around); by
default the session removes the containers it used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "fleet" / "bot", ROOT / "build" / "collections", ROOT / "fleet"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# TRADEOPS_FLEET_PREFIX lets two test sessions on one machine each have a fleet of their own.
PREFIX = os.environ.get("TRADEOPS_FLEET_PREFIX", "drill-bot")
HOSTS = ["%s-%d" % (PREFIX, i) for i in (1, 2, 3)]
WORK = ROOT / "build" / ("fleet-tests" if PREFIX == "drill-bot" else "fleet-tests-" + PREFIX)
INVENTORY = WORK / "inventory"
BIN = Path(sys.executable).parent


def run(cmd, check=True, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (cmd, result.returncode, result.stdout[-3000:], result.stderr[-3000:]))
    return result


def sh(host: str, script: str, check=True, timeout=60) -> subprocess.CompletedProcess:
    """A root shell command on a fleet host."""
    return run(["podman", "exec", host, "bash", "-c", script], check=check, timeout=timeout)


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


_LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def log_lines_since(host: str, log: str, since: float) -> list:
    """(epoch, line) of a bot log's lines written at or after ``since`` (its lines start with UTC time)."""
    from datetime import datetime, timezone

    text = sh(host, "cat /opt/trading-bot/logs/%s" % log).stdout
    lines = []
    for line in text.splitlines():
        m = _LOG_TS.match(line)
        if m:
            t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
            if t >= since:
                lines.append((t, line))
    return lines


@dataclass
class Double:
    url: str
    port: int
    ca_path: str
    control: object
    gateway: str


@pytest.fixture(scope="session")
def drill_work_dir() -> Path:
    """build/fleet-tests, fresh each session (not pytest's shared /tmp, which other runs prune)."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    return WORK


@pytest.fixture(scope="session")
def drill_double(drill_work_dir) -> Double:
    """The exchange double on 0.0.0.0 (the fleet reaches it at the bridge gateway)."""
    from exchange_double.testing import running_double

    gateway = run(["podman", "network", "inspect", "podman", "--format",
                   "{{range .Subnets}}{{.Gateway}}{{end}}"], check=False).stdout.strip() or "10.88.0.1"
    with running_double(WORK / "double", host="0.0.0.0") as handle:
        yield Double(handle.url, handle.port, str(handle.ca_path), handle.control, gateway)


@dataclass
class Fleet:
    hosts: list
    ips: dict
    vars_file: Path
    provision_seconds: float
    up_seconds: float


def write_inventory() -> Path:
    """inventories/drill with this session's host names (its group_vars, so the same settings)."""
    INVENTORY.mkdir(parents=True, exist_ok=True)
    group_vars = INVENTORY / "group_vars"
    if not group_vars.exists():
        group_vars.symlink_to(ROOT / "inventories" / "drill" / "group_vars")
    hosts = {"all": {"children": {
        "trading_bots": {"hosts": {h: None for h in HOSTS}},
        "controller": {"hosts": {"localhost": {"ansible_connection": "local",
                                               "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}},
    }}}
    (INVENTORY / "hosts.yml").write_text(json.dumps(hosts, indent=2) + "\n")
    return INVENTORY


def provision(vars_file: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    return run([str(BIN / "ansible-playbook"), "-i", str(write_inventory()),
                str(ROOT / "fleet" / "provision.yml"), "-e", "@%s" % vars_file, *extra],
               timeout=600, env=env, cwd=str(ROOT))


@pytest.fixture(scope="session")
def drill_fleet(drill_double, drill_work_dir) -> Fleet:
    """Three drill hosts, provisioned against this session's double, bots running in NORMAL."""
    from drill_vars import make_fleet_vars

    image = run(["bash", str(ROOT / "fleet" / "image" / "build.sh"), "--print-tag"]).stdout.strip()
    if run(["podman", "image", "exists", image], check=False).returncode != 0:
        pytest.fail("the fleet image %s does not exist: run `make fleet-image` first" % image)
    started = time.monotonic()
    run(["bash", str(ROOT / "fleet" / "fleet.sh"), "up", str(len(HOSTS))], env=dict(os.environ, FLEET_IMAGE=image, FLEET_PREFIX=PREFIX))
    up_seconds = time.monotonic() - started
    out = drill_work_dir / "drill"
    vars_file = make_fleet_vars(drill_double.url, drill_double.port, drill_double.ca_path, out,
                                extra={"fleet_reset_trading_mode": True})
    started = time.monotonic()
    provision(vars_file)
    provision_seconds = time.monotonic() - started
    ips = {h: run(["podman", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", h]).stdout.strip() for h in HOSTS}
    print("\nfleet: up %.1fs, provisioned %.1fs, ips %s" % (up_seconds, provision_seconds, ips))
    try:
        yield Fleet(HOSTS, ips, vars_file, provision_seconds, up_seconds)
    finally:
        if not os.environ.get("FLEET_KEEP"):
            run(["bash", str(ROOT / "fleet" / "fleet.sh"), "down"], check=False, env=dict(os.environ, FLEET_PREFIX=PREFIX))
            shutil.rmtree(out / "keys", ignore_errors=True)  # throwaway, but no reason to keep them


def set_mode(host: str, mode: str) -> None:
    sh(host, "printf '%s\\n' > /var/lib/trading-bot/trading_mode" % mode)


@pytest.fixture
def normal_after(drill_fleet):
    """Whatever a test does to the modes, every host is NORMAL again afterwards."""
    yield
    for host in drill_fleet.hosts:
        set_mode(host, "NORMAL")
