"""Post-hoc recalibration of pairwise reward-model margins.

Each calibrator is fitted on one split of pairs and evaluated on held-out
pairs. The API mirrors scikit-learn estimators (``get_params``, ``clone``) but
works on margins directly:

* ``fit(margin, label)`` with ``margin = r(first) - r(second)`` and
  ``label`` = probability that the first response is preferred (soft labels
  allowed);
* ``predict_proba(margin)`` returns a **1-D** array of ``P(first preferred)``
  (not scikit-learn's two-column layout).

:class:`TemperatureScaling` and :class:`PlattScaling` do not depend on the order
of the pairs in the ways noted below; :class:`IsotonicCalibration` fits on the
symmetrised data. :func:`fit_calibrators` splits, fits and compares them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted

from workbench.audits.calibration.core import (
    accuracy_counts,
    binned_ece,
    binned_mce,
    both_orders,
    random_flips,
    top_label_view,
)
from workbench.audits.calibration.display import ReliabilityDisplay, plot_reliability_comparison
from workbench.audits.calibration.metrics import binned_reliability, symmetrize
from workbench.audits.calibration.validation import (
    as_1d_float,
    check_n_bins,
    check_orientation,
    check_strategy,
    validate_inputs,
)

__all__ = [
    "TemperatureScaling",
    "PlattScaling",
    "IsotonicCalibration",
    "CalibrationComparison",
    "fit_calibrators",
    "cross_fit_calibrators",
    "CALIBRATORS",
]


def _nll_z(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(y * log_expit(z) + (1.0 - y) * log_expit(-z)))


class _PairwiseCalibrator(BaseEstimator):
    def predict_proba(self, margin: Any) -> np.ndarray:
        """``P(first response preferred)`` for each margin, as a 1-D array."""
        check_is_fitted(self)
        return self._predict(as_1d_float(margin, "margin"))

    def _predict(self, m: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TemperatureScaling(_PairwiseCalibrator):
    """``p = sigmoid(margin / T)`` with ``T > 0`` minimising the NLL (Guo et al. 2017).

    Fitted by bounded Brent search over ``log T`` in ``log(bounds)``
    (``scipy.optimize.minimize_scalar(method="bounded")``), so ``T`` can neither
    go negative nor run off; the NLL is unimodal in ``log T``. Soft labels are
    allowed (cross-entropy). ``T > 1`` means the RM was over-confident. The
    fitted value does not depend on the orientation of the pairs (each pair's
    NLL is order-invariant). Accuracy is unchanged.

    Attributes: ``temperature_``, ``nll_`` (fit NLL at ``temperature_``),
    ``nll_before_`` (fit NLL at ``T = 1``), ``at_bound_``.
    """

    def __init__(self, bounds: tuple[float, float] = (1e-3, 1e3), xatol: float = 1e-7):
        self.bounds = bounds
        self.xatol = xatol

    def fit(self, margin: Any, label: Any) -> TemperatureScaling:
        m, y = validate_inputs(margin, label)
        lo, hi = (float(b) for b in self.bounds)
        if not 0 < lo < hi:
            raise ValueError(f"`bounds` must satisfy 0 < low < high, got {self.bounds!r}")
        if np.all(m == 0):
            raise ValueError("all margins are 0: the temperature is not identifiable")
        res = minimize_scalar(
            lambda log_t: _nll_z(m * np.exp(-log_t), y),
            bounds=(np.log(lo), np.log(hi)),
            method="bounded",
            options={"xatol": self.xatol},
        )
        self.temperature_ = float(np.exp(res.x))
        self.nll_ = float(res.fun)
        self.nll_before_ = _nll_z(m, y)
        self.n_iter_ = int(res.nfev)
        span = np.log(hi) - np.log(lo)
        self.at_bound_ = bool(min(res.x - np.log(lo), np.log(hi) - res.x) < 1e-4 * span)
        if self.at_bound_:
            warnings.warn(
                f"fitted temperature {self.temperature_:.4g} is at the edge of bounds {self.bounds}; "
                "the data may be separable (T -> 0) or uninformative (T -> inf)",
                UserWarning,
                stacklevel=2,
            )
        return self

    def _predict(self, m: np.ndarray) -> np.ndarray:
        return expit(m / self.temperature_)


class PlattScaling(_PairwiseCalibrator):
    """``p = sigmoid(a * margin + b)`` fitted by maximum likelihood (Platt 1999, no target smoothing).

    Minimises the mean cross-entropy (soft labels allowed) with L-BFGS-B and
    the analytic gradient. ``b`` captures a *position* bias (first-listed
    response systematically favoured); for randomly oriented pairs it should be
    near 0 and on symmetrised data it is exactly 0, so Platt reduces to
    temperature scaling with ``T = 1 / a``. On chosen-first data (all labels 1)
    ``b`` diverges: orient the pairs first (a warning is issued).

    Attributes: ``a_``, ``b_``, ``nll_``, ``converged_``.
    """

    def __init__(self, fit_intercept: bool = True, max_iter: int = 1000):
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter

    def fit(self, margin: Any, label: Any) -> PlattScaling:
        m, y = validate_inputs(margin, label)
        if m.size > 1 and np.all(y == y[0]):
            warnings.warn(
                f"all labels equal {y[0]:g}: Platt's intercept is not identifiable for pairs that always "
                "list the chosen response first; orient the pairs (orient_pairs / symmetrize) first",
                UserWarning,
                stacklevel=2,
            )
        scale = float(np.std(m)) or 1.0  # optimise on standardised margins for conditioning
        s = m / scale

        def loss(theta):
            a, b = theta[0], (theta[1] if self.fit_intercept else 0.0)
            z = a * s + b
            r = expit(z) - y
            grad = [np.mean(r * s)] + ([np.mean(r)] if self.fit_intercept else [])
            return _nll_z(z, y), np.asarray(grad)

        x0 = np.array([1.0, 0.0] if self.fit_intercept else [1.0])
        res = minimize(
            loss, x0, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter, "gtol": 1e-10, "ftol": 1e-15}
        )
        self.a_ = float(res.x[0] / scale)
        self.b_ = float(res.x[1]) if self.fit_intercept else 0.0
        self.nll_ = float(res.fun)
        self.converged_ = bool(res.success)
        return self

    @property
    def temperature_(self) -> float:
        """``1 / a_`` (the equivalent temperature when ``b_ == 0``)."""
        check_is_fitted(self)
        return 1.0 / self.a_ if self.a_ != 0 else float("inf")

    def _predict(self, m: np.ndarray) -> np.ndarray:
        return expit(self.a_ * m + self.b_)


class IsotonicCalibration(_PairwiseCalibrator):
    """Monotone (PAV) recalibration of the margin, fitted on the symmetrised pairs.

    ``sklearn.isotonic.IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")``
    is fitted on ``{(m, y)} U {(-m, 1 - y)}`` (:func:`~workbench.audits.calibration.metrics.symmetrize`).
    Because that data set is invariant under ``(m, y) -> (-m, 1 - y)`` and the
    least-squares isotonic fit is unique, the fitted map is antisymmetric:
    ``p(-m) = 1 - p(m)``, so the calibrated probability does not depend on which
    response is listed first, and chosen-first data (all labels 1) is fine.
    Fitting on the margin rather than ``sigmoid(margin)`` avoids saturation for
    large margins. Needs many pairs (it overfits with a few hundred) and produces
    flat steps, which can create exact ties at 0.5.

    Attributes: ``isotonic_`` (the fitted ``IsotonicRegression``).
    """

    def __init__(self):
        pass

    def fit(self, margin: Any, label: Any) -> IsotonicCalibration:
        ms, ys = symmetrize(margin, label)
        self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(ms, ys)
        return self

    def _predict(self, m: np.ndarray) -> np.ndarray:
        return np.clip(self.isotonic_.predict(m), 0.0, 1.0)


CALIBRATORS = {
    "temperature": TemperatureScaling,
    "platt": PlattScaling,
    "isotonic": IsotonicCalibration,
}


def _eval_metrics(p: np.ndarray, y: np.ndarray, n_bins: int, strategy: str) -> dict[str, float]:
    eps = 1e-15
    pc = np.clip(p, eps, 1 - eps)
    conf, agree = top_label_view(p, y)
    # accuracy of the calibrated prediction: sign(p - 0.5) plays the role of the margin
    acc = accuracy_counts(p - 0.5, y)
    return {
        "ece_uniform": binned_ece(p, y, n_bins, "uniform"),
        "ece_quantile": binned_ece(p, y, n_bins, "quantile"),
        "mce": binned_mce(p, y, n_bins, strategy),
        "top_label_ece": binned_ece(conf, agree, n_bins, strategy, (0.5, 1.0)),
        "brier": float(np.mean((p - y) ** 2)),
        "nll": float(-np.mean(y * np.log(pc) + (1 - y) * np.log1p(-pc))),
        "accuracy": acc.accuracy,
        "tie_rate": acc.tie_rate,
    }


@dataclass
class CalibrationComparison:
    """Result of :func:`fit_calibrators`.

    ``calibrators`` maps a method name to the fitted calibrator; ``before`` holds
    the held-out metrics of the raw ``sigmoid(margin)``, ``after[name]`` those of
    each calibrated model on the same held-out pairs (``test_margin``,
    ``test_label``, oriented as requested).

    From :func:`cross_fit_calibrators` every pair is held out once: ``calibrators`` are
    then fitted on all pairs (for reuse), ``fold_calibrators[name]`` are the per-fold
    fits, ``oof[name]`` the out-of-fold probabilities of ``test_margin`` on which
    ``after`` is computed, and ``n_folds`` / ``n_clusters`` describe the grouped split.
    """

    calibrators: dict[str, Any]
    before: dict[str, float]
    after: dict[str, dict[str, float]]
    test_margin: np.ndarray = field(repr=False)
    test_label: np.ndarray = field(repr=False)
    n_fit: int = 0
    n_test: int = 0
    n_bins: int = 10
    strategy: str = "uniform"
    oof: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    fold_calibrators: dict[str, list] = field(default_factory=dict, repr=False)
    n_folds: int = 0
    n_clusters: int = 0

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``method, metric, before, after, change`` (``change = after - before``)."""
        rows = []
        for method, metrics in self.after.items():
            for metric, value in metrics.items():
                b = self.before[metric]
                rows.append((method, metric, b, value, value - b))
        return pd.DataFrame(rows, columns=["method", "metric", "before", "after", "change"])

    def predict_proba(self, method: str, margin: Any) -> np.ndarray:
        return self.calibrators[method].predict_proba(margin)

    def displays(self, *, ci: float = 0.95):
        """Unplotted :class:`~workbench.audits.calibration.display.ReliabilityDisplay` objects:
        the raw model first, then each method."""
        key = "ece_uniform" if self.strategy == "uniform" else "ece_quantile"
        out = []
        probs = {"uncalibrated": (expit(self.test_margin), self.before[key])}
        for name, cal in self.calibrators.items():
            pred = self.oof[name] if name in self.oof else cal.predict_proba(self.test_margin)
            probs[name] = (pred, self.after[name][key])
        for name, (p, ece) in probs.items():
            table = binned_reliability(p, self.test_label, self.n_bins, self.strategy, ci=ci, n_boot=200)
            out.append(ReliabilityDisplay(table, ece=ece, n_bins=self.n_bins, strategy=self.strategy, title=name))
        return out

    def plot(self, *, figsize=None):
        """Held-out reliability diagrams side by side: uncalibrated, then each method. Returns the Figure."""
        disps = self.displays()
        titles = ["uncalibrated (held-out)"] + [self._title(n) for n in self.calibrators]
        return plot_reliability_comparison(disps, titles, figsize=figsize)

    def _title(self, name: str) -> str:
        cal = self.calibrators[name]
        if self.oof:
            name = f"{name} (cross-fitted)"
        if isinstance(cal, TemperatureScaling):
            return f"{name} (T = {cal.temperature_:.3g})"
        if isinstance(cal, PlattScaling):
            return f"{name} (a = {cal.a_:.3g}, b = {cal.b_:.2g})"
        return name


def _make_calibrators(methods: Sequence[Any]) -> dict[str, Any]:
    cals: dict[str, Any] = {}
    for meth in methods:
        if isinstance(meth, str):
            if meth not in CALIBRATORS:
                raise ValueError(f"unknown method {meth!r}; choose from {tuple(CALIBRATORS)} or pass an instance")
            cals[meth] = CALIBRATORS[meth]()
        elif hasattr(meth, "fit") and hasattr(meth, "predict_proba"):
            cals[type(meth).__name__] = clone(meth)
        else:
            raise ValueError(f"`methods` entries must be names or calibrator instances, got {meth!r}")
    if not cals:
        raise ValueError("`methods` is empty")
    return cals


def fit_calibrators(
    margin: Any,
    label: Any,
    *,
    test_size: float = 0.5,
    seed: Any = 0,
    methods: Sequence[Any] = ("temperature", "platt", "isotonic"),
    orientation: str = "random",
    n_bins: int = 10,
    strategy: str = "uniform",
) -> CalibrationComparison:
    """Fit calibrators on a random split of the pairs and compare them on the rest.

    ``orientation`` (``"random"``, ``"both"``, ``"as_given"``) is applied before
    fitting and evaluation: ``"random"`` flips all pairs once with ``seed``,
    ``"both"`` symmetrises the fit and the test split separately (so no pair
    leaks across). The split is a seeded permutation; ``test_size`` is a
    fraction in (0, 1). ``methods`` holds names from ``CALIBRATORS``
    (``"temperature"``, ``"platt"``, ``"isotonic"``) or unfitted calibrator
    instances (cloned before fitting). Metrics: ECE (uniform and quantile), MCE,
    top-label ECE, Brier, NLL, accuracy and tie rate of ``sign(p - 0.5)``.
    """
    m, y = validate_inputs(margin, label)
    orientation = check_orientation(orientation)
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"`test_size` must be a fraction in (0, 1), got {test_size!r}")
    n_test = int(round(test_size * m.size))
    if n_test < 1 or n_test > m.size - 1:
        raise ValueError(f"`test_size`={test_size} leaves an empty split for {m.size} pairs")
    cals = _make_calibrators(methods)

    if orientation == "random":
        m, y = random_flips(m, y, seed)
    # the split uses its own stream (entropy [seed, 1]) so it is independent of the orientation flips
    rng = np.random.default_rng([int(seed), 1]) if isinstance(seed, (int, np.integer)) else np.random.default_rng(seed)
    perm = rng.permutation(m.size)
    test_idx, fit_idx = perm[:n_test], perm[n_test:]
    mf, yf, mt, yt = m[fit_idx], y[fit_idx], m[test_idx], y[test_idx]
    if orientation == "both":
        mf, yf = both_orders(mf, yf)
        mt, yt = both_orders(mt, yt)

    before = _eval_metrics(expit(mt), yt, n_bins, strategy)
    after = {}
    for name, cal in cals.items():
        cal.fit(mf, yf)
        after[name] = _eval_metrics(cal.predict_proba(mt), yt, n_bins, strategy)
    return CalibrationComparison(
        calibrators=cals,
        before=before,
        after=after,
        test_margin=mt,
        test_label=yt,
        n_fit=int(fit_idx.size),
        n_test=int(test_idx.size),
        n_bins=n_bins,
        strategy=strategy,
    )


def cross_fit_calibrators(
    margin: Any,
    label: Any,
    clusters: Any = None,
    *,
    n_folds: int = 5,
    seed: Any = 0,
    methods: Sequence[Any] = ("temperature", "platt", "isotonic"),
    orientation: str = "both",
    n_bins: int = 10,
    strategy: str = "uniform",
) -> CalibrationComparison:
    """Fit calibrators with grouped cross-fitting and evaluate every pair once, out of fold.

    The pairs are split by ``clusters`` (one code per pair: prompts or topics) with
    :class:`sklearn.model_selection.GroupKFold` into ``min(n_folds, n_clusters)`` folds, so
    no prompt or topic is both fitted and evaluated. For each fold the calibrators are
    fitted on the other folds and predict the fold's pairs; the metrics of those
    out-of-fold predictions on *all* pairs are ``after``, those of the raw
    ``sigmoid(margin)`` on the same pairs are ``before``. ``orientation="both"`` fits and
    evaluates on both orders of every pair (a pair's two orders stay in its fold);
    ``"random"`` flips each pair once with ``seed``. The returned ``calibrators`` are
    refitted on all pairs (their parameters describe the data; they were not evaluated).
    Without ``clusters`` every pair is its own group.
    """
    m, y = validate_inputs(margin, label)
    orientation = check_orientation(orientation)
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"`n_folds` must be an integer >= 2, got {n_folds!r}")
    groups = np.arange(m.size) if clusters is None else np.asarray(clusters)
    if groups.shape != (m.size,):
        raise ValueError(f"`clusters` needs one code per pair ({m.size}), got shape {groups.shape}")
    n_groups = int(pd.unique(groups).size)
    if n_groups < 2:
        raise ValueError("cross-fitting needs at least 2 clusters (prompts or topics)")
    k = int(min(n_folds, n_groups))
    cals = _make_calibrators(methods)
    if orientation == "random":
        m, y = random_flips(m, y, seed)
    sym = orientation == "both"
    orient = both_orders if sym else (lambda a, b: (a, b))
    oof = {name: np.empty(m.size * (2 if sym else 1)) for name in cals}
    folds = {name: [] for name in cals}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a fold at a temperature bound is reported by the full fit
        for train, test in GroupKFold(n_splits=k).split(m, y, groups):
            mf, yf = orient(m[train], y[train])
            rows = np.concatenate([test, test + m.size]) if sym else test
            for name, proto in cals.items():
                cal = clone(proto).fit(mf, yf)
                oof[name][rows] = cal.predict_proba(orient(m[test], y[test])[0])
                folds[name].append(cal)
    mt, yt = orient(m, y)
    for cal in cals.values():
        cal.fit(mt, yt)
    before = _eval_metrics(expit(mt), yt, n_bins, strategy)
    after = {name: _eval_metrics(oof[name], yt, n_bins, strategy) for name in cals}
    return CalibrationComparison(
        calibrators=cals,
        before=before,
        after=after,
        test_margin=mt,
        test_label=yt,
        n_fit=int(round(m.size * (k - 1) / k)),
        n_test=int(m.size),
        n_bins=n_bins,
        strategy=strategy,
        oof=oof,
        fold_calibrators=folds,
        n_folds=k,
        n_clusters=n_groups,
    )
