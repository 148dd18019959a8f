"""Run a module's main() in-process and return its result (exit_json / fail_json captured)."""

from __future__ import annotations

import importlib
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

MODULES = "ansible_collections.tradeops.incident_response.plugins.modules"


class ModuleExit(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__(result.get("msg", ""))
        self.result = result


def run_module(name: str, args: dict, check_mode: bool = False) -> dict:
    module = importlib.import_module("%s.%s" % (MODULES, name))

    def exit_json(self, **result):
        raise ModuleExit(dict(result, failed=False))

    def fail_json(self, msg, **result):
        raise ModuleExit(dict(result, msg=msg, failed=True))

    with patch_module_args(dict(args, _ansible_check_mode=check_mode)), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json):
        try:
            module.main()
        except ModuleExit as done:
            return done.result
    raise AssertionError("module %s returned without exit_json or fail_json" % name)
