"""trading_mode: atomic write in the same directory, previous mode reported (absent / invalid too),
attributes fixed without a rewrite, honest check mode, and a symlink is replaced, never followed."""

from __future__ import annotations

import os
import stat
from unittest import mock

from ansible.module_utils import basic

from support.modules import run_module

MODULE = "ansible_collections.tradeops.incident_response.plugins.modules.trading_mode"
ME = dict(owner=str(os.getuid()), group=str(os.getgid()))


def args(path, mode, **extra):
    return dict(ME, path=str(path), mode=mode, _ansible_diff=True, **extra)


def attrs(path):
    info = os.lstat(path)
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def test_missing_file_is_absent_then_written_with_its_attributes(tmp_path):
    path = tmp_path / "trading_mode"
    result = run_module("trading_mode", args(path, "REDUCE_ONLY"))
    assert (result["previous"], result["current"], result["written"], result["changed"]) == ("absent", "REDUCE_ONLY", True, True)
    assert path.read_text() == "REDUCE_ONLY\n"
    assert attrs(path) == (os.getuid(), os.getgid(), 0o644)
    assert result["diff"]["before"] == "(absent)\n" and result["diff"]["after"].startswith("REDUCE_ONLY\n")
    assert [p.name for p in tmp_path.iterdir()] == ["trading_mode"]  # no temporary left


def test_same_mode_twice_changes_nothing(tmp_path):
    path = tmp_path / "trading_mode"
    run_module("trading_mode", args(path, "HALTED"))
    inode = os.stat(path).st_ino
    again = run_module("trading_mode", args(path, "HALTED"))
    assert (again["previous"], again["changed"], again["written"], again["attributes_fixed"]) == ("HALTED", False, False, [])
    assert os.stat(path).st_ino == inode


def test_a_change_is_a_rename_of_a_temporary_in_the_same_directory(tmp_path):
    path = tmp_path / "trading_mode"
    path.write_text("NORMAL\n")
    renames = []
    real_rename = os.rename

    def rename(src, dst):
        renames.append((os.path.dirname(src), os.path.basename(src), os.stat(src).st_mode, open(src).read()))
        real_rename(src, dst)

    with mock.patch(MODULE + ".os.rename", rename):
        result = run_module("trading_mode", args(path, "REDUCE_ONLY"))
    assert result["previous"] == "NORMAL" and result["written"]
    directory, name, mode, content = renames[0]
    # the temporary is complete, with its final mode, before it replaces the file
    assert directory == str(tmp_path) and name.startswith(".trading_mode.") and content == "REDUCE_ONLY\n"
    assert stat.S_IMODE(mode) == 0o644


def test_check_mode_writes_nothing_and_says_what_it_would(tmp_path):
    path = tmp_path / "trading_mode"
    path.write_text("NORMAL\n")
    result = run_module("trading_mode", args(path, "HALTED"), check_mode=True)
    assert result["changed"] and result["written"] and result["check_mode"] and result["previous"] == "NORMAL"
    assert path.read_text() == "NORMAL\n"
    assert result["diff"]["before"].startswith("NORMAL\n") and result["diff"]["after"].startswith("HALTED\n")


def test_invalid_content_is_reported_and_replaced(tmp_path):
    path = tmp_path / "trading_mode"
    path.write_text("normal please\n")
    result = run_module("trading_mode", args(path, "NORMAL"))
    assert result["previous"] == "invalid" and result["previous_raw"] == "normal please\n"
    assert path.read_text() == "NORMAL\n"


def test_drifted_attributes_on_the_right_word_are_fixed_in_place(tmp_path):
    path = tmp_path / "trading_mode"
    path.write_text("HALTED\n")
    os.chmod(path, 0o666)
    inode = os.stat(path).st_ino
    result = run_module("trading_mode", args(path, "HALTED"))
    assert result["changed"] and not result["written"] and result["attributes_fixed"] == ["mode 0666 -> 0644"]
    assert os.stat(path).st_ino == inode and attrs(path)[2] == 0o644


def test_a_symlink_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    path = tmp_path / "trading_mode"
    path.symlink_to(victim)
    result = run_module("trading_mode", args(path, "HALTED"))
    assert result["previous"] == "invalid" and result["written"]
    assert victim.read_text() == "keep me\n" and not path.is_symlink() and path.read_text() == "HALTED\n"


def test_a_missing_directory_or_user_is_a_clear_failure(tmp_path):
    result = run_module("trading_mode", args(tmp_path / "nope" / "trading_mode", "HALTED"))
    assert result["failed"] and "directory %s does not exist" % (tmp_path / "nope") in result["msg"]
    result = run_module("trading_mode", dict(args(tmp_path / "m", "HALTED"), group="no-such-group-tradeops"))
    assert result["failed"] and "group 'no-such-group-tradeops' does not exist" in result["msg"]


def test_bad_input_names_the_choices(tmp_path):
    result = run_module("trading_mode", args(tmp_path / "m", "STOP"))
    assert result["failed"] and "NORMAL, REDUCE_ONLY, HALTED" in result["msg"]
    result = run_module("trading_mode", args(tmp_path / "m", "HALTED", file_mode="rw-r--r--"))
    assert result["failed"] and "file_mode" in result["msg"]


def test_the_trading_mode_is_not_returned_as_mode(tmp_path):
    # AnsibleModule.exit_json adds the file's permissions as `mode` to any result with a `path`:
    # the trading mode must live under another key, or it would be overwritten with "0644".
    result = run_module("trading_mode", args(tmp_path / "m", "HALTED"))
    assert "mode" not in result and result["current"] == "HALTED"
    assert basic.AnsibleModule.add_path_info  # the behaviour this guards against still exists
