"""One-call calibration audit of scored preference pairs (issues 3 and 12; used by notebook 01).

:func:`calibration_audit` takes :class:`~workbench.models.scoring.PairScores` (or a
DataFrame with ``margin`` and ``label`` columns) and bundles what the lower
layers compute:

* :func:`~workbench.audits.calibration.report.calibration_report` - accuracy, mean reward gap,
  ECE (equal-width and equal-mass), MCE, Brier with its Murphy terms, NLL,
  top-label ECE, with cluster-bootstrap CIs, and the reliability table;
* :func:`~workbench.audits.calibration.uncertainty.calibration_uncertainty` - the graded
  numbers: the ECE *excess* over its consistency-resampling null (with the null mean and
  95th percentile next to it) and the fitted temperature, each with a cluster-bootstrap
  interval over prompts or topics;
* :func:`~workbench.audits.calibration.report.decision_boundary_report` - the pairs with
  ``|sigmoid(margin) - 0.5| <= band``;
* :func:`~workbench.audits.calibration.report.per_group_report` - one table per group column
  (``category``, ``subset``) that has values;
* :func:`~workbench.audits.calibration.methods.cross_fit_calibrators` - temperature, Platt
  and isotonic recalibration, cross-fitted over all pairs with folds grouped by cluster
  (every pair evaluated once, out of fold; no prompt or topic on both sides).

All parts share ``orientation`` (``"both"`` by default: every pair in both orders, so no
orientation noise), ``seed``, ``n_bins``, ``strategy`` and the clusters (from
:func:`~workbench.audits.calibration.uncertainty.pair_clusters`: the data's topic or
prompt id, else the normalised prompt). :class:`CalibrationAudit` is an
:class:`~workbench.audits.result.AuditResult` published under the section
``"calibration"``; its verdicts form the family ``"calibration"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._utils.stats import unit_name
from workbench.audits.calibration.display import ReliabilityDisplay, plot_reliability_comparison
from workbench.audits.calibration.methods import CalibrationComparison, cross_fit_calibrators
from workbench.audits.calibration.report import (
    CalibrationReport,
    DecisionBoundaryReport,
    calibration_report,
    decision_boundary_report,
    per_group_report,
)
from workbench.audits.calibration.uncertainty import (
    CalibrationUncertainty,
    calibration_uncertainty,
    pair_clusters,
)
from workbench.audits.calibration.validation import validate_inputs
from workbench.audits.result import AuditResult
from workbench.reports.verdicts import Verdict, graded_verdict, publish

__all__ = [
    "VERDICT_COLUMNS",
    "CalibrationAudit",
    "calibration_audit",
    "compare_audits",
    "plot_audits",
]

VERDICT_COLUMNS = ["check", "value", "ci_low", "ci_high", "threshold", "verdict", "sentence", "detail"]
GROUP_COLUMNS = ("category", "subset")
FAMILY = "calibration"

#: default margins (see :meth:`CalibrationAudit.verdicts` for how they were chosen)
ECE_WARN, ECE_FAIL = 0.075, 0.15
TEMPERATURE_WARN, TEMPERATURE_FAIL = 1.6, 1.8

# raw binned errors: their percentile intervals are biased upward, so the audit table leaves them out
_BIASED_CI = ("ece_uniform", "ece_quantile", "mce", "top_label_ece", "brier_reliability")


def _pairs_frame(pair_scores: Any) -> tuple[pd.DataFrame, str | None]:
    """The per-pair frame (margin, label, optional group columns) and the model name, if known."""
    name = None
    if hasattr(pair_scores, "frame") and hasattr(pair_scores, "model"):
        frame = pair_scores.frame
        model = pair_scores.model
        name = model.get("name") if isinstance(model, dict) else None
    elif isinstance(pair_scores, pd.DataFrame):
        frame = pair_scores
    else:
        raise ValueError(
            "`pair_scores` must be PairScores (workbench.models.scoring.score_pairs) or a DataFrame with "
            f"'margin' and 'label' columns, got {type(pair_scores).__name__}"
        )
    frame = frame.copy()
    if "margin" not in frame.columns:
        if {"chosen_score", "rejected_score"} <= set(frame.columns):
            frame["margin"] = frame["chosen_score"] - frame["rejected_score"]
        else:
            raise ValueError("`pair_scores` has no 'margin' column (nor chosen_score/rejected_score)")
    if "label" not in frame.columns:
        raise ValueError("`pair_scores` has no 'label' column (probability that the first response is preferred)")
    return frame.reset_index(drop=True), name


def _ece_key(strategy: str) -> str:
    return "ece_uniform" if strategy == "uniform" else "ece_quantile"


def _plural(unit: str, k: int) -> str:
    return unit if k == 1 else unit + "s"


@dataclass
class CalibrationAudit(AuditResult):
    """Result of :func:`calibration_audit` (an :class:`~workbench.audits.result.AuditResult`).

    Attributes
    ----------
    pairs : the per-pair frame (``margin``, ``label``, group columns).
    report : :class:`~workbench.audits.calibration.report.CalibrationReport` on all pairs at ``T = 1``.
    uncertainty : :class:`~workbench.audits.calibration.uncertainty.CalibrationUncertainty`:
        the ECE excess over its null and the temperature, with cluster-bootstrap intervals.
    boundary : :class:`~workbench.audits.calibration.report.DecisionBoundaryReport` for ``band``.
    groups : ``{column: per_group_report table}`` for each group column with values.
    comparison : :class:`~workbench.audits.calibration.methods.CalibrationComparison`
        (calibrators cross-fitted with folds grouped by cluster, every pair out of fold once).
    clusters, cluster_unit : the resampling unit of every pair and its name.
    params : the arguments the audit ran with.
    """

    pairs: pd.DataFrame = field(repr=False)
    model_name: str
    report: CalibrationReport
    uncertainty: CalibrationUncertainty
    boundary: DecisionBoundaryReport
    groups: dict[str, pd.DataFrame]
    comparison: CalibrationComparison
    clusters: np.ndarray = field(repr=False)
    cluster_unit: str
    params: dict

    section: ClassVar[str] = "calibration"

    # -- headline numbers ---------------------------------------------------

    @property
    def n_pairs(self) -> int:
        return int(len(self.pairs))

    @property
    def n_clusters(self) -> int:
        return int(self.uncertainty.n_clusters)

    @property
    def ece(self) -> float:
        """ECE of ``sigmoid(margin)`` on all pairs with the audit's ``strategy`` and ``orientation``."""
        return self.report[_ece_key(self.report.strategy)].value

    @property
    def temperature(self) -> float:
        """NLL-optimal temperature on all pairs (its interval: ``uncertainty.temperature_ci``)."""
        return float(self.uncertainty.temperature)

    @property
    def temperature_at_bound(self) -> bool:
        cal = self.comparison.calibrators.get("temperature")
        return bool(cal is not None and cal.at_bound_)

    def summary(self) -> dict[str, float]:
        """Headline numbers as a flat dict (what :func:`compare_audits` tabulates).

        ``accuracy`` (with its cluster-bootstrap CI), ``ece``, ``nll``, ``brier``,
        ``mean_reward_gap`` are on all pairs at ``T = 1``; ``ece_null`` / ``ece_null_q95``
        are the mean and 95th percentile of the ECE of a perfectly calibrated RM with these
        probabilities, ``ece_excess`` (with CI) the observed ECE minus ``ece_null``;
        ``temperature`` (with CI) is fitted on all pairs; ``heldout_*`` are the cross-fitted
        (out-of-fold) ECE and NLL before and after temperature scaling;
        ``mean_abs_margin`` / ``median_abs_margin`` describe the size of the margins.
        """
        u = self.uncertainty
        abs_m = np.abs(self.pairs["margin"].to_numpy(dtype=float))
        after = self.comparison.after.get("temperature", {})
        key = _ece_key(self.report.strategy)
        acc = self.report["accuracy"]
        return {
            "n_pairs": float(self.n_pairs),
            "n_clusters": float(self.n_clusters),
            "accuracy": acc.value,
            "accuracy_ci_low": acc.ci_low,
            "accuracy_ci_high": acc.ci_high,
            "mean_reward_gap": self.report["mean_reward_gap"].value,
            "ece": self.ece,
            "ece_null": u.ece_null_mean,
            "ece_null_q95": u.ece_null_q95,
            "ece_excess": u.ece_excess,
            "ece_excess_ci_low": u.ece_excess_ci[0],
            "ece_excess_ci_high": u.ece_excess_ci[1],
            "nll": self.report["nll"].value,
            "brier": self.report["brier"].value,
            "temperature": self.temperature,
            "temperature_ci_low": u.temperature_ci[0],
            "temperature_ci_high": u.temperature_ci[1],
            "heldout_ece_before": self.comparison.before[key],
            "heldout_ece_after_temperature": after.get(key, float("nan")),
            "heldout_nll_before": self.comparison.before["nll"],
            "heldout_nll_after_temperature": after.get("nll", float("nan")),
            "mean_abs_margin": float(abs_m.mean()),
            "median_abs_margin": float(np.median(abs_m)),
        }

    # -- tables ---------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Metric table: ``metric, value, ci_low, ci_high``.

        The report's rows (cluster-bootstrap CIs; none for the raw binned errors, whose
        percentile intervals are biased upward), then ``ece_null``, ``ece_null_q95``,
        ``ece_excess`` and ``temperature`` with their intervals, the cross-fitted held-out
        numbers, ``mean_abs_margin``, ``n_pairs`` and ``n_clusters``.
        """
        s = self.summary()
        rep = self.report.to_frame()
        biased = rep["metric"].isin(_BIASED_CI)
        rep.loc[biased, ["ci_low", "ci_high"]] = np.nan
        nan = float("nan")
        rows = [
            ("ece_null", s["ece_null"], nan, nan),
            ("ece_null_q95", s["ece_null_q95"], nan, nan),
            ("ece_excess", s["ece_excess"], s["ece_excess_ci_low"], s["ece_excess_ci_high"]),
            ("temperature", s["temperature"], s["temperature_ci_low"], s["temperature_ci_high"]),
        ]
        rows += [
            (k, s[k], nan, nan)
            for k in (
                "heldout_ece_before",
                "heldout_ece_after_temperature",
                "heldout_nll_before",
                "heldout_nll_after_temperature",
                "mean_abs_margin",
                "n_pairs",
                "n_clusters",
            )
        ]
        extra = pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])
        return pd.concat([rep, extra], ignore_index=True)

    def calibrators_frame(self) -> pd.DataFrame:
        """Cross-fitted comparison, wide: one row per method (``uncalibrated`` first), one column per metric."""
        rows = {"uncalibrated": self.comparison.before, **self.comparison.after}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "method"
        out.insert(0, "parameters", [self._describe(m) for m in out.index])
        return out.reset_index()

    def _describe(self, method: str) -> str:
        cal = self.comparison.calibrators.get(method)
        if method == "uncalibrated":
            return "T = 1"
        if hasattr(cal, "a_") and hasattr(cal, "b_"):
            return f"a = {cal.a_:.4g}, b = {cal.b_:.3g}"
        if hasattr(cal, "temperature_"):
            return f"T = {cal.temperature_:.4g}"
        return ""

    def boundary_frame(self) -> pd.DataFrame:
        return self.boundary.to_frame()

    def by_group(self, column: str) -> pd.DataFrame:
        if column not in self.groups:
            raise KeyError(f"no per-group table for {column!r}; have {sorted(self.groups)}")
        return self.groups[column]

    # -- figures --------------------------------------------------------------

    def plot(self, ax=None, *, title: str | None = None):
        """Reliability diagram of all pairs at ``T = 1``; returns the Figure."""
        if title is None:
            title = f"{self.model_name}: {self.report.orientation} orientation, n = {self.n_pairs}"
        return self.report.plot(ax=ax, title=title).figure_

    def plot_comparison(self, *, figsize=None):
        """Cross-fitted reliability diagrams, uncalibrated then each calibrator; returns the Figure."""
        fig = self.comparison.plot(figsize=figsize)
        fig.suptitle(
            f"{self.model_name}: {self.comparison.n_folds}-fold cross-fitting grouped by {self.cluster_unit}, "
            f"every one of {self.n_pairs} pairs evaluated out of fold",
            y=1.02,
        )
        return fig

    # -- verdicts -------------------------------------------------------------

    def verdicts(
        self,
        *,
        ece_warn: float = ECE_WARN,
        ece_fail: float = ECE_FAIL,
        temperature_warn: float = TEMPERATURE_WARN,
        temperature_fail: float = TEMPERATURE_FAIL,
    ) -> list[Verdict]:
        """The graded checks of family ``"calibration"``, each graded on its interval
        (:func:`workbench.reports.verdicts.graded_verdict`; :meth:`verdicts_frame` shows a table).

        * ``ece_excess`` (harm: higher) - the ECE minus its null expectation under perfect
          calibration, graded on its cluster-bootstrap interval: pass when the interval lies
          below ``ece_warn``, fail when it lies above ``ece_fail``.
        * ``log_temperature`` (harm: two-sided) - the log of the fitted ``T`` and its
          cluster-bootstrap interval on a log scale: pass when the interval lies inside
          ``(1 / temperature_warn, temperature_warn)``, fail when it lies beyond
          ``temperature_fail`` (or below ``1 / temperature_fail``). ``T > 1``: over-confident
          margins; ``T < 1``: under-confident.

        The default margins were chosen by simulation (``tests/test_calibration_models.py``
        and the audit docs): a perfectly calibrated RM never warns or fails at the shipped
        sizes, passes at 500 pairs in 57 topics in about 99% of seeds, and an RM whose margins
        are twice too large (T = 2) warns or fails in about 90% of seeds at 500 pairs. At
        235 pairs the temperature interval is about a factor 1.3 either way, so a calibrated
        RM is inconclusive in about a third of seeds there: the data cannot pin ``T`` to
        within a factor 1.6.
        """
        for nm, v in (("ece_warn", ece_warn), ("ece_fail", ece_fail)):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"`{nm}` must be a non-negative number, got {v!r}")
        if ece_warn > ece_fail:
            raise ValueError(f"`ece_warn` ({ece_warn}) must not exceed `ece_fail` ({ece_fail})")
        for nm, v in (("temperature_warn", temperature_warn), ("temperature_fail", temperature_fail)):
            if not np.isfinite(v) or v <= 1:
                raise ValueError(f"`{nm}` must be a number > 1 (a factor away from T = 1), got {v!r}")
        if temperature_warn > temperature_fail:
            raise ValueError(
                f"`temperature_warn` ({temperature_warn}) must not exceed `temperature_fail` ({temperature_fail})"
            )
        u = self.uncertainty
        k, unit = self.n_clusters, self.cluster_unit
        size = f"{self.n_pairs} pairs" + ("" if unit == "pair" else f", {k} {_plural(unit, k)}")
        level = f"{u.ci:.0%} CI"
        common = dict(ci=u.ci, n=self.n_pairs, n_clusters=k, cluster_unit=unit, family=FAMILY, primary=True)
        lo, hi = u.ece_excess_ci
        ece_sentence = (
            f"The RM's probabilities are off by {u.ece_excess:+.3f} more than a perfectly calibrated RM's would be "
            f"by chance (ECE {u.ece:.3f} against {u.ece_null_mean:.3f} expected from noise alone; "
            f"{level} of the excess {lo:.3f} to {hi:.3f}; {size})."
        )
        ece_detail = (
            f"{u.n_bins} {u.strategy} bins, {u.orientation} orientation; null from {u.n_null} label draws from the "
            f"RM's own probabilities (95th percentile {u.ece_null_q95:.3f}); {u.n_boot} cluster-bootstrap resamples"
        )
        out = [
            graded_verdict(
                self.section,
                "ece_excess",
                u.ece_excess,
                lo,
                hi,
                warn=ece_warn,
                fail=ece_fail,
                direction="higher",
                sentence=ece_sentence,
                detail=ece_detail,
                **common,
            )
        ]
        t, (tlo, thi) = u.temperature, u.temperature_ci
        if np.isfinite(t) and t > 0:
            if t >= 1:
                how = f"about {t:.2g} times too large (over-confident)"
            else:
                how = f"about {1 / t:.2g} times too small (under-confident)"
            t_sentence = (
                f"The RM's reward gaps are {how}: dividing them by T = {t:.2f} fits the human labels best "
                f"({level} {tlo:.2f} to {thi:.2f}; T = 1 is calibrated; {size})."
            )
            logs = (
                (math.log(t), math.log(tlo), math.log(thi)) if tlo > 0 and thi > 0 else (math.log(t), *[math.nan] * 2)
            )
        else:
            t_sentence, logs = "The temperature could not be fitted.", (math.nan, math.nan, math.nan)
        detail = f"graded on log T; T = {t:.3g}, {level} [{tlo:.3g}, {thi:.3g}]"
        if self.temperature_at_bound:
            detail += "; at the search bound (separable or uninformative data)"
        out.append(
            graded_verdict(
                self.section,
                "log_temperature",
                logs[0],
                logs[1],
                logs[2],
                warn=math.log(temperature_warn),
                fail=math.log(temperature_fail),
                direction="two-sided",
                sentence=t_sentence,
                detail=detail,
                **common,
            )
        )
        return out

    def verdicts_frame(self, **thresholds: float) -> pd.DataFrame:
        """:meth:`verdicts` as a table (columns :data:`VERDICT_COLUMNS`).

        The ``log_temperature`` row shows ``T`` itself and its interval (the verdict grades ``log T``).
        """
        rows = []
        for v in self.verdicts(**thresholds):
            value, lo, hi = v.value, v.ci_low, v.ci_high
            threshold = v.threshold
            if v.check == "log_temperature":
                value, lo, hi = (math.exp(x) if x is not None and np.isfinite(x) else x for x in (value, lo, hi))
                threshold = (
                    f"log T graded: warn if T outside ({1 / math.exp(v.warn):.3g}, {math.exp(v.warn):.3g}), "
                    f"fail if outside ({1 / math.exp(v.fail):.3g}, {math.exp(v.fail):.3g}) ({v.ci_level:.0%} interval)"
                )
            rows.append((v.check, value, lo, hi, threshold, v.verdict, v.sentence, v.detail))
        return pd.DataFrame(rows, columns=VERDICT_COLUMNS)

    def publish(
        self,
        section: str | None = None,
        *,
        smoothed: CalibrationAudit | None = None,
        label_smoothing: float | None = None,
    ) -> dict:
        """Hand :meth:`verdicts` and :meth:`summary` to the report builder.

        With ``smoothed`` (the audit of a label-smoothed twin of the same RM on the same
        pairs), its summary joins the metrics as ``smoothed_<name>`` (``n_pairs`` left out)
        together with ``label_smoothing``.
        """
        metrics = self.summary()
        if smoothed is not None:
            metrics.update({f"smoothed_{k}": v for k, v in smoothed.summary().items() if k != "n_pairs"})
            metrics["label_smoothing"] = label_smoothing
        return publish(section or self.section, self.verdicts(), metrics)


def calibration_audit(
    pair_scores: Any,
    n_bins: int = 10,
    strategy: str = "uniform",
    orientation: str = "both",
    seed: int = 0,
    band: float = 0.1,
    n_folds: int = 5,
    *,
    data: Any = None,
    cluster_column: str | None = None,
    n_boot: int = 1000,
    n_null: int = 100,
    ci: float = 0.95,
    methods: Sequence[Any] = ("temperature", "platt", "isotonic"),
    group_columns: Sequence[str] = GROUP_COLUMNS,
    group_n_boot: int = 0,
    boundary_min_pairs: int = 30,
    name: str | None = None,
) -> CalibrationAudit:
    """Calibration audit of scored pairs: graded ECE excess and temperature, report, boundary, groups, recalibration.

    Parameters
    ----------
    pair_scores : :class:`~workbench.models.scoring.PairScores`, or a DataFrame with
        ``margin`` (or ``chosen_score``/``rejected_score``) and ``label``.
    n_bins, strategy : binning (``"uniform"`` or ``"quantile"``) of the graded ECE, the
        reliability table, MCE and Brier decomposition; ECE is reported for both.
    orientation : ``"both"`` (every pair in both orders, the default), ``"random"``
        (seeded flips) or ``"as_given"``; see :mod:`workbench.audits.calibration.metrics`.
    seed : null draws, bootstrap and (``"random"``) orientation flips.
    band : decision-boundary half-width on the probability scale.
    n_folds : folds of the grouped cross-fitting of the calibrators (at most one per cluster).
    data : the scored :class:`~workbench.data.preferences.PreferenceData` (or its frame),
        for the prompts or topics the scores frame lacks (the resampling unit).
    cluster_column : the column naming the resampling unit (default: ``topic_id``,
        ``topic``, ``group``, ``cluster`` or ``prompt_id`` when present, else the
        normalised prompt; without any, every pair is its own cluster, with a warning).
    n_boot : cluster-bootstrap resamples (0 = no intervals: the checks are then ``n/a``).
    n_null : label draws from the RM's own probabilities for the ECE null.
    ci : level of the intervals (0.95 = 95%).
    group_columns : per-group tables for those columns present with values
        (missing entries become ``"(missing)"``); ``group_n_boot`` adds CIs.
    name : model name shown in titles (default: from ``pair_scores``).
    """
    frame, scored_name = _pairs_frame(pair_scores)
    m, y = validate_inputs(frame["margin"].to_numpy(), frame["label"].to_numpy())
    codes, column = pair_clusters(frame, data, cluster_column)
    unit = unit_name(column)
    kw = dict(n_bins=n_bins, strategy=strategy, orientation=orientation, seed=seed)
    report = calibration_report(m, y, n_boot=n_boot, ci=ci, clusters=codes, **kw)
    uncertainty = calibration_uncertainty(m, y, codes, n_boot=n_boot, n_null=n_null, ci=ci, cluster_unit=unit, **kw)
    boundary = decision_boundary_report(m, y, band, min_pairs=boundary_min_pairs)
    groups = {}
    for col in group_columns:
        if col in frame.columns and frame[col].notna().any():
            g = frame[col].astype(object).where(frame[col].notna(), "(missing)").astype(str).to_numpy()
            groups[col] = per_group_report(m, y, g, n_boot=group_n_boot, ci=ci, **kw).rename(columns={"group": col})
    comparison = cross_fit_calibrators(m, y, codes, n_folds=n_folds, methods=methods, **kw)
    params = dict(
        kw,
        band=float(band),
        n_folds=int(comparison.n_folds),
        n_boot=int(n_boot),
        n_null=int(n_null),
        ci=float(ci),
        methods=list(comparison.calibrators),
        group_n_boot=int(group_n_boot),
        cluster_column=column,
    )
    return CalibrationAudit(
        pairs=frame,
        model_name=name or scored_name or "reward model",
        report=report,
        uncertainty=uncertainty,
        boundary=boundary,
        groups=groups,
        comparison=comparison,
        clusters=codes,
        cluster_unit=unit,
        params=params,
    )


def compare_audits(audits: Mapping[str, CalibrationAudit]) -> pd.DataFrame:
    """One row per audit (``model`` = the mapping's key) with :meth:`CalibrationAudit.summary` columns."""
    if not audits:
        raise ValueError("`audits` is empty")
    rows = [{"model": k, **a.summary()} for k, a in audits.items()]
    out = pd.DataFrame(rows)
    out["n_pairs"] = out["n_pairs"].astype(int)
    out["n_clusters"] = out["n_clusters"].astype(int)
    return out


def plot_audits(audits: Mapping[str, CalibrationAudit], *, figsize=None):
    """Reliability diagrams (all pairs, ``T = 1``) of several audits side by side; returns the Figure."""
    if not audits:
        raise ValueError("`audits` is empty")
    displays, titles = [], []
    for key, a in audits.items():
        r = a.report
        displays.append(ReliabilityDisplay(r.reliability, ece=a.ece, n_bins=r.n_bins, strategy=r.strategy))
        lo, hi = a.uncertainty.temperature_ci
        titles.append(f"{key}\nfitted T = {a.temperature:.3g} (CI {lo:.3g} to {hi:.3g})")
    return plot_reliability_comparison(displays, titles, figsize=figsize)
