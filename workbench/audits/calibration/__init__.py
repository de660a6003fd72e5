"""Calibration of pairwise reward-model probabilities: metrics, recalibration, reliability diagrams, one audit.

The public surface of :mod:`workbench.audits.calibration`. Under Bradley-Terry an RM
predicts ``P(first preferred) = sigmoid(margin)``; this subpackage checks those
probabilities against human labels. The modules underneath, lowest first (each imports
only the ones above it in this list):

* :mod:`~workbench.audits.calibration.validation`: argument checks (:func:`validate_inputs`);
* :mod:`~workbench.audits.calibration.core`: unchecked array kernels (binning, ECE, Murphy terms);
* :mod:`~workbench.audits.calibration.metrics`: the checked metric functions,
  :func:`bootstrap_ci` and :func:`binned_reliability`;
* :mod:`~workbench.audits.calibration.uncertainty`: the graded numbers,
  :func:`calibration_uncertainty` (ECE excess over its consistency-resampling null and the
  temperature, with cluster-bootstrap intervals) and :func:`pair_clusters`;
* :mod:`~workbench.audits.calibration.display`: :class:`ReliabilityDisplay`;
* :mod:`~workbench.audits.calibration.report`: :func:`calibration_report`,
  :func:`decision_boundary_report`, :func:`per_group_report`;
* :mod:`~workbench.audits.calibration.methods`: temperature, Platt and isotonic
  recalibration (:func:`cross_fit_calibrators`, grouped by cluster; :func:`fit_calibrators`
  on one split);
* :mod:`~workbench.audits.calibration.interactive`: :func:`temperature_slider`;
* :mod:`~workbench.audits.calibration.audit`: the one-call :func:`calibration_audit`
  returning a :class:`CalibrationAudit` (an :class:`~workbench.audits.result.AuditResult`).

Example::

    from workbench.audits.calibration import calibration_audit

    audit = calibration_audit(scores, data=pairs)  # PairScores (or a frame with margin and label) and the scored data
    audit.to_frame(); audit.verdicts(); audit.plot()
"""

from workbench.audits.calibration.audit import (
    VERDICT_COLUMNS,
    CalibrationAudit,
    calibration_audit,
    compare_audits,
    plot_audits,
)
from workbench.audits.calibration.core import BrierDecomposition, PairwiseAccuracy
from workbench.audits.calibration.display import ReliabilityDisplay, plot_reliability_comparison
from workbench.audits.calibration.interactive import interactive_frontend, temperature_slider
from workbench.audits.calibration.methods import (
    CALIBRATORS,
    CalibrationComparison,
    IsotonicCalibration,
    PlattScaling,
    TemperatureScaling,
    cross_fit_calibrators,
    fit_calibrators,
)
from workbench.audits.calibration.metrics import (
    ConfidenceInterval,
    MetricValue,
    binned_reliability,
    bootstrap_ci,
    brier_decomposition,
    brier_score,
    expected_calibration_error,
    margin_nll,
    maximum_calibration_error,
    mean_reward_gap,
    negative_log_likelihood,
    orient_pairs,
    pairwise_accuracy,
    symmetrize,
    top_label,
    top_label_ece,
)
from workbench.audits.calibration.report import (
    REPORT_METRICS,
    CalibrationReport,
    DecisionBoundaryReport,
    calibration_report,
    decision_boundary_report,
    per_group_report,
)
from workbench.audits.calibration.uncertainty import (
    CalibrationUncertainty,
    calibration_uncertainty,
    join_pair_data,
    pair_clusters,
)
from workbench.audits.calibration.validation import ORIENTATIONS, STRATEGIES, validate_inputs

__all__ = [
    # the audit
    "CalibrationAudit",
    "calibration_audit",
    "compare_audits",
    "plot_audits",
    "VERDICT_COLUMNS",
    # reports
    "CalibrationReport",
    "DecisionBoundaryReport",
    "REPORT_METRICS",
    "calibration_report",
    "decision_boundary_report",
    "per_group_report",
    # metrics
    "BrierDecomposition",
    "ConfidenceInterval",
    "MetricValue",
    "ORIENTATIONS",
    "PairwiseAccuracy",
    "STRATEGIES",
    "binned_reliability",
    "bootstrap_ci",
    "brier_decomposition",
    "brier_score",
    "expected_calibration_error",
    "margin_nll",
    "maximum_calibration_error",
    "mean_reward_gap",
    "negative_log_likelihood",
    "orient_pairs",
    "pairwise_accuracy",
    "symmetrize",
    "top_label",
    "top_label_ece",
    "validate_inputs",
    # graded numbers and clusters
    "CalibrationUncertainty",
    "calibration_uncertainty",
    "join_pair_data",
    "pair_clusters",
    # recalibration
    "CALIBRATORS",
    "CalibrationComparison",
    "IsotonicCalibration",
    "PlattScaling",
    "TemperatureScaling",
    "cross_fit_calibrators",
    "fit_calibrators",
    # figures and widgets
    "ReliabilityDisplay",
    "interactive_frontend",
    "plot_reliability_comparison",
    "temperature_slider",
]
