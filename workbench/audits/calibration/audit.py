"""One-call calibration audit of scored preference pairs (issue 3; used by notebook 01).

:func:`calibration_audit` takes :class:`~workbench.models.scoring.PairScores` (or a
DataFrame with ``margin`` and ``label`` columns) and bundles what the lower
layers compute:

* :func:`~workbench.audits.calibration.report.calibration_report` - accuracy, mean reward gap,
  ECE (equal-width and equal-mass), MCE, Brier with its Murphy terms, NLL,
  top-label ECE, all with bootstrap CIs, and the reliability table;
* :func:`~workbench.audits.calibration.report.decision_boundary_report` - the pairs with
  ``|sigmoid(margin) - 0.5| <= band``;
* :func:`~workbench.audits.calibration.report.per_group_report` - one table per group column
  (``category``, ``subset``) that has values;
* :func:`~workbench.audits.calibration.methods.fit_calibrators` - temperature, Platt
  and isotonic recalibration fitted on one split and compared on the held-out
  pairs (``T`` is :attr:`CalibrationAudit.temperature`).

All parts share ``orientation``, ``seed``, ``n_bins`` and ``strategy``, so a
pair is flipped the same way in every table. No number is computed here that
the lower layers do not compute; the module only orchestrates, summarises
(:meth:`CalibrationAudit.summary`, :func:`compare_audits`) and grades
(:meth:`CalibrationAudit.verdicts`). :class:`CalibrationAudit` is an
:class:`~workbench.audits.result.AuditResult` published under the section ``"calibration"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench.audits.calibration.display import ReliabilityDisplay, plot_reliability_comparison
from workbench.audits.calibration.methods import CalibrationComparison, fit_calibrators
from workbench.audits.calibration.report import (
    CalibrationReport,
    DecisionBoundaryReport,
    calibration_report,
    decision_boundary_report,
    per_group_report,
)
from workbench.audits.calibration.validation import validate_inputs
from workbench.audits.result import AuditResult
from workbench.reports.verdicts import Verdict, grade, publish

__all__ = [
    "VERDICT_COLUMNS",
    "CalibrationAudit",
    "calibration_audit",
    "compare_audits",
    "plot_audits",
]

VERDICT_COLUMNS = ["check", "value", "threshold", "verdict", "detail"]
GROUP_COLUMNS = ("category", "subset")


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


@dataclass
class CalibrationAudit(AuditResult):
    """Result of :func:`calibration_audit` (an :class:`~workbench.audits.result.AuditResult`).

    Attributes
    ----------
    pairs : the per-pair frame (``margin``, ``label``, group columns).
    report : :class:`~workbench.audits.calibration.report.CalibrationReport` on all pairs at ``T = 1``.
    boundary : :class:`~workbench.audits.calibration.report.DecisionBoundaryReport` for ``band``.
    groups : ``{column: per_group_report table}`` for each group column with values.
    comparison : :class:`~workbench.audits.calibration.methods.CalibrationComparison`
        (calibrators fitted on ``1 - test_size`` of the pairs, evaluated on the rest).
    params : the arguments the audit ran with.
    """

    pairs: pd.DataFrame = field(repr=False)
    model_name: str
    report: CalibrationReport
    boundary: DecisionBoundaryReport
    groups: dict[str, pd.DataFrame]
    comparison: CalibrationComparison
    params: dict

    section: ClassVar[str] = "calibration"

    # -- headline numbers ---------------------------------------------------

    @property
    def n_pairs(self) -> int:
        return int(len(self.pairs))

    @property
    def ece(self) -> float:
        """ECE of ``sigmoid(margin)`` on all pairs with the audit's ``strategy``."""
        return self.report[_ece_key(self.report.strategy)].value

    @property
    def temperature(self) -> float:
        """Temperature fitted on the fit split (NaN when ``"temperature"`` was not among ``methods``)."""
        cal = self.comparison.calibrators.get("temperature")
        return float(cal.temperature_) if cal is not None else float("nan")

    @property
    def temperature_at_bound(self) -> bool:
        cal = self.comparison.calibrators.get("temperature")
        return bool(cal is not None and cal.at_bound_)

    def summary(self) -> dict[str, float]:
        """Headline numbers as a flat dict (what :func:`compare_audits` tabulates).

        ``accuracy``, ``ece``, ``nll``, ``brier``, ``mean_reward_gap`` are on all
        pairs at ``T = 1``; ``temperature`` is fitted on the fit split;
        ``heldout_*`` are on the held-out pairs before and after temperature
        scaling; ``mean_abs_margin`` / ``median_abs_margin`` describe the size of
        the RM's margins (what label smoothing shrinks).
        """
        abs_m = np.abs(self.pairs["margin"].to_numpy(dtype=float))
        after = self.comparison.after.get("temperature", {})
        key = _ece_key(self.report.strategy)
        return {
            "n_pairs": float(self.n_pairs),
            "accuracy": self.report["accuracy"].value,
            "mean_reward_gap": self.report["mean_reward_gap"].value,
            "ece": self.ece,
            "nll": self.report["nll"].value,
            "brier": self.report["brier"].value,
            "temperature": self.temperature,
            "heldout_ece_before": self.comparison.before[key],
            "heldout_ece_after_temperature": after.get(key, float("nan")),
            "heldout_nll_before": self.comparison.before["nll"],
            "heldout_nll_after_temperature": after.get("nll", float("nan")),
            "mean_abs_margin": float(abs_m.mean()),
            "median_abs_margin": float(np.median(abs_m)),
        }

    # -- tables ---------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Metric table: the report's rows (``metric, value, ci_low, ci_high``) plus
        ``temperature`` and the held-out NLL/ECE before and after temperature scaling."""
        s = self.summary()
        extra = [
            "temperature",
            "heldout_ece_before",
            "heldout_ece_after_temperature",
            "heldout_nll_before",
            "heldout_nll_after_temperature",
            "mean_abs_margin",
            "n_pairs",
        ]
        rows = pd.DataFrame(
            [(k, s[k], np.nan, np.nan) for k in extra], columns=["metric", "value", "ci_low", "ci_high"]
        )
        return pd.concat([self.report.to_frame(), rows], ignore_index=True)

    def calibrators_frame(self) -> pd.DataFrame:
        """Held-out comparison, wide: one row per method (``uncalibrated`` first), one column per metric."""
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
        """Held-out reliability diagrams, uncalibrated then each calibrator; returns the Figure."""
        fig = self.comparison.plot(figsize=figsize)
        fig.suptitle(
            f"{self.model_name}: fitted on {self.comparison.n_fit} pairs, "
            f"evaluated on {self.comparison.n_test} held-out pairs",
            y=1.02,
        )
        return fig

    # -- verdicts -------------------------------------------------------------

    def verdicts(
        self,
        *,
        ece_warn: float = 0.05,
        ece_fail: float = 0.10,
        temperature_warn: float = 1.5,
        temperature_fail: float = 2.0,
    ) -> list[Verdict]:
        """Graded checks for the report, as :class:`~workbench.reports.verdicts.Verdict` objects
        of section ``"calibration"`` (:meth:`verdicts_frame` shows them as a table).

        ``verdict`` is ``pass``, ``warn``, ``fail`` or ``n/a`` (NaN value), from
        :func:`workbench.reports.verdicts.grade`: comparisons are strict, a value equal to
        a threshold does not trip it.

        * ``ece`` - ECE of ``sigmoid(margin)`` on all pairs: warn ``> ece_warn``,
          fail ``> ece_fail``.
        * ``temperature`` - fitted ``T``, graded on ``max(T, 1 / T)`` (how far
          from 1 on a log scale): warn ``> temperature_warn``, fail ``>
          temperature_fail``. ``T > 1``: over-confident margins; ``T < 1``:
          under-confident.
        * ``ece_after_temperature`` - held-out ECE after temperature scaling,
          same thresholds as ``ece``: whether one scale factor fixes it.
        """
        for nm, v in (("ece_warn", ece_warn), ("ece_fail", ece_fail)):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"`{nm}` must be a non-negative number, got {v!r}")
        if ece_warn > ece_fail:
            raise ValueError(f"`ece_warn` ({ece_warn}) must not exceed `ece_fail` ({ece_fail})")
        for nm, v in (("temperature_warn", temperature_warn), ("temperature_fail", temperature_fail)):
            if not np.isfinite(v) or v < 1:
                raise ValueError(f"`{nm}` must be a number >= 1 (a factor away from T = 1), got {v!r}")
        if temperature_warn > temperature_fail:
            raise ValueError(
                f"`temperature_warn` ({temperature_warn}) must not exceed `temperature_fail` ({temperature_fail})"
            )

        ece_thr = f"> {ece_warn:g} warn, > {ece_fail:g} fail"
        key = _ece_key(self.report.strategy)
        mv = self.report[key]
        ci = f"95% CI [{mv.ci_low:.3f}, {mv.ci_high:.3f}]; " if np.isfinite(mv.ci_low) else ""
        rows = [
            (
                "ece",
                mv.value,
                ece_thr,
                grade(mv.value, ece_warn, ece_fail),
                f"{ci}{self.report.n_bins} {self.report.strategy} bins, {self.report.orientation} orientation, "
                f"{self.n_pairs} pairs",
            )
        ]

        t = self.temperature
        if np.isfinite(t):
            direction = (
                "over-confident (margins too large)"
                if t > 1
                else "under-confident (margins too small)"
                if t < 1
                else "calibrated scale"
            )
            note = f"{direction}; fitted on {self.comparison.n_fit} pairs"
            if self.temperature_at_bound:
                note += "; at the search bound (separable or uninformative data)"
            far = max(t, 1.0 / t)
        else:
            note, far = "temperature scaling not fitted", float("nan")
        rows.append(
            (
                "temperature",
                t,
                f"T > {temperature_warn:g} or < {1 / temperature_warn:.3g} warn; "
                f"T > {temperature_fail:g} or < {1 / temperature_fail:.3g} fail",
                grade(far, temperature_warn, temperature_fail),
                note,
            )
        )

        after = self.comparison.after.get("temperature", {}).get(key, float("nan"))
        rows.append(
            (
                "ece_after_temperature",
                after,
                ece_thr,
                grade(after, ece_warn, ece_fail),
                f"held-out ({self.comparison.n_test} pairs); before: {self.comparison.before[key]:.4f}",
            )
        )
        return [
            Verdict(section=self.section, check=c, value=float(v), threshold=t, verdict=g, detail=d)
            for c, v, t, g, d in rows
        ]

    def verdicts_frame(self, **thresholds: float) -> pd.DataFrame:
        """:meth:`verdicts` as a table: columns ``check, value, threshold, verdict, detail``."""
        return pd.DataFrame(
            [(v.check, v.value, v.threshold, v.verdict, v.detail) for v in self.verdicts(**thresholds)],
            columns=VERDICT_COLUMNS,
        )

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
    orientation: str = "random",
    seed: int = 0,
    band: float = 0.1,
    test_size: float = 0.5,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    methods: Sequence[Any] = ("temperature", "platt", "isotonic"),
    group_columns: Sequence[str] = GROUP_COLUMNS,
    group_n_boot: int = 0,
    boundary_min_pairs: int = 30,
    name: str | None = None,
) -> CalibrationAudit:
    """Calibration audit of scored pairs: report, decision boundary, groups, recalibration.

    Parameters
    ----------
    pair_scores : :class:`~workbench.models.scoring.PairScores`, or a DataFrame with
        ``margin`` (or ``chosen_score``/``rejected_score``) and ``label``.
    n_bins, strategy : binning (``"uniform"`` or ``"quantile"``) of the
        reliability table, MCE and Brier decomposition; ECE is reported for both.
    orientation : ``"random"`` (seeded flips), ``"both"`` or ``"as_given"``;
        see :mod:`workbench.audits.calibration.metrics`.
    seed : orientation flips, bootstrap and the fit/test split.
    band : decision-boundary half-width on the probability scale.
    test_size : held-out fraction for the calibrators.
    n_boot : bootstrap resamples of the overall report (0 = no CIs).
    ci : level of the bootstrap and reliability intervals (0.95 = 95%).
    group_columns : per-group tables for those columns present with values
        (missing entries become ``"(missing)"``); ``group_n_boot`` adds CIs.
    name : model name shown in titles (default: from ``pair_scores``).
    """
    frame, scored_name = _pairs_frame(pair_scores)
    m, y = validate_inputs(frame["margin"].to_numpy(), frame["label"].to_numpy())
    kw = dict(n_bins=n_bins, strategy=strategy, orientation=orientation, seed=seed)
    report = calibration_report(m, y, n_boot=n_boot, ci=ci, **kw)
    boundary = decision_boundary_report(m, y, band, min_pairs=boundary_min_pairs)
    groups = {}
    for col in group_columns:
        if col in frame.columns and frame[col].notna().any():
            g = frame[col].astype(object).where(frame[col].notna(), "(missing)").astype(str).to_numpy()
            groups[col] = per_group_report(m, y, g, n_boot=group_n_boot, ci=ci, **kw).rename(columns={"group": col})
    comparison = fit_calibrators(m, y, test_size=test_size, methods=methods, **kw)
    params = dict(
        kw,
        band=float(band),
        test_size=float(test_size),
        n_boot=int(n_boot),
        ci=float(ci),
        methods=list(comparison.calibrators),
        group_n_boot=int(group_n_boot),
    )
    return CalibrationAudit(
        pairs=frame,
        model_name=name or scored_name or "reward model",
        report=report,
        boundary=boundary,
        groups=groups,
        comparison=comparison,
        params=params,
    )


def compare_audits(audits: Mapping[str, CalibrationAudit]) -> pd.DataFrame:
    """One row per audit (``model`` = the mapping's key) with :meth:`CalibrationAudit.summary` columns."""
    if not audits:
        raise ValueError("`audits` is empty")
    rows = [{"model": k, **a.summary()} for k, a in audits.items()]
    out = pd.DataFrame(rows)
    out["n_pairs"] = out["n_pairs"].astype(int)
    return out


def plot_audits(audits: Mapping[str, CalibrationAudit], *, figsize=None):
    """Reliability diagrams (all pairs, ``T = 1``) of several audits side by side; returns the Figure."""
    if not audits:
        raise ValueError("`audits` is empty")
    displays, titles = [], []
    for key, a in audits.items():
        r = a.report
        displays.append(ReliabilityDisplay(r.reliability, ece=a.ece, n_bins=r.n_bins, strategy=r.strategy))
        titles.append(f"{key}\nfitted T = {a.temperature:.3g}")
    return plot_reliability_comparison(displays, titles, figsize=figsize)
