"""``exchange-double``: serve the double, make a throwaway key, register a key.

``keygen`` writes the private key only to a file created with mode 0600 and prints only the
key name and the public-key path: private keys never reach a terminal or a CI log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from exchange_double.config import DoubleConfig, config_fields, coerce

DEFAULT_HOME = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "exchange-double"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exchange-double",
        description="A local stand-in for the Coinbase Advanced Trade API (REST, WebSocket, control API).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the double (HTTPS + WebSocket on one port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 so the drill fleet can reach it")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on; 0 picks a free one")
    serve.add_argument("--ca-dir", type=Path, default=DEFAULT_HOME / "ca", help="where the local CA lives (reused)")
    serve.add_argument("--state-dir", type=Path, default=DEFAULT_HOME / "state",
                       help="request log (requests.jsonl) and the shutdown snapshot (snapshot.json)")
    serve.add_argument("--san", action="append", default=[], metavar="NAME",
                       help="extra DNS name or IP for the server certificate (repeatable)")
    serve.add_argument("--ready-file", type=Path, help="write {url, port, ca_path, pid} here once listening")
    serve.add_argument("--log-level", default="WARNING", help="Python log level for the server's own messages")
    tunables = serve.add_argument_group("behaviour (also settable at run time: PATCH /_control/config)")
    for option in config_fields():
        flag = "--" + option.name.replace("_", "-")
        tunables.add_argument(flag, dest=f"cfg_{option.name}", metavar=str(option.type).upper(),
                              help=f"{option.metadata['help']} (default {option.default})")
    serve.set_defaults(run=_serve)

    keygen = commands.add_parser("keygen", help="write a throwaway CDP-style API key file (mode 0600)")
    keygen.add_argument("--type", choices=("ec", "ed25519"), default="ec", dest="key_type")
    keygen.add_argument("--out", type=Path, required=True, help="key file to create (must not exist)")
    keygen.add_argument("--name", help="key name (default: organizations/<uuid>/apiKeys/<uuid>)")
    keygen.add_argument("--pem", action="store_true",
                        help="Ed25519: store the private key as PKCS#8 PEM instead of the portal's raw base64")
    keygen.set_defaults(run=_keygen)

    register = commands.add_parser("register-key", help="register a public key with a running double")
    register.add_argument("--url", required=True, help="the double's URL, e.g. https://localhost:8443")
    register.add_argument("--ca", type=Path, required=True, help="the double's CA certificate")
    register.add_argument("--name", required=True, help="the key name (as in the key file)")
    register.add_argument("--public-key", type=Path, required=True, help="PEM public key file")
    register.add_argument("--permissions", default="view,trade", help="comma list of view,trade,transfer")
    register.add_argument("--portfolio", help="portfolio UUID (created if new; default: the default portfolio)")
    register.add_argument("--portfolio-type", default="DEFAULT", help="DEFAULT, CONSUMER, INTX or UNDEFINED")
    register.set_defaults(run=_register_key)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from exchange_double.server import ServeOptions, serve

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = DoubleConfig()
    for option in config_fields():
        raw = getattr(args, f"cfg_{option.name}")
        if raw is not None:
            setattr(config, option.name, coerce(option.type, raw, option.name))
    options = ServeOptions(
        host=args.host,
        port=args.port,
        ca_dir=args.ca_dir,
        state_dir=args.state_dir,
        sans=args.san,
        ready_file=args.ready_file,
    )
    try:
        asyncio.run(serve(options, config))
    except OSError as exc:
        print(f"exchange-double: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from exchange_double.keys import generate_key

    key = generate_key(args.key_type, args.name)
    out: Path = args.out
    if out.exists():
        print(f"exchange-double: {out} exists; refusing to overwrite a key file", file=sys.stderr)
        return 1
    key.write_key_file(out, pem=args.pem)
    public_path = out.with_name(out.name + ".pub.pem")
    public_path.write_text(key.public_pem)
    print(f"key name: {key.name}")
    print(f"public key: {public_path}")
    return 0


def _register_key(args: argparse.Namespace) -> int:
    from exchange_double.control import ControlError, DoubleControl

    control = DoubleControl(args.url, args.ca)
    try:
        result = control.register_key(
            args.name,
            args.public_key.read_text(),
            permissions=[p for p in args.permissions.split(",") if p.strip()],
            portfolio_uuid=args.portfolio,
            portfolio_type=args.portfolio_type,
        )
    except ControlError as exc:
        print(f"exchange-double: registering {args.name} failed: {exc}", file=sys.stderr)
        return 1
    scopes = ",".join(s for s in ("view", "trade", "transfer") if result[f"can_{s}"])
    print(f"registered {result['name']} ({result['algorithm']}, {scopes}) in portfolio {result['portfolio_uuid']}")
    return 0
