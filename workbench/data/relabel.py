"""Human-in-the-loop relabelling: export flagged pairs to a queue, import the labels back.

Flagged items (drift triggers, ensemble disagreements, sycophancy failures ...)
go to a *relabel queue*, a CSV or JSON lines file (chosen by the extension)
with one row per comparison and these columns:

===================  ==========================================================
``queue_id``         unique id in the queue: ``<file stem>-0001`` ...
``source_id``        id of the item in the data it came from
``reason``           why it was flagged (e.g. ``"ensemble disagreement"``)
``prompt``           the user prompt
``response_a``       first response shown to the annotator
``response_b``       second response shown to the annotator
``a_source``         where ``response_a`` came from: ``"chosen"``/``"rejected"``
                     (preference pairs) or ``"response_a"``/``"response_b"``
``rm_preference``    the RM's current preference: ``"a"``, ``"b"``, ``"tie"`` or ``""``
``rm_margin``        the RM's score of a minus score of b (empty if unknown)
``human_label``      **to fill in**: ``"a"``, ``"b"`` or ``"tie"`` (empty = not labelled)
``annotator``        optional, free text
``comment``          optional, free text
===================  ==========================================================

(plus ``history`` as JSON when the items have earlier turns).

By default the two responses are put in a seeded random order (``shuffle=True``)
so that annotators cannot learn "the RM's favourite / the chosen one is always
A"; ``a_source`` keeps the mapping. Spreadsheet safety: in CSV files a text
cell that starts with ``= + - @ '``, a tab or a carriage return is written with
one extra leading ``'`` so that spreadsheet programs do not run it as a
formula; :func:`import_relabels` removes exactly that one character again, so
texts round-trip unchanged.

:func:`import_relabels` turns the labelled rows into a
:class:`~workbench.data.preferences.PreferenceSet`: ``"a"`` makes ``response_a``
the chosen response (label 1.0), ``"b"`` makes ``response_b`` chosen, and
``"tie"`` keeps the shown order with label 0.5. Every row carries provenance:
``label_source="relabel"``, ``relabel_file``, ``relabel_date``, ``queue_id``,
``source_id``, ``reason``, ``annotator``, the ``original_label`` of the source
item and ``agrees_with_original`` (whether the human picked the response that
was chosen in the source data; NaN for ties or sources without an orientation).
Unlabelled rows are skipped *and* counted in the set's ``skipped`` record.
Unknown ids, responses that do not match the source item, bad labels and
duplicate queue ids raise :class:`~workbench.data.preferences.DataFormatError`
naming the file, the row (1-based data row for CSV, line for JSON lines) and
the field.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench._utils.io import iter_jsonl
from workbench.data.preferences import DataFormatError, PreferenceSet, SkippedRow, from_frame

__all__ = ["QUEUE_COLUMNS", "HUMAN_LABELS", "export_relabel_queue", "import_relabels"]

QUEUE_COLUMNS = (
    "queue_id",
    "source_id",
    "reason",
    "prompt",
    "response_a",
    "response_b",
    "a_source",
    "rm_preference",
    "rm_margin",
    "human_label",
    "annotator",
    "comment",
)
HUMAN_LABELS = ("a", "b", "tie")
_TEXT_COLUMNS = ("source_id", "reason", "prompt", "response_a", "response_b", "history", "annotator", "comment")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_REQUIRED_IMPORT = ("queue_id", "source_id", "prompt", "response_a", "response_b", "human_label")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ValueError(f"relabel queue path must end in .csv or .jsonl, got {path.name!r}")


def _frame_of(items: Any, name: str) -> pd.DataFrame:
    frame = items.frame if isinstance(items, PreferenceSet) else items
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a PreferenceSet or a DataFrame, got {type(items).__name__}")
    return frame.reset_index(drop=True)


def _is_blank(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _source_margin(frame: pd.DataFrame, shape: str) -> np.ndarray:
    """The RM margin in the items' own orientation (a - b, or chosen - rejected); NaN if unknown."""
    n = len(frame)
    if shape == "ab" and {"score_a", "score_b"} <= set(frame.columns):
        return frame["score_a"].to_numpy(dtype=float) - frame["score_b"].to_numpy(dtype=float)
    if shape == "pair":
        if {"chosen_score", "rejected_score"} <= set(frame.columns):
            return frame["chosen_score"].to_numpy(dtype=float) - frame["rejected_score"].to_numpy(dtype=float)
        for col in ("margin", "mean_margin"):
            if col in frame.columns:
                return frame[col].to_numpy(dtype=float)
    if shape == "ab" and "margin" in frame.columns:
        return frame["margin"].to_numpy(dtype=float)
    return np.full(n, np.nan)


def _csv_protect(text: Any) -> Any:
    if isinstance(text, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _csv_unprotect(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def export_relabel_queue(
    items: Any,
    path: str | Path,
    reason: str | None = None,
    *,
    shuffle: bool = True,
    seed: int = 0,
    id_column: str = "id",
) -> pd.DataFrame:
    """Write flagged comparisons to a relabel queue (``.csv`` or ``.jsonl``) and return it as a DataFrame.

    ``items`` is a PreferenceSet or DataFrame with ``prompt`` and either
    ``chosen``/``rejected`` (preference pairs) or ``response_a``/``response_b``
    (e.g. :func:`workbench.audits.drift.checkpoint_pairs`), and an id column. The RM's
    current preference comes from ``score_a``/``score_b``, ``chosen_score``/
    ``rejected_score``, ``margin`` or ``mean_margin`` when present. ``reason``
    applies to every row unless the items have a ``reason`` column.
    """
    frame = _frame_of(items, "items")
    path = Path(path)
    fmt = _format(path)
    if len(frame) == 0:
        raise ValueError("items is empty: nothing to export")
    if "prompt" not in frame.columns:
        raise ValueError("items need a 'prompt' column")
    if {"response_a", "response_b"} <= set(frame.columns):
        shape, left, right = "ab", "response_a", "response_b"
    elif {"chosen", "rejected"} <= set(frame.columns):
        shape, left, right = "pair", "chosen", "rejected"
    else:
        raise ValueError("items need 'chosen' and 'rejected' columns or 'response_a' and 'response_b' columns")
    if id_column not in frame.columns:
        raise ValueError(f"items have no id column {id_column!r} (pass id_column=...)")
    ids = frame[id_column].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"items have duplicate ids, e.g. {ids[ids.duplicated()].iloc[0]!r}")
    if "reason" in frame.columns:
        reasons = [r if not _is_blank(r) else reason for r in frame["reason"]]
    else:
        reasons = [reason] * len(frame)
    if any(_is_blank(r) for r in reasons):
        raise ValueError("every item needs a reason: pass reason=... or give the items a 'reason' column")
    for col in ("prompt", left, right):
        bad = [i for i, v in enumerate(frame[col]) if not isinstance(v, str)]
        if bad:
            raise ValueError(
                f"items row {bad[0] + 1}, column {col!r}: expected a string, got {type(frame[col].iloc[bad[0]]).__name__}"
            )
    margin = _source_margin(frame, shape)
    swap = np.random.default_rng(seed).random(len(frame)) < 0.5 if shuffle else np.zeros(len(frame), bool)
    a = np.where(swap, frame[right].to_numpy(dtype=object), frame[left].to_numpy(dtype=object))
    b = np.where(swap, frame[left].to_numpy(dtype=object), frame[right].to_numpy(dtype=object))
    rm_margin = np.where(swap, -margin, margin)
    pref = np.where(np.isnan(rm_margin), "", np.where(rm_margin > 0, "a", np.where(rm_margin < 0, "b", "tie")))
    queue = pd.DataFrame(
        {
            "queue_id": [f"{path.stem}-{i:04d}" for i in range(1, len(frame) + 1)],
            "source_id": ids.to_numpy(dtype=object),
            "reason": [str(r) for r in reasons],
            "prompt": frame["prompt"].to_numpy(dtype=object),
            "response_a": a,
            "response_b": b,
            "a_source": np.where(swap, right, left),
            "rm_preference": pref,
            "rm_margin": rm_margin,
            "human_label": "",
            "annotator": "",
            "comment": "",
        }
    )
    if "history" in frame.columns and any(isinstance(h, list) and h for h in frame["history"]):
        queue.insert(
            4,
            "history",
            [json.dumps(h, ensure_ascii=False) if isinstance(h, list) and h else "" for h in frame["history"]],
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        out = queue.copy()
        for col in _TEXT_COLUMNS:
            if col in out.columns:
                out[col] = out[col].map(_csv_protect)
        out.to_csv(path, index=False, encoding="utf-8")
    else:
        with path.open("w", encoding="utf-8") as fh:
            for rec in queue.to_dict(orient="records"):
                rec["rm_margin"] = (
                    None
                    if isinstance(rec["rm_margin"], float) and math.isnan(rec["rm_margin"])
                    else float(rec["rm_margin"])
                )
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return queue


def _read_queue(path: Path) -> tuple[str, list[tuple[int, dict]]]:
    fmt = _format(path)
    name = str(path)
    if not path.exists():
        raise FileNotFoundError(f"relabel file not found: {path}")
    if fmt == "csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        missing = [c for c in _REQUIRED_IMPORT if c not in df.columns]
        if missing:
            raise DataFormatError(name, None, missing[0], f"missing column (the file has {list(df.columns)})")
        records = df.to_dict(orient="records")
        for rec in records:
            for col in _TEXT_COLUMNS:
                if isinstance(rec.get(col), str):
                    rec[col] = _csv_unprotect(rec[col])
        return "row", list(enumerate(records, start=1))
    rows = []
    for lineno, rec, error in iter_jsonl(path):
        if error is not None:
            raise DataFormatError(name, lineno, None, error, unit="line")
        if not isinstance(rec, dict):
            raise DataFormatError(name, lineno, None, f"expected an object, got {type(rec).__name__}", unit="line")
        rows.append((lineno, rec))
    for lineno, rec in rows:
        missing = [c for c in _REQUIRED_IMPORT if c not in rec]
        if missing:
            raise DataFormatError(name, lineno, missing[0], "missing field", unit="line")
    return "line", rows


def import_relabels(
    path: str | Path, original: Any, *, date: str | None = None, id_column: str = "id"
) -> PreferenceSet:
    """Read a labelled relabel queue back into a PreferenceSet with provenance (see the module docstring).

    ``original`` is the PreferenceSet or DataFrame the queue was exported from
    (its ids are looked up by ``source_id``; its ``history``, ``subset`` and
    ``category`` are carried over). ``date`` (ISO ``YYYY-MM-DD``) is stored as
    ``relabel_date``; it defaults to the file's modification date.
    """
    path = Path(path)
    unit, rows = _read_queue(path)
    name = str(path)
    orig = _frame_of(original, "original")
    if id_column not in orig.columns:
        raise ValueError(f"original has no id column {id_column!r}")
    index = {str(v): i for i, v in enumerate(orig[id_column])}
    if date is None:
        date = _dt.datetime.fromtimestamp(path.stat().st_mtime, tz=_dt.UTC).date().isoformat()
    else:
        try:
            date = _dt.date.fromisoformat(str(date)).isoformat()
        except ValueError:
            raise ValueError(f"date must be an ISO date YYYY-MM-DD, got {date!r}") from None
    pair_shape = {"chosen", "rejected"} <= set(orig.columns)
    ab_shape = {"response_a", "response_b"} <= set(orig.columns)

    def fail(row, fld, reason):
        raise DataFormatError(name, row, fld, reason, unit=unit)

    out, skipped, seen = [], [], {}
    for row, rec in rows:
        qid = rec.get("queue_id")
        if _is_blank(qid):
            fail(row, "queue_id", "empty queue_id")
        qid = str(qid)
        if qid in seen:
            fail(row, "queue_id", f"duplicate queue_id {qid!r} (first at {unit} {seen[qid]})")
        seen[qid] = row
        raw = rec.get("human_label")
        if _is_blank(raw):
            skipped.append(SkippedRow(name, row, "human_label", "not labelled", unit))
            continue
        lab = str(raw).strip().lower()
        if lab not in HUMAN_LABELS:
            fail(
                row,
                "human_label",
                f"expected one of {list(HUMAN_LABELS)} (or empty for unlabelled), got {str(raw)[:40]!r}",
            )
        sid = rec.get("source_id")
        sid = "" if _is_blank(sid) else str(sid)
        if sid not in index:
            fail(row, "source_id", f"unknown source_id {sid!r}: not in the original data")
        src = orig.iloc[index[sid]]
        ra, rb, prompt = rec.get("response_a"), rec.get("response_b"), rec.get("prompt")
        for fld, v in (("response_a", ra), ("response_b", rb), ("prompt", prompt)):
            if not isinstance(v, str) or (fld != "prompt" and not v.strip()):
                fail(row, fld, "expected a non-empty string" if fld != "prompt" else "expected a string")
        if "prompt" in orig.columns and isinstance(src["prompt"], str) and prompt != src["prompt"]:
            fail(row, "prompt", f"does not match the prompt of source item {sid!r}")
        if pair_shape:
            pair = (src["chosen"], src["rejected"])
        elif ab_shape:
            pair = (src["response_a"], src["response_b"])
        else:
            pair = None
        if pair is not None and {ra, rb} != set(pair):
            fld = "response_a" if ra not in pair else "response_b"
            fail(row, fld, f"does not match the responses of source item {sid!r}")
        chosen, rejected = (rb, ra) if lab == "b" else (ra, rb)
        label = 0.5 if lab == "tie" else 1.0
        agrees = float("nan")
        if lab != "tie" and pair_shape:
            orig_label = float(src["label"]) if "label" in orig.columns and not _is_blank(src["label"]) else 1.0
            if orig_label != 0.5:
                orig_winner = src["chosen"] if orig_label > 0.5 else src["rejected"]
                agrees = float(chosen == orig_winner)
        out.append(
            {
                "id": f"{sid}~{qid}",
                "prompt": prompt,
                "history": src["history"] if "history" in orig.columns and isinstance(src["history"], list) else None,
                "chosen": chosen,
                "rejected": rejected,
                "subset": src["subset"] if "subset" in orig.columns else None,
                "category": src["category"] if "category" in orig.columns else None,
                "label": label,
                "label_source": "relabel",
                "relabel_file": name,
                "relabel_date": date,
                "queue_id": qid,
                "source_id": sid,
                "reason": None if _is_blank(rec.get("reason")) else str(rec.get("reason")),
                "annotator": None if _is_blank(rec.get("annotator")) else str(rec.get("annotator")),
                "human_label": lab,
                "original_label": float(src["label"])
                if "label" in orig.columns and not _is_blank(src["label"])
                else float("nan"),
                "agrees_with_original": agrees,
            }
        )
    if not out:
        raise DataFormatError(name, None, "human_label", f"no labelled rows ({len(skipped)} unlabelled of {len(rows)})")
    frame = pd.DataFrame(out)
    for col in ("subset", "category"):
        frame[col] = [None if _is_blank(v) else v for v in frame[col]]
    ps = from_frame(frame, source=f"relabel:{name}")
    return PreferenceSet(frame=ps.frame, source=ps.source, skipped=skipped, n_read=len(rows))
