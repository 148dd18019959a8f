"""Orders: placing, idempotency, rejections, listing with cursors and the OPEN cap, cancelling."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from double_api import BTC_PERP, ETH_PERP, Api

from exchange_double.testing import DoubleHandle

# Every field of the SDK's Order type (coinbase/rest/types/orders_types.py).
SDK_ORDER_FIELDS = {
    "order_id", "product_id", "user_id", "order_configuration", "side", "client_order_id", "status",
    "time_in_force", "created_time", "completion_percentage", "filled_size", "average_filled_price", "fee",
    "number_of_fills", "filled_value", "pending_cancel", "size_in_quote", "total_fees", "size_inclusive_of_fees",
    "total_value_after_fees", "trigger_status", "order_type", "reject_reason", "settled", "product_type",
    "reject_message", "cancel_message", "order_placement_source", "outstanding_hold_amount", "is_liquidation",
    "last_fill_time", "edit_history", "leverage", "margin_type", "retail_portfolio_id", "originating_order_id",
    "attached_order_id",
}


def list_all(api: Api, **params) -> list[dict]:
    """Follow cursors to the end, as a kill switch does."""
    orders, cursor = [], None
    for _ in range(100):
        body = api.ok("GET", "/orders/historical/batch", params={**params, **({"cursor": cursor} if cursor else {})})
        orders.extend(body["orders"])
        if not body["has_next"]:
            assert body["cursor"] == ""
            return orders
        cursor = body["cursor"]
    raise AssertionError("pagination did not end")


def test_limit_order_rests_open_with_the_full_field_set(api: Api) -> None:
    created = api.limit_order("rest-1", "BUY", "90000", "2")
    assert created["success"] is True
    order_id = created["success_response"]["order_id"]
    assert created["success_response"]["client_order_id"] == "rest-1"
    order = api.ok("GET", f"/orders/historical/{order_id}")["order"]
    assert set(order) >= SDK_ORDER_FIELDS
    assert order["status"] == "OPEN"
    assert order["order_type"] == "LIMIT"
    assert order["time_in_force"] == "GOOD_UNTIL_CANCELLED"
    assert order["order_configuration"] == {"limit_limit_gtc": {"base_size": "2", "limit_price": "90000"}}
    assert order["product_type"] == "FUTURE"
    # Margin held: 2 contracts x 0.01 BTC x 90000 x 10 % initial margin.
    assert order["outstanding_hold_amount"] == "180"


def test_market_order_fills_at_the_ask_and_opens_a_position(api: Api) -> None:
    created = api.market_order("mkt-1", "BUY", "3")
    order = api.ok("GET", f"/orders/historical/{created['order_id']}")["order"]
    assert order["status"] == "FILLED"
    assert order["filled_size"] == "3"
    assert order["average_filled_price"] == "95005"  # price 95000 + one 5 USD tick
    assert order["completion_percentage"] == "100"
    position = api.ok("GET", f"/cfm/positions/{BTC_PERP}")["position"]
    assert position["side"] == "LONG" and position["number_of_contracts"] == "3"
    fills = api.ok("GET", "/orders/historical/fills", params={"order_ids": [created["order_id"]]})["fills"]
    assert len(fills) == 1 and fills[0]["liquidity_indicator"] == "TAKER" and fills[0]["trade_type"] == "FILL"


def test_crossing_limit_fills_at_once_and_resting_limit_fills_when_price_crosses(api: Api,
                                                                                 double: DoubleHandle) -> None:
    crossing = api.limit_order("cross", "SELL", "94000")
    assert api.ok("GET", f"/orders/historical/{crossing['order_id']}")["order"]["status"] == "FILLED"
    resting = api.limit_order("rest", "BUY", "94500")
    assert api.ok("GET", f"/orders/historical/{resting['order_id']}")["order"]["status"] == "OPEN"
    double.control.set_product(BTC_PERP, price="94495")  # ask = 94500 crosses the bid
    order = api.ok("GET", f"/orders/historical/{resting['order_id']}")["order"]
    assert order["status"] == "FILLED"
    assert order["average_filled_price"] == "94500"  # resting orders fill at their limit (maker)


def test_ioc_that_does_not_cross_is_cancelled(api: Api) -> None:
    body = {"client_order_id": "ioc", "product_id": BTC_PERP, "side": "BUY",
            "order_configuration": {"sor_limit_ioc": {"base_size": "1", "limit_price": "90000"}}}
    created = api.ok("POST", "/orders", json=body)
    assert api.ok("GET", f"/orders/historical/{created['order_id']}")["order"]["status"] == "CANCELLED"


def test_gtd_order_expires(api: Api) -> None:
    end = (datetime.now(timezone.utc) + timedelta(seconds=0.4)).isoformat().replace("+00:00", "Z")
    body = {"client_order_id": "gtd", "product_id": BTC_PERP, "side": "BUY",
            "order_configuration": {"limit_limit_gtd": {"base_size": "1", "limit_price": "90000", "end_time": end}}}
    created = api.ok("POST", "/orders", json=body)
    deadline = time.time() + 5
    while time.time() < deadline:
        status = api.ok("GET", f"/orders/historical/{created['order_id']}")["order"]["status"]
        if status == "EXPIRED":
            return
        time.sleep(0.1)
    raise AssertionError(f"GTD order still {status}")


def test_client_order_id_is_idempotent(api: Api, double: DoubleHandle) -> None:
    first = api.market_order("same-id", "BUY", "1")
    again = api.market_order("same-id", "BUY", "1")
    assert again["success"] is True
    assert again["order_id"] == first["order_id"]
    assert len(double.control.list_orders()) == 1
    assert api.ok("GET", f"/cfm/positions/{BTC_PERP}")["position"]["number_of_contracts"] == "1"


@pytest.mark.parametrize(
    ("product_id", "configuration", "error"),
    [
        ("NOPE-USD", {"market_market_ioc": {"base_size": "1"}}, "INVALID_PRODUCT_ID"),
        (BTC_PERP, {"market_market_ioc": {"base_size": "0.5"}}, "INVALID_SIZE_PRECISION"),
        (BTC_PERP, {"limit_limit_gtc": {"base_size": "1", "limit_price": "90001"}}, "INVALID_PRICE_PRECISION"),
        (BTC_PERP, {"market_market_ioc": {"quote_size": "100"}}, "UNSUPPORTED_ORDER_CONFIGURATION"),
        (BTC_PERP, {"stop_limit_stop_limit_gtc": {"base_size": "1", "limit_price": "1", "stop_price": "1",
                                                  "stop_direction": "STOP_DIRECTION_STOP_DOWN"}},
         "UNSUPPORTED_ORDER_CONFIGURATION"),
        (BTC_PERP, {"limit_limit_gtc": {"base_size": "1", "limit_price": "99000", "post_only": True}},
         "INVALID_LIMIT_PRICE_POST_ONLY"),
    ],
)
def test_business_rejections_are_http_200_with_success_false(api: Api, double: DoubleHandle, product_id: str,
                                                              configuration: dict, error: str) -> None:
    body = {"client_order_id": "rejected", "product_id": product_id, "side": "BUY",
            "order_configuration": configuration}
    response = api.ok("POST", "/orders", json=body)
    assert response["success"] is False
    assert response["error_response"]["error"] == error
    assert set(response["error_response"]) == {"error", "message", "error_details", "preview_failure_reason",
                                               "new_order_failure_reason"}
    assert double.control.list_orders() == []
    assert double.control.requests(path="/orders", method="POST")[-1]["error"] == error


def test_closed_session_and_insufficient_margin_are_rejected(api: Api, double: DoubleHandle) -> None:
    double.control.set_product(BTC_PERP, session_open=False)
    closed = api.market_order("closed", "BUY", "1")
    assert closed["success"] is False and closed["error_response"]["error"] == "ORDER_ENTRY_DISABLED"
    product = api.ok("GET", f"/products/{BTC_PERP}")
    assert product["fcm_trading_session_details"]["is_session_open"] is False
    double.control.set_product(BTC_PERP, session_open=True)

    double.control.set_portfolio(cfm_usd_balance="100")
    poor = api.market_order("poor", "BUY", "5")  # needs 5 x 0.01 x 95005 x 10 % = 475 of margin
    assert poor["success"] is False and poor["error_response"]["error"] == "INSUFFICIENT_FUND"
    assert api.market_order("affordable", "BUY", "1")["success"] is True


def test_malformed_order_is_400_json(api: Api) -> None:
    response = api.request("POST", "/orders", json={"product_id": BTC_PERP, "side": "BUY"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "INVALID_ARGUMENT" and body["code"] == 3
    assert "client_order_id" in body["message"] and body["error_details"]


def test_list_pages_past_one_page_without_duplicates(api: Api, double: DoubleHandle) -> None:
    seeded = double.control.seed_orders(250, BTC_PERP)["order_ids"]
    first = api.ok("GET", "/orders/historical/batch", params={"order_status": "OPEN"})
    assert len(first["orders"]) == 100 and first["has_next"] is True and first["cursor"]
    listed = list_all(api, order_status=["OPEN"])
    assert [o["order_id"] for o in listed] == list(reversed(seeded))  # newest first
    assert all(o["status"] == "OPEN" for o in listed)


def test_open_listing_is_capped_at_1000_across_pages(api: Api, double: DoubleHandle) -> None:
    double.control.seed_orders(1200, BTC_PERP)
    listed = list_all(api, order_status="OPEN", limit=300)
    assert len(listed) == 1000
    assert len({o["order_id"] for o in listed}) == 1000
    # A sweep that cancels what it saw then finds the rest.
    ids = [o["order_id"] for o in listed]
    for start in range(0, len(ids), 100):
        results = api.ok("POST", "/orders/batch_cancel", json={"order_ids": ids[start:start + 100]})["results"]
        assert all(r["success"] for r in results)
    assert len(list_all(api, order_status="OPEN")) == 200
    # Other statuses are not capped.
    assert len(list_all(api, order_status="CANCELLED", limit=1000)) == 1000


def test_open_cannot_be_combined_with_other_statuses(api: Api) -> None:
    response = api.request("GET", "/orders/historical/batch", params={"order_status": ["OPEN", "CANCELLED"]})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "INVALID_ARGUMENT" and "OPEN cannot be combined" in body["message"]
    comma = api.request("GET", "/orders/historical/batch", params={"order_status": "OPEN,FILLED"})
    assert comma.status_code == 400
    assert api.request("GET", "/orders/historical/batch",
                       params={"order_status": ["PENDING", "QUEUED", "CANCEL_QUEUED"]}).status_code == 200


def test_dates_do_not_apply_to_open_orders(api: Api, double: DoubleHandle) -> None:
    double.control.seed_orders(3, BTC_PERP)
    double.control.seed_orders(2, BTC_PERP, status="CANCELLED")
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert len(list_all(api, order_status="OPEN", start_date=future)) == 3
    assert list_all(api, order_status="CANCELLED", start_date=future) == []
    assert len(list_all(api, order_status="CANCELLED")) == 2


def test_cursor_is_stable_while_orders_are_cancelled_and_placed(api: Api, double: DoubleHandle) -> None:
    seeded = double.control.seed_orders(300, BTC_PERP)["order_ids"]
    newest_first = list(reversed(seeded))
    page = api.ok("GET", "/orders/historical/batch", params={"order_status": "OPEN", "limit": 100})
    seen = [o["order_id"] for o in page["orders"]]
    assert seen == newest_first[:100]
    # Meanwhile: cancel orders on the page already read and further down, and place new ones.
    doomed = newest_first[50:60] + newest_first[150:170]
    api.ok("POST", "/orders/batch_cancel", json={"order_ids": doomed})
    for i in range(5):
        api.limit_order(f"late-{i}", "BUY", "80000")
    cursor = page["cursor"]
    while cursor:
        page = api.ok("GET", "/orders/historical/batch",
                      params={"order_status": "OPEN", "limit": 100, "cursor": cursor})
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["cursor"]
    expected_rest = [i for i in newest_first[100:] if i not in doomed]
    assert seen[100:] == expected_rest  # nothing skipped, nothing twice
    assert len(seen) == len(set(seen))


def test_filters(api: Api, double: DoubleHandle) -> None:
    double.control.seed_orders(4, BTC_PERP, side="BUY")
    double.control.seed_orders(3, ETH_PERP, side="SELL")
    spot = {"client_order_id": "spot", "product_id": "BTC-USD", "side": "BUY",
            "order_configuration": {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000.00"}}}
    assert api.ok("POST", "/orders", json=spot)["success"] is True

    def count(**params) -> int:
        return len(list_all(api, order_status="OPEN", **params))

    assert count() == 8
    assert count(product_ids=[ETH_PERP]) == 3
    assert count(product_ids=[ETH_PERP, BTC_PERP]) == 7
    assert count(product_type="SPOT") == 1
    assert count(product_type="FUTURE") == 7
    assert count(order_side="SELL") == 3
    assert count(contract_expiry_type="EXPIRING") == 7
    assert count(contract_expiry_type="PERPETUAL") == 0  # CFM perp-style products are listed as EXPIRING
    assert count(order_types=["MARKET"]) == 0
    some = [o["order_id"] for o in double.control.list_orders()[:2]]
    assert {o["order_id"] for o in list_all(api, order_ids=some)} == set(some)


def test_sort_by_limit_price_pages_in_price_order(api: Api, double: DoubleHandle) -> None:
    double.control.seed_orders(30, BTC_PERP, side="BUY")
    listed = list_all(api, order_status="OPEN", sort_by="LIMIT_PRICE", limit=7)
    prices = [float(o["order_configuration"]["limit_limit_gtc"]["limit_price"]) for o in listed]
    assert len(listed) == 30 and prices == sorted(prices, reverse=True)


def test_batch_cancel_limits_and_per_order_results(api: Api, double: DoubleHandle) -> None:
    too_many = api.request("POST", "/orders/batch_cancel", json={"order_ids": [f"id-{i}" for i in range(101)]})
    assert too_many.status_code == 400 and too_many.json()["error"] == "INVALID_ARGUMENT"
    empty = api.request("POST", "/orders/batch_cancel", json={"order_ids": []})
    assert empty.status_code == 400

    open_id = api.limit_order("c-open", "BUY", "90000")["order_id"]
    filled_id = api.market_order("c-filled", "BUY", "1")["order_id"]
    results = api.ok("POST", "/orders/batch_cancel",
                     json={"order_ids": [open_id, "no-such-order", filled_id, open_id]})["results"]
    assert [(r["order_id"], r["success"], r["failure_reason"]) for r in results] == [
        (open_id, True, "UNKNOWN_CANCEL_FAILURE_REASON"),
        ("no-such-order", False, "UNKNOWN_CANCEL_ORDER"),
        (filled_id, False, "ORDER_IS_FULLY_FILLED"),
        (open_id, False, "DUPLICATE_CANCEL_REQUEST"),
    ]
    order = api.ok("GET", f"/orders/historical/{open_id}")["order"]
    assert order["status"] == "CANCELLED" and order["outstanding_hold_amount"] == "0"


def test_cancel_can_pass_through_cancel_queued(api: Api, double: DoubleHandle) -> None:
    double.control.set_config(cancel_queued_delay=0.5)
    order_id = api.limit_order("slow-cancel", "BUY", "90000")["order_id"]
    assert api.ok("POST", "/orders/batch_cancel", json={"order_ids": [order_id]})["results"][0]["success"]
    queued = api.ok("GET", f"/orders/historical/{order_id}")["order"]
    assert queued["status"] == "CANCEL_QUEUED" and queued["pending_cancel"] is True
    assert len(list_all(api, order_status="CANCEL_QUEUED")) == 1
    time.sleep(0.8)
    assert api.ok("GET", f"/orders/historical/{order_id}")["order"]["status"] == "CANCELLED"


def test_orders_are_scoped_to_the_keys_portfolio(api: Api, double: DoubleHandle) -> None:
    mine = api.limit_order("mine", "BUY", "90000")["order_id"]
    other_key = double.new_key("ed25519", portfolio_uuid="aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")
    assert api.ok("GET", "/orders/historical/batch", key=other_key)["orders"] == []
    missing = api.request("GET", f"/orders/historical/{mine}", key=other_key)
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"
    results = api.ok("POST", "/orders/batch_cancel", json={"order_ids": [mine]}, key=other_key)["results"]
    assert results[0]["failure_reason"] == "UNKNOWN_CANCEL_ORDER"
    assert api.ok("GET", f"/orders/historical/{mine}")["order"]["status"] == "OPEN"


def test_unknown_paths_and_methods_are_json_errors(api: Api) -> None:
    missing = api.get("/no/such/endpoint")
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"
    wrong_method = api.request("DELETE", "/orders")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 12
