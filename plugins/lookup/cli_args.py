# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: cli_args
short_description: How this ansible-playbook run was started, to start another playbook the same way
version_added: 0.1.0
description:
  - Returns the command-line arguments of the running C(ansible-playbook) (or the
    C(ansible-playbook) that ansible-runner / AWX started) that say B(where) and B(with what) it
    runs, so that a playbook can start another one against the same inventory with the same
    extra vars, for example the daily checklist's check-mode rehearsal of the kill switch.
  - "Forwarded: every C(-i) inventory source, every C(-e) extra-vars argument (C(@file) paths made
    absolute), C(--limit), C(--vault-id), C(--vault-password-file), C(-u), C(--private-key),
    C(-c), C(-T), C(-f), C(-b), C(--become-method), C(--become-user), the SSH argument options and
    the password files. Not forwarded: tags, C(--check), C(--diff), verbosity, C(--step),
    C(--start-at-task): the caller decides those."
  - Password prompts (C(-k), C(-K), C(--ask-vault-pass), and C(--vault-id) values whose source is
    C(prompt), such as C(prod@prompt)) cannot be answered by a second run; they are listed in
    RV(_raw.prompts) so the caller can say so instead of hanging.
  - Extra vars can hold secrets (an AWX credential injected as extra vars); the caller must not
    print the arguments (C(no_log) on the task that runs them).
author:
  - TradeOps engineering (@tradeops)
options: {}
notes:
  - Reads C(ansible.context.CLIARGS), which every worker process inherits from the
    C(ansible-playbook) process; relative paths are resolved against the directory it was started in.
"""

EXAMPLES = r"""
- name: Rehearse the kill switch in check mode against the same inventory, with the same extra vars
  ansible.builtin.command:
    argv: >-
      {{ [ansible_playbook_python, '-m', 'ansible', 'playbook'] + _run.argv
         + [playbook_dir ~ '/kill_switch.yml', '--check'] }}
    chdir: "{{ _run.cwd }}"
  vars:
    _run: "{{ lookup('tradeops.incident_response.cli_args') }}"
  check_mode: false
  no_log: true  # the extra vars may carry secrets
  register: rehearsal
"""

RETURN = r"""
_raw:
  description: One dictionary.
  type: dict
  contains:
    argv:
      description: The arguments to pass to C(ansible-playbook) before the playbook path.
      type: list
      elements: str
      sample: ["-i", "/srv/tradeops/inventories/production", "-e", "@/srv/tradeops/vault.yml"]
    cwd:
      description: The directory the run was started in.
      type: str
      sample: /srv/tradeops
    inventory:
      description: The inventory sources (absolute where they are paths).
      type: list
      elements: str
    prompts:
      description: Password prompts the run was started with, which a second run cannot answer.
      type: list
      elements: str
      sample: ["--ask-become-pass", "--vault-id prod@prompt"]
"""

import os

from ansible import constants as C
from ansible import context
from ansible.plugins.lookup import LookupBase

# (CLIARGS key, option, the configuration setting that is its default): a value equal to its
# default was not given on the command line (or does not matter: the second run reads the same
# configuration), so it is not forwarded.
_VALUE_OPTIONS = (
    ("subset", "--limit", None),
    ("remote_user", "--user", "DEFAULT_REMOTE_USER"),
    ("private_key_file", "--private-key", "DEFAULT_PRIVATE_KEY_FILE"),
    ("connection", "--connection", "DEFAULT_TRANSPORT"),
    ("timeout", "--timeout", "DEFAULT_TIMEOUT"),
    ("forks", "--forks", "DEFAULT_FORKS"),
    ("become_method", "--become-method", "DEFAULT_BECOME_METHOD"),
    ("become_user", "--become-user", "DEFAULT_BECOME_USER"),
    ("ssh_common_args", "--ssh-common-args", None),
    ("ssh_extra_args", "--ssh-extra-args", None),
    ("scp_extra_args", "--scp-extra-args", None),
    ("sftp_extra_args", "--sftp-extra-args", None),
    ("connection_password_file", "--connection-password-file", None),
    ("become_password_file", "--become-password-file", None),
)
_PROMPTS = (("ask_pass", "--ask-pass"), ("become_ask_pass", "--ask-become-pass"), ("ask_vault_pass", "--ask-vault-pass"))


def _prompts_for_password(vault_id):
    """Whether a --vault-id value asks for its password: ``label@prompt``, ``@prompt`` or ``prompt`` (as ansible parses it)."""
    source = vault_id.split("@", 1)[1] if "@" in vault_id else vault_id
    return source in ("prompt", "prompt_ask_vault_pass")


def _absolute(path, cwd):
    """A relative path that exists from cwd, made absolute; anything else (host lists, URLs) as it is."""
    if path and not os.path.isabs(path) and os.path.exists(os.path.join(cwd, path)):
        return os.path.normpath(os.path.join(cwd, path))
    return path


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        args = context.CLIARGS
        cwd = os.getcwd()
        argv = []
        inventory = [_absolute(source, cwd) for source in (args.get("inventory") or ())]
        for source in inventory:
            argv += ["-i", source]
        for extra in args.get("extra_vars") or ():
            if extra.startswith("@"):
                extra = "@" + _absolute(extra[1:], cwd)
            argv += ["-e", extra]
        for vault_id in args.get("vault_ids") or ():
            argv += ["--vault-id", vault_id]
        for password_file in args.get("vault_password_files") or ():
            argv += ["--vault-password-file", _absolute(password_file, cwd)]
        for key, option, setting in _VALUE_OPTIONS:
            value = args.get(key)
            if value in (None, "", (), []) or (setting and value == getattr(C, setting, None)):
                continue
            argv += [option, _absolute(str(value), cwd) if key.endswith("_file") else str(value)]
        if args.get("become"):
            argv.append("--become")
        prompts = [option for key, option in _PROMPTS if args.get(key)]
        # --vault-id label@prompt (or just "prompt") asks for the password too: forwarded, and listed here.
        prompts += ["--vault-id %s" % vault_id for vault_id in args.get("vault_ids") or () if _prompts_for_password(vault_id)]
        return [{"argv": argv, "cwd": cwd, "inventory": inventory, "prompts": prompts}]
