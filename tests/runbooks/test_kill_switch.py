"""SOP 7, the kill switch, on the drill fleet: judged by the double's book and the hosts' state."""

from __future__ import annotations

import time

import pytest

from support.drill import run, wait_for
from support.runbook import assert_no_secrets, milestone_times

pytestmark = pytest.mark.timeout(600)


def test_kill_switch_with_an_unreachable_host(drill):
    """Hundreds of orders from several hosts, positions, one host hung: zero orders, flat, honest failure."""
    drill.seed_book(orders_per_host=120)
    wait_for(lambda: len(drill.working_orders()) >= 360, 30, what="the seeded book")
    hung = drill.hosts[-1]
    run(["podman", "pause", hung])  # a hung host: its bot is frozen, Ansible cannot reach it

    result = drill.playbook("kill_switch.yml", {"close_all": True, "close_all_approved": True})

    # An honest non-zero result that names the host it could not contain.
    assert result.returncode != 0, result.output[-3000:]
    assert "KILL SWITCH INCOMPLETE" in result.output and hung in result.output, result.output[-6000:]
    # The exchange: no working order, no position.
    assert drill.working_orders() == []
    assert drill.positions() == []
    # Reachable hosts: REDUCE_ONLY, order placement stopped, market data still running.
    reachable = [h for h in drill.hosts if h != hung]
    for host in reachable:
        assert drill.mode(host) == "REDUCE_ONLY"
        assert drill.unit(host, "trading-bot-orders") == "inactive"
        assert drill.unit(host, "trading-bot-perpetuals") == "active"
    # No order from any reachable host after the kill switch finished.
    time.sleep(3)
    for host in reachable:
        assert drill.order_posts_from(host, result.finished) == []
    # The record: milestones in order, the hung host named, the alert text filled in.
    record = result.record("kill_switch")
    times = milestone_times(record)
    assert times["first_cancel_pass"] <= times["no_open_orders"] <= times["flat"]
    assert record["status"] == "Failed" and hung in record["error"]
    assert record["final_state"]["exchange"]["open_orders"] == 0 and record["final_state"]["exchange"]["flat"]
    assert record["final_state"]["hosts"][hung]["reachable"] is False
    assert record["final_state"]["hosts"][reachable[0]]["trading_mode"] == "REDUCE_ONLY"
    assert record["alert_text"].startswith("INCIDENT: Kill Switch Activation\nSEVERITY: P1")
    # The alert reached the (stand-in) alert destination.
    assert any("Kill Switch" in str(a["payload"]) for a in drill.control.alerts())
    assert_no_secrets(result.output, drill)


def test_kill_switch_check_mode_changes_nothing(drill):
    drill.seed_book(orders_per_host=20)
    before_orders = len(drill.working_orders())
    since = time.time()

    result = drill.playbook("kill_switch.yml", {"close_all": True, "close_all_approved": True}, check=True)

    assert result.returncode == 0, result.output[-3000:]
    # Nothing reached the exchange but reads: no cancel, no close from the controller.
    writes = [e for e in drill.control.requests(method="POST", since=since)
              if e["path"] in ("/api/v3/brokerage/orders/batch_cancel", "/api/v3/brokerage/orders/close_position")
              and e["client_ip"] not in drill.ips.values()]
    assert writes == []
    assert len(drill.working_orders()) >= before_orders
    for host in drill.hosts:
        assert drill.mode(host) == "NORMAL"
        assert drill.unit(host, "trading-bot-orders") == "active"
    record = result.record("kill_switch")
    assert record["rehearsal"] is True
    assert "would be cancelled" in " ".join(e["step"] for e in record["timeline"])


def test_kill_switch_through_ansible_runner(drill):
    """The AWX path: ansible-runner, no close_all: orders gone, positions kept, hosts contained."""
    drill.seed_book(orders_per_host=30)
    since = time.time()
    runner = drill.runner("kill_switch.yml")
    assert runner.status == "successful", runner.stdout.read()[-3000:]
    assert drill.working_orders() == []
    # Closing positions needs close_all: the controller sent no close (the bots' own exits may have).
    closes = [e for e in drill.control.requests(method="POST", path="/orders/close_position", since=since)
              if e["client_ip"] not in drill.ips.values()]
    assert closes == []
    for host in drill.hosts:
        assert drill.mode(host) == "REDUCE_ONLY" and drill.unit(host, "trading-bot-orders") == "inactive"


def test_kill_switch_with_the_whole_fleet_unreachable(drill):
    """A network partition: no host answers. The exchange side still ends at zero, the record is
    closed, and the run fails naming every host (Ansible would otherwise stop at the host play)."""
    drill.seed_book(orders_per_host=20)
    drill.control.clear_alerts()
    run(["podman", "pause"] + drill.hosts)
    result = drill.playbook("kill_switch.yml")
    assert result.returncode != 0 and "KILL SWITCH INCOMPLETE" in result.output, result.output[-4000:]
    assert all(host in result.output for host in drill.hosts)
    assert drill.working_orders() == []
    record = result.record("kill_switch")
    assert record["status"] == "Failed" and "closed_at" in record
    assert all(record["final_state"]["hosts"][h]["reachable"] is False for h in drill.hosts)
    # The alert still goes out, and it says the kill switch is incomplete.
    [alert] = [a["payload"] for a in drill.control.alerts() if "Kill Switch" in str(a["payload"])]
    assert "KILL SWITCH INCOMPLETE" in str(alert) and drill.hosts[0] in str(alert)


def test_kill_switch_without_a_record_still_halts_trading_and_says_so(drill):
    """A records directory that cannot be written (full disk, wrong mount) must not delay the
    cancel or the containment: trading halts, the alert goes out, the run fails naming the cause."""
    drill.seed_book(orders_per_host=20)
    drill.control.clear_alerts()
    result = drill.playbook("kill_switch.yml", {"incident_record_dir": "/proc/tradeops-no-records"})
    assert result.returncode != 0 and "KILL SWITCH INCOMPLETE" in result.output, result.output[-4000:]
    assert "no incident record" in result.output
    assert drill.working_orders() == []
    for host in drill.hosts:
        assert drill.mode(host) == "REDUCE_ONLY"
        assert drill.unit(host, "trading-bot-orders") == "inactive"
    [alert] = [a["payload"] for a in drill.control.alerts() if "Kill Switch" in str(a["payload"])]
    assert "KILL SWITCH INCOMPLETE" in str(alert) and "no incident record" in str(alert)
    assert_no_secrets(result.output, drill)


def test_kill_switch_with_the_configured_key_refused_cancels_with_a_key_that_works(drill):
    """The configured (primary) key is revoked: the first pass is refused, the controller's other
    keys are tried, and the sweep cancels everything with the first that works."""
    drill.seed_book(orders_per_host=20)
    primary = drill.keys["primary"]["name"]
    drill.control.revoke_key(primary)
    since = time.time()
    result = drill.playbook("kill_switch.yml")
    assert drill.working_orders() == [], result.output[-4000:]
    cancels = [e for e in drill.control.requests(method="POST", path="/batch_cancel", since=since) if e["status"] == 200]
    assert cancels and primary not in {e["key"] for e in cancels}
    for host in drill.hosts:
        assert drill.mode(host) == "REDUCE_ONLY" and drill.unit(host, "trading-bot-orders") == "inactive"
    record = result.record("kill_switch")
    assert record["final_state"]["exchange"]["open_orders"] == 0, record["final_state"]
    assert_no_secrets(result.output, drill)
