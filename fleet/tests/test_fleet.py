"""The drill fleet against a real exchange double: what the SOP says we must be able to see.

Evidence comes from the double (its order list and request log) or the host's own state, never
from the bot's word about itself, except where the SOP's evidence *is* the bot's log
(websocket.log's connect/disconnect lines) or market.json.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from support.drill import log_lines_since, provision, set_mode, sh, wait_for

pytestmark = pytest.mark.timeout(300)

ORDER_PATHS = ("/api/v3/brokerage/orders", "/api/v3/brokerage/orders/close_position", "/api/v3/brokerage/orders/batch_cancel")
CREATE = "/api/v3/brokerage/orders"
CLOSE = "/api/v3/brokerage/orders/close_position"
GRACE_S = 2.0  # a request already in flight when the mode changes may still land


def order_requests(double, ip: str, since: float, paths=ORDER_PATHS) -> list:
    """POSTs to the order endpoints that came from one host's address since ``since``."""
    entries = double.control.requests(method="POST", path="/orders", client_ip=ip, since=since)
    return [e for e in entries if e["path"] in paths]


def test_provisioning_again_changes_nothing(fleet):
    """Idempotent: a second run right after the fixture's first changes nothing (and restarts nothing)."""
    recap = provision(fleet.vars_file).stdout.split("PLAY RECAP", 1)[1]
    for host in fleet.hosts:
        line = next(l for l in recap.splitlines() if l.startswith(host))
        assert "changed=0" in line and "failed=0" in line, line


def test_units_active_as_tradingbot(fleet):
    for host in fleet.hosts:
        for unit in ("trading-bot-perpetuals", "trading-bot-orders"):
            assert sh(host, "systemctl is-active %s.service" % unit, check=False).stdout.strip() == "active", (host, unit)
        users = sh(host, "ps -o user:20=,args= -C python3").stdout
        bots = [line for line in users.splitlines() if "trading_bot" in line]
        assert len(bots) == 2 and all(line.split()[0] == "tradingbot" for line in bots), users


def test_hosts_resolve_coinbase_to_the_double_and_trust_its_ca(fleet, double):
    for host in fleet.hosts:
        for name in ("api.coinbase.com", "advanced-trade-ws.coinbase.com", "advanced-trade-ws-user.coinbase.com"):
            assert sh(host, "getent hosts %s" % name).stdout.split()[0] == double.gateway
        # curl verifies against the host trust store (update-ca-certificates), not a --cacert.
        body = sh(host, "curl -sS --fail --max-time 10 https://api.coinbase.com:%d/api/v3/brokerage/time" % double.port).stdout
        assert "iso" in json.loads(body)


def test_bots_place_orders_whose_ids_name_the_host(fleet, double):
    pattern = {host: re.compile(r"^%s-\d{13}-\d+$" % re.escape(host)) for host in fleet.hosts}

    def every_host_has_orders():
        orders = double.control.list_orders()
        seen = {h: [o for o in orders if pattern[h].match(o.get("client_order_id") or "")] for h in fleet.hosts}
        return seen if all(seen.values()) else None

    seen = wait_for(every_host_has_orders, 60, 1.0, "orders from every host on the double")
    # The request that created each order came from that host's address.
    for host, orders in seen.items():
        coid = orders[0]["client_order_id"]
        entries = [e for e in double.control.requests(method="POST", path="/orders") if e.get("client_order_id") == coid]
        assert entries and entries[0]["client_ip"] == fleet.ips[host], (host, coid, entries[:1])
    # Resting orders accumulate (the runbooks' kill switch has something to cancel).
    open_orders = double.control.list_orders(status="OPEN")
    assert len(open_orders) >= len(fleet.hosts)


def test_halted_stops_new_orders(fleet, double, normal_after):
    host, ip = fleet.hosts[0], fleet.ips[fleet.hosts[0]]
    wait_for(lambda: order_requests(double, ip, time.time() - 3, (CREATE,)), 30, 0.5, "%s placing orders" % host)
    set_mode(host, "HALTED")
    quiet_from = time.time() + GRACE_S
    time.sleep(GRACE_S + 6)
    late = order_requests(double, ip, quiet_from)
    assert late == [], "orders after HALTED: %s" % late[:3]
    # Still alive, only obeying: NORMAL brings orders back.
    set_mode(host, "NORMAL")
    resumed = time.time()
    wait_for(lambda: order_requests(double, ip, resumed, (CREATE,)), 30, 0.5, "orders after NORMAL again")


def test_reduce_only_places_no_exposure_increasing_order(fleet, double, normal_after):
    host, ip = fleet.hosts[1], fleet.ips[fleet.hosts[1]]
    for other in fleet.hosts:
        if other != host:
            set_mode(other, "HALTED")  # nobody else moves the shared position meanwhile
    set_mode(host, "REDUCE_ONLY")
    time.sleep(GRACE_S)
    double.control.set_position("BIP-20DEC30-CDE", "LONG", 3)
    since = time.time()

    def closes():
        return order_requests(double, ip, since, (CLOSE,))

    wait_for(closes, 30, 0.5, "a reduce-only exit (close_position) from %s" % host)
    time.sleep(3)
    creates = order_requests(double, ip, since, (CREATE,))
    assert creates == [], "new orders in REDUCE_ONLY: %s" % creates[:3]
    state = double.control.state()
    portfolio = next(p for p in state["portfolios"] if p["uuid"] == state["default_portfolio_uuid"])
    bip = next((p for p in portfolio["positions"] if p["product_id"] == "BIP-20DEC30-CDE"), None)
    # The exits reduced the position and never flipped it (flat means it is gone or zero).
    if bip is not None and float(bip["number_of_contracts"]) != 0:
        assert bip["side"] == "LONG" and float(bip["number_of_contracts"]) < 3, bip


def test_max_orders_per_second_bounds_the_rate(fleet, double):
    host, ip = fleet.hosts[2], fleet.ips[fleet.hosts[2]]
    dropin_dir = "/etc/systemd/system/trading-bot-orders.service.d"
    window = 10.0
    since = time.time()
    time.sleep(window)
    unbounded = len(order_requests(double, ip, since))
    try:
        # SOP 5's scale-down, the way the contract says it is done: a drop-in's Environment=.
        sh(host, "mkdir -p %s && printf '[Service]\\nEnvironment=MAX_ORDERS_PER_SECOND=1 BATCH_SIZE=2\\n' "
                 "> %s/50-tradeops-scale-down.conf && systemctl daemon-reload && systemctl restart trading-bot-orders"
           % (dropin_dir, dropin_dir))
        env = sh(host, "systemctl show -p Environment trading-bot-orders").stdout
        assert "MAX_ORDERS_PER_SECOND=1" in env and "BATCH_SIZE=2" in env, env
        time.sleep(3)
        since = time.time()
        time.sleep(window)
        times = sorted(e["time"] for e in order_requests(double, ip, since))
    finally:
        sh(host, "rm -f %s/50-tradeops-scale-down.conf && systemctl daemon-reload && systemctl restart trading-bot-orders"
           % dropin_dir)
    busiest = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
    assert unbounded >= 2.5 * window, "the bot was not busy enough to show a bound (%d in %.0fs)" % (unbounded, window)
    assert len(times) <= 1.0 * window + 1, "%d order requests in %.0fs at MAX_ORDERS_PER_SECOND=1" % (len(times), window)
    assert busiest <= 2, "%d order requests within one second" % busiest  # 1/s evenly paced; 2 allows network jitter
    assert len(times) >= 0.5 * window, "the bounded bot stopped trading (%d in %.0fs)" % (len(times), window)


def test_websocket_drop_logs_disconnect_and_connect(fleet, double):
    since = time.time()
    double.control.ws_drop()

    def reconnected(host):
        # Lines are "<UTC time> <LEVEL> <event> ...": a disconnect, then a connect after it.
        events = [line.split(" ", 2)[2] for _, line in log_lines_since(host, "websocket.log", since)]
        drop = next((i for i, event in enumerate(events) if event.startswith("disconnect")), None)
        return drop is not None and any(event.startswith("connect ") for event in events[drop + 1:])

    for host in fleet.hosts:
        wait_for(lambda: reconnected(host), 30, 0.5, "disconnect then connect in %s's websocket.log" % host)


def test_websocket_stall_makes_market_data_stale(fleet, double):
    host = fleet.hosts[0]

    def market():
        return json.loads(sh(host, "cat /var/lib/trading-bot/market.json").stdout)

    wait_for(lambda: not market()["stale"], 30, 0.5, "fresh market data before the stall")
    double.control.ws_stall(15)
    state = wait_for(lambda: (lambda m: m if m["stale"] else None)(market()), 12, 0.5, "market.json stale during the stall")
    ages = [p["data_age_s"] for p in state["products"].values() if p["data_age_s"] is not None]
    assert ages and max(ages) > 5.0
    assert any("stale data for" in line for _, line in log_lines_since(host, "websocket.log", time.time() - 15))
    # After the stall the feed (or a reconnect) brings fresh data back.
    wait_for(lambda: not market()["stale"], 40, 1.0, "fresh market data after the stall")


def test_egress_block_cuts_the_host_off_and_removing_it_restores(fleet, double):
    host, ip = fleet.hosts[0], fleet.ips[fleet.hosts[0]]
    curl = "curl -sS -o /dev/null --max-time 4 https://api.coinbase.com:%d/api/v3/brokerage/time" % double.port
    assert sh(host, curl, check=False).returncode == 0
    try:
        sh(host, "iptables -A OUTPUT -d api.coinbase.com -j DROP")
        blocked_from = time.time() + GRACE_S
        result = sh(host, curl, check=False)
        assert result.returncode == 28, "curl should time out (28), got %d: %s" % (result.returncode, result.stderr)
        time.sleep(3)
        assert double.control.requests(client_ip=ip, since=blocked_from) == [], "the double still hears from %s" % host
    finally:
        sh(host, "iptables -D OUTPUT -d api.coinbase.com -j DROP", check=False)
    assert sh(host, "iptables -S OUTPUT").stdout.strip() == "-P OUTPUT ACCEPT"
    assert sh(host, curl, check=False).returncode == 0


def test_the_bot_user_cannot_change_the_trading_mode(fleet):
    """The sticky state directory: the bot replaces its market.json but never root's trading_mode."""
    host = fleet.hosts[1]
    attempt = ("printf NORMAL > /var/lib/trading-bot/.x && mv -f /var/lib/trading-bot/.x /var/lib/trading-bot/trading_mode; "
               "rm -f /var/lib/trading-bot/trading_mode; printf NORMAL > /var/lib/trading-bot/trading_mode; true")
    set_mode(host, "HALTED")
    try:
        sh(host, "runuser -u tradingbot -- sh -c '%s'" % attempt, check=False)
        assert sh(host, "cat /var/lib/trading-bot/trading_mode").stdout.strip() == "HALTED"
        assert sh(host, "stat -c %U /var/lib/trading-bot/market.json").stdout.strip() == "tradingbot"
    finally:
        sh(host, "rm -f /var/lib/trading-bot/.x")
        set_mode(host, "NORMAL")
