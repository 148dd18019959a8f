#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bot_log_rotate
short_description: Rotate a running trading bot's logs without losing a line (copy, then truncate with the writers paused)
version_added: 0.1.0
description:
  - The SOP's weekly "rotate logs" (Prevention Checklist), on a fleet host, while the bot keeps
    writing.
  - "Why copy and truncate: the bot opens its log once, in append mode, and never reopens it
    (Python's C(RotatingFileHandler), which also rotates the file itself at 20 MiB keeping 3);
    it has no signal that reopens the log, and C(SIGHUP) would end it. Renaming the file would
    leave the bot writing into the renamed file. So the content is copied to C(<log>.1) and the
    log is truncated in place; the bot's next append lands at the start of the emptied file."
  - "Why no line is lost: a plain copytruncate loses what is written between the end of the copy
    and the truncation. Here the bulk is copied while the bot runs; then every process that has
    the log open for writing (and every process of O(writer_units) whose open files cannot be
    read) is paused (C(SIGSTOP), waiting until each of its threads has stopped), the bytes written
    since are copied too, the log is truncated, and the writers are resumed (C(SIGCONT), in a
    C(finally)). The pause covers only that last tail: milliseconds. A process that was already
    stopped is left stopped."
  - "A writer that has the log open without C(O_APPEND) would keep writing at its old offset
    after the truncation and leave a hole of zero bytes; such a log is not rotated and the result
    says why."
  - Rotations are numbered like the bot's own (C(<log>.1) newest, up to C(<log>.<keep>)), so the
    bot's size-based rotation and this one shift the same files. They are not compressed, for the
    same reason. Each rotation keeps the log's owner, group and mode.
  - A log is rotated when it is at least O(max_size), or when its first line is at least
    O(max_age_days) old (by its leading UTC timestamp; without one, by when C(<log>.1) was
    written). An empty log is never rotated.
author:
  - TradeOps engineering (@tradeops)
attributes:
  check_mode:
    support: full
    description: Reports which logs would be rotated and why; copies, truncates, pauses and removes nothing.
  diff_mode:
    support: none
    description: Not useful for log files.
options:
  paths:
    description: The logs.
    type: list
    elements: path
    default: [/opt/trading-bot/logs/websocket.log, /opt/trading-bot/logs/orders.log]
  max_size:
    description: Rotate a log this large or larger (bytes, or with a unit such as C(10M), C(512K), C(1G)).
    type: str
    default: 10M
  max_age_days:
    description: Rotate a log whose first line is this many days old or older; C(0) turns the age rule off.
    type: float
    default: 7
  keep:
    description: Rotations to keep (C(<log>.1) to C(<log>.<keep>)); older ones are removed.
    type: int
    default: 3
  force:
    description: Rotate every non-empty log, whatever its size and age.
    type: bool
    default: false
  pause_writers:
    description:
      - Pause the processes writing the log while the tail is copied and the log truncated (see above).
      - Without it this is a plain copytruncate, which can lose the lines written in between.
    type: bool
    default: true
  writer_units:
    description:
      - systemd units whose processes write the logs (the fleet contract's two bot units).
      - Writers are found from C(/proc/<pid>/fd). Where that cannot be read (root without
        C(CAP_SYS_PTRACE), as in a container), every process of these units is paused as well,
        since it may be a writer; RV(logs[].uninspected) lists them.
    type: list
    elements: str
    default: [trading-bot-perpetuals, trading-bot-orders]
notes:
  - Needs root (C(become=true)) to see which processes write the log and to pause them.
"""

EXAMPLES = r"""
- name: Weekly log rotation (SOP Prevention Checklist)
  tradeops.incident_response.bot_log_rotate:
    max_size: 10M
    max_age_days: 7
    keep: 3
  become: true
  register: rotation
"""

RETURN = r"""
logs:
  description: One entry per log.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The log.
      type: str
    exists:
      description: Whether it exists.
      type: bool
    size:
      description: Its size in bytes before the run.
      type: int
    age_days:
      description: Age of its first line in days (null when unknown).
      type: float
    rotate:
      description: Whether it was (in check mode, would be) rotated.
      type: bool
    reason:
      description: Why it was or was not rotated.
      type: str
      sample: size 12.0 MiB >= 10.0 MiB
    rotated_to:
      description: The file the content went to.
      type: str
      sample: /opt/trading-bot/logs/orders.log.1
    bytes:
      description: Bytes moved to RV(logs[].rotated_to) (the bulk and the tail).
      type: int
    tail_bytes:
      description: Bytes written while the bulk was copied, copied with the writers paused.
      type: int
    writers:
      description: PIDs that were paused (those that had the log open for writing, and the uninspected unit processes).
      type: list
      elements: int
    uninspected:
      description: PIDs of RV(logs[].writers) whose open files could not be read, paused because they belong to O(writer_units).
      type: list
      elements: int
    paused_ms:
      description: How long the writers were paused, in milliseconds.
      type: float
    removed:
      description: Rotations removed because they were beyond O(keep).
      type: list
      elements: str
    error:
      description:
        - Why the log could not be rotated, and what was already done on disk (older rotations
          shifted or removed). A partial C(<log>.1) is removed again, so the log keeps all its content.
        - The result is changed when anything was done on disk.
      type: str
rotated:
  description: The logs that were (in check mode, would be) rotated.
  returned: always
  type: list
  elements: str
"""

import errno
import os
import re
import signal
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)")
CHUNK = 1024 * 1024
STOP_WAIT_S = 2.0


def first_line_time(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            line = handle.readline(200)
    except OSError:
        return None
    match = TIMESTAMP.match(line)
    if not match:
        return None
    try:
        born = datetime.strptime(match.group(1).replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
    except ValueError:  # shaped like a timestamp but not a date (2026-13-45T99:00:00)
        return None
    return born.replace(tzinfo=timezone.utc).timestamp()


def unit_pids(units):
    """The processes of the given systemd units, by the cgroup each process is in (/proc/<pid>/cgroup
    is readable without ptrace rights, on cgroup v1 and v2, inside a container too)."""
    names = ["/" + (unit if "." in unit else unit + ".service") for unit in units]
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cgroup" % entry, "r") as handle:
                paths = [line.rstrip("\n").split(":", 2)[-1] for line in handle]
        except OSError:
            continue
        if any(path.endswith(name) or (name + "/") in path for path in paths for name in names):
            pids.add(int(entry))
    return pids


def writers_of(path, candidates=()):
    """([(pid, appends)], uninspected): processes other than this one holding the file open for
    writing, and the candidates whose open files cannot be read (they may be writers)."""
    target = os.stat(path)
    found = {}
    uninspected = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        fd_dir = "/proc/%s/fd" % entry
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            if int(entry) in candidates:
                uninspected.add(int(entry))
            continue
        for fd in fds:
            try:
                info = os.stat(os.path.join(fd_dir, fd))
            except PermissionError:  # no ptrace rights over it (root without CAP_SYS_PTRACE)
                if int(entry) in candidates:
                    uninspected.add(int(entry))
                break
            except OSError:
                continue
            try:
                if (info.st_dev, info.st_ino) != (target.st_dev, target.st_ino):
                    continue
                with open("/proc/%s/fdinfo/%s" % (entry, fd), "r") as handle:
                    flags = int([line.split()[1] for line in handle if line.startswith("flags:")][0], 8)
            except (OSError, IndexError, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                pid = int(entry)
                found[pid] = found.get(pid, True) and bool(flags & os.O_APPEND)
    return sorted(found.items()), sorted(uninspected - set(found))


def thread_states(pid):
    states = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return states
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, task), "r") as handle:
                states.append(handle.read().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue
    return states


def is_stopped(pid):
    states = thread_states(pid)
    return bool(states) and all(state in ("T", "t") for state in states)


class Paused:
    """SIGSTOP the writers and wait until every thread has stopped; SIGCONT them on exit, always."""

    def __init__(self, pids):
        self.pids = [pid for pid in pids if not is_stopped(pid)]  # one already stopped stays stopped
        self.stopped = []
        self.started = None
        self.elapsed_ms = 0.0

    def __enter__(self):
        self.started = time.monotonic()
        try:
            for pid in self.pids:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    self.stopped.append(pid)
                except ProcessLookupError:
                    continue
            deadline = time.monotonic() + STOP_WAIT_S
            waiting = list(self.stopped)
            while waiting:
                waiting = [pid for pid in waiting if os.path.exists("/proc/%d" % pid) and not is_stopped(pid)]
                if waiting and time.monotonic() > deadline:
                    raise OSError(errno.ETIMEDOUT, "writers %s did not stop within %.0f s" % (waiting, STOP_WAIT_S))
                if waiting:
                    time.sleep(0.0005)
        except BaseException:
            self.resume()
            raise
        return self

    def resume(self):
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped = []
        if self.started is not None:
            self.elapsed_ms = round((time.monotonic() - self.started) * 1000, 3)

    def __exit__(self, *exc):
        self.resume()
        return False


def copy_range(src, dst, start):
    """Copy src from offset start to its current end into dst; returns the new offset."""
    src.seek(start)
    while True:
        block = src.read(CHUNK)
        if not block:
            return src.tell()
        dst.write(block)


def shift(path, keep, check_mode, done=None):
    """Make room for <path>.1: remove <path>.<keep> and beyond, rename .N to .N+1. Returns removed files.

    Each step taken is appended to ``done`` (when given), so a failure later still says what changed."""
    done = [] if done is None else done
    removed = []
    number = keep
    while os.path.exists("%s.%d" % (path, number)):
        removed.append("%s.%d" % (path, number))
        number += 1
    if not check_mode:
        for old in removed:
            os.unlink(old)
            done.append("removed %s" % old)
        for number in range(keep - 1, 0, -1):
            if os.path.exists("%s.%d" % (path, number)):
                os.rename("%s.%d" % (path, number), "%s.%d" % (path, number + 1))
                done.append("renamed %s.%d to .%d" % (path, number, number + 1))
    return removed


def drop_copy(path, keep, ours):
    """Remove our copy (by its inode) from <path>.1 .. (the writer may have shifted it along);
    True when it is gone."""
    for number in range(1, keep + 10):
        candidate = "%s.%d" % (path, number)
        try:
            found = os.lstat(candidate)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (ours.st_dev, ours.st_ino):
            try:
                os.unlink(candidate)
            except OSError:
                return False
            return True
    return True


def rotate(path, keep, pause_writers, candidates, result, done):
    """Rotate one log. Every change made on disk is appended to ``done``; on a failure before the
    truncation our partial <path>.1 is removed again (the log itself is untouched then)."""
    info = os.stat(path)
    writers, uninspected = writers_of(path, candidates)
    result["writers"] = sorted([pid for pid, _appends in writers] + uninspected)
    result["uninspected"] = uninspected
    no_append = [pid for pid, appends in writers if not appends]
    if no_append:
        raise ValueError("process(es) %s write the log without O_APPEND: after a truncation they would keep writing at"
                         " their old offset and leave a hole; restart them to rotate instead" % no_append)
    result["removed"] = shift(path, keep, False, done)
    target = path + ".1"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    ours = os.fstat(fd)
    truncated = False
    try:
        with os.fdopen(fd, "wb") as dst, open(path, "rb") as src:
            os.fchown(dst.fileno(), info.st_uid, info.st_gid)
            os.fchmod(dst.fileno(), info.st_mode & 0o7777)
            offset = copy_range(src, dst, 0)
            bulk = offset
            dst.flush()
            os.fsync(dst.fileno())  # the bulk is on disk before the pause, so the pause flushes only the tail
            pids = result["writers"] if pause_writers else []
            with Paused(pids) as paused:
                now = os.stat(path)
                if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                    # The bot rotated the log itself while we copied (its own rotation holds everything,
                    # and it shifted our copy along with its files): find our copy by its inode and drop it.
                    paused.resume()
                    dst.close()
                    if not drop_copy(path, keep, ours):
                        raise OSError(errno.EPERM, "cannot remove our copy after the writer rotated the log itself", target)
                    result.update(rotate=False, reason="the writer rotated the log itself meanwhile; nothing to do",
                                  rotated_to=None)
                    return
                offset = copy_range(src, dst, offset)
                dst.flush()
                os.fsync(dst.fileno())
                os.truncate(path, 0)
                truncated = True
                done.append("copied %s to %s and truncated it" % (path, target))
            result["paused_ms"] = paused.elapsed_ms if pause_writers else 0.0
    except BaseException:
        # Before the truncation the log still holds everything: drop the partial copy. After it, the
        # copy is the only place the content is, so it stays whatever failed later.
        if not truncated and not drop_copy(path, keep, ours):
            done.append("left the incomplete copy %s" % target)
        raise
    result.update(rotated_to=target, bytes=offset, tail_bytes=offset - bulk)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path",
                       default=["/opt/trading-bot/logs/websocket.log", "/opt/trading-bot/logs/orders.log"]),
            max_size=dict(type="str", default="10M"),
            max_age_days=dict(type="float", default=7.0),
            keep=dict(type="int", default=3),
            force=dict(type="bool", default=False),
            pause_writers=dict(type="bool", default=True),
            writer_units=dict(type="list", elements="str", default=["trading-bot-perpetuals", "trading-bot-orders"]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        max_size = human_to_bytes(params["max_size"])
    except ValueError as exc:
        module.fail_json(msg="max_size=%r: %s" % (params["max_size"], exc))
    if params["keep"] < 1:
        module.fail_json(msg="keep must be at least 1 (the rotation itself), not %d" % params["keep"])

    logs, rotated, failed = [], [], []
    touched = []  # logs not rotated whose older rotations were still shifted (or a copy left behind)
    now = time.time()
    candidates = unit_pids(params["writer_units"]) if params["pause_writers"] else set()
    for path in params["paths"]:
        entry = dict(path=path, exists=os.path.isfile(path), size=0, age_days=None, rotate=False, reason="",
                     rotated_to=None, bytes=0, tail_bytes=0, writers=[], uninspected=[], paused_ms=0.0, removed=[], error=None)
        logs.append(entry)
        if not entry["exists"]:
            entry["reason"] = "missing"
            continue
        entry["size"] = os.stat(path).st_size
        born = first_line_time(path)
        if born is None and os.path.exists(path + ".1"):
            born = os.stat(path + ".1").st_mtime
        age = None if born is None else round((now - born) / 86400.0, 3)
        entry["age_days"] = age
        if entry["size"] == 0:
            entry["reason"] = "empty"
        elif params["force"]:
            entry.update(rotate=True, reason="forced")
        elif entry["size"] >= max_size:
            entry.update(rotate=True, reason="size %d >= %d bytes" % (entry["size"], max_size))
        elif params["max_age_days"] > 0 and age is not None and age >= params["max_age_days"]:
            entry.update(rotate=True, reason="first line %.1f days old >= %s" % (age, params["max_age_days"]))
        else:
            entry["reason"] = "size %d < %d bytes, age %s < %s days" % (
                entry["size"], max_size, "unknown" if age is None else "%.1f" % age,
                params["max_age_days"])
        if not entry["rotate"]:
            continue
        if module.check_mode:
            entry["rotated_to"] = path + ".1"
            entry["removed"] = shift(path, params["keep"], True)
            writers, uninspected = writers_of(path, candidates)
            entry.update(writers=sorted([pid for pid, _appends in writers] + uninspected), uninspected=uninspected)
            rotated.append(path)
            continue
        done = []
        try:
            rotate(path, params["keep"], params["pause_writers"], candidates, entry, done)
        except (OSError, ValueError) as exc:
            error = str(exc) if isinstance(exc, ValueError) else "%s: %s" % (
                getattr(exc, "filename", None) or path, exc.strerror or exc)
            if done:
                error += " (already done: %s)" % "; ".join(done)
                touched.append(path)
            entry.update(rotate=False, error=error)
            failed.append(path)
            continue
        if entry["rotate"]:
            rotated.append(path)
        elif done:
            touched.append(path)

    result = dict(changed=bool(rotated or touched), logs=logs, rotated=rotated)
    if failed:
        module.fail_json(msg="could not rotate %s: %s" % (", ".join(failed), "; ".join(
            e["error"] for e in logs if e["error"])), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
