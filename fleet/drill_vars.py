#!/usr/bin/env python3
"""Throwaway keys for the drill fleet, registered with a running exchange double, and the vars
file that fleet/provision.yml reads.

    python fleet/drill_vars.py --ready-file build/drill/double/ready.json --out build/drill

writes build/drill/keys/{primary,backup,standby}.pem (0600, in a 0700 directory) and
build/drill/fleet-vars.yml (key names and file paths, the double's port and CA path; no key
material). Every slot's public key is registered with the double in its default portfolio, so
one key's kill switch sees every host's orders and a failover to backup/standby is accepted.
Nothing here prints key material; rerunning makes new keys (old ones stay registered).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from exchange_double.control import DoubleControl
    from exchange_double.keys import generate_key
except ImportError:  # not installed in this Python: use the checkout's copy
    sys.path.insert(0, str(ROOT / "simulator"))
    from exchange_double.control import DoubleControl
    from exchange_double.keys import generate_key

SLOTS = ("primary", "backup", "standby")


def _write_private(path: Path, text: str) -> None:
    """Create with 0600 from the first byte (no window in which the key is world-readable)."""
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def make_fleet_vars(url: str, port: int, ca_path: str, out_dir: Path, permissions: tuple = ("view", "trade"),
                    extra: dict | None = None) -> Path:
    """Generate, register and write the keys; write and return the path of fleet-vars.yml."""
    control = DoubleControl(url, ca_path)
    key_dir = out_dir / "keys"
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    keys = {}
    for slot in SLOTS:
        key = generate_key("ec")
        control.register_key(key.name, key.public_pem, permissions=list(permissions))
        pem = key_dir / ("%s.pem" % slot)
        _write_private(pem, key.private_pem)
        keys[slot] = {"name": key.name, "private_key_file": str(pem)}
    data = {"fleet_double_port": int(port), "fleet_ca_cert": str(ca_path), "fleet_api_keys": keys}
    data.update(extra or {})
    vars_file = out_dir / "fleet-vars.yml"
    # JSON is YAML: no YAML library needed, and ansible-playbook -e @file reads it.
    vars_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return vars_file


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", type=Path, required=True,
                        help="the double's ready file (exchange-double serve --ready-file): url, port, ca_path")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "drill",
                        help="directory for keys/ and fleet-vars.yml (default build/drill)")
    args = parser.parse_args(argv)
    ready = json.loads(args.ready_file.read_text())
    url = "https://localhost:%d" % ready["port"]
    path = make_fleet_vars(url, ready["port"], ready["ca_path"], args.out)
    print("wrote %s (keys for %s in %s)" % (path, ", ".join(SLOTS), args.out / "keys"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
