#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: egress_block
short_description: Block or unblock a host's outbound traffic to the Coinbase API with iptables
version_added: 0.1.0
description:
  - The SOP's key-compromise step C(iptables -A OUTPUT -d api.coinbase.com -j DROP), done so
    that it can be undone exactly. Runs on the fleet host, as root (C(become=true)).
  - O(destinations) are resolved B(on the host, at run time), so the host's own C(/etc/hosts)
    and DNS decide which addresses are blocked. Every address is blocked, IPv4 with
    C(iptables), IPv6 with C(ip6tables).
  - The DROP rules live in a dedicated chain (O(chain)) that is jumped to from the first rule of
    C(OUTPUT). Each address gets exactly one rule, tagged with a comment naming the
    destinations it came from; running the module again adds only addresses that are new.
  - O(state=absent) removes every jump to the chain and the chain itself, in both families.
    It does not resolve anything, so it removes exactly what was added even when DNS has
    changed since the block. Rules that are not in the chain are never touched.
  - Uses only the Python standard library and the host's C(iptables) / C(ip6tables) commands
    (legacy or nf_tables backend).
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Resolves and reads the rules, then reports what it would add or remove.
  diff_mode:
    support: full
    description: Shows the block's rules (jump and chain, per family) before and after.
options:
  state:
    description:
      - V(present) blocks every address the destinations resolve to now.
      - V(absent) removes the block (the jump from C(OUTPUT) and the whole chain).
    type: str
    choices: [present, absent]
    default: present
  destinations:
    description:
      - Host names to block, resolved on the host. IP addresses and CIDR networks are blocked
        as given.
      - Ignored with O(state=absent).
    type: list
    elements: str
    default: [api.coinbase.com, advanced-trade-ws.coinbase.com, advanced-trade-ws-user.coinbase.com]
  chain:
    description:
      - The dedicated chain in the C(filter) table that holds the block's rules.
      - Everything in it belongs to this module; O(state=absent) deletes it.
    type: str
    default: TRADEOPS-EGRESS
  on_unresolved:
    description:
      - What to do when a destination resolves to no address with O(state=present).
      - V(fail) (the default) fails before changing anything, because a block that silently
        blocks nothing is worse than a loud failure.
      - V(warn) blocks what did resolve and warns about the rest.
    type: str
    choices: [fail, warn]
    default: fail
  resolve_timeout:
    description:
      - Seconds to wait for each name to resolve before treating it as unresolved.
    type: float
    default: 10
  wait:
    description:
      - Seconds C(iptables) waits for the xtables lock (its C(-w) option).
    type: int
    default: 10
notes:
  - The jump is kept as the first rule of C(OUTPUT), so an earlier ACCEPT (for example for
    established connections) cannot let traffic past the block; a jump that was moved down is
    moved back to the top.
  - Existing connections are cut too (DROP applies to every packet), which is what a key
    compromise needs.
seealso:
  - name: Incident response SOP, section 3 (key compromise)
    description: The procedure this module automates.
    link: https://github.com/tradeops/incident_response/tree/main/docs
"""

EXAMPLES = r"""
- name: Cut the host off from the Coinbase API and WebSocket hosts (SOP 3, step 2)
  tradeops.incident_response.egress_block:
    state: present
  become: true
  register: block

- name: Say what was blocked
  ansible.builtin.debug:
    msg: "{{ block.resolved }}"

- name: Resume (SOP 3, step 6); removes exactly what the block added
  tradeops.incident_response.egress_block:
    state: absent
  become: true

- name: Block one more name, and carry on if it does not resolve
  tradeops.incident_response.egress_block:
    destinations: [api.coinbase.com, api.exchange.coinbase.com]
    on_unresolved: warn
  become: true
"""

RETURN = r"""
check_mode:
  description: Whether the module ran in check mode (so nothing was changed).
  returned: always
  type: bool
  sample: false
state:
  description: The requested state.
  returned: always
  type: str
  sample: present
chain:
  description: The dedicated chain.
  returned: always
  type: str
  sample: TRADEOPS-EGRESS
resolved:
  description: Each destination and the addresses it resolved to on the host (empty with V(absent)).
  returned: always
  type: dict
  sample: {"api.coinbase.com": ["104.18.35.15", "2606:4700::6812:230f"]}
unresolved:
  description: Destinations that resolved to no address (only with O(on_unresolved=warn)).
  returned: always
  type: list
  elements: str
  sample: []
blocked:
  description: Every address the chain drops after the run (predicted in check mode).
  returned: always
  type: list
  elements: str
  sample: ["104.18.35.15/32", "2606:4700::6812:230f/128"]
rules_added:
  description: Rules (and chains) added, as the commands that add them.
  returned: always
  type: list
  elements: str
  sample:
    - iptables -N TRADEOPS-EGRESS
    - iptables -A TRADEOPS-EGRESS -d 104.18.35.15/32 -m comment --comment "tradeops egress_block: api.coinbase.com" -j DROP
    - iptables -I OUTPUT 1 -m comment --comment "tradeops egress_block" -j TRADEOPS-EGRESS
rules_removed:
  description: Rules (and chains) removed, as iptables C(-S) lines with the command prefixed.
  returned: always
  type: list
  elements: str
  sample:
    - iptables -A OUTPUT -m comment --comment "tradeops egress_block" -j TRADEOPS-EGRESS
    - iptables -A TRADEOPS-EGRESS -d 104.18.35.15/32 -m comment --comment "tradeops egress_block: api.coinbase.com" -j DROP
    - iptables -X TRADEOPS-EGRESS
rules:
  description: The block's rules per family after the run (the jump and the chain), as C(-S) lines.
  returned: always
  type: dict
  sample: {"ipv4": ["-N TRADEOPS-EGRESS", "-A OUTPUT -m comment --comment \"tradeops egress_block\" -j TRADEOPS-EGRESS"], "ipv6": []}
commands:
  description: The commands run (in check mode, the ones that would run), in order.
  returned: always
  type: list
  elements: str
  sample: ["iptables -w 10 -t filter -N TRADEOPS-EGRESS"]
"""

import ipaddress
import re
import shlex
import socket
import threading

from ansible.module_utils.basic import AnsibleModule

FAMILIES = (("ipv4", "iptables", 4), ("ipv6", "ip6tables", 6))
COMMANDS = dict((family, command) for family, command, _version in FAMILIES)
BUILTIN_TARGETS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING", "ACCEPT", "DROP",
                   "REJECT", "RETURN", "QUEUE", "LOG", "MARK"}
CHAIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,27}$")
JUMP_COMMENT = "tradeops egress_block"
MAX_COMMENT = 255


def resolve(name, timeout):
    """(networks, error) for one destination: a literal address/network, or getaddrinfo on the host.

    getaddrinfo has no timeout of its own, so it runs in a daemon thread we stop waiting for.
    """
    try:
        return [ipaddress.ip_network(name, strict=False)], None
    except ValueError:
        pass
    box = {}

    def work():
        try:
            box["infos"] = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            box["error"] = str(exc)

    thread = threading.Thread(target=work, name="resolve-%s" % name)
    thread.daemon = True
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return [], "no answer within %s s" % timeout
    if "error" in box:
        return [], box["error"]
    networks = []
    for family, _type, _proto, _canon, sockaddr in box.get("infos", []):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = sockaddr[0].split("%", 1)[0]  # drop an IPv6 scope id
        network = ipaddress.ip_network(address)
        if network not in networks:
            networks.append(network)
    if not networks:
        return [], "no IPv4 or IPv6 address"
    return networks, None


def parse_rule(line):
    """Tokens of one `iptables -S` line, or None for a line we cannot parse."""
    try:
        return shlex.split(line)
    except ValueError:
        return None


def option(tokens, name):
    """The value after `name` in a rule's tokens (None when absent)."""
    for i, token in enumerate(tokens[:-1]):
        if token == name:
            return tokens[i + 1]
    return None


class Ruleset:
    """The parts of one family's filter table that matter to the block."""

    def __init__(self, lines):
        self.chains = set()
        self.rules = {}  # chain -> [line, ...] in order
        for line in lines:
            tokens = parse_rule(line)
            if not tokens:
                continue
            if tokens[0] == "-N" and len(tokens) > 1:
                self.chains.add(tokens[1])
            elif tokens[0] == "-A" and len(tokens) > 1:
                self.rules.setdefault(tokens[1], []).append(line)

    def jumps_to(self, chain):
        """[(from_chain, index 1-based, line)] for every rule anywhere that jumps to `chain`."""
        found = []
        for from_chain, lines in self.rules.items():
            for index, line in enumerate(lines, start=1):
                tokens = parse_rule(line) or []
                if option(tokens, "-j") == chain or option(tokens, "-g") == chain:
                    found.append((from_chain, index, line))
        return found

    def blocked(self, chain):
        """{network: line} for the chain's DROP rules."""
        result = {}
        for line in self.rules.get(chain, []):
            tokens = parse_rule(line) or []
            destination = option(tokens, "-d")
            if destination is None or option(tokens, "-j") != "DROP":
                continue
            try:
                result[ipaddress.ip_network(destination, strict=False)] = line
            except ValueError:
                continue
        return result

    def describe(self, chain):
        """The block's lines: the chain, the jumps to it, its rules."""
        lines = []
        if chain in self.chains:
            lines.append("-N %s" % chain)
        lines.extend(line for _c, _i, line in self.jumps_to(chain))
        lines.extend(self.rules.get(chain, []))
        return lines


class EgressBlock:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.chain = module.params["chain"]
        self.check_mode = module.check_mode
        self.commands = []
        self.rules_added = []
        self.rules_removed = []
        self.warnings = []
        self.binaries = dict((family, module.get_bin_path(command)) for family, command, _v in FAMILIES)

    # ------------------------------------------------------------------ commands
    def base(self, family):
        return [self.binaries[family], "-w", str(self.params["wait"]), "-t", "filter"]

    def run(self, family, args, what):
        """Run (or in check mode, only record) one change; fail with the command's own error."""
        cmd = self.base(family) + args
        self.commands.append(" ".join(shlex.quote(part) for part in cmd))
        if self.check_mode:
            return
        rc, out, err = self.module.run_command(cmd)
        if rc != 0:
            self.fail("%s failed (rc=%s): %s" % (what, rc, (err or out).strip()), cmd=self.commands[-1])

    def read(self, family, required):
        """The family's filter table as a Ruleset, or None when the tool is missing or unusable."""
        command = COMMANDS[family]
        if not self.binaries[family]:
            if required:
                self.fail("%s is not installed on this host, and it is needed to block %s addresses;"
                          " install the iptables package" % (command, family))
            return None
        rc, out, err = self.module.run_command(self.base(family) + ["-S"])
        if rc != 0:
            message = "%s -S failed (rc=%s): %s" % (command, rc, (err or out).strip())
            if "ermission denied" in message or "must be root" in message:
                self.fail(message + "; run the task as root (become: true)")
            if required:
                self.fail(message)
            self.warnings.append(message + "; nothing done for %s" % family)
            return None
        return Ruleset(out.splitlines())

    def rule_at(self, family, chain, position):
        """The `-S` line of one rule by number (to check it before deleting it by number)."""
        rc, out, _err = self.module.run_command(self.base(family) + ["-S", chain, str(position)])
        return out.strip() if rc == 0 else None

    def fail(self, msg, **extra):
        """Fail with what was done so far; changed when a rule was already added or removed
        (in check mode: would have been, as on success)."""
        self.module.fail_json(msg=msg, changed=bool(self.rules_added or self.rules_removed), check_mode=self.check_mode,
                              commands=self.commands, rules_added=self.rules_added,
                              rules_removed=self.rules_removed, **extra)

    # ------------------------------------------------------------------ present
    def resolve_all(self):
        """({name: [network]}, [unresolved names]); fails before any change unless on_unresolved=warn."""
        networks, unresolved, errors = {}, [], []
        for name in self.params["destinations"]:
            found, error = resolve(name, self.params["resolve_timeout"])
            networks[name] = found
            if error:
                unresolved.append(name)
                errors.append("%s (%s)" % (name, error))
        if errors:
            message = "could not resolve on this host: %s" % "; ".join(errors)
            if self.params["on_unresolved"] == "fail":
                self.fail(message + ". Nothing was changed. Fix the name or the host's resolver, or set"
                          " on_unresolved=warn to block what does resolve.",
                          resolved=shown(networks), unresolved=unresolved)
            self.warnings.append(message)
        return networks, unresolved

    def present(self):
        networks, unresolved = self.resolve_all()
        wanted = {"ipv4": {}, "ipv6": {}}  # family -> {network: [names]}
        for name in self.params["destinations"]:
            for network in networks[name]:
                names = wanted["ipv4" if network.version == 4 else "ipv6"].setdefault(network, [])
                if name not in names:
                    names.append(name)
        if not wanted["ipv4"] and not wanted["ipv6"]:
            self.fail("no destination resolved to an address, so there is nothing to block;"
                      " nothing was changed", resolved=shown(networks), unresolved=unresolved)
        before, after = {}, {}
        for family, _command, _version in FAMILIES:
            # A family without addresses now is left alone (an earlier block there stays).
            ruleset = self.read(family, required=bool(wanted[family]))
            if ruleset is None:
                before[family] = after[family] = []
                continue
            before[family] = ruleset.describe(self.chain)
            if not wanted[family]:
                after[family] = before[family]
                continue
            predicted = self.block_family(family, ruleset, wanted[family])
            after[family] = predicted if self.check_mode else self.read(family, required=True).describe(self.chain)
        return dict(resolved=shown(networks), unresolved=unresolved, before=before, after=after)

    def block_family(self, family, ruleset, wanted):
        """Add what is missing in one family (never a duplicate); returns the predicted lines."""
        chain, command = self.chain, COMMANDS[family]
        chain_lines = list(ruleset.rules.get(chain, []))
        if chain not in ruleset.chains:
            self.run(family, ["-N", chain], "creating chain %s" % chain)
            self.rules_added.append("%s -N %s" % (command, chain))
        existing = ruleset.blocked(chain)
        for network in sorted(wanted, key=lambda n: (int(n.network_address), n.prefixlen)):
            if network in existing:
                continue
            comment = ("tradeops egress_block: %s" % ",".join(wanted[network]))[:MAX_COMMENT]
            args = ["-A", chain, "-d", str(network), "-m", "comment", "--comment", comment, "-j", "DROP"]
            self.run(family, args, "adding the rule for %s" % network)
            line = " ".join(shlex.quote(a) for a in args).replace("'", '"')
            self.rules_added.append("%s %s" % (command, line))
            chain_lines.append(line)
        jump_line = self.ensure_jump(family, ruleset)
        return ["-N %s" % chain, jump_line] + chain_lines

    def ensure_jump(self, family, ruleset):
        """Exactly one jump to the chain, and it is the first rule of OUTPUT. Returns its line."""
        chain, command = self.chain, COMMANDS[family]
        jumps = ruleset.jumps_to(chain)
        keep = next((j for j in jumps if j[0] == "OUTPUT" and j[1] == 1), None)
        extras = [j for j in jumps if j is not keep]
        if keep is None:
            args = ["-I", "OUTPUT", "1", "-m", "comment", "--comment", JUMP_COMMENT, "-j", chain]
            self.run(family, args, "inserting the jump from OUTPUT to %s" % chain)
            self.rules_added.append('%s -I OUTPUT 1 -m comment --comment "%s" -j %s' % (command, JUMP_COMMENT, chain))
            # everything already in OUTPUT moved down by one
            extras = [(c, p + 1 if c == "OUTPUT" else p, line) for c, p, line in extras]
            keep_line = '-A OUTPUT -m comment --comment "%s" -j %s' % (JUMP_COMMENT, chain)
        else:
            keep_line = keep[2]
        # Extra jumps (duplicates, or one moved below an ACCEPT) go by number, bottom up, each
        # checked first: by spec, `-D` would delete the first identical rule, the one we keep.
        for from_chain, position, line in sorted(extras, key=lambda j: (j[0], -j[1])):
            if not self.check_mode and self.rule_at(family, from_chain, position) != line:
                self.fail("rule %s of chain %s changed while the block was being repaired (expected %r);"
                          " run the task again" % (position, from_chain, line))
            self.run(family, ["-D", from_chain, str(position)], "removing the extra jump %r" % line)
            self.rules_removed.append("%s %s" % (command, line))
        return keep_line

    # ------------------------------------------------------------------ absent
    def absent(self):
        """Remove every jump to the chain and the chain itself; no resolving, so DNS cannot matter."""
        chain = self.chain
        before, after = {}, {}
        for family, command, _version in FAMILIES:
            ruleset = self.read(family, required=False)
            if ruleset is None:
                before[family] = after[family] = []
                continue
            before[family] = ruleset.describe(chain)
            for _from_chain, _position, line in ruleset.jumps_to(chain):
                # by spec: any identical copy is ours, so whichever goes first does not matter
                self.run(family, ["-D"] + parse_rule(line)[1:], "removing the jump %r" % line)
                self.rules_removed.append("%s %s" % (command, line))
            if chain in ruleset.chains:
                self.run(family, ["-F", chain], "flushing chain %s" % chain)
                self.rules_removed.extend("%s %s" % (command, line) for line in ruleset.rules.get(chain, []))
                self.run(family, ["-X", chain], "deleting chain %s" % chain)
                self.rules_removed.append("%s -X %s" % (command, chain))
            after[family] = [] if self.check_mode else self.read(family, required=True).describe(chain)
        return dict(resolved={}, unresolved=[], before=before, after=after)


def shown(networks):
    """{name: [address or network as text]} for the result."""
    return dict((name, [str(n.network_address) if n.num_addresses == 1 else str(n) for n in found])
                for name, found in networks.items())


def render(rules):
    return "".join("# %s\n%s" % (family, "".join(line + "\n" for line in rules.get(family, [])))
                   for family, _c, _v in FAMILIES)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            destinations=dict(type="list", elements="str",
                              default=["api.coinbase.com", "advanced-trade-ws.coinbase.com",
                                       "advanced-trade-ws-user.coinbase.com"]),
            chain=dict(type="str", default="TRADEOPS-EGRESS"),
            on_unresolved=dict(type="str", choices=["fail", "warn"], default="fail"),
            resolve_timeout=dict(type="float", default=10),
            wait=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    chain = module.params["chain"]
    if not CHAIN_RE.match(chain) or chain.upper() in BUILTIN_TARGETS:
        module.fail_json(msg="chain=%r is not usable: it must be 1-28 letters, digits, '_', '.' or '-'"
                             " and not a built-in chain or target" % chain)
    if module.params["state"] == "present":
        names = [d.strip() for d in module.params["destinations"]]
        if not names or any(not d for d in names):
            module.fail_json(msg="destinations must be a non-empty list of host names or addresses")
        module.params["destinations"] = names
    if module.params["resolve_timeout"] <= 0 or module.params["wait"] < 0:
        module.fail_json(msg="resolve_timeout must be above 0 and wait must not be negative")

    block = EgressBlock(module)
    if module.params["state"] == "present":
        outcome = block.present()
    else:
        outcome = block.absent()
    changed = bool(block.rules_added or block.rules_removed)
    result = dict(
        changed=changed,
        check_mode=module.check_mode,
        state=module.params["state"],
        chain=chain,
        resolved=outcome["resolved"],
        unresolved=outcome["unresolved"],
        blocked=sorted(set(str(network) for family in outcome["after"]
                           for network in Ruleset(outcome["after"][family]).blocked(chain))),
        rules_added=block.rules_added,
        rules_removed=block.rules_removed,
        rules=outcome["after"],
        commands=block.commands,
    )
    if module._diff:
        result["diff"] = dict(before=render(outcome["before"]), after=render(outcome["after"]),
                              before_header="%s rules" % chain, after_header="%s rules" % chain)
    for warning in block.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
