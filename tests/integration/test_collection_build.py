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
    # Not the checkout's ansible.cfg (its collections_path links to this checkout, so galaxy
    # would find the collection "already installed"): the installed copy must stand alone.
    env.pop("ANSIBLE_CONFIG", None)
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, env=env, cwd=tmp_path)
    [tarball] = tmp_path.glob("tradeops-incident_response-*.tar.gz")
    names = tarfile.open(tarball).getnames()
    assert "plugins/modules/coinbase_orders.py" in names and "meta/runtime.yml" in names
    # drill and test tooling stays out of what AWX installs; no key material ships
    assert not [n for n in names if n.startswith(("simulator/", "fleet/", "build/", ".venv/", "tests/integration/"))]
    assert not [n for n in names if n.split("/")[0].endswith("_cache") or "__pycache__" in n]
    target = tmp_path / "installed"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(target)],
                   check=True, capture_output=True, env=env, cwd=tmp_path)
    assert (target / "ansible_collections" / "tradeops" / "incident_response" / "MANIFEST.json").is_file()
    env["ANSIBLE_COLLECTIONS_PATH"] = str(target)
    for module in MODULES:
        done = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "tradeops.incident_response." + module],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0 and "EXAMPLES" in done.stdout and "RETURN VALUES" in done.stdout, (module, done.stderr[-500:])
    roles = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "-l", "tradeops.incident_response"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    for role in sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir()):
        assert "tradeops.incident_response." + role in roles.stdout, role


def test_action_group_lists_every_coinbase_module():
    import yaml

    group = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["coinbase"]
    assert sorted(group) == [m for m in MODULES if m.startswith("coinbase_")]
