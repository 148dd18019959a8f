"""What both bot services share: configuration, logs, the trading-mode file, market.json, the client.

The layout follows docs/architecture.md ("What a fleet host looks like"). Paths can be moved
with environment variables only so that the unit tests can run the bot outside a fleet host.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Optional

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import errors as cb_errors
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import CoinbaseClient
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import (
    credentials_from_env,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.retry import RetryPolicy

MODES = ("NORMAL", "REDUCE_ONLY", "HALTED")


def _env_float(env: dict, name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit("%s=%r is not a number" % (name, raw))
    if value < minimum:
        raise SystemExit("%s=%s is below its minimum %s" % (name, raw, minimum))
    return value


@dataclass
class Config:
    bot_id: str
    product_ids: list
    api_base_url: str
    ws_market_url: str
    ws_user_url: str
    ca_bundle: Optional[str]
    key_slot: str
    # Rate settings come from the unit's Environment= (SOP 5 drop-in), never from bot.env.
    max_orders_per_second: float
    batch_size: int
    max_open_orders: int
    quotes_per_cycle: int
    max_position: int
    trading_mode_file: str
    market_state_file: str
    log_dir: str
    cycle_s: float
    market_order_every_s: float
    exit_every_s: float

    @classmethod
    def from_env(cls, environ: Optional[dict] = None) -> "Config":
        env = dict(os.environ if environ is None else environ)
        products = [p.strip() for p in env.get("PRODUCT_IDS", "").replace(",", " ").split() if p.strip()]
        if not products:
            raise SystemExit("PRODUCT_IDS is empty: set it in /etc/trading-bot/bot.env")
        return cls(
            bot_id=env.get("BOT_ID") or socket.gethostname(),
            product_ids=products,
            api_base_url=env.get("COINBASE_API_BASE_URL") or "https://api.coinbase.com",
            ws_market_url=env.get("COINBASE_WS_MARKET_URL") or "wss://advanced-trade-ws.coinbase.com",
            ws_user_url=env.get("COINBASE_WS_USER_URL") or "wss://advanced-trade-ws-user.coinbase.com",
            ca_bundle=env.get("COINBASE_CA_BUNDLE") or None,
            key_slot=env.get("COINBASE_KEY_SLOT") or "primary",
            max_orders_per_second=_env_float(env, "MAX_ORDERS_PER_SECOND", 20.0, 0.1),
            batch_size=int(_env_float(env, "BATCH_SIZE", 50, 1)),
            max_open_orders=int(_env_float(env, "MAX_OPEN_ORDERS", 40, 1)),
            quotes_per_cycle=int(_env_float(env, "QUOTES_PER_CYCLE", 4, 1)),
            max_position=int(_env_float(env, "MAX_POSITION_CONTRACTS", 10, 1)),
            trading_mode_file=env.get("TRADING_MODE_FILE") or "/var/lib/trading-bot/trading_mode",
            market_state_file=env.get("MARKET_STATE_FILE") or "/var/lib/trading-bot/market.json",
            log_dir=env.get("TRADING_BOT_LOG_DIR") or "/opt/trading-bot/logs",
            cycle_s=_env_float(env, "ORDER_CYCLE_S", 1.0, 0.05),
            market_order_every_s=_env_float(env, "MARKET_ORDER_EVERY_S", 15.0, 0.1),
            exit_every_s=_env_float(env, "EXIT_EVERY_S", 5.0, 0.1),
        )


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + ".%03dZ" % record.msecs


def setup_logger(name: str, log_dir: str, filename: str) -> logging.Logger:
    """Lines start with the UTC time, so `tail -f logs/websocket.log | grep ...` reads as a timeline.

    The file rotates itself (the hosts have no logrotate); stderr goes to the journal too.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = _UTCFormatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list = [logging.StreamHandler(sys.stderr)]
    try:
        os.makedirs(log_dir, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            os.path.join(log_dir, filename), maxBytes=20 * 1024 * 1024, backupCount=3, encoding="utf-8"))
    except OSError as exc:  # still run, and say why the file is missing
        print("cannot open %s/%s: %s" % (log_dir, filename, exc), file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def utc_iso(epoch: Optional[float] = None) -> str:
    epoch = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".%03dZ" % int((epoch % 1) * 1000)


def write_json_atomic(path: str, data: Any) -> None:
    """Readers never see a half-written file: write a temporary file beside it, then rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".market.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: str) -> Optional[dict]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def read_trading_mode(path: str) -> tuple:
    """(mode, problem). A missing, unreadable or unknown file means HALTED (the contract)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            word = handle.read(64).strip().upper()
    except FileNotFoundError:
        return "HALTED", "trading mode file %s is missing" % path
    except (OSError, UnicodeError) as exc:
        return "HALTED", "trading mode file %s is unreadable (%s)" % (path, getattr(exc, "strerror", None) or exc)
    if word not in MODES:
        return "HALTED", "trading mode file %s says %r, not one of %s" % (path, word[:20], "/".join(MODES))
    return word, None


def describe_error(exc: BaseException) -> str:
    """One line for the log: the error class, the HTTP status if any, the client's message (never key material)."""
    if isinstance(exc, cb_errors.CoinbaseError):
        status = getattr(exc, "status", None)
        return "%s%s: %s" % (type(exc).__name__, " status=%s" % status if status else "", getattr(exc, "message", str(exc)))
    return "%s: %s" % (type(exc).__name__, exc)


def load_credentials(log: logging.Logger) -> Any:
    """The key named in bot.env, or None (logged) when it cannot be loaded."""
    try:
        credentials = credentials_from_env()
    except cb_errors.CoinbaseError as exc:
        log.error("error credentials: %s", describe_error(exc))
        return None
    log.info("credentials loaded key=%s algorithm=%s slot=%s", credentials.key_name, credentials.algorithm,
             os.environ.get("COINBASE_KEY_SLOT", "?"))
    return credentials


def make_client(cfg: Config, credentials: Any) -> CoinbaseClient:
    # Short timeout and few retries: the bot's own loop backs off between cycles, and a cycle that
    # hangs for a minute inside the client would keep it from noticing a new trading mode.
    return CoinbaseClient(
        credentials,
        base_url=cfg.api_base_url,
        timeout=5.0,
        ca_bundle=cfg.ca_bundle,
        retry=RetryPolicy(max_retries=2, initial_delay=0.5, max_delay=4.0),
        max_requests_per_second=25.0,
        user_agent="tradeops-drill-bot/%s" % cfg.bot_id,
    )


# The SOP's backoff (1 s doubling, capped at 60 s) for the bot's own reconnects and error pauses.
BACKOFF = RetryPolicy(max_retries=1000, initial_delay=1.0, max_delay=60.0)


class Stopper:
    """SIGTERM/SIGINT (systemctl stop, pkill -f trading_bot) ends the loop cleanly: exit 0, no restart."""

    def __init__(self) -> None:
        self.stopping = False
        self.signal_name: Optional[str] = None

    def install(self, callback: Any = None) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self.stopping = True
            self.signal_name = signal.Signals(signum).name
            if callback:
                callback()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))
