"""The one JSON-lines reader of the workbench, and the check that text is valid Unicode."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["iter_jsonl", "unicode_problem", "find_unicode_problem"]

# Undecodable bytes read with errors="surrogateescape" become U+DC80..U+DCFF; a JSON "\\ud800"
# escape gives a lone surrogate too. Neither can be encoded as UTF-8 (tokenizers, hashes, SQLite).
_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text (``None`` when it is): an invalid byte or a lone surrogate."""
    if text.isascii():
        return None
    match = _SURROGATE.search(text)
    if match is None:
        return None
    code = ord(match.group())
    where = f"at character {match.start() + 1}"
    if 0xDC80 <= code <= 0xDCFF:
        return (
            f"invalid UTF-8 (byte 0x{code - 0xDC00:02x}, or a lone surrogate \\u{code:04x}) {where}; "
            "save the file as UTF-8 or fix the row"
        )
    return f"lone surrogate \\u{code:04x} {where}, which is not valid Unicode text; fix the row"


def find_unicode_problem(value: Any, where: str = "") -> tuple[str, str] | None:
    """``(path, reason)`` of the first string in a nested value that is not valid Unicode, else ``None``.

    ``path`` is the top-level key for a mapping (``""`` for the value itself).
    """
    if isinstance(value, str):
        problem = unicode_problem(value)
        return None if problem is None else (where, problem)
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            bad_key = unicode_problem(key_text)
            if bad_key is not None:
                return (where or key_text, f"field name: {bad_key}")
            found = find_unicode_problem(item, where or key_text)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            found = find_unicode_problem(item, where)
            if found is not None:
                return found
    return None


def iter_jsonl(
    path: str | Path, *, limit: int | None = None, check_unicode: bool = True
) -> Iterator[tuple[int, Any, str | None]]:
    """Yield ``(line number, value, None)`` for every non-blank line of a JSON-lines file.

    A line that is not valid JSON, or (with ``check_unicode``) holds bytes that are not
    UTF-8 or decodes to text with a lone surrogate (``"\\ud800"``), yields
    ``(line number, None, message)`` instead of raising, so each caller decides whether
    a bad line is an error or a counted skip. With ``check_unicode=False`` such text is
    passed on (invalid bytes as surrogate escapes) for the caller to report by field.
    Line numbers are 1-based physical lines (blank lines count); a UTF-8 byte-order mark
    is ignored. ``limit`` stops after that many non-blank lines.
    """
    n = 0
    with Path(path).open("r", encoding="utf-8-sig", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if limit is not None and n >= limit:
                return
            n += 1
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, None, unicode_problem(line) or f"invalid JSON ({exc.msg} at column {exc.colno})"
                continue
            found = find_unicode_problem(value) if check_unicode else None
            if found is not None:
                key, reason = found
                yield lineno, None, (f"field {key!r}: " if key else "") + reason
                continue
            yield lineno, value, None
