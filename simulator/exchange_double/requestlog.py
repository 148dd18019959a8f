"""The request log: every API request and WebSocket event, as a drill's evidence.

Each entry records who (key *name*, never the token; client IP), what (method, path, query,
client_order_id), the outcome (status, auth failure reason, injected fault) and how long it
took. Entries are kept in memory for the control API and appended to ``requests.jsonl`` in the
state directory, which keeps everything across ``/_control/requests`` clears.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass(slots=True)
class LogEntry:
    id: int
    time: float
    method: str
    path: str
    query: str
    status: int
    key: str | None
    client_ip: str | None
    duration_ms: float
    client_order_id: str | None = None
    auth_error: str | None = None
    claimed_key: str | None = None
    fault: str | None = None
    error: str | None = None
    ws: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(slots=True)
class LogFilter:
    since: float | None = None
    after_id: int | None = None
    path: str | None = None
    key: str | None = None
    method: str | None = None
    client_ip: str | None = None
    status: int | None = None
    limit: int | None = None

    def matches(self, entry: LogEntry) -> bool:
        return (
            (self.since is None or entry.time >= self.since)
            and (self.after_id is None or entry.id > self.after_id)
            and (self.path is None or self.path in entry.path)
            and (self.key is None or entry.key == self.key or entry.claimed_key == self.key)
            and (self.method is None or entry.method == self.method.upper())
            and (self.client_ip is None or entry.client_ip == self.client_ip)
            and (self.status is None or entry.status == self.status)
        )


class RequestLog:
    def __init__(self, max_entries: int, jsonl_path: Path | None) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._next_id = 1
        self._file: IO[str] | None = open(jsonl_path, "a", buffering=1) if jsonl_path else None

    def record(self, **fields: Any) -> LogEntry:
        entry = LogEntry(id=self._next_id, time=time.time(), **fields)
        self._next_id += 1
        self._entries.append(entry)
        if self._file is not None:
            self._file.write(json.dumps(entry.as_dict(), separators=(",", ":")) + "\n")
        return entry

    def query(self, log_filter: LogFilter) -> list[LogEntry]:
        found = [e for e in self._entries if log_filter.matches(e)]
        if log_filter.limit is not None:
            found = found[-log_filter.limit:]
        return found

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

    def resize(self, max_entries: int) -> None:
        self._entries = deque(self._entries, maxlen=max_entries)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
