#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: trading_mode
short_description: Set a trading host's mode file to NORMAL, REDUCE_ONLY or HALTED, atomically
version_added: 0.1.0
description:
  - The SOP's C(echo "REDUCE_ONLY" > /tmp/trading_mode) (section 7, kill switch), done so the bot
    never reads a half-written file and a world-writable directory cannot undo it.
  - Writes the new word to a temporary file in the same directory, sets its owner, group and
    mode, flushes it to disk, then renames it over the old file. The bot reads the file before
    every order, so it sees either the old mode or the new one.
  - Reports the previous mode (V(absent) when the file did not exist, V(invalid) when it held
    anything else) and the new one. A missing or unreadable file means HALTED to the bot.
  - When the word is already right but the owner, group or mode drifted, only those are fixed.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Reads the file and reports what it would write or fix.
  diff_mode:
    support: full
    description: Shows the file's word (and attributes) before and after.
options:
  mode:
    description:
      - The trading mode to set. V(REDUCE_ONLY) allows only exits; V(HALTED) places and cancels
        nothing.
    type: str
    required: true
    choices: [NORMAL, REDUCE_ONLY, HALTED]
  path:
    description:
      - The mode file. The contract's default is a root-owned file in a sticky directory, not
        the SOP's C(/tmp/trading_mode), so that no local user can flip a halted bot back on.
      - The directory must exist.
    type: path
    default: /var/lib/trading-bot/trading_mode
  owner:
    description: Owner of the file (name or numeric id).
    type: str
    default: root
  group:
    description: Group of the file (name or numeric id); the bot reads the file through it.
    type: str
    default: tradingbot
  file_mode:
    description: Permissions of the file, as an octal string.
    type: str
    default: '0644'
seealso:
  - name: Incident response SOP, section 7 (kill switch)
    description: The procedure this module automates.
    link: https://github.com/tradeops/incident_response/tree/main/docs
"""

EXAMPLES = r"""
- name: Kill switch, step 1 - reduce-only (SOP 7)
  tradeops.incident_response.trading_mode:
    mode: REDUCE_ONLY
  become: true
  register: trading_mode

- name: Say what changed
  ansible.builtin.debug:
    msg: "{{ trading_mode.previous }} -> {{ trading_mode.current }}"

- name: Halt a host whose bot keeps its mode file elsewhere
  tradeops.incident_response.trading_mode:
    mode: HALTED
    path: /srv/bot/state/trading_mode
    group: bot
  become: true
"""

RETURN = r"""
check_mode:
  description: Whether the module ran in check mode (so nothing was written).
  returned: always
  type: bool
  sample: false
current:
  description:
    - The trading mode the file holds after the run (the requested one; in check mode, the one it
      would hold).
    - Like other file modules, the result also carries the file's C(owner), C(group) and C(mode)
      (its permissions, not the trading mode).
  returned: success
  type: str
  sample: REDUCE_ONLY
previous:
  description: The mode before the run; V(absent) when the file was missing, V(invalid) when it held something else.
  returned: always
  type: str
  sample: NORMAL
previous_raw:
  description: The first 64 characters of an invalid file (only when RV(previous) is V(invalid)).
  returned: when previous is invalid
  type: str
  sample: "normal please"
path:
  description: The mode file.
  returned: always
  type: str
  sample: /var/lib/trading-bot/trading_mode
written:
  description: Whether the word was (or in check mode, would be) written.
  returned: success
  type: bool
  sample: true
attributes_fixed:
  description: Owner, group or mode fixes on a file whose word was already right.
  returned: success
  type: list
  elements: str
  sample: ["mode 0666 -> 0644"]
"""

import errno
import grp
import os
import pwd
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

MODES = ("NORMAL", "REDUCE_ONLY", "HALTED")
RAW_LIMIT = 64


def lookup_id(value, kind):
    """A user or group name (or numeric id) as a number; None when it does not exist."""
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid if kind == "owner" else grp.getgrnam(value).gr_gid
    except KeyError:
        return None


def read_current(path):
    """(word or None, raw text or None, lstat or None). Never follows a symlink."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, None, None
    if not stat.S_ISREG(info.st_mode):
        return None, None, info
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        raw = os.read(fd, 4096).decode("utf-8", errors="replace")
    finally:
        os.close(fd)
    word = raw.strip()
    return (word if word in MODES else None), raw, info


def describe(word, info, file_mode):
    if info is None:
        return "(absent)\n"
    if not stat.S_ISREG(info.st_mode):
        return "(not a regular file)\n"
    return "%s\n# owner %s group %s mode %04o\n" % (
        word or "(invalid)", info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))


def write_atomically(path, word, uid, gid, mode):
    """Temp file in the same directory (so the rename is atomic), attributes set before the rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".trading_mode.", suffix=".tmp", dir=directory)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.write(fd, (word + "\n").encode("ascii"))
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", required=True, choices=list(MODES)),
            path=dict(type="path", default="/var/lib/trading-bot/trading_mode"),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="tradingbot"),
            file_mode=dict(type="str", default="0644"),
        ),
        supports_check_mode=True,
    )
    word = module.params["mode"]
    path = module.params["path"]
    try:
        file_mode = int(module.params["file_mode"], 8)
        if not 0 <= file_mode <= 0o7777:
            raise ValueError
    except ValueError:
        module.fail_json(msg="file_mode=%r is not an octal mode such as '0644'" % module.params["file_mode"])
    uid = lookup_id(module.params["owner"], "owner")
    gid = lookup_id(module.params["group"], "group")
    for value, name, kind in ((uid, module.params["owner"], "user"), (gid, module.params["group"], "group")):
        if value is None:
            module.fail_json(msg="%s %r does not exist on this host, so the mode file cannot be given to it;"
                                 " the host does not match the fleet contract" % (kind, name), path=path)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg="directory %s does not exist; the host does not match the fleet contract"
                             " (or path is wrong)" % directory, path=path)

    try:
        current, raw, info = read_current(path)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror), path=path)
    if info is not None and stat.S_ISDIR(info.st_mode):
        module.fail_json(msg="%s is a directory, not a mode file" % path, path=path)
    if info is None:
        previous = "absent"
    else:
        previous = current or "invalid"

    result = dict(changed=False, check_mode=module.check_mode, path=path, previous=previous, current=word,
                  written=False, attributes_fixed=[])
    if previous == "invalid":
        result["previous_raw"] = (raw or "")[:RAW_LIMIT] if raw is not None else "(not a regular file)"

    if current != word:
        result["written"] = True
    else:
        if info.st_uid != uid:
            result["attributes_fixed"].append("owner %s -> %s" % (info.st_uid, uid))
        if info.st_gid != gid:
            result["attributes_fixed"].append("group %s -> %s" % (info.st_gid, gid))
        if stat.S_IMODE(info.st_mode) != file_mode:
            result["attributes_fixed"].append("mode %04o -> %04o" % (stat.S_IMODE(info.st_mode), file_mode))
    result["changed"] = result["written"] or bool(result["attributes_fixed"])

    if module._diff:
        after = "%s\n# owner %s group %s mode %04o\n" % (word, uid, gid, file_mode)
        result["diff"] = dict(before=describe(current, info, file_mode), after=after,
                              before_header=path, after_header=path)

    if result["changed"] and not module.check_mode:
        try:
            if result["written"]:
                write_atomically(path, word, uid, gid, file_mode)
            else:
                os.lchown(path, uid, gid)
                os.chmod(path, file_mode)
        except OSError as exc:
            hint = " (run the task as root: become: true)" if exc.errno in (errno.EPERM, errno.EACCES) else ""
            module.fail_json(msg="cannot set %s to %s: %s%s" % (path, word, exc.strerror, hint), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
