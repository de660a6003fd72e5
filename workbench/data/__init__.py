"""Preference data: one schema, loaders for common formats, shipped data sets, human relabelling.

The public surface of :mod:`workbench.data`; the modules underneath are

* :mod:`~workbench.data.preferences`: the :class:`PreferenceSet` schema and
  :func:`load_preferences` (JSONL, JSON, CSV, Parquet, ``save_to_disk`` folders, ``hf:`` hub names);
* :mod:`~workbench.data.shipped`: :func:`load_data`, which also takes the short names of the
  data in ``data/`` (``"golden"``, ``"demo-eval"`` ...);
* :mod:`~workbench.data.relabel`: export a queue of pairs for human relabelling and read the labels back;
* :mod:`~workbench.data.doctor`: :func:`diagnose`, the data checks of ``workbench doctor``;
* :mod:`~workbench.data.quality`: :func:`data_quality`, the skipped-rows verdict (family ``data_quality``);
* :mod:`~workbench.data.formats`: adapters for RewardBench, RewardBench 2, UltraFeedback and TRL formats.
"""

import importlib

from workbench.data.doctor import DOCTOR_CHECKS, DoctorFinding, DoctorReport, diagnose, skip_kind
from workbench.data.formats import (
    ADAPTERS,
    REWARDBENCH_EXAMPLE_COUNTS,
    REWARDBENCH_SECTIONS,
    best_of_n_accuracy,
    expand_best_of_n,
    implicit_prompt,
    parse_columns,
    rewardbench_section_scores,
)
from workbench.data.preferences import (
    FORMATS,
    SCHEMA_COLUMNS,
    DataFormatError,
    FlaggedRow,
    PreferenceSet,
    SkippedRow,
    from_frame,
    from_records,
    load_preferences,
    parse_data_spec,
    parse_hh_transcript,
    split_conversation,
)
from workbench.data.relabel import HUMAN_LABELS, QUEUE_COLUMNS, export_relabel_queue, import_relabels
from workbench.data.shipped import SHIPPED, load_data, resolve_data_spec

# workbench.data.quality grades with workbench.reports.verdicts, whose package imports this one:
# its names load on first use.
_LAZY = {name: "workbench.data.quality" for name in ("SKIP_WARN", "SKIP_FAIL", "DataQuality", "data_quality")}
_LAZY["clopper_pearson"] = "workbench.data.quality"


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # preferences
    "SCHEMA_COLUMNS",
    "FORMATS",
    "DataFormatError",
    "SkippedRow",
    "FlaggedRow",
    "PreferenceSet",
    "parse_data_spec",
    "load_preferences",
    "from_records",
    "from_frame",
    "parse_hh_transcript",
    "split_conversation",
    # shipped data
    "SHIPPED",
    "load_data",
    "resolve_data_spec",
    # relabelling
    "QUEUE_COLUMNS",
    "HUMAN_LABELS",
    "export_relabel_queue",
    "import_relabels",
    # data checks before an audit
    "DOCTOR_CHECKS",
    "DoctorFinding",
    "DoctorReport",
    "diagnose",
    "skip_kind",
    # formats users bring
    "ADAPTERS",
    "REWARDBENCH_EXAMPLE_COUNTS",
    "REWARDBENCH_SECTIONS",
    "parse_columns",
    "expand_best_of_n",
    "implicit_prompt",
    "best_of_n_accuracy",
    "rewardbench_section_scores",
    # data quality
    "SKIP_WARN",
    "SKIP_FAIL",
    "DataQuality",
    "data_quality",
    "clopper_pearson",
]
