"""Policy samples: loading and validation, checkpoint labels and order, the demo's gold judge.

:func:`load_policy_samples` reads one record per sample with the fields ``id``
(optional), ``prompt``, ``response``, ``checkpoint`` and/or ``step`` (at least
one of the two) and any extra fields (``prompt_id``, ``attrs`` ...), from JSON
lines, JSON, CSV or Parquet files, a DataFrame or a list of dicts. A missing
``checkpoint`` becomes ``"step-<step>"``; a missing ``step`` stays ``<NA>``.
Errors are :class:`~workbench.data.preferences.DataFormatError` naming the
source, the line (JSON lines) or row, and the field. ``"demo-policy"`` names
the shipped ``data/demo/policy_samples.jsonl``.

:func:`checkpoint_labels`, :func:`sample_steps` and :func:`order_checkpoints`
turn per-sample checkpoint and step columns into the checkpoint order every
drift statistic uses (by step when steps are given, else by first appearance).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench._utils.io import iter_jsonl
from workbench._utils.validation import is_missing
from workbench.data.preferences import DataFormatError
from workbench.paths import data_dir

__all__ = [
    "POLICY_REQUIRED",
    "SHIPPED_POLICY",
    "load_policy_samples",
    "select_policy_samples",
    "demo_gold_score",
    "checkpoint_labels",
    "sample_steps",
    "order_checkpoints",
]

POLICY_REQUIRED = ("prompt", "response", "checkpoint or step")
SHIPPED_POLICY = {"demo-policy": ("demo", "policy_samples.jsonl")}


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return "an empty string" if not v.strip() else f"string {v[:40]!r}"
    return f"{type(v).__name__} {v!r}"[:60]


def _parse_step(v: Any) -> int | None:
    if is_missing(v):
        return None
    if isinstance(v, bool):
        raise ValueError(f"expected a non-negative integer, got {_describe(v)}")
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a non-negative integer, got {_describe(v)}") from None
    if isinstance(v, numbers.Integral):
        out = int(v)
    elif isinstance(v, numbers.Real) and float(v).is_integer():
        out = int(v)
    else:
        raise ValueError(f"expected a non-negative integer, got {_describe(v)}")
    if out < 0:
        raise ValueError(f"expected a non-negative integer, got {out}")
    return out


def _policy_rows(source: Any) -> tuple[str, str, list[tuple[int, Any]]]:
    """(source name, unit, [(row number, record)]) for every accepted input."""
    if isinstance(source, pd.DataFrame):
        return "<dataframe>", "row", list(enumerate(source.to_dict(orient="records"), start=1))
    if isinstance(source, (list, tuple)):
        return "<records>", "row", list(enumerate(source, start=1))
    if not isinstance(source, (str, Path)):
        raise TypeError(f"policy samples must be a path, a DataFrame or a list of dicts, got {type(source).__name__}")
    if isinstance(source, str) and source in SHIPPED_POLICY:
        source = data_dir().joinpath(*SHIPPED_POLICY[source])
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise FileNotFoundError(f"policy samples file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (
        suffix == ".json" and not path.read_text(encoding="utf-8-sig").lstrip().startswith("[")
    ):
        rows = []
        for lineno, rec, error in iter_jsonl(path):
            if error is not None:
                raise DataFormatError(name, lineno, None, error, unit="line")
            rows.append((lineno, rec))
        return name, "line", rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(name, exc.lineno, None, f"invalid JSON ({exc.msg})", unit="line") from None
        return name, "row", list(enumerate(data, start=1))
    if suffix == ".csv":
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=object)
        return name, "row", list(enumerate(frame.to_dict(orient="records"), start=1))
    if suffix in (".parquet", ".pq"):
        return name, "row", list(enumerate(pd.read_parquet(path).to_dict(orient="records"), start=1))
    raise ValueError(f"{path}: unsupported policy-samples format {suffix!r} (use .jsonl, .json, .csv or .parquet)")


def load_policy_samples(source: Any) -> pd.DataFrame:
    """Read and validate policy samples (see the module docstring for the format).

    Returns a DataFrame with columns ``id, prompt, response, checkpoint, step``
    (``step`` is nullable ``Int64``) followed by every extra input field
    (``attrs`` stays a dict). Raises :class:`DataFormatError` naming the file,
    line or row and field: missing or non-string ``prompt``/``response`` (the
    response must be non-empty), neither ``checkpoint`` nor ``step``, a
    non-integer or negative ``step``, one checkpoint with two different steps,
    or a duplicate ``id``.
    """
    name, unit, rows = _policy_rows(source)
    stem = Path(name).stem if unit == "line" or name[0] != "<" else name.strip("<>")
    out: list[dict] = []
    seen_ids: dict[str, int] = {}
    ckpt_step: dict[str, tuple[int | None, int]] = {}

    def fail(row, fld, reason):
        raise DataFormatError(name, row, fld, reason, unit=unit)

    for row, rec in rows:
        if not isinstance(rec, Mapping):
            fail(row, None, f"expected an object, got {type(rec).__name__}")
        rec = dict(rec)
        prompt = rec.get("prompt")
        if not isinstance(prompt, str):
            fail(row, "prompt", f"expected a string, got {_describe(prompt) if 'prompt' in rec else 'no such field'}")
        response = rec.get("response")
        if not isinstance(response, str) or not response.strip():
            fail(
                row,
                "response",
                f"expected a non-empty string, got {_describe(response) if 'response' in rec else 'no such field'}",
            )
        try:
            step = _parse_step(rec.get("step"))
        except ValueError as exc:
            fail(row, "step", str(exc))
        ckpt = rec.get("checkpoint")
        if is_missing(ckpt) or (isinstance(ckpt, str) and not ckpt.strip()):
            if step is None:
                fail(row, "checkpoint", "needs a 'checkpoint' or a 'step' (both missing)")
            ckpt = f"step-{step}"
        elif isinstance(ckpt, bool) or not isinstance(ckpt, (str, numbers.Real)):
            fail(row, "checkpoint", f"expected a string or number, got {_describe(ckpt)}")
        else:
            ckpt = str(ckpt)
        if ckpt in ckpt_step and ckpt_step[ckpt][0] != step:
            first_step, first_row = ckpt_step[ckpt]
            fail(row, "step", f"checkpoint {ckpt!r} has step {step} here but {first_step} at {unit} {first_row}")
        ckpt_step.setdefault(ckpt, (step, row))
        rid = rec.get("id")
        if is_missing(rid):
            rid = f"{stem}-{row}"
        elif isinstance(rid, bool) or not isinstance(rid, (str, numbers.Integral)):
            fail(row, "id", f"expected a string or integer, got {_describe(rid)}")
        rid = str(rid)
        if rid in seen_ids:
            fail(row, "id", f"duplicate id {rid!r} (first used at {unit} {seen_ids[rid]})")
        seen_ids[rid] = row
        extra = {k: v for k, v in rec.items() if k not in ("id", "prompt", "response", "checkpoint", "step")}
        out.append({"id": rid, "prompt": prompt, "response": response, "checkpoint": ckpt, "step": step, **extra})
    if not out:
        raise DataFormatError(name, None, None, "no policy samples")
    frame = pd.DataFrame(out)
    frame["step"] = pd.array(frame["step"].tolist(), dtype="Int64")
    for col in ("id", "prompt", "response", "checkpoint"):
        frame[col] = frame[col].astype(object)
    return frame


def select_policy_samples(source: Any, sample_size: int = 0, seed: int = 0) -> pd.DataFrame:
    """The policy samples :func:`~workbench.audits.drift.audit.drift_audit` scores.

    :func:`load_policy_samples`, then, when ``sample_size`` is not 0, that many samples
    per checkpoint drawn with ``seed`` (input order kept, index reset).
    """
    samples = load_policy_samples(source)
    if sample_size:
        keep = samples.sample(frac=1, random_state=seed).groupby("checkpoint", sort=False).head(int(sample_size)).index
        samples = samples.loc[sorted(keep)].reset_index(drop=True)
    return samples


def demo_gold_score(samples: pd.DataFrame) -> np.ndarray:
    """The demo data's simulated gold judge from each sample's ``attrs`` (see ``data/demo/README.md``).

    ``gold = q - 0.15 k - 0.3 f - 0.3 a [claim_is_true is False]``: it rewards a
    good answer and penalises padding, flattery, and agreeing with a false claim.
    Needs ``attrs`` dicts with ``q, k, a, f`` and a ``claim_is_true`` column.
    """
    if "attrs" not in samples.columns:
        raise ValueError("samples need an 'attrs' column with q, k, a, f (the demo policy samples have one)")
    truth = samples["claim_is_true"] if "claim_is_true" in samples.columns else pd.Series([None] * len(samples))
    out = np.empty(len(samples))
    for i, (attrs, claim) in enumerate(zip(samples["attrs"], truth)):
        if not isinstance(attrs, Mapping) or not all(k in attrs for k in "qkaf"):
            raise ValueError(
                f"samples row {i + 1}, field 'attrs': expected a dict with q, k, a, f, got {_describe(attrs)}"
            )
        false_claim = 1.0 if claim is False else 0.0
        out[i] = (
            float(attrs["q"])
            - 0.15 * float(attrs["k"])
            - 0.3 * float(attrs["f"])
            - 0.3 * float(attrs["a"]) * false_claim
        )
    return np.round(out, 4)


# --------------------------------------------------------------------------- checkpoint order


def order_checkpoints(checkpoints: np.ndarray, steps: np.ndarray | None) -> tuple[list[str], dict[str, float]]:
    """Checkpoints in order (by step, then first appearance) and ``{checkpoint: step}`` (NaN when unknown).

    Raises ``ValueError`` when one checkpoint carries two different steps.
    """
    first = list(dict.fromkeys(checkpoints.tolist()))
    step_of: dict[str, float] = {}
    if steps is not None:
        for ck, st in zip(checkpoints, steps):
            st = float("nan") if is_missing(st) else float(st)
            prev = step_of.get(ck)
            if prev is not None and not (np.isnan(prev) and np.isnan(st)) and prev != st:
                raise ValueError(f"checkpoint {ck!r} has two different steps ({prev:g} and {st:g})")
            step_of[ck] = st
        pos = {c: i for i, c in enumerate(first)}
        first.sort(key=lambda c: (np.isnan(step_of[c]), step_of[c] if not np.isnan(step_of[c]) else 0, pos[c]))
    return first, step_of


def sample_steps(steps: Any, n: int) -> np.ndarray | None:
    """Steps as floats (NaN for missing), or None; one per sample."""
    if steps is None:
        return None
    values = steps if isinstance(steps, (np.ndarray, pd.Series)) else list(steps)
    st = np.asarray(pd.array(values, dtype="Float64").to_numpy(dtype=float, na_value=np.nan))
    if st.size != n:
        raise ValueError(f"steps has {st.size} entries for {n} samples")
    return st


def checkpoint_labels(x: Any, name: str, n: int | None = None) -> np.ndarray:
    """One checkpoint label per sample as an object array of strings (no missing values)."""
    if isinstance(x, str):
        raise TypeError(f"{name} must be a sequence (one entry per sample), not a string")
    arr = np.asarray(list(x) if not isinstance(x, (np.ndarray, pd.Series, pd.Index)) else x, dtype=object).reshape(-1)
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries for {n} scores")
    if any(is_missing(v) for v in arr):
        raise ValueError(f"{name} contains missing values")
    return np.array([str(v) for v in arr], dtype=object)
