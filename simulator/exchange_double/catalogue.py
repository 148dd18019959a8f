"""The default product catalogue and deterministic identifiers.

CFM perpetual-style futures are listed by Coinbase as EXPIRING contracts with a placeholder
2030-12-20 expiry, a funding interval and a "PERP" display name; one dated future and one spot
product sit beside them so that product-type and expiry filters have something to filter.
"""

from __future__ import annotations

import calendar
import random
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from exchange_double.models import FUTURE, SPOT, Product

PERP_PLACEHOLDER_EXPIRY = datetime(2030, 12, 20, 16, 0, tzinfo=timezone.utc).timestamp()
FUNDING_INTERVAL_S = 3600


class IdFactory:
    """UUIDs from a seeded generator, so a run with the same seed has the same ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"ids-{seed}")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))


def _perp(
    product_id: str, root: str, name: str, contract_size: str, price: str, tick: str, now: float
) -> Product:
    return Product(
        product_id=product_id,
        product_type=FUTURE,
        display_name=f"{root} PERP",
        base_currency=root,
        quote_currency="USD",
        base_name=name,
        quote_name="US Dollar",
        price=Decimal(price),
        base_increment=Decimal(1),
        quote_increment=Decimal(tick),
        base_min_size=Decimal(1),
        base_max_size=Decimal(100000),
        venue="FCM",
        contract_size=Decimal(contract_size),
        contract_root_unit=root,
        contract_code=product_id.split("-")[0],
        contract_expiry=PERP_PLACEHOLDER_EXPIRY,
        perp_style=True,
        group_description=f"Nano {name} Perp Style",
        funding_rate=Decimal("0.000011"),
        funding_time=next_funding_time(now, FUNDING_INTERVAL_S),
        funding_interval_s=FUNDING_INTERVAL_S,
        open_interest=Decimal(25000),
    )


def _last_friday_of_next_month(now: float) -> datetime:
    today = datetime.fromtimestamp(now, tz=timezone.utc)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    last_day = calendar.monthrange(year, month)[1]
    day = datetime(year, month, last_day, 16, 0, tzinfo=timezone.utc)
    while day.weekday() != calendar.FRIDAY:
        day = day.replace(day=day.day - 1)
    return day


def _dated_future(now: float) -> Product:
    expiry = _last_friday_of_next_month(now)
    code = expiry.strftime("%d%b%y").upper()
    return Product(
        product_id=f"BIT-{code}-CDE",
        product_type=FUTURE,
        display_name=f"BTC {expiry.strftime('%d %b %y').upper()}",
        base_currency="BTC",
        quote_currency="USD",
        base_name="Bitcoin",
        quote_name="US Dollar",
        price=Decimal(95650),
        base_increment=Decimal(1),
        quote_increment=Decimal(5),
        base_min_size=Decimal(1),
        base_max_size=Decimal(100000),
        venue="FCM",
        contract_size=Decimal("0.01"),
        contract_root_unit="BTC",
        contract_code="BIT",
        contract_expiry=expiry.timestamp(),
        group_description="Nano Bitcoin Futures",
        open_interest=Decimal(8000),
    )


def _spot_btc() -> Product:
    return Product(
        product_id="BTC-USD",
        product_type=SPOT,
        display_name="BTC-USD",
        base_currency="BTC",
        quote_currency="USD",
        base_name="Bitcoin",
        quote_name="US Dollar",
        price=Decimal("94980.00"),
        base_increment=Decimal("0.00000001"),
        quote_increment=Decimal("0.01"),
        base_min_size=Decimal("0.00000001"),
        base_max_size=Decimal(3400),
        venue="CBE",
    )


def default_products(now: float) -> list[Product]:
    """The catalogue a fresh double starts with (prices then move on the random walk)."""
    products = [
        _perp("BIP-20DEC30-CDE", "BTC", "Bitcoin", "0.01", "95000", "5", now),
        _perp("ETP-20DEC30-CDE", "ETH", "Ether", "0.1", "3500", "0.5", now),
        _perp("SLP-20DEC30-CDE", "SOL", "Solana", "5", "180", "0.01", now),
        _dated_future(now),
        _spot_btc(),
    ]
    for product in products:
        product.open_24h = product.high_24h = product.low_24h = product.price
        product.volume_24h = Decimal(1000)
    return products


def next_funding_time(now: float, interval_s: int) -> float:
    """The next funding boundary after ``now`` (funding is charged on interval boundaries)."""
    return (int(now) // interval_s + 1) * interval_s


# Spot wallets every portfolio gets, with the starting balance of the non-USD ones.
SPOT_WALLETS: tuple[tuple[str, str, bool, Decimal], ...] = (
    ("USD", "USD Wallet", True, Decimal(0)),  # USD starts at config.starting_cbi_usd
    ("USDC", "USDC Wallet", False, Decimal(5000)),
    ("BTC", "BTC Wallet", False, Decimal("0.5")),
    ("ETH", "ETH Wallet", False, Decimal(4)),
    ("SOL", "SOL Wallet", False, Decimal(40)),
)
