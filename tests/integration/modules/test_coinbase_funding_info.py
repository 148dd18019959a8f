"""coinbase_funding_info against the double: 8-hour normalisation, spikes on both sides, position impact, faults."""

from __future__ import annotations

import pytest

BIP = "BIP-20DEC30-CDE"
PRODUCTS_PATH = "/api/v3/brokerage/products"
PUBLIC_PRODUCTS_PATH = "/api/v3/brokerage/market/products"


def only(result, product_id=BIP):
    [entry] = [p for p in result["products"] if p["product_id"] == product_id]
    return entry


def test_default_funding_without_a_key_uses_the_public_endpoint(connection, run_module, clean_double):
    result = run_module("coinbase_funding_info", connection(None, products=["BTC-PERP"]))
    assert result["failed"] is False and result["changed"] is False and result["source"] == "public"
    entry = only(result)
    assert (entry["requested"], entry["display_name"]) == ("BTC-PERP", "BTC PERP")
    # the double's default: 0.000011 per 3600 s -> 0.000088 per 8 h
    assert entry["funding_rate"] == 0.000011 and entry["funding_interval"] == "3600s" and entry["interval_s"] == 3600
    assert entry["interval_assumed"] is False and entry["rate_8h"] == pytest.approx(0.000088) and entry["rate_8h_pct"] == 0.0088
    assert entry["spike"] is False and entry["direction"] == "longs_pay" and result["spike"] is False
    assert 0 < entry["seconds_to_next_funding"] <= 3600 and entry["contract_size"] == 0.01
    requests = clean_double.control.requests(path="/api/v3/brokerage/")
    assert requests and all(r["path"] == PUBLIC_PRODUCTS_PATH and r.get("key") is None for r in requests)


def test_all_perp_style_products_when_none_are_named(connection, run_module):
    result = run_module("coinbase_funding_info", connection(None))
    assert sorted(p["product_id"] for p in result["products"]) == [BIP, "ETP-20DEC30-CDE", "SLP-20DEC30-CDE"]


# SOP 6: > 0.1 % or < -0.1 % per 8 hours. Per hour, 0.000126 is 0.1008 % per 8 h; 0.000124 is 0.0992 %.
@pytest.mark.parametrize("rate, spike, direction", [
    ("0.000126", True, "longs_pay"),
    ("-0.000126", True, "shorts_pay"),
    ("0.000124", False, "longs_pay"),
    ("-0.000124", False, "shorts_pay"),
])
def test_spike_on_both_sides_of_the_threshold(connection, run_module, clean_double, rate, spike, direction):
    clean_double.control.set_product(BIP, funding_rate=rate)
    result = run_module("coinbase_funding_info", connection(None, products=[BIP]))
    entry = only(result)
    assert entry["spike"] is spike and result["spike"] is spike and entry["direction"] == direction
    assert result["spikes"] == ([BIP] if spike else [])
    assert abs(entry["rate_8h_pct"]) == pytest.approx(float(rate.lstrip("-")) * 800)


def test_the_interval_decides_the_8h_rate(connection, run_module, clean_double):
    # 0.09 % per 8-hour interval is no spike; the same rate hourly would be 0.72 % per 8 h.
    clean_double.control.set_product(BIP, funding_rate="0.0009", funding_interval="28800s")
    eight_hourly = only(run_module("coinbase_funding_info", connection(None, products=[BIP])))
    assert eight_hourly["interval_s"] == 28800 and eight_hourly["rate_8h_pct"] == 0.09 and not eight_hourly["spike"]
    lower = only(run_module("coinbase_funding_info", connection(None, products=[BIP], spike_threshold_pct=0.05)))
    assert lower["spike"] is True


def test_position_size_impact_per_period_and_day(connection, run_module, clean_double):
    clean_double.control.set_product(BIP, funding_rate="0.0002")
    result = run_module("coinbase_funding_info", connection(None, products=[BIP], position_size=10, daily_target=40))
    entry = only(result)
    position = entry["position"]
    notional = 10 * 0.01 * entry["price"]
    assert position["side"] == "LONG" and position["source"] == "option" and position["notional"] == round(notional, 2)
    assert position["payment_per_period"] == pytest.approx(notional * 0.0002, abs=1e-6)
    assert position["payment_per_day"] == pytest.approx(notional * 0.0002 * 24, abs=1e-5)
    assert position["payment_per_8h"] == pytest.approx(notional * 0.0002 * 8, abs=1e-5)
    # ~95,000 * 0.1 * 0.0002 * 24 = ~45.6 USD a day, over the 40 target
    assert position["exceeds_daily_target"] is True and result["exceeds_daily_target"] is True
    assert result["total_payment_per_day"] == position["payment_per_day"]


def test_account_positions_long_pays_short_receives(make_key, connection, run_module, clean_double):
    key = make_key(permissions="view")
    clean_double.control.set_product(BIP, funding_rate="0.0002")
    clean_double.control.set_product("ETP-20DEC30-CDE", funding_rate="0.0002")
    clean_double.control.set_position(BIP, "SHORT", 20, key=key.name)
    clean_double.control.set_position("ETP-20DEC30-CDE", "LONG", 30, key=key.name)
    result = run_module("coinbase_funding_info", connection(key, read_positions=True, daily_target=1))
    assert result["source"] == "authenticated"
    short, long_ = only(result)["position"], only(result, "ETP-20DEC30-CDE")["position"]
    assert (short["contracts"], short["side"], short["source"]) == (-20, "SHORT", "account")
    assert short["payment_per_day"] < 0 and short["exceeds_daily_target"] is False
    assert long_["payment_per_day"] > 1 and long_["exceeds_daily_target"] is True and result["exceeds_daily_target"] is True
    assert only(result, "SLP-20DEC30-CDE")["position"]["side"] == "FLAT"
    paths = {r["path"] for r in clean_double.control.requests(path="/api/v3/brokerage/")}
    assert paths == {PRODUCTS_PATH, "/api/v3/brokerage/cfm/positions"}


def test_5xx_and_429_are_retried_and_the_result_is_still_right(connection, run_module, clean_double):
    clean_double.control.set_product(BIP, funding_rate="0.0002")
    clean_double.control.fail_next(503, count=2, path=PUBLIC_PRODUCTS_PATH)
    clean_double.control.fail_next(429, count=1, path=PUBLIC_PRODUCTS_PATH)
    result = run_module("coinbase_funding_info", connection(None, products=[BIP], retry_max_delay=0.2))
    assert result["failed"] is False and only(result)["rate_8h_pct"] == 0.16 and only(result)["spike"] is True
    assert [r["status"] for r in clean_double.control.requests(path=PUBLIC_PRODUCTS_PATH)] == [503, 503, 429, 200]
    assert result["requests"]["failures"] == 3 and result["requests"]["alert_ops"] is True


def test_revoked_key_fails_clearly(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.revoke_key(key.name)
    result = run_module("coinbase_funding_info", connection(key, read_positions=True))
    assert result["failed"] and result["error"]["kind"] == "unauthenticated" and "HTTP 401" in result["msg"]


def test_missing_view_scope_fails_clearly(make_key, connection, run_module):
    result = run_module("coinbase_funding_info", connection(make_key(permissions="trade"), read_positions=True))
    assert result["failed"] and result["error"]["missing_scopes"] is True and "Missing required scopes" in result["msg"]


@pytest.mark.parametrize("extra, expected", [
    ({"read_positions": True}, "read_positions needs an API key"),
    ({"position_size": 5, "read_positions": True}, "position_size and read_positions are mutually exclusive"),
    ({"spike_threshold_pct": 0}, "spike_threshold_pct must be greater than 0"),
    ({"daily_target": -5}, "daily_target must be greater than 0"),
    ({"products": ["BTC-FOO"]}, "'BTC-FOO' matches no product"),
])
def test_bad_arguments_name_the_argument(connection, run_module, extra, expected):
    result = run_module("coinbase_funding_info", connection(None, **extra))
    assert result["failed"] and expected in result["msg"], result["msg"]
