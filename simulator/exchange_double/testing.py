"""Start a real double for a test: ``with running_double(tmp_path) as double: ...``.

The double runs as a subprocess (``python -m exchange_double serve --port 0``), exactly as
operators run it, so tests exercise the real TLS, sockets and signal handling. Keyword
options are the server's tunables (``tick_interval=0.05``, ``rate_limit_enabled=False``...,
see ``exchange_double.config.DoubleConfig``). Use it in a fixture::

    @pytest.fixture(scope="module")
    def double(tmp_path_factory):
        with running_double(tmp_path_factory.mktemp("double")) as handle:
            yield handle
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from exchange_double.config import config_fields
from exchange_double.control import ControlError, DoubleControl
from exchange_double.keys import GeneratedKey, KeyType, generate_key

FLEET_GATEWAY = "10.88.0.1"  # podman's default bridge gateway: where fleet hosts reach this machine


@dataclass
class DoubleHandle:
    """A running double and the ways to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    host: str
    ca_path: Path
    ca_dir: Path
    state_dir: Path
    log_path: Path
    control: DoubleControl = field(repr=False)

    @property
    def sdk_base_url(self) -> str:
        """What the official SDK takes as ``base_url`` (host:port, no scheme)."""
        return f"localhost:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://localhost:{self.port}"

    @property
    def ws_user_url(self) -> str:
        return f"wss://localhost:{self.port}/ws/user"

    @property
    def host_for_fleet(self) -> str | None:
        """The address fleet containers use for this machine; None when bound to loopback only."""
        return FLEET_GATEWAY if self.host in ("0.0.0.0", "::") else None

    @property
    def fleet_base_url(self) -> str:
        """The base URL a fleet host uses (its /etc/hosts points api.coinbase.com here)."""
        return f"https://api.coinbase.com:{self.port}"

    def new_key(
        self,
        key_type: KeyType = "ec",
        permissions: list[str] | str | None = None,
        portfolio_uuid: str | None = None,
        name: str | None = None,
    ) -> GeneratedKey:
        """Generate a throwaway key and register its public half (default scopes view,trade)."""
        key = generate_key(key_type, name)
        self.control.register_key(key.name, key.public_pem, permissions=permissions, portfolio_uuid=portfolio_uuid)
        return key

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (the double writes its snapshot and exits), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def double_command(
    *,
    host: str,
    port: int,
    ca_dir: Path,
    state_dir: Path,
    ready_file: Path,
    sans: tuple[str, ...] | list[str] = (),
    **options: Any,
) -> list[str]:
    """The ``serve`` command line for these options (unknown options raise TypeError)."""
    known = {f.name for f in config_fields()}
    command = [sys.executable, "-m", "exchange_double", "serve", "--host", host, "--port", str(port),
               "--ca-dir", str(ca_dir), "--state-dir", str(state_dir), "--ready-file", str(ready_file)]
    for san in sans:
        command += ["--san", san]
    for name, value in options.items():
        if name not in known:
            raise TypeError(f"unknown double option {name!r}; known: {', '.join(sorted(known))}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        command += ["--" + name.replace("_", "-"), text]
    return command


@contextmanager
def running_double(
    tmp_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ca_dir: Path | None = None,
    state_dir: Path | None = None,
    sans: tuple[str, ...] | list[str] = (),
    startup_timeout: float = 30.0,
    **options: Any,
) -> Iterator[DoubleHandle]:
    """Run a double in a subprocess for the duration of the ``with`` block."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ca_dir = ca_dir or tmp_path / "ca"
    state_dir = state_dir or tmp_path / "state"
    ready_file = tmp_path / "ready.json"
    ready_file.unlink(missing_ok=True)
    log_path = tmp_path / "double.log"
    command = double_command(host=host, port=port, ca_dir=ca_dir, state_dir=state_dir,
                             ready_file=ready_file, sans=sans, **options)
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    handle: DoubleHandle | None = None
    try:
        ready = _wait_ready(process, ready_file, log_path, startup_timeout)
        ca_path = Path(ready["ca_path"])
        handle = DoubleHandle(
            process=process,
            url=ready["url"],
            port=int(ready["port"]),
            host=host,
            ca_path=ca_path,
            ca_dir=ca_dir,
            state_dir=state_dir,
            log_path=log_path,
            control=DoubleControl(ready["url"], ca_path),
        )
        yield handle
    finally:
        if handle is not None:
            handle.stop()
        elif process.poll() is None:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], ready_file: Path, log_path: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the double exited with {process.returncode} before it was ready:\n{_tail(log_path)}")
        if ready_file.exists():
            ready: dict[str, Any] = json.loads(ready_file.read_text())
            control = DoubleControl(ready["url"], ready["ca_path"], timeout=5)
            try:
                control.health()
                return ready
            except ControlError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the double was not ready within {timeout}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
