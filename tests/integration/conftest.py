"""Fixtures for tests that run the collection against a real exchange double.

- ``double``: one double per test session (a subprocess over HTTPS, as operators run it);
  ``clean_double`` resets its state (orders, positions, faults, request log) for a test.
- ``make_key``: a throwaway key registered on the double and written to a 0600 file.
- ``run_module``: runs a module in-process (fast, for the many cases of one module).
- ``ansible_playbook`` / ``ansible_runner_run``: run a playbook the way operators and AWX do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import pytest
import yaml
from exchange_double.testing import running_double
from support.modules import run_module

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"


@pytest.fixture(scope="session")
def double(tmp_path_factory):
    # Fast market ticks keep WebSocket tests short; everything else is the double's default.
    with running_double(tmp_path_factory.mktemp("double")) as handle:
        yield handle


@pytest.fixture
def clean_double(double):
    double.control.reset()
    double.control.clear_faults()
    double.control.clear_requests()
    yield double
    double.control.clear_faults()


def write_secret(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


@pytest.fixture
def make_key(clean_double, tmp_path):
    """make_key(key_type="ec", permissions="view,trade", portfolio_uuid=None, as_json=False) -> key with .name .path .secret."""
    counter = iter(range(1000))

    def _make(key_type: str = "ec", permissions: Any = "view,trade", portfolio_uuid: Optional[str] = None, as_json: bool = False):
        key = clean_double.new_key(key_type, permissions=permissions, portfolio_uuid=portfolio_uuid)
        index = next(counter)
        if as_json:
            path = write_secret(tmp_path / ("key%d.json" % index), json.dumps(key.key_json()))
        else:
            path = write_secret(tmp_path / ("key%d.pem" % index), key.secret)
        return SimpleNamespace(name=key.name, path=path, secret=key.secret, key=key, public_pem=key.public_pem)

    return _make


@pytest.fixture
def connection(clean_double):
    """connection(key) -> the connection options of a Coinbase module pointed at the double."""

    def _connection(key=None, **extra: Any) -> dict:
        args = {"api_url": clean_double.url, "ca_bundle": str(clean_double.ca_path)}
        if key is not None:
            args.update(api_key_name=key.name, private_key_path=key.path)
        args.update(extra)
        return args

    return _connection


@pytest.fixture(name="run_module")
def run_module_fixture():
    return run_module


def ansible_env(extra: Optional[dict] = None) -> dict:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
    )
    env.update(extra or {})
    return env


def write_playbook(directory: Path, plays: Any, name: str = "playbook.yml") -> Path:
    path = directory / name
    path.write_text(plays if isinstance(plays, str) else yaml.safe_dump(plays, sort_keys=False))
    return path


@pytest.fixture
def ansible_playbook(tmp_path):
    """ansible_playbook(playbook, extra_vars=None, check=False, verbosity=0, inventory=None, env=None, json_output=True).

    ``playbook`` is a path or a list of plays. Returns (returncode, output, results) where
    ``results`` maps task name -> list of per-host results (from the ansible.posix.json callback).
    """

    def _run(playbook: Any, extra_vars: Optional[dict] = None, check: bool = False, verbosity: int = 0,
             inventory: Optional[str] = None, env: Optional[dict] = None, json_output: bool = True, timeout: int = 600):
        path = playbook if isinstance(playbook, (str, Path)) else write_playbook(tmp_path, playbook)
        if inventory is None:
            # Interpreter discovery on this machine can find a broken pyenv shim: name ours.
            inventory = str(tmp_path / "localhost.ini")
            Path(inventory).write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(path), "-i", inventory]
        if extra_vars:
            vars_file = tmp_path / "extra_vars.json"
            vars_file.write_text(json.dumps(extra_vars))
            command += ["-e", "@%s" % vars_file]
        if check:
            command.append("--check")
        if verbosity:
            command.append("-" + "v" * verbosity)
        run_env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"} if json_output else {}
        run_env.update(env or {})
        done = subprocess.run(command, cwd=str(ROOT), env=ansible_env(run_env), capture_output=True, text=True, timeout=timeout)
        output = done.stdout + done.stderr
        results = {}
        if json_output:
            try:
                data = json.loads(done.stdout)
            except ValueError:
                data = {"plays": []}
            for play in data.get("plays", []):
                for task in play.get("tasks", []):
                    results.setdefault(task["task"]["name"], []).append(task["hosts"])
        return done.returncode, output, results

    return _run


@pytest.fixture
def ansible_runner_run(tmp_path):
    """ansible_runner_run(playbook_path, extravars, inventory=None, cmdline=None) -> the runner object (AWX's path)."""
    import ansible_runner

    def _run(playbook: Any, extravars: Optional[dict] = None, inventory: Optional[str] = None, cmdline: Optional[str] = None):
        path = playbook if isinstance(playbook, (str, Path)) else write_playbook(tmp_path, playbook)
        private = tmp_path / "runner"
        (private / "env").mkdir(parents=True, exist_ok=True)
        (private / "env" / "envvars").write_text(yaml.safe_dump(ansible_env({})))
        return ansible_runner.run(
            private_data_dir=str(private),
            playbook=str(Path(path).resolve()),
            inventory=inventory or "localhost ansible_connection=local ansible_python_interpreter=%s" % sys.executable,
            extravars=extravars or {},
            cmdline=cmdline,
            project_dir=str(ROOT),
            quiet=True,
        )

    return _run
