"""Run the molecule scenarios against one exchange double, and time each one.

    python molecule/run_scenarios.py [--command test] [--work-dir build/molecule] [SCENARIO ...]

Starts one double on 0.0.0.0 (the drill hosts reach it at 10.88.0.1 through their /etc/hosts),
hands it to every scenario in TRADEOPS_DOUBLE_URL (for the controller's control-API calls),
TRADEOPS_DOUBLE_PORT and TRADEOPS_DOUBLE_CA, runs `molecule <command> -s <scenario>` for each
scenario in turn (all of them, also after a failure, so one run shows every problem), prints
and writes each scenario's wall time, and stops the double. Exit status 1 if any scenario failed.
TRADEOPS_FLEET_IMAGE must name the fleet image (make molecule sets it from fleet/fleet.mk).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("egress_block", "bot_services", "trading_mode", "api_keys")

try:
    from exchange_double.testing import running_double
except ImportError:  # not installed in this Python: the checkout's copy
    sys.path.insert(0, str(ROOT / "simulator"))
    from exchange_double.testing import running_double


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS), help="default: all (%s)" % ", ".join(SCENARIOS))
    parser.add_argument("--command", default="test", help="molecule command per scenario (default test)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "molecule")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if not (ROOT / "molecule" / s / "molecule.yml").is_file()]
    if unknown:
        parser.error("no such scenario: %s" % ", ".join(unknown))
    if not os.environ.get("TRADEOPS_FLEET_IMAGE"):
        parser.error("TRADEOPS_FLEET_IMAGE is not set (make molecule sets it; or export it from"
                     " `bash fleet/image/build.sh --print-tag`)")

    args.work_dir.mkdir(parents=True, exist_ok=True)
    timings = []
    started = time.monotonic()
    # Rate limits stay on (the bots are well inside them); the CA lives with the run's files.
    with running_double(args.work_dir / "double", host="0.0.0.0") as double:
        env = dict(os.environ)
        env.update(
            TRADEOPS_DOUBLE_URL="https://localhost:%d" % double.port,
            TRADEOPS_DOUBLE_PORT=str(double.port),
            TRADEOPS_DOUBLE_CA=str(double.ca_path),
            ANSIBLE_FORCE_COLOR=env.get("ANSIBLE_FORCE_COLOR", "0"),
        )
        print("exchange double on 0.0.0.0:%d (CA %s); image %s"
              % (double.port, double.ca_path, env["TRADEOPS_FLEET_IMAGE"]), flush=True)
        for scenario in args.scenarios:
            print("=== molecule %s -s %s" % (args.command, scenario), flush=True)
            t0 = time.monotonic()
            rc = subprocess.call(["molecule", args.command, "-s", scenario], cwd=str(ROOT), env=env)
            timings.append((scenario, time.monotonic() - t0, rc))
            outcome = "passed" if rc == 0 else "FAILED (rc=%d)" % rc
            print("=== %s: %s in %.0f s" % (scenario, outcome, timings[-1][1]), flush=True)

    lines = ["%-14s %6.0f s  %s" % (name, seconds, "ok" if rc == 0 else "FAILED")
             for name, seconds, rc in timings]
    lines.append("%-14s %6.0f s" % ("total", time.monotonic() - started))
    summary = "\n".join(lines) + "\n"
    (args.work_dir / "timings.txt").write_text(summary)
    print("\nmolecule %s, wall time per scenario:\n%s" % (args.command, summary), flush=True)
    return 0 if all(rc == 0 for _n, _s, rc in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
