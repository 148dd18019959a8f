#!/usr/bin/env python
"""Benchmark: cancel 1,000 open orders on the exchange double with injected latency, and confirm zero.

Starts its own double, registers a throwaway key, seeds the orders, injects latency on every
REST call, then measures ``coinbase_orders state=cancelled``:

1. in-process, through the module's engine (``CancelAll`` in module_utils/_coinbase/orders.py),
   the same code a runbook benchmark can compare against a bare SDK script;
2. once through ``ansible-playbook`` (process start, module transfer and all).

Not a test: it prints numbers. Run from the checkout with the project's Python::

    python tests/benchmarks/bench_cancel.py [--orders 1000] [--latency-ms 20] [--runs 3] [--quiet-period 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "tradeops" / "incident_response"
if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(ROOT)
sys.path.insert(0, str(COLLECTIONS))

from exchange_double.testing import running_double  # noqa: E402

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import CoinbaseClient  # noqa: E402
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials  # noqa: E402
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.orders import CancelAll, OrderFilter  # noqa: E402

WORKING = ["OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED"]


def seed(double, key_name, count):
    double.control.clear_faults()
    for start in range(0, count, 5000):
        double.control.seed_orders(min(5000, count - start), "BIP-20DEC30-CDE", key=key_name,
                                   client_order_id_prefix="bench-%d-%d-" % (time.time_ns(), start))


def working(double, key_name):
    return len(double.control.list_orders(status=WORKING, key=key_name))


def in_process(double, key_name, key_path, args):
    """One sweep through the engine, timed from client creation to the confirming listing."""
    seed(double, key_name, args.orders)
    double.control.add_latency(args.latency_ms)
    double.control.clear_requests()
    began = time.perf_counter()
    client = CoinbaseClient(load_credentials(key_name=key_name, private_key_path=key_path),
                            base_url=double.url, ca_bundle=str(double.ca_path))
    with client:
        report = CancelAll(client, OrderFilter(), quiet_period=args.quiet_period).run()
    wall = time.perf_counter() - began
    left = working(double, key_name)
    return {
        "wall_s": round(wall, 3),
        "time_to_first_cancel_s": report["timings"]["time_to_first_cancel_s"],
        "time_to_zero_s": report["timings"]["time_to_zero_s"],
        "engine_total_s": report["timings"]["total_s"],
        "cancelled": report["cancelled_count"],
        "cancel_rounds": report["cancel_rounds"],
        "requests": len(client.attempts),
        "batch_cancel_calls": sum(1 for a in client.attempts if a["path"].endswith("/batch_cancel")),
        "rate_limit_wait_s": round(client.limiter.waited, 3),
        "empty": report["empty"],
        "left_on_double": left,
    }


def through_playbook(double, key_name, key_path, args, workdir):
    seed(double, key_name, args.orders)
    double.control.add_latency(args.latency_ms)
    playbook = Path(workdir) / "cancel.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{"name": "cancel", "register": "swept", "tradeops.incident_response.coinbase_orders": {
            "state": "cancelled", "api_url": double.url, "ca_bundle": str(double.ca_path),
            "api_key_name": key_name, "private_key_path": key_path, "quiet_period": args.quiet_period}}],
    }]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(playbook), "-i", "localhost,", "-c", "local"]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n%s%s" % (done.stdout[-3000:], done.stderr[-3000:]))
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return {
        "wall_s": round(wall, 3),
        "time_to_first_cancel_s": result["timings"]["time_to_first_cancel_s"],
        "time_to_zero_s": result["timings"]["time_to_zero_s"],
        "engine_total_s": result["timings"]["total_s"],
        "cancelled": result["cancelled_count"],
        "cancel_rounds": result["cancel_rounds"],
        "requests": result["requests"]["requests"],
        "rate_limit_wait_s": result["requests"]["rate_limit_wait_s"],
        "empty": result["empty"],
        "left_on_double": working(double, key_name),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3, help="in-process runs (the playbook runs once)")
    parser.add_argument("--quiet-period", type=float, default=1.0, help="the module's quiet_period (its default is 1.0)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as workdir, running_double(Path(workdir) / "double") as double:
        key = double.new_key("ec", permissions="view,trade")
        key_path = Path(workdir) / "bench.pem"
        key_path.write_text(key.secret)
        key_path.chmod(0o600)
        print("exchange double at %s; %d open orders; %.0f ms latency on every REST call; quiet_period %.1f s"
              % (double.url, args.orders, args.latency_ms, args.quiet_period))
        runs = [in_process(double, key.name, str(key_path), args) for _run in range(args.runs)]
        for number, run in enumerate(runs, 1):
            print("in-process run %d: %s" % (number, json.dumps(run)))
        zero = [r["time_to_zero_s"] for r in runs if r["time_to_zero_s"] is not None]
        if zero:
            print("in-process time to zero: median %.3f s, min %.3f s, max %.3f s" % (statistics.median(zero), min(zero), max(zero)))
        playbook = through_playbook(double, key.name, str(key_path), args, workdir)
        print("ansible-playbook run: %s" % json.dumps(playbook))
        failed = [r for r in runs + [playbook] if not r["empty"] or r["left_on_double"] or r["cancelled"] != args.orders]
        if failed:
            raise SystemExit("a run did not end with every order cancelled: %s" % failed)


if __name__ == "__main__":
    main()
