"""The one JSON-lines reader of the workbench."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["iter_jsonl"]


def iter_jsonl(path: str | Path, *, limit: int | None = None) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(line number, value, None)`` for every non-blank line of a JSON-lines file.

    A line that is not valid JSON yields ``(line number, None, message)`` instead of
    raising, so each caller decides whether a bad line is an error or a counted skip.
    Line numbers are 1-based physical lines (blank lines count); a UTF-8 byte-order mark
    is ignored. ``limit`` stops after that many non-blank lines.
    """
    n = 0
    with Path(path).open("r", encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if limit is not None and n >= limit:
                return
            n += 1
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield lineno, None, f"invalid JSON ({exc.msg} at column {exc.colno})"
