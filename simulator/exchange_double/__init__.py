"""The exchange double: a local stand-in for the Coinbase Advanced Trade API.

It serves REST, WebSocket and a control API over HTTPS on one port, with its own local CA, so
the official SDK, the collection's client, the drill fleet and the tests can all talk to it as
if it were ``api.coinbase.com``. See ``simulator/README.md`` for the full contract.
"""

__version__ = "0.1.0"
