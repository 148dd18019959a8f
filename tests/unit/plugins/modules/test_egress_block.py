"""egress_block: one rule per address in a dedicated chain, idempotent, honest check mode, an unblock
that never resolves, and other rules left alone. iptables is a small in-memory fake."""

from __future__ import annotations

import shlex
import socket
from unittest import mock

import pytest

from ansible.module_utils import basic

from support.modules import run_module

MODULE = "ansible_collections.tradeops.incident_response.plugins.modules.egress_block"
CHAIN = "TRADEOPS-EGRESS"


class FakeTables:
    """Enough of `iptables -w N -t filter ...` for the module: -S, -N, -A, -I, -D, -F, -X."""

    BUILTIN = ("INPUT", "FORWARD", "OUTPUT")

    def __init__(self):
        self.chains = {"ipv4": {c: [] for c in self.BUILTIN}, "ipv6": {c: [] for c in self.BUILTIN}}
        self.calls = []

    def add(self, family, line):
        tokens = shlex.split(line)
        self.chains[family].setdefault(tokens[1], [])
        self.chains[family][tokens[1]].append(self.render(tokens[1], tokens[2:]))

    @staticmethod
    def render(chain, spec):
        return " ".join(["-A", chain] + [('"%s"' % t) if " " in t else t for t in spec])

    def dump(self, family, chain=None):
        lines = ["-P %s ACCEPT" % c for c in self.BUILTIN]
        lines += ["-N %s" % c for c in self.chains[family] if c not in self.BUILTIN]
        for name, rules in self.chains[family].items():
            lines += rules
        return lines

    def __call__(self, module, cmd, **_kwargs):
        family = "ipv6" if cmd[0].endswith("ip6tables") else "ipv4"
        args = cmd[5:]  # after: binary -w N -t filter
        self.calls.append((family, args))
        table = self.chains[family]
        op = args[0]
        if op == "-S":
            if len(args) == 3:
                return 0, table[args[1]][int(args[2]) - 1] + "\n", ""
            return 0, "\n".join(self.dump(family)) + "\n", ""
        if op == "-N":
            table[args[1]] = []
        elif op == "-A":
            table[args[1]].append(self.render(args[1], args[2:]))
        elif op == "-I":
            table[args[1]].insert(int(args[2]) - 1, self.render(args[1], args[3:]))
        elif op == "-D":
            if len(args) == 3 and args[2].isdigit():
                table[args[1]].pop(int(args[2]) - 1)
            else:
                wanted = self.render(args[1], args[2:])
                table[args[1]].remove(next(r for r in table[args[1]] if shlex.split(r) == shlex.split(wanted)))
        elif op == "-F":
            table[args[1]] = []
        elif op == "-X":
            if any(CHAIN in r for rules in table.values() for r in rules if not r.startswith("-A %s " % args[1])):
                return 1, "", "iptables: Too many links."
            del table[args[1]]
        else:
            raise AssertionError("unexpected iptables call %r" % (cmd,))
        return 0, "", ""


def hosts(mapping):
    """A getaddrinfo that knows only `mapping` ({name: [addresses]})."""

    def getaddrinfo(name, *_args, **_kwargs):
        if name not in mapping:
            raise socket.gaierror(-2, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                for a in mapping[name]]

    return getaddrinfo


DNS = {"api.coinbase.com": ["10.88.0.1"], "advanced-trade-ws.coinbase.com": ["10.88.0.1"],
       "advanced-trade-ws-user.coinbase.com": ["10.88.0.1", "2001:db8::10"]}


def run(fake, args, dns=None, check_mode=False, ip6tables=True):
    def get_bin_path(self, name, required=False, opt_dirs=None):
        if name == "ip6tables" and not ip6tables:
            return None
        return "/usr/sbin/" + name

    def run_command(self, cmd, **kwargs):
        return fake(self, cmd, **kwargs)

    with mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
            mock.patch(MODULE + ".socket.getaddrinfo", hosts(DNS if dns is None else dns)):
        return run_module("egress_block", dict(args, _ansible_diff=True), check_mode=check_mode)


def test_block_adds_one_rule_per_address_and_a_jump_at_the_top():
    fake = FakeTables()
    fake.add("ipv4", "-A OUTPUT -d 192.0.2.99/32 -j REJECT")
    result = run(fake, {})
    assert result["changed"] and not result["failed"]
    assert result["resolved"]["advanced-trade-ws-user.coinbase.com"] == ["10.88.0.1", "2001:db8::10"]
    assert result["blocked"] == ["10.88.0.1/32", "2001:db8::10/128"]
    v4 = fake.chains["ipv4"]
    assert v4["OUTPUT"][0].endswith("-j " + CHAIN) and v4["OUTPUT"][1] == "-A OUTPUT -d 192.0.2.99/32 -j REJECT"
    # three names, one address: one rule, whose comment names all three
    assert len(v4[CHAIN]) == 1 and "-d 10.88.0.1/32" in v4[CHAIN][0] and v4[CHAIN][0].endswith("-j DROP")
    assert "api.coinbase.com,advanced-trade-ws.coinbase.com,advanced-trade-ws-user.coinbase.com" in v4[CHAIN][0]
    assert fake.chains["ipv6"][CHAIN] == [
        '-A %s -d 2001:db8::10/128 -m comment --comment "tradeops egress_block: advanced-trade-ws-user.coinbase.com" -j DROP'
        % CHAIN]
    assert "iptables -N %s" % CHAIN in result["rules_added"]
    assert "-A %s -d 10.88.0.1/32" % CHAIN in result["diff"]["after"]
    assert CHAIN not in result["diff"]["before"]


def test_block_twice_changes_nothing_the_second_time():
    fake = FakeTables()
    run(fake, {})
    calls = len(fake.calls)
    again = run(fake, {})
    assert not again["changed"] and again["rules_added"] == [] and again["rules_removed"] == []
    assert all(args == ["-S"] for _family, args in fake.calls[calls:])


def test_check_mode_predicts_exactly_and_changes_nothing():
    fake = FakeTables()
    predicted = run(fake, {}, check_mode=True)
    assert predicted["changed"] and predicted["check_mode"]
    assert all(args == ["-S"] for _family, args in fake.calls), "check mode ran a change"
    assert CHAIN not in fake.chains["ipv4"]
    real = run(fake, {})
    assert real["rules_added"] == predicted["rules_added"]
    assert real["rules"] == predicted["rules"]
    assert real["diff"] == predicted["diff"]


def test_a_new_address_is_added_the_old_ones_stay():
    fake = FakeTables()
    run(fake, {})
    moved = dict(DNS, **{"api.coinbase.com": ["10.88.0.1", "10.88.0.2"]})
    result = run(fake, {}, dns=moved)
    assert result["rules_added"] == [
        'iptables -A %s -d 10.88.0.2/32 -m comment --comment "tradeops egress_block: api.coinbase.com" -j DROP' % CHAIN]
    assert len(fake.chains["ipv4"][CHAIN]) == 2


def test_a_jump_pushed_below_an_accept_goes_back_to_the_top_and_duplicates_go():
    fake = FakeTables()
    run(fake, {})
    v4 = fake.chains["ipv4"]
    jump = v4["OUTPUT"].pop(0)
    v4["OUTPUT"] = ["-A OUTPUT -m state --state ESTABLISHED -j ACCEPT", jump, "-A OUTPUT -j " + CHAIN]
    result = run(fake, {})
    assert result["changed"]
    assert v4["OUTPUT"] == [jump, "-A OUTPUT -m state --state ESTABLISHED -j ACCEPT"]
    assert sorted(result["rules_removed"]) == sorted(["iptables " + jump, "iptables -A OUTPUT -j " + CHAIN])


def test_unblock_removes_exactly_the_block_without_resolving():
    fake = FakeTables()
    fake.add("ipv4", "-A OUTPUT -d 192.0.2.99/32 -j REJECT")
    fake.add("ipv6", "-A OUTPUT -d 2001:db8::99/128 -j REJECT")
    run(fake, {})
    result = run(fake, {"state": "absent"}, dns={})  # DNS knows nothing any more
    assert result["changed"] and result["blocked"] == [] and result["resolved"] == {}
    assert fake.chains["ipv4"] == {"INPUT": [], "FORWARD": [], "OUTPUT": ["-A OUTPUT -d 192.0.2.99/32 -j REJECT"]}
    assert fake.chains["ipv6"] == {"INPUT": [], "FORWARD": [], "OUTPUT": ["-A OUTPUT -d 2001:db8::99/128 -j REJECT"]}
    assert any("-d 10.88.0.1/32" in r for r in result["rules_removed"])
    assert "iptables -X %s" % CHAIN in result["rules_removed"] and "ip6tables -X %s" % CHAIN in result["rules_removed"]
    assert not run(fake, {"state": "absent"})["changed"]


def test_unblock_in_check_mode_changes_nothing():
    fake = FakeTables()
    run(fake, {})
    before = {f: dict(t) for f, t in fake.chains.items()}
    result = run(fake, {"state": "absent"}, check_mode=True)
    assert result["changed"] and result["rules"] == {"ipv4": [], "ipv6": []}
    assert fake.chains == before


def test_an_unresolved_name_fails_before_any_change():
    fake = FakeTables()
    result = run(fake, {"destinations": ["api.coinbase.com", "no-such.invalid"]})
    assert result["failed"] and "no-such.invalid" in result["msg"] and "Nothing was changed" in result["msg"]
    assert fake.calls == [] and result["unresolved"] == ["no-such.invalid"]


def test_warn_blocks_what_resolved():
    fake = FakeTables()
    with mock.patch.object(basic.AnsibleModule, "warn") as warn:
        result = run(fake, {"destinations": ["api.coinbase.com", "no-such.invalid"], "on_unresolved": "warn"})
    assert not result["failed"] and result["blocked"] == ["10.88.0.1/32"] and result["unresolved"] == ["no-such.invalid"]
    assert "no-such.invalid" in warn.call_args[0][0]


def test_literal_addresses_and_networks_are_not_resolved():
    fake = FakeTables()
    result = run(fake, {"destinations": ["192.0.2.0/24", "2001:db8::1"]}, dns={})
    assert result["blocked"] == ["192.0.2.0/24", "2001:db8::1/128"]


def test_ipv6_needs_ip6tables_but_ipv4_does_not():
    only_v4 = {"api.coinbase.com": ["10.88.0.1"]}
    assert not run(FakeTables(), {"destinations": ["api.coinbase.com"]}, dns=only_v4, ip6tables=False)["failed"]
    result = run(FakeTables(), {}, ip6tables=False)
    assert result["failed"] and "ip6tables is not installed" in result["msg"]


@pytest.mark.parametrize("chain", ["OUTPUT", "DROP", "bad chain", "X" * 29])
def test_a_chain_name_that_cannot_be_ours_is_refused(chain):
    result = run(FakeTables(), {"chain": chain})
    assert result["failed"] and "chain=" in result["msg"]
