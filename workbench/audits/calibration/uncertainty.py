"""Calibration graded on clustered intervals: the ECE excess over its null, the temperature's interval.

Binned ECE is biased upward in finite samples even for a perfectly calibrated model
(Kumar, Liang and Ma 2019; Roelofs et al. 2022), so a raw ECE of 0.04 at 235 pairs says
little, and the percentile bootstrap interval of the raw ECE is biased upward as well.
This module grades calibration on

* **the ECE excess**: the observed ECE minus its *null expectation*, the mean ECE of the
  same predictions when the labels are drawn from the predictions themselves
  (consistency resampling, Bröcker and Smith 2007). A perfectly calibrated RM has an
  excess near 0 whatever the sample size; the null mean and its 95th percentile are
  reported next to it;
* **the fitted temperature** ``T`` of ``sigmoid(margin / T)`` (NLL-optimal), on a log
  scale: ``T > 1`` over-confident, ``T < 1`` under-confident.

Both intervals come from one cluster bootstrap (:func:`workbench._utils.stats.bootstrap_weights`
with cluster codes): whole prompts or topics are resampled, never single pairs, and
the two orientations of a pair are one row here, so they always travel together. For each
resample the excess is the resample's ECE minus the mean ECE of the same resample under
``n_null`` label draws per pair (drawn once for the original pairs and carried along, so
a duplicated pair keeps its draw just as it keeps its observed label).

Binning is fixed by the observed predictions (equal-width bins are fixed anyway;
equal-mass edges are taken from all pairs), so each pair keeps its bin across resamples
and every ECE is a weighted sum of per-pair residuals ``label - p``, computed for all
resamples and all null draws at once.

:func:`pair_clusters` finds the resampling unit of scored pairs (a ``topic_id`` or
``prompt_id`` column, else the normalised prompt text, also from the scored data set
when the scores frame lacks it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from workbench._utils.stats import bootstrap_weights, cluster_labels, percentile_ci
from workbench._utils.validation import check_ci, check_n_boot
from workbench.audits.calibration.core import bin_edges, random_flips
from workbench.audits.calibration.validation import (
    check_n_bins,
    check_orientation,
    check_strategy,
    validate_inputs,
)

__all__ = [
    "CalibrationUncertainty",
    "calibration_uncertainty",
    "ece_design",
    "ece_from_weights",
    "fit_inverse_temperature",
    "join_pair_data",
    "pair_clusters",
]

BETA_BOUNDS = (1e-3, 1e3)  # inverse temperature search range (T from 0.001 to 1000)


# ---------------------------------------------------------------------------
# clusters of scored pairs
# ---------------------------------------------------------------------------

#: columns copied from the scored data set onto a scores frame that lacks them
PAIR_DATA_COLUMNS = ("prompt", "chosen", "rejected", "topic_id", "topic", "group", "cluster", "prompt_id")


def join_pair_data(frame: pd.DataFrame, data: Any = None, columns=PAIR_DATA_COLUMNS) -> pd.DataFrame:
    """``frame`` (one row per scored pair) with ``columns`` it lacks taken from ``data``.

    ``data`` is the scored :class:`~workbench.data.preferences.PreferenceData` (or its
    frame). Rows are matched on ``id`` when both have unique ids, else by position (the
    order :func:`~workbench.models.scoring.score_pairs` keeps); a data set of another
    length is an error.
    """
    if data is None:
        return frame
    src = data.frame if hasattr(data, "frame") else data
    if not isinstance(src, pd.DataFrame):
        raise ValueError(f"`data` must be PreferenceData or a DataFrame, got {type(data).__name__}")
    take = [c for c in columns if c in src.columns and c not in frame.columns]
    if not take:
        return frame
    out = frame.copy()
    if "id" in frame.columns and "id" in src.columns and src["id"].is_unique and frame["id"].is_unique:
        lookup = src.set_index("id")
        if frame["id"].isin(lookup.index).all():
            for c in take:
                out[c] = lookup.loc[frame["id"], c].to_numpy()
            return out
    if len(src) != len(frame):
        raise ValueError(f"`data` has {len(src)} rows but {len(frame)} pairs were scored; pass the scored data")
    for c in take:
        out[c] = src[c].to_numpy()
    return out


def pair_clusters(frame: pd.DataFrame, data: Any = None, column: str | None = None) -> tuple[np.ndarray, str]:
    """Cluster codes (one per pair) and the unit's name for scored pairs.

    Uses :func:`workbench._utils.stats.cluster_labels` on ``frame`` joined with ``data``
    (:func:`join_pair_data`): ``column`` if given, else a topic/group/prompt-id column,
    else the normalised prompt. Without any of them every pair is its own cluster (unit
    ``"pair"``) and a warning says the intervals assume independent pairs.
    """
    joined = join_pair_data(frame, data)
    try:
        return cluster_labels(joined, column)
    except ValueError:
        if column is not None:
            raise
    warnings.warn(
        "the scored pairs carry no prompt, topic or prompt id (pass data=...): intervals treat every pair "
        "as independent, which is too narrow when pairs share prompts",
        UserWarning,
        stacklevel=2,
    )
    return np.arange(len(frame), dtype=np.int64), "pair"


# ---------------------------------------------------------------------------
# ECE as a weighted sum of per-pair residuals
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EceDesign:
    """Fixed binning of one set of pairs: the signed bin membership of every pair.

    ``matrix[i, b]`` is +1 when pair ``i``'s prediction lies in bin ``b`` and, for the
    symmetrised set, -1 where its mirrored prediction ``1 - p`` lies (the mirrored row's
    residual is ``-(label - p)``); ``rows_per_pair`` is 2 for the symmetrised set.
    """

    matrix: np.ndarray
    edges: np.ndarray
    rows_per_pair: int


def ece_design(p: np.ndarray, n_bins: int, strategy: str, symmetric: bool) -> EceDesign:
    """:class:`EceDesign` of predictions ``p`` (right-closed bins as in :mod:`~workbench.audits.calibration.core`)."""
    pp = np.concatenate([p, 1.0 - p]) if symmetric else p
    edges = bin_edges(pp, n_bins, strategy, (0.0, 1.0))
    inner = edges[1:-1]
    mat = np.zeros((p.size, n_bins))
    rows = np.arange(p.size)
    np.add.at(mat, (rows, np.searchsorted(inner, p, side="left")), 1.0)
    if symmetric:
        np.add.at(mat, (rows, np.searchsorted(inner, 1.0 - p, side="left")), -1.0)
    return EceDesign(mat, edges, 2 if symmetric else 1)


def ece_from_weights(design: EceDesign, residuals: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ECE of every (resample, residual column): ``weights`` (R, n), ``residuals`` (n, K) -> (R, K).

    ``residuals[:, k]`` is ``label_k - p`` per pair; ``weights`` are resample multiplicities.
    Each pair touches at most two bins, so the bins are summed one at a time over their pairs.
    """
    total = np.zeros((weights.shape[0], residuals.shape[1]))
    for b in range(design.matrix.shape[1]):
        sign = design.matrix[:, b]
        rows = np.flatnonzero(sign)
        if rows.size:
            total += np.abs(weights[:, rows] @ (sign[rows, None] * residuals[rows]))
    return total / (design.rows_per_pair * weights.sum(axis=1))[:, None]


# ---------------------------------------------------------------------------
# temperature for many resamples at once
# ---------------------------------------------------------------------------


def fit_inverse_temperature(
    m: np.ndarray, y: np.ndarray, weights: np.ndarray, start: float = 1.0, max_iter: int = 200
) -> np.ndarray:
    """NLL-optimal ``beta = 1 / T`` of ``sigmoid(beta * m)`` for each row of ``weights`` (R, n).

    The weighted log-likelihood is concave in ``beta``, so its derivative is decreasing and
    has one root in :data:`BETA_BOUNDS` (or the optimum is at a bound: separable data run to
    the upper bound). Newton steps from ``start`` safeguarded by bisection on ``log beta``
    (``rtsafe``), all rows at once. Matches
    :class:`~workbench.audits.calibration.methods.TemperatureScaling`.
    """
    w = np.atleast_2d(weights).astype(float)
    wm, wmm = w * m, w * m * m

    def slope(beta):
        s = expit(beta[:, None] * m[None, :])
        return ((y - s) * wm).sum(axis=1), (s * (1.0 - s) * wmm).sum(axis=1)

    bounds = np.log(BETA_BOUNDS)
    at_hi = slope(np.full(w.shape[0], BETA_BOUNDS[1]))[0] >= 0  # separable: the likelihood rises to the bound
    at_lo = slope(np.full(w.shape[0], BETA_BOUNDS[0]))[0] <= 0  # uninformative
    lo = np.full(w.shape[0], bounds[0])
    hi = np.full(w.shape[0], bounds[1])
    x = np.full(w.shape[0], float(np.clip(np.log(start), *bounds)))
    for _ in range(max_iter):
        beta = np.exp(x)
        grad, curv = slope(beta)
        lo = np.where(grad > 0, x, lo)
        hi = np.where(grad > 0, hi, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.log(beta + grad / curv)
        ok = np.isfinite(newton) & (newton >= lo) & (newton <= hi)  # Newton inside the bracket, else bisect
        new = np.where(ok, newton, 0.5 * (lo + hi))
        done = (np.abs(new - x) < 1e-10) | at_hi | at_lo
        x = new
        if done.all():
            break
    return np.where(at_hi, BETA_BOUNDS[1], np.where(at_lo, BETA_BOUNDS[0], np.exp(x)))


# ---------------------------------------------------------------------------
# the graded quantities
# ---------------------------------------------------------------------------


@dataclass
class CalibrationUncertainty:
    """Result of :func:`calibration_uncertainty` (all ECEs with the same fixed bins).

    Attributes
    ----------
    ece : observed ECE of ``sigmoid(margin)``.
    ece_null_mean, ece_null_q95 : mean and 95th percentile of the ECE when labels are
        drawn from the RM's own probabilities (``n_null`` draws).
    ece_excess, ece_excess_ci : ``ece - ece_null_mean`` and its cluster-bootstrap interval.
    temperature, temperature_ci : NLL-optimal ``T`` on all pairs and its cluster-bootstrap interval.
    n_pairs, n_clusters, cluster_unit : what was resampled.
    """

    ece: float
    ece_null_mean: float
    ece_null_q95: float
    ece_excess: float
    ece_excess_ci: tuple[float, float]
    temperature: float
    temperature_ci: tuple[float, float]
    n_pairs: int
    n_clusters: int
    cluster_unit: str
    n_bins: int
    strategy: str
    orientation: str
    n_boot: int
    n_null: int
    ci: float
    null_draws: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    boot_excess: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    boot_temperature: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def to_dict(self) -> dict:
        return {
            "ece": self.ece,
            "ece_null_mean": self.ece_null_mean,
            "ece_null_q95": self.ece_null_q95,
            "ece_excess": self.ece_excess,
            "ece_excess_ci_low": self.ece_excess_ci[0],
            "ece_excess_ci_high": self.ece_excess_ci[1],
            "temperature": self.temperature,
            "temperature_ci_low": self.temperature_ci[0],
            "temperature_ci_high": self.temperature_ci[1],
            "n_pairs": self.n_pairs,
            "n_clusters": self.n_clusters,
        }


def calibration_uncertainty(
    margin: Any,
    label: Any,
    clusters: Any = None,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    orientation: str = "both",
    n_boot: int = 1000,
    n_null: int = 100,
    ci: float = 0.95,
    seed: Any = 0,
    cluster_unit: str = "prompt",
) -> CalibrationUncertainty:
    """ECE excess over its consistency-resampling null and the temperature, with cluster-bootstrap intervals.

    Parameters
    ----------
    margin, label : per pair (``label`` = probability the first response is preferred).
    clusters : integer cluster code per pair (e.g. from :func:`pair_clusters`); ``None``
        makes every pair its own cluster.
    orientation : ``"both"`` (symmetrised, the default: no orientation noise),
        ``"random"`` (pairs flipped with ``seed``) or ``"as_given"``.
    n_boot : cluster-bootstrap resamples (0: no intervals).
    n_null : label draws from the RM's own probabilities per pair (the null).
    seed : one integer; the null draws, the bootstrap and (for ``"random"``) the flips
        use independent streams derived from it.

    Soft labels are compared with hard null draws, which makes the null mean slightly too
    high for vote shares (a conservative excess only in the direction of passing); human
    ties (``label == 0.5``) are treated likewise.
    """
    m, y = validate_inputs(margin, label)
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    orientation = check_orientation(orientation)
    ci = check_ci(ci)
    n_boot = check_n_boot(n_boot)
    if not isinstance(n_null, (int, np.integer)) or n_null < 2:
        raise ValueError(f"`n_null` must be an integer >= 2, got {n_null!r}")
    codes = np.arange(m.size) if clusters is None else np.asarray(clusters)
    if codes.shape != (m.size,):
        raise ValueError(f"`clusters` needs one code per pair ({m.size}), got shape {codes.shape}")
    codes = pd.factorize(codes, sort=False)[0].astype(np.int64)
    base = int(seed) if isinstance(seed, (int, np.integer)) else 0
    if orientation == "random":
        m, y = random_flips(m, y, seed)
    p = expit(m)
    design = ece_design(p, n_bins, strategy, symmetric=orientation == "both")

    null_rng = np.random.default_rng([base, 11])
    draws = (null_rng.random((m.size, int(n_null))) < p[:, None]).astype(float)
    residuals = np.column_stack([y - p, draws - p[:, None]])
    point = ece_from_weights(design, residuals, np.ones((1, m.size)))[0]
    ece, null = float(point[0]), point[1:]
    null_mean = float(null.mean())
    beta = fit_inverse_temperature(m, y, np.ones((1, m.size)))[0]

    nan2 = (float("nan"), float("nan"))
    excess_ci, t_ci = nan2, nan2
    boot_excess = boot_t = np.empty(0)
    if n_boot > 0:
        ex, bt = [], []
        for w in bootstrap_weights(m.size, n_boot, [base, 12], clusters=codes, chunk_elems=250_000):
            e = ece_from_weights(design, residuals, w)
            ex.append(e[:, 0] - e[:, 1:].mean(axis=1))
            bt.append(1.0 / fit_inverse_temperature(m, y, w, start=beta))
        boot_excess, boot_t = np.concatenate(ex), np.concatenate(bt)
        excess_ci = percentile_ci(boot_excess, ci)
        t_ci = percentile_ci(boot_t, ci)
    return CalibrationUncertainty(
        ece=ece,
        ece_null_mean=null_mean,
        ece_null_q95=float(np.quantile(null, 0.95)),
        ece_excess=ece - null_mean,
        ece_excess_ci=(float(excess_ci[0]), float(excess_ci[1])),
        temperature=float(1.0 / beta),
        temperature_ci=(float(t_ci[0]), float(t_ci[1])),
        n_pairs=int(m.size),
        n_clusters=int(codes.max()) + 1,
        cluster_unit=cluster_unit if clusters is not None else "pair",
        n_bins=n_bins,
        strategy=strategy,
        orientation=orientation,
        n_boot=int(n_boot),
        n_null=int(n_null),
        ci=ci,
        null_draws=null,
        boot_excess=boot_excess,
        boot_temperature=boot_t,
    )
