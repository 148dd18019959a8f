"""Sorted indexes and opaque cursors: what keeps listing thousands of orders fast and stable.

A cursor is the sort key of the last item returned, not a position. Orders that are cancelled
or placed while a client pages through a listing therefore never shift the remaining pages:
nothing still matching is skipped and nothing is returned twice.
"""

from __future__ import annotations

import base64
import bisect
import json
from typing import Any, Iterator


class SortedIndex:
    """Keys ``(sort_value, ..., id)`` kept sorted; O(log n) lookup, cheap insert/remove."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: tuple[Any, ...]) -> None:
        # Keys usually arrive in increasing order, so this is an append in practice.
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
        else:
            bisect.insort(self._keys, key)

    def remove(self, key: tuple[Any, ...]) -> None:
        position = bisect.bisect_left(self._keys, key)
        if position < len(self._keys) and self._keys[position] == key:
            del self._keys[position]

    def descending(self, before: tuple[Any, ...] | None = None) -> Iterator[tuple[Any, ...]]:
        """Keys from the largest down, starting strictly below ``before`` when given."""
        end = len(self._keys) if before is None else bisect.bisect_left(self._keys, before)
        for position in range(end - 1, -1, -1):
            yield self._keys[position]

    def ascending(self, after: tuple[Any, ...] | None = None) -> Iterator[tuple[Any, ...]]:
        """Keys from the smallest up, starting strictly above ``after`` when given."""
        start = 0 if after is None else bisect.bisect_right(self._keys, after)
        for position in range(start, len(self._keys)):
            yield self._keys[position]

    def first(self) -> tuple[Any, ...] | None:
        return self._keys[0] if self._keys else None


def encode_cursor(state: dict[str, Any]) -> str:
    """Opaque, URL-safe cursor text for ``state``."""
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Inverse of encode_cursor; ValueError for anything the double did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(state, dict):
        raise ValueError("invalid cursor")
    return state
