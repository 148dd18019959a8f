"""SOP 3, key compromise, end to end on the drill fleet: judged by the double and the hosts."""

from __future__ import annotations

import time

import pytest

from support.drill import ROOT, sh
from support.runbook import assert_no_secrets, milestone_times

pytestmark = pytest.mark.timeout(900)

REVOKE_HOOK = "drill/revoke_in_double.yml"

# The attacker goes on with the still-valid key after the run's cancel: orders placed with the
# compromised key just before it is deleted in the (simulated) portal.
LATE_ATTACKER_HOOK = """
- name: "Test: the attacker places orders with the compromised key after the cancel"
  ansible.builtin.uri:
    url: "https://localhost:{{ fleet_double_port }}/_control/orders/seed"
    method: POST
    body_format: json
    body: {count: 3, product_id: BIP-20DEC30-CDE, key: "{{ tradeops_api_keys['primary'].name }}",
           client_order_id_prefix: attacker-late-}
    ca_path: "{{ fleet_ca_cert }}"
    status_code: [200, 201]
  delegate_to: localhost

- name: "Test: then the key is deleted"
  ansible.builtin.include_tasks: %s
""" % (ROOT / "playbooks" / REVOKE_HOOK)


def test_key_compromise_end_to_end(drill):
    seeded = {oid for ids in drill.seed_book(orders_per_host=50).values() for oid in ids}
    # An order nobody in the fleet placed: the audit must flag it.
    attacker = drill.control.seed_orders(1, "BIP-20DEC30-CDE", key=drill.keys["primary"]["name"],
                                         client_order_id_prefix="attacker-", status="CANCELLED")["order_ids"][0]
    drill.control.inject_fill("BIP-20DEC30-CDE", "BUY", "2", "95000", order_id=attacker, key=drill.keys["primary"]["name"])
    compromised, standby = drill.keys["primary"]["name"], drill.keys["standby"]["name"]

    hook = drill.tmp_path / "late_attacker.yml"
    hook.write_text(LATE_ATTACKER_HOOK)
    result = drill.playbook("key_compromise.yml", {"key_compromise_revocation_tasks": str(hook),
                                                   "key_compromise_revocation_confirmed": True}, verbosity=2)

    assert result.returncode == 0, result.output[-5000:]
    # The compromised key is refused by the exchange; every order from before the run was cancelled
    # (the bots trade again at the end, on the new key, so new orders are expected).
    assert [k for k in drill.control.list_keys() if k["name"] == compromised][0]["revoked"] is True
    still_working = {o["order_id"] for o in drill.working_orders()}
    assert not seeded & still_working
    # The orders the compromised key placed after the cancel, before its revocation, are gone too.
    late = {o["order_id"] for o in drill.control.list_orders(key=compromised) if o.get("client_order_id", "").startswith("attacker-late-")}
    assert len(late) == 3 and not late & still_working
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
    assert times["orders_cancelled"] <= times["revocation_confirmed"] <= times["final_sweep"] <= times["audit_done"]
    sweep = [e for e in record["timeline"] if e["step"].startswith("Final sweep after the revocation with the standby key")][0]
    assert sweep["status"] == "ok" and sweep["details"]["remaining"] == 0
    assert len([c for c in sweep["details"]["cancelled"] if c.startswith("attacker-late-")]) == 3
    assert not record.get("error")
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


def test_key_compromise_without_a_standby_key_still_contains(drill):
    """The controller has no standby key entry: containment, cancel and revocation still happen;
    only the recovery is refused, the record says why, and an importer gets the problems."""
    drill.seed_book(orders_per_host=10)
    # A bot process the units do not know about (run by hand): the SOP's pkill must end it.
    stray_host = drill.hosts[0]
    sh(stray_host, "setsid bash -c 'exec -a trading_bot_stray sleep 600' </dev/null >/dev/null 2>&1 &")
    assert sh(stray_host, "pgrep -f '[t]rading_bot_stray'", check=False).returncode == 0
    keys = {slot: spec for slot, spec in drill.keys.items() if slot != "standby"}
    result = drill.playbook("key_compromise.yml", {"tradeops_api_keys": keys, "key_compromise_revocation_tasks": REVOKE_HOOK,
                                                   "key_compromise_revocation_confirmed": True,
                                                   "key_compromise_defer_failure": True}, verbosity=1)
    # Deferred: the run itself does not fail; it leaves the problems for the importer.
    assert result.returncode == 0, result.output[-5000:]
    assert "key_compromise_problems" in result.output and "recovery refused" in result.output
    assert drill.working_orders() == []
    assert [k for k in drill.control.list_keys() if k["name"] == drill.keys["primary"]["name"]][0]["revoked"] is True
    for host in drill.hosts:
        assert drill.unit(host, "trading-bot-orders") == "inactive" and drill.unit(host, "trading-bot-perpetuals") == "inactive"
        assert "masked" in sh(host, "systemctl is-enabled trading-bot-orders", check=False).stdout
        assert drill.mode(host) == "HALTED" and drill.egress_blocked(host)
        assert drill.key_slot(host) == "primary"
        assert sh(host, "pgrep -f '[t]rading_bot'", check=False).returncode == 1, host
    record = result.record("key_compromise")
    assert record["status"] == "Failed" and "recovery refused" in record["error"]
    steps = [e["step"] for e in record["timeline"]]
    assert any(s.startswith("%s: units stopped and masked, 1 stray bot process(es) killed" % stray_host) for s in steps), steps
    assert any(s.startswith("The standby key cannot be used") for s in steps), steps
    assert any(s.startswith("Final sweep after the revocation NOT run") for s in steps), steps

    # Not deferred (an operator's run of the recover phase): it fails loudly and changes nothing.
    again = drill.playbook("key_compromise.yml", {"tradeops_api_keys": keys, "key_compromise_phase": "recover"})
    assert again.returncode != 0 and "KEY COMPROMISE INCOMPLETE" in again.output, again.output[-3000:]
    for host in drill.hosts:
        assert drill.mode(host) == "HALTED" and drill.egress_blocked(host) and drill.key_slot(host) == "primary"
