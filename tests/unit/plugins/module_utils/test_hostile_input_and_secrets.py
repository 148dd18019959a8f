"""No webhook secret in a traceback or a record, a page never posted to a chat
webhook, idempotent reopen, corrupt records, bad retry options, non-object JSON, hostile JWT
claims, infinite limits, a wrong CA bundle, one signing-host function, public probes without a
key, prompting vault ids."""

from __future__ import annotations

import http.client
import json
import os
import socket
from types import SimpleNamespace

import httpx
import jwt
import pytest

import keyfactory as kf

from ansible_collections.tradeops.incident_response.plugins.lookup import cli_args
from ansible_collections.tradeops.incident_response.plugins.module_utils import notify, systemd_paths
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import module as module_utils
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import CoinbaseClient
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import InputError, ServerError, redact
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import decode_unverified, signing_host
from ansible_collections.tradeops.incident_response.plugins.module_utils.incident import scrub
from ansible_collections.tradeops.incident_response.plugins.modules import (
    bot_feed_info,
    coinbase_jwt,
    coinbase_jwt_info,
    coinbase_pnl_info,
    coinbase_ws_probe,
    incident_notify,
)

from support.modules import run_module

HOOK_SECRET = "s3cr3tH00kT0k3n"
SLACK_HOOK = "https://hooks.slack.com/services/T0000/B0000/" + HOOK_SECRET


# ---------------------------------------------------------------- 1. notify: a bad URL never leaks
def post(url, **extra):
    options = dict(timeout=1, validate_certs=True, use_proxy=False, ca_path=None, max_retries=2, retry_delay=0,
                   what="The Slack webhook", sleep=lambda s: None)
    options.update(extra)
    return notify.post_json(url, {"text": "x"}, **options)


@pytest.mark.parametrize("url", [
    "https://hooks.slack.com/services/T0000/B0000/" + HOOK_SECRET + " trailing",
    "https://hooks.slack.com/services/T0000/B0000/" + HOOK_SECRET + "\n",
    "ftp://hooks.slack.com/services/" + HOOK_SECRET,
    "https:///services/" + HOOK_SECRET,
    "https://hooks.slack.com:99x/services/" + HOOK_SECRET,
])
def test_a_bad_url_is_refused_up_front_without_echoing_it(url, monkeypatch):
    monkeypatch.setattr(notify, "open_url", lambda *a, **k: pytest.fail("nothing may be sent"))
    with pytest.raises(notify.NotifyError) as caught:
        post(url)
    assert HOOK_SECRET not in caught.value.message and "not shown" in caught.value.message


def test_invalid_url_and_value_errors_from_the_library_report_only_the_type(monkeypatch):
    def refuse(url, **kwargs):
        raise http.client.InvalidURL("URL can't contain control characters. %r" % url)

    monkeypatch.setattr(notify, "open_url", refuse)
    with pytest.raises(notify.NotifyError) as caught:
        post(SLACK_HOOK)
    assert "InvalidURL" in caught.value.message and HOOK_SECRET not in caught.value.message
    assert len(caught.value.attempts) == 1  # a URL the library refuses is not retried


def test_other_http_exceptions_are_retried_and_reported_by_type(monkeypatch):
    calls = []

    def broken(url, **kwargs):
        calls.append(url)
        raise http.client.BadStatusLine("garbage from " + url)

    monkeypatch.setattr(notify, "open_url", broken)
    with pytest.raises(notify.NotifyError) as caught:
        post(SLACK_HOOK, max_retries=1)
    assert len(calls) == 2 and "BadStatusLine" in caught.value.message and HOOK_SECRET not in caught.value.message


def test_module_with_a_url_containing_a_space_fails_cleanly():
    result = run_module("incident_notify", dict(kind="slack", url=SLACK_HOOK + " x", incident_type="Key Compromise", severity="P1"))
    assert result["failed"] and "whitespace" in result["msg"]
    assert HOOK_SECRET not in json.dumps(result)


# ---------------------------------------------------------------- 2. redact: webhook URLs and URL secrets
@pytest.mark.parametrize("text, secret", [
    ("posted to %s at 03:12" % SLACK_HOOK, HOOK_SECRET),
    ("proxy https://ops:Pa55w0rdX@proxy.internal:3128/ refused", "Pa55w0rdX"),
    ("GET https://example.com/hook?token=T0kenValue1&x=1", "T0kenValue1"),
    ("https://example.com/a?x=1&api_key=K3yValue2", "K3yValue2"),
    ("https://example.com/a?sig=S1gValue3", "S1gValue3"),
    ("https://example.com/a?signature=S1gnValue4#frag", "S1gnValue4"),
    ("https://example.com/a?secret=S3cretValue5", "S3cretValue5"),
    ("https://example.com/a?password=PwValue6", "PwValue6"),
])
def test_redact_removes_webhook_and_url_secrets(text, secret):
    clean = redact(text)
    assert secret not in clean and "REDACTED" in clean


def test_redact_keeps_ordinary_urls_and_text():
    text = "GET https://api.coinbase.com/api/v3/brokerage/orders/historical/batch?order_status=OPEN&limit=100"
    assert redact(text) == text


def test_scrub_removes_a_webhook_url_from_free_text():
    record = scrub({"details": {"note": "alert went to " + SLACK_HOOK}, "timeline": [{"details": "retry " + SLACK_HOOK}]})
    assert HOOK_SECRET not in json.dumps(record)


def test_incident_record_drops_a_webhook_url_in_free_text(tmp_path):
    args = dict(records_dir=str(tmp_path), incident_id="KS-2")
    run_module("incident_record", dict(args, action="open", incident_type="kill_switch"))
    closed = run_module("incident_record", dict(args, action="close", details="Slack webhook %s answered 500" % SLACK_HOOK))
    text = open(closed["json_path"]).read() + open(closed["markdown_path"]).read()
    assert HOOK_SECRET not in text


# ---------------------------------------------------------------- 3. a page is never posted to INCIDENT_NOTIFY_URL
def capture_post(monkeypatch):
    sent = []

    def fake_post(url, payload, **kwargs):
        sent.append((url, payload))
        return {"status": 202, "body": "{}", "attempts": [{"status": 202}]}

    monkeypatch.setattr(incident_notify.notify, "post_json", fake_post)
    return sent


def test_pagerduty_ignores_the_chat_webhook_from_the_environment(monkeypatch):
    monkeypatch.setenv("INCIDENT_NOTIFY_URL", SLACK_HOOK)
    sent = capture_post(monkeypatch)
    result = run_module("incident_notify", dict(kind="pagerduty", routing_key="R" * 32, incident_type="Key Compromise", severity="P1"))
    assert result["failed"] is False
    assert [url for url, _payload in sent] == [notify.PAGERDUTY_EVENTS_URL]


def test_pagerduty_uses_an_explicit_url(monkeypatch):
    monkeypatch.setenv("INCIDENT_NOTIFY_URL", SLACK_HOOK)
    sent = capture_post(monkeypatch)
    run_module("incident_notify", dict(kind="pagerduty", url="https://events.eu.pagerduty.com/v2/enqueue", routing_key="R" * 32,
                                       incident_type="Key Compromise", severity="P1"))
    assert [url for url, _payload in sent] == ["https://events.eu.pagerduty.com/v2/enqueue"]


@pytest.mark.parametrize("kind", ["slack", "webhook"])
def test_slack_and_webhook_still_use_the_environment(monkeypatch, kind):
    monkeypatch.setenv("INCIDENT_NOTIFY_URL", SLACK_HOOK)
    sent = capture_post(monkeypatch)
    result = run_module("incident_notify", dict(kind=kind, incident_type="Key Compromise", severity="P1"))
    assert result["failed"] is False and [url for url, _payload in sent] == [SLACK_HOOK]
    assert HOOK_SECRET not in json.dumps(result)


# ---------------------------------------------------------------- 4. incident_record: idempotent open, corrupt files
def test_second_open_is_not_a_change_and_does_not_rewrite(tmp_path):
    args = dict(records_dir=str(tmp_path), incident_id="KS-3", action="open", incident_type="kill_switch")
    first = run_module("incident_record", args)
    before = os.stat(first["json_path"])
    again = run_module("incident_record", args)
    after = os.stat(again["json_path"])
    assert first["changed"] is True and again["changed"] is False
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    event = run_module("incident_record", dict(args, action="event", step="x"))
    assert event["changed"] is True


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"incident_id": "KS-4"}', b"\xff\xfe{"])
@pytest.mark.parametrize("action", ["open", "event", "close"])
def test_a_corrupt_record_fails_naming_the_file(tmp_path, content, action):
    path = tmp_path / "KS-4.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run_module("incident_record", dict(records_dir=str(tmp_path), incident_id="KS-4", action=action,
                                                incident_type="kill_switch", step="x"))
    assert result["failed"] and str(path) in result["msg"], result["msg"]


# ---------------------------------------------------------------- 5. negative retry options
def fake_module(**params):
    base = dict(api_url="https://api.coinbase.com", timeout=10.0, ca_bundle=None, validate_certs=True, max_retries=5,
                retry_max_delay=60.0, max_requests_per_second=25.0)
    base.update(params)
    return SimpleNamespace(params=base)


@pytest.mark.parametrize("option, value", [("max_retries", -1), ("retry_max_delay", -0.5), ("retry_max_delay", float("nan"))])
def test_build_client_names_a_negative_retry_option(option, value):
    with pytest.raises(InputError) as caught:
        module_utils.build_client(fake_module(**{option: value}))
    assert caught.value.message.startswith(option + " must be 0 or more")


def test_build_client_accepts_zero_retries():
    client = module_utils.build_client(fake_module(max_retries=0, retry_max_delay=0))
    assert client.retry.max_retries == 0
    client.close()


def test_ws_probe_reports_a_negative_retry_option_not_the_ca_bundle():
    result = run_module("coinbase_ws_probe", dict(retry_max_delay=-1, listen=1))
    assert result["failed"] and "retry_max_delay must be 0 or more" in result["msg"] and "ca_bundle" not in result["msg"]


# ---------------------------------------------------------------- 6. JSON that is not an object
def client_answering(answer):
    credentials = load_credentials(key_name=kf.key_name(), private_key=kf.ec_pem())
    return CoinbaseClient(credentials, transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)), sleep=lambda s: None)


@pytest.mark.parametrize("answer", [[], "captive portal", 42, None])
def test_a_200_that_is_not_an_object_is_a_server_error(answer):
    client = CoinbaseClient(None, transport=httpx.MockTransport(lambda request: httpx.Response(200, content=json.dumps(answer).encode())))
    with pytest.raises(ServerError) as caught:
        client.get_server_time()
    assert "answered HTTP 200 with JSON that is not an object" in caught.value.message


def test_paginate_and_list_products_skip_items_that_are_not_objects():
    client = client_answering({"products": [{"product_id": "A"}, "junk", None, [1]], "num_products": 4})
    assert client.list_products(public=True) == [{"product_id": "A"}]
    client = client_answering({"orders": [{"order_id": "1"}, "junk", 7], "has_next": False})
    assert client.list_orders(["OPEN"]) == [{"order_id": "1"}]
    client = client_answering({"orders": "not a list", "has_next": False})
    assert client.list_orders(["OPEN"]) == []


# ---------------------------------------------------------------- 7. hostile JWT claims
def token(**claims):
    base = {"sub": "organizations/o/apiKeys/k", "iss": "cdp", "nbf": 1795749120, "exp": 1795749240}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, "not-a-coinbase-key-but-long-enough-for-hs256",
                      algorithm="HS256", headers={"kid": "organizations/o/apiKeys/k"})


@pytest.mark.parametrize("exp", [10 ** 20, 10 ** 400, -(10 ** 20)])
def test_an_exp_out_of_range_is_a_problem_not_a_traceback(exp):
    result = run_module("coinbase_jwt_info", dict(token=token(exp=exp)))
    assert result["failed"] is False
    assert any("exp" in p and "out of range" in p for p in result["problems"]), result["problems"]
    assert "expires_at" not in result


def test_an_nbf_out_of_range_is_a_problem():
    result = run_module("coinbase_jwt_info", dict(token=token(nbf=10 ** 20)))
    assert result["failed"] is False and any(p.startswith("nbf") for p in result["problems"])


def test_decode_unverified_survives_an_exp_too_large_for_a_float():
    decoded = decode_unverified(token(exp=10 ** 400), now=1795749130.25)
    assert decoded["expires_in"] is None and decoded["expired"] is False


@pytest.mark.parametrize("uri", [["GET", "api.coinbase.com/x"], 42, {"m": "GET"}])
def test_a_uri_claim_that_is_not_a_string_is_a_problem(uri):
    result = run_module("coinbase_jwt_info", dict(token=token(uri=uri)))
    assert result["failed"] is False and any("uri claim is a" in p for p in result["problems"]), result["problems"]


# ---------------------------------------------------------------- 8. infinite limits, a bad balance figure
@pytest.mark.parametrize("args, option", [
    ({"daily_loss_limit": "inf"}, "daily_loss_limit"),
    ({"daily_loss_limit": "nan"}, "daily_loss_limit"),
    ({"daily_loss_limit": 5000, "warn_at_percent": "inf"}, "warn_at_percent"),
])
def test_pnl_refuses_an_infinite_option_by_name(args, option):
    result = run_module("coinbase_pnl_info", args)
    assert result["failed"] and result["msg"].startswith(option), result["msg"]


def test_pnl_reports_a_bad_balance_summary_figure_without_a_traceback(monkeypatch):
    class Client:
        def get_balance_summary(self):
            return {"liquidation_buffer_percentage": "not-a-number"}

        def list_products(self, **kwargs):
            return []

        def list_positions(self):
            return []

        def summary(self):
            return {"requests": 3}

        def close(self):
            pass

    monkeypatch.setattr(coinbase_pnl_info, "load_module_credentials", lambda module: None)
    monkeypatch.setattr(coinbase_pnl_info, "build_client", lambda module, credentials: Client())
    result = run_module("coinbase_pnl_info", {"daily_loss_limit": 5000})
    assert result["failed"] and "not a number" in result["msg"]


# ---------------------------------------------------------------- 9. bot_feed_info: a wrong ca_path
def test_bot_feed_info_names_a_missing_ca_path(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)  # TCP connects; the TLS context is what fails
        port = server.getsockname()[1]
        result = run_module("bot_feed_info", dict(
            log_path=str(tmp_path / "websocket.log"), market_state_path=str(tmp_path / "market.json"),
            trading_mode_path=str(tmp_path / "mode"), unit="", reach=True, reach_timeout=1,
            reach_urls=["wss://127.0.0.1:%d/ws" % port], ca_path=str(tmp_path / "missing-ca.pem")))
    assert result["failed"] and result["msg"].startswith("ca_path ") and "missing-ca.pem" in result["msg"]


def test_bot_feed_info_reads_the_mask_where_bot_units_writes_it():
    from ansible_collections.tradeops.incident_response.plugins.modules import bot_units

    assert bot_feed_info.MASK_DIR == bot_units.MASK_DIR == systemd_paths.MASK_DIR == "/etc/systemd/system.control"


# ---------------------------------------------------------------- 10. one signing host
@pytest.mark.parametrize("url, host", [
    ("https://api.coinbase.com", "api.coinbase.com"),
    ("https://api.coinbase.com:443", "api.coinbase.com"),
    ("https://API.Coinbase.com/", "api.coinbase.com"),
    ("https://localhost:8443", "localhost:8443"),
    ("http://localhost:80", "localhost"),
    ("http://localhost:443", "localhost:443"),
    ("https://localhost:80", "localhost:80"),
    ("", None),
    (None, None),
])
def test_signing_host_is_the_same_everywhere(url, host):
    assert signing_host(url) == host
    assert coinbase_jwt_info.api_host(url) == host
    if host:
        client = CoinbaseClient(None, base_url=url)
        assert client.host == host
        client.close()
        assert coinbase_jwt.request_target(url, "/accounts")[1] == host


def test_signing_host_with_a_bad_port():
    with pytest.raises(ValueError):
        signing_host("https://localhost:port")
    assert coinbase_jwt_info.api_host("https://localhost:port") is None
    with pytest.raises(InputError):
        CoinbaseClient(None, base_url="https://localhost:port")
    with pytest.raises(ValueError):
        coinbase_jwt.request_target("https://localhost:port", "/accounts")


# ---------------------------------------------------------------- 11. public ws probe loads no key
def test_ws_probe_without_auth_does_not_load_a_configured_key(tmp_path, monkeypatch):
    key = tmp_path / "key.json"
    key.write_text("{}")
    os.chmod(str(key), 0o644)  # would be refused as unsafe if it were loaded
    monkeypatch.setenv("COINBASE_CDP_PRIVATE_KEY_PATH", str(key))
    loaded = []
    monkeypatch.setattr(coinbase_ws_probe, "load_module_credentials", lambda module: loaded.append(1))

    def stop(module):
        raise InputError("stopped after the credentials step")

    monkeypatch.setattr(coinbase_ws_probe, "resolve_products", stop)
    result = run_module("coinbase_ws_probe", dict(listen=1))
    assert loaded == [] and result["msg"] == "stopped after the credentials step"
    result = run_module("coinbase_ws_probe", dict(listen=1, auth=True))
    assert loaded == [1]


# ---------------------------------------------------------------- 12. cli_args: prompting vault ids
def test_vault_ids_that_prompt_are_listed(monkeypatch):
    monkeypatch.setattr(cli_args.context, "CLIARGS", {
        "vault_ids": ["prod@prompt", "dev@/srv/vault-pass", "@prompt", "prompt", "ci@prompt_ask_vault_pass"],
    })
    [result] = cli_args.LookupModule().run([])
    assert result["prompts"] == ["--vault-id prod@prompt", "--vault-id @prompt", "--vault-id prompt",
                                 "--vault-id ci@prompt_ask_vault_pass"]
    assert result["argv"].count("--vault-id") == 5  # still forwarded
