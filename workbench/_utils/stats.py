"""The one bootstrap implementation of the workbench: resampled indices, percentile intervals, group codes.

Every interval an audit reports comes from here, so the resampling unit (rows or whole
clusters) and the interval rule are the same everywhere.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from workbench._utils.validation import as_float_array

__all__ = [
    "CLUSTER_COLUMNS",
    "cluster_labels",
    "normalize_prompt",
    "BOOT_CHUNK_ELEMS",
    "boot_masked_means",
    "bootstrap_indices",
    "bootstrap_mean_ci",
    "group_codes",
    "percentile_ci",
]

BOOT_CHUNK_ELEMS = 4_000_000  # resampled values held in memory at once


def bootstrap_indices(n: int, n_boot: int, seed: Any = 0, chunk_elems: int = BOOT_CHUNK_ELEMS):
    """Yield ``(rows, n)`` integer arrays of resampled row indices, ``n_boot`` rows in all.

    Chunks keep memory bounded; the stream of indices depends only on ``seed``,
    ``n`` and ``n_boot`` (not on the chunk size).
    """
    rng = np.random.default_rng(seed)
    rows = max(1, chunk_elems // max(n, 1))
    done = 0
    while done < n_boot:
        k = min(rows, n_boot - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def percentile_ci(samples: np.ndarray, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray] | tuple[float, float]:
    """Percentile interval along axis 0, ignoring NaN resamples (NaN if none is finite)."""
    samples = np.asarray(samples, dtype=float)
    if samples.shape[0] == 0:
        nan = np.full(samples.shape[1:], np.nan)
        return (float("nan"), float("nan")) if nan.ndim == 0 else (nan, nan.copy())
    alpha = round((1.0 - ci) / 2.0, 12)  # 0.025, not 0.025000000000000022
    clean = np.where(np.isfinite(samples), samples, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN
        lo = np.nanpercentile(clean, 100 * alpha, axis=0)
        hi = np.nanpercentile(clean, 100 * (1 - alpha), axis=0)
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


def boot_masked_means(values: np.ndarray, masks: np.ndarray, n_boot: int, seed: Any) -> np.ndarray:
    """Bootstrap means of each row of ``values`` (k, n) over its mask (k, n): shape (n_boot, k)."""
    values = np.atleast_2d(values)
    masks = np.atleast_2d(masks).astype(float)
    n = values.shape[1]
    out = []
    vm = np.where(masks > 0, values, 0.0) * masks
    for idx in bootstrap_indices(n, n_boot, seed, chunk_elems=max(n, BOOT_CHUNK_ELEMS // max(1, values.shape[0]))):
        num = vm[:, idx].sum(axis=2).T  # (rows, k)
        den = masks[:, idx].sum(axis=2).T
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))
    return np.concatenate(out, axis=0) if out else np.empty((0, values.shape[0]))


def bootstrap_mean_ci(values: Any, n_boot: int = 1000, seed: Any = 0, ci: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values``."""
    v = as_float_array(values, "values")
    if len(v) == 0 or n_boot == 0:
        return float("nan"), float("nan")
    boots = boot_masked_means(v[None, :], np.ones((1, len(v))), n_boot, seed)[:, 0]
    return percentile_ci(boots, ci)


def group_codes(groups: Any, n: int, name: str = "groups") -> np.ndarray:
    """Integer codes ``0..G-1`` (in order of first appearance) for one group label per row.

    Labels can be anything hashable (prompt ids, prompt texts, numbers); missing
    labels (None/NaN) are an error, because a row without a group cannot be
    centred.
    """
    if isinstance(groups, (str, bytes)):
        raise TypeError(f"{name} must be a sequence with one group label per row, not a single string")
    if isinstance(groups, pd.Series):
        values = groups.to_numpy()
    else:
        try:
            values = np.asarray(list(groups), dtype=object)
        except TypeError:
            raise TypeError(
                f"{name} must be a sequence with one group label per row, got {type(groups).__name__}"
            ) from None
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-d (one label per row), got shape {values.shape}")
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} labels but there are {n} rows")
    codes, _ = pd.factorize(pd.Series(values, dtype=object), sort=False)
    if np.any(codes < 0):
        raise ValueError(f"{name} has {int(np.sum(codes < 0))} missing label(s) (None/NaN); give every row a group")
    return codes.astype(np.int64)


def cluster_members(codes: np.ndarray) -> list[np.ndarray]:
    """Row indices of each cluster ``0..G-1`` (codes as from :func:`group_codes`), in code order."""
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    splits = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, splits)


def resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Multiplicity of each of ``n`` units in every row of resampled indices ``idx`` (rows, k)."""
    rows = idx.shape[0]
    return np.bincount((np.arange(rows)[:, None] * n + idx).ravel(), minlength=rows * n).reshape(rows, n)


def bootstrap_weights(
    n: int, n_boot: int, seed: Any = 0, clusters: np.ndarray | None = None, chunk_elems: int = BOOT_CHUNK_ELEMS // 4
):
    """Yield ``(rows, n)`` arrays of bootstrap multiplicities per row, ``n_boot`` rows in all.

    Without ``clusters`` rows are resampled; with ``clusters`` (integer codes ``0..G-1``
    per row, from :func:`group_codes`) whole clusters are drawn with replacement and every
    row of a drawn cluster counts once per draw. The draws are those of
    :func:`bootstrap_indices` over the rows or the ``G`` clusters, so they depend only on
    ``seed``, the number of units and ``n_boot``.
    """
    if clusters is None:
        for idx in bootstrap_indices(n, n_boot, seed, chunk_elems=chunk_elems):
            yield resample_counts(idx, n)
        return
    codes = np.asarray(clusters)
    if len(codes) != n:
        raise ValueError(f"clusters has {len(codes)} codes but there are {n} rows")
    g = int(codes.max()) + 1 if n else 0
    rows_per_chunk = max(1, chunk_elems // max(n, 1))
    for idx in bootstrap_indices(g, n_boot, seed, chunk_elems=rows_per_chunk * g):
        yield resample_counts(idx, g)[:, codes]


def resample_indices(n: int, n_boot: int, seed: Any = 0, clusters: np.ndarray | None = None):
    """Yield one index array per bootstrap resample (rows, or every row of each drawn cluster).

    Uses the same draws as :func:`bootstrap_weights`, for statistics that need the
    resampled rows themselves (an arbitrary metric function) rather than weights.
    """
    if clusters is None:
        for chunk in bootstrap_indices(n, n_boot, seed):
            yield from chunk
        return
    codes = np.asarray(clusters)
    members = cluster_members(codes)
    for chunk in bootstrap_indices(len(members), n_boot, seed):
        for pick in chunk:
            yield np.concatenate([members[c] for c in pick])


#: columns that name a group of related prompts, coarsest first; the first present one is the cluster
CLUSTER_COLUMNS = ("topic_id", "topic", "group", "cluster", "prompt_id")
#: how a resampling unit reads in a sentence ("57 topics", not "57 topic_ids")
UNIT_NAMES = {"topic_id": "topic", "prompt_id": "prompt", "group_id": "group", "cluster_id": "cluster"}


def unit_name(column: str) -> str:
    """The readable name of a cluster column: ``topic_id`` -> ``topic``, ``prompt_id`` -> ``prompt``."""
    return UNIT_NAMES.get(column, column)


def normalize_prompt(text: Any) -> str:
    """Prompt text as a cluster key: case-folded, white space collapsed."""
    return " ".join(str(text).casefold().split())


def cluster_labels(frame: pd.DataFrame, column: str | None = None) -> tuple[np.ndarray, str]:
    """The resampling unit of every row, as integer codes, and its name.

    ``column`` names it explicitly. Otherwise the first of :data:`CLUSTER_COLUMNS` that the
    frame has without missing values is used (topics group several prompts, so they are the
    safer unit), and else the normalised ``prompt`` text: pairs that share a prompt are
    never treated as independent.
    """
    if column is not None:
        if column not in frame.columns:
            raise ValueError(f"cluster column {column!r} is not in the data (columns: {list(frame.columns)})")
        return group_codes(frame[column], len(frame), name=column), column
    for col in CLUSTER_COLUMNS:
        if col in frame.columns and not frame[col].isna().any():
            return group_codes(frame[col], len(frame), name=col), col
    if "prompt" not in frame.columns:
        raise ValueError("the data has no 'prompt' column and none of " + ", ".join(CLUSTER_COLUMNS))
    return group_codes(frame["prompt"].map(normalize_prompt), len(frame), name="prompt"), "prompt"


def boot_weighted_means(
    values: np.ndarray, weights: np.ndarray, n_boot: int, seed: Any, clusters: np.ndarray | None = None
) -> np.ndarray:
    """Bootstrap weighted means of each row of ``values`` (k, n) with row weights ``weights`` (k, n): (n_boot, k).

    Like :func:`boot_masked_means` (a 0/1 weight is a mask), but the draws come from
    :func:`bootstrap_weights`, so ``clusters`` (codes from :func:`group_codes`) resamples
    whole clusters. A resample whose weights sum to 0 gives NaN.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    n = values.shape[1]
    vw = np.where(weights != 0, values, 0.0) * weights
    out = []
    for w in bootstrap_weights(n, n_boot, seed, clusters=clusters):
        w = w.astype(float)
        num, den = w @ vw.T, w @ weights.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))
    return np.concatenate(out, axis=0) if out else np.empty((0, values.shape[0]))
