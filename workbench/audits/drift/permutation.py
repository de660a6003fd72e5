"""Reward drift graded against a permutation null: the normed Wasserstein distance above its noise floor.

The normed Wasserstein distance ``W = W1(reference, current) / std(reference)`` of two
samples of the same distribution is not 0: at 80 vs 80 samples it is about 0.2 reference
SDs (0.12 when the samples are paired by prompt), above Evidently's usual 0.1 threshold,
so ``W >= 0.1`` alone flags almost every checkpoint. :func:`wasserstein_null` measures the
floor on the data themselves:

* **Permutation null.** Under "no drift" the checkpoint labels are exchangeable. When the
  two checkpoints answer the same prompts (every ``prompt_id`` once in each), the labels
  are swapped *within* each prompt with probability 1/2 (a paired permutation, which keeps
  the prompt mix of both samples); otherwise all samples are pooled and the labels are
  shuffled. ``null_mean`` and ``null_q95`` are the mean and 95th percentile of ``W`` over
  ``n_perm`` permutations, ``p_value = (1 + #{W_perm >= W}) / (1 + n_perm)``.
* **Excess and its interval.** The graded effect is ``excess = W - null_mean`` (reference
  SDs of drift beyond sampling noise). Its interval comes from a cluster bootstrap:
  clusters (topics or prompts; both checkpoints' answers to one prompt are drawn
  together) are resampled, and in every resample ``W*`` minus the mean of ``n_inner``
  permutations of that same resample is one draw of the excess, so the noise floor is
  re-estimated at the resample's own composition (a resampled ``W*`` alone is biased
  upward by the duplicated clusters). The percentile interval of those draws is the
  interval of the excess.

Everything is computed on weights: the pooled values are sorted once, and a sample
(observed, permuted or resampled) is a pair of weight vectors over them, so thousands of
distances are a few array operations. :func:`weighted_normed_wasserstein` agrees with
``scipy.stats.wasserstein_distance(u, v, u_weights, v_weights) / std_w(u)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench._utils.stats import bootstrap_weights, percentile_ci
from workbench.audits.drift.statistics import WASSERSTEIN_STD_FLOOR

__all__ = ["WassersteinNull", "weighted_normed_wasserstein", "wasserstein_null", "pair_rows"]

ROWS_PER_CHUNK = 4000  # weight rows (samples) held in memory at once


def weighted_normed_wasserstein(values: np.ndarray, w_ref: np.ndarray, w_cur: np.ndarray) -> np.ndarray:
    """Normed Wasserstein distance for every row of the weight matrices ``w_ref``, ``w_cur`` (k, N).

    ``values`` (N,) are the pooled sample values; row ``j`` describes the reference sample
    ``values`` weighted by ``w_ref[j]`` and the current sample weighted by ``w_cur[j]``.
    Returns ``W1 / max(std_ref, 1e-3)`` with the weighted population SD of the reference.
    """
    values = np.asarray(values, dtype=float)
    w_ref, w_cur = np.atleast_2d(w_ref).astype(float), np.atleast_2d(w_cur).astype(float)
    order = np.argsort(values, kind="mergesort")
    x = values[order]
    dx = np.diff(x)
    out = np.empty(w_ref.shape[0])
    for start in range(0, w_ref.shape[0], ROWS_PER_CHUNK):
        r, c = w_ref[start : start + ROWS_PER_CHUNK], w_cur[start : start + ROWS_PER_CHUNK]
        sr, sc = r.sum(1), c.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fr = np.cumsum(r[:, order], axis=1)[:, :-1] / sr[:, None]
            fc = np.cumsum(c[:, order], axis=1)[:, :-1] / sc[:, None]
            w1 = np.abs(fr - fc) @ dx
            mu = (r @ values) / sr
            var = (r @ values**2) / sr - mu**2
        sd = np.sqrt(np.maximum(var, 0.0))
        out[start : start + ROWS_PER_CHUNK] = w1 / np.maximum(sd, WASSERSTEIN_STD_FLOOR)
    return out


def pair_rows(ref_keys: Any, cur_keys: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Row indices ``(i_ref, i_cur)`` matching the two samples by key, or ``None`` when they cannot be paired.

    Pairing needs every key exactly once in each sample and the same set of keys on both
    sides (every answer has its counterpart); otherwise the null is the unpaired shuffle.
    """
    if ref_keys is None or cur_keys is None:
        return None
    a, b = list(ref_keys), list(cur_keys)
    if len(set(a)) != len(a) or len(set(b)) != len(b) or set(a) != set(b):
        return None
    pos = {k: i for i, k in enumerate(b)}
    return np.arange(len(a)), np.array([pos[k] for k in a])


@dataclass(frozen=True)
class WassersteinNull:
    """Result of :func:`wasserstein_null` (see the module docstring)."""

    wasserstein: float
    null_mean: float
    null_q95: float
    p_value: float
    excess: float
    excess_ci_low: float
    excess_ci_high: float
    paired: bool
    n_perm: int
    n_boot: int
    n_clusters: int


def _permuted(rng, k: int, z: np.ndarray, pairs: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``k`` permuted label vectors (1 = current) over the pooled rows (shape (k, N))."""
    if pairs is None:
        return z[np.argsort(rng.random((k, z.size)), axis=1)]
    i_ref, i_cur = pairs
    n_ref = int(np.sum(z == 0))
    swap = rng.random((k, i_ref.size)) < 0.5
    out = np.tile(z, (k, 1))
    out[:, i_ref] = swap.astype(z.dtype)
    out[:, n_ref + i_cur] = (~swap).astype(z.dtype)
    return out


def wasserstein_null(
    reference: Any,
    current: Any,
    *,
    ref_keys: Any = None,
    cur_keys: Any = None,
    ref_clusters: Any = None,
    cur_clusters: Any = None,
    n_perm: int = 1000,
    n_boot: int = 1000,
    n_inner: int = 10,
    ci: float = 0.95,
    seed: Any = 0,
) -> WassersteinNull:
    """Normed Wasserstein distance of ``current`` from ``reference`` with its permutation null and excess interval.

    ``ref_keys``/``cur_keys`` (prompt ids) pair the samples when both answer the same prompts
    (:func:`pair_rows`); ``ref_clusters``/``cur_clusters`` (topic or prompt labels, shared
    between the two samples) are the bootstrap's resampling unit (every row its own cluster
    when omitted). ``n_inner`` permutations per bootstrap resample estimate that resample's
    null mean. See the module docstring for the definitions.
    """
    r = np.asarray(reference, dtype=float).reshape(-1)
    c = np.asarray(current, dtype=float).reshape(-1)
    values = np.concatenate([r, c])
    z = np.r_[np.zeros(r.size, dtype=np.int8), np.ones(c.size, dtype=np.int8)]
    pairs = pair_rows(ref_keys, cur_keys)
    rng = np.random.default_rng(seed)
    w_obs = float(weighted_normed_wasserstein(values, (z == 0)[None], (z == 1)[None])[0])
    perm = _permuted(rng, int(n_perm), z, pairs)
    null = weighted_normed_wasserstein(values, perm == 0, perm == 1) if n_perm else np.array([np.nan])
    null_mean = float(np.mean(null))
    if ref_clusters is None or cur_clusters is None:
        codes = np.arange(values.size) if pairs is None else np.r_[np.arange(r.size), pairs[0][np.argsort(pairs[1])]]
    else:
        labels = list(ref_clusters) + list(cur_clusters)
        _, codes = np.unique(np.asarray([str(v) for v in labels], dtype=object), return_inverse=True)
    codes = np.asarray(codes).reshape(-1)
    n_clusters = int(np.unique(codes).size)
    _, codes = np.unique(codes, return_inverse=True)
    draws = []
    if n_boot:
        boot_rng = np.random.default_rng(rng.integers(2**63))
        for m in bootstrap_weights(values.size, int(n_boot), boot_rng.integers(2**63), clusters=codes):
            k = m.shape[0]
            w_star = weighted_normed_wasserstein(values, m * (z == 0), m * (z == 1))
            lab = _permuted(boot_rng, k * n_inner, z, pairs)
            mm = np.repeat(m, n_inner, axis=0)
            inner = weighted_normed_wasserstein(values, mm * (lab == 0), mm * (lab == 1)).reshape(k, n_inner)
            draws.append(w_star - inner.mean(1))
    lo, hi = percentile_ci(np.concatenate(draws), ci) if draws else (float("nan"), float("nan"))
    return WassersteinNull(
        wasserstein=w_obs,
        null_mean=null_mean,
        null_q95=float(np.quantile(null, 0.95)),
        p_value=float((1 + np.sum(null >= w_obs - 1e-12)) / (1 + null.size)) if n_perm else float("nan"),
        excess=w_obs - null_mean,
        excess_ci_low=float(lo),
        excess_ci_high=float(hi),
        paired=pairs is not None,
        n_perm=int(n_perm),
        n_boot=int(n_boot),
        n_clusters=n_clusters,
    )
