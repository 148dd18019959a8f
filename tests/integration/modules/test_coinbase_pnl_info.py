"""coinbase_pnl_info against the exchange double: the SOP 4 daily loss limit, on both sides of it."""

from __future__ import annotations

from decimal import Decimal

import pytest

SOL = "SLP-20DEC30-CDE"


@pytest.fixture
def losing_day(clean_double, make_key):
    """Realized -3000.00 today, and a SOL long 100 x 5 entered at 190 now at 180: unrealized -5000.00."""
    control = clean_double.control
    control.set_config(market_frozen=True)
    control.set_product(SOL, price="180")
    key = make_key()
    control.set_daily_realized_pnl("-3000", key=key.name)
    control.set_position(SOL, "LONG", 100, entry_price="190", key=key.name)
    yield key
    control.set_config(market_frozen=False)


def pnl(run_module, connection, key, **options):
    return run_module("coinbase_pnl_info", connection(key, retry_max_delay=0.05, **options))


@pytest.mark.parametrize("limit, breached, margin", [
    (8000, True, "0.00"),        # a loss of exactly the limit is a breach
    (7999.99, True, "-0.01"),
    (8000.01, False, "0.01"),
    (20000, False, "12000.00"),
])
def test_breach_on_both_sides_of_the_limit(connection, run_module, losing_day, limit, breached, margin):
    result = pnl(run_module, connection, losing_day, daily_loss_limit=limit)
    assert result["failed"] is False and result["changed"] is False
    assert result["breached"] is breached
    assert result["realized_today"]["exact"] == "-3000.00" and result["unrealized"]["exact"] == "-5000.00"
    assert result["total"]["exact"] == "-8000.00" and result["loss"]["exact"] == "8000.00"
    assert Decimal(result["margin_to_limit"]["exact"]) == Decimal(margin)
    assert result["sources"] == {"realized": "balance_summary", "unrealized": "balance_summary"}
    position = result["positions"][0]
    assert position["product_id"] == SOL and position["unrealized_pnl"]["exact"] == "-5000.00"
    assert result["positions_unrealized"]["exact"] == "-5000.00" and Decimal(result["unrealized_discrepancy"]["exact"]) == 0


def test_realized_only(connection, run_module, losing_day):
    result = pnl(run_module, connection, losing_day, daily_loss_limit=8000, include_unrealized=False)
    assert result["breached"] is False and result["total"]["exact"] == "-3000.00"
    assert result["margin_to_limit"]["exact"] == "5000.00" and result["used_percent"]["exact"] == "37.50"


@pytest.mark.parametrize("warn_at, warning", [(80, True), (80.01, False)])
def test_warn_at_percent(connection, run_module, losing_day, warn_at, warning):
    result = pnl(run_module, connection, losing_day, daily_loss_limit=10000, warn_at_percent=warn_at)
    assert result["used_percent"]["exact"] == "80.00" and result["warning"] is warning and result["breached"] is False


def test_a_profitable_day_has_no_loss(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_daily_realized_pnl("1250.75", key=key.name)
    result = pnl(run_module, connection, key, daily_loss_limit=500)
    assert result["breached"] is False and result["loss"]["value"] == 0
    assert result["total"]["exact"] == "1250.75" and result["margin_to_limit"]["exact"] == "500"


@pytest.mark.parametrize("options, named", [
    ({"daily_loss_limit": -5000}, "daily_loss_limit must be a positive amount"),
    ({"daily_loss_limit": 0}, "daily_loss_limit must be a positive amount"),
    ({"daily_loss_limit": 5000, "warn_at_percent": 150}, "warn_at_percent must be more than 0 and at most 100"),
    ({}, "daily_loss_limit"),
])
def test_bad_arguments(make_key, connection, run_module, options, named):
    result = pnl(run_module, connection, make_key(), **options)
    assert result["failed"] is True and named in result["msg"]


def test_5xx_is_retried_and_the_numbers_are_right(connection, run_module, losing_day, clean_double):
    clean_double.control.fail_next(503, count=2, path="/api/v3/brokerage/cfm/balance_summary")
    result = pnl(run_module, connection, losing_day, daily_loss_limit=8000)
    assert result["failed"] is False and result["breached"] is True and result["requests"]["retries"] == 2


def test_revoked_key(connection, run_module, losing_day, clean_double):
    clean_double.control.revoke_key(losing_day.name)
    result = pnl(run_module, connection, losing_day, daily_loss_limit=8000)
    assert result["failed"] is True and result["error"]["kind"] == "unauthenticated" and "breached" not in result


def test_through_ansible_playbook(connection, ansible_playbook, losing_day):
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "tasks": [{"name": "pnl", "tradeops.incident_response.coinbase_pnl_info":
                        connection(losing_day, daily_loss_limit=7500, warn_at_percent=80), "register": "pnl"},
                       {"name": "halt", "ansible.builtin.debug": {"msg": "kill switch"}, "when": "pnl.breached"}]}]
    rc, output, results = ansible_playbook(play)
    assert rc == 0, output
    result = results["pnl"][0]["localhost"]
    assert result["breached"] is True and result["warning"] is True and result["margin_to_limit"]["exact"] == "-500.00"
    assert "skipped" not in results["halt"][0]["localhost"]
