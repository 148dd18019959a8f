#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bot_feed_info
short_description: Read a trading host's market-data feed health from the bot's websocket.log and market.json
version_added: 0.1.0
description:
  - The host side of the SOP's section 2 (WebSocket disconnections) and section 8 (staleness),
    run on a fleet host.
  - "Reads the bot's C(websocket.log) (the SOP's C(tail -f logs/websocket.log | grep -E
    \"connect|disconnect|error\"); lines start with a UTC time), and counts, over the last
    O(window) seconds, the disconnects, failed connection attempts, service restarts and the
    downtime: every stretch from a disconnect (or a stop, or a start without a connection)
    to the next C(connect), an outage still going on counted until now. The rotated file
    (C(<log>.1)) is read too when it was written within the window."
  - "Reads the bot's C(market.json) and computes each product's data age from
    C(last_update_epoch) against this host's clock (as the bot's order service does; the
    file's own C(data_age_s) is not trusted), and the age of the file itself (a file that is
    no longer rewritten means the strategy stopped)."
  - "Tests connectivity from the host (the SOP's C(ping)): a TCP connection and a TLS handshake
    to each WebSocket endpoint's host and port. ICMP is often blocked on the way to an
    exchange, so a failed ping proves nothing; a TLS handshake with the WebSocket host is the
    test that matters."
  - "With O(wait=connected) it waits (up to O(wait_timeout)) until the bot is connected and its
    data is fresh; with O(wait=clean) until the feed has been clean for O(clean_period)
    seconds in a row: no new disconnect, stop, start or failed connection line in the log and
    no sample of C(market.json) with stale data. Anything unclean starts the period again."
  - Read-only.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Only reads (and waits); the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  log_path:
    description: The bot's WebSocket log.
    type: path
    default: /opt/trading-bot/logs/websocket.log
  market_state_path:
    description: The bot's market state file.
    type: path
    default: /var/lib/trading-bot/market.json
  trading_mode_path:
    description: The trading-mode file, reported in RV(trading_mode) (the context of a feed problem).
    type: path
    default: /var/lib/trading-bot/trading_mode
  unit:
    description:
      - The bot's market-data systemd unit, reported in RV(unit) (a masked unit means the host is
        contained); empty to skip.
    type: str
    default: trading-bot-perpetuals
  window:
    description: Seconds back from now over which disconnects and downtime are counted (the SOP's "per hour").
    type: float
    default: 3600
  stale_after:
    description: Data older than this many seconds is stale (the SOP's 5 s).
    type: float
    default: 5
  critical_after:
    description: Data older than this many seconds is critically stale (the SOP's 30 s).
    type: float
    default: 30
  since:
    description:
      - An epoch time (this host's clock); RV(since) counts the log events after it, for example
        after an incident was opened.
      - "With O(wait=clean), the clean period may have begun at this moment already: it counts
        from O(since), or from the last unclean log line after it (a disconnect, stop, start,
        failed connection or stale-data warning)."
    type: float
  reach_urls:
    description:
      - WebSocket (or HTTPS) URLs whose host and port to reach with TCP and TLS.
      - When empty, C(COINBASE_WS_MARKET_URL) and C(COINBASE_WS_USER_URL) from O(env_file).
    type: list
    elements: str
    default: []
  env_file:
    description: The bot's environment file, read for the WebSocket URLs when O(reach_urls) is empty.
    type: path
    default: /etc/trading-bot/bot.env
  reach:
    description: Test connectivity to the WebSocket endpoints.
    type: bool
    default: true
  ping_count:
    description:
      - Also send this many ICMP echo requests to the first endpoint's host (the SOP's
        C(ping -c 5)); V(0) sends none. ICMP is often blocked on the way to an exchange, so
        RV(ping) is a hint, RV(reach) the test. Needs O(reach).
    type: int
    default: 0
  reach_timeout:
    description: Seconds allowed for each TCP connection and each TLS handshake.
    type: float
    default: 5
  ca_path:
    description: A CA bundle for the TLS handshake; the system's trust store when not set.
    type: path
  wait:
    description:
      - V(none) reads once. V(connected) waits until the bot is connected and its data fresh.
        V(clean) waits until the feed has been clean for O(clean_period) seconds in a row.
    type: str
    choices: [none, connected, clean]
    default: none
  wait_timeout:
    description: Seconds to wait at most (O(wait=connected) or O(wait=clean)).
    type: float
    default: 300
  clean_period:
    description: Seconds the feed must stay clean with O(wait=clean) (the SOP's "2 clean minutes").
    type: float
    default: 120
  poll_interval:
    description: Seconds between two looks while waiting.
    type: float
    default: 1
  max_lines:
    description: How many of the newest matching log lines (connect, disconnect, error) to return.
    type: int
    default: 20
notes:
  - Needs to read the log, the state file and the environment file; use C(become=true).
  - Event names are the contract's (C(docs/architecture.md)); lines that are not connection
    events (stale-data warnings, subscriptions) are ignored for the counts.
"""

EXAMPLES = r"""
- name: Disconnects and downtime in the last hour, data age, connectivity (SOP 2)
  tradeops.incident_response.bot_feed_info:
  become: true
  register: feed

- name: Page on-call after more than 5 minutes without market data
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ feed.downtime_s }} s down in the last hour"
  when: feed.downtime_s > 300

- name: Wait for the reconnect (the bot backs off by itself)
  tradeops.incident_response.bot_feed_info:
    wait: connected
    wait_timeout: 300
    reach: false
  become: true

- name: Two clean minutes before resuming
  tradeops.incident_response.bot_feed_info:
    wait: clean
    clean_period: 120
    wait_timeout: 600
    reach: false
  become: true
"""

RETURN = r"""
now_epoch:
  description: This host's clock when the module finished (epoch seconds).
  returned: always
  type: float
  sample: 1767225600.5
started_epoch:
  description: This host's clock when the module started (epoch seconds).
  returned: always
  type: float
  sample: 1767225600.1
window_s:
  description: O(window).
  returned: always
  type: float
  sample: 3600
log:
  description: The log files read.
  returned: always
  type: dict
  contains:
    path:
      description: O(log_path).
      type: str
    readable:
      description: Whether it could be read.
      type: bool
    files:
      description: Files read (the rotated one first).
      type: list
      elements: str
    error:
      description: Why it could not be read.
      type: str
trading_mode:
  description: >-
    The word in O(trading_mode_path) (C(NORMAL), C(REDUCE_ONLY), C(HALTED)), C(ABSENT) when there
    is no file, C(UNREADABLE) or C(INVALID) otherwise (the bot treats the last three as HALTED).
  returned: always
  type: str
  sample: NORMAL
unit:
  description: >-
    The market-data unit: C(name), C(ActiveState), C(SubState), C(LoadState), C(MainPID) and
    C(masked) (C(LoadState=masked), or a C(/dev/null) link in C(/etc/systemd/system.control)).
    Empty when O(unit) is empty or systemd is not there.
  returned: always
  type: dict
  sample: {"name": "trading-bot-perpetuals.service", "ActiveState": "active", "SubState": "running", "LoadState": "loaded", "MainPID": 812, "masked": false}
connected:
  description:
    - Whether the bot is connected now. From the log (the last connection event is a C(connect));
      when the log has no connection event, from C(market.json); false when neither says so.
  returned: always
  type: bool
  sample: true
connected_source:
  description: Where RV(connected) comes from (C(log), C(market.json) or C(none)).
  returned: always
  type: str
  sample: log
disconnects:
  description: Disconnect lines in the window.
  returned: always
  type: int
  sample: 4
connect_errors:
  description: Failed connection attempts in the window.
  returned: always
  type: int
  sample: 0
errors:
  description: Error lines in the window (failed connection attempts included).
  returned: always
  type: int
  sample: 0
connects:
  description: Connect lines in the window.
  returned: always
  type: int
  sample: 5
restarts:
  description: Service starts in the window.
  returned: always
  type: int
  sample: 0
downtime_s:
  description: Seconds of the window without a connection (an ongoing outage counted until now).
  returned: always
  type: float
  sample: 4.2
longest_outage_s:
  description: The longest outage that overlaps the window, whole.
  returned: always
  type: float
  sample: 1.1
current_outage_s:
  description: Seconds since the ongoing outage began; 0 when connected.
  returned: always
  type: float
  sample: 0.0
outages:
  description: The newest outages overlapping the window (C(from), C(to) (None when ongoing), C(seconds), C(cause)).
  returned: always
  type: list
  elements: dict
last_connect_epoch:
  description: When the bot last connected (None when the log has no connect line).
  returned: always
  type: float
last_event:
  description: The last connection event (C(time), C(event), C(line)), or None.
  returned: always
  type: dict
since:
  description: Counts of the events after O(since) (C(disconnects), C(connects), C(errors), C(restarts)), when O(since) is given.
  returned: when O(since) is given
  type: dict
lines:
  description: The newest log lines of the window that the SOP's C(grep -E "connect|disconnect|error") shows.
  returned: always
  type: list
  elements: str
market:
  description: What C(market.json) says, with ages computed here.
  returned: always
  type: dict
  contains:
    present:
      description: Whether the file could be read.
      type: bool
    error:
      description: Why it could not be read.
      type: str
    file_age_s:
      description: Seconds since the bot last rewrote it.
      type: float
    products:
      description: Per product C(price), C(last_update), C(data_age_s) (None before the first update), C(stale), C(critical).
      type: dict
    max_data_age_s:
      description: The oldest product's data age (None when no product has data).
      type: float
    stale:
      description: Whether any product is older than O(stale_after), has no data, or the file is not being rewritten.
      type: bool
    critical:
      description: Whether any product (or the file) is older than O(critical_after).
      type: bool
    connection:
      description: The bot's own C(connection) block (connected, disconnects in the last hour, ...).
      type: dict
reach:
  description: Connectivity from this host, one entry per endpoint (C(url), C(host), C(port), C(tcp_ok), C(tls_ok), C(tcp_ms), C(tls_ms), C(error)).
  returned: always
  type: list
  elements: dict
reach_ok:
  description: Whether every endpoint was reached (TCP and, for wss/https, TLS). None when not tested.
  returned: always
  type: bool
ping:
  description: >-
    The SOP's ping: C(tested), C(host), C(ok), C(summary) (ping's statistics line) and C(note).
  returned: always
  type: dict
  sample: {"tested": true, "host": "advanced-trade-ws.coinbase.com", "ok": true, "summary": "5 packets transmitted, 5 received, 0% packet loss, time 803ms"}
wait:
  description: >-
    With O(wait): C(kind), C(met), C(waited_s), C(clean_for_s) (O(wait=clean)), C(resets)
    (moments the clean period started again and why), C(reset_count), C(clean_since), C(samples),
    C(why) (O(wait=connected) not met).
  returned: when O(wait) is not V(none)
  type: dict
"""

import json
import os
import re
import socket
import ssl
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.tradeops.incident_response.plugins.module_utils.systemd_paths import MASK_DIR

LINE_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+([A-Z]+)\s+(.*)$")
# The contract's event words (docs/architecture.md); order matters: the first match wins.
EVENTS = (
    ("connect_error", re.compile(r"^error connect\b")),
    ("connect", re.compile(r"^connect\b")),
    ("disconnect", re.compile(r"^disconnect\b")),
    ("error", re.compile(r"^error\b")),
    ("start", re.compile(r"^start\b")),
    ("stop", re.compile(r"^stop\b")),
    ("stale", re.compile(r"^(stale data for|critical staleness for)\b")),
)
UNCLEAN = ("disconnect", "stop", "start", "connect_error", "stale")
SOP_GREP = re.compile(r"connect|disconnect|error")
DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}
MAX_OUTAGES = 20
MAX_RESETS = 20


def parse_time(text):
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()


def parse_line(line):
    """(epoch, event or None, message) of a log line, or None for a line without a time."""
    match = LINE_RE.match(line)
    if not match:
        return None
    try:
        epoch = parse_time(match.group(1))
    except ValueError:
        return None
    message = match.group(3)
    for name, pattern in EVENTS:
        if pattern.match(message):
            return epoch, name, line.rstrip("\n")
    return epoch, None, line.rstrip("\n")


class FeedLog:
    """The connection timeline of a websocket.log, read once and then followed as it grows."""

    def __init__(self, path):
        self.path = path
        self.events = []  # (epoch, event, line), connection events only
        self.grep = []  # (epoch, line) of the lines the SOP's grep shows
        self.files = []
        self.error = None
        self.readable = False
        self._inode = None
        self._offset = 0
        self._partial = ""

    def _consume(self, text):
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the rest
        new = []
        for line in lines:
            parsed = parse_line(line)
            if parsed is None:
                continue
            epoch, event, full = parsed
            if SOP_GREP.search(full.split(" ", 2)[-1]):
                self.grep.append((epoch, full))
            if event:
                self.events.append((epoch, event, full))
                new.append((epoch, event, full))
        return new

    def load(self, oldest):
        rotated = self.path + ".1"
        try:
            if os.path.exists(rotated) and os.stat(rotated).st_mtime >= oldest:
                with open(rotated, "r", encoding="utf-8", errors="replace") as handle:
                    self._consume(handle.read())
                    self._partial = ""
                self.files.append(rotated)
        except OSError as exc:
            self.error = "%s: %s" % (rotated, exc.strerror or exc)
        self.follow()

    def follow(self):
        """Read what was appended since the last look; start again when the file was rotated."""
        try:
            info = os.stat(self.path)
            if self._inode is not None and (info.st_ino != self._inode or info.st_size < self._offset):
                self._offset, self._partial = 0, ""
            with open(self.path, "r", encoding="utf-8", errors="replace") as handle:
                handle.seek(self._offset)
                text = handle.read()
                self._offset = handle.tell()
            self._inode = info.st_ino
            self.readable = True
            if self.path not in self.files:
                self.files.append(self.path)
            return self._consume(text)
        except OSError as exc:
            self.error = "%s: %s" % (self.path, exc.strerror or exc)
            return []


def timeline(events, now, window_start):
    """Counts and outages from the connection events (sorted by time)."""
    counts = {"disconnects": 0, "connect_errors": 0, "errors": 0, "connects": 0, "restarts": 0}
    outages = []
    state = None  # None: unknown, "up", "down"
    opened = None
    last_connect = None
    last_event = None
    for epoch, event, line in sorted(events, key=lambda e: e[0]):
        in_window = epoch >= window_start
        if event in ("connect", "disconnect", "connect_error", "start", "stop"):
            last_event = {"time": epoch, "event": event, "line": line}
        if event == "connect":
            counts["connects"] += in_window
            last_connect = epoch
            if state == "down" and opened is not None:
                outages.append({"from": opened[0], "to": epoch, "cause": opened[1]})
            state, opened = "up", None
        elif event == "disconnect":
            counts["disconnects"] += in_window
            if state != "down":
                state, opened = "down", (epoch, line.split(" ", 2)[-1])
        elif event == "stop":
            if state != "down":
                state, opened = "down", (epoch, "service stopped")
        elif event == "start":
            counts["restarts"] += in_window
            if state != "down":
                state, opened = "down", (epoch, "service started (not connected yet)")
        elif event == "connect_error":
            counts["connect_errors"] += in_window
            counts["errors"] += in_window
            if state != "down":
                state, opened = "down", (epoch, line.split(" ", 2)[-1])
        elif event == "error":
            counts["errors"] += in_window
    if state == "down" and opened is not None:
        outages.append({"from": opened[0], "to": None, "cause": opened[1]})
    downtime = 0.0
    longest = 0.0
    kept = []
    for outage in outages:
        end = now if outage["to"] is None else outage["to"]
        if end < window_start:
            continue
        downtime += max(0.0, end - max(outage["from"], window_start))
        longest = max(longest, end - outage["from"])
        kept.append(dict(outage, seconds=round(end - outage["from"], 3)))
    current = (now - outages[-1]["from"]) if outages and outages[-1]["to"] is None else 0.0
    return {
        "counts": counts,
        "state": state,
        "downtime_s": round(downtime, 3),
        "longest_outage_s": round(longest, 3),
        "current_outage_s": round(current, 3),
        "outages": kept[-MAX_OUTAGES:],
        "last_connect_epoch": last_connect,
        "last_event": last_event,
    }


def read_market(path, now, stale_after, critical_after):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return {"present": False, "error": "%s: %s" % (path, getattr(exc, "strerror", None) or exc), "stale": True,
                "critical": False, "products": {}, "max_data_age_s": None, "file_age_s": None, "connection": {}}
    written = data.get("written_at_epoch")
    file_age = (now - written) if isinstance(written, (int, float)) else None
    products = {}
    for pid, info in sorted((data.get("products") or {}).items()):
        info = info if isinstance(info, dict) else {}
        updated = info.get("last_update_epoch")
        age = (now - updated) if isinstance(updated, (int, float)) else None
        products[pid] = {
            "price": info.get("price"),
            "last_update": info.get("last_update"),
            "data_age_s": None if age is None else round(age, 3),
            "stale": age is None or age > stale_after,
            "critical": age is not None and age > critical_after,
        }
    ages = [p["data_age_s"] for p in products.values() if p["data_age_s"] is not None]
    writer_stale = file_age is None or file_age > stale_after
    return {
        "present": True,
        "file_age_s": None if file_age is None else round(file_age, 3),
        "products": products,
        "max_data_age_s": max(ages) if ages else None,
        "stale": writer_stale or not products or any(p["stale"] for p in products.values()),
        "critical": any(p["critical"] for p in products.values()) or (file_age is not None and file_age > critical_after),
        "connection": data.get("connection") if isinstance(data.get("connection"), dict) else {},
    }


def read_mode(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            word = handle.read(64).strip().upper()
    except FileNotFoundError:
        return "ABSENT"
    except (OSError, UnicodeError):
        return "UNREADABLE"
    return word if word in ("NORMAL", "REDUCE_ONLY", "HALTED") else "INVALID"


def unit_state(module, name):
    if not name:
        return {}
    if not name.endswith((".service", ".socket", ".timer")):
        name += ".service"
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return {}
    rc, out, _err = module.run_command([systemctl, "show", name, "-p", "ActiveState,SubState,LoadState,MainPID"])
    if rc != 0:
        return {}
    state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    link = os.path.join(MASK_DIR, name)  # where bot_units puts its mask
    masked = state.get("LoadState") == "masked" or (os.path.islink(link) and os.path.realpath(link) == "/dev/null")
    return {"name": name, "ActiveState": state.get("ActiveState"), "SubState": state.get("SubState"),
            "LoadState": state.get("LoadState"), "MainPID": int(state.get("MainPID") or 0), "masked": masked}


def env_urls(path):
    urls = []
    with open(path, "r", encoding="utf-8") as handle:
        for line in handle:
            name, sep, value = line.strip().partition("=")
            if sep and name in ("COINBASE_WS_MARKET_URL", "COINBASE_WS_USER_URL") and value.strip():
                urls.append(value.strip().strip("'\""))
    return urls


def tls_context(ca_path):
    """The TLS context of every reach test, made once; OSError / ssl.SSLError when O(ca_path) cannot be loaded."""
    return ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()


def reach_one(url, timeout, context):
    parts = urlsplit(url)
    host, scheme = parts.hostname, (parts.scheme or "").lower()
    result = {"url": url, "host": host, "port": None, "tcp_ok": False, "tls_ok": None, "tcp_ms": None, "tls_ms": None, "error": None}
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError as exc:
        result["error"] = "bad URL: %s" % exc
        return result
    result["port"] = port
    if not host or not port:
        result["error"] = "bad URL: no host or port"
        return result
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except (OSError, socket.timeout) as exc:
        result["error"] = "TCP %s:%s: %s" % (host, port, getattr(exc, "strerror", None) or exc or type(exc).__name__)
        return result
    result["tcp_ok"], result["tcp_ms"] = True, round((time.monotonic() - started) * 1000.0, 1)
    try:
        if scheme in ("wss", "https"):
            started = time.monotonic()
            try:
                sock.settimeout(timeout)
                tls = context.wrap_socket(sock, server_hostname=host)
                result["tls_ok"], result["tls_ms"] = True, round((time.monotonic() - started) * 1000.0, 1)
                tls.close()
            except (OSError, ssl.SSLError, socket.timeout) as exc:
                result["tls_ok"] = False
                result["error"] = "TLS %s:%s: %s" % (host, port, getattr(exc, "reason", None) or exc or type(exc).__name__)
    finally:
        try:
            sock.close()
        except OSError:
            pass
    return result


class Watcher:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.log = FeedLog(self.p["log_path"])

    def market(self):
        return read_market(self.p["market_state_path"], time.time(), self.p["stale_after"], self.p["critical_after"])

    def view(self, now):
        line = timeline(self.log.events, now, now - self.p["window"])
        market = self.market()
        if line["state"] is not None:
            connected, source = line["state"] == "up", "log"
        elif market["present"] and "connected" in market["connection"]:
            connected, source = bool(market["connection"]["connected"]), "market.json"
        else:
            connected, source = False, "none"
        return line, market, connected, source

    def wait_connected(self, started):
        samples = 0
        while True:
            self.log.follow()
            samples += 1
            now = time.time()
            _line, market, connected, _source = self.view(now)
            if connected and not market["stale"]:
                return {"kind": "connected", "met": True, "waited_s": round(time.monotonic() - started, 3), "samples": samples}
            if time.monotonic() - started >= self.p["wait_timeout"]:
                return {"kind": "connected", "met": False, "waited_s": round(time.monotonic() - started, 3), "samples": samples,
                        "why": "not connected" if not connected else "data stale (max age %s s)" % market["max_data_age_s"]}
            time.sleep(self.p["poll_interval"])

    def wait_clean(self, started):
        """Wall-clock times (the log's clock) throughout: the period may have begun at O(since)."""
        period, resets, samples = self.p["clean_period"], [], 0
        begun = time.time()
        clean_since = begun if self.p["since"] is None else min(begun, self.p["since"])
        for epoch, event, line in self.log.events:
            if event in UNCLEAN and epoch >= clean_since:
                resets.append({"time": round(epoch, 3), "reason": line.split(" ", 2)[-1][:300]})
        if resets:
            clean_since = max(r["time"] for r in resets)
        new = []
        while True:
            samples += 1
            reasons = [line.split(" ", 2)[-1] for _e, event, line in new if event in UNCLEAN]
            market = self.market()
            if market["stale"]:
                reasons.append("data stale (max age %s s%s)" % (
                    market["max_data_age_s"], "" if market["present"] else ", market.json unreadable"))
            now = time.time()
            if reasons:
                clean_since = now
                resets.append({"time": round(now, 3), "reason": "; ".join(reasons)[:300]})
            clean_for = now - clean_since
            waited = time.monotonic() - started
            if clean_for >= period or waited >= self.p["wait_timeout"]:
                return {"kind": "clean", "met": clean_for >= period, "clean_for_s": round(clean_for, 3), "clean_since": round(clean_since, 3),
                        "waited_s": round(waited, 3), "resets": resets[-MAX_RESETS:], "reset_count": len(resets), "samples": samples}
            time.sleep(min(self.p["poll_interval"], max(0.05, period - clean_for)))
            new = self.log.follow()

    def run(self):
        p = self.p
        started = time.monotonic()
        started_epoch = time.time()
        context = None
        if p["reach"]:
            # Once, and before any wait: a wrong ca_path fails at once, naming the option.
            try:
                context = tls_context(p["ca_path"])
            except (OSError, ssl.SSLError) as exc:
                self.module.fail_json(msg="ca_path %s cannot be loaded as a CA bundle: %s." % (
                    p["ca_path"], getattr(exc, "strerror", None) or exc))
        self.log.load(time.time() - p["window"])
        result = {"changed": False, "window_s": p["window"]}
        if p["wait"] == "connected":
            result["wait"] = self.wait_connected(started)
        elif p["wait"] == "clean":
            result["wait"] = self.wait_clean(started)
        now = time.time()
        line, market, connected, source = self.view(now)
        window_start = now - p["window"]
        result.update(
            started_epoch=round(started_epoch, 3),
            now_epoch=round(now, 3),
            trading_mode=read_mode(p["trading_mode_path"]),
            unit=unit_state(self.module, p["unit"]),
            log={"path": p["log_path"], "readable": self.log.readable, "files": self.log.files, "error": self.log.error},
            connected=connected,
            connected_source=source,
            disconnects=line["counts"]["disconnects"],
            connect_errors=line["counts"]["connect_errors"],
            errors=line["counts"]["errors"],
            connects=line["counts"]["connects"],
            restarts=line["counts"]["restarts"],
            downtime_s=line["downtime_s"],
            longest_outage_s=line["longest_outage_s"],
            current_outage_s=line["current_outage_s"],
            outages=line["outages"],
            last_connect_epoch=line["last_connect_epoch"],
            last_event=line["last_event"],
            lines=[text for epoch, text in self.log.grep if epoch >= window_start][-p["max_lines"]:] if p["max_lines"] > 0 else [],
            market=market,
        )
        if p["since"] is not None:
            after = [e for e in self.log.events if e[0] >= p["since"]]
            result["since"] = {
                "epoch": p["since"],
                "disconnects": sum(1 for e in after if e[1] == "disconnect"),
                "connects": sum(1 for e in after if e[1] == "connect"),
                "errors": sum(1 for e in after if e[1] in ("error", "connect_error")),
                "restarts": sum(1 for e in after if e[1] == "start"),
            }
        result["reach"], result["reach_ok"] = [], None
        if p["reach"]:
            urls = list(p["reach_urls"])
            if not urls:
                try:
                    urls = env_urls(p["env_file"])
                except OSError as exc:
                    self.module.warn("Cannot read %s for the WebSocket URLs (%s): connectivity not tested." % (p["env_file"], exc.strerror or exc))
            result["reach"] = [reach_one(url, p["reach_timeout"], context) for url in urls]
            if result["reach"]:
                result["reach_ok"] = all(r["tcp_ok"] and r["tls_ok"] is not False for r in result["reach"])
        result["ping"] = self.ping(result["reach"])
        return result

    def ping(self, reach):
        count = self.p["ping_count"]
        if count <= 0 or not reach or not reach[0]["host"]:
            return {"tested": False}
        host = reach[0]["host"]
        binary = self.module.get_bin_path("ping")
        if not binary:
            return {"tested": False, "host": host, "note": "no ping command on this host"}
        rc, out, err = self.module.run_command([binary, "-c", str(count), "-i", "0.2", "-W", "1", "-q", host])
        summary = next((line.strip() for line in out.splitlines() if "packets transmitted" in line), (err or out).strip()[:200])
        return {"tested": True, "host": host, "ok": rc == 0, "summary": summary,
                "note": "ICMP may be blocked by the network; the TCP/TLS reach of the WebSocket endpoint is the meaningful test"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            log_path=dict(type="path", default="/opt/trading-bot/logs/websocket.log"),
            market_state_path=dict(type="path", default="/var/lib/trading-bot/market.json"),
            trading_mode_path=dict(type="path", default="/var/lib/trading-bot/trading_mode"),
            unit=dict(type="str", default="trading-bot-perpetuals"),
            window=dict(type="float", default=3600.0),
            stale_after=dict(type="float", default=5.0),
            critical_after=dict(type="float", default=30.0),
            since=dict(type="float"),
            reach_urls=dict(type="list", elements="str", default=[]),
            env_file=dict(type="path", default="/etc/trading-bot/bot.env"),
            reach=dict(type="bool", default=True),
            reach_timeout=dict(type="float", default=5.0),
            ping_count=dict(type="int", default=0),
            ca_path=dict(type="path"),
            wait=dict(type="str", default="none", choices=["none", "connected", "clean"]),
            wait_timeout=dict(type="float", default=300.0),
            clean_period=dict(type="float", default=120.0),
            poll_interval=dict(type="float", default=1.0),
            max_lines=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ("window", "stale_after", "critical_after", "reach_timeout", "poll_interval"):
        if p[name] <= 0:
            module.fail_json(msg="%s must be more than 0, got %s." % (name, p[name]))
    for name in ("wait_timeout", "clean_period"):
        if p[name] < 0:
            module.fail_json(msg="%s must be 0 or more, got %s." % (name, p[name]))
    if p["critical_after"] < p["stale_after"]:
        module.fail_json(msg="critical_after (%g s) must not be shorter than stale_after (%g s)." % (p["critical_after"], p["stale_after"]))
    module.exit_json(**Watcher(module).run())


if __name__ == "__main__":
    main()
