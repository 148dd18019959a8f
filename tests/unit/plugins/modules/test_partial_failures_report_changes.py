"""A failure after a change reports changed (bot_units, egress_block, bot_log_rotate),
unreadable dates are no traceback (bot_log_rotate, bot_log_info), and the Coinbase modules reuse
the collection's helpers (coinbase_funding_info: signed_contracts; coinbase_auth_check:
list_accounts, every page)."""

from __future__ import annotations

import errno
import time
from unittest import mock

import pytest

from support.modules import run_module
from test_bot_units import ORDERS, PERPS, FakeSystemd
from test_bot_units import run as run_units
from test_egress_block import CHAIN, FakeTables
from test_egress_block import run as run_egress

from ansible_collections.tradeops.incident_response.plugins.modules import bot_log_info, bot_log_rotate
from ansible_collections.tradeops.incident_response.plugins.modules import coinbase_auth_check, coinbase_funding_info

ROTATE = "ansible_collections.tradeops.incident_response.plugins.modules.bot_log_rotate"


# ---------------------------------------------------------------------- bot_units
@pytest.fixture
def systemd(tmp_path):
    return FakeSystemd(str(tmp_path / "system.control"), **{ORDERS: "active", PERPS: "active"})


def test_bot_units_a_stop_that_times_out_was_still_issued_so_it_changed(systemd):
    systemd.stubborn.add(ORDERS)
    result = run_units(systemd, {"units": [ORDERS], "state": "stopped", "timeout": 3})
    assert result["failed"] and "did not stop within 3 s" in result["msg"]
    assert systemd.changes() == [["stop", "--no-block", ORDERS]]
    assert result["changed"] is True
    assert result["actions"] == ["issued systemctl stop --no-block %s (was active/running)" % ORDERS]


def test_bot_units_a_completed_stop_still_reads_as_stopped(systemd):
    result = run_units(systemd, {"units": [ORDERS], "state": "stopped"})
    assert not result["failed"] and result["changed"]
    assert len(result["actions"]) == 1 and result["actions"][0].startswith("stopped %s (active/running -> inactive/dead)" % ORDERS)


# ---------------------------------------------------------------------- egress_block
class BrokenIp6(FakeTables):
    """ip6tables -S fails: the IPv4 block is in place by then."""

    def __call__(self, module, cmd, **kwargs):
        if cmd[0].endswith("ip6tables") and cmd[5:] == ["-S"]:
            return 4, "", "ip6tables v1.8.9 (nf_tables): Could not fetch rule set generation id"
        return super().__call__(module, cmd, **kwargs)


@pytest.mark.parametrize("check_mode", [False, True])
def test_egress_block_a_failure_after_rules_were_added_reports_changed(check_mode):
    fake = BrokenIp6()
    result = run_egress(fake, {}, check_mode=check_mode)
    assert result["failed"] and "ip6tables -S failed" in result["msg"]
    assert result["changed"] is True and "iptables -N %s" % CHAIN in result["rules_added"]
    assert (CHAIN in fake.chains["ipv4"]) is not check_mode


def test_egress_block_a_failure_before_any_change_is_not_changed():
    result = run_egress(FakeTables(), {}, dns={})
    assert result["failed"] and "could not resolve" in result["msg"]
    assert result["changed"] is False and result["rules_added"] == []


# ---------------------------------------------------------------------- bot_log_rotate
def rotate(log, **options):
    return run_module("bot_log_rotate", dict(dict(paths=[str(log)], force=True, keep=3, writer_units=[]), **options))


def pause_times_out(self):
    raise OSError(errno.ETIMEDOUT, "writers [4242] did not stop within 2 s")


def test_rotate_a_pause_that_times_out_after_the_shift_is_changed_and_leaves_no_partial_copy(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text("line 3\n")
    (tmp_path / "orders.log.1").write_text("line 2\n")
    with mock.patch(ROTATE + ".Paused.__enter__", pause_times_out):
        result = rotate(log)
    assert result["failed"] and "did not stop within 2 s" in result["msg"]
    assert result["changed"] is True and result["rotated"] == []
    entry = result["logs"][0]
    assert "renamed %s.1 to .2" % log in entry["error"]
    # the log keeps everything, the earlier rotation moved along, and our partial copy is gone
    assert log.read_text() == "line 3\n" and (tmp_path / "orders.log.2").read_text() == "line 2\n"
    assert not (tmp_path / "orders.log.1").exists()


def test_rotate_a_failure_with_nothing_to_shift_is_not_changed(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text("line 1\n")
    with mock.patch(ROTATE + ".Paused.__enter__", pause_times_out):
        result = rotate(log)
    assert result["failed"] and result["changed"] is False
    assert log.read_text() == "line 1\n" and sorted(p.name for p in tmp_path.iterdir()) == ["orders.log"]


def test_rotate_a_truncation_that_fails_drops_the_copy(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text("line 1\n")

    def truncate(path, length):
        raise OSError(errno.EROFS, "Read-only file system", path)

    with mock.patch(ROTATE + ".os.truncate", truncate):
        result = rotate(log)
    assert result["failed"] and "Read-only file system" in result["msg"] and result["changed"] is False
    assert log.read_text() == "line 1\n" and not (tmp_path / "orders.log.1").exists()


def test_rotate_still_works(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text("line 1\n")
    result = rotate(log)
    assert not result["failed"] and result["changed"] and result["rotated"] == [str(log)]
    assert log.read_text() == "" and (tmp_path / "orders.log.1").read_text() == "line 1\n"


# ---------------------------------------------------------------------- impossible dates
BAD_DATE = "2026-13-45T99:61:61 ERROR something\n"


def test_rotate_first_line_with_an_impossible_date_has_no_age(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text(BAD_DATE)
    assert bot_log_rotate.first_line_time(str(log)) is None
    result = rotate(log, force=False)
    assert not result["failed"] and result["logs"][0]["age_days"] is None and result["changed"] is False


def test_log_info_an_impossible_date_is_no_time(tmp_path):
    assert bot_log_info.parse_time(BAD_DATE) is None
    assert bot_log_info.parse_time("2026-11-27T03:12:00.5Z ok\n") is not None
    log = tmp_path / "orders.log"
    log.write_text(BAD_DATE)
    result = run_module("bot_log_info", dict(paths=[str(log)], hours=24))
    assert not result["failed"]


# ---------------------------------------------------------------------- coinbase_funding_info
class FakeModule:
    def __init__(self, **params):
        self.params = params
        self.check_mode = False
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)


class FundingClient:
    def __init__(self, positions):
        self.positions = positions

    def list_products(self, product_type=None, public=False):
        return [{"product_id": p["product_id"], "display_name": p["product_id"]} for p in self.positions]

    def list_positions(self):
        return self.positions


def test_funding_info_reads_positions_like_the_position_modules():
    module = FakeModule(products=[], read_positions=True, spike_threshold_pct=0.1, position_size=None,
                        daily_target=None, assumed_funding_interval=3600.0)
    report = coinbase_funding_info.FundingReport(module, public=False)
    seen = {}

    def describe(entry, positions, now):
        seen.update(positions)
        return {"product_id": entry["product_id"]}

    report.describe = describe
    report.run(FundingClient([
        {"product_id": "A", "side": "SHORT", "number_of_contracts": "-2"},   # a signed size: still short
        {"product_id": "B", "side": "short", "number_of_contracts": "3"},    # the side in lower case
        {"product_id": "C", "side": "LONG", "number_of_contracts": "1.5"},
        {"product_id": "D", "side": "SHORT", "number_of_contracts": "0"},    # flat, not -0.0
    ]), time.time())
    assert seen == {"A": -2.0, "B": -3.0, "C": 1.5, "D": 0.0}
    assert all(isinstance(v, float) for v in seen.values()) and str(seen["D"]) == "0.0"


def test_funding_info_a_size_that_is_not_a_number_is_refused_not_zero():
    module = FakeModule(products=[], read_positions=True, spike_threshold_pct=0.1, position_size=None,
                        daily_target=None, assumed_funding_interval=3600.0)
    report = coinbase_funding_info.FundingReport(module, public=False)
    with pytest.raises(ValueError):
        report.run(FundingClient([{"product_id": "A", "side": "LONG", "number_of_contracts": "lots"}]), time.time())


# ---------------------------------------------------------------------- coinbase_auth_check
class AuthClient:
    base_url = "https://api.coinbase.example"
    host = "api.coinbase.example"

    def __init__(self, accounts):
        self.accounts = accounts
        self.pages = []

    def get_server_time(self):
        return {"epochSeconds": str(time.time())}

    def get_key_permissions(self):
        return {"can_view": True, "can_trade": True, "can_transfer": False, "portfolio_uuid": "p-1"}

    def list_accounts(self, page_size=None):
        self.pages.append(page_size)
        return list(self.accounts)

    def request(self, method, path, params=None, body=None, auth=True):  # the old raw call: first page only
        return {"accounts": self.accounts[:(params or {}).get("limit") or 49], "has_next": True, "cursor": "c1"}


def test_auth_check_counts_every_account_not_only_the_first_page():
    module = FakeModule(max_clock_drift=30.0, required_permissions=["view"])
    checker = coinbase_auth_check.AuthChecker(module)
    checker.result["key"] = {"key_name": "organizations/o/apiKeys/k"}
    client = AuthClient([{"uuid": "a-%d" % n} for n in range(300)])
    checker.check(client)
    assert checker.result["accounts"] == {"ok": True, "count": 300}
    assert client.pages == [250]
    assert checker.result["diagnosis"]["cause"] == "ok"


def test_auth_check_times_are_the_collection_s_iso_utc():
    assert coinbase_auth_check.iso(1732677120.5) == "2024-11-27T03:12:00.500Z"
    assert coinbase_auth_check.iso(0) == "1970-01-01T00:00:00.000Z"
