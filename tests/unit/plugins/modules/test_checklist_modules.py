"""The prevention checklists' modules without a fleet: bot_log_info (counts in a window, across
rotations), bot_log_rotate (no line lost while a process writes; check mode changes nothing) and
incident_record_info (the weekly review's numbers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from support.modules import run_module


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".000Z"


def test_log_info_counts_the_window_across_rotations(tmp_path):
    now = time.time()
    ws = tmp_path / "websocket.log"
    # the rotation holds yesterday's first hours and an old error; the live log the rest
    (tmp_path / "websocket.log.1").write_text(
        "%s ERROR error connect url=x: boom\n" % stamp(now - 3 * 86400)
        + "".join("%s WARNING disconnect code=1011 reason=x\n" % stamp(now - 20 * 3600 + i * 60) for i in range(4)))
    ws.write_text("".join("%s WARNING disconnect code=1006\n" % stamp(now - 600 + i) for i in range(11))
                  + "%s ERROR error cycle 1 failed: ServerError status=503\nTraceback (most recent call last):\n  error detail\n" % stamp(now - 5))
    orders = tmp_path / "orders.log"
    orders.write_text("%s WARNING rejected order BusinessRejectError: no\n%s INFO order placed\n" % (stamp(now - 60), stamp(now - 30)))
    result = run_module("bot_log_info", dict(paths=[str(ws), str(orders)], hours=24))
    assert result["failed"] is False, result
    # the 3-day-old error is outside; the traceback's continuation line belongs to its error line
    assert result["counts"]["errors"]["total"] == 2
    # 4 disconnects 20 h ago, 11 in the last 10 minutes: the worst rolling hour has 11
    assert result["counts"]["disconnects"]["total"] == 15 and result["counts"]["disconnects"]["max_per_hour"] == 11
    assert result["files"][0]["read"] == [str(ws) + ".1", str(ws)]
    assert result["missing"] == []


def test_rotate_loses_no_line_while_a_process_writes(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text("%s INFO start\n" % stamp(time.time()))
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "f = open(sys.argv[1], 'a', buffering=1)\n"
        "for i in range(1, 60001):\n"
        "    f.write('%s INFO seq %d\\n' % (time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime()), i))\n"
        "    if i % 50 == 0: time.sleep(0.001)\n"), str(log)])
    try:
        time.sleep(0.5)
        result = run_module("bot_log_rotate", dict(paths=[str(log)], force=True, keep=3, writer_units=[]))
    finally:
        writer.wait(60)
    entry = result["logs"][0]
    assert result["changed"] and entry["rotated_to"] == str(log) + ".1", result
    assert writer.pid in entry["writers"], entry
    seen = [int(line.rsplit(" ", 1)[1]) for part in (str(log) + ".1", str(log))
            for line in open(part) if " seq " in line]
    assert sorted(seen) == list(range(1, 60001)), "lines lost or doubled"
    assert os.stat(str(log) + ".1").st_mode == os.stat(str(log)).st_mode


def test_rotate_check_mode_changes_nothing_and_keep_is_honoured(tmp_path):
    log = tmp_path / "websocket.log"
    old = time.time() - 9 * 86400
    log.write_text("%s INFO connect\n" % stamp(old) + "x" * 100 + "\n")
    for n in (1, 2, 3):
        (tmp_path / ("websocket.log.%d" % n)).write_text("rotation %d\n" % n)
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    checked = run_module("bot_log_rotate", dict(paths=[str(log)], max_size="10M", max_age_days=7, keep=3, writer_units=[]),
                         check_mode=True)
    assert checked["changed"] and checked["logs"][0]["rotate"] and "days old" in checked["logs"][0]["reason"]
    assert checked["logs"][0]["removed"] == [str(log) + ".3"]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before
    done = run_module("bot_log_rotate", dict(paths=[str(log)], max_size="10M", max_age_days=7, keep=3, writer_units=[]))
    assert done["changed"] and log.read_text() == ""
    assert (tmp_path / "websocket.log.1").read_text() == before["websocket.log"]
    assert (tmp_path / "websocket.log.2").read_text() == "rotation 1\n" and (tmp_path / "websocket.log.3").read_text() == "rotation 2\n"
    again = run_module("bot_log_rotate", dict(paths=[str(log)], writer_units=[]))
    assert again["changed"] is False and again["logs"][0]["reason"] == "empty"


def test_rotate_refuses_a_writer_without_append(tmp_path):
    log = tmp_path / "orders.log"
    log.write_text("%s INFO x\n" % stamp(time.time()))
    # a writer that would leave a hole after a truncation (another process: this one is never a writer)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'r+'); print('open', flush=True); time.sleep(30)",
                               str(log)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = run_module("bot_log_rotate", dict(paths=[str(log)], force=True, writer_units=[]))
    finally:
        holder.kill()
        holder.wait()
    assert result["failed"] and "without O_APPEND" in result["msg"]
    assert log.read_text().endswith("INFO x\n") and not (tmp_path / "orders.log.1").exists()


def write_record(directory, incident_id, kind, days_ago, status="Resolved", closed=True, rehearsal=False, missed=None, severity="P1"):
    opened = time.time() - days_ago * 86400
    record = {"incident_id": incident_id, "type": kind, "severity": severity, "status": "Investigating",
              "opened_at": stamp(opened), "rehearsal": rehearsal, "timeline": [], "summary": "test",
              "milestones": {name: {"elapsed_s": 999, "target": "Immediate", "met": False} for name in (missed or [])}}
    if closed:
        record.update(status=status, closed_at=stamp(opened + 60))
    directory.mkdir(exist_ok=True)
    (directory / (incident_id + ".json")).write_text(json.dumps(record))


def test_record_info_summarizes_the_week(tmp_path):
    records = tmp_path / "records"
    write_record(records, "ks-1", "kill_switch", 1, status="Mitigating", missed=["flat"])
    write_record(records, "kc-1", "key_compromise", 2, closed=False)
    write_record(records, "ks-old", "kill_switch", 9)
    write_record(records, "ks-rehearsal", "kill_switch", 1, rehearsal=True)
    write_record(records, "daily-1", "checklist", 1, status="Failed", severity="P4")
    write_record(records, "own", "checklist", 0, closed=False, severity="P4")
    (records / "kc-1-fills.json").write_text("[]")  # an audit's data beside the records
    result = run_module("incident_record_info", dict(records_dir=str(records), days=7, exclude_ids=["own"]))
    counts = result["counts"]
    assert counts["total"] == 4 and counts["incidents"] == 2 and counts["rehearsals"] == 1 and counts["routine"] == 1
    assert counts["by_type"] == {"kill_switch": 2, "key_compromise": 1, "checklist": 1}
    assert counts["by_severity"] == {"P1": 2}
    assert result["unclosed"] == ["kc-1"] and result["still_open"] == ["ks-1"] and result["failed_runs"] == ["daily-1"]
    assert [(m["incident_id"], m["milestone"]) for m in result["missed_milestones"]] == [("ks-1", "flat")]
    assert result["newest"]["kill_switch"]["incident_id"] in ("ks-1", "ks-rehearsal")
    drills = run_module("incident_record_info", dict(records_dir=str(records), days=31, types=["dr_drill"]))
    assert drills["records"] == []
