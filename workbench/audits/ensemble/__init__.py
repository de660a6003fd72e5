"""Reward-model ensembles: aggregated rewards, uncertainty, and whether disagreement predicts mistakes.

The public API in one place. The pieces live in

* :mod:`workbench.audits.ensemble.members`: parse and load the members (any spec
  :func:`workbench.models.load_reward_model` accepts), score texts with each, and
  train bootstrap members;
* :mod:`workbench.audits.ensemble.aggregation`: z-scoring and the aggregators (mean,
  std, worst case, ``mean - lam * std``), and the disagreement AUROC (also under bootstrap weights: :func:`weighted_auroc`);
* :mod:`workbench.audits.ensemble.audit`: the evaluation on preference pairs
  (:func:`ensemble_pairs`), its result (:class:`EnsembleResult`) and the one-call
  entry point :func:`ensemble_audit`; its graded checks are about the audited model
  (accuracy against the other members and the ensemble mean, agreement with them, and
  whether their disagreement flags its mistakes), on prompt-clustered intervals;
* :mod:`workbench.audits.ensemble.mc_dropout`: uncertainty of one transformer RM from
  Monte Carlo dropout passes (:func:`mc_dropout_audit`), its AUROC for the RM's mistakes
  next to the ensemble's, and the high-reward, high-uncertainty responses (descriptive).

Typical use::

    from workbench.audits.ensemble import ensemble_audit
    result = ensemble_audit("golden", "demo-clean,demo-biased", model="demo-biased")
    result.to_frame(); result.summary(); result.verdicts(); result.plot()
    result.top_disagreements(10)
"""

from __future__ import annotations

from workbench.audits.ensemble.aggregation import (
    AGGREGATORS,
    EnsembleScores,
    check_lam,
    disagreement_auroc,
    ensemble_scores,
    score_frame,
    weighted_auroc,
    zscore_matrix,
)
from workbench.audits.ensemble.audit import (
    ACCURACY_MARGINS,
    AGGREGATOR_MARGINS,
    AGREEMENT_MARGINS,
    AUROC_MARGINS,
    EnsembleResult,
    bootstrap_interval,
    ensemble_audit,
    ensemble_pairs,
)
from workbench.audits.ensemble.mc_dropout import (
    MC_DROPOUT_VERSION,
    MCDropoutResult,
    MCDropoutScores,
    dropout_modules,
    mc_dropout_audit,
    mc_dropout_pairs,
    mc_dropout_scores,
    mc_variant,
    pass_seed,
    stochastic_mode,
)
from workbench.audits.ensemble.members import (
    as_pair_frame,
    load_members,
    parse_members,
    score_matrix,
    train_bootstrap_members,
)

__all__ = [
    # entry point and result
    "ensemble_audit",
    "ensemble_pairs",
    "EnsembleResult",
    # graded checks: (warn, fail) margins
    "ACCURACY_MARGINS",
    "AGGREGATOR_MARGINS",
    "AGREEMENT_MARGINS",
    "AUROC_MARGINS",
    # aggregation
    "AGGREGATORS",
    "EnsembleScores",
    "ensemble_scores",
    "zscore_matrix",
    "disagreement_auroc",
    "weighted_auroc",
    "score_frame",
    "check_lam",
    "bootstrap_interval",
    # members
    "parse_members",
    "load_members",
    "score_matrix",
    "as_pair_frame",
    "train_bootstrap_members",
    # MC-dropout uncertainty of one RM
    "mc_dropout_audit",
    "mc_dropout_pairs",
    "mc_dropout_scores",
    "MCDropoutResult",
    "MCDropoutScores",
    "MC_DROPOUT_VERSION",
    "dropout_modules",
    "stochastic_mode",
    "pass_seed",
    "mc_variant",
]
