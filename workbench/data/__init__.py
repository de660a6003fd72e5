"""Preference data: one schema, loaders for common formats, shipped data sets, human relabelling.

The public surface of :mod:`workbench.data`; the modules underneath are

* :mod:`~workbench.data.preferences`: the :class:`PreferenceSet` schema and
  :func:`load_preferences` (JSONL, JSON, CSV, Parquet, ``save_to_disk`` folders, ``hf:`` hub names);
* :mod:`~workbench.data.shipped`: :func:`load_data`, which also takes the short names of the
  data in ``data/`` (``"golden"``, ``"demo-eval"`` ...);
* :mod:`~workbench.data.relabel`: export a queue of pairs for human relabelling and read the labels back;
* :mod:`~workbench.data.doctor`: :func:`diagnose`, the data checks of ``workbench doctor``.
"""

from workbench.data.doctor import DOCTOR_CHECKS, DoctorFinding, DoctorReport, diagnose, skip_kind
from workbench.data.preferences import (
    FORMATS,
    SCHEMA_COLUMNS,
    DataFormatError,
    PreferenceSet,
    SkippedRow,
    from_frame,
    from_records,
    load_preferences,
    parse_hh_transcript,
    split_conversation,
)
from workbench.data.relabel import HUMAN_LABELS, QUEUE_COLUMNS, export_relabel_queue, import_relabels
from workbench.data.shipped import SHIPPED, load_data, resolve_data_spec

__all__ = [
    # preferences
    "SCHEMA_COLUMNS",
    "FORMATS",
    "DataFormatError",
    "SkippedRow",
    "PreferenceSet",
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
]
