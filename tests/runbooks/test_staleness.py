"""SOP 8, staleness, on the drill fleet: the double's ticker stalled for a few seconds (stale, not
critical) and for more than 30 s (critical: the kill switch); judged by the hosts' trading mode
over time, the bot's own restart lines, the double's book and request log, and the records."""

from __future__ import annotations

import json
import time

import pytest

from support.drill import log_lines_since, sh, wait_for
from support.runbook import assert_no_secrets

pytestmark = pytest.mark.timeout(900)

PRODUCTS = ["BIP-20DEC30-CDE", "ETP-20DEC30-CDE"]
CREATE = "/api/v3/brokerage/orders"
WRITES = (CREATE, "/api/v3/brokerage/orders/batch_cancel", "/api/v3/brokerage/orders/close_position")
FAST = {"staleness_probe_listen": 2}


def data_age(host: str) -> float:
    """The oldest product's data age on the host, as the bot's order service computes it."""
    body, now = sh(host, "cat /var/lib/trading-bot/market.json; echo; date +%s.%N").stdout.strip().rsplit("\n", 1)
    products = json.loads(body)["products"].values()
    return max(float(now) - p["last_update_epoch"] if p["last_update_epoch"] else float("inf") for p in products)


def stall_until_older_than(drill, seconds: float, stall_for: float) -> None:
    """Stall the bots' tickers at the double (heartbeats go on: the bots stay connected) until every host's data is older than ``seconds``."""
    wait_for(lambda: all(data_age(h) < 3 for h in drill.hosts), 30, 0.5, "fresh data before the stall")
    drill.control.ws_stall(stall_for, PRODUCTS)
    time.sleep(seconds)
    wait_for(lambda: all(data_age(h) > seconds for h in drill.hosts), 15, 0.5, "data older than %s s" % seconds)


def mode_changes(host: str, since: float) -> list:
    return [(t, line.split("mode ", 1)[1]) for t, line in log_lines_since(host, "orders.log", since)
            if " INFO mode " in line and "start" not in line.split("mode ", 1)[1]]


def restarts(host: str, since: float) -> list:
    return [t for t, line in log_lines_since(host, "websocket.log", since) if " INFO start trading-bot-perpetuals" in line]


def records(drill) -> dict:
    out = {}
    for path in sorted(drill.records_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
        record = json.loads(path.read_text())
        out[record["incident_id"]] = record
    return out


def steps(record) -> str:
    return "\n".join(e["step"] for e in record["timeline"])


def controller_writes(drill, since: float) -> list:
    return [e for e in drill.control.requests(method="POST", since=since)
            if e["path"] in WRITES and e["client_ip"] not in drill.ips.values()]


def test_fresh_data_changes_nothing_through_ansible_runner(drill):
    """Under 5 s (the AWX path): no mode change, no restart, no alert, a record that says fresh."""
    drill.control.clear_alerts()
    since = time.time()
    runner = drill.runner("staleness.yml", FAST)
    assert runner.status == "successful", runner.stdout.read()[-4000:]
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL" and mode_changes(host, since) == []
        assert restarts(host, since) == []
    record = [r for r in records(drill).values() if r["type"] == "staleness"][-1]
    assert record["status"] == "Resolved" and record["final_state"]["stale_hosts"] == []
    assert all(age < 5 for age in record["final_state"]["data_age_s"].values())
    assert "Data fresh on every host" in steps(record)
    assert not [a for a in drill.control.alerts() if "Staleness" in a["payload"]["text"]]


def test_stale_data_blocks_entries_forces_a_reconnect_and_resumes(drill):
    """Over 5 s, under 30 s: REDUCE_ONLY, trading-bot-perpetuals restarted, no kill switch; after
    the stall, fresh data for the clean period and NORMAL again."""
    drill.control.clear_alerts()
    stall_until_older_than(drill, 6, 22)

    # The controller's probe listens longer than 5 s (its default 8 s, while the hosts are read) so it can judge staleness.
    result = drill.playbook("staleness.yml", {"staleness_clean_period": 3, "staleness_reconnect_timeout": 60})

    assert result.returncode == 0, result.output[-5000:]
    all_records = records(drill)
    assert [r["type"] for r in all_records.values()] == ["staleness"], "no kill switch below 30 s"
    record = result.record("staleness")
    ages = record["final_state"]["data_age_s"]
    assert all(5 < ages[h] < 30 for h in drill.hosts), ages
    assert sorted(record["final_state"]["stale_hosts"]) == sorted(drill.hosts) and record["final_state"]["critical_hosts"] == []
    for host in drill.hosts:
        changes = mode_changes(host, result.started)
        assert [c for _, c in changes] == ["NORMAL -> REDUCE_ONLY", "REDUCE_ONLY -> NORMAL"], (host, changes)
        paused, resumed = changes[0][0], changes[1][0]
        # The reconnect was forced while entries were blocked, and no order went out until the resume.
        assert [t for t in restarts(host, result.started) if paused - 1 <= t <= resumed], host
        creates = [e for e in drill.control.requests(method="POST", path="/orders", client_ip=drill.ips[host], since=paused + 1.0)
                   if e["path"] == CREATE and e["time"] < resumed]
        assert creates == [], host
        assert drill.mode(host) == "NORMAL" and drill.unit(host, "trading-bot-orders") == "active"
        assert data_age(host) < 5
    assert record["status"] == "Resolved" and sorted(record["final_state"]["resumed_hosts"]) == sorted(drill.hosts)
    assert "Controller probe (8 s): feed STALE at the exchange" in steps(record)
    alerts = [a["payload"]["incident"] for a in drill.control.alerts() if a["payload"]["incident"]["type"] == "Staleness Event"]
    assert [(a["severity"], a["status"]) for a in alerts] == [("P2", "Mitigating"), ("P2", "Resolved")]
    assert all("\n" not in e["step"] for e in record["timeline"])
    assert_no_secrets(result.output, drill)


def test_critical_staleness_rehearses_then_runs_the_kill_switch(drill):
    """Over 30 s: --check rehearses the kill switch and changes nothing; the real run activates the
    kill switch exactly as SOP 7's runbook does (its own P1 record), after blocking entries and
    forcing the reconnect."""
    drill.seed_book(orders_per_host=10)
    stall_until_older_than(drill, 31, 180)
    since = time.time()
    before = len(drill.working_orders())
    pids = {h: sh(h, "systemctl show -p MainPID --value trading-bot-perpetuals").stdout.strip() for h in drill.hosts}

    rehearsal = drill.playbook("staleness.yml", FAST, check=True)

    assert rehearsal.returncode == 0, rehearsal.output[-5000:]
    assert controller_writes(drill, since) == []
    assert len(drill.working_orders()) >= before
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL" and drill.unit(host, "trading-bot-orders") == "active"
        assert sh(host, "systemctl show -p MainPID --value trading-bot-perpetuals").stdout.strip() == pids[host]
    rehearsed = {r["type"]: r for r in records(drill).values()}
    assert rehearsed["staleness"]["rehearsal"] is True and rehearsed["kill_switch"]["rehearsal"] is True
    assert "would be cancelled" in steps(rehearsed["kill_switch"])

    result = drill.playbook("staleness.yml", FAST)

    assert result.returncode == 0, result.output[-5000:]
    stale = [r for r in records(drill).values() if r["type"] == "staleness" and not r["rehearsal"]][-1]
    kill = [r for r in records(drill).values() if r["type"] == "kill_switch" and not r["rehearsal"]][-1]
    assert "(staleness record %s)" % stale["incident_id"] in kill["summary"]
    assert stale["status"] == "Mitigating" and stale["final_state"]["kill_switch"] == "activated"
    assert "Kill switch finished: record %s" % kill["incident_id"] in steps(stale)
    assert sorted(stale["final_state"]["critical_hosts"]) == sorted(drill.hosts)
    assert all(age > 30 for age in stale["final_state"]["data_age_s"].values())
    assert kill["severity"] == "P1" and "Staleness (SOP 8)" in kill["summary"]
    assert kill["final_state"]["exchange"]["open_orders"] == 0
    # The kill switch's outcome, on the double and the hosts: no working order, order placement
    # stopped, REDUCE_ONLY; entries had been blocked and the reconnect forced first.
    assert drill.working_orders() == []
    for host in drill.hosts:
        assert drill.mode(host) == "REDUCE_ONLY" and drill.unit(host, "trading-bot-orders") == "inactive"
        assert restarts(host, result.started)
    time.sleep(2)
    for host in drill.hosts:
        assert drill.order_posts_from(host, result.finished) == []
    assert any("Kill Switch" in a["payload"]["text"] for a in drill.control.alerts())
    assert_no_secrets(result.output + json.dumps(stale) + json.dumps(kill), drill)


def test_whole_fleet_unreachable_closes_the_record_and_fails_naming_every_host(drill):
    result = drill.playbook_with_fleet_unreachable("staleness.yml", FAST)
    assert result.returncode != 0, result.output[-4000:]
    failure = result.output.split("STALENESS NOT RESOLVED", 1)[1].split("PLAY RECAP")[0]
    assert "not read (unreachable or failed)" in failure and all(h in failure for h in drill.hosts)
    record = result.record("staleness")
    assert record["status"] == "Failed" and "closed_at" in record
    assert all(record["final_state"]["hosts"][h]["reachable"] is False for h in drill.hosts)
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL"
