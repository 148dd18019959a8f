"""FeedMonitor: sequence and heartbeat gaps, per-product gaps and staleness against the SOP's 5 s / 30 s."""

from __future__ import annotations

import keyfactory as kf
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.websocket import FeedMonitor, subscribe_message


def ticker(seq, product, price):
    return {"channel": "ticker", "sequence_num": seq, "events": [{"type": "update", "tickers": [{"product_id": product, "price": price}]}]}


def heartbeat(seq, counter):
    return {"channel": "heartbeats", "sequence_num": seq, "events": [{"current_time": "x", "heartbeat_counter": counter}]}


def test_gaps_and_staleness():
    monitor = FeedMonitor(clock=lambda: 0.0)
    monitor.watch(["BIP", "ETP"])
    monitor.observe(heartbeat(0, "10"), at=0.0)  # counters may be strings in older samples
    monitor.observe(ticker(1, "BIP", "95000"), at=0.5)
    monitor.observe(heartbeat(2, 11), at=1.0)
    monitor.observe(heartbeat(5, 14), at=2.0)  # 2 messages and 2 heartbeats lost
    monitor.observe(ticker(6, "BIP", "95010"), at=7.5)
    report = monitor.report(now=8.0)
    assert report["sequence_gaps"] == [{"expected": 3, "received": 5, "missed": 2}]
    assert report["heartbeat_gaps"] == [{"expected": 12, "received": 14, "missed": 2}]
    assert report["products"]["BIP"]["max_gap_s"] == 7.0 and not report["products"]["BIP"]["stale"]
    assert report["products"]["ETP"]["stale"] and not report["products"]["ETP"]["critical"]  # never updated for 8 s
    assert report["stale"] and report["heartbeat_counter"] == 14
    assert monitor.report(now=40.0)["critical"]


def test_new_connection_restarts_sequence_tracking():
    monitor = FeedMonitor(clock=lambda: 0.0)
    monitor.observe(heartbeat(40, 1), at=0)
    monitor.new_connection()
    monitor.observe(heartbeat(0, 1), at=1)
    monitor.observe(heartbeat(1, 2), at=2)
    assert monitor.report(now=2)["sequence_gaps"] == []


def test_auth_error_is_flagged():
    monitor = FeedMonitor(clock=lambda: 0.0)
    monitor.observe({"type": "error", "message": "authentication failure"})
    assert monitor.report(now=0)["auth_failed"]


def test_subscribe_messages_one_channel_each_with_a_fresh_jwt():
    creds = load_credentials(key_name=kf.key_name(), private_key=kf.ec_pem())
    hb = subscribe_message("heartbeats", ["BIP"], creds)
    assert hb["product_ids"] == [] and hb["channel"] == "heartbeats" and hb["jwt"]
    assert subscribe_message("ticker", ["BIP"])["product_ids"] == ["BIP"] and "jwt" not in subscribe_message("ticker", ["BIP"])
    assert subscribe_message("user", [], creds)["jwt"] != hb["jwt"]
