"""Drift and Goodhart audit: does the policy learn to please the reward model instead of the user?

The public API in one place. The pieces live in

* :mod:`workbench.audits.drift.samples`: policy samples (loading, validation, checkpoint
  order) and the demo data's simulated gold judge;
* :mod:`workbench.audits.drift.statistics`: normed Wasserstein, PSI, Holm, t and Welch intervals;
* :mod:`workbench.audits.drift.permutation`: the permutation null of the normed Wasserstein
  distance and the cluster-bootstrap interval of its excess (the graded drift effect);
* :mod:`workbench.audits.drift.checkpoints`: reward drift per checkpoint against a reference
  (:func:`reward_drift`) and the checkpoint pairs for the relabel queue;
* :mod:`workbench.audits.drift.flag`: the Goodhart flag (reward up, gold down; paired by prompt);
* :mod:`workbench.audits.drift.phrases`: trigger-phrase frequencies and emerging n-grams;
* :mod:`workbench.audits.drift.goodhart`: best-of-n Goodhart curves with the Gao et al. fit and
  the gold lost past the peak;

Three verdict families, all in the report section ``"drift"``: ``drift`` (the last
checkpoint's excess Wasserstein distance), ``goodhart`` (gold change while the reward
rises) and ``best_of_n`` (gold lost past the peak), each graded on a cluster-bootstrap
interval by :func:`workbench.reports.verdicts.graded_verdict`.
* :mod:`workbench.audits.drift.audit`: :func:`drift_audit`, all of it in one call
  (notebook 05), returning a :class:`DriftAudit`.

Example::

    from workbench.audits.drift import drift_audit

    audit = drift_audit("demo-biased", "demo-policy")
    audit.to_frame()  # one row per checkpoint
    audit.plot()
    audit.publish()  # verdicts and metrics of the "drift" report section
"""

from workbench.audits.drift.audit import DriftAudit, drift_audit
from workbench.audits.drift.checkpoints import (
    QUANTILES,
    STATUSES,
    DriftResult,
    checkpoint_pairs,
    relabel_candidates,
    reward_drift,
)
from workbench.audits.drift.flag import GoodhartFlag, goodhart_flag, paired_change
from workbench.audits.drift.goodhart import (
    BestOfNResult,
    GaoFit,
    best_of_n_curve,
    bon_expectation,
    bon_weights,
    fit_gao_bon,
    kl_bon,
    load_bon_pools,
)
from workbench.audits.drift.permutation import WassersteinNull, wasserstein_null, weighted_normed_wasserstein
from workbench.audits.drift.phrases import (
    TriggerFrequency,
    emerging_phrases,
    select_phrases,
    trigger_frequency,
    trigger_hits,
)
from workbench.audits.drift.samples import (
    POLICY_REQUIRED,
    demo_gold_score,
    load_policy_samples,
    select_policy_samples,
)
from workbench.audits.drift.statistics import normed_wasserstein, psi, psi_bins

__all__ = [
    # one call
    "drift_audit",
    "DriftAudit",
    # policy samples
    "load_policy_samples",
    "select_policy_samples",
    "demo_gold_score",
    "POLICY_REQUIRED",
    # reward drift
    "reward_drift",
    "DriftResult",
    "QUANTILES",
    "STATUSES",
    "normed_wasserstein",
    "psi",
    "psi_bins",
    "wasserstein_null",
    "WassersteinNull",
    "weighted_normed_wasserstein",
    # Goodhart flag
    "goodhart_flag",
    "GoodhartFlag",
    "paired_change",
    # trigger phrases
    "trigger_frequency",
    "TriggerFrequency",
    "emerging_phrases",
    "select_phrases",
    "trigger_hits",
    # relabel candidates
    "checkpoint_pairs",
    "relabel_candidates",
    # best-of-n
    "best_of_n_curve",
    "BestOfNResult",
    "load_bon_pools",
    "kl_bon",
    "bon_weights",
    "bon_expectation",
    "fit_gao_bon",
    "GaoFit",
]
