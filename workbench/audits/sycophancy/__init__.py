"""Sycophancy audit: does the reward model prefer agreeing with a user who is wrong?

The public API in one place. The pieces live in

* :mod:`workbench.audits.sycophancy.pairs`: items, pressure templates (``plain``,
  ``belief``, ``authority``, ``expert``, and the two-turn ``are_you_sure``), pair
  building, and loaders for the shipped set, Anthropic's model-written-evals
  sycophancy JSONL and question / correct / incorrect answer CSVs (TruthfulQA);
* :mod:`workbench.audits.sycophancy.audit`: one batched scoring call, the metrics
  (sycophancy rate, control agreement rate, sycophancy index ``S + C - 1``,
  truth sensitivity ``C - S``, mean reward margins) with item-clustered bootstrap
  CIs (level ``ci=0.95``), breakdowns by domain and template, the pressure effect,
  the worst pairs, the graded checks of family ``"sycophancy"`` (the index, primary,
  and control agreement, each graded on its interval), the paired comparison of two
  RMs on the same items (:func:`compare_sycophancy`), plots and an ipywidgets browser.

:class:`SycophancyResult` follows the audit result contract
(:class:`workbench.audits.result.AuditResult`: ``to_frame``, ``summary``,
``verdicts``, ``plot(ax=None)``).

Typical use::

    from workbench.audits.sycophancy import sycophancy_audit
    result = sycophancy_audit("demo-biased")          # shipped items x 5 templates
    result.to_frame(); result.by_template(); result.pressure_effect()
    result.verdicts(); result.plot()
"""

from __future__ import annotations

from workbench.audits.sycophancy.audit import (
    CONTROL_MARGINS,
    INDEX_MARGINS,
    METRICS,
    SycophancyResult,
    SycophancyVerdict,
    analyze_sycophancy,
    cluster_bootstrap,
    compare_sycophancy,
    render_pairs_html,
    score_sycophancy_pairs,
    sycophancy_audit,
    sycophancy_texts,
    sycophancy_verdict,
    worst_items_browser,
)
from workbench.audits.sycophancy.pairs import (
    BASELINE_TEMPLATE,
    DATA_FORMATS,
    DEFAULT_TEMPLATES,
    ITEM_COLUMNS,
    PAIR_COLUMNS,
    PressureTemplate,
    build_sycophancy_pairs,
    capitalize_first,
    is_pair_frame,
    items_from_records,
    load_anthropic_sycophancy,
    load_claim_csv,
    load_sycophancy_data,
    load_sycophancy_items,
    load_sycophancy_pairs,
    resolve_templates,
    sample_items,
    shipped_items_path,
)

__all__ = [
    "CONTROL_MARGINS",
    "INDEX_MARGINS",
    "METRICS",
    "SycophancyResult",
    "SycophancyVerdict",
    "analyze_sycophancy",
    "cluster_bootstrap",
    "compare_sycophancy",
    "render_pairs_html",
    "score_sycophancy_pairs",
    "sycophancy_texts",
    "sycophancy_audit",
    "sycophancy_verdict",
    "worst_items_browser",
    "BASELINE_TEMPLATE",
    "DATA_FORMATS",
    "DEFAULT_TEMPLATES",
    "ITEM_COLUMNS",
    "PAIR_COLUMNS",
    "PressureTemplate",
    "build_sycophancy_pairs",
    "capitalize_first",
    "is_pair_frame",
    "items_from_records",
    "load_anthropic_sycophancy",
    "load_claim_csv",
    "load_sycophancy_data",
    "load_sycophancy_pairs",
    "load_sycophancy_items",
    "resolve_templates",
    "sample_items",
    "shipped_items_path",
]
