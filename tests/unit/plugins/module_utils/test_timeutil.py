"""timeutil.py: RFC 3339 as Coinbase writes it (nanoseconds, Z) and refusal of times without a zone."""

from __future__ import annotations

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import (
    iso_utc,
    parse_optional_rfc3339,
    parse_rfc3339,
)


@pytest.mark.parametrize("text, epoch", [
    ("2026-11-27T03:12:00Z", 1795749120.0),
    ("2026-11-27T03:12:00.123456789Z", 1795749120.123456),
    ("2026-11-27T03:12:00.5Z", 1795749120.5),
    ("2026-11-27T04:12:00+01:00", 1795749120.0),
    ("2026-11-27 03:12:00Z", 1795749120.0),
])
def test_parse(text, epoch):
    assert parse_rfc3339(text) == pytest.approx(epoch)


@pytest.mark.parametrize("text", ["2026-11-27T03:12:00", "yesterday", "", None])
def test_refused(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)
    assert parse_optional_rfc3339(text) is None


def test_iso_utc():
    assert iso_utc(1795749120) == "2026-11-27T03:12:00Z"
    assert iso_utc(1795749120.25, "milliseconds") == "2026-11-27T03:12:00.250Z"
