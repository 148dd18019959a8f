"""FeedMonitor as the probe uses it: silence before the first message counts, heartbeat timing, the acknowledgement moment."""

from __future__ import annotations

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.websocket import FeedMonitor


def heartbeat(seq, counter):
    return {"channel": "heartbeats", "sequence_num": seq, "events": [{"heartbeat_counter": counter}]}


def test_silence_from_the_start_is_a_gap():
    monitor = FeedMonitor(clock=lambda: 0.0)
    monitor.watch(["BIP"])
    monitor.begin(10.0)
    monitor.observe({"channel": "subscriptions", "sequence_num": 0, "events": [{"subscriptions": {"ticker": ["BIP"]}}]}, at=10.01)
    monitor.observe(heartbeat(1, 5), at=13.0)
    monitor.observe({"channel": "ticker", "sequence_num": 2, "events": [{"tickers": [{"product_id": "BIP", "price": "1"}]}]}, at=14.0)
    monitor.observe(heartbeat(3, 6), at=14.0)
    report = monitor.report(now=14.5, stale_after=2.0)
    assert monitor.acknowledged_at == 10.01
    assert monitor.max_heartbeat_interval_s == 3.0 and monitor.heartbeats == 2
    assert report["products"]["BIP"]["max_gap_s"] == 4.0 and report["max_message_gap_s"] == 2.99
