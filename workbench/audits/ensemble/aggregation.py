"""Aggregating member rewards: z-scoring, mean, std, worst case, ``mean - lam * std``, disagreement AUROC.

Definitions (``k`` members, item ``j``, member ``i``)
----------------------------------------------------
* **z-scoring** (``zscore=True``, the RewardBench offline-ensemble convention):
  ``z_ij = (r_ij - mean_j' r_ij') / std_j' r_ij'`` per member over all scored
  texts (population std, ``ddof=0``; a constant member gets std 1). For pairs the
  statistics pool the chosen and the rejected texts, so margins stay comparable.
* **mean**: ``m_j = mean_i z_ij``; **std**: ``s_j = std_i z_ij`` (``ddof=0``);
  **worst-case** (WCO, Coste et al.): ``min_i z_ij``; **uncertainty-penalised**:
  ``m_j - lam * s_j`` (RewardBench's "uncertainty" aggregator for ``lam = 1``;
  Coste et al.'s UWO penalises the variance instead). With two members and
  ``ddof=0``, ``m - s`` equals the minimum, so mean-std and worst-case coincide
  at ``lam = 1``.
* **Disagreement AUROC**: the probability that a pair the mean aggregator gets
  wrong has a larger ``std_margin`` than a pair it gets right (ties count 1/2),
  ``sklearn.metrics.roc_auc_score(mistake, std_margin)``. 0.5 means the
  ensemble's uncertainty carries no information about its errors.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from workbench.audits.ensemble.members import load_members, score_matrix

__all__ = [
    "AGGREGATORS",
    "EnsembleScores",
    "check_lam",
    "disagreement_auroc",
    "ensemble_scores",
    "score_frame",
    "weighted_auroc",
    "zscore_matrix",
]

AGGREGATORS = ("mean", "worst-case", "uncertainty")


def zscore_matrix(matrix: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column z-scores ``(x - mean) / std`` (``ddof=0``; std 0 -> 1). Returns ``(z, means, stds)``."""
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"score matrix must be 2-D (items x members), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("score matrix has non-finite values")
    mu = x.mean(0)
    sd = x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mu) / sd, mu, sd


def check_lam(lam: Any) -> float:
    """The weight of the std penalty: a finite number >= 0."""
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    return float(lam)


def score_frame(
    models_or_matrix: Any,
    prompts: Sequence[str] | None = None,
    responses: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    cache="default",
    progress: bool = False,
) -> pd.DataFrame:
    """An ``items x members`` score frame from a matrix (array or DataFrame) or from member specs.

    Member specs are loaded with :func:`~workbench.audits.ensemble.members.load_members`
    and scored on ``prompts`` / ``responses``; ``names`` renames the columns.
    """
    if isinstance(models_or_matrix, pd.DataFrame):
        mat = models_or_matrix.astype(float)
    elif isinstance(models_or_matrix, np.ndarray):
        if models_or_matrix.ndim != 2:
            raise ValueError(f"score matrix must be 2-D (items x members), got shape {models_or_matrix.shape}")
        mat = pd.DataFrame(
            models_or_matrix.astype(float),
            columns=names or [f"member{i + 1}" for i in range(models_or_matrix.shape[1])],
        )
    else:
        if prompts is None or responses is None:
            raise ValueError("prompts and responses are needed to score with models (or pass a score matrix)")
        mat = score_matrix(load_members(models_or_matrix), prompts, responses, cache=cache, progress=progress)
    if mat.shape[1] < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {mat.shape[1]}")
    if names is not None:
        if len(names) != mat.shape[1]:
            raise ValueError(f"names has {len(names)} entries for {mat.shape[1]} members")
        mat.columns = list(names)
    return mat


@dataclass
class EnsembleScores:
    """Per-item ensemble rewards; ``z`` holds the (optionally z-scored) member scores."""

    raw: pd.DataFrame
    z: pd.DataFrame
    lam: float
    zscored: bool
    member_mean: np.ndarray
    member_std: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.z.to_numpy().mean(1)

    @property
    def std(self) -> np.ndarray:
        return self.z.to_numpy().std(1)

    @property
    def worst(self) -> np.ndarray:
        return self.z.to_numpy().min(1)

    @property
    def penalized(self) -> np.ndarray:
        """``mean - lam * std``."""
        return self.mean - self.lam * self.std

    def to_frame(self) -> pd.DataFrame:
        out = self.z.add_prefix("z_" if self.zscored else "")
        out["mean"], out["std"], out["worst"], out["penalized"] = self.mean, self.std, self.worst, self.penalized
        return out


def ensemble_scores(
    models_or_matrix: Any,
    prompts: Sequence[str] | None = None,
    responses: Sequence[str] | None = None,
    zscore: bool = True,
    lam: float = 1.0,
    *,
    names: Sequence[str] | None = None,
    cache="default",
    progress: bool = False,
) -> EnsembleScores:
    """Per-item mean, std, worst-case and ``mean - lam * std`` over ensemble members.

    ``models_or_matrix`` is a list (or comma-separated string) of RM specs,
    scored on ``prompts``/``responses``, or an ``items x members`` matrix
    (array or DataFrame whose columns name the members).
    """
    lam = check_lam(lam)
    mat = score_frame(models_or_matrix, prompts, responses, names, cache, progress)
    if zscore:
        z, mu, sd = zscore_matrix(mat)
    else:
        z, mu, sd = mat.to_numpy(dtype=float), np.zeros(mat.shape[1]), np.ones(mat.shape[1])
    return EnsembleScores(mat.reset_index(drop=True), pd.DataFrame(z, columns=mat.columns), lam, bool(zscore), mu, sd)


def disagreement_auroc(std_margin: Any, mistakes: Any) -> float:
    """AUROC of ``std_margin`` for predicting ``mistakes`` (1 = the ensemble ranked the pair wrongly).

    ``sklearn.metrics.roc_auc_score(mistakes, std_margin)``; NaN (not an error)
    when all pairs are mistakes or none is, since the AUROC is then undefined.
    """
    s = np.asarray(std_margin, dtype=float).reshape(-1)
    y = np.asarray(mistakes).reshape(-1)
    if s.size != y.size:
        raise ValueError(f"std_margin and mistakes differ in length ({s.size} vs {y.size})")
    if not np.all(np.isfinite(s)):
        raise ValueError("std_margin has non-finite values")
    if y.dtype != bool:
        yf = y.astype(float)
        if not np.all(np.isin(yf, (0.0, 1.0))):
            raise ValueError("mistakes must be boolean or 0/1")
        y = yf.astype(bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))


def weighted_auroc(scores: Any, positives: Any, weights: Any) -> np.ndarray:
    """AUROC of ``scores`` for ``positives`` under each row of case ``weights`` (bootstrap multiplicities).

    ``weights`` is ``(B, n)`` (or ``(n,)``); row ``b`` gives the AUROC of the data in which case
    ``i`` appears ``weights[b, i]`` times, i.e. ``sklearn.metrics.roc_auc_score(positives, scores,
    sample_weight=weights[b])`` (ties in ``scores`` count 1/2), in ``O(B n)`` after one sort.
    NaN where a row has no positive or no negative weight.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    y = np.asarray(positives, dtype=bool).reshape(-1)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != s.size or y.size != s.size:
        raise ValueError(f"scores, positives and weights need {s.size} cases, got {y.size} and {w.shape[1]}")
    neg_s = s[~y]
    order = np.argsort(neg_s, kind="mergesort")
    sorted_neg = neg_s[order]
    cum = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w[:, ~y][:, order], axis=1)], axis=1)
    pos_s = s[y]
    below = cum[:, np.searchsorted(sorted_neg, pos_s, side="left")]  # weight of negatives scored lower
    upto = cum[:, np.searchsorted(sorted_neg, pos_s, side="right")]  # ... lower or equal
    w_pos = w[:, y]
    num = (w_pos * (below + 0.5 * (upto - below))).sum(1)
    den = w_pos.sum(1) * cum[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
