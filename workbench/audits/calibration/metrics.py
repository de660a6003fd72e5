"""Calibration metrics for pairwise (Bradley-Terry) reward-model scores.

Under Bradley-Terry a reward model (RM) predicts, for a pair (A, B),

    P(A preferred over B) = sigmoid((r_A - r_B) / T)

with temperature ``T = 1`` for the raw model. Every function here works on plain
arrays:

``margin``
    ``r(first) - r(second)`` per pair (the first response is normally the one the
    annotators chose).
``label``
    the probability that the *first* response is truly preferred: ``1.0``
    normally, a soft label in ``[0, 1]`` for annotator vote shares, ``0.5`` for a
    human tie.
``groups``
    optional subset / category per pair.

**Orientation.** Benchmark pairs almost always list the chosen response first,
so ``label`` is identically 1 and a reliability diagram of ``sigmoid(margin)``
against ``label`` is degenerate: every bin's outcome is 1, ECE reduces to
``1 - mean(p)`` and the Murphy uncertainty and resolution terms are 0. Proper
scores (Brier, NLL) and accuracy do not depend on the order of a pair, but any
*binned* quantity does. Fix it before binning, with one of

* :func:`orient_pairs` - flip each pair with probability 1/2 (``margin -> -margin``,
  ``label -> 1 - label``) using a seeded generator;
* :func:`symmetrize` - keep both orders; the diagram becomes point-symmetric
  about (0.5, 0.5) and the mean label is exactly 0.5;
* :func:`top_label` - confidence ``max(p, 1 - p)`` against agreement with the
  humans (orientation-free).

:func:`calibration_report` does this through its ``orientation`` argument.

**Binning convention.** ``strategy="uniform"`` uses ``n_bins`` equal-width bins
on ``[0, 1]``; ``strategy="quantile"`` uses the empirical percentiles of the
predictions at ``100 k / n_bins`` (equal-mass bins). A prediction goes to bin
``searchsorted(inner_edges, p, side="left")``, i.e. bins are right-closed
``(e_k, e_{k+1}]`` with the first bin also holding everything at or below
``e_1``. This is the convention of :func:`sklearn.calibration.calibration_curve`,
whose ``prob_true`` / ``prob_pred`` equal the non-empty rows of
:func:`binned_reliability`. (netcal bins left-closed; the two differ only for
predictions lying exactly on an edge.)

ECE is ``sum_b (n_b / N) |mean_label_b - mean_prob_b|`` (Naeini et al. 2015,
Guo et al. 2017), MCE is the largest ``|gap|`` over non-empty bins.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit
from scipy.stats import norm

__all__ = [
    "STRATEGIES",
    "ORIENTATIONS",
    "ConfidenceInterval",
    "MetricValue",
    "PairwiseAccuracy",
    "BrierDecomposition",
    "CalibrationReport",
    "DecisionBoundaryReport",
    "validate_inputs",
    "orient_pairs",
    "symmetrize",
    "top_label",
    "pairwise_accuracy",
    "mean_reward_gap",
    "expected_calibration_error",
    "maximum_calibration_error",
    "top_label_ece",
    "brier_score",
    "brier_decomposition",
    "negative_log_likelihood",
    "margin_nll",
    "bootstrap_ci",
    "binned_reliability",
    "calibration_report",
    "decision_boundary_report",
    "per_group_report",
]

STRATEGIES = ("uniform", "quantile")
ORIENTATIONS = ("random", "both", "as_given")
NLL_EPS = 1e-15


# ---------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------


def _as_1d_float(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D finite float64 array, or a ValueError naming ``name``."""
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


def _check_unit_interval(arr: np.ndarray, name: str, what: str) -> None:
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"`{name}` must lie in [0, 1] ({what}); got values in [{lo:g}, {hi:g}]")


def _check_same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"`{k}` has {n}" for k, n in lengths.items())
        raise ValueError(f"inputs must have the same length: {desc}")


def _validate_label(label: Any, name: str = "label") -> np.ndarray:
    y = _as_1d_float(label, name)
    _check_unit_interval(y, name, "probability that the first response is preferred; 0.5 = tie")
    return y


def validate_inputs(margin: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert ``(margin, label)``.

    Returns float64 copies. Raises ``ValueError`` (naming the argument) when an
    input is not 1-D, is empty, is not numeric, holds NaN/inf, when the lengths
    differ, or when a label is outside ``[0, 1]``.
    """
    m = _as_1d_float(margin, "margin")
    y = _validate_label(label)
    _check_same_length(margin=m, label=y)
    return m, y


def _validate_prob_label(prob: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _as_1d_float(prob, "prob")
    _check_unit_interval(p, "prob", "a probability; pass sigmoid(margin), not the margin")
    y = _validate_label(label)
    _check_same_length(prob=p, label=y)
    return p, y


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def _check_strategy(strategy: Any) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


def _check_orientation(orientation: Any) -> str:
    if orientation not in ORIENTATIONS:
        raise ValueError(f"`orientation` must be one of {ORIENTATIONS}, got {orientation!r}")
    return orientation


def _check_temperature(temperature: Any) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"`temperature` must be a positive number, got {temperature!r}") from None
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"`temperature` must be a positive finite number, got {temperature!r}")
    return t


def _check_alpha(alpha: Any) -> float:
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    return a


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# orientation
# ---------------------------------------------------------------------------


def orient_pairs(margin: Any, label: Any, seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """Randomly orient pairs: flip each with probability 1/2.

    A flipped pair becomes ``(-margin, 1 - label)``, i.e. the same comparison
    listed in the other order. ``seed`` (int, ``None`` or a
    ``numpy.random.Generator``) makes the flips reproducible. Proper scores
    (Brier, NLL), accuracy and the mean reward gap are unchanged by flipping.
    """
    m, y = validate_inputs(margin, label)
    flip = _rng(seed).random(m.size) < 0.5
    return np.where(flip, -m, m), np.where(flip, 1.0 - y, y)


def symmetrize(margin: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both orders of every pair: ``(concat(m, -m), concat(y, 1 - y))``.

    The mean label is exactly 0.5, the binned Murphy uncertainty of hard labels is
    exactly 0.25, and a reliability diagram is point-symmetric about (0.5, 0.5).
    The effective sample size is still the number of *pairs*: bootstrap over the
    original pairs, not the doubled rows (as :func:`calibration_report` does).
    """
    m, y = validate_inputs(margin, label)
    return np.concatenate([m, -m]), np.concatenate([y, 1.0 - y])


def _orient(m: np.ndarray, y: np.ndarray, orientation: str, seed: Any) -> tuple[np.ndarray, np.ndarray]:
    """Apply an orientation to validated arrays (``"both"`` symmetrises)."""
    if orientation == "random":
        return orient_pairs(m, y, seed=seed)
    if orientation == "both":
        return symmetrize(m, y)
    return m, y


def _warn_if_degenerate(y: np.ndarray, orientation: str) -> None:
    if orientation == "as_given" and y.size > 1 and np.all(y == y[0]):
        warnings.warn(
            f"all labels equal {y[0]:g} with orientation='as_given': binned calibration metrics "
            "(ECE, MCE, reliability diagram, Brier decomposition) are degenerate for pairs that "
            "always list the chosen response first; use orientation='random' or 'both'",
            UserWarning,
            stacklevel=3,
        )


def top_label(prob: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Top-label view: ``confidence = max(p, 1 - p)``, ``agreement = label if p >= 0.5 else 1 - label``.

    ``agreement`` is soft for soft labels (the fraction of annotators who agree
    with the RM's preferred side). It does not depend on the order of a pair,
    except for ``p == 0.5`` exactly, where the first response is taken as the
    RM's pick.
    """
    p, y = _validate_prob_label(prob, label)
    return _top_label(p, y)


def _top_label(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = p >= 0.5
    return np.where(first, p, 1.0 - p), np.where(first, y, 1.0 - y)


# ---------------------------------------------------------------------------
# accuracy and reward gap
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


def _accuracy_counts(m: np.ndarray, y: np.ndarray) -> PairwiseAccuracy:
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


def pairwise_accuracy(margin: Any, label: Any) -> PairwiseAccuracy:
    """Accuracy of ``sign(margin)`` against the human preference, ties kept apart.

    A pair counts as correct when ``margin > 0`` and ``label > 0.5``, or
    ``margin < 0`` and ``label < 0.5``. Human ties (``label == 0.5``) are excluded
    and counted in ``n_label_ties``; model ties (``margin == 0``) are excluded
    from the accuracy and reported as ``tie_rate``. See :class:`PairwiseAccuracy`.
    """
    m, y = validate_inputs(margin, label)
    return _accuracy_counts(m, y)


def mean_reward_gap(margin: Any, label: Any) -> float:
    """Mean reward gap towards the human-preferred response: ``mean((2 label - 1) * margin)``.

    Equals ``mean(margin)`` for chosen-first data (``label == 1``); human ties add
    0 and soft labels weigh the margin by the net vote. Invariant to the
    orientation of the pairs.
    """
    m, y = validate_inputs(margin, label)
    return float(np.mean((2.0 * y - 1.0) * m))


# ---------------------------------------------------------------------------
# binning
# ---------------------------------------------------------------------------


def _bin_edges(p: np.ndarray, n_bins: int, strategy: str, bounds: tuple[float, float]) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(bounds[0], bounds[1], n_bins + 1)
    return np.percentile(p, np.linspace(0.0, 1.0, n_bins + 1) * 100)


@dataclass
class _Bins:
    edges: np.ndarray
    index: np.ndarray  # bin of each sample
    count: np.ndarray
    sum_prob: np.ndarray
    sum_label: np.ndarray

    @property
    def n(self) -> int:
        return int(self.count.sum())


def _binned(p: np.ndarray, y: np.ndarray, n_bins: int, strategy: str, bounds=(0.0, 1.0)) -> _Bins:
    edges = _bin_edges(p, n_bins, strategy, bounds)
    idx = np.searchsorted(edges[1:-1], p, side="left")
    return _Bins(
        edges=edges,
        index=idx,
        count=np.bincount(idx, minlength=n_bins),
        sum_prob=np.bincount(idx, weights=p, minlength=n_bins),
        sum_label=np.bincount(idx, weights=y, minlength=n_bins),
    )


def _ece(p, y, n_bins, strategy, bounds=(0.0, 1.0)) -> float:
    b = _binned(p, y, n_bins, strategy, bounds)
    return float(np.abs(b.sum_label - b.sum_prob).sum() / b.n)


def _mce(p, y, n_bins, strategy, bounds=(0.0, 1.0)) -> float:
    b = _binned(p, y, n_bins, strategy, bounds)
    nz = b.count > 0
    return float(np.max(np.abs(b.sum_label[nz] - b.sum_prob[nz]) / b.count[nz]))


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"`bounds` must be a pair (low, high), got {bounds!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"`bounds` must satisfy 0 <= low < high <= 1, got {bounds!r}")
    return lo, hi


def expected_calibration_error(
    prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform", *, bounds=(0.0, 1.0)
) -> float:
    """Binned expected calibration error ``sum_b (n_b / N) |mean(label)_b - mean(prob)_b|``.

    Positive-class reliability of ``prob`` (the probability that the first
    response wins) against ``label`` (hard or soft). Orient the pairs first
    (module docstring). ``bounds`` sets the range of the equal-width bins
    (``strategy="uniform"`` only; values outside go to the outer bins).
    With soft labels the result equals the ECE of the annotator-expanded binary
    data.
    """
    p, y = _validate_prob_label(prob, label)
    return _ece(p, y, _check_n_bins(n_bins), _check_strategy(strategy), _check_bounds(bounds))


def maximum_calibration_error(
    prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform", *, bounds=(0.0, 1.0)
) -> float:
    """Largest ``|mean(label)_b - mean(prob)_b|`` over non-empty bins (noisy: one small bin decides it)."""
    p, y = _validate_prob_label(prob, label)
    return _mce(p, y, _check_n_bins(n_bins), _check_strategy(strategy), _check_bounds(bounds))


def top_label_ece(prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform") -> float:
    """ECE of the top-label view (:func:`top_label`), binned on ``[0.5, 1]``.

    With equal-width bins this equals the ECE of the symmetrised data with
    ``2 * n_bins`` bins on ``[0, 1]`` (up to predictions lying on a bin edge).
    """
    p, y = _validate_prob_label(prob, label)
    conf, agree = _top_label(p, y)
    return _ece(conf, agree, _check_n_bins(n_bins), _check_strategy(strategy), (0.5, 1.0))


# ---------------------------------------------------------------------------
# proper scores
# ---------------------------------------------------------------------------


def brier_score(prob: Any, label: Any) -> float:
    """Mean squared error ``mean((prob - label) ** 2)``; soft labels allowed.

    For vote shares ``q`` this is the Brier score against ``q``; the Brier score
    of the annotator-expanded binary data is this plus ``mean(q (1 - q))``.
    """
    p, y = _validate_prob_label(prob, label)
    return float(np.mean((p - y) ** 2))


def negative_log_likelihood(prob: Any, label: Any, eps: float = NLL_EPS) -> float:
    """Mean cross-entropy ``-mean(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``.

    Soft labels give the cross-entropy ``H(q, p)``. For margins, :func:`margin_nll`
    avoids the clipping altogether.
    """
    p, y = _validate_prob_label(prob, label)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"`eps` must be in (0, 0.5), got {eps!r}")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _margin_nll(m: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    z = m / temperature
    return float(-np.mean(y * log_expit(z) + (1.0 - y) * log_expit(-z)))


def margin_nll(margin: Any, label: Any, temperature: float = 1.0) -> float:
    """NLL of ``sigmoid(margin / temperature)``, computed in log space (no clipping)."""
    m, y = validate_inputs(margin, label)
    return _margin_nll(m, y, _check_temperature(temperature))


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


def _brier_decomposition(p, y, n_bins, strategy) -> BrierDecomposition:
    b = _binned(p, y, n_bins, strategy, (0.0, 1.0))
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


def brier_decomposition(prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform") -> BrierDecomposition:
    """Murphy's binned decomposition ``Brier = REL - RES + UNC (+ residual)``.

    The three-term identity is exact only when predictions are constant within
    bins; the within-bin residual (``within_bin_variance - 2 *
    within_bin_covariance``) is reported so the terms always add up to the Brier
    score. Orient the pairs first: on chosen-first data UNC = RES = 0. See
    :class:`BrierDecomposition`.
    """
    p, y = _validate_prob_label(prob, label)
    return _brier_decomposition(p, y, _check_n_bins(n_bins), _check_strategy(strategy))


# ---------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------


class ConfidenceInterval(NamedTuple):
    low: float
    high: float


class MetricValue(NamedTuple):
    value: float
    ci_low: float
    ci_high: float


def _cluster_members(clusters: Any, n: int) -> list[np.ndarray]:
    codes, _ = pd.factorize(pd.Series(np.asarray(clusters, dtype=object)))
    if len(codes) != n:
        raise ValueError(f"`clusters` must have one entry per pair: got {len(codes)} for {n} pairs")
    if (codes < 0).any():
        raise ValueError("`clusters` contains missing values")
    order = np.argsort(codes, kind="stable")
    splits = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, splits)


def _bootstrap_distribution(
    fn: Callable[..., dict], arrays: Sequence[np.ndarray], n_boot: int, seed: Any, clusters: Any = None
) -> dict[str, np.ndarray]:
    """Evaluate ``fn(*resampled_arrays) -> dict`` on ``n_boot`` resamples (pairs or whole clusters)."""
    n = len(arrays[0])
    rng = _rng(seed)
    members = _cluster_members(clusters, n) if clusters is not None else None
    out: dict[str, list] = {}
    for _ in range(n_boot):
        if members is None:
            idx = rng.integers(0, n, n)
        else:
            pick = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[c] for c in pick])
        for k, v in fn(*(a[idx] for a in arrays)).items():
            out.setdefault(k, []).append(v)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _percentile_ci(values: np.ndarray, alpha: float) -> ConfidenceInterval:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return ConfidenceInterval(float("nan"), float("nan"))
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return ConfidenceInterval(float(lo), float(hi))


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: Any,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: Any = 0,
    clusters: Any = None,
) -> ConfidenceInterval:
    """Percentile bootstrap ``(1 - alpha)`` interval of ``metric(*arrays)``.

    The arrays are resampled jointly (same row indices). With ``clusters`` (one
    id per row, e.g. the prompt id) whole clusters are resampled, which is the
    right thing when pairs share prompts or responses. Resamples on which the
    metric is NaN are ignored. Returns ``ConfidenceInterval(low, high)``.

    Example: ``bootstrap_ci(brier_score, prob, label, n_boot=2000)``.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"`n_boot` must be a positive integer, got {n_boot!r}")
    alpha = _check_alpha(alpha)
    arrs = [np.asarray(a) for a in arrays]
    if any(a.ndim == 0 for a in arrs):
        raise ValueError("every array passed to bootstrap_ci must be at least 1-D")
    _check_same_length(**{f"arrays[{i}]": a for i, a in enumerate(arrs)})
    dist = _bootstrap_distribution(lambda *a: {"v": float(metric(*a))}, arrs, int(n_boot), seed, clusters)
    return _percentile_ci(dist["v"], alpha)


# ---------------------------------------------------------------------------
# reliability table
# ---------------------------------------------------------------------------


def _wilson(k: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    z = norm.ppf(1 - alpha / 2)
    n = n.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        denom = 1 + z**2 / n
        centre = (phat + z**2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def _is_hard(y: np.ndarray) -> bool:
    return bool(np.all((y == 0.0) | (y == 1.0)))


def binned_reliability(
    prob: Any,
    label: Any,
    n_bins: int = 10,
    strategy: str = "uniform",
    *,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: Any = 0,
    bounds=(0.0, 1.0),
) -> pd.DataFrame:
    """Per-bin reliability table, one row per bin (empty bins included with NaN means).

    Columns: ``bin``, ``bin_lower``, ``bin_upper``, ``count``, ``mean_confidence``
    (mean ``prob``), ``mean_outcome`` (mean ``label``), ``gap`` (outcome minus
    confidence), ``ci_low``, ``ci_high`` (a ``1 - alpha`` interval for the bin's
    outcome: Wilson score interval when all labels are 0/1, a percentile
    bootstrap of the bin mean with ``n_boot`` resamples for soft labels).

    The non-empty rows' ``mean_outcome`` / ``mean_confidence`` equal
    ``sklearn.calibration.calibration_curve``'s ``prob_true`` / ``prob_pred`` for
    the same ``n_bins`` and ``strategy``. For ``strategy="quantile"`` the outer
    edges are the smallest and largest prediction.
    """
    p, y = _validate_prob_label(prob, label)
    n_bins = _check_n_bins(n_bins)
    strategy = _check_strategy(strategy)
    alpha = _check_alpha(alpha)
    b = _binned(p, y, n_bins, strategy, _check_bounds(bounds))
    nz = b.count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(nz, b.sum_prob / b.count, np.nan)
        outcome = np.where(nz, b.sum_label / b.count, np.nan)
    if _is_hard(y):
        lo, hi = _wilson(b.sum_label, b.count, alpha)
        lo, hi = np.where(nz, lo, np.nan), np.where(nz, hi, np.nan)
    else:
        lo = np.full(n_bins, np.nan)
        hi = np.full(n_bins, np.nan)
        rng = _rng(seed)
        for k in np.flatnonzero(nz):
            yk = y[b.index == k]
            if yk.size == 1:
                lo[k] = hi[k] = yk[0]
                continue
            means = np.empty(n_boot)
            chunk = max(1, 2_000_000 // yk.size)
            for start in range(0, n_boot, chunk):
                stop = min(n_boot, start + chunk)
                means[start:stop] = yk[rng.integers(0, yk.size, (stop - start, yk.size))].mean(axis=1)
            lo[k], hi[k] = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "bin_lower": b.edges[:-1],
            "bin_upper": b.edges[1:],
            "count": b.count.astype(int),
            "mean_confidence": conf,
            "mean_outcome": outcome,
            "gap": outcome - conf,
            "ci_low": lo,
            "ci_high": hi,
        }
    )


# ---------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------

REPORT_METRICS = (
    "accuracy",
    "tie_rate",
    "mean_reward_gap",
    "ece_uniform",
    "ece_quantile",
    "mce",
    "brier",
    "brier_reliability",
    "brier_resolution",
    "brier_uncertainty",
    "brier_residual",
    "nll",
    "top_label_ece",
)


def _point_metrics(
    m: np.ndarray, y: np.ndarray, *, symmetric: bool, n_bins: int, strategy: str, temperature: float
) -> dict[str, float]:
    """All report metrics for one (already oriented, validated) sample of pairs."""
    acc = _accuracy_counts(m, y)
    gap = float(np.mean((2.0 * y - 1.0) * m))
    nll = _margin_nll(m, y, temperature)  # orientation-invariant
    if symmetric:
        m, y = np.concatenate([m, -m]), np.concatenate([y, 1.0 - y])
    p = expit(m / temperature)
    dec = _brier_decomposition(p, y, n_bins, strategy)
    conf, agree = _top_label(p, y)
    return {
        "accuracy": acc.accuracy,
        "tie_rate": acc.tie_rate,
        "mean_reward_gap": gap,
        "ece_uniform": _ece(p, y, n_bins, "uniform"),
        "ece_quantile": _ece(p, y, n_bins, "quantile"),
        "mce": _mce(p, y, n_bins, strategy),
        "brier": dec.brier,
        "brier_reliability": dec.reliability,
        "brier_resolution": dec.resolution,
        "brier_uncertainty": dec.uncertainty,
        "brier_residual": dec.residual,
        "nll": nll,
        "top_label_ece": _ece(conf, agree, n_bins, strategy, (0.5, 1.0)),
    }


@dataclass
class CalibrationReport:
    """Result of :func:`calibration_report`.

    ``metrics`` maps a metric name to ``MetricValue(value, ci_low, ci_high)``
    (also available as ``report["ece_uniform"]``); ``accuracy`` holds the full
    :class:`PairwiseAccuracy`, ``decomposition`` the :class:`BrierDecomposition`
    and ``reliability`` the :func:`binned_reliability` table of the oriented
    data (``prob``, ``label``), which :meth:`plot` draws.
    """

    metrics: dict[str, MetricValue]
    accuracy: PairwiseAccuracy
    decomposition: BrierDecomposition
    reliability: pd.DataFrame
    prob: np.ndarray = field(repr=False)
    label: np.ndarray = field(repr=False)
    n_pairs: int = 0
    n_bins: int = 10
    strategy: str = "uniform"
    orientation: str = "random"
    temperature: float = 1.0
    n_boot: int = 0
    alpha: float = 0.05
    seed: Any = 0

    def __getitem__(self, name: str) -> MetricValue:
        return self.metrics[name]

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: ``metric, value, ci_low, ci_high`` (CI NaN when ``n_boot=0``)."""
        return pd.DataFrame(
            [(k, v.value, v.ci_low, v.ci_high) for k, v in self.metrics.items()],
            columns=["metric", "value", "ci_low", "ci_high"],
        )

    def plot(self, ax=None, *, title: str | None = None):
        """Reliability diagram of the oriented data (a :class:`~workbench.audits.calibration.display.ReliabilityDisplay`)."""
        from workbench.audits.calibration.display import ReliabilityDisplay

        if title is None:
            title = f"Reliability ({self.orientation} orientation, T = {self.temperature:g}, n = {self.n_pairs})"
        disp = ReliabilityDisplay(
            self.reliability,
            ece=self.metrics["ece_uniform" if self.strategy == "uniform" else "ece_quantile"].value,
            n_bins=self.n_bins,
            strategy=self.strategy,
            title=title,
        )
        return disp.plot(ax=ax)


def calibration_report(
    margin: Any,
    label: Any,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    orientation: str = "random",
    seed: Any = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
    temperature: float = 1.0,
    clusters: Any = None,
) -> CalibrationReport:
    """Calibration audit of ``p = sigmoid(margin / temperature)`` against ``label``.

    Parameters
    ----------
    orientation : ``"random"`` flips each pair with probability 1/2
        (:func:`orient_pairs` with ``seed``); ``"both"`` uses both orders
        (:func:`symmetrize`; deterministic, the diagram is point-symmetric);
        ``"as_given"`` keeps the pairs as stored (degenerate for chosen-first
        data: a warning is issued when all labels are equal).
    strategy : binning of the reliability table, MCE, the Brier decomposition
        and the top-label ECE. ``ece_uniform`` and ``ece_quantile`` are always
        both reported.
    n_boot : bootstrap resamples for the CIs (0 = no CIs). Resampling is over
        *pairs* (or ``clusters``, e.g. prompt ids), never over the doubled rows
        of ``"both"``; the orientation of ``"random"`` is held fixed. The
        bootstrap generator is seeded with ``seed + 1`` when ``seed`` is an int.

    Metrics: accuracy, tie_rate (see :func:`pairwise_accuracy`),
    mean_reward_gap, ece_uniform, ece_quantile, mce, brier and its Murphy terms
    (brier_reliability, _resolution, _uncertainty, _residual), nll and
    top_label_ece (bins on [0.5, 1]).
    """
    m, y = validate_inputs(margin, label)
    n_bins = _check_n_bins(n_bins)
    strategy = _check_strategy(strategy)
    orientation = _check_orientation(orientation)
    temperature = _check_temperature(temperature)
    alpha = _check_alpha(alpha)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"`n_boot` must be a non-negative integer, got {n_boot!r}")
    _warn_if_degenerate(y, orientation)

    if orientation == "random":
        m, y = orient_pairs(m, y, seed=seed)
    symmetric = orientation == "both"
    kw = dict(symmetric=symmetric, n_bins=n_bins, strategy=strategy, temperature=temperature)
    point = _point_metrics(m, y, **kw)
    if n_boot > 0:
        boot_seed = seed + 1 if isinstance(seed, (int, np.integer)) else seed
        dist = _bootstrap_distribution(lambda a, b: _point_metrics(a, b, **kw), [m, y], n_boot, boot_seed, clusters)
        cis = {k: _percentile_ci(v, alpha) for k, v in dist.items()}
    else:
        cis = {k: ConfidenceInterval(float("nan"), float("nan")) for k in point}
    metrics = {k: MetricValue(point[k], cis[k].low, cis[k].high) for k in REPORT_METRICS}

    pm, py = (np.concatenate([m, -m]), np.concatenate([y, 1.0 - y])) if symmetric else (m, y)
    prob = expit(pm / temperature)
    table = binned_reliability(prob, py, n_bins, strategy, alpha=alpha, n_boot=max(n_boot, 200), seed=seed)
    return CalibrationReport(
        metrics=metrics,
        accuracy=_accuracy_counts(m, y),
        decomposition=_brier_decomposition(prob, py, n_bins, strategy),
        reliability=table,
        prob=prob,
        label=py,
        n_pairs=int(m.size),
        n_bins=n_bins,
        strategy=strategy,
        orientation=orientation,
        temperature=temperature,
        n_boot=int(n_boot),
        alpha=alpha,
        seed=seed,
    )


@dataclass
class DecisionBoundaryReport:
    """Result of :func:`decision_boundary_report`.

    ``sufficient`` is False (and ``message`` says why) when fewer than
    ``min_pairs`` pairs fall in the band; metrics are then still computed when
    at least one pair is there, NaN otherwise.
    """

    band: float
    n: int
    n_total: int
    sufficient: bool
    message: str
    metrics: dict[str, float]
    temperature: float = 1.0

    @property
    def fraction(self) -> float:
        return self.n / self.n_total if self.n_total else float("nan")

    def to_frame(self) -> pd.DataFrame:
        rows = [("n", float(self.n)), ("fraction", self.fraction)] + list(self.metrics.items())
        return pd.DataFrame(rows, columns=["metric", "value"])


def decision_boundary_report(
    margin: Any,
    label: Any,
    band: float = 0.1,
    *,
    temperature: float = 1.0,
    n_bins: int = 5,
    min_pairs: int = 30,
) -> DecisionBoundaryReport:
    """Metrics on the pairs the RM finds hard: ``|sigmoid(margin / T) - 0.5| <= band``.

    Near the boundary a calibrated RM should agree with humans only slightly
    more than half the time. Everything here is orientation-free: accuracy and
    tie rate (:func:`pairwise_accuracy`), ``mean_confidence`` and
    ``mean_agreement`` of the top-label view, their difference
    ``agreement_minus_confidence``, ``top_label_ece`` with ``n_bins`` equal-width
    bins on ``[0.5, 0.5 + band]``, Brier, NLL and the mean reward gap.
    """
    m, y = validate_inputs(margin, label)
    temperature = _check_temperature(temperature)
    band = float(band)
    if not 0.0 < band <= 0.5:
        raise ValueError(f"`band` must be in (0, 0.5], got {band!r}")
    n_bins = _check_n_bins(n_bins)
    p = expit(m / temperature)
    inside = np.abs(p - 0.5) <= band
    n = int(inside.sum())
    names = [
        "accuracy",
        "tie_rate",
        "mean_confidence",
        "mean_agreement",
        "agreement_minus_confidence",
        "top_label_ece",
        "brier",
        "nll",
        "mean_reward_gap",
    ]
    if n == 0:
        metrics = {k: float("nan") for k in names}
    else:
        mi, yi, pi = m[inside], y[inside], p[inside]
        acc = _accuracy_counts(mi, yi)
        conf, agree = _top_label(pi, yi)
        metrics = {
            "accuracy": acc.accuracy,
            "tie_rate": acc.tie_rate,
            "mean_confidence": float(conf.mean()),
            "mean_agreement": float(agree.mean()),
            "agreement_minus_confidence": float(agree.mean() - conf.mean()),
            "top_label_ece": _ece(conf, agree, n_bins, "uniform", (0.5, 0.5 + band)),
            "brier": float(np.mean((pi - yi) ** 2)),
            "nll": _margin_nll(mi, yi, temperature),
            "mean_reward_gap": float(np.mean((2 * yi - 1) * mi)),
        }
    sufficient = n >= min_pairs
    if n == 0:
        message = f"no pair has |p - 0.5| <= {band:g}; metrics are NaN"
    elif not sufficient:
        message = (
            f"only {n} of {m.size} pairs have |p - 0.5| <= {band:g} (fewer than min_pairs={min_pairs}); "
            "metrics are too noisy to interpret"
        )
    else:
        message = f"{n} of {m.size} pairs ({n / m.size:.1%}) have |p - 0.5| <= {band:g}"
    return DecisionBoundaryReport(
        band=band,
        n=n,
        n_total=int(m.size),
        sufficient=sufficient,
        message=message,
        metrics=metrics,
        temperature=temperature,
    )


def _group_order(codes_unique: np.ndarray) -> list:
    try:
        return sorted(codes_unique.tolist())
    except TypeError:
        return codes_unique.tolist()


def per_group_report(
    margin: Any,
    label: Any,
    groups: Any,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    orientation: str = "random",
    seed: Any = 0,
    temperature: float = 1.0,
    n_boot: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per group: ``group, n, accuracy, tie_rate, ece, brier, nll, mean_reward_gap``.

    The orientation (same meaning as in :func:`calibration_report`) is applied to
    all pairs at once, so a group's pairs are flipped exactly as in the overall
    report. ``ece`` uses ``n_bins`` bins of ``strategy``; with few pairs per
    group it is dominated by binning noise, so pass ``n_boot > 0`` to add
    ``ece_ci_low``/``ece_ci_high`` and ``accuracy_ci_low``/``accuracy_ci_high``.
    Groups are sorted when their labels are sortable.
    """
    m, y = validate_inputs(margin, label)
    g = np.asarray(groups, dtype=object)
    if g.ndim != 1:
        raise ValueError(f"`groups` must be a 1-D array, got shape {g.shape}")
    _check_same_length(margin=m, groups=g)
    if pd.isna(pd.Series(g)).any():
        raise ValueError("`groups` contains missing values")
    n_bins = _check_n_bins(n_bins)
    strategy = _check_strategy(strategy)
    orientation = _check_orientation(orientation)
    temperature = _check_temperature(temperature)
    alpha = _check_alpha(alpha)
    if orientation == "random":
        m, y = orient_pairs(m, y, seed=seed)
    symmetric = orientation == "both"
    kw = dict(symmetric=symmetric, n_bins=n_bins, strategy=strategy, temperature=temperature)

    rows = []
    for name in _group_order(pd.unique(pd.Series(g))):
        sel = g == name
        mg, yg = m[sel], y[sel]
        pm = _point_metrics(mg, yg, **kw)
        ece_key = "ece_uniform" if strategy == "uniform" else "ece_quantile"
        row = {
            "group": name,
            "n": int(sel.sum()),
            "accuracy": pm["accuracy"],
            "tie_rate": pm["tie_rate"],
            "ece": pm[ece_key],
            "brier": pm["brier"],
            "nll": pm["nll"],
            "mean_reward_gap": pm["mean_reward_gap"],
        }
        if n_boot > 0:
            boot_seed = seed + 1 if isinstance(seed, (int, np.integer)) else seed
            dist = _bootstrap_distribution(lambda a, b: _point_metrics(a, b, **kw), [mg, yg], n_boot, boot_seed)
            row["accuracy_ci_low"], row["accuracy_ci_high"] = _percentile_ci(dist["accuracy"], alpha)
            row["ece_ci_low"], row["ece_ci_high"] = _percentile_ci(dist[ece_key], alpha)
        rows.append(row)
    return pd.DataFrame(rows)
