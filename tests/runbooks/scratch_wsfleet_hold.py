"""TEMPORARY dev helper (wsfleet): hold a drill fleet + double up for manual experiments. Deleted before hand-over."""
import json, time
from pathlib import Path

def test_hold(drill):
    info = {"url": drill.double.url, "port": drill.double.port, "ca": drill.double.ca_path,
            "vars_file": str(drill.fleet.vars_file), "ips": drill.ips, "hosts": drill.hosts}
    Path("/tmp/wsdev/env.json").write_text(json.dumps(info))
    stop = Path("/tmp/wsdev/stop")
    while not stop.exists():
        time.sleep(2)
