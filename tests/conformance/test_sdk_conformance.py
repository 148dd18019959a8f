"""The official SDK, unmodified, against the exchange double.

``coinbase-advanced-py`` 1.8.4 is pointed at the double only through its ``base_url`` and the
environment (``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` trust the double's CA), and must call
every endpoint the collection uses, with an ECDSA key and with an Ed25519 key. If the double
drifts from what the SDK sends or expects (URLs, query encoding, JWT shape, field names), this
is the test that fails.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from coinbase import jwt_generator
from coinbase.rest import RESTClient
from coinbase.websocket import WebsocketResponse, WSClient, WSUserClient
from requests.exceptions import HTTPError

from exchange_double.keys import GeneratedKey
from exchange_double.testing import DoubleHandle, running_double

pytestmark = pytest.mark.timeout(120)

BTC_PERP = "BIP-20DEC30-CDE"
ETH_PERP = "ETP-20DEC30-CDE"


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoubleHandle]:
    # Default behaviour (moving market, per-key rate limit), faster heartbeats to keep the test
    # short, and a higher per-IP public limit because every test here shares one client IP.
    with running_double(tmp_path_factory.mktemp("conformance"), tick_interval=0.2,
                        heartbeat_interval=0.25, public_rps=100) as handle:
        yield handle


@pytest.fixture(autouse=True)
def trust_the_double(double: DoubleHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(double.ca_path))
    monkeypatch.setenv("SSL_CERT_FILE", str(double.ca_path))


@pytest.fixture(params=["ec", "ed25519"])
def key(request: pytest.FixtureRequest, double: DoubleHandle) -> GeneratedKey:
    """A fresh key in a fresh portfolio, so tests never see each other's orders."""
    return double.new_key(request.param, permissions=["view", "trade"], portfolio_uuid=str(uuid.uuid4()))


@pytest.fixture
def client(double: DoubleHandle, key: GeneratedKey) -> RESTClient:
    return RESTClient(api_key=key.name, api_secret=key.secret, base_url=double.sdk_base_url, timeout=15)


def portfolio_of(double: DoubleHandle, key: GeneratedKey) -> str:
    return next(k["portfolio_uuid"] for k in double.control.list_keys() if k["name"] == key.name)


# ---------------------------------------------------------------------- REST
def test_time_and_key_permissions(client: RESTClient, double: DoubleHandle, key: GeneratedKey) -> None:
    server_time = client.get_unix_time()
    assert abs(int(server_time.epoch_seconds) - time.time()) < 5
    assert int(server_time.epoch_millis) // 1000 == int(server_time.epoch_seconds)
    assert server_time.iso.endswith("Z")
    permissions = client.get_api_key_permissions()
    assert (permissions.can_view, permissions.can_trade, permissions.can_transfer) == (True, True, False)
    assert permissions.portfolio_uuid == portfolio_of(double, key)
    assert permissions.portfolio_type == "DEFAULT"


def test_accounts_with_cursor(client: RESTClient) -> None:
    first = client.get_accounts(limit=2)
    assert len(first.accounts) == 2 and first.has_next and first.size == 2
    rest = client.get_accounts(limit=250, cursor=first.cursor)
    assert not rest.has_next and rest.cursor == ""
    uuids = [a.uuid for a in first.accounts + rest.accounts]
    assert len(uuids) == len(set(uuids)) == len(client.get_accounts().accounts)
    one = client.get_account(first.accounts[0].uuid).account
    assert one.currency == first.accounts[0].currency
    assert set(one.available_balance) == {"value", "currency"}


def test_products_private_and_public(client: RESTClient) -> None:
    futures = client.get_products(product_type="FUTURE")
    assert futures.num_products == len(futures.products) == 4
    assert all(p.product_type == "FUTURE" for p in futures.products)
    chosen = client.get_products(product_ids=[BTC_PERP, "BTC-USD"])
    assert {p.product_id for p in chosen.products} == {BTC_PERP, "BTC-USD"}
    perp = client.get_product(BTC_PERP)
    details = perp.future_product_details
    assert perp.display_name == "BTC PERP" and details["contract_expiry_type"] == "EXPIRING"
    assert details["funding_rate"] and details["funding_time"] and details["funding_interval"]
    assert perp.fcm_trading_session_details["is_session_open"] is True
    public = client.get_public_product(ETH_PERP)
    assert public.future_product_details["contract_size"] == "0.1"
    public_list = client.get_public_products(limit=2, offset=1)
    assert len(public_list.products) == 2 and public_list.num_products == 5


def test_order_lifecycle(client: RESTClient, double: DoubleHandle, key: GeneratedKey) -> None:
    price = float(client.get_product(BTC_PERP).price)
    far_below = str(int(price * 0.8 // 5 * 5))
    resting = client.limit_order_gtc(client_order_id="conf-gtc", product_id=BTC_PERP, side="BUY",
                                     base_size="1", limit_price=far_below)
    assert resting.success and resting.success_response["client_order_id"] == "conf-gtc"
    order_id = resting.success_response["order_id"]
    again = client.limit_order_gtc(client_order_id="conf-gtc", product_id=BTC_PERP, side="BUY",
                                   base_size="1", limit_price=far_below)
    assert again.success_response["order_id"] == order_id  # idempotent on client_order_id
    generic = client.create_order(client_order_id="conf-create", product_id=ETH_PERP, side="SELL",
                                  order_configuration={"limit_limit_gtc": {"base_size": "2", "limit_price": "9000"}})
    assert generic.success and generic.order_configuration.limit_limit_gtc.limit_price == "9000"

    order = client.get_order(order_id).order
    assert (order.status, order.side, order.client_order_id) == ("OPEN", "BUY", "conf-gtc")
    assert order.order_configuration.limit_limit_gtc.base_size == "1"

    double.control.seed_orders(5, BTC_PERP, portfolio_uuid=portfolio_of(double, key))
    first = client.list_orders(order_status=["OPEN"], product_ids=[BTC_PERP], limit=4)
    assert len(first.orders) == 4 and first.has_next
    second = client.list_orders(order_status=["OPEN"], product_ids=[BTC_PERP], limit=4, cursor=first.cursor)
    assert len(second.orders) == 2 and not second.has_next
    every_open = [o.order_id for o in first.orders + second.orders]
    assert order_id in every_open and generic.success_response["order_id"] not in every_open
    assert len(client.list_orders(order_status=["OPEN"], product_type="FUTURE").orders) == 7

    results = client.cancel_orders(order_ids=every_open).results
    assert all(r.success for r in results) and {r.order_id for r in results} == set(every_open)
    assert client.get_order(order_id).order.status == "CANCELLED"
    assert [o.product_id for o in client.list_orders(order_status=["OPEN"]).orders] == [ETH_PERP]


def test_market_order_positions_balance_and_close(client: RESTClient) -> None:
    bought = client.market_order_buy(client_order_id="", product_id=BTC_PERP, base_size="3")
    assert bought.success
    assert client.get_order(bought.success_response["order_id"]).order.status == "FILLED"
    positions = client.list_futures_positions().positions
    assert [(p.product_id, p.side, p.number_of_contracts) for p in positions] == [(BTC_PERP, "LONG", "3")]
    position = client.get_futures_position(BTC_PERP).position
    assert position.expiration_time == "2030-12-20T16:00:00Z" and float(position.avg_entry_price) > 0
    summary = client.get_futures_balance_summary().balance_summary
    assert set(summary.initial_margin) == {"value", "currency"} and float(summary.initial_margin["value"]) > 0
    assert isinstance(summary.liquidation_buffer_percentage, str)

    partial = client.close_position(client_order_id="conf-close-1", product_id=BTC_PERP, size="1")
    assert partial.success and partial.success_response["side"] == "SELL"
    retried = client.close_position(client_order_id="conf-close-1", product_id=BTC_PERP, size="1")
    assert retried.success_response["order_id"] == partial.success_response["order_id"]
    assert client.get_futures_position(BTC_PERP).position.number_of_contracts == "2"
    assert client.close_position(client_order_id="conf-close-2", product_id=BTC_PERP).success
    assert client.list_futures_positions().positions == []
    nothing = client.close_position(client_order_id="conf-close-3", product_id=BTC_PERP)
    assert nothing.success is False and nothing.error_response["error"] == "NO_OPEN_POSITION"


def test_fills_with_start_sequence_timestamp_and_cursor(client: RESTClient) -> None:
    start = client.get_unix_time().iso
    for i in range(5):
        client.market_order_buy(client_order_id=f"conf-fill-{i}", product_id=ETH_PERP, base_size="1")
    seen, cursor = [], None
    for _ in range(10):
        page = client.get_fills(start_sequence_timestamp=start, product_ids=[ETH_PERP], limit=2, cursor=cursor)
        seen += [f.trade_id for f in page.fills]
        cursor = page.cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
    fill = client.get_fills(limit=1).fills[0]
    assert fill.trade_type == "FILL" and fill.side == "BUY" and fill.liquidity_indicator == "TAKER"
    assert float(fill.commission) > 0 and fill.sequence_timestamp.endswith("Z")


def test_business_rejection_comes_back_as_success_false(client: RESTClient) -> None:
    rejected = client.market_order_buy(client_order_id="conf-bad", product_id="NOPE-USD", base_size="1")
    assert rejected.success is False
    assert rejected.error_response["error"] == "INVALID_PRODUCT_ID"


def test_sdk_error_messages_for_401_and_403(double: DoubleHandle, key: GeneratedKey) -> None:
    view_only = double.new_key(key.key_type, permissions=["view"])
    client = RESTClient(api_key=view_only.name, api_secret=view_only.secret, base_url=double.sdk_base_url, timeout=15)
    with pytest.raises(HTTPError, match="Missing Required Scopes"):
        client.cancel_orders(order_ids=["anything"])
    double.control.revoke_key(view_only.name)
    with pytest.raises(HTTPError, match="401 Client Error: Unauthorized Unauthorized"):
        client.get_accounts()


def test_key_file_in_the_portal_format(double: DoubleHandle, key: GeneratedKey, tmp_path: Path) -> None:
    path = key.write_key_file(tmp_path / "cdp_api_key.json")
    client = RESTClient(key_file=str(path), base_url=double.sdk_base_url, timeout=15)
    assert client.get_api_key_permissions().can_trade is True


def test_a_jwt_minted_by_the_sdk_is_accepted(double: DoubleHandle, key: GeneratedKey) -> None:
    path = "/api/v3/brokerage/accounts"
    token = jwt_generator.build_rest_jwt(f"GET {double.sdk_base_url}{path}", key.name, key.secret)
    response = requests.get(f"{double.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=15)
    assert response.status_code == 200 and response.json()["accounts"]
    bare_host = jwt_generator.build_rest_jwt(jwt_generator.format_jwt_uri("GET", path).replace(
        "api.coinbase.com", "localhost"), key.name, key.secret)
    assert requests.get(f"{double.url}{path}", headers={"Authorization": f"Bearer {bare_host}"},
                        timeout=15).status_code == 200


# ---------------------------------------------------------------------- WebSocket
class Inbox:
    """Collects raw messages from the SDK's background thread; waits for a condition."""

    def __init__(self) -> None:
        self.raw: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, message: str) -> None:
        with self._changed:
            self.raw.append(message)
            self._changed.notify_all()

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in list(self.raw)]

    def wait_for(self, condition: Callable[[list[dict[str, Any]]], bool], timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self.parsed()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"condition not met; received {self.raw[-5:]}")
                self._changed.wait(remaining)
        return self.parsed()


def sdk_parse(message: dict[str, Any]) -> WebsocketResponse:
    """The SDK's own parser (it pops fields as it reads, hence the copy)."""
    return WebsocketResponse(copy.deepcopy(message))


def channel_messages(messages: list[dict[str, Any]], channel: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("channel") == channel]


def test_ws_client_heartbeats_and_ticker(double: DoubleHandle, key: GeneratedKey) -> None:
    inbox = Inbox()
    ws = WSClient(api_key=key.name, api_secret=key.secret, base_url=double.ws_url, on_message=inbox,
                  timeout=10, retry=False)
    ws.open()
    try:
        ws.heartbeats()
        ws.ticker([BTC_PERP, ETH_PERP])
        messages = inbox.wait_for(lambda ms: len(channel_messages(ms, "heartbeats")) >= 3
                                  and len(channel_messages(ms, "ticker")) >= 2)
    finally:
        ws.close()
    for message in messages:
        sdk_parse(message)  # the SDK's parser accepts every message
    beats = [m["events"][0]["heartbeat_counter"] for m in channel_messages(messages, "heartbeats")]
    assert beats == list(range(beats[0], beats[0] + len(beats)))
    sequences = [m["sequence_num"] for m in messages]
    assert sequences == list(range(len(messages)))
    snapshot = channel_messages(messages, "ticker")[0]["events"][0]
    assert snapshot["type"] == "snapshot" and {t["product_id"] for t in snapshot["tickers"]} == {BTC_PERP, ETH_PERP}
    parsed = sdk_parse(channel_messages(messages, "ticker")[0])
    assert parsed.events[0].tickers[0].best_bid


def test_ws_user_client_user_and_balance_channels(double: DoubleHandle, key: GeneratedKey,
                                                  client: RESTClient) -> None:
    client.limit_order_gtc(client_order_id="conf-ws-open", product_id=ETH_PERP, side="BUY",
                           base_size="1", limit_price="1000")
    inbox = Inbox()
    ws = WSUserClient(api_key=key.name, api_secret=key.secret, base_url=double.ws_user_url, on_message=inbox,
                      timeout=10, retry=False)
    ws.open()
    try:
        ws.user([ETH_PERP])
        ws.futures_balance_summary()
        inbox.wait_for(lambda ms: channel_messages(ms, "user") and channel_messages(ms, "futures_balance_summary"))
        client.market_order_buy(client_order_id="conf-ws-fill", product_id=ETH_PERP, base_size="2")
        messages = inbox.wait_for(lambda ms: any(
            o.get("status") == "FILLED"
            for m in channel_messages(ms, "user") for e in m["events"] for o in e.get("orders") or []))
    finally:
        ws.close()
    user = [sdk_parse(m) for m in channel_messages(messages, "user")]
    snapshot = user[0].events[0]
    assert snapshot.type == "snapshot"
    assert [o.client_order_id for o in snapshot.orders] == ["conf-ws-open"]
    balance = sdk_parse(channel_messages(messages, "futures_balance_summary")[0]).events[0]
    assert balance.fcm_balance_summary.cfm_usd_balance == "250000.00"
    subscribed = double.control.requests(method="WS", key=key.name)
    assert {e["ws"]["channel"] for e in subscribed} == {"user", "futures_balance_summary"}
    assert all(e["ws"]["endpoint"] == "user" for e in subscribed)
