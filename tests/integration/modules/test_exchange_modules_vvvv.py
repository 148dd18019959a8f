"""Every module of the exchange-side set through ansible-playbook at -vvvv: it works, and no key or token reaches the output."""

from __future__ import annotations

import re

from notify_receiver import Receiver

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{20,}")
ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
SLACK_PATH = "/services/T0000/B0000/s3cr3tT0k3n"


def plays(token_file, audit_csv):
    key = {"api_url": "{{ api_url }}", "ca_bundle": "{{ ca_bundle }}", "api_key_name": "{{ key_name }}", "private_key_path": "{{ key_path }}"}
    inline_key = {"api_url": "{{ api_url }}", "ca_bundle": "{{ ca_bundle }}", "api_key_name": "{{ key_name }}",
                  "private_key": "{{ lookup('ansible.builtin.file', key_path) }}"}
    fqcn = "tradeops.incident_response."
    return [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [
            {"name": "mint", fqcn + "coinbase_jwt": dict(key, path="/accounts"), "no_log": True, "register": "minted"},
            {"name": "keep the token for the test to look for", "ansible.builtin.copy": {
                "content": "{{ minted.token }}", "dest": str(token_file), "mode": "0600"}, "no_log": True},
            {"name": "decode", fqcn + "coinbase_jwt_info": {"token": "{{ minted.token }}", "api_url": "{{ api_url }}",
                                                            "api_key_name": "{{ key_name }}"}, "register": "decoded"},
            {"name": "fills", fqcn + "coinbase_fills_info": dict(key, hours=1, expected_client_order_id_prefixes=["bot1-"],
                                                                 csv_path=str(audit_csv)), "register": "fills"},
            {"name": "funding", fqcn + "coinbase_funding_info": dict(key, products=["BTC-PERP"], read_positions=True), "register": "funding"},
            {"name": "latency", fqcn + "coinbase_latency_info": dict(inline_key, endpoint="/key_permissions", samples=3, interval=0.05),
             "register": "latency"},
            {"name": "websockets", fqcn + "coinbase_ws_probe": dict(key, ws_url="{{ ws_url }}", ws_user_url="{{ ws_user_url }}", auth=True,
                                                                    products=["BTC-PERP"], listen=1.5), "register": "ws"},
            {"name": "page", fqcn + "incident_notify": {
                "kind": "pagerduty", "url": "{{ receiver_url }}/v2/enqueue", "routing_key": ROUTING_KEY, "incident_type": "Key Compromise",
                "severity": "P1", "actions": ["Bots stopped"], "dedup_key": "inc-vvvv"}, "register": "page"},
            {"name": "post to slack", fqcn + "incident_notify": {
                "kind": "slack", "url": "{{ receiver_url }}" + SLACK_PATH, "incident_type": "Key Compromise", "severity": "P1"}},
            {"name": "results", "ansible.builtin.assert": {"that": [
                "minted.token.split('.') | length == 3",
                "minted.key_name == key_name and minted.expires_at is defined",
                "decoded.problems == [] and decoded.key_name == key_name and not decoded.expired",
                "fills.summary.fills == 1 and fills.summary.unexpected == 1 and fills.changed",
                "funding.products[0].product_id == 'BIP-20DEC30-CDE' and funding.products[0].position.side == 'LONG'",
                "latency.counts.ok == 3 and latency.endpoint.authenticated",
                "ws.user.connected and ws.market.connected and not ws.auth_failed",
                "page.sent and page.dedup_key == 'inc-vvvv'",
            ]}},
        ],
    }]


def test_all_modules_at_vvvv_leak_no_key_and_no_token(make_key, clean_double, ansible_playbook, tmp_path):
    key = make_key(permissions="view,trade")
    clean_double.control.inject_fill("BIP-20DEC30-CDE", "BUY", "1", "95000", key=key.name)
    clean_double.control.set_position("BIP-20DEC30-CDE", "LONG", 3, key=key.name)
    token_file, audit_csv = tmp_path / "token", tmp_path / "audit.csv"
    with Receiver() as receiver:
        receiver.script([(202, {"status": "success", "message": "Event processed", "dedup_key": "inc-vvvv"}, {})])
        rc, output, _results = ansible_playbook(
            plays(token_file, audit_csv),
            extra_vars={"api_url": clean_double.url, "ca_bundle": str(clean_double.ca_path), "key_name": key.name, "key_path": key.path,
                        "ws_url": clean_double.ws_url, "ws_user_url": clean_double.ws_user_url, "receiver_url": receiver.url},
            verbosity=4, json_output=False, timeout=300,
        )
        sent = list(receiver.requests)
    assert rc == 0, output[-4000:]
    assert "failed=0" in output and "TASK [results]" in output
    token = token_file.read_text()
    assert token.count(".") == 2
    assert token not in output and token.split(".")[2] not in output
    assert JWT_RE.search(output) is None
    key_body = [line for line in key.secret.splitlines() if line and not line.startswith("-----")]
    assert key_body and not any(line in output for line in key_body)
    assert "PRIVATE KEY-----" not in output
    assert ROUTING_KEY not in output and "s3cr3tT0k3n" not in output
    assert sent[0]["json"]["routing_key"] == ROUTING_KEY and sent[1]["path"] == SLACK_PATH  # the secrets did reach their destination
    assert "the output has been hidden" in output  # the no_log tasks were censored, not silently dropped
