"""The collection builds into a tarball that installs, and ansible-doc renders every module from it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))


def test_build_install_and_ansible_doc(tmp_path):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)  # not the checkout's collections_path: the installed copy must stand alone
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, env=env)
    [tarball] = tmp_path.glob("tradeops-incident_response-*.tar.gz")
    names = tarfile.open(tarball).getnames()
    assert "plugins/modules/coinbase_orders.py" in names and "meta/runtime.yml" in names
    # drill and test tooling stays out of what AWX installs; no key material ships
    assert not [n for n in names if n.startswith(("simulator/", "fleet/", "build/", ".venv/"))]
    target = tmp_path / "installed"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(target)],
                   check=True, capture_output=True, env=env)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(target)
    for module in MODULES:
        done = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "tradeops.incident_response." + module],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0 and "EXAMPLES" in done.stdout and "RETURN VALUES" in done.stdout, (module, done.stderr[-500:])
    roles = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "-l", "tradeops.incident_response"],
                           capture_output=True, text=True, env=env)
    for role in ("egress_block", "bot_services", "trading_mode", "api_keys", "incident_record", "key_failover"):
        assert role in roles.stdout


def test_action_group_lists_every_coinbase_module():
    import yaml

    group = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["coinbase"]
    assert sorted(group) == [m for m in MODULES if m.startswith("coinbase_")]
