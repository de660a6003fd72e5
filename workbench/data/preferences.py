"""One schema for preference data, and loaders that map common formats onto it.

A *preference set* is a :class:`pandas.DataFrame` with one row per comparison
between two responses to the same conversation. The columns, in order, are:

==================  ===========  =====================================================
column              dtype        meaning
==================  ===========  =====================================================
``id``              object/str   unique row id (``"<stem>-<row number>"`` if absent)
``prompt``          object/str   the final user message (may be ``""``)
``history``         object       earlier turns as ``[{"role", "content"}, ...]``, or
                                 ``None`` for single-turn data
``chosen``          object/str   the preferred response (non-empty)
``rejected``        object/str   the other response (non-empty)
``subset``          object       dataset subset, or ``None``
``category``        object       category, or ``None``
``label``           float64      probability that ``chosen`` is preferred, in [0, 1]
                                 (default 1.0; 0.5 is a tie)
``votes_chosen``    Int64        annotator votes for ``chosen`` (nullable)
``votes_rejected``  Int64        annotator votes for ``rejected`` (nullable)
``checkpoint``      object       policy checkpoint that produced the samples, or ``None``
``step``            Int64        RL step of that checkpoint (nullable)
``rationale``       object       annotator rationale, or ``None``
==================  ===========  =====================================================

Extra input columns are kept, unchanged, after these. Text columns use the
``object`` dtype so that missing values stay ``None`` under every pandas version.

Three row shapes are recognised, row by row:

1. *Flat*: ``prompt``, ``chosen`` and ``rejected`` are strings (``history``
   optional). A ``prompt`` given as a message list with string responses also
   works (TRL's conversational prompt).
2. *HH-RLHF transcripts* (``Anthropic/hh-rlhf``): no ``prompt``; ``chosen`` and
   ``rejected`` are whole ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` transcripts.
3. *Chat-message lists* (UltraFeedback, TRL conversational): ``chosen`` and
   ``rejected`` are lists of ``{"role", "content"}`` messages ending with an
   assistant turn, with an optional ``prompt`` (string or message list).

Bad rows raise :class:`DataFormatError` naming the source, the line or row and
the field, or, with ``on_error="skip"``, are dropped and recorded in
:attr:`PreferenceSet.skipped`. Nothing is dropped silently. Besides malformed
fields, a row is bad when a label is NaN (in every format: a NaN is not a
missing value; leave the field out or null for the default), when ``chosen``
equals ``rejected``, when both vote counts and a label are given and point in
opposite directions, and when a text is not valid Unicode (bytes that are not
UTF-8, or a lone surrogate such as JSON's ``"\\ud800"``). A file that cannot be
read at all (an empty or garbage Parquet file) raises :class:`DataFormatError`
naming it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import numbers
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench._utils.io import find_unicode_problem, iter_jsonl, unicode_problem
from workbench._utils.validation import check_on_error, describe_value, is_listlike, is_missing
from workbench.data.formats import ADAPTERS, expand_best_of_n, implicit_prompt, is_best_of_n_row

__all__ = [
    "SCHEMA_COLUMNS",
    "FORMATS",
    "DataFormatError",
    "SkippedRow",
    "FlaggedRow",
    "PreferenceSet",
    "parse_data_spec",
    "load_preferences",
    "from_records",
    "from_frame",
    "parse_hh_transcript",
    "split_conversation",
]

SCHEMA_COLUMNS: tuple[str, ...] = (
    "id",
    "prompt",
    "history",
    "chosen",
    "rejected",
    "subset",
    "category",
    "label",
    "votes_chosen",
    "votes_rejected",
    "checkpoint",
    "step",
    "rationale",
)
FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "parquet", "hf_disk", "hf_hub")
ROLES: tuple[str, ...] = ("system", "user", "assistant")

_SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_OPTIONAL_TEXT = ("subset", "category", "checkpoint", "rationale")
_HH_TURN = re.compile(r"(\n+)[ \t]*(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_MISSING = object()  # a field absent from the row (as opposed to null)
_HASH_FIELDS = ("id", "prompt", "history", "chosen", "rejected", "label")


# --------------------------------------------------------------------------- errors


def _location(unit: str, row: int | None) -> str:
    return "" if row is None else f"{unit} {row}"


class DataFormatError(ValueError):
    """A row (or a whole source) that does not fit the preference schema.

    Parameters
    ----------
    source : str
        The source as given to the loader (file path, ``"hf:<name>[split]"``,
        ``"<records>"``...).
    row : int or None
        1-based physical line for JSON lines, 1-based data row otherwise (CSV
        header excluded); ``None`` when the whole source is at fault.
    field : str or None
        The input column at fault, or ``None`` when the whole row is bad.
    reason : str
        What is wrong, e.g. ``"expected a non-empty string, got null"``.
    unit : {"line", "row"}
        How ``row`` counts: ``"line"`` for JSON lines files, else ``"row"``.
    """

    def __init__(self, source: str, row: int | None, field: str | None, reason: str, *, unit: str = "row"):
        self.source = source
        self.row = row
        self.field = field
        self.reason = reason
        self.unit = unit
        super().__init__(self._message())

    @property
    def location(self) -> str:
        """``"line 7"`` or ``"row 7"`` (``""`` for whole-source errors)."""
        return _location(self.unit, self.row)

    def _message(self) -> str:
        parts = [self.source]
        if self.row is not None:
            parts.append(self.location)
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return f"{', '.join(parts)}: {self.reason}"

    def __reduce__(self):
        return (_rebuild_error, (self.source, self.row, self.field, self.reason, self.unit))


def _rebuild_error(source, row, field, reason, unit):
    return DataFormatError(source, row, field, reason, unit=unit)


@dataclass(frozen=True)
class SkippedRow:
    """A row dropped by ``on_error="skip"``, with what :class:`DataFormatError` would have said."""

    source: str
    row: int
    field: str | None
    reason: str
    unit: str = "row"

    @property
    def location(self) -> str:
        """``"line 7"`` for JSON lines files, ``"row 7"`` otherwise."""
        return _location(self.unit, self.row)

    def __str__(self) -> str:
        return str(DataFormatError(self.source, self.row, self.field, self.reason, unit=self.unit))


@dataclass(frozen=True)
class FlaggedRow:
    """A row that loaded but carries a data-quality flag (it is kept, and counted by ``kind``).

    Kinds: ``"prompt_mismatch"`` (HH-RLHF chosen and rejected transcripts continue different
    conversations; the pair keeps the chosen transcript's context), ``"hh_merged_turns"``
    (consecutive turns of one role were joined with a blank line) and
    ``"hh_missing_separator"`` (a ``Human:``/``Assistant:`` turn without its blank line before it).
    """

    source: str
    row: int
    id: str
    kind: str
    field: str | None
    reason: str
    unit: str = "row"

    @property
    def location(self) -> str:
        return _location(self.unit, self.row)

    def __str__(self) -> str:
        return f"{self.source}, {self.location} (id {self.id!r}): {self.kind}: {self.reason}"


class _RowError(Exception):
    """Raised by row validators; turned into DataFormatError / SkippedRow by the builder."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


# --------------------------------------------------------------------------- the set


@dataclass
class PreferenceSet:
    """Validated preference pairs plus a record of what was skipped.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows, in the schema described in this module's docstring.
    source : str
        Where the rows came from.
    skipped : list of SkippedRow
        Rows dropped under ``on_error="skip"``.
    n_read : int
        Rows read from the source, before skipping (defaults to ``len(frame)``).
    row_numbers : list of int or None
        The source row (or line, see ``row_unit``) of each frame row, as in error
        messages; ``None`` when unknown (a set built from a frame by hand).
    row_unit : {"row", "line"}
        How ``row_numbers`` count: ``"line"`` for JSON lines files, else ``"row"``.
    """

    frame: pd.DataFrame
    source: str
    skipped: list[SkippedRow] = field(default_factory=list)
    n_read: int | None = None
    row_numbers: list[int] | None = None
    row_unit: str = "row"
    flagged: list[FlaggedRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.n_read is None:
            self.n_read = len(self.frame) + len(self.skipped)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (
            f"PreferenceSet(source={self.source!r}, rows={len(self)}, n_read={self.n_read}, skipped={self.n_skipped})"
        )

    def to_frame(self) -> pd.DataFrame:
        """A deep copy of the rows (message lists included)."""
        return self.frame.copy(deep=True)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @property
    def n_flagged(self) -> int:
        """Kept rows with at least one data-quality flag (see :class:`FlaggedRow`)."""
        return len({f.id for f in self.flagged})

    def flag_counts(self) -> dict[str, int]:
        """Flagged rows counted by kind, e.g. ``{"prompt_mismatch": 3}`` (most frequent first)."""
        return dict(Counter(f.kind for f in self.flagged).most_common())

    def flags_frame(self) -> pd.DataFrame:
        """One row per flag: ``id``, ``row`` (as in error messages), ``kind``, ``field``, ``reason``."""
        return pd.DataFrame(
            {
                "id": pd.Series([f.id for f in self.flagged], dtype=object),
                "row": pd.Series([f.location for f in self.flagged], dtype=object),
                "kind": pd.Series([f.kind for f in self.flagged], dtype=object),
                "field": pd.Series([f.field for f in self.flagged], dtype=object),
                "reason": pd.Series([f.reason for f in self.flagged], dtype=object),
            }
        )

    def skip_summary(self) -> pd.DataFrame:
        """Skipped rows counted by ``(field, reason)``, most frequent first.

        Returns a frame with columns ``field``, ``reason``, ``count`` (empty, with
        those columns, when nothing was skipped).
        """
        counts = Counter((s.field, s.reason) for s in self.skipped)
        rows = sorted(counts.items(), key=lambda item: (-item[1], str(item[0][0]), item[0][1]))
        return pd.DataFrame(
            {
                "field": pd.Series([k[0] for k, _ in rows], dtype=object),
                "reason": pd.Series([k[1] for k, _ in rows], dtype=object),
                "count": pd.Series([c for _, c in rows], dtype="int64"),
            }
        )

    def sample(self, n: int | None, seed: int = 0) -> PreferenceSet:
        """A seeded random subset of ``n`` rows, kept in their original order.

        ``n=None`` or ``n >= len(self)`` returns all rows. The skip record and
        ``n_read`` are carried over unchanged.
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0):
            raise ValueError(f"n must be None or a non-negative integer, got {n!r}")
        kept_rows = self.row_numbers
        if n is None or n >= len(self):
            frame = self.frame.copy()
        else:
            rng = np.random.default_rng(seed)
            positions = np.sort(rng.choice(len(self), size=int(n), replace=False))
            frame = self.frame.iloc[positions].reset_index(drop=True)
            kept_rows = None if kept_rows is None else [kept_rows[i] for i in positions]
        return PreferenceSet(
            frame=frame,
            source=self.source,
            skipped=list(self.skipped),
            n_read=self.n_read,
            row_numbers=None if kept_rows is None else list(kept_rows),
            row_unit=self.row_unit,
            flagged=list(self.flagged),
        )

    def row_label(self, position: int) -> str:
        """Where frame row ``position`` (0-based) came from: ``"line 7"``, ``"row 7"``."""
        if self.row_numbers is None or len(self.row_numbers) != len(self.frame):
            return f"row {position + 1}"
        return _location(self.row_unit, self.row_numbers[position])

    def content_hash(self) -> str:
        """sha256 (hex) of a canonical JSON of ``id, prompt, history, chosen, rejected, label``.

        Independent of the source name, extra columns and the skip record: the
        same pairs in the same order always give the same hash.
        """
        h = hashlib.sha256(b"rm-workbench/preference-set/v1\n")
        for values in self.frame.loc[:, list(_HASH_FIELDS)].itertuples(index=False, name=None):
            record = dict(zip(_HASH_FIELDS, values))
            record["label"] = float(record["label"])
            line = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            h.update(line.encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()


# --------------------------------------------------------------------------- conversations


def _is_missing(value: Any) -> bool:
    return value is _MISSING or is_missing(value)


def _describe(value: Any) -> str:
    """Short description of a bad value for error messages (never the whole text)."""
    return "a missing field" if value is _MISSING else describe_value(value)


def _check_messages(value: Any) -> list[dict]:
    """Validate a message list; returns fresh ``{"role", "content"}`` dicts. Raises ValueError."""
    if not is_listlike(value):
        raise ValueError(f"expected a list of messages, got {_describe(value)}")
    messages = []
    for i, msg in enumerate(value):
        if not isinstance(msg, Mapping):
            raise ValueError(f"message {i}: expected an object with 'role' and 'content', got {_describe(msg)}")
        for key in ("role", "content"):
            if key not in msg:
                raise ValueError(f"message {i}: missing {key!r} key")
        role, content = msg["role"], msg["content"]
        if role not in ROLES:
            raise ValueError(f"message {i}: role must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"message {i}: content must be a string, got {_describe(content)}")
        messages.append({"role": role, "content": content})
    return messages


def split_conversation(messages: list[dict]) -> tuple[list[dict] | None, str, str]:
    """Split a conversation ending with an assistant turn into the schema's parts.

    Parameters
    ----------
    messages : list of dict
        ``{"role": "system"|"user"|"assistant", "content": str}`` messages; the
        last must be an assistant message directly after a user message.

    Returns
    -------
    history : list of dict or None
        The messages before the final user message (``None`` if there are none).
    prompt : str
        The final user message.
    response : str
        The final assistant message.

    Raises
    ------
    ValueError
        If a message is malformed or the conversation does not end with a
        user message followed by an assistant message.
    """
    msgs = _check_messages(messages)
    if not msgs:
        raise ValueError("expected a conversation ending with an assistant message, got an empty list")
    if msgs[-1]["role"] != "assistant":
        raise ValueError(
            f"conversation must end with an assistant message, but the last message is {msgs[-1]['role']!r}"
        )
    if len(msgs) < 2 or msgs[-2]["role"] != "user":
        before = "nothing" if len(msgs) < 2 else f"a {msgs[-2]['role']!r} message"
        raise ValueError(f"the final assistant message must directly follow a user message, but it follows {before}")
    return (msgs[:-2] or None), msgs[-2]["content"], msgs[-1]["content"]


def parse_hh_transcript(text: str) -> tuple[list[dict], str]:
    """Parse an Anthropic HH-RLHF transcript.

    A transcript looks like ``"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: ...
    \\n\\nAssistant: <final>"``. Turn contents are stripped of surrounding
    whitespace; ``Human`` becomes role ``"user"`` and ``Assistant`` ``"assistant"``.

    Returns
    -------
    messages : list of dict
        Every turn before the final assistant turn.
    response : str
        The final assistant turn.

    The quirks of the public data are repaired rather than rejected: a turn that
    starts on a new line without the blank line before it still starts a turn, and
    consecutive turns of one role are joined with a blank line (an empty one is
    dropped). :func:`load_preferences` records such repairs as flags.

    Raises
    ------
    ValueError
        If there is no ``"\\n\\nAssistant:"`` turn, text precedes the first turn,
        or the transcript ends with a Human turn.
    """
    turns, response, _ = _parse_hh(text)
    return turns, response


def _parse_hh(text: str) -> tuple[list[dict], str, list[tuple[str, str]]]:
    """:func:`parse_hh_transcript` plus the repairs made, as ``(kind, reason)`` pairs."""
    if not isinstance(text, str):
        raise TypeError(f"expected a transcript string, got {type(text).__name__}")
    parts = _HH_TURN.split("\n\n" + text.lstrip())
    seps, roles, contents = parts[1::3], parts[2::3], parts[3::3]
    if "Assistant" not in roles:
        raise ValueError("not an HH-RLHF transcript: no '\\n\\nAssistant:' turn")
    if parts[0].strip():
        raise ValueError("HH-RLHF transcript has text before the first 'Human:' turn")
    repairs: list[tuple[str, str]] = []
    missing = [i for i, sep in enumerate(seps) if sep == "\n"]
    if missing:
        repairs.append(
            (
                "hh_missing_separator",
                f"{len(missing)} turn(s) start after a single line break instead of a blank line "
                f"(first: turn {missing[0] + 1}, {roles[missing[0]]!r}); read as new turns",
            )
        )
    turns: list[dict] = []
    merged: list[int] = []
    for i, (role, content) in enumerate(zip(roles, contents)):
        role, content = _HH_ROLES[role], content.strip()
        if turns and turns[-1]["role"] == role:
            merged.append(i)
            if content:
                turns[-1]["content"] = f"{turns[-1]['content']}\n\n{content}" if turns[-1]["content"] else content
            continue
        turns.append({"role": role, "content": content})
    if merged:
        repairs.append(
            (
                "hh_merged_turns",
                f"{len(merged)} consecutive turn(s) of one role joined with the turn before "
                f"(first: turn {merged[0] + 1}, {roles[merged[0]]!r})",
            )
        )
    if turns[-1]["role"] != "assistant":
        raise ValueError("HH-RLHF transcript ends with a 'Human:' turn instead of an 'Assistant:' response")
    return turns[:-1], turns[-1]["content"], repairs


def _looks_like_hh(text: str) -> bool:
    return text.lstrip().startswith(("Human:", "Assistant:"))


def _first_difference(a: list[dict], b: list[dict]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# --------------------------------------------------------------------------- field coercion


def _non_empty_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _RowError(name, f"expected a non-empty string, got {_describe(value)}")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    if _is_missing(value):
        return None
    if not isinstance(value, str):
        raise _RowError(name, f"expected a string or null, got {_describe(value)}")
    return value if value.strip() else None


def _is_nan(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _optional_float(value: Any, name: str) -> float | None:
    if _is_nan(value):
        # JSON's NaN, a NaN float in Parquet or a DataFrame: a value, not a missing field
        raise _RowError(
            name,
            "expected a finite number, got NaN (leave the field out or null for the default, or fix or drop the row)",
        )
    if _is_missing(value):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            raise _RowError(name, f"expected a number, got {_describe(value)}") from None
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _RowError(name, f"expected a number, got {_describe(value)}")
    else:
        number = float(value)
    if math.isnan(number):
        raise _RowError(
            name,
            "expected a finite number, got NaN (leave the field out or null for the default, or fix or drop the row)",
        )
    if not math.isfinite(number):
        raise _RowError(name, f"expected a finite number, got {_describe(value)}")
    return number


def _optional_count(value: Any, name: str) -> int | None:
    """A non-negative whole number; numeric strings such as ``"3"`` or ``"3.0"`` are accepted."""
    if _is_missing(value):
        return None
    bad = _RowError(name, f"expected a non-negative whole number, got {_describe(value)}")
    if isinstance(value, (bool, np.bool_)):
        raise bad
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise bad from None
            if not (math.isfinite(as_float) and as_float.is_integer()):
                raise bad from None
            number = int(as_float)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        number = int(value)
    else:
        raise bad
    if number < 0:
        raise bad
    return number


def _row_id(value: Any, name: str) -> str | None:
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and float(value).is_integer():
        return str(int(value))
    raise _RowError(name, f"expected a string or integer id, got {_describe(value)}")


def _maybe_json_messages(value: Any, name: str) -> Any:
    """Decode a JSON message list stored as text (CSV cells); other text is left alone."""
    if not isinstance(value, str) or not value.lstrip().startswith("["):
        return value
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError as exc:
        if re.match(r"\s*\[\s*\{", value):
            reason = f"looks like a JSON message list but is not valid JSON ({exc.msg} at char {exc.pos})"
            raise _RowError(name, reason) from None
        return value
    if isinstance(decoded, list) and decoded and all(isinstance(m, dict) for m in decoded):
        return decoded
    return value


# --------------------------------------------------------------------------- row normalisation


def _normalise_row(record: Any, names: dict[str, str], decode_json: bool) -> dict[str, Any]:
    """Map one input record onto the schema. Raises _RowError(field, reason)."""
    if not isinstance(record, Mapping):
        raise _RowError(None, f"expected an object with the row's fields, got {_describe(record)}")
    bad_text = find_unicode_problem(record)
    if bad_text is not None:
        raise _RowError(bad_text[0] or None, bad_text[1])

    def get(key: str) -> Any:
        value = record.get(names[key], _MISSING)
        if decode_json and key in ("prompt", "history", "chosen", "rejected"):
            value = _maybe_json_messages(value, names[key])
        return value

    out: dict[str, Any] = {"id": _row_id(get("id"), names["id"])}
    prompt, history, chosen, rejected = get("prompt"), get("history"), get("chosen"), get("rejected")
    n_prompt, n_hist, n_chosen, n_rej = names["prompt"], names["history"], names["chosen"], names["rejected"]

    if is_listlike(chosen) or is_listlike(rejected):
        parts = _chat_shape(prompt, chosen, rejected, names)
        if not _is_missing(history):
            raise _RowError(n_hist, "cannot combine a 'history' field with message-list chosen/rejected")
    elif is_listlike(prompt):
        parts = _prompt_messages_shape(prompt, chosen, rejected, names)
        if not _is_missing(history):
            raise _RowError(n_hist, "cannot combine a 'history' field with a message-list prompt")
    elif _is_missing(prompt) and isinstance(chosen, str) and _looks_like_hh(chosen):
        parts, out["_flags"] = _hh_shape(chosen, rejected, names)
        if not _is_missing(history):
            raise _RowError(n_hist, "cannot combine a 'history' field with HH-RLHF transcripts")
    else:
        if not isinstance(prompt, str):
            reason = f"expected a string, got {_describe(prompt)}"
            if _is_missing(prompt) and isinstance(chosen, str):
                reason += f" (and {n_chosen!r} is not an HH-RLHF transcript)"
            raise _RowError(n_prompt, reason)
        hist = None
        if not _is_missing(history):
            try:
                hist = _check_messages(history) or None
            except ValueError as exc:
                raise _RowError(n_hist, str(exc)) from None
        parts = (hist, prompt, _non_empty_text(chosen, n_chosen), _non_empty_text(rejected, n_rej))
    out["history"], out["prompt"], out["chosen"], out["rejected"] = parts
    if out["chosen"] == out["rejected"]:
        raise _RowError(
            n_rej,
            f"identical to {n_chosen!r}: a preference pair needs two different responses (fix or drop the row)",
        )

    for key in ("subset", "category"):
        out[key] = _optional_text(get(key), names[key])
    label = _optional_float(get("label"), names["label"])
    if label is not None and not 0.0 <= label <= 1.0:
        raise _RowError(names["label"], f"expected a probability in [0, 1], got {label!r}")
    votes = {key: _optional_count(get(key), names[key]) for key in ("votes_chosen", "votes_rejected")}
    given = [key for key, v in votes.items() if v is not None]
    if len(given) == 1:
        other = "votes_rejected" if given[0] == "votes_chosen" else "votes_chosen"
        reason = f"expected a vote count because {names[given[0]]!r} is given, got {_describe(get(other))}"
        raise _RowError(names[other], reason)
    if len(given) == 2:
        total = votes["votes_chosen"] + votes["votes_rejected"]
        if total == 0:
            raise _RowError(names["votes_chosen"], "votes_chosen + votes_rejected must be > 0, got 0 votes in total")
        if label is None:
            label = votes["votes_chosen"] / total
        elif (label > 0.5 and votes["votes_chosen"] < votes["votes_rejected"]) or (
            label < 0.5 and votes["votes_chosen"] > votes["votes_rejected"]
        ):
            raise _RowError(
                names["label"],
                f"label {label:g} contradicts the votes ({votes['votes_chosen']} for {names['votes_chosen']!r}, "
                f"{votes['votes_rejected']} for {names['votes_rejected']!r}); fix the label or the votes, "
                "or leave the label out to derive it from the votes",
            )
    if label is None:
        label = 1.0
    out["label"] = label
    out.update(votes)
    out["checkpoint"] = _optional_text(get("checkpoint"), names["checkpoint"])
    out["step"] = _optional_count(get("step"), names["step"])
    out["rationale"] = _optional_text(get("rationale"), names["rationale"])
    return out


def _split_or_error(messages: list[dict], name: str) -> tuple[list[dict] | None, str, str]:
    try:
        return split_conversation(messages)
    except ValueError as exc:
        raise _RowError(name, str(exc)) from None


def _same_context(chosen_parts, rejected_parts, n_chosen: str, n_rej: str) -> None:
    c_ctx = [*(chosen_parts[0] or []), {"role": "user", "content": chosen_parts[1]}]
    r_ctx = [*(rejected_parts[0] or []), {"role": "user", "content": rejected_parts[1]}]
    if c_ctx != r_ctx:
        i = _first_difference(c_ctx, r_ctx)
        raise _RowError(
            n_rej,
            f"the conversation before the final assistant turn differs from {n_chosen!r} "
            f"(first difference at message {i}; {len(r_ctx)} vs {len(c_ctx)} messages)",
        )


def _check_response(parts, name: str):
    if not parts[2].strip():
        raise _RowError(name, f"expected a non-empty final assistant message, got {_describe(parts[2])}")
    return parts


def _hh_shape(chosen: str, rejected: Any, names: dict[str, str]):
    n_chosen, n_rej = names["chosen"], names["rejected"]
    if not isinstance(rejected, str):
        raise _RowError(n_rej, f"expected an HH-RLHF transcript like {n_chosen!r}, got {_describe(rejected)}")
    parsed = {}
    flags: list[tuple[str, str | None, str]] = []
    for name, text in ((n_chosen, chosen), (n_rej, rejected)):
        try:
            before, response, repairs = _parse_hh(text)
        except ValueError as exc:
            raise _RowError(name, str(exc)) from None
        flags.extend((kind, name, reason) for kind, reason in repairs)
        parsed[name] = _check_response(
            _split_or_error([*before, {"role": "assistant", "content": response}], name), name
        )
    try:
        _same_context(parsed[n_chosen], parsed[n_rej], n_chosen, n_rej)
    except _RowError as exc:
        # kept with the chosen transcript's context and flagged (raised under on_error="raise")
        flags.append(("prompt_mismatch", exc.field, exc.reason))
    hist, prompt, response = parsed[n_chosen]
    return (hist, prompt, response, parsed[n_rej][2]), flags


def _startswith(messages: list[dict], prefix: list[dict]) -> bool:
    return len(messages) >= len(prefix) and messages[: len(prefix)] == prefix


def _chat_shape(prompt: Any, chosen: Any, rejected: Any, names: dict[str, str]):
    n_prompt, n_chosen, n_rej = names["prompt"], names["chosen"], names["rejected"]
    msgs = {}
    for name, value, other in ((n_chosen, chosen, n_rej), (n_rej, rejected, n_chosen)):
        if not is_listlike(value):
            raise _RowError(name, f"expected a list of messages like {other!r}, got {_describe(value)}")
        try:
            msgs[name] = _check_messages(value)
        except ValueError as exc:
            raise _RowError(name, str(exc)) from None
    prompt_text = None
    if is_listlike(prompt):
        try:
            prompt_msgs = _check_messages(prompt)
        except ValueError as exc:
            raise _RowError(n_prompt, str(exc)) from None
        for name in (n_chosen, n_rej):
            if not _startswith(msgs[name], prompt_msgs):
                msgs[name] = prompt_msgs + msgs[name]
    elif isinstance(prompt, str):
        prompt_text = prompt
        for name in (n_chosen, n_rej):
            if not msgs[name] or msgs[name][0]["role"] == "assistant":
                msgs[name] = [{"role": "user", "content": prompt}, *msgs[name]]
    elif not _is_missing(prompt):
        raise _RowError(n_prompt, f"expected a string or a list of messages, got {_describe(prompt)}")
    c_parts = _check_response(_split_or_error(msgs[n_chosen], n_chosen), n_chosen)
    r_parts = _check_response(_split_or_error(msgs[n_rej], n_rej), n_rej)
    _same_context(c_parts, r_parts, n_chosen, n_rej)
    if prompt_text is not None and prompt_text.strip() != c_parts[1].strip():
        raise _RowError(n_prompt, f"does not match the final user message of {n_chosen!r}")
    return c_parts[0], c_parts[1], c_parts[2], r_parts[2]


def _prompt_messages_shape(prompt: Any, chosen: Any, rejected: Any, names: dict[str, str]):
    n_prompt = names["prompt"]
    try:
        prompt_msgs = _check_messages(prompt)
    except ValueError as exc:
        raise _RowError(n_prompt, str(exc)) from None
    chosen = _non_empty_text(chosen, names["chosen"])
    rejected = _non_empty_text(rejected, names["rejected"])
    hist, final_prompt, _ = _split_or_error([*prompt_msgs, {"role": "assistant", "content": chosen}], n_prompt)
    return hist, final_prompt, chosen, rejected


# --------------------------------------------------------------------------- building a set


def _resolve_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    names = {name: name for name in SCHEMA_COLUMNS}
    if columns is None:
        return names
    if not isinstance(columns, Mapping):
        raise TypeError(
            f"columns must be a dict mapping schema names to input column names, got {type(columns).__name__}"
        )
    unknown = sorted(set(columns) - set(SCHEMA_COLUMNS))
    if unknown:
        raise ValueError(f"columns has unknown schema names {unknown}; valid names are {list(SCHEMA_COLUMNS)}")
    for key, value in columns.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"columns[{key!r}] must be a non-empty column name, got {value!r}")
    names.update(columns)
    targets = Counter(names.values())
    clashes = sorted(col for col, n in targets.items() if n > 1)
    if clashes:
        raise ValueError(f"columns maps several schema names to the same input column(s) {clashes}")
    return names


def _id_prefix(source: str) -> str:
    stripped = source.strip("<>")
    return stripped or "row"


def _build(
    rows: Iterable[tuple[int, Any]],
    *,
    source: str,
    unit: str,
    id_prefix: str,
    on_error: str,
    columns: Mapping[str, str] | None,
    known_columns: list[str] | None = None,
    decode_json: bool = False,
    extras_frame: pd.DataFrame | None = None,
    adapter: str | None = None,
) -> PreferenceSet:
    """Validate ``(row number, record)`` pairs into a PreferenceSet.

    A record may be a ``_RowError`` instance for rows that could not even be
    parsed (e.g. invalid JSON on a line).
    """
    check_on_error(on_error)
    names = _resolve_columns(columns)
    rows = list(rows)
    if extras_frame is None:
        rows = _adapt(rows, adapter, names, id_prefix)
    if columns:
        if known_columns is None:
            seen: dict[str, None] = {}
            for _, rec in rows:
                if isinstance(rec, Mapping):
                    seen.update(dict.fromkeys(rec))
            known_columns = list(seen)
        missing = {k: v for k, v in columns.items() if v not in known_columns}
        if missing and rows:
            detail = ", ".join(f"{k!r} -> {v!r}" for k, v in missing.items())
            raise ValueError(
                f"{source}: columns maps {detail}, but the input has no such column; available: {known_columns}"
            )

    consumed = set(names.values())
    valid: list[dict[str, Any]] = []
    positions: list[int] = []
    extras: list[Mapping] = []
    skipped: list[SkippedRow] = []
    flagged: list[FlaggedRow] = []
    first_seen: dict[str, int] = {}

    def fail(row: int, field_name: str | None, reason: str) -> None:
        if on_error == "raise":
            raise DataFormatError(source, row, field_name, reason, unit=unit)
        skipped.append(SkippedRow(source, row, field_name, reason, unit))

    for position, (row, record) in enumerate(rows):
        if isinstance(record, _RowError):
            fail(row, record.field, record.reason)
            continue
        try:
            out = _normalise_row(record, names, decode_json)
        except _RowError as exc:
            fail(row, exc.field, exc.reason)
            continue
        row_flags = out.pop("_flags", [])
        mismatch = next((f for f in row_flags if f[0] == "prompt_mismatch"), None)
        if mismatch is not None and on_error == "raise":
            fail(row, mismatch[1], mismatch[2])
        if out["id"] is None:
            out["id"] = f"{id_prefix}-{row}"
        if out["id"] in first_seen:
            fail(
                row, names["id"], f"duplicate id {out['id']!r} (first used at {_location(unit, first_seen[out['id']])})"
            )
            continue
        first_seen[out["id"]] = row
        flagged.extend(
            FlaggedRow(source, row, out["id"], kind, fname, reason, unit) for kind, fname, reason in row_flags
        )
        valid.append(out)
        positions.append(position)
        extras.append(record)

    if not valid:
        reason = f"no usable rows (read {len(rows)}, skipped {len(skipped)})"
        if skipped:
            top = Counter((s.field, s.reason) for s in skipped).most_common(3)
            reason += "; most common problems: " + "; ".join(
                f"{n} x {'field ' + repr(f) + ': ' if f else ''}{r}" for (f, r), n in top
            )
        raise DataFormatError(source, None, None, reason, unit=unit)

    frame = pd.DataFrame(
        {
            "id": pd.Series([r["id"] for r in valid], dtype=object),
            "prompt": pd.Series([r["prompt"] for r in valid], dtype=object),
            "history": pd.Series([r["history"] for r in valid], dtype=object),
            "chosen": pd.Series([r["chosen"] for r in valid], dtype=object),
            "rejected": pd.Series([r["rejected"] for r in valid], dtype=object),
            "subset": pd.Series([r["subset"] for r in valid], dtype=object),
            "category": pd.Series([r["category"] for r in valid], dtype=object),
            "label": pd.Series([r["label"] for r in valid], dtype="float64"),
            "votes_chosen": pd.Series([r["votes_chosen"] for r in valid], dtype="Int64"),
            "votes_rejected": pd.Series([r["votes_rejected"] for r in valid], dtype="Int64"),
            "checkpoint": pd.Series([r["checkpoint"] for r in valid], dtype=object),
            "step": pd.Series([r["step"] for r in valid], dtype="Int64"),
            "rationale": pd.Series([r["rationale"] for r in valid], dtype=object),
        }
    )
    extra_frame = _extra_columns(extras, positions, consumed, extras_frame)
    if extra_frame is not None:
        frame = pd.concat([frame, extra_frame], axis=1)
    return PreferenceSet(
        frame=frame,
        source=source,
        skipped=skipped,
        n_read=len(rows),
        row_numbers=[rows[p][0] for p in positions],
        row_unit=unit,
        flagged=flagged,
    )


def _adapt(rows: list[tuple[int, Any]], adapter: str | None, names: dict[str, str], id_prefix: str):
    """Apply a row adapter (see :mod:`workbench.data.formats`); best-of-n rows are expanded whatever ``adapter``."""
    if adapter is not None and adapter not in ADAPTERS:
        raise ValueError(f"adapter must be None or one of {ADAPTERS}, got {adapter!r}")
    n_chosen, n_rej, n_prompt = names["chosen"], names["rejected"], names["prompt"]
    out: list[tuple[int, Any]] = []
    for row, record in rows:
        if is_best_of_n_row(record, n_chosen, n_rej):
            try:
                row_id = _row_id(record.get(names["id"], _MISSING), names["id"])
            except _RowError as exc:
                out.append((row, exc))
                continue
            out.extend(
                (row, pair) for pair in expand_best_of_n(record, row_id or f"{id_prefix}-{row}", n_chosen, n_rej)
            )
            continue
        if (
            adapter == "trl_implicit"
            and isinstance(record, Mapping)
            and n_prompt not in record
            and isinstance(record.get(n_chosen), str)
            and isinstance(record.get(n_rej), str)
            and not _looks_like_hh(record[n_chosen])
        ):
            try:
                prompt, chosen, rejected = implicit_prompt(record[n_chosen], record[n_rej])
            except ValueError as exc:
                record = _RowError(n_rej, f"implicit prompt: {exc}")
            else:
                record = {**record, n_prompt: prompt, n_chosen: chosen, n_rej: rejected}
        out.append((row, record))
    return out


def _extra_name(col: str) -> str:
    """Input columns that are not consumed but share a schema name get an ``_input`` suffix."""
    return f"{col}_input" if col in SCHEMA_COLUMNS else col


def _extra_columns(
    records: list[Mapping], positions: list[int], consumed: set[str], extras_frame: pd.DataFrame | None
) -> pd.DataFrame | None:
    if extras_frame is not None:
        cols = [c for c in extras_frame.columns if c not in consumed]
        if not cols:
            return None
        out = extras_frame.iloc[positions][cols].reset_index(drop=True)
        return out.rename(columns={c: _extra_name(c) for c in cols})
    order: dict[str, None] = {}
    for rec in records:
        order.update(dict.fromkeys(k for k in rec if k not in consumed))
    if not order:
        return None
    data = {}
    for col in order:
        values = [rec.get(col) for rec in records]
        nested = any(is_listlike(v) or isinstance(v, Mapping) for v in values)
        data[_extra_name(col)] = pd.Series(values, dtype=object if nested else None)
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- public constructors


def from_records(
    records: Iterable[Mapping],
    *,
    source: str = "<records>",
    on_error: str = "raise",
    columns: Mapping[str, str] | None = None,
    adapter: str | None = None,
) -> PreferenceSet:
    """Build a PreferenceSet from dict-like records (rows numbered from 1).

    See :func:`load_preferences` for ``on_error`` and ``columns``. Generated
    ids are ``"<source without angle brackets>-<row>"`` (``"records-3"``).
    """
    check_on_error(on_error)
    return _build(
        enumerate(records, start=1),
        source=source,
        unit="row",
        id_prefix=_id_prefix(source),
        on_error=on_error,
        columns=columns,
        adapter=adapter,
    )


def from_frame(
    df: pd.DataFrame,
    *,
    source: str = "<dataframe>",
    on_error: str = "raise",
    columns: Mapping[str, str] | None = None,
) -> PreferenceSet:
    """Build a PreferenceSet from a DataFrame (rows numbered by position, from 1).

    Extra columns keep their dtype. See :func:`load_preferences` for
    ``on_error`` and ``columns``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    check_on_error(on_error)
    if df.columns.has_duplicates:
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ValueError(f"{source}: duplicate column names {dupes}")
    df = df.set_axis([str(c) for c in df.columns], axis=1)
    records = df.to_dict(orient="records")
    return _build(
        enumerate(records, start=1),
        source=source,
        unit="row",
        id_prefix=_id_prefix(source),
        on_error=on_error,
        columns=columns,
        known_columns=list(df.columns),
        extras_frame=df,
    )


# --------------------------------------------------------------------------- file readers


def _read_jsonl(path: Path, limit: int | None) -> Iterator[tuple[int, Any]]:
    """``(physical line, record)`` pairs; an unparsable line carries a ``_RowError`` instead."""
    for lineno, record, error in iter_jsonl(path, limit=limit, check_unicode=False):
        yield lineno, (_RowError(None, error) if error is not None else record)


def _read_json(path: Path, source: str, limit: int | None) -> tuple[str, list[tuple[int, Any]]]:
    """A ``.json`` file: a list of objects (rows numbered from 1), or JSON lines."""
    # Bytes that are not UTF-8 are kept as surrogate escapes and reported per row and field.
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape") as fh:
        head = fh.read(4096).lstrip()
    if not head.startswith("["):
        return "line", list(_read_jsonl(path, limit))
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig", errors="surrogateescape"))
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON ({exc.msg} at column {exc.colno})"
        raise DataFormatError(source, exc.lineno, None, reason, unit="line") from None
    if not isinstance(data, list):
        raise DataFormatError(source, None, None, f"expected a JSON list of objects, got {_describe(data)}")
    if limit is not None:
        data = data[:limit]
    return "row", list(enumerate(data, start=1))


class _RaisedFieldLimit:
    """Temporarily lift the csv module's 128 KiB field limit (long responses)."""

    def __enter__(self):
        limit = (1 << 31) - 1
        while True:
            try:
                self._old = csv.field_size_limit(limit)
                return self
            except OverflowError:
                limit //= 2

    def __exit__(self, *exc):
        csv.field_size_limit(self._old)


class _LastLine:
    """Iterates over a file's lines (newline="": endings kept) and remembers the last one read."""

    def __init__(self, fh):
        self._fh = fh
        self.last = ""

    def __iter__(self):
        return self

    def __next__(self) -> str:
        self.last = next(self._fh)
        return self.last


_BARE_CR = (
    "ends at a bare carriage return (\\r) although the file's lines end with \\n: a field holds a \\r that its "
    "writer did not quote (pandas' to_csv and csv.writer(lineterminator='\\n') do this), so CSV reads it as a line "
    "break and splits the row; write the file again with quoting=csv.QUOTE_ALL (or as JSON lines), or remove the \\r"
)


def _read_csv(path: Path, source: str, limit: int | None) -> tuple[list[str], list[tuple[int, Any]]]:
    rows: list[tuple[int, Any]] = []
    # Bytes that are not UTF-8 are kept as surrogate escapes and reported per row and field.
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh, _RaisedFieldLimit():
        lines = _LastLine(fh)
        reader = csv.reader(lines)
        rowno = 0
        try:
            header = next(reader, None)
            if header is None:
                raise DataFormatError(source, None, None, "the file is empty (no header row)")
            # Lines ending in \n (LF or CRLF): a record that ends at a bare \r is part of a row
            # split by an unquoted \r, and the records up to the next \n are the rest of it.
            lf_file = lines.last.endswith("\n")
            after_bare_cr = False
            bad_header = next((unicode_problem(c) for c in header if unicode_problem(c)), None)
            if bad_header is not None:
                raise DataFormatError(source, None, None, f"header row: {bad_header}")
            dupes = sorted(c for c, n in Counter(header).items() if n > 1)
            if dupes:
                raise DataFormatError(source, None, None, f"duplicate column names in the header: {dupes}")
            for values in reader:
                bare_cr = lf_file and lines.last.endswith("\r")
                if after_bare_cr:  # the rest of a row split at a bare \r: part of that row, already reported
                    after_bare_cr = bare_cr
                    continue
                if not values:
                    continue  # a blank line is not a row
                if limit is not None and rowno >= limit:
                    break
                rowno += 1
                if bare_cr:
                    rows.append((rowno, _RowError(None, "the row " + _BARE_CR)))
                    after_bare_cr = True
                    continue
                if len(values) != len(header):
                    rows.append((rowno, _RowError(None, f"expected {len(header)} fields, got {len(values)}")))
                    continue
                rows.append((rowno, dict(zip(header, values))))
        except csv.Error as exc:
            raise DataFormatError(source, rowno + 1, None, f"not readable as CSV ({exc})") from None
    return header, rows


def _read_parquet(path: Path, source: str, limit: int | None) -> tuple[list[str], list[tuple[int, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records: list[dict] = []
    try:
        pf = pq.ParquetFile(path)
        names = list(pf.schema_arrow.names)
        for batch in pf.iter_batches(batch_size=4096):
            records.extend(batch.to_pylist())
            if limit is not None and len(records) >= limit:
                records = records[:limit]
                break
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        reason = (
            f"not a readable Parquet file ({type(exc).__name__}: {exc}); "
            "the file may be empty, truncated or in another format: write it again (e.g. DataFrame.to_parquet)"
        )
        if records:
            reason = f"read {len(records)} rows, then: {reason}"
        raise DataFormatError(source, None, None, reason) from None
    return names, list(enumerate(records, start=1))


def _pick_split(obj: Any, split: str | None, where: str, *, selected: bool = False) -> tuple[Any, str | None]:
    """Return (Dataset, split name or None) from a Dataset or DatasetDict.

    ``selected``: the loader already applied ``split`` (``load_dataset(..., split=S)``
    returns a single Dataset), so a Dataset is that split.
    """
    splits = getattr(obj, "keys", None)
    if splits is None:  # a single Dataset
        if selected:
            return obj, split
        if split is not None:
            raise ValueError(f"{where} holds a single Dataset without splits; do not pass split={split!r}")
        return obj, None
    names = list(obj.keys())
    if split is None:
        if len(names) == 1:
            return obj[names[0]], names[0]
        raise ValueError(
            f"{where} has several splits {names}; choose one with split=... (or in the spec, "
            f"e.g. {where}@{names[0]}; --split on the command line, split in a notebook)"
        )
    if split not in names:
        raise ValueError(f"{where} has no split {split!r}; available splits: {names}")
    return obj[split], split


def _dataset_rows(ds: Any, limit: int | None) -> tuple[list[str], list[tuple[int, Any]]]:
    if limit is not None and limit < len(ds):
        ds = ds.select(range(limit))
    return list(ds.column_names), list(enumerate(ds.to_list(), start=1))


def _hub_offline() -> bool:
    truthy = {"1", "on", "yes", "true"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def parse_data_spec(spec: str | os.PathLike, split: str | None = None) -> dict[str, Any]:
    """Split a data spec into its parts.

    * ``"hf:NAME[:CONFIG][@SPLIT]"`` gives ``{"hub": True, "name", "config", "split", "path": None}``
      (``NAME`` is a Hub id such as ``Anthropic/hh-rlhf`` or anything ``datasets.load_dataset`` takes);
    * ``"DIR@SPLIT"`` where ``DIR`` exists (and ``DIR@SPLIT`` does not) gives
      ``{"hub": False, "path": DIR, "split": SPLIT, ...}``;
    * anything else is a path with ``split`` as given.

    ``split`` (e.g. ``--split``) fills in a split the spec does not name; naming two
    different splits is a ValueError.
    """
    out: dict[str, Any] = {"hub": False, "name": None, "config": None, "split": split, "path": spec}
    text = os.fspath(spec)
    named = None
    if text.startswith("hf:"):
        rest = text[3:]
        if "@" in rest:
            rest, _, named = rest.rpartition("@")
            if not named:
                raise ValueError(f"data spec {text!r} ends with '@' but names no split; write hf:NAME@SPLIT")
        name, _, config = rest.partition(":")
        if not name:
            raise ValueError(f"data spec {text!r} needs a dataset name, e.g. 'hf:Anthropic/hh-rlhf@test'")
        out.update(hub=True, name=name, config=config or None, path=None)
    elif "@" in text and not Path(text).exists():
        base, _, named = text.rpartition("@")
        if not (base and named and Path(base).exists()):
            named = None
        else:
            out["path"] = base
    if named is not None:
        if split is not None and split != named:
            raise ValueError(f"data spec {text!r} names split {named!r} but split={split!r} was also given; pass one")
        out["split"] = named
    return out


def _load_hub(name: str, split: str | None, config: str | None = None, revision: str | None = None) -> Any:
    import datasets

    kwargs = {} if revision is None else {"revision": revision}
    try:
        return datasets.load_dataset(name, config, split=split, **kwargs)
    except Exception as exc:  # noqa: BLE001 - rewrapped with advice below
        advice = (
            f"download it once while online (datasets.load_dataset({name!r}) fills the cache), or save it with "
            "Dataset.save_to_disk(folder) / DatasetDict.save_to_disk(folder) and pass that folder to load_preferences"
        )
        if _hub_offline():
            raise ConnectionError(
                f"cannot load 'hf:{name}' from the Hugging Face hub: offline mode is on "
                f"(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and it is not in the local cache; {advice} ({exc})"
            ) from exc
        if isinstance(exc, ConnectionError):
            raise ConnectionError(f"cannot reach the Hugging Face hub to load 'hf:{name}'; {advice} ({exc})") from exc
        raise


def _detect_format(spec: Any) -> str:
    if isinstance(spec, str) and spec.startswith("hf:"):
        return "hf_hub"
    path = Path(spec)
    if path.is_dir():
        return "hf_disk"
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {str(spec)!r} from its suffix {path.suffix!r}; "
            f"pass format= one of {FORMATS} (known suffixes: {sorted(_SUFFIX_FORMATS)})"
        )
    return fmt


def load_preferences(
    spec: str | os.PathLike,
    *,
    format: str | None = None,
    on_error: str = "raise",
    columns: Mapping[str, str] | None = None,
    split: str | None = None,
    limit: int | None = None,
    revision: str | None = None,
    adapter: str | None = None,
) -> PreferenceSet:
    """Load preference pairs from a file, a saved dataset folder or the hub.

    Parameters
    ----------
    spec : str or path-like
        * ``.jsonl`` / ``.ndjson``: JSON lines (rows are numbered by physical line);
        * ``.json``: a list of objects, or JSON lines;
        * ``.csv``: a header row, then one row per pair; message-list columns may
          hold JSON text starting with ``"["``;
        * ``.parquet``;
        * a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``,
          optionally with its split: ``"DIR@test"``;
        * ``"hf:NAME[:CONFIG][@SPLIT]"``: ``datasets.load_dataset(NAME, CONFIG, split=SPLIT)``
          (needs the network or the local cache), e.g. ``"hf:Anthropic/hh-rlhf@test"``.
    format : {"jsonl", "json", "csv", "parquet", "hf_disk", "hf_hub"}, optional
        Overrides detection from the suffix.
    on_error : {"raise", "skip"}, default "raise"
        ``"raise"``: the first bad row raises :class:`DataFormatError`.
        ``"skip"``: bad rows are dropped and recorded in ``skipped``.
    columns : dict, optional
        Maps schema names to input column names, e.g. ``{"prompt": "question"}``.
        Error messages name the input column.
    split : str, optional
        The split of a ``DatasetDict`` (required when it has several), unless the spec names it.
    limit : int, optional
        Read at most this many rows.
    revision : str, optional
        Hub revision (branch, tag or commit) for ``"hf:"`` specs.
    adapter : {"rewardbench2", "trl_implicit"}, optional
        Row adapter from :mod:`workbench.data.formats`. Best-of-n rows (RewardBench 2:
        ``chosen`` and ``rejected`` lists of strings) are always expanded into pairs with a
        ``group`` column; ``"trl_implicit"`` splits the shared prompt off ``chosen`` and
        ``rejected`` texts that have no ``prompt`` column.

    Returns
    -------
    PreferenceSet

    Raises
    ------
    FileNotFoundError
        If the path does not exist.
    DataFormatError
        For a bad row (``on_error="raise"``) or when no row is usable.
    ConnectionError
        For ``"hf:"`` specs that cannot be fetched (e.g. offline and not cached).
    ValueError
        For invalid arguments, unknown formats and missing/ambiguous splits.
    """
    check_on_error(on_error)
    _resolve_columns(columns)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer, got {limit!r}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"spec must be a path or an 'hf:<name>' string, got {type(spec).__name__}")

    parsed = parse_data_spec(spec, split)
    split = parsed["split"]
    if not parsed["hub"]:
        spec = parsed["path"]
    is_hub = format == "hf_hub" or parsed["hub"]
    if revision is not None and not is_hub:
        raise ValueError(f"revision={revision!r} only applies to 'hf:' specs, not to {str(spec)!r}")
    if not is_hub:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"preference data not found: {str(spec)!r}")
    fmt = format or ("hf_hub" if is_hub else _detect_format(spec))
    if split is not None and fmt not in ("hf_disk", "hf_hub"):
        raise ValueError(f"split={split!r} only applies to Hugging Face datasets, not to format {fmt!r}")
    common = dict(on_error=on_error, columns=columns, adapter=adapter)

    if fmt == "hf_hub":
        name, config = (parsed["name"], parsed["config"]) if parsed["hub"] else (str(spec), None)
        if not name:
            raise ValueError("an 'hf:' spec needs a dataset name, e.g. 'hf:Anthropic/hh-rlhf'")
        where = f"hf:{name}" + (f":{config}" if config else "")
        obj = _load_hub(name, split, config, revision)
        ds, chosen_split = _pick_split(obj, split, where, selected=split is not None)
        source = where + (f"[{chosen_split}]" if chosen_split else "")
        known, rows = _dataset_rows(ds, limit)
        prefix = name.rsplit("/", 1)[-1] + (f"-{chosen_split}" if chosen_split else "")
        return _build(rows, source=source, unit="row", id_prefix=prefix, known_columns=known, **common)

    source = str(spec)
    if fmt == "hf_disk":
        import datasets

        if not path.is_dir():
            raise ValueError(f"{source!r} is not a folder written by save_to_disk")
        try:
            obj = datasets.load_from_disk(str(path))
        except FileNotFoundError as exc:
            raise ValueError(
                f"{source!r} is not a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk ({exc})"
            ) from exc
        ds, chosen_split = _pick_split(obj, split, source)
        is_dict = hasattr(obj, "keys")
        if is_dict:
            source = f"{source}[{chosen_split}]"
        known, rows = _dataset_rows(ds, limit)
        prefix = path.name + (f"-{chosen_split}" if is_dict else "")
        return _build(rows, source=source, unit="row", id_prefix=prefix, known_columns=known, **common)

    if not path.is_file():
        raise ValueError(f"{source!r} is a folder; format {fmt!r} needs a file")
    prefix = path.stem
    if fmt == "jsonl":
        return _build(_read_jsonl(path, limit), source=source, unit="line", id_prefix=prefix, **common)
    if fmt == "json":
        unit, rows = _read_json(path, source, limit)
        return _build(rows, source=source, unit=unit, id_prefix=prefix, **common)
    if fmt == "csv":
        header, rows = _read_csv(path, source, limit)
        return _build(
            rows, source=source, unit="row", id_prefix=prefix, known_columns=header, decode_json=True, **common
        )
    header, rows = _read_parquet(path, source, limit)
    return _build(rows, source=source, unit="row", id_prefix=prefix, known_columns=header, **common)
