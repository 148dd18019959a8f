"""Runbooks on the drill fleet: run a playbook the way operators (ansible-playbook) and AWX
(ansible-runner) do, observe the double and the hosts, and put both back to "bots trading
normally on the primary key" between tests (fast: podman exec, because this is test plumbing,
not the product).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from support.drill import BIN, INVENTORY, ROOT, run, sh, wait_for

SLOTS = ("primary", "backup", "standby")


@dataclass
class RunbookResult:
    returncode: int
    output: str
    started: float
    finished: float
    records_dir: Path
    extra: dict = field(default_factory=dict)

    def record(self, incident_type: Optional[str] = None) -> dict:
        """The newest JSON record (of a type) this run wrote."""
        paths = sorted(self.records_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        records = [r for r in (json.loads(p.read_text()) for p in paths) if isinstance(r, dict) and "timeline" in r]
        if incident_type:
            records = [r for r in records if r["type"] == incident_type]
        assert records, "no incident record in %s:\n%s" % (self.records_dir, self.output[-3000:])
        return records[-1]


class Drill:
    """The drill environment as a runbook sees it."""

    def __init__(self, double, fleet, tmp_path: Path) -> None:
        self.double = double
        self.control = double.control
        self.fleet = fleet
        self.hosts = fleet.hosts
        self.ips = fleet.ips
        self.vars = json.loads(Path(fleet.vars_file).read_text())
        self.keys = self.vars["fleet_api_keys"]
        self.tmp_path = tmp_path
        self.records_dir = tmp_path / "records"

    def env(self, extra: Optional[dict] = None) -> dict:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   TRADEOPS_RECORDS_DIR=str(self.records_dir),
                   PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
        env.update(extra or {})
        return env

    def playbook(self, name: str, extra_vars: Optional[dict] = None, check: bool = False, verbosity: int = 0,
                 timeout: int = 600, args: tuple = ()) -> RunbookResult:
        command = [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(ROOT / "playbooks" / name),
                   "-e", "@%s" % self.fleet.vars_file]
        if extra_vars:
            vars_file = self.tmp_path / ("extra-%s.json" % time.monotonic_ns())
            vars_file.write_text(json.dumps(extra_vars))
            command += ["-e", "@%s" % vars_file]
        if check:
            command.append("--check")
        if verbosity:
            command.append("-" + "v" * verbosity)
        command += list(args)
        started = time.time()
        done = subprocess.run(command, cwd=str(ROOT), env=self.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        return RunbookResult(done.returncode, done.stdout + done.stderr, started, time.time(), self.records_dir)

    def playbook_with_fleet_unreachable(self, name: str, extra_vars: Optional[dict] = None) -> RunbookResult:
        """A partition between the controller and the fleet: every host paused for the run, then back."""
        run(["podman", "pause"] + self.hosts)
        try:
            return self.playbook(name, extra_vars)
        finally:
            run(["podman", "unpause"] + self.hosts, check=False)

    def runner(self, name: str, extra_vars: Optional[dict] = None, timeout: int = 600):
        """The same playbook through ansible-runner, the way AWX runs it."""
        import ansible_runner

        private = self.tmp_path / "runner"
        (private / "env").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in self.env().items() if k.startswith(("ANSIBLE_", "TRADEOPS_", "PATH"))}
        (private / "env" / "envvars").write_text(yaml.safe_dump(env))
        variables = dict(self.vars)
        variables.update(extra_vars or {})
        return ansible_runner.run(private_data_dir=str(private), playbook=str(ROOT / "playbooks" / name),
                                  inventory=str(INVENTORY), extravars=variables, project_dir=str(ROOT),
                                  quiet=True, timeout=timeout)

    # ------------------------------------------------------------------ observing
    def working_orders(self) -> list:
        return self.control.list_orders(status=["OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED"])

    def positions(self) -> list:
        """Open positions in every portfolio."""
        return [p for portfolio in self.control.state()["portfolios"] for p in portfolio["positions"]]

    def order_posts_from(self, host: str, since: float) -> list:
        entries = self.control.requests(method="POST", path="/orders", client_ip=self.ips[host], since=since)
        return [e for e in entries if e["path"] in ("/api/v3/brokerage/orders", "/api/v3/brokerage/orders/close_position")]

    def mode(self, host: str) -> str:
        return sh(host, "cat /var/lib/trading-bot/trading_mode").stdout.strip()

    def unit(self, host: str, unit: str) -> str:
        return sh(host, "systemctl is-active %s" % unit, check=False).stdout.strip()

    def key_slot(self, host: str) -> str:
        return sh(host, "sed -n 's/^COINBASE_KEY_SLOT=//p' /etc/trading-bot/bot.env").stdout.strip()

    def egress_blocked(self, host: str) -> bool:
        return sh(host, "iptables -w 10 -S TRADEOPS-EGRESS", check=False).returncode == 0

    def can_reach_double(self, host: str) -> bool:
        probe = "curl -sS -o /dev/null -m 3 https://api.coinbase.com:%d/api/v3/brokerage/time" % self.double.port
        return sh(host, probe, check=False, timeout=20).returncode == 0

    def keys_used_by(self, host: str, since: float) -> set:
        entries = self.control.requests(client_ip=self.ips[host], since=since)
        return {e["key"] for e in entries if e.get("key") and e.get("status") == 200}

    # ------------------------------------------------------------------ arranging
    def reset_host(self, host: str) -> None:
        """NORMAL, units unmasked and running, no egress block, primary key."""
        primary = self.keys["primary"]["name"]
        sh(host, " ; ".join([
            # every jump to the chain, whatever its match options (egress_block adds a comment)
            "iptables -w 10 -S OUTPUT | grep -- '-j TRADEOPS-EGRESS' | sed 's/^-A /-D /'"
            " | while read -r rule; do eval iptables -w 10 \"$rule\"; done;"
            " iptables -w 10 -F TRADEOPS-EGRESS 2>/dev/null; iptables -w 10 -X TRADEOPS-EGRESS 2>/dev/null",
            "rm -rf /etc/systemd/system/trading-bot-orders.service.d/50-tradeops-scale-down.conf",
            # bot_units masks with a /dev/null link in /etc/systemd/system.control (see its docs)
            "rm -f /etc/systemd/system.control/trading-bot-perpetuals.service /etc/systemd/system.control/trading-bot-orders.service",
            "systemctl unmask trading-bot-perpetuals trading-bot-orders >/dev/null 2>&1",
            # every test starts with empty bot logs (another test's errors must not count in this one's window)
            "rm -f /opt/trading-bot/logs/*.log.[0-9]*; for f in /opt/trading-bot/logs/*.log; do : > \"$f\"; done",
            "printf 'NORMAL\\n' > /var/lib/trading-bot/trading_mode",
            "sed -i -e 's|^COINBASE_KEY_SLOT=.*|COINBASE_KEY_SLOT=primary|'"
            " -e 's|^COINBASE_CDP_API_KEY=.*|COINBASE_CDP_API_KEY=%s|'"
            " -e 's|^COINBASE_CDP_PRIVATE_KEY_PATH=.*|COINBASE_CDP_PRIVATE_KEY_PATH=/etc/trading-bot/keys/primary.pem|'"
            " /etc/trading-bot/bot.env" % primary,
            "chmod 0400 /etc/trading-bot/keys/*.pem",
            "systemctl daemon-reload",
            "systemctl restart trading-bot-perpetuals trading-bot-orders",
        ]), timeout=90)

    def reset(self) -> None:
        run(["podman", "unpause"] + self.hosts, check=False)
        self.control.reset(keep_keys=True)
        for slot in SLOTS:
            self.control.unrevoke_key(self.keys[slot]["name"])
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            list(pool.map(self.reset_host, self.hosts))
        since = time.time()
        # Trading again: every host has placed an order on the primary key.
        wait_for(lambda: all(self.order_posts_from(h, since) for h in self.hosts), 60, what="every bot trading again")

    def seed_book(self, orders_per_host: int = 100) -> dict:
        """Hundreds of open orders in the bots' names (client ids name the host) and a position per product."""
        key = self.keys["primary"]["name"]
        seeded = {}
        for host in self.hosts:
            seeded[host] = self.control.seed_orders(orders_per_host, "BIP-20DEC30-CDE", key=key,
                                                    client_order_id_prefix="%s-seed-" % host)["order_ids"]
        self.control.set_position("BIP-20DEC30-CDE", "LONG", "4", "95000", key=key)
        self.control.set_position("ETP-20DEC30-CDE", "SHORT", "3", "3500", key=key)
        return seeded


def milestone_times(record: dict) -> dict:
    return {name: data["elapsed_s"] for name, data in record.get("milestones", {}).items()}


def assert_no_secrets(text: str, drill: Drill) -> None:
    """No key material and no full token in a runbook's output or record."""
    for slot in SLOTS:
        body = Path(drill.keys[slot]["private_key_file"]).read_text().splitlines()[1]
        assert body[:24] not in text, "private key material of %s in the output" % slot
    import re

    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", text), "a JWT in the output"


def wait_quiet(seconds: float = 3.0) -> float:
    time.sleep(seconds)
    return time.time()
