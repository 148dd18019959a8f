"""Products (catalogue, futures fields, filters, offset paging) and accounts (cursor paging)."""

from __future__ import annotations

from double_api import BTC_PERP, Api

from exchange_double.testing import DoubleHandle

SESSION_FIELDS = {"is_session_open", "open_time", "close_time", "session_state",
                  "after_hours_order_entry_disabled", "closed_reason", "maintenance"}


def test_perp_style_futures_carry_top_level_funding_fields(api: Api) -> None:
    product = api.ok("GET", f"/products/{BTC_PERP}")
    assert product["product_type"] == "FUTURE" and product["product_venue"] == "FCM"
    assert product["display_name"] == "BTC PERP"
    details = product["future_product_details"]
    assert details["contract_expiry_type"] == "EXPIRING"
    assert details["contract_expiry"] == "2030-12-20T16:00:00Z"
    assert details["contract_size"] == "0.01" and details["contract_root_unit"] == "BTC"
    assert details["display_name"] == "BTC PERP"
    for name in ("funding_rate", "funding_time", "funding_interval", "open_interest"):
        assert details[name], name
    assert details["funding_interval"] == "3600s"
    assert details["perpetual_details"]["funding_rate"] == ""  # empty for CFM products
    assert set(product["fcm_trading_session_details"]) == SESSION_FIELDS


def test_catalogue_and_filters(api: Api, public_api: Api) -> None:
    everything = api.ok("GET", "/products")
    ids = [p["product_id"] for p in everything["products"]]
    assert everything["num_products"] == len(ids) == 5
    assert {"BIP-20DEC30-CDE", "ETP-20DEC30-CDE", "SLP-20DEC30-CDE", "BTC-USD"} <= set(ids)
    dated = [p for p in everything["products"] if p["product_id"].startswith("BIT-")]
    assert len(dated) == 1 and "funding_rate" not in dated[0]["future_product_details"]
    spot = api.ok("GET", "/products", params={"product_type": "SPOT"})
    assert [p["product_id"] for p in spot["products"]] == ["BTC-USD"]
    assert "future_product_details" not in spot["products"][0]
    assert api.ok("GET", "/products", params={"product_type": "FUTURE"})["num_products"] == 4
    chosen = api.ok("GET", "/products", params={"product_ids": ["BTC-USD", BTC_PERP]})
    assert {p["product_id"] for p in chosen["products"]} == {"BTC-USD", BTC_PERP}
    assert api.ok("GET", "/products", params={"contract_expiry_type": "PERPETUAL"})["num_products"] == 0
    # Offset paging; the SDK sends Python booleans as "False"/"True".
    page = public_api.ok("GET", "/market/products",
                         params={"limit": 2, "offset": 2, "get_all_products": "False"})
    assert [p["product_id"] for p in page["products"]] == ids[2:4] and page["num_products"] == 5


def test_control_can_change_price_funding_and_session(api: Api, double: DoubleHandle) -> None:
    double.control.set_product(BTC_PERP, price="101000", funding_rate="0.0015",
                               funding_time="2030-01-01T00:00:00Z", funding_interval="28800s",
                               session_open=False)
    product = api.ok("GET", f"/products/{BTC_PERP}")
    assert product["price"] == "101000"
    details = product["future_product_details"]
    assert (details["funding_rate"], details["funding_time"], details["funding_interval"]) == (
        "0.0015", "2030-01-01T00:00:00Z", "28800s")
    session = product["fcm_trading_session_details"]
    assert session["is_session_open"] is False and session["session_state"] == "FCM_TRADING_SESSION_STATE_CLOSED"


def test_unknown_product_is_404(api: Api, public_api: Api) -> None:
    assert api.get("/products/NOPE-USD").status_code == 404
    assert public_api.get("/market/products/NOPE-USD").status_code == 404


def test_accounts_page_with_cursor(api: Api) -> None:
    first = api.ok("GET", "/accounts", params={"limit": 2})
    assert first["size"] == 2 and first["has_next"] is True and first["cursor"]
    seen = [a["uuid"] for a in first["accounts"]]
    cursor = first["cursor"]
    while cursor:
        page = api.ok("GET", "/accounts", params={"limit": 2, "cursor": cursor})
        seen += [a["uuid"] for a in page["accounts"]]
        cursor = page["cursor"]
    everything = api.ok("GET", "/accounts")
    assert everything["has_next"] is False and everything["cursor"] == ""
    assert seen == [a["uuid"] for a in everything["accounts"]]
    usd = next(a for a in everything["accounts"] if a["currency"] == "USD")
    assert usd["available_balance"] == {"value": "25000", "currency": "USD"}
    one = api.ok("GET", f"/accounts/{usd['uuid']}")["account"]
    assert one == usd
    assert api.get("/accounts/00000000-0000-4000-8000-000000000000").status_code == 404


def test_spot_orders_move_wallet_balances(api: Api, double: DoubleHandle) -> None:
    double.control.set_product("BTC-USD", price="50000.00")
    body = {"client_order_id": "spot-buy", "product_id": "BTC-USD", "side": "BUY",
            "order_configuration": {"market_market_ioc": {"quote_size": "1000"}}}
    assert api.ok("POST", "/orders", json=body)["success"] is True
    wallets = {a["currency"]: a for a in api.ok("GET", "/accounts")["accounts"]}
    # 1000 USD at the ask (50000.01) buys 0.01999999 BTC; the account started with 0.5 BTC.
    assert wallets["BTC"]["available_balance"]["value"] == "0.51999999"
    assert float(wallets["USD"]["available_balance"]["value"]) < 24001
