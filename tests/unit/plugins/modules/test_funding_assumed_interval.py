"""coinbase_funding_info without an interval from Coinbase: the assumption is used, marked and warned about."""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.tradeops.incident_response.plugins.modules.coinbase_funding_info import FundingReport


class FakeClient:
    def __init__(self, products):
        self.products = products

    def list_products(self, product_type=None, public=False):
        return self.products


def module(**params):
    defaults = dict(products=[], spike_threshold_pct=0.1, position_size=None, read_positions=False, daily_target=None,
                    assumed_funding_interval=3600.0)
    warnings = []
    return SimpleNamespace(params=dict(defaults, **params), warn=warnings.append, warnings=warnings)


def perp(interval):
    details = {"funding_rate": "0.0002", "funding_time": "2026-11-27T04:00:00Z", "contract_size": "0.01", "display_name": "BTC PERP"}
    if interval is not None:
        details["funding_interval"] = interval
    return {"product_id": "BIP", "price": "100000", "display_name": "BTC PERP", "future_product_details": details}


def test_missing_interval_is_assumed_and_said():
    fake = module(position_size=1)
    result = FundingReport(fake, public=True).run(FakeClient([perp(None)]), now=0)
    [entry] = result["products"]
    assert entry["interval_assumed"] is True and entry["interval_s"] == 3600.0 and entry["rate_8h_pct"] == 0.16 and entry["spike"]
    assert entry["position"]["payment_per_day"] == 4.8
    assert fake.warnings == ["BIP: Coinbase sent no funding interval; assumed 3600 s."]


def test_unreadable_interval_uses_the_configured_assumption():
    fake = module(assumed_funding_interval=28800.0)
    [entry] = FundingReport(fake, public=True).run(FakeClient([perp("every hour")]), now=0)["products"]
    assert entry["interval_assumed"] is True and entry["rate_8h_pct"] == 0.02 and not entry["spike"]
    assert "unreadable" in fake.warnings[0]
