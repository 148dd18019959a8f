"""SOP 2, WebSocket disconnections, on the drill fleet: real drops, refusals and a dead feed on
the double and the hosts; judged by the hosts' trading mode over time (the bot's orders.log), the
double's request log and alert sink, and the record."""

from __future__ import annotations

import json
import threading
import time

import pytest

from support.drill import log_lines_since, sh, wait_for
from support.runbook import assert_no_secrets

pytestmark = pytest.mark.timeout(900)

CREATE = "/api/v3/brokerage/orders"
WRITES = (CREATE, "/api/v3/brokerage/orders/batch_cancel", "/api/v3/brokerage/orders/close_position")
FAST = {"ws_disconnect_probe_listen": 2, "ws_disconnect_verify_listen": 2}


# ---------------------------------------------------------------- test plumbing
def fresh_logs(drill) -> float:
    """Start every host's websocket.log empty (a drill reset drops the feeds once), so the hour counts only this test."""
    for host in drill.hosts:
        # the rotated file too (the weekly checklist's rotation leaves one): it counts when recent
        sh(host, "rm -f /opt/trading-bot/logs/websocket.log.* && : > /opt/trading-bot/logs/websocket.log")
    return time.time()


def connected(drill) -> set:
    """Hosts with a market-data connection to the double now."""
    ips = {ip: host for host, ip in drill.ips.items()}
    return {ips[c["client_ip"]] for c in drill.control.ws_connections() if c["endpoint"] == "market" and c["client_ip"] in ips}


def all_connected(drill) -> bool:
    return connected(drill) == set(drill.hosts)


def drop_feeds(drill, times: int) -> None:
    """``times`` real disconnects on every host: drop every socket, wait until every bot is back, again."""
    for _ in range(times):
        wait_for(lambda: all_connected(drill), 30, 0.2, "every bot connected to the market feed")
        drill.control.ws_drop(mode="close", code=1011)
        wait_for(lambda: not all_connected(drill), 10, 0.05, "the drop")


def mode_changes(drill, host: str, since: float) -> list:
    """(epoch, 'A -> B') of the order service's mode changes (it logs each one before its next order)."""
    return [(t, line.split("mode ", 1)[1]) for t, line in log_lines_since(host, "orders.log", since)
            if " INFO mode " in line and "start" not in line.split("mode ", 1)[1]]


def creates_between(drill, host: str, start: float, end: float) -> list:
    entries = drill.control.requests(method="POST", path="/orders", client_ip=drill.ips[host], since=start)
    return [e for e in entries if e["path"] == CREATE and e["time"] < end]


def controller_writes(drill, since: float) -> list:
    return [e for e in drill.control.requests(method="POST", since=since)
            if e["path"] in WRITES and e["client_ip"] not in drill.ips.values()]


def ws_alerts(drill) -> list:
    return [a["payload"] for a in drill.control.alerts() if a["payload"].get("incident", {}).get("type") == "WS Disconnect"]


def newest_record(drill, incident_type: str) -> dict:
    records = [json.loads(p.read_text()) for p in sorted(drill.records_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)]
    return [r for r in records if r.get("type") == incident_type][-1]


def steps(record) -> str:
    return "\n".join(e["step"] for e in record["timeline"])


def assert_clean_record(record) -> None:
    assert all("\n" not in e["step"] for e in record["timeline"]), [e["step"] for e in record["timeline"] if "\n" in e["step"]]


# ---------------------------------------------------------------- tests
def test_three_disconnects_an_hour_is_healthy_and_left_alone_through_ansible_runner(drill):
    """At the warning threshold, not over it (3 is not > 3): reported healthy, nothing touched (AWX path)."""
    drill.control.clear_alerts()
    since = fresh_logs(drill)
    drop_feeds(drill, 3)

    runner = drill.runner("ws_disconnect.yml", FAST)

    assert runner.status == "successful", runner.stdout.read()[-4000:]
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL"
        assert mode_changes(drill, host, since) == []
    assert ws_alerts(drill) == []
    record = newest_record(drill, "ws_disconnect")
    assert record["status"] == "Resolved" and record["final_state"]["level"] == "ok"
    assert record["final_state"]["problem_hosts"] == [] and record["final_state"]["paused_hosts"] == []
    feeds = record["final_state"]["feeds"]
    assert {h: feeds[h]["disconnects"] for h in drill.hosts} == {h: 3 for h in drill.hosts}
    assert all(feeds[h]["reach_ok"] and feeds[h]["connected"] for h in drill.hosts)
    assert "Fleet healthy" in steps(record)
    assert_clean_record(record)


def test_four_disconnects_rehearse_then_pause_wait_verify_and_resume(drill):
    """Over the warning threshold: --check changes nothing; the real run pauses entries, waits,
    verifies and resumes after the clean period; a warning (P3) goes out and then the all-clear."""
    drill.control.clear_alerts()
    since = fresh_logs(drill)
    drop_feeds(drill, 4)
    # Downtime (~1 s per drop) under a page threshold scaled down for the drill: no page.
    extra = dict(FAST, ws_disconnect_page_downtime_s=10, ws_disconnect_clean_period=4)

    rehearsal = drill.playbook("ws_disconnect.yml", extra, check=True)

    assert rehearsal.returncode == 0, rehearsal.output[-4000:]
    assert controller_writes(drill, since) == []
    assert ws_alerts(drill) == []
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL" and mode_changes(drill, host, since) == []
    record = rehearsal.record("ws_disconnect")
    assert record["rehearsal"] is True and "REDUCE_ONLY (was NORMAL) [check mode: would be set]" in steps(record)

    result = drill.playbook("ws_disconnect.yml", extra)

    assert result.returncode == 0, result.output[-5000:]
    for host in drill.hosts:
        changes = mode_changes(drill, host, result.started)
        assert [c for _, c in changes] == ["NORMAL -> REDUCE_ONLY", "REDUCE_ONLY -> NORMAL"], (host, changes)
        paused, resumed = changes[0][0], changes[1][0]
        assert resumed - paused >= 4  # the clean period, at least
        # Entries paused: no new order from the host while it was REDUCE_ONLY (1 s for one in flight).
        assert creates_between(drill, host, paused + 1.0, resumed) == []
        assert drill.mode(host) == "NORMAL"
    record = result.record("ws_disconnect")
    assert record["status"] == "Resolved"
    state = record["final_state"]
    assert state["level"] == "warning" and state["page_oncall"] is False
    assert sorted(state["paused_hosts"]) == sorted(drill.hosts) == sorted(state["resumed_hosts"])
    assert all(state["feeds"][h]["disconnects"] == 4 and state["feeds"][h]["downtime_s"] < 10 for h in drill.hosts)
    assert "data_flow_verified" in record["milestones"]
    alerts = ws_alerts(drill)
    assert [(a["incident"]["severity"], a["incident"]["status"]) for a in alerts] == [("P3", "Mitigating"), ("P3", "Resolved")]
    assert alerts[0]["details"]["page_oncall"] is False
    assert_clean_record(record)
    assert_no_secrets(result.output + rehearsal.output + json.dumps(record), drill)


def test_critical_rate_and_long_downtime_page_wait_for_the_reconnect_and_name_a_dead_feed(drill):
    """11 disconnects (> 10: critical) and more downtime than a page threshold scaled to 10 s: a P2
    page. One bot's feed is down when the run starts and comes back while the run waits (it is
    resumed); one never comes back (it stays REDUCE_ONLY and the run fails naming it)."""
    drill.control.clear_alerts()
    fresh_logs(drill)
    drop_feeds(drill, 11)
    dead, late, well = drill.hosts
    for host in (dead, late):  # their market data stops (drill.reset starts the units again)
        sh(host, "systemctl stop trading-bot-perpetuals")
    wait_for(lambda: connected(drill) == {well}, 30, 0.2, "only %s connected" % well)

    def come_back_once_paused():
        wait_for(lambda: drill.mode(late) == "REDUCE_ONLY", 300, 1.0, "%s paused" % late)
        time.sleep(2)
        sh(late, "systemctl start trading-bot-perpetuals")

    comeback = threading.Thread(target=come_back_once_paused, daemon=True)
    comeback.start()
    extra = dict(FAST, ws_disconnect_page_downtime_s=10, ws_disconnect_clean_period=3, ws_disconnect_reconnect_timeout=20)

    result = drill.playbook("ws_disconnect.yml", extra)
    comeback.join(5)

    assert result.returncode != 0, result.output[-4000:]
    assert "WS DISCONNECT NOT RESOLVED" in result.output
    failure = result.output.split("WS DISCONNECT NOT RESOLVED", 1)[1].split("PLAY RECAP")[0]
    assert dead in failure and late not in failure and well not in failure
    assert "%s did NOT reconnect within 20 s" % dead in result.output
    assert drill.mode(dead) == "REDUCE_ONLY"
    for host in (late, well):
        assert drill.mode(host) == "NORMAL"
        assert [c for _, c in mode_changes(drill, host, result.started)] == ["NORMAL -> REDUCE_ONLY", "REDUCE_ONLY -> NORMAL"]
    record = result.record("ws_disconnect")
    state = record["final_state"]
    assert record["status"] == "Failed" and dead in record["error"]
    assert state["level"] == "critical" and state["page_oncall"] is True
    assert all(state["feeds"][h]["disconnects"] >= 11 and state["feeds"][h]["downtime_s"] > 10 for h in drill.hosts)
    assert state["feeds"][dead]["connected"] is False and state["feeds"][late]["connected"] is False
    assert state["not_recovered_hosts"] == [dead] and sorted(state["resumed_hosts"]) == sorted([late, well])
    assert state["hosts"][dead]["trading_mode"] == "REDUCE_ONLY"
    assert "%s: reconnected (1 connect(s) since the incident start)" % late in steps(record)
    page = ws_alerts(drill)[0]
    assert page["incident"]["severity"] == "P2" and page["details"]["page_oncall"] is True
    assert "PAGE ON-CALL" in page["text"]
    assert not [a for a in ws_alerts(drill) if a["incident"]["status"] == "Resolved"]  # no all-clear while a host is down
    assert_clean_record(record)


def test_whole_fleet_unreachable_closes_the_record_and_fails_naming_every_host(drill):
    """A partition between the controller and the fleet: no host can be read. Ansible would stop
    the playbook at the first host play; the runbook goes on, closes the record and fails loudly."""
    drill.control.clear_alerts()
    result = drill.playbook_with_fleet_unreachable("ws_disconnect.yml", FAST)
    assert result.returncode != 0, result.output[-4000:]
    failure = result.output.split("WS DISCONNECT NOT RESOLVED", 1)[1].split("PLAY RECAP")[0]
    assert "feed not read (unreachable or failed)" in failure and all(h in failure for h in drill.hosts)
    record = result.record("ws_disconnect")
    assert record["status"] == "Failed" and "closed_at" in record
    assert all(record["final_state"]["hosts"][h]["reachable"] is False for h in drill.hosts)
    assert "%s: feed NOT read" % drill.hosts[0] in steps(record)
    for host in drill.hosts:  # nothing was changed on the hosts
        assert drill.mode(host) == "NORMAL"
