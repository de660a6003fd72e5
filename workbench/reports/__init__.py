"""Audit reports: verdicts, notebook runs, HTML pages, ``summary.json`` and run comparison.

The public API in one place. The pieces live in

* :mod:`workbench.reports.verdicts`: the :class:`Verdict` of one check, :func:`grade`,
  :func:`worst`, and :func:`publish` / :func:`collect`, which carry a notebook's
  verdicts and headline metrics to the report builder inside the executed notebook;
* :mod:`workbench.reports.runner`: parameter checks and one notebook run with papermill,
  exported to self-contained HTML;
* :mod:`workbench.reports.pipeline`: :func:`run_audit`, the whole audit of one model as a
  short list of named steps, and :func:`run_demo`;
* :mod:`workbench.reports.summary`: ``summary.json`` (:func:`build_summary`, :func:`load_summary`), one
  verdict per family (:func:`family_table`) and the overall verdict, the worst family verdict;
* :mod:`workbench.reports.index`: the ``index.html`` pages, from Jinja2 templates with
  autoescaping (``templates/``, ``static/report.css``; :mod:`workbench.reports.pages`);
* :mod:`workbench.reports.compare`: what changed between two runs (:func:`compare_summaries`);
* :mod:`workbench.reports.render`: escaped inline HTML for notebooks (:func:`escape_text`, :func:`show_table`);
* :mod:`workbench.reports.notebook_setup`: :func:`setup_notebook`, the first call of every notebook.

Typical use::

    from workbench.reports import run_audit, compare_summaries
    run = run_audit("demo-biased", out="reports/demo-biased", notebooks=["00", "01"])
    run.ok, run.overall, run.index
    print(compare_summaries("reports/demo-clean", "reports/demo-biased").to_text())
"""

from __future__ import annotations

from workbench.reports.compare import Comparison, compare_summaries, main_compare
from workbench.reports.grading import RULE, Grade, grade_interval
from workbench.reports.index import render_run_index, render_top_index, write_run_index, write_top_index
from workbench.reports.notebook_setup import setup_notebook
from workbench.reports.pages import render_page
from workbench.reports.pipeline import (
    DEMO_MODELS,
    AuditPlan,
    AuditRun,
    ResolvedInputs,
    model_fingerprint,
    plan_audit,
    resolve_inputs,
    run_audit,
    run_demo,
    run_notebooks,
    summarize,
)
from workbench.reports.render import escape_text, safe_table, show_table
from workbench.reports.runner import (
    NOTEBOOK_DIR,
    NotebookRun,
    ParameterError,
    available_notebooks,
    execute_notebook,
    export_html,
    export_report,
    notebook_parameters,
    parameter_defaults,
    plan_parameters,
    run_notebook,
    select_notebooks,
    validate_parameters,
)
from workbench.reports.summary import (
    SCHEMA,
    build_results,
    build_summary,
    data_hash,
    family_table,
    load_summary,
    upgrade_summary,
    write_summary,
)
from workbench.reports.verdicts import (
    MIME,
    VERDICT_LEVELS,
    Verdict,
    collect,
    family_verdicts,
    grade,
    graded_verdict,
    publish,
    severity,
    worst,
)

__all__ = [
    # verdicts and interval grading
    "RULE",
    "Grade",
    "grade_interval",
    "family_verdicts",
    "graded_verdict",
    "MIME",
    "VERDICT_LEVELS",
    "Verdict",
    "collect",
    "grade",
    "publish",
    "severity",
    "worst",
    # runner
    "NOTEBOOK_DIR",
    "NotebookRun",
    "ParameterError",
    "available_notebooks",
    "execute_notebook",
    "export_html",
    "export_report",
    "notebook_parameters",
    "parameter_defaults",
    "plan_parameters",
    "run_notebook",
    "select_notebooks",
    "validate_parameters",
    # pipeline
    "DEMO_MODELS",
    "AuditPlan",
    "AuditRun",
    "ResolvedInputs",
    "plan_audit",
    "resolve_inputs",
    "run_audit",
    "run_demo",
    "run_notebooks",
    "summarize",
    # summary
    "SCHEMA",
    "build_results",
    "build_summary",
    "data_hash",
    "family_table",
    "load_summary",
    "model_fingerprint",
    "upgrade_summary",
    "write_summary",
    # index pages
    "render_page",
    "render_run_index",
    "render_top_index",
    "write_run_index",
    "write_top_index",
    # compare
    "Comparison",
    "compare_summaries",
    "main_compare",
    # notebooks
    "escape_text",
    "safe_table",
    "setup_notebook",
    "show_table",
]
