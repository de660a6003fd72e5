"""Calibration reports of scored pairs: all metrics at once, the decision boundary, per-group tables.

:func:`calibration_report` orients the pairs (``orientation``), computes every
metric of :mod:`~workbench.audits.calibration.metrics` with bootstrap CIs and the
reliability table, and returns a :class:`CalibrationReport` whose :meth:`~CalibrationReport.plot`
draws a :class:`~workbench.audits.calibration.display.ReliabilityDisplay`.
:func:`decision_boundary_report` looks at the pairs the RM finds hard and
:func:`per_group_report` splits the metrics by subset or category.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from workbench._utils.stats import percentile_ci
from workbench._utils.validation import check_ci, check_n_boot
from workbench.audits.calibration.core import (
    BrierDecomposition,
    PairwiseAccuracy,
    accuracy_counts,
    binned_ece,
    binned_mce,
    both_orders,
    margin_log_loss,
    murphy_decomposition,
    random_flips,
    top_label_view,
)
from workbench.audits.calibration.display import ReliabilityDisplay
from workbench.audits.calibration.metrics import (
    ConfidenceInterval,
    MetricValue,
    binned_reliability,
    bootstrap_distribution,
)
from workbench.audits.calibration.validation import (
    check_n_bins,
    check_orientation,
    check_same_length,
    check_strategy,
    check_temperature,
    validate_inputs,
)

__all__ = [
    "REPORT_METRICS",
    "CalibrationReport",
    "DecisionBoundaryReport",
    "calibration_report",
    "decision_boundary_report",
    "per_group_report",
]


def _warn_if_degenerate(y: np.ndarray, orientation: str) -> None:
    if orientation == "as_given" and y.size > 1 and np.all(y == y[0]):
        warnings.warn(
            f"all labels equal {y[0]:g} with orientation='as_given': binned calibration metrics "
            "(ECE, MCE, reliability diagram, Brier decomposition) are degenerate for pairs that "
            "always list the chosen response first; use orientation='random' or 'both'",
            UserWarning,
            stacklevel=3,
        )


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
    acc = accuracy_counts(m, y)
    gap = float(np.mean((2.0 * y - 1.0) * m))
    nll = margin_log_loss(m, y, temperature)  # orientation-invariant
    if symmetric:
        m, y = both_orders(m, y)
    p = expit(m / temperature)
    dec = murphy_decomposition(p, y, n_bins, strategy)
    conf, agree = top_label_view(p, y)
    return {
        "accuracy": acc.accuracy,
        "tie_rate": acc.tie_rate,
        "mean_reward_gap": gap,
        "ece_uniform": binned_ece(p, y, n_bins, "uniform"),
        "ece_quantile": binned_ece(p, y, n_bins, "quantile"),
        "mce": binned_mce(p, y, n_bins, strategy),
        "brier": dec.brier,
        "brier_reliability": dec.reliability,
        "brier_resolution": dec.resolution,
        "brier_uncertainty": dec.uncertainty,
        "brier_residual": dec.residual,
        "nll": nll,
        "top_label_ece": binned_ece(conf, agree, n_bins, strategy, (0.5, 1.0)),
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
    ci: float = 0.95
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
    ci: float = 0.95,
    temperature: float = 1.0,
    clusters: Any = None,
) -> CalibrationReport:
    """Calibration audit of ``p = sigmoid(margin / temperature)`` against ``label``.

    Parameters
    ----------
    orientation : ``"random"`` flips each pair with probability 1/2
        (:func:`~workbench.audits.calibration.metrics.orient_pairs` with ``seed``); ``"both"`` uses both
        orders (:func:`~workbench.audits.calibration.metrics.symmetrize`; deterministic, the diagram is point-symmetric);
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
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    orientation = check_orientation(orientation)
    temperature = check_temperature(temperature)
    ci = check_ci(ci)
    n_boot = check_n_boot(n_boot)
    _warn_if_degenerate(y, orientation)

    if orientation == "random":
        m, y = random_flips(m, y, seed)
    symmetric = orientation == "both"
    kw = dict(symmetric=symmetric, n_bins=n_bins, strategy=strategy, temperature=temperature)
    point = _point_metrics(m, y, **kw)
    if n_boot > 0:
        boot_seed = seed + 1 if isinstance(seed, (int, np.integer)) else seed
        dist = bootstrap_distribution(lambda a, b: _point_metrics(a, b, **kw), [m, y], n_boot, boot_seed, clusters)
        cis = {k: ConfidenceInterval(*percentile_ci(v, ci)) for k, v in dist.items()}
    else:
        cis = {k: ConfidenceInterval(float("nan"), float("nan")) for k in point}
    metrics = {k: MetricValue(point[k], cis[k].low, cis[k].high) for k in REPORT_METRICS}

    pm, py = both_orders(m, y) if symmetric else (m, y)
    prob = expit(pm / temperature)
    table = binned_reliability(prob, py, n_bins, strategy, ci=ci, n_boot=max(n_boot, 200), seed=seed)
    return CalibrationReport(
        metrics=metrics,
        accuracy=accuracy_counts(m, y),
        decomposition=murphy_decomposition(prob, py, n_bins, strategy),
        reliability=table,
        prob=prob,
        label=py,
        n_pairs=int(m.size),
        n_bins=n_bins,
        strategy=strategy,
        orientation=orientation,
        temperature=temperature,
        n_boot=int(n_boot),
        ci=ci,
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
    temperature = check_temperature(temperature)
    band = float(band)
    if not 0.0 < band <= 0.5:
        raise ValueError(f"`band` must be in (0, 0.5], got {band!r}")
    n_bins = check_n_bins(n_bins)
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
        acc = accuracy_counts(mi, yi)
        conf, agree = top_label_view(pi, yi)
        metrics = {
            "accuracy": acc.accuracy,
            "tie_rate": acc.tie_rate,
            "mean_confidence": float(conf.mean()),
            "mean_agreement": float(agree.mean()),
            "agreement_minus_confidence": float(agree.mean() - conf.mean()),
            "top_label_ece": binned_ece(conf, agree, n_bins, "uniform", (0.5, 0.5 + band)),
            "brier": float(np.mean((pi - yi) ** 2)),
            "nll": margin_log_loss(mi, yi, temperature),
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
    ci: float = 0.95,
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
    check_same_length(margin=m, groups=g)
    if pd.isna(pd.Series(g)).any():
        raise ValueError("`groups` contains missing values")
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    orientation = check_orientation(orientation)
    temperature = check_temperature(temperature)
    ci = check_ci(ci)
    if orientation == "random":
        m, y = random_flips(m, y, seed)
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
            dist = bootstrap_distribution(lambda a, b: _point_metrics(a, b, **kw), [mg, yg], n_boot, boot_seed)
            row["accuracy_ci_low"], row["accuracy_ci_high"] = percentile_ci(dist["accuracy"], ci)
            row["ece_ci_low"], row["ece_ci_high"] = percentile_ci(dist[ece_key], ci)
        rows.append(row)
    return pd.DataFrame(rows)
