#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_ws_probe
short_description: Probe Coinbase's market-data and user WebSockets for drops, gaps and staleness
version_added: 0.1.0
description:
  - The SOP's section 2 (WebSocket disconnections, C(ws_probe.py --auth)) and section 8
    (staleness) as a bounded check run on the controller.
  - Connects to the market-data WebSocket (and with O(auth) the user WebSocket, with a fresh
    JWT on every subscribe message), subscribes to C(heartbeats) and C(ticker) (C(heartbeats)
    and C(user) on the user endpoint) right after connecting, within Coinbase's 5-second rule,
    listens for O(listen) seconds on both at once, and reports per endpoint the connect time,
    the time until Coinbase acknowledged the subscription, messages per channel, the heartbeat
    counter and its skips, sequence-number gaps, disconnects (with close codes) and downtime,
    authentication errors, and per product the number of updates, the largest gap between two
    updates and the data age.
  - "Staleness (SOP 8): a product in RV(market.products) is C(stale) when at any moment of
    the window it had no update for more than O(stale_after) seconds (the SOP's 5 s: block
    entries) and C(critical) beyond O(critical_after) (the SOP's 30 s: kill switch);
    C(stale_now) is the same test on the data age at the end. An endpoint is stale when its
    feed as a whole (heartbeats included) went quiet that long."
  - After a disconnect the probe reconnects (waiting 0.5 s, doubling up to 5 s) until the
    window ends, unless O(reconnect=false) or the key was refused, so that disconnects and
    downtime are counted as the SOP's thresholds count them.
  - The market-data subscription carries no JWT, so a refused key cannot hide the state of
    public market data; the user endpoint tests the key.
  - Read-only. Product names such as C(BTC-PERP) are resolved through the public REST
    endpoints at O(api_url) (no key needed); when that fails, the names are subscribed as given
    and a warning says so.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only listens; probes the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  ws_url:
    description:
      - The market-data WebSocket.
      - If not set, the environment variable E(COINBASE_WS_MARKET_URL) is used. Against the
        exchange double, C(wss://localhost:<port>).
    type: str
    default: wss://advanced-trade-ws.coinbase.com
  ws_user_url:
    description:
      - The user-data WebSocket (O(auth=true)).
      - If not set, the environment variable E(COINBASE_WS_USER_URL) is used. Against the
        exchange double, C(wss://localhost:<port>/ws/user).
    type: str
    default: wss://advanced-trade-ws-user.coinbase.com
  auth:
    description:
      - Also probe the user WebSocket with the configured key (the SOP's C(--auth)); needs a key.
      - With V(false) no key is loaded, even when one is configured (for example through
        E(COINBASE_CDP_PRIVATE_KEY_PATH)), since the market-data WebSocket is public.
    type: bool
    default: false
  products:
    description:
      - Products whose ticker to watch, as product IDs or names such as C(BTC-PERP).
      - Every perp-style product when empty.
    type: list
    elements: str
    default: []
  listen:
    description: Seconds to listen after connecting.
    type: float
    default: 10
  stale_after:
    description: Seconds without an update after which data is stale (the SOP's 5).
    type: float
    default: 5
  critical_after:
    description: Seconds without an update after which staleness is critical (the SOP's 30).
    type: float
    default: 30
  reconnect:
    description: Reconnect after a disconnect until the window ends.
    type: bool
    default: true
notes:
  - O(timeout) is the time allowed for each WebSocket connection (TCP, TLS and the upgrade);
    O(ca_bundle) and O(validate_certs) apply to the WebSockets as to the REST API.
  - Staleness needs a window longer than the threshold to be seen; O(listen) shorter than
    O(stale_after) can only report what it saw.
requirements:
  - websockets
"""

EXAMPLES = r"""
- name: Check current connections (SOP 2, step 1, ws_probe.py --auth)
  tradeops.incident_response.coinbase_ws_probe:
    auth: true
    products: [BTC-PERP, ETH-PERP]
    listen: 15
  delegate_to: localhost
  run_once: true
  register: ws

- name: Block entries when data is stale (SOP 8)
  ansible.builtin.include_role:
    name: tradeops.incident_response.trading_mode
  vars:
    trading_mode: REDUCE_ONLY
  when: ws.stale

- name: Probe the exchange double's feeds in a drill
  tradeops.incident_response.coinbase_ws_probe:
    api_url: https://localhost:8443
    ws_url: wss://localhost:8443
    ws_user_url: wss://localhost:8443/ws/user
    ca_bundle: /var/lib/exchange-double/ca/ca.pem
    auth: true
    listen: 5
"""

RETURN = r"""
ok:
  description: True when every endpoint connected, was acknowledged, stayed up, had no gap, no auth error and no staleness.
  returned: always
  type: bool
  sample: true
problems:
  description: What is wrong, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["market: BIP-20DEC30-CDE had no update for 6.2 s (stale after 5 s)"]
stale:
  description: Whether any endpoint or product went stale during the window.
  returned: always
  type: bool
  sample: false
critical:
  description: Whether any endpoint or product was stale beyond O(critical_after).
  returned: always
  type: bool
  sample: false
auth_failed:
  description: Whether Coinbase refused the key on the user WebSocket.
  returned: always
  type: bool
  sample: false
disconnects:
  description: Disconnects over all endpoints during the window.
  returned: always
  type: int
  sample: 0
product_ids:
  description: What each name in O(products) resolved to.
  returned: always
  type: list
  elements: dict
  sample: [{"requested": "BTC-PERP", "product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP"}]
thresholds:
  description: C(stale_after_s), C(critical_after_s) and C(listen_s) used.
  returned: always
  type: dict
market:
  description: The market-data endpoint.
  returned: always
  type: dict
  contains:
    url:
      description: The URL probed.
      type: str
    channels:
      description: Channels subscribed.
      type: list
      elements: str
      sample: [heartbeats, ticker]
    connected:
      description: Whether a connection was made.
      type: bool
    connect_ms:
      description: TCP, TLS and WebSocket upgrade of the first connection, milliseconds.
      type: float
      sample: 35.2
    subscribe_sent_ms:
      description: From open to the last subscribe message sent (Coinbase disconnects after 5000).
      type: float
      sample: 1.1
    subscribe_ack_ms:
      description: From open to Coinbase's acknowledgement on the C(subscriptions) channel (None if none came).
      type: float
      sample: 12.7
    subscribed_within_5s:
      description: Whether the subscription went out within Coinbase's 5-second rule.
      type: bool
    connections:
      description: Every connection made (C(at_s), C(connect_ms), C(subscribe_sent_ms), C(subscribe_ack_ms)).
      type: list
      elements: dict
    connect_errors:
      description: Failed connection attempts (C(at_s), C(error)).
      type: list
      elements: dict
    disconnects:
      description: Disconnects (C(at_s), C(code) (1006 for a reset without close frame), C(reason), C(after_connected_s)).
      type: list
      elements: dict
    downtime_s:
      description: >-
        Seconds of the window without a connection: from a disconnect to the next connection
        (or the end), and from the start when the first connection failed. The first
        connection's set-up time is in C(connect_ms), not here.
      type: float
    messages:
      description: Messages received (errors excluded).
      type: int
    by_channel:
      description: Messages per channel.
      type: dict
      sample: {"subscriptions": 2, "heartbeats": 10, "ticker": 31}
    products:
      description: >-
        Per product ID: C(updates), C(last_price), C(data_age_s) (at the end), C(max_gap_s)
        (largest gap between updates, the end included), C(stale), C(critical), C(stale_now).
      type: dict
    heartbeat:
      description: C(received), C(counter) (last value), C(gaps) (counter skips), C(max_interval_s).
      type: dict
    sequence_gaps:
      description: Sequence-number jumps (C(expected), C(received), C(missed)); any gap means resync.
      type: list
      elements: dict
    max_message_gap_s:
      description: Longest silence of the whole feed, the end of the window included.
      type: float
    errors:
      description: Error messages Coinbase sent on the socket.
      type: list
      elements: str
    auth_failed:
      description: Whether one of them was an authentication failure.
      type: bool
    stale:
      description: Whether the feed or a product went stale.
      type: bool
    critical:
      description: Whether it was stale beyond O(critical_after).
      type: bool
user:
  description: The user endpoint, same fields as RV(market) (no products).
  returned: when O(auth=true)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import products as products_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import websocket as ws_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import CoinbaseError, CredentialError, InputError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    build_client,
    check_libraries,
    check_positive,
    coinbase_argument_spec,
    key_configured,
    load_module_credentials,
    retry_policy,
)

MARKET_CHANNELS = ["heartbeats", "ticker"]
USER_CHANNELS = ["heartbeats", "user"]


def resolve_products(module):
    """Product IDs to watch, resolved through the public REST catalogue (a refused key must not hide
    market data); names as given, with a warning, when REST fails."""
    requested = [p.strip() for p in module.params["products"] if p and p.strip()]
    # A short retry: the probe is about the WebSocket; a failing REST API only costs the names.
    retry = retry_policy(module.params, max_retries_cap=2, max_delay_cap=2.0)
    client = build_client(module, None, retry=retry)
    try:
        catalogue = client.list_products(public=True)
    except CoinbaseError as exc:
        if not requested:
            module.warn("Could not list products through the REST API (%s); watching heartbeats only." % exc.message)
            return []
        module.warn("Could not resolve product names through the REST API (%s); subscribing to them as given." % exc.message)
        return [{"requested": name, "product_id": name, "display_name": None} for name in requested]
    finally:
        client.close()
    if requested:
        resolved = products_mod.resolve(catalogue, requested)
    else:
        resolved = [{"requested": p["product_id"], "product_id": p["product_id"], "display_name": p.get("display_name")}
                    for p in sorted(catalogue, key=lambda p: p.get("product_id") or "")
                    if p.get("product_id") and products_mod.is_perpetual_style(p)]
    return [{k: r[k] for k in ("requested", "product_id", "display_name")} for r in resolved]


def problems_of(name, report, stale_after, critical_after):
    problems = []
    if not report["connected"]:
        errors = "; ".join(e["error"] for e in report["connect_errors"][-1:]) or "no connection"
        return ["%s: could not connect to %s: %s" % (name, report["url"], errors)]
    if report["auth_failed"]:
        problems.append("%s: Coinbase refused the key (%s): check it with coinbase_auth_check" % (name, "; ".join(report["errors"])))
    elif report["errors"]:
        problems.append("%s: Coinbase sent errors: %s" % (name, "; ".join(report["errors"])))
    if report["subscribe_ack_ms"] is None and not report["auth_failed"]:
        problems.append("%s: the subscription was never acknowledged" % name)
    if report["disconnects"]:
        codes = ", ".join(str(d["code"]) for d in report["disconnects"])
        problems.append("%s: %d disconnect(s) (close codes %s), %.1f s without a connection" % (
            name, len(report["disconnects"]), codes, report["downtime_s"]))
    if report["sequence_gaps"]:
        problems.append("%s: %d message(s) lost (sequence gaps): resync needed" % (name, sum(g["missed"] for g in report["sequence_gaps"])))
    if report["heartbeat"]["gaps"]:
        problems.append("%s: %d heartbeat(s) missed (counter skipped)" % (name, sum(g["missed"] for g in report["heartbeat"]["gaps"])))
    for product_id, state in sorted(report["products"].items()):
        if state["stale"]:
            limit = critical_after if state["critical"] else stale_after
            problems.append("%s: %s had no update for %.1f s (%s after %g s)" % (
                name, product_id, state["max_gap_s"], "critical" if state["critical"] else "stale", limit))
    if report["max_message_gap_s"] > stale_after and not report["auth_failed"]:
        problems.append("%s: no message at all for %.1f s" % (name, report["max_message_gap_s"]))
    return problems


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        ws_url=dict(type="str", default=ws_mod.MARKET_DATA_URL, fallback=(env_fallback, ["COINBASE_WS_MARKET_URL"])),
        ws_user_url=dict(type="str", default=ws_mod.USER_DATA_URL, fallback=(env_fallback, ["COINBASE_WS_USER_URL"])),
        auth=dict(type="bool", default=False),
        products=dict(type="list", elements="str", default=[]),
        listen=dict(type="float", default=10.0),
        stale_after=dict(type="float", default=ws_mod.STALE_AFTER_S),
        critical_after=dict(type="float", default=ws_mod.CRITICAL_AFTER_S),
        reconnect=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    if not ws_mod.HAS_WEBSOCKETS:
        module.fail_json(msg=missing_required_lib("websockets"), exception=str(ws_mod.WEBSOCKETS_IMPORT_ERROR))
    params = module.params
    check_positive(module, listen=params["listen"], stale_after=params["stale_after"], critical_after=params["critical_after"])
    if params["critical_after"] < params["stale_after"]:
        module.fail_json(msg="critical_after (%g s) must not be shorter than stale_after (%g s)." % (params["critical_after"], params["stale_after"]))
    urls = {"ws_url": params["ws_url"]}
    if params["auth"]:
        urls["ws_user_url"] = params["ws_user_url"]
    for option, url in urls.items():
        if not (url or "").startswith(("wss://", "ws://")):
            module.fail_json(msg="%s must be a WebSocket URL starting with wss://, got %r." % (option, url))
    if params["auth"] and not key_configured(params):
        module.fail_json(msg="auth needs an API key for the user WebSocket: set private_key_path (or COINBASE_CDP_PRIVATE_KEY_PATH), key_file or private_key.")

    try:
        # The key is only for the user WebSocket: a public market-data probe neither needs nor loads it.
        credentials = load_module_credentials(module) if params["auth"] else None
        product_ids = resolve_products(module)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    try:
        context = ws_mod.ssl_context(params["ca_bundle"], params["validate_certs"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="ca_bundle %s cannot be loaded: %s." % (params["ca_bundle"], exc))
    ids = [p["product_id"] for p in product_ids]

    probes = {"market": ws_mod.EndpointProbe(params["ws_url"], MARKET_CHANNELS if ids else ["heartbeats"], ids, None,
                                             context if params["ws_url"].startswith("wss://") else None,
                                             params["timeout"], params["reconnect"])}
    if params["auth"]:
        probes["user"] = ws_mod.EndpointProbe(params["ws_user_url"], USER_CHANNELS, [], credentials,
                                              context if params["ws_user_url"].startswith("wss://") else None,
                                              params["timeout"], params["reconnect"])
    try:
        ws_mod.run_probes(list(probes.values()), params["listen"])
    except CoinbaseError as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())

    result = {
        "changed": False,
        "product_ids": product_ids,
        "thresholds": {"stale_after_s": params["stale_after"], "critical_after_s": params["critical_after"], "listen_s": params["listen"]},
        "problems": [],
    }
    for name, probe in probes.items():
        report = probe.report(params["stale_after"], params["critical_after"])
        result[name] = report
        result["problems"].extend(problems_of(name, report, params["stale_after"], params["critical_after"]))
    reports = [result[name] for name in probes]
    result.update(
        stale=any(r["stale"] for r in reports),
        critical=any(r["critical"] for r in reports),
        auth_failed=any(r["auth_failed"] for r in reports),
        disconnects=sum(len(r["disconnects"]) for r in reports),
        ok=not result["problems"],
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
