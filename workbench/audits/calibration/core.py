"""Array kernels of the calibration audit: they take validated float arrays and check nothing.

:mod:`~workbench.audits.calibration.metrics` (the checked public functions),
:mod:`~workbench.audits.calibration.report`, :mod:`~workbench.audits.calibration.methods`
and :mod:`~workbench.audits.calibration.display` all compute through these, so a
number means the same in every table. The conventions (orientation, right-closed
bins, ECE, Murphy decomposition) are described in :mod:`workbench.audits.calibration.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_expit
from scipy.stats import norm

__all__ = [
    "Bins",
    "BrierDecomposition",
    "PairwiseAccuracy",
    "accuracy_counts",
    "apply_orientation",
    "bin_pairs",
    "binned_ece",
    "binned_mce",
    "both_orders",
    "is_hard_label",
    "margin_log_loss",
    "murphy_decomposition",
    "random_flips",
    "top_label_view",
    "wilson_interval",
]


# ---------------------------------------------------------------------------
# orientation
# ---------------------------------------------------------------------------


def random_flips(m: np.ndarray, y: np.ndarray, seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flip each pair with probability 1/2 (``-m``, ``1 - y``); ``seed`` may be a Generator."""
    flip = np.random.default_rng(seed).random(m.size) < 0.5
    return np.where(flip, -m, m), np.where(flip, 1.0 - y, y)


def both_orders(m: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair in both orders: ``(concat(m, -m), concat(y, 1 - y))``."""
    return np.concatenate([m, -m]), np.concatenate([y, 1.0 - y])


def apply_orientation(m: np.ndarray, y: np.ndarray, orientation: str, seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """``"random"`` flips, ``"both"`` symmetrises, ``"as_given"`` keeps the pairs."""
    if orientation == "random":
        return random_flips(m, y, seed)
    if orientation == "both":
        return both_orders(m, y)
    return m, y


def top_label_view(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(max(p, 1 - p), agreement)``; ``p == 0.5`` counts as picking the first response."""
    first = p >= 0.5
    return np.where(first, p, 1.0 - p), np.where(first, y, 1.0 - y)


# ---------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PairwiseAccuracy:
    """Pairwise accuracy with ties reported separately.

    Attributes
    ----------
    accuracy : ``n_correct / (n_correct + n_wrong)``; pairs with a human tie
        (``label == 0.5``) and pairs with ``margin == 0`` are neither successes
        nor errors. NaN when no pair is left.
    tie_rate : fraction of decided pairs (``label != 0.5``) with ``margin == 0``.
    n : all pairs.
    n_decided : pairs with ``label != 0.5``.
    n_correct, n_wrong, n_margin_ties, n_label_ties : counts.
    accuracy_ties_as_half : ``(n_correct + n_margin_ties / 2) / n_decided``, the
        convention that scores a model tie as a coin flip.
    expected_agreement : mean soft agreement ``label if margin > 0 else 1 - label``
        over pairs with ``margin != 0`` (all labels, human ties included): the
        probability that a random annotator agrees with the RM's ordering.
    """

    accuracy: float
    tie_rate: float
    n: int
    n_decided: int
    n_correct: int
    n_wrong: int
    n_margin_ties: int
    n_label_ties: int
    accuracy_ties_as_half: float
    expected_agreement: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def accuracy_counts(m: np.ndarray, y: np.ndarray) -> PairwiseAccuracy:
    """:class:`PairwiseAccuracy` of validated margins and labels."""
    label_tie = y == 0.5
    decided = ~label_tie
    first = y > 0.5
    margin_tie = m == 0
    n_decided = int(decided.sum())
    n_margin_ties = int((decided & margin_tie).sum())
    correct = decided & ~margin_tie & ((m > 0) == first)
    n_correct = int(correct.sum())
    n_wrong = n_decided - n_margin_ties - n_correct
    nan = float("nan")
    scored = n_correct + n_wrong
    moved = ~margin_tie
    return PairwiseAccuracy(
        accuracy=n_correct / scored if scored else nan,
        tie_rate=n_margin_ties / n_decided if n_decided else nan,
        n=int(m.size),
        n_decided=n_decided,
        n_correct=n_correct,
        n_wrong=n_wrong,
        n_margin_ties=n_margin_ties,
        n_label_ties=int(label_tie.sum()),
        accuracy_ties_as_half=(n_correct + 0.5 * n_margin_ties) / n_decided if n_decided else nan,
        expected_agreement=float(np.mean(np.where(m[moved] > 0, y[moved], 1.0 - y[moved]))) if moved.any() else nan,
    )


# ---------------------------------------------------------------------------
# binning
# ---------------------------------------------------------------------------


def bin_edges(p: np.ndarray, n_bins: int, strategy: str, bounds: tuple[float, float]) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(bounds[0], bounds[1], n_bins + 1)
    return np.percentile(p, np.linspace(0.0, 1.0, n_bins + 1) * 100)


@dataclass
class Bins:
    """Per-bin sums of one binning: ``edges``, the bin ``index`` of each sample, counts and sums."""

    edges: np.ndarray
    index: np.ndarray  # bin of each sample
    count: np.ndarray
    sum_prob: np.ndarray
    sum_label: np.ndarray

    @property
    def n(self) -> int:
        return int(self.count.sum())


def bin_pairs(p: np.ndarray, y: np.ndarray, n_bins: int, strategy: str, bounds=(0.0, 1.0)) -> Bins:
    """Right-closed bins (``searchsorted(inner_edges, p, side="left")``), as in scikit-learn."""
    edges = bin_edges(p, n_bins, strategy, bounds)
    idx = np.searchsorted(edges[1:-1], p, side="left")
    return Bins(
        edges=edges,
        index=idx,
        count=np.bincount(idx, minlength=n_bins),
        sum_prob=np.bincount(idx, weights=p, minlength=n_bins),
        sum_label=np.bincount(idx, weights=y, minlength=n_bins),
    )


def binned_ece(p, y, n_bins, strategy, bounds=(0.0, 1.0)) -> float:
    b = bin_pairs(p, y, n_bins, strategy, bounds)
    return float(np.abs(b.sum_label - b.sum_prob).sum() / b.n)


def binned_mce(p, y, n_bins, strategy, bounds=(0.0, 1.0)) -> float:
    b = bin_pairs(p, y, n_bins, strategy, bounds)
    nz = b.count > 0
    return float(np.max(np.abs(b.sum_label[nz] - b.sum_prob[nz]) / b.count[nz]))


# ---------------------------------------------------------------------------
# proper scores
# ---------------------------------------------------------------------------


def margin_log_loss(m: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """NLL of ``sigmoid(m / temperature)`` in log space (no clipping)."""
    z = m / temperature
    return float(-np.mean(y * log_expit(z) + (1.0 - y) * log_expit(-z)))


@dataclass(frozen=True)
class BrierDecomposition:
    """Binned Murphy (1973) decomposition of the Brier score.

    ``reliability - resolution + uncertainty + residual == brier`` exactly (up to
    rounding), where

    * reliability ``= (1/N) sum_k n_k (pbar_k - obar_k)^2`` (lower is better),
    * resolution ``= (1/N) sum_k n_k (obar_k - obar)^2`` (higher is better),
    * uncertainty ``= (1/N) sum_i (y_i - obar)^2``, the Brier score of the base
      rate; it equals ``obar (1 - obar)`` for hard labels (0.25 after
      symmetrisation) and is smaller by ``mean(y (1 - y))`` for soft labels,
    * residual ``= within_bin_variance - 2 * within_bin_covariance`` with
      ``within_bin_variance = (1/N) sum_i (p_i - pbar_k)^2`` and
      ``within_bin_covariance = (1/N) sum_i (p_i - pbar_k)(y_i - obar_k)``.

    The classic three-term identity ``REL - RES + UNC = Brier`` holds only when
    the predictions are constant within every bin (then the residual is 0); with
    continuous predictions the residual is usually small but not zero.
    """

    reliability: float
    resolution: float
    uncertainty: float
    residual: float
    within_bin_variance: float
    within_bin_covariance: float
    brier: float
    n_bins: int
    strategy: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def to_frame(self) -> pd.DataFrame:
        keys = [
            "reliability",
            "resolution",
            "uncertainty",
            "residual",
            "within_bin_variance",
            "within_bin_covariance",
            "brier",
        ]
        return pd.DataFrame({"term": keys, "value": [getattr(self, k) for k in keys]})


def murphy_decomposition(p, y, n_bins, strategy) -> BrierDecomposition:
    """:class:`BrierDecomposition` of validated probabilities and labels."""
    b = bin_pairs(p, y, n_bins, strategy, (0.0, 1.0))
    n = p.size
    nz = b.count > 0
    cnt = np.where(nz, b.count, 1)
    pbar = b.sum_prob / cnt
    obar_k = b.sum_label / cnt
    obar = float(y.mean())
    rel = float(np.sum(b.count * (pbar - obar_k) ** 2) / n)
    res = float(np.sum(b.count * (obar_k - obar) ** 2) / n)
    unc = float(np.mean((y - obar) ** 2))
    dp = p - pbar[b.index]
    dy = y - obar_k[b.index]
    wbv = float(np.mean(dp**2))
    wbc = float(np.mean(dp * dy))
    return BrierDecomposition(
        reliability=rel,
        resolution=res,
        uncertainty=unc,
        residual=wbv - 2.0 * wbc,
        within_bin_variance=wbv,
        within_bin_covariance=wbc,
        brier=float(np.mean((p - y) ** 2)),
        n_bins=n_bins,
        strategy=strategy,
    )


# ---------------------------------------------------------------------------
# intervals of a bin's outcome
# ---------------------------------------------------------------------------


def wilson_interval(k: np.ndarray, n: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval at level ``ci`` for ``k`` successes out of ``n`` (elementwise)."""
    z = norm.ppf((1.0 + ci) / 2.0)
    n = n.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        denom = 1 + z**2 / n
        centre = (phat + z**2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def is_hard_label(y: np.ndarray) -> bool:
    return bool(np.all((y == 0.0) | (y == 1.0)))
