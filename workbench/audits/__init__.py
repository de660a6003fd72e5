"""The audits: one subpackage per family, each with a one-call entry point returning an :class:`AuditResult`."""

from workbench.audits.attribution import attribution_audit
from workbench.audits.calibration import calibration_audit
from workbench.audits.drift import drift_audit
from workbench.audits.ensemble import ensemble_audit
from workbench.audits.features import feature_audit
from workbench.audits.overview import overview
from workbench.audits.result import AuditResult
from workbench.audits.simulation import load_simulation_data, run_simulation, simulate_audit, verdict_rates
from workbench.audits.sycophancy import sycophancy_audit

__all__ = [
    "AuditResult",
    "attribution_audit",
    "calibration_audit",
    "drift_audit",
    "ensemble_audit",
    "feature_audit",
    "load_simulation_data",
    "overview",
    "run_simulation",
    "simulate_audit",
    "sycophancy_audit",
    "verdict_rates",
]
