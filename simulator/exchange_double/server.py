"""The HTTPS server: one port for REST, WebSocket and the control API.

The gateway middleware plays the part of Coinbase's API gateway, in this order: injected
faults (latency, errors) -> route lookup (404/405 JSON) -> authentication (401 plain text) ->
rate limit (429) -> scope (403) -> handler. Every API request is written to the request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable

from aiohttp import web

from exchange_double import control_api, rest, statedump
from exchange_double.auth import AuthError, rest_uris
from exchange_double.ca import ca_fingerprint, ensure_server_credentials
from exchange_double.config import DoubleConfig
from exchange_double.context import DOUBLE, Double, create_double
from exchange_double.errors import injected_error, json_error, missing_scopes, rate_limited, unauthorized
from exchange_double.ratelimit import Decision

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_control/"
WEBSOCKET_PATHS = ("/", "/ws/market", "/ws/user")


# ---------------------------------------------------------------------- the gateway
@web.middleware
async def gateway(request: web.Request, handler: rest.Handler) -> web.StreamResponse:
    if request.path.startswith(CONTROL_PREFIX):
        return await handler(request)  # never faulted, never rate limited
    double = request.app[DOUBLE]
    started = time.perf_counter()
    try:
        response = await _through_gateway(request, handler, double)
    except Exception as exc:  # a bug in the double must still answer, and be logged
        mapped = rest.error_for_exception(exc)
        if mapped is None:
            log.exception("unhandled error in %s %s", request.method, request.path)
            mapped = json_error(500, "internal error in the exchange double")
        request["error"] = str(exc)
        response = mapped
    if not request.get("logged_by_hub"):
        _log_request(double, request, response.status, (time.perf_counter() - started) * 1000)
    return response


async def _through_gateway(request: web.Request, handler: rest.Handler, double: Double) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        delay = double.faults.latency_seconds(request.method, request.path)
        if delay:
            request["fault"] = "latency"
            await asyncio.sleep(delay)
        injected = double.faults.error_for(request.method, request.path)
        if injected is not None:
            request["fault"] = injected.fault
            return injected_error(injected.status, injected.body_format, injected.message, injected.retry_after)
    match = request.match_info
    if match.http_exception is not None:
        if match.http_exception.status == 405:
            return json_error(405, f"method {request.method} is not allowed on {request.path}")
        return json_error(404, f"no such endpoint: {request.path}")
    spec = rest.spec_for(match.handler)
    if spec is None:
        return await handler(request)  # WebSocket upgrade paths
    if spec.public:
        if double.config.rate_limit_enabled:
            per_ip = double.limiter.check(f"ip:{request.remote}", double.config.public_rps)
            if not per_ip.allowed:
                return _with_limit_headers(rate_limited(), per_ip)
        return await handler(request)
    token = _bearer_token(request)
    if token is None:
        request["auth_error"] = "no Authorization: Bearer header"
        return unauthorized()
    raw_path = request.raw_path.split("?", 1)[0]
    try:
        key = double.verifier.verify(token, rest_uris(request.method, request.host, {request.path, raw_path}))
    except AuthError as exc:
        request["auth_error"] = exc.reason
        request["claimed_key"] = exc.claimed_key
        return unauthorized()
    request["api_key"] = key
    decision: Decision | None = None
    if double.config.rate_limit_enabled:
        decision = double.limiter.check(f"key:{key.name}", double.config.private_rps)
        if not decision.allowed:
            return _with_limit_headers(rate_limited(), decision)
    if spec.scope is not None and not key.has_scope(spec.scope):
        return missing_scopes()
    response = await handler(request)
    return _with_limit_headers(response, decision) if decision else response


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _with_limit_headers(response: web.StreamResponse, decision: Decision) -> web.StreamResponse:
    response.headers["x-ratelimit-limit"] = str(decision.limit)
    response.headers["x-ratelimit-remaining"] = str(decision.remaining)
    # Epoch seconds at which the next request slot frees up.
    response.headers["x-ratelimit-reset"] = str(math.ceil(time.time() + decision.reset_after))
    return response


def _log_request(double: Double, request: web.Request, status: int, duration_ms: float) -> None:
    key = request.get("api_key")
    client_order_id = request.get("client_order_id")
    double.request_log.record(
        method=request.method,
        path=request.path,
        query=request.query_string,
        status=status,
        key=key.name if key is not None else None,
        client_ip=request.remote,
        duration_ms=round(duration_ms, 3),
        client_order_id=client_order_id if isinstance(client_order_id, str) else None,
        auth_error=request.get("auth_error"),
        claimed_key=request.get("claimed_key"),
        fault=request.get("fault"),
        error=request.get("error") or request.get("rejection"),
    )


# ---------------------------------------------------------------------- the application
def build_app(double: Double) -> web.Application:
    app = web.Application(middlewares=[gateway], client_max_size=4 * 1024 * 1024)
    app[DOUBLE] = double
    rest.add_routes(app)
    control_api.add_routes(app)
    for path in WEBSOCKET_PATHS:
        app.router.add_get(path, double.hub.handle)
    app.cleanup_ctx.append(_background_tasks)
    return app


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    double = app[DOUBLE]
    loop = asyncio.get_running_loop()

    def schedule(delay: float, action: Callable[[], None]) -> None:
        loop.call_later(delay, action)

    double.exchange.scheduler = schedule
    tasks = [
        asyncio.create_task(_market_loop(double), name="market"),
        asyncio.create_task(double.hub.heartbeat_loop(), name="heartbeats"),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _market_loop(double: Double) -> None:
    """Each tick: expire orders, roll funding times, and (unless frozen) move prices."""
    while True:
        await asyncio.sleep(max(0.01, double.config.tick_interval))
        try:
            double.exchange.housekeeping()
            if not double.config.market_frozen:
                double.exchange.step_market()
        except Exception:  # one bad tick must not stop the market
            log.exception("market tick failed")


# ---------------------------------------------------------------------- serving
@dataclass(slots=True)
class ServeOptions:
    host: str
    port: int
    ca_dir: Path
    state_dir: Path
    sans: list[str]
    ready_file: Path | None


async def serve(options: ServeOptions, config: DoubleConfig) -> None:
    """Run until SIGTERM/SIGINT; then close sockets, write the snapshot and exit cleanly."""
    credentials = ensure_server_credentials(options.ca_dir, options.sans)
    double = create_double(config, options.state_dir)
    app = build_app(double)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    sock = _bind(options.host, options.port)
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock, ssl_context=credentials.ssl_context())
    await site.start()
    double.url = f"https://localhost:{port}"
    double.ca_path = str(credentials.ca_path)
    print(f"exchange-double: listening on {double.url} (bound to {options.host}:{port})", flush=True)
    print(f"exchange-double: CA certificate {credentials.ca_path} "
          f"(sha256 {ca_fingerprint(credentials.ca_path)})", flush=True)
    if options.ready_file is not None:
        _write_ready_file(options.ready_file, double, options.host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await double.hub.drop_all(mode="close", code=1001)
        await runner.cleanup()
        snapshot_path = options.state_dir / "snapshot.json"
        snapshot_path.write_text(json.dumps(statedump.full_snapshot(double), indent=1))
        double.request_log.close()
        if options.ready_file is not None:
            options.ready_file.unlink(missing_ok=True)
        print(f"exchange-double: stopped; state snapshot in {snapshot_path}", flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def _write_ready_file(path: Path, double: Double, host: str, port: int) -> None:
    """Written atomically once listening: a waiter never reads half a file."""
    info = {
        "url": double.url,
        "port": port,
        "host": host,
        "ca_path": double.ca_path,
        "pid": os.getpid(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
