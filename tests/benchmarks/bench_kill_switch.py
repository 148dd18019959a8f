#!/usr/bin/env python
"""Benchmark: the kill switch's time to safe, side by side with a bare official-SDK script.

Not a test: it prints numbers (issue "P1/P2 runbooks", Benchmark). One run:

1. a double on 0.0.0.0 and the drill fleet (3 hosts, bots trading), both started here;
2. per round: the fleet back to NORMAL and trading, 1,000 open orders seeded in the bots' names,
   20 ms of latency injected on every REST call; then
   a. ``ansible-playbook playbooks/kill_switch.yml`` (the runbook an on-call engineer runs),
      timed from the command to "safe": every open order cancelled and confirmed by a listing
      AND every host REDUCE_ONLY with order placement stopped (the record's milestones);
   b. the bare script: the official ``coinbase-advanced-py`` SDK lists the open orders (cursor
      pages), cancels them in batches of 100 and lists again until none remain. Exchange side
      only: it cannot halt a host, which is the point of comparing.
3. a table: both times, their ratio, and where the kill switch spends its time.

    TRADEOPS_FLEET_PREFIX=bench .venv/bin/python tests/benchmarks/bench_kill_switch.py [--orders 1000] [--latency-ms 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TRADEOPS_FLEET_PREFIX", "bench")

from support.drill import BIN, HOSTS, INVENTORY, PREFIX, WORK, provision, run, sh, wait_for  # noqa: E402

WORKING = ["OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED"]


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def reset_fleet(control, keys, ips) -> None:
    """Hosts NORMAL and trading on the primary key; the book empty of everything but the bots' orders."""
    control.reset(keep_keys=True)
    for host in HOSTS:
        sh(host, "printf 'NORMAL\\n' > /var/lib/trading-bot/trading_mode; systemctl start trading-bot-orders trading-bot-perpetuals")
    since = time.time()
    wait_for(lambda: all(control.requests(method="POST", path="/orders", client_ip=ips[h], since=since) for h in HOSTS),
             90, what="every bot trading")


def seed(control, key_name: str, count: int) -> None:
    per_host = count // len(HOSTS)
    for index, host in enumerate(HOSTS):
        n = per_host if index < len(HOSTS) - 1 else count - per_host * (len(HOSTS) - 1)
        control.seed_orders(n, "BIP-20DEC30-CDE", key=key_name, client_order_id_prefix="%s-bench-" % host)


def kill_switch_round(double, vars_file: Path, records: Path, args) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), TRADEOPS_RECORDS_DIR=str(records),
               PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    started = time.time()
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(ROOT / "playbooks" / "kill_switch.yml"),
                           "-e", "@%s" % vars_file], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
    finished = time.time()
    if done.returncode != 0:
        raise SystemExit("the kill switch failed:\n%s" % (done.stdout + done.stderr)[-4000:])
    path = max(records.glob("kill_switch-*.json"), key=lambda p: p.stat().st_mtime)
    record = json.loads(path.read_text())
    opened = parse_time(record["opened_at"])
    contained = [parse_time(e["time"]) for e in record["timeline"] if "REDUCE_ONLY (was" in e["step"]]
    no_orders = opened + record["milestones"]["no_open_orders"]["elapsed_s"]
    first_pass = opened + record["milestones"]["first_cancel_pass"]["elapsed_s"]
    hosts_halted = max(contained)
    return {
        "time_to_safe_s": max(no_orders, hosts_halted) - started,
        "orders_confirmed_zero_s": no_orders - started,
        "first_pass_zero_s": first_pass - started,
        "hosts_halted_s": hosts_halted - started,
        "ansible_start_to_open_s": opened - started,
        "playbook_wall_s": finished - started,
        "left": len(double.control.list_orders(status=WORKING)),
    }


def sdk_round(double, key: dict) -> dict:
    """The bare script: what an engineer would write with the official SDK, nothing more."""
    from coinbase.rest import RESTClient

    os.environ["REQUESTS_CA_BUNDLE"] = double.ca_path
    secret = Path(key["private_key_file"]).read_text()
    started = time.time()
    client = RESTClient(api_key=key["name"], api_secret=secret, base_url="localhost:%d" % double.port, timeout=10)
    requests = 0
    while True:
        ids, cursor = [], None
        while True:  # list every open order, page by page
            page = client.list_orders(order_status=["OPEN"], limit=1000, cursor=cursor)
            requests += 1
            ids += [o.order_id for o in page.orders]
            if not page.has_next:
                break
            cursor = page.cursor
        if not ids:
            break
        for start in range(0, len(ids), 100):
            client.cancel_orders(order_ids=ids[start:start + 100])
            requests += 1
    return {"time_to_zero_s": time.time() - started, "requests": requests,
            "left": len(double.control.list_orders(status=WORKING))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from exchange_double.testing import running_double

    sys.path.insert(0, str(ROOT / "fleet"))
    from drill_vars import make_fleet_vars

    work = WORK / "bench"
    work.mkdir(parents=True, exist_ok=True)
    image = run(["bash", str(ROOT / "fleet" / "image" / "build.sh"), "--print-tag"]).stdout.strip()
    with running_double(work / "double", host="0.0.0.0") as double:
        run(["bash", str(ROOT / "fleet" / "fleet.sh"), "up", str(len(HOSTS))],
            env=dict(os.environ, FLEET_IMAGE=image, FLEET_PREFIX=PREFIX))
        try:
            vars_file = make_fleet_vars(double.url, double.port, str(double.ca_path), work, extra={"fleet_reset_trading_mode": True})
            provision(vars_file)
            ips = {h: run(["podman", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", h]).stdout.strip() for h in HOSTS}
            keys = json.loads(vars_file.read_text())["fleet_api_keys"]
            double.ca_path = str(double.ca_path)
            results = {"kill_switch": [], "sdk": []}
            for number in range(args.rounds):
                reset_fleet(double.control, keys, ips)
                seed(double.control, keys["primary"]["name"], args.orders)
                double.control.add_latency(args.latency_ms)
                results["kill_switch"].append(kill_switch_round(double, vars_file, work / ("records-%d" % number), args))
                double.control.clear_faults()
                reset_fleet(double.control, keys, ips)
                for host in HOSTS:  # the bare script does not halt hosts: stop them so it faces a still book
                    sh(host, "systemctl stop trading-bot-orders")
                seed(double.control, keys["primary"]["name"], args.orders)
                double.control.add_latency(args.latency_ms)
                results["sdk"].append(sdk_round(double, keys["primary"]))
                double.control.clear_faults()
        finally:
            if not os.environ.get("FLEET_KEEP"):
                run(["bash", str(ROOT / "fleet" / "fleet.sh"), "down"], check=False, env=dict(os.environ, FLEET_PREFIX=PREFIX))

    def median(rows, field):
        return statistics.median(r[field] for r in rows)

    ks, sdk = results["kill_switch"], results["sdk"]
    print("\nKill switch vs bare SDK: %d open orders, %d hosts, %.0f ms latency on every REST call, %d round(s)"
          % (args.orders, len(HOSTS), args.latency_ms, args.rounds))
    print("%-52s %10s" % ("", "median s"))
    for label, field in (("kill switch: time to safe (orders + hosts)", "time_to_safe_s"),
                         ("  every open order cancelled and confirmed", "orders_confirmed_zero_s"),
                         ("  first (background) pass emptied the book", "first_pass_zero_s"),
                         ("  every host REDUCE_ONLY + order placement stopped", "hosts_halted_s"),
                         ("  ansible-playbook start until the record opened", "ansible_start_to_open_s"),
                         ("  whole playbook (record, alert, report included)", "playbook_wall_s")):
        print("%-52s %10.2f" % (label, median(ks, field)))
    print("%-52s %10.2f   (%d requests)" % ("bare SDK script: open orders to zero", median(sdk, "time_to_zero_s"), sdk[0]["requests"]))
    print("%-52s %10.2f" % ("ratio, kill switch time to safe / bare SDK", median(ks, "time_to_safe_s") / median(sdk, "time_to_zero_s")))
    print("%-52s %10.2f" % ("ratio, kill switch orders to zero / bare SDK", median(ks, "first_pass_zero_s") / median(sdk, "time_to_zero_s")))
    print("raw:", json.dumps(results))
    if any(r["left"] for r in ks + sdk):
        print("FAILED: orders were left")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
