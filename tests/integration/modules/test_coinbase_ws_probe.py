"""coinbase_ws_probe against the double's WebSockets: a healthy feed, and every feed fault the double can inject."""

from __future__ import annotations

import threading
import time

import pytest

BIP, ETP = "BIP-20DEC30-CDE", "ETP-20DEC30-CDE"


@pytest.fixture
def ws_args(connection, clean_double):
    def _args(key=None, **extra):
        args = connection(key, ws_url=clean_double.ws_url, ws_user_url=clean_double.ws_user_url, products=["BTC-PERP"], listen=2.0)
        args.update(extra)
        return args

    return _args


class Background:
    """Run the probe in a thread so that a test can inject a fault once it is connected and subscribed."""

    def __init__(self, run_module, args):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(run_module, args), daemon=True)
        self.thread.start()

    def _run(self, run_module, args):
        self.result = run_module("coinbase_ws_probe", args)

    def join(self):
        self.thread.join(60)
        assert self.result is not None, "the probe did not finish"
        return self.result


def wait_subscribed(control, endpoints=("market",), timeout=5.0):
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        live = [c for c in control.ws_connections() if c["subscriptions"]]
        if all(any(c["endpoint"] == e and "heartbeats" in c["subscriptions"] for c in live) for e in endpoints):
            return
        time.sleep(0.05)
    raise AssertionError("the probe did not subscribe within %s s" % timeout)


def test_healthy_feeds_with_auth(make_key, ws_args, run_module, clean_double):
    key = make_key(permissions="view")
    result = run_module("coinbase_ws_probe", ws_args(key, auth=True, listen=2.5))
    assert result["failed"] is False and result["changed"] is False
    assert result["ok"] is True and result["problems"] == [] and result["disconnects"] == 0
    assert result["product_ids"] == [{"requested": "BTC-PERP", "product_id": BIP, "display_name": "BTC PERP"}]
    market, user = result["market"], result["user"]
    for report in (market, user):
        assert report["connected"] and report["subscribed_within_5s"] and report["subscribe_ack_ms"] is not None
        assert report["heartbeat"]["received"] >= 2 and report["heartbeat"]["gaps"] == [] and report["sequence_gaps"] == []
        assert not report["stale"] and not report["auth_failed"]
    assert market["by_channel"]["ticker"] >= 2 and market["products"][BIP]["updates"] >= 2
    # the double moves prices once a second; an unchanged price sends no ticker, so allow one quiet tick
    assert market["products"][BIP]["max_gap_s"] < 3 and user["by_channel"]["user"] >= 1
    subscribes = [r for r in clean_double.control.requests(method="WS") if r["ws"]["event"] == "subscribe"]
    assert {(r["ws"]["endpoint"], r["ws"]["channel"], r.get("key")) for r in subscribes} == {
        ("market", "heartbeats", None), ("market", "ticker", None),  # no JWT on public market data
        ("user", "heartbeats", key.name), ("user", "user", key.name),
    }


def test_stall_is_stale_and_critical(ws_args, run_module, clean_double):
    probe = Background(run_module, ws_args(listen=3.5, stale_after=1.0, critical_after=2.0))
    wait_subscribed(clean_double.control)
    clean_double.control.ws_stall(2.5)
    result = probe.join()
    market = result["market"]
    assert market["stale"] and market["critical"] and result["stale"] and result["critical"] and not result["ok"]
    assert market["products"][BIP]["max_gap_s"] >= 2.3 and market["heartbeat"]["max_interval_s"] >= 2.3
    assert market["products"][BIP]["stale_now"] is False  # the feed came back before the end
    assert any("%s had no update for" % BIP in p and "critical after 2 s" in p for p in result["problems"])
    assert market["disconnects"] == []  # a stalled feed keeps the socket open


def test_stall_of_one_product_only_marks_that_product(ws_args, run_module, clean_double):
    # BIP's price changes on almost every tick of the double (once a second); ETP's is the one stalled.
    probe = Background(run_module, ws_args(products=[BIP, ETP], listen=4.0, stale_after=2.5))
    wait_subscribed(clean_double.control)
    clean_double.control.ws_stall(3.2, product_ids=[ETP])
    market = probe.join()["market"]
    assert market["products"][ETP]["stale"] and market["products"][ETP]["max_gap_s"] >= 3.0
    assert not market["products"][BIP]["stale"]
    assert market["heartbeat"]["max_interval_s"] < 1.5 and market["max_message_gap_s"] < 1.5


def test_sop_thresholds_by_default_5s_stale_not_yet_30s_critical(ws_args, run_module, clean_double):
    probe = Background(run_module, ws_args(listen=6.5))
    wait_subscribed(clean_double.control)
    clean_double.control.ws_stall(5.6)
    result = probe.join()
    assert result["thresholds"]["stale_after_s"] == 5 and result["thresholds"]["critical_after_s"] == 30
    assert result["market"]["products"][BIP]["stale"] is True and result["stale"] is True and result["critical"] is False


@pytest.mark.parametrize("mode, code", [("abort", 1006), ("close", 1011)])
def test_drop_is_counted_and_the_probe_reconnects(ws_args, run_module, clean_double, mode, code):
    probe = Background(run_module, ws_args(listen=3.0))
    wait_subscribed(clean_double.control)
    clean_double.control.ws_drop(mode=mode)
    result = probe.join()
    market = result["market"]
    assert result["disconnects"] == 1 and [d["code"] for d in market["disconnects"]] == [code]
    assert len(market["connections"]) == 2 and market["connections"][1]["subscribe_ack_ms"] is not None
    assert 0.4 < market["downtime_s"] < 1.5 and market["products"][BIP]["updates"] >= 2
    assert any("1 disconnect(s)" in p for p in result["problems"])


def test_drop_without_reconnect_stays_down(ws_args, run_module, clean_double):
    probe = Background(run_module, ws_args(listen=2.5, reconnect=False))
    wait_subscribed(clean_double.control)
    clean_double.control.ws_drop()
    market = probe.join()["market"]
    assert len(market["connections"]) == 1 and len(market["disconnects"]) == 1 and market["downtime_s"] > 1


def test_refused_connections_then_recovery(ws_args, run_module, clean_double):
    clean_double.control.ws_refuse(0.8)
    market = run_module("coinbase_ws_probe", ws_args(listen=3.0))["market"]
    assert market["connect_errors"] and "503" in market["connect_errors"][0]["error"]
    assert market["connected"] and market["downtime_s"] >= 0.8 and market["products"][BIP]["updates"] >= 1


def test_heartbeat_gap_is_detected(ws_args, run_module, clean_double):
    probe = Background(run_module, ws_args(listen=3.0))
    wait_subscribed(clean_double.control)
    time.sleep(1.1)  # the probe must have seen one heartbeat (one a second) to notice the next one skip
    clean_double.control.ws_heartbeat_gap(skip=2)
    result = probe.join()
    assert [g["missed"] for g in result["market"]["heartbeat"]["gaps"]] == [2]
    assert any("2 heartbeat(s) missed" in p for p in result["problems"])


def test_sequence_gap_is_detected_on_both_endpoints(make_key, ws_args, run_module, clean_double):
    key = make_key(permissions="view")
    probe = Background(run_module, ws_args(key, auth=True, listen=2.5))
    wait_subscribed(clean_double.control, ("market", "user"))
    time.sleep(0.3)  # let the acknowledgements arrive first: a gap before the first message is invisible
    clean_double.control.ws_sequence_gap(skip=3)
    result = probe.join()
    for name in ("market", "user"):
        assert [g["missed"] for g in result[name]["sequence_gaps"]] == [3], name
    assert not result["ok"] and any("3 message(s) lost" in p for p in result["problems"])


def test_revoked_key_is_an_auth_failure_on_the_user_channel_only(make_key, ws_args, run_module, clean_double):
    key = make_key(permissions="view")
    clean_double.control.revoke_key(key.name)
    result = run_module("coinbase_ws_probe", ws_args(key, auth=True, listen=1.5))
    assert result["auth_failed"] is True and result["user"]["auth_failed"] is True
    assert result["user"]["errors"] == ["authentication failure", "authentication failure"]
    assert result["market"]["auth_failed"] is False and result["market"]["products"][BIP]["updates"] >= 1
    assert any(p.startswith("user: Coinbase refused the key") for p in result["problems"])
    assert len(result["user"]["connections"]) == 1  # no reconnect storm with a refused key


def test_missing_view_scope_on_the_user_channel(make_key, ws_args, run_module):
    result = run_module("coinbase_ws_probe", ws_args(make_key(permissions="trade"), auth=True, listen=1.5))
    assert not result["ok"] and any("lacks the view scope" in e for e in result["user"]["errors"])


def test_names_are_used_as_given_when_rest_is_unreachable(ws_args, run_module):
    result = run_module("coinbase_ws_probe", ws_args(api_url="https://127.0.0.1:9", products=[BIP], retry_max_delay=0.1, timeout=2, listen=1.5))
    assert result["product_ids"] == [{"requested": BIP, "product_id": BIP, "display_name": None}]
    assert result["market"]["products"][BIP]["updates"] >= 1 and result["ok"] is True


@pytest.mark.parametrize("extra, expected", [
    ({"ws_url": "https://localhost"}, "ws_url must be a WebSocket URL"),
    ({"auth": True}, "auth needs an API key"),
    ({"listen": 0}, "listen must be greater than 0"),
    ({"stale_after": 10, "critical_after": 5}, "critical_after (5 s) must not be shorter than stale_after"),
    ({"products": ["NOPE-PERP"]}, "'NOPE-PERP' matches no product"),
])
def test_bad_arguments_name_the_argument(ws_args, run_module, extra, expected):
    result = run_module("coinbase_ws_probe", ws_args(**extra))
    assert result["failed"] and expected in result["msg"], result["msg"]
