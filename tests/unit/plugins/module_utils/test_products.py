"""Resolving BTC-PERP and friends to CFM product IDs, and saying so when it cannot."""

from __future__ import annotations

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import InputError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.products import funding, resolve

CATALOGUE = [
    {"product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP",
     "future_product_details": {"contract_root_unit": "BTC", "funding_rate": "0.000012", "funding_interval": "3600s",
                                "funding_time": "2026-11-27T04:00:00Z", "perpetual_details": {}}},
    {"product_id": "BIT-26DEC26-CDE", "display_name": "BTC 26 DEC 26",
     "future_product_details": {"contract_root_unit": "BTC", "contract_expiry_type": "EXPIRING"}},
    {"product_id": "ETP-20DEC30-CDE", "display_name": "ETH PERP",
     "future_product_details": {"contract_root_unit": "ETH", "funding_rate": "-0.00002", "funding_interval": "3600s"}},
    {"product_id": "BTC-USD", "display_name": "BTC-USD"},
]


@pytest.mark.parametrize("name", ["BTC-PERP", "btc perp", "BTC PERP", "BIP-20DEC30-CDE", "BTC-PERP-INTX"])
def test_names_people_use(name):
    assert resolve(CATALOGUE, [name])[0]["product_id"] == "BIP-20DEC30-CDE"


def test_result_says_what_was_asked_and_what_it_became():
    hit = resolve(CATALOGUE, ["ETH-PERP"])[0]
    assert (hit["requested"], hit["product_id"], hit["display_name"]) == ("ETH-PERP", "ETP-20DEC30-CDE", "ETH PERP")


def test_unknown_name_lists_what_exists():
    with pytest.raises(InputError) as info:
        resolve(CATALOGUE, ["DOGE-PERP"])
    assert "matches no product" in str(info.value) and "BIP-20DEC30-CDE (BTC PERP)" in str(info.value)


def test_funding_reads_top_level_first():
    assert funding(CATALOGUE[0])["funding_rate"] == "0.000012"
    legacy = {"future_product_details": {"perpetual_details": {"funding_rate": "0.0001", "funding_time": "t"}}}
    assert funding(legacy)["funding_rate"] == "0.0001"
