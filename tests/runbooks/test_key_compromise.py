"""SOP 3, key compromise, end to end on the drill fleet: judged by the double and the hosts."""

from __future__ import annotations

import time

import pytest

from support.drill import sh
from support.runbook import assert_no_secrets, milestone_times

pytestmark = pytest.mark.timeout(900)

REVOKE_HOOK = "drill/revoke_in_double.yml"


def test_key_compromise_end_to_end(drill):
    seeded = {oid for ids in drill.seed_book(orders_per_host=50).values() for oid in ids}
    # An order nobody in the fleet placed: the audit must flag it.
    attacker = drill.control.seed_orders(1, "BIP-20DEC30-CDE", key=drill.keys["primary"]["name"],
                                         client_order_id_prefix="attacker-", status="CANCELLED")["order_ids"][0]
    drill.control.inject_fill("BIP-20DEC30-CDE", "BUY", "2", "95000", order_id=attacker, key=drill.keys["primary"]["name"])
    compromised, standby = drill.keys["primary"]["name"], drill.keys["standby"]["name"]

    result = drill.playbook("key_compromise.yml", {"key_compromise_revocation_tasks": REVOKE_HOOK,
                                                   "key_compromise_revocation_confirmed": True}, verbosity=2)

    assert result.returncode == 0, result.output[-5000:]
    # The compromised key is refused by the exchange; every order from before the run was cancelled
    # (the bots trade again at the end, on the new key, so new orders are expected).
    assert [k for k in drill.control.list_keys() if k["name"] == compromised][0]["revoked"] is True
    still_working = {o["order_id"] for o in drill.working_orders()}
    assert not seeded & still_working
    # Every host runs again, on the standby key, unblocked, NORMAL.
    for host in drill.hosts:
        assert drill.key_slot(host) == "standby"
        assert not drill.egress_blocked(host) and drill.can_reach_double(host)
        assert drill.mode(host) == "NORMAL"
        assert drill.unit(host, "trading-bot-orders") == "active"
    # The bots' requests after the run are signed with the standby key, never the compromised one.
    since = time.time()
    time.sleep(4)
    for host in drill.hosts:
        used = drill.keys_used_by(host, since)
        assert used == {standby}, (host, used)
    # While contained, no host reached the exchange: no request from a host between the block and the unblock.
    record = result.record("key_compromise")
    times = milestone_times(record)
    assert times["orders_cancelled"] <= times["revocation_confirmed"] <= times["audit_done"]
    assert record["status"] == "Resolved" and record["final_state"]["compromised_key_refused"] is True
    audit = [e for e in record["timeline"] if e["step"].startswith("Audit of 24 h")][0]
    assert audit["status"] == "warning" and audit["details"]["summary"]["unexpected"] == 1
    assert "Generate a new standby key immediately (portal), then install it with checks_monthly.yml (key rotation)" in record["checklist"]
    assert (result.records_dir / ("%s-fills.csv" % record["incident_id"])).exists()
    assert_no_secrets(result.output + (result.records_dir / ("%s.json" % record["incident_id"])).read_text(), drill)


def test_key_compromise_containment_blocks_the_api(drill):
    """Phase contain (the AWX workflow's first job): hosts stopped, masked, HALTED and cut off; orders cancelled."""
    drill.seed_book(orders_per_host=20)
    result = drill.playbook("key_compromise.yml", {"key_compromise_phase": "contain"})
    assert result.returncode == 0, result.output[-4000:]
    assert drill.working_orders() == []
    since = time.time()
    time.sleep(2)
    for host in drill.hosts:
        assert drill.unit(host, "trading-bot-orders") == "inactive" and drill.unit(host, "trading-bot-perpetuals") == "inactive"
        assert "masked" in sh(host, "systemctl is-enabled trading-bot-orders", check=False).stdout
        assert drill.mode(host) == "HALTED"
        assert drill.egress_blocked(host) and not drill.can_reach_double(host)
        assert drill.control.requests(client_ip=drill.ips[host], since=since) == []
    assert result.record("key_compromise")["status"] == "Mitigating"


def test_key_compromise_check_mode_changes_nothing(drill):
    drill.seed_book(orders_per_host=10)
    before = len(drill.working_orders())
    result = drill.playbook("key_compromise.yml", {"key_compromise_revocation_tasks": REVOKE_HOOK}, check=True)
    assert result.returncode == 0, result.output[-4000:]
    assert len(drill.working_orders()) >= before
    assert not [k for k in drill.control.list_keys() if k["revoked"]]
    for host in drill.hosts:
        assert drill.key_slot(host) == "primary" and drill.mode(host) == "NORMAL"
        assert not drill.egress_blocked(host) and drill.unit(host, "trading-bot-orders") == "active"
