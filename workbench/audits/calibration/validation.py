"""Argument checks of the calibration audit: one ``ValueError`` per mistake, naming the argument.

Every public function of the calibration subpackage validates its inputs here
before handing plain float arrays to :mod:`workbench.audits.calibration.core`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ORIENTATIONS",
    "STRATEGIES",
    "as_1d_float",
    "check_bounds",
    "check_n_bins",
    "check_orientation",
    "check_same_length",
    "check_strategy",
    "check_temperature",
    "check_unit_interval",
    "validate_inputs",
    "validate_label",
    "validate_prob_label",
]

STRATEGIES = ("uniform", "quantile")
ORIENTATIONS = ("random", "both", "as_given")


def as_1d_float(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D, non-empty, finite float64 array, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be numeric (convertible to float); {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array, got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty; at least one pair is needed")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"`{name}` contains {bad.size} non-finite value(s) (NaN or inf); first at index {bad[0]}")
    return arr


def check_unit_interval(arr: np.ndarray, name: str, what: str) -> None:
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"`{name}` must lie in [0, 1] ({what}); got values in [{lo:g}, {hi:g}]")


def check_same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"`{k}` has {n}" for k, n in lengths.items())
        raise ValueError(f"inputs must have the same length: {desc}")


def validate_label(label: Any, name: str = "label") -> np.ndarray:
    y = as_1d_float(label, name)
    check_unit_interval(y, name, "probability that the first response is preferred; 0.5 = tie")
    return y


def validate_inputs(margin: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert ``(margin, label)``.

    Returns float64 copies. Raises ``ValueError`` (naming the argument) when an
    input is not 1-D, is empty, is not numeric, holds NaN/inf, when the lengths
    differ, or when a label is outside ``[0, 1]``.
    """
    m = as_1d_float(margin, "margin")
    y = validate_label(label)
    check_same_length(margin=m, label=y)
    return m, y


def validate_prob_label(prob: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert ``(prob, label)``: both 1-D, finite, in ``[0, 1]`` and of equal length."""
    p = as_1d_float(prob, "prob")
    check_unit_interval(p, "prob", "a probability; pass sigmoid(margin), not the margin")
    y = validate_label(label)
    check_same_length(prob=p, label=y)
    return p, y


def check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def check_strategy(strategy: Any) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


def check_orientation(orientation: Any) -> str:
    if orientation not in ORIENTATIONS:
        raise ValueError(f"`orientation` must be one of {ORIENTATIONS}, got {orientation!r}")
    return orientation


def check_temperature(temperature: Any) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"`temperature` must be a positive number, got {temperature!r}") from None
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"`temperature` must be a positive finite number, got {temperature!r}")
    return t


def check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"`bounds` must be a pair (low, high), got {bounds!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"`bounds` must satisfy 0 <= low < high <= 1, got {bounds!r}")
    return lo, hi
