"""Which words of a response move the reward? Token attribution for reward models.

The public surface of the attribution audit (import from here, not from the modules):

Methods (one class each, Captum style: build once, call ``.attribute(...)``)
    :class:`IntegratedGradientsExplainer` (Captum ``LayerIntegratedGradients`` on the
    input embeddings of a transformer RM), :class:`OcclusionExplainer` (delete one word,
    rescore: any RM) and :class:`ShapExplainer` (SHAP Partition explainer over the
    response's words: any RM); :func:`make_explainer` builds one by name.
    Each returns an :class:`Explanation` (one attribution per response word).
Comparing and testing explanations
    :func:`rank_agreement` / :func:`compare_methods` (method agreement),
    :func:`deletion_curve` / :func:`deletion_summary` / :func:`faithfulness_effect`
    (faithfulness: top-k deletions against random ones, the graded check),
    :func:`aggregate_attributions` / :func:`compare_with_triggers` /
    :func:`top_word_hit_rate` (dataset level and the link to trigger mining).
Display
    :func:`explanation_html` (escaped heatmap), :func:`explanation_browser` (widget).
The one-call audit
    :func:`attribution_audit` returns an :class:`AttributionAudit` (notebook 03).

Layout: ``_words`` (splitting and deleting words, argument checks), ``explanation``
(the result type, margins), ``render`` (HTML and bars), ``_base`` (what the explainers
share), ``cache`` (explanations kept between runs), ``integrated_gradients`` / ``occlusion`` / ``shap``
(one file per method),
``factory``, ``agreement``, ``faithfulness``, ``dataset``, ``browser`` and ``audit``.
"""

from workbench.audits.attribution._base import explain_responses
from workbench.audits.attribution._words import (
    AGREEMENT_WORDS,
    TOKEN_PATTERN,
    delete_words,
    normalize_words,
    response_words,
)
from workbench.audits.attribution.agreement import MethodAgreement, compare_methods, rank_agreement
from workbench.audits.attribution.audit import (
    FAITHFULNESS_EXAMPLES,
    FAITHFULNESS_MARGINS,
    AttributionAudit,
    attribution_audit,
)
from workbench.audits.attribution.browser import browser_html, explanation_browser
from workbench.audits.attribution.cache import ExplanationCache, explanation_key
from workbench.audits.attribution.dataset import (
    TriggerComparison,
    aggregate_attributions,
    compare_with_triggers,
    hit_rates_by_group,
    top_word_hit_rate,
    top_word_hits,
)
from workbench.audits.attribution.explanation import (
    Explanation,
    explanation_html,
    margin_explanation,
    summary_frame,
)
from workbench.audits.attribution.factory import METHODS, make_explainer
from workbench.audits.attribution.faithfulness import (
    DeletionCurve,
    deletion_curve,
    deletion_summary,
    faithfulness_effect,
    plot_deletion_summary,
)
from workbench.audits.attribution.integrated_gradients import BASELINES, IntegratedGradientsExplainer
from workbench.audits.attribution.occlusion import OcclusionExplainer
from workbench.audits.attribution.shap import ShapExplainer

__all__ = [
    "AGREEMENT_WORDS",
    "BASELINES",
    "FAITHFULNESS_EXAMPLES",
    "FAITHFULNESS_MARGINS",
    "METHODS",
    "TOKEN_PATTERN",
    "AttributionAudit",
    "DeletionCurve",
    "Explanation",
    "ExplanationCache",
    "IntegratedGradientsExplainer",
    "MethodAgreement",
    "OcclusionExplainer",
    "ShapExplainer",
    "TriggerComparison",
    "aggregate_attributions",
    "attribution_audit",
    "browser_html",
    "compare_methods",
    "compare_with_triggers",
    "delete_words",
    "deletion_curve",
    "deletion_summary",
    "explain_responses",
    "explanation_browser",
    "explanation_html",
    "explanation_key",
    "faithfulness_effect",
    "hit_rates_by_group",
    "make_explainer",
    "margin_explanation",
    "normalize_words",
    "plot_deletion_summary",
    "rank_agreement",
    "response_words",
    "summary_frame",
    "top_word_hit_rate",
    "top_word_hits",
]
