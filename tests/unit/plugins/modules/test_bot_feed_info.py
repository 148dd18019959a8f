"""bot_feed_info: disconnects, downtime and outages from a websocket.log with UTC times, data age
from market.json against this clock, the wait for a reconnect and for a clean period, rotation."""

from __future__ import annotations

import json
import threading
import time

import pytest

from support.modules import run_module


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".%03dZ" % int((epoch % 1) * 1000)


def write_log(path, events, mode="w"):
    """events: (seconds ago, level, message)."""
    now = time.time()
    with open(path, mode) as handle:
        for ago, level, message in events:
            handle.write("%s %s %s\n" % (stamp(now - ago), level, message))


def write_market(path, ages, written_ago=0.3, connected=True):
    now = time.time()
    temporary = path.with_name(".market.tmp")  # atomically, as the bot does
    temporary.write_text(json.dumps({
        "written_at_epoch": now - written_ago,
        "products": {pid: {"price": "1", "last_update_epoch": None if age is None else now - age} for pid, age in ages.items()},
        "connection": {"connected": connected},
    }))
    temporary.replace(path)


@pytest.fixture
def files(tmp_path):
    log, market, mode = tmp_path / "websocket.log", tmp_path / "market.json", tmp_path / "trading_mode"
    mode.write_text("NORMAL\n")
    return log, market, mode


def run(files, **extra):
    log, market, mode = files
    return run_module("bot_feed_info", dict(log_path=str(log), market_state_path=str(market), trading_mode_path=str(mode),
                                            reach=False, **extra))


def test_counts_disconnects_and_downtime_in_the_window(files):
    log, market = files[0], files[1]
    write_log(log, [
        (5000, "WARNING", "disconnect code=1011 reason=old"),           # before the hour: not counted
        (4990, "INFO", "connect url=wss://x channels=heartbeats,ticker attempt=0"),
        (600, "WARNING", "disconnect code=1006 reason=-"),
        (599, "INFO", "reconnect attempt=1 in 1.0s"),
        (598, "ERROR", "error connect url=wss://x: OSError: refused"),
        (590, "INFO", "connect url=wss://x channels=heartbeats,ticker attempt=2"),
        (300, "WARNING", "disconnect reason=no message for 10s (feed stalled), closing to reconnect"),
        (298, "INFO", "connect url=wss://x attempt=1"),
        (100, "WARNING", "stale data for BIP-20DEC30-CDE: 6.0s old (entries blocked)"),
        (50, "INFO", "subscribed {}"),
    ])
    write_market(market, {"BIP-20DEC30-CDE": 0.5, "ETP-20DEC30-CDE": 1.5})
    result = run(files)
    assert (result["disconnects"], result["connect_errors"], result["connects"]) == (2, 1, 2)
    assert result["downtime_s"] == pytest.approx(12, abs=0.1)  # 10 s + 2 s
    assert result["longest_outage_s"] == pytest.approx(10, abs=0.1)
    assert result["connected"] is True and result["connected_source"] == "log" and result["current_outage_s"] == 0
    assert [o["cause"].split()[0] for o in result["outages"]] == ["disconnect", "disconnect"]
    # The SOP's grep: connect / disconnect / error lines (reconnect included), nothing else.
    assert len(result["lines"]) == 6 and not any("subscribed" in line or "stale data" in line for line in result["lines"])
    assert result["market"]["max_data_age_s"] == pytest.approx(1.5, abs=0.1) and result["market"]["stale"] is False
    assert result["trading_mode"] == "NORMAL" and result["changed"] is False


def test_an_ongoing_outage_counts_until_now_and_a_stop_is_not_a_disconnect(files):
    log, market = files[0], files[1]
    write_log(log, [
        (400, "INFO", "connect url=wss://x attempt=0"),
        (200, "INFO", "stop: signal received, closing the feed"),
    ])
    write_market(market, {"BIP-20DEC30-CDE": 200}, written_ago=199)
    result = run(files, since=time.time() - 300)
    assert result["connected"] is False and result["disconnects"] == 0
    assert result["current_outage_s"] == pytest.approx(200, abs=1) and result["downtime_s"] == pytest.approx(200, abs=1)
    assert result["outages"][-1]["to"] is None and result["outages"][-1]["cause"] == "service stopped"
    assert result["market"]["stale"] and result["market"]["critical"]  # 200 s old, and the file is not rewritten
    assert result["since"] == {"epoch": pytest.approx(time.time() - 300, abs=1), "disconnects": 0, "connects": 0, "errors": 0, "restarts": 0}


@pytest.mark.parametrize("ages, stale, critical", [
    ({"A": 4.0, "B": 1.0}, False, False),
    ({"A": 6.0, "B": 1.0}, True, False),
    ({"A": 29.0, "B": 1.0}, True, False),
    ({"A": 31.0, "B": 1.0}, True, True),
    ({"A": None, "B": 1.0}, True, False),   # no data yet: stale, not (yet) critical
])
def test_both_sides_of_both_staleness_thresholds(files, ages, stale, critical):
    write_market(files[1], ages)
    market = run(files)["market"]
    assert (market["stale"], market["critical"]) == (stale, critical)


def test_a_missing_market_file_is_stale_and_the_mode_is_reported(files):
    files[2].unlink()
    result = run(files)
    assert result["market"]["present"] is False and result["market"]["stale"] is True
    assert result["trading_mode"] == "ABSENT" and result["connected"] is False and result["connected_source"] == "none"


def test_the_rotated_log_is_read_too(files):
    log = files[0]
    write_log(str(log) + ".1", [(700, "WARNING", "disconnect code=1011 reason=a"), (699, "INFO", "connect url=wss://x attempt=1")])
    write_log(log, [(100, "WARNING", "disconnect code=1011 reason=b"), (99, "INFO", "connect url=wss://x attempt=1")])
    write_market(files[1], {"A": 0.2})
    result = run(files)
    assert result["disconnects"] == 2 and len(result["log"]["files"]) == 2


def test_wait_connected_returns_when_the_bot_reconnects(files):
    log, market = files[0], files[1]
    write_log(log, [(5, "WARNING", "disconnect code=1006 reason=-")])
    write_market(market, {"A": 8.0})

    def reconnect():
        time.sleep(0.8)
        write_log(log, [(0, "INFO", "connect url=wss://x attempt=1")], mode="a")
        write_market(market, {"A": 0.1})

    threading.Thread(target=reconnect).start()
    result = run(files, wait="connected", wait_timeout=10, poll_interval=0.1)
    assert result["wait"]["met"] is True and 0.5 < result["wait"]["waited_s"] < 5
    assert result["connected"] is True


def test_wait_connected_gives_up_at_the_timeout(files):
    write_log(files[0], [(5, "WARNING", "disconnect code=1006 reason=-")])
    write_market(files[1], {"A": 8.0})
    result = run(files, wait="connected", wait_timeout=0.5, poll_interval=0.1)
    assert result["wait"]["met"] is False and result["wait"]["why"] == "not connected"


def test_wait_clean_starts_again_after_a_disconnect(files):
    log, market = files[0], files[1]
    write_log(log, [(30, "INFO", "connect url=wss://x attempt=0")])
    write_market(market, {"A": 0.2})
    stop = threading.Event()

    def feed():  # keeps market.json fresh; one disconnect + reconnect 0.5 s in
        time.sleep(0.5)
        write_log(log, [(0, "WARNING", "disconnect code=1006 reason=-"), (0, "INFO", "connect url=wss://x attempt=1")], mode="a")
        while not stop.is_set():
            write_market(market, {"A": 0.2})
            time.sleep(0.1)

    thread = threading.Thread(target=feed)
    thread.start()
    try:
        started = time.monotonic()
        result = run(files, wait="clean", clean_period=1.5, wait_timeout=10, poll_interval=0.1)
    finally:
        stop.set()
        thread.join()
    assert result["wait"]["met"] is True and result["wait"]["reset_count"] == 1
    assert "disconnect" in result["wait"]["resets"][0]["reason"]
    assert time.monotonic() - started >= 1.9  # 0.5 s, then a whole new clean period


def test_wait_clean_counts_from_since_and_never_meets_with_stale_data(files):
    log, market = files[0], files[1]
    write_log(log, [(10, "INFO", "connect url=wss://x attempt=0")])
    write_market(market, {"A": 0.2})
    quick = run(files, wait="clean", clean_period=5, wait_timeout=3, since=time.time() - 8, poll_interval=0.1)
    assert quick["wait"]["met"] is True and quick["wait"]["waited_s"] < 1  # clean since 8 s ago already
    write_market(market, {"A": 7.0})
    stale = run(files, wait="clean", clean_period=0.3, wait_timeout=0.6, poll_interval=0.1)
    assert stale["wait"]["met"] is False and "data stale" in stale["wait"]["resets"][-1]["reason"]


def test_bad_thresholds_are_refused(files):
    result = run(files, stale_after=10, critical_after=5)
    assert result["failed"] and "critical_after" in result["msg"]
