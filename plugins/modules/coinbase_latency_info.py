#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_latency_info
short_description: Measure Coinbase API round trips (p50, p95, p99) against the SOP's 500 ms
version_added: 0.1.0
description:
  - The SOP's section 5 (high latency), step 1 (C(measure_latency.py --samples 100)) and its
    C(watch check_latency.py) loop.
  - Makes O(samples) paced C(GET) requests to a cheap endpoint and reports p50, p95, p99, max,
    min and mean of the round trips, the errors and timeouts, the pacing, and RV(high) when p95
    is above O(threshold_ms) (the SOP's symptom, p95 over 500 ms).
  - "The endpoint: by default the public C(GET /time), which needs no key (it works from any
    laptop during an incident) and measures the network path and Coinbase's API gateway. An
    authenticated endpoint such as C(/key_permissions) also measures JWT signing and Coinbase's
    authentication, which every order placement pays: use it to measure what the bot sees."
  - "Each sample is one HTTP attempt. The client is built without retries (O(max_retries) is
    not used): a retry would hide a failure inside one slow sample and add the SOP's backoff
    waits to it. A failed attempt is counted in RV(errors) instead. A timeout counts as a
    sample at the timeout value (O(timeout)), so a timing-out API cannot look fast; a 429,
    5xx or connection error is counted but not measured, because a fast error page says
    nothing about the latency of a real answer. A refused key (401) or a missing scope (403)
    fails the task: there is nothing to measure."
  - "Pacing: samples start every O(interval) seconds. By default 0.125 s (8 per second) for a
    public endpoint, under Coinbase's 10 per second per IP, and 0.2 s (5 per second) for an
    authenticated one, leaving most of the key's 30 per second to the bots that share it.
    RV(pacing) reports the interval, the achieved rate and any wait of the client-side rate
    limit (O(max_requests_per_second))."
  - The first O(warmup) requests open the connection (TCP and TLS handshake) and are not
    counted; later samples reuse the connection, as the bot's client does.
  - Read-only.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only reads; measures the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  samples:
    description: Number of measured requests (the SOP's C(--samples 100)).
    type: int
    default: 100
  endpoint:
    description:
      - Path of the C(GET) request, relative to C(/api/v3/brokerage), for example C(/time) or
        C(/key_permissions).
      - C(/time) and C(/market/...) are called without a key; anything else with one.
    type: str
    default: /time
  threshold_ms:
    description: RV(high) is true when p95 is above this many milliseconds (the SOP's 500).
    type: float
    default: 500
  interval:
    description:
      - Seconds between the starts of two samples. By default 0.125 for a public endpoint and
        0.2 for an authenticated one.
    type: float
  warmup:
    description: Requests made first and not counted (connection set-up).
    type: int
    default: 1
"""

EXAMPLES = r"""
- name: Check current latency (SOP 5, step 1)
  tradeops.incident_response.coinbase_latency_info:
    samples: 100
  delegate_to: localhost
  run_once: true
  register: latency

- name: Scale down when p95 is over 500 ms (SOP 5, step 2)
  ansible.builtin.include_role:
    name: tradeops.incident_response.scale_down
  when: latency.high

- name: Measure what an authenticated call costs, signing included
  tradeops.incident_response.coinbase_latency_info:
    endpoint: /key_permissions
    samples: 50
  register: auth_latency
"""

RETURN = r"""
high:
  description: Whether p95 is above O(threshold_ms).
  returned: always
  type: bool
  sample: false
threshold_ms:
  description: The threshold used.
  returned: always
  type: float
  sample: 500.0
endpoint:
  description: The path measured and whether a key signed each request.
  returned: always
  type: dict
  contains:
    path:
      description: Full path.
      type: str
      sample: /api/v3/brokerage/time
    authenticated:
      description: Whether each request carried a fresh JWT.
      type: bool
      sample: false
latency_ms:
  description: Statistics over the measured samples (answered ones and timeouts), milliseconds; percentiles by nearest rank.
  returned: always
  type: dict
  contains:
    p50:
      description: Median.
      type: float
      sample: 41.2
    p95:
      description: 95th percentile.
      type: float
      sample: 88.0
    p99:
      description: 99th percentile.
      type: float
      sample: 120.4
    max:
      description: Slowest.
      type: float
      sample: 130.9
    min:
      description: Fastest.
      type: float
      sample: 30.1
    mean:
      description: Mean.
      type: float
      sample: 45.7
counts:
  description: What happened to the samples.
  returned: always
  type: dict
  contains:
    requested:
      description: O(samples).
      type: int
      sample: 100
    measured:
      description: Samples in the statistics (answered plus timeouts).
      type: int
      sample: 100
    ok:
      description: Answered with 2xx.
      type: int
      sample: 100
    timeouts:
      description: Timed out (measured at O(timeout)).
      type: int
      sample: 0
    errors:
      description: 429, 5xx and connection errors (not measured).
      type: int
      sample: 0
    error_rate:
      description: Failed attempts (timeouts and errors) over all counted attempts.
      type: float
      sample: 0.0
errors:
  description: Failed samples by outcome (C(timeout), C(connection_error), C(http_503), ...).
  returned: always
  type: dict
  sample: {"http_503": 2}
samples_ms:
  description: Every measured sample in order, milliseconds.
  returned: always
  type: list
  elements: float
pacing:
  description: How the samples were spread.
  returned: always
  type: dict
  contains:
    interval_s:
      description: Seconds between sample starts.
      type: float
      sample: 0.125
    duration_s:
      description: Seconds the sampling took.
      type: float
      sample: 12.6
    achieved_rate_per_s:
      description: Samples per second actually made.
      type: float
      sample: 7.9
    rate_limit_wait_s:
      description: Seconds the client-side rate limit held requests back (0 when the pacing is below it).
      type: float
      sample: 0.0
    warmup:
      description: Requests made first and not counted.
      type: int
      sample: 1
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check)).
  returned: always
  type: dict
"""

import math
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import API_PREFIX
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    CoinbaseError,
    CredentialError,
    InputError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    build_client,
    check_libraries,
    check_positive,
    coinbase_argument_spec,
    fail_coinbase,
    load_module_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.retry import RetryPolicy

PUBLIC_INTERVAL_S = 0.125  # 8/s: under Coinbase's 10 public requests per second per IP [U]
PRIVATE_INTERVAL_S = 0.2  # 5/s: the key's 30/s is shared with the bots
MEASURED_FAILURES = ("timeout",)  # failures that still say something about latency


def percentile(sorted_values, pct):
    """Nearest rank: the smallest value with at least pct % of the values at or below it."""
    rank = max(1, int(math.ceil(pct / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


def statistics(values):
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 50), 1),
        "p95": round(percentile(ordered, 95), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
        "min": round(ordered[0], 1),
        "mean": round(sum(ordered) / len(ordered), 1),
    }


def is_public(path):
    return path == "/time" or path.startswith("/market/")


class LatencySampler:
    def __init__(self, module, client, path, authenticated, interval):
        self.module = module
        self.client = client
        self.path = path
        self.authenticated = authenticated
        self.interval = interval
        self.timeout_ms = module.params["timeout"] * 1000.0
        self.measured = []
        self.errors = {}
        self.ok = 0

    def call(self):
        """One request; returns the attempts it made. Refusals of the key end the run."""
        before = len(self.client.attempts)
        try:
            self.client.request("GET", self.path, auth=self.authenticated)
        except (TransportError, RateLimitedError, ServerError):
            pass  # recorded in client.attempts, counted by the caller
        return self.client.attempts[before:]

    def record(self, attempts):
        for attempt in attempts:
            outcome = attempt["outcome"]
            if outcome == "ok":
                self.ok += 1
                self.measured.append(attempt["elapsed_ms"])
            else:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1
                if outcome in MEASURED_FAILURES:
                    self.measured.append(self.timeout_ms)

    def run(self, samples, warmup):
        for _index in range(warmup):
            self.call()
        started = time.monotonic()
        for index in range(samples):
            wait = started + index * self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.record(self.call())
        return time.monotonic() - started


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        samples=dict(type="int", default=100),
        endpoint=dict(type="str", default="/time"),
        threshold_ms=dict(type="float", default=500.0),
        interval=dict(type="float"),
        warmup=dict(type="int", default=1),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    params = module.params
    check_positive(module, samples=params["samples"], threshold_ms=params["threshold_ms"])
    if params["interval"] is not None and params["interval"] < 0:
        module.fail_json(msg="interval must be 0 or more seconds, got %s." % params["interval"])
    if params["warmup"] < 0:
        module.fail_json(msg="warmup must be 0 or more requests, got %s." % params["warmup"])
    path = (params["endpoint"] or "").strip()
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX):]
    if not path.startswith("/") or "?" in path:
        module.fail_json(msg="endpoint must be a path such as /time or /key_permissions, without a query string; got %r." % params["endpoint"])
    authenticated = not is_public(path)
    interval = params["interval"]
    if interval is None:
        interval = PRIVATE_INTERVAL_S if authenticated else PUBLIC_INTERVAL_S
    if params["timeout"] * 1000.0 <= params["threshold_ms"]:
        module.warn("timeout (%g s) is not above threshold_ms (%g ms): timed-out samples count at the timeout and cannot make p95 high."
                    % (params["timeout"], params["threshold_ms"]))

    client = None
    try:
        credentials = load_module_credentials(module) if authenticated else None
        client = build_client(module, credentials, retry=RetryPolicy(max_retries=0))
        sampler = LatencySampler(module, client, path, authenticated, interval)
        duration = sampler.run(params["samples"], params["warmup"])
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Latency sampling of %s%s stopped" % (API_PREFIX, path))

    failures = sum(sampler.errors.values())
    timeouts = sampler.errors.get("timeout", 0)
    result = {
        "changed": False,
        "threshold_ms": params["threshold_ms"],
        "endpoint": {"path": API_PREFIX + path, "authenticated": authenticated},
        "counts": {
            "requested": params["samples"],
            "measured": len(sampler.measured),
            "ok": sampler.ok,
            "timeouts": timeouts,
            "errors": failures - timeouts,
            "error_rate": round(failures / float(max(1, sampler.ok + failures)), 4),
        },
        "errors": sampler.errors,
        "samples_ms": sampler.measured,
        "pacing": {
            "interval_s": interval,
            "duration_s": round(duration, 3),
            "achieved_rate_per_s": round(params["samples"] / duration, 2) if duration > 0 else None,
            "rate_limit_wait_s": round(client.limiter.waited, 3),
            "warmup": params["warmup"],
        },
        "requests": client.summary(),
    }
    client.close()
    if not sampler.measured:
        module.fail_json(msg="No sample was answered: %s. The API is failing rather than slow; check status.coinbase.com." % (
            ", ".join("%d x %s" % (n, outcome) for outcome, n in sorted(sampler.errors.items()))), **result)
    result["latency_ms"] = statistics(sampler.measured)
    result["high"] = result["latency_ms"]["p95"] > params["threshold_ms"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
