"""Short names for the data the project ships in ``data/``."""

from __future__ import annotations

from pathlib import Path

from workbench.data.preferences import PreferenceSet, load_preferences
from workbench.paths import data_dir

__all__ = ["SHIPPED", "resolve_data_spec", "load_data"]

SHIPPED = {
    "golden": "golden/golden.jsonl",
    "demo-eval": "demo/eval.jsonl",
    "demo-train-clean": "demo/train_clean.jsonl",
    "demo-train-biased": "demo/train_biased.jsonl",
}


def resolve_data_spec(spec) -> str | Path:
    """Map a shipped-data name (``"golden"``, ``"demo-eval"`` ...) to its file; other specs pass through."""
    if isinstance(spec, str) and spec in SHIPPED:
        return data_dir() / SHIPPED[spec]
    return spec


def load_data(spec, **kwargs) -> PreferenceSet:
    """:func:`~workbench.data.preferences.load_preferences` that also accepts shipped-data names."""
    return load_preferences(resolve_data_spec(spec), **kwargs)
