"""The same playbook through ansible-playbook (a laptop) and ansible-runner (AWX), with the
connection set once by module_defaults for the coinbase action group, at -vvvv without leaks."""

from __future__ import annotations

import json
import re

import pytest

PLAY = [{
    "name": "Auth check through the action group",
    "hosts": "localhost",
    "gather_facts": False,
    "module_defaults": {"group/tradeops.incident_response.coinbase": {
        "api_url": "{{ api_url }}", "ca_bundle": "{{ ca_bundle }}",
        "api_key_name": "{{ key_name }}", "private_key_path": "{{ key_path }}",
    }},
    "tasks": [
        {"name": "check", "tradeops.incident_response.coinbase_auth_check": {"fail_on_error": False}, "register": "auth"},
        {"name": "report", "ansible.builtin.debug": {"msg": "CAUSE={{ auth.diagnosis.cause }}"}},
    ],
}]


@pytest.fixture
def play_vars(make_key, clean_double):
    key = make_key()
    return key, {"api_url": clean_double.url, "ca_bundle": str(clean_double.ca_path), "key_name": key.name, "key_path": key.path}


def test_healthy_then_revoked_through_ansible_playbook(play_vars, clean_double, ansible_playbook):
    key, variables = play_vars
    rc, output, _ = ansible_playbook(PLAY, variables, verbosity=4, json_output=False)
    assert rc == 0 and "CAUSE=ok" in output, output[-3000:]
    clean_double.control.revoke_key(key.name)
    rc, output, _ = ansible_playbook(PLAY, variables, verbosity=4, json_output=False)
    assert rc == 0 and "CAUSE=revoked_or_wrong_key" in output, output[-3000:]
    body = [line for line in open(key.path).read().splitlines() if "-----" not in line][0]
    assert body[:20] not in output
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.", output)


def test_same_playbook_through_ansible_runner(play_vars, clean_double, ansible_runner_run):
    key, variables = play_vars
    runner = ansible_runner_run(PLAY, variables)
    assert runner.status == "successful", runner.stdout.read()[-3000:]
    results = [e["event_data"]["res"] for e in runner.events
               if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "check"]
    assert results and results[0]["auth_ok"] is True and results[0]["key"]["key_name"] == key.name
    # the runner's artifacts never hold the key
    artifacts = json.dumps(list(runner.events))
    body = [line for line in open(key.path).read().splitlines() if "-----" not in line][0]
    assert body[:20] not in artifacts
