"""Distribution statistics of the drift audit: normed Wasserstein, PSI, Holm, t and Welch intervals.

* :func:`normed_wasserstein`: ``scipy.stats.wasserstein_distance(ref, cur) / max(std_ref, 1e-3)``
  with ``std_ref`` the population standard deviation (``ddof=0``) of the
  reference, the "normed Wasserstein" of Evidently: 0.1 means 0.1 reference SDs.
* :func:`psi`: population stability index on bins cut at the reference quantiles
  (see :func:`psi_bins`), ``sum((c - r) * ln(c / r))`` over bins with reference
  share ``r`` and current share ``c``. Shares below ``eps = 1e-4`` are raised to
  ``eps`` so that an empty bin contributes a large but finite term.
  :func:`psi_band`: ``"stable"`` (< 0.1), ``"moderate"`` (0.1 to 0.25), ``"major"``
  (>= 0.25), the usual industry convention. These bands assume large samples:
  PSI is biased upward by sampling noise, and ``psi_null = (k - 1) (1/n_ref +
  1/n)`` (``k`` bins; the chi-square approximation of PSI) is the value expected
  with *no* shift at all, e.g. 0.225 for 10 bins and 80 vs 80 samples (a
  simulation gives 0.248). Read ``psi`` against ``psi_null``, not the bands alone.
* :func:`holm`: Holm step-down adjusted p-values.
* :func:`t_interval` and :func:`welch_interval`: Student-t interval of a mean and
  Welch interval (with p-value) of a difference of two means.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PSI_EPS",
    "WASSERSTEIN_STD_FLOOR",
    "normed_wasserstein",
    "psi_bins",
    "psi",
    "psi_band",
    "holm",
    "t_interval",
    "welch_interval",
]

PSI_EPS = 1e-4
WASSERSTEIN_STD_FLOOR = 1e-3


def _finite(x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=float).reshape(-1) if not isinstance(x, np.ndarray) else x.astype(float).reshape(-1)
    return arr[np.isfinite(arr)]


def normed_wasserstein(reference: Any, current: Any) -> float:
    """``wasserstein_distance(reference, current) / max(std(reference), 1e-3)`` (population std)."""
    r, c = _finite(reference), _finite(current)
    if r.size == 0 or c.size == 0:
        raise ValueError("normed_wasserstein needs non-empty reference and current samples")
    return float(stats.wasserstein_distance(r, c) / max(float(np.std(r)), WASSERSTEIN_STD_FLOOR))


def psi_bins(reference: Any, current: Any, n_bins: int = 10, eps: float = PSI_EPS) -> pd.DataFrame:
    """The PSI table: one row per bin cut at reference quantiles.

    Inner edges are ``unique(quantile(reference, [1/n_bins, ..., (n_bins-1)/n_bins]))``
    (ties in the reference merge bins); the outer bins are open (-inf, +inf).
    Bin ``j`` holds values ``edge_j <= x < edge_{j+1}``. Columns: ``bin, low, high,
    n_ref, n_cur, ref_share, cur_share, term`` where shares below ``eps`` are set
    to ``eps`` before ``term = (cur - ref) * ln(cur / ref)``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if not (isinstance(eps, numbers.Real) and 0 < eps < 0.5):
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    r, c = _finite(reference), _finite(current)
    if r.size == 0 or c.size == 0:
        raise ValueError("psi needs non-empty reference and current samples")
    inner = np.unique(np.quantile(r, np.arange(1, n_bins) / n_bins))
    k = inner.size + 1
    n_ref = np.bincount(np.searchsorted(inner, r, side="right"), minlength=k)
    n_cur = np.bincount(np.searchsorted(inner, c, side="right"), minlength=k)
    rs = np.maximum(n_ref / r.size, eps)
    cs = np.maximum(n_cur / c.size, eps)
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    return pd.DataFrame(
        {
            "bin": np.arange(k),
            "low": edges[:-1],
            "high": edges[1:],
            "n_ref": n_ref,
            "n_cur": n_cur,
            "ref_share": rs,
            "cur_share": cs,
            "term": (cs - rs) * np.log(cs / rs),
        }
    )


def psi(reference: Any, current: Any, n_bins: int = 10, eps: float = PSI_EPS) -> float:
    """Population stability index of ``current`` against ``reference`` (see :func:`psi_bins`)."""
    return float(psi_bins(reference, current, n_bins, eps)["term"].sum())


def psi_band(v: float) -> str:
    """``"stable"`` (< 0.1), ``"moderate"`` (0.1 to 0.25) or ``"major"`` (>= 0.25); ``""`` for NaN."""
    if not np.isfinite(v):
        return ""
    return "stable" if v < 0.1 else ("moderate" if v < 0.25 else "major")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="mergesort")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def t_interval(x: np.ndarray, ci: float) -> tuple[float, float]:
    """Student-t ``ci`` interval of ``mean(x)`` (NaN with fewer than 2 values)."""
    n = x.size
    if n < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + ci / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return (float(x.mean() - half), float(x.mean() + half))


def welch_interval(a: np.ndarray, b: np.ndarray, ci: float) -> tuple[float, float, float]:
    """Difference ``mean(a) - mean(b)`` with a Welch t interval and two-sided p-value."""
    if a.size < 2 or b.size < 2:
        return (float("nan"),) * 3
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = a.mean() - b.mean()
    se = math.sqrt(va + vb)
    if se == 0:
        return (float(diff), float(diff), 0.0 if diff != 0 else 1.0)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = stats.t.ppf(0.5 + ci / 2, df) * se
    p = 2 * stats.t.sf(abs(diff) / se, df)
    return (float(diff - half), float(diff + half), float(p))
