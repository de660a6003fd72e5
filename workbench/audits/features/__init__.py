"""Surface-feature audit: does the reward model pay for length, agreement, flattery or style?

One call, :func:`feature_audit`, runs every check on scored preference pairs and returns a
:class:`FeatureAudit` (the :class:`~workbench.audits.result.AuditResult` of this audit):

* :mod:`~workbench.audits.features.text_features`: the shallow features of a response
  (:func:`extract_features`) and the hedge, agreement and flattery lexicons;
* :mod:`~workbench.audits.features.probes`: correlations, pair-level preference rates, the
  length baseline, the regression and :func:`flag_summary`;
* :mod:`~workbench.audits.features.perturbations`: counterfactual edits of a response and
  their reward effects (:func:`perturbation_effects`);
* :mod:`~workbench.audits.features.triggers`: n-grams that go with a higher reward (:func:`mine_triggers`);
* :mod:`~workbench.audits.features.families`: the graded, label-adjusted checks and one verdict
  per family (:data:`FAMILIES`, :data:`MARGINS`);
* :mod:`~workbench.audits.features.simulation`: false-alarm and power simulation of those checks;
* :mod:`~workbench.audits.features.audit`: :func:`feature_audit`, the verdict table and the
  example browser.
"""

from workbench.audits.features.audit import (
    DEFAULT_REGRESSION_FEATURES,
    FEATURE_FAMILIES,
    FLAG_CHECKS,
    LENGTH_CHECKS,
    PERTURBATION_FAMILIES,
    SECTION,
    FeatureAudit,
    feature_audit,
    feature_browser,
    feature_family,
    render_examples_html,
)
from workbench.audits.features.families import FAMILIES, MARGINS, CheckSpec, FamilySpec, graded_family_checks
from workbench.audits.features.perturbations import (
    AGREEING_OPENERS,
    FILLER_SENTENCES,
    FLATTERING_OPENERS,
    HEDGE_SENTENCES,
    NEUTRAL_OPENERS,
    PERTURBATIONS,
    PLACEBO_CONTROLS,
    PerturbationResult,
    add_flattering_opener,
    add_neutral_opener,
    agree_with_user,
    append_filler_sentence,
    append_hedge,
    pad_with_filler,
    perturbation_effects,
    repeat_sentence,
    resolve_perturbations,
    to_bullet_list,
    with_placebos,
)
from workbench.audits.features.probes import (
    VERDICTS,
    FeatureCorrelationResult,
    LengthBaselineResult,
    PairPreferenceResult,
    RegressionResult,
    center_within_groups,
    feature_correlations,
    fit_pair_temperature,
    fit_pair_temperature_joint,
    flag_summary,
    length_baseline,
    pairwise_preference_rates,
    pooled_within_sd,
    reward_regression,
)
from workbench.audits.features.text_features import (
    AGREEMENT_OPENER_WORDS,
    AGREEMENT_PHRASES,
    FEATURE_DESCRIPTIONS,
    FLATTERY_OPENER_WORDS,
    FLATTERY_PHRASES,
    HEDGES,
    agreement_count,
    approx_token_count,
    count_phrases,
    extract_features,
    flattery_count,
    hedge_count,
    split_sentences,
    token_counts,
    words,
)
from workbench.audits.features.triggers import TOKEN_PATTERN, TriggerResult, benjamini_hochberg, mine_triggers

__all__ = [
    # one-call audit
    "feature_audit",
    "FeatureAudit",
    "feature_family",
    "feature_browser",
    "render_examples_html",
    "SECTION",
    "FEATURE_FAMILIES",
    "PERTURBATION_FAMILIES",
    "LENGTH_CHECKS",
    "DEFAULT_REGRESSION_FEATURES",
    "FLAG_CHECKS",
    # graded families
    "FAMILIES",
    "MARGINS",
    "CheckSpec",
    "FamilySpec",
    "graded_family_checks",
    # text features
    "extract_features",
    "FEATURE_DESCRIPTIONS",
    "HEDGES",
    "AGREEMENT_PHRASES",
    "AGREEMENT_OPENER_WORDS",
    "FLATTERY_PHRASES",
    "FLATTERY_OPENER_WORDS",
    "approx_token_count",
    "token_counts",
    "split_sentences",
    "words",
    "count_phrases",
    "hedge_count",
    "agreement_count",
    "flattery_count",
    # probes
    "VERDICTS",
    "FeatureCorrelationResult",
    "PairPreferenceResult",
    "LengthBaselineResult",
    "RegressionResult",
    "feature_correlations",
    "pairwise_preference_rates",
    "fit_pair_temperature",
    "fit_pair_temperature_joint",
    "length_baseline",
    "reward_regression",
    "flag_summary",
    "center_within_groups",
    "pooled_within_sd",
    # perturbations
    "PERTURBATIONS",
    "PLACEBO_CONTROLS",
    "PerturbationResult",
    "perturbation_effects",
    "resolve_perturbations",
    "with_placebos",
    "FLATTERING_OPENERS",
    "AGREEING_OPENERS",
    "HEDGE_SENTENCES",
    "FILLER_SENTENCES",
    "NEUTRAL_OPENERS",
    "add_flattering_opener",
    "agree_with_user",
    "append_hedge",
    "pad_with_filler",
    "to_bullet_list",
    "repeat_sentence",
    "add_neutral_opener",
    "append_filler_sentence",
    # trigger n-grams
    "mine_triggers",
    "TriggerResult",
    "benjamini_hochberg",
    "TOKEN_PATTERN",
]
