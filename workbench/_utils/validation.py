"""Argument checks shared by every audit: one message per mistake, naming the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "as_float_array",
    "check_ci",
    "check_n_boot",
    "check_thresholds",
    "check_margins",
    "ON_ERROR",
    "check_on_error",
    "is_missing",
    "is_listlike",
    "describe_value",
]


def as_float_array(x: Any, name: str, n: int | None = None, finite: bool = True) -> np.ndarray:
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a 1-d array of numbers, got a string")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-d array of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} values but {n} were expected (one per row)")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); drop or fix those rows first")
    return arr


def check_n_boot(n_boot: Any) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    return int(n_boot)


def check_ci(ci: Any) -> float:
    if not isinstance(ci, (float, int)) or not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be a confidence level strictly between 0 and 1, got {ci!r}")
    return float(ci)


def check_thresholds(warn: Any, fail: Any, what: str = "thresholds") -> tuple[float, float]:
    try:
        warn, fail = float(warn), float(fail)
    except (TypeError, ValueError):
        raise TypeError(f"{what}: warn and fail must be numbers, got {warn!r}, {fail!r}") from None
    if not (0.0 <= warn <= fail):
        raise ValueError(f"{what}: need 0 <= warn <= fail, got warn={warn}, fail={fail}")
    return warn, fail


def check_margins(warn: Any, fail: Any, note: str = "") -> tuple[Any, Any]:
    """The ``warn``/``fail`` margins of a drift check (effect sizes, harmful when large): ``0 <= warn <= fail``.

    The values come back unchanged. ``note`` (e.g. ``" (gold decreases in SD)"``) says in the
    message what the margins measure. Unlike :func:`check_thresholds` the message starts with
    ``margins need``, which the drift audits and their callers match.
    """
    try:
        ok = 0 <= warn <= fail
    except TypeError:
        raise TypeError(f"margins{note}: warn and fail must be numbers, got warn={warn!r}, fail={fail!r}") from None
    if not ok:
        raise ValueError(f"margins need 0 <= warn <= fail{note}, got warn={warn!r}, fail={fail!r}")
    return warn, fail


# --------------------------------------------------------------------------- row-level checks of data loaders

ON_ERROR: tuple[str, ...] = ("raise", "skip")


def check_on_error(on_error: Any) -> str:
    """``on_error`` of a loader: ``"raise"`` (first bad row raises) or ``"skip"`` (bad rows are recorded)."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    return on_error


def is_missing(value: Any) -> bool:
    """None, pandas NA/NaT or a float NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def is_listlike(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def describe_value(value: Any) -> str:
    """Short description of a bad value for error messages (never the whole text)."""
    if is_missing(value):
        return "null"
    if isinstance(value, str):
        if value == "":
            return "an empty string"
        if not value.strip():
            return "a blank string"
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {bool(value)}"
    if isinstance(value, numbers.Number):
        return f"the number {value!r}"
    if is_listlike(value):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return "an object"
    return f"a value of type {type(value).__name__}"
