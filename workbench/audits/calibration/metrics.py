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

:func:`~workbench.audits.calibration.report.calibration_report` does this through its
``orientation`` argument.

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

The functions here check their arguments
(:mod:`~workbench.audits.calibration.validation`) and compute through the kernels of
:mod:`~workbench.audits.calibration.core`; interval levels are ``ci`` (0.95 = 95%).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from workbench._utils.stats import bootstrap_indices, group_codes, percentile_ci, resample_indices
from workbench._utils.validation import check_ci
from workbench.audits.calibration.core import (
    BrierDecomposition,
    PairwiseAccuracy,
    accuracy_counts,
    bin_pairs,
    binned_ece,
    binned_mce,
    both_orders,
    is_hard_label,
    margin_log_loss,
    murphy_decomposition,
    random_flips,
    top_label_view,
    wilson_interval,
)
from workbench.audits.calibration.validation import (
    ORIENTATIONS,
    STRATEGIES,
    check_bounds,
    check_n_bins,
    check_same_length,
    check_strategy,
    check_temperature,
    validate_inputs,
    validate_prob_label,
)

__all__ = [
    "STRATEGIES",
    "ORIENTATIONS",
    "NLL_EPS",
    "ConfidenceInterval",
    "MetricValue",
    "PairwiseAccuracy",
    "BrierDecomposition",
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
    "bootstrap_distribution",
    "bootstrap_ci",
    "binned_reliability",
]

NLL_EPS = 1e-15


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
    return random_flips(m, y, seed)


def symmetrize(margin: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both orders of every pair: ``(concat(m, -m), concat(y, 1 - y))``.

    The mean label is exactly 0.5, the binned Murphy uncertainty of hard labels is
    exactly 0.25, and a reliability diagram is point-symmetric about (0.5, 0.5).
    The effective sample size is still the number of *pairs*: bootstrap over the
    original pairs, not the doubled rows (as :func:`~workbench.audits.calibration.report.calibration_report` does).
    """
    m, y = validate_inputs(margin, label)
    return both_orders(m, y)


def top_label(prob: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Top-label view: ``confidence = max(p, 1 - p)``, ``agreement = label if p >= 0.5 else 1 - label``.

    ``agreement`` is soft for soft labels (the fraction of annotators who agree
    with the RM's preferred side). It does not depend on the order of a pair,
    except for ``p == 0.5`` exactly, where the first response is taken as the
    RM's pick.
    """
    p, y = validate_prob_label(prob, label)
    return top_label_view(p, y)


# ---------------------------------------------------------------------------
# accuracy and reward gap
# ---------------------------------------------------------------------------


def pairwise_accuracy(margin: Any, label: Any) -> PairwiseAccuracy:
    """Accuracy of ``sign(margin)`` against the human preference, ties kept apart.

    A pair counts as correct when ``margin > 0`` and ``label > 0.5``, or
    ``margin < 0`` and ``label < 0.5``. Human ties (``label == 0.5``) are excluded
    and counted in ``n_label_ties``; model ties (``margin == 0``) are excluded
    from the accuracy and reported as ``tie_rate``. See :class:`PairwiseAccuracy`.
    """
    m, y = validate_inputs(margin, label)
    return accuracy_counts(m, y)


def mean_reward_gap(margin: Any, label: Any) -> float:
    """Mean reward gap towards the human-preferred response: ``mean((2 label - 1) * margin)``.

    Equals ``mean(margin)`` for chosen-first data (``label == 1``); human ties add
    0 and soft labels weigh the margin by the net vote. Invariant to the
    orientation of the pairs.
    """
    m, y = validate_inputs(margin, label)
    return float(np.mean((2.0 * y - 1.0) * m))


# ---------------------------------------------------------------------------
# binned calibration errors
# ---------------------------------------------------------------------------


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
    p, y = validate_prob_label(prob, label)
    return binned_ece(p, y, check_n_bins(n_bins), check_strategy(strategy), check_bounds(bounds))


def maximum_calibration_error(
    prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform", *, bounds=(0.0, 1.0)
) -> float:
    """Largest ``|mean(label)_b - mean(prob)_b|`` over non-empty bins (noisy: one small bin decides it)."""
    p, y = validate_prob_label(prob, label)
    return binned_mce(p, y, check_n_bins(n_bins), check_strategy(strategy), check_bounds(bounds))


def top_label_ece(prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform") -> float:
    """ECE of the top-label view (:func:`top_label`), binned on ``[0.5, 1]``.

    With equal-width bins this equals the ECE of the symmetrised data with
    ``2 * n_bins`` bins on ``[0, 1]`` (up to predictions lying on a bin edge).
    """
    p, y = validate_prob_label(prob, label)
    conf, agree = top_label_view(p, y)
    return binned_ece(conf, agree, check_n_bins(n_bins), check_strategy(strategy), (0.5, 1.0))


# ---------------------------------------------------------------------------
# proper scores
# ---------------------------------------------------------------------------


def brier_score(prob: Any, label: Any) -> float:
    """Mean squared error ``mean((prob - label) ** 2)``; soft labels allowed.

    For vote shares ``q`` this is the Brier score against ``q``; the Brier score
    of the annotator-expanded binary data is this plus ``mean(q (1 - q))``.
    """
    p, y = validate_prob_label(prob, label)
    return float(np.mean((p - y) ** 2))


def negative_log_likelihood(prob: Any, label: Any, eps: float = NLL_EPS) -> float:
    """Mean cross-entropy ``-mean(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``.

    Soft labels give the cross-entropy ``H(q, p)``. For margins, :func:`margin_nll`
    avoids the clipping altogether.
    """
    p, y = validate_prob_label(prob, label)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"`eps` must be in (0, 0.5), got {eps!r}")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def margin_nll(margin: Any, label: Any, temperature: float = 1.0) -> float:
    """NLL of ``sigmoid(margin / temperature)``, computed in log space (no clipping)."""
    m, y = validate_inputs(margin, label)
    return margin_log_loss(m, y, check_temperature(temperature))


def brier_decomposition(prob: Any, label: Any, n_bins: int = 10, strategy: str = "uniform") -> BrierDecomposition:
    """Murphy's binned decomposition ``Brier = REL - RES + UNC (+ residual)``.

    The three-term identity is exact only when predictions are constant within
    bins; the within-bin residual (``within_bin_variance - 2 *
    within_bin_covariance``) is reported so the terms always add up to the Brier
    score. Orient the pairs first: on chosen-first data UNC = RES = 0. See
    :class:`BrierDecomposition`.
    """
    p, y = validate_prob_label(prob, label)
    return murphy_decomposition(p, y, check_n_bins(n_bins), check_strategy(strategy))


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


def bootstrap_distribution(
    fn: Callable[..., dict], arrays: Sequence[np.ndarray], n_boot: int, seed: Any, clusters: Any = None
) -> dict[str, np.ndarray]:
    """Evaluate ``fn(*resampled_arrays) -> dict`` on ``n_boot`` resamples (pairs or whole clusters).

    The resamples are those of :func:`workbench._utils.stats.resample_indices` (one
    generator seeded with ``seed``; whole clusters when ``clusters`` gives one label
    per row). Returns one array of ``n_boot`` values per key of ``fn``'s dict.
    """
    n = len(arrays[0])
    codes = group_codes(clusters, n, "clusters") if clusters is not None else None
    out: dict[str, list] = {}
    for idx in resample_indices(n, n_boot, seed, codes):
        for k, v in fn(*(a[idx] for a in arrays)).items():
            out.setdefault(k, []).append(v)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: Any,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: Any = 0,
    clusters: Any = None,
) -> ConfidenceInterval:
    """Percentile bootstrap interval at level ``ci`` of ``metric(*arrays)``.

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
    ci = check_ci(ci)
    arrs = [np.asarray(a) for a in arrays]
    if any(a.ndim == 0 for a in arrs):
        raise ValueError("every array passed to bootstrap_ci must be at least 1-D")
    check_same_length(**{f"arrays[{i}]": a for i, a in enumerate(arrs)})
    dist = bootstrap_distribution(lambda *a: {"v": float(metric(*a))}, arrs, int(n_boot), seed, clusters)
    return ConfidenceInterval(*percentile_ci(dist["v"], ci))


# ---------------------------------------------------------------------------
# reliability table
# ---------------------------------------------------------------------------


def binned_reliability(
    prob: Any,
    label: Any,
    n_bins: int = 10,
    strategy: str = "uniform",
    *,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: Any = 0,
    bounds=(0.0, 1.0),
) -> pd.DataFrame:
    """Per-bin reliability table, one row per bin (empty bins included with NaN means).

    Columns: ``bin``, ``bin_lower``, ``bin_upper``, ``count``, ``mean_confidence``
    (mean ``prob``), ``mean_outcome`` (mean ``label``), ``gap`` (outcome minus
    confidence), ``ci_low``, ``ci_high`` (an interval at level ``ci`` for the bin's
    outcome: Wilson score interval when all labels are 0/1, a percentile
    bootstrap of the bin mean with ``n_boot`` resamples for soft labels).

    The non-empty rows' ``mean_outcome`` / ``mean_confidence`` equal
    ``sklearn.calibration.calibration_curve``'s ``prob_true`` / ``prob_pred`` for
    the same ``n_bins`` and ``strategy``. For ``strategy="quantile"`` the outer
    edges are the smallest and largest prediction.
    """
    p, y = validate_prob_label(prob, label)
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    ci = check_ci(ci)
    b = bin_pairs(p, y, n_bins, strategy, check_bounds(bounds))
    nz = b.count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(nz, b.sum_prob / b.count, np.nan)
        outcome = np.where(nz, b.sum_label / b.count, np.nan)
    if is_hard_label(y):
        lo, hi = wilson_interval(b.sum_label, b.count, ci)
        lo, hi = np.where(nz, lo, np.nan), np.where(nz, hi, np.nan)
    else:
        lo = np.full(n_bins, np.nan)
        hi = np.full(n_bins, np.nan)
        rng = np.random.default_rng(seed)  # one stream across the bins
        for k in np.flatnonzero(nz):
            yk = y[b.index == k]
            if yk.size == 1:
                lo[k] = hi[k] = yk[0]
                continue
            chunks = bootstrap_indices(yk.size, n_boot, rng, chunk_elems=2_000_000)
            means = np.concatenate([yk[idx].mean(axis=1) for idx in chunks] or [np.empty(0)])
            lo[k], hi[k] = percentile_ci(means, ci)
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
