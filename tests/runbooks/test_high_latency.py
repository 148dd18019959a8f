"""SOP 5, high latency, on the drill fleet: the double's /time answers slower than 500 ms (or not);
judged by the drop-in on the hosts, the bots' own start lines, and above all the order rate the
double sees from a busy bot before and after the scale-down."""

from __future__ import annotations

import json
import threading
import time

import pytest

from support.drill import log_lines_since, sh, wait_for
from support.runbook import assert_no_secrets

pytestmark = pytest.mark.timeout(900)

TIME_PATH = "/api/v3/brokerage/time"
ORDER_PATHS = ("/api/v3/brokerage/orders", "/api/v3/brokerage/orders/batch_cancel", "/api/v3/brokerage/orders/close_position")
DROPIN_DIR = "/etc/systemd/system/trading-bot-orders.service.d"
DROPIN = DROPIN_DIR + "/50-tradeops-scale-down.conf"
# Test plumbing: a busier strategy on one host, so the SOP's bound of 5 requests/s is visible.
DEMAND = DROPIN_DIR + "/40-test-demand.conf"
FAST = {"high_latency_samples": 20}


def has_dropin(host: str) -> bool:
    return sh(host, "test -e %s" % DROPIN, check=False).returncode == 0


def unit_env(host: str) -> dict:
    """What systemd gives trading-bot-orders (a later assignment overrides an earlier one)."""
    out = sh(host, "systemctl show -p Environment --value trading-bot-orders").stdout.split()
    return dict(item.split("=", 1) for item in out if "=" in item)


def main_pid(host: str) -> str:
    return sh(host, "systemctl show -p MainPID --value trading-bot-orders").stdout.strip()


def order_requests(drill, host: str, start: float, end: float) -> list:
    entries = drill.control.requests(method="POST", path="/orders", client_ip=drill.ips[host], since=start)
    return sorted(e["time"] for e in entries if e["path"] in ORDER_PATHS and e["time"] < end)


def busiest_second(times: list) -> int:
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


def started_with(host: str, since: float, rate: str) -> list:
    """The order service's start lines since ``since`` that name its MAX_ORDERS_PER_SECOND."""
    return [t for t, line in log_lines_since(host, "orders.log", since)
            if "start trading-bot-orders" in line and "max_orders_per_second=%s " % rate in line]


def latency_alerts(drill) -> list:
    return [a["payload"]["incident"] for a in drill.control.alerts() if a["payload"].get("incident", {}).get("type") == "High Latency"]


def test_latency_under_the_threshold_changes_nothing_through_ansible_runner(drill):
    """p95 under 500 ms (the AWX path): measured and recorded, no host touched."""
    drill.control.clear_alerts()
    drill.control.add_latency(ms=350, path=TIME_PATH)
    pids = {h: main_pid(h) for h in drill.hosts}

    runner = drill.runner("high_latency.yml", FAST)

    assert runner.status == "successful", runner.stdout.read()[-4000:]
    for host in drill.hosts:
        assert not has_dropin(host) and main_pid(host) == pids[host]
    newest = sorted(drill.records_dir.glob("high_latency-*.json"), key=lambda p: p.stat().st_mtime)[-1]
    record = json.loads(newest.read_text())
    assert record["status"] == "Resolved"
    assert 350 <= record["final_state"]["latency_ms_first"]["p95"] < 500
    assert record["final_state"]["scaled_down"] is False and record["final_state"]["hosts_changed"] == []
    assert latency_alerts(drill) == []


def test_high_latency_rehearses_scales_down_monitors_and_restores(drill):
    """p95 over 500 ms: --check changes nothing; the real run installs the drop-in, restarts the
    order services, and the busy bot's order rate falls to the SOP's 5/s; the monitor sees the
    latency recover; restore removes exactly the drop-in."""
    busy = drill.hosts[0]
    drill.control.clear_alerts()
    sh(busy, "mkdir -p %s && printf '[Service]\\nEnvironment=QUOTES_PER_CYCLE=9 MAX_OPEN_ORDERS=60\\n' > %s"
             " && systemctl daemon-reload && systemctl restart trading-bot-orders" % (DROPIN_DIR, DEMAND))
    try:
        drill.control.add_latency(ms=700, path=TIME_PATH)
        time.sleep(3)
        pids = {h: main_pid(h) for h in drill.hosts}

        rehearsal = drill.playbook("high_latency.yml", FAST, check=True)

        assert rehearsal.returncode == 0, rehearsal.output[-4000:]
        for host in drill.hosts:
            assert not has_dropin(host) and main_pid(host) == pids[host]
        record = rehearsal.record("high_latency")
        assert record["rehearsal"] is True and record["final_state"]["scaled_down"] is False
        assert "[check mode: would]" in "\n".join(e["step"] for e in record["timeline"])
        # The busy bot before the scale-down, while the rehearsal ran: well over 5 order requests/s.
        before = order_requests(drill, busy, rehearsal.started + 2, rehearsal.finished)
        before_rate = len(before) / (rehearsal.finished - rehearsal.started - 2)

        # Latency recovers once the fleet is scaled down (the monitor must see it come back).
        def recover():
            wait_for(lambda: all(has_dropin(h) for h in drill.hosts), 300, 1.0, "the drop-in everywhere")
            drill.control.clear_faults()

        watcher = threading.Thread(target=recover, daemon=True)
        watcher.start()
        result = drill.playbook("high_latency.yml", dict(FAST, high_latency_monitor_samples=10, high_latency_monitor_timeout=180))
        watcher.join(5)

        assert result.returncode == 0, result.output[-5000:]
        for host in drill.hosts:
            dropin = sh(host, "cat %s" % DROPIN).stdout
            assert "Environment=MAX_ORDERS_PER_SECOND=5\n" in dropin and "Environment=BATCH_SIZE=10\n" in dropin
            env = unit_env(host)
            assert (env["MAX_ORDERS_PER_SECOND"], env["BATCH_SIZE"]) == ("5", "10")
            assert started_with(host, result.started, "5.0"), host  # the running bot restarted with them
        # The proof that matters: the double sees the busy bot at the SOP's rate now.
        restarted = started_with(busy, result.started, "5.0")[-1]
        time.sleep(max(0.0, restarted + 13 - time.time()))
        after = order_requests(drill, busy, restarted + 3, restarted + 13)
        assert before_rate >= 7, "the bot was not busy enough to show the bound (%.1f/s)" % before_rate
        assert 3 <= len(after) <= 5 * 10 + 1, "%d order requests in 10 s after the scale-down (was %.1f/s)" % (len(after), before_rate)
        assert busiest_second(after) <= 6, after
        record = result.record("high_latency")
        state = record["final_state"]
        assert record["status"] == "Resolved" and "latency_normal" in record["milestones"]
        assert state["latency_ms_first"]["p95"] > 500 and state["latency_ms_last"]["p95"] < 500
        assert state["scaled_down"] is True and sorted(state["hosts_changed"]) == sorted(drill.hosts)
        assert [(m["mitigation"], m["automated"]) for m in state["mitigations"]] == [
            ("Reduce order frequency", True), ("Batch operations", True), ("Increase cache TTL", False),
            ("Disable non-critical features", False), ("Switch to closer region if available", False)]
        assert any("high_latency_action=restore" in item for item in record["checklist"])
        assert [(a["severity"], a["status"]) for a in latency_alerts(drill)] == [("P3", "Mitigating"), ("P3", "Resolved")]
        assert all("\n" not in e["step"] for e in record["timeline"])

        restore = drill.playbook("high_latency.yml", dict(FAST, high_latency_action="restore"))

        assert restore.returncode == 0, restore.output[-4000:]
        for host in drill.hosts:
            assert not has_dropin(host)
            assert unit_env(host)["MAX_ORDERS_PER_SECOND"] == "20"
            assert started_with(host, restore.started, "20.0"), host
        assert sh(busy, "test -e %s" % DEMAND, check=False).returncode == 0, "restore removed another drop-in"
        assert restore.record("high_latency")["final_state"]["restored"] is True
        assert_no_secrets(result.output + restore.output + json.dumps(record), drill)
    finally:
        drill.control.clear_faults()
        sh(busy, "rm -f %s && systemctl daemon-reload && systemctl restart trading-bot-orders" % DEMAND)
