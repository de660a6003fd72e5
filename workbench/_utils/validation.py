"""Argument checks shared by every audit: one message per mistake, naming the argument."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_float_array", "check_ci", "check_n_boot", "check_thresholds"]


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
