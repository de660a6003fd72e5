"""RM Audit Workbench: audit reward models for calibration, shortcuts, sycophancy and drift.

The README's quick start in five names::

    from workbench import load_data, load_reward_model, overview, score_pairs

    rm = load_reward_model("demo-clean")
    scores = score_pairs(rm, load_data("demo-eval"))
    overview(scores).to_frame()

They are imported on first use (PEP 562), so ``import workbench`` and
``python -m workbench --help`` stay light (no torch, no transformers).
The subpackages hold the rest: :mod:`workbench.data`, :mod:`workbench.models`,
:mod:`workbench.audits` and :mod:`workbench.reports`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it (a package surface)
_LAZY = {
    "load_reward_model": "workbench.models",
    "score_pairs": "workbench.models",
    "load_data": "workbench.data",
    "load_preferences": "workbench.data",
    "overview": "workbench.audits.overview",
}

__all__ = ["load_reward_model", "load_data", "load_preferences", "score_pairs", "overview"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from workbench.audits.overview import overview
    from workbench.data import load_data, load_preferences
    from workbench.models import load_reward_model, score_pairs


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
