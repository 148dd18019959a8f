"""The drill fleet's stand-in trading bot.

Two services, as the SOP names them: ``trading_bot.perpetuals`` (market data over the
WebSocket, data age, market.json) and ``trading_bot.orders`` (order placement that honours the
trading-mode file). Everything they send to the exchange goes through the collection's one
Coinbase client (``_coinbase``), copied next to them by fleet/provision.yml.
"""
